"""The figures wxb reports agree with scikit-learn's on the same predictions (a hunt of
the reported numbers): float32 models scored against the targets as given, multilabel
accuracy as scikit-learn counts it, predictions written as the model gave them, outputs
that are not numbers refused, R² of one row undefined. Expected values come from
scikit-learn or from the definitions, on data drawn fresh each run."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_run import run
from sklearn.metrics import accuracy_score, mean_squared_error, r2_score

import wxb
from wxb.metrics import format_regression, regression_figures
from wxb.nn import Dense, Sequential


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_evaluate_scores_the_targets_as_given_not_rounded_to_float32(rng, dtype):
    n = 2000
    X = rng.standard_normal((n, 1)).astype(np.float32)
    y = 1e8 + X[:, 0].astype(np.float64) + 3 * rng.standard_normal(n)  # float32 steps by 8
    model = Sequential(Dense(1, 1, dtype=dtype))
    model[0].weight.data[:] = 1.0
    model[0].bias.data[:] = 1e8
    predictions = model.predict(X).astype(np.float64).ravel()
    expected = mean_squared_error(y, predictions) / 2  # wxb's MSE: ½ mean of the squares
    assert wxb.evaluate(model, X, y, "mse")["loss"] == pytest.approx(expected, rel=1e-6)

    history = wxb.fit(model, X, y, loss="mse", epochs=1, lr=1e-9, validation_data=(X, y))
    predictions = model.predict(X).astype(np.float64).ravel()  # the weights it ended with
    expected = mean_squared_error(y, predictions) / 2
    assert history.history["val_loss"][-1] == pytest.approx(expected, rel=1e-6)


def test_multilabel_accuracy_counts_rows_with_every_label_right(rng):
    n, labels = 300, 3
    X = rng.standard_normal((n, 5)).astype(np.float32)
    Y = (rng.random((n, labels)) < 0.5).astype(np.float32)
    model = Sequential(Dense(5, labels, seed=int(rng.integers(2**31))))
    predicted = (model.predict(X) > 0).astype(np.float32)
    expected = accuracy_score(Y, predicted)  # scikit-learn's subset accuracy
    assert expected < 1 - np.mean(predicted != Y)  # not the share of labels right
    figures = wxb.evaluate(model, X, Y, "bce_with_logits")
    assert figures["accuracy"] == pytest.approx(expected)
    history = wxb.fit(
        model, X, Y, loss="bce_with_logits", epochs=1, lr=1e-9, batch_size=n,
        validation_data=(X, Y),
    )  # fmt: skip
    assert history.history["accuracy"][-1] == pytest.approx(expected)  # before its one step
    after = accuracy_score(Y, (model.predict(X) > 0).astype(np.float32))
    assert history.history["val_accuracy"][-1] == pytest.approx(after)


def test_predict_writes_a_float32_models_whole_numbers_exactly(tmp_path, rng, capsys):
    n = 120
    x = rng.normal(size=n).round(3)
    y = 1e8 + 40 * x + rng.normal(scale=20, size=n)
    pd.DataFrame({"x": x, "y": y}).to_csv(tmp_path / "d.csv", index=False)
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", tmp_path / "d.csv", "--target", "y",
                       "--hidden", "8", "--epochs", "3", "-q", "-o", model)  # fmt: skip
    assert code == 0, err
    code, out, err = run(capsys, "predict", model, tmp_path / "d.csv")
    assert code == 0, err
    written = pd.read_csv(io.StringIO(out))["prediction"].to_numpy()  # float64, as pandas reads
    frame = pd.read_csv(tmp_path / "d.csv")
    exact = wxb.load(model).predict(frame[["x"]]).astype(np.float64).ravel()
    assert np.abs(exact).min() > 2**24  # float32 holds only whole numbers here
    np.testing.assert_array_equal(written, exact)


def test_outputs_that_are_not_numbers_give_no_class_and_no_figure(tmp_path, rng, capsys):
    n = 60
    frame = pd.DataFrame({"x": rng.normal(size=n).round(3), "y": rng.choice(["a", "b", "c"], n)})
    frame.to_csv(tmp_path / "train.csv", index=False)
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", tmp_path / "train.csv", "--target", "y",
                       "--hidden", "8", "--epochs", "2", "-q", "-o", model)  # fmt: skip
    assert code == 0, err
    network = wxb.load(model)
    for parameter in network.parameters():  # weights that overflow float32 on large inputs
        parameter.data *= 1e15
    wxb.save(network, model)
    frame.loc[3:4, "x"] = [1e10, -1e10]
    frame.to_csv(tmp_path / "far.csv", index=False)
    for command in (
        ("eval", model, tmp_path / "far.csv"),
        ("predict", model, tmp_path / "far.csv"),
    ):
        code, out, err = run(capsys, *command)
        assert code == 2 and err.count("\n") == 1, (command, err)
        assert re.search(r"far\.csv, line [56]\b", err) and "not finite" in err and out == ""


def test_r2_of_one_row_is_undefined_as_in_scikit_learn(rng):
    y = rng.normal(size=(1, 1))
    with pytest.warns(Warning):  # scikit-learn's UndefinedMetricWarning
        expected = r2_score(y, y + 0.1)
    assert np.isnan(expected) and np.isnan(regression_figures(y, y + 0.1)["r2"])
    y = rng.normal(size=(2, 1))
    p = y + rng.normal(size=(2, 1))
    assert regression_figures(y, p)["r2"] == pytest.approx(r2_score(y, p))


def test_eval_prints_an_undefined_r2_as_nan(tmp_path, rng, capsys):
    n = 40
    frame = pd.DataFrame({"x": rng.normal(size=n).round(3), "y": rng.normal(size=n).round(3)})
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.iloc[:1].to_csv(tmp_path / "one.csv", index=False)
    model = Path(tmp_path / "m.safetensors")
    code, _, err = run(capsys, "train", "--data", tmp_path / "d.csv", "--target", "y",
                       "--hidden", "8", "--epochs", "2", "-q", "-o", model)  # fmt: skip
    assert code == 0, err
    code, out, err = run(capsys, "eval", model, tmp_path / "one.csv")
    assert code == 0, err
    assert "r2 nan" in out


def test_an_r2_short_of_one_is_not_printed_as_one(rng):
    y = rng.normal(size=(200, 1))
    p = y + rng.normal(scale=2e-3, size=(200, 1))  # R² ≈ 0.999996
    r2 = r2_score(y, p)
    assert 0.99999 < r2 < 1
    text = format_regression(regression_figures(y, p))
    written = text.split("R² ")[1].split()[0]
    shown = float(written)
    # the text is R² rounded to the decimals it shows: within half of its last place
    last_place = 10.0 ** -len(written.split(".")[1])
    assert shown < 1 and shown == pytest.approx(r2, abs=last_place / 2 + 1e-15)
