"""Well-known tutorials ported to wxb as a newcomer ports them, changing what the README
says to change, each run beside its original in the same process on the same fresh
draws (the ``seeded`` fixture prints its seed; ``WXB_TEST_SEED=<seed>`` replays it):
PyTorch's "Learning PyTorch with Examples" (the cubic fitted to sin(x): tensors,
autograd, nn.Sequential with Flatten, RMSprop, DynamicNet)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

import wxb

torch = pytest.importorskip("torch")

EPS32 = float(np.finfo(np.float32).eps)
POINTS = 2000  # the tutorial's x = linspace(-π, π, 2000)
STEPS = 60


def _float32_rtol(steps: int, terms: int = POINTS) -> float:
    """Each step's loss is a float32 sum of ``terms`` squares, which two libraries round
    in different orders (up to log2(terms)·ε apart, pairwise); that difference enters
    the weights once a step, so after ``steps`` steps the losses may part by the sum."""
    return (steps + 1) * math.log2(terms) * EPS32


def _check_losses(ours, theirs, rtol, seeded, what):
    np.testing.assert_allclose(ours, theirs, rtol=rtol, err_msg=seeded.msg(what))


# -- "Learning PyTorch with Examples" ---------------------------------------------------
def _cubic_with_tensors(lib, draws, steps):
    """Part (b): the gradients written by hand on tensors, in the tutorial's float32
    (``dtype = torch.float``)."""
    dtype = lib.float
    x = lib.linspace(-math.pi, math.pi, POINTS, dtype=dtype)
    y = lib.sin(x)
    a, b, c, d = (lib.tensor(v, dtype=dtype) for v in draws)
    learning_rate, losses = 1e-6, []
    for _ in range(steps):
        y_pred = a + b * x + c * x**2 + d * x**3
        losses.append((y_pred - y).pow(2).sum().item())
        grad_y_pred = 2.0 * (y_pred - y)
        grad_a, grad_b = grad_y_pred.sum(), (grad_y_pred * x).sum()
        grad_c, grad_d = (grad_y_pred * x**2).sum(), (grad_y_pred * x**3).sum()
        a -= learning_rate * grad_a
        b -= learning_rate * grad_b
        c -= learning_rate * grad_c
        d -= learning_rate * grad_d
    return losses


def _cubic_with_autograd(lib, draws, steps, dtype):
    """Part (c): the same, with ``requires_grad=True`` and ``loss.backward()``."""
    x = lib.linspace(-math.pi, math.pi, POINTS, dtype=dtype)
    y = lib.sin(x)
    weights = [lib.tensor(v, dtype=dtype, requires_grad=True) for v in draws]
    a, b, c, d = weights
    losses = []
    for _ in range(steps):
        loss = (a + b * x + c * x**2 + d * x**3 - y).pow(2).sum()
        losses.append(loss.item())
        loss.backward()
        with lib.no_grad():
            for w in weights:
                w -= 1e-6 * w.grad
                w.grad = None
    return losses


@pytest.mark.parametrize("dtype", ["float", "float64"])
def test_the_cubic_by_hand_and_by_autograd_gives_torchs_losses(seeded, dtype):
    """The tutorial's ``dtype = torch.float`` ported as ``wxb.float``: there was no such
    name ("module 'wxb' has no attribute 'float'"), though ``wxb.double`` was there;
    it is float32, as torch's."""
    draws = seeded.rng.standard_normal(4)
    if dtype == "float":
        assert wxb.float == wxb.float32 and wxb.tensor(1.0, dtype=wxb.float).dtype == np.float32
        ours, theirs = (
            _cubic_with_tensors(wxb, draws, STEPS),
            _cubic_with_tensors(torch, draws, STEPS),
        )
        _check_losses(ours, theirs, _float32_rtol(STEPS), seeded, "tensors")
    ours = _cubic_with_autograd(wxb, draws, STEPS, getattr(wxb, dtype))
    theirs = _cubic_with_autograd(torch, draws, STEPS, getattr(torch, dtype))
    rtol = _float32_rtol(STEPS) if dtype == "float" else 1e-10
    _check_losses(ours, theirs, rtol, seeded, "autograd")


def _cubic_with_nn(lib, W, bias, steps, dtype, rmsprop):
    """Parts (e) and (f): ``xx = x.unsqueeze(-1).pow(p)`` into ``Sequential(Linear(3, 1),
    Flatten(0, 1))``, by hand at 1e-6 or by ``optim.RMSprop(lr=1e-3)``. torch's
    ``MSELoss(reduction='sum')`` is Σ(ŷ − y)²; wxb's is ½ of it (the README's
    Conventions), so the port writes the sum of squares out."""
    x = lib.linspace(-math.pi, math.pi, POINTS, dtype=dtype)
    y = lib.sin(x)
    p = lib.tensor([1, 2, 3])
    xx = x.unsqueeze(-1).pow(p)
    model = lib.nn.Sequential(lib.nn.Linear(3, 1), lib.nn.Flatten(0, 1)).to(dtype)
    with lib.no_grad():  # the same start on both sides
        model[0].weight.copy_(lib.tensor(W, dtype=dtype))
        model[0].bias.copy_(lib.tensor(bias, dtype=dtype))
    if lib is torch:
        loss_fn = torch.nn.MSELoss(reduction="sum")
    else:
        loss_fn = lambda y_pred, y: ((y_pred - y) ** 2).sum()  # noqa: E731
    optimizer = lib.optim.RMSprop(model.parameters(), lr=1e-3) if rmsprop else None
    losses = []
    for _ in range(steps):
        loss = loss_fn(model(xx), y)
        losses.append(loss.item())
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        else:
            model.zero_grad()
            loss.backward()
            with lib.no_grad():
                for param in model.parameters():
                    param -= 1e-6 * param.grad
    linear_layer = model[0]
    coefficients = [linear_layer.bias.item()] + [linear_layer.weight[:, i].item() for i in range(3)]
    return losses, coefficients


@pytest.mark.parametrize("rmsprop", [False, True], ids=["by_hand", "rmsprop"])
@pytest.mark.parametrize("dtype", ["float", "float64"])
def test_the_cubic_as_a_sequential_with_flatten_gives_torchs_losses(seeded, dtype, rmsprop):
    rng = seeded.rng
    W, bias = 0.3 * rng.standard_normal((1, 3)), 0.3 * rng.standard_normal(1)
    ours = _cubic_with_nn(wxb, W, bias, STEPS, getattr(wxb, dtype), rmsprop)
    theirs = _cubic_with_nn(torch, W, bias, STEPS, getattr(torch, dtype), rmsprop)
    # RMSprop divides by √v, which a rounding of v near 0 moves most: a few ε more a step
    rtol = (4 if rmsprop else 1) * _float32_rtol(STEPS) if dtype == "float" else 1e-10
    _check_losses(ours[0], theirs[0], rtol, seeded, "losses")
    _check_losses(ours[1], theirs[1], rtol, seeded, "the fitted coefficients")


def _dynamic_net(lib, draws, steps, dtype, python_seed):
    """Part (g): DynamicNet, whose forward reuses ``e`` for x⁴ and x⁵ a random number of
    times (Python's ``random``, seeded alike for both), trained by SGD with momentum."""

    class DynamicNet(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c, self.d, self.e = (
                lib.nn.Parameter(lib.tensor(v, dtype=dtype)) for v in draws
            )

        def forward(self, x):
            y = self.a + self.b * x + self.c * x**2 + self.d * x**3
            for exp in range(4, random.randint(4, 6)):
                y = y + self.e * x**exp
            return y

    x = lib.linspace(-math.pi, math.pi, POINTS, dtype=dtype)
    y = lib.sin(x)
    model = DynamicNet()
    optimizer = lib.optim.SGD(model.parameters(), lr=1e-8, momentum=0.9)
    random.seed(python_seed)
    losses = []
    for _ in range(steps):
        loss = ((model(x) - y) ** 2).sum()  # torch's MSELoss(reduction='sum'), written out
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


@pytest.mark.parametrize("dtype", ["float", "float64"])
def test_dynamic_net_gives_torchs_losses(seeded, dtype):
    draws = seeded.rng.standard_normal(5)
    python_seed = int(seeded.rng.integers(2**31))
    ours = _dynamic_net(wxb, draws, STEPS, getattr(wxb, dtype), python_seed)
    theirs = _dynamic_net(torch, draws, STEPS, getattr(torch, dtype), python_seed)
    # x⁵ reaches 306: torch and NumPy round x**5 apart by up to ~4 ε (float32), and the
    # momentum carries each step's difference on; 4 × the sums' bound covers both
    rtol = 4 * _float32_rtol(STEPS) if dtype == "float" else 1e-10
    _check_losses(ours, theirs, rtol, seeded, "losses")
