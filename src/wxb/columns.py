"""From a table's columns to the network's input matrix, and the roles columns play.

``TableEncoder`` is the table-to-matrix stage saved inside a model file: missing
numbers filled with the training median (and a 0/1 "was missing" column where
training rows had gaps), booleans as 0/1, text one-hot encoded (a category not
seen in training gives all zeros, as scikit-learn's ``handle_unknown="ignore"``).
It runs once on the data before training, so ``fit`` keeps its planned step, and
again on raw rows at predict time. Standardisation stays in the network
(``Standardize``), where explain and ONNX already show it.

``choose_features`` decides which columns are features: never the targets or the
identifier, never a column that looks like a row ID unless named.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
import threading
import warnings
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from wxb.errors import ConfigError, DataError
from wxb.tables import (
    BOOLEAN_TEXT,
    HEX_CODE,
    NA_VALUES,
    TRUTH_WORDS,
    Column,
    Reading,
    Table,
    from_object,
    is_tabular,
    marked_cells,
    near_column,
    number_cell_hint,
    number_from_text,
    numeric_markers,
    shell_word,
    text_as_numbers,
)

LEGACY_NA_VALUES = ("na", "none")  # gaps until 2026-12-03 (pandas reads them as words)

MISSING = "(missing)"  # how explain shows a missing cell
MANY_CATEGORIES = 100
THREADED_ROWS = 100_000  # from this many rows, fit and transform work in threads


# ---------------------------------------------------------------------------------
# Column roles
# ---------------------------------------------------------------------------------
@dataclass
class Roles:
    """Which columns are features, and what was noticed while choosing them."""

    features: list[str]
    warnings: list[str] = field(default_factory=list)


def choose_features(
    table: Table,
    targets: Sequence[str] = (),
    features: Sequence[str] | None = None,
    drop: Sequence[str] = (),
    id_column: str | None = None,
    read_numbers: bool = True,
) -> Roles:
    """Feature columns: ``features`` as named, or every column but the targets, the
    ``id_column`` and ``drop`` — leaving out, with a warning, columns that look like
    row identifiers (whole numbers or text unique per row, or whole numbers in order)."""
    for name in [*targets, *drop, *([id_column] if id_column else []), *(features or [])]:
        if name not in table.unread:  # a column never read (--drop) is there all the same
            table[name]
    if len(set(targets)) != len(targets):
        raise DataError(f"{table.source}: a target column is named twice")
    if id_column in targets:
        raise DataError(f"{table.source}: {id_column!r} cannot be the --id-column and a target")
    roles = set(targets) | set(drop) | ({id_column} if id_column else set())
    noticed: list[str] = []
    numbers_as_text: dict[str, str] = {}  # columns of numbers read as text: the warning

    def numbers_checked(name: str) -> Column:
        """The column, as numbers if its text is numbers; a typo among numbers refused
        (not with ``read_numbers=False``: a model's encoder reads each column its way)."""
        if not read_numbers:
            return table[name]
        column, warning = text_as_numbers(table[name], table)
        table.columns[name] = column
        if warning:
            numbers_as_text[name] = warning
        if warning and warning not in noticed:
            noticed.append(warning)
        return column

    identifiers: list[str] = []  # columns left out as row identifiers
    if features is not None:
        clash = [name for name in features if name in roles]
        if clash:
            raise DataError(
                f"{table.source}: {', '.join(map(repr, clash))} cannot be a feature and also "
                "a target, the --id-column or dropped"
            )
        if len(set(features)) != len(features):
            raise DataError(f"{table.source}: a column is named twice in the features")
        chosen = list(features)
        warnings: list[str] = []
    else:
        chosen, warnings = [], []
        for name in table.names:
            if name in roles:
                continue
            column = numbers_checked(name)
            why = looks_like_id(column, table.n_rows)  # a typo is no ID
            if why and name in numbers_as_text and _fractions(column, table.decimal):
                # measurements with odd cells ('57.58 kg', '$12.50'): no identifier, and
                # as text each row's own category, nothing to learn; it was dropped in silence
                said = numbers_as_text[name].split("; if they mean missing")[0]  # (unique)
                raise DataError(
                    f"{table.source}: {said}; as text each row's cell is its own category "
                    "(nothing to learn, and numbers with fractions are no row identifier): "
                    f"write them as numbers, or --drop {shell_word(name)}"
                )
            # nor is a date a row (a daily series): refused below, as ISO dates are
            if why and not (column.kind == "text" and read_numbers and _date_text(column)):
                identifiers.append(name)
                warnings.append(
                    f"column {name!r} looks like a row identifier ({why}); left out of the "
                    f"features. Use it with --features, name it with --id-column "
                    f"{shell_word(name)} to carry it into predictions, or --drop "
                    f"{shell_word(name)} to silence this"
                )
                continue
            chosen.append(name)
    if not chosen:  # say why, when every column was left out as an identifier
        why = (
            f" (the others look like row identifiers: {', '.join(map(repr, identifiers))}; "
            "name those to use with --features)"
            if identifiers
            else ""
        )
        raise DataError(f"{table.source}: no feature columns are left{why}")
    warnings = [*noticed, *warnings]
    for name in chosen:
        column = numbers_checked(name)
        if column.kind == "text" and read_numbers:  # 03/12/2026: dates the reader left as text
            example = _date_text(column)
            if example:
                raise DataError(
                    f"{table.source}: column {name!r} holds dates (e.g. {example}); drop it "
                    f"(--drop {shell_word(name)}) or turn it into numbers (e.g. days since a "
                    "start) first"
                )
        if column.kind == "date":
            example = next((str(v) for v in column.values if not np.isnat(v)), "")
            raise DataError(
                f"{table.source}: column {name!r} holds dates (e.g. {example[:19]}); drop it "
                f"(--drop {shell_word(name)}) or turn it into numbers (e.g. days since a start) "
                "first"
            )
        if column.kind == "text":
            count = len({v for v in column.values if v is not None})
            if count > MANY_CATEGORIES:
                warnings.append(
                    f"column {name!r} is text with {count} distinct values: {count} one-hot "
                    "inputs; drop it (--drop) if it is free text or an identifier"
                )
    return Roles(chosen, list(dict.fromkeys([*warnings, *noticed])))


def truth_word_hint(cell: str) -> str:
    """What to do about a cell a model's boolean column cannot read: a truth value
    written otherwise ('no') is to be written true or false, as the reader reads them
    (pandas' too); another word may mark a missing value."""
    truth = TRUTH_WORDS.get(cell.strip().lower())
    if truth is not None:
        return f"; write it as {truth}"
    return f"; if it marks a missing value, add --na-values {cell.strip()!r}"


def _fractions(column: Column, decimal: str) -> bool:
    """Whether a text column's cells write numbers with a fraction ('57.58 kg'): digits
    either side of the decimal mark, which an identifier's codes do not have."""
    fraction = re.compile(rf"\d{re.escape(decimal)}\d")
    return any(fraction.search(v) for v in column.values if v is not None)


def looks_like_id(column: Column, n_rows: int) -> str:
    """Why ``column`` looks like a row identifier, or ''. Float columns are unique per
    row too and are never flagged, unless every value is whole (``_whole_floats``). A few
    missing cells do not hide an identifier."""
    missing = column.missing
    present = column.values[~missing]
    if len(present) < 10 or len(present) < 0.9 * n_rows:
        return ""
    if column.kind == "text":
        return "text unique per row" if len(set(present)) == len(present) else ""
    if column.kind != "number":
        return ""
    # (20-digit codes are read as text: text unique per row above.) Whole floats are
    # integers too: pandas writes an ID column with a gap as 5004.0, 5041.0, …
    if not column.integer and not _whole_floats(present):
        return ""
    distinct = len(np.unique(present))
    if distinct == len(present):
        return "whole numbers unique per row"
    steps = np.diff(present)
    if distinct >= 10 and bool((steps >= 0).all() or (steps <= 0).all()):
        return "whole numbers in order"
    return ""


def _whole_floats(values: np.ndarray) -> bool:
    """Whether float ``values`` are all whole numbers their type holds exactly apart: below
    2**52 (float32: 2**23), past which every float is whole, a measurement's too."""
    if values.dtype.kind != "f" or not len(values):
        return False
    limit = 2.0 ** np.finfo(values.dtype).nmant
    return bool((np.abs(values) < limit).all() and (np.floor(values) == values).all())


# ---------------------------------------------------------------------------------
# The table-to-matrix stage
# ---------------------------------------------------------------------------------
@dataclass
class ColumnRule:
    """How one raw column becomes one or more input columns of the network."""

    name: str
    kind: str  # "number", "bool" or "text"
    fill: Any  # the value a missing cell takes: a median, or the most frequent value
    indicator: bool = False  # add a 0/1 column "name missing"
    categories: list[str] | None = None  # text: one input per category, in this order

    @property
    def outputs(self) -> list[str]:
        names = (
            [f"{self.name}={c}" for c in self.categories] if self.kind == "text" else [self.name]
        )
        return names + ([f"{self.name} missing"] if self.indicator else [])

    def to_json(self) -> dict[str, Any]:
        record = {"name": self.name, "kind": self.kind, "fill": self.fill}
        if self.indicator:
            record["indicator"] = True
        if self.categories is not None:
            record["categories"] = self.categories
        return record


def _check_range(values: np.ndarray, dtype: Any, source: str, name: str) -> None:
    """Refuse a finite value the model's dtype would turn into ±inf (1e39 in float32)."""
    target = np.dtype(dtype)
    if values.dtype.kind != "f" or values.dtype.itemsize <= target.itemsize:
        return
    limit = float(np.finfo(target).max)
    with np.errstate(invalid="ignore"):
        beyond = np.flatnonzero(np.isfinite(values) & (np.abs(values) > limit))
    if len(beyond):
        row = int(beyond[0])
        raise DataError(
            f"{source}, row {row}, column {name!r}: {values[row]:.6g} is beyond "
            f"{target.name}'s range (±{limit:.3g}); scale it, or use float64"
        )


class TableEncoder:
    """Raw table columns → the float matrix a network takes, with fitted fill values
    and categories. ``to_json``/``from_json`` put it in a model file's info."""

    def __init__(
        self,
        rules: list[ColumnRule],
        na_values: Sequence[str] = (),
        always_na: Sequence[str] = NA_VALUES,
    ):
        self.rules = rules
        self.na_values = [str(v) for v in na_values]  # the user's own missing markers
        # the markers every file was read with when the model was trained
        self.always_na = [str(v) for v in always_na]
        # a saved table stage's number columns take a hexadecimal cell as its number: files
        # read before such codes were text gave it them so (a Python fit's refuses it)
        self.hex_numbers = False

    @property
    def markers(self) -> list[str]:
        """Every cell text that is a gap for this model."""
        return list(dict.fromkeys([*self.always_na, *self.na_values]))

    @property
    def text_columns(self) -> list[str]:
        """The columns it reads as text: read them as text, exactly as written."""
        return [rule.name for rule in self.rules if rule.kind == "text"]

    @property
    def columns(self) -> list[str]:
        """The raw columns it reads, in order."""
        return [rule.name for rule in self.rules]

    @property
    def outputs(self) -> list[str]:
        """The names of the matrix's columns: the network's inputs."""
        return [name for rule in self.rules for name in rule.outputs]

    @property
    def is_plain(self) -> bool:
        """Numbers in, the same numbers out: nothing to fill or encode."""
        return all(r.kind == "number" and not r.indicator for r in self.rules)

    @classmethod
    def fit(cls, table: Table, features: Sequence[str], rows: np.ndarray | None = None):
        """Fill values and categories from ``rows`` of ``table`` (the training rows).

        Columns are fitted in threads: a median's partition releases the GIL, and a
        million-row table's twenty medians are most of the stage's cost."""
        for name in features:
            table[name]  # names a missing column before any work
        workers = min(len(features), os.cpu_count() or 1, 8)
        scratch = _Scratch()  # each thread's, dropped with the fit
        if workers > 1 and table.n_rows >= THREADED_ROWS:
            with ThreadPoolExecutor(workers) as pool:
                fit = lambda name: _fit_rule(table, name, rows, scratch)  # noqa: E731
                rules = list(pool.map(fit, features))
        else:
            rules = [_fit_rule(table, name, rows, scratch) for name in features]
        return cls(rules)

    def transform(
        self, table: Table, dtype: Any = np.float32, unseen: dict[str, Counter] | None = None
    ) -> np.ndarray:
        """The matrix (rows × outputs) for ``table``'s columns, found by name.
        ``unseen``: given, it gets each text column's categories not seen in training
        (all zeros in the one-hot), counted (``unseen_category_warnings`` words them)."""
        absent = [name for name in self.columns if name not in table]
        if absent:
            near = near_column(absent[0], [n for n in table.file_names if n not in self.columns])
            hint = f"; is {near!r} {absent[0]!r}?" if near is not None else ""
            raise DataError(
                f"{table.source}: missing column(s) {', '.join(map(repr, absent))} the model "
                f"was trained on{hint} (it has: {', '.join(table.file_names)})"
            )
        # A large table's columns are prepared, and its rows written, by two threads
        # (NumPy's passes and copies release the GIL)
        threads = (os.cpu_count() or 1) > 1 and table.n_rows >= THREADED_ROWS
        pool = ThreadPoolExecutor(2) if threads else None
        try:
            each = (pool.map if pool else map)(
                lambda rule: self._pieces(rule, table, unseen), self.rules
            )
            pieces = []
            for rule, parts in zip(self.rules, each, strict=True):  # errors in rule order
                for values, width in parts:
                    if width is None:
                        _check_range(values, dtype, table.source, rule.name)
                    pieces.append((values, width))
            pieces = _runs(pieces)
            X = np.empty((table.n_rows, len(self.outputs)), dtype=dtype)
            middle = self.BLOCK_ROWS * (-(-table.n_rows // self.BLOCK_ROWS) // 2)
            if pool and middle:
                done = pool.submit(self._write_rows, X, pieces, 0, middle)
                self._write_rows(X, pieces, middle, table.n_rows)
                done.result()
            else:
                self._write_rows(X, pieces, 0, table.n_rows)
        finally:
            if pool:
                pool.shutdown(cancel_futures=True)
        return X

    def _write_rows(self, X: np.ndarray, pieces: list, first: int, last: int) -> None:
        """Rows ``first`` to ``last`` of ``X``, from the rules' pieces (``_pieces``; a
        2-D piece is a run of inputs, ``_runs``)."""
        # Each block of rows is filled input by input through a view held transposed
        # (outputs × rows). Where ~10 or more inputs are written one at a time, that view
        # is a scratch, written to X in one transposing copy (contiguous writes: 25 %
        # quicker at 20 inputs); else X's own rows, whose columns are written in place
        # (the scratch: 2× slower at 4), and a run in one transposing copy (twice as fast
        # as a scratch's two copies).
        single = sum(1 if width is None else width for values, width in pieces if values.ndim == 1)
        scratch = None
        if single >= 10:
            scratch = np.empty((X.shape[1], min(self.BLOCK_ROWS, last - first)), dtype=X.dtype)
        for start in range(first, last, self.BLOCK_ROWS):
            stop = min(start + self.BLOCK_ROWS, last)
            block = X[start:stop].T if scratch is None else scratch[:, : stop - start]
            j = 0
            for values, width in pieces:
                part = values[..., start:stop]
                if width is None and part.ndim == 2:  # a run of inputs
                    block[j : j + len(part)] = part
                    j += len(part)
                elif width is None:  # one input: the values
                    block[j] = part
                    j += 1
                else:  # one-hot: category codes, -1 for none of them
                    block[j : j + width] = 0
                    known = np.flatnonzero(part >= 0)
                    block[j + part[known], known] = 1
                    j += width
            if scratch is not None:
                X[start:stop] = block.T

    BLOCK_ROWS = 4096

    def _pieces(
        self, rule: ColumnRule, table: Table, unseen: dict[str, Counter] | None = None
    ) -> list[tuple[np.ndarray, int | None]]:
        """What ``rule`` writes: (values, None) for one input, (codes, k) for k one-hot
        inputs; then the 0/1 missing indicator if the rule has one. A text column's
        unseen categories counted into ``unseen`` (when given) under its name."""
        column, missing = self._cells(table, rule.name)
        markers = numeric_markers(self.na_values)
        pieces: list[tuple[np.ndarray, int | None]] = []
        if rule.kind == "text":
            if column.kind not in ("text", "number", "bool"):
                raise DataError(f"{table.source}: column {rule.name!r} must be text here")
            values = column.values
            if column.kind != "text":  # e.g. codes read as numbers this time: compare as text
                values = np.array(
                    [
                        None if m else _plain_text(v, column.kind)
                        for v, m in zip(values, missing, strict=True)
                    ],
                    dtype=object,
                )
            index = {c: k for k, c in enumerate(rule.categories or [])}
            codes = np.fromiter(
                (index.get(rule.fill if v is None else v, -1) for v in values),
                dtype=np.int64,
                count=len(values),
            )
            unknown_rows = np.flatnonzero(codes < 0)
            if len(unknown_rows):
                aliases = text_aliases(rule.categories or [])
                for row in unknown_rows if aliases else ():
                    category = aliases.get(values[row])
                    if category is not None:
                        codes[row] = index[category]
                if unseen is not None:  # (one key per rule: the threads write apart)
                    left = values[codes < 0] if aliases else values[unknown_rows]
                    if len(left):
                        unseen[rule.name] = Counter(left.tolist())
            pieces.append((codes, len(index)))
        else:
            written = column.values  # as the cells are written, for messages
            if column.kind == "text":  # numbers stored as text are numbers; a word is not
                words = {w: float(w == "true") for w in BOOLEAN_TEXT} if rule.kind == "bool" else {}
                numbers = [
                    np.nan
                    if v is None
                    else words.get(v.strip().lower(), self._number_cell(v, table.decimal))
                    for v in column.values
                ]
                row = next((i for i, v in enumerate(numbers) if v is None), -1)
                if row >= 0:
                    raise DataError(
                        f"{table.source}, {table.row_name(row)}, column {rule.name!r}: "
                        f"{column.values[row]!r} is text; the model reads "
                        + ("true/false or 0/1" if rule.kind == "bool" else "numbers")
                        + " there"
                        # '23,5' past the look at the file's start, 'n.a.': what to do
                        + (
                            truth_word_hint(column.values[row])
                            if rule.kind == "bool"
                            else number_cell_hint(table, column.values[row])
                        )
                    )
                column = Column(column.name, "number", np.array(numbers, dtype=np.float64))
                # 'NAN' is a gap, 'inf' no number, as the reader takes them in a number
                # column (the matrix was refused with NaN 'at row 7, column 0' of its own)
                missing = missing | np.isnan(column.values)
                infinite = np.flatnonzero(np.isinf(column.values))
                if len(infinite):
                    raise DataError(
                        f"{table.source}, {table.row_name(int(infinite[0]))}, column "
                        f"{rule.name!r}: {written[infinite[0]]!r} is not a finite number"
                    )
                if markers:  # the user's -999 written as text (a word elsewhere in the column)
                    missing = missing | marked_cells(column.values, markers)
            if column.kind == "date":
                raise DataError(f"{table.source}: column {rule.name!r} holds dates, not numbers")
            values = column.values
            if rule.kind == "bool":  # 2 or -3 is no truth value: not an input of 2
                odd = ~missing & ~np.isin(values, (0, 1))
                if odd.any():
                    row = int(np.flatnonzero(odd)[0])
                    cell = written[row]
                    cell = cell if isinstance(cell, str) else str(np.asarray(cell).item())
                    raise DataError(
                        f"{table.source}, {table.row_name(row)}, column {rule.name!r}: "
                        f"{cell!r} is not true/false or 0/1, which the model reads there"
                    )
            if missing.any():
                values = np.where(missing, rule.fill, values)
            pieces.append((values, None))
        if rule.indicator:
            pieces.append((missing, None))
        return pieces

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {"columns": [rule.to_json() for rule in self.rules]}
        if self.na_values:
            record["na_values"] = self.na_values
        record["always_na_values"] = self.always_na
        return record

    @classmethod
    def from_json(cls, record: object, where: str = "model") -> TableEncoder:
        try:
            rules = [
                ColumnRule(
                    str(r["name"]),
                    r["kind"],
                    # text as read now, without surrounding spaces (older files may hold them)
                    (r["fill"].strip() if isinstance(r["fill"], str) else r["fill"])
                    if r["kind"] == "text"
                    else float(r["fill"]),
                    bool(r.get("indicator", False)),
                    [str(c).strip() for c in r["categories"]] if r["kind"] == "text" else None,
                )
                for r in record["columns"]  # type: ignore[index]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{where}: its table stage is malformed ({exc!r})") from None
        if any(r.kind not in ("number", "bool", "text") for r in rules):
            raise DataError(f"{where}: its table stage names an unknown column kind")
        markers = record.get("na_values", []) if isinstance(record, dict) else []
        # files from before the list was recorded were read with 'na' and 'none' as gaps
        always = record.get("always_na_values", [*NA_VALUES, *LEGACY_NA_VALUES])
        if not isinstance(markers, list) or not isinstance(always, list):
            raise DataError(f"{where}: its table stage is malformed (na_values)")
        encoder = cls(rules, markers, always)
        encoder.hex_numbers = True
        return encoder

    @classmethod
    def plain(cls, names: Sequence[str]) -> TableEncoder:
        """Number columns taken as they are (a model trained without a table stage)."""
        return cls([ColumnRule(name, "number", float("nan")) for name in names])

    def _cells(self, table: Table, name: str) -> tuple[Column, np.ndarray]:
        """Column ``name`` with the model's markers as gaps, and where its gaps are: a
        Table read without them holds a text marker as text ('unknown'), and the user's
        -999 is a gap in a number column whatever the file wrote."""
        column = table[name]
        if column.kind == "text":
            column = _markers_missing(column, set(self.markers))
        missing = column.missing
        markers = numeric_markers(self.na_values)
        if column.kind == "number" and markers:
            missing = missing | marked_cells(column.values, markers)
        return column, missing

    def _number_cell(self, text: str, decimal: str) -> float | None:
        """A number column's cell written as text: its number, or None (refused)."""
        number = number_from_text(text, decimal)
        if number is None and self.hex_numbers and HEX_CODE.fullmatch(text.strip()):
            return float(int(text.strip(), 16))
        return number

    def describe(self) -> list[str]:
        """One line per raw column: what it becomes."""
        lines = []
        for rule in self.rules:
            fill = (
                f"missing → {rule.fill!r}"
                if rule.kind == "text"
                else f"missing → {_number_text(rule.fill)}"
            )
            if rule.kind == "text":
                what = f"text → one-hot over {len(rule.categories or [])} categories"
            elif rule.kind == "bool":
                what = "boolean → 0/1"
            else:
                what = "number"
            extra = " (+ a 0/1 'missing' input)" if rule.indicator else ""
            lines.append(f"{rule.name}: {what}; {fill}{extra}")
        return lines


class _Scratch(threading.local):
    """A thread's working copy for its medians' selects: one buffer, reused column after
    column (a fresh copy of each million-row column cost a thousand page faults)."""

    buffer: np.ndarray | None = None

    def copy(self, values: np.ndarray) -> np.ndarray:
        if self.buffer is None or self.buffer.nbytes < values.nbytes:
            # from 4 MiB NumPy asks the system for huge pages: a few faults, not a thousand
            size = max(values.nbytes, 1 << 22) if values.nbytes >= 1 << 20 else values.nbytes
            self.buffer = np.empty(size, dtype=np.uint8)
        work = self.buffer[: values.nbytes].view(values.dtype)
        work[...] = values
        return work


def _runs(pieces: list[tuple[np.ndarray, int | None]]) -> list[tuple[np.ndarray, int | None]]:
    """``pieces`` with each run of single inputs that lie one after another in one array (a
    reader's slab of float32 columns, read without gaps) as one 2-D piece of those rows."""
    out: list[tuple[np.ndarray, int | None]] = []
    run: list = []  # [the array, where the run starts in it (flat), how many] at out's end
    for values, width in pieces:
        here = _place_of(values) if width is None and len(values) else None
        n = len(values)
        if here is not None and run and here[0] is run[0] and here[1] == run[1] + run[2] * n:
            run[2] += 1
            flat = run[0].reshape(-1)  # a view (C-ordered)
            out[-1] = (flat[run[1] : run[1] + run[2] * n].reshape(run[2], n), None)
            continue
        run = [*here, 1] if here is not None else []
        out.append((values, width))
    return out


def _place_of(values: np.ndarray) -> tuple[np.ndarray, int] | None:
    """(the array holding ``values``, and where they start in it, flat) where ``values``
    are a contiguous 1-D slice of a C-ordered array of their dtype, else None."""
    base = values.base
    if (
        values.ndim != 1
        or not isinstance(base, np.ndarray)
        or not base.flags.c_contiguous
        or base.dtype != values.dtype
        or values.strides[0] != values.itemsize
    ):
        return None
    offset = values.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    start, rest = divmod(offset, values.itemsize)
    return (base, start) if rest == 0 and 0 <= start <= base.size - len(values) else None


def _fit_rule(
    table: Table, name: str, rows: np.ndarray | None, scratch: _Scratch | None = None
) -> ColumnRule:
    """One column's rule: its fill value (median, or the most frequent value), whether
    it gets a missing indicator (it had gaps in the training rows), its categories."""
    column = table[name]
    part = column if rows is None else column.take(rows)  # a copy of its own
    missing = part.missing
    present = part.values[~missing] if missing.any() else part.values
    if len(present) == 0:
        # no name and no value in any row: a separator that ends every line (an export's)
        trailing = name.startswith("Unnamed: ") and column.missing.all() and table.csv
        raise DataError(
            f"{table.source}: column {name!r} has no values in the training rows; "
            + ("each line ends with a separator: delete them, or " if trailing else "")
            + f"drop it (--drop {shell_word(name)})"
        )
    gaps = bool(missing.any())
    if column.kind == "text":
        categories, counts = np.unique(present.astype(str), return_counts=True)
        fill = str(categories[np.argmax(counts)])
        return ColumnRule(name, "text", fill, gaps, [str(c) for c in categories])
    if column.kind == "bool":
        return ColumnRule(name, "bool", float(np.mean(present) > 0.5), gaps)
    if column.kind == "number":
        own = present is not column.values
        if not own and scratch is not None and present.dtype in (np.float32, np.float64):
            present, own = scratch.copy(present), True
        median = _median(present, own)
        if present.dtype == np.float32:  # 13.02 as it was read, not 13.019999980926514
            median = np.float32(median)
        return ColumnRule(name, "number", float(median), gaps)
    raise DataError(f"{table.source}: column {name!r} ({column.kind}) is not a feature")


def _median(values: np.ndarray, own: bool) -> float:
    """``np.median(values)`` (no NaN among them; a zero as +0.0), from a select at one
    index: NumPy's partition at a single index takes its SIMD route, ~10× faster on a
    million float32 than the two-index partition np.median does for an even count.
    ``own``: ``values`` is a copy the select may reorder."""
    if values.dtype not in (np.float32, np.float64):
        values, own = values.astype(np.float64), True
    work = values if own else values.copy()
    middle = len(work) // 2
    work.partition(middle)
    upper = float(work[middle])
    # + 0.0 writes a zero median as +0.0: the select does not order -0.0 and 0.0, so
    # which of them lands in the middle would depend on the rows' order
    if len(work) % 2:
        return upper + 0.0
    # in float64: float32's middle two, 3e38 each, would overflow in their mean
    return (float(work[:middle].max()) + upper) / 2 + 0.0


def explain_row(encoder: TableEncoder, table: Table, row: int) -> list[str]:
    """For a person: what the table stage makes of row ``row``, column by column."""
    X = encoder.transform(table.take(np.array([row])), np.float64)[0]
    lines, j = [], 0
    for rule in encoder.rules:
        column, gaps = encoder._cells(table, rule.name)  # as transform reads them
        value = column.values[row]
        missing = bool(gaps[row])
        if missing:
            shown = MISSING
        elif rule.kind == "text":
            shown = repr(value)
        elif column.kind == "text":  # a number column's cell written as text ('0x1F', 'true')
            shown = repr(value)
        else:
            shown = str(bool(value)) if column.kind == "bool" else _number_text(value)
        if rule.kind == "text":
            width = len(rule.categories or [])
            hot = np.flatnonzero(X[j : j + width])
            what = f"{rule.name}={rule.categories[hot[0]]} = 1" if len(hot) else "all 0 (unseen)"
            extra = f" (missing: the most frequent, {rule.fill!r})" if missing else ""
            lines.append(f"{rule.name} = {shown} → one-hot over {width}: {what}{extra}")
            j += width
        else:
            extra = " (missing: the training " + ("median)" if rule.kind == "number" else "mode)")
            lines.append(f"{rule.name} = {shown} → {_number_text(X[j])}{extra if missing else ''}")
            j += 1
        if rule.indicator:
            lines.append(f"{rule.name} missing → {_number_text(X[j])}")
            j += 1
    return lines


# 03/12/2026, 3-12-26, 2026/12/03, 03.12.2026 (a dot only before a four-digit year:
# 1.10.12 is a version), optionally a time after
_DATE_TEXT = re.compile(
    r"(\d{1,2}[/-]\d{1,2}[/-](\d{2}|\d{4})|\d{1,2}\.\d{1,2}\.\d{4}|\d{4}(?P<mark>[-/.])\d{1,2}(?P=mark)\d{1,2})"
    r"([ T]\d{1,2}:\d{2}(:\d{2})?)?"
)


def _date_text(column: Column) -> str:
    """A cell of a text column all of whose cells are dates in a form the reader does not
    take as dates, else ''."""
    present = [v for v in column.values if v is not None]
    if present and all(_DATE_TEXT.fullmatch(v.strip()) for v in present):
        return present[0]
    return ""


def _number_text(value: float) -> str:
    """A number as the shortest text that reads back as it (1234999.75, not 1.235e+06;
    2147483648, not 2.14748e+09), in float32's digits where it is a float32 value (a
    float32 cell, or a float32 model's fill held in float64: 13.02, not
    13.020000457763672). Integers float32 holds beyond 2²⁴ print whole."""
    exact = np.float64(value)
    if not np.isfinite(exact):
        return str(float(exact))
    mantissa = repr(float(exact)).split("e")[0].lstrip("-").replace(".", "").lstrip("0")
    # a float32's exact value in float64 digits: 13.16 is 13.15999984741211
    artifact = len(mantissa) > (9 if isinstance(value, np.float32) else 12)
    if artifact and abs(exact) < 2**24 and np.float64(np.float32(exact)) == exact:
        shown: np.floating = np.float32(exact)
    else:
        shown = exact
    if shown == 0 or (1e-4 <= abs(shown) < 1e16):
        return np.format_float_positional(shown, trim="-")
    return np.format_float_scientific(shown, trim="-")


def boolean_spellings(categories: list) -> dict[str, str]:
    """'True'/'False' (how a boolean cell reads as text) to the category spelled so in
    another case ('true', 'FALSE'): a file whose column holds only those reads as
    booleans, though the model learned them as categories beside others."""
    found: dict[str, str] = {}
    for word in ("True", "False"):
        if word in categories:
            continue
        same = [c for c in categories if isinstance(c, str) and c.strip().lower() == word.lower()]
        if len(same) == 1:
            found[word] = same[0]
    return found


def text_aliases(categories: list) -> dict[str, str]:
    """The other texts a category's value may come as, to the category: a number's
    ('1' for '1.0') and a boolean's ('True' for 'true'), whether the cells are numbers,
    booleans or text (pandas writes a bool column as True/False) this time."""
    return {**category_aliases(categories), **boolean_spellings(categories)}


def category_aliases(categories: list[str]) -> dict[str, str]:
    """The other texts of the categories that read as numbers, to the category: the text
    a number takes when another file or a DataFrame brings the column as numbers ('1'
    and '1.0' for a category '1.0'). Exact strings, so the ONNX export can list them too;
    a text two categories would share is nobody's."""
    aliases: dict[str, str] = {}
    shared: set[str] = set()
    known = set(categories)
    for category in categories:
        if not isinstance(category, str) or category != category.strip() or "_" in category:
            continue
        try:
            number = float(category)
        except ValueError:
            continue
        if not np.isfinite(number):
            continue
        forms = {str(number)} | ({str(int(number))} if number.is_integer() else set())
        for form in forms - known:
            if aliases.get(form, category) != category:
                shared.add(form)
            aliases[form] = category
    for form in shared:
        del aliases[form]
    return aliases


def _markers_missing(column: Column, markers: set[str]) -> Column:
    """A text column with its cells that are ``markers`` as gaps, as a file predict reads
    is given them ('unknown', '-999' from wxb.read_table(path) without --na-values)."""
    marked = np.fromiter(map(markers.__contains__, column.values), bool, len(column.values))
    if not marked.any():
        return column
    values = column.values.copy()
    values[marked] = None
    return Column(column.name, "text", values, column.integer)


def _plain_text(value: object, kind: str = "number") -> str:
    """A number or boolean cell as the text a CSV would hold (best effort: '02134' read
    as a number cannot come back; the CLI reads a model's text columns as text)."""
    if kind == "bool":
        return "True" if value else "False"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


# ---------------------------------------------------------------------------------
# A model's inputs from a table
# ---------------------------------------------------------------------------------
def model_encoder(info: dict[str, Any], table: Table) -> TableEncoder:
    """The table stage saved in a model's info, or a plain one by its feature names (a
    model trained without a stage); without names, every column but the targets."""
    stage = info.get("table")
    if stage is not None:
        return TableEncoder.from_json(stage)
    names = info.get("feature_names")
    if names:
        return TableEncoder.plain(names)
    targets = {info.get("target"), *table.default_targets}
    return TableEncoder.plain([n for n in table.names if n not in targets])


def table_matrix(
    info: dict[str, Any], table: Table, dtype: Any, notices: list[str] | None = None
) -> np.ndarray:
    """The network's input matrix for ``table``: columns by name through the model's
    table stage; an array's unnamed columns (x0, x1, …) by position when the model
    reads plain numbers. Categories not seen in training are said, a line a column
    (``unseen_category_warnings``): added to ``notices`` when given, else a UserWarning
    at the caller's line (scikit-learn's ``handle_unknown="warn"``)."""
    encoder = model_encoder(info, table)
    if table.positional:  # an array: its columns by position, all of them
        names = [n for n in table.names if n not in table.default_targets]
        if len(names) != len(encoder.columns):
            raise DataError(
                f"{table.source}: {len(names)} features but the model takes {len(encoder.columns)}"
            )
        if encoder.is_plain:  # numbers by position, each column's fill kept
            rules = [
                replace(rule, name=name) for rule, name in zip(encoder.rules, names, strict=True)
            ]
            encoder = TableEncoder(rules, encoder.na_values, encoder.always_na)
        elif names != encoder.columns:  # by name only where the names are the model's, in order
            raise DataError(
                f"{table.source}: an array has no column names, and the model reads named "
                f"columns ({', '.join(encoder.columns[:5])}, …) through its table stage"
            )
    unseen: dict[str, Counter] = {}
    X = encoder.transform(table, dtype, unseen)
    messages = unseen_category_warnings(encoder, unseen, table.n_rows, table.source)
    if notices is not None:
        notices.extend(messages)
    for message in messages if notices is None else ():
        warnings.warn(message, UserWarning, stacklevel=_frames_inside_wxb())
    return X


def unseen_category_warnings(
    encoder: TableEncoder, unseen: dict[str, Counter], n_rows: int, source: object
) -> list[str]:
    """One line a text column with categories training never saw (``transform``'s
    ``unseen``): how many rows, the most frequent of them, and the training category
    each is nearest (the same but for case or spaces, 'RED' for 'red', said plainly
    when that explains them all). Warned, not refused, as scikit-learn's
    ``handle_unknown="warn"``: one new value in a one-row file is all its rows."""
    lines = []
    for rule in encoder.rules:
        counts = unseen.get(rule.name)
        if not counts:
            continue
        categories = rule.categories or []
        folded: dict[str, list[str]] = {}
        for category in categories:
            folded.setdefault(_folded(category), []).append(category)
        shown, lost = [], False
        for value, _ in counts.most_common(3):
            same = folded.get(_folded(value))
            near = same or difflib.get_close_matches(value, categories, n=1, cutoff=0.6)
            why = "training had" if same else "closest spelling in training:"
            shown.append(f"{value!r}" + (f" ({why} {near[0]!r})" if near else ""))
            lost = lost or not near
        if len(counts) > 3:
            shown.append(f"and {len(counts) - 3} other value{'s' * (len(counts) > 4)}")
        n = sum(counts.values())
        line = (
            f"{source}: column {rule.name!r}: {n} of {n_rows} rows ({_share(n, n_rows)}) "
            f"hold a category not seen in training, taken as none of its "
            f"{len(categories)} (all zeros): {', '.join(shown)}"
        )
        if all(_folded(value) in folded for value in counts):
            line += (
                "; each is a training category but for case or surrounding spaces: "
                "write them as training did"
            )
        elif lost:  # nothing near ('True' for 'yes'): what training had instead
            listed = ", ".join(map(repr, categories[:5])) + (", …" if len(categories) > 5 else "")
            line += f"; training had {listed}"
        lines.append(line)
    return lines


def case_variants_warning(source: object, what: str, values: Sequence[object]) -> str | None:
    """A line naming ``values`` (a text column's categories, or classes) that differ only
    by case ('Yes' and 'yes'): each stays one of its own, as pandas and scikit-learn's
    OneHotEncoder take them, but a file written by two hands usually means one; None if
    there are none."""
    groups: dict[str, list[str]] = {}
    for value in values:
        if isinstance(value, str):
            groups.setdefault(_folded(value), []).append(value)
    variants = [group for group in groups.values() if len(group) > 1]
    if not variants:
        return None
    shown = ", ".join("/".join(map(repr, group)) for group in variants[:3])
    more = f" and {len(variants) - 3} more" if len(variants) > 3 else ""
    kind = "classes" if what.startswith("target") else "categories"
    return (
        f"{source}: {what}: {kind} that differ only by case: {shown}{more}; each is one "
        f"of its own (as pandas reads them): write them one way if they mean one"
    )


def _folded(text: str) -> str:
    """A category as compared for a near miss: trimmed, case folded."""
    return str(text).strip().casefold()


def _share(part: int, whole: int) -> str:
    """``part`` of ``whole`` as a whole percent, 0% and 100% only for none and all."""
    text = f"{part / whole:.0%}"
    if 0 < part < whole and text in ("0%", "100%"):
        return "<1%" if text == "0%" else ">99%"
    return text


def _frames_inside_wxb() -> int:
    """warnings.warn's stacklevel for the first caller outside the wxb package (a
    script's model.predict line), from the function calling this one."""
    frame, level = sys._getframe(2), 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def knows_columns(info: dict[str, Any]) -> bool:
    """Whether a model takes a table's columns by name: it has a table stage, or a fit
    recorded the names it was trained on."""
    return bool(info.get("table") or info.get("feature_names"))


def rows_by_name(info: dict[str, Any], X: object, dtype: Any) -> object:
    """``rows_for_model`` for a model that knows its columns; else X as it is (a model
    fitted on arrays takes a table's columns by position, as an array)."""
    return rows_for_model(info, X, dtype) if knows_columns(info) else X


def rows_for_model(info: dict[str, Any], X: object, dtype: Any, where: str = "table") -> object:
    """X as the network takes it: a table (a DataFrame, a pyarrow Table, a dict of columns)
    by column name, through the model's table stage when it has one, as ``predict`` takes
    it; anything else (an array) as it is."""
    if not is_tabular(X):
        return X
    reading = Reading(**reading_for(info))  # as wxb predict reads a file
    return table_matrix(info, from_object(X, where, reading), dtype)


def reading_for(info: dict[str, Any]) -> dict[str, Any]:
    """How to read rows for a model: its text columns as text, its identifier as text,
    its own missing markers, its targets in float64."""
    # names set by hand: a list for the identifier raised a bare TypeError, and a string
    # of targets was taken letter by letter ("no column 'l'" for targets = 'cls')
    for key, value in (("id_column", info.get("id_column")), ("target", info.get("target"))):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"model.info[{key!r}] must be a column's name (text); got {value!r}")
    named = info.get("targets")
    if named is not None and (
        not isinstance(named, list) or not all(isinstance(n, str) for n in named)
    ):
        raise ConfigError(f"model.info['targets'] must be a list of column names; got {named!r}")
    stage = info.get("table")
    encoder = TableEncoder.from_json(stage) if stage is not None else None
    as_text = [*(encoder.text_columns if encoder else []), *filter(None, [info.get("id_column")])]
    targets = info.get("targets") or [info.get("target")]
    classes = info.get("classes")
    if (
        classes
        and all(isinstance(c, str) for c in classes)
        and not set(classes) <= {"False", "True"}  # a bool column: any spelling of it
        and info.get("target")
    ):
        as_text.append(info["target"])  # its classes are text: '007' is a class, not 7
    # the model's columns: its stage's, or the names a fit recorded (without them, a stray
    # inf in a column such a model never reads stopped wxb predict)
    columns = encoder.columns if encoder else info.get("feature_names")
    return {
        # the model's columns and its identifier: the rest of a table is not read (but the
        # targets, by whoever scores them)
        "only": [*columns, *filter(None, [info.get("id_column")])] if columns else None,
        # its markers beyond today's defaults: the user's, and ones the defaults dropped
        "na_values": [m for m in encoder.markers if m not in NA_VALUES] if encoder else [],
        "as_text": as_text,
        "exact": list(filter(None, [info.get("id_column")])),
        "keep_float64": [t for t in targets if t],
    }
