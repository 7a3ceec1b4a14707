"""SiLU, ELU and Softplus: PyTorch's numbers (values, gradients, a whole training run on
both of fit's paths), and every place a model goes — a model file, ONNX, PyTorch and
back, the command line."""

import numpy as np
import pytest

import wxb
from wxb import nn
from wxb.errors import ConfigError

torch = pytest.importorskip("torch")


def _pair(rng, kind):
    """A wxb activation with random settings, and PyTorch's twin."""
    if kind == "silu":
        return nn.SiLU(), torch.nn.SiLU()
    if kind == "elu":
        alpha = float(rng.uniform(0.1, 3.0))
        return nn.ELU(alpha), torch.nn.ELU(alpha)
    beta, threshold = float(rng.uniform(0.2, 4.0)), float(rng.uniform(1.0, 25.0))
    return nn.Softplus(beta, threshold), torch.nn.Softplus(beta, threshold)


KINDS = ["silu", "elu", "softplus"]


def _inputs(rng, shape):
    """Ordinary values, large ones both ways (overflow of e^z), and the points where
    a branch changes (0, PyTorch's threshold's neighbourhood)."""
    z = rng.normal(size=shape) * rng.choice([0.5, 5.0, 40.0], size=shape)
    flat = z.reshape(-1)
    flat[: min(4, flat.size)] = [0.0, -0.0, 1e-12, -1e-12][: min(4, flat.size)]
    return z


@pytest.mark.parametrize("kind", KINDS)
def test_values_and_gradients_are_pytorchs(rng, kind):
    for _ in range(20):
        ours, theirs = _pair(rng, kind)
        z = _inputs(rng, (int(rng.integers(1, 9)), int(rng.integers(1, 9))))
        oz, tz = wxb.Tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
        upstream = rng.normal(size=z.shape)
        a, b = ours(oz), theirs(tz)
        (a * wxb.Tensor(upstream)).sum().backward()
        (b * torch.tensor(upstream)).sum().backward()
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-13, atol=1e-300)
        np.testing.assert_allclose(oz.grad, tz.grad.numpy(), rtol=1e-12, atol=1e-300)
        # the functional form computes the same
        f = getattr(nn.functional, kind)
        settings = {k: getattr(ours, k) for k in ("alpha", "beta", "threshold") if hasattr(ours, k)}
        np.testing.assert_array_equal(f(wxb.Tensor(z), **settings).data, a.data)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_agrees_to_rounding(rng, kind):
    ours, theirs = _pair(rng, kind)
    z = _inputs(rng, (64, 16)).astype(np.float32)
    oz, tz = wxb.Tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
    a, b = ours(oz), theirs(tz)
    a.sum().backward()
    b.sum().backward()
    assert a.dtype == np.float32 and oz.grad.dtype == np.float32
    np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=2e-6, atol=1e-30)
    # f′ is of order 1 here (SiLU's crosses 0 near z = −1.28, where 1 + z·(1 − σ)
    # cancels): an absolute tolerance at float32's rounding of its terms
    scale = max(1.0, getattr(ours, "alpha", 1.0))
    np.testing.assert_allclose(oz.grad, tz.grad.numpy(), rtol=2e-6, atol=2e-6 * scale)


class _OwnForward(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


@pytest.mark.parametrize("planned", [True, False], ids=["planned", "layer_by_layer"])
def test_fit_trains_as_pytorchs_loop(rng, planned):
    rows, features, batch = 40, 5, 8
    X, y = rng.normal(size=(rows, features)), rng.integers(0, 3, rows)
    ours, theirs = [], []
    width = features
    for kind in rng.permutation(KINDS):
        a, b = _pair(rng, kind)
        ours += [nn.Dense(width, 6).to("float64"), a]
        theirs += [torch.nn.Linear(width, 6).double(), b]
        width = 6
    ours.append(nn.Dense(width, 3).to("float64"))
    theirs.append(torch.nn.Linear(width, 3).double())
    model = nn.Sequential(*ours) if planned else _OwnForward(ours)
    assert (model.why_not_planned() is None) is planned
    twin = torch.nn.Sequential(*theirs)
    with torch.no_grad():
        for mine, their in zip(model.parameters(), twin.parameters(), strict=True):
            their.copy_(torch.tensor(mine.data))
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
    for mine, their in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(mine.data, their.detach().numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_file_onnx_and_pytorch_give_the_same_outputs(rng, tmp_path, dtype):
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
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)

    twin = wxb.interop.to_torch(model)
    np.testing.assert_allclose(
        twin(torch.tensor(X)).detach().numpy(), expected, rtol=tolerance, atol=tolerance
    )
    back = wxb.interop.from_torch(twin)
    np.testing.assert_array_equal(back(X).data, expected)


def test_settings_are_checked_and_set_later_as_in_pytorch(rng):
    softplus = nn.Softplus(2.0, 7.0)
    softplus.beta = 0.5  # the threshold stays
    assert (softplus.beta, softplus.threshold) == (0.5, 7.0)
    z = rng.normal(size=(3, 4)) * 10
    expected = torch.nn.Softplus(0.5, 7.0)(torch.tensor(z)).numpy()
    np.testing.assert_allclose(softplus(wxb.Tensor(z)).data, expected, rtol=1e-13)
    elu = nn.ELU()
    elu.alpha = 0.25
    np.testing.assert_allclose(
        elu(wxb.Tensor(z)).data, torch.nn.ELU(0.25)(torch.tensor(z)).numpy(), rtol=1e-13
    )
    for make in (
        lambda: nn.ELU(float("nan")),
        lambda: nn.ELU("1"),
        lambda: nn.Softplus(beta=0.0),
        lambda: nn.Softplus(threshold=float("inf")),
    ):
        with pytest.raises(ConfigError):
            make()
    with pytest.raises(ConfigError, match="Softplus beta"):
        softplus.beta = -1.0
    assert softplus.beta == 0.5


def test_the_command_line_trains_with_each(tmp_path, capsys, rng):
    from cli_run import run

    rows = 60
    X = rng.normal(size=(rows, 3))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "up", "down")
    lines = ["a,b,c,label"] + [f"{a},{b},{c},{k}" for (a, b, c), k in zip(X, labels, strict=True)]
    table = tmp_path / "t.csv"
    table.write_text("\n".join(lines) + "\n")
    names = {"silu": "SiLU", "elu": "ELU", "softplus": "Softplus"}
    for kind in KINDS:
        out = tmp_path / f"{kind}.safetensors"
        code, _, err = run(
            capsys, "train", "--data", table, "--target", "label", "--activation", kind,
            "--epochs", "2", "--hidden", "8", "-q", "-o", out,
        )  # fmt: skip
        assert code == 0, err
        kinds = [type(layer).__name__ for layer in wxb.load(out).modules()]
        assert names[kind] in kinds
