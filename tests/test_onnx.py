"""ONNX export: onnxruntime runs the exported file to what wxb's predict gives.

Every network, its data and its sizes are drawn fresh on each run (the seed is
printed; WXB_TEST_SEED=<seed> replays a failure).
"""

import errno
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import wxb
from wxb import ops
from wxb.errors import ConfigError, WxbError
from wxb.nn import (
    GELU,
    Activation,
    Dense,
    Dropout,
    Identity,
    LeakyReLU,
    LogSoftmax,
    Module,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Standardize,
    Tanh,
)
from wxb.nn.layers import INITS
from wxb.nn.module import output_width
from wxb.onnx import export

TOLERANCE = {"float32": 1e-5, "float64": 1e-10}
BATCHES = (1, 7, 1024)
ELEM_TYPES = {"float32": onnx.TensorProto.FLOAT, "float64": onnx.TensorProto.DOUBLE}

ACTIVATIONS = {
    "sigmoid": lambda rng: Sigmoid(),
    "relu": lambda rng: ReLU(),
    "tanh": lambda rng: Tanh(),
    "leaky_relu": lambda rng: LeakyReLU(float(rng.uniform(-1, 1))),
    "gelu": lambda rng: GELU("none"),
    "gelu_tanh": lambda rng: GELU("tanh"),
    "softmax": lambda rng: Softmax(),
    "log_softmax": lambda rng: LogSoftmax(),
    "identity": lambda rng: Identity(),
}


def _seed(rng):
    return int(rng.integers(1 << 31))


def dense(rng, n_in, n_out, dtype, bias=None):
    bias = bool(rng.random() < 0.7) if bias is None else bias
    layer = Dense(n_in, n_out, bias, init=str(rng.choice(INITS)), seed=_seed(rng), dtype=dtype)
    if layer.bias is not None:  # biases start at 0: give them values the file must carry
        layer.bias.data[:] = rng.normal(0, 0.5, size=n_out)
    return layer


def standardize(rng, n, dtype):
    return Standardize(rng.normal(0, 5, size=n), rng.uniform(0.1, 10, size=n), dtype=dtype)


def nest(rng, layers):
    """Some contiguous run of the layers moved into a Sequential of its own (maybe twice)."""
    for _ in range(int(rng.integers(0, 3))):
        if len(layers) < 2:
            break
        i = int(rng.integers(0, len(layers) - 1))
        j = int(rng.integers(i + 1, len(layers) + 1))
        layers = [*layers[:i], Sequential(*layers[i:j]), *layers[j:]]
    return layers


def random_network(rng, dtype, n_features, activations=None):
    """Optional Standardize, 0–3 hidden Dense + activation (+ Dropout), an output Dense
    (+ an activation), some of it nested. ``activations``: the hidden activations to use."""
    layers = [standardize(rng, n_features, dtype)] if rng.random() < 0.5 else []
    if activations is None:
        names = list(ACTIVATIONS)
        activations = [names[i] for i in rng.integers(0, len(names), size=rng.integers(0, 4))]
    width = n_features
    for name in activations:
        out = int(rng.integers(1, 17))
        layers += [dense(rng, width, out, dtype), ACTIVATIONS[name](rng)]
        if rng.random() < 0.4:
            layers.append(Dropout(float(rng.uniform(0, 0.9))))
        width = out
    layers.append(dense(rng, width, int(rng.integers(1, 6)), dtype))
    if rng.random() < 0.5:
        head = ["softmax", "log_softmax", "sigmoid", "identity"]
        layers.append(ACTIVATIONS[str(rng.choice(head))](rng))
    return Sequential(*nest(rng, layers))


def inputs(rng, model, batch, n_features, dtype):
    """Rows on the scale the model's Standardize expects (if any), else spread wide."""
    first = next((m for _, m in model.named_modules() if isinstance(m, Standardize)), None)
    X = rng.normal(0, 3, size=(batch, n_features))
    if first is not None:
        X = first.mean + first.scale * X
    return X.astype(dtype)


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_file(path, n_features, dtype):
    """The checker accepts it; input/output as documented; nothing outside standard ONNX."""
    onnx.checker.check_model(str(path), full_check=True)
    proto = onnx.load(path)
    (given,), (out,) = proto.graph.input, proto.graph.output
    assert given.name == "input" and out.name == "output"
    for value in (given, out):
        assert value.type.tensor_type.elem_type == ELEM_TYPES[dtype]
        batch = value.type.tensor_type.shape.dim[0]
        assert batch.dim_param == "batch" and not batch.HasField("dim_value")
    assert given.type.tensor_type.shape.dim[1].dim_value == n_features
    assert [i.domain for i in proto.opset_import] == [""]
    assert {node.domain for node in proto.graph.node} <= {""}
    assert "Dropout" not in {node.op_type for node in proto.graph.node}
    assert proto.producer_name == "wxb"
    return proto


def assert_runs_like_wxb(model, path, n_features, dtype, rng, msg):
    """One file, three batch sizes: onnxruntime's outputs are wxb's predictions."""
    runner = session(path)
    tol = TOLERANCE[dtype]
    for batch in BATCHES:
        X = inputs(rng, model, batch, n_features, dtype)
        want = model.predict(X)
        (got,) = runner.run(["output"], {"input": X})
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=msg(f"batch {batch}"))


# ---------------------------------------------------------------------------------
# Same numbers as wxb
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_random_networks_run_in_onnxruntime_as_in_wxb(tmp_path, seeded, dtype):
    rng = seeded.rng
    for trial in range(6):
        n_features = int(rng.integers(1, 13))
        model = random_network(rng, dtype, n_features)
        path = export(model, tmp_path / f"model{trial}.onnx")
        check_file(path, n_features, dtype)

        def msg(what, model=model):
            return seeded.msg(f"{what} of\n{model}")

        assert_runs_like_wxb(model, path, n_features, dtype, rng, msg)


class OwnForward(Module):
    """The PyTorch habit: the layers with weights (and Dropout, Standardize) as attributes,
    registered in a shuffled order; the activations applied in the forward itself."""

    def __init__(self, layers, rng):
        super().__init__()
        self.program = []
        for k, layer in enumerate(layers):
            if isinstance(layer, Activation):
                self.program.append(lambda x, kernel=layer.kernel: ops.activation(x, kernel))
            else:
                self.program.append(f"part{k}")
        for k in rng.permutation(len(layers)):
            if isinstance(self.program[k], str):
                setattr(self, self.program[k], layers[k])

    def forward(self, x):
        for step in self.program:
            x = getattr(self, step)(x) if isinstance(step, str) else step(x)
        return x


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_forward_of_ones_own_that_only_chains_its_layers_exports_as_they_run(
    tmp_path, seeded, dtype
):
    # a module of one's own was refused ("not a stock wxb layer") however plain its forward
    rng = seeded.rng
    for trial in range(4):
        n_features = int(rng.integers(1, 13))
        layers = wxb.nn.sequential.layers_in_order(random_network(rng, dtype, n_features))
        model = OwnForward(layers, rng)
        path = export(model, tmp_path / f"own{trial}.onnx")
        check_file(path, n_features, dtype)

        def msg(what, model=model, layers=layers):
            return seeded.msg(f"{what} of {type(model).__name__} over\n{layers}")

        assert_runs_like_wxb(model, path, n_features, dtype, rng, msg)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_activation_in_one_network(tmp_path, seeded, dtype):
    rng = seeded.rng
    names = list(rng.permutation(list(ACTIVATIONS)))
    n_features = int(rng.integers(1, 13))
    model = random_network(rng, dtype, n_features, activations=names)
    model.train()  # Dropout on: the export is still for inference, as predict is
    path = export(model, tmp_path / "model.onnx")
    proto = check_file(path, n_features, dtype)
    ops_used = {node.op_type for node in proto.graph.node}
    assert {"Gemm", "Reciprocal", "Relu", "Tanh", "Softmax", "LogSoftmax", "Where"} <= ops_used
    assert_runs_like_wxb(model, path, n_features, dtype, rng, lambda w: seeded.msg(f"{w} {names}"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_over_its_whole_range(tmp_path, seeded, dtype, approximate):
    """Both tails and every branch of the float64 erfc (series, continued fraction)."""
    rng = seeded.rng
    unit = Dense(1, 1, bias=False, dtype=dtype)
    unit.weight.data[:] = 1
    model = Sequential(unit, GELU(approximate))
    z = np.concatenate([np.linspace(-40, 40, 8001), rng.normal(0, 6, size=4000), [0.0, -0.0]])
    z = z.astype(dtype)[:, None]
    path = export(model, tmp_path / "gelu.onnx")
    (got,) = session(path).run(["output"], {"input": z})
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(
        got, model.predict(z), rtol=tol, atol=tol, err_msg=seeded.msg("GELU")
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_shared_weights_give_one_initializer(tmp_path, rng, dtype):
    n, c = (int(v) for v in rng.integers(2, 9, size=2))
    twice = dense(rng, n, n, dtype, bias=True)
    tied = dense(rng, n, n, dtype, bias=False)
    tied.weight = twice.weight  # a parameter shared by two layers
    model = Sequential(twice, Tanh(), twice, LeakyReLU(0.2), tied, dense(rng, n, c, dtype))
    path = export(model, tmp_path / "tied.onnx")
    proto = check_file(path, n, dtype)
    weights = [i for i in proto.graph.initializer if not i.name.startswith("const_")]
    assert len(weights) == len(model.parameters())  # each parameter once (parameters() dedups)
    assert_runs_like_wxb(model, path, n, dtype, rng, lambda w: w)


def test_layers_without_width_and_empty_models(tmp_path, rng):
    """Activations alone take any width; an empty model is the identity."""
    n = int(rng.integers(1, 9))
    X = rng.normal(size=(5, n)).astype(np.float32)
    for name, model in {"acts": Sequential(Tanh(), Softmax()), "empty": Sequential()}.items():
        path = export(model, tmp_path / f"{name}.onnx")
        onnx.checker.check_model(str(path), full_check=True)
        (got,) = session(path).run(["output"], {"input": X})
        np.testing.assert_allclose(got, model.predict(X), rtol=1e-6, atol=1e-6)


def test_a_bare_stock_layer_and_a_subclass_that_keeps_forward(tmp_path, rng):
    class HeDense(Dense):  # a constructor of its own; computes what Dense computes
        def __init__(self, n_in, n_out, seed):
            super().__init__(n_in, n_out, init="he_normal", seed=seed)

    n = int(rng.integers(1, 9))
    for name, model in {
        "bare": dense(rng, n, 3, "float32"),
        "sub": Sequential(HeDense(n, 4, _seed(rng)), ReLU(), dense(rng, 4, 2, "float32")),
    }.items():
        path = export(model, tmp_path / f"{name}.onnx")
        check_file(path, n, "float32")
        assert_runs_like_wxb(model, path, n, "float32", rng, lambda w: w)


@pytest.mark.parametrize("opset", [13, 20])  # 20: the newest onnxruntime 1.17 runs
def test_other_opsets(tmp_path, rng, opset):
    n = int(rng.integers(1, 9))
    model = random_network(rng, "float32", n, activations=["gelu", "leaky_relu", "softmax"])
    path = export(model, tmp_path / "model.onnx", opset=opset)
    assert onnx.load(path).opset_import[0].version == opset
    check_file(path, n, "float32")
    assert_runs_like_wxb(model, path, n, "float32", rng, lambda w: w)


def test_the_file_runs_without_wxb(tmp_path, rng):
    n = int(rng.integers(1, 9))
    model = random_network(rng, "float64", n, activations=["gelu", "leaky_relu"])
    path = export(model, tmp_path / "model.onnx")
    X = inputs(rng, model, 7, n, "float64")
    np.save(tmp_path / "X.npy", X)
    script = (
        "import sys; sys.modules['wxb'] = None\n"  # importing wxb would now fail
        "import numpy as np, onnxruntime as ort\n"
        f"s = ort.InferenceSession({str(path)!r}, providers=['CPUExecutionProvider'])\n"
        f"X = np.load({str(tmp_path / 'X.npy')!r})\n"
        f"np.save({str(tmp_path / 'out.npy')!r}, s.run(None, {{'input': X}})[0])\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
    # atol as in assert_runs_like_wxb: onnxruntime's sigmoid is accurate to an ulp of 1,
    # not of its result, so an output near 1e-8 can be 1e-8 off relatively
    tol = TOLERANCE["float64"]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), model.predict(X), rtol=tol, atol=tol)


# ---------------------------------------------------------------------------------
# Metadata and files saved by wxb
# ---------------------------------------------------------------------------------
def test_metadata_carries_classes_features_task_target(tmp_path, rng):
    n = int(rng.integers(2, 9))
    model = random_network(rng, "float32", n)
    features = [f"feature {i} ✓" for i in rng.permutation(n)]
    classes = ["cat", "dog", int(rng.integers(100)), "ö"]
    model.info = {
        "task": "classification",
        "classes": classes,
        "feature_names": features,
        "target": "label",
        "loss": "cross_entropy",
        "test": {"accuracy": 0.5},
    }
    path = export(model, tmp_path / "model.onnx")
    proto = onnx.load(path)
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["classes"]) == classes
    assert json.loads(props["feature_names"]) == features
    assert props["task"] == "classification" and props["target"] == "label"
    assert props["loss"] == "cross_entropy"
    assert props["wxb_version"] == wxb.__version__ == proto.producer_version
    assert proto.producer_name == "wxb"


def test_a_model_without_info_has_only_the_version(tmp_path, rng):
    path = export(dense(rng, 3, 2, "float32"), tmp_path / "model.onnx")
    assert {p.key for p in onnx.load(path).metadata_props} == {"wxb_version"}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_saved_and_loaded_model_exports_the_same(tmp_path, seeded, dtype):
    rng = seeded.rng
    n = int(rng.integers(1, 13))
    model = random_network(rng, dtype, n)
    c = output_width(model)
    shared = dense(rng, c, c, dtype)
    model = Sequential(*model.layers, shared, Tanh(), shared)  # a layer given twice, saved
    model.info = {"task": "regression", "feature_names": [f"x{i}" for i in range(n)]}
    loaded = wxb.load(wxb.save(model, tmp_path / "model.safetensors"))
    a = export(model, tmp_path / "a.onnx")
    b = export(loaded, tmp_path / "b.onnx")
    assert a.read_bytes() == b.read_bytes()
    assert_runs_like_wxb(loaded, b, n, dtype, rng, seeded.msg)


# ---------------------------------------------------------------------------------
# Refusals, before anything is written
# ---------------------------------------------------------------------------------
class Doubler(Module):
    def forward(self, x):
        return ops.mul(x, 2.0)


class OwnScaled(Module):  # a forward of its own applying what the file cannot: dropout
    def __init__(self):  # left in training (F.dropout's default), which predict applies
        super().__init__()
        self.fc = Dense(3, 2)

    def forward(self, x):
        return ops.mul(ops.dropout(self.fc(x), 0.5), 2.0)


class ValueReader(Module):  # scales by a value it reads out of the graph (.data)
    def forward(self, x):
        return ops.mul(x, float(np.abs(x.data).max()))


class LoudDense(Dense):
    def forward(self, x):
        return super().forward(x)


class Swish(Activation):
    class Kernel(ops.Sigmoid):
        name = "swish"

    def __init__(self, name=None):
        super().__init__(self.Kernel(), name)


def _refusals():
    replaced = Dense(3, 4)
    replaced.forward = lambda x: x
    return {
        "custom module reading values": (
            Sequential(Dense(3, 4), Sequential(ReLU(), ValueReader(), name="block"), Dense(4, 2)),
            ["'block.valuereader1'", ".data", "traced graph cannot follow"],
        ),
        "forward on an instance": (Sequential(replaced, ReLU()), ["dense1", "instance"]),
        "own activation kernel": (Sequential(Dense(3, 4), Swish()), ["swish1", "Swish"]),
        "model itself": (Doubler(), ["the model itself", "Doubler"]),
        "own forward doing more": (OwnScaled(), ["the model itself", "OwnScaled", "dropout"]),
        "widths": (Sequential(Dense(3, 4), Dense(5, 2)), ["dense2", "5 features", "gives 4"]),
        "dtypes": (Sequential(Dense(3, 4), Dense(4, 2, dtype="float64")), ["float64"]),
        "not a module": ("model.safetensors", ["Module", "str"]),
    }


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_modules_of_ones_own_inside_a_sequential_are_traced(tmp_path, seeded, dtype):
    """Sequential(Dense, Doubler(), Dense), a Dense subclass with a forward of its own
    nested inside: each was refused ("a module of its own inside a Sequential"); the
    file now runs as predict does, at batch sizes other than the traced 3 and 5."""
    rng = seeded.rng
    n, h = (int(v) for v in rng.integers(1, 7, size=2))
    model = Sequential(
        Dense(n, h, dtype=dtype),
        Doubler(),
        Sequential(LoudDense(h, h, dtype=dtype), ReLU()),
        Dense(h, 2, dtype=dtype),
    )
    path = export(model, tmp_path / "m.onnx")
    assert_runs_like_wxb(model, path, n, dtype, rng, lambda what: seeded.msg(f"{what} of {model}"))


@pytest.mark.parametrize("case", list(_refusals()))
def test_unsupported_models_are_refused_naming_the_module(tmp_path, case):
    model, words = _refusals()[case]
    with pytest.raises(ConfigError) as caught:
        export(model, tmp_path / "model.onnx")
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("opset", [12, 10_000, "17", True, 17.0])
def test_bad_opsets_are_refused(tmp_path, opset):
    with pytest.raises(ConfigError, match="opset"):
        export(Sequential(Dense(2, 2)), tmp_path / "model.onnx", opset=opset)
    assert list(tmp_path.iterdir()) == []


def test_missing_onnx_package_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    with pytest.raises(ConfigError, match=r"pip install onnx \(wxb's 'onnx' extra\)"):
        export(Sequential(Dense(2, 2)), tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_paths_leave_nothing_behind(tmp_path, rng, monkeypatch):
    model = random_network(rng, "float32", 3)
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    with pytest.raises((OSError, WxbError)):
        export(model, blocker / "model.onnx")
    with pytest.raises((OSError, WxbError)):
        export(model, tmp_path)  # a folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a file"]

    # The write fails at the last moment: the old file stays whole, no temporary is left.
    target = tmp_path / "model.onnx"
    target.write_bytes(b"the old model")

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(OSError):
        export(model, target)
    monkeypatch.undo()
    assert target.read_bytes() == b"the old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a file", "model.onnx"]

    export(model, target)  # and then it works, replacing the old file
    onnx.checker.check_model(str(target))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a file", "model.onnx"]


def test_the_cli_exports_a_trained_model_that_predicts_as_wxb_predict(tmp_path, rng, capsys):
    """wxb train → wxb export → onnxruntime gives the classes wxb predict writes."""
    import csv

    from wxb.cli import main

    names = np.array(["north", "south, east", "west"])  # a comma inside a class name
    features = int(rng.integers(3, 7))
    centres = 3 * rng.normal(size=(3, features))
    y = rng.integers(0, 3, size=int(rng.integers(90, 160)))
    X = centres[y] + rng.normal(size=(len(y), features))
    data = tmp_path / "data.csv"
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*(f"f{i}" for i in range(features)), "kind"])
        writer.writerows([*map(str, row), names[k]] for row, k in zip(X, y, strict=True))
    model_path, onnx_path = tmp_path / "m.safetensors", tmp_path / "out" / "m.onnx"
    argv = ["train", "--data", str(data), "--target", "kind", "--hidden", "8", "--epochs", "3"]
    assert main([*argv, "-q", "-o", str(model_path)]) == 0
    assert main(["export", str(model_path), "-o", str(onnx_path)]) == 0
    assert main(["predict", str(model_path), str(data)]) == 0
    out = capsys.readouterr().out
    rows = list(csv.reader(out.splitlines()[-len(y) :]))
    predicted = [row[0] for row in rows]

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": X.astype(np.float32)})[0]
    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    classes = json.loads(meta["classes"])
    assert [classes[k] for k in logits.argmax(axis=1)] == predicted
    assert json.loads(meta["feature_names"]) == [f"f{i}" for i in range(features)]


@pytest.mark.parametrize("bad", ["foreign file", "unsupported module", "unwritable path"])
def test_the_cli_refuses_bad_input_with_one_line(tmp_path, rng, capsys, bad):
    from wxb.cli import main

    model_path = tmp_path / "m.safetensors"
    wxb.save(Sequential(Dense(3, 2, seed=int(rng.integers(1 << 30)))), model_path)
    output = tmp_path / "m.onnx"
    if bad == "foreign file":
        model_path = tmp_path / "notes.safetensors"
        model_path.write_bytes(rng.bytes(int(rng.integers(0, 64))))
    elif bad == "unsupported module":  # a model file whose architecture names no layer wxb has
        from wxb.io import read_metadata

        header = read_metadata(tmp_path / "m.safetensors")
        assert "architecture" in header
        model_path = tmp_path / "custom.safetensors"
        model_path.write_bytes(
            (tmp_path / "m.safetensors").read_bytes().replace(b"Dense", b"Dunce")
        )
    else:
        blocker = tmp_path / "blocker"
        blocker.write_text("a file, not a folder")
        output = blocker / "m.onnx"
    assert main(["export", str(model_path), "-o", str(output)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("wxb: error: "), err
    assert not output.exists()


def test_a_float64_model_without_parameters_exports_in_float64(tmp_path, rng):
    from wxb.nn import Sequential, Softmax, Standardize

    mean, scale = rng.normal(size=3) * 1000, rng.uniform(1e-3, 1e-2, size=3)
    model = Sequential(Standardize(mean, scale, dtype="float64"), Softmax())
    X = mean + rng.normal(size=(5, 3)) * 1e-3
    path = wxb.onnx.export(model, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path))
    assert session.get_inputs()[0].type == "tensor(double)"
    got = session.run(None, {session.get_inputs()[0].name: X})[0]
    np.testing.assert_allclose(got, model.predict(X), rtol=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 5 iterations
def test_metadata_says_when_the_prediction_is_exp_of_the_output_or_multilabel(tmp_path, rng):
    # a Poisson regressor's ONNX output is z where wxb predict gives exp(z), and nothing
    # in the file said so
    from wxb.sklearn import MLPRegressor

    X = rng.normal(size=(40, 3))
    y = rng.poisson(np.exp(0.3 * X[:, 0]))
    model = MLPRegressor(loss="poisson", hidden_layer_sizes=(4,), max_iter=5).fit(X, y).to_wxb()
    meta = {p.key: p.value for p in onnx.load(export(model, tmp_path / "p.onnx")).metadata_props}
    assert meta["link"] == "log" == model.info["link"]
    session = ort.InferenceSession(str(tmp_path / "p.onnx"), providers=["CPUExecutionProvider"])
    z = session.run(None, {"input": X.astype(model.dtype)})[0].ravel()
    from wxb.prepare import prediction_table

    columns = prediction_table(model, model.predict(X), proba=False)[1]
    np.testing.assert_allclose(np.exp(z), np.asarray(columns[0], float), rtol=1e-5)
    labels = dense(rng, 3, 2, "float32")
    labels.info = {"task": "multilabel", "multilabel": True}
    meta = {p.key: p.value for p in onnx.load(export(labels, tmp_path / "m.onnx")).metadata_props}
    assert json.loads(meta["multilabel"]) is True and meta["task"] == "multilabel"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_sigmoid_is_as_exact_in_onnxruntime_as_in_wxb_far_into_its_tails(tmp_path, rng, dtype):
    # onnxruntime's own Sigmoid gave 8.94e-8 for σ(−16.43) = 7.32e-8 in float32 and 0 from
    # z = −20 (a probability head's log p then −inf); the export now composes 1/(1 + e^−z)
    from wxb.nn import Sigmoid

    model = Sequential(Dense(1, 1, bias=False, dtype=dtype), Sigmoid())
    model[0].weight.data[...] = 1
    z = np.sort(rng.uniform(-85, 85, size=(50, 1)), axis=0).astype(dtype)
    session = ort.InferenceSession(
        str(export(model, tmp_path / "s.onnx")), providers=["CPUExecutionProvider"]
    )
    got = session.run(None, {"input": z})[0]
    exact = 1 / (1 + np.exp(-z.astype(np.longdouble)))
    tiny = np.finfo(dtype).tiny  # below it float32 flushes or goes subnormal: compare there
    normal = exact >= tiny
    np.testing.assert_allclose(got[normal], exact[normal].astype(np.float64), rtol=5e-6)
    eps = float(np.finfo(dtype).eps)  # the two libraries' exp differ in the last bit
    np.testing.assert_allclose(got, model.predict(z), rtol=4 * eps, atol=0)
