"""Checks from the docs-truth audit of 2026-12-06 (second round) worth keeping.

- to_torch of a model with a forward hook (register_forward_hook, new this session)
  gave a torch.nn.Sequential without the hook: its outputs differed from wxb's own
  predict (a hook doubling the output: half the numbers), without a word, where
  wxb.save and ONNX export refuse such a model. It is refused too now, and once the
  hook is removed the twin computes wxb's numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

import wxb
from wxb.errors import ConfigError

torch = pytest.importorskip("torch")
interop = pytest.importorskip("wxb.interop")


@pytest.mark.parametrize("pre", [False, True])
def test_to_torch_refuses_a_hooked_model_and_matches_wxb_without_the_hook(pre):
    seed = int(np.random.SeedSequence().entropy % 2**32)
    rng = np.random.default_rng(seed)
    n_in, hidden, n_out = (int(v) for v in rng.integers(2, 9, size=3))
    wxb.manual_seed(seed)
    model = wxb.nn.Sequential(
        wxb.nn.Dense(n_in, hidden), wxb.nn.Tanh(), wxb.nn.Dense(hidden, n_out)
    ).double()
    X = rng.normal(size=(int(rng.integers(1, 20)), n_in))
    target = model if rng.random() < 0.5 else model[int(rng.integers(0, len(model)))]
    if pre:
        handle = target.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
    else:
        handle = target.register_forward_hook(lambda m, args, out: out * 2)
    hooked = model.predict(X)
    with pytest.raises(ConfigError, match="a forward pre-hook," if pre else "a forward hook,"):
        interop.to_torch(model)  # was converted without the hook (other numbers)
    handle.remove()
    twin = interop.to_torch(model).eval()
    with torch.no_grad():
        theirs = twin(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(
        model.predict(X), theirs, rtol=1e-12, atol=1e-12, err_msg=f"seed {seed}"
    )
    assert not np.allclose(hooked, theirs), f"seed {seed}: the hook changed nothing"


def test_onnx_refusal_of_a_hooked_stock_layer_does_not_call_it_unsupported(tmp_path):
    """A hooked Dense was refused with '…; ONNX export handles only Sequential, Dense, …':
    the list named the very layer refused. The hook alone is the reason."""
    pytest.importorskip("onnx")
    import wxb.onnx

    seed = int(np.random.SeedSequence().entropy % 2**32)
    rng = np.random.default_rng(seed)
    model = wxb.nn.Sequential(wxb.nn.Dense(3, 4), wxb.nn.ReLU(), wxb.nn.Dense(4, 2))
    hooked = model[int(rng.integers(0, len(model)))]
    hooked.register_forward_hook(lambda m, args, out: out)
    with pytest.raises(ConfigError) as refused:
        wxb.onnx.export(model, tmp_path / "m.onnx")
    message = str(refused.value)
    assert "a forward hook," in message and "handles only" not in message, f"seed {seed}: {message}"
    assert not (tmp_path / "m.onnx").exists()
