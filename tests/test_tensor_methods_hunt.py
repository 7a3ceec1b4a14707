"""PyTorch's tensor methods on wxb tensors, called in the argument forms a PyTorch user
writes, checked against torch itself: the value, its dtype and shape, and the gradient
of a random weighted sum; where torch raises, wxb must not return a number.

Each test draws its inputs fresh (the ``seeded`` fixture prints its seed; replay with
``WXB_TEST_SEED=<seed>``).
"""

from __future__ import annotations

import numpy as np
import pytest

from wxb.tensor import Tensor

torch = pytest.importorskip("torch")

TORCH = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def same_as_torch(seeded, x: np.ndarray, call, torch_call=None) -> None:
    """call(wxb tensor) and (torch_call or call)(torch tensor) give the same value, dtype,
    shape and gradient of Σ w ⊙ out for a random w."""
    torch_call = torch_call or call
    xw, xt = Tensor(x.copy(), requires_grad=True), torch.tensor(x.copy(), requires_grad=True)
    out_w, out_t = call(xw), torch_call(xt)
    what = seeded.msg(f"on {x.dtype} {x.shape}")
    assert out_w.shape == tuple(out_t.shape), what
    assert out_w.dtype == x.dtype and out_t.dtype == TORCH[x.dtype], what
    tol = TOL[x.dtype]
    expected = out_t.detach().numpy()
    np.testing.assert_allclose(out_w.data, expected, rtol=tol, atol=tol, err_msg=what)
    np.testing.assert_array_equal(np.isnan(out_w.data), np.isnan(expected), err_msg=what)
    w = seeded.rng.standard_normal(out_t.shape).astype(x.dtype)
    (out_t * torch.tensor(w)).sum().backward()
    (out_w * w).sum().backward()
    np.testing.assert_allclose(xw.grad, xt.grad.numpy(), rtol=tol, atol=tol, err_msg=what)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clamp_with_min_above_max_keeps_a_nan_as_torchs(seeded, dtype):
    """clamp(min, max) with min > max sets every value to max, as torch's, but a NaN stays
    NaN in torch (and np.clip): wxb filled it with max, a missing value turned real."""
    rng = seeded.rng
    shape = tuple(int(n) for n in rng.integers(2, 5, size=rng.integers(1, 4)))
    x = rng.standard_normal(shape).astype(dtype)
    x[rng.random(shape) < 0.4] = np.nan
    x.flat[0] = np.nan
    high = float(rng.uniform(-2, 0))
    low = high + float(rng.uniform(0.1, 2))
    same_as_torch(seeded, x, lambda t: t.clamp(low, high))
    same_as_torch(seeded, x, lambda t: t.clip(min=low, max=high))
