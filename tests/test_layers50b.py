"""More torch.nn layers a dense network is written with, which wxb.nn lacked (after
test_layers50's): each against PyTorch (values, gradients of the input and the
parameters, a training step in a Sequential), against central differences, and in every
place a model goes (state_dict, a model file, ONNX, PyTorch and back, summary and the
diagrams)."""

import numpy as np
import pytest

import wxb
import wxb.describe
import wxb.interop
from wxb import nn
from wxb.errors import ConfigError

torch = pytest.importorskip("torch")

SHRINKS = ["Hardshrink", "Softshrink"]


# ---------------------------------------------------------------------------------
# Hardshrink: z where |z| > λ, else 0; Softshrink: z ∓ λ beyond ±λ, else 0
# ---------------------------------------------------------------------------------
def _shrink_input(rng, shape, lambd, dtype):
    """Ordinary values on a random scale, with the kinks ±λ (as the dtype holds λ, as
    torch compares), 0, −0, ±inf and NaN planted exactly."""
    z = (rng.normal(size=shape) * rng.choice([0.3, 3.0, 30.0])).astype(dtype)
    lam = np.dtype(dtype).type(lambd)
    planted = [lam, -lam, 0.0, -0.0, np.inf, -np.inf, np.nan]
    flat = z.reshape(-1)
    where = rng.choice(flat.size, size=min(flat.size, len(planted)), replace=False)
    flat[where] = planted[: len(where)]
    return z


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", SHRINKS)
def test_shrink_values_and_gradients_are_torchs(rng, kind, dtype):
    """Exactly torch's: the same comparisons of z with λ in z's dtype, one rounding of
    z ∓ λ (Softshrink) and a select for f′, so no tolerance in either dtype; a NaN passes
    as NaN, and δ with it."""
    for _ in range(20):
        lambd = float(rng.uniform(0, 3))
        ndim = int(rng.integers(1, 5))
        shape = tuple(int(n) for n in rng.integers(1, 6, size=ndim))
        z = _shrink_input(rng, shape, lambd, dtype)
        ours, theirs = getattr(nn, kind)(lambd), getattr(torch.nn, kind)(lambd)
        assert repr(ours) == repr(theirs) and ours.lambd == theirs.lambd
        assert ours.state_dict() == {} and dict(theirs.state_dict()) == {}
        oz, tz = wxb.Tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
        upstream = rng.normal(size=shape).astype(dtype)
        a, b = ours(oz), theirs(tz)
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a.data, b.detach().numpy())
        with np.errstate(invalid="ignore"):  # (the sum of inf and −inf in the loss)
            (a * wxb.Tensor(upstream)).sum().backward()
        (b * torch.tensor(upstream)).sum().backward()
        # at a NaN δ passes (torch's rule, which its vectorised loop breaks with a 0)
        nan = np.isnan(z)
        np.testing.assert_array_equal(oz.grad[~nan], tz.grad.numpy()[~nan])
        np.testing.assert_array_equal(oz.grad[nan], upstream[nan])
        # the functional forms (and Hardshrink's tensor method) compute the same
        f, tf = getattr(nn.functional, kind.lower()), getattr(torch.nn.functional, kind.lower())
        np.testing.assert_array_equal(f(wxb.Tensor(z), lambd).data, a.data)
        np.testing.assert_array_equal(tf(torch.tensor(z), lambd).numpy(), a.data)
        if kind == "Hardshrink":
            np.testing.assert_array_equal(wxb.Tensor(z).hardshrink(lambd).data, a.data)
            np.testing.assert_array_equal(torch.tensor(z).hardshrink(lambd).numpy(), a.data)
    # the defaults are torch's λ = 0.5
    z = _shrink_input(rng, (4, 5), 0.5, dtype)
    default = getattr(nn.functional, kind.lower())(wxb.Tensor(z)).data
    expected = getattr(torch.nn.functional, kind.lower())(torch.tensor(z)).numpy()
    np.testing.assert_array_equal(default, expected)
    np.testing.assert_array_equal(getattr(nn, kind)()(wxb.Tensor(z)).data, expected)


@pytest.mark.parametrize("kind", SHRINKS)
def test_shrink_gradient_is_finite_differences(rng, kind):
    """∂L/∂W of a Dense before the shrink and ∂L/∂X, against central differences of
    L = Σ w ⊙ shrink(W·x + b) at points no closer than 10h to the kinks ±λ (there f is
    linear within h, so the differences are exact up to rounding ε·|L|/h)."""
    lambd = float(rng.uniform(0, 2))
    dense = nn.Dense(3, 5, seed=int(rng.integers(2**31))).to("float64")
    layer = getattr(nn, kind)(lambd)
    X, w = rng.normal(size=(6, 3)) * 2, rng.normal(size=(6, 5))
    h = 1e-6

    def loss(W, x):
        z = x @ W.T + dense.bias.data
        mask = np.abs(z) > lambd
        return float(np.sum(w * np.where(mask, z - (kind == "Softshrink") * np.sign(z) * lambd, 0)))

    z = X @ dense.weight.data.T + dense.bias.data
    far = np.abs(np.abs(z) - lambd) > 10 * h * (1 + np.abs(X).sum(axis=1, keepdims=True))
    keep = far.all(axis=1)
    X, w = X[keep], w[keep]
    ox = wxb.Tensor(X, requires_grad=True)
    (layer(dense(ox)) * wxb.Tensor(w)).sum().backward()
    W = dense.weight.data.copy()
    numeric_w = np.zeros_like(W)
    for i, j in np.ndindex(W.shape):
        step = np.zeros_like(W)
        step[i, j] = h
        numeric_w[i, j] = (loss(W + step, X) - loss(W - step, X)) / (2 * h)
    numeric_x = np.zeros_like(X)
    for i, j in np.ndindex(X.shape):
        step = np.zeros_like(X)
        step[i, j] = h
        numeric_x[i, j] = (loss(W, X + step) - loss(W, X - step)) / (2 * h)
    # f is linear near each point: only the rounding of L (≈ 1e-16·|L|/h) is left
    np.testing.assert_allclose(dense.weight.grad, numeric_w, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(ox.grad, numeric_x, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_shrinks_train_a_step_as_torchs_in_a_sequential(rng, optimizer):
    rows, features, hidden = int(rng.integers(2, 9)), int(rng.integers(2, 6)), 6
    X, y = rng.normal(size=(rows, features)) * 2, rng.integers(0, 3, rows)
    model = nn.Sequential(
        nn.Dense(features, hidden),
        nn.Hardshrink(float(rng.uniform(0, 1))),
        nn.Dense(hidden, hidden),
        nn.Softshrink(float(rng.uniform(0, 1))),
        nn.Dense(hidden, 3),
    ).to("float64")
    assert model.why_not_planned() is None  # the planned stack runs them
    twin = wxb.interop.to_torch(model)
    assert isinstance(twin[1], torch.nn.Hardshrink) and twin[1].lambd == model[1].lambd
    assert isinstance(twin[3], torch.nn.Softshrink) and twin[3].lambd == model[3].lambd
    theirs = getattr(torch.optim, optimizer)(twin.parameters(), lr=0.05)
    ours = getattr(wxb.optim, optimizer)(model.parameters(), lr=0.05)
    theirs.zero_grad()
    torch.nn.functional.cross_entropy(twin(torch.tensor(X)), torch.tensor(y)).backward()
    theirs.step()
    ours.zero_grad()
    nn.CrossEntropyLoss()(model(wxb.tensor(X, dtype=wxb.float64)), y).backward()
    ours.step()
    for mine, their in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(mine.data, their.detach().numpy(), rtol=1e-12, atol=1e-13)


class _OwnForward(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def test_shrinks_train_alike_on_the_planned_stack_and_the_graph(rng):
    """fit's planned stack (the kernels' f and f′ into its buffers) and the recorded
    graph (a forward of one's own) take the same steps from the same weights."""
    X, y = rng.normal(size=(32, 4)) * 2, rng.integers(0, 3, 32)
    lambdas = rng.uniform(0, 1, size=2)
    made = [
        [
            nn.Dense(4, 5, seed=1).to("float64"),
            nn.Hardshrink(lambdas[0]),
            nn.Dense(5, 5, seed=2).to("float64"),
            nn.Softshrink(lambdas[1]),
            nn.Dense(5, 3, seed=3).to("float64"),
        ]
        for _ in range(2)
    ]
    planned, graph = nn.Sequential(*made[0]), _OwnForward(made[1])
    assert planned.why_not_planned() is None
    for model in (planned, graph):
        wxb.fit(
            model, X, y, optimizer=wxb.optim.SGD(model.parameters(), lr=0.05),
            epochs=2, batch_size=8, shuffle=False, verbose=0,
        )  # fmt: skip
    for a, b in zip(planned.parameters(), graph.parameters(), strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_shrinks_in_file_onnx_and_torch(rng, tmp_path, dtype):
    onnxruntime = pytest.importorskip("onnxruntime")
    import wxb.onnx

    features, hidden = int(rng.integers(2, 6)), int(rng.integers(2, 8))
    hard, soft = (float(v) for v in rng.uniform(0, 2, size=2))
    # Hardshrink first: the graph's input reaches it exactly (a jump of λ at ±λ would
    # turn a Gemm's different rounding of a sum into λ); Softshrink is 1-Lipschitz
    model = nn.Sequential(
        nn.Hardshrink(hard), nn.Dense(features, hidden), nn.Softshrink(soft), nn.Dense(hidden, 2)
    ).to(dtype)
    X = _shrink_input(rng, (int(rng.integers(3, 20)), features), hard, dtype)
    X[~np.isfinite(X)] = 1.0  # (a NaN: onnxruntime's Shrink gives 0; inf: a NaN after W·x)
    expected = model(X).data
    wxb.save(model, tmp_path / "m.safetensors")
    loaded = wxb.load(tmp_path / "m.safetensors")
    assert repr(loaded) == repr(model)
    assert (loaded[0].lambd, loaded[2].lambd) == (hard, soft)
    np.testing.assert_array_equal(loaded(X).data, expected)

    wxb.onnx.export(model, tmp_path / "m.onnx")
    ops = {n.op_type for n in __import__("onnx").load(str(tmp_path / "m.onnx")).graph.node}
    assert ("Shrink" in ops) == (dtype == "float32")  # float64: composed, as wxb computes
    got = onnxruntime.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"input": X})[0]
    # the same operations in the same dtypes, but for the order of the Gemms' sums
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)

    twin = wxb.interop.to_torch(model)
    assert isinstance(twin[0], torch.nn.Hardshrink) and twin[0].lambd == hard
    assert isinstance(twin[2], torch.nn.Softshrink) and twin[2].lambd == soft
    np.testing.assert_allclose(
        twin(torch.tensor(X)).detach().numpy(), expected, rtol=tolerance, atol=tolerance
    )
    back = wxb.interop.from_torch(twin)
    assert isinstance(back[0], nn.Hardshrink) and isinstance(back[2], nn.Softshrink)
    assert (back[0].lambd, back[2].lambd) == (hard, soft)
    np.testing.assert_array_equal(back(X).data, expected)


def test_shrinks_in_summary_and_diagrams(rng):
    features, hidden = int(rng.integers(2, 6)), int(rng.integers(2, 8))
    model = nn.Sequential(
        nn.Dense(features, hidden), nn.Softshrink(0.25), nn.Dense(hidden, 3), nn.Hardshrink()
    )
    rows = model.summary().rows
    assert [row.output_shape for row in rows] == [(hidden,), (hidden,), (3,), (3,)]
    assert rows[1].parameters == 0 and rows[1].activation_bytes == hidden * 4
    assert "softshrink(Z⁽¹⁾)" in wxb.describe.forward_diagram(model)
    assert "⊙ hardshrink′(Z⁽²⁾)" in wxb.describe.backward_diagram(model)
    text = str(wxb.explain(model, rng.normal(size=(2, features)).astype(np.float32)))
    assert "softshrink(Z⁽¹⁾)" in text and "hardshrink(Z⁽²⁾)" in text


def test_shrink_settings_are_checked():
    with pytest.raises(ConfigError, match=r"^Softshrink lambd must be 0 or more; got -0\.5$"):
        nn.Softshrink(-0.5)
    with pytest.raises(ConfigError, match=r"^Softshrink lambd must be 0 or more"):
        nn.functional.softshrink(wxb.Tensor(np.zeros(3)), -1.0)
    for kind in SHRINKS:
        with pytest.raises(ConfigError, match=rf"^{kind} lambd must be a finite number"):
            getattr(nn, kind)("0.5")
        layer = getattr(nn, kind)()
        with pytest.raises(ConfigError, match=rf"^{kind} lambd must be a finite number"):
            layer.lambd = float("nan")  # checked when set later, as at construction
        layer.lambd = 1.5
        assert layer.lambd == 1.5 and repr(layer) == f"{kind}(1.5)"
        np.testing.assert_array_equal(
            layer(wxb.Tensor(np.array([1.5, -2.0]))).data,
            getattr(torch.nn, kind)(1.5)(torch.tensor([1.5, -2.0])).numpy(),
        )
    # a negative λ is torch's Hardshrink's identity (torch checks only Softshrink's)
    z = np.array([0.0, 0.1, -3.0])
    np.testing.assert_array_equal(nn.Hardshrink(-1.0)(wxb.Tensor(z)).data, z)
    with pytest.raises(ConfigError, match=r"Softshrink.*lambd must be 0 or more"):
        wxb.interop.from_torch(torch.nn.Sequential(torch.nn.Softshrink(-1.0)))
