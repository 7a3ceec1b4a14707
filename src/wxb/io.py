"""Model files: one .safetensors file with the weights and, in its metadata, the
architecture and ``model.info`` (task, class names, feature names) needed to use it.

Writes are atomic: the bytes go to a temporary file in the same folder, are
flushed to disk, and only then renamed over the target, so a crash never leaves
a half-written model where a good one was. Reading never unpickles anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from wxb.data import atomic_write, read_safetensors_header
from wxb.errors import ConfigError, ModelFileError, ShapeError, WxbError
from wxb.nn import layers
from wxb.nn.module import Module
from wxb.nn.sequential import Sequential

FORMAT = "wxb"
FORMAT_VERSION = "1"


def save(model: Module, path: str | Path) -> Path:
    """Save weights, architecture and ``model.info`` to one .safetensors file."""
    from safetensors.numpy import save as safetensors_bytes

    architecture = model.config()  # raises ConfigError for modules it cannot rebuild
    tensors = {name: np.ascontiguousarray(array) for name, array in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": json.dumps(architecture),
        "info": json.dumps(model.info, default=_json_default),
        "dtype": str(model.dtype),
    }
    path = Path(path)
    atomic_write(path, safetensors_bytes(tensors, metadata=metadata))
    return path


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"model.info holds {type(value).__name__}, which JSON cannot store")


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``__metadata__`` of a wxb model file, checked; ModelFileError otherwise."""
    path = Path(path)
    metadata = read_safetensors_header(path).get("__metadata__") or {}
    if metadata.get("format") != FORMAT:
        raise ModelFileError(
            f"{path}: a safetensors file, but not a wxb model (no wxb architecture in its metadata)"
        )
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: wxb model format version {metadata.get('format_version')!r}; "
            f"this wxb reads version {FORMAT_VERSION}"
        )
    return metadata


def load(path: str | Path) -> Module:
    """Rebuild the model saved at ``path``; predictions equal the saved model's exactly."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as safetensors_load

    path = Path(path)
    metadata = read_metadata(path)
    try:
        architecture = json.loads(metadata["architecture"])
        info = json.loads(metadata.get("info", "{}"))
    except (KeyError, json.JSONDecodeError):
        raise ModelFileError(
            f"{path}: the architecture in its metadata is missing or not JSON"
        ) from None
    try:
        tensors = safetensors_load(path.read_bytes())
    except (SafetensorError, ValueError, OSError) as exc:
        raise ModelFileError(f"{path}: corrupt or truncated safetensors data ({exc})") from None
    try:
        model = build(architecture)
        dtypes = {a.dtype for a in tensors.values()}
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
    model.info = info
    model.eval()
    return model


def build(config: dict[str, Any]) -> Module:
    """A module from its ``config()``, with placeholder weights (a fixed seed: loading
    a model never advances wxb's global random generator)."""
    if not isinstance(config, dict) or "type" not in config:
        raise ConfigError(f"not a layer description: {config!r}")
    kind, name = config["type"], config.get("name")
    if kind == "Sequential":
        return Sequential(*(build(layer) for layer in config["layers"]))
    if kind == "Dense":
        return layers.Dense(
            config["in_features"], config["out_features"], config["bias"], seed=0, name=name
        )
    if kind == "Dropout":
        return layers.Dropout(config["p"], name=name)  # masks from wxb's generator, as when built
    if kind == "Standardize":
        n = config["features"]
        return layers.Standardize(np.zeros(n), np.ones(n), name=name)
    if kind == "LeakyReLU":
        return layers.LeakyReLU(config["negative_slope"], name=name)
    if kind == "GELU":
        return layers.GELU(config["approximate"], name=name)
    activation = {cls.__name__: cls for cls in layers.ACTIVATIONS.values()}.get(kind)
    if activation is None:
        raise ConfigError(f"unknown layer type {kind!r}")
    return activation(name=name)
