"""Optimisers, in order of increasing complexity; learning-rate schedules; clipping.

Every update is in place on ``param.data``. The optimiser gathers its parameters
into one flat buffer (each ``p.data`` becomes a view of it, with the same
values) and keeps its state (velocity, moments) flat beside it, so one update
rule runs over every parameter at once instead of once per array. The flat
arrays are walked in cache-sized chunks, and on several threads when they are
large, because the update is bound by memory traffic, not arithmetic.
Temporaries live in per-thread scratch buffers allocated once, so a step
allocates nothing after the first. The update rules follow PyTorch's, so
results can be compared.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from wxb.errors import ConfigError
from wxb.nn.module import Module, Parameter

CHUNK = 1 << 17  # elements per pass: the chunk of every array an update touches stays in cache
_pool: ThreadPoolExecutor | None = None


def update_threads() -> int:
    """Threads for large updates: the cores this process may use, at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cores or 1))


def _thread_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(update_threads() - 1 or 1, thread_name_prefix="wxb-update")
    return _pool


class FlatParameters:
    """Parameters of one dtype in one contiguous array; each ``p.data`` is a view of it.

    ``grad`` is a flat gradient buffer of the same layout: the planned training
    step writes ∂L/∂W straight into its views, and other gradients are copied in.
    """

    def __init__(self, params: list[Parameter]) -> None:
        dtype = params[0].dtype
        sizes = [p.data.size for p in params]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
        self.data = np.empty(self.offsets[-1], dtype)
        self.grad = np.empty(self.offsets[-1], dtype)
        self.views = self.split(self.data, params)
        self.grad_views = self.split(self.grad, params)
        for p, view, grad_view in zip(params, self.views, self.grad_views, strict=True):
            np.copyto(view, p.data)
            p.data = view
            p.grad_buffer = grad_view  # the planned path writes ∂L/∂p here: no copy later

    @classmethod
    def possible(cls, params: list[Parameter]) -> bool:
        """One dtype and no parameter listed twice."""
        return len({p.dtype for p in params}) == 1 and len({id(p) for p in params}) == len(params)

    def split(self, flat: np.ndarray, params: list[Parameter]) -> list[np.ndarray]:
        o = self.offsets
        return [flat[o[i] : o[i + 1]].reshape(p.shape) for i, p in enumerate(params)]

    def intact(self, params: list[Parameter]) -> bool:
        """False once something replaced a ``p.data`` (``model.to(dtype)``, an assignment)."""
        return all(p.data is view for p, view in zip(params, self.views, strict=True))


class Optimizer:
    """Base: validation, flat buffers, and the walk of an update rule over them.

    A subclass names its per-parameter state (``state_names``) and writes
    ``_rule``: the update of one contiguous stretch of parameters.
    """

    state_names: tuple[str, ...] = ()  # e.g. the Adam moments, one array per parameter
    # Below this many elements, handing chunks to threads costs more than it saves
    # (measured on a 2-core machine: SGD's two passes gain from 2M, Adam's twelve from 256K).
    threaded_from = 1 << 21

    def __init__(self, params: Iterable[Parameter], lr: float) -> None:
        name = type(self).__name__
        if isinstance(params, Module):
            raise ConfigError(f"{name} takes model.parameters(), not the model itself")
        self.params = list(params)
        if not self.params:
            raise ConfigError(f"{name}: got no parameters to optimise")
        for p in self.params:
            if not isinstance(p, Parameter):
                raise ConfigError(f"{name} takes wxb Parameters (model.parameters()); got {p!r}")
        self.lr = _positive_number(lr, f"{name} lr")
        self.initial_lr = self.lr
        self.steps = 0  # calls of step()
        self.param_steps = [0] * len(self.params)  # updates of each parameter (as PyTorch's)
        self.flat: FlatParameters | None = None
        self._flat_state: dict[str, np.ndarray] = {}
        self._scratch: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _init_state(self) -> None:
        """Zeroed state for every parameter, then everything packed flat. Subclasses call it."""
        for state in self.state_names:
            setattr(self, state, [np.zeros_like(p.data) for p in self.params])
        self._pack()

    def _pack(self) -> None:
        """(Re)gather parameters and state into flat buffers, keeping their values.

        Runs at construction and again when a ``p.data`` was replaced (``model.to``
        casts: the state is cast with it, so training continues where it was).
        """
        self._scratch = {}
        if not FlatParameters.possible(self.params):
            self.flat, self._flat_state = None, {}
            for state in self.state_names:  # one array per parameter, in its dtype
                arrays = getattr(self, state)
                cast = [a.astype(p.dtype) for a, p in zip(arrays, self.params, strict=True)]
                setattr(self, state, cast)
            return
        self.flat = FlatParameters(self.params)
        for state in self.state_names:
            flat_state = np.empty_like(self.flat.data)
            views = self.flat.split(flat_state, self.params)
            for view, array in zip(views, getattr(self, state), strict=True):
                np.copyto(view, array, casting="unsafe")
            self._flat_state[state] = flat_state
            setattr(self, state, views)

    def grad_buffers(self) -> list[np.ndarray] | None:
        """Views of the flat gradient buffer, one per parameter, for a step to write into."""
        if self.flat is not None and not self.flat.intact(self.params):
            self._pack()
        return None if self.flat is None else self.flat.grad_views

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (PyTorch's default), or with ``set_to_none=False`` zero them."""
        for p in self.params:
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad[...] = 0

    def step(self) -> None:
        self.steps += 1
        if self.flat is not None and not self.flat.intact(self.params):
            self._pack()  # a cast or an assigned p.data since the last step
        elif self.flat is None and FlatParameters.possible(self.params):
            self._pack()  # the dtypes were mixed and now agree
        flat, steps = self.flat, self.param_steps
        every_grad = all(p.grad is not None for p in self.params)
        if flat is not None and every_grad and min(steps) == max(steps):
            # One update over the flat buffers: gradients not already in place are copied in.
            for p, view in zip(self.params, flat.grad_views, strict=True):
                if p.grad is not view:
                    np.copyto(view, p.grad, casting="same_kind")
            self.param_steps = [steps[0] + 1] * len(steps)
            states = [self._flat_state[s] for s in self.state_names]
            self._walk(flat.data, flat.grad, states, self.param_steps[0])
            return
        for index, p in enumerate(self.params):  # some gradient is missing: one by one
            if p.grad is not None:
                self.param_steps[index] += 1
                for s in self.state_names:  # the model was cast: keep the state, in its dtype
                    if getattr(self, s)[index].dtype != p.dtype:
                        getattr(self, s)[index] = getattr(self, s)[index].astype(p.dtype)
                states = [getattr(self, s)[index] for s in self.state_names]
                self._walk(p.data, p.grad, states, self.param_steps[index])

    def _walk(self, data: np.ndarray, grad: np.ndarray, states: list, t: int) -> None:
        """Apply ``_rule`` in cache-sized chunks; large arrays are split across threads."""
        arrays = [data, grad, *states]
        if not all(a.flags.c_contiguous for a in arrays):  # an odd user array: in one piece
            self._rule(data, grad, states, t, *self._scratch_for(0, data.shape, data.dtype))
            return
        flat = [a.reshape(-1) for a in arrays]
        size = data.size
        threads = update_threads() if size >= self.threaded_from else 1
        if threads == 1:
            self._walk_range(flat, t, 0, size, 0)
            return
        bounds = [size * k // threads for k in range(threads + 1)]
        pending = [
            _thread_pool().submit(self._walk_range, flat, t, bounds[k], bounds[k + 1], k)
            for k in range(1, threads)
        ]
        self._walk_range(flat, t, bounds[0], bounds[1], 0)
        for job in pending:
            job.result()

    def _walk_range(self, flat: list, t: int, start: int, stop: int, worker: int) -> None:
        s1, s2 = self._scratch_for(worker, (min(CHUNK, stop - start),), flat[0].dtype)
        for a in range(start, stop, CHUNK):
            b = min(a + CHUNK, stop)
            data, grad, *states = (x[a:b] for x in flat)
            self._rule(data, grad, states, t, s1[: b - a], s2[: b - a])

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
    ) -> None:
        """Update ``data`` in place from ``grad``; ``t`` is this update's number (1, 2, …)."""
        raise NotImplementedError


def _with_weight_decay(
    data: np.ndarray, grad: np.ndarray, decay: float, out: np.ndarray
) -> np.ndarray:
    """g + λ·W (L2 regularisation coupled into the gradient)."""
    if not decay:
        return grad
    np.multiply(data, decay, out=out)
    out += grad
    return out


def _positive_number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ConfigError(f"{what} must be a number; got {value!r}")
    if not value > 0 or not math.isfinite(value):
        raise ConfigError(f"{what} must be > 0; got {value}")
    return float(value)


class SGD(Optimizer):
    """W ← W − η·g, with optional momentum (heavy-ball or Nesterov) and weight decay."""

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 0.01,
        momentum: float = 0.0,
        *,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        if momentum < 0 or weight_decay < 0:
            raise ConfigError("SGD: momentum and weight_decay must be ≥ 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ConfigError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")
        self.momentum, self.dampening = momentum, dampening
        self.nesterov, self.weight_decay = nesterov, weight_decay
        self.state_names = ("velocity",) if momentum else ()
        self._init_state()

    def _rule(self, data, grad, states, t, s1, s2):
        g = _with_weight_decay(data, grad, self.weight_decay, s2)
        update = g
        if self.momentum:
            (v,) = states
            if t == 1:  # first update: v = g
                np.copyto(v, g)
            else:  # v ← μ·v + (1 − dampening)·g
                v *= self.momentum
                if self.dampening:
                    np.multiply(g, 1 - self.dampening, out=s1)
                    v += s1
                else:
                    v += g
            if self.nesterov:  # look ahead: g + μ·v
                np.multiply(v, self.momentum, out=s1)
                s1 += g
                update = s1
            else:
                update = v
        np.multiply(update, self.lr, out=s1)
        data -= s1


class Adam(Optimizer):
    """Adam: bias-corrected first and second moments of g; L2 weight decay in the gradient."""

    decoupled = False
    state_names = ("moment1", "moment2")
    threaded_from = 1 << 18

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        if not (
            isinstance(betas, (tuple, list))
            and len(betas) == 2
            and all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas)
        ):
            raise ConfigError(
                f"{type(self).__name__}: betas must be two numbers in [0, 1); got {betas!r}"
            )
        if weight_decay < 0:
            raise ConfigError(f"{type(self).__name__}: weight_decay must be ≥ 0")
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        self._init_state()

    def _rule(self, data, grad, states, t, s1, s2):
        beta1, beta2 = self.betas
        m, v = states
        if self.decoupled:  # AdamW: W ← W − η·λ·W, apart from the gradient
            data *= 1 - self.lr * self.weight_decay
            g = grad
        else:
            g = _with_weight_decay(data, grad, self.weight_decay, s2)
        m -= g  # m ← β₁·m + (1 − β₁)·g, written as β₁·(m − g) + g
        m *= beta1
        m += g
        np.multiply(g, 1 - beta2, out=s1)  # v ← β₂·v + (1 − β₂)·g²
        s1 *= g
        v *= beta2
        v += s1
        # W ← W − η/(1 − β₁ᵗ) · m/(√v/c + ε) with c = √(1 − β₂ᵗ); as c·m/(√v + ε·c),
        # which saves a pass over the array.
        c = math.sqrt(1 - beta2**t)
        np.sqrt(v, out=s1)
        s1 += self.eps * c
        np.divide(m, s1, out=s1)
        s1 *= self.lr / (1 - beta1**t) * c
        data -= s1


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter)."""

    decoupled = True

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def get_optimizer(name: str | Optimizer, params: Iterable[Parameter], **options) -> Optimizer:
    if isinstance(name, Optimizer):
        return name
    if name not in OPTIMIZERS:
        raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}")
    return OPTIMIZERS[name](params, **{k: v for k, v in options.items() if v is not None})


# ---------------------------------------------------------------------------------
# Learning-rate schedules: call .step() once per epoch
# ---------------------------------------------------------------------------------
class LRSchedule:
    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer
        self.base_lr = optimizer.initial_lr
        self.epoch = 0

    def start(self) -> None:
        """Set the rate for epoch 0 (a schedule starts from the optimiser's initial rate)."""
        self.optimizer.lr = self.lr_at(0)

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> float:
        self.epoch += 1
        self.optimizer.lr = self.lr_at(self.epoch)
        return self.optimizer.lr


class StepLR(LRSchedule):
    """η · γ^⌊epoch / step_size⌋."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(optimizer)
        if step_size < 1:
            raise ConfigError("StepLR: step_size must be ≥ 1")
        self.step_size, self.gamma = step_size, gamma
        self.start()

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRSchedule):
    """η_min + (η − η_min)·(1 + cos(π·epoch / T_max))/2, as PyTorch's closed form.

    Past T_max the cosine goes on (the rate rises again), as in PyTorch.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        super().__init__(optimizer)
        if T_max < 1:
            raise ConfigError("CosineAnnealingLR: T_max must be ≥ 1")
        self.T_max, self.eta_min = T_max, eta_min
        self.start()

    def lr_at(self, epoch: int) -> float:
        cosine = (1 + math.cos(math.pi * epoch / self.T_max)) / 2
        return self.eta_min + (self.base_lr - self.eta_min) * cosine


class InverseScalingLR(LRSchedule):
    """η / (epoch + 1)^power, scikit-learn's 'invscaling' counted in epochs."""

    def __init__(self, optimizer: Optimizer, power: float = 0.5) -> None:
        super().__init__(optimizer)
        self.power = power
        self.start()

    def lr_at(self, epoch: int) -> float:
        return self.base_lr / (epoch + 1) ** self.power


SCHEDULES = {"step": StepLR, "cosine": CosineAnnealingLR, "invscaling": InverseScalingLR}


def clip_grad_norm_(params: Iterable[Parameter], max_norm: float) -> float:
    """Scale all gradients in place so their joint L2 norm is at most max_norm.

    Returns the norm before clipping (as ``torch.nn.utils.clip_grad_norm_``).
    """
    grads = [p.grad for p in params if p.grad is not None]
    total = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    factor = max_norm / (total + 1e-6)
    if factor < 1:
        for g in grads:
            g *= factor
    return total
