"""What three newcomers (from PyTorch, Keras, scikit-learn) typed first that the docs
did not show, and wxb answered wrongly or cryptically."""

import numpy as np
import pytest

import wxb

torch = pytest.importorskip("torch")


def test_torch_tensor_reads_a_wxb_tensor(seeded):
    """``torch.tensor(out)`` / ``torch.as_tensor(out)`` of a wxb tensor, a PyTorch user's
    way back to torch, failed with ``TypeError: len() of unsized object``: torch walked
    the tensor as nested sequences down to its 0-d elements. Through DLPack it reads it
    as it reads the NumPy array: same values and dtype, as_tensor sharing the memory."""
    rng = seeded.rng
    dtype = rng.choice(["float32", "float64"])
    shape = tuple(int(n) for n in rng.integers(1, 5, size=rng.integers(0, 4)))
    values = rng.standard_normal(shape).astype(dtype)
    t = wxb.tensor(values, dtype=dtype)
    views = [t]
    if t.ndim >= 2:
        views.append(t.transpose(0, 1))  # strided: no copy made on wxb's side
    for view in views:
        expected = torch.from_numpy(np.array(view.data))
        got = torch.tensor(view)
        assert got.dtype == expected.dtype, seeded.msg(f"{got.dtype} for {view.dtype}")
        assert torch.equal(got, expected), seeded.msg("torch.tensor's values")
    shared = torch.as_tensor(t)
    assert torch.equal(shared, torch.from_numpy(values)), seeded.msg("as_tensor's values")
    shared.fill_(7.0)  # as torch.as_tensor(ndarray): one memory
    assert np.all(t.data == 7.0), seeded.msg("as_tensor shares the memory")

    # a tensor in the graph is refused as np.array refuses it, naming detach()
    w = wxb.tensor(values, dtype=dtype, requires_grad=True)
    with pytest.raises(TypeError, match=r"requires grad.*detach\(\)"):
        torch.tensor(w)
    assert torch.equal(torch.tensor(w.detach()), torch.from_numpy(values)), seeded.msg("detach")
