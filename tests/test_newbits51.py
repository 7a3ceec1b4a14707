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


def _poisson(x: np.ndarray, t: np.ndarray) -> float:
    return float(np.mean(np.exp(x) - t * x))


def _multilabel(x: np.ndarray, t: np.ndarray) -> float:
    rows = t * np.logaddexp(0, -x) + (1 - t) * np.logaddexp(0, x)
    return float(np.mean(rows.mean(axis=1)))


def _target_cases(rng: np.random.Generator, n: int, c: int):
    """(fit's name, wxb loss, torch function, float64 targets not exact in float32, NumPy's
    loss in float64)."""
    rates = rng.poisson(3.0, (n, c)) + rng.uniform(0.01, 0.99, (n, c))
    yield "poisson_nll", nn.PoissonNLLLoss(), torch.nn.functional.poisson_nll_loss, rates, _poisson
    soft = rng.uniform(0, 1, (n, c))
    multilabel = torch.nn.functional.multilabel_soft_margin_loss
    yield "multilabel_soft_margin", nn.MultiLabelSoftMarginLoss(), multilabel, soft, _multilabel


def test_float64_targets_widen_the_new_losses_as_mse(seeded) -> None:
    """A float64 NumPy target beside float32 outputs was cast to float32 by PoissonNLLLoss
    and MultiLabelSoftMarginLoss, where torch's functional forms and wxb's MSELoss and
    L1Loss compute the loss in float64 (the gradient in the outputs' float32): in a hand
    loop the value is now torch's dtype and NumPy's float64 number; evaluate and fit's
    val_loss score them against the targets as given, as MSELoss's. SoftMarginLoss and
    HingeEmbeddingLoss stay in the outputs' dtype, as torch's do."""
    rng = seeded.rng
    n, c = int(rng.integers(5, 40)), int(rng.integers(1, 5))
    x32 = rng.standard_normal((n, c)).astype(np.float32)
    for name, loss, reference, t, numpy_loss in _target_cases(rng, n, c):
        x = wxb.tensor(x32, requires_grad=True)
        value = loss(x, t)
        x_t = torch.tensor(x32, requires_grad=True)
        expected = reference(x_t, torch.tensor(t))
        assert value.dtype == np.float64 and expected.dtype == torch.float64, name
        # both take e^x (log σ(x)) in x's float32, then sum in float64: an ulp of float32
        # per term apart at most, over n·c terms of size up to e^|x| and t·|x|
        scale = max(1.0, float(np.exp(np.abs(x32)).max() + np.abs(t * x32).max()))
        assert abs(value.item() - expected.item()) <= 4 * 2.0**-23 * scale, name
        value.backward()
        expected.backward()
        assert x.grad.dtype == np.float32, name
        # (e^x − t)/(n·c) (σ(x) − t over c, then n) in float32: a few ulps of its terms
        atol = 4 * 2.0**-23 * scale / (n * c)
        np.testing.assert_allclose(x.grad.data, x_t.grad.numpy(), rtol=0, atol=atol)
        # fit's figures: the float32 model's outputs against the float64 targets as given
        X = rng.standard_normal((n, 3))
        model = nn.Sequential(nn.Dense(3, c, seed=int(rng.integers(2**31))))
        out = model.predict(X).astype(np.float64)
        figure = numpy_loss(out, t)
        scale = max(1.0, float(np.exp(np.abs(out)).max() + np.abs(t * out).max()))
        bound = 64 * n * c * 2.0**-52 * scale  # float64 sums of n·c such terms
        assert abs(wxb.evaluate(model, X, t, loss=name)["loss"] - figure) <= bound, name
        history = wxb.fit(model, X, t, loss=name, epochs=1, validation_data=(X, t), verbose=0)
        out = model.predict(X).astype(np.float64)
        assert abs(history.history["val_loss"][-1] - numpy_loss(out, t)) <= bound, name
    signs = rng.choice([-1.0, 1.0], (n, c))
    for loss, reference in (
        (nn.SoftMarginLoss(), torch.nn.functional.soft_margin_loss),
        (nn.HingeEmbeddingLoss(), torch.nn.functional.hinge_embedding_loss),
    ):
        value = loss(wxb.tensor(x32), signs)
        assert value.dtype == np.float32
        assert reference(torch.tensor(x32), torch.tensor(signs)).dtype == torch.float32


def test_summary_and_diagrams_of_embedding_and_lazylinear(seeded) -> None:
    """summary showed '?' for an Embedding's output and the widths after it without a
    word, and an uncalled LazyLinear as 0 FLOPs and '?' outputs (its out_features known);
    its backward diagram said 'No parameters: nothing to learn' beside the Embedding's;
    explain showed Z = W·X of a W drawn on its copy. Now: (?, d) and a line saying why,
    LazyLinear's (out,) and '?' FLOPs with a line, the backward named, explain refused
    in one line; once called, the Dense's figures are 2mn + m, as torch's Linear."""
    rng = seeded.rng
    n_ids, d, out = int(rng.integers(5, 50)), int(rng.integers(2, 9)), int(rng.integers(1, 6))
    per_row = int(rng.integers(1, 6))
    model = nn.Sequential(nn.Embedding(n_ids, d), nn.Flatten(), nn.LazyLinear(out))
    summary = model.summary()
    text = str(summary)
    rows = {row.name: row for row in summary.rows}
    assert rows["embedding1"].output_shape == (None, d)
    assert f"(?, {d})" in text
    assert "embedding1: Embedding looks up a row of W" in text
    assert rows["lazylinear1"].output_shape == (out,)
    assert rows["lazylinear1"].flops_unknown
    assert "lazylinear1: LazyLinear infers in_features at its first call" in text
    backward = wxb.describe.backward_diagram(model)
    assert "No parameters" not in backward and "LazyLinear infers in_features" in backward
    assert "made at its first call" in wxb.describe.architecture_diagram(model)
    X = rng.integers(0, n_ids, (8, per_row))
    with pytest.raises(wxb.errors.ConfigError, match=r"lazylinear1 \(LazyLinear\) has no W"):
        wxb.explain(model, X, rng.integers(0, out, 8))
    model(X)
    rows = {row.name: row for row in model.summary().rows}
    m, n = out, per_row * d
    assert rows["lazylinear1"].forward_flops == 2 * m * n + m
    assert not rows["lazylinear1"].flops_unknown
    # the Dense after Flatten takes L·d features: L ids a row, its rows (L, d) kept
    assert rows["embedding1"].output_shape == (per_row, d)
    assert rows["flatten1"].output_shape == (n,)
    assert rows["embedding1"].activation_bytes == n * 4  # float32
    backward = wxb.describe.backward_diagram(model)
    assert "∂L/∂embedding1.weight" in backward
    # an Embedding alone (no Dense) learns too: its backward drawn, not 'No parameters'
    alone = wxb.describe.backward_diagram(nn.Sequential(nn.Embedding(n_ids, d)))
    assert "No parameters" not in alone and "∂L/∂embedding1.weight" in alone
