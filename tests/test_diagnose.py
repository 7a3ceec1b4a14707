"""Diagnostics: the figures are the engine's own, and the warnings fire when, and only
when, δ vanishes through saturated units."""

import re
import warnings

import numpy as np
import pytest

import wxb
from wxb.diagnose import layer_reports, warnings_for
from wxb.nn import CrossEntropyLoss, Dense, ReLU, Sequential, Sigmoid, Tanh


def blobs(rng, n=300, features=8, classes=3):
    centers = rng.normal(scale=3, size=(classes, features))
    y = rng.integers(0, classes, size=n)
    return (centers[y] + rng.normal(size=(n, features))).astype(np.float32), y


def test_reports_match_norms_computed_independently(rng):
    X, y = blobs(rng)
    model = Sequential(Dense(8, 16), Tanh(), Dense(16, 3))
    before = [p.grad for p in model.parameters()]
    reports = layer_reports(model, X, y, CrossEntropyLoss())
    assert [p.grad for p in model.parameters()] == before  # gradients left as they were
    # Independent: torch computes ∂L/∂W and δ = ∂L/∂Z for the same weights and batch.
    torch = pytest.importorskip("torch")
    W1, b1 = (
        torch.tensor(model[0].weight.data, requires_grad=True),
        torch.tensor(model[0].bias.data),
    )
    W2, b2 = (
        torch.tensor(model[2].weight.data, requires_grad=True),
        torch.tensor(model[2].bias.data),
    )
    Z1 = torch.tensor(X) @ W1.T + b1
    Z1.retain_grad()
    A1 = torch.tanh(Z1)
    Z2 = A1 @ W2.T + b2
    Z2.retain_grad()
    torch.nn.functional.cross_entropy(Z2, torch.tensor(y)).backward()
    expected = [(W1, Z1), (W2, Z2)]
    for report, (W, Z) in zip(reports, expected, strict=True):
        assert report.weight_norm == pytest.approx(float(W.detach().norm()), rel=1e-5)
        assert report.weight_grad_norm == pytest.approx(float(W.grad.norm()), rel=1e-4)
        assert report.delta_norm == pytest.approx(float(Z.grad.norm()), rel=1e-4)
    a = A1.detach().numpy()
    assert reports[0].saturated_fraction == pytest.approx(np.mean(1 - a * a < 0.01))


def test_saturated_sigmoid_network_warns_and_a_healthy_relu_one_does_not(rng):
    X, y = blobs(rng)
    seed = int(rng.integers(1 << 30))
    layers = []
    for i, (n, m) in enumerate([(8, 64), (64, 64), (64, 64), (64, 64)]):
        layers += [Dense(n, m, seed=seed + i, init="he_normal"), Sigmoid()]
    saturated = Sequential(*layers, Dense(64, 3, seed=seed + 9))
    for layer in list(saturated)[:-1]:  # large biases: every sigmoid sits near 1, σ′ ≈ 0
        if isinstance(layer, Dense):
            layer.bias.data[:] = 12
    with pytest.warns(RuntimeWarning, match="δ shrinks .*10.*sigmoid saturation"):
        history = wxb.fit(saturated, X, y, epochs=2, diagnose=True, verbose=False, seed=1)
    assert len(history.diagnostics) == 2 and len(history.warnings) >= 1
    assert "sigmoid saturation" in history.warnings[0]
    assert history.to_dict()["warnings"] == history.warnings

    healthy = Sequential(Dense(8, 32, seed=seed), ReLU(), Dense(32, 32), ReLU(), Dense(32, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        history = wxb.fit(healthy, X, y, epochs=3, diagnose=True, verbose=False, seed=1)
    assert history.warnings == [] and len(history.diagnostics) == 3
    assert all(r["dead_fraction"] is not None for r in history.diagnostics[-1]["layers"][:2])


def test_saturation_without_vanishing_delta_is_still_reported(rng):
    X, y = blobs(rng)
    model = Sequential(Dense(8, 64), Sigmoid(), Dense(64, 64), Sigmoid(), Dense(64, 3))
    for layer in (model[0], model[2]):  # huge weights: saturated, yet Wᵀ keeps δ large
        layer.weight.data *= 40
    reports = layer_reports(model, X, y, CrossEntropyLoss())
    assert reports[0].saturated_fraction > 0.5
    assert any("sigmoid saturation" in w for w in warnings_for(reports))


def test_dead_relu_layer_is_reported(rng):
    X, y = blobs(rng)
    model = Sequential(Dense(8, 16), ReLU(), Dense(16, 3))
    model[0].bias.data[:] = -1e3  # every unit below zero for every row: dead
    reports = layer_reports(model, X, y, CrossEntropyLoss())
    assert reports[0].dead_fraction == 1.0
    assert any("never fire" in w for w in warnings_for(reports))


def test_diagnose_needs_a_sequential_or_a_forward_that_only_chains_its_layers(rng):
    X, y = blobs(rng)

    class Wrapped(wxb.nn.Module):
        def __init__(self, then=None):
            super().__init__()
            self.inner, self.then = Dense(8, 3), then

        def forward(self, x):
            return self.inner(x) if self.then is None else self.then(self.inner(x))

    with pytest.raises(wxb.ConfigError, match="needs a Sequential"):
        wxb.fit(Wrapped(lambda z: z * 2.0), X, y, epochs=1, diagnose=True, verbose=False)
    for then in (None, wxb.nn.functional.tanh):
        history = wxb.fit(Wrapped(then), X, y, epochs=1, diagnose=True, verbose=False)
        (layer,) = history.diagnostics[0]["layers"]
        assert layer["layer"] == "inner" and layer["activation"] == (then and "tanh")


def test_a_forward_applying_its_activations_itself_is_diagnosed_as_its_sequential(rng):
    # x = F.relu(self.fc1(x)): fit(diagnose=True) refused it
    X, y = blobs(rng)
    F = wxb.nn.functional
    fc1, fc2, fc3 = Dense(8, 12), Dense(12, 6), Dense(6, 3)

    class Net(wxb.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc3, self.fc2, self.fc1 = fc3, fc2, fc1  # registered last first

        def forward(self, x):
            return self.fc3(F.sigmoid(self.fc2(F.relu(self.fc1(x)))))

    ours = layer_reports(Net(), X, y, CrossEntropyLoss())
    theirs = layer_reports(Sequential(fc1, ReLU(), fc2, Sigmoid(), fc3), X, y, CrossEntropyLoss())
    assert [r.layer for r in ours] == ["fc1", "fc2", "fc3"]
    assert [r.activation for r in ours] == ["relu", "sigmoid", None]
    for a, b in zip(ours, theirs, strict=True):
        assert {**a.to_dict(), "layer": ""} == {**b.to_dict(), "layer": ""}


def test_a_forward_that_chains_otherwise_on_the_diagnostic_rows_is_refused(rng):
    X, y = blobs(rng)
    F = wxb.nn.functional

    # a ReLU on the sample batch, a tanh on rows beyond those it checks too (a forward
    # reading x.data is tried on float32 rows up to 1e9)
    class Switch(wxb.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = Dense(8, 5), Dense(5, 3)

        def forward(self, x):
            z = self.fc1(x)
            return self.fc2(F.relu(z) if float(np.abs(x.data).max()) < 1e11 else F.tanh(z))

    assert len(layer_reports(Switch(), X / 100, y, CrossEntropyLoss())) == 2
    with pytest.raises(wxb.ConfigError, match="as on these rows"):
        layer_reports(Switch(), X * 1e12 + 1e12, y, CrossEntropyLoss())


def test_diagnostics_do_not_change_the_training_run(rng):
    X, y = blobs(rng)
    seed = int(rng.integers(1 << 30))

    def run(diagnose):
        model = Sequential(
            Dense(8, 16, seed=seed), ReLU(), wxb.nn.Dropout(0.3, seed=seed), Dense(16, 3, seed=1)
        )
        history = wxb.fit(model, X, y, epochs=3, diagnose=diagnose, verbose=False, seed=seed)
        return history, [p.data.copy() for p in model.parameters()], model.training

    plain, diagnosed = run(False), run(True)
    assert plain[0].history == diagnosed[0].history
    for a, b in zip(plain[1], diagnosed[1], strict=True):
        np.testing.assert_array_equal(a, b)
    assert diagnosed[2] is True  # back in training mode


def test_each_kind_of_warning_is_given_once_whatever_its_figures(rng, monkeypatch):
    import wxb.train as train
    from wxb.diagnose import LayerReport

    history = wxb.History()
    for epoch, ratio in enumerate([1e5, 1e6, 1e7, 1e8], start=1):
        reports = [LayerReport("dense1", 1.0, 1.0, 1.0 / ratio), LayerReport("dense2", 1.0, 1, 1)]
        monkeypatch.setattr(train, "layer_reports", lambda *args, r=reports: r)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train._diagnose_epoch(history, epoch, None, None, None, None)
        assert len(caught) == (1 if epoch == 1 else 0)
    assert len(history.warnings) == 1 and history.warnings[0].startswith("epoch 1: δ shrinks 10⁵×")


def test_nested_sequentials_are_opened_up(rng):
    X, y = blobs(rng)
    model = Sequential(Sequential(Dense(8, 6), ReLU()), Dense(6, 3))
    reports = layer_reports(model, X, y, CrossEntropyLoss())
    assert len(reports) == 2 and reports[0].dead_fraction is not None


def test_diagnostics_refuse_a_sequential_with_a_forward_of_its_own(rng):
    """Its layers in order would compute something else: figures of another network."""
    from wxb.nn import Dense, Sequential, Tanh

    class SkipsTheActivation(Sequential):
        def forward(self, x):
            return self[2](self[0](x))

    model = SkipsTheActivation(Dense(3, 4), Tanh(), Dense(4, 2))
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 2, size=20)
    with pytest.raises(wxb.ConfigError, match="forward of its own"):
        wxb.fit(model, X, y, epochs=1, diagnose=True, verbose=False)

    class OnlyAddsAMethod(Sequential):  # runs Sequential's forward: diagnosed as usual
        def width(self):
            return 4

    history = wxb.fit(OnlyAddsAMethod(Dense(3, 4), Tanh(), Dense(4, 2)), X, y, epochs=1,
                      diagnose=True, verbose=False)  # fmt: skip
    assert [layer["layer"] for layer in history.diagnostics[0]["layers"]] == ["dense1", "dense2"]


def test_a_frozen_first_layer_keeps_its_delta_and_raises_no_false_warning(rng):
    seed = int(rng.integers(1 << 30))
    model = Sequential(Dense(4, 8, seed=seed, dtype="float64"), Tanh(),
                       Dense(8, 3, seed=seed + 1, dtype="float64"))  # fmt: skip
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 3, 20)
    trainable = layer_reports(model, X, y, CrossEntropyLoss())
    for p in model[0].parameters():
        p.requires_grad = False
    frozen = layer_reports(model, X, y, CrossEntropyLoss())
    assert frozen[0].delta_norm > 0
    for a, b in zip(frozen, trainable, strict=True):
        np.testing.assert_allclose(a.delta_norm, b.delta_norm, rtol=1e-12)
    assert warnings_for(frozen) == warnings_for(trainable)
    assert all(not p.requires_grad and p.grad is None for p in model[0].parameters())


def test_the_activation_on_z_is_reported_when_another_follows_it(rng):
    # Dense → Tanh → Sigmoid reported the sigmoid (applied to tanh(Z)) and its saturation
    from wxb.nn import Dropout

    X, y = blobs(rng, n=int(rng.integers(20, 60)))
    model = Sequential(Dense(8, 12), Dropout(0.3), Tanh(), Sigmoid(), Dense(12, 3))
    for p in model.parameters():
        p.data[...] = rng.normal(scale=3, size=p.shape)
    report = layer_reports(model, X, y, CrossEntropyLoss())[0]
    Z = X.astype(np.float64) @ model[0].weight.data.T + model[0].bias.data
    assert report.activation == "tanh"
    saturated = np.mean(1 - np.tanh(Z) ** 2 < 0.01)
    assert saturated > 0.05  # the case the old report missed: sigmoid of tanh is never flat
    assert report.saturated_fraction == pytest.approx(saturated, abs=1e-6)


def test_the_warning_gives_the_factor_to_two_digits(rng):
    """'δ shrinks 10⁴×' was said for a factor of 8.3e4 (the power of ten below it, eight
    times less): the factor is now read back from the text to within its rounding."""
    from wxb.diagnose import LayerReport, warnings_for

    supers = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
    for _ in range(50):
        ratio = float(10 ** rng.uniform(4.01, 14))  # past VANISHING (1e4)
        shrinking = rng.random() < 0.5
        last, first = (1.0, 1.0 / ratio) if shrinking else (1.0, ratio)
        reports = [LayerReport("dense1", 1.0, 1.0, first), LayerReport("dense2", 1.0, 1, last)]
        (text,) = warnings_for(reports)
        found = re.search(r"δ (shrinks|grows) (?:(\d(?:\.\d)?)·)?10([⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+)×", text)
        assert found and (found.group(1) == "shrinks") == shrinking, text
        said = float(found.group(2) or 1) * 10 ** int(found.group(3).translate(supers))
        assert abs(said - ratio) <= 0.051 * ratio, f"{text} for a factor of {ratio:.4g}"


def test_a_vanishing_delta_through_relus_is_not_told_to_use_relu(rng):
    """A ReLU network whose δ vanishes (no saturation, no dead layer) was told 'consider
    ReLU'; a tanh one still is."""
    from wxb.diagnose import LayerReport, warnings_for

    ratio = float(10 ** rng.uniform(4.5, 9))
    for activation, advice in (("relu", "He's initial W"), ("tanh", "consider ReLU")):
        reports = [
            LayerReport("dense1", 1.0, 1.0, 1.0 / ratio, activation=activation),
            LayerReport("dense2", 1.0, 1.0, 1.0, activation=activation),
            LayerReport("dense3", 1.0, 1.0, 1.0),
        ]
        (text,) = warnings_for(reports)
        assert "δ shrinks" in text and advice in text, text
        assert activation != "relu" or "consider ReLU" not in text, text
