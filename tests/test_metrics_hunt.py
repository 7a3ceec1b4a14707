"""What wxb eval, its tables and the metrics functions print about a model's quality,
against scikit-learn.metrics (and the counts behind each share) on fresh random rows."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest
from cli_run import run
from sklearn.metrics import accuracy_score

import wxb
from wxb import nn


def _overlap_said(err: str) -> tuple[int, int, str]:
    found = re.search(r"warning: (\d+) of (\d+) rows \(([^)]*)\) are", err)
    assert found, err
    return int(found[1]), int(found[2]), found[3]


def test_the_share_of_training_rows_reads_none_or_all_only_when_it_is(tmp_path, seeded, capsys):
    rng = seeded.rng
    # a few distinct rows, each many times: every one of them lands among the training rows
    patterns = rng.normal(size=(int(rng.integers(3, 6)), 2)).round(3)
    labels = np.array(["a", "b"])[np.arange(len(patterns)) % 2]
    pick = np.repeat(np.arange(len(patterns)), 30)
    frame = pd.DataFrame(patterns[pick], columns=["u", "v"]).assign(y=labels[pick])
    frame.to_csv(tmp_path / "train.csv", index=False)
    model = tmp_path / "m.safetensors"
    train = ("--target", "y", "--hidden", "4", "--epochs", "1", "-q", "--fingerprint")
    code, _, err = run(capsys, "train", "--data", tmp_path / "train.csv", *train, "-o", model)
    assert code == 0, err

    many = int(rng.integers(250, 400))
    new = pd.DataFrame(rng.normal(size=(1, 2)) + 10, columns=["u", "v"]).assign(y="a")
    seen = frame.sample(many, replace=True, random_state=int(rng.integers(1 << 31)))
    nearly_all = pd.concat([seen, new])  # many of many + 1: not "100%"
    nearly_none = pd.concat([seen.iloc[:1], new.iloc[[0] * many]])  # 1 of many + 1: not "0%"
    for rows, expected in ((nearly_all, many), (nearly_none, 1)):
        rows.to_csv(tmp_path / "e.csv", index=False)
        code, _, err = run(capsys, "eval", model, tmp_path / "e.csv")
        assert code == 0, err
        count, whole, text = _overlap_said(err)
        assert (count, whole) == (expected, len(rows)), seeded.msg(err)
        share = count / whole
        # as a whole percent, up to one either side; 0% and 100% only for none and all
        assert text not in ("0%", "100%"), seeded.msg(f"{count} of {whole} said as {text}")
        shown = float(text.strip("<>%")) / 100
        assert abs(shown - share) <= 0.01, seeded.msg(f"{count} of {whole} said as {text}")


def _close_as_shown(text: str, value: float) -> bool:
    """``text`` is ``value`` to four decimals, or to four significant digits below 1e-3."""
    tolerance = 5e-5 if abs(value) >= 1e-3 else 5e-4 * abs(value)
    return abs(float(text) - value) <= tolerance


def test_fit_prints_each_epoch_s_figures_as_they_are(seeded):
    rng = seeded.rng
    X = rng.normal(size=(int(rng.integers(32, 96)), 3))
    y = X @ rng.normal(size=3)  # a line: plain SGD drives the MSE to ~1e-14
    tiny_rate = float(10 ** rng.uniform(-6.5, -4.5))  # shown as 0.0000 to four decimals
    for optimizer, lr, epochs in (("sgd", 0.5, 150), ("adam", tiny_rate, 2)):
        stream = io.StringIO()
        history = wxb.fit(nn.Sequential(nn.Linear(3, 1)), X, y, loss="mse", optimizer=optimizer,
                          lr=lr, epochs=epochs, batch_size=len(X), validation_split=0,
                          verbose=True, stream=stream)  # fmt: skip
        lines = [line for line in stream.getvalue().split("\n") if "  loss " in line]
        assert len(lines) == epochs
        for epoch, line in enumerate(lines):
            shown = dict(re.findall(r"(\w+) (\S+?)(?:\x1b\[K)?(?=\s|$)", line.split("\r")[-1]))
            for key, values in history.history.items():
                value = values[epoch]
                assert _close_as_shown(shown[key], value), seeded.msg(
                    f"epoch {epoch + 1}: {key} {value!r} shown as {shown[key]}"
                )


def test_evaluate_reads_no_class_from_outputs_that_are_not_numbers(seeded):
    rng = seeded.rng
    n, classes = int(rng.integers(40, 200)), int(rng.integers(1, 5))
    X = rng.normal(size=(n, 3)).astype(np.float32)
    for loss, width in (("cross_entropy", classes + 1), ("bce_with_logits", 1)):
        model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, width))
        y = rng.integers(0, 2 if width == 1 else width, n)
        y = y.astype(np.float64) if width == 1 else y
        out = model.predict(X)
        right = out[:, 0] > 0 if width == 1 else out.argmax(axis=1)
        figures = wxb.evaluate(model, X, y, loss)
        assert figures["accuracy"] == accuracy_score(y, right), seeded.msg(loss)
        # inputs far beyond float32's range for this network: some outputs overflow
        far = X.copy()
        far[rng.random(n) < 0.5] = np.float32(3e38)  # times W = 2: inf in every unit
        model[0].weight.data[...] = 2.0
        with np.errstate(all="ignore"):
            out = model.predict(far)
            figures = wxb.evaluate(model, far, y, loss)
        assert not np.isfinite(out).all(), seeded.msg(loss)
        # the loss is NaN; argmax would read a NaN as the largest, counted right or wrong
        assert np.isnan(figures["accuracy"]), seeded.msg(f"{loss}: {figures}")


def test_the_class_table_says_which_zeros_are_undefined_and_what_macro_f1_leaves_out(seeded):
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    from wxb.metrics import classification_figures, format_classification

    rng = seeded.rng
    n_classes, rows = int(rng.integers(3, 9)), int(rng.integers(5, 200))
    classes = [f"k{k}" for k in range(n_classes)]
    # some classes never in the truth, some never predicted: each drawn from its own subset
    in_truth = rng.choice(n_classes, int(rng.integers(1, n_classes + 1)), replace=False)
    in_pred = rng.choice(n_classes, int(rng.integers(1, n_classes + 1)), replace=False)
    y_true, y_pred = rng.choice(in_truth, rows), rng.choice(in_pred, rows)
    text = format_classification(classification_figures(y_true, y_pred, classes))

    labels = list(range(n_classes))
    p, r, _, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=np.nan
    )
    present = set(y_true) | set(y_pred)
    said = {key: set() for key in ("precision", "recall", "left out")}
    for line in text.splitlines():
        if line.startswith("(0 where undefined"):
            for key in ("precision", "recall"):
                found = re.search(rf"the {key} of ([^(]*) \(", line)
                said[key] = set(found[1].split(", ")) if found else set()
        elif line.endswith("not in macro F1)"):
            said["left out"] = set(line[1:].split(":")[0].split(", "))
    expected = {
        "precision": {classes[k] for k in present if np.isnan(p[k])},
        "recall": {classes[k] for k in present if np.isnan(r[k])},
        "left out": {classes[k] for k in labels if k not in present},
    }
    assert said == expected, seeded.msg(text)
    # the F1 column's mean over the classes not left out is the macro F1 the text heads
    table = text.split("\n\n")[1].splitlines()[1 : 1 + n_classes]  # after its header
    shown = {line.split()[0]: float(line.split()[3]) for line in table}
    macro = float(re.search(r"macro F1 (\S+)", text)[1])
    kept = [v for name, v in shown.items() if name not in said["left out"]]
    assert abs(np.mean(kept) - macro) <= 1e-4, seeded.msg(text)
    assert macro == pytest.approx(f1_score(y_true, y_pred, average="macro"), abs=5e-5)


def test_eval_says_which_r2_is_undefined_for_a_target_that_does_not_vary(tmp_path, seeded, capsys):
    from sklearn.metrics import r2_score

    rng = seeded.rng
    n = int(rng.integers(60, 120))
    frame = pd.DataFrame(rng.normal(size=(n, 2)).round(4), columns=["u", "v"])
    frame["t1"] = (frame.u * 2 + frame.v).round(4)
    frame["t2"] = (frame.u - frame.v).round(4)
    frame.to_csv(tmp_path / "d.csv", index=False)
    model = tmp_path / "m.safetensors"
    fast = ("--hidden", "8", "--epochs", "2", "-q")
    code, _, err = run(capsys, "train", "--data", tmp_path / "d.csv", "--target", "t1,t2",
                       *fast, "-o", model)  # fmt: skip
    assert code == 0, err
    rows = frame.sample(int(rng.integers(5, 40)), random_state=int(rng.integers(1 << 31)))
    flat = list(rng.choice(["t1", "t2"], int(rng.integers(1, 3)), replace=False))
    rows[flat] = rng.integers(-50, 50, len(flat)).astype(float)  # whole: a mean that is exact
    rows.to_csv(tmp_path / "e.csv", index=False)
    code, out, err = run(capsys, "eval", model, tmp_path / "e.csv")
    assert code == 0, err
    predicted = wxb.load(model).predict(rows[["u", "v"]].to_numpy(np.float32))
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = r2_score(rows[["t1", "t2"]], predicted, multioutput="raw_values", force_finite=False)
    undefined = [name for name, r2 in zip(("t1", "t2"), raw, strict=True) if not np.isfinite(r2)]
    assert sorted(undefined) == sorted(flat)
    note = re.search(r"R² undefined for ([^,]+(?:, [^,]+)*), whose", out)
    assert note and note[1].split(", ") == undefined, seeded.msg(out)


def test_eval_scores_class_indices_for_a_model_trained_on_one_hot_rows(tmp_path, seeded, capsys):
    from sklearn.metrics import f1_score

    rng = seeded.rng
    n, classes = int(rng.integers(80, 200)), int(rng.integers(2, 5))
    X = rng.normal(size=(n, 3))
    k = np.argmax(X[:, :1] * np.arange(classes) + rng.normal(size=(n, classes)), axis=1)
    np.savez(tmp_path / "train.npz", X=X, y=np.eye(classes)[k])  # y0, y1, …: one-hot
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", tmp_path / "train.npz",
                       "--hidden", "8", "--epochs", "2", "-q", "-o", model)  # fmt: skip
    assert code == 0, err
    rows = rng.choice(n, int(rng.integers(20, n)), replace=False)
    np.savez(tmp_path / "e.npz", X=X[rows], y=k[rows])  # the same classes, as indices
    code, out, err = run(capsys, "eval", model, tmp_path / "e.npz", "--target", "y")
    assert code == 0, seeded.msg(err)
    predicted = wxb.load(model).predict(X[rows]).argmax(axis=1)
    said = re.search(r"accuracy (\S+), macro F1 (\S+)", out)
    assert float(said[1]) == pytest.approx(accuracy_score(k[rows], predicted), abs=5e-5)
    macro = f1_score(k[rows], predicted, average="macro", zero_division=0)
    assert float(said[2]) == pytest.approx(macro, abs=5e-5), seeded.msg(out)
