"""Real exported files, generated: UTF-16/32 text without a byte-order mark whose names and
cells are Cyrillic, Greek or CJK; wxb report's --seq-len. Each file is read as pandas reads
it with the right options (the reference), or refused in one line. Inputs drawn fresh."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from cli_run import run

import wxb
from wxb.errors import ConfigError, DataError
from wxb.nn import Embedding, ReLU, Sequential
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
