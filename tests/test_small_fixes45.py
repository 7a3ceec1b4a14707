"""Small fixes of 2026-12-06: what a refusal says."""

import math

import numpy as np
import pytest

import wxb


def test_renorm_takes_torchs_quasi_norms_and_refuses_the_rest_naming_renorm(seeded):
    """t.renorm(0.5, 0, c) was refused naming norm ('norm: p must be ...'), a function
    the user did not call; torch computes it, and since 6128053 so does wxb (its scaling
    is torch's), while p ≤ 0, which torch refuses, is refused naming renorm."""
    torch = pytest.importorskip("torch")
    rng = seeded.rng
    A = rng.standard_normal((int(rng.integers(2, 6)), int(rng.integers(2, 6))))
    p = float(rng.choice([0.0, -float(rng.uniform(0.1, 3))]))
    with pytest.raises(wxb.ConfigError, match=r"^renorm: p must be a number > 0") as caught:
        wxb.tensor(A).renorm(p, 0, 1.0)
    assert repr(p) in str(caught.value), seeded.msg(str(caught.value))
    with pytest.raises(RuntimeError):
        torch.renorm(torch.from_numpy(A), p, 0, 1.0)
    for p in (float(rng.uniform(0.05, 0.95)), 1, float(rng.uniform(1, 4)), math.inf):
        maxnorm = float(rng.uniform(0.1, 2))
        got = wxb.tensor(A).renorm(p, 0, maxnorm).data
        want = torch.renorm(torch.from_numpy(A), p, 0, maxnorm).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, err_msg=seeded.msg(p))


@pytest.mark.parametrize("value", [object(), 1j, Ellipsis])
def test_state_file_refusal_reads_as_english(tmp_path, value):
    """wxb.save({'a': object()}, path) said 'a object value cannot be saved'."""
    with pytest.raises(wxb.ConfigError) as caught:
        wxb.save({"a": value}, tmp_path / "c.safetensors")
    name = type(value).__name__
    article = "an" if name[0] in "aeiou" else "a"
    assert f"checkpoint['a']: {article} {name} value cannot be saved" in str(caught.value)
    assert not (tmp_path / "c.safetensors").exists()
