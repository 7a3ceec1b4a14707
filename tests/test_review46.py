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
