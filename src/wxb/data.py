"""Data in and out: the built-in data set, CSV/NPZ readers, atomic writes, splits."""

from __future__ import annotations

import csv
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wxb.errors import DataError
from wxb.validation import as_features, check_finite, check_lengths


@dataclass
class Dataset:
    """Features and (optionally) targets read from a file, with the names they came with."""

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str]
    target: str | None = None
    source: str = ""
    extra: dict[str, object] = field(default_factory=dict)


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
            "pip install 'wxb[datasets]' (or pass --data PATH)"
        ) from None
    bunch = sklearn_digits()
    names = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
    return Dataset(bunch.data.astype(np.float64), bunch.target, names, "digit", "built-in digits")


def read_data(
    path: str | Path, target: str | None = None, features: list[str] | None = None
) -> Dataset:
    """A CSV file (with a header row; ``target`` names the label column) or an NPZ (X, y).

    For CSV, ``features`` picks the feature columns by name (others are ignored);
    by default every column but the target is a feature.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return read_npz(path)
    if suffix in (".csv", ".txt", ".tsv"):
        return read_csv(path, target, features)
    raise DataError(f"{path}: unknown data format {suffix!r}; use .csv or .npz")


def read_npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as archive:  # never unpickle
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable NPZ file ({exc})") from None
    if "X" not in arrays:
        raise DataError(f"{path}: NPZ needs an array named 'X' (found {sorted(arrays)})")
    X = arrays["X"]
    X = as_features(X, np.float64, where=f"{path}: X")
    y = arrays.get("y")
    if y is not None:
        check_lengths(X, y, str(path))
    names = [f"x{i}" for i in range(X.shape[1])]
    return Dataset(X, y, names, "y" if y is not None else None, str(path))


def read_csv(path: Path, target: str | None = None, features: list[str] | None = None) -> Dataset:
    """Numeric feature columns; the target column may hold strings (class names)."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle, delimiter=delimiter))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read as UTF-8 CSV ({exc})") from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise DataError(f"{path}: the file is empty")
    header = [name.strip() for name in rows[0]]
    body = rows[1:]
    if not body:
        raise DataError(f"{path}: has a header but no data rows")
    if target is not None and target not in header:
        raise DataError(f"{path}: no column {target!r} (columns: {', '.join(header)})")
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(
                f"{path}, line {number}: {len(row)} values but the header has {len(header)}"
            )
    if features is None:
        feature_names = [name for name in header if name != target]
    else:
        missing = [name for name in features if name not in header]
        if missing:
            raise DataError(f"{path}: missing feature column(s) {', '.join(map(repr, missing))}")
        feature_names = list(features)
    columns = {name: [row[i].strip() for row in body] for i, name in enumerate(header)}
    X = np.empty((len(body), len(feature_names)), dtype=np.float64)
    for j, name in enumerate(feature_names):
        X[:, j] = _numeric_column(columns[name], path, name)
    check_finite(X, str(path))
    y = None
    if target is not None:
        raw = columns[target]
        for line, cell in enumerate(raw, start=2):
            if cell == "":
                raise DataError(f"{path}, line {line}: empty value in target column {target!r}")
        try:
            y = np.array([float(cell) for cell in raw])
            check_finite(y, f"{path}: target column {target!r}")
        except ValueError:
            y = np.array(raw)  # class names
    return Dataset(X, y, feature_names, target, str(path))


def _numeric_column(cells: list[str], path: Path, name: str) -> np.ndarray:
    values = np.empty(len(cells))
    for line, cell in enumerate(cells, start=2):
        try:
            values[line - 2] = float(cell)
        except ValueError:
            what = "an empty value" if cell == "" else f"{cell!r}, not a number"
            raise DataError(f"{path}, line {line}, column {name!r}: {what}") from None
        if not np.isfinite(values[line - 2]):
            raise DataError(f"{path}, line {line}, column {name!r}: {cell} is not a finite number")
    return values


def atomic_write(path: str | Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes 0600; a saved file gets the usual mode
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_csv(path: Path, header: list[str], columns: list[np.ndarray]) -> None:
    """Write columns to CSV atomically (temporary file, then rename)."""
    lines = [",".join(header)]
    for row in zip(*columns, strict=True):
        lines.append(",".join(_format_cell(v) for v in row))
    atomic_write(path, ("\n".join(lines) + "\n").encode())


def _format_cell(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


# ---------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------
def split_indices(
    n: int,
    fraction: float,
    rng: np.random.Generator,
    labels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held_out) index arrays; stratified by ``labels`` when given."""
    if not 0 < fraction < 1:
        raise DataError(f"a split fraction must be between 0 and 1; got {fraction}")
    if labels is None:
        order = rng.permutation(n)
        cut = n - max(1, round(n * fraction))
        if cut < 1:
            raise DataError(f"{n} samples are too few to hold out {fraction:.0%}")
        return np.sort(order[:cut]), np.sort(order[cut:])
    held: list[np.ndarray] = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        take = round(len(members) * fraction)
        held.append(members[:take])
    held_out = np.sort(np.concatenate(held))
    if len(held_out) == 0 or len(held_out) == n:
        raise DataError(f"{n} samples are too few to hold out {fraction:.0%}")
    kept = np.setdiff1d(np.arange(n), held_out)
    return kept, held_out
