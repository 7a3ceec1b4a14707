"""ONNX export of a model with a table stage: one input per raw column, encoded in the
graph as ``TableEncoder.transform`` encodes it (NaN or "" marking a missing cell).

Tables, networks and sizes are drawn fresh on each run (the seed is printed;
WXB_TEST_SEED=<seed> replays a failure).
"""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pyarrow as pa
import pytest

import wxb
from wxb.columns import ColumnRule, TableEncoder
from wxb.errors import ConfigError
from wxb.nn import Dense, Identity, ReLU, Sequential, Standardize, Tanh
from wxb.onnx import export
from wxb.tables import Reading, from_object

TOLERANCE = {"float32": 1e-5, "float64": 1e-10}
ELEM_TYPES = {"float32": onnx.TensorProto.FLOAT, "float64": onnx.TensorProto.DOUBLE}
COLOURS = ["red", "green", "blue", "cyan", "magenta", "Gelb ✓"]
CITIES = ["Oslo", "Lima", "Dakar", "Hanoi"]


def _holes(rng, values, share):
    """``values`` (a list) with a share of cells set to None."""
    return [None if rng.random() < share else v for v in values]


def raw_columns(rng, n, unseen=False, empty_rows=0):
    """A table's columns as pyarrow arrays: numbers and a boolean with holes, text with
    holes (and categories not seen in training when ``unseen``); the last ``empty_rows``
    rows have every cell missing."""
    share = float(rng.uniform(0.05, 0.3))
    age = rng.normal(40, 12, size=n)
    age[rng.random(n) < share] = np.nan
    income = rng.lognormal(10, 1, size=n)  # no holes in training: no indicator
    score = rng.normal(0, 1, size=n).astype(np.float32).astype(np.float64)
    score[rng.random(n) < share] = np.nan
    member = _holes(rng, [bool(b) for b in rng.random(n) < 0.6], share)
    colours = list(rng.choice([*COLOURS, "purple"] if unseen else COLOURS, size=n))
    cities = list(rng.choice([*CITIES, "Atlantis"] if unseen else CITIES, size=n))
    columns = {
        "age": age,
        "income ($)": income,
        "score": score,
        "member": member,
        "colour": _holes(rng, colours, share),
        "city/zone": cities if not unseen else _holes(rng, cities, share),
    }
    for values in columns.values():
        for row in range(n - empty_rows, n):
            if isinstance(values, np.ndarray):
                values[row] = np.nan
            else:
                values[row] = None
    if unseen and n > empty_rows:
        columns["income ($)"][0] = np.nan  # a hole where training had none
    types = {"member": pa.bool_(), "colour": pa.string(), "city/zone": pa.string()}
    return pa.table({k: pa.array(v, type=types.get(k)) for k, v in columns.items()})


def network(rng, X, dtype, hidden=None):
    """Standardize, Dense, ReLU, Dense with non-zero biases, as wxb train builds it."""
    width = X.shape[1]
    hidden = hidden or int(rng.integers(2, 12))
    seed = int(rng.integers(1 << 31))
    first = Dense(width, hidden, seed=seed, init="he_uniform", dtype=dtype)
    last = Dense(hidden, 3, seed=seed + 1, dtype=dtype)
    for layer in (first, last):
        layer.bias.data[:] = rng.normal(0, 0.5, size=layer.bias.shape)
    return Sequential(Standardize.fit(X), first, ReLU(), last)


def table_model(rng, dtype, n=None):
    """A classifier with a table stage fitted on a fresh table, as the CLI makes one."""
    table = from_object(raw_columns(rng, n or int(rng.integers(40, 200))))
    names = table.names
    enc = TableEncoder.fit(table, names)
    X = enc.transform(table, dtype)
    model = network(rng, X, dtype)
    model.info = {
        "table": enc.to_json(),
        "feature_names": enc.outputs,
        "task": "classification",
        "classes": ["a", "b", "c"],
        "loss": "cross_entropy",
    }
    return model, enc


def feeds(table, enc, dtype, inputs=None):
    """One (batch, 1) array per column: numbers in ``dtype`` (NaN missing), text ("")."""
    inputs = inputs or {name: name for name in enc.columns}
    out = {}
    for rule in enc.rules:
        column = table[rule.name]
        if rule.kind == "text":
            values = np.array(["" if v is None else v for v in column.values], dtype=object)
        else:
            values = np.asarray(column.values, dtype=np.float64).astype(dtype)
        out[inputs[rule.name]] = values.reshape(-1, 1)
    return out


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def props(path):
    return {p.key: p.value for p in onnx.load(path).metadata_props}


# ---------------------------------------------------------------------------------
# Same numbers as wxb
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_columns_in_give_what_wxb_predicts_on_the_encoded_table(tmp_path, seeded, dtype):
    rng = seeded.rng
    tol = TOLERANCE[dtype]
    for trial in range(4):
        model, enc = table_model(rng, dtype)
        path = export(model, tmp_path / f"model{trial}.onnx")
        runner = session(path)
        for n in (1, 7, int(rng.integers(50, 300))):
            empty = int(rng.integers(0, min(n, 3) + 1))
            table = from_object(raw_columns(rng, n, unseen=True, empty_rows=empty))
            want = model.predict(enc.transform(table, dtype))
            (got,) = runner.run(["output"], feeds(table, enc, dtype))
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_allclose(
                got, want, rtol=tol, atol=tol, err_msg=seeded.msg(f"trial {trial}, {n} rows")
            )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_stage_alone_gives_the_encoded_matrix_exactly(tmp_path, seeded, dtype):
    """A network that changes nothing: the graph's output is the encoder's matrix, bit
    for bit."""
    rng = seeded.rng
    table = from_object(raw_columns(rng, int(rng.integers(40, 200))))
    enc = TableEncoder.fit(table, table.names)
    width = len(enc.outputs)
    model = Sequential(Standardize(np.zeros(width), np.ones(width), dtype=dtype), Identity())
    model.info = {"table": enc.to_json()}
    runner = session(export(model, tmp_path / "stage.onnx"))
    table = from_object(raw_columns(rng, int(rng.integers(5, 100)), unseen=True, empty_rows=2))
    (got,) = runner.run(["output"], feeds(table, enc, dtype))
    want = enc.transform(table, dtype)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want, err_msg=seeded.msg("the encoded matrix"))


def test_missing_cells_take_the_fill_and_set_the_indicator(tmp_path, seeded):
    """Every column missing in one row, an unseen category in another: by hand."""
    rng = seeded.rng
    table = from_object(raw_columns(rng, 120))
    enc = TableEncoder.fit(table, table.names)
    model = Sequential(Identity())
    model.info = {"table": enc.to_json()}
    runner = session(export(model, tmp_path / "stage.onnx"))
    nan = np.full((2, 1), np.nan, np.float32)
    given = {r.name: nan for r in enc.rules if r.kind != "text"}
    given["colour"] = np.array([[""], ["no such colour"]], dtype=object)
    given["city/zone"] = np.array([[""], ["Atlantis"]], dtype=object)
    (got,) = runner.run(["output"], given)
    j = 0
    for rule in enc.rules:
        if rule.kind == "text":
            k = len(rule.categories)
            hot = np.zeros(k, np.float32)
            hot[rule.categories.index(rule.fill)] = 1
            np.testing.assert_array_equal(got[0, j : j + k], hot, err_msg=seeded.msg(rule.name))
            np.testing.assert_array_equal(got[1, j : j + k], 0, err_msg=seeded.msg(rule.name))
            j += k
        else:  # both rows missing
            np.testing.assert_array_equal(got[:, j], np.float32(rule.fill), seeded.msg(rule.name))
            j += 1
        if rule.indicator:  # the unseen category is not missing
            want = [1, 0] if rule.kind == "text" else [1, 1]
            np.testing.assert_array_equal(got[:, j], want, err_msg=seeded.msg(rule.name))
            j += 1
    assert j == got.shape[1] == len(enc.outputs)


# ---------------------------------------------------------------------------------
# The file: inputs, names, metadata
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_file_has_one_input_per_column_and_the_stage_in_its_metadata(tmp_path, rng, dtype):
    model, enc = table_model(rng, dtype)
    path = export(model, tmp_path / "model.onnx")
    onnx.checker.check_model(str(path), full_check=True)
    proto = onnx.load(path)
    assert [i.name for i in proto.graph.input] == enc.columns
    for value, rule in zip(proto.graph.input, enc.rules, strict=True):
        tensor = value.type.tensor_type
        want = onnx.TensorProto.STRING if rule.kind == "text" else ELEM_TYPES[dtype]
        assert tensor.elem_type == want
        assert tensor.shape.dim[0].dim_param == "batch" and tensor.shape.dim[1].dim_value == 1
    (out,) = proto.graph.output
    assert out.name == "output" and out.type.tensor_type.elem_type == ELEM_TYPES[dtype]
    assert out.type.tensor_type.shape.dim[1].dim_value == 3
    imports = {i.domain: i.version for i in proto.opset_import}
    ops = {node.op_type for node in proto.graph.node}
    # text columns: opset 20's RegexFullMatch finds a cell with any whitespace around it
    assert imports == {"": 20, **({"ai.onnx.ml": 3} if "Imputer" in ops else {})}
    assert {"RegexFullMatch", "Concat", "IsNaN"} <= ops
    assert ("Imputer" in ops) == (dtype == "float32")
    meta = props(path)
    assert json.loads(meta["table"]) == enc.to_json()
    assert json.loads(meta["table_inputs"]) == {name: name for name in enc.columns}
    assert json.loads(meta["feature_names"]) == enc.outputs
    assert json.loads(meta["classes"]) == ["a", "b", "c"] and meta["task"] == "classification"
    assert meta["loss"] == "cross_entropy" and meta["wxb_version"] == wxb.__version__


def test_names_onnx_cannot_take_get_a_suffix_and_a_mapping(tmp_path, seeded):
    rng = seeded.rng
    n = 60
    raw = {
        "output": rng.normal(size=n),
        "input": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
        "": rng.normal(size=n),
        "output_2": rng.normal(size=n),
        "a b=c/✓": np.array(rng.choice(["p", "q", "r"], size=n), dtype=object),
    }
    table = from_object(raw)
    enc = TableEncoder.fit(table, table.names)
    model = network(rng, enc.transform(table, np.float32), "float32")
    model.info = {"table": enc.to_json()}
    path = export(model, tmp_path / "model.onnx")
    mapping = json.loads(props(path)["table_inputs"])
    assert mapping == {
        "output": "output_3",
        "input": "input",
        "": "column",
        "output_2": "output_2",
        "a b=c/✓": "a b=c/✓",
    }
    assert [i.name for i in onnx.load(path).graph.input] == list(mapping.values())
    test = from_object({k: v[:9] for k, v in raw.items()})
    (got,) = session(path).run(["output"], feeds(test, enc, np.float32, mapping))
    want = model.predict(enc.transform(test, np.float32))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=seeded.msg("renamed"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numbers_only_keep_the_one_input_with_holes_filled(tmp_path, seeded, dtype):
    """A stage of numbers without indicators (as wxb train makes from a numeric CSV)."""
    rng = seeded.rng
    n, width = int(rng.integers(30, 100)), int(rng.integers(1, 6))
    raw = {f"x{j}": rng.normal(j, 2, size=n) for j in range(width)}
    table = from_object(raw)
    enc = TableEncoder.fit(table, table.names)
    assert enc.is_plain
    model = network(rng, enc.transform(table, dtype), dtype)
    model.info = {"table": enc.to_json(), "feature_names": enc.outputs}
    path = export(model, tmp_path / "model.onnx")
    proto = onnx.load(path)
    (given,) = proto.graph.input
    assert given.name == "input" and given.type.tensor_type.shape.dim[1].dim_value == width
    assert json.loads(props(path)["table"]) == enc.to_json()
    assert "table_inputs" not in props(path)
    X = rng.normal(0, 2, size=(40, width))
    X[rng.random(X.shape) < 0.3] = np.nan
    X[-1] = np.nan
    test = from_object({name: X[:, j] for j, name in enumerate(enc.columns)})
    want = model.predict(enc.transform(test, dtype))
    (got,) = session(path).run(["output"], {"input": X.astype(dtype)})
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=seeded.msg("holes"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_saved_and_loaded_model_keeps_the_stage_and_exports_the_same(tmp_path, seeded, dtype):
    rng = seeded.rng
    model, enc = table_model(rng, dtype)
    loaded = wxb.load(wxb.save(model, tmp_path / "model.safetensors"))
    assert loaded.info["table"] == enc.to_json()
    assert TableEncoder.from_json(loaded.info["table"]).outputs == enc.outputs
    a = export(model, tmp_path / "a.onnx")
    b = export(loaded, tmp_path / "b.onnx")
    assert a.read_bytes() == b.read_bytes()
    table = from_object(raw_columns(rng, 25, unseen=True, empty_rows=1))
    (got,) = session(b).run(["output"], feeds(table, enc, dtype))
    tol = TOLERANCE[dtype]
    want = loaded.predict(enc.transform(table, dtype))
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=seeded.msg("loaded"))


# ---------------------------------------------------------------------------------
# Refusals, before anything is written
# ---------------------------------------------------------------------------------
def _stage_model(rules, width):
    model = Sequential(Dense(width, 2, seed=0), Tanh())
    model.info = {"table": TableEncoder(rules).to_json()}
    return model


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("empty category", "empty string as a category"),
        ("repeated category", "repeats a category"),
        ("wrong width", "gives 3 inputs but the network takes 4"),
        ("malformed", "malformed"),
    ],
)
def test_stages_the_graph_cannot_carry_are_refused(tmp_path, case, match):
    text = ColumnRule("t", "text", "a", False, ["", "a"])
    if case == "empty category":
        model = _stage_model([text], 2)
    elif case == "repeated category":
        model = _stage_model([ColumnRule("t", "text", "a", False, ["a", "b", "a"])], 3)
    elif case == "wrong width":
        model = _stage_model([ColumnRule("x", "number", 1.0, True), ColumnRule("y", "bool", 0)], 4)
    else:
        model = _stage_model([], 1)
        model.info["table"] = {"columns": [{"name": "x"}]}
    with pytest.raises(ConfigError, match=match):
        export(model, tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_missing_markers_read_as_wxb_reads_them(tmp_path, seeded, dtype):
    """'NA', '?' in a text input and the model's own numeric marker (-999) in a number
    input are gaps in the graph, as they are when wxb reads a file."""
    rng = seeded.rng
    model, enc = table_model(rng, dtype)
    enc.na_values = ["-999"]
    model.info["table"] = enc.to_json()
    runner = session(export(model, tmp_path / "m.onnx"))
    table = from_object(raw_columns(rng, int(rng.integers(20, 60))))
    marked = feeds(table, enc, dtype)
    blank = feeds(table, enc, dtype)
    rows = rng.choice(table.n_rows, size=max(1, table.n_rows // 4), replace=False)
    for rule in enc.rules:
        if rule.kind == "text":
            marked[rule.name][rows] = rng.choice(["NA", "?", "N/A", "null"], len(rows))[:, None]
            blank[rule.name][rows] = ""
        else:
            marked[rule.name][rows] = -999
            blank[rule.name][rows] = np.nan
    (got,) = runner.run(["output"], marked)
    (want,) = runner.run(["output"], blank)
    np.testing.assert_array_equal(got, want, err_msg=seeded.msg(""))
    # and wxb itself on the same cells, as its reader would give them
    columns = {name: values[:, 0] for name, values in marked.items()}
    for rule in enc.rules:
        if rule.kind != "text":
            columns[rule.name] = columns[rule.name].astype(np.float64)
    wxb_table = from_object(columns, reading=Reading(na_values=("-999",)))
    expected = model.predict(enc.transform(wxb_table, dtype))
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol, err_msg=seeded.msg(""))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_bool_columns_0_and_1_are_no_gaps_whatever_the_markers(tmp_path, seeded, dtype):
    """--na-values 0 (or 1) marks gaps in number columns only: the graph turned every
    False (fed as 0) into a gap too, filled with the column's most frequent value."""
    rng = seeded.rng
    model, enc = table_model(rng, dtype)
    enc.na_values = ["0", "1"]
    model.info["table"] = enc.to_json()
    runner = session(export(model, tmp_path / "m.onnx"))
    table = from_object(raw_columns(rng, int(rng.integers(20, 60))))
    assert any(rule.kind == "bool" for rule in enc.rules)
    (got,) = runner.run(["output"], feeds(table, enc, dtype))
    want = model.predict(enc.transform(table, dtype))
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=seeded.msg(""))


def test_categories_that_read_as_numbers_are_found_alike_in_wxb_and_onnx(tmp_path, rng):
    """'1.0' is found for the texts a number brings ('1', '1.0'); '+1', '1_0' and a long
    code that rounds to the same float are not categories; wxb and onnxruntime agree."""
    long_code = "12345678901234567890"
    train = pa.table({"code": pa.array(["1.0", "2.5", "beta", long_code] * 10)})
    enc = TableEncoder.fit(from_object(train), ["code"])
    X = enc.transform(from_object(train), np.float32)
    model = network(rng, X, "float32")
    model.info = {"table": enc.to_json(), "feature_names": enc.outputs,
                  "task": "classification", "classes": ["a", "b", "c"],
                  "loss": "cross_entropy"}  # fmt: skip
    asked = ["1", "1.0", "2.5", "beta", "+1", "1_0", "12345678901234567891", "3"]
    table = from_object(pa.table({"code": pa.array(asked)}))
    encoded = enc.transform(table, np.float32)
    slot = {c: k for k, c in enumerate(enc.rules[0].categories)}
    want_hot = [slot["1.0"], slot["1.0"], slot["2.5"], slot["beta"], None, None, None, None]
    for row, k in enumerate(want_hot):
        hot = encoded[row, : len(slot)]
        assert (hot.sum() == 0) if k is None else (hot[k] == 1 and hot.sum() == 1), asked[row]
    path = export(model, tmp_path / "m.onnx")
    got = session(path).run(None, feeds(table, enc, np.float32))[0]
    np.testing.assert_allclose(got, model.predict(encoded), rtol=1e-5, atol=1e-6)
