"""Review of the last stop's change (new layers and losses, in-place changes of views,
labels' torch methods): each defect found, against an independent reference."""

import re

import numpy as np
import pytest

import wxb
import wxb.describe
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
