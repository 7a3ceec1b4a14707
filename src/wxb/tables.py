"""Tables in: CSV (delimiter sniffed, compressed or not), JSON Lines, Parquet, Feather/Arrow,
NPY/NPZ, and pandas or pyarrow tables, read through pyarrow into named, typed columns.

A ``Table`` is what every reader returns: columns by name, each a number, boolean,
text or date column with its missing cells marked. Nothing here decides what a
column is *for* (feature, target, identifier): that is ``wxb.columns``.
"""

from __future__ import annotations

import atexit
import codecs
import csv
import difflib
import io
import json
import re
import shlex
import sys
import threading
import time
import weakref
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from wxb.errors import DataError

# Cells read as missing in every text format, as pandas reads them (its default
# na_values, the NaN that old Windows C runtimes print, '-1.#IND', included), and '?' (the
# UCI repository's habit). ``na_values`` adds to these. In a column of numbers NaN in any
# case ('NAN', 'Nan') is missing too, as Python's float() and pyarrow read it (pandas
# makes such a column text): it can mean nothing else.
NA_VALUES = (
    "", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "NULL", "null", "None", "<NA>",
    "#N/A", "#N/A N/A", "#NA", "-1.#IND", "1.#IND", "-1.#QNAN", "1.#QNAN", "?",
)  # fmt: skip
CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".data")
COMPRESSED = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".zstd": "zstd", ".lz4": "lz4"}
PARQUET_SUFFIXES = (".parquet", ".pq")
ARROW_SUFFIXES = (".feather", ".arrow", ".arrows", ".ipc")  # .arrows: the IPC stream format
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")


@dataclass
class Column:
    """One column: ``values`` is float (NaN where missing) or int64 for numbers, float
    0/1 (NaN where missing) for booleans, an object array of str (None where missing)
    for text, and datetime64 for dates."""

    name: str
    kind: str
    values: np.ndarray
    integer: bool = False  # numbers that are all whole (an integer type in the file)

    @property
    def missing(self) -> np.ndarray:
        if self.kind == "text":
            return np.array([v is None for v in self.values], dtype=bool)
        if self.values.dtype.kind == "f":
            return np.isnan(self.values)
        if self.values.dtype.kind == "M":
            return np.isnat(self.values)
        return np.zeros(len(self.values), dtype=bool)

    def take(self, rows: np.ndarray) -> Column:
        return Column(self.name, self.kind, self.values[rows], self.integer)

    def __repr__(self) -> str:  # not every cell: a column may hold a million
        missing = int(self.missing.sum())
        gaps = f", {missing} missing" if missing else ""
        return f"Column({self.name!r}, {self.kind}, {len(self.values)} rows{gaps})"


@dataclass
class Table:
    """Named columns of equal length, and where they came from."""

    columns: dict[str, Column]
    source: str = "table"
    n_rows: int = 0
    line_of_row: Any = field(default=None, repr=False)  # row → file line, for messages
    default_targets: list[str] = field(default_factory=list)  # an NPZ's y array
    positional: bool = False  # columns named x0, x1, … by wxb (an array): order is all
    decimal: str = "."  # the CSV's decimal mark: what text of numbers means in it
    csv: bool = False  # read from a CSV file: --decimal applies to it (not JSON, Parquet)
    unread: list[str] = field(default_factory=list)  # the file's columns left unread
    # number columns a reader found free of ±inf as it wrote them (check_values skips them)
    finite: frozenset[str] = field(default=frozenset(), repr=False)

    def __repr__(self) -> str:  # the columns' names and kinds, not every cell
        kinds = ", ".join(f"{name}: {c.kind}" for name, c in self.columns.items())
        return f"Table({self.source!r}, {self.n_rows} rows; {kinds})"

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    @property
    def file_names(self) -> list[str]:
        """Every column the source has, read or not (for messages that list them)."""
        return [*self.columns, *self.unread]

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    def __getitem__(self, name: str) -> Column:
        if name not in self.columns:
            raise DataError(f"{self.source}: {no_column(name, self.file_names)}")
        return self.columns[name]

    def row_name(self, row: int) -> str:
        """Where data row ``row`` (from 0) is, as a user finds it in the file."""
        if self.line_of_row is not None:
            return f"line {self.line_of_row(row)}"
        return f"row {row}"

    def take(self, rows: np.ndarray) -> Table:
        """The table's rows ``rows`` (row names then count in the new table)."""
        rows = np.asarray(rows)
        columns = {name: column.take(rows) for name, column in self.columns.items()}
        lines = None
        if self.line_of_row is not None:
            old = self.line_of_row

            def lines(row: int) -> int | str:
                return old(int(rows[row]))

        return Table(
            columns, self.source, len(rows), lines, self.default_targets, self.positional,
            self.decimal, self.csv, self.unread,
        )  # fmt: skip

    def row_names(self, rows: np.ndarray, limit: int = 3) -> str:
        """'line 4, line 9 and 2 more' for the first few of ``rows``."""
        named = [self.row_name(int(r)) for r in rows[:limit]]
        more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
        return ", ".join(named) + more


# ---------------------------------------------------------------------------------
# Front door
# ---------------------------------------------------------------------------------
def read_table(
    source: object,
    *,
    sep: str | None = None,
    na_values: Iterable[str] = (),
    encoding: str = "utf-8",
    comment: str | None = None,
    decimal: str | None = None,
    x_array: str | None = None,
    y_array: str | None = None,
    float32: bool = False,
    as_text: Iterable[str] = (),
    keep_float64: Iterable[str] = (),
    only: Iterable[str] | None = None,
    skip: Iterable[str] = (),
    skip_whole: str | None = None,
    targets: Iterable[str] = (),
    exact: Iterable[str] = (),
    no_rows: bool = False,
) -> Table:
    """A ``Table`` from a path or from a pandas DataFrame, pyarrow Table, dict of
    columns or 2-D NumPy array.

    Paths: CSV (``.csv``, ``.tsv``, ``.txt``, ``.data``, optionally ``.gz``/``.bz2``/
    ``.zst``; delimiter sniffed unless ``sep``), JSON Lines (``.jsonl``, ``.ndjson``,
    ``.json``: one object per line, compressed too), Parquet, Feather/Arrow, ``.npy``
    (a 2-D array; columns x0, x1, …) and ``.npz`` (``x_array``, default ``X``, and
    ``y_array``, default ``y``, which becomes the column ``y``). ``float32``: read
    number columns as float32 where the format allows (half the memory), except the
    ``keep_float64`` ones (targets, identifiers). ``as_text``: columns read as text,
    exactly as written (a model's categories and identifiers: '02134' stays '02134').
    Text cells that are a missing marker (``NA_VALUES`` and ``na_values``) are missing
    whatever the source. ``only`` and ``skip``: a file's columns to read (where it has
    any of ``only``), and columns not to read (``skip``, or ``skip_whole`` alone where the
    file has a column of that name: --drop a,b); the others are in ``Table.unread``.
    ``targets``: a CSV's target columns, whose codes stay text ('007' and '7' are two
    classes). ``exact``: text columns whose cells are never missing markers (identifiers:
    'NA' is Namibia). ``no_rows``: a CSV file may hold a header alone (wxb predict's:
    no rows to predict), else refused.
    """
    columns = Reading(
        tuple(na_values), float32, frozenset(as_text), frozenset(keep_float64),
        None if only is None else frozenset(only), frozenset(skip), skip_whole, frozenset(targets),
        frozenset(exact), no_rows,
    )  # fmt: skip
    if isinstance(source, (str, Path)):
        return read_path(
            Path(source),
            sep=sep,
            encoding=encoding,
            comment=comment,
            decimal=decimal,
            x_array=x_array,
            y_array=y_array,
            reading=columns,
        )
    return from_object(source, reading=columns)


@dataclass(frozen=True)
class Reading:
    """How columns are read whatever the format: more missing markers, float32 numbers
    (but not ``keep_float64``), and columns kept as text."""

    na_values: tuple[str, ...] = ()
    float32: bool = False
    as_text: frozenset[str] = frozenset()
    keep_float64: frozenset[str] = frozenset()
    # Columns a run never uses are not read: a time-of-day or list column, an 'inf'
    # or a byte that is not text there must not stop it
    only: frozenset[str] | None = None  # read just these, where the file has any (None: all)
    skip: frozenset[str] = frozenset()  # never read (--drop a,b) …
    skip_whole: str | None = None  # … but this alone where the file has a column 'a,b'
    targets: frozenset[str] = frozenset()  # a CSV's: typed from their text (_typed_target)
    exact: frozenset[str] = frozenset()  # text with no missing markers: 'NA' is an identifier
    no_rows: bool = False  # a CSV of a header and a line break alone is a table of no rows

    @property
    def markers(self) -> list[str]:
        return list(dict.fromkeys([*NA_VALUES, *self.na_values]))

    @property
    def every_column(self) -> Reading:
        """The same reading of columns already chosen (a file reader's)."""
        return replace(self, only=None, skip=frozenset(), skip_whole=None)

    def wanted(self, names: list[str]) -> list[str]:
        """The columns of ``names`` to read: all of them unless asked otherwise (and
        all, when none of ``only`` is there: the messages then name what the file has)."""
        skip = {self.skip_whole} if self.skip_whole in names else self.skip
        chosen = [n for n in names if n not in skip]
        if self.only is not None and any(n in self.only for n in chosen):
            chosen = [n for n in chosen if n in self.only]
        return chosen or names


BOOLEAN_TEXT = ("true", "false")  # a text column of only these (any case) is booleans
# other ways to write a truth value, read as words (as pandas reads them): a boolean
# column's 'no' is false, not the missing value a word among numbers may mark
TRUTH_WORDS = {"yes": "true", "y": "true", "t": "true", "on": "true",
               "no": "false", "n": "false", "f": "false", "off": "false"}  # fmt: skip


def near_column(name: str, columns: list[str]) -> str | None:
    """The column of ``columns`` that a mistyped ``name`` most likely meant: the one that
    differs only in case, else the nearest in spelling (difflib), where one is near."""
    same = [c for c in columns if c.casefold() == str(name).casefold()]
    if same:
        return same[0]
    lowered = {c.casefold(): c for c in columns}
    close = difflib.get_close_matches(str(name).casefold(), list(lowered), n=1, cutoff=0.8)
    return lowered[close[0]] if close else None


def no_column(name: str, columns: list[str]) -> str:
    """ "no column 'Species'; did you mean 'species'? (columns: …)": what every option that
    names a column (--target, --features, --drop, --id-column, …) says of a missing one."""
    near = near_column(name, columns)
    hint = f"; did you mean {near!r}?" if near is not None else ""
    return f"no column {name!r}{hint} (columns: {', '.join(columns)})"


def is_tabular(X: object) -> bool:
    """A pandas DataFrame, a pyarrow Table or a dict of columns (not an array)."""
    kind = type(X).__module__.split(".")[0]
    if isinstance(X, (dict, Table)):
        return True
    return kind in ("pandas", "pyarrow") and hasattr(X, "columns")


def column_names(X: object) -> list[str]:
    """The column names of a table ``is_tabular`` accepts, in its order, as the reader
    names them: without the spaces around them, an empty one 'Unnamed: N', and not
    pandas' index stored in a pyarrow Table ('__index_level_0__')."""
    if isinstance(X, Table):
        return X.names
    if isinstance(X, dict):
        raw = [str(name) for name in X]
    else:
        names = getattr(X, "column_names", None)  # pyarrow
        raw = [str(name) for name in (names if names is not None else X.columns)]
        if names is not None and hasattr(X, "schema"):
            index = _pandas_index_columns(X.schema)
            raw = [name for name in raw if name not in index]
    return [name.strip() or f"Unnamed: {i}" for i, name in enumerate(raw)]


def target_names(y: object, width: int) -> list[str] | None:
    """The names of a target as wxb train records them (``info["targets"]``): a pandas
    Series' name, or a table's columns; None for an array, an unnamed Series, or names
    that do not number ``width`` (the target's columns)."""
    names = column_names(y) if is_tabular(y) else None
    series = type(y).__module__.split(".")[0] == "pandas" and getattr(y, "ndim", 0) == 1
    if series and y.name is not None:
        names = [str(y.name)]
    return names if names and len(names) == width else None


_SCALARS = (str, int, float, bool, np.integer, np.floating, np.bool_)


def _mixed_as_text(frame: Any) -> Any:
    """``frame`` with each object column that mixes kinds of cells (floats beside a word,
    as pandas keeps a column given 'n.a.' by hand or read from Excel; int codes beside
    text codes) as its cells' text, gaps None, as a file's cells are read: then a
    number written as text is that number and a word is named, where pyarrow refused
    the whole column with its own message. Other object columns are left to pyarrow."""
    import pandas as pd

    pa = _pyarrow()
    mixed = {}
    for place, dtype in enumerate(frame.dtypes):
        if dtype.kind != "O":
            continue
        cells = frame.iloc[:, place]
        gaps = pd.isna(cells).to_numpy()
        kinds = {type(v) for v in cells[~gaps]}
        if len(kinds) < 2 or not all(issubclass(kind, _SCALARS) for kind in kinds):
            continue
        try:
            pa.array(cells, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            mixed[place] = [None if gap else str(v) for v, gap in zip(cells, gaps, strict=True)]
    if not mixed:
        return frame
    frame = frame.copy()
    for place, text in mixed.items():
        frame.isetitem(place, pd.Series(text, index=frame.index, dtype=object))
    return frame


def from_object(data: object, source: str = "table", reading: Reading | None = None) -> Table:
    """A Table from a pandas DataFrame, a pyarrow Table, a dict of columns or a 2-D array."""
    reading = reading or Reading()
    if isinstance(data, Table):
        return data
    module = type(data).__module__.split(".")[0]
    pa = _pyarrow()
    if module == "pandas" and hasattr(data, "columns"):
        names = [str(c) for c in data.columns]
        _refuse_duplicates(names, source)
        chosen = set(reading.wanted([n.strip() for n in names]))  # (a set: 20,000 columns)
        if len(chosen) < len(names):  # the columns a model reads: the others not converted
            data = data[[c for c in data.columns if str(c).strip() in chosen]]
        try:
            try:
                arrow = pa.Table.from_pandas(data, preserve_index=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                text = _mixed_as_text(data)  # looked for only where pyarrow refused
                if text is data:
                    raise
                arrow = pa.Table.from_pandas(text, preserve_index=False)
        except OverflowError:  # Python ints past 64 bits (20-digit codes pandas read)
            raise DataError(
                f"{source}: a column holds whole numbers too large for 64 bits (20-digit "
                "codes?); read it as text, e.g. pd.read_csv(..., dtype={'column': str})"
            ) from None
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError) as exc:
            raise DataError(f"{source}: a column cannot be read ({exc})") from None
        table = from_arrow(arrow, source, reading)
        table.unread = [n.strip() for n in names if n.strip() not in chosen]  # (as a file's)
        return check_values(table)
    if module == "pyarrow" and hasattr(data, "column_names"):
        if isinstance(data, pa.RecordBatch):  # one batch: as a table of one chunk
            data = pa.Table.from_batches([data])
        index = _pandas_index_columns(data.schema) if hasattr(data, "schema") else set()
        if index:  # a Table read from a pandas-written file: its index is not data
            data = data.drop_columns([n for n in data.column_names if n in index])
        return check_values(from_arrow(data, source, reading))
    if isinstance(data, dict):
        names = [str(name).strip() for name in data]  # as a file's header: no spaces around
        _refuse_duplicates(names, source)
        chosen = set(reading.wanted(names))  # the columns a model reads: the others not read
        columns = {}
        for name, values in zip(names, data.values(), strict=True):
            if name not in chosen:
                continue
            array = np.asarray(values)
            if array.ndim != 1:
                raise DataError(f"{source}: column {name!r} must be 1-D; got shape {array.shape}")
            columns[name] = _column_from_numpy(
                name, array, source, reading.markers, name in reading.as_text
            )
        table = _checked(columns, source)
        table.unread = [name for name in names if name not in chosen]
        return check_values(table)
    array = np.asarray(data)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise DataError(f"{source} must be 2-D (samples × features); got shape {array.shape}")
    return from_matrix(array, source)


def from_matrix(array: np.ndarray, source: str, prefix: str = "x") -> Table:
    """Columns x0, x1, … of a 2-D array (views: nothing is copied)."""
    columns = {
        f"{prefix}{j}": _column_from_numpy(f"{prefix}{j}", array[:, j], source)
        for j in range(array.shape[1])
    }
    table = check_values(_checked(columns, source))
    table.positional = True
    return table


def read_path(path: Path, **options: Any) -> Table:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path} is a folder; give a data file")
    suffixes = [s.lower() for s in path.suffixes]
    last = suffixes[-1] if suffixes else ""
    inner = suffixes[-2] if last in COMPRESSED and len(suffixes) > 1 else last
    reading = options["reading"]
    if last == ".npz":
        return read_npz(path, options["x_array"], options["y_array"])
    named = [f"--{k.replace('_', '-')}" for k in ("x_array", "y_array") if options.get(k)]
    if named:  # (it would be ignored: the file's columns are read as they are)
        raise DataError(
            f"{path}: {' and '.join(named)} name{'s' if len(named) == 1 else ''} arrays of an "
            "NPZ file; this file has columns (use --target and --features)"
        )
    if last == ".npy":
        return read_npy(path)
    if last in PARQUET_SUFFIXES:
        return read_parquet(path, reading)
    if last in ARROW_SUFFIXES:
        return read_feather(path, reading)
    if inner in JSON_SUFFIXES:
        return read_json_lines(path, COMPRESSED.get(last), reading)
    if inner in CSV_SUFFIXES or (last in COMPRESSED and inner not in (".npy", ".npz")):
        return read_csv(path, compression=COMPRESSED.get(last), **_csv_options(options))
    raise DataError(
        f"{path}: unknown data format {last!r}; use CSV (.csv, .tsv, .txt, also .gz/.zst), "
        "JSON Lines (.jsonl), Parquet (.parquet), Feather (.feather/.arrow), .npy or .npz"
    )


def _csv_options(options: dict[str, Any]) -> dict[str, Any]:
    keys = ("sep", "encoding", "comment", "decimal", "reading")
    return {k: options[k] for k in keys}


# ---------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------
def read_csv(
    path: Path,
    *,
    compression: str | None = None,
    sep: str | None = None,
    encoding: str = "utf-8",
    comment: str | None = None,
    decimal: str | None = None,
    reading: Reading | None = None,
) -> Table:
    """A CSV file with a header row, through pyarrow's multi-threaded reader (``_read_csv``).

    A short or long row holding bytes that are not ``encoding`` text: pyarrow fails to
    decode its text before the handler of bad rows is called, printed that failure as
    'Exception ignored in … on_bad_row' with a traceback, and its error the row's bytes;
    it is said in one line instead, by the row's line."""
    undecodable: list[BaseException] = []
    _swap_unraisablehook(+1)
    try:
        return _read_csv(path, compression=compression, sep=sep, encoding=encoding,
                         comment=comment, decimal=decimal, reading=reading,
                         undecodable=undecodable)  # fmt: skip
    except DataError as exc:
        if not undecodable:
            raise
        found = re.search(r"Expected (\d+) columns, got (\d+): (.*)\)$", str(exc))
        line = found and _line_of_text(path, compression, encoding, found.group(3), comment)
        where = (
            f", line {line}: {found.group(2)} values but the header has {found.group(1)}"
            if line
            else ": a row"
        )
        raise DataError(
            f"{path}{where}; it holds bytes that are not {encoding} text: give the file's "
            "--encoding (e.g. latin-1)"
        ) from None
    finally:
        _swap_unraisablehook(-1)


# One hook for all reads at once (threads): each read swapping in its own chained them,
# a row's failure went to the read on top, and the hook stayed another's after both ended.
# A failure goes to the list its own handler of bad rows carries.
_hook_lock = threading.Lock()
_hook_reads = 0
_hook_previous: Any = None


def _undecodable_row(unraisable: Any) -> None:
    found = getattr(unraisable.object, "undecodable", None)
    if isinstance(found, list) and isinstance(unraisable.exc_value, UnicodeDecodeError):
        found.append(unraisable.exc_value)
    else:
        _hook_previous(unraisable)


def _swap_unraisablehook(change: int) -> None:
    global _hook_reads, _hook_previous
    with _hook_lock:
        if change > 0 and _hook_reads == 0:
            _hook_previous, sys.unraisablehook = sys.unraisablehook, _undecodable_row
        _hook_reads += change
        if _hook_reads == 0 and sys.unraisablehook is _undecodable_row:
            sys.unraisablehook = _hook_previous


def _read_csv(
    path: Path,
    *,
    compression: str | None = None,
    sep: str | None = None,
    encoding: str = "utf-8",
    comment: str | None = None,
    decimal: str | None = None,
    reading: Reading | None = None,
    undecodable: list[BaseException] | None = None,
) -> Table:
    """A CSV file with a header row, through pyarrow's multi-threaded reader.

    Number columns are read straight to their final type (float32 when asked) from
    a first look at the file, so a large file is held once, not as text and then as
    numbers. A row with too many or too few cells is reported by its line.
    """
    pa, pcsv = _pyarrow(), _pyarrow_csv()
    reading = reading or Reading()
    source = str(path)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"--encoding {encoding!r} is not an encoding Python knows") from None
    if comment == "":  # every line starts with '': all would be dropped, 'the file is empty'
        raise DataError("--comment must be the character comment lines start with, e.g. '#'")
    raw_sample = _sample_bytes(path, compression, lines=SAMPLE_LINES)
    # the header and a few rows, however long (the delimiter and decimal mark are looked
    # for there); the other looks take 64 KiB of them, as their regexes take 0.1 s a MiB
    rows = _sample_text(raw_sample, path, encoding)
    sample = rows[:SAMPLE_SIZE]
    excel = re.match(r"\s*sep=(.)[ \t]*(\r?\n|\r|$)", sample, flags=re.IGNORECASE)  # '\r': old Mac
    if excel and comment is None:  # else its header is 'sep=', and the real one a data row
        raise DataError(
            f"{source}: the first line, 'sep={excel.group(1)}', is Excel's separator line, not "
            "a header; delete it, or add --comment sep="
        )
    if comment is not None:  # the delimiter and the decimal mark come from the data lines
        lines = rows.splitlines()
        rows = "\n".join(lines[i] for i in _uncommented(lines, comment, '"', sep or ",;\t|"))
        sample = rows[:SAMPLE_SIZE]
    if sep is None:
        sep = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else _sniff(rows)
    if len(sep) != 1:
        raise DataError(f"--sep must be one character; got {sep!r}")
    if decimal is None:  # '1,5;2,25': the comma is the decimal mark where ';' or a tab separates
        decimal = "," if _comma_decimals(rows, sep) else "."
    if decimal == sep:
        raise DataError(
            f"{source}: the decimal mark {decimal!r} is the file's separator too; give --sep "
            "(e.g. ';') or another --decimal"
        )
    stream: Any = path if compression is None else _pyarrow().input_stream(str(path), compression)
    if comment is not None:
        stream = _without_comments(path, compression, comment, sep, encoding)
    null_values = reading.markers
    bad_rows: list[Any] = []

    def on_bad_row(row: Any) -> str:
        if row.text is not None and not row.text.strip():
            return "skip"  # a line of spaces alone is blank (pandas skips it), not a short row
        bad_rows.append(row)
        return "skip"

    on_bad_row.undecodable = undecodable  # type: ignore[attr-defined]  # (where its failures go)
    _held_by_arrow(on_bad_row)

    # Line breaks inside quoted cells (free-text notes): pyarrow then splits its blocks
    # more slowly, so only where the sample shows one (or a block's rows do not fit)
    parse = pcsv.ParseOptions(
        delimiter=sep, invalid_row_handler=on_bad_row,
        newlines_in_values=_quoted_line_breaks(sample, sep),
    )  # fmt: skip
    read = pcsv.ReadOptions(encoding=encoding, block_size=1 << 20)
    spaces_checked, blanked = False, None
    while True:
        try:
            types = _first_look_types(stream, read, parse, null_values, decimal, reading, source)
        except _ReadAgain:
            stream = _rewound(stream, path, compression)
            continue
        except _Empty:  # pyarrow's word for a header alone without a line break too
            held = _all_in_sample(path, compression, len(raw_sample))
            if reading.no_rows and rows.strip() and held:
                # (predict's) that header with its line break: a table of no rows, as
                # pandas reads the file
                stream, read.encoding = io.BytesIO((rows + "\n").encode()), "utf-8"
                continue
            what = "has a header but no data rows" if sample.strip() else "the file is empty"
            raise DataError(f"{source}: {what}") from None
        if len(types) == 1 and not spaces_checked:
            # one column: a line of spaces alone is a cell of spaces to pyarrow, a row too
            # many (a gap) that shifted the rows after it; pandas skips it as blank
            spaces_checked = True
            blanked = _without_space_lines(stream, path, compression)
            if blanked is not None:  # looked at again, the header from the file
                stream, read.column_names, read.skip_rows_after_names = blanked, [], 0
                continue
        break
    if read.skip_rows_after_names and blanked is None:  # the header is skipped, renamed:
        lines = sample.splitlines()  # pyarrow counts empty lines before it (none in blanked)
        read.skip_rows = next((i for i, line in enumerate(lines) if line.lstrip("\ufeff")), 0)
    header = list(types)
    _refuse_duplicates(header, source)
    read_names = reading.wanted(header)
    scored = reading.keep_float64 - reading.targets  # a saved model's target, as trained
    for name in _coarsened_in(sample, types, parse, null_values, decimal):
        types[name] = pa.float64()  # a timestamp near 1.7e9: float32 would step by 128
    if comment is None and re.search(r"\d{19}", sample):  # the first block pyarrow typed
        block = _sample(path, compression, encoding, read.block_size)
    else:
        block = sample
    for name in _codes_in(block, types, parse, null_values):
        if name in scored:
            continue
        types[name] = pa.string()  # codes past int64 or hexadecimal: text, as pandas reads them
    for name in reading.targets & set(header):
        types[name] = pa.string()  # typed after reading, from its text (_typed_target)
    bad_rows.clear()  # the first look reported its block's rows already
    stream = _rewound(stream, path, compression)
    # Hexadecimal past the sample: pyarrow reads '0x1F' in an int64 column as 31. Looked
    # for in the bytes ('x' by memchr; a read of the int columns as text where it may be)
    hex_pending = True
    wide = b"0x" not in "0x".encode(encoding, errors="replace")  # UTF-16: b'0\x00x\x00'
    while True:  # a column that is not what its first block said is read again as text
        whole = [n for n in read_names if pa.types.is_integer(types[n]) and n not in scored]
        scan = None
        if hex_pending and whole and compression is not None:  # seen as pyarrow reads it
            stream = scan = _HexScan(stream, wide)
        convert = pcsv.ConvertOptions(
            column_types=types,
            null_values=null_values,  # in number columns; text columns mark their own
            decimal_point=decimal,  # (_column_from_arrow), but an identifier's 'NA' is kept
            include_columns=read_names,
        )
        try:
            arrow = pcsv.read_csv(_held_by_arrow(stream), read_options=read,
                                  parse_options=parse, convert_options=convert)  # fmt: skip
        except pa.ArrowInvalid as exc:
            column = _failed_column(str(exc), header)
            if column is None and _read_again_wider(str(exc), parse, read):
                bad_rows.clear()
                stream = _rewound(stream, path, compression)
                continue
            if column is not None and "invalid UTF8" in str(exc):  # as a text column says it
                raise DataError(
                    f"{source}: column {column!r} holds bytes that are not {encoding} text; "
                    "give the file's --encoding (e.g. latin-1)"
                ) from None
            if column is None or pa.types.is_string(types[column]):
                raise DataError(f"{source}: cannot read as CSV ({_arrow_message(exc)})") from None
            if pa.types.is_integer(types[column]) and (
                not _past_int64(str(exc)) or column in scored
            ):
                # whole numbers, then a 12.5: numbers
                wide = column in reading.keep_float64 or not reading.float32
                types[column] = pa.float64() if wide else pa.float32()
            else:  # a word, or a code past int64 (float64 would merge such codes): text
                types[column] = pa.string()
            bad_rows.clear()
            stream = _rewound(stream, path, compression)
            continue
        except UnicodeError as exc:
            raise DataError(
                f"{source}: not {encoding} text ({_decoding_error(exc)}); give "
                "--encoding (e.g. latin-1)"
            ) from None
        if (
            bad_rows
            and not parse.newlines_in_values
            and any('"' in (row.text or "") for row in bad_rows)
        ):  # a quoted line break a block cut: read again, splitting on quotes
            parse.newlines_in_values = True
            bad_rows.clear()
            stream = _rewound(stream, path, compression)
            continue
        if hex_pending and whole and not bad_rows:  # (a short row is refused below)
            hex_pending = False
            found = scan.found if scan is not None else _hex_cell_in(stream, path, wide)
            stream = _rewound(stream, path, compression)
            if found and (coded := _hex_columns(stream, read, parse, whole, null_values)):
                for name in coded:
                    types[name] = pa.string()  # text, as pandas reads them
                bad_rows.clear()
                stream = _rewound(stream, path, compression)
                continue
            bad_rows.clear()  # (none, or the same rows again)
        break
    if bad_rows:
        found = _first_line_of(path, compression, encoding, [row.text for row in bad_rows])
        first = bad_rows[found[1] if found else 0]
        where = f"line {found[0]}" if found else "a line"
        hint = ""
        opening = sample.lstrip()[:1]
        if comment is None and first.expected_columns == 1 and opening in "#%;/!":
            hint = f"; if the first line is a comment, add --comment '{opening}'"
        elif (
            sep == ","
            and first.expected_columns == 1
            and _COMMA_DECIMAL.fullmatch((first.text or "").strip().strip('"'))
        ):  # a one-column file of decimal commas: no ';' or tab told its decimal mark
            hint = "; if ',' is its decimal mark, give --decimal , --sep ';' (one column)"
        elif arrow.num_rows == 0 and all(
            row.actual_columns == row.expected_columns + 1 for row in bad_rows
        ):  # every line one value over: an export's habit, said (pandas takes either silently)
            if all((row.text or "").rstrip("\r\n ").endswith(sep) for row in bad_rows):
                hint = f"; each line ends with a {sep!r} the header does not: delete them"
            else:  # pandas reads the first values as the index, R's write.table writes them
                hint = "; row names without a name in the header (R's write.table)? name them"
        elif (
            arrow.num_rows == 0
            and _first_line(sample, comment).rstrip(" \r\n").endswith(sep)
            and all(row.actual_columns == row.expected_columns - 1 for row in bad_rows)
        ):  # the header alone one over, its last name empty: pandas adds an empty column
            hint = f"; the header ends with a {sep!r} the lines do not: delete it"
        raise DataError(
            f"{source}, {where}: {first.actual_columns} values but the header has "
            f"{first.expected_columns} ({len(bad_rows)} such line{'s' * (len(bad_rows) > 1)})"
            f"{hint}"
        )
    if arrow.num_rows == 0 and not reading.no_rows:
        raise DataError(f"{source}: has a header but no data rows")
    table = from_arrow(arrow, source, reading.every_column, decimal)
    read_set = set(read_names)  # (a list: quadratic in a file of 20,000 columns)
    table.unread = [name for name in header if name not in read_set]
    table.line_of_row = _LineFinder(path, compression, encoding, comment, True, sep)
    table.decimal, table.csv = decimal, True
    _refuse_repeated_header(table)
    return check_values(table)


def _refuse_repeated_header(table: Table) -> None:
    """Refuse a row whose every cell is its column's name: the header again, as
    'cat a.csv b.csv' leaves it. In a table of text columns it was read as data (a class
    'species' of one row, a category per column), as pandas reads it."""
    columns = list(table.columns.values())
    if len(columns) < 2 or any(c.kind != "text" for c in columns):
        return  # (a number column refuses it itself, naming the line: text_as_numbers)
    rows = np.flatnonzero(columns[0].values == columns[0].name)
    for row in rows:
        if all(c.values[row] == c.name for c in columns[1:]):
            raise DataError(
                f"{table.source}, {table.row_name(int(row))}: repeats the header (files "
                "joined?); delete that line"
            )


class _ReadAgain(Exception):
    """The first look needs the reader set wider (``_read_again_wider``)."""


class _Empty(Exception):
    """pyarrow found no line to read (none, or a header without its line break)."""


def _rewound(stream: Any, path: Path, compression: str | None) -> Any:
    """The CSV's bytes from the start again, for another read."""
    if isinstance(stream, _HexScan):  # the stream it looks at: a commented file's text
        stream = stream.raw
    if isinstance(stream, io.BytesIO):
        stream.seek(0)
    elif compression is not None:
        stream = _pyarrow().input_stream(str(path), compression)
    return stream


def _first_line(sample: str, comment: str | None) -> str:
    """The header's line in a file's first bytes: the first not blank nor a comment."""
    for line in sample.splitlines():
        text = line.lstrip("\ufeff")
        if text.strip() and not (comment and text.startswith(comment)):
            return text
    return ""


def _quoted_line_breaks(sample: str, sep: str) -> bool:
    """Whether a quoted cell of the sample holds a line break."""
    if '"' not in sample:
        return False
    rows = csv.reader(io.StringIO(sample), delimiter=sep)
    try:
        return any("\n" in cell or "\r" in cell for row in rows for cell in row)
    except csv.Error:
        return False


MAX_BLOCK = 2**31 - 1  # pyarrow's largest block: a cell beyond it cannot be read


def _read_again_wider(message: str, parse: Any, read: Any) -> bool:
    """Set the reader for what pyarrow's message says it lacked: line breaks in quoted
    cells, or a block that holds a whole row (a cell over 1 MiB); False if neither."""
    if "newlines_in_values" in message and not parse.newlines_in_values:
        parse.newlines_in_values = True
        return True
    if "straddl" in message and read.block_size < MAX_BLOCK:
        read.block_size = min(read.block_size * 16, MAX_BLOCK)  # pyarrow's is an int32
        return True
    return False


def check_values(table: Table) -> Table:
    """Refuse infinite numbers, naming the first by row (or line) and column."""
    floats = [
        column
        for name, column in table.columns.items()
        if column.kind == "number" and column.values.dtype.kind == "f" and name not in table.finite
    ]

    def has_infinite(column: Column) -> bool:
        return bool(np.isinf(column.values).any())

    if len(floats) > 1 and table.n_rows >= THREADED_ROWS:  # two at a time (isinf frees the GIL)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            found = list(pool.map(has_infinite, floats))
    else:
        found = [has_infinite(column) for column in floats]
    for column, infinite in zip(floats, found, strict=True):
        if infinite:
            row = int(np.flatnonzero(np.isinf(column.values))[0])
            # (wxb train's option: predict, eval, explain and report read as the model does)
            hint = (
                " (or a number beyond float32's range: a model trained with --dtype float64 "
                "reads it)"
                if column.values.dtype == np.float32
                else ""
            )
            raise DataError(
                f"{table.source}, {table.row_name(row)}, column {column.name!r}: "
                f"{column.values[row]} is not a finite number{hint}"
            )
    return table


def _first_look_types(stream, read, parse, null_values, decimal, reading, source) -> dict:
    """Column types from the file's first block: floats as float32 when asked (but not
    ``keep_float64``), ``as_text`` columns as text."""
    pa, pcsv = _pyarrow(), _pyarrow_csv()
    convert = _pyarrow_csv().ConvertOptions(
        null_values=null_values, strings_can_be_null=True, decimal_point=decimal
    )
    try:
        reader = pcsv.open_csv(_held_by_arrow(stream), read_options=read, parse_options=parse,
                               convert_options=convert)  # fmt: skip
        schema = reader.schema
        reader.close()
        fields = [(item.name, item.type) for item in schema]
    except pa.ArrowInvalid as exc:
        message = _arrow_message(exc)
        if _read_again_wider(str(exc), parse, read):
            raise _ReadAgain from None
        if "Empty CSV file" in message:
            raise _Empty from None
        raise DataError(f"{source}: cannot read as CSV ({message})") from None
    except UnicodeError as exc:
        raise DataError(
            f"{source}: not {read.encoding} text ({_decoding_error(exc)}); give "
            "--encoding (e.g. latin-1)"
        ) from None
    types = {}
    for position, (raw, kind) in enumerate(fields):
        name = raw.strip() or f"Unnamed: {position}"
        if name in types:
            raise DataError(_duplicate_message([*types, name], source))
        if name in reading.as_text:
            kind = pa.string()
        elif pa.types.is_null(kind):
            kind = pa.float64()  # all missing in the first block: numbers or text, see below
        elif pa.types.is_floating(kind):
            wide = not reading.float32 or name in reading.keep_float64
            kind = pa.float64() if wide else pa.float32()
        types[name] = kind
    if [raw for raw, _ in fields] != list(types):  # renamed: read with the new names
        read.column_names = list(types)
        # the header's record, parsed: skip_rows counts lines, and left a header name's
        # quoted line break ('"Weight\n(kg)"') to be read as a row of data
        read.skip_rows_after_names = 1
    return types


def _decoding_error(exc: UnicodeError) -> str:
    """What a codec said: a byte it could not decode, or (UnicodeError alone: 'utf-16'
    given a file without a BOM) its own words, which escaped as a traceback before."""
    if isinstance(exc, UnicodeDecodeError):
        return f"{exc.reason} at byte {exc.start}"
    return str(exc)


def _coarsened_in(sample: str, types: dict, parse, null_values, decimal) -> list[str]:
    """The float32 columns float32 would coarsen in the file's first 64 KiB (read again
    from the sample: parsing pyarrow's first block as well cost a tenth of the read)."""
    pa, pcsv = _pyarrow(), _pyarrow_csv()
    narrow = [i for i, kind in enumerate(types.values()) if pa.types.is_float32(kind)]
    if not narrow:
        return []
    names = list(types)
    convert = pcsv.ConvertOptions(  # as floats: whole numbers first would read as int64
        column_types={names[i]: pa.float64() for i in narrow},
        null_values=null_values, strings_can_be_null=True, decimal_point=decimal,
    )  # fmt: skip
    first = _sample_table(sample, names, parse, convert)
    if first is None:
        return []
    return [
        names[i]
        for i in narrow
        if i < first.num_columns
        and pa.types.is_floating(first.column(i).type)
        and float32_coarsens(first.column(i).to_numpy().astype(np.float64))
    ]


def _sample_table(sample: str, names: list[str], parse: Any, convert: Any) -> Any | None:
    """The sample's whole lines read as ``convert`` says (None where they cannot be: a
    quoted line break cut at the sample's end)."""
    pa, pcsv = _pyarrow(), _pyarrow_csv()
    text = sample.lstrip("\n\r")
    # whole lines only, whatever ends them: a file of '\r' line endings has no '\n', and
    # read as no lines its hexadecimal codes went unseen and were read as numbers
    text = text[: max(text.rfind("\n"), text.rfind("\r")) + 1]
    options = pcsv.ReadOptions(column_names=names, skip_rows_after_names=1)
    try:
        return pcsv.read_csv(_held_by_arrow(io.BytesIO(text.encode())), read_options=options,
                             parse_options=parse, convert_options=convert)  # fmt: skip
    except (pa.ArrowInvalid, UnicodeError):
        return None


def _codes_in(sample: str, types: dict, parse, null_values) -> list[str]:
    """The number columns whose cells in the sample are codes (``_holds_codes``), read
    as text as pandas reads them."""
    pa, pcsv = _pyarrow(), _pyarrow_csv()
    numbers = [
        n for n, kind in types.items() if pa.types.is_floating(kind) or pa.types.is_integer(kind)
    ]
    if not numbers or not re.search(r"\d{19}|0[xX][0-9a-fA-F]", sample):
        return []
    import pyarrow.compute as pc

    convert = pcsv.ConvertOptions(
        column_types={n: pa.string() for n in numbers}, include_columns=numbers,
        null_values=null_values, strings_can_be_null=True,
    )  # fmt: skip
    first = _sample_table(sample, list(types), parse, convert)
    if first is None:
        return []
    return [name for name in numbers if _holds_codes(pc.utf8_trim_whitespace(first.column(name)))]


class _HexLook:
    """A file's bytes, a block at a time: whether a hexadecimal cell may be among them
    (``_hex_cell_in_bytes``), across the blocks' ends too."""

    def __init__(self, wide: bool = False) -> None:
        self.found, self.tail, self.wide = False, b"", wide

    def see(self, data: Any) -> None:
        if not self.found and len(data):
            edge = self.tail + bytes(data[:3])  # a '0x' cut by the block's start
            self.found = _hex_cell_in_bytes(data, self.wide) or _hex_cell_in_bytes(edge, self.wide)
            self.tail = bytes(data[-3:])


class _HexScan(io.RawIOBase):
    """A compressed CSV's stream, its bytes looked at for hexadecimal as pyarrow reads
    them (decompressing the file twice would cost half a read)."""

    def __init__(self, raw: Any, wide: bool = False) -> None:
        self.raw, self.look = raw, _HexLook(wide)

    @property
    def found(self) -> bool:
        return self.look.found

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.look.see(data)
        return data


_HEX_DIGIT = np.zeros(256, dtype=bool)
_HEX_DIGIT[list(b"0123456789abcdefABCDEF")] = True
_IN_WORD = np.zeros(256, dtype=bool)  # what '0x' inside a word or number follows
_IN_WORD[list(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_.")] = True


def _hex_cell_in_bytes(data: Any, wide: bool = False) -> bool:
    """Whether ``data`` (bytes-like) may hold a hexadecimal cell: '0x' and a hex digit,
    not inside a word ('box0x1' is none). A file without an 'x' is cleared by memchr
    alone (a fortieth of a one-thread read); others a block at a time by NumPy. ``wide``:
    UTF-16 or -32 bytes, where any 'x' may be one."""
    if data.find(b"x") < 0 and data.find(b"X") < 0:
        return False
    if wide:
        return True
    every = np.frombuffer(data, dtype=np.uint8)
    step = 1 << 18  # (blocks that stay in cache: twice as fast as 16 MiB ones)
    for start in range(0, len(every), step):
        low = max(start - 2, 0)  # two bytes before: a '0x' cut by the block's start
        part = every[low : start + step + 1]
        at = np.flatnonzero((part | 0x20) == ord("x"))
        at = at[(at >= 1) & (at + 1 < len(part))]
        at = at[(part[at - 1] == ord("0")) & _HEX_DIGIT[part[at + 1]]]
        if ((at < 2) & (low == 0)).any() or (~_IN_WORD[part[at[at >= 2] - 2]]).any():
            return True
    return False


def _hex_cell_in(stream: Any, path: Path, wide: bool = False) -> bool:
    """_hex_cell_in_bytes of an uncompressed CSV: held, or read again a block at a time
    (a quarter faster than memory-mapped: no page faults)."""
    if isinstance(stream, io.BytesIO):
        return _hex_cell_in_bytes(stream.getvalue(), wide)  # (the bytes it holds: no copy)
    look, block = _HexLook(wide), bytearray(1 << 20)
    with open(path, "rb", buffering=0) as handle:
        while not look.found and (size := handle.readinto(block)):
            look.see(block if size == len(block) else block[:size])
    return look.found


def _hex_columns(stream: Any, read: Any, parse: Any, names: list[str], null_values) -> list[str]:
    """Which of the whole-number columns ``names`` hold a code (``_holds_codes``): they
    read again as text, exactly as the reader splits them."""
    pa, pcsv = _pyarrow(), _pyarrow_csv()
    import pyarrow.compute as pc

    convert = pcsv.ConvertOptions(
        column_types={n: pa.string() for n in names}, include_columns=names,
        null_values=null_values, strings_can_be_null=True,
    )  # fmt: skip
    text = pcsv.read_csv(
        _held_by_arrow(stream), read_options=read, parse_options=parse, convert_options=convert
    )
    return [name for name in names if _holds_codes(pc.utf8_trim_whitespace(text.column(name)))]


def _holds_codes(cells: Any) -> bool:
    """Whether text cells (pyarrow, trimmed) hold a code written with digits: hexadecimal
    ('0x80070005', an error code pyarrow would read as 2147942405) or a whole number past
    int64 (a 19- or 20-digit order number, which float64 would round into its neighbours)."""
    import pyarrow.compute as pc

    if pc.any(pc.match_substring_regex(cells, f"^{HEX_CODE.pattern}$")).as_py():
        return True
    digits = pc.filter(cells, pc.match_substring_regex(cells, r"^[+-]?\d{19,}$"))
    return any(_beyond_int64(v) for v in digits.to_pylist())


def _failed_column(message: str, header: list[str]) -> str | None:
    """The column pyarrow names in 'In CSV column #3: CSV conversion error …'."""
    marker = "In CSV column #"
    if marker not in message:
        return None
    digits = message.split(marker, 1)[1].split(":", 1)[0]
    return header[int(digits)] if digits.isdigit() and int(digits) < len(header) else None


def _arrow_message(exc: Exception) -> str:
    return str(exc).splitlines()[0]


def _all_in_sample(path: Path, compression: str | None, size: int) -> bool:
    """Whether a sample of ``size`` bytes held the whole file."""
    with _pyarrow().input_stream(str(path), compression) as stream:
        return len(stream.read(size + 1)) <= size


# Files of other formats, by their first bytes: read as CSV text, their bytes came back
# in the error (and pyarrow's failed decoding of a bad row as a traceback beside it)
_OTHER_FORMATS = (
    (b"PAR1", "a Parquet file; name it .parquet"),
    (b"ARROW1", "a Feather/Arrow file; name it .feather"),
    (b"\x93NUMPY", "a NumPy .npy file; name it .npy"),
    (b"\x1f\x8b", "gzip-compressed; name it .csv.gz"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed; name it .csv.zst"),
    (b"PK\x03\x04", "a ZIP archive (an Excel workbook, or an NPZ): save the sheet as CSV"),
    (b"\xd0\xcf\x11\xe0", "an Excel 97-2003 workbook: save the sheet as CSV"),
)


# control bytes text does not hold: not a tab, line ends, form feeds, nor ESC (a terminal's
# colours, written into a log's cells)
_CONTROL_BYTES = bytes([*range(0, 9), *range(14, 27), *range(28, 32), 127])


SAMPLE_SIZE = 1 << 16  # the bytes a CSV's delimiter, decimal mark and codes are judged on …
SAMPLE_LINES = 5  # … or more, where they hold fewer line breaks (the header and 4 rows) …
SAMPLE_MOST = 1 << 23  # … up to this many bytes


def _sample_bytes(
    path: Path, compression: str | None, size: int = SAMPLE_SIZE, lines: int = 0
) -> bytes:
    """The file's first ``size`` bytes; given ``lines``, grown until they hold that many
    line breaks (cut after the last), the whole file or ``SAMPLE_MOST`` bytes: a first row
    past 64 KiB (a long note) left the decimal-comma check that row's cells alone, and its
    'nan' or whole x read a ';' file's numbers as text."""
    try:
        with _pyarrow().input_stream(str(path), compression) as stream:
            raw = stream.read(size)
            while lines and len(raw) < SAMPLE_MOST and _line_breaks(raw) < lines:
                more = stream.read(min(len(raw), SAMPLE_MOST - len(raw)))
                if not more:
                    break
                raw += more
    except (OSError, _pyarrow().ArrowInvalid) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if lines and len(raw) > size and _line_breaks(raw) >= lines:  # (regexes scan it all)
        mark = b"\n" if raw.count(b"\n") >= raw.count(b"\r") else b"\r"
        end = -1
        for _ in range(lines):
            end = raw.index(mark, end + 1)
        raw = raw[: max(end + 1, size)]
    return raw


def _line_breaks(raw: bytes) -> int:
    """Line breaks in ``raw``, whichever end its lines: '\n', '\r\n' or '\r' alone."""
    return max(raw.count(b"\n"), raw.count(b"\r"))


def _sample(path: Path, compression: str | None, encoding: str, size: int = SAMPLE_SIZE) -> str:
    return _sample_text(_sample_bytes(path, compression, size), path, encoding)


def _sample_text(raw: bytes, path: Path, encoding: str) -> str:
    """``raw``, the file's first bytes, as text, refusing a file of another format."""
    for magic, what in _OTHER_FORMATS:
        # ('PAR1' or 'ARROW1' may be a header's first name: those files go on in a byte
        # no text holds, 0x15 or NUL)
        after = raw[len(magic) : len(magic) + 1]
        if raw.startswith(magic) and (not magic.isalnum() or (after and after in _CONTROL_BYTES)):
            raise DataError(f"{path}: not CSV text but {what}")
    if len(raw) > 8 and raw[8:10] == b'{"' and int.from_bytes(raw[:8], "little") < len(raw) + 2**26:
        raise DataError(f"{path}: not CSV text but a safetensors (model) file")
    wide, why, readers = _wide_text(raw)
    if wide and codecs.lookup(encoding).name not in readers:
        # Excel's 'Unicode text' export: read as utf-8 (or latin-1, as the advice for an
        # undecodable byte said) its cells and names held NULs, or the last line was short;
        # one of the other byte order, or 'utf-16' without a BOM, failed saying 'latin-1'
        raise DataError(
            f"{path}: {wide.upper()} text ({why}), not {encoding}; give --encoding {wide}"
        )
    text = raw.decode(encoding, errors="replace")
    # control bytes no text holds (a PDF, an image): text in another encoding has none
    # (its few odd bytes are named by their column), and UTF-16 has a NUL beside each letter
    utf16 = raw[:2] in (b"\xff\xfe", b"\xfe\xff") or raw[1:20:2] == b"\x00" * len(raw[1:20:2])
    control = len(raw) - len(raw.translate(None, _CONTROL_BYTES))
    if (
        not utf16
        and encoding.lower().replace("_", "-") in ("utf-8", "utf8")
        and control > max(8, len(raw) // 100)
    ):
        raise DataError(
            f"{path}: not CSV text: {control:,} of its first {len(raw):,} bytes are control "
            "characters (a binary file?)"
        )
    return text.lstrip("\ufeff")


_WIDE_BOMS = (  # UTF-32's little-endian mark starts as UTF-16's: looked for first
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
)  # fmt: skip
# characters no text holds, read in the wrong width or byte order (NUL, C0 controls, U+FFFE)
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _wide_text(raw: bytes) -> tuple[str, str, tuple[str, ...]]:
    """The UTF-16 or -32 encoding ``raw`` shows, how, and the codecs that read it as
    written: its byte-order mark, or, without one, a NUL beside each of its first letters
    (NULs, for UTF-32), or else (names and cells in Cyrillic, Greek, CJK: no NUL beside
    those letters) its bytes decoding in that one width and order to text with line
    breaks; ('', '', ()) for none."""
    for bom, name in _WIDE_BOMS:
        if raw.startswith(bom):
            width = name[:6]
            return width, f"it starts with {width.upper()}'s byte-order mark", (width, name)
    if b"\x00" not in raw:  # (every UTF-16 CSV holds one: its line breaks' other byte)
        return "", "", ()
    head = raw[:40]
    for width in (4, 2):  # UTF-32's letters first: UTF-16's pattern fits them too
        letters = [head[i::width] for i in range(width)]
        zeros = [b"\x00" * len(part) for part in letters]
        if len(head) < 2 * width or any(not part for part in letters):
            continue
        name = f"utf-{8 * width}"
        if letters[1:] == zeros[1:] and b"\x00" not in letters[0]:
            return f"{name}-le", "a NUL after each letter, and no byte-order mark", (f"{name}-le",)
        if letters[:-1] == zeros[:-1] and b"\x00" not in letters[-1]:
            return f"{name}-be", "a NUL before each letter, and no byte-order mark", (f"{name}-be",)
    for name in ("utf-32-le", "utf-32-be", "utf-16-le", "utf-16-be"):
        width = 4 if "32" in name else 2
        try:  # (incremental: a character the sample cuts in two is no error)
            text = codecs.getincrementaldecoder(name)().decode(raw[: len(raw) // width * width])
        except UnicodeDecodeError:
            continue
        # a line break and one more delimiter or break: UTF-8 text with a stray NUL
        # after one decodes to one at most
        breaks, marks = len(re.findall("[\r\n]", text)), len(re.findall("[,;\t|]", text))
        if not _NOT_TEXT.search(text) and breaks >= 1 and breaks + marks >= 2:
            why = "its line breaks and delimiters decode only so, and no byte-order mark"
            return name, why, (name,)
    return "", "", ()


def _whole_lines(sample: str, sep: str | None = None) -> list[str]:
    """The sample's lines but a last one its end cut (a long note: read at ',', a ';'
    file's few ';' there outvoted its rows, and every row was 'N values, the header 1'),
    or, given the ``sep``, that line's whole cells before the cut one."""
    lines = sample.splitlines()
    if len(lines) < 2 or sample.endswith(("\n", "\r")):
        return lines
    last = lines.pop()
    return [*lines, last.rsplit(sep, 1)[0]] if sep and sep in last else lines


def _sniff(sample: str) -> str:
    lines, size = [], 0
    for line in _whole_lines(sample)[:50]:
        size += len(line)
        if lines and size > SAMPLE_SIZE:  # (the sniffer takes 0.3 s a MiB: not a long note's)
            break
        if line.strip():
            lines.append(line)
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        # the header's most common one: a ';' file whose rows end in a ';' its header does
        # not (a count the sniffer finds in no two lines) was read at ',', one column of
        # whole lines, where its extra value is refused by line
        counts = {mark: lines[0].count(mark) for mark in ",;\t|"}
        return max(counts, key=counts.__getitem__) if any(counts.values()) else ","


def _comma_decimals(sample: str, sep: str) -> bool:
    """Whether the data's cells write numbers with a decimal comma ('1,5'; quoted too).

    Looked for after ';' (the European habit) and a tab. Never when a cell writes a
    decimal point ('0.25': a '1.065' may be a thousands group, so three digits after
    the point say nothing). After a tab a comma may also group thousands ('1,234'),
    so there only a comma no thousands group writes says so (``_decimal_mark``)."""
    if sep not in (";", "\t"):
        return False
    body = "\n".join(_whole_lines(sample, sep)[1:])  # all of it: whole prices may come first
    # cell by cell, not a regex over the text: a long note's MiB took one 0.1 s
    cells = [cell for cell in body.replace("\n", sep).split(sep) if len(cell) < 100]

    def numbers(mark: str) -> list[tuple[str, str, str]]:
        # spaces around a cell too: 'a; b' files put one after each ';' (pyarrow reads
        # ' 2,5' as 2.5), and a file whose only fractions sit there is no less decimal-comma
        # and in scientific notation, as Excel writes it ('1,5E-04'): a file of only such
        # numbers was read as text, each number a category
        # (with a sign too: '+74,13', as exports write a change)
        number = re.compile(rf' *"?[-+]?(\d+){re.escape(mark)}(\d+)([eE][-+]?\d+)?"? *')
        return [found.groups() for cell in cells if (found := number.fullmatch(cell))]

    commas = numbers(",")
    if not commas or any(_decimal_mark(*found) for found in numbers(".")):
        return False
    return sep == ";" or any(_decimal_mark(*found) for found in commas)


def _decimal_mark(whole: str, fraction: str, exponent: str) -> bool:
    """Whether the mark between a number's ``whole`` digits and its ``fraction`` is a
    decimal mark, never a thousands separator: other than three digits after it, or a
    first group no grouping writes ('0,047', '-0,188': a tab file of such prices was
    read with '.', every number text), or an exponent after it."""
    return len(fraction) != 3 or whole.startswith("0") or len(whole) > 3 or bool(exponent)


def _without_comments(
    path: Path, compression: str | None, comment: str, sep: str, encoding: str = "utf-8"
) -> io.BytesIO:
    """The file without its comment lines (pyarrow's reader has no such option), in its
    own encoding."""
    with _pyarrow().input_stream(str(path), compression) as stream:
        raw = stream.read()
    plain = f'{comment}{sep}"\r\n'
    if plain.encode() not in plain.encode(encoding, errors="replace"):  # (after a BOM)
        # UTF-16 or -32: its '#' and line breaks are not those bytes (none was a comment,
        # and the file was cut inside its characters); looked at as text instead
        try:
            text = raw.decode(encoding)
        except UnicodeError as exc:
            raise DataError(
                f"{path}: not {encoding} text ({_decoding_error(exc)}); give --encoding "
                "(e.g. latin-1)"
            ) from None
        # lines end at '\n', '\r' or both alone, as the reader's (not str.splitlines's)
        lines = list(io.StringIO(text.lstrip("\ufeff"), newline=""))
        kept = "".join(lines[i] for i in _uncommented(lines, comment, '"', sep))
        return io.BytesIO(kept.encode(encoding))  # (a BOM again, where 'utf-16' writes one)
    marker = comment.encode()
    # without a UTF-8 BOM (Excel's, Notepad's), which hid a first line's comment mark
    lines = raw.removeprefix(codecs.BOM_UTF8).splitlines(keepends=True)
    kept = _uncommented(lines, marker, b'"', sep.encode())
    return io.BytesIO(b"".join(lines[i] for i in kept))


def _uncommented(lines: list, marker: Any, quote: Any, seps: Any) -> list[int]:
    """Where in ``lines`` (text or bytes) those are that do not start with ``marker``, or
    are inside a quoted cell: a note's second line '# 2' is the cell's text, not a comment
    (dropped, it took the closing quote with it and the next rows became the cell's).
    A cell is quoted where a quote opens it, after a separator (``seps``: any of them)
    or at the line's start; a quote inside a cell is no quoting (5'11", as the reader
    takes it), and inside a quoted cell quotes come in pairs but the closing one."""
    text = isinstance(quote, str)
    between = "".join(re.escape(c) for c in (seps if text else seps.decode()))
    opening = re.compile(f'(?:^|[{between}])"' if text else f'(?:^|[{between}])"'.encode())
    kept, quoted = [], False
    for index, line in enumerate(lines):
        if quoted or not line.lstrip().startswith(marker):
            kept.append(index)
            if quoted:  # closed by an odd count (a doubled quote is a quote in the text)
                quoted = line.count(quote) % 2 == 0
            elif (found := opening.search(line)) is not None:  # its quotes from there on
                quoted = line.count(quote, found.end() - 1) % 2 == 1
    return kept


# a line of spaces or tabs alone after a line break, whatever ends its lines: '\r' alone
# too (old Mac files, which pyarrow reads; '^' and '$' see only '\n', and missed such a
# line: a row too many). No look-behind: searched from each line break, 4x as fast
_SPACE_LINE = re.compile(rb"[\r\n][ \t]+(?=[\r\n])")


def _space_line_in(text: bytes, end: int | None = None, last: bool = False) -> bool:
    """Whether ``text`` (which starts with a line break, or after one) holds a line of
    spaces or tabs alone before ``end``; ``last``: or one that ends it unfinished."""
    if b" " not in text and b"\t" not in text:  # memchr: a file of numbers, at once
        return False
    if _SPACE_LINE.search(text, 0, len(text) if end is None else end):
        return True
    start = max(text.rfind(b"\n"), text.rfind(b"\r")) + 1
    return last and start < len(text) and not text[start:].strip(b" \t")


def _without_space_lines(stream: Any, path: Path, compression: str | None) -> io.BytesIO | None:
    """A one-column file without its lines of spaces or tabs alone, outside quoted cells
    (pandas skips them as blank lines); None where it has none (looked for a block at a
    time: a file without them is not held whole)."""
    if isinstance(stream, io.BytesIO):
        raw = stream.getvalue()
        if not _space_line_in(b"\n" + raw, last=True):
            return None
    else:
        if not _has_space_line(path, compression):
            return None
        with _pyarrow().input_stream(str(path), compression) as whole:
            raw = whole.read()
    kept, quoted = [], False
    for line in raw.splitlines(keepends=True):
        if quoted or line.strip(b" \t\r\n"):
            kept.append(line)
        # a quoted cell's line break: still inside it. One column: a cell is quoted where
        # its line starts with a quote; an inch mark inside one (5'11") is text
        if quoted:
            quoted = line.count(b'"') % 2 == 0
        else:
            quoted = (
                line.removeprefix(codecs.BOM_UTF8).startswith(b'"') and line.count(b'"') % 2 == 1
            )
    return io.BytesIO(b"".join(kept))


def _has_space_line(path: Path, compression: str | None) -> bool:
    # Each block is looked at up to its last line break, whichever: cut at '\n' alone, a
    # file of '\r' endings carried all it had read into the next block (quadratic)
    tail = b"\n"  # from the last line break read on: the first line is after one
    with _pyarrow().input_stream(str(path), compression) as handle:
        while block := handle.read(1 << 20):
            text = tail + block
            cut = max(text.rfind(b"\n"), text.rfind(b"\r"))
            if cut == 0:  # a line longer than the block: whether it is still spaces alone
                tail = text[:1] + (b" " if not text[1:].strip(b" \t") else b"x")
                continue
            if _space_line_in(text, cut + 1):
                return True
            tail = text[cut:]
    return _space_line_in(tail, last=True)


class _LineFinder:
    """Row → file line, found when a message needs it by re-reading the file with
    Python's csv module (which counts quoted line breaks, blank and comment lines)."""

    def __init__(
        self,
        path: Path,
        compression: str | None,
        encoding: str,
        comment: str | None,
        spaces_blank: bool = False,  # a line of spaces alone is no row (the reader skips it)
        sep: str = ",",  # the file's: a quote opens a cell only at a cell's start
    ):
        self.path, self.compression, self.encoding, self.comment = (
            path, compression, encoding, comment,
        )  # fmt: skip
        self.spaces_blank, self.sep = spaces_blank, sep
        self.lines: list[int] | None = None

    def __call__(self, row: int) -> int | str:
        if self.lines is None:  # one pass over the file, kept for the next message
            self.lines = list(self._record_lines())
        if row + 1 < len(self.lines):  # record 0 is the header
            return self.lines[row + 1]
        return f"? (row {row})"

    def _record_lines(self):
        with _pyarrow().input_stream(str(self.path), self.compression) as stream:
            text = io.TextIOWrapper(io.BytesIO(stream.read()), self.encoding, newline="")
            lines = list(enumerate(text, start=1))
        if self.comment:  # the lines the reader was given: comments gone as _without_comments
            # drops them (a quoted '"#1 item"' first cell is a row, not a comment; a quote
            # in a comment opens no cell), so the rows after are named by their own lines
            text = [line.lstrip("\ufeff") for _, line in lines]
            lines = [lines[i] for i in _uncommented(text, self.comment, '"', self.sep)]
        # split at the file's separator: read at ',' a ';' file's quoted line break
        # ('1,5;"a\nb";p') was no cell's, and each row after was named by the line before
        # a cell past csv's 128 KiB limit (a long note) stopped it with a traceback; its
        # cells are pyarrow's, which reads up to MAX_BLOCK (the limit is raised, never cut)
        csv.field_size_limit(max(csv.field_size_limit(), MAX_BLOCK))
        reader = csv.reader((line for _, line in lines), delimiter=self.sep)
        start = 0  # the record's first line, as an index into lines
        for record in reader:
            if record:  # a blank line is no row; ',,' is a row of gaps (as pyarrow reads)
                first = record[0].lstrip("\ufeff").lstrip()
                if not (self.spaces_blank and len(record) == 1 and not first):
                    yield lines[start][0]
            start = reader.line_num


def _line_of_text(path, compression, encoding, text: str | None, comment) -> int | None:
    found = _first_line_of(path, compression, encoding, [text] if text else [])
    return found[0] if found else None


def _first_line_of(
    path: Path, compression: str | None, encoding: str, texts: Sequence[str | None]
) -> tuple[int, int] | None:
    """The first line of the file where one of the rows ``texts`` starts, and which of
    them it is; None where none is found. The earliest in the file, not the first
    given: pyarrow's threads hand a file's bad rows over in no set order (a delimiter
    ending every row, beside 1 MiB notes, was named at line 11, not 2)."""
    # lines end at '\n', '\r' or both, as the reader's: str.splitlines ends them at a form
    # feed or U+2028 inside a cell too, and named the row after such a cell by a line too many
    breaks = r"\r\n|\r|\n"
    whole: dict[str, int] = {}
    # a row over several lines (a quote left open, or a quoted line break): the line it
    # starts on (it was named "a line")
    spanning: dict[str, list[tuple[list[str], int]]] = {}
    for index, text in enumerate(texts):
        if not text:
            continue
        parts = re.split(breaks, text)
        if len(parts) == 1:
            whole.setdefault(text, index)
        else:
            spanning.setdefault(parts[0], []).append((parts, index))
    if not whole and not spanning:
        return None
    with _pyarrow().input_stream(str(path), compression) as stream:
        decoded = stream.read().decode(encoding, errors="replace")
    lines = re.split(breaks, decoded)
    for number, line in enumerate(lines, start=1):
        if line in whole:
            return number, whole[line]
        for parts, index in spanning.get(line, ()):
            if lines[number - 1 : number - 1 + len(parts)] == parts:
                return number, index
    return None


def shell_word(name: str) -> str:
    """A column name as one word of a command line, in an option a message suggests:
    --drop 'Unnamed: 2' (unquoted, the shell splits it into 'Unnamed:' and a stray '2')."""
    return shlex.quote(name)


def _is_code(text: str) -> bool:
    """'02134', '007': digits with a leading zero are a code (a zip, an ID), not a number."""
    text = text.strip().lstrip("+-")
    return len(text) > 1 and text[0] == "0" and text[1].isdigit()


# 1,234.5 or 1.234,5 or 1 234: digits in groups of three after the first; the spaces
# too that French and other locales group with (no-break, narrow no-break: '6\u202f700,00',
# which went unnamed, the column one-hot in silence), the thin space of ISO 80000, and
# the Swiss apostrophe as typeset ('1\u2019234.50')
_GROUPED = re.compile(r"[-+]?\d{1,3}([,. \u00a0\u202f\u2009'\u2019_]\d{3})+([.,]\d+)?")
# a hexadecimal code ('0x80070005', an error code): text, as pandas reads it
HEX_CODE = re.compile(r"[+-]?0[xX][0-9a-fA-F]+")


def _beyond_int64(text: str) -> bool:
    """Whether ``text`` writes a whole number past int64's range (a 19- or 20-digit
    order number): a code, which float64 would round into its neighbours."""
    text = text.strip()
    digits = text.lstrip("+-")
    return len(digits) >= 19 and digits.isdigit() and not -(2**63) <= int(text) < 2**63


def _past_int64(message: str) -> bool:
    """Whether pyarrow's conversion error names a whole number past int64's range."""
    found = re.search(r"invalid value '([^']*)'", message)
    return bool(found) and _beyond_int64(found.group(1))


# a number with a decimal comma, as '70,5' is written where the decimal mark is ','
_COMMA_DECIMAL = re.compile(r"[-+]?\d+,\d+(?:[eE][-+]?\d+)?")  # '1,5E-04' too


def decimal_comma_hint(table: Table, cell: str) -> str:
    """'; if ',' is …' for a CSV cell written with a decimal comma where the file's
    decimal mark was taken to be '.' (the first 64 KiB held no such number); else ''."""
    if table.csv and table.decimal != "," and _COMMA_DECIMAL.fullmatch(cell.strip()):
        return "; if ',' is the file's decimal mark, give --decimal ,"
    return ""


def number_cell_hint(table: Table, cell: str) -> str:
    """What to do about a cell that a model reads as a number and that is none, as
    training says it: a decimal comma's '--decimal ,', a sign's or separator's removal,
    or, in a file (CSV, JSON Lines: --na-values reads those), the marker to add, so
    that predict's 'n.a.' is not refused without the way out train names; else ''."""
    hint = decimal_comma_hint(table, cell)
    if hint:
        return hint
    what, fix = written_number(cell, table.decimal, table.csv)
    if fix:
        return f"; it is written with {what}: {fix}"
    if table.csv or table.line_of_row is not None:
        return f"; if it marks a missing value, add --na-values {cell.strip()!r}"
    return ""


# digits with dots, as 1.234,5 is written where the decimal mark is ',' ('n.a.' is a word)
_DOTTED_NUMBER = re.compile(r"[-+]?\d[\d.]*(,\d*)?")


SIGNS = "$€£¥%"  # currency and percent signs written beside numbers


def _signed_number(text: str, decimal: str) -> bool:
    """Whether a cell is a number written with a currency or percent sign."""
    if not any(sign in text for sign in SIGNS):
        return False
    core = text.translate({ord(sign): None for sign in SIGNS}).strip()
    return number_from_text(core, decimal) is not None or bool(
        _GROUPED.fullmatch(core) or _COMMA_DECIMAL.fullmatch(core)
    )


NEGATIVE_HOW = "a minus sign after it or parentheses (an accounting or SAP export)"
NEGATIVE_FIX = "write negative numbers with a leading '-' in the file"


def negative_written(text: str, decimal: str) -> bool:
    """Whether a cell writes a negative number as accounts and SAP exports do: '(12.50)',
    '($1,234.00)', '12,50-'. Read as words, their advice was to mark them missing."""
    core = text.strip()
    if len(core) > 2 and core[0] == "(" and core[-1] == ")":
        inner = core[1:-1].strip()
    elif len(core) > 1 and core[-1] == "-" and core[0] not in "+-":
        inner = core[:-1].strip()
    else:
        return False
    return (
        number_from_text(inner, decimal) is not None
        or _signed_number(inner, decimal)
        or bool(_GROUPED.fullmatch(inner) or _COMMA_DECIMAL.fullmatch(inner))
    ) and not _WINDOWS_INFINITY.fullmatch(inner)


def written_number(text: str, decimal: str = ".", csv: bool = True) -> tuple[str, str]:
    """How a cell that ``number_from_text`` does not read writes a number ('$344,838.73',
    '1,200', '45%'), as the feature columns' warnings say it, and what to do: ('', '')
    where it is no number so written."""
    core = text.strip()
    if negative_written(core, decimal):
        return NEGATIVE_HOW, NEGATIVE_FIX
    if _signed_number(core, decimal):
        return "a currency or percent sign", "remove the signs (and any separators) in the file"
    if _GROUPED.fullmatch(core):
        return "thousands separators", "remove the separators in the file"
    if decimal != "," and _COMMA_DECIMAL.fullmatch(core):
        way = "write decimal points in the file"
        if csv:  # (--decimal , where ',' also separates the cells is refused)
            return "a decimal comma", f"{way} (or, where ',' does not separate cells, --decimal ,)"
        return "a decimal comma", f"{way} (--decimal reads CSV files alone)"
    return "", ""


_WINDOWS_INFINITY = re.compile(r"[-+]?1[.,]#INF0*")


def number_from_text(text: str, decimal: str = ".") -> float | None:
    """The number a cell writes, or None. Not float()'s own reading: it takes '18_24'
    (1824) and, in a file whose decimal mark is ',', the '1.065' of a '.' thousands
    separator (1.065); neither is that number here. Old Windows C runtimes' infinity
    ('1.#INF', '-1.#INF00') is infinite, as their '1.#IND' is missing: read as a word, a
    column of them was one-hot encoded and a few were advised to be --na-values."""
    if _WINDOWS_INFINITY.fullmatch(text.strip()):
        return float("-inf") if text.strip().startswith("-") else float("inf")
    if "_" in text or (decimal == "," and "." in text):
        return None
    try:
        return float(text.replace(",", ".") if decimal == "," else text)
    except ValueError:
        return None


def text_as_numbers(column: Column, table: Table) -> tuple[Column, str]:
    """A text column that holds numbers: as a number column when every cell is a
    number (e.g. numbers stored as strings in Parquet); refused, naming the first
    word, when all but a few cells are (a typo or an unmarked missing value); kept as
    text with a warning when most are. Returns the column and the warning ('' if none)."""
    if column.kind != "text":
        return column, ""
    present = [i for i, v in enumerate(column.values) if v is not None]
    if not present or any(_is_code(column.values[i]) for i in present):
        return column, ""  # '02134': codes written with digits, not numbers
    numbers = np.full(len(column.values), np.nan)
    bad = []
    comma = table.decimal == ","
    for i in present:
        number = number_from_text(column.values[i], table.decimal)
        if number is None:
            bad.append(i)
        else:
            numbers[i] = number
    if not bad:
        # 'NAN', 'Nan' are gaps and 'inf' is refused, as a CSV's number column reads them:
        # left as text, the column became one-hot categories, one per number
        infinite = [i for i in present if np.isinf(numbers[i])]
        if infinite:
            raise DataError(
                f"{table.source}, {table.row_name(infinite[0])}, column {column.name!r}: "
                f"{column.values[infinite[0]]!r} is not a finite number"
            )
        if any(_beyond_int64(column.values[i]) for i in present):
            return column, ""  # a code past int64: float64 would round codes into each other
        return Column(column.name, "number", numbers), ""
    share = 1 - len(bad) / len(present)
    word = column.values[bad[0]]
    # 'no' among 0/1: a truth value written two ways, no missing value to mark
    known = numbers[present]
    truths = {column.values[i].strip().lower() for i in bad} <= {*TRUTH_WORDS, *BOOLEAN_TEXT}
    truths = truths and set(known[~np.isnan(known)]) <= {0.0, 1.0}
    truth_advice = "if they are truth values, write the column's all as 0/1 or true/false"
    # --decimal reads a CSV's cells alone: a JSON or Parquet file's text stays text
    decimal_hint = (
        "if ',' is the file's decimal mark, give --decimal ,"
        if table.csv
        else "write such numbers with a decimal point, or as numbers, in the file (--decimal "
        "reads CSV files only)"
    )

    # Numbers written so make most of the cells that are not numbers: said as such, beyond
    # the few a typo makes (refused below), not as words to add to --na-values ('1,200'
    # beside 850 and 920: the large incomes alone are grouped)
    def most(cells: Sequence[object]) -> bool:
        return bool(cells) and len(cells) >= len(bad) / 2 and len(bad) > len(present) // 10

    grouped = [i for i in bad if _GROUPED.fullmatch(column.values[i].strip())]
    if most(grouped):
        word = column.values[grouped[0]]
        comma_mark = table.csv and not comma and _COMMA_DECIMAL.fullmatch(word.strip())
        return column, (
            f"column {column.name!r} is read as text: its cells are numbers written with "
            f"thousands separators (e.g. {word!r}); remove the separators "
            "for it to be read as numbers" + (f" (or, {decimal_hint})" * bool(comma_mark))
        )
    # '0,13' in a '.' file: said, as thousands separators are, not one-hot encoded in silence
    commas = [column.values[i] for i in bad if _COMMA_DECIMAL.fullmatch(column.values[i].strip())]
    if not comma and most(commas):
        return column, (
            f"column {column.name!r} is read as text: its cells are numbers written with a "
            f"decimal comma (e.g. {commas[0]!r}); {decimal_hint}"
        )
    # '$12.50', '45%', '1.234,50 €': numbers with a sign, likewise said
    negatives = [column.values[i] for i in bad if negative_written(column.values[i], table.decimal)]
    if most(negatives):
        return column, (
            f"column {column.name!r} is read as text: its negative numbers are written with a "
            f"minus sign after them or in parentheses (e.g. {negatives[0]!r}); {NEGATIVE_FIX} "
            "for it to be read as numbers"
        )
    signed = [column.values[i] for i in bad if _signed_number(column.values[i], table.decimal)]
    if most(signed):
        return column, (
            f"column {column.name!r} is read as text: its cells are numbers written with a "
            f"currency or percent sign (e.g. {signed[0]!r}); remove the signs for it to be "
            "read as numbers"
        )
    # a word in the first row alone, numbers below: a row of units under the header ('kg',
    # 'cm', as exports write them), refused however short the file (it made the column text)
    units = bad == [0] and len(present) >= 4
    if len(bad) <= len(present) // 10 or units:
        if comma and "." in word and _DOTTED_NUMBER.fullmatch(word.strip()):
            mark = (
                "; the file's decimal mark is ',', so a '.' in it is a thousands separator: "
                "remove the separators"
            )
        elif _GROUPED.fullmatch(word.strip()):  # '1,200' beside 850: a thousands separator
            points = not comma and any("." in v for v in column.values if v is not None)
            alternative = table.csv and not comma and not points and "," in word
            mark = "; it is written with a thousands separator: remove the separators" + (
                f" (or, {decimal_hint})" * alternative
            )
        elif not comma and _COMMA_DECIMAL.fullmatch(word.strip()):
            mark = f"; {decimal_hint}"
        elif negative_written(word, table.decimal):
            mark = f"; it is written with {NEGATIVE_HOW}: {NEGATIVE_FIX}"
        elif truths:
            mark = f"; {truth_advice}"
        elif word.strip() == column.name:  # 'cat a.csv b.csv': the second file's header
            mark = (
                "; it is the column's name: the line repeats the header (files joined?), delete it"
            )
        else:
            mark = f"; if it marks a missing value, add --na-values {word!r}"
            if units:  # (--na-values alone kept the row: a row of gaps, its target a class)
                mark = f"; if it is a row of units under the header, delete it{mark}"
        raise DataError(
            f"{table.source}, {table.row_name(bad[0])}, column {column.name!r}: "
            f"{word!r} is not a number (the column's other values are){mark}"
        )
    if share >= 0.5:
        if not comma and _COMMA_DECIMAL.fullmatch(word.strip()):
            advice = decimal_hint
        elif truths:
            advice = truth_advice
        else:
            advice = f"if they mean missing, add --na-values {word!r}"
        return column, (
            f"column {column.name!r} is read as text: {share:.0%} of its cells are numbers, "
            f"the rest words such as {word!r}; {advice}"
        )
    return column, ""


# ---------------------------------------------------------------------------------
# JSON Lines
# ---------------------------------------------------------------------------------
JSON_LINES_HOW = "one object per line (pandas: to_json(path, orient='records', lines=True))"


def read_json_lines(path: Path, compression: str | None, reading: Reading | None = None) -> Table:
    """JSON Lines: one object per line, its keys the columns (a key missing from a line,
    or null, is a missing cell). pyarrow reads it; a file it refuses (a column holding
    numbers and text, a line that is not an object) is read again line by line, so that
    a column of several kinds is text, as a CSV's would be (a stray word among numbers
    is then named by line), and anything unreadable is named by line."""
    pa = _pyarrow()
    import pyarrow.json as pj

    reading = reading or Reading()
    try:
        with pa.input_stream(str(path), compression) as stream:
            arrow = pj.read_json(stream)
        if _rounded_past_int64(arrow):  # read exactly: as text, a CSV's such codes are
            arrow = _json_lines_by_python(path, compression, reading)
    except pa.ArrowInvalid:
        arrow = _json_lines_by_python(path, compression, reading)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({_arrow_message(exc)})") from None
    if arrow.num_rows == 0:
        raise DataError(f"{path}: holds no rows; JSON Lines is {JSON_LINES_HOW}")
    if arrow.num_rows == 1 and all(pa.types.is_struct(t) for t in arrow.schema.types):
        raise DataError(
            f"{path}: holds one JSON object of columns (pandas's default to_json); wxb reads "
            f"JSON Lines, {JSON_LINES_HOW}"
        )
    nested = [
        name
        for name, kind in zip(arrow.column_names, arrow.schema.types, strict=True)
        if pa.types.is_struct(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind)
    ]
    wanted = set(reading.wanted([str(n).strip() for n in arrow.column_names]))
    for name in nested:
        if str(name).strip() in wanted:
            raise DataError(_nested_message(str(path), str(name).strip(), None))
    table = from_arrow(arrow, str(path), reading)
    table.line_of_row = _JsonLineFinder(path, compression)
    return check_values(table)


def _rounded_past_int64(arrow: Any) -> bool:
    """Whether pyarrow read a column of whole numbers past int64 (a 20-digit ID) as
    floats, which round neighbouring IDs into one number; Python's json reads them whole."""
    pa = _pyarrow()
    import pyarrow.compute as pc

    for chunked in arrow.columns:
        if pa.types.is_floating(chunked.type) and chunked.null_count < len(chunked):
            if pc.any(pc.greater_equal(pc.abs(chunked), 2.0**63)).as_py():
                return True  # (or floats that large: read again, as the same floats)
    return False


def _nested_message(source: str, name: str, line: int | None) -> str:
    where = f"{source}, line {line}" if line is not None else source
    return (
        f"{where}, column {name!r}: holds nested JSON (objects or lists); flatten it first "
        f"(pandas.json_normalize), or drop it (--drop {shell_word(name)})"
    )


class _RepeatedKey(Exception):
    pass


def _one_of_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's keys, refusing one given twice (the dict would keep the last)."""
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        raise _RepeatedKey(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return record


def _json_lines_by_python(path: Path, compression: str | None, reading: Reading) -> Any:
    """The file as a pyarrow Table, read line by line with Python's json module (slow,
    exact): each column of one kind (numbers, booleans, text) as that kind, a column of
    several as text, holding what the file wrote; an unreadable line named by number."""
    pa = _pyarrow()
    with pa.input_stream(str(path), compression) as stream:
        raw = stream.read()
    try:
        text = raw.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: JSON must be utf-8 text; byte {exc.start} is not") from None
    if text.lstrip().startswith("["):
        raise DataError(f"{path}: holds one JSON array; wxb reads JSON Lines, {JSON_LINES_HOW}")
    columns: dict[str, list] = {}
    nested: dict[str, int] = {}  # a column's first line with a nested value
    rows = 0
    # lines end at '\n' alone, as pyarrow reads them: a U+2028 inside a string (valid
    # JSON, written raw with ensure_ascii=False) is no line break (str.splitlines breaks there)
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, object_pairs_hook=_one_of_each)
        except _RepeatedKey as exc:
            raise DataError(
                f"{path}, line {number}: the key {exc.args[0]!r} is given twice; column "
                "names must differ"
            ) from None
        except ValueError as exc:  # JSONDecodeError
            raise DataError(
                f"{path}, line {number}: not JSON ({exc.msg}, character {exc.colno}); JSON "
                f"Lines is {JSON_LINES_HOW}"
            ) from None
        if not isinstance(record, dict):
            kind = "an array" if isinstance(record, list) else f"the value {line.strip()[:40]}"
            raise DataError(
                f"{path}, line {number}: holds {kind}, not an object; JSON Lines is "
                f"{JSON_LINES_HOW}"
            )
        for key, value in record.items():
            cells = columns.get(key)
            if cells is None:
                cells = columns[key] = [None] * rows
            if isinstance(value, (dict, list)):
                nested.setdefault(key, number)
            cells.append(value)
        rows += 1
        for cells in columns.values():
            if len(cells) < rows:  # a key this line does not have: a missing cell
                cells.append(None)
    wanted = set(reading.wanted([k.strip() for k in columns]))
    for key, number in nested.items():
        if key.strip() in wanted:
            raise DataError(_nested_message(str(path), key.strip(), number))
    arrays = {key: _json_column(cells, pa) for key, cells in columns.items()}
    if rows and not arrays:
        raise DataError(f"{path}: no columns (its objects have no keys)")
    return pa.table(arrays)


def _json_column(cells: list, pa: Any) -> Any:
    """One column's values: as they are when of one kind, else as the text JSON
    writes them (1.5, true, "a" → '1.5', 'true', 'a'); nested values (a column no run
    reads) as their JSON text."""
    kinds = {
        bool if isinstance(v, bool) else str if isinstance(v, str) else float
        for v in cells
        if v is not None
    }
    nested = any(isinstance(v, (dict, list)) for v in cells)
    if len(kinds) <= 1 and not nested:
        try:
            return pa.array(cells)
        except (OverflowError, pa.ArrowInvalid):  # whole numbers past 64 bits: codes
            pass
    return pa.array([v if v is None or isinstance(v, str) else json.dumps(v) for v in cells])


class _JsonLineFinder:
    """Row → file line: the rows are the lines that are not blank."""

    def __init__(self, path: Path, compression: str | None) -> None:
        self.path, self.compression = path, compression
        self.lines: list[int] | None = None

    def __call__(self, row: int) -> int | str:
        if self.lines is None:  # one pass over the file, kept for the next message
            with _pyarrow().input_stream(str(self.path), self.compression) as stream:
                raw = stream.read()
            lines = raw.split(b"\n")
            self.lines = [n for n, line in enumerate(lines, start=1) if line.strip()]
        return self.lines[row] if row < len(self.lines) else f"? (row {row})"


# ---------------------------------------------------------------------------------
# Parquet, Feather, NPY, NPZ
# ---------------------------------------------------------------------------------
def read_parquet(path: Path, reading: Reading | None = None) -> Table:
    """A Parquet file, a few columns at a time: each group decoded, converted and
    released before the next, so the file's float64 columns are never all held."""
    pa = _pyarrow()
    import pyarrow.parquet as pq

    try:
        schema = pq.ParquetFile(path).schema_arrow
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({_arrow_message(exc)})") from None

    def read(group: list[str]) -> Any:
        # Memory-mapped: decoded from the page cache without a copy of the file's bytes
        # (1.3× faster here); one mapping per group, dropped with it, so the file's
        # pages do not all stay resident.
        with pq.ParquetFile(path, memory_map=True) as handle:
            return handle.read(columns=group)

    return _read_in_groups(path, "Parquet", schema, read, reading or Reading())


def read_feather(path: Path, reading: Reading | None = None) -> Table:
    """A Feather (Arrow IPC) file, a few columns at a time, as ``read_parquet``."""
    pa = _pyarrow()

    def columns_of(columns: list[str] | None) -> Any:
        return _feather_table(path, columns)

    try:
        try:
            schema = columns_of([]).schema
        except pa.ArrowInvalid as exc:  # the Arrow IPC stream format (ipc.new_stream,
            # Polars' write_ipc_stream): no file footer; read once, its columns taken from it
            try:
                with pa.memory_map(str(path)) as source:
                    whole = pa.ipc.open_stream(source).read_all()
            except pa.ArrowInvalid:
                raise exc from None  # neither: what the file reader said
            schema = whole.schema

            def columns_of(columns: list[str] | None) -> Any:
                return whole if columns is None else whole.select(columns)

        if not schema.names:
            try:
                schema = pa.ipc.open_file(path).schema
            except pa.ArrowInvalid:  # Feather V1 (R's feather, pandas before 0.25): no
                # IPC footer; the whole table's schema (it was refused as "not an Arrow file")
                schema = columns_of(None).schema
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(
            f"{path}: not a readable Feather/Arrow file ({_arrow_message(exc)})"
        ) from None

    return _read_in_groups(path, "Feather/Arrow", schema, columns_of, reading or Reading())


def _feather_table(path: Path, columns: list[str] | None) -> Any:
    """``pyarrow.feather.read_table(path, columns, memory_map=True)`` without its notice
    that Feather V1 is deprecated (it reads them): silenced by warnings.catch_warnings, it
    swapped the process's warning filters under every thread (two reads in threads left
    'ignore DeprecationWarning' in place for good, a third thread's were dropped meanwhile)."""
    try:
        from pyarrow._feather import FeatherReader  # what read_table reads with

        reader = FeatherReader(str(path), use_memory_map=True, use_threads=True)
        _ = (reader.read, reader.read_names, reader.version)  # all that is used below
    except (ImportError, AttributeError, TypeError):
        # a pyarrow whose private reader differs: its public reading, with its notices
        import pyarrow.feather as feather

        return feather.read_table(path, columns=columns, memory_map=True)
    if columns is None:
        return reader.read()
    table = reader.read_names(columns)
    # (as read_table: V2 reads the names sorted, without repeats; V1 as asked)
    if reader.version < 3 or sorted(set(columns)) == columns:
        return table
    return table.select(columns)


COLUMN_GROUPS = 5  # a columnar file is read in this many groups of columns


def _read_in_groups(path: Path, what: str, schema: Any, read, reading: Reading) -> Table:
    pa = _pyarrow()
    index = _pandas_index_columns(schema)
    names = [n for n in schema.names if n not in index]
    _refuse_duplicates([str(n).strip() for n in names], str(path))
    chosen = set(reading.wanted([str(n).strip() for n in names]))  # (sets: a wide file's
    unread = [n for n in names if str(n).strip() not in chosen]  # lists were quadratic)
    names = [n for n in names if str(n).strip() in chosen]
    size = max(1, -(-len(names) // COLUMN_GROUPS))
    groups = [names[start : start + size] for start in range(0, len(names), size)]
    columns: dict[str, Column] = {}
    finite: set[str] = set()
    types = dict(zip(schema.names, schema.types, strict=True))
    narrow = [
        n
        for n in names
        if _narrows(types[n], str(n).strip(), reading, pa) and str(n).strip() not in reading.as_text
    ]
    slab = _Slab(len(narrow))  # the file's float64 columns read as float32, in one array
    from concurrent.futures import ThreadPoolExecutor

    # The next group is decoded (by Arrow's threads, the GIL released) while this one is
    # converted: two groups of the file's columns are held at most
    with ThreadPoolExecutor(1) as ahead:
        coming = ahead.submit(read, groups[0]) if groups else None
        for k in range(len(groups)):
            try:
                arrow = coming.result()
            except (OSError, pa.ArrowInvalid) as exc:
                raise DataError(
                    f"{path}: not a readable {what} file ({_arrow_message(exc)})"
                ) from None
            coming = ahead.submit(read, groups[k + 1]) if k + 1 < len(groups) else None
            # Arrow's freed memory is kept for the next group (each group's decode reuses
            # the last one's pages: handing them back and faulting them in again doubled
            # the read)
            part = from_arrow(arrow, str(path), reading.every_column, release=False, slab=slab)
            del arrow
            columns.update(part.columns)
            finite |= part.finite
    pa.default_memory_pool().release_unused()  # then back to the system
    table = _checked(columns, str(path))
    table.unread = [str(n).strip() for n in unread]
    table.finite = frozenset(finite)
    return check_values(table)


def _pandas_index_columns(schema: Any) -> set[str]:
    """The columns pandas wrote for a DataFrame's unnamed index ('__index_level_0__'):
    the row labels pandas reads back as the index, not data. A named index is kept, as
    a column of that name (``--id-column`` can name it)."""
    try:
        stored = (schema.pandas_metadata or {}).get("index_columns", [])
    except (ValueError, TypeError):  # metadata that is not pandas's JSON
        return set()
    return {n for n in stored if isinstance(n, str) and re.fullmatch(r"__index_level_\d+__", n)}


def read_npy(path: Path) -> Table:
    """A 2-D array, memory-mapped (columns x0, x1, …); never unpickled."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({exc})") from None
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.dtype.kind not in "biuf":
        raise DataError(
            f"{path}: a .npy table is a 2-D array of numbers; got {array.dtype} {array.shape}"
        )
    return from_matrix(array, str(path))


def read_npz(path: Path, x_array: str | None = None, y_array: str | None = None) -> Table:
    """Arrays ``x_array`` (default X: columns x0, x1, …) and ``y_array`` (default y:
    column ``y``, or y0, y1, … for a 2-D array); nothing is ever unpickled."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            x_name = x_array or "X"
            if x_name not in names:
                hint = "" if x_array else "; name it with --x-array"
                raise DataError(
                    f"{path}: no array {x_name!r} (found {', '.join(sorted(names))}){hint}"
                )
            X = archive[x_name]
            y_name = y_array or "y"
            if y_array is not None and y_name not in names:
                raise DataError(f"{path}: no array {y_name!r} (found {', '.join(sorted(names))})")
            y = archive[y_name] if y_name in names else None
    except DataError:  # (a ValueError) the array named is missing: said as is, not as a bad file
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable NPZ file ({exc})") from None
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2 or X.dtype.kind not in "biuf":
        raise DataError(f"{path}: {x_name} must be a 2-D array of numbers; got {X.dtype} {X.shape}")
    table = from_matrix(X, str(path))
    if y is not None:
        if y.ndim == 0 or y.ndim > 2 or y.dtype.kind not in "biufUb":
            raise DataError(
                f"{path}: targets {y_name!r} must be an array of numbers or labels; "
                f"got {y.dtype} of shape {y.shape}"
            )
        if len(y) != len(X):
            raise DataError(
                f"{path}: {x_name} has {len(X)} samples but {y_name} has {len(y)}; they must match"
            )
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim == 1:
            table.columns[y_name] = _column_from_numpy(y_name, y, str(path))
            table.default_targets = [y_name]
        else:
            for j in range(y.shape[1]):
                table.columns[f"{y_name}{j}"] = _column_from_numpy(
                    f"{y_name}{j}", y[:, j], str(path)
                )
            table.default_targets = [f"{y_name}{j}" for j in range(y.shape[1])]
        _checked(table.columns, str(path))
    return table


# ---------------------------------------------------------------------------------
# Arrow and NumPy columns to ``Column``
# ---------------------------------------------------------------------------------
def from_arrow(
    arrow: Any,
    source: str,
    reading: Reading | None = None,
    decimal: str | None = None,
    release: bool = True,
    slab: _Slab | None = None,
) -> Table:
    """Columns of a pyarrow Table, each converted and released in turn (one copy).
    ``decimal``: the CSV's decimal mark, where the targets are its text. ``release``: hand
    Arrow's freed memory back to the system at the end (a reader of groups does it once).
    ``slab``: where a large table's float64 columns read as float32 go (a reader of groups
    gives one for them all)."""
    pa = _pyarrow()
    reading = reading or Reading()
    names = [str(name).strip() for name in arrow.column_names]
    names = [name or f"Unnamed: {i}" for i, name in enumerate(names)]
    _refuse_duplicates(names, source)
    chosen = set(reading.wanted(names))
    columns: dict[str, Column] = {}
    # each column let go of once converted, its buffers with it (where the caller holds
    # the table no more). Not by Table.remove_column(0): a new table of the others each
    # time, quadratic (a CSV of 20,000 columns took 52 s here)
    arrays = arrow.columns
    del arrow
    finite: set[str] = set()  # float32 columns found free of ±inf as they were cast
    threaded = [
        index
        for index, name in enumerate(names)
        if name in chosen
        and name not in reading.as_text
        and not (decimal and name in reading.targets)  # a CSV's targets: typed from their text
        and _narrows(arrays[index].type, name, reading, pa)
        and len(arrays[index]) >= THREADED_ROWS
    ]
    narrowed = _Narrowed(arrays, threaded, slab or _Slab(len(threaded)))
    try:
        for index, name in enumerate(names):
            if name not in chosen:
                arrays[index] = None
                continue
            threads = index in narrowed
            narrow = narrowed.take(index) if threads else None
            chunked, arrays[index] = arrays[index], None
            if narrow is not None:
                values, infinite = narrow
                columns[name] = _numeric_markers_missing(Column(name, "number", values), reading)
                finite.update([] if infinite else [name])
                del chunked
                continue
            if decimal and name in reading.targets and name not in reading.as_text:
                chunked = _typed_target(chunked, reading.markers, decimal)
            if name in reading.as_text and pa.types.is_float16(chunked.type):
                chunked = _float16_as_text(chunked, pa)
            elif name in reading.as_text and pa.types.is_floating(chunked.type):
                chunked = _whole_floats_as_text(chunked, pa)
            if (
                name in reading.as_text
                and not _is_text(chunked.type, pa)
                and not pa.types.is_boolean(chunked.type)  # True: the encoder matches 'True'
                and not pa.types.is_decimal(chunked.type)  # as text 1.50; as a number, 1.5
            ):
                try:
                    chunked = chunked.cast(pa.string())
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    pass  # lists, structs, bytes that are not text: _column_from_arrow names them
            elif not threads and _narrows(chunked.type, name, reading, pa):
                narrow = _float32_values(chunked)
                if narrow is not None:
                    values, infinite = narrow
                    column = Column(name, "number", values)
                    columns[name] = _numeric_markers_missing(column, reading)
                    finite.update([] if infinite else [name])
                    del chunked
                    continue
            markers = [] if name in reading.exact else reading.markers
            column = _column_from_arrow(name, chunked, source, pa, markers, name in reading.as_text)
            columns[name] = _numeric_markers_missing(column, reading)
            del chunked
    finally:
        narrowed.close()
    if release:
        pa.default_memory_pool().release_unused()  # freed Arrow buffers back to the system
    table = _checked(columns, source)
    table.unread = [name for name in names if name not in chosen]
    table.finite = frozenset(finite)
    return table


THREADED_ROWS = 100_000  # from this many rows, float columns are narrowed in threads


def _narrows(kind: Any, name: str, reading: Reading, pa: Any) -> bool:
    """Whether a column of Arrow type ``kind`` is float64 read as float32 (unless float32
    coarsens it)."""
    return reading.float32 and pa.types.is_float64(kind) and name not in reading.keep_float64


class _Narrowed:
    """The float64 columns ``indices`` of ``arrays`` read as float32 (``_float32_values``),
    into rows of ``slab`` in their order, converted by two threads a few columns ahead of
    the loop that takes them in order (NumPy's cast releases the GIL), so only those few
    are held twice."""

    AHEAD = 4

    def __init__(self, arrays: list, indices: list[int], slab: _Slab) -> None:
        self.pool = None
        if len(indices) > 1:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(2)
        self.arrays, self.todo, self.left = arrays, list(reversed(indices)), set(indices)
        self.slab, self.pending = slab, {}
        from concurrent.futures import Future

        self._kept: Future = Future()  # a column float32 would coarsen: kept float64
        self._kept.set_result(None)

    def __contains__(self, index: int) -> bool:
        return index in self.left

    def take(self, index: int) -> tuple[np.ndarray, bool] | None:
        self.left.discard(index)
        if self.pool is None:
            self.todo.pop()
            chunked = self.arrays[index]
            if float32_coarsens(_sample_of(chunked)):
                return None
            return _cast_float32(chunked, self.slab.row(len(chunked)))
        while self.todo and len(self.pending) < self.AHEAD:
            ahead = self.todo.pop()
            chunked = self.arrays[ahead]
            # here, not in a thread: the check sets warning filters, which are global
            if float32_coarsens(_sample_of(chunked)):
                self.pending[ahead] = self._kept
                continue
            out = self.slab.row(len(chunked))  # (here: the rows in column order)
            self.pending[ahead] = self.pool.submit(_cast_float32, chunked, out)
        return self.pending.pop(index).result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


class _Slab:
    """One float32 array whose rows hold, in the file's order, a large table's float64
    columns read as float32: TableEncoder.transform copies a run of them to the matrix in
    one transposing copy (twice as fast as a column at a time). ``rows``: how many."""

    def __init__(self, rows: int) -> None:
        self.rows, self.array, self.used = rows, None, 0

    def row(self, n: int) -> np.ndarray:
        if self.array is None:
            self.array = np.empty((self.rows, n), dtype=np.float32)
        if self.used == len(self.array) or self.array.shape[1] != n:
            return np.empty(n, dtype=np.float32)  # more than counted: one of its own
        self.used += 1
        return self.array[self.used - 1]


def _typed_target(text: Any, markers: list[str], decimal: str) -> Any:
    """A CSV target column read as text, as whole numbers or numbers where every cell is
    one, but kept as text where the labels are codes: '01' and '1' are two classes, '007'
    stays '007', and hexadecimal or past-int64 labels (``_holds_codes``) stay as written."""
    pa = _pyarrow()
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim_whitespace(text)
    marked = pc.is_in(trimmed, value_set=pa.array(markers, pa.string()))
    cells = pc.if_else(marked, pa.scalar(None, pa.string()), trimmed)
    whole = pc.all(pc.match_substring_regex(cells, r"^[+-]?\d+$")).as_py()
    if whole and pc.any(pc.match_substring_regex(cells, r"^[+-]?0\d")).as_py():
        return text  # '007' beside '7': labels (a price written 0010.31 is a number)
    if _holds_codes(cells):
        return text  # '0x1F', 20 digits: codes, as _codes_in reads a feature column of them
    if decimal == "," and pc.any(pc.match_substring_regex(cells, r"\.")).as_py():
        return text  # '1.234' where ',' is the decimal mark: a thousands group, not 1.234
    try:
        return pc.cast(cells, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    try:
        numbers = pc.cast(pc.replace_substring(cells, ",", ".") if decimal == "," else cells,
                          pa.float64())  # fmt: skip
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return text
    return numbers


def rounding_steps(X: np.ndarray, dtype: Any) -> tuple[np.ndarray, ...]:
    """Per column of ``X`` (or of a 1-D ``X``): its typical magnitude (the median of |x|),
    the step ``dtype`` holds numbers of that size to, the column's spread (standard
    deviation), all float64, ignoring NaN; and whether that step coarsens the column:
    it exceeds a hundredth of the spread."""
    X = np.asarray(X, dtype=np.float64)
    with np.errstate(all="ignore"):
        typical = _by_column(np.nanmedian, np.abs(X))
        spread = _by_column(np.nanstd, X)
        steps = np.spacing(np.abs(typical.astype(dtype))).astype(np.float64)
    return typical, steps, spread, (spread > 0) & (steps > 0.01 * spread)


def _by_column(reduce: Any, X: np.ndarray) -> Any:
    """``reduce(X, axis=0)`` of a NaN-ignoring reduction, NaN for a column of NaN alone,
    without NumPy's warning for it: silenced by warnings.catch_warnings, which swaps the
    process's filters (fits in two threads at once left "ignore RuntimeWarning" in place
    for good, and a third thread's warnings were dropped meanwhile)."""
    some = ~np.isnan(X).all(axis=0)
    if np.all(some):
        return reduce(X, axis=0)
    if X.ndim == 1:
        return np.float64(np.nan)
    out = np.full(X.shape[1:], np.nan)
    out[some] = reduce(X[:, some], axis=0)
    return out


def feature_rounding_warnings(
    names: Sequence[str],
    X: np.ndarray,
    dtype: Any,
    most: int = 5,
    keeps: str = "--dtype float64 keeps them",
) -> list[str]:
    """Feature columns of ``X`` (float64, as read: the readers keep such columns in
    float64) that ``dtype`` rounds by more than a hundredth of their spread: float32
    holds a timestamp near 1.7e9 to a step of 128, so readings 30 s apart become two or
    three values the network cannot tell apart (the target's: rounding_warnings).
    ``keeps``: how to keep them, in the caller's terms."""
    if np.dtype(dtype) == np.float64 or X.size == 0:
        return []
    found, typical, steps, spread = coarsened_columns(X, dtype)
    messages = [
        f"feature {names[j]!r}: its values near {typical[k]:.6g}, held in "
        f"{np.dtype(dtype).name}, are rounded to a step of {steps[k]:.3g} (their spread is "
        f"{spread[k]:.3g}), so the network sees them coarsened; {keeps}"
        for k, j in enumerate(found[:most])
    ]
    if len(found) > most:
        messages.append(f"{len(found) - most} more feature columns are rounded likewise")
    return messages


def coarsened_columns(X: np.ndarray, dtype: Any) -> tuple[np.ndarray, ...]:
    """The columns of ``X`` (2-D) that ``dtype`` coarsens (rounding_steps), ignoring NaN:
    their indices, typical magnitudes, steps and spreads. Most columns are cleared by
    their largest magnitude's step alone, without a median. A SciPy sparse X (fit's
    sample of a sparse X) is judged a block of columns at a time, never dense whole."""
    if hasattr(X, "tocsc"):
        X = X.tocsc()
        width = max(1, (1 << 21) // max(1, X.shape[0]))  # ~16 MB of float64 a block
        parts = [
            coarsened_columns(X[:, start : start + width].toarray(), dtype)
            for start in range(0, X.shape[1], width)
        ]
        starts = range(0, X.shape[1], width)
        found = np.concatenate([part[0] + start for part, start in zip(parts, starts, strict=True)])
        return (found, *(np.concatenate([part[i] for part in parts]) for i in (1, 2, 3)))
    X = np.asarray(X, dtype=np.float64)
    if len(X) == 0:  # no rows (a file of none): nothing coarsened, and nanmax has no identity
        return (np.zeros(0, dtype=np.int64), *(np.zeros(0) for _ in range(3)))
    with np.errstate(all="ignore"):  # (beyond float32's range: the reading refuses it later;
        largest = _by_column(np.nanmax, np.abs(X))  # an all-NaN column has no figures)
        spread = _by_column(np.nanstd, X)
        step = np.spacing(largest.astype(dtype)).astype(np.float64)
    maybe = np.flatnonzero((spread > 0) & ~(step <= 0.01 * spread))
    typical, steps, spread, coarse = rounding_steps(X[:, maybe], dtype)
    return maybe[coarse], typical[coarse], steps[coarse], spread[coarse]


def float32_coarsens(values: np.ndarray) -> bool:
    """Whether float32 coarsens a column (coarsened_columns): a reader then keeps it
    float64."""
    return coarsened_columns(values.reshape(-1, 1), np.float32)[0].size > 0


def _sample_of(chunked: Any, size: int = 10_000) -> np.ndarray:
    """Up to ``size`` evenly spaced values of a float64 Arrow column (rows 0, every,
    2·every, …), NaN for nulls: strided views of its chunks (Arrow's take over a chunked
    column cost 0.7 ms a million rows)."""
    every = max(1, len(chunked) // size)
    parts, start = [], 0
    for chunk in chunked.chunks:
        first = -start % every  # the chunk's first sampled row
        start += len(chunk)
        if first < len(chunk):
            parts.append(chunk.to_numpy(zero_copy_only=False)[first::every])
    return np.concatenate(parts) if parts else np.zeros(0)


def _float32_values(chunked: Any, out: np.ndarray | None = None) -> tuple[np.ndarray, bool] | None:
    """A float64 Arrow column as float32 values (NaN for nulls), cast chunk by chunk into
    one array (no Arrow float32 copy, then a second to join its chunks), and whether it
    holds ±inf (looked for in each chunk as it is cast, while in cache); None where float32
    coarsens it (float32_coarsens, on a sample): the reader keeps it float64. ``out``:
    where the values go."""
    if float32_coarsens(_sample_of(chunked)):
        return None
    return _cast_float32(chunked, out)


def _cast_float32(chunked: Any, out: np.ndarray | None) -> tuple[np.ndarray, bool]:
    """``_float32_values`` without the check (a thread's part: it sets no warning filter)."""
    values = out
    if values is None:  # from Arrow's pool (pages the last group's decode freed and mapped:
        # a new NumPy array's 4 MB took a thousand page faults)
        values = np.frombuffer(_pyarrow().allocate_buffer(4 * len(chunked)), dtype=np.float32)
    start, infinite = 0, False
    for chunk in chunked.chunks:
        stop = start + len(chunk)
        part = values[start:stop]
        # past float32's range a cell becomes ±inf, which the reader then refuses with a
        # hint (as after Arrow's cast): NumPy's overflow warning would only say it twice
        with np.errstate(over="ignore"):  # (a context variable: this thread's alone)
            part[...] = chunk.to_numpy(zero_copy_only=False)  # nulls: NaN
        infinite = infinite or bool(np.isinf(part).any())
        start = stop
    return values, infinite


def _whole_floats_as_text(chunked: Any, pa: Any) -> Any:
    """float cells as text, whole numbers written whole: '123456789012', where Arrow's
    cast writes '1.23456789012e+11' from 1e10 on (pandas stores an identifier column with
    a gap as float64), which is neither the identifier as written nor a category's text.
    Past 2**53 (float32: 2**24) a float holds no whole number exactly: its text stays a
    float's."""
    import pyarrow.compute as pc

    exact = 2.0**24 if pa.types.is_float32(chunked.type) else 2.0**53
    text = chunked.cast(pa.string())
    wide = chunked.cast(pa.float64())
    whole = pc.and_(pc.equal(pc.floor(wide), wide), pc.less_equal(pc.abs(wide), exact))
    digits = pc.if_else(whole, wide, 0.0).cast(pa.int64()).cast(pa.string())
    return pc.if_else(whole, digits, text)


def _float16_as_text(chunked: Any, pa: Any) -> Any:
    """float16 cells as the text they show: '0.1', where Arrow's cast writes float64's
    0.0999755859375, which no category '0.1' matches."""
    values = chunked.to_numpy()  # float16, NaN for nulls
    texts = [None if np.isnan(v) else str(int(v)) if v.is_integer() else str(v) for v in values]
    return pa.chunked_array([pa.array(texts, pa.string())])


def numeric_markers(markers: Iterable[str]) -> list[float]:
    """The missing markers that are numbers (--na-values -999): gaps in number columns
    too, whatever the file wrote (-999, -999.0)."""
    numbers = []
    for marker in markers:
        try:
            numbers.append(float(marker))
        except ValueError:
            continue
    return numbers


def marked_cells(values: np.ndarray, numbers: list[float]) -> np.ndarray:
    """Where number cells equal a marker, compared in the cells' own precision: -999.9
    read as float32 is not the float64 -999.9."""
    if values.dtype.kind == "f":
        return np.isin(values, np.asarray(numbers, dtype=np.float64).astype(values.dtype))
    return np.isin(values, numbers)


def _numeric_markers_missing(column: Column, reading: Reading) -> Column:
    numbers = numeric_markers(reading.na_values)
    if column.kind != "number" or not numbers:
        return column
    marked = marked_cells(column.values, numbers)
    if not marked.any():
        return column
    wide = column.values.dtype.kind in "iu"
    values = column.values.astype(np.float64) if wide else column.values.copy()
    values[marked] = np.nan
    return Column(column.name, "number", values, column.integer)


def _is_text(kind: Any, pa: Any) -> bool:
    view = getattr(pa.types, "is_string_view", lambda _: False)
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or view(kind)


def _column_from_arrow(
    name: str, chunked: Any, source: str, pa: Any, markers: list[str], as_text: bool = False
) -> Column:
    kind = chunked.type
    if pa.types.is_dictionary(kind):
        chunked = chunked.cast(kind.value_type)
        kind = chunked.type
    if _is_text(kind, pa) and not pa.types.is_string(kind):
        chunked = chunked.cast(pa.string())
        kind = chunked.type
    if pa.types.is_null(kind):
        return Column(name, "number", np.full(len(chunked), np.nan))
    if pa.types.is_integer(kind):
        if chunked.null_count:
            # unsafe: above 2**53 a float64 rounds (arrow's safe cast refuses, loudly)
            wide = chunked.cast(pa.float64(), safe=False)
            return Column(name, "number", _to_numpy(wide), integer=True)
        return Column(name, "number", _whole_numbers(_to_numpy(chunked)), True)
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        if pa.types.is_decimal(kind):  # through its text: Arrow's cast divides by 10^scale
            # and rounds 3 of 10 decimals (3.3 became 3.3000000000000003); parsed, they round
            # once, as float(Decimal('3.3')) and pandas do
            chunked = chunked.cast(pa.string()).cast(pa.float64())
        elif pa.types.is_float16(kind):
            chunked = chunked.cast(pa.float64())
        values = _to_numpy(chunked)
        if chunked.null_count:
            values = np.where(_to_numpy(chunked.is_null()), np.nan, values)
        return Column(name, "number", values)
    if pa.types.is_boolean(kind):
        return Column(name, "bool", _to_numpy(chunked.cast(pa.float64())))
    if pa.types.is_string(kind):
        import pyarrow.compute as pc

        # Text without the spaces around it: "a, b" files put one after each comma, and
        # " red" from one file must be the category "red" of another
        trimmed = pc.utf8_trim_whitespace(chunked)
        marked = pc.is_in(trimmed, value_set=pa.array(markers, pa.string()))
        chunked = pc.if_else(marked, pa.scalar(None, pa.string()), trimmed)
        lowered = pc.utf8_lower(chunked)
        boolean = pc.is_in(lowered, value_set=pa.array(BOOLEAN_TEXT))
        if (
            not as_text  # a model's categories: 'true' stays the text it learned
            and chunked.null_count < len(chunked)
            and pc.all(pc.or_kleene(pc.is_null(lowered), boolean)).as_py()
        ):  # ' True' cells: the booleans the reader reads without the spaces
            truth = pc.if_else(pc.equal(lowered, "true"), 1.0, 0.0)
            return Column(name, "bool", _to_numpy(pc.if_else(pc.is_null(chunked), None, truth)))
        return Column(name, "text", _to_numpy(chunked))
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        if pa.types.is_date(kind):
            chunked = chunked.cast(pa.timestamp("s"))
        return Column(name, "date", _to_numpy(chunked))
    if pa.types.is_time(kind) or pa.types.is_duration(kind):
        what = "times of day" if pa.types.is_time(kind) else "durations"
        raise DataError(
            f"{source}: column {name!r} holds {what}; drop it (--drop {shell_word(name)}) or turn "
            "it into numbers (e.g. seconds) first"
        )
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):  # a CSV's bad bytes too
        raise DataError(
            f"{source}: column {name!r} holds bytes that are not utf-8 text; give the file's "
            f"--encoding (e.g. latin-1), or drop it (--drop {shell_word(name)})"
        )
    raise DataError(f"{source}: column {name!r} holds {kind} values, which wxb cannot use")


def _to_numpy(chunked: Any) -> np.ndarray:
    if chunked.num_chunks == 1:
        return chunked.chunk(0).to_numpy(zero_copy_only=False)
    return chunked.to_numpy()


def _whole_numbers(array: np.ndarray) -> np.ndarray:
    """Integers as int64; uint64 beyond int64's range as float64 (int64 would wrap them
    to negative numbers)."""
    if array.dtype == np.uint64 and array.size and array.max() > np.iinfo(np.int64).max:
        return array.astype(np.float64)
    return array.astype(np.int64, copy=False)


def _column_from_numpy(
    name: str,
    array: np.ndarray,
    source: str,
    markers: Iterable[str] = NA_VALUES,
    as_text: bool = False,
) -> Column:
    kind = array.dtype.kind
    if kind == "b":
        return Column(name, "bool", array.astype(np.float64))
    if kind in "iu":
        return Column(name, "number", _whole_numbers(array), integer=True)
    if kind == "f":
        return Column(name, "number", array)
    if kind == "M":
        return Column(name, "date", array)
    if kind in "USO":
        missing = set(markers)
        values = np.array([_text_or_none(v, missing) for v in array], dtype=object)
        if as_text:  # a model's categories: '5.0' stays '5.0', 'true' stays 'true'
            return Column(name, "text", values)
        numbers = _all_numbers(values)
        if numbers is not None:
            return Column(name, "number", numbers)
        given = {v.lower() for v in values if v is not None}
        if given and given <= set(BOOLEAN_TEXT):  # as the file reader reads them
            truth = [np.nan if v is None else float(v.lower() == "true") for v in values]
            return Column(name, "bool", np.array(truth))
        return Column(name, "text", values)
    raise DataError(f"{source}: column {name!r} holds {array.dtype} values, which wxb cannot use")


def _text_or_none(value: object, markers: set[str]) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()  # as a file's text cells: without the spaces around them
    return None if text in markers else text


def _all_numbers(values: np.ndarray) -> np.ndarray | None:
    """Text cells as numbers when every one is a number as a file's cell reads ('1_000',
    which float() takes, is not; a code past int64 is text); None otherwise, told at
    the first cell that is not."""
    numbers = np.empty(len(values), dtype=np.float64)
    for row, value in enumerate(values):
        number = np.nan if value is None else number_from_text(value)
        if number is None or (value is not None and _beyond_int64(value)):
            return None
        numbers[row] = number
    return numbers


def _checked(columns: dict[str, Column], source: str) -> Table:
    lengths = {len(c.values) for c in columns.values()}
    if len(lengths) > 1:
        raise DataError(f"{source}: columns of different lengths ({sorted(lengths)})")
    if not columns:
        raise DataError(f"{source}: no columns")
    return Table(columns, source, lengths.pop())


def _refuse_duplicates(names: list[str], source: str) -> None:
    if len(set(names)) != len(names):
        raise DataError(_duplicate_message(names, source))


def _duplicate_message(names: list[str], source: str) -> str:
    seen: dict[str, list[int]] = {}
    for position, name in enumerate(names, start=1):
        seen.setdefault(name, []).append(position)
    twice = {n: p for n, p in seen.items() if len(p) > 1}
    listed = "; ".join(f"{n!r} (columns {', '.join(map(str, p))})" for n, p in twice.items())
    return f"{source}: column names must differ; repeated: {listed}. Rename them in the header"


_pandas_settled = False


def _pyarrow() -> Any:
    import pyarrow  # a core dependency, imported when a table is read (import wxb stays quick)

    global _pandas_settled
    if not _pandas_settled:
        # pyarrow imports pandas (when it is installed) at its first conversion to NumPy,
        # inside a call that drops any exception: a Ctrl-C during that import was lost, and
        # the read went on. Its first pa.array makes the same import and lets one through.
        try:
            pyarrow.array(np.zeros(1))
        except Exception:  # a pandas that fails to import (built for another NumPy): pyarrow
            pass  # reads on without it, as wxb did before; pandas is not a dependency
        _pandas_settled = True
    return pyarrow


def _pyarrow_csv() -> Any:
    _pyarrow()
    import pyarrow.csv

    return pyarrow.csv


# Python objects a threaded pyarrow CSV read was handed (the row handler, a stream of
# ours) are let go of on one of pyarrow's threads after the read returns, and letting go
# takes the GIL. At the interpreter's exit a thread that asks for it is stopped inside
# C++ that cannot unwind: the process aborted ('terminate called without an active
# exception', exit 134) after its work was done, about once in 200 quick runs under load.
_ARROW_HOLDS: list[threading.Event] = []
_ARROW_HOLDS_LOCK = threading.Lock()
_LET_GO_WAIT = 2.0  # seconds at most, at exit (pyarrow lets go within a GIL switch)


def _held_by_arrow(obj: object) -> object:
    """``obj``, noted as handed to a pyarrow reader: the interpreter's exit waits (GIL
    released) until pyarrow has let go of it."""
    let_go = threading.Event()
    try:
        finalizer = weakref.finalize(obj, let_go.set)
    except TypeError:  # (no weak references: a str path, which pyarrow opens itself)
        return obj
    finalizer.atexit = False  # set only by pyarrow letting go, never by the exit itself
    with _ARROW_HOLDS_LOCK:
        if not _ARROW_HOLDS:
            atexit.register(_wait_for_arrow)
        _ARROW_HOLDS[:] = [e for e in _ARROW_HOLDS if not e.is_set()]
        _ARROW_HOLDS.append(let_go)
    return obj


def _wait_for_arrow() -> None:
    deadline = time.monotonic() + _LET_GO_WAIT
    for let_go in list(_ARROW_HOLDS):
        let_go.wait(max(0.0, deadline - time.monotonic()))
