"""Central finite differences against the analytic backward rules, in float64.

Every primitive of ``wxb.ops`` and whole ``Sequential`` networks are checked: the
gradient that ``backward()`` writes must match (f(x + h) − f(x − h)) / 2h to a
relative error below 1e-6, with

    relative error = ‖analytic − numeric‖ / max(‖analytic‖ + ‖numeric‖, tiny).

Non-scalar outputs are reduced to a scalar with a random weighting R, i.e. the
checked function is Σ R ⊙ f(x), and ``backward(R)`` gives its analytic gradient;
scalar outputs (losses, full reductions) are scaled by a random R too, which also
exercises the ``grad * g`` of their backward rules.

Shapes and values are drawn fresh on every run; each assertion message carries the
seed, and ``WXB_TEST_SEED=<seed>`` replays the run (the generator is
``np.random.default_rng(seed)``).

Networks whose gradient falls toward the finite-difference noise floor (≈ ε·|L|/h per
entry: saturated sigmoids, dead relus) are redrawn, since no check at 1e-6 can judge
them; this happens in a few percent of draws.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
from conftest import Seeded

import wxb
from wxb import ops
from wxb.nn import ACTIVATIONS, Activation, Dense, Sequential

TOLERANCE = 1e-6
STEP = 1e-5  # float64: truncation ≈ h²·f‴/6 ≈ 2e-11, rounding ≈ ε·|f|/h ≈ 2e-11·|f|
NOISE_MARGIN = 10.0  # networks: gradients must stand this far above the rounding noise
TINY = np.finfo(np.float64).tiny
KINK_GAP = 1e-3  # inputs are kept this far from where f is not twice differentiable


# ---------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------
def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    diff = float(np.linalg.norm(analytic - numeric))
    return diff / max(float(np.linalg.norm(analytic) + np.linalg.norm(numeric)), TINY)


def numeric_gradient(f: Callable[[], float], array: np.ndarray) -> np.ndarray:
    """∂f/∂array by central differences; ``f`` reads ``array``, perturbed in place."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + STEP
        plus = f()
        array[index] = original - STEP
        minus = f()
        array[index] = original
        grad[index] = (plus - minus) / (2 * STEP)
    return grad


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0):
    """Normal values with every |z| ≥ KINK_GAP (resampled), for functions with a kink at 0."""
    z = rng.normal(scale=scale, size=shape)
    while (bad := np.abs(z) < KINK_GAP).any():
        z[bad] = rng.normal(scale=scale, size=int(bad.sum()))
    return z


def dims(rng: np.random.Generator, count: int, low: int = 1, high: int = 6) -> list[int]:
    return [int(v) for v in rng.integers(low, high + 1, size=count)]


def check_op(
    seeded: Seeded, name: str, fn: Callable[..., wxb.Tensor], arrays: list[np.ndarray]
) -> None:
    """Analytic gradients of Σ R ⊙ fn(*arrays) w.r.t. every array against finite differences."""
    rng = seeded.rng
    arrays = [np.array(a, dtype=np.float64) for a in arrays]  # copies; 0-d stays 0-d
    tensors = [wxb.Tensor(a.copy(), requires_grad=True) for a in arrays]
    out = fn(*tensors)
    assert out.dtype == np.float64, seeded.msg(f"{name}: output is {out.dtype}, not float64")
    weights = np.asarray(rng.normal(size=out.shape))
    out.backward(weights)

    def f() -> float:
        with wxb.no_grad():
            value = fn(*(wxb.Tensor(a) for a in arrays)).data
        return float(np.sum(weights * value))

    for position, (tensor, array) in enumerate(zip(tensors, arrays, strict=True)):
        assert tensor.grad is not None, seeded.msg(f"{name}: input {position} got no gradient")
        assert tensor.grad.shape == array.shape, seeded.msg(
            f"{name}: input {position} has shape {array.shape}, gradient {tensor.grad.shape}"
        )
        numeric = numeric_gradient(f, array)
        error = relative_error(tensor.grad, numeric)
        assert error < TOLERANCE, seeded.msg(
            f"{name}: input {position} {array.shape}: relative error {error:.3e}\n"
            f"analytic={tensor.grad!r}\nnumeric={numeric!r}"
        )


# ---------------------------------------------------------------------------------
# Primitive cases: name -> builder(rng) -> (function of tensors, input arrays)
# ---------------------------------------------------------------------------------
BROADCASTS = {  # (B, n) -> the two operand shapes
    "same": lambda b, n: ((b, n), (b, n)),
    "row": lambda b, n: ((b, n), (n,)),
    "row_keepdims": lambda b, n: ((b, n), (1, n)),
    "column": lambda b, n: ((b, n), (b, 1)),
    "scalar": lambda b, n: ((b, n), ()),
    "outer": lambda b, n: ((1, n), (b, 1)),
    "row_first": lambda b, n: ((n,), (b, n)),
}
BINARY = {"add": ops.add, "sub": ops.sub, "mul": ops.mul}


def _binary(op, pattern):
    def build(rng):
        b, n = dims(rng, 2, 2, 6)  # ≥ 2 so that every broadcast really expands
        shape_a, shape_b = BROADCASTS[pattern](b, n)
        return op, [rng.normal(size=shape_a), rng.normal(size=shape_b)]

    return build


def _reduction(op, axis):
    def build(rng):
        return (lambda a: op(a, axis)), [rng.normal(size=dims(rng, 2))]

    return build


def _activation(fn, kinked=False, scale=2.0):
    def build(rng):
        shape = tuple(dims(rng, 2))
        z = away_from_zero(rng, shape, scale) if kinked else rng.normal(scale=scale, size=shape)
        return fn, [z]

    return build


def _gelu_inputs(approximate):
    def build(rng):
        # Both branches of wxb's erf (|z| < 2.5: series; beyond: continued fraction): a
        # third of the entries are put in 2.3 ≤ |z| ≤ 5 (further out, f′ ≈ 0 or 1 and
        # the tiny Φ(z) of a negative z is all rounding, in PyTorch's formula as here).
        b, n = dims(rng, 2, 2, 6)
        z = rng.normal(scale=1.5, size=(b, n))
        far = rng.choice(z.size, size=z.size // 3, replace=False)
        z.flat[far] = rng.choice([-1.0, 1.0], size=far.size) * rng.uniform(2.3, 5.0, far.size)
        return (lambda t: ops.gelu(t, approximate)), [z]

    return build


def _leaky_relu(rng):
    slope = float(rng.uniform(0.0, 0.9))
    shape = tuple(dims(rng, 2))
    return (lambda t: ops.leaky_relu(t, slope)), [away_from_zero(rng, shape, 2.0)]


def _dropout(rng):
    p = float(rng.uniform(0.1, 0.7))
    mask_seed = int(rng.integers(1 << 62))
    shape = tuple(dims(rng, 2))
    # A fresh generator from one seed per evaluation: every call draws the same mask.
    return (lambda t: ops.dropout(t, p, np.random.default_rng(mask_seed))), [rng.normal(size=shape)]


def _loss(kind, reduction):
    def build(rng):
        b, c = dims(rng, 2, 1, 6)
        if kind in ("cross_entropy", "cross_entropy_prob"):
            c = max(c, 2)
        logits = rng.normal(scale=2.0, size=(b, c))
        if kind == "mse":
            target = rng.normal(size=(b, c))
            return (lambda t: ops.mse_loss(t, target, reduction)), [logits]
        if kind == "cross_entropy":
            target = rng.integers(0, c, size=b)
            return (lambda t: ops.cross_entropy(t, target, reduction)), [logits]
        if kind == "cross_entropy_prob":
            target = rng.dirichlet(np.ones(c), size=b)  # rows of class probabilities
            return (lambda t: ops.cross_entropy(t, target, reduction)), [logits]
        target = rng.uniform(0, 1, size=(b, c))  # soft targets in [0, 1]
        return (lambda t: ops.bce_with_logits(t, target, reduction)), [logits]

    return build


def _matmul(rng):
    m, n, p = dims(rng, 3)
    return ops.matmul, [rng.normal(size=(m, n)), rng.normal(size=(n, p))]


def _linear_map(rng):
    b, n, m = dims(rng, 3)
    return ops.linear_map, [rng.normal(size=(b, n)), rng.normal(size=(m, n))]


def _add_bias(rng):
    b, m = dims(rng, 2)
    return ops.add_bias, [rng.normal(size=(b, m)), rng.normal(size=m)]


def _transpose(rng):
    return ops.transpose, [rng.normal(size=dims(rng, 2))]


def _mul_constant(rng):
    c = float(rng.normal())
    return (lambda t: ops.mul(t, c)), [rng.normal(size=dims(rng, 2))]


def _same_tensor(op):
    def build(rng):  # both operands are one tensor: the two gradients must accumulate
        return (lambda t: op(t, t)), [rng.normal(size=dims(rng, 2))]

    return build


def _layer_chain(rng):
    """Z = X·Wᵀ + b, A = tanh(Z), then a mean: the primitives composed."""
    b, n, m = dims(rng, 3)

    def layer(x, w, bias):
        return ops.mean(ops.tanh(ops.add_bias(ops.linear_map(x, w), bias)), 0)

    return layer, [rng.normal(size=(b, n)), rng.normal(size=(m, n)), rng.normal(size=m)]


PRIMITIVES: dict[str, Callable] = {
    "matmul": _matmul,
    "linear_map": _linear_map,
    "add_bias": _add_bias,
    "transpose": _transpose,
    **{
        f"{op_name}-{pattern}": _binary(op, pattern)
        for op_name, op in BINARY.items()
        for pattern in BROADCASTS
    },
    "mul-constant": _mul_constant,
    "add-same_tensor": _same_tensor(ops.add),
    "mul-same_tensor": _same_tensor(ops.mul),
    **{
        f"{op_name}-axis_{axis}": _reduction(op, axis)
        for op_name, op in (("sum", ops.sum), ("mean", ops.mean))
        for axis in (None, 0, 1)
    },
    "identity": _activation(lambda t: ops.activation(t, ops.Identity())),
    "sigmoid": _activation(ops.sigmoid),
    "tanh": _activation(ops.tanh),
    "relu": _activation(ops.relu, kinked=True),
    "leaky_relu-default": _activation(ops.leaky_relu, kinked=True),
    "leaky_relu-random_slope": _leaky_relu,
    "gelu-none": _gelu_inputs("none"),
    "gelu-tanh": _gelu_inputs("tanh"),
    "silu": _activation(ops.silu),
    "elu": _activation(lambda t: ops.elu(t, 0.7), kinked=True),
    "softplus": _activation(lambda t: ops.softplus(t, 1.5, 20.0)),
    "softmax": _activation(ops.softmax),
    "dropout": _dropout,
    **{
        f"{kind}-{reduction}": _loss(kind, reduction)
        for kind in ("mse", "cross_entropy", "cross_entropy_prob", "bce_with_logits")
        for reduction in ("mean", "sum")
    },
    "composed-dense_tanh_mean": _layer_chain,
}


@pytest.mark.parametrize("name", list(PRIMITIVES))
def test_primitive_gradient(seeded, name):
    fn, arrays = PRIMITIVES[name](seeded.rng)
    check_op(seeded, name, fn, arrays)


# ---------------------------------------------------------------------------------
# Whole networks
# ---------------------------------------------------------------------------------
NETWORK_ACTIVATIONS = {
    "identity": lambda: ACTIVATIONS["identity"](),
    "sigmoid": lambda: ACTIVATIONS["sigmoid"](),
    "tanh": lambda: ACTIVATIONS["tanh"](),
    "relu": lambda: ACTIVATIONS["relu"](),
    "leaky_relu": lambda: ACTIVATIONS["leaky_relu"](0.1),
    "gelu": lambda: ACTIVATIONS["gelu"]("none"),
    "gelu_tanh": lambda: ACTIVATIONS["gelu"]("tanh"),
    "silu": lambda: ACTIVATIONS["silu"](),
    "elu": lambda: ACTIVATIONS["elu"](1.3),
    "softplus": lambda: ACTIVATIONS["softplus"](0.8),
    "relu6": lambda: ACTIVATIONS["relu6"](),
    "hardtanh": lambda: ACTIVATIONS["hardtanh"](-0.7, 1.2),
    "selu": lambda: ACTIVATIONS["selu"](),
    "celu": lambda: ACTIVATIONS["celu"](0.6),
    "mish": lambda: ACTIVATIONS["mish"](),
    "hardswish": lambda: ACTIVATIONS["hardswish"](),
    "hardsigmoid": lambda: ACTIVATIONS["hardsigmoid"](),
    "logsigmoid": lambda: ACTIVATIONS["logsigmoid"](),
    "softsign": lambda: ACTIVATIONS["softsign"](),
    "tanhshrink": lambda: ACTIVATIONS["tanhshrink"](),
    "threshold": lambda: ACTIVATIONS["threshold"](-0.3, 0.2),
    "softmax": lambda: ACTIVATIONS["softmax"](),
}
NETWORK_LOSSES = {
    "mse": wxb.nn.MSELoss,
    "cross_entropy": wxb.nn.CrossEntropyLoss,
    "cross_entropy_prob": wxb.nn.CrossEntropyLoss,
    "bce_with_logits": wxb.nn.BCEWithLogitsLoss,
}


def _targets(rng, loss_name, batch, classes):
    if loss_name == "mse":
        return rng.normal(size=(batch, classes))
    if loss_name == "cross_entropy":
        return rng.integers(0, classes, size=batch)
    if loss_name == "cross_entropy_prob":
        return rng.dirichlet(np.ones(classes), size=batch)
    return rng.uniform(0, 1, size=(batch, classes))


# Where each activation is not twice differentiable. Central differences straddling
# such a point err by O(h) instead of O(h²): a kink (relu, selu, hardswish, …), a jump
# (threshold) or a jump of f″ alone (softsign, celu: a draw with a softsign input at
# 6e-7 gave 1.9e-6 against the tolerance of 1e-6, analytic equal to torch's).
ROUGH_POINTS = {
    "relu": (0.0,),
    "leaky_relu": (0.0,),
    "elu": (0.0,),
    "relu6": (0.0, 6.0),
    "hardtanh": (-0.7, 1.2),
    "selu": (0.0,),
    "celu": (0.0,),
    "hardswish": (-3.0, 3.0),
    "hardsigmoid": (-3.0, 3.0),
    "softsign": (0.0,),
    "threshold": (-0.3,),
}
assert set(ROUGH_POINTS) <= set(NETWORK_ACTIVATIONS)  # a misspelt name would filter nothing


def _min_kink_distance(model: Sequential, X: np.ndarray, activation: str) -> float:
    """Smallest distance of an activation's input to its ROUGH_POINTS (inf if none)."""
    points = ROUGH_POINTS.get(activation, ())
    smallest, x = np.inf, wxb.Tensor(X)
    with wxb.no_grad():
        for layer in model:
            if isinstance(layer, Activation):
                for point in points:
                    smallest = min(smallest, float(np.abs(x.data - point).min()))
            x = layer(x)
    return smallest


def _network(rng, activation):
    """Dense → f after each of 1–3 Dense layers of random widths, float64, random biases."""
    depth = int(rng.integers(1, 4))
    widths = dims(rng, depth + 1, 2, 6)  # ≥ 2: also two classes at least for cross-entropy
    layers = []
    for fan_in, fan_out in itertools.pairwise(widths):
        dense = Dense(fan_in, fan_out, dtype="float64", seed=int(rng.integers(1 << 62)))
        dense.bias.data[...] = rng.normal(scale=0.5, size=fan_out)
        layers += [dense, NETWORK_ACTIVATIONS[activation]()]
    return Sequential(*layers), widths


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("loss_name", list(NETWORK_LOSSES))
@pytest.mark.parametrize("activation", list(NETWORK_ACTIVATIONS))
def test_network_gradient(seeded, activation, loss_name, reduction):
    rng = seeded.rng
    loss_fn = NETWORK_LOSSES[loss_name](reduction)
    for _ in range(200):  # redraw until the check is well posed (see below)
        model, widths = _network(rng, activation)
        batch = int(rng.integers(1, 6))
        X = rng.normal(size=(batch, widths[0]))
        y = _targets(rng, loss_name, batch, widths[-1])
        if _min_kink_distance(model, X, activation) < KINK_GAP:
            continue  # finite differences would straddle a rough point

        def f(model=model, X=X, y=y) -> float:
            with wxb.no_grad():
                return float(loss_fn(model(wxb.Tensor(X)), y).data)

        tensors = [*model.named_parameters(), ("input X", X)]
        numeric = {
            name: numeric_gradient(f, t if isinstance(t, np.ndarray) else t.data)
            for name, t in tensors
        }
        # Finite differences carry noise ≈ ε·|L|/h per entry. A draw in which some
        # gradient sinks toward that floor (saturated sigmoids, dead relus, a chance
        # cancellation) cannot be judged at 1e-6; draw another network instead.
        floor = NOISE_MARGIN * np.finfo(np.float64).eps * max(abs(f()), 1.0) / STEP
        if all(np.linalg.norm(g) >= floor * np.sqrt(g.size) / TOLERANCE for g in numeric.values()):
            break
    else:
        pytest.fail(seeded.msg("could not draw a well-posed network in 200 tries"))
    where = f"{activation}/{loss_name}/{reduction}, widths {widths}, batch {batch}"

    x = wxb.Tensor(X.copy(), requires_grad=True)
    value = loss_fn(model(x), y)
    assert value.dtype == np.float64, seeded.msg(f"{where}: loss is {value.dtype}")
    value.backward()
    analytic = {name: p.grad for name, p in model.named_parameters()}
    analytic["input X"] = x.grad
    for name, grad in analytic.items():
        assert grad is not None, seeded.msg(f"{where}: {name} got no gradient")
        error = relative_error(grad, numeric[name])
        assert error < TOLERANCE, seeded.msg(
            f"{where}: {name}: relative error {error:.3e}\n"
            f"analytic={grad!r}\nnumeric={numeric[name]!r}"
        )
