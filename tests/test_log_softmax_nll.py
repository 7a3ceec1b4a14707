"""PyTorch's LogSoftmax + NLLLoss (the MNIST tutorials' pair) on wxb, against PyTorch in
float64: the layer, the loss, training through fit and by hand, and every way a model
leaves wxb (file, ONNX, PyTorch, wxb eval, explain). Inputs are drawn fresh each run."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import wxb
import wxb.interop
from wxb import nn
from wxb.cli import main


def mnist_style(rng, features, classes, hidden=8):
    model = nn.Sequential(
        nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, classes), nn.LogSoftmax()
    ).double()
    return model, wxb.interop.to_torch(model)


def test_log_softmax_and_its_gradient_are_torchs_even_for_huge_logits(rng):
    rows, classes = int(rng.integers(1, 7)), int(rng.integers(1, 6))
    z = rng.normal(size=(rows, classes)) * float(rng.choice([1.0, 300.0]))  # e^300 overflows
    ours, theirs = wxb.Tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
    out, t_out = nn.functional.log_softmax(ours), torch.log_softmax(theirs, dim=1)
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = rng.normal(size=z.shape)
    (out * g).sum().backward()
    (t_out * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)
    layer = nn.LogSoftmax()(wxb.Tensor(z))  # the layer is the same kernel
    np.testing.assert_array_equal(layer.data, out.data)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_and_its_gradient_are_torchs(rng, reduction):
    rows, classes = int(rng.integers(1, 9)), int(rng.integers(2, 6))
    a = np.log(rng.dirichlet(np.ones(classes), size=rows))
    y = rng.integers(0, classes, rows)
    ours, theirs = wxb.Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    loss = nn.NLLLoss(reduction=reduction)(ours, y)
    t_loss = torch.nn.NLLLoss(reduction=reduction)(theirs, torch.tensor(y))
    np.testing.assert_allclose(loss.data, t_loss.detach().numpy(), rtol=1e-12)
    weights = rng.normal(size=loss.shape)
    (loss * weights).sum().backward()
    (t_loss * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-12, atol=0)


def test_nll_refuses_probability_targets_and_classes_out_of_range(rng):
    a = np.log(np.full((3, 2), 0.5))
    with pytest.raises(wxb.errors.DataError, match=r"targets are class indices of shape \(B,\)"):
        nn.NLLLoss()(wxb.Tensor(a), np.eye(2)[[0, 1, 0]])
    with pytest.raises(wxb.errors.DataError, match="target holds class 2"):
        nn.NLLLoss()(wxb.Tensor(a), np.array([0, 2, 1]))


@pytest.mark.parametrize("path", ["fit", "hand"])
def test_training_with_log_softmax_and_nll_takes_torchs_steps(rng, path):
    """fit (the planned step) and a loop by hand give PyTorch's weights after the same
    SGD steps; fit records the model as the classifier it is."""
    n, features, classes = (
        int(rng.integers(20, 50)),
        int(rng.integers(2, 6)),
        int(rng.integers(2, 5)),
    )
    X, y = rng.normal(size=(n, features)), rng.integers(0, classes, n)
    model, twin = mnist_style(rng, features, classes)
    opt = wxb.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    t_opt = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    batch, epochs = int(rng.integers(4, 12)), int(rng.integers(1, 4))
    if path == "fit":
        history = wxb.fit(model, X, y, loss="nll", optimizer=opt, epochs=epochs, batch_size=batch,
                          shuffle=False, validation_split=0.0, verbose=False)  # fmt: skip
        assert history.engine == "planned", history.engine_reason
        assert model.info["task"] == "classification"
    else:
        loss_fn = nn.NLLLoss()
        for _ in range(epochs):
            for start in range(0, n, batch):
                opt.zero_grad()
                loss_fn(model(X[start : start + batch]), y[start : start + batch]).backward()
                opt.step()
    Xt, yt = torch.tensor(X), torch.tensor(y)
    for _ in range(epochs):
        for start in range(0, n, batch):
            t_opt.zero_grad()
            torch.nn.NLLLoss()(
                twin(Xt[start : start + batch]), yt[start : start + batch]
            ).backward()
            t_opt.step()
    for ours, theirs in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_a_log_softmax_model_leaves_wxb_as_it_computes(rng, tmp_path, capsys):
    """Saved and loaded, exported to PyTorch and back, scored by wxb eval (its
    log-probabilities read as logits: the same cross-entropy) and explained (the
    log-softmax's Jacobian, not an element-wise f′)."""
    features, classes, n = int(rng.integers(2, 6)), int(rng.integers(2, 5)), 12
    X, y = rng.normal(size=(n, features)), rng.integers(0, classes, n)
    model, _ = mnist_style(rng, features, classes)
    wxb.fit(model, X, y, loss="nll", epochs=2, verbose=False)
    path = wxb.save(model, tmp_path / "m.safetensors")
    loaded = wxb.load(path)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    back = wxb.interop.from_torch(wxb.interop.to_torch(model))
    np.testing.assert_allclose(back.predict(X), model.predict(X), rtol=1e-12)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    code = main(["eval", str(path), str(tmp_path / "d.npz")])
    out = capsys.readouterr().out
    assert code == 0
    expected = torch.nn.NLLLoss()(torch.tensor(model.predict(X)), torch.tensor(y)).item()
    shown = float(re.search(r"loss ([0-9.]+)", out).group(1))
    assert shown == pytest.approx(expected, abs=1e-4), out
    text = str(wxb.explain(model, X[:3], y[:3], loss="nll"))
    assert "L = −(1/B)·Σᵢ aᵢ[yᵢ]" in text and "softmax(Z⁽²⁾) ⊙ Σⱼ" in text, text


@pytest.mark.parametrize("layer", ["LogSoftmax", "Softmax"])
def test_the_layer_takes_pytorchs_dim_of_the_classes(rng, layer):
    """nn.LogSoftmax(dim=1), as a PyTorch tutorial writes it, was a bare TypeError (no
    dim= at all): dim 1 or -1 (the classes of a (B, C) output) is taken, with PyTorch's
    values and gradients; another axis is refused in one line, not run over the last."""
    rows, classes = (int(n) for n in rng.integers(2, 6, size=2))
    logits, weights = rng.normal(size=(rows, classes)) * 5, rng.normal(size=(rows, classes))
    for dim in (1, -1):
        x, xt = (
            wxb.Tensor(logits.copy(), requires_grad=True),
            torch.tensor(logits, requires_grad=True),
        )
        out, expected = getattr(nn, layer)(dim=dim)(x), getattr(torch.nn, layer)(dim=dim)(xt)
        (out * wxb.Tensor(weights)).sum().backward()
        (expected * torch.tensor(weights)).sum().backward()
        np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    with pytest.raises(wxb.ConfigError, match="dim=0"):
        getattr(nn, layer)(dim=0)
    with pytest.raises(wxb.ConfigError, match="dim=1"):
        getattr(nn, layer)(dim=1)(wxb.Tensor(rng.normal(size=(2, 3, 4))))


def test_a_model_whose_info_names_nll_is_a_classifier():
    """A model saved with info {"loss": "nll"} and no task (written by hand) was read as a
    regression by wxb eval and predict; nll is a classifier's loss, as cross_entropy."""
    from wxb.nn.heads import model_task

    model = nn.Sequential(nn.Linear(3, 4), nn.LogSoftmax())
    model.info = {"loss": "nll"}
    task, loss, classes = model_task(model)
    assert (task, loss, classes) == ("classification", "nll", [0, 1, 2, 3])
