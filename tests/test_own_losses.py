"""Losses of one's own in fit, evaluate and explain: a function or a Loss subclass gets
its targets as given (class indices, extra columns), as in a PyTorch loop or Keras's
fit, and trains to PyTorch's numbers; what cannot be a batch's loss is refused in one
line."""

import numpy as np
import pytest
import torch

import wxb
from wxb.errors import ConfigError
from wxb.nn import Dense, Loss, MSELoss, Sequential, Tanh


def twin_models(rng, features, hidden, outputs):
    """A float64 wxb model and a torch one with the same weights."""
    model = Sequential(
        Dense(features, hidden, dtype="float64"), Tanh(), Dense(hidden, outputs, dtype="float64")
    )
    twin = torch.nn.Sequential(
        torch.nn.Linear(features, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, outputs)
    ).double()
    with torch.no_grad():
        for ours, theirs in zip([model[0], model[2]], [twin[0], twin[2]], strict=True):
            ours.weight.data[...] = rng.normal(scale=0.5, size=ours.weight.shape)
            ours.bias.data[...] = rng.normal(scale=0.1, size=ours.bias.shape)
            theirs.weight.copy_(torch.from_numpy(ours.weight.data))
            theirs.bias.copy_(torch.from_numpy(ours.bias.data))
    return model, twin


def focal(output, target):
    """Focal loss (γ = 2) on class indices, in wxb's Tensor operations."""
    log_p = output - output.exp().sum(axis=1, keepdims=True).log()
    picked = log_p[np.arange(len(target)), target]
    return (-((1 - picked.exp()) ** 2) * picked).mean()


def torch_focal(output, target):
    log_p = torch.log_softmax(output, dim=1)[torch.arange(len(target)), target]
    return (-((1 - log_p.exp()) ** 2) * log_p).mean()


class WeightedMSE(Loss):
    """Each row's squared error times a weight given as the target's last column."""

    def __call__(self, output, target):
        weights = target[:, -1:]
        return (((output - target[:, :-1]) ** 2) * weights).sum() / len(target)


def torch_weighted_mse(output, target):
    return (((output - target[:, :-1]) ** 2) * target[:, -1:]).sum() / len(target)


def torch_epochs(twin, loss, X, y, epochs, batch, lr):
    """Per-epoch mean losses of plain SGD over the rows in order."""
    optimizer = torch.optim.SGD(twin.parameters(), lr=lr)
    figures = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, len(X), batch):
            xb, yb = (
                torch.from_numpy(X[start : start + batch]),
                torch.from_numpy(y[start : start + batch]),
            )
            optimizer.zero_grad()
            value = loss(twin(xb), yb)
            value.backward()
            optimizer.step()
            total += value.item() * len(xb)
        figures.append(total / len(X))
    return figures


@pytest.mark.parametrize("as_subclass", [False, True])
def test_function_loss_on_class_indices_trains_as_torch(as_subclass):
    rng = np.random.default_rng()
    rows, features, classes = int(rng.integers(40, 90)), 5, int(rng.integers(3, 6))
    X = rng.normal(size=(rows, features))
    y = rng.integers(0, classes, size=rows)
    model, twin = twin_models(rng, features, 7, classes)
    if as_subclass:
        loss = type("Focal", (Loss,), {"__call__": lambda self, o, t: focal(o, t)})()
    else:
        loss = focal
    optimizer = wxb.optim.SGD(model.parameters(), lr=0.3)
    history = wxb.fit(
        model, X, y, loss=loss, optimizer=optimizer, epochs=3, batch_size=16, shuffle=False
    )
    expected = torch_epochs(twin, torch_focal, X, y, 3, 16, 0.3)
    np.testing.assert_allclose(history.history["loss"], expected, rtol=1e-12)
    np.testing.assert_allclose(model[0].weight.data, twin[0].weight.detach().numpy(), atol=1e-12)
    assert "accuracy" not in history.history  # wxb cannot know what the loss's outputs mean
    with torch.no_grad():
        value = torch_focal(twin(torch.from_numpy(X)), torch.from_numpy(y)).item()
    assert wxb.evaluate(model, X, y, loss=loss)["loss"] == pytest.approx(value, rel=1e-12)


def test_own_loss_takes_targets_of_another_width_as_given():
    rng = np.random.default_rng()
    rows, outputs = int(rng.integers(30, 70)), 2
    X = rng.normal(size=(rows, 4))
    Y = np.column_stack([rng.normal(size=(rows, outputs)), rng.uniform(0.1, 2.0, size=rows)])
    model, twin = twin_models(rng, 4, 6, outputs)
    history = wxb.fit(
        model,
        X,
        Y,
        loss=WeightedMSE(),
        optimizer=wxb.optim.SGD(model.parameters(), lr=0.05),
        epochs=2,
        batch_size=10,
        shuffle=False,
    )
    expected = torch_epochs(twin, torch_weighted_mse, X, Y, 2, 10, 0.05)
    np.testing.assert_allclose(history.history["loss"], expected, rtol=1e-12)
    np.testing.assert_allclose(model[2].weight.data, twin[2].weight.detach().numpy(), atol=1e-12)


def test_own_loss_keeps_the_stock_shapes_when_they_fit():
    """(B,) numbers for one output still reach the loss as (B, 1), as a stock loss's do:
    output − target then subtracts row from row, never (B, 1) − (B,) into (B, B)."""
    rng = np.random.default_rng()
    X, y = rng.normal(size=(25, 3)), rng.normal(size=25)
    seen = []

    def squared(output, target):
        seen.append(np.asarray(target).shape)
        return ((output - target) ** 2).mean()

    model = Sequential(Dense(3, 1, dtype="float64"))
    wxb.fit(model, X, y, loss=squared, epochs=1, batch_size=25, shuffle=False)
    assert seen[0] == (25, 1)
    expected = np.mean((model.predict(X) - y[:, None]) ** 2)
    assert wxb.evaluate(model, X, y, loss=squared)["loss"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "loss, message",
    [
        (lambda output, target: output, "returned shape"),
        (lambda output, target: 1.5, "returned a float"),
        (MSELoss, "give an instance: MSELoss()"),
        ("hinge", "a Loss, or a function"),
        (3, "a Loss, or a function"),
    ],
)
def test_what_cannot_be_a_batch_loss_is_refused_in_one_line(loss, message):
    rng = np.random.default_rng()
    X, y = rng.normal(size=(12, 3)), rng.integers(0, 2, size=12)
    model = Sequential(Dense(3, 2))
    before = model.state_dict()
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        wxb.fit(model, X, y, loss=loss, epochs=1)
    for name, array in model.state_dict().items():  # refused before any update
        np.testing.assert_array_equal(array, before[name])


def test_explain_shows_a_function_loss_and_torch_gradients():
    rng = np.random.default_rng()
    X, y = rng.normal(size=(4, 3)), rng.integers(0, 3, size=4)
    model, twin = twin_models(rng, 3, 5, 3)
    text = str(wxb.explain(model, X, y, loss=focal))
    assert "L = focal(Ŷ, Y)" in text
    value = torch_focal(twin(torch.from_numpy(X)), torch.from_numpy(y))
    value.backward()
    explained = wxb.explain(model, X, y, loss=focal)
    assert explained.step("loss").value == pytest.approx(value.item(), rel=1e-12)
    for name, layer in (("dense1", twin[0]), ("dense2", twin[2])):
        shown = explained.step(f"{name}.dL/dW").value
        np.testing.assert_allclose(shown, layer.weight.grad.numpy(), atol=1e-12)
