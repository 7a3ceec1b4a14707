"""Computation graphs a PyTorch user could write on wxb tensors, checked against the
same graph in PyTorch: every value, every leaf's ``.grad`` and its dtype. The seed of
each run is printed in the assertion (replay with ``WXB_TEST_SEED=<seed>``).
"""

from __future__ import annotations

import numpy as np
import pytest

from wxb.tensor import Tensor

torch = pytest.importorskip("torch")


def pair(array: np.ndarray) -> tuple[Tensor, torch.Tensor]:
    return Tensor(array.copy(), requires_grad=True), torch.tensor(array, requires_grad=True)


def whole_numbers(rng, shape: tuple[int, ...]) -> np.ndarray:
    """Few distinct whole numbers: ties everywhere."""
    return rng.integers(-2, 3, size=shape).astype(np.float64)


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_over_everything_with_keepdims_keeps_every_dimension(seeded, name):
    """np.max(x, keepdims=True) on a tensor gave a 0-d value, where NumPy's (and torch's
    amax(x, dim=(), keepdim=True)) keeps every dimension as size 1; the same values,
    and the gradient, shared among ties, through them."""
    rng = seeded.rng
    shape = tuple(int(k) for k in rng.integers(1, 4, size=int(rng.integers(1, 4))))
    a = whole_numbers(rng, shape)
    x, t = pair(a)
    got = getattr(np, name)(x, keepdims=True)
    want = getattr(torch, f"a{name}")(t, dim=tuple(range(len(shape))), keepdim=True)
    assert got.shape == getattr(np, name)(a, keepdims=True).shape, seeded.msg("shape")
    np.testing.assert_array_equal(got.data, want.detach().numpy(), err_msg=seeded.msg("value"))
    r = rng.normal(size=shape)
    (x * got * r).sum().backward()
    (t * want * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-12, err_msg=seeded.msg("grad"))
