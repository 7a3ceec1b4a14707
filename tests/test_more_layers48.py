"""torch.nn's layers a dense network ports with: Flatten, and the activations wxb lacked,
each against PyTorch (values, gradients, a training run) and in every place a model goes
(a model file, ONNX, PyTorch and back)."""

import numpy as np
import pytest

import wxb
from wxb import nn
from wxb.errors import ConfigError

torch = pytest.importorskip("torch")


def _copy_weights(model, twin):
    with torch.no_grad():
        for mine, their in zip(model.parameters(), twin.parameters(), strict=True):
            their.copy_(torch.tensor(mine.data))


def _same_weights(model, twin, rtol=1e-10, atol=1e-12):
    for mine, their in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(mine.data, their.detach().numpy(), rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------
# Flatten
# ---------------------------------------------------------------------------------
def test_flatten_values_and_gradient_are_torchs(rng):
    for _ in range(20):
        ndim = int(rng.integers(2, 5))
        shape = tuple(int(n) for n in rng.integers(1, 5, size=ndim))
        start = int(rng.integers(-ndim, ndim))
        end = int(rng.integers(start % ndim, ndim)) - ndim * int(rng.integers(0, 2))
        x = rng.normal(size=shape)
        ours, theirs = nn.Flatten(start, end), torch.nn.Flatten(start, end)
        ox, tx = wxb.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        a, b = ours(ox), theirs(tx)
        assert a.shape == tuple(b.shape)
        np.testing.assert_array_equal(a.data, b.detach().numpy())
        upstream = rng.normal(size=a.shape)
        (a * wxb.Tensor(upstream)).sum().backward()
        (b * torch.tensor(upstream)).sum().backward()
        np.testing.assert_array_equal(ox.grad, tx.grad.numpy())
        assert repr(ours) == repr(theirs)


def test_flatten_settings_are_checked_and_set_later():
    with pytest.raises(ConfigError, match="Flatten start_dim"):
        nn.Flatten(1.5)
    layer = nn.Flatten()
    with pytest.raises(ConfigError, match="Flatten end_dim"):
        layer.end_dim = "last"
    layer.start_dim = 2
    assert layer(wxb.Tensor(np.zeros((2, 3, 4, 5)))).shape == (2, 3, 20)


def _mnist_like(rng, rows, dims):
    X = rng.normal(size=(rows, *dims))
    return X, rng.integers(0, 3, rows)


@pytest.mark.parametrize("dims", [(3, 4), (2, 3, 2)], ids=["3-d", "4-d"])
def test_fit_takes_images_before_flatten_as_torchs_loop(rng, dims):
    rows, batch = 24, 8
    X, y = _mnist_like(rng, rows, dims)
    width = int(np.prod(dims))
    model = nn.Sequential(nn.Flatten(), nn.Dense(width, 5), nn.Tanh(), nn.Dense(5, 3))
    model = model.to("float64")
    twin = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(width, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)
    ).double()
    _copy_weights(model, twin)
    np.testing.assert_allclose(
        model.predict(X), twin(torch.tensor(X)).detach().numpy(), rtol=1e-12, atol=1e-14
    )
    opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    for start in range(0, rows, batch):
        opt.zero_grad()
        part = slice(start, start + batch)
        torch.nn.functional.cross_entropy(
            twin(torch.tensor(X[part])), torch.tensor(y[part])
        ).backward()
        opt.step()
    wxb.fit(
        model, X, y, optimizer=wxb.optim.SGD(model.parameters(), lr=0.1),
        epochs=1, batch_size=batch, shuffle=False, verbose=0,
    )  # fmt: skip
    _same_weights(model, twin)
    # the hand loop a PyTorch user writes
    loop = nn.Sequential(nn.Flatten(), nn.Dense(width, 3)).to("float64")
    twin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(width, 3)).double()
    _copy_weights(loop, twin)
    mine, theirs = wxb.optim.SGD(loop.parameters(), lr=0.1), torch.optim.SGD(twin.parameters(), 0.1)
    for _ in range(3):
        mine.zero_grad()
        theirs.zero_grad()
        nn.functional.cross_entropy(loop(wxb.Tensor(X)), wxb.Tensor(y)).backward()
        torch.nn.functional.cross_entropy(twin(torch.tensor(X)), torch.tensor(y)).backward()
        mine.step()
        theirs.step()
    _same_weights(loop, twin)


def test_flatten_in_file_onnx_and_torch(rng, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    import wxb.interop
    import wxb.onnx

    X, _ = _mnist_like(rng, 10, (2, 3))
    model = nn.Sequential(nn.Flatten(), nn.Dense(6, 4), nn.ReLU(), nn.Flatten(), nn.Dense(4, 2))
    model = model.to("float64")
    expected = model(X).data
    wxb.save(model, tmp_path / "m.safetensors")
    loaded = wxb.load(tmp_path / "m.safetensors")
    assert repr(loaded) == repr(model)
    np.testing.assert_array_equal(loaded.predict(X), expected)

    wxb.onnx.export(model, tmp_path / "m.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    got = session.run(None, {"input": X.reshape(len(X), -1)})[0]  # ONNX's input: rows
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    with pytest.raises(ConfigError, match="start_dim=1, end_dim=-1"):
        wxb.onnx.export(nn.Sequential(nn.Flatten(0), nn.Dense(6, 2)), tmp_path / "n.onnx")

    twin = wxb.interop.to_torch(model)
    assert isinstance(twin[0], torch.nn.Flatten)
    np.testing.assert_allclose(twin(torch.tensor(X)).detach().numpy(), expected, rtol=1e-12)
    back = wxb.interop.from_torch(torch.nn.Sequential(torch.nn.Flatten(0, 1), torch.nn.Flatten()))
    assert [(m.start_dim, m.end_dim) for m in back] == [(0, 1), (1, -1)]


# ---------------------------------------------------------------------------------
# ReLU6, Hardtanh, SELU, CELU, Mish, Hardswish, Hardsigmoid, LogSigmoid, Softsign,
# Tanhshrink, Threshold
# ---------------------------------------------------------------------------------
KINDS = [
    "relu6", "hardtanh", "selu", "celu", "mish", "hardswish", "hardsigmoid", "logsigmoid",
    "softsign", "tanhshrink", "threshold",
]  # fmt: skip
_SETTINGS = {"hardtanh": ("min_val", "max_val"), "celu": ("alpha",)}
_SETTINGS["threshold"] = ("threshold", "value")
EPS64, EPS32 = np.finfo(np.float64).eps, np.finfo(np.float32).eps


def _pair(rng, kind):
    """A wxb activation with random settings, and PyTorch's twin."""
    if kind == "hardtanh":
        low = float(rng.uniform(-3, 1))
        high = low + float(rng.uniform(0.1, 4))
        return nn.Hardtanh(low, high), torch.nn.Hardtanh(low, high)
    if kind == "celu":
        alpha = float(rng.uniform(0.1, 3.0))
        return nn.CELU(alpha), torch.nn.CELU(alpha)
    if kind == "threshold":
        t, v = (float(u) for u in rng.normal(size=2) * 2)
        return nn.Threshold(t, v), torch.nn.Threshold(t, v)
    name = {"relu6": "ReLU6", "selu": "SELU", "mish": "Mish", "hardswish": "Hardswish"}.get(kind)
    name = name or {"hardsigmoid": "Hardsigmoid", "logsigmoid": "LogSigmoid"}.get(kind)
    name = name or {"softsign": "Softsign", "tanhshrink": "Tanhshrink"}[kind]
    return getattr(nn, name)(), getattr(torch.nn, name)()


def _inputs(rng, shape, layer):
    """Ordinary values, large ones both ways (overflow of e^z), and the kinks: 0, ±3, 6,
    the layer's own thresholds, each exactly (ties)."""
    z = rng.normal(size=shape) * rng.choice([0.5, 5.0, 40.0], size=shape)
    kinks = [0.0, -0.0, 3.0, -3.0, 6.0, 1e3, -1e3, 1e-12, -1e-12]
    kinks += [float(getattr(layer, key)) for key in ("min_val", "max_val", "threshold")
              if hasattr(layer, key)]  # fmt: skip
    flat = z.reshape(-1)
    chosen = rng.choice(kinks, size=min(len(kinks), flat.size), replace=False)
    flat[rng.choice(flat.size, size=len(chosen), replace=False)] = chosen
    return z


def _value_tolerance(kind, z, eps):
    """Tanhshrink is z − tanh z as torch writes it, cancelling near 0: one rounding of
    tanh z (NumPy's and torch's tanh may differ there by an ulp) beyond rtol."""
    return 2 * eps * np.abs(z) if kind == "tanhshrink" else 0.0


# f′ exactly, where torch's float64 backward rounds a constant to float32: CELU's 1/α
# (e^(z/α) off by ~1e-8 relative) and Hardsigmoid's 1/6 (0.1666666716…)
_EXACT_SLOPE = {
    "celu": lambda layer, z: np.where(z > 0, 1.0, np.exp(np.minimum(z, 0) / layer.alpha)),
    "hardsigmoid": lambda layer, z: np.where((z > -3) & (z < 3), 1 / 6, 0.0),
}


def _grad_tolerance(kind, z, upstream, eps):
    """Where torch's autograd rounds worse than f′ (Softsign's and Tanhshrink's backward
    are torch's composed ops: g/(1+|z|) − g·|z|/(1+|z|)² and g − g·(1 − tanh²z) cancel),
    the absolute rounding of its terms; else none beyond rtol."""
    if kind == "softsign":
        return 8 * eps * np.abs(upstream) / (1 + np.abs(z))
    if kind == "tanhshrink":
        return 8 * eps * np.abs(upstream)
    return 0.0


@pytest.mark.parametrize("kind", KINDS)
def test_values_and_gradients_are_torchs_in_float64(rng, kind):
    import warnings

    for _ in range(20):
        ours, theirs = _pair(rng, kind)
        z = _inputs(rng, (int(rng.integers(2, 9)), int(rng.integers(2, 9))), ours)
        oz, tz = wxb.Tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
        upstream = rng.normal(size=z.shape)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no overflow, no invalid value, at ±1e3 too
            a = ours(oz)
            (a * wxb.Tensor(upstream)).sum().backward()
        b = theirs(tz)
        (b * torch.tensor(upstream)).sum().backward()
        expected = b.detach().numpy()
        np.testing.assert_array_less(
            np.abs(a.data - expected),
            1e-13 * np.abs(expected) + _value_tolerance(kind, z, EPS64) + 1e-300,
        )
        reference, rtol = tz.grad.numpy(), 1e-12
        if kind in _EXACT_SLOPE:
            # torch's to its rounding of the constant (float32 ulps of 1/α and α·(1/α),
            # the first one growing with e^(z/α)'s exponent), f′ itself to float64's
            off = 1.5e-7 * (1 + np.abs(z / getattr(ours, "alpha", 1.0)))
            np.testing.assert_array_less(
                np.abs(oz.grad - reference), off * np.abs(reference) + 1e-300
            )
            reference = upstream * _EXACT_SLOPE[kind](ours, z)
        tolerance = _grad_tolerance(kind, z, upstream, EPS64)
        np.testing.assert_array_less(
            np.abs(oz.grad - reference), rtol * np.abs(reference) + tolerance + 1e-300
        )
        # the functional form computes the same
        settings = {key: getattr(ours, key) for key in _SETTINGS.get(kind, ())}
        f = getattr(nn.functional, kind)
        np.testing.assert_array_equal(f(wxb.Tensor(z), **settings).data, a.data)
        # and torch's functional form agrees with its layer (the reference's own check)
        tf = getattr(torch.nn.functional, kind)
        np.testing.assert_array_equal(tf(torch.tensor(z), **settings).numpy(), b.detach().numpy())


@pytest.mark.parametrize("kind", KINDS)
def test_float32_agrees_to_rounding(rng, kind):
    ours, theirs = _pair(rng, kind)
    z = _inputs(rng, (64, 16), ours).astype(np.float32)
    oz, tz = wxb.Tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
    a, b = ours(oz), theirs(tz)
    a.sum().backward()
    b.sum().backward()
    assert a.dtype == np.float32 and oz.grad.dtype == np.float32
    # each result is a few float32 operations on terms no larger than |z| (Hardswish:
    # z·(z + 3)/6, Tanhshrink: z − tanh z, which cancels near 0): their rounding
    scale = np.abs(z.astype(np.float64)) + 1
    np.testing.assert_array_less(
        np.abs(a.data.astype(np.float64) - b.detach().numpy()), 8 * EPS32 * scale
    )
    # f′ is at most λα ≈ 1.76 (SELU) and its terms of order 1 (Mish's cancel where f′
    # crosses 0): their rounding, and torch's composed backwards' (as in float64)
    bound = 16 * EPS32 + _grad_tolerance(kind, z, np.ones_like(z), EPS32)
    np.testing.assert_array_less(np.abs(oz.grad - tz.grad.numpy()), bound)


@pytest.mark.parametrize("kind", KINDS)
def test_gradient_is_finite_differences(rng, kind):
    """f′ against central differences, away from the kinks (float64)."""
    ours, _ = _pair(rng, kind)
    z = rng.normal(size=(6, 5)) * 3
    kinks = [0.0, 3.0, -3.0, 6.0]
    kinks += [
        getattr(ours, key) for key in ("min_val", "max_val", "threshold") if hasattr(ours, key)
    ]
    for k in kinks:  # at least 1e-3 from each kink
        near = np.abs(z - k) < 1e-3
        z[near] = k + 1e-2
    h = 1e-6
    oz = wxb.Tensor(z, requires_grad=True)
    ours(oz).sum().backward()
    numeric = (ours(wxb.Tensor(z + h)).data - ours(wxb.Tensor(z - h)).data) / (2 * h)
    # truncation h²·f‴/6 and rounding ε·|f|/h, both below 1e-7 here
    np.testing.assert_allclose(oz.grad, numeric, rtol=1e-6, atol=1e-7)


class _OwnForward(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


@pytest.mark.parametrize("planned", [True, False], ids=["planned", "layer_by_layer"])
def test_fit_trains_as_torchs_loop(rng, planned):
    rows, features, batch = 40, 5, 8
    X, y = rng.normal(size=(rows, features)) * 2, rng.integers(0, 3, rows)
    ours, theirs = [], []
    width = features
    exact = [k for k in KINDS if k not in _EXACT_SLOPE]  # (torch's f′ off by ~1e-8 there)
    for kind in rng.choice(exact, size=4, replace=False):
        a, b = _pair(rng, kind)
        ours += [nn.Dense(width, 6).to("float64"), a]
        theirs += [torch.nn.Linear(width, 6).double(), b]
        width = 6
    ours.append(nn.Dense(width, 3).to("float64"))
    theirs.append(torch.nn.Linear(width, 3).double())
    model = nn.Sequential(*ours) if planned else _OwnForward(ours)
    assert (model.why_not_planned() is None) is planned
    twin = torch.nn.Sequential(*theirs)
    _copy_weights(model, twin)
    opt = torch.optim.Adam(twin.parameters(), lr=0.01)
    loss = torch.nn.CrossEntropyLoss()
    for _epoch in range(2):
        for start in range(0, rows, batch):
            part = slice(start, start + batch)
            opt.zero_grad()
            loss(twin(torch.tensor(X[part])), torch.tensor(y[part])).backward()
            opt.step()
    wxb.fit(
        model, X, y, optimizer=wxb.optim.Adam(model.parameters(), lr=0.01),
        epochs=2, batch_size=batch, shuffle=False, verbose=0,
    )  # fmt: skip
    _same_weights(model, twin, rtol=1e-9)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_file_onnx_and_torch_give_the_same_outputs(rng, tmp_path, dtype):
    onnxruntime = pytest.importorskip("onnxruntime")
    import wxb.interop
    import wxb.onnx

    layers, width = [], 4
    for kind in KINDS:
        layers += [nn.Dense(width, 8), _pair(rng, kind)[0]]
        width = 8
    model = nn.Sequential(*layers, nn.Dense(8, 3)).to(dtype)
    X = (rng.normal(size=(30, 4)) * 4).astype(dtype)
    expected = model(X).data

    wxb.save(model, tmp_path / "m.safetensors")
    loaded = wxb.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(loaded(X).data, expected)
    assert repr(loaded) == repr(model)

    wxb.onnx.export(model, tmp_path / "m.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    got = session.run(None, {"input": X})[0]
    tolerance = 1e-4 if dtype == "float32" else 1e-12  # 11 layers of float32 rounding
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)

    twin = wxb.interop.to_torch(model)
    np.testing.assert_allclose(
        twin(torch.tensor(X)).detach().numpy(), expected, rtol=tolerance, atol=tolerance
    )
    back = wxb.interop.from_torch(twin)
    np.testing.assert_array_equal(back(X).data, expected)


@pytest.mark.parametrize("kind", KINDS)
def test_repr_is_torchs_and_settings_set_later(rng, kind):
    ours, theirs = _pair(rng, kind)
    assert repr(ours) == repr(theirs)
    for key in _SETTINGS.get(kind, ()):
        value = getattr(ours, key) + (1.0 if key != "min_val" else -1.0)
        setattr(ours, key, value)
        setattr(theirs, key, value)
        assert getattr(ours, key) == value
    z = rng.normal(size=(5, 4)) * 4
    expected = theirs(torch.tensor(z)).numpy()
    np.testing.assert_array_less(
        np.abs(ours(wxb.Tensor(z)).data - expected),
        1e-13 * np.abs(expected) + _value_tolerance(kind, z, EPS64) + 1e-300,
    )


def test_settings_are_checked():
    for make, what in (
        (lambda: nn.Hardtanh(1.0, 1.0), "Hardtanh max_val must exceed"),
        (lambda: nn.Hardtanh(float("nan")), "Hardtanh min_val"),
        (lambda: nn.CELU(0.0), "CELU alpha"),
        (lambda: nn.Threshold("1", 0.0), "Threshold threshold"),
        (lambda: nn.Threshold(0.0, float("inf")), "Threshold value"),
    ):
        with pytest.raises(ConfigError, match=what):
            make()
    layer = nn.Hardtanh(-1.0, 1.0)
    with pytest.raises(ConfigError, match="max_val must exceed"):
        layer.max_val = -2.0
    assert (layer.min_val, layer.max_val) == (-1.0, 1.0)


def test_the_command_line_trains_with_each(tmp_path, capsys, rng):
    from cli_run import run

    rows = 40
    X = rng.normal(size=(rows, 3))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "up", "down")
    lines = ["a,b,c,label"] + [f"{a},{b},{c},{k}" for (a, b, c), k in zip(X, labels, strict=True)]
    table = tmp_path / "t.csv"
    table.write_text("\n".join(lines) + "\n")
    for kind in [k for k in KINDS if k != "threshold"]:  # (it needs its two settings)
        out = tmp_path / f"{kind}.safetensors"
        code, _, err = run(
            capsys, "train", "--data", table, "--target", "label", "--activation", kind,
            "--epochs", "1", "--hidden", "4", "-q", "-o", out,
        )  # fmt: skip
        assert code == 0, err
        kinds = [type(layer).__name__ for layer in wxb.load(out).modules()]
        assert type(_pair(rng, kind)[0]).__name__ in kinds


def test_the_hints_name_what_wxb_has():
    for name in ("Flatten", "ReLU6", "Mish", "Threshold"):
        assert name not in nn._TORCH_NAMES
        assert getattr(nn, name) is not None
    with pytest.raises(AttributeError, match=r"Hardtanh, .*ReLU6"):
        nn.Softmax2d  # noqa: B018


def test_planned_and_graph_paths_train_alike(rng):
    """Every kind, the planned stack's step against the recorded graph's (a forward of
    one's own), from the same weights."""
    rows, features, batch = 32, 4, 8
    X, y = rng.normal(size=(rows, features)) * 2, rng.integers(0, 3, rows)
    made = []
    for _ in range(2):
        layers, width = [], features
        for kind in KINDS:
            layers += [nn.Dense(width, 5, seed=1).to("float64"), _pair(rng, kind)[0]]
            width = 5
        made.append([*layers, nn.Dense(width, 3, seed=2).to("float64")])
    for first, second in zip(made[0], made[1], strict=True):  # the same settings
        if isinstance(first, nn.Activation):
            second.kernel = first.kernel
    planned, graph = nn.Sequential(*made[0]), _OwnForward(made[1])
    assert planned.why_not_planned() is None
    for model in (planned, graph):
        wxb.fit(
            model, X, y, optimizer=wxb.optim.SGD(model.parameters(), lr=0.05),
            epochs=2, batch_size=batch, shuffle=False, verbose=0,
        )  # fmt: skip
    for a, b in zip(planned.parameters(), graph.parameters(), strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------
# PReLU: a learned slope
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shared", [True, False], ids=["one_slope", "per_feature"])
def test_prelu_values_and_gradients_are_torchs(rng, shared):
    for _ in range(10):
        ndim = int(rng.integers(2, 5))
        shape = tuple(int(n) for n in rng.integers(1, 5, size=ndim))
        n = 1 if shared else shape[1]
        init = float(rng.uniform(-1, 1))
        ours = nn.PReLU(n, init, dtype="float64")
        theirs = torch.nn.PReLU(n, init, dtype=torch.float64)
        assert repr(ours) == repr(theirs)
        z = rng.normal(size=shape) * 3
        z.reshape(-1)[0] = 0.0  # the kink
        oz, tz = wxb.Tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
        upstream = rng.normal(size=shape)
        a, b = ours(oz), theirs(tz)
        np.testing.assert_array_equal(a.data, b.detach().numpy())
        (a * wxb.Tensor(upstream)).sum().backward()
        (b * torch.tensor(upstream)).sum().backward()
        np.testing.assert_allclose(oz.grad, tz.grad.numpy(), rtol=1e-13, atol=1e-300)
        # ∂L/∂a sums over the rows (and features, for one slope): rounding of the sum
        bound = 1e-13 * np.abs(upstream * z).sum()
        assert np.abs(ours.weight.grad - theirs.weight.grad.numpy()).max() <= bound
        f = nn.functional.prelu(wxb.Tensor(z), ours.weight)
        np.testing.assert_array_equal(f.data, a.data)


def test_prelu_gradient_is_finite_differences(rng):
    layer = nn.PReLU(4, dtype="float64")
    layer.weight.data[:] = rng.normal(size=4)
    z = rng.normal(size=(6, 4))
    z[np.abs(z) < 1e-3] = 0.5
    upstream = rng.normal(size=z.shape)
    (layer(wxb.Tensor(z)) * wxb.Tensor(upstream)).sum().backward()
    h, numeric = 1e-6, np.empty(4)
    for j in range(4):
        values = []
        for step in (h, -h):
            moved = nn.PReLU(4, dtype="float64")
            moved.weight.data[:] = layer.weight.data
            moved.weight.data[j] += step
            values.append((moved(wxb.Tensor(z)).data * upstream).sum())
        numeric[j] = (values[0] - values[1]) / (2 * h)
    np.testing.assert_allclose(layer.weight.grad, numeric, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("shared", [True, False], ids=["one_slope", "per_feature"])
def test_prelu_trains_as_torchs(rng, shared):
    rows, features, batch = 32, 4, 8
    X, y = rng.normal(size=(rows, features)) * 2, rng.integers(0, 3, rows)
    n = 1 if shared else 6
    model = nn.Sequential(
        nn.Dense(features, 6), nn.PReLU(n), nn.Dense(6, 3)
    ).to("float64")  # fmt: skip
    assert "PReLU" in model.why_not_planned()  # the graph runs it
    twin = torch.nn.Sequential(
        torch.nn.Linear(features, 6), torch.nn.PReLU(n), torch.nn.Linear(6, 3)
    ).double()
    _copy_weights(model, twin)
    opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    for start in range(0, rows, batch):
        part = slice(start, start + batch)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(
            twin(torch.tensor(X[part])), torch.tensor(y[part])
        ).backward()
        opt.step()
    start_slope = model[1].weight.data.copy()
    wxb.fit(
        model, X, y, optimizer=wxb.optim.SGD(model.parameters(), lr=0.1),
        epochs=1, batch_size=batch, shuffle=False, verbose=0,
    )  # fmt: skip
    assert not np.array_equal(model[1].weight.data, start_slope)  # it learned
    _same_weights(model, twin, rtol=1e-11)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_prelu_in_file_onnx_and_torch(rng, tmp_path, dtype):
    onnxruntime = pytest.importorskip("onnxruntime")
    import wxb.interop
    import wxb.onnx

    model = nn.Sequential(nn.Dense(3, 5), nn.PReLU(5), nn.Dense(5, 4), nn.PReLU(), nn.Dense(4, 2))
    model = model.to(dtype)
    for layer in (model[1], model[3]):
        layer.weight.data[:] = rng.normal(size=layer.weight.shape)
    X = (rng.normal(size=(20, 3)) * 3).astype(dtype)
    expected = model(X).data
    wxb.save(model, tmp_path / "m.safetensors")
    loaded = wxb.load(tmp_path / "m.safetensors")
    assert repr(loaded) == repr(model)
    np.testing.assert_array_equal(loaded(X).data, expected)
    np.testing.assert_array_equal(loaded[1].weight.data, model[1].weight.data)

    wxb.onnx.export(model, tmp_path / "m.onnx")
    got = onnxruntime.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"input": X})[0]
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)

    twin = wxb.interop.to_torch(model)
    assert isinstance(twin[1], torch.nn.PReLU) and twin[1].num_parameters == 5
    np.testing.assert_allclose(
        twin(torch.tensor(X)).detach().numpy(), expected, rtol=tolerance, atol=tolerance
    )
    back = wxb.interop.from_torch(twin)
    np.testing.assert_array_equal(back(X).data, expected)


def test_prelu_settings_are_checked():
    with pytest.raises(ConfigError, match="PReLU num_parameters"):
        nn.PReLU(0)
    with pytest.raises(ConfigError, match="PReLU init"):
        nn.PReLU(1, float("nan"))
    with pytest.raises(wxb.errors.ShapeError, match="one per channel"):
        nn.PReLU(3)(wxb.Tensor(np.zeros((2, 4))))


# ---------------------------------------------------------------------------------
# Softmin
# ---------------------------------------------------------------------------------
def test_softmin_is_torchs(rng, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    import wxb.interop
    import wxb.onnx

    for dim in (1, -1):
        z = rng.normal(size=(int(rng.integers(1, 7)), int(rng.integers(1, 7)))) * 30
        oz, tz = wxb.Tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
        ours, theirs = nn.Softmin(dim=dim), torch.nn.Softmin(dim=dim)
        assert repr(ours) == repr(theirs)
        upstream = rng.normal(size=z.shape)
        a, b = ours(oz), theirs(tz)
        # e^(−z + max) as softmax's: torch's to a few ulps of each probability
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-13, atol=1e-300)
        (a * wxb.Tensor(upstream)).sum().backward()
        (b * torch.tensor(upstream)).sum().backward()
        # s ⊙ (g − Σ g⊙s): the sum's rounding, relative to the row's |g|
        scale = np.abs(upstream).max(axis=1, keepdims=True)
        np.testing.assert_array_less(
            np.abs(oz.grad - tz.grad.numpy()), 1e-13 * scale * (1 + b.detach().numpy())
        )
        f = nn.functional.softmin(wxb.Tensor(z), dim=dim)
        np.testing.assert_array_equal(f.data, a.data)
    with pytest.raises(ConfigError, match=r"\(-tensor\)\.softmax"):
        nn.Softmin(dim=0)

    model = nn.Sequential(nn.Dense(3, 4), nn.Softmin(dim=1)).to("float64")
    X = rng.normal(size=(10, 3)) * 3
    expected = model(X).data
    wxb.save(model, tmp_path / "m.safetensors")
    np.testing.assert_array_equal(wxb.load(tmp_path / "m.safetensors")(X).data, expected)
    wxb.onnx.export(model, tmp_path / "m.onnx")
    got = onnxruntime.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"input": X})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    twin = wxb.interop.to_torch(model)
    assert isinstance(twin[1], torch.nn.Softmin)
    np.testing.assert_allclose(twin(torch.tensor(X)).detach().numpy(), expected, rtol=1e-12)
    np.testing.assert_array_equal(wxb.interop.from_torch(twin)(X).data, expected)


# ---------------------------------------------------------------------------------
# BCELoss (on probabilities) and KLDivLoss
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_loss_is_torchs(rng, reduction):
    for _ in range(10):
        shape = (int(rng.integers(1, 7)), int(rng.integers(1, 4)))
        p = rng.uniform(size=shape)
        flat = p.reshape(-1)
        flat[: min(3, flat.size)] = [0.0, 1.0, 1e-50][: min(3, flat.size)]  # the clamps
        y = rng.uniform(size=shape) * (rng.uniform(size=shape) < 0.7)
        weight = rng.uniform(0.5, 2, size=shape[1]) if rng.uniform() < 0.5 else None
        op, oy = wxb.Tensor(p, requires_grad=True), wxb.Tensor(y, requires_grad=True)
        tp, ty = torch.tensor(p, requires_grad=True), torch.tensor(y, requires_grad=True)
        tw = None if weight is None else torch.tensor(weight)
        ours = nn.BCELoss(weight=weight, reduction=reduction)(op, oy)
        theirs = torch.nn.BCELoss(weight=tw, reduction=reduction)(tp, ty)
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-13, atol=1e-300)
        upstream = rng.normal(size=ours.shape)
        (ours * wxb.Tensor(upstream)).sum().backward()
        (theirs * torch.tensor(upstream)).sum().backward()
        np.testing.assert_allclose(op.grad, tp.grad.numpy(), rtol=1e-13, atol=1e-300)
        # ∂L/∂y = w·(log(1 − p) − log p) cancels near p = ½: the logs' rounding, each
        # element's factor (upstream, weight, 1/n for the mean) times it
        factor = np.broadcast_to(upstream, shape) * (1.0 if weight is None else weight)
        factor = factor / (p.size if reduction == "mean" else 1)
        with np.errstate(divide="ignore"):
            logs = np.abs(np.log(p)) + np.abs(np.log1p(-p))
        finite = np.isfinite(logs)
        np.testing.assert_array_equal(oy.grad[~finite], ty.grad.numpy()[~finite])  # ±inf
        reference = ty.grad.numpy()[finite]
        bound = 1e-13 * np.abs(reference) + 4 * EPS64 * np.abs(factor[finite]) * logs[finite]
        np.testing.assert_array_less(np.abs(oy.grad[finite] - reference), bound + 1e-300)
        f = nn.functional.binary_cross_entropy(wxb.Tensor(p), y, weight, reduction)
        np.testing.assert_array_equal(f.data, ours.data)
    with pytest.raises(wxb.errors.DataError, match="probabilities in"):
        nn.BCELoss()(wxb.Tensor(np.array([[1.5]])), np.array([[1.0]]))
    with pytest.raises(wxb.errors.ShapeError, match="target's shape"):
        nn.BCELoss()(wxb.Tensor(np.array([[0.5]])), np.array([1.0]))


@pytest.mark.parametrize("reduction", ["mean", "batchmean", "sum", "none"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_loss_is_torchs(rng, reduction, log_target):
    for _ in range(10):
        shape = (int(rng.integers(1, 7)), int(rng.integers(2, 6)))
        x = torch.log_softmax(torch.tensor(rng.normal(size=shape) * 3), 1).numpy()
        t = rng.dirichlet(np.ones(shape[1]), size=shape[0])
        if not log_target:
            t.reshape(-1)[0] = 0.0  # 0·log 0 = 0
        else:
            t = np.log(t)
        ox, ot = wxb.Tensor(x, requires_grad=True), wxb.Tensor(t, requires_grad=True)
        tx, tt = torch.tensor(x, requires_grad=True), torch.tensor(t, requires_grad=True)
        ours = nn.KLDivLoss(reduction=reduction, log_target=log_target)(ox, ot)
        theirs = torch.nn.KLDivLoss(reduction=reduction, log_target=log_target)(tx, tt)
        # a sum of terms of both signs: its rounding, relative to the terms' size
        size = np.abs(theirs.detach().numpy()) + 1e-15 * np.abs(t * x).sum()
        assert np.all(np.abs(ours.data - theirs.detach().numpy()) <= 1e-13 * size)
        upstream = rng.normal(size=ours.shape)
        (ours * wxb.Tensor(upstream)).sum().backward()
        (theirs * torch.tensor(upstream)).sum().backward()
        np.testing.assert_allclose(ox.grad, tx.grad.numpy(), rtol=1e-13, atol=1e-300)
        positive = np.exp(t) > 0 if log_target else t > 0  # (torch's ∂L/∂t at t = 0: −inf·0)
        # log t + 1 − x (e^t·(t − x + 1)) cancels where it nears 0: its terms' rounding
        factor = np.broadcast_to(upstream, shape) / {"mean": x.size, "batchmean": shape[0]}.get(
            reduction, 1
        )
        with np.errstate(divide="ignore"):
            terms = (
                np.exp(t) * (np.abs(t) + np.abs(x) + 1)
                if log_target
                else np.abs(np.log(t)) + np.abs(x) + 1
            )
        reference = tt.grad.numpy()[positive]
        bound = 1e-12 * np.abs(reference) + 4 * EPS64 * np.abs(factor * terms)[positive]
        np.testing.assert_array_less(np.abs(ot.grad[positive] - reference), bound + 1e-300)
        f = nn.functional.kl_div(wxb.Tensor(x), t, reduction, log_target)
        np.testing.assert_array_equal(f.data, ours.data)
    with pytest.raises(ConfigError, match="batchmean"):
        nn.KLDivLoss(reduction="average")


def test_bce_and_kl_losses_train_as_torchs(rng):
    rows, features = 24, 3
    X = rng.normal(size=(rows, features))
    y = (X[:, :1] + rng.normal(size=(rows, 1)) > 0).astype(np.float64)
    target = rng.dirichlet(np.ones(4), size=rows)
    for kind in ("bce", "kl"):
        width = 1 if kind == "bce" else 4
        head = nn.Sigmoid() if kind == "bce" else nn.LogSoftmax(dim=1)
        model = nn.Sequential(nn.Dense(features, 5), nn.Tanh(), nn.Dense(5, width), head)
        model = model.to("float64")
        twin = torch.nn.Sequential(
            torch.nn.Linear(features, 5), torch.nn.Tanh(), torch.nn.Linear(5, width),
            torch.nn.Sigmoid() if kind == "bce" else torch.nn.LogSoftmax(dim=1),
        ).double()  # fmt: skip
        _copy_weights(model, twin)
        ours = nn.BCELoss() if kind == "bce" else nn.KLDivLoss(reduction="batchmean")
        theirs = torch.nn.BCELoss() if kind == "bce" else torch.nn.KLDivLoss(reduction="batchmean")
        goal = y if kind == "bce" else target
        mine, opt = (
            wxb.optim.SGD(model.parameters(), lr=0.5),
            torch.optim.SGD(twin.parameters(), 0.5),
        )
        for start in range(0, rows, 8):
            part = slice(start, start + 8)
            mine.zero_grad()
            opt.zero_grad()
            ours(model(wxb.Tensor(X[part])), goal[part]).backward()
            theirs(twin(torch.tensor(X[part])), torch.tensor(goal[part])).backward()
            mine.step()
            opt.step()
        _same_weights(model, twin, rtol=1e-11)
    # fit takes BCELoss on a Sigmoid's probabilities, as torch's loop
    model = nn.Sequential(nn.Dense(features, 1), nn.Sigmoid()).to("float64")
    twin = torch.nn.Sequential(torch.nn.Linear(features, 1), torch.nn.Sigmoid()).double()
    _copy_weights(model, twin)
    opt = torch.optim.SGD(twin.parameters(), lr=0.5)
    for start in range(0, rows, 8):
        opt.zero_grad()
        part = slice(start, start + 8)
        torch.nn.BCELoss()(twin(torch.tensor(X[part])), torch.tensor(y[part])).backward()
        opt.step()
    wxb.fit(
        model, X, y, loss=nn.BCELoss(), optimizer=wxb.optim.SGD(model.parameters(), lr=0.5),
        epochs=1, batch_size=8, shuffle=False, verbose=0,
    )  # fmt: skip
    _same_weights(model, twin, rtol=1e-11)
