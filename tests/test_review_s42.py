"""Review of session 42's merged changes: defects found in them, each against an
independent reference (PyTorch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import wxb
from wxb import nn
from wxb.errors import ConfigError


def _seed() -> int:
    return int(np.random.SeedSequence().entropy % 2**32)


def _outputs(model: nn.Module, X: np.ndarray) -> torch.Tensor:
    with model.evaluating():
        return torch.tensor(np.asarray(model.predict(X), np.float64))


@pytest.mark.parametrize("kind", ["huber", "smooth_l1", "label_smoothing", "sum"])
def test_default_loss_keeps_the_options_it_was_trained_with(kind, tmp_path):
    """evaluate (and a second fit) without loss= took the recorded loss by its name alone:
    after fit(loss=HuberLoss(delta=3)) they scored and trained on δ = 1."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((40, 3))
    option = float(rng.uniform(1.5, 4.0))
    if kind in ("huber", "smooth_l1", "sum"):
        y = 4 * rng.standard_normal(40)
        model = nn.Sequential(nn.Dense(3, 1)).double()
        if kind == "huber":
            loss, ref = nn.HuberLoss(delta=option), torch.nn.HuberLoss(delta=option)
        elif kind == "smooth_l1":
            loss, ref = nn.SmoothL1Loss(beta=option), torch.nn.SmoothL1Loss(beta=option)
        else:
            loss = nn.MSELoss(reduction="sum")  # (wxb's is the seed's ½‖ŷ − y‖²)
            ref = lambda out, t: 0.5 * torch.nn.MSELoss(reduction="sum")(out, t)  # noqa: E731
        target = torch.tensor(y).reshape(-1, 1)
    else:
        option = float(rng.uniform(0.05, 0.4))
        y = rng.integers(0, 3, 40)
        model = nn.Sequential(nn.Dense(3, 3)).double()
        loss = nn.CrossEntropyLoss(label_smoothing=option)
        ref = torch.nn.CrossEntropyLoss(label_smoothing=option)
        target = torch.tensor(y)
    wxb.fit(model, X, y, loss=loss, epochs=1, batch_size=40, verbose=0, seed=0)
    expected = float(ref(_outputs(model, X), target))
    for scored in (model, wxb.load(wxb.save(model, tmp_path / "m.safetensors"))):
        got = wxb.evaluate(scored, X, y, batch_size=40)["loss"]
        assert got == pytest.approx(expected, rel=1e-9), (seed, kind, option, got, expected)
    # a second fit without loss= steps on the same loss as PyTorch's with it
    before = [p.data.copy() for p in model.parameters()]
    wxb.fit(model, X, y, optimizer="sgd", lr=0.01, epochs=1, batch_size=40, verbose=0)
    layer = torch.nn.Linear(3, 1 if kind != "label_smoothing" else 3).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(before[0]))
        layer.bias.copy_(torch.tensor(before[1]))
    ref(layer(torch.tensor(X)), target).backward()
    with torch.no_grad():
        stepped = layer.weight - 0.01 * layer.weight.grad
    np.testing.assert_allclose(
        model[0].weight.data, stepped.numpy(), rtol=1e-10, atol=1e-12, err_msg=str(seed)
    )


def test_save_refuses_a_model_with_forward_hooks(tmp_path):
    """wxb.save wrote a model whose forward hook doubled its output as a plain model:
    the loaded one predicted half of what the saved one did, without a word (a forward
    replaced on the instance is refused; ONNX export refuses hooks)."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Dense(3, 4), nn.ReLU(), nn.Dense(4, 2))
    X = rng.standard_normal((5, 3))
    target = model if rng.random() < 0.5 else model[int(rng.integers(0, 3))]
    handle = target.register_forward_hook(lambda module, args, out: out * 2)
    with pytest.raises(ConfigError, match=r"it has a forward hook, .*; remove it first"):
        wxb.save(model, tmp_path / "m.safetensors")
    handle.remove()
    loaded = wxb.load(wxb.save(model, tmp_path / "m.safetensors"))
    np.testing.assert_allclose(loaded.predict(X), model.predict(X), err_msg=str(seed))
