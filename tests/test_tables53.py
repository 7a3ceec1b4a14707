"""Real exported files, generated: UTF-16/32 text without a byte-order mark whose names and
cells are Cyrillic, Greek or CJK; wxb report's --seq-len. Each file is read as pandas reads
it with the right options (the reference), or refused in one line. Inputs drawn fresh."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest
from cli_run import run

import wxb
from wxb.columns import TableEncoder
from wxb.errors import ConfigError, DataError
from wxb.nn import Embedding, ReLU, Sequential
from wxb.prepare import training_table
from wxb.tables import read_table

SCRIPTS = {
    "cyrillic": (["цена", "город", "класс"], ["Москва", "Київ", "Минск", "Ёлки"], ["да", "нет"]),
    "greek": (["τιμή", "πόλη", "τάξη"], ["Αθήνα", "Πάτρα", "Βόλος"], ["ναι", "όχι"]),
    "cjk": (["価格", "都市", "ラベル"], ["東京", "大阪", "一宮", "上海"], ["上", "下"]),
}
WIDE = ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"]


def _non_latin_frame(rng, script: str) -> pd.DataFrame:
    names, towns, labels = SCRIPTS[script]
    n = int(rng.integers(8, 60))
    frame = pd.DataFrame({
        names[0]: np.round(rng.normal(size=n) * 100, 3),
        names[1]: rng.choice(towns, n),
        names[2]: rng.choice(labels, n),
    })  # fmt: skip
    if rng.random() < 0.5:  # an ASCII name first: its NULs no longer beside every letter
        frame.insert(0, "id", np.arange(n) + 100)
    return frame


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_wide_text_of_other_scripts_without_a_bom_is_refused_naming_its_encoding(
    seeded, tmp_path, capsys, script
):
    # Without a byte-order mark, a NUL beside each of the first letters was all that told
    # UTF-16/32: names in Cyrillic, Greek or CJK have none. Read as utf-8 the file was
    # 'not CSV text … (a binary file?)'; as latin-1 or cp1251 (the advice for an odd byte,
    # a Russian user's habit) its names and cells were NULs and letters, read in silence;
    # as the other byte order or 'utf-16', a refusal advising latin-1. The encoding is
    # now named, and the file so read is what pandas reads.
    rng = seeded.rng
    frame = _non_latin_frame(rng, script)
    encoding = str(rng.choice(WIDE))
    sep = str(rng.choice(["\t", ",", ";"]))
    text = frame.to_csv(index=False, sep=sep, lineterminator=str(rng.choice(["\n", "\r\n"])))
    if rng.random() < 0.3:
        text = text.rstrip("\r\n")  # no last line break
    path = tmp_path / "export.txt"
    path.write_bytes(text.encode(encoding))
    where = seeded.msg(f"{script} {encoding} sep={sep!r}")
    others = ["utf-8", "latin-1", "cp1251", "utf-16", "utf-32", *WIDE]
    given = str(rng.choice([e for e in others if e != encoding]))
    code, _, err = run(capsys, "train", "--data", path, "--target", frame.columns[-1],
                       "--encoding", given, "-q", "--epochs", "1",
                       "-o", tmp_path / "m.safetensors")  # fmt: skip
    assert code == 2 and err.count("\n") == 1, where + err
    assert f"give --encoding {encoding}\n" in err, where + err
    with pytest.raises(DataError, match=f"give --encoding {encoding}$"):
        read_table(path)

    expected = pd.read_csv(path, sep=sep, encoding=encoding)
    table = read_table(path, encoding=encoding)
    assert table.names == list(expected.columns) == list(frame.columns), where
    for name in expected.columns:
        if table[name].kind == "number":
            np.testing.assert_array_equal(table[name].values, expected[name].to_numpy(), where)
        else:
            assert table[name].values.tolist() == expected[name].tolist(), where

    # and UTF-8 text with a stray NUL after a line break is not taken for wide text: it
    # decodes to one line break at most, never a file of them
    raw = frame.to_csv(index=False, sep=sep).encode()
    at = raw.index(b"\n", int(rng.integers(len(raw) // 2))) + 1
    path = tmp_path / "nul.csv"
    path.write_bytes(raw[:at] + b"\x00" + raw[at:])
    table = read_table(path, sep=sep)  # pyarrow keeps the NUL in the cell (pandas too)
    assert table.names == list(frame.columns), where + repr(raw[at - 4 : at + 4])


def _ids_model(rng, tmp_path):
    vocab, d = (int(v) for v in rng.integers(2, 12, size=2))
    length = int(rng.integers(1, 40))
    if length == wxb.describe.SAMPLE_IDS:  # (the default would pass for L)
        length += 1
    path = wxb.io.save(Sequential(Embedding(vocab, d), ReLU()), tmp_path / "ids.safetensors")
    return path, vocab, d, length


def _embedding_shape(page: str) -> str:
    return re.search(r"embedding1 \(Embedding\)</td><td>(\([^<]*\))", page).group(1)


def test_report_takes_seq_len_as_summary_and_diagram_do(seeded, tmp_path, capsys):
    # wxb report had no --seq-len: a saved model taking ids was summarised on (?, d) rows
    # (wxb summary --seq-len L gives (L, d)), unless --data gave rows. Now it takes it;
    # with --data, whose rows the walk-through runs, a different L is refused in one line.
    rng = seeded.rng
    path, vocab, d, length = _ids_model(rng, tmp_path)
    where = seeded.msg(f"V={vocab} d={d} L={length}")
    page = tmp_path / "r.html"
    code, _, err = run(capsys, "report", path, "--no-floor", "--seq-len", length, "-o", page)
    assert code == 0, where + err
    html = page.read_text(encoding="utf-8")
    assert _embedding_shape(html) == f"({length}, {d})", where
    assert f"{length} ids" in html, where
    code, out, err = run(capsys, "summary", path, "--no-floor", "--seq-len", length)
    assert code == 0 and f"({length}, {d})" in out, where + err

    ids = rng.integers(0, vocab, size=(int(rng.integers(2, 6)), length))
    data = tmp_path / "ids.csv"
    pd.DataFrame(ids, columns=[f"t{i}" for i in range(length)]).to_csv(data, index=False)
    code, _, err = run(capsys, "report", path, "--no-floor", "--data", data,
                       "--seq-len", length, "-o", page)  # fmt: skip
    assert code == 0, where + err
    assert _embedding_shape(page.read_text(encoding="utf-8")) == f"({length}, {d})", where
    other = length + int(rng.integers(1, 5))
    code, _, err = run(capsys, "report", path, "--no-floor", "--data", data,
                       "--seq-len", other, "-o", page)  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and f"--seq-len {other}" in err, where + err

    with pytest.raises(SystemExit):
        run(capsys, "report", "--help")
    assert "--seq-len L" in capsys.readouterr().out
    html = wxb.reporting.report_html(wxb.load(path), floor=False, seq_len=length)
    assert _embedding_shape(html) == f"({length}, {d})", where
    with pytest.raises(ConfigError, match="seq_len"):
        wxb.reporting.report_html(wxb.load(path), X=ids, floor=False, seq_len=other)


def test_a_walk_through_of_a_few_ids_renders_its_lookups_in_latex(seeded, tmp_path, capsys):
    # A model taking ids walked through on a few of them (L·d ≤ 16 numbers a lookup) made
    # wxb explain --format md and wxb report (which typesets the steps) stop with a
    # TypeError traceback: the (1, L, d) rows of the lookup went to a 2-D bmatrix.
    rng = seeded.rng
    vocab, d = int(rng.integers(2, 6)), int(rng.integers(1, 5))
    length = int(rng.integers(1, 16 // d + 1))
    where = seeded.msg(f"V={vocab} d={d} L={length}")
    path = wxb.io.save(Sequential(Embedding(vocab, d), ReLU()), tmp_path / "ids.safetensors")
    ids = rng.integers(0, vocab, size=(int(rng.integers(1, 4)), length))
    data = tmp_path / "ids.csv"
    pd.DataFrame(ids, columns=[f"t{i}" for i in range(length)]).to_csv(data, index=False)
    code, out, err = run(capsys, "explain", path, "--data", data, "--format", "md")
    assert code == 0, where + err
    # (column notation: the lookup's d × L × B, named by its shape)
    assert rf"({d} \times {length} \times 1\text{{ array}})" in out, where + out
    code, _, err = run(capsys, "report", path, "--no-floor", "--data", data,
                       "-o", tmp_path / "r.html")  # fmt: skip
    assert code == 0, where + err


# -- exported files' habits: read as pandas reads them, or refused in one line -------------
REFUSED = ("repeated header", "units row", "inf", "excel error", "empty column", "trailing")


def _habits_file(rng, folder):
    """A CSV as exports write them; what pandas needs to read it; each column's kind for
    the comparison; and, where it holds one, the habit wxb must refuse and its line."""
    n = int(rng.integers(40, 90))
    semicolon = bool(rng.random() < 0.4)
    sep, decimal = (";", ",") if semicolon else (",", ".")

    def number(v: float) -> str:
        text = str(rng.choice([repr(v), f"{v:.4e}", f"{v:+.4f}", f" {v} "]))
        return text.replace(".", decimal)

    x = np.round(rng.normal(size=n) * 10.0 ** rng.integers(-2, 4), 4)
    cols = {"x": [number(float(v)) for v in x]}
    for i in np.flatnonzero(rng.random(n) < 0.1):
        cols["x"][i] = str(rng.choice(["", "NaN", "#N/A", "N/A", "nan"]))
    cols["n"] = [str(rng.choice([f"{v}", f"+{v}" if v >= 0 else f"{v}"])) for v in
                 rng.integers(-20, 500, n)]  # fmt: skip
    cols["colour"] = [str(rng.choice(["red", " blue", "green ", " café "])) for _ in range(n)]
    cols["flag"] = [str(rng.choice(["True", "TRUE", "true"] if v else ["False", "FALSE", "false"]))
                    for v in rng.random(n) < 0.5]  # fmt: skip
    cols["answer"] = [str(rng.choice(["yes", "no", "Y", "N", "YES", "n"])) for _ in range(n)]
    kinds = {"x": "number", "n": "number", "colour": "text", "flag": "bool", "answer": "text"}
    if rng.random() < 0.3:  # a very long text value (1 MiB: past pyarrow's first block)
        long = "word " * int(rng.integers(50_000, 250_000))
        cols["note"] = [str(rng.choice(["short", "brief", long])) for _ in range(n)]
        kinds["note"] = "text"
    if rng.random() < 0.3:  # thousands separators, currency and percent signs: text, warned
        signed = [f"{v:,.2f}" for v in rng.uniform(1000, 99999, n)]
        if semicolon or rng.random() < 0.5:
            signed = [f"{v:.1f}%".replace(".", decimal) for v in rng.uniform(0, 100, n)]
        cols["price"] = [f'"{v}"' if sep in v else v for v in signed]
        kinds["price"] = "text"
    labels = ["cat", "dog"] if rng.random() < 0.5 else ["1", "2", "three", "01"]
    cols["label"] = [str(v) for v in rng.choice(labels, n)]
    kinds["label"] = "text"
    habit, at = (str(rng.choice(REFUSED)) if rng.random() < 0.4 else None), None
    if "note" in cols and rng.random() < 0.5:  # a long note in the first row too: the
        # sample grows past it (a decimal comma was looked for in that row alone), and a
        # refused habit's line is the first in the file, whatever order pyarrow reports
        cols["note"][0] = "word " * int(rng.integers(14_000, 60_000))  # past 64 KiB
    names = list(cols)
    rows = [sep.join(cols[c][i] for c in names) for i in range(n)]
    header = sep.join(names)
    if habit == "repeated header":  # two exports joined with cat
        at = int(rng.integers(1, n))
        rows.insert(at, header)
    elif habit == "units row":
        units = {"x": "kg", "n": "pcs", "price": "EUR"}
        rows.insert(0, sep.join(units.get(c, "-") for c in names))
        at = 0
    elif habit in ("inf", "excel error"):
        at = int(rng.integers(n))
        spelling = ["inf", "-inf", "Infinity", "-Infinity", "INF"] if habit == "inf" else [
            "#DIV/0!", "#VALUE!", "#REF!", "#NUM!"]  # fmt: skip
        cells = rows[at].split(sep)
        cells[0] = str(rng.choice(spelling))
        rows[at] = sep.join(cells)
    elif habit == "empty column":
        header += f"{sep}empty"
        rows = [row + sep for row in rows]
    elif habit == "trailing":  # a delimiter at the end of each data line, not the header's
        rows = [row + sep for row in rows]
        at = 0
    lines = [header, *rows]
    blank = rng.random() < 0.3
    if blank:  # blank lines in the middle: skipped, and the lines after still named right
        for k in sorted(rng.choice(np.arange(2, len(lines)), size=3), reverse=True):
            lines.insert(int(k), "")
    ending = str(rng.choice(["\n", "\r\n", "\r"]))
    text = ending.join(lines) + (ending if rng.random() < 0.7 else "")
    path = folder / "export.csv"
    path.write_bytes(text.encode("utf-8-sig" if rng.random() < 0.3 else "utf-8"))
    line = None
    if at is not None:  # the refused row's line in the file (blank ones counted)
        row = rows[at]
        line = next(i for i, v in enumerate(lines) if v == row and i > 0) + 1
    how = {"sep": sep, "decimal": decimal, "ending": repr(ending), "blank": blank}
    # numbers with fractions made text by their signs, a value a row: refused (as text each
    # row's own category, nothing to learn), where a repeat made them text categories
    how["unique price"] = "price" in cols and len(set(cols["price"])) == n
    return path, how, kinds, habit, line


def _prepared(path):
    """What wxb train reads of ``path``: the rows with a target, their features encoded."""
    data = training_table(read_table(path), ["label"])
    TableEncoder.fit(data.table, data.features)
    return data


def test_exported_files_habits_read_as_pandas_reads_them_or_are_refused_in_one_line(
    seeded, tmp_path
):
    # The habits of exported files: numbers in scientific notation, with a leading '+'
    # or padded with spaces; booleans TRUE/False/true; yes/no/Y/N (text, as pandas reads
    # them); decimal commas after ';'; CR, CRLF or LF line ends, a last line without one,
    # blank lines, a BOM; very long text; numbers with thousands separators or percent
    # signs (text, with a warning, as pandas reads them; refused where each row holds its
    # own value, a category a row); class labels of digits and words
    # (as written). What cannot be read right is refused in one line naming its line or
    # column: the header repeated, a units row under it ('kg' made the column text in a
    # short file, and its advice, --na-values 'kg', kept a row of gaps), an infinity,
    # Excel's #DIV/0!, an empty column, a delimiter ending each data line.
    rng = seeded.rng
    for k in range(6):
        folder = tmp_path / str(k)
        folder.mkdir()
        path, how, kinds, habit, line = _habits_file(rng, folder)
        where = seeded.msg(f"{habit} at line {line}, {how}")
        if how["unique price"]:  # refused for it, or for the habit the file also holds
            with pytest.raises(DataError) as caught:
                _prepared(path)
            message = str(caught.value)
            assert "\n" not in message, where + message
            assert habit is not None or "column 'price' is read as text" in message, where + message
            continue
        if habit is not None:
            with pytest.raises(DataError) as caught:
                _prepared(path)
            message = str(caught.value)
            assert "\n" not in message, where + message
            if line is not None:
                assert f"line {line}" in message, where + message
            if habit == "empty column":
                assert "'empty'" in message, where + message
            continue
        data = _prepared(path)
        # (pandas's C reader, in a '\r' file, shifts a row that starts with an empty cell
        # after a blank line one cell left, and its Python reader takes no '1,5e+00': the
        # reference reads the same lines ended by '\n')
        raw = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        expected = pd.read_csv(io.BytesIO(raw), sep=how["sep"], decimal=how["decimal"],
                               encoding="utf-8-sig")  # fmt: skip
        assert data.table.n_rows == len(expected), where
        assert sorted(data.table.names) == sorted(kinds), where
        for name, kind in kinds.items():
            column, reference = data.table[name], expected[name]
            assert column.kind == kind, where + f" {name}: {column.kind}"
            if kind == "number":
                np.testing.assert_array_equal(column.values, reference.to_numpy(float), where)
            elif kind == "bool":
                assert reference.dtype == bool, where
                np.testing.assert_array_equal(column.values, reference.to_numpy(float), where)
            else:  # wxb trims the spaces around a text cell; pandas keeps them
                assert column.values.tolist() == [v.strip() for v in reference], where
        assert data.y.tolist() == expected["label"].astype(str).tolist(), where
        if "price" in kinds:
            assert any("'price'" in w for w in data.warnings), where + str(data.warnings)


def test_each_habit_the_generator_found_alone(seeded, tmp_path):
    # What the generator above found, each drawn alone so that every run meets it.
    rng = seeded.rng
    n = int(rng.integers(4, 9))
    x = np.round(rng.normal(size=n) * 100, 2)
    label = rng.choice(["p", "q"], n)
    where = seeded.msg(f"n={n}")
    # a units row under the header of a short file: the column was read as text (its
    # numbers one-hot categories), with advice (--na-values 'kg') that kept a row of gaps
    path = tmp_path / "units.csv"
    path.write_text(
        "x,label\nkg,-\n" + "".join(f"{v},{k}\n" for v, k in zip(x, label, strict=True))
    )
    with pytest.raises(DataError, match=r"line 2, column 'x': 'kg'.*row of units") as caught:
        _prepared(path)
    assert "\n" not in str(caught.value), where
    # a ';' file whose first rows hold a note past the 64 KiB sample: the sniffer, given
    # the note's line cut short, chose ',' ('line 2: 2 values but the header has 1')
    long = "word " * int(rng.integers(14_000, 40_000))
    cells = [
        f"{v};{long if i < 2 else 'short'};{k}"
        for i, (v, k) in enumerate(zip(x, label, strict=True))
    ]
    path = tmp_path / "notes.csv"
    path.write_text("x;note;label\n" + "\n".join(cells).replace(".", ",") + "\n")
    expected = pd.read_csv(path, sep=";", decimal=",")
    table = read_table(path)
    assert table.names == ["x", "note", "label"], where
    np.testing.assert_array_equal(table["x"].values, expected["x"].to_numpy(), where)
    # decimal commas that all carry a sign ('+12,5', as a change is written): the file's
    # decimal mark was taken to be '.', the column text
    path = tmp_path / "signed.csv"
    path.write_text(
        "x;label\n"
        + "".join(f"{abs(v):+};{k}\n" for v, k in zip(x, label, strict=True)).replace(".", ",")
    )
    table = read_table(path)
    assert table["x"].kind == "number", where
    np.testing.assert_array_equal(table["x"].values, np.abs(x), where)
    # a cell past Python csv's 128 KiB in a file whose refusal names a line: the line
    # finder stopped with "_csv.Error: field larger than field limit" and a traceback
    bad = int(rng.integers(n))
    cells = [f"{'inf' if i == bad else v},{long * 4 if i == 0 else 'n'},{k}"
             for i, (v, k) in enumerate(zip(x, label, strict=True))]  # fmt: skip
    path = tmp_path / "long.csv"
    path.write_text("x,note,label\n" + "\n".join(cells) + "\n")
    with pytest.raises(DataError, match=f"line {bad + 2}, column 'x': inf"):
        read_table(path)
