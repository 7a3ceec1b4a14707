"""Tables off the well-tested path (a third hunt): each case is read as a person means it,
or said plainly; never a silently wrong number. Inputs are drawn fresh each run; every
expected value comes from the data or from pandas, never from a run of wxb."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import wxb
from wxb.cli import main
from wxb.tables import read_table

FAST = ("--hidden", "8", "--epochs", "5", "-q")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def trained(capsys, data, *extra):
    model = Path(data).with_name("model.safetensors")
    code, _, err = run(capsys, "train", "--data", data, *FAST, "-o", model, *extra)
    assert code == 0, err
    return model, err


def predicted(capsys, model, data, *extra) -> pd.DataFrame:
    code, out, err = run(capsys, "predict", model, data, *extra)
    assert code == 0, err
    return pd.read_csv(io.StringIO(out))


def onnx_probabilities(capsys, model, folder, feeds: dict) -> np.ndarray:
    """The model exported to ONNX, run by onnxruntime on ``feeds``: its class probabilities."""
    ort = pytest.importorskip("onnxruntime")
    code, _, err = run(capsys, "export", model, "-o", folder / "m.onnx")
    assert code == 0, err
    logits = ort.InferenceSession(str(folder / "m.onnx")).run(None, feeds)[0]
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def test_true_false_categories_beside_others_are_not_unseen_in_a_file_of_only_them(
    tmp_path, rng, capsys
):
    # a column of only 'true'/'false' reads as booleans: they matched no category
    n = 90
    answer = rng.choice(["true", "false", "unknown"], n)
    y = np.where(answer == "true", "yes", "no")
    x = rng.normal(size=n).round(3)
    pd.DataFrame({"answer": answer, "x": x, "y": y}).to_csv(tmp_path / "t.csv", index=False)
    model, _ = trained(capsys, tmp_path / "t.csv", "--target", "y")
    rows = rng.choice(["true", "false"], 4)
    new_x = rng.normal(size=5).round(3)
    only = pd.DataFrame({"answer": rows, "x": new_x[:4]})
    only.to_csv(tmp_path / "only.csv", index=False)
    mixed = pd.concat([only, pd.DataFrame({"answer": ["unknown"], "x": new_x[4:]})])
    mixed.to_csv(tmp_path / "mixed.csv", index=False)  # read as text: the reference
    got = predicted(capsys, model, tmp_path / "only.csv", "--proba")
    want = predicted(capsys, model, tmp_path / "mixed.csv", "--proba")[:4]
    pd.testing.assert_frame_equal(got, want)
    feeds = {  # the exported model reads the same cells alike
        "answer": only.answer.to_numpy(object).reshape(-1, 1),
        "x": only.x.to_numpy(np.float32).reshape(-1, 1),
    }
    probabilities = onnx_probabilities(capsys, model, tmp_path, feeds)
    np.testing.assert_allclose(probabilities, got[["p_no", "p_yes"]].to_numpy(), atol=1e-5)
    # the labels too: eval of a file whose targets are only 'true'/'false'
    labels = pd.DataFrame({"a": rng.normal(size=n).round(3), "t": answer})
    labels.to_csv(tmp_path / "l.csv", index=False)
    model, _ = trained(capsys, tmp_path / "l.csv", "--target", "t")
    labels[labels.t != "unknown"].to_csv(tmp_path / "le.csv", index=False)
    code, out, err = run(capsys, "eval", model, tmp_path / "le.csv")
    assert code == 0, err
    truth = labels[labels.t != "unknown"].t.to_numpy()
    code, out_csv, err = run(capsys, "predict", model, tmp_path / "le.csv")
    assert code == 0, err
    # as written: pandas reads a column of only 'true'/'false' as bools ('True' != 'true')
    guess = pd.read_csv(io.StringIO(out_csv), dtype={"prediction": str}).prediction.to_numpy()
    assert f"accuracy {np.mean(guess == truth):.4f}" in out


@pytest.mark.parametrize("with_word", [False, True])
def test_eval_reads_a_models_text_column_as_predict_does(tmp_path, rng, capsys, with_word):
    # eval read the text column's '5' cells as numbers ('5.0' → '5'), or refused 'S' among them
    n = 80
    size = rng.choice(["5", "5.0", "S", "M"], n)
    y = np.where(np.isin(size, ["5", "S"]), "a", "b")
    frame = pd.DataFrame({"size": size, "w": rng.normal(size=n).round(2), "y": y})
    frame.to_csv(tmp_path / "t.csv", index=False)
    model, _ = trained(capsys, tmp_path / "t.csv", "--target", "y", "--epochs", "60")
    cells = ["5", "5.0"] * 6 + (["S"] if with_word else [])
    new = pd.DataFrame({"size": cells, "w": rng.normal(size=len(cells)).round(2)})
    new["y"] = np.where(np.isin(new["size"], ["5", "S"]), "a", "b")
    with (tmp_path / "e.csv").open("w", newline="") as handle:  # '5.0' kept as written
        writer = csv.writer(handle)
        writer.writerow(["size", "w", "y"])
        writer.writerows(new.itertuples(index=False))
    guess = predicted(capsys, model, tmp_path / "e.csv").prediction.astype(str).to_numpy()
    code, out, err = run(capsys, "eval", model, tmp_path / "e.csv")
    assert code == 0, err
    assert f"accuracy {np.mean(guess == new.y.to_numpy()):.4f}" in out


@pytest.mark.parametrize("sep", [";", "\t"])
def test_quoted_decimal_commas_read_as_numbers(tmp_path, rng, sep):
    n = 40
    values = rng.normal(scale=10, size=n).round(2)
    values[0] = 1.5  # a fraction that is not three digits
    text = [f"{v:.2f}".replace(".", ",") for v in values]
    with (tmp_path / "d.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter=sep, quoting=csv.QUOTE_NONNUMERIC)
        writer.writerow(["x", "y"])
        writer.writerows(zip(text, rng.choice(["p", "q"], n), strict=True))
    column = read_table(tmp_path / "d.csv")["x"]
    reference = pd.read_csv(tmp_path / "d.csv", sep=sep, decimal=",")["x"].to_numpy()
    assert column.kind == "number"
    np.testing.assert_allclose(column.values, reference, rtol=1e-6)


def test_numbers_with_thousands_separators_are_said_to_be_text(tmp_path, rng, capsys):
    n = 60
    income = rng.integers(20, 30, n) * 1000 + rng.integers(0, 3, n) * 500.25  # repeats
    pd.DataFrame(
        {"income": [f"{v:,.2f}" for v in income], "y": rng.choice(["hi", "lo"], n)}
    ).to_csv(tmp_path / "i.csv", index=False)
    _, err = trained(capsys, tmp_path / "i.csv", "--target", "y")
    assert "'income' is read as text" in err and "thousands separators" in err


def test_a_dot_in_a_decimal_comma_file_is_never_a_decimal_point(tmp_path, rng, capsys):
    # '1.065' beside '12,5' and '520' was read as 1.065 (the file writes 1065)
    n = 30
    big = rng.integers(1000, 2000, n)
    small = rng.integers(100, 999, n)
    proline = [f"{b // 1000}.{b % 1000:03d}" if k % 2 else str(s) for k, (b, s) in
               enumerate(zip(big, small, strict=True))]  # fmt: skip
    alcohol = [f"{v:.2f}".replace(".", ",") for v in rng.uniform(11, 15, n)]
    lines = ["alcohol;proline;y"] + [
        f"{a};{p};{c}" for a, p, c in zip(alcohol, proline, rng.choice(["a", "b"], n), strict=True)
    ]
    (tmp_path / "w.csv").write_text("\n".join(lines) + "\n")
    table = read_table(tmp_path / "w.csv")
    assert table["alcohol"].kind == "number"
    assert table["proline"].kind == "text"  # not numbers with the dotted ones a thousand times off
    _, err = trained(capsys, tmp_path / "w.csv", "--target", "y")
    assert "'proline' is read as text" in err and "thousands separators" in err


def test_band_labels_with_underscores_stay_categories(tmp_path, rng):
    bands = ["18_24", "25_34", "35_44", "45_54"]
    n = 40
    pd.DataFrame({"age": rng.choice(bands, n), "y": rng.normal(size=n)}).to_csv(
        tmp_path / "b.csv", index=False
    )
    model_input = wxb.read_table(tmp_path / "b.csv")
    from wxb.prepare import training_table

    data = training_table(model_input, ["y"])
    assert data.table["age"].kind == "text"
    assert set(data.table["age"].values) <= set(bands)


def test_none_and_na_are_words_as_pandas_reads_them(tmp_path, rng):
    n = 30
    heating = rng.choice(["none", "gas", "na"], n)
    pd.DataFrame({"heating": heating, "y": rng.normal(size=n)}).to_csv(
        tmp_path / "h.csv", index=False
    )
    ours = read_table(tmp_path / "h.csv")["heating"]
    theirs = pd.read_csv(tmp_path / "h.csv")["heating"]
    assert theirs.notna().all()
    assert list(ours.values) == list(theirs)


def test_onnx_of_a_numbers_only_model_treats_its_markers_as_gaps(tmp_path, rng, capsys):
    ort = pytest.importorskip("onnxruntime")
    n = 80
    a, b = rng.normal(5, 1, n).round(3), rng.normal(0, 2, n).round(3)
    frame = pd.DataFrame({"a": a, "b": b, "y": (2 * a - b).round(3)})
    frame.to_csv(tmp_path / "m.csv", index=False)
    model, _ = trained(capsys, tmp_path / "m.csv", "--target", "y", "--na-values", "-999")
    new = pd.DataFrame({"a": [-999.0, rng.normal()], "b": [rng.normal(), -999.0]})
    new.to_csv(tmp_path / "n.csv", index=False)
    ours = predicted(capsys, model, tmp_path / "n.csv").prediction.to_numpy()
    code, _, err = run(capsys, "export", model, "-o", tmp_path / "m.onnx")
    assert code == 0, err
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    theirs = session.run(None, {"input": new.to_numpy(np.float32)})[0].ravel()
    np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-5)


def test_a_marker_float32_cannot_hold_is_a_gap_in_parquet_as_in_csv(tmp_path, rng, capsys):
    pytest.importorskip("pyarrow")
    n = 80
    a = rng.normal(5, 1, n).round(3)
    a[rng.choice(n, 8, replace=False)] = -999.9
    b = rng.normal(size=n).round(3)
    frame = pd.DataFrame({"a": a, "b": b, "y": (a.clip(0) + b).round(3)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    model, _ = trained(capsys, tmp_path / "t.csv", "--target", "y", "--na-values", "-999.9")
    new = pd.DataFrame({"a": [-999.9, 4.0], "b": [0.5, -0.5]})
    new.to_csv(tmp_path / "n.csv", index=False)
    new.to_parquet(tmp_path / "n.parquet")
    from_csv = predicted(capsys, model, tmp_path / "n.csv").prediction
    from_parquet = predicted(capsys, model, tmp_path / "n.parquet").prediction
    pd.testing.assert_series_equal(from_parquet, from_csv)


def test_blank_lines_before_a_padded_header_are_not_rows(tmp_path, rng):
    n = int(rng.integers(2, 9))
    colours = rng.choice(["red", "blue"], n)
    body = "".join(f"{i}, {c}\n" for i, c in enumerate(colours))
    (tmp_path / "p.csv").write_text("\n" * int(rng.integers(1, 4)) + "id, color\n" + body)
    table = read_table(tmp_path / "p.csv")
    assert table.names == ["id", "color"] and table.n_rows == n
    assert list(table["color"].values) == list(colours)


def test_uint64_beyond_int64_reads_as_its_value(tmp_path, rng):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    values = (rng.integers(0, 2**62, 20, dtype=np.uint64) + np.uint64(2**63)).astype(np.uint64)
    pq.write_table(pa.table({"u": values}), tmp_path / "u.parquet")
    np.testing.assert_array_equal(
        read_table(tmp_path / "u.parquet")["u"].values, values.astype(float)
    )


def test_an_array_is_taken_by_position_even_when_the_models_names_are_x1_x0(tmp_path, rng, capsys):
    n = 60
    a, b = rng.normal(size=n).round(4), rng.normal(size=n).round(4)
    pd.DataFrame({"x1": a, "x0": b, "y": (3 * a - b).round(4)}).to_csv(
        tmp_path / "x.csv", index=False
    )
    model, _ = trained(capsys, tmp_path / "x.csv", "--target", "y")
    rows = rng.normal(size=(3, 2)).round(3)
    np.save(tmp_path / "x.npy", rows)
    pd.DataFrame(rows, columns=["x1", "x0"]).to_csv(tmp_path / "n.csv", index=False)
    by_name = predicted(capsys, model, tmp_path / "n.csv").prediction
    by_position = predicted(capsys, model, tmp_path / "x.npy").prediction
    pd.testing.assert_series_equal(by_position, by_name)


def test_a_number_beyond_float32_says_float64_reads_it(tmp_path, rng, capsys):
    n = 20
    x = rng.normal(size=n).round(3).astype(object)
    x[int(rng.integers(n))] = "1e39"
    pd.DataFrame({"x": x, "y": rng.normal(size=n).round(3)}).to_csv(tmp_path / "f.csv", index=False)
    code, _, err = run(capsys, "train", "--data", tmp_path / "f.csv", "--target", "y", *FAST)
    assert code == 2 and re.search(r"beyond float32's range.*--dtype float64", err), err
    trained(capsys, tmp_path / "f.csv", "--target", "y", "--dtype", "float64")


@pytest.mark.parametrize("form", ["%d/%m/%Y", "%m-%d-%y", "%d.%m.%Y", "%Y/%m/%d %H:%M"])
def test_dates_the_reader_leaves_as_text_are_refused_as_iso_dates_are(tmp_path, rng, capsys, form):
    # they became one-hot categories: a date not seen in training was all zeros
    n = 40
    days = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 9, n), unit="D")
    frame = pd.DataFrame({"when": days.strftime(form), "x": rng.normal(size=n).round(3)})
    frame["y"] = rng.choice(["a", "b"], n)
    frame.to_csv(tmp_path / "d.csv", index=False)
    code, _, err = run(capsys, "train", "--data", tmp_path / "d.csv", "--target", "y", *FAST)
    assert code == 2 and err.count("\n") == 1, err
    assert "column 'when' holds dates" in err and "--drop when" in err
    frame["when"] = rng.choice(["1.10.12", "2.0.1", "1.9.3"], n)  # versions are no dates
    frame.to_csv(tmp_path / "v.csv", index=False)
    trained(capsys, tmp_path / "v.csv", "--target", "y")


@pytest.mark.parametrize("form", ["%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y-%m-%d"])
def test_one_date_a_row_is_refused_as_dates_not_left_out_as_an_identifier(
    tmp_path, rng, capsys, form
):
    # a daily series: text dates unique per row were taken for a row identifier and
    # left out with a warning, where ISO dates (and dates that repeat) stop in one line
    n = 40
    days = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.permutation(n), unit="D")
    frame = pd.DataFrame({"when": days.strftime(form), "x": rng.normal(size=n).round(3)})
    frame["y"] = rng.choice(["a", "b"], n)
    frame.to_csv(tmp_path / "d.csv", index=False)
    code, _, err = run(capsys, "train", "--data", tmp_path / "d.csv", "--target", "y", *FAST)
    assert code == 2 and err.count("\n") == 1, err
    assert "column 'when' holds dates" in err and "identifier" not in err
    trained(capsys, tmp_path / "d.csv", "--target", "y", "--drop", "when")


@pytest.mark.parametrize("sep", [";", "\t"])
def test_text_with_commas_beside_decimal_points_does_not_make_a_decimal_comma_file(
    tmp_path, rng, sep
):
    n = 30
    x = rng.normal(size=n).round(2)
    ranges = [f"{a},{a * 2}" for a in rng.integers(5, 50, n)]  # text such as '10,20'
    with (tmp_path / "r.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter=sep, quoting=csv.QUOTE_NONNUMERIC)
        writer.writerow(["x", "range"])
        writer.writerows(zip(x, ranges, strict=True))
    table = read_table(tmp_path / "r.csv")
    reference = pd.read_csv(tmp_path / "r.csv", sep=sep)
    assert table["x"].kind == "number" and table["range"].kind == "text"
    np.testing.assert_allclose(table["x"].values, reference["x"].to_numpy(), rtol=1e-6)
    assert list(table["range"].values) == list(reference["range"])


def test_a_model_file_from_before_keeps_none_and_na_as_gaps(tmp_path, rng, capsys):
    # the defaults lost 'none' and 'na'; a model trained with them must read files as it was
    n = 80
    colour = rng.choice(["red", "blue", "green"], n).astype(object)
    colour[rng.choice(n, 6, replace=False)] = None
    x = rng.normal(size=n).round(3)
    frame = pd.DataFrame({"colour": colour, "x": x, "y": (x > 0).astype(int)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    model_path, _ = trained(capsys, tmp_path / "t.csv", "--target", "y")
    model = wxb.load(model_path)
    del model.info["table"]["always_na_values"]  # as files written before it was recorded
    wxb.save(model, tmp_path / "old.safetensors")
    rows = pd.DataFrame({"colour": ["none", "red", "na"], "x": rng.normal(size=3).round(3)})
    rows.to_csv(tmp_path / "words.csv", index=False)
    rows.assign(colour=["", "red", ""]).to_csv(tmp_path / "gaps.csv", index=False)
    old = tmp_path / "old.safetensors"
    pd.testing.assert_frame_equal(
        predicted(capsys, old, tmp_path / "words.csv", "--proba"),
        predicted(capsys, old, tmp_path / "gaps.csv", "--proba"),
    )
    new_words = predicted(capsys, model_path, tmp_path / "words.csv", "--proba")
    new_gaps = predicted(capsys, model_path, tmp_path / "gaps.csv", "--proba")
    assert not new_words.iloc[[0, 2]].equals(new_gaps.iloc[[0, 2]])  # words now: unseen


def test_predict_refuses_what_training_would_not_read_as_a_number(tmp_path, rng, capsys):
    n = 40
    frame = pd.DataFrame({"age": rng.integers(18, 80, n), "y": rng.normal(size=n).round(3)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    model_path, _ = trained(capsys, tmp_path / "t.csv", "--target", "y")
    pd.DataFrame({"age": ["18_24", "30"]}).to_csv(tmp_path / "n.csv", index=False)
    code, _, err = run(capsys, "predict", model_path, tmp_path / "n.csv")
    assert code == 2 and "'18_24' is text; the model reads numbers there" in err, err
    with pytest.raises(wxb.DataError, match="'18_24' is text"):
        wxb.load(model_path).predict(pd.DataFrame({"age": ["18_24", "30"]}))


def test_a_dict_of_columns_reads_a_models_text_column_as_a_dataframe_does(tmp_path, rng, capsys):
    n = 100
    size = rng.choice(["5", "5.0", "S", "M"], n)
    frame = pd.DataFrame({"size": size, "w": rng.normal(size=n).round(2)})
    frame["y"] = np.where(np.isin(size, ["5", "S"]), "a", "b")
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = wxb.load(trained(capsys, tmp_path / "t.csv", "--target", "y")[0])
    cells = {"size": list(rng.choice(["5", "5.0"], 4)), "w": list(rng.normal(size=4).round(2))}
    np.testing.assert_array_equal(model.predict(cells), model.predict(pd.DataFrame(cells)))


def test_uint64_with_a_gap_beyond_2_to_the_53_reads(tmp_path, rng):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    big = int(rng.integers(2**60, 2**63))
    pq.write_table(pa.table({"u": pa.array([big, None, 5], pa.uint64())}), tmp_path / "u.parquet")
    values = read_table(tmp_path / "u.parquet")["u"].values
    np.testing.assert_array_equal(values[[0, 2]], [float(big), 5.0])
    assert np.isnan(values[1])


@pytest.mark.parametrize("word", ["n.a.", "k.A.", "s.o."])
def test_a_dotted_word_in_a_decimal_comma_file_is_offered_as_a_missing_marker(
    tmp_path, rng, capsys, word
):
    # the hint said a '.' is a thousands separator there: 'remove the separators'
    n = 40
    values = rng.uniform(0.5, 1.5, n).round(2)
    text = ["x;hue;label"] + [
        f"{i};{str(v).replace('.', ',')};{'ab'[i % 2]}" for i, v in enumerate(values)
    ]
    row = int(rng.integers(1, n))
    text[row + 1] = f"{row};{word};{'ab'[row % 2]}"
    (tmp_path / "t.csv").write_text("\n".join(text) + "\n")
    code, _, err = run(capsys, "train", "--data", tmp_path / "t.csv", "--target", "label",
                       "--epochs", "1", "-q", "-o", tmp_path / "m.safetensors")  # fmt: skip
    assert code == 2
    assert f"line {row + 2}, column 'hue'" in err and f"add --na-values {word!r}" in err
    assert "thousands" not in err
    # digits with dots in such a file are still taken for grouped thousands
    text[row + 1] = f"{row};1.234,5;{'ab'[row % 2]}"
    (tmp_path / "t.csv").write_text("\n".join(text) + "\n")
    code, _, err = run(capsys, "train", "--data", tmp_path / "t.csv", "--target", "label",
                       "--epochs", "1", "-q", "-o", tmp_path / "m.safetensors")  # fmt: skip
    assert code == 2 and "thousands separator" in err


@pytest.mark.parametrize("spelling", [("True", "False"), ("true", "false")])
def test_a_boolean_in_any_form_meets_the_models_categories_true_and_false(
    tmp_path, rng, capsys, spelling
):
    # a text column of True/False beside other words. A bool DataFrame or Parquet column
    # reached the categories 'True'/'False' as 'true'/'false'; a CSV that pandas wrote
    # from a bool column ('True'/'False' text) missed the categories 'true'/'false':
    # every row unseen, in wxb and in the ONNX export
    yes, no = spelling
    n = 90
    answer = rng.choice([yes, no, "other"], n)
    y = np.where(answer == yes, "yes", "no")
    frame = pd.DataFrame({"answer": answer, "x": rng.normal(size=n).round(3), "y": y})
    frame.to_csv(tmp_path / "t.csv", index=False)
    model_path, _ = trained(capsys, tmp_path / "t.csv", "--target", "y")
    truth = rng.choice([True, False], 6)
    x = rng.normal(size=6).round(3)
    own = pd.DataFrame({"answer": np.where(truth, yes, no), "x": x})  # the model's spelling
    own.to_csv(tmp_path / "own.csv", index=False)
    want = predicted(capsys, model_path, tmp_path / "own.csv", "--proba")
    booleans = pd.DataFrame({"answer": truth, "x": x})
    booleans.to_csv(tmp_path / "bool.csv", index=False)  # pandas writes True/False
    pd.testing.assert_frame_equal(
        predicted(capsys, model_path, tmp_path / "bool.csv", "--proba"), want
    )
    model = wxb.load(model_path)
    texts = pd.DataFrame({"answer": [str(v) for v in truth], "x": x})
    for rows in (booleans, texts):
        np.testing.assert_array_equal(model.predict(rows), model.predict(own))
    pytest.importorskip("pyarrow")
    booleans.to_parquet(tmp_path / "bool.parquet")
    pd.testing.assert_frame_equal(
        predicted(capsys, model_path, tmp_path / "bool.parquet", "--proba"), want
    )
    feeds = {
        "answer": texts.answer.to_numpy(object).reshape(-1, 1),
        "x": x.astype(np.float32).reshape(-1, 1),
    }
    probabilities = onnx_probabilities(capsys, model_path, tmp_path, feeds)
    np.testing.assert_allclose(probabilities, want[["p_no", "p_yes"]].to_numpy(), atol=1e-5)


def test_a_decimal_column_meets_a_models_number_categories_as_the_numbers_it_holds(
    tmp_path, rng, capsys
):
    # Parquet decimal128(6, 2) cells became the text '1.50', which no category '1.5'
    # matched: every row unseen, one constant prediction; float16 0.1 missed '0.1' so
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from decimal import Decimal

    n = 120
    size = rng.choice(["0.1", "1.5", "2", "x"], n)  # 'x': the column is text
    y = np.select([size == "0.1", size == "1.5", size == "2"], [-10.0, 10.0, 20.0], 0.0)
    frame = pd.DataFrame({"size": size, "b": rng.normal(size=n).round(3), "y": y})
    frame.to_csv(tmp_path / "t.csv", index=False)
    model_path, _ = trained(capsys, tmp_path / "t.csv", "--target", "y")
    values = rng.choice(["0.1", "1.5", "2"], 8)
    b = rng.normal(size=8).round(3)
    pd.DataFrame({"size": values, "b": b}).to_csv(tmp_path / "p.csv", index=False)
    want = predicted(capsys, model_path, tmp_path / "p.csv")
    decimals = pa.array([Decimal(v) for v in values], pa.decimal128(6, 2))
    halves = pa.array(values.astype(np.float16))  # float16 0.1 is 0.0999755859375 in float64
    for cells in (decimals, halves):
        pq.write_table(pa.table({"size": cells, "b": b}), tmp_path / "p.parquet")
        pd.testing.assert_frame_equal(predicted(capsys, model_path, tmp_path / "p.parquet"), want)
