"""Regressions found reviewing the changes merged on 6 December (ecf91c6..eb6b848), each
failing on the code before its fix."""

import numpy as np
import pytest

import wxb
from wxb.errors import ShapeError

torch = pytest.importorskip("torch")


def test_sum_mean_take_torch_positional_dims_as_dim_is_taken(seeded):
    """t.sum(1), t.mean((0, -1)): torch's dim given by position arrives as NumPy's axis,
    which was not checked as dim= is: out of range met NumPy's AxisError, a dim named
    twice its "duplicate value in 'axis'", and a 0-d tensor's dim -1 an IndexError."""
    rng = seeded.rng
    for _ in range(20):
        ndim = int(rng.integers(1, 4))
        shape = tuple(int(n) for n in rng.integers(1, 4, size=ndim))
        x = rng.standard_normal(shape)
        name = str(rng.choice(["sum", "mean"]))
        count = int(rng.integers(1, ndim + 1))
        dims = tuple(int(d) - ndim * int(rng.integers(0, 2)) for d in rng.permutation(ndim)[:count])
        dim = dims if count > 1 or rng.random() < 0.5 else dims[0]
        got = getattr(wxb.tensor(x), name)(dim)
        want = getattr(torch.tensor(x), name)(dim)
        # float64 sums of at most 27 values of |x| < 10: a few units in the last place
        np.testing.assert_allclose(np.asarray(got.data), want.numpy(), rtol=1e-13, atol=1e-13)
        twice = (*dims, dims[0] - ndim if dims[0] >= 0 else dims[0] + ndim)
        with pytest.raises(ShapeError, match="more than once"):
            getattr(wxb.tensor(x), name)(twice)
        with pytest.raises(ShapeError, match="out of range"):
            getattr(wxb.tensor(x), name)(ndim + int(rng.integers(0, 3)))
        with pytest.raises(ShapeError, match="out of range"):
            getattr(wxb.tensor(x), name)(-ndim - 1 - int(rng.integers(0, 3)))
    value = np.array(rng.standard_normal())  # a 0-d tensor's dim 0 or -1: its one value
    for name in ("sum", "mean"):
        for d in (0, -1, (0,), [-1]):
            got = getattr(wxb.tensor(value), name)(d)
            assert got.shape == () and got.dtype == np.float64 and float(got.data) == value


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_functional_softmax_takes_torchs_dtype(seeded, name):
    """F.softmax(z, dim=-1, dtype=torch.float64), as ported code writes it: Tensor.softmax
    took dtype= (68a5eab), the functional form stopped at a TypeError. z is cast first, so
    the float32 leaf gets its gradient back in float32, as torch's."""
    rng = seeded.rng
    shape = tuple(int(n) for n in rng.integers(1, 6, size=int(rng.integers(1, 4))))
    z = (rng.standard_normal(shape) * 3).astype(np.float32)
    weights = rng.standard_normal(shape)
    dim = int(rng.integers(-len(shape), len(shape)))
    for dtype, torch_dtype in [(torch.float64, torch.float64), ("float64", torch.float64)]:
        x = wxb.tensor(z, requires_grad=True)
        t = torch.tensor(z, requires_grad=True)
        got = getattr(wxb.nn.functional, name)(x, dim=dim, dtype=dtype)
        want = getattr(torch.nn.functional, name)(t, dim=dim, dtype=torch_dtype)
        assert got.dtype == np.float64
        # both in float64 from the same float32 values: a few units of float64's last place
        np.testing.assert_allclose(np.asarray(got.data), want.detach().numpy(), rtol=1e-13)
        (got * wxb.tensor(weights)).sum().backward()
        (want * torch.tensor(weights)).sum().backward()
        assert x.grad.dtype == np.float32
        # float64 gradients ~1e-15 apart, each rounded once to float32: 2 ulp, or an
        # absolute 1e-12 where a gradient is near 0 (its float64 difference shows)
        np.testing.assert_allclose(
            np.asarray(x.grad.data if hasattr(x.grad, "data") else x.grad),
            t.grad.numpy(),
            rtol=2.0**-22,
            atol=1e-12,
        )
