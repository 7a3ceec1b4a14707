"""Layers, models and losses."""

from wxb.errors import missing_name as _missing_name
from wxb.nn import functional, init, utils
from wxb.nn.containers import ModuleDict, ModuleList, ParameterDict, ParameterList
from wxb.nn.layers import (
    ACTIVATIONS,
    ELU,
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
    SiLU,
    Softmax,
    Softplus,
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
from wxb.nn.norm import BatchNorm1d, LayerNorm
from wxb.nn.sequential import Sequential

__all__ = [
    "ACTIVATIONS",
    "ELU",
    "GELU",
    "LOSSES",
    "Activation",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "CrossEntropyLoss",
    "Dense",
    "Dropout",
    "HuberLoss",
    "Identity",
    "L1Loss",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "Loss",
    "MSELoss",
    "Module",
    "ModuleDict",
    "ModuleList",
    "NLLLoss",
    "Parameter",
    "ParameterDict",
    "ParameterList",
    "ReLU",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "SmoothL1Loss",
    "Softmax",
    "Softplus",
    "Standardize",
    "Tanh",
    "functional",
    "get_loss",
    "init",
    "utils",
]

# torch.nn's names a port reaches for that wxb has under another name, or not at all:
# the AttributeError says what to write instead
_TORCH_NAMES = {
    "Flatten": "wxb's layers take rows (B, features): flatten in a forward of your own "
    "(x.flatten(1)), or hand fit rows (X.reshape(len(X), -1))",
    "BCELoss": "use BCEWithLogitsLoss on the logits (it applies the sigmoid itself, stably; "
    "leave the Sigmoid layer out)",
}


def __getattr__(name: str) -> object:  # PEP 562: only for names not found above
    if name in _TORCH_NAMES:  # (from wxb.nn import name too: its ImportError says it)
        what = f"module 'wxb.nn' has no attribute {name!r}: {_TORCH_NAMES[name]}"
        raise _missing_name("wxb.nn", name, what)
    raise AttributeError(f"module 'wxb.nn' has no attribute {name!r}")
