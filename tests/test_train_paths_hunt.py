"""Training over several steps, as users write it, against PyTorch: what a hunt through
the planned stack, its lean stacks and the optimisers found."""

import numpy as np
import pytest

from wxb import nn
from wxb.optim import SGD

torch = pytest.importorskip("torch")

ACTIVATIONS = [
    (nn.Sigmoid, torch.nn.Sigmoid),
    (nn.Tanh, torch.nn.Tanh),
    (nn.ReLU, torch.nn.ReLU),
    (lambda: nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2)),
    (nn.ELU, torch.nn.ELU),
    (nn.SiLU, torch.nn.SiLU),
]


def twins(rng, activation, n, hidden, outputs):
    """A wxb Sequential ending in an activation and its PyTorch twin, in float64."""
    ours, theirs = activation
    first = nn.Dense(n, hidden, dtype="float64", seed=rng)
    second = nn.Dense(hidden, outputs, bias=bool(rng.random() < 0.5), dtype="float64", seed=rng)
    model = nn.Sequential(first, ours(), second, ours())
    layers = []
    for dense in (first, second):
        inputs, outputs_ = dense.weight.shape[1], dense.weight.shape[0]
        linear = torch.nn.Linear(inputs, outputs_, bias=dense.bias is not None, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(dense.weight.data))
            if dense.bias is not None:
                linear.bias.copy_(torch.from_numpy(dense.bias.data))
        layers.append(linear)
    return model, torch.nn.Sequential(layers[0], theirs(), layers[1], theirs())


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a[1].__name__)
def test_an_output_changed_in_place_before_backward_is_what_backward_reads(rng, activation):
    """The output's array changed in place (``out.numpy()``, ``out.data``) before
    backward: PyTorch's backward of a last activation reads the output it saved, which is
    that memory, so it sees the change. The planned stack's first step did; from the
    second step of a batch size on (its lean stack) the backward read a copy of its own."""
    n, hidden, outputs, rows = 3, 5, 2, int(rng.integers(2, 7))
    model, reference = twins(rng, activation, n, hidden, outputs)
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.5)
    torch_optimizer = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.5)
    for step in range(4):
        X = rng.normal(size=(rows, n))
        shift = rng.normal(size=(rows, outputs))
        optimizer.zero_grad()
        out = model(X)
        out.numpy()[...] += shift  # e.g. a metric computed in place on the output
        (out * out).sum().backward()
        torch_optimizer.zero_grad()
        theirs = reference(torch.from_numpy(X))
        theirs.detach().numpy()[...] += shift
        (theirs * theirs).sum().backward()
        for p, q in zip(model.parameters(), reference.parameters(), strict=True):
            np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=f"step {step}")  # fmt: skip
        optimizer.step()
        torch_optimizer.step()
