"""Model files: one .safetensors file with the weights and, in its metadata, the
architecture and ``model.info`` (task, class names, feature names) needed to use it.

Writes are atomic: the bytes go to a temporary file in the same folder, are
flushed to disk, and only then renamed over the target, so a crash never leaves
a half-written model where a good one was. Reading never unpickles anything.

``save`` stores only what ``load`` rebuilds exactly: modules whose type is one of
``STOCK_TYPES`` (a subclass would load as its base class and compute something
else, so it is refused before anything is written). Parameters shared between
layers (tied weights) are stored once, under their first name, and the metadata
records the ties (``"ties": {"dense3.weight": "dense1.weight"}``) so ``load``
shares them again; a parameter viewing another's memory (``Parameter(enc.weight.T)``)
is recorded as that view (``"memory_ties"``) and loads as it, so it trains as saved;
parameters with ``requires_grad`` False are listed (``"frozen"``)
and load frozen, a Dense's W or b registered as a buffer in its place is listed
(``"dense_buffers"``) and loads as a buffer, a ``Dropout(seed=…)``'s own generator
is kept as it stands (``"dropout_generators"``), and a Dense's ``init`` other than the
default (``"dense_inits"``), which its ``reset_parameters()`` draws. ``load`` checks the
architecture against the stored tensors' header, without recursion and before allocating
anything, so a hand-edited file is refused with ModelFileError, never MemoryError or
RecursionError.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np

from wxb import statefile
from wxb.data import (
    DAMAGED,
    DIGEST,
    OTHER_MODEL_FORMATS,
    atomic_write,
    decode_floats,
    digest_matches,
    encode_floats,
    read_safetensors_header,
    refuse_folder_name,
    safetensors_digest,
    safetensors_parts,
)
from wxb.errors import ConfigError, ModelFileError, ShapeError, WxbError
from wxb.nn import layers
from wxb.nn.module import MemoryTie, Module, memory_ties, view_of_memory
from wxb.nn.norm import BatchNorm1d, LayerNorm, RMSNorm
from wxb.nn.plan import width_mismatch
from wxb.nn.sequential import Sequential, layers_in_order
from wxb.ops import check_padding_idx
from wxb.random import state_as_json, state_from_json

FORMAT = "wxb"
FORMAT_VERSION = "1"

MAX_DEPTH = 64  # Sequentials nested in one another
MAX_MODULES = 100_000

# The types load rebuilds, by the name the architecture gives them.
STOCK_TYPES: dict[str, type[Module]] = {
    "Sequential": Sequential,
    "Dense": layers.Dense,
    "Dropout": layers.Dropout,
    "AlphaDropout": layers.AlphaDropout,
    "FeatureAlphaDropout": layers.FeatureAlphaDropout,
    "Dropout1d": layers.Dropout1d,
    "RReLU": layers.RReLU,
    "Embedding": layers.Embedding,
    "Standardize": layers.Standardize,
    "Flatten": layers.Flatten,
    "PReLU": layers.PReLU,
    "GLU": layers.GLU,
    "Unflatten": layers.Unflatten,
    "LayerNorm": LayerNorm,
    "BatchNorm1d": BatchNorm1d,
    "RMSNorm": RMSNorm,
    **{cls.__name__: cls for cls in layers.ACTIVATIONS.values()},
}
# Fields of each type's config() besides "type" and the optional "name".
_FIELDS: dict[str, tuple[str, ...]] = {
    "Sequential": ("layers",),
    "Dense": ("in_features", "out_features", "bias"),
    "Dropout": ("p",),
    "AlphaDropout": ("p",),
    "FeatureAlphaDropout": ("p",),
    "Dropout1d": ("p",),
    "RReLU": ("lower", "upper"),
    "Embedding": (
        "num_embeddings",
        "embedding_dim",
        "padding_idx",
        "max_norm",
        "norm_type",
        "scale_grad_by_freq",
    ),
    "Standardize": ("features",),
    "Flatten": ("start_dim", "end_dim"),
    "PReLU": ("num_parameters",),
    "GLU": ("dim",),
    "Unflatten": ("dim", "unflattened_size"),
    "LeakyReLU": ("negative_slope",),
    "GELU": ("approximate",),
    "ELU": ("alpha",),
    "Softplus": ("beta", "threshold"),
    "Hardtanh": ("min_val", "max_val"),
    "CELU": ("alpha",),
    "Threshold": ("threshold", "value"),
    "Hardshrink": ("lambd",),
    "Softshrink": ("lambd",),
    "LayerNorm": ("normalized_shape", "eps", "elementwise_affine", "bias"),
    "BatchNorm1d": ("num_features", "eps", "momentum", "affine", "track_running_stats", "bias"),
    "RMSNorm": ("normalized_shape", "eps", "elementwise_affine"),
}
# Fields a type's config() gives that a file may lack, with the value then taken: a file
# written before they were recorded
_OPTIONAL_FIELDS: dict[str, dict[str, Any]] = {"PReLU": {"init": 0.25}}
# Weights are F32 or F64, one of them a model; I64 only for BatchNorm1d's batch count.
FILE_DTYPES = {"F32": np.dtype(np.float32), "F64": np.dtype(np.float64), "I64": np.dtype(np.int64)}
COUNT_CODE = "I64"
_FILE_CODES = {dtype: code for code, dtype in FILE_DTYPES.items()}
_MAX_NDIM = 8  # stored tensors are 1-D or 2-D; more is refused before any arithmetic


class _Invalid(Exception):
    """What is wrong with an architecture: ModelFileError from load, ConfigError from save."""


# ---------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------
def save(model: Module | dict, path: str | Path) -> Path:
    """Save weights, architecture and ``model.info`` to one .safetensors file.

    Raises ConfigError, writing nothing, for a path ending in another format's suffix
    (``.onnx``, ``wxb.onnx.export``'s; ``.pt``/``.pth``, which ``torch.load`` would be
    handed; ``.pkl``, ``.h5``, …), or a model ``load`` could not rebuild
    exactly (a module of a type of its own or a subclass of a stock one, a mix
    of float32 and float64, a module with forward hooks, …). A float32 Standardize's
    float64 statistics are kept too (``float64_statistics``), for ``.double()`` after load.

    Given a dict instead (``torch.save``'s checkpoint: ``{"model": model.state_dict(),
    "optimizer": opt.state_dict(), "epoch": e, "rng": wxb.get_rng_state(model)}``, or a
    state_dict alone), writes it as a checkpoint of states (``wxb.statefile``), which
    ``load`` gives back.
    """
    _check_suffix(model, path)
    if not isinstance(model, Module):
        return statefile.save(model, path)
    _check_saveable(model)
    mismatch = width_mismatch(layers_in_order(model))
    if mismatch is not None:  # it could not run, here or after loading
        raise ConfigError(f"cannot save this model: {mismatch}")
    architecture = model.config()
    state = model.state_dict()
    ties = _ties(model)
    dtypes = {array.dtype for array in state.values() if array.dtype.kind != "i"}
    odd = sorted(str(d) for d in dtypes if d not in _FILE_CODES)
    if odd:
        raise ConfigError(
            f"cannot save a model holding {', '.join(odd)} arrays: model files hold float32 "
            "or float64 (cast it with model.to('float32') or model.to('float64'))"
        )
    if len(dtypes) > 1:
        raise ConfigError(
            "cannot save a model that mixes float32 and float64 arrays: it would not load "
            "back the same; cast it to one with model.to('float32') or model.to('float64')"
        )
    stored = {name: (_FILE_CODES[a.dtype], tuple(a.shape)) for name, a in state.items()}
    try:  # what load will check: a model that passes here loads back
        _check_architecture(architecture, stored, ties)
    except _Invalid as exc:
        raise ConfigError(f"cannot save this model: {exc}") from None
    _check_info_keys(model.info, "model.info")
    try:
        info = json.dumps(model.info, default=_json_default)
        # NaN and ±inf (R² of one test row, a user's figure) are no JSON, and a strict
        # parser (jq, JSON.parse) refused the info: tagged as the checkpoints tag them
        # ({"__float__": "nan"}), read back as the float by load
        if any(word in info for word in ("NaN", "Infinity")):
            info = json.dumps(encode_floats(json.loads(info)), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot save model.info: {exc}") from None
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": json.dumps(architecture),
        "info": info,
        "dtype": str(model.dtype),
    }
    if ties:
        metadata["ties"] = json.dumps(ties)
    memory = _memory_ties(model)
    if memory:  # a parameter stepped in another's memory is loaded into it again
        metadata[MEMORY_TIES] = json.dumps(memory)
    frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
    if frozen:  # as torch.save(model) keeps requires_grad: a frozen layer stays frozen
        metadata["frozen"] = json.dumps(frozen)
    held = _dense_buffers(model)
    if held:  # a Dense's W or b held as a buffer: loaded back as one, not a Parameter
        metadata[DENSE_BUFFERS] = json.dumps(held)
    wider = _wider_statistics(model)
    if wider:  # as the model holds them: .double() after load gets them back, as before save
        metadata[WIDER_STATISTICS] = json.dumps(wider)
    inits = {
        path: m.init
        for path, m in model.named_modules()
        if isinstance(m, layers.Dense) and m.init != _DEFAULT_INIT
    }
    odd = next((path for path, init in inits.items() if init not in layers.INITS), None)
    if odd is not None:  # (set since: its reset_parameters() would fail too)
        raise ConfigError(
            f"cannot save this model: {odd}'s init {_short(inits[odd])} is not one of "
            f"{', '.join(layers.INITS)}"
        )
    if inits:  # reset_parameters() after load draws W as the layer was made to
        metadata[DENSE_INITS] = json.dumps(inits)
    generators = _dropout_generators(model)
    if generators:  # a Dropout(seed=…)'s own generator, as it stands: fit after load draws on
        metadata[DROPOUT_GENERATORS] = json.dumps(generators)
    # (np.ascontiguousarray would make a 0-d count 1-d)
    tensors = {name: np.require(array, requirements="C") for name, array in state.items()}
    path = Path(path)
    # the digest of everything else: a copy damaged since (a flipped bit in a weight or
    # in a class name) is refused by load, where it loaded a different model without a word
    metadata[DIGEST] = safetensors_digest(safetensors_parts(tensors, metadata=metadata))
    atomic_write(path, safetensors_parts(tensors, metadata=metadata))
    return path


def _check_suffix(model: object, path: str | Path) -> None:
    """Refuse, writing nothing, a name another tool's format owns (.onnx, .pt, .pth, .pkl,
    .h5, …), as wxb train -o does: safetensors bytes there were refused long after by
    the reader the name promised (torch.load of a 'model.pth': "invalid load key")."""
    refuse_folder_name(path, "model or checkpoint", ConfigError)  # ('out/': a file 'out')
    last = Path(path).suffix.lower()
    if last not in OTHER_MODEL_FORMATS:
        return
    what = "wxb model" if isinstance(model, Module) else "checkpoint"
    if last == ".onnx":
        fix = (
            f"; wxb.onnx.export(model, {str(path)!r}) writes ONNX"
            if isinstance(model, Module)
            else ""
        )
    elif last in (".pt", ".pth") and isinstance(model, Module):
        fix = "; wxb.interop.to_torch(model) gives a torch.nn.Module to torch.save"
    elif last in (".pt", ".pth"):
        fix = "; PyTorch reads its tensors with safetensors.torch.load_file"
    else:
        fix = ""
    raise ConfigError(
        f"{path}: wxb.save writes a {what} in safetensors, not {OTHER_MODEL_FORMATS[last]} "
        f"({last}), which that format's readers refuse; name the file .safetensors "
        f"(wxb.load reads it){fix}"
    )


MEMORY_TIES = "memory_ties"


def _memory_ties(model: Module) -> dict[str, dict[str, Any]]:
    """By state_dict name, each parameter viewing another's memory (``Parameter(enc.weight.T)``,
    ``dec.weight.data = enc.weight.data.T``) and where it lies in that holder's; ConfigError
    for memory shared in a way no such view describes (loaded apart, it would train apart)."""
    ties, problems = memory_ties(model.named_parameters())
    if problems:
        raise ConfigError(
            f"cannot save this model: {problems[0]}, which a file cannot record (loaded "
            "apart, they would train apart); give each parameter memory of its own "
            "(p.data = p.data.copy(), which unties them) or make one the holder of the "
            "other's (dec.weight = Parameter(enc.weight.T))"
        )
    return {
        name: {"holder": t.holder, "offset": t.offset, "shape": t.shape, "strides": t.strides}
        for name, t in ties.items()
    }


def _restore_memory_ties(model: Module, path: Path, memory: object) -> None:
    """Each parameter the saved model stepped in another's memory views that one's again,
    after the file's values are in (the view must hold what the file stores for it)."""
    parameters = dict(model.named_parameters())
    if not isinstance(memory, dict):
        raise ModelFileError(f"{path}: its memory ties are not a JSON object")
    for name, where in memory.items():
        fields = ("holder", "offset", "shape", "strides")
        if not (isinstance(where, dict) and set(where) == set(fields)):
            raise ModelFileError(f"{path}: memory tie {_short(name)}: not {{{', '.join(fields)}}}")
        holder, offset, shape, strides = (where[key] for key in fields)
        numbers = (
            [offset, *shape, *strides]
            if isinstance(shape, list) and isinstance(strides, list)
            else [None]
        )
        if (
            name not in parameters
            or not isinstance(holder, str)
            or holder not in parameters
            or holder in memory
            or holder == name
            or not all(type(n) is int and abs(n) < 2**53 for n in numbers)
        ):
            raise ModelFileError(
                f"{path}: memory tie {_short(name)} → {_short(holder)}: not one parameter "
                "viewing another that holds its own memory"
            )
        viewer, home = parameters[name], parameters[holder]
        tie = MemoryTie(holder, offset, tuple(shape), tuple(strides))
        view = view_of_memory(home.data, tie) if tie.shape == viewer.shape else None
        if view is None or view.dtype != viewer.dtype:
            raise ModelFileError(
                f"{path}: memory tie {_short(name)} → {_short(holder)}: the view reaches "
                "outside the holder's elements, or is not the shape of the parameter"
            )
        if np.ascontiguousarray(view).tobytes() != np.ascontiguousarray(viewer.data).tobytes():
            raise ModelFileError(
                f"{path}: memory tie {_short(name)} → {_short(holder)}: the values stored for "
                "the two differ where they share memory"
            )
        viewer.data = view


DENSE_BUFFERS = "dense_buffers"


def _dense_buffers(model: Module) -> list[str]:
    """state_dict names of the Dense weights and biases held as buffers, in its order."""
    return [
        _join(path, key)
        for path, module in model.named_modules()
        if type(module) is layers.Dense
        for key in module._buffers
        if key in ("weight", "bias")
    ]


def _restore_dense_buffers(model: Module, path: Path, held: object) -> None:
    """Make the Dense arrays ``_dense_buffers`` listed buffers again, with their values."""
    owners = {
        _join(where, key): (module, key)
        for where, module in model.named_modules()
        if type(module) is layers.Dense
        for key in ("weight", "bias")
        if key in module._parameters
    }
    if not isinstance(held, list) or not all(name in owners for name in held):
        raise ModelFileError(f"{path}: its {DENSE_BUFFERS} names no Dense weight or bias it has")
    for name in held:
        module, key = owners[name]
        array = module._parameters[key].data
        delattr(module, key)
        module.register_buffer(key, array)


# Standardize's float64 statistics held beside its float32 buffers (Module._given_buffers),
# by state_dict name: the file's F32 tensors alone gave .double() after load the rounded
# mean (12345.678 by 2.7e-4 off; with a scale of 0.01, x̂ off by 0.027), where .double()
# before save gave the exact one. JSON floats are Python's repr: they read back exactly.
WIDER_STATISTICS = "float64_statistics"


def _wider_statistics(model: Module) -> dict[str, list[float]]:
    """state_dict name → the float64 values a buffer still holds rounded (what
    ``.double()`` would give back), for each Standardize that has them."""
    wider: dict[str, list[float]] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        for key, given in module.__dict__.get("_given_buffers", {}).items():
            held = module._buffers.get(key)
            if held is None or not module._persistent(key) or held.dtype == given.dtype:
                continue
            if given.shape == held.shape and np.array_equal(given.astype(held.dtype), held):
                wider[_join(path, key)] = [float(v) for v in given]
    return wider


def _restore_wider_statistics(model: Module, path: Path, wider: object) -> None:
    """Put back what ``_wider_statistics`` saved; a file written before holds none."""
    if not isinstance(wider, dict):
        raise ModelFileError(f"{path}: its {WIDER_STATISTICS} is not a table of buffers")
    owners = {
        _join(where, key): (module, key)
        for where, module in model.named_modules(remove_duplicate=False)
        for key in module._buffers
    }
    for name, values in wider.items():
        module, key = owners.get(name, (None, None))
        held = module._buffers[key] if isinstance(module, layers.Standardize) else None
        numbers = isinstance(values, list) and all(_is_number(v) for v in values)
        given = np.array(values, dtype=np.float64) if numbers else None
        if (
            held is None
            or given is None
            or given.shape != held.shape
            or not np.array_equal(given.astype(held.dtype), held)
        ):
            raise ModelFileError(
                f"{path}: its {WIDER_STATISTICS} entry {name!r} is not the float64 form of "
                "a Standardize buffer it holds"
            )
        module.__dict__.setdefault("_given_buffers", {})[key] = given


# A Dense's init other than the default, by module path: reset_parameters() on a loaded
# model drew Glorot-uniform where the layer made with init="he_normal" draws He's.
DENSE_INITS = "dense_inits"
_DEFAULT_INIT = "glorot_uniform"


def _restore_dense_inits(model: Module, path: Path, saved: object) -> None:
    """Put back what save recorded in ``dense_inits``; a file written before holds none."""
    if not isinstance(saved, dict):
        raise ModelFileError(f"{path}: its {DENSE_INITS} is not a table of modules")
    modules = dict(model.named_modules())
    for where, init in saved.items():
        if not isinstance(modules.get(where), layers.Dense) or init not in layers.INITS:
            raise ModelFileError(
                f"{path}: its {DENSE_INITS} entry {where!r} is not a Dense layer's init "
                f"({', '.join(layers.INITS)})"
            )
        modules[where].init = init


# A Dropout(seed=…)'s own generator (state and the key fit's masks took from it when made),
# by module path; a Dropout sharing another's generator (wxb train's, made from one seed)
# names that one's path. Without it, a loaded model drew its masks from wxb's generator: a
# model saved before training, loaded and fit, trained otherwise than the model itself, and
# set_rng_state(get_rng_state(model), loaded) was refused (no generator at that path).
DROPOUT_GENERATORS = "dropout_generators"
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def _dropout_generators(model: Module) -> dict[str, object]:
    """module path → {"state", "row_key"} of each Dropout's own generator ("same_as": the
    path of the Dropout whose generator it shares, in place of "state")."""
    found: dict[str, object] = {}
    first: dict[int, str] = {}
    for path, module in model.named_modules():
        generator = module.__dict__.get("_own_rng") if isinstance(module, layers.Dropout) else None
        if generator is None:
            continue
        if id(generator) in first:
            found[path] = {"same_as": first[id(generator)], "row_key": module._row_key}
            continue
        kind = type(generator.bit_generator).__name__
        if kind not in _BIT_GENERATORS:
            raise ConfigError(
                f"cannot save this model: {path}'s generator is a {kind}, which a model file "
                f"cannot rebuild (it takes NumPy's {', '.join(_BIT_GENERATORS)})"
            )
        first[id(generator)] = path
        state = state_as_json(generator.bit_generator.state)
        found[path] = {"state": state, "row_key": module._row_key}
    return found


def _restore_dropout_generators(model: Module, path: Path, saved: object) -> None:
    """Put back what ``_dropout_generators`` saved; a file written before holds none."""
    if not isinstance(saved, dict):
        raise ModelFileError(f"{path}: its {DROPOUT_GENERATORS} is not a table of modules")
    modules = dict(model.named_modules())
    made: dict[str, np.random.Generator] = {}
    for where, entry in saved.items():
        module = modules.get(where)
        what = f"{path}: its {DROPOUT_GENERATORS} entry {where!r}"
        if not isinstance(module, layers.Dropout):
            raise ModelFileError(f"{what} names no Dropout of the model")
        key = entry.get("row_key") if isinstance(entry, dict) else None
        if not _is_count(key):
            raise ModelFileError(f"{what} is not a generator's state and key")
        if "same_as" in entry:  # shares the generator of a Dropout saved before it
            generator = made.get(entry["same_as"])  # type: ignore[arg-type]
            if generator is None:
                raise ModelFileError(f"{what} shares a generator saved after it, or none")
        else:
            try:
                state = state_from_json(entry["state"])
                kind = state["bit_generator"]
                if kind not in _BIT_GENERATORS:
                    raise ValueError(kind)
                bits = getattr(np.random, kind)()
                bits.state = state
            except (TypeError, ValueError, KeyError, OverflowError):
                raise ModelFileError(f"{what} is not a generator's state and key") from None
            generator = made[where] = np.random.Generator(bits)
        module._own_rng, module._row_key = generator, key


def _check_info_keys(value: object, where: str) -> None:
    """ConfigError for a dict key that is not text: JSON would turn 1 into '1' (and
    {1: 'a', '1': 'b'} into one entry), so the loaded info would differ without a word."""
    stack = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                if not isinstance(key, str):
                    raise ConfigError(
                        f"cannot save {path}: its key {key!r} is not text ({type(key).__name__}); "
                        "a model file stores text keys only (use str(key))"
                    )
                stack.append((inner, f"{path}[{key!r}]"))
        elif isinstance(item, (list, tuple)):
            stack.extend((inner, f"{path}[{i}]") for i, inner in enumerate(item))


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"model.info holds {type(value).__name__}, which JSON cannot store")


def _where(path: str) -> str:
    return f"module '{path}'" if path else "the model itself"


def _check_saveable(model: object) -> None:
    """Every module of the model is one ``load`` rebuilds exactly; ConfigError naming the
    first that is not (its dotted path and class). Walks without recursion."""
    if not isinstance(model, Module):  # (save sends anything else to statefile.save)
        raise ConfigError(f"wxb.save needs a wxb.nn.Module; got {type(model).__name__}")
    stack: list[tuple[str, Module, tuple[int, ...]]] = [("", model, ())]
    count = 0
    while stack:
        path, module, ancestors = stack.pop()
        count += 1
        if count > MAX_MODULES:
            raise ConfigError(f"cannot save a model of more than {MAX_MODULES:,} modules")
        cls = type(module)
        if STOCK_TYPES.get(cls.__name__) is not cls:
            raise ConfigError(_unsaveable_message(path, module))
        where = _where(path)
        overridden = [key for key in ("forward", "__call__") if key in vars(module)]
        if overridden:
            raise ConfigError(
                f"cannot save {where} ({cls.__name__}): its {overridden[0]} was replaced on "
                f"the instance, and the file would load as a plain {cls.__name__}"
            )
        if module._has_hooks():  # (a hook may change the output: the file keeps none)
            held, them = module._hooks_held()
            raise ConfigError(
                f"cannot save {where} ({cls.__name__}): it has {held}, which the file would "
                f"not keep (it would load as a plain {cls.__name__}); remove {them} first"
            )
        if isinstance(module, layers.Activation) and type(module.kernel) is not type(
            layers.stock_kernel(cls)
        ):
            raise ConfigError(
                f"cannot save {where} ({cls.__name__}): its kernel was replaced by "
                f"{type(module.kernel).__name__}, and the file would load a plain {cls.__name__}"
            )
        params, buffers = set(module._parameters), set(module._buffers)
        expected_params: set[str] = set()
        expected_buffers: set[str] = set()
        if cls is layers.Dense:
            expected_params = {"weight"} | ({"bias"} if module.bias is not None else set())
            # W or b registered as a buffer in its place (a constant layer, PyTorch's way):
            # saved as one, listed in "buffers", and loaded back as one
            expected_buffers = expected_params & buffers
            expected_params -= expected_buffers
            hidden = sorted(key for key in expected_buffers if not module._persistent(key))
            if hidden:
                raise ConfigError(
                    f"cannot save {where} (Dense): its {' and '.join(hidden)} "
                    f"{'is a buffer' if len(hidden) == 1 else 'are buffers'} registered with "
                    "persistent=False, which model files (as state_dict) leave out; register "
                    "it persistent, or keep it a Parameter with requires_grad False"
                )
        elif cls in (layers.PReLU, layers.Embedding):
            expected_params = {"weight"}
        elif cls is layers.Standardize:
            expected_buffers = {"mean", "scale"}
            if not np.all(module.scale > 0):
                raise ConfigError(f"cannot save {where} (Standardize): every scale must be > 0")
        elif cls is LayerNorm:
            expected_params = {"weight"} if module.elementwise_affine else set()
            expected_params |= {"bias"} if module.bias is not None else set()
        elif cls is RMSNorm:
            expected_params = {"weight"} if module.elementwise_affine else set()
        elif cls is BatchNorm1d:
            expected_params = {"weight"} if module.affine else set()
            expected_params |= {"bias"} if module.bias is not None else set()
            if module.track_running_stats:
                expected_buffers = {"running_mean", "running_var", "num_batches_tracked"}
            elif module._buffers.get("running_mean") is not None:
                raise ConfigError(
                    f"cannot save {where} (BatchNorm1d): track_running_stats was set False "
                    "after it kept running statistics, which eval mode still reads; the file "
                    "would rebuild it without them (set it back to True to save them)"
                )
        foreign = sorted((params | buffers) - expected_params - expected_buffers)
        if foreign:  # (said as "arrays ['extra'] that a Dense saves": the opposite)
            raise ConfigError(
                f"cannot save {where} ({cls.__name__}): it holds arrays {foreign} that a "
                f"{cls.__name__} does not have; the file would not load back the same"
            )
        if params != expected_params or buffers != expected_buffers:
            extra = sorted((params - expected_params) | (buffers - expected_buffers))
            raise ConfigError(
                f"cannot save {where} ({cls.__name__}): it holds "
                + (f"arrays {extra} that" if extra else "other arrays than")
                + f" a {cls.__name__} saves; the file would not load back the same"
            )
        children = list(module._modules.items())
        if cls is not Sequential:
            if children:
                raise ConfigError(
                    f"cannot save {where} ({cls.__name__}): it holds sub-modules "
                    f"({', '.join(key for key, _ in children)}), which a {cls.__name__} "
                    "does not save"
                )
            continue
        if len(ancestors) >= MAX_DEPTH:
            raise ConfigError(f"cannot save {where}: Sequentials nested more than {MAX_DEPTH} deep")
        inside = (*ancestors, id(module))
        placed: dict[int, str] = {}  # id(layer) → its key: a layer given twice is shared
        walk = []
        for index, (key, child) in enumerate(children):
            child_path = _join(path, key)
            if id(child) in inside:
                raise ConfigError(f"cannot save {_where(child_path)}: it contains itself")
            if id(child) in placed:  # Sequential's key for a layer given again
                fits = key == f"{placed[id(child)]}_{index}"
            else:
                fits = key == child.name
                placed[id(child)] = key
            if not fits:
                raise ConfigError(
                    f"cannot save {_where(child_path)} ({type(child).__name__}): it is named "
                    f"{child.name!r} but sits in the Sequential as {key!r} (renamed or added "
                    "after the Sequential was built), so the file would not load back the same"
                )
            walk.append((child_path, child, inside))
        stack.extend(reversed(walk))  # reversed onto the stack: walked in order


# What a subclass of a stock layer may define and still compute as that layer: how it is
# built and initialised (the weights saved are what it computes from)
CONSTRUCTION_METHODS = frozenset({"__init__", "reset_parameters"})


def _own_methods(cls: type, base: type) -> set[str]:
    """The attributes the classes from ``cls`` down to ``base`` define, but Python's own."""
    own: set[str] = set()
    for klass in cls.__mro__[: cls.__mro__.index(base)]:
        own |= {
            name for name in vars(klass)
            if not (name.startswith("__") and name.endswith("__")) or name == "__init__"
        }  # fmt: skip
    return own


def _unsaveable_message(path: str, module: Module) -> str:
    cls = type(module)
    if cls is layers.LazyLinear:
        return (
            f"LazyLinear cannot be saved before its first call ({_where(path)}): its "
            "in_features is inferred then; call the model once on a batch (model(X[:1])) first"
        )
    stock = ", ".join(STOCK_TYPES)
    base = next((b for b in cls.__mro__[1:] if STOCK_TYPES.get(b.__name__) is b), None)
    own = _own_methods(cls, base) if base is not None else set()
    if base is not None and own <= CONSTRUCTION_METHODS:
        # (its forward is the stock one's: the file would compute the same, but load a
        # plain Dense, and its own reset_parameters would be gone without a word)
        added = (
            f"with its own {' and '.join(sorted(own))} only (it computes as a {base.__name__})"
            if own
            else "adding nothing"
        )
        why = (
            f"it subclasses {base.__name__} {added}, but wxb.load rebuilds wxb's own "
            f"classes: it would come back a plain {base.__name__}"
            + ("" if not own else f", without {'it' if len(own) == 1 else 'them'}")
        )
    elif base is not None:
        why = (
            f"it subclasses {base.__name__}, and wxb.load would rebuild it as a plain "
            f"{base.__name__} without its own code, which computes something else"
        )
    elif isinstance(module, layers.Activation):
        why = f"it is an activation of its own, which wxb.load cannot rebuild (it rebuilds {stock})"
    else:
        why = f"it is a module of its own, which wxb.load cannot rebuild (it rebuilds {stock})"
    return (
        f"{cls.__name__} cannot be saved ({_where(path)}, class "
        f"{cls.__module__}.{cls.__qualname__}): {why}. Save the weights alone instead, "
        "wxb.save(model.state_dict(), path), and rebuild the model in code before "
        "model.load_state_dict(wxb.load(path))"
    )


def _ties(model: Module) -> dict[str, str]:
    """Each parameter slot holding a parameter met earlier → that parameter's first name
    (the name ``state_dict`` stores it under)."""
    first: dict[int, str] = {}
    ties: dict[str, str] = {}
    for path, module in model.named_modules(remove_duplicate=False):  # every slot's path
        for key, param in module._parameters.items():
            name = _join(path, key)
            if id(param) in first:
                ties[name] = first[id(param)]
            else:
                first[id(param)] = name
    return ties


# ---------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------
def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``__metadata__`` of a wxb model file, checked; ModelFileError otherwise."""
    path = Path(path)
    return _metadata(path, _read_header(path))


def _refuse_train_checkpoint(path: Path) -> None:
    """A checkpoint of wxb train or fit (step-N.json, or its step-N.safetensors of arrays)
    is named as one: a reader given it, to predict from a run under way, was told it is
    no safetensors file, or a bare state_dict to load into a model built in code."""
    record = path if path.suffix == ".json" else path.with_suffix(".json")
    try:
        meta = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None
    except (OSError, ValueError, RecursionError):
        return
    if not isinstance(meta, dict) or meta.get("format") != "wxb-checkpoint":  # checkpoint.FORMAT
        return
    beside = "" if record == path else f" ({record.name})"
    raise ModelFileError(
        f"{path}: a training checkpoint{beside}, not a model: run the same wxb train command "
        "with --resume (or wxb.fit with resume=True), which finishes the run and saves the model"
    )


def _read_header(path: Path) -> dict:
    try:
        return read_safetensors_header(path)
    except ModelFileError:
        if path.is_file():
            _refuse_train_checkpoint(path)
        raise
    except RecursionError:
        raise ModelFileError(f"{path}: not a safetensors file (header nested too deeply)") from None
    except ValueError as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{path}: not a safetensors file (header: {exc})") from None


def _metadata(path: Path, header: dict) -> dict[str, str]:
    metadata = header.get("__metadata__") or {}
    if _is_state_file(header):
        raise ModelFileError(
            f"{path}: a wxb checkpoint of states (wxb.save of a dict), not a model: "
            "wxb.load(path) in Python gives its dict back; a model file is wxb.save(model, path)"
        )
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        _refuse_train_checkpoint(path)
        reader, why = "numpy", ""
        if any(  # NumPy has no bfloat16: safetensors.numpy cannot read the file
            isinstance(e, dict) and str(e.get("dtype")).startswith(("BF", "F8"))
            for e in header.values()
        ):
            reader, why = "torch", " (NumPy cannot read its bfloat16 or float8 tensors)"
        raise ModelFileError(
            f"{path}: a safetensors file, but not a wxb model (no wxb architecture in its "
            "metadata); weights alone, as safetensors.numpy.save_file(model.state_dict(), path) "
            "writes them, go into a model built in code: "
            f"model.load_state_dict(safetensors.{reader}.load_file(path)){why}"
        )
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: wxb model format version {metadata.get('format_version')!r}; "
            f"this wxb reads version {FORMAT_VERSION}"
        )
    odd = sorted(str(key) for key, value in metadata.items() if not isinstance(value, str))
    if odd:
        raise ModelFileError(f"{path}: metadata {', '.join(odd)} must be text (JSON strings)")
    return metadata


def _json_field(path: Path, metadata: dict[str, str], key: str, default: object) -> Any:
    text = metadata.get(key)
    if text is None:
        if default is None:
            raise ModelFileError(f"{path}: the {key} in its metadata is missing")
        return default
    try:
        return json.loads(text)
    except RecursionError:
        raise ModelFileError(f"{path}: the {key} in its metadata is nested too deeply") from None
    except ValueError:  # JSONDecodeError, or an integer of thousands of digits
        raise ModelFileError(f"{path}: the {key} in its metadata is not JSON") from None


def _data_length(path: Path) -> int:
    """Bytes after the header (the header itself was checked by read_safetensors_header)."""
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
    return path.stat().st_size - 8 - length


def _stored_tensors(
    path: Path,
    header: dict,
    dtypes: dict[str, np.dtype] = FILE_DTYPES,
    max_ndim: int = _MAX_NDIM,
) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name → (dtype code, shape) of each tensor in the header, checked against the file's
    size and ``dtypes`` (a model file's by default; a checkpoint of states holds more),
    reading no tensor data."""
    data_length = _data_length(path)
    stored: dict[str, tuple[str, tuple[int, ...]]] = {}
    spans: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        what = f"{path}: tensor {name!r}"
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
            raise ModelFileError(f"{what} is not described by dtype, shape and data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str) or dtype not in dtypes:
            held = (
                "wxb model files hold F32 or F64 tensors (and I64 batch counts) only"
                if dtypes is FILE_DTYPES
                else f"wxb checkpoints hold {', '.join(dtypes)} tensors only"
            )
            raise ModelFileError(f"{what} is {_short(dtype)}; {held}")
        if (
            not isinstance(shape, list)
            or len(shape) > max_ndim
            or not all(_is_count(n) for n in shape)
        ):
            raise ModelFileError(f"{what} has shape {_short(shape)}, not a list of sizes ≥ 0")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_is_count, offsets)):
            raise ModelFileError(f"{what} has data_offsets {_short(offsets)}, not [begin, end]")
        begin, end = offsets
        if end < begin or end > data_length:
            raise ModelFileError(
                f"{path}: corrupt or truncated safetensors data (tensor {name!r} lies at bytes "
                f"{begin}–{end} of {data_length})"
            )
        if end - begin != math.prod(shape) * dtypes[dtype].itemsize:
            raise ModelFileError(
                f"{what}: shape {shape} of {dtype} does not take the {end - begin} bytes it has"
            )
        stored[name] = (dtype, tuple(shape))
        spans.append((begin, end, name))
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise ModelFileError(
                f"{path}: corrupt safetensors data (tensor {name!r} starts at byte {begin}, "
                f"not {position})"
            )
        position = end
    if position != data_length:
        raise ModelFileError(
            f"{path}: corrupt safetensors data ({data_length - position} bytes belong to no tensor)"
        )
    return stored


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_state_file(header: dict) -> bool:
    metadata = header.get("__metadata__")
    return isinstance(metadata, dict) and metadata.get("format") == statefile.FORMAT


def load(
    path: str | Path, *, map_location: object = None, weights_only: bool | None = None
) -> Module | Any:
    """Rebuild the model saved at ``path``; predictions equal the saved model's exactly.

    The model comes back in eval mode (Dropout off), ready to predict: a hand-written
    training loop calls ``model.train()`` first (``fit`` does it itself).

    A checkpoint of states (``save`` of a dict) comes back as the dict it was, its arrays
    NumPy arrays (tuples as tuples, int keys as ints, NumPy scalars with their dtype).

    ``map_location`` and ``weights_only`` are torch.load's, taken for a port of one:
    wxb's arrays are NumPy's, on the CPU (so "cpu" or none), and no file of wxb's holds
    code to run, whichever ``weights_only`` says.

    The file is checked before anything is built: ModelFileError, naming the file
    and what is wrong, for anything but a file ``save`` wrote.
    """
    if map_location is not None and str(map_location) != "cpu":  # (torch.device("cpu") too)
        raise ConfigError(
            f"wxb.load map_location={map_location!r}: wxb's arrays are NumPy arrays, on the "
            "CPU; give map_location='cpu' or none"
        )
    if weights_only not in (None, True, False):
        raise ConfigError(f"wxb.load weights_only={weights_only!r}: give True, False or none")
    path = Path(path)
    header = _read_header(path)
    if _is_state_file(header):
        stored = _stored_tensors(path, header, statefile.FILE_DTYPES, statefile.MAX_NDIM)
        return statefile.read(path, header, stored)
    return _load_model(path, header)


def load_model(path: str | Path) -> Module:
    """``load`` of a model file only: a checkpoint of states is refused (ModelFileError),
    where a model is needed (the command line's commands)."""
    path = Path(path)
    return _load_model(path, _read_header(path))


class _Replaced(Exception):
    """The file was replaced (another wxb.save's rename) between its header's read and
    its bytes': its bytes' own header is this."""

    def __init__(self, header: dict) -> None:
        self.header = header


def _load_model(path: Path, header: dict) -> Module:
    """The model a file holds, read again whole where a save replaced it meanwhile (its
    old header against its new bytes failed the digest: "a damaged copy", untrue)."""
    for _ in range(3):
        try:
            return _load_model_once(path, header)
        except _Replaced as replaced:
            header = replaced.header
    raise ModelFileError(f"{path}: replaced by another save each time it was read; try again")


def _content_header(content: bytes) -> dict | None:
    """The header ``content``'s own first bytes hold, or None where they hold none."""
    try:
        (length,) = struct.unpack("<Q", content[:8])
        header = json.loads(content[8 : 8 + length])
    except (struct.error, ValueError, RecursionError):
        return None
    return header if isinstance(header, dict) else None


def _load_model_once(path: Path, header: dict) -> Module:
    from safetensors import SafetensorError
    from safetensors.numpy import load as safetensors_load

    metadata = _metadata(path, header)
    architecture = _json_field(path, metadata, "architecture", None)
    info = decode_floats(_json_field(path, metadata, "info", {}))
    if not isinstance(info, dict):  # (model.info is a dict, which fit and predict read)
        raise ModelFileError(
            f"{path}: the info in its metadata is a JSON {type(info).__name__}, not an object"
        )
    ties = _json_field(path, metadata, "ties", {})
    frozen = _json_field(path, metadata, "frozen", [])
    stored = _stored_tensors(path, header)
    try:
        _check_architecture(architecture, stored, ties)
    except _Invalid as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"{path}: corrupt or truncated safetensors data ({exc})") from None
    now = _content_header(content)
    if now is not None and now != header:
        raise _Replaced(now)
    _check_digest(path, metadata, content)
    try:
        tensors = safetensors_load(content)
    except (SafetensorError, ValueError) as exc:
        raise ModelFileError(f"{path}: corrupt or truncated safetensors data ({exc})") from None
    found = {name: (_FILE_CODES.get(a.dtype), a.shape) for name, a in tensors.items()}
    if found != stored:
        raise ModelFileError(
            f"{path}: the tensors read differ from its header (changed while read, or ambiguous)"
        )
    try:
        model = _build(architecture)
        _tie(model, ties)
        dtypes = {a.dtype for a in tensors.values() if a.dtype.kind == "f"}
        if len(dtypes) == 1:
            model.to(dtypes.pop())
        model.load_state_dict(tensors)
        for _, module in model.named_modules():
            if isinstance(module, layers.Standardize) and not np.all(module.scale > 0):
                raise ConfigError(f"{module.label}: every scale must be > 0")
    except (ShapeError, ConfigError, KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(
            f"{path}: the weights do not fit the saved architecture ({exc})"
        ) from None
    except WxbError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    _restore_wider_statistics(model, path, _json_field(path, metadata, WIDER_STATISTICS, {}))
    _restore_dense_buffers(model, path, _json_field(path, metadata, DENSE_BUFFERS, []))
    _restore_dropout_generators(model, path, _json_field(path, metadata, DROPOUT_GENERATORS, {}))
    _restore_dense_inits(model, path, _json_field(path, metadata, DENSE_INITS, {}))
    _restore_memory_ties(model, path, _json_field(path, metadata, MEMORY_TIES, {}))
    parameters = dict(model.named_parameters())
    if not isinstance(frozen, list) or not all(
        isinstance(name, str) and name in parameters for name in frozen
    ):
        raise ModelFileError(f"{path}: its list of frozen parameters names no parameter it has")
    for name in frozen:
        parameters[name].requires_grad = False
    model.info = info
    model.eval()
    return model


def _check_digest(path: Path, metadata: dict[str, str], content: bytes) -> None:
    """The file's bytes against the digest save wrote (a file without one, from an
    earlier wxb, is read as before), before anything is built from them."""
    if not digest_matches(metadata, content):
        raise ModelFileError(f"{path}: corrupt model file: {DAMAGED}")


def _tie(model: Module, ties: dict[str, str]) -> None:
    """Put the same Parameter object into every slot the saved model shared it in."""
    modules = dict(model.named_modules(remove_duplicate=False))  # a shared one's paths too
    for tied, target in ties.items():
        owner, _, key = tied.rpartition(".")
        source, _, source_key = target.rpartition(".")
        setattr(modules[owner], key, modules[source]._parameters[source_key])


# ---------------------------------------------------------------------------------
# Architecture: checked without recursion, then built
# ---------------------------------------------------------------------------------
def build(config: dict[str, Any]) -> Module:
    """A module from its ``config()``, with placeholder weights (a fixed seed: loading
    a model never advances wxb's global random generator). ConfigError for a
    description that is not one ``save`` writes."""
    try:
        _layout(config)
    except _Invalid as exc:
        raise ConfigError(f"not a layer description: {exc}") from None
    return _build(config)


def _build(config: dict[str, Any]) -> Module:
    """``build`` of a checked description (depth ≤ MAX_DEPTH, so recursion is safe)."""
    kind, name = config["type"], config.get("name")
    if kind == "Sequential":
        built: dict[str, Module] = {}  # a name met again is the same layer given again
        children = []
        for layer in config["layers"]:
            key = layer.get("name")
            if key is None:
                children.append(_build(layer))
                continue
            if key not in built:
                built[key] = _build(layer)
            children.append(built[key])
        model = Sequential(*children)
        model.name = name
        return model
    if kind == "Dense":
        return layers.Dense(
            config["in_features"], config["out_features"], config["bias"], seed=0, name=name
        )
    if kind == "Dropout":  # (its own generator, if it had one, is put back after)
        return layers.Dropout(config["p"], name=name)
    if kind in ("AlphaDropout", "FeatureAlphaDropout", "Dropout1d"):
        return STOCK_TYPES[kind](config["p"], name=name)
    if kind == "RReLU":
        return layers.RReLU(config["lower"], config["upper"], name=name)
    if kind == "Embedding":  # (W given: nothing drawn from the generator, as Dense's seed=0)
        n, d = config["num_embeddings"], config["embedding_dim"]
        settings = (config[key] for key in _FIELDS[kind][2:])
        table = np.zeros((n, d), np.float32)  # (float32 as Dense's; the file's dtype after)
        return layers.Embedding(n, d, *settings, _weight=table, name=name)
    if kind == "Standardize":
        n = config["features"]
        return layers.Standardize(np.zeros(n), np.ones(n), name=name)
    if kind == "Flatten":
        return layers.Flatten(config["start_dim"], config["end_dim"], name=name)
    if kind == "PReLU":
        return layers.PReLU(config["num_parameters"], config.get("init", 0.25), name=name)
    if kind == "GLU":
        return layers.GLU(config["dim"], name=name)
    if kind == "Unflatten":
        return layers.Unflatten(config["dim"], tuple(config["unflattened_size"]), name=name)
    if kind == "LeakyReLU":
        return layers.LeakyReLU(config["negative_slope"], name=name)
    if kind == "GELU":
        return layers.GELU(config["approximate"], name=name)
    if kind == "ELU":
        return layers.ELU(config["alpha"], name=name)
    if kind == "Softplus":
        return layers.Softplus(config["beta"], config["threshold"], name=name)
    if kind in ("Hardtanh", "CELU", "Threshold", "Hardshrink", "Softshrink"):
        return STOCK_TYPES[kind](*(config[key] for key in _FIELDS[kind]), name=name)
    if kind == "LayerNorm":
        shape, eps = tuple(config["normalized_shape"]), config["eps"]
        return LayerNorm(shape, eps, config["elementwise_affine"], config["bias"], name=name)
    if kind == "RMSNorm":
        shape, eps = tuple(config["normalized_shape"]), config["eps"]
        return RMSNorm(shape, eps, config["elementwise_affine"], name=name)
    if kind == "BatchNorm1d":
        return BatchNorm1d(
            config["num_features"],
            config["eps"],
            config["momentum"],
            config["affine"],
            config["track_running_stats"],
            bias=config["bias"],
            name=name,
        )
    return STOCK_TYPES[kind](name=name)


def _check_architecture(
    architecture: object,
    stored: dict[str, tuple[str, tuple[int, ...]]],
    ties: object,
) -> None:
    """The architecture is one ``build`` makes, its ties are sound, and the stored tensors
    are exactly the ones the built model holds (names, shapes, one dtype)."""
    slots, buffers, shared, counts = _layout(architecture)
    if not isinstance(ties, dict):
        raise _Invalid(f"its ties are {type(ties).__name__}, not a JSON object")
    order = {name: index for index, name in enumerate(slots)}
    for tied, target in ties.items():
        tie = f"tie {_short(tied)} → {_short(target)}"
        if not isinstance(target, str):
            raise _Invalid(f"{tie}: the target is not a parameter name")
        for name in (tied, target):
            if name not in slots:
                raise _Invalid(f"{tie}: the architecture has no parameter {_short(name)}")
        if target in ties or target == tied:
            raise _Invalid(f"{tie}: the target must be a parameter stored under its own name")
        if order[target] > order[tied]:
            raise _Invalid(f"{tie}: a shared parameter is stored under its first name")
        if slots[tied] != slots[target]:
            raise _Invalid(f"{tie}: shapes {slots[tied]} and {slots[target]} differ")
    for slot, same in shared.items():  # a layer given twice holds its parameters twice
        first = ties.get(same, same)
        if ties.get(slot) != first:
            raise _Invalid(
                f"parameter {slot!r} belongs to a layer given twice, so the ties must "
                f"share it with {first!r}"
            )
    expected = {name: shape for name, shape in slots.items() if name not in ties}
    expected.update(buffers)
    missing = sorted(set(expected) - set(stored))
    extra = sorted(set(stored) - set(expected))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {_names(missing)}")
        if extra:
            parts.append(f"holds {_names(extra)}, which the architecture has no place for")
        raise _Invalid(f"the tensors do not fit the architecture: {'; '.join(parts)}")
    for name, shape in expected.items():
        if stored[name][1] != shape:
            raise _Invalid(
                f"the tensors do not fit the architecture: {name!r} has shape "
                f"{list(stored[name][1])}, the architecture needs {list(shape)}"
            )
    for name, (code, _) in stored.items():
        if (code == COUNT_CODE) != (name in counts):
            needs = COUNT_CODE if name in counts else "F32 or F64"
            raise _Invalid(
                f"the tensors do not fit the architecture: {name!r} is {code}, not {needs}"
            )
    codes = sorted({code for code, _ in stored.values() if code != COUNT_CODE})
    if len(codes) > 1:
        raise _Invalid(f"its tensors mix {' and '.join(codes)}; a wxb model has one dtype")


def _names(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(_short(n, 60) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


Shapes = dict[str, tuple[int, ...]]


def _layout(architecture: object) -> tuple[Shapes, Shapes, dict[str, str], set[str]]:
    """What the built model will hold, every field checked, without recursion:

    - its parameter slots (dotted name → shape, in ``named_modules`` order, each
      slot of a shared parameter included),
    - its buffers (dotted name → shape),
    - for the slots of a layer given twice to one Sequential (the same object
      again, which ``build`` reproduces), the slot they share (its first name);
    - the buffers that are counts (stored as I64), not weights.
    """
    slots: Shapes = {}
    buffers: Shapes = {}
    shared: dict[str, str] = {}
    counts: set[str] = set()
    # (description, dotted prefix, where in the JSON, depth, for a layer given again the
    # description of its first place, and (first prefix, this prefix) inside such a layer)
    stack: list[tuple] = [(architecture, "", "architecture", 0, None, None)]
    count = 0

    def slot(prefix: str, key: str, shape: tuple[int, ...], alias: tuple | None) -> None:
        dotted = _join(prefix, key)
        slots[dotted] = shape
        if alias is not None:  # the same parameter as at the layer's first place
            same = alias[0] + dotted[len(alias[1]) :]
            shared[dotted] = shared.get(same, same)

    while stack:
        item, prefix, where, depth, again, alias = stack.pop()
        count += 1
        kind, node = _kind(item, where)
        if again is not None and node != again:  # ``again`` was checked: nested ≤ 64 deep
            raise _Invalid(f"{where}: two different layers are named {node.get('name')!r}")
        name = node.get("name")
        if name is not None and not isinstance(name, str):
            raise _Invalid(f"{where}: name {_short(name)} is not text")
        if kind == "Sequential":
            if depth >= MAX_DEPTH:
                raise _Invalid(f"{where}: Sequentials nested more than {MAX_DEPTH} deep")
            children = node["layers"]
            if not isinstance(children, list):
                raise _Invalid(f"{where}: layers is {type(children).__name__}, not a list")
            if count + len(stack) + len(children) > MAX_MODULES:
                raise _Invalid(f"more than {MAX_MODULES:,} modules")
            walk = []
            for index, (key, first) in enumerate(_child_keys(children, where)):
                child_prefix = _join(prefix, key)
                same, inner = None, alias
                if first is not None:  # the layer at ``first`` again: its slots are shared
                    same = children[first]
                    inner = (_join(prefix, same["name"]), child_prefix)
                child_where = f"{where}.layers[{index}]"
                walk.append((children[index], child_prefix, child_where, depth + 1, same, inner))
            stack.extend(reversed(walk))  # reversed onto the stack: walked in order
        elif kind == "Dense":
            n_in = _positive(node, "in_features", where)
            n_out = _positive(node, "out_features", where)
            if not isinstance(node["bias"], bool):
                raise _Invalid(f"{where}: bias {_short(node['bias'])} is not true or false")
            slot(prefix, "weight", (n_out, n_in), alias)
            if node["bias"]:
                slot(prefix, "bias", (n_out,), alias)
        elif kind == "Standardize":
            n = _positive(node, "features", where)
            buffers[_join(prefix, "mean")] = buffers[_join(prefix, "scale")] = (n,)
        elif kind in ("Dropout", "AlphaDropout", "FeatureAlphaDropout", "Dropout1d"):
            p = node["p"]
            if not _is_number(p) or not 0 <= p < 1:
                raise _Invalid(f"{where}: {kind} p {_short(p)} is not a number in [0, 1)")
        elif kind == "PReLU":
            slot(prefix, "weight", (_positive(node, "num_parameters", where),), alias)
            if "init" in node and not _is_number(node["init"]):
                raise _Invalid(f"{where}: PReLU init {_short(node['init'])} is not a finite number")
        elif kind == "RReLU":
            try:
                layers.RReLU(node["lower"], node["upper"])  # (its own checks)
            except ConfigError as exc:
                raise _Invalid(f"{where}: {exc}") from None
        elif kind == "Embedding":
            n = _positive(node, "num_embeddings", where)
            d = _positive(node, "embedding_dim", where)
            try:  # (the layer's own checks, without making its W)
                check_padding_idx(node["padding_idx"], n, "Embedding")
            except ConfigError as exc:
                raise _Invalid(f"{where}: {exc}") from None
            max_norm, norm_type = node["max_norm"], node["norm_type"]
            if max_norm is not None and not (_is_number(max_norm) and max_norm >= 0):
                raise _Invalid(f"{where}: Embedding max_norm {_short(max_norm)} is not valid")
            if not (_is_number(norm_type) and norm_type >= 0):
                raise _Invalid(f"{where}: Embedding norm_type {_short(norm_type)} is not valid")
            if not isinstance(node["scale_grad_by_freq"], bool):
                raise _Invalid(f"{where}: Embedding scale_grad_by_freq is not true or false")
            slot(prefix, "weight", (n, d), alias)
        elif kind == "Unflatten":
            dim, sizes = node["dim"], node["unflattened_size"]
            if isinstance(dim, bool) or not isinstance(dim, int):
                raise _Invalid(f"{where}: Unflatten dim {_short(dim)} is not an integer")
            if not isinstance(sizes, list) or len(sizes) > _MAX_NDIM:
                raise _Invalid(f"{where}: unflattened_size {_short(sizes)} is not a list of sizes")
            try:
                layers.Unflatten(dim, sizes)  # (its own checks of the sizes)
            except ConfigError as exc:
                raise _Invalid(f"{where}: {exc}") from None
        elif kind in ("Flatten", "GLU"):
            for key in _FIELDS[kind]:
                value = node[key]
                if isinstance(value, bool) or not isinstance(value, int):
                    raise _Invalid(f"{where}: {kind} {key} {_short(value)} is not an integer")
        elif kind == "LeakyReLU":
            slope = node["negative_slope"]
            if not _is_number(slope):
                raise _Invalid(f"{where}: negative_slope {_short(slope)} is not a finite number")
        elif kind in ("ELU", "Softplus"):
            for key in _FIELDS[kind]:
                if not _is_number(node[key]) or (key == "beta" and not node[key] > 0):
                    raise _Invalid(f"{where}: {kind} {key} {_short(node[key])} is not valid")
        elif kind in ("Hardtanh", "CELU", "Threshold", "Hardshrink", "Softshrink"):
            values = [node[key] for key in _FIELDS[kind]]
            if not all(_is_number(v) for v in values):
                raise _Invalid(f"{where}: {kind} {_short(values)} are not finite numbers")
            try:
                STOCK_TYPES[kind](*values)  # (its own checks: max_val > min_val, α ≠ 0)
            except ConfigError as exc:
                raise _Invalid(f"{where}: {exc}") from None
        elif kind == "GELU" and node["approximate"] not in ("none", "tanh"):
            raise _Invalid(
                f"{where}: approximate {_short(node['approximate'])} is not 'none' or 'tanh'"
            )
        elif kind in ("LayerNorm", "RMSNorm"):
            dims = node["normalized_shape"]
            if not isinstance(dims, list) or not dims or len(dims) > _MAX_NDIM:
                raise _Invalid(f"{where}: normalized_shape {_short(dims)} is not a list of sizes")
            shape = tuple(
                _positive({"normalized_shape": d}, "normalized_shape", where) for d in dims
            )
            with_bias = kind == "LayerNorm"
            _check_norm_settings(
                node,
                where,
                ("elementwise_affine", "bias") if with_bias else ("elementwise_affine",),
            )
            if node["elementwise_affine"]:
                slot(prefix, "weight", shape, alias)
                if with_bias and node["bias"]:
                    slot(prefix, "bias", shape, alias)
        elif kind == "BatchNorm1d":
            n = _positive(node, "num_features", where)
            _check_norm_settings(node, where, ("affine", "track_running_stats", "bias"))
            momentum = node["momentum"]
            if momentum is not None and not (_is_number(momentum) and 0 <= momentum <= 1):
                raise _Invalid(f"{where}: momentum {_short(momentum)} is not a number in [0, 1]")
            if node["affine"]:
                slot(prefix, "weight", (n,), alias)
                if node["bias"]:
                    slot(prefix, "bias", (n,), alias)
            if node["track_running_stats"]:
                buffers[_join(prefix, "running_mean")] = buffers[_join(prefix, "running_var")] = (
                    n,
                )
                tracked = _join(prefix, "num_batches_tracked")
                buffers[tracked] = ()
                counts.add(tracked)
    return slots, buffers, shared, counts


def _check_norm_settings(node: dict, where: str, flags: tuple[str, ...]) -> None:
    if node["eps"] is None and node["type"] == "RMSNorm":  # torch's default: the dtype's ε
        pass
    elif not _is_number(node["eps"]) or node["eps"] < 0:
        raise _Invalid(f"{where}: eps {_short(node['eps'])} is not a finite number ≥ 0")
    for key in flags:
        if not isinstance(node[key], bool):
            raise _Invalid(f"{where}: {key} {_short(node[key])} is not true or false")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _kind(node: object, where: str) -> tuple[str, dict]:
    """The checked type of a layer description (a JSON object with a known "type" and
    exactly that type's fields), and the description."""
    if not isinstance(node, dict):
        raise _Invalid(f"{where}: {_short(node)} is not a layer description (a JSON object)")
    kind = node.get("type")
    if not isinstance(kind, str) or kind not in STOCK_TYPES:
        raise _Invalid(
            f"{where}: unknown layer type {_short(kind)} (wxb rebuilds {', '.join(STOCK_TYPES)})"
        )
    fields = _FIELDS.get(kind, ())
    missing = [key for key in fields if key not in node]
    if missing:
        raise _Invalid(f"{where}: {kind} without {', '.join(missing)}")
    optional = _OPTIONAL_FIELDS.get(kind, {})
    unknown = sorted(
        str(key) for key in node if key not in ("type", "name", *fields) and key not in optional
    )
    if unknown:
        raise _Invalid(f"{where}: {kind} with unknown field(s) {_names(unknown)}")
    return kind, node


def _child_keys(children: list, where: str) -> list[tuple[str, int | None]]:
    """The key Sequential's constructor gives each layer (its name; unnamed: dense1,
    relu1, …; a layer given again: name_index), and for a layer given again the index
    of its first place. A name met twice means the same layer given twice."""
    counts: dict[str, int] = {}
    keys: list[tuple[str, int | None]] = []
    taken: set[str] = set()
    named: dict[str, int] = {}  # explicit name → index of its first place
    for index, child in enumerate(children):
        at = f"{where}.layers[{index}]"
        kind, node = _kind(child, at)
        name = node.get("name")
        first = None
        if name is None:
            lower = kind.lower()
            counts[lower] = counts.get(lower, 0) + 1
            while f"{lower}{counts[lower]}" in taken:
                counts[lower] += 1
            key = f"{lower}{counts[lower]}"
        elif not isinstance(name, str) or not _is_layer_name(name):
            raise _Invalid(
                f"{at}: name {_short(name)} cannot name a layer (text without dots, not empty, "
                "not starting with '_', not an attribute of Sequential)"
            )
        elif name in named:  # the same layer again (checked equal when walked)
            first = named[name]
            key = f"{name}_{index}"
        else:
            key = name
            named[name] = index
        if key in taken:
            raise _Invalid(f"{where}: two layers are named {key!r}")
        taken.add(key)
        keys.append((key, first))
    return keys


def _is_layer_name(name: str) -> bool:
    return (
        bool(name)
        and "." not in name
        and not name.startswith("_")
        and not hasattr(Sequential, name)
        and name != "info"
    )


def _positive(node: dict, key: str, where: str) -> int:
    value = node[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _Invalid(f"{where}: {key} {_short(value)} is not a positive integer")
    return value


def _is_number(value: object) -> bool:
    """A finite int or float (not a bool; not an int too large for a float)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False
