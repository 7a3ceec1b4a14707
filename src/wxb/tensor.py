"""Tensor and the tape: the computational graph of the seed.

A Tensor wraps a backend array. Every primitive in ``wxb.ops`` that reads a
tensor which requires a gradient records itself on the result: the operation's
name, its input tensors and a small closure, its backward rule, that maps
∂L/∂output to ∂L/∂input for each input. ``loss.backward()`` sorts that graph
topologically and walks it in reverse, which is the chain rule of the seed:
∂L/∂W⁽ˡ⁾ = ∂L/∂A⁽ᴸ⁾ · Π ∂A⁽ᵏ⁾/∂Z⁽ᵏ⁾ · ∂Z⁽ᵏ⁾/∂W⁽ᵏ⁾.
"""

from __future__ import annotations

import copy
import datetime
import functools
import gc
import inspect
import itertools
import math
import os
import sys
import threading
import types
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ContextDecorator, contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, Protocol

import numpy as np

from wxb.backend import (
    DTYPES,
    check_device,
    is_torch_tensor,
    is_torchs,
    resolve_dtype,
    to_arguments,
    xp,
)

try:
    from numpy.lib.array_utils import byte_bounds
except ImportError:  # NumPy < 2
    byte_bounds = np.byte_bounds
from wxb.errors import ConfigError, DataError, ShapeError, TrainingError

BackwardRule = Callable[[np.ndarray], Sequence["np.ndarray | None"]]


class _GradMode(threading.local):
    """Grad mode per thread, as PyTorch keeps it: one thread's no_grad() leaves the
    others recording. Class attributes are what every new thread starts with."""

    enabled = True
    retain_graph = False  # True while a backward(retain_graph=True) runs its rules
    walking_freed = False  # True while a backward walks a freed graph (to refuse it)
    leaf_grads: dict[int, tuple[Tensor, np.ndarray]] | None = None  # gradients_apart()
    # autograd.grad's inputs (ids): its backward walks only the nodes that lead to them
    grad_inputs: frozenset[int] | None = None
    # the running backward's claims on optimiser buffers (leaf_grad_slot), None outside
    # a backward; and the buffers' owners it found free (ensure_free)
    slots: dict[int, np.ndarray] | None = None
    slot_homes: set[int] | None = None


_mode = _GradMode()
# Held while a backward adds into a parameter's .grad (read, add, write; no user code
# inside): backwards in several threads on one model each add their share, none lost.
GRAD_LOCK = threading.RLock()
# ids of the parameters whose optimiser buffer a backward is writing ∂L/∂p into now
# (under GRAD_LOCK), the planned stack's and the graph's: two backwards sharing a
# parameter both found .grad None and wrote into the one buffer (a share lost)
WRITING: set[int] = set()
if hasattr(os, "register_at_fork"):
    # taken around fork(), as logging takes its lock: a fork while another thread held it
    # left it held for ever in the child, whose first backward hung
    os.register_at_fork(
        before=GRAD_LOCK.acquire,
        after_in_parent=GRAD_LOCK.release,
        after_in_child=GRAD_LOCK.release,
    )


class WeightReader(Protocol):
    """What the weight guard asks of a reader: the ids of the parameters it reads, and
    of the modules it holds (a layer's call inside a model's reads nothing more)."""

    def _parameter_ids(self) -> frozenset[int]: ...

    def _module_tree(self) -> tuple[int, list, frozenset[int]]: ...


class _WeightGuard:
    """Who reads a model's weights and who writes them, so that a server predicting while
    another thread fine-tunes the same model gets outputs of one weight version: module
    calls (with a graph or without), ``predict``, ``state_dict`` and ``backward()``
    (readers) and an optimiser's update or ``load_state_dict`` (writers) of overlapping
    parameters take turns. (A prediction read the first layer's W before a step and the next
    one's after it: the output of no weights the training passed through; a training forward
    or backward so recorded gave gradients of no weights.) Readers of one model run at once;
    a waiting writer holds new ones back (else a busy server starves the training). A reader
    registers without the lock, one dict store (atomic), then looks for writers; a writer
    registers, then looks for readers: one of the two sees the other.

    A read inside a thread's read (a hook's ``other.predict``, a forward calling another
    model) of weights the outer read does not hold is registered too (``nested``): it
    waits for a write under way, never for one awaiting its turn (that one may wait for
    this thread's outer read).

    A reader is a model (``nn.Module``) or a backward's leaves (``BackwardRead``): what
    its ``_parameter_ids()`` names; it lives here, beneath the modules, as ``backward()``
    reads weights too (its rules take ∂L/∂h through the W of each layer)."""

    def __init__(self) -> None:
        self.turns = threading.Condition(threading.Lock())
        self.readers: dict[int, WeightReader] = {}  # thread → the model it reads
        self.nested: dict[int, list[WeightReader]] = {}  # thread → other models read inside it
        self.writers: dict[int, list] = {}  # thread → the parameters it writes (or awaits)
        self.awaiting: set[int] = set()  # writers waiting for readers (under the lock)
        self.blocked: set[int] = set()  # readers waiting to write inside their read
        self.waiting = 0  # threads waiting for their turn (changed under the lock)

    def _written(self, model: WeightReader, me: int, under_way: bool = False) -> bool:
        """Whether a thread other than ``me`` writes (or awaits, unless ``under_way``) a
        parameter of ``model`` (a step in this thread's own forward hook is not waited for)."""
        ids = model._parameter_ids()
        return any(
            not ids.isdisjoint(map(id, params))
            for thread, params in tuple(self.writers.items())
            if thread != me and not (under_way and thread in self.awaiting)
        )

    def _read(self, params: list, me: int) -> bool:
        """Whether a thread other than ``me`` reads a model holding one of ``params``."""
        ids = {id(p) for p in params}
        if any(
            not model._parameter_ids().isdisjoint(ids)
            for thread, model in tuple(self.readers.items())
            if thread != me and thread not in self.blocked
        ):
            return True
        return any(
            not model._parameter_ids().isdisjoint(ids)
            for thread, models in tuple(self.nested.items())
            if thread != me and thread not in self.blocked
            for model in tuple(models)
        )

    def _rivals(self, params: list, me: int) -> bool:
        """Whether another thread writes one of ``params`` (two threads stepping it)."""
        ids = {id(p) for p in params}
        return any(
            not ids.isdisjoint(map(id, other))
            for thread, other in tuple(self.writers.items())
            if thread != me
        )

    def read(self, model: WeightReader, me: int) -> None:
        """Begin thread ``me``'s read of ``model``'s weights (``me`` not reading yet);
        ``done_reading`` ends it. The one way in for every outer read (a module call, a
        planned fit step, ``predict``, ``reading``): registered by one dict store, the
        lock taken only where some thread writes."""
        self.readers[me] = model
        if self.writers:
            self._await_turn(model, me)

    def _await_turn(self, model: WeightReader, me: int) -> None:
        """``read``'s slow path: while another thread writes (or awaits) one of the
        model's parameters, stand aside and wait for it, then register again."""
        while self._written(model, me):
            del self.readers[me]
            with self.turns:
                self.turns.notify_all()  # (a writer may be waiting for this reader)
                self.waiting += 1  # (a writer ending notifies while anyone waits)
                try:
                    self.turns.wait_for(lambda: not self._written(model, me))
                finally:
                    self.waiting -= 1
            self.readers[me] = model

    def done_reading(self, me: int) -> None:
        del self.readers[me]
        if self.writers:
            with self.turns:
                self.turns.notify_all()

    def read_inside(self, model: WeightReader, me: int) -> bool:
        """Begin a read of ``model`` inside thread ``me``'s read; False where the outer
        read holds its weights already (a layer of the model called: nothing to do),
        else ``done_inside`` ends it."""
        held = self.readers[me]
        if model is held or id(model) in held._module_tree()[2]:  # (one of its layers)
            return False
        ids = model._parameter_ids()
        if ids <= held._parameter_ids():
            return False
        inside = self.nested.get(me)
        if inside and any(ids <= m._parameter_ids() for m in inside):
            return False
        if not self.writers:  # registered, then no writer seen: a writer coming later
            self.nested.setdefault(me, []).append(model)  # sees it (as ``read``; a
            if not self.writers:  # backward inside fit's graph step: 3.2 → 1.8 µs)
                return True
            self.done_inside(me)
        with self.turns:  # (slow writers turn from awaiting to writing under the lock)
            self.waiting += 1
            try:
                self.turns.wait_for(lambda: not self._written(model, me, under_way=True))
            finally:
                self.waiting -= 1
            self.nested.setdefault(me, []).append(model)
        return True

    def done_inside(self, me: int) -> None:
        inside = self.nested[me]
        inside.pop()
        if not inside:
            del self.nested[me]
        if self.writers:
            with self.turns:
                self.turns.notify_all()

    def reading(self, model: WeightReader) -> _Reading:
        """A read of ``model``'s weights for the block (inside a read already open in
        this thread: of what that one does not hold)."""
        return _Reading(self, model)

    @contextmanager
    def writing(self, params: Iterable[Tensor]) -> Iterator[None]:
        """A write of ``params`` in place: inside it, no other thread reads a model that
        holds one of them."""
        me = threading.get_ident()
        if not self.begin_writing(list(params), me):  # (inside this thread's own write)
            yield
            return
        try:
            yield
        finally:
            self.done_writing(me)

    def begin_writing(self, params: list[Tensor], me: int) -> bool:
        """Begin thread ``me``'s write of ``params`` (``writing``, spelt out for an
        optimiser's step); False where ``me`` writes already (it has the turn)."""
        writers = self.writers
        if me in writers:
            return False
        # Alone (every training step): registered by one dict store, as a reader is, then
        # no other thread found reading or writing (a reader registering later sees this
        # write and waits). Else the turn is taken under the lock. (7.8 → ~1 µs a step)
        writers[me] = params
        if len(writers) > 1 or len(self.readers) > (me in self.readers):
            del writers[me]
            with self.turns:
                self.waiting += 1
                inside = me in self.readers  # (a step in this thread's own forward hook)
                if inside:  # reads nothing while it waits: a writer waiting for it goes on
                    self.blocked.add(me)
                    self.turns.notify_all()
                try:
                    self.turns.wait_for(lambda: not self._rivals(params, me))
                    writers[me] = params
                    self.awaiting.add(me)
                    self.turns.notify_all()  # (a read inside another's waits for no awaiting)
                    self.turns.wait_for(lambda: not self._read(params, me))
                finally:
                    self.waiting -= 1
                    self.awaiting.discard(me)
                    self.blocked.discard(me)
        return True

    def done_writing(self, me: int) -> None:
        del self.writers[me]
        if self.readers or self.writers or self.waiting:
            with self.turns:
                self.turns.notify_all()


class _Reading:
    """``WEIGHTS.reading``'s block. A class, not a generator: every ``backward()`` enters
    one, and a generator's context cost twice as much (1.35 → 0.73 µs)."""

    __slots__ = ("done", "guard", "me", "model")

    def __init__(self, guard: _WeightGuard, model: WeightReader) -> None:
        self.guard, self.model = guard, model

    def __enter__(self) -> None:
        guard, me = self.guard, threading.get_ident()
        self.me = me
        if me not in guard.readers:
            guard.read(self.model, me)
            self.done = guard.done_reading
        elif guard.read_inside(self.model, me):  # (of what the outer read does not hold)
            self.done = guard.done_inside
        else:
            self.done = None

    def __exit__(self, *raised: object) -> None:
        if self.done is not None:
            self.done(self.me)


WEIGHTS = _WeightGuard()
if hasattr(os, "register_at_fork"):  # (a reader or writer of another thread is gone there)
    os.register_at_fork(after_in_child=lambda: WEIGHTS.__init__())


class BackwardRead:
    """A backward's read of the weights (``WEIGHTS``): the leaves of its graph, which
    its rules read (∂L/∂h = δ W) and an optimiser's step writes. Their ids are taken
    only when asked (a writer in another thread, a read inside fit's step): a backward
    alone pays one store."""

    __slots__ = ("ids", "order")
    _NO_MODULES = (0, [], frozenset())

    def __init__(self, order: list[Tensor]) -> None:
        self.order, self.ids = order, None

    def _parameter_ids(self) -> frozenset[int]:
        if self.ids is None:
            self.ids = frozenset([id(t) for t in self.order if t._backward is None])
        return self.ids

    def _module_tree(self) -> tuple[int, list, frozenset[int]]:
        return self._NO_MODULES  # (holds no module: a model called in its hooks is read)


_FLOAT_TYPES = frozenset(d.type for d in DTYPES.values())  # dtype.name is slow to read
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class _GradSwitch(ContextDecorator):
    """Recording on or off inside a block (or a decorated function), in this thread; the
    mode before it comes back after. A class, not a generator: predict enters one per
    call, and a generator's context costs several times as much."""

    mode = True

    def __new__(cls, func: Callable | None = None) -> Any:
        switch = super().__new__(cls)
        if func is None:
            return switch
        # @no_grad without parentheses, as torch takes it: the function, switched
        if not callable(func):
            raise TypeError(f"{cls.__name__}() takes no argument but a function to decorate")
        switch.__init__()
        return switch(func)

    def __init__(self, func: Callable | None = None) -> None:
        # by thread (one instance, kept in a module, entered in several threads at once:
        # one list handed a thread the mode another had before), and a list for each, as
        # one instance may be entered again inside itself
        self._previous: dict[int, list[bool]] = {}

    def __enter__(self) -> None:
        self._previous.setdefault(threading.get_ident(), []).append(_mode.enabled)
        _mode.enabled = self.mode

    def __exit__(self, *exc_info: object) -> None:
        thread = threading.get_ident()
        previous = self._previous.get(thread)
        if previous is None:  # left in another thread (a generator's body, stepped by a
            # pool's threads, as a server streams it): as torch's, this thread gets the mode
            # the block was entered from (a KeyError naming a thread's number ended it)
            entered = list(self._previous.items())
            if not entered:
                return
            thread, previous = entered[-1]
        _mode.enabled = previous.pop()
        if not previous:
            del self._previous[thread]

    def _recreate_cm(self) -> _GradSwitch:
        return type(self)()  # each call of a decorated function keeps its own previous mode

    def __call__(self, func: Callable) -> Callable:
        if not inspect.isgeneratorfunction(func):
            return super().__call__(func)
        # A generator's body runs at each next(), after the call has returned: the switch
        # around the call alone left it recording. Each step runs switched, as torch's
        # decorator runs it, and the caller's code between the steps in its own mode.
        switch = type(self)

        @functools.wraps(func)
        def generator(*args: object, **kwargs: object):
            steps = func(*args, **kwargs)
            try:
                with switch():
                    response = steps.send(None)
                while True:
                    try:
                        request = yield response
                    except GeneratorExit:
                        with switch():
                            steps.close()
                        raise
                    except BaseException as error:
                        with switch():
                            response = steps.throw(error)
                    else:
                        with switch():
                            response = steps.send(request)
            except StopIteration as stop:
                return stop.value

        return generator


class no_grad(_GradSwitch):
    """Run operations without recording them (inference, evaluation), in this thread."""

    mode = False


class enable_grad(_GradSwitch):
    """Record operations inside the block, even within a no_grad() block."""

    mode = True


class set_grad_enabled:  # PyTorch's name: a function and a context manager at once
    """``set_grad_enabled(False)`` switches recording off in this thread at once; used as
    ``with set_grad_enabled(mode):`` it puts the previous mode back after the block."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self.previous, _mode.enabled = _mode.enabled, self.mode

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        _mode.enabled = self.previous

    def __call__(self, func: Callable) -> Callable:
        """``@set_grad_enabled(mode)``, as torch takes it: the mode for each call of func
        (a generator's each step), and none switched now; it was refused (not callable)
        after switching this thread's recording for good."""
        _mode.enabled = self.previous
        return (enable_grad if self.mode else no_grad)()(func)


def is_grad_enabled() -> bool:
    return _mode.enabled


class gradients_apart:  # (lower case: a context manager, as no_grad)
    """Inside the block, in this thread, a backward adds each leaf's gradient into a
    store of its own (``store[t]``, None for a leaf that got none) instead of ``t.grad``,
    as ``torch.autograd.grad`` hands them back: explain and the diagnostics look at
    ∂L/∂W with the model's ``.grad`` untouched, so a user's accumulated gradients, and
    those another thread's backward adds meanwhile, stay exactly as they are."""

    def __init__(self) -> None:
        self._grads: dict[int, tuple[Tensor, np.ndarray]] = {}
        # per entry: the entering thread's own _mode dict, and its store before
        self._previous: list[tuple[dict, dict | None]] = []

    def __enter__(self) -> gradients_apart:
        self._previous.append((_mode.__dict__, _mode.leaf_grads))
        _mode.leaf_grads = self._grads
        return self

    def __exit__(self, *exc_info: object) -> None:
        entered, previous = self._previous.pop()
        if entered is _mode.__dict__:
            _mode.leaf_grads = previous
        elif entered.get("leaf_grads") is self._grads:  # left in another thread (a
            # generator's body stepped by a pool's threads): the entering thread's backward
            # filled this store for good, its .grad untouched; the leaving thread's is its own
            entered["leaf_grads"] = previous

    def __getitem__(self, leaf: Tensor) -> np.ndarray | None:
        kept = self._grads.get(id(leaf))
        return None if kept is None else kept[1]


def keep_apart(leaf: Tensor, g: np.ndarray) -> None:
    """Add ``g`` to ``leaf``'s gradient in this thread's ``gradients_apart`` store."""
    apart = _mode.leaf_grads
    kept = apart.get(id(leaf))  # (the tensor kept too: its id stays its own)
    apart[id(leaf)] = (leaf, g.copy() if kept is None else accumulate_grad(kept[1], g))


def keeping_gradients_apart() -> bool:
    """Whether this thread's backward now fills a ``gradients_apart`` store (the planned
    stack, which writes ``.grad`` itself, then stands aside for the graph)."""
    return _mode.leaf_grads is not None


def ensure_free_once(home: object) -> None:
    """``home.ensure_free()``, once a backward (before it holds any of the buffer's views:
    the walk's own claims would count as a user's, and start a new buffer every step)."""
    homes = _mode.slot_homes
    if homes is not None:
        if id(home) in homes:
            return
        homes.add(id(home))
    home.ensure_free()


def leaf_grad_slot(leaf: Tensor) -> np.ndarray | None:
    """Where a recorded rule may write ``leaf``'s new gradient with ``out=``: the view of
    the optimiser's flat buffer that the planned stack writes (the step then copies
    nothing), claimed for the running backward; None unless the leaf has no ``.grad``, a
    buffer of its shape and dtype, and no other backward writing there (a new array then)."""
    slots = _mode.slots
    if slots is None or leaf.grad is not None or leaf._backward is not None:
        return None  # (a computed tensor's gradient is no optimiser's)
    if not leaf.requires_grad:
        return None
    home = getattr(leaf, "grad_home", None)
    if home is None:
        return None
    with GRAD_LOCK:
        key = id(leaf)
        if leaf.grad is not None or key in WRITING:
            return None
        ensure_free_once(home)  # a gradient a user kept from an earlier step stays as it is
        buffer = leaf.grad_buffer
        if buffer.shape != leaf.data.shape or buffer.dtype != leaf.data.dtype:
            return None
        WRITING.add(key)
        slots[key] = buffer
        return buffer


def is_walking_freed_graph() -> bool:
    """Whether the backward() now running goes through a freed graph, which it refuses
    once it reaches a gradient to store: a rule with effects of its own (hooks) skips them."""
    return _mode.walking_freed


def is_retaining_graph() -> bool:
    """Whether the backward() now running was asked to keep the graph (retain_graph=True):
    a backward rule that releases buffers of its own should keep them then."""
    return _mode.retain_graph


# What NumPy may compute on a tensor: ops.py fills in the differentiable ufuncs (np.add
# → ops.add, …); comparisons and tests have no gradient and give plain boolean arrays.
UFUNC_OPS: dict[np.ufunc, Callable[..., Tensor]] = {}
# NumPy functions that run as wxb ops on tensors (np.concatenate, np.stack): filled by ops.py
ARRAY_FUNCTION_OPS: dict[Callable, Callable[..., Tensor]] = {}
_BOOLEAN_UFUNCS = frozenset(
    {np.equal, np.not_equal, np.less, np.less_equal, np.greater, np.greater_equal}
    | {np.isfinite, np.isnan, np.isinf, np.signbit}
)


def dim_axis(dim: object, ndim: int, what: str, extra: int = 0) -> int:
    """torch's ``dim`` as an axis from 0 (negative counts from the end); ``extra``: one
    more place, where a new axis may go (unsqueeze)."""
    places = max(ndim, 1) + extra
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise ConfigError(f"{what}: dim must be an integer; got {dim!r}")
    if not -places <= dim < places:
        raise ShapeError(f"{what}: dim {dim} is out of range for a tensor of {ndim} dimensions")
    return int(dim) % places


def dim_axes(dims: Sequence[object], ndim: int, what: str) -> tuple[int, ...]:
    """Several dims as axes, each once: torch refuses a dim named twice, where NumPy's
    "duplicate value in 'axis'" came from deep inside (and norm's set dropped it)."""
    axes = tuple(dim_axis(d, ndim, what) for d in dims)
    if len(set(axes)) < len(axes):
        raise ShapeError(f"{what}: a dim appears more than once in {tuple(dims)}")
    return axes


def keep_flag(value: object, what: str) -> bool:
    """keepdim as torch takes it, True or False: t.mean(0, 1) is refused by torch, where
    a truthy 1 read as keepdim=True gave the mean over dim 0 alone, not over (0, 1)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(
            f"{what}: keepdim must be True or False; got {value!r} (several dims go as a "
            "tuple: dim=(0, 1))"
        )
    return bool(value)


class ValuesIndices(NamedTuple):
    """``t.max(dim)``'s result, as PyTorch's: the values (a tensor) and their indices."""

    values: Tensor
    indices: np.ndarray


def to_dtype(dtype: object, what: str, nor: str = "") -> np.dtype:
    """torch's dtype (torch.int64, 'long'), or NumPy's, as NumPy's."""
    name = str(dtype).removeprefix("torch.") if is_torchs(dtype) else dtype
    name = {"long": "int64", "int": "int32"}.get(name, name) if isinstance(name, str) else name
    try:
        return np.dtype(name)  # type: ignore[call-overload]
    except TypeError:
        raise ConfigError(f"{what}: {dtype!r} is not a dtype{nor}") from None


def is_dtype(value: object) -> bool:
    """Whether ``value`` names a dtype (torch's, or NumPy's dtype or scalar type), not a size."""
    if isinstance(value, np.dtype) or (is_torchs(value) and type(value).__name__ == "dtype"):
        return True
    return isinstance(value, type) and issubclass(value, np.generic)


# torch's names of its tensor types, as t.type() gives them
TYPE_NAMES = {
    np.dtype(k): f"torch.{v}Tensor"
    for k, v in [
        ("int64", "Long"), ("int32", "Int"), ("int16", "Short"), ("int8", "Char"),
        ("uint8", "Byte"), ("bool", "Bool"), ("float32", "Float"), ("float64", "Double"),
    ]
}  # fmt: skip


class _NumpyCalls(threading.local):
    depth = 0  # > 0 while one of NumPy's functions runs on an IndexArray, in this thread


_numpy_calls = _NumpyCalls()
# NumPy's functions that call the caller's own function back: it runs as the user's
# code, IndexArray's methods meaning torch's there
_CALLING_BACK = frozenset({np.apply_along_axis, np.apply_over_axes, np.piecewise})


def _torchs(method: Callable) -> Callable:
    """An IndexArray method of torch's meaning where NumPy's differs (nonzero, repeat,
    max(dim), sort, …): a user's call gets torch's; NumPy's own functions, which call
    the method on the array they are given (np.nonzero calls a.nonzero(), np.max
    a.max(axis=…)), get NumPy's, as on any array."""
    numpys = getattr(np.ndarray, method.__name__)

    @functools.wraps(method)
    def either(self: IndexArray, *args: object, **kwargs: object) -> object:
        if _numpy_calls.depth:
            return numpys(self, *args, **kwargs)
        return method(self, *args, **kwargs)

    return either


def _numpys(self: np.ndarray, name: str, args: tuple, kwargs: dict) -> object:
    return getattr(np.ndarray, name)(self, *args, **kwargs)


def _ints(sizes: tuple, what: str) -> tuple[int, ...]:
    """torch's sizes, given as several ints or one tuple: ints each."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in sizes):
        raise ConfigError(f"{what}: sizes must be whole numbers; got {sizes!r}")
    return tuple(int(n) for n in sizes)


def _refused_for(kind: str, self: np.ndarray, what: str, way: str) -> None:
    """torch refuses this of a bool (kind "b") or of any integer tensor (kind "biu")."""
    if self.dtype.kind in kind:
        raise ConfigError(f"{what}: torch refuses it for a {self.dtype} tensor; write {way}")


class IndexArray(np.ndarray):
    """An integer or boolean NumPy array as wxb gives one (a comparison's mask, argmax's
    and max(dim)'s indices, ``long()``), which also answers torch's casts: the accuracy
    idiom ``(out.argmax(1) == y).float().mean().item()`` runs as in PyTorch (a plain
    array has no ``.float()``), and ``.sum().item()`` gives an int, as torch's."""

    # `pred.argmax(1) == y`, y a torch DataLoader's labels: ours, not torch's reflected ==
    # (whose uint8 tensor refused the port's `.type(wxb.float)`); a comparison carries no
    # gradient, so torch's operand is read as its values. Arithmetic stays torch's, as
    # torch's higher __array_priority__ has it: a tensor that requires grad keeps its graph.
    def _compared(self, other: object, op: str) -> object:
        if is_torch_tensor(other):
            other = foreign_array(other)
        return getattr(np.ndarray, op)(self, other)

    def __eq__(self, other: object) -> object:  # type: ignore[override]
        return self._compared(other, "__eq__")

    def __ne__(self, other: object) -> object:  # type: ignore[override]
        return self._compared(other, "__ne__")

    def __lt__(self, other: object) -> object:
        return self._compared(other, "__lt__")

    def __le__(self, other: object) -> object:
        return self._compared(other, "__le__")

    def __gt__(self, other: object) -> object:
        return self._compared(other, "__gt__")

    def __ge__(self, other: object) -> object:
        return self._compared(other, "__ge__")

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: object, **kwargs: object):
        """NumPy's ufuncs, but arithmetic of two operands in the dtype torch's gives
        (``result_type``): ``labels * 0.5`` and ``correct / n`` are float32, as torch's
        int64 tensors give them, where NumPy's rule made them float64. Beside a Tensor,
        NumPy hands the call to the Tensor's own hook; a torch tensor is read as its array
        (NumPy's call wrapped the result back into torch's, a comparison's as uint8)."""
        if any(is_torch_tensor(x) and getattr(x, "requires_grad", False) for x in inputs):
            return NotImplemented  # torch's own operator then: its graph kept, not dropped
        inputs = tuple(foreign_array(x) if is_torch_tensor(x) else x for x in inputs)
        args = []
        for x in inputs:
            if isinstance(x, Tensor):
                return NotImplemented
            args.append(x.view(np.ndarray) if isinstance(x, IndexArray) else x)
        out = kwargs.get("out")
        if out is not None:
            if any(isinstance(o, Tensor) for o in out):
                return NotImplemented
            kwargs["out"] = tuple(
                o.view(np.ndarray) if isinstance(o, IndexArray) else o for o in out
            )
        elif len(args) == 2 and method == "__call__" and not kwargs:
            floating = _PROMOTED_UFUNCS.get(ufunc)
            if floating is not None:
                dtype = result_type(*inputs, floating=floating)
                args = [np.asarray(x).astype(dtype, copy=False) for x in args]
                result = super().__array_ufunc__(ufunc, method, *args)
                # (mask ** mask: NumPy has no bool loop and gives int8; torch's is bool)
                return marks(result if result.dtype == dtype else result.astype(dtype))
        elif len(args) == 1 and method == "__call__" and not kwargs:
            refuse_bool_sign(ufunc, args[0].dtype)
            computed = _one_operand_dtype(ufunc, args[0].dtype)  # (np.exp(labels): float32)
            if computed is not None:
                return self._one_operand(ufunc, args[0], computed)
        result = super().__array_ufunc__(ufunc, method, *args, **kwargs)
        if result is NotImplemented or method == "at":
            return result
        if out is not None:  # the arrays given, as NumPy hands them back
            return out[0] if len(out) == 1 else out
        if type(result) is tuple:
            return tuple(marks(r) for r in result)
        return marks(result)

    def _one_operand(self, ufunc: np.ufunc, x: np.ndarray, dtype: np.dtype) -> object:
        if dtype.kind != "f":  # values as they are (np.rint of whole numbers, a bool's sign)
            return marks(x.astype(dtype))
        result = super().__array_ufunc__(ufunc, "__call__", x.astype(dtype))
        return tuple(marks(r) for r in result) if type(result) is tuple else marks(result)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False, **numpy_options):
        """float32, as torch's ``mask.float().mean()`` (torch refuses an integer tensor's
        mean; NumPy's float64 set a float64 beside the float32 of ``correct / n``)."""
        if dtype is None and out is None and self.dtype.kind in "biu":
            dtype = DTYPES["float32"]
        return np.ndarray.mean(self, axis, dtype, out, keepdims, **numpy_options)

    # ** as np.power: NumPy's own swaps in np.square, np.sqrt, … for some exponents
    # (labels ** 0.5 came out float64, mask ** 2 int8, past the rule above)
    def __pow__(self, other: object) -> object:
        return np.power(self, other)

    def __rpow__(self, other: object) -> object:
        return np.power(other, self)

    def float(self) -> Tensor:  # a float32 Tensor of the 0/1s or whole numbers, as torch's
        return Tensor(np.asarray(self, dtype=np.float32))

    def double(self) -> Tensor:
        return Tensor(np.asarray(self, dtype=np.float64))

    def long(self) -> IndexArray:
        return np.asarray(self, dtype=np.int64).view(IndexArray)

    def int(self) -> IndexArray:
        return np.asarray(self, dtype=np.int32).view(IndexArray)

    def bool(self) -> IndexArray:
        return np.asarray(self != 0).view(IndexArray)

    def type_as(self, other: object) -> Tensor | IndexArray:
        """``mask.type_as(x)``: a Tensor of x's float dtype (older code's .float())."""
        kind = np.dtype(getattr(other, "dtype", np.float32))
        if kind.kind == "f":
            return Tensor(np.asarray(self, dtype=kind))
        return np.asarray(self, dtype=kind).view(IndexArray)

    def numel(self) -> int:
        return int(self.size)

    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=False, **numpy_options):
        """torch's ``mask.sum(dim=1, keepdim=…)`` (NumPy's refused dim=) or NumPy's own."""
        if not isinstance(keepdim, (bool, np.bool_)):  # NumPy's second place is dtype
            raise TypeError(f"sum: keepdim must be True or False; got {keepdim!r} (dtype=…)")
        axis = dim if dim is not None else axis
        return np.ndarray.sum(self, axis=axis, keepdims=keepdim or keepdims, **numpy_options)

    # torch's names for the comparisons: pred.eq(target.view_as(pred)).sum().item()
    def eq(self, other: object) -> IndexArray:
        return marks(self == other)

    def ne(self, other: object) -> IndexArray:
        return marks(self != other)

    def gt(self, other: object) -> IndexArray:
        return marks(self > other)

    def ge(self, other: object) -> IndexArray:
        return marks(self >= other)

    def lt(self, other: object) -> IndexArray:
        return marks(self < other)

    def le(self, other: object) -> IndexArray:
        return marks(self <= other)

    def view_as(self, other: object) -> IndexArray:
        return marks(self.reshape(np.shape(other)))

    def dim(self) -> int:
        return self.ndim

    # A ported loop moves its labels as its inputs (labels.to(device)) and counts them
    # (total += labels.size(0)): the CPU moves nothing, another device is refused
    def to(self, *args: object, dtype: object = None, device: object = None,
           non_blocking: bool = False, copy: bool = False) -> Tensor | IndexArray:  # fmt: skip
        """``labels.to(device)``, ``.to(torch.float32)``: as torch's; a float dtype gives a
        Tensor (as ``.float()``), an integer or bool one an IndexArray."""
        dtype = to_arguments(args, dtype, device, "to")
        if dtype is None:
            return self.copy() if copy else self
        kind = to_dtype(dtype, "to", " (nor a device)")
        if kind.kind == "f":
            return Tensor(np.asarray(self, dtype=resolve_dtype(kind.name)))
        if kind.kind not in "biu":
            raise ConfigError(f"to: {dtype!r} is neither a float, an integer nor bool dtype")
        return np.asarray(self, dtype=kind).view(IndexArray)

    def view(self, *args: object, **kwargs: object) -> np.ndarray:
        """torch's ``labels.view(-1)``, ``view(-1, 1)``: the labels reshaped; NumPy's
        ``view(dtype)``/``view(type)`` as ever (NumPy's own calls pass those)."""
        if len(args) == 1 and not kwargs and is_torchs(args[0]):
            kind = to_dtype(args[0], "view")  # torch's view(torch.int32): the bytes, read
            data = np.ndarray.view(self._whole(), kind)
            return Tensor(data) if kind.kind == "f" else marks(data)
        shape = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
        whole = (int, np.integer)
        if (
            not kwargs
            and shape
            and all(isinstance(n, whole) and n is not True and n is not False for n in shape)
        ):
            return self.reshape(tuple(int(n) for n in shape))
        return np.ndarray.view(self, *args, **kwargs)

    def unsqueeze(self, dim: int) -> IndexArray:
        return np.expand_dims(self, dim if dim >= 0 else self.ndim + 1 + dim)

    def permute(self, *dims: object) -> IndexArray:
        if not dims:
            raise ConfigError(
                "permute: give the dims' new order (permute(1, 0) or permute((1, 0)))"
            )
        order = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        return marks(np.transpose(self._whole(), tuple(order)))

    def clone(self) -> IndexArray:
        return self.copy()

    def cpu(self) -> IndexArray:
        return self

    @property
    def is_cuda(self) -> bool:  # as a Tensor's (labels.is_cuda in a ported loop)
        return False

    def cuda(self, device: object = None, non_blocking: bool = False) -> IndexArray:
        check_device(f"cuda:{device}" if isinstance(device, int) else device or "cuda", "cuda")
        return self

    def detach(self) -> IndexArray:  # (no gradient to leave behind)
        return self

    @property
    def data(self) -> IndexArray | memoryview:
        """torch's ``labels.data``: the array itself (no gradient to leave behind), as in
        old code's ``pred.eq(target.data.view_as(pred))``; NumPy's buffer, a memoryview,
        answered ``labels.data == y`` with one False. NumPy's functions get their buffer."""
        if _numpy_calls.depth:
            return np.ndarray.data.__get__(self)
        return self

    def numpy(self, force: bool = False) -> np.ndarray:
        return self.view(np.ndarray)

    def __array_function__(self, func: Callable, types: tuple, args: tuple, kwargs: dict):
        """NumPy's functions keep NumPy's meaning: np.nonzero(mask) is NumPy's tuple even
        where mask.nonzero() is torch's (n, ndim) indices (``_torchs``)."""
        if func in _CALLING_BACK:
            return super().__array_function__(func, types, args, kwargs)
        _numpy_calls.depth += 1
        try:
            return super().__array_function__(func, types, args, kwargs)
        finally:
            _numpy_calls.depth -= 1

    # -- torch's meanings of names NumPy gives another (docs/architecture.md) -------
    def _whole(self) -> np.ndarray:
        return self.view(np.ndarray)

    @_torchs
    def nonzero(self, *, as_tuple: bool = False) -> IndexArray | tuple[IndexArray, ...]:
        """torch's: the (n, ndim) indices of the nonzero elements (``len`` counts them);
        ``as_tuple=True`` and ``np.nonzero(mask)`` give NumPy's one array per dim."""
        whole = self._whole()
        if as_tuple:
            return tuple(marks(i.astype(np.int64)) for i in np.nonzero(np.atleast_1d(whole)))
        return marks(np.argwhere(whole).astype(np.int64))

    @_torchs
    def repeat(self, *sizes: object, axis: object = None) -> IndexArray:
        """torch's: the whole tiled ``sizes`` times (``[a, b].repeat(2)`` is ``[a, b, a,
        b]``); NumPy's each element repeated is ``repeat(n, axis=…)`` or ``np.repeat``."""
        if axis is not None:
            return _numpys(self, "repeat", sizes, {"axis": axis})
        reps = _ints(sizes, "repeat")
        if not sizes or len(reps) < self.ndim:
            raise ShapeError(
                f"repeat: {len(reps)} sizes for a tensor of {self.ndim} dimensions (torch's "
                "repeat takes one per dimension, or more; NumPy's each-element repeat is "
                "np.repeat(a, n, axis))"
            )
        return marks(np.tile(self._whole(), reps))

    def _extreme(self, name: str, dim: object, keepdim: object, numpy_options: dict) -> object:
        if numpy_options:  # axis=, out=, keepdims=: NumPy's own
            return _numpys(self, name, (), numpy_options)
        if dim is None:
            return _numpys(self, name, (), {})
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
            other = np.maximum if name == "max" else np.minimum  # t.max(other), as torch's
            return other(self, dim)
        keep = keep_flag(keepdim, name)
        found, chosen = self._picked(name, dim, keep)
        return ValuesIndices(found, chosen)

    def _picked(self, name: str, dim: object, keep: bool) -> tuple[IndexArray, IndexArray]:
        whole = self._whole()
        axis = dim_axis(dim, whole.ndim, name)
        if whole.ndim == 0:  # dim 0 or -1 of one value: itself, at index 0, as torch's
            return marks(whole.copy()), marks(np.zeros((), np.int64))
        if not whole.shape[axis]:
            raise ShapeError(f"{name}: dim {dim} of shape {whole.shape} is empty")
        pick = np.argmax if name in ("max", "argmax") else np.argmin
        chosen = pick(whole, axis=axis, keepdims=True)
        found = np.take_along_axis(whole, chosen, axis)
        if not keep:
            found, chosen = np.squeeze(found, axis), np.squeeze(chosen, axis)
        return marks(found), marks(chosen.astype(np.int64))

    @_torchs
    def max(self, dim: object = None, keepdim: object = False, **numpy_options: object) -> object:
        """torch's: ``max()`` the value; ``max(dim)`` (values, indices), as torch's
        (NumPy's array of values is ``max(axis=…)``); ``max(other)`` the larger of each pair."""
        return self._extreme("max", dim, keepdim, numpy_options)

    @_torchs
    def min(self, dim: object = None, keepdim: object = False, **numpy_options: object) -> object:
        """torch's, as ``max``."""
        return self._extreme("min", dim, keepdim, numpy_options)

    def _arg(self, name: str, dim: object, keepdim: object, numpy_options: dict) -> object:
        if numpy_options:
            return _numpys(self, name, (), numpy_options)
        _refused_for("b", self, name, f"mask.long().{name}()")
        keep = keep_flag(keepdim, name)
        if dim is None:  # the flat index; keepdim: every dim kept, as size 1 (torch's)
            found = np.int64(_numpys(self, name, (), {}))
            return marks(np.reshape(found, (1,) * self.ndim)) if keep else found
        return self._picked(name, dim, keep)[1]

    @_torchs
    def argmax(self, dim: object = None, keepdim: object = False, **numpy_options: object):
        """torch's ``argmax(dim, keepdim)`` (NumPy's second place was ``out``)."""
        return self._arg("argmax", dim, keepdim, numpy_options)

    @_torchs
    def argmin(self, dim: object = None, keepdim: object = False, **numpy_options: object):
        return self._arg("argmin", dim, keepdim, numpy_options)

    def _sorted(self, dim: object, descending: object, name: str) -> tuple[np.ndarray, IndexArray]:
        whole = self._whole()
        if whole.ndim == 0:
            dim_axis(dim, 0, name)
            return whole.copy(), marks(np.zeros((), np.int64))
        axis = dim_axis(dim, whole.ndim, name)
        if not isinstance(descending, (bool, np.bool_)):
            raise ConfigError(f"{name}: descending must be True or False; got {descending!r}")
        if descending:  # stable: equal values keep their order, as torch's stable sort
            flipped = np.argsort(np.flip(whole, axis), axis=axis, kind="stable")
            order = whole.shape[axis] - 1 - np.flip(flipped, axis)
        else:
            order = np.argsort(whole, axis=axis, kind="stable")
        return np.take_along_axis(whole, order, axis), marks(order.astype(np.int64))

    @_torchs
    def sort(self, dim: object = -1, descending: object = False, stable: object = False,
             **numpy_options: object) -> ValuesIndices:  # fmt: skip
        """torch's: (values, indices), the array itself unchanged; NumPy's sort in place
        is ``sort(axis=…, kind=…)`` or ``np.sort`` (a sorted copy)."""
        if numpy_options:
            return _numpys(self, "sort", (), numpy_options)
        values, order = self._sorted(dim, descending, "sort")
        return ValuesIndices(marks(values), order)

    # -- torch's methods of integer and bool tensors that NumPy's array lacks ----------
    def abs(self) -> IndexArray:
        _refused_for("b", self, "abs", "the mask itself (or mask.long().abs())")
        return marks(np.abs(self._whole()))

    def neg(self) -> IndexArray:
        _refused_for("b", self, "neg", "~mask (logical_not) to invert a mask")
        return marks(np.negative(self._whole()))

    def expand(self, *sizes: object) -> IndexArray:
        """torch's ``expand(4, -1)``: a read-only broadcast view (−1 keeps a size)."""
        if not sizes:
            raise ConfigError("expand: give the sizes, as torch's (expand(4, -1))")
        sizes = _ints(sizes, "expand")
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise ShapeError(f"expand: shape {self.shape} cannot take {len(sizes)} sizes")
        shape = tuple(
            self.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(sizes)
        )
        try:
            return marks(np.broadcast_to(self._whole(), shape))
        except ValueError:
            raise ShapeError(f"expand: shape {self.shape} cannot expand to {sizes}") from None

    def _new(self, value: int, size: tuple, dtype: object, requires_grad: object, what: str):
        shape = _ints(size, what)
        if any(n < 0 for n in shape):
            raise ShapeError(f"{what}: sizes must be ≥ 0; got {shape}")
        kind = self.dtype if dtype is None else to_dtype(dtype, what)
        if kind.kind == "f":  # a float one is a Tensor, as .float()'s
            return Tensor(
                np.full(shape, value, resolve_dtype(kind.name)), requires_grad=requires_grad
            )
        if requires_grad:
            raise ConfigError(f"{what}: only a float tensor can require gradients, as torch's")
        return marks(np.full(shape, value, dtype=kind))

    def new_zeros(
        self, *size: object, dtype: object = None, device: object = None,
        requires_grad: bool = False, **unused: object,
    ) -> IndexArray | Tensor:  # fmt: skip
        """torch's ``labels.new_zeros(size)``: in the labels' dtype, or ``dtype``'s."""
        check_device(device, "new_zeros")
        return self._new(0, size, dtype, requires_grad, "new_zeros")

    def new_ones(self, *size: object, dtype: object = None, device: object = None,
                 requires_grad: bool = False, **unused: object) -> IndexArray | Tensor:  # fmt: skip
        check_device(device, "new_ones")
        return self._new(1, size, dtype, requires_grad, "new_ones")

    def split(self, split_size_or_sections: object, dim: object = 0) -> tuple[IndexArray, ...]:
        """torch's: pieces of ``size`` along dim (the last smaller), or of the sizes
        listed, which add up to the dim's size; each a view."""
        if self.ndim == 0:
            raise ShapeError("split: a 0-d tensor has no dim to split")
        axis = dim_axis(dim, self.ndim, "split")
        length, sizes = self.shape[axis], split_size_or_sections
        if isinstance(sizes, (list, tuple)):
            sizes = _ints(tuple(sizes), "split") if sizes else ()
            if any(n < 0 for n in sizes) or sum(sizes) != length:
                raise ShapeError(
                    f"split: sizes {list(sizes)} do not add up to dim {dim}'s {length}"
                )
        else:
            if isinstance(sizes, bool) or not isinstance(sizes, (int, np.integer)) or sizes <= 0:
                raise ConfigError(f"split: split_size must be a positive integer; got {sizes!r}")
            step = int(sizes)
            sizes = [min(step, length - start) for start in range(0, length, step)] or [0]
        bounds = np.cumsum([0, *sizes])
        before = (slice(None),) * axis
        whole = self._whole()
        return tuple(
            marks(whole[(*before, slice(int(i), int(j)))]) for i, j in itertools.pairwise(bounds)
        )

    def chunk(self, chunks: object, dim: object = 0) -> tuple[IndexArray, ...]:
        """torch's pieces of ⌈size/n⌉ along dim (fewer than n where that covers it)."""
        if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks <= 0:
            raise ConfigError(f"chunk: chunks must be a positive integer; got {chunks!r}")
        if self.ndim == 0:
            raise ShapeError("chunk: a 0-d tensor has no dim to split")
        length = self.shape[dim_axis(dim, self.ndim, "chunk")]
        if length == 0:  # torch's: chunks empty pieces
            return self.split([0] * int(chunks), dim)
        return self.split(-(-length // int(chunks)), dim)

    def topk(self, k: object, dim: object = -1, largest: object = True,
             sorted: object = True) -> ValuesIndices:  # fmt: skip
        """torch's: the k largest (smallest) along dim, largest first, (values, indices)."""
        _refused_for("b", self, "topk", "mask.long().topk(k)")
        length = self.shape[dim_axis(dim, self.ndim, "topk")] if self.ndim else 1
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= length:
            raise ShapeError(
                f"topk: k must be an integer from 0 to {length} (dim {dim}'s size); got {k!r}"
            )
        if not isinstance(largest, (bool, np.bool_)):
            raise ConfigError(f"topk: largest must be True or False; got {largest!r}")
        values, order = self._sorted(dim, largest, "topk")
        if self.ndim:
            axis = dim_axis(dim, self.ndim, "topk")
            values = np.take(values, np.arange(int(k)), axis=axis)
            order = np.take(order, np.arange(int(k)), axis=axis)
        return ValuesIndices(marks(values), marks(order))

    def unique(
        self, sorted: object = True, return_inverse: object = False,
        return_counts: object = False, dim: object = None,
    ) -> IndexArray | tuple:  # fmt: skip
        """torch's: the distinct values, ascending (whatever ``sorted`` says, as torch's
        CPU kernel), in the array's dtype; ``return_inverse``, ``return_counts`` int64;
        with ``dim``, the distinct slices along it."""
        whole = self._whole()
        if dim is None:
            values, inverse, counts = np.unique(
                whole.reshape(-1), return_inverse=True, return_counts=True
            )
            inverse = inverse.reshape(whole.shape)
        else:
            if whole.ndim == 0:
                raise ShapeError("unique: a 0-d tensor has no dim to take slices along")
            axis = dim_axis(dim, whole.ndim, "unique")
            values, inverse, counts = np.unique(
                whole, return_inverse=True, return_counts=True, axis=axis
            )
            inverse = inverse.reshape(-1)
        out = [marks(values)]
        for flag, extra, what in ((return_inverse, inverse, "return_inverse"),
                                  (return_counts, counts, "return_counts")):  # fmt: skip
            if not isinstance(flag, (bool, np.bool_)):
                raise ConfigError(f"unique: {what} must be True or False; got {flag!r}")
            if flag:
                out.append(marks(extra.astype(np.int64)))
        return tuple(out) if len(out) > 1 else out[0]

    def t(self) -> IndexArray:
        """torch's: a matrix's transpose (a vector or a value as it is); 3-d refused."""
        if self.ndim > 2:
            raise ShapeError(f"t: expects a tensor of 2 dims or fewer; got shape {self.shape}")
        return marks(self._whole().T)

    def contiguous(self, memory_format: object = None) -> IndexArray:
        whole = self._whole()  # (np.ascontiguousarray made a 0-d array 1-d)
        return marks(whole if whole.flags.c_contiguous else whole.copy(order="C"))

    @_torchs
    def argsort(self, dim: object = -1, descending: object = False, stable: object = False,
                **numpy_options: object) -> IndexArray:  # fmt: skip
        """torch's ``argsort(dim, descending)`` (NumPy's second place was ``kind``)."""
        if numpy_options:
            return _numpys(self, "argsort", (), numpy_options)
        return self._sorted(dim, descending, "argsort")[1]

    def _reduced(self, name: str, dim: object, keepdim: object, tuples: bool) -> tuple:
        """torch's dim (an int, a tuple where ``tuples``, None: all) as NumPy's axis."""
        keep = keep_flag(keepdim, name)
        if dim is None:
            return None, keep
        if isinstance(dim, (tuple, list)):
            if not tuples:
                raise ConfigError(f"{name}: dim must be one integer; got {dim!r}")
            axes = dim_axes(dim, self.ndim, name)
            return (axes if self.ndim else None), keep
        axis = dim_axis(dim, self.ndim, name)
        return (axis if self.ndim else None), keep

    @_torchs
    def all(self, dim: object = None, keepdim: object = False, **numpy_options: object):
        """torch's ``all(dim, keepdim)`` (NumPy's second place was ``out``)."""
        if numpy_options:
            return _numpys(self, "all", (), numpy_options)
        axis, keep = self._reduced("all", dim, keepdim, tuples=True)
        return marks(np.all(self._whole(), axis=axis, keepdims=keep))

    @_torchs
    def any(self, dim: object = None, keepdim: object = False, **numpy_options: object):
        if numpy_options:
            return _numpys(self, "any", (), numpy_options)
        axis, keep = self._reduced("any", dim, keepdim, tuples=True)
        return marks(np.any(self._whole(), axis=axis, keepdims=keep))

    @_torchs
    def prod(self, dim: object = None, keepdim: object = False, *, dtype: object = None,
             **numpy_options: object):  # fmt: skip
        """torch's ``prod(dim, keepdim)``: int64 of whole numbers and bools (NumPy's
        second place was ``dtype``)."""
        if numpy_options:
            return _numpys(self, "prod", (), {"dtype": dtype, **numpy_options})
        axis, keep = self._reduced("prod", dim, keepdim, tuples=False)
        kind = np.int64 if dtype is None else to_dtype(dtype, "prod")
        return marks(np.prod(self._whole(), axis=axis, keepdims=keep, dtype=kind))

    def _cumulative(self, name: str, dim: object, dtype: object, numpy_options: dict):
        if numpy_options or dim is None:
            if dim is None and not numpy_options:  # torch needs the dim; NumPy's flattened
                raise ConfigError(
                    f"{name}: give the dim, as torch's {name}(dim) (NumPy's {name}() of the "
                    f"flattened array is np.{name}(a))"
                )
            return _numpys(self, name, (), {"dtype": dtype, **numpy_options})
        whole = self._whole()
        axis = dim_axis(dim, whole.ndim, name)
        kind = np.int64 if dtype is None else to_dtype(dtype, name)
        run = np.cumsum if name == "cumsum" else np.cumprod
        return marks(run(whole, axis=axis, dtype=kind).reshape(whole.shape))

    @_torchs
    def cumsum(self, dim: object = None, *, dtype: object = None, **numpy_options: object):
        """torch's ``cumsum(dim)`` (a 0-d array stays 0-d); NumPy's ``axis=`` as ever."""
        return self._cumulative("cumsum", dim, dtype, numpy_options)

    @_torchs
    def cumprod(self, dim: object = None, *, dtype: object = None, **numpy_options: object):
        return self._cumulative("cumprod", dim, dtype, numpy_options)

    @_torchs
    def flatten(self, start_dim: object = 0, end_dim: object = -1, **numpy_options: object):
        """torch's ``flatten(start_dim, end_dim)``; NumPy's ``flatten(order)`` as ever."""
        if numpy_options or isinstance(start_dim, str):
            order = start_dim if isinstance(start_dim, str) else "C"
            return _numpys(self, "flatten", (), {"order": order, **numpy_options})
        whole = self._whole()
        if whole.ndim == 0:
            dim_axis(start_dim, 0, "flatten"), dim_axis(end_dim, 0, "flatten")
            return marks(whole.reshape(1))
        start = dim_axis(start_dim, whole.ndim, "flatten")
        end = dim_axis(end_dim, whole.ndim, "flatten")
        if start > end:
            raise ShapeError(
                f"flatten: start_dim {start_dim} comes after end_dim {end_dim} (shape "
                f"{whole.shape})"
            )
        return marks(whole.reshape(*whole.shape[:start], -1, *whole.shape[end + 1 :]))

    @_torchs
    def squeeze(self, dim: object = None, **numpy_options: object) -> IndexArray:
        """torch's ``squeeze(dim)``: a dim of size 1 dropped, another kept (NumPy's
        refused it); NumPy's ``squeeze(axis=…)`` as ever."""
        if numpy_options:
            return _numpys(self, "squeeze", (), numpy_options)
        whole = self._whole()
        if dim is None:
            return marks(np.squeeze(whole))
        dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
        axes = dim_axes(dims, whole.ndim, "squeeze")
        drop = tuple(a for a in axes if whole.ndim and whole.shape[a] == 1)
        return marks(np.squeeze(whole, drop) if drop else whole)

    @_torchs
    def transpose(self, *dims: object, **torch_dims: object) -> IndexArray:
        """torch's ``transpose(dim0, dim1)``: those two dims swapped; NumPy's of a
        matrix, ``transpose(0, 1)``, was the matrix itself. NumPy's other forms (none,
        one order of all dims) as ever."""
        if torch_dims:
            dims = (*dims, *(torch_dims.pop(k) for k in ("dim0", "dim1") if k in torch_dims))
            if torch_dims or len(dims) != 2:
                raise ConfigError(f"transpose: takes dim0 and dim1; got {sorted(torch_dims)}")
        if len(dims) == 2 and all(isinstance(d, (int, np.integer)) for d in dims):
            return self._swapped(dims[0], dims[1], "transpose")
        return _numpys(self, "transpose", dims, {})

    def _swapped(self, dim0: object, dim1: object, name: str) -> IndexArray:
        whole = self._whole()
        a, b = dim_axis(dim0, whole.ndim, name), dim_axis(dim1, whole.ndim, name)
        return marks(np.swapaxes(whole, a, b) if whole.ndim else whole)

    @_torchs
    def swapaxes(self, axis0: object, axis1: object) -> IndexArray:
        return self._swapped(axis0, axis1, "swapaxes")

    def resize(self, *args: object, **kwargs: object) -> None:
        """Refused: torch's ``resize`` gives a new tensor, NumPy's resizes in place and
        gives None; neither can stand for the other without a word."""
        if _numpy_calls.depth:
            return _numpys(self, "resize", args, kwargs)
        raise ConfigError(
            "resize: torch's resize(*sizes) gives a new tensor, NumPy's resizes the array "
            "in place; write labels.reshape(...) (torch's, same count), or np.resize(labels, "
            "shape) (a new array, cycling the values)"
        )

    def put(self, index: object, source: object = None, accumulate: object = None,
            **numpy_options: object) -> IndexArray | None:  # fmt: skip
        """torch's ``put(index, source, accumulate=…)`` gives a new array; NumPy's
        ``put(ind, v)`` writes in place: the form without ``accumulate`` is refused
        (neither can stand for the other without a word)."""
        if _numpy_calls.depth or numpy_options:
            return _numpys(self, "put", (index, source), numpy_options)
        if accumulate is None:
            raise ConfigError(
                "put: torch's put(index, source) gives a new tensor, NumPy's writes in place; "
                "write put(index, source, accumulate=False) for torch's, np.put(a, index, "
                "source) for NumPy's"
            )
        out = self._whole().copy()
        flat = np.asarray(index, dtype=np.int64).reshape(-1)
        values = np.asarray(source).reshape(-1)
        if keep_flag(accumulate, "put (accumulate)"):
            np.add.at(out.reshape(-1), flat % max(out.size, 1), values)
        else:
            np.put(out, flat, values)
        return marks(out)

    @_torchs
    def std(self, *args: object, **kwargs: object) -> np.ndarray:
        return self._spread("std", args, kwargs)

    @_torchs
    def var(self, *args: object, **kwargs: object) -> np.ndarray:
        return self._spread("var", args, kwargs)

    def _spread(self, name: str, args: tuple, kwargs: dict) -> np.ndarray:
        """Refused, as torch refuses an integer tensor's; NumPy's (ddof=0, where torch's
        default divides by n − 1) with NumPy's keywords (axis=, ddof=) as ever."""
        if not args and kwargs and set(kwargs) <= {"axis", "ddof", "dtype", "out", "keepdims"}:
            return _numpys(self, name, (), kwargs)
        raise ConfigError(
            f"{name}: torch refuses a {self.dtype} tensor's {name} (NumPy's divides by n, "
            f"torch's by n − 1); write t.float().{name}(...) for torch's, "
            f"np.{name}(t) for NumPy's"
        )

    @_torchs
    def round(self, *args: object, **kwargs: object) -> object:
        """torch's: a whole number rounds to itself; a bool, and ``decimals`` of whole
        numbers, are refused, as torch's."""
        if self.dtype.kind in "biu" and ("out" not in kwargs):
            # (torch's own refuses decimals for whole numbers, 0 too)
            if self.dtype.kind == "b" or args or "decimals" in kwargs:
                _refused_for("biu", self, "round", "t.float().round(decimals=...)")
            return marks(self._whole().copy())
        return _numpys(self, "round", args, kwargs)

    @_torchs
    def clip(self, min: object = None, max: object = None, **numpy_options: object):
        """torch's clamp: refused for bools; a float bound gives float32, as torch's."""
        if numpy_options:
            return _numpys(self, "clip", (min, max), numpy_options)
        _refused_for("b", self, "clip", "mask.long().clip(...)")
        if min is None and max is None:
            raise ConfigError("clip: give min or max (or both)")
        low = self if min is None else np.maximum(self, min)
        return low if max is None else np.minimum(low, max)

    @_torchs
    def dot(self, other: object, out: object = None) -> object:
        """torch's: of two vectors alone (NumPy's took matrices: a product); refused for
        bools, as torch's."""
        if out is None and not (self.ndim == 1 and np.ndim(other) == 1):
            raise ShapeError(
                f"dot: torch's takes two 1-D tensors; got shapes {self.shape} and "
                f"{np.shape(other)} (a @ b for matrices)"
            )
        if out is None:
            _refused_for("b", self, "dot", "a.long().dot(b.long())")
        return _numpys(self, "dot", (other,), {} if out is None else {"out": out})

    @_torchs
    def trace(self, *args: object, **kwargs: object) -> object:
        """torch's: of a matrix alone (NumPy's summed diagonals of a stack of them)."""
        if not args and not kwargs:
            if self.ndim != 2:
                raise ShapeError(f"trace: of a matrix, as torch's; got shape {self.shape}")
            _refused_for("b", self, "trace", "mask.long().trace()")
        return _numpys(self, "trace", args, kwargs)

    def type(self, dtype: object = None, non_blocking: bool = False) -> str | Tensor | IndexArray:
        """torch's ``labels.type()``, the type's name ('torch.LongTensor'), and
        ``type(dtype)``, the cast as ``to(dtype)`` (a name as 'torch.FloatTensor' too)."""
        if dtype is None:
            return TYPE_NAMES.get(self.dtype, f"torch.{self.dtype}")
        named = {v: k for k, v in TYPE_NAMES.items()}.get(dtype) if isinstance(dtype, str) else None
        return self.to(dtype if named is None else named)

    @property
    def size(self) -> Count:  # NumPy's count, which torch's size(dim) also answers
        return Count(np.ndarray.size.__get__(self), self.shape)


class Count(int):
    """An IndexArray's ``size``: NumPy's count of elements, an int, which called answers
    torch's ``size()`` (the shape) and ``size(dim)``."""

    def __new__(cls, count: int, shape: tuple[int, ...]) -> Count:
        made = super().__new__(cls, count)
        made.shape = tuple(shape)
        return made

    def __call__(self, dim: int | None = None) -> tuple[int, ...] | int:
        return self.shape if dim is None else self.shape[dim]

    def __reduce__(self) -> tuple:  # pickled and copied as the plain count
        return int, (int(self),)


def refuse_bool_sign(ufunc: object, dtype: np.dtype) -> None:
    """-mask and abs(mask) refused, as torch refuses them: abs(mask) gave the mask itself
    (bool), wxb.abs(mask) and wxb.neg(mask) float tensors, where torch says no."""
    if dtype.kind != "b" or ufunc not in (np.negative, np.absolute):
        return
    what = "-mask (negation)" if ufunc is np.negative else "abs(mask)"
    raise TypeError(
        f"{what} of a boolean mask is not supported, as in torch: invert it with ~mask; "
        "for its values as numbers, mask.long() or mask.float() first"
    )


def marks(array: object) -> IndexArray:
    """``array`` (a mask, indices) as the IndexArray wxb hands back."""
    return np.asarray(array).view(IndexArray)


# Ufuncs of two operands whose dtype result_type gives; True: a float result for whole
# numbers too (torch's int / int is its default float dtype, float32)
_PROMOTED_UFUNCS = {
    np.add: False,
    np.subtract: False,
    np.multiply: False,
    np.true_divide: True,
    np.floor_divide: False,
    np.remainder: False,
    np.fmod: False,
    np.power: False,
    np.maximum: False,
    np.minimum: False,
    np.arctan2: True,
    np.hypot: True,
}
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}  # torch's ranks: bool < integer < float


# torch's dtype for these of a bool tensor (NumPy's: int8, int8 and no loop for sign)
_BOOLS_KEPT = {np.sign: np.dtype(np.bool_), np.conjugate: np.dtype(np.bool_)}
_BOOLS_KEPT[np.square] = np.dtype(np.int64)


def _one_operand_dtype(ufunc: np.ufunc, dtype: np.dtype) -> np.dtype | None:
    """The dtype a one-operand ufunc of an integer or boolean array computes in, where
    torch's differs from NumPy's: float32 (torch's default dtype) where NumPy's result is
    a float (np.exp, np.sqrt, np.sin: float64, or float16 for bools and bytes) or, for
    np.reciprocal, its whole-number 1 // x; the dtype itself for np.rint of whole
    numbers (torch.round keeps them), and torch's for bools where each value stays as it
    is (sign, conj: bool; square: int64); None: NumPy's own."""
    if dtype.kind not in "biu":
        return None
    if ufunc is np.rint and dtype.kind != "b":
        return dtype
    if dtype.kind == "b" and ufunc in _BOOLS_KEPT:
        return _BOOLS_KEPT[ufunc]
    if ufunc is np.reciprocal:
        return DTYPES["float32"]
    try:
        resolved = ufunc.resolve_dtypes((dtype,) + (None,) * ufunc.nout)
    except TypeError:  # (no loop for it, np.negative of bools: NumPy's error says so)
        return None
    return DTYPES["float32"] if any(d.kind == "f" for d in resolved[1:]) else None


def result_type(*operands: object, floating: bool = False) -> np.dtype:
    """The dtype of an operation's result, by ``torch.result_type``'s rule, for the
    operands wxb takes: tensors and arrays with dimensions decide; a 0-d one, a number or a
    NumPy scalar changes the result only where it is of a higher kind (bool < integer <
    float), a float number then giving float32 (torch's default dtype), a 0-d tensor or
    array its own dtype. Where a Tensor is among the operands, an array counts as a number:
    it takes the tensor's dtype (wxb's one difference from torch, which reads a float64
    array as a float64 tensor). ``floating``: a result of whole numbers is float32 (true
    division). Values of other kinds (text, complex) have no say: the cast refuses them."""
    beside_tensor = any(isinstance(x, Tensor) for x in operands)
    tiers: list[np.dtype | None] = [None, None, None]  # dimensioned, 0-d, numbers
    for x in operands:
        if isinstance(x, Tensor) or (isinstance(x, np.ndarray) and not beside_tensor):
            dtype, tier = x.dtype, 0 if x.ndim else 1
        else:
            dtype, tier = _number_dtype(x), 2
        if dtype.kind not in _CATEGORY:  # (object, text, complex: no say; the cast refuses)
            continue
        tiers[tier] = dtype if tiers[tier] is None else _promoted(tiers[tier], dtype)
    result = None
    for dtype in tiers:
        if dtype is not None and (result is None or _rank(dtype) > _rank(result)):
            result = dtype if result is None else _promoted(result, dtype)
    if result is None or (floating and result.kind != "f"):
        return DTYPES["float32"]
    return result


def _number_dtype(value: object) -> np.dtype:
    """A number's dtype as torch reads one: bool, int64, or float32 (its default)."""
    if isinstance(value, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(value, (int, np.integer)):
        return np.dtype(np.int64)
    if isinstance(value, (float, np.floating)):
        return DTYPES["float32"]
    dtype = getattr(value, "dtype", None)  # an array beside a tensor, a list, torch's
    if not isinstance(dtype, np.dtype):
        dtype = foreign_array(value).dtype if hasattr(value, "__array__") else None
        dtype = np.asarray(value).dtype if dtype is None else dtype
    return _number_dtype(dtype.type(0)) if dtype.kind in _CATEGORY else dtype


def _rank(dtype: np.dtype) -> int:
    return _CATEGORY[dtype.kind]


def _promoted(a: np.dtype, b: np.dtype) -> np.dtype:
    """torch's promote_types: the higher kind's dtype (int64 with float32 is float32,
    where NumPy gives float64); within a kind, the wider."""
    if _rank(a) != _rank(b):
        return a if _rank(a) > _rank(b) else b
    return np.promote_types(a, b)


def refuse_masked(value: object, where: str) -> None:
    """A NumPy masked array with masked entries refused: every read of it as an array
    (np.asarray, torch.tensor) takes the values hidden under the mask, which would then
    train, predict or load as if they were data. One with no entry masked passes."""
    if type(value) is np.ndarray:
        return
    masked = sys.modules.get("numpy.ma")  # (none exists before numpy.ma is imported)
    if masked is None:
        return
    if isinstance(value, (list, tuple)):  # rows given as a list of masked arrays
        for i, item in enumerate(value):
            if isinstance(item, masked.MaskedArray):
                refuse_masked(item, f"{where}[{i}]")
        return
    if not isinstance(value, masked.MaskedArray):
        return
    hidden = masked.getmaskarray(value)
    if not hidden.any():
        return
    first = tuple(int(i) for i in np.argwhere(hidden)[0])
    at = f" (the first at index {first})" if first else ""
    count = int(hidden.sum())
    entries = "1 masked entry" if count == 1 else f"{count} masked entries"
    raise DataError(
        f"{where}: a masked array with {entries}{at}; wxb reads arrays without masks and "
        "would compute with the values under them. Fill them first (a.filled(value)), or "
        "leave those rows out (a[~a.mask.any(axis=1)])"
    )


def unmasked(value: object, where: str) -> object:
    """``value``, or the plain array of a NumPy masked array with no entry masked (a
    masked array kept would keep its mask in NumPy's arithmetic: 1/0 masked, not inf);
    one with entries masked is refused (``refuse_masked``)."""
    if type(value) is np.ndarray or not isinstance(value, np.ndarray):
        return value
    refuse_masked(value, where)
    masked = sys.modules.get("numpy.ma")
    if masked is not None and isinstance(value, masked.MaskedArray):
        return np.asarray(value)
    return value


def float_array(value: object, dtype: np.dtype, where: str) -> np.ndarray:
    """``value`` as an array of ``dtype``, refusing what the cast would change without a
    word: complex numbers (the imaginary part dropped), text and dates (parsed, or
    counted in days), and finite numbers beyond the dtype's range (inf in float32)."""
    kind = type(value)
    if kind is float or kind is int:  # the common operand, checked without NumPy's help
        big = abs(value) > _FLOAT32_MAX and (kind is int or math.isfinite(value))
        if big and dtype == np.float32:
            raise _beyond_range(where, dtype)
        try:
            return xp.asarray(value, dtype=dtype)
        except OverflowError:  # an int beyond any float
            raise _beyond_range(where, dtype) from None
    # A plain array, as torch.tensor takes a subclass: an np.matrix kept would index as a
    # matrix (t[:, 0] of shape (n, 1)), and a masked array would keep its masked entries
    # out of the arithmetic of the backward (g * A left g there); one with entries masked
    # is refused (the plain read would compute with the values under the mask)
    if kind is list or kind is tuple or (kind is not np.ndarray and isinstance(value, np.ndarray)):
        refuse_masked(value, where)
    if kind is not np.ndarray and kind.__module__.startswith("scipy.sparse"):  # (as torch.tensor)
        # NumPy read it as a 0-d array of objects: "setting an array element with a sequence"
        raise DataError(
            f"{where}: a SciPy sparse {kind.__name__} of shape {getattr(value, 'shape', '?')} "
            "is not taken, tensors are dense: pass X.toarray() (model(X), fit, evaluate "
            "and predict take the sparse X as it is)"
        )
    source = value if type(value) is np.ndarray else np.asarray(value)
    if source.dtype == dtype:  # nothing to cast: nothing to check
        return source
    if source.dtype.kind in "biu":  # whole numbers fit either float (int64 < 3.4e38)
        return xp.asarray(source, dtype=dtype)
    # None (t * None, [1, None]): NumPy's cast makes it NaN without a word; torch refuses it
    held = "None" if value is None else _not_real(source) if source.dtype.kind == "O" else None
    if held == "None":
        raise DataError(
            f"{where}: got None among the values; wxb computes with numbers (write "
            "float('nan') for a missing value, or leave it out)"
        )
    if held is not None:
        raise DataError(
            f"{where}: got {held} among the values; wxb computes with real numbers in "
            f"{' or '.join(DTYPES)} (convert them first)"
        )
    if source.dtype.kind in "cUSMmV":
        raise DataError(
            f"{where}: got {source.dtype} values; wxb computes with real numbers in "
            f"{' or '.join(DTYPES)} (convert them first)"
        )
    try:
        with np.errstate(over="raise"):
            return xp.asarray(source, dtype=dtype)
    except (FloatingPointError, OverflowError):  # (OverflowError: an int beyond any float)
        raise _beyond_range(where, dtype) from None


_FLOAT32_EXACT = 2**24  # every whole number up to it is a float32; above it, only some


def _check_whole_numbers_kept(data: object, array: np.ndarray) -> None:
    """Whole numbers made float32 because no dtype was given (torch would keep them as
    int64) must come out exact: above 2**24 a float32 holds only some of them."""
    if array.size == 0 or float(np.abs(array).max()) < _FLOAT32_EXACT:
        return
    source = np.asarray(data)
    if source.dtype.kind == "f" and isinstance(data, (list, tuple)):
        # Python ints NumPy read as float64 ([5, 2**63 + 1]: int64 and uint64 have no
        # common integer type), already rounded: read one by one (not where a fraction
        # shows a float among them, which float32 takes as torch's default dtype does)
        with np.errstate(invalid="ignore"):
            if not np.all(np.floor(source) == source):
                return
        source = np.array(data, dtype=object)
        if source.shape != array.shape:
            return
    if source.dtype.kind in "iu":
        # compared as integers: float64 != int64 compares in float64, where 2**53 + 1
        # and the float32 2**53 it became are equal
        wide = array.astype(np.float64)
        info = np.iinfo(source.dtype)
        inside = (wide >= float(info.min)) & (wide < float(info.max) + 1)  # castable back
        back = np.where(inside, wide, 0).astype(source.dtype)
        rounded = ~inside | (back != source)
    elif source.dtype.kind == "O":  # Python ints beyond int64's range: whole numbers alone
        values = source.ravel()
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            return  # (a float among them: float32 as torch's default dtype makes it)
        rounded = np.array([int(a) != v for v, a in zip(values, array.ravel(), strict=True)])
    else:
        return
    if rounded.any():
        first = source.flat[int(np.argmax(rounded.ravel()))]
        raise DataError(
            f"Tensor: the whole number {first} would become {float(np.float32(first)):.0f} "
            "in float32 (exact only up to 2**24 = 16777216); pass dtype='float64' (exact up "
            "to 2**53), or scale the values"
        )


def foreign_array(value: object) -> np.ndarray:
    """Another library's tensor (torch's) as NumPy reads it, its dtype kept; one that
    requires grad gives its values, as ``torch.tensor(t)`` does (NumPy's read refuses it)."""
    if getattr(value, "requires_grad", False) and callable(getattr(value, "detach", None)):
        value = value.detach()
    return np.asarray(value)


def _not_real(objects: np.ndarray) -> str | None:
    """What an object array (a pandas object column, a list of mixed kinds) holds that the
    cast to float would change without a word, as it refuses none of it: None (NaN), text
    (parsed), dates (counted in days), complex numbers (the imaginary part dropped)."""
    for v in objects.flat:
        if v is None:
            return "None"
        if isinstance(v, (str, bytes)):
            return "text"
        if isinstance(v, (np.datetime64, np.timedelta64, datetime.date, datetime.timedelta)):
            return "dates or durations"
        if isinstance(v, complex):  # (NumPy's complex scalars too)
            return "complex numbers"
    return None


def _beyond_range(where: str, dtype: np.dtype) -> DataError:
    return DataError(
        f"{where}: a value is beyond {dtype}'s range and would become inf (use a float64 "
        "tensor, or scale the values)"
    )


class Tensor:
    """An array plus, when it came out of an operation, the record of that operation."""

    __slots__ = (
        "__weakref__",
        "_backward",
        "_freed",
        "_hooks",
        "_keeps_values",
        "_output_version",
        "_recorded",
        "_replaced",
        "_saved_versions",
        "_seen_versions",
        "_versions",
        "_view_base",
        "data",
        "grad",
        "inputs",
        "name",
        "op",
        "requires_grad",
        "retains_grad",
    )

    def __init__(
        self,
        data: object,
        requires_grad: bool = False,
        *,
        dtype: object = None,
        name: str | None = None,
    ) -> None:
        base = None
        if isinstance(data, Tensor):
            base, data = data, data.data
        elif not isinstance(data, np.ndarray) and hasattr(data, "to_numpy"):
            data = data.to_numpy()  # a pandas Series or DataFrame: its float64 kept, as an array's
        elif not isinstance(data, (np.ndarray, np.generic)) and hasattr(data, "ndim"):
            if hasattr(data, "__array__"):  # a torch tensor: its float64 kept, as an array's
                data = foreign_array(data)  # (a 0-d one too: torch.randn((), dtype=float64))
        # A float array, or a NumPy float scalar (np.float64(x), as PyTorch), keeps its dtype.
        if dtype is None and isinstance(data, (np.ndarray, np.inexact)) and data.dtype.kind in "fc":
            if data.dtype.type not in _FLOAT_TYPES:  # float16, longdouble, complex
                raise DataError(
                    f"Tensor: {data.dtype} arrays are not supported; wxb computes in "
                    f"{' or '.join(DTYPES)} (cast with array.astype(np.float32), or pass "
                    "dtype='float32')"
                )
            # np.matrix and other subclasses: a plain view (a matrix's * and [:, 0] differ)
            if type(data) is not np.ndarray:
                refuse_masked(data, "Tensor")
            array = data if type(data) is np.ndarray else np.asarray(data)
            if not array.dtype.isnative:  # big-endian bytes (a file's): in the machine's order
                array = array.astype(array.dtype.newbyteorder("="))
        else:
            array = float_array(data, resolve_dtype(dtype), "Tensor")
            if dtype is None and array.dtype == np.float32:
                _check_whole_numbers_kept(data, array)
        self.data: np.ndarray = array
        self.grad: np.ndarray | None = None
        self.requires_grad = requires_grad
        self.retains_grad = False
        self.name = name
        self.op: str | None = None
        self.inputs: tuple[Tensor, ...] = ()
        self._backward: BackwardRule | None = None
        self._freed = False
        # the backward holds values torch saves as tensors (max's indices, an index
        # array) beyond the versioned ones: a second backward refuses it too (keep_values)
        self._keeps_values = False
        self._hooks: dict[int, Callable] | None = None  # register_hook's, by handle id
        self._saved_versions: tuple[int | None, ...] | None = None
        self._seen_versions: tuple[int, ...] | None = None
        self._recorded: tuple[bool, ...] | None = None
        self._output_version: int | None = None
        # the records an in-place operation replaced: (version after it, the tensor that
        # holds the record before it), oldest first (record_in_place)
        self._replaced: list[tuple[int, Tensor]] | None = None
        # Bumped by in-place updates (optimizer.step, load_state_dict, t += x); one counter
        # for a tensor and its views (Tensor(t), t.detach(), t.T, t[0], t.reshape), as
        # PyTorch's views share one: a change through any of them counts for all.
        shares = base is not None and array is base.data
        self._versions: list[int] = base._versions if shares else [0]
        if shares and _WATCHING[0] and type(base) is Watched:
            _watched(self)  # (Tensor(h) of a sample run's result: its array, watched too)
        if base is not None and base.requires_grad and not requires_grad and _mode.enabled:
            if type(self) is Tensor:  # (a Parameter of it is a new leaf, as torch's)
                self._alias_of(base, shares)

    def _alias_of(self, base: Tensor, shares: bool) -> None:
        """``Tensor(t)`` of a t that requires grad, while the graph is recorded: t in the
        graph under another name, as torch.Tensor(t) (AliasBackward): ∂L/∂t = ∂L/∂Tensor(t).
        It had no record: a forward wrapping its input (``x = wxb.Tensor(x)``) cut every
        layer before it from the gradient, without a word."""
        dtype = base.dtype

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (g.astype(dtype, copy=False),)  # (dtype= given: back in t's own)

        made = Tensor.from_op(self.data, "alias", (base,), backward, reads_inputs=False)
        for name in (*_RECORD_FIELDS, "_recorded", "requires_grad", "_output_version"):
            setattr(self, name, getattr(made, name))
        if shares:  # a view of t: a change in place through it is recorded on t
            self._view_base = base

    @property
    def _version(self) -> int:
        """How often this tensor's array was changed in place (through it or a view)."""
        return self._versions[0]

    @_version.setter
    def _version(self, value: int) -> None:
        self._versions[0] = value

    # -- construction by operations -------------------------------------------------
    @classmethod
    def of_array(cls, array: np.ndarray) -> Tensor:
        """``Tensor(array)`` for a float32 or float64 ndarray in the machine's byte order,
        which the caller has checked: the same leaf, without the checks (the per-call
        price of a one-row ``model(x)``)."""
        out = cls.__new__(cls)
        out.data = array
        out.grad = None
        out.requires_grad = out.retains_grad = out._freed = out._keeps_values = False
        out.name = out.op = out._backward = out._hooks = None
        out.inputs = ()
        out._saved_versions = out._recorded = out._output_version = None
        out._seen_versions = out._replaced = None
        out._versions = [0]
        return out

    @classmethod
    def from_op(
        cls,
        data: np.ndarray,
        op: str,
        inputs: tuple[Tensor, ...],
        backward: BackwardRule,
        saves_output: bool = False,
        reads_inputs: bool | tuple[bool, ...] = True,
    ) -> Tensor:
        """The result of primitive ``op``; records the graph edge if any input needs it.
        ``saves_output``: the backward reads the result itself (e^A, √A, f(Z)), so an
        in-place change of it before backward is refused, as for an input.
        ``reads_inputs=False``: the backward reads no input's values (A + B, Σ A, a
        reshape), so an input changed in place since does not refuse it (as PyTorch);
        a tuple says it per input (A ⊙ B reads B only for ∂L/∂A: a constant A may change)."""
        out = cls.__new__(cls)
        # NumPy's ufuncs give a scalar, not a 0-d array, for a 0-d input
        out.data = np.asarray(data) if isinstance(data, np.generic) else data
        if _WATCHING[0]:  # (only while a sample run watches, in some thread)
            _watched(out)
        out.grad = None
        out.retains_grad = False
        out.name = None
        out.op = op
        out._freed = out._keeps_values = False
        out._hooks = out._replaced = None
        out._versions = [0]  # ops whose result views an input's array share its (ops.py)
        needs = False
        if _mode.enabled:
            if _REPLACED[0]:  # (only once an in-place operation was recorded)
                for t in inputs:
                    if len(t._versions) > 1:  # (a recorded change on its array: a view
                        retake_views(inputs, op)  # from before it takes its record again)
                        break
            for t in inputs:  # plain loops, not any(): this runs for every recorded op
                if t.requires_grad:
                    needs = True
                    break
        out.requires_grad = needs
        out._recorded = None
        if not needs:
            out.inputs, out._backward = (), None
            out._saved_versions = out._seen_versions = out._output_version = None
            return out
        out.inputs, out._backward = inputs, backward
        # The inputs' versions now: backward refuses if one it reads was updated in place
        # since (a step between forward and backward would give gradients of other
        # weights); all of them, to tell which record of an input it took (record_in_place)
        out._seen_versions = seen = tuple([t._versions[0] for t in inputs])
        if reads_inputs is True or reads_inputs is False:
            out._saved_versions = seen if reads_inputs else (None,) * len(inputs)
        else:
            out._saved_versions = tuple(
                [t._versions[0] if r else None for t, r in zip(inputs, reads_inputs, strict=True)]
            )
        # Which inputs needed a gradient when it ran: one that asks later gets none from
        # this record, as in PyTorch (None: all of them did).
        for t in inputs:
            if not t.requires_grad:
                out._recorded = tuple([u.requires_grad for u in inputs])
                break
        out._output_version = 0 if saves_output else None
        return out

    # -- array-like surface -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        if self.data.size != 1:
            raise ShapeError(f"item() needs a tensor with one element; got shape {self.shape}")
        return float(self.data.item())

    def __format__(self, spec: str) -> str:
        """A 0-d tensor formats as its value (f"{loss:.4f}"), as torch's; another tensor
        takes only the empty format."""
        if self.ndim == 0:
            return format(self.data.item(), spec)
        return object.__format__(self, spec)

    def __float__(self) -> float:
        return self.item()

    def __int__(self) -> int:
        """A one-element tensor's value truncated towards zero, as ``int(t)`` in PyTorch."""
        return int(self.item())

    def detach(self) -> Tensor:
        data = self.data  # no graph (Tensor(self) records an alias of self)
        plain = type(data) is np.ndarray and data.dtype.type in _FLOAT_TYPES
        out = Tensor.of_array(data) if plain and data.dtype.isnative else Tensor(data)
        if out.data is data:  # the same array: changed in place, it counts for self
            out._versions = self._versions
            if _WATCHING[0] and type(self) is Watched:
                _watched(out)
        return out

    def detach_(self) -> Tensor:
        """torch's in-place detach: self becomes a leaf that needs no gradient, and is
        returned (``h.detach_()`` between the chunks of truncated backpropagation,
        ``x.clone().detach_()``). A view is refused, as torch refuses it. So is a result
        that a recorded operation took as input, no backward having walked that one (a
        second loss from it, not backwarded yet): torch's node still reaches its graph,
        whereas wxb's record lives on the tensor itself and would go with it (its
        gradient stopped there, unsaid). Those a backward walked refuse a second one."""
        if view_base(self) is not None:
            raise ConfigError(
                "detach_() on a view (t[i], t.T, t.reshape(...)): torch refuses it too "
                '("Can\'t detach views in-place"); use v = v.detach()'
            )
        if self._backward is not None:
            taking = _records_taking(self)
            if any(not node._freed for node in taking):
                del taking  # (a dropped graph's node, in a cycle, not collected yet: gone)
                gc.collect()
                taking = _records_taking(self)
            pending = next((node for node in taking if not node._freed), None)
            if pending is not None:
                raise ConfigError(
                    f"detach_() on the result of a recorded operation ({self.op}) that "
                    f"another recorded operation ({pending.op}) took as input, and no "
                    "backward() walked since: that one would lose its way to the graph in "
                    "wxb (torch keeps it); use t = t.detach(), or call it after backward()"
                )
            # walked ones: a second backward through them, which torch's takes on into
            # self's old graph, would stop at self in wxb: refused (as a saved value's)
            for node in taking:
                node._keeps_values = True
        for name in (*_RECORD_FIELDS, "_recorded", "_output_version"):
            setattr(self, name, _LEAF_AFRESH[name])
        self.requires_grad = False
        return self

    def __deepcopy__(self, memo: dict) -> Tensor:
        """As in PyTorch, a result of recorded operations is not deep-copied: its backward
        would reach the original's parameters (a planned stack's does), not the copy's."""
        if self._backward is not None:
            raise ConfigError(
                "a Tensor that recorded operations (a node of a graph, such as a loss before "
                "backward()) cannot be deep-copied, as in PyTorch; copy the model and "
                "optimiser and compute it again with the copy, or copy its detach()"
            )
        copied = type(self).__new__(type(self))
        memo[id(self)] = copied
        fresh = type(self)._fresh_when_copied
        for name in slot_names(type(self)):  # every slot (a Parameter's too), as deepcopy's
            if name == "_view_base":  # (the copy's array is its own: a view of nothing)
                continue
            if name == "_hooks":  # the original's hooks are not the copy's, as in torch
                copied._hooks = None
            elif name in fresh:
                setattr(copied, name, fresh[name])
            elif hasattr(self, name):
                setattr(copied, name, copy.deepcopy(getattr(self, name), memo))
        if hasattr(self, "__dict__"):  # a subclass of one's own without slots
            copied.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return copied

    # slots a copy (deepcopy, pickle) starts afresh with, not the original's (Parameter's)
    _fresh_when_copied: ClassVar[dict[str, object]] = {}

    def __getstate__(self) -> tuple[dict | None, dict[str, object]]:
        """What pickle and ``copy.copy`` take, as PyTorch's ``__reduce_ex__`` gives: the
        values and requires_grad, a leaf without ``.grad``. A recorded result's backward
        rules are closures pickle cannot take (a loss sent back from a process pool
        raised "Can't pickle local object"), and a shallow copy's backward reached the
        original's inputs."""
        fresh = {**_LEAF_AFRESH, **type(self)._fresh_when_copied}
        return getattr(self, "__dict__", None), {
            name: fresh[name] if name in fresh else getattr(self, name)
            for name in slot_names(type(self))
            if hasattr(self, name)
        }

    def __setstate__(self, state: tuple[dict | None, dict[str, object]]) -> None:
        values, slots = state
        if values:
            self.__dict__.update(values)
        self._hooks = None  # (a pickle from before register_hook has no such slot)
        for name, value in slots.items():
            setattr(self, name, value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place and return self (PyTorch's spelling). Only a
        leaf may be turned off: a recorded result's gradient would be dropped silently;
        ``detach()`` gives one without the graph."""
        if not requires_grad and self._backward is not None:
            raise ConfigError(
                "requires_grad_(False) on the result of a recorded operation: only a leaf "
                "tensor allows it (as in PyTorch); use t.detach()"
            )
        self.requires_grad = bool(requires_grad)
        return self

    @property
    def is_leaf(self) -> bool:
        """No recorded operation made it (a parameter, an input, a result computed
        without gradients): backward fills its ``.grad`` if it requires grad, as torch's."""
        return self._backward is None

    @property
    def grad_fn(self) -> BackwardNode | None:
        """The recorded operation that made it (None for a leaf), as torch's: the tutorials
        print it and test it against None."""
        return None if self._backward is None else BackwardNode(self.op or "")

    def retain_grad(self) -> Tensor:
        """Keep ∂L/∂self in ``.grad`` after backward, though self is not a leaf."""
        self.retains_grad = True
        return self

    def register_hook(self, hook: Callable) -> HookHandle:
        """``hook(grad)`` each time backward computes ∂L/∂self, as torch's: it returns
        None or the gradient to use instead (of self's shape), which goes on down the
        graph and into ``.grad`` (of a leaf, or of a retained tensor: the last hook's
        result, as torch keeps it). Hooks run in the order given; ``handle.remove()``
        takes one off."""
        if not callable(hook):
            raise ConfigError(f"register_hook: a hook is a function; got {type(hook).__name__}")
        if not self.requires_grad:
            raise ConfigError(
                "register_hook on a tensor that does not require grad, as torch refuses it: "
                "no gradient would reach the hook"
            )
        handle = HookHandle(self)
        self._hooks = {**(self._hooks or {}), handle.id: hook}
        self._hooks_changed()
        return handle

    def _hooks_changed(self) -> None:
        """Called when a hook is added or removed (a Parameter's plans are made again)."""

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        op = f", op={self.op}" if self.op else ""
        return f"Tensor(shape={self.shape}, dtype={self.dtype}{op}{grad})"

    def __str__(self) -> str:
        """The values, as ``print(t)`` of a torch tensor shows them (a large one summarised
        as NumPy summarises it); ``repr`` stays the shape alone."""
        grad = ", requires_grad=True" if self.requires_grad else ""
        op = f", op={self.op}" if self.op else ""
        kind = type(self).__name__  # (a Parameter's too)
        values = np.array2string(self.data, separator=", ", prefix=f"{kind}(")
        return f"{kind}({values}, dtype={self.dtype}{op}{grad})"

    def _refuse_leaving_graph(self, target: str) -> None:
        if self.requires_grad:  # np.dot(W, t), np.clip(t, …): the result would cut the graph
            raise TypeError(
                f"a wxb Tensor that requires grad cannot become {target}: its result "
                "would carry no gradient. Use the tensor's own operations (@ + - * / **, "
                "wxb.ops), or tensor.data (tensor.detach()) for an array without gradients"
            )

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        if self.requires_grad:  # (the check inline: np.asarray(t) is called often)
            self._refuse_leaving_graph("a NumPy array")
        if dtype is not None:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __dlpack__(self, **kwargs: object) -> object:
        """The values' DLPack capsule, as NumPy's: ``torch.tensor(t)`` and
        ``torch.as_tensor(t)`` read a tensor through it (without it torch walked the
        tensor as nested sequences and failed on ``len()`` of a 0-d element). Values read
        backwards (``t[:, ::-1]``, negative strides) go as a copy: torch 2.13 took
        NumPy's capsule of them and aborted the process ("Storage size calculation
        overflowed")."""
        self._refuse_leaving_graph("another library's tensor")
        data = self.data
        if any(stride < 0 for stride in data.strides):
            data = np.ascontiguousarray(data)
        return data.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self.data.__dlpack_device__()

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: object, **kwargs: object):
        """NumPy's hook for ``array * tensor``, ``np.float64(2) * tensor``, ``np.exp(tensor)``.

        Without it NumPy would turn the tensor into an array and return an array: the
        graph cut without a word. Differentiable ufuncs run as wxb ops; comparisons give
        boolean arrays (no gradient to lose); any other runs on the values where no tensor
        requires grad (``np.tanh(t)`` a Tensor, as torch's; ``x += t`` into the array x),
        and is refused where one does (as torch's refuses it).
        """
        if method == "__call__" and not kwargs:
            if ufunc in UFUNC_OPS:
                return UFUNC_OPS[ufunc](*inputs)
            if ufunc in _BOOLEAN_UFUNCS:
                if len(inputs) == 2:
                    return marks(ufunc(*_compared(*inputs)))
                return marks(ufunc(*(x.data if isinstance(x, Tensor) else x for x in inputs)))
        out = kwargs.get("out", ())
        graph = any(isinstance(x, Tensor) and x.requires_grad for x in inputs)
        name = f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
        if any(isinstance(o, Tensor) for o in out):
            raise TypeError(
                f"{name}(..., out=tensor): wxb does not write NumPy's results into a Tensor; "
                "use the tensor's in-place operations (t += x, t.mul_(x)) or t.copy_(result)"
            )
        if not graph:  # no gradient to lose: NumPy's result, a float array as a Tensor
            values = (x.data if isinstance(x, Tensor) else x for x in inputs)
            result = getattr(ufunc, method)(*values, **kwargs)
            if out or type(result) is not np.ndarray or result.dtype.type not in _FLOAT_TYPES:
                return result  # (the array written into, a mask, integers, a scalar)
            return Tensor.of_array(result)
        into = " (x += t into an array: x = x + t keeps it, x a Tensor)" if out else ""
        raise TypeError(
            f"{name} on a wxb Tensor that requires grad would cut the graph{into}: use the "
            "tensor's own operations (+ - * / ** @, .exp(), .tanh(), .sum(), wxb.ops), or "
            f"{name}(tensor.detach()) for values without gradients"
        )

    def __array_function__(self, func: Callable, types: tuple, args: tuple, kwargs: dict):
        """NumPy's hook for ``np.concatenate([a, b])`` and ``np.stack`` on tensors: run
        as wxb ops, so the graph goes on. Any other function runs as NumPy's own, which
        takes the tensor as an array (refused, in one line, for one that requires grad)."""
        op = ARRAY_FUNCTION_OPS.get(func)
        if op is not None:
            return op(*args, **kwargs)
        return func._implementation(*args, **kwargs)

    def __lt__(self, other: object) -> np.ndarray:  # comparisons: masks (IndexArray), no gradient
        return marks(np.less(*_compared(self, other)))

    def __le__(self, other: object) -> np.ndarray:
        return marks(np.less_equal(*_compared(self, other)))

    def __gt__(self, other: object) -> np.ndarray:
        return marks(np.greater(*_compared(self, other)))

    def __ge__(self, other: object) -> np.ndarray:
        return marks(np.greater_equal(*_compared(self, other)))

    def __eq__(self, other: object) -> np.ndarray:  # type: ignore[override]
        """Element-wise, as NumPy and PyTorch compare (``t == 0`` is a mask)."""
        return marks(np.equal(*_compared(self, other)))

    def __ne__(self, other: object) -> np.ndarray:  # type: ignore[override]
        return marks(np.not_equal(*_compared(self, other)))

    __hash__ = object.__hash__  # by identity, as PyTorch's: tensors as dict keys

    def __bool__(self) -> bool:
        """The truth of a one-element tensor, as PyTorch's; several elements are ambiguous."""
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous: use "
                "(t != 0).any() or .all()"
            )
        return bool(self.data.reshape(-1)[0])

    # Arithmetic operators (@ + - * / ** .T .sum() .mean(), indexing, reshape) are
    # attached by wxb.ops, which builds on this module: a module knows only those beneath it.

    # -- the reverse walk -------------------------------------------------------------
    def backward(
        self,
        grad: object = None,
        retain_graph: bool | None = False,
        create_graph: bool = False,
        inputs: object = None,
        *,
        gradient: object = None,
    ) -> None:
        """Fill ``.grad`` of every leaf (and retained) tensor that this one depends on.

        Leaf gradients accumulate, as in PyTorch: call ``zero_grad()`` between steps.
        Afterwards the graph counts as freed, as PyTorch frees it: a second backward
        through it raises, unless the first was ``backward(retain_graph=True)``.
        ``gradient=`` is torch's name for ``grad`` (``Q.backward(gradient=g)``).
        """
        if _REPLACED[0] and len(self._versions) > 1:  # a view from before a change
            retake_views((self,), "backward()", joins=True)
        if gradient is not None:
            if grad is not None:
                raise TypeError("backward(): give the gradient once (grad or gradient=)")
            grad = gradient
        if create_graph:  # torch's options, which a port must not lose without a word
            raise ConfigError(
                "backward(create_graph=True) is PyTorch's option, which wxb does not have: "
                "its backward records no graph of its own (no second derivatives)"
            )
        if inputs is not None:
            raise ConfigError(
                "backward(inputs=…) is PyTorch's option, which wxb does not have: its "
                "backward fills the .grad of every leaf that requires grad (set "
                "requires_grad=False on the others)"
            )
        retain_graph = bool(retain_graph)  # torch's None: not kept, without create_graph
        if not self.requires_grad:
            raise ShapeError(
                "backward() on a tensor that does not require grad: no parameter "
                "(or input with requires_grad=True) went into it"
            )
        if grad is None:
            if self.data.size != 1:
                raise ShapeError(
                    f"backward() without a gradient needs a scalar loss; got shape {self.shape}"
                )
            seed = xp.ones_like(self.data)
        else:
            # checked as an operand is: None, text or complex values would pass unseen
            given = grad.data if isinstance(grad, Tensor) else grad
            seed = float_array(given, self.dtype, "backward(grad)")
            if seed.shape != self.shape:
                raise ShapeError(
                    f"backward(grad): grad has shape {seed.shape}, tensor has {self.shape}"
                )
        order = topological_order(self)
        # A read of the weights, as a forward's: another thread's step waits for the whole
        # walk (else the rules below a layer took ∂L/∂h through its new W, those above
        # had the old: gradients of no weights); one under way is waited for, and then
        # the versions' check refuses, as after a step in this thread
        with WEIGHTS.reading(BackwardRead(order)):
            self._check_and_walk(order, seed, grad is not None, retain_graph)

    def _check_and_walk(
        self, order: list[Tensor], seed: np.ndarray, caller_seed: bool, retain_graph: bool
    ) -> None:
        """``backward()``'s checks and walk over ``order`` from ``seed`` (its weights read)."""
        # autograd.grad runs only the nodes toward its inputs, and frees only those, as
        # torch's: another part of the graph (the generator's, below a discriminator's
        # loss) is walked later by another backward
        walked = order if _mode.grad_inputs is None else _toward(order, _mode.grad_inputs)
        # Through a freed part, only freed rules run (they ran before and have no effect
        # but an error of their own, such as the planned stack's), and the first
        # gradient about to be stored raises instead: nothing is counted twice. Freed is
        # what saved values for its backward, as torch frees those: a graph of nodes that
        # saved none (x + 1, sums, reshapes) is walked again, its gradients added
        freed = any(node._freed and _saves_values(node) for node in walked)
        _check_versions(walked)  # (only the rules that run read what they saved, as torch's)
        if _REPLACED[0]:
            _check_views(order, self)
        previous, _mode.retain_graph = _mode.retain_graph, retain_graph
        was_freed, _mode.walking_freed = _mode.walking_freed, freed
        outer = _mode.slots, _mode.slot_homes
        claims = _mode.slots = {}  # rules may write new gradients into optimiser buffers
        _mode.slot_homes = set()
        try:
            self._walk(walked, seed, caller_seed=caller_seed, freed=freed)
        finally:
            _mode.retain_graph, _mode.walking_freed = previous, was_freed
            _mode.slots, _mode.slot_homes = outer
            if claims:  # claimed and not reached (a tied weight's sum, an error on the way)
                with GRAD_LOCK:
                    WRITING.difference_update(claims)
        if freed:
            raise _second_backward_error()
        if not retain_graph:
            for node in walked:
                if node._backward is not None:
                    node._freed = True

    def _walk(self, order: list[Tensor], seed: np.ndarray, caller_seed: bool, freed: bool) -> None:
        grads: dict[int, np.ndarray] = {id(self): seed}
        # How often each gradient array was handed out: a leaf may keep an array as
        # its .grad without a copy only if nothing else holds it (or a view of it).
        handed: dict[int, int] = {id(seed): 2}  # the seed may be the caller's own array
        slots = _mode.slots
        for node in reversed(order):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._backward is None:  # a leaf
                if freed:
                    raise _second_backward_error()
                if g.dtype != node.data.dtype:  # from a graph of another dtype: the leaf's own
                    g = g.astype(node.data.dtype)
                    handed[id(g)] = 1
                if node._hooks and not freed:  # before it is kept, as torch's (gradients
                    g = _run_hooks(node, g)  # apart too); not again on a freed graph
                if _mode.leaf_grads is not None:  # gradients_apart(): .grad untouched
                    keep_apart(node, g)
                    continue
                with GRAD_LOCK:
                    if slots and slots.get(id(node)) is g:  # its rule wrote the buffer
                        del slots[id(node)]
                        WRITING.discard(id(node))
                        node.grad = g if node.grad is None else accumulate_grad(node.grad, g)
                    elif node.grad is not None:
                        node.grad = accumulate_grad(node.grad, g)
                    elif (
                        g.base is None
                        and handed.get(id(g)) == 1
                        and g.flags.writeable
                        and not _mode.retain_graph  # a kept graph hands the array out again
                    ):
                        node.grad = g
                        handed[id(g)] = 2
                    else:
                        node.grad = g.copy()
                continue
            if freed and not node._freed:
                continue
            if node._hooks and not freed:  # what it keeps and hands down is what its
                g = _run_hooks(node, g)  # hooks give (a freed graph raises: not run again)
            if node.retains_grad:  # accumulates across backward calls, as a leaf's does
                if freed:
                    raise _second_backward_error()
                # in the tensor's own dtype, as a leaf's and PyTorch's (a float32 value
                # read by a float64 one gets its float64 gradient here)
                kept = g if g.dtype == node.data.dtype else g.astype(node.data.dtype)
                if node.grad is not None:  # a new array, as PyTorch's retained grad
                    node.grad = np.asarray(node.grad + kept)
                elif kept is not g:  # (the cast made an array of its own)
                    node.grad = kept
                else:  # its own array: g may be a loss's buffer, the caller's seed, or
                    node.grad = g.copy()  # shared with another node's gradient
            parent_grads = node._backward(g)
            if node._recorded is not None:  # an input that asked for a gradient only later
                parent_grads = [
                    pg if was else None
                    for pg, was in zip(parent_grads, node._recorded, strict=True)
                ]
            for parent, pg in zip(node.inputs, parent_grads, strict=True):
                if pg is None or not parent.requires_grad:
                    continue
                if not isinstance(pg, np.ndarray):  # a NumPy scalar from a 0-d product
                    pg = xp.asarray(pg, dtype=parent.dtype)
                key = id(parent)
                if key in grads:
                    pg = np.asarray(grads[key] + pg)
                grads[key] = pg
                handed[id(pg)] = handed.get(id(pg), 0) + 1


_DATA = DATA_SLOT = Tensor.__dict__["data"]  # the slot itself (Parameter's property's too)
# A plain tensor's ``t.data = a`` writes the slot unchecked (a masked array's hidden values
# taken, as torch.as_tensor takes them): a property here cost every read of t.data 54 ns
# against 11, +3% on a tiny step and +12–30% on a small element-wise op. A Parameter's
# ``.data`` (a property already) refuses it.


class ValuesWatched(Tensor):
    """The batch of a sample run (``watch_values``), and the base of ``Watched``: code
    outside wxb taking its values as Python's (``.item()``, ``float(t)``, ``.tolist()``,
    a comparison, ``bool(t)``) is noted, as a forward may branch on them (``if
    h.max().item() > t``) where no batch it is tried on goes. Its array read (``x.data``,
    ``x.numpy()``, ``np.asarray(x)``) is noted apart (``values_watched.looked``): a
    forward may only log it, or branch on it."""

    __slots__ = ()

    @property  # type: ignore[override]
    def data(self) -> np.ndarray:
        _note_looked(sys._getframe(1))
        return _DATA.__get__(self)

    @data.setter
    def data(self, value: np.ndarray) -> None:
        _note_looked(sys._getframe(1))
        _DATA.__set__(self, value)

    def numpy(self) -> np.ndarray:
        _note_looked(sys._getframe(1))
        return super().numpy()

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        _note_looked(sys._getframe(1))
        return super().__array__(dtype, copy)


# Tensor's methods that hand code its values as Python's or as masks: taken through
# ValuesWatched, they note a read first (those ops.py attaches too, looked up per call)
_VALUE_READS = (
    "item",
    "tolist",
    "__float__",
    "__int__",
    "__index__",
    "__bool__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__eq__",
    "__ne__",
    "lt",
    "le",
    "gt",
    "ge",
    "eq",
    "ne",
    "any",
    "all",
    "bool",
    "argmax",
    "argmin",
    "nonzero",
    "isnan",
)


def _noting(name: str) -> Callable[..., Any]:
    def method(self: Tensor, *args: Any, **kwargs: Any) -> Any:
        _note_read(sys._getframe(1), name, self)
        return getattr(Tensor, name)(self, *args, **kwargs)

    method.__name__ = name
    return method


for _name in _VALUE_READS:
    setattr(ValuesWatched, _name, _noting(_name))
ValuesWatched.__hash__ = object.__hash__  # (by identity, as Tensor's)


class Watched(ValuesWatched):
    """A result made during a sample run (``values_watched``): code outside wxb reading
    or replacing its values (``h.data``, ``h.numpy()``, ``np.asarray(h)``, and those of
    ``ValuesWatched``) is noted, as the forward then left the graph (a NumPy change
    through ``.data`` bumps no version)."""

    __slots__ = ()

    @property  # type: ignore[override]
    def data(self) -> np.ndarray:
        _note_read(sys._getframe(1), "data", self)
        return _DATA.__get__(self)

    @data.setter
    def data(self, value: np.ndarray) -> None:
        _note_read(sys._getframe(1), "data", self)
        _DATA.__set__(self, value)

    def numpy(self) -> np.ndarray:
        _note_read(sys._getframe(1), "numpy()", self)
        return super().numpy()

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        _note_read(sys._getframe(1), "np.asarray()", self)
        return super().__array__(dtype, copy)

    def detach(self) -> Tensor:
        out = super().detach()
        _watched(out)  # (the same array: h.detach().numpy() reads it too)
        return out


# how many sample runs watch now, in any thread: from_op asks its own thread only then
_WATCHING = [0]
_WATCHING_LOCK = threading.Lock()
PLAIN_TENSORS = (Tensor, ValuesWatched, Watched)  # in-place operations are recorded on these


class _Watch(threading.local):
    made: list[Tensor] | None = None  # this thread's watched results, while it watches
    read = False  # whether code outside wxb read or replaced one's values
    # the first such read: (what it called, "t.item()", and the clock's count then)
    first: tuple[str, int] | None = None
    clock: Callable[[], int] | None = None  # values_watched's
    looked = False  # whether code outside wxb read a batch's array (ValuesWatched)
    # the first read of a result's array (.data, .numpy(), np.asarray), as ``first``: a
    # NumPy write through it leaves the graph, where a Python value (.item()) cannot
    arrayed: tuple[str, int] | None = None


_watch = _Watch()


def _watched(t: Tensor, kind: type[Tensor] = Watched) -> None:
    made = _watch.made
    if made is not None and type(t) is Tensor:
        t.__class__ = kind
        made.append(t)


def watch_values(t: Tensor) -> None:
    """Inside ``values_watched``, ``t`` (a batch) notes code taking its values as
    Python's (``ValuesWatched``); reading its array (``t.data``) stays free."""
    _watched(t, ValuesWatched)


def _outside(frame: types.FrameType | None) -> bool:
    """Whether ``frame`` is code outside wxb, while this thread watches."""
    name = frame.f_globals.get("__name__", "") if frame is not None else ""
    return name != "wxb" and not name.startswith("wxb.") and _watch.made is not None


def _note_looked(frame: types.FrameType | None) -> None:
    if _outside(frame):
        _watch.looked = True


def _note_read(frame: types.FrameType | None, what: str = "data", t: object = None) -> None:
    if _outside(frame):
        clock = _watch.clock
        seen = (_read_text(what), clock() if clock is not None else 0)
        if not _watch.read:  # the first read names the run's refusal
            _watch.first = seen
        if _watch.arrayed is None and what in _ARRAY_READS:
            _watch.arrayed = seen
        _watch.read = True


_ARRAY_READS = ("data", "numpy()", "np.asarray()")


_PYTHON_CASTS = {"__float__": "float", "__int__": "int", "__index__": "index", "__bool__": "bool"}
_COMPARED = {
    "__lt__": "<",
    "__le__": "<=",
    "__gt__": ">",
    "__ge__": ">=",
    "__eq__": "==",
    "__ne__": "!=",
}


def _read_text(what: str) -> str:
    """How code read the values, as it wrote it: ``.item()``, ``float(…)``, ``.data``."""
    if what in _PYTHON_CASTS:
        return f"{_PYTHON_CASTS[what]}(…)"
    if what in _COMPARED:
        return f"a comparison ({_COMPARED[what]})"
    if what == "data" or what.endswith(")"):
        return what if what.startswith("np.") else f".{what}"
    return f".{what}()"


class values_watched:  # (lower case: a context manager, as no_grad)
    """Inside the block, in this thread, the results operations make note whether code
    outside wxb reads their values; ``read`` says so after it. They are plain tensors
    again after the block (a block inside one: the outer one's watch goes on after it)."""

    def __init__(self, clock: Callable[[], int] | None = None) -> None:
        self.read = False
        # the first read: how (``.item()``) and ``clock()`` then (the layers called so far)
        self.first: tuple[str, int] | None = None
        self._clock = clock
        self.looked = False  # code outside wxb read a batch's array (``watch_values``)
        self.arrayed: tuple[str, int] | None = None  # the first read of a result's array
        self._outer: tuple[Any, ...] = (None, False, None, None, False, None)

    def __enter__(self) -> values_watched:
        self._outer = (
            _watch.made, _watch.read, _watch.first, _watch.clock, _watch.looked, _watch.arrayed
        )  # fmt: skip
        _watch.made, _watch.read, _watch.first, _watch.looked = [], False, None, False
        _watch.arrayed = None
        _watch.clock = self._clock or _watch.clock
        with _WATCHING_LOCK:
            _WATCHING[0] += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with _WATCHING_LOCK:
            _WATCHING[0] -= 1
        made, self.read, self.first = _watch.made or [], _watch.read, _watch.first
        self.looked, self.arrayed = _watch.looked, _watch.arrayed
        outer, read, first, clock, looked, arrayed = self._outer
        if outer is None:
            for t in made:
                t.__class__ = Tensor
        else:  # still the outer block's results (a read in here counts there too)
            outer.extend(made)
        _watch.made, _watch.read = outer, read or self.read
        _watch.first, _watch.clock = first or self.first, clock
        _watch.looked, _watch.arrayed = looked or self.looked, arrayed or self.arrayed


class HookHandle:
    """What ``Tensor.register_hook`` returns: ``remove()`` takes the hook off (also at
    the end of a ``with`` block), as torch's."""

    _ids = itertools.count()

    def __init__(self, tensor: Tensor) -> None:
        self.id = next(HookHandle._ids)
        self._tensor = weakref.ref(tensor)

    def remove(self) -> None:
        tensor = self._tensor()
        if tensor is not None and tensor._hooks and self.id in tensor._hooks:
            hooks = {key: hook for key, hook in tensor._hooks.items() if key != self.id}
            tensor._hooks = hooks or None
            tensor._hooks_changed()

    def __enter__(self) -> HookHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()


def _run_hooks(node: Tensor, g: np.ndarray) -> np.ndarray:
    """∂L/∂node after its ``register_hook`` hooks, each given the last one's result: on
    an array of its own (g may be shared with other nodes, or a loss's buffer), so a
    hook that changes its argument in place changes this gradient alone, as its
    returned one does."""
    given = Tensor.of_array(np.array(g, dtype=node.data.dtype))
    with no_grad():  # (a hook's operations are not recorded, as in torch's backward)
        for hook in list(node._hooks.values()):
            result = hook(given)
            if result is None:
                continue
            array = result.data if isinstance(result, Tensor) else result
            array = float_array(array, node.data.dtype, "a register_hook hook's gradient")
            if array.shape != node.shape:
                raise ShapeError(
                    f"a register_hook hook returned a gradient of shape {array.shape} for a "
                    f"tensor of shape {node.shape}"
                )
            given = Tensor.of_array(array)
    return given.data


def _compared(a: object, b: object) -> tuple[object, object]:
    """The two sides of a comparison as PyTorch compares them: a 0-d float side (a 0-d
    tensor or array, a NumPy float scalar) beside a dimensioned float array of the other
    dtype takes that array's dtype, as in arithmetic (float32 x == np.float64(0.1) holds
    where x − 0.1 == 0; NumPy would compare in float64). Python numbers already do.
    NumPy integers beside floats take the floats' dtype, as torch's categories rank them
    (and as t − n casts them): NumPy compares float32 with int64 in float64, where
    float32 x == 16777217 held but x == np.int64(16777217) did not. A list or tuple is
    read as an operand is, in the tensor's dtype (t == [0.1] holds where t − [0.1] == 0)."""
    a = a.data if isinstance(a, Tensor) else a
    b = b.data if isinstance(b, Tensor) else b
    if type(a) is not np.ndarray and isinstance(a, np.ndarray):  # (masked: refused)
        refuse_masked(a, "a comparison with a tensor")
    if type(b) is not np.ndarray and isinstance(b, np.ndarray):
        refuse_masked(b, "a comparison with a tensor")
    if isinstance(a, (list, tuple)):
        a = _listed(a, b)
    if isinstance(b, (list, tuple)):
        b = _listed(b, a)
    if isinstance(a, (np.ndarray, np.generic)) and isinstance(b, (np.ndarray, np.generic)):
        kind_a, kind_b = a.dtype.kind, b.dtype.kind
        if a.dtype != b.dtype and kind_a == "f" == kind_b:
            if a.ndim == 0 < b.ndim:
                return a.astype(b.dtype), b
            if b.ndim == 0 < a.ndim:
                return a, b.astype(a.dtype)
        elif kind_a == "f" and kind_b in "iu":
            return a, b.astype(a.dtype)
        elif kind_b == "f" and kind_a in "iu":
            return a.astype(b.dtype), b
    return a, b


def _listed(values: list | tuple, other: object) -> np.ndarray:
    """A list compared with a float array, as an operand of it: NumPy would read its
    Python floats as float64, and float32 x == [0.1] was False where x − [0.1] is 0."""
    array = np.asarray(values)
    if array.dtype.kind == "f" and isinstance(other, np.ndarray) and other.dtype.kind == "f":
        return array.astype(other.dtype)
    return array


def _check_versions(order: list[Tensor]) -> None:
    """PyTorch's check: no tensor a recorded operation read was updated in place since."""
    for node in order:
        saved = node._saved_versions
        if saved is None:
            continue
        if not node.requires_grad:  # set False on a recorded result: its inputs got none
            raise ConfigError(
                f"backward(): requires_grad was set to False on the result of a recorded "
                f"{node.op!r}, which only a leaf tensor allows (as in PyTorch); use "
                "t.detach() for a tensor that is not to carry gradients"
            )
        if node._output_version is not None and node._versions[0] != node._output_version:
            raise TrainingError(
                f"backward(): the result of the recorded {node.op!r}, which its backward "
                "reads, was modified in place since the forward; change a copy instead"
            )
        for parent, version in zip(node.inputs, saved, strict=True):
            if version is not None and parent._versions[0] != version:
                what = f"a {parent.shape} leaf tensor" if parent.op is None else "a tensor"
                raise TrainingError(
                    f"backward(): {what} that the recorded {node.op!r} needs was modified in "
                    "place since the forward (by optimizer.step(), load_state_dict() or an "
                    "in-place operation such as +=); run the forward again after the change"
                )


# A copy's slots (pickle, copy.copy) as a leaf's: no gradient, no record of an operation
_LEAF_AFRESH: dict[str, object] = {
    "grad": None,
    "retains_grad": False,
    "op": None,
    "inputs": (),
    "_backward": None,
    "_freed": False,
    "_keeps_values": False,
    "_saved_versions": None,
    "_seen_versions": None,
    "_recorded": None,
    "_output_version": None,
    "_replaced": None,
    "_view_base": None,
    "_hooks": None,  # (as torch's copy: the hooks stay with the original)
}


def slot_names(kind: type) -> list[str]:
    """The value slots of ``kind`` and its bases (``__slots__`` may be one string)."""
    names = []
    for base in kind.__mro__:
        slots = base.__dict__.get("__slots__", ())
        names += [slots] if isinstance(slots, str) else list(slots)
    return [n for n in names if n not in ("__dict__", "__weakref__")]


def accumulate_grad(grad: object, g: np.ndarray) -> np.ndarray:
    """grad + g, into ``grad`` where it is a writable array of g's shape and dtype, as
    PyTorch's backward accumulates (in place, whoever else holds it): an array held as
    ``p.grad`` (or a view the optimiser put there) sees the sum."""
    if (
        isinstance(grad, np.ndarray)
        and grad.shape == g.shape
        and grad.dtype == g.dtype
        and grad.flags.writeable
    ):
        grad += g
        return grad
    if np.shape(grad) != g.shape:  # NumPy would broadcast a .grad of an older shape
        raise ShapeError(
            f"a gradient of shape {g.shape} cannot be added to the .grad of shape "
            f"{np.shape(grad)} already there (the parameter was given another shape since "
            "it was computed?); call zero_grad() first"
        )
    return np.asarray(grad + g)  # 0-d arrays add up to a scalar


def _records_taking(t: Tensor) -> list[Tensor]:
    """The recorded operations that hold ``t`` among their inputs (the nodes computed from
    it): the graph keeps no links forward, so the holders are asked (only detach_ does)."""
    tuples = [holder for holder in gc.get_referrers(t) if type(holder) is tuple]
    if not tuples:
        return []
    ids = {id(holder) for holder in tuples}
    return [
        node
        for node in gc.get_referrers(*tuples)
        if isinstance(node, Tensor) and id(node.inputs) in ids
    ]


def keep_values(node: Tensor) -> Tensor:
    """``node`` (a recorded result) marked as one whose backward holds values of its own
    that torch saves as tensors (max's indices, an index array): a second backward
    without retain_graph refuses it, as torch's."""
    node._keeps_values = node._backward is not None
    return node


def _saves_values(node: Tensor) -> bool:
    """Whether a recorded operation's backward reads values saved at its forward (an
    input's, its own result's, or values it keeps), which torch's first backward frees."""
    saved = node._saved_versions
    if saved is None:  # not recorded
        return False
    if node._output_version is not None or node._keeps_values:
        return True
    for version in saved:
        if version is not None:
            return True
    return False


def _second_backward_error() -> TrainingError:
    return TrainingError(
        "backward() through this graph a second time: what its operations saved for the "
        "backward was freed by the first one (as PyTorch frees it). Pass "
        "retain_graph=True to the first backward() to go through the graph again, or "
        "run the forward again"
    )


def topological_order(root: Tensor) -> list[Tensor]:
    """Tensors of the graph ending at root, each after all of its inputs: a depth-first
    walk that takes each node's inputs last to first."""
    order: list[Tensor] = []
    seen = {id(root)}
    if _REPLACED[0]:  # (only once an in-place operation was recorded: it costs a pass)
        _take_records(root)
    # iterative (deep graphs must not hit Python's recursion limit): each entry is a node
    # and where its walk over its inputs stands
    stack = [(root, reversed(root.inputs))]
    append, push, pop, mark = order.append, stack.append, stack.pop, seen.add
    while stack:
        node, parents = stack[-1]
        for parent in parents:
            key = id(parent)
            if key not in seen:
                mark(key)
                if _REPLACED[0]:
                    _take_records(parent)
                push((parent, reversed(parent.inputs)))
                break
        else:  # every input done: the node itself
            pop()
            append(node)
    return order


@contextmanager
def walking_toward(inputs: Sequence[Tensor]) -> Iterator[None]:
    """Inside the block, in this thread, a backward walks only toward ``inputs``
    (``autograd.grad``'s)."""
    outer, _mode.grad_inputs = _mode.grad_inputs, frozenset(id(t) for t in inputs)
    try:
        yield
    finally:
        _mode.grad_inputs = outer


def _toward(order: list[Tensor], inputs: frozenset[int]) -> list[Tensor]:
    """The nodes of ``order`` with a path to one of ``inputs``, as torch.autograd.grad
    runs only those: another leaf's hooks, or a retained tensor's .grad beneath an
    input, are not reached (they ran, and the hooks ran again at the next backward)."""
    leads: set[int] = set()
    for node in order:  # each node after its inputs
        if id(node) in inputs or any(id(t) in leads for t in node.inputs):
            leads.add(id(node))
    return [node for node in order if id(node) in leads]


_REPLACED = [False]  # whether any in-place operation was recorded in this process
# what a tensor's record is made of: handed over whole by record_in_place
_RECORD_FIELDS = (
    "op", "inputs", "_backward", "_freed", "_keeps_values", "_saved_versions", "_seen_versions"
)  # fmt: skip


def record_in_place(target: Tensor, before: Tensor, result: Tensor) -> None:
    """``target`` changed in place to ``result``'s values, as torch records an in-place
    operation on a computed tensor: ``before`` (a new tensor holding the values before,
    a copy, and a version counter of its own) takes the record ``target`` had, ``result``
    was computed from ``before``, and ``target`` takes ``result``'s record. Nodes recorded
    earlier still reach the old record (``_take_records``), as torch's do."""
    _REPLACED[0] = True
    # the version from which its values are this record's: a view without a record (of
    # a constant, or taken under no_grad) taken before it would lose its gradient
    versions = target._versions
    if len(versions) == 1:
        versions.append(versions[0] + 1)
    else:
        versions[1] = versions[0] + 1
    for name in _RECORD_FIELDS:
        setattr(before, name, getattr(target, name))
    before._recorded, before.requires_grad = target._recorded, target.requires_grad
    # a record that reads its own result (e^A, σ(Z)) read the array now overwritten
    before._output_version = None if target._output_version is None else -1
    np.copyto(target.data, result.data, casting="same_kind")
    target._versions[0] += 1  # (shared with its views: those reading the old values refuse)
    for name in _RECORD_FIELDS:
        setattr(target, name, getattr(result, name))
    if any(p is target for p in target.inputs):  # t += t, t.copy_(t): its values before
        _read_before(target, before)
    target._recorded, target.requires_grad = result._recorded, result.requires_grad
    target._output_version = None if result._output_version is None else target._versions[0]
    target._replaced = [*(target._replaced or ()), (target._versions[0], before)]


def is_view_of(node: Tensor, parent: Tensor) -> bool:
    """Whether ``node``'s array views its input ``parent``'s (one version counter). A
    tensor changed by a recorded in-place operation is a whole one: an input sharing
    its counter (t[0] = t[1] reads the view t[1]) is a view of it, not the reverse."""
    return node._versions is parent._versions and node._replaced is None


def _read_before(target: Tensor, before: Tensor) -> None:
    """``target``'s new record, which took ``target`` itself as an operand, takes
    ``before`` there: the operation read the values before the change (refused where
    its backward reads them, as the array it kept is overwritten, as torch refuses)."""
    saved = list(target._saved_versions or (None,) * len(target.inputs))
    seen = list(target._seen_versions or ())
    inputs = list(target.inputs)
    for i, parent in enumerate(inputs):
        if parent is target:
            inputs[i], seen[i] = before, before._versions[0]
            if saved[i] is not None:
                saved[i] = -1
    target.inputs, target._saved_versions = tuple(inputs), tuple(saved)
    target._seen_versions = tuple(seen)


def _take_records(node: Tensor) -> None:
    """``node``'s inputs as they were when it was recorded: an input changed since by a
    recorded in-place operation is the tensor holding its record of then. Where the
    node reads that input (its array now overwritten) or views it (its values changed
    with it, which its record does not say), the backward is refused, as the version
    check refuses a change under no_grad."""
    inputs = node.inputs
    for parent in inputs:
        if parent._replaced is not None:
            break
    else:
        return
    if node._seen_versions is None:  # (not recorded by from_op: nothing to tell)
        return
    taken, saved = list(inputs), list(node._saved_versions or (None,) * len(inputs))
    for i, (parent, seen) in enumerate(zip(inputs, node._seen_versions, strict=True)):
        for after, before in parent._replaced or ():
            if seen < after:
                taken[i] = before
                if saved[i] is not None:
                    saved[i] = -1  # (its array was overwritten: refused)
                if is_view_of(node, parent):  # used since, its values are not its
                    _stale_view(node, after)  # record's (refused)
                break
    node.inputs, node._saved_versions = tuple(taken), tuple(saved)


# views taken of a tensor before a recorded in-place operation on it: the version from
# which a use of one is refused (torch takes such a view again through the operation);
# by id, the entry going with the view (a tensor's == is element-wise)
_STALE_VIEWS: dict[int, tuple[weakref.ref, int]] = {}


def _stale_view(view: Tensor, since: int) -> None:
    key = id(view)
    _STALE_VIEWS[key] = (weakref.ref(view, lambda _: _STALE_VIEWS.pop(key, None)), since)


def _stale_since(view: Tensor) -> int | None:
    entry = _STALE_VIEWS.get(id(view))
    return entry[1] if entry is not None and entry[0]() is view else None


def view_positions(view: np.ndarray, base: np.ndarray) -> np.ndarray | None:
    """Where each element of ``view`` (an array viewing ``base``'s memory) sits in base,
    as flat indices of base's C order: the view as the base's places, whichever views
    made it (torch's as_strided). None where view reaches outside base's elements."""
    item = base.itemsize
    if view.dtype != base.dtype or not base.size:
        return None
    low, high = byte_bounds(base)
    view_low, view_high = byte_bounds(view) if view.size else (low, low)
    if view_low < low or view_high > high or (view_low - low) % item:
        return None
    if any(s % item for s in (*base.strides, *view.strides)):
        return None
    # each of base's places holds its flat index; read through the view's strides
    probe = np.full((high - low) // item, -1, np.dtype(f"i{item}"))
    own = base.__array_interface__["data"][0] - low
    laid = np.lib.stride_tricks.as_strided(probe[own // item :], base.shape, base.strides)
    laid[...] = np.arange(base.size, dtype=probe.dtype).reshape(base.shape)
    if np.count_nonzero(probe >= 0) != base.size:  # (base overlaps itself: no places)
        return None
    start = view.__array_interface__["data"][0] - low if view.size else 0
    seen = np.lib.stride_tricks.as_strided(probe[start // item :], view.shape, view.strides)
    places = seen.astype(np.intp)
    return None if (places < 0).any() else places


def view_record(base: Tensor, places: np.ndarray, data: np.ndarray) -> Tensor:
    """A view of ``base``'s values at ``places`` (``view_positions``), recorded: the
    record a view takes again after an in-place change of its tensor, as torch's."""
    shape, dtype = base.shape, base.dtype
    repeated = places.size and np.unique(places).size < places.size  # (an expand's view)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        grad = np.zeros(shape, dtype)  # ∂L/∂base: G at the view's places, 0 elsewhere
        if repeated:
            np.add.at(grad.reshape(-1), places.reshape(-1), np.reshape(g, -1))
        else:
            np.put(grad, places, g)
        return (grad,)

    return Tensor.from_op(data, "view", (base,), backward, reads_inputs=False)


def hold_record(target: Tensor) -> Tensor:
    """A new tensor holding ``target``'s values (a copy, with a version counter of its
    own) and its record: what a node recorded before a change of target reaches."""
    held = Tensor.of_array(target.data.copy())
    for name in _RECORD_FIELDS:
        setattr(held, name, getattr(target, name))
    held._recorded, held.requires_grad = target._recorded, target.requires_grad
    # a record that reads its own result read the array now changed
    held._output_version = None if target._output_version is None else -1
    return held


def take_record(target: Tensor, source: Tensor, held: Tensor | None = None) -> None:
    """``target`` takes ``source``'s record; nodes recorded before reach its old one,
    ``held`` (``hold_record``'s), through ``_take_records``."""
    _REPLACED[0] = True
    held = hold_record(target) if held is None else held
    for name in _RECORD_FIELDS:
        setattr(target, name, getattr(source, name))
    target._recorded, target.requires_grad = source._recorded, source.requires_grad
    target._output_version = None
    target._seen_versions = (target._versions[0],)  # (taken now, also without a record)
    target._replaced = [*(target._replaced or ()), (target._versions[0], held)]
    _STALE_VIEWS.pop(id(target), None)


def view_base(view: Tensor) -> tuple[Tensor, bool, bool] | None:
    """For a tensor made by a view op (t[i], t.T, t.reshape, …): the tensor whose array
    it views, not a view itself; whether it, or a view it was taken of, was taken under
    no_grad; whether one of them is one of several views an op handed back (split,
    chunk, unbind), as torch passes these on. None otherwise. (Each view keeps only
    what it was taken of: the view ops pay for no more.)"""
    found = getattr(view, "_view_base", None)
    if found is None:
        return None
    base, quiet, several = (found, False, False) if type(found) is not tuple else found
    above = getattr(base, "_view_base", None)
    while above is not None:
        if type(above) is not tuple:  # (taken with the graph recorded: the view op's own)
            base, above = above, getattr(above, "_view_base", None)
            continue
        base, quiet, several = above[0], quiet or above[1], several or above[2]
        above = getattr(base, "_view_base", None)
    return base, quiet, several


def _stale(view: Tensor) -> tuple[Tensor, bool, bool] | None:
    """``view``'s base where an in-place operation recorded on its memory since the
    view's record was made (its values are the change's, its record from before)."""
    versions = view._versions
    if len(versions) < 2:
        return None
    seen = view._seen_versions
    if seen and seen[0] >= versions[1]:
        return None
    return view_base(view)


def retake_views(inputs: tuple[Tensor, ...], op: str, joins: bool = False) -> None:
    """Each view among ``inputs`` taken before an in-place operation recorded on its
    memory takes its record again, as a view of its base now, as torch's view is taken
    again through the change. A view taken under no_grad is refused, as torch refuses.
    ``joins``: a view of a constant that the change joined to the graph may start to
    require grad here, which a caller reading requires_grad after this takes (an
    in-place operation's operand, backward's root). Refused elsewhere: an op (from_op)
    read it before, so its rule would give such a view no gradient (torch takes it
    again), and an in-place operation's target (torch refuses it, as a leaf)."""
    for t in inputs:
        found = _stale(t)
        if found is None:
            continue
        base, quiet, several = found
        if quiet or several:
            how = "taken under no_grad" if quiet else "that split, chunk or unbind gave"
            raise TrainingError(
                f"{op!r} on a view {how}, of a tensor that an in-place operation recorded "
                "in the graph since: PyTorch refuses it too (which values it stands for is "
                "ambiguous); take the view after the change"
            )
        if base.requires_grad and not t.requires_grad and not joins:
            raise TrainingError(
                f"{op!r} on a view of a tensor that an in-place operation joined to the "
                "graph since the view was taken (as z = zeros(…); v = z[0]; z += x): take "
                "the view after the change"
            )
        places = view_positions(t.data, base.data)
        if places is None:  # (base.data replaced since the view was taken)
            raise TrainingError(
                f"{op!r} on a view whose tensor was changed in place since and whose array "
                "is no longer inside that tensor's: take the view again"
            )
        take_record(t, view_record(base, places, t.data))


def _check_views(order: list[Tensor], root: Tensor) -> None:
    """A view from before a recorded in-place change of its tensor, used after it; a
    view of such a view (y.T.T, y[0][1:]) sees the change as well, and is one too."""
    since: dict[int, int] = {}
    for node in order:  # (inputs first)
        mark = _stale_since(node)
        for parent in node.inputs:
            of_parent = since.get(id(parent))
            if of_parent is not None and is_view_of(node, parent):
                mark = of_parent if mark is None else min(mark, of_parent)
        if mark is not None:
            since[id(node)] = mark
    stale = [root] if id(root) in since else []
    for node in order:
        for view, seen in zip(node.inputs, node._seen_versions or (), strict=False):
            mark = since.get(id(view))
            if mark is not None and seen >= mark:
                stale.append(view)
    if stale:
        raise TrainingError(
            f"backward(): a view ({stale[0].op!r}) of a tensor that an in-place operation "
            "changed since the view was taken is used after the change; wxb does not take "
            "it again through the change, as PyTorch does: take the view after the change"
        )


@dataclass
class GraphNode:
    """One operation of a recorded graph, for inspection and drawing."""

    id: int
    op: str
    shape: tuple[int, ...]
    inputs: list[int] = field(default_factory=list)
    name: str | None = None


class BackwardNode(NamedTuple):
    """What ``t.grad_fn`` gives: the recorded operation, by the name ``wxb.graph`` shows."""

    op: str

    def name(self) -> str:
        return f"{self.op} backward"

    def __repr__(self) -> str:
        return f"<{self.name()}>"


def graph(root: Tensor) -> list[GraphNode]:
    """The recorded graph that ends at ``root``: nodes (ops or leaves) with shapes and edges.

    Leaves have op ``"input"`` or ``"parameter"``; edges are the ``inputs`` ids.
    """
    order = topological_order(root)
    index = {id(t): i for i, t in enumerate(order)}
    nodes = []
    for i, t in enumerate(order):
        name = t.name
        if not t.inputs:  # a leaf: also a result of inputs that needed no gradient,
            # whose op was not recorded (Standardize's (X − μ)/σ): an input here
            op = "parameter" if t.requires_grad else "input"
            if t.op is not None and name is None:
                name = f"(from {t.op})"
        else:
            op = t.op
        nodes.append(GraphNode(i, op, t.shape, [index[id(p)] for p in t.inputs], name))
    return nodes


def tensor(
    data: object,
    requires_grad: bool = False,
    dtype: object = None,
    device: object = None,
    pin_memory: bool = False,
) -> Tensor:
    """``torch.tensor(data, requires_grad=…, dtype=…)``: a new leaf holding a copy of
    ``data`` (``Tensor(array)`` wraps the array itself, as torch.from_numpy). A float
    array keeps its dtype and a list of numbers is float32, as torch's; whole numbers
    become floats too (wxb computes in float32 or float64), where torch's would be int64;
    one that float32 would round (above 2**24) is refused unless a dtype is given.
    A tensor given is copied without its graph, as torch's; one that requires grad with
    a warning, as torch's (a port's ``torch.tensor(h)`` cuts the graph there)."""
    return _new_leaf(data, requires_grad, dtype, device, caller_depth=3)


def _new_leaf(
    data: object, requires_grad: object, dtype: object, device: object, caller_depth: int
) -> Tensor:
    check_device(device, "wxb.tensor")
    if isinstance(data, Tensor) and data.requires_grad:
        warnings.warn(
            "wxb.tensor(t) of a tensor that requires grad copies its values without the "
            "graph (no gradient reaches t): say so with t.detach().clone(), or "
            "t.detach().clone().requires_grad_(True) for a new leaf",
            UserWarning,
            stacklevel=caller_depth,
        )
    source = data.data if isinstance(data, Tensor) else data
    made = Tensor(source, dtype=dtype)
    return Tensor(made.data.copy(), requires_grad=bool(requires_grad))


class _CallableModule(types.ModuleType):
    """This module, callable: ``wxb.tensor([1.0, 2.0])`` is torch's ``torch.tensor(...)``
    while ``from wxb.tensor import Tensor`` and ``wxb.tensor.Tensor`` still read the module
    (a function in its place on the package would have hidden the latter)."""

    def __call__(
        self,
        data: object,
        requires_grad: bool = False,
        dtype: object = None,
        device: object = None,
        pin_memory: bool = False,
    ) -> Tensor:
        return _new_leaf(data, requires_grad, dtype, device, caller_depth=3)


sys.modules[__name__].__class__ = _CallableModule
