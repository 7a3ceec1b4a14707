"""The same rows give the same inputs whichever way they enter wxb (a hunt of the Python
API's tables against the command line's files), and what a model reads is read the
same way by the models saved before. Expected values come from the data or pandas."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_run import FAST, predicted, run, trained

import wxb
from wxb import columns
from wxb.columns import rows_for_model
from wxb.errors import DataError
from wxb.nn import Dense, Module, Sequential


def test_a_missing_marker_number_is_a_gap_in_a_column_that_also_holds_words(tmp_path, rng, capsys):
    n = 60
    frame = pd.DataFrame({"a": rng.normal(size=n).round(3), "y": rng.choice(["p", "q"], n)})
    frame.loc[:4, "a"] = -999  # the file's own gap marker
    frame.to_csv(tmp_path / "train.csv", index=False)
    model = trained(capsys, tmp_path / "train.csv", "--target", "y", "--na-values=-999,n.a.")
    info = wxb.load(model).info
    new = pd.DataFrame({"a": ["-999.0", " n.a.", "0.5"]})  # " n.a." keeps the column text
    for rows in (new, {"a": list(new["a"])}):
        X = rows_for_model(info, rows, np.float64)  # as model.predict reads them
        np.testing.assert_array_equal(X[:, 1], [1, 1, 0])  # 'a missing' for -999 and n.a.
    new.to_csv(tmp_path / "new.csv", index=False)
    code, out, err = run(capsys, "predict", model, tmp_path / "new.csv", "--proba")
    assert code == 0, err
    rows = pd.read_csv(io.StringIO(out))
    np.testing.assert_allclose(rows.iloc[0, 1:].to_numpy(float), rows.iloc[1, 1:].to_numpy(float))


def test_a_boolean_column_takes_no_other_number(tmp_path, rng, capsys):
    n = 40
    frame = pd.DataFrame({"flag": rng.choice([True, False], n), "y": rng.choice(["p", "q"], n)})
    frame.to_csv(tmp_path / "train.csv", index=False)
    model = trained(capsys, tmp_path / "train.csv", "--target", "y")
    pd.DataFrame({"flag": [1, 0, 2]}).to_csv(tmp_path / "new.csv", index=False)
    code, _, err = run(capsys, "predict", model, tmp_path / "new.csv")
    assert code == 2 and "line 4" in err and "'flag'" in err and "true/false or 0/1" in err


def test_a_dict_reads_as_a_dataframe_does(tmp_path, rng, capsys):
    n = 40
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    frame["y"] = rng.choice(["p", "q"], n)
    frame.to_csv(tmp_path / "train.csv", index=False)
    network = wxb.load(trained(capsys, tmp_path / "train.csv", "--target", "y"))
    rows = {" a": [0.5, 1.5], " b": [1.0, -1.0], "junk": [np.inf, np.inf]}  # spaced names
    expected = network.predict(pd.DataFrame({"a": [0.5, 1.5], "b": [1.0, -1.0]}))
    np.testing.assert_array_equal(network.predict(rows), expected)
    with pytest.raises(DataError, match="'1_000' is text"):
        network.predict({"a": ["1_000", "2"], "b": [1.0, 2.0]})  # float() would take it


def test_a_table_wxb_read_predicts_as_the_file(tmp_path, rng, capsys):
    n = 40
    frame = pd.DataFrame({"a": rng.normal(size=n), "c": rng.choice(["u", "v"], n)})
    frame["y"] = rng.choice(["p", "q"], n)
    frame.to_csv(tmp_path / "train.csv", index=False)
    network = wxb.load(trained(capsys, tmp_path / "train.csv", "--target", "y"))
    np.testing.assert_array_equal(
        network.predict(wxb.read_table(tmp_path / "train.csv")), network.predict(frame)
    )


def test_a_table_wxb_read_without_the_models_markers_predicts_as_the_file(tmp_path, rng, capsys):
    number, word = f"-{rng.integers(100, 1000)}", f"gap{rng.integers(10**6)}"  # --na-values
    n = 120
    frame = pd.DataFrame({
        "a": rng.normal(size=n).round(3).astype(object), "c": rng.choice(["u", "v", "w"], n),
        "b": rng.choice(["true", "false"], n), "y": rng.choice(["p", "q"], n),
    })  # fmt: skip
    for name in ("a", "c", "b"):  # gaps of both markers in every column: indicators
        frame.loc[rng.choice(n, 10, replace=False), name] = rng.choice([number, word], 10)
    frame.to_csv(tmp_path / "train.csv", index=False)
    model = trained(capsys, tmp_path / "train.csv", "--target", "y", f"--na-values={number},{word}")
    network = wxb.load(model)
    m = 12
    new = pd.DataFrame({
        "a": rng.normal(size=m).round(3).astype(object), "c": rng.choice(["u", "v", "w"], m),
        "b": rng.choice(["true", "false"], m),
    })  # fmt: skip
    gaps = rng.permutation(m)
    new.loc[gaps[:2], "c"], new.loc[gaps[2:4], "c"] = number, word  # silently unseen before
    new.loc[gaps[4:6], "a"] = [number, f"{number}.0"]
    words = new.copy()  # a word in a number or boolean column: refused before
    words.loc[gaps[6], "a"], words.loc[gaps[7], "b"] = word, word
    for name, rows in (("numbers.csv", new), ("words.csv", words)):
        rows.to_csv(tmp_path / name, index=False)
        file = predicted(capsys, model, tmp_path / name, "--proba").iloc[:, 1:].to_numpy(float)
        pandas = pd.read_csv(tmp_path / name, na_values=[number, word], dtype={"c": str})
        expected = network.predict(pandas)  # the markers as NaN: pandas' reading
        got = network.predict(wxb.read_table(tmp_path / name))  # read without the markers
        np.testing.assert_array_equal(got, expected)
        proba = np.exp(got - got.max(axis=1, keepdims=True))
        np.testing.assert_allclose(proba / proba.sum(axis=1, keepdims=True), file, atol=1e-6)
    # explain says a marker cell is missing, as the numbers it shows are the fill's
    table = wxb.read_table(tmp_path / "numbers.csv")
    encoder = columns.model_encoder(network.info, table)
    for row, name in [*((r, "c") for r in gaps[:4]), *((r, "a") for r in gaps[4:6])]:
        lines = columns.explain_row(encoder, table, int(row))
        (line,) = [x for x in lines if x.startswith(f"{name} = ")]
        assert line.startswith(f"{name} = {columns.MISSING}") and "(missing: the" in line, line


def test_pandas_index_in_a_pyarrow_table_is_not_a_column(tmp_path, rng, capsys):
    n = 40
    frame = pd.DataFrame({"a": rng.normal(size=n), "y": rng.choice(["p", "q"], n)})
    frame.to_csv(tmp_path / "train.csv", index=False)
    network = wxb.load(trained(capsys, tmp_path / "train.csv", "--target", "y"))
    frame.drop(columns="y").sample(n, random_state=1).to_parquet(tmp_path / "x.parquet")
    arrow = pq.read_table(tmp_path / "x.parquet")
    assert "__index_level_0__" in arrow.column_names
    assert "__index_level_0__" not in wxb.read_table(arrow).names
    network.predict(arrow)  # reads 'a' only


def test_integers_past_64_bits_in_a_dataframe_are_one_line(rng):
    network = Sequential(Dense(1, 2, seed=int(rng.integers(1000))))
    network.info["feature_names"] = ["a"]
    frame = pd.DataFrame({"a": [10**19 + 1, 5]}, dtype=object)
    with pytest.raises(DataError, match="too large for 64 bits"):
        wxb.read_table(frame)
    del network


def test_a_price_written_with_leading_zeros_is_a_number_target(tmp_path, rng, capsys):
    n = 80
    x = rng.normal(size=n).round(3)
    price = [f"{10 + 2 * v:07.2f}" for v in x]  # '0010.31': padded, not a code
    pd.DataFrame({"x": x, "price": price}).to_csv(tmp_path / "p.csv", index=False)
    code, out, err = run(capsys, "train", "--data", tmp_path / "p.csv", "--target", "price",
                         *FAST, "-o", tmp_path / "m.safetensors")  # fmt: skip
    assert code == 0, err
    assert "regression" in out and wxb.load(tmp_path / "m.safetensors").info["task"] == "regression"


def test_a_thousands_dot_in_a_decimal_comma_target_is_not_a_decimal_point(tmp_path, rng):
    n = 40
    whole = rng.integers(1, 9, n)
    cells = [f"{w}.{rng.integers(100, 999)}" for w in whole]  # 1.234 = one thousand …
    lines = ["x;price"] + [f"{i},5;{c}" for i, c in enumerate(cells)]
    (tmp_path / "eu.csv").write_text("\n".join(lines) + "\n")
    table = wxb.read_table(tmp_path / "eu.csv", targets=["price"])
    assert table.decimal == "," and table["price"].kind == "text"


def test_a_decimal_mark_that_is_the_separator_is_refused(tmp_path, rng, capsys):
    pd.DataFrame({"a": rng.normal(size=20), "y": rng.normal(size=20)}).to_csv(
        tmp_path / "d.csv", index=False
    )
    code, _, err = run(capsys, "train", "--data", tmp_path / "d.csv", "--target", "y",
                       "--decimal", ",", *FAST)  # fmt: skip
    assert code == 2 and "separator" in err and err.count("\n") == 1


def test_whole_number_classes_read_as_numbers_where_the_model_has_them(tmp_path, rng, capsys):
    n = 90
    y = rng.integers(1, 4, n)
    x = y + rng.normal(scale=0.1, size=n)
    pd.DataFrame({"x": x.round(3), "y": y}).to_csv(tmp_path / "t.csv", index=False)
    model = trained(capsys, tmp_path / "t.csv", "--target", "y")
    assert wxb.load(model).info["classes"] == [1, 2, 3]
    # the same classes written '01', '02', '03' in another file: the model's numbers
    pd.DataFrame({"x": x.round(3), "y": [f"{v:02d}" for v in y]}).to_csv(
        tmp_path / "e.csv", index=False
    )
    code, _, err = run(capsys, "eval", model, tmp_path / "e.csv")
    assert code == 0, err


def test_predict_does_not_read_the_target_column(tmp_path, rng, capsys):
    n = 40
    frame = pd.DataFrame({"a": rng.normal(size=n).round(3), "y": rng.normal(size=n).round(3)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = trained(capsys, tmp_path / "t.csv", "--target", "y")
    frame["y"] = frame["y"].astype(object)
    frame.loc[3, "y"] = "inf"
    frame.to_csv(tmp_path / "new.csv", index=False)
    code, out, err = run(capsys, "predict", model, tmp_path / "new.csv")
    assert code == 0, err
    assert len(pd.read_csv(io.StringIO(out))) == n


class _Gain(Module):
    """A module of one's own: a Sequential and a learnt gain."""

    def __init__(self):
        super().__init__()
        self.body = Sequential(Dense(3, 4), Dense(4, 2))
        self.gain = wxb.nn.Parameter(np.ones(2, dtype=np.float32))

    def forward(self, x):
        return self.body(x) * self.gain


def test_a_report_of_a_module_of_ones_own_is_written(tmp_path):
    wxb.report(_Gain(), path=tmp_path / "r.html", floor=False)
    page = (tmp_path / "r.html").read_text()
    assert "forward of its own" in page and "data-kind='architecture'" in page


def test_validation_split_scores_as_evaluate_does(rng):
    # every row: x = 0, y = 1e8 + 3; the model says 1e8 (a float32 holds it). float32
    # rounds the target to 1e8 (a step of 8), which would make the loss 0; it is ½·3²
    n = int(rng.integers(40, 80))
    X = np.zeros((n, 1), dtype=np.float32)
    y = np.full(n, 1e8 + 3)
    model = Sequential(Dense(1, 1))
    model[0].bias.data[:] = 1e8
    split = wxb.fit(model, X, y, loss="mse", epochs=1, lr=1e-12, validation_split=0.25)
    assert split.history["val_loss"][-1] == 4.5
    assert wxb.evaluate(model, X, y, "mse")["loss"] == 4.5


def test_hexadecimal_class_labels_stay_as_written_through_eval(tmp_path, rng, capsys):
    n = 60
    labels = rng.choice(["0x1F", "0x20"], n)
    x = (labels == "0x20") + rng.normal(scale=0.1, size=n)
    pd.DataFrame({"x": x.round(3), "code": labels}).to_csv(tmp_path / "h.csv", index=False)
    model = trained(capsys, tmp_path / "h.csv", "--target", "code")
    assert sorted(wxb.load(model).info["classes"]) == ["0x1F", "0x20"]
    code, _, err = run(capsys, "eval", model, tmp_path / "h.csv")
    assert code == 0, err


def test_predict_reads_no_text_target_either(tmp_path, rng, capsys):
    n = 40
    frame = pd.DataFrame({"a": rng.normal(size=n).round(3), "y": rng.choice(["p", "q"], n)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = trained(capsys, tmp_path / "t.csv", "--target", "y")
    lines = ["a,y"] + [f"{v},caf\xe9" for v in frame["a"]]  # a byte that is not UTF-8
    (tmp_path / "new.csv").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    code, _, err = run(capsys, "predict", model, tmp_path / "new.csv")
    assert code == 0, err


def test_a_thousands_dot_in_a_regression_target_is_refused(tmp_path, rng, capsys):
    n = 30
    cells = [f"{int(v)}" for v in rng.integers(100, 999, n)]
    for row in range(0, n, 3):  # a third of them past a thousand, grouped with a dot
        cells[row] = f"1.{int(rng.integers(100, 999))}"
    cells[0] = "1.103"
    lines = ["a;price"] + [f"{i},5;{c}" for i, c in enumerate(cells)]
    (tmp_path / "eu.csv").write_text("\n".join(lines) + "\n")
    code, _, err = run(capsys, "train", "--data", tmp_path / "eu.csv", "--target", "price",
                       "--task", "regression", *FAST)  # fmt: skip
    assert code == 2 and "'1.103' is a number written with thousands separators" in err, err


def test_scores_just_short_of_one_are_not_printed_as_one(rng):
    from wxb.metrics import figure_text

    for value in (0.9999999999999998, 0.999996, -0.99999999, 1 - rng.uniform(1e-12, 1e-5)):
        assert float(figure_text(value)) == value or abs(float(figure_text(value))) < 1
    assert figure_text(1.0) == "1.0000"


def test_a_pyarrow_record_batch_reads_as_its_table():
    batch = pa.RecordBatch.from_pydict({"a": [1.5, 2.5], "c": ["u", "v"]})
    table = wxb.read_table(batch)
    assert table.names == ["a", "c"] and list(table["c"].values) == ["u", "v"]


def _net(rng, inputs: int = 2, outputs: int = 2) -> Sequential:
    return Sequential(Dense(inputs, outputs, seed=int(rng.integers(2**31)))).to("float64")


def test_text_labels_of_pandas_string_dtype_are_refused_not_parsed(rng):
    X = rng.normal(size=(6, 2))
    labels = pd.Series(["0", "00", "1", "0", "00", "1"], dtype="string")  # '0', '00': two
    with pytest.raises(DataError, match="class labels"):
        wxb.fit(_net(rng), X, labels, epochs=1)


def test_one_hot_targets_in_another_order_are_refused(rng):
    n = 30
    X = rng.normal(size=(n, 2))
    Y = pd.get_dummies(pd.Series(rng.choice(["hi", "lo", "mid"], n))).astype(float)
    model = _net(rng, 2, 3)
    wxb.fit(model, X, Y, epochs=1)
    assert model.info["classes"] == ["hi", "lo", "mid"]
    for call in (
        lambda: wxb.fit(model, X, Y[["mid", "hi", "lo"]], epochs=1),
        lambda: wxb.evaluate(model, X, Y[["mid", "hi", "lo"]]),
    ):
        with pytest.raises(DataError, match="another order"):
            call()
    assert model.info["classes"] == ["hi", "lo", "mid"]


def test_hexadecimal_text_in_a_number_column_is_refused_from_python(rng):
    frame = pd.DataFrame({"code": ["0x1F", "0x20", "0x2A"], "x": rng.normal(size=3)})
    with pytest.raises(DataError, match="'0x1F' is text"):
        wxb.fit(_net(rng), frame, np.array([0, 1, 0]), epochs=1)


def test_column_names_are_recorded_as_the_reader_names_them(rng):
    n = 12
    frame = pd.DataFrame({" a": rng.normal(size=n), "b ": rng.normal(size=n)})
    y = rng.integers(0, 2, n)
    model = _net(rng)
    wxb.fit(model, frame, y, epochs=1)
    assert model.info["feature_names"] == ["a", "b"]
    model.predict(frame)  # the same DataFrame, spaces and all
    shuffled = frame.rename(columns=str.strip).sample(n, random_state=0)
    arrow = pa.Table.from_pandas(shuffled)  # carries '__index_level_0__'
    model2 = _net(rng)
    wxb.fit(model2, arrow, y, epochs=1)
    assert model2.info["feature_names"] == ["a", "b"]
    model2.predict(arrow)


def test_models_from_before_codes_were_text_still_read_their_files(tmp_path, rng, capsys):
    # before, pyarrow read '0x1F' as 31: such a model's classes and number columns are the
    # numbers; its own files must still evaluate, explain and predict
    n = 60
    y = rng.choice([31, 42], n)
    x = (y == 42) + rng.normal(scale=0.1, size=n)
    pd.DataFrame({"x": x.round(3), "code": rng.choice([31, 32], n), "y": y}).to_csv(
        tmp_path / "t.csv", index=False
    )
    model = trained(capsys, tmp_path / "t.csv", "--target", "y", "--features", "x,code")
    assert wxb.load(model).info["classes"] == [31, 42]
    hexed = pd.DataFrame({"x": x.round(3), "code": rng.choice(["0x1F", "0x20"], n)})
    hexed["y"] = ["0x1F" if v == 31 else "0x2A" for v in y]
    hexed.to_csv(tmp_path / "h.csv", index=False)
    for command in (("eval", model, tmp_path / "h.csv"), ("predict", model, tmp_path / "h.csv"),
                    ("explain", model, "--data", tmp_path / "h.csv")):  # fmt: skip
        code, _, err = run(capsys, *command)
        assert code == 0, (command, err)


@pytest.mark.parametrize("loss,outputs", [("cross_entropy", 2), ("bce_with_logits", 1)])
def test_a_boolean_target_fitted_in_python_is_evaluated_by_the_cli(
    tmp_path, rng, capsys, loss, outputs
):
    n = 40
    X = pd.DataFrame({"a": rng.normal(size=n).round(3)})
    churn = pd.Series(X["a"] + rng.normal(scale=0.5, size=n) > 0, name="churn")
    model = _net(rng, 1, outputs)
    wxb.fit(model, X, churn.astype(float).to_frame() if outputs == 1 else churn, loss=loss,
            epochs=3)  # fmt: skip
    if outputs == 1:  # one logit: the same target as booleans, recorded again
        wxb.fit(model, X, churn.to_frame(), loss=loss, epochs=1)
    assert model.info["classes"] == ["False", "True"]
    wxb.save(model, tmp_path / "m.safetensors")
    X.assign(churn=churn).to_csv(tmp_path / "rows.csv", index=False)
    code, out, err = run(capsys, "eval", tmp_path / "m.safetensors", tmp_path / "rows.csv")
    assert code == 0, err
    expected = wxb.evaluate(model, X, churn.to_frame() if outputs == 1 else churn, loss=loss)
    assert f"accuracy {expected['accuracy']:.4f}" in out
