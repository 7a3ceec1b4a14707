"""Tables read as pandas reads them (a differential hunt): random tables written as
people write them, read by wxb and by pandas with the options that read them right;
the cells, rows and columns must agree, or wxb must refuse plainly. Inputs are drawn
fresh each run; every expected value comes from the data or from pandas."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest

from wxb.cli import main
from wxb.errors import DataError
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


def test_a_file_of_carriage_return_line_endings_is_looked_at_as_one_of_newlines(tmp_path, rng):
    # The first look at a file's lines (hexadecimal codes, which pandas reads as text;
    # columns float32 would coarsen) cut its sample at the last '\n': a file whose lines
    # end in '\r' alone had none, so its codes became numbers (0x1F → 31) and a timestamp
    # column was held in float32, to a step of 128 s, where the '\n' file was read right.
    n = int(rng.integers(5, 30))
    codes = [f"0x{int(c):X}" for c in rng.integers(1, 2**32, size=n)]
    stamps = 1.7e9 + np.cumsum(rng.uniform(1, 60, size=n)).round(1)
    x = rng.normal(size=n).round(4)
    rows = zip(codes, stamps, x, strict=True)
    lines = ["code,stamp,x", *(f"{c},{float(s)!r},{float(v)!r}" for c, s, v in rows)]
    for ending, name in (("\r", "cr.csv"), ("\n", "lf.csv")):
        path = tmp_path / name
        path.write_bytes((ending.join(lines) + ending).encode())
        expected = pd.read_csv(path)
        assert expected["code"].tolist() == codes  # pandas reads them as text
        table = read_table(path, float32=True)
        assert table["code"].kind == "text", ending
        assert table["code"].values.tolist() == codes
        np.testing.assert_array_equal(table["stamp"].values, stamps)  # not coarsened
        np.testing.assert_array_equal(table["x"].values.astype(np.float32), x.astype(np.float32))


def test_excels_separator_line_is_seen_whatever_ends_the_lines(tmp_path, rng):
    # 'sep=;' then lines ended by '\r' alone: the check for Excel's line looked for a
    # '\n' after it, so the line was read as the header ('sep=', 'Unnamed: 1') and the
    # real header as a row of data. Now refused as the '\n' file is, or skipped as asked.
    n = int(rng.integers(3, 10))
    x = rng.normal(size=n).round(3)
    lines = [
        "sep=;",
        "x;label",
        *(f"{str(float(v)).replace('.', ',')};k{i}" for i, v in enumerate(x)),
    ]
    path = tmp_path / "excel.csv"
    path.write_bytes(("\r".join(lines) + "\r").encode())
    with pytest.raises(DataError, match="Excel's separator line"):
        read_table(path)
    table = read_table(path, comment="sep=")
    assert table.names == ["x", "label"]
    np.testing.assert_array_equal(table["x"].values, x)
    assert table["label"].values.tolist() == [f"k{i}" for i in range(n)]


def test_decimal_commas_in_scientific_notation_are_found_as_the_files_decimal_mark(tmp_path, rng):
    # Excel in a decimal-comma locale writes '1,257E-04'. The look for a decimal comma
    # took only cells like '1,5', so a file of such numbers was read with '.': every
    # number became text, a column of distinct ones left out as a 'row identifier' and
    # one with repeats one-hot encoded, a category per number.
    n = int(rng.integers(12, 40))
    sep = str(rng.choice([";", "\t"]))
    digits = [int(d) for d in rng.choice([1, 2, 4, 5], size=3)]  # (3 alone: thousands, after a tab)
    scales = 10.0 ** rng.integers(-6, 7, size=3)
    columns = {
        name: [f"{v:.{d}E}".replace(".", ",") for v in rng.normal(size=n) * scale]
        for name, d, scale in zip(("a", "b", "c"), digits, scales, strict=True)
    }
    lines = [sep.join(columns), *(sep.join(row) for row in zip(*columns.values(), strict=True))]
    path = tmp_path / ("sci.tsv" if sep == "\t" else "sci.csv")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    expected = pd.read_csv(path, sep=sep, decimal=",")
    table = read_table(path)
    assert table.decimal == ","
    for name in columns:
        assert table[name].kind == "number", name
        np.testing.assert_array_equal(table[name].values, expected[name].to_numpy())


def test_utf16_named_for_a_file_without_its_bom_is_refused_in_one_line(tmp_path, rng, capsys):
    # Excel's 'Unicode text' is UTF-16 with a BOM; the same text without one, read with
    # --encoding utf-16, made the codec raise a UnicodeError that is no
    # UnicodeDecodeError: a traceback, where a wrong encoding is one line (exit 2).
    n = int(rng.integers(8, 20))
    rows = [
        f"{float(v)!r}\t{k}"
        for v, k in zip(rng.normal(size=n), rng.integers(2, size=n), strict=True)
    ]
    path = tmp_path / "unicode.txt"
    path.write_bytes("\n".join(["x\tlabel", *rows, ""]).encode("utf-16-le"))
    model = tmp_path / "m.safetensors"
    code = main(["train", "--data", str(path), "--target", "label", "--encoding", "utf-16",
                 "-o", str(model), "-q"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "no byte-order mark" in err, err
    assert "not utf-16; give --encoding utf-16-le" in err, err  # (it said 'e.g. latin-1')


def test_rows_are_named_by_their_own_lines_beside_comments_and_quoted_marks(tmp_path, rng):
    # With --comment '#', the line finder (what 'dropped 2 rows with no target (line 4,
    # …)' and every per-row message name) took a row whose quoted first cell starts with
    # '#' for a comment, and read a quote in a comment line as opening a cell: the rows
    # after were named by the next row's line, or not at all ('line ? (row 3)').
    n = int(rng.integers(5, 20))
    lines, expected = ['# exported by "tool", columns: a,"b', "note,x,label"], []
    for i in range(n):
        if rng.random() < 0.3:
            lines.append(str(rng.choice(["# a comment", '# said "so', "", '# ,"x'])))
        note = f'"#{i} item"' if i == 0 or rng.random() < 0.5 else f"item {i}"  # one at least
        lines.append(f"{note},{float(rng.normal())!r},{rng.choice(['p', 'q'])}")
        expected.append(f"line {len(lines)}")
    path = tmp_path / "marked.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    table = read_table(path, comment="#")
    assert table.n_rows == n
    assert [table.row_name(i) for i in range(n)] == expected


def _dialect_table(rng, n: int):
    """Columns of numbers (of any size, in several notations), booleans and text (with the
    separator, quotes and line breaks in it), with gaps as pandas marks them; returns
    {name: (kind, values)} with None for a gap, and how each cell is written."""
    columns = {}
    for j in range(int(rng.integers(2, 6))):
        kind = str(rng.choice(["number", "number", "whole", "bool", "text"]))
        name = f"{rng.choice(['wert', 'Größe', 'x y', 'naïve'])}{j}"
        values = []
        for _ in range(n):
            if rng.random() < 0.15:
                values.append(None)
            elif kind == "number":
                values.append(float(rng.uniform(-1, 1) * 10.0 ** rng.integers(-6, 9)))
            elif kind == "whole":
                values.append(float(rng.integers(-(10**6), 10**6)))
            elif kind == "bool":
                values.append(bool(rng.random() < 0.5))
            else:
                values.append(
                    str(rng.choice(["red", "blue, dark", 'say "hi"', "two\nlines", "a;b"]))
                )
        if all(v is None for v in values):
            values[0] = {"number": 1.5, "whole": 1.0, "bool": True, "text": "red"}[kind]
        columns[name] = (kind, values)
    return columns


def test_a_table_in_any_dialect_reads_as_pandas_reads_it(tmp_path, rng):
    # The differential this hunt ran, kept: a random table written in a random dialect
    # (separator, decimal mark, line endings, quoting, BOM, comment and blank lines,
    # gzip); every cell must read as written (pandas, given the dialect, agrees).
    import gzip

    for case in range(4):
        n = int(rng.integers(3, 25))
        columns = _dialect_table(rng, n)
        sep = str(rng.choice([",", ";", "\t", "|"]))
        decimal = "," if sep in ";\t" and rng.random() < 0.6 else "."
        ending = str(rng.choice(["\n", "\r\n", "\r"]))

        def cell(kind, v, decimal=decimal):
            if v is None:
                return str(rng.choice(["", "NA", "NaN", "null", "N/A"]))
            if kind == "bool":
                return str(v)
            if kind in ("number", "whole"):
                form = (
                    str(rng.choice(["{!r}", "{:.6g}", "{:.4E}"])) if kind == "number" else "{:.0f}"
                )
                return form.format(v).replace(".", decimal)
            return v

        buffer = io.StringIO()
        quoting = int(rng.choice([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
        if ending == "\r":  # (Python's csv quotes a '\n' only where it ends the lines)
            quoting = csv.QUOTE_ALL
        writer = csv.writer(buffer, delimiter=sep, lineterminator=ending, quoting=quoting)
        comment = "#" if rng.random() < 0.4 else None
        if comment:
            buffer.write(f'# exported, "by" hand{ending}')
        writer.writerow(columns)
        written = []
        for i in range(n):
            row = [cell(kind, values[i]) for kind, values in columns.values()]
            for k, (kind, values) in enumerate(columns.values()):  # what was meant by the cell
                if kind in ("number", "whole") and values[i] is not None:
                    values[i] = float(row[k].replace(",", "."))
            written.append(row)
            if rng.random() < 0.1:
                buffer.write(ending)  # a blank line
            if comment and rng.random() < 0.1:
                buffer.write(f"# {i}{ending}")
            writer.writerow(row)
        data = ("\ufeff" if rng.random() < 0.3 else "") + buffer.getvalue()
        packed = rng.random() < 0.3
        path = tmp_path / f"t{case}.csv{'.gz' * packed}"
        path.write_bytes(gzip.compress(data.encode()) if packed else data.encode())
        where = f"case {case}: sep {sep!r}, decimal {decimal!r}, ending {ending!r}"

        expected = pd.read_csv(path, sep=sep, decimal=decimal, comment=comment)
        table = read_table(path, comment=comment)
        assert table.n_rows == len(expected) == n, where
        for name, (kind, values) in columns.items():
            column = table[name]
            missing = [v is None for v in values]
            assert column.missing.tolist() == missing, (where, name)
            present = [v for v in values if v is not None]
            got = [v for v, gap in zip(column.values.tolist(), missing, strict=True) if not gap]
            if kind == "bool":
                assert column.kind == "bool" and got == [float(v) for v in present], (where, name)
            elif kind == "text":
                assert column.kind == "text" and got == present, (where, name)
            else:
                assert column.kind == "number", (where, name)
                assert got == present, (where, name)
                pandas = expected[name].to_numpy(dtype=float)
                np.testing.assert_array_equal(pandas[~np.array(missing)], present, err_msg=where)


def test_an_inch_mark_inside_a_cell_opens_no_quoted_cell_among_comment_lines(tmp_path, rng):
    # Comment lines are dropped outside quoted cells only; a quote inside a cell (5'11",
    # 12" pizza) is text to the reader, not the start of a quoted cell, so the comment
    # lines after it must still go (kept, they were read as rows, or broke the read).
    n = int(rng.integers(4, 15))
    sep = str(rng.choice([",", ";", "\t"]))
    lines, names, heights, notes = (
        ["# heights", sep.join(["name", "height", "note", "w"])],
        [],
        [],
        [],
    )
    for i in range(n):
        height = f"{rng.integers(4, 7)}'{rng.integers(0, 12)}\""
        note = "tall\n# not a comment" if rng.random() < 0.3 else f"n{i}"
        quoted = '"' + note + '"' if "\n" in note else note
        lines.append(sep.join([f"p{i}", height, quoted, str(60 + i)]))
        if rng.random() < 0.5:
            lines.append(f"# after row {i}")
        names.append(f"p{i}")
        heights.append(height)
        notes.append(note)
    path = tmp_path / "heights.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    table = read_table(path, comment="#")
    assert table.n_rows == n
    assert table["name"].values.tolist() == names
    assert table["height"].values.tolist() == heights
    assert table["note"].values.tolist() == notes
    np.testing.assert_array_equal(table["w"].values, 60 + np.arange(n))


def test_an_inch_mark_in_a_one_column_file_leaves_its_lines_of_spaces_blank(tmp_path, rng):
    # A one-column file's lines of spaces are blank (pandas skips them), but for lines
    # inside a quoted cell; an inch mark (5'11") was taken for a quote opening one, so
    # the lines of spaces after it stayed: rows too many, each a gap.
    n = int(rng.integers(3, 15))
    heights = [f"{rng.integers(4, 7)}'{rng.integers(0, 12)}\"" for _ in range(n)]
    lines = ["height"]
    for height in heights:
        lines.append(height)
        if rng.random() < 0.5:
            lines.append(str(rng.choice([" ", "   ", "\t"])))
    lines.insert(2, "  ")  # at least one, after the first mark
    path = tmp_path / "heights.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    assert pd.read_csv(path)["height"].tolist() == heights  # pandas reads it so
    table = read_table(path)
    assert table["height"].values.tolist() == heights


def test_rows_of_a_semicolon_file_with_quoted_line_breaks_are_named_by_their_lines(tmp_path, rng):
    # The line finder read every file at ',': in a ';' or tab file a quoted cell's line
    # break ('1,5;"a\nb";p') was no cell's to it, so each row after was named by the
    # line before its own ('dropped 2 rows with no target (line 3, ...)' for line 4).
    n = int(rng.integers(8, 25))
    sep = str(rng.choice([";", "\t", "|"]))
    rows, expected, line = [], [], 2
    for i in range(n):
        note = f'"first\nsecond {i}"' if i == 0 or rng.random() < 0.3 else f"n{i}"
        label = "" if rng.random() < 0.2 else str(rng.choice(["p", "q"]))
        rows.append(sep.join([f"{float(rng.normal()):.4f}", note, label]))
        expected.append(f"line {line}")
        line += 1 + note.count("\n")
    path = tmp_path / "notes.csv"
    path.write_text("\n".join([sep.join(["x", "note", "label"]), *rows]) + "\n", encoding="utf-8")

    table = read_table(path)
    assert table.n_rows == n
    assert [table.row_name(i) for i in range(n)] == expected
