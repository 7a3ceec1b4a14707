"""Model interchange: wxb ⇄ PyTorch, and scikit-learn's MLPs → wxb.

- ``to_torch(model)``: a ``torch.nn.Sequential`` computing what the wxb model
  computes, with copies of its weights, in its dtype. Each ``Dense`` (W of shape
  (out, in), as ``torch.nn.Linear`` stores it) becomes a ``Linear``; activations,
  ``Dropout`` and nested Sequentials become their PyTorch twins; ``Standardize``
  becomes ``TorchStandardize``, a small module with the same buffers and formula.
  Layer names become the keys of the torch Sequential, so the two state dicts
  use the same names ("dense1.weight", …).
- ``from_torch(seq)``: the way back, for a ``torch.nn.Sequential`` (nested ones
  too) of Linear, Identity, ReLU, Sigmoid, Tanh, LeakyReLU, GELU, SiLU, ELU, Softplus,
  Softmax/LogSoftmax/Softmin(dim=1), Dropout, LayerNorm, BatchNorm1d, RMSNorm, PReLU, Flatten,
  ReLU6, Hardtanh, SELU, CELU, Mish, Hardswish, Hardsigmoid, LogSigmoid, Softsign,
  Tanhshrink, Threshold, Hardshrink, Softshrink, GLU, Unflatten, RReLU, FeatureAlphaDropout,
  Dropout1d, Embedding, LazyLinear (not called yet) and ``TorchStandardize``;
  anything else is refused by its path.
- ``from_sklearn(est)``: a fitted ``MLPClassifier`` or ``MLPRegressor`` as a wxb
  Sequential giving its *decision values* (the output layer before its output
  activation: logits for a classifier), with ``model.info`` saying how to read
  them (task, loss, classes, feature names).
- ``optimizer_from_torch(torch_opt, opt)`` / ``optimizer_to_torch(opt, torch_opt)``:
  an optimiser's state (moments, step counts, groups' settings) from PyTorch's
  optimiser of the same class into wxb's, and back, so a run goes on where it was.
- ``scheduler_from_torch(torch_sched, schedule)`` / ``scheduler_to_torch(schedule,
  torch_sched)``: a learning-rate schedule's state (its epoch, starting rates and
  settings) from PyTorch's scheduler of the same kind into wxb's, and back.

Training flags (``module.training``) and frozen parameters (``requires_grad``)
carry over both ways; Dropout's own seed does not (PyTorch draws from its own
generator). PyTorch and scikit-learn are imported inside these functions only:
``import wxb`` never imports them.
"""

from __future__ import annotations

import bisect
import collections
import copy
import functools
import math
import re
from typing import Any

import numpy as np

try:  # NumPy 2's place; 1.x's np.byte_bounds
    from numpy.lib.array_utils import byte_bounds
except ImportError:  # pragma: no cover
    byte_bounds = np.byte_bounds

from wxb.backend import resolve_dtype
from wxb.describe import chain_layers, chain_step_without_graph, not_a_chain, one_sample_run
from wxb.errors import ConfigError
from wxb.nn import layers
from wxb.nn.module import Module, hooks_in_words
from wxb.nn.norm import BatchNorm1d, LayerNorm, RMSNorm
from wxb.nn.sequential import Sequential
from wxb.random import drawing_from
from wxb.tensor import Tensor

__all__ = [
    "from_sklearn",
    "from_torch",
    "optimizer_from_torch",
    "optimizer_to_torch",
    "scheduler_from_torch",
    "scheduler_to_torch",
    "to_torch",
]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ---------------------------------------------------------------------------------
# The PyTorch twin of Standardize (its class is made on first use: no torch import here)
# ---------------------------------------------------------------------------------
@functools.cache
def _torch_standardize_class() -> type:
    import torch

    class TorchStandardize(torch.nn.Module):
        """X ↦ (X − mean) ⊙ (1/scale) with fixed buffers: wxb's ``Standardize`` in PyTorch."""

        def __init__(self, mean: torch.Tensor, scale: torch.Tensor) -> None:
            super().__init__()
            if mean.ndim != 1 or mean.shape != scale.shape:
                raise ConfigError(
                    f"TorchStandardize: mean {tuple(mean.shape)} and scale "
                    f"{tuple(scale.shape)} must be vectors of one length"
                )
            self.register_buffer("mean", mean)
            self.register_buffer("scale", scale)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x - self.mean) * (1.0 / self.scale)  # as wxb: the reciprocal, then ⊙

        def extra_repr(self) -> str:
            return f"features={self.mean.shape[0]}"

    TorchStandardize.__module__ = __name__  # pickles as wxb.interop.TorchStandardize
    TorchStandardize.__qualname__ = "TorchStandardize"
    globals()["TorchStandardize"] = TorchStandardize
    return TorchStandardize


def __getattr__(name: str) -> Any:  # PEP 562: wxb.interop.TorchStandardize imports torch
    if name == "TorchStandardize":
        return _torch_standardize_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _import_torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a test dependency here
        raise ConfigError("PyTorch is not installed (pip install torch)") from None
    return torch


# ---------------------------------------------------------------------------------
# wxb → PyTorch
# ---------------------------------------------------------------------------------
_ACTIVATION_TYPES = tuple(layers.ACTIVATIONS.values())
# Layers whose torch twin is the class of the same name, with the same settings
# (attributes of both): made and read by that table
_TWINS: dict[type[Module], tuple[str, ...]] = {
    layers.Flatten: ("start_dim", "end_dim"),
    **dict.fromkeys(
        (layers.ReLU6, layers.SELU, layers.Mish, layers.Hardswish, layers.Hardsigmoid),
        (),
    ),
    **dict.fromkeys((layers.LogSigmoid, layers.Softsign, layers.Tanhshrink), ()),
    layers.Hardtanh: ("min_val", "max_val"),
    layers.CELU: ("alpha",),
    layers.Threshold: ("threshold", "value"),
    **dict.fromkeys((layers.Hardshrink, layers.Softshrink), ("lambd",)),
    layers.GLU: ("dim",),
    layers.Unflatten: ("dim", "unflattened_size"),
    layers.RReLU: ("lower", "upper"),
    **dict.fromkeys((layers.FeatureAlphaDropout, layers.Dropout1d), ("p",)),
}
_STOCK_TYPES = (
    Sequential,
    layers.PReLU,
    *_TWINS,
    layers.Dense,
    layers.Dropout,
    layers.AlphaDropout,
    layers.Embedding,
    layers.LazyLinear,
    layers.Standardize,
    LayerNorm,
    BatchNorm1d,
    RMSNorm,
    *_ACTIVATION_TYPES,
)


def _where(path: str) -> str:
    return f"module '{path}'" if path else "the model itself"


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def to_torch(model: Module):
    """An equivalent ``torch.nn.Sequential`` with copies of the model's weights.

    In the model's dtype (float32 or float64); layer names become the Sequential's
    keys; a layer given twice stays one shared torch module, a tied weight one torch
    Parameter, and weights tied through memory views of one memory. A module of one's own
    whose forward only chains stock layers, and activations it applies itself
    (``describe.chain_layers``), becomes the Sequential of them, as one sample batch
    ran them (keys: their paths, ``.`` as ``_``), unless it trains otherwise (F.dropout,
    a branch on ``self.training``, a layer run under no_grad). Raises ConfigError,
    naming the module's path and class, for anything without a PyTorch twin here
    (a module of its own, a subclass of a stock layer, a forward set on an
    instance, forward hooks) or a model mixing float32 and float64.
    """
    if not isinstance(model, Module):
        raise ConfigError(f"to_torch needs a wxb.nn.Module; got {type(model).__name__}")
    for path, module in model.named_modules():  # (as wxb.save and ONNX export refuse them)
        if module._has_hooks():
            held, them = module._hooks_held()
            raise ConfigError(
                f"to_torch: cannot convert {_where(path)} ({type(module).__name__}): it has "
                f"{held}, which the PyTorch twin would not run (remove {them} first)"
            )
    with one_sample_run():
        chain = None if type(model) in _STOCK_TYPES else chain_layers(model)
        cut = None if chain is None else chain_step_without_graph(model)
        why_not = None if chain is not None or type(model) in _STOCK_TYPES else not_a_chain(model)
    paths = {id(m): name for name, m in model.named_modules()}  # (each once, first path)
    if chain is not None and not _trains_as_chained(model, chain):
        raise ConfigError(
            f"to_torch: cannot convert {_where('')} ({type(model).__name__}): in training "
            "mode its forward computes other than the chain of its layers it runs in eval "
            "mode (F.dropout, or a branch on self.training), which the PyTorch twin would "
            "not compute; use a Dropout layer, or convert its layers as a Sequential"
        )
    if cut is not None:  # (wxb never trains it; the twin's gradient would reach it)
        raise ConfigError(
            f"to_torch: cannot convert {_where('')} ({type(model).__name__}): its forward "
            f"runs {_where(paths.get(id(cut), str(cut.name)))} without recording a graph "
            "(under no_grad), so wxb gives it no gradient where the PyTorch twin would "
            "train it; freeze its parameters instead (requires_grad = False) and run it "
            "with the graph"
        )
    named = None if chain is None else [(paths.get(id(m)) or str(m.name), m) for m in chain]
    for path, module in named or model.named_modules():
        no_chain = None if path else why_not
        _check_convertible(path, module, chain is None and bool(path), no_chain)
    dtype = _model_dtype(model)
    torch = _import_torch()
    tdtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[dtype]
    # id(wxb module or Parameter) → its torch twin: shared layers and tied weights stay so
    made: dict[int, Any] = {}
    if named is not None:  # the chain a forward of its own runs, as one Sequential
        chained: dict[str, Any] = {}
        for index, (path, module) in enumerate(named):
            twin = _to_torch(module, path, torch, tdtype, made)
            chained[_torch_key(path.replace(".", "_"), index, chained, torch.nn)] = twin
        root = torch.nn.Sequential()
        for key, twin in chained.items():
            root.add_module(key, twin)
        # the module's own buffers (register_buffer("m", np.zeros(3)), a step counter),
        # which its chain does not read, kept as a PyTorch module of its class keeps them:
        # the twin's state_dict() loaded into that class lacked them (strict: refused)
        _buffers_to_torch(model, root, torch)
        return root.train(model.training)
    root = _to_torch(model, "", torch, tdtype, made)
    if isinstance(root, torch.nn.Sequential):
        return root
    out = torch.nn.Sequential(root)  # a single layer: wrapped, as the return type promises
    out.training = root.training
    return out


def _trains_as_chained(model: Module, chain: list[Module]) -> bool:
    """Whether a training-mode forward of ``model`` computes what its ``chain`` (found in
    eval mode) computes in training mode, on a sample batch: F.dropout or a branch on
    ``self.training`` are not in the chain, and the twin, trained, would leave them out.
    Each runs on a copy of its own, drawing alike (Dropout layers' masks agree); the
    model itself is not touched. True where the forward fails on the sample."""
    width = next((int(m.in_features) for m in chain if hasattr(m, "in_features")), 3)
    rows = np.random.default_rng(0).standard_normal((5, width)).astype(_model_dtype(model))
    results = []
    for chained in (False, True):
        memo: dict[int, Any] = {}
        legacy = np.random.get_state()
        try:
            twin = copy.deepcopy(model, memo).train()
            with drawing_from(np.random.default_rng(0)), np.errstate(all="ignore"):
                if chained:
                    out = Tensor(rows)
                    for layer in chain:
                        out = memo.get(id(layer), layer)(out)
                else:
                    out = twin(Tensor(rows))
            results.append(np.asarray(out.data, dtype=np.float64))
        except Exception:  # (one that cannot be copied or run on this sample: no telling)
            return True
        finally:
            np.random.set_state(legacy)
    ours, chained_out = results
    if ours.shape != chained_out.shape:
        return False
    scale = float(np.nanmax(np.abs(chained_out), initial=1.0))
    return bool(np.allclose(ours, chained_out, rtol=1e-5, atol=1e-6 * scale, equal_nan=True))


def _check_convertible(
    path: str, module: Module, in_sequential: bool = False, no_chain: str | None = None
) -> None:
    """``module`` is a stock one to_torch knows (exact class, no forward of its own);
    ``no_chain``: why its forward of its own is no chain (``describe.not_a_chain``)."""
    cls = type(module)
    if cls not in _STOCK_TYPES:
        base = next((b for b in cls.__mro__[1:] if b in _STOCK_TYPES), None)
        if base is not None:
            why = f"it subclasses {base.__name__}, and its own code has no PyTorch twin"
        elif no_chain is not None:  # it calls stock layers: what else it does is the matter
            raise ConfigError(
                f"to_torch: cannot convert {_where(path)} ({cls.__name__}): it is a module of "
                "its own, which has no PyTorch twin here (one whose forward only chains stock "
                f"layers would be): its forward {no_chain}"
            )
        elif in_sequential:  # inside a Sequential: chain_layers reads the model's own forward only
            why = (
                "it is a module of its own inside a Sequential, whose forward to_torch does "
                "not read (it follows a forward of one's own only in the model itself); make "
                "the model a module of your own whose forward calls this Sequential, or put "
                "that module's stock layers in the Sequential"
            )
        else:
            why = "it is a module of its own, which has no PyTorch twin here" + (
                " (one whose forward only chains stock layers would be)" if module._modules else ""
            )
        raise ConfigError(
            f"to_torch: cannot convert {_where(path)} ({cls.__name__}): {why}; to_torch "
            "converts Sequential, Dense, LazyLinear, Embedding, Dropout, AlphaDropout, "
            "Standardize, LayerNorm, BatchNorm1d, RMSNorm, "
            + ", ".join(c.__name__ for c in _TWINS)
            + " and the activations "
            + ", ".join(c.__name__ for c in _ACTIVATION_TYPES)
        )
    if "forward" in vars(module) or "__call__" in vars(module):
        raise ConfigError(
            f"to_torch: cannot convert {_where(path)} ({cls.__name__}): its forward was "
            f"replaced on the instance, and the PyTorch twin would compute a plain "
            f"{cls.__name__}"
        )
    if isinstance(module, layers.Activation) and type(module.kernel) is not type(
        _stock_kernel(cls)
    ):
        raise ConfigError(
            f"to_torch: cannot convert {_where(path)} ({cls.__name__}): its kernel was "
            f"replaced by {type(module.kernel).__name__}"
        )
    if cls is not Sequential and module._modules:
        raise ConfigError(
            f"to_torch: cannot convert {_where(path)} ({cls.__name__}): it holds "
            f"sub-modules ({', '.join(module._modules)}), which its twin would not run"
        )


@functools.cache
def _stock_kernel(cls: type) -> object:
    return layers.stock_kernel(cls)


def _model_dtype(model: Module) -> np.dtype:
    """The one dtype of the model's parameters and buffers (float32 or float64); but for
    a forward of one's own's own buffers, which no layer converted reads (to_torch keeps
    them in their dtype: np.zeros(3)'s float64 beside float32 weights was refused), and
    but for a Sequential's own buffers, which no layer reads either."""
    own = model._own_forward()
    dtypes = {p.data.dtype for p in model.parameters()}
    dtypes |= {
        a.dtype
        for path, module in model.named_modules()
        if not isinstance(module, Sequential) and not (own and not path)
        for a in module._buffers.values()
        if a is not None and a.dtype.kind != "i"  # (counts)
    }
    odd = sorted(str(d) for d in dtypes if d not in _FLOATS)
    if odd:
        raise ConfigError(
            f"to_torch: the model holds {', '.join(odd)} arrays; cast it with "
            "model.to('float32') or model.to('float64')"
        )
    if len(dtypes) > 1:
        raise ConfigError(
            "to_torch: the model mixes float32 and float64 arrays; cast it to one with "
            "model.to('float32') or model.to('float64')"
        )
    return dtypes.pop() if dtypes else np.dtype(resolve_dtype(None))


def _tensor(torch, array: np.ndarray, tdtype):
    return torch.from_numpy(np.array(array, copy=True, order="C")).to(tdtype)


def _to_torch(module: Module, path: str, torch, tdtype, made: dict[int, Any]):
    if id(module) in made:
        return made[id(module)]
    nn = torch.nn
    if isinstance(module, Sequential):
        children: dict[str, Any] = {}
        for index, (key, child) in enumerate(module._modules.items()):
            twin = _to_torch(child, _join(path, key), torch, tdtype, made)
            children[_torch_key(key, index, children, nn)] = twin
        out = nn.Sequential()
        for key, twin in children.items():
            out.add_module(key, twin)
    elif isinstance(module, layers.Dense):
        out = nn.utils.skip_init(  # no random init: torch's generator is left alone
            nn.Linear,
            module.in_features,
            module.out_features,
            bias=module.bias is not None,
            dtype=tdtype,
        )
        _parameters_to_torch(module, out, path, torch, tdtype, made)
    elif isinstance(module, LayerNorm):
        out = nn.LayerNorm(
            module.normalized_shape,
            module.eps,
            module.elementwise_affine,
            bias=module.bias is not None,
            dtype=tdtype,
        )
        _parameters_to_torch(module, out, path, torch, tdtype, made)
    elif isinstance(module, RMSNorm):
        out = nn.RMSNorm(
            module.normalized_shape, module.eps, module.elementwise_affine, dtype=tdtype
        )
        _parameters_to_torch(module, out, path, torch, tdtype, made)
    elif isinstance(module, BatchNorm1d):
        out = nn.BatchNorm1d(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            kept := module._buffers.get("running_mean") is not None,
            dtype=tdtype,
            bias=module.bias is not None,
        )
        _parameters_to_torch(module, out, path, torch, tdtype, made)
        if kept:  # (statistics kept, tracking switched off since: eval mode reads them)
            with torch.no_grad():
                out.running_mean.copy_(_tensor(torch, module.running_mean, tdtype))
                out.running_var.copy_(_tensor(torch, module.running_var, tdtype))
                out.num_batches_tracked.fill_(int(module.num_batches_tracked))
            out.track_running_stats = module.track_running_stats
    elif isinstance(module, layers.Dropout):
        out = nn.Dropout(module.p)
    elif type(module) is layers.AlphaDropout:
        out = nn.AlphaDropout(module.p)
    elif isinstance(module, layers.Standardize):
        cls = _torch_standardize_class()
        out = cls(_tensor(torch, module.mean, tdtype), _tensor(torch, module.scale, tdtype))
    elif type(module) is layers.PReLU:
        out = nn.PReLU(module.num_parameters, init=module.init, dtype=tdtype)
        _parameters_to_torch(module, out, path, torch, tdtype, made)
    elif type(module) is layers.Embedding:
        out = nn.Embedding(
            module.num_embeddings, module.embedding_dim, module.padding_idx, module.max_norm,
            module.norm_type, module.scale_grad_by_freq, dtype=tdtype,
        )  # fmt: skip
        _parameters_to_torch(module, out, path, torch, tdtype, made)
    elif type(module) is layers.LazyLinear:  # (not called yet: torch's infers alike)
        out = nn.LazyLinear(module.out_features, module.bias is not None, dtype=tdtype)
    elif type(module) in _TWINS:
        settings = {key: getattr(module, key) for key in _TWINS[type(module)]}
        out = getattr(nn, type(module).__name__)(**settings)
    elif isinstance(module, layers.LeakyReLU):
        out = nn.LeakyReLU(module.kernel.negative_slope)
    elif isinstance(module, layers.GELU):
        out = nn.GELU(approximate=module.kernel.approximate)
    elif isinstance(module, layers.ELU):
        out = nn.ELU(alpha=module.kernel.alpha)
    elif isinstance(module, layers.Softplus):
        out = nn.Softplus(beta=module.kernel.beta, threshold=module.kernel.threshold)
    elif isinstance(module, (layers.Softmax, layers.LogSoftmax, layers.Softmin)):
        # wxb's runs over the last axis (dim=1 refuses inputs of 3 dims or more): dim=1
        # of a (N, C, L) input was over C in the twin, over L in wxb
        twin = getattr(nn, type(module).__name__)
        out = twin(dim=1 if module.dim == 1 else -1)
    else:
        simple = {
            layers.Identity: nn.Identity,
            layers.Sigmoid: nn.Sigmoid,
            layers.Tanh: nn.Tanh,
            layers.ReLU: nn.ReLU,
            layers.SiLU: nn.SiLU,
        }
        out = simple[type(module)]()  # _check_convertible let only these through
    _buffers_to_torch(module, out, torch)
    out.training = module.training
    made[id(module)] = out
    return out


def _buffers_to_torch(module: Module, out, torch) -> None:
    """``module``'s buffers its twin has not made (a Sequential's own, a step counter on
    a layer), in their dtype, persistent or not, as a PyTorch module keeps them."""
    for key, array in module._buffers.items():
        if array is not None and key not in out._buffers and key not in out._modules:
            tensor = torch.from_numpy(np.array(array))
            out.register_buffer(key, tensor, persistent=module._persistent(key))


def _parameters_to_torch(
    module: Module, out, path: str, torch, tdtype, made: dict[int, Any]
) -> None:
    """Copy ``module``'s weight and bias into its twin ``out`` (shared where tied)."""
    for key in ("weight", "bias"):
        param = getattr(module, key, None)  # (PReLU has no bias)
        if param is None:
            continue
        expected = tuple(getattr(out, key).shape)
        if tuple(param.shape) != expected:  # (a bias set by hand: torch's copy_ raised)
            raise ConfigError(
                f"to_torch: cannot convert {_where(path)} ({type(module).__name__}): its {key} "
                f"has shape {tuple(param.shape)}, where its twin's is {expected}"
            )
        if id(param) in made:  # tied: the twin shares the one torch Parameter too
            if key in module._buffers:
                delattr(out, key)
                out.register_buffer(key, made[id(param)], persistent=module._persistent(key))
            else:
                setattr(out, key, made[id(param)])
            continue
        if key in module._buffers:  # a constant in its place (register_buffer): torch's too
            twin = _tensor(torch, param, tdtype)
            delattr(out, key)
            out.register_buffer(key, twin, persistent=module._persistent(key))
            made[id(param)] = twin
            continue
        twin = _view_of_a_twin(param.data, made, torch, f"the {key} of {_where(path)}")
        if twin is not None:  # PyTorch's nn.Parameter(enc.weight.t()): one memory, as wxb's
            setattr(out, key, torch.nn.Parameter(twin, requires_grad=param.requires_grad))
        else:
            twin = getattr(out, key)
            with torch.no_grad():
                twin.copy_(_tensor(torch, param.data, tdtype))
            twin.requires_grad_(param.requires_grad)
        made[id(param)] = getattr(out, key)
        made.setdefault(_ARRAYS, []).append((param.data, made[id(param)]))


# made's entry of the arrays converted so far, each with its twin (memory shared: below)
_ARRAYS = -1


def _view_of_a_twin(array: np.ndarray, made: dict, torch, what: str) -> Any:
    """For a parameter whose array views memory an earlier one's holds (weights tied
    through ``.data`` or ``Parameter(enc.weight.T)``, stepped in one memory), the same view
    of that one's twin; None for memory of its own. A copy would train them apart."""
    for earlier, twin in made.get(_ARRAYS, ()):
        if not np.shares_memory(array, earlier):
            continue
        size = array.itemsize
        start = array.__array_interface__["data"][0] - earlier.__array_interface__["data"][0]
        low, high = byte_bounds(array)
        first, last = byte_bounds(earlier)
        if (
            not earlier.flags.c_contiguous  # (the twin is laid out in C order)
            or array.dtype != earlier.dtype
            or low < first
            or high > last
            or start % size
            or any(stride % size for stride in array.strides)
        ):
            raise ConfigError(
                f"to_torch: cannot convert {what}: it shares memory with an earlier "
                "parameter whose PyTorch twin it cannot view (that one itself a view, such "
                "as a transpose, or of another dtype); make the layer holding the memory "
                "come first, or give this one memory of its own (p.data = p.data.copy(), "
                "which unties them)"
            )
        with torch.no_grad():
            return torch.as_strided(
                twin,
                array.shape,
                [stride // size for stride in array.strides],
                twin.storage_offset() + start // size,
            )
    return None


def _torch_key(key: str, index: int, taken: dict[str, Any], nn) -> str:
    """The wxb key, where PyTorch accepts it (no dots, not an attribute of its
    Sequential); else the index, as PyTorch would name it."""
    if key and "." not in key and not hasattr(nn.Sequential, key) and key not in taken:
        return key
    key = str(index)
    while key in taken:
        key += "_"
    return key


# ---------------------------------------------------------------------------------
# PyTorch → wxb
# ---------------------------------------------------------------------------------
def from_torch(seq) -> Sequential:
    """A wxb Sequential computing what the ``torch.nn.Sequential`` ``seq`` computes.

    Reads (nested) Sequentials of Linear, Identity, ReLU, Sigmoid, Tanh,
    LeakyReLU, GELU, SiLU, ELU, Softplus, Softmax, LogSoftmax and Softmin over dim 1
    (or -1), Dropout, LayerNorm, BatchNorm1d (with its running statistics), RMSNorm, PReLU, the
    same-named layers of ``_TWINS`` (Flatten, ReLU6, Hardtanh, …) and
    ``TorchStandardize``,
    copying the weights (a weight or bias held as a buffer, a constant, as to_torch makes
    of a wxb one, stays a buffer); the dtype is the weights' (float32 or float64). Keys
    that are valid wxb names (not PyTorch's "0", "1", …) become the layers' names.
    Raises ConfigError naming the module's path and class for anything else, and for
    what PyTorch would run besides the class's forward (forward hooks, a forward set on
    the instance, a weight computed by pruning or spectral_norm).
    """
    torch = _import_torch()
    if type(seq) is not torch.nn.Sequential:
        raise ConfigError(
            f"from_torch needs a torch.nn.Sequential; got {type(seq).__name__}"
            + (
                " (a subclass, whose forward may differ)"
                if isinstance(seq, torch.nn.Sequential)
                else ""
            )
        )
    hooks = _global_torch_hooks(torch)
    if hooks:
        raise ConfigError(f"from_torch: {hooks}, which wxb would not run (remove it first)")
    for path, module in seq.named_modules():  # what is refused, before the dtypes are read
        reason = _torch_extras(module, torch.nn) or (
            _torch_refusal(module, torch.nn) if path else None
        )
        if reason is not None:
            where = f"module '{path}'" if path else "the Sequential itself"
            raise ConfigError(
                f"from_torch: cannot convert {where} ({type(module).__name__}): {reason}"
            )
    dtype = _torch_dtype(seq, torch)
    made: dict[int, Any] = {}  # id(torch module or Parameter) → its wxb twin
    return _from_torch(seq, "", torch, dtype, made)


_READS = (
    "wxb reads Sequential, Linear, Identity, ReLU, Sigmoid, Tanh, LeakyReLU, GELU, SiLU, "
    "ELU, Softplus, Softmax(dim=1), LogSoftmax(dim=1), Softmin(dim=1), Dropout, AlphaDropout, "
    "Embedding, LazyLinear, LayerNorm, "
    "BatchNorm1d, RMSNorm, PReLU, "
    + ", ".join(cls.__name__ for cls in _TWINS)
    + " and TorchStandardize"
)


def _twin_classes(nn) -> dict[type, type[Module]]:
    """torch.nn's classes of the layers in ``_TWINS``, each with its wxb class."""
    return {getattr(nn, cls.__name__): cls for cls in _TWINS}


def _weighted_classes(nn) -> tuple[type, ...]:
    """torch.nn's layers whose weight and bias from_torch copies into a twin with those
    slots, which holds a buffer there as torch's does: a constant the forward reads."""
    return (nn.Linear, nn.LayerNorm, nn.RMSNorm, nn.BatchNorm1d, nn.PReLU, nn.Embedding)


def _torch_extras(module, nn) -> str | None:
    """What PyTorch runs for ``module`` besides its class's forward (wxb would not), or
    None. Pruning, weight_norm and spectral_norm are such: a pre-hook recomputes
    ``weight`` at each call, so the attribute read here can be out of date."""
    pre = list(module._forward_pre_hooks.values())
    if type(module).__name__ == "LazyLinear" and len(pre) == 1:  # its own: what LazyLinear does
        pre = [h for h in pre if getattr(h, "__name__", None) != "_infer_parameters"]
    if pre or module._forward_hooks:
        held, them = hooks_in_words(len(pre), len(module._forward_hooks))
        return f"it has {held}, which wxb would not run (remove {them} first)"
    if "forward" in vars(module):
        return "its forward is set on the instance, which wxb would not run"
    slotted = type(module) in _weighted_classes(nn)
    for key in ("weight", "bias"):
        if key in module._buffers and module._buffers[key] is not None:  # register_buffer
            if slotted:  # (the twin holds it as a buffer too: to_torch's of a wxb one)
                continue
            return (
                f"its {key} is a buffer (register_buffer), not a parameter, which wxb "
                f"would train; make it a frozen parameter first: t = module.{key}; "
                f"del module.{key}; module.{key} = torch.nn.Parameter(t, requires_grad=False)"
            )
        if getattr(module, key, None) is not None and key not in module._parameters:
            return (
                f"its {key} is not a parameter but computed (pruning, weight_norm or "
                "spectral_norm?); make it one first, e.g. torch.nn.utils.prune.remove"
            )
    return None


def _global_torch_hooks(torch) -> str | None:
    """PyTorch's hooks for every module's forward (register_module_forward_hook), if any."""
    hooks = torch.nn.modules.module
    for name, what in (
        ("_global_forward_pre_hooks", "a global forward pre-hook is registered"),
        ("_global_forward_hooks", "a global forward hook is registered"),
    ):
        if getattr(hooks, name, None):
            return what
    return None


def _torch_refusal(module, nn) -> str | None:
    """Why ``module`` has no wxb twin, or None."""
    cls = type(module)
    simple = (nn.Linear, nn.Dropout, nn.AlphaDropout, nn.LeakyReLU, nn.GELU, nn.Identity,
              nn.ReLU, nn.Sigmoid, nn.SiLU, nn.ELU, nn.Softplus, nn.LayerNorm, nn.BatchNorm1d,
              nn.RMSNorm, nn.PReLU, nn.Embedding, nn.LazyLinear,
              *_twin_classes(nn))  # fmt: skip
    if cls in (*simple, nn.Tanh) or cls is _standardize_class_if_made():
        return "it holds sub-modules, which wxb would not run" if module._modules else None
    if cls is nn.Sequential:
        return None
    if cls in (nn.Softmax, nn.LogSoftmax, nn.Softmin):
        if module.dim in (1, -1):
            return None
        return (
            f"it is over dim={module.dim}; wxb's {cls.__name__} is over the features of each "
            "row (give dim=1 or -1)"
        )
    if issubclass(cls, (*simple, nn.Tanh, nn.Sequential, nn.Softmax, nn.LogSoftmax, nn.Softmin)):
        return f"{_READS} (subclasses refused: their forward may differ)"
    return _READS


def _torch_dtype(seq, torch) -> np.dtype:
    names = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}
    found: dict[Any, str] = {}
    # (not a Sequential's own buffers, which no layer reads and from_torch carries as they
    # are: to_torch's of a module of one's own, a float64 np.zeros(3) among them)
    buffers = [
        (_join(path, key), t)
        for path, module in seq.named_modules()
        if not isinstance(module, torch.nn.Sequential)
        for key, t in module._buffers.items()
        if t is not None
    ]
    for name, tensor in [*seq.named_parameters(), *buffers]:
        if tensor.dtype != torch.int64:  # (BatchNorm's batch count)
            found.setdefault(tensor.dtype, name)
    odd = [f"{name} is {dt}" for dt, name in found.items() if dt not in names]
    if odd:
        raise ConfigError(
            f"from_torch: {odd[0]}; wxb models are float32 or float64 (cast the module "
            "with .float() or .double() first)"
        )
    if len(found) > 1:
        shown = ", ".join(f"{name} is {dt}" for dt, name in found.items())
        raise ConfigError(
            f"from_torch: the module mixes dtypes ({shown}); cast it with .float() or .double()"
        )
    return names[next(iter(found))] if found else np.dtype(resolve_dtype(None))


_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def _wxb_name(key: str) -> str | None:
    """A torch key as a wxb layer name, or None (an index, or not a usable name)."""
    if not _NAME.match(key) or key == "info" or hasattr(Sequential, key):
        return None
    return key


def _name_layers(kids: list[Module], keys: list[str]) -> None:
    """Names for the layers met here first: their keys where those are names no other
    layer of this Sequential has; else by kind (dense1, relu1, …) around the taken ones.
    (Layers met before, in a nested Sequential or shared, keep the name they have.)"""
    taken = {kid.name for kid in kids if kid.name is not None}
    fresh = [(kid, key) for kid, key in zip(kids, keys, strict=True) if kid.name is None]
    unnamed = []
    for kid, key in fresh:
        if kid.name is not None:  # the same layer again, named at its first place
            continue
        name = _wxb_name(key)
        if name is None or name in taken:
            unnamed.append(kid)
            continue
        kid.name = name
        taken.add(name)
    counts: dict[str, int] = {}
    for kid in unnamed:
        if kid.name is not None:
            continue
        kind = type(kid).__name__.lower()
        counts[kind] = counts.get(kind, 0) + 1
        while f"{kind}{counts[kind]}" in taken:
            counts[kind] += 1
        kid.name = f"{kind}{counts[kind]}"
        taken.add(kid.name)


def _numpy(tensor, dtype: np.dtype, where: str) -> np.ndarray:
    if tensor.device.type == "meta":
        raise ConfigError(f"from_torch: {where} holds meta tensors, which have no values")
    return tensor.detach().to("cpu").numpy().astype(dtype, copy=True)


def _from_torch(module, path: str, torch, dtype, made: dict[int, Module]) -> Module:
    if id(module) in made:
        return made[id(module)]
    nn = torch.nn
    cls = type(module)
    where = f"module '{path}'" if path else "the Sequential itself"
    label = f"{where} ({cls.__name__})"
    if cls is nn.Sequential:
        kids: list[Module] = []
        for key, child in module._modules.items():
            if child is None:
                raise ConfigError(f"from_torch: {_where(_join(path, key))} is None")
            kids.append(_from_torch(child, _join(path, key), torch, dtype, made))
        _name_layers(kids, list(module._modules))
        out: Module = Sequential(*kids)
    elif cls is nn.Linear:
        out = layers.Dense(
            module.in_features,
            module.out_features,
            module.bias is not None,
            seed=0,
            dtype=dtype,
        )
        _parameters_from_torch(module, out, dtype, label, made)
    elif cls is nn.LayerNorm:
        try:
            out = LayerNorm(
                tuple(module.normalized_shape),
                float(module.eps),
                module.elementwise_affine,
                bias=module.bias is not None,
                dtype=dtype,
            )
        except ConfigError as exc:
            raise ConfigError(f"from_torch: {label}: {exc}") from None
        _parameters_from_torch(module, out, dtype, label, made)
    elif cls is nn.RMSNorm:
        try:
            eps = None if module.eps is None else float(module.eps)
            shape = tuple(module.normalized_shape)
            out = RMSNorm(shape, eps, module.elementwise_affine, dtype=dtype)
        except ConfigError as exc:
            raise ConfigError(f"from_torch: {label}: {exc}") from None
        _parameters_from_torch(module, out, dtype, label, made)
    elif cls is nn.BatchNorm1d:
        try:
            out = BatchNorm1d(
                module.num_features,
                float(module.eps),
                module.momentum,
                module.affine,
                kept := module.running_mean is not None,
                bias=module.bias is not None,
                dtype=dtype,
            )
        except ConfigError as exc:
            raise ConfigError(f"from_torch: {label}: {exc}") from None
        _parameters_from_torch(module, out, dtype, label, made)
        if module.track_running_stats or kept:  # (kept, tracking switched off since)
            if module.running_mean is None or module.running_var is None:
                raise ConfigError(f"from_torch: {label}: its running statistics were removed")
            np.copyto(out.running_mean, _numpy(module.running_mean, dtype, label))
            np.copyto(out.running_var, _numpy(module.running_var, dtype, label))
            tracked = module.num_batches_tracked
            out.num_batches_tracked[...] = 0 if tracked is None else int(tracked)
            out.track_running_stats = bool(module.track_running_stats)
    elif cls in (nn.Dropout, nn.AlphaDropout):
        try:
            out = getattr(layers, cls.__name__)(module.p)
        except ConfigError as exc:
            raise ConfigError(f"from_torch: {label}: {exc}") from None
    elif cls is _standardize_class_if_made():
        mean = _numpy(module.mean, dtype, label)
        scale = _numpy(module.scale, dtype, label)
        try:
            out = layers.Standardize(mean, scale, dtype=dtype)
        except ConfigError as exc:
            raise ConfigError(f"from_torch: {label}: {exc}") from None
    elif cls is nn.PReLU:
        out = layers.PReLU(module.num_parameters, init=module.init, dtype=dtype)
        _parameters_from_torch(module, out, dtype, label, made)
    elif cls is nn.Embedding:
        try:
            out = layers.Embedding(
                module.num_embeddings, module.embedding_dim, module.padding_idx,
                module.max_norm, module.norm_type, module.scale_grad_by_freq, module.sparse,
                _weight=np.zeros(tuple(module.weight.shape)), dtype=dtype,
            )  # fmt: skip
        except ConfigError as exc:
            raise ConfigError(f"from_torch: {label}: {exc}") from None
        _parameters_from_torch(module, out, dtype, label, made)
    elif cls is nn.LazyLinear:  # (not called yet: a called one is a Linear)
        out = layers.LazyLinear(module.out_features, module.bias is not None, dtype=dtype)
    elif cls in (twins := _twin_classes(nn)):
        ours = twins[cls]
        try:
            out = ours(**{key: getattr(module, key) for key in _TWINS[ours]})
        except ConfigError as exc:
            raise ConfigError(f"from_torch: {label}: {exc}") from None
    elif cls is nn.LeakyReLU:
        out = layers.LeakyReLU(float(module.negative_slope))
    elif cls is nn.GELU:
        out = layers.GELU(module.approximate)
    elif cls is nn.ELU:
        out = layers.ELU(float(module.alpha))
    elif cls is nn.Softplus:
        try:
            out = layers.Softplus(float(module.beta), float(module.threshold))
        except ConfigError as exc:
            raise ConfigError(f"from_torch: {label}: {exc}") from None
    elif cls in (nn.Softmax, nn.LogSoftmax, nn.Softmin):  # dim kept: wxb's dim=1 refuses
        twin = getattr(layers, cls.__name__)  # 3-D inputs, as torch's
        out = twin(dim=int(module.dim))  # would run over their dim 1, not the last
    elif cls in (nn.Identity, nn.ReLU, nn.Sigmoid, nn.Tanh, nn.SiLU):
        twin = {
            nn.SiLU: layers.SiLU,
            nn.Identity: layers.Identity,
            nn.ReLU: layers.ReLU,
            nn.Sigmoid: layers.Sigmoid,
            nn.Tanh: layers.Tanh,
        }[cls]
        out = twin()
    else:  # pragma: no cover - _torch_refusal let only the types above through
        raise ConfigError(f"from_torch: cannot convert {label}: {_READS}")
    _buffers_from_torch(module, out, label)
    out.training = module.training
    made[id(module)] = out
    return out


def _buffers_from_torch(module, out: Module, label: str) -> None:
    """The torch ``module``'s buffers its twin has not made (``seq.register_buffer``, a
    step counter on a layer), copied as they are, persistent or not: its forward does not
    read them, but its state_dict() holds them (they were dropped)."""
    hidden = module._non_persistent_buffers_set
    for key, tensor in module._buffers.items():
        if key in out._buffers:
            continue
        try:
            array = None if tensor is None else tensor.detach().cpu().numpy().copy()
        except TypeError:  # bfloat16, complex32, …: NumPy holds no such dtype
            raise ConfigError(
                f"from_torch: {label}: its buffer {key!r} is {tensor.dtype}, which NumPy "
                "cannot hold (cast it, or delete it first)"
            ) from None
        try:
            out.register_buffer(key, array, persistent=key not in hidden)
        except ConfigError as exc:
            raise ConfigError(f"from_torch: {label}: {exc}") from None


def _parameters_from_torch(module, out: Module, dtype, label: str, made: dict[int, Module]) -> None:
    """Copy the torch ``module``'s weight and bias into its wxb twin (shared where tied)."""
    for key in ("weight", "bias"):
        param = getattr(module, key, None)  # (PReLU has no bias)
        if param is None:
            continue
        buffer = key in module._buffers  # a constant (register_buffer): wxb's twin holds
        # one in that slot, as to_torch makes of it; persistent or not, as torch's
        if id(param) in made:  # tied in PyTorch: one wxb Parameter (or array) in both places
            _fill_slot(out, key, made[id(param)], buffer, module, label)
            continue
        mine = getattr(out, key)
        if mine is None or tuple(param.shape) != mine.shape:
            raise ConfigError(f"from_torch: {label}: its {key} has shape {tuple(param.shape)}")
        if buffer:
            array = _numpy(param, dtype, label)
            _fill_slot(out, key, array, buffer, module, label)
            made[id(param)] = array
            continue
        view = _view_of_a_parameter(param, made, dtype, f"the {key} of {label}")
        if view is not None:  # nn.Parameter(enc.weight.t()): stepped in one memory, as torch's
            mine.data = view
        else:
            np.copyto(mine.data, _numpy(param, dtype, label))
        mine.requires_grad = param.requires_grad
        made[id(param)] = mine
        made.setdefault(_ARRAYS, []).append((param, mine))


def _fill_slot(out: Module, key: str, value: object, buffer: bool, module, label: str) -> None:
    """Put ``value`` in the twin's ``key``: as a buffer where torch's ``module`` holds one
    there (persistent as torch's), else as the parameter it is."""
    if not buffer:
        setattr(out, key, value)
        return
    delattr(out, key)
    try:
        out.register_buffer(key, value, persistent=key not in module._non_persistent_buffers_set)
    except ConfigError as exc:
        raise ConfigError(f"from_torch: {label}: {exc}") from None


def _storage_bytes(t) -> tuple[int, int]:
    """The bytes of its storage a torch tensor spans, [first, end); (0, 0) if empty."""
    if t.numel() == 0:
        return 0, 0
    size = t.element_size()
    reach = sum((n - 1) * abs(k) for n, k in zip(t.shape, t.stride(), strict=True))
    return t.storage_offset() * size, (t.storage_offset() + reach + 1) * size


def _apart(param, earlier) -> bool:
    """Whether two torch tensors of one storage span no byte in common: parameters carved
    from one flat buffer (each slice its own memory) are copied, not refused as ties."""
    (low, high), (first, last) = _storage_bytes(param), _storage_bytes(earlier)
    return high <= first or last <= low


def _view_of_a_parameter(param, made: dict, dtype: np.dtype, what: str) -> np.ndarray | None:
    """For a torch parameter viewing memory an earlier one's holds, the same view of that
    one's wxb twin's array; None for memory of its own (a copy would train them apart)."""
    storage = param.untyped_storage().data_ptr()
    for earlier, twin in made.get(_ARRAYS, ()):
        if earlier.untyped_storage().data_ptr() != storage or _apart(param, earlier):
            continue
        start = param.storage_offset() - earlier.storage_offset()
        reach = sum((n - 1) * k for n, k in zip(param.shape, param.stride(), strict=True))
        if (
            not earlier.is_contiguous()  # (the twin is laid out in C order)
            or param.dtype != earlier.dtype
            or twin.data.dtype != dtype
            or not twin.data.flags.c_contiguous
            or start < 0
            or start + reach >= earlier.numel()
        ):
            raise ConfigError(
                f"from_torch: cannot convert {what}: it shares memory with an earlier "
                "parameter whose wxb twin it cannot view (that one itself a view, such as "
                "a transpose, or of another dtype); make the layer holding the memory come "
                "first, or give this one memory of its own (p.data = p.data.clone(), which "
                "unties them)"
            )
        flat = twin.data.reshape(-1)[start:]
        strides = [k * flat.itemsize for k in param.stride()]
        return np.lib.stride_tricks.as_strided(flat, tuple(param.shape), strides)
    return None


def _standardize_class_if_made() -> type | None:
    """TorchStandardize if some call made it (an instance of it exists only then)."""
    return globals().get("TorchStandardize")


# ---------------------------------------------------------------------------------
# scikit-learn → wxb
# ---------------------------------------------------------------------------------
_SKLEARN_ACTIVATIONS = {
    "identity": layers.Identity,
    "logistic": layers.Sigmoid,
    "tanh": layers.Tanh,
    "relu": layers.ReLU,
}


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def from_sklearn(est, dtype: object = None) -> Sequential:
    """A wxb Sequential giving the decision values of a fitted MLPClassifier or MLPRegressor.

    Hidden layers are Dense (W = ``coefs_[i]ᵀ``, b = ``intercepts_[i]``) then the
    estimator's activation; the output layer is a Dense without activation, so
    the model gives the values before scikit-learn's output activation:

    - MLPRegressor: the predictions (one column per output); for ``loss="poisson"``
      the log of the predicted mean: ``info["loss"] = "poisson"``, ``info["link"] =
      "log"`` (the prediction is exp(output), as ``wxb predict`` gives it).
    - MLPClassifier, several classes: logits; softmax gives ``predict_proba``, the
      argmax indexes ``info["classes"]``; ``info["loss"] = "cross_entropy"``.
    - MLPClassifier, two classes: ONE logit z, P(classes[1]) = σ(z);
      ``info["loss"] = "bce_with_logits"``.
    - MLPClassifier, multilabel: one logit per label, σ of each gives its
      probability; ``info["multilabel"] = True``, loss "bce_with_logits".

    ``model.info`` also holds task ("classification"/"regression"), n_features
    and, when the estimator saw them, feature_names. dtype: that of ``coefs_``
    by default (scikit-learn's float64, or float32), or the one given.
    """
    try:
        from sklearn.neural_network import MLPClassifier, MLPRegressor
    except ImportError:
        raise ConfigError(
            f"from_sklearn needs scikit-learn's MLPClassifier or MLPRegressor; got "
            f"{type(est).__name__} (and scikit-learn is not installed)"
        ) from None
    if type(est).__module__ == "wxb.sklearn":
        raise ConfigError(
            f"from_sklearn reads scikit-learn's MLPs; this is wxb's own {type(est).__name__}, "
            "whose network est.to_wxb() gives (after fit)"
        )
    if not isinstance(est, (MLPClassifier, MLPRegressor)):
        raise ConfigError(
            f"from_sklearn reads a fitted sklearn.neural_network.MLPClassifier or "
            f"MLPRegressor; got {type(est).__name__}"
            + (
                " (pass the pipeline's last step and put its scaling in front, e.g. as "
                "wxb.nn.Standardize)"
                if hasattr(est, "steps")
                else ""
            )
        )
    kind = type(est).__name__
    if not hasattr(est, "coefs_") or not hasattr(est, "intercepts_"):
        raise ConfigError(f"from_sklearn: this {kind} is not fitted; call fit() first")
    coefs, intercepts = list(est.coefs_), list(est.intercepts_)
    if not coefs or len(coefs) != len(intercepts):
        raise ConfigError(f"from_sklearn: this {kind} holds no layers (is it fitted?)")
    if est.activation not in _SKLEARN_ACTIVATIONS:
        raise ConfigError(f"from_sklearn: unknown activation {est.activation!r}")
    out_activation = est.out_activation_
    # "exp": loss="poisson", the log link, which info["link"] records (as to_wxb's)
    expected = {"softmax", "logistic"} if isinstance(est, MLPClassifier) else {"identity", "exp"}
    if out_activation not in expected:
        raise ConfigError(
            f"from_sklearn: this {kind}'s output activation is {out_activation!r}"
            f"; wxb reads {' or '.join(sorted(expected))}"
        )
    if dtype is None:
        found = np.asarray(coefs[0]).dtype
        dt = found if found in _FLOATS else np.dtype(np.float64)
    else:
        dt = np.dtype(resolve_dtype(dtype))

    stack: list[Module] = []
    for i, (W, b) in enumerate(zip(coefs, intercepts, strict=True)):
        W, b = np.asarray(W), np.asarray(b).reshape(-1)
        if W.ndim != 2 or b.shape != (W.shape[1],):
            raise ConfigError(
                f"from_sklearn: layer {i} has coefs {W.shape} and intercepts {b.shape}"
            )
        if stack and W.shape[0] != stack[-2].out_features:
            raise ConfigError(
                f"from_sklearn: layer {i} takes {W.shape[0]} inputs, not {stack[-2].out_features}"
            )
        dense = layers.Dense(W.shape[0], W.shape[1], seed=0, dtype=dt)
        np.copyto(dense.weight.data, W.T, casting="unsafe")  # coefs_ is (in, out); W is (out, in)
        np.copyto(dense.bias.data, b, casting="unsafe")
        stack.append(dense)
        if i < len(coefs) - 1:
            stack.append(_SKLEARN_ACTIVATIONS[est.activation]())
    model = Sequential(*stack)

    info: dict[str, Any] = {}
    if isinstance(est, MLPClassifier):
        classes = [_plain(c) for c in est.classes_]
        # one logistic output per class: multilabel (binary has one output for two classes)
        multilabel = out_activation == "logistic" and coefs[-1].shape[1] > 1
        info["task"] = "classification"
        info["loss"] = "cross_entropy" if out_activation == "softmax" else "bce_with_logits"
        info["classes"] = classes
        if multilabel:
            info["multilabel"] = True
    else:
        info["task"] = "regression"
        info["loss"] = "poisson" if out_activation == "exp" else "mse"
        if out_activation == "exp":
            info["link"] = "log"
    info["n_features"] = int(coefs[0].shape[0])
    names = getattr(est, "feature_names_in_", None)
    if names is not None:
        info["feature_names"] = [str(_plain(n)) for n in names]
    info["source"] = f"sklearn.neural_network.{kind}"
    model.info = info
    return model


def estimator_from_sklearn(est, dtype: object = None):
    """A fitted scikit-learn MLPClassifier/MLPRegressor as wxb's estimator of the same
    name, fitted the same (parameters, weights, classes, training records): set
    ``warm_start=True`` and ``fit`` to keep training it, as scikit-learn would."""
    from sklearn.exceptions import NotFittedError

    from wxb import sklearn as wxb_sklearn

    kind = type(est).__name__
    if kind not in ("MLPClassifier", "MLPRegressor"):
        raise ConfigError(
            f"estimator_from_sklearn takes a fitted MLPClassifier or MLPRegressor; got {kind}"
        )
    try:
        return getattr(wxb_sklearn, kind).from_sklearn(est, dtype=dtype)
    except NotFittedError as exc:
        raise ConfigError(f"estimator_from_sklearn: the {kind} is not fitted ({exc})") from None


# ---------------------------------------------------------------------------------
# Optimiser state: PyTorch ⇄ wxb (a run trained in one, continued in the other)
# ---------------------------------------------------------------------------------
# PyTorch's choices of implementation in a group: the same numbers, not carried over
_TORCH_IMPLEMENTATION = ("foreach", "fused", "capturable", "differentiable")


def _wxb_optim():
    from wxb import optim  # (loaded where an optimiser's state is converted)

    return optim


def _torch_settings(optim) -> set[str]:
    """Every PyTorch setting some wxb optimiser has: one this class lacks is another
    class's (the state of another optimiser)."""
    return {
        k for kind in optim.OPTIMIZERS.values() for k in (*kind.hyperparameters, *kind.fixed_flags)
    }


def _kind(value: object) -> str:
    """The class with its package (PyTorch's Adam and wxb's share the name: arguments
    given the other way round said "must be a wxb optimiser; got Adam")."""
    kind = type(value)
    return f"{kind.__module__.split('.')[0]}'s {kind.__name__}"


def _check_torch_optimizer(torch_opt, optimizer, torch, where: str) -> None:
    """``torch_opt`` is PyTorch's optimiser of ``optimizer``'s class, over parameters of
    the same shapes grouped the same way."""
    name = type(optimizer).__name__
    if not isinstance(torch_opt, torch.optim.Optimizer):
        raise ConfigError(f"{where}: needs a torch.optim optimiser; got {_kind(torch_opt)}")
    # (an optimiser of one's own: its port to torch has its name)
    own = optimizer._own_step and type(torch_opt).__name__ == name
    if type(torch_opt) is not getattr(torch.optim, name, None) and not own:
        raise ConfigError(
            f"{where}: PyTorch's optimiser is {type(torch_opt).__name__}, the wxb one {name}; "
            "the state of one is not the other's"
        )
    _check_groups([g["params"] for g in torch_opt.param_groups], optimizer, where)


def _check_groups(
    torch_groups: list, optimizer, where: str, indices: list[int] | None = None
) -> None:
    """The same number of groups, of as many parameters each, of the same shapes
    (``torch_groups``: lists of tensors, or of PyTorch's integer ids); ``indices``: the
    wxb groups PyTorch's hold, where they are some of them (MuonWithAdamW's)."""
    name = type(optimizer).__name__
    bounds = optimizer._bounds
    if indices is not None:
        bounds = [bounds[k] for k in indices]
        name = f"{name}'s {'Muon' if optimizer.param_groups[indices[0]]['use_muon'] else 'AdamW'}"
    sizes = [len(g) for g in torch_groups]
    mine = [stop - start for start, stop in bounds]
    if sizes != mine:
        raise ConfigError(
            f"{where}: PyTorch's optimiser has {len(sizes)} parameter group(s) of {sizes} "
            f"parameters; this {name} has {len(mine)} of {mine}"
        )
    flat = [p for g in torch_groups for p in g]
    params = [p for start, stop in bounds for p in optimizer.params[start:stop]]
    for i, (t, p) in enumerate(zip(flat, params, strict=True)):
        if hasattr(t, "shape") and tuple(t.shape) != tuple(p.shape):
            raise ConfigError(
                f"{where}: parameter {i} is {tuple(t.shape)} in PyTorch's optimiser and "
                f"{tuple(p.shape)} in this {name} ({p.name or 'unnamed'}); the same model, "
                "its parameters in the same order?"
            )
    # Shapes alike, order not: two layers of one width given in another order (groups
    # listed otherwise) would take each other's moments without an error. The weights
    # tell: the run's state belongs to the values it was stepping.
    theirs = [_values(t) if hasattr(t, "detach") else None for t in flat]
    for i, (t, p) in enumerate(zip(theirs, params, strict=True)):
        if t is None or np.array_equal(t, p.data):
            continue
        j = next(
            (j for j, u in enumerate(theirs) if j != i and u is not None and u.shape == t.shape
             and np.array_equal(u, p.data)),
            None,
        )  # fmt: skip
        if j is not None:
            raise ConfigError(
                f"{where}: parameter {i} of this {name} ({p.name or 'unnamed'}) holds the "
                f"weights of parameter {j} of PyTorch's optimiser; give the parameters (and "
                "groups) in the order PyTorch's optimiser has them"
            )


def _values(tensor) -> np.ndarray:
    """A torch tensor's values (float16 and bfloat16, which NumPy cannot take, widened)."""
    tensor = tensor.detach().cpu()
    if tensor.is_floating_point() and tensor.element_size() < 4:
        tensor = tensor.float()
    return tensor.numpy()


def _state_number(value, where: str) -> float:
    """A 0-d tensor (PyTorch's step, mu_product) or a number, as a Python float."""
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: must be one number; got {value!r}")
    return float(value)


def _setting(value):
    """A group's setting as a number where PyTorch takes a 0-d tensor (lr=torch.tensor(0.01),
    betas of tensors): wxb's groups hold numbers."""
    if isinstance(value, tuple):
        return tuple(map(_setting, value))
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        return value.item()
    return value


def optimizer_from_torch(source, optimizer):
    """Load PyTorch's optimiser state into the wxb ``optimizer`` of the same class
    (SGD, Adam, AdamW, RMSprop, Adagrad, NAdam, RAdam, Adamax, Adadelta, Rprop, ASGD,
    Adafactor, Muon, LBFGS), made over the wxb model's parameters in the order of the
    PyTorch model's (``from_torch(seq)`` keeps it): ``source`` is the ``torch.optim``
    optimiser or its ``state_dict()``; for MuonWithAdamW, PyTorch's docs' pair
    ``(torch_muon, torch_adamw)`` (or their state_dicts), its use_muon groups in order
    the Muon's groups, the rest the AdamW's.
    Each parameter's moments, step count, NAdam's mu_product, SGD's momentum_buffer and
    each group's settings carry over, so the next steps are the ones PyTorch would have
    taken. Raises ConfigError in one line for another class, other groups or shapes, a
    setting wxb lacks (amsgrad=True), or (given the optimiser itself) parameters whose
    weights are another's of PyTorch's optimiser: given in another order. An optimiser
    of one's own written PyTorch's way pairs with its torch port (the class of its name):
    its entries carry over as they are, torch's tensors as NumPy arrays. Returns
    ``optimizer``."""
    torch = _import_torch()
    optim = _wxb_optim()
    where = "optimizer_from_torch"
    if not isinstance(optimizer, optim.Optimizer):
        raise ConfigError(
            f"{where}: the second argument must be a wxb optimiser; got {_kind(optimizer)}"
        )
    name = type(optimizer).__name__
    if isinstance(optimizer, optim.MuonWithAdamW):
        return _muon_with_adamw_from_torch(source, optimizer, torch, optim)
    if isinstance(source, torch.optim.Optimizer):
        _check_torch_optimizer(source, optimizer, torch, where)
        source = source.state_dict()
    if not isinstance(source, dict) or not {"state", "param_groups"} <= source.keys():
        raise ConfigError(
            f"{where}: takes a torch optimiser or its state_dict(); got {_kind(source)}"
        )
    groups, state = source["param_groups"], source["state"]
    if not isinstance(groups, list) or not all(
        isinstance(g, dict) and "params" in g for g in groups
    ):
        raise ConfigError(f"{where}: 'param_groups' must be a list of dicts with 'params'")
    _check_groups([list(g["params"]) for g in groups], optimizer, where)
    if optimizer._own_step:  # its entries as they are, its tensors NumPy's (load_state_dict)
        optimizer.load_state_dict({"state": state, "param_groups": groups})
        return optimizer
    if isinstance(optimizer, optim.LBFGS):
        return _lbfgs_from_torch(source, optimizer, torch)
    ids = [k for g in groups for k in g["params"]]  # PyTorch's ids, in the parameters' order
    settings, kind = _torch_settings(optim), type(optimizer)
    own = {*kind.hyperparameters, *kind.fixed_flags}
    loaded_groups = []
    for index, (group, (start, stop)) in enumerate(zip(groups, optimizer._bounds, strict=True)):
        at = f"{where} param_groups[{index}]"
        # another class's setting, unless this optimiser's group holds it too: a key the
        # user gave both (Rprop's groups with weight_decay: 0.0), kept by both as given
        held = optimizer.param_groups[index]
        other = sorted(k for k in group if k in settings and k not in own and k not in held)
        if other:
            raise ConfigError(
                f"{at}: has {', '.join(map(repr, other))}, which {name} has no setting of "
                "(the state of another optimiser class?)"
            )
        values = {
            k: _setting(v) for k, v in group.items() if k not in ("params", *_TORCH_IMPLEMENTATION)
        }
        optimizer._check_group(dict(values), at)  # amsgrad=True, maximize=True: refused here
        loaded_groups.append({**values, "params": list(range(start, stop))})
    renamed = dict(kind.torch_names)
    counters = {optim.COUNTER_KEYS[c]: c for c in kind.counters}
    entries: dict[int, dict] = {}
    names: set[str] = set()
    for i, (key, p) in enumerate(zip(ids, optimizer.params, strict=True)):
        raw = state.get(key, state.get(str(key), {})) if isinstance(state, dict) else None
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: 'state' must map PyTorch's parameter ids to dicts")
        entry: dict = {}
        for k, v in raw.items():
            at = f"{where} state[{key}][{k!r}]"
            if k in counters:  # step, mu_product: PyTorch's 0-d float tensors
                entry[k] = _state_number(v, at)
                if k == "step":
                    if not (entry[k] >= 0 and float(entry[k]).is_integer()):
                        raise ConfigError(
                            f"{at}: a step count must be a whole number ≥ 0; got {entry[k]}"
                        )
                    entry[k] = int(entry[k])
                continue
            if v is None:  # SGD's momentum_buffer before its first momentum step
                continue
            mine = renamed.get(k, k)
            if mine not in kind.possible_states:
                raise ConfigError(
                    f"{at}: {name} keeps no such state (it keeps "
                    f"{', '.join(repr(t) for t in _torch_state_names(kind))}): the state of "
                    "another optimiser class, or a setting wxb lacks?"
                )
            if isinstance(v, torch.Tensor):  # (a half-precision state in float32 first)
                v = v.detach().cpu()
                v = (v.float() if v.dtype in (torch.float16, torch.bfloat16) else v).numpy()
            array = np.array(v, copy=True)
            shape = optimizer.state_shape(mine, i)  # (Adafactor's row and column means)
            if array.shape != shape:
                raise ConfigError(
                    f"{at}: shape {array.shape}; parameter {i} of this {name} is "
                    f"{tuple(p.shape)}"
                    + ("" if shape == tuple(p.shape) else f", its {k} {shape or 'none'}")
                )
            entry[mine] = array
            names.add(mine)
        if "momentum_step" in counters and "velocity" in entry:  # SGD: a buffer is a begun run
            entry.setdefault("momentum_step", 1)
            entry.setdefault("step", 1)
        entries[i] = entry
    names.update(optimizer.state_names)
    names.update(optimizer._states_for([{**g} for g in loaded_groups]))
    state_dict_state = {}
    for i, p in enumerate(optimizer.params):
        entry = entries[i]
        full = {key: entry.get(key, kind.counter_starts.get(c, 0)) for key, c in counters.items()}
        for s in names:
            shape = optimizer.state_shape(s, i)
            if s in entry or shape is not None:
                full[s] = entry[s] if s in entry else np.zeros(shape, p.dtype)
        state_dict_state[i] = full
    steps = max((e.get("step", 0) for e in entries.values()), default=0)
    try:
        optimizer.load_state_dict(
            {"state": state_dict_state, "param_groups": loaded_groups, "steps": steps}
        )
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    return optimizer


def _lbfgs_from_torch(source: dict, optimizer, torch):
    """PyTorch's LBFGS state (one entry, under its first parameter) into wxb's: its
    tensors as arrays, its 0-d tensors as numbers."""

    def plain(value):
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            return value.item() if value.dim() == 0 else value.numpy().copy()
        return value

    state = source["state"]
    entry = next(iter(state.values()), {}) if isinstance(state, dict) else state
    if not isinstance(entry, dict):
        raise ConfigError("optimizer_from_torch: 'state' must map PyTorch's ids to dicts")
    group = {k: _setting(v) for k, v in source["param_groups"][0].items() if k != "params"}
    loaded = {
        "state": {0: {k: plain(v) for k, v in entry.items()}} if entry else {},
        "param_groups": [{**group, "params": list(range(len(optimizer.params)))}],
        "steps": 0,
    }
    try:
        optimizer.load_state_dict(loaded)
    except ConfigError as error:
        raise ConfigError(f"optimizer_from_torch: {error}") from None
    return optimizer


def _lbfgs_to_torch(saved: dict, torch_opt, torch):
    """wxb's LBFGS state into PyTorch's: arrays as tensors, under its first parameter."""

    def tensor(value):
        if isinstance(value, list):
            return [tensor(v) for v in value]
        if isinstance(value, np.ndarray):
            return torch.from_numpy(value.copy())
        return value

    entry = saved["state"].get(0, {})
    group = saved["param_groups"][0]
    torch_opt.load_state_dict(
        {
            "state": {0: {k: tensor(v) for k, v in entry.items()}} if entry else {},
            "param_groups": [group],
        }
    )
    return torch_opt


def _torch_state_names(kind) -> list[str]:
    wxb_to_torch = {v: k for k, v in kind.torch_names.items()}
    return [wxb_to_torch.get(s, s) for s in kind.possible_states]


def _as_tensors(value: object, torch) -> object:
    """``value`` with each NumPy array in it a torch tensor of its own (in dicts, lists
    and tuples too), as an optimiser of one's own written for torch keeps its state."""
    if isinstance(value, np.ndarray):
        return torch.tensor(value)
    if type(value) is dict:
        return {k: _as_tensors(v, torch) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_as_tensors(v, torch) for v in value)
    return value


def optimizer_to_torch(optimizer, torch_opt):
    """Load the wxb ``optimizer``'s state into PyTorch's optimiser ``torch_opt`` of the same
    class (MuonWithAdamW's: the pair ``(torch_muon, torch_adamw)``, as for
    ``optimizer_from_torch``), made over the PyTorch model's parameters (``to_torch(model)``
    keeps their order):
    moments, step counts (PyTorch's 0-d float tensors), NAdam's mu_product, SGD's
    momentum_buffer and each group's settings (its flags too: maximize, amsgrad), so
    PyTorch's next steps are wxb's. Raises ConfigError in one line for another class,
    other groups or shapes, or parameters given in another order. An optimiser of one's
    own written PyTorch's way pairs with its torch port (the class of its name): its
    entries carry over as they are, its arrays as torch tensors. Returns
    ``torch_opt``."""
    torch = _import_torch()
    optim = _wxb_optim()
    where = "optimizer_to_torch"
    if not isinstance(optimizer, optim.Optimizer):
        raise ConfigError(
            f"{where}: the first argument must be a wxb optimiser; got {_kind(optimizer)}"
        )
    if isinstance(optimizer, optim.MuonWithAdamW):
        return _muon_with_adamw_to_torch(optimizer, torch_opt, torch, optim)
    _check_torch_optimizer(torch_opt, optimizer, torch, where)
    kind = type(optimizer)
    saved = optimizer.state_dict()
    if optimizer._own_step:  # its entries as they are, its arrays as tensors (copies)
        torch_opt.load_state_dict(
            {"state": _as_tensors(saved["state"], torch), "param_groups": saved["param_groups"]}
        )
        return torch_opt
    if kind is optim.LBFGS:
        return _lbfgs_to_torch(saved, torch_opt, torch)
    to_torch_name = {v: k for k, v in kind.torch_names.items()}
    scalar = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
    groups, state = [], {}
    for group, mine in zip(torch_opt.param_groups, saved["param_groups"], strict=True):
        values = {k: v for k, v in mine.items() if k != "params"}
        # the flags wxb runs at one value (maximize, amsgrad, Adam's decoupled weight
        # decay): wxb's, as every other setting (PyTorch's made with maximize=True went
        # on climbing the loss; with amsgrad=True it failed for want of max_exp_avg_sq)
        values.update({flag: value for flag, (value, _) in kind.fixed_flags.items()})
        kept = {k: v for k, v in group.items() if k != "params" and k not in values}
        groups.append({**kept, **values, "params": mine["params"]})
        for i in mine["params"]:
            if not (optimizer._has_state(i) or kind is optim.Adagrad):
                continue
            entry = saved["state"][i]
            out: dict = {}
            for key, value in entry.items():
                if key == "step":
                    if kind is not optim.SGD:
                        out["step"] = torch.tensor(float(value), dtype=scalar)
                elif key in ("mu_product", "eta", "mu"):  # NAdam's, ASGD's 0-d tensors
                    out[key] = torch.tensor(float(value), dtype=scalar)
                elif key == "momentum_step":
                    continue
                elif key == "velocity":
                    if values["momentum"] and entry.get("momentum_step", 0):
                        out["momentum_buffer"] = torch.from_numpy(np.array(value, copy=True))
                elif key == "momentum_buffer" and not values.get("momentum"):
                    continue  # RMSprop's, kept from a group that had momentum: PyTorch's has none
                elif key == "grad_avg" and not values.get("centered"):
                    continue
                else:
                    out[to_torch_name.get(key, key)] = torch.from_numpy(np.array(value, copy=True))
            if out:
                state[i] = out
    torch_opt.load_state_dict({"state": state, "param_groups": groups})
    return torch_opt


# MuonWithAdamW's group settings under PyTorch's Muon's and AdamW's names (wxb's one
# optimiser holds both; its Muon's epsilon is ns_eps, PyTorch's Muon's eps)
_MUON_SETTINGS = {
    "lr": "lr", "weight_decay": "weight_decay", "momentum": "momentum", "nesterov": "nesterov",
    "ns_coefficients": "ns_coefficients", "eps": "ns_eps", "ns_steps": "ns_steps",
    "adjust_lr_fn": "adjust_lr_fn",
}  # fmt: skip
_ADAMW_SETTINGS = {"lr": "lr", "betas": "betas", "eps": "eps", "weight_decay": "weight_decay"}
_ADAMW_FLAGS = ("amsgrad", "maximize")  # PyTorch's AdamW's, wxb's at False


def _muon_parts(given, optimizer, torch, where: str) -> list[tuple[bool, Any, list[int]]]:
    """PyTorch's optimisers for MuonWithAdamW's groups, as PyTorch's docs pair them:
    ``given`` is its Muon and AdamW (or their state_dicts; one alone where wxb's groups
    are all of one rule). Each as (use_muon, the optimiser or its state, the indices of
    the wxb groups it holds, in order)."""
    items = list(given) if isinstance(given, (tuple, list)) else [given]
    wanted = {
        rule: [k for k, g in enumerate(optimizer.param_groups) if g["use_muon"] is rule]
        for rule in (True, False)
    }
    found: dict[bool, Any] = {}
    for item in items:
        if isinstance(item, torch.optim.Optimizer):
            kind = type(item).__name__
            groups = [g["params"] for g in item.param_groups]
        elif isinstance(item, dict) and {"state", "param_groups"} <= item.keys():
            listed = item["param_groups"]
            if not isinstance(listed, list) or not all(
                isinstance(g, dict) and "params" in g for g in listed
            ):
                raise ConfigError(f"{where}: 'param_groups' must be a list of dicts with 'params'")
            kind = (
                "Muon" if any("ns_coefficients" in g for g in listed)
                else "AdamW" if any("betas" in g for g in listed) else "another"
            )  # fmt: skip
            groups = [list(g["params"]) for g in listed]
        else:
            kind, groups = _kind(item), []
        if kind not in ("Muon", "AdamW") or (
            isinstance(item, torch.optim.Optimizer) and type(item) is not getattr(torch.optim, kind)
        ):
            raise ConfigError(
                f"{where}: MuonWithAdamW's PyTorch counterpart is torch.optim.Muon and "
                f"torch.optim.AdamW (or their state_dict()s), as PyTorch's docs pair them; "
                f"got {_kind(item)}"
            )
        rule = kind == "Muon"
        if rule in found:
            raise ConfigError(f"{where}: two PyTorch {kind} optimisers given; give one of each")
        if not wanted[rule]:
            raise ConfigError(
                f"{where}: PyTorch's {kind} given, but no group of this MuonWithAdamW has "
                f"use_muon={rule}"
            )
        _check_groups(groups, optimizer, where, wanted[rule])
        found[rule] = item
    for rule, indices in wanted.items():
        if indices and rule not in found:
            kind = "Muon" if rule else "AdamW"
            raise ConfigError(
                f"{where}: this MuonWithAdamW's groups {indices} are stepped by {kind}; give "
                f"PyTorch's {kind} too: (torch_muon, torch_adamw)"
            )
    return [(rule, found[rule], wanted[rule]) for rule in (True, False) if rule in found]


def _muon_with_adamw_to_torch(optimizer, torch_opts, torch, optim):
    """MuonWithAdamW's state into PyTorch's Muon (its use_muon groups, in order) and
    AdamW (the rest): PyTorch's next steps are wxb's. Returns them as given."""
    where = "optimizer_to_torch"
    parts = _muon_parts(torch_opts, optimizer, torch, where)
    for _, theirs, _ in parts:
        if not isinstance(theirs, torch.optim.Optimizer):
            raise ConfigError(f"{where}: needs PyTorch's optimisers, not their state_dict()s")
    saved = optimizer.state_dict()
    scalar = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
    for rule, theirs, indices in parts:
        settings = _MUON_SETTINGS if rule else _ADAMW_SETTINGS
        groups, state, at = [], {}, 0
        for group, index in zip(theirs.param_groups, indices, strict=True):
            mine = saved["param_groups"][index]
            values = {key: mine[own] for key, own in settings.items()}
            if not rule:
                values.update(dict.fromkeys(_ADAMW_FLAGS, False))
            kept = {k: v for k, v in group.items() if k != "params" and k not in values}
            ids = list(range(at, at + len(mine["params"])))  # PyTorch's, counted over its groups
            at += len(ids)
            groups.append({**kept, **values, "params": ids})
            for i, key in zip(mine["params"], ids, strict=True):
                if not optimizer._has_state(i):
                    continue
                entry = saved["state"][i]
                out = {
                    name: torch.from_numpy(np.array(entry[own], copy=True))
                    for name, own in (
                        (("momentum_buffer", "momentum_buffer"),) if rule
                        else (("exp_avg", "moment1"), ("exp_avg_sq", "moment2"))
                    )
                    if own in entry
                }  # fmt: skip
                if not rule:  # (PyTorch's Muon counts no steps)
                    out["step"] = torch.tensor(float(entry["step"]), dtype=scalar)
                state[key] = out
        theirs.load_state_dict({"state": state, "param_groups": groups})
    return torch_opts


def _muon_with_adamw_from_torch(sources, optimizer, torch, optim):
    """PyTorch's Muon and AdamW (or their state_dict()s) into MuonWithAdamW: each group's
    settings and each parameter's momentum_buffer, or its step and moments."""
    where = "optimizer_from_torch"
    parts = _muon_parts(sources, optimizer, torch, where)
    saved = optimizer.state_dict()  # (the settings PyTorch's other optimiser holds stay)
    groups = [dict(g) for g in saved["param_groups"]]
    state: dict[int, dict] = {i: {"step": 0} for i in range(len(optimizer.params))}
    for rule, theirs, indices in parts:
        kind = "Muon" if rule else "AdamW"
        source = theirs.state_dict() if isinstance(theirs, torch.optim.Optimizer) else theirs
        their_state = source["state"]
        if not isinstance(their_state, dict):
            raise ConfigError(f"{where}: 'state' must map PyTorch's parameter ids to dicts")
        settings = _MUON_SETTINGS if rule else _ADAMW_SETTINGS
        names = (
            {"momentum_buffer": "momentum_buffer"} if rule
            else {"exp_avg": "moment1", "exp_avg_sq": "moment2"}
        )  # fmt: skip
        for index, group in zip(indices, source["param_groups"], strict=True):
            at = f"{where} {kind} param_groups[{indices.index(index)}]"
            for flag in () if rule else _ADAMW_FLAGS:
                if group.get(flag):
                    raise ConfigError(f"{at}: {flag}=True, which MuonWithAdamW's AdamW lacks")
            groups[index].update(
                {own: _setting(group[key]) for key, own in settings.items() if key in group}
            )
            for i, key in zip(saved["param_groups"][index]["params"], group["params"], strict=True):
                raw = their_state.get(key, their_state.get(str(key), {}))
                if not isinstance(raw, dict):
                    raise ConfigError(f"{where}: 'state' must map PyTorch's parameter ids to dicts")
                entry = state[i]
                for name, value in raw.items():
                    there = f"{where} {kind} state[{key}][{name!r}]"
                    if name == "step" and not rule:
                        step = _state_number(value, there)
                        if not (step >= 0 and float(step).is_integer()):
                            raise ConfigError(f"{there}: a step count must be a whole number ≥ 0")
                        entry["step"] = int(step)
                        continue
                    if name not in names:
                        raise ConfigError(
                            f"{there}: MuonWithAdamW's {kind} keeps no such state (it keeps "
                            f"{', '.join(map(repr, names))})"
                        )
                    array = _values(value) if hasattr(value, "detach") else np.asarray(value)
                    if array.shape != tuple(optimizer.params[i].shape):
                        raise ConfigError(
                            f"{there}: shape {array.shape}; parameter {i} of this "
                            f"MuonWithAdamW is {tuple(optimizer.params[i].shape)}"
                        )
                    entry[names[name]] = np.array(array, copy=True)
    steps = max((e["step"] for e in state.values()), default=0)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups, "steps": steps})
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    return optimizer


# ---------------------------------------------------------------------------------
# Schedules' state: PyTorch's lr_scheduler state_dict() ⇄ wxb's
# ---------------------------------------------------------------------------------
def _torch_scheduler_base(torch):
    return torch.optim.lr_scheduler.LRScheduler


def _check_pair(schedule, theirs, torch, where: str, wxb_first: bool) -> None:
    """The wxb schedule and PyTorch's (object or state) are of one kind wxb maps."""
    optim = _wxb_optim()
    mine, other = ("first", "second") if wxb_first else ("second", "first")
    if not isinstance(schedule, (optim.LRSchedule, optim.ChainedScheduler)):
        raise ConfigError(
            f"{where}: the {mine} argument must be a wxb schedule; got {_kind(schedule)}"
        )
    name = type(schedule).__name__
    if name not in optim.lr_scheduler.__all__:  # InverseScalingLR, a schedule of one's own
        raise ConfigError(f"{where}: PyTorch has no {name}, so no state of one to map")
    if isinstance(theirs, _torch_scheduler_base(torch)):
        if type(theirs).__name__ != name:
            raise ConfigError(
                f"{where}: PyTorch's {type(theirs).__name__} and wxb's {name} are of other "
                "kinds: make both of one kind, with the same settings"
            )
    elif wxb_first or not isinstance(theirs, dict):
        what = (
            "PyTorch's lr_scheduler" if wxb_first else "PyTorch's lr_scheduler or its state_dict()"
        )
        raise ConfigError(f"{where}: the {other} argument must be {what}; got {_kind(theirs)}")


def _torch_phases(state: dict) -> list[float]:
    return [float(p["end_step"]) for p in state["_schedule_phases"]]


def _onecycle_phases(values: dict) -> list[float]:
    optim = _wxb_optim()
    phases = optim.OneCycleLR._phases(
        values["total_steps"], values["pct_start"], values["three_phase"]
    )
    return [float(end) for end, _ in phases]


def _cyclic_steps(theirs: dict, mine: dict, where: str) -> dict:
    """A CyclicLR's step_size_up and step_size_down from PyTorch's total_size and
    step_ratio (all its state holds of them): the wxb schedule's own where they give
    those, else whole numbers where the product rounds off to them."""
    total = _state_number(theirs["total_size"], f"{where} total_size")
    ratio = _state_number(theirs["step_ratio"], f"{where} step_ratio")
    up, down = mine["step_size_up"], mine["step_size_down"]
    if up + down == total and up / (up + down) == ratio:
        return {}
    up = total * ratio
    if abs(up - round(up)) <= 1e-9 * total:
        up = float(round(up))
    return {"step_size_up": up, "step_size_down": total - up}


def _state_from_torch(theirs: dict, schedule, where: str) -> dict:
    """wxb's state_dict() for ``schedule`` holding PyTorch's state ``theirs``: its counters
    and the settings it holds (PyTorch's load_state_dict takes those too); settings it
    does not hold (OneCycleLR's max_lr, div_factor) stay the wxb schedule's."""
    name = type(schedule).__name__
    if name == "ChainedScheduler":
        children = theirs["_schedulers"]
        if not isinstance(children, list) or len(children) != len(schedule._schedulers):
            raise ConfigError(
                f"{where}: PyTorch's state holds {len(children)} schedules; this chain has "
                f"{len(schedule._schedulers)}"
            )
        return {
            "type": name,
            "_last_lr": [_state_number(v, f"{where} _last_lr") for v in theirs["_last_lr"]],
            "_schedulers": [
                _state_from_torch(child, s, f"{where} _schedulers[{i}]")
                for i, (child, s) in enumerate(zip(children, schedule._schedulers, strict=True))
            ],
        }
    state = schedule.state_dict()
    state["epoch"] = theirs["last_epoch"]
    if "_last_lr" in theirs:  # get_last_lr() until the next step: the run's, not this one's
        state["_last_lr"] = [_state_number(v, f"{where} _last_lr") for v in theirs["_last_lr"]]
    if name == "ReduceLROnPlateau":
        for key in ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown",
                    "eps", "best", "num_bad_epochs", "cooldown_counter"):  # fmt: skip
            state[key] = theirs[key]
        state["min_lr"] = [_state_number(v, f"{where} min_lrs") for v in theirs["min_lrs"]]
        return state
    if name == "SequentialLR":
        state["milestones"] = list(theirs["_milestones"])
        children = theirs["_schedulers"]
        if not isinstance(children, list) or len(children) != len(schedule._schedulers):
            raise ConfigError(
                f"{where}: PyTorch's state holds {len(children)} schedules; this SequentialLR "
                f"has {len(schedule._schedulers)}"
            )
        # the starting rates of the schedule at this epoch (each starts from initial_lr)
        now = bisect.bisect_right(state["milestones"], state["epoch"])
        state["base_lrs"] = children[min(now, len(children) - 1)]["base_lrs"]
        settings = []
        for i, (child, s) in enumerate(zip(children, schedule._schedulers, strict=True)):
            own = _state_from_torch(child, s, f"{where} _schedulers[{i}]")
            settings.append({k: v for k, v in own.items() if k in s.settings()})
        state["schedulers"] = settings
    elif name == "CyclicLR":
        state["base_lrs"] = theirs["base_lrs"]
        state.update(_cyclic_steps(theirs, state, where))
        for key in ("max_lrs", "mode", "gamma", "scale_mode", "cycle_momentum",
                    "base_momentums", "max_momentums"):  # fmt: skip
            if key in theirs:  # (the momenta: only where PyTorch's cycles them)
                state[key] = theirs[key]
    else:
        state["base_lrs"] = theirs["base_lrs"]
        held = name == "OneCycleLR" or all(k in theirs for k in schedule.settings() if k != "type")
        if not held:  # (PyTorch's holds every setting of these: a state of another kind)
            lacking = sorted(k for k in schedule.settings() if k != "type" and k not in theirs)
            raise ConfigError(
                f"{where}: the state holds no {', '.join(lacking)} (not the state_dict() of "
                f"PyTorch's {name}?)"
            )
        for key in state:
            if key in theirs and key not in ("base_lrs", "epoch", "type"):
                state[key] = theirs[key]
    state["base_lrs"] = [_state_number(v, f"{where} base_lrs") for v in state["base_lrs"]]
    if name == "MultiStepLR":  # PyTorch's Counter {milestone: times}
        state["milestones"] = sorted(collections.Counter(theirs["milestones"]).elements())
    if name == "OneCycleLR":
        state["anneal_strategy"] = theirs["_anneal_func_type"]
        state["three_phase"] = len(theirs["_schedule_phases"]) == 3
        if _torch_phases(theirs) != _onecycle_phases(state):
            raise ConfigError(
                f"{where}: PyTorch's OneCycleLR ends its phases at steps "
                f"{_torch_phases(theirs)}; this one at {_onecycle_phases(state)} (another "
                "pct_start or total_steps: make it with PyTorch's settings)"
            )
    if "T_cur" in state:
        state["T_cur"] = _state_number(state["T_cur"], f"{where} T_cur")
    return state


def scheduler_from_torch(source, schedule):
    """Load a PyTorch learning-rate scheduler's state into the wxb ``schedule`` of the
    same kind (StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR,
    ConstantLR, PolynomialLR, OneCycleLR, CyclicLR, CosineAnnealingWarmRestarts,
    ReduceLROnPlateau, SequentialLR, ChainedScheduler, LambdaLR, MultiplicativeLR):
    ``source`` is the ``torch.optim.lr_scheduler`` object or its ``state_dict()``. Load
    the optimiser's state first (``optimizer_from_torch``: the groups' lr and
    initial_lr), then this, and the next steps give PyTorch's rates. The settings
    PyTorch's state holds are taken, as its load_state_dict takes them; those it does
    not (OneCycleLR's max_lr, a LambdaLR's function, a CyclicLR's scale_fn) stay the wxb
    schedule's, made with
    the same ones. Raises ConfigError in one line for another kind or a state wxb
    cannot run. Returns ``schedule``."""
    torch = _import_torch()
    where = "scheduler_from_torch"
    _check_pair(schedule, source, torch, where, wxb_first=False)
    if isinstance(source, _torch_scheduler_base(torch)):
        source = source.state_dict()
    try:
        state = _state_from_torch(source, schedule, where)
    except (KeyError, TypeError) as error:
        raise ConfigError(
            f"{where}: the state lacks {error} (not the state_dict() of PyTorch's "
            f"{type(schedule).__name__}?)"
        ) from None
    try:
        schedule.load_state_dict(state)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    return schedule


def _state_to_torch(schedule, theirs: dict) -> dict:
    """PyTorch's state_dict() ``theirs`` with the wxb ``schedule``'s counters and
    settings written over it."""
    name = type(schedule).__name__
    state = dict(theirs)
    if name == "ChainedScheduler":
        state["_schedulers"] = [
            _state_to_torch(s, child)
            for s, child in zip(schedule._schedulers, theirs["_schedulers"], strict=True)
        ]
        state["_last_lr"] = schedule.get_last_lr()
        return state
    mine = schedule.state_dict()
    groups = schedule.optimizer.param_groups
    state["last_epoch"] = mine["epoch"]
    state["_last_lr"] = schedule.get_last_lr()
    if name == "ReduceLROnPlateau":
        for key in ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown",
                    "eps", "best", "num_bad_epochs", "cooldown_counter"):  # fmt: skip
            state[key] = mine[key]
        state["min_lrs"] = schedule.min_lrs
        state["mode_worse"] = math.inf if mine["mode"] == "min" else -math.inf
        return state
    # PyTorch counts its initial step: past it, its CosineAnnealingLR's closed-form branch
    # for a schedule made with last_epoch > 0 stays shut
    state["_step_count"] = mine["epoch"] + 1
    # PyTorch's chainable schedules go on from each group's lr; their base_lrs are the
    # groups' initial_lr (its cosine climbs out of a trough by it)
    bases = mine["base_lrs"]
    if schedule.chainable:
        bases = [g.get("initial_lr", b) for g, b in zip(groups, bases, strict=False)]
    state["base_lrs"] = list(bases)
    if name == "SequentialLR":
        state["_milestones"] = list(mine["milestones"])
        now = bisect.bisect_right(mine["milestones"], mine["epoch"])
        start = mine["milestones"][now - 1] if now else 0
        children = []
        for i, (s, child) in enumerate(
            zip(schedule._schedulers, theirs["_schedulers"], strict=True)
        ):
            child = dict(child)
            child.update({k: v for k, v in s.settings().items() if k in child})
            if isinstance(child.get("milestones"), collections.Counter):
                child["milestones"] = collections.Counter(s.milestones)
            if i == now:
                child["last_epoch"] = mine["epoch"] - start
                child["_step_count"] = child["last_epoch"] + 1
                child["_last_lr"] = schedule.get_last_lr()
                child["base_lrs"] = [g["initial_lr"] for g in groups]
            children.append(child)
        state["_schedulers"] = children
        state.pop("base_lrs")
        state.pop("_step_count")
        return state
    for key, value in mine.items():
        if key in theirs and key not in ("base_lrs", "epoch", "type"):
            state[key] = value
    if name == "MultiStepLR":
        state["milestones"] = collections.Counter(mine["milestones"])
    if name == "CyclicLR":  # PyTorch's holds the two steps' sum and the first's share
        state["total_size"] = mine["step_size_up"] + mine["step_size_down"]
        state["step_ratio"] = mine["step_size_up"] / state["total_size"]
    if name == "OneCycleLR":
        if _torch_phases(theirs) != _onecycle_phases(mine):
            raise ConfigError(
                f"scheduler_to_torch: PyTorch's OneCycleLR ends its phases at steps "
                f"{_torch_phases(theirs)}; this one at {_onecycle_phases(mine)} (make it "
                "with the same pct_start and total_steps)"
            )
        state["_anneal_func_type"] = mine["anneal_strategy"]
    return state


def scheduler_to_torch(schedule, torch_sched):
    """Load the wxb ``schedule``'s state into PyTorch's scheduler ``torch_sched`` of the
    same kind (those ``scheduler_from_torch`` takes), made on the PyTorch optimiser:
    load that one's state first (``optimizer_to_torch``), then this, and PyTorch's next
    steps give wxb's rates. Raises ConfigError in one line for another kind. Returns
    ``torch_sched``."""
    torch = _import_torch()
    where = "scheduler_to_torch"
    _check_pair(schedule, torch_sched, torch, where, wxb_first=True)
    torch_sched.load_state_dict(_state_to_torch(schedule, torch_sched.state_dict()))
    return torch_sched
