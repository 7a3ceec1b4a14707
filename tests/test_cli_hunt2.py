"""The command line end to end as a user with tables of their own runs it, round 2:
train → predict → eval, against the Python API, pandas and scikit-learn. Inputs are drawn
fresh each run; expected values come from the data, pandas or the Python API."""

from __future__ import annotations

import io
import shutil
import warnings

import numpy as np
import pandas as pd
from cli_run import predicted, run, trained

import wxb
from wxb.metrics import figure_text


def _table(rng, n: int = 50) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "id": rng.permutation(n) + 100,
            "a": rng.normal(size=n).round(4),
            "c": rng.choice(["red", "green", "blue"], n),
        }
    )
    frame["y"] = np.where(frame["a"] > 0, "pos", "neg")
    return frame


def test_predict_dash_o_dash_writes_to_standard_output(tmp_path, rng, capsys, monkeypatch):
    # '-o -', the usual name of standard output, wrote a file named '-' in the folder
    frame = _table(rng)
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = trained(capsys, tmp_path / "t.csv", "--target", "y", "--id-column", "id")
    new = frame.drop(columns="y").sample(frac=1, random_state=int(rng.integers(1000)))
    new.to_csv(tmp_path / "new.csv", index=False)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "predict", model, tmp_path / "new.csv", "-o", "-", "--proba")
    assert code == 0, err
    assert not (tmp_path / "-").exists()
    written = pd.read_csv(io.StringIO(out))
    assert written["id"].tolist() == new["id"].tolist()
    logits = wxb.load(model).predict(new).astype(np.float64)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(written[["p_neg", "p_pos"]].to_numpy(), p, rtol=1e-5, atol=1e-7)


def test_eval_scores_the_targets_y_array_names(tmp_path, rng, capsys):
    # --y-array lab named the targets, but eval looked for the model's own target 'y':
    # "no column 'y'; name the target column with --target"
    n = 60
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    np.savez(tmp_path / "train.npz", X=X, y=y)
    model = trained(capsys, tmp_path / "train.npz")
    X_new = rng.normal(size=(n, 3))
    y_new = (X_new[:, 0] > 0).astype(int) + (X_new[:, 1] > 0)
    np.savez(tmp_path / "new.npz", features=X_new, label=y_new)
    code, out, err = run(capsys, "eval", model, tmp_path / "new.npz", "--x-array", "features",
                         "--y-array", "label")  # fmt: skip
    assert code == 0, err
    predicted = wxb.load(model).predict(X_new).argmax(axis=1)
    assert f"accuracy {np.mean(predicted == y_new):.4f}" in out.splitlines()[0]


def test_a_one_hot_row_of_no_class_is_named_by_its_line_in_eval(tmp_path, rng, capsys):
    # a classifier trained on one-hot columns; a row of the new file with all of them 0
    # (or two 1s) stopped eval with "class labels must be one column; got shape (n, 3)"
    n = 60
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    frame = pd.concat([frame, pd.get_dummies(rng.choice(["u", "v", "w"], n)).astype(int)], axis=1)
    frame.to_csv(tmp_path / "train.csv", index=False)
    model = trained(capsys, tmp_path / "train.csv", "--target", "u,v,w")
    row = int(rng.integers(n))
    ones = int(rng.choice([0, 2, 3]))
    frame.loc[row, ["u", "v", "w"]] = [1] * ones + [0] * (3 - ones)
    frame.to_csv(tmp_path / "new.csv", index=False)
    code, _, err = run(capsys, "eval", model, tmp_path / "new.csv")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    said = "no 1" if ones == 0 else f"{ones} ones"
    assert f"line {row + 2}: its class columns hold {said}" in err, err


def test_export_to_a_name_ending_in_a_separator_writes_no_file_of_the_folders_name(
    tmp_path, rng, capsys
):
    # 'wxb export m -o out/' wrote the ONNX file as a file named 'out' and said "wrote out/"
    frame = _table(rng)
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = trained(capsys, tmp_path / "t.csv", "--target", "y", "--id-column", "id")
    name = f"onnx_{rng.integers(1000)}"
    code, _, err = run(capsys, "export", model, "-o", f"{tmp_path / name}/")
    assert code == 2 and "names a folder" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / name).exists()


def test_a_feather_v1_file_predicts_as_the_same_rows_from_csv(tmp_path, rng, capsys):
    # Feather V1 (R's feather package, pandas before 0.25) has no Arrow IPC footer: it
    # was refused as "not a readable Feather/Arrow file (Not an Arrow file)"
    import pyarrow as pa
    import pyarrow.feather as feather

    frame = _table(rng)
    frame.loc[rng.choice(len(frame), 4, replace=False), "c"] = None
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = trained(capsys, tmp_path / "t.csv", "--target", "y", "--id-column", "id")
    new = frame.drop(columns="y").sample(frac=1, random_state=int(rng.integers(1000)))
    new.to_csv(tmp_path / "new.csv", index=False)
    with warnings.catch_warnings():  # pyarrow calls V1 deprecated for writing
        warnings.simplefilter("ignore", DeprecationWarning)
        table = pa.Table.from_pandas(new, preserve_index=False)
        feather.write_feather(table, tmp_path / "new.feather", version=1)
    from_v1 = predicted(capsys, model, tmp_path / "new.feather", "--proba")
    from_csv = predicted(capsys, model, tmp_path / "new.csv", "--proba")
    assert from_v1["id"].tolist() == new["id"].tolist()
    pd.testing.assert_frame_equal(from_v1, from_csv)


def test_names_set_by_hand_in_a_models_info_that_are_no_names_are_one_line(tmp_path, rng, capsys):
    # model.info['id_column'] = ['id'] raised a bare TypeError (unhashable list) in every
    # command that reads rows; targets = 'cls' was taken letter by letter ("no column 'l'")
    frame = _table(rng)
    frame.to_csv(tmp_path / "t.csv", index=False)
    network = wxb.load(trained(capsys, tmp_path / "t.csv", "--target", "y", "--id-column", "id"))
    key, value = [("id_column", ["id"]), ("targets", "y"), ("target", 1)][rng.integers(3)]
    network.info[key] = value
    wxb.save(network, tmp_path / "hand.safetensors")
    for command in ("predict", "eval"):
        code, _, err = run(capsys, command, tmp_path / "hand.safetensors", tmp_path / "t.csv")
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"model.info[{key!r}]" in err, err


def test_eval_of_an_npy_trained_on_one_of_its_columns_scores_it(tmp_path, rng, capsys):
    # wxb train --data xy.npy --target x3 trains on x0…x2; wxb eval of the same file
    # counted the target among the features: "4 features but the model takes 3"
    from sklearn.metrics import mean_squared_error, r2_score

    n, width = 60, int(rng.integers(3, 6))
    k = int(rng.integers(width))  # the target's column: any of them
    data = rng.normal(size=(n, width))
    data[:, k] = data[:, (k + 1) % width] * 2 + rng.normal(size=n) * 0.1
    np.save(tmp_path / "xy.npy", data)
    model = trained(capsys, tmp_path / "xy.npy", "--target", f"x{k}")
    for command in ("eval", "explain"):
        argv = (
            [model, tmp_path / "xy.npy"]
            if command == "eval"
            else [model, "--data", tmp_path / "xy.npy"]
        )
        code, out, err = run(capsys, command, *argv)
        assert code == 0, err
    code, out, err = run(capsys, "eval", model, tmp_path / "xy.npy")
    predicted = wxb.load(model).predict(np.delete(data, k, axis=1))[:, 0].astype(np.float64)
    mse, r2 = mean_squared_error(data[:, k], predicted), r2_score(data[:, k], predicted)
    shown = f"mse {figure_text(mse)}, r2 {figure_text(r2)}"
    assert shown in out.splitlines()[0], (out, mse, r2)


def _fitted_on_a_frame(tmp_path, rng) -> tuple[str, pd.DataFrame]:
    """A model wxb.fit trained on a DataFrame of numbers (its names recorded, no table
    stage), saved; and a new frame of its columns in another order, with the target."""
    from wxb.nn import Dense, ReLU, Sequential

    n = 60
    frame = pd.DataFrame({name: rng.normal(size=n) for name in ("b", "a", "c")})
    target = pd.Series(frame["a"] * 2 + frame["b"], name="price")
    network = Sequential(Dense(3, 4), ReLU(), Dense(4, 1))
    wxb.fit(network, frame, target, epochs=2, loss="mse")
    wxb.save(network, tmp_path / "fit.safetensors")
    return str(tmp_path / "fit.safetensors"), frame[["c", "a", "b"]].assign(price=target)


def test_a_stray_inf_in_a_column_a_fitted_model_never_reads_stops_nothing(tmp_path, rng, capsys):
    # README: other columns are not read (a stray inf there stops nothing); for a model
    # wxb.fit trained on a DataFrame every column was read, and the inf stopped predict
    model, new = _fitted_on_a_frame(tmp_path, rng)
    new["notes"] = np.where(rng.random(len(new)) < 0.5, np.inf, 1.0)
    new.to_csv(tmp_path / "new.csv", index=False)
    written = predicted(capsys, model, tmp_path / "new.csv")
    expected = wxb.load(model).predict(new[["a", "b", "c"]])[:, 0]
    np.testing.assert_allclose(written["prediction"].to_numpy(), expected, rtol=1e-6)
    code, out, err = run(capsys, "eval", model, tmp_path / "new.csv")
    assert code == 0, err
    mse = np.mean((written["prediction"].to_numpy() - new["price"].to_numpy()) ** 2)
    assert f"mse {figure_text(mse)}" in out.splitlines()[0], (out, mse)


def test_a_gap_a_fitted_model_cannot_fill_is_named_by_line_and_column(tmp_path, rng, capsys):
    # "new.csv has nan at row 3, column 1": the row counted from 0 and the column in the
    # network's order, not the file's
    model, new = _fitted_on_a_frame(tmp_path, rng)
    row, name = int(rng.integers(len(new))), str(rng.choice(["a", "b", "c"]))
    new.loc[row, name] = np.nan
    new.to_csv(tmp_path / "new.csv", index=False)
    for command in ("predict", "eval"):
        code, _, err = run(capsys, command, model, tmp_path / "new.csv")
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"line {row + 2}, column {name!r}: a missing value" in err, err


def test_a_short_or_long_row_over_several_lines_is_named_by_the_line_it_starts_on(
    tmp_path, rng, capsys
):
    # a row with a quoted line break (or a quote left open) and a value too many or too
    # few was named "a line": its text spans lines, and no one line of the file equals it
    n = 20
    rows = [
        f"{v:.3f},{w},p" for v, w in zip(rng.normal(size=n), rng.choice(["u", "v"], n), strict=True)
    ]
    bad = int(rng.integers(n))
    if rng.random() < 0.5:
        rows[bad] = f'{rows[bad]},"two\nlines"'  # a value too many, its cell over two lines
    else:
        rows[bad] = '1.5,"open'  # a quote never closed: the rest of the file is its cell
    ending = str(rng.choice(["\n", "\r\n"]))
    (tmp_path / "bad.csv").write_bytes(
        ("a,c,y\n" + "\n".join(rows) + "\n").replace("\n", ending).encode()
    )
    code, _, err = run(capsys, "train", "--data", tmp_path / "bad.csv", "--target", "y")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"bad.csv, line {bad + 2}: " in err, err


def test_a_decimal_comma_past_the_look_at_the_start_is_refused_with_the_option_that_reads_it(
    tmp_path, rng, capsys
):
    # a ';' file of whole numbers for its first 64 KiB, then '23,5': "'23,5' is text; the
    # model reads numbers there", without the --decimal , that reads it
    n = 40
    a = rng.integers(0, 100, n) + 0.5
    train = "a;y\n" + "".join(f"{v:g};{'hi' if v > 50 else 'lo'}\n".replace(".", ",") for v in a)
    (tmp_path / "train.csv").write_text(train)
    model = trained(capsys, tmp_path / "train.csv", "--target", "y")
    rows = 12_000
    whole = rng.integers(0, 100, rows).astype(float)
    late = int(rng.integers(9_000, rows))
    whole[late] += 0.5
    # a 10-digit serial beside it: 9,000 lines are past the 64 KiB the reader looks at
    new = "a;serial\n" + "".join(
        f"{v:g};{10**9 + i}\n".replace(".", ",") for i, v in enumerate(whole)
    )
    (tmp_path / "new.csv").write_text(new)
    code, _, err = run(capsys, "predict", model, tmp_path / "new.csv")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"line {late + 2}, column 'a'" in err and "give --decimal ," in err, err
    written = predicted(capsys, model, tmp_path / "new.csv", "--decimal", ",")
    expected = wxb.load(model).predict(pd.DataFrame({"a": whole}))
    names = np.array(wxb.load(model).info["classes"])[expected.argmax(axis=1)]
    assert written["prediction"].tolist() == names.tolist()


def test_a_file_of_another_format_named_csv_is_said_to_be_that_format(tmp_path, rng, capsys):
    # a Parquet file, a gzip, an NPZ or a model saved as 'x.csv': its bytes were printed
    # back in the error ("Expected 1 columns, got 2: N���}…"), with pyarrow's traceback of
    # the bad row's failed decoding beside it
    frame = _table(rng)
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = trained(capsys, tmp_path / "t.csv", "--target", "y")
    new = frame.drop(columns="y")
    writers = {
        "Parquet": lambda path: new.to_parquet(path),
        "gzip": lambda path: new.to_csv(path, index=False, compression="gzip"),
        "ZIP": lambda path: np.savez(path.with_suffix(".npz"), X=new[["a"]].to_numpy()),
        # (a copy: wxb.save and wxb train -o refuse the name .csv, as other tools' may not)
        "safetensors": lambda path: shutil.copyfile(model, path),
    }
    for what, write in writers.items():
        path = tmp_path / f"{what}.csv"
        write(path)
        if path.with_suffix(".npz").exists():
            path.with_suffix(".npz").rename(path)
        code, out, err = run(capsys, "predict", model, path)
        assert code == 2 and not out and len(err.strip().splitlines()) == 1, err
        assert f"{what}.csv: not CSV text but" in err and what in err.split("but", 1)[1], err


def test_a_binary_file_named_csv_is_one_line_without_its_bytes(tmp_path, rng, capsys):
    # a PDF or an image saved as 'x.csv': pyarrow failed to decode a bad row's text (a
    # traceback, 'Exception ignored in … on_bad_row') and the error printed the bytes back
    frame = _table(rng)
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = trained(capsys, tmp_path / "t.csv", "--target", "y")
    head = bytes(
        rng.choice([b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"])
    )
    body = rng.integers(0, 256, int(rng.integers(2_000, 20_000)), dtype=np.uint8).tobytes()
    (tmp_path / "scan.csv").write_bytes(head + body)
    for command in ("predict", "eval"):
        code, out, err = run(capsys, command, model, tmp_path / "scan.csv")
        assert code == 2 and not out and len(err.strip().splitlines()) == 1, err
        assert "scan.csv: not CSV text" in err and "\ufffd" not in err, err


def test_a_short_or_long_row_in_another_encoding_is_one_line_naming_it(tmp_path, rng, capsys):
    # a latin-1 row with a value too many: pyarrow failed to decode it for the handler of
    # bad rows ('Exception ignored in … on_bad_row', a traceback) and printed its bytes
    n = 20
    rows = [
        f"{v:.3f},{w},p" for v, w in zip(rng.normal(size=n), rng.choice(["u", "v"], n), strict=True)
    ]
    bad = int(rng.integers(n))
    rows[bad] = str(rng.choice(["1.5,café,p,9", "1.5,café"]))  # a value too many, or few
    (tmp_path / "bad.csv").write_bytes(("a,c,y\n" + "\n".join(rows) + "\n").encode("latin-1"))
    code, _, err = run(capsys, "train", "--data", tmp_path / "bad.csv", "--target", "y")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"bad.csv, line {bad + 2}: " in err and "--encoding" in err and "\ufffd" not in err, err


def test_an_arrow_ipc_stream_predicts_as_the_same_rows_from_csv(tmp_path, rng, capsys):
    # the IPC stream format (pyarrow.ipc.new_stream, Polars' write_ipc_stream; '.arrows'
    # by Arrow's naming) has no file footer: "not a readable Feather/Arrow file (Not a
    # Feather V1 or Arrow IPC file)"
    import pyarrow as pa

    frame = _table(rng)
    frame.loc[rng.choice(len(frame), 4, replace=False), "a"] = np.nan
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = trained(capsys, tmp_path / "t.csv", "--target", "y", "--id-column", "id")
    new = frame.drop(columns="y").sample(frac=1, random_state=int(rng.integers(1000)))
    new.to_csv(tmp_path / "new.csv", index=False)
    from_csv = predicted(capsys, model, tmp_path / "new.csv", "--proba")
    table = pa.Table.from_pandas(new, preserve_index=False)
    for name in ("new.arrow", "new.arrows"):
        with pa.OSFile(str(tmp_path / name), "wb") as sink:
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table, max_chunksize=int(rng.integers(5, 30)))
        from_stream = predicted(capsys, model, tmp_path / name, "--proba")
        assert from_stream["id"].tolist() == new["id"].tolist()
        pd.testing.assert_frame_equal(from_stream, from_csv)


def test_a_dash_for_a_file_output_other_than_predictions_is_refused(tmp_path, capsys, monkeypatch):
    """'-' names standard output (wxb predict -o - writes there); a model, history, ONNX
    file or report given '-' was written as a file named '-' in the working folder."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(np.random.SeedSequence().entropy)
    x = rng.normal(size=(40, 2))
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": (x[:, 0] > 0).astype(int)}).to_csv(
        "t.csv", index=False
    )
    model = trained(capsys, tmp_path / "t.csv", "--target", "y")
    for argv, what in (
        (("train", "--data", "t.csv", "--target", "y", "-q", "--epochs", "1", "-o", "-"), "model"),
        (
            (
                "train",
                "--data",
                "t.csv",
                "--target",
                "y",
                "-q",
                "--epochs",
                "1",
                "-o",
                "m2.safetensors",
                "--history",
                "-",
            ),
            "history",
        ),
        (("export", model, "-o", "-"), "ONNX file"),
        (("report", model, "-o", "-"), "report"),
    ):
        code, _, err = run(capsys, *argv)
        assert code == 2 and len(err.splitlines()) == 1, (argv, err)
        assert f"the {what} cannot go to standard output" in err, err
        assert not (tmp_path / "-").exists(), argv
