"""Checkpoints of states: ``wxb.save(checkpoint, path)`` and ``wxb.load(path)``, as
``torch.save`` / ``torch.load`` are used in a loop of one's own, without pickle.

One safetensors file. Every NumPy array in the structure (a wxb Tensor as its array) is
a tensor named by its place (``model/dense1.weight``, ``optimizer/state/0/moment1``; a
flat state_dict's arrays keep their own names), so other tools read the arrays. The
structure is JSON in the metadata (``format`` "wxb-state", ``format_version``,
``structure``), each array by its tensor's name. Every container is tagged, so no
value of the user's can read as a tag:

- null, true, false, ints, strings, finite floats: themselves (floats as Python's
  exact repr); a NaN or ±inf float: ``{"float": "nan"}``
- ``{"dict": [[key, value], …]}`` (a key str or int: an optimiser's state is keyed by
  index), ``{"list": […]}``, ``{"tuple": […]}``
- ``{"array": name, "dtype": "float32"}``: the tensor and its NumPy dtype (checked
  against the tensor's when read); a complex128 array, which safetensors has no dtype
  for, is stored as F64 pairs on a last axis of 2
- ``{"numpy": "float32", "value": …}``: a NumPy scalar and its dtype

Anything else (a function, an object, a set, bytes, a key of another type) is refused
before writing, naming its place (``checkpoint['scheduler']['lr_lambdas'][0]``).
Reading checks the structure against the tensors (each named once, each of the dtype
and shape its node implies) and never unpickles: a file runs no code.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np

from wxb.backend import is_torch_tensor
from wxb.data import (
    DAMAGED,
    DIGEST,
    MAX_HEADER,
    atomic_write,
    digest_matches,
    safetensors_digest,
    safetensors_parts,
)
from wxb.errors import ConfigError, DataError, ModelFileError
from wxb.nn.module import BufferArray
from wxb.tensor import Count, Tensor

FORMAT = "wxb-state"
FORMAT_VERSION = "1"
MAX_DEPTH = 100  # containers nested in one another (JSON's own parser stops near 1,000)
MAX_NDIM = 64  # NumPy's own limit

# safetensors' code of each NumPy dtype a state's arrays may have
_TYPES = {
    np.bool_: "BOOL", np.uint8: "U8", np.int8: "I8", np.int16: "I16", np.uint16: "U16",
    np.int32: "I32", np.uint32: "U32", np.int64: "I64", np.uint64: "U64",
    np.float16: "F16", np.float32: "F32", np.float64: "F64", np.complex64: "C64",
}  # fmt: skip
_CODES = {(np.dtype(t).kind, np.dtype(t).itemsize): code for t, code in _TYPES.items()}
FILE_DTYPES = {code: np.dtype(t).newbyteorder("<") for t, code in _TYPES.items()}
# NumPy scalars, by their dtype's name (np.str_ as "str")
_SCALARS: dict[str, type] = {np.dtype(t).name: t for t in [*_TYPES, np.complex128]}
_SCALARS["str"] = np.str_
_RESERVED = {"__metadata__"}  # the header's own key: no tensor may take it
_KINDS = "dict, list, tuple, None, bool, int, float, str, NumPy arrays and scalars"


# ---------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------
def save(checkpoint: object, path: str | Path) -> Path:
    """Write ``checkpoint`` to one safetensors file atomically (an existing file is
    replaced whole or not at all). ConfigError, writing nothing, for a value it cannot
    hold, naming its place in the structure."""
    if not isinstance(checkpoint, (dict, list, tuple, np.ndarray, Tensor)):
        raise ConfigError(
            "wxb.save takes a wxb.nn.Module (a model file) or a checkpoint: a dict of "
            f"states, arrays and plain values ({_KINDS}); got {_what(checkpoint)}"
        )
    tensors: dict[str, np.ndarray] = {}
    structure = _Encoder(tensors).encode(checkpoint)
    try:
        text = json.dumps(structure, allow_nan=False, separators=(",", ":"))
    except ValueError as exc:  # an int of thousands of digits (checked too; in case)
        raise ConfigError(f"wxb.save: checkpoint cannot be written as JSON ({exc})") from None
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "structure": text}
    try:
        parts = safetensors_parts(tensors, metadata=metadata)
    except DataError:
        raise ConfigError(
            f"wxb.save: the checkpoint's plain values take {len(text) / 2**20:.0f} MiB of "
            f"JSON; a file holds at most {MAX_HEADER // 2**20} MiB of them (keep long lists "
            "of numbers as NumPy arrays, which are stored as tensors)"
        ) from None
    # (a damaged copy, a flipped bit in an optimiser's moment, is refused by load)
    metadata[DIGEST] = safetensors_digest(parts)
    path = Path(path)
    atomic_write(path, safetensors_parts(tensors, metadata=metadata))
    return path


class _Encoder:
    def __init__(self, tensors: dict[str, np.ndarray]) -> None:
        self.tensors = tensors
        self.inside: set[int] = set()  # ids of the containers on the way down: cycles

    def encode(self, value: object, where: str = "checkpoint", names: tuple = (), depth: int = 0):
        if isinstance(value, Count):  # labels.size: NumPy's count, callable as torch's size()
            value = int(value)
        kind = type(value)
        if value is None or kind in (bool, str):
            return value
        if kind is int:
            if value.bit_length() > 10_000:
                raise _refuse(where, f"an int of {value.bit_length():,} bits cannot be saved")
            return value
        if kind is float:
            return value if math.isfinite(value) else {"float": repr(value)}
        if isinstance(value, Tensor):  # a Parameter or Tensor: its array, as state_dict gives
            value = value.data
        if isinstance(value, BufferArray):  # a module's buffer: its array, as state_dict gives
            value = value.view(np.ndarray)
        if isinstance(value, np.ndarray):
            return self.array(value, where, names)
        if isinstance(value, np.generic):
            return _scalar(value, where)
        if isinstance(value, (dict, list, tuple)):
            if isinstance(value, (list, tuple)) and kind not in (list, tuple):
                raise _refuse(
                    where,
                    f"a {kind.__name__} ({_base(value)} subclass) cannot be saved: it would "
                    f"load as a plain {_base(value)}",
                )
            if depth >= MAX_DEPTH:
                raise _refuse(where, f"containers nested more than {MAX_DEPTH} deep")
            if id(value) in self.inside:
                raise _refuse(where, "it contains itself, which cannot be saved")
            self.inside.add(id(value))
            try:
                if isinstance(value, dict):  # (an OrderedDict too: its items, in order)
                    items = []
                    for key, item in value.items():
                        if type(key) not in (str, int):
                            raise _refuse(
                                f"{where}[{key!r}]",
                                f"a dict key of type {type(key).__name__} cannot be saved "
                                "(keys are str or int: str(key) or int(key) gives one)",
                            )
                        inner = self.encode(item, f"{where}[{key!r}]", (*names, key), depth + 1)
                        items.append([key, inner])
                    return {"dict": items}
                return {
                    kind.__name__: [
                        self.encode(item, f"{where}[{index}]", (*names, index), depth + 1)
                        for index, item in enumerate(value)
                    ]
                }
            finally:
                self.inside.discard(id(value))
        raise _refuse(where, _unsaveable(value))

    def array(self, value: np.ndarray, where: str, names: tuple) -> dict:
        if type(value) is not np.ndarray and not isinstance(value, np.memmap):
            raise _refuse(
                where,
                f"a {type(value).__name__} cannot be saved: it would load as a plain ndarray "
                "(save np.asarray(x), and what else it holds, such as a mask, beside it)",
            )
        dtype = value.dtype
        if dtype.kind == "c" and dtype.itemsize == 16:  # no safetensors dtype: F64 pairs
            pairs = np.require(value, np.complex128, "C").reshape(-1).view(np.float64)
            value = pairs.reshape(*value.shape, 2)
        elif (dtype.kind, dtype.itemsize) not in _CODES:
            raise _refuse(
                where,
                f"an array of dtype {dtype} cannot be saved (arrays of bool, ints, floats "
                "up to float64 and complex are; a list of str can be saved as a list)",
            )
        name = "/".join(str(part) for part in names) or "checkpoint"
        taken, number = name, 1
        while taken in self.tensors or taken in _RESERVED:  # {1: …, "1": …}, "a/b" and a → b
            number += 1
            taken = f"{name}#{number}"
        self.tensors[taken] = value
        return {"array": taken, "dtype": dtype.newbyteorder("=").name}


def _scalar(value: np.generic, where: str) -> dict:
    dtype = value.dtype
    if isinstance(value, np.str_):
        return {"numpy": "str", "value": str(value)}
    if dtype.name not in _SCALARS:
        raise _refuse(
            where,
            f"a NumPy {dtype} scalar cannot be saved (bool, int, float up to float64, "
            "complex and str scalars are)",
        )
    if dtype.kind == "b":
        number: object = bool(value)
    elif dtype.kind in "iu":
        number = int(value)
    elif dtype.kind == "f":
        number = _float(float(value))
    else:
        number = [_float(float(value.real)), _float(float(value.imag))]
    return {"numpy": dtype.name, "value": number}


def _float(value: float) -> float | str:
    """A float as JSON holds it: itself, or "nan", "inf", "-inf" (no JSON numbers)."""
    return value if math.isfinite(value) else repr(value)


def _base(value: object) -> str:
    return "tuple" if isinstance(value, tuple) else "list"


def _what(value: object) -> str:
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


def _unsaveable(value: object) -> str:
    """Why ``value`` cannot be saved, and what to save in its place."""
    kind = type(value)
    if is_torch_tensor(value):
        return "a torch Tensor cannot be saved here (save t.detach().cpu().numpy())"
    if callable(getattr(value, "state_dict", None)) and not isinstance(value, type):
        return (
            f"a {_what(value)} object cannot be saved (save its .state_dict(); a whole "
            "wxb model alone goes to wxb.save(model, path))"
        )
    if isinstance(value, type):
        return f"a class ({_what(value)}) cannot be saved (a file of wxb's runs no code)"
    if callable(value):
        return "a function cannot be saved (a file of wxb's runs no code: rebuild it in code)"
    if isinstance(value, (set, frozenset)):
        return f"a {kind.__name__} cannot be saved (save sorted(s) as a list)"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"a {kind.__name__} value cannot be saved (save np.frombuffer(b, np.uint8))"
    if isinstance(value, np.random.Generator):
        return "a NumPy Generator cannot be saved (save rng.bit_generator.state, a dict)"
    if kind.__module__ == "builtins":
        article = "an" if kind.__name__[0] in "aeiou" else "a"  # (an object, a complex)
        return f"{article} {kind.__name__} value cannot be saved (a checkpoint holds {_KINDS})"
    return (
        f"a {_what(value)} object cannot be saved (a checkpoint holds {_KINDS}; a file of "
        "wxb's runs no code)"
    )


def _refuse(where: str, why: str) -> ConfigError:
    return ConfigError(f"wxb.save: {where}: {why}")


# ---------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------
def read(path: Path, header: dict, stored: dict[str, tuple[str, tuple[int, ...]]]) -> Any:
    """The structure a state file holds, its arrays NumPy arrays. ``header`` is the file's,
    read and ``stored`` (name → (code, shape)) checked against the file's size by io.py
    before: here the metadata is checked against them, then the bytes are read once."""
    metadata = header["__metadata__"]
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: wxb checkpoint format version {_short(metadata.get('format_version'))}; "
            f"this wxb reads version {FORMAT_VERSION}"
        )
    text = metadata.get("structure")
    if not isinstance(text, str):
        raise ModelFileError(f"{path}: a wxb checkpoint without its structure in its metadata")
    try:
        structure = json.loads(text)
    except (ValueError, RecursionError):
        raise ModelFileError(f"{path}: the structure in its metadata is not JSON") from None
    decoder = _Decoder(path, stored)
    value = decoder.decode(structure, 0)
    unnamed = sorted(set(stored) - decoder.used)
    if unnamed:
        raise ModelFileError(
            f"{path}: holds tensors its structure does not name ({_short(unnamed)}): "
            "the metadata does not match the tensors"
        )
    payload = path.read_bytes()
    (length,) = struct.unpack("<Q", payload[:8]) if len(payload) >= 8 else (-1,)
    try:
        again = json.loads(payload[8 : 8 + length]) if length >= 0 else None
    except (ValueError, RecursionError):
        again = None
    if again != header:
        raise ModelFileError(f"{path}: its header changed while it was read")
    if not digest_matches(metadata, payload):
        raise ModelFileError(f"{path}: corrupt checkpoint: {DAMAGED}")
    start = 8 + length
    arrays = {}
    for name, (code, shape) in stored.items():
        begin = header[name]["data_offsets"][0]
        dtype = FILE_DTYPES[code]
        native, count = dtype.newbyteorder("="), math.prod(shape)
        if count == 0:
            arrays[name] = np.empty(shape, native)
            continue
        flat = np.frombuffer(payload, dtype, count=count, offset=start + begin)
        arrays[name] = flat.astype(native).reshape(shape)  # a copy of its own, writable
    return decoder.fill(value, arrays)


class _Decoder:
    def __init__(self, path: Path, stored: dict[str, tuple[str, tuple[int, ...]]]) -> None:
        self.path, self.stored = path, stored
        self.used: set[str] = set()

    def damaged(self, why: str) -> ModelFileError:
        return ModelFileError(f"{self.path}: its structure (metadata) is damaged: {why}")

    def decode(self, node: object, depth: int) -> object:
        """The structure with each array a ``_Array`` placeholder, every node checked."""
        if node is None or type(node) in (bool, int, float, str):
            return node
        if not isinstance(node, dict) or len(node) not in (1, 2):
            raise self.damaged(f"{_short(node)} is no value wxb.save writes")
        tag = next(iter(node))
        body = node[tag]
        if tag in ("list", "tuple", "dict") and depth >= MAX_DEPTH:  # as save counts them
            raise self.damaged(f"containers nested more than {MAX_DEPTH} deep")
        if tag == "float" and len(node) == 1:
            if body not in ("nan", "inf", "-inf"):
                raise self.damaged(f"float {_short(body)} is not nan, inf or -inf")
            return float(body)
        if tag in ("list", "tuple") and len(node) == 1 and isinstance(body, list):
            items = [self.decode(item, depth + 1) for item in body]
            return items if tag == "list" else tuple(items)
        if tag == "dict" and len(node) == 1 and isinstance(body, list):
            result: dict = {}
            for pair in body:
                if not (isinstance(pair, list) and len(pair) == 2 and type(pair[0]) in (str, int)):
                    raise self.damaged(f"dict entry {_short(pair)} is not [str or int key, value]")
                if pair[0] in result:
                    raise self.damaged(f"dict key {_short(pair[0])} is given twice")
                result[pair[0]] = self.decode(pair[1], depth + 1)
            return result
        if set(node) == {"array", "dtype"}:  # (in either order)
            return self.array(node["array"], node["dtype"])
        if set(node) == {"numpy", "value"}:
            return self.scalar(node["numpy"], node["value"])
        raise self.damaged(f"{_short(node)} is no value wxb.save writes")

    def array(self, name: object, dtype: object) -> _Array:
        if not isinstance(name, str) or name not in self.stored:
            raise self.damaged(f"it names tensor {_short(name)}, which the file does not hold")
        if name in self.used:
            raise self.damaged(f"it names tensor {name!r} twice")
        code, shape = self.stored[name]
        pairs = dtype == "complex128"
        expected = (
            "F64" if pairs else _TYPES.get(_SCALARS.get(dtype) if isinstance(dtype, str) else None)
        )
        if code != expected or (pairs and (not shape or shape[-1] != 2)):
            raise self.damaged(
                f"tensor {name!r} is {code} {list(shape)}, where its structure says "
                f"{_short(dtype)}: the metadata does not match the tensors"
            )
        self.used.add(name)
        return _Array(name, pairs)

    def scalar(self, name: object, value: object) -> np.generic:
        kind = _SCALARS.get(name) if isinstance(name, str) else None
        if kind is None:
            raise self.damaged(f"NumPy scalar type {_short(name)} is none wxb.save writes")
        dtype = np.dtype(kind)
        try:
            if dtype.kind == "U" and type(value) is str:
                return np.str_(value)
            if dtype.kind == "b" and type(value) is bool:
                return kind(value)
            if dtype.kind in "iu" and type(value) is int:
                if not np.iinfo(dtype).min <= value <= np.iinfo(dtype).max:
                    raise OverflowError
                return kind(value)
            if dtype.kind == "f" and _is_float(value):
                return kind(float(value))
            if dtype.kind == "c" and isinstance(value, list) and len(value) == 2:
                if all(map(_is_float, value)):
                    return kind(complex(float(value[0]), float(value[1])))
        except (OverflowError, ValueError):
            pass
        raise self.damaged(f"{_short(value)} is not a NumPy {name} value")

    def fill(self, value: object, arrays: dict[str, np.ndarray]) -> Any:
        """``value`` with each placeholder its array (depth checked by ``decode``)."""
        if isinstance(value, _Array):
            array = arrays[value.name]
            return array.view(np.complex128)[..., 0] if value.complex_pairs else array
        if isinstance(value, dict):
            return {key: self.fill(item, arrays) for key, item in value.items()}
        if isinstance(value, list):
            return [self.fill(item, arrays) for item in value]
        if isinstance(value, tuple):
            return tuple(self.fill(item, arrays) for item in value)
        return value


class _Array:
    __slots__ = ("complex_pairs", "name")

    def __init__(self, name: str, complex_pairs: bool) -> None:
        self.name, self.complex_pairs = name, complex_pairs


def _is_float(value: object) -> bool:
    return type(value) in (int, float) or value in ("nan", "inf", "-inf")


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
