"""Normalisation layers, as PyTorch's: LayerNorm (over each sample's features),
BatchNorm1d (over the batch, with running statistics for eval mode) and RMSNorm (each
sample scaled by its root mean square, x/√(mean(x²) + ε), then γ ⊙: no μ, no β).

Both compute x̂ = (x − μ)/√(σ² + ε), then γ ⊙ x̂ + β with learned γ (``weight``) and β
(``bias``); ``ops.normalize`` holds the forward and its backward rule. They run on the
recorded graph (a Sequential holding one is not planned: ``why_not_planned`` says so).
"""

from __future__ import annotations

import os
import threading
from contextlib import nullcontext
from typing import Any

import numpy as np

from wxb import ops
from wxb.backend import check_device, resolve_dtype
from wxb.errors import ConfigError
from wxb.nn.layers import _positive_int, dtype_mismatch, refuse_subclass
from wxb.nn.module import Module, Parameter
from wxb.tensor import Tensor, no_grad
from wxb.validation import refuse_keras_arguments

# A training forward's read of the running statistics and the count, its update and its
# count taken as one, per layer (by the layer's id, among a few locks): two threads'
# forwards through one BatchNorm1d each read r and wrote (1 − m)·r + m·s, one update lost
_TRACKING = tuple(threading.Lock() for _ in range(16))


def _new_tracking_locks() -> None:  # a fork()ed child: one held by another thread stays held
    global _TRACKING
    _TRACKING = tuple(threading.Lock() for _ in range(16))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_tracking_locks)


def _check_dtype(layer: Module, x: Tensor, like: Parameter | np.ndarray | None) -> None:
    if like is not None and x.dtype != like.dtype:
        raise dtype_mismatch(layer.label, x.dtype, like.dtype)


def _flag(value: object, what: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{what} must be True or False; got {value!r}")
    return bool(value)


def _reset_affine(layer: LayerNorm | BatchNorm1d | RMSNorm) -> None:
    """γ = 1 and β = 0 again, in place (the same Parameters, as PyTorch's)."""
    with no_grad():
        if layer.weight is not None:
            layer.weight[...] = 1
        if layer.bias is not None:
            layer.bias[...] = 0


# Keras's normalisation keywords, with wxb's (PyTorch's) way
_KERAS_NORM = {
    "epsilon": "ε is eps= (PyTorch's name; its default 1e-5, Keras's 1e-3)",
    "center": "β is learnt unless bias=False",
    "scale": "γ is learnt unless elementwise_affine=False (LayerNorm) or affine=False "
    "(BatchNorm1d, which then has no β either)",
    "axis": "the features are the last axis (LayerNorm's normalized_shape) or the second "
    "(BatchNorm1d's channels, as PyTorch's)",
    "moving_mean_initializer": "the running statistics start at 0 and 1",
}


class LayerNorm(Module):
    """y = γ ⊙ (x − μ)/√(σ² + ε) + β, μ and σ² (biased) over each sample's last dims
    (``normalized_shape``; for a dense layer's output, its width). The same in training
    and in eval mode. ``device=``: the CPU, as Dense takes it."""

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        *,
        dtype: object = None,
        device: object = None,
        name: str | None = None,
        **keras_options: object,
    ) -> None:
        super().__init__()
        refuse_keras_arguments(keras_options, "LayerNorm", _KERAS_NORM, called="LayerNorm.__init__")
        check_device(device, "LayerNorm")  # PyTorch's factory keyword: the CPU, or refused
        self.normalized_shape = ops.check_normalized_shape(
            normalized_shape, "LayerNorm normalized_shape"
        )
        self.eps = ops.check_eps(eps, "LayerNorm")
        self.elementwise_affine = _flag(elementwise_affine, "LayerNorm elementwise_affine")
        with_bias = _flag(bias, "LayerNorm bias")
        self.name = name
        dt = resolve_dtype(dtype)
        shape = self.normalized_shape
        self.weight = Parameter(np.ones(shape, dt)) if self.elementwise_affine else None
        self.bias = (
            Parameter(np.zeros(shape, dt)) if self.elementwise_affine and with_bias else None
        )
        self.reset_parameters()  # (as torch's __init__: a subclass's own init runs)

    @property
    def in_features(self) -> int:
        """The width it takes, when it normalises one dim (else no such attribute)."""
        if len(self.normalized_shape) != 1:
            raise AttributeError("in_features: LayerNorm normalises several dims")
        return self.normalized_shape[0]

    def forward(self, x: Tensor) -> Tensor:
        _check_dtype(self, x, self.weight if self.weight is not None else self.bias)
        return ops.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def reset_parameters(self) -> None:
        """γ = 1 and β = 0 again, in place (the same Parameters, as PyTorch's)."""
        _reset_affine(self)

    def config(self) -> dict[str, Any]:
        refuse_subclass(self, LayerNorm)
        return {
            "type": "LayerNorm",
            "name": self.name,
            "normalized_shape": list(self.normalized_shape),
            "eps": self.eps,
            "elementwise_affine": self.elementwise_affine,
            "bias": self.bias is not None,
        }

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )


class BatchNorm1d(Module):
    """y = γ ⊙ (x − μ)/√(σ² + ε) + β per channel, for inputs (N, C) or (N, C, L).

    Training mode: μ and σ² are the batch's own (over N, and L), and the running
    statistics move towards them: r ← (1 − momentum)·r + momentum·s, with the unbiased
    variance (``momentum=None``: the mean over all batches so far). PyTorch's momentum,
    the new batch's weight: Keras's ``momentum=0.99`` is ``momentum=0.01`` here. Eval
    mode: the running statistics, so each row's output depends on that row alone. With
    ``track_running_stats=False`` both modes use the batch's own; set False after
    construction, as in PyTorch, training stops moving the statistics kept, and eval
    mode still uses them.

    ``load_state_dict`` takes a state without ``num_batches_tracked`` (one from before
    PyTorch kept it, or filtered into a plain dict), keeping the count, as PyTorch's.
    ``device=``: the CPU, as Dense takes it."""

    _kept_if_missing = ("num_batches_tracked",)

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        bias: bool = True,
        dtype: object = None,
        device: object = None,
        name: str | None = None,
        **keras_options: object,
    ) -> None:
        super().__init__()
        refuse_keras_arguments(
            keras_options, "BatchNorm1d", _KERAS_NORM, called="BatchNorm1d.__init__"
        )
        check_device(device, "BatchNorm1d")  # PyTorch's factory keyword: the CPU, or refused
        channels = _positive_int(num_features, "BatchNorm1d num_features")
        self.num_features = channels
        self.eps = ops.check_eps(eps, "BatchNorm1d")
        self.momentum = momentum  # checked by the property
        self.affine = _flag(affine, "BatchNorm1d affine")
        self.track_running_stats = _flag(track_running_stats, "BatchNorm1d track_running_stats")
        self.name = name
        dt = resolve_dtype(dtype)
        self.weight = Parameter(np.ones(channels, dt)) if self.affine else None
        with_bias = self.affine and _flag(bias, "BatchNorm1d bias")
        self.bias = Parameter(np.zeros(channels, dt)) if with_bias else None
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(channels, dt))
            self.register_buffer("running_var", np.ones(channels, dt))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        else:
            for key in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(key, None)
        # as torch's __init__: a subclass's own reset_parameters (or reset_running_stats,
        # which the stock one calls) runs, where it was left uncalled unsaid
        self.reset_parameters()

    @property
    def momentum(self) -> float | None:
        return self._momentum

    @momentum.setter
    def momentum(self, value: float | None) -> None:
        if value is not None and not (ops._is_number(value) and 0 <= value <= 1):
            raise ConfigError(
                f"BatchNorm1d momentum must be a number in [0, 1] or None; got {value!r}"
            )
        object.__setattr__(self, "_momentum", None if value is None else float(value))

    @property
    def in_features(self) -> int:
        return self.num_features

    @property
    def _couples_rows(self) -> bool:  # without running statistics: by each batch's own
        return self._buffers.get("running_mean") is None

    def forward(self, x: Tensor) -> Tensor:
        # the buffers' own memory as plain arrays: a BufferArray's NumPy overrides cost
        # microseconds an operation, on every training step
        running, running_var, count = (
            None if a is None else np.asarray(a)
            for a in map(self._buffers.get, ("running_mean", "running_var", "num_batches_tracked"))
        )
        _check_dtype(self, x, self.weight if self.weight is not None else running)
        # As PyTorch's: track_running_stats set False after construction keeps the
        # statistics for eval mode but stops training from moving them (or counting)
        read = not self.training or self.track_running_stats
        tracking = self.training and running is not None and self.track_running_stats
        if read and not tracking and running is not None:
            # by the statistics of one update: another thread's training forward writes
            # r and σ² in turn (read between, a predict took σ² of one batch, r of the next)
            with _TRACKING[id(self) >> 4 & 15]:
                running, running_var = running.copy(), running_var.copy()
        factor = 0.0
        with _TRACKING[id(self) >> 4 & 15] if tracking else nullcontext():
            if tracking:  # momentum None: the plain mean of every batch's statistics so far
                done = int(count)
                factor = 1.0 / (done + 1) if self.momentum is None else self.momentum
            out = ops.batch_norm(
                x,
                running if read else None,
                running_var if read else None,
                self.weight,
                self.bias,
                training=self.training or running is None,
                momentum=factor,
                eps=self.eps,
            )
            if tracking:  # counted once the batch was taken (a refused one changes nothing)
                count += 1  # (in place: the buffer's memory)
        return out

    def reset_running_stats(self) -> None:
        """μ = 0, σ² = 1 and the batch count 0 again, in place."""
        if self._buffers.get("running_mean") is not None:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def reset_parameters(self) -> None:
        """The running statistics reset, γ = 1 and β = 0 again, in place (as PyTorch's)."""
        self.reset_running_stats()
        _reset_affine(self)

    def config(self) -> dict[str, Any]:
        refuse_subclass(self, BatchNorm1d)
        return {
            "type": "BatchNorm1d",
            "name": self.name,
            "num_features": self.num_features,
            "eps": self.eps,
            "momentum": self.momentum,
            "affine": self.affine,
            "track_running_stats": self.track_running_stats,
            "bias": self.bias is not None,
        }

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
            + ("" if self.bias is not None or not self.affine else ", bias=False")
        )


# Keras's RMSNormalization keywords, with wxb's (PyTorch's) way
_KERAS_RMS = {
    "epsilon": "ε is eps= (PyTorch's name; None, its default, is the dtype's machine epsilon)",
    "scale": "γ is learnt unless elementwise_affine=False",
    "axis": "the dims scaled are the last ones, normalized_shape (a row's width for rows)",
}


class RMSNorm(Module):
    """y = γ ⊙ x/√(mean(x²) + ε), the mean over each sample's last dims
    (``normalized_shape``), as torch's nn.RMSNorm (torch 2.4+): no centring and no β.
    ``eps=None`` (torch's default) is the input dtype's machine epsilon. The same in
    training and in eval mode; ``ops.rms_norm`` holds the forward and its backward rule.
    ``device=``: the CPU, as Dense takes it."""

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...],
        eps: float | None = None,
        elementwise_affine: bool = True,
        *,
        dtype: object = None,
        device: object = None,
        name: str | None = None,
        **keras_options: object,
    ) -> None:
        super().__init__()
        refuse_keras_arguments(keras_options, "RMSNorm", _KERAS_RMS, called="RMSNorm.__init__")
        check_device(device, "RMSNorm")  # PyTorch's factory keyword: the CPU, or refused
        self.normalized_shape = ops.check_normalized_shape(
            normalized_shape, "RMSNorm normalized_shape"
        )
        self.eps = None if eps is None else ops.check_eps(eps, "RMSNorm")
        self.elementwise_affine = _flag(elementwise_affine, "RMSNorm elementwise_affine")
        self.name = name
        dt = resolve_dtype(dtype)
        shape = self.normalized_shape
        self.weight = Parameter(np.ones(shape, dt)) if self.elementwise_affine else None
        self.reset_parameters()  # (as torch's __init__: a subclass's own init runs)

    @property
    def bias(self) -> None:  # no β (read by the code shared with the other norms)
        return None

    @property
    def in_features(self) -> int:
        """The width it takes, when it scales one dim (else no such attribute)."""
        if len(self.normalized_shape) != 1:
            raise AttributeError("in_features: RMSNorm normalises several dims")
        return self.normalized_shape[0]

    def forward(self, x: Tensor) -> Tensor:
        _check_dtype(self, x, self.weight)
        return ops.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def reset_parameters(self) -> None:
        """γ = 1 again, in place (the same Parameter, as PyTorch's)."""
        _reset_affine(self)

    def config(self) -> dict[str, Any]:
        refuse_subclass(self, RMSNorm)
        return {
            "type": "RMSNorm",
            "name": self.name,
            "normalized_shape": list(self.normalized_shape),
            "eps": self.eps,
            "elementwise_affine": self.elementwise_affine,
        }

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )


# The normalisation layers: on the recorded graph, not the planned stack
NORMS = (LayerNorm, BatchNorm1d, RMSNorm)
