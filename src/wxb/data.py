"""Data in and out: the built-in data set, atomic writes, CSV writing, splits.

Reading tables (CSV, JSON Lines, Parquet, Feather, NPY/NPZ, DataFrames) is ``wxb.tables``.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import math
import os
import stat
import struct
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wxb.errors import DataError, ModelFileError, install_hint
from wxb.tables import ARROW_SUFFIXES, COMPRESSED, CSV_SUFFIXES, PARQUET_SUFFIXES

try:
    import fcntl
except ImportError:  # Windows: no advisory locks (a file open there cannot be removed)
    fcntl = None  # type: ignore[assignment]


@dataclass
class Dataset:
    """Features and (optionally) targets as arrays, with their names (the built-in digits)."""

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str]
    target: str | None = None
    source: str = ""

    def row_name(self, row: int) -> str:
        return f"row {row}"


# ---------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------
def load_digits() -> Dataset:
    """scikit-learn's 8×8 handwritten digits (1,797 samples, 64 features, 10 classes)."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise DataError(
            "the built-in digits data ships with scikit-learn, which is not installed: "
            f"{install_hint('scikit-learn', 'datasets')} (or pass --data PATH)"
        ) from None
    bunch = sklearn_digits()
    names = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
    return Dataset(bunch.data.astype(np.float64), bunch.target, names, "digit", "built-in digits")


# other tools' model formats, whose readers refused wxb's safetensors bytes under their
# name (torch.load of a 'model.pt' said "invalid load key", long after the run), and other
# files': wxb train -o, wxb export -o and wxb.save refuse them, wxb predict -o too
OTHER_MODEL_FORMATS = {
    ".onnx": "ONNX",
    **dict.fromkeys((".pt", ".pth"), "PyTorch's torch.save"),
    **dict.fromkeys((".pkl", ".pickle", ".joblib"), "a pickle"),
    ".bin": "PyTorch's pytorch_model.bin",
    ".ckpt": "a PyTorch Lightning or TensorFlow checkpoint",
    **dict.fromkeys((".h5", ".hdf5", ".keras"), "Keras's format"),
    ".pb": "TensorFlow's SavedModel",
    ".tflite": "TensorFlow Lite's format",
    **dict.fromkeys((".npz", ".npy"), "NumPy's format"),
    ".json": "JSON",
    # the names wxb reads as tables, and a report's: a model there overwrote a data file
    # (wxb train --data a.csv -o b.csv), and wxb predict then read b.csv as a CSV
    **dict.fromkeys(CSV_SUFFIXES, "a CSV table"),
    **dict.fromkeys((".jsonl", ".ndjson"), "JSON Lines"),
    **dict.fromkeys(PARQUET_SUFFIXES, "Parquet"),
    **dict.fromkeys(ARROW_SUFFIXES, "Feather/Arrow"),
    **dict.fromkeys(COMPRESSED, "a compressed file"),
    **dict.fromkeys((".xlsx", ".xls"), "Excel's format"),
    **dict.fromkeys((".html", ".htm"), "an HTML page"),
}


def atomic_write(path: str | Path, payload: bytes | list[bytes | memoryview]) -> Path:
    """Write ``payload`` (bytes, or pieces written in turn) to ``path`` via a temporary
    file and a rename.

    A crash leaves either the old file or the new one, never half of one; the new one
    keeps the old one's permissions. A symbolic link is written through (the link
    stays); a device or pipe such as /dev/stdout is written to directly, since it
    cannot be renamed over.
    Missing parent folders are created. Errors name ``path``, not the temporary.
    """
    path = Path(path)
    if path.exists() and not path.is_file():  # (through a link: /dev/stdout to a pipe)
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
        try:
            with open(path, "wb") as handle:
                _write_all(handle, payload)
        except OSError as exc:  # /dev/full: name the path, not only "no space left"
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        return path
    target = path.resolve() if path.is_symlink() else path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        folder = _nearest_existing(target.parent)
        if not folder.is_dir():  # mkdir's own error named the file as existing
            strerror = f"{folder} is a file, not a folder"
            raise NotADirectoryError(errno.ENOTDIR, strerror, str(path)) from None
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    fd, temporary = _held_temporary(target, path)
    try:
        try:  # a file replaced keeps its permissions: a model chmod 600 stays private
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except FileNotFoundError:  # mkstemp makes 0600; a new file gets the usual mode
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(temporary, mode)
        # (with a lock, the descriptor stays open, and the lock held, until the rename)
        with os.fdopen(fd, "wb", closefd=fcntl is None) as handle:
            _write_all(handle, payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        fsync_folder(target.parent)  # the rename itself survives a power cut
    except BaseException as exc:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename != str(path):
            raise OSError(exc.errno, exc.strerror, str(path)) from None  # name the user's path
        raise
    finally:
        if fcntl is not None:
            os.close(fd)  # drops the lock
    return path


def _held_temporary(target: Path, path: Path) -> tuple[int, str]:
    """A new temporary beside ``target`` (open, and where the system has them, locked
    until closed): ``remove_abandoned`` leaves a temporary alone while its writer, in
    this process or another, holds it; the system drops the lock when the writer dies."""
    while True:
        try:
            # the temporary's name adds 14 bytes: a legal name near 255 bytes gets a short one
            fd, temporary = tempfile.mkstemp(
                prefix=f".{target.name}." if len(os.fsencode(target.name)) < 230 else ".wxb.",
                suffix=".tmp",
                dir=target.parent,
            )
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        if fcntl is None:
            return fd, temporary
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # (waits while a clean-up looks at it)
        except OSError:  # a file system without locks (some network mounts): unheld, as
            return fd, temporary  # before (a failed lock failed every save there)
        try:  # a clean-up that locked it first (between mkstemp and here) removed it
            if os.path.samestat(os.fstat(fd), os.stat(temporary)):
                return fd, temporary
        except FileNotFoundError:
            pass
        os.close(fd)


def remove_abandoned(temporary: Path) -> bool:
    """Remove an ``atomic_write`` temporary whose writer is gone (killed, its file left
    behind); one a live writer holds (another thread's or process's save) stays. Whether
    it was removed."""
    if fcntl is None:
        try:  # Windows: a writer's open file cannot be removed
            temporary.unlink(missing_ok=True)
        except PermissionError:
            return False
        return True
    try:
        fd = os.open(temporary, os.O_RDONLY)
    except FileNotFoundError:
        return True
    except OSError:  # unreadable (a mode without read): left as it is
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: a save in progress
            return False
        temporary.unlink(missing_ok=True)  # (under the lock: its writer cannot start now)
        return True
    finally:
        os.close(fd)


def _nearest_existing(folder: Path) -> Path:
    """``folder`` or the nearest of its parents that exists (it may be a file)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _write_all(handle, payload: bytes | list[bytes | memoryview]) -> None:
    for piece in [payload] if isinstance(payload, (bytes, bytearray)) else payload:
        handle.write(piece)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename or a removal in it) to disk, where the system can."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened; renames there are durable anyway
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):  # unsupported there
            raise
    finally:
        os.close(fd)


def check_can_write(
    path: str | Path, what: str, protect: tuple[Path, ...] = (), written: tuple[Path, ...] = ()
) -> Path:
    """Before any work: ``path`` can take ``what`` without destroying something.

    Refuses a folder (or a path that names one, ending in a separator), one of the
    ``protect`` files (a command's own inputs) or of the ``written`` ones (its other
    outputs), a wxb model file that would be overwritten by anything but a model, and a
    checkpoint of states (``wxb.save`` of a dict) by anything at all.
    """
    refuse_folder_name(path, what)
    if str(path) == "-":  # standard output's usual name (wxb predict -o - writes there)
        raise DataError(f"the {what} cannot go to standard output ('-'); give a file path")
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a folder; give a file path for the {what}")
    if path.exists() and (stat.S_ISFIFO(path.stat().st_mode) or stat.S_ISCHR(path.stat().st_mode)):
        return path  # /dev/stdout on a pipe, /dev/null: written to directly (atomic_write)
    try:
        resolved = path.resolve()
    except (RuntimeError, OSError) as exc:  # a symlink loop (Python 3.11 raises RuntimeError)
        raise DataError(f"{path}: cannot write there ({exc})") from None
    for others, role in ((protect, "an input"), (written, "another output")):
        for other in others:
            if resolved == Path(other).resolve() or _same_file(path, Path(other)):
                raise DataError(
                    f"{path} is also {role} of this command; write the {what} elsewhere"
                )
    kind = _wxb_file_kind(path) if path.is_file() else None
    if kind is not None and (kind, what) != ("model", "model"):  # (a model may replace one)
        raise DataError(f"{path} is a wxb {kind} file; refusing to overwrite it with the {what}")
    folder = _nearest_existing(resolved.parent)
    if not folder.is_dir():
        raise DataError(f"{path}: cannot write there ({folder} is a file, not a folder)")
    if not os.access(folder, os.W_OK) or (
        resolved.parent.exists() and not _can_create_in(resolved.parent)
    ):
        raise DataError(f"{path}: cannot write there (folder {folder} is not writable)")
    if not resolved.parent.exists():
        _check_can_make(resolved.parent, folder, path)
    return path


def check_format_name(
    path: str | Path,
    writes: str,
    own: tuple[str, ...],
    fix: str = "",
    error: type[Exception] = DataError,
) -> None:
    """Before any work: refuse a name whose suffix says another format (OTHER_MODEL_FORMATS,
    a wxb model's .safetensors) than ``own``, the suffixes of what ``writes``: a history's
    JSON went over a data file named keep.csv, a report's HTML under a model's name."""
    last = Path(path).suffix.lower()
    others = {**OTHER_MODEL_FORMATS, ".safetensors": "safetensors"}
    if last in own or last not in others:
        return
    hint = f" ({fix})" if fix else ""
    raise error(f"{path}: {writes}, not {others[last]} ({last}); name the file {own[0]}{hint}")


def refuse_folder_name(path: str | Path, what: str, error: type[Exception] = DataError) -> None:
    """A path ending in a separator names a folder: Path() drops the separator, and 'out/'
    became a file named 'out'."""
    if str(path).endswith(("/", os.sep)):
        raise error(f"{path} names a folder; give a file path for the {what}")


def _same_file(path: Path, other: Path) -> bool:
    """Whether two existing names are one file: a hard link, or on a case-insensitive
    disk (macOS, Windows) 'Data.csv' and 'data.csv', which resolve() tells apart."""
    try:
        return os.path.samefile(path, other)
    except (OSError, ValueError):  # (one of them missing)
        return False


def check_folder_name(folder: str | Path, option: str) -> None:
    """A folder option given '-', standard output's usual name, as the file options are
    refused it (check_can_write): it made a folder named '-' in the current one; or
    given nothing ('')."""
    if not str(folder).strip():  # (Path('') is '.': the charts went to the current folder)
        raise DataError(f"{option} is {str(folder)!r}; give a folder path")
    if str(folder) == "-":
        raise DataError(
            f"{option} takes a folder, not standard output ('-'); give a folder path "
            "(./- for a folder named '-')"
        )


def _check_can_make(missing: Path, folder: Path, path: Path) -> None:
    """The folders up to ``missing`` can be made in ``folder``: a folder of a name of its
    own made and removed there at once. os.access cannot tell (as root, /proc answers
    writable, and its folders cannot be made), and the save after training failed there.
    Not the first folder itself: another process checking the same path (the ranks of
    an mpiexec job) would see it come and go, a folder then gone or a file."""
    if folder not in missing.parents:  # made meanwhile, or gone: (the walk up never
        return  # reached folder, and went on for ever at the root)
    first = folder / missing.relative_to(folder).parts[0]
    probe = folder / f".{first.name[:100]}.wxb-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        os.mkdir(probe)
    except OSError as exc:
        reason = exc.strerror or exc
        raise DataError(
            f"{path}: cannot write there (cannot make folder {first}: {reason})"
        ) from None
    os.rmdir(probe)


def _wxb_file_kind(path: Path) -> str | None:
    """The kind of wxb file at ``path``: "model", "checkpoint" (a checkpoint of states
    wxb.save wrote, as precious), or None for any other file."""
    try:
        metadata = read_safetensors_header(path).get("__metadata__") or {}
    except ModelFileError:
        return None
    kinds = {"wxb": "model", "wxb-state": "checkpoint"}
    label = metadata.get("format") if isinstance(metadata, dict) else None
    return kinds.get(label) if isinstance(label, str) else None


MAX_HEADER = 100 * 1024 * 1024
SAFETENSORS_DTYPES = {
    np.dtype(np.float64): "F64",
    np.dtype(np.float32): "F32",
    np.dtype(np.float16): "F16",
    np.dtype(np.int64): "I64",
    np.dtype(np.int32): "I32",
    np.dtype(np.uint8): "U8",
    np.dtype(np.bool_): "BOOL",
    # a checkpoint of states (wxb.save of a dict) holds any of these too
    np.dtype(np.int8): "I8",
    np.dtype(np.int16): "I16",
    np.dtype(np.uint16): "U16",
    np.dtype(np.uint32): "U32",
    np.dtype(np.uint64): "U64",
    np.dtype(np.complex64): "C64",
}


def safetensors_parts(
    tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None
) -> list[bytes | memoryview]:
    """A safetensors file as the pieces to write one after another: the same bytes for
    the same arrays and metadata, and no copy of an array already little-endian and
    C-ordered. (The safetensors library orders the metadata differently in each
    process, so two identical runs would write files that differ.) Layout per the
    format: 8-byte little-endian header length, the JSON header padded with spaces to
    8 bytes, then each tensor's bytes, by name.
    """
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in sorted(metadata.items())}
    parts: list[bytes | memoryview] = []
    offset = 0
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        code = SAFETENSORS_DTYPES.get(array.dtype.newbyteorder("="))
        if code is None:
            raise ValueError(f"{name}: safetensors files here hold no {array.dtype} arrays")
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        data = memoryview(data.reshape(-1).view(np.uint8))
        header[name] = {
            "dtype": code,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        parts.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    if len(text) > MAX_HEADER:  # a file load would refuse: not written
        raise DataError(
            f"the model's metadata (model.info: names, classes, categories) takes "
            f"{len(text) / 2**20:.0f} MiB; a model file holds at most {MAX_HEADER // 2**20} MiB"
        )
    return [struct.pack("<Q", len(text)), text, *parts]


# what a file whose bytes disagree with its digest is
DAMAGED = (
    "its bytes do not match the digest wxb.save wrote (a damaged copy, or changed since by "
    "another tool); use a good copy, or save it again"
)
DIGEST = "digest"  # the metadata key of a wxb file's digest (model files, checkpoints)


def safetensors_digest(parts: list[bytes | memoryview]) -> str:
    """sha256 of a safetensors file's header (its metadata but the digest, and its tensor
    table, as sorted compact JSON) and then of its tensors' bytes, as they lie in the
    file: ``parts`` as ``safetensors_parts`` gives them (length, header, data…)."""
    header = json.loads(bytes(parts[1]))
    header.get("__metadata__", {}).pop(DIGEST, None)
    hasher = hashlib.sha256(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())
    for part in parts[2:]:
        hasher.update(part)
    return f"sha256:{hasher.hexdigest()}"


def digest_matches(metadata: dict, content: bytes) -> bool:
    """Whether a file's bytes agree with the digest its metadata holds (one without a
    digest, an earlier wxb's, does)."""
    recorded = metadata.get(DIGEST)
    if recorded is None:
        return True
    (length,) = struct.unpack("<Q", content[:8])
    view = memoryview(content)
    return recorded == safetensors_digest([view[:8], view[8 : 8 + length], view[8 + length :]])


def safetensors_bytes(
    tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None
) -> bytes:
    """``safetensors_parts`` joined: the whole file's bytes."""
    return b"".join(safetensors_parts(tensors, metadata))


def read_safetensors_header(path: Path) -> dict:
    """The JSON header of a safetensors file, read without the safetensors library."""
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ModelFileError(f"{path}: not a safetensors file (too short)")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER or length > path.stat().st_size - 8:
            _refuse_pickled(path, prefix)
            raise ModelFileError(f"{path}: not a safetensors file (bad header length)")
        try:
            header = json.loads(handle.read(length))
        except (ValueError, RecursionError):  # not JSON, a huge number, absurd nesting
            _refuse_pickled(path, prefix)
            raise ModelFileError(f"{path}: not a safetensors file (header is not JSON)") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: not a safetensors file (header is not a JSON object)")
    return header


def _refuse_pickled(path: Path, prefix: bytes) -> None:
    """A file that is no safetensors and begins as torch.save's zip or a pickle does (its
    protocol 2–5 mark) is named as one: "bad header length" said nothing to a port of
    torch.load(path)."""
    if prefix.startswith(b"PK\x03\x04") or (prefix[0] == 0x80 and 2 <= prefix[1] <= 5):
        raise ModelFileError(
            f"{path}: a PyTorch (torch.save) or pickle file, which wxb never reads (loading "
            "a pickle runs code); in PyTorch, save its tensors with "
            "safetensors.torch.save_file, or hand wxb NumPy arrays to wxb.save"
        )


def _can_create_in(folder: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def write_csv(path: Path, header: list[str], columns: list[np.ndarray]) -> None:
    """Write columns to CSV atomically (temporary file, then rename)."""
    atomic_write(path, csv_text(header, columns).encode())


def csv_text(header: list[str], columns: list[np.ndarray]) -> str:
    """CSV text; numbers in the shortest form that reads back to the same value; a cell
    holding a comma, quote or line break quoted, as every CSV reader expects."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    for row in zip(*columns, strict=True):
        writer.writerow([_format_cell(v) for v in row])
    return text.getvalue()


def _format_cell(value: object) -> str:
    if value is None:  # a missing identifier: an empty cell, as CSV writes a gap
        return ""
    if isinstance(value, np.floating):
        if value.dtype == np.float32 and np.isfinite(value) and abs(value) >= 2.0**24:
            # float32's whole numbers as they are: its shortest form, 1.0000003e+08, reads
            # back in float64 as 100000030, not the 100000032 the model gave (and scored)
            return repr(float(value))
        return str(value)  # NumPy's shortest round-trip form for the value's own precision
    if isinstance(value, float):
        return repr(value)
    return str(value)


# ---------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------
def split_indices(
    n: int,
    fraction: float,
    rng: np.random.Generator,
    labels: np.ndarray | None = None,
    what: str = "a split fraction",
    exact: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held_out) index arrays; stratified by ``labels`` when given. Unstratified,
    max(1, round(n·fraction)) rows are held out; by class, within a row of n·fraction
    (the CLI's documented splits), or, ``exact``, that count too (fit's)."""
    if not 0 < fraction < 1:
        raise DataError(f"{what} must be between 0 and 1; got {fraction}")
    if labels is None:
        order = rng.permutation(n)
        cut = n - max(1, round(n * fraction))
        if cut < 1:
            raise DataError(f"{what}: {n} samples are too few to hold out {fraction:.0%}")
        return np.sort(order[:cut]), np.sort(order[cut:])
    # each class's rows in order (one sort, not a pass over the rows per class)
    inverse = np.unique(labels, return_inverse=True)[1].reshape(-1)
    by_class = np.split(np.argsort(inverse, kind="stable"), np.cumsum(np.bincount(inverse))[:-1])
    classes = [rng.permutation(members) for members in by_class]
    sizes = np.array([len(members) for members in classes])
    quotas = sizes * fraction
    takes = np.array([round(q) for q in quotas])
    # Each class rounds on its own; when that leaves the whole a row or more off n·fraction
    # (ten classes of 3 rows at 0.2 held out 10, not 6), or, ``exact``, off the plain
    # count at all (classes of 11 and 6 rows at 0.25 held out 5 where round(17 × 0.25) is
    # 4, fit's documented count; scikit-learn's stratified split keeps its plain count
    # too), the rows that rounding added or dropped go back where the quotas' remainders
    # say, as in a largest-remainder count. (None held out at all: a small table whose
    # classes each round to 0 gives one row, as the unstratified split does; all of them:
    # two rows of two classes at 0.6 each rounded to 1, and the split was refused where
    # the unstratified one keeps a row.)
    target = max(1, round(n * fraction))
    off = takes.sum() != target if exact else abs(takes.sum() - n * fraction) >= 1
    if off or takes.sum() in (0, n):
        remainder = quotas - takes
        rank = rng.permutation(len(classes))  # equal remainders: no class always first
        while (gap := target - takes.sum()) != 0:
            if gap > 0:  # a class keeps a row for training while another can give one
                room = takes < sizes - 1
                room = room if room.any() else takes < sizes
                order = np.where(room, -remainder, np.inf)  # the largest remainder first
            else:
                order = np.where(takes > 0, remainder, np.inf)  # the smallest first
            k = np.lexsort((rank, order))[0]
            step = 1 if gap > 0 else -1
            takes[k] += step
            remainder[k] -= step
    held = [members[:take] for members, take in zip(classes, takes, strict=True)]
    held_out = np.sort(np.concatenate(held))
    if len(held_out) == 0 or len(held_out) == n:
        raise DataError(f"{what}: {n} samples are too few to hold out {fraction:.0%}")
    kept = np.setdiff1d(np.arange(n), held_out)
    return kept, held_out


def encode_floats(value: Any) -> Any:
    """Strict JSON: NaN and ±inf (a diverging figure in the history) as tagged strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if isinstance(value, dict):
        return {k: encode_floats(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_floats(v) for v in value]
    return value


def decode_floats(value: Any) -> Any:
    """encode_floats' tagged strings as the floats they stand for."""
    if isinstance(value, dict):
        if set(value) == {"__float__"}:
            return float(value["__float__"])
        return {k: decode_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_floats(v) for v in value]
    return value
