"""Activations and losses as functions of tensors (as ``torch.nn.functional``).

One name means another number: ``mse_loss`` is the seed's ½‖ŷ − y‖² averaged over the
samples, where PyTorch's averages (ŷ − y)² over every element: for C outputs wxb's is
C/2 times PyTorch's; see its docstring."""

from wxb.ops import (
    batch_norm,
    bce_with_logits,
    binary_cross_entropy_with_logits,
    cross_entropy,
    dropout,
    elu,
    gelu,
    huber_loss,
    l1_loss,
    layer_norm,
    leaky_relu,
    log_softmax,
    mse_loss,
    nll_loss,
    relu,
    sigmoid,
    silu,
    smooth_l1_loss,
    softmax,
    softplus,
    tanh,
)

__all__ = [
    "batch_norm",
    "bce_with_logits",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "dropout",
    "elu",
    "gelu",
    "huber_loss",
    "l1_loss",
    "layer_norm",
    "leaky_relu",
    "log_softmax",
    "mse_loss",
    "nll_loss",
    "relu",
    "sigmoid",
    "silu",
    "smooth_l1_loss",
    "softmax",
    "softplus",
    "tanh",
]
