"""ONNX export of the models users build, drawn at random: every layer and activation
the export documents, in Sequentials (nested, subclassed) and in modules of one's own
whose forward chains them or does more (residual adds, a layer called twice, cat,
slices, ``h @ self.W.T``, functional activations: traced); float32 and float64; train
or eval mode; tied, repeated and frozen weights; logit and probability heads; a table
stage in front. Each file must pass
``onnx.checker`` and run in onnxruntime to what ``model.predict`` gives, at any batch
size; what wxb cannot export is refused in one line naming the layer, with nothing
written, from Python and from ``wxb export``.

Models, sizes and inputs are drawn fresh on each run (the seed is printed;
WXB_TEST_SEED=<seed> replays a failure).
"""

import itertools

import numpy as np
import onnx
import onnxruntime as ort
import pyarrow as pa
import pytest
from test_onnx import nest  # a run of the layers nested in a Sequential of its own

import wxb
from wxb import ops
from wxb.columns import TableEncoder
from wxb.errors import ConfigError
from wxb.nn import (
    CELU,
    ELU,
    GELU,
    GLU,
    SELU,
    Activation,
    AlphaDropout,
    BatchNorm1d,
    Dense,
    Dropout,
    Dropout1d,
    Embedding,
    FeatureAlphaDropout,
    Hardshrink,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    Identity,
    LayerNorm,
    LazyLinear,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    Module,
    ModuleList,
    Parameter,
    PReLU,
    ReLU,
    ReLU6,
    RMSNorm,
    RReLU,
    Sequential,
    Sigmoid,
    SiLU,
    Softmax,
    Softmin,
    Softplus,
    Softshrink,
    Softsign,
    Standardize,
    Tanh,
    Tanhshrink,
    Threshold,
    Unflatten,
)
from wxb.nn import functional as F
from wxb.onnx import export
from wxb.tables import from_object


def _activations(rng, width, dtype):
    """Every activation layer the export documents, its settings drawn."""

    def u(low, high):
        return float(rng.uniform(low, high))

    return [
        lambda: Sigmoid(),
        lambda: Tanh(),
        lambda: ReLU(),
        lambda: LeakyReLU(u(-1, 1)),
        lambda: GELU("none"),
        lambda: GELU("tanh"),
        lambda: SiLU(),
        lambda: ELU(u(0.1, 2)),
        lambda: Softplus(u(0.2, 3), u(1, 20)),
        lambda: ReLU6(),
        lambda: Hardtanh(u(-2, 0), u(0, 2)),
        lambda: SELU(),
        lambda: CELU(u(0.2, 2)),
        lambda: Mish(),
        lambda: Hardswish(),
        lambda: Hardsigmoid(),
        lambda: LogSigmoid(),
        lambda: Softsign(),
        lambda: Tanhshrink(),
        lambda: Threshold(u(-1, 1), u(-2, 2)),
        lambda: Hardshrink(u(0, 1)),
        lambda: Softshrink(u(0, 1)),
        lambda: _prelu(rng, int(rng.choice([1, width])), dtype),
        lambda: RReLU(u(0, 0.3), u(0.3, 0.6)),
        lambda: Softmax(),
        lambda: LogSoftmax(),
        lambda: Softmin(),
        lambda: Identity(),
    ]


def _prelu(rng, n, dtype):
    layer = PReLU(n, dtype=dtype)
    layer.weight.data[:] = rng.uniform(-1, 1, size=n)
    return layer


def _dense(rng, n_in, n_out, dtype):
    layer = Dense(
        n_in, n_out, bool(rng.random() < 0.8), seed=int(rng.integers(1 << 31)), dtype=dtype
    )
    if layer.bias is not None:  # (biases start at 0: values the file must carry)
        layer.bias.data[:] = rng.normal(0, 0.5, size=n_out)
    return layer


def _norm(rng, width, dtype):
    kind = int(rng.integers(3))
    if kind == 0:
        eps, affine = float(10 ** rng.uniform(-6, -2)), bool(rng.random() < 0.7)
        layer = BatchNorm1d(width, eps=eps, affine=affine, dtype=dtype)
        layer.running_mean[:] = rng.normal(0, 2, size=width)
        layer.running_var[:] = rng.uniform(0.05, 5, size=width)
    elif kind == 1:
        layer = LayerNorm(width, elementwise_affine=bool(rng.random() < 0.7), dtype=dtype)
    else:
        layer = RMSNorm(width, eps=None if rng.random() < 0.5 else 1e-6, dtype=dtype)
    for p in layer.parameters():
        p.data[:] = rng.normal(1, 0.5, size=p.shape)
    return layer


def _dropout(rng):
    p = float(rng.uniform(0.05, 0.6))
    return [Dropout(p), AlphaDropout(p), FeatureAlphaDropout(p), Dropout1d(p)][int(rng.integers(4))]


def random_layers(rng, dtype, n_features, n_outputs=None, tied=True):
    """A stack a user might build: an optional Standardize, 0–3 blocks of Dense, maybe a
    norm, maybe a Dense + GLU, an activation, maybe a dropout; repeated and tied Dense
    layers (``tied``); an output Dense and a logit or probability head."""
    layers = []
    if rng.random() < 0.4:
        layers.append(
            Standardize(rng.normal(0, 3, n_features), rng.uniform(0.2, 3, n_features), dtype=dtype)
        )
    width = n_features
    for _ in range(int(rng.integers(0, 4))):
        out = int(rng.integers(1, 10))
        square = _dense(rng, width, width, dtype) if tied and rng.random() < 0.2 else None
        if square is not None:  # a layer given twice, a weight shared with a third
            # (named: a Sequential nesting some of them named the square dense1, as the
            # outer one names another Dense, and refused the two dense1s)
            k = len(layers)
            square.name = f"square{k}"
            tied = Dense(width, width, bias=False, dtype=dtype, name=f"tied{k}")
            tied.weight = square.weight
            layers += [square, Tanh(), square, tied]
        layers.append(_dense(rng, width, out, dtype))
        width = out
        if rng.random() < 0.3:
            layers.append(_norm(rng, width, dtype))
        if rng.random() < 0.2:
            layers += [_dense(rng, width, 2 * width, dtype), GLU()]
        acts = _activations(rng, width, dtype)
        layers.append(acts[int(rng.integers(len(acts)))]())
        if rng.random() < 0.3:
            layers.append(_dropout(rng))
    out = n_outputs or int(rng.integers(1, 6))
    layers.append(_dense(rng, width, out, dtype))
    head = [None, Softmax, LogSoftmax, Sigmoid][int(rng.integers(4))]
    if head is not None:
        layers.append(head())
    for p in {id(p): p for layer in layers for p in layer.parameters()}.values():
        if rng.random() < 0.2:
            p.requires_grad = False  # frozen: exported as any other weight
    return layers


class Stack(Sequential):
    """A Sequential subclass with a constructor of its own (the forward is Sequential's)."""

    def __init__(self, layers):
        super().__init__(*layers)


class OwnForward(Module):
    """The PyTorch habit: layers as attributes (some in a ModuleList), the activations
    applied in the forward itself."""

    def __init__(self, layers, rng):
        super().__init__()
        self.blocks = ModuleList()
        self.program = []
        for k, layer in enumerate(layers):
            if isinstance(layer, Activation) and rng.random() < 0.6:
                self.program.append(lambda x, kernel=layer.kernel: ops.activation(x, kernel))
            elif rng.random() < 0.5:
                self.blocks.append(layer)
                self.program.append(len(self.blocks) - 1)
            else:
                setattr(self, f"part{k}", layer)
                self.program.append(f"part{k}")

    def forward(self, x):
        for step in self.program:
            if isinstance(step, int):
                x = self.blocks[step](x)
            elif isinstance(step, str):
                x = getattr(self, step)(x)
            else:
                x = step(x)
        return x


class Shift(Module):
    """A module of one's own among a Sequential's layers: traced, as the model's own."""

    def __init__(self, scale, shift):
        super().__init__()
        self.scale, self.shift = scale, shift

    def forward(self, x):
        return x * self.scale - self.shift


def random_model(rng, dtype):
    """A model of random layers (as a Sequential, a subclass, a forward of one's own),
    its input width, and its layers."""
    n_features = int(rng.integers(1, 9))
    kind = str(rng.choice(["sequential", "subclass", "own forward"]))
    # (a forward of one's own calling a layer with weights twice is no chain, which
    # describe.chain_layers, shared with explain and diagnose, draws weights once: export
    # traces it)
    layers = random_layers(rng, dtype, n_features)
    if kind != "own forward" and rng.random() < 0.4:  # (not first: inputs reads a Standardize)
        at = int(rng.integers(1, len(layers) + 1))
        own = Shift(float(rng.uniform(0.5, 2)), float(rng.normal()))
        if isinstance(layers[at - 1], Dense) and rng.random() < 0.5:  # a subclass's forward
            width = layers[at - 1].weight.shape[0]
            own = LoudDense(width, width, seed=int(rng.integers(1 << 31)), dtype=dtype)
        layers.insert(at, own)
    if kind == "sequential":
        model = Sequential(*nest(rng, layers))
    elif kind == "subclass":
        model = Stack(nest(rng, layers))
    else:
        model = OwnForward(layers, rng)
    model.train() if rng.random() < 0.5 else model.eval()  # predict and the file: inference
    return model, n_features, layers


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def tolerance(dtype, depth):
    """Rounding of a few ulps per layer, carried on through the layers after it."""
    return 16 * float(np.finfo(dtype).eps) * (depth + 1)


def assert_close(got, want, dtype, depth, msg):
    assert got.dtype == want.dtype and got.shape == want.shape, msg
    tol = tolerance(dtype, depth)
    scale = max(1.0, float(np.max(np.abs(want), initial=0)))
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=msg)


def inputs(rng, layers, batch, n_features, dtype):
    """Rows on the scale a first Standardize expects, else spread wide."""
    X = rng.normal(0, 3, size=(batch, n_features))
    if isinstance(layers[0], Standardize):
        X = layers[0].mean + layers[0].scale * X
    return X.astype(dtype)


def batches(rng):
    return (1, int(rng.integers(2, 10)) * 2 + 1, int(rng.integers(40, 200)))  # 1, odd, many


# ---------------------------------------------------------------------------------
# Same numbers as predict
# ---------------------------------------------------------------------------------
def test_generated_models_run_in_onnxruntime_as_predict(tmp_path, seeded):
    rng = seeded.rng
    for trial in range(5):
        dtype = str(rng.choice(["float32", "float64"]))
        model, n_features, layers = random_model(rng, dtype)
        # any opset the export takes (onnxruntime had no float64 PRelu at 13-15 and 18 on)
        opset = None if rng.random() < 0.5 else int(rng.integers(13, 21))
        path = export(model, tmp_path / f"m{trial}.onnx", opset=opset)
        onnx.checker.check_model(str(path), full_check=True)
        runner = session(path)
        assert runner.get_inputs()[0].shape == ["batch", n_features]
        for batch in batches(rng):
            X = inputs(rng, layers, batch, n_features, dtype)
            (got,) = runner.run(["output"], {"input": X})
            what = f"batch {batch}, opset {opset}, {dtype} {type(model).__name__}:\n{model}"
            assert_close(got, model.predict(X), dtype, len(layers), seeded.msg(what))


def _table(rng, n):
    """Numbers with gaps, a boolean with gaps, text with gaps and unseen categories."""
    x = rng.normal(5, 3, size=n)
    x[rng.random(n) < 0.2] = np.nan
    flag = [None if rng.random() < 0.2 else bool(b) for b in rng.random(n) < 0.5]
    colour = [
        None if rng.random() < 0.2 else str(c)
        for c in rng.choice(["red", "blue", "grün ✓", "a+b", "?x"], n)
    ]
    return {
        "x": pa.array(x),
        "flag": pa.array(flag, type=pa.bool_()),
        "colour": pa.array(colour, type=pa.string()),
        "plain": pa.array(rng.normal(size=n)),
    }


def test_a_table_stage_in_front_gives_what_predict_gives_on_the_encoded_table(tmp_path, seeded):
    rng = seeded.rng
    dtype = str(rng.choice(["float32", "float64"]))
    train = from_object(pa.table(_table(rng, int(rng.integers(30, 80)))))
    enc = TableEncoder.fit(train, train.names)
    width = len(enc.outputs)
    layers = random_layers(rng, dtype, width, n_outputs=int(rng.integers(2, 5)))
    model = Sequential(Standardize.fit(enc.transform(train, dtype), dtype=dtype), *layers)
    model.info = {"table": enc.to_json(), "feature_names": enc.outputs}
    path = export(model, tmp_path / "table.onnx")
    onnx.checker.check_model(str(path), full_check=True)
    runner = session(path)
    for batch in batches(rng):
        columns = _table(rng, batch)
        columns["colour"] = pa.array(
            [
                None if c is None else str(rng.choice([c, "violet", f" {c}"]))
                for c in columns["colour"].to_pylist()
            ]
        )
        table = from_object(pa.table(columns))
        feeds = {}
        for rule in enc.rules:
            values = table[rule.name].values
            if rule.kind == "text":
                feeds[rule.name] = np.array(["" if v is None else v for v in values], dtype=object)[
                    :, None
                ]
            else:
                feeds[rule.name] = np.asarray(values, dtype=np.float64).astype(dtype)[:, None]
        (got,) = runner.run(["output"], feeds)
        want = model.predict(enc.transform(table, dtype))
        what = f"batch {batch} of {dtype}, stage {enc.describe()}, network:\n{model}"
        assert_close(got, want, dtype, len(layers) + 1, seeded.msg(what))


# ---------------------------------------------------------------------------------
# What cannot be exported: refused in one line naming the layer, nothing written
# ---------------------------------------------------------------------------------
class ValueReader(Module):  # scales by a value read out of the graph (.data)
    def forward(self, x):
        return ops.mul(x, float(np.abs(x.data).max()))


class LoudDense(Dense):
    def forward(self, x):
        return super().forward(x)


def _unexportable(rng, kind, dtype, width):
    """A layer wxb cannot export after rows of ``width`` features: the layer and the
    width it gives."""
    if kind == "prelu of another width":  # (written, then onnxruntime failed at run)
        return _prelu(rng, width + int(rng.integers(1, 4)), dtype), width
    if kind == "prelu of another dtype":  # (written, where wxb refuses to run it)
        return _prelu(
            rng, int(rng.choice([1, width])), "float32" if dtype == "float64" else "float64"
        ), width
    if kind == "batch statistics":
        return BatchNorm1d(width, track_running_stats=False, dtype=dtype), width
    if kind == "layer norm of another width":
        return LayerNorm(width + 1, dtype=dtype), width + 1
    if kind == "module reading values":
        return ValueReader(), width
    if kind == "hooked":
        layer = Tanh()
        layer.register_forward_hook(lambda module, args, out: out)
        return layer, width
    if kind == "embedding":
        return Embedding(10, width, dtype=dtype), width
    if kind == "lazy":
        return LazyLinear(3, dtype=dtype), 3
    return Unflatten(1, (1, width)), width  # not last


REFUSED = [
    "prelu of another width",
    "prelu of another dtype",
    "batch statistics",
    "layer norm of another width",
    "module reading values",
    "hooked",
    "embedding",
    "lazy",
    "unflatten not last",
]


def _model_with(rng, kind):
    dtype = str(rng.choice(["float32", "float64"]))
    n = int(rng.integers(1, 7))
    widths = kind in ("prelu of another width", "layer norm of another width")
    before = (
        [_dense(rng, n, int(rng.integers(1, 7)), dtype)] if widths or rng.random() < 0.8 else []
    )
    width = before[0].weight.shape[0] if before else n
    bad, width = _unexportable(rng, kind, dtype, width)
    after = [ReLU(), _dense(rng, width, 2, dtype)]
    layers = [*before, bad, *after]
    if rng.random() < 0.5:  # inside a nested Sequential
        layers = [Sequential(*layers[: len(before) + 1]), *after]
    model = Sequential(*layers)
    path = next(name for name, m in model.named_modules() if m is bad)
    return model, path


@pytest.mark.parametrize("kind", REFUSED)
def test_what_cannot_be_exported_is_refused_in_one_line_naming_the_layer(tmp_path, seeded, kind):
    model, where = _model_with(seeded.rng, kind)
    target = tmp_path / "m.onnx"
    with pytest.raises(ConfigError) as caught:
        export(model, target)
    message = str(caught.value)
    assert "\n" not in message and f"'{where}'" in message, seeded.msg(f"{message!r} of\n{model}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kind", ["prelu of another width", "batch statistics", "unflatten not last"]
)
def test_wxb_export_refuses_a_saved_model_it_cannot_export_and_writes_one_it_can(
    tmp_path, seeded, capsys, kind
):
    from wxb.cli import main

    rng = seeded.rng
    model, where = _model_with(rng, kind)
    saved = wxb.save(model, tmp_path / "bad.safetensors")
    assert main(["export", str(saved), "-o", str(tmp_path / "bad.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("wxb: error: "), seeded.msg(err)
    assert f"'{where}'" in err, seeded.msg(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.safetensors"]

    dtype, n_features = str(rng.choice(["float32", "float64"])), int(rng.integers(1, 9))
    layers = random_layers(rng, dtype, n_features)
    good = Sequential(*nest(rng, layers))
    saved = wxb.save(good, tmp_path / "good.safetensors")
    assert main(["export", str(saved)]) == 0  # the default name: the model's, .onnx
    assert f"wrote {tmp_path / 'good.onnx'}" in capsys.readouterr().out
    X = inputs(rng, layers, int(rng.integers(1, 9)), n_features, dtype)
    (got,) = session(tmp_path / "good.onnx").run(["output"], {"input": X})
    assert_close(got, good.predict(X), dtype, len(layers), seeded.msg(str(good)))


class MLP(Module):
    """PyTorch's configurable MLP: its hidden-to-hidden layers in a ModuleList, empty
    for one hidden layer (as ``MLP(3, [8], 2)``), and an optional head, an empty
    Sequential (the identity) when there is none."""

    def __init__(self, n_in, hidden, n_out, dtype, head):
        super().__init__()
        self.first = Dense(n_in, hidden[0], dtype=dtype)
        self.hidden = ModuleList([Dense(a, b, dtype=dtype) for a, b in itertools.pairwise(hidden)])
        self.last = Dense(hidden[-1], n_out, dtype=dtype)
        self.head = Sequential(Softmax()) if head else Sequential()

    def forward(self, x):
        x = ops.relu(self.first(x))
        for layer in self.hidden:
            x = ops.relu(layer(x))
        return self.head(self.last(x))


@pytest.mark.parametrize(("depth", "head"), [(1, True), (2, False), (2, True)])
def test_a_forward_over_a_module_list_or_an_empty_sequential_exports(tmp_path, seeded, depth, head):
    # one hidden layer left the ModuleList empty, a layer never called: refused, "it
    # does not call each of its layers, each registered once"; an empty Sequential
    # called as the head raised AttributeError ('Sequential' object has no attribute
    # 'kernel') out of export
    rng = seeded.rng
    dtype = str(rng.choice(["float32", "float64"]))
    n_in, n_out = (int(v) for v in rng.integers(1, 9, size=2))
    model = MLP(n_in, [int(v) for v in rng.integers(1, 9, size=depth)], n_out, dtype, head)
    runner = session(export(model, tmp_path / "mlp.onnx"))
    for batch in batches(rng):
        X = rng.normal(0, 3, size=(batch, n_in)).astype(dtype)
        (got,) = runner.run(["output"], {"input": X})
        assert_close(got, model.predict(X), dtype, depth + 2, seeded.msg(f"{model}"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_prelu_runs_in_onnxruntime_at_old_and_new_opsets(tmp_path, seeded, dtype):
    # onnxruntime has no float64 PRelu kernel at opsets 13-15 and from 18: the file was
    # written, and its session refused it ("Could not find an implementation for
    # PRelu(16)"), so a float64 table model with text columns (opset 20) and a PReLU
    # could not run at all
    rng = seeded.rng
    n = int(rng.integers(1, 9))
    model = Sequential(_dense(rng, n, n, dtype), _prelu(rng, int(rng.choice([1, n])), dtype))
    X = rng.normal(0, 3, size=(int(rng.integers(1, 20)), n)).astype(dtype)
    for opset in (13, 15, 17, 18, 20):
        (got,) = session(export(model, tmp_path / f"{opset}.onnx", opset=opset)).run(
            None, {"input": X}
        )
        # (Gemm's sums are onnxruntime's, an ulp off numpy's at times)
        assert_close(got, model.predict(X), dtype, 2, seeded.msg(f"opset {opset}"))


# ---------------------------------------------------------------------------------
# Forwards of one's own that do more than chain: traced
# ---------------------------------------------------------------------------------
def _functional(rng, width, owner, halving=True, inplace=True):
    """One activation of wxb.nn.functional that ONNX can express, its settings drawn (an
    in-place one where ``owner`` says h is no longer the batch), on rows of ``width``:
    f(h) and the width it gives (GLU halves it, where ``halving``). A PReLU slope is
    registered on ``owner``, a parameter of its own. ``inplace``: whether f may change h
    in place (not a slice of a result: that changes the result through a view, which the
    export refuses)."""

    a, b, c, d = (float(v) for v in rng.uniform(0, 1, size=4))
    mode = str(rng.choice(["none", "tanh"]))
    # in place (F.relu_ and the like) on a result of its own: not the batch (predict's X),
    # nor a view of another result (a slice, passed on by a dropout: see ``inplace``)
    inplace = inplace and owner.fresh and bool(rng.random() < 0.5)
    dims = int(rng.choice([1, -1]))
    lo, hi, slope = -2 * a, 2 * b, 2 * c - 1  # Hardtanh's bounds, LeakyReLU's slope
    choices = [
        lambda h: F.celu_(h, 0.2 + 2 * a) if inplace else F.celu(h, 0.2 + 2 * a),
        lambda h: F.elu_(h, 0.1 + 2 * a) if inplace else F.elu(h, 0.1 + 2 * a),
        lambda h: F.gelu(h, approximate=mode),
        lambda h: F.hardshrink(h, a),
        lambda h: F.hardsigmoid(h),
        lambda h: F.hardswish(h),
        lambda h: F.hardtanh_(h, lo, hi) if inplace else F.hardtanh(h, lo, hi),
        lambda h: F.leaky_relu_(h, slope) if inplace else F.leaky_relu(h, slope),
        lambda h: F.log_softmax(h, dim=dims),
        lambda h: F.logsigmoid(h),
        lambda h: F.mish(h),
        lambda h: F.relu_(h) if inplace else F.relu(h),
        lambda h: F.relu(h, inplace=True),  # (torch's flag: computes out of place)
        lambda h: F.relu6(h),
        lambda h: F.rrelu(h, 0.3 * a, 0.3 + 0.3 * b, training=False),
        lambda h: F.selu_(h) if inplace else F.selu(h),
        lambda h: F.sigmoid(h),
        lambda h: F.silu(h),
        lambda h: F.softmax(h, dim=dims),
        lambda h: F.softmin(h, dim=dims),
        lambda h: F.softplus(h, 0.2 + 3 * a, 1 + 19 * b),
        lambda h: F.softshrink(h, a),
        lambda h: F.softsign(h),
        lambda h: F.tanh(h),
        lambda h: F.tanhshrink(h),
        lambda h: (
            F.threshold_(h, lo / 2, 4 * d - 2) if inplace else F.threshold(h, lo / 2, 4 * d - 2)
        ),
    ]
    if halving and width % 2 == 0:
        choices.append("glu")
    choices.append("prelu")
    pick = choices[int(rng.integers(len(choices)))]
    if pick == "glu":
        return (lambda h: F.glu(h, -1)), width // 2
    if pick == "prelu":
        n = int(rng.choice([1, width]))
        slope = Parameter(rng.uniform(-1, 1, size=n).astype(owner.dtype_name))
        setattr(owner, f"slope{owner.steps}", slope)
        return (lambda h: F.prelu(h, slope)), width
    return pick, width


class Traced(Module):
    """A forward of one's own as PyTorch users write them, drawn: residual adds, a layer
    called twice, concatenation, slicing, ``h @ self.W.T`` with a parameter of its own,
    functional activations (in place too), dropout (off in eval), norms and arithmetic
    with constants, over rows of changing width. Each step is f(module, h): it calls
    the layers of the module that runs it, ``self.fc(h)``, as a forward does."""

    def __init__(self, rng, dtype, n_features, first=None):
        super().__init__()
        self.dtype_name, self.steps, self.program = dtype, 0, []
        self.fresh = False  # whether h is a result of its own (not the batch, nor a view)
        width = n_features
        kinds = ["twice", "residual", "concat", "slice", "param", "functional", "dropout", "norm"]
        kinds += ["reduce", "clamp", "permute", "stack", "normalize"]
        for k in range(int(rng.integers(2, 6))):
            kind = first if k == 0 and first else str(rng.choice([*kinds, "arith", "dense"]))
            step, width = self._draw(rng, kind, width)
            self.program.append(step)
            self.steps += 1
            self.fresh = kind not in ("slice", "dropout") and (kind != "functional" or self.fresh)
        self.out = _dense(rng, width, int(rng.integers(1, 5)), dtype)

    def _draw(self, rng, kind, w):
        dtype, k = self.dtype_name, self.steps
        if kind == "dense":
            layer = _dense(rng, w, int(rng.integers(1, 8)), dtype)
            setattr(self, f"dense{k}", layer)
            return (lambda m, h: getattr(m, f"dense{k}")(h)), layer.weight.shape[0]
        if kind == "twice":  # one weighted layer called twice (tied, recurrent blocks)
            layer = _dense(rng, w, w, dtype)
            setattr(self, f"square{k}", layer)
            act, _ = _functional(rng, w, self, halving=False)
            return (lambda m, h: getattr(m, f"square{k}")(act(getattr(m, f"square{k}")(h)))), w
        if kind == "residual":
            inner = _dense(rng, w, w, dtype) if rng.random() < 0.5 else _norm(rng, w, dtype)
            setattr(self, f"inner{k}", inner)
            act, _ = _functional(rng, w, self, halving=False)
            if rng.random() < 0.5:
                return (lambda m, h: h + act(getattr(m, f"inner{k}")(h))), w
            return (lambda m, h: getattr(m, f"inner{k}")(h) - 0.5 * h), w
        if kind == "concat":
            a = int(rng.integers(0, w))
            b = int(rng.integers(a + 1, w + 1))
            act, _ = _functional(rng, b - a, self, halving=False, inplace=False)
            axis = int(rng.choice([1, -1]))
            return (lambda m, h: ops.concatenate([h, act(h[:, a:b])], axis=axis)), w + b - a
        if kind == "slice":
            a = int(rng.integers(0, w))
            cuts = [
                ((lambda m, h: h[:, a:]), w - a),
                ((lambda m, h: h[..., ::-1]), w),
                ((lambda m, h: h[:, a : a + 1]), 1),
                ((lambda m, h: h[:, -1 - a :: -1]), w - a),
            ]
            return cuts[int(rng.integers(len(cuts)))]
        if kind == "param":  # x @ W.T (+ b) with parameters of its own
            n = int(rng.integers(1, 8))
            weight = Parameter(rng.normal(0, 1 / np.sqrt(w), size=(n, w)).astype(dtype))
            bias = Parameter(rng.normal(0, 0.5, size=n).astype(dtype))
            weight.requires_grad = bool(rng.random() < 0.8)  # (frozen: the same numbers)
            setattr(self, f"weight{k}", weight)
            setattr(self, f"bias{k}", bias)
            if rng.random() < 0.5:
                return (lambda m, h: h @ weight.T + bias), n
            return (lambda m, h: F.linear(h, weight, bias)), n
        if kind == "functional":
            act, width = _functional(rng, w, self)
            return (lambda m, h: act(h)), width
        if kind == "dropout":  # off in eval mode, as predict and the file run it
            p = float(rng.uniform(0.05, 0.6))
            if rng.random() < 0.5:
                layer = _dropout(rng)
                setattr(self, f"drop{k}", layer)
                return (lambda m, h: getattr(m, f"drop{k}")(h)), w
            return (lambda m, h: F.dropout(h, p, training=m.training)), w
        if kind == "norm":
            layer = _norm(rng, w, dtype)
            setattr(self, f"norm{k}", layer)
            return (lambda m, h: getattr(m, f"norm{k}")(h)), w
        if kind == "reduce":  # along the features, kept or put back: h − mean, h / max, …
            keep, dim = bool(rng.random() < 0.5), int(rng.choice([1, -1]))
            reductions = [
                lambda h: h.sum(dim, keepdim=keep),
                lambda h: h.mean(dim, keepdim=keep),
                lambda h: wxb.sum(h, dim=dim, keepdim=keep),
                lambda h: h.max(dim, keepdim=keep).values,
                lambda h: h.min(dim, keepdim=keep).values,
                lambda h: h.amax(dim, keepdim=keep),
                lambda h: h.amin(dim, keepdim=keep),
            ]
            reduce = reductions[int(rng.integers(len(reductions)))]
            if keep:
                return (lambda m, h: h - reduce(h)), w
            return (lambda m, h: h * reduce(h).reshape(-1, 1)), w
        if kind == "clamp":
            low, high = sorted(float(v) for v in rng.normal(0, 1, size=2))
            clamps = [
                lambda h: h.clamp(low, high),
                lambda h: h.clamp(min=low),
                lambda h: h.clamp(max=high),
                lambda h: h.clip(low, high),
                lambda h: wxb.clamp(h, low, high),
                lambda h: h.clamp_min(low),
                lambda h: h.clamp_max(high),
            ]
            clamp = clamps[int(rng.integers(len(clamps)))]
            return (lambda m, h: clamp(h)), w
        if kind == "permute":  # rows of w as (a, b) pieces, their two axes swapped
            a = next(n for n in range(2, w + 1) if w % n == 0) if w > 1 else 1
            return (lambda m, h: h.reshape(-1, a, w // a).permute(0, 2, 1).reshape(-1, w)), w
        if kind == "stack":
            if rng.random() < 0.5:  # side by side, a new axis 1, then flattened
                return (lambda m, h: wxb.stack([h, 2 * h - 1], dim=1).reshape(-1, 2 * w)), 2 * w
            return (lambda m, h: wxb.stack([h, h * h], dim=-1).sum(-1)), w
        if kind == "normalize":
            p, dim = float(rng.choice([1.0, 2.0, 3.0])), int(rng.choice([1, -1]))
            return (lambda m, h: F.normalize(h, p=p, dim=dim)), w
        c, d = float(rng.uniform(0.5, 2)), float(rng.normal())
        return (lambda m, h: (h * c - d) / c), w  # arith

    def forward(self, x):
        for step in self.program:  # (each step calls the layers of the module running it)
            x = step(self, x)
        return self.out(x)


def test_generated_forwards_of_ones_own_run_in_onnxruntime_as_predict(tmp_path, seeded):
    rng = seeded.rng
    for trial in range(6):
        dtype = str(rng.choice(["float32", "float64"]))
        n_features = int(rng.integers(1, 9))
        # the rows it takes: given, or found by export, which tries the width of the first
        # layer (a slice or a parameter first runs on rows of another width, or not at all)
        given = bool(rng.random() < 0.5)
        model = Traced(rng, dtype, n_features, first=None if given else "dense")
        model.train() if rng.random() < 0.5 else model.eval()
        shape = (n_features,) if given else None
        # (a reduction's axes are an input from opset 18, an attribute before)
        opset = int(rng.choice([13, 17, 18, onnx.defs.onnx_opset_version()]))
        path = export(model, tmp_path / f"t{trial}.onnx", sample_shape=shape, opset=opset)
        runner = session(path)
        assert runner.get_inputs()[0].shape == ["batch", n_features]
        for batch in batches(rng):
            X = rng.normal(0, 3, size=(batch, n_features)).astype(dtype)
            (got,) = runner.run(["output"], {"input": X})
            what = f"batch {batch}, {dtype}, opset {opset}, steps {model.program}"
            assert_close(got, model.predict(X), dtype, 3 * model.steps + 1, seeded.msg(what))


class TwiceInPlace(Module):
    """The forwards export refused (onnx57): one weighted layer called twice (tied
    weights), ``F.relu_`` and ``F.softmin(h, -1)`` on a layer's result."""

    def __init__(self, kind, n, dtype, rng):
        super().__init__()
        self.kind = kind
        self.fc = _dense(rng, n, n, dtype)
        self.out = _dense(rng, n, 2, dtype)

    def forward(self, x):
        h = self.fc(x)
        if self.kind == "twice":
            return self.fc(F.tanh(h))
        if self.kind == "relu_":
            F.relu_(h)
            return self.out(h)
        return self.out(F.softmin(h, -1))


@pytest.mark.parametrize("kind", ["twice", "relu_", "softmin"])
def test_a_layer_called_twice_relu_and_softmin_in_a_forward_export(tmp_path, seeded, kind):
    rng = seeded.rng
    dtype = str(rng.choice(["float32", "float64"]))
    n = int(rng.integers(1, 8))
    model = TwiceInPlace(kind, n, dtype, rng)
    runner = session(export(model, tmp_path / "m.onnx"))
    # NumPy's own rows, in float64: Z = X·Wᵀ + b of each layer
    W, b = (a.astype(np.float64) for a in (model.fc.weight.data, _bias(model.fc)))
    V, c = (a.astype(np.float64) for a in (model.out.weight.data, _bias(model.out)))
    for batch in (1, int(rng.integers(2, 40))):  # (traced on 3 and 5 rows)
        X = rng.normal(0, 3, size=(batch, n)).astype(dtype)
        h = X.astype(np.float64) @ W.T + b
        if kind == "twice":
            want = np.tanh(h) @ W.T + b
        elif kind == "relu_":
            want = np.maximum(h, 0) @ V.T + c
        else:
            e = np.exp(-(h - h.min(axis=1, keepdims=True)))
            want = (e / e.sum(axis=1, keepdims=True)) @ V.T + c
        (got,) = runner.run(["output"], {"input": X})
        tol = 1e-12 if dtype == "float64" else 1e-5
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=seeded.msg(kind))
        assert_close(got, model.predict(X), dtype, 3, seeded.msg(kind))


def _bias(layer):
    return layer.bias.data if layer.bias is not None else np.zeros(layer.weight.shape[0])


class Untraceable(Module):
    """A forward the trace cannot follow: the refusal names the operation and where."""

    def __init__(self, kind, dtype, rng):
        super().__init__()
        self.kind = kind
        self.fc = _dense(rng, 4, 4, dtype)
        self.other = Parameter(rng.normal(size=(4, 4)).astype(dtype))
        self.calls = 0
        self.register_buffer("seen", np.zeros(4, dtype=dtype))

    def forward(self, x):
        # state a forward changes: the file held the first call's (onnxhunt62)
        if self.kind == "weight set":  # (a chain of one layer otherwise)
            self.fc.weight = self.other
            return self.fc(x)
        if self.kind == "weight written":
            self.fc.weight.data[0, 0] += 1.0  # (export wrote it into the model, twice)
            return self.fc(x)
        h = self.fc(x)
        if self.kind == "count":
            self.calls += 1
            return x + h * self.calls
        if self.kind == "buffer written":
            self.seen += 1.0
            return x + h * wxb.tensor(self.seen)
        if self.kind == "noise":  # one draw, the same constant on both sample batches
            return x + h + wxb.randn(1, 4, dtype=h.dtype)
        if self.kind == "numpy noise":
            return x + h * wxb.tensor(np.random.uniform(1, 2, size=4).astype(h.dtype))
        if self.kind == "mask from values":
            return x + wxb.where(h > 0, h, 0.1 * h)
        if self.kind == "count norm":
            return x + h.norm(p=0, dim=1, keepdim=True)
        if self.kind == "index array":
            return h[:, [0, 2]] + x[:, :2]
        if self.kind == "dropout left on":
            return x + F.dropout(h, 0.5)
        return x + h.detach()  # "cut": a value the graph does not follow


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("mask from values", ["comparison (>)", "'fc'"]),
        ("count norm", ["'norm'", "p = 0"]),
        ("index array", ["'index'", "'fc'"]),
        ("dropout left on", ["'dropout'", "training=self.training"]),
        ("cut", ["3 and 5 rows", "detach"]),
        ("weight set", ["changes attribute 'weight' of module 'fc'", "state"]),
        ("weight written", ["changes the values of 'fc.weight'", "state"]),
        ("count", ["changes attribute 'calls' of the model itself", "state"]),
        ("buffer written", ["changes the values of 'seen'", "state"]),
        ("noise", ["3 and 5 rows", "random"]),
        ("numpy noise", ["3 and 5 rows", "random"]),
    ],
)
def test_what_a_trace_cannot_follow_is_refused_in_one_line(tmp_path, seeded, kind, words):
    """Each was refused, or written computing what the model does not (onnxhunt62: a
    forward changing its state, the file holding the first call's; a draw, one constant
    in the file), with the model left as it was."""
    model = Untraceable(kind, str(seeded.rng.choice(["float32", "float64"])), seeded.rng)
    held = {name: p.data.copy() for name, p in model.named_parameters()}
    with pytest.raises(ConfigError) as caught:
        export(model, tmp_path / "m.onnx")
    message = str(caught.value)
    assert "\n" not in message and "Untraceable" in message, seeded.msg(message)
    assert all(w in message for w in words), seeded.msg(message)
    assert list(tmp_path.iterdir()) == []
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(p.data, held[name], err_msg=seeded.msg(name))
    assert model.calls == 0 and not model.seen.any(), seeded.msg("the model's state changed")


class Affine(Module):
    """No layer or parameter says the width of its rows: sample_shape gives it."""

    def __init__(self, scale, shift):
        super().__init__()
        self.scale, self.shift = scale, shift

    def forward(self, x):
        return F.tanh(x * self.scale - self.shift)[:, ::-1]


def test_a_forward_of_no_layers_exports_on_the_rows_sample_shape_gives(tmp_path, seeded):
    rng = seeded.rng
    n, scale, shift = int(rng.integers(1, 9)), float(rng.uniform(0.5, 2)), float(rng.normal())
    model = Affine(scale, shift)
    with pytest.raises(ConfigError, match=r"Affine.*sample_shape=\(n_features,\)"):
        export(model, tmp_path / "a.onnx")
    runner = session(export(model, tmp_path / "a.onnx", sample_shape=(n,)))
    assert runner.get_inputs()[0].shape == ["batch", n]
    X = rng.normal(0, 3, size=(int(rng.integers(1, 20)), n)).astype(np.float32)
    (got,) = runner.run(["output"], {"input": X})
    want = np.tanh(X.astype(np.float64) * np.float32(scale) - np.float32(shift))[:, ::-1]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=seeded.msg("affine"))


class Reduces(Module):
    """One operation applied after a layer: each was refused ("ONNX export has no form
    for it") before onnx61."""

    def __init__(self, rng, dtype, n, op):
        super().__init__()
        self.op = op
        self.fc = _dense(rng, n, 6, dtype)
        self.dim, self.keep = int(rng.choice([1, -1])), bool(rng.random() < 0.5)
        self.low, self.high = sorted(float(v) for v in rng.normal(0, 1, size=2))
        shape = (6,) if rng.random() < 0.5 else (1, 6)  # a mask held by the model
        self.register_buffer("kept", rng.random(shape) < 0.5)

    def forward(self, x):
        h, dim, keep = self.fc(x), self.dim, self.keep
        if self.op == "where":
            return wxb.where(self.kept, h, self.low * h)
        put_back = (lambda r: r) if keep else (lambda r: r.reshape(-1, 1))
        if self.op == "sum":
            return h - put_back(h.sum(dim, keepdim=keep))
        if self.op == "mean":
            return h - put_back(h.mean(dim, keepdim=keep))
        if self.op == "max":
            return h - put_back(h.max(dim, keepdim=keep).values)
        if self.op == "amax":
            return h - put_back(h.amax(dim, keepdim=keep))
        if self.op == "amin":
            return h * put_back(h.amin(dim, keepdim=keep))
        if self.op == "clamp":
            return h.clamp(self.low, self.high) + h.clip(min=self.low) + h.clamp(max=self.high)
        if self.op == "permute":
            return h.reshape(-1, 2, 3).permute(0, 2, 1).reshape(-1, 6)
        if self.op == "stack":
            side_by_side = wxb.stack([h, h * h], dim=1).reshape(-1, 12)
            return ops.concatenate([side_by_side, wxb.stack([h, 1 - h], -1).amax(-1)], axis=1)
        return F.normalize(h, dim=dim) + F.normalize(h, p=1, dim=dim)  # normalize


@pytest.mark.parametrize(
    "op", ["sum", "mean", "max", "amax", "amin", "clamp", "permute", "stack", "normalize", "where"]
)
def test_reductions_clamp_permute_stack_and_normalize_export(tmp_path, seeded, op):
    """h − h.sum(1, keepdim=True), h.max(1).values, h.clamp(lo, hi), permute, wxb.stack,
    F.normalize, wxb.where(self.mask, h, c·h) in a forward of one's own: refused before;
    the file now gives what predict gives at batch sizes other than the traced 3 and 5,
    at opset 13 (a reduction's axes as an attribute) and 18 on (as an input)."""
    rng = seeded.rng
    dtype = str(rng.choice(["float32", "float64"]))
    n = int(rng.integers(1, 6))
    model = Reduces(rng, dtype, n, op)
    opset = int(rng.choice([13, 17, onnx.defs.onnx_opset_version()]))
    path = export(model, tmp_path / "r.onnx", opset=opset)
    runner = session(path)
    for batch in batches(rng):
        X = rng.normal(0, 3, size=(batch, n)).astype(dtype)
        (got,) = runner.run(["output"], {"input": X})
        what = f"batch {batch}, {dtype}, opset {opset}, dim {model.dim}, keepdim {model.keep}"
        assert_close(got, model.predict(X), dtype, 2, seeded.msg(what))


class UsedThenChanged(Module):
    """A result changed in place after an operation used it: that operation took its
    values of before (onnxhunt62: the file fed it the changed ones, 5 off in every row
    for a += 5)."""

    def __init__(self, rng, dtype, n, kind):
        super().__init__()
        self.kind, self.shift = kind, float(rng.uniform(1, 5))
        self.fc = _dense(rng, n, 4, dtype)

    def forward(self, x):
        if self.kind == "batch":  # the batch itself, after a product read it
            h = x * 2.0
            x += self.shift
            return self.fc(h + x)
        a = self.fc(x) * 2.0
        b = a.exp() if self.kind == "clamp_" else a + 1.0
        if self.kind == "+=":
            a += self.shift
        elif self.kind == "relu_":
            F.relu_(a)
        elif self.kind == "clamp_":
            a.clamp_(min=-self.shift / 4)
        else:  # mul_, twice: a product of the changed a, then changed again
            a.mul_(self.shift)
            b = b * a
            a -= 1.0
        return b + a


@pytest.mark.parametrize("kind", ["+=", "relu_", "clamp_", "mul_", "batch"])
def test_a_result_changed_in_place_after_its_use_exports_what_predict_gives(tmp_path, seeded, kind):
    rng = seeded.rng
    dtype = str(rng.choice(["float32", "float64"]))
    n = int(rng.integers(1, 6))
    model = UsedThenChanged(rng, dtype, n, kind)
    runner = session(export(model, tmp_path / "u.onnx"))
    for batch in batches(rng):
        X = rng.normal(0, 3, size=(batch, n)).astype(dtype)
        (got,) = runner.run(["output"], {"input": X})
        want = model.predict(X.copy())  # (x += … writes into the batch given)
        assert_close(got, want, dtype, 3, seeded.msg(f"{kind}, batch {batch}, {dtype}"))


class Columns(Module):
    """A column taken by an integer index, ``h[:, k]``, a row of B values: the file's
    index was 1-d (NumPy's ascontiguousarray of a 0-d array), so Gather kept the axis
    and gave a (B, 1) column (onnxhunt62: broadcast against ``h[:, j:j+1]`` it summed
    other numbers; stacked, onnx's checker failed)."""

    def __init__(self, rng, dtype, n, kind):
        super().__init__()
        self.kind = kind
        self.fc = _dense(rng, n, 4, dtype)
        self.k, self.j = (int(v) for v in rng.choice(4, size=2, replace=False))

    def forward(self, x):
        h, k, j = self.fc(x), self.k, self.j
        if self.kind == "broadcast":  # (B,) + (B, 1): every pair, summed over the rows
            return (h[:, k] + h[:, j : j + 1]).sum(1, keepdim=True) + h
        return wxb.stack([h[:, k], h[:, j], h[:, k] * h[:, j]], 1)  # "stack"


@pytest.mark.parametrize("kind", ["broadcast", "stack"])
def test_a_column_taken_by_an_integer_index_is_a_row_of_values(tmp_path, seeded, kind):
    rng = seeded.rng
    dtype = str(rng.choice(["float32", "float64"]))
    n = int(rng.integers(1, 6))
    model = Columns(rng, dtype, n, kind)
    runner = session(export(model, tmp_path / "c.onnx"))
    for batch in batches(rng):
        X = rng.normal(0, 3, size=(batch, n)).astype(dtype)
        (got,) = runner.run(["output"], {"input": X})
        assert_close(got, model.predict(X), dtype, 3, seeded.msg(f"{kind}, batch {batch}"))


class KeepsFeatures(Module):
    """A forward keeping a result to look at later (``self.features = h``): no state the
    output turns on, exported as before (a weight or a count set is refused)."""

    def __init__(self, rng, dtype, n, residual):
        super().__init__()
        self.fc, self.head = _dense(rng, n, n, dtype), _dense(rng, n, 3, dtype)
        self.residual, self.features = residual, None

    def forward(self, x):
        h = F.relu(self.fc(x))
        self.features = h
        return self.head(h + x if self.residual else h)


@pytest.mark.parametrize("residual", [False, True])
def test_a_forward_keeping_a_result_to_look_at_still_exports(tmp_path, seeded, residual):
    rng = seeded.rng
    dtype, n = str(rng.choice(["float32", "float64"])), int(rng.integers(1, 6))
    model = KeepsFeatures(rng, dtype, n, residual)
    runner = session(export(model, tmp_path / "k.onnx"))
    X = rng.normal(0, 3, size=(int(rng.integers(1, 70)), n)).astype(dtype)
    (got,) = runner.run(["output"], {"input": X})
    assert_close(got, model.predict(X), dtype, 2, seeded.msg(f"residual {residual}"))
