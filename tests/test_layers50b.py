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


def _tensor(x, grad=True):
    return wxb.Tensor(x, requires_grad=grad), torch.tensor(x, requires_grad=grad)


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


# ---------------------------------------------------------------------------------
# Bilinear: yₒ = x1ᵀ·Wₒ·x2 + bₒ, torch's nn.Bilinear
# ---------------------------------------------------------------------------------
def _bilinear_case(rng, dtype="float64"):
    """A pair of layers holding torch's random W and b (loaded into wxb's by torch's
    state_dict keys), and two inputs of the same random leading dims (none to two)."""
    in1, in2, out = (int(n) for n in rng.integers(1, 7, size=3))
    bias = bool(rng.integers(0, 4))  # mostly with b
    theirs = torch.nn.Bilinear(in1, in2, out, bias, dtype=getattr(torch, dtype))
    ours = nn.Bilinear(in1, in2, out, bias, dtype=dtype)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())  # torch's tensors, by torch's keys
    lead = tuple(int(n) for n in rng.integers(1, 5, size=int(rng.integers(0, 3))))
    scale = rng.uniform(0.1, 10)
    x1 = (rng.normal(size=(*lead, in1)) * scale).astype(dtype)
    x2 = (rng.normal(size=(*lead, in2)) * scale).astype(dtype)
    return ours, theirs, x1, x2


def _bilinear_sizes(layer, x1, x2, upstream):
    """The size of the terms each result sums (float64): |x1|ᵀ·|Wₒ|·|x2| (+ |b|) for y;
    Σₒ|gₒ|·|Wₒ|·|x2| for ∂L/∂x1, Σₒ|gₒ|·|Wₒ|ᵀ·|x1| for ∂L/∂x2, Σₙ|gₙₒ|·|x1ₙ|·|x2ₙ|ᵀ for
    ∂L/∂W and Σₙ|gₙₒ| for ∂L/∂b."""
    W = np.abs(layer.weight.data.astype(np.float64))
    a1, a2 = np.abs(x1.astype(np.float64)), np.abs(x2.astype(np.float64))
    g = np.abs(upstream.astype(np.float64))
    b = 0.0 if layer.bias is None else np.abs(layer.bias.data.astype(np.float64))
    y = np.einsum("...i,oij,...j->...o", a1, W, a2) + b
    dx1 = np.einsum("...o,oij,...j->...i", g, W, a2)
    dx2 = np.einsum("...o,oij,...i->...j", g, W, a1)
    rows = (g.reshape(-1, g.shape[-1]), a1.reshape(-1, a1.shape[-1]), a2.reshape(-1, a2.shape[-1]))
    dw = np.einsum("no,ni,nj->oij", *rows)
    db = g.reshape(-1, g.shape[-1]).sum(axis=0)
    return y, dx1, dx2, dw, db


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_bilinear_values_and_gradients_are_torchs(rng, dtype):
    """Both sum the same products in another order: each result within 2·γₙ of the size
    of its terms, γₙ = n·ε/(1 − n·ε) for the n products and sums one result takes (wxb's
    and torch's each within γₙ of the exact)."""
    eps = float(np.finfo(dtype).eps)
    for _ in range(20):
        ours, theirs, x1, x2 = _bilinear_case(rng, dtype)
        in1, in2 = ours.in1_features, ours.in2_features
        (o1, t1), (o2, t2) = _tensor(x1), _tensor(x2)
        a, b = ours(o1, o2), theirs(t1, t2)
        assert a.shape == tuple(b.shape) and a.dtype == np.dtype(dtype)
        upstream = rng.normal(size=a.shape).astype(dtype)
        (a * wxb.Tensor(upstream)).sum().backward()
        (b * torch.tensor(upstream)).sum().backward()
        y, dx1, dx2, dw, db = _bilinear_sizes(ours, x1, x2, upstream)
        rows = x1.size // in1
        for mine, their, size, n in [
            (a.data, b.detach().numpy(), y, in1 * in2 + 3),
            (o1.grad, t1.grad.numpy(), dx1, ours.out_features * in2 + 3),
            (o2.grad, t2.grad.numpy(), dx2, ours.out_features * in1 + 3),
            (ours.weight.grad, theirs.weight.grad.numpy(), dw, rows + 3),
        ]:
            gamma = n * eps / (1 - n * eps)
            np.testing.assert_array_less(np.abs(mine - their), 2 * gamma * size + 1e-300)
        if ours.bias is not None:
            gamma = (rows + 1) * eps / (1 - (rows + 1) * eps)
            bias_grad, their_bias = ours.bias.grad, theirs.bias.grad.numpy()
            np.testing.assert_array_less(np.abs(bias_grad - their_bias), 2 * gamma * db + 1e-300)
        # the functional form computes the same
        again = nn.functional.bilinear(wxb.Tensor(x1), wxb.Tensor(x2), ours.weight, ours.bias)
        np.testing.assert_array_equal(again.data, a.data)


def test_bilinear_init_is_torchs(rng):
    """W and b from U(±1/√in1_features), torch's bound: within it, filling it (the
    largest of n uniform draws is below (1 − 10/n)·bound with probability e^(−10)), mean
    0 within 6 standard errors; drawn from wxb's default generator (manual_seed)."""
    in1, in2, out = int(rng.integers(2, 40)), int(rng.integers(20, 40)), int(rng.integers(20, 40))
    layer = nn.Bilinear(in1, in2, out)
    bound = 1 / np.sqrt(in1)
    top = bound * (1 + 2.0**-24)  # (a draw below the bound may round up to float32's)
    for p, n in ((layer.weight.data, out * in1 * in2), (layer.bias.data, out)):
        assert p.dtype == np.float32 and np.abs(p).max() <= top
        assert np.abs(p).max() > (1 - 10 / n) * bound
    w = layer.weight.data.astype(np.float64)
    assert abs(w.mean()) < 6 * bound / np.sqrt(3 * w.size)
    torchs = torch.nn.Bilinear(in1, in2, out)
    assert torchs.weight.abs().max().item() <= top  # (torch's bound, the same)
    wxb.manual_seed(7)
    first = nn.Bilinear(in1, in2, out).state_dict()
    wxb.manual_seed(7)
    second = nn.Bilinear(in1, in2, out)
    for key, value in first.items():
        np.testing.assert_array_equal(second.state_dict()[key], value)
    start = second.weight
    second.reset_parameters()  # drawn again, in place
    assert second.weight is start and not np.array_equal(start.data, first["weight"])
    assert np.abs(start.data).max() <= top


def test_bilinear_gradients_are_finite_differences(rng):
    layer = nn.Bilinear(3, 4, 2, dtype="float64")
    x1, x2 = rng.normal(size=(5, 3)), rng.normal(size=(5, 4))
    w = rng.normal(size=(5, 2))

    def loss():
        with wxb.no_grad():
            return float((layer(wxb.Tensor(x1), wxb.Tensor(x2)) * wxb.Tensor(w)).sum().item())

    o1, o2 = wxb.Tensor(x1, requires_grad=True), wxb.Tensor(x2, requires_grad=True)
    (layer(o1, o2) * wxb.Tensor(w)).sum().backward()
    h = 1e-6
    for array, grad in [
        (x1, o1.grad), (x2, o2.grad), (layer.weight.data, layer.weight.grad),
        (layer.bias.data, layer.bias.grad),
    ]:  # fmt: skip
        numeric = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            keep = array[index]
            array[index] = keep + h
            up = loss()
            array[index] = keep - h
            down = loss()
            array[index] = keep
            numeric[index] = (up - down) / (2 * h)
        # L is linear in each entry: only rounding, ε·|L|/h, is left
        np.testing.assert_allclose(grad, numeric, rtol=1e-7, atol=1e-7)


class _Gated(nn.Module):
    """A bilinear head over an encoded x1 and a raw x2 (a second input)."""

    def __init__(self, lib, features, context, hidden):
        super().__init__()
        self.encoder = lib.Sequential(lib.Linear(features, hidden), lib.Tanh())
        self.head = lib.Bilinear(hidden, context, 3)

    def forward(self, x, c):
        return self.head(self.encoder(x), c)


def _by_position(model, state):
    """A state_dict of the twin under the model's keys (its Sequential names its layers
    dense1, …, where torch's numbers them 0, …)."""
    return dict(zip(model.state_dict(), state.values(), strict=True))


class _TorchGated(torch.nn.Module):
    def __init__(self, features, context, hidden):
        super().__init__()
        self.encoder = torch.nn.Sequential(torch.nn.Linear(features, hidden), torch.nn.Tanh())
        self.head = torch.nn.Bilinear(hidden, context, 3)

    def forward(self, x, c):
        return self.head(self.encoder(x), c)


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_bilinear_trains_a_step_as_torchs(rng, optimizer):
    """A Sequential encoder, then Bilinear over its output and a second input: torch's
    weights loaded into wxb's, one step of each, the same weights after it."""
    rows, features, context, hidden = 6, int(rng.integers(2, 6)), int(rng.integers(1, 5)), 4
    X, C = rng.normal(size=(rows, features)), rng.normal(size=(rows, context))
    y = rng.integers(0, 3, rows)
    twin = _TorchGated(features, context, hidden).double()
    model = _Gated(nn, features, context, hidden).to("float64")
    # the head's keys are torch's; the encoder's are wxb Sequential's names (dense1, …)
    assert list(model.head.state_dict()) == list(twin.head.state_dict()) == ["weight", "bias"]
    model.load_state_dict(_by_position(model, twin.state_dict()))
    theirs = getattr(torch.optim, optimizer)(twin.parameters(), lr=0.05)
    ours = getattr(wxb.optim, optimizer)(model.parameters(), lr=0.05)
    torch.nn.functional.cross_entropy(
        twin(torch.tensor(X), torch.tensor(C)), torch.tensor(y)
    ).backward()
    theirs.step()
    nn.CrossEntropyLoss()(model(wxb.Tensor(X), wxb.Tensor(C)), y).backward()
    ours.step()
    for (key, mine), their in zip(
        model.state_dict().items(), twin.state_dict().values(), strict=True
    ):
        np.testing.assert_allclose(mine, their.numpy(), rtol=1e-12, atol=1e-13, err_msg=key)


def test_bilinear_state_round_trips_through_files(rng, tmp_path):
    """torch's safetensors file into wxb's model, wxb's state_dict saved (wxb.save of a
    dict) and loaded back, and into torch again: the same numbers all the way."""
    safetensors_torch = pytest.importorskip("safetensors.torch")
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    features, context, hidden = int(rng.integers(2, 6)), int(rng.integers(1, 5)), 4
    twin = _TorchGated(features, context, hidden).double()
    safetensors_torch.save_file(twin.state_dict(), str(tmp_path / "torch.safetensors"))
    model = _Gated(nn, features, context, hidden).to("float64")
    read = safetensors_numpy.load_file(str(tmp_path / "torch.safetensors"))
    model.load_state_dict(_by_position(model, {k: read[k] for k in twin.state_dict()}))
    X, C = rng.normal(size=(5, features)), rng.normal(size=(5, context))
    expected = twin(torch.tensor(X), torch.tensor(C)).detach().numpy()
    got = model(wxb.Tensor(X), wxb.Tensor(C)).data
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13)
    wxb.save(model.state_dict(), tmp_path / "wxb.safetensors")
    again = _Gated(nn, features, context, hidden).to("float64")
    again.load_state_dict(wxb.load(tmp_path / "wxb.safetensors"))
    np.testing.assert_array_equal(again(wxb.Tensor(X), wxb.Tensor(C)).data, got)
    back = _TorchGated(features, context, hidden).double()
    state = {k: torch.tensor(v) for k, v in again.state_dict().items()}
    back.load_state_dict(_by_position(back, state))
    np.testing.assert_array_equal(back(torch.tensor(X), torch.tensor(C)).detach().numpy(), expected)


def test_bilinear_settings_and_refusals_are_one_line(tmp_path):
    import wxb.onnx

    for args, pattern in [
        ((0, 2, 3), "Bilinear in1_features must be a positive integer"),
        ((2, 2.5, 3), "Bilinear in2_features must be a positive integer"),
        ((2, 2, -1), "Bilinear out_features must be a positive integer"),
        ((2, 2, 3, "yes"), "Bilinear bias must be True or False"),
    ]:
        with pytest.raises(ConfigError, match=pattern):
            nn.Bilinear(*args)
    layer = nn.Bilinear(2, 3, 4)
    assert layer.bias is not None and nn.Bilinear(2, 3, 4, bias=False).bias is None
    assert nn.Bilinear(2, 3, 4, bias=False).state_dict().keys() == {"weight"}
    with pytest.raises(wxb.errors.ShapeError, match=r"^bilinear: W of shape \(4, 2, 3\)"):
        layer(wxb.Tensor(np.zeros((5, 2), np.float32)), wxb.Tensor(np.zeros((4, 3), np.float32)))
    with pytest.raises(wxb.errors.ShapeError, match=r"x2 \(\*, 3\)"):
        layer(wxb.Tensor(np.zeros((5, 2), np.float32)), wxb.Tensor(np.zeros((5, 2), np.float32)))
    with pytest.raises(wxb.errors.DataError, match="Bilinear: X is float64 but W is float32"):
        layer(wxb.Tensor(np.zeros((5, 2))), wxb.Tensor(np.zeros((5, 3))))
    with pytest.raises(ConfigError, match="Bilinear"):
        nn.Bilinear(2, 3, 4, device="cuda")
    model = _Gated(nn, 3, 2, 4)
    for refuse in (
        lambda: wxb.onnx.export(model, tmp_path / "m.onnx"),
        lambda: wxb.interop.to_torch(model),
    ):
        with pytest.raises(ConfigError) as caught:
            refuse()
        assert "\n" not in str(caught.value)


def test_bilinear_in_summary_and_onnx_refusal(rng, tmp_path):
    """summary counts its parameters, width and FLOPs (a forward of one's own on two
    inputs is not run on a sample: each layer from its own shapes); ONNX export refuses
    it in one line saying why."""
    import wxb.onnx

    features, context, hidden = int(rng.integers(2, 6)), int(rng.integers(1, 5)), 4
    model = _Gated(nn, features, context, hidden)
    row = model.summary().rows[-1]
    assert row.name == "head" and row.type == "Bilinear" and row.output_shape == (3,)
    assert row.parameters == 3 * hidden * context + 3
    assert row.forward_flops == 2 * 3 * context * (hidden + 1) + 3  # x1ᵀ·Wₒ, ·x2, + b
    with pytest.raises(ConfigError, match=r"Bilinear.*it takes two inputs") as caught:
        wxb.onnx.export(nn.Bilinear(2, 3, 4), tmp_path / "m.onnx")
    assert "\n" not in str(caught.value)
