"""Categories never seen in training at predict time: still all zeros (scikit-learn's
handle_unknown="ignore", and the ONNX export alike), but said, a line a column: how many
rows, which values, and the training category each nearly is ('RED' for 'red')."""

from __future__ import annotations

import re
import warnings

import numpy as np
import onnxruntime as ort
import pytest

import wxb
from wxb.cli import main
from wxb.onnx import export

COLOURS = ["red", "blue", "green"]


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_rows(path, x, colour, answer, y=None):
    lines = ["x,colour,answer" + (",y" if y is not None else "")]
    for row in range(len(x)):
        tail = f",{y[row]}" if y is not None else ""
        lines.append(f"{x[row]},{colour[row]},{answer[row]}{tail}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def trained(tmp_path, rng, capsys):
    """A regression model on x, a colour and a yes/no answer (text categories)."""
    n = 60
    x = rng.normal(size=n)
    colour = rng.choice(COLOURS, size=n)
    answer = rng.choice(["yes", "no"], size=n)
    y = x + 3 * (colour == "red") - 2 * (answer == "yes")
    data = write_rows(tmp_path / "train.csv", x, colour, answer, y)
    model = tmp_path / "m.safetensors"
    code, _, err = run_cli(capsys, "train", "--data", str(data), "--target", "y",
                           "--epochs", "2", "-o", str(model))  # fmt: skip
    assert code == 0, err
    return model


def unseen_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "not seen in training" in line]


def test_predict_and_eval_say_which_categories_were_never_seen(tmp_path, rng, capsys, trained):
    n = int(rng.integers(5, 30))
    x = rng.normal(size=n)
    colour = rng.choice(COLOURS, size=n)
    answer = rng.choice(["yes", "no"], size=n)
    y = rng.normal(size=n)
    plain = write_rows(tmp_path / "plain.csv", x, colour, answer, y)
    code, known, err = run_cli(capsys, "predict", str(trained), str(plain))
    assert code == 0 and not unseen_lines(err), err

    # exported in capitals: every colour unseen, each explained by its case alone
    shouted = write_rows(tmp_path / "shouted.csv", x, np.char.upper(colour), answer, y)
    for command in ("predict", "eval"):
        code, out, err = run_cli(capsys, command, str(trained), str(shouted))
        assert code == 0, err
        (line,) = unseen_lines(err)
        assert line.startswith("wxb: warning: ") and "'colour'" in line, line
        assert f"{n} of {n} rows (100%)" in line, line
        for present in set(colour):  # (three at most: each shown)
            assert f"'{present.upper()}' (training had '{present}')" in line, line
        assert "but for case" in line, line
    code, out, err = run_cli(capsys, "predict", str(trained), str(shouted))
    assert out != known  # (all zeros: other predictions, as before)

    # one row re-coded, and booleans where training had yes/no: counted, nothing near
    colour = colour.astype(object)
    colour[0] = "purple"
    answer = np.where(answer == "yes", "True", "False")
    mixed = write_rows(tmp_path / "mixed.csv", x, colour, answer)
    code, out, err = run_cli(capsys, "predict", str(trained), str(mixed))
    assert code == 0, err
    by_column = {re.search(r"column '(\w+)'", line)[1]: line for line in unseen_lines(err)}
    assert set(by_column) == {"colour", "answer"}, err
    share = "100%" if n == 1 else f"{100 / n:.0f}%"
    assert f"1 of {n} rows ({share})" in by_column["colour"]
    assert "'purple'" in by_column["colour"] and "but for case" not in by_column["colour"]
    assert f"{n} of {n} rows (100%)" in by_column["answer"]
    assert "training had 'no', 'yes'" in by_column["answer"], by_column["answer"]


def test_python_predict_warns_at_the_callers_line_and_onnx_agrees(tmp_path, rng, trained):
    model = wxb.load(str(trained))
    n = int(rng.integers(3, 20))
    rows = {
        "x": rng.normal(size=n),
        "colour": list(rng.choice(["Red", "BLUE"], size=n)),
        "answer": list(rng.choice(["yes", "no"], size=n)),
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = model.predict(rows)
    (warning,) = [w for w in caught if "not seen in training" in str(w.message)]
    assert warning.category is UserWarning and warning.filename == __file__, warning
    assert f"{n} of {n} rows (100%)" in str(warning.message) and "but for case" in str(
        warning.message
    )
    # the same rows through the ONNX export: unseen is all zeros there too
    path = export(model, tmp_path / "m.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    runner = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {
        "x": rows["x"].astype(np.float32).reshape(-1, 1),
        "colour": np.array(rows["colour"], dtype=object).reshape(-1, 1),
        "answer": np.array(rows["answer"], dtype=object).reshape(-1, 1),
    }
    (onnx_out,) = runner.run(None, feeds)
    np.testing.assert_allclose(onnx_out, got, rtol=1e-5, atol=1e-5)
