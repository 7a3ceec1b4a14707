"""Activations and losses as functions of tensors (as ``torch.nn.functional``)."""

from wxb.ops import (
    bce_with_logits,
    cross_entropy,
    dropout,
    gelu,
    leaky_relu,
    mse_loss,
    relu,
    sigmoid,
    softmax,
    tanh,
)

__all__ = [
    "bce_with_logits",
    "cross_entropy",
    "dropout",
    "gelu",
    "leaky_relu",
    "mse_loss",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]
