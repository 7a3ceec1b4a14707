"""What summary, explain and the diagrams show for models users write, checked against
what the model runs (counts by hand)."""

import numpy as np

import wxb
from wxb import nn
from wxb.nn import functional as F


def _rng():
    seed = np.random.SeedSequence().entropy
    return seed, np.random.default_rng(seed)


def test_parameter_list_used_by_hand_is_not_shown_as_a_layer_never_called():
    """A ParameterList is never called: its weights are used by the forward's code
    (x @ ws[0]). The summary showed it 'not called' with 0 FLOPs, the diagram 'not called
    by the forward', though the forward multiplies by every one of its weights."""
    from wxb.describe import architecture_diagram

    seed, rng = _rng()
    n, h, k = (int(w) for w in rng.integers(2, 7, size=3))

    class Own(nn.Module):
        def __init__(self):
            super().__init__()
            self.ws = nn.ParameterList([rng.standard_normal((n, h)), rng.standard_normal((h, k))])
            self.fc = nn.Dense(n, h)

        def forward(self, x):
            return F.relu(x @ self.ws[0] + self.fc(x)) @ self.ws[1]

    model = Own()
    table = model.summary()
    text = table.text()
    assert table.parameters == n * h + h * k + h * n + h, seed
    row = next(r for r in table.rows if r.name == "ws")
    assert row.parameters == n * h + h * k, seed
    line = next(line for line in text.splitlines() if line.startswith("ws "))
    assert "not called" not in line, (seed, line)
    assert line.split()[-4:-2] == ["?", "?"], (seed, line)  # its FLOPs: the code's
    assert "ws: parameters the forward's own code uses" in text, (seed, text)
    fc = next(r for r in table.rows if r.name == "fc")
    assert fc.forward_flops == 2 * h * n + h, seed
    assert "not called" not in architecture_diagram(model), seed


def test_hooked_dense_costs_its_products_in_the_summary():
    """A Dense with a forward hook scaling its output still computes W·X + b (2mn + m per
    sample) and, trained, δ·Aᵀ; the summary showed 'dense1 (Dense) … 0 0', leaving its
    products out of the totals and the rate floor without a word."""
    seed, rng = _rng()
    n, h, k = (int(w) for w in rng.integers(2, 7, size=3))
    model = nn.Sequential(nn.Dense(n, h), nn.Tanh(), nn.Dense(h, k))
    scale = float(rng.uniform(0.5, 3))
    model[0].register_forward_hook(lambda module, args, out: out * scale)
    table = model.summary()
    first, _, last = table.rows
    assert first.forward_flops == 2 * h * n + h, seed
    assert first.training_flops == (2 * h * n + h) * 2, seed  # + δ·Aᵀ and Σδ; no ∂L/∂X
    assert last.training_flops == (2 * k * h + k) * 2 + 2 * k * h, seed
    assert table.forward_flops == 2 * h * n + h + 2 * k * h + k, seed
    out = model(wxb.Tensor(rng.standard_normal((3, n)).astype(np.float32))).data
    assert out.shape == (3, k), seed
