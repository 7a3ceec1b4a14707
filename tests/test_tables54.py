"""Messy tables read as pandas reads them, or refused in one line naming line and column:
a long note in a decimal-comma file's first rows, bad rows pyarrow's threads report out
of order. Inputs drawn fresh (the seed is printed)."""

from __future__ import annotations

import decimal
import io
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq
import pytest

from wxb.columns import TableEncoder
from wxb.errors import DataError
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


def _reported_out_of_order(monkeypatch, order):
    """pyarrow's CSV reader handing its bad rows to the handler in ``order`` (a function
    of the list of rows): its threads hand them over in no set order."""
    real = pyarrow.csv.read_csv

    def read_csv(source, read_options=None, parse_options=None, convert_options=None, **kw):
        handler = getattr(parse_options, "invalid_row_handler", None)
        if handler is None:
            return real(source, read_options, parse_options, convert_options, **kw)
        held = []

        def hold(row):
            held.append(row)
            return "skip"

        parse_options.invalid_row_handler = hold
        try:
            table = real(source, read_options, parse_options, convert_options, **kw)
        finally:
            parse_options.invalid_row_handler = handler
        for row in order(held):
            handler(row)
        return table

    monkeypatch.setattr(pyarrow.csv, "read_csv", read_csv)


def test_a_bad_row_is_named_by_its_first_line_whatever_order_pyarrow_reports(
    seeded, tmp_path, monkeypatch
):
    # A delimiter ending each data line (an export's habit) beside 1 MiB notes in earlier
    # rows was named at line 6 or 11, not line 2: pyarrow parses blocks in threads and
    # handed the rows of a later block to the handler first, and the first handed was
    # named. Now the earliest line in the file is named, whatever the order.
    rng = seeded.rng
    sep = str(rng.choice([",", ";", "\t"]))
    n = int(rng.integers(8, 40))
    ending = _ending(rng)
    bad = sorted(rng.choice(np.arange(n), size=int(rng.integers(2, n)), replace=False))
    blank = int(rng.integers(2, 5))  # a blank line before it: counted among the lines
    lines = [sep.join(["x", "note", "label"])]
    for i in range(n):
        note = "word " * 30_000 if rng.random() < 0.3 else "short"
        lines.append(sep.join([f"{i}.5", note, "a"]) + (sep if i in bad else ""))
    lines.insert(blank, "")
    path = tmp_path / "trailing.csv"
    path.write_text(ending.join(lines) + ending, newline="")
    line = bad[0] + 2 + (bad[0] + 1 >= blank)
    order = str(rng.choice(["reversed", "shuffled"]))
    where = seeded.msg(f"bad rows {bad}, {order}, sep={sep!r} ending={ending!r}")

    expected = re.escape(f"line {line}: 4 values but the header has 3 ({len(bad)} such lines)")
    with pytest.raises(DataError, match=expected):
        read_table(path)  # as pyarrow's threads report them here

    def out_of_order(rows):  # never the first first
        if order == "reversed":
            return rows[::-1]
        return [*(rows[k] for k in rng.permutation(np.arange(1, len(rows)))), rows[0]]

    _reported_out_of_order(monkeypatch, out_of_order)
    with pytest.raises(DataError, match=expected) as caught:
        read_table(path)
    assert "\n" not in str(caught.value), where


def test_a_tab_files_decimal_commas_before_three_digits_are_its_decimal_mark(seeded, tmp_path):
    # After a tab a comma may group thousands ('1,234'), so three digits after it said
    # nothing: a tab file whose fractions all have three digits ('-0,047', '1250,125',
    # '1,975e+02') was read with '.', every number text (a category each), though no
    # thousands group starts with 0 or holds four digits, nor takes an exponent.
    rng = seeded.rng
    n = int(rng.integers(5, 40))
    x = np.round(rng.uniform(-3, 3, n) * 10.0 ** rng.integers(0, 5, n), 3)
    cells = [f"{v:.3f}" for v in x]
    k = int(rng.integers(n))
    telling = str(rng.choice(["zero", "long", "exponent"]))
    if telling == "zero":
        x[k] = float(rng.choice([-1, 1])) * int(rng.integers(1, 1000)) / 1000
        cells[k] = f"{x[k]:.3f}"
    elif telling == "long":
        x[k] = int(rng.integers(1000, 99999)) + int(rng.integers(1, 1000)) / 1000
        cells[k] = f"{x[k]:.3f}"
    else:
        cells[k] = f"{x[k]:.3e}"
        x[k] = float(cells[k])
    cells = [c.replace(".", ",") for c in cells]
    label = rng.choice(["p", "q"], n)
    path = tmp_path / "export.tsv"
    rows = "".join(f"{c}\t{v}\n" for c, v in zip(cells, label, strict=True))
    path.write_text("x\tlabel\n" + rows)
    where = seeded.msg(f"{telling}: {cells[k]!r} among {cells[:4]}")
    expected = pd.read_csv(path, sep="\t", decimal=",")["x"].to_numpy()
    table = read_table(path)
    assert table.decimal == "," and table["x"].kind == "number", where
    np.testing.assert_array_equal(table["x"].values, expected, where)
    np.testing.assert_array_equal(table["x"].values, x, where)


def test_a_one_column_file_of_decimal_commas_is_refused_with_the_way_to_read_it(seeded, tmp_path):
    # A one-column file ('x', then '1,5'): no ';' or tab tells its decimal mark, so its
    # rows split at the comma into 2 values beside a header of 1. The refusal now says
    # how to read it, and read so it is what pandas reads.
    rng = seeded.rng
    x = np.round(rng.normal(size=int(rng.integers(3, 20))) * 100, 2)
    x[np.round(x) == x] += 0.5
    path = tmp_path / "one.csv"
    path.write_text("x\n" + "".join(f"{v}\n".replace(".", ",") for v in x))
    with pytest.raises(DataError, match=re.escape("give --decimal , --sep ';'")) as caught:
        read_table(path)
    assert "line 2: 2 values but the header has 1" in str(caught.value), seeded.msg("")
    table = read_table(path, decimal=",", sep=";")
    expected = pd.read_csv(path, sep=";", decimal=",")["x"].to_numpy()
    np.testing.assert_array_equal(table["x"].values, expected, seeded.msg(str(x[:4])))
    np.testing.assert_array_equal(table["x"].values, x, seeded.msg(str(x[:4])))


def test_a_header_past_the_sample_leaves_the_decimal_commas_below_it_seen(seeded, tmp_path):
    # Many columns with long names (an export of sensor channels): a header past the
    # 64 KiB sample left the decimal-comma check no data row at all, so a ';' file's
    # every number column was read as text, with no error.
    rng = seeded.rng
    width = int(rng.integers(1150, 1600))  # (60 characters a name: 64 KiB at 1093)
    names = [f"channel_{j:05d}_{'sensor_reading_' * 3}" for j in range(width)]
    X = np.round(rng.normal(size=(int(rng.integers(2, 6)), width)) * 100, 2)
    X[np.round(X) == X] += 0.25
    sep = str(rng.choice([";", "\t"]))
    lines = [sep.join(names), *(sep.join(f"{v}".replace(".", ",") for v in row) for row in X)]
    path = tmp_path / "wide.csv"
    path.write_text("\n".join(lines) + "\n")
    where = seeded.msg(f"{width} columns, sep={sep!r}")
    expected = pd.read_csv(path, sep=sep, decimal=",")
    table = read_table(path)
    assert table.names == names and table.decimal == ",", where
    picked = rng.choice(width, size=20, replace=False)
    for j in picked:
        assert table[names[j]].kind == "number", where
        np.testing.assert_array_equal(table[names[j]].values, expected[names[j]].to_numpy(), where)
        np.testing.assert_array_equal(table[names[j]].values, X[:, j], where)


def test_old_windows_infinity_is_refused_as_not_finite_where_train_and_predict_read_it(
    seeded, tmp_path
):
    # '1.#INF' (and '-1.#INF00'), old Windows C runtimes' infinity beside their '1.#IND'
    # (missing): read as a word, a column with a quarter of them was one-hot encoded, a
    # category per number, with advice to mark them missing; predict named them text.
    # Refused now as 'inf' is, by line and column.
    rng = seeded.rng
    n = int(rng.integers(20, 60))
    x = np.round(rng.normal(size=n) * 100, 3)
    label = rng.choice(["p", "q"], n)
    clean = tmp_path / "clean.csv"
    pd.DataFrame({"x": x, "label": label}).to_csv(clean, index=False)
    cells = [str(v) for v in x]
    share = float(rng.choice([0.05, 0.25, 0.5]))
    infinite = sorted(rng.choice(n, size=max(1, int(share * n)), replace=False))
    for i in infinite:
        cells[i] = str(rng.choice(["1.#INF", "-1.#INF", "1.#INF00", "-1.#INF00"]))
    path = tmp_path / "export.csv"
    path.write_text("x,label\n" + "".join(f"{c},{v}\n" for c, v in zip(cells, label, strict=True)))
    line, cell = infinite[0] + 2, cells[infinite[0]]
    where = seeded.msg(f"{len(infinite)} of {n}, first at line {line}")
    message = re.escape(f"line {line}, column 'x': '{cell}' is not a finite number")
    with pytest.raises(DataError, match=message) as caught:
        training_table(read_table(path), ["label"])
    assert "\n" not in str(caught.value), where
    data = training_table(read_table(clean), ["label"])
    encoder = TableEncoder.fit(data.table, data.features)
    with pytest.raises(DataError, match=message):
        encoder.transform(read_table(path))


def test_negatives_written_by_accounts_are_named_as_such_not_as_missing_markers(seeded, tmp_path):
    # '(12.50)', '($1,234.00)' (accounting) and '12,50-' (SAP): negative numbers, read as
    # words (pandas too). The advice was to add them to --na-values, which turns every
    # negative number into a gap; a column of many was one-hot encoded under that
    # advice. Now they are named as negatives written so, with the way to write them.
    rng = seeded.rng
    style = str(rng.choice(["parentheses", "trailing", "currency"]))
    semicolon = style == "trailing" and rng.random() < 0.5
    sep, mark = (";", ",") if semicolon else (",", ".")
    n = int(rng.integers(30, 80))
    x = np.round(rng.uniform(1, 500, n), 2)
    x[np.round(x) == x] += 0.25
    z = rng.integers(0, 3, n)
    label = rng.choice(["p", "q"], n)

    def negative(v: float) -> str:
        text = {"parentheses": f"({v})", "trailing": f"{v}-", "currency": f'"(${v:,.2f})"'}
        return text[style].replace(".", mark)

    for share in (0.05, 0.4):
        negatives = rng.random(n) < share
        negatives[int(rng.integers(n))] = True
        written = zip(x, negatives, strict=True)
        cells = [negative(v) if m else f"{v}".replace(".", mark) for v, m in written]
        path = tmp_path / f"accounts{share}.csv"
        rows = [sep.join([c, str(k), v]) for c, k, v in zip(cells, z, label, strict=True)]
        path.write_text("\n".join([sep.join(["x", "z", "label"]), *rows]) + "\n")
        where = seeded.msg(f"{style}, sep={sep!r}, {int(negatives.sum())} of {n}")
        table = read_table(path)
        if negatives.sum() <= n // 10:
            with pytest.raises(DataError, match="leading '-'") as caught:
                training_table(table, ["label"])
            assert "--na-values" not in str(caught.value), where + str(caught.value)
            first = int(np.flatnonzero(negatives)[0])
            assert f"line {first + 2}, column 'x'" in str(caught.value), where
        elif len(set(cells)) == n:  # each row's own as text: refused, no row identifier
            with pytest.raises(DataError, match="leading '-'") as caught:
                training_table(table, ["label"])
            assert "--na-values" not in str(caught.value), where + str(caught.value)
        else:
            warnings = [w for w in training_table(table, ["label"]).warnings if "'x'" in w]
            assert any("leading '-'" in w for w in warnings), where + str(warnings)
            assert not any("--na-values" in w for w in warnings), where + str(warnings)
    # predict: the model reads numbers there
    clean = tmp_path / "clean.csv"
    pd.DataFrame({"x": x, "z": z, "label": label}).to_csv(clean, index=False)
    data = training_table(read_table(clean), ["label"])
    encoder = TableEncoder.fit(data.table, data.features)
    with pytest.raises(DataError, match="leading '-'") as caught:
        encoder.transform(read_table(path))
    assert "--na-values" not in str(caught.value), where + str(caught.value)


def test_decimal_columns_read_as_the_nearest_float_as_pandas_and_python_read_them(seeded, tmp_path):
    # A Parquet (or DataFrame) column of decimals (prices, amounts: decimal128) went
    # through Arrow's cast to float64, which divides by 10^scale and rounded about 3 in
    # 10 values an ulp off the number written (Decimal('3.3') became 3.3000000000000003);
    # float(Decimal) and pandas give the nearest float.
    rng = seeded.rng
    n = int(rng.integers(200, 400))  # (at least 6 in 100 were off: one is sure to be)
    scale = int(rng.integers(1, 6))
    values = rng.normal(size=n) * 10.0 ** rng.integers(0, 6)
    written = [decimal.Decimal(f"{v:.{scale}f}") for v in values]
    written[int(rng.integers(n))] = None
    label = rng.choice(["p", "q"], n).tolist()
    arrow = pa.table({"amount": pa.array(written, pa.decimal128(20, scale)), "label": label})
    path = tmp_path / "amounts.parquet"
    pq.write_table(arrow, path)
    expected = np.array([np.nan if v is None else float(v) for v in written])
    where = seeded.msg(f"scale {scale}, e.g. {written[:3]}")
    frame = pd.read_parquet(path)
    reference = np.array([np.nan if v is None else float(v) for v in frame["amount"]])
    np.testing.assert_array_equal(reference, expected, where)
    for table in (read_table(path), read_table(frame)):
        assert table["amount"].kind == "number", where
        np.testing.assert_array_equal(table["amount"].values, expected, where)


def test_every_line_one_value_over_the_header_says_which_habit_it_is(seeded, tmp_path):
    # Every line one value over its header: R's write.table (row names, their column
    # unnamed) or a delimiter ending each data line. pandas takes the first values as
    # the index, silently (the trailing one shifts every column by one); wxb refuses,
    # and now says which habit it sees.
    rng = seeded.rng
    sep = str(rng.choice([",", ";", "\t"]))
    n = int(rng.integers(2, 20))
    x = np.round(rng.normal(size=n), 3)
    label = rng.choice(["p", "q"], n)
    header = sep.join(["x", "label"])
    named = [
        sep.join([f'"{i + 1}"', str(v), k]) for i, (v, k) in enumerate(zip(x, label, strict=True))
    ]
    ending = [sep.join([str(v), k]) + sep for v, k in zip(x, label, strict=True)]
    where = seeded.msg(f"sep={sep!r}, {n} rows")
    for rows, habit in ((named, "R's write.table"), (ending, f"ends with a {sep!r}")):
        path = tmp_path / "export.csv"
        path.write_text("\n".join([header, *rows]) + "\n")
        with pytest.raises(DataError, match=re.escape(habit)) as caught:
            read_table(path)
        assert f"line 2: 3 values but the header has 2 ({n} such line" in str(caught.value), where
