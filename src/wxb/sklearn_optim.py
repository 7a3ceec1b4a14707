"""scikit-learn's MLP update rules as wxb optimisers, over one flat parameter buffer.

``wxb.sklearn`` trains with these so that its estimators follow scikit-learn's
``MLPClassifier``/``MLPRegressor`` step for step. They differ from ``wxb.optim``'s
SGD and Adam (which follow PyTorch) in three ways:

    SGD    the learning rate sits inside the velocity:  v ← μ·v − η·g,
           then W ← W + v, or with Nesterov's momentum W ← W + μ·v − η·g
    Adam   the bias corrections are folded into the step size and ε is added to √v
           itself (not to √v̂):  W ← W − η·√(1 − β₂ᵗ)/(1 − β₁ᵗ) · m/(√v + ε)
    L2     the penalty α/2·Σ‖W‖² over the batch's sample count B acts on the weights
           only: the weights' group carries ``l2`` = α and ``l2_count`` = B, set
           before each step, and the rule uses g + (α·W)/B, rounded as scikit-learn's
           (α·W)/B (a dead ReLU unit's gradient is that term alone, which Adam's
           m/√v amplifies: as (α/B)·W its weights drifted 1e-3 from scikit-learn's);
           the biases' group has none

The parameters are laid out as scikit-learn packs them: every weight matrix, then
every bias, as two parameter groups (weights, biases). ``Optimizer`` keeps both in
one flat buffer, so each step is two walks of one rule over contiguous memory.

The schedule state that scikit-learn keeps in its optimiser lives here too: the
current rate ``lr``, the schedule's settings, ``iteration_ends`` (invscaling, at each
epoch's end, from the samples seen) and ``trigger_stopping`` (adaptive: ÷5).

Each rule makes scikit-learn's products and sums in scikit-learn's order, so given the
same gradient it rounds exactly as scikit-learn does. (BLAS axpy would save passes, but
OpenBLAS runs it on its thread pool, which then thrashes against the matrix products.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from wxb import kernels
from wxb.errors import ConfigError
from wxb.nn.module import Parameter
from wxb.optim import Optimizer, _fraction, _GroupValue, calls_kernel, check_adam_group


def _groups(weights: Sequence[Parameter], biases: Sequence[Parameter]) -> list[dict]:
    """The two groups, in scikit-learn's packing order; ``l2`` starts at 0."""
    return [
        {"params": list(weights), "l2": 0.0, "l2_count": 1.0, "name": "weights"},
        {"params": list(biases), "l2": 0.0, "l2_count": 1.0, "name": "biases"},
    ]


class _SklearnRule(Optimizer):
    """What the scikit-learn variants share: state reset and the stopping hooks."""

    kind = "?"
    gathers = True  # L-BFGS and the loss's L2 term read the weights as one vector
    schedule = "constant"
    lr_init = 1.0
    power_t = 0.5

    def reset(self) -> None:
        """A fresh optimiser's state (scikit-learn makes a new one for each ``fit``),
        over the same flat buffer, so views of the parameters stay live."""
        if self.flat is not None and not self.flat.intact(self.params):
            self._pack()
        if self.flat is not None:
            for state in self._flat_state.values():
                state[...] = 0
        else:
            for name in self.state_names:
                for array in getattr(self, name):
                    array[...] = 0
        for counter in self.counters:
            setattr(self, counter, [0] * len(self.params))
        self.__dict__.pop("_written", None)  # (no state entry set by hand survives it)
        self.steps = 0

    def set_l2(self, alpha: float, count: float) -> None:
        """The weights' L2 term (α·W)/B for the next step: α and the batch's sample
        count (sum of its sample weights) B (the biases have none)."""
        self.param_groups[0]["l2"] = alpha
        self.param_groups[0]["l2_count"] = count

    def iteration_ends(self, samples_seen: int) -> None:
        """End of an epoch; ``samples_seen`` is the estimator's ``t_``."""

    def trigger_stopping(self, msg: str, verbose: bool) -> bool:
        """No improvement for ``n_iter_no_change`` epochs: stop (True) or go on."""
        if verbose:
            print(msg + " Stopping.")
        return True

    def extra_state(self) -> dict:
        """Settings outside ``state_dict`` (for pickling the estimator)."""
        return {"schedule": self.schedule, "lr_init": self.lr_init, "power_t": self.power_t}

    def load_extra_state(self, state: dict) -> None:
        self.schedule = state["schedule"]
        self.lr_init = state["lr_init"]
        self.power_t = state["power_t"]


class SklearnSGD(_SklearnRule):
    """scikit-learn's ``SGDOptimizer``: v ← μ·v − η·g; W ← W + v (Nesterov: + μ·v − η·g).

    ``schedule`` is scikit-learn's ``learning_rate``: "constant", "invscaling"
    (η = η₀/(t + 1)^power_t with t the samples seen, set at each epoch's end) or
    "adaptive" (η ÷ 5 when training stalls, stopping once η ≤ 1e-6).
    """

    kind = "sgd"
    hyperparameters = ("lr", "momentum", "nesterov")
    state_names = possible_states = ("velocity",)
    momentum = _GroupValue()
    nesterov = _GroupValue()

    def __init__(
        self,
        weights: Sequence[Parameter],
        biases: Sequence[Parameter],
        lr: float = 0.1,
        momentum: float = 0.9,
        nesterov: bool = True,
        *,
        schedule: str = "constant",
        power_t: float = 0.5,
    ) -> None:
        super().__init__(_groups(weights, biases), lr, momentum=momentum, nesterov=nesterov)
        self.configure(lr, momentum, nesterov, schedule=schedule, power_t=power_t)

    def configure(
        self, lr: float, momentum: float, nesterov: bool, *, schedule: str, power_t: float
    ) -> None:
        """New settings and a zeroed state, as a new scikit-learn optimiser has."""
        if schedule not in ("constant", "invscaling", "adaptive"):
            raise ConfigError(f"schedule must be constant, invscaling or adaptive; got {schedule}")
        self.lr = float(lr)
        self.momentum = momentum
        self.nesterov = bool(nesterov)
        # power_t as given: scikit-learn's (t + 1) ** power_t is computed in its type (a
        # NumPy float32 power_t rounds the rate to float32 there; as a float it was 1e-8 off)
        self.schedule, self.lr_init, self.power_t = schedule, float(lr), power_t
        self.reset()

    def _check_group(self, group: dict, where: str) -> None:
        super()._check_group(group, where)
        group["momentum"] = _fraction(group.get("momentum"), f"{where} momentum", one=True)
        nesterov = group.get("nesterov")
        if not isinstance(nesterov, (bool, np.bool_)):
            raise ConfigError(f"{where} nesterov must be True or False; got {nesterov!r}")
        group["nesterov"] = bool(nesterov)

    def iteration_ends(self, samples_seen: int) -> None:
        if self.schedule == "invscaling":
            self.lr = float(self.lr_init) / (samples_seen + 1) ** self.power_t

    def trigger_stopping(self, msg: str, verbose: bool) -> bool:
        if self.schedule != "adaptive":
            return super().trigger_stopping(msg, verbose)
        if self.lr <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.lr = self.lr / 5.0
        if verbose:
            print(msg + f" Setting learning rate to {self.lr:f}")
        return False

    @calls_kernel
    def _rule(self, data, grad, states, t, s1, s2, h):
        # scikit-learn's `momentum * velocity - learning_rate * grad`, the same roundings
        kernels.sklearn_sgd(
            data, grad, states[0], s1, s2,
            lr=h["lr"], momentum=h["momentum"], nesterov=h["nesterov"], l2=h["l2"],
            l2_count=h.get("l2_count", 1.0),
        )  # fmt: skip


class SklearnAdam(_SklearnRule):
    """scikit-learn's ``AdamOptimizer``; with ``decoupled`` (solver "adamw") the weights
    also shrink by W ← W·(1 − η·λ) before each step, λ the weights' ``weight_decay``."""

    kind = "adam"
    hyperparameters = ("lr", "betas", "eps", "weight_decay")
    fixed_flags: ClassVar[dict[str, tuple[bool, str]]] = {
        **_SklearnRule.fixed_flags,
        "amsgrad": (False, "AMSGrad is not implemented"),
    }
    state_names = possible_states = ("moment1", "moment2")
    threaded_from = 1 << 18
    betas = _GroupValue()
    eps = _GroupValue()

    def __init__(
        self,
        weights: Sequence[Parameter],
        biases: Sequence[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        *,
        weight_decay: float = 0.0,
        decoupled: bool = False,
    ) -> None:
        super().__init__(_groups(weights, biases), lr, betas=betas, eps=eps, weight_decay=0.0)
        self.decoupled = decoupled
        self.kind = "adamw" if decoupled else "adam"
        self.configure(lr, betas, eps, weight_decay=weight_decay)

    def configure(
        self, lr: float, betas: tuple[float, float], eps: float, *, weight_decay: float = 0.0
    ) -> None:
        """New settings and a zeroed state, as a new scikit-learn optimiser has."""
        self.lr = float(lr)
        self.betas = tuple(betas)
        self.eps = eps
        self.param_groups[0]["weight_decay"] = float(weight_decay)  # weights only
        self.lr_init = float(lr)
        # lr and β as given (the groups hold floats): scikit-learn computes 1 − β and
        # η·√(1 − β₂ᵗ)/(1 − β₁ᵗ) in their NumPy type, so NumPy float32 betas round those
        # to float32 there (as floats the weights were 1e-8 off)
        self.given = (lr, *betas)
        self.reset()

    def _check_group(self, group: dict, where: str) -> None:
        super()._check_group(group, where)
        check_adam_group(group, where)

    def extra_state(self) -> dict:
        return {**super().extra_state(), "decoupled": self.decoupled, "given": self.given}

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        self.decoupled = state["decoupled"]
        self.kind = "adamw" if self.decoupled else "adam"
        self.given = state.get("given", (self.lr, *self.betas))  # (pickled before 2026-12-06)

    @calls_kernel
    def _rule(self, data, grad, states, t, s1, s2, h):
        # scikit-learn's expressions, the same operations in the same order:
        # β₁·m + (1 − β₁)·g, β₂·v + (1 − β₂)·g², W + (−η_t·m)/(√v + ε)
        lr, (beta1, beta2) = h["lr"], h["betas"]
        if not self.decoupled and (lr, beta1, beta2) == tuple(map(float, self.given)):
            lr, beta1, beta2 = self.given  # (not set since; AdamW, wxb's own, keeps floats)
        m, v = states
        kernels.sklearn_adam(
            data, grad, m, v, s1, s2, t=int(t), lr=lr, beta1=beta1, beta2=beta2, eps=h["eps"],
            l2=h["l2"], weight_decay=h["weight_decay"] if self.decoupled else 0.0,
            l2_count=h.get("l2_count", 1.0),
        )  # fmt: skip


class FlatBuffer(_SklearnRule):
    """No update rule: it only holds the parameters and their gradients in flat buffers
    laid out as scikit-learn packs them (L-BFGS reads and writes those)."""

    kind = "lbfgs"

    def __init__(self, weights: Sequence[Parameter], biases: Sequence[Parameter]) -> None:
        super().__init__(_groups(weights, biases), 1.0)

    def _rule(self, data, grad, states, t, s1, s2, h):
        raise ConfigError("FlatBuffer holds parameters; it does not step them")


OPTIMIZERS: dict[str, type[_SklearnRule]] = {
    "sgd": SklearnSGD,
    "adam": SklearnAdam,
    "adamw": SklearnAdam,
    "lbfgs": FlatBuffer,
}
