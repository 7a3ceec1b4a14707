"""A hunt of wxb ⇄ PyTorch and ONNX export on models a user could write: the twin, the
state it is loaded from and the exported file must give the model's numbers, and what
cannot be carried over must be refused by name.

Models and data are drawn fresh on every run (``WXB_TEST_SEED=<seed>`` replays one)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from wxb.errors import DataError
from wxb.nn import BatchNorm1d, Dense, ReLU, Sequential, Tanh

torch = pytest.importorskip("torch")


def _torch_net(rng, n: int, h: int, dtype):
    torch.manual_seed(int(rng.integers(1 << 62)))
    nn = torch.nn
    net = nn.Sequential(nn.Linear(n, h), nn.BatchNorm1d(h), nn.Tanh(), nn.Linear(h, 2, bias=False))
    net = net.to(dtype).train()
    with torch.no_grad():
        for _ in range(int(rng.integers(1, 4))):  # running statistics of a few batches
            net(torch.randn(int(rng.integers(2, 9)), n, dtype=dtype))
    return net.eval()


def test_a_torch_state_of_parameters_that_require_grad_loads_as_torch_loads_it(seeded):
    """dict(net.named_parameters()) (torch's load_state_dict takes it) raised torch's
    RuntimeError "Can't call numpy() on Tensor that requires grad" from wxb's."""
    rng = seeded.rng
    n, h = (int(v) for v in rng.integers(2, 7, size=2))
    net = _torch_net(rng, n, h, torch.float64)
    model = Sequential(Dense(n, h), BatchNorm1d(h), Tanh(), Dense(h, 2, bias=False)).double()
    ours = list(model.state_dict())
    params = list(net.named_parameters())
    assert all(p.requires_grad for _, p in params)
    names = [k for k in ours if not k.endswith(("running_mean", "running_var", "tracked"))]
    missing = model.load_state_dict(dict(zip(names, (p for _, p in params), strict=True)), False)
    assert missing.unexpected_keys == [] and all("batchnorm" in k for k in missing.missing_keys)
    buffers = dict(zip([k for k in ours if k not in names], net.buffers(), strict=True))
    model.load_state_dict(buffers, strict=False)
    X = rng.normal(size=(int(rng.integers(1, 20)), n))
    with torch.no_grad():
        expected = net(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(
        model.predict(X), expected, rtol=1e-12, atol=1e-12, err_msg=seeded.msg("loaded")
    )


@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")
def test_a_torch_state_numpy_cannot_hold_is_refused_by_name_and_nothing_loads(seeded):
    """bfloat16 tensors raised torch's TypeError "Got unsupported ScalarType BFloat16"
    (those now load widened, as torch's do: tests/test_files_hunt46.py); a complex32
    one, which no float parameter takes, is still refused by name."""
    rng = seeded.rng
    n, h = (int(v) for v in rng.integers(2, 7, size=2))
    net = _torch_net(rng, n, h, torch.float32)
    model = Sequential(Dense(n, h), BatchNorm1d(h), ReLU(), Dense(h, 2, bias=False))
    before = model.state_dict()
    state = dict(zip(before, net.state_dict().values(), strict=True))
    state["dense2.weight"] = state["dense2.weight"].to(torch.complex32)
    with pytest.raises(DataError, match=r"dense2\.weight: .*complex32.*\.float\(\)"):
        model.load_state_dict(state)
    after = model.state_dict()
    assert all(np.array_equal(after[k], v) for k, v in before.items()), seeded.msg("half-loaded")


def test_a_forward_running_a_block_under_no_grad_is_refused_not_trained_by_the_twin(seeded):
    """``with no_grad(): h = self.backbone(x)`` (a frozen feature extractor): wxb gives the
    backbone no gradient, but to_torch made a plain Sequential whose backbone got one
    (‖∂L/∂W‖ of the size of the head's), so fine-tuning the twin trained what wxb never
    trains. Refused by the layer's path; frozen parameters instead convert and agree."""
    import wxb
    from wxb import interop
    from wxb.errors import ConfigError
    from wxb.nn import Module

    rng = seeded.rng
    n, h, k = (int(v) for v in rng.integers(2, 7, size=3))

    class Net(Module):
        def __init__(self, frozen_by_no_grad: bool):
            super().__init__()
            self.frozen_by_no_grad = frozen_by_no_grad
            self.backbone = Sequential(Dense(n, h, seed=int(rng.integers(1 << 30))), ReLU())
            self.head = Dense(h, k, seed=int(rng.integers(1 << 30)))

        def forward(self, x):
            if self.frozen_by_no_grad:
                with wxb.no_grad():
                    x = self.backbone(x)
                return self.head(x)
            return self.head(self.backbone(x))

    model = Net(True).double()
    X = rng.normal(size=(int(rng.integers(2, 12)), n))
    (model(X) ** 2).sum().backward()
    assert model.backbone[0].weight.grad is None  # what wxb computes
    with pytest.raises(ConfigError, match=r"module 'backbone\.dense1' without recording a graph"):
        interop.to_torch(model)

    model = Net(False).double()  # the way the message names
    for p in model.backbone.parameters():
        p.requires_grad = False
    twin = interop.to_torch(model)
    (model(X) ** 2).sum().backward()
    (twin(torch.from_numpy(X)) ** 2).sum().backward()
    theirs = dict(twin.named_parameters())
    for name, p in model.named_parameters():
        twin_p = theirs[name.replace("backbone.", "backbone_")]
        assert p.requires_grad == twin_p.requires_grad, seeded.msg(name)
        assert (p.grad is None) == (twin_p.grad is None), seeded.msg(name)
        if p.grad is not None:
            np.testing.assert_allclose(
                p.grad, twin_p.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=seeded.msg(name)
            )


@pytest.mark.parametrize("how", ["F.dropout", "a branch on self.training"])
def test_a_forward_that_trains_otherwise_than_it_predicts_is_refused(seeded, how):
    """``self.fc2(F.dropout(self.fc1(x), p, training=self.training))``: the sample run
    (eval mode) saw fc1 → fc2, and to_torch gave that Sequential: the twin, trained,
    dropped nothing (its training outputs were its eval ones, where wxb's dropped a
    fraction p of the units). Refused; the same net with a Dropout layer converts and
    trains alike (the twin drops units too)."""
    from wxb import interop
    from wxb.errors import ConfigError
    from wxb.nn import Dropout, Module
    from wxb.nn import functional as F

    rng = seeded.rng
    n, h, k = (int(v) for v in rng.integers(2, 7, size=3))
    p = float(rng.uniform(0.2, 0.8))

    class Net(Module):
        def __init__(self, layer: bool):
            super().__init__()
            self.layer = layer
            self.fc1 = Dense(n, h, seed=int(rng.integers(1 << 30)))
            self.drop = Dropout(p) if layer else None
            self.fc2 = Dense(h, k, seed=int(rng.integers(1 << 30)))

        def forward(self, x):
            x = F.tanh(self.fc1(x))
            if self.layer:
                x = self.drop(x)
            elif how == "F.dropout":
                x = F.dropout(x, p, training=self.training)
            elif self.training:
                x = x * (1 - p)
            return self.fc2(x)

    model = Net(False).double().train()
    X = rng.normal(size=(int(rng.integers(20, 40)), n))
    ours, predicted = model(X).data, model.predict(X)
    assert not np.allclose(ours, predicted), seeded.msg("wxb trains otherwise than it predicts")
    with pytest.raises(ConfigError, match=r"in training mode its forward computes other"):
        interop.to_torch(model)

    twin = interop.to_torch(Net(True).double().train())
    assert [type(m) for m in twin] == [
        torch.nn.Linear, torch.nn.Tanh, torch.nn.Dropout, torch.nn.Linear
    ]  # fmt: skip
    assert twin.training and twin[2].p == p


@pytest.mark.parametrize("kind", ["Softmax", "LogSoftmax"])
def test_softmax_over_inputs_of_three_dims_is_over_the_same_axis_both_ways(seeded, kind):
    """wxb's Softmax(dim=-1) runs over the last axis of an (N, C, L) input (after a
    LayerNorm or BatchNorm1d, which take one); to_torch made it nn.Softmax(dim=1), over C:
    outputs off by up to 0.4 (2.0 for LogSoftmax). And from_torch read nn.Softmax(dim=1)
    as wxb's Softmax(), over L where PyTorch's is over C. Now the twin's is over dim=-1,
    and a torch dim=1 stays dim=1 (wxb refuses it on 3 dims in one line, as for its own;
    Softmax() without dim too, where torch's implicit axis is dim 0)."""
    from wxb import interop
    from wxb.errors import ConfigError
    from wxb.nn import LayerNorm, LogSoftmax, Softmax

    rng = seeded.rng
    n, c, length = (int(v) for v in rng.integers(2, 7, size=3))
    X = rng.normal(size=(n, c, length)) * 3
    ours = {"Softmax": Softmax, "LogSoftmax": LogSoftmax}[kind]
    for norm in (LayerNorm(length), BatchNorm1d(c)):
        with pytest.raises(ConfigError, match=r"\(\) of a tensor of 3 dimensions needs dim="):
            Sequential(norm, ours()).double().eval()(X)
        model = Sequential(norm, ours(dim=-1)).double().eval()
        z = norm(X).data
        shifted = z - z.max(axis=-1, keepdims=True)  # the reference: over the last axis
        log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        expected = log_p if kind == "LogSoftmax" else np.exp(log_p)
        got = model(X).data
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=seeded.msg(kind))
        twin = interop.to_torch(model)
        with torch.no_grad():
            theirs = twin(torch.from_numpy(X)).numpy()
        np.testing.assert_allclose(theirs, got, rtol=1e-12, atol=1e-12, err_msg=seeded.msg(kind))

    layer = getattr(torch.nn, kind)
    for dim in (1, -1):
        net = torch.nn.Sequential(torch.nn.BatchNorm1d(c), layer(dim=dim)).double().eval()
        model = interop.from_torch(net)
        with torch.no_grad():
            theirs = net(torch.from_numpy(X)).numpy()
        if dim == 1:  # over C in PyTorch: refused, not computed over L
            with pytest.raises(ConfigError, match=r"\(dim=1\) of a tensor of 3 dimensions"):
                model(X)
        else:
            np.testing.assert_allclose(
                model(X).data, theirs, rtol=1e-12, atol=1e-12, err_msg=seeded.msg(kind)
            )
        rows = rng.normal(size=(n, c))  # rows: both read alike
        with torch.no_grad():
            expected = net(torch.from_numpy(rows)).numpy()
        np.testing.assert_allclose(model.predict(rows), expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------
# Every stock layer, drawn at random: PyTorch and onnxruntime compute what wxb does
# ---------------------------------------------------------------------------------
def _activation(rng):
    from wxb.nn import layers as L

    kind = int(rng.integers(11))
    if kind == 0:
        return L.LeakyReLU(float(rng.uniform(-0.5, 1.5)))
    if kind == 1:
        return L.GELU(str(rng.choice(["none", "tanh"])))
    if kind == 2:
        return L.ELU(float(rng.uniform(0.1, 3)))
    if kind == 3:
        return L.Softplus(float(rng.uniform(0.3, 3)), float(rng.uniform(1, 30)))
    return [L.Identity, L.Sigmoid, L.Tanh, L.ReLU, L.SiLU, L.Softmax, L.LogSoftmax][kind - 4]()


def _network(rng, dtype):
    from wxb.nn import Dropout, LayerNorm, Standardize

    n = int(rng.integers(1, 7))
    width, layers = n, []
    if rng.random() < 0.4:
        layers.append(Standardize(rng.normal(size=n), rng.uniform(0.3, 3, size=n)))
    for _ in range(int(rng.integers(1, 5))):
        out = int(rng.integers(2, 8))  # (a norm of one value is a constant: no test)
        layers.append(
            Dense(width, out, bias=bool(rng.random() < 0.7), seed=int(rng.integers(1 << 30)))
        )
        width, draw = out, rng.random()
        eps = float(10 ** rng.uniform(-5, -2))  # (below, float32 noise of a constant
        # feature is blown up by 1/√eps, in PyTorch as in wxb)
        if draw < 0.25:
            affine = bool(rng.random() < 0.7)
            layers.append(LayerNorm(width, eps, affine, bias=bool(rng.random() < 0.7)))
        elif draw < 0.5:
            momentum = None if rng.random() < 0.3 else float(rng.uniform(0, 1))
            layers.append(BatchNorm1d(width, eps, momentum, bool(rng.random() < 0.7)))
        layers.append(_activation(rng))
        if rng.random() < 0.2:
            layers.append(Dropout(float(rng.uniform(0, 0.9))))
    if rng.random() < 0.3:
        layers = [Sequential(*layers[: len(layers) // 2]), *layers[len(layers) // 2 :]]
    model = Sequential(*layers).to(dtype)
    for p in model.parameters():
        p.data += rng.normal(scale=0.5, size=p.shape).astype(dtype)
    if rng.random() < 0.3 and len(model.parameters()) > 1:
        model.parameters()[0].requires_grad = False
    model.train()
    for _ in range(int(rng.integers(0, 3))):  # running statistics of a few batches
        model(rng.normal(size=(int(rng.integers(2, 9)), n)).astype(dtype))
    return model, n


def _relative_error(a, b) -> float:
    """The largest |a − b| relative to max(|b|, 1)."""
    scale = np.maximum(np.abs(b), 1)
    return float(np.max(np.abs(np.asarray(a, np.float64) - b) / scale, initial=0))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_random_networks_of_every_stock_layer_agree_with_torch_and_onnxruntime(
    tmp_path, seeded, dtype
):
    from wxb import interop
    from wxb import onnx as wonnx

    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    rng = seeded.rng
    tol = {"float32": 2e-4, "float64": 1e-9}[dtype]  # relative to max(|value|, 1)

    def close(a, b, what):
        error = _relative_error(a, b)
        assert error <= tol, seeded.msg(f"{what}: error {error:.3g}")

    for trial in range(12):
        model, n = _network(rng, dtype)
        twin = interop.to_torch(model)
        assert all(p.dtype == getattr(torch, dtype) for p in twin.parameters())
        assert list(twin.state_dict()) == list(model.state_dict()), seeded.msg(f"{trial} keys")
        back = interop.from_torch(twin)  # the round trip keeps every bit
        assert back.config() == model.config(), seeded.msg(f"{trial} config")
        for key, array in model.state_dict().items():
            assert back.state_dict()[key].dtype == array.dtype, seeded.msg(key)
            assert np.array_equal(back.state_dict()[key], array), seeded.msg(key)

        # training mode (no Dropout drawn here: its masks are each library's own)
        if not any(type(m).__name__ == "Dropout" for m in model.modules()):
            X = (rng.normal(size=(int(rng.integers(2, 12)), n)) * 2).astype(dtype)
            out = model(X)
            (out * out).sum().backward()
            theirs = twin(torch.from_numpy(X))
            (theirs * theirs).sum().backward()
            close(out.data, theirs.detach().numpy(), f"{trial} training output")
            for (name, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
                assert p.requires_grad == q.requires_grad, seeded.msg(name)
                assert (p.grad is None) == (q.grad is None), seeded.msg(name)
            for key, array in twin.state_dict().items():  # the running statistics moved alike
                close(model.state_dict()[key], array.numpy(), f"{trial} {key}")

        model.eval()
        twin.eval()
        back = interop.from_torch(interop.to_torch(model))  # (statistics moved since)
        path = wonnx.export(model, tmp_path / f"m{trial}.onnx")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        exact = copy.deepcopy(twin).double()  # float32's weights, computed in float64
        for rows in (1, int(rng.integers(2, 40))):
            X = (rng.normal(size=(rows, n)) * rng.uniform(0.1, 10)).astype(dtype)
            ours = model.predict(X)
            with torch.no_grad():
                theirs = twin(torch.from_numpy(X)).numpy()
                truth = exact(torch.from_numpy(X.astype(np.float64))).numpy()
            # float32 through a small running variance or a LayerNorm of eps 1e-5 loses
            # more than 2e-4 (a draw measured 3.2e-4 between the two): wxb's rounding is
            # held to torch's own, both measured against the float64 computation
            allowed = max(tol, 2 * _relative_error(theirs, truth))
            error = _relative_error(ours, truth)
            assert error <= allowed, seeded.msg(
                f"{trial} torch eval, {rows} rows: error {error:.3g} against float64, "
                f"torch's {_relative_error(theirs, truth):.3g}"
            )
            got = session.run(None, {"input": X})[0]
            assert got.dtype == ours.dtype and got.shape == ours.shape, seeded.msg(str(trial))
            close(got, ours, f"{trial} onnxruntime, {rows} rows")
            assert np.array_equal(back.predict(X), ours), seeded.msg(f"{trial} round trip")


def test_a_float64_factor_within_float32_rounding_of_one_is_kept_by_onnxruntime(tmp_path, seeded):
    """onnxruntime's NoopElimination drops x·c and x/c for a one-element c that rounds to
    1 in float32: a float64 BatchNorm1d(1) with eps = 5.8e-8 and its first statistics
    (factor 1/√(1 + eps)) came out 2.9e-8 off, the eps lost; a Standardize of one
    feature, an ELU's α and a Softplus's β of 1 + δ alike (δ off, not an ulp)."""
    from wxb import onnx as wonnx
    from wxb.nn import ELU, Softplus, Standardize

    ort = pytest.importorskip("onnxruntime")
    rng = seeded.rng

    def near_one():
        return 1.0 + float(rng.uniform(1e-9, 2.5e-8)) * float(rng.choice([-1.0, 1.0]))

    n = int(rng.integers(2, 6))
    models = {
        "BatchNorm1d": Sequential(Dense(n, 1), BatchNorm1d(1, eps=float(rng.uniform(2e-9, 5e-8)))),
        "Standardize": Sequential(
            Standardize([float(rng.normal())], [near_one()], dtype="float64"), Tanh()
        ),
        "ELU": Sequential(Dense(n, n), ELU(near_one())),
        "Softplus": Sequential(Dense(n, n), Softplus(near_one(), float(rng.uniform(5, 20)))),
    }
    failed = []
    for kind, model in models.items():
        model = model.double().eval()
        width = 1 if kind == "Standardize" else n
        X = rng.normal(size=(int(rng.integers(1, 30)), width)) * float(rng.uniform(1, 100))
        path = wonnx.export(model, tmp_path / f"{kind}.onnx")
        got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
            None, {"input": X}
        )[0]
        ours = model.predict(X)
        error = float(np.max(np.abs(got - ours) / np.maximum(np.abs(ours), 1)))
        if error > 1e-12:  # (rounding: an ulp or a few; the factor lost: δ ≥ 1e-9)
            failed.append(f"{kind}: relative error {error:.3g}")
    assert not failed, seeded.msg("; ".join(failed))


def test_a_parameter_set_by_hand_that_does_not_fit_is_refused_by_name(seeded):
    """dense.bias = Parameter of another length: to_torch raised torch's RuntimeError
    "The size of tensor a (4) must match the size of tensor b (2)", naming nothing."""
    from wxb import interop
    from wxb.errors import ConfigError
    from wxb.nn import Parameter

    rng = seeded.rng
    n, h = (int(v) for v in rng.integers(2, 7, size=2))
    model = Sequential(Dense(n, h), ReLU(), Dense(h, 2, name="head"))
    model.head.bias = Parameter(rng.normal(size=h + 1).astype(np.float32))
    with pytest.raises(ConfigError, match=r"module 'head' \(Dense\): its bias has shape"):
        interop.to_torch(model)
