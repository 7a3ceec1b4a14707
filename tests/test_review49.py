"""Review of the last stop's change (new layers and losses, in-place changes of views,
labels' torch methods): each defect found, against an independent reference."""

import re

import numpy as np
import pytest

import wxb
import wxb.describe
import wxb.interop
from wxb import nn

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------------------------
# Softmin's backward is a Jacobian: explain and the backward diagram wrote it as an
# element-wise "⊙ softmin′(Z)"
# ---------------------------------------------------------------------------------
def _softmin_jacobian(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The formula explain now writes, −A ⊙ (g − Σⱼ Aⱼ·gⱼ), on rows."""
    return -a * (g - (a * g).sum(axis=1, keepdims=True))


def test_explain_and_diagram_write_softmins_jacobian(rng):
    # the formula written, against torch's autograd (float64: the sum's rounding)
    z, g = rng.normal(size=(5, 4)) * 3, rng.normal(size=(5, 4))
    tz = torch.tensor(z, requires_grad=True)
    a = torch.nn.functional.softmin(tz, dim=1)
    (a * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(
        _softmin_jacobian(a.detach().numpy(), g), tz.grad.numpy(), rtol=1e-12, atol=1e-15
    )
    features, hidden, classes = (int(n) for n in rng.integers(2, 6, size=3))
    model = nn.Sequential(
        nn.Dense(features, hidden), nn.Softmin(dim=1), nn.Dense(hidden, classes), nn.Softmin(dim=1)
    )
    X = rng.normal(size=(8, features))
    y = rng.integers(0, classes, 8)
    text = str(wxb.explain(model, X, y, loss=nn.NLLLoss(), sample_rows=2))
    deltas = [line for line in text.splitlines() if re.match(r"\s*δ⁽[¹²]⁾ = ∂L/∂Z", line)]
    assert len(deltas) == 2, text
    assert "= −A⁽²⁾ ⊙ (∇_A L − Σⱼ A⁽²⁾ⱼ·(∇_A L)ⱼ) =" in deltas[0]
    assert "= −A⁽¹⁾ ⊙ (g − Σⱼ A⁽¹⁾ⱼ·gⱼ), g = W⁽²⁾ᵀ·δ⁽²⁾ =" in deltas[1]
    assert "softmin′" not in text

    chart = wxb.describe.backward_diagram(model)
    assert "softmin′" not in chart
    assert chart.count("softmin Jacobian at Z⁽") == 2
    # (log_softmax's, the same rule's other row-wise activation)
    chart = wxb.describe.backward_diagram(
        nn.Sequential(nn.Dense(features, classes), nn.LogSoftmax(dim=1))
    )
    assert "log_softmax′" not in chart and "log_softmax Jacobian at Z⁽¹⁾" in chart


# ---------------------------------------------------------------------------------
# PReLU takes torch's device= (as Linear, LayerNorm and BatchNorm1d do since the last
# stop): nn.PReLU(device=device) was Python's "unexpected keyword argument 'device'"
# ---------------------------------------------------------------------------------
def test_prelu_takes_torchs_device_keyword(rng):
    n = int(rng.integers(1, 6))
    init = float(rng.uniform(-1, 1))
    ours = nn.PReLU(n, init, device=torch.device("cpu"), dtype=torch.float64)
    theirs = torch.nn.PReLU(n, init, device=torch.device("cpu"), dtype=torch.float64)
    assert repr(ours) == repr(theirs)
    z = rng.normal(size=(4, n))
    np.testing.assert_array_equal(ours(wxb.Tensor(z)).data, theirs(torch.tensor(z)).detach())
    assert nn.PReLU(device="cpu").weight.dtype == np.float32
    with pytest.raises(wxb.errors.ConfigError, match="PReLU: device 'cuda'"):
        nn.PReLU(device="cuda")


# ---------------------------------------------------------------------------------
# A recorded backward keeps its own copy of the caller's arrays (5f53766's rule): the
# new losses and PReLU read the caller's target, weight or input array at backward, so
# a buffer refilled between the forward and backward (several chunks' losses summed,
# then one backward) changed the gradient without a word
# ---------------------------------------------------------------------------------
_REUSED = {
    # name: (wxb's, torch's), each f(output, array); the output in (0, 1)
    "binary_cross_entropy target": (
        lambda o, a: nn.functional.binary_cross_entropy(o, a),
        lambda o, a: torch.nn.functional.binary_cross_entropy(o, a),
    ),
    "binary_cross_entropy weight": (
        lambda o, a: nn.functional.binary_cross_entropy(o, 1 - a, weight=a),
        lambda o, a: torch.nn.functional.binary_cross_entropy(o, 1 - a, weight=a),
    ),
    "kl_div target": (
        lambda o, a: nn.functional.kl_div(o.log(), a, reduction="batchmean"),
        lambda o, a: torch.nn.functional.kl_div(o.log(), a, reduction="batchmean"),
    ),
    "l1_loss weight": (
        lambda o, a: nn.functional.l1_loss(o, 1 - a, weight=a),
        lambda o, a: (a * (o - (1 - a)).abs()).sum() / a.sum(),  # torch 2.6's rule
    ),
    "huber_loss weight": (
        lambda o, a: nn.functional.huber_loss(o, 1 - a, weight=a, delta=0.3),
        lambda o, a: (
            a * torch.nn.functional.huber_loss(o, 1 - a, reduction="none", delta=0.3)
        ).mean(),
    ),
    "prelu input": (  # (its chunks in (−1, 1): ∂L/∂a reads z where z ≤ 0)
        lambda o, a: nn.functional.prelu(a, o[0]).sum(),
        lambda o, a: torch.nn.functional.prelu(a, o[0]).sum(),
    ),
}


@pytest.mark.parametrize("case", sorted(_REUSED))
def test_a_buffer_refilled_before_backward_leaves_the_gradient_alone(rng, case):
    ours, theirs = _REUSED[case]
    rows, cols = (int(n) for n in rng.integers(2, 6, size=2))
    low = -0.95 if case == "prelu input" else 0.05
    chunks = [rng.uniform(low, 0.95, size=(rows, cols)) for _ in range(3)]
    p = rng.uniform(0.05, 0.95, size=(rows, cols))
    op, tp = wxb.Tensor(p, requires_grad=True), torch.tensor(p, requires_grad=True)
    buffer = np.empty((rows, cols))
    total = 0
    for chunk in chunks:  # one buffer, refilled for each chunk's loss
        buffer[...] = chunk
        total = total + ours(op, buffer)
    expected = sum(theirs(tp, torch.tensor(chunk)) for chunk in chunks)
    total.backward()
    expected.backward()
    # float64: each gradient a few operations on terms of order 1/p (BCE's 1/(p(1 − p)))
    np.testing.assert_allclose(op.grad, tp.grad.numpy(), rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------
# Threshold passes a NaN on, as torch's (its test is z ≤ threshold): wxb's tested
# z > threshold, so a NaN became the value (and its δ 0), hiding a diverged input
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_threshold_passes_nan_on_as_torchs(rng, tmp_path, dtype):
    onnxruntime = pytest.importorskip("onnxruntime")
    import wxb.onnx

    t, v = (float(u) for u in rng.normal(size=2))
    z = rng.normal(size=(6, 5)).astype(dtype)
    z.reshape(-1)[rng.choice(z.size, 4, replace=False)] = [np.nan, np.inf, -np.inf, t]
    ours, theirs = nn.Threshold(t, v), torch.nn.Threshold(t, v)
    oz, tz = wxb.Tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
    upstream = rng.normal(size=z.shape).astype(dtype)
    a, b = ours(oz), theirs(tz)
    (a * wxb.Tensor(upstream)).sum().backward()
    (b * torch.tensor(upstream)).sum().backward()
    # each element is z, the value or δ as given: exactly torch's, NaN where torch's is
    np.testing.assert_array_equal(a.data, b.detach().numpy())
    np.testing.assert_array_equal(oz.grad, tz.grad.numpy())

    # the planned stack and its ONNX export compute the same
    model = nn.Sequential(nn.Dense(5, 3), nn.Threshold(t, v)).to(dtype)
    X = rng.normal(size=(6, 5)).astype(dtype)
    X[rng.integers(6), rng.integers(5)] = np.nan
    assert model.why_not_planned() is None
    twin = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.Threshold(t, v)).to(
        getattr(torch, dtype)
    )
    with torch.no_grad():
        twin[0].weight.copy_(torch.tensor(model[0].weight.data))
        twin[0].bias.copy_(torch.tensor(model[0].bias.data))
    out = twin(torch.tensor(X))
    expected = out.detach().numpy()
    mine = model(X)  # (the planned stack: predict refuses a NaN in X)
    got = mine.data
    assert np.isnan(expected).any()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    # (one product of 5 terms apart: its float32 rounding)
    tolerance = 1e-5 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)
    mine.sum().backward()
    out.sum().backward()  # ∂L/∂W: NaN from the NaN row where torch's is
    np.testing.assert_allclose(
        model[0].weight.grad, twin[0].weight.grad.numpy(), rtol=tolerance, atol=tolerance
    )
    wxb.onnx.export(model, tmp_path / "m.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    exported = session.run(None, {"input": X})[0]
    np.testing.assert_array_equal(np.isnan(exported), np.isnan(expected))
    np.testing.assert_allclose(exported, got, rtol=tolerance, atol=tolerance)


# ---------------------------------------------------------------------------------
# summary and the diagrams know PReLU's and Flatten's widths: PReLU is element-wise
# and a Flatten of rows changes nothing, where both were read as custom layers (output
# shape '?', no activation memory, the widths after them unknown)
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_summary_gives_prelus_and_flattens_output_shapes_as_torchs(rng, dtype):
    features, hidden, classes = (int(n) for n in rng.integers(2, 7, size=3))
    shared = bool(rng.integers(2))
    model = nn.Sequential(
        nn.Flatten(),
        nn.Dense(features, hidden),
        nn.PReLU(1 if shared else hidden),
        nn.Flatten(),
        nn.Dense(hidden, classes),
    ).to(dtype)
    twin = wxb.interop.to_torch(model)
    shapes = []  # each torch layer's output per sample, from hooks
    for layer in twin:
        layer.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
    twin(torch.zeros((3, features), dtype=getattr(torch, dtype)))
    rows = model.summary().rows
    assert [row.output_shape for row in rows] == shapes
    size = np.dtype(dtype).itemsize
    # what a step keeps: each layer's output row, a Flatten's a view of its input
    kept = [0, hidden * size, hidden * size, 0, classes * size]
    assert [row.activation_bytes for row in rows] == kept
    chart = wxb.describe.architecture_diagram(model)
    assert f'-->|"{hidden}"| lay4' in chart and f'-->|"{hidden}"| lay5' in chart


# ---------------------------------------------------------------------------------
# Labels answer torch's is_cuda as a tensor does (the last stop gave Tensor .device and
# .is_cuda, and labels .to(device) and .cpu(): labels.is_cuda was an AttributeError)
# ---------------------------------------------------------------------------------
def test_labels_answer_is_cuda_as_torchs(rng):
    y = rng.integers(0, 4, size=int(rng.integers(1, 9)))
    ours = wxb.tensor(y.astype(np.float32)).long()
    theirs = torch.tensor(y)
    for a, b in ((ours, theirs), (ours > 1, theirs > 1), (ours.view(-1, 1), theirs.view(-1, 1))):
        assert a.is_cuda is b.is_cuda is False
        assert a.to(a.device).is_cuda is b.to(b.device).is_cuda


# ---------------------------------------------------------------------------------
# BCELoss is wxb's now: a model kept with its Sigmoid head is pointed to it, where the
# hints said only to take the head off (Keras's binary_crossentropy; bce_with_logits
# after a Sigmoid, which trains through it twice)
# ---------------------------------------------------------------------------------
def test_a_sigmoid_head_is_pointed_to_bce_loss_which_trains_as_torchs(rng):
    import warnings

    features = int(rng.integers(2, 6))
    X = rng.normal(size=(16, features))
    y = (X[:, 0] + 0.3 * rng.normal(size=16) > 0).astype(np.float64)
    model = nn.Sequential(nn.Dense(features, 4), nn.Tanh(), nn.Dense(4, 1), nn.Sigmoid())
    model = model.to("float64")
    with pytest.raises(wxb.errors.ConfigError, match=r"loss=wxb\.nn\.BCELoss\(\)"):
        wxb.fit(model, X, y, loss="binary_crossentropy", epochs=1, verbose=0)
    with pytest.warns(UserWarning, match=r"keep it and train with loss=wxb\.nn\.BCELoss\(\)"):
        wxb.fit(model, X, y, loss="bce_with_logits", epochs=1, verbose=0, shuffle=False)

    # the way it names: no warning, and torch's BCELoss training on the same weights
    twin = wxb.interop.to_torch(model)
    opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    for start in range(0, 16, 8):
        opt.zero_grad()
        out = twin(torch.tensor(X[start : start + 8]))
        torch.nn.BCELoss()(out, torch.tensor(y[start : start + 8, None])).backward()
        opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wxb.fit(
            model, X, y[:, None], loss=nn.BCELoss(), epochs=1, batch_size=8, shuffle=False,
            optimizer=wxb.optim.SGD(model.parameters(), lr=0.1), verbose=0,
        )  # fmt: skip
    for mine, theirs in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(mine.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
