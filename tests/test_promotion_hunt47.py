"""Result dtypes of mixed operands, against PyTorch's ``torch.result_type``: every binary
operation wxb offers as an operator, a Tensor method and a ``wxb.`` function, on float32
and float64 tensors (dimensioned and 0-d), the integer and boolean arrays wxb gives for
torch's integer tensors (``IndexArray``: ``long()``, argmax, masks), Python numbers and
NumPy scalars; the values, and the dtype and values of each leaf's gradient, too.

wxb's one documented difference: a NumPy float array beside a tensor takes the tensor's
dtype (torch reads a float64 array as a float64 tensor); it holds in every form."""

import operator

import numpy as np
import pytest
import torch

import wxb
from wxb.errors import WxbError
from wxb.tensor import IndexArray, Tensor

FLOATS = ["f32", "f64", "f32 0-d", "f64 0-d"]
WHOLES = ["i32", "i64", "bool", "i64 0-d"]
NUMBERS = ["int", "float", "bool number", "np.float64", "np.int64", "np.float32"]
_NP = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64, "bool": np.bool_}


def _operand(rng, kind, shape=(2, 3)):
    """(wxb's operand, torch's operand, whether it is a leaf that requires grad)."""
    if kind in NUMBERS:
        value = {
            "int": int(rng.integers(1, 5)),
            "float": float(rng.uniform(0.5, 4)),
            "bool number": True,
            "np.float64": np.float64(rng.uniform(0.5, 4)),
            "np.int64": np.int64(rng.integers(1, 5)),
            "np.float32": np.float32(rng.uniform(0.5, 4)),
        }[kind]
        return value, value, False
    dtype = _NP[kind.split()[0]]
    shape = () if kind.endswith("0-d") else shape
    if kind in FLOATS:
        array = rng.uniform(0.5, 4, shape).astype(dtype)
        return (
            Tensor(array.copy(), requires_grad=True),
            torch.tensor(array, requires_grad=True),
            True,
        )
    array = rng.integers(0 if dtype is np.bool_ else 1, 5, shape).astype(dtype)
    return array.view(IndexArray), torch.tensor(array), False


def _torch_dtype(value):
    return str(value.dtype).removeprefix("torch.")


def _boundaries(name, a, b):
    """Where a quotient is within reach of a whole number: floor and remainder jump there,
    and an ulp decides the side (float64 a/b of the operands both sides were given)."""
    if not any(k in name for k in ("//", "%", "remainder", "floor")):
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.asarray(a, dtype=np.float64) / np.asarray(b, dtype=np.float64)
        return np.abs(q - np.round(q)) < 1e-4


def _differs(ours, theirs, scale, skip=None):
    """Beyond a few roundings of the result's dtype (NumPy's and torch's loops each round
    once per operation, pow and its gradient a few ulps more), relative to the result and
    the operands' size (a remainder near 0 is as exact as its operands)."""
    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.broadcast_to(np.asarray(theirs, dtype=np.float64), ours.shape)
    eps = float(np.finfo(np.float32 if scale[1] == np.float32 else np.float64).eps)
    with np.errstate(invalid="ignore"):
        near = np.abs(ours - theirs) <= 16 * eps * (np.abs(theirs) + scale[0])
    fine = near | (ours == theirs) | (np.isnan(ours) & np.isnan(theirs))
    if skip is not None:  # (a 0-d leaf's gradient sums over every place)
        fine |= np.broadcast_to(skip if skip.shape == fine.shape else skip.any(), fine.shape)
    return not fine.all()


def _check(
    rng, name, ours_call, theirs_call, wx, th, leaves, problems, backward=True, refuses=True
):
    """One case: torch's result (skipped where torch refuses it) against wxb's: a refusal
    of wxb's own (a WxbError, or a TypeError naming wxb) passes where ``refuses``, a
    silent difference never."""
    try:
        with np.errstate(all="ignore"):
            theirs = theirs_call(*th)
    except (RuntimeError, TypeError, ZeroDivisionError, NotImplementedError):
        return
    case = f"{name} of {[type(x).__name__ + str(getattr(x, 'dtype', '')) for x in wx]}"
    try:
        with np.errstate(all="ignore"):
            ours = ours_call(*wx)
    except WxbError:
        if refuses:
            return
        raise
    except TypeError as error:
        if refuses and "wxb" in str(error):
            return
        problems.append(f"{case}: {type(error).__name__}: {error}")
        return
    got = np.asarray(ours.data if isinstance(ours, Tensor) else ours)
    if str(got.dtype) != _torch_dtype(theirs) or got.shape != tuple(theirs.shape):
        problems.append(
            f"{case}: {got.dtype}{got.shape}, torch {theirs.dtype}{tuple(theirs.shape)}"
        )
        return
    sizes = [np.max(np.abs(np.asarray(x.detach() if torch.is_tensor(x) else x))) for x in th]
    scale = (float(max(sizes)), np.float32 if got.dtype == np.float32 else np.float64)
    skip = _boundaries(name, *[x.detach() if torch.is_tensor(x) else x for x in th[-2:]])
    if _differs(got, theirs.detach().numpy(), scale, skip):
        problems.append(f"{case}: values {got} != torch's {theirs.detach().numpy()}")
        return
    if not backward or not theirs.requires_grad:
        return
    g = rng.uniform(0.5, 2, got.shape)
    try:
        theirs.backward(torch.tensor(g, dtype=theirs.dtype))
    except RuntimeError:  # (no derivative in torch: 2.5 % t)
        return
    with np.errstate(all="ignore"):
        ours.backward(g.astype(got.dtype))
    for w, t in leaves:
        if t.grad is None:
            continue
        grad = np.asarray(w.grad)
        if grad.dtype != w.dtype or str(grad.dtype) != _torch_dtype(t.grad):
            problems.append(f"{case}: ∂/∂{w.dtype} leaf {grad.dtype}, torch {t.grad.dtype}")
            continue
        coarser = np.float32 if np.float32 in (w.dtype, got.dtype) else np.float64
        if _differs(grad, t.grad.numpy(), (float(np.max(np.abs(g))) * scale[0], coarser), skip):
            problems.append(f"{case}: ∂/∂{w.dtype} leaf {grad} != torch's {t.grad.numpy()}")


def _where(mask):
    return (
        lambda a, b: wxb.where(mask, a, b),
        lambda a, b: torch.where(torch.tensor(mask), a, b),
    )


BINARY = {  # name: (wxb's, torch's), each called with the two operands
    "+": (operator.add, operator.add),
    "-": (operator.sub, operator.sub),
    "*": (operator.mul, operator.mul),
    "/": (operator.truediv, operator.truediv),
    "//": (operator.floordiv, operator.floordiv),
    "%": (operator.mod, operator.mod),
    "**": (operator.pow, operator.pow),
    "maximum": (wxb.maximum, torch.maximum),
    "minimum": (wxb.minimum, torch.minimum),
    "pow": (wxb.pow, torch.pow),
    "remainder": (wxb.remainder, torch.remainder),
    "floor_divide": (wxb.floor_divide, torch.floor_divide),
    "clamp min": (lambda a, b: wxb.clamp(a, min=b), lambda a, b: torch.clamp(a, min=b)),
    "clamp max": (lambda a, b: wxb.clamp(a, max=b), lambda a, b: torch.clamp(a, max=b)),
}
METHODS = {  # called on a float tensor
    ".add": lambda a, b: a.add(b, alpha=2),
    ".sub": lambda a, b: a.sub(b),
    ".mul": lambda a, b: a.mul(b),
    ".div": lambda a, b: a.div(b),
    "div floor": lambda a, b: a.div(b, rounding_mode="floor"),
    ".pow": lambda a, b: a.pow(b),
    ".remainder": lambda a, b: a.remainder(b),
    ".maximum": lambda a, b: a.maximum(b),
    ".minimum": lambda a, b: a.minimum(b),
    ".clamp": lambda a, b: a.clamp(min=b),
    ".clamp_max": lambda a, b: a.clamp_max(b),
}


def test_binary_operations_give_torchs_dtypes_values_and_gradients(seeded):
    # wxb.maximum(labels, s) with s a 0-d float64 tensor came out float32 (the array made
    # a float32 tensor on its own first; torch: float64), and a 0-d float64 x clamped
    # between float32 bounds float64 (torch: float32): every pair, every form
    rng, problems = seeded.rng, []
    mask = rng.random((2, 3)) < 0.5
    forms = {**BINARY, "where": _where(mask)}
    for name, (ours, theirs) in {**forms, **{n: (m, m) for n, m in METHODS.items()}}.items():
        for first in FLOATS + WHOLES + NUMBERS:
            for second in FLOATS + WHOLES + NUMBERS:
                if first not in FLOATS and (second not in FLOATS or name in METHODS):
                    continue  # a float tensor among them (the receiver of a method)
                (wa, ta, la), (wb, tb, lb) = _operand(rng, first), _operand(rng, second)
                leaves = [(w, t) for w, t, leaf in ((wa, ta, la), (wb, tb, lb)) if leaf]
                _check(rng, name, ours, theirs, (wa, wb), (ta, tb), leaves, problems, name != "//")
    assert not problems, seeded.msg(f"{len(problems)} differ from torch:\n" + "\n".join(problems))


def test_clamp_between_two_tensor_bounds_gives_torchs_dtype_and_gradients(seeded):
    # the three operands by one rule: a 0-d float64 value between dimensioned float32
    # bounds is float32 in torch; wxb cast the bounds alone and gave float64
    rng, problems = seeded.rng, []
    for kinds in [(a, lo, hi) for a in FLOATS for lo in FLOATS + WHOLES for hi in FLOATS]:
        made = [_operand(rng, kind) for kind in kinds]
        wx, th = [m[0] for m in made], [m[1] for m in made]
        leaves = [(m[0], m[1]) for m in made if m[2]]
        _check(rng, "clamp", wxb.clamp, torch.clamp, wx, th, leaves, problems)
    assert not problems, seeded.msg("\n".join(problems))


def test_integer_arrays_with_numbers_give_torchs_dtypes(seeded):
    # labels * 0.5, correct / n, mask * np.float64(0.1): torch's integer tensors give
    # float32; wxb's integer arrays followed NumPy's rule, float64 (and int32 labels + a
    # 0-d int64 gave int64, torch: int32)
    rng, problems = seeded.rng, []
    arithmetic = {name: BINARY[name] for name in ("+", "-", "*", "/", "//", "%", "**")}
    for name, (ours, theirs) in arithmetic.items():
        for first in WHOLES + NUMBERS:
            for second in WHOLES + NUMBERS:
                if first not in WHOLES and second not in WHOLES:
                    continue
                (wa, ta, _), (wb, tb, _) = _operand(rng, first), _operand(rng, second)
                _check(rng, name, ours, theirs, (wa, wb), (ta, tb), [], problems)
                try:
                    with np.errstate(all="ignore"):
                        kind = type(ours(wa, wb))
                except TypeError:  # (bool − bool: NumPy's refusal, as torch's)
                    continue
                if kind is not IndexArray:  # (with torch's .float(), .long(), …)
                    problems.append(f"{first} {name} {second}: a {kind.__name__}")
    assert not problems, seeded.msg(f"{len(problems)} differ from torch:\n" + "\n".join(problems))


def test_a_numpy_float_array_beside_a_tensor_takes_its_dtype_in_every_form(seeded):
    # wxb's documented rule (torch would read the array as a float64 tensor): x + a,
    # x.maximum(a) kept float32, but wxb.maximum(a, x), wxb.pow(a, x), wxb.dot(a, v) and
    # wxb.clamp(a, min=x) made the array a float64 tensor first and gave float64
    rng = seeded.rng
    array = rng.uniform(0.5, 4, (3, 3))
    forms = {
        "a + x": lambda a, x: a + x,
        "x - a": lambda a, x: x - a,
        "a ** x": lambda a, x: a**x,
        "x.maximum(a)": lambda a, x: x.maximum(a),
        "wxb.maximum(a, x)": wxb.maximum,
        "wxb.minimum(a, x)": wxb.minimum,
        "wxb.pow(a, x)": wxb.pow,
        "wxb.remainder(a, x)": wxb.remainder,
        "wxb.floor_divide(a, x)": wxb.floor_divide,
        "wxb.matmul(a, x)": wxb.matmul,
        "wxb.clamp(a, min=x)": lambda a, x: wxb.clamp(a, min=x),
        "wxb.where(m, a, x)": lambda a, x: wxb.where(a > 2, a, x),
        "wxb.dot(a[0], x[0])": lambda a, x: wxb.dot(a[0], x[0]),
    }
    theirs = {
        "a + x": lambda a, x: a + x,
        "x - a": lambda a, x: x - a,
        "a ** x": lambda a, x: a**x,
        "x.maximum(a)": lambda a, x: x.maximum(a),
        "wxb.maximum(a, x)": torch.maximum,
        "wxb.minimum(a, x)": torch.minimum,
        "wxb.pow(a, x)": torch.pow,
        "wxb.remainder(a, x)": torch.remainder,
        "wxb.floor_divide(a, x)": torch.floor_divide,
        "wxb.matmul(a, x)": torch.matmul,
        "wxb.clamp(a, min=x)": lambda a, x: torch.clamp(a, min=x),
        "wxb.where(m, a, x)": lambda a, x: torch.where(a > 2, a, x),
        "wxb.dot(a[0], x[0])": lambda a, x: torch.dot(a[0], x[0]),
    }
    for dtype in (np.float32, np.float64):
        for shape in ((3, 3), ()):
            if shape == () and dtype == np.float64:
                continue  # (float64 already: nothing to narrow)
            values = rng.uniform(0.5, 4, shape).astype(dtype)
            problems = []
            for name, form in forms.items():
                if shape == () and ("matmul" in name or "dot" in name):
                    continue
                x, tx = (
                    Tensor(values.copy(), requires_grad=True),
                    torch.tensor(values, requires_grad=True),
                )
                # torch's answer for the array read in the tensor's dtype, as wxb reads it
                ta = torch.tensor(array.astype(dtype))
                _check(rng, name, form, theirs[name], (array, x), (ta, tx), [(x, tx)], problems,
                       "floor_divide" not in name)  # fmt: skip
            assert not problems, seeded.msg(f"{dtype.__name__} {shape}:\n" + "\n".join(problems))


def test_numpy_on_the_left_of_floor_divide_remainder_and_maximum_runs_as_the_tensors_own(
    seeded,
):
    # labels // t, np.float64(7.5) % t, np.maximum(array, t): NumPy hands them to the
    # tensor, which refused them ("np.remainder on a wxb Tensor would … cut the graph")
    # where labels + t and np.float64(2) * t ran, and torch runs them all
    rng, problems = seeded.rng, []
    forms = {
        "//": (operator.floordiv, operator.floordiv),
        "%": (operator.mod, operator.mod),
        "np.maximum": (np.maximum, torch.maximum),
        "np.minimum": (np.minimum, torch.minimum),
    }
    for name, (ours, theirs) in forms.items():
        for kind in FLOATS:
            for left in ["i64", "i32", "bool", "i64 0-d", "np.float64", "np.int64", "np.float32"]:
                if name.startswith("np.") and left in NUMBERS:
                    continue  # (torch.maximum takes tensors only)
                (wa, ta, _), (wx, tx, _) = _operand(rng, left), _operand(rng, kind)
                leaves = [(wx, tx)]
                _check(rng, name, ours, theirs, (wa, wx), (ta, tx), leaves, problems,
                       backward=name != "//", refuses=False)  # fmt: skip
    assert not problems, seeded.msg("\n".join(problems))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_hand_made_soft_targets_keep_the_models_dtype_as_torchs(seeded, dtype):
    # label smoothing by hand, F.one_hot(y, C) * (1 − ε) + ε / C, was float64 (NumPy's
    # rule for an int64 array times a Python float): torch's is float32, and the loss
    # against float32 logits float32 too
    rng = seeded.rng
    y = rng.integers(0, 4, 8)
    logits = rng.normal(size=(8, 4)).astype(dtype)
    eps = float(rng.uniform(0.05, 0.2))
    soft = wxb.nn.functional.one_hot(y, 4) * (1 - eps) + eps / 4
    theirs = torch.nn.functional.one_hot(torch.tensor(y), 4) * (1 - eps) + eps / 4
    assert str(soft.dtype) == _torch_dtype(theirs) == "float32", seeded.msg(str(soft.dtype))
    np.testing.assert_array_equal(soft, theirs.numpy(), err_msg=seeded.msg("soft targets"))
    z, tz = Tensor(logits.copy(), requires_grad=True), torch.tensor(logits, requires_grad=True)
    loss = wxb.nn.functional.cross_entropy(z, soft)
    their_loss = torch.nn.functional.cross_entropy(tz, theirs)
    loss.backward()
    their_loss.backward()
    assert str(loss.dtype) == _torch_dtype(their_loss) == dtype, seeded.msg(str(loss.dtype))
    assert z.grad.dtype == np.dtype(dtype)
    tolerance = 64 * float(np.finfo(dtype).eps)  # log-softmax's few roundings, summed rows
    np.testing.assert_allclose(loss.item(), their_loss.item(), rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(z.grad, tz.grad.numpy(), rtol=tolerance, atol=tolerance / 8)
