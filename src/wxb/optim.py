"""Optimisers, in order of increasing complexity; learning-rate schedules; clipping.

Every update is in place on ``param.data``. Temporaries live in two scratch
buffers sized once to the largest parameter, so a step allocates nothing after
the first. The update rules follow PyTorch's, so results can be compared.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from wxb.errors import ConfigError
from wxb.nn.module import Module, Parameter


class Optimizer:
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
        self._largest = max(p.data.size for p in self.params)
        self._scratch: tuple[np.ndarray, np.ndarray] | None = None

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _scratch_for(self, p: Parameter) -> tuple[np.ndarray, np.ndarray]:
        if self._scratch is None or self._scratch[0].dtype != p.dtype:
            self._scratch = (np.empty(self._largest, p.dtype), np.empty(self._largest, p.dtype))
        a, b = self._scratch
        return a[: p.data.size].reshape(p.shape), b[: p.data.size].reshape(p.shape)

    def step(self) -> None:
        self.steps += 1
        for index, p in enumerate(self.params):
            if p.grad is not None:
                self.param_steps[index] += 1
                self._update(index, p, p.grad, *self._scratch_for(p))

    def _update(
        self, index: int, p: Parameter, grad: np.ndarray, s1: np.ndarray, s2: np.ndarray
    ) -> None:
        raise NotImplementedError

    def _with_weight_decay(
        self, p: Parameter, grad: np.ndarray, decay: float, out: np.ndarray
    ) -> np.ndarray:
        """g + λ·W (L2 regularisation coupled into the gradient)."""
        if not decay:
            return grad
        np.multiply(p.data, decay, out=out)
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
        self.velocity: list[np.ndarray | None] = [None] * len(self.params)

    def _update(self, index, p, grad, s1, s2):
        g = self._with_weight_decay(p, grad, self.weight_decay, s2)
        update = g
        if self.momentum:
            v = self.velocity[index]
            if v is not None and v.dtype != p.dtype:  # the model was cast: keep the state
                v = self.velocity[index] = v.astype(p.dtype)
            if v is None:
                v = self.velocity[index] = g.copy()  # first step: v = g
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
        p.data -= s1


class Adam(Optimizer):
    """Adam: bias-corrected first and second moments of g; L2 weight decay in the gradient."""

    decoupled = False

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
        self.moment1: list[np.ndarray | None] = [None] * len(self.params)
        self.moment2: list[np.ndarray | None] = [None] * len(self.params)

    def _update(self, index, p, grad, s1, s2):
        beta1, beta2 = self.betas
        if self.decoupled:  # AdamW: W ← W − η·λ·W, apart from the gradient
            p.data *= 1 - self.lr * self.weight_decay
            g = grad
        else:
            g = self._with_weight_decay(p, grad, self.weight_decay, s2)
        m, v = self.moment1[index], self.moment2[index]
        if m is None:
            m = self.moment1[index] = np.zeros_like(p.data)
            v = self.moment2[index] = np.zeros_like(p.data)
        elif m.dtype != p.dtype:  # the model was cast: keep the moments
            m = self.moment1[index] = m.astype(p.dtype)
            v = self.moment2[index] = v.astype(p.dtype)
        m -= g  # m ← β₁·m + (1 − β₁)·g, written as β₁·(m − g) + g
        m *= beta1
        m += g
        np.multiply(g, g, out=s1)  # v ← β₂·v + (1 − β₂)·g²
        s1 *= 1 - beta2
        v *= beta2
        v += s1
        t = self.param_steps[index]
        step_size = self.lr / (1 - beta1**t)
        np.sqrt(v, out=s1)  # denominator √v̂ + ε, with v̂ = v/(1 − β₂ᵗ)
        s1 *= 1 / math.sqrt(1 - beta2**t)
        s1 += self.eps
        np.divide(m, s1, out=s1)
        s1 *= step_size
        p.data -= s1


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
