"""What wxb shows about cost and size, against independent counts: the diagnostics'
‖W‖, ‖∂L/∂W‖ and ‖δ‖ of every layer holding a weight (torch's autograd, NumPy in
float64), the summary's FLOPs (torch's FlopCounterMode, and by hand from the shapes
where torch counts nothing)."""

import numpy as np
import pytest

import wxb
from wxb.diagnose import layer_reports, warnings_for
from wxb.nn import (
    CrossEntropyLoss,
    Dense,
    Embedding,
    Flatten,
    LayerNorm,
    PReLU,
    ReLU,
    Sequential,
    Tanh,
)

torch = pytest.importorskip("torch")


def _norm64(array):
    return float(np.linalg.norm(np.asarray(array, dtype=np.float64).ravel()))


def test_diagnostics_cover_every_layer_holding_a_weight(seeded):
    """An Embedding (and a PReLU, a LayerNorm) had no row in the diagnostics: its ‖W‖
    and ‖∂L/∂W‖ were shown nowhere. Each now has one, its δ the gradient of its output,
    as torch's autograd computes them for the same weights and ids."""
    rng = seeded.rng
    vocab, d, L = (int(v) for v in rng.integers(3, 30, size=3))
    hidden, classes, n = int(rng.integers(2, 9)), int(rng.integers(2, 5)), int(rng.integers(4, 40))
    model = Sequential(
        Embedding(vocab, d),
        Flatten(),
        Dense(L * d, hidden),
        PReLU(),
        LayerNorm(hidden),
        Tanh(),
        Dense(hidden, classes),
    ).double()  # float64: PReLU's ∂L/∂a sums terms of both signs, float32's digits cancel
    for p in model.parameters():  # away from PReLU's and LayerNorm's initial 0.25, 1, 0
        p.data[...] += rng.normal(scale=0.3, size=p.shape).astype(p.dtype)
    X = rng.integers(0, vocab, size=(n, L))
    y = rng.integers(0, classes, size=n)
    reports = layer_reports(model, X, y, CrossEntropyLoss())
    kinds = [(r.layer, r.kind) for r in reports]
    expected = [
        ("embedding1", "Embedding"),
        ("dense1", "Dense"),
        ("prelu1", "PReLU"),
        ("layernorm1", "LayerNorm"),
        ("dense2", "Dense"),
    ]
    assert kinds == expected, seeded.msg(str(kinds))

    # torch in float64 on the same weights
    t = {k: torch.tensor(p.data, dtype=torch.float64, requires_grad=True)
         for k, p in model.named_parameters()}  # fmt: skip
    outs = []

    def kept(z):
        z.retain_grad()
        outs.append(z)
        return z

    e = kept(torch.nn.functional.embedding(torch.tensor(X), t["embedding1.weight"]))
    z1 = kept(e.reshape(n, -1) @ t["dense1.weight"].T + t["dense1.bias"])
    a = kept(torch.nn.functional.prelu(z1, t["prelu1.weight"]))
    a = kept(
        torch.nn.functional.layer_norm(
            a, (hidden,), t["layernorm1.weight"], t["layernorm1.bias"], 1e-5
        )
    )
    z2 = kept(torch.tanh(a) @ t["dense2.weight"].T + t["dense2.bias"])
    torch.nn.functional.cross_entropy(z2, torch.tensor(y)).backward()
    weights = [
        "embedding1.weight",
        "dense1.weight",
        "prelu1.weight",
        "layernorm1.weight",
        "dense2.weight",
    ]
    params = dict(model.named_parameters())
    for report, key, z in zip(reports, weights, outs, strict=True):
        where = seeded.msg(report.layer)
        assert report.weight_norm == pytest.approx(_norm64(params[key].data), rel=1e-12), where
        # float64 both, sums of ≤ 900 terms in other orders (and cancelling): 1e-9
        grad = t[key].grad.numpy()
        assert report.weight_grad_norm == pytest.approx(_norm64(grad), rel=1e-9, abs=1e-15), where
        assert report.delta_norm == pytest.approx(_norm64(z.grad.numpy()), rel=1e-9), where
    # δ's warnings still count the Dense layers alone (l = 1, 2)
    assert all("embedding1" not in w for w in warnings_for(reports)), seeded.msg("warnings")


def test_diagnostic_norms_of_float32_weights_are_summed_in_float64(seeded):
    """‖W‖ of a float32 W was summed and rooted in float32 (np.vdot of the array): off
    from NumPy's float64 norm of the same numbers in its 7th digit. Now summed in float64."""
    rng = seeded.rng
    n_in, n_out, n = int(rng.integers(200, 400)), int(rng.integers(100, 300)), 16
    model = Sequential(Dense(n_in, n_out), ReLU(), Dense(n_out, 3))
    X = rng.normal(size=(n, n_in)).astype(np.float32)
    y = rng.integers(0, 3, size=n)
    reports = layer_reports(model, X, y, CrossEntropyLoss())
    for report, layer in zip(reports, (model[0], model[2]), strict=True):
        # float64 sums of ≤ 120000 squares: 1e-12 is far above their rounding
        assert report.weight_norm == pytest.approx(_norm64(layer.weight.data), rel=1e-12), (
            seeded.msg(report.layer)
        )


def _torch_flops(fn):
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


class _TwoBranches(wxb.nn.Module):
    def __init__(self, n, i1, i2, o):
        super().__init__()
        self.a, self.b = Dense(n, i1), Dense(n, i2)
        self.bl = wxb.nn.Bilinear(i1, i2, o)

    def forward(self, x):
        return self.bl(self.a(x), self.b(x))


def test_bilinear_costs_what_its_backward_computes(seeded):
    """A frozen Bilinear W: ops.bilinear computed ∂L/∂W all the same (2·o·i1·i2 a row,
    its largest product), and the summary counted it; ∂L/∂x2, which reuses U = x1ᵀ·Wₒ
    (2·o·i2), was counted as 2·o·i1·i2. Now the backward computes each gradient only for
    an operand that needs it, and the summary counts what it computes: the Dense rows as
    torch's FlopCounterMode, the Bilinear (torch counts none for it) by hand."""
    rng = seeded.rng
    n, i1, i2, o = (int(v) for v in rng.integers(2, 12, size=4))
    B = int(rng.integers(1, 9))
    frozen = bool(rng.integers(2))
    model = _TwoBranches(n, i1, i2, o).double()
    model.bl.weight.requires_grad = not frozen
    where = seeded.msg(f"n={n} i1={i1} i2={i2} o={o} B={B} frozen={frozen}")

    # the engine: no ∂L/∂W of a frozen W; the inputs' gradients are torch's
    called = []
    einsum = np.einsum

    def spy(subscripts, *operands, **kw):
        called.append(subscripts)
        return einsum(subscripts, *operands, **kw)

    X = rng.normal(size=(B, n))
    x = wxb.Tensor(X, requires_grad=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(np, "einsum", spy)
        y = model(x)
        y.backward(np.ones_like(y.data))
    assert any(s.endswith("->oij") for s in called) != frozen, where + f" {called}"
    tm = torch.nn.Module()
    tm.a, tm.b = torch.nn.Linear(n, i1).double(), torch.nn.Linear(n, i2).double()
    tm.bl = torch.nn.Bilinear(i1, i2, o).double()
    with torch.no_grad():
        for key, p in model.named_parameters():
            tm.get_parameter(key).copy_(torch.tensor(p.data))
    tm.bl.weight.requires_grad_(not frozen)
    tx = torch.tensor(X, requires_grad=True)
    tm.bl(tm.a(tx), tm.b(tx)).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=where)
    if not frozen:
        np.testing.assert_allclose(
            model.bl.weight.grad, tm.bl.weight.grad.numpy(), rtol=1e-10, atol=1e-12
        )

    # the summary: torch's count of the Linear products, the Bilinear's and the +b by hand
    def step():
        tx = torch.tensor(X, requires_grad=False)
        tm.bl(tm.a(tx), tm.b(tx)).sum().backward()

    def forward():
        with torch.no_grad():
            tm.bl(tm.a(torch.tensor(X)), tm.b(torch.tensor(X)))

    bilinear_forward = 2 * o * i2 * (i1 + 1)
    bilinear_backward = 2 * o * i1 * (i2 + 1) + 2 * o * i2 + (0 if frozen else 2 * o * i1 * i2)
    biases = i1 + i2 + o
    summary = wxb.describe.summary(model, batch_size=B)
    assert summary.forward_flops_per_batch == _torch_flops(forward) + B * (
        bilinear_forward + biases
    ), where
    # +b and ∂L/∂b: m each, for the three biases (all trainable)
    assert summary.training_flops_per_batch == _torch_flops(step) + B * (
        bilinear_forward + bilinear_backward + 2 * biases
    ), where


def _random_chain(rng, ids, unflatten):
    """A Sequential of random widths: ids through an Embedding and a Flatten, or rows;
    Dense layers with and without bias between activations; an Unflatten last, or not.
    With the width of a sample it takes."""
    from wxb.nn import Dropout, Sigmoid, Unflatten

    layers = []
    if ids:
        vocab, d, L = (int(v) for v in rng.integers(2, 9, size=3))
        layers += [Embedding(vocab, d), Flatten()]
        width, first = L * d, ("ids", L, vocab)
    else:
        width = int(rng.integers(1, 12))
        first = ("rows", width, None)
    for _ in range(int(rng.integers(1, 4))):
        out = int(rng.integers(1, 12))
        layers.append(Dense(width, out, bias=bool(rng.integers(2))))
        kind = int(rng.integers(4))
        layers += [[], [ReLU()], [Tanh(), Dropout(0.3)], [Sigmoid()]][kind]
        width = out
    if unflatten:
        rows = int(rng.integers(1, 4))
        layers += [Dense(width, rows * 2), Unflatten(1, (rows, 2))]
    return Sequential(*layers), first


def test_diagram_edges_carry_the_shapes_a_forward_hands_on(seeded):
    """architecture_diagram's edges against a forward's tensors, sample by sample: the
    edge out of an Embedding said L·d (24) where the Embedding hands on L×d rows (6×4),
    as the summary shows them (6, 4), and an Unflatten's edge carried nothing."""
    from test_describe import parse_mermaid

    rng = seeded.rng
    for k in range(5):  # the first with both (the edges that were wrong), then any
        model, (kind, width, vocab) = _random_chain(
            rng, k == 0 or rng.integers(2), k == 0 or rng.integers(2)
        )
        chart = parse_mermaid(wxb.describe.architecture_diagram(model))
        B = int(rng.integers(1, 6))
        if kind == "ids":
            x = rng.integers(0, vocab, size=(B, width))
        else:
            x = rng.normal(size=(B, width)).astype(np.float32)
        shapes = [x.shape[1:]]
        with wxb.no_grad():
            h = x
            for layer in model:
                h = layer(h)
                shapes.append(tuple(h.shape[1:]))
        edges = chart.edges
        where = seeded.msg(f"{model!r}\n{edges}")
        assert len(edges) == len(shapes), where
        for (source, target, label), shape in zip(edges, shapes, strict=True):
            assert label == "×".join(map(str, shape)), where + f" {source}→{target} {shape}"


class _FrozenStack(wxb.nn.Module):
    def __init__(self, n, m, out, rng):
        super().__init__()
        self.w = wxb.nn.Parameter(rng.normal(size=(n, m)), requires_grad=False)
        self.fc = Dense(m, out)

    def forward(self, x):
        n, m = self.w.shape
        stacked = x.reshape(x.shape[0], 1, n) @ self.w.reshape(1, n, m)  # w as a stack of one
        return self.fc(stacked.reshape(x.shape[0], m))


def test_own_code_names_a_frozen_parameter_reshaped_not_transposed(seeded):
    """x @ w.reshape(1, n, m) with a frozen w (found by its memory, as it records no
    graph) was named "x @ wᵀ": any change of strides read as a transpose. Its FLOPs, and
    the Dense's after it (no ∂L/∂X: nothing before it learns), are torch's."""
    rng = seeded.rng
    n, m, out, B = (int(v) for v in rng.integers(2, 9, size=4))
    model = _FrozenStack(n, m, out, rng).double()
    summary = wxb.describe.summary(model, batch_size=B)
    names = [row.name for row in summary.rows]
    assert names == ["own code (x @ w)", "fc"], seeded.msg(str(names))
    X = torch.tensor(rng.normal(size=(B, n)))
    W = torch.tensor(model.w.data)
    fc = torch.nn.Linear(m, out).double()

    def step():
        stacked = X.reshape(B, 1, n) @ W.reshape(1, n, m)
        fc(stacked.reshape(B, m)).sum().backward()

    # + b and ∂L/∂b of fc: out each a row
    assert summary.training_flops_per_batch == _torch_flops(step) + 2 * out * B, seeded.msg("")


def test_explain_says_training_computes_no_gradient_of_a_frozen_layer(seeded):
    """explain shows a frozen layer's ∂L/∂W (from its twin) and said they were "shown as
    backward computes them": training's backward computes none (autograd's and the
    planned step's skip them; the summary counts none). Checked here against torch's
    FlopCounterMode: a step with the first layer frozen has no product for its ∂L/∂W."""
    rng = seeded.rng
    n, h, B = int(rng.integers(2, 9)), int(rng.integers(2, 9)), int(rng.integers(2, 9))
    model = Sequential(Dense(n, h), ReLU(), Dense(h, 2)).double()
    model[0].weight.requires_grad = False
    model[0].bias.requires_grad = False
    X, y = rng.normal(size=(B, n)), rng.integers(0, 2, size=B)
    text = str(wxb.explain(model, X, y))
    assert "as backward computes them" not in text, seeded.msg(text)
    assert "training's backward computes none of them" in text, seeded.msg(text)
    tm = torch.nn.Sequential(torch.nn.Linear(n, h), torch.nn.ReLU(), torch.nn.Linear(h, 2))
    tm = tm.double().requires_grad_(True)
    tm[0].requires_grad_(False)

    def step():
        tm(torch.tensor(X)).sum().backward()

    # forward 2·B·(h·n + 2·h), the last layer's ∂L/∂W 2·B·2·h, no ∂L/∂X nor ∂L/∂W below
    summary = wxb.describe.summary(model, batch_size=B)
    assert _torch_flops(step) == 2 * B * (h * n + 2 * h) + 4 * B * h, seeded.msg("torch")
    assert summary.training_flops_per_batch == _torch_flops(step) + 2 * 2 * B + h * B, seeded.msg(
        "summary"
    )
