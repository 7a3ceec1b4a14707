"""What wxb shows, leftovers (s43): one name for one weight in every view (explain, the
diagnostics, the diagrams), a hooked Dense's own Z = W·X + b in explain, and the FLOPs of
∂L/∂X counted where the forward really needs it.

Every test draws fresh random inputs; the seed is in the assertion message."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest

import wxb
from wxb import nn
from wxb.describe import architecture_diagram, backward_diagram, forward_diagram
from wxb.diagnose import layer_reports
from wxb.nn.module import Parameter

torch = pytest.importorskip("torch")


def _rng() -> tuple[int, np.random.Generator]:
    seed = int(np.random.SeedSequence().entropy % (1 << 63))
    return seed, np.random.default_rng(seed)


_SUP = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")


def _number(text: str) -> int:
    return int(text.translate(_SUP))


class Scale(nn.Module):
    """A layer of one's own holding a weight (x ⊙ w): no W⁽ˡ⁾ of the seed's."""

    def __init__(self, width: int, values: np.ndarray) -> None:
        super().__init__()
        self.w = Parameter(values)

    def forward(self, x):
        return x * self.w


def _mixed_model(rng: np.random.Generator):
    """dense1 (plain), relu, dense2 (hooked: Z·c + d), tanh, scale (own weight), dense3,
    tanh, dense1 again (a Dense used twice), in float64; and the hook's c, d."""
    n = int(rng.integers(2, 5))
    h = n  # dense1 is applied again on dense3's output: width h → h, so n = h
    c, d = float(rng.uniform(0.5, 2.0)), float(rng.uniform(-0.5, 0.5))
    dense1, dense2, dense3 = nn.Dense(n, h), nn.Dense(h, h), nn.Dense(h, h)
    scale = Scale(h, rng.uniform(0.5, 1.5, h))
    model = nn.Sequential(
        dense1, nn.ReLU(), dense2, nn.Tanh(), scale, dense3, nn.Tanh(), dense1
    ).double()
    dense2.register_forward_hook(lambda module, args, out: out * c + d)
    return model, (c, d), n


def _torch_deltas(model, c: float, d: float, X: np.ndarray, y: np.ndarray):
    """δ = ∂L/∂Z of each Dense application, in order, and ∂L/∂W per weight, from PyTorch's
    autograd on the same weights; L = (1/B)·Σᵢ ½‖ŷᵢ − yᵢ‖² (wxb's mse)."""
    dense1, dense2, scale, dense3 = model[0], model[2], model[4], model[5]
    W = {
        id(m.weight): torch.tensor(m.weight.data, requires_grad=True)
        for m in (dense1, dense2, dense3)
    }
    b = {id(m.weight): torch.tensor(m.bias.data) for m in (dense1, dense2, dense3)}

    def z(m, a):
        out = a @ W[id(m.weight)].T + b[id(m.weight)]
        out.retain_grad()
        return out

    z1 = z(dense1, torch.tensor(X))
    z2 = z(dense2, torch.relu(z1))
    a2 = torch.tanh(z2 * c + d) * torch.tensor(scale.w.data)
    z3 = z(dense3, a2)
    z4 = z(dense1, torch.tanh(z3))
    loss = 0.5 * ((z4 - torch.tensor(y)) ** 2).sum() / len(X)
    loss.backward()
    return [t.grad.numpy() for t in (z1, z2, z3, z4)], {k: w.grad.numpy() for k, w in W.items()}


def test_one_weight_has_one_name_in_explain_the_diagnostics_and_the_diagrams():
    """A hooked Dense was one opaque step in explain and uncounted in the diagrams (W⁽²⁾ was
    the third Dense there), while the diagnostics counted it (its δ was 'layer 2'); a Dense
    used twice was W⁽¹⁾ and W⁽⁴⁾ at once. Now l counts every Dense whose W·X + b runs, in
    the order applied, and a Dense applied again keeps its W's number; explain's δ⁽ˡ⁾ is
    the diagnostics' layer l, and both are PyTorch's ∂L/∂Z."""
    seed, rng = _rng()
    model, (c, d), n = _mixed_model(rng)
    rows = int(rng.integers(2, 6))
    X, y = rng.standard_normal((rows, n)), rng.standard_normal((rows, n))
    weights = [model[0].weight, model[2].weight, model[5].weight, model[0].weight]
    deltas, grads = _torch_deltas(model, c, d, X, y)

    walk = wxb.explain(model, X, y, loss="mse", sample_rows=None)
    text = str(walk)
    # explain: each Dense application's Z⁽ˡ⁾ = W⁽ᵏ⁾·…, in order, hooked one included
    shown = re.findall(r"^\s*Z⁽([⁰¹²³⁴⁵⁶⁷⁸⁹]+)⁾ = W⁽([⁰¹²³⁴⁵⁶⁷⁸⁹]+)⁾·", text, re.M)
    assert [_number(z) for z, _ in shown] == [1, 2, 3, 4], (seed, text)
    names = {}
    for (_, k), weight in zip(shown, weights, strict=True):
        assert names.setdefault(id(weight), _number(k)) == _number(k), (seed, text)
    assert len(set(names.values())) == 3, (seed, names)  # three weights, three names
    assert "dense2's forward hooks" in text and "hands on what they return" in text, text
    # explain's δ⁽ˡ⁾ (the hooked one's too) is PyTorch's ∂L/∂Z of the l-th application
    deltas_shown = {
        _number(m[1]): step.value
        for step in walk.steps
        if (m := re.match(r"δ⁽([⁰¹²³⁴⁵⁶⁷⁸⁹]+)⁾ = ", step.equation))
    }
    for level, expected in enumerate(deltas, 1):
        np.testing.assert_allclose(
            deltas_shown[level], expected.T, rtol=1e-9, atol=1e-12, err_msg=f"seed {seed}, {level}"
        )
    # ∂L/∂W⁽ᵏ⁾ under the weight's own name (dense1's share at each of its two places)
    for step in walk.steps:
        m = re.match(r"∂L/∂W⁽([⁰¹²³⁴⁵⁶⁷⁸⁹]+)⁾ = ", step.equation)
        if m:
            assert _number(m[1]) in names.values(), (seed, step.equation)
    for weight, k in (
        (model[2].weight, names[id(model[2].weight)]),
        (model[5].weight, names[id(model[5].weight)]),
    ):
        got = [s.value for s in walk.steps if s.equation.startswith(f"∂L/∂W{_sup(k)} = ")]
        np.testing.assert_allclose(got[0], grads[id(weight)], rtol=1e-9, atol=1e-12,
                                   err_msg=f"seed {seed}, ∂L/∂W{_sup(k)}")  # fmt: skip

    # the diagnostics: layer l is explain's δ⁽ˡ⁾ (same ‖δ‖), the same layer
    reports = layer_reports(model, X, y, nn.MSELoss())
    assert len(reports) == 4, (seed, [r.layer for r in reports])
    for level, (report, expected) in enumerate(zip(reports, deltas, strict=True), 1):
        assert np.isclose(report.delta_norm, np.linalg.norm(expected), rtol=1e-9), (seed, level)

    # the diagrams: W⁽ᵏ⁾ of each Dense listed, as explain names it
    chart = architecture_diagram(model)
    drawn = [
        _number(k) for k in re.findall(r"· Dense<br>(?:[^\"]*?<br>)?W⁽([⁰¹²³⁴⁵⁶⁷⁸⁹]+)⁾", chart)
    ]
    assert drawn == [names[id(w)] for w in weights], (seed, chart)
    flow = forward_diagram(model)
    assert [_number(k) for k in re.findall(r"W⁽([⁰¹²³⁴⁵⁶⁷⁸⁹]+)⁾·A", flow)] == drawn, (seed, flow)
    back = backward_diagram(model)
    got = [_number(k) for k in re.findall(r"∂L/∂W⁽([⁰¹²³⁴⁵⁶⁷⁸⁹]+)⁾ = δ", back)]
    assert got == drawn[::-1], (seed, back)
    layers = [_number(k) for k in re.findall(r"Layer (\d+): ", flow)]
    assert layers == [1, 2, 3, 4], (seed, flow)


def _sup(k: int) -> str:
    return "⁽" + str(k).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")) + "⁾"


def test_explain_numbers_the_dense_inside_a_block_as_the_diagnostics_do():
    """A block of one's own (fc(x)·s) and a hooked Sequential before the last Dense: the
    diagnostics (and the architecture diagram) call the last Dense layer 3, explain called
    it W⁽¹⁾ and δ⁽¹⁾."""
    seed, rng = _rng()
    n, h, k, rows = (int(v) for v in rng.integers(2, 6, size=4))
    s, t = (float(v) for v in rng.uniform(0.5, 2.0, size=2))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Dense(n, h)

        def forward(self, x):
            return self.fc(x) * s

    inner = nn.Sequential(nn.Dense(h, h))
    inner.register_forward_hook(lambda module, args, out: out * t)
    model = nn.Sequential(Block(), nn.Tanh(), inner, nn.Tanh(), nn.Dense(h, k)).double()
    X, y = rng.standard_normal((rows, n)), rng.integers(0, k, rows)
    reports = layer_reports(model, X, y, nn.CrossEntropyLoss())
    assert [r.layer for r in reports] == ["block1.fc", "sequential1.dense1", "dense1"], seed
    walk = wxb.explain(model, X, y, sample_rows=None)
    text = str(walk)
    assert re.search(r"^\s*Z⁽³⁾ = W⁽³⁾·", text, re.M), (seed, text)
    delta = next(st for st in walk.steps if st.equation.startswith("δ⁽³⁾ = "))
    assert np.isclose(np.linalg.norm(delta.value), reports[2].delta_norm, rtol=1e-9), seed
    assert f"W⁽³⁾ {k}×{h}" in architecture_diagram(model), seed


def _hand_training_flops(m: int, n: int, trainable: bool, input_needs_grad: bool) -> int:
    """Per sample: W·X (2mn) + b (m); ∂L/∂W (2mn) and ∂L/∂b (m) when trainable; ∂L/∂X
    = Wᵀ·δ (2mn) when the input needs a gradient."""
    return (
        2 * m * n + m + (2 * m * n + m if trainable else 0) + (2 * m * n if input_needs_grad else 0)
    )


@pytest.mark.parametrize("between", ["scale", "residual", "no_grad"])
def test_summary_counts_input_gradients_where_the_forward_needs_them(between):
    """A forward of one's own that is not a plain chain (fc1(x)·s, or a residual), its
    layers registered in another order than called: the summary counted ∂L/∂X (2mn) for
    every layer registered after a trainable one, so the first layer called (whose input
    is the data) paid one, and the one registered first none (training FLOPs of 228 per
    sample where the model needs 212). Now ∂L/∂X counts where the sample batch's graph
    shows the input needs a gradient: PyTorch's autograd, on the same model, agrees. A
    layer run under no_grad was charged its ∂L/∂W and ∂L/∂b, which no backward computes."""
    seed, rng = _rng()
    n, h, k = (int(v) for v in rng.integers(2, 9, size=3))
    s = float(rng.uniform(0.5, 2.0))
    frozen = str(rng.choice(["none", "fc1", "fc2"]))
    order = ["fc2", "fc3", "fc1"]
    rng.shuffle(order)  # registered in any order, fc1 not first: the forward calls fc1 first
    if order[0] == "fc1":
        order = order[1:] + order[:1]
    shapes = {"fc1": (n, h), "fc2": (h, h), "fc3": (h, k)}

    def forward(self, x, relu, tanh, no_grad):
        if between == "no_grad":  # fc1 as a fixed feature map: no gradient reaches it
            with no_grad():
                z = self.fc1(x)
            return self.fc3(tanh(self.fc2(relu(z))))
        z = self.fc1(x)
        a = z * s if between == "scale" else relu(z)
        b = self.fc2(a)
        return self.fc3(tanh(b) if between == "scale" else tanh(b) + a)

    class Own(nn.Module):
        def __init__(self):
            super().__init__()
            for name in order:
                setattr(self, name, nn.Dense(*shapes[name]))

        def forward(self, x):
            return forward(self, x, nn.functional.relu, nn.functional.tanh, wxb.no_grad)

    class Torch(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for name in order:
                setattr(self, name, torch.nn.Linear(*shapes[name]))

        def forward(self, x):
            return forward(self, x, torch.relu, torch.tanh, torch.no_grad)

    model, reference = Own(), Torch()
    if frozen != "none":
        for p in getattr(model, frozen).parameters():
            p.requires_grad = False
        for p in getattr(reference, frozen).parameters():
            p.requires_grad_(False)
    needs, used = {}, {}  # its input requires grad; its result is in the graph at all

    def seen(module, args, out):  # (returns None: the output stays)
        name = next(key for key in order if getattr(reference, key) is module)
        needs[name], used[name] = args[0].requires_grad, out.requires_grad

    for name in order:
        getattr(reference, name).register_forward_hook(seen)
    reference(torch.randn(3, n))
    table = model.summary(batch_size=1, gemm_rate=1e9)
    got = {row.name: row.training_flops for row in table.rows if row.name in shapes}
    expected = {
        name: _hand_training_flops(
            shapes[name][1], shapes[name][0], name != frozen and used[name], needs[name]
        )
        for name in shapes
    }
    assert got == expected, (seed, order, frozen, between, str(table))
    assert table.training_flops == sum(expected.values()), seed


def test_architecture_diagram_writes_a_is_f_of_z_only_where_the_activation_takes_z():
    """After a block of one's own (fc(x)·s) or a hooked Sequential (its Dense's Z·t), the
    architecture diagram wrote 'A⁽¹⁾ = tanh(Z⁽¹⁾)': the Tanh takes Z⁽¹⁾·s, not Z⁽¹⁾. A plain
    nested Sequential's Dense still has it (the Tanh does take its Z)."""
    seed, rng = _rng()
    n, h, k = (int(v) for v in rng.integers(2, 6, size=3))
    s, t = (float(v) for v in rng.uniform(1.5, 3.0, size=2))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Dense(n, h)

        def forward(self, x):
            return self.fc(x) * s

    hooked = nn.Sequential(nn.Dense(h, h))
    hooked.register_forward_hook(lambda module, args, out: out * t)
    plain = nn.Sequential(nn.Dense(h, h))
    model = nn.Sequential(
        Block(), nn.Tanh(), hooked, nn.Tanh(), plain, nn.Tanh(), nn.Dense(h, k)
    ).double()
    chart = architecture_diagram(model)
    # what each Tanh takes, against the Z of the Dense before it (seen on a copy: hooks
    # on the model itself would change how it is drawn)
    twin, zs, takes = copy.deepcopy(model), [], []
    for m in (twin[0].fc, twin[2][0], twin[4][0]):
        m.register_forward_hook(lambda module, args, out: zs.append(out.data.copy()))
    for position in (1, 3, 5):
        twin[position].register_forward_hook(
            lambda module, args, out: takes.append(args[0].data.copy())
        )
    twin(rng.standard_normal((3, n)))
    for level, (z, taken) in enumerate(zip(zs, takes, strict=True), 1):
        said = f"A{_sup(level)} = tanh(Z{_sup(level)})" in chart
        assert said == np.allclose(z, taken), (seed, level, chart)
