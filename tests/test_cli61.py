"""Small command-line habits: a scikit-learn-style model's named target read back by
wxb eval, and a mistyped column name answered with the column it most likely meant."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from cli_run import run
from sklearn.metrics import accuracy_score, r2_score

import wxb
from wxb.sklearn import MLPClassifier, MLPRegressor


def labelled_table(rng: np.random.Generator, n: int = 90) -> pd.DataFrame:
    """Three named classes, well apart in four features, and two numeric columns."""
    k = rng.integers(0, 3, size=n)
    X = 3 * np.eye(3, 4)[k] + rng.normal(scale=0.4, size=(n, 4))
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    frame["species"] = np.array(["setosa", "versicolor", "virginica"])[k]
    frame["height"] = X @ rng.normal(size=4)
    frame["width"] = X[:, 0] - X[:, 1]
    return frame


def eval_figure(out: str, name: str) -> float:
    return float(re.search(rf"{name} (-?[\d.]+)", out).group(1))


def test_to_wxb_records_a_named_target_so_wxb_eval_finds_its_column(capsys, tmp_path, rng):
    frame = labelled_table(rng)
    table = tmp_path / "table.csv"
    frame.to_csv(table, index=False)
    X = frame[["a", "b", "c", "d"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (lbfgs's iteration limit)
        clf = MLPClassifier(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=40).fit(
            X, frame["species"]
        )
        reg = MLPRegressor(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=40).fit(
            X, frame[["height", "width"]]
        )
    for est, name in ((clf, "clf"), (reg, "reg")):
        wxb.save(est.to_wxb(), tmp_path / f"{name}.safetensors")

    code, out, err = run(capsys, "eval", tmp_path / "clf.safetensors", table)
    assert code == 0, err  # it asked for --target species
    expected = accuracy_score(frame["species"], clf.predict(X))
    assert eval_figure(out, "accuracy") == pytest.approx(expected, abs=1e-4)

    code, out, err = run(capsys, "eval", tmp_path / "reg.safetensors", table)
    assert code == 0, err
    for column, predicted in zip(["height", "width"], reg.predict(X).T, strict=True):
        r2 = r2_score(frame[column], predicted)
        assert eval_figure(out, f"{re.escape(column)}: MAE [\\d.]+, RMSE [\\d.]+, R²") == (
            pytest.approx(r2, abs=1e-3)
        )


@pytest.mark.parametrize(
    "option",
    [
        ["--target", "Species"],
        ["--target", "species", "--features", "a,B"],
        ["--target", "species", "--drop", "B"],
        ["--target", "species", "--id-column", "SPECIEs"],
        ["--target", "specie"],
    ],
)
def test_a_mistyped_column_is_answered_with_the_near_one(capsys, tmp_path, rng, option):
    table = tmp_path / "table.csv"
    labelled_table(rng, n=30).to_csv(table, index=False)
    code, _, err = run(capsys, "train", "--data", table, *option, "-o", tmp_path / "m")
    meant = "'species'" if "pecie" in option[-1].lower() else "'b'"
    assert code == 2 and f"did you mean {meant}?" in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_eval_and_predict_name_the_near_column_too(capsys, tmp_path, rng):
    frame = labelled_table(rng, n=30)
    table = tmp_path / "table.csv"
    frame.to_csv(table, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPClassifier(hidden_layer_sizes=(3,), solver="lbfgs", max_iter=5)
        est.fit(frame[["a", "b", "c", "d"]], frame["species"])
    model = tmp_path / "m.safetensors"
    wxb.save(est.to_wxb(), model)
    code, _, err = run(capsys, "eval", model, table, "--target", "Species")
    assert code == 2 and "did you mean 'species'?" in err, err
    renamed = tmp_path / "renamed.csv"
    frame.rename(columns={"c": "C"}).to_csv(renamed, index=False)
    code, _, err = run(capsys, "predict", model, renamed)
    assert code == 2 and "is 'C' 'c'?" in err, err


def test_a_python_model_named_by_the_digits_frame_is_not_walked_through_raw_digits(
    capsys, tmp_path, rng
):
    """MLPClassifier fitted on load_digits(as_frame=True).data / 16 carries the digits'
    pixel names; wxb explain took it for wxb train's digits model and walked it through
    the raw pixels 0–16 (its Z 16 times what it was trained on). Only wxb train's own
    old files (a Standardize first, test figures recorded) are taken so."""
    from sklearn.datasets import load_digits

    digits = load_digits(as_frame=True)
    rows = rng.choice(len(digits.target), size=200, replace=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=3)
        est.fit(digits.data.iloc[rows] / 16, digits.target.iloc[rows])
    model = wxb.save(est.to_wxb(), tmp_path / "m.safetensors")
    code, out, err = run(capsys, "explain", model)
    assert code == 2 and "name the rows to explain on" in err, out[:300]
