"""What a PyTorch user types on wxb tensors, checked against PyTorch in float64.

Each test draws its inputs fresh (the ``rng`` fixture prints its seed; replay with
``WXB_TEST_SEED=<seed>``) and builds the same computation in torch, whose autograd
is the independent reference for every gradient.
"""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from rounding import affine_terms, rounding_atol

import wxb
from wxb import ops
from wxb.nn import BCEWithLogitsLoss, CrossEntropyLoss, Dense, MSELoss, Parameter
from wxb.optim import SGD, clip_grad_norm_
from wxb.tensor import Tensor, enable_grad, is_grad_enabled, no_grad, set_grad_enabled

RTOL = 1e-10  # float64 on both sides: only the order of summation differs


def close(actual, expected, rtol: float = RTOL) -> None:
    expected = expected.detach().numpy() if isinstance(expected, torch.Tensor) else expected
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=rtol, atol=1e-12)


def pair(array: np.ndarray) -> tuple[Tensor, torch.Tensor]:
    """The same float64 leaf in wxb and in torch, both requiring grad."""
    return Tensor(array, requires_grad=True), torch.tensor(array, requires_grad=True)


def dims(rng, count: int) -> tuple[int, ...]:
    return tuple(int(d) for d in rng.integers(2, 6, size=count))


# -- 1. NumPy on the left of a tensor --------------------------------------------------------
LEFT_OPERATORS = {
    "*": lambda w, x: w * x,
    "+": lambda w, x: w + x,
    "-": lambda w, x: w - x,
    "/": lambda w, x: w / x,
}


@pytest.mark.parametrize("symbol", sorted(LEFT_OPERATORS))
def test_an_array_on_the_left_keeps_the_graph(rng, symbol):
    apply = LEFT_OPERATORS[symbol]
    shape = dims(rng, 2)
    w = rng.uniform(0.5, 2.0, size=shape)
    x, tx = pair(rng.uniform(0.5, 2.0, size=shape))
    r = rng.normal(size=shape)
    out = apply(w, x)
    assert isinstance(out, Tensor) and out.requires_grad and out.dtype == np.float64
    (out * r).sum().backward()
    (apply(torch.tensor(w), tx) * torch.tensor(r)).sum().backward()
    close(out.data, apply(torch.tensor(w), tx.detach()))
    close(x.grad, tx.grad)


def test_an_array_matmul_on_the_left_keeps_the_graph(rng):
    m, n, p = dims(rng, 3)
    w = rng.normal(size=(m, n))
    x, tx = pair(rng.normal(size=(n, p)))
    out = w @ x
    assert isinstance(out, Tensor) and out.requires_grad
    r = rng.normal(size=(m, p))
    (out * r).sum().backward()
    ((torch.tensor(w) @ tx) * torch.tensor(r)).sum().backward()
    close(x.grad, tx.grad)


@pytest.mark.parametrize("scalar_type", [np.float64, np.float32, np.int64, np.int32, np.int8])
@pytest.mark.parametrize("symbol", sorted(LEFT_OPERATORS))
def test_a_numpy_scalar_on_the_left_keeps_the_graph(rng, scalar_type, symbol):
    apply = LEFT_OPERATORS[symbol]
    if np.issubdtype(scalar_type, np.floating):
        value = scalar_type(rng.uniform(0.5, 3.0))
    else:
        value = scalar_type(rng.integers(1, 9))
    shape = dims(rng, 2)
    for dtype in ("float64", "float32"):
        data = rng.uniform(0.5, 2.0, size=shape)
        x = Tensor(data, requires_grad=True, dtype=dtype)
        tx = torch.tensor(data, requires_grad=True)
        out = apply(value, x)
        assert isinstance(out, Tensor), f"{scalar_type.__name__} {symbol} Tensor"
        assert out.requires_grad and out.dtype == np.dtype(dtype)  # the tensor's dtype wins
        out.sum().backward()
        apply(float(value), tx).sum().backward()
        close(x.grad, tx.grad, rtol=RTOL if dtype == "float64" else 1e-5)


def test_np_asarray_still_gives_the_tensors_array(rng):
    x = Tensor(rng.normal(size=dims(rng, 2)))
    assert np.asarray(x) is x.data
    assert np.asarray(x, dtype=np.float32).dtype == np.float32
    copied = np.array(x, copy=True)
    assert not np.shares_memory(copied, x.data)
    np.testing.assert_array_equal(copied, x.data)


def test_numpy_functions_refuse_a_tensor_that_requires_grad(rng):
    """np.dot, np.clip, np.where… are not ufuncs: through __array__ they would return an
    array and cut the graph without a word; PyTorch refuses numpy() on such a tensor."""
    p = Tensor(rng.normal(size=(3,)), requires_grad=True)
    W = rng.normal(size=(2, 3))
    for call in (lambda: np.dot(W, p), lambda: np.clip(p, 0, 1), lambda: np.asarray(p)):
        with pytest.raises(TypeError, match="cannot become a NumPy array"):
            call()
    assert np.array_equal(np.dot(W, p.detach()), W @ p.data)  # detached: an array is fine


def test_numpy_ufuncs_run_as_ops_or_are_refused(rng):
    x, tx = pair(rng.uniform(0.5, 2.0, size=dims(rng, 2)))
    r = rng.normal(size=x.shape)
    out = np.exp(x) + np.log(x) + np.sqrt(x) + np.abs(-x) + np.power(x, 3)
    assert isinstance(out, Tensor) and out.requires_grad
    (out * r).sum().backward()
    reference = tx.exp() + tx.log() + tx.sqrt() + (-tx).abs() + tx**3
    (reference * torch.tensor(r)).sum().backward()
    close(out.data, reference)
    close(x.grad, tx.grad)
    with pytest.raises(TypeError, match=r"np\.tan .*cut the graph.*np\.tan\(tensor\.detach\(\)\)"):
        np.tan(x)  # (np.sin, np.cos and np.sign run as wxb ops)
    with pytest.raises(TypeError, match=r"np\.add\.reduce"):
        np.add.reduce(x)
    with pytest.raises(TypeError, match="cut the graph"):
        np.multiply(x, 2.0, out=np.empty(x.shape))
    # comparisons have no gradient to lose: plain boolean arrays, from either side
    threshold = rng.normal(size=x.shape)
    np.testing.assert_array_equal(threshold < x, threshold < x.data)
    np.testing.assert_array_equal(x >= 1.0, x.data >= 1.0)
    np.testing.assert_array_equal(np.isfinite(x), np.ones(x.shape, bool))


# -- 2. a target that is itself computed ---------------------------------------------------
def twin_dense(rng, n: int, m: int) -> tuple[Dense, torch.nn.Linear]:
    layer = Dense(n, m, seed=rng, dtype="float64")
    layer.bias.data[...] = rng.normal(size=m)
    twin = torch.nn.Linear(n, m, dtype=torch.float64)
    with torch.no_grad():
        twin.weight.copy_(torch.tensor(layer.weight.data))
        twin.bias.copy_(torch.tensor(layer.bias.data))
    return layer, twin


def assert_same_gradients(layer: Dense, twin: torch.nn.Linear) -> None:
    close(layer.weight.grad, twin.weight.grad)
    close(layer.bias.grad, twin.bias.grad)


def reduced(per_sample: torch.Tensor, reduction: str, batch: int) -> torch.Tensor:
    """A reference's per-sample losses reduced as wxb's loss reduces them."""
    if reduction == "none":
        return per_sample
    return per_sample.sum() / (batch if reduction == "mean" else 1)


def assert_loss_and_gradients(rng, loss, expected, reduction, layers, seed=1.0) -> None:
    """The loss against the reference, then the gradients of ``seed`` times it (the loss
    not the root when seed ≠ 1) for each (wxb, torch) layer pair. Per-sample losses
    (reduction 'none') are weighted by a draw and summed first, in both libraries: the
    gradients then depend on every sample's own factor."""
    close(loss.data, expected)
    if reduction == "none":
        weights = rng.uniform(-1, 2, size=tuple(expected.shape))
        loss, expected = (loss * weights).sum(), (expected * torch.tensor(weights)).sum()
    (loss * seed).backward()
    (expected * seed).backward()
    for ours, theirs in layers:
        assert_same_gradients(ours, theirs)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_between_two_models_sends_gradient_to_both(rng, reduction):
    batch, n, m = dims(rng, 3)
    a, ta = twin_dense(rng, n, m)
    b, tb = twin_dense(rng, n, m)
    X = rng.normal(size=(batch, n))
    loss = MSELoss(reduction)(a(X), b(X))
    # wxb's MSE is ½‖ŷ − y‖² per sample, averaged over the batch (not over elements)
    diff = ta(torch.tensor(X)) - tb(torch.tensor(X))
    expected = reduced(0.5 * (diff**2).sum(dim=1), reduction, batch)
    assert_loss_and_gradients(rng, loss, expected, reduction, [(a, ta), (b, tb)])


def test_mse_target_gradient_without_an_output_gradient(rng):
    batch, n, m = dims(rng, 3)
    b, tb = twin_dense(rng, n, m)
    X, fixed = rng.normal(size=(batch, n)), rng.normal(size=(batch, m))
    MSELoss()(Tensor(fixed), b(X)).backward()
    (0.5 * ((torch.tensor(fixed) - tb(torch.tensor(X))) ** 2).sum() / batch).backward()
    assert_same_gradients(b, tb)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_sends_gradient_to_a_target_tensor(rng, reduction):
    batch, n, m = dims(rng, 3)
    a, ta = twin_dense(rng, n, m)
    b, tb = twin_dense(rng, n, m)
    X = rng.normal(size=(batch, n))
    loss = BCEWithLogitsLoss(reduction)(a(X), ops.sigmoid(b(X)))
    tX = torch.tensor(X)
    expected = F.binary_cross_entropy_with_logits(
        ta(tX), torch.sigmoid(tb(tX)), reduction=reduction
    )
    # (with reduction 'none', a loss per element, as PyTorch's); not the root: the seed
    # scales both gradients
    assert_loss_and_gradients(rng, loss, expected, reduction, [(a, ta), (b, tb)], seed=3.0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_sends_gradient_to_probability_targets(rng, reduction):
    batch, n, classes = dims(rng, 3)
    a, ta = twin_dense(rng, n, classes)
    b, tb = twin_dense(rng, n, classes)
    X = rng.normal(size=(batch, n)) * 3
    loss = CrossEntropyLoss(reduction)(a(X), ops.softmax(b(X)))
    tX = torch.tensor(X)
    # −Σ p·log softmax(z), written out so the reference does not hinge on F.cross_entropy
    expected = -(torch.softmax(tb(tX), dim=1) * torch.log_softmax(ta(tX), dim=1)).sum(dim=1)
    expected = reduced(expected, reduction, batch)
    assert_loss_and_gradients(rng, loss, expected, reduction, [(a, ta), (b, tb)])


def test_class_index_targets_and_constant_targets_are_no_inputs(rng):
    batch, n, classes = dims(rng, 3)
    a, ta = twin_dense(rng, n, classes)
    X, y = rng.normal(size=(batch, n)), rng.integers(0, classes, size=batch)
    loss = CrossEntropyLoss()(a(X), y)
    assert len(loss.inputs) == 1
    loss.backward()
    F.cross_entropy(ta(torch.tensor(X)), torch.tensor(y)).backward()
    assert_same_gradients(a, ta)
    target = Tensor(rng.normal(size=(batch, classes)))  # requires no grad: stays a constant
    assert len(MSELoss()(a(X), target).inputs) == 1
    with no_grad():  # nothing recorded, whatever the target
        assert not MSELoss()(a(X), Tensor(target.data, requires_grad=True)).requires_grad


# -- 3. a scalar parameter's gradient is a 0-d array ---------------------------------------
SCALAR_EXPRESSIONS = {
    "p·x summed": lambda p, x: (p * x).sum(),
    "p·3": lambda p, x: p * 3.0,
    "p·p": lambda p, x: p * p,
    "p + p − p": lambda p, x: p + p - p,
    "Σp": lambda p, x: p.sum(),
    "mean p": lambda p, x: p.mean(),
    "p²": lambda p, x: p**2,
    "p / 3": lambda p, x: p / 3.0,
    "3 / p": lambda p, x: 3.0 / p,
    "exp p": lambda p, x: p.exp(),
    "mse(p·x)": None,
}


@pytest.mark.parametrize("name", sorted(SCALAR_EXPRESSIONS))
def test_a_scalar_parameter_gets_a_0d_array_gradient(rng, name):
    value = float(rng.uniform(0.5, 2.0))
    x_data = rng.normal(size=dims(rng, 2))
    p = Parameter(np.array(value), dtype="float64")
    tp = torch.tensor(value, dtype=torch.float64, requires_grad=True)
    x, tx = Tensor(x_data), torch.tensor(x_data)
    target = rng.normal(size=x_data.shape)
    for _ in range(2):  # the second pass accumulates: still an array
        if SCALAR_EXPRESSIONS[name] is None:
            MSELoss()(p * x, target).backward()
            (0.5 * ((tp * tx - torch.tensor(target)) ** 2).sum() / len(x_data)).backward()
        else:
            SCALAR_EXPRESSIONS[name](p, x).backward()
            SCALAR_EXPRESSIONS[name](tp, tx).backward()
        assert type(p.grad) is np.ndarray and p.grad.shape == ()
        close(p.grad, tp.grad)


def test_clipping_and_zeroing_reach_a_scalar_parameters_gradient(rng):
    value, factor = (float(v) for v in rng.uniform(1.0, 3.0, size=2))
    w_data = rng.normal(size=dims(rng, 2))
    p, w = Parameter(np.array(value), dtype="float64"), Parameter(w_data, dtype="float64")
    tp = torch.tensor(value, dtype=torch.float64, requires_grad=True)
    tw = torch.tensor(w_data, requires_grad=True)
    ((p * w).sum() * factor).backward()
    ((tp * tw).sum() * factor).backward()
    assert type(p.grad) is np.ndarray and p.grad.shape == ()
    held = p.grad
    max_norm = float(rng.uniform(0.01, 0.1))  # below the norm: clipping scales
    total = clip_grad_norm_([p, w], max_norm)
    expected = torch.nn.utils.clip_grad_norm_([tp, tw], max_norm)
    close(total, expected)
    assert p.grad is held  # scaled in place, as the planned path's gradient views need
    close(p.grad, tp.grad, rtol=1e-6)  # torch divides by norm + 1e-6 too
    close(w.grad, tw.grad, rtol=1e-6)
    optimizer = SGD([p, w], lr=0.1)
    optimizer.zero_grad(set_to_none=False)
    assert type(p.grad) is np.ndarray and p.grad.shape == () and p.grad == 0
    assert not w.grad.any()


# -- 4. operators and methods ---------------------------------------------------------------
def check_against_torch(rng, build, *arrays) -> None:
    """build(*tensors) in wxb and in torch; outputs and every input's gradient agree."""
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, expected = build(*ours), build(*theirs)
    assert isinstance(out, Tensor) and out.shape == tuple(expected.shape)
    close(out.data, expected)
    r = rng.normal(size=out.shape)
    (out * r).sum().backward()
    (expected * torch.tensor(r)).sum().backward()
    for mine, reference in zip(ours, theirs, strict=True):
        close(mine.grad, reference.grad)


def test_division_on_both_sides(rng):
    rows, cols = dims(rng, 2)
    a = rng.uniform(0.5, 2.0, size=(rows, cols)) * rng.choice([-1, 1], size=(rows, cols))
    b = rng.uniform(0.5, 2.0, size=cols)  # broadcast over the rows
    number = float(rng.uniform(0.5, 3.0))
    check_against_torch(rng, lambda x, y: x / y, a, b)
    check_against_torch(rng, lambda x, y: y / x, a, b)
    check_against_torch(rng, lambda x: number / x, a)
    check_against_torch(rng, lambda x: x / number, a)


def test_power(rng):
    shape = dims(rng, 2)
    positive, signed = rng.uniform(0.5, 2.0, size=shape), rng.normal(size=shape)
    exponent = float(rng.uniform(-2.0, 3.0))
    check_against_torch(rng, lambda x: x**2, signed)
    check_against_torch(rng, lambda x: x**3 - x**-1, positive)
    check_against_torch(rng, lambda x: x**exponent, positive)
    check_against_torch(rng, lambda x, y: x**y, positive, signed)
    base = float(rng.uniform(0.5, 3.0))
    check_against_torch(rng, lambda x: base**x, signed)
    with_zeros = np.where(rng.random(size=shape) < 0.5, 0.0, signed)
    exponents = rng.uniform(1.0, 3.0, size=shape)
    check_against_torch(rng, lambda x: -(x**0), with_zeros)  # 0·0⁻¹: 0, not nan
    check_against_torch(rng, lambda x, y: x**y, np.abs(with_zeros), exponents)  # 0^y·log 0: 0


def test_indexing(rng):
    rows, cols = (int(d) for d in rng.integers(3, 7, size=2))
    data = rng.normal(size=(rows, cols))
    i = int(rng.integers(-rows, rows))
    picks = rng.integers(0, rows, size=2 * rows)  # repeats: their gradients must add up
    keys = {
        "t[i]": i,
        "t[i, j]": (i, cols - 1),
        "t[:, 1:3]": (slice(None), slice(1, 3)),
        "t[1:, ::2]": (slice(1, None), slice(None, None, 2)),
        "t[..., 0]": (Ellipsis, 0),
        "t[None, i]": (None, i),
        "t[picks]": picks,
        "t[list]": picks.tolist(),
        "t[mask]": rng.random(size=(rows, cols)) < 0.5,
        "t[row_mask]": rng.random(size=rows) < 0.5,
        "t[rows, cols]": (rng.integers(0, rows, size=5), rng.integers(0, cols, size=5)),
        "t[picks, 1:]": (picks, slice(1, None)),
    }

    def for_torch(key):
        if isinstance(key, tuple):
            return tuple(for_torch(k) for k in key)
        return torch.tensor(key) if isinstance(key, np.ndarray) else key

    for name, key in keys.items():
        ours = Tensor(data, requires_grad=True)
        theirs = torch.tensor(data, requires_grad=True)
        out, expected = ours[key], theirs[for_torch(key)]
        assert out.shape == tuple(expected.shape), name
        close(out.data, expected)
        r = rng.normal(size=out.shape)
        (out * r).sum().backward()
        (expected * torch.tensor(r)).sum().backward()
        close(ours.grad, theirs.grad)


def test_iterating_a_tensor_gives_its_rows_with_gradients(rng):
    data = rng.normal(size=dims(rng, 2))
    x = Tensor(data, requires_grad=True)
    weights = rng.normal(size=len(data))
    total = Tensor(0.0, dtype="float64")
    for weight, row in zip(weights, x, strict=True):
        total = total + weight * row.sum()
    total.backward()
    np.testing.assert_allclose(x.grad, np.repeat(weights[:, None], data.shape[1], axis=1))
    with pytest.raises(TypeError, match="0-d"):
        iter(Tensor(1.0))


def test_reshape(rng):
    a, b, c = dims(rng, 3)
    data = rng.normal(size=(a, b, c))
    check_against_torch(rng, lambda x: x.reshape(a * b, c), data)
    check_against_torch(rng, lambda x: x.reshape((c, -1)), data)
    check_against_torch(rng, lambda x: x.reshape(-1), data)
    with pytest.raises(wxb.ShapeError, match="reshape"):
        Tensor(data).reshape(a * b * c + 1)


def reduction(method: str, axis, keepdims: bool):
    """x.sum / x.mean over ``axis``, in wxb's words (axis, keepdims) or torch's (dim, keepdim)."""

    def build(x):
        if isinstance(x, Tensor):
            return getattr(x, method)(axis=axis, keepdims=keepdims)
        dim = tuple(range(x.ndim)) if axis is None else axis
        return getattr(x, method)(dim=dim, keepdim=keepdims)

    return build


def test_sum_and_mean_over_several_axes(rng):
    data = rng.normal(size=dims(rng, 3))
    for axis in [None, 0, -1, (0, 2), (-1, -2), [1, 2], (0, 1, 2)]:
        for keepdims in (False, True):
            check_against_torch(rng, reduction("sum", axis, keepdims), data)
            check_against_torch(rng, reduction("mean", axis, keepdims), data)


def test_exp_log_sqrt_abs(rng):
    shape = dims(rng, 2)
    positive, signed = rng.uniform(0.1, 3.0, size=shape), rng.normal(size=shape)
    check_against_torch(rng, lambda x: x.exp(), signed)
    check_against_torch(rng, lambda x: x.log(), positive)
    check_against_torch(rng, lambda x: x.sqrt(), positive)
    check_against_torch(rng, lambda x: x.abs(), signed)
    check_against_torch(rng, lambda x: (x * x).sqrt().log().exp() - x.abs(), signed)


# -- 5. a second backward, retain_graph and retained gradients ----------------------------
class TwoLayers(wxb.nn.Module):
    """A custom module: its graph is recorded op by op, never through the planned stack."""

    def __init__(self, first: Dense, second: Dense) -> None:
        super().__init__()
        self.first, self.second = first, second

    def forward(self, x: Tensor) -> Tensor:
        return self.second(ops.tanh(self.first(x)))


def custom_model_and_twin(rng):
    batch, n, h, m = dims(rng, 4)
    first, t_first = twin_dense(rng, n, h)
    second, t_second = twin_dense(rng, h, m)
    X, y = rng.normal(size=(batch, n)), rng.normal(size=(batch, m))
    model = TwoLayers(first, second)

    def torch_loss():
        out = t_second(torch.tanh(t_first(torch.tensor(X))))
        return 0.5 * ((out - torch.tensor(y)) ** 2).sum() / batch

    return (first, second), (t_first, t_second), MSELoss()(model(X), y), torch_loss


def test_a_second_backward_through_a_freed_graph_raises(rng):
    layers, twins, loss, torch_loss = custom_model_and_twin(rng)
    loss.backward()
    torch_loss().backward()
    with pytest.raises(wxb.TrainingError, match=r"a second time.*retain_graph=True"):
        loss.backward()
    for layer, twin in zip(layers, twins, strict=True):  # not doubled by the refused pass
        assert_same_gradients(layer, twin)
    with pytest.raises(wxb.TrainingError, match="retain_graph=True"):
        (loss * 2.0).backward()  # a new node over the freed graph: refused as well


def test_retain_graph_lets_backward_run_again_and_accumulate(rng):
    layers, twins, loss, torch_loss = custom_model_and_twin(rng)
    reference = torch_loss()
    passes = int(rng.integers(2, 4))
    for _ in range(passes - 1):
        loss.backward(retain_graph=True)
        reference.backward(retain_graph=True)
    loss.backward()
    reference.backward()
    for layer, twin in zip(layers, twins, strict=True):
        assert_same_gradients(layer, twin)
    with pytest.raises(wxb.TrainingError, match="retain_graph=True"):
        loss.backward(retain_graph=True)  # the last pass freed it


def test_a_layer_by_layer_sequential_refuses_a_second_backward(rng):
    model = wxb.nn.Sequential(Dense(3, 4, seed=rng), wxb.nn.ReLU(), Dense(4, 2, seed=rng))
    model.use_plan = False
    loss = CrossEntropyLoss()(model(rng.normal(size=(5, 3))), rng.integers(0, 2, size=5))
    loss.backward()
    grads = [p.grad.copy() for p in model.parameters()]
    with pytest.raises(wxb.TrainingError, match="retain_graph=True"):
        loss.backward()
    for p, grad in zip(model.parameters(), grads, strict=True):
        np.testing.assert_array_equal(p.grad, grad)


def test_a_retained_gradient_accumulates_like_torchs(rng):
    x_data = rng.normal(size=dims(rng, 2))
    x, tx = pair(x_data)
    middle = ops.tanh(x * 2.0).retain_grad()
    t_middle = torch.tanh(tx * 2.0)
    t_middle.retain_grad()
    weights = rng.normal(size=x_data.shape)
    loss = (middle * middle * weights).sum()
    t_loss = (t_middle * t_middle * torch.tensor(weights)).sum()
    loss.backward(retain_graph=True)
    t_loss.backward(retain_graph=True)
    loss.backward()
    t_loss.backward()
    close(middle.grad, t_middle.grad)
    close(x.grad, tx.grad)
    assert not np.shares_memory(middle.grad, x.grad)
    kept = middle.grad.copy()
    x.grad *= 0  # an in-place change to the leaf's gradient must not reach the retained one
    np.testing.assert_array_equal(middle.grad, kept)


def test_a_held_gradient_sees_later_backward_calls_add_to_it_as_in_torch(rng):
    """``g = p.grad`` then another backward: PyTorch adds into the same tensor, so g
    (and an array the user assigned as the gradient) holds the sum; wxb rebound a new
    array and g kept the first backward's part."""
    shape = dims(rng, 2)
    x, tx = pair(rng.normal(size=shape))
    y, ty = pair(rng.normal(size=shape))
    weights = rng.normal(size=shape)
    mine, theirs = rng.normal(size=shape), None
    y.grad, ty.grad = mine, torch.tensor(mine.copy())
    theirs = ty.grad
    middle = ops.tanh(x * y).retain_grad()
    t_middle = torch.tanh(tx * ty)
    t_middle.retain_grad()
    loss = (middle * middle * weights).sum()
    t_loss = (t_middle * t_middle * torch.tensor(weights)).sum()
    loss.backward(retain_graph=True)
    t_loss.backward(retain_graph=True)
    held, t_held = x.grad, tx.grad
    held_middle, t_held_middle = middle.grad, t_middle.grad
    for _ in range(int(rng.integers(1, 4))):
        loss.backward(retain_graph=True)
        t_loss.backward(retain_graph=True)
    assert held is x.grad and t_held is tx.grad and theirs is ty.grad
    close(held, t_held)
    close(mine, theirs)
    close(held_middle, t_held_middle)  # a retained grad is a new tensor each time
    assert (held_middle is middle.grad) == (t_held_middle is t_middle.grad)
    close(middle.grad, t_middle.grad)
    close(y.grad, ty.grad)


def test_a_retained_root_does_not_keep_the_callers_seed(rng):
    x = Tensor(rng.normal(size=(3, 2)), requires_grad=True)
    out = (x * 2.0).retain_grad()
    seed = rng.normal(size=(3, 2))
    out.backward(seed)
    assert not np.shares_memory(out.grad, seed)
    np.testing.assert_array_equal(out.grad, seed)


# -- 6. grad mode per thread ----------------------------------------------------------------
def test_grad_mode_is_kept_per_thread(rng):
    barrier = threading.Barrier(2, timeout=30)  # a broken order fails, never hangs
    seen: dict[str, list[bool]] = {"first": [], "second": []}
    errors: list[BaseException] = []
    x = Tensor(rng.normal(size=3), requires_grad=True)

    def record(who: str) -> None:
        recorded = (x * 2.0).requires_grad
        assert recorded == is_grad_enabled()
        seen[who].append(recorded)

    def first() -> None:  # enters first, leaves first: the order that broke a global flag
        try:
            with no_grad():
                record("first")
                barrier.wait()  # 1: the second thread enters its block
                barrier.wait()  # 2
            record("first")
            barrier.wait()  # 3: the second thread looks while still inside
            barrier.wait()  # 4
        except BaseException as error:  # the main thread reports it
            errors.append(error)
            barrier.abort()

    def second() -> None:
        try:
            barrier.wait()  # 1
            with no_grad():
                record("second")
                barrier.wait()  # 2: the first thread leaves its block
                barrier.wait()  # 3
                record("second")
            barrier.wait()  # 4
            record("second")
        except BaseException as error:
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=job, daemon=True) for job in (first, second)]
    with no_grad():  # the main thread's mode is its own too
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not is_grad_enabled()
    assert not errors, errors
    assert seen == {"first": [False, True], "second": [False, False, True]}
    assert is_grad_enabled() and (x * 2.0).requires_grad


def test_a_new_thread_starts_with_grad_enabled():
    seen = []
    with no_grad():
        thread = threading.Thread(target=lambda: seen.append(is_grad_enabled()), daemon=True)
        thread.start()
        thread.join(timeout=30)
    assert seen == [True]


def test_enable_grad_and_set_grad_enabled(rng):
    x = Tensor(rng.normal(size=3), requires_grad=True)
    with no_grad():
        with enable_grad():
            assert (x * 2.0).requires_grad
        assert not (x * 2.0).requires_grad
    with set_grad_enabled(False):
        assert not (x * 2.0).requires_grad
        with set_grad_enabled(True):
            assert (x * 2.0).requires_grad
        assert not is_grad_enabled()
    assert is_grad_enabled()
    set_grad_enabled(False)  # as a plain call: switches at once, as PyTorch's does
    try:
        assert not (x * 2.0).requires_grad
    finally:
        set_grad_enabled(True)
    assert (x * 2.0).requires_grad


def test_no_grad_as_a_decorator_and_one_instance_entered_inside_itself(rng):
    x = Tensor(rng.normal(size=3), requires_grad=True)

    @no_grad()
    def depth(n):  # recursion: each call has its own block, as with PyTorch's decorator
        assert not (x * 2.0).requires_grad
        if n:
            depth(n - 1)
        assert not is_grad_enabled()
        return n

    assert depth(3) == 3 and is_grad_enabled()
    switch = no_grad()
    with switch:
        with switch:
            assert not is_grad_enabled()
        assert not is_grad_enabled()
    assert is_grad_enabled()
    with no_grad():
        with enable_grad() as inner:
            assert inner is None and (x * 2.0).requires_grad
        assert not is_grad_enabled()
    with pytest.raises(KeyError):
        with no_grad():
            raise KeyError("a failing block still puts the mode back")
    assert is_grad_enabled()


# -- 7. dtypes -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float16, np.longdouble, np.complex128])
def test_unsupported_float_arrays_are_refused_with_the_supported_dtypes(rng, dtype):
    if np.dtype(dtype) == np.float64:  # longdouble is float64 on some platforms
        pytest.skip("longdouble is float64 here")
    data = rng.normal(size=dims(rng, 2)).astype(dtype)
    with pytest.raises(wxb.DataError, match=r"float32 or float64.*astype\(np\.float32\)"):
        Tensor(data)
    with pytest.raises(wxb.DataError, match="float32 or float64"):
        Parameter(data)
    if dtype is not np.complex128:  # an explicit dtype is a cast the user asked for
        cast = Tensor(data, dtype="float32")
        assert cast.dtype == np.float32
        np.testing.assert_array_equal(cast.data, data.astype(np.float32))


def test_integer_and_listed_data_take_the_default_dtype(rng):
    ints = rng.integers(-5, 5, size=dims(rng, 2))
    assert Tensor(ints).dtype == np.float32
    np.testing.assert_array_equal(Tensor(ints).data, ints)
    assert Tensor(ints.tolist()).dtype == np.float32
    assert Tensor(rng.normal(size=3)).dtype == np.float64  # a float64 array stays float64


# -- 8. in-place operators, comparisons, truth ------------------------------------------------
IN_PLACE = {
    "+=": lambda t, x: t.__iadd__(x),
    "-=": lambda t, x: t.__isub__(x),
    "*=": lambda t, x: t.__imul__(x),
    "/=": lambda t, x: t.__itruediv__(x),
}


def test_a_hand_written_update_under_no_grad_changes_the_model_as_in_pytorch(rng):
    n, m, lr = *dims(rng, 2), float(rng.uniform(0.01, 0.5))
    layer, twin = twin_dense(rng, n, m)
    X = rng.normal(size=(int(rng.integers(1, 6)), n))
    for step in range(3):
        if step == 2:  # an optimiser holds the parameters in its flat buffer now
            SGD(layer.parameters(), lr=lr)
        for p in layer.parameters():
            p.grad = None
        twin.zero_grad()
        (layer(X) ** 2).sum().backward()
        (twin(torch.tensor(X)) ** 2).sum().backward()
        with no_grad():
            for p in layer.parameters():
                p -= lr * p.grad
        with torch.no_grad():
            for p in twin.parameters():
                p -= lr * p.grad
        close(layer.weight.data, twin.weight)
        close(layer.bias.data, twin.bias)
    close(layer(X).data, twin(torch.tensor(X)))


def test_a_hand_written_update_of_a_scalar_parameter_reassigned_by_arithmetic(rng):
    # gain.data = gain.data * 2 on a 0-d parameter stores the NumPy scalar NumPy's
    # arithmetic gives; `gain -= lr * gain.grad` under no_grad then said the array was
    # read-only, and `gain[...] = x` too, where PyTorch updates it
    value, lr = float(rng.uniform(0.5, 2)), float(rng.uniform(0.01, 0.5))
    gain, tgain = (
        Parameter(np.array(value), dtype="float64"),
        torch.nn.Parameter(torch.tensor(value, dtype=torch.float64)),
    )
    x = rng.normal(size=int(rng.integers(2, 6)))
    gain.data = gain.data * 2
    with torch.no_grad():
        tgain.data = tgain.data * 2
    for _ in range(2):
        gain.grad, tgain.grad = None, None
        (Tensor(x) * gain).sum().backward()
        (torch.tensor(x) * tgain).sum().backward()
        with no_grad():
            gain -= lr * gain.grad
            gain *= 0.5
        with torch.no_grad():
            tgain -= lr * tgain.grad
            tgain *= 0.5
        close(gain.data, tgain)
    with no_grad():
        gain.data = gain.data + 1
        gain[...] = value
    assert float(gain.data) == value and gain.data.shape == ()


@pytest.mark.parametrize("symbol", list(IN_PLACE))
def test_in_place_operators_change_the_tensor_and_every_name_for_it(rng, symbol):
    shape = dims(rng, 2)
    data, other = rng.uniform(0.5, 2, size=shape), rng.uniform(0.5, 2, size=shape[1:])
    t, alias = Tensor(data.copy()), None
    alias = t
    reference = torch.tensor(data)
    result = IN_PLACE[symbol](t, other)
    IN_PLACE[symbol](reference, torch.tensor(other))
    assert result is t and alias is t
    close(t.data, reference)
    close(IN_PLACE[symbol](t, Tensor(other)).data, IN_PLACE[symbol](reference, torch.tensor(other)))
    with pytest.raises(wxb.ShapeError, match=f"in-place {re.escape(symbol)}"):
        IN_PLACE[symbol](Tensor(other), data)  # the result would be larger than the tensor


def test_in_place_operators_are_refused_where_they_would_lose_a_gradient(rng):
    w, torch_w = pair(rng.normal(size=3))
    with pytest.raises(wxb.TrainingError, match="in-place"):
        w += 1.0
    with pytest.raises(RuntimeError, match="in-place"):
        torch_w += 1.0  # PyTorch refuses it on a leaf too
    h, torch_h = w * 2.0, torch_w * 2.0
    h += 1.0  # on a computed tensor, recorded as PyTorch records it
    torch_h += 1.0
    plain, torch_plain = Tensor(np.zeros(3)), torch.zeros(3, dtype=torch.float64)
    plain += w  # plain joins the graph, as in PyTorch
    torch_plain += torch_w
    (h * h * plain).sum().backward()
    (torch_h * torch_h * torch_plain).sum().backward()
    np.testing.assert_allclose(w.grad, torch_w.grad.numpy(), rtol=1e-12)
    x = Tensor(rng.normal(size=3))
    y = (w * x).sum()  # ∂y/∂w reads x
    x *= 2.0
    with pytest.raises(wxb.TrainingError, match="modified in place"):
        y.backward()
    with no_grad():
        w += 1.0  # an update, as optimisers make
    assert w._version == 1


def test_comparisons_give_masks_and_tensors_hash_by_identity(rng):
    data = rng.integers(0, 3, size=dims(rng, 2)).astype(np.float64)
    t, reference = Tensor(data), torch.tensor(data)
    np.testing.assert_array_equal(t == 0, (reference == 0).numpy())
    np.testing.assert_array_equal(t != 1, (reference != 1).numpy())
    np.testing.assert_array_equal(t == Tensor(data), np.ones(data.shape, bool))
    assert int((t == 0).sum()) == int((reference == 0).sum())
    assert t[t == 0].shape == tuple(reference[reference == 0].shape)
    same = Tensor(data)
    assert {t: "t", same: "same"}[same] == "same" and len({t, same, t}) == 2


def test_truth_of_a_tensor_as_pytorch(rng):
    for value in (0.0, -0.0, 1.0, float(rng.normal())):
        assert bool(Tensor(np.array([value]))) == bool(torch.tensor([value]))
        assert bool(Tensor(np.array(value))) == bool(torch.tensor(value))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(Tensor(rng.normal(size=dims(rng, 1))))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(Tensor(np.zeros(0)))


def test_abs_and_the_mean_of_nothing_as_pytorch(rng):
    w, torch_w = pair(rng.normal(size=dims(rng, 2)))
    abs(w).sum().backward()
    abs(torch_w).sum().backward()
    close(w.grad, torch_w.grad)
    empty = np.zeros((0, 3))
    assert np.isnan(Tensor(empty).mean().data) and torch.tensor(empty).mean().isnan()
    close(Tensor(empty).mean(axis=0).data, torch.tensor(empty).mean(dim=0))


def test_numpy_float_scalars_keep_their_dtype_and_leaves_get_gradients_in_theirs(rng):
    value = float(rng.normal())
    for scalar in (np.float64(value), np.float32(value)):
        assert Tensor(scalar).dtype == torch.tensor(scalar).numpy().dtype
        assert float(Tensor(scalar).data) == float(scalar)
    a = Tensor(rng.normal(size=3).astype(np.float32), requires_grad=True)
    b = Tensor(rng.normal(size=3), requires_grad=True)  # float64
    ta, tb = torch.tensor(a.data, requires_grad=True), torch.tensor(b.data, requires_grad=True)
    for _ in range(2):  # the second backward adds to the first gradient
        (a * b).sum().backward()
        (ta * tb).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    close(a.grad, ta.grad, rtol=1e-6)
    close(b.grad, tb.grad, rtol=1e-6)


def test_a_change_through_a_view_or_detach_counts_for_the_tensor_as_in_pytorch(rng):
    """Views share their base's version (as PyTorch's share one counter): a graph that read
    W refuses backward after W changed through W.detach(), W.T, W[0] or W.reshape()."""
    changes = {
        "detach": lambda W: W.detach().__iadd__(10.0),
        "T": lambda W: W.T.__isub__(1.0),
        "row": lambda W: W[0].__imul__(2.0),
        "reshape": lambda W: W.reshape(-1).__itruediv__(3.0),
        "setitem": lambda W: W.__setitem__((0, 0), 7.0),
    }
    for name, change in changes.items():
        W = Tensor(rng.normal(size=(2, 3)), requires_grad=True)
        x = Tensor(rng.normal(size=(4, 3)), requires_grad=True)
        y = (x @ W.T).sum()
        before = W.data.copy()
        with no_grad():
            change(W)
        assert not np.array_equal(W.data, before), name  # the change reached W itself
        with pytest.raises(wxb.TrainingError, match="modified in place"):
            y.backward()


def test_setting_items_of_a_parameter_under_no_grad_as_in_pytorch(rng):
    data = rng.normal(size=(3, 4))
    p, torch_p = Parameter(data.copy()), torch.nn.Parameter(torch.tensor(data))
    row, value = int(rng.integers(3)), float(rng.normal())
    with no_grad():
        p[row] += value
        p[:, 1] = 0.0
    with torch.no_grad():
        torch_p[row] += value
        torch_p[:, 1] = 0.0
    close(p.data, torch_p)
    with pytest.raises(wxb.TrainingError, match=r"in-place|t\[\.\.\.\] = x"):
        p[0] += 1.0
    with pytest.raises(wxb.TrainingError, match=r"t\[\.\.\.\] = x"):
        p[0] = 1.0
    close(p.data, torch_p)  # nothing half-done


def test_a_parameter_made_from_a_tensor_counts_its_own_changes(rng):
    """Parameter(t) copies t's array, so it has a version counter of its own: a step on
    it is seen by its graphs, and a change to t is not. (p ⊙ p reads p; p ⊙ x with a
    constant x reads x alone, and torch's backward then runs after a step, as wxb's.)"""
    x = Tensor(rng.normal(size=3))
    source = Tensor(rng.normal(size=3))
    p = Parameter(source)
    opt = SGD([p], lr=0.1)
    (p * x).sum().backward()
    pending = (p * p * x).sum()
    opt.step()
    with pytest.raises(wxb.TrainingError, match="modified in place"):
        pending.backward()
    loss = (p * x).sum()
    with no_grad():
        source += 1.0
    loss.backward()  # p's array is its own: nothing it read changed


def test_detach_does_not_keep_the_graph_alive(rng):
    import gc
    import weakref

    from wxb.nn import ReLU, Sequential

    model = Sequential(Dense(4, 16, seed=1), ReLU(), Dense(16, 3, seed=2))
    X = rng.normal(size=(8, 4)).astype(np.float32)
    out = model(X)
    kept = out.detach()
    node = weakref.ref(out)
    del out
    gc.collect()
    assert node() is None and kept.shape == (8, 3)
    assert len(model._plans().training) == 1  # its plan is free again


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix's own
def test_a_numpy_matrix_becomes_a_plain_tensor(rng):
    """np.matrix (what scipy.sparse's todense() gives) keeps its own * and indexing: a
    Tensor of one broadcast t[:, 0] + v into a matrix and doubled the gradient."""
    values = rng.normal(size=(int(rng.integers(2, 5)), 3))
    v = rng.normal(size=len(values))
    results = []
    for data in (values, np.asmatrix(values)):
        t = wxb.Tensor(data, requires_grad=True)
        out = t[:, 0] + v
        out.sum().backward()
        assert type(t.data) is np.ndarray
        results.append((out.data, t.grad))
    np.testing.assert_array_equal(results[1][0], results[0][0])
    np.testing.assert_array_equal(results[1][1], results[0][1])


@pytest.mark.parametrize("order", [">i8", ">i4", "<i4"])
def test_class_indices_in_any_byte_order(rng, order):
    """Big-endian class indices (from a file written on another machine) give the loss
    native ones give (the compiled loop refused them with a numba typing error)."""
    z = rng.normal(size=(int(rng.integers(2, 9)), 4))
    y = rng.integers(0, 4, len(z))
    loss = wxb.nn.CrossEntropyLoss()
    expected = float(loss(wxb.Tensor(z), y).data)
    assert float(loss(wxb.Tensor(z), y.astype(order)).data) == expected


# -- a third hunt off the well-tested path ---------------------------------------------------
@pytest.mark.parametrize("grad_mode", [False, True])
def test_an_activation_block_reused_at_other_widths_gives_each_width(rng, grad_mode):
    # a Sequential with no Dense takes any width: its planned buffers kept the first
    # width's shape (stale values to the right; a wider input wrote past them)
    from wxb.nn import Sequential, Tanh

    block = Sequential(Tanh())
    for width in [int(w) for w in rng.integers(1, 9, size=6)]:
        X = rng.normal(size=(int(rng.integers(1, 6)), width)).astype(np.float32)
        with set_grad_enabled(grad_mode):
            out = block(X).data
        np.testing.assert_array_equal(out.shape, X.shape)
        np.testing.assert_allclose(out, np.tanh(X), rtol=1e-6, atol=1e-7)


def test_a_dense_weight_replaced_by_another_shape_runs_planned_as_layer_by_layer(rng):
    from wxb.nn import Sequential, Tanh

    d = Dense(3, 2, dtype="float64")
    d.weight = Parameter(rng.normal(size=(5, 3)))
    d.bias = Parameter(rng.normal(size=5))
    assert (d.in_features, d.out_features) == (3, 5)
    X = rng.normal(size=(4, 3))
    model = Sequential(d, Tanh())
    close(model(X).data, np.tanh(X @ d.weight.data.T + d.bias.data))
    model.dense1.weight = Parameter(rng.normal(size=(5, 4)))  # no longer chains with X's 3
    with pytest.raises(wxb.ConfigError, match="takes 4 features but the layer before gives"):
        wxb.save(Sequential(Dense(3, 3, dtype="float64"), model), "never-written.safetensors")


def test_bce_loss_value_is_summed_element_by_element(rng):
    # Σmax(z,0) − Σz·y + Σsoftplus cancelled two large sums: 1e-2 relative in float32
    n = int(rng.integers(20_000, 70_000))
    y = rng.integers(0, 2, size=(n, 1)).astype(np.float32)
    z = (np.where(y == 1, 1.0, -1.0) * rng.uniform(10, 30, size=(n, 1))).astype(np.float32)
    z[0, 0], y[0, 0] = -0.01, 1.0  # one wrong, so the loss is not all rounding
    ours = float(BCEWithLogitsLoss("sum")(Tensor(z), y).data)
    z64, y64 = z.astype(np.float64), y.astype(np.float64)
    exact = float(np.sum(np.logaddexp(0.0, z64) - z64 * y64))  # log(1 + e^z) − z·y
    assert abs(ours - exact) / exact < 1e-5


def test_a_user_activation_kernel_that_returns_its_result_runs_planned_too(rng):
    from wxb.nn import Activation, Sequential

    class Sin:
        name = "sin"

        def forward(self, z, out):
            return np.sin(z)  # returns A and leaves out alone

        def backward(self, z, a, grad, out):
            return grad * np.cos(z)

    d = Dense(3, 4, dtype="float64")
    model = Sequential(d, Activation(Sin()))
    assert model.why_not_planned() is None
    X = rng.normal(size=(5, 3))
    expected = np.sin(X @ d.weight.data.T + d.bias.data)
    with no_grad():
        close(model(X).data, expected)
    close(model(X).data, expected)


@pytest.mark.parametrize("name", ["forward", "predict", "parameters", "layers"])
def test_a_layer_named_like_a_sequential_method_is_refused(name):
    from wxb.nn import Sequential, Tanh

    with pytest.raises(wxb.ConfigError, match=rf"named '{name}', which is Sequential.{name}"):
        Sequential(Dense(3, 3), Tanh(), Dense(3, 2, name=name))


@pytest.mark.parametrize(
    ("dtype", "a", "b"),
    [("float32", 1e20, 1e20), ("float32", 1e-23, 1e-23), ("float64", 1e300, 1e160)],
)
def test_the_quotients_gradient_stays_finite_where_b_squared_does_not(rng, dtype, a, b):
    scale = float(rng.uniform(0.5, 2.0))
    A, B = np.array([a * scale], dtype), np.array([b], dtype)
    ta = torch.tensor(A, requires_grad=True)
    tb = torch.tensor(B, requires_grad=True)
    (ta / tb).sum().backward()
    x, w = Tensor(A, requires_grad=True), Tensor(B, requires_grad=True)
    (x / w).sum().backward()
    np.testing.assert_allclose(w.grad, tb.grad.numpy(), rtol=1e-6)
    assert w.grad[0] != 0 and np.isfinite(w.grad[0])


@pytest.mark.parametrize("kind", [MSELoss, CrossEntropyLoss, BCEWithLogitsLoss])
def test_a_loss_on_an_empty_batch_is_a_mean_of_nothing_or_a_sum_of_nothing(kind):
    # the mean divided by zero (ZeroDivisionError); the sum is 0, as PyTorch's
    target = np.zeros(0, dtype=int) if kind is CrossEntropyLoss else np.zeros((0, 2))
    with pytest.raises(wxb.DataError, match="holds no samples"):
        kind()(Tensor(np.zeros((0, 2))), target)
    output = Tensor(np.zeros((0, 2)), requires_grad=True)
    value = kind("sum")(output, target)
    value.backward()
    theirs = {
        MSELoss: F.mse_loss,
        CrossEntropyLoss: F.cross_entropy,
        BCEWithLogitsLoss: F.binary_cross_entropy_with_logits,
    }[kind](torch.zeros((0, 2)), torch.tensor(target), reduction="sum")
    assert float(value.data) == float(theirs) == 0.0
    assert output.grad.shape == (0, 2)


@pytest.mark.parametrize(
    "kind, target",
    [
        (MSELoss, np.zeros((0, 2))),
        (CrossEntropyLoss, np.zeros(0, dtype=int)),
        (CrossEntropyLoss, np.zeros((0, 2))),  # probabilities
        (BCEWithLogitsLoss, np.zeros((0, 2))),
    ],
)
def test_each_samples_loss_on_an_empty_batch_is_empty_as_in_torch(kind, target):
    output = Tensor(np.zeros((0, 2)), requires_grad=True)
    values = kind("none")(output, target)
    theirs = {
        MSELoss: F.mse_loss,
        CrossEntropyLoss: F.cross_entropy,
        BCEWithLogitsLoss: F.binary_cross_entropy_with_logits,
    }[kind](torch.zeros((0, 2)), torch.tensor(target), reduction="none")
    # torch's MSE is per element; wxb's per sample, ½‖ŷᵢ − yᵢ‖² (B,): none of either
    assert values.shape == (tuple(theirs.shape) if kind is not MSELoss else (0,))
    values.sum().backward()
    assert output.grad.shape == (0, 2)


@pytest.mark.parametrize("kind", ["tensor", "list"])
def test_the_planned_step_takes_targets_as_the_graph_step_does(rng, kind):
    from wxb.nn import Sequential, Tanh
    from wxb.step import GraphStep, PlannedStep

    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    target = Tensor(Y) if kind == "tensor" else Y.tolist()
    results = []
    for step_class in (PlannedStep, GraphStep):
        model = Sequential(
            Dense(3, 4, seed=1, dtype="float64"), Tanh(), Dense(4, 2, seed=2, dtype="float64")
        )
        step = step_class(model, MSELoss(), SGD(model.parameters(), lr=0.1))
        results.append((step(X, target), [p.data.copy() for p in model.parameters()]))
    (planned, planned_w), (graph, graph_w) = results
    close(planned, graph)
    for p, g in zip(planned_w, graph_w, strict=True):
        close(p, g)


def test_a_slice_of_a_sequential_is_a_sequential_of_those_layers(rng):
    from wxb.nn import ReLU, Sequential

    model = Sequential(Dense(3, 5, dtype="float64"), ReLU(), Dense(5, 2, dtype="float64"))
    body = model[:-1]
    assert isinstance(body, Sequential)
    assert body.layers == model.layers[:2] and body[0] is model[0]
    X = rng.normal(size=(4, 3))
    close(body(X).data, np.maximum(X @ model[0].weight.data.T + model[0].bias.data, 0))


@pytest.mark.parametrize("op", ["exp", "sqrt", "sigmoid", "tanh", "relu", "softmax", "base**x"])
@pytest.mark.parametrize("how", ["no_grad", "detach"])
def test_changing_a_result_its_backward_reads_is_refused_as_torch_does(rng, op, how):
    # the backward read the changed values: sigmoid's gradient came out −1.0 for 0.235
    x = Tensor(rng.uniform(0.5, 2.0, size=5), requires_grad=True)
    apply = {
        "exp": ops.exp, "sqrt": ops.sqrt, "sigmoid": ops.sigmoid, "tanh": ops.tanh,
        "relu": ops.relu, "softmax": lambda t: ops.softmax(t.reshape((1, 5))),
        "base**x": lambda t: 2.0**t,
    }[op]  # fmt: skip
    y = apply(x)
    if how == "no_grad":
        with no_grad():
            y += 1.0
    else:
        view = y.detach()
        view += 1.0
    with pytest.raises(wxb.TrainingError, match="modified in place since the forward"):
        y.sum().backward()


def test_changing_a_result_its_backward_does_not_read_is_allowed_as_in_torch(rng):
    x = Tensor(rng.normal(size=4), requires_grad=True)
    y = x * 3.0
    with no_grad():
        y += 1.0
    y.sum().backward()
    close(x.grad, np.full(4, 3.0))


def test_a_changed_planned_output_is_refused_when_its_last_layer_reads_it(rng):
    from wxb.nn import Sequential, Sigmoid

    model = Sequential(Dense(3, 2, dtype="float64"), Sigmoid())
    out = model(rng.normal(size=(4, 3)))
    with no_grad():
        out += 1.0
    with pytest.raises(wxb.TrainingError, match="modified in place"):
        out.sum().backward()


@pytest.mark.parametrize("reduction", ["Mean", "avg", "None", None])
def test_a_functional_loss_refuses_a_reduction_it_does_not_offer(rng, reduction):
    # anything but 'mean' summed (reduction='none' once gave one number, not one per sample)
    from wxb.nn import functional as F

    z = Tensor(rng.normal(size=(3, 2)))
    for loss, target, per_sample in [
        (F.bce_with_logits, rng.integers(0, 2, (3, 2)).astype(float), (3, 2)),
        (F.cross_entropy, rng.integers(0, 2, 3), (3,)),
        (F.mse_loss, rng.normal(size=(3, 2)), (3,)),
    ]:
        with pytest.raises(wxb.ConfigError, match="reduction must be 'mean', 'sum' or 'none'"):
            loss(z, target, reduction=reduction)
        assert loss(z, target, reduction="none").shape == per_sample


def test_an_integer_tensor_keeps_float_operands_float(rng):
    # t.data = [1, 3]: 0.5 was cast to the tensor's int64 and t * 0.5 gave [0, 0]
    values = rng.integers(1, 9, 4)
    t = Tensor(np.zeros(4))
    t.data = values
    close((t * 0.5).data, values * 0.5)
    close(t.mean().data, values.mean())


@pytest.mark.parametrize("case", ["loss buffer", "caller's seed", "shared sum"])
def test_a_retained_gradient_is_an_array_of_its_own(rng, case):
    w = Tensor(rng.normal(size=(3, 2)), requires_grad=True)
    tw = torch.tensor(w.data, requires_grad=True)
    X = rng.normal(size=(4, 3))
    h, th = Tensor(X) @ w, torch.tensor(X) @ tw
    h.retain_grad()
    th.retain_grad()
    if case == "loss buffer":
        y = rng.normal(size=(4, 2))
        ours, theirs = MSELoss()(h, y), 0.5 * ((th - torch.tensor(y)) ** 2).sum() / 4
        ours.backward(retain_graph=True)
        theirs.backward(retain_graph=True)
        h.grad[...] = 0  # zeroing the kept gradient must not zero the next one's seed
        th.grad.zero_()
        w.grad, tw.grad = None, None
        ours.backward()
        theirs.backward()
    elif case == "caller's seed":
        G = rng.normal(size=(2, 4))
        h.T.backward(G)
        th.T.backward(torch.tensor(G))
        G[...] = 0  # the caller reuses its array
    else:
        h2, th2 = h * 1.0, th * 1.0
        h2.retain_grad()
        th2.retain_grad()
        (h + h2).sum().backward()
        (th + th2).sum().backward()
        h2.grad[...] = 0
        th2.grad.zero_()
    close(h.grad, th.grad)
    close(w.grad, tw.grad)


def test_numpy_reductions_of_a_tensor_record_the_graph(rng):
    x = Tensor(rng.normal(size=(3, 4)), requires_grad=True)
    total = np.sum(x) + np.mean(x, axis=0).sum()
    total.backward()
    close(x.grad, np.full((3, 4), 1 + 1 / 3))
    # dtype= as torch's x.sum(dtype=…): the values cast first, ∂ back in x's dtype
    assert np.sum(x, dtype=np.float32).dtype == np.float32
    with pytest.raises(TypeError, match="out="):
        np.sum(x, out=np.zeros(()))


def test_requires_grad_turned_off_on_a_recorded_result_is_refused_at_backward(rng):
    # the gradient through it was dropped silently (W.grad None); PyTorch refuses the
    # assignment itself
    W = wxb.nn.Parameter(rng.normal(size=(2, 3)))
    h = wxb.Tensor(rng.normal(size=(4, 3))) @ W.T
    loss = (h * 2).sum()
    h.requires_grad = False
    with pytest.raises(wxb.errors.ConfigError, match="only a leaf tensor allows"):
        loss.backward()
    assert W.grad is None
    h.requires_grad = True  # undone: the recorded graph is whole again
    loss.backward()
    torch_W = torch.tensor(W.data, requires_grad=True)
    x = torch.tensor(np.asarray(h.inputs[0].data))
    (2 * (x @ torch_W.T)).sum().backward()
    np.testing.assert_allclose(W.grad, torch_W.grad.numpy(), rtol=1e-12)


def test_requires_grad_underscore_freezes_as_in_pytorch(rng):
    # PyTorch's in-place spelling was missing (AttributeError)
    model = wxb.nn.Sequential(Dense(3, 4), Dense(4, 2)).to("float64")
    assert model[0].requires_grad_(False) is model[0]
    X = rng.normal(size=(5, 3))
    twin = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)).double()
    with torch.no_grad():
        for mine, theirs in zip(model.parameters(), twin.parameters(), strict=True):
            theirs.copy_(torch.tensor(mine.data))
    twin[0].requires_grad_(False)
    model(wxb.Tensor(X)).sum().backward()
    twin(torch.tensor(X)).sum().backward()
    # ∂L/∂W⁽²⁾ sums A⁽¹⁾ = X·W⁽¹⁾ᵀ + b⁽¹⁾ over the batch, in another order in PyTorch: an
    # entry near 0 is off by ulps of its terms
    inner = affine_terms(X, model[0].weight.data.T, model[0].bias.data)
    atol = rounding_atol(affine_terms(np.ones((2, 5)), inner), (3 + 1) + 5)
    for mine, theirs in zip(model.parameters(), twin.parameters(), strict=True):
        assert (mine.grad is None) == (theirs.grad is None)
        if theirs.grad is not None:
            np.testing.assert_allclose(mine.grad, theirs.grad.numpy(), rtol=1e-12, atol=atol)
    x = wxb.Tensor(X).requires_grad_()
    assert x.requires_grad
    h = x @ model[1].weight.T[:3]
    with pytest.raises(wxb.errors.ConfigError, match="only a leaf"):
        h.requires_grad_(False)


@pytest.mark.parametrize("spelling", ["keyword", "positional"])
def test_a_parameter_made_frozen_stays_out_of_training_as_in_pytorch(rng, spelling):
    # Parameter(values, requires_grad=False) (a fixed table, a frozen scale) raised a bare
    # TypeError: the constructor took no requires_grad
    n, m = dims(rng, 2)
    W, scale = rng.normal(size=(m, n)), rng.uniform(0.5, 2, size=m)
    if spelling == "keyword":
        w, s = Parameter(W, dtype="float64"), Parameter(scale, requires_grad=False)
        tw, ts = (
            torch.nn.Parameter(torch.tensor(W)),
            torch.nn.Parameter(torch.tensor(scale), requires_grad=False),
        )
    else:
        w, s = Parameter(W, True, dtype="float64"), Parameter(scale, False)
        tw, ts = (
            torch.nn.Parameter(torch.tensor(W), True),
            torch.nn.Parameter(torch.tensor(scale), False),
        )
    assert w.requires_grad and not s.requires_grad and s.dtype == np.float64
    opt, ref = SGD([w, s], lr=0.1, momentum=0.9), torch.optim.SGD([tw, ts], lr=0.1, momentum=0.9)
    for _ in range(2):
        X = rng.normal(size=(4, n))
        opt.zero_grad()
        ref.zero_grad()
        ((Tensor(X) @ w.T) * s).sum().backward()
        ((torch.tensor(X) @ tw.T) * ts).sum().backward()
        assert s.grad is None and ts.grad is None
        opt.step()
        ref.step()
    close(w.data, tw)
    np.testing.assert_array_equal(s.data, scale)


UNFROZEN_AFTER = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: b - a,
    "mul": lambda a, b: a * b,
    "matmul": lambda a, b: a @ b.T,
    "index": lambda a, b: a[[0, 0, 1]].sum() * b,
    "div": lambda a, b: b / (a * a + 1),
    "pow": lambda a, b: (a * a + 1) ** b,
}


@pytest.mark.parametrize("op", sorted(UNFROZEN_AFTER))
def test_requires_grad_asked_for_after_the_forward_gets_no_gradient(rng, op):
    # add, sub, mul, matmul and indexing gave the leaf a gradient; div and pow did not;
    # PyTorch gives none: the operation did not record that input
    f = UNFROZEN_AFTER[op]
    A, B = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    a, b = Tensor(A), Tensor(B, requires_grad=True)
    ta, tb = torch.tensor(A), torch.tensor(B, requires_grad=True)
    out, t_out = f(a, b), f(ta, tb)
    a.requires_grad_(True)
    ta.requires_grad_(True)
    out.sum().backward()
    t_out.sum().backward()
    assert a.grad is None and ta.grad is None
    close(b.grad, tb.grad)


def test_a_layer_unfrozen_after_the_forward_gets_no_gradient_from_it(rng):
    model = wxb.nn.Sequential(Dense(3, 4), wxb.nn.ReLU(), Dense(4, 2)).to("float64")
    twin = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    twin = twin.double()
    with torch.no_grad():
        for mine, theirs in zip(model.parameters(), twin.parameters(), strict=True):
            theirs.copy_(torch.tensor(mine.data))
    model[0].requires_grad_(False)
    twin[0].requires_grad_(False)
    X = rng.normal(size=(5, 3))
    out, t_out = model(wxb.Tensor(X)), twin(torch.tensor(X))
    model[0].requires_grad_(True)
    twin[0].requires_grad_(True)
    (out * out).sum().backward()
    (t_out * t_out).sum().backward()
    for mine, theirs in zip(model.parameters(), twin.parameters(), strict=True):
        assert (mine.grad is None) == (theirs.grad is None)
        if theirs.grad is not None:
            close(mine.grad, theirs.grad)


def test_an_empty_index_list_picks_no_rows(rng):
    # a[[]] raised IndexError (the empty list became a float array); NumPy and PyTorch
    # return no rows, and the gradient is zero
    A = rng.normal(size=(int(rng.integers(2, 6)), 3))
    a, ta = pair(A)
    out, t_out = a[[]], ta[[]]
    assert out.shape == tuple(t_out.shape) == (0, 3)
    (a[[]].sum() + (a * 2).sum()).backward()
    (ta[[]].sum() + (ta * 2).sum()).backward()
    close(a.grad, ta.grad)


@pytest.mark.parametrize(
    "operand",
    [
        lambda n, rng: rng.normal(size=n) + 1j * rng.normal(size=n),  # imaginary part dropped
        lambda n, rng: np.array([str(v) for v in rng.integers(1, 9, size=n)]),  # parsed
        lambda n, rng: np.array(["1970-01-03"] * n, dtype="datetime64[D]"),  # days counted
        lambda n, rng: rng.uniform(1, 9, size=n) * rng.choice([-1, 1], size=n) * 1e39,  # ±inf
        lambda n, rng: 2**200,  # a Python int: inf in float32
    ],
)
def test_an_operand_a_cast_would_change_silently_is_refused_on_either_side(rng, operand):
    # complex, text and dates became numbers (w * [1+1j, 2-1j] gave [1, 4] float32 with a
    # warning at most), and a float64 beyond float32's range became inf
    n = int(rng.integers(1, 5))
    w = Tensor(rng.normal(size=n).astype(np.float32), requires_grad=True)
    value = operand(n, rng)
    for compute in (lambda: w * value, lambda: value * w, lambda: w + value):
        with pytest.raises(wxb.DataError, match=r"wxb computes with real numbers|beyond float32"):
            compute()
    if not isinstance(value, np.ndarray):  # a float64 tensor takes 2**200; not 10**400
        wide = Tensor(rng.normal(size=n), requires_grad=True)
        np.testing.assert_array_equal((wide * value).data, wide.data * float(value))
        with pytest.raises(wxb.DataError, match="beyond float64's range"):
            wide * 10**400
    if isinstance(value, np.ndarray) and value.dtype.kind != "f":
        with pytest.raises(wxb.DataError, match=r"real numbers|not supported"):
            Tensor(value)


def test_a_pandas_series_keeps_its_float64_as_its_array_does(rng):
    pd = pytest.importorskip("pandas")
    values = 1 + rng.uniform(1e-9, 1e-8, size=int(rng.integers(1, 6)))  # lost in float32
    for given in (pd.Series(values), pd.DataFrame({"a": values})):
        np.testing.assert_array_equal(Tensor(given).data.ravel(), values)
    assert Tensor(values.tolist()).data.dtype == np.float32  # Python floats: as torch.tensor


def test_gradient_accumulation_over_two_batches_in_a_model_steps_as_torch(rng):
    """Two backward calls before a step, the first's gradient held: on a model whose
    optimiser keeps the gradients in one flat buffer, held arrays see the sum and the
    step takes it, as in PyTorch."""
    n, hidden, classes = dims(rng, 3)
    model = wxb.nn.Sequential(
        Dense(n, hidden, dtype="float64"), wxb.nn.Tanh(), Dense(hidden, classes, dtype="float64")
    )
    theirs = torch.nn.Sequential(
        torch.nn.Linear(n, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, classes)
    ).double()
    with torch.no_grad():
        for mine, their in zip(model.parameters(), theirs.parameters(), strict=True):
            their.copy_(torch.tensor(mine.data))
    lr = float(rng.uniform(0.01, 0.5))
    opt, ref = (
        SGD(model.parameters(), lr=lr, momentum=0.9),
        torch.optim.SGD(theirs.parameters(), lr=lr, momentum=0.9),
    )
    held = None
    for _ in range(2):
        X, y = rng.normal(size=(5, n)), rng.integers(0, classes, size=5)
        CrossEntropyLoss()(model(X), y).backward()
        F.cross_entropy(theirs(torch.tensor(X)), torch.tensor(y)).backward()
        held = held or [p.grad for p in model.parameters()]
    for mine, array, their in zip(model.parameters(), held, theirs.parameters(), strict=True):
        close(mine.grad, their.grad)
        close(array, their.grad)
    opt.step()
    ref.step()
    for mine, their in zip(model.parameters(), theirs.parameters(), strict=True):
        close(mine.data, their)


def test_an_element_picked_by_integers_is_a_view_as_in_torch(rng):
    """``x[i, j]`` was a copy: ``v = x[1, 2]; v += 10`` under no_grad left x as it was,
    where torch's element is a view of x."""
    array = rng.standard_normal(dims(rng, 3))
    x, xt = Tensor(array.copy()), torch.tensor(array.copy())
    key = tuple(int(rng.integers(0, d)) for d in array.shape)
    step = float(rng.uniform(1, 10))
    with no_grad():
        v = x[key]
        v += step
    with torch.no_grad():
        vt = xt[key]
        vt += step
    close(x.data, xt)
    close(v.data, vt)
    # and the element's gradient through autograd
    w, wt = pair(array)
    (w[key] * w[key]).backward()
    (wt[key] * wt[key]).backward()
    close(w.grad, wt.grad)


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "absolute", "dropout"])
def test_a_zero_d_result_is_an_array_that_takes_in_place_changes(rng, name):
    """exp/log/sqrt/abs/dropout of a 0-d tensor held a NumPy scalar: ``y += 1`` under
    no_grad was refused as read-only, where torch adds."""
    value = float(rng.uniform(0.5, 3))
    x = Tensor(np.array(value))
    f = {"dropout": lambda t: ops.dropout(t, 0.0)}.get(name, getattr(ops, name))
    tf = {
        "exp": torch.exp,
        "log": torch.log,
        "sqrt": torch.sqrt,
        "absolute": torch.abs,
        "dropout": lambda t: F.dropout(t, 0.0),
    }[name]
    y, yt = f(x), tf(torch.tensor(value, dtype=torch.float64))
    assert isinstance(y.data, np.ndarray) and y.shape == ()
    step = float(rng.uniform(1, 5))
    with no_grad():
        y += step
    yt += step
    close(y.data, yt)


def test_a_zero_d_integer_array_as_a_key_picks_a_view_as_in_torch(rng):
    """``x[np.array(1)]`` took NumPy's reading (a fancy index: a copy); torch reads a 0-d
    integer array as the integer, and its element is a view of x."""
    array = rng.standard_normal(dims(rng, 2))
    i, j = (int(rng.integers(0, d)) for d in array.shape)
    for key in (np.array(i), (np.array(i), np.array(j)), np.array(-1)):
        x, xt = Tensor(array.copy()), torch.tensor(array.copy())
        with no_grad():
            v = x[key]
            v += 5.0
        vt = xt[
            tuple(torch.tensor(k) for k in key) if isinstance(key, tuple) else torch.tensor(key)
        ]
        vt += 5.0
        close(x.data, xt)


@pytest.mark.parametrize(
    "write",
    [
        lambda x: x.__iadd__(1e39),
        lambda x: x.__imul__(np.array([1e39])),
        lambda x: x.__setitem__(0, 1e39),
        lambda x: x.__setitem__(0, "3"),
        lambda x: x.__iadd__(np.complex128(2 + 5j)),
    ],
    ids=["+= 1e39", "*= array 1e39", "[0] = 1e39", "[0] = text", "+= complex"],
)
def test_an_in_place_write_refuses_what_the_operation_refuses(rng, write):
    """``x32 + 1e39`` is refused (it would become inf), and ``x + "3"``; yet ``x32 += 1e39``
    and ``x32[0] = 1e39`` gave inf with only NumPy's warning, and ``x[0] = "3"`` stored 3."""
    x = Tensor(rng.standard_normal(3).astype(np.float32))
    before = x.data.copy()
    with pytest.raises(wxb.DataError, match="float32"):
        write(x)
    np.testing.assert_array_equal(x.data, before)  # nothing written


@pytest.mark.parametrize("op", ["add", "sub", "sum", "reshape", "index", "transpose", "bias"])
def test_an_input_no_backward_reads_may_change_in_place_before_it_as_in_torch(rng, op):
    """Backward refused whenever an input had changed in place since the forward, even
    where its rule reads no input value ((x + 1).sum() after x[0] -= 0.1): PyTorch runs
    it, and the gradient is the same. One that reads it (x * y) is still refused."""
    array = rng.standard_normal((3, 4))
    x, xt = pair(array)
    other = rng.standard_normal(4)
    forms = {
        "add": (lambda t: t + other, lambda t: t + torch.tensor(other)),
        "sub": (lambda t: other - t, lambda t: torch.tensor(other) - t),
        "sum": (lambda t: t.sum(), lambda t: t.sum()),
        "reshape": (lambda t: t.reshape(4, 3), lambda t: t.reshape(4, 3)),
        "index": (lambda t: t[1:, ::2], lambda t: t[1:, ::2]),
        "transpose": (lambda t: t.T, lambda t: t.T),
        "bias": (
            lambda t: ops.add_bias(Tensor(array.copy()), t[0]),
            lambda t: torch.tensor(array) + t[0],
        ),
    }
    ours, theirs = forms[op]
    y, yt = ours(x), theirs(xt)
    weights = rng.standard_normal(yt.shape)
    with no_grad():
        x[0] -= 0.1
    with torch.no_grad():
        xt[0] -= 0.1
    (y * weights).sum().backward()
    (yt * torch.tensor(weights)).sum().backward()
    close(x.grad, xt.grad)
    z, _ = pair(array)
    product = z * Tensor(other, requires_grad=True)  # z is read for the other's gradient
    with no_grad():
        z[0] -= 0.1
    with pytest.raises(wxb.TrainingError, match="modified in place"):
        product.sum().backward()


@pytest.mark.parametrize("op", ["mul", "div", "pow", "matmul", "rmul", "ufunc"])
def test_a_numpy_operand_changed_after_the_forward_does_not_change_the_gradient(rng, op):
    # torch refuses x * ndarray; torch.tensor(arr) copies: the gradient is the forward's
    arr = rng.uniform(0.5, 2.0, size=(3, 3))
    x = Tensor(rng.uniform(0.5, 2.0, size=(3, 3)), requires_grad=True)
    xt = torch.tensor(x.data, requires_grad=True)
    at = torch.tensor(arr)
    wxb_ops = {
        "mul": lambda: x * arr, "div": lambda: x / arr, "pow": lambda: x**arr,
        "matmul": lambda: x @ arr, "rmul": lambda: arr * x, "ufunc": lambda: np.multiply(x, arr),
    }  # fmt: skip
    torch_ops = {
        "mul": lambda: xt * at, "div": lambda: xt / at, "pow": lambda: xt**at,
        "matmul": lambda: xt @ at, "rmul": lambda: at * xt, "ufunc": lambda: xt * at,
    }  # fmt: skip
    y = wxb_ops[op]().sum()
    arr *= 10  # the caller reuses its buffer before the backward
    y.backward()
    torch_ops[op]().sum().backward()
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("kind", ["indices", "mask", "rows and columns"])
def test_an_index_array_changed_after_the_forward_does_not_move_the_gradient(rng, kind):
    # torch.tensor(key) copies the key: the gradient goes where the forward picked
    rows, cols = dims(rng, 2)
    data = rng.normal(size=(rows, cols))
    keys = {
        "indices": lambda: rng.integers(0, rows, size=rows),
        "mask": lambda: rng.random(size=(rows, cols)) < 0.5,
        "rows and columns": lambda: (
            rng.integers(0, rows, size=4),
            rng.integers(0, cols, size=4),
        ),
    }
    key = keys[kind]()
    x, xt = pair(data)
    out = x[key]
    expected = xt[tuple(map(torch.tensor, key)) if isinstance(key, tuple) else torch.tensor(key)]
    r = rng.normal(size=out.shape)
    for part in key if isinstance(key, tuple) else (key,):  # the caller reuses its keys
        if part.dtype == bool:
            np.logical_not(part, out=part)
        else:
            part[...] = 0 if part.any() else 1
    (out * r).sum().backward()
    (expected * torch.tensor(r)).sum().backward()
    close(x.grad, xt.grad)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 0.5])
def test_softmax_of_one_value_is_torchs(value):
    expected = torch.softmax(torch.tensor(value, dtype=torch.float64), dim=-1).item()
    got = float(wxb.nn.functional.softmax(Tensor(np.array(value))).data)
    assert got == expected or (np.isnan(got) and np.isnan(expected))


# -- joining tensors: concatenate (torch.cat) and stack ------------------------------------
@pytest.mark.parametrize("how", ["ops", "numpy"])
def test_concatenate_and_stack_give_torchs_values_and_gradients(rng, how):
    """Random shapes and axes (negative ones too), a tensor joined twice (its gradient is
    the sum of both slices), a plain array among the tensors, then a weighted sum."""
    for _ in range(20):
        ndim = int(rng.integers(1, 4))
        shape = [int(v) for v in rng.integers(1, 4, size=ndim)]
        axis = int(rng.integers(-ndim, ndim))
        sizes = [int(v) for v in rng.integers(1, 4, size=3)]
        parts = []
        for size in sizes:
            part = list(shape)
            part[axis] = size
            parts.append(rng.normal(size=part))
        a, ta = pair(parts[0])
        b, tb = pair(parts[1])
        constant = parts[2]
        join = ops.concatenate if how == "ops" else np.concatenate
        ours = join([a, b, constant, a], axis=axis)
        theirs = torch.cat([ta, tb, torch.tensor(constant), ta], dim=axis)
        close(ours.data, theirs)
        weights = rng.normal(size=tuple(theirs.shape))
        (ours * weights).sum().backward()
        (theirs * torch.tensor(weights)).sum().backward()
        close(a.grad, ta.grad)
        close(b.grad, tb.grad)

        c, tc = pair(rng.normal(size=shape))
        d, td = pair(rng.normal(size=shape))
        new_axis = int(rng.integers(-ndim - 1, ndim + 1))
        stacked = (ops.stack if how == "ops" else np.stack)([c, d, c], axis=new_axis)
        expected = torch.stack([tc, td, tc], dim=new_axis)
        close(stacked.data, expected)
        weights = rng.normal(size=tuple(expected.shape))
        (stacked * weights).sum().backward()
        (expected * torch.tensor(weights)).sum().backward()
        close(c.grad, tc.grad)
        close(d.grad, td.grad)


def test_two_branches_joined_by_concatenate_train_as_in_torch(rng):
    """A model of one's own whose forward joins two Dense branches (torch.cat's usual
    place): its loss and every gradient, and the weights after a step of fit's."""
    n, batch = int(rng.integers(2, 6)), int(rng.integers(2, 9))
    a, ta = twin_dense(rng, n, 3)
    b, tb = twin_dense(rng, n, 2)
    head, thead = twin_dense(rng, 5, 4)

    class Branches(wxb.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.head = a, b, head

        def forward(self, x):
            return self.head(ops.cat([ops.tanh(self.a(x)), ops.relu(self.b(x))], axis=1))

    X, y = rng.normal(size=(batch, n)), rng.integers(0, 4, size=batch)
    loss = CrossEntropyLoss()(Branches()(X), y)
    loss.backward()
    tX = torch.tensor(X)
    joined = torch.cat([torch.tanh(ta(tX)), torch.relu(tb(tX))], dim=1)
    expected = F.cross_entropy(thead(joined), torch.tensor(y))
    expected.backward()
    close(loss.data, expected)
    for ours, theirs in ((a, ta), (b, tb), (head, thead)):
        assert_same_gradients(ours, theirs)


@pytest.mark.parametrize("how", ["concatenate", "stack", "np.concatenate", "np.stack"])
def test_an_array_joined_with_tensors_of_two_dtypes_keeps_the_wider_ones_digits(rng, how):
    # torch.cat of float32 and float64 tensors is float64, each value as given: an array
    # among them (torch.tensor(array) is float64) is not rounded to float32 on the way
    narrow = Tensor(rng.normal(size=(2, 3)).astype(np.float32), requires_grad=True)
    wide = Tensor(rng.normal(size=(2, 3)), requires_grad=True)
    array = rng.normal(size=(2, 3))  # float64 digits float32 cannot hold
    join = {
        "concatenate": ops.concatenate,
        "stack": ops.stack,
        "np.concatenate": np.concatenate,
        "np.stack": np.stack,
    }[how]
    torch_join = torch.stack if "stack" in how else torch.cat
    for order in ([narrow, array, wide], [array, narrow, wide], [wide, array, narrow]):
        ours = join(order)
        theirs = torch_join([torch.tensor(t.data if isinstance(t, Tensor) else t) for t in order])
        assert ours.dtype == np.float64 and theirs.dtype == torch.float64
        np.testing.assert_array_equal(ours.data, theirs.numpy())
        ours.sum().backward()
        assert narrow.grad.dtype == np.float32 and wide.grad.dtype == np.float64


def test_joining_refuses_what_it_cannot_join(rng):
    a = Tensor(rng.normal(size=(2, 3)), requires_grad=True)
    with pytest.raises(wxb.ShapeError, match=r"concatenate: 2×3, 3×2 along axis 1"):
        ops.concatenate([a, Tensor(rng.normal(size=(3, 2)))], axis=1)
    with pytest.raises(wxb.ShapeError, match=r"stack: 2×3, 2×2 along axis 0"):
        ops.stack([a, Tensor(rng.normal(size=(2, 2)))])
    with pytest.raises(wxb.ShapeError, match="got no tensors"):
        ops.concatenate([])
    with pytest.raises(wxb.ConfigError, match="a list or tuple of tensors; got a Tensor"):
        ops.stack(a)
    with pytest.raises(wxb.ConfigError, match="axis must be an integer"):
        ops.concatenate([a, a], axis=None)
    with pytest.raises(wxb.ConfigError, match="arrays and axis only"):
        np.concatenate([a, a], dtype=np.float32)
    with pytest.raises(TypeError, match="cannot become a NumPy array"):  # others: as before
        np.vstack([a, a])
    assert np.shape(a) == (2, 3)  # and what takes no values still works


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**"])
@pytest.mark.parametrize("dims", [("float32", "float64"), ("float64", "float32")])
def test_a_0d_tensor_of_the_other_float_dtype_takes_the_dimensioned_ones(rng, op, dims):
    """As in PyTorch: float32 x ⊙ a 0-d float64 tensor stays float32 (NumPy widened it to
    float64, which a float32 layer after it refused), on either side; each gradient in
    its own tensor's dtype, with PyTorch's values."""
    big, small = dims
    tol = 1e-5 if big == "float32" else 1e-12
    for scale_left in (True, False):
        X = rng.uniform(0.5, 2, size=(3, 4)).astype(big)
        s0 = np.array(rng.uniform(0.5, 2), dtype=small)
        x, s = Tensor(X, requires_grad=True), Tensor(s0, requires_grad=True)
        tx, ts = torch.tensor(X, requires_grad=True), torch.tensor(s0, requires_grad=True)

        def apply(a, b, op=op):
            return {"+": a + b, "-": a - b, "*": a * b, "/": a / b, "**": a**b}[op]

        ours = apply(s, x) if scale_left else apply(x, s)
        theirs = apply(ts, tx) if scale_left else apply(tx, ts)
        assert ours.dtype == np.dtype(big) and str(theirs.dtype) == f"torch.{big}"
        weights = rng.normal(size=(3, 4)).astype(big)
        (ours * weights).sum().backward()
        (theirs * torch.tensor(weights)).sum().backward()
        assert x.grad.dtype == np.dtype(big) and s.grad.dtype == np.dtype(small)
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=tol)
        np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(s.grad, ts.grad.numpy(), rtol=tol * 10)
    layer = Dense(4, 2, dtype=big)  # and the product goes on through a layer of x's dtype
    assert layer(x * Tensor(np.array(2.0, dtype=small))).dtype == np.dtype(big)


@pytest.mark.parametrize("kind", ["0-d tensor", "NumPy scalar", "0-d array"])
@pytest.mark.parametrize("dims", [("float32", "float64"), ("float64", "float32")])
def test_a_comparison_with_a_0d_value_of_the_other_float_dtype_is_torchs(rng, kind, dims):
    """The 0-d side is compared in the dimensioned side's dtype, as PyTorch compares (and
    as wxb's arithmetic takes it: x − t == 0 exactly where x == t): float32 x == a float64
    0.1 is True where x holds 0.1 in float32 (NumPy compared in float64: False)."""
    big, small = dims
    values = rng.uniform(-1, 1, size=8)  # float64 numbers, most not float32's
    X = values.astype(big)
    threshold = values[int(rng.integers(len(values)))]
    zero_d = {
        "0-d tensor": lambda: Tensor(np.array(threshold, dtype=small)),
        "NumPy scalar": lambda: np.dtype(small).type(threshold),
        "0-d array": lambda: np.array(threshold, dtype=small),
    }[kind]()
    x, tx = Tensor(X), torch.tensor(X)
    t = torch.tensor(np.array(threshold, dtype=small))  # (PyTorch reads the others as this)
    comparisons = {
        "==": (lambda a, b: a == b, np.equal),
        "!=": (lambda a, b: a != b, np.not_equal),
        "<": (lambda a, b: a < b, np.less),
        "<=": (lambda a, b: a <= b, np.less_equal),
        ">": (lambda a, b: a > b, np.greater),
        ">=": (lambda a, b: a >= b, np.greater_equal),
    }
    for name, (operator, ufunc) in comparisons.items():
        for ours, theirs in (
            (operator(x, zero_d), operator(tx, t)),
            (operator(zero_d, x), operator(t, tx)),
            (ufunc(x, zero_d), operator(tx, t)),
            (ufunc(zero_d, x), operator(t, tx)),
        ):
            np.testing.assert_array_equal(ours, theirs.numpy(), err_msg=f"{name} with a {kind}")
    assert ((x - zero_d).data == 0).tolist() == (x == zero_d).tolist()


# -- PyTorch's tensor methods, under torch's names and arguments -------------------------------
def _clamp_bounds(t):
    return t.clamp(-0.4, 0.3) + t.clamp(min=0.1) - t.clip(max=-0.2)


def _max_min_along(t):
    top = t.max(dim=1, keepdim=True).values
    low, _ = t.min(1)
    return t - top + low.unsqueeze(1) * 0.5


def _shapes(t):
    a = t.unsqueeze(0).squeeze(0).view(t.shape[0], -1).flatten(1)
    return a.unsqueeze(-1).squeeze(-1) * t.flatten().view(t.shape)


TORCH_METHODS = {  # each a (B, w) → some shape computation, the same code on both sides
    "relu, sigmoid, tanh": lambda t: t.relu() * t.sigmoid() + t.tanh(),
    "softmax(1) and (0)": lambda t: t.softmax(1) * t + t.softmax(dim=0),
    "softmax(-1) * log_softmax(1)": lambda t: t.softmax(-1) * t.log_softmax(1),
    "log_softmax(0)": lambda t: t.log_softmax(0),
    "clamp and clip": _clamp_bounds,
    "pow, square, neg": lambda t: t.pow(3) - t.square() + t.neg(),
    "sum and mean with dim, keepdim": lambda t: (
        t - t.mean(dim=1, keepdim=True) + t.sum(dim=0) * t.mean(0, keepdim=True)
    ),
    "max and min along a dim": _max_min_along,
    "max() and min() of everything": lambda t: t * t.max() - t.min(),
    "var and std": lambda t: (
        (t - t.mean(1, keepdim=True)) / t.std(1, keepdim=True)
        + t.var(0)
        + t.var(dim=1, unbiased=False, keepdim=True)
    ),
    "t(), transpose, matmul, mm": lambda t: t.t().t() + t.matmul(t.transpose(0, 1)).mm(t),
    "view, flatten, unsqueeze, squeeze": _shapes,
}


@pytest.mark.parametrize("name", sorted(TORCH_METHODS))
def test_torchs_tensor_methods_match_torch(rng, name):
    """A forward written with torch's tensor methods (x.relu(), x.softmax(1),
    x.sum(dim=1, keepdim=True), x.max(dim=1).values, x.view(B, -1), …) runs on wxb
    tensors: values and gradients as PyTorch's (wxb had none of them, or NumPy's
    arguments alone: x.sum(dim=1) was a TypeError)."""
    compute = TORCH_METHODS[name]
    x, tx = pair(rng.normal(size=dims(rng, 2)))
    out, t_out = compute(x), compute(tx)
    assert isinstance(out, Tensor) and out.shape == tuple(t_out.shape), (out.shape, t_out.shape)
    close(out.data, t_out)
    g = rng.normal(size=out.shape)
    (out * g).sum().backward()
    (t_out * torch.tensor(g)).sum().backward()
    close(x.grad, tx.grad)


def test_torchs_max_along_a_dim_gives_values_and_indices_as_torch(rng):
    x, tx = pair(rng.normal(size=dims(rng, 2)))
    for dim in (0, 1, -1):
        for keepdim in (False, True):
            ours, theirs = x.max(dim, keepdim), tx.max(dim, keepdim)
            close(ours.values.data, theirs.values)
            np.testing.assert_array_equal(ours.indices, theirs.indices.numpy())
            values, indices = x.min(dim=dim, keepdim=keepdim)  # unpacks as torch's
            close(values.data, tx.min(dim, keepdim).values)
            np.testing.assert_array_equal(indices, tx.min(dim, keepdim).indices.numpy())
            np.testing.assert_array_equal(x.argmax(dim, keepdim), tx.argmax(dim, keepdim))
    np.testing.assert_array_equal(x.argmin(), tx.argmin().numpy())
    # NumPy's spelling keeps NumPy's meaning: the values alone
    close(x.max(axis=1).data, tx.amax(1))
    close(np.max(x.detach(), axis=0).data, tx.amax(0))


def test_a_tie_for_the_max_shares_its_gradient_as_torchs(rng):
    values = rng.normal(size=dims(rng, 2))
    values.flat[rng.choice(values.size, 3, replace=False)] = values.max() + 1.0  # a 3-way tie
    x, tx = pair(values)
    x.max().backward()
    tx.max().backward()
    close(x.grad, tx.grad)


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda t: t.softmax(2), r"softmax: dim 2 is out of range for a tensor of 2 dimensions"),
        (lambda t: t.transpose(0, 5), r"transpose: dim 5 is out of range"),
        (lambda t: t.clamp(), r"clamp: give min, max or both"),
        (lambda t: t.clamp("0"), r"clamp: min and max must be numbers"),
        (lambda t: t.reshape(2, 3, 1).t(), r"t\(\): a tensor of at most 2 dimensions"),
        (lambda t: t.sum(axis=0, dim=0), r"give the axis once"),
        (lambda t: t.flatten(1, 0), r"flatten: start_dim 1 comes after end_dim 0"),
        (lambda t: t[:0].max(), r"max: the tensor holds no values"),
    ],
)
def test_torchs_tensor_methods_refuse_in_one_line(call, pattern):
    t = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    with pytest.raises((wxb.errors.WxbError, TypeError), match=pattern):
        call(t)


def test_torchs_tensor_basics_answer_as_torchs(rng):
    """size(), dim(), numel(), tolist(), float()/double()/to(), clone(), expand, repeat,
    zero_()/fill_(): what a PyTorch user types without thinking (each was an
    AttributeError); values, shapes and gradients as torch's."""
    shape = dims(rng, 2)
    x, tx = pair(rng.normal(size=shape))
    assert x.size() == tuple(tx.size()) and x.size(-1) == tx.size(-1) == shape[1]
    assert (x.dim(), x.numel(), x.tolist()) == (tx.dim(), tx.numel(), tx.tolist())
    for ours, theirs in (
        (x.float(), tx.float()),
        (x.to("cpu", "float32"), tx.to("cpu", torch.float32)),
    ):
        assert ours.dtype == np.float32 and theirs.dtype == torch.float32
        close(ours.data, theirs.detach().numpy(), rtol=1e-7)
    assert x.to("cpu") is x and x.double() is x and x.to(torch.float64) is x
    copy = x.clone()
    assert copy.data is not x.data and np.shares_memory(copy.data, x.data) is False
    reps = (int(rng.integers(1, 3)), *(int(r) for r in rng.integers(1, 4, size=2)))
    out = (
        x.clone() * 2 + x.expand(3, -1, -1).sum(0) + x.repeat(*reps).sum(0)[: shape[0], : shape[1]]
    )
    t_out = (
        tx.clone() * 2
        + tx.expand(3, -1, -1).sum(0)
        + tx.repeat(*reps).sum(0)[: shape[0], : shape[1]]
    )
    close(out.data, t_out)
    g = rng.normal(size=shape)
    (out * g).sum().backward()
    (t_out * torch.tensor(g)).sum().backward()
    close(x.grad, tx.grad)
    with wxb.no_grad():
        x.fill_(1.5)
        np.testing.assert_array_equal(x.data, np.full(shape, 1.5))
        x.zero_()
        np.testing.assert_array_equal(x.data, np.zeros(shape))
    with pytest.raises(wxb.errors.TrainingError, match=r"zero_\(\) on a tensor that requires grad"):
        x.zero_()  # as PyTorch refuses it on a leaf that requires grad


def test_to_a_device_other_than_the_cpu_is_one_line():
    x = Tensor(np.ones((2, 2)))
    model = Dense(2, 2)
    assert (
        model.to("cpu") is model
        and model.to(device="cpu", dtype="float64").weight.dtype == np.float64
    )
    for call in (
        lambda: x.to("cuda"),
        lambda: model.to("cuda:0"),
        lambda: model.to(torch.device("mps")),
    ):
        with pytest.raises(wxb.errors.ConfigError, match=r"wxb computes on the CPU only"):
            call()


def test_std_of_a_constant_row_gives_a_zero_gradient_as_pytorch(rng):
    """A row whose values are all equal has std 0; PyTorch's ∂std/∂x is 0 there (its
    backward masks 1/(2·std) where std is 0), so a normalisation x / (x.std(1) + eps) of
    a constant row trains on instead of filling every gradient with NaN."""
    rows, cols = dims(rng, 2)
    data = rng.normal(size=(rows, cols))
    # one constant row, of a whole number: its mean is exact in both libraries (a
    # normal draw's mean can round off by an ulp, giving a std of 1e-17, not 0)
    data[rng.integers(rows)] = float(rng.integers(-8, 9))
    weights = rng.normal(size=rows)
    for unbiased in (True, False):
        x, xt = pair(data.copy())
        (x.std(1, unbiased=unbiased) * Tensor(weights)).sum().backward()
        (xt.std(1, unbiased=unbiased) * torch.tensor(weights)).sum().backward()
        assert np.isfinite(np.asarray(x.grad)).all()
        close(x.grad, xt.grad)
    x, xt = pair(np.full(cols, float(rng.integers(-8, 9))))
    x.std(correction=0).backward()
    xt.std(correction=0).backward()
    close(x.grad, xt.grad)


def test_var_with_no_more_values_than_the_correction_is_not_negative(rng):
    """PyTorch divides by max(0, n − correction): n ≤ correction gives inf or NaN,
    never the negative variance that dividing by n − correction < 0 gave."""
    count = int(rng.integers(1, 4))
    data = rng.normal(size=(count, 3))
    for correction in (count, count + 1, count + 2):
        x, xt = pair(data.copy())
        np.testing.assert_array_equal(
            np.asarray(x.var(0, correction=correction).data),
            xt.var(0, correction=correction).detach().numpy(),
        )
    empty = np.zeros((0, 3))
    np.testing.assert_array_equal(
        np.asarray(Tensor(empty).var(0).data), torch.tensor(empty).var(0).numpy()
    )


def test_numpy_var_and_std_of_a_tensor_keep_numpy_meaning(rng):
    """np.var(t) and np.std(t, axis=…) call t.var(axis=, dtype=, out=, ddof=): they
    worked before t.var existed (ddof 0, NumPy's default) and must go on doing so."""
    data = rng.normal(size=dims(rng, 2))
    t = Tensor(data)
    close(np.asarray(np.var(t)), np.var(data))
    close(np.asarray(np.std(t, axis=1)), np.std(data, axis=1))
    close(
        np.asarray(np.std(t, axis=0, ddof=1, keepdims=True)), np.std(data, 0, ddof=1, keepdims=True)
    )
    close(np.asarray(t.var(axis=1)), np.var(data, axis=1))


def test_a_dim_of_0_or_minus_1_on_a_0d_tensor_as_pytorch(rng):
    """PyTorch takes dim 0 and -1 on a 0-d tensor (as the one dimension it has for this
    purpose): max/min(dim), var/std(dim), mean(dim=), transpose(0, -1) raised NumPy's
    bare AxisError or an IndexError."""
    value = rng.normal()
    for dim in (0, -1):
        x, xt = pair(np.array(value))
        found, expected = x.max(dim), xt.max(dim)
        close(found.values.data, expected.values)
        assert found.indices.shape == () and found.indices == 0
        found.values.backward()
        expected.values.backward()
        close(x.grad, xt.grad)
        assert x.min(dim, keepdim=True).values.shape == ()
        close(x.mean(dim=dim).data, xt.mean(dim=dim))
        close(x.transpose(0, dim).data, xt.transpose(0, dim))
        close(x.var(dim, correction=0).data, xt.var(dim, correction=0))
        x, xt = pair(np.array(value))
        (x.transpose(dim, 0) * 3.0).backward()
        (xt.transpose(dim, 0) * 3.0).backward()
        close(x.grad, xt.grad)


def test_argmax_of_nothing_is_one_line():
    empty = Tensor(np.zeros((0, 3)))
    # along dim 1 (3 values each) torch's argmin is empty, as wxb's now: dim 0 holds none
    for call in (lambda: empty.argmax(), lambda: empty.argmin(0)):
        with pytest.raises(wxb.errors.ShapeError, match="the tensor holds no values"):
            call()


def test_whole_numbers_made_float32_by_default_are_exact_or_refused(rng):
    """wxb.tensor([16777217]) held 16777216.0 without a word: with no dtype given, whole
    numbers become float32 (torch would keep them as int64), which is exact only up to
    2**24. They are now kept exactly or refused; float64, asked for, holds them."""
    odd = int(rng.integers(2**23, 2**30)) * 2 + 1  # odd and above 2**24: never a float32
    small = rng.integers(-(2**24), 2**24, size=int(rng.integers(1, 6)))
    for data in ([odd], odd, np.append(small, odd), [[3, odd]]):
        with pytest.raises(wxb.DataError, match=f"whole number {odd} would become"):
            wxb.tensor(data)
        with pytest.raises(wxb.DataError, match=f"whole number {odd} would become"):
            Tensor(data)
        exact = wxb.tensor(data, dtype="float64").data
        np.testing.assert_array_equal(exact, torch.tensor(data, dtype=torch.float64).numpy())
    shifted = small.astype(np.int64) * 2**20  # above 2**24 but each a float32 exactly
    kept = wxb.tensor(shifted).data
    assert kept.dtype == np.float32
    np.testing.assert_array_equal(kept.astype(np.int64), torch.tensor(shifted).numpy())
    np.testing.assert_array_equal(wxb.tensor(small).data.astype(np.int64), small)
