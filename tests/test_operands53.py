"""Random expressions mixing wxb tensors (float32/float64, 0-d to 3-d, requiring grad or
not, transposed, strided, sliced and broadcast views) with NumPy arrays of every float
and integer dtype (0-d, strided, read-only, Fortran order), NumPy scalars and Python
numbers, on either side of each operator, in place, and in wxb's functions; each against
PyTorch: the result's dtype, its values and every leaf's gradient.

The dtype is torch's ``result_type`` under wxb's one documented difference (README,
"Conventions"): an array beside a wxb tensor counts as a number of its kind. Values come
from a grid of quarters (exact in every float dtype, so an array read in float32 is the
array), and PyTorch computes the reference in float64."""

import operator

import numpy as np
import pytest
import torch

import wxb
from wxb.errors import WxbError
from wxb.tensor import Tensor

FLOAT_TENSORS = (np.float32, np.float64)
ARRAY_DTYPES = (
    np.float16,
    np.float32,
    np.float64,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.bool_,
)
_TORCH = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


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


class Operand:
    """One operand as wxb gets it (``ours``), the float64 torch tensor the reference
    computes with (``theirs``), a stand-in of its kind for torch's ``result_type``
    (``kind``), and the leaves whose gradients are compared."""

    def __init__(self, ours, theirs, kind, is_tensor, leaf=None, text=""):
        self.ours, self.theirs, self.kind = ours, theirs, kind
        self.is_tensor, self.leaf, self.text = is_tensor, leaf, text

    def __repr__(self):
        return self.text


def _tensor(rng, shape, form=None):
    """A wxb tensor of ``shape`` (float32 or float64, requiring grad or not), as the
    leaf itself or a view of a larger leaf: transposed, strided, sliced, broadcast."""
    dtype = FLOAT_TENSORS[rng.integers(2)]
    grad = bool(rng.integers(2))
    form = form or rng.choice(["leaf", "transposed", "strided", "broadcast", "computed"])
    if len(shape) < 2 and form == "transposed":
        form = "strided" if shape else "leaf"
    if not shape and form in ("strided", "broadcast"):
        form = "leaf"
    if form == "transposed":
        base = _grid(rng, shape[::-1], dtype)
        view = lambda t: t.permute(*reversed(range(len(shape))))  # noqa: E731
    elif form == "strided":  # every other row of a longer one
        base = _grid(rng, (2 * shape[0], *shape[1:]), dtype)
        view = lambda t: t[::2]  # noqa: E731
    elif form == "broadcast":  # a size-1 leading dim expanded
        base = _grid(rng, (1, *shape[1:]), dtype)
        view = lambda t: t.expand(*shape)  # noqa: E731
    elif form == "computed":  # not a leaf: the product of one
        base = _grid(rng, shape, dtype)
        view = lambda t: t * 1.0  # noqa: E731
    else:
        base = _grid(rng, shape, dtype)
        view = lambda t: t  # noqa: E731
    leaf = Tensor(base.copy(), requires_grad=grad)
    twin = torch.tensor(base.astype(np.float64), requires_grad=grad)
    kind = torch.zeros(shape, dtype=_TORCH[np.dtype(dtype)])
    text = f"{np.dtype(dtype)}{tuple(shape)} {form}{' grad' if grad else ''}"
    return Operand(view(leaf), view(twin), kind, True, (leaf, twin) if grad else None, text)


def _array(rng, shape):
    """A NumPy array of ``shape`` of any dtype: plain, 0-d, strided, transposed,
    read-only, Fortran order, or a broadcast view."""
    dtype = np.dtype(ARRAY_DTYPES[rng.integers(len(ARRAY_DTYPES))])
    form = rng.choice(["plain", "strided", "read-only", "fortran", "transposed", "broadcast"])
    if form == "strided" and shape:
        array = _grid(rng, (2 * shape[0], *shape[1:]), dtype)[::2]
    elif form == "broadcast" and shape:  # np.broadcast_to's read-only view, stride 0
        array = np.broadcast_to(_grid(rng, (1, *shape[1:]), dtype), shape)
    elif form == "transposed" and len(shape) >= 2:
        array = _grid(rng, shape[::-1], dtype).T
    else:
        array = _grid(rng, shape, dtype)
        if form == "fortran":
            array = np.asfortranarray(array)
        elif form == "read-only":
            array.setflags(write=False)
    return Operand(
        array,
        torch.tensor(array.astype(np.float64)),
        _stand_in(dtype),
        False,
        text=f"ndarray {dtype}{array.shape} {form}",
    )


def _stand_in(dtype):
    """What torch's result_type counts an array beside a tensor as: a number of its kind."""
    return {"b": True, "i": 1, "u": 1, "f": 1.0}[np.dtype(dtype).kind]


def _number(rng):
    kind = rng.choice(["int", "float", "bool", "np.float32", "np.float64", "np.int64"])
    value = float(_grid(rng, ()))
    value = {
        "int": int(np.sign(value) * np.ceil(abs(value))),
        "float": value,
        "bool": bool(rng.integers(2)),
        "np.float32": np.float32(value),
        "np.float64": np.float64(value),
        "np.int64": np.int64(np.sign(value) * np.ceil(abs(value))),
    }[kind]
    stand = value.item() if isinstance(value, np.generic) else value
    return Operand(
        value,
        torch.tensor(float(stand), dtype=torch.float64),
        stand,
        False,
        text=f"{kind} {value!r}",
    )


def _shape(rng):
    return tuple(int(n) for n in rng.integers(1, 4, rng.integers(0, 4)))


def _part_of(rng, shape):
    """A shape that broadcasts to ``shape``: leading dims dropped, some set to 1."""
    part = shape[rng.integers(0, len(shape) + 1) :]
    return tuple(1 if rng.random() < 0.3 else n for n in part)


def _any_operand(rng, shape, tensor=False):
    pick = "tensor" if tensor else rng.choice(["tensor", "array", "number"], p=[0.4, 0.4, 0.2])
    if pick == "number":
        return _number(rng)
    return (_tensor if pick == "tensor" else _array)(rng, _part_of(rng, shape))


def _expected_dtype(operands, comparison=False):
    """torch's result dtype, where each array beside a wxb tensor counts as a number of
    its kind (torch.where promotes its two values by result_type, and folds a third)."""
    if comparison:
        return torch.bool
    always = torch.tensor(True)
    stand = [o.kind for o in operands]
    dtype = stand[0]
    for other in stand[1:]:
        dtype = torch.where(always, dtype, other)
    return dtype.dtype


def _loss_of(out, g):
    return (out * g).sum()


def _eps(dtype):
    return float(np.finfo(np.float32 if dtype in (np.float32, torch.float32) else np.float64).eps)


def _check(
    seeded, name, ours_call, torch_call, operands, terms=1, grads=True, dtype=None, coarse=False
):
    """One case: a refusal of wxb's own where torch refuses passes; the dtype, values and
    gradients otherwise match the float64 reference to a few roundings of the result's
    dtype (``terms``: the products a value adds up, as a matmul's contracted length;
    ``coarse``: a float32 step inside, whose roundings a float64 result keeps)."""
    case = f"{name} of {operands}"
    try:
        expected = dtype or _expected_dtype(operands, comparison=name in COMPARISONS)
        reference = torch_call(*[o.theirs for o in operands])
    except (RuntimeError, TypeError):  # torch refuses it: so may wxb
        try:
            with np.errstate(all="ignore"):
                ours_call(*[o.ours for o in operands])
        except (WxbError, TypeError):
            pass
        return
    with np.errstate(all="ignore"):
        got = ours_call(*[o.ours for o in operands])
    assert isinstance(got, (Tensor, np.ndarray)), seeded.msg(f"{case}: a {type(got).__name__}")
    data = got.data if isinstance(got, Tensor) else got
    want = reference.detach().numpy()
    if expected == torch.bool:
        assert data.dtype == np.bool_, seeded.msg(f"{case}: {data.dtype}, torch bool")
        np.testing.assert_array_equal(data, want, err_msg=seeded.msg(case))
        return
    assert isinstance(got, Tensor), seeded.msg(f"{case}: a {type(got).__name__}, not a Tensor")
    assert str(data.dtype) == str(expected).removeprefix("torch."), seeded.msg(
        f"{case}: {data.dtype}, torch {expected}"
    )
    assert data.shape == tuple(want.shape), seeded.msg(f"{case}: {data.shape} vs {want.shape}")
    eps = _eps(np.float32 if coarse else data.dtype)
    # each value is one rounding of the exact result (pow: a few), plus the rounding of
    # each of the ``terms`` products it adds up, each at most the operands' size squared
    scale = terms * max(
        [4.0] + [float(np.max(np.abs(o.theirs.detach().numpy()), initial=0)) ** 2 for o in operands]
    )
    close = np.isclose(
        data, want, rtol=8 * eps, atol=8 * eps * (scale if terms > 1 else 0), equal_nan=True
    )
    assert close.all(), seeded.msg(f"{case}: values {data} != torch's {want}")
    leaves = [o.leaf for o in operands if o.leaf is not None]
    if not grads or not leaves or not reference.requires_grad:
        return
    g = _grid(seeded.rng, data.shape, np.float64)
    try:
        _loss_of(reference, torch.tensor(g)).backward()
    except RuntimeError:  # (torch's backward of clamp's 0-d bounds fails to broadcast)
        return
    with np.errstate(all="ignore"):
        _loss_of(got, g.astype(data.dtype)).backward()
    for ours, theirs in leaves:
        if theirs.grad is None:
            continue
        assert ours.grad is not None, seeded.msg(f"{case}: no gradient for {ours!r}")
        assert ours.grad.dtype == ours.dtype, seeded.msg(
            f"{case}: ∂/∂leaf is {ours.grad.dtype}, the leaf {ours.dtype}"
        )
        # a leaf's gradient adds up to (result size / leaf size) terms, each at most
        # |g|·|∂out/∂leaf|; on quarters in [−2, 2], |∂out/∂leaf| ≤ 16·max(1, |out|)
        count = terms * max(1, data.size // max(ours.data.size, 1))
        bound = (
            2
            * 16
            * max(1.0, float(np.nanmax(np.abs(np.where(np.isfinite(want), want, 0)), initial=0)))
        )
        coarser = np.float32 if coarse or np.float32 in (data.dtype, ours.dtype) else np.float64
        atol = 4 * _eps(coarser) * count * bound
        want_grad = theirs.grad.numpy()
        close = np.isclose(ours.grad, want_grad, rtol=0, atol=atol, equal_nan=True)
        assert close.all(), seeded.msg(f"{case}: ∂/∂leaf {ours.grad} != torch's {want_grad}")


COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
BINARY = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _binary_cases(seeded, count):
    # every operator, the tensor on either side
    rng = seeded.rng
    for _ in range(count):
        name = rng.choice(list(BINARY))
        shape = _shape(rng)
        pair = [_any_operand(rng, shape, tensor=True), _any_operand(rng, shape)]
        if rng.random() < 0.5:  # the tensor on either side
            pair.reverse()
        op = BINARY[name]
        _check(seeded, name, op, op, pair, grads=name != "//")


def _matmul_shapes(rng):
    n = int(rng.integers(1, 4))
    left = [
        (n,),
        (int(rng.integers(1, 4)), n),
        (int(rng.integers(1, 3)), int(rng.integers(1, 4)), n),
    ]
    right_cols = int(rng.integers(1, 4))
    right = [(n,), (n, right_cols), (int(rng.integers(1, 3)), n, right_cols)]
    a, b = left[rng.integers(3)], right[rng.integers(3)]
    if len(a) == 3 and len(b) == 3:
        b = (a[0], *b[1:])
    return a, b, n


def _matmul_cases(seeded, count):
    # X @ w, w @ X, an array on either side (NumPy's matmul hands it to the tensor)
    rng = seeded.rng
    for _ in range(count):
        a_shape, b_shape, n = _matmul_shapes(rng)
        make = [[_tensor, _array], [_array, _tensor], [_tensor, _tensor]][rng.integers(3)]
        pair = [make[0](rng, a_shape), make[1](rng, b_shape)]
        name = rng.choice(["@", "wxb.matmul"])
        ours, theirs = (operator.matmul,) * 2 if name == "@" else (wxb.matmul, torch.matmul)
        _check(seeded, name, ours, theirs, pair, terms=n)


FUNCTIONS = {
    "wxb.maximum": (wxb.maximum, torch.maximum, 2),
    "wxb.minimum": (wxb.minimum, torch.minimum, 2),
    "wxb.where": (None, None, 2),
    "clamp(min=, max=)": (
        lambda x, lo, hi: wxb.clamp(x, min=lo, max=hi),
        lambda x, lo, hi: torch.clamp(x, min=lo, max=hi),
        3,
    ),
    "t.clamp(min=)": (lambda x, lo: x.clamp(min=lo), lambda x, lo: torch.clamp(x, min=lo), 2),
    "t.clamp(max=)": (lambda x, hi: x.clamp(max=hi), lambda x, hi: torch.clamp(x, max=hi), 2),
}


def _function_cases(seeded, count):
    # maximum, minimum, where, clamp with array, number and tensor bounds, either order
    rng = seeded.rng
    for _ in range(count):
        name = rng.choice(list(FUNCTIONS))
        ours, theirs, count = FUNCTIONS[name]
        shape = _shape(rng)
        operands = [_tensor(rng, _part_of(rng, shape))]
        operands += [_any_operand(rng, shape) for _ in range(count - 1)]
        if name.startswith("wxb.m") and not isinstance(operands[1].ours, (Tensor, np.ndarray)):
            continue  # (torch.maximum takes tensors only: NumPy's arrays are torch's)
        if "clamp" in name:
            if any(isinstance(o.ours, (bool, np.bool_)) for o in operands):
                continue  # (a bool bound: torch refuses it)
        elif name == "wxb.where":
            mask = rng.random(shape) < 0.5
            ours = lambda a, b, m=mask: wxb.where(m, a, b)  # noqa: E731
            theirs = lambda a, b, m=mask: torch.where(torch.tensor(m), a, b)  # noqa: E731
        if "clamp" not in name and rng.random() < 0.5:
            operands.reverse()
        _check(seeded, name, ours, theirs, operands)


IN_PLACE = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "**=": operator.ipow,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
}


def _in_place_cases(seeded, count):
    # t op= x keeps t's dtype and changes t's own array, as torch's in-place ops: t %= x
    # and t //= x rebound the name to a new tensor (Python's fallback, t = t % x), so a
    # parameter changed that way under no_grad, or a view's base, kept its old values
    rng = seeded.rng
    for _ in range(count):
        name = rng.choice(list(IN_PLACE))
        shape = _shape(rng)
        target = _tensor(rng, shape, form=rng.choice(["leaf", "computed"]))
        if target.leaf is not None and target.ours is target.leaf[0]:
            continue  # (a leaf that requires grad: refused in place, by torch too)
        other = _any_operand(rng, shape)
        op = IN_PLACE[name]
        expected = target.kind.dtype
        before = target.ours
        checked = _InPlace(op, before)
        _check(seeded, name, checked, op, [target, other], grads=name != "//=", dtype=expected)
        if checked.result is not None:
            assert checked.result is before, seeded.msg(f"{name}: a new tensor, not t itself")


class _InPlace:
    def __init__(self, op, target):
        self.op, self.target, self.result = op, target, None

    def __call__(self, *operands):
        self.result = self.op(*operands)
        return self.result


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


def _joining_cases(seeded, count):
    # wxb.cat / wxb.stack / np.concatenate / np.stack of tensors of either dtype with arrays of any
    # dtype: the widest tensor's dtype, each tensor's gradient its slice
    rng = seeded.rng
    for _ in range(count):
        shape = tuple(int(n) for n in rng.integers(1, 4, rng.integers(1, 4)))
        parts = [_tensor(rng, shape)]
        parts += [
            (_tensor if rng.random() < 0.5 else _array)(rng, shape)
            for _ in range(rng.integers(1, 3))
        ]
        rng.shuffle(parts)
        dim = int(rng.integers(-len(shape), len(shape)))
        name = rng.choice(["wxb.cat", "wxb.stack", "np.concatenate", "np.stack"])
        ours = {
            "wxb.cat": wxb.cat,
            "wxb.stack": wxb.stack,
            "np.concatenate": np.concatenate,
            "np.stack": np.stack,
        }[name]
        theirs = torch.cat if "cat" in name else torch.stack
        tensors = [p for p in parts if p.is_tensor]
        dtype = max((p.kind.dtype for p in tensors), key=lambda d: d.itemsize)
        _check(
            seeded,
            name,
            lambda *xs, join=ours, dim=dim: join(list(xs), dim),
            lambda *xs, join=theirs, dim=dim: join(list(xs), dim),
            parts,
            dtype=dtype,
        )


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


CHAIN = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


def _chain_cases(seeded, count):
    # (a op b) op c: a graph of two steps, each with a tensor among its operands (the
    # first step's tensor first drawn, so that NumPy's own arithmetic is never the step)
    rng = seeded.rng
    for _ in range(count):
        first, second = rng.choice(list(CHAIN), 2)
        shape = _shape(rng)
        operands = [_any_operand(rng, shape, tensor=True)]
        operands += [_any_operand(rng, shape), _any_operand(rng, shape)]
        swap = bool(rng.integers(2))

        def chained(a, b, c, f=CHAIN[first], h=CHAIN[second], swap=swap):
            return h(c, f(a, b)) if swap else h(f(a, b), c)

        # the dtype step by step: the first step's result is a tensor of its shape
        step = _expected_dtype(operands[:2])
        inner = np.broadcast_shapes(*(np.shape(o.ours) for o in operands[:2]))
        inner = Operand(None, None, torch.zeros(inner, dtype=step), True)
        dtype = _expected_dtype([operands[2], inner] if swap else [inner, operands[2]])
        coarse = any(o.is_tensor and o.kind.dtype == torch.float32 for o in operands)
        name = f"(a {first} b) {second} c, swapped {swap}"
        # two roundings: the inner step's, of up to 8 (quarters in [−2, 2], a quotient
        # by 0.25 at most), is kept whole where the outer one cancels (c − a/b: 1.25 −
        # float32(1.2) = 0.04999995, the float64 reference 0.05), as terms=2 bounds it
        _check(seeded, name, chained, chained, operands, dtype=dtype, coarse=coarse, terms=2)


def test_random_expressions_of_tensors_arrays_and_numbers_give_torchs(seeded):
    # found: clamp between bounds that broadcast beyond the input raised NumPy's error in
    # its backward; t %= x and t //= x gave a new tensor, t itself unchanged
    _binary_cases(seeded, 400)
    _matmul_cases(seeded, 150)
    _function_cases(seeded, 250)
    _in_place_cases(seeded, 300)
    _joining_cases(seeded, 100)
    _chain_cases(seeded, 200)
