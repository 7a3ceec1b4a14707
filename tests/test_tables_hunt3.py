"""Tables read as pandas reads them, third hunt: hexadecimal past the sample, missing
markers, comment lines in UTF-16, '\\r' files, and the spellings people write (thousands
separators, '+1', 'inf', booleans, nullable pandas columns). Inputs are drawn fresh each
run; every expected value comes from the data or from pandas."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from wxb.cli import main
from wxb.errors import DataError
from wxb.tables import read_table


def _write(path, text: str, encoding: str = "utf-8") -> None:
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding=encoding, newline="") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding=encoding, newline="")


@pytest.mark.parametrize(
    ("name", "encoding"),
    [("codes.csv", "utf-8"), ("codes.csv.gz", "utf-8"), ("commented.csv", "utf-8"),
     ("codes.csv", "utf-16"), ("commented.csv", "utf-16-le")],
)  # fmt: skip
def test_hexadecimal_past_the_sample_is_text_as_pandas_reads_it(tmp_path, rng, name, encoding):
    # A column of whole numbers whose first 64 KiB holds no code, then '0x1F' further
    # down: pyarrow reads it as the int64 31, and the user trained on 31 where pandas
    # (and wxb, had the code come first) reads text.
    n = int(rng.integers(9_000, 14_000))  # past 64 KiB
    ids = rng.integers(0, 10**6, n)
    codes = [str(v) for v in rng.integers(0, 10**6, n)]
    at = int(rng.integers(n * 3 // 4, n))
    codes[at] = f"0{'xX'[int(rng.integers(2))]}{int(rng.integers(16, 2**31)):X}"
    words = rng.choice(["box", "tax", "fox0x1", "Xylo"], n)  # an 'x' that is no code
    lines = ["id,code,word,x"]
    lines += [f"{ids[i]},{codes[i]},{words[i]},{i * 0.25}" for i in range(n)]
    text = "\n".join(lines) + "\n"
    comment = "#" if name.startswith("commented") else None
    if comment:
        text = "# exported\n" + text
    path = tmp_path / name
    _write(path, text, encoding)

    expected = pd.read_csv(path, comment=comment, encoding=encoding)
    assert not pd.api.types.is_integer_dtype(expected["code"])  # pandas: text
    table = read_table(path, comment=comment, encoding=encoding)
    assert table["code"].kind == "text", f"{codes[at]!r} at row {at} was read as a number"
    assert table["code"].values.tolist() == expected["code"].astype(str).tolist()
    assert table["id"].kind == "number" and table["id"].integer  # 'x' words move nothing
    np.testing.assert_array_equal(table["id"].values, expected["id"].to_numpy())


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "cp1252"])
def test_comment_lines_are_skipped_in_a_file_of_any_encoding(tmp_path, rng, encoding):
    # --comment did nothing in UTF-16 or -32: the file's bytes were split at b'\n' and
    # looked at for b'#', neither of which such a file holds; the comment lines were then
    # rows (a refusal), or the file cut inside its characters.
    n = int(rng.integers(5, 40))
    x = np.round(rng.normal(size=n) * 100, 3)
    town = rng.choice(["Zürich", "Genève", "Köln", "Łódź" if encoding != "cp1252" else "Liège"], n)
    lines = ["# exported, with commas, by a tool", "id,x,town"]
    for i in range(n):
        if rng.random() < 0.3:
            lines.append(f"# note {i}, {rng.integers(100)}")
        lines.append(f"{i},{x[i]!r},{town[i]}")
    ending = str(rng.choice(["\n", "\r\n"]))
    path = tmp_path / "notes.csv"
    _write(path, ending.join(lines) + ending, encoding)

    expected = pd.read_csv(path, comment="#", encoding=encoding)
    table = read_table(path, comment="#", encoding=encoding)
    assert table.n_rows == len(expected) == n
    np.testing.assert_array_equal(table["x"].values, expected["x"].to_numpy())
    assert table["town"].values.tolist() == expected["town"].tolist()


def test_nan_in_any_spelling_pandas_knows_is_a_gap_in_a_column_of_numbers(tmp_path, rng):
    # pandas's default markers include the NaN old Windows C runtimes print ('-1.#IND',
    # '1.#QNAN'): pandas reads the column as numbers with gaps, wxb read it as text (one-hot
    # categories, or a refusal). 'NAN'/'Nan' are gaps in wxb's number columns (float()'s
    # reading); pandas needs them named, which gives the same numbers.
    n = int(rng.integers(20, 60))
    x = np.round(rng.normal(size=n) * 10, 3)
    spellings = ["-1.#IND", "1.#IND", "-1.#QNAN", "1.#QNAN", "NAN", "Nan", "nAN", "NaN"]
    gaps = rng.choice(n, size=int(rng.integers(1, n // 8 + 2)), replace=False)
    cells = [repr(float(v)) for v in x]
    for i in gaps:
        cells[i] = str(rng.choice(spellings))
    cells[gaps[0]] = str(rng.choice(spellings[:4]))  # one of pandas's own, at least
    colour = rng.choice(["red", "blue"], n)
    path = tmp_path / "gaps.csv"
    path.write_text(
        "x,colour\n" + "".join(f"{c},{k}\n" for c, k in zip(cells, colour, strict=True))
    )
    expected = pd.read_csv(path, na_values=["NAN", "Nan", "nAN"])["x"].to_numpy()
    assert np.isnan(expected).sum() == len(gaps)  # pandas: all of them gaps
    table = read_table(path)
    assert table["x"].kind == "number", f"cells {[cells[i] for i in gaps]} made it text"
    np.testing.assert_array_equal(table["x"].values, expected)


def test_lines_of_spaces_in_a_one_column_file_of_any_line_endings_are_no_rows(tmp_path, rng):
    # A one-column file past a block (1 MiB) whose lines end in '\r', '\n' or '\r\n', mixed,
    # with lines of spaces or tabs anywhere (the first and last too, and one across the
    # block's end): each is blank, as pandas skips it. (Cut at '\n' alone, a '\r' file
    # was held and searched again block by block: quadratic.)
    n = int(rng.integers(120_000, 150_000))
    values = np.round(rng.normal(size=n) * 10.0 ** rng.integers(-2, 4), 4)
    cells = [repr(float(v)) for v in values]
    endings = ["\r", "\n", "\r\n"][: int(rng.integers(1, 4))]
    ends = rng.choice(endings, n + 2)
    lines = ["x", *cells]
    blanks = {int(i) for i in rng.choice(np.arange(1, n), size=int(rng.integers(1, 6)))}
    offsets = np.cumsum([len(line) + len(end) for line, end in zip(lines, ends, strict=False)])
    blanks.add(int(np.searchsorted(offsets, 1 << 20)) - 1)  # its spaces where the block ends
    text = "".join(
        f"{line}{ends[k]}" + (" \t "[: int(rng.integers(1, 4))] + ends[k] if k in blanks else "")
        for k, line in enumerate(lines)
    )
    if rng.random() < 0.5:
        text = text.rstrip("\r\n") + ends[-1] + "   "  # a last line of spaces, unfinished
    path = tmp_path / "one.csv"
    path.write_bytes(text.encode())

    expected = pd.read_csv(path)["x"].to_numpy()
    table = read_table(path)
    assert table["x"].kind == "number"
    np.testing.assert_array_equal(table["x"].values, expected)
    np.testing.assert_array_equal(table["x"].values, values)


def test_a_header_alone_without_its_line_break_is_said_to_have_no_rows(tmp_path, rng, capsys):
    # pandas reads 'a,b' (no line break after it) as a table of no rows; wxb said "the
    # file is empty" (pyarrow's 'Empty CSV file'), sending the user to look for a file
    # that was not written, where it has its header and nothing else.
    names = [f"c{i}" for i in rng.permutation(int(rng.integers(2, 6)))]
    path = tmp_path / "header.csv"
    path.write_text(",".join(names))
    expected = pd.read_csv(path)
    assert list(expected.columns) == names and len(expected) == 0
    code = main(["train", "--data", str(path), "--target", names[0], "-o",
                 str(tmp_path / "m.safetensors"), "-q"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "has a header but no data rows" in err, err


def test_a_hexadecimal_cell_cut_by_a_block_of_the_look_is_seen(tmp_path, rng):
    # The file is looked at 1 MiB at a time: a '0x1F' whose bytes the block's end cuts
    # ('…,0' | 'x1F') must be seen as one, or the column is read as numbers (31).
    cut = int(rng.integers(0, 3))  # the block ends before the code's '0', 'x' or digit
    lines, size = ["id,note,code"], len("id,note,code\n")
    while size < (1 << 20) - 60:
        lines.append(f"{len(lines)},a,{int(rng.integers(0, 10**6))}")
        size += len(lines[-1]) + 1
    hex_at = len(lines) + 1  # after one padding line, sized to put the code there
    start = (1 << 20) - cut - len(f"{hex_at},a,")  # where the code's line must start
    lines.append(f"{len(lines)},{'a' * (start - size - len(f'{len(lines)},,7') - 1)},7")
    lines.append(f"{hex_at},a,0x{int(rng.integers(16, 2**20)):X}")
    lines += [f"{hex_at + 1 + i},a,{int(rng.integers(0, 10**6))}" for i in range(50)]
    text = "\n".join(lines) + "\n"
    assert text.index(",0x") + 1 == (1 << 20) - cut
    path = tmp_path / "edge.csv"
    path.write_text(text)

    expected = pd.read_csv(path)
    assert not pd.api.types.is_integer_dtype(expected["code"])
    table = read_table(path)
    assert table["code"].kind == "text", f"block cut {cut} bytes before the code"
    assert table["code"].values.tolist() == expected["code"].astype(str).tolist()


@pytest.mark.parametrize("form", ["csv", "parquet", "dataframe"])
def test_a_wide_table_reads_its_columns_as_pandas_does(tmp_path, rng, form):
    # Thousands of columns (a spectrum, a bag of words): each read by name as pandas reads
    # it, the chosen ones only, the others listed unread. (Columns were let go of by
    # Table.remove_column(0), and the unread found in lists: quadratic, 80 s for 20,000
    # columns of a CSV pandas reads in 1.6 s.)
    n, width = int(rng.integers(20, 60)), int(rng.integers(2_000, 3_000))
    names = [f" c{i}" if rng.random() < 0.1 else f"c{i}" for i in rng.permutation(width)]
    frame = pd.DataFrame(np.round(rng.normal(size=(n, width)), 4), columns=names)
    only = {name.strip() for name in rng.choice(names, size=width // 3, replace=False)}
    if form == "csv":
        source = tmp_path / "wide.csv"
        frame.to_csv(source, index=False)
        expected = pd.read_csv(source)
    elif form == "parquet":
        source = tmp_path / "wide.parquet"
        frame.to_parquet(source)
        expected = pd.read_parquet(source)
    else:
        source = expected = frame
    expected.columns = [str(c).strip() for c in expected.columns]
    table = read_table(source, only=only)
    assert table.names == [c for c in expected.columns if c in only]
    assert sorted(table.unread) == sorted(set(expected.columns) - only)
    for name in table.names:
        np.testing.assert_array_equal(table[name].values, expected[name].to_numpy(), err_msg=name)


def test_a_compressed_commented_file_read_again_for_a_column_keeps_its_comments_out(tmp_path, rng):
    # A .csv.gz read with --comment, whose whole-number column turns out (past pyarrow's
    # first 1 MiB block) to hold a 2.5, and whose code column a '0x1F': read again, the
    # file must be the one without its comment lines, and the codes text, as pandas reads.
    n = int(rng.integers(150_000, 180_000))  # past 1 MiB
    counts = [str(v) for v in rng.integers(0, 1000, n)]
    counts[int(rng.integers(n - 1_000, n))] = f"{rng.integers(0, 1000)}.5"
    codes = [str(v) for v in rng.integers(0, 10**6, n)]
    codes[int(rng.integers(n // 2, n))] = f"0x{int(rng.integers(16, 2**31)):X}"
    lines = ["# exported", "count,code"]
    for i in range(n):
        if rng.random() < 0.001:
            lines.append(f"# note {i}")
        lines.append(f"{counts[i]},{codes[i]}")
    path = tmp_path / "counts.csv.gz"
    _write(path, "\n".join(lines) + "\n")

    expected = pd.read_csv(path, comment="#")
    table = read_table(path, comment="#")
    assert table.n_rows == len(expected) == n
    np.testing.assert_array_equal(table["count"].values, expected["count"].to_numpy())
    assert table["code"].kind == "text"
    assert table["code"].values.tolist() == expected["code"].astype(str).tolist()


@pytest.mark.parametrize("form", ["parquet", "jsonl"])
def test_numbers_stored_as_text_with_nan_spelled_out_read_as_a_csvs_numbers(
    tmp_path, rng, capsys, form
):
    # Numbers stored as strings (Parquet, JSON Lines) with one 'NAN' or 'Nan' among them:
    # wxb trained the column as ~140 one-hot categories, one per number (a CSV's column
    # reads as numbers with a gap); predict on a DataFrame refused 'X has nan at row 7,
    # column 0'; an 'inf' there made the column categories too (a CSV's is refused).
    import wxb

    n = int(rng.integers(120, 200))
    cells = [f"{v:.3f}" for v in rng.normal(size=n)]
    gap = int(rng.integers(n))
    cells[gap] = str(rng.choice(["NAN", "Nan", "nAN"]))
    frame = pd.DataFrame({"a": cells, "b": rng.normal(size=n), "y": rng.choice(["p", "q"], n)})
    path = tmp_path / f"t.{form}"
    if form == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=True)
    csv_path = tmp_path / "t.csv"
    frame.to_csv(csv_path, index=False)
    expected = pd.read_csv(csv_path, na_values=[cells[gap]])["a"].to_numpy()
    table = read_table(path)
    assert table["a"].kind == "text"  # as stored; read as numbers where features are chosen
    model = tmp_path / "m.safetensors"
    code = main(["train", "--data", str(path), "--target", "y", "-o", str(model), "--epochs",
                 "1", "-q"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    rules = {r["name"]: r for r in wxb.load(model).info["table"]["columns"]}
    assert rules["a"]["kind"] == "number", rules["a"]
    assert np.isnan(expected[gap]) and np.isfinite(np.delete(expected, gap)).all()

    loaded = wxb.load(model)
    rows = frame.drop(columns="y")
    as_gap = rows.copy()
    as_gap.loc[gap, "a"] = None
    np.testing.assert_array_equal(loaded.predict(rows), loaded.predict(as_gap))

    cells[gap] = str(rng.choice(["inf", "-inf", "Infinity"]))
    frame["a"] = cells
    frame.to_parquet(path) if form == "parquet" else frame.to_json(
        path, orient="records", lines=True
    )
    code = main(["train", "--data", str(path), "--target", "y", "-o", str(model), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"column 'a': '{cells[gap]}' is not a finite number" in err, err


def test_numbers_grouped_by_a_narrow_no_break_space_are_said_to_be_text(tmp_path, rng, capsys):
    # French number formats group thousands with U+202F (what current locales and Excel
    # write: '6 700,00'), Swiss ones with U+2019 ('6’700.00'): pandas reads them with
    # thousands=; wxb read the column as text, one input per price, without the
    # thousands-separator warning that ' ' and U+00A0 get.
    n = int(rng.integers(80, 150))
    mark, decimal = [("\u202f", ","), ("\u2009", ","), ("\u2019", ".")][int(rng.integers(3))]
    sep = ";" if decimal == "," else ","
    prices = np.round(rng.uniform(1_000, 999_999, n), 2)
    cells = [f"{p:,.2f}".replace(",", "T").replace(".", decimal).replace("T", mark) for p in prices]
    x = np.round(rng.normal(size=n), 3)
    lines = [f"prix{sep}x{sep}y"] + [
        f"{c}{sep}{str(v).replace('.', decimal)}{sep}{k}"
        for c, v, k in zip(cells, x, rng.choice(["a", "b"], n), strict=True)
    ]
    path = tmp_path / "prix.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = pd.read_csv(path, sep=sep, decimal=decimal, thousands=mark, engine="python")
    np.testing.assert_allclose(expected["prix"].to_numpy(), prices)  # what the cells mean

    code = main(["train", "--data", str(path), "--target", "y", "-o",
                 str(tmp_path / "m.safetensors"), "--epochs", "1", "-q"])  # fmt: skip
    err = capsys.readouterr().err
    # each price its own as text: refused in one line (it was left out as a row identifier)
    unique = len(set(cells)) == n
    assert code == (2 if unique else 0), err
    assert "column 'prix' is read as text" in err and "thousands separators" in err, err


def test_a_short_row_after_a_cell_with_a_form_feed_is_named_by_its_own_line(tmp_path, rng):
    # A cell pasted with a form feed, U+2028 or U+0085 inside (no line break to a CSV
    # reader, pandas's or pyarrow's): the row with a value too many after it was named
    # by a line too many per such cell (str.splitlines breaks there).
    n = int(rng.integers(6, 30))
    bad = int(rng.integers(n // 2, n))
    ending = str(rng.choice(["\n", "\r\n", "\r"]))
    lines = ["id,note"]
    for i in range(n):
        note = f"n{i}"
        if i < bad and rng.random() < 0.5:
            note += str(rng.choice(["\x0c", "\u2028", "\x85", "\x1e"])) + "more"
        lines.append(f"{i},{note}" + (",extra" if i == bad else ""))
    lines[1] += "\x0cp"  # one such cell before it at least
    path = tmp_path / "notes.csv"
    path.write_text(ending.join(lines) + ending, encoding="utf-8", newline="")
    with pytest.raises(DataError, match=rf"line {bad + 2}: 3 values but the header has 2"):
        read_table(path)


def test_a_header_repeated_inside_the_file_is_refused_by_its_line(tmp_path, rng, capsys):
    # 'cat jan.csv feb.csv > all.csv' leaves the second header among the rows. pandas reads
    # it as a row (every cell its column's name); wxb did too where the columns were text:
    # a class 'species' of one row, a category per column. Refused, naming its line.
    n = int(rng.integers(10, 40))
    frame = pd.DataFrame({
        "colour": rng.choice(["red", "blue", "green"], n),
        "size": rng.choice(["S", "M", "L"], n),
        "species": rng.choice(["setosa", "virginica"], n),
    })  # fmt: skip
    if rng.random() < 0.5:
        frame.insert(0, "x", np.round(rng.normal(size=n), 3))  # a number column too
    first = tmp_path / "jan.csv"
    frame.iloc[: n // 2].to_csv(first, index=False)
    path = tmp_path / "all.csv"
    half = frame.iloc[n // 2 :].to_csv(index=False)
    path.write_text(first.read_text() + half)
    expected = pd.read_csv(path)
    assert (expected.iloc[n // 2].astype(str) == expected.columns).all()  # pandas: a row

    code = main(["train", "--data", str(path), "--target", "species", "-o",
                 str(tmp_path / "m.safetensors"), "--epochs", "1", "-q"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"line {n // 2 + 2}: repeats the header" in err, err
