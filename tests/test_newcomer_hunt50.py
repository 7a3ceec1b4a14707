"""A newcomer's messy table (newcomer50): what wxb predict and eval say about a cell
they cannot read as a number, the way out that wxb train names, in options those
commands take. Inputs are drawn fresh each run; the advice is checked by following it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import wxb
from wxb.cli import main

FAST = ("--hidden", "8", "--epochs", "3", "-q")
WORDS = ["n.a.", "missing", "-", "unknown", "n/d"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def table(rng, n: int) -> pd.DataFrame:
    x1, x2 = rng.normal(size=n).round(3), rng.normal(size=n).round(3)
    return pd.DataFrame({"x1": x1, "x2": x2, "y": (x1 - x2 + rng.normal(size=n)).round(3)})


def trained(capsys, tmp_path: Path, rng, *extra) -> Path:
    table(rng, 60).to_csv(tmp_path / "train.csv", index=False)
    model = tmp_path / "model.safetensors"
    code, _, err = run(capsys, "train", "--data", tmp_path / "train.csv", "--target", "y",
                       *FAST, "-o", model, *extra)  # fmt: skip
    assert code == 0, err
    return model


@pytest.mark.parametrize("command", ["predict", "eval"])
def test_a_word_in_a_number_column_is_offered_as_a_missing_marker(tmp_path, rng, capsys, command):
    model = trained(capsys, tmp_path, rng)
    new = table(rng, 12).astype({"x1": object})
    row, word = int(rng.integers(12)), str(rng.choice(WORDS))
    gap = new.copy()
    gap.loc[row, "x1"] = None
    new.loc[row, "x1"] = word
    new.to_csv(tmp_path / "new.csv", index=False)
    gap.to_csv(tmp_path / "gap.csv", index=False)
    code, _, err = run(capsys, command, model, tmp_path / "new.csv")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"line {row + 2}, column 'x1': {word!r} is text" in err, err
    assert f"add --na-values {word!r}" in err, err  # as train says it
    # the advice, followed, reads the word as the gap it marks
    code, out, err = run(capsys, command, model, tmp_path / "new.csv", "--na-values", word)
    assert code == 0, err
    gap_out = run(capsys, command, model, tmp_path / "gap.csv")[1]
    assert gap_out == out.replace("new.csv", "gap.csv")  # (eval names its file)
    # a DataFrame in Python has no --na-values: not offered there
    frame = pd.read_csv(tmp_path / "new.csv").drop(columns="y")  # x1: text, as pandas reads it
    with pytest.raises(wxb.DataError, match=f"{word!r} is text") as refused:
        wxb.load(model).predict(frame)
    assert "--na-values" not in str(refused.value)


def test_a_number_beyond_float32_in_predict_names_the_option_of_training(tmp_path, rng, capsys):
    model = trained(capsys, tmp_path, rng)
    new = table(rng, 10).astype({"x2": object})
    row = int(rng.integers(10))
    new.loc[row, "x2"] = f"{rng.choice([-1, 1]) * rng.uniform(1, 9):.2f}e{rng.integers(39, 300)}"
    new.drop(columns="y").to_csv(tmp_path / "new.csv", index=False)
    code, _, err = run(capsys, "predict", model, tmp_path / "new.csv")
    assert code == 2 and f"line {row + 2}, column 'x2'" in err, err
    # predict has no --dtype: the error sent a user to an option it refuses
    assert "beyond float32's range: a model trained with --dtype float64 reads it" in err, err
    with pytest.raises(SystemExit):  # argparse's refusal
        run(capsys, "predict", model, tmp_path / "new.csv", "--dtype", "float64")
    assert "unrecognized arguments: --dtype" in capsys.readouterr().err
    # followed: a float64 model reads the row, each number as written
    model64 = trained(capsys, tmp_path, rng, "--dtype", "float64")
    code, out, err = run(capsys, "predict", model64, tmp_path / "new.csv")
    assert code == 0, err
    assert len(pd.read_csv(io.StringIO(out))) == 10


def test_a_dataframe_column_of_mixed_cells_reads_as_the_same_cells_in_a_file(tmp_path, rng, capsys):
    """pandas keeps a column edited by hand ('n.a.' set into floats) or read from Excel
    as objects of several kinds; pyarrow refused the whole column with its own message
    (a tuple, 'Conversion failed for column x1 with type object'), even where each cell
    is a number written as text. Read as a file's cells are: numbers as the numbers,
    a word named by row, an int code beside text codes as the code's text."""
    n = 40
    frame = table(rng, n)
    frame["grade"] = rng.choice(["A", "B", "7"], n)
    frame.to_csv(tmp_path / "train.csv", index=False)
    model_path = tmp_path / "model.safetensors"
    code, _, err = run(capsys, "train", "--data", tmp_path / "train.csv", "--target", "y",
                       *FAST, "-o", model_path)  # fmt: skip
    assert code == 0, err
    model = wxb.load(model_path)
    new = table(rng, 12).drop(columns="y")
    new["grade"] = rng.choice(["A", "B", "7"], 12)
    new.loc[int(rng.integers(12)), "grade"] = "7"
    expected = model.predict(new)  # every column of one kind
    mixed = new.astype({"x1": object, "grade": object})
    row = int(rng.integers(12))
    mixed.loc[row, "x1"] = str(new.loc[row, "x1"])  # a number written as text
    sevens = np.flatnonzero(new["grade"] == "7")
    mixed.loc[sevens, "grade"] = 7  # an int code among text codes
    np.testing.assert_array_equal(model.predict(mixed), expected)
    # a gap (None) beside numbers as text and floats: the gap a NaN float is
    gap = (row + 1) % 12
    holed = mixed.astype({"x2": object})
    holed.loc[gap, "x2"] = None
    holed.loc[row, "x2"] = str(new.loc[row, "x2"])
    floats = new.copy()
    floats.loc[gap, "x2"] = np.nan
    np.testing.assert_array_equal(model.predict(holed), model.predict(floats))
    mixed.loc[row, "x1"] = "n.a."
    with pytest.raises(wxb.DataError) as refused:
        model.predict(mixed)
    message = str(refused.value)
    assert f"row {row}, column 'x1': 'n.a.' is text" in message, message
    assert "Conversion failed" not in message and "\n" not in message


def test_export_says_a_boolean_column_is_given_as_1_and_0(tmp_path, rng, capsys):
    """wxb export listed numbers and text, not booleans, whose input is a number too: a
    newcomer feeding wine.csv's `organic` had to guess. Said, and followed, the graph
    gives wxb predict's probabilities."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    n = 60
    frame = table(rng, n)
    frame["flag"] = rng.choice(["True", "False"], n)
    frame["y"] = np.where(frame["x1"] + (frame["flag"] == "True") > 0.5, "hi", "lo")
    frame.to_csv(tmp_path / "train.csv", index=False)
    model = tmp_path / "model.safetensors"
    code, _, err = run(capsys, "train", "--data", tmp_path / "train.csv", "--target", "y",
                       *FAST, "-o", model)  # fmt: skip
    assert code == 0, err
    code, out, err = run(capsys, "export", model, "-o", tmp_path / "m.onnx")
    assert code == 0 and "booleans (flag) as 1 and 0" in out, out + err
    new = table(rng, 9).drop(columns="y")
    new["flag"] = rng.choice([True, False], 9)
    new.to_csv(tmp_path / "new.csv", index=False)
    expected = pd.read_csv(io.StringIO(run(capsys, "predict", model, tmp_path / "new.csv",
                                           "--proba")[1]))  # fmt: skip
    feeds = {c: new[c].to_numpy(np.float32).reshape(-1, 1) for c in ["x1", "x2", "flag"]}
    logits = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, feeds)[0]
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    # float32 logits of a small net: the softmax agrees to a few float32 ulps of 1
    np.testing.assert_allclose(probabilities, expected[["p_hi", "p_lo"]], atol=1e-6)
