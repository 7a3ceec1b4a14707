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
    assert "ws: parameters held for the forward's own code" in text, (seed, text)
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


def test_diagnostics_report_a_hooked_dense_with_the_delta_of_its_own_z():
    """fit(diagnose=True)'s figures left a Dense with a forward hook out without a word
    (dense2 then read as 'layer 1' in a δ warning); they now give its ‖∂L/∂W‖ and its
    ‖δ‖ = ‖∂L/∂Z‖ of its own Z = W·X + b, before the hook scales it (PyTorch's autograd)."""
    import torch

    from wxb.diagnose import layer_reports

    seed, rng = _rng()
    n, h, k, rows = (int(w) for w in rng.integers(2, 7, size=4))
    model = nn.Sequential(
        nn.Dense(n, h), nn.Sigmoid(), nn.Dense(h, h), nn.Tanh(), nn.Dense(h, k)
    ).double()
    scale = float(rng.uniform(0.5, 3))
    model[0].register_forward_hook(lambda module, args, out: out * scale)
    X = rng.standard_normal((rows, n))
    y = rng.integers(0, k, rows)
    reports = layer_reports(model, X, y, nn.CrossEntropyLoss())
    assert [r.layer for r in reports] == ["dense1", "dense2", "dense3"], seed

    weights = [torch.tensor(model[i].weight.data, requires_grad=True) for i in (0, 2, 4)]
    biases = [torch.tensor(model[i].bias.data) for i in (0, 2, 4)]
    z1 = torch.tensor(X) @ weights[0].T + biases[0]
    z2 = torch.sigmoid(z1 * scale) @ weights[1].T + biases[1]
    z3 = torch.tanh(z2) @ weights[2].T + biases[2]
    for z in (z1, z2, z3):
        z.retain_grad()
    torch.nn.functional.cross_entropy(z3, torch.tensor(y)).backward()
    for report, z, w in zip(reports, (z1, z2, z3), weights, strict=True):
        assert np.isclose(report.delta_norm, float(z.grad.norm()), rtol=1e-9), seed
        assert np.isclose(report.weight_grad_norm, float(w.grad.norm()), rtol=1e-9), seed
    # the model's own hook still runs, once per call, and is the only one it holds
    assert len(model[0]._forward_hooks) == 1, seed


def test_explain_and_report_of_a_two_input_model_say_why_they_cannot():
    """explain and the report run the model on X alone: a forward of two inputs stopped on
    Python's "forward() missing 1 required positional argument: 'z'"."""
    import pytest

    from wxb.errors import ConfigError
    from wxb.reporting import report_html

    _seed, rng = _rng()
    n, m, h, k, rows = (int(w) for w in rng.integers(2, 6, size=5))

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.out = nn.Dense(n, h), nn.Dense(m, h), nn.Dense(h, k)

        def forward(self, x, z):
            return self.out(F.relu(self.a(x) + self.b(z)))

    model = Two()
    X = rng.standard_normal((rows, n)).astype(np.float32)
    y = rng.integers(0, k, rows)
    assert model(X, rng.standard_normal((rows, m)).astype(np.float32)).shape == (rows, k)
    for show in (lambda: wxb.explain(model, X, y), lambda: report_html(model, None, X, y)):
        with pytest.raises(ConfigError, match=r"on X alone.*needs x, z"):
            show()


def test_explain_says_a_hooked_dense_products_are_not_in_its_flops():
    """A forward hook on the first Dense (scaling its output) made it one opaque step:
    the walk said 'Forward FLOPs of the products W·X: 2·k·h·B', the second Dense's alone,
    and showed no ∂L/∂W for the first, without a word; the model computes both products."""
    import re

    seed, rng = _rng()
    n, h, k, rows = (int(w) for w in rng.integers(2, 6, size=4))
    model = nn.Sequential(nn.Dense(n, h), nn.Tanh(), nn.Dense(h, k)).double()
    scale = float(rng.uniform(0.5, 3))
    model[0].register_forward_hook(lambda module, args, out: out * scale)
    X = rng.standard_normal((rows, n))
    y = rng.integers(0, k, rows)
    text = str(wxb.explain(model, X, y, sample_rows=None))
    shown = int(re.search(r"Forward FLOPs of the products W·X: (\d+)", text).group(1))
    every = 2 * h * n * rows + 2 * k * h * rows  # both products the model computes
    if shown != every:
        assert re.search(r"dense1[^\n]*not in these FLOPs[^\n]*∂L/∂W is not shown", text), (
            seed,
            text,
        )


def test_diagnostics_report_the_dense_inside_a_hooked_sequential():
    """A forward hook on a nested Sequential (scaling its output) made fit(diagnose=True)
    skip the Dense inside without a word; its ‖δ‖ = ‖∂L/∂Z‖ of its own Z and ‖∂L/∂W‖ are
    now reported, as PyTorch's autograd gives them."""
    import torch

    from wxb.diagnose import layer_reports

    seed, rng = _rng()
    n, h, k, rows = (int(w) for w in rng.integers(2, 7, size=4))
    inner = nn.Sequential(nn.Dense(h, k))
    model = nn.Sequential(nn.Dense(n, h), nn.Tanh(), inner).double()
    scale = float(rng.uniform(0.5, 3))
    inner.register_forward_hook(lambda module, args, out: out * scale)
    X = rng.standard_normal((rows, n))
    y = rng.integers(0, k, rows)
    reports = layer_reports(model, X, y, nn.CrossEntropyLoss())
    assert [r.layer for r in reports] == ["dense1", "sequential1.dense1"], seed

    w1 = torch.tensor(model[0].weight.data, requires_grad=True)
    w2 = torch.tensor(inner[0].weight.data, requires_grad=True)
    z1 = torch.tensor(X) @ w1.T + torch.tensor(model[0].bias.data)
    z2 = torch.tanh(z1) @ w2.T + torch.tensor(inner[0].bias.data)
    for z in (z1, z2):
        z.retain_grad()
    torch.nn.functional.cross_entropy(z2 * scale, torch.tensor(y)).backward()
    for report, z, w in zip(reports, (z1, z2), (w1, w2), strict=True):
        assert np.isclose(report.delta_norm, float(z.grad.norm()), rtol=1e-9), seed
        assert np.isclose(report.weight_grad_norm, float(w.grad.norm()), rtol=1e-9), seed


def test_explain_of_a_layer_applied_twice_says_its_flops_leave_out_the_products():
    """A forward calling one Dense twice is one step in the walk, which said 'Forward FLOPs
    of the products W·X: 0' for a model computing three products, without saying why."""
    import re

    seed, rng = _rng()
    n, k, rows = (int(w) for w in rng.integers(2, 6, size=3))

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.out = nn.Dense(n, n), nn.Dense(n, k)

        def forward(self, x):
            return self.out(F.tanh(self.fc(F.tanh(self.fc(x)))))

    model = Twice().double()
    X = rng.standard_normal((rows, n))
    text = str(wxb.explain(model, X, rng.integers(0, k, rows), sample_rows=None))
    shown = int(re.search(r"Forward FLOPs of the products W·X: (\d+)", text).group(1))
    if shown != 2 * (2 * n * n * rows) + 2 * k * n * rows:
        assert re.search(r"Twice has a forward of its own[^\n]*not in these FLOPs", text), (
            seed,
            text,
        )


def test_forward_diagram_applies_each_step_before_the_first_dense_to_the_one_before():
    """Standardize then a Tanh before the first Dense: the forward diagram drew
    '(X − μ) / σ' then 'tanh(X)', though the Tanh takes the standardized X."""
    from wxb.describe import forward_diagram

    seed, rng = _rng()
    n, k = (int(w) for w in rng.integers(2, 6, size=2))
    model = nn.Sequential(
        nn.Standardize(rng.standard_normal(n), 1 + rng.random(n)), nn.Tanh(), nn.Dense(n, k)
    )
    chart = forward_diagram(model)
    assert "(X − μ) / σ" in chart, (seed, chart)
    assert "tanh(X)" not in chart and "tanh(·)" in chart, (seed, chart)


def test_diagnostics_name_two_dense_layers_of_one_name_apart():
    """A nested Sequential's first Dense is 'dense1' as the model's own first one is:
    fit(diagnose=True) listed both as 'dense1', its figures not telling which is which."""
    seed, rng = _rng()
    n, h, k, rows = (int(w) for w in rng.integers(2, 6, size=4))
    model = nn.Sequential(nn.Dense(n, h), nn.Tanh(), nn.Sequential(nn.Dense(h, k)))
    X = rng.standard_normal((rows, n)).astype(np.float32)
    history = wxb.fit(model, X, rng.integers(0, k, rows), epochs=1, diagnose=True, verbose=False)
    names = [layer["layer"] for layer in history.diagnostics[0]["layers"]]
    paths = {id(m): p for p, m in model.named_modules()}
    assert names == [paths[id(model[0])], paths[id(model[2][0])]], (seed, names)


def test_report_summary_says_what_its_flops_leave_out():
    """The report's summary gave the table and its totals without the lines wxb summary
    prints under them: for a forward of its own using a ParameterList, nothing said that
    the totals leave out the products with its weights, or that the order is not seen."""
    from wxb.reporting import report_html

    seed, rng = _rng()
    n, h, k, rows = (int(w) for w in rng.integers(2, 6, size=4))

    class Own(nn.Module):
        def __init__(self):
            super().__init__()
            self.ws = nn.ParameterList([rng.standard_normal((n, h))])
            self.fc = nn.Dense(h, k)

        def forward(self, x):
            return self.fc(F.relu(x @ self.ws[0]))

    model = Own().double()
    X = rng.standard_normal((rows, n))
    page = report_html(model, None, X, rng.integers(0, k, rows), floor=False)
    data = _report_data(page)
    # x @ ws[0] is counted from the sample batch's graph, as a row of its own (2·n·h per
    # sample; training adds ∂L/∂W, the batch needing no ∂L/∂X): no '?' left on ws
    row = next(r for r in data["summary"]["rows"] if r["name"] == "ws")
    assert row["forward_flops"] == 0 and row["training_flops"] == 0, (seed, row)
    own = next(r for r in data["summary"]["rows"] if r["name"].startswith("own code"))
    assert (own["forward_flops"], own["training_flops"]) == (2 * n * h, 4 * n * h), (seed, own)
    for line in model.summary().order_lines():
        assert line.replace("'", "&#x27;") in page or line in page, (seed, line)


def _report_data(page: str) -> dict:
    import json
    import re

    found = re.search(r"id='wxb-data'>(.*?)</script>", page, re.S)
    return json.loads(found.group(1))


def test_summary_of_a_layer_of_ones_own_with_weights_says_its_flops_are_unknown():
    """A layer of one's own computing x @ W (2·n·h per sample) showed 0 forward and 0
    training FLOPs, and the totals left its product out without a word."""
    seed, rng = _rng()
    n, h, k = (int(w) for w in rng.integers(2, 7, size=3))

    class MyLinear(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(rng.standard_normal((n, h)).astype(np.float32))

        def forward(self, x):
            return x @ self.w

    model = nn.Sequential(MyLinear(), nn.Tanh(), nn.Dense(h, k))
    table = model.summary()
    text = table.text()
    line = next(line for line in text.splitlines() if line.startswith("mylinear1 "))
    # its x @ W is counted from a sample batch's graph: a row of its own after it
    assert line.split()[-4:-2] == ["0", "0"], (seed, line)
    own = next(r for r in table.rows if r.name.startswith("own code"))
    assert (own.forward_flops, own.training_flops) == (2 * n * h, 4 * n * h), (seed, own)
    assert [r.name for r in table.rows].index(own.name) == 1, (seed, text)
    assert "parameters held for the forward's own code" not in text, (seed, text)
    assert table.parameters == n * h + k * h + k, seed


def test_architecture_diagram_counts_the_parameters_of_layers_drawn_as_their_own():
    """A layer of one's own holding a weight, and a Dense with a forward hook, were drawn
    with their names alone: the diagram's parameter counts added up to less than the
    model's, the hooked Dense's W left out, without saying why it was not drawn as one."""
    import re

    from wxb.describe import architecture_diagram

    seed, rng = _rng()
    n, h, k = (int(w) for w in rng.integers(2, 7, size=3))

    class MyLinear(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(rng.standard_normal((n, h)).astype(np.float32))

        def forward(self, x):
            return x @ self.w

    model = nn.Sequential(MyLinear(), nn.Tanh(), nn.Dense(h, k), nn.Dense(k, k))
    model[2].register_forward_hook(lambda module, args, out: out * 2)
    chart = architecture_diagram(model)
    counts = [int(c.replace(",", "")) for c in re.findall(r"([\d,]+) parameters", chart)]
    assert sum(counts) == n * h + (h * k + k) + (k * k + k), (seed, chart)
    assert "dense1 · Dense<br>with forward hooks" in chart, (seed, chart)


def test_diagnostics_report_the_dense_inside_a_block_of_ones_own():
    """A block of one's own (fc(x)·2) in a Sequential: its Dense was left out of the
    diagnostics without a word; its ‖δ‖ and ‖∂L/∂W‖ now match PyTorch's autograd."""
    import torch

    from wxb.diagnose import layer_reports

    seed, rng = _rng()
    n, h, k, rows = (int(w) for w in rng.integers(2, 7, size=4))
    scale = float(rng.uniform(0.5, 3))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Dense(n, h)

        def forward(self, x):
            return self.fc(x) * scale

    model = nn.Sequential(Block(), nn.Tanh(), nn.Dense(h, k)).double()
    X = rng.standard_normal((rows, n))
    y = rng.integers(0, k, rows)
    reports = layer_reports(model, X, y, nn.CrossEntropyLoss())
    assert [r.layer for r in reports] == ["block1.fc", "dense1"], seed
    w1 = torch.tensor(model[0].fc.weight.data, requires_grad=True)
    w2 = torch.tensor(model[2].weight.data, requires_grad=True)
    z1 = torch.tensor(X) @ w1.T + torch.tensor(model[0].fc.bias.data)
    z2 = torch.tanh(z1 * scale) @ w2.T + torch.tensor(model[2].bias.data)
    for z in (z1, z2):
        z.retain_grad()
    torch.nn.functional.cross_entropy(z2, torch.tensor(y)).backward()
    for report, z, w in zip(reports, (z1, z2), (w1, w2), strict=True):
        assert np.isclose(report.delta_norm, float(z.grad.norm()), rtol=1e-9), seed
        assert np.isclose(report.weight_grad_norm, float(w.grad.norm()), rtol=1e-9), seed
