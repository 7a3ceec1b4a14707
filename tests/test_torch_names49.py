"""Methods whose name means one thing in PyTorch and another in NumPy: a PyTorch user
calls torch's methods on wxb's tensors and on the IndexArray wxb hands back for masks,
indices and labels. Where the NumPy meaning answered, the number was silently wrong
(``labels.repeat(2)`` repeated each element where torch tiles, ``len(mask.nonzero())``
counted dims, ``L.max(1)[0]`` was row 0, ``x.transpose(0, 1)`` of a matrix was the
matrix itself). A generated differential test: every public name torch.Tensor shares
with wxb.Tensor or IndexArray (introspected: the list of names is the coverage) is
called torch's ways on random tensors and index/bool arrays of random shapes, and value,
dtype, shape, the Python type of the result and "torch raises <=> wxb raises one line"
are held to torch's. NumPy's own functions on an IndexArray keep NumPy's meaning."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch

import wxb
from wxb.tensor import IndexArray, Tensor, marks


class Arr:
    """An operand array, made a torch tensor on torch's side and wxb's kind on wxb's."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array


def _torch_side(a: object) -> object:
    if isinstance(a, Arr):
        return torch.from_numpy(a.array.copy())
    if isinstance(a, (tuple, list)):
        return type(a)(_torch_side(x) for x in a)
    return a


def _wxb_side(a: object) -> object:
    if isinstance(a, Arr):
        arr = a.array.copy()
        return Tensor(arr) if arr.dtype.kind == "f" else marks(arr)
    if isinstance(a, (tuple, list)):
        return type(a)(_wxb_side(x) for x in a)
    return a


def _made(array: np.ndarray, side: str) -> object:
    if side == "torch":
        return torch.from_numpy(array.copy())
    return Tensor(array.copy()) if array.dtype.kind == "f" else marks(array.copy())


_DTYPE_NAMES = {"float32", "float64", "int64", "int32", "bool", "uint8", "int16", "int8"}


def _plain(r: object) -> object:
    """A result as (kind, …) both libraries' results compare by."""
    if isinstance(r, torch.Tensor):
        r = r.detach()
        return ("tensor", r.numpy(), str(r.dtype).removeprefix("torch."), tuple(r.shape))
    if isinstance(r, Tensor):
        return ("tensor", np.asarray(r.data), r.dtype.name, tuple(r.shape))
    if isinstance(r, np.ndarray):
        return ("tensor", np.asarray(r).view(np.ndarray), r.dtype.name, tuple(r.shape))
    if isinstance(r, np.generic):  # NumPy's scalar stands for torch's 0-d tensor
        return ("tensor", np.asarray(r), r.dtype.name, ())
    if isinstance(r, torch.dtype):
        return ("dtype", str(r).removeprefix("torch."))
    if isinstance(r, np.dtype):
        return ("dtype", r.name)
    if isinstance(r, (tuple, list)):
        return ("sequence", [_plain(x) for x in r])
    if isinstance(r, bool):
        return ("bool", r)
    if isinstance(r, int):
        return ("int", int(r))
    if isinstance(r, float):
        return ("float", r)
    if r is None:
        return ("None",)
    return ("other", type(r).__name__)


def _same(theirs: object, ours: object, scale: float, n: int, ref: str = "torch") -> str | None:
    """None where ``ours`` is ``ref``'s (torch's) ``theirs``; else what differs."""
    if theirs[0] != ours[0]:
        return f"a {ours[0]} where {ref} gives a {theirs[0]}"
    kind = theirs[0]
    if kind == "sequence":
        if len(theirs[1]) != len(ours[1]):
            return f"{len(ours[1])} items where {ref} gives {len(theirs[1])}"
        for i, (t, o) in enumerate(zip(theirs[1], ours[1], strict=True)):
            why = _same(t, o, scale, n, ref)
            if why:
                return f"item {i}: {why}"
        return None
    if kind == "tensor":
        _, tv, td, ts = theirs
        _, ov, od, os_ = ours
        if td != od:
            return f"dtype {od} where {ref}'s is {td}"
        if ts != os_:
            return f"shape {os_} where {ref}'s is {ts}"
        if td in ("float32", "float64"):
            # n-term sums and products: each step rounds by at most eps of the running
            # value, whose size is bounded by n·scale (scale: max |input| or its square)
            eps = float(np.finfo(td).eps)
            ok = np.isclose(ov, tv, rtol=(n + 8) * eps, atol=(n + 8) * eps * scale, equal_nan=True)
            if not np.all(ok):
                return f"values {ov!r} where {ref}'s are {tv!r}"
        elif not np.array_equal(ov, tv):
            return f"values {ov!r} where {ref}'s are {tv!r}"
        return None
    if kind == "float":
        if not np.isclose(theirs[1], ours[1], rtol=(n + 8) * 1.2e-7, atol=1e-6 * scale):
            return f"{ours[1]} where {ref} gives {theirs[1]}"
        return None
    if theirs != ours:
        return f"{ours} where {ref} gives {theirs}"
    return None


# -- the calls each name is given, torch's ways -------------------------------------------
# A spec: (name, rng, shape, dtype) -> [(args, kwargs)]; args may hold Arr operands.
Spec = Callable[[np.random.Generator, tuple, np.dtype], list]


def _dim(rng: np.random.Generator, shape: tuple) -> int:
    n = max(len(shape), 1)  # (a 0-d tensor takes dim 0 and -1, as torch)
    return int(rng.integers(-n, n))


def _dims(rng: np.random.Generator, shape: tuple) -> tuple[int, ...]:
    n = len(shape)
    if n < 2:
        return (_dim(rng, shape),)
    k = int(rng.integers(1, n + 1))
    picked = rng.choice(n, size=k, replace=False)
    return tuple(int(d) - n if rng.random() < 0.5 else int(d) for d in picked)


def _none(rng, shape, dtype):
    return [((), {})]


def _reduce(*, keep: bool = True, tuples: bool = True, none: bool = True) -> Spec:
    def calls(rng, shape, dtype):
        d = _dim(rng, shape)
        out = [((d,), {}), ((), {"dim": d})]
        if none:
            out.append(((), {}))
        if keep:
            out += [((d, True), {}), ((), {"dim": d, "keepdim": True}), ((d,), {"keepdim": False})]
        if tuples and len(shape) >= 2:
            ds = _dims(rng, shape)
            out += [((ds,), {}), ((), {"dim": ds, "keepdim": True})]
        return out

    return calls


def _spread(rng, shape, dtype):  # std and var: torch's unbiased default and its options
    d = _dim(rng, shape)
    out = [((), {}), ((d,), {}), ((d, True), {}), ((d,), {"keepdim": True})]
    out += [((), {"correction": 0}), ((), {"dim": d, "unbiased": False}), ((), {"unbiased": True})]
    if len(shape) >= 2:
        out.append(((_dims(rng, shape),), {}))
    return out


def _sort(rng, shape, dtype):
    d = _dim(rng, shape)
    return [((), {}), ((d,), {}), ((), {"dim": d, "descending": True}), ((d, True), {})]


def _one_dim(rng, shape, dtype):
    d = _dim(rng, shape)
    return [((d,), {}), ((), {"dim": d})]


def _two_dims(rng, shape, dtype):
    a, b = _dim(rng, shape), _dim(rng, shape)
    return [((a, b), {}), ((), {"dim0": a, "dim1": b}), ((0, -1), {})]


def _flatten(rng, shape, dtype):
    s = _dim(rng, shape)
    n = max(len(shape), 1)
    e = int(rng.integers(s % n, n))
    return [((), {}), ((s,), {}), ((s, e), {}), ((), {"start_dim": s, "end_dim": -1})]


def _squeeze(rng, shape, dtype):
    out = [((), {}), ((_dim(rng, shape),), {}), ((), {"dim": _dim(rng, shape)})]
    if len(shape) >= 2:
        out.append(((_dims(rng, shape),), {}))
    return out


def _unsqueeze(rng, shape, dtype):
    d = int(rng.integers(-len(shape) - 1, len(shape) + 1))
    return [((d,), {}), ((), {"dim": d})]


def _unflatten(rng, shape, dtype):
    if not shape:
        return []
    d = _dim(rng, shape)
    n = shape[d]
    sizes = [(n,), (1, n), (n, 1), (-1, 1), (1, -1)][int(rng.integers(5))]
    return [((d, sizes), {}), ((), {"dim": d, "sizes": list(sizes)})]


def _repeat(rng, shape, dtype):
    sizes = tuple(int(rng.integers(1, 4)) for _ in range(len(shape) + int(rng.integers(0, 2))))
    out = [(sizes, {}), ((sizes,), {})] if sizes else [((), {})]
    if len(shape) <= 1:
        out.append(((int(rng.integers(1, 4)),), {}))
    return out


def _round(rng, shape, dtype):
    return [((), {}), ((), {"decimals": int(rng.integers(0, 3))})]


def _clip(rng, shape, dtype):
    if dtype.kind == "b":
        return [((), {"min": False}), ((False, True), {})]
    lo, hi = sorted(int(v) for v in rng.integers(-3, 4, size=2))
    out = [((lo, hi), {}), ((), {"min": lo}), ((), {"max": hi}), ((), {"min": lo, "max": hi})]
    return [*out, ((lo + 0.5,), {})]


def _permutation(rng, shape, dtype):
    order = tuple(int(d) for d in rng.permutation(len(shape)))
    return [(order, {}), ((order,), {})]


def _reshape(rng, shape, dtype):
    size = int(np.prod(shape))
    return [((-1,), {}), ((size,), {}), (((size, 1),), {}), ((1, -1), {})]


def _view(rng, shape, dtype):  # a shape, or torch's dtype: the same bytes read as it
    return [
        *_reshape(rng, shape, dtype),
        ((torch.int32,), {}),
        ((torch.float64,), {}),
        ((torch.uint8,), {}),
    ]


def _size(rng, shape, dtype):
    return [((), {}), ((_dim(rng, shape),), {})] if shape else [((), {})]


def _dtype_arg(rng, shape, dtype):
    return [((torch.float32,), {}), ((torch.int64,), {}), ((), {"dtype": torch.float64})]


def _other_like(rng, shape, dtype):
    return [((Arr(_draw(rng, shape, dtype)),), {})]


def _other_float(rng, shape, dtype):
    return [((Arr(_draw(rng, shape, np.dtype(np.float32))),), {})]


def _take(rng, shape, dtype):
    size = int(np.prod(shape))
    index = rng.integers(-size, size, size=int(rng.integers(1, 5)))
    return [((Arr(index),), {})]


def _put(rng, shape, dtype):
    size = int(np.prod(shape))
    index = rng.choice(size, size=min(size, 2), replace=False)
    source = _draw(rng, index.shape, dtype)
    return [((Arr(index), Arr(source)), {})]


def _topk(rng, shape, dtype):
    if not shape:
        return [((1,), {})]
    d = _dim(rng, shape)
    k = int(rng.integers(1, shape[d] + 1))
    return [((k,), {}), ((k, d), {}), ((k,), {"dim": d, "largest": False})]


def _diagonal(rng, shape, dtype):
    return [((), {}), ((), {"offset": 1}), ((0, 0, -1), {})]


def _unique(rng, shape, dtype):
    """IndexArray's (a Tensor's is compared by tests/test_missing_ops49.py): sorted=False
    too, which torch's CPU kernel sorts as well; along a dim of labels' rows."""
    calls = [((), {}), ((False, True, True), {})]
    if shape:
        calls.append(((), {"dim": _dim(rng, shape), "return_counts": True}))
    return calls


def _chunk(rng, shape, dtype):
    d = _dim(rng, shape)
    return [((int(rng.integers(1, 4)),), {}), ((2, d), {}), ((2,), {"dim": d})]


def _split(rng, shape, dtype):
    d = _dim(rng, shape)
    return [((1,), {}), ((2, d), {}), ((2,), {"dim": d})]


def _expand(rng, shape, dtype):
    return [((2, *shape), {}), (((2, *shape),), {}), ((-1,) * len(shape), {})]


def _new_filled(rng, shape, dtype):
    return [((2, 3), {}), (((2,),), {}), (((1, 2),), {"dtype": torch.float64})]


def _fill(rng, shape, dtype):
    return [((1,), {})] if dtype.kind != "f" else [((0.5,), {})]


def _scalar_op(rng, shape, dtype):
    return [((2,), {}), ((Arr(_draw(rng, shape, dtype)),), {})]


def _type(rng, shape, dtype):
    named = [(("torch.LongTensor",), {}), (("torch.FloatTensor",), {}), (("torch.BoolTensor",), {})]
    return [((), {}), ((torch.float64,), {}), ((), {"dtype": torch.float32}), *named]


def _narrow(rng, shape, dtype):
    if not shape:
        return [((0, 0, 1), {})]
    d = _dim(rng, shape)
    return [((d, 0, 1), {})]


def _gather(rng, shape, dtype):
    if not shape:
        return [((0, Arr(np.zeros((), np.int64))), {})]
    d = _dim(rng, shape)
    index = rng.integers(0, shape[d], size=shape)
    return [((d, Arr(index)), {})]


def _index_select(rng, shape, dtype):
    if not shape:
        return [((0, Arr(np.zeros(1, np.int64))), {})]
    d = _dim(rng, shape)
    return [((d, Arr(rng.integers(0, shape[d], size=3))), {})]


def _masked_fill(rng, shape, dtype):
    return [((Arr(np.asarray(rng.random(shape) < 0.5)), 7.0), {})]


def _matrix_op(rng, shape, dtype):
    return [((Arr(_draw(rng, shape[::-1], dtype)),), {})]


def _movedim(rng, shape, dtype):
    return [((_dim(rng, shape), _dim(rng, shape)), {})]


def _norm(rng, shape, dtype):
    return [((), {}), ((2, _dim(rng, shape)), {}), ((1,), {})]


def _renorm(rng, shape, dtype):
    return [((2, 0, 1.0), {})]


def _softmax(rng, shape, dtype):
    d = _dim(rng, shape)
    return [((d,), {}), ((), {"dim": d})]


def _triangle(rng, shape, dtype):
    return [((), {}), ((1,), {}), ((), {"diagonal": -1})]


def _copy_in(rng, shape, dtype):
    return [((Arr(_draw(rng, shape, dtype)),), {})]


def _nonzero(rng, shape, dtype):
    return [((), {}), ((), {"as_tuple": True}), ((), {"as_tuple": False})]


def _pow(rng, shape, dtype):
    return [((2,), {}), ((0.5,), {})]


def _alpha(rng, shape, dtype):
    return [
        ((Arr(_draw(rng, shape, dtype)),), {}),
        ((Arr(_draw(rng, shape, dtype)),), {"alpha": 2}),
    ]


def _cumulative(rng, shape, dtype):
    d = _dim(rng, shape)
    return [((d,), {}), ((), {"dim": d}), ((), {})]


def _logsumexp(rng, shape, dtype):
    d = _dim(rng, shape)
    return [((d,), {}), ((d, True), {})]


def _unbind(rng, shape, dtype):
    return [((), {}), ((_dim(rng, shape),), {})]


def _max_min(rng, shape, dtype):
    return [*_reduce(tuples=False)(rng, shape, dtype), ((Arr(_draw(rng, shape, dtype)),), {})]


def _dot(rng, shape, dtype):
    return [((Arr(_draw(rng, shape, dtype)),), {})]


SPECS: dict[str, Spec] = {
    # properties and no-argument methods
    **dict.fromkeys(
        [
            "data",
            "T",
            "mT",
            "dtype",
            "ndim",
            "shape",
            "is_cuda",
            "is_leaf",
            "requires_grad",
            "retains_grad",
            "grad",
            "grad_fn",
            "name",
            "itemsize",
            "nbytes",
            "real",
            "imag",
        ],
        None,
    ),
    **dict.fromkeys(
        [
            "abs",
            "ceil",
            "floor",
            "trunc",
            "sign",
            "exp",
            "expm1",
            "log",
            "log10",
            "log1p",
            "log2",
            "sqrt",
            "rsqrt",
            "reciprocal",
            "sigmoid",
            "tanh",
            "relu",
            "cos",
            "sin",
            "square",
            "neg",
            "isfinite",
            "isinf",
            "isnan",
            "bool",
            "int",
            "long",
            "float",
            "double",
            "clone",
            "detach",
            "detach_",
            "contiguous",
            "cpu",
            "dim",
            "numel",
            "item",
            "tolist",
            "t",
            "conj",
            "ravel",
            "trace",
            "abs_",
            "exp_",
            "log_",
            "neg_",
            "sqrt_",
            "relu_",
            "sigmoid_",
            "tanh_",
            "zero_",
            "argwhere",
        ],
        _none,
    ),
    **dict.fromkeys(["sum", "mean", "amax", "amin", "all", "any", "prod"], _reduce()),
    **dict.fromkeys(["argmax", "argmin"], _reduce(tuples=False)),
    **dict.fromkeys(["max", "min"], _max_min),
    **dict.fromkeys(["std", "var"], _spread),
    **dict.fromkeys(["sort", "argsort"], _sort),
    **dict.fromkeys(["cumsum", "cumprod"], _cumulative),
    **dict.fromkeys(["transpose", "swapdims"], _two_dims),
    "swapaxes": lambda r, s, d: [(_two_dims(r, s, d)[0][0], {}), ((), {"axis0": 0, "axis1": -1})],
    "flatten": _flatten,
    "squeeze": _squeeze,
    "unsqueeze": _unsqueeze,
    "unflatten": _unflatten,
    "hardshrink": lambda r, s, d: [((), {}), ((float(r.uniform(0, 2)),), {})],
    "repeat": _repeat,
    "round": _round,
    **dict.fromkeys(["clip", "clamp", "clip_", "clamp_"], _clip),
    **dict.fromkeys(["clamp_min", "clamp_min_"], lambda r, s, d: [((0,), {})]),
    **dict.fromkeys(["clamp_max", "clamp_max_"], lambda r, s, d: [((0,), {})]),
    "permute": _permutation,
    "reshape": _reshape,
    "view": _view,
    "size": _size,
    "to": _dtype_arg,
    "type": _type,
    **dict.fromkeys(["type_as", "view_as", "reshape_as", "expand_as"], _other_like),
    **dict.fromkeys(["eq", "ne", "lt", "le", "gt", "ge", "maximum", "minimum"], _other_like),
    **dict.fromkeys(["remainder", "floor_divide", "mul", "div", "mul_", "div_"], _scalar_op),
    **dict.fromkeys(["add", "sub", "add_", "sub_"], _alpha),
    **dict.fromkeys(["pow", "pow_"], _pow),
    "take": _take,
    "topk": _topk,
    "unique": _unique,
    "diagonal": _diagonal,
    "chunk": _chunk,
    "split": _split,
    "expand": _expand,
    **dict.fromkeys(["new_zeros", "new_ones"], _new_filled),
    "fill_": _fill,
    "narrow": _narrow,
    "gather": _gather,
    "index_select": _index_select,
    **dict.fromkeys(["masked_fill", "masked_fill_"], _masked_fill),
    **dict.fromkeys(["matmul", "mm", "outer"], _matrix_op),
    "bmm": _matrix_op,
    "dot": _dot,
    "movedim": _movedim,
    "norm": _norm,
    **dict.fromkeys(["renorm", "renorm_"], _renorm),
    **dict.fromkeys(["softmax", "log_softmax"], _softmax),
    "logsumexp": _logsumexp,
    **dict.fromkeys(["tril", "triu"], _triangle),
    "copy_": _copy_in,
    "nonzero": _nonzero,
    "flip": lambda r, s, d: [((tuple(range(len(s))),), {}), ((0,), {})],
    "unbind": _unbind,
    "resize": lambda r, s, d: [((int(np.prod(s)),), {})],
    # (torch's own spelling, not refused as ambiguous)
    "put": lambda r, s, d: [*_put(r, s, d), ((*_put(r, s, d)[0][0],), {"accumulate": False})],
}
# Names both sides have that this test does not call, and why.
NOT_CALLED = {
    "backward": "the autograd tests compare it with torch's",
    "requires_grad_": "the autograd tests",
    "retain_grad": "the autograd tests",
    "register_hook": "test_hooks51 compares it with torch's (gradients, order, refusals)",
    "Tensor.data": "a Tensor's holds its NumPy array (wxb's documented difference)",
    "device": "a device object; test_newcomer_hunt48 compares it",
    "cuda": "refused on the CPU; test_newcomer_hunt48",
    "numpy": "gives a NumPy array by design",
    "Tensor.lerp_": "tests/test_subclass54.py: an EMA teacher moved by it trains as torch's",
    # Tensor methods added beside this file, compared with torch (values, gradients,
    # ties, refusals) by tests/test_missing_ops49.py
    **dict.fromkeys(
        [
            f"Tensor.{name}"
            for name in (
                "addmm",
                "baddbmm",
                "cummax",
                "cummin",
                "diag",
                "fmod",
                "kthvalue",
                "lerp",
                "logcumsumexp",
                "median",
                "nan_to_num",
                "nanquantile",
                "quantile",
                "roll",
                "unique",
                "where",
            )
        ],
        "tests/test_missing_ops49.py",
    ),
}

# Left alone, and why: (name, class, 0-d only) -> reason
LEFT_ALONE = {
    ("mT", "Tensor", True): "torch's mT of a 0-d tensor is a deprecated identity (it warns)",
    ("mT", "IndexArray", True): "torch's mT of a 0-d tensor is a deprecated identity (it warns)",
    ("imag", "IndexArray", False): "NumPy's zeros, where torch refuses a real tensor's imag",
}
# Refused in one line that names both meanings: neither can stand for the other without
# a word (torch's gives a new array, NumPy's works in place and gives None)
REFUSED_AS_AMBIGUOUS = {"put": lambda kwargs: "accumulate" not in kwargs, "resize": None}

# Where wxb answers where torch refuses, on purpose (documented in docs/architecture.md)
_ANSWERS_WHERE_TORCH_REFUSES = {
    # (torch: "mean(): could not infer output dtype"); the accuracy idiom
    # (pred == y).mean() gives torch's (pred == y).float().mean()
    ("mean", "IndexArray"),
}


def _draw(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "b":
        return np.asarray(rng.random(shape) < 0.5)
    if dtype.kind == "i":
        return np.asarray(rng.integers(-4, 5, size=shape), dtype=dtype)
    return np.asarray(rng.normal(size=shape), dtype=dtype)


def _shape(rng: np.random.Generator) -> tuple[int, ...]:
    return tuple(int(n) for n in rng.integers(1, 4, size=int(rng.integers(0, 4))))


def _shared_names(kind: type) -> list[str]:
    theirs = {n for n in dir(torch.Tensor) if not n.startswith("_")}
    return sorted(n for n in dir(kind) if not n.startswith("_") and n in theirs)


_INDEXED = {"sort": 1, "argsort": None, "topk": 1}  # ties: indices compared by their values


def _by_values(name: str, result: object, x: object, args: tuple, kwargs: dict) -> object:
    """sort's, argsort's and topk's indices, as the values they pick from x (ties may
    be ordered either way)."""
    if name not in _INDEXED or isinstance(result, BaseException):
        return result
    dim = kwargs.get("dim", args[1] if name == "topk" and len(args) > 1 else None)
    if dim is None and name != "topk":
        dim = args[0] if args else -1
    dim = -1 if dim is None else dim
    array = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if isinstance(result, tuple) and len(result) == 2:
        values, idx = result
        idx_np = idx.numpy() if isinstance(idx, torch.Tensor) else np.asarray(idx)
        picked = np.take_along_axis(array, idx_np, dim) if array.ndim else array
        return (values, np.asarray(picked).view(np.ndarray))
    if name == "argsort" and not isinstance(result, tuple):
        idx_np = result.numpy() if isinstance(result, torch.Tensor) else np.asarray(result)
        if not isinstance(idx_np, np.ndarray) or idx_np.dtype.kind not in "iu":
            return result
        picked = np.take_along_axis(array, idx_np, dim) if array.ndim else array
        return ("argsort picks", picked.tolist(), str(idx_np.dtype))
    return result


def _call(obj: object, name: str, args: tuple, kwargs: dict, spec: Spec | None) -> object:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if spec is None:
                return getattr(obj, name)
            return getattr(obj, name)(*args, **kwargs)
    except Exception as error:  # (any refusal: compared with torch's)
        return error


def mismatches(rng: np.random.Generator, kind: type, dtypes: list, rounds: int) -> list[str]:
    found: list[str] = []
    for name in _shared_names(kind):
        if name in NOT_CALLED or f"{kind.__name__}.{name}" in NOT_CALLED:
            continue
        spec = SPECS[name]
        for _ in range(rounds):
            dtype = np.dtype(dtypes[int(rng.integers(len(dtypes)))])
            shape = _shape(rng)
            array = _draw(rng, shape, dtype)
            calls = [((), {})] if spec is None else spec(rng, shape, dtype)
            for args, kwargs in calls:
                theirs_x, ours_x = _made(array, "torch"), _made(array, "wxb")
                theirs = _call(theirs_x, name, _torch_side(args), _torch_side(kwargs), spec)
                ours = _call(ours_x, name, _wxb_side(args), _wxb_side(kwargs), spec)
                theirs = _by_values(name, theirs, theirs_x, args, kwargs)
                ours = _by_values(name, ours, ours_x, args, kwargs)
                where = f"{kind.__name__}({dtype.name}, shape {shape}).{name}{_shown(args, kwargs)}"
                if any(LEFT_ALONE.get((name, kind.__name__, z)) for z in (False, not shape)):
                    continue
                if _ambiguous(kind, name, kwargs):
                    if not (isinstance(ours, Exception) and _names_both(str(ours))):
                        found.append(f"{where}: not refused naming both meanings: {ours!r:.120}")
                    continue
                why = _compare(theirs, ours, array, name, kind)
                if why is None and not isinstance(theirs, BaseException):
                    # the tensor itself afterwards (NumPy's sort, put, resize work in place)
                    why = _compare(theirs_x, ours_x, array, name, kind)
                    why = why and f"the tensor afterwards: {why}"
                if why:
                    found.append(f"{where}: {why}")
    return found


def _ambiguous(kind: type, name: str, kwargs: dict) -> bool:
    if kind is not IndexArray or name not in REFUSED_AS_AMBIGUOUS:
        return False
    when = REFUSED_AS_AMBIGUOUS[name]
    return when is None or when(kwargs)


def _names_both(message: str) -> bool:
    return "torch's" in message and "NumPy's" in message and "\n" not in message


def _shown(args: tuple, kwargs: dict) -> str:
    def show(a):
        return f"<{a.array.dtype.name} {a.array.shape}>" if isinstance(a, Arr) else repr(a)

    parts = [show(a) for a in args] + [f"{k}={show(v)}" for k, v in kwargs.items()]
    return f"({', '.join(parts)})"


def _compare(theirs: object, ours: object, array: np.ndarray, name: str, kind: type) -> str | None:
    t_raised, o_raised = isinstance(theirs, BaseException), isinstance(ours, BaseException)
    if t_raised and o_raised:
        message = str(ours)
        if "\n" in message.strip() or not message.strip():
            return f"refused without one clear line: {type(ours).__name__}: {message!r}"
        return None
    if t_raised:
        if (name, kind.__name__) in _ANSWERS_WHERE_TORCH_REFUSES:
            return None
        return f"answers {ours!r:.120} where torch refuses ({theirs!s:.120})"
    if o_raised:
        return f"refuses ({type(ours).__name__}: {ours!s:.160}) where torch answers"
    scale = max(1.0, float(np.max(np.abs(array.astype(np.float64))))) ** 2 if array.size else 1.0
    return _same(_plain(theirs), _plain(ours), scale, max(int(array.size), 1))


@pytest.mark.parametrize("kind", [Tensor, IndexArray])
def test_every_shared_name_is_called(kind):
    """The coverage: each public name torch.Tensor shares with this class has calls here
    (or a reason why not), so a new method joins the comparison or fails this test."""
    skipped = {
        n.split(".")[-1] for n in NOT_CALLED if "." not in n or n.startswith(f"{kind.__name__}.")
    }
    missing = [n for n in _shared_names(kind) if n not in SPECS and n not in skipped]
    assert not missing, f"{kind.__name__}: torch's names without calls here: {missing}"
    assert len(_shared_names(kind)) > 50


@pytest.mark.parametrize(
    "kind,dtypes",
    [(Tensor, ["float32", "float64"]), (IndexArray, ["int64", "bool"])],
    ids=["Tensor", "IndexArray"],
)
def test_torchs_names_give_torchs_answers(seeded, kind, dtypes):
    found = mismatches(seeded.rng, kind, dtypes, rounds=3)
    assert not found, seeded.msg(f"{len(found)} differ from torch:\n" + "\n".join(found[:40]))


# torch's methods of integer tensors that an IndexArray (labels, indices) lacked: each
# now joins the comparison above through _shared_names
INTEGER_METHODS = ("abs", "neg", "expand", "new_zeros", "new_ones", "chunk", "split", "topk",
                   "unique", "t", "contiguous")  # fmt: skip


def test_labels_have_torchs_integer_methods(seeded):
    """labels.abs(), .neg(), .expand(…), .new_zeros(…), .chunk/.split, .topk, .unique,
    .t(), .contiguous() were AttributeErrors (NumPy has none of them); now shared, so
    compared with torch above; wxb.unique(labels) gave float32 where torch's is int64."""
    missing = [n for n in INTEGER_METHODS if n not in _shared_names(IndexArray)]
    assert not missing, f"IndexArray lacks torch's {missing}"
    labels = seeded.rng.integers(-3, 9, size=int(seeded.rng.integers(1, 12)))
    for ours, theirs in [
        (wxb.unique(marks(labels.copy()), return_counts=True), torch.unique(
            torch.from_numpy(labels), return_counts=True)),
        (wxb.unique(labels > 2), torch.unique(torch.from_numpy(labels > 2))),
    ]:  # fmt: skip
        why = _same(_plain(theirs), _plain(ours), 1.0, labels.size)
        assert why is None, seeded.msg(why)


def test_the_known_silent_numbers_are_torchs(seeded):
    """The cases met first, each a silent NumPy number before: labels.repeat(2) repeated
    each label ([a, a, b, b]) where torch tiles; len(mask.nonzero()) counted the dims;
    L.max(1)[0] was row 0 of the row maxima; L.transpose(0, 1) of a matrix was the
    matrix itself; L.sort(1) sorted L in place and gave None."""
    rng = seeded.rng
    rows, cols = int(rng.integers(2, 6)), int(rng.integers(2, 6))
    labels = rng.integers(0, 9, size=rows)
    L = rng.integers(-9, 9, size=(rows, cols))
    mask = rng.random((rows, cols)) < 0.5
    ours_l, ours_L, ours_m = marks(labels.copy()), marks(L.copy()), marks(mask.copy())
    t_l, t_L, t_m = torch.from_numpy(labels), torch.from_numpy(L), torch.from_numpy(mask)
    assert ours_l.repeat(2).tolist() == t_l.repeat(2).tolist()
    assert len(ours_m.nonzero()) == len(t_m.nonzero()) == int(mask.sum())
    assert ours_m.nonzero().tolist() == t_m.nonzero().tolist()
    values, indices = ours_L.max(1)
    assert values.tolist() == t_L.max(1)[0].tolist() and ours_L.max(1)[0].shape == (rows,)
    assert indices.tolist() == t_L.max(1)[1].tolist() and indices.dtype == np.int64
    assert ours_L.min(dim=0, keepdim=True).values.tolist() == t_L.min(0, True).values.tolist()
    assert ours_L.transpose(0, 1).tolist() == t_L.transpose(0, 1).tolist()
    got = ours_L.sort(1, descending=True)
    assert got[0].tolist() == t_L.sort(1, descending=True)[0].tolist()
    assert np.array_equal(np.take_along_axis(L, np.asarray(got[1]), 1), got[0])
    assert ours_L.tolist() == L.tolist()  # (unchanged, as torch's)


def test_labels_data_is_the_labels_as_torchs(seeded):
    """Old PyTorch code's ``pred.eq(target.data.view_as(pred)).sum()`` met NumPy's
    ``.data``, a memoryview ("no attribute 'view_as'"), and ``labels.data == y`` was one
    False: torch's ``.data`` is the tensor itself."""
    rng = seeded.rng
    labels = rng.integers(0, 4, size=int(rng.integers(2, 30)))
    pred = rng.integers(0, 4, size=labels.size)
    ours, theirs = marks(labels.copy()), torch.from_numpy(labels)
    ours_pred, theirs_pred = marks(pred.copy()), torch.from_numpy(pred)
    got = ours_pred.eq(ours.data.view_as(ours_pred)).sum().item()
    assert got == theirs_pred.eq(theirs.data.view_as(theirs_pred)).sum().item()
    assert (ours.data == labels).tolist() == (theirs.data == theirs).tolist()


def _numpys_calls(rng: np.random.Generator, a: np.ndarray) -> list[tuple[str, Callable]]:
    """NumPy's functions, several of which call the array's own method of the same
    name (np.nonzero calls a.nonzero(), np.repeat a.repeat(), np.max a.max(axis=…))."""
    axis = int(rng.integers(-a.ndim, a.ndim))
    index = rng.integers(0, a.size, size=3)
    return [
        ("nonzero", lambda x: np.nonzero(x)),
        ("repeat", lambda x: np.repeat(x, 2)),
        ("repeat axis", lambda x: np.repeat(x, 2, axis=axis)),
        ("sort", lambda x: np.sort(x, axis=axis)),
        ("argsort", lambda x: np.argsort(x, axis=axis, kind="stable")),
        ("max", lambda x: np.max(x, axis)),
        ("min", lambda x: np.min(x, axis=axis, keepdims=True)),
        ("amax", lambda x: np.amax(x)),
        ("argmax", lambda x: np.argmax(x, axis)),
        ("std", lambda x: np.std(x)),
        ("var", lambda x: np.var(x, axis=axis)),
        ("round", lambda x: np.round(x, 1)),
        ("take", lambda x: np.take(x, index)),
        ("where", lambda x: np.where(x)),
        ("unique", lambda x: np.unique(x, return_counts=True)),
        ("transpose", lambda x: np.transpose(x)),
        ("squeeze", lambda x: np.squeeze(x)),
        ("all", lambda x: np.all(x, axis)),
        ("any", lambda x: np.any(x, axis, keepdims=True)),
        ("prod", lambda x: np.prod(x, axis)),
        ("cumsum", lambda x: np.cumsum(x)),
        ("clip", lambda x: np.clip(x, 0, 1)),
        ("ravel", lambda x: np.ravel(x)),
        ("trace", lambda x: np.trace(x) if x.ndim >= 2 else np.trace(x.reshape(1, -1))),
        ("resize", lambda x: np.resize(x, (a.size + 1,))),
        ("put", lambda x: (np.put(x, index[:1], 1), x)[1]),
        ("partition", lambda x: np.partition(x, 0, axis=axis)),
        ("flatnonzero", lambda x: np.flatnonzero(x)),
        ("count_nonzero", lambda x: np.count_nonzero(x, axis=axis)),
        ("in-place sort method", lambda x: (x.sort(axis=axis), x)[1]),
        ("flatten order", lambda x: x.flatten("F")),
        (
            "squeeze axis",
            lambda x: x.squeeze(axis=tuple(i for i, n in enumerate(x.shape) if n == 1)),
        ),
    ]


@pytest.mark.parametrize("dtype", ["int64", "bool"])
def test_numpys_own_functions_keep_numpys_meaning(seeded, dtype):
    """NumPy's functions call the array's methods (np.nonzero → a.nonzero(), np.repeat →
    a.repeat(), np.max → a.max(axis=…)): on an IndexArray, where those methods now mean
    torch's, NumPy's functions still give NumPy's answer, as on a plain array; and the
    methods with NumPy's keywords (axis=, kind=, order) give NumPy's."""
    rng = seeded.rng
    shape = tuple(int(n) for n in rng.integers(1, 4, size=int(rng.integers(1, 4))))
    a = _draw(rng, shape, np.dtype(dtype))
    for what, call in _numpys_calls(rng, a):
        plain, ours = a.copy(), marks(a.copy())
        expected, got = (
            _call(call, "__call__", (plain,), {}, _none),
            _call(call, "__call__", (ours,), {}, _none),
        )
        if isinstance(expected, Exception) or isinstance(got, Exception):
            assert type(expected) is type(got), seeded.msg(f"np's {what}: {got!r} for {expected!r}")
            continue
        exp, obtained = _plain(expected), _plain(got)
        why = _same(exp, obtained, 1.0, 1, "NumPy")
        assert why is None, seeded.msg(f"np's {what} of an IndexArray {a.tolist()}: {why}")


def test_a_0d_tensors_gather_of_a_0d_index_is_torchs(seeded):
    """x.gather(0, index) of a 0-d x and a 0-d index was refused ("index of shape () for
    a tensor of ()"), where torch gives the 0-d value and its gradient."""
    value, dim = float(seeded.rng.normal()), int(seeded.rng.choice([0, -1]))
    ours = wxb.tensor(value, dtype="float64", requires_grad=True)
    theirs = torch.tensor(value, dtype=torch.float64, requires_grad=True)
    got, expected = ours.gather(dim, np.array(0)), theirs.gather(dim, torch.tensor(0))
    assert got.shape == tuple(expected.shape) == () and got.item() == expected.item()
    (got * 3).backward()
    (expected * 3).backward()
    assert float(ours.grad) == float(theirs.grad) == 3.0, seeded.msg(f"{ours.grad}")


def test_labels_type_names_and_casts_as_torchs(seeded):
    """``labels.type()`` met "'IndexArray' object has no attribute 'type'" (ported code
    compares it with 'torch.LongTensor'), and a Tensor's type('torch.BoolTensor') was
    refused; both as torch's now."""
    rng = seeded.rng
    values = rng.integers(-3, 4, size=int(rng.integers(1, 9)))
    for array in (values, values.astype(np.int32), values > 0):
        ours, theirs = marks(array.copy()), torch.from_numpy(array.copy())
        assert ours.type() == theirs.type(), seeded.msg(f"{array.dtype}")
        for to in ("torch.FloatTensor", "torch.LongTensor", torch.float64, torch.bool):
            why = _same(_plain(theirs.type(to)), _plain(ours.type(to)), 1.0, 1)
            assert why is None, seeded.msg(f"{array.dtype}.type({to}): {why}")
    floats = rng.normal(size=values.shape)
    why = _same(
        _plain(torch.from_numpy(floats).type("torch.BoolTensor")),
        _plain(Tensor(floats).type("torch.BoolTensor")),
        1.0,
        1,
    )
    assert why is None, seeded.msg(why)
