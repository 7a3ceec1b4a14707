"""A hunt of what writes a model and reads it back (model files, checkpoints, ONNX,
PyTorch twins, the command line): the same numbers must come back."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from wxb.nn import Dense, Sequential, Softplus

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _onnx_run(path, X):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": X})[0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softplus_is_as_exact_in_onnxruntime_as_in_wxb_far_into_its_lower_tail(
    tmp_path, rng, dtype
):
    # the export took log(1 + e^(−|βz|)) where wxb takes log1p: Softplus gave 0 from
    # βz = −17 in float32 (−37 in float64) where wxb gives e^βz/β (a rate or a variance
    # head: its log then −inf), and was 0.13 % off at βz = −10 in float32
    from wxb.onnx import export

    eps = float(np.finfo(dtype).eps)
    beta = float(rng.uniform(0.3, 3))
    softplus = Softplus(beta=beta, threshold=float(rng.uniform(1, 20)))
    model = Sequential(Dense(1, 1, bias=False, dtype=dtype), softplus)
    model[0].weight.data[...] = 1
    z = np.append(-rng.uniform(0, 60, 200) / beta, rng.uniform(0, 30, 20))
    z = np.sort(np.append(z, [0.0, -0.0, -1e4])).reshape(-1, 1).astype(dtype)
    got = _onnx_run(export(model, tmp_path / "a.onnx"), z)
    np.testing.assert_allclose(got, model.predict(z), rtol=8 * eps, atol=0, err_msg=repr(softplus))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_log_softmax_row_holding_nan_or_inf_is_nan_in_onnxruntime_as_in_wxb(tmp_path, rng, dtype):
    # onnxruntime's float64 LogSoftmax gave finite log-probabilities (46.05, 44.88, …) for
    # a row holding NaN (a missing feature fed as NaN) or +inf, where wxb and PyTorch give
    # NaN: a row of nonsense that looked like an answer
    from wxb.nn import LogSoftmax, Standardize
    from wxb.onnx import export

    classes = int(rng.integers(2, 12))
    rows = rng.normal(0, 3, size=(int(rng.integers(6, 40)), classes))
    spoilt = rng.random(len(rows)) < 0.5
    for row in np.flatnonzero(spoilt):
        k = int(rng.integers(1, classes + 1))
        rows[row, rng.choice(classes, k, replace=False)] = rng.choice([np.nan, np.inf, -np.inf])
    rows = rows.astype(dtype)
    model = Sequential(Standardize(np.zeros(classes), np.ones(classes), dtype=dtype), LogSoftmax())
    with np.errstate(all="ignore"):  # predict refuses such rows; the layers take them
        want = model(rows).numpy()
    got = _onnx_run(export(model, tmp_path / "l.onnx"), rows)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    tol = 1e-6 if dtype == "float32" else 1e-12  # log Σ near 0: an ulp of 1 apart at most
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_a_file_written_over_keeps_its_permissions(tmp_path, rng):
    # the temporary renamed over the old file took the umask's mode: a model kept private
    # with chmod 600 (one made with --fingerprint can tell its training rows) became
    # readable by every user when saved again, and so did checkpoints and ONNX files
    import wxb
    from wxb.onnx import export

    model = Sequential(Dense(3, 2, seed=int(rng.integers(1 << 31))))
    for name, write in (("m.safetensors", wxb.save), ("m.onnx", export)):
        path = tmp_path / name
        write(model, path)
        mode = int(rng.choice([0o600, 0o640, 0o660, 0o604]))
        path.chmod(mode)
        write(model, path)
        assert stat.S_IMODE(path.stat().st_mode) == mode, name
    umask = os.umask(0)
    os.umask(umask)
    fresh = wxb.save(model, tmp_path / "new.safetensors")  # a new file: the usual mode
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("outputs", [1, 2, 3, 5])
def test_class_names_that_do_not_fit_the_outputs_stop_predict_and_eval(
    tmp_path, rng, capsys, outputs
):
    # model.info["classes"] set by hand with one name too few or too many was used as
    # given: one logit and three names never predicted the third, and eval scored its
    # rows with target 2 in the BCE loss; three outputs and two names wrote three
    # probability columns under two headers
    from cli_run import run

    import wxb

    fits = 2 if outputs == 1 else outputs
    wrong = fits + int(rng.choice([-1, 1])) if fits > 2 else fits + 1
    names = [f"k{i}" for i in range(wrong)]
    model = Sequential(Dense(2, outputs, seed=int(rng.integers(1 << 31))))
    model.info = {"task": "classification", "classes": names, "feature_names": ["x", "y"]}
    if outputs == 1:
        model.info["loss"] = "bce_with_logits"
    path = wxb.save(model, tmp_path / "m.safetensors")
    rows = rng.normal(size=(12, 2))
    labels = rng.choice(names[: min(wrong, fits)], size=12)
    lines = ["x,y,label", *(f"{a},{b},{c}" for (a, b), c in zip(rows, labels, strict=True))]
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    for command in (("predict", "--proba"), ("predict",), ("eval", "--target", "label")):
        code, _, err = run(capsys, command[0], path, tmp_path / "rows.csv", *command[1:])
        assert code == 2 and f"names {wrong} classes" in err and err.count("\n") == 1, err
    model.info["classes"] = [f"k{i}" for i in range(fits)]  # the names that fit: it runs
    wxb.save(model, path)
    for command in (("predict", "--proba"), ("eval", "--target", "label")):
        code, _, err = run(capsys, command[0], path, tmp_path / "rows.csv", *command[1:])
        assert code == 0, err


def test_a_class_named_twice_stops_predict_and_eval(tmp_path, rng, capsys):
    # ["cat", "cat", "dog"]: predict printed "cat" for two outputs, and eval looked the
    # label up as one of them, so every row the other output won was scored wrong
    from cli_run import run

    import wxb

    names = ["cat", "dog", "cat"] if rng.random() < 0.5 else ["1", "2", 1.0]  # '1' and 1.0
    model = Sequential(Dense(2, 3, seed=int(rng.integers(1 << 31))))
    model.info = {"task": "classification", "classes": names, "feature_names": ["x", "y"]}
    path = wxb.save(model, tmp_path / "m.safetensors")
    rows = rng.normal(size=(10, 2))
    lines = ["x,y,label", *(f"{a},{b},{names[1]}" for a, b in rows)]
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    for command in (("predict",), ("eval", "--target", "label")):
        code, _, err = run(capsys, command[0], path, tmp_path / "rows.csv", *command[1:])
        assert code == 2 and "twice" in err and err.count("\n") == 1, err
