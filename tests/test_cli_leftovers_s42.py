"""Command-line leftovers: an NPZ's array names kept with the model, why several 0/1
target columns are a regression, an output folder that cannot be made."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_run import FAST, run
from sklearn.metrics import accuracy_score, f1_score

from wxb import data as wdata
from wxb.errors import DataError
from wxb.io import load, save


def _npz_with_decoys(tmp_path: Path, rng: np.random.Generator) -> tuple[Path, dict]:
    """Features and labels under names of their own, beside X, y and Y that are other
    arrays of the same shapes (what eval read without --x-array/--y-array)."""
    n, width = int(rng.integers(150, 260)), int(rng.integers(2, 6))
    features = rng.normal(size=(n, width))
    label = (features @ rng.normal(size=width) + 0.5 * rng.normal(size=n) > 0).astype(int)
    arrays = {
        "features": features,
        "label": label,
        "X": rng.normal(size=(n, width)),
        "y": rng.integers(0, 2, size=n),
        "Y": rng.integers(0, 2, size=n),
    }
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return path, arrays


def _figure(out: str, name: str) -> float:
    return float(re.search(rf"{name} ([0-9.]+)", out).group(1))


def test_eval_and_predict_read_the_arrays_the_model_was_trained_on(tmp_path, seeded, capsys):
    path, arrays = _npz_with_decoys(tmp_path, seeded.rng)
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", path, "--x-array", "features",
                       "--y-array", "label", *FAST, "-o", model)  # fmt: skip
    assert code == 0, seeded.msg(err)
    named = ("--x-array", "features", "--y-array", "label")
    code, plain, err = run(capsys, "eval", model, path)
    assert code == 0, seeded.msg(err)
    code, explicit, err = run(capsys, "eval", model, path, *named)
    assert code == 0, seeded.msg(err)
    assert plain == explicit, seeded.msg(f"eval without the names:\n{plain}\nwith:\n{explicit}")
    # the figures against scikit-learn on the predictions of the named arrays
    code, out, err = run(capsys, "predict", model, path, "--x-array", "features")
    assert code == 0, seeded.msg(err)
    predicted = pd.read_csv(io.StringIO(out))["prediction"].to_numpy()
    code, out_plain, err = run(capsys, "predict", model, path)
    assert code == 0 and out_plain == out, seeded.msg(err or "predict read other rows")
    truth = arrays["label"]
    assert _figure(plain, "accuracy") == pytest.approx(
        accuracy_score(truth, predicted), abs=5e-5
    ), seeded.msg(plain)
    assert _figure(plain, "macro F1") == pytest.approx(
        f1_score(truth, predicted, average="macro"), abs=5e-5
    ), seeded.msg(plain)
    assert f"{len(truth)} samples" in plain, seeded.msg(plain)
    # explain and report read them too
    code, _, err = run(capsys, "explain", model, "--data", path)
    assert code == 0, seeded.msg(err)
    code, _, err = run(capsys, "report", model, "--data", path, "-o", tmp_path / "r.html")
    assert code == 0, seeded.msg(err)
    # an explicit name still wins: the decoy X is read (and scored against label)
    code, other, err = run(capsys, "eval", model, path, "--x-array", "X")
    assert code == 0, seeded.msg(err)
    assert other != plain, seeded.msg("--x-array X was ignored")


def test_eval_does_not_score_an_npz_x_beside_the_features_trained_on(tmp_path, seeded, capsys):
    """Trained on --x-array features with the default y: eval read the file's X (another
    array of the same width) and printed its figures without a word."""
    path, arrays = _npz_with_decoys(tmp_path, seeded.rng)
    arrays["y"] = arrays.pop("label")
    np.savez(path, **arrays)
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", path, "--x-array", "features", *FAST,
                       "-o", model)  # fmt: skip
    assert code == 0, seeded.msg(err)
    code, plain, err = run(capsys, "eval", model, path)
    assert code == 0, seeded.msg(err)
    code, out, err = run(capsys, "predict", model, path, "--x-array", "features")
    assert code == 0, seeded.msg(err)
    predicted = pd.read_csv(io.StringIO(out))["prediction"].to_numpy()
    reference = accuracy_score(arrays["y"], predicted)
    assert _figure(plain, "accuracy") == pytest.approx(reference, abs=5e-5), seeded.msg(
        f"eval: {plain}; scikit-learn on the features' predictions: {reference}"
    )


def test_a_model_file_without_the_array_names_reads_as_before(tmp_path, seeded, capsys):
    path, _ = _npz_with_decoys(tmp_path, seeded.rng)
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", path, "--x-array", "features",
                       "--target", "label", *FAST, "-o", model)  # fmt: skip
    assert code == 0, seeded.msg(err)
    loaded = load(model)
    assert loaded.info["data"]["x_array"] == "features", loaded.info["data"]
    assert loaded.info["data"]["y_array"] == "label", loaded.info["data"]  # --target on an NPZ
    del loaded.info["data"]["x_array"], loaded.info["data"]["y_array"]
    older = tmp_path / "older.safetensors"
    save(loaded, older)
    named = ("--x-array", "features", "--y-array", "label")
    code, new, err = run(capsys, "eval", model, path)
    assert code == 0, seeded.msg(err)
    code, old, err = run(capsys, "eval", older, path, *named)
    assert code == 0, seeded.msg(err)
    assert old == new.replace(str(model), str(older)), seeded.msg(f"{old}\n{new}")


def test_why_several_zero_one_columns_are_a_regression(tmp_path, seeded, capsys):
    rng = seeded.rng
    n, k = int(rng.integers(60, 120)), int(rng.integers(2, 5))
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    one_hot = np.eye(k, dtype=int)[rng.integers(0, k, size=n)]
    several = one_hot.copy()
    odd_rows = rng.choice(n, size=int(rng.integers(1, n // 3)), replace=False)
    for row in odd_rows:  # no 1, or two
        several[row] = 0 if rng.random() < 0.5 else np.eye(k, dtype=int)[[0, 1]].sum(axis=0)
    names = [f"t{j}" for j in range(k)]
    odd = int(np.count_nonzero(several.sum(axis=1) != 1))
    cases = {
        "several": (several, f"task: regression ({k} target columns: 0/1 columns, but {odd} "
                    f"row{'s hold' if odd > 1 else ' holds'} no 1 or several"),
        "one_hot": (one_hot, f"task: classification (one-hot rows over {k} classes"),
        "numbers": (rng.normal(size=(n, k)), f"task: regression ({k} target columns)\n"),
    }  # fmt: skip
    for case, (targets, line) in cases.items():
        table = frame.copy()
        table[names] = targets
        data = tmp_path / f"{case}.csv"
        table.to_csv(data, index=False)
        options = ("--target", ",".join(names), "--hidden", "4", "--epochs", "1")
        code, out, err = run(capsys, "train", "--data", data, *options, "-o", tmp_path / "m.st")
        assert code == 0, seeded.msg(err)
        assert line in out, seeded.msg(f"{case}: {out}")


def _no_training(out: str, err: str) -> None:
    assert "data:" not in out and "saved model" not in out, out
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_an_output_under_a_regular_file_is_refused_before_any_work(tmp_path, seeded, capsys):
    path, _ = _npz_with_decoys(tmp_path, seeded.rng)
    regular = tmp_path / "afile"
    regular.write_text("x")
    for output in (regular / "m.safetensors", regular / "sub" / "deeper" / "m.safetensors"):
        with pytest.raises(DataError, match="cannot write there"):
            wdata.check_can_write(output, "model")
        code, out, err = run(capsys, "train", "--data", path, "--x-array", "features",
                             "--y-array", "label", *FAST, "-o", output)  # fmt: skip
        assert code == 2, seeded.msg(err)
        _no_training(out, err)
    assert regular.read_text() == "x"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="no /proc here")
def test_an_output_under_proc_is_refused_before_any_work(tmp_path, seeded, capsys):
    path, _ = _npz_with_decoys(tmp_path, seeded.rng)
    name = f"wxb-missing-{seeded.seed % 10**9}"
    for output in (f"/proc/{name}/m.safetensors", f"/proc/{name}/a/b/m.safetensors"):
        with pytest.raises(DataError, match="cannot write there"):
            wdata.check_can_write(output, "model")
        code, out, err = run(capsys, "train", "--data", path, "--x-array", "features",
                             "--y-array", "label", *FAST, "-o", output)  # fmt: skip
        assert code == 2, seeded.msg(err)
        _no_training(out, err)
        assert not os.path.exists(f"/proc/{name}")


def test_missing_folders_that_can_be_made_pass_and_are_not_left_behind(tmp_path):
    output = tmp_path / "new" / "deeper" / "m.safetensors"
    assert wdata.check_can_write(output, "model") == output
    assert not (tmp_path / "new").exists(), "the check left a folder behind"
    assert sorted(p.name for p in tmp_path.iterdir()) == []
