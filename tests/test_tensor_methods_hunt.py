"""PyTorch's tensor methods on wxb tensors, called in the argument forms a PyTorch user
writes, checked against torch itself: the value, its dtype and shape, and the gradient
of a random weighted sum; where torch raises, wxb must not return a number.

Each test draws its inputs fresh (the ``seeded`` fixture prints its seed; replay with
``WXB_TEST_SEED=<seed>``).
"""

from __future__ import annotations

import numpy as np
import pytest

from wxb.errors import ConfigError, ShapeError
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
    assert TORCH[out_w.dtype] == out_t.dtype, what
    tol = TOL[out_w.dtype]
    expected = out_t.detach().numpy()
    np.testing.assert_allclose(out_w.data, expected, rtol=tol, atol=tol, err_msg=what)
    np.testing.assert_array_equal(np.isnan(out_w.data), np.isnan(expected), err_msg=what)
    w = seeded.rng.standard_normal(out_t.shape).astype(out_w.dtype)
    (out_t * torch.tensor(w)).sum().backward()
    with np.errstate(invalid="ignore"):  # inf − inf in the sum: NaN, as torch's (silent)
        (out_w * w).sum().backward()
    assert xw.grad.dtype == x.dtype, what
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


def test_what_torch_refuses_is_refused_not_answered(seeded):
    """t.mm of a vector or a batch, fill_ of several values or of none, view(), expand()
    and repeat() without sizes: torch raises for each; wxb returned a number (mm as
    matmul, fill_ broadcast a row over every row, fill_() filled zeros, view() a 0-d)."""
    rng = seeded.rng
    m, n, k = (int(v) for v in rng.integers(2, 5, size=3))
    A, B = rng.standard_normal((m, n)), rng.standard_normal((n, k))
    calls = {
        "mm vector": lambda lib: lib(A).mm(lib(B[:, 0])),
        "vector mm": lambda lib: lib(A[0]).mm(lib(B)),
        "batch mm": lambda lib: lib(np.stack([A, A])).mm(lib(B)),
        "fill_ row": lambda lib: lib(A).fill_(lib(A[0])),
        "fill_ 1-element row": lambda lib: lib(A).fill_(lib(A[0, :1])),
        "fill_ nothing": lambda lib: lib(A).fill_(),
        "view nothing": lambda lib: lib(A[:1, :1].reshape(1)).view(),
        "expand nothing": lambda lib: lib(A[0, 0]).expand(),
        "repeat nothing": lambda lib: lib(A[0, 0]).repeat(),
    }
    for name, call in calls.items():
        with pytest.raises((TypeError, RuntimeError)):
            call(torch.tensor)
        try:
            call(Tensor)
        except (ConfigError, ShapeError, TypeError):
            continue
        pytest.fail(seeded.msg(f"{name}: torch raises, wxb returned a value"))
    with pytest.raises(ShapeError, match="mat2 must be a matrix"):
        Tensor(A).mm(B[:, 0])  # an array on the right, as on the left
    # what torch takes still runs: a matrix product, one value, a 0-d tensor's value
    np.testing.assert_allclose(Tensor(A).mm(Tensor(B)).data, A @ B, rtol=1e-12)
    value = float(rng.standard_normal())
    assert (Tensor(A).fill_(value).data == value).all()
    assert (Tensor(A).fill_(Tensor(np.array(value))).data == value).all()
    assert (Tensor(A).zero_().data == 0).all()
    assert Tensor(A[0, 0]).expand(()).shape == () == Tensor(A[0, 0]).repeat(()).shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extremes_along_a_dim_of_an_empty_tensor_as_torchs(seeded, dtype):
    """t.max(1) of a (0, k) tensor is empty values and indices in torch (argmax too);
    wxb refused any empty tensor. Along the empty dim both still refuse."""
    rng = seeded.rng
    shape = [int(rng.integers(1, 4)) for _ in range(int(rng.integers(2, 4)))]
    empty_at = int(rng.integers(0, len(shape)))
    shape[empty_at] = 0
    x = np.zeros(shape, dtype)
    for dim in range(-len(shape), len(shape)):
        reduces_nothing = dim % len(shape) == empty_at
        for keepdim in (False, True):
            for name in ("max", "min"):
                if reduces_nothing:
                    with pytest.raises(IndexError):
                        getattr(torch.tensor(x), name)(dim, keepdim)
                    with pytest.raises(ShapeError):
                        getattr(Tensor(x), name)(dim, keepdim)
                    continue
                same_as_torch(
                    seeded, x, lambda t, n=name, d=dim, kd=keepdim: getattr(t, n)(d, kd)[0]
                )
                indices = getattr(Tensor(x), name)(dim, keepdim).indices
                expected = getattr(torch.tensor(x), name)(dim, keepdim).indices
                assert indices.shape == tuple(expected.shape), seeded.msg(f"{name}({dim})")
                for arg in ("argmax", "argmin"):
                    found = getattr(Tensor(x), arg)(dim, keepdim)
                    assert found.shape == tuple(getattr(torch.tensor(x), arg)(dim, keepdim).shape)
    for name in ("max", "min", "argmax", "argmin"):
        with pytest.raises((IndexError, RuntimeError)):
            getattr(torch.tensor(x), name)()
        with pytest.raises(ShapeError):
            getattr(Tensor(x), name)()


def test_squeeze_of_several_dims_as_torchs(seeded):
    """torch's squeeze((0, 2)) drops each listed dim of size 1 and keeps the others; wxb
    took one dim only (a ConfigError for a tuple)."""
    rng = seeded.rng
    ndim = int(rng.integers(1, 5))
    shape = tuple(int(rng.choice([1, 1, 2, 3])) for _ in range(ndim))
    x = rng.standard_normal(shape)
    for _ in range(6):
        count = int(rng.integers(0, ndim + 1))
        dims = [int(d) - ndim * int(rng.integers(0, 2)) for d in rng.permutation(ndim)[:count]]
        for form in (tuple(dims), list(dims)):
            same_as_torch(seeded, x, lambda t, f=form: t.squeeze(f))
            same_as_torch(seeded, x, lambda t, f=form: t.squeeze(dim=f))
    if ndim > 1:
        with pytest.raises(RuntimeError):
            torch.tensor(x).squeeze((0, -ndim))
        with pytest.raises(ShapeError, match="twice"):
            Tensor(x).squeeze((0, -ndim))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bounds", ["min", "max", "both"])
def test_clamp_between_tensors_as_torchs(seeded, dtype, bounds):
    """t.clamp(min=lo, max=hi) with tensor bounds (broadcast, at ties, lo > hi in places,
    a NaN): torch's values and the gradients of t, lo and hi; wxb refused tensors."""
    rng = seeded.rng
    shape = tuple(int(n) for n in rng.integers(2, 5, size=rng.integers(1, 4)))
    x = rng.integers(-2, 3, shape) + (rng.random(shape) < 0.5) * rng.standard_normal(shape)
    x = x.astype(dtype)
    x.flat[int(rng.integers(x.size))] = np.nan

    def bound(low: int) -> np.ndarray:  # the tensor's shape or one that broadcasts into it
        kept = [n if rng.random() < 0.6 else 1 for n in shape][int(rng.integers(len(shape))) :]
        return rng.integers(low, low + 3, kept).astype(dtype)

    given = {"min": bound(-2), "max": bound(-1)}
    given = given if bounds == "both" else {bounds: given[bounds]}
    xw, xt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    bw = {k: Tensor(v, requires_grad=True) for k, v in given.items()}
    bt = {k: torch.tensor(v, requires_grad=True) for k, v in given.items()}
    out_w, out_t = xw.clamp(**bw), xt.clamp(**bt)
    what = seeded.msg(f"clamp({', '.join(f'{k}={v.shape}' for k, v in given.items())}) of {shape}")
    assert out_w.shape == tuple(out_t.shape) and out_w.dtype == x.dtype, what
    np.testing.assert_array_equal(out_w.data, out_t.detach().numpy(), err_msg=what)
    w = rng.standard_normal(shape).astype(dtype)
    (out_t * torch.tensor(w)).sum().backward()
    (out_w * w).sum().backward()
    tol = TOL[np.dtype(dtype)]
    np.testing.assert_allclose(xw.grad, xt.grad.numpy(), rtol=tol, atol=tol, err_msg=what)
    for k in given:
        assert bw[k].grad.dtype == dtype, what
        np.testing.assert_allclose(bw[k].grad, bt[k].grad.numpy(), rtol=tol, atol=tol, err_msg=what)


def test_to_takes_torchs_non_blocking_and_copy(seeded):
    """x.to(device, non_blocking=True), as ported training loops write it, was a
    TypeError; copy=True gives a copy in the graph (a change to it leaves x), as torch's."""
    rng = seeded.rng
    x = rng.standard_normal(tuple(int(n) for n in rng.integers(1, 4, size=2)))
    for kwargs in ({"non_blocking": True}, {"copy": True}, {"non_blocking": True, "copy": True}):
        for args in (("cpu",), (torch.float64,), ("cpu", torch.float32), ()):
            same_as_torch(seeded, x, lambda t, a=args, k=kwargs: t.to(*a, **k) * 2)
            xw, xt = Tensor(x.copy()), torch.tensor(x.copy())
            out_w, out_t = xw.to(*args, **kwargs), xt.to(*args, **kwargs)
            assert (out_w is xw) == (out_t is xt), seeded.msg(f"to({args}, {kwargs})")
            with_same_dtype = out_w.dtype == xw.dtype
            out_w.zero_()
            out_t.zero_()
            if with_same_dtype:  # a copy or the tensor itself, as torch's
                np.testing.assert_array_equal(xw.data, xt.numpy(), err_msg=seeded.msg("copy"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_of_another_tensor_is_elementwise_as_torchs(seeded, dtype, name):
    """t.max(other) is torch's element-wise maximum (broadcast; a tie splits the gradient
    in half; NaN wins); wxb refused it as 'dim must be an integer'."""
    rng = seeded.rng
    shape = tuple(int(n) for n in rng.integers(1, 5, size=rng.integers(1, 4)))
    other_shape = tuple(n if rng.random() < 0.6 else 1 for n in shape)[rng.integers(len(shape)) :]
    x = rng.integers(-2, 3, shape).astype(dtype)
    y = rng.integers(-2, 3, other_shape).astype(dtype)
    x[rng.random(shape) < 0.2] = np.nan
    y[rng.random(other_shape) < 0.2] = np.nan
    xw, xt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yw, yt = Tensor(y, requires_grad=True), torch.tensor(y, requires_grad=True)
    out_w, out_t = getattr(xw, name)(yw), getattr(xt, name)(yt)
    what = seeded.msg(f"{shape}.{name}({other_shape})")
    assert out_w.shape == tuple(out_t.shape) and out_w.dtype == dtype, what
    np.testing.assert_array_equal(out_w.data, out_t.detach().numpy(), err_msg=what)
    w = rng.standard_normal(out_t.shape).astype(dtype)
    (out_t * torch.tensor(w)).sum().backward()
    (out_w * w).sum().backward()
    tol = TOL[np.dtype(dtype)]
    np.testing.assert_allclose(xw.grad, xt.grad.numpy(), rtol=tol, atol=tol, err_msg=what)
    np.testing.assert_allclose(yw.grad, yt.grad.numpy(), rtol=tol, atol=tol, err_msg=what)


def test_var_and_std_take_torchs_positional_forms_and_refuse_the_others(seeded):
    """t.var(1, 2) (a correction where torch's older form has unbiased) is refused by
    torch; wxb read the 2 as unbiased=True, correction 1, not the 2 a user meant.
    t.var(False), torch's var(unbiased) over everything, was refused."""
    rng = seeded.rng
    shape = tuple(int(n) for n in rng.integers(2, 5, size=rng.integers(2, 4)))
    x = rng.standard_normal(shape)
    dim = int(rng.integers(-len(shape), len(shape)))
    count = int(rng.integers(0, 3))
    for name in ("var", "std"):
        for args, kwargs in [
            ((dim, count), {}),
            ((None, count), {}),
            ((dim,), {"unbiased": bool(count), "correction": count}),
            ((dim, 1.0), {}),
        ]:
            with pytest.raises((TypeError, RuntimeError)):
                getattr(torch.tensor(x), name)(*args, **kwargs)
            with pytest.raises(ConfigError):
                getattr(Tensor(x), name)(*args, **kwargs)
        for args, kwargs in [
            ((bool(count),), {}),
            ((dim, bool(count)), {}),
            ((dim, bool(count), True), {}),
            ((dim,), {"correction": count, "keepdim": True}),
        ]:
            same_as_torch(seeded, x, lambda t, n=name, a=args, k=kwargs: getattr(t, n)(*a, **k))


def test_keepdim_is_a_flag_not_a_second_dim(seeded):
    """t.mean(0, 1) and t.sum(1, 2), refused by torch (keepdim must be a bool), gave the
    mean over dim 0 alone, kept as size 1, where a user meant dims (0, 1); max, min,
    argmax, var and std likewise. A number there is refused; True/False run as torch's."""
    rng = seeded.rng
    shape = tuple(int(n) for n in rng.integers(2, 5, size=3))
    x = rng.standard_normal(shape)
    first, second = (int(d) for d in rng.permutation(3)[:2])
    for name in ("sum", "mean", "max", "min", "argmax", "argmin", "var", "std"):
        for args, kwargs in [((first, second), {}), ((first,), {"keepdim": int(second)})]:
            with pytest.raises((TypeError, RuntimeError)):
                getattr(torch.tensor(x), name)(*args, **kwargs)
            with pytest.raises(ConfigError, match="must be True or False"):
                getattr(Tensor(x), name)(*args, **kwargs)
        for keepdim in (False, True, np.True_):
            if name.startswith("arg"):
                found = getattr(Tensor(x), name)(first, keepdim)
                expected = getattr(torch.tensor(x), name)(first, bool(keepdim)).numpy()
                np.testing.assert_array_equal(found, expected, err_msg=seeded.msg(name))
                continue
            pick = (lambda out: out[0]) if name in ("max", "min") else (lambda out: out)
            same_as_torch(
                seeded,
                x,
                lambda t, n=name, k=keepdim, p=pick: p(getattr(t, n)(first, k)),
                lambda t, n=name, k=keepdim, p=pick: p(getattr(t, n)(first, bool(k))),
            )
    ones = tuple(1 if i in (first, second) else n for i, n in enumerate(shape))
    # squeeze(0, 2), torch's several dims as arguments (wxb took one)
    same_as_torch(seeded, rng.standard_normal(ones), lambda t: t.squeeze(first, second))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_var_along_a_dim_with_as_many_values_as_the_correction_as_torchs(seeded, dtype):
    """var(dim, correction=n) divides by 0: the value inf, and torch's gradient
    2(A − mean)/0 = ±inf; wxb's, taken through the mean's node as well, was inf − inf =
    NaN everywhere."""
    rng = seeded.rng
    shape = tuple(int(n) for n in rng.integers(2, 5, size=rng.integers(2, 4)))
    x = rng.standard_normal(shape).astype(dtype)
    dim = int(rng.integers(-len(shape), len(shape)))
    keepdim = bool(rng.integers(2))
    count = shape[dim]
    same_as_torch(seeded, x, lambda t: t.var(dim, correction=count, keepdim=keepdim))
    correction = float(rng.uniform(0, count - 1))  # and the ordinary case, unchanged
    same_as_torch(seeded, x, lambda t: t.var(dim, correction=correction, keepdim=keepdim))
    same_as_torch(seeded, x, lambda t: t.std(dim, correction=correction, keepdim=keepdim))


def test_a_list_of_index_lists_is_refused_not_read_one_way(seeded):
    """x[[rows, cols]] is x[rows, cols] in torch (deprecated: torch will read it as one
    index array, as NumPy does): wxb read it as NumPy's, a (2, k, …) gather of rows where
    torch picks k elements, without a word. Refused for x[...] and x[...] = v; a tuple,
    an array and a plain list of integers index as before."""
    rng = seeded.rng
    shape = tuple(int(n) for n in rng.integers(2, 5, size=3))
    x = rng.standard_normal(shape)
    rows = [int(i) for i in rng.integers(0, shape[0], size=3)]
    cols = [int(i) for i in rng.integers(0, shape[1], size=3)]
    for key in ([rows, cols], [np.array(rows), cols], [rows], [slice(None), 1], [None, 0]):
        with pytest.raises(ShapeError, match="x\\[rows, cols\\]"):
            Tensor(x, requires_grad=True)[key]
        with pytest.raises(ShapeError, match="x\\[rows, cols\\]"):
            Tensor(x.copy())[key] = 0.0
    same_as_torch(seeded, x, lambda t: t[rows, cols])
    same_as_torch(seeded, x, lambda t: t[rows])
    deep = [[int(i) for i in rng.integers(0, shape[2], size=3)]]  # a (1, 3) index array
    same_as_torch(seeded, x, lambda t: t[(rows, slice(None), deep)])
    both = np.array([rows, rows[::-1]])  # one (2, 3) index array into axis 0: NumPy's reading
    np.testing.assert_array_equal(Tensor(x)[both].data, x[both])
