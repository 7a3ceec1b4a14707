"""Layers, models and losses."""

from wxb.nn import functional
from wxb.nn.containers import ModuleList
from wxb.nn.layers import (
    ACTIVATIONS,
    GELU,
    Activation,
    Dense,
    Dropout,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Standardize,
    Tanh,
)
from wxb.nn.losses import (
    LOSSES,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
    get_loss,
)
from wxb.nn.module import Module, Parameter
from wxb.nn.sequential import Sequential

__all__ = [
    "ACTIVATIONS",
    "GELU",
    "LOSSES",
    "Activation",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "Dense",
    "Dropout",
    "HuberLoss",
    "Identity",
    "L1Loss",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "Loss",
    "MSELoss",
    "Module",
    "ModuleList",
    "NLLLoss",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "SmoothL1Loss",
    "Softmax",
    "Standardize",
    "Tanh",
    "functional",
    "get_loss",
]
