"""Messy tables through the command line (a hunt of the CLI and its reading): each case is
read as a person means it, or said plainly; never a silently wrong number or label.
Inputs are drawn fresh each run; expected values come from the data or from pandas."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest
from cli_run import FAST, run

from wxb.tables import read_table


def test_decimal_commas_after_a_space_after_each_semicolon_are_numbers(tmp_path, rng):
    # 'id; price; qty': the only fractions sit after '; ', which the sniffing missed, so
    # price was read as text and one-hot encoded without a word
    n = 40
    price = rng.integers(100, 9999, n) / 100
    lines = ["id; price; qty"] + [
        f"{i}; {p:.2f}; {q}".replace(".", ",")
        for i, (p, q) in enumerate(zip(price, rng.integers(1, 9, n), strict=True))
    ]
    (tmp_path / "p.csv").write_text("\n".join(lines) + "\n")
    expected = pd.read_csv(tmp_path / "p.csv", sep=";", decimal=",", skipinitialspace=True)
    table = read_table(tmp_path / "p.csv")
    assert table["price"].kind == "number"
    np.testing.assert_array_equal(table["price"].values, expected["price"].to_numpy())


def test_a_column_of_decimal_commas_in_a_comma_file_is_said_to_be_text(tmp_path, rng, capsys):
    # '"0,13"' quoted in a ',' file: text, as pandas reads it; it was one-hot encoded in
    # silence (a few such cells are refused, most said; all of them were said nothing of)
    n = 60
    x = rng.normal(size=n)
    x[1] = x[0]  # a value twice: text unique to every row would be taken for an identifier
    with (tmp_path / "c.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["x", "y"])
        writer.writerows([f"{v:.2f}".replace(".", ","), "pos" if v > 0 else "neg"] for v in x)
    assert not pd.api.types.is_numeric_dtype(pd.read_csv(tmp_path / "c.csv")["x"])  # pandas: text
    code, _, err = run(capsys, "train", "--data", tmp_path / "c.csv", "--target", "y", *FAST,
                       "-o", tmp_path / "m.safetensors")  # fmt: skip
    assert code == 0, err
    assert "'x' is read as text" in err and "decimal comma" in err and "--decimal ," in err


def test_long_identifiers_stored_as_floats_are_written_whole(tmp_path, rng, capsys):
    # pandas stores an identifier column with a gap as float64; Arrow's cast to text wrote
    # 123456789012.0 as '1.23456789012e+11' beside each prediction
    n = 60
    x = rng.normal(size=n).round(3)
    ids = 10**10 + rng.permutation(10**6)[:n] * 10**6 + rng.integers(0, 10**6, n)
    frame = pd.DataFrame({"id": ids, "x": x, "y": np.where(x > 0, "pos", "neg")})
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", tmp_path / "t.csv", "--target", "y",
                       "--id-column", "id", *FAST, "-o", model)  # fmt: skip
    assert code == 0, err
    new = frame.drop(columns="y").astype({"id": "float64"})
    new.loc[1, "id"] = np.nan  # the gap that made pandas store floats
    for path in (tmp_path / "new.parquet", tmp_path / "new.feather", tmp_path / "new.jsonl"):
        if path.suffix == ".jsonl":
            new.to_json(path, orient="records", lines=True)
        else:
            getattr(new, f"to_{path.suffix[1:]}")(path)
        code, out, err = run(capsys, "predict", model, path)
        assert code == 0, err
        written = pd.read_csv(io.StringIO(out), dtype=str, keep_default_na=False)["id"]
        expected = ["" if pd.isna(v) else str(int(v)) for v in new["id"]]
        assert written.tolist() == expected, path


def test_a_text_category_of_long_digits_matches_the_same_number_from_parquet(tmp_path, rng, capsys):
    # a text column (codes beside words) trained from CSV; the same codes from a Parquet
    # column of floats came as '1.2e+10' and matched no category: all zeros, in silence
    n = 90
    codes = [str(10**10 + c) for c in rng.choice(10**6, 2, replace=False) * 10**5]
    code_of = rng.choice([*codes, "none"], n)
    x = rng.normal(size=n).round(3)
    frame = pd.DataFrame({"code": code_of, "x": x, "y": np.where(code_of == codes[0], "a", "b")})
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", tmp_path / "t.csv", "--target", "y",
                       *FAST, "-o", model)  # fmt: skip
    assert code == 0, err
    rows = frame[frame["code"] != "none"].drop(columns="y").head(10)
    as_csv = predicted_probabilities(capsys, model, rows, tmp_path / "new.csv")
    numbers = rows.astype({"code": "float64"})
    as_parquet = predicted_probabilities(capsys, model, numbers, tmp_path / "new.parquet")
    np.testing.assert_allclose(as_parquet, as_csv, rtol=1e-6)


def predicted_probabilities(capsys, model, frame: pd.DataFrame, path) -> np.ndarray:
    """``wxb predict --proba`` of ``frame`` written to ``path``: the probability columns."""
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    code, out, err = run(capsys, "predict", model, path, "--proba")
    assert code == 0, err
    result = pd.read_csv(io.StringIO(out))
    return result[[c for c in result.columns if c.startswith("p_")]].to_numpy()


def test_a_comment_line_after_a_byte_order_mark_is_a_comment(tmp_path, rng, capsys):
    # Excel and Notepad start UTF-8 files with a BOM: the first line's '#' came after it, so
    # the comment was read as the header (or refused: '2 values but the header has 1')
    n = 30
    frame = pd.DataFrame({"x": rng.normal(size=n).round(3), "z": rng.integers(0, 9, n)})
    frame["y"] = np.where(frame["x"] > 0, "pos", "neg")
    body = "# made by hand, 2026\n" + frame.to_csv(index=False)
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + body.encode())
    expected = pd.read_csv(tmp_path / "bom.csv", comment="#", encoding="utf-8-sig")
    table = read_table(tmp_path / "bom.csv", comment="#")
    assert table.names == ["x", "z", "y"]
    np.testing.assert_array_equal(table["x"].values, expected["x"].to_numpy())
    code, _, err = run(capsys, "train", "--data", tmp_path / "bom.csv", "--comment", "#",
                       "--target", "y", *FAST, "-o", tmp_path / "m.safetensors")  # fmt: skip
    assert code == 0, err
    # a word among the numbers is named by its line in the file, the comment counted
    row = int(rng.integers(3, n))
    lines = body.splitlines()
    cells = lines[row + 2].split(",")
    lines[row + 2] = ",".join([cells[0], "oops", cells[2]])
    (tmp_path / "bad.csv").write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode() + b"\n")
    code, _, err = run(capsys, "train", "--data", tmp_path / "bad.csv", "--comment", "#",
                       "--target", "y", *FAST, "-o", tmp_path / "m.safetensors")  # fmt: skip
    assert code == 2 and f"line {row + 3}, column 'z': 'oops'" in err, err


def test_numbers_with_currency_or_percent_signs_are_said_to_be_text(tmp_path, rng, capsys):
    # '$5,500.00' or '6%' in every cell: text, as pandas reads them, one-hot encoded (or left
    # out as an identifier) with no word that they were numbers
    n = 60
    price = rng.integers(1, 20, n) / 2
    frame = pd.DataFrame(
        {
            "price": [f"${v * 1000:,.2f}" for v in price],
            "rate": [f"{v:g}%" for v in price],
            "y": rng.choice(["hi", "lo"], n),
        }
    )
    frame.to_csv(tmp_path / "s.csv", index=False)
    read = pd.read_csv(tmp_path / "s.csv")
    assert not any(pd.api.types.is_numeric_dtype(read[c]) for c in ("price", "rate"))
    code, _, err = run(capsys, "train", "--data", tmp_path / "s.csv", "--target", "y", *FAST,
                       "-o", tmp_path / "m.safetensors")  # fmt: skip
    assert code == 0, err
    for name in ("price", "rate"):
        assert f"'{name}' is read as text" in err and "currency or percent sign" in err, err


def test_a_columnar_file_of_no_rows_is_one_line(tmp_path, rng, capsys):
    # a Parquet or Feather file with columns but no rows (a filter that kept none) crashed
    # the float32 reading with NumPy's 'zero-size array to reduction operation fmax'
    n = 30
    x = rng.normal(size=n).round(3)
    frame = pd.DataFrame({"x": x, "c": rng.choice(["u", "v"], n), "y": np.where(x > 0, "p", "q")})
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", tmp_path / "t.csv", "--target", "y", *FAST,
                       "-o", model)  # fmt: skip
    assert code == 0, err
    for suffix in ("parquet", "feather"):
        empty = tmp_path / f"empty.{suffix}"
        getattr(frame.head(0), f"to_{suffix}")(empty)
        for argv in (
            ("eval", model, empty),
            ("train", "--data", empty, "--target", "y", *FAST, "-o", tmp_path / "e.safetensors"),
        ):
            code, out, err = run(capsys, *argv)
            assert code == 2 and out == "" and len(err.splitlines()) == 1, (argv, err)
            assert str(empty) in err
        # predict on no rows gives the predictions' header alone (wxb predict --help)
        written = tmp_path / f"p-{suffix}.csv"
        code, _, err = run(capsys, "predict", model, empty, "-o", written)
        assert code == 0, err
        assert pd.read_csv(written).shape[0] == 0


@pytest.mark.parametrize("cells", [[[1], [2, 3]], [{"a": 1}, {"a": 2}], [b"\xff", b"a"]])
def test_a_text_column_of_lists_structs_or_bytes_in_parquet_is_one_line(
    tmp_path, rng, capsys, cells
):
    # a model's text column (a category, the classes' column) is read as text: Arrow's cast
    # of a list or struct to text raised ArrowNotImplementedError, a traceback
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 30
    x = rng.normal(size=n).round(3)
    frame = pd.DataFrame({"x": x, "c": rng.choice(["u", "v"], n), "y": np.where(x > 0, "p", "q")})
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", tmp_path / "t.csv", "--target", "y", *FAST,
                       "-o", model)  # fmt: skip
    assert code == 0, err
    odd = pa.array(cells * 3)
    for name in ("c", "y"):  # a feature's text column; the classes' column
        table = pa.table({"x": x[:6], "c": ["u"] * 6, "y": ["p"] * 6})
        table = table.set_column(table.column_names.index(name), name, odd)
        pq.write_table(table, tmp_path / "odd.parquet")
        for command in ("eval", "predict"):
            code, _, err = run(capsys, command, model, tmp_path / "odd.parquet")
            if command == "predict" and name == "y":
                assert code == 0, err  # the classes' column is not read to predict
                continue
            assert code == 2 and len(err.splitlines()) == 1 and f"column {name!r}" in err, err


def test_lines_of_spaces_alone_are_blank_lines(tmp_path, rng, capsys):
    # a line of spaces (a hand edit, a trailing line) was refused as '1 values but the header
    # has 3'; pandas skips it as blank, and lines after it keep their numbers in messages
    n = 30
    x = rng.normal(size=n).round(3)
    lines = ["x,z,y"] + [
        f"{v},{k},{'p' if v > 0 else 'q'}" for v, k in zip(x, rng.integers(0, 9, n), strict=True)
    ]
    spaced = sorted(rng.choice(np.arange(2, n), 3, replace=False), reverse=True)
    for at in spaced:
        lines.insert(int(at), " " * int(rng.integers(1, 4)))
    lines.append("  \t ")
    (tmp_path / "s.csv").write_text("\n".join(lines) + "\n")
    expected = pd.read_csv(tmp_path / "s.csv")
    table = read_table(tmp_path / "s.csv")
    assert table.n_rows == len(expected) == n
    np.testing.assert_array_equal(table["x"].values, expected["x"].to_numpy())
    # a word among the numbers, after the lines of spaces: named by its own line
    bad = len(lines) - 2  # the last data line, from 0
    cells = lines[bad].split(",")
    lines[bad] = ",".join([cells[0], "oops", cells[2]])
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    code, _, err = run(capsys, "train", "--data", tmp_path / "bad.csv", "--target", "y", *FAST,
                       "-o", tmp_path / "m.safetensors")  # fmt: skip
    assert code == 2 and f"line {bad + 1}, column 'z': 'oops'" in err, err


@pytest.mark.parametrize("blank_lines", [0, 2])
def test_a_header_name_with_a_line_break_beside_a_renamed_one(tmp_path, rng, blank_lines):
    # a spreadsheet's header cell '"Weight\n(kg)"' beside an empty name (pandas's index) or
    # spaces: the renamed header was skipped as one line, so '(kg)",…' was read as a row:
    # refused as too short, or, with as many cells as the header, a row of words in silence
    n = 30
    weight = rng.integers(50, 100, n)
    y = rng.choice(["a", "b"], n)
    headers = {
        ',"Weight\n(kg)",y': lambda i, v, c: f"{i},{v},{c}",
        ' id ,"Weight\n(kg)", y': lambda i, v, c: f"{i},{v},{c}",
        '"Weight\n(kg)", id ,y': lambda i, v, c: f"{v},{i},{c}",  # '(kg)", id ,y': 3 cells
    }
    for k, (first, row) in enumerate(headers.items()):
        rows = [row(i, v, c) for i, (v, c) in enumerate(zip(weight, y, strict=True))]
        path = tmp_path / f"h{k}.csv"
        path.write_text("\n" * blank_lines + first + "\n" + "\n".join(rows) + "\n")
        expected = pd.read_csv(path)
        table = read_table(path)
        assert table.n_rows == len(expected) == n, first
        assert table["Weight\n(kg)"].kind == "number"
        np.testing.assert_array_equal(table["Weight\n(kg)"].values, expected["Weight\n(kg)"])
        assert table["y"].values.tolist() == y.tolist()


def test_an_empty_comment_mark_is_refused_as_such(tmp_path, rng, capsys):
    # every line starts with '': all were dropped as comments, and the file called empty
    frame = pd.DataFrame({"x": rng.normal(size=20).round(3), "y": rng.choice(["a", "b"], 20)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    code, _, err = run(capsys, "train", "--data", tmp_path / "t.csv", "--target", "y",
                       "--comment", "", *FAST, "-o", tmp_path / "m.safetensors")  # fmt: skip
    assert code == 2 and "--comment" in err and "empty" not in err, err
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.parametrize("name", ["p.tsv", "p.csv.gz", "p.parquet", "p.jsonl", "p.feather"])
def test_predictions_are_not_written_under_a_name_of_another_format(tmp_path, rng, capsys, name):
    # -o p.csv.gz wrote plain text that wxb and pandas then failed to inflate; -o p.tsv wrote
    # commas that both read back, split at tabs, as one column
    n = 30
    x = rng.normal(size=n).round(3)
    frame = pd.DataFrame({"x": x, "y": np.where(x > 0, "p", "q")})
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", tmp_path / "t.csv", "--target", "y", *FAST,
                       "-o", model)  # fmt: skip
    assert code == 0, err
    code, out, err = run(capsys, "predict", model, tmp_path / "t.csv", "-o", tmp_path / name)
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and "CSV" in err, err
    assert not (tmp_path / name).exists()
    code, _, err = run(capsys, "predict", model, tmp_path / "t.csv", "-o", tmp_path / "p.csv")
    assert code == 0, err
    assert pd.read_csv(tmp_path / "p.csv")["prediction"].isin(["p", "q"]).all()


@pytest.mark.parametrize(
    "written, said",
    [
        (lambda v: f"{v:,}", "thousands separators"),  # '1,200' beside 850
        (lambda v: f"{v:,}".replace(",", " "), "thousands separators"),  # '1 200'
        (lambda v: f"${v}", "currency or percent sign"),  # '$1200' beside 850
    ],
)
def test_a_minority_of_numbers_written_so_is_said_as_such(tmp_path, rng, capsys, written, said):
    # only the large incomes carry a separator (or a sign): the warning took them for words
    # to add to --na-values (which would make every large income a gap)
    n = 60
    income = rng.choice([640, 850, 920, rng.integers(1000, 9000), rng.integers(1000, 9000)], n)
    cells = [written(int(v)) if v >= 1000 else str(v) for v in income]
    frame = pd.DataFrame({"income": cells, "x": rng.normal(size=n), "y": rng.choice(["a", "b"], n)})
    frame.to_csv(tmp_path / "i.csv", index=False)
    code, _, err = run(capsys, "train", "--data", tmp_path / "i.csv", "--target", "y", *FAST,
                       "-o", tmp_path / "m.safetensors")  # fmt: skip
    assert code == 0, err
    assert "'income' is read as text" in err and said in err and "--na-values" not in err, err


@pytest.mark.parametrize("sep", [";", ","])
def test_excels_separator_line_is_named_not_read_as_the_header(tmp_path, rng, capsys, sep):
    # Excel writes 'sep=;' above the header: it became the header (columns 'sep=' and
    # 'Unnamed: 1', the real header a row of data) or '2 values but the header has 1'
    n = 20
    frame = pd.DataFrame({"a": rng.normal(size=n).round(2), "y": rng.choice(["p", "q"], n)})
    body = frame.to_csv(index=False, sep=sep)
    (tmp_path / "x.csv").write_text(f"sep={sep}\n" + body)
    code, _, err = run(capsys, "train", "--data", tmp_path / "x.csv", "--target", "y", *FAST,
                       "-o", tmp_path / "m.safetensors")  # fmt: skip
    assert code == 2 and len(err.splitlines()) == 1 and "sep=" in err and "--comment" in err, err
    table = read_table(tmp_path / "x.csv", comment="sep=")  # as the message says
    expected = pd.read_csv(tmp_path / "x.csv", sep=sep, skiprows=1)
    np.testing.assert_array_equal(table["a"].values, expected["a"].to_numpy())
