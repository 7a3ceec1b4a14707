"""Optimisers, in order of increasing complexity; learning-rate schedules; clipping.

Every update is in place on ``param.data``, where it lies. The optimiser keeps the
gradients and its state (velocity, moments) in flat buffers of one layout, and
the update rule runs over each contiguous run of the parameters' memory at once
(one run for a model ``wxb.nn`` built: its parameters lie back to back) instead
of once per array. The flat
arrays are walked in cache-sized chunks, and on several threads when they are
large, because the update is bound by memory traffic, not arithmetic.
Temporaries live in per-thread scratch buffers allocated once, so a step
allocates nothing after the first. The update rules follow PyTorch's, so
results can be compared.

Parameter groups are PyTorch's: ``param_groups`` is a list of dicts, each with
its own hyperparameters. The groups lie one after another in the one flat
buffer, and each group's stretch is walked with that group's values, so one
group (the common case) is exactly one walk over everything.
"""

from __future__ import annotations

import bisect
import copy
import functools
import inspect
import itertools
import json
import math
import operator
import os
import sys
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar, NamedTuple

import numpy as np

from wxb import kernels
from wxb.backend import is_torch_tensor
from wxb.errors import ConfigError, missing_name
from wxb.nn.module import (
    WEIGHTS,
    Module,
    Parameter,
    RemovableHandle,
    UninitializedParameter,
    forget_gradients,
)

# clipping works on parameters alone, so it lives in wxb.nn.utils (torch.nn.utils's place)
from wxb.nn.utils import (
    _check_grad_shape,
    _number,
    clip_grad_norm_,
    clip_grad_value_,
)
from wxb.tensor import Tensor, enable_grad
from wxb.validation import torch_options

try:  # NumPy 2; NumPy 1 had it at the top level
    from numpy.lib.array_utils import byte_bounds
except ImportError:  # pragma: no cover
    byte_bounds = np.byte_bounds

# Per-parameter counters under the names PyTorch's state dicts give them.
# the public names (README's table; torch.optim's that wxb has): ``from wxb.optim import *``
# brings these, not NumPy or the helpers fit and the CLI share
__all__ = [
    "ASGD",
    "LBFGS",
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "InverseScalingLR",
    "LRSchedule",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "Muon",
    "MuonWithAdamW",
    "NAdam",
    "OneCycleLR",
    "Optimizer",
    "PolynomialLR",
    "RAdam",
    "RMSprop",
    "ReduceLROnPlateau",
    "Rprop",
    "SequentialLR",
    "StepLR",
    "clip_grad_norm_",
    "clip_grad_value_",
    "lr_scheduler",
]

COUNTER_KEYS = {
    "param_steps": "step",
    "momentum_steps": "momentum_step",
    "mu_products": "mu_product",  # NAdam's Π μ_k, a number in [0, 1] that starts at 1
    "etas": "eta",  # ASGD's step size and averaging weight for the next update
    "mus": "mu",
}
CHUNK = 1 << 17  # elements per pass: the chunk of every array an update touches stays in cache
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


# What mpiexec sets to the number of its processes on this machine (MPICH, Open MPI).
_LOCAL_RANKS = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE")


def update_threads() -> int:
    """Threads for large updates: the cores this process may use, at most 8; under
    mpiexec, which often binds nothing, the ranks on this machine share them."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    for name in _LOCAL_RANKS:
        local = os.environ.get(name, "")
        if local.isdigit() and int(local) > 1:
            cores = cores // int(local)
            break
    return max(1, min(8, cores))


def _thread_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:  # two threads' first large updates at once: one pool
            if _pool is None:
                _pool = ThreadPoolExecutor(
                    update_threads() - 1 or 1, thread_name_prefix="wxb-update"
                )
    return _pool


def _forget_pool_in_child() -> None:
    """A fork()ed child (multiprocessing's default on Linux, joblib's "multiprocessing")
    has none of the pool's threads, but the pool would count its idle parent's as free
    and never start one: work handed to it would wait for ever. The child makes its own."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()  # (a lock held at the fork stays held)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def _same(known: object, now: object) -> bool:
    """The same object, or the same number (a setting such as ``threaded_from``)."""
    return known is now or (type(known) is int and known == now)


def _holds(p: Parameter, view: np.ndarray) -> bool:
    return p.data is view


def _owner(array: np.ndarray) -> object:
    """What holds an array's memory (NumPy points a view's base at it)."""
    base = array.base
    return array if base is None else base


def _make_steppable(p: Parameter) -> None:
    """A ``p.data`` the update can write in place: a read-only array, or the NumPy
    scalar ``p.data * 2`` gives on a 0-d parameter, becomes an array of its own."""
    if type(p.data) is not np.ndarray or not p.data.flags.writeable:
        p.data = np.array(p.data)


def _joined(first: np.ndarray, then: np.ndarray) -> np.ndarray | None:
    """One 1-D view over two 1-D views when ``then`` starts where ``first`` ends, in
    the same writable 1-D array (a memoryview's, mmap's or torch tensor's memory is
    not joined: there is no array to view it through)."""
    owner = first.base
    if (
        type(owner) is not np.ndarray
        or then.base is not owner
        or owner.dtype != first.dtype  # (float32 views of a byte or float64 buffer)
        or then.dtype != first.dtype
        or owner.ndim != 1
        or not owner.flags.c_contiguous
        or not owner.flags.writeable
        or _address(then) != _address(first) + first.nbytes
    ):
        return None
    start = (_address(first) - _address(owner)) // owner.itemsize
    return owner[start : start + first.size + then.size]


class _Run(NamedTuple):
    """Parameters whose values lie back to back in memory: their stretch
    ``start:stop`` of the flat layout, and ``memory``, a 1-D view of where they are
    (or, ``shaped``, the one parameter ``first`` that is not contiguous, as it is)."""

    start: int
    stop: int
    memory: np.ndarray
    first: int
    shaped: bool


class FlatParameters:
    """Parameters of one dtype in one flat layout, stepped where their values lie.

    The gradients (``grad``) and the optimiser's state lie in flat arrays of this
    layout. The values are not moved: they are stepped in place, in as few ``runs``
    of contiguous memory as they fill (one for a model whose layers ``wxb.nn`` laid
    back to back), so a view of a weight taken before (``w = layer.weight.data``,
    ``p.detach()``) follows training and weights tied through ``.data`` to one
    outside the optimiser stay tied, as in PyTorch. ``data`` is the one flat array
    of the values when they fill one stretch, else None; ``gather=True`` (what needs
    every value in one vector: scikit-learn's L-BFGS, ranks sharing their weights)
    copies them into a buffer of its own then, with each ``p.data`` a view of it.

    The planned training step writes ∂L/∂W straight into views of ``grad``; other
    gradients are copied in. It owns those views (``p.grad_home``), and hands one out
    for a new gradient only while nothing outside holds it: a gradient a user kept
    from an earlier step, or a view of one, makes it start a new buffer rather than
    overwrite it.
    """

    def __init__(self, params: list[Parameter], gather: bool = False) -> None:
        dtype = self.dtype = params[0].dtype
        sizes = [p.data.size for p in params]
        self.params = params
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
        for p in params:
            _make_steppable(p)
        self.views = [p.data for p in params]
        self.runs = self._runs_of(params)
        self.walks: dict[tuple[int, int], tuple] = {}  # an optimiser's pieces of its stretches
        self.data: np.ndarray | None = None
        if not self.runs:
            self.data = np.empty(0, dtype)
        elif len(self.runs) == 1 and not self.runs[0].shaped:
            self.data = self.runs[0].memory
        elif gather:
            self.use_data_buffer(np.empty(self.offsets[-1], dtype))
        self._new_grad()

    def _runs_of(self, params: list[Parameter]) -> list[_Run]:
        runs: list[_Run] = []
        o = self.offsets
        for i, p in enumerate(params):
            array = p.data
            if array.size == 0:
                continue
            if not array.flags.c_contiguous:
                runs.append(_Run(o[i], o[i + 1], array, i, True))
                continue
            flat = array.reshape(-1)  # a view: the array is contiguous
            last = runs[-1] if runs else None
            joined = None if last is None or last.shaped else _joined(last.memory, flat)
            if joined is not None:
                runs[-1] = last._replace(stop=o[i + 1], memory=joined)
            else:
                runs.append(_Run(o[i], o[i + 1], flat, i, False))
        return runs

    def _new_grad(self) -> None:
        self.grad = np.empty(self.offsets[-1], self.dtype)
        self.adopt_grad_buffer()

    def use_data_buffer(self, buffer: np.ndarray) -> None:
        """The parameters' values move into ``buffer`` (flat, this layout), each ``p.data``
        a view of it: a gathered buffer, or memory the ranks of a distributed run on one
        machine share."""
        views = self.split(buffer, self.params)
        for p, view in zip(self.params, views, strict=True):
            np.copyto(view, p.data)
            p.data = view
        self.data, self.views = buffer, views
        self.runs = [_Run(0, buffer.size, buffer, 0, False)] if buffer.size else []

    def adopt_grad_buffer(self) -> None:
        """Gradients go into ``self.grad`` (flat, this layout; just assigned) from now on:
        a new array, or memory the ranks of a distributed run on one machine all see.

        No argument: the references are counted here, and an argument (or a caller's
        temporary) would be counted as a holder that later goes away, hiding a user's."""
        self.grad_views = self.split(self.grad, self.params)
        for i, p in enumerate(self.params):  # the planned path writes ∂L/∂p here: no copy later
            p.grad_buffer, p.grad_home, p.grad_index = self.grad_views[i], self, i
        # Reference counts while nothing outside holds the buffer (the same code measures
        # them later: PyTorch's AccumulateGrad decides in-place work by a use count too).
        self._free = self._holders()

    def _holders(self) -> tuple[int, list[int]]:
        """References to the flat gradient buffer (each view of it, a user's included,
        holds one) and to each parameter's view, not counting its own ``.grad`` or
        ``.grad_buffer`` (which another optimiser over the parameter takes away: a
        user's reference would then make up the count)."""
        return sys.getrefcount(self.grad), [
            sys.getrefcount(view) - (p.grad is view) - (p.grad_buffer is view)
            for p, view in zip(self.params, self.grad_views, strict=True)
        ]

    def free_grad_view(self, i: int) -> np.ndarray:
        """Parameter i's view, after starting a new buffer if anything outside holds it."""
        self.ensure_free()
        return self.grad_views[i]

    def ensure_free(self) -> None:
        """Start a new gradient buffer if anything outside holds the buffer or a view of it
        (before a backward writes new gradients into it, or a step copies them in)."""
        flat, views = self._holders()
        free_flat, free_views = self._free
        if flat > free_flat or any(n > free for n, free in zip(views, free_views, strict=True)):
            self._new_grad()

    @classmethod
    def possible(cls, params: list[Parameter]) -> bool:
        """One dtype, no parameter listed twice, and no two sharing memory: weights tied
        through ``.data`` (``b.weight.data = a.weight.data``, PyTorch's old idiom) must
        stay one array, where copying each into its own slice would untie them."""
        if len({p.dtype for p in params}) != 1 or len({id(p) for p in params}) != len(params):
            return False
        spans = sorted(byte_bounds(p.data) for p in params if p.data.size)
        return all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))

    def split(self, flat: np.ndarray, params: list[Parameter]) -> list[np.ndarray]:
        o = self.offsets
        return [flat[o[i] : o[i + 1]].reshape(p.shape) for i, p in enumerate(params)]

    def intact(self, params: list[Parameter]) -> bool:
        """False once something replaced a ``p.data`` (``model.to(dtype)``, an assignment),
        or the runs no longer share the parameters' memory (a deep copy or a pickle of
        the optimiser copies each view as an array of its own: stepping the runs would
        leave the copy's weights where they were)."""
        views = self.views
        if len(params) != len(views) or not all(map(_holds, params, views)):
            return False
        for run in self.runs:  # the same owner of memory settles it without a bounds check
            memory, view = run.memory, views[run.first]
            if _owner(memory) is not _owner(view) and not np.may_share_memory(memory, view):
                return False
        return True


class _ParamState(dict):
    """``optimizer.state[p]`` as PyTorch's entry: the step count(s) now and the state
    arrays themselves, under wxb's names or PyTorch's (``exp_avg``, ``exp_avg_sq``,
    ``momentum_buffer``: ``Optimizer.torch_names``). Writing one sets the optimiser's own
    count or array, which the next step uses, as PyTorch's does (``state[p]['step'] = 0``
    restarts Adam's bias correction; a momentum buffer written before the first step is
    the one it starts from); a key it does not keep, or a deletion, is refused. (A plain
    dict, as it was, took ``state[p]['step'] = 0`` and the next step went on counting.)"""

    def __init__(self, optimizer: Optimizer, index: int) -> None:
        self._optimizer, self._at = optimizer, index
        super().__init__(self._now())

    def _now(self) -> dict:
        opt, i = self._optimizer, self._at
        if not opt._has_state(i):
            return {}
        entry: dict = {COUNTER_KEYS[c]: getattr(opt, c)[i] for c in opt.counters}
        entry.update(opt._state_arrays(i))
        return entry

    def _own(self, key: object) -> object:
        return self._optimizer.torch_names.get(key, key)  # type: ignore[call-overload]

    def __getitem__(self, key: object) -> object:
        now = self._now()
        if self._own(key) not in now:
            raise KeyError(key)
        return now[self._own(key)]

    def get(self, key: object, default: object = None) -> object:
        return self[key] if key in self else default

    def __contains__(self, key: object) -> bool:
        return self._own(key) in self._now()

    def __iter__(self):
        return iter(self._now())

    def __len__(self) -> int:
        return len(self._now())

    def keys(self):
        return self._now().keys()

    def values(self):
        return self._now().values()

    def items(self):
        return self._now().items()

    def __repr__(self) -> str:
        return repr(self._now())

    def __eq__(self, other: object) -> bool:
        return self._now() == other

    __hash__ = None  # type: ignore[assignment]

    def __reduce_ex__(self, protocol: object) -> tuple:
        return dict, (self._now(),)  # a copy or a pickle is a plain dict, as the state's

    def __setitem__(self, key: object, value: object) -> None:
        opt, i = self._optimizer, self._at
        where = f"{type(opt).__name__}.state[p][{key!r}]"
        name, counters = self._own(key), {COUNTER_KEYS[c]: c for c in opt.counters}
        started = opt._has_state(i) and i not in opt.__dict__.get("_begun", {})
        if name in counters:
            getattr(opt, counters[name])[i] = opt._counter_value(counters[name], value, where)
        elif name in opt._state_arrays(i):
            target = opt._state_arrays(i)[name]
            array = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
            if array.shape != target.shape or array.dtype.kind not in "fiu":
                raise ConfigError(
                    f"{where}: needs numbers of the parameter's shape {target.shape}; got "
                    f"{array.dtype} of shape {array.shape}"
                )
            np.copyto(target, array, casting="unsafe")  # (in the parameter's dtype)
            opt._state_written(name, i)
        else:
            kept = [*counters, *opt._state_arrays(i)]
            raise ConfigError(
                f"{where}: {type(opt).__name__} keeps {', '.join(map(repr, kept))} here; "
                "another key would change nothing"
            )
        # (an entry set by hand is the parameter's state from now on, a step count of 0 too)
        opt.__dict__.setdefault("_written", set()).add(i)
        if not started:  # a state begun by hand: the next step checks it is whole
            opt.__dict__.setdefault("_begun", {}).setdefault(i, set()).add(counters.get(name, name))

    def _refused(self, *args: object, **kwargs: object) -> None:
        raise ConfigError(
            f"{type(self._optimizer).__name__}.state[p]: its entries cannot be removed (set "
            "a value instead; del optimizer.state[p] starts the parameter again)"
        )

    __delitem__ = pop = popitem = clear = setdefault = _refused

    def update(self, *args: object, **kwargs: object) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value


def _own_state_value(value: object, dtype: np.dtype, key: object) -> object:
    """A loaded value of a step of one's own, as PyTorch's load_state_dict casts it: a
    tensor (PyTorch's own: a NumPy array here, where its step computes with NumPy's)
    into the parameter's dtype, but a ``step`` count, kept as saved; inside dicts, lists
    and tuples too. (A torch tensor was kept, and the step raised "unsupported operand
    type(s) for -=: 'numpy.ndarray' and 'Tensor'".)"""
    if type(value) is dict:
        return {k: _own_state_value(v, dtype, k) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_own_state_value(v, dtype, key) for v in value)
    if is_torch_tensor(value):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray) and key != "step" and value.dtype.kind == dtype.kind == "f":
        return value.astype(dtype, copy=False)
    return value


def _whole_count(value: object, where: str) -> int:
    """A step count written by hand: a whole number ≥ 0 (PyTorch's is a 0-d float tensor,
    ``torch.tensor(0.0)``: its value is taken)."""
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        value = value.item()  # a 0-d array or tensor
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _count_value(value, where)


class _State(dict):
    """``optimizer.state`` as PyTorch's: each stepped parameter's counts and state arrays.
    Forgetting an entry (``del state[p]``, ``state.pop(p)``, ``popitem()``, ``state[p] =
    {}``, ``state.clear()``) starts that parameter again at its next step, as PyTorch's; a
    parameter not stepped yet reads as ``{}`` (PyTorch's is a defaultdict). (A plain
    copy, as it was, made forgetting change nothing.)"""

    def __init__(self, optimizer: Optimizer, entries: dict) -> None:
        super().__init__(entries)
        self._optimizer = optimizer

    def _index(self, key: object) -> int | None:
        return next((i for i, p in enumerate(self._optimizer.params) if p is key), None)

    def __reduce_ex__(self, protocol: object) -> tuple:
        return dict, (dict(self),)  # a copy or a pickle is a plain dict, as it was

    def __missing__(self, key: object) -> dict:
        index = self._index(key)
        if index is None:
            raise KeyError(key)
        return _ParamState(self._optimizer, index)  # reads {} until a step or a write

    def __delitem__(self, key: object) -> None:
        super().__delitem__(key)
        self._optimizer._restart([self._index(key)])

    def pop(self, key: object, *default: object) -> object:
        if key not in self:
            return super().pop(key, *default)
        value = super().pop(key)
        self._optimizer._restart([self._index(key)])
        return value

    def popitem(self) -> tuple:
        key, value = super().popitem()
        self._optimizer._restart([self._index(key)])
        return key, value

    def clear(self) -> None:
        super().clear()
        self._optimizer._restart(range(len(self._optimizer.params)))

    def __setitem__(self, key: object, value: object) -> None:
        index = self._index(key)
        if index is None or not isinstance(value, Mapping) or len(value):
            raise ConfigError(
                f"{type(self._optimizer).__name__}.state[p] = …: only {{}} may be assigned, "
                "for a parameter of this optimiser (it starts again, as PyTorch's); a saved "
                "state goes in with load_state_dict"
            )
        super().pop(key, None)
        self._optimizer._restart([index])


class _GroupValue:
    """A hyperparameter read as an attribute (``optimizer.lr``): the first group's value.

    Setting it sets every group's value (checked first), as PyTorch users write
    ``for g in optimizer.param_groups: g["lr"] = value``.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, optimizer: Optimizer | None, owner: type | None = None) -> object:
        if optimizer is None:
            return self
        return optimizer.param_groups[0][self.name]

    def __set__(self, optimizer: Optimizer, value: object) -> None:
        where = type(optimizer).__name__
        checked = []
        for group in optimizer.param_groups:
            trial = {**group, self.name: value}
            optimizer._check_group(trial, where)
            checked.append(trial[self.name])
        for group, value in zip(optimizer.param_groups, checked, strict=True):
            group[self.name] = value


def _binds(cls: type, args: tuple, kwargs: dict) -> bool:
    """Whether ``cls(*args, **kwargs)`` fits the ``__init__`` of a class of one's own
    (wxb's own, with ``**defaults``, refuse what they have not by name)."""
    if cls.__init__.__module__ == __name__:
        return False
    try:
        inspect.signature(cls.__init__).bind(None, *args, **kwargs)
    except TypeError:
        return False
    return True


# An own-step optimiser's defaults without an lr (PyTorch's Optimizer takes any dict)
_NO_LR = object()


class _RequiredParameter:
    """PyTorch's ``required`` (``torch.optim.optimizer``): a default that each parameter
    group must give itself, ``def __init__(self, params, lr=required)``."""

    def __repr__(self) -> str:
        return "<required parameter>"

    def __reduce__(self) -> str:
        return "required"  # (copied and pickled: this one object)


required = _RequiredParameter()


# -- PyTorch's optimiser hooks ----------------------------------------------------------------
# each hooked method's (pre, post) hook tables, kept in the optimiser's __dict__ while it has any
_HOOK_TABLES = {
    "step": ("_step_pre_hooks", "_step_post_hooks"),
    "state_dict": ("_state_dict_pre_hooks", "_state_dict_post_hooks"),
    "load_state_dict": ("_load_state_dict_pre_hooks", "_load_state_dict_post_hooks"),
}
_ALL_HOOK_TABLES = tuple(t for pair in _HOOK_TABLES.values() for t in pair)


class OptimizerHookHandle(RemovableHandle):
    """What the ``register_*_hook`` methods return: ``remove()`` takes the hook off (also
    at the end of a ``with`` block), as PyTorch's ``RemovableHandle``; its id and ``with``
    are a module hook's handle's, the table it leaves the optimiser's."""

    def remove(self) -> None:
        optimizer = self._module()
        hooks = None if optimizer is None else optimizer.__dict__.get(self._kind)
        if hooks is not None:
            hooks.pop(self.id, None)
            if not hooks:  # (no hooks left: the hooked methods' fast call again)
                del optimizer.__dict__[self._kind]


def _step_with_hooks(self: Optimizer, step: Callable, args: tuple, kwargs: dict) -> object:
    """PyTorch's order: each pre-hook(optimizer, args, kwargs), ``args`` beginning with the
    optimiser, may give new (args, kwargs); the step; each post-hook with what it ran on."""
    args = (self, *args)
    for hook in list(self.__dict__.get("_step_pre_hooks", {}).values()):
        result = hook(self, args, kwargs)
        if result is not None:
            if not (isinstance(result, tuple) and len(result) == 2):
                raise RuntimeError(
                    f"{type(self).__name__} step pre-hook {hook!r} must return None or a "
                    f"tuple of (new_args, new_kwargs), but got {result!r}"
                )
            args, kwargs = result
    out = step(*args, **kwargs)
    for hook in list(self.__dict__.get("_step_post_hooks", {}).values()):
        hook(self, args, kwargs)
    return out


def _state_dict_with_hooks(self: Optimizer, method: Callable, args: tuple, kwargs: dict) -> dict:
    for hook in list(self.__dict__.get("_state_dict_pre_hooks", {}).values()):
        hook(self)
    state_dict = method(self, *args, **kwargs)
    for hook in list(self.__dict__.get("_state_dict_post_hooks", {}).values()):
        result = hook(self, state_dict)
        if result is not None:  # (PyTorch's: a post-hook may give the dict to return)
            state_dict = result
    return state_dict


def _load_with_hooks(self: Optimizer, method: Callable, args: tuple, kwargs: dict) -> None:
    (state_dict,) = (*args, *kwargs.values())
    state_dict = dict(state_dict)  # (a shallow copy for the hooks to edit, as PyTorch's)
    for hook in list(self.__dict__.get("_load_state_dict_pre_hooks", {}).values()):
        result = hook(self, state_dict)
        if result is not None:
            state_dict = result
    method(self, state_dict)
    for hook in list(self.__dict__.get("_load_state_dict_post_hooks", {}).values()):
        hook(self)


_RUN_WITH_HOOKS = {
    "step": _step_with_hooks,
    "state_dict": _state_dict_with_hooks,
    "load_state_dict": _load_with_hooks,
}


def _run_hooked(self: Optimizer, name: str, method: Callable, args: tuple, kwargs: dict):
    """``method`` called with the hooks of ``name`` around it; a call of it inside this
    one (a ``super().step()`` in a step) is the same call, run without them again."""
    held = self.__dict__
    held[f"_running_{name}_hooks"] = threading.get_ident()
    try:
        return _RUN_WITH_HOOKS[name](self, method, args, kwargs)
    finally:
        held.pop(f"_running_{name}_hooks", None)


def _hooked(method: Callable) -> Callable:
    """``method`` (step, state_dict or load_state_dict) running the optimiser's hooks
    around it, once per call."""
    name = method.__name__
    pre, post = _HOOK_TABLES[name]
    running = f"_running_{name}_hooks"

    @functools.wraps(method)
    def hooked(self: Optimizer, *args: object, **kwargs: object) -> object:
        held = self.__dict__
        if not (pre in held or post in held) or held.get(running) == threading.get_ident():
            return method(self, *args, **kwargs)  # (no hooks: two dict lookups more)
        return _run_hooked(self, name, method, args, kwargs)

    hooked.hooked = True
    return hooked


def _replace_group(group: dict, saved: dict) -> None:
    """``group`` becomes the ``saved`` one over its own parameters, as PyTorch's
    load_state_dict replaces each group: a key the saved group lacks is gone (an
    ``initial_lr``, a setting added since), not kept from before the load."""
    params, names = group["params"], group.get("param_names")
    group.clear()
    group.update(saved)
    group["params"] = params
    if names is not None and "param_names" not in saved:
        group["param_names"] = names


def _is_wxbs(cls: type) -> bool:
    """Whether ``cls`` is one of wxb's optimisers (not the base, nor a user's class)."""
    return cls.__module__.startswith("wxb.") and cls is not Optimizer


def _own_step_guarded(step: Callable) -> Callable:
    """A step of one's own (PyTorch's way), run as the built-in step runs: counted in
    ``steps`` and writing the weights under ``WEIGHTS`` (a predict in another thread sees
    them before or after the step, not some parameters updated). Its closure runs outside
    that write: it reads the weights (forward, backward), maybe in other threads, which
    would wait for this write to end. A ``super().step()`` inside is the same step."""

    @functools.wraps(step)
    def guarded(self: Optimizer, *args: object, **kwargs: object) -> object:
        me = threading.get_ident()
        own = self.__dict__
        if own.get("_own_stepping") == me:  # (a super().step() inside it)
            return step(self, *args, **kwargs)
        if ("_step_pre_hooks" in own or "_step_post_hooks" in own) and own.get(
            "_running_step_hooks"
        ) != me:  # (its hooks here: one wrapper less on each step)
            return _run_hooked(self, "step", guarded, args, kwargs)
        held = WEIGHTS.begin_writing(self.params, me)  # (False: inside a write of this thread)
        failed: list[BaseException] = []  # the closure's error, if it raised
        if args and callable(args[0]):
            args = (_closure_outside_write(args[0], self.params, me, held, failed), *args[1:])
        elif callable(kwargs.get("closure")):
            closure = kwargs["closure"]
            kwargs["closure"] = _closure_outside_write(closure, self.params, me, held, failed)
        self.__dict__["_own_stepping"] = me
        try:
            result = step(self, *args, **kwargs)
        except BaseException as error:
            # Counted as the built-in step counts one: once it may have written weights. A
            # step that raised half-way wrote some (the count keeps telling what a resume
            # starts from, as the built-in's per-parameter counts do); one whose closure
            # raised wrote none yet (PyTorch's steps call it first): not counted.
            if not any(e is error for e in failed):
                self.steps += 1
            raise
        finally:
            self.__dict__.pop("_own_stepping", None)
            if held:
                WEIGHTS.done_writing(me)
        self.steps += 1
        return result

    guarded.guarded = guarded.hooked = True
    return guarded


def _closure_outside_write(
    closure: Callable, params: list, me: int, held: bool, failed: list
) -> Callable:
    """``closure`` run with thread ``me``'s write of ``params`` paused (where ``held``),
    then taken again; an error it raises is put in ``failed``."""

    @functools.wraps(closure)
    def paused(*args: object, **kwargs: object) -> object:
        if held:
            WEIGHTS.done_writing(me)
        try:
            return closure(*args, **kwargs)
        except BaseException as error:
            failed.append(error)
            raise
        finally:
            if held:
                WEIGHTS.begin_writing(params, me)

    return paused


class Optimizer:
    """Base: parameter groups, validation, flat buffers, and the walk of an update rule.

    ``params`` is an iterable of Parameters (one group) or a list of dicts, PyTorch's
    parameter groups: ``{"params": [...], "lr": ..., ...}``, a missing key taking the
    constructor's value (``defaults``). ``param_groups`` holds those dicts; a change
    to one (``g["lr"] *= 0.1``) takes effect at the next step, checked as at
    construction except that a learning rate may have reached 0 (a schedule's end).
    ``params`` is every parameter, group after group. ``state[p]`` is a stepped
    parameter's live entry, as PyTorch's: its counts and arrays under wxb's names or
    PyTorch's (``exp_avg``, ``momentum_buffer``), written into the next step.

    A subclass names its per-parameter state (``state_names``), its hyperparameters
    (``hyperparameters``, checked by ``_check_group``) and writes ``_rule``: the
    update of one contiguous stretch of parameters with one group's values.

    A subclass written PyTorch's way (its own ``step``, no ``_rule``) is taken as written:
    ``super().__init__(params, defaults)`` with the defaults as a dict (any: its groups are
    its step's to read, an lr too), and ``state`` a plain ``defaultdict(dict)`` by
    parameter for its ``step`` to fill (``p.data`` and ``p.grad`` are NumPy arrays: update
    in place, ``p.data -= lr * buf``). Its step is counted in ``steps`` and writes the
    weights as the built-in one does (``_own_step_guarded``).
    """

    state_names: tuple[str, ...] = ()  # e.g. the Adam moments, one array per parameter
    possible_states: tuple[str, ...] = ()  # every state it may make (SGD: velocity, with momentum)
    torch_names: ClassVar[dict[str, str]] = {}  # PyTorch's name of a state → wxb's
    hyperparameters: tuple[str, ...] = ("lr",)
    # PyTorch group flags that change the update, and the one value this optimiser runs
    # them with: another value is refused, never ignored (and why, for the message)
    fixed_flags: ClassVar[dict[str, tuple[bool, str]]] = {
        "maximize": (False, "minimise the negated loss instead"),
        # a group's own too, as PyTorch's step reads it there (it was taken and ignored)
        "differentiable": (False, "wxb records no graph through an optimiser's step"),
    }
    counters: tuple[str, ...] = ("param_steps",)  # per-parameter counts, one list each
    counter_starts: ClassVar[dict[str, float]] = {}  # a counter's start where it is not 0
    # what PyTorch's __setstate__ gives a loaded group saved before the key existed
    # (its SGD's nesterov=False): such a group loads, as PyTorch's, not refused
    saved_defaults: ClassVar[dict[str, object]] = {}
    # Below this many elements, handing chunks to threads costs more than it saves
    # (measured on a 2-core machine: SGD's two passes gain from 2M, Adam's twelve from 256K).
    threaded_from = 1 << 21
    # Whether the parameters' values are moved into one flat buffer when they do not
    # already fill one stretch (for what reads them as one vector); else stepped in place.
    gathers = False
    # Whether any stretch of the flat layout may be updated alone (ranks sharing their
    # weights each update a slice); not where a step reads a parameter whole.
    steps_by_slices: ClassVar[bool] = True
    _own_step: ClassVar[bool] = False  # a subclass's step of its own (set per subclass)
    lr = _GroupValue()

    def __new__(cls, *args: object, **kwargs: object) -> Optimizer:
        # Python's own "missing 1 required positional argument: 'params'" names neither
        # model.parameters() nor lr= (copy and pickle call this with no arguments)
        name = cls.__name__
        if not ("learning_rate" in kwargs or (kwargs and not args)) or _binds(cls, args, kwargs):
            return super().__new__(cls)  # (a class of one's own may take learning_rate=)
        if "learning_rate" in kwargs:
            raise TypeError(
                f"{name} spells the learning rate lr= (PyTorch's name), not learning_rate= "
                f"(Keras's): {name}(model.parameters(), lr={kwargs['learning_rate']!r})"
            )
        if kwargs and not args and "params" not in kwargs:
            raise TypeError(
                f"{name} takes the parameters to optimise first: {name}(model.parameters(), "
                + ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
                + ")"
            )
        return super().__new__(cls)

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict],
        lr: float | Mapping[str, object],
        **defaults,
    ) -> None:
        name = type(self).__name__
        if isinstance(lr, Mapping):  # PyTorch's Optimizer(params, defaults): a dict of them
            if defaults:
                raise ConfigError(
                    f"{name}: give the defaults as one dict (PyTorch's Optimizer(params, "
                    f"defaults)) or as keywords, not both; got {sorted(defaults)} beside it"
                )
            given = dict(lr)
            lr, defaults = given.get("lr"), {k: v for k, v in given.items() if k != "lr"}
            if self._own_step and "lr" not in given:  # PyTorch's takes any defaults (an
                lr = _NO_LR  # optimiser of momentum alone); a schedule then refuses it
        if inspect.ismethod(params) and params.__name__ in ("parameters", "named_parameters"):
            method = params.__name__
            raise ConfigError(
                f"{name} takes the parameters that model.{method}() lists, not the method "
                f"itself: add the brackets, {name}(model.{method}(), ...)"
            )
        if isinstance(params, Module):
            raise ConfigError(f"{name} takes model.parameters(), not the model itself")
        if isinstance(params, Tensor):
            raise ConfigError(f"{name} takes an iterable of Parameters; got one {params!r}")
        if isinstance(params, dict):
            raise ConfigError(f"{name}: parameter groups go in a list: [{{'params': ...}}, ...]")
        if isinstance(params, (set, frozenset)):
            raise ConfigError(f"{name} takes an ordered list of Parameters, not a set")
        if isinstance(params, (str, bytes)) or not isinstance(params, Iterable):
            raise ConfigError(f"{name} takes model.parameters(); got {params!r}")
        items = list(params)
        if not items:
            raise ConfigError(f"{name}: got no parameters to optimise")
        self.defaults = defaults if lr is _NO_LR else {"lr": lr, **defaults}
        self._check_group(self.defaults, name)
        self.param_groups: list[dict] = []
        self.params: list[Parameter] = []
        self._bounds: list[tuple[int, int]] = []  # each group's stretch of self.params
        self._checked: list[tuple] = []  # each group's hyperparameters as last checked
        for counter in self.counters:
            setattr(self, counter, [])
        self.steps = 0  # calls of step()
        self.flat: FlatParameters | None = None
        self._flat_state: dict[str, np.ndarray] = {}
        # (start, stop, buffer): update only that stretch of the flat buffers while they
        # are ``buffer`` (ranks sharing the weights each update their own stretch)
        self.shard: tuple[int, int, np.ndarray] | None = None
        # Called before a repack (a new state, a replaced p.data, a group added): ranks
        # sharing their weights move them back into arrays of their own first.
        self.before_repack: Callable[[], None] | None = None
        self._scratch: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.scheduled_lrs: dict[int, float] = {}  # group index → the rate a schedule last set
        self._loads = 0  # calls of load_state_dict (a schedule made before one holds no rate)
        groups = items if isinstance(items[0], dict) else [{"params": items}]
        for group in groups:
            self._add_group(group)
        if not self.params:
            raise ConfigError(f"{name}: got no parameters to optimise")
        self._init_state()

    def __getstate__(self) -> dict:
        """Copied or pickled without its hooks (functions, often lambdas), as PyTorch's."""
        return {k: v for k, v in self.__dict__.items() if k not in _ALL_HOOK_TABLES}

    def __setstate__(self, state: dict) -> None:
        """Unpickled or copied: its attributes back, as Python does without this method.
        Here for PyTorch's idiom, ``super().__setstate__(state)`` in a subclass's own
        ``__setstate__`` (then ``group.setdefault(...)``), which raised AttributeError.
        ``load_state_dict`` calls it as PyTorch's does, with ``state`` and
        ``param_groups`` (the loaded ones)."""
        state = dict(state)
        own = state.pop("state", None)  # (a built-in's state is loaded already)
        if own is not None and self._own_step and own is not self.__dict__.get("_own_state"):
            kept = own if isinstance(own, defaultdict) else defaultdict(dict, own)
            self.__dict__["_own_state"] = kept
        self.__dict__.update(state)

    def __repr__(self) -> str:
        """PyTorch's: the class, then each group's settings by name (its params left out)."""
        text = f"{type(self).__name__} ("
        for index, group in enumerate(self.param_groups):
            text += f"\nParameter Group {index}\n"
            text += "".join(f"    {k}: {group[k]}\n" for k in sorted(group) if k != "params")
        return text + ")"

    # -- hooks, PyTorch's ---------------------------------------------------------------------
    def _register_hook(self, table: str, hook: Callable, prepend: bool = False):
        if not callable(hook):
            raise ConfigError(f"{type(self).__name__}: a hook must be callable; got {hook!r}")
        handle = OptimizerHookHandle(self, table)
        hooks = self.__dict__.get(table, {})
        hooks = {handle.id: hook, **hooks} if prepend else {**hooks, handle.id: hook}
        self.__dict__[table] = hooks
        return handle

    def register_step_pre_hook(self, hook: Callable) -> OptimizerHookHandle:
        """``hook(optimizer, args, kwargs)`` before each step (``args`` begins with the
        optimiser); it may return ``(new_args, new_kwargs)`` for the step to run with."""
        return self._register_hook("_step_pre_hooks", hook)

    def register_step_post_hook(self, hook: Callable) -> OptimizerHookHandle:
        """``hook(optimizer, args, kwargs)`` after each step."""
        return self._register_hook("_step_post_hooks", hook)

    def register_state_dict_pre_hook(
        self, hook: Callable, prepend: bool = False
    ) -> OptimizerHookHandle:
        """``hook(optimizer)`` before ``state_dict()`` makes the dict."""
        return self._register_hook("_state_dict_pre_hooks", hook, prepend)

    def register_state_dict_post_hook(
        self, hook: Callable, prepend: bool = False
    ) -> OptimizerHookHandle:
        """``hook(optimizer, state_dict)`` after; a dict it returns is ``state_dict()``'s."""
        return self._register_hook("_state_dict_post_hooks", hook, prepend)

    def register_load_state_dict_pre_hook(
        self, hook: Callable, prepend: bool = False
    ) -> OptimizerHookHandle:
        """``hook(optimizer, state_dict)`` before loading (a shallow copy of the dict given);
        a dict it returns is loaded instead."""
        return self._register_hook("_load_state_dict_pre_hooks", hook, prepend)

    def register_load_state_dict_post_hook(
        self, hook: Callable, prepend: bool = False
    ) -> OptimizerHookHandle:
        """``hook(optimizer)`` after ``load_state_dict``."""
        return self._register_hook("_load_state_dict_post_hooks", hook, prepend)

    # -- parameter groups -----------------------------------------------------------------
    def add_param_group(self, group: dict) -> None:
        """Add a group (PyTorch's ``add_param_group``); its state starts at zero."""
        start = len(self.params)
        self._add_group(group)
        for state in self.state_names:
            getattr(self, state).extend(np.zeros_like(p.data) for p in self.params[start:])
        self._pack()

    def _add_group(self, group: object) -> None:
        name, index = type(self).__name__, len(self.param_groups)
        where = f"{name} param_groups[{index}]"
        if not isinstance(group, dict):
            raise ConfigError(
                f"{name} takes Parameters or parameter-group dicts, not a mix; got {group!r}"
            )
        if "params" not in group:
            raise ConfigError(f"{where} has no 'params'")
        group = dict(group)
        params = group["params"]
        if isinstance(params, Module):
            raise ConfigError(f"{where}: 'params' takes model.parameters(), not the model itself")
        if isinstance(params, (set, frozenset)):
            raise ConfigError(f"{where}: 'params' must be an ordered list, not a set")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (str, bytes, dict)) or not isinstance(params, Iterable):
            raise ConfigError(f"{where}: 'params' must be a list of Parameters; got {params!r}")
        params = list(params)
        named = [isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in params]
        if any(named):  # model.named_parameters(), as PyTorch's (2.6 on) take it
            if not all(named):
                raise ConfigError(
                    f"{where}: give every parameter with its name, as named_parameters() "
                    "gives them, or none (as PyTorch requires)"
                )
            group["param_names"] = [n for n, _ in params]
            params = [p for _, p in params]
        for p in params:
            if isinstance(p, dict):
                raise ConfigError(
                    f"{name} takes Parameters or parameter-group dicts, not a mix; got {p!r}"
                )
            if not isinstance(p, Parameter):
                raise ConfigError(f"{name} takes wxb Parameters (model.parameters()); got {p!r}")
            if isinstance(p, UninitializedParameter):  # (replaced at the first call)
                raise ConfigError(
                    f"{where}: a parameter is not made yet (a LazyLinear's, whose in_features "
                    "its first call infers): call the model once on a batch, model(X[:1]), "
                    "before making the optimiser"
                )
        if self.param_groups and ("param_names" in group) != (
            "param_names" in self.param_groups[0]
        ):  # as PyTorch: state_dict's names would cover some groups only
            mixed = (
                "parameters with names (named_parameters()) cannot join groups without names"
                if "param_names" in group
                else "parameters without names cannot join groups from named_parameters()"
            )
            raise ConfigError(
                f"{where}: {mixed}; give every group its parameters the same way, "
                "as PyTorch requires"
            )
        if len({id(p) for p in params}) != len(params):
            raise ConfigError(f"{where} lists a parameter twice")
        held = {id(p) for p in self.params}
        for p in params:
            if id(p) in held:
                raise ConfigError(f"{where}: {p!r} is already in another parameter group")
        group["params"] = params
        for key, value in self.defaults.items():
            if value is required and key not in group:  # (PyTorch's ValueError, its words)
                raise ConfigError(
                    f"{where} didn't specify a value of required optimization parameter "
                    f"{key}: give it {key}=, or give {name} one"
                )
            group.setdefault(key, value)
        self._check_group(group, where)
        start = len(self.params)
        self.params.extend(params)
        for counter in self.counters:
            getattr(self, counter).extend([self.counter_starts.get(counter, 0)] * len(params))
        self._bounds.append((start, len(self.params)))
        self.param_groups.append(group)
        self._checked.append(self._values(group))

    def _check_group(self, group: dict, where: str) -> None:
        """Refuse a bad hyperparameter (``where``: whose, for the message); store it as float.

        An lr of 0 is taken, as PyTorch takes it: a group at 0 is how a part of a model is
        frozen, and a schedule may end there (a cosine with eta_min=0).

        A step of one's own (PyTorch's way) reads its groups as it likes: they are taken
        as given, as PyTorch's base Optimizer takes them (its own maximize, an lr of None).
        """
        if self._own_step:
            return
        for flag, (value, instead) in self.fixed_flags.items():
            if flag in group and bool(group[flag]) != value:
                raise ConfigError(
                    f"{where} {flag}={group[flag]!r}: {type(self).__name__} runs with "
                    f"{flag}={value}; {instead}"
                )
        group["lr"] = _non_negative(group.get("lr"), f"{where} lr")

    # PyTorch's choices of implementation (a loop or one kernel over the tensors, a step
    # CUDA graphs may capture): the same numbers, so any setting is taken; wxb has one
    IMPLEMENTATION_OPTIONS: ClassVar[tuple[str, ...]] = ("foreach", "fused", "capturable")

    def _torch_only(self, options: dict) -> None:
        """PyTorch's options wxb has no other setting of: at the value this optimiser runs
        with, taken; else refused in one line (a flag such as amsgrad=True would
        otherwise be ignored)."""
        options = dict(options)
        for key in self.IMPLEMENTATION_OPTIONS:
            if key in options:
                if options[key] not in (None, True, False):
                    raise ConfigError(
                        f"{type(self).__name__}: {key} must be True, False or None; "
                        f"got {options[key]!r}"
                    )
                del options[key]
        defaults = {flag: value for flag, (value, _) in self.fixed_flags.items()}
        instead = {flag: why for flag, (_, why) in self.fixed_flags.items()}
        torch_options(type(self).__name__, options, defaults, instead)

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # PyTorch's way: a step of its own over a state of its own, no _rule to walk
        if "_own_step" not in cls.__dict__:  # (LBFGS: a step of its own over wxb's state)
            cls._own_step = cls._rule is Optimizer._rule and cls.step is not Optimizer.step
            # a subclass of one of wxb's (class MyLBFGS(LBFGS)) steps by its machinery
            # (its step was counted twice, once by the guard below)
            if any(_is_wxbs(b) and b._own_step is False for b in cls.__mro__[1:-1]):
                cls._own_step = False
        if cls._own_step and not getattr(cls.step, "guarded", False):  # (a mixin's too)
            cls.step = _own_step_guarded(cls.step)
        for name in _HOOK_TABLES:  # its own step (state_dict, load) runs the hooks too
            if name in cls.__dict__ and not getattr(cls.__dict__[name], "hooked", False):
                setattr(cls, name, _hooked(cls.__dict__[name]))
        # the group keys whose change is checked again at the next step (once per class,
        # not per step; a class attribute, so optimisers pickled before have it too)
        cls._watched = (*cls.hyperparameters, *cls.fixed_flags)

    def _values(self, group: dict) -> tuple:
        return tuple(map(group.get, self._watched))

    def _groups(self) -> list[dict]:
        """The groups, each checked again if its values changed since."""
        groups, bounds, params = self.param_groups, self._bounds, self.params
        keys = self._watched
        if len(groups) != len(bounds):
            raise self._edited_by_hand()
        checked = self._checked
        for index, group in enumerate(groups):
            start, stop = bounds[index]
            mine = group["params"]
            # the same Parameters, not only as many: a swapped one would not be stepped
            if len(mine) != stop - start or not all(map(operator.is_, mine, params[start:stop])):
                raise self._edited_by_hand()
            if tuple(map(group.get, keys)) != checked[index]:
                where = f"{type(self).__name__} param_groups[{index}]"
                self._refuse_scheduled_negative_rate(index, group, where)
                self._check_group(group, where)
                checked[index] = self._values(group)
        return groups

    def _refuse_scheduled_negative_rate(self, index: int, group: dict, where: str) -> None:
        """A rate below 0 that a schedule set, refused naming that schedule (in a
        SequentialLR or a chain of three, the lr alone did not tell which)."""
        source = self.__dict__.get("_negative_rate_sources", {}).get(index)
        lr = group.get("lr")
        if source is not None and isinstance(lr, (int, float)) and lr < 0:
            raise ConfigError(f"{where} lr must be ≥ 0; got {lr!r}, set by {source[1]}")

    def _edited_by_hand(self) -> ConfigError:
        return ConfigError(
            f"{type(self).__name__}: parameters were added to, removed from or replaced "
            "in param_groups by hand; use add_param_group, or a new optimiser"
        )

    # -- state and the flat buffers ----------------------------------------------------------
    def _wanted_states(self) -> tuple[str, ...]:
        """The state the groups need now (SGD: a velocity once some group has momentum)."""
        return self._states_for(self.param_groups)

    def _states_for(self, groups: list[dict]) -> tuple[str, ...]:
        """The state groups with these values need."""
        return type(self).state_names

    def _state_started(self, state: str, counts: dict[str, list[int]]) -> bool:
        """Whether a saved run with these counters had begun ``state`` (one it had
        not begun may be absent: the next step starts it)."""
        return True

    def _init_state(self) -> None:
        """Zeroed state for every parameter, then everything packed flat."""
        self.state_names = self._wanted_states()
        for state in self.state_names:
            setattr(self, state, [np.zeros_like(p.data) for p in self.params])
        self._pack()

    def _ensure_states(self) -> None:
        """Zeroed state for what a group's changed values now need (kept once made)."""
        missing = [s for s in self._wanted_states() if s not in self.state_names]
        if missing:
            for state in missing:
                setattr(self, state, [np.zeros_like(p.data) for p in self.params])
            self.state_names = (*self.state_names, *missing)
            self._pack()

    def _pack(self) -> None:
        """(Re)gather parameters and state into flat buffers, keeping their values.

        Runs at construction and again when a ``p.data`` was replaced (``model.to``
        casts: the state is cast with it, so training continues where it was). The
        groups lie one after another in the one buffer, each a contiguous stretch.
        """
        hook, self.before_repack = getattr(self, "before_repack", None), None
        if hook is not None:
            hook()
        self._scratch = {}
        self._check_state_shapes()
        if not FlatParameters.possible(self.params):
            self.flat, self._flat_state = None, {}
            for state in self.state_names:  # one array per parameter, in its dtype
                arrays = getattr(self, state)
                cast = [a.astype(p.dtype) for a, p in zip(arrays, self.params, strict=True)]
                setattr(self, state, cast)
            return
        self.flat = FlatParameters(self.params, gather=self.gathers)
        self._flat_state = {}
        for state in self.state_names:
            flat_state = np.empty_like(self.flat.grad)
            views = self.flat.split(flat_state, self.params)
            for view, array in zip(views, getattr(self, state), strict=True):
                np.copyto(view, array, casting="unsafe")
            self._flat_state[state] = flat_state
            setattr(self, state, views)

    def _check_state_shapes(self) -> None:
        """PyTorch refuses a step whose state has a parameter's old shape (its .data given
        another); copied into the new shape, the old state would be broadcast."""
        for state in self.state_names:
            for i, (a, p) in enumerate(zip(getattr(self, state), self.params, strict=True)):
                if a.shape != p.shape:
                    raise ConfigError(
                        f"{type(self).__name__}: parameter {i} is {p.shape} now but its "
                        f"{state} state is {a.shape} (its .data was given another shape "
                        "after the optimiser was made); make a new optimiser for it"
                    )

    def _follow_params(self) -> None:
        """Gather the buffers again if the parameters changed since they were packed."""
        if self.flat is not None and not self.flat.intact(self.params):
            self._pack()  # a cast or an assigned p.data since the last step
        elif self.flat is None and FlatParameters.possible(self.params):
            self._pack()  # the dtypes were mixed and now agree
        elif self.flat is None:  # one array per parameter: each state in its dtype
            self._check_state_shapes()
            for state in self.state_names:
                arrays = getattr(self, state)
                for i, p in enumerate(self.params):
                    if arrays[i].dtype != p.dtype:
                        arrays[i] = arrays[i].astype(p.dtype)

    def grad_buffers(self) -> list[np.ndarray] | None:
        """Views of the flat gradient buffer, one per parameter, for a step to write into."""
        if self.flat is not None and not self.flat.intact(self.params):
            self._pack()
        return None if self.flat is None else self.flat.grad_views

    def use_state_buffers(self, buffers: dict[str, np.ndarray]) -> None:
        """Each state's flat values move into the given buffer (shared memory)."""
        for name, buffer in buffers.items():
            np.copyto(buffer, self._flat_state[name])
            self._flat_state[name] = buffer
            setattr(self, name, self.flat.split(buffer, self.params))

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (PyTorch's default), or with ``set_to_none=False`` zero them."""
        forget_gradients(self.params, set_to_none)

    @property
    def state(self) -> dict[Parameter, dict]:
        """PyTorch's ``optimizer.state``: for each parameter stepped so far, its step
        count(s) and state arrays (under ``state_dict()``'s names; the arrays themselves).
        Forgetting an entry (``del``, ``pop``, ``= {}``, ``clear()``) starts that parameter
        again, as PyTorch's next step does (see ``_State``). A step of one's own (PyTorch's
        way) gets PyTorch's plain ``defaultdict(dict)`` to keep its state in."""
        if self._own_step:
            return self.__dict__.setdefault("_own_state", defaultdict(dict))
        state = {p: _ParamState(self, i) for i, p in enumerate(self.params) if self._has_state(i)}
        return _State(self, state)

    def _state_arrays(self, i: int) -> dict[str, np.ndarray]:
        """Parameter ``i``'s state arrays by name (views of the flat buffers)."""
        return {s: getattr(self, s)[i] for s in self.state_names}

    def state_shape(self, name: str, i: int) -> tuple | None:
        """The shape of state ``name`` of parameter ``i`` (None: it keeps no such state)."""
        return tuple(self.params[i].shape)

    def _state_written(self, name: str, i: int) -> None:
        """State ``name`` of parameter ``i`` was set by hand (``state[p][name] = …``)."""

    def _counter_value(self, counter: str, value: object, where: str, loaded: bool = False):
        """A counter's value from a state dict (``loaded``: a whole number as saved) or set
        by hand (PyTorch's 0-d float tensor taken too)."""
        return _count_value(value, where) if loaded else _whole_count(value, where)

    def _has_state(self, i: int) -> bool:
        """Whether parameter ``i`` has an entry in ``state``: stepped, or one set by hand."""
        return bool(self.param_steps[i]) or i in self.__dict__.get("_written", ())

    @state.setter
    def state(self, value: object) -> None:
        """``optimizer.state = defaultdict(dict)``, PyTorch's reset: every count and
        moment starts again from zero (an attribute of its own would change nothing)."""
        if self._own_step and isinstance(value, Mapping):  # its own step's, as PyTorch's
            self.__dict__["_own_state"] = defaultdict(dict, value)
            return
        if not isinstance(value, Mapping) or len(value):
            raise ConfigError(
                f"{type(self).__name__}.state = …: only an empty mapping may be assigned "
                "(PyTorch's reset, defaultdict(dict)); a saved state goes in with "
                "load_state_dict"
            )
        self._restart(range(len(self.params)))

    def _restart(self, indices: Iterable[int]) -> None:
        """Parameters ``indices`` start again: counts and state at zero, as the state
        PyTorch makes at a parameter's first step."""
        for i in indices:
            self.__dict__.get("_written", set()).discard(i)
            self.__dict__.get("_begun", {}).pop(i, None)
            for counter in self.counters:
                getattr(self, counter)[i] = self.counter_starts.get(counter, 0)
            for s in self.state_names:
                getattr(self, s)[i][...] = 0

    # -- state: save and restore ------------------------------------------------------------
    @_hooked
    def state_dict(self) -> dict:
        """Everything the next step depends on, as PyTorch lays it out: ``state`` maps each
        parameter's index to its counters (step counts, NAdam's mu_product) and state arrays
        (copies: velocity, Adam's moment1/moment2, …), ``param_groups`` holds each group's
        hyperparameters with ``params`` as indices. Plain Python values and NumPy arrays,
        no objects."""
        state = {}
        own = self.state if self._own_step else None
        for i in range(len(self.params)):
            if own is not None:  # a step of its own: its entries as it wrote them, copied
                if self.params[i] in own:
                    state[i] = copy.deepcopy(dict(own[self.params[i]]))
                continue
            entry: dict = {COUNTER_KEYS[c]: getattr(self, c)[i] for c in self.counters}
            entry.update({s: np.array(getattr(self, s)[i], copy=True) for s in self.state_names})
            state[i] = entry
        groups = []
        for group, (start, stop) in zip(self.param_groups, self._bounds, strict=True):
            values = {k: v for k, v in group.items() if k != "params"}
            groups.append({**values, "params": list(range(start, stop))})
        return {"state": state, "param_groups": groups, "steps": self.steps}

    @_hooked
    def load_state_dict(self, state_dict: dict) -> None:
        """Continue from ``state_dict()`` of an optimiser of the same kind over parameters of
        the same shapes, grouped the same way. Checked whole before anything changes."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= state_dict.keys():
            raise ConfigError(f"{name}.load_state_dict takes a dict from state_dict()")
        unknown = set(state_dict) - {"state", "param_groups", "steps"}
        if unknown:
            raise ConfigError(f"{name}.load_state_dict: unknown entries {sorted(unknown)}")
        groups, state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(groups, list) or len(groups) != len(self.param_groups):
            raise ConfigError(
                f"{name}.load_state_dict: the state has {_count(groups)} parameter groups; "
                f"this optimiser has {len(self.param_groups)}"
            )
        checked = []
        for index, (group, (start, stop)) in enumerate(zip(groups, self._bounds, strict=True)):
            where = f"{name}.load_state_dict param_groups[{index}]"
            if not isinstance(group, dict) or list(group.get("params", ())) != list(
                range(start, stop)
            ):
                raise ConfigError(
                    f"{where}: its parameters are not this group's "
                    f"({stop - start} parameters, indices {start}..{stop - 1})"
                )
            # Keys beyond the hyperparameters (a group's "name", …) come back as they are,
            # as PyTorch keeps them.
            values = {k: v for k, v in group.items() if k != "params"}
            for key, value in self.saved_defaults.items():
                values.setdefault(key, value)  # (after the saved keys, in their order)
            self._check_group(values, where)
            if "initial_lr" in values:
                values["initial_lr"] = _non_negative(values["initial_lr"], f"{where} initial_lr")
            checked.append(values)
        if not isinstance(state, dict):
            raise ConfigError(f"{name}.load_state_dict: 'state' must map indices to dicts")
        indices = {str(i) for i in range(len(self.params))}
        extra = sorted(str(k) for k in state if str(k) not in indices)
        if extra:
            raise ConfigError(
                f"{name}.load_state_dict: state for parameters {extra[:5]} it does not have "
                f"({len(self.params)} parameters)"
            )
        if self._own_step:  # its own step's entries, whatever they hold, as PyTorch's
            self._load_own_state(state, checked)
            self.steps = _count_value(state_dict.get("steps", 0), f"{name}.load_state_dict steps")
            self._set_loaded_state()
            return
        # PyTorch's state, told before a missing entry: it has none for a parameter not
        # stepped yet, and none at all before the first step (it said 'state[0]: missing')
        torch_entry = next((k for k, e in state.items() if self._torch_entry(e)), None)
        if torch_entry is not None or not state:
            what = (
                f"state[{torch_entry}]: a PyTorch optimiser's state "
                f"({', '.join(map(repr, state[torch_entry]))}, torch tensors)"
                if torch_entry is not None
                else "the state is empty (PyTorch's before its first step; wxb's holds each "
                "parameter's)"
            )
            raise ConfigError(
                f"{name}.load_state_dict {what}; {name}.load_state_dict takes what "
                f"{name}.state_dict() gives (PyTorch's: wxb.interop.optimizer_from_torch("
                "torch_opt, optimizer))"
            )
        keys = {COUNTER_KEYS[c] for c in self.counters}
        arrays: dict[str, list] = {}
        counts: dict[str, list[int]] = {c: [] for c in self.counters}
        for i, p in enumerate(self.params):
            entry = state.get(i, state.get(str(i)))
            where = f"{name}.load_state_dict state[{i}]"
            if not isinstance(entry, dict):
                raise ConfigError(f"{where}: missing (parameter of shape {p.shape})")
            for counter in self.counters:
                value = entry.get(COUNTER_KEYS[counter])
                counts[counter].append(self._counter_value(counter, value, where, loaded=True))
            for key, value in entry.items():
                if key in keys:
                    continue
                if key not in self.possible_states:
                    raise ConfigError(f"{where}: unknown state {key!r}")
                value = np.asarray(value)
                if value.shape != p.shape or value.dtype.kind != "f":
                    raise ConfigError(
                        f"{where} {key}: shape {value.shape} {value.dtype}; the parameter "
                        f"is {p.shape} {p.dtype}"
                    )
                arrays.setdefault(key, []).append(value)
        for key, values in arrays.items():
            if len(values) != len(self.params):
                raise ConfigError(f"{name}.load_state_dict: {key!r} is missing for some parameters")
        steps = _count_value(state_dict.get("steps", 0), f"{name}.load_state_dict steps")
        for s in self._states_for(checked):
            if s not in arrays and self._state_started(s, counts):
                raise ConfigError(f"{name}.load_state_dict: the state has no {s!r}")
        for s in self.state_names:  # kept here, not needed by the loaded groups: from zero
            if s not in arrays:  # (SGD saved without momentum, as PyTorch's no buffer)
                arrays[s] = [np.zeros_like(p.data) for p in self.params]
        # Checked: now change.
        for group, values in zip(self.param_groups, checked, strict=True):
            _replace_group(group, values)
        self._checked = [self._values(g) for g in self.param_groups]
        for counter, values in counts.items():
            setattr(self, counter, values)
        self.__dict__.pop("_written", None)  # (entries set by hand: the loaded state's now)
        self.__dict__.pop("_begun", None)
        # a parameter loaded with a state of its own (not the zeros of one never stepped,
        # which state_dict() writes too) has it, at a count of 0 too, as PyTorch's state[p]
        # after load_state_dict (read as {}, an entry then set by hand was a state begun
        # in part, and its step refused)
        loaded = {
            i
            for i in range(len(self.params))
            if any(values[i] != self.counter_starts.get(c, 0) for c, values in counts.items())
            or any(np.any(arrays[s][i]) for s in arrays if s in self.state_names)
        }
        if loaded:
            self.__dict__["_written"] = loaded
        self.steps = steps
        self._loads = getattr(self, "_loads", 0) + 1  # (an optimiser pickled before had none)
        missing = [s for s in arrays if s not in self.state_names]
        if missing:  # SGD's velocity, made by the saved run's momentum
            for s in missing:
                setattr(self, s, [np.zeros_like(p.data) for p in self.params])
            self.state_names = (*self.state_names, *missing)
            self._pack()
        self._follow_params()  # a model cast since: the state loads in the new dtype
        for s in self.state_names:
            for target, value in zip(getattr(self, s), arrays[s], strict=True):
                np.copyto(target, value, casting="same_kind")
        self._set_loaded_state()

    def _set_loaded_state(self) -> None:
        """As PyTorch's load_state_dict ends: ``__setstate__`` with the loaded state and
        groups, where a subclass's own sets a key the saved groups lack (saved before it
        existed: ``group.setdefault("nesterov", False)``)."""
        if type(self).__setstate__ is not Optimizer.__setstate__:
            self.__setstate__({"state": self.state, "param_groups": self.param_groups})
            self._checked = [self._values(g) for g in self.param_groups]

    def _load_own_state(self, state: dict, checked: list[dict]) -> None:
        """A step of one's own: its groups' values and its entries (copies) by parameter."""
        entries = {}
        for i, p in enumerate(self.params):
            entry = state.get(i, state.get(str(i)))
            if entry is None:
                continue  # not stepped when saved (PyTorch's state has no entry either)
            if not isinstance(entry, Mapping):
                raise ConfigError(
                    f"{type(self).__name__}.load_state_dict state[{i}] must be a dict; "
                    f"got {type(entry).__name__}"
                )
            entry = copy.deepcopy(dict(entry))
            entries[p] = {k: _own_state_value(v, p.data.dtype, k) for k, v in entry.items()}
        for group, values in zip(self.param_groups, checked, strict=True):
            _replace_group(group, values)
        self._checked = [self._values(g) for g in self.param_groups]
        self.__dict__["_own_state"] = defaultdict(dict, entries)

    def _torch_entry(self, entry: object) -> bool:
        """A parameter's state as PyTorch's optimiser holds it: its names, or torch tensors
        (it said "a step count must be a whole number ≥ 0; got tensor(3.)")."""
        if not isinstance(entry, dict):
            return False
        return any(k in self.torch_names for k in entry) or any(
            is_torch_tensor(v) for v in entry.values()
        )

    # -- the update -------------------------------------------------------------------------
    def _advance(self, live: list[int], group: dict) -> list[int]:
        """Count this update of each parameter in ``live``; the ``t`` each is updated with."""
        steps = self.param_steps
        for i in live:
            steps[i] += 1
        return [steps[i] for i in live]

    @_hooked
    def step(self, closure: Callable[[], object] | None = None) -> object:
        """Update every parameter that has a gradient, group by group.

        A group whose parameters all have gradients and the same step count is updated
        in one walk over its stretch of the flat buffers; otherwise parameter by parameter.
        ``closure`` (PyTorch's): called first, with gradients on (it zeroes, computes the
        loss and runs backward), and its loss returned; without one, None.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        # (a predict in another thread: before or after; WEIGHTS.writing, spelt out)
        me = threading.get_ident()
        if not WEIGHTS.begin_writing(self.params, me):
            self._update_params()
            return loss
        try:
            self._update_params()
        finally:
            WEIGHTS.done_writing(me)
        return loss

    def _required(self, group: dict, written: set[str]) -> set[str]:
        """The entries PyTorch's step reads from a parameter's state in ``group`` once it
        has any (``written``, set by hand before a step: it must hold them all)."""
        return {*self.counters, *self._states_for([group])}

    def _check_begun(self, groups: list[dict]) -> None:
        """A state begun by hand (``state[p]['exp_avg'] = …`` before any step) must be
        whole: PyTorch's step raises KeyError at a missing entry; here the zeros in its
        place gave a step thousands of times too large (m̂ = m/(1 − β₁) over √v̂ of one
        gradient), or a too small or NaN one, without a word."""
        begun = self.__dict__.get("_begun")
        if not begun:
            return
        named = {v: k for k, v in self.torch_names.items()}
        named.update(COUNTER_KEYS)
        for group, (start, stop) in zip(groups, self._bounds, strict=True):
            for i in range(start, stop):
                if i not in begun or self.params[i].grad is None:
                    continue
                missing = sorted(self._required(group, begun[i]) - begun[i])
                if missing:
                    p = self.params[i]
                    raise ConfigError(
                        f"{type(self).__name__}.step: the state of parameter {i} "
                        f"({p.name or 'unnamed'}, shape {p.data.shape}) was set by hand "
                        f"without {', '.join(repr(named.get(m, m)) for m in missing)} (it has "
                        f"{', '.join(repr(named.get(m, m)) for m in sorted(begun[i]))}); set "
                        "every entry, or none (del optimizer.state[p] starts it from zero)"
                    )
        for i in [i for i in begun if self.params[i].grad is not None]:
            del begun[i]  # whole: stepped from now on as any other

    def _each_whole_param(self) -> Iterator[tuple[dict, int, Parameter, np.ndarray]]:
        """Begin a step of an optimiser that updates each parameter whole (Adafactor,
        Muon), and give (group, index, parameter, gradient in its dtype) for every one
        holding a gradient; one without is skipped, its state unchanged, as PyTorch's."""
        groups = self._groups()
        self._check_begun(groups)
        self.steps += 1
        self._follow_params()
        params = self.params
        for group, (start, stop) in zip(groups, self._bounds, strict=True):
            for i in range(start, stop):
                p = params[i]
                if p.grad is None:
                    continue
                _check_grad_shape(p, i)
                _make_steppable(p)
                p._versions[0] += 1  # graphs recorded before may not run backward after it
                grad = p.grad
                if type(grad) is not np.ndarray or grad.dtype != p.data.dtype:
                    grad = np.asarray(grad).astype(p.data.dtype, casting="same_kind")
                yield group, i, p, grad

    def _update_params(self) -> None:
        groups = self._groups()
        self._check_begun(groups)
        self.steps += 1
        self._follow_params()
        if self._wanted_states() != self.state_names:
            self._ensure_states()
        flat, params = self.flat, self.params
        for group, (start, stop) in zip(groups, self._bounds, strict=True):
            # As PyTorch: every parameter with a gradient is stepped, a frozen one that
            # still holds a gradient included (its weight decay and momentum act).
            mine = params[start:stop]
            grads = [p.grad for p in mine]
            # the planned step's case, one test: every gradient already where the walk reads it
            in_place = flat is not None and all(
                map(operator.is_, grads, flat.grad_views[start:stop])
            )
            if in_place:
                live = list(range(start, stop))
            else:
                live = [i for i, g in zip(range(start, stop), grads, strict=True) if g is not None]
            del grads  # a reference to a view here would count as a holder (ensure_free)
            if not live:
                continue
            for i in live:  # graphs recorded before this update may not run backward after it
                params[i]._versions[0] += 1  # (its _version, without the property's call)
            clocks = self._advance(live, group)
            if flat is not None and len(live) == stop - start and min(clocks) == max(clocks):
                # One update over the group's stretch: gradients not already in place are copied.
                if not in_place:
                    flat.ensure_free()  # a kept gradient must not be written over
                    views = flat.grad_views
                    for i in live:
                        if params[i].grad is not views[i]:
                            _check_grad_shape(params[i], i)
                            np.copyto(views[i], params[i].grad, casting="same_kind")
                    del views
                a, b = flat.offsets[start], flat.offsets[stop]
                if self.shard is not None and self.shard[2] is flat.data:
                    a, b = max(a, self.shard[0]), min(b, self.shard[1])  # this rank's part
                    if a >= b:
                        continue
                self._walk_stretch(flat, a, b, clocks[0], group)
                continue
            if self.shard is not None and flat is not None and self.shard[2] is flat.data:
                self._step_shard(live, clocks, group)  # another rank updates the rest
                continue
            for i, t in zip(live, clocks, strict=True):  # one by one
                p = params[i]
                _check_grad_shape(p, i)
                _make_steppable(p)
                for s in self.state_names:  # the model was cast: keep the state, in its dtype
                    if getattr(self, s)[i].dtype != p.dtype:
                        getattr(self, s)[i] = getattr(self, s)[i].astype(p.dtype)
                states = [getattr(self, s)[i] for s in self.state_names]
                grad = p.grad  # one set by hand may be a float, or of another dtype:
                if type(grad) is not np.ndarray or grad.dtype != p.data.dtype:  # cast as the
                    grad = np.asarray(grad).astype(p.data.dtype, casting="same_kind")  # flat path
                self._walk(p.data, grad, states, t, group)

    def _step_shard(self, live: list[int], clocks: list[int], group: dict) -> None:
        """One by one, the part of each parameter in ``live`` that lies in this rank's
        slice of weights the ranks share (a group of which some have no gradient, or
        whose step counts differ: a layer frozen during the run)."""
        flat, (lo, hi, data) = self.flat, self.shard
        states = [self._flat_state[s] for s in self.state_names]
        for i, t in zip(live, clocks, strict=True):
            a, b = max(flat.offsets[i], lo), min(flat.offsets[i + 1], hi)
            if a >= b:
                continue
            if self.params[i].grad is not flat.grad_views[i]:
                _check_grad_shape(self.params[i], i)
                np.copyto(flat.grad_views[i], self.params[i].grad, casting="same_kind")
            self._walk_flat([data[a:b], flat.grad[a:b], *(x[a:b] for x in states)], t, group)

    def _walk_stretch(self, flat: FlatParameters, a: int, b: int, t: int, h: dict) -> None:
        """``_walk`` over the stretch ``a:b`` of the flat layout, run by run.

        The pieces (the values, gradients and states of each run, sliced) are cut once and
        kept while the buffers they view stay the ones in use: a step then makes no views
        and decides nothing again (at small sizes that Python was a third of the update).
        """
        states = [self._flat_state[s] for s in self.state_names]
        rule = type(self)._rule
        compiled = kernels.loaded()
        # identities, not values: a buffer replaced (shared memory) or a kernel route
        # switched cuts the pieces again; the flat layout owns its cache. The gradient is
        # sliced per step: a kept view of it would count as a holder (ensure_free).
        route = compiled is not None
        key = (flat.data, flat.runs, rule, route, self.threaded_from, *states)
        known = flat.walks.get((a, b))
        if known is None or len(known[0]) != len(key) or not all(map(_same, known[0], key)):
            known = (key, self._pieces(flat, a, b, states, route))
            flat.walks[(a, b)] = known
        grad = flat.grad
        # a stock rule's loop called straight with its scalars: the pieces' arrays were
        # checked when cut (the wrapper's checks, its key and the group's lookups per piece
        # were a third of the update's Python at tiny sizes)
        loop = self._direct(compiled, h, t, flat.dtype) if route else None
        for lo, hi, memory, mine, direct in known[1]:
            if direct:  # a compiled one-pass rule on a size that takes no threads: one call
                empty = memory[:0]
                if loop is None:
                    self._rule(memory, grad[lo:hi], mine, t, empty, empty, h)
                else:
                    function, used, scalars = loop
                    if used:
                        function(memory, grad[lo:hi], *mine[:used], empty, empty, *scalars)
                    else:  # SGD without momentum: the loop reads no velocity
                        function(memory, grad[lo:hi], empty, empty, empty, *scalars)
            elif memory is None:  # one parameter, not contiguous: in its own shape
                i = lo
                mine = [getattr(self, s)[i] for s in self.state_names]
                self._walk(flat.views[i], flat.grad_views[i], mine, t, h)
            else:
                self._walk_flat([memory, grad[lo:hi], *mine], t, h)

    def _direct(self, compiled: object, h: dict, t: int, dtype: np.dtype) -> tuple | None:
        """For a stock compiled rule: its loop, how many states it reads, and its scalars
        for group ``h`` at update ``t`` (what ``_rule`` would pass); else None."""
        return None

    def _pieces(
        self, flat: FlatParameters, a: int, b: int, states: list[np.ndarray], route: bool
    ) -> list[tuple]:
        """The stretch ``a:b`` cut at the runs: each piece's bounds in the layout, its
        values and states (None for a parameter stepped in its own shape, whose index is
        then the first bound), and whether it is one compiled call (what ``_walk_flat``
        would decide for it)."""
        one_pass, start_threads = self._passes(route)
        pieces: list[tuple] = []
        for run in flat.runs:
            lo, hi = max(run.start, a), min(run.stop, b)
            if lo >= hi:
                continue
            if run.shaped:
                pieces.append((run.first, None, None, None, False))
                continue
            memory = run.memory[lo - run.start : hi - run.start]
            mine = [x[lo:hi] for x in states]
            direct = (
                one_pass
                and hi - lo < start_threads
                and kernels.compiled_takes(memory, flat.grad[lo:hi], *mine)
            )
            pieces.append((lo, hi, memory, mine, direct))
        return pieces

    def _passes(self, route: bool) -> tuple[bool, int]:
        """Whether the rule is one compiled pass on this kernel route, and the size from
        which a walk takes threads. A subclass's own _rule keeps the chunks and the scratch
        of its chunk's shape; a compiled rule is one pass, bound by memory: threads pay only
        on large arrays (2-core machine: Adam from about 2M elements; SGD never gained)."""
        one_pass = getattr(type(self)._rule, "calls_kernel", False) and route
        return one_pass, max(self.threaded_from, 1 << 21) if one_pass else self.threaded_from

    def _walk(self, data: np.ndarray, grad: np.ndarray, states: list, t: int, h: dict) -> None:
        """Apply ``_rule`` in cache-sized chunks (in one pass where the rule is a compiled
        kernel's); large arrays are split across threads."""
        arrays = [data, grad, *states]
        if not all(a.flags.c_contiguous for a in arrays):  # an odd user array: in one piece
            self._rule(data, grad, states, t, *self._scratch_for(0, data.shape, data.dtype), h)
            return
        self._walk_flat([a.reshape(-1) for a in arrays], t, h)

    def _walk_flat(self, flat: list[np.ndarray], t: int, h: dict) -> None:
        """``_walk`` over 1-D contiguous arrays of one size: data, grad, then the states."""
        size = flat[0].size
        one_pass, start_threads = self._passes(kernels.one_pass())
        if one_pass and size < start_threads and kernels.compiled_takes(*flat):
            unused = flat[0][:0]  # most walks: one call, kept short; the loop takes no scratch
            self._rule(flat[0], flat[1], flat[2:], t, unused, unused, h)
            return
        threads = update_threads() if size >= start_threads else 1
        if threads == 1:
            self._walk_range(flat, t, h, 0, size, 0, one_pass)
            return
        bounds = [size * k // threads for k in range(threads + 1)]
        pending = [
            _thread_pool().submit(
                self._walk_range, flat, t, h, bounds[k], bounds[k + 1], k, one_pass
            )
            for k in range(1, threads)
        ]
        self._walk_range(flat, t, h, bounds[0], bounds[1], 0, one_pass)
        for job in pending:
            job.result()

    def _walk_range(
        self, flat: list, t: int, h: dict, start: int, stop: int, worker: int, one_pass: bool
    ) -> None:
        s1, s2 = self._scratch_for(worker, (min(CHUNK, stop - start),), flat[0].dtype)
        if one_pass:  # a compiled kernel: one pass over the range, the scratch unused
            data, grad, *states = (x[start:stop] for x in flat)
            self._rule(data, grad, states, t, s1, s2, h)
            return
        for a in range(start, stop, CHUNK):  # NumPy's passes: cache-sized chunks
            b = min(a + CHUNK, stop)
            data, grad, *states = (x[a:b] for x in flat)
            self._rule(data, grad, states, t, s1[: b - a], s2[: b - a], h)

    def _scratch_for(self, worker: int, shape: tuple, dtype: np.dtype) -> tuple:
        """Two scratch arrays per worker, grown when needed, never per step."""
        size = math.prod(shape)
        s = self._scratch.get(worker)
        if s is None or s[0].dtype != dtype or s[0].size < size:
            s = self._scratch[worker] = (np.empty(size, dtype), np.empty(size, dtype))
        return s[0][:size].reshape(shape), s[1][:size].reshape(shape)

    def _rule(
        self,
        data: np.ndarray,
        grad: np.ndarray,
        states: list,
        t: int,
        s1: np.ndarray,
        s2: np.ndarray,
        h: dict,
    ) -> None:
        """Update ``data`` in place from ``grad`` with group ``h``'s hyperparameters;
        ``t`` is this update's number (1, 2, …)."""
        raise NotImplementedError


def _like(current: object, value: object, what: str) -> object:
    """A saved setting of the same kind as the one it replaces (a tuple comes back from
    JSON as a list, and is made a tuple again)."""
    if isinstance(current, (bool, np.bool_)):
        ok = isinstance(value, (bool, np.bool_))
    elif isinstance(current, (int, np.integer)):
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    elif isinstance(current, (float, np.floating)):
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
            value, (bool, np.bool_)
        )
        value = float(value) if ok else value
    elif isinstance(current, (tuple, list)):
        ok = isinstance(value, (tuple, list))
        value = type(current)(value) if ok else value
    elif current is None or isinstance(current, str):
        ok = value is None or isinstance(value, (str, int, float, bool, list))
    else:
        ok = True
    if not ok:
        raise ConfigError(f"{what} must be like {current!r}; got {value!r}")
    return value


def _count(value: object) -> object:
    return len(value) if isinstance(value, list) else repr(value)


def _zero_d_value(value: object) -> object:
    """A 0-d tensor (torch's, wxb's) or 0-d array as its number, as torch's optimisers
    and schedulers take ``lr=torch.tensor(0.01)`` or ``step(torch.tensor(5))``."""
    if getattr(value, "ndim", None) == 0 and (
        isinstance(value, (Tensor, np.ndarray)) or is_torch_tensor(value)
    ):
        return (value.data if isinstance(value, Tensor) else value).item()
    return value


def _count_value(value: object, what: str) -> int:
    """A step count from a state dict: a whole number ≥ 0."""
    value = _zero_d_value(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"{what}: a step count must be a whole number ≥ 0; got {value!r}")
    return int(value)


def check_adam_group(group: dict, where: str) -> None:
    """Adam's settings in a group: two betas in [0, 1), eps and weight_decay ≥ 0."""
    betas = group.get("betas")
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise ConfigError(f"{where} betas must be two numbers in [0, 1); got {betas!r}")
    group["betas"] = tuple(_fraction(b, f"{where} betas", one=False) for b in betas)
    group["eps"] = _non_negative(group.get("eps"), f"{where} eps")
    group["weight_decay"] = _non_negative(group.get("weight_decay"), f"{where} weight_decay")


def calls_kernel(rule):
    """Marks a ``_rule`` that only calls a wxb.kernels update: element-wise, so it may run
    over a whole range in one pass (compiled) instead of cache-sized chunks."""
    rule.calls_kernel = True
    return rule


def _positive_number(value: object, what: str) -> float:
    value = _number(_zero_d_value(value), what)
    if not value > 0 or not math.isfinite(value):
        raise ConfigError(f"{what} must be > 0; got {value}")
    return value


def _non_negative(value: object, what: str) -> float:
    value = _number(_zero_d_value(value), what)
    if not value >= 0 or not math.isfinite(value):
        raise ConfigError(f"{what} must be ≥ 0 and finite; got {value}")
    return value


def _fraction(value: object, what: str, *, one: bool) -> float:
    """A number in [0, 1], or in [0, 1) when ``one`` is False."""
    value = _number(_zero_d_value(value), what)
    if not (0 <= value <= 1 if one else 0 <= value < 1):
        raise ConfigError(f"{what} must be in [0, 1{']' if one else ')'}; got {value}")
    return value


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{what} must be a positive integer; got {value!r}")
    if value < 1:
        raise ConfigError(f"{what} must be a positive integer; got {value}")
    return int(value)


Optimizer._watched = (*Optimizer.hyperparameters, *Optimizer.fixed_flags)


class SGD(Optimizer):
    """W ← W − η·g, with optional momentum (heavy-ball or Nesterov) and weight decay."""

    hyperparameters = ("lr", "momentum", "dampening", "nesterov", "weight_decay")
    saved_defaults: ClassVar[dict[str, object]] = {"nesterov": False}
    possible_states = ("velocity",)
    torch_names: ClassVar[dict[str, str]] = {"momentum_buffer": "velocity"}
    # momentum updates of each parameter: the first sets v = g (PyTorch's new momentum_buffer)
    counters = ("param_steps", "momentum_steps")
    momentum = _GroupValue()
    dampening = _GroupValue()
    nesterov = _GroupValue()
    weight_decay = _GroupValue()

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict],
        lr: float = 1e-3,  # PyTorch's default (fit's and wxb train's "sgd": NAMED_LRS)
        momentum: float = 0.0,
        *,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        **torch_only: object,
    ) -> None:
        self._torch_only(torch_only)
        super().__init__(
            params,
            lr,
            momentum=momentum,
            dampening=dampening,
            nesterov=nesterov,
            weight_decay=weight_decay,
        )

    def _check_group(self, group: dict, where: str) -> None:
        super()._check_group(group, where)
        group["momentum"] = _fraction(group.get("momentum"), f"{where} momentum", one=True)
        group["dampening"] = _fraction(group.get("dampening"), f"{where} dampening", one=True)
        group["weight_decay"] = _non_negative(group.get("weight_decay"), f"{where} weight_decay")
        nesterov = group.get("nesterov")
        if not isinstance(nesterov, (bool, np.bool_)):
            raise ConfigError(f"{where} nesterov must be True or False; got {nesterov!r}")
        group["nesterov"] = bool(nesterov)
        if nesterov and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ConfigError(
                f"{where}: Nesterov momentum needs momentum > 0 and dampening = 0; got "
                f"momentum {group['momentum']}, dampening {group['dampening']}"
            )

    def _wanted_states(self) -> tuple[str, ...]:
        if self.state_names:  # the velocity, once made, is kept
            return self.state_names
        return self._states_for(self.param_groups)

    def _states_for(self, groups: list[dict]) -> tuple[str, ...]:
        return ("velocity",) if any(g["momentum"] for g in groups) else ()

    def _state_started(self, state: str, counts: dict[str, list[int]]) -> bool:
        # momentum switched on and saved before a step: no velocity yet, as PyTorch's
        return any(counts["momentum_steps"])

    def _state_written(self, name: str, i: int) -> None:
        # a velocity given before the first momentum update is the one it goes on from,
        # as PyTorch's momentum_buffer (else that update would set v = g over it)
        if name == "velocity" and not self.momentum_steps[i]:
            self.momentum_steps[i] = 1

    def _required(self, group: dict, written: set[str]) -> set[str]:
        # PyTorch's SGD keeps only the buffer (none is a fresh start); a momentum count of
        # wxb's own set alone would make the first update v = μ·0 + (1 − d)·g, not v = g
        return {"velocity"} if group["momentum"] and "momentum_steps" in written else set()

    def _advance(self, live: list[int], group: dict) -> list[int]:
        steps = self.param_steps
        for i in live:
            steps[i] += 1
        if not group["momentum"]:
            return [0] * len(live)  # stateless: any walk gives the same result
        counts = self.momentum_steps
        for i in live:
            counts[i] += 1
        return [counts[i] for i in live]

    def _direct(self, compiled: object, h: dict, t: int, dtype: np.dtype) -> tuple | None:
        if type(self)._rule is not SGD._rule:
            return None
        scalars = kernels.sgd_scalars(
            dtype, h["lr"], h["momentum"], h["dampening"], h["nesterov"], h["weight_decay"], t == 1
        )
        return compiled.sgd, 1 if h["momentum"] else 0, scalars

    @calls_kernel
    def _rule(self, data, grad, states, t, s1, s2, h):
        kernels.sgd(
            data, grad, states[0] if h["momentum"] else None, s1, s2,
            lr=h["lr"], momentum=h["momentum"], dampening=h["dampening"],
            nesterov=h["nesterov"], weight_decay=h["weight_decay"], first=t == 1,
        )  # fmt: skip


class Adam(Optimizer):
    """Adam: bias-corrected first and second moments of g; L2 weight decay in the gradient."""

    decoupled = False
    state_names = possible_states = ("moment1", "moment2")
    torch_names: ClassVar[dict[str, str]] = {"exp_avg": "moment1", "exp_avg_sq": "moment2"}
    hyperparameters = ("lr", "betas", "eps", "weight_decay")
    fixed_flags: ClassVar[dict[str, tuple[bool, str]]] = {
        **Optimizer.fixed_flags,
        "amsgrad": (False, "AMSGrad is not implemented"),
        "decoupled_weight_decay": (False, "use AdamW for decoupled weight decay"),
    }
    threaded_from = 1 << 18
    betas = _GroupValue()
    eps = _GroupValue()
    weight_decay = _GroupValue()

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        **torch_only: object,
    ) -> None:
        self._torch_only(torch_only)
        super().__init__(params, lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _check_group(self, group: dict, where: str) -> None:
        super()._check_group(group, where)
        check_adam_group(group, where)

    def _direct(self, compiled: object, h: dict, t: int, dtype: np.dtype) -> tuple | None:
        if type(self)._rule is not Adam._rule:
            return None
        beta1, beta2 = h["betas"]
        scalars = kernels.adam_scalars(
            dtype, t, h["lr"], beta1, beta2, h["eps"], h["weight_decay"], self.decoupled
        )
        return compiled.adam, 2, scalars

    @calls_kernel
    def _rule(self, data, grad, states, t, s1, s2, h):
        beta1, beta2 = h["betas"]
        m, v = states
        kernels.adam(
            data, grad, m, v, s1, s2, t=t, lr=h["lr"], beta1=beta1, beta2=beta2,
            eps=h["eps"], weight_decay=h["weight_decay"], decoupled=self.decoupled,
        )  # fmt: skip


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter)."""

    decoupled = True
    fixed_flags: ClassVar[dict[str, tuple[bool, str]]] = {
        **Adam.fixed_flags,
        "decoupled_weight_decay": (True, "use Adam for L2 weight decay in the gradient"),
    }

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        **torch_only: object,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, **torch_only)


class RMSprop(Optimizer):
    """PyTorch's RMSprop: s ← α·s + (1 − α)·g², W ← W − η·g/(√s + ε); ``centered``
    divides by √(s − ḡ²) + ε instead (ḡ the running mean of g), ``momentum`` keeps a
    buffer b ← μ·b + g/(…) and steps by η·b; weight decay adds λ·W to g first. The
    buffers start at zero, as PyTorch's."""

    possible_states = ("square_avg", "momentum_buffer", "grad_avg")
    hyperparameters = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")
    saved_defaults: ClassVar[dict[str, object]] = {"momentum": 0, "centered": False}
    alpha = _GroupValue()
    eps = _GroupValue()
    weight_decay = _GroupValue()
    momentum = _GroupValue()
    centered = _GroupValue()

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        **torch_only: object,
    ) -> None:
        self._torch_only(torch_only)
        super().__init__(
            params, lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
            centered=centered,
        )  # fmt: skip

    def _check_group(self, group: dict, where: str) -> None:
        super()._check_group(group, where)
        group["alpha"] = _fraction(group.get("alpha"), f"{where} alpha", one=True)
        group["eps"] = _non_negative(group.get("eps"), f"{where} eps")
        group["weight_decay"] = _non_negative(group.get("weight_decay"), f"{where} weight_decay")
        group["momentum"] = _non_negative(group.get("momentum"), f"{where} momentum")
        centered = group.get("centered")
        if not isinstance(centered, (bool, np.bool_)):
            raise ConfigError(f"{where} centered must be True or False; got {centered!r}")
        group["centered"] = bool(centered)

    def _wanted_states(self) -> tuple[str, ...]:
        made = self.state_names  # a buffer, once made, is kept (as SGD's velocity)
        wanted = self._states_for(self.param_groups)
        return (*made, *(s for s in wanted if s not in made))

    def _states_for(self, groups: list[dict]) -> tuple[str, ...]:
        return (
            "square_avg",
            *(("momentum_buffer",) if any(g["momentum"] for g in groups) else ()),
            *(("grad_avg",) if any(g["centered"] for g in groups) else ()),
        )

    def _state_started(self, state: str, counts: dict[str, list[int]]) -> bool:
        # a buffer switched on (momentum, centered) since the last step is made at the next
        # one: a state saved in between holds none, and loads (its own state_dict did not)
        return state == "square_avg"

    def _rule(self, data, grad, states, t, s1, s2, h):
        state = dict(zip(self.state_names, states, strict=True))
        g = grad
        if h["weight_decay"]:  # g + λ·W, in the scratch: the gradient itself stays as it is
            g = np.multiply(data, h["weight_decay"], out=s2)
            g += grad
        square = state["square_avg"]
        square *= h["alpha"]
        # ((1 − α)·g)·g, PyTorch's addcmul order: g·g first overflowed where the scaled
        # term does not (|g| > 1.8e19 in float32), and 0·inf made α = 1 give NaN
        np.multiply(g, 1 - h["alpha"], out=s1)
        s1 *= g
        square += s1
        if h["centered"]:
            mean = state["grad_avg"]
            mean *= h["alpha"]
            mean += (1 - h["alpha"]) * g
            np.multiply(mean, mean, out=s1)
            np.subtract(square, s1, out=s1)
            np.sqrt(s1, out=s1)
        else:
            np.sqrt(square, out=s1)
        s1 += h["eps"]
        np.divide(g, s1, out=s1)  # g/(√s + ε)
        if h["momentum"]:
            buffer = state["momentum_buffer"]
            buffer *= h["momentum"]
            buffer += s1
            s1 = buffer
        data -= h["lr"] * s1


class Adagrad(Optimizer):
    """PyTorch's Adagrad: Σ ← Σ + g², W ← W − η_t·g/(√Σ + ε), η_t = η/(1 + (t − 1)·lr_decay)
    (t the parameter's update count); weight decay adds λ·W to g first. Σ starts at
    ``initial_accumulator_value`` (0 by default), as PyTorch's ``sum``; a parameter
    group's own value is its start (PyTorch's takes the constructor's for every group)."""

    state_names = possible_states = ("sum",)
    hyperparameters = ("lr", "lr_decay", "weight_decay", "eps", "initial_accumulator_value")
    lr_decay = _GroupValue()
    weight_decay = _GroupValue()
    eps = _GroupValue()

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        **torch_only: object,
    ) -> None:
        self._torch_only(torch_only)
        super().__init__(
            params, lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
            initial_accumulator_value=initial_accumulator_value,
        )  # fmt: skip

    def _check_group(self, group: dict, where: str) -> None:
        super()._check_group(group, where)
        for key in ("lr_decay", "weight_decay", "eps", "initial_accumulator_value"):
            group[key] = _non_negative(group.get(key), f"{where} {key}")

    def _init_state(self) -> None:
        super()._init_state()
        self._start_sums(0)

    def add_param_group(self, group: dict) -> None:
        start = len(self.params)
        super().add_param_group(group)
        self._start_sums(start)
        # PyTorch's makes these lazily, at their first step: no entry in state till then
        self.__dict__.setdefault("_lazy", set()).update(range(start, len(self.params)))

    def _has_state(self, i: int) -> bool:
        """PyTorch's Adagrad makes each parameter's state (step 0, ``sum``) at
        construction: ``state[p]["sum"]`` is there before a step (it was {}); one added by
        add_param_group, or reset, has none till its step, as PyTorch's."""
        return super()._has_state(i) or i not in self.__dict__.get("_lazy", ())

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self.__dict__.pop("_lazy", None)  # state_dict() holds every parameter's entry

    def _restart(self, indices: Iterable[int]) -> None:
        """As a reset (``optimizer.state = defaultdict(dict)``, ``del optimizer.state[p]``):
        Σ starts again at the initial value, as PyTorch's lazily made ``sum`` does (it was
        left at 0)."""
        indices = list(indices)
        self.__dict__.setdefault("_lazy", set()).update(indices)
        super()._restart(indices)
        for group, (first, stop) in zip(self.param_groups, self._bounds, strict=True):
            for i in indices:
                if first <= i < stop:
                    self.sum[i][...] = group["initial_accumulator_value"]

    def _required(self, group: dict, written: set[str]) -> set[str]:
        return set()  # PyTorch's Adagrad makes its whole state at construction

    def _start_sums(self, start: int) -> None:
        """Σ of the parameters from ``start`` on at their group's initial value."""
        for group, (first, stop) in zip(self.param_groups, self._bounds, strict=True):
            for i in range(max(first, start), stop):
                self.sum[i][...] = group["initial_accumulator_value"]

    def _rule(self, data, grad, states, t, s1, s2, h):
        (total,) = states
        g = grad
        if h["weight_decay"]:  # g + λ·W, in the scratch: the gradient itself stays as it is
            g = np.multiply(data, h["weight_decay"], out=s2)
            g += grad
        np.multiply(g, g, out=s1)
        total += s1
        np.sqrt(total, out=s1)
        s1 += h["eps"]
        np.divide(g, s1, out=s1)
        data -= h["lr"] / (1 + (t - 1) * h["lr_decay"]) * s1


def _decoupled_flag(group: dict, where: str) -> None:
    value = group.get("decoupled_weight_decay")
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{where} decoupled_weight_decay must be True or False; got {value!r}")
    group["decoupled_weight_decay"] = bool(value)


def _mu_product(value: object, where: str) -> float:
    """NAdam's μ product from a state dict or set by hand: a number in [0, 1] (PyTorch's
    0-d tensor taken)."""
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        value = value.item()
    value = _number(value, where)
    if not 0 <= value <= 1:
        raise ConfigError(f"{where}: mu_product must be in [0, 1]; got {value}")
    return value


class NAdam(Optimizer):
    """PyTorch's NAdam (Adam with Nesterov momentum, Dozat): μ_t = β₁·(1 − ½·0.96^(t·ψ))
    (ψ = ``momentum_decay``), Π_t = Π_{t−1}·μ_t, m and v as Adam's, then
    W ← W − η·(1 − μ_t)/(1 − Π_t)·g/d − η·μ_{t+1}/(1 − Π_t·μ_{t+1})·m/d with
    d = √(v/(1 − β₂ᵗ)) + ε. ``weight_decay`` adds λ·W to g, or with
    ``decoupled_weight_decay`` shrinks W by 1 − η·λ first (NAdamW). Π is kept per
    parameter (state ``mu_product``) and rounded in the parameter's dtype, as PyTorch's
    in its default dtype (float32 unless ``torch.set_default_dtype(torch.float64)``)."""

    state_names = possible_states = ("moment1", "moment2")
    torch_names: ClassVar[dict[str, str]] = {"exp_avg": "moment1", "exp_avg_sq": "moment2"}
    hyperparameters = (
        "lr", "betas", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay",
    )  # fmt: skip
    counters = ("param_steps", "mu_products")
    saved_defaults: ClassVar[dict[str, object]] = {"decoupled_weight_decay": False}
    counter_starts: ClassVar[dict[str, float]] = {"mu_products": 1.0}
    threaded_from = 1 << 18  # as Adam's: a dozen NumPy passes gain from threads early
    betas = _GroupValue()
    eps = _GroupValue()
    weight_decay = _GroupValue()
    momentum_decay = _GroupValue()

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        **torch_only: object,
    ) -> None:
        self._torch_only(torch_only)
        super().__init__(
            params, lr, betas=betas, eps=eps, weight_decay=weight_decay,
            momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
        )  # fmt: skip

    def _check_group(self, group: dict, where: str) -> None:
        super()._check_group(group, where)
        check_adam_group(group, where)
        group["momentum_decay"] = _non_negative(
            group.get("momentum_decay"), f"{where} momentum_decay"
        )
        _decoupled_flag(group, where)

    def _counter_value(self, counter: str, value: object, where: str, loaded: bool = False):
        if counter == "mu_products":
            return _mu_product(value, where)
        return super()._counter_value(counter, value, where, loaded)

    @staticmethod
    def _mu(beta1: float, momentum_decay: float, t: int) -> float:
        return beta1 * (1.0 - 0.5 * (0.96 ** (t * momentum_decay)))

    def _advance(self, live: list[int], group: dict) -> list[int]:
        # the clock of each parameter is (t, Π_t): one walk takes the parameters that agree
        steps, products, params = self.param_steps, self.mu_products, self.params
        beta1, decay = group["betas"][0], group["momentum_decay"]
        clocks = []
        for i in live:
            steps[i] += 1
            kind = params[i].data.dtype.type  # PyTorch's Π is a 0-d tensor: mu_product *= μ
            products[i] = float(kind(products[i]) * kind(self._mu(beta1, decay, steps[i])))
            clocks.append((steps[i], products[i]))
        return clocks

    @calls_kernel
    def _rule(self, data, grad, states, t, s1, s2, h):
        step, product = t
        beta1, beta2 = h["betas"]
        m, v = states
        kernels.nadam(
            data, grad, m, v, s1, s2, t=step, product=product,
            mu=self._mu(beta1, h["momentum_decay"], step),
            mu_next=self._mu(beta1, h["momentum_decay"], step + 1),
            lr=h["lr"], beta1=beta1, beta2=beta2, eps=h["eps"],
            weight_decay=h["weight_decay"], decoupled=h["decoupled_weight_decay"],
        )  # fmt: skip


class RAdam(Optimizer):
    """PyTorch's RAdam (Liu et al.): m and v as Adam's, m̂ = m/(1 − β₁ᵗ); with
    ρ_∞ = 2/(1 − β₂) − 1 and ρ_t = ρ_∞ − 2t·β₂ᵗ/(1 − β₂ᵗ), where ρ_t > 5 the step is
    rectified, W ← W − η·m̂·√(1 − β₂ᵗ)/(√v + ε)·r_t,
    r_t = √((ρ_t − 4)(ρ_t − 2)ρ_∞/((ρ_∞ − 4)(ρ_∞ − 2)ρ_t)); else W ← W − η·m̂ (SGD with
    momentum, the first steps). ``weight_decay`` adds λ·W to g, or with
    ``decoupled_weight_decay`` shrinks W by 1 − η·λ first (RAdamW)."""

    state_names = possible_states = ("moment1", "moment2")
    torch_names: ClassVar[dict[str, str]] = {"exp_avg": "moment1", "exp_avg_sq": "moment2"}
    hyperparameters = ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay")
    saved_defaults: ClassVar[dict[str, object]] = {"decoupled_weight_decay": False}
    threaded_from = 1 << 18  # as Adam's
    betas = _GroupValue()
    eps = _GroupValue()
    weight_decay = _GroupValue()

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        **torch_only: object,
    ) -> None:
        self._torch_only(torch_only)
        super().__init__(
            params, lr, betas=betas, eps=eps, weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
        )  # fmt: skip

    def _check_group(self, group: dict, where: str) -> None:
        super()._check_group(group, where)
        check_adam_group(group, where)
        _decoupled_flag(group, where)

    @calls_kernel
    def _rule(self, data, grad, states, t, s1, s2, h):
        beta1, beta2 = h["betas"]
        m, v = states
        kernels.radam(
            data, grad, m, v, s1, s2, t=t, lr=h["lr"], beta1=beta1, beta2=beta2, eps=h["eps"],
            weight_decay=h["weight_decay"], decoupled=h["decoupled_weight_decay"],
        )  # fmt: skip


class Adamax(Optimizer):
    """PyTorch's Adamax (Kingma & Ba): m as Adam's, u ← max(β₂·u, |g| + ε) (the infinity
    norm, ε inside the max, as PyTorch's), W ← W − η/(1 − β₁ᵗ)·m/u; ``weight_decay``
    adds λ·W to g."""

    state_names = possible_states = ("moment1", "inf_norm")
    torch_names: ClassVar[dict[str, str]] = {"exp_avg": "moment1", "exp_inf": "inf_norm"}
    hyperparameters = ("lr", "betas", "eps", "weight_decay")
    threaded_from = 1 << 18  # as Adam's
    betas = _GroupValue()
    eps = _GroupValue()
    weight_decay = _GroupValue()

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        **torch_only: object,
    ) -> None:
        self._torch_only(torch_only)
        super().__init__(params, lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _check_group(self, group: dict, where: str) -> None:
        super()._check_group(group, where)
        check_adam_group(group, where)

    @calls_kernel
    def _rule(self, data, grad, states, t, s1, s2, h):
        beta1, beta2 = h["betas"]
        m, u = states
        # (PyTorch's Adamax has no decoupled form: a group's key of that name is not read)
        kernels.adamax(
            data, grad, m, u, s1, s2, t=t, lr=h["lr"], beta1=beta1, beta2=beta2, eps=h["eps"],
            weight_decay=h["weight_decay"],
        )  # fmt: skip


class Adadelta(Optimizer):
    """PyTorch's Adadelta (Zeiler): s ← ρ·s + (1 − ρ)·g², δ = √(Δ + ε)/√(s + ε)·g,
    Δ ← ρ·Δ + (1 − ρ)·δ², W ← W − η·δ (η = 1 by default, as PyTorch's); weight decay
    adds λ·W to g first. Both accumulators start at zero, under PyTorch's names."""

    state_names = possible_states = ("square_avg", "acc_delta")
    hyperparameters = ("lr", "rho", "eps", "weight_decay")
    rho = _GroupValue()
    eps = _GroupValue()
    weight_decay = _GroupValue()

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict],
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        **torch_only: object,
    ) -> None:
        self._torch_only(torch_only)
        super().__init__(params, lr, rho=rho, eps=eps, weight_decay=weight_decay)

    def _check_group(self, group: dict, where: str) -> None:
        super()._check_group(group, where)
        group["rho"] = _fraction(group.get("rho"), f"{where} rho", one=True)
        group["eps"] = _non_negative(group.get("eps"), f"{where} eps")
        group["weight_decay"] = _non_negative(group.get("weight_decay"), f"{where} weight_decay")

    @calls_kernel
    def _rule(self, data, grad, states, t, s1, s2, h):
        square, acc = states
        kernels.adadelta(
            data, grad, square, acc, s1, s2, lr=h["lr"], rho=h["rho"], eps=h["eps"],
            weight_decay=h["weight_decay"],
        )  # fmt: skip


def _flag(group: dict, key: str, where: str) -> None:
    value = group.get(key)
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{where} {key} must be True or False; got {value!r}")
    group[key] = bool(value)


def _pair(value: object, what: str, check) -> tuple[float, float]:
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise ConfigError(f"{what} must be two numbers; got {value!r}")
    return tuple(check(v, what) for v in value)


def _scalar_count(value: object, where: str) -> float:
    """ASGD's eta or mu from a state dict or set by hand: a number ≥ 0 (PyTorch's 0-d
    tensor taken)."""
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        value = value.item()
    return _non_negative(value, where)


# the flags these optimisers run either way (maximize negates the gradient first)
_MAXIMIZE_TAKEN: dict[str, tuple[bool, str]] = {
    "differentiable": Optimizer.fixed_flags["differentiable"],
}


class Rprop(Optimizer):
    """PyTorch's Rprop (resilient backpropagation): each weight's step size grows by
    η₊ while its gradient keeps its sign and shrinks by η₋ when the sign flips, within
    ``step_sizes`` (min, max); W ← W − sign(g)·step, with g taken as 0 after a flip
    (and kept so in ``prev``). Step sizes start at the group's lr at a parameter's first
    step, as PyTorch's. ``maximize`` climbs the objective."""

    state_names = possible_states = ("prev", "step_size")
    hyperparameters = ("lr", "etas", "step_sizes", "maximize")
    saved_defaults: ClassVar[dict[str, object]] = {"maximize": False}
    fixed_flags: ClassVar[dict[str, tuple[bool, str]]] = _MAXIMIZE_TAKEN
    etas = _GroupValue()
    step_sizes = _GroupValue()
    maximize = _GroupValue()

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict],
        lr: float = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
        *,
        maximize: bool = False,
        **torch_only: object,
    ) -> None:
        self._torch_only(torch_only)
        super().__init__(params, lr, etas=etas, step_sizes=step_sizes, maximize=maximize)

    def _check_group(self, group: dict, where: str) -> None:
        super()._check_group(group, where)
        minus, plus = _pair(group.get("etas"), f"{where} etas", _number)
        if not 0 < minus < 1 < plus:
            raise ConfigError(
                f"{where} etas must be (η₋, η₊) with 0 < η₋ < 1 < η₊; got {group['etas']!r}"
            )
        group["etas"] = (minus, plus)
        low, high = _pair(group.get("step_sizes"), f"{where} step_sizes", _non_negative)
        if low > high:
            raise ConfigError(
                f"{where} step_sizes must be (min, max) with min ≤ max; got {group['step_sizes']!r}"
            )
        group["step_sizes"] = (low, high)
        _flag(group, "maximize", where)

    def _advance(self, live: list[int], group: dict) -> list[bool]:
        # whether this is the parameter's first update, where PyTorch's state begins with
        # steps of the lr: the rule sets them, on its stretch alone (ranks sharing the
        # weights each step a slice; one setting them all here overwrote the others')
        steps, clocks = self.param_steps, [not self._has_state(i) for i in live]
        for i in live:
            steps[i] += 1
        return clocks

    def _rule(self, data, grad, states, t, s1, s2, h):
        prev, step_size = states
        if t:  # the first update (prev is 0 until then)
            step_size[...] = h["lr"]
        g = np.negative(grad, out=s2) if h["maximize"] else grad
        np.multiply(g, prev, out=s1)
        np.sign(s1, out=s1)
        flipped = s1 < 0
        minus, plus = h["etas"]
        # each factor in place, as PyTorch's: η₊, η₋ or 1 (a NaN stays NaN)
        np.copyto(s1, plus, where=s1 > 0)
        np.copyto(s1, minus, where=flipped)
        np.copyto(s1, 1.0, where=s1 == 0)
        step_size *= s1
        np.clip(step_size, *h["step_sizes"], out=step_size)
        if g is not s2:
            np.copyto(s2, g)
        np.copyto(s2, 0, where=flipped)  # after a flip: no step, and no flip next time
        np.sign(s2, out=s1)
        s1 *= step_size
        data -= s1
        np.copyto(prev, s2)


class ASGD(Optimizer):
    """PyTorch's ASGD (averaged SGD, Polyak & Juditsky): W ← W·(1 − λ·η_t) − η_t·g
    (``weight_decay`` adds its multiple of W to g first), then the average
    ax ← ax + μ_t·(W − ax) (ax = W while μ_t = 1); η_{t+1} = lr/(1 + λ·lr·t)^α and
    μ_{t+1} = 1/max(1, t − t0). η starts at the group's lr at a parameter's first step.
    η and μ are kept per parameter (state ``eta``, ``mu``) and rounded in the
    parameter's dtype, as PyTorch's in its default dtype."""

    state_names = possible_states = ("ax",)
    hyperparameters = ("lr", "lambd", "alpha", "t0", "weight_decay", "maximize")
    saved_defaults: ClassVar[dict[str, object]] = {"maximize": False}
    fixed_flags: ClassVar[dict[str, tuple[bool, str]]] = _MAXIMIZE_TAKEN
    counters = ("param_steps", "etas", "mus")
    counter_starts: ClassVar[dict[str, float]] = {"etas": 0.0, "mus": 1.0}
    lambd = _GroupValue()
    alpha = _GroupValue()
    t0 = _GroupValue()
    weight_decay = _GroupValue()
    maximize = _GroupValue()

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict],
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        **torch_only: object,
    ) -> None:
        self._torch_only(torch_only)
        super().__init__(
            params, lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
            maximize=maximize,
        )  # fmt: skip

    def _check_group(self, group: dict, where: str) -> None:
        super()._check_group(group, where)
        for key in ("lambd", "alpha", "weight_decay"):
            group[key] = _non_negative(group.get(key), f"{where} {key}")
        t0 = group["t0"] = _number(group.get("t0"), f"{where} t0")
        if not math.isfinite(t0):
            raise ConfigError(f"{where} t0 must be finite; got {t0}")
        _flag(group, "maximize", where)

    def _counter_value(self, counter: str, value: object, where: str, loaded: bool = False):
        if counter in ("etas", "mus"):
            return _scalar_count(value, f"{where} {COUNTER_KEYS[counter]}")
        return super()._counter_value(counter, value, where, loaded)

    def _advance(self, live: list[int], group: dict) -> list:
        steps, etas, mus, params = self.param_steps, self.etas, self.mus, self.params
        lr, lambd, alpha, t0 = group["lr"], group["lambd"], group["alpha"], group["t0"]
        clocks = []
        for i in live:
            kind = params[i].data.dtype.type  # PyTorch's η and μ are 0-d tensors
            if not self._has_state(i):  # PyTorch's state begins here: η at the lr
                etas[i], mus[i] = float(kind(lr)), 1.0  # (ax is 0 till then)
            steps[i] += 1
            clocks.append((steps[i], etas[i], mus[i]))  # what this update uses
            etas[i] = float(kind(lr / ((1 + lambd * lr * steps[i]) ** alpha)))
            mus[i] = float(kind(1 / max(1, steps[i] - t0)))
        return clocks

    def _rule(self, data, grad, states, t, s1, s2, h):
        _, eta, mu = t
        (ax,) = states
        g = np.negative(grad, out=s2) if h["maximize"] else grad
        if h["weight_decay"]:  # g + λ·W, in the scratch: the gradient itself stays as it is
            np.multiply(data, h["weight_decay"], out=s1)
            g = np.add(g, s1, out=s1)
        data *= 1 - h["lambd"] * eta
        np.multiply(g, -eta, out=s2)
        data += s2
        if mu != 1:
            np.subtract(data, ax, out=s1)
            s1 *= mu
            ax += s1
        else:
            np.copyto(ax, data)


def _lerp(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """``start.lerp_(end, weight)``, PyTorch's two forms (the one that rounds least on
    each side of ½), the weight first in the arrays' dtype as PyTorch's kernel takes it
    (1 − w of a float32 w, not of the float64 one: Muon's float32 buffer at μ = 0.02 was
    1.7e-5 apart)."""
    weight = start.dtype.type(weight)
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        np.copyto(start, end - (end - start) * (1 - weight))


def _squared_norm_mean(grad: np.ndarray, axis: int) -> np.ndarray:
    """PyTorch's ``norm(g, dim).square_().div_(n)`` (the square root rounded, then squared)."""
    norm = np.sqrt(np.sum(grad * grad, axis=axis, keepdims=True))
    return norm * norm / grad.shape[axis]


class Adafactor(Optimizer):
    """PyTorch's Adafactor (Shazeer & Stern): the second moment of a matrix kept factored,
    a row and a column mean of g² (``row_var``, ``col_var``: for an N-d parameter over its
    last two dimensions), of a vector or scalar whole (``variance``), each averaged with
    weight t^``beta2_decay``; the step, g/√v̂ clipped to RMS ``d``, scaled by
    max(ε₂, RMS(W))·min(lr, 1/√t). ``weight_decay`` shrinks W by 1 − lr·λ first; ε₁ None
    is the dtype's machine epsilon. Each parameter is stepped whole (its RMS and the
    clipping are over all of it), not in the flat walk of the element-wise rules."""

    possible_states = ("row_var", "col_var", "variance")
    hyperparameters = ("lr", "beta2_decay", "eps", "d", "weight_decay", "maximize")
    fixed_flags: ClassVar[dict[str, tuple[bool, str]]] = {}
    IMPLEMENTATION_OPTIONS: ClassVar[tuple[str, ...]] = ("foreach",)  # PyTorch's only one
    steps_by_slices: ClassVar[bool] = False  # its RMS and clipping read each parameter whole
    beta2_decay = _GroupValue()
    eps = _GroupValue()
    d = _GroupValue()
    weight_decay = _GroupValue()
    maximize = _GroupValue()

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict],
        lr: float = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        **torch_only: object,
    ) -> None:
        self._torch_only(torch_only)
        super().__init__(
            params, lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay,
            maximize=maximize,
        )  # fmt: skip

    def _check_group(self, group: dict, where: str) -> None:
        super()._check_group(group, where)
        decay = group["beta2_decay"] = _number(group.get("beta2_decay"), f"{where} beta2_decay")
        if not decay <= 0:
            raise ConfigError(f"{where} beta2_decay must be ≤ 0; got {decay}")
        eps = group.get("eps")
        if not (isinstance(eps, (tuple, list)) and len(eps) == 2):
            raise ConfigError(f"{where} eps must be (eps1 or None, eps2); got {eps!r}")
        eps1 = None if eps[0] is None else _non_negative(eps[0], f"{where} eps[0]")
        group["eps"] = (eps1, _non_negative(eps[1], f"{where} eps[1]"))
        d = group["d"] = _number(group.get("d"), f"{where} d")
        if not (d >= 1 and math.isfinite(d)):
            raise ConfigError(f"{where} d (the clipping threshold) must be ≥ 1; got {d}")
        group["weight_decay"] = _non_negative(group.get("weight_decay"), f"{where} weight_decay")
        _flag(group, "maximize", where)

    # -- its state: factored, so not of the parameters' shapes -------------------------------
    @staticmethod
    def _shapes(shape: tuple) -> dict[str, tuple]:
        if len(shape) > 1:
            return {"row_var": (*shape[:-1], 1), "col_var": (*shape[:-2], 1, shape[-1])}
        return {"variance": shape}

    def state_shape(self, name: str, i: int) -> tuple | None:
        return self._shapes(self.params[i].shape).get(name)

    def _fresh(self, p: Parameter) -> dict[str, np.ndarray]:
        return {k: np.zeros(s, p.data.dtype) for k, s in self._shapes(p.shape).items()}

    def _init_state(self) -> None:
        super()._init_state()
        self._factors = [self._fresh(p) for p in self.params]

    def add_param_group(self, group: dict) -> None:
        super().add_param_group(group)
        self._factors.extend(self._fresh(p) for p in self.params[len(self._factors) :])

    def _state_arrays(self, i: int) -> dict[str, np.ndarray]:
        return self._factors[i]

    def _restart(self, indices: Iterable[int]) -> None:
        indices = list(indices)
        super()._restart(indices)
        for i in indices:
            for array in self._factors[i].values():
                array[...] = 0

    def _check_state_shapes(self) -> None:
        # (a group being added has no state yet: add_param_group makes it after the repack)
        factors_now = getattr(self, "_factors", [])
        for i, (p, factors) in enumerate(zip(self.params, factors_now, strict=False)):
            for name, array in factors.items():
                if array.shape != self._shapes(p.shape)[name]:
                    raise ConfigError(
                        f"Adafactor: parameter {i} is {p.shape} now but its {name} state is "
                        f"{array.shape} (its .data was given another shape after the "
                        "optimiser was made); make a new optimiser for it"
                    )

    def state_dict(self) -> dict:
        saved = super().state_dict()
        for i, entry in saved["state"].items():
            entry.update({k: v.copy() for k, v in self._factors[i].items()})
        return saved

    def load_state_dict(self, state_dict: dict) -> None:
        name = "Adafactor.load_state_dict"
        state = state_dict.get("state") if isinstance(state_dict, dict) else None
        if not isinstance(state, dict):
            super().load_state_dict(state_dict)  # (refused there, in its words)
            return
        factors, rest = [], {}
        for i, p in enumerate(self.params):
            entry = state.get(i, state.get(str(i)))
            if not isinstance(entry, dict) or self._torch_entry(entry):
                super().load_state_dict(state_dict)  # (refused there, in its words)
                return
            wanted = self._shapes(p.shape)
            mine = {}
            for key in self.possible_states:
                if key not in entry:
                    continue
                value = np.asarray(entry[key])
                if key not in wanted or value.shape != wanted[key] or value.dtype.kind != "f":
                    raise ConfigError(
                        f"{name} state[{i}] {key}: {value.dtype} of shape {value.shape}; "
                        f"parameter {i} of shape {p.shape} keeps "
                        + ", ".join(f"{k} of shape {s}" for k, s in wanted.items())
                    )
                mine[key] = value
            missing = sorted(set(wanted) - set(mine))
            if missing:
                raise ConfigError(f"{name} state[{i}]: {', '.join(map(repr, missing))} missing")
            factors.append(mine)
            rest[i] = {k: v for k, v in entry.items() if k not in self.possible_states}
        super().load_state_dict({**state_dict, "state": rest})
        for i, mine in enumerate(factors):
            for key, value in mine.items():
                np.copyto(self._factors[i][key], value, casting="same_kind")
            if any(np.any(v) for v in mine.values()):
                self.__dict__.setdefault("_written", set()).add(i)

    # -- the update, parameter by parameter ------------------------------------------------
    def _update_params(self) -> None:
        for group, i, p, grad in self._each_whole_param():
            factors = self._factors[i]
            for key, array in factors.items():  # the model was cast: the state with it
                if array.dtype != p.data.dtype:
                    factors[key] = array.astype(p.data.dtype)
            self.param_steps[i] += 1
            self._step_one(p.data, grad, factors, self.param_steps[i], group)

    @staticmethod
    def _step_one(data: np.ndarray, grad: np.ndarray, factors: dict, t: int, h: dict) -> None:
        if h["maximize"]:
            grad = -grad
        eps1, eps2 = h["eps"]
        if eps1 is None:
            eps1 = float(np.finfo(data.dtype).eps)
        weight = float(t) ** h["beta2_decay"]  # 1 − β₂ at step t
        rho = min(h["lr"], 1 / (float(t) ** 0.5))
        alpha = max(eps2, float(np.sqrt(np.sum(data * data))) / (data.size**0.5)) * rho
        if h["weight_decay"]:
            data *= 1 - h["lr"] * h["weight_decay"]
        if grad.ndim > 1:
            row, col = factors["row_var"], factors["col_var"]
            _lerp(row, _squared_norm_mean(grad, -1), weight)
            _lerp(col, _squared_norm_mean(grad, -2), weight)
            estimate = row * col  # (…, m, 1) @ (…, 1, n): one product each
            estimate /= np.maximum(row.mean(axis=-2, keepdims=True), eps1)
        else:
            variance = factors["variance"]
            _lerp(variance, grad * grad, weight)
            estimate = variance.copy()
        np.maximum(estimate, eps1 * eps1, out=estimate)
        update = np.divide(1, np.sqrt(estimate), out=estimate)
        update *= grad
        rms = float(np.sqrt(np.sum(update * update))) / ((update.size**0.5) * h["d"])
        data += update * (-alpha / max(1.0, rms))


def _bfloat16(x: np.ndarray) -> np.ndarray:
    """``x`` rounded to bfloat16 (held in float32): float32 first, then the nearest
    bfloat16, ties to even, as PyTorch's ``.bfloat16()`` (NaN kept)."""
    x = np.asarray(x, np.float32)
    bits = x.view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    rounded = bits.astype(np.uint32).view(np.float32)
    return np.where(np.isnan(x), x, rounded)


def _newton_schulz(update: np.ndarray, coefficients: tuple, steps: int, eps: float) -> np.ndarray:
    """PyTorch's ``_zeropower_via_newtonschulz``: X = U/‖U‖ (a wide matrix: a tall one is
    transposed), then ``steps`` times X ← aX + (bA + cA²)X with A = XXᵀ, all in bfloat16
    as PyTorch's: each product accumulated in a wider type and rounded once (PyTorch's
    addmm), so the result is PyTorch's bit for bit but for a rare last-bit rounding."""
    a, b, c = coefficients
    x = _bfloat16(update)
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    norm = _bfloat16(np.sqrt(np.sum(np.square(x, dtype=np.float64))))
    x = _bfloat16(x / np.maximum(norm, _bfloat16(np.float32(eps))))
    for _ in range(steps):
        wide = x.astype(np.float64)
        gram = _bfloat16(wide @ wide.T).astype(np.float64)
        poly = _bfloat16(b * gram + c * (gram @ gram)).astype(np.float64)
        x = _bfloat16(a * wide + poly @ wide)
    return x.T if tall else x


MUON_LR_ADJUSTMENTS = (None, "original", "match_rms_adamw")


class Muon(Optimizer):
    """PyTorch's Muon (torch.optim.Muon), for 2-D weights only: B ← lerp(B, g, 1 − μ) (its
    ``momentum_buffer``), U = lerp(g, B, μ) with ``nesterov`` (else B), O = U
    orthogonalised by ``ns_steps`` Newton–Schulz iterations of ``ns_coefficients`` in
    bfloat16, as PyTorch's; W ← W·(1 − lr·λ) − lr′·O, lr′ = lr·√max(1, rows/cols)
    (``adjust_lr_fn`` None or ``"original"``) or lr·0.2·√max(rows, cols)
    (``"match_rms_adamw"``). Biases and other parameters go to another optimiser (AdamW),
    as PyTorch's docs say; each parameter is stepped whole."""

    state_names = possible_states = ("momentum_buffer",)
    hyperparameters = (
        "lr", "weight_decay", "momentum", "nesterov", "ns_coefficients", "eps", "ns_steps",
        "adjust_lr_fn",
    )  # fmt: skip
    fixed_flags: ClassVar[dict[str, tuple[bool, str]]] = {}  # (PyTorch's Muon has none)
    steps_by_slices: ClassVar[bool] = False  # its orthogonalisation reads a matrix whole
    weight_decay = _GroupValue()
    momentum = _GroupValue()
    nesterov = _GroupValue()
    ns_coefficients = _GroupValue()
    eps = _GroupValue()
    ns_steps = _GroupValue()
    adjust_lr_fn = _GroupValue()

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict],
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = (3.4445, -4.7750, 2.0315),
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
    ) -> None:
        super().__init__(
            params, lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
            ns_coefficients=ns_coefficients, eps=eps, ns_steps=ns_steps,
            adjust_lr_fn=adjust_lr_fn,
        )  # fmt: skip

    def _check_group(self, group: dict, where: str) -> None:
        super()._check_group(group, where)
        self._check_muon_settings(group, where, "eps")
        self._check_matrices(group, where)

    @staticmethod
    def _check_muon_settings(group: dict, where: str, eps: str) -> None:
        """Muon's settings in a group (its normalisation's epsilon under ``eps``)."""
        for key in ("weight_decay", "momentum", eps):
            group[key] = _non_negative(group.get(key), f"{where} {key}")
        _flag(group, "nesterov", where)
        coefficients = group.get("ns_coefficients")
        if not (isinstance(coefficients, (tuple, list)) and len(coefficients) == 3):
            raise ConfigError(
                f"{where} ns_coefficients must be three numbers (a, b, c); got {coefficients!r}"
            )
        group["ns_coefficients"] = tuple(
            _number(v, f"{where} ns_coefficients[{k}]") for k, v in enumerate(coefficients)
        )
        steps = group["ns_steps"] = _whole_count(group.get("ns_steps"), f"{where} ns_steps")
        if steps >= 100:  # PyTorch's limit, refused there at the step
            raise ConfigError(f"{where} ns_steps must be under 100; got {steps}")
        if group.get("adjust_lr_fn") not in MUON_LR_ADJUSTMENTS:
            raise ConfigError(
                f"{where} adjust_lr_fn must be None, 'original' or 'match_rms_adamw'; got "
                f"{group.get('adjust_lr_fn')!r}"
            )

    @staticmethod
    def _check_matrices(group: dict, where: str) -> None:
        for k, p in enumerate(group.get("params", ())):  # (a new group's, before it joins)
            if p.ndim != 2:  # PyTorch's refuses at construction, an added group's at its step
                raise ConfigError(
                    f"{where}: parameter {k} has shape {tuple(p.shape)}; Muon steps 2-D "
                    "weights only (give biases and other parameters to AdamW, as PyTorch's "
                    "docs do)"
                )

    def _required(self, group: dict, written: set[str]) -> set[str]:
        return {"momentum_buffer"}  # (PyTorch's Muon counts no steps: it keeps no 'step')

    def load_state_dict(self, state_dict: dict) -> None:
        """As every optimiser's; an entry in PyTorch's Muon's layout, a momentum_buffer
        and no 'step' (its arrays NumPy's), is taken as stepped: Muon's update reads no
        count."""
        super().load_state_dict(self._counted(state_dict, range(len(self.params))))

    def _counted(self, state_dict: object, muon: Iterable[int]) -> object:
        """``state_dict`` with 'step': 1 in each entry of the parameters ``muon`` (those
        Muon's rule steps) that holds a momentum_buffer and no count, as PyTorch's
        Muon's entries are (without, such an entry was refused: 'a step count must be a
        whole number ≥ 0; got None')."""
        state = state_dict.get("state") if isinstance(state_dict, dict) else None
        if not isinstance(state, dict):
            return state_dict  # (refused by the load, in its words)
        filled = dict(state)
        for i in muon:
            key = i if i in state else str(i)
            entry = state.get(key)
            if (
                isinstance(entry, dict)
                and "momentum_buffer" in entry
                and "step" not in entry
                and not self._torch_entry(entry)
            ):
                filled[key] = {**entry, "step": 1}
        return {**state_dict, "state": filled}

    @staticmethod
    def _lr_of(h: dict, shape: tuple) -> float:
        rows, cols = shape[:2]
        if h["adjust_lr_fn"] == "match_rms_adamw":
            return h["lr"] * 0.2 * math.sqrt(max(rows, cols))
        return h["lr"] * math.sqrt(max(1, rows / cols))

    def _update_params(self) -> None:
        for group, i, p, grad in self._each_whole_param():
            self.param_steps[i] += 1
            self._step_one(p.data, grad, self.momentum_buffer[i], group)

    def _step_one(
        self, data: np.ndarray, grad: np.ndarray, buffer: np.ndarray, h: dict, eps: str = "eps"
    ) -> None:
        momentum = h["momentum"]
        _lerp(buffer, grad, 1 - momentum)
        if h["nesterov"]:
            update = grad.copy()
            _lerp(update, buffer, momentum)
        else:
            update = buffer
        update = _newton_schulz(update, h["ns_coefficients"], h["ns_steps"], h[eps])
        data *= 1 - h["lr"] * h["weight_decay"]
        data -= self._lr_of(h, data.shape) * update.astype(data.dtype)


class MuonWithAdamW(Muon):
    """One optimiser over a whole model, as ``fit(optimizer="muon")`` and ``wxb train
    --optimizer muon`` build it: PyTorch's Muon for the 2-D weights (``param_groups[0]``,
    ``use_muon=True``) and AdamW for the rest (``param_groups[1]``: biases, a norm's
    scale), the pairing PyTorch's Muon docs write with two optimisers. Both groups at
    ``lr`` and ``weight_decay`` (AdamW's default 0.01), Muon's rate adjusted by
    ``"match_rms_adamw"`` (lr·0.2·√max(rows, cols), its updates then of AdamW's size, so
    one rate suits both); ``ns_eps`` is Muon's epsilon, ``eps`` AdamW's. Each group's
    step is that optimiser's, to the bit. A list of group dicts may name each group's
    rule by ``use_muon`` (Muon's groups 2-D weights only), as the reference
    MuonWithAuxAdam requires. Each parameter holds its own rule's state only: a Muon
    group's ``momentum_buffer``, an AdamW group's ``moment1`` and ``moment2`` (all three
    for every parameter held 3x the weights where each rule needs 1x or 2x)."""

    state_names = ()  # (none in the flat layout: each parameter is stepped whole)
    possible_states = ("momentum_buffer", "moment1", "moment2")
    RULE_STATES: ClassVar[dict[bool, tuple[str, ...]]] = {
        True: ("momentum_buffer",),
        False: ("moment1", "moment2"),
    }
    torch_names: ClassVar[dict[str, str]] = {"exp_avg": "moment1", "exp_avg_sq": "moment2"}
    hyperparameters = (*Muon.hyperparameters, "ns_eps", "betas", "use_muon")
    betas = _GroupValue()
    ns_eps = _GroupValue()
    use_muon = _GroupValue()

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict],
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = (3.4445, -4.7750, 2.0315),
        ns_eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = "match_rms_adamw",
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        items = (
            list(params)
            if isinstance(params, Iterable)
            and not isinstance(params, (str, bytes, dict, set, frozenset, Tensor, Module))
            else params
        )
        if isinstance(items, list) and items and not any(isinstance(p, dict) for p in items):
            shape = [getattr(p[1] if isinstance(p, tuple) else p, "ndim", None) for p in items]
            matrices = [p for p, n in zip(items, shape, strict=True) if n == 2]
            rest = [p for p, n in zip(items, shape, strict=True) if n != 2]
            items = [{"params": matrices, "use_muon": True}] if matrices else []
            items += [{"params": rest, "use_muon": False}] if rest else []
        Optimizer.__init__(
            self, items, lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
            ns_coefficients=ns_coefficients, ns_eps=ns_eps, ns_steps=ns_steps,
            adjust_lr_fn=adjust_lr_fn, betas=betas, eps=eps, use_muon=None,
        )  # fmt: skip

    def _check_group(self, group: dict, where: str) -> None:
        Optimizer._check_group(self, group, where)
        self._check_muon_settings(group, where, "ns_eps")
        check_adam_group(group, where)
        if "params" not in group and group.get("use_muon") is None:
            return  # (the defaults: each group says its rule)
        if group.get("use_muon") is None:  # (the reference asserts it is there)
            raise ConfigError(
                f"{where} has no 'use_muon': say which rule steps its parameters, "
                "use_muon=True (Muon, 2-D weights only) or use_muon=False (AdamW), as the "
                "reference MuonWithAuxAdam requires"
            )
        if not isinstance(group.get("use_muon"), (bool, np.bool_)):
            raise ConfigError(
                f"{where} use_muon must be True (Muon, 2-D weights) or False (AdamW); "
                f"got {group.get('use_muon')!r}"
            )
        group["use_muon"] = bool(group["use_muon"])
        if group["use_muon"]:
            self._check_matrices(group, where)

    # -- its state: each parameter its own rule's arrays, not all three ---------------------
    def _wanted(self, i: int) -> tuple[str, ...]:
        """The state names parameter ``i``'s group's rule reads now."""
        bounds = zip(self.param_groups, self._bounds, strict=True)
        group = next(g for g, (a, b) in bounds if a <= i < b)
        return self.RULE_STATES[bool(group["use_muon"])]

    def state_shape(self, name: str, i: int) -> tuple | None:
        return tuple(self.params[i].shape) if name in self._wanted(i) else None

    def _fresh(self, i: int) -> dict[str, np.ndarray]:
        return {name: np.zeros_like(self.params[i].data) for name in self._wanted(i)}

    def _init_state(self) -> None:
        super()._init_state()
        self._rule_state = [self._fresh(i) for i in range(len(self.params))]

    def add_param_group(self, group: dict) -> None:
        super().add_param_group(group)
        done = len(self._rule_state)
        self._rule_state.extend(self._fresh(i) for i in range(done, len(self.params)))

    def _state_arrays(self, i: int) -> dict[str, np.ndarray]:
        return self._rule_state[i]

    def _required(self, group: dict, written: set[str]) -> set[str]:
        if group["use_muon"]:  # (PyTorch's Muon counts no steps: it keeps no 'step')
            return set(self.RULE_STATES[True])
        return {*self.counters, *self.RULE_STATES[False]}

    def _restart(self, indices: Iterable[int]) -> None:
        indices = list(indices)
        super()._restart(indices)
        for i in indices:
            for array in self._rule_state[i].values():
                array[...] = 0

    def _check_state_shapes(self) -> None:
        # (a group being added has no state yet: add_param_group makes it after the repack)
        for i, (p, arrays) in enumerate(
            zip(self.params, getattr(self, "_rule_state", []), strict=False)
        ):
            for name, array in arrays.items():
                if array.shape != p.shape:
                    raise ConfigError(
                        f"MuonWithAdamW: parameter {i} is {p.shape} now but its {name} state "
                        f"is {array.shape} (its .data was given another shape after the "
                        "optimiser was made); make a new optimiser for it"
                    )

    def state_dict(self) -> dict:
        saved = super().state_dict()
        for i, entry in saved["state"].items():
            entry.update({k: v.copy() for k, v in self._rule_state[i].items()})
        return saved

    def load_state_dict(self, state_dict: dict) -> None:
        """As every optimiser's; a state wxb wrote before this one kept all three arrays
        for each parameter: the other rule's (zeros) are dropped."""
        name = "MuonWithAdamW.load_state_dict"
        state = state_dict.get("state") if isinstance(state_dict, dict) else None
        groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
        if not isinstance(state, dict) or not isinstance(groups, list):
            super().load_state_dict(state_dict)  # (refused there, in its words)
            return
        # each parameter's rule as the loaded groups name it (checked again there)
        rules: dict[int, bool] = {}
        for group in groups:
            if isinstance(group, dict) and isinstance(group.get("use_muon"), (bool, np.bool_)):
                rules.update({k: bool(group["use_muon"]) for k in group.get("params", ())})
        state_dict = self._counted(state_dict, [i for i, muon in rules.items() if muon])
        state = state_dict["state"]
        kept, rest = [], {}
        for i, p in enumerate(self.params):
            entry = state.get(i, state.get(str(i)))
            if not isinstance(entry, dict) or self._torch_entry(entry) or i not in rules:
                super().load_state_dict(state_dict)  # (refused there, in its words)
                return
            wanted = self.RULE_STATES[rules[i]]
            mine = {}
            for key in self.possible_states:
                if key not in entry:
                    continue
                value = np.asarray(entry[key])
                if value.shape != p.shape or value.dtype.kind != "f":
                    raise ConfigError(
                        f"{name} state[{i}] {key}: shape {value.shape} {value.dtype}; the "
                        f"parameter is {p.shape} {p.dtype}"
                    )
                if key in wanted:
                    mine[key] = value
                elif np.any(value):
                    rule = "Muon" if rules[i] else "AdamW"
                    raise ConfigError(
                        f"{name} state[{i}] {key}: parameter {i} is stepped by {rule}, which "
                        f"keeps {', '.join(map(repr, wanted))} (the state of another grouping?)"
                    )
            started = any(entry.get(COUNTER_KEYS[c], 0) for c in self.counters)
            missing = sorted(set(wanted) - set(mine))
            if missing and started:
                raise ConfigError(f"{name} state[{i}]: {', '.join(map(repr, missing))} missing")
            kept.append(mine)
            rest[i] = {k: v for k, v in entry.items() if k not in self.possible_states}
        super().load_state_dict({**state_dict, "state": rest})
        for i, mine in enumerate(kept):
            self._rule_state[i] = self._fresh(i)
            for key, value in mine.items():
                np.copyto(self._rule_state[i][key], value, casting="same_kind")
            if any(np.any(v) for v in mine.values()):
                self.__dict__.setdefault("_written", set()).add(i)

    def _update_params(self) -> None:
        scratch = {}
        for group, i, p, grad in self._each_whole_param():
            self.param_steps[i] += 1
            arrays = self._rule_state[i]
            wanted = self.RULE_STATES[group["use_muon"]]
            if tuple(arrays) != wanted:  # its group's use_muon changed: that rule's, from 0,
                arrays = self._rule_state[i] = {k: np.zeros_like(p.data) for k in wanted}
                # its count too (AdamW's bias correction read the steps Muon took: the first
                # step of zeroed moments divided by 1 − β₁⁴, not 1 − β₁, after three)
                self.param_steps[i] = 1
            for key, array in arrays.items():  # the model was cast: the state with it
                if array.dtype != p.data.dtype:
                    arrays[key] = array.astype(p.data.dtype)
            if group["use_muon"]:
                self._step_one(p.data, grad, arrays["momentum_buffer"], group, "ns_eps")
                continue
            arrays = [p.data, grad, arrays["moment1"], arrays["moment2"]]
            if all(a.flags.c_contiguous for a in arrays):  # (as _walk: the compiled kernel
                arrays = [a.reshape(-1) for a in arrays]  # walks 1-D arrays; a matrix failed)
            key = (arrays[0].shape, arrays[0].dtype)
            if key not in scratch:
                scratch[key] = (np.empty_like(arrays[0]), np.empty_like(arrays[0]))
            beta1, beta2 = group["betas"]
            kernels.adam(
                *arrays, *scratch[key],
                t=self.param_steps[i], lr=group["lr"], beta1=beta1, beta2=beta2,
                eps=group["eps"], weight_decay=group["weight_decay"], decoupled=True,
            )  # fmt: skip


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """PyTorch's (minFunc's): the minimiser of the cubic through two points with their
    slopes, within ``bounds`` (the bisection where it has none)."""
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    with np.errstate(all="ignore"):  # (PyTorch's tensors give inf and NaN without a word)
        d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
        d2_square = d1**2 - g1 * g2
        if d2_square >= 0:
            d2 = np.sqrt(d2_square)
            if x1 <= x2:
                min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
            else:
                min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
            return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _strong_wolfe(obj_func, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """PyTorch's line search for a step t along d meeting the strong Wolfe conditions
    (its decisions in its order, so the steps are its steps)."""
    d_norm = np.abs(d).max()
    g = g.copy()
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = g_new.dot(d)
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    bracket_gtd: list = []
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(
            t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step)
        )
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new.copy(), gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:  # zoom: shrink the bracket
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(
            bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1]
        )
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new.copy(), gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new.copy(), gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


# LBFGS's state: its counts, numbers, flat vectors and lists of them (PyTorch's keys)
_LBFGS_COUNTS = ("func_evals", "n_iter")
_LBFGS_NUMBERS = ("t", "H_diag", "prev_loss")
_LBFGS_VECTORS = ("d", "prev_flat_grad")
_LBFGS_LISTS = ("old_dirs", "old_stps")


class _LBFGSState(_State):
    """``LBFGS.state``: ``_State``'s forgetting, and PyTorch's defaultdict read: the first
    parameter's entry before a step is the run's own (empty) dict, which a write fills."""

    def __missing__(self, key: object) -> dict:
        index = self._index(key)
        if index is None:
            raise KeyError(key)
        return self._optimizer._lbfgs if index == 0 else {}


class LBFGS(Optimizer):
    """PyTorch's L-BFGS: ``step(closure)`` runs up to ``max_iter`` iterations (``max_eval``
    evaluations of the closure, which zeroes the gradients, computes the loss, runs
    backward and returns the loss), each along the direction the last ``history_size``
    steps and gradient changes give, of length lr (the first min(1, 1/Σ|g|)·lr), or as
    the strong-Wolfe line search (``line_search_fn="strong_wolfe"``) finds it; it stops
    early where max |g| ≤ ``tolerance_grad`` or a change falls under
    ``tolerance_change``. One parameter group, of one dtype; the state (PyTorch's keys:
    ``d``, ``t``, ``old_dirs``, ``old_stps``, ``ro``, ``H_diag``, ``prev_flat_grad``,
    ``prev_loss``, ``al``, ``n_iter``, ``func_evals``) is the whole run's, in
    ``state[params[0]]`` as PyTorch's. fit steps once a batch with no closure, so it
    cannot run LBFGS: write the loop (see docs). Its runs part from PyTorch's by rounding
    only (PyTorch's dot products and fused p + t·d round otherwise), which L-BFGS
    amplifies as it amplifies a one-ulp change of the start: test_optims52 bounds one by
    the other."""

    _own_step = False  # its step keeps its state in wxb's (state_dict, load_state_dict)
    hyperparameters = (
        "lr", "max_iter", "max_eval", "tolerance_grad", "tolerance_change", "history_size",
        "line_search_fn",
    )  # fmt: skip
    fixed_flags: ClassVar[dict[str, tuple[bool, str]]] = {}
    max_iter = _GroupValue()
    max_eval = _GroupValue()
    tolerance_grad = _GroupValue()
    tolerance_change = _GroupValue()
    history_size = _GroupValue()
    line_search_fn = _GroupValue()

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict],
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ) -> None:
        if max_eval is None:  # PyTorch's: fixed at construction
            max_eval = _positive_int(max_iter, "LBFGS max_iter") * 5 // 4
        self._lbfgs: dict = {}
        super().__init__(
            params, lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change, history_size=history_size,
            line_search_fn=line_search_fn,
        )  # fmt: skip
        if len(self.param_groups) != 1:
            raise ConfigError(
                "LBFGS takes one parameter group (its steps are over all the parameters at "
                f"once, as PyTorch's); got {len(self.param_groups)}"
            )
        if len({p.dtype for p in self.params}) != 1:
            raise ConfigError(
                "LBFGS: the parameters must share one dtype (its vectors span them all); got "
                + ", ".join(sorted({str(p.dtype) for p in self.params}))
            )

    def _check_group(self, group: dict, where: str) -> None:
        super()._check_group(group, where)
        for key in ("max_iter", "history_size"):
            group[key] = _positive_int(group.get(key), f"{where} {key}")
        max_eval = group.get("max_eval")
        if isinstance(max_eval, float) and max_eval.is_integer():
            max_eval = int(max_eval)  # (PyTorch's own default is max_iter * 1.25 in its docs)
        group["max_eval"] = _positive_int(max_eval, f"{where} max_eval")
        for key in ("tolerance_grad", "tolerance_change"):
            group[key] = _non_negative(group.get(key), f"{where} {key}")
        if group.get("line_search_fn") not in (None, "strong_wolfe"):
            raise ConfigError(
                f"{where} line_search_fn must be None or 'strong_wolfe' (PyTorch's only "
                f"search); got {group.get('line_search_fn')!r}"
            )

    def add_param_group(self, group: dict) -> None:
        raise ConfigError("LBFGS takes one parameter group (as PyTorch's); make a new LBFGS")

    # -- state: one for the whole run, as PyTorch's -----------------------------------------
    @property
    def state(self) -> dict:
        """PyTorch's ``optimizer.state``: the run's state under the first parameter;
        forgetting it (``del``, ``pop``, ``= {}``, ``clear()``) starts the run again at the
        next step, as PyTorch's (a plain copy, as it was, made ``del`` change nothing)."""
        return _LBFGSState(self, {self.params[0]: self._lbfgs} if self._lbfgs else {})

    def _restart(self, indices: Iterable[int]) -> None:
        if 0 in indices:  # the run's state lives under the first parameter only
            self._lbfgs = {}

    @state.setter
    def state(self, value: object) -> None:
        if not isinstance(value, Mapping) or len(value):
            raise ConfigError(
                "LBFGS.state = …: only an empty mapping may be assigned (PyTorch's reset); "
                "a saved state goes in with load_state_dict"
            )
        self._lbfgs = {}

    def state_dict(self) -> dict:
        """The run's state (arrays copied, numbers as Python's) under index 0, as PyTorch
        keeps it under its first parameter; the group's settings."""

        def plain(value):
            if isinstance(value, list):
                return [plain(v) for v in value]
            if isinstance(value, np.ndarray):
                return value.copy()
            if value is None or isinstance(value, int):
                return value
            return float(value)

        (start, stop), group = self._bounds[0], self.param_groups[0]
        values = {k: v for k, v in group.items() if k != "params"}
        state = {0: {k: plain(v) for k, v in self._lbfgs.items()}} if self._lbfgs else {}
        groups = [{**values, "params": list(range(start, stop))}]
        return {"state": state, "param_groups": groups, "steps": self.steps}

    def load_state_dict(self, state_dict: dict) -> None:
        name = "LBFGS.load_state_dict"
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= state_dict.keys():
            raise ConfigError(f"{name} takes a dict from state_dict()")
        groups, state = state_dict["param_groups"], state_dict["state"]
        count = len(self.params)
        if (
            not isinstance(groups, list)
            or len(groups) != 1
            or not isinstance(groups[0], dict)
            or list(groups[0].get("params", ())) != list(range(count))
        ):
            raise ConfigError(f"{name}: needs one parameter group of its {count} parameters")
        values = {k: v for k, v in groups[0].items() if k != "params"}
        self._check_group(values, f"{name} param_groups[0]")
        if not isinstance(state, dict) or len(state) > 1:
            raise ConfigError(f"{name}: 'state' must be {{}} or {{0: the run's state}}")
        entry = next(iter(state.values()), {})
        size = sum(p.data.size for p in self.params)
        dtype = self.params[0].dtype
        loaded: dict = {}
        for key, value in entry.items() if isinstance(entry, dict) else [(None, entry)]:
            at = f"{name} state[0][{key!r}]"
            if is_torch_tensor(value):
                raise ConfigError(
                    f"{at}: a PyTorch optimiser's state (torch tensors); "
                    "wxb.interop.optimizer_from_torch(torch_opt, optimizer) takes it"
                )
            if key in _LBFGS_COUNTS:
                loaded[key] = _count_value(value, at)
            elif key in _LBFGS_NUMBERS:
                loaded[key] = _number(value, at)
            elif key in _LBFGS_VECTORS or key in _LBFGS_LISTS:
                many = value if key in _LBFGS_LISTS else [value]
                if not isinstance(many, list):
                    raise ConfigError(f"{at}: must be a list of vectors")
                arrays = [np.asarray(v) for v in many]
                if any(a.shape != (size,) or a.dtype.kind != "f" for a in arrays):
                    raise ConfigError(f"{at}: needs vectors of {size} numbers (the parameters')")
                arrays = [a.astype(dtype, copy=True) for a in arrays]
                loaded[key] = arrays if key in _LBFGS_LISTS else arrays[0]
            elif key in ("ro", "al"):
                if not isinstance(value, list):
                    raise ConfigError(f"{at}: must be a list of numbers")
                loaded[key] = [
                    None if v is None and key == "al" else dtype.type(_number(v, at)) for v in value
                ]
            else:
                raise ConfigError(f"{at}: LBFGS keeps no such state")
        lengths = {len(loaded[k]) for k in ("old_dirs", "old_stps", "ro") if k in loaded}
        if len(lengths) > 1:
            raise ConfigError(f"{name}: old_dirs, old_stps and ro must be as long as each other")
        steps = _count_value(state_dict.get("steps", 0), f"{name} steps")
        for key in ("t", "H_diag"):  # the scalars PyTorch holds as 0-d tensors
            if key in loaded:
                loaded[key] = dtype.type(loaded[key])
        _replace_group(self.param_groups[0], values)
        self._checked = [self._values(self.param_groups[0])]
        self._lbfgs, self.steps = loaded, steps
        self._loads = getattr(self, "_loads", 0) + 1
        self._set_loaded_state()

    # -- the update -------------------------------------------------------------------------
    def _gather_flat_grad(self) -> np.ndarray:
        dtype = self.params[0].dtype
        parts = []
        for i, p in enumerate(self.params):
            if p.grad is None:  # as PyTorch's: a parameter without one counts as 0
                parts.append(np.zeros(p.data.size, dtype))
            else:
                _check_grad_shape(p, i)
                parts.append(np.asarray(p.grad, dtype=dtype).reshape(-1))
        return np.concatenate(parts)

    def _add_grad(self, step_size, update: np.ndarray) -> None:
        offset = 0
        with WEIGHTS.writing(self.params):
            for p in self.params:
                n = p.data.size
                p._versions[0] += 1
                p.data += step_size * update[offset : offset + n].reshape(p.data.shape)
                offset += n

    def _clone_param(self) -> list[np.ndarray]:
        return [p.data.copy() for p in self.params]

    def _set_param(self, values: list[np.ndarray]) -> None:
        with WEIGHTS.writing(self.params):
            for p, value in zip(self.params, values, strict=True):
                p._versions[0] += 1
                np.copyto(p.data, value)

    def _directional_evaluate(self, closure, x, t, d):
        self._add_grad(t, d)
        with enable_grad():
            loss = float(closure())
        flat_grad = self._gather_flat_grad()
        self._set_param(x)
        return loss, flat_grad

    def step(self, closure: Callable[[], object] | None = None) -> object:
        """Up to ``max_iter`` iterations; returns the closure's first loss."""
        if closure is None:
            raise ConfigError(
                "LBFGS.step needs a closure (it evaluates the loss several times a step): "
                "def closure(): opt.zero_grad(); loss = loss_fn(model(X), y); "
                "loss.backward(); return loss — then opt.step(closure)"
            )
        group = self._groups()[0]
        for p in self.params:
            _make_steppable(p)
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        line_search_fn, history_size = group["line_search_fn"], group["history_size"]
        state = self._lbfgs
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        with enable_grad():
            orig_loss = closure()
        self.steps += 1  # (after the closure, which writes no weight: a step counts once it may)
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad()
        if np.abs(flat_grad).max(initial=0) <= tolerance_grad:
            return orig_loss  # optimal already
        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        H_diag = state.get("H_diag")
        prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:  # the steepest descent
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1
            else:  # the two-loop recursion over the kept curvature pairs
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = y.dot(s)
                if ys > 1e-10:  # a pair of positive curvature: kept
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / y.dot(y)
                num_old = len(old_dirs)
                if "al" not in state:
                    state["al"] = [None] * history_size
                al = state["al"]
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):
                    al[i] = old_stps[i].dot(q) * ro[i]
                    q += -al[i] * old_dirs[i]
                d = r = q * H_diag
                for i in range(num_old):
                    be_i = old_dirs[i].dot(r) * ro[i]
                    r += (al[i] - be_i) * old_stps[i]
            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.copy()
            else:
                np.copyto(prev_flat_grad, flat_grad)
            prev_loss = loss
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / np.abs(flat_grad).sum()) * lr
            else:
                t = lr
            gtd = flat_grad.dot(d)
            if gtd > -tolerance_change:  # not a descent direction
                break
            ls_func_evals = 0
            if line_search_fn is not None:
                x_init = self._clone_param()

                def obj_func(x, t, d):
                    return self._directional_evaluate(closure, x, t, d)

                loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                    obj_func, x_init, t, d, loss, flat_grad, gtd, max_ls=max_eval - current_evals
                )
                self._add_grad(t, d)
                opt_cond = np.abs(flat_grad).max() <= tolerance_grad
            else:  # a fixed step, then the gradient there (unless this was the last)
                self._add_grad(t, d)
                opt_cond = False
                if n_iter != max_iter:
                    with enable_grad():
                        loss = float(closure())
                    flat_grad = self._gather_flat_grad()
                    opt_cond = np.abs(flat_grad).max() <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if np.abs(d * t).max() <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break
        state.update(
            d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
            prev_flat_grad=prev_flat_grad, prev_loss=prev_loss,
        )  # fmt: skip
        return orig_loss


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
    "nadam": NAdam,
    "radam": RAdam,
    "adamax": Adamax,
    "adadelta": Adadelta,
    "rprop": Rprop,
    "asgd": ASGD,
    "adafactor": Adafactor,
    "muon": MuonWithAdamW,
}
# why fit and wxb train take no LBFGS (its step is many evaluations of a closure)
LBFGS_NOT_IN_FIT = (
    "LBFGS steps with a closure it calls several times a step (the loss and gradients at "
    "trial points), and fit steps once a batch with gradients it computed; write the loop: "
    "opt.step(closure) with closure() zeroing the gradients, computing the loss, running "
    "backward and returning the loss"
)
# The rate an optimiser named to fit or wxb train starts from without an lr, where it is
# not the class's own (PyTorch's) default: SGD(params) is torch.optim.SGD's 1e-3.
NAMED_LRS = {"sgd": 0.01}


def get_optimizer(name: str | Optimizer, params: Iterable[Parameter], **options) -> Optimizer:
    if isinstance(name, Optimizer):
        return name
    if isinstance(name, type) and issubclass(name, Optimizer):  # (as get_loss says of a class)
        raise ConfigError(
            f"optimizer is the class {name.__name__}; give an instance: "
            f"{name.__name__}(model.parameters(), lr=…), or a name"
        )
    if isinstance(name, str) and name.lower() in OPTIMIZERS:
        name = name.lower()  # Keras's and PyTorch's spellings too: "Adam", "SGD", "RMSprop"
    if isinstance(name, str) and name.lower() == "lbfgs":
        raise ConfigError(
            f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}: {LBFGS_NOT_IN_FIT}"
        )
    if not isinstance(name, str) or name not in OPTIMIZERS:
        # one line: a torch optimiser's repr ran over a dozen lines, its groups listed
        package = type(name).__module__.split(".")[0]
        got = repr(name) if isinstance(name, str) or name is None else f"a {type(name).__name__}"
        if package == "torch":
            got = f"PyTorch's {type(name).__name__}, which steps torch tensors (wxb's own: "
            got += "Adam(model.parameters()), …)"
        raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {got}")
    kind = OPTIMIZERS[name]
    # (not **torch_only, PyTorch's implementation choices: "it takes …, torch_only" named
    # no option a user could give)
    takes = [
        n
        for n, p in inspect.signature(kind).parameters.items()
        if n != "params" and p.kind is not p.VAR_KEYWORD
    ]
    unknown = [k for k, v in options.items() if v is not None and k not in takes]
    if unknown:  # a ConfigError naming it, not Python's TypeError from the constructor
        raise ConfigError(f"{name} has no option {unknown[0]!r} (it takes {', '.join(takes)})")
    if options.get("lr") is None and name in NAMED_LRS:
        options = {**options, "lr": NAMED_LRS[name]}
    return kind(params, **{k: v for k, v in options.items() if v is not None})


# ---------------------------------------------------------------------------------
# Learning-rate schedules: call .step() once per epoch (OneCycleLR: once per batch)
# ---------------------------------------------------------------------------------
def _unstepped(optimizer: Optimizer) -> dict[int, float]:
    """Each group's rate as the last schedule made on ``optimizer`` set its epoch 0, while
    no schedule on it has stepped or loaded a state since (empty otherwise)."""
    return getattr(optimizer, "_unstepped_lrs", {})


def _last_lrs(value: object, optimizer: Optimizer, where: str) -> list[float] | None:
    """A saved state's ``_last_lr`` (get_last_lr()): one rate per group at most, or None
    (a state saved before wxb kept them)."""
    if value is None:
        return None
    groups = len(optimizer.param_groups)
    if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= groups:
        raise ConfigError(
            f"{where} _last_lr must be a list of 1 to {groups} rates (one per parameter "
            f"group); got {value!r}"
        )
    return [_non_negative(v, f"{where} _last_lr") for v in value]


def _refuse_torch_schedule_state(name: str, state: object) -> None:
    """PyTorch's scheduler state (its ``last_epoch``; wxb's says ``epoch``) told as such,
    with the way to load it: the keys it lacks alone did not say what to do."""
    if isinstance(state, dict) and "last_epoch" in state and "epoch" not in state:
        raise ConfigError(
            f"{name}.load_state_dict: a PyTorch scheduler's state (last_epoch "
            f"{state['last_epoch']!r}); {name}.load_state_dict takes what {name}.state_dict() "
            "gives (PyTorch's: wxb.interop.scheduler_from_torch(torch_sched, schedule), "
            "after wxb.interop.optimizer_from_torch)"
        )


def _below_zero(lr: object) -> bool:
    return isinstance(lr, (int, float)) and lr < 0


def refuse_unschedulable(optimizer: Optimizer, who: str) -> None:
    """Refuse a schedule (``who``) on an optimiser with a group whose lr is not a number:
    one with a step of its own may have none (PyTorch's scheduler raises KeyError: 'lr')."""
    for index, group in enumerate(optimizer.param_groups):
        lr = group.get("lr")
        if isinstance(lr, bool) or not isinstance(lr, (int, float, np.integer, np.floating)):
            held = f"lr={lr!r}" if "lr" in group else "no 'lr' (its defaults name none)"
            raise ConfigError(
                f"{who}: {type(optimizer).__name__}.param_groups[{index}] has {held}; a "
                "schedule sets each group's lr, a number"
            )


class LRSchedule:
    """Sets each group's lr from that group's own starting rate, as PyTorch's schedulers.

    The starting rate is the group's ``initial_lr``, written into the group by the
    first schedule made on the optimiser (its lr then), so a second schedule starts
    from the same rate: unlike PyTorch's, which keeps the lr it finds, it sets the lr
    an earlier schedule left back to that rate (a second ``fit`` with a schedule runs
    it from its start); one made while the schedules already made have not stepped
    goes on from the rate they set, as PyTorch's (a ConstantLR warm-up and an
    ExponentialLR stepped side by side, ChainedScheduler's example). A rate set by
    hand since the last schedule set one is the new starting rate (PyTorch's
    schedulers also go on from the lr they find). A group
    added later keeps its lr through the epoch it was added in and follows the
    schedule from there (as PyTorch's StepLR does): its starting rate is the one the
    schedule would have brought to that lr by then. Several schedules stepped on one
    optimiser compound, as PyTorch's do: each goes on from the rate the others left.
    """

    # what its state holds besides its settings (a resume compares only the settings)
    COUNTERS: ClassVar[tuple[str, ...]] = ("epoch", "base_lrs")
    # made with last_epoch=k: whether the rates held are epoch k's, stepped to k + 1 (_resume)
    resume_steps: ClassVar[bool] = False
    # whether fit steps it after every batch (OneCycleLR) rather than every epoch
    per_batch: ClassVar[bool] = False
    # whether it goes on from a rate set by hand (PyTorch's chainable form)
    chainable: ClassVar[bool] = True

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise ConfigError(f"{type(self).__name__} takes a wxb optimiser; got {optimizer!r}")
        refuse_unschedulable(optimizer, type(self).__name__)
        self.optimizer = optimizer
        self.base_lrs: list[float] = []
        self.epoch = 0
        self._lrs_found: list[float] = []  # each group's lr before start() set epoch 0's
        # each group's initial_lr before start() (None: none) and as start() left it
        self._initials_found: list[tuple[float | None, float | None]] = []
        self._lrs_set: dict[int, float] = {}  # group index → the rate this schedule last set

    @property
    def base_lr(self) -> float:
        """The first group's starting rate."""
        return self.base_lrs[0] if self.base_lrs else self._bases()[0]  # a read: no group taken

    def _bases(self) -> list[float]:
        for index, group in enumerate(self.optimizer.param_groups):
            if index < len(self.base_lrs):
                continue
            if self._set_by_hand(index, group):
                group["initial_lr"] = group["lr"]
            initial = group.setdefault("initial_lr", group["lr"])
            # Seen after the schedule began (it has set rates), in epoch 0 too: from its lr
            # now, which a schedule stepped before this one may have changed (an initial_lr
            # it carries may be another group's, copied with the group's settings).
            began = self.epoch or self._lrs_set
            if began:
                base = self._base_reaching(group["lr"], self.epoch)
            elif self.chainable and _unstepped(self.optimizer).get(index) == group["lr"]:
                # made beside a schedule that has not stepped yet (its epoch 0's rate
                # held): they compound from here, as PyTorch's (ChainedScheduler); from
                # initial_lr, ConstantLR's factor was dropped here and undone at its end
                base = group["lr"]
            else:
                base = initial
            self.base_lrs.append(base)
        return self.base_lrs

    def _base_reaching(self, lr: float, epoch: int) -> float:
        """The starting rate whose schedule is at ``lr`` at ``epoch``: every schedule here
        is a·base + c at a given epoch (γ^k; 1/(e+1)^p; a cosine between η_min and base).
        Where none is (the cosine's trough), or where it is negative and the schedule
        would take the rate below zero, ``lr`` itself."""
        c = self.lr_at(epoch, 0.0)
        a = self.lr_at(epoch, 1.0) - c
        base = (lr - c) / a if a > 0 else lr
        if a > 0 and base < 0 and -base * a <= 8 * np.finfo(float).eps * (abs(lr) + abs(c)):
            # a base of 0 (a group at lr 0) found by rounding just below it: the cosine's
            # climb out of a trough from η_min read as "below zero" and took the rate
            # itself for the base, rising to η_min where PyTorch's falls back to 0
            base = 0.0
        negative_ok = self._base_may_be_negative({**vars(self), "epoch": epoch})
        return base if math.isfinite(base) and (base >= 0 or negative_ok) else lr

    def _base_may_be_negative(self, values: dict) -> bool:
        """Whether, with these settings, the rates from ``values["epoch"]`` on stay
        between the rate then and a floor ≥ 0 until the next re-basing, whatever the
        starting rate."""
        return False

    def start(self, last_epoch: int = -1) -> None:
        """Set the rates for epoch 0 (a schedule starts from each group's initial rate).

        ``last_epoch`` k ≥ 0 is PyTorch's resume: the schedule goes on from epoch k + 1
        with the rates the groups hold (an optimiser's loaded state), each group's
        starting rate its ``initial_lr`` (which that state holds: none is refused, as
        PyTorch does), and the next ``step()`` gives epoch k + 2's rates from them."""
        where = f"{type(self).__name__} last_epoch"
        if isinstance(last_epoch, (bool, np.bool_)) or not isinstance(
            last_epoch, (int, np.integer)
        ):
            raise ConfigError(f"{where} must be a whole number ≥ -1; got {last_epoch!r}")
        if last_epoch < -1:
            raise ConfigError(f"{where} must be a whole number ≥ -1; got {last_epoch}")
        groups = self.optimizer.param_groups
        self._lrs_found = [group["lr"] for group in groups]
        # made beside schedules that have not stepped (they compound, _bases): what the
        # groups held before the first of them, which its load_state_dict would put back
        # had the later ones not set the rates since
        unstepped, before = _unstepped(self.optimizer), getattr(self.optimizer, "_found_lrs", {})
        for index, group in enumerate(groups):
            if self.chainable and unstepped.get(index) == group["lr"] and index in before:
                self._lrs_found[index] = before[index]
        self._loads_found = getattr(self.optimizer, "_loads", 0)
        before = [group.get("initial_lr") for group in groups]
        if last_epoch >= 0:
            self._resume(int(last_epoch), where)
        else:
            self._set(0)
            self.optimizer._unstepped_lrs = {i: g["lr"] for i, g in enumerate(groups)}
            self.optimizer._found_lrs = dict(enumerate(self._lrs_found))
        self._initials_found = [
            (found, group.get("initial_lr")) for found, group in zip(before, groups, strict=True)
        ]
        self._settings_seen = copy.deepcopy(self.settings())

    def _resume(self, last_epoch: int, where: str) -> None:
        """PyTorch's ``last_epoch=k``: at epoch k + 1, going on from the rates the groups
        hold as from rates set by hand; those rates are epoch k + 1's (``resume_steps``
        False: PyTorch's ExponentialLR and CosineAnnealingLR) or epoch k's, stepped to
        k + 1 at once (True: its StepLR and MultiStepLR)."""
        groups = self.optimizer.param_groups
        for index, group in enumerate(groups):
            if "initial_lr" not in group:
                raise ConfigError(
                    f"{where}={last_epoch}: param_groups[{index}] has no 'initial_lr' (a "
                    "resume takes it from the optimiser's loaded state_dict; load that first, "
                    "or make the schedule with last_epoch=-1 and load its own state_dict)"
                )
        self.epoch = last_epoch + 1
        if self.resume_steps:  # epoch k + 1's change from the rates held, as PyTorch's
            self.base_lrs = [self._base_reaching(group["lr"], last_epoch) for group in groups]
            self._set(self.epoch)
            return
        self.base_lrs = [self._base_reaching(group["lr"], self.epoch) for group in groups]
        for index, group in enumerate(groups):
            self.optimizer.scheduled_lrs[index] = self._lrs_set[index] = group["lr"]

    def lr_at(self, epoch: int, base_lr: float | None = None) -> float:
        """The rate at ``epoch`` of a group starting at ``base_lr`` (the first group's)."""
        raise NotImplementedError

    def _rate_of(self, index: int, epoch: int, base: float) -> float:
        """Group ``index``'s rate at ``epoch`` from its starting rate ``base`` (a cycling
        schedule's comes from its own per-group bounds)."""
        return self.lr_at(epoch, base)

    def _set_by_hand(self, index: int, group: dict, *, by: dict[int, float] | None = None) -> bool:
        """Whether group ``index``'s lr was changed since a schedule last set it; with
        ``by``, since that record's schedule did (by hand or by another schedule)."""
        last = (self.optimizer.scheduled_lrs if by is None else by).get(index)
        return last is not None and not math.isclose(group["lr"], last, rel_tol=1e-12)

    def _set(self, epoch: int) -> None:
        groups = self.optimizer.param_groups
        for index, (group, base) in enumerate(zip(groups, self._bases(), strict=True)):
            rate = self._rate_of(index, epoch, base)
            group["lr"] = self.optimizer.scheduled_lrs[index] = self._lrs_set[index] = rate

    def _keeps_rates(self, epoch: int) -> bool:
        """Whether stepping to ``epoch`` leaves the rates the groups hold (PolynomialLR
        past its end, as PyTorch's: a rate set by hand then is kept)."""
        return False

    def _keep_rates(self) -> None:
        """A step that keeps each group's rate: recorded as this schedule's setting."""
        self._bases()
        for index, group in enumerate(self.optimizer.param_groups):
            self.optimizer.scheduled_lrs[index] = self._lrs_set[index] = group["lr"]

    def state_dict(self) -> dict:
        """As PyTorch's schedulers: every setting and counter but the optimiser, plain values.

        A read: a group added since the last step is not taken on here (its starting rate
        comes at the next step, from the rate it holds then, which a schedule stepped
        before this one may have changed); ``base_lrs`` then holds fewer rates than the
        optimiser has groups, and a load leaves those groups to the next step too."""
        state = {k: v for k, v in vars(self).items() if k != "optimizer" and k[0] != "_"}
        # get_last_lr() too, PyTorch's "_last_lr": a resumed run reads what this one did
        # (the closed form at the epoch is not it after a rate set by hand; it said 0.0
        # for a PolynomialLR past its end whose group's lr was set to 0.02)
        return {
            **state,
            "base_lrs": list(self.base_lrs),
            "_last_lr": self.get_last_lr(),
            "type": type(self).__name__,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Continue from ``state_dict()`` of a schedule of the same kind. The groups' ``lr``
        stay what the optimiser holds (as PyTorch's schedulers leave them), apart from this
        schedule's own setting of epoch 0's rates when it was made, where neither it has
        stepped or loaded nor the optimiser loaded a state since: the rates the optimiser
        held then come back (an optimiser resumed before the schedule was made holds the
        saved ones; one resumed after it, PyTorch's order, keeps them). An lr other
        than the loaded epoch's rate counts as set by hand, and the next step goes on from
        it, as the uninterrupted run does."""
        state = state_dict  # (PyTorch's keyword: load_state_dict(state_dict=…))
        name = type(self).__name__
        _refuse_torch_schedule_state(name, state)
        if not isinstance(state, dict) or state.get("type", name) != name:
            kind = state.get("type") if isinstance(state, dict) else type(state).__name__
            raise ConfigError(f"{name}.load_state_dict: the state is of a {kind}")
        values = {k: v for k, v in state.items() if k != "type"}
        last = _last_lrs(values.pop("_last_lr", None), self.optimizer, f"{name}.load_state_dict")
        mine = {k for k in vars(self) if k != "optimizer" and k[0] != "_"}
        if set(values) != mine:
            raise ConfigError(
                f"{name}.load_state_dict: the state holds {sorted(values)}; expected {sorted(mine)}"
            )
        for key, value in values.items():
            what = f"{name}.load_state_dict {key}"
            if key == "base_lrs":  # groups added since the saved schedule's last step: none
                groups = len(self.optimizer.param_groups)
                if not isinstance(value, list) or not 1 <= len(value) <= groups:
                    raise ConfigError(
                        f"{what} must be a list of 1 to {groups} rates (one per parameter "
                        f"group); got {value!r}"
                    )
                values[key] = [_number(v, what) for v in value]
                if not all(math.isfinite(v) for v in values[key]):
                    raise ConfigError(f"{what} must be finite; got {value!r}")
            elif key == "epoch":
                values[key] = _count_value(value, what)
            else:
                values[key] = _like(getattr(self, key), value, what)
        self._check_settings(values, f"{name}.load_state_dict")
        if min(values["base_lrs"], default=0) < 0 and not self._base_may_be_negative(values):
            raise ConfigError(
                f"{name}.load_state_dict base_lrs: a negative starting rate would take the rate "
                f"below zero from epoch {values['epoch']}; got {values['base_lrs']!r}"
            )
        vars(self).update(values)
        if self._optimizer_loaded_since():
            # the optimiser's state loaded since this schedule was made (PyTorch's order,
            # and fit's resume): its rates are the saved run's, though one equal to epoch
            # 0's here (LinearLR's start_factor·η inside epoch 0) looked like this
            # schedule's own write, and was put back to the lr found (η)
            self._forget_found()
        # PyTorch's order (optimiser, its state, schedule, its state): the schedule, made
        # last, set epoch 0's rates over the loaded ones; those come back. A group's lr
        # changed since (the optimiser's state loaded after the schedule was made) stays.
        found = self._lrs_found
        for index, group in enumerate(self.optimizer.param_groups):
            # exactly: a loaded rate one ulp from epoch 0's (a cosine back at its top) is
            # the loaded one, carried through the uninterrupted run's re-basing
            untouched = self._lrs_set.get(index) in (None, group["lr"])
            if untouched and index < len(found):
                group["lr"] = found[index]
            # So is its initial_lr: making this schedule took a loaded lr that an earlier
            # schedule's load_state_dict had left unlike its rate for one set by hand, and
            # wrote it as the group's initial_lr (a cosine's climb out of a trough, and any
            # later schedule, start from it); the saved run's comes back.
            initials = getattr(self, "_initials_found", [])  # (a schedule pickled before)
            if index < len(initials):
                initial, made = initials[index]
                if initial is not None and group.get("initial_lr") == made:
                    group["initial_lr"] = initial
                elif initial is None and index >= len(self.base_lrs):
                    group.pop("initial_lr", None)  # made here, for a group not yet taken on
            if index >= len(self.base_lrs):  # added after the saved schedule's last step:
                if self.optimizer.scheduled_lrs.get(index) == self._lrs_set.pop(index, None):
                    self.optimizer.scheduled_lrs.pop(index, None)  # (this schedule's write)
                continue  # taken on at the next step, from its lr then, as in the saved run
            # A state an older wxb saved in the epoch a group was added holds its rate while
            # the optimiser's state taken before it lacks the initial_lr it wrote then.
            group.setdefault("initial_lr", group["lr"])
            rate = self._rate_of(index, self.epoch, self.base_lrs[index])
            self.optimizer.scheduled_lrs[index] = self._lrs_set[index] = rate
        self._forget_found()
        self._settings_seen = copy.deepcopy(self.settings())
        self.optimizer._unstepped_lrs = {}
        self._loaded_last = last  # get_last_lr() until the next step (None: a state without)

    def _optimizer_loaded_since(self) -> bool:
        """Whether the optimiser's state was loaded since this schedule took its rates
        (PyTorch's resume order: the schedule made, then the optimiser's state loaded)."""
        return getattr(self.optimizer, "_loads", 0) != getattr(self, "_loads_found", 0)

    def _forget_found(self) -> None:
        """Past the first step or load, the rates (and initial_lr) the groups held when
        this schedule was made are no longer its own write to undo: a later load leaves
        the groups' lr as they are, as PyTorch's does."""
        self._lrs_found, self._initials_found = [], []

    def _check_settings(self, values: dict, where: str) -> None:
        """Refuse settings this kind of schedule cannot run with (subclasses say which)."""

    def settings(self) -> dict:
        """What decides its rates, besides the starting rates and the epoch."""
        skip = {"optimizer", "base_lrs", *self.COUNTERS}
        return {
            "type": type(self).__name__,
            **{k: v for k, v in vars(self).items() if k not in skip and k[0] != "_"},
        }

    @property
    def last_epoch(self) -> int:
        """PyTorch's name for ``epoch``: the epochs stepped so far (0 when made)."""
        return self.epoch

    @last_epoch.setter
    def last_epoch(self, value: int) -> None:
        """``scheduler.last_epoch = k``, as PyTorch users move a schedule (a resume): the
        next step gives epoch k + 1's rates going on from the rates the groups hold, as
        PyTorch's chainable schedules do (an attribute of its own changed nothing); one
        that is not chainable (LambdaLR, OneCycleLR) from its starting rates, as
        PyTorch's, and CosineAnnealingWarmRestarts from its T_cur."""
        value = _count_value(value, f"{type(self).__name__}.last_epoch")
        bases = self._bases()
        # (not chainable, PyTorch's LambdaLR and OneCycleLR go on from the starting
        # rates: λ(k + 1)·initial_lr, not the rate held × λ(k + 1)/λ(k))
        for i, group in enumerate(self.optimizer.param_groups if self.chainable else []):
            bases[i] = self._base_reaching(group["lr"], value)
        self.epoch = value

    def get_last_lr(self) -> list[float]:
        """Each group's rate as this schedule last set it (its lr now where it set none),
        as PyTorch's ``get_last_lr()``."""
        groups = self.optimizer.param_groups
        loaded = self.__dict__.get("_loaded_last") or []
        return [
            loaded[i] if i < len(loaded) else self._lrs_set.get(i, group["lr"])
            for i, group in enumerate(groups)
        ]

    def step(self, epoch: int | None = None) -> float:
        """Next epoch's rates; returns the first group's. A group whose lr was set by hand
        since the last step goes on from that rate, as PyTorch's chainable schedulers do:
        its starting rate becomes the one this schedule would have brought to it.

        ``step(epoch)``, PyTorch's older (deprecated) form: the rates of that epoch from
        each group's starting rate, PyTorch's closed form."""
        self._loaded_last = None
        if epoch is not None:
            return self._step_to(epoch)
        bases = self._bases()  # a group added this epoch: its lr is this epoch's rate
        self._follow_settings(bases)
        self._rebase(bases)
        self.epoch += 1
        negative = self._negative_groups()
        self._set(self.epoch)
        self._note_negative_rates(negative)
        self._forget_found()
        self.optimizer._unstepped_lrs = {}  # a schedule made from now on starts over
        return self.optimizer.lr

    def _step_to(self, epoch: object) -> float:
        epoch = _count_value(epoch, f"{type(self).__name__}.step epoch")
        self._bases()
        self.epoch = epoch
        negative = self._negative_groups()
        self._closed_form(epoch)
        self._note_negative_rates(negative)
        self._forget_found()
        return self.optimizer.lr

    def _negative_groups(self) -> set[int]:
        """The groups below 0 before a step (none looked for while no schedule set one)."""
        if not self.optimizer.__dict__.get("_negative_rate_sources"):
            return set()
        return {i for i, g in enumerate(self.optimizer.param_groups) if _below_zero(g["lr"])}

    def _note_negative_rates(self, before: set[int]) -> None:
        """Record which schedule took a group's rate below 0 (``before``: the groups
        already there, whose source is kept when another schedule of a chain set it):
        the optimiser's next step refuses that rate and names it."""
        sources = self.optimizer.__dict__.setdefault("_negative_rate_sources", {})
        for index, group in enumerate(self.optimizer.param_groups):
            if not _below_zero(group["lr"]):
                if sources:
                    sources.pop(index, None)
            elif index not in before or sources.get(index, (id(self),))[0] == id(self):
                sources[index] = (id(self), self._rate_source(self.epoch))

    def _rate_source(self, epoch: int) -> str:
        """The schedule that set the rates of ``epoch``, as a refusal names it."""
        return f"{type(self).__name__} at its step {epoch}"

    def _closed_form(self, epoch: int) -> None:
        """Set each group's rate at ``epoch`` from its starting rate (PyTorch's closed form)."""
        self._set(epoch)

    def _follow_settings(self, bases: list[float]) -> None:
        """Before a step: a setting changed since the last one (``schedule.gamma = 0.9``)
        is checked as at construction, and every group goes on from the rate it holds
        under it, as PyTorch's chainable schedulers do, not as if it had held from epoch
        0 (StepLR's γ 0.5 → 0.9 after three steps gave 0.1·0.9⁴, not 0.0125·0.9)."""
        settings = self.settings()
        seen = getattr(self, "_settings_seen", None)  # (a schedule pickled before has none)
        if seen is not None and settings != seen:
            values = {k: v for k, v in settings.items() if k != "type"}
            self._check_settings(values, f"{type(self).__name__} (a setting changed)")
            vars(self).update(values)  # (as checked: MultiStepLR's milestones sorted)
            for i, group in enumerate(self.optimizer.param_groups):
                bases[i] = self._base_reaching(group["lr"], self.epoch)
        self._settings_seen = copy.deepcopy(self.settings())

    def _rebase(self, bases: list[float]) -> None:
        """Before a step: the starting rate of each group whose lr was changed since
        this schedule set it (by hand or by another schedule) is the one reaching it."""
        for i, group in enumerate(self.optimizer.param_groups):
            if self._set_by_hand(i, group, by=self._lrs_set):
                bases[i] = self._base_reaching(group["lr"], self.epoch)


class StepLR(LRSchedule):
    """η · γ^⌊epoch / step_size⌋."""

    resume_steps = True

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        super().__init__(optimizer)
        self.step_size = _positive_int(step_size, "StepLR step_size")
        self.gamma = _positive_number(gamma, "StepLR gamma")
        self.start(last_epoch)

    def _check_settings(self, values: dict, where: str) -> None:
        _positive_int(values["step_size"], f"{where} step_size")
        _positive_number(values["gamma"], f"{where} gamma")

    def lr_at(self, epoch: int, base_lr: float | None = None) -> float:
        base = self.base_lr if base_lr is None else base_lr
        return base * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRSchedule):
    """η_min + (η − η_min)·(1 + cos(π·epoch / T_max))/2, as PyTorch's closed form.

    Past T_max the cosine goes on (the rate rises again), as in PyTorch: from each trough
    it climbs back towards the group's ``initial_lr``, whatever rate was set by hand
    before the trough. A rate set by hand below η_min goes on towards η_min from below,
    as PyTorch's does, while the cosine falls; while it climbs, this rate climbs
    towards the rate set (PyTorch's falls on, below zero).
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        super().__init__(optimizer)
        self.T_max = _positive_int(T_max, "CosineAnnealingLR T_max")
        self.eta_min = _non_negative(eta_min, "CosineAnnealingLR eta_min")
        self.start(last_epoch)

    def _check_settings(self, values: dict, where: str) -> None:
        _positive_int(values["T_max"], f"{where} T_max")
        _non_negative(values["eta_min"], f"{where} eta_min")

    def lr_at(self, epoch: int, base_lr: float | None = None) -> float:
        base = self.base_lr if base_lr is None else base_lr
        cosine = (1 + math.cos(math.pi * epoch / self.T_max)) / 2
        return self.eta_min + (base - self.eta_min) * cosine

    def _base_may_be_negative(self, values: dict) -> bool:
        # falling towards η_min ≥ 0, or at the trough (η_min whatever the base), whose
        # step re-bases every group: a run saved there loads
        return values["epoch"] % (2 * values["T_max"]) <= values["T_max"]

    def _rebase(self, bases: list[float]) -> None:
        """Out of a trough, as PyTorch: the rate found there plus
        (initial_lr − η_min)·(1 − cos(π/T_max))/2, and the cosine on from that."""
        if not self._at_trough(self.epoch):
            super()._rebase(bases)
            return
        for i, group in enumerate(self.optimizer.param_groups):
            bases[i] = self._base_reaching(self._climbed(group, bases[i]), self.epoch + 1)

    def _at_trough(self, epoch: int) -> bool:
        return not (epoch - self.T_max) % (2 * self.T_max)

    def _climbed(self, group: dict, base: float) -> float:
        """The rate PyTorch's chainable form gives the epoch after a trough."""
        rise = (1 - math.cos(math.pi / self.T_max)) / 2
        return group["lr"] + (group.get("initial_lr", base) - self.eta_min) * rise


class InverseScalingLR(LRSchedule):
    """η / (epoch + 1)^power, scikit-learn's 'invscaling' counted in epochs."""

    def __init__(self, optimizer: Optimizer, power: float = 0.5, last_epoch: int = -1) -> None:
        super().__init__(optimizer)
        self.power = _non_negative(power, "InverseScalingLR power")
        self.start(last_epoch)

    def _check_settings(self, values: dict, where: str) -> None:
        _non_negative(values["power"], f"{where} power")

    def lr_at(self, epoch: int, base_lr: float | None = None) -> float:
        base = self.base_lr if base_lr is None else base_lr
        return base / (epoch + 1) ** self.power


class ExponentialLR(LRSchedule):
    """η · γ^epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        super().__init__(optimizer)
        self.gamma = _positive_number(gamma, "ExponentialLR gamma")
        self.start(last_epoch)

    def _check_settings(self, values: dict, where: str) -> None:
        _positive_number(values["gamma"], f"{where} gamma")

    def lr_at(self, epoch: int, base_lr: float | None = None) -> float:
        base = self.base_lr if base_lr is None else base_lr
        return base * self.gamma**epoch


class MultiStepLR(LRSchedule):
    """η · γ^(milestones reached): γ once more at each milestone epoch (a milestone
    given twice counts twice, as in PyTorch)."""

    resume_steps = True

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Iterable[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        super().__init__(optimizer)
        self.milestones = _milestones(milestones, "MultiStepLR milestones")
        self.gamma = _positive_number(gamma, "MultiStepLR gamma")
        self.start(last_epoch)

    def _check_settings(self, values: dict, where: str) -> None:
        values["milestones"] = _milestones(values["milestones"], f"{where} milestones")
        _positive_number(values["gamma"], f"{where} gamma")

    def lr_at(self, epoch: int, base_lr: float | None = None) -> float:
        base = self.base_lr if base_lr is None else base_lr
        return base * self.gamma ** bisect.bisect_right(self.milestones, epoch)


def _milestones(values: object, what: str) -> list[int]:
    """Epochs ≥ 1, sorted (PyTorch counts them as a multiset)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ConfigError(f"{what} must be a list of epochs; got {values!r}")
    return sorted(_positive_int(v, what) for v in values)


class ReduceLROnPlateau(LRSchedule):
    """PyTorch's: each group's lr × ``factor`` (not below its ``min_lr``) once the
    watched figure has not improved for more than ``patience`` epochs; then ``cooldown``
    epochs before counting again. ``step(metric)`` takes the epoch's figure (fit gives
    it the one early stopping watches: val_loss, else the training loss). Improving
    means below best·(1 − threshold) ("rel") or best − threshold ("abs") in mode
    "min"; above in "max". It goes on from whatever lr a group holds (one set by hand
    too), as PyTorch's does: it has no starting rate."""

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | list[float] = 0.0,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(optimizer)
        values = {
            "mode": mode, "factor": factor, "patience": patience, "threshold": threshold,
            "threshold_mode": threshold_mode, "cooldown": cooldown, "min_lr": min_lr, "eps": eps,
        }  # fmt: skip
        self._check_settings(values, "ReduceLROnPlateau")
        vars(self).update(values)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self._last_lrs = [group["lr"] for group in optimizer.param_groups]

    def _check_settings(self, values: dict, where: str) -> None:
        if values["mode"] not in ("min", "max"):
            raise ConfigError(f"{where} mode must be 'min' or 'max'; got {values['mode']!r}")
        if values["threshold_mode"] not in ("rel", "abs"):
            raise ConfigError(
                f"{where} threshold_mode must be 'rel' or 'abs'; got {values['threshold_mode']!r}"
            )
        values["factor"] = _number(values["factor"], f"{where} factor")
        if not 0 <= values["factor"] < 1:
            raise ConfigError(f"{where} factor must be in [0, 1); got {values['factor']}")
        for key in ("patience", "cooldown"):
            value = values[key]
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise ConfigError(f"{where} {key} must be a whole number ≥ 0; got {value!r}")
            if value < 0:
                raise ConfigError(f"{where} {key} must be a whole number ≥ 0; got {value!r}")
            values[key] = int(value)
        values["threshold"] = _non_negative(values["threshold"], f"{where} threshold")
        values["eps"] = _non_negative(values["eps"], f"{where} eps")
        floors = values["min_lr"]
        groups = len(self.optimizer.param_groups)
        if isinstance(floors, (list, tuple)):
            if len(floors) != groups:
                raise ConfigError(
                    f"{where} min_lr holds {len(floors)} rates for {groups} parameter groups"
                )
            values["min_lr"] = [_non_negative(v, f"{where} min_lr") for v in floors]
        else:
            values["min_lr"] = _non_negative(floors, f"{where} min_lr")

    def start(self) -> None:
        """Nothing to set: the rates stay what the groups hold until a plateau."""

    def lr_at(self, epoch: int, base_lr: float | None = None) -> float:
        raise ConfigError("ReduceLROnPlateau's rates follow the figure it watches, not the epoch")

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            edge = (
                self.best * (1 - self.threshold)
                if self.threshold_mode == "rel"
                else (self.best - self.threshold)
            )
            return value < edge
        edge = (
            self.best * (1 + self.threshold)
            if self.threshold_mode == "rel"
            else (self.best + self.threshold)
        )
        return value > edge

    def step(self, metrics: float | None = None, epoch: int | None = None) -> float:  # type: ignore[override]
        """One epoch's figure: the rates are cut after too many epochs without progress.
        ``epoch`` (PyTorch's deprecated argument) sets the count of epochs alone."""
        if metrics is None:
            raise ConfigError(
                "ReduceLROnPlateau.step needs the epoch's figure: step(val_loss), as PyTorch's"
            )
        value = float(metrics.item() if isinstance(metrics, Tensor) else metrics)
        if epoch is None:
            self.epoch += 1
        else:
            self.epoch = _count_value(epoch, "ReduceLROnPlateau.step epoch")
        if self._improved(value):
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            groups = len(self.optimizer.param_groups)
            if isinstance(self.min_lr, list) and len(self.min_lr) != groups:
                # a group added since (add_param_group) has no floor: PyTorch refuses too
                raise ConfigError(
                    f"ReduceLROnPlateau min_lr holds {len(self.min_lr)} rates for {groups} "
                    "parameter groups (one added since it was made): set scheduler.min_lr "
                    "to one rate per group"
                )
            for index, group in enumerate(self.optimizer.param_groups):
                floor = self.min_lr[index] if isinstance(self.min_lr, list) else self.min_lr
                cut = max(group["lr"] * self.factor, floor)
                if group["lr"] - cut > self.eps:
                    group["lr"] = cut
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lrs = [group["lr"] for group in self.optimizer.param_groups]
        return self.optimizer.lr

    @property
    def min_lrs(self) -> list[float]:
        """PyTorch's name for the floors: one rate per parameter group."""
        floors, groups = self.min_lr, len(self.optimizer.param_groups)
        return list(floors) if isinstance(floors, list) else [floors] * groups

    @min_lrs.setter
    def min_lrs(self, value: list[float]) -> None:
        """``scheduler.min_lrs = [...]``, as PyTorch's error after an add_param_group asks
        (an attribute of its own left the floors as they were)."""
        where, groups = "ReduceLROnPlateau.min_lrs", len(self.optimizer.param_groups)
        if not isinstance(value, (list, tuple)) or len(value) != groups:
            raise ConfigError(
                f"{where} takes one rate per parameter group ({groups}); got {value!r}"
            )
        self.min_lr = [_non_negative(v, where) for v in value]

    @property
    def last_epoch(self) -> int:
        """PyTorch's name for ``epoch``: the figures stepped on so far."""
        return self.epoch

    @last_epoch.setter
    def last_epoch(self, value: int) -> None:
        """A count only, as PyTorch's: the rates follow the figures, not the epoch."""
        self.epoch = _count_value(value, f"{type(self).__name__}.last_epoch")

    def get_last_lr(self) -> list[float]:
        """Each group's rate as this step left it, as PyTorch's: a schedule stepped after
        it on the same optimiser changes the groups' lr, not this (a group added since:
        its lr now)."""
        last = getattr(self, "_last_lrs", [])  # (a plateau pickled before has none)
        groups = self.optimizer.param_groups
        return [last[i] if i < len(last) else group["lr"] for i, group in enumerate(groups)]

    def state_dict(self) -> dict:
        state = {k: v for k, v in vars(self).items() if k != "optimizer" and k[0] != "_"}
        state.pop("base_lrs", None)
        return {**state, "_last_lr": self.get_last_lr(), "type": type(self).__name__}

    def load_state_dict(self, state_dict: dict) -> None:
        state = state_dict  # (PyTorch's keyword: load_state_dict(state_dict=…))
        name = type(self).__name__
        _refuse_torch_schedule_state(name, state)
        if not isinstance(state, dict) or state.get("type", name) != name:
            kind = state.get("type") if isinstance(state, dict) else type(state).__name__
            raise ConfigError(f"{name}.load_state_dict: the state is of a {kind}")
        values = {k: v for k, v in state.items() if k != "type"}
        last = _last_lrs(values.pop("_last_lr", None), self.optimizer, f"{name}.load_state_dict")
        mine = set(self.state_dict()) - {"type", "_last_lr"}
        if set(values) != mine:
            raise ConfigError(
                f"{name}.load_state_dict: the state holds {sorted(values)}; expected {sorted(mine)}"
            )
        self._check_settings(values, f"{name}.load_state_dict")
        for key in ("epoch", "num_bad_epochs", "cooldown_counter"):
            values[key] = _count_value(values[key], f"{name}.load_state_dict {key}")
        values["best"] = _number(values["best"], f"{name}.load_state_dict best")
        vars(self).update(values)
        # the saved run's get_last_lr(); a state without them: the rates the groups hold
        self._last_lrs = last or [group["lr"] for group in self.optimizer.param_groups]

    COUNTERS: ClassVar[tuple[str, ...]] = ("epoch", "best", "num_bad_epochs", "cooldown_counter")


SCHEDULES = {
    "step": StepLR,
    "cosine": CosineAnnealingLR,
    "invscaling": InverseScalingLR,
    "plateau": ReduceLROnPlateau,
    "onecycle": None,  # OneCycleLR, defined below
}


class LambdaLR(LRSchedule):
    """η · lr_lambda(epoch), as PyTorch's LambdaLR: one function for every group, or a
    list of one per group (PyTorch's docs' example), called with the epoch (0 when
    made). As PyTorch's, it is not chainable: each step sets base·λ(epoch) over a rate
    set by hand since. The function is kept out of ``state_dict()`` (as PyTorch keeps
    a plain function out of its own)."""

    chainable: ClassVar[bool] = False

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        super().__init__(optimizer)
        functions = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda]
        groups = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)) and len(functions) != groups:
            raise ConfigError(
                f"LambdaLR lr_lambda holds {len(functions)} functions for {groups} parameter "
                "groups (one per group, or one for every group)"
            )
        for function in functions:
            if not callable(function):
                raise ConfigError(
                    f"LambdaLR lr_lambda must be a function of the epoch; got {function!r}"
                )
        self._lr_lambda = (
            lr_lambda
            if len(functions) == 1 and not isinstance(lr_lambda, (list, tuple))
            else functions
        )
        self.start(last_epoch)

    def _function(self, index: int) -> Callable[[int], float]:
        if not isinstance(self._lr_lambda, list):
            return self._lr_lambda
        if index >= len(self._lr_lambda):  # PyTorch's zips them (strict): it fails too
            raise ConfigError(
                f"LambdaLR holds {len(self._lr_lambda)} functions, one per parameter group "
                f"it was made on; param_groups[{index}] was added since and has none"
            )
        return self._lr_lambda[index]

    def lr_at(self, epoch: int, base_lr: float | None = None, index: int = 0) -> float:
        base = self.base_lr if base_lr is None else base_lr
        factor = self._function(index)(epoch)
        if hasattr(factor, "item") and not isinstance(factor, (np.floating, np.integer)):
            factor = factor.item()  # a 0-d tensor or array, as torch takes it
        return base * _number(factor, f"LambdaLR lr_lambda({epoch})")

    def _set(self, epoch: int) -> None:
        if not isinstance(self._lr_lambda, list):
            super()._set(epoch)
            return
        groups = self.optimizer.param_groups
        for index, (group, base) in enumerate(zip(groups, self._bases(), strict=True)):
            rate = self.lr_at(epoch, base, index)  # (each group its own function)
            group["lr"] = self.optimizer.scheduled_lrs[index] = self._lrs_set[index] = rate

    def load_state_dict(self, state_dict: dict) -> None:
        """As every schedule's; with one function per group, each group's own rate is the
        one recorded as set (the loaded epoch's)."""
        state = state_dict  # (PyTorch's keyword: load_state_dict(state_dict=…))
        super().load_state_dict(state)
        if isinstance(self._lr_lambda, list):
            for index, base in enumerate(self.base_lrs):
                rate = self.lr_at(self.epoch, base, index)
                self.optimizer.scheduled_lrs[index] = self._lrs_set[index] = rate

    def _rebase(self, bases: list[float]) -> None:
        """Not chainable, as PyTorch's: a rate set by hand is overwritten at the next step."""

    def _resume(self, last_epoch: int, where: str) -> None:
        """PyTorch's last_epoch=k: epoch k + 1's rate base·λ(k + 1) from each group's
        initial_lr, whatever rate the group holds."""
        super()._resume(last_epoch, where)
        self.base_lrs = [group["initial_lr"] for group in self.optimizer.param_groups]
        self._set(self.epoch)


class MultiplicativeLR(LRSchedule):
    """PyTorch's MultiplicativeLR: each step multiplies every group's rate by
    ``lr_lambda(epoch)`` (epoch ≥ 1), so the rate at epoch n is η·λ(1)·…·λ(n). As
    PyTorch's, it goes on from a rate set by hand (chainable); ``step(epoch)`` multiplies
    the rate held by λ(epoch) once. One function for every group; the function is kept
    out of ``state_dict()``, as PyTorch's."""

    def __init__(
        self, optimizer: Optimizer, lr_lambda: Callable[[int], float], last_epoch: int = -1
    ) -> None:
        super().__init__(optimizer)
        if isinstance(lr_lambda, (list, tuple)):
            raise ConfigError(
                "MultiplicativeLR: a list of functions, one per parameter group, is not "
                "implemented in wxb: give one function for every group"
            )
        if not callable(lr_lambda):
            raise ConfigError(
                f"MultiplicativeLR lr_lambda must be a function of the epoch; got {lr_lambda!r}"
            )
        self._lr_lambda = lr_lambda
        self._products = [1.0]  # λ(1)·…·λ(n) at n, each λ called once, as PyTorch calls it
        self.start(last_epoch)

    def _factor(self, epoch: int) -> float:
        factor = self._lr_lambda(epoch)
        if hasattr(factor, "item") and not isinstance(factor, (np.floating, np.integer)):
            factor = factor.item()  # a 0-d tensor or array, as torch takes it
        return _number(factor, f"MultiplicativeLR lr_lambda({epoch})")

    def lr_at(self, epoch: int, base_lr: float | None = None) -> float:
        base = self.base_lr if base_lr is None else base_lr
        products = self._products
        while len(products) <= epoch:
            products.append(products[-1] * self._factor(len(products)))
        return base * products[epoch]

    def _closed_form(self, epoch: int) -> None:
        # PyTorch's has none: step(epoch) multiplies the rate held by λ(epoch) once
        factor = self._factor(epoch) if epoch > 0 else 1.0
        self._bases()
        for index, group in enumerate(self.optimizer.param_groups):
            rate = group["lr"] * factor
            group["lr"] = self.optimizer.scheduled_lrs[index] = self._lrs_set[index] = rate
            self.base_lrs[index] = self._base_reaching(rate, epoch)


class LinearLR(LRSchedule):
    """η · f(epoch), f going linearly from ``start_factor`` to ``end_factor`` over
    ``total_iters`` epochs and staying there, as PyTorch's LinearLR (its warm-up)."""

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        super().__init__(optimizer)
        given = {"start_factor": start_factor, "end_factor": end_factor, "total_iters": total_iters}
        self._check_settings(given, "LinearLR")
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        self.total_iters = int(total_iters)
        self.start(last_epoch)

    def _check_settings(self, values: dict, where: str) -> None:
        start = _number(values["start_factor"], f"{where} start_factor")
        if not 0 < start <= 1:  # PyTorch's bounds
            raise ConfigError(f"{where} start_factor must be in (0, 1]; got {start}")
        _fraction(values["end_factor"], f"{where} end_factor", one=True)
        _positive_int(values["total_iters"], f"{where} total_iters")

    def lr_at(self, epoch: int, base_lr: float | None = None) -> float:
        base = self.base_lr if base_lr is None else base_lr
        done = min(epoch, self.total_iters) / self.total_iters
        return base * (self.start_factor + (self.end_factor - self.start_factor) * done)

    def _closed_form(self, epoch: int) -> None:
        LRSchedule._set(self, epoch)  # base · end_factor past total_iters, as PyTorch's

    def _set(self, epoch: int) -> None:
        if epoch <= self.total_iters:
            super()._set(epoch)
            return
        # Past total_iters PyTorch's LinearLR leaves each rate as it finds it. base ·
        # end_factor is that rate, but after a decay to end_factor 0 no base reaches a
        # rate set by hand since, and it was set back to 0.
        self._bases()
        for index, group in enumerate(self.optimizer.param_groups):
            self.optimizer.scheduled_lrs[index] = self._lrs_set[index] = group["lr"]


def _per_group(
    optimizer: Optimizer, value: object, what: str, check: Callable, groups: int | None = None
) -> list[float]:
    """One value for every group, or a list of one per group (PyTorch's _format_param);
    ``groups``: how many (the optimiser's by default)."""
    groups = len(optimizer.param_groups) if groups is None else groups
    if isinstance(value, (list, tuple)):
        if len(value) != groups:
            raise ConfigError(
                f"{what} holds {len(value)} values for {groups} parameter groups (one per group)"
            )
        return [check(v, what) for v in value]
    return [check(value, what)] * groups


def _not_chainable(self: LRSchedule, bases: list[float]) -> None:
    """Not chainable, as PyTorch's: a rate set by hand is overwritten at the next step
    (OneCycleLR's and CyclicLR's ``_rebase``)."""


def _resume_from_initial_lrs(self: LRSchedule, last_epoch: int, where: str) -> None:
    """PyTorch's last_epoch=k: step k + 1's rate from each group's initial_lr
    (OneCycleLR's and CyclicLR's ``_resume``)."""
    for index, group in enumerate(self.optimizer.param_groups):
        if "initial_lr" not in group:
            raise ConfigError(
                f"{where}={last_epoch}: param_groups[{index}] has no 'initial_lr' (a "
                "resume takes it from the optimiser's loaded state_dict; load that first)"
            )
    self.base_lrs = [group["initial_lr"] for group in self.optimizer.param_groups]
    self.epoch = last_epoch + 1
    self._set(self.epoch)


class OneCycleLR(LRSchedule):
    """PyTorch's OneCycleLR: the rate climbs from max_lr/div_factor to max_lr over the
    first ``pct_start`` of ``total_steps`` (cosine or linear), then falls to
    max_lr/(div_factor·final_div_factor); ``three_phase`` comes back down to the
    starting rate first. With ``cycle_momentum`` the momentum (SGD's, RMSprop's) or
    β₁ (of Adam, AdamW, NAdam, RAdam, Adamax: their ``betas``) moves the other way,
    between max_momentum and base_momentum. It is stepped once a batch (``fit`` does
    so: ``total_steps`` must cover epochs × batches per epoch); as PyTorch's, a rate
    set by hand is overwritten at the next step, and a step past ``total_steps`` is
    refused. As PyTorch's, each group cycles between the ``initial_lr``, ``max_lr`` and
    ``min_lr`` (and ``max_momentum``, ``base_momentum``) it holds at each step: the ones
    this schedule wrote, or a later one on the optimiser (a SequentialLR of two
    OneCycleLR runs both on the second's), a loaded state's, a group added since with its
    own, or ones set by hand."""

    per_batch: ClassVar[bool] = True
    chainable: ClassVar[bool] = False

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | list[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.85,
        max_momentum: float | list[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        super().__init__(optimizer)
        name = "OneCycleLR"
        if total_steps is not None:
            total_steps = _positive_int(total_steps, f"{name} total_steps")
        elif epochs is not None and steps_per_epoch is not None:
            total_steps = _positive_int(epochs, f"{name} epochs") * _positive_int(
                steps_per_epoch, f"{name} steps_per_epoch"
            )
        else:
            raise ConfigError(f"{name}: give total_steps, or epochs and steps_per_epoch")
        self.total_steps = total_steps
        # (0 as PyTorch's takes it: a group at lr 0, frozen, stays at 0 through the cycle)
        self.max_lr = _per_group(optimizer, max_lr, f"{name} max_lr", _non_negative)
        self.pct_start, self.anneal_strategy = pct_start, anneal_strategy
        self.three_phase, self.cycle_momentum = three_phase, cycle_momentum
        self.div_factor, self.final_div_factor = div_factor, final_div_factor
        self.base_momentum, self.max_momentum = base_momentum, max_momentum
        values = {k: v for k, v in vars(self).items() if k[0] != "_"}
        self._check_settings(values, name)
        vars(self).update({k: v for k, v in values.items() if k in vars(self)})
        if last_epoch == -1:  # as PyTorch: the starting rate is max_lr/div_factor
            for index, group in enumerate(optimizer.param_groups):
                group["initial_lr"] = self.max_lr[index] / self.div_factor
                group["max_lr"] = self.max_lr[index]
                group["min_lr"] = group["initial_lr"] / self.final_div_factor
                if self.cycle_momentum:
                    group["max_momentum"] = self._momentum(index, "max_momentum")
                    group["base_momentum"] = self._momentum(index, "base_momentum")
            self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.start(last_epoch)

    def load_state_dict(self, state_dict: dict) -> None:
        """As every schedule's; the momentum too is the loaded step's, as in the
        uninterrupted run (making the schedule had set it to max_momentum), unless the
        optimiser's state was loaded since: its momentum is then the saved run's, as
        PyTorch's leaves it (an optimiser rolled back, a β₁ set by hand, stay)."""
        state = state_dict  # (PyTorch's keyword: load_state_dict(state_dict=…))
        loaded = self._optimizer_loaded_since()
        super().load_state_dict(state)
        if not loaded:
            self._set_momentum(self.epoch)

    def _check_settings(self, values: dict, where: str) -> None:
        # one per group it was made on: a group added since (add_param_group) has its own
        # max_lr in the group, as PyTorch's reads it, and a saved state holds none for it
        groups = len(getattr(self, "max_lr", None) or self.optimizer.param_groups)
        values["max_lr"] = _per_group(
            self.optimizer, values["max_lr"], f"{where} max_lr", _non_negative, groups
        )
        for key in ("three_phase", "cycle_momentum"):
            if not isinstance(values[key], (bool, np.bool_)):
                raise ConfigError(f"{where} {key} must be True or False; got {values[key]!r}")
            values[key] = bool(values[key])
        values["total_steps"] = _positive_int(values["total_steps"], f"{where} total_steps")
        values["pct_start"] = _fraction(values["pct_start"], f"{where} pct_start", one=True)
        if values["anneal_strategy"] not in ("cos", "linear"):
            raise ConfigError(
                f"{where} anneal_strategy must be 'cos' or 'linear'; got "
                f"{values['anneal_strategy']!r}"
            )
        for key in ("div_factor", "final_div_factor"):
            values[key] = _positive_number(values[key], f"{where} {key}")
        for key in ("base_momentum", "max_momentum"):
            value = values[key]
            if isinstance(value, (list, tuple)):
                values[key] = [_fraction(v, f"{where} {key}", one=False) for v in value]
                if len(value) != groups:
                    raise ConfigError(
                        f"{where} {key} holds {len(value)} values for "
                        f"{groups} parameter groups (one per group)"
                    )
            else:
                values[key] = _fraction(value, f"{where} {key}", one=False)
        if values["cycle_momentum"]:
            defaults = self.optimizer.defaults
            if "momentum" not in defaults and "betas" not in defaults:
                raise ConfigError(
                    f"{where} cycle_momentum=True: {type(self.optimizer).__name__} has no "
                    "momentum or betas to cycle; pass cycle_momentum=False"
                )
        start = 0.0
        for end, _ in self._phases(
            values["total_steps"], values["pct_start"], values["three_phase"]
        ):
            if end == start:  # PyTorch divides by this phase's length, 0: ZeroDivisionError
                raise ConfigError(
                    f"{where} pct_start={values['pct_start']} with total_steps="
                    f"{values['total_steps']} makes a phase of the cycle 0 steps long; give "
                    "another pct_start"
                )
            start = end

    @staticmethod
    def _phases(total: int, pct: float, three: bool) -> list[tuple[float, tuple[str, str]]]:
        """Each phase's last step and the (start, end) it goes between, as PyTorch's."""
        if three:
            return [
                (float(pct * total) - 1, ("initial", "max")),
                (float(2 * pct * total) - 2, ("max", "initial")),
                (total - 1, ("initial", "min")),
            ]
        return [(float(pct * total) - 1, ("initial", "max")), (total - 1, ("max", "min"))]

    def _where(self, step: int) -> tuple[float, tuple[str, str]]:
        """The fraction of its phase ``step`` is at, and the phase's ends."""
        if step > self.total_steps:
            raise ConfigError(
                f"OneCycleLR stepped {step} times; its total_steps is {self.total_steps} (fit "
                "steps it once a batch: give total_steps = epochs × batches per epoch)"
            )
        phases = self._phases(self.total_steps, self.pct_start, self.three_phase)
        start = 0.0
        for i, (end, ends) in enumerate(phases):
            if step <= end or i == len(phases) - 1:
                return (step - start) / (end - start), ends
            start = end
        raise AssertionError

    def _rate_source(self, epoch: int) -> str:
        said = super()._rate_source(epoch)
        last = self.total_steps - 1
        if self.anneal_strategy == "linear" and epoch > last:  # (PyTorch's goes there too)
            said += (
                f", past the end of its linear anneal at step {last} (total_steps="
                f"{self.total_steps}): the optimiser stepped more often than total_steps"
            )
        return said

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def lr_at(self, epoch: int, base_lr: float | None = None) -> float:
        base = self.base_lr if base_lr is None else base_lr
        pct, (start, end) = self._where(epoch)
        rates = {
            "initial": base,
            "max": base * self.div_factor,
            "min": base / self.final_div_factor,
        }
        return self._anneal(rates[start], rates[end], pct)

    def _momentum(self, index: int, key: str) -> float:
        value = getattr(self, key)
        return value[index] if isinstance(value, list) else value

    def _own_cycle(self, index: int, group: dict, keys: tuple[str, ...]) -> bool:
        """Whether group ``index`` holds the keys PyTorch's OneCycleLR reads at every step
        (initial_lr, max_lr and min_lr; max_momentum and base_momentum), so that it cycles
        between those, as there: written by the making of this schedule (or of a later
        one on the optimiser: a SequentialLR of two OneCycleLR runs both on the second's),
        loaded with the optimiser's state, given with a group added since, or set by hand."""
        return all(key in group for key in keys)

    def _rate_of(self, index: int, epoch: int, base: float) -> float:
        group = self.optimizer.param_groups[index]
        if self._own_cycle(index, group, self._RATES):
            return self._own_rate(epoch, group)
        return self.lr_at(epoch, base)

    def _set(self, epoch: int) -> None:
        super()._set(epoch)
        self._set_momentum(epoch)

    _RATES = ("initial_lr", "max_lr", "min_lr")

    def _own_rate(self, epoch: int, group: dict) -> float:
        """The rate at ``epoch`` of a group cycling between its own initial, max and min."""
        pct, ends = self._where(epoch)
        start, end = (group[f"{e}_lr"] for e in ends)
        return self._anneal(start, end, pct)

    def _set_momentum(self, epoch: int) -> None:
        """Each group's momentum (Adam's β₁) at ``epoch``, opposite to the rate."""
        if not self.cycle_momentum:
            return
        pct, ends = self._where(epoch)
        names = {"initial": "max_momentum", "max": "base_momentum", "min": "max_momentum"}
        beta1 = "betas" in self.optimizer.defaults
        for index, group in enumerate(self.optimizer.param_groups):
            if self._own_cycle(index, group, ("max_momentum", "base_momentum")):
                start, end = (group[names[e]] for e in ends)
            elif index >= len(self.max_lr):
                continue  # added since without its bounds: PyTorch's has no momentum for it
            else:
                start, end = (self._momentum(index, names[e]) for e in ends)
            momentum = self._anneal(start, end, pct)
            if beta1 and not group.get("use_muon"):  # (MuonWithAdamW's Muon: its momentum)
                group["betas"] = (momentum, *group["betas"][1:])
            else:
                group["momentum"] = momentum

    _rebase = _not_chainable
    _resume = _resume_from_initial_lrs


class CyclicLR(LRSchedule):
    """PyTorch's CyclicLR: the rate goes from ``base_lr`` up to ``max_lr`` over
    ``step_size_up`` steps and back down over ``step_size_down`` (default the same), the
    height of each cycle scaled by ``mode``: "triangular" (1), "triangular2" (halved each
    cycle), "exp_range" (γ^step), or by a ``scale_fn`` of one's own of the cycle
    (``scale_mode="cycle"``) or of the step ("iterations"). With ``cycle_momentum`` the
    momentum (SGD's, RMSprop's) or β₁ (Adam's and its kin's ``betas``) moves the other
    way, between ``max_momentum`` and ``base_momentum``. Stepped once a batch, as
    PyTorch's (``fit`` does so); not chainable: a rate set by hand is overwritten at the
    next step. ``scale_fn`` is kept out of ``state_dict()``, as PyTorch keeps a plain
    function out of its own."""

    per_batch: ClassVar[bool] = True
    chainable: ClassVar[bool] = False
    MODES: ClassVar[tuple[str, ...]] = ("triangular", "triangular2", "exp_range")

    def __init__(
        self,
        optimizer: Optimizer,
        base_lr: float | list[float],
        max_lr: float | list[float],
        step_size_up: float = 2000,
        step_size_down: float | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.8,
        max_momentum: float | list[float] = 0.9,
        last_epoch: int = -1,
    ) -> None:
        super().__init__(optimizer)
        name = "CyclicLR"
        if scale_fn is not None and not callable(scale_fn):
            raise ConfigError(f"{name} scale_fn must be a function or None; got {scale_fn!r}")
        self._scale_fn = scale_fn
        bases = _per_group(optimizer, base_lr, f"{name} base_lr", _non_negative)
        self.max_lrs = max_lr
        self.step_size_up = step_size_up
        self.step_size_down = step_size_up if step_size_down is None else step_size_down
        self.mode, self.gamma, self.scale_mode = mode, gamma, scale_mode
        self.cycle_momentum = cycle_momentum
        self.base_momentums, self.max_momentums = base_momentum, max_momentum
        values = {k: v for k, v in vars(self).items() if k[0] != "_" and k != "optimizer"}
        values = {k: v for k, v in values.items() if k not in self.COUNTERS}
        self._check_settings(values, name)
        vars(self).update(values)
        if last_epoch == -1:  # as PyTorch's: the groups start at base_lr, at max_momentum
            for index, group in enumerate(optimizer.param_groups):
                # (start() sets lr to base_lr, after noting the rate held: a loaded one
                # that load_state_dict puts back, as for every schedule)
                group.setdefault("initial_lr", bases[index])
                if self.cycle_momentum:
                    group["max_momentum"] = self.max_momentums[index]
                    group["base_momentum"] = self.base_momentums[index]
            self.base_lrs = list(bases)
            self.start(last_epoch)
        else:
            self.start(last_epoch)
            self.base_lrs = list(bases)  # (PyTorch's: the base_lr given, after its first step)

    def _check_settings(self, values: dict, where: str) -> None:
        # one per group it was made on (a group added since has none: refused at a step)
        groups = len(getattr(self, "base_lrs", None) or self.optimizer.param_groups)
        values["max_lrs"] = _per_group(
            self.optimizer, values["max_lrs"], f"{where} max_lr", _non_negative, groups
        )
        for key in ("step_size_up", "step_size_down"):
            values[key] = float(_positive_number(values[key], f"{where} {key}"))
        if values["mode"] not in self.MODES and self._scale_fn is None:
            raise ConfigError(
                f"{where} mode must be one of {', '.join(self.MODES)} (or give scale_fn); "
                f"got {values['mode']!r}"
            )
        values["gamma"] = _positive_number(values["gamma"], f"{where} gamma")
        if values["scale_mode"] not in ("cycle", "iterations"):
            raise ConfigError(
                f"{where} scale_mode must be 'cycle' or 'iterations'; got {values['scale_mode']!r}"
            )
        if self._scale_fn is None:  # as PyTorch's: the mode decides what its scale reads
            values["scale_mode"] = "iterations" if values["mode"] == "exp_range" else "cycle"
        if not isinstance(values["cycle_momentum"], (bool, np.bool_)):
            raise ConfigError(
                f"{where} cycle_momentum must be True or False; got {values['cycle_momentum']!r}"
            )
        values["cycle_momentum"] = bool(values["cycle_momentum"])
        for key, option in (("base_momentums", "base_momentum"), ("max_momentums", "max_momentum")):
            values[key] = _per_group(
                self.optimizer, values[key], f"{where} {option}",
                lambda v, what: _fraction(v, what, one=False), groups,
            )  # fmt: skip
        if values["cycle_momentum"]:
            defaults = self.optimizer.defaults
            if "momentum" not in defaults and "betas" not in defaults:
                raise ConfigError(
                    f"{where} cycle_momentum=True: {type(self.optimizer).__name__} has no "
                    "momentum or betas to cycle; pass cycle_momentum=False"
                )

    def _phase(self, epoch: int) -> tuple[float, float]:
        """Where step ``epoch`` is in its cycle (0 at base_lr, 1 at max_lr) and the
        cycle's scale, in PyTorch's arithmetic."""
        total = self.step_size_up + self.step_size_down
        ratio = self.step_size_up / total
        cycle = math.floor(1 + epoch / total)
        x = 1.0 + epoch / total - cycle
        factor = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        at = cycle if self.scale_mode == "cycle" else epoch
        if self._scale_fn is not None:
            scale = self._scale_fn(at)
            if hasattr(scale, "item") and not isinstance(scale, (np.floating, np.integer)):
                scale = scale.item()  # a 0-d tensor or array, as torch takes it
            return factor, _number(scale, f"CyclicLR scale_fn({at})")
        if self.mode == "triangular2":
            return factor, 1 / (2.0 ** (at - 1))
        if self.mode == "exp_range":
            return factor, self.gamma**at
        return factor, 1.0

    def _rate(self, epoch: int, base: float, top: float) -> float:
        factor, scale = self._phase(epoch)
        return base + (top - base) * factor * scale

    def lr_at(self, epoch: int, base_lr: float | None = None) -> float:
        base = self.base_lr if base_lr is None else base_lr
        return self._rate(epoch, base, self.max_lrs[0])

    def _set(self, epoch: int) -> None:
        super()._set(epoch)
        self._set_momentum(epoch)

    def _rate_of(self, index: int, epoch: int, base: float) -> float:
        if index >= len(self.max_lrs):  # PyTorch's zips them (strict): it fails too
            raise ConfigError(
                f"CyclicLR holds max_lr for the {len(self.max_lrs)} parameter groups it was "
                f"made on; param_groups[{index}] was added since and has none"
            )
        return self._rate(epoch, base, self.max_lrs[index])

    def _set_momentum(self, epoch: int) -> None:
        """Each group's momentum (Adam's β₁) at ``epoch``, opposite to the rate."""
        if not self.cycle_momentum:
            return
        factor, scale = self._phase(epoch)
        beta1 = "betas" in self.optimizer.defaults
        for index, group in enumerate(self.optimizer.param_groups):
            low, high = self.base_momentums[index], self.max_momentums[index]
            momentum = high - (high - low) * factor * scale
            if beta1 and not group.get("use_muon"):  # (MuonWithAdamW's Muon: its momentum)
                group["betas"] = (momentum, *group["betas"][1:])
            else:
                group["momentum"] = momentum

    def load_state_dict(self, state_dict: dict) -> None:
        """As every schedule's; each group's rate recorded as set is its own (its own
        max_lr), and the momentum is the loaded step's, as in the uninterrupted run, unless
        the optimiser's state was loaded since: its momentum is then the saved run's, as
        PyTorch's leaves it (OneCycleLR's rule)."""
        state = state_dict  # (PyTorch's keyword: load_state_dict(state_dict=…))
        loaded = self._optimizer_loaded_since()
        super().load_state_dict(state)
        if not loaded:
            self._set_momentum(self.epoch)

    _rebase = _not_chainable
    _resume = _resume_from_initial_lrs


def _check_members(
    name: str, schedulers: list, optimizer: object, plateau: str, elsewhere: str, chain: str
) -> None:
    """What SequentialLR and ChainedScheduler both ask of the schedules they run: wxb
    schedules, none stepped on a figure, all on ``optimizer``, no chain; the two say why
    in their own words (``plateau``, ``elsewhere``, ``chain``)."""
    for index, schedule in enumerate(schedulers):
        if isinstance(schedule, ChainedScheduler):  # (it said "must be a wxb schedule")
            raise ConfigError(f"{name} schedulers[{index}] is a ChainedScheduler: {chain}")
        if not isinstance(schedule, LRSchedule):
            raise ConfigError(
                f"{name} schedulers[{index}] must be a wxb schedule; got {schedule!r}"
            )
        if isinstance(schedule, ReduceLROnPlateau):
            raise ConfigError(
                f"{name} schedulers[{index}] is a ReduceLROnPlateau, which steps on a {plateau}"
            )
        if schedule.optimizer is not optimizer:
            raise ConfigError(
                f"{name} schedulers[{index}] ({type(schedule).__name__}) is on another "
                f"optimiser: {elsewhere}"
            )


class SequentialLR(LRSchedule):
    """PyTorch's SequentialLR: ``schedulers[i]`` sets the rates from epoch
    ``milestones[i-1]`` on, started again at its epoch 0 there (as PyTorch's, which
    steps it with epoch 0 at the milestone: a warm-up's LinearLR, then a
    CosineAnnealingLR from the full rate). Every schedule starts from the groups'
    ``initial_lr``, as PyTorch's closed forms do, but a MultiplicativeLR, which goes on
    from the rate held times λ(0), and the cycling ones, which keep their own bounds
    (CyclicLR's base_lr, max_lr and momenta per group, OneCycleLR's those the groups
    hold). Schedules stepped once a batch (OneCycleLR) are not mixed with
    ones stepped once an epoch; a ReduceLROnPlateau is refused, as PyTorch does. A
    SequentialLR inside another runs from its own epoch 0 (PyTorch's runs one epoch
    ahead: the outer one's constructor steps it again). ``last_epoch=k`` is refused:
    PyTorch's restarts the first schedule there (pytorch/pytorch#162591); a resume
    loads the saved ``state_dict()`` instead."""

    def __init__(
        self,
        optimizer: Optimizer,
        schedulers: list[LRSchedule],
        milestones: list[int],
        last_epoch: int = -1,
    ) -> None:
        super().__init__(optimizer)
        name = "SequentialLR"
        if not isinstance(schedulers, (list, tuple)):
            raise ConfigError(f"{name} schedulers must be a list of schedules; got {schedulers!r}")
        if not schedulers:
            raise ConfigError(f"{name} expects at least one scheduler; got none")
        _check_members(
            name, schedulers, optimizer,
            "figure, not an epoch: PyTorch's SequentialLR refuses it too",
            "every schedule must be on the SequentialLR's",
            "SequentialLR starts each schedule again at its milestone, which a chain cannot "
            "do (PyTorch's raises NotImplementedError there); chain SequentialLRs instead",
        )  # fmt: skip
        for index, schedule in enumerate(schedulers):
            if isinstance(vars(schedule).get("_lr_lambda"), list):
                raise ConfigError(
                    f"{name} schedulers[{index}] is a LambdaLR with one function per group, "
                    "which a SequentialLR does not run in wxb: give it one function"
                )
        if len({s.per_batch for s in schedulers}) > 1:
            raise ConfigError(
                f"{name} mixes schedules stepped once a batch (OneCycleLR) with ones stepped "
                "once an epoch"
            )
        self._schedulers = list(schedulers)
        values = {"milestones": milestones}
        self._check_settings(values, name)
        self.milestones = values["milestones"]
        if (
            isinstance(last_epoch, (int, np.integer))
            and not isinstance(last_epoch, bool)
            and (last_epoch != -1)
        ):
            # PyTorch's resume this way restarts its first schedule at epoch 0 whatever k
            # and counts from k + 1 (pytorch/pytorch#162591): its rates follow neither the
            # saved run nor one rule wxb could match, so none is guessed here
            raise ConfigError(
                f"{name} last_epoch={last_epoch!r}: a SequentialLR does not resume from "
                "last_epoch (PyTorch's restarts its first schedule at epoch 0 there, "
                "pytorch/pytorch#162591); make it with last_epoch=-1 and load the saved "
                "scheduler.state_dict() with load_state_dict, which goes on exactly"
            )
        # as PyTorch: every group back at its starting rate, the first schedule's epoch 0
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        self.start(last_epoch)
        first = self._schedulers[0]  # what the groups held before it set its epoch 0 (a
        # load_state_dict puts back what was found then: a loaded lr, not the reset above)
        if len(first._lrs_found) == len(optimizer.param_groups):
            self._lrs_found = list(first._lrs_found)
            self._initials_found = list(first._initials_found)
            self._loads_found = first._loads_found

    @property
    def per_batch(self) -> bool:  # type: ignore[override]
        return self._schedulers[0].per_batch

    def _step_to(self, epoch: object) -> float:
        raise ConfigError("SequentialLR.step takes no epoch (PyTorch's neither): call step()")

    def _check_settings(self, values: dict, where: str) -> None:
        milestones = values["milestones"]
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Iterable):
            raise ConfigError(f"{where} milestones must be a list of epochs; got {milestones!r}")
        milestones = list(milestones)
        count = len(self._schedulers)
        if len(milestones) != count - 1:
            raise ConfigError(
                f"{where} milestones must hold one epoch fewer than the schedules: got "
                f"{len(milestones)} milestones for {count} schedules"
            )
        for value in milestones:
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise ConfigError(f"{where} milestones must be whole numbers; got {milestones!r}")
            if value < 0:
                raise ConfigError(f"{where} milestones must be ≥ 0; got {milestones!r}")
        if milestones != sorted(milestones):
            raise ConfigError(f"{where} milestones must be in increasing order; got {milestones!r}")
        values["milestones"] = [int(v) for v in milestones]
        children = values.pop("schedulers", None)
        if children is not None:  # a child's setting changed since (schedule.T_max = …)
            for schedule, settings in zip(self._schedulers, children, strict=True):
                own = {k: v for k, v in settings.items() if k != "type"}
                schedule._check_settings(own, f"{where} {type(schedule).__name__}")
                vars(schedule).update(own)

    def _current(self, epoch: int) -> tuple[LRSchedule, int]:
        """The schedule at ``epoch`` and its own epoch then."""
        index = bisect.bisect_right(self.milestones, epoch)
        return self._schedulers[index], epoch - (self.milestones[index - 1] if index else 0)

    def lr_at(self, epoch: int, base_lr: float | None = None) -> float:
        base = self.base_lr if base_lr is None else base_lr
        schedule, own = self._current(epoch)
        return schedule.lr_at(own, base)

    def _rate_source(self, epoch: int) -> str:
        schedule, own = self._current(epoch)
        which = next(i for i, s in enumerate(self._schedulers) if s is schedule)
        return (
            f"SequentialLR at its step {epoch}: its schedulers[{which}], "
            f"{schedule._rate_source(own)}"
        )

    def _rate_of(self, index: int, epoch: int, base: float) -> float:
        schedule, own = self._current(epoch)
        if isinstance(schedule, (OneCycleLR, CyclicLR)):
            # from its own bounds, as PyTorch's: CyclicLR's base_lr and max_lr of the
            # group, OneCycleLR's the group holds (not the starting rate of the first
            # schedule and the first group's max_lr)
            return schedule._rate_of(index, own, schedule._bases()[index])
        return schedule.lr_at(own, base)

    def _keeps_rates(self, epoch: int) -> bool:
        schedule, own = self._current(epoch)
        return schedule._keeps_rates(own)

    def _set(self, epoch: int) -> None:
        # the schedule at this epoch may keep the rates held (a PolynomialLR past its
        # end: a rate set by hand was taken to 0, where PyTorch's keeps it)
        if self._keeps_rates(epoch):
            self._keep_rates()
        else:
            super()._set(epoch)
        self._set_momentum(epoch)

    def _set_momentum(self, epoch: int) -> None:
        schedule, own = self._current(epoch)
        if isinstance(schedule, (OneCycleLR, CyclicLR, SequentialLR)):
            schedule._set_momentum(own)

    def _rebase(self, bases: list[float]) -> None:
        """As the schedule at this epoch: chainable ones go on from a rate set by hand;
        at a milestone the next starts again from the starting rates (PyTorch's step(0)),
        a MultiplicativeLR from the rate held."""
        schedule, own = self._current(self.epoch + 1)
        if not own and isinstance(schedule, MultiplicativeLR):
            # PyTorch's has no closed form: its epoch 0 there multiplies the rate held by
            # λ(0) (it restarted from initial_lr here)
            factor = schedule._factor(0)
            for i, group in enumerate(self.optimizer.param_groups):
                bases[i] = group["lr"] * factor
        elif not own:
            for i, group in enumerate(self.optimizer.param_groups):
                bases[i] = group.get("initial_lr", bases[i])
        elif isinstance(schedule, CosineAnnealingLR) and schedule._at_trough(own - 1):
            for i, group in enumerate(self.optimizer.param_groups):  # (its climb, as its own)
                bases[i] = self._base_reaching(schedule._climbed(group, bases[i]), self.epoch + 1)
        elif schedule.chainable:
            super()._rebase(bases)

    def settings(self) -> dict:
        return {**super().settings(), "schedulers": [s.settings() for s in self._schedulers]}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "schedulers": [s.settings() for s in self._schedulers]}

    def load_state_dict(self, state_dict: dict) -> None:
        state = state_dict  # (PyTorch's keyword: load_state_dict(state_dict=…))
        if isinstance(state, dict) and "schedulers" in state:
            state = dict(state)
            saved = state.pop("schedulers")
            ours = json.loads(json.dumps([s.settings() for s in self._schedulers]))
            if json.loads(json.dumps(saved)) != ours:
                raise ConfigError(
                    "SequentialLR.load_state_dict: the state's schedules have other "
                    f"settings than this one's: {saved!r}, not {ours!r}"
                )
        loaded = self._optimizer_loaded_since()
        super().load_state_dict(state)
        if not loaded:  # (a cycling one's, as its own load_state_dict does: a momentum the
            # optimiser's state loaded since holds, set by hand in the saved run, stays)
            self._set_momentum(self.epoch)


class ConstantLR(LRSchedule):
    """η · factor until epoch ``total_iters``, then η, as PyTorch's ConstantLR."""

    resume_steps = True  # (last_epoch=k: PyTorch's divides the rate held by factor at k + 1)

    def __init__(
        self,
        optimizer: Optimizer,
        factor: float = 1.0 / 3,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        super().__init__(optimizer)
        values = {"factor": factor, "total_iters": total_iters}
        self._check_settings(values, "ConstantLR")
        self.factor, self.total_iters = values["factor"], values["total_iters"]
        self.start(last_epoch)

    def _check_settings(self, values: dict, where: str) -> None:
        values["factor"] = _fraction(values["factor"], f"{where} factor", one=True)
        values["total_iters"] = _positive_int(values["total_iters"], f"{where} total_iters")

    def lr_at(self, epoch: int, base_lr: float | None = None) -> float:
        base = self.base_lr if base_lr is None else base_lr
        return base * (self.factor if epoch < self.total_iters else 1.0)


class PolynomialLR(LRSchedule):
    """η · (1 − min(epoch, total_iters)/total_iters)^power, as PyTorch's PolynomialLR."""

    def __init__(
        self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1
    ) -> None:
        super().__init__(optimizer)
        values = {"total_iters": total_iters, "power": power}
        self._check_settings(values, "PolynomialLR")
        self.total_iters, self.power = values["total_iters"], values["power"]
        self.start(last_epoch)

    def _check_settings(self, values: dict, where: str) -> None:
        values["total_iters"] = _positive_int(values["total_iters"], f"{where} total_iters")
        # (PyTorch's takes a negative power, and divides by zero at total_iters)
        values["power"] = _non_negative(values["power"], f"{where} power")

    def lr_at(self, epoch: int, base_lr: float | None = None) -> float:
        base = self.base_lr if base_lr is None else base_lr
        return base * (1.0 - min(self.total_iters, epoch) / self.total_iters) ** self.power

    def _keeps_rates(self, epoch: int) -> bool:
        """Past total_iters the rates stay what the groups hold, as PyTorch's (a rate set
        by hand after the end is kept, not taken to 0)."""
        return epoch > self.total_iters

    def _closed_form(self, epoch: int) -> None:
        LRSchedule._set(self, epoch)  # 0 past total_iters, as PyTorch's

    def _set(self, epoch: int) -> None:
        if self._keeps_rates(epoch):
            self._keep_rates()
        else:
            super()._set(epoch)


class CosineAnnealingWarmRestarts(LRSchedule):
    """η_min + (η − η_min)·(1 + cos(π·T_cur/T_i))/2, T_cur the epochs since the last
    restart and T_i the length of this cycle (T_0, then × T_mult at each restart), as
    PyTorch's. ``step(epoch)`` takes a fractional epoch (``epoch + i / batches``, as
    PyTorch's example steps it once a batch); as PyTorch's, not chainable."""

    chainable: ClassVar[bool] = False
    COUNTERS: ClassVar[tuple[str, ...]] = ("epoch", "base_lrs", "T_cur", "T_i")

    def __init__(
        self,
        optimizer: Optimizer,
        T_0: int,
        T_mult: int = 1,
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        super().__init__(optimizer)
        values = {"T_0": T_0, "T_mult": T_mult, "eta_min": eta_min}
        self._check_settings(values, "CosineAnnealingWarmRestarts")
        self.T_0, self.T_mult, self.eta_min = values["T_0"], values["T_mult"], values["eta_min"]
        self.T_i, self.T_cur = self.T_0, 0.0
        self.start(last_epoch)

    def _check_settings(self, values: dict, where: str) -> None:
        values["T_0"] = _positive_int(values["T_0"], f"{where} T_0")
        values["T_mult"] = _positive_int(values["T_mult"], f"{where} T_mult")
        values["eta_min"] = _non_negative(values["eta_min"], f"{where} eta_min")

    def _cycle(self, epoch: int) -> tuple[float, int]:
        """(T_cur, T_i) at a whole ``epoch`` stepped one at a time from 0."""
        if epoch == self.epoch:
            return self.T_cur, self.T_i
        if self.T_mult == 1:
            return float(epoch % self.T_0), self.T_0
        t, length = epoch, self.T_0
        while t >= length:
            t, length = t - length, length * self.T_mult
        return float(t), length

    def lr_at(self, epoch: int, base_lr: float | None = None) -> float:
        base = self.base_lr if base_lr is None else base_lr
        t_cur, t_i = self._cycle(epoch)
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2

    def _rebase(self, bases: list[float]) -> None:
        """Not chainable, as PyTorch's: a rate set by hand is overwritten at the next step."""

    def _resume(self, last_epoch: int, where: str) -> None:
        """PyTorch's last_epoch=k: T_cur k + 1 (wrapped once), from each initial_lr."""
        super()._resume(last_epoch, where)
        self.T_cur, self.T_i = float(last_epoch + 1), self.T_0
        if self.T_cur >= self.T_i:
            self.T_cur, self.T_i = self.T_cur % self.T_i, self.T_i * self.T_mult
        self.base_lrs = [group["initial_lr"] for group in self.optimizer.param_groups]
        self._set(self.epoch)

    def step(self, epoch: float | None = None) -> float:  # type: ignore[override]
        """The next epoch's rates, or (``epoch`` given) those at that epoch, fractional
        ones too, as PyTorch's ``step(epoch)``; returns the first group's."""
        if epoch is None:
            t_cur, t_i = self.T_cur + 1, self.T_i
            if t_cur >= t_i:
                t_cur, t_i = t_cur % t_i, t_i * self.T_mult
            self.T_cur, self.T_i = t_cur, t_i  # the next epoch's, which step() sets
        return super().step(epoch)

    def _step_to(self, epoch: object) -> float:
        """At ``epoch``, fractional too (the base's step forgets a loaded get_last_lr()
        first: kept here, the loaded rate was reported after the step set another)."""
        value = _number(epoch, "CosineAnnealingWarmRestarts.step epoch")
        if not value >= 0 or not math.isfinite(value):
            raise ConfigError(f"CosineAnnealingWarmRestarts.step epoch must be ≥ 0; got {epoch}")
        if value >= self.T_0:
            if self.T_mult == 1:
                self.T_cur = value % self.T_0
            else:
                n = int(math.log((value / self.T_0 * (self.T_mult - 1) + 1), self.T_mult))
                self.T_cur = value - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                self.T_i = self.T_0 * self.T_mult**n
        else:
            self.T_i, self.T_cur = self.T_0, value
        self.T_cur = float(self.T_cur)
        self.epoch = math.floor(value)
        self._bases()
        self._set(self.epoch)
        self._forget_found()
        return self.optimizer.lr


class ChainedScheduler:
    """PyTorch's ChainedScheduler: several schedules on one optimiser stepped together,
    each on the rate the ones before it left (its docs' ConstantLR then ExponentialLR).
    ``step()`` steps each in turn; ``get_last_lr()`` is the groups' lr after the last;
    ``state_dict()`` holds each schedule's. A ReduceLROnPlateau, stepped on a figure, is
    refused (stepped without one here, PyTorch's fails at the first step)."""

    def __init__(self, schedulers: list[LRSchedule], optimizer: Optimizer | None = None) -> None:
        name = "ChainedScheduler"
        if not isinstance(schedulers, (list, tuple)) or not schedulers:
            raise ConfigError(f"{name} expects a list of at least one schedule; got {schedulers!r}")
        optimizer = schedulers[0].optimizer if optimizer is None else optimizer
        _check_members(
            name, schedulers, optimizer,
            "figure: step it on its own (scheduler.step(val_loss))",
            "every schedule must be on the same one",
            "list its schedules in this one, in their order (a chain within a chain steps "
            "them in that order too, as PyTorch's)",
        )  # fmt: skip
        self.optimizer = optimizer
        self._schedulers = list(schedulers)
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def step(self) -> float:
        """Each schedule's next epoch, in turn; returns the first group's rate."""
        for schedule in self._schedulers:
            schedule.step()
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
        return self.optimizer.lr

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def state_dict(self) -> dict:
        return {
            "type": "ChainedScheduler",
            "_last_lr": list(self._last_lr),
            "_schedulers": [s.state_dict() for s in self._schedulers],
        }

    def load_state_dict(self, state_dict: dict) -> None:
        state = state_dict  # (PyTorch's keyword: load_state_dict(state_dict=…))
        where = "ChainedScheduler.load_state_dict"
        saved = state.get("_schedulers") if isinstance(state, dict) else None
        if not isinstance(saved, list) or len(saved) != len(self._schedulers):
            count = len(saved) if isinstance(saved, list) else "no"
            raise ConfigError(
                f"{where}: the state holds {count} schedules' states; this chain has "
                f"{len(self._schedulers)}"
            )
        for schedule, loaded in zip(self._schedulers, saved, strict=True):
            schedule.load_state_dict(loaded)
        self._last_lr = [float(v) for v in state.get("_last_lr", self._last_lr)]


# torch.optim.lr_scheduler's names this module lacks, each with what to write instead
_TORCH_SCHEDULER_WAYS = {
    "LRScheduler": "a schedule of one's own subclasses wxb.optim.LRSchedule (its lr_at(epoch, "
    "base_lr) gives the rate)",
}


class _TorchSchedulerNames(type(sys)):
    """``wxb.optim.lr_scheduler``: the schedules under ``torch.optim.lr_scheduler``'s
    names, so ``from wxb.optim.lr_scheduler import StepLR`` ports as written; a name it
    lacks (LRScheduler) says what to use instead."""

    def __getattr__(self, name: str) -> object:
        if name in _TORCH_SCHEDULER_WAYS:
            raise missing_name(
                self.__name__,
                name,
                f"wxb.optim.lr_scheduler has no {name}: {_TORCH_SCHEDULER_WAYS[name]}",
            )
        raise missing_name(
            self.__name__,
            name,
            f"wxb.optim.lr_scheduler has no attribute {name!r}; it holds {', '.join(self.__all__)}",
        )


# torch.optim's optimisers this module lacks, each with why and what to use instead
_TORCH_OPTIMIZER_WAYS = {
    "SparseAdam": "it steps sparse gradients (torch.nn.Embedding(sparse=True)), which wxb "
    "does not make: its gradients are dense, so use Adam",
}


def __getattr__(name: str) -> object:  # PEP 562: only for names not found above
    if name in _TORCH_OPTIMIZER_WAYS:
        raise missing_name(
            __name__, name, f"wxb.optim has no {name}: {_TORCH_OPTIMIZER_WAYS[name]}"
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


SCHEDULES["onecycle"] = OneCycleLR
lr_scheduler = _TorchSchedulerNames(f"{__name__}.lr_scheduler")
lr_scheduler.__all__ = [
    "ChainedScheduler",
    "MultiplicativeLR",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "OneCycleLR",
    "PolynomialLR",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
]
for _name in lr_scheduler.__all__:
    setattr(lr_scheduler, _name, globals()[_name])
sys.modules[lr_scheduler.__name__] = lr_scheduler  # import wxb.optim.lr_scheduler as torch's

# wxb.optim.optimizer, as torch.optim.optimizer: an optimiser written for torch imports
# ``from torch.optim.optimizer import Optimizer, required``, ported by the module's name
optimizer = type(sys)(f"{__name__}.optimizer", "Optimizer and required, torch.optim.optimizer's")
optimizer.Optimizer, optimizer.required = Optimizer, required
optimizer.__all__ = ["Optimizer", "required"]
sys.modules[optimizer.__name__] = optimizer
