"""The wxb command: the main job, eval, predict, and one-line errors with status 2."""

import copy
import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import wxb
from wxb.cli import main

WXB = [sys.executable, "-m", "wxb.cli"]


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_csv(path: Path, header, rows):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def labelled_csv(path, rng, n=150):
    """Three named classes separated in 4 features."""
    names = np.array(["setosa", "versicolor", "virginica"])
    centres = 4 * np.eye(3, 4) + rng.normal(scale=0.3, size=(3, 4))  # ≥ 5 apart
    y = rng.integers(0, 3, size=n)
    X = centres[y] + rng.normal(scale=0.5, size=(n, 4))
    rows = [[*(str(float(v)) for v in x), names[k]] for x, k in zip(X, y, strict=True)]
    return write_csv(path, ["a", "b", "c", "d", "species"], rows), X, names[y]


@pytest.mark.slow
def test_default_train_reaches_97_percent_and_reloads_identically(tmp_path):
    result = subprocess.run([*WXB, "train"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    accuracy = float(re.search(r"test loss [\d.]+, accuracy ([\d.]+)", result.stdout).group(1))
    assert accuracy >= 0.97
    assert "saved model to model.safetensors" in result.stdout
    assert result.stderr == ""  # not a terminal: no progress bar
    model = wxb.load(tmp_path / "model.safetensors")
    assert model.info["test"]["accuracy"] == pytest.approx(accuracy, abs=1e-4)

    from sklearn.datasets import load_digits

    digits = load_digits()
    first = model.predict(digits.data)
    again = wxb.load(tmp_path / "model.safetensors").predict(digits.data)
    assert np.array_equal(first, again)
    assert (first.argmax(axis=1) == digits.target).mean() >= 0.97


def test_train_eval_predict_on_a_csv_with_named_classes(tmp_path, rng, capsys):
    data, X, labels = labelled_csv(tmp_path / "iris.csv", rng)
    model_path = tmp_path / "out" / "iris.safetensors"
    code, out, _ = run_cli(
        capsys,
        "train",
        "--data",
        str(data),
        "--target",
        "species",
        "--hidden",
        "16",
        "--epochs",
        "30",
        "--lr",
        "0.01",  # 120 steps: enough at this rate for well-separated classes
        "-o",
        str(model_path),
        "--history",
        str(tmp_path / "h.json"),
    )
    assert code == 0 and model_path.exists() and (tmp_path / "h.json").exists()
    assert "accuracy" in out
    model = wxb.load(model_path)
    assert model.info["classes"] == ["setosa", "versicolor", "virginica"]
    assert model.info["feature_names"] == ["a", "b", "c", "d"]

    code, out, _ = run_cli(capsys, "eval", str(model_path), "--data", str(data))
    assert code == 0
    assert float(re.search(r"accuracy ([\d.]+)", out).group(1)) > 0.9

    # predict reads features by name: reorder the columns, drop the target
    shuffled = write_csv(
        tmp_path / "new.csv", ["d", "c", "b", "a"], [[str(float(v)) for v in x[::-1]] for x in X]
    )
    out_csv = tmp_path / "pred.csv"
    code, _, err = run_cli(
        capsys, "predict", str(model_path), str(shuffled), "-o", str(out_csv), "--proba"
    )
    assert code == 0 and "wrote 150 predictions" in err
    rows = list(csv.DictReader(out_csv.open()))
    assert list(rows[0]) == ["prediction", "p_setosa", "p_versicolor", "p_virginica"]
    predicted = np.array([r["prediction"] for r in rows])
    assert (predicted == labels).mean() > 0.9
    probabilities = np.array([[float(r[k]) for k in list(r)[1:]] for r in rows])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-6)


def test_regression_and_npz(tmp_path, rng, capsys):
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.5, -2.0, 0.5]) + 0.1 * rng.normal(size=200)
    np.savez(tmp_path / "reg.npz", X=X, y=y)
    model_path = tmp_path / "reg.safetensors"
    code, out, _ = run_cli(
        capsys,
        "train",
        "--data",
        str(tmp_path / "reg.npz"),
        "--epochs",
        "100",
        "--lr",
        "0.01",
        "--hidden",
        "16",
        "-o",
        str(model_path),
    )
    assert code == 0, out
    r2 = float(re.search(r"r2 ([-\d.]+)", out).group(1))
    assert r2 > 0.9
    code, out, _ = run_cli(capsys, "predict", str(model_path), str(tmp_path / "reg.npz"))
    values = np.array([float(v) for v in out.split()[1:]])
    assert np.corrcoef(values, y)[0, 1] > 0.95


# ---------------------------------------------------------------------------------
# Errors: one line, status 2, and an existing model file left as it was
# ---------------------------------------------------------------------------------
@pytest.fixture
def existing_model(tmp_path, rng):
    model = wxb.nn.Sequential(wxb.nn.Dense(4, 3, seed=0))
    model.info = {
        "task": "classification",
        "classes": ["x", "y", "z"],
        "feature_names": ["a", "b", "c", "d"],
        "target": "species",
        "loss": "cross_entropy",
    }
    path = wxb.save(model, tmp_path / "existing.safetensors")
    return path, path.read_bytes()


def assert_one_line_error(code, out, err, pattern):
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("wxb: error: "), err
    assert "Traceback" not in err
    assert re.search(pattern, err), err


TWO_CLASSES = [["1", "2", "3", "4", "x"], ["2", "1", "4", "3", "y"]] * 3

BAD_CSVS = {
    "inf": (
        ["a", "b", "c", "d", "species"],
        [["1", "inf", "3", "4", "x"], *TWO_CLASSES],
        r"line 2, column 'b': inf is not a finite number",
    ),
    "text": (  # one word in a column of numbers: a typo or an unmarked missing value
        ["a", "b", "c", "d", "species"],
        [*TWO_CLASSES, ["1", "2", "3", "four", "x"], *TWO_CLASSES],
        r"line 8, column 'd': 'four' is not a number .*--na-values 'four'",
    ),
    "no_target": (
        ["a", "b", "c", "d", "kind"],
        [["1", "2", "3", "4", "x"]] * 5,
        r"no column 'species'",
    ),
    "header_only": (["a", "b", "c", "d", "species"], [], r"no data rows"),
    "ragged": (
        ["a", "b", "c", "d", "species"],
        [["1", "2", "3", "x"]] * 5,
        r"line 2: 4 values but the header has 5",
    ),
    "one_class": (
        ["a", "b", "c", "d", "species"],
        [["1", "2", "3", "4", "x"]] * 5,
        r"single class",
    ),
    "duplicate_names": (
        ["a", "b", "a", "d", "species"],
        TWO_CLASSES,
        r"column names must differ; repeated: 'a' \(columns 1, 3\)",
    ),
    "all_targets_missing": (
        ["a", "b", "c", "d", "species"],
        [["1", "2", "3", "4", "NA"]] * 5,
        r"no row has a target value",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CSVS))
def test_train_refuses_bad_csv_and_keeps_the_existing_model(tmp_path, capsys, existing_model, case):
    path, before = existing_model
    header, rows, pattern = BAD_CSVS[case]
    data = write_csv(tmp_path / f"{case}.csv", header, rows)
    code, out, err = run_cli(
        capsys, "train", "--data", str(data), "--target", "species", "-o", str(path)
    )
    assert_one_line_error(code, out, err, pattern)
    assert path.read_bytes() == before


def test_train_refuses_missing_and_empty_files(tmp_path, capsys, existing_model):
    path, before = existing_model
    cases = {
        str(tmp_path / "absent.csv"): "no such file",
        str(write_empty(tmp_path / "empty.csv")): "the file is empty",
        str(write_empty(tmp_path / "data.json")): "holds no rows; JSON Lines is one object",
        str(write_empty(tmp_path / "data.xlsx")): "unknown data format",
    }
    for data, pattern in cases.items():
        code, out, err = run_cli(
            capsys, "train", "--data", data, "--target", "species", "-o", str(path)
        )
        assert_one_line_error(code, out, err, pattern)
    np.savez(tmp_path / "mismatch.npz", X=np.zeros((5, 2)), y=np.zeros(4))
    code, out, err = run_cli(
        capsys, "train", "--data", str(tmp_path / "mismatch.npz"), "-o", str(path)
    )
    assert_one_line_error(code, out, err, "X has 5 samples but y has 4")
    assert path.read_bytes() == before


def write_empty(path):
    path.write_text("")
    return path


@pytest.mark.filterwarnings("error::RuntimeWarning")  # one line: no NumPy overflow warnings
def test_divergence_exits_2_naming_epoch_and_step_and_keeps_the_model(
    tmp_path, rng, capsys, existing_model
):
    path, before = existing_model
    # Labels drawn apart from the features: no weights fit them, so the loss never reaches
    # 0 and the huge steps must overflow (separable data could be fit exactly instead).
    X = rng.normal(size=(150, 4))
    labels = rng.choice(["setosa", "versicolor", "virginica"], 150)
    rows = [[*x, label] for x, label in zip(X.tolist(), labels, strict=True)]
    data = write_csv(tmp_path / "d.csv", ["a", "b", "c", "d", "species"], rows)
    code, out, err = run_cli(
        capsys,
        "train",
        "--data",
        str(data),
        "--target",
        "species",
        "--optimizer",
        "sgd",
        "--activation",
        "tanh",  # no dead units: the huge steps must reach the output
        "--lr",
        "1e38",
        "-o",
        str(path),
    )
    assert_one_line_error(code, out, err, r"the loss became (nan|inf) at epoch \d+, step \d+")
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "argv,pattern",
    [
        (["train", "--hidden", "12,x"], r"--hidden takes sizes like 128,64"),
        (["train", "--epochs", "0"], r"--epochs must be ≥ 1; got 0 .*untrained"),
        (["train", "--optimizer", "lbfgs"], r"invalid choice: 'lbfgs'"),
        (["train", "--momentum", "0.9"], r"--momentum is an option of sgd, rmsprop and muon"),
        (["train", "--bogus"], r"unrecognized arguments: --bogus"),
        (["explode"], r"invalid choice: 'explode'"),
    ],
)
def test_bad_options_exit_2_with_one_line(capsys, tmp_path, existing_model, argv, pattern):
    path, before = existing_model
    with pytest.raises(SystemExit) if argv[-1] in ("lbfgs", "--bogus", "explode") else _nothing():
        code, out, err = run_cli(capsys, *argv, *(["-o", str(path)] if argv[0] == "train" else []))
        assert_one_line_error(code, out, err, pattern)
    if argv[-1] in ("lbfgs", "--bogus", "explode"):
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and re.search(pattern, err), err
    assert path.read_bytes() == before


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_eval_refuses_unseen_labels_and_missing_columns(tmp_path, capsys, existing_model):
    path, before = existing_model
    unseen = write_csv(
        tmp_path / "u.csv",
        ["a", "b", "c", "d", "species"],
        [["1", "2", "3", "4", "x"], ["1", "2", "3", "4", "dragon"]] * 6,
    )
    code, out, err = run_cli(capsys, "eval", str(path), "--data", str(unseen))
    assert_one_line_error(code, out, err, r"u.csv, line 3: label 'dragon' is not a class")
    missing = write_csv(tmp_path / "m.csv", ["a", "b", "d", "species"], [["1", "2", "4", "x"]])
    code, out, err = run_cli(capsys, "predict", str(path), str(missing))
    assert_one_line_error(code, out, err, r"missing column\(s\) 'c' the model was trained on")
    np.savez(tmp_path / "narrow.npz", X=np.zeros((3, 3)))
    code, out, err = run_cli(capsys, "predict", str(path), str(tmp_path / "narrow.npz"))
    assert_one_line_error(code, out, err, r"3 features but the model takes 4")
    assert path.read_bytes() == before


def test_corrupt_and_foreign_model_files_exit_2(tmp_path, capsys, existing_model, rng):
    path, before = existing_model
    data = write_csv(tmp_path / "d.csv", ["a", "b", "c", "d"], [["1", "2", "3", "4"]])
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(before[:-7])
    foreign = tmp_path / "foreign.safetensors"
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(2, np.float32)}, foreign)
    for model_file, pattern in (
        (corrupt, "corrupt or truncated"),
        (foreign, "not a wxb model"),
        (tmp_path / "none.safetensors", "no such model file"),
    ):
        code, out, err = run_cli(capsys, "predict", str(model_file), str(data))
        assert_one_line_error(code, out, err, pattern)
    assert path.read_bytes() == before


@pytest.mark.one_route  # once in CI: the entry point, not the kernels
def test_the_installed_command_prints_one_line_without_traceback(tmp_path):
    result = subprocess.run(
        [*WXB, "eval", str(tmp_path / "x.safetensors"), "--data", "y.csv"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    help_text = subprocess.run([*WXB, "train", "--help"], capture_output=True, text=True).stdout
    for option in (
        "--data",
        "--target",
        "--hidden",
        "--activation",
        "--loss",
        "--optimizer",
        "--lr",
        "--epochs",
        "--batch-size",
        "--seed",
        "--dtype",
        "--output",
    ):
        assert option in help_text


def test_outputs_never_overwrite_a_model_or_an_input(tmp_path, rng, capsys, existing_model):
    path, before = existing_model
    data = write_csv(tmp_path / "d.csv", ["a", "b", "c", "d"], [["1", "2", "3", "4"]])
    code, out, err = run_cli(capsys, "predict", str(path), str(data), "-o", str(path))
    assert_one_line_error(code, out, err, "also an input of this command")
    other = wxb.save(wxb.nn.Sequential(wxb.nn.Dense(4, 3)), tmp_path / "other.safetensors")
    code, out, err = run_cli(capsys, "predict", str(path), str(data), "-o", str(other))
    assert_one_line_error(code, out, err, "is a wxb model file; refusing to overwrite it")
    train_data, *_ = labelled_csv(tmp_path / "t.csv", rng)
    for history in (path, tmp_path / "new.safetensors"):
        output = tmp_path / "new.safetensors" if history == path else history
        code, out, err = run_cli(
            capsys,
            "train",
            "--data",
            str(train_data),
            "--target",
            "species",
            "-o",
            str(output),
            "--history",
            str(history),
        )
        assert code == 2 and err.startswith("wxb: error: ")
    assert path.read_bytes() == before
    assert not (tmp_path / "new.safetensors").exists()


def test_writes_go_through_symlinks_and_name_the_users_path(tmp_path, capsys, existing_model):
    path, _ = existing_model
    data = write_csv(tmp_path / "d.csv", ["a", "b", "c", "d"], [["1", "2", "3", "4"]])
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    code, _, _ = run_cli(capsys, "predict", str(path), str(data), "-o", str(link))
    assert code == 0 and link.is_symlink() and real.read_text().startswith("prediction")
    before = data.read_bytes()
    for below in ("x.csv", "sub/x.csv"):  # a file where a folder should be: named as such
        code, out, err = run_cli(
            capsys, "predict", str(path), str(data), "-o", str(tmp_path / "d.csv" / below)
        )
        assert_one_line_error(code, out, err, "x.csv")
        assert "d.csv is a file, not a folder" in err and ".tmp" not in err
        assert data.read_bytes() == before
    for below in ("m.safetensors", "sub/m.safetensors"):  # the Python API too
        with pytest.raises(NotADirectoryError, match=r"d\.csv is a file, not a folder"):
            wxb.save(wxb.load(path), tmp_path / "d.csv" / below)
        assert data.read_bytes() == before


@pytest.mark.parametrize(
    "option,pattern",
    [
        (["--seed", "-1"], "--seed must be ≥ 0"),
        (["--clip-grad-norm", "0"], "--clip-grad-norm must be > 0"),
        (["--patience", "-3"], "--patience must be ≥ 0"),
        (["--test-split", "0"], "--test-split must be between 0 and 1"),
        (["--val-split", "1.5"], r"--val-split must be in \[0, 1\)"),
        (["--lr", "-0.1"], "--lr must be > 0"),
        (["--lr", "0"], r"--lr must be > 0 and finite; got 0\.0 \(a rate of 0 trains nothing\)"),
        (["--lr", "inf"], "--lr must be > 0 and finite"),
        (["--lr", "1e400"], "--lr must be > 0 and finite"),
        (["--clip-grad-norm", "inf"], "--clip-grad-norm must be > 0 and finite"),
        (["--weight-decay", "-1"], "--weight-decay must be ≥ 0 and finite"),
        (["--optimizer", "sgd", "--momentum", "nan"], "--momentum must be ≥ 0 and finite"),
        (["--hidden", "2000000000"], "out of memory"),
        (["--hidden", "4611686018427387904"], "--hidden sizes must be at most"),
        (["--hidden", "4,99999999999999999999"], "--hidden sizes must be at most"),
    ],
)
def test_out_of_range_options_exit_2_before_training(
    tmp_path, rng, capsys, existing_model, option, pattern
):
    path, before = existing_model
    data, *_ = labelled_csv(tmp_path / "d.csv", rng)
    code, out, err = run_cli(
        capsys, "train", "--data", str(data), "--target", "species", "-o", str(path), *option
    )
    assert_one_line_error(code, out, err, pattern)
    assert path.read_bytes() == before


def test_csv_without_target_lists_columns_and_bom_is_skipped(tmp_path, rng, capsys):
    data, *_ = labelled_csv(tmp_path / "d.csv", rng)
    code, out, err = run_cli(capsys, "train", "--data", str(data))
    assert_one_line_error(code, out, err, r"--target \(columns: a, b, c, d, species\)")
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + data.read_bytes())  # as Excel's "CSV UTF-8" writes
    model_path = tmp_path / "bom.safetensors"
    code, out, _ = run_cli(
        capsys,
        "train",
        "--data",
        str(bom),
        "--target",
        "species",
        "-o",
        str(model_path),
        "--epochs",
        "2",
    )
    assert code == 0, out
    assert wxb.load(model_path).info["feature_names"] == ["a", "b", "c", "d"]


def test_one_hot_npz_targets_train_a_classifier(tmp_path, rng, capsys):
    X = np.concatenate([rng.normal(-3, 1, size=(60, 2)), rng.normal(3, 1, size=(60, 2))])
    y = np.repeat(np.eye(2), 60, axis=0)  # one-hot rows, as Keras users store labels
    np.savez(tmp_path / "onehot.npz", X=X, labels=y)
    model_path = tmp_path / "m.safetensors"
    code, out, _ = run_cli(
        capsys,
        "train",
        "--data",
        str(tmp_path / "onehot.npz"),
        "--target",
        "labels",
        "-o",
        str(model_path),
        "--epochs",
        "20",
    )
    assert code == 0, out
    assert float(re.search(r"accuracy ([\d.]+)", out).group(1)) > 0.9
    assert wxb.load(model_path).info["classes"] == [0, 1]


def test_one_hot_target_columns_are_classes_by_their_names(tmp_path, rng, capsys):
    """Several --target columns with one 1 a row are a classifier over the columns' names;
    its predictions said 0 and 1. Several labels a row: one line naming wxb.fit's loss."""
    n = int(rng.integers(80, 160))
    names = ["pos", "neg", "odd"][: int(rng.integers(2, 4))]
    X = rng.normal(size=(n, 2))
    picked = rng.integers(0, len(names), n)
    picked[: len(names)] = range(len(names))
    X[:, 0] += 4 * picked  # learnable
    X = np.array([[float(f"{v:.6f}") for v in row] for row in X])  # as the CSV holds them
    one_hot = np.eye(len(names), dtype=int)[picked]
    header = ["a", "b", *names]
    rows = [[f"{v:.6f}" for v in x] + [str(v) for v in h] for x, h in zip(X, one_hot, strict=True)]
    data = write_csv(tmp_path / "t.csv", header, rows)
    model_path = tmp_path / "m.safetensors"
    code, out, err = run_cli(capsys, "train", "--data", str(data), "--target", ",".join(names),
                             "-o", str(model_path), "--epochs", "30", "--seed", "1")  # fmt: skip
    assert code == 0, err
    assert "one-hot rows over" in out
    model = wxb.load(model_path)
    assert model.info["classes"] == names
    code, out, err = run_cli(capsys, "predict", str(model_path), str(data))
    assert code == 0, err
    predicted = out.splitlines()[1:]
    expected = np.array(names)[model.predict(X).argmax(axis=1)]
    assert predicted == list(expected)
    code, out, err = run_cli(capsys, "eval", str(model_path), "--data", str(data))
    assert code == 0, err
    accuracy = float(re.search(r"accuracy ([\d.]+)", out).group(1))
    assert accuracy == pytest.approx(np.mean(expected == np.array(names)[picked]), abs=1e-4)

    one_hot[0] = 1  # a row with several labels on
    rows = [[f"{v:.6f}" for v in x] + [str(v) for v in h] for x, h in zip(X, one_hot, strict=True)]
    data = write_csv(tmp_path / "multi.csv", header, rows)
    for loss in ("bce_with_logits", "cross_entropy"):
        code, out, err = run_cli(capsys, "train", "--data", str(data), "--target",
                                 ",".join(names), "--loss", loss)  # fmt: skip
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "one-hot rows" in err and "loss='bce_with_logits'" in err, err


def test_eval_of_a_multi_output_model_from_fit_needs_a_column_per_output(tmp_path, rng, capsys):
    """A model from wxb.fit records no target names: one --target for its k outputs was
    broadcast against all k, then refused deep in the metrics ('y_true has shape')."""
    import pandas as pd
    from sklearn.metrics import mean_absolute_error

    n, k = int(rng.integers(30, 60)), int(rng.integers(2, 4))
    X, Y = rng.normal(size=(n, 3)), rng.normal(size=(n, k))
    model = wxb.nn.Sequential(wxb.nn.Dense(3, 5), wxb.nn.Tanh(), wxb.nn.Dense(5, k))
    frame = pd.DataFrame(X, columns=["a", "b", "c"])  # feature names, no target names
    wxb.fit(model.to("float64"), frame, Y, loss="mse", epochs=2, verbose=False)
    model_path = tmp_path / "m.safetensors"
    wxb.save(model, model_path)
    targets = [f"t{j}" for j in range(k)]
    rows = [[repr(float(v)) for v in row] for row in np.hstack([X, Y])]
    data = write_csv(tmp_path / "d.csv", ["a", "b", "c", *targets], rows)
    code, out, err = run_cli(capsys, "eval", str(model_path), str(data), "--target", targets[-1])
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"predicts {k} targets" in err and "name one column for each output" in err
    code, out, err = run_cli(
        capsys, "eval", str(model_path), str(data), "--target", ",".join(targets)
    )
    assert code == 0, err
    mae = mean_absolute_error(Y, model.predict(X))
    assert float(re.search(r"MAE ([\d.]+)", out).group(1)) == pytest.approx(mae, rel=1e-3)


def test_fit_on_named_targets_records_their_names_as_wxb_train_does(tmp_path, rng, capsys):
    """A Series or a DataFrame of targets: wxb predict headed the outputs output_0, …, and
    wxb eval could not find the target column; one-hot columns (pd.get_dummies) are the
    classes, which predict wrote as 0, 1, 2."""
    import pandas as pd

    n, k = int(rng.integers(30, 60)), int(rng.integers(2, 4))
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    names = [f"t{j}" for j in range(k)]
    Y = pd.DataFrame(rng.normal(size=(n, k)), columns=names)
    labels = pd.Series(rng.choice(["cat", "dog", "emu"], n), name="species")
    labels[:3] = ["cat", "dog", "emu"]
    data = tmp_path / "d.csv"
    pd.concat([X, Y, labels], axis=1).to_csv(data, index=False)

    def trained(y, outputs: int, loss: str) -> Path:
        model = wxb.nn.Sequential(wxb.nn.Dense(3, 5), wxb.nn.Tanh(), wxb.nn.Dense(5, outputs))
        wxb.fit(model.to("float64"), X, y, loss=loss, epochs=2, verbose=False)
        path = tmp_path / f"m{len(list(tmp_path.glob('*.safetensors')))}.safetensors"
        wxb.save(model, path)
        return path

    import pyarrow as pa

    for table in (Y, pa.Table.from_pandas(Y)):  # (a pyarrow Table's .columns are its arrays)
        path = trained(table, k, "mse")
        code, out, err = run_cli(capsys, "predict", str(path), str(data))
        assert code == 0 and out.splitlines()[0] == ",".join(f"prediction_{t}" for t in names)
        code, out, err = run_cli(capsys, "eval", str(path), str(data))  # the targets by name
        assert code == 0 and all(f"  {t}: MAE" in out for t in names), err

    codes = pd.Series(pd.Categorical(labels).codes, name="species")  # classes 0, 1, 2
    path = trained(codes, 3, "cross_entropy")
    pd.concat([X, codes], axis=1).to_csv(data.with_name("codes.csv"), index=False)
    code, out, err = run_cli(capsys, "eval", str(path), str(data.with_name("codes.csv")))
    assert code == 0 and f"{n} samples" in out, err

    one_hot = pd.get_dummies(labels).astype(int)
    path = trained(one_hot, 3, "cross_entropy")
    model = wxb.load(path)
    code, out, err = run_cli(capsys, "predict", str(path), str(data))
    assert code == 0, err
    expected = np.array(["cat", "dog", "emu"])[model.predict(X).argmax(axis=1)]
    assert out.splitlines()[1:] == list(expected)
    pd.concat([X, one_hot], axis=1).to_csv(data.with_name("one_hot.csv"), index=False)
    code, out, err = run_cli(capsys, "eval", str(path), str(data.with_name("one_hot.csv")))
    accuracy = float(re.search(r"accuracy ([\d.]+)", out).group(1)) if code == 0 else None
    assert accuracy == pytest.approx(np.mean(expected == labels), abs=1e-4), err
    # a file with the class names in one column, as it was before get_dummies ('name all
    # of them' asked for the one-hot columns it does not have)
    code, out, err = run_cli(capsys, "eval", str(path), str(data), "--target", "species")
    same = float(re.search(r"accuracy ([\d.]+)", out).group(1)) if code == 0 else None
    assert same == accuracy, err


def test_a_model_from_a_loop_of_ones_own_says_what_its_outputs_are_read_as(tmp_path, rng, capsys):
    """A model saved from a hand-written loop records no task: wxb predict read its k
    outputs as classes without a word; it says so, and model.info['task'] changes it."""
    k = int(rng.integers(2, 5))
    X = rng.normal(size=(int(rng.integers(5, 20)), 3))
    model = wxb.nn.Sequential(wxb.nn.Dense(3, 4), wxb.nn.Tanh(), wxb.nn.Dense(4, k))
    model.to("float64")
    loss = wxb.nn.MSELoss()(model(wxb.Tensor(X)), rng.normal(size=(len(X), k)))
    loss.backward()
    wxb.optim.SGD(model.parameters(), lr=0.1).step()
    data = write_csv(tmp_path / "x.csv", ["a", "b", "c"], [[repr(float(v)) for v in r] for r in X])
    path = tmp_path / "m.safetensors"
    wxb.save(model, path)
    code, out, err = run_cli(capsys, "predict", str(path), str(data))
    assert code == 0 and "records no task" in err and "read as class scores" in err, err
    assert out.splitlines()[1:] == [str(c) for c in model.predict(X).argmax(axis=1)]
    model.info["task"] = "regression"
    wxb.save(model, path)
    code, out, err = run_cli(capsys, "predict", str(path), str(data))
    assert code == 0 and err == "", err
    table = np.array([line.split(",") for line in out.splitlines()[1:]], dtype=float)
    np.testing.assert_allclose(table, model.predict(X), rtol=1e-12)


@pytest.mark.one_route  # once in CI: a process closed by its reader, not the kernels
def test_broken_pipe_ends_quietly(tmp_path, existing_model):
    path, _ = existing_model
    rows = [["1", "2", "3", "4"]] * 20000
    data = write_csv(tmp_path / "big.csv", ["a", "b", "c", "d"], rows)
    result = subprocess.run(
        f"{sys.executable} -m wxb.cli predict {path} {data} | head -1",
        shell=True,
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == "prediction"
    assert result.stderr == ""


def test_eval_and_predict_a_model_saved_from_python_without_info(tmp_path, rng, capsys):
    model = wxb.nn.Sequential(wxb.nn.Dense(2, 3, seed=1), wxb.nn.ReLU(), wxb.nn.Dense(3, 3))
    path = wxb.save(model, tmp_path / "plain.safetensors")
    X, y = rng.normal(size=(10, 2)), rng.integers(0, 3, size=10)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    code, out, err = run_cli(capsys, "eval", str(path), str(tmp_path / "d.npz"))
    assert code == 0, err
    expected = wxb.evaluate(model, X, y, "cross_entropy")
    assert f"accuracy {expected['accuracy']:.4f}" in out
    code, out, err = run_cli(capsys, "predict", str(path), str(tmp_path / "d.npz"))
    predicted = [int(v) for v in out.split()[1:]]
    assert predicted == model.predict(X).argmax(axis=1).tolist()


@pytest.mark.parametrize("tail", ["none", "identity", "dropout"])
@pytest.mark.parametrize("head", ["softmax", "sigmoid"])
def test_a_model_that_outputs_probabilities_is_not_squashed_again(
    tmp_path, rng, capsys, head, tail
):
    """A classifier whose last layer is Softmax (or Sigmoid, one output): predict --proba
    gives its own outputs and eval the loss of those probabilities (both applied the
    softmax or sigmoid a second time, pulling every probability toward uniform). So too
    when an Identity or a Dropout follows the head (it was then taken for logits)."""
    features = int(rng.integers(2, 6))
    if head == "softmax":
        k = int(rng.integers(3, 6))
        layers, info = [wxb.nn.Dense(features, k), wxb.nn.Softmax()], {"loss": "cross_entropy"}
        classes = list(range(k))
    else:
        layers, info = [wxb.nn.Dense(features, 1), wxb.nn.Sigmoid()], {"loss": "bce_with_logits"}
        classes = ["no", "yes"]
    after = {"none": [], "identity": [wxb.nn.Identity()], "dropout": [wxb.nn.Dropout(0.3)]}
    model = wxb.nn.Sequential(
        wxb.nn.Dense(features, features), wxb.nn.Tanh(), *layers, *after[tail]
    )
    for p in model.parameters():
        p.data[...] = rng.normal(scale=1.5, size=p.shape)  # outputs far from uniform
    model.info = {"task": "classification", "classes": classes, **info}
    path = wxb.save(model, tmp_path / "m.safetensors")
    n = int(rng.integers(20, 40))
    X = rng.normal(size=(n, features)).astype(np.float32)
    index = rng.integers(0, len(classes), size=n)
    np.savez(tmp_path / "d.npz", X=X, y=np.array(classes)[index])
    out = model.predict(X).astype(np.float64)
    p = out if head == "softmax" else np.hstack([1 - out, out])  # by hand, from the outputs
    # eval's loss is exact, from the head's logits: the reference from a float64 copy,
    # where 1 − p of a sigmoid near 1 is not float32's (6e-8 steps: 0.005 off a mean)
    exact = copy.deepcopy(model).double().predict(X.astype(np.float64))
    p64 = exact if head == "softmax" else np.hstack([1 - exact, exact])

    code, text, err = run_cli(capsys, "predict", str(path), str(tmp_path / "d.npz"), "--proba")
    assert code == 0, err
    table = [line.split(",") for line in text.splitlines()[1:]]
    np.testing.assert_allclose(np.array([row[1:] for row in table], float), p, rtol=1e-5)
    assert [row[0] for row in table] == [str(classes[i]) for i in p.argmax(1)]

    code, text, err = run_cli(capsys, "eval", str(path), str(tmp_path / "d.npz"))
    assert code == 0, err
    loss = -np.log(p64[np.arange(n), index]).mean()
    figures = dict(re.findall(r"(loss|accuracy) ([0-9.]+)", text.splitlines()[0]))
    assert float(figures["loss"]) == pytest.approx(loss, abs=1e-4)
    assert float(figures["accuracy"]) == pytest.approx((p.argmax(1) == index).mean(), abs=1e-4)

    # explain scores them as eval does: L of the probabilities, δ = (p − Y)/B on the logits
    code, text, err = run_cli(
        capsys,
        "explain",
        str(path),
        "--data",
        str(tmp_path / "d.npz"),
        "--rows",
        str(n),
        "--target",
        "y",
    )
    assert code == 0, err
    shown = re.search(r"^\s*L = .* = (\S+)$", text, re.M)
    assert float(shown.group(1)) == pytest.approx(loss, rel=1e-4), text

    # wxb.evaluate takes the outputs as they are, as fit's figures and PyTorch's loss do
    import torch

    outputs = torch.tensor(model.predict(X).astype(np.float64))
    if head == "softmax":
        expected = torch.nn.CrossEntropyLoss()(outputs, torch.tensor(index)).item()
    else:
        target = torch.tensor(index, dtype=torch.float64).reshape(-1, 1)
        expected = torch.nn.BCEWithLogitsLoss()(outputs, target).item()
    figures = wxb.evaluate(model, X, index, loss=info["loss"])
    assert figures["loss"] == pytest.approx(expected, rel=1e-6)


def test_a_saturated_probability_head_gives_finite_figures(tmp_path, rng, capsys):
    """Outputs of exactly 1.0 (or 0.0) from a Sigmoid head: eval's loss stays finite
    (the logits of such p were infinite, and the loss NaN), and explain's δ too."""
    model = wxb.nn.Sequential(wxb.nn.Dense(2, 1), wxb.nn.Sigmoid())
    model[0].weight.data[...] = [[60.0, 0.0]]  # |z| ≥ 60 on these rows: p rounds to 0 or 1
    model.info = {"task": "classification", "classes": [0, 1], "loss": "bce_with_logits"}
    path = wxb.save(model, tmp_path / "m.safetensors")
    X = np.column_stack([rng.choice([-1.0, 1.0], size=8), rng.normal(size=8)])
    np.savez(tmp_path / "d.npz", X=X.astype(np.float32), y=(X[:, 0] > 0).astype(int))
    code, text, err = run_cli(capsys, "eval", str(path), str(tmp_path / "d.npz"))
    assert code == 0, err
    figures = dict(re.findall(r"(loss|accuracy) ([0-9.naife+-]+)", text.splitlines()[0]))
    assert np.isfinite(float(figures["loss"])) and float(figures["loss"]) < 1e-6, text
    assert float(figures["accuracy"]) == 1.0
    code, text, err = run_cli(
        capsys, "explain", str(path), "--data", str(tmp_path / "d.npz"), "--rows", "8",
        "--target", "y",
    )  # fmt: skip
    assert code == 0, err
    assert "nan" not in text.lower()


def test_train_never_writes_over_its_own_data(tmp_path, rng, capsys):
    data, *_ = labelled_csv(tmp_path / "d.csv", rng)
    before = data.read_bytes()
    for extra in (["-o", str(data)], ["--history", str(data)]):
        code, out, err = run_cli(
            capsys, "train", "--data", str(data), "--target", "species", *extra
        )
        assert_one_line_error(code, out, err, "also an input of this command")
    assert data.read_bytes() == before


def test_bad_targets_are_named(tmp_path, capsys):
    # the only rows with a target all hold 1.5: nothing to learn (the others are dropped)
    rows = [["1", "2", "3", "4", "1.5"], ["2", "3", "4", "5", "nan"]] * 4
    data = write_csv(tmp_path / "t.csv", ["a", "b", "c", "d", "price"], rows)
    code, out, err = run_cli(
        capsys,
        "train",
        "--data",
        str(data),
        "--target",
        "price",
        "-o",
        str(tmp_path / "m.safetensors"),
    )
    assert_one_line_error(code, out, err, r"the target has the same value 1.5 in every row")
    assert "dropped 4 rows with no target (line 3, line 5, line 7 and 1 more)" in out
    np.savez(tmp_path / "scalar.npz", X=np.zeros((4, 2)), y=np.array(3.0))
    np.savez(tmp_path / "complex.npz", X=np.zeros((4, 2)), y=np.ones(4) * 1j)
    for name in ("scalar.npz", "complex.npz"):
        code, out, err = run_cli(
            capsys, "train", "--data", str(tmp_path / name), "-o", str(tmp_path / "m.safetensors")
        )
        assert_one_line_error(code, out, err, "targets 'y' must be an array of numbers or labels")
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.filterwarnings("error::RuntimeWarning")  # a NumPy overflow warning fails this test
def test_weights_that_overflow_during_validation_still_give_one_line(tmp_path, rng, capsys):
    data = tmp_path / "d.npz"
    np.savez(data, X=rng.normal(size=(150, 4)), y=rng.integers(0, 3, size=150))
    code, out, err = run_cli(
        capsys, "train", "--data", str(data), "--optimizer", "sgd", "--lr", "1e6", "-q",
        "-o", str(tmp_path / "m.safetensors"),
    )  # fmt: skip
    assert_one_line_error(code, out, err, r"the loss became (nan|inf) at epoch \d+")


def test_diagnose_writes_per_layer_figures_into_the_history(tmp_path, rng, capsys):
    data, *_ = labelled_csv(tmp_path / "d.csv", rng)
    history = tmp_path / "h.json"
    code, _out, err = run_cli(
        capsys, "train", "--data", str(data), "--target", "species", "--epochs", "3",
        "--hidden", "8,8", "--diagnose", "--history", str(history), "-q",
        "-o", str(tmp_path / "m.safetensors"),
    )  # fmt: skip
    assert code == 0, err
    saved = json.loads(history.read_text())
    assert [d["epoch"] for d in saved["diagnostics"]] == [1, 2, 3]
    layers = saved["diagnostics"][0]["layers"]
    assert len(layers) == 3 and all(layer["weight_norm"] > 0 for layer in layers)
    assert layers[0]["dead_fraction"] is not None  # ReLU hidden layers by default
    assert all(line.startswith("wxb: warning: ") for line in err.splitlines())


def test_explain_without_a_model_works_the_seed_examples_and_cross_checks(capsys):
    code, out, err = run_cli(capsys, "explain")
    assert code == 0, err
    assert "Z = W·X + b = [[0.5, -0.2], [0.1, 0.4]]·[1.0, 2.0] + [0.1, -0.1] = [0.2, 0.8]" in out
    assert out.count("agree to 1e-12") == 2 and "DISAGREE" not in out
    code, out, _ = run_cli(capsys, "explain", "--format", "md")
    assert code == 0 and out.count("$$") >= 20


def test_explain_a_trained_model_on_rows_of_its_data(tmp_path, rng, capsys):
    data, *_ = labelled_csv(tmp_path / "d.csv", rng)
    model = tmp_path / "m.safetensors"
    code, _, err = run_cli(
        capsys, "train", "--data", str(data), "--target", "species", "--hidden", "5",
        "--epochs", "2", "-q", "-o", str(model),
    )  # fmt: skip
    assert code == 0, err
    code, out, err = run_cli(capsys, "explain", str(model), "--data", str(data), "--rows", "3")
    assert code == 0, err
    assert "(5×4)·(4×3)" in out  # W⁽¹⁾ (m×n) · X (n×B) in column notation, B = 3
    assert "2·m·n·B = 2·5·4·3 = 120" in out
    assert "δ⁽¹⁾ = ∂L/∂Z⁽¹⁾" in out and "∂L/∂W⁽²⁾" in out
    code, out, err = run_cli(capsys, "explain", str(model), "--data", str(data), "--sample", "999")
    assert_one_line_error(code, out, err, r"--sample 999 but it has 150 rows")
    code, out, err = run_cli(capsys, "explain", str(model))
    assert_one_line_error(code, out, err, r"name the rows to explain on")


def test_explain_takes_an_npz_y_as_eval_does_and_says_when_it_has_no_targets(tmp_path, rng, capsys):
    """A model fitted from Python on arrays names no target column; on an NPZ with X and
    y, wxb eval scored y, while explain showed the forward pass alone without a word."""
    features, classes, n = int(rng.integers(2, 5)), int(rng.integers(2, 4)), 12
    model = wxb.nn.Sequential(wxb.nn.Dense(features, 4), wxb.nn.ReLU(), wxb.nn.Dense(4, classes))
    X = rng.normal(size=(n, features)).astype(np.float32)
    y = rng.integers(0, classes, n)
    wxb.fit(model, X, y, epochs=1, verbose=False)
    path = wxb.save(model, tmp_path / "m.safetensors")
    np.savez(tmp_path / "xy.npz", X=X, y=y)
    np.savez(tmp_path / "x.npz", X=X)
    code, out, err = run_cli(capsys, "explain", str(path), "--data", str(tmp_path / "xy.npz"))
    assert code == 0, err
    assert "δ⁽²⁾ = ∂L/∂Z⁽²⁾" in out and "∂L/∂W⁽¹⁾" in out, out
    assert "forward pass only" not in out
    code, out, err = run_cli(capsys, "explain", str(path), "--data", str(tmp_path / "x.npz"))
    assert code == 0, err
    assert "∂L/∂W" not in out and "the forward pass only" in out.splitlines()[-1], out


def test_summary_and_diagrams_of_a_saved_model(tmp_path, rng, capsys):
    data, *_ = labelled_csv(tmp_path / "d.csv", rng)
    model = tmp_path / "m.safetensors"
    code, _, err = run_cli(
        capsys, "train", "--data", str(data), "--target", "species", "--hidden", "6",
        "--epochs", "1", "-q", "-o", str(model),
    )  # fmt: skip
    assert code == 0, err
    code, out, err = run_cli(capsys, "summary", str(model), "--no-floor", "--batch-size", "8")
    assert code == 0, err
    params = 4 * 6 + 6 + 6 * 3 + 3  # W⁽¹⁾ 6×4, b⁽¹⁾, W⁽²⁾ 3×6, b⁽²⁾: counted here by hand
    assert f"Total params: {params}" in out and "Rate floor" not in out
    code, out, _ = run_cli(capsys, "summary", str(model), "--format", "md")
    assert code == 0 and out.count("\n|") >= 4  # a Markdown table: header, rule, rows
    assert "Rate floor" in out
    for kind in ("architecture", "forward", "backward", "graph"):
        code, out, err = run_cli(capsys, "diagram", str(model), "--kind", kind)
        assert code == 0, err
        assert out.startswith("flowchart "), out
    code, out, _ = run_cli(capsys, "diagram", str(model), "--kind", "forward", "--format", "md")
    assert out.startswith("```mermaid\nflowchart TD") and out.rstrip().endswith("```")
    code, out, err = run_cli(capsys, "summary", str(model), "--batch-size", "0")
    assert_one_line_error(code, out, err, r"--batch-size must be ≥ 1")


def test_explain_refuses_a_misspelled_target_and_plots_need_a_folder_of_their_own(
    tmp_path, rng, capsys
):
    data, *_ = labelled_csv(tmp_path / "d.csv", rng)
    model = tmp_path / "m.safetensors"
    assert main(["train", "--data", str(data), "--target", "species", "--epochs", "1",
                 "-q", "-o", str(model)]) == 0  # fmt: skip
    capsys.readouterr()
    code, out, err = run_cli(capsys, "explain", str(model), "--data", str(data), "--target", "x")
    assert_one_line_error(code, out, err, r"no column 'x'")
    same = tmp_path / "same"
    code, out, err = run_cli(
        capsys, "train", "--data", str(data), "--target", "species", "--epochs", "1", "-q",
        "--history", str(same), "--plots", str(same), "-o", str(tmp_path / "n.safetensors"),
    )  # fmt: skip
    assert_one_line_error(code, out, err, r"--plots names a folder")
    assert not same.exists() and not (tmp_path / "n.safetensors").exists()


def test_regression_figures_use_the_targets_as_given_not_rounded_to_float32(tmp_path, capsys, rng):
    """Targets near 1e8 round to multiples of 8 in float32: the figures must not."""
    from sklearn.metrics import r2_score

    x = rng.standard_normal((300, 2))
    y = 1e8 + 3 * x[:, 0] - x[:, 1] + 0.1 * rng.standard_normal(300)
    data = write_csv(tmp_path / "big.csv", ["a", "b", "y"], np.column_stack([x, y]).tolist())
    model_path = tmp_path / "big.safetensors"
    train = ["train", "--data", str(data), "--target", "y", "--hidden", "8", "--epochs", "5"]
    code, out, _ = run_cli(capsys, *train, "-o", str(model_path), "-q")
    assert code == 0, out
    code, out, _ = run_cli(capsys, "eval", str(model_path), str(data))
    assert code == 0, out
    model = wxb.load(model_path)
    import pandas as pd

    pred = model.predict(pd.read_csv(data)[["a", "b"]]).astype(np.float64).ravel()
    want = r2_score(y, pred)
    shown = float(re.search(r"\br2 ([-\d.e+]+)", out).group(1))
    assert abs(shown - want) <= 1e-3 * max(1.0, abs(want)), (shown, want, out)
    mse = float(re.search(r"\bmse ([-\d.e+]+)", out).group(1))
    np.testing.assert_allclose(mse, np.mean((pred - y) ** 2), rtol=1e-3)


def test_r2_of_a_constant_target_is_not_a_huge_negative_number(rng):
    from wxb.cli import report
    from wxb.nn import Dense, Sequential

    model = Sequential(Dense(2, 1, dtype="float64"))
    X, y = rng.normal(size=(3, 2)), np.full((3, 1), 0.1)
    assert report(model, X, y, "mse", "regression")["r2"] == 0.0  # scikit-learn's finite rule


def test_text_categories_that_look_like_numbers_are_found_when_read_as_numbers(
    tmp_path, capsys, rng
):
    """A column of '1.0', '2.0' and 'beta' is text in training; a file without 'beta'
    reads it as numbers: 1.0 must still be the category '1.0', not an unseen '1'."""
    import pandas as pd

    n = 240
    version = rng.choice(["1.0", "2.0", "beta"], n)
    x = rng.standard_normal(n)
    label = np.where((version == "1.0") | ((version == "beta") & (x > 0)), "A", "B")
    frame = pd.DataFrame({"x": x, "ver": version, "y": label})
    frame.to_csv(tmp_path / "train.csv", index=False)
    numbers_only = frame[version != "beta"]
    numbers_only.to_csv(tmp_path / "eval.csv", index=False)
    model_path = tmp_path / "m.safetensors"
    train = ["train", "--data", str(tmp_path / "train.csv"), "--target", "y", "--hidden", "8"]
    code, out, _ = run_cli(capsys, *train, "--epochs", "60", "-o", str(model_path), "-q")
    assert code == 0, out
    model = wxb.load(model_path)
    as_text = model.predict(numbers_only[["x", "ver"]])  # the training file's reading
    as_numbers = model.predict(pd.read_csv(tmp_path / "eval.csv")[["x", "ver"]])
    assert pd.read_csv(tmp_path / "eval.csv")["ver"].dtype.kind == "f"
    np.testing.assert_allclose(as_numbers, as_text, rtol=1e-6)
    code, out, _ = run_cli(capsys, "eval", str(model_path), str(tmp_path / "eval.csv"))
    assert code == 0, out
    classes = np.array(model.info["classes"])
    want = np.mean(classes[np.argmax(as_text, axis=1)] == numbers_only["y"].to_numpy())
    shown = float(re.search(r"accuracy ([\d.]+)", out).group(1))
    assert abs(shown - want) < 1e-3, out


def test_spaces_after_the_delimiter_do_not_make_other_categories(tmp_path, rng, capsys):
    """'x, color, flag, y' files: text cells lose the spaces around them, so a model
    trained on such a file predicts the same rows written without spaces alike (every
    ' red' was an unseen category there, silently: R² 0.997 became 0.856)."""
    n = 120
    x = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    flag = rng.choice(["True", "False"], size=n)
    y = x + (color == "red") * 3 - (flag == "True") * 2 + rng.normal(scale=0.1, size=n)
    rows = list(zip(x, color, flag, y, strict=True))
    spaced, plain = tmp_path / "spaced.csv", tmp_path / "plain.csv"
    spaced.write_text(
        "x, color, flag, y\n" + "".join(f"{a}, {b}, {c}, {d}\n" for a, b, c, d in rows)
    )
    plain.write_text("x,color,flag,y\n" + "".join(f"{a},{b},{c},{d}\n" for a, b, c, d in rows))
    for trained_on in (spaced, plain):  # and the other way: ' True' is a boolean too
        model = tmp_path / f"{trained_on.stem}.safetensors"
        code, out, err = run_cli(capsys, "train", "--data", str(trained_on), "--target", "y",
                                 "--epochs", "3", "-o", str(model))  # fmt: skip
        assert code == 0, err
        predictions = []
        for data in (spaced, plain):
            code, out, err = run_cli(capsys, "predict", str(model), str(data))
            assert code == 0, err
            predictions.append(out)
        assert predictions[0] == predictions[1], trained_on.name


@pytest.mark.parametrize("target", ["y", "label"])
def test_a_model_file_with_spaced_categories_reads_them_as_text_is_read_now(
    tmp_path, rng, capsys, target
):
    """A model trained before text cells were trimmed may hold ' red' (and classes
    ' lo'): they load trimmed too, so it predicts and evaluates the same file as the
    model trained now (R² 0.998 had become 0.22, and eval refused the classes)."""
    n = 60
    x, color = rng.normal(size=n), rng.choice(["red", "blue"], size=n)
    y = x + (color == "red") * 3
    label = np.where(y > 1, "hi", "lo")
    data = tmp_path / "d.csv"
    rows = zip(x, color, y, label, strict=True)
    data.write_text("x,color,y,label\n" + "".join(f"{a},{b},{c},{d}\n" for a, b, c, d in rows))
    model_path = tmp_path / "m.safetensors"
    other = "label" if target == "y" else "y"
    code, out, err = run_cli(capsys, "train", "--data", str(data), "--target", target,
                             "--drop", other, "--epochs", "2", "-o", str(model_path))  # fmt: skip
    assert code == 0, err
    model = wxb.load(model_path)
    if "classes" in model.info:
        model.info["classes"] = [" " + str(c) for c in model.info["classes"]]
    for rule in model.info["table"]["columns"]:
        if rule["kind"] == "text":
            rule["categories"] = [" " + c for c in rule["categories"]]
            rule["fill"] = " " + rule["fill"]
    old = wxb.save(model, tmp_path / "old.safetensors")
    outputs = []
    for path in (model_path, old):
        for command in ("predict", "eval"):
            code, out, err = run_cli(capsys, command, str(path), str(data))
            assert code == 0, err
            outputs.append(out)
    assert outputs[:2] == outputs[2:]


def test_a_probability_heads_loss_and_probabilities_are_exact_where_p_underflows(
    tmp_path, rng, capsys
):
    # eval took log of p clamped to float32's tiny (87.3 for a true 120) and --proba printed
    # that tiny for a p of 0; eval now scores the head's input z, as explain does
    model = wxb.nn.Sequential(wxb.nn.Dense(2, 3), wxb.nn.Softmax())  # float32: e^−200 is 0
    scale = float(rng.uniform(100, 150))
    model[0].weight.data[...] = [[scale, 0.0], [-scale, 0.0], [0.0, 0.0]]
    model[0].bias.data[...] = 0.0
    model.info = {"task": "classification", "classes": [0, 1, 2], "loss": "cross_entropy"}
    path = wxb.save(model, tmp_path / "m.safetensors")
    X = np.array([[1.0, rng.normal()]], dtype=np.float32)
    np.savez(tmp_path / "d.npz", X=X, y=np.array([1]))
    z = X.astype(np.float64) @ model[0].weight.data.T.astype(np.float64)
    exact = float(np.log(np.exp(z - z.max()).sum()) + z.max() - z[0, 1])  # −log softmax(z)[1]
    code, text, err = run_cli(capsys, "eval", str(path), str(tmp_path / "d.npz"))
    assert code == 0, err
    shown = float(re.search(r"loss ([0-9.]+)", text).group(1))
    assert abs(shown - exact) < 1e-3 * exact, (shown, exact)
    code, text, err = run_cli(capsys, "predict", str(path), str(tmp_path / "d.npz"), "--proba")
    assert code == 0, err
    row = text.splitlines()[1].split(",")
    shown = np.array([float(v) for v in row[1:]], dtype=np.float32)  # float32's shortest text
    np.testing.assert_array_equal(shown, model.predict(X)[0])
    assert shown[1] == 0.0  # p of exactly 0 printed as 0, not as float32's tiny


def test_a_newcomers_small_mistakes_are_answered_by_the_right_command(tmp_path, rng, capsys):
    """An unknown option points to its command's --help (it said 'wxb --help'); wxb plot
    on a missing file says 'no such file' as the others do; one epoch is '1 epoch'; the
    model file counts train and validation rows as wxb train prints them."""
    with pytest.raises(SystemExit) as stop:
        main(["train", "--hiden", "5"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "'wxb train --help'" in err and "--hiden" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "plot", str(tmp_path / "none.json"), "-o", str(tmp_path / "p"))
    assert code == 2 and err.strip() == f"wxb: error: {tmp_path / 'none.json'}: no such file"
    path, _, _ = labelled_csv(tmp_path / "t.csv", rng, n=int(rng.integers(60, 120)))
    out_path = tmp_path / "m.safetensors"
    code, out, err = run_cli(capsys, "train", "--data", str(path), "--target", "species",
                             "--epochs", "1", "-q", "-o", str(out_path))  # fmt: skip
    assert code == 0, err
    assert "; 1 epoch\n" in out
    printed = re.search(r"(\d+) train, (\d+) validation, (\d+) test", out).groups()
    data = wxb.load(out_path).info["data"]
    assert [data["train_rows"], data["validation_rows"], data["test_rows"]] == [
        int(n) for n in printed
    ]


def test_a_bool_column_read_as_text_at_predict_names_the_cell_that_is_no_bool(
    tmp_path, rng, capsys
):
    """New rows 'true', 'false', 'yes': the error blamed the valid 'true' on line 2."""
    flags = rng.random(60) < 0.5
    rows = [
        [f"{v:.3f}", str(f).lower(), "ab"[int(f)]]
        for v, f in zip(rng.random(60), flags, strict=True)
    ]
    data = write_csv(tmp_path / "t.csv", ["x", "flag", "y"], rows)
    model = tmp_path / "m.safetensors"
    code, _, _ = run_cli(capsys, "train", "--data", str(data), "--target", "y", "--epochs",
                         "2", "--hidden", "4", "-q", "-o", str(model))  # fmt: skip
    assert code == 0
    bad = write_csv(tmp_path / "bad.csv", ["x", "flag"], [["0.1", "true"], ["0.2", "false"],
                                                         ["0.3", "yes"]])  # fmt: skip
    code, out, err = run_cli(capsys, "predict", str(model), str(bad))
    assert_one_line_error(code, out, err, r"line 4, column 'flag': 'yes' is text")
    # words and 0/1 mixed read as the booleans they spell
    mixed = write_csv(tmp_path / "mixed.csv", ["x", "flag"], [["0.1", "TRUE"], ["0.2", "0"],
                                                             ["0.3", " false"]])  # fmt: skip
    plain = write_csv(tmp_path / "plain.csv", ["x", "flag"], [["0.1", "true"], ["0.2", "false"],
                                                             ["0.3", "false"]])  # fmt: skip
    outputs = []
    for path in (mixed, plain):
        code, _, err = run_cli(capsys, "predict", str(model), str(path), "--proba", "-o",
                               str(path.with_suffix(".out.csv")))  # fmt: skip
        assert code == 0, err
        outputs.append(path.with_suffix(".out.csv").read_text())
    assert outputs[0] == outputs[1]


def test_a_target_mean_the_float32_output_layer_rounds_is_warned_about(tmp_path, rng, capsys):
    # a target near 1e8 with a spread of ~40: the mean folded into the float32 output bias
    # rounds every saved prediction to a multiple of 8, the test MSE 4.5x the network's
    n = 200
    X = rng.normal(size=(n, 3))
    spread = float(rng.uniform(20, 60))
    offset = float(rng.uniform(0.8e8, 1.3e8))  # within [2**26, 2**27): float32 steps by 8
    y = offset + spread * X[:, 0]
    rows = [[*x, t, t - offset + 100] for x, t in zip(X, y, strict=True)]
    data = write_csv(tmp_path / "big.csv", ["a", "b", "c", "big", "small"], rows)
    common = ["--hidden", "4", "--epochs", "2", "-q"]
    for target, dtype, warned in [
        ("big", "float32", True),
        ("big", "float64", False),
        ("small", "float32", False),
    ]:
        path = tmp_path / f"{target}-{dtype}.safetensors"
        drop = "small" if target == "big" else "big"
        code, _, err = run_cli(
            capsys, "train", "--data", str(data), "--target", target, "--drop", drop,
            "--dtype", dtype, "-o", str(path), *common,
        )  # fmt: skip
        assert code == 0, err
        assert ("rounds every prediction to a step of 8" in err) == warned, err
        if warned:
            predicted = wxb.load(path).predict(X.astype(np.float32)).astype(np.float64)
            assert np.all(predicted % 8 == 0)  # what the warning says


def test_eval_finds_text_classes_that_spell_numbers_in_a_file_of_numbers(tmp_path, rng, capsys):
    """Trained on labels '1.0', '2.5' and 'unknown' (text, for the word); a file without
    'unknown' reads its labels as numbers, and eval refused 1.0 as "label '1' is not a
    class". Its accuracy is the share of rows whose predicted class is the label."""
    names = np.array(["1.0", "2.5", "unknown"])
    centres = np.array([[4.0, 0.0], [0.0, 4.0], [0.0, 0.0]]) + rng.normal(scale=0.3, size=(3, 2))
    y = rng.integers(0, 3, size=240)
    X = centres[y] + rng.normal(scale=0.8, size=(240, 2))
    rows = [[str(a), str(b), names[k]] for (a, b), k in zip(X, y, strict=True)]
    train = write_csv(tmp_path / "train.csv", ["a", "b", "label"], rows)
    model_path = tmp_path / "m.safetensors"
    argv = ["train", "--data", str(train), "--target", "label", "--epochs", "3", "-o"]
    code, _, err = run_cli(capsys, *argv, str(model_path))
    assert code == 0, err
    assert wxb.load(model_path).info["classes"] == list(names)

    known = y < 2  # no 'unknown' row: the column reads as numbers
    unseen = write_csv(
        tmp_path / "eval.csv",
        ["a", "b", "label"],
        [r for r, k in zip(rows, known, strict=True) if k],
    )
    code, out, err = run_cli(capsys, "eval", str(model_path), str(unseen))
    assert code == 0, err
    predicted = wxb.load(model_path).predict(X[known]).argmax(axis=1)
    expected = (predicted == y[known]).mean()
    assert float(re.search(r"accuracy ([\d.]+)", out).group(1)) == pytest.approx(expected, abs=1e-4)


@pytest.mark.one_route  # once in CI: the entry point, not the kernels
def test_python_dash_m_wxb_runs_the_command(tmp_path):
    # `python -m wxb` is how a venv's command runs when its bin/ is not on PATH (and
    # what `python -m pip`-style habits try first); it said "No module named wxb.__main__"
    version = subprocess.run(
        [sys.executable, "-m", "wxb", "--version"], capture_output=True, text=True, cwd=tmp_path
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"wxb {wxb.__version__}"
    wrong = subprocess.run(
        [sys.executable, "-m", "wxb", "traain"], capture_output=True, text=True, cwd=tmp_path
    )
    assert wrong.returncode == 2 and wrong.stderr.startswith("wxb: error: ")
