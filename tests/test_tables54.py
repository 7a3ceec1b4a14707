"""Messy tables read as pandas reads them, or refused in one line naming line and column.
Inputs drawn fresh (the seed is printed)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from wxb.columns import TableEncoder
from wxb.prepare import training_table
from wxb.tables import read_table


def _ending(rng) -> str:
    return str(rng.choice(["\n", "\r\n", "\r"]))


def test_decimal_commas_after_a_first_row_past_the_sample_read_as_numbers(seeded, tmp_path):
    # A ';' (or tab) file whose first rows hold a note past the 64 KiB sample: the
    # decimal-comma check saw the first row's cells alone, and where its x was 'nan',
    # empty or whole, the file's decimal mark was taken to be '.' and x read as text
    # (one-hot categories, '2,5' one of them), with no error. Read as pandas reads it.
    rng = seeded.rng
    sep = str(rng.choice([";", "\t"]))
    n = int(rng.integers(6, 30))
    x = np.round(rng.normal(size=n) * 10.0 ** rng.integers(0, 4), 2)
    x[np.round(x) == x] += 0.25  # fractions of two digits: a tab file's commas group none
    long_rows = int(rng.integers(1, 4))
    x[0] = float(rng.choice([np.nan, np.round(x[0])]))
    notes = ["word " * int(rng.integers(14_000, 60_000)) if i < long_rows else "short"
             for i in range(n)]  # fmt: skip
    label = rng.choice(["p", "q"], n)
    first = str(rng.choice(["nan", "", "NaN"])) if np.isnan(x[0]) else f"{x[0]:.0f}"
    cells = [first, *(f"{v}".replace(".", ",") for v in x[1:])]
    ending = _ending(rng)
    lines = [sep.join(["x", "note", "label"])]
    lines += [sep.join(row) for row in zip(cells, notes, label, strict=True)]
    path = tmp_path / "notes.csv"
    path.write_text(ending.join(lines) + ending, newline="")
    where = seeded.msg(f"sep={sep!r} ending={ending!r} x[0]={first!r} long rows={long_rows}")

    raw = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    expected = pd.read_csv(io.BytesIO(raw), sep=sep, decimal=",")["x"].to_numpy()
    table = read_table(path)
    assert table.decimal == ",", where
    assert table["x"].kind == "number", where + f": {table['x'].values[:4]}"
    np.testing.assert_array_equal(table["x"].values, expected, where)
    np.testing.assert_array_equal(table["x"].values, x, where)
    data = training_table(table, ["label"])
    TableEncoder.fit(data.table, data.features)
    assert not [w for w in data.warnings if "'x'" in w], where + str(data.warnings)
