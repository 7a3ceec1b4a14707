"""Tables read as pandas reads them (a differential hunt): random tables written as
people write them, read by wxb and by pandas with the options that read them right;
the cells, rows and columns must agree, or wxb must refuse plainly. Inputs are drawn
fresh each run; every expected value comes from the data or from pandas."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd

from wxb.tables import read_table


def test_a_quoted_cells_line_that_starts_with_the_comment_mark_is_not_a_comment(tmp_path, rng):
    # A free-text note whose second line starts with '#' (a numbered list, a hashtag):
    # inside quotes it is the cell's text. Dropped as a comment line, it took the closing
    # quote with it, and every row after became part of the note: 1 row read, not n.
    n = int(rng.integers(4, 12))
    x = np.round(rng.normal(size=n) * 100, 3)
    notes = [
        f"item {i}\n# {rng.integers(100)} follows" if rng.random() < 0.5 else f"item {i}"
        for i in range(n)
    ]
    notes[int(rng.integers(n))] = "first\n#tag"  # at least one
    buffer = io.StringIO()
    buffer.write("# exported notes\n")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "note", "x"])
    for i in range(n):
        if rng.random() < 0.3:
            buffer.write("# a comment line between rows\n")
        writer.writerow([i, notes[i], x[i]])
    path = tmp_path / "notes.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")

    expected = pd.read_csv(path, comment="#")
    assert expected["note"].tolist() == notes  # pandas reads it so
    table = read_table(path, comment="#")
    assert table.n_rows == n
    assert table["note"].values.tolist() == notes
    np.testing.assert_array_equal(table["x"].values, expected["x"].to_numpy())
    np.testing.assert_array_equal(table["id"].values, np.arange(n))


def test_a_line_of_spaces_in_a_one_column_file_with_carriage_returns_is_no_row(tmp_path, rng):
    # Lines ended by '\r' alone (old Mac files; pyarrow and pandas read them): a line of
    # spaces there was not seen as blank, so a one-column file (what predict reads for a
    # one-feature model) got a row too many, a gap, and its numbers became text.
    n = int(rng.integers(3, 15))
    values = np.round(rng.normal(size=n) * 10.0 ** rng.integers(-2, 4), 4)
    lines = ["x"]
    for v in values:
        lines.append(repr(float(v)))
        if rng.random() < 0.4:
            lines.append(str(rng.choice([" ", "  ", "\t", " \t "])))
    lines.insert(int(rng.integers(2, len(lines) + 1)), "   ")  # at least one
    ending = "\r"  # ('\n' and '\r\n' files were read right)
    path = tmp_path / "one.csv"
    path.write_bytes(ending.join(lines).encode() + ending.encode() * int(rng.integers(2)))

    expected = pd.read_csv(path)["x"].to_numpy()
    np.testing.assert_array_equal(expected, values)  # pandas reads it so
    table = read_table(path)
    assert table.n_rows == n
    assert table["x"].kind == "number"
    np.testing.assert_array_equal(table["x"].values, values)
