"""Leftovers of the layers and losses added at stop 51: fit's accuracy for the margin
losses, a materialised LazyLinear's reset_parameters, the new losses' dtype against a
float64 target, and summary's figures for Embedding and LazyLinear."""

from __future__ import annotations

import numpy as np
import pytest

import wxb
import wxb.nn as nn

torch = pytest.importorskip("torch")


def _classifier(rng: np.random.Generator, features: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Dense(features, 8, seed=int(rng.integers(2**31))),
        nn.Tanh(),
        nn.Dense(8, outputs, seed=int(rng.integers(2**31))),
    )


def _accuracy_cases(rng: np.random.Generator):
    """(loss name, loss, outputs, targets, NumPy's rows right from the outputs)."""
    n = int(rng.integers(20, 60))
    classes = int(rng.integers(2, 6))
    y = rng.integers(0, classes, n)
    yield "multi_margin", nn.MultiMarginLoss(), classes, y, lambda z: z.argmax(1) == y
    signs = rng.choice([-1.0, 1.0], size=(n, 1))
    yield "soft_margin", nn.SoftMarginLoss(), 1, signs, lambda z: np.sign(z[:, 0]) == signs[:, 0]
    labels = rng.integers(0, 2, (n, classes)).astype(np.float64)
    yield (
        "multilabel_soft_margin",
        nn.MultiLabelSoftMarginLoss(),
        classes,
        labels,
        lambda z: ((z > 0) == (labels > 0.5)).all(axis=1),
    )


def test_fit_and_evaluate_score_the_margin_losses_accuracy(seeded) -> None:
    """fit recorded no accuracy for these classifiers' losses (nor evaluate): the argmax
    of MultiMarginLoss's scores, the sign of SoftMarginLoss's x against ±1, each label's
    x > 0 of MultiLabelSoftMarginLoss, a row right when every label is (as BCE's)."""
    rng = seeded.rng
    for name, loss, outputs, y, right in _accuracy_cases(rng):
        X = rng.standard_normal((len(y), 4))
        model = _classifier(rng, 4, outputs)
        history = wxb.fit(
            model, X, y, loss=loss, epochs=2, batch_size=16, validation_data=(X, y), verbose=0
        )
        assert "accuracy" in history.history, name
        z = model.predict(X).astype(np.float64)
        expected = float(np.mean(right(z)))
        # the last epoch's val_accuracy is the model's as it ends, on the same rows
        assert history.history["val_accuracy"][-1] == pytest.approx(expected), name
        for by_name in (loss, name):
            scores = wxb.evaluate(model, X, y, loss=by_name)
            assert scores["accuracy"] == pytest.approx(expected), name
        assert 0 <= history.history["accuracy"][0] <= 1, name


def _within_bound(values: np.ndarray, bound: float) -> None:
    """U(±bound) drawn in float64 and rounded to float32: within bound by an ulp, and
    reaching near it (out of thousands of draws, none past 0.9·bound: p < 1e-40)."""
    top = np.abs(np.asarray(values, np.float64)).max()
    assert top <= bound * (1 + 2.0**-23)
    assert top > 0.9 * bound


def test_materialised_lazylinear_resets_as_torch_linear(seeded, tmp_path) -> None:
    """A LazyLinear made a Dense drew W and b from U(±1/√in) at its first call, but its
    reset_parameters() drew W Glorot-uniform and zeroed b; torch's Linear draws both from
    U(±1/√in) again (kaiming_uniform(a=√5)), as wxb's does now, before and after a
    save and load. The bounds are compared with torch's, not the values."""
    rng = seeded.rng
    n, out = int(rng.integers(80, 300)), 200
    bound = 1 / np.sqrt(n)
    reference = torch.nn.Linear(n, out)
    reference.reset_parameters()
    _within_bound(reference.weight.detach().numpy(), bound)
    _within_bound(reference.bias.detach().numpy(), bound)
    layer = nn.LazyLinear(out)
    layer(wxb.tensor(rng.standard_normal((3, n)).astype(np.float32)))
    assert type(layer) is nn.Dense
    before = layer.weight.data.copy()
    layer.reset_parameters()
    assert not np.array_equal(before, layer.weight.data)  # drawn again
    _within_bound(layer.weight.data, bound)
    _within_bound(layer.bias.data, bound)
    model = nn.Sequential(layer)
    path = tmp_path / "lazy.safetensors"
    wxb.save(model, path)
    loaded = wxb.load(path)
    loaded[0].reset_parameters()
    _within_bound(loaded[0].weight.data, bound)
    _within_bound(loaded[0].bias.data, bound)
    # a Dense made so by hand draws the same, b too
    made = nn.Dense(n, out, init="torch", seed=int(rng.integers(2**31)))
    _within_bound(made.weight.data, bound)
    _within_bound(made.bias.data, bound)
