"""wxb: neural networks as explicit linear algebra.

A dense layer is Z = W·X + b, then A = f(Z); learning is the chain of error terms
δ⁽ˡ⁾ = (W⁽ˡ⁺¹⁾ᵀ·δ⁽ˡ⁺¹⁾) ⊙ f′(Z⁽ˡ⁾), with ∂L/∂W⁽ˡ⁾ = δ⁽ˡ⁾·A⁽ˡ⁻¹⁾ᵀ and ∂L/∂b⁽ˡ⁾ = δ⁽ˡ⁾.
"""

__version__ = "0.1.0"

from wxb import autograd, describe, errors, nn, ops, optim
from wxb.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    ModelFileError,
    NotFoundError,
    ShapeError,
    TrainingError,
    TrainingInterrupted,
    WxbError,
)
from wxb.explanation import explain
from wxb.io import load, save
from wxb.random import get_rng_state, manual_seed, set_rng_state
from wxb.reporting import report  # wxb.report(model, history, X, y, path=…)
from wxb.step import GraphStep, PlannedStep, make_step
from wxb.tables import read_table
from wxb.tensor import (
    Tensor,
    enable_grad,
    graph,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from wxb.train import History, evaluate, fit

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "GraphStep",
    "History",
    "ModelFileError",
    "NotFoundError",
    "PlannedStep",
    "ShapeError",
    "Tensor",
    "TrainingError",
    "TrainingInterrupted",
    "WxbError",
    "__version__",
    "autograd",
    "describe",
    "enable_grad",
    "errors",
    "evaluate",
    "explain",
    "fit",
    "get_rng_state",
    "graph",
    "is_grad_enabled",
    "load",
    "make_step",
    "manual_seed",
    "nn",
    "no_grad",
    "ops",
    "optim",
    "read_table",
    "report",
    "save",
    "set_grad_enabled",
    "set_rng_state",
    "tensor",  # the module, callable as torch.tensor: wxb.tensor([1.0, 2.0], requires_grad=True)
]

# torch's names a port reaches for that wxb has under another name, or not at all
_TORCH_NAMES = {
    "from_numpy": "wxb.Tensor(array) wraps the array without a copy, as torch.from_numpy",
    "inference_mode": "use wxb.no_grad()",
    "utils": "wxb has no DataLoader: wxb.fit(model, X, y, batch_size=…) batches and "
    "shuffles itself, and a loop of your own may keep torch's DataLoader (a wxb model "
    "takes its torch tensors)",
}


def _torch_hint(name: str) -> str:
    """What wxb.NAME says of a torch name it lacks (wxb/utils's import error too)."""
    return f"module 'wxb' has no attribute {name!r}: {_TORCH_NAMES[name]}"


def __getattr__(name: str) -> object:  # PEP 562: only for names not found above
    if name in _TORCH_NAMES:  # (from wxb import name too: its ImportError says it)
        raise errors.missing_name("wxb", name, _torch_hint(name))
    raise AttributeError(f"module 'wxb' has no attribute {name!r}")
