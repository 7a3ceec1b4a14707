"""torch's functions by torch's names, for a script ported from ``import torch``:
``wxb.cat``, ``wxb.zeros``, ``wxb.randn``, ``wxb.exp``, ``wxb.softmax``, ``wxb.where``, …

Each is the tensor method of the same name (``wxb.exp(t)`` is ``t.exp()``) or one of
``wxb.ops``'s primitives, so values and gradients are theirs; the constructors give
float32 leaves by default, as torch's, and draw from the generator ``wxb.manual_seed``
seeds."""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable, Sequence

import numpy as np

from wxb import ops
from wxb.backend import check_device, device, resolve_dtype
from wxb.errors import ConfigError, DataError, WxbError
from wxb.random import as_generator
from wxb.tensor import IndexArray, Tensor, float_array, marks, refuse_bool_sign

float32 = np.dtype(np.float32)  # torch.float32's place: dtype=wxb.float32, t.dtype == wxb.float32
float64 = np.dtype(np.float64)
double = float64


class _Cuda:
    """``torch.cuda``'s questions a ported script asks first: no GPU here, so
    ``device = "cuda" if wxb.cuda.is_available() else "cpu"`` picks the CPU."""

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def device_count() -> int:
        return 0

    # A ported set_seed() calls these unguarded; torch ignores them without a GPU, and so
    # does wxb (wxb.manual_seed seeds what wxb draws)
    @staticmethod
    def manual_seed(seed: int) -> None:
        return None

    manual_seed_all = manual_seed


cuda = _Cuda()


class _Accelerator:
    """``torch.accelerator`` (PyTorch 2.6's Quickstart: ``device = torch.accelerator.
    current_accelerator().type if torch.accelerator.is_available() else "cpu"``): none
    here, as torch's on a machine without one, so that line picks the CPU."""

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def current_accelerator(check_available: bool = False) -> None:
        return None  # torch's answer where there is none

    @staticmethod
    def device_count() -> int:
        return 0


accelerator = _Accelerator()


# -- constructors -------------------------------------------------------------------
def _shape(size: tuple, what: str) -> tuple[int, ...]:
    """``zeros(2, 3)``, ``zeros((2, 3))`` or ``zeros([2, 3])``, as torch's size arguments."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if not builtins.all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in size):
        raise ConfigError(f"wxb.{what}: sizes must be integers; got {size!r}")
    if builtins.any(n < 0 for n in size):
        raise ConfigError(f"wxb.{what}: sizes must not be negative; got {size!r}")
    return tuple(int(n) for n in size)


def _leaf(array: np.ndarray, requires_grad: object, device: object, what: str) -> Tensor:
    check_device(device, f"wxb.{what}")
    return Tensor(array, requires_grad=bool(requires_grad))


def _filled(value: float, what: str) -> Callable[..., Tensor]:
    def make(*size, dtype=None, device=None, requires_grad=False, out=None, **unused) -> Tensor:
        _no_out(out, unused, what)
        array = np.full(_shape(size, what), value, dtype=resolve_dtype(dtype))
        return _leaf(array, requires_grad, device, what)

    make.__name__ = make.__qualname__ = what
    make.__doc__ = f"``torch.{what}(*size, dtype=None, requires_grad=False)``: float32 by default."
    return make


def _no_out(out: object, unused: dict, what: str) -> None:
    if out is not None or {k for k, v in unused.items() if v is not None} - {
        "layout",
        "pin_memory",
    }:
        taken = sorted(k for k, v in unused.items() if v is not None) or ["out"]
        raise ConfigError(
            f"wxb.{what}: {', '.join(taken)} not taken (only size, dtype=, requires_grad=)"
        )


zeros = _filled(0.0, "zeros")
ones = _filled(1.0, "ones")
empty = _filled(0.0, "empty")  # torch's values are whatever memory held: zeros here


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False, out=None) -> Tensor:
    """``torch.full(size, fill_value)``: float32 by default (torch's would follow the value's
    kind: an int fill gives int64 there; wxb computes in floats)."""
    _no_out(out, {}, "full")
    size = size if isinstance(size, (tuple, list)) else (size,)
    kind = resolve_dtype(dtype)
    if not ops._is_number(fill_value):
        raise ConfigError(f"wxb.full: fill_value must be a number; got {fill_value!r}")
    array = np.full(_shape(tuple(size), "full"), _in(fill_value, kind, "full"), dtype=kind)
    return _leaf(array, requires_grad, device, "full")


def _in(value: object, dtype: np.dtype, what: str) -> np.ndarray:
    return float_array(value, dtype, f"wxb.{what}")


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False, out=None) -> Tensor:
    _no_out(out, {}, "eye")
    rows, cols = _shape((n,) if m is None else (n, m), "eye") * (2 if m is None else 1)
    return _leaf(np.eye(rows, cols, dtype=resolve_dtype(dtype)), requires_grad, device, "eye")


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False, out=None):
    """``torch.arange(start, end, step)``: start + i·step below end (above it for a
    negative step), i from 0 to ⌈(end − start)/step⌉ − 1, computed in float64 and then
    cast, as torch's; float32 by default (torch's is int64 for whole numbers)."""
    _no_out(out, {}, "arange")
    if end is None:
        start, end = 0, start
    for value in (start, end, step):
        if not ops._is_number(value) or not math.isfinite(value):
            raise ConfigError(
                f"wxb.arange: start, end and step must be finite numbers; got {value!r}"
            )
    if step == 0:
        raise ConfigError("wxb.arange: step must not be 0")
    if (end - start) / step < 0:
        raise ConfigError(
            f"wxb.arange: end {end} cannot be reached from {start} by steps of {step}"
        )
    count = math.ceil((end - start) / step)
    values = start + np.arange(count, dtype=np.float64) * step
    return _leaf(_in(values, resolve_dtype(dtype), "arange"), requires_grad, device, "arange")


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False, out=None):
    """``torch.linspace(start, end, steps)``: steps values from start to end, both ends
    included, computed as torch's (the first half from start, the rest back from end)."""
    _no_out(out, {}, "linspace")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ConfigError(f"wxb.linspace: steps must be a whole number ≥ 0; got {steps!r}")
    for value in (start, end):
        if not ops._is_number(value):
            raise ConfigError(f"wxb.linspace: start and end must be numbers; got {value!r}")
    kind = resolve_dtype(dtype)
    i = np.arange(steps, dtype=np.float64)
    step = (end - start) / (steps - 1) if steps > 1 else 0.0
    half = steps // 2
    values = np.where(i < half, start + step * i, end - step * (steps - 1 - i))
    if steps == 1:  # torch's one value is start (the formula's second half gave end)
        values = np.array([start], dtype=np.float64)
    return _leaf(_in(values, kind, "linspace"), requires_grad, device, "linspace")


def _drawn(what: str, draw: Callable[[np.random.Generator, tuple, np.dtype], np.ndarray]):
    def make(*size, generator=None, dtype=None, device=None, requires_grad=False, out=None,
             **unused) -> Tensor:  # fmt: skip
        _no_out(out, unused, what)
        kind = resolve_dtype(dtype)
        array = draw(_generator(generator, what), _shape(size, what), kind)
        return _leaf(array, requires_grad, device, what)

    make.__name__ = make.__qualname__ = what
    make.__doc__ = (
        f"``torch.{what}(*size, generator=None, dtype=None, requires_grad=False)``: drawn from "
        "``generator`` (a NumPy Generator) or the one wxb.manual_seed seeds; float32 by default."
    )
    return make


def _generator(generator: object, what: str) -> np.random.Generator:
    if generator is not None and not isinstance(generator, np.random.Generator):
        raise ConfigError(
            f"wxb.{what}: generator must be a NumPy Generator (np.random.default_rng(seed)); "
            f"got {type(generator).__name__} (wxb.manual_seed(seed) seeds the default one)"
        )
    return as_generator(generator)


randn = _drawn("randn", lambda rng, shape, kind: rng.standard_normal(shape, dtype=kind))
rand = _drawn("rand", lambda rng, shape, kind: rng.random(shape, dtype=kind))


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad=False) -> IndexArray:  # fmt: skip
    """``torch.randint(low, high, size)``: whole numbers in [low, high), as an int64 array
    (class indices, as argmax gives them)."""
    if size is None and isinstance(high, (tuple, list)):  # torch's randint(high, size)
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if size is None:
        raise ConfigError("wxb.randint: give the size, randint(low, high, (n,))")
    if requires_grad:
        raise ConfigError("wxb.randint: whole numbers have no gradient (requires_grad=True)")
    check_device(device, "wxb.randint")
    shape = _shape(tuple(size) if isinstance(size, (tuple, list)) else (size,), "randint")
    return marks(_generator(generator, "randint").integers(low, high, shape, dtype=np.int64))


def _like(make: Callable[..., Tensor], what: str) -> Callable[..., Tensor]:
    def like(input, *, dtype=None, device=None, requires_grad=False, **options) -> Tensor:
        t = _tensor_of(input, what)
        return make(t.shape, dtype=t.dtype if dtype is None else dtype, device=device,
                    requires_grad=requires_grad, **options)  # fmt: skip

    like.__name__ = like.__qualname__ = what
    like.__doc__ = f"``torch.{what}(input)``: input's shape and dtype."
    return like


zeros_like = _like(zeros, "zeros_like")
ones_like = _like(ones, "ones_like")
empty_like = _like(empty, "empty_like")
randn_like = _like(randn, "randn_like")
rand_like = _like(rand, "rand_like")


def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False) -> IndexArray:
    """``torch.randperm(n)``: 0 … n − 1 shuffled, as an int64 array (rows to index with)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ConfigError(f"wxb.randperm: n must be a whole number ≥ 0; got {n!r}")
    if requires_grad:
        raise ConfigError("wxb.randperm: whole numbers have no gradient (requires_grad=True)")
    check_device(device, "wxb.randperm")
    return marks(_generator(generator, "randperm").permutation(int(n)).astype(np.int64))


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    t = _tensor_of(input, "full_like")
    kind = t.dtype if dtype is None else dtype
    return full(t.shape, fill_value, dtype=kind, device=device, requires_grad=requires_grad)


def from_numpy(array: object) -> Tensor:
    """``torch.from_numpy(array)``: a float32 or float64 array wrapped without a copy (a
    change through either is seen by the other); whole numbers become float32, as
    ``wxb.tensor`` makes them (wxb computes in floats), in a new array. Floats in the
    other byte order (a big-endian file's) are refused, as torch refuses them."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"wxb.from_numpy: expected a NumPy array; got {type(array).__name__}")
    if array.dtype.kind == "f" and not array.dtype.isnative:
        # Tensor() computes on a copy in the machine's order: changes would not be shared
        raise DataError(
            f"wxb.from_numpy: the array's {array.dtype.str} values are not in the machine's "
            "byte order, so a tensor cannot share their memory (torch.from_numpy refuses it "
            "too): wxb.tensor(array) reads them into a copy"
        )
    return Tensor(array)


def as_tensor(data: object, dtype: object = None, device: object = None) -> Tensor:
    """``torch.as_tensor(data, dtype=None)``: a tensor as given, an array of its dtype
    wrapped, anything else made as ``wxb.tensor`` makes it."""
    check_device(device, "wxb.as_tensor")
    if isinstance(data, Tensor):
        return data if dtype is None else ops.astype(data, resolve_dtype(dtype))
    return Tensor(data, dtype=dtype)


def is_tensor(obj: object) -> bool:
    return isinstance(obj, Tensor)


def numel(input: object) -> int:
    return _tensor_of(input, "numel").numel()


# -- functions of tensors: torch.f(t, …) is t.f(…) ------------------------------------
def _tensor_of(input: object, what: str) -> Tensor:
    """A Tensor as given; an array or list as wxb.tensor would read it (torch refuses
    them; a NumPy array of a model's inputs is what a wxb user has at hand)."""
    if isinstance(input, Tensor):
        return input
    _check_input(input, what)
    return Tensor(input)


def _check_input(input: object, what: str) -> None:
    if not isinstance(input, (np.ndarray, np.generic, list, tuple, int, float)) or isinstance(
        input, (bool, np.bool_)
    ):
        raise TypeError(f"wxb.{what}: input must be a Tensor; got {type(input).__name__}")


def _method(
    name: str,
    operands: int = 1,
    keywords: tuple[str, ...] = ("other", "exponent"),
    arrays: bool = True,
) -> Callable:
    """``wxb.name(input, …)`` as ``input.name(…)``; ``operands``: how many arguments after
    input are operands of it (by position, or by ``keywords``); ``arrays=False``: only a
    number input is read by the operators' rule (a comparison reads an array as it is)."""

    def function(input, *args, **kwargs):
        if name in ("abs", "neg") and not isinstance(input, Tensor):  # (a Tensor is floats)
            refuse_bool_sign(np.absolute if name == "abs" else np.negative,
                             np.asarray(input).dtype)  # fmt: skip
        given = [*args[:operands], *(kwargs.get(k) for k in keywords)]
        ruled = arrays or ops._is_number(input)
        # (an array beside a number input counts too: wxb.maximum(np.float64(1), labels)
        # made the number a 0-d float64 tensor first, and gave float64, where
        # wxb.maximum(labels, np.float64(1)) gives float32, the operators' rule)
        tensors = [x for x in given if isinstance(x, Tensor)
                   or (isinstance(x, np.ndarray) and ops._is_number(input))]  # fmt: skip
        if name in ("maximum", "minimum") and not kwargs and len(args) == 1:
            pair = (input, args[0])
            if not [x for x in pair if _whole(x) is None and not _is_mask(x)]:
                # labels beside labels (or a mask): int64, as torch's (it came back float32)
                return getattr(np, name)(marks(np.asarray(input)), np.asarray(args[0]))
        if not isinstance(input, Tensor) and tensors and ruled:
            # torch.pow(0.1, x), torch.maximum(labels, s): input beside the tensors by the
            # operators' rule (made a Tensor alone first, float64 x got 0.1's float32
            # rounding, and an int array beside a 0-d float64 one came out float32)
            _check_input(input, name)
            input = ops.in_result_type((input, *tensors))[0]
        return getattr(_tensor_of(input, name), name)(*args, **kwargs)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"``torch.{name}(input, …)``: ``input.{name}(…)``."
    return function


exp, log, sqrt, abs, log1p = (_method(n) for n in ("exp", "log", "sqrt", "abs", "log1p"))
sin, cos, tanh, sigmoid, relu = (_method(n) for n in ("sin", "cos", "tanh", "sigmoid", "relu"))
softmax, log_softmax = _method("softmax"), _method("log_softmax")
mean, prod, cumsum, var, std = (_method(n) for n in ("mean", "prod", "cumsum", "var", "std"))
clamp, clip = (_method(n, operands=2, keywords=("min", "max")) for n in ("clamp", "clip"))
matmul, mm, flatten = (_method(n) for n in ("matmul", "mm", "flatten"))
reshape, transpose, squeeze, unsqueeze = (
    _method(n) for n in ("reshape", "transpose", "squeeze", "unsqueeze")
)
permute, split, chunk, index_select = (
    _method(n) for n in ("permute", "split", "chunk", "index_select")
)
sort, argsort, topk, masked_fill = (_method(n) for n in ("sort", "argsort", "topk", "masked_fill"))
maximum, minimum, pow, square, neg = (
    _method(n) for n in ("maximum", "minimum", "pow", "square", "neg")
)
round, floor, ceil, trunc = (_method(n) for n in ("round", "floor", "ceil", "trunc"))
reciprocal, rsqrt, sign, norm, dot = (
    _method(n) for n in ("reciprocal", "rsqrt", "sign", "norm", "dot")
)
# (compared as the operators compare, tensor._compared: a float64 array beside a float32
# tensor in float64, as torch compares; its values are not cast)
eq, ne, gt, ge, lt, le = (_method(n, arrays=False) for n in ("eq", "ne", "gt", "ge", "lt", "le"))
isnan, all, any = _method("isnan"), _method("all"), _method("any")
remainder, floor_divide = _method("remainder"), _method("floor_divide")
tril, triu, bmm, outer = (_method(n) for n in ("tril", "triu", "bmm", "outer"))
gather, logsumexp = _method("gather"), _method("logsumexp")
flip, expm1, log2, log10 = (_method(n) for n in ("flip", "expm1", "log2", "log10"))
isinf, isfinite, nonzero, argwhere = (
    _method(n) for n in ("isinf", "isfinite", "nonzero", "argwhere")
)
unbind, clone, detach = _method("unbind"), _method("clone"), _method("detach")
roll, median, kthvalue, cummax, cummin = (
    _method(n) for n in ("roll", "median", "kthvalue", "cummax", "cummin")
)
diag, diagonal, trace, cumprod, logcumsumexp = (
    _method(n) for n in ("diag", "diagonal", "trace", "cumprod", "logcumsumexp")
)
quantile, nanquantile, nan_to_num = (_method(n) for n in ("quantile", "nanquantile", "nan_to_num"))
fmod = _method("fmod")
lerp = _method("lerp", operands=2, keywords=("end", "weight"))
addmm = _method("addmm", operands=2, keywords=("mat1", "mat2"))
baddbmm = _method("baddbmm", operands=2, keywords=("batch1", "batch2"))


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """``torch.unique(input, sorted=True, return_inverse=False, return_counts=False,
    dim=None)``: ``input.unique(…)``; of labels (an integer or bool array) in their
    dtype, as torch's (they came back float32)."""
    if isinstance(input, IndexArray) or _whole(input) is not None or _is_mask(input):
        return marks(np.asarray(input)).unique(sorted, return_inverse, return_counts, dim)
    return _tensor_of(input, "unique").unique(sorted, return_inverse, return_counts, dim)


def _is_mask(input: object) -> bool:
    return isinstance(input, (np.ndarray, np.bool_)) and np.asarray(input).dtype == np.bool_


def cdist(x1, x2, p=2.0, compute_mode=None) -> Tensor:
    """``torch.cdist(x1, x2, p=2.0)``: the p-norm distance of each row of x1 to each of x2."""
    return ops.cdist(x1, x2, p, compute_mode)


def _whole(input: object) -> np.ndarray | None:
    """An integer NumPy array (labels, argmax's indices) as it is; None for anything else."""
    if isinstance(input, (np.ndarray, np.generic)) and np.asarray(input).dtype.kind in "iu":
        return np.asarray(input)
    return None


def _exact_extreme(name: str, largest: bool, kind: str) -> Callable:
    """``torch.max(labels)`` and kin on whole numbers as the array's own ``labels.max()``:
    exact, in their dtype (``.item()`` an int, as torch's int64 gives). Read as a float32
    Tensor, a label above 2²⁴ was rounded, and argmax chose between rounded ties.
    ``kind``: "values" (max/min: a value, or (values, indices) along a dim), "reduce"
    (amax/amin over dims), "index" (argmax/argmin)."""
    tensor_form = _method(name)
    reduce, pick = (np.max, np.argmax) if largest else (np.min, np.argmin)

    def function(input, *args, **kwargs):
        whole = _whole(input)
        if whole is None or not whole.size or len(args) > 2 or set(kwargs) - {"dim", "keepdim"}:
            return tensor_form(input, *args, **kwargs)  # floats, no values, NumPy's options
        dim = kwargs.get("dim", args[0] if args else None)
        if kind == "reduce" and isinstance(dim, (tuple, list)):
            dims = tuple(dim)
        elif dim is None or (isinstance(dim, (int, np.integer)) and not isinstance(dim, bool)):
            dims = () if dim is None else (dim,)
        else:  # max(labels, other) and the like: the Tensor form's
            return tensor_form(input, *args, **kwargs)
        keep = ops._flag(kwargs.get("keepdim", args[1] if len(args) > 1 else False), name)
        axes = tuple(ops._axis(d, whole.ndim, name) for d in dims)
        if len(set(axes)) < len(axes):  # a dim named twice: the Tensor form's refusal
            return tensor_form(input, *args, **kwargs)
        if not axes:  # over everything: one value (argmax: its flat index)
            found = np.int64(pick(whole)) if kind == "index" else reduce(whole)
            return marks(np.reshape(found, (1,) * whole.ndim) if keep else found)
        if whole.ndim == 0:  # dim 0 or -1 of one value: itself, at index 0, as torch's
            whole = whole.reshape(1)
            keep = False
        if kind == "reduce":
            return marks(reduce(whole, axis=axes, keepdims=keep))
        chosen = pick(whole, axis=axes[0], keepdims=True)
        found = np.take_along_axis(whole, chosen, axes[0])
        if not keep:
            found, chosen = np.squeeze(found, axes[0]), np.squeeze(chosen, axes[0])
        chosen = marks(chosen.astype(np.int64))
        return chosen if kind == "index" else ops.ValuesIndices(marks(found), chosen)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"``torch.{name}(input, …)``: ``input.{name}(…)``; whole numbers exact."
    return function


max, min = _exact_extreme("max", True, "values"), _exact_extreme("min", False, "values")
amax, amin = _exact_extreme("amax", True, "reduce"), _exact_extreme("amin", False, "reduce")
argmax = _exact_extreme("argmax", True, "index")
argmin = _exact_extreme("argmin", False, "index")


einsum = ops.einsum
narrow, movedim, swapaxes = _method("narrow"), _method("movedim"), _method("swapaxes")


def broadcast_to(input, size) -> Tensor:
    """``torch.broadcast_to(t, size)``: t.expand(size) (−1 keeps a size)."""
    return _tensor_of(input, "broadcast_to").expand(*size)


def hstack(tensors: Sequence[object]) -> Tensor:
    """``torch.hstack``: joined along dim 1 (dim 0 for vectors)."""
    items = (
        [_tensor_of(t, "hstack") for t in tensors]
        if isinstance(tensors, (list, tuple))
        else tensors
    )
    return cat(items, 0 if items and builtins.all(t.ndim == 1 for t in items) else 1)


def vstack(tensors: Sequence[object]) -> Tensor:
    """``torch.vstack``: rows joined along dim 0 (a vector is one row)."""
    if not isinstance(tensors, (list, tuple)):
        return cat(tensors, 0)
    items = [_tensor_of(t, "vstack") for t in tensors]
    return cat([t.reshape(1, -1) if t.ndim == 1 else t for t in items], 0)


def logical_and(input, other) -> IndexArray:
    return marks(np.logical_and(_truths(input), _truths(other)))


def logical_or(input, other) -> IndexArray:
    return marks(np.logical_or(_truths(input), _truths(other)))


def logical_not(input) -> IndexArray:
    return marks(np.logical_not(_truths(input)))


def _truths(value: object) -> np.ndarray:
    """A mask, or any values read as torch reads them: nonzero is True."""
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def sum(input, *args, **kwargs):
    """``torch.sum(input, dim=None, keepdim=False)``; of a mask or indices (``torch.sum(
    pred == y)``) the whole-number count, as torch's int64 sum gives it; of labels (an
    integer NumPy array) their exact sum, as ``labels.sum()`` (float32 rounded it)."""
    if isinstance(input, IndexArray) or _whole(input) is not None:
        dim = kwargs.pop("dim", args[0] if args else None)
        keepdim = kwargs.pop("keepdim", args[1] if len(args) > 1 else False)
        axis = None if dim is None else ops._axis(dim, input.ndim, "sum")
        return marks(
            np.sum(input, axis=axis, keepdims=ops._flag(keepdim, "wxb.sum"), dtype=np.int64)
        )
    return _tensor_of(input, "sum").sum(*args, **kwargs)


def where(condition, input=None, other=None) -> Tensor:
    """``torch.where(condition, input, other)``; ``torch.where(condition)`` alone: the
    indices where it holds, one array per dim, as ``nonzero(as_tuple=True)``."""
    if input is None and other is None:
        array = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
        return tuple(marks(i.astype(np.int64)) for i in np.nonzero(array))
    if input is None or other is None:
        raise ConfigError("wxb.where: give condition, input and other (or the condition alone)")
    picked = _where_labels(condition, input, other)
    return ops.where(condition, input, other) if picked is None else picked


def _where_labels(condition: object, input: object, other: object) -> IndexArray | None:
    """where(mask, labels, labels or a whole number) as labels, int64 (or bool), as
    torch's: read as float32 Tensors they came back floats. None for anything else (the
    Tensor form then computes it, or says why not)."""
    pair = [
        x if isinstance(x, int) and not isinstance(x, bool) else _whole(x) for x in (input, other)
    ]
    pair = [
        np.asarray(x) if p is None and _is_mask(x) else p
        for x, p in zip((input, other), pair, strict=True)
    ]
    mask = condition.data if isinstance(condition, Tensor) else condition
    if builtins.any(p is None for p in pair) or not _is_mask(mask):
        return None
    if builtins.all(isinstance(p, int) for p in pair):
        return None
    try:
        return marks(np.where(np.asarray(mask), *pair))
    except ValueError:  # shapes that do not broadcast: the Tensor form's refusal
        return None


def cat(tensors: Sequence[object], dim: object = 0, *, axis: object = None, out=None) -> Tensor:
    """``torch.cat(tensors, dim=0)``: joined along an existing dim; labels (integer or
    bool arrays, no tensor among them) stay labels, as torch's int64 cat gives them."""
    _no_out(out, {}, "cat")
    dim = _one_axis(dim, axis, "cat")
    joined = _joined_labels(tensors, dim, np.concatenate, 0)
    return ops.concatenate(tensors, dim) if joined is None else joined


concat = concatenate = cat


def stack(tensors: Sequence[object], dim: object = 0, *, axis: object = None, out=None) -> Tensor:
    """``torch.stack(tensors, dim=0)``: joined along a new dim."""
    _no_out(out, {}, "stack")
    dim = _one_axis(dim, axis, "stack")
    joined = _joined_labels(tensors, dim, np.stack, 1)
    return ops.stack(tensors, dim) if joined is None else joined


def _joined_labels(tensors: object, dim: object, join: Callable, new: int) -> IndexArray | None:
    """Batches' predicted classes or labels joined (``torch.cat(all_preds)``) as whole
    numbers: read as a float32 Tensor they became floats. None where a part is not such
    an array, or they do not fit together (the Tensor form then says why)."""
    if not isinstance(tensors, (list, tuple)) or not tensors:
        return None
    parts = [np.asarray(t) if isinstance(t, np.ndarray) else None for t in tensors]
    if not builtins.all(p is not None and p.dtype.kind in "biu" for p in parts):
        return None
    if len({p.ndim for p in parts}) != 1 or isinstance(dim, bool):
        return None
    try:
        return marks(join(parts, axis=ops._axis(dim, parts[0].ndim + new, "cat")))
    except (ValueError, WxbError):
        return None


def _one_axis(dim: object, axis: object, what: str) -> object:
    if axis is not None:
        if dim != 0:
            raise ConfigError(f"wxb.{what}: give the dim once (dim= or axis=)")
        return axis
    return dim


def allclose(
    input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
) -> bool:
    """``torch.allclose``: |input − other| ≤ atol + rtol·|other| everywhere (broadcast)."""
    a, b = _values(input, "allclose"), _values(other, "allclose")
    return bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


# torch's functions of the newest layers, each as wxb.nn.functional's (torch.relu_ and kin
# change their input in place, as F.relu_)
hardshrink, bilinear = ops.hardshrink, ops.bilinear
relu_, selu_, celu_, threshold_, rrelu_ = (
    ops.relu_,
    ops.selu_,
    ops.celu_,
    ops.threshold_,
    ops.rrelu_,
)


def rrelu(
    input: object,
    lower: float = 1.0 / 8,
    upper: float = 1.0 / 3,
    training: bool = False,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """``torch.rrelu``: F.rrelu's (training=False: LeakyReLU of slope (lower + upper)/2);
    ``generator=`` a NumPy Generator, else the one ``wxb.manual_seed`` seeds."""
    if not isinstance(training, (bool, np.bool_)):
        raise ConfigError(f"wxb.rrelu: training must be True or False; got {training!r}")
    return ops.rrelu(input, lower, upper, bool(training), generator)


def embedding(
    weight: object,
    indices: object,
    padding_idx: int = -1,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """``torch.embedding(weight, indices, …)``: F.embedding's lookup with torch's order of
    arguments (the table first) and its padding_idx=-1 for none."""
    pad = None if padding_idx == -1 else padding_idx
    return ops.embedding(indices, weight, pad, None, 2.0, scale_grad_by_freq, sparse)


def _dropout_of(name: str, feature: bool) -> Callable:
    def function(input: object, p: float, train: bool) -> Tensor:
        if not (ops._is_number(p) and 0 <= p < 1):
            raise ConfigError(f"wxb.{name}: p must be a number in [0, 1); got {p!r}")
        if not isinstance(train, (bool, np.bool_)):
            raise ConfigError(f"wxb.{name}: train must be True or False; got {train!r}")
        if not train or p == 0:
            return ops.as_tensor(input)
        return ops.alpha_dropout(input, float(p), as_generator(None), feature=feature)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"``torch.{name}(input, p, train)``: F.{name}'s, train required."
    return function


alpha_dropout = _dropout_of("alpha_dropout", feature=False)
feature_alpha_dropout = _dropout_of("feature_alpha_dropout", feature=True)


def isclose(input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
    a, b = _values(input, "isclose"), _values(other, "isclose")
    return marks(np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def equal(input, other) -> bool:
    """``torch.equal``: the same shape and the same values (NaN equals nothing)."""
    a, b = _values(input, "equal"), _values(other, "equal")
    return a.shape == b.shape and bool(np.array_equal(a, b))


def _values(value: object, what: str) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray):
        return value
    raise DataError(f"wxb.{what}: compares tensors (or arrays); got {type(value).__name__}")


__all__ = [
    "abs",
    "accelerator",
    "addmm",
    "all",
    "allclose",
    "alpha_dropout",
    "amax",
    "amin",
    "any",
    "arange",
    "argmax",
    "argmin",
    "argsort",
    "argwhere",
    "as_tensor",
    "baddbmm",
    "bilinear",
    "bmm",
    "broadcast_to",
    "cat",
    "cdist",
    "ceil",
    "celu_",
    "chunk",
    "clamp",
    "clip",
    "clone",
    "concat",
    "concatenate",
    "cos",
    "cuda",
    "cummax",
    "cummin",
    "cumprod",
    "cumsum",
    "detach",
    "device",
    "diag",
    "diagonal",
    "dot",
    "double",
    "einsum",
    "embedding",
    "empty",
    "empty_like",
    "eq",
    "equal",
    "exp",
    "expm1",
    "eye",
    "feature_alpha_dropout",
    "flatten",
    "flip",
    "float32",
    "float64",
    "floor",
    "floor_divide",
    "fmod",
    "from_numpy",
    "full",
    "full_like",
    "gather",
    "ge",
    "gt",
    "hardshrink",
    "hstack",
    "index_select",
    "is_tensor",
    "isclose",
    "isfinite",
    "isinf",
    "isnan",
    "kthvalue",
    "le",
    "lerp",
    "linspace",
    "log",
    "log1p",
    "log2",
    "log10",
    "log_softmax",
    "logcumsumexp",
    "logical_and",
    "logical_not",
    "logical_or",
    "logsumexp",
    "lt",
    "masked_fill",
    "matmul",
    "max",
    "maximum",
    "mean",
    "median",
    "min",
    "minimum",
    "mm",
    "movedim",
    "nan_to_num",
    "nanquantile",
    "narrow",
    "ne",
    "neg",
    "nonzero",
    "norm",
    "numel",
    "ones",
    "ones_like",
    "outer",
    "permute",
    "pow",
    "prod",
    "quantile",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "randperm",
    "reciprocal",
    "relu",
    "relu_",
    "remainder",
    "reshape",
    "roll",
    "round",
    "rrelu",
    "rrelu_",
    "rsqrt",
    "selu_",
    "sigmoid",
    "sign",
    "sin",
    "softmax",
    "sort",
    "split",
    "sqrt",
    "square",
    "squeeze",
    "stack",
    "std",
    "sum",
    "swapaxes",
    "tanh",
    "threshold_",
    "topk",
    "trace",
    "transpose",
    "tril",
    "triu",
    "trunc",
    "unbind",
    "unique",
    "unsqueeze",
    "var",
    "vstack",
    "where",
    "zeros",
    "zeros_like",
]  # fmt: skip
