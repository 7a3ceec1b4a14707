"""An independent review of the stop that brought torch's dtype promotion, the recorded
in-place operations and predict's one-row fast path, against PyTorch 2.13 on fresh
draws: where wxb refused what torch runs, or gave other numbers without an error."""

import numpy as np
import pytest

import wxb
import wxb.interop
from wxb.nn import (
    ELU,
    GELU,
    Dense,
    Identity,
    LeakyReLU,
    ReLU,
    Sequential,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from wxb.optim import SGD

torch = pytest.importorskip("torch")

# a last activation, and whether torch's backward reads its output (σ, tanh, ReLU and
# softmax save their result; GELU, SiLU, ELU, Softplus, LeakyReLU their input; Identity
# is no operation at all)
LAST = {
    GELU: False,
    SiLU: False,
    ELU: False,
    Softplus: False,
    LeakyReLU: False,
    Identity: False,
    Sigmoid: True,
    Tanh: True,
    ReLU: True,
    Softmax: True,
}


def _change(lib, out, how, shift):
    """``out`` changed in place after the forward: under no_grad, or recorded."""
    if how == "no_grad mul_":
        with lib.no_grad():
            out.mul_(1.5)
    elif how == "no_grad +=":
        with lib.no_grad():
            out += shift
    else:  # recorded: out += a constant tensor while the graph is recorded
        out += shift


@pytest.mark.parametrize("last", list(LAST), ids=lambda k: k.__name__)
def test_a_planned_stacks_output_changed_in_place_refuses_only_where_torch_does(seeded, last):
    """The planned Sequential's output node said its backward reads the output whenever
    the last layer is an activation: out.mul_(1.5) under no_grad (or out += c) after a
    forward ending in GELU, SiLU, ELU, Softplus, LeakyReLU or Identity refused the
    backward, where torch's (and wxb's own graph, use_plan=False) run it, as those read
    Z. Now the same rule as the graph's node; over several steps (the lean stack from
    the second on), with torch's gradients and parameters."""
    rng = seeded.rng
    n, hidden, outputs, rows = 3, 5, 4, int(rng.integers(2, 6))
    kwargs = {"dim": 1} if last is Softmax else {}
    model = Sequential(
        Dense(n, hidden, seed=int(rng.integers(1 << 30))),
        Tanh(),
        Dense(hidden, outputs, bias=bool(rng.random() < 0.7), seed=int(rng.integers(1 << 30))),
        last(**kwargs),
    ).double()
    reference = wxb.interop.to_torch(model).double()
    assert model.why_not_planned() is None
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.5)
    torch_optimizer = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.5)
    for step in range(4):
        how = str(rng.choice(["no_grad mul_", "no_grad +=", "recorded +="]))
        X, shift = rng.standard_normal((rows, n)), rng.standard_normal((rows, outputs))
        weights = rng.standard_normal((rows, outputs))
        told = seeded.msg(f"{last.__name__}, step {step}, {how}")
        outcome = {}
        for lib, net, opt in ((wxb, model, optimizer), (torch, reference, torch_optimizer)):
            opt.zero_grad()
            out = net(wxb.tensor(X, dtype="float64") if lib is wxb else torch.from_numpy(X))
            _change(lib, out, how, lib.tensor(shift, dtype=lib.float64))
            loss = (out * lib.tensor(weights, dtype=lib.float64)).sum()
            try:
                loss.backward()
            except (RuntimeError, wxb.WxbError) as error:
                outcome[lib] = error
                continue
            outcome[lib] = None
        refused = LAST[last]
        assert (outcome[torch] is not None) == refused, told  # (the reference's own rule)
        assert (outcome[wxb] is not None) == refused, f"{told}: {outcome[wxb]!r}"
        if refused:
            return
        for p, q in zip(model.parameters(), reference.parameters(), strict=True):
            np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=told)
        optimizer.step()
        torch_optimizer.step()
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-10, atol=1e-12)
