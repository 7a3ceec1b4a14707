"""Module, Parameter and Sequential: the names PyTorch users already know."""

from __future__ import annotations

import copy
import itertools
import os
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, NamedTuple, Protocol

import numpy as np

from wxb.backend import check_device, is_torchs, resolve_dtype, to_arguments
from wxb.columns import rows_for_model
from wxb.errors import ConfigError, DataError, NotFoundError, ShapeError
from wxb.tables import is_tabular
from wxb.tensor import (
    DATA_SLOT,
    WEIGHTS,
    Count,
    IndexArray,
    Tensor,
    byte_bounds,
    float_array,
    foreign_array,
    gradients_apart,
    is_grad_enabled,
    is_walking_freed_graph,
    no_grad,
    refuse_masked,
    slot_names,
    to_dtype,
    unmasked,
)
from wxb.validation import (
    NOT_GIVEN,
    SparseRows,
    as_features,
    dense_if_sparse,
    keras_rows,
    refuse_batch_source,
    refuse_keras_arguments,
    sparse_rows,
)

_NATIVE_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))  # (not big-endian ones)


class GradHome(Protocol):
    """What owns a parameter's ``grad_buffer`` (the optimiser's flat gradient buffer)."""

    def free_grad_view(self, index: int) -> np.ndarray: ...

    def ensure_free(self) -> None: ...


class _Arena:
    """Memory for new parameters, handed out back to back per dtype.

    The parameters of a model built layer by layer then lie in one stretch, in the
    order ``parameters()`` gives them, and the optimiser's update walks that stretch
    once rather than array by array (``FlatParameters.runs``: it steps values where
    they lie either way). A chunk is freed when no parameter in it is left; pages of it
    never written take no memory."""

    # Elements. A chunk lives while any parameter in it does, so a parameter kept after
    # others in its chunk were dropped holds the chunk (4 MB in float32): a parameter
    # above LARGEST gets memory of its own (freed with it; the update walks it as a run
    # of its own, where the walk's call costs little beside its size), so that a chunk
    # is at least 16 parameters' worth of small ones.
    CHUNK = 1 << 20
    LARGEST = 1 << 16

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: dict[np.dtype, tuple[np.ndarray, int]] = {}  # chunk, first free element

    def copy(self, array: np.ndarray) -> np.ndarray:
        """A copy of ``array`` in the arena (a plain copy for what it does not hold)."""
        if (
            type(array) is not np.ndarray
            or array.dtype.kind != "f"
            or not 0 < array.size <= self.LARGEST
        ):
            return array.copy()
        size = array.size
        with self._lock:
            chunk, used = self._free.get(array.dtype, (None, 0))
            if chunk is None or used + size > chunk.size:
                chunk, used = np.empty(max(self.CHUNK, size), array.dtype), 0
            self._free[array.dtype] = (chunk, used + size)
        view = chunk[used : used + size].reshape(array.shape)
        np.copyto(view, array)
        return view


parameter_memory = _Arena()
if hasattr(os, "register_at_fork"):  # a lock another thread held at fork() stays held
    os.register_at_fork(after_in_child=lambda: setattr(parameter_memory, "_lock", threading.Lock()))


_tensor_data = DATA_SLOT  # the slot itself, beneath Parameter's property


def _buffer_array(value: object, where: str) -> np.ndarray:
    """A buffer's array from what PyTorch users give one: an array, a NumPy scalar
    (``self.count + 1`` of a 0-d buffer), or a Tensor outside the graph, whose array is
    kept (``register_buffer("mean", wxb.zeros(h))``, ``self.mean = 0.9 * self.mean +
    0.1 * x.mean(0)`` under no_grad). A buffer holds no graph, so a Tensor that needs a
    gradient is refused rather than cut from it."""
    if isinstance(value, Tensor):
        if value.requires_grad:
            raise ConfigError(
                f"{where}: the Tensor needs a gradient and a buffer holds no graph; assign "
                "its .detach(), or compute it under wxb.no_grad()"
            )
        return _as_buffer(np.asarray(_tensor_data.__get__(value)))
    if isinstance(value, np.generic):
        return _as_buffer(np.asarray(value))
    if not isinstance(value, np.ndarray):
        kind = type(value).__name__
        if is_torchs(value):  # not wxb's Tensor: say whose
            kind = f"torch.{kind} (its .numpy() is the array)"
        raise ConfigError(f"{where} takes a NumPy array, a wxb Tensor or None; got a {kind}")
    refuse_masked(value, where)  # (a buffer's view of it would drop the mask)
    return _as_buffer(value)


# each array's BufferArray, so that one array registered twice is one buffer (its
# views would be two, named_buffers would give both, and a change through one...)
_BUFFER_VIEWS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _as_buffer(array: np.ndarray) -> BufferArray:
    """``array`` as the buffer a module holds: a view of it (its memory, no copy), or a
    copy of read-only memory (np.broadcast_to's, a memmap opened "r"), which training
    updates in place (NumPy's "assignment destination is read-only" came at the step)."""
    if isinstance(array, BufferArray):
        return array
    if not array.flags.writeable:
        array = np.array(array)
    held = _BUFFER_VIEWS.get(id(array))
    if held is not None and held._source() is array:
        return held
    view = array.view(BufferArray)
    view._source = weakref.ref(array)
    _BUFFER_VIEWS[id(array)] = view
    return view


def _operand(value: object) -> object:
    """An in-place method's operand as values: a Tensor's array (no graph: a buffer
    holds none, as under torch.no_grad()), an array or a scalar as it is."""
    if isinstance(value, Tensor):
        return _tensor_data.__get__(value)
    if isinstance(value, BufferArray):
        return value.view(np.ndarray)
    return value


def _plain(value: object) -> object:
    """A NumPy function's argument with any BufferArray as its plain array."""
    if isinstance(value, BufferArray):
        return value.view(np.ndarray)
    if type(value) in (tuple, list):
        return type(value)(_plain(v) for v in value)
    return value


class BufferArray(np.ndarray):
    """A buffer as a module hands it out: its own array (no copy, so a change reaches the
    module), which also answers torch's in-place idioms (``self.ema.mul_(m).add_(x.mean(0),
    alpha=1 - m)``, ``self.count.add_(1)``, ``copy_``, ``zero_``, ``fill_``, ``lerp_``,
    ``clamp_``), each changing the buffer, keeping its dtype and returning it, as torch's.
    Arithmetic, NumPy's functions and copies give plain arrays: only the buffer itself
    changes in place."""

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: object, **kwargs: object):
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        result = getattr(ufunc, method)(*(_plain(x) for x in inputs), **kwargs)
        if out is not None and result is not NotImplemented and method != "at":
            return out[0] if len(out) == 1 else out  # (buf += x: the buffer itself)
        return result

    def __array_function__(self, func: Callable, types: tuple, args: tuple, kwargs: dict):
        return func(*_plain(args), **{k: _plain(v) for k, v in kwargs.items()})

    def copy(self, order: str = "C") -> np.ndarray:  # (a copy is no longer the buffer)
        return np.ndarray.copy(self.view(np.ndarray), order)

    def astype(self, dtype: object, *args: object, **kwargs: object) -> np.ndarray:
        return np.ndarray.astype(self.view(np.ndarray), dtype, *args, **kwargs)

    # -- torch's in-place methods: the buffer changed, in its dtype, and returned ------
    def _apply(self, name: str, ufunc: np.ufunc, *operands: object) -> BufferArray:
        plain = self.view(np.ndarray)
        try:
            ufunc(plain, *(_operand(x) for x in operands), out=plain, casting="same_kind")
        except TypeError as error:
            if "cast" not in str(error):  # (NumPy's casting refusal only; others as they are)
                raise
            given = ufunc(plain, *(_operand(x) for x in operands)).dtype
            raise ConfigError(
                f"buffer.{name}: the result ({given}) does not fit the buffer's {self.dtype} "
                "(torch refuses it too); change the buffer's dtype first"
            ) from None
        return self

    def add_(self, other: object, *, alpha: object = 1) -> BufferArray:
        other = _operand(other)
        return self._apply("add_", np.add, other if alpha == 1 else np.multiply(other, alpha))

    def sub_(self, other: object, *, alpha: object = 1) -> BufferArray:
        other = _operand(other)
        return self._apply("sub_", np.subtract, other if alpha == 1 else np.multiply(other, alpha))

    def mul_(self, other: object) -> BufferArray:
        return self._apply("mul_", np.multiply, other)

    def div_(self, other: object, *, rounding_mode: str | None = None) -> BufferArray:
        if rounding_mode is None:
            return self._apply("div_", np.true_divide, other)
        if rounding_mode == "floor":
            return self._apply("div_", np.floor_divide, other)
        if rounding_mode == "trunc":
            quotient = np.trunc(np.true_divide(self.view(np.ndarray), _operand(other)))
            return self.copy_(quotient)
        raise ConfigError(
            f"buffer.div_: rounding_mode is None, 'trunc' or 'floor'; got {rounding_mode!r}"
        )

    def pow_(self, exponent: object) -> BufferArray:
        return self._apply("pow_", np.power, exponent)

    def addcmul_(self, tensor1: object, tensor2: object, *, value: object = 1) -> BufferArray:
        return self.add_(np.multiply(_operand(tensor1), _operand(tensor2)), alpha=value)

    def addcdiv_(self, tensor1: object, tensor2: object, *, value: object = 1) -> BufferArray:
        return self.add_(np.true_divide(_operand(tensor1), _operand(tensor2)), alpha=value)

    def lerp_(self, end: object, weight: object) -> BufferArray:
        """self + weight · (end − self), as torch's."""
        plain = self.view(np.ndarray)
        return self.add_(np.multiply(_operand(weight), np.subtract(_operand(end), plain)))

    def copy_(self, src: object, non_blocking: bool = False) -> BufferArray:
        """``src``'s values, broadcast to the buffer's shape and cast to its dtype."""
        values = np.asarray(_operand(src))
        try:
            np.copyto(self.view(np.ndarray), np.broadcast_to(values, self.shape), "unsafe")
        except ValueError:
            raise ShapeError(
                f"buffer.copy_: a source of shape {values.shape} does not broadcast to the "
                f"buffer's {self.shape}"
            ) from None
        return self

    def zero_(self) -> BufferArray:
        self.view(np.ndarray)[...] = 0
        return self

    def fill_(self, value: object) -> BufferArray:
        self.view(np.ndarray)[...] = _operand(value)
        return self

    def clamp_(self, min: object = None, max: object = None) -> BufferArray:
        if min is None and max is None:
            raise ConfigError("buffer.clamp_: give min, max or both (torch refuses neither)")
        plain = self.view(np.ndarray)
        if min is not None:
            np.maximum(plain, _operand(min), out=plain, casting="same_kind")
        if max is not None:
            np.minimum(plain, _operand(max), out=plain, casting="same_kind")
        return self

    clip_ = clamp_

    def clamp_min_(self, min: object) -> BufferArray:
        return self.clamp_(min=min)

    def clamp_max_(self, max: object) -> BufferArray:
        return self.clamp_(max=max)

    def neg_(self) -> BufferArray:
        return self._apply("neg_", np.negative)

    def abs_(self) -> BufferArray:
        return self._apply("abs_", np.absolute)

    def sqrt_(self) -> BufferArray:
        return self._apply("sqrt_", np.sqrt)

    # -- torch's out-of-place names: a float buffer's values as a Tensor outside the
    # graph, an integer or boolean one's as an IndexArray (as wxb gives such values)
    def _out(self, values: np.ndarray) -> Tensor | IndexArray:
        return Tensor(values) if values.dtype.kind == "f" else values.view(IndexArray)

    def clone(self) -> Tensor | IndexArray:  # (a copy: later changes to the buffer not seen)
        return self._out(np.array(self))

    def detach(self) -> BufferArray:  # (no graph to leave; the buffer itself, as torch's)
        return self

    def cpu(self) -> BufferArray:
        return self

    def numpy(self, force: bool = False) -> np.ndarray:  # (its memory, as torch's)
        return self.view(np.ndarray)

    def to(self, *args: object, dtype: object = None, device: object = None,
           non_blocking: bool = False, copy: bool = False) -> object:  # fmt: skip
        """``buf.to(device)`` and ``buf.to(its own dtype)``: the buffer itself, as torch's
        (no copy); another dtype: its values cast."""
        dtype = to_arguments(args, dtype, device, "to")
        kind = self.dtype if dtype is None else to_dtype(dtype, "to", " (nor a device)")
        if kind == self.dtype and not copy:
            return self
        return self._out(np.array(self, dtype=kind))

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def long(self) -> IndexArray:
        return self.to(np.int64)

    @property
    def size(self) -> Count:  # NumPy's count, which torch's size(dim) also answers
        return Count(np.ndarray.size.__get__(self), self.shape)

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return int(np.ndarray.size.__get__(self))

    @property
    def is_cuda(self) -> bool:
        return False

    @property
    def requires_grad(self) -> bool:  # (a buffer holds no graph)
        return False


# Each parameter by the id of its version counter, which the tensors viewing its memory
# share (p.T, p.detach(), p[0]): how Parameter(t) tells such a view (the identity checked
# too, as an id outlives its list)
_COUNTER_OWNERS: weakref.WeakValueDictionary[int, Parameter] = weakref.WeakValueDictionary()


def _views_a_parameter(given: object, array: np.ndarray) -> bool:
    """Whether ``given`` is a Tensor viewing a parameter's memory, taken uncast as ``array``."""
    if not isinstance(given, Tensor) or array is not given.data or not array.flags.writeable:
        return False
    owner = _COUNTER_OWNERS.get(id(given._versions))
    return owner is not None and owner._versions is given._versions


def _in_a_buffer(given: object) -> bool:
    """Whether ``given`` (an array, or a Tensor's) is a module buffer's memory: the buffer
    a module hands out (a BufferArray), the array registered, or a plain view of either
    (NumPy points a view's base at the array owning the memory)."""
    array = given.data if isinstance(given, Tensor) else given
    if isinstance(array, BufferArray):
        return True
    if not isinstance(array, np.ndarray):
        return False
    for source in (array, array.base):
        held = _BUFFER_VIEWS.get(id(source)) if source is not None else None
        if held is not None and held._source() is source:
            return True
    return False


class Parameter(Tensor):
    """A tensor the optimiser updates: ``.data`` and ``.grad`` are backend arrays.

    ``grad_buffer`` is where the optimiser would like ∂L/∂p written (a view of its
    flat gradient buffer, owned by ``grad_home``); the planned path writes there
    and sets ``.grad`` to it, but only through ``free_grad_buffer()``.
    """

    __slots__ = ("grad_buffer", "grad_home", "grad_index")

    def __init__(
        self,
        data: object,
        requires_grad: bool = True,
        *,
        dtype: object = None,
        name: str | None = None,
    ) -> None:
        # requires_grad=False: a frozen one, as PyTorch's Parameter(t, requires_grad=False)
        super().__init__(data, requires_grad=bool(requires_grad), dtype=dtype, name=name)
        # Its own memory (updates must not reach the caller's array), after the last one's,
        # and its own version counter; but as PyTorch's Parameter(t), a tensor viewing a
        # parameter's memory keeps it (and its counter, which Tensor() took):
        # nn.Parameter(enc.weight.t()) steps in the encoder's memory (a copy trained two
        # untied layers where PyTorch's training moves both)
        # A frozen one of a buffer's array keeps that memory, as torch's (it follows the
        # running statistics; a copy kept their first values): no step writes into it
        keeps_buffer = not requires_grad and _in_a_buffer(data)
        if not keeps_buffer and not _views_a_parameter(data, self.data):
            if requires_grad and _in_a_buffer(data):
                raise ConfigError(
                    "Parameter(a buffer's array): torch's shares the buffer's memory, so each "
                    "step moves the buffer too; wxb's would train a copy and leave the buffer "
                    "as it was. For a parameter of its own: Parameter(buffer.copy()); for one "
                    "memory: make the parameter first and register the buffer as its view "
                    "(register_buffer(name, p.data)), which wxb keeps"
                )
            self.data = parameter_memory.copy(self.data)
            self._versions = [0]
        self._own_counter()
        self.grad_buffer: np.ndarray | None = None
        self.grad_home: GradHome | None = None
        self.grad_index = 0

    def _own_counter(self) -> None:
        """Register its version counter (a copy's is a list of its own)."""
        _COUNTER_OWNERS.setdefault(id(self._versions), self)

    def _hooks_changed(self) -> None:
        _structure_changed()  # plans made without its hooks are made again (without a plan)

    def _set_data(self, value: object) -> None:
        # PyTorch's idiom ``p.data = t`` with a tensor: its array, not the tensor inside
        # (which made every result's .data a Tensor, and the optimiser fail); another
        # library's tensor (torch's: ``w.data = torch_layer.weight``) as NumPy reads it
        if isinstance(value, Tensor):
            value = value.data
        elif not isinstance(value, np.ndarray) and hasattr(value, "__array__"):
            value = foreign_array(value)
        elif not isinstance(value, np.ndarray):  # torch refuses these too (a TypeError)
            raise ConfigError(
                f"Parameter.data = {type(value).__name__}: takes an array or a tensor "
                "(np.asarray(values, dtype=p.dtype) for a list of numbers)"
            )
        else:
            value = unmasked(value, "Parameter.data")
        if not value.dtype.isnative:  # big-endian bytes (a file's): in the machine's order,
            value = value.astype(value.dtype.newbyteorder("="))  # as Tensor() takes them
        _tensor_data.__set__(self, value)

    # read through the slot's own getter (C: no Python call on the hot path), set above
    data = property(_tensor_data.__get__, _set_data, doc="The parameter's array.")

    def free_grad_buffer(self) -> np.ndarray | None:
        """Where a backward may write a new ∂L/∂p: the optimiser's view, which its owner
        first replaces if anything outside still holds it (a gradient a user kept from
        an earlier step must not be overwritten), or None without an optimiser."""
        home = self.grad_home
        if home is None:
            return None
        view = home.free_grad_view(self.grad_index)
        return view if view.shape == self.shape and view.dtype == self.dtype else None

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"

    # As PyTorch's, a copy (deepcopy, pickle) has the values and requires_grad, not the
    # gradient: a copy taken between backward and step added that stale ∂L/∂p into its
    # own first step. Nor the link to the optimiser's gradient buffer (a model copied
    # alone carried the whole of it along).
    _fresh_when_copied: ClassVar[dict[str, object]] = {
        "grad": None, "grad_buffer": None, "grad_home": None, "grad_index": 0,
    }  # fmt: skip

    def __setstate__(self, state: tuple[dict | None, dict[str, object]]) -> None:
        values, slots = state
        if values:
            self.__dict__.update(values)
        self._hooks = None  # (a pickle from before register_hook has no such slot)
        for name, value in slots.items():
            setattr(self, name, value)
        self.data = _writable(self.data)
        self._own_counter()

    def __deepcopy__(self, memo: dict) -> Parameter:
        copied = super().__deepcopy__(memo)
        copied._own_counter()
        return copied


class UninitializedParameter(Parameter):
    """torch's placeholder for a parameter whose shape a lazy layer (LazyLinear) learns
    at its first call: no values yet (an empty array); an optimiser, a file and an
    export refuse it, naming that call."""

    __slots__ = ()

    def __init__(self, dtype: object = None) -> None:
        super().__init__(np.empty(0, dtype=resolve_dtype(dtype)))

    def __repr__(self) -> str:
        return "<UninitializedParameter>"


def _writable(array: object) -> object:
    """An unpickled array as memory of its own: joblib hands a worker each array over
    1 MB as a read-only memory map, where a Parameter's or buffer's in-place updates
    (``p -= lr * p.grad``, load_state_dict, nn.init, running statistics) raised,
    whereas PyTorch's tensors arrive writable."""
    if isinstance(array, np.ndarray) and (
        type(array) not in (np.ndarray, BufferArray)
        or not array.flags.writeable
        or isinstance(array.base, np.memmap)
    ):
        return parameter_memory.copy(np.asarray(array))
    return array


# Grows whenever any module gains or loses a parameter or sub-module; next() on a
# count is atomic, so two threads changing two models never hand out the same number.
# It starts at a random number, and no cache keyed by it is pickled or copied
# (Module.__getstate__): a process fork()ed from this one counts on from the same numbers.
_structure_counter = itertools.count(int.from_bytes(os.urandom(7), "little") + 1)
_structure_version = next(_structure_counter)


def forget_gradients(params: Iterable[Parameter], set_to_none: bool) -> None:
    """Each ``p.grad`` to None, or with ``set_to_none=False`` zeroed where it lies."""
    for p in params:
        if set_to_none or p.grad is None:
            p.grad = None
        elif isinstance(p.grad, np.ndarray):
            p.grad[...] = 0
        else:  # a NumPy scalar a user assigned to a 0-d parameter: not writable in place
            p.grad = np.zeros_like(p.grad)


def structure_version() -> int:
    """A number that changes whenever some module's parameters or sub-modules change
    (cached plans compare it instead of walking the model on every call)."""
    return _structure_version


def _structure_changed() -> None:
    global _structure_version
    _structure_version = next(_structure_counter)


# Each Module class's forward as its class statement left it: one assigned to a stock
# class later (nn.Dense.forward = a patch) is no longer the forward a plan computes
_DEFINED_FORWARD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def class_code(modules: Iterable[Module]) -> tuple:
    """(class, its forward, its __call__) for each class among ``modules``: what their
    calls ran when a plan was made of them. A forward assigned to a class since
    (MyDense.forward = …) changes what its layers compute, which no structure_version
    records: plans compare this (``same_class_code``) at each call."""
    return tuple((cls, cls.forward, cls.__call__) for cls in dict.fromkeys(map(type, modules)))


def same_class_code(code: tuple) -> bool:
    """Whether each class in ``code`` (from class_code) still has that forward and __call__."""
    for cls, forward, call in code:
        if cls.forward is not forward or cls.__call__ is not call:
            return False
    return True


_thread = threading.local()  # per thread: the modules `evaluating()` holds in eval mode


def hooks_in_words(pre: int, post: int) -> tuple[str, str]:
    """``pre`` forward pre-hooks and ``post`` forward hooks in words, with the pronoun a
    refusal's "remove … first" takes: ("a forward pre-hook", "it"), ("2 forward hooks",
    "them"), ("a forward pre-hook and a forward hook", "them")."""
    kinds = [(pre, "forward pre-hook"), (post, "forward hook")]
    words = " and ".join(f"a {what}" if n == 1 else f"{n} {what}s" for n, what in kinds if n)
    return words, "it" if pre + post == 1 else "them"


@contextmanager
def hooks_off() -> Iterator[None]:
    """Module calls in this thread run without their forward (pre-)hooks inside the
    block: fit's and evaluate's look at the output's shape before any step, which a
    PyTorch loop does not make (a hook counting calls or keeping rows saw it)."""
    previous = getattr(_thread, "hooks_off", False)
    _thread.hooks_off = True
    try:
        yield
    finally:
        _thread.hooks_off = previous


class _Table(dict):
    """A module's parameters, sub-modules or buffers by name. PyTorch code edits these
    directly (``model._modules[name] = layer``, an idiom for swapping a layer, is how
    ``model.name`` and forward change there): such an edit reaches the attribute too
    (what a forward and the planned stack read), and cached plans are made again, as an
    assignment of the attribute does. (The old layer ran on without a word, and
    ``parameters()`` gave the new one's.) Pickled and copied as a plain dict; the
    module's ``__setstate__`` makes it a table of the copy's."""

    __slots__ = ("_owner",)

    def __init__(self, owner: Module, items: Iterable = ()) -> None:
        super().__init__(items)
        self._owner = weakref.ref(owner)

    def __reduce__(self) -> tuple:
        return dict, (list(self.items()),)

    def __setitem__(self, key: str, value: object) -> None:
        self._put(key, value, by_place=True)

    def _put(self, key: str, value: object, by_place: bool = False) -> None:
        owner = self._owner()
        layers = getattr(owner, "_names_its_layers", False) and isinstance(value, Module)
        if (
            layers
            and by_place
            and isinstance(key, str)
            and key.isdigit()
            and key not in self
            and int(key) < len(self)
            and not any(k.isdigit() for k in self)
        ):  # PyTorch's key of a Sequential's i-th layer ('0'): that layer replaced, as
            # PyTorch's model._modules['0'] = layer does (it was added at the end, after
            # the head, without a word); wxb keys its layers by name
            given, key = key, list(self)[int(key)]
            if value.name == given:  # (named so by model.__setattr__ on the way)
                value.name = None
        if (
            isinstance(value, np.ndarray)
            and owner is not None
            and vars(owner).get("_buffers") is self
        ):
            value = _as_buffer(value)  # (model._buffers[key] = array: a buffer as any other)
        held = dict.get(self, key, _ABSENT)
        if layers and value.name is None and not any(m is value for m in dict.values(self)):
            # an unnamed layer takes its key as its name, as Sequential's model.key = layer
            value.name = key  # names it (wxb.save refused the model: "named None")
        dict.__setitem__(self, key, value)
        if owner is not None and held is not value:  # (a buffer changed in place: the same)
            owner.__dict__[key] = value
            _structure_changed()

    def __delitem__(self, key: str) -> None:
        dict.__delitem__(self, key)
        owner = self._owner()
        if owner is not None:
            owner.__dict__.pop(key, None)
            _structure_changed()

    def pop(self, key: str, *default: object) -> object:
        if key not in self:
            return dict.pop(self, key, *default)
        value = self[key]
        del self[key]
        return value

    def popitem(self) -> tuple[str, object]:
        key = next(reversed(self))
        return key, self.pop(key)

    def clear(self) -> None:
        for key in list(self):
            del self[key]

    def update(self, *args: object, **kwargs: object) -> None:
        for key, value in dict(*args, **kwargs).items():
            self._put(key, value)  # (as given: a table rebuilt keeps its keys)

    def setdefault(self, key: str, default: object = None) -> object:
        if key not in self:
            self[key] = default
        return self[key]

    def __ior__(self, other: object) -> _Table:
        self.update(other)
        return self


_ABSENT = object()


def _insert_in_place(table: dict, key: str, value: object, order: list[str]) -> None:
    """``table[key] = value`` placed after the keys that came before ``key`` in ``order``
    (the table's order when ``key`` was set to None)."""
    before = set(order[: order.index(key)])
    items = list(table.items())
    place = max((i + 1 for i, (k, _) in enumerate(items) if k in before), default=0)
    items.insert(place, (key, value))
    table.clear()
    table.update(items)


# what a module keeps in its __dict__ besides its tables' entries, each set on the way
_HELD_BESIDES = ("_vacated", "_non_persistent", "_given_buffers", "_forward_hooks",
                 "_forward_pre_hooks", "_forward_hooks_always_called", "_backward_hooks",
                 "_backward_pre_hooks")  # fmt: skip


def _forget_held(module: Module) -> None:
    """Module.__init__ run again on a module (a second base's __init__ under multiple
    inheritance, ``Enc.__init__(self); Head.__init__(self)``, or ``model.__init__()`` to
    start over) forgets its parameters, sub-modules, buffers and hooks, as torch's: their
    attributes go too, so a forward reading one fails as torch's does. (They stayed as
    plain attributes: the forward ran on layers that neither trained nor saved.)"""
    held = module.__dict__
    for table in ("_parameters", "_modules", "_buffers"):
        for key in held[table]:
            held.pop(key, None)
    for key in _HELD_BESIDES:
        held.pop(key, None)
    _structure_changed()


def _held_kind(value: object) -> str | None:
    """ "module" or "parameter": a list, tuple or dict with a Module (else a Parameter)
    among its items (or values); else None."""
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, (list, tuple)):
        return None
    items = list(value)
    if any(isinstance(item, Module) for item in items):
        return "module"
    return "parameter" if any(isinstance(item, Parameter) for item in items) else None


def _read_only(module: Module, key: str, error: AttributeError | None) -> AttributeError | None:
    """The error of ``module.key = value`` where ``key`` is one of wxb's read-only
    properties (``dtype``, ``label``, a Linear's ``in_features``): PyTorch code keeps such
    names of its own (``self.dtype = dtype``), and Python's "property 'dtype' of 'Net'
    object has no setter" said neither whose it is nor what to do. Others as raised."""
    for cls in type(module).__mro__:
        held = vars(cls).get(key)
        if held is None:
            continue
        if isinstance(held, property) and held.fset is None and cls.__module__.startswith("wxb."):
            return AttributeError(
                f"{module.label}.{key} is wxb's {cls.__name__}.{key}, read-only (wxb computes "
                f"it from the module itself); keep a value of yours under another name "
                f"(self.my_{key} = …)"
            )
        break
    return error


# Methods wxb's own code calls on a model it is given (fit, predict, evaluate, save, the
# summary, repr): a plain value under one of these names hid it, and the call failed
# far from the assignment with "'str' object is not callable". (Others, ``config`` and
# ``type`` say, which models ported from elsewhere hold values under, are left free.)
CALLED_METHODS = frozenset(
    {
        "predict", "summary", "train", "eval", "evaluating", "parameters",
        "named_parameters", "buffers", "named_buffers", "modules", "named_modules",
        "children", "named_children", "state_dict", "load_state_dict", "zero_grad",
        "extra_repr",
    }
)  # fmt: skip


def _hidden_method(module: Module, key: str, value: object) -> AttributeError | None:
    """The error of ``module.key = value`` where ``value`` is no function and ``key`` is
    one of ``CALLED_METHODS`` (``self.summary = "…"``, ``self.train = True``). A callable
    is taken: it replaces the method on purpose."""
    if key not in CALLED_METHODS or callable(value):
        return None
    return AttributeError(
        f"{module.label}.{key} = a {type(value).__name__}: {key} is wxb's method "
        f"{type(module).__name__}.{key}(), which fit, predict and the other tools call, "
        f"and the value would hide it; keep it under another name (self.my_{key} = …)"
    )


def _not_a_record(module: Module, value: object) -> ConfigError:
    """The error of ``module.info = value`` where ``value`` is no dict: ``info`` is wxb's
    record of the model, which fit writes and evaluate, predict and save read as a dict
    (a str there failed in fit with "'str' object has no attribute 'get'")."""
    label = module.label if "_parameters" in module.__dict__ else type(module).__name__
    shown = "None" if value is None else f"a {type(value).__name__}"
    return ConfigError(
        f"{label}.info = {shown}: info is wxb's record of the model, a dict "
        "(loss, task, classes, feature names) that fit writes and evaluate, predict and save "
        "read; add to it (self.info['note'] = …) or keep your value under another name "
        "(self.my_info = …)"
    )


def _bool_ids(module: Module, what: str) -> DataError:
    """Bools handed to a model that looks its input up as ids: made 0./1. as features
    are, True and False looked up rows 1 and 0 (torch refuses bool ids)."""
    return DataError(
        f"{type(module).__name__} {what}: ids are integers, not bools (True/False would look "
        "up rows 1 and 0); pass ids.astype(np.int64)"
    )


def _all_held(module: Module, value: object) -> bool:
    """Whether every module and parameter in the list, tuple or dict ``value`` is one
    ``module`` holds already (registered, so trained and saved)."""
    items = list(value.values() if isinstance(value, dict) else value)
    modules, params = module._module_tree()[2], module._parameter_ids()
    return all(
        id(item) in modules if isinstance(item, Module) else id(item) in params
        for item in items
        if isinstance(item, (Module, Parameter))
    )


class RemovableHandle:
    """What ``register_forward_hook`` and ``register_forward_pre_hook`` return:
    ``remove()`` takes the hook off (also at the end of a ``with`` block), as PyTorch's."""

    _ids = itertools.count()

    def __init__(self, module: object, kind: str) -> None:  # (an optimiser's too: optim.py)
        self.id = next(RemovableHandle._ids)
        self._module, self._kind = weakref.ref(module), kind

    def remove(self) -> None:
        module = self._module()
        hooks = None if module is None else module.__dict__.get(self._kind)
        if hooks is not None and self.id in hooks:
            hooks = {key: entry for key, entry in hooks.items() if key != self.id}
            if hooks:
                object.__setattr__(module, self._kind, hooks)
            else:
                object.__delattr__(module, self._kind)  # (no hooks: the fast call again)
            always = module.__dict__.get("_forward_hooks_always_called")
            if always and self.id in always:
                object.__setattr__(module, "_forward_hooks_always_called", always - {self.id})
            _structure_changed()

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` left out: names the model has that the state lacked, and
    names the state has that the model lacks (PyTorch's ``_IncompatibleKeys``)."""

    missing_keys: list[str]
    unexpected_keys: list[str]

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return (
            f"IncompatibleKeys(missing_keys={self.missing_keys!r}, "
            f"unexpected_keys={self.unexpected_keys!r})"
        )


def _state_array(name: str, value: object, assign: bool = False) -> np.ndarray:
    """A state dict's value as a NumPy array: a wxb Tensor's data, an array, or another
    library's tensor. A torch Parameter (dict(named_parameters()), which torch's
    load_state_dict takes) is read detached: np.asarray of it raised torch's
    RuntimeError. Floats NumPy has no dtype for (torch's bfloat16, float8) are widened
    to float32, exactly, as torch's copy into a float32 parameter reads them (a bf16
    checkpoint was refused, where torch loads it); other values NumPy cannot hold are
    refused by name, and so is widening under ``assign=True`` (torch's parameter would
    take that dtype)."""
    if isinstance(value, Tensor):
        return np.asarray(value.data)
    refuse_masked(value, name)
    try:
        if callable(getattr(value, "detach", None)) and not isinstance(value, np.ndarray):
            value = value.detach()  # (the values only, as torch copies them)
            value = value.cpu() if callable(getattr(value, "cpu", None)) else value
            if _float_numpy_lacks(value):
                if not assign:
                    return np.asarray(value.float())
                raise ConfigError(
                    f"{name}: load_state_dict(assign=True) would make this parameter "
                    f"{value.dtype}, as PyTorch's does, a dtype wxb has not; load with "
                    "assign=False (the values widened to the model's dtype)"
                )
        return np.asarray(value)
    except (TypeError, RuntimeError, ValueError, NotImplementedError) as exc:
        if isinstance(exc, ConfigError):
            raise
        dtype = getattr(value, "dtype", type(value).__name__)
        raise DataError(
            f"{name}: its {dtype} values cannot be read as a NumPy array ({exc}); cast them "
            "first (for a torch tensor: .float() or .double())"
        ) from None


def _float_numpy_lacks(value: object) -> bool:
    """Whether ``value`` is a real floating tensor of a dtype NumPy has not (bfloat16)."""
    floating = getattr(value, "is_floating_point", None)
    if not (callable(floating) and floating() and not value.is_complex()):
        return False
    try:
        np.asarray(value[:0] if getattr(value, "ndim", 0) else value.reshape(1)[:0])
    except TypeError:
        return True
    return False


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _assign_state(targets: list[tuple]) -> None:
    """``load_state_dict(assign=True)``'s change, as torch's: each module takes the state's
    values themselves, not copies into its arrays. A Parameter given becomes the module's
    (its requires_grad the one it replaces), another tensor or array becomes a new
    Parameter in that memory (Parameter(t) in torch shares t's); a buffer takes the array.
    A parameter shared by several modules (tied) is replaced by one new one in each of
    its places. Read-only memory (np.broadcast_to's) is copied: a step writes in place."""
    replaced: dict[int, Parameter] = {}
    for old, _, array, module, key, given in targets:
        if old is None:
            setattr(module, key, given.data if isinstance(given, Tensor) else array)
            continue
        new = replaced.get(id(old))
        if new is None:
            if isinstance(given, Parameter):
                new = given
                new.requires_grad = old.requires_grad
            else:
                new = Parameter(array, requires_grad=old.requires_grad)  # (a copy, first)
                if array.flags.writeable and type(array) is np.ndarray:
                    new.data = array  # the given memory itself
                    if isinstance(given, Tensor) and given.data is array:
                        new._versions = given._versions  # (a change through one counts for both)
                        new._own_counter()
            replaced[id(old)] = new
        setattr(module, key, new)


class MemoryTie(NamedTuple):
    """Where a parameter's array lies in the memory of another (its ``holder``, a
    C-contiguous array): the first element's index there, its shape and its strides,
    in elements (``np.lib.stride_tricks.as_strided`` of the holder's flat memory)."""

    holder: str
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]


def memory_ties(named: Iterable[tuple[str, Parameter]]) -> tuple[dict[str, MemoryTie], list[str]]:
    """Parameters viewing memory another one holds (``Parameter(enc.weight.T)``,
    ``dec.weight.data = enc.weight.data.T``: one array stepped for both) → where each lies
    in its holder's, and a line for each sharing no such tie describes (memory shared
    otherwise: two views of an array no parameter holds whole, another dtype). The
    holder of memory shared is the first parameter given whose C-contiguous array spans
    all the others'; a parameter given twice (the same object) is no tie of memory."""
    arrays: dict[int, tuple[str, np.ndarray]] = {}
    for name, param in named:
        if id(param) not in arrays and param.data.size:
            arrays[id(param)] = (name, param.data)
    spans = sorted(
        (*byte_bounds(array), order, name, array)
        for order, (name, array) in enumerate(arrays.values())
    )
    groups: list[list[tuple[int, str, np.ndarray]]] = []
    reach = None  # groups of overlapping byte ranges, then of memory shared within them
    for low, high, order, name, array in spans:
        if reach is None or low >= reach:
            groups.append([])
        groups[-1].append((order, name, array))
        reach = high if reach is None else max(reach, high)
    ties: dict[str, MemoryTie] = {}
    problems: list[str] = []
    for group in groups:
        group.sort(key=lambda member: member[0])
        while len(group) > 1:
            first = group.pop(0)
            shared = [m for m in group if np.shares_memory(first[2], m[2])]
            if not shared:
                continue
            members = [first, *shared]
            group = [m for m in group if all(m is not s for s in shared)]
            tied, problem = _tie_of_memory(members)
            ties.update(tied)
            if problem:
                problems.append(problem)
    return ties, problems


def _tie_of_memory(
    members: list[tuple[int, str, np.ndarray]],
) -> tuple[dict[str, MemoryTie], str | None]:
    """The ties of parameters sharing memory (in the order given), or why there are none."""
    names = ", ".join(name for _, name, _ in members)
    bounds = [byte_bounds(array) for _, _, array in members]
    low, high = min(b[0] for b in bounds), max(b[1] for b in bounds)
    holder = next(
        (
            m
            for m, b in zip(members, bounds, strict=True)
            if m[2].flags.c_contiguous and b == (low, high)
        ),
        None,
    )
    if holder is None:
        return {}, f"{names} share memory no one of them holds whole as a C-contiguous array"
    base, item = holder[2], holder[2].itemsize
    start = base.__array_interface__["data"][0]
    ties = {}
    for member in members:
        if member is holder:  # (the other may hold the very same array: Parameter(p))
            continue
        _, name, array = member
        offset = array.__array_interface__["data"][0] - start
        if array.dtype != base.dtype or offset % item or any(s % item for s in array.strides):
            return {}, f"{name} views {holder[1]}'s memory as another dtype or off its elements"
        ties[name] = MemoryTie(
            holder[1], offset // item, tuple(array.shape), tuple(s // item for s in array.strides)
        )
    return ties, None


def view_of_memory(holder: np.ndarray, tie: MemoryTie) -> np.ndarray | None:
    """The view ``tie`` describes of ``holder``'s memory; None where it is not one (the
    holder not C-contiguous, or the view reaching outside its elements)."""
    shape, strides, offset = tie.shape, tie.strides, tie.offset
    if not holder.flags.c_contiguous or len(shape) != len(strides):
        return None
    if any(n <= 0 for n in shape):
        return None
    lowest = offset + sum((n - 1) * s for n, s in zip(shape, strides, strict=True) if s < 0)
    highest = offset + sum((n - 1) * s for n, s in zip(shape, strides, strict=True) if s > 0)
    if lowest < 0 or highest >= holder.size:  # (as_strided checks nothing: checked here)
        return None
    flat = holder.reshape(-1)[offset:]
    item = holder.itemsize
    return np.lib.stride_tricks.as_strided(flat, shape, tuple(s * item for s in strides))


# memo's key while a module's deep copy runs (a str: deepcopy's own keys are ids)
_COPYING = "wxb: a module is being copied"
# the state's key (pickle's, and deepcopy's) of its parameters' ties of memory
_PICKLED_TIES = "_wxb_memory_ties"


def _tie_copies(original: Module, memo: dict) -> None:
    """After a deep copy: each copied parameter that viewed another's memory views its
    copy's (numpy's deepcopy gave it a copy of its own, which trained them apart)."""
    named = list(original.named_parameters())
    ties, _ = memory_ties(named)  # (memory shared otherwise: copied apart, as before)
    params = dict(named)
    for name, tie in ties.items():
        viewer, holder = memo.get(id(params[name])), memo.get(id(params[tie.holder]))
        if (
            viewer is None
            or holder is None
            or viewer is params[name]
            or holder is params[tie.holder]
        ):
            continue  # (a copy keeping the original's parameters: tied as they are)
        _view_in(viewer, holder, tie)


def _view_in(viewer: Parameter, holder: Parameter, tie: MemoryTie) -> None:
    """``viewer``'s array made the view ``tie`` describes of ``holder``'s memory (its
    values written there), unless it lies there already or the tie does not fit."""
    if np.shares_memory(viewer.data, holder.data):
        return
    view = view_of_memory(holder.data, tie)
    if view is not None and view.dtype == viewer.dtype and view.shape == viewer.shape:
        view[...] = viewer.data
        viewer.data = view


def _held_mode(module: Module, held: list) -> bool | None:
    """``module``'s mode in this thread's innermost open ``evaluating()`` block holding it
    (each block's entry: its modules' ids, all in eval mode, or each one's mode by id
    where classes have a ``train`` of their own, ``_eval_modes``); None: in none."""
    key = id(module)
    for modes in reversed(held):
        if key in modes:
            return modes[key] if type(modes) is dict else False
    return None


# Keras's predict arguments wxb has not, each with wxb's way, and their defaults (taken)
_KERAS_PREDICT_WAYS = {
    "steps": "predict gives an output for every row of X, batch_size rows at a time",
    "callbacks": "predict calls none; it returns the outputs",
}
_KERAS_PREDICT_DEFAULTS = {"steps": None, "callbacks": ()}


def keras_verbose(value: object, where: str) -> None:
    """Keras's ``verbose`` on predict and evaluate (``model.predict(X, verbose=0)``, a
    Keras script's habit, met Python's "unexpected keyword argument"): taken, as wxb's
    show no progress; a value Keras has not is refused."""
    flag = isinstance(value, (bool, np.bool_))
    number = isinstance(value, (int, np.integer)) and not flag and value in (0, 1, 2)
    if not (flag or number or (isinstance(value, str) and value == "auto")):
        raise ConfigError(f'{where} verbose must be 0, 1, 2, True, False or "auto"; got {value!r}')


# Keras's and scikit-learn's model methods wxb has not, each with whose it is and wxb's
# way (a Dense's W is (out, in), as the seed writes W·X: Keras's kernel is (in, out))
_MODEL_METHOD_WAYS = {
    **dict.fromkeys(
        ("compile", "fit", "evaluate"),  # Keras's methods: wxb's are functions
        (
            "Keras's",
            "wxb trains with wxb.fit(model, X, y, loss=…, optimizer=…, epochs=…) (compile's "
            "settings are fit's arguments) and scores with wxb.evaluate(model, X, y), a dict "
            "(Keras's loss, acc = model.evaluate(X, y) is wxb.evaluate(model, X, y, "
            "return_dict=False))",
        ),
    ),
    "save": (
        "Keras's",
        'wxb.save(model, "model.safetensors") writes it, wxb.load(path) rebuilds it (of stock '
        "layers; a model of one's own saves its weights, wxb.save(model.state_dict(), path), "
        "and model.load_state_dict(wxb.load(path)) takes them back)",
    ),
    "save_weights": ("Keras's", 'wxb.save(model.state_dict(), "weights.safetensors")'),
    "load_weights": ("Keras's", 'model.load_state_dict(wxb.load("weights.safetensors"))'),
    "get_weights": (
        "Keras's",
        "[p.data.copy() for p in model.parameters()]: of Dense layers in Keras's order, each "
        "W then b, W of shape (out, in), Keras's kernel transposed",
    ),
    "set_weights": (
        "Keras's",
        "model.load_state_dict(dict(zip(model.state_dict(), arrays))): of Dense layers "
        "Keras's arrays in their order, each kernel given as kernel.T (W is (out, in))",
    ),
    "count_params": (
        "Keras's",
        "sum(p.numel() for p in model.parameters()) (model.summary() shows it)",
    ),
    "predict_classes": ("tf.keras 2.5's", "model.predict(X).argmax(1)"),
    "predict_proba": (
        "scikit-learn's",
        "wxb.nn.functional.softmax(wxb.tensor(model.predict(X)), dim=1).data, a classifier's "
        "logits made probabilities (or wxb.sklearn's MLPClassifier, which has it)",
    ),
    "score": (
        "scikit-learn's",
        "wxb.evaluate(model, X, y)['accuracy'] for a classifier; for a regression, R², "
        "wxb.metrics.regression_figures(y, model.predict(X))['r2']",
    ),
}


class Module:
    """Base of layers and models. Parameters and sub-modules are plain attributes.

    Each module may also hold *buffers*: arrays saved with the model but not
    trained (e.g. the mean and scale of ``Standardize``).
    """

    name: str | None = None
    _training: bool = True
    # whether its output for a row depends on the other rows of the batch in eval mode
    # (a BatchNorm1d without running statistics): predict and evaluate then take all rows
    # as one batch, as model(X) does, instead of in chunks
    _couples_rows: bool = False
    # buffers a state may leave out (load_state_dict keeps them as they are), as PyTorch's
    # BatchNorm takes a state dict without num_batches_tracked
    _kept_if_missing: tuple[str, ...] = ()

    # whether the class, as defined, has a train or eval of its own (evaluating() then
    # calls eval(); one assigned to the class later is not seen)
    _own_modes: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _DEFINED_FORWARD[cls] = cls.forward  # (stock_kind compares a kind's with it)
        if cls.train is not Module.train or cls.eval is not Module.eval:
            cls._own_modes = True  # (set only then: wxb.save reads a class's own names)

    def __init__(self) -> None:
        first_run = "_parameters" not in self.__dict__
        if not first_run:  # run again: what it held forgotten, as torch's
            _forget_held(self)
        for table in ("_parameters", "_modules", "_buffers"):
            object.__setattr__(self, table, _Table(self))
        self.training = True
        if "name" not in self.__dict__:  # (one given before, as torch code may, kept)
            self.name = None
        if not first_run or "info" not in self.__dict__:  # (as the name: one given kept)
            self.info: dict[str, Any] = {}

    @property
    def training(self) -> bool:
        """Training mode (Dropout active): the module's own mode, unless this thread is
        inside ``evaluating()``, which sets ``model.eval()``'s mode for this thread only."""
        held = getattr(_thread, "evaluating", None)
        if held:
            mode = _held_mode(self, held)
            if mode is not None:
                return mode
        return self._training

    @training.setter
    def training(self, mode: bool) -> None:
        recording = getattr(_thread, "recording_modes", None)  # _eval_modes's model.eval()
        if recording is not None and "_training" in self.__dict__:
            recording[id(self)] = bool(mode)
            return
        object.__setattr__(self, "_training", bool(mode))

    def __getattr__(self, key: str) -> Any:
        """Only for a name not found (no cost to a found one): Keras's model methods
        (``compile``, ``fit``, ``save``, ``get_weights``, …) and scikit-learn's
        ``predict_proba`` and ``score`` named with wxb's way, on any model, a Sequential or
        one's own (Python's bare AttributeError named none). Not methods: a layer or
        parameter of that name would then be refused as hiding it."""
        held = getattr(type(self), key, None)
        if isinstance(held, property) and held.fget is not None:
            # its getter raised AttributeError (LayerNorm's in_features of several dims):
            # Python calls this instead, and its message, the reason, is raised again
            return held.fget(self)
        message = f"{type(self).__name__!r} object has no attribute {key!r}"
        if key in _MODEL_METHOD_WAYS:
            whose, way = _MODEL_METHOD_WAYS[key]
            message += f"; model.{key} is {whose}: {way}"
        raise AttributeError(message, name=key, obj=self)

    def __setattr__(self, key: str, value: object) -> None:
        if key == "info" and not isinstance(value, dict):
            raise _not_a_record(self, value)
        if key == "name" and value is not None and not isinstance(value, str):
            # the label showed '5' and only wxb.save refused it, far from the assignment
            raise ConfigError(
                f"{type(self).__name__}.name = {value!r}: a module's name is text or None "
                f"(got {type(value).__name__}); write name={str(value)!r}"
            )
        if "_parameters" not in self.__dict__:
            if isinstance(value, (Parameter, Module)) or _held_kind(value) is not None:
                raise ConfigError(
                    f"{type(self).__name__}.__init__ must call super().__init__() first"
                )
            # a plain value before it, as torch's takes it (a subclass's reset_parameters,
            # which Linear's __init__ calls, reads settings given first: self.std = std)
            object.__setattr__(self, key, value)
            return
        if key in ("_parameters", "_modules", "_buffers") and isinstance(value, Mapping):
            # PyTorch code may set a whole table (model._modules = OrderedDict(...), to
            # reorder a stack): it becomes the module's, its entries the attributes
            for name in self.__dict__[key]:
                self.__dict__.pop(name, None)
            items = value.items()
            if key == "_buffers":  # (each array a buffer as any other)
                items = [(k, _as_buffer(a) if isinstance(a, np.ndarray) else a) for k, a in items]
            table = _Table(self, items)
            self.__dict__.update(table)
            object.__setattr__(self, key, table)
            _structure_changed()
            return
        params, modules, buffers = self._parameters, self._modules, self._buffers
        if isinstance(value, Module) and (
            key in params or self._vacated_kind(key) == "parameter"
        ):  # as PyTorch refuses it: the parameter would be dropped from the model unsaid
            raise ConfigError(
                f"{self.label}.{key} is a parameter: assign a wxb.nn.Parameter or None, not a "
                f"{type(value).__name__}"
            )
        if isinstance(value, (Parameter, Module)):
            if isinstance(getattr(type(self), key, None), property):  # (rare: a cheap look)
                refused = _read_only(self, key, None)
                if refused is not None:  # one of wxb's: reads would not see it (RMSNorm.bias)
                    raise refused
            # A name already held keeps its place, as in PyTorch: a Sequential's layer
            # replaced by assignment stays where it was in the order.
            own = params if isinstance(value, Parameter) else modules
            for table in (params, modules, buffers):
                if table is not own:
                    table.pop(key, None)
            vacated = self.__dict__.get("_vacated", {})
            entry = vacated.pop(key, None)
            if isinstance(entry, list):  # a model pickled before kinds were kept: its order
                entry = ("parameter" if own is params else "module", entry)
            kind, order = entry or (None, None)
            if key not in own and kind == ("parameter" if own is params else "module"):
                _insert_in_place(own, key, value, order)  # set to None before: back in its place
            else:
                own[key] = value
            _structure_changed()
            # into __dict__ itself, past a property of the class by this name (a W computed
            # from g and v, weight norm as torch users write it, over Linear's W): torch's
            # __setattr__ registers the parameter without calling its setter, where
            # object.__setattr__ raised "property 'weight' has no setter"
            self.__dict__[key] = value
            return
        elif value is None:  # ``layer.bias = None``: the parameter (module, buffer) is gone
            for kind, table in (("parameter", params), ("module", modules), ("buffer", buffers)):
                if key in table:  # its place and kind are kept for a later assignment, as
                    # PyTorch keeps the name in its table with the value None
                    order = self._slot_order(kind, table)
                    self.__dict__.setdefault("_vacated", {})[key] = (kind, order)
                    del table[key]
                    _structure_changed()
        elif key in params or key in modules or self._vacated_kind(key) in ("parameter", "module"):
            # (set to None before: still a parameter's or module's name, as in PyTorch)
            kind = "parameter" if key in params else "module" if key in modules else None
            kind = kind or self._vacated_kind(key)
            wanted = "Parameter" if kind == "parameter" else "Module"
            hint = f" (to change its values in place: {key}.data[...] = …)" if key in params else ""
            raise ConfigError(
                f"{self.label}.{key} is a {kind}: assign a wxb.nn.{wanted} or None, not a "
                f"{type(value).__name__}{hint}"
            )
        elif key in buffers or self._vacated_kind(key) == "buffer":
            # a buffer keeps its place and stays saved with the model (one set to None
            # before comes back as a buffer, in its place, as PyTorch's does)
            value = _buffer_array(value, f"{self.label}.{key} (a buffer)")
            if key in buffers:
                buffers[key] = value
            else:
                _insert_in_place(buffers, key, value, self.__dict__["_vacated"].pop(key)[1])
            _structure_changed()
        elif key in ("forward", "__class__"):  # a forward set on the instance, or another
            _structure_changed()  # class (layer.__class__ = …), changes what it computes
        elif (held := _held_kind(value)) is not None and not _all_held(self, value):
            # (a list of layers it holds already, kept to look at them, is as torch's: a
            # plain attribute beside the registered ones)
            where = (
                "wxb.nn.ModuleList([...]) (a dict: wxb.nn.ModuleDict), a Sequential"
                if held == "module"
                else "wxb.nn.ParameterList([...]) (a dict: wxb.nn.ParameterDict)"
            )
            raise ConfigError(
                f"{self.label}.{key}: a {type(value).__name__} of {held}s is not registered "
                "(their values would not train or be saved; PyTorch's plain lists are not "
                f"either): hold them in {where}, or attributes"
            )
        elif key in CALLED_METHODS and (refused := _hidden_method(self, key, value)) is not None:
            raise refused
        try:
            object.__setattr__(self, key, value)
        except AttributeError as error:
            raise _read_only(self, key, error) from None

    def _vacated_kind(self, key: str) -> str | None:
        """The kind ("parameter", "module", "buffer") ``key`` held until set to None, if any."""
        entry = self.__dict__.get("_vacated", {}).get(key)
        return entry[0] if isinstance(entry, tuple) else None

    def __delattr__(self, key: str) -> None:
        """``del module.name`` removes a parameter, sub-module or buffer, as in PyTorch."""
        vacated = self.__dict__.get("_vacated", {})
        vacated.pop(key, None)  # the name is free: any kind again
        for name, entry in list(vacated.items()):  # and no longer places the others: one
            # held by None stays where it is, before the name if it comes back, as PyTorch's
            if isinstance(entry, tuple) and key in entry[1]:
                vacated[name] = (entry[0], [k for k in entry[1] if k != key])
        self.__dict__.get("_non_persistent", set()).discard(key)
        held = False
        for table in (self._parameters, self._modules, self._buffers):
            if key in table:
                del table[key]  # (the table takes the attribute with it)
                held = True
        if key == "forward" and "forward" in self.__dict__:
            _structure_changed()
        if not held or key in self.__dict__:
            object.__delattr__(self, key)

    def register_buffer(self, key: str, array: np.ndarray | None, persistent: bool = True) -> None:
        """Keep ``array`` on the module as state that is saved but not trained; with
        ``persistent=False`` it is left out of ``state_dict()`` (and so of model files and
        ``load_state_dict``), as PyTorch's. ``None`` holds the name for a buffer assigned
        later (``module.key = array`` then takes its place, as PyTorch's)."""
        self._check_name(key, "register_buffer")
        if key in self._parameters or key in self._modules:
            kind = "parameter" if key in self._parameters else "sub-module"
            raise ConfigError(
                f"{self.label}.register_buffer: {key!r} is already a {kind} (PyTorch refuses "
                "it too); delete it first, or choose another name"
            )
        if (
            key not in self._buffers
            and self._vacated_kind(key) != "buffer"
            and (key in vars(self) or hasattr(type(self), key))
        ):  # as PyTorch: "info" or "training" would be overwritten by the array
            raise ConfigError(
                f"{self.label}.register_buffer: {key!r} is already an attribute of this "
                "module (PyTorch refuses it too); delete it first, or choose another name"
            )
        if array is not None:
            array = _buffer_array(array, f"{self.label}.register_buffer({key!r}, …)")
        hidden = self.__dict__.get("_non_persistent")
        if not persistent:
            if hidden is None:
                hidden = set()
                object.__setattr__(self, "_non_persistent", hidden)
            hidden.add(key)
        elif hidden is not None:
            hidden.discard(key)
        if array is None:
            self._set_none(key, "buffer", self._buffers)
            return
        entry = self.__dict__.get("_vacated", {}).pop(key, None)
        if key not in self._buffers and isinstance(entry, tuple) and entry[0] == "buffer":
            # a buffer's name held by None (register_buffer(key, None), or set to None):
            # back in its place, as PyTorch's (appended, state_dict's order was not torch's)
            _insert_in_place(self._buffers, key, array, entry[1])
        else:
            self._buffers[key] = array
        _structure_changed()  # its dtype may differ from the others' (plans check that)
        object.__setattr__(self, key, array)

    def _persistent(self, key: str) -> bool:
        return key not in self.__dict__.get("_non_persistent", ())

    def _set_none(self, key: str, kind: str, table: dict) -> None:
        """``key``, a ``kind`` registered as None: one in ``table`` is vacated in its place,
        as assigning None does; a new name is held after its kind's names."""
        if key in table:
            setattr(self, key, None)
        elif self._vacated_kind(key) != kind:
            self._hold_place(key, kind, table)

    def _hold_place(self, key: str, kind: str, table: dict) -> None:
        """``key`` as a ``kind`` set to None, after every name of that kind (PyTorch keeps
        such a name in its table with the value None)."""
        order = [*self._slot_order(kind, table), key]
        self.__dict__.setdefault("_vacated", {})[key] = (kind, order)
        object.__setattr__(self, key, None)

    def _slot_order(self, kind: str, table: dict) -> list[str]:
        """The names of ``kind`` in PyTorch's order: those ``table`` holds, and those set to
        None, each after the names that came before it (so that names set to None
        together come back in their places whatever the order they are assigned in)."""
        names = list(table)
        for key, entry in self.__dict__.get("_vacated", {}).items():
            if isinstance(entry, tuple) and entry[0] == kind and key not in names:
                order = entry[1]
                before = set(order[: order.index(key)])
                place = max((i + 1 for i, k in enumerate(names) if k in before), default=0)
                names.insert(place, key)
        return names

    def _check_name(self, key: object, where: str, kind: str | None = None) -> None:
        """``key`` names a new slot (or, with ``kind``, one of that kind already): refused
        where PyTorch refuses it (not a string, empty, a dot, another attribute's name)."""
        if not isinstance(key, str):
            raise ConfigError(
                f"{self.label}.{where}: a name is a string; got {type(key).__name__} {key!r}"
            )
        if not key or "." in key:
            raise ConfigError(
                f"{self.label}.{where}: {key!r} is no name (it must be non-empty and hold no "
                "'.', which joins the names of a path)"
            )
        if kind is None:
            return
        table = self._parameters if kind == "parameter" else self._modules
        if key in table or self._vacated_kind(key) == kind:
            return
        taken = (
            "a parameter"
            if key in self._parameters
            else "a sub-module"
            if key in self._modules
            else "a buffer"
            if key in self._buffers
            else f"a {self._vacated_kind(key)} set to None"
            if self._vacated_kind(key)
            else "an attribute"
            if key in vars(self) or hasattr(type(self), key)
            else None
        )
        if taken is not None:
            raise ConfigError(
                f"{self.label}.{where}: {key!r} is already {taken} of this module (PyTorch "
                "refuses it too); choose another name, or delete it first"
            )

    # -- adding parts by name ----------------------------------------------------------
    def add_module(self, name: str, module: Module | None) -> None:
        """``module`` as the sub-module ``name``, as ``self.name = module`` does (a name
        held keeps its place); ``None`` holds the name for a module assigned later."""
        self._check_name(name, "add_module", "module")
        if module is None:
            self._set_none(name, "module", self._modules)
            return
        if not isinstance(module, Module):
            raise ConfigError(
                f"{self.label}.add_module({name!r}, …): {type(module).__name__} is not a "
                "wxb.nn.Module"
            )
        setattr(self, name, module)  # the path that tells cached plans the model changed

    def register_module(self, name: str, module: Module | None) -> None:
        """``add_module`` under PyTorch's other name."""
        self.add_module(name, module)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """``param`` as the parameter ``name``, as ``self.name = param`` does; ``None``
        holds the name for a parameter assigned later (a layer without bias)."""
        self._check_name(name, "register_parameter", "parameter")
        if param is None:
            self._set_none(name, "parameter", self._parameters)
            return
        if not isinstance(param, Parameter):
            raise ConfigError(
                f"{self.label}.register_parameter({name!r}, …) takes a wxb.nn.Parameter or "
                f"None; got a {type(param).__name__} (wrap it: Parameter(values))"
            )
        setattr(self, name, param)  # the path that tells cached plans the model changed

    def apply(self, fn: Callable[[Module], object]) -> Module:
        """``fn`` on every sub-module, children first, then on this module; returns self,
        as PyTorch's (``model.apply(init)``). What ``fn`` assigns goes through the usual
        attribute path, so plans made for the old structure are made again."""
        for child in list(self.children()):
            child.apply(fn)
        fn(self)
        return self

    # -- finding parts by path ---------------------------------------------------------
    def get_submodule(self, target: str) -> Module:
        """The sub-module at the dotted path ``target`` (``""``: this module);
        NotFoundError (an AttributeError, as PyTorch's) naming where the path ends."""
        return self._submodule(target, f"get_submodule({target!r})")

    def _submodule(self, target: str, call: str) -> Module:
        if not isinstance(target, str):
            raise ConfigError(f"{self.label}.{call}: a path is a string")
        if target == "":
            return self
        module, walked = self, []
        for item in target.split("."):
            child = module._modules.get(item)
            if child is None:
                where = ".".join(walked) or "the model"
                held = ", ".join(module._modules) or "none"
                raise NotFoundError(
                    f"{self.label}.{call}: {where} ({module.label}) has no "
                    f"sub-module {item!r} (its sub-modules: {held})"
                )
            module = child
            walked.append(item)
        return module

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at the dotted path ``target`` (``"block.dense1.weight"``)."""
        path, _, key = target.rpartition(".")
        module = self._submodule(path, f"get_parameter({target!r})")
        if key not in module._parameters:
            raise NotFoundError(
                f"{self.label}.get_parameter({target!r}): {path or 'the model'} "
                f"({module.label}) has no parameter {key!r} (its parameters: "
                f"{', '.join(module._parameters) or 'none'})"
            )
        return module._parameters[key]

    def get_buffer(self, target: str) -> np.ndarray:
        """The buffer at the dotted path ``target`` (``"standardize1.mean"``)."""
        path, _, key = target.rpartition(".")
        module = self._submodule(path, f"get_buffer({target!r})")
        if key not in module._buffers:
            raise NotFoundError(
                f"{self.label}.get_buffer({target!r}): {path or 'the model'} ({module.label}) "
                f"has no buffer {key!r} (its buffers: {', '.join(module._buffers) or 'none'})"
            )
        return module._buffers[key]

    def __getstate__(self) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]]:
        """What pickle and deepcopy take: the attributes, less the cache of the module
        list, whose version number is this process's (one made in a fork()ed child could
        pass for current in the parent, listing modules the model no longer holds)."""
        state = dict(self.__dict__)
        state.pop("_modules_cache", None)
        state.pop("_own_code_cache", None)
        state.pop("_parameter_ids_cache", None)  # (the ids of this object's parameters)
        state.pop("_rows_alike_cache", None)
        # parameters viewing another's memory (Parameter(enc.weight.T)): pickle gives
        # each array memory of its own, so the ties go along, to be tied again on load
        ties, _ = memory_ties(self.named_parameters())
        if ties:
            state[_PICKLED_TIES] = ties
        slots = {  # a subclass's own __slots__: pickle takes them as (dict, slots)
            name: getattr(self, name) for name in slot_names(type(self)) if hasattr(self, name)
        }
        return (state, slots) if slots else state

    def __deepcopy__(self, memo: dict) -> Module:
        """What deepcopy makes of the state above, and then, as torch's copy of shared
        storage: a parameter that viewed another's memory views its copy's."""
        copied = type(self).__new__(type(self))
        memo[id(self)] = copied
        outermost = _COPYING not in memo  # (its tree's ties are tied once, by it)
        memo[_COPYING] = True
        try:
            copied.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        finally:
            if outermost:
                del memo[_COPYING]
        if outermost:
            _tie_copies(self, memo)
        return copied

    def __setstate__(self, state: dict[str, Any] | tuple[dict[str, Any], dict[str, Any]]) -> None:
        """What pickle and deepcopy restore: the attributes, with the tables of parameters,
        sub-modules and buffers made this module's (they travel as plain dicts)."""
        values, slots = state if isinstance(state, tuple) else (state, {})
        values = dict(values or {})
        ties = values.pop(_PICKLED_TIES, None)
        self.__dict__.update(values)
        for name, value in slots.items():
            object.__setattr__(self, name, value)
        buffers = self.__dict__.get("_buffers", {})
        for key, array in buffers.items():
            kept = _writable(array)
            kept = _as_buffer(kept) if isinstance(kept, np.ndarray) else kept
            if kept is not array:  # (one pickled before buffers were BufferArrays too)
                buffers[key] = self.__dict__[key] = kept
        for table in ("_parameters", "_modules", "_buffers"):
            object.__setattr__(self, table, _Table(self, self.__dict__.get(table, {})))
        if ties:  # (a parameter already in its holder's memory is left as it is)
            params = dict(self.named_parameters())
            for name, tie in ties.items():
                viewer, holder = params.get(name), params.get(tie.holder)
                if viewer is not None and holder is not None:
                    _view_in(viewer, holder, tie)

    # -- what the model holds --------------------------------------------------------
    def _module_list(self) -> list[Module]:
        """Every module of the tree (self first), cached until the structure changes."""
        return self._module_tree()[1]

    def _module_tree(self) -> tuple[int, list[Module], frozenset[int]]:
        """(structure version, every module of the tree, their ids), cached until the
        structure changes; the ids an ``_OwnModeIds`` where a class of the tree has a
        ``train`` or ``eval`` of its own."""
        cached = self.__dict__.get("_modules_cache")
        if cached is None or cached[0] != _structure_version:
            modules = [m for _, m in self.named_modules()]
            own = any(type(m)._own_modes for m in modules)
            cached = (
                _structure_version,
                modules,
                (_OwnModeIds if own else frozenset)(map(id, modules)),
            )
            object.__setattr__(self, "_modules_cache", cached)
        return cached

    def _parameter_ids(self) -> frozenset[int]:
        """The ids of the tree's parameters, cached until the structure changes (the
        weight guard's question: does a write touch what this model reads)."""
        cached = self.__dict__.get("_parameter_ids_cache")
        if cached is None or cached[0] != _structure_version:
            modules = self._module_tree()[1]
            ids = frozenset(id(p) for m in modules for p in m._parameters.values() if p is not None)
            cached = (_structure_version, ids)
            object.__setattr__(self, "_parameter_ids_cache", cached)
        return cached[1]

    def _computes_own_code(self) -> bool:
        """``_runs_own_code(self)``, cached until the structure changes (a call's check)."""
        cached = self.__dict__.get("_own_code_cache")
        if cached is None or cached[0] != _structure_version:
            cached = (_structure_version, _runs_own_code(self))
            object.__setattr__(self, "_own_code_cache", cached)
        return cached[1]

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Each direct sub-module once, under its first name (a layer given twice to a
        Sequential is one child), as PyTorch's."""
        seen: set[int] = set()
        for key, child in self._modules.items():
            if id(child) not in seen:
                seen.add(id(child))
                yield key, child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def named_modules(
        self, memo: set[int] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """This module and all below it, depth first, each once under its first path as
        PyTorch's; with ``remove_duplicate=False`` a module shared between places once
        per place (the paths a model file records). ``memo`` holds the ids of modules
        already given (PyTorch's holds the modules)."""
        if remove_duplicate:
            memo = set() if memo is None else memo
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for key, child in self._modules.items():
            yield from child.named_modules(memo, _join(prefix, key), remove_duplicate)

    def modules(self) -> Iterator[Module]:
        """This module and all below it, each once (``named_modules`` without names)."""
        for _, module in self.named_modules():
            yield module

    def _members(
        self, kind: str, prefix: str, recurse: bool, remove_duplicate: bool
    ) -> Iterator[tuple[str, Any]]:
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
        seen: set[int] = set()
        for path, module in modules if recurse else [(prefix, self)]:
            for key, value in getattr(module, kind).items():
                if remove_duplicate:
                    if id(value) in seen:
                        continue
                    seen.add(id(value))
                yield _join(path, key), value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Each parameter once, under its first name (a shared one is not stepped twice);
        ``recurse=False``: this module's own only."""
        return self._members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> list[Parameter]:
        """The parameters of ``named_parameters``. A list, where PyTorch's is a generator
        (len and indexing work; ``next(iter(model.parameters()))`` for the first)."""
        return [p for _, p in self.named_parameters(recurse=recurse)]

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, np.ndarray]]:
        """Each buffer once, under its first name; non-persistent ones too, as PyTorch's."""
        return self._members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        for _, array in self.named_buffers(recurse=recurse):
            yield array

    def num_parameters(self) -> int:
        return int(sum(p.data.size for p in self.parameters()))

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (PyTorch's default), or with ``set_to_none=False`` zero them."""
        forget_gradients(self.parameters(), set_to_none)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter; returns self, as in PyTorch."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    # -- modes and dtype ----------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode here and, through each child's own ``train``, below (a child
        that overrides it keeps its say, as in PyTorch, which also refuses a mode that is
        not a bool: train("False") would be training mode)."""
        if not isinstance(mode, (bool, np.bool_)):
            raise ConfigError(f"train(mode): mode must be True or False; got {mode!r}")
        mode = bool(mode)
        self.training = mode
        for child in self._modules.values():
            child.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def to(self, *args: object, dtype: object = None, device: object = None) -> Module:
        """Cast every parameter and float buffer to ``dtype`` (float32 or float64), in place;
        integer and boolean buffers (indices, counts) keep their dtype, as in PyTorch.
        ``None`` changes nothing, as PyTorch's ``.to(dtype=None)``. PyTorch's forms are
        taken: ``to("cpu")`` (wxb computes on the CPU: nothing to move; another device
        is refused in one line), ``to("cpu", "float64")``, ``to(device=, dtype=)``."""
        dtype = to_arguments(args, dtype, device, f"{type(self).__name__}.to")
        if dtype is None:  # (resolve_dtype would read it as the default, float32)
            return self
        target = resolve_dtype(dtype)
        for module in self.modules():
            for p in module._parameters.values():
                if p.data.dtype == target:  # as PyTorch's: no copy (a view of it stays one)
                    continue
                p.data = parameter_memory.copy(p.data.astype(target))
                if p.grad is not None:  # kept and cast, as PyTorch's .to() keeps gradients
                    p.grad = p.grad.astype(target)
            for key, array in list(module._buffers.items()):
                if array.dtype.kind == "f":
                    persistent = module._persistent(key)
                    cast = _cast_buffer(module, key, array, target)
                    module.register_buffer(key, cast, persistent=persistent)
        _structure_changed()  # plans made for the old dtypes are made again
        return self

    def cpu(self) -> Module:
        """The model itself, as PyTorch's ``model.cpu()``: wxb computes on the CPU."""
        return self

    def cuda(self, device: object = None) -> Module:
        """Refused in one line, as ``model.to("cuda")`` is: wxb computes on the CPU."""
        name = f"cuda:{device}" if isinstance(device, int) else device or "cuda"
        check_device(name, f"{type(self).__name__}.cuda")
        return self  # (a device that is the CPU)

    def double(self) -> Module:
        return self.to("float64")

    def float(self) -> Module:
        return self.to("float32")

    def half(self) -> Module:
        """PyTorch's float16 cast: refused in one line (wxb computes in float32 or
        float64), not Python's AttributeError."""
        return self.to("float16")

    def bfloat16(self) -> Module:
        return self.to("bfloat16")

    def type(self, dst_type: object) -> Module:
        """PyTorch's ``model.type(torch.float64)``: ``to(dst_type)``."""
        return self.to(dst_type)

    @property
    def dtype(self) -> np.dtype:
        """The dtype inputs are cast to: the first parameter's, else the first float
        buffer's (a model of Standardize alone), else float32 (but see ``_rows_dtype``)."""
        held = self._held_dtype()
        return resolve_dtype(None) if held is None else held

    def _held_dtype(self) -> np.dtype | None:
        """The first parameter's dtype, else the first float buffer's; None: none held."""
        modules = self._module_list()
        for module in modules:
            for p in module._parameters.values():
                return p.dtype
        for module in modules:
            for array in module._buffers.values():
                if array.dtype.kind == "f":
                    return array.dtype
        return None

    def _rows_dtype(self, x: object) -> np.dtype:
        """The dtype rows ``x`` are computed in: the model's; a model holding no float
        array (``Sequential(Softmax())``, whose ``.double()`` has nothing to cast) takes a
        float32 or float64 array in its own dtype, as PyTorch's computes in its input's
        (``model(Tensor(x64))`` was float64 and ``predict(x64)`` float32)."""
        held = self._held_dtype()
        if held is not None:
            return held
        if isinstance(x, Tensor):
            x = x.data
        if isinstance(x, np.ndarray) and x.dtype in _NATIVE_FLOATS:
            return x.dtype
        return resolve_dtype(None)

    # -- state ---------------------------------------------------------------------------
    def state_dict(
        self, *, destination: dict | None = None, prefix: str = "", keep_vars: bool = False
    ) -> dict[str, Any]:
        """Parameter and persistent buffer arrays by dotted name (copies), in PyTorch's
        order: each module's parameters, then its buffers, depth first.

        As PyTorch's: ``prefix`` goes before each name, ``destination`` (a dict) is filled
        and returned, and ``keep_vars=True`` gives the Parameters themselves and the
        buffers the module holds (no copies).

        Unlike PyTorch's, a parameter shared between places is given once, under its
        first name (model files record where else it goes); ``load_state_dict`` takes
        PyTorch's other names for it too."""
        if not isinstance(prefix, str):
            raise ConfigError(f"state_dict: prefix must be a str; got {prefix!r}")
        if destination is not None and not isinstance(destination, dict):
            kind = type(destination).__name__
            raise ConfigError(f"state_dict: destination must be a dict; got a {kind}")
        state: dict[str, Any] = {} if destination is None else destination
        seen: set[int] = set()
        with WEIGHTS.reading(self):  # copies of one weight version (another thread's step waits)
            for path, module in self.named_modules(remove_duplicate=False):
                for key, p in module._parameters.items():
                    if id(p) not in seen:
                        seen.add(id(p))
                        state[prefix + _join(path, key)] = p if keep_vars else p.data.copy()
                for key, array in module._buffers.items():
                    if module._persistent(key):
                        state[prefix + _join(path, key)] = array if keep_vars else array.copy()
        return state

    def load_state_dict(
        self, state_dict: dict[str, np.ndarray], strict: bool = True, assign: bool = False
    ) -> IncompatibleKeys:
        """Copy arrays into the existing parameters and buffers; shapes must match exactly.

        A PyTorch Sequential's names for its layers, by position (``0.weight``), are taken
        as this model's layers in the same places when all of them fit, or when they give
        every array of the model (a torch model's later layers left unexpected).

        ``strict`` (PyTorch's default): the names must be exactly ``state_dict()``'s,
        else ShapeError naming those missing and unexpected (PyTorch raises a
        RuntimeError). ``strict=False``: what fits is loaded, the rest left as it was.
        Either way the names left out come back (``missing_keys``, ``unexpected_keys``),
        and nothing is copied unless every array given fits. A shared parameter's other
        names (PyTorch's state_dict gives it under each) are taken too, never required.

        ``assign=True`` (PyTorch's): the model takes the state's values themselves, as
        torch's: a Parameter given becomes the module's parameter (its requires_grad the
        old one's), another tensor or array a new Parameter in that same memory, and a
        buffer takes the array; so an optimiser made before holds the old parameters (as
        in torch: make it after). Where one would change a parameter's dtype (torch's
        takes the state's) it is refused; load with assign=False to cast.

        A torch tensor of a float dtype NumPy has not (bfloat16, float8) is widened
        exactly, as PyTorch's copy into a float32 or float64 parameter reads it."""
        state = state_dict  # (PyTorch's keyword: load_state_dict(state_dict=…))
        if not isinstance(state, Mapping):  # a path (Keras's load_weights) would be iterated
            hint = ""
            if isinstance(state, (str, os.PathLike)):
                hint = "; for a file: model.load_state_dict(safetensors.numpy.load_file(path))"
            raise ConfigError(
                f"{self.label}.load_state_dict takes a dict of arrays by name, as state_dict() "
                f"gives it; got {type(state).__name__}{hint}"
            )
        self._make_lazy(state, "", "")  # a lazy layer's W made first, as torch's
        slots: dict[str, tuple[Parameter | None, Module, str]] = {}
        expected: list[str] = []
        seen: set[int] = set()
        for path, module in self.named_modules(remove_duplicate=False):
            for key, p in module._parameters.items():
                name = _join(path, key)
                slots[name] = (p, module, key)
                if id(p) not in seen:
                    seen.add(id(p))
                    expected.append(name)
            for key in module._buffers:
                if module._persistent(key):
                    name = _join(path, key)
                    slots[name] = (None, module, key)
                    if name in state or key not in module._kept_if_missing:
                        expected.append(name)
        if any(name not in slots for name in state):
            state = self._from_torch_positions(state, slots, expected)
        # missing in the model's order, as PyTorch lists them; unexpected as PyTorch finds
        # them: module by module, depth first, each module's in the state's order
        missing = [name for name in expected if name not in state]
        unexpected = self._in_loading_order([name for name in state if name not in slots])
        if strict and (missing or unexpected):
            raise ShapeError(
                f"{self.label}.load_state_dict: the state does not fit the model: missing "
                f"{missing}, unexpected {unexpected} (strict=False loads what fits and "
                "returns these)"
            )
        targets = []  # every array checked before any is copied: all of it or nothing
        for name, (param, module, key) in slots.items():  # in the model's order, as PyTorch
            if name not in state:
                continue
            # a Tensor or Parameter too (dict(named_parameters())), as torch; a torch tensor
            array = _state_array(name, state[name], assign)  # (p.data * 2: a 0-d scalar)
            target = np.asarray(param.data) if param is not None else module._buffers[key]
            if array.shape != target.shape:
                raise ShapeError(f"{name}: shape {array.shape} does not fit {target.shape}")
            if not np.can_cast(array.dtype, target.dtype, casting="same_kind"):
                raise DataError(f"{name}: {array.dtype} values do not fit a {target.dtype} array")
            if assign and array.dtype != target.dtype:
                raise ConfigError(
                    f"{name}: load_state_dict(assign=True) would make this {target.dtype} array "
                    f"{array.dtype}, as PyTorch's does; cast the state (or the model) to one "
                    "dtype first, or load with assign=False"
                )
            if array.dtype.kind == "f" and array.dtype.itemsize > target.dtype.itemsize:
                _check_narrowing(name, array, target.dtype)
            if assign and param is not None and param.requires_grad and _in_a_buffer(array):
                # (checked here, not by Parameter() midway: the keys before it were assigned)
                raise ConfigError(
                    f"{name}: load_state_dict(assign=True) was given a buffer's array for this "
                    "parameter; PyTorch's makes the parameter in the buffer's memory, so a "
                    "step moves the buffer too, a tie wxb does not keep: give a copy "
                    f"(state[{name!r}].copy()), or load with assign=False"
                )
            targets.append((param, target, array, module, key, state[name]))
        with WEIGHTS.writing(self.parameters()):  # (a predict in another thread: before or after)
            if assign:
                _assign_state(targets)
                return IncompatibleKeys(missing, unexpected)
            for param, target, array, _, _, _ in targets:
                if param is not None and not isinstance(param.data, np.ndarray):
                    param.data = target  # the scalar's array, written below
                np.copyto(target, array, casting="same_kind")
                if param is not None:
                    param._version += 1
        return IncompatibleKeys(missing, unexpected)

    def _in_loading_order(self, names: list[str]) -> list[str]:
        """``names`` (a state's keys that fit no slot) as PyTorch's load_state_dict lists
        them: by the module whose load meets them (where the key's path leaves the tree),
        modules depth first, parents before children; the state's order within one. (In
        the state's order alone, a key under a sub-module came before one of the model's.)"""
        visits = {path: i for i, (path, _) in enumerate(self.named_modules(remove_duplicate=False))}

        def meets(name: str) -> int:
            module, path = self, ""
            for part in name.split(".")[:-1]:
                child = module._modules.get(part)
                if child is None:
                    break
                module, path = child, _join(path, part)
            return visits[path]

        return sorted(names, key=meets)  # (stable: the state's order within a module)

    def _make_lazy(self, state: Mapping, path: str, position: str) -> None:
        """Each lazy layer (LazyLinear) whose W the state gives, by its path or by its
        place (a torch Sequential's ``0.weight``), made to its shape before the copy."""
        if hasattr(type(self), "_lazy_load"):
            self._lazy_load(state, path if _join(path, "weight") in state else position)
        ordered = getattr(self, "_children_by_position", False)
        for index, (key, child) in enumerate(self._modules.items()):
            if child is not None:
                where = _join(position, str(index) if ordered else key)
                child._make_lazy(state, _join(path, key), where)

    def _from_torch_positions(self, state: Mapping, slots: Mapping, expected: list) -> Mapping:
        """``state`` with PyTorch's names for a Sequential's layers — by position:
        ``0.weight``, ``2.bias`` (torch.nn.Sequential(...).state_dict()) — as this model's
        (``dense1.weight``), when every name it holds is this model's or such a position of
        it, or every array of this model is given so (the rest, a torch model's later
        layers, unexpected: a model of its first layers loaded with strict=False took
        nothing where torch's takes them); else as given (a partial match could put a
        layer's arrays in another's place: one of the model's left out says so)."""
        by_position: dict[str, str] = {}

        def walk(module: Module, path: str, position: str) -> None:
            for key in (*module._parameters, *module._buffers):
                by_position[_join(position, key)] = _join(path, key)
            ordered = getattr(module, "_children_by_position", False)
            for index, (key, child) in enumerate(module._modules.items()):
                walk(child, _join(path, key), _join(position, str(index) if ordered else key))

        walk(self, "", "")
        renamed = {name: state[name] for name in state if name in slots}
        for name in state:
            target = by_position.get(name)
            if name not in slots:
                renamed[target if target in slots and target not in renamed else name] = state[name]
        if all(name in slots for name in renamed) or all(name in renamed for name in expected):
            return renamed
        return state

    # -- calling -------------------------------------------------------------------------
    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} defines no forward()")

    def __call__(self, *inputs: Any, **kwargs: Any) -> Any:
        """``forward`` on the inputs; NumPy arrays and lists become Tensors of the model's
        dtype, except whole numbers (indices, labels) after the first input, or in any
        place for a forward of the user's own (``self.E[ids]``): those stay as given, for
        the forward to use as it means (a wxb layer it hands them to reads numbers). Of
        keyword arguments, float arrays become Tensors; the rest stay as given. SciPy
        sparse rows stay CSR to a first Dense, which multiplies them sparse (a Dense, or a
        Sequential of wxb's starting with one); elsewhere they are made dense.

        A call reads the weights of one version: an optimiser's step in another thread
        waits for it (``WEIGHTS``), with a graph too (else the graph's forward took the
        first layer's W before the step and the next one's after it, and its gradients
        were of no weights; a step after it makes its backward refuse, as one in this
        thread does)."""
        me, readers = threading.get_ident(), WEIGHTS.readers
        if me in readers:  # (a layer inside this thread's call: read already)
            if not WEIGHTS.read_inside(self, me):
                return self._call(inputs, kwargs)
            try:  # (another model, in a hook or a forward of one's own: read too)
                return self._call(inputs, kwargs)
            finally:
                WEIGHTS.done_inside(me)
        WEIGHTS.read(self, me)
        try:
            return self._call(inputs, kwargs)
        finally:
            WEIGHTS.done_reading(me)

    def _call(self, inputs: tuple, kwargs: dict) -> Any:
        held = self.__dict__
        if (
            "_forward_hooks" in held
            or "_forward_pre_hooks" in held
            or "_backward_hooks" in held
            or "_backward_pre_hooks" in held
        ) and not getattr(_thread, "hooks_off", False):
            return self._call_hooked(inputs, kwargs)
        if len(inputs) == 1 and not kwargs:  # the common call, without building tuples
            x = inputs[0]
            if isinstance(x, Tensor):
                return self.forward(x)
            if (
                type(x) is np.ndarray
                and x.dtype in _NATIVE_FLOATS
                and x.dtype == self._rows_dtype(x)
            ):
                # nothing to convert or check; a copy where a graph may keep it, or code of
                # one's own may change it in place (as below)
                own = is_grad_enabled() or self._computes_own_code()
                return self.forward(Tensor.of_array(x.copy() if own else x))
            return self.forward(self.as_input(x, whole_numbers_stay=self._own_forward()))
        own = self._own_forward()
        converted = [
            self.as_input(x, whole_numbers_stay=own or i > 0) for i, x in enumerate(inputs)
        ]
        if kwargs:  # float arrays by keyword too (model(x=X)): as an ndarray, x.std(0) was
            # NumPy's (ddof 0) where the same forward's Tensor gives PyTorch's (ddof 1)
            kwargs = {
                key: self.as_input(value)
                if isinstance(value, np.ndarray) and value.dtype.kind == "f"
                else value
                for key, value in kwargs.items()
            }
        return self.forward(*converted, **kwargs)

    def _call_hooked(self, inputs: tuple, kwargs: dict) -> Any:
        """``__call__`` with forward pre-hooks and hooks, as PyTorch runs them: each
        pre-hook sees the inputs (as the forward will get them) and may give others, each
        hook sees the output and may give another."""
        own = self._own_forward()
        args = tuple(
            self.as_input(x, whole_numbers_stay=own or i > 0) for i, x in enumerate(inputs)
        )
        kwargs = {
            key: self.as_input(value)
            if isinstance(value, np.ndarray) and value.dtype.kind == "f"
            else value
            for key, value in kwargs.items()
        }
        ran: set[int] = set()  # the always_call hooks that ran
        output = None
        try:
            for hook, with_kwargs in list(self.__dict__.get("_forward_pre_hooks", {}).values()):
                if with_kwargs:
                    result = hook(self, args, kwargs)
                    if result is not None:
                        if not (isinstance(result, tuple) and len(result) == 2):
                            raise ConfigError(
                                f"{self.label}: a forward pre-hook with_kwargs=True returns "
                                f"None or (args, kwargs); got {type(result).__name__}"
                            )
                        args, kwargs = result
                else:
                    result = hook(self, args)
                    if result is not None:
                        args = result if isinstance(result, tuple) else (result,)
            backward = None
            if self._has_backward_hooks() and is_grad_enabled():  # (as torch's: after the
                backward = _BackwardHooks(self)  # pre-hooks)
                args = backward.take_inputs(args)
            output = self.forward(*args, **kwargs)
            always = self.__dict__.get("_forward_hooks_always_called", ())
            for key, (hook, with_kwargs) in list(self.__dict__.get("_forward_hooks", {}).items()):
                if key in always:
                    ran.add(key)
                result = (
                    hook(self, args, kwargs, output) if with_kwargs else hook(self, args, output)
                )
                if result is not None:
                    output = result
            return output if backward is None else backward.take_outputs(output)
        except Exception:
            self._run_always_called(args, kwargs, output, ran)
            raise

    def _run_always_called(self, args: tuple, kwargs: dict, output: Any, ran: set[int]) -> None:
        """The always_call=True forward hooks that did not run, as torch runs them when
        the call raised: on the output so far (None before the forward gave one), each
        on what the last returned; one that raises is silenced with a warning, and the
        call's own error goes on."""
        always = self.__dict__.get("_forward_hooks_always_called", ())
        for key, (hook, with_kwargs) in list(self.__dict__.get("_forward_hooks", {}).items()):
            if key not in always or key in ran:
                continue
            try:
                result = (
                    hook(self, args, kwargs, output) if with_kwargs else hook(self, args, output)
                )
            except Exception as error:
                warnings.warn(
                    f"{self.label}: a forward hook with always_call=True raised, after the "
                    f"call itself raised, and was silenced: {error}",
                    stacklevel=3,
                )
                continue
            if result is not None:
                output = result

    def register_forward_pre_hook(
        self, hook: Callable, *, prepend: bool = False, with_kwargs: bool = False
    ) -> RemovableHandle:
        """``hook(module, args)`` before each call's forward, as PyTorch's: it returns None,
        or the inputs to use instead (one, or a tuple); ``with_kwargs=True``:
        ``hook(module, args, kwargs)`` returning None or ``(args, kwargs)``. Calls of
        this model then run the recorded graph, not the planned stack (which runs no
        hooks). ``handle.remove()`` takes the hook off; until then ``wxb.save``, ONNX
        export and ``to_torch`` refuse the model (they would run without the hook)."""
        return self._add_hook("_forward_pre_hooks", hook, prepend, with_kwargs)

    def register_forward_hook(
        self,
        hook: Callable,
        *,
        prepend: bool = False,
        with_kwargs: bool = False,
        always_call: bool = False,
    ) -> RemovableHandle:
        """``hook(module, args, output)`` after each call's forward, as PyTorch's (a look
        at a layer's output, for one): it returns None, or the output to use instead;
        ``with_kwargs=True``: ``hook(module, args, kwargs, output)``. Calls of this model
        then run the recorded graph, not the planned stack (which runs no hooks).
        ``always_call=True``: it also runs when the call raises (on the output so far,
        None before the forward gave one), as torch's.
        ``handle.remove()`` takes the hook off; until then ``wxb.save``, ONNX export and
        ``to_torch`` refuse the model (they would run without the hook)."""
        handle = self._add_hook("_forward_hooks", hook, prepend, with_kwargs)
        if always_call:
            always = self.__dict__.get("_forward_hooks_always_called", frozenset())
            object.__setattr__(self, "_forward_hooks_always_called", always | {handle.id})
        return handle

    def register_full_backward_hook(self, hook: Callable, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_input, grad_output)`` once backward has ∂L/∂ each of a
        call's positional inputs, as PyTorch's: a tuple, one per input (None for one
        that is not a tensor, zeros for one that needs no grad), and ∂L/∂ its output(s)
        (zeros for one no gradient reached); it returns None or the grad_input to use
        instead (per-layer clipping, say). Where no input needs grad, it runs when
        grad_output is known, with grad_input all None. Calls of this model then run the
        recorded graph, not the planned stack."""
        return self._add_hook("_backward_hooks", hook, prepend, False)

    def register_full_backward_pre_hook(
        self, hook: Callable, prepend: bool = False
    ) -> RemovableHandle:
        """``hook(module, grad_output)`` when backward reaches a call's output(s), before
        the module's own backward, as PyTorch's: it returns None or the grad_output to use
        instead. Calls of this model then run the recorded graph."""
        return self._add_hook("_backward_pre_hooks", hook, prepend, False)

    def register_backward_hook(self, hook: Callable) -> None:
        """PyTorch's old backward hook (its grad_input is of the forward's last operation
        only, which torch deprecates): refused, naming the full one that wxb has."""
        raise ConfigError(
            f"{self.label}: register_backward_hook is PyTorch's deprecated form, which wxb "
            "does not have; register_full_backward_hook(hook) gives hook(module, "
            "grad_input, grad_output) with ∂L/∂ the module's own inputs"
        )

    def _has_backward_hooks(self) -> bool:
        held = self.__dict__
        return bool(held.get("_backward_hooks") or held.get("_backward_pre_hooks"))

    def _add_hook(self, kind: str, hook: Callable, prepend: bool, with_kwargs: bool) -> Any:
        if not callable(hook):
            raise ConfigError(f"{self.label}: a hook is a function; got {type(hook).__name__}")
        handle = RemovableHandle(self, kind)
        hooks = dict(self.__dict__.get(kind, {}))
        entry = (hook, bool(with_kwargs))
        hooks = {handle.id: entry, **hooks} if prepend else {**hooks, handle.id: entry}
        object.__setattr__(self, kind, hooks)
        _structure_changed()  # plans made without hooks are made again (without the plan)
        return handle

    def _has_hooks(self) -> bool:
        held = self.__dict__
        return bool(held.get("_forward_hooks") or held.get("_forward_pre_hooks"))

    def _hooks_held(self) -> tuple[str, str]:
        """The forward hooks this module holds in words, and their pronoun
        (``hooks_in_words``): refusals name what is there (a pre-hook alone was called
        "forward hooks")."""
        held = self.__dict__
        return hooks_in_words(
            len(held.get("_forward_pre_hooks") or ()), len(held.get("_forward_hooks") or ())
        )

    def _own_forward(self) -> bool:
        """Whether the forward is the user's code (a subclass's, or one set on the object),
        not a wxb layer's or container's."""
        forward = type(self).forward
        return "forward" in vars(self) or not forward.__module__.startswith("wxb.")

    def as_input(self, x: object, whole_numbers_stay: bool = False) -> object:
        """An array-like input as a Tensor of the model's dtype (with
        ``whole_numbers_stay``, integers and booleans as given); anything else (a Tensor, a
        tuple or list holding Tensors) as it is."""
        refuse_masked(x, f"{type(self).__name__} input")
        if isinstance(x, (list, tuple)) and any(isinstance(v, Tensor) for v in x):
            if not self._modules and not self._own_forward():
                # a wxb layer reads one Tensor (x.dtype's AttributeError said nothing);
                # torch's refuses the list too
                raise DataError(
                    f"{type(self).__name__} input: a {type(x).__name__} of {len(x)} "
                    "Tensors; the layer takes one Tensor: wxb.stack(rows) joins them "
                    "(as torch.stack)"
                )
            return x
        if (
            isinstance(x, (list, tuple))
            and x
            and self._own_forward()
            and all(hasattr(v, "__array__") and getattr(v, "ndim", 0) >= 2 for v in x)
        ):
            # matrices, not rows: a forward's own inputs in one argument (model([a, b]),
            # which PyTorch hands over as it is), each one an input, as for other shapes
            # below; a and b of one shape were stacked into one 3-D Tensor, which
            # ops.cat(xs, axis=1) refused ("got a Tensor") and isinstance(xs, list) denied
            inputs = [self.as_input(v, whole_numbers_stay) for v in x]
            return inputs if isinstance(x, list) else tuple(inputs)
        # SciPy sparse rows stay CSR (in the model's dtype) to a first Dense, which
        # multiplies them sparse; elsewhere (a forward of one's own, whose code reads a
        # Tensor; any other layer) they are made dense here, whole
        if isinstance(x, SparseRows):
            if self._takes_sparse_rows():
                return x
            x = x.matrix.toarray()
        elif type(x).__module__.startswith("scipy.sparse") and self._takes_sparse_rows():
            rows = sparse_rows(x, self._rows_dtype(x))
            if rows is not None:  # (else refused by name below: a NaN, not numbers)
                return rows
        x = dense_if_sparse(x)  # (as predict takes it: it reached the layers as it was)
        if isinstance(x, Tensor) or not isinstance(x, (np.ndarray, list, tuple)):
            if is_tabular(x) and not isinstance(x, dict):  # (a dict may be a forward's own)
                raise DataError(
                    f"{type(self).__name__} takes an array or a Tensor, not a "
                    f"{type(x).__name__}: model.predict(table) takes its columns by name "
                    "(or pass table.to_numpy())"
                )
            if isinstance(x, Tensor) or not (hasattr(x, "__array__") and getattr(x, "ndim", 0)):
                if not isinstance(x, Tensor) and not self._own_forward():
                    # a wxb layer's rows: x.dtype's AttributeError said nothing of the way
                    refuse_batch_source(x, f"{type(self).__name__} input")
                return x  # a forward's own argument (a flag, a scalar, None)
            # else an array of another library (a torch tensor): read as NumPy's
        try:
            array = np.asarray(x)
        except ValueError:
            if not isinstance(x, (list, tuple)) or not all(
                hasattr(v, "__array__") and getattr(v, "ndim", 0) for v in x
            ):
                raise
            # arrays of several shapes, not rows: a forward's own inputs in one argument
            # (model((a, b)), which PyTorch hands over as it is), each one as an input
            inputs = [self.as_input(v, whole_numbers_stay) for v in x]
            return inputs if isinstance(x, list) else tuple(inputs)
        if array.dtype.kind == "b" and self._looks_up_ids():
            raise _bool_ids(self, "input")
        if whole_numbers_stay and array.dtype.kind in "biu":
            return x
        # checked as Tensor arithmetic is: text, dates, complex, or beyond float32's range
        dtype = self._rows_dtype(x if isinstance(x, (list, tuple)) else array)  # (lists: float32)
        value = float_array(array, dtype, f"{type(self).__name__} input")
        if (
            value is array
            and not isinstance(x, (list, tuple))
            and (is_grad_enabled() or self._computes_own_code())
        ):
            # the caller's own memory: a backward reads the forward's input (∂L/∂W = δᵀ·X),
            # and a loader refilling its batch buffer before it would change the gradient
            # unseen (no version counter follows a plain array; torch.tensor(x) copies);
            # and a forward of one's own may change it in place (x -= μ, x[x != x] = 0):
            # under no_grad the caller's X changed, and a second call gave other outputs
            value = value.copy()
        return Tensor(value)

    def _looks_up_ids(self) -> bool:
        """Whether this module's forward takes its input as ids to look up (an Embedding,
        or a Sequential of wxb's whose first layer is one)."""
        return False

    def _takes_sparse_rows(self) -> bool:
        """Whether ``as_input`` hands this module's forward SciPy sparse rows as CSR
        (``SparseRows``): a Dense, or a Sequential of wxb's whose first layer takes them;
        a Tensor cannot hold them, and other forwards read a Tensor."""
        return False

    def why_not_planned(self) -> str | None:
        """None when calls of this model run the planned stack; else the reason they go
        through the recorded graph, layer by layer (the numbers are the same). Only a
        ``Sequential`` is planned: a model of one's own says so."""
        return f"the model is a {type(self).__name__}, not a Sequential"

    def evaluating(self) -> _Evaluating:
        """Eval mode for this model's modules inside the block (Dropout off), in this thread
        only: no module's own flag is changed, so another thread training or predicting
        at the same time, and other models in this thread, are not affected (``predict``,
        ``evaluate`` and fit's validation pass use it). The mode is ``model.eval()``'s: a
        class's own ``train`` (or the model's ``eval``) is called, as PyTorch's eval calls
        it, and the modes it sets hold in the block (Monte Carlo dropout kept on); the
        block's end calls its ``train`` again (recording flags), as a PyTorch loop's
        ``model.train()`` after validating, undoing what else eval changed."""
        return _Evaluating(self)

    @contextmanager
    def gradients_set_aside(self) -> Iterator[gradients_apart]:
        """A backward inside the block, in this thread, leaves every ``.grad`` as it is
        and puts its gradients in the store yielded (``grads[p]``): a look at ∂L/∂W
        (explain, diagnostics) touches neither a user's accumulated gradients nor those
        another thread's backward adds to the same model meanwhile (clearing ``.grad``
        and setting it back after lost those)."""
        with gradients_apart() as grads:
            yield grads

    def predict(
        self,
        X: object = NOT_GIVEN,
        batch_size: int | None = 4096,
        *,
        x: object = NOT_GIVEN,
        verbose: object = "auto",
        **keras_options: object,
    ) -> np.ndarray:
        """Outputs for rows X as a NumPy array, in eval mode, without recording a graph.
        Eval mode is ``model.eval()``'s (``evaluating()``): a module whose own ``train``
        keeps it training (Monte Carlo dropout) stays so, as in PyTorch.

        The outputs are what the last layer gives: logits for a classifier without a
        Softmax head (Keras's models end in one, and their predict gives probabilities;
        ``wxb.nn.functional.softmax(wxb.tensor(out), dim=1).data`` gives them here).

        X may also be a table (a pandas DataFrame, a pyarrow Table, a dict of columns):
        its columns are then taken by name, as the model was trained on them, through
        the model's table stage (fill values, one-hot encoding) when it has one. A SciPy
        sparse X goes a chunk of CSR rows at a time to a planned first Dense, which
        multiplies it sparse (other models: each chunk made dense; a DataFrame's sparse
        columns: whole); X
        of no rows gives the empty (0, outputs) array in the model's dtype, as a PyTorch
        forward does.

        Safe to call from several threads at once on one model (each thread runs with
        buffers of its own), also while another thread trains it: an optimiser's step
        waits for the prediction, which is of one weight version (``WEIGHTS``).
        ``verbose``: Keras's (0, 1, 2, "auto"), taken; predict shows no progress; so is
        Keras's ``x=`` for X, and its ``steps`` and ``callbacks`` at their default, None
        (others refused, naming wxb's way).
        """
        X = keras_rows(X, x, "predict")
        keras_verbose(verbose, "predict")
        if keras_options:
            refuse_keras_arguments(
                keras_options,
                "wxb.predict",
                _KERAS_PREDICT_WAYS,
                _KERAS_PREDICT_DEFAULTS,
                called="predict",
            )
        if batch_size is None:  # Keras's predict(batch_size=None): the default
            batch_size = 4096
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise ConfigError(f"predict batch_size must be a positive integer; got {batch_size!r}")
        if batch_size < 1:
            raise ConfigError(f"predict batch_size must be a positive integer; got {batch_size}")
        # A SciPy sparse X: CSR chunks, as fit reads it (whole and dense for ids of a
        # forward of one's own, or a model holding no float array, computed in X's dtype)
        held = self._held_dtype()
        own = self._own_forward()
        X = flatten_rows(self, X)
        if getattr(X, "dtype", None) == np.bool_ and self._looks_up_ids():
            raise _bool_ids(self, "predict X")
        if type(X) is np.ndarray and held is not None and not own:
            # the usual rows: nothing sparse or tabular to read, in the model's dtype
            X = as_features(X, held, no_rows=True)
        else:
            ids = own and getattr(X, "dtype", np.dtype(float)).kind in "biu"
            sparse = sparse_rows(X, held) if held is not None and not ids else None
            if sparse is not None:
                X = sparse
            else:
                X = dense_if_sparse(X)  # (whole numbers in it: ids, as fit hands them over)
                dtype = self._rows_dtype(X)
                X = rows_for_model(self.info, X, dtype)  # a table: its columns by name
                whole = own and _whole_number_rows(X)
                X = np.ascontiguousarray(X) if whole else as_features(X, dtype, no_rows=True)
        me = threading.get_ident()
        if me in WEIGHTS.readers:  # (predict inside this thread's call)
            with WEIGHTS.reading(self):  # (of what that call does not read)
                return self._predict_rows(X, batch_size)
        WEIGHTS.read(self, me)  # every chunk of one weight version (another thread's step)
        try:
            return self._predict_rows(X, batch_size)
        finally:
            WEIGHTS.done_reading(me)

    def _predict_rows(self, X: np.ndarray | SparseRows, batch_size: int) -> np.ndarray:
        """``predict``'s outputs for rows X, checked and in the model's dtype."""
        if len(X) <= batch_size:  # (a Sequential's lean forward, outside the blocks below)
            out = self._rows_evaluating(X)
            if out is not None:
                return out
        with self.evaluating(), no_grad():
            run = self._chunk_forward
            # one batch (one row, often): no slicing or joining; no rows: the forward's
            # empty result, (0, outputs) as PyTorch's and onnxruntime's
            if len(X) <= batch_size:
                return run(X)
            if couples_rows(self):  # chunks would be normalised each by itself
                return run(X)
            parts = [run(X[i : i + batch_size]) for i in range(0, len(X), batch_size)]
            border = np.concatenate([parts[0][-1:], parts[1][:1]])
            if chunk_changes_rows(
                self, np.asarray(X[batch_size - 1 : batch_size + 1]), border, run
            ):
                return run(X)  # a forward of one's own that couples rows: as model(X)
        return np.concatenate(parts)

    def _output_array(self, out: object) -> np.ndarray:
        """``predict``'s outputs from what the forward returned: one Tensor, as fit and
        evaluate refuse anything else (an ndarray's ``.data`` gave predict a memoryview,
        a dict or tuple an AttributeError naming neither the model nor what it needs)."""
        if not isinstance(out, Tensor):
            raise ConfigError(
                f"{type(self).__name__}.forward returned {type(out).__name__}; fit, evaluate "
                "and predict need it to return one Tensor"
            )
        return out.data

    def _rows_evaluating(self, X: np.ndarray) -> np.ndarray | None:
        """``predict``'s outputs for checked rows X computed in eval mode without entering
        ``evaluating()`` or no_grad (a Sequential's lean inference); None: predict enters
        both and runs ``_rows_forward``."""
        return None

    def _chunk_forward(self, X: np.ndarray | SparseRows) -> np.ndarray:
        """``_rows_forward`` of a chunk of predict's (or evaluate's) rows: sparse rows
        (``SparseRows``) multiplied sparse by a planned first Dense, else made dense, this
        chunk alone."""
        if isinstance(X, SparseRows):
            out = self._sparse_forward(X.matrix)
            if out is not None:
                return out
            X = np.asarray(X)
        return self._rows_forward(X)

    def _sparse_forward(self, X: object) -> np.ndarray | None:
        """Outputs for CSR rows X (in the model's dtype, under no_grad and eval mode)
        where this model's calls run a plan whose first layer is a Dense, which multiplies
        them sparse; None: the caller makes them dense."""
        return None

    def _rows_forward(self, X: np.ndarray) -> np.ndarray:
        """``predict``'s forward of rows X (checked, in the model's dtype), inside its
        block: an array of its own, and X (often the caller's) left as it was."""
        if X.dtype.kind in "biu":  # ids for a forward of one's own: as model(ids) has them
            out = self._output_array(self(X.copy()))
            return out.copy() if np.may_share_memory(out, X) else out
        leaf = Tensor.of_array if X.dtype in _NATIVE_FLOATS else Tensor  # (checked: finite)
        # A forward of one's own may change its input in place (x -= μ): it gets rows of
        # its own, as torch.tensor(rows) makes them (predict's chunks about a border, run
        # again, were the changed ones, and the caller's X changed without a word)
        out = self._output_array(self(leaf(X.copy() if _runs_own_code(self) else X)))
        # and one that gives back its input (eval-mode Dropout alone, an identity) would
        # hand the caller X itself, or a view of it, as the predictions
        return out.copy() if np.may_share_memory(out, X) else out

    # -- description ---------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """What rebuilds this module (without its weights); saved in model files."""
        raise ConfigError(f"{type(self).__name__} cannot be saved: it defines no config()")

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = list(self._modules.items())
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        lines = [f"  ({key}): {child!r}".replace("\n", "\n  ") for key, child in children]
        return head + "\n" + "\n".join(lines) + "\n)"

    @property
    def label(self) -> str:
        """How errors and explanations refer to this module: its name, or its type."""
        return f"{type(self).__name__} '{self.name}'" if self.name else type(self).__name__


_DEFINED_FORWARD[Module] = Module.forward
_MODULE_CALL = Module.__call__  # (Module.__call__ patched: no layer runs it as planned)


@contextmanager
def gradient_twin(model: Module) -> Iterator[tuple[Module, list[str]]]:
    """A twin of ``model`` whose parameters are leaves of their own that share the
    model's arrays (and version counts), every one requiring grad, and the names of those
    frozen in the model: explain and the diagnostics follow the δ chain through frozen
    layers too without setting ``requires_grad`` on the model's own parameters (another
    thread training the model meanwhile recorded its frozen layers, and its step moved
    them) and without touching any ``.grad``. A model that cannot be copied (one holding
    a lock or a file) has its frozen parameters' flags set for the block instead."""
    import copy

    frozen = [(name, p) for name, p in model.named_parameters() if not p.requires_grad]
    names = [name for name, _ in frozen]
    memo: dict[int, object] = {}
    for p in model.parameters():
        twin = copy.copy(p)  # (its array and version count shared; no .grad, no buffer)
        twin.requires_grad = True
        memo[id(p)] = twin
    try:
        twin_model = copy.deepcopy(model, memo)
    except Exception:  # whatever a module of one's own refuses to copy
        twin_model = None
    if twin_model is not None:
        yield twin_model, names
        return
    for _, p in frozen:
        p.requires_grad = True
    try:
        yield model, names
    finally:
        for _, p in frozen:
            p.requires_grad = False


# evaluating() blocks' lists are changed under this (a block may end in another thread),
# and such a block's place in its thread's list is this until that thread drops it
_HELD_LOCK = threading.Lock()
_ENDED: frozenset[int] = frozenset()


class _OwnModeIds(frozenset):
    """A module tree's ids where a class has a ``train`` or ``eval`` of its own: its
    ``evaluating()`` blocks call ``model.eval()`` (``_eval_modes``)."""


def _eval_modes(model: Module, modules: list[Module], held: list) -> dict[int, bool]:
    """Each module's mode after ``model.eval()``, by id, where classes have a ``train``
    (or the model an ``eval``) of their own: eval() is called, the flags it sets written
    here (for this thread's block) and not on the modules; a module it leaves keeps its
    own. What the code reads of a module's mode on the way is what it has set."""
    recorded = _recording(model, held, eval_mode=True)
    return {id(m): recorded.get(id(m), m._training) for m in modules}


def _recording(model: Module, held: list, eval_mode: bool) -> dict[int, bool]:
    """``model.eval()`` (or ``model.train()``) called with the flags it sets recorded by
    id, not set: the class's own code runs (what else it changes, a Dropout's p say,
    is changed), the modules' own flags stay as they are."""
    recorded: dict[int, bool] = {}
    held.append(recorded)  # (the innermost entry: the getter reads what was set)
    # an outer recording (predict inside a class's own eval()) records on after this one:
    # set to None, the rest of that eval() wrote its flags on the modules, for good
    outer = getattr(_thread, "recording_modes", None)
    _thread.recording_modes = recorded
    try:
        if eval_mode:
            model.eval()
        else:
            model.train()
    finally:
        _thread.recording_modes = outer
        with _HELD_LOCK:
            for i in range(len(held) - 1, -1, -1):
                if held[i] is recorded:
                    del held[i]
                    break
    return recorded


class _Evaluating:
    """``Module.evaluating()``'s block: a class, as predict enters one per call."""

    def __init__(self, model: Module) -> None:
        self.model = model
        # by thread, each open entry's (ids, modules): one instance entered in several
        # threads at once ended another thread's entry (that thread's forwards ran in
        # training mode inside its block) and left its own for good (eval mode after it)
        self._entries: dict[int, list[tuple]] = {}

    def __enter__(self) -> Module:
        # this block's entry: the ids of the model's modules now (one set, kept with the
        # module list: entering costs no walk over the modules)
        held = _thread.__dict__.setdefault("evaluating", [])
        if held:  # blocks other threads ended leave their places: gone now
            with _HELD_LOCK:
                held[:] = [h for h in held if h is not _ENDED]
        # the modules kept alive too: one taken out inside the block and freed would hand
        # its id (CPython reuses the memory) to a new module, in eval mode here unasked
        _, modules, ids = self.model._module_tree()
        modes = _eval_modes(self.model, modules, held) if type(ids) is _OwnModeIds else ids
        held.append(modes)
        self._entries.setdefault(threading.get_ident(), []).append((modes, modules, held))
        return self.model

    def __exit__(self, *exc_info: object) -> None:
        thread = threading.get_ident()
        entries = self._entries.get(thread)
        here = entries is not None
        if not here:  # left in another thread (a generator's body, stepped by a pool's
            # threads, as a server streams it): the entering thread's eval mode ends (a
            # KeyError ended it, and that thread kept the model in eval mode for good)
            entered = list(self._entries.items())
            if not entered:
                return
            thread, entries = entered[-1]
        ids, _, held = entries.pop()  # (held: the entering thread's list)
        if not entries:
            del self._entries[thread]
        with _HELD_LOCK:  # (another thread may be ending a block of this list)
            for i in range(len(held) - 1, -1, -1):  # this block's own (blocks may overlap)
                if held[i] is ids:
                    if here:
                        del held[i]
                    else:  # its place kept: the owner may be reading the list now
                        held[i] = _ENDED
                    break
        if type(ids) is dict:  # model.eval() was called: a class's own train() too, after
            # (as a PyTorch loop's model.train()), which undoes what eval() changed besides
            # the flags (Dropout's p set to 0 there trained on at p=0 after fit's validation)
            mine = _thread.__dict__.setdefault("evaluating", [])
            _recording(self.model, mine, eval_mode=not self.model.training)


class _BackwardHooks:
    """One hooked call's full backward (pre-)hooks, as PyTorch's BackwardHook: an identity
    node over the call's inputs and one over its outputs. The walk reaches the outputs'
    node first (pre-hooks, grad_output kept), the inputs' after everything the call
    computed from them, with every ∂L/∂input at once (the full hooks)."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.grad_output: tuple | None = None
        self.count = 0  # positional inputs
        self.takes_grad = False  # whether an input needs grad

    def _hooks(self, kind: str) -> list[Callable]:
        return [hook for hook, _ in self.module.__dict__.get(kind, {}).values()]

    def take_inputs(self, args: tuple) -> tuple:
        self.count = len(args)
        places = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
        self.takes_grad = bool(places)
        if not places:
            return args

        def backward(grads: list[np.ndarray | None]) -> list[np.ndarray | None]:
            # as torch's: zeros for a tensor input no gradient reached, or that needs none
            grad_input: list[Tensor | None] = [
                Tensor(np.zeros_like(a.data)) if isinstance(a, Tensor) else None for a in args
            ]
            for i, g in zip(places, grads, strict=True):
                if g is not None:
                    grad_input[i] = Tensor(g)
            given = self._run_full_hooks(tuple(grad_input))
            return [_hook_array(given[i], args[i], self.module, "grad_input") for i in places]

        wrapped = _identity_node([args[i] for i in places], "backward hook (inputs)", backward)
        taken = list(args)
        for i, t in zip(places, wrapped, strict=True):
            taken[i] = t
        return tuple(taken)

    def take_outputs(self, output: Any) -> Any:
        several = isinstance(output, (tuple, list))
        items = list(output) if several else [output]
        places = [i for i, o in enumerate(items) if isinstance(o, Tensor) and o.requires_grad]
        if not places:
            return output
        outs = [items[i] for i in places]

        def backward(grads: list[np.ndarray | None]) -> list[np.ndarray | None]:
            # an output no gradient reached gives zeros, as torch's identity Function
            grad_output = tuple(
                Tensor(np.zeros_like(o.data) if g is None else g)
                for o, g in zip(outs, grads, strict=True)
            )
            for hook in self._hooks("_backward_pre_hooks"):
                result = hook(self.module, grad_output)
                if result is not None:
                    grad_output = result if isinstance(result, tuple) else (result,)
            arrays = [
                _hook_array(g, o, self.module, "grad_output")
                for g, o in zip(grad_output, outs, strict=True)
            ]
            self.grad_output = tuple(Tensor(a) for a in arrays)
            if not self.takes_grad:  # no input's gradient is to come: the hooks run now
                given = self._run_full_hooks((None,) * self.count)
                if any(g is not None for g in given):
                    raise ConfigError(
                        f"{self.module.label}: a full backward hook returned a gradient for "
                        "an input that needs none (no input of this call requires grad)"
                    )
            return arrays

        wrapped = _identity_node(outs, "backward hook (outputs)", backward)
        for i, t in zip(places, wrapped, strict=True):
            items[i] = t
        return type(output)(items) if several else items[0]

    def _run_full_hooks(self, grad_input: tuple) -> tuple:
        for hook in self._hooks("_backward_hooks"):
            result = hook(self.module, grad_input, self.grad_output)
            if result is not None:
                result = result if isinstance(result, tuple) else (result,)
                if len(result) != len(grad_input):
                    raise ConfigError(
                        f"{self.module.label}: a full backward hook returned {len(result)} "
                        f"gradient(s) for {len(grad_input)} input(s)"
                    )
                grad_input = result
        return grad_input


def _identity_node(tensors: list[Tensor], op: str, rule: Callable) -> list[Tensor]:
    """The tensors again, each a node over one joint node whose backward runs ``rule``
    once, on the gradients of all of them that came (None for one none reached)."""
    came: dict[int, np.ndarray] = {}
    token = np.zeros((), np.float64)  # (what each hands on to the joint node: nothing)

    def joint_backward(g: np.ndarray) -> list[np.ndarray | None]:
        try:
            if is_walking_freed_graph():  # a second backward through a freed graph, which
                return [None] * len(tensors)  # raises: the hooks are not run again first
            return rule([came.get(k) for k in range(len(tensors))])
        finally:
            came.clear()  # (a retained graph's next backward starts afresh)

    joint = Tensor.from_op(token, op, tuple(tensors), joint_backward, reads_inputs=False)
    out = []
    for k, t in enumerate(tensors):

        def hand_over(g: np.ndarray, k: int = k) -> list[np.ndarray]:
            came[k] = g if k not in came else came[k] + g
            return [token]

        made = Tensor.from_op(t.data, op, (joint,), hand_over, reads_inputs=False)
        made._versions = t._versions  # the same memory: a change through it counts for t
        out.append(made)
    return out


def _hook_array(given: Any, like: Tensor, module: Module, what: str) -> np.ndarray | None:
    """A gradient a hook handed back, as an array of ``like``'s dtype and shape."""
    if given is None:
        return None
    array = float_array(given.data if isinstance(given, Tensor) else given, like.dtype, what)
    if array.shape != like.shape:
        raise ShapeError(
            f"{module.label}: a backward hook's {what} has shape {array.shape}; the tensor "
            f"has shape {like.shape}"
        )
    return array


def stock_kind(module: Module, kinds: tuple[type[Module], ...]) -> type[Module] | None:
    """The type among ``kinds`` whose forward ``module`` runs unchanged: its class keeps
    that type's forward and Module's __call__, no forward was set on the instance, and
    it has no forward hooks.
    None otherwise (a subclass with code of its own computes something else)."""
    if "forward" in vars(module) or "__call__" in vars(module) or module._has_hooks():
        return None  # (hooks: its calls may compute something else)
    cls = type(module)
    if cls.__call__ is not _MODULE_CALL:
        return None
    for kind in kinds:  # (the kind's own forward, not a patch assigned to it since)
        if isinstance(module, kind) and cls.forward is _DEFINED_FORWARD.get(kind):
            return kind
    return None


def is_stock(module: Module, kind: type[Module]) -> bool:
    """Whether ``module`` computes what ``kind``'s own forward computes (see stock_kind):
    a subclass of Dense or Sigmoid with a forward of its own is not one, and what shows
    or reads a layer as its stock kind must not take it for one."""
    return stock_kind(module, (kind,)) is kind


def flatten_rows(model: Module, X: object) -> object:
    """X of more than 2 dims as (B, −1) rows where the model begins with a Flatten that
    makes such X rows (MNIST's (N, 28, 28) before Flatten(), Linear(784, …)), or with a
    forward of one's own that gives X's rows what it gives X (``x = self.flatten(x)`` or
    ``x.view(-1, 784)`` first: PyTorch's quickstart and MNIST models): fit, evaluate and
    predict take what model(X) takes, and the Flatten passes the rows on as they are.
    Any other X as given."""
    if not getattr(X, "ndim", 0) > 2:
        return X
    from wxb.nn.layers import Flatten
    from wxb.nn.sequential import Sequential

    first = model
    while stock_kind(first, (Sequential,)) is Sequential and first._modules:
        first = next(iter(first._modules.values()))
    stock = is_stock(first, Flatten) and first.rows_of(tuple(X.shape))
    if stock and not first.rows_of((1, 1)):  # rows would reach it, where its dim is out of
        # range (as torch's on 2-D): before, "dim -3 is out of range for a tensor of 2 dims"
        raise ConfigError(
            f"{first.label}: Flatten(start_dim={first.start_dim}) first flattens X of "
            f"{X.ndim} dims, but fit, evaluate and predict hand the model rows (B, −1), "
            f"where dim {first.start_dim} is out of range; give Flatten() (start_dim=1, the "
            "same rows), or call model(X)"
        )
    if not stock and not (first._own_forward() and _takes_rows_alike(first, X)):
        return X
    X = np.asarray(X)
    return X.reshape(len(X), -1)


def _takes_rows_alike(module: Module, X: object) -> bool:
    """Whether a forward of one's own gives the same outputs for X's first rows as for
    those rows flattened (its first step flattens them, as a PyTorch model's
    ``x = self.flatten(x)``, ``x.view(-1, 784)`` or ``torch.flatten(x, 1)``): run on both,
    in eval mode, with no graph and no hooks (a forward that reads X's dims first tells
    them apart, or fails on rows). Decided once per row shape and dtype, kept on the
    module till its structure or a class's code changes: predict of one image ran the
    forward twice more at every call."""
    key = (tuple(X.shape[1:]), str(getattr(X, "dtype", "")))
    version, modules, _ = module._module_tree()
    code = class_code(modules)
    cached = module.__dict__.get("_rows_alike_cache")
    if cached is None or cached[0] != version or cached[1] != code:
        cached = (version, code, {})
        object.__setattr__(module, "_rows_alike_cache", cached)
    if key not in cached[2]:
        cached[2][key] = _ran_rows_alike(module, X)
    return cached[2][key]


def _ran_rows_alike(module: Module, X: object) -> bool:
    sample = np.asarray(X[:2])
    try:
        with module.evaluating(), no_grad(), hooks_off():
            given = module(sample.copy())
            rows = module(sample.reshape(len(sample), -1).copy())
    except Exception:  # (the forward's own error comes again, where fit runs it on X)
        return False
    return (
        isinstance(given, Tensor)
        and isinstance(rows, Tensor)
        and given.shape == rows.shape
        and given.dtype == rows.dtype
        and np.array_equal(given.data, rows.data, equal_nan=True)
    )


def couples_rows(model: Module) -> bool:
    """Whether some module's eval-mode output for a row depends on the rest of its batch."""
    return any(module._couples_rows for module in model.modules())


def _cast_buffer(module: Module, key: str, array: np.ndarray, target: np.dtype) -> np.ndarray:
    """A float buffer in ``target``; one a layer rounded from wider values it was given
    (``module._given_buffers``: Standardize's float64 statistics, held in its default
    float32) gets those values back in float64 while it still holds them so rounded:
    ``.double()`` after ``Standardize(X.mean(0), X.std(0))`` standardized with a mean
    rounded to float32 (12345.678 by 2.7e-4, a scale of 0.01: x̂ off by 0.027)."""
    given = module.__dict__.get("_given_buffers", {}).get(key)
    if (
        given is not None
        and given.dtype == target
        and given.shape == array.shape
        and np.array_equal(given.astype(array.dtype), array)
    ):
        return given.copy()
    return array.astype(target)


def _check_narrowing(name: str, array: np.ndarray, dtype: np.dtype) -> None:
    """A DataError naming the first finite value of ``array`` that ``dtype`` cannot hold
    (1e39 in float32 became inf, with NumPy's overflow warning, and the model gave inf)."""
    with np.errstate(over="ignore"):
        lost = np.isinf(array.astype(dtype)) & np.isfinite(array)
    if lost.any():
        at = tuple(int(i) for i in np.argwhere(lost)[0])
        raise DataError(
            f"{name}: {array[at]:.6g} at {list(at)} is beyond {dtype.name}'s range "
            f"(±{float(np.finfo(dtype).max):.3g}); load it into a float64 model "
            "(model.to('float64'))"
        )


def _whole_number_rows(X: object) -> bool:
    """Whether X is an array (or list) of integers or booleans with rows: what
    ``model(X)`` hands a forward of one's own as it is (ids for ``self.E[ids]``), and so
    ``predict`` too (it cast them to floats, and the forward's indexing failed)."""
    if isinstance(X, list):
        X = np.asarray(X)
    return isinstance(X, np.ndarray) and X.dtype.kind in "biu" and X.ndim >= 1 and len(X) > 0


def _runs_own_code(model: Module) -> bool:
    """Whether some module computes with the user's code: a forward of its own, or an
    activation kernel of its own (whose eval-mode output may couple rows unsaid)."""
    for module in model.modules():
        kernel = getattr(module, "kernel", None)
        own_kernel = kernel is not None and not type(kernel).__module__.startswith("wxb.")
        if own_kernel or module._own_forward() or module._has_hooks():
            return True
    return False


def chunk_changes_rows(
    model: Module, window: np.ndarray, chunked: np.ndarray, run: Callable[[np.ndarray], object]
) -> bool:
    """Whether ``model``, with code of its own, gives the two rows about the first
    chunks' border (``window``: the first chunk's last row and the next chunk's first)
    other outputs run together than in their chunks (``chunked``): a forward that
    couples rows (statistics of the batch, F.batch_norm without running statistics, a
    softmax over the batch, its first row h[0]) gives each chunk of predict or evaluate
    other numbers than ``model(X)`` gives, without a word. A tolerance leaves BLAS's
    rounding, which differs with the rows, alone."""
    if not _runs_own_code(model):
        return False
    chunked = np.asarray(chunked)

    def differs(together: np.ndarray) -> bool:
        if together.shape != chunked.shape or together.dtype.kind != "f":
            return together.shape != chunked.shape
        tol = 1e-4 if together.dtype == np.float32 else 1e-11
        with np.errstate(invalid="ignore"):
            scale = max(1.0, float(np.nanmax(np.abs(chunked), initial=0.0)))
            return not np.allclose(together, chunked, rtol=tol, atol=tol * scale, equal_nan=True)

    try:  # without forward hooks: a look a PyTorch loop does not take (a hook keeping the
        # rows it saw took these two as a batch)
        with hooks_off():
            if not differs(np.asarray(run(window))):
                return False
        # a hook changing outputs (o·2) differs from the chunks, which ran with it: looked
        # at again as the chunks ran (it read as coupling, and every row then ran at once)
        if not any(module._has_hooks() for module in model.modules()):
            return True
        return differs(np.asarray(run(window)))
    except Exception:  # (a forward that cannot run on these rows couples them, or fails)
        return True


def input_width(model: Module) -> int | None:
    """Features the model takes: from the first module that says (``in_features``); None
    where an Embedding comes first, whose ids per row no layer records (the Dense after
    it counts the looked-up rows: wxb predict refused a table of 3 ids as 'the model
    takes 12')."""
    for _, module in model.named_modules():
        if hasattr(module, "num_embeddings"):
            return None
        if hasattr(module, "in_features"):
            return int(module.in_features)
    return None


def output_width(model: Module) -> int | None:
    """Outputs the model gives: from the last module that says (``out_features``)."""
    for _, module in reversed(list(model.named_modules())):
        if hasattr(module, "out_features"):
            return int(module.out_features)
    return None
