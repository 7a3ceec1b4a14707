"""Modules, optimisers and fit off the well-trodden path, against PyTorch or an
uninterrupted run: defects found by a hunt, each kept here by a test that failed before."""

import warnings

import numpy as np
import pytest
import torch

import wxb
from wxb.checkpoint import CheckpointWarning
from wxb.errors import ConfigError
from wxb.nn import (
    Dense,
    LogSoftmax,
    Module,
    Sequential,
    Softmax,
    Standardize,
    Tanh,
)
from wxb.optim import SGD


class Scaled(Module):
    """A Dense layer's outputs times a buffer that is not saved (persistent=False)."""

    def __init__(self, n: int, c: int, seed: int) -> None:
        super().__init__()
        self.dense = Dense(n, c, dtype="float64", seed=seed)
        self.register_buffer("gain", np.full(c, 0.5), persistent=False)

    def forward(self, x):
        return self.dense(x) * wxb.Tensor(self.gain)


def _shared_standardize(n: int, c: int, seed: int) -> Sequential:
    """One Standardize applied twice: its buffers are the model's under two names."""
    s = Standardize(np.zeros(n), np.full(n, 2.0), dtype="float64")
    return Sequential(s, s, Dense(n, c, dtype="float64", seed=seed), Tanh())


@pytest.mark.parametrize("build", [Scaled, _shared_standardize], ids=["non-persistent", "shared"])
def test_a_run_with_buffers_not_in_one_place_resumes_as_the_uninterrupted_run(rng, tmp_path, build):
    """A checkpoint held every buffer once (named_buffers): a non-persistent one, which
    the strict restore calls unexpected, and a shared module's under its first name
    only, which it calls missing: resume=True raised ShapeError."""
    n, c, rows = int(rng.integers(2, 6)), int(rng.integers(2, 5)), int(rng.integers(20, 40))
    X, y = rng.standard_normal((rows, n)), rng.integers(0, c, rows)
    seed = int(rng.integers(1 << 30))
    options = dict(seed=seed, batch_size=8, optimizer="sgd", lr=0.1, verbose=False)
    whole = build(n, c, seed)
    wxb.fit(whole, X, y, epochs=4, checkpoint_dir=tmp_path / "whole", **options)
    wxb.fit(build(n, c, seed), X, y, epochs=2, checkpoint_dir=tmp_path / "part", **options)
    resumed = build(n, c, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)  # the same start: no warning
        history = wxb.fit(
            resumed, X, y, epochs=4, checkpoint_dir=tmp_path / "part", resume=True, **options
        )
    assert history.epochs == 4
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)


class SoftmaxOverTheBatch(Module):
    def __init__(self) -> None:
        super().__init__()
        self.softmax = Softmax(0)  # PyTorch's nn.Softmax(0): over the batch axis

    def forward(self, x):
        return self.softmax(x)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Softmax(1),  # PyTorch's dim
        lambda: LogSoftmax(-1),
        lambda: SoftmaxOverTheBatch(),
    ],
    ids=["Softmax(1)", "LogSoftmax(-1)", "Softmax(0)"],
)
def test_pytorchs_positional_activation_arguments_are_refused_not_taken_as_a_name(make):
    """The first positional argument of Softmax and LogSoftmax is the layer's name in
    wxb: PyTorch's Softmax(1) built a layer named 1 (a bare TypeError once in a
    Sequential), and in a module of one's own Softmax(0) ran over the last axis where
    PyTorch's runs over the batch. (ReLU(True), PyTorch's inplace flag, is taken as
    that flag: test_torch_habits.)"""
    with pytest.raises(ConfigError, match="the layer's name"):
        Sequential(Dense(3, 3), make())


def test_sgd_built_without_a_rate_steps_as_pytorchs_and_fits_sgd_keeps_its_own(rng):
    """torch.optim.SGD(params, momentum=0.9) steps at its default rate 1e-3; wxb's SGD
    defaulted to 0.01, ten times that, silently. fit(optimizer="sgd") and wxb train
    keep their documented 0.01."""
    n, c, rows = int(rng.integers(2, 6)), int(rng.integers(1, 4)), int(rng.integers(3, 9))
    X, Y = rng.standard_normal((rows, n)), rng.standard_normal((rows, c))
    model = Sequential(Dense(n, c, dtype="float64", seed=int(rng.integers(1 << 30))))
    twin = torch.nn.Linear(n, c, dtype=torch.float64)
    with torch.no_grad():
        twin.weight.copy_(torch.from_numpy(model[0].weight.data))
        twin.bias.copy_(torch.from_numpy(model[0].bias.data))
    momentum = float(rng.uniform(0, 0.95))
    opt = SGD(model.parameters(), momentum=momentum)
    torch_opt = torch.optim.SGD(twin.parameters(), momentum=momentum)
    assert opt.lr == torch_opt.defaults["lr"]
    for _ in range(3):
        opt.zero_grad()
        torch_opt.zero_grad()
        ((model(X) - wxb.Tensor(Y)) ** 2).mean().backward()
        ((twin(torch.from_numpy(X)) - torch.from_numpy(Y)) ** 2).mean().backward()
        opt.step()
        torch_opt.step()
    np.testing.assert_allclose(model[0].weight.data, twin.weight.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(model[0].bias.data, twin.bias.detach().numpy(), atol=1e-12)
    history = wxb.fit(model, X, Y, loss="mse", optimizer="sgd", epochs=1, verbose=False)
    assert history["lr"] == [0.01]


@pytest.mark.parametrize("vacated", [False, True], ids=["held", "set to None"])
def test_a_module_assigned_to_a_parameters_name_is_refused_as_torch(rng, vacated):
    """PyTorch refuses ``layer.weight = nn.Tanh()`` (TypeError: a Parameter or None
    expected); wxb registered the module under that name and dropped the parameter from
    the model (its optimiser, its state_dict) without a word."""
    n, c = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    layer, twin = Dense(n, c), torch.nn.Linear(n, c)
    if vacated:
        layer.bias, twin.bias = None, None
    name = "bias" if vacated else "weight"
    with pytest.raises(TypeError):
        setattr(twin, name, torch.nn.Tanh())
    before = [id(p) for p in layer.parameters()]
    with pytest.raises(ConfigError, match=f"Dense.{name} is a parameter"):
        setattr(layer, name, Tanh())
    assert [id(p) for p in layer.parameters()] == before and not layer._modules
    setattr(layer, name, None)  # None and a Parameter are still taken
    setattr(layer, name, wxb.nn.Parameter(np.zeros((c, n) if name == "weight" else c)))


@pytest.mark.parametrize("name", ["info", "training", "name", "forward"])
def test_a_buffer_over_an_attribute_is_refused_as_torch(rng, name):
    """PyTorch refuses register_buffer on a name the module already has ("attribute
    already exists"); wxb overwrote it: model.info became the array (fit then failed
    on it), and register_buffer("training", np.zeros(1)) set the model to eval mode."""
    model = Sequential(Dense(2, 2))
    twin = torch.nn.Sequential(torch.nn.Linear(2, 2))
    twin.info = twin.name = None
    with pytest.raises(KeyError):
        twin.register_buffer(name, torch.zeros(1))
    with pytest.raises(ConfigError, match=f"'{name}' is already an attribute"):
        model.register_buffer(name, np.zeros(1))
    assert model.training and isinstance(model.info, dict) and not model._buffers
