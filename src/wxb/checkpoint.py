"""Checkpoints: everything a training run needs to continue, bit for bit.

A checkpoint folder holds, per checkpoint, two files named by the global step:

    step-000000120.safetensors   the arrays: model.*, optimizer.<state>.<i>, best.*,
                                 last_good.*, order (the current epoch's shuffled rows),
                                 hidden_buffers.* (the non-persistent buffers)
    step-000000120.json          everything else, plain JSON: position, history,
                                 optimiser and schedule settings, generator states,
                                 what the run was (to refuse a mismatched resume),
                                 the numeric setup, and the sha256 of the arrays file

Each file is written atomically (temporary file, fsync, rename, fsync of the
folder), the arrays first and the JSON last: a checkpoint is complete when its
JSON parses and names the checksum its arrays file has. Older checkpoints beyond
``keep`` are removed only after a newer one was written and read back intact,
JSON first, so a removal cut short leaves an incomplete checkpoint that a
resume skips, never a complete one that lies. Nothing here unpickles.
"""

from __future__ import annotations

import dis
import functools
import hashlib
import inspect
import json
import os
import platform
import random
import re
import tempfile
import types
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wxb.data import (
    atomic_write,
    decode_floats,
    encode_floats,
    fsync_folder,
    remove_abandoned,
    safetensors_parts,
)
from wxb.errors import ConfigError, DataError, WxbError
from wxb.nn.module import Module
from wxb.random import get_rng_state as default_rng_state
from wxb.random import set_rng_state as set_default_rng_state
from wxb.random import state_as_json, state_from_json

FORMAT = "wxb-checkpoint"
FORMAT_VERSION = 1
_NAME = re.compile(r"^step-(\d{9,})\.json$")
_ARRAYS_NAME = re.compile(r"^step-\d{9,}\.safetensors$")


def is_checkpoint_file(name: str) -> bool:
    """Whether a file of that name in a checkpoint folder is a checkpoint's."""
    return bool(_NAME.match(name) or _ARRAYS_NAME.match(name))


# Temporaries of atomic_write (".NAME.XXXXXXXX.tmp") a killed writer left in the folder.
_STRAY = re.compile(r"^\.(step-\d{9,}\.(json|safetensors)|[\w-]+\.json)\.\w{8}\.tmp$")


class CheckpointWarning(UserWarning):
    """A damaged or partial checkpoint was skipped, or a resume runs on a different setup."""


@dataclass
class Checkpoint:
    """One complete checkpoint: its JSON fields and its arrays."""

    path: Path  # the JSON file
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    def part(self, prefix: str) -> dict[str, np.ndarray]:
        """The arrays stored under ``prefix.``, by their names after it."""
        cut = len(prefix) + 1
        return {k[cut:]: v for k, v in self.arrays.items() if k.startswith(prefix + ".")}


class CheckpointFolder:
    """The checkpoints of one run in one folder; keeps the newest ``keep``."""

    def __init__(self, folder: str | os.PathLike, keep: int = 2) -> None:
        if isinstance(folder, str) and not folder.strip():
            # Path("") is the working folder: checkpoints went there without a word
            raise ConfigError(
                f"checkpoint_dir is {folder!r}; give a folder, or None for no checkpoints"
            )
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ConfigError(f"{self.folder} is a file; checkpoint_dir takes a folder")
        # (NumPy's integers too, as checkpoint_every and batch_size take them)
        if (
            isinstance(keep, (bool, np.bool_))
            or not isinstance(keep, (int, np.integer))
            or keep < 1
        ):
            raise ConfigError(f"keep_checkpoints must be an integer ≥ 1; got {keep!r}")
        self.keep = int(keep)

    def check_writable(self) -> None:
        """Before any training: the folder exists (or is made) and takes a file."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.folder):
                pass
        except OSError as exc:
            raise DataError(
                f"{self.folder}: cannot write checkpoints there ({exc.strerror or exc})"
            ) from None

    def listed(self) -> list[tuple[int, Path]]:
        """(global step, JSON path) of every checkpoint JSON here, oldest first."""
        if not self.folder.is_dir():
            return []
        found = []
        for entry in self.folder.iterdir():
            match = _NAME.match(entry.name)
            if match:
                found.append((int(match.group(1)), entry))
        return sorted(found)

    def latest(self) -> Checkpoint | None:
        """The newest complete checkpoint; damaged or partial ones are skipped with a warning.

        One written by a newer wxb (a later format) is refused, not skipped: it is not
        damaged, and starting afresh would in time overwrite it.
        """
        for _, path in reversed(self.listed()):
            try:
                return read(path)
            except NewerFormatError as exc:
                raise ConfigError(f"cannot resume from {path}: {exc}") from None
            except WxbError as exc:
                warnings.warn(f"skipped checkpoint {path}: {exc}", CheckpointWarning, stacklevel=3)
        return None

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One run per folder: a second one is refused while the first holds the lock (an
        advisory lock on the folder itself, which the system drops when the holder dies,
        however it dies; no file is made)."""
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks here
            yield
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise ConfigError(
                    f"{self.folder} is in use by another training run; give this one "
                    "another checkpoint folder"
                ) from None
            yield
        finally:
            os.close(fd)  # closing drops the lock

    def write(self, step: int, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
        """Write one checkpoint, verify it, then remove the oldest beyond ``keep``.

        The arrays are streamed to disk (no copy of them is made) while being hashed,
        then read back and hashed again; the JSON, with its own checksum, comes last.
        """
        stem = f"step-{step:09d}"
        tensors_path = self.folder / f"{stem}.safetensors"
        json_path = self.folder / f"{stem}.json"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.remove_strays()
        parts = safetensors_parts(arrays)
        digest = hashlib.sha256()
        for part in parts:
            digest.update(part)
        atomic_write(tensors_path, parts)
        del parts
        if _file_sha256(tensors_path) != digest.hexdigest():
            raise CheckpointFileError(f"{tensors_path} reads back other bytes than were written")
        record = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "arrays": tensors_path.name,
            "sha256": digest.hexdigest(),
            **encode_floats(meta),
        }
        record["json_sha256"] = _json_digest(record)
        atomic_write(json_path, json.dumps(record, indent=1, allow_nan=False).encode())
        _read_json(json_path)  # read back: a checkpoint counts once it verifies
        self.prune(step)
        return json_path

    def prune(self, newest: int) -> None:
        """Keep the newest ``keep`` up to step ``newest``. Later ones (damaged, skipped by
        the resume that led here) are left alone until this run overwrites them.

        Called after each write, and on resuming: a run killed between a write and its
        pruning leaves one checkpoint too many, which a resume with nothing left to
        train would otherwise never remove."""
        older = [path for step, path in self.listed() if step < newest]
        for path in older[: max(0, len(older) - (self.keep - 1))]:
            path.unlink(missing_ok=True)  # the JSON first: what is left is seen as partial
            path.with_suffix(".safetensors").unlink(missing_ok=True)
        # Arrays files whose JSON is gone (a write or a removal cut short) are partial.
        named = {path.with_suffix(".safetensors") for _, path in self.listed()}
        for entry in self.folder.glob("step-*.safetensors"):  # only names wxb writes
            if entry not in named and _ARRAYS_NAME.match(entry.name):
                entry.unlink(missing_ok=True)
        fsync_folder(self.folder)

    def remove_strays(self) -> None:
        """Temporary files a killed writer left behind (only wxb's own: checkpoints, and
        JSON such as wxb train's options); one a live writer holds stays (a save into
        this folder from another thread or process: removing it failed or lost that save)."""
        if self.folder.is_dir():
            for entry in self.folder.iterdir():
                if _STRAY.match(entry.name):
                    remove_abandoned(entry)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _json_digest(record: dict) -> str:
    """The checksum of a checkpoint's JSON: of its canonical form, without this field."""
    body = {k: v for k, v in record.items() if k != "json_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _read_json(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointFileError(f"its JSON cannot be read ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointFileError("its JSON is not a wxb checkpoint")
    version = meta.get("format_version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise NewerFormatError(
            f"it is in checkpoint format {version}, from a newer wxb; this one reads "
            f"{FORMAT_VERSION}"
        )
    if version != FORMAT_VERSION:
        raise CheckpointFileError(f"format version {version!r}; this wxb reads {FORMAT_VERSION}")
    if meta.get("json_sha256") != _json_digest(meta):
        raise CheckpointFileError("its JSON does not match its checksum (edited or damaged)")
    return meta


def read(path: Path) -> Checkpoint:
    """A checkpoint from its JSON path, checked whole; CheckpointFileError says what is wrong."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as safetensors_load

    meta = _read_json(path)
    name = meta.get("arrays")
    if not isinstance(name, str) or Path(name).name != name:
        raise CheckpointFileError("its JSON names no arrays file")
    try:
        payload = (path.parent / name).read_bytes()
    except OSError as exc:
        raise CheckpointFileError(f"its arrays file cannot be read ({exc.strerror})") from None
    if hashlib.sha256(payload).hexdigest() != meta.get("sha256"):
        raise CheckpointFileError(f"{name} does not match the checksum in its JSON")
    try:
        arrays = safetensors_load(payload)
    except (SafetensorError, ValueError) as exc:
        raise CheckpointFileError(f"{name} cannot be read ({exc})") from None
    return Checkpoint(path, decode_floats(meta), arrays)


class CheckpointFileError(WxbError, ValueError):
    """A checkpoint that is partial, damaged, or not a wxb checkpoint."""


class NewerFormatError(CheckpointFileError):
    """A checkpoint from a newer wxb."""


# ---------------------------------------------------------------------------------
# What the run is, what decides its bits, and its random generators
# ---------------------------------------------------------------------------------
def fingerprint(array: np.ndarray) -> str:
    """A digest of an array's shape, dtype and bytes: different data, different digest."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{array.shape}{array.dtype.str}".encode())
    digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def state_digest(state: dict[str, np.ndarray]) -> str:
    """One digest of named arrays (a model's weights)."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(fingerprint(state[name]).encode())
    return digest.hexdigest()


def architecture(model: Module) -> Any:
    """Every module's path, type and settings (its ``config()`` where it has one, else its
    plain attributes), and the arrays' names, shapes and dtypes."""
    modules = []
    for path, module in model.named_modules(remove_duplicate=False):
        try:
            settings = json.loads(json.dumps(module.config()))
        except (WxbError, TypeError, ValueError):
            settings = plain_settings(module)
        modules.append([path, type(module).__name__, settings])
    # by name: state_dict's order changed once (parameters then buffers, now module by
    # module), and a run resumes whatever order wrote it (see arrays_by_name)
    arrays = sorted([k, list(v.shape), str(v.dtype)] for k, v in model.state_dict().items())
    return {"modules": modules, "arrays": arrays}


def arrays_by_name(architecture: Any) -> Any:
    """``architecture`` (``architecture()``'s, perhaps as an older wxb wrote it, arrays in
    state_dict's order) with its arrays by name, to compare two runs'."""
    if isinstance(architecture, dict) and isinstance(architecture.get("arrays"), list):
        architecture = {**architecture, "arrays": sorted(architecture["arrays"])}
    if isinstance(architecture, dict) and isinstance(architecture.get("modules"), list):
        # PReLU's init (recorded since 2026-12-07) only starts the slopes, which the
        # checkpoint holds: not compared, so that an older run of it still resumes
        architecture = {
            **architecture,
            "modules": [_without_init(m) for m in architecture["modules"]],
        }
    return architecture


def _without_init(entry: Any) -> Any:
    if isinstance(entry, list) and len(entry) == 3 and entry[1] == "PReLU":
        if isinstance(entry[2], dict):
            return [entry[0], entry[1], {k: v for k, v in entry[2].items() if k != "init"}]
    return entry


def unknown_dropout_masks(meta: dict[str, Any], model: Module) -> str | None:
    """Why a checkpoint's Dropout masks cannot be drawn again, or None. Masks in fit went
    by each layer's generator before 2026-12-03 (no ``row_masks_key``), then by data row
    on a stream per draw of the step, and from 2026-12-04 20:25 on a stream per layer:
    a resume on the other masks trains the rest of the run off the uninterrupted one's,
    without a word. A checkpoint written after 2026-12-05 04:39 (its arrays listed by
    name) used the layers' streams; one from between cannot say which it used."""
    from wxb.nn.layers import Dropout

    if not any(isinstance(m, Dropout) and m.p > 0 for m in model.modules()):
        return None
    other = "the rest of the run would train on other masks; train again without resuming"
    if "row_masks_key" not in meta:
        return (
            "written by a wxb before 2026-12-03, whose Dropout masks came from the "
            f"layers' generators: {other}"
        )
    if "row_masks_own" in meta:
        return None
    recorded = (meta.get("run") or {}).get("architecture", {}).get("arrays")
    names = list(model.state_dict())
    if isinstance(recorded, list) and recorded == sorted(recorded) and names != sorted(names):
        return None  # listed by name: after 2026-12-05 04:39, the layers' streams
    return (
        "written by a wxb before 2026-12-05, whose Dropout masks went by another stream "
        f"until 2026-12-04, and the checkpoint does not say which: {other}"
    )


def plain_settings(thing: object) -> dict[str, Any]:
    """An object's public attributes that are plain values (numbers, strings, flags,
    None, and lists or tuples of them): a custom module's or loss's settings."""
    plain = (bool, int, float, str, type(None))
    found = {"type": type(thing).__name__}
    for key, value in sorted(vars(thing).items()):
        if key.startswith("_"):  # private: caches, modes, counters
            continue
        if isinstance(value, plain) or (
            isinstance(value, (list, tuple)) and all(isinstance(v, plain) for v in value)
        ):
            found[key] = list(value) if isinstance(value, tuple) else value
    return encode_floats(found)


def code_digest(function: object) -> str:
    """A digest that tells two pieces of code apart across processes: a function's source
    (its bytecode where Python has no source, as in a REPL), with its defaults, a
    partial's arguments, or a callable object's class and settings. The same function
    in a new process gives the same digest; another lambda, gamma=5 for gamma=0, a
    closure over w=5 for w=1, does not. A lambda goes by its bytecode (which differs
    between Python versions), not by its source line, which holds the call around it."""
    digest = hashlib.blake2b(digest_size=8)
    while isinstance(function, functools.partial):
        digest.update(_value_text((function.args, sorted(function.keywords.items()))).encode())
        function = function.func
    code = getattr(function, "__code__", None)
    if code is None:  # a callable object: its class's call, and its settings
        digest.update(type(function).__qualname__.encode())
        if hasattr(function, "__dict__"):
            digest.update(_value_text(sorted(vars(function).items())).encode())
        function = type(function).__call__
        code = getattr(function, "__code__", None)
    if code is not None:
        try:  # a lambda's source is its whole line (another fit argument would count)
            if getattr(function, "__name__", "") == "<lambda>":
                raise TypeError
            digest.update(inspect.getsource(function).encode())
        except (OSError, TypeError):
            digest.update(code.co_code)
        digest.update(_code_text(code).encode())
        cells = getattr(function, "__closure__", None) or ()  # values captured: w=1, w=5
        digest.update(_value_text([_cell_value(cell) for cell in cells]).encode())
        owner = getattr(function, "__self__", None)  # a bound method: its object's settings
        if owner is not None and hasattr(owner, "__dict__"):
            digest.update(_value_text(sorted(vars(owner).items())).encode())
        defaults = (
            getattr(function, "__defaults__", None),
            getattr(function, "__kwdefaults__", None),
        )
        digest.update(_value_text(defaults).encode())
    return digest.hexdigest()


def own_classes_digest(thing: object) -> str | None:
    """A digest of the code of ``thing``'s classes that are not wxb's (a schedule
    subclass of one's own): each one's functions (``code_digest``) and plain class
    values, with their names; None where every class is wxb's own."""
    own = [
        cls
        for cls in type(thing).__mro__
        if cls is not object and not cls.__module__.split(".")[0] == "wxb"
    ]
    if not own:
        return None
    digest = hashlib.blake2b(digest_size=8)
    for cls in own:
        digest.update(cls.__qualname__.encode())
        for name, value in sorted(vars(cls).items()):
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, property):
                value = value.fget
            if isinstance(value, types.FunctionType):
                digest.update(f"{name}={code_digest(value)}".encode())
            elif not name.startswith("__"):
                digest.update(f"{name}={_value_text(value)}".encode())
    return digest.hexdigest()


def globals_digest(functions: list[object]) -> tuple[str, list[str]] | None:
    """A digest of the module-level values ``functions``' code reads by name (a global
    STEP = 5 in ``lambda e: 0.5 ** (e // STEP)``; a function it calls, by its code), and
    their names: what ``code_digest`` leaves out. None where they read none."""
    values: dict[str, str] = {}
    for function in functions:
        while isinstance(function, functools.partial):
            function = function.func
        if not isinstance(function, types.FunctionType):  # a callable object: its call
            function = type(function).__call__ if callable(function) else None
        code = getattr(function, "__code__", None)
        scope = getattr(function, "__globals__", None)
        if code is None or not isinstance(scope, dict):
            continue
        todo = [code]
        while todo:
            code = todo.pop()
            todo += [c for c in code.co_consts if isinstance(c, types.CodeType)]
            # names read as globals, not attributes (co_names holds both: self.warm's
            # "warm" read a script's global warm the code never reads)
            read = {
                i.argval
                for i in dis.get_instructions(code)
                if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")
            }
            for name in sorted(read):
                if name not in scope or name in values:
                    continue
                value = scope[name]
                if isinstance(value, (types.ModuleType, type)):
                    continue  # imports and classes: their code is theirs
                values[name] = (
                    code_digest(value)
                    if isinstance(value, types.FunctionType)
                    else _value_text(value)
                )
    if not values:
        return None
    text = _value_text(sorted(values.items()))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest(), sorted(values)


def _cell_value(cell: types.CellType) -> object:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return None


def _code_text(code: types.CodeType) -> str:
    """The constants and global names code uses, nested code's too (whose repr holds an
    address): the same from one Python version to the next, unlike its bytecode."""
    consts = [
        _code_text(c) if isinstance(c, types.CodeType) else _value_text(c) for c in code.co_consts
    ]
    return f"{consts}|{code.co_names}"


def _value_text(value: object) -> str:
    """Plain values as written; arrays by their digest; other objects by type (a repr
    may hold a memory address, which differs from one process to the next)."""
    if isinstance(value, (bool, int, float, str, bytes, type(None))):
        return repr(value)
    if isinstance(value, np.ndarray):
        return f"array {fingerprint(value)}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_value_text(v) for v in value) + ")"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{_value_text(k)}: {_value_text(v)}" for k, v in value.items()) + "}"
        )
    return type(value).__qualname__


def numeric_setup(dtype: np.dtype, engine: str) -> dict[str, Any]:
    """What decides a run's bits besides its inputs: a resume elsewhere matches to rounding."""
    from wxb import __version__

    setup: dict[str, Any] = {
        "wxb": __version__,
        "numpy": np.__version__,
        "dtype": str(dtype),
        "engine": engine,
        "machine": platform.machine(),
    }
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # an optional package (it comes with scikit-learn)
        setup["blas"] = "unknown (threadpoolctl is not installed)"
    else:
        pools = [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]
        # NumPy's own BLAS does wxb's products; others (SciPy's) come and go with imports.
        home = Path(np.__file__).parent
        own = [
            p for p in pools if Path(p.get("filepath", "")).parent.name in (home.name, "numpy.libs")
        ]
        keys = ("internal_api", "version", "architecture", "num_threads")
        setup["blas"] = sorted(
            ([{k: pool.get(k) for k in keys} for pool in own or pools]), key=json.dumps
        )
    return setup


def setup_differences(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The setup entries that differ, as 'name: saved → now'."""
    return [
        f"{key}: {saved.get(key)!r} → {now.get(key)!r}"
        for key in sorted(set(saved) | set(now))
        if saved.get(key) != now.get(key)
    ]


Random = np.random.Generator | np.random.RandomState | random.Random


def _is_generator(value: object) -> bool:
    """A generator whose state a checkpoint keeps: NumPy's, or Python's random.Random
    (``self.rng = random.Random(seed)``; a SystemRandom has no state to keep)."""
    if isinstance(value, random.SystemRandom):
        return False
    return isinstance(value, (np.random.Generator, np.random.RandomState, random.Random))


def generators(
    model: Module, named: list[tuple[str, np.random.Generator | None]]
) -> tuple[list[Random], dict[str, int]]:
    """Every random generator a run draws from: ``named`` ones (shuffling, dropout masks)
    and any a module holds as an attribute, or in a list, tuple or dict that is one (a
    Dropout's own, or a legacy RandomState or Python random.Random of a module of one's
    own). Each distinct generator once; roles map each use to its index, so sharing is
    restored as it was."""
    found: list[Random] = []
    roles: dict[str, int] = {}
    uses = [(role, g) for role, g in named if g is not None]
    for path, module in model.named_modules(remove_duplicate=False):
        for attr, value in vars(module).items():
            for name, generator in _held(attr, value):
                uses.append((f"{path or 'model'}.{name}", generator))
    for role, generator in uses:
        index = next((i for i, seen in enumerate(found) if seen is generator), None)
        if index is None:
            index = len(found)
            found.append(generator)
        roles[role] = index
    return found, roles


def _held(attr: str, value: object) -> list[tuple[str, Random]]:
    """The generators an attribute holds: itself, or those in a list, tuple or dict it
    is (``self.rngs = [np.random.default_rng(s) for s in seeds]``), by their places."""
    if _is_generator(value):
        return [(attr, value)]
    if isinstance(value, (list, tuple)):
        return [(f"{attr}[{i}]", v) for i, v in enumerate(value) if _is_generator(v)]
    if isinstance(value, dict):
        return [(f"{attr}[{k!r}]", v) for k, v in value.items() if _is_generator(v)]
    return []


def held_by(name: str, thing: object) -> list[tuple[str, Random]]:
    """(role, generator) for the generators an object that is not a module holds: a
    loss of one's own (its attributes, as a module's), a function (its closure), or a
    method (its object's attributes)."""
    found: list[tuple[str, Random]] = []
    owner = getattr(thing, "__self__", None)
    if isinstance(thing, types.MethodType) and hasattr(owner, "__dict__"):
        thing, name = thing.__func__, f"{name}.__self__"
        found += [(f"{name}.{role}", g) for a, v in vars(owner).items() for role, g in _held(a, v)]
    if hasattr(thing, "__dict__") and not isinstance(thing, (types.FunctionType, type)):
        for attr, value in vars(thing).items():
            found += [(f"{name}.{role}", g) for role, g in _held(attr, value)]
    for i, cell in enumerate(getattr(thing, "__closure__", None) or ()):
        found += [(f"{name}.{role}", g) for role, g in _held(f"closure[{i}]", _cell_value(cell))]
    return found


def generator_state(generator: Random) -> dict:
    """The generator's state as plain JSON (arrays as lists with their dtype); a
    RandomState's with its cached Gaussian, marked legacy; a random.Random's as
    python_random_state writes Python's own."""
    if isinstance(generator, random.Random):
        version, words, gauss = generator.getstate()
        return {"bit_generator": "Random", "state": [version, list(words), gauss]}
    if isinstance(generator, np.random.RandomState):
        return {"legacy": True, **state_as_json(generator.get_state(legacy=False))}
    return state_as_json(generator.bit_generator.state)


def _kind(generator: Random) -> str:
    if isinstance(generator, random.Random):
        return "Random"
    if isinstance(generator, np.random.RandomState):
        return "RandomState"
    return type(generator.bit_generator).__name__


def numpy_global_state() -> dict:
    """NumPy's global generator (``np.random.normal`` …, which a module or a loss of
    one's own may draw from), as plain JSON."""
    return state_as_json(np.random.get_state(legacy=False))


def set_numpy_global_state(state: object) -> None:
    try:
        np.random.set_state(state_from_json(state))
    except (TypeError, ValueError, KeyError) as exc:
        message = f"the state of NumPy's global generator is damaged ({exc})"
        raise CheckpointFileError(message) from None


def python_random_state() -> list:
    """Python's ``random`` module's generator (``random.gauss`` …), as plain JSON."""
    version, words, gauss = random.getstate()
    return [version, list(words), gauss]


def set_python_random_state(state: object) -> None:
    try:
        version, words, gauss = state  # type: ignore[misc]
        random.setstate((version, tuple(words), gauss))
    except (TypeError, ValueError) as exc:
        message = f"the state of Python's random generator is damaged ({exc})"
        raise CheckpointFileError(message) from None


def set_generator_state(generator: Random, state: dict, role: str) -> None:
    kind = _kind(generator)
    saved = None
    if isinstance(state, dict):
        saved = "RandomState" if state.get("legacy") is True else state.get("bit_generator")
    if saved != kind:
        raise ConfigError(f"the generator for {role} is a {kind}; the checkpoint's was {saved}")
    try:
        if isinstance(generator, random.Random):
            version, words, gauss = state["state"]
            generator.setstate((version, tuple(words), gauss))
        elif isinstance(generator, np.random.RandomState):
            generator.set_state(state_from_json({k: v for k, v in state.items() if k != "legacy"}))
        else:
            generator.bit_generator.state = state_from_json(state)
    except (TypeError, ValueError, KeyError) as exc:
        message = f"the state of the generator for {role} is damaged ({exc})"
        raise CheckpointFileError(message) from None


# -- wxb.get_rng_state / set_rng_state: torch's pair, with a model's own generators ---------
def get_rng_state(model: Module | None = None) -> dict:
    """The default generator's state (``torch.get_rng_state``'s place): a plain dict a
    checkpoint can hold, which ``set_rng_state`` puts back, so Dropout's masks and other
    draws from it go on after a resume as in the uninterrupted run.

    Given the model, also the generators its modules hold (a ``Dropout(seed=…)``'s own,
    by module path), which a rebuilt model would otherwise start again from their seeds:
    ``{"default": …, "modules": {path: state}}``, for ``set_rng_state(state, model)``."""
    if model is None:
        return default_rng_state()
    return {
        "default": default_rng_state(),
        "modules": {path: generator_state(g) for path, g in _held_generators(model).items()},
    }


def set_rng_state(new_state: object, model: Module | None = None) -> None:
    """Put back a state ``get_rng_state`` gave, into the default generator itself (what
    holds it, as ``Dropout`` does each call, draws on from there); a state taken with
    the model goes back with the model, into the generators its modules hold."""
    held = isinstance(new_state, dict) and set(new_state) == {"default", "modules"}
    if held and model is None:
        raise ConfigError(
            "set_rng_state: this state holds the generators of a model's modules "
            f"({', '.join(new_state['modules']) or 'none'}): pass the model too, "
            "wxb.set_rng_state(state, model)"
        )
    if not held:
        if model is not None and (paths := list(_held_generators(model))):
            raise ConfigError(
                "set_rng_state: the model's modules hold generators of their own "
                f"({', '.join(paths)}) this state lacks: save wxb.get_rng_state(model), or "
                "restore with set_rng_state(state) alone"
            )
        set_default_rng_state(new_state)
        return
    default = new_state["default"]  # type: ignore[index]
    kind = default_rng_state()["bit_generator"]
    if not isinstance(default, dict) or default.get("bit_generator") != kind:
        set_default_rng_state(default)  # (refuses it, naming what it got, before any is set)
    _set_held(new_state["modules"], model)  # type: ignore[index]
    set_default_rng_state(default)


def _held_generators(model: object) -> dict[str, Random]:
    """The generators ``model``'s modules hold, by module path and attribute."""
    if not isinstance(model, Module):
        raise ConfigError(f"get_rng_state/set_rng_state take a wxb Module as model; got {model!r}")
    found, roles = generators(model, [])
    return {path: found[index] for path, index in roles.items()}


def _set_held(states: object, model: object) -> None:
    """Each saved generator's state into the model's generator at its path; refused,
    before any is set, where the paths are not the model's."""
    held = _held_generators(model)
    if not isinstance(states, dict) or set(states) != set(held):
        saved = sorted(states) if isinstance(states, dict) else []
        raise ConfigError(
            "set_rng_state: the state's module generators "
            f"({', '.join(saved) or 'none'}) are not the model's ({', '.join(held) or 'none'})"
        )
    for path, generator in held.items():
        set_generator_state(generator, states[path], path)
