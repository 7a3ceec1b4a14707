"""A training step: forward, loss, backward, update.

``GraphStep`` works for any model: it records the graph and calls ``backward()``.
``PlannedStep`` runs the same kernels for a ``Sequential`` of Dense, activation,
Dropout and Standardize layers, straight through the seed's equations, into
buffers allocated on the first step and reused after it:

    forward   Z⁽ˡ⁾ = W⁽ˡ⁾·A⁽ˡ⁻¹⁾ + b⁽ˡ⁾,  A⁽ˡ⁾ = f(Z⁽ˡ⁾)
    output    δ⁽ᴸ⁾ = ∇_A L ⊙ f′(Z⁽ᴸ⁾)
    backward  δ⁽ˡ⁾ = (W⁽ˡ⁺¹⁾ᵀ·δ⁽ˡ⁺¹⁾) ⊙ f′(Z⁽ˡ⁾)
    gradients ∂L/∂W⁽ˡ⁾ = δ⁽ˡ⁾·A⁽ˡ⁻¹⁾ᵀ,  ∂L/∂b⁽ˡ⁾ = Σ_batch δ⁽ˡ⁾

Both give the same loss, gradients and weights (tests check it).
"""

from __future__ import annotations

import math

import numpy as np

from wxb import ops
from wxb.errors import ConfigError
from wxb.nn.losses import Loss
from wxb.nn.module import Module
from wxb.nn.plan import StackPlan, is_plannable
from wxb.nn.sequential import Sequential
from wxb.optim import Optimizer, clip_grad_norm_
from wxb.tensor import Tensor


class GraphStep:
    """One step through the recorded graph: works for any Module."""

    def __init__(
        self, model: Module, loss: Loss, optimizer: Optimizer, clip_norm: float | None = None
    ) -> None:
        self.model, self.loss, self.optimizer, self.clip_norm = model, loss, optimizer, clip_norm

    def __call__(self, X: np.ndarray, y: np.ndarray) -> float:
        """Returns the batch loss; a non-finite loss is returned before any update."""
        self.optimizer.zero_grad()
        output = self.model(Tensor(X))
        self.output = output.data  # before the update: fit's running accuracy reads it
        value = self.loss(output, y)
        if not math.isfinite(float(value.data)):
            return float(value.data)
        value.backward()
        if self.clip_norm is not None:
            clip_grad_norm_(self.optimizer.params, self.clip_norm)
        self.optimizer.step()
        return float(value.data)


class PlannedStep:
    """One step of a Sequential MLP with every buffer planned once and reused."""

    @classmethod
    def supports(cls, model: Module) -> bool:
        """A Sequential of stock layers whose parameters are not shared between layers."""
        return isinstance(model, Sequential) and is_plannable(list(model))

    def __init__(
        self, model: Sequential, loss: Loss, optimizer: Optimizer, clip_norm: float | None = None
    ) -> None:
        if not self.supports(model):
            raise ConfigError(
                "PlannedStep needs a Sequential of Dense, activation, Dropout and Standardize "
                "layers with unshared parameters; use GraphStep (or make_step) for this model"
            )
        if {id(p) for p in optimizer.params} != {id(p) for p in model.parameters()}:
            raise ConfigError("PlannedStep needs an optimiser over exactly model.parameters()")
        self.model, self.loss, self.optimizer, self.clip_norm = model, loss, optimizer, clip_norm
        self.plan = StackPlan(list(model))
        self.loss_grad: np.ndarray | None = None

    def __call__(self, X: np.ndarray, y: np.ndarray) -> float:
        plan = self.plan
        plan.check(X)
        self.optimizer.grad_buffers()  # re-gathers the parameters if the model was cast
        x = plan.forward(X)
        self.output = x
        # -- loss and ∇_A L, into a buffer of its own -----------------------------------------
        if (
            self.loss_grad is None
            or self.loss_grad.dtype != x.dtype
            or len(self.loss_grad) < len(x)
        ):
            self.loss_grad = np.empty_like(x)
        grad = self.loss_grad[: len(x)]
        ops.check_loss_target(self.loss.kernel, x, y)
        value = self.loss.kernel.value_and_grad(x, y, grad)
        if not math.isfinite(value):
            return value
        self.optimizer.zero_grad()  # the δ chain writes ∂L/∂W where the optimiser reads it
        plan.backward(grad)
        if self.clip_norm is not None:
            clip_grad_norm_(self.optimizer.params, self.clip_norm)
        self.optimizer.step()
        return value

    @property
    def outputs(self) -> list[np.ndarray]:
        """The planned per-layer output buffers (for inspection and tests)."""
        return self.plan.outputs


def make_step(
    model: Module, loss: Loss, optimizer: Optimizer, clip_norm: float | None = None
) -> GraphStep | PlannedStep:
    """The planned step where the model allows it, else the graph step."""
    if PlannedStep.supports(model) and {id(p) for p in optimizer.params} == {
        id(p) for p in model.parameters()
    }:
        return PlannedStep(model, loss, optimizer, clip_norm)
    return GraphStep(model, loss, optimizer, clip_norm)
