"""wxb.explain: every number it shows is the engine's, and redoes by hand.

The seed's examples are recomputed here twice: with plain Python floats and
math.exp (an independent hand computation), and with wxb's layers. A model's
walkthrough is checked against PyTorch's gradients and against shapes and FLOPs
counted here.
"""

import math
import re

import numpy as np
import pytest
import torch
from rounding import affine_terms, rounding_atol

import wxb
from wxb import explanation as explain
from wxb.errors import ConfigError
from wxb.explanation import explain_model, explain_seed
from wxb.nn import Dense, MSELoss, ReLU, Sequential, Sigmoid, Tanh


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


# ---------------------------------------------------------------------------------
# The seed's examples
# ---------------------------------------------------------------------------------
def test_seed_layer_example_matches_a_hand_computation():
    (w11, w12), (w21, w22) = (0.5, -0.2), (0.1, 0.4)
    x1, x2 = 1.0, 2.0
    b1, b2 = 0.1, -0.1
    z1 = w11 * x1 + w12 * x2 + b1
    z2 = w21 * x1 + w22 * x2 + b2

    shown = explain_seed()
    np.testing.assert_allclose(shown.step("layer.Z").value, [z1, z2], rtol=1e-15, atol=1e-16)
    np.testing.assert_allclose(shown.step("layer.A").value, [sigmoid(z1), sigmoid(z2)], rtol=1e-15)
    assert shown.step("layer.Z").substituted == (
        "[[0.5, -0.2], [0.1, 0.4]]·[1.0, 2.0] + [0.1, -0.1]"
    )


def test_seed_network_example_matches_a_hand_computation():
    x, y, w1, b1, w2, b2 = 1.5, 1.0, 0.8, -0.2, 1.2, 0.3
    z1 = w1 * x + b1
    a1 = sigmoid(z1)
    z2 = w2 * a1 + b2
    y_hat = sigmoid(z2)
    loss = 0.5 * (y_hat - y) ** 2
    delta2 = (y_hat - y) * y_hat * (1 - y_hat)  # (ŷ − y)·σ′(z⁽²⁾)
    delta1 = w2 * delta2 * a1 * (1 - a1)  # w⁽²⁾δ⁽²⁾·σ′(z⁽¹⁾)
    expected = {
        "net.z1": z1,
        "net.a1": a1,
        "net.z2": z2,
        "net.y_hat": y_hat,
        "net.loss": loss,
        "net.delta2": delta2,
        "net.dL/dw2": delta2 * a1,
        "net.dL/db2": delta2,
        "net.delta1": delta1,
        "net.dL/dw1": delta1 * x,
        "net.dL/db1": delta1,
    }
    shown = explain_seed()
    for name, value in expected.items():
        assert math.isclose(shown.step(name).value, value, rel_tol=1e-14), name


def test_seed_numbers_are_what_the_engine_computes():
    shown = explain_seed()

    layer = Sequential(Dense(2, 2, dtype="float64"), Sigmoid())
    layer.load_state_dict({"dense1.weight": [[0.5, -0.2], [0.1, 0.4]], "dense1.bias": [0.1, -0.1]})
    Z = layer.dense1(wxb.Tensor([[1.0, 2.0]], dtype="float64"))
    np.testing.assert_allclose(shown.step("layer.Z").value, Z.data[0], rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(shown.step("layer.A").value, layer.sigmoid1(Z).data[0], rtol=1e-14)

    network = Sequential(
        Dense(1, 1, dtype="float64"), Sigmoid(), Dense(1, 1, dtype="float64"), Sigmoid()
    )
    network.load_state_dict(
        {
            "dense1.weight": [[0.8]],
            "dense1.bias": [-0.2],
            "dense2.weight": [[1.2]],
            "dense2.bias": [0.3],
        }
    )
    network.use_plan = False  # layer by layer, so δ = ∂L/∂Z of each Dense can be kept
    z1 = network.dense1(wxb.Tensor([[1.5]], dtype="float64")).retain_grad()
    z2 = network.dense2(network.sigmoid1(z1)).retain_grad()
    y_hat = network.sigmoid2(z2)
    loss = MSELoss()(y_hat, [[1.0]])
    loss.backward()
    engine = {
        "net.z1": z1.item(),
        "net.z2": z2.item(),
        "net.y_hat": y_hat.item(),
        "net.loss": loss.item(),
        "net.delta2": z2.grad.item(),
        "net.dL/dw2": network.dense2.weight.grad.item(),
        "net.dL/db2": network.dense2.bias.grad.item(),
        "net.delta1": z1.grad.item(),
        "net.dL/dw1": network.dense1.weight.grad.item(),
        "net.dL/db1": network.dense1.bias.grad.item(),
    }
    for name, value in engine.items():
        assert math.isclose(shown.step(name).value, value, rel_tol=1e-12), name


def test_seed_cross_check_is_computed_and_reports_disagreement(monkeypatch):
    shown = explain_seed()
    for name in ("layer.check", "net.check"):
        check = shown.step(name)
        assert check.facts["agree"] and check.value <= 1e-12
    assert shown.text().count("agree to 1e-12") == 2

    real = explain._seed_network_in_wxb
    monkeypatch.setattr(
        explain, "_seed_network_in_wxb", lambda *args: [g + 1e-6 for g in real(*args)]
    )
    broken = explain_seed()
    assert not broken.step("net.check").facts["agree"]
    assert "DISAGREE" in broken.text()


def test_seed_renderings_show_each_equation_and_value():
    shown = explain_seed()
    text = shown.text()
    assert "Z = W·X + b = [[0.5, -0.2], [0.1, 0.4]]·[1.0, 2.0] + [0.1, -0.1] = [0.2, 0.8]" in text
    assert "A = f(Z) = σ(Z) = [σ(0.2), σ(0.8)] = [0.549834, 0.689974]" in text
    for step in shown.steps:
        assert step.equation in text
        if not step.check:
            assert explain._fmt_text(step.value) in text, step.name

    markdown = shown.markdown()
    equations = [step for step in shown.steps if not step.check]
    assert markdown.count("$$\n") == 2 * len(equations)
    assert r"\mathbf{Z} = \mathbf{W} \cdot \mathbf{X} + \mathbf{b}" in markdown
    assert r"\delta^{(1)} = w^{(2)} \delta^{(2)} \cdot f'(z^{(1)})" in markdown
    assert r"\begin{bmatrix} 0.2 \\ 0.8 \end{bmatrix}" in markdown
    for step in equations:
        assert step.latex in markdown
        assert explain._fmt_latex(step.value) in markdown

    assert explain_seed("markdown").render() == markdown
    assert str(shown) == text
    with pytest.raises(ConfigError, match="format"):
        explain_seed("html")


# ---------------------------------------------------------------------------------
# A model
# ---------------------------------------------------------------------------------
def _torch_twin(model: Sequential) -> torch.nn.Sequential:
    """The same float64 network in PyTorch: W is (out, in) in both."""
    twin = []
    for layer in model.layers:
        if isinstance(layer, Dense):
            linear = torch.nn.Linear(layer.in_features, layer.out_features).double()
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(layer.weight.data))
                linear.bias.copy_(torch.from_numpy(layer.bias.data))
            twin.append(linear)
        else:
            twin.append({"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[layer.kernel.name]())
    return torch.nn.Sequential(*twin)


def test_explain_model_matches_torch_gradients_shapes_and_flops(rng, tmp_path):
    n, hidden, classes, batch = (int(v) for v in rng.integers(2, 7, size=4))
    built = Sequential(Dense(n, hidden, seed=rng), ReLU(), Dense(hidden, classes, seed=rng))
    built.to("float64")
    for p in built.parameters():
        p.data[:] = rng.normal(size=p.shape)
    model = wxb.load(wxb.save(built, tmp_path / "model.safetensors"))
    X = rng.normal(size=(batch, n))
    y = rng.integers(0, classes, size=batch)

    shown = explain_model(model, X, y, sample_rows=None)

    twin = _torch_twin(model)
    zs = []
    h = torch.from_numpy(X)
    for module in twin:
        h = module(h)
        if isinstance(module, torch.nn.Linear):
            h.retain_grad()
            zs.append(h)
    loss = torch.nn.functional.cross_entropy(h, torch.from_numpy(y))
    loss.backward()
    assert math.isclose(shown.step("loss").value, loss.item(), rel_tol=1e-12)

    # Z sums products of O(1) in another order in PyTorch: a z near 0 is off by ulps of
    # its terms, not of z (dense2's terms carry dense1's through the ReLU)
    terms, summed = X, 0
    for index, (name, linear, z) in enumerate(
        zip(("dense1", "dense2"), twin[::2], zs, strict=True)
    ):
        m, k = linear.weight.shape
        terms = affine_terms(terms, linear.weight.detach().numpy().T, linear.bias.detach().numpy())
        summed += k + 1
        Z = shown.step(f"{name}.Z")
        assert Z.facts["W_shape"] == (m, k)
        assert Z.facts["X_shape"] == (k, batch)
        assert Z.facts["Z_shape"] == (m, batch) == Z.value.shape  # column notation: m×B
        assert Z.facts["flops"] == 2 * m * k * batch
        assert f"({m}×{k})·({k}×{batch})" in Z.substituted
        np.testing.assert_allclose(
            Z.value, z.detach().numpy().T, rtol=1e-12, atol=rounding_atol(terms, summed)
        )

        grad_W = shown.step(f"{name}.dL/dW")
        assert grad_W.facts["shape"] == (m, k)
        norm_W = torch.linalg.norm(linear.weight.grad).item()
        assert math.isclose(grad_W.facts["norm"], norm_W, rel_tol=1e-12)
        assert f"‖∂L/∂W{explain._sup(index + 1)}‖_F = {explain._num(norm_W)}" in shown.text()

        delta = shown.step(f"{name}.delta")
        assert delta.facts["shape"] == (m, batch) == delta.value.shape
        np.testing.assert_allclose(delta.value, z.grad.numpy().T, rtol=1e-10, atol=1e-15)
        norm_b = torch.linalg.norm(linear.bias.grad).item()
        assert math.isclose(shown.step(f"{name}.dL/db").facts["norm"], norm_b, rel_tol=1e-12)

    A = shown.step("relu1.A")
    assert math.isclose(A.facts["zero_fraction"], float(np.mean(A.value == 0)))
    assert "dtype float64" in shown.text()
    assert f"X is n×B = {n}×{batch}" in shown.text()
    assert "(softmax(Z⁽²⁾) − Y)/B" in shown.text()
    markdown = shown.markdown()
    assert r"\mathbf{Z}^{(1)} = \mathbf{W}^{(1)} \cdot \mathbf{X} + \mathbf{b}^{(1)}" in markdown
    assert r"\delta^{(2)} \cdot \mathbf{A}^{(1)T}" in markdown


def test_explain_model_defaults_to_mse_and_matches_the_layer_by_layer_graph(rng):
    model = Sequential(Dense(3, 4, seed=rng), Tanh(), Dense(4, 1, seed=rng))  # float32
    X = rng.normal(size=(10, 3))
    y = rng.normal(size=10)
    before = [p.grad for p in model.parameters()]
    model.train()

    shown = explain_model(model, X, y, sample_rows=3)

    assert "B = 3, the first 3 of 10 rows of X" in shown.text()
    assert "dtype float32" in shown.text()
    assert "MSELoss" in shown.text()
    assert shown.step("dense2.Z").facts["flops"] == 2 * 1 * 4 * 3
    assert [p.grad for p in model.parameters()] == before  # the model's own .grad untouched
    assert model.training and model.dense1.training  # its mode restored

    model.use_plan = False
    loss = MSELoss()(model(X[:3].astype(np.float32)), y[:3].reshape(-1, 1))
    loss.backward()
    assert math.isclose(shown.step("loss").value, loss.item(), rel_tol=1e-6)
    for name in ("dense1", "dense2"):
        layer = getattr(model, name)
        expected = float(np.linalg.norm(layer.weight.grad.astype(np.float64)))
        assert math.isclose(shown.step(f"{name}.dL/dW").facts["norm"], expected, rel_tol=1e-6)
        assert shown.step(f"{name}.dL/dW").value.dtype == np.float32


def test_explain_model_without_targets_shows_the_forward_pass_only(rng):
    model = Sequential(Dense(4, 3, seed=rng), ReLU(), Dense(3, 2, seed=rng))
    shown = explain_model(model, rng.normal(size=4), fmt="markdown")  # one sample, 1-D
    assert [s.name for s in shown.steps] == ["dense1.Z", "relu1.A", "dense2.Z"]
    assert shown.step("dense1.Z").facts["Z_shape"] == (3, 1)
    assert str(shown) == shown.markdown()
    assert "$$" in str(shown)


def test_explain_model_walks_standardize_dropout_and_an_output_activation(rng):
    from wxb.nn import Dropout, Standardize

    X = rng.normal(size=(6, 3))
    model = Sequential(
        Standardize.fit(X), Dense(3, 5, seed=rng), Dropout(0.5), Sigmoid(), Dense(5, 2, seed=rng)
    )
    shown = explain_model(model, X, rng.normal(size=(6, 2)), loss=MSELoss(reduction="sum"))
    text = shown.text()
    assert "Z⁽¹⁾ = W⁽¹⁾·X̂ + b⁽¹⁾" in text
    assert "δ⁽¹⁾ = ∂L/∂Z⁽¹⁾ = (W⁽²⁾ᵀ·δ⁽²⁾) ⊙ sigmoid′(Z⁽¹⁾)" in text
    assert "δ⁽²⁾ = ∂L/∂Z⁽²⁾ = (Ŷ − Y) = " in text  # a sum: no 1/B
    assert "L = Σᵢ ½‖ŷᵢ − yᵢ‖²" in text
    assert shown.step("dense1.Z").facts["X_shape"] == (3, 4)  # sample_rows=4 by default


def test_wxb_explain_is_the_seed_examples_or_a_model(rng):
    assert wxb.explain().text() == explain_seed().text()
    model = wxb.nn.Sequential(wxb.nn.Dense(3, 2, dtype="float64"))
    X, y = rng.normal(size=(2, 3)), rng.integers(0, 2, size=2)
    assert wxb.explain(model, X, y).text() == explain_model(model, X, y).text()
    with pytest.raises(wxb.ConfigError, match="needs rows"):
        wxb.explain(model)


def test_a_sequential_with_a_forward_of_its_own_is_one_step_with_its_own_output(rng):
    """Its layers in order would compute something else: shown as one step whose value
    is the model's own output, never the list's."""

    class SkipsTheActivation(Sequential):
        def forward(self, x):
            return self[2](self[0](x))

    n, hidden, classes = (int(v) for v in rng.integers(2, 7, size=3))
    model = SkipsTheActivation(Dense(n, hidden, seed=rng), Tanh(), Dense(hidden, classes, seed=rng))
    X, y = rng.normal(size=(1, n)), rng.integers(0, classes, size=1)
    shown = explain_model(model.double(), X, y, sample_rows=None)
    forward = [s for s in shown.sections[0].steps]
    assert len(forward) == 1
    np.testing.assert_allclose(forward[0].value, model.predict(X).T, rtol=1e-12)
    assert "has a forward of its own" in shown.text()
    out = torch.from_numpy(model.predict(X))
    loss = torch.nn.functional.cross_entropy(out, torch.from_numpy(y))
    assert math.isclose(shown.step("loss").value, loss.item(), rel_tol=1e-12)


def test_frozen_layers_are_explained_with_their_gradients_and_stay_frozen(rng):
    n, hidden, classes, batch = (int(v) for v in rng.integers(2, 7, size=4))
    seed = int(rng.integers(1 << 30))
    frozen = Sequential(Dense(n, hidden, seed=seed), ReLU(), Dense(hidden, classes, seed=seed + 1))
    free = Sequential(Dense(n, hidden, seed=seed), ReLU(), Dense(hidden, classes, seed=seed + 1))
    which = int(rng.integers(0, 2)) * 2  # the first or the last Dense
    for p in frozen[which].parameters():
        p.requires_grad = False
    X, y = rng.normal(size=(batch, n)), rng.integers(0, classes, size=batch)
    shown = explain_model(frozen.double(), X, y, sample_rows=None)
    want = explain_model(free.double(), X, y, sample_rows=None)
    for name in ("dense1.dL/dW", "dense1.dL/db", "dense2.dL/dW", "dense2.delta"):
        np.testing.assert_allclose(shown.step(name).value, want.step(name).value, rtol=1e-12)
    assert all(not p.requires_grad and p.grad is None for p in frozen[which].parameters())
    name = "dense1" if which == 0 else "dense2"
    assert f"Frozen (requires_grad False): {name}.weight, {name}.bias;" in shown.text()


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_the_markdown_loss_formula_has_one_over_b_only_for_a_mean(rng, reduction):
    from wxb.nn import CrossEntropyLoss, Dense, MSELoss, Sequential

    model = Sequential(Dense(3, 2, dtype="float64"))
    X = rng.normal(size=(4, 3))
    for loss, y in ((MSELoss(reduction), rng.normal(size=(4, 2))),
                    (CrossEntropyLoss(reduction), rng.integers(0, 2, 4))):  # fmt: skip
        markdown = wxb.explain(model, X, y, loss).markdown()
        assert (r"\frac{1}{B}" in markdown) == (reduction == "mean"), markdown


def test_tied_weights_show_each_places_share_of_the_gradient(rng):
    """A W (and b) used by two layers: each place shows its own δ·Aᵀ (and Σ δ), and the
    shares add up to the parameter's gradient (each place showed the whole sum)."""
    n, h, k, batch = (int(v) for v in rng.integers(2, 6, size=4))
    first, second, third = Dense(n, h), Dense(h, h), Dense(h, h)
    third.weight, third.bias = second.weight, second.bias
    model = Sequential(first, Tanh(), second, Tanh(), third, Tanh(), Dense(h, k)).to("float64")
    for p in model.parameters():
        p.data[...] = rng.normal(size=p.shape)
    X, y = rng.normal(size=(batch, n)), rng.integers(0, k, size=batch)
    shown = explain_model(model, X, y, sample_rows=None)

    rows, inputs, zs = torch.from_numpy(X), {}, {}
    W = {id(p): torch.tensor(p.data, requires_grad=True) for p in model.parameters()}
    for position, layer in enumerate(model.layers):
        if isinstance(layer, Dense):
            inputs[position] = rows
            rows = rows @ W[id(layer.weight)].T + W[id(layer.bias)]
            rows.retain_grad()
            zs[position] = rows
        else:
            rows = torch.tanh(rows)
    torch.nn.functional.cross_entropy(rows, torch.from_numpy(y)).backward()
    # PyTorch sums δ and δ·Aᵀ in other orders: an entry near 0 is off by ulps of its
    # terms. Their sizes: |softmax − onehot|/B carried back through |W| (|tanh′| <= 1);
    # tanh′ = 1 − a² and softmax also take the forward's rounding, ulps of its terms
    forward, k_forward = X, 0
    for layer in model.layers[::2]:
        forward = affine_terms(forward, layer.weight.data.T, layer.bias.data)
        k_forward += layer.in_features + 1
    size = (torch.softmax(rows, 1).detach().numpy() + np.eye(k)[y]) / batch
    sizes = {6: size, 4: size @ np.abs(model.layers[6].weight.data)}
    sizes[2] = sizes[4] @ np.abs(second.weight.data)
    summed = batch + k + h + 4 + 3 * 2 * k_forward * float(forward.max())
    shares = []
    for position in (2, 4):  # the tied layers
        name = model.layers[position].name
        z = zs[position].grad
        expected_W = (z.T @ inputs[position]).detach().numpy()
        A = inputs[position].detach().numpy()
        atol = rounding_atol(affine_terms(sizes[position].T, A), summed)
        np.testing.assert_allclose(
            shown.step(f"{name}.dL/dW").value, expected_W, rtol=1e-10, atol=atol
        )
        atol = rounding_atol(sizes[position].sum(0), summed)
        np.testing.assert_allclose(
            shown.step(f"{name}.dL/db").value, z.sum(0).numpy(), rtol=1e-10, atol=atol
        )
        assert "this place's share" in shown.step(f"{name}.dL/dW").note
        shares.append(expected_W)
    total = W[id(second.weight)].grad.numpy()
    np.testing.assert_allclose(shares[0] + shares[1], total, rtol=1e-10)
    assert "share" not in shown.step(f"{first.name}.dL/dW").note


def test_a_softmax_output_layer_shows_its_jacobian_delta(rng):
    """δ through a Softmax layer is A ⊙ (∇_A L − Σⱼ Aⱼ(∇_A L)ⱼ), not ∇_A L ⊙ softmax′(Z)
    element-wise (the value was right, its equation was not)."""
    from wxb.nn import Softmax

    n, k, batch = (int(v) for v in rng.integers(2, 6, size=3))
    model = Sequential(Dense(n, k), Softmax()).to("float64")
    X, Y = rng.normal(size=(batch, n)), rng.normal(size=(batch, k))
    shown = explain_model(model, X, Y, loss="mse", sample_rows=None)
    A = shown.step(f"{model.layers[1].name}.A").value  # k×B
    g = (A - Y.T) / batch  # ∇_A of the mean ½‖A − Y‖²
    expected = A * (g - (A * g).sum(axis=0))
    delta = shown.step(f"{model.layers[0].name}.delta")
    # g − Σⱼ Aⱼgⱼ cancels near 0 for some draws: wxb's order of the k + 1 terms differs
    # from this one's by their rounding alone
    atol = rounding_atol(A * (np.abs(g) + (A * np.abs(g)).sum(axis=0)), k + 3)
    np.testing.assert_allclose(delta.value, expected, rtol=1e-10, atol=atol)
    assert "Σⱼ" in delta.equation and "softmax′" not in delta.equation


def test_stacked_activations_and_nested_layers_each_have_their_own_name(rng):
    # A⁽¹⁾ = f(A⁽¹⁾) read as one symbol on both sides; two nested Sequentials gave
    # dense1.Z twice, and step("dense1.Z") found the first
    inner = Sequential(Dense(3, 4), ReLU(), Tanh())
    model = Sequential(inner, Sequential(Dense(4, 4), ReLU()), Dense(4, 2)).to("float64")
    X = rng.normal(size=(2, 3))
    e = wxb.explain(model, X, rng.integers(0, 2, 2))
    names = [s.name for s in e.steps]
    assert len(names) == len(set(names))
    first = e.step("sequential1.relu1.A")
    assert first.equation.startswith("A⁽¹⁾₁ = f(Z⁽¹⁾)")
    assert e.step("sequential1.tanh1.A").equation.startswith("A⁽¹⁾ = f(A⁽¹⁾₁)")
    z1 = X @ inner[0].weight.data.T + inner[0].bias.data
    np.testing.assert_allclose(first.value, np.maximum(z1, 0).T, rtol=1e-12)
    second = model[1][0]
    z2 = np.tanh(np.maximum(z1, 0)) @ second.weight.data.T + second.bias.data
    # summed in another order than wxb's: a z2 near 0 is off by ulps of its terms
    terms = affine_terms(
        affine_terms(X, inner[0].weight.data.T, inner[0].bias.data),
        second.weight.data.T,
        second.bias.data,
    )
    atol = rounding_atol(terms, (3 + 1) + (4 + 1))
    np.testing.assert_allclose(e.step("sequential2.dense1.Z").value, z2.T, rtol=1e-12, atol=atol)


def test_a_layer_used_twice_is_found_by_its_own_name(rng):
    # the second registration's name (dense2_4) named both uses: step("dense2.Z") failed
    shared = Dense(4, 4)
    model = Sequential(Dense(3, 4), shared, ReLU(), shared, Dense(4, 2)).to("float64")
    X = rng.normal(size=(2, 3))
    e = wxb.explain(model, X, rng.integers(0, 2, 2))
    first, second = e.step("dense2.Z"), e.step("dense2#2.Z")
    z1 = X @ model[0].weight.data.T + model[0].bias.data
    z2 = z1 @ shared.weight.data.T + shared.bias.data
    np.testing.assert_allclose(first.value, z2.T, rtol=1e-12)
    z3 = np.maximum(z2, 0) @ shared.weight.data.T + shared.bias.data
    np.testing.assert_allclose(second.value, z3.T, rtol=1e-12)


def test_python_explain_scores_a_model_with_its_own_loss_as_eval_and_report_do(rng):
    """wxb.explain(model, X, y) on a model with a Softmax head took cross-entropy of p as if
    p were logits (softmax twice), and on a model trained with bce_with_logits took MSE;
    wxb explain, report and eval score both with the model's loss (on p itself)."""
    from wxb.nn import Softmax

    n, k, batch = int(rng.integers(2, 6)), int(rng.integers(3, 6)), int(rng.integers(1, 5))
    head = Sequential(Dense(n, 4), Sigmoid(), Dense(4, k), Softmax()).to("float64")
    for p in head.parameters():
        p.data[...] = 2 * rng.normal(size=p.shape)
    X, y = rng.normal(size=(batch, n)), rng.integers(0, k, size=batch)
    shown = wxb.explain(head, X, y, sample_rows=None)
    p = head.predict(X)
    np.testing.assert_allclose(shown.step("loss").value, -np.log(p[np.arange(batch), y]).mean())
    onehot = np.eye(k)[y]
    np.testing.assert_allclose(shown.step("dense2.delta").value, ((p - onehot) / batch).T)

    binary = Sequential(Dense(n, 3), Tanh(), Dense(3, 1)).to("float64")
    binary.info.update(task="classification", loss="bce_with_logits")
    labels = rng.integers(0, 2, size=batch)
    shown = wxb.explain(binary, X, labels, sample_rows=None)
    z = torch.from_numpy(binary.predict(X).ravel())
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        z, torch.from_numpy(labels.astype(np.float64))
    )
    np.testing.assert_allclose(shown.step("loss").value, expected.item(), rtol=1e-12)


def test_a_weight_a_custom_module_uses_too_shows_this_places_share(rng):
    """A tied decoder (a module of its own computing h·W) reuses the first Dense's W:
    ∂L/∂W⁽¹⁾ = δ⁽¹⁾·Xᵀ is that place's share, not the sum backward leaves in W.grad."""
    from wxb import ops
    from wxb.nn import Module

    class TiedDecoder(Module):
        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder

        def forward(self, h):
            return ops.matmul(h, self.encoder.weight)

    n, h, batch = int(rng.integers(3, 7)), int(rng.integers(2, 5)), int(rng.integers(1, 6))
    encoder = Dense(n, h)
    model = Sequential(encoder, Tanh(), TiedDecoder(encoder)).to("float64")
    for p in model.parameters():
        p.data[...] = rng.normal(size=p.shape)
    X = rng.normal(size=(batch, n))
    shown = explain_model(model, X, X, loss="mse", sample_rows=None)

    W = torch.tensor(encoder.weight.data, requires_grad=True)
    x = torch.from_numpy(X)
    z = x @ W.T + torch.from_numpy(encoder.bias.data)
    z.retain_grad()
    out = torch.tanh(z) @ W
    (0.5 * ((out - x) ** 2).sum() / batch).backward()
    step = shown.step(f"{encoder.name}.dL/dW")
    np.testing.assert_allclose(step.value, (z.grad.T @ x).numpy(), rtol=1e-10, atol=1e-14)
    assert not np.allclose(step.value, W.grad.numpy())  # the decoder's share is not in it
    assert "this place's share" in step.note


def test_subclasses_with_a_forward_of_their_own_are_not_explained_as_stock_layers(rng):
    """A Dense subclass that masks W and a Sigmoid subclass computing z·σ(z) were shown as
    Z = W·X + b and A = sigmoid(Z) beside numbers those equations do not give."""
    from wxb import ops

    class MaskedDense(Dense):
        def forward(self, x):
            mask = np.tril(np.ones(self.weight.shape))
            return ops.add_bias(ops.linear_map(x, ops.mul(self.weight, mask)), self.bias)

    class Swish(Sigmoid):
        def forward(self, x):
            return ops.mul(x, ops.sigmoid(x))

    n, k, batch = int(rng.integers(2, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 5))
    masked, swish, last = MaskedDense(n, n), Swish(), Dense(n, k)
    model = Sequential(masked, swish, last).to("float64")
    for p in model.parameters():
        p.data[...] = rng.normal(size=p.shape)
    X, Y = rng.normal(size=(batch, n)), rng.normal(size=(batch, k))
    shown = explain_model(model, X, Y, loss="mse", sample_rows=None)

    names = [step.name for step in shown.steps]
    assert f"{masked.name}.Z" not in names and f"{swish.name}.A" not in names
    Z = X @ (masked.weight.data * np.tril(np.ones((n, n)))).T + masked.bias.data
    H = Z / (1 + np.exp(-Z))
    np.testing.assert_allclose(shown.step(f"{masked.name}.out").value, Z.T, rtol=1e-12)
    np.testing.assert_allclose(shown.step(f"{swish.name}.out").value, H.T, rtol=1e-12)
    np.testing.assert_allclose(
        shown.step(f"{last.name}.Z").value, (H @ last.weight.data.T + last.bias.data).T
    )


# ---------------------------------------------------------------------------------
# A forward of one's own that only chains its layers (the PyTorch habit)
# ---------------------------------------------------------------------------------
def _applied(rng):
    """An activation as a forward applies it, and the layer computing the same."""
    from wxb.nn import GELU, LeakyReLU
    from wxb.nn import functional as F

    slope = float(rng.uniform(0.05, 0.5))
    return [
        (F.relu, ReLU()),
        (F.tanh, Tanh()),
        (F.sigmoid, Sigmoid()),
        (lambda x: F.leaky_relu(x, slope), LeakyReLU(slope)),
        (lambda x: F.gelu(x, "tanh"), GELU("tanh")),
    ][int(rng.integers(5))]


class _Net(wxb.nn.Module):
    """Dense layers as attributes (registered last first), an activation applied in the
    forward after each but the last."""

    def __init__(self, layers, applied):
        super().__init__()
        for k in reversed(range(len(layers))):
            setattr(self, f"fc{k + 1}", layers[k])
        self.count, self.applied = len(layers), applied

    def forward(self, x):
        for k in range(self.count):
            x = getattr(self, f"fc{k + 1}")(x)
            x = self.applied[k](x) if k < self.count - 1 else x
        return x


def test_a_forward_that_applies_its_activations_itself_is_explained_layer_by_layer(rng):
    # it was one opaque step ("has a forward of its own"), with no δ chain
    for _ in range(5):
        widths = [int(w) for w in rng.integers(1, 9, size=int(rng.integers(2, 5)))]
        classes = int(rng.integers(2, 5))
        outputs = [*widths[1:], classes]
        layers = [Dense(a, b, seed=rng) for a, b in zip(widths, outputs, strict=True)]
        pairs = [_applied(rng) for _ in layers[:-1]]
        model = _Net(layers, [f for f, _ in pairs]).double()
        hidden = [x for d, (_, a) in zip(layers, pairs, strict=False) for x in (d, a)]
        stock = Sequential(*hidden, layers[-1])
        batch = int(rng.integers(1, 6))
        X, y = rng.normal(size=(batch, widths[0])), rng.integers(0, classes, size=batch)
        ours = explain_model(model, X, y, sample_rows=None)
        theirs = explain_model(stock.double(), X, y, sample_rows=None)
        assert "has a forward of its own" not in ours.text()
        assert [s.name.split(".")[-1] for s in ours.steps] == [
            s.name.split(".")[-1] for s in theirs.steps
        ]
        for a, b in zip(ours.steps, theirs.steps, strict=True):
            assert np.array_equal(a.value, b.value), (a.name, b.name)
        assert ours.step("fc1.Z").value.shape == (widths[1], batch)
        assert all(p.grad is None for p in model.parameters())


def test_a_forward_that_chains_otherwise_on_these_rows_stays_one_step(rng):
    from wxb.nn import functional as F

    n, h, k = (int(v) for v in rng.integers(2, 6, size=3))

    # a ReLU on the sample batch, a tanh on rows beyond those it checks too (a forward
    # reading x.data is tried on float64 rows up to 1e15)
    class Switch(wxb.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = Dense(n, h, seed=rng), Dense(h, k, seed=rng)

        def forward(self, x):
            z = self.fc1(x)
            return self.fc2(F.relu(z) if float(np.abs(x.data).max()) < 1e17 else F.tanh(z))

    model = Switch().double()
    small = rng.normal(size=(3, n))
    assert "relu(Z⁽¹⁾)" in explain_model(model, small).text()
    large = small * 1e18 + 1e18
    shown = explain_model(model, large, sample_rows=None)
    (step,) = shown.steps
    assert "has a forward of its own" in shown.text()
    assert np.array_equal(step.value, model.predict(large).T)


@pytest.mark.parametrize("loss", ["huber", "smooth_l1"])
def test_explain_scores_a_regression_with_the_threshold_training_used(
    tmp_path, seeded, capsys, monkeypatch, loss
):
    """wxb train fits a regression on (y − mean)/s with Huber's δ = 1 (smooth L1's β = 1),
    then folds s into the output layer; explain scored the folded model's ŷ − y with
    δ = 1 in the target's units, so a row training saw in the squared part was shown in
    the linear one. Now δ = s there: L is s² (s) × torch's loss on (ŷ − y)/s."""
    from wxb.cli import main

    rng = seeded.rng
    n = int(rng.integers(40, 80))
    scale = 10 ** rng.uniform(1, 3)
    X = rng.standard_normal((n, 3))
    y = 5 + scale * (X @ rng.standard_normal(3))
    rows = np.column_stack([X, y])
    lines = ["a,b,c,t"] + [",".join(repr(float(v)) for v in row) for row in rows]
    (tmp_path / "reg.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)
    seed = str(int(rng.integers(2**31)))
    trained = main(["train", "--data", "reg.csv", "--target", "t", "--loss", loss,
                    "--epochs", "3", "--hidden", "8", "--seed", seed, "-q",
                    "-o", "m.safetensors"])  # fmt: skip
    assert trained == 0, seeded.msg(capsys.readouterr().err)
    model = wxb.load("m.safetensors")
    # the training part's spread (its rows are most of them): not 1, not the target's mean
    (s,) = model.info["target_scale"]
    assert 0.5 * np.std(y) < s < 2 * np.std(y), seeded.msg(f"{s} vs {np.std(y)}")

    def torch_loss(residual: float) -> float:
        d = torch.tensor([residual / s], dtype=torch.float64)
        zero = torch.zeros(1, dtype=torch.float64)
        if loss == "huber":
            return s * s * float(torch.nn.HuberLoss(delta=1.0)(d, zero))
        return s * float(torch.nn.SmoothL1Loss(beta=1.0)(d, zero))

    predicted = model.predict(X.astype(np.float32)).astype(np.float64)[:, 0]
    row = int(np.argmax(np.abs(predicted - y)))  # far out: past δ = 1 in the target's units
    capsys.readouterr()
    for walk in ("cli", "python"):
        if walk == "cli":
            assert (
                main(["explain", "m.safetensors", "--data", "reg.csv", "--sample", str(row)]) == 0
            )
            out = capsys.readouterr().out
        else:  # the model's own loss, as wxb.explain scores it
            out = explain_model(model, X[row : row + 1], y[row : row + 1]).render()
        shown = float(re.search(r"^\s*L = .* = (\S+)$", out, re.M).group(1))
        expected = torch_loss(predicted[row] - y[row])
        assert shown == pytest.approx(expected, rel=2e-4), seeded.msg(
            f"{walk}: {shown} vs {expected}"
        )
