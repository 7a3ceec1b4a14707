"""Follow-ups to the hunt of the command line (test_cli_hunt.py): each case read as pandas
reads it, or said in one line; never a silently wrong row, number or identifier.
Inputs are drawn fresh each run; expected values come from the data or from pandas."""

from __future__ import annotations

import io
import re
import shlex
import warnings

import numpy as np
import pandas as pd
import pytest
from cli_run import FAST, run

import wxb
from wxb.tables import read_table


def _trained(capsys, tmp_path, frame, *extra):
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", tmp_path / "t.csv", *FAST, "-o", model, *extra)
    assert code == 0, err
    return model


def test_a_line_of_spaces_in_a_one_column_file_is_blank(tmp_path, rng, capsys):
    # 'x\n1\n   \n2': pyarrow read the spaces as a cell (a gap), pandas skips the line: one
    # prediction too many, and every one after it beside the wrong input row
    n = 30
    x = rng.normal(size=n).round(3)
    model = _trained(capsys, tmp_path, pd.DataFrame({"x": x, "y": np.where(x > 0, "p", "q")}),
                     "--target", "y")  # fmt: skip
    lines = ["x", *map(str, x)]
    for at in sorted(rng.choice(np.arange(2, n), 3, replace=False), reverse=True):
        lines.insert(int(at), rng.choice([" ", "   ", "\t", " \t "]))
    (tmp_path / "s.csv").write_text("\n".join(lines) + "\n")
    expected = pd.read_csv(tmp_path / "s.csv")
    assert len(expected) == n
    assert read_table(tmp_path / "s.csv")["x"].values.tolist() == expected["x"].tolist()
    code, out, err = run(capsys, "predict", model, tmp_path / "s.csv")
    assert code == 0, err
    _, clean, _ = run(capsys, "predict", model, tmp_path / "t.csv")
    assert out == clean  # the same rows, in the same order
    # a word after the lines of spaces: named by its own line
    bad = len(lines) - 1
    lines[bad] = "oops"
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    code, _, err = run(capsys, "predict", model, tmp_path / "bad.csv")
    assert code == 2 and f"line {bad + 1}, column 'x': 'oops'" in err, err


def test_json_integers_past_int64_are_identifiers_kept_exactly(tmp_path, rng, capsys):
    # {"id": 12345678901234567890}: pyarrow read such integers as floats, so neighbouring
    # IDs became one number (as a feature, the same value; beside a prediction, the same ID)
    n = 40
    ids = [str(10**19 + int(v)) for v in rng.choice(10**6, n, replace=False)]
    x = rng.normal(size=n).round(3)
    rows = [
        f'{{"id": {i}, "x": {v}, "y": "{"p" if v > 0 else "q"}"}}'
        for i, v in zip(ids, x, strict=True)
    ]
    (tmp_path / "t.jsonl").write_text("\n".join(rows) + "\n")
    expected = pd.read_json(tmp_path / "t.jsonl", lines=True, dtype={"id": "object"})
    assert [str(v) for v in expected["id"]] == ids  # pandas keeps them whole
    table = read_table(tmp_path / "t.jsonl")
    assert table["id"].kind == "text" and table["id"].values.tolist() == ids
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", tmp_path / "t.jsonl", "--target", "y",
                       "--id-column", "id", *FAST, "-o", model)  # fmt: skip
    assert code == 0, err
    code, out, err = run(capsys, "predict", model, tmp_path / "t.jsonl")
    assert code == 0, err
    written = pd.read_csv(io.StringIO(out), dtype=str)["id"]
    assert written.tolist() == ids


def test_target_and_id_column_are_named_without_spaces_around(tmp_path, rng, capsys):
    # a header's names are read stripped, and --features and --drop strip theirs, but
    # --target ' label ' said "no column ' label '" (and --id-column ' id ' likewise)
    n = 40
    x = rng.normal(size=n).round(3)
    frame = pd.DataFrame({" id ": rng.permutation(n) + 1000, " x ": x, " z": rng.normal(size=n),
                          " label ": np.where(x > 0, "p", "q")})  # fmt: skip
    model = _trained(capsys, tmp_path, frame, "--target", " label ", "--id-column", " id ",
                     "--drop", " z ")  # fmt: skip
    code, _, err = run(capsys, "eval", model, tmp_path / "t.csv", "--target", " label ")
    assert code == 0, err
    code, out, err = run(capsys, "predict", model, tmp_path / "t.csv")
    assert code == 0, err
    assert pd.read_csv(io.StringIO(out))["id"].tolist() == frame[" id "].tolist()


def test_a_column_name_in_a_suggested_option_is_quoted_for_the_shell(tmp_path, rng, capsys):
    # Excel's trailing separator ('a,y,'): "drop it (--drop Unnamed: 2)", which a shell
    # splits into --drop 'Unnamed:' and a stray '2'; likewise an identifier 'cust id'
    n = 30
    x = rng.normal(size=n).round(3)
    rows = [f"{v},{i},{'p' if v > 0 else 'q'}," for v, i in zip(x, rng.permutation(n) + 500,
                                                               strict=True)]  # fmt: skip
    (tmp_path / "e.csv").write_text("x,cust id,y,\n" + "\n".join(rows) + "\n")
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", tmp_path / "e.csv", "--target", "y", *FAST,
                       "-o", model)  # fmt: skip
    assert code == 2 and err.count("error:") == 1, err  # (after the identifier's warning)
    suggested = shlex.split(re.search(r"\(--drop (.*)\)", err).group(1))
    assert suggested == ["Unnamed: 3"], err
    code, _, err = run(capsys, "train", "--data", tmp_path / "e.csv", "--target", "y", *FAST,
                       "-o", model, "--drop", *suggested)  # fmt: skip
    assert code == 0, err
    said = re.search(r"--id-column (.*) to carry it into predictions, or --drop (.*) to", err)
    assert said and [shlex.split(w) for w in said.groups()] == [["cust id"]] * 2, err


def test_targets_whose_spread_overflows_are_said_as_such(tmp_path, rng, capsys):
    # targets near ±1e308: their mean overflowed (+inf meets -inf: NaN), NumPy printed
    # RuntimeWarnings and the error said "y has nan at row 0", a NaN the file never held
    n = 40
    x = rng.normal(size=n).round(3)
    size = rng.uniform(1.0, 1.7)
    for scale, dtype, said in ((10.0**308, "float64", "float64"), (10.0**39, "float32", "float32")):
        frame = pd.DataFrame({"x": x, "y": np.sign(x) * size * scale})
        frame.to_csv(tmp_path / "r.csv", index=False)
        model = tmp_path / "m.safetensors"
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # none may reach the user
            code, _, err = run(capsys, "train", "--data", tmp_path / "r.csv", "--target", "y",
                               "--task", "regression", "--dtype", dtype, *FAST,
                               "-o", model)  # fmt: skip
        assert code == 2 and len(err.splitlines()) == 1, err
        assert "target 'y'" in err and f"overflows {said}" in err and "nan" not in err, err
        assert not model.exists()


def _decimal_commas(x):
    return [f"{v:.2f}".replace(".", ",") for v in x]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet", ".feather"])
def test_the_decimal_option_is_advised_for_csv_files_alone(tmp_path, rng, capsys, suffix):
    # '0,13' as text in a JSON or Parquet file: the message advised --decimal , which
    # reads CSV files only (the run then failed the same way)
    n = 60
    x = rng.normal(size=n)
    labels = np.where(x > 0, "p", "q")
    few = np.zeros(n, dtype=bool)
    few[rng.choice(n, 2, replace=False)] = True  # a few cells written so: refused
    some = np.where(few, _decimal_commas(x), x.round(2).astype(str))
    for cells, refused in ((_decimal_commas(x), False), (some, True)):
        # (z: a feature beside x, which may be text unique per row, left out as an ID)
        frame = pd.DataFrame({"x": cells, "z": rng.normal(size=n), "y": labels})
        path = tmp_path / f"t{suffix}"
        if suffix == ".jsonl":
            frame.to_json(path, orient="records", lines=True)
        else:
            getattr(frame, f"to_{suffix[1:]}")(path)
        code, _, err = run(capsys, "train", "--data", path, "--target", "y", *FAST,
                           "-o", tmp_path / "m.safetensors")  # fmt: skip
        assert code == (2 if refused else 0), err
        assert "column 'x'" in err and "decimal" in err and "--decimal ," not in err, err
        frame.to_csv(tmp_path / "t.csv", index=False)  # a CSV's: --decimal , is the advice
        code, _, err = run(capsys, "train", "--data", tmp_path / "t.csv", "--target", "y", *FAST,
                           "-o", tmp_path / "m.safetensors")  # fmt: skip
        assert code == (2 if refused else 0) and "--decimal ," in err, err


def test_a_few_thousands_separators_are_said_as_such(tmp_path, rng, capsys):
    # one '1,200' among 850s: refused with only "if ',' is the decimal mark, give --decimal ,"
    n = 60
    income = rng.integers(100, 999, n).astype(float) + rng.integers(0, 100, n) / 100
    row = int(rng.integers(0, n))
    big = int(rng.integers(1000, 99999))
    cells = [f"{big:,}" if i == row else f"{v:.2f}" for i, v in enumerate(income)]
    frame = pd.DataFrame({"income": cells, "y": rng.choice(["a", "b"], n)})
    frame.to_csv(tmp_path / "i.csv", index=False)
    code, _, err = run(capsys, "train", "--data", tmp_path / "i.csv", "--target", "y", *FAST,
                       "-o", tmp_path / "m.safetensors")  # fmt: skip
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"line {row + 2}, column 'income': '{big:,}'" in err, err
    assert "thousands separator" in err and "--decimal" not in err, err  # 850.25 beside it


@pytest.mark.parametrize("order", ["shuffled", "sorted_with_repeats"])
def test_whole_float_identifiers_are_flagged_as_integer_ones_are(tmp_path, rng, capsys, order):
    # pandas writes an ID column with a gap as 5004.0, 5041.0, …: used as a feature in
    # silence, where the same column written 5004, 5041 was left out with a warning.
    # Continuous floats are unique per row too: never flagged (nor floats past 2**52,
    # which are all whole)
    n = int(rng.integers(40, 120))
    x = rng.normal(size=n).round(3)
    if order == "shuffled":
        cust = rng.choice(np.arange(5000, 5000 + 50 * n), n, replace=False)
    else:
        cust = np.sort(rng.integers(5000, 5000 + n, n))
        cust[:2] = cust[0]  # a repeat: ordered, not unique
    frame = pd.DataFrame({"cust": cust.astype(float), "x": x, "score": rng.normal(size=n),
                          "big": rng.normal(size=n) * 1e20,
                          "y": np.where(x > 0, "p", "q")})  # fmt: skip
    frame.loc[int(rng.integers(0, n)), "cust"] = np.nan  # the gap that made pandas write floats
    model = tmp_path / "m.safetensors"
    said = {}
    for written in ("float", "Int64"):
        frame.astype({"cust": written}).to_csv(tmp_path / "t.csv", index=False)
        if written == "float":
            assert re.search(r"^\d+\.0,", (tmp_path / "t.csv").read_text(), re.M)  # 5004.0
        code, _, err = run(capsys, "train", "--data", tmp_path / "t.csv", "--target", "y",
                           *FAST, "-o", model)  # fmt: skip
        assert code == 0, err
        said[written] = [line for line in err.splitlines() if "row identifier" in line]
        assert len(said[written]) == 1 and "'cust'" in said[written][0], err
        assert wxb.load(model).info["feature_names"] == ["x", "score", "big"], err
    assert said["float"] == said["Int64"]
