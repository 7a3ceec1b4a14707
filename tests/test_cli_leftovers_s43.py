"""Command-line leftovers: a table read from standard input ('-'), '-' refused as a
folder, standard JSON (no NaN tokens) in the files wxb writes."""

from __future__ import annotations

import gzip
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from cli_run import FAST, run


def _stdin(monkeypatch, data: bytes) -> None:
    """Standard input as a pipe holding ``data``."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def _mixed_table(rng: np.random.Generator) -> pd.DataFrame:
    """Numbers with gaps, a text column, a boolean, an identifier out of order."""
    n = int(rng.integers(40, 90))
    frame = pd.DataFrame(
        {
            "rid": rng.permutation(np.arange(1000, 1000 + n)).astype(str),
            "a": rng.normal(size=n).round(4),
            "b": rng.normal(size=n) * 100,
            "kind": rng.choice(["x", "y", "zz"], size=n),
            "flag": rng.random(n) > 0.5,
        }
    )
    frame.loc[rng.random(n) < 0.1, "a"] = np.nan
    frame["label"] = np.where(frame["b"] + 50 * (frame["kind"] == "x") > 0, "up", "down")
    return frame


def _predicted_both_ways(capsys, monkeypatch, model, path: Path, *extra) -> tuple[str, str]:
    code, by_path, err = run(capsys, "predict", model, path, "--proba", *extra)
    assert code == 0, err
    _stdin(monkeypatch, path.read_bytes())
    code, piped, err = run(capsys, "predict", model, "-", "--proba", "-o", "-", *extra)
    assert code == 0, err
    return by_path, piped


def test_predict_reads_each_format_from_standard_input(tmp_path, seeded, capsys, monkeypatch):
    frame = _mixed_table(seeded.rng)
    train = tmp_path / "train.csv"
    frame.to_csv(train, index=False)
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", train, "--target", "label",
                       "--id-column", "rid", *FAST, "-o", model)  # fmt: skip
    assert code == 0, seeded.msg(err)
    new = frame.drop(columns="label").sample(frac=1.0, random_state=int(seeded.seed % 2**32))
    files = {
        "csv": lambda p: new.to_csv(p, index=False),
        "csv.gz": lambda p: new.to_csv(p, index=False, compression="gzip"),
        "jsonl": lambda p: new.to_json(p, orient="records", lines=True),
        "parquet": lambda p: new.to_parquet(p, index=False),
        "feather": lambda p: new.reset_index(drop=True).to_feather(p),
    }
    for suffix, write in files.items():
        path = tmp_path / f"new.{suffix}"
        write(path)
        by_path, piped = _predicted_both_ways(capsys, monkeypatch, model, path)
        assert piped == by_path, seeded.msg(f"{suffix}: piped\n{piped}\nby path\n{by_path}")
        # the identifiers in the input's own order (pandas reads the output)
        ids = pd.read_csv(io.StringIO(piped), dtype={"rid": str})["rid"].tolist()
        assert ids == new["rid"].tolist(), seeded.msg(suffix)
    # an Arrow IPC stream (no file footer), as pyarrow writes to a pipe
    stream = tmp_path / "new.arrows"
    table = pa.Table.from_pandas(new, preserve_index=False)
    with pa.OSFile(str(stream), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    by_path, piped = _predicted_both_ways(capsys, monkeypatch, model, stream)
    assert piped == by_path, seeded.msg("arrow stream")


def test_predict_and_eval_of_arrays_from_standard_input(tmp_path, seeded, capsys, monkeypatch):
    rng = seeded.rng
    X = rng.normal(size=(int(rng.integers(60, 120)), int(rng.integers(2, 5))))
    y = (X[:, 0] - X[:, -1] > 0).astype(int)
    npz = tmp_path / "d.npz"
    np.savez(npz, X=X, y=y)
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", npz, *FAST, "-o", model)
    assert code == 0, seeded.msg(err)
    npy = tmp_path / "x.npy"
    np.save(npy, X)
    for path in (npy, npz):
        by_path, piped = _predicted_both_ways(capsys, monkeypatch, model, path)
        assert piped == by_path, seeded.msg(path.name)
        assert len(pd.read_csv(io.StringIO(piped))) == len(X), seeded.msg(path.name)
    code, by_path, err = run(capsys, "eval", model, npz)
    assert code == 0, seeded.msg(err)
    _stdin(monkeypatch, npz.read_bytes())
    code, piped, err = run(capsys, "eval", model, "-")
    assert code == 0, seeded.msg(err)
    assert piped == by_path.replace(str(npz), "standard input"), seeded.msg(piped)


def test_eval_and_explain_read_standard_input(tmp_path, seeded, capsys, monkeypatch):
    frame = _mixed_table(seeded.rng)
    data = tmp_path / "d.csv"
    frame.to_csv(data, index=False, sep=";", decimal=",")
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", data, "--target", "label",
                       "--id-column", "rid", *FAST, "-o", model)  # fmt: skip
    assert code == 0, seeded.msg(err)
    for command in (("eval", model, "{}"), ("explain", model, "--data", "{}", "--sample", "2")):
        code, by_path, err = run(capsys, *[str(a).format(data) for a in command])
        assert code == 0, seeded.msg(err)
        _stdin(monkeypatch, data.read_bytes())
        code, piped, err = run(capsys, *[str(a).format("-") for a in command])
        assert code == 0, seeded.msg(err)
        assert piped == by_path.replace(str(data), "standard input"), seeded.msg(command[0])


def test_standard_input_errors_name_it_by_line(tmp_path, capsys, monkeypatch):
    data = tmp_path / "d.csv"
    data.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(30)))
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", data, "--target", "y", *FAST, "-o", model)
    assert code == 0, err
    _stdin(monkeypatch, b"a,b\n1,2\n3,oops\n4,5\n")
    code, out, err = run(capsys, "predict", model, "-")
    assert code == 2 and out == "", err
    assert err.startswith("wxb: error: standard input") and "line 3" in err, err
    assert str(tmp_path) not in err and "wxb-stdin" not in err, err
    # a zip that is not an NPZ (an .xlsx): one line naming what it is
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    _stdin(monkeypatch, packed.getvalue())
    code, _, err = run(capsys, "predict", model, "-")
    assert code == 2 and err.count("\n") == 1 and "zip archive" in err, err
    # a JSON array of objects: refused as the same file by its path is
    array = tmp_path / "rows.json"
    array.write_text(json.dumps([{"a": 1, "b": 2}, {"a": 3, "b": 4}], indent=1))
    code, _, by_path = run(capsys, "predict", model, array)
    assert code == 2, by_path
    _stdin(monkeypatch, array.read_bytes())
    code, _, err = run(capsys, "predict", model, "-")
    assert code == 2 and err == by_path.replace(str(array), "standard input"), err
    # gzip of an NPY: refused by name, as a file x.npy.gz is
    packed = io.BytesIO()
    np.save(packed, np.ones((3, 2)))
    _stdin(monkeypatch, gzip.compress(packed.getvalue()))
    code, _, err = run(capsys, "predict", model, "-")
    assert code == 2 and err.count("\n") == 1 and "gzip-compressed npy" in err, err
    # gzip of CSV, told from its bytes
    _stdin(monkeypatch, gzip.compress(b"a,b\n1,2\n"))
    code, out, err = run(capsys, "predict", model, "-")
    assert code == 0 and out.startswith("prediction\n") and len(out.splitlines()) == 2, err


def test_standard_input_at_a_terminal_or_for_train_is_refused(tmp_path, capsys, monkeypatch):
    class Terminal(io.TextIOWrapper):
        def isatty(self) -> bool:
            return True

    data = tmp_path / "d.csv"
    data.write_text("a,y\n" + "".join(f"{i % 7},{i % 2}\n" for i in range(20)))
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", data, "--target", "y", *FAST, "-o", model)
    assert code == 0, err
    for command in (("predict", model, "-"), ("eval", model, "-")):
        monkeypatch.setattr(sys, "stdin", Terminal(io.BytesIO(b"")))
        code, _, err = run(capsys, *command)
        assert code == 2 and "terminal" in err and err.count("\n") == 1, err
    _stdin(monkeypatch, data.read_bytes())
    monkeypatch.chdir(tmp_path)
    model.unlink()
    code, _, err = run(capsys, "train", "--data", "-", "--target", "y", *FAST)
    assert code == 2 and "standard input" in err and err.count("\n") == 1, err
    assert not (tmp_path / "model.safetensors").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ("train", "--plots", "-"),
        ("train", "--checkpoint-dir", "-"),
        ("plot", "history.json", "-o", "-"),
    ],
)
def test_folder_options_refuse_a_dash(tmp_path, capsys, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    Path("history.json").write_text(json.dumps({"loss": [1.0]}))
    code, _, err = run(capsys, *argv, *FAST[:-1] * (argv[0] == "train"))
    assert code == 2 and err.count("\n") == 1 and "('-')" in err, err
    assert not Path("-").exists(), "a folder named '-' was made"
    assert not Path("model.safetensors").exists()


def _strict(text: str):
    """json.loads refusing NaN, Infinity and -Infinity, as jq and JSON.parse do."""

    def refuse(token: str):
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_history_json_is_standard_with_null_for_a_figure_that_is_not_finite(tmp_path, seeded):
    import wxb
    from wxb.nn import CrossEntropyLoss, Dense, Sequential
    from wxb.plots import plot_history
    from wxb.reporting import read_history

    rng = seeded.rng
    X = rng.normal(size=(int(rng.integers(30, 80)), 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    X_val = rng.normal(size=(int(rng.integers(3, 12)), 3)).astype(np.float32)
    y_val = np.full(len(X_val), -100)  # every validation row ignored: val_loss 0/0
    model = Sequential(Dense(3, 4), Dense(4, 2))
    with pytest.warns(UserWarning, match="ignore_index"):
        history = wxb.fit(model, X, y, loss=CrossEntropyLoss(ignore_index=-100),
                          validation_data=(X_val, y_val), epochs=2, seed=0,
                          verbose=False, diagnose=True)  # fmt: skip
    assert np.isnan(history["val_loss"]).all()  # (PyTorch's mean over no row)
    record = _strict(history.to_json())
    figures = record["history"]
    for key, values in history.history.items():
        expected = [v if np.isfinite(v) else None for v in values]
        assert figures[key] == expected, seeded.msg(key)
    path = tmp_path / "history.json"
    path.write_text(history.to_json())
    assert read_history(path)["history"]["val_loss"] == [None, None]
    pytest.importorskip("matplotlib")
    assert plot_history(read_history(path), tmp_path / "plots")


def test_model_info_is_standard_json_and_loads_its_nan_back(tmp_path, seeded, capsys):
    import safetensors.numpy

    import wxb
    from wxb.data import read_safetensors_header, safetensors_bytes

    rng = seeded.rng
    n = 6  # 5 training rows and 1 test row: R² of one row is NaN, as scikit-learn's
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    frame["y"] = frame["a"] * 3 + rng.normal(size=n)
    data = tmp_path / "r.csv"
    frame.to_csv(data, index=False)
    model = tmp_path / "r.safetensors"
    code, _, err = run(capsys, "train", "--data", data, "--target", "y", "--val-split", "0",
                       *FAST, "-o", model)  # fmt: skip
    assert code == 0, seeded.msg(err)
    metadata = read_safetensors_header(model)["__metadata__"]
    info = _strict(metadata["info"])
    assert info["test"]["r2"] == {"__float__": "nan"}, seeded.msg(str(info["test"]))
    assert np.isnan(wxb.load(model).info["test"]["r2"])
    # a file written before, with a NaN token there, still loads
    metadata["info"] = metadata["info"].replace('{"__float__": "nan"}', "NaN")
    del metadata["digest"]  # (older wxb wrote none)
    old = tmp_path / "old.safetensors"
    old.write_bytes(safetensors_bytes(safetensors.numpy.load_file(model), metadata))
    assert np.isnan(wxb.load(old).info["test"]["r2"])
    assert wxb.load(old).info["test"]["mse"] == wxb.load(model).info["test"]["mse"]


def test_report_of_a_regression_in_big_units_draws_its_histograms(tmp_path, seeded, capsys):
    """One output of 1e17 (a row's Z, ŷ): lo − 0.5 == lo, and np.histogram's refusal of
    a range of no width was a traceback from wxb report (and wxb train --report)."""
    rng = seeded.rng
    n = int(rng.integers(60, 120))
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    unit = 10.0 ** rng.uniform(16, 20)
    frame["y"] = (5 + frame["a"] + 0.3 * frame["b"]) * unit
    data = tmp_path / "big.csv"
    frame.to_csv(data, index=False)
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", data, "--target", "y", "--dtype", "float64",
                       *FAST, "-o", model)  # fmt: skip
    assert code == 0, seeded.msg(err)
    page = tmp_path / "r.html"
    code, _, err = run(capsys, "report", model, "--data", data, "--no-floor", "-o", page)
    assert code == 0 and page.is_file(), seeded.msg(err)


def test_summarise_bins_huge_and_constant_values_as_numpy_does(seeded):
    from wxb.reporting import HISTOGRAM_BINS, summarise

    rng = seeded.rng
    for _ in range(20):
        exponent = float(rng.uniform(0, 307))
        values = rng.normal(size=int(rng.integers(2, 50))) * 10.0**exponent
        shown = summarise(values)["histogram"]
        scale = 10.0 ** (exponent - 1)  # numpy on values brought into range by another scale
        expected, _ = np.histogram(values / scale, bins=HISTOGRAM_BINS,
                                   range=(values.min() / scale, values.max() / scale))  # fmt: skip
        assert shown["counts"] == expected.tolist(), seeded.msg(f"10^{exponent:.1f}")
        assert (shown["lo"], shown["hi"]) == (values.min(), values.max())
        norm = np.linalg.norm(values / scale) * scale
        assert summarise(values)["norm"] == pytest.approx(norm, rel=1e-12), seeded.msg("norm")
        mean = np.mean(values / scale) * scale
        assert summarise(values)["mean"] == pytest.approx(mean, rel=1e-9, abs=1e-12 * norm)
        constant = np.full(int(rng.integers(1, 5)), values[0])
        shown = summarise(constant)["histogram"]
        assert shown["lo"] < values[0] < shown["hi"], seeded.msg(str(shown))
        assert sum(shown["counts"]) == len(constant)
    huge = np.array([-1.7e308, 1.7e308, *rng.normal(size=5)])
    shown = summarise(huge)["histogram"]
    assert shown["counts"][0] == shown["counts"][-1] == 1 and sum(shown["counts"]) == 7
    assert summarise(np.array([1.7e308, 1.5e308]))["mean"] == pytest.approx(1.6e308)


def test_a_history_with_null_norms_is_read_back_by_report_and_plot(tmp_path, seeded, capsys):
    """A norm that overflowed is null in the history (to_json): wxb report's check of the
    history against the model took float(None), a traceback."""
    import math

    import wxb
    from wxb.nn import Dense, ReLU, Sequential

    rng = seeded.rng
    X = rng.normal(size=(int(rng.integers(40, 90)), 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    model = Sequential(Dense(3, 4), ReLU(), Dense(4, 2))
    history = wxb.fit(model, X, y, epochs=3, seed=0, verbose=False, diagnose=True)
    history.diagnostics[0]["layers"][0]["weight_norm"] = math.inf  # (as if overflowed)
    history.diagnostics[1]["layers"][1]["delta_norm"] = math.nan
    record = _strict(history.to_json())
    assert record["diagnostics"][0]["layers"][0]["weight_norm"] is None
    model.info["task"] = "classification"
    path, saved = tmp_path / "h.json", tmp_path / "m.safetensors"
    path.write_text(history.to_json())
    wxb.save(model, saved)
    code, _, err = run(capsys, "report", saved, "--history", path, "--no-floor",
                       "-o", tmp_path / "r.html")  # fmt: skip
    assert code == 0, seeded.msg(err)
    pytest.importorskip("matplotlib")
    code, _, err = run(capsys, "plot", path, "-o", tmp_path / "plots")
    assert code == 0, seeded.msg(err)


@pytest.mark.parametrize(
    "argv",
    [
        ("train", "--plots", ""),
        ("train", "--history", ""),
        ("train", "--report", ""),
        ("plot", "history.json", "-o", ""),
    ],
)
def test_output_options_refuse_an_empty_path(tmp_path, capsys, monkeypatch, argv):
    """'' (a "$DIR" left unset): train wrote no plots, history or report without a word,
    and wxb plot wrote its charts into the current folder."""
    monkeypatch.chdir(tmp_path)
    Path("history.json").write_text(json.dumps({"history": {"loss": [1.0, 0.5]}}))
    code, _, err = run(capsys, *argv, *FAST[:-1] * (argv[0] == "train"))
    assert code == 2 and err.count("\n") == 1 and "''" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.json"]


def test_predict_says_which_regression_outputs_are_not_finite(tmp_path, seeded, capsys):
    """A regression's predict writes inf and NaN outputs as they are (eval and a
    classifier refuse them); numpy's overflow warnings from inside the network, with
    their file paths, were all that told of them."""
    import wxb

    rng = seeded.rng
    n = int(rng.integers(40, 80))
    frame = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n)})
    frame["y"] = 2 * frame["x"] - frame["z"] + rng.normal(size=n) * 0.1
    frame.to_csv(tmp_path / "train.csv", index=False)
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", tmp_path / "train.csv", "--target", "y",
                       *FAST, "-o", model)  # fmt: skip
    assert code == 0, seeded.msg(err)
    network = wxb.load(model)
    for parameter in network.parameters():  # weights that overflow float32 on large inputs
        parameter.data *= 1e15
    wxb.save(network, model)
    far = frame[["x", "z"]].copy()
    rows = np.sort(rng.choice(n, size=int(rng.integers(2, 5)), replace=False))
    far.loc[rows, "x"] = 1e10 * np.resize([1.0, -1.0], len(rows))  # each way: some unit fires
    far.to_csv(tmp_path / "far.csv", index=False)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = wxb.load(model).predict(far).astype(np.float64).ravel()
    bad = np.flatnonzero(~np.isfinite(expected))
    assert len(bad), seeded.msg("no output overflowed")
    code, out, err = run(capsys, "predict", model, tmp_path / "far.csv")
    assert code == 0, seeded.msg(err)
    assert err.count("\n") == 1 and err.startswith("wxb: warning: "), seeded.msg(out + err)
    assert "Warning" not in err, err
    assert f"line {bad[0] + 2}" in err and f"({len(bad)} row" in err, seeded.msg(err)
    written = pd.read_csv(io.StringIO(out))["prediction"].to_numpy()
    np.testing.assert_array_equal(written, expected, err_msg=seeded.msg("predictions"))
