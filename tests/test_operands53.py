"""Tensor arithmetic with NumPy and Python operands, off the well-tested path,
against PyTorch."""

import operator

import numpy as np
import pytest
import torch

import wxb
from wxb.tensor import Tensor


def _grid(rng, shape, dtype=np.float64):
    """Nonzero quarters in [−2, 2] (whole numbers for integer dtypes, 0/1 for bool)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.kind == "u":
        return rng.integers(1, 4, shape).astype(dtype)
    if dtype.kind == "i":
        return (rng.choice([-1, 1], shape) * rng.integers(1, 3, shape)).astype(dtype)
    return (rng.choice([-1, 1], shape) * rng.integers(1, 9, shape) / 4).astype(dtype)


def _eps(dtype):
    return float(np.finfo(np.float32 if dtype in (np.float32, torch.float32) else np.float64).eps)


def test_in_place_remainder_and_floor_division_change_a_parameter_as_torchs(seeded):
    # angles %= 2π under no_grad: the model's parameter itself, as torch's
    rng = seeded.rng
    values = _grid(rng, (3, 4))
    divisor = float(rng.choice([0.75, 1.5, 2.0]))
    for op in (operator.imod, operator.ifloordiv):
        p = wxb.nn.Parameter(values.copy())
        theirs = torch.nn.Parameter(torch.tensor(values))
        with wxb.no_grad():
            q = op(p, divisor)
        with torch.no_grad():
            op(theirs, divisor)
        assert q is p, seeded.msg(f"{op.__name__}: a new tensor, the parameter unchanged")
        np.testing.assert_array_equal(
            p.data, theirs.detach().numpy(), err_msg=seeded.msg(op.__name__)
        )


def test_clamp_between_bounds_that_broadcast_beyond_the_input_gives_torchs_gradients(seeded):
    # clamp(x, min=lo, max=hi) with hi broadcasting lo and x to a larger shape: the
    # backward's lo < hi mask was combined into A < lo's in place and raised NumPy's
    # "non-broadcastable output operand". torch's own clamp backward fails there too
    # ("output with shape [3] doesn't match the broadcast shape [2, 3]"): the reference
    # is its definition, min(max(x, lo), hi), on values without ties (x on quarters, lo
    # and hi off them by 1/8 and 1/16)
    rng = seeded.rng
    for x_shape, lo_shape, hi_shape in [
        ((3,), (1,), (2, 3)),
        ((2, 1), (1,), (2, 3)),
        ((3,), (2, 3), (1,)),
    ]:
        x, lo, hi = _grid(rng, x_shape), _grid(rng, lo_shape) + 1 / 8, _grid(rng, hi_shape) - 1 / 16
        ours = [Tensor(v.copy(), requires_grad=True) for v in (x, lo, hi)]
        theirs = [torch.tensor(v, requires_grad=True) for v in (x, lo, hi)]
        out = wxb.clamp(ours[0], min=ours[1], max=ours[2])
        expected = torch.minimum(torch.maximum(theirs[0], theirs[1]), theirs[2])
        g = _grid(rng, expected.shape)
        out.backward(g)
        expected.backward(torch.tensor(g))
        np.testing.assert_array_equal(
            out.data, expected.detach().numpy(), err_msg=seeded.msg("clamp")
        )
        for w, t in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(w.grad, t.grad.numpy(), err_msg=seeded.msg("∂"))


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_sum_and_mean_with_a_dtype_compute_in_it_as_torchs(seeded, reduce):
    # x.sum(dtype=torch.float64), np.mean(t, dtype=np.float64): refused before
    rng = seeded.rng
    for dtype in (np.float32, np.float64):
        values = rng.normal(size=(int(rng.integers(1, 40)), 3)).astype(dtype)
        for into, dim in [
            (wxb.float64, None),
            (torch.float64, 1),
            ("float32", 0),
            (np.float64, (0, 1)),
        ]:
            for form in ("method", "wxb", "numpy"):
                x = Tensor(values.copy(), requires_grad=True)
                tx = torch.tensor(values, requires_grad=True)
                torch_into = {np.float64: torch.float64, "float32": torch.float32}.get(into, into)
                torch_into = torch.float64 if torch_into is wxb.float64 else torch_into
                if form == "method":
                    out = getattr(x, reduce)(dim=dim, dtype=into)
                elif form == "wxb":
                    out = getattr(wxb, reduce)(x, dim, dtype=into)
                else:
                    out = getattr(np, reduce)(x, axis=dim, dtype=into)
                expected = getattr(torch, reduce)(tx, dim=dim, dtype=torch_into)
                assert str(out.dtype) == str(expected.dtype).removeprefix("torch."), seeded.msg(
                    f"{form} {into}"
                )
                eps = _eps(out.dtype)
                np.testing.assert_allclose(
                    out.data,
                    expected.detach().numpy(),
                    rtol=64 * eps,
                    atol=64 * eps,
                    err_msg=seeded.msg(form),
                )
                g = rng.normal(size=out.shape)
                out.backward(g.astype(out.dtype))
                expected.backward(torch.tensor(g, dtype=expected.dtype))
                assert x.grad.dtype == dtype, seeded.msg(f"∂ {x.grad.dtype}")
                np.testing.assert_allclose(
                    x.grad, tx.grad.numpy(), rtol=8 * _eps(dtype), err_msg=seeded.msg("∂")
                )


def _numpy_on_the_left(seeded):
    """ndarray op tensor, np.float64(2) * t, ndarray @ t, np.sum/np.mean/np.exp(t): a
    tensor with torch's gradient; np.asarray of one requiring grad: a clear refusal."""
    rng = seeded.rng
    values = _grid(rng, (3, 4))
    array = _grid(rng, (3, 4))
    forms = {
        "ndarray + t": (lambda t: array + t, lambda t: torch.tensor(array) + t),
        "ndarray - t": (lambda t: array - t, lambda t: torch.tensor(array) - t),
        "ndarray / t": (lambda t: array / t, lambda t: torch.tensor(array) / t),
        "ndarray ** t": (lambda t: np.abs(array) ** t, lambda t: torch.tensor(np.abs(array)) ** t),
        "np.float64(2) * t": (lambda t: np.float64(2) * t, lambda t: 2.0 * t),
        "np.float32(0.5) - t": (lambda t: np.float32(0.5) - t, lambda t: 0.5 - t),
        "ndarray @ t": (lambda t: array.T @ t, lambda t: torch.tensor(array.T) @ t),
        "ndarray[0] @ t": (lambda t: array[0] @ t.T, lambda t: torch.tensor(array[0]) @ t.T),
        "np.sum(t)": (np.sum, torch.sum),
        "np.mean(t, axis=0)": (lambda t: np.mean(t, axis=0), lambda t: torch.mean(t, 0)),
        "np.exp(t)": (np.exp, torch.exp),
        "np.maximum(ndarray, t)": (
            lambda t: np.maximum(array, t),
            lambda t: torch.maximum(torch.tensor(array), t),
        ),
        "np.concatenate": (
            lambda t: np.concatenate([array, t]),
            lambda t: torch.cat([torch.tensor(array), t]),
        ),
    }
    for name, (ours, theirs) in forms.items():
        x = Tensor(values.copy(), requires_grad=True)
        tx = torch.tensor(values, requires_grad=True)
        out, expected = ours(x), theirs(tx)
        assert isinstance(out, Tensor) and out.requires_grad, seeded.msg(f"{name}: {type(out)}")
        np.testing.assert_allclose(
            out.data, expected.detach().numpy(), rtol=1e-12, err_msg=seeded.msg(name)
        )
        g = _grid(rng, out.shape)
        out.backward(g)
        expected.backward(torch.tensor(g))
        np.testing.assert_allclose(
            x.grad, tx.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg=seeded.msg(name)
        )
    x = Tensor(values.copy(), requires_grad=True)
    with pytest.raises(TypeError, match="requires grad"):
        np.asarray(x)


def test_numpy_on_the_left_gives_a_tensor_with_gradients_or_answers_on_the_values(seeded):
    # np.array_equal(t, a) of a tensor requiring grad said False for equal values (NumPy
    # swallowed the refusal of its read), np.nonzero(t) gave torch's (n, ndim) indices
    # where NumPy's tuple of index arrays was asked for
    _numpy_on_the_left(seeded)
    rng = seeded.rng
    values = _grid(rng, (3, 4)) * (rng.random((3, 4)) < 0.6)
    for grad in (False, True):
        t = Tensor(values.copy(), requires_grad=grad)
        assert np.array_equal(t, values) and np.array_equal(values, t), seeded.msg(f"{grad}")
        assert not np.array_equal(t, values + 1), seeded.msg(f"{grad}")
        assert np.array_equiv(t, values) and np.allclose(t, values), seeded.msg(f"{grad}")
        np.testing.assert_array_equal(np.isclose(t, values), np.ones((3, 4), bool))
        got, expected = np.nonzero(t), np.nonzero(values)
        assert isinstance(got, tuple) and len(got) == 2, seeded.msg(f"{type(got)}")
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=seeded.msg("np.nonzero"))
        np.testing.assert_array_equal(
            torch.tensor(values).nonzero().numpy(), t.nonzero(), err_msg=seeded.msg("t.nonzero()")
        )
