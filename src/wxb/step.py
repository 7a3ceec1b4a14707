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
from wxb.errors import ConfigError, DataError, ShapeError
from wxb.nn.layers import Activation, Dense, Dropout, Standardize
from wxb.nn.losses import Loss
from wxb.nn.module import Module, Sequential, input_width
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

    LAYERS = (Dense, Activation, Dropout, Standardize)

    @classmethod
    def supports(cls, model: Module) -> bool:
        """A Sequential of stock layers whose parameters are not shared between layers."""
        if not isinstance(model, Sequential) or not all(_is_stock(m, cls.LAYERS) for m in model):
            return False
        slots = [p for m in model for p in m._parameters.values()]
        return len({id(p) for p in slots}) == len(slots)

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
        self.layers = list(model)
        self.in_features = input_width(model)
        self.first_dense = next((m for m in self.layers if isinstance(m, Dense)), None)
        # Layer i needs ∂L/∂(its input) only if some layer before it has parameters.
        self.needs_input_grad = []
        trainable_before = False
        for layer in self.layers:
            self.needs_input_grad.append(trainable_before)
            trainable_before |= isinstance(layer, Dense)
        self.capacity = 0

    def _plan(self, X: np.ndarray) -> None:
        """Allocate every buffer for batches of up to len(X) rows."""
        batch, width, dtype = len(X), X.shape[1], X.dtype
        self.outputs, self.input_grads, self.masks = [], [], {}
        for i, layer in enumerate(self.layers):
            in_width = width
            if isinstance(layer, Dense):
                width = layer.out_features
            self.outputs.append(np.empty((batch, width), dtype))
            self.input_grads.append(
                np.empty((batch, in_width), dtype) if self.needs_input_grad[i] else None
            )
            if isinstance(layer, Dropout):
                self.masks[i] = np.empty((batch, width), dtype)
        self.loss_grad = np.empty((batch, width), dtype)
        self._grad_views = None
        self._find_grad_buffers()
        self.capacity, self.dtype = batch, dtype

    def _find_grad_buffers(self) -> None:
        """Where ∂L/∂W goes: the optimiser's flat gradient buffer, so its update reads it there."""
        views = self.optimizer.grad_buffers()
        if views is not None and views is self._grad_views:
            return
        params = self.optimizer.params
        if views is None:
            views = [np.empty_like(p.data) for p in params]
        self._grad_views = views
        self.grads = {id(p): g for p, g in zip(params, views, strict=True)}

    def _check(self, X: np.ndarray) -> None:
        if X.ndim != 2 or len(X) == 0:
            raise DataError(f"a training batch must be a non-empty 2-D array; got shape {X.shape}")
        first = self.first_dense
        if first is not None and X.dtype != first.weight.dtype:
            raise DataError(
                f"{first.label}: X is {X.dtype} but W is {first.weight.dtype}; "
                f"cast the data or the model (model.to('{X.dtype}'))"
            )
        if self.in_features is not None and X.shape[1] != self.in_features:
            if isinstance(first, Dense) and first is self.layers[0]:
                m, n = first.weight.shape
                raise ShapeError(
                    f"{first.label}: Z = W·X + b needs X with {n} features (W is {m}×{n}); "
                    f"got {X.shape[1]}"
                )
            raise ShapeError(f"the model takes {self.in_features} features; got {X.shape[1]}")

    def __call__(self, X: np.ndarray, y: np.ndarray) -> float:
        self._check(X)
        batch = len(X)
        recast = self.capacity and any(  # model.to(dtype) since the plan
            self.grads[id(p)].dtype != p.dtype for p in self.optimizer.params
        )
        if recast or batch > self.capacity or X.dtype != self.dtype:
            self._plan(X)
        else:
            self._find_grad_buffers()
        # -- forward: keep each layer's input and output (views of planned buffers) ----
        inputs, x, factors = [], X, {}  # factors: what each Dropout/Standardize multiplies by
        for i, layer in enumerate(self.layers):
            out = self.outputs[i][:batch]
            inputs.append(x)
            if isinstance(layer, Dense):  # Z = W·X + b, on rows: X·Wᵀ + b
                np.matmul(x, layer.weight.data.T, out=out)
                if layer.bias is not None:
                    out += layer.bias.data
            elif isinstance(layer, Activation):  # A = f(Z)
                layer.kernel.forward(x, out)
            elif isinstance(layer, Dropout):
                if layer.training and layer.p > 0:
                    factors[i] = ops.dropout_mask(layer.rng, layer.p, self.masks[i][:batch])
                else:  # eval mode: dropout is the identity
                    factors[i] = 1.0
                np.multiply(x, factors[i], out=out)
            else:  # Standardize: (X − mean) / scale
                factors[i] = 1.0 / layer.scale
                np.subtract(x, layer.mean, out=out)
                out *= factors[i]
            x = out
        # -- loss and ∇_A L ----------------------------------------------------------------
        self.output = x
        grad = self.loss_grad[:batch]
        ops.check_loss_target(self.loss.kernel, x, y)
        value = self.loss.kernel.value_and_grad(x, y, grad)
        if not math.isfinite(value):
            return value
        # -- backward: the δ chain, in reverse -----------------------------------------------
        for i in range(len(self.layers) - 1, -1, -1):
            layer, x_in = self.layers[i], inputs[i]
            if isinstance(layer, Dense):
                delta = grad  # δ⁽ˡ⁾ for this layer's Z
                # ∂L/∂W = δ·Aᵀ (rows: δᵀ·X);  ∂L/∂b = Σ_batch δ
                np.matmul(delta.T, x_in, out=self.grads[id(layer.weight)])
                if layer.bias is not None:
                    ops.sum_over_batch(delta, out=self.grads[id(layer.bias)])
                if not self.needs_input_grad[i]:
                    break
                # ∂L/∂A⁽ˡ⁻¹⁾ = Wᵀ·δ (rows: δ·W)
                grad = np.matmul(delta, layer.weight.data, out=self.input_grads[i][:batch])
            elif not self.needs_input_grad[i]:
                break
            elif isinstance(layer, Activation):  # δ = ∂L/∂A ⊙ f′(Z)
                grad = layer.kernel.backward(
                    x_in, self.outputs[i][:batch], grad, self.input_grads[i][:batch]
                )
            else:  # Dropout, Standardize: an element-wise factor
                grad = np.multiply(grad, factors[i], out=self.input_grads[i][:batch])
        for p in self.optimizer.params:  # the user may have called zero_grad()
            p.grad = self.grads[id(p)]
        if self.clip_norm is not None:
            clip_grad_norm_(self.optimizer.params, self.clip_norm)
        self.optimizer.step()
        return value


def _is_stock(module: Module, kinds: tuple[type, ...]) -> bool:
    """One of ``kinds`` whose forward is not overridden (the plan would not run it)."""
    return any(isinstance(module, kind) and type(module).forward is kind.forward for kind in kinds)


def make_step(
    model: Module, loss: Loss, optimizer: Optimizer, clip_norm: float | None = None
) -> GraphStep | PlannedStep:
    """The planned step where the model allows it, else the graph step."""
    if PlannedStep.supports(model) and {id(p) for p in optimizer.params} == {
        id(p) for p in model.parameters()
    }:
        return PlannedStep(model, loss, optimizer, clip_norm)
    return GraphStep(model, loss, optimizer, clip_norm)
