"""L1Loss, HuberLoss and SmoothL1Loss (the regression losses outliers pull less) against
PyTorch in float64: values and gradients under each reduction and output shape, with
differences on both sides of the threshold, a learned target, fit's planned step, and
wxb train. Inputs are drawn fresh each run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import wxb
import wxb.interop
from wxb import nn
from wxb.cli import main

LOSSES = ("huber", "l1", "smooth_l1")


def make(name, reduction, threshold):
    ours, theirs = nn.L1Loss(reduction), torch.nn.L1Loss(reduction=reduction)
    if name == "huber":
        ours, theirs = nn.HuberLoss(reduction, threshold), torch.nn.HuberLoss(reduction, threshold)
    elif name == "smooth_l1":
        ours = nn.SmoothL1Loss(reduction, beta=threshold)
        theirs = torch.nn.SmoothL1Loss(reduction=reduction, beta=threshold)
    return ours, theirs


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_values_and_gradients_are_torchs(rng, name, reduction):
    rows = int(rng.integers(1, 9))
    shape = [(rows,), (rows, 1), (rows, int(rng.integers(2, 5)))][int(rng.integers(0, 3))]
    threshold = (
        float(rng.choice([0.0, rng.uniform(0.2, 2.0)]))
        if name == "smooth_l1"
        else float(rng.uniform(0.2, 2.0))
    )
    target = rng.normal(size=shape)
    # differences on both sides of the threshold, none on it (where torch's rule is a tie)
    diff = rng.uniform(0.05, 3.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    output = target + diff
    ours_fn, theirs_fn = make(name, reduction, threshold)
    y_hat, t_hat = wxb.Tensor(output, requires_grad=True), torch.tensor(output, requires_grad=True)
    y, t_y = wxb.Tensor(target, requires_grad=True), torch.tensor(target, requires_grad=True)
    loss, t_loss = ours_fn(y_hat, y), theirs_fn(t_hat, t_y)
    np.testing.assert_allclose(loss.data, t_loss.detach().numpy(), rtol=1e-12, atol=1e-15)
    g = rng.normal(size=loss.shape)
    (loss * g).sum().backward()
    (t_loss * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(y_hat.grad, t_hat.grad.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(y.grad, t_y.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_a_threshold_set_later_is_the_one_computed_and_nonsense_is_refused(rng):
    output, target = rng.normal(size=(5, 2)) * 3, rng.normal(size=(5, 2))
    loss = nn.HuberLoss()
    loss.delta = 0.5  # as PyTorch's attribute: the next call uses it
    expected = torch.nn.HuberLoss(delta=0.5)(torch.tensor(output), torch.tensor(target))
    assert loss(wxb.Tensor(output), target).item() == pytest.approx(expected.item(), rel=1e-12)
    assert "delta=0.5" in repr(loss)
    for make_bad in (lambda: nn.HuberLoss(delta=0), lambda: nn.SmoothL1Loss(beta=-1.0),
                     lambda: nn.HuberLoss(delta="1")):  # fmt: skip
        with pytest.raises(wxb.errors.ConfigError, match=r"(delta|beta) must be"):
            make_bad()


@pytest.mark.parametrize("name", LOSSES)
def test_fit_trains_with_them_as_torch_does(rng, name):
    n, features, outputs = (
        int(rng.integers(20, 40)),
        int(rng.integers(2, 5)),
        int(rng.integers(1, 3)),
    )
    X = rng.normal(size=(n, features))
    y = X @ rng.normal(size=(features, outputs)) + rng.standard_t(2, size=(n, outputs))  # outliers
    model = nn.Sequential(nn.Linear(features, 6), nn.Tanh(), nn.Linear(6, outputs)).double()
    twin = wxb.interop.to_torch(model)
    ours_fn, theirs_fn = make(name, "mean", 1.0)
    opt = wxb.optim.Adam(model.parameters(), lr=0.01)
    t_opt = torch.optim.Adam(twin.parameters(), lr=0.01)
    batch, epochs = int(rng.integers(4, 10)), int(rng.integers(1, 3))
    history = wxb.fit(model, X, y, loss=ours_fn, optimizer=opt, epochs=epochs, batch_size=batch,
                      shuffle=False, validation_split=0.0, verbose=False)  # fmt: skip
    assert history.engine == "planned" and model.info["task"] == "regression"
    Xt, yt = torch.tensor(X), torch.tensor(y)
    for _ in range(epochs):
        for start in range(0, n, batch):
            t_opt.zero_grad()
            theirs_fn(twin(Xt[start : start + batch]), yt[start : start + batch]).backward()
            t_opt.step()
    for ours, theirs in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-8, atol=1e-11)


def test_wxb_train_takes_them_for_a_regression_and_refuses_them_for_classes(rng, tmp_path, capsys):
    n = int(rng.integers(40, 80))
    X = rng.normal(size=(n, 3))
    y = X @ rng.normal(size=3) + rng.standard_t(2, size=n)
    data = tmp_path / "d.csv"
    np.savetxt(data, np.column_stack([X, y]), delimiter=",", header="a,b,c,y", comments="")
    model, history = tmp_path / "m.safetensors", tmp_path / "h.json"
    argv = ["train", "--data", str(data), "--target", "y", "--loss", "huber", "--epochs", "3",
            "--hidden", "4", "-q", "-o", str(model), "--history", str(history)]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert wxb.load(model).info["loss"] == "huber" and wxb.load(model).info["task"] == "regression"
    note = json.loads(history.read_text())["loss_note"]
    assert note.startswith("loss and val_loss are Huber's loss (δ = 1) on standardized"), note
    labels = tmp_path / "c.csv"
    np.savetxt(labels, np.column_stack([X, rng.integers(0, 3, n)]), delimiter=",", fmt="%s",
               header="a,b,c,y", comments="")  # fmt: skip
    capsys.readouterr()
    code = main(["train", "--data", str(labels), "--target", "y", "--task", "classification",
                 "--loss", "l1", "-q", "-o", str(tmp_path / "c.safetensors")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "--loss l1 is for regression" in err and err.count("\n") == 1, err


def test_explain_writes_their_equations(rng):
    X, y = rng.normal(size=(3, 2)), rng.normal(size=(3, 1))
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    for loss, equation in (("l1", "L = mean of |ŷ − y|"), ("huber", "huber_δ(ŷ − y)"),
                           ("smooth_l1", "smooth_l1_β(ŷ − y)")):  # fmt: skip
        assert equation in str(wxb.explain(model, X, y, loss=loss)), loss


@pytest.mark.parametrize(
    ("function", "option", "bad"),
    [
        ("huber_loss", "delta", 0.0),
        ("huber_loss", "delta", -1.5),
        ("smooth_l1_loss", "beta", -1.0),
        ("huber_loss", "delta", float("nan")),
        ("smooth_l1_loss", "beta", float("inf")),
    ],
)
def test_functional_threshold_out_of_range_is_refused_as_the_module_refuses_it(
    rng, function, option, bad
):
    """nn.HuberLoss(delta=0) and nn.SmoothL1Loss(beta=-1) are refused, as PyTorch refuses
    F.huber_loss(delta=0) and F.smooth_l1_loss(beta=-1); the functional forms took them and
    gave a loss whose gradient is 0 (δ = 0) or points away from the target (β < 0)."""
    output = wxb.Tensor(rng.normal(size=(4, 2)), requires_grad=True)
    with pytest.raises(wxb.ConfigError, match=option):
        getattr(nn.functional, function)(output, rng.normal(size=(4, 2)), **{option: bad})
