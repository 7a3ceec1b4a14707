"""Sums over many elements in float32 keep float32's rounding, as PyTorch's do: BLAS's
float32 dot and gemv, and NumPy's sum down the rows, add in float32 one element after
another, an error that grew with the batch (1e-5 of the loss at 65,536 rows where
PyTorch's stays near 1e-7). References are the same sums in float64."""

import numpy as np
import pytest

import wxb
from wxb.nn import CrossEntropyLoss, Dense, MSELoss, Sequential, Tanh

CLOSE = 1e-6  # float32 rounding with room (float32's eps is 1.2e-7); the old error was ≥ 1e-5


def relative(got, expected) -> float:
    expected = np.asarray(expected, np.float64)
    return float(np.max(np.abs(np.asarray(got, np.float64) - expected)) / np.max(np.abs(expected)))


def test_the_mse_value_of_a_large_batch(rng):
    rows = int(rng.integers(60_000, 70_000))
    output = rng.normal(size=(rows, 16)).astype(np.float32)
    target = (output + rng.normal(scale=3.0, size=output.shape) + 1e4).astype(np.float32)
    value = MSELoss()(wxb.Tensor(output), target).item()
    diff = output.astype(np.float64) - target.astype(np.float64)
    assert relative(value, 0.5 * (diff**2).sum() / rows) < CLOSE


def test_cross_entropy_on_probabilities_over_many_classes(rng):
    rows, classes = int(rng.integers(1500, 2500)), int(rng.integers(4000, 5000))
    logits = (rng.normal(size=(rows, classes)) * 3).astype(np.float32)
    target = rng.dirichlet(np.ones(classes), size=rows).astype(np.float32)
    value = CrossEntropyLoss()(wxb.Tensor(logits), target).item()
    z = logits.astype(np.float64)
    log_softmax = z - z.max(1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(1, keepdims=True))
    expected = -(target.astype(np.float64) * log_softmax).sum() / rows
    assert relative(value, expected) < CLOSE


@pytest.mark.parametrize("path", ["graph", "planned"])
def test_bias_gradients_of_a_large_batch(rng, path):
    rows = int(rng.integers(60_000, 70_000))
    model = Sequential(Dense(8, 32), Tanh(), Dense(32, 4))
    X = rng.normal(size=(rows, 8)).astype(np.float32)
    y = rng.normal(size=(rows, 4)).astype(np.float32)
    if path == "planned":
        wxb.make_step(model, MSELoss(), wxb.optim.SGD(model.parameters(), lr=1e-30))(
            X, y
        )  # too small to move a float32 weight
    else:
        model.use_plan = False
        MSELoss()(model(X), y).backward()
    # the same backward in float64 from the same weights
    W1, b1, W2, b2 = (p.data.astype(np.float64) for p in model.parameters())
    A1 = np.tanh(X.astype(np.float64) @ W1.T + b1)
    delta2 = (A1 @ W2.T + b2 - y) / rows
    delta1 = (delta2 @ W2) * (1 - A1**2)
    # δ's own float32 rounding, amplified where its rows cancel, bounds the error by
    # Σ|δ|·eps, not by |Σ δ|: measured on that scale (about 3e-9 here, 3e-8 before)
    for grad, delta in ((model[2].bias.grad, delta2), (model[0].bias.grad, delta1)):
        error = np.max(np.abs(grad - delta.sum(0))) / np.abs(delta).sum(0).max()
        assert error < 1e-7, error


def test_a_sum_over_many_rows_keeps_float32_rounding(rng):
    """The bias sum alone, on rows that do not cancel: one float32 gemv down 65,536 rows
    erred by 5e-7 to 3e-6; blocks of 1,024 added in float64 stay under 1e-7."""
    from wxb import ops

    rows = int(rng.integers(60_000, 70_000))
    delta = rng.uniform(0, 1, size=(rows, 4)).astype(np.float32)
    got = ops.sum_over_batch(delta)
    assert got.dtype == np.float32
    assert relative(got, delta.astype(np.float64).sum(0)) < 2.5e-7


def test_a_tensor_summed_down_its_rows_and_a_broadcast_gradient(rng):
    rows = int(rng.integers(200_000, 300_000))
    x = (rng.normal(size=(rows, 3)) + 5).astype(np.float32)
    summed = wxb.Tensor(x).sum(axis=0)
    assert summed.dtype == np.float32
    assert relative(summed.data, x.astype(np.float64).sum(0)) < CLOSE
    b = wxb.Tensor(np.zeros(3, np.float32), requires_grad=True)
    weights = wxb.Tensor(x)
    ((weights + b) * weights).sum().backward()  # ∂/∂b = Σ over rows of x
    assert b.grad.dtype == np.float32
    assert relative(b.grad, x.astype(np.float64).sum(0)) < CLOSE


def test_blocked_dots_and_sums_give_inf_and_nan_as_one_dot_does(rng):
    """Blocks added with math.fsum raised on inf − inf and on overflow; a float32 sum
    past float32's range warned on its cast. A plain dot and PyTorch give inf or NaN."""
    import warnings

    from wxb import ops

    size = int(rng.integers(5000, 20000))
    a = np.ones(size, np.float32)
    b = np.zeros(size, np.float32)
    b[0], b[-1] = np.inf, -np.inf
    assert np.isnan(ops.dot64(a, b))
    huge = np.full(size, 3e38, np.float32)
    large = np.full((2048, 3), 3e35, np.float32)  # a block's sum fits float32, two do not
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ops.dot64(huge, huge) == np.inf
        assert np.isinf(ops.sum_over_batch(large)).all()
        assert np.isinf(wxb.Tensor(large).sum(axis=0).data).all()
