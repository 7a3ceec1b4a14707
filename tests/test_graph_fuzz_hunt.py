"""Random computation graphs a PyTorch user could write on wxb tensors, checked against
the same graph in PyTorch: every value, every leaf's ``.grad`` and its dtype.

A graph is 3 to 8 operations on leaves of every broadcasting shape (scalars, (1, n),
(m, 1), 1-D, 0-d, 3-D), each operation reading values made before it (so values are
reused and their gradients must add up): arithmetic with tensors, NumPy arrays and
scalars, Python numbers, int and bool arrays; reductions with every kind of axis;
max and min at ties; indexing with steps, negative and repeated indices and masks;
reshapes, joins, clamps at their bounds, powers, matmul with vectors, detach. The
seed of each run is printed in the assertion (replay with ``WXB_TEST_SEED=<seed>``).
Then models a user writes (tied, frozen, reused and reassigned parameters), trained a
few steps with SGD and Adam beside PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from rounding import rounding_atol

import wxb
from wxb import nn, ops, optim
from wxb.errors import TrainingError
from wxb.tensor import Tensor

torch = pytest.importorskip("torch")

TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


class Pair:
    """One value of the graph, as wxb computed it and as torch did."""

    def __init__(self, w: Tensor, t: torch.Tensor) -> None:
        self.w, self.t = w, t

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.t.shape)


def both(f: Callable, *values: Pair) -> Pair:
    """f on the wxb side and on the torch side; f is told which it runs on."""
    return Pair(f(*(v.w for v in values), lib="w"), f(*(v.t for v in values), lib="t"))


def positive(v: Pair) -> Pair:
    return both(lambda x, lib: x * x + 0.5, v)


def random_axis(rng, ndim: int) -> object:
    """None, an axis, a negative axis, or a tuple of distinct axes (some negative)."""
    kind = rng.integers(0, 4) if ndim else 0
    if kind == 0:
        return None
    if kind == 1:
        return int(rng.integers(0, ndim))
    if kind == 2:
        return -int(rng.integers(1, ndim + 1))
    axes = rng.choice(ndim, size=int(rng.integers(1, ndim + 1)), replace=False)
    return tuple(int(a) - (ndim if rng.random() < 0.5 else 0) for a in axes)


def _binary(rng, v: Pair, values: list[Pair]) -> Pair | None:
    u = values[rng.integers(len(values))]
    try:
        np.broadcast_shapes(u.shape, v.shape)
    except ValueError:
        return None
    op = rng.choice(["+", "-", "*", "/", "**"])
    if op == "+":
        return both(lambda a, b, lib: a + b, v, u)
    if op == "-":
        return both(lambda a, b, lib: a - b, v, u)
    if op == "*":
        return both(lambda a, b, lib: a * b, v, u)
    if op == "/":
        return both(lambda a, b, lib: a / b, v, positive(u))
    return both(lambda a, b, lib: a**b, positive(v), both(lambda x, lib: x.tanh(), u))


def _operand(rng, v: Pair) -> Pair:
    """v with a constant that is not a wxb tensor: a Python number, a NumPy scalar, a
    float, int or bool array of a shape that broadcasts. An array takes the tensor's
    dtype (wxb's documented rule, as torch's for a Python number)."""
    shape, ndim = v.shape, len(v.shape)
    pick = rng.integers(0, 7)
    if pick == 0:
        c = float(rng.normal())
    elif pick == 1:
        c = int(rng.integers(-3, 4))
    elif pick == 2:
        c = np.float64(rng.normal()) if rng.random() < 0.5 else np.float32(rng.normal())
    elif pick == 3 and ndim:
        c = rng.normal(size=(1, *shape[1:]) if rng.random() < 0.5 else shape[-1:])
    elif pick == 4 and ndim:
        c = rng.integers(-2, 3, size=shape[-1:])
    elif pick == 5:
        c = rng.random(size=shape) < 0.5
    else:
        c = rng.normal(size=shape)
    dtype = v.t.dtype
    tc = torch.tensor(c, dtype=dtype) if isinstance(c, np.ndarray) else c
    if isinstance(c, np.generic):
        tc = float(c)
    op = rng.integers(0, 6)

    def f(x, lib):
        k = c if lib == "w" else tc
        if op == 0:
            return k + x
        if op == 1:
            return k - x
        if op == 2:
            return k * x
        if op == 3:
            return x * k - k
        if op == 4:
            return x**2 * k
        return k / (x * x + 1)

    return both(f, v)


def _unary(rng, v: Pair) -> Pair:
    fn = rng.choice(
        ["exp", "tanh", "sigmoid", "abs", "relu", "log", "sqrt", "neg", "square", "pow"]
    )
    exponent = float(rng.choice([-2, -1, -0.5, 0.5, 1.5, 3, 0]))

    def f(x, lib):
        if fn == "exp":
            return x.tanh().exp()
        if fn == "log":
            return (x * x + 0.3).log()
        if fn == "sqrt":
            return (x * x + 0.3).sqrt()
        if fn == "neg":
            return -x
        if fn == "pow":  # negative and fractional exponents, on a positive base
            return (x * x + 0.5) ** exponent
        return getattr(x, fn)()

    return both(f, v)


def _reduction(rng, v: Pair) -> Pair | None:
    ndim = len(v.shape)
    name = rng.choice(["sum", "mean", "var", "std"])
    axis, keep = random_axis(rng, ndim), bool(rng.random() < 0.5)
    if name in ("var", "std"):  # a count of 1 is NaN in both; left out
        axes = range(ndim) if axis is None else (axis,) if isinstance(axis, int) else axis
        if np.prod([v.shape[a] for a in axes]) < 2:
            return None
    if rng.random() < 0.3 and name in ("sum", "mean"):  # NumPy's spelling on the wxb side
        numpy_f = getattr(np, name)
        return both(
            lambda x, lib: (
                numpy_f(x, axis=axis, keepdims=keep)
                if lib == "w"
                else getattr(x, name)(dim=axis, keepdim=keep)
            ),
            v,
        )
    if name == "std":  # √ is ill-conditioned at 0: equal values (a std of 0 in one library,
        # 1e-17 in the other) give a gradient of 0 by torch's rule, or rounding noise / 1e-17
        jitter = rng.normal(size=v.shape)
        return both(
            lambda x, lib: (
                x + (jitter if lib == "w" else torch.tensor(jitter, dtype=x.dtype))
            ).std(dim=axis, keepdim=keep),
            v,
        )
    return both(lambda x, lib: getattr(x, name)(dim=axis, keepdim=keep), v)


def _on_a_grid(x, lib: str, per: int):
    """x's values rounded to multiples of 1/``per``, with x's gradient: values equal in
    exact arithmetic but a rounding apart in one library (a std of rows that differ by
    a shift) become exact ties in both, not a tie in one and a strict order in the other."""
    if lib == "w":
        return Tensor(np.round(x.data * per) / per) + (x - x.detach())
    return x + ((x * per).round() / per - x).detach()


def _extreme(rng, v: Pair) -> Pair | None:
    """max/min along a dim (the values; leaves are often whole numbers: ties), or over
    everything, scaled by the value itself so the gradient takes both paths; on values
    rounded to eighths, so that ties are exact in both libraries."""
    name = rng.choice(["max", "min"])
    ndim = len(v.shape)
    if ndim and rng.random() < 0.6:
        dim, keep = int(rng.integers(-ndim, ndim)), bool(rng.random() < 0.5)
        return both(lambda x, lib: getattr(_on_a_grid(x, lib, 8), name)(dim, keep)[0], v)
    return both(lambda x, lib: getattr(_on_a_grid(x, lib, 8), name)() * x, v)


def _shape_op(rng, v: Pair) -> Pair | None:
    ndim = len(v.shape)
    kind = rng.integers(0, 6)
    if kind == 0:
        return both(lambda x, lib: x.reshape(-1), v)
    if kind == 1 and ndim:
        start = int(rng.integers(-ndim, ndim))
        return both(lambda x, lib: x.flatten(start), v)
    if kind == 2 and ndim >= 2:
        d0, d1 = int(rng.integers(-ndim, ndim)), int(rng.integers(-ndim, ndim))
        return both(lambda x, lib: x.transpose(d0, d1), v)
    if kind == 3 and ndim == 2:
        return both(lambda x, lib: x.T, v)
    if kind == 4 and 1 in v.shape:
        sizes = tuple(3 if n == 1 else -1 for n in v.shape)
        return both(lambda x, lib: x.expand(*sizes), v)
    if kind == 5 and ndim:
        reps = tuple(int(r) for r in rng.integers(1, 3, size=ndim + int(rng.integers(0, 2))))
        return both(lambda x, lib: x.repeat(*reps), v)
    d = int(rng.integers(-ndim - 1, ndim + 1))
    return both(lambda x, lib: x.unsqueeze(d).squeeze(d) + x.unsqueeze(d).sum(d), v)


def _indexing(rng, v: Pair) -> Pair | None:
    """Steps and negative starts, repeated (negative) indices, masks, integers, index
    arrays beside slices and ``...``: torch's side gets the same picks as index tensors."""
    if not v.shape:
        return None
    n0, ndim = v.shape[0], len(v.shape)
    kind = rng.integers(0, 6)
    if kind == 0:
        key = slice(int(rng.integers(-n0, n0)), None, int(rng.choice([1, 2, -1, -2])))
        picks = np.arange(n0)[key]
        if not picks.size:
            return None
        # torch's own basic ops for it (a slice, after a flip for a negative step: torch
        # takes no negative step), which save no index tensor, as wxb's slice
        flipped = key.step < 0
        at = (n0 - 1 - picks) if flipped else picks
        same = slice(int(at[0]), int(at[-1]) + 1, abs(key.step))
        return both(lambda x, lib: x[key] if lib == "w" else (x.flip(0) if flipped else x)[same], v)
    if kind == 1:  # repeats: their gradients add up
        key = rng.integers(-n0, n0, size=int(rng.integers(1, 7)))
        return both(lambda x, lib: x[key] if lib == "w" else x[torch.tensor(key)], v)
    if kind == 2:
        mask = rng.random(v.shape) < 0.6
        if not mask.any():
            return None
        return both(lambda x, lib: x[mask] if lib == "w" else x[torch.tensor(mask)], v)
    if kind == 3:
        i = int(rng.integers(-n0, n0))
        return both(lambda x, lib: x[i], v)
    if kind == 4 and ndim >= 2:
        rows = rng.integers(0, n0, size=3)
        return both(
            lambda x, lib: x[rows, ::-1] if lib == "w" else x[torch.tensor(rows)].flip(1), v
        )
    last = rng.integers(-v.shape[-1], v.shape[-1], size=4)
    return both(lambda x, lib: x[..., last] if lib == "w" else x[..., torch.tensor(last)], v)


def _join(rng, v: Pair, values: list[Pair]) -> Pair | None:
    if not v.shape:
        return None
    ndim = len(v.shape)
    u = values[rng.integers(len(values))]
    if u.shape == v.shape and rng.random() < 0.5:  # v twice among them
        axis = int(rng.integers(-ndim - 1, ndim + 1))
        return Pair(ops.stack([v.w, u.w, v.w], axis=axis), torch.stack([v.t, u.t, v.t], axis))
    axis = int(rng.integers(-ndim, ndim))
    join = np.concatenate if rng.random() < 0.5 else ops.concatenate
    return Pair(join([v.w, v.w * 2.0], axis=axis), torch.cat([v.t, v.t * 2.0], axis))


def _clamp(rng, v: Pair) -> Pair:
    """Clamped where values sit exactly on a bound (both rounded to tenths): PyTorch's
    rule passes the gradient at a bound (min ≤ x ≤ max)."""
    low = float(np.round(rng.normal(), 1))
    high = low + float(rng.choice([0.0, 0.5, 1.0]))

    return both(lambda x, lib: _on_a_grid(x, lib, 10).clamp(low, high), v)


def _matmul(rng, v: Pair, values: list[Pair]) -> Pair | None:
    """A·B with matrices and vectors on either side (torch's @: mixed dtypes refused,
    so its side is cast to the wider, wxb's promotes)."""
    candidates = [u for u in values if u.shape and v.shape and u.shape[0] == v.shape[-1]]
    if len(v.shape) not in (1, 2) or not candidates:
        return None
    u = candidates[rng.integers(len(candidates))]
    if len(u.shape) > 2:
        return None

    def f(a, b, lib):
        if lib == "w":
            return a @ b
        wide = torch.promote_types(a.dtype, b.dtype)
        return a.to(wide) @ b.to(wide)

    return both(f, v, u)


def _other(rng, v: Pair) -> Pair | None:
    kind = rng.integers(0, 5)
    if kind == 0:  # a detached copy: no gradient through it
        return both(lambda x, lib: x.detach() * x, v)
    if kind == 1 and v.shape:
        d = int(rng.integers(-len(v.shape), len(v.shape)))
        name = rng.choice(["softmax", "log_softmax"])
        return both(lambda x, lib: getattr(x, name)(d), v)
    if kind == 2:
        return both(lambda x, lib: x.clone() * x, v)
    if kind == 3:  # an array on the left: NumPy hands the operation to the tensor
        arr = rng.normal(size=v.shape[-1:])
        return both(lambda x, lib: (arr if lib == "w" else torch.tensor(arr, dtype=x.dtype)) - x, v)
    if kind == 4:  # under no_grad, a constant of the graph
        with wxb.no_grad(), torch.no_grad():
            c = both(lambda x, lib: x * 3.0, v)
        return both(lambda x, c, lib: x * c, v, c)
    return None


def build_graph(rng, dtype: object) -> tuple[list[Pair], list[Pair], list[str]]:
    """Leaves of every broadcasting shape and the 3 to 8 values computed from them."""
    m, n, p = (int(k) for k in rng.integers(1, 5, size=3))
    shapes = [(m, n), (1, n), (m, 1), (n,), ()]
    if rng.random() < 0.5:
        shapes += [(p, m, n), (p, 1, n)]
    leaves = []
    for shape in shapes:
        a = rng.normal(size=shape)
        if rng.random() < 0.3:
            a = np.round(a)  # whole numbers: ties for max, min and clamp
        kind = rng.choice([np.float32, np.float64]) if dtype == "mixed" else dtype
        a = a.astype(kind)
        leaves.append(
            Pair(Tensor(a.copy(), requires_grad=True), torch.tensor(a, requires_grad=True))
        )
    values, done = list(leaves), []
    steps = {
        "binary": lambda v: _binary(rng, v, values),
        "operand": lambda v: _operand(rng, v),
        "unary": lambda v: _unary(rng, v),
        "reduction": lambda v: _reduction(rng, v),
        "extreme": lambda v: _extreme(rng, v),
        "shape": lambda v: _shape_op(rng, v),
        "index": lambda v: _indexing(rng, v),
        "join": lambda v: _join(rng, v, values),
        "clamp": lambda v: _clamp(rng, v),
        "matmul": lambda v: _matmul(rng, v, values),
        "other": lambda v: _other(rng, v),
    }
    names = list(steps)
    depth = int(rng.integers(3, 9))
    while len(done) < depth:
        name = names[rng.integers(len(names))]
        v = values[rng.integers(len(values))]
        out = steps[name](v)
        if out is not None and out.w.data.size:
            values.append(out)
            done.append(f"{name} of a {v.shape} value → {out.shape}")
    return leaves, values[len(leaves) :], done


def _tolerance(dtype: object) -> float:
    return 1e-9 if dtype == np.float64 else 2e-3


def _close(actual: np.ndarray, expected: torch.Tensor, tol: float) -> bool:
    expected = expected.detach().numpy()
    scale = max(1.0, float(np.nanmax(np.abs(expected), initial=0.0)))
    return actual.shape == expected.shape and np.allclose(
        actual, expected, rtol=tol, atol=tol * scale, equal_nan=True
    )


def check_graph(seed: int, dtype: object) -> None:
    rng = np.random.default_rng(seed)
    leaves, outs, done = build_graph(rng, dtype)
    where = f"seed {seed} ({dtype}): " + "; ".join(done)
    tol = _tolerance(dtype)
    for i, o in enumerate(outs):
        assert o.w.dtype == TORCH_DTYPES_INV[o.t.dtype], f"dtype of value {i}: {where}"
        assert _close(o.w.data, o.t, tol), f"value {i}: {where}"
    # (not where torch returned its input itself, as flatten does when nothing is merged)
    torch_ids = [id(v.t) for v in leaves + outs]
    retained = [
        o
        for o in outs
        if o.t.requires_grad and torch_ids.count(id(o.t)) == 1 and rng.random() < 0.5
    ]
    for o in retained:  # their own gradients kept too, in their own dtype
        o.w.retain_grad()
        o.t.retain_grad()
    loss_w = loss_t = 0
    for o in outs[-3:]:  # the last values, each weighted: every path counts
        r = rng.normal(size=o.shape).astype(o.w.dtype)
        loss_w = loss_w + (o.w * r).sum()
        loss_t = loss_t + (o.t * torch.tensor(r)).sum()
    loss_w.backward()
    loss_t.backward()
    for j, leaf in enumerate(leaves):
        if leaf.t.grad is None:  # not reached: None as torch's (or zeros through a pick)
            assert leaf.w.grad is None or not leaf.w.grad.any(), f"leaf {j}: {where}"
            continue
        assert leaf.w.grad is not None, f"leaf {j} got no gradient: {where}"
        assert leaf.w.grad.dtype == leaf.w.dtype, f"leaf {j}'s gradient dtype: {where}"
        assert _close(leaf.w.grad, leaf.t.grad, 10 * tol), f"leaf {j}'s gradient: {where}"
    for o in retained:
        if o.t.grad is None:
            assert o.w.grad is None or not o.w.grad.any(), f"retained {o.shape}: {where}"
            continue
        assert o.w.grad.dtype == o.w.dtype, f"retained gradient's dtype: {where}"
        assert _close(o.w.grad, o.t.grad, 10 * tol), f"retained gradient: {where}"


TORCH_DTYPES_INV = {v: k for k, v in TORCH_DTYPES.items()}


@pytest.mark.parametrize(("dtype", "count"), [(np.float64, 400), (np.float32, 200), ("mixed", 200)])
def test_random_graphs_give_torchs_values_and_gradients(seeded, dtype, count):
    """Every value, every leaf's .grad and both dtypes, as torch computes them: in
    float64 to 1e-9, in float32 and in float32 mixed with float64 to float32's rounding."""
    base = int(seeded.rng.integers(2**62))
    for k in range(count):
        check_graph(base + k, dtype)


def pair(array: np.ndarray) -> tuple[Tensor, torch.Tensor]:
    return Tensor(array.copy(), requires_grad=True), torch.tensor(array, requires_grad=True)


def whole_numbers(rng, shape: tuple[int, ...]) -> np.ndarray:
    """Few distinct whole numbers: ties everywhere."""
    return rng.integers(-2, 3, size=shape).astype(np.float64)


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_and_min_at_ties_send_the_gradient_as_torchs(seeded, name):
    """At a tie, torch's max(dim) sends each value's gradient to the index it returns
    (the first of the tied elements), and max() over everything shares it evenly among
    the tied ones; wxb does the same, along every dim and over everything."""
    rng = seeded.rng
    shape = tuple(int(k) for k in rng.integers(2, 5, size=3))
    a = whole_numbers(rng, shape)
    for dim in range(-3, 3):
        for keep in (False, True):
            x, t = pair(a)
            got, want = getattr(x, name)(dim, keep), getattr(t, name)(dim, keep)
            np.testing.assert_array_equal(got[1], want[1].numpy(), err_msg=seeded.msg("index"))
            r = rng.normal(size=tuple(want[0].shape))
            (got[0] * r).sum().backward()
            (want[0] * torch.tensor(r)).sum().backward()
            np.testing.assert_allclose(x.grad, t.grad.numpy(), err_msg=seeded.msg(f"dim {dim}"))
    x, t = pair(a)
    (getattr(x, name)() * 3.0).backward()
    (getattr(t, name)() * 3.0).backward()
    np.testing.assert_allclose(x.grad, t.grad.numpy(), err_msg=seeded.msg("over everything"))


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_over_everything_with_keepdims_keeps_every_dimension(seeded, name):
    """np.max(x, keepdims=True) on a tensor gave a 0-d value, where NumPy's (and torch's
    amax(x, dim=(), keepdim=True)) keeps every dimension as size 1; the same values,
    and the gradient, shared among ties, through them."""
    rng = seeded.rng
    shape = tuple(int(k) for k in rng.integers(1, 4, size=int(rng.integers(1, 4))))
    a = whole_numbers(rng, shape)
    x, t = pair(a)
    got = getattr(np, name)(x, keepdims=True)
    want = getattr(torch, f"a{name}")(t, dim=tuple(range(len(shape))), keepdim=True)
    assert got.shape == getattr(np, name)(a, keepdims=True).shape, seeded.msg("shape")
    np.testing.assert_array_equal(got.data, want.detach().numpy(), err_msg=seeded.msg("value"))
    r = rng.normal(size=shape)
    (x * got * r).sum().backward()
    (t * want * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-12, err_msg=seeded.msg("grad"))


@pytest.mark.parametrize("sides", ["vector @ matrix", "matrix @ vector", "vector @ vector"])
@pytest.mark.parametrize("left", ["tensor", "array"])
def test_matmul_with_a_vector_as_torchs_and_numpys(seeded, sides, left):
    """x @ w with a 1-D w (a linear model's weights), v @ W, v @ w: torch and NumPy drop
    the vector's dimension from the product; wxb refused them (ShapeError). The values,
    the shape and both gradients as torch's; an array on the left, as NumPy's."""
    rng = seeded.rng
    m, n, p = (int(k) for k in rng.integers(1, 6, size=3))
    shape_a, shape_b = {
        "vector @ matrix": ((n,), (n, p)),
        "matrix @ vector": ((m, n), (n,)),
        "vector @ vector": ((n,), (n,)),
    }[sides]
    a, b = rng.normal(size=shape_a), rng.normal(size=shape_b)
    (x, tx), (y, ty) = pair(a), pair(b)
    got = (a if left == "array" else x) @ y
    want = (torch.tensor(a) if left == "array" else tx) @ ty
    assert got.shape == (a @ b).shape == tuple(want.shape), seeded.msg(sides)
    np.testing.assert_allclose(got.data, want.detach().numpy(), rtol=1e-12, atol=1e-12)
    r = rng.normal(size=got.shape)
    (got * r).sum().backward()
    (want * torch.tensor(r)).sum().backward()
    # each gradient entry sums up to 5 products of an operand and r: one that cancels
    # near 0 differs from torch's by the rounding of those terms alone
    k = max(m, n, p)
    atol_b = rounding_atol(k * np.abs(a).max() * np.abs(r).max(), k)
    atol_a = rounding_atol(k * np.abs(b).max() * np.abs(r).max(), k)
    np.testing.assert_allclose(
        y.grad, ty.grad.numpy(), rtol=1e-12, atol=atol_b, err_msg=seeded.msg("∂B")
    )
    if left == "tensor":
        np.testing.assert_allclose(
            x.grad, tx.grad.numpy(), rtol=1e-12, atol=atol_a, err_msg=seeded.msg("∂A")
        )


def test_a_vector_of_another_length_is_still_refused_by_name(seeded):
    rng = seeded.rng
    n = int(rng.integers(2, 6))
    with pytest.raises(wxb.ShapeError, match=rf"matmul: .*got A {n + 1} and B {n}×2"):
        Tensor(rng.normal(size=n + 1)) @ Tensor(rng.normal(size=(n, 2)))


def test_backward_twice_and_gradients_adding_up_until_cleared_as_torchs(seeded):
    """A random graph's last value, backward with a given upstream gradient and the
    graph kept, twice: each leaf's .grad is the sum of both, as torch's; cleared, the
    next backward starts from nothing; a third backward through the freed graph raises
    where torch's does (a node saved a tensor), and adds the gradients again where
    torch's does (no node saved one: sums, additions, views)."""
    base = int(seeded.rng.integers(2**62))
    for k in range(20):
        rng = np.random.default_rng(base + k)
        leaves, outs, done = build_graph(rng, np.float64)
        where = f"seed {base + k}: " + "; ".join(done)
        out = outs[-1]
        for retain in (True, False):
            g = rng.normal(size=out.shape)
            out.w.backward(g, retain_graph=True)
            out.t.backward(torch.tensor(g), retain_graph=True)
            out.w.backward(2 * g, retain_graph=retain)
            out.t.backward(torch.tensor(2 * g), retain_graph=retain)
            for j, leaf in enumerate(leaves):
                if leaf.t.grad is None:
                    assert leaf.w.grad is None or not leaf.w.grad.any(), f"leaf {j}: {where}"
                    continue
                assert _close(leaf.w.grad, leaf.t.grad, 1e-8), f"leaf {j}: {where}"
                leaf.w.grad, leaf.t.grad = None, None
        try:
            out.t.backward(torch.tensor(g))
        except RuntimeError as error:
            assert "second time" in str(error), f"{error}: {where}"
            with pytest.raises(TrainingError, match="second time"):
                out.w.backward(g)
            continue
        out.w.backward(g)
        for j, leaf in enumerate(leaves):
            if leaf.t.grad is None:
                assert leaf.w.grad is None or not leaf.w.grad.any(), f"leaf {j}: {where}"
            else:
                assert _close(leaf.w.grad, leaf.t.grad, 1e-8), f"leaf {j}, third: {where}"


def _in_place_cases() -> dict[str, Callable]:
    """Each: build a graph, change a tensor it read in place, run backward (torch raises
    for each one; wxb must raise, not give the gradient of other values)."""

    def input_of_a_product(lib, a):
        x = lib.tensor(a, requires_grad=True)
        h = x * 2.0
        y = h * h
        with lib.no_grad():
            h += 1.0
        return y.sum()

    def result_an_exp_saves(lib, a):
        x = lib.tensor(a, requires_grad=True)
        y = x.exp()
        with lib.no_grad():
            y[0] = 5.0
        return y.sum()

    def through_a_view(lib, a):
        x = lib.tensor(a, requires_grad=True)
        h = x * 1.0
        y = (h * h).sum()
        with lib.no_grad():
            v = h[1:]
            v *= 3.0
        return y

    def a_detached_copy(lib, a):
        x = lib.tensor(a, requires_grad=True)
        y = x.sigmoid()
        with lib.no_grad():
            d = y.detach()
            d += 1.0
        return y.sum()

    def a_leaf_updated_by_hand(lib, a):
        x = lib.tensor(a, requires_grad=True)
        y = (x * x).sum()
        with lib.no_grad():
            x -= 0.1
        return y

    def data_without_grad_a_weight_reads(lib, a):
        w = lib.tensor(a[:, :1], requires_grad=True)
        data = lib.tensor(a)
        y = (data @ w).sum()
        data[0, 0] = 7.0
        return y

    return {f.__name__: f for f in (input_of_a_product, result_an_exp_saves, through_a_view,
                                    a_detached_copy, a_leaf_updated_by_hand,
                                    data_without_grad_a_weight_reads)}  # fmt: skip


class _WxbLib:
    """torch's spelling of the calls the cases make, on wxb."""

    no_grad = wxb.no_grad

    @staticmethod
    def tensor(a, requires_grad=False):
        return Tensor(np.array(a), requires_grad=requires_grad)


@pytest.mark.parametrize("case", list(_in_place_cases()))
def test_an_in_place_change_of_what_the_graph_reads_is_refused_as_torchs(seeded, case):
    rng = seeded.rng
    a = rng.normal(size=(3, 3))
    build = _in_place_cases()[case]
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        build(torch, a).backward()
    with pytest.raises(TrainingError, match="modified in place"):
        build(_WxbLib, a).backward()


def test_leaves_that_do_not_reach_the_loss_have_no_gradient_as_torchs(seeded):
    """A leaf used only through detach(), only under no_grad, only in another graph, or
    not at all keeps .grad None; one picked by an empty index gets zeros (torch's)."""
    rng = seeded.rng
    arrays = [rng.normal(size=(3, 2)) for _ in range(5)]
    w = [pair(a) for a in arrays]
    for lib, (a, b, c, d, e) in ((0, [p[0] for p in w]), (1, [p[1] for p in w])):
        grad_mode = wxb.no_grad if lib == 0 else torch.no_grad
        with grad_mode():
            constant = b * 2.0
        other = (c * 3.0).sum()  # another graph, never run backward
        empty = e[[]] if lib == 0 else e[torch.tensor([], dtype=torch.long)]
        loss = (a * a.detach() + constant + d.detach()).sum() + empty.sum()
        loss.backward()
        del other
    for j, (x, t) in enumerate(w):
        if t.grad is None:
            assert x.grad is None, seeded.msg(f"leaf {j}")
        else:
            np.testing.assert_allclose(x.grad, t.grad.numpy(), err_msg=seeded.msg(f"leaf {j}"))


# -- models a user writes, trained beside torch ---------------------------------------------
class _Own(nn.Module):
    """A model of one's own: a parameter used twice in one forward (a.weight, also as a
    matrix of its own), a submodule called twice, a scalar parameter, two layers that
    may share a weight."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2)
        self.scale = nn.Parameter(np.array(0.7))

    def forward(self, x):
        h = self.a(x).tanh()
        h = self.b(h) * self.scale + h @ self.a.weight
        return self.c(h.sigmoid()) + self.c(h * 0.5)


class _OwnTorch(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)
        self.c = torch.nn.Linear(4, 2)
        self.scale = torch.nn.Parameter(torch.tensor(0.7))

    def forward(self, x):
        h = torch.tanh(self.a(x))
        h = self.b(h) * self.scale + h @ self.a.weight
        return self.c(torch.sigmoid(h)) + self.c(h * 0.5)


def _sequential():
    shared = nn.Linear(4, 4), torch.nn.Linear(4, 4)  # the same layer twice in the stack
    layers = [
        (nn.Linear(4, 4), torch.nn.Linear(4, 4)),
        (nn.Tanh(), torch.nn.Tanh()),
        shared,
        (nn.ReLU(), torch.nn.ReLU()),
        (nn.Linear(4, 4), torch.nn.Linear(4, 4)),
        (nn.Sigmoid(), torch.nn.Sigmoid()),
        shared,
        (nn.Linear(4, 2), torch.nn.Linear(4, 2)),
    ]
    return nn.Sequential(*(w for w, _ in layers)), torch.nn.Sequential(*(t for _, t in layers))


def _models(kind: str, dtype: str = "float64"):
    if kind == "own":
        mw, mt = _Own(), _OwnTorch()
    else:
        mw, mt = _sequential()
    mw.to(dtype)
    mt.to(getattr(torch, dtype))
    pw, pt = list(mw.parameters()), list(mt.parameters())
    assert len(pw) == len(pt)
    with torch.no_grad():
        for p, q in zip(pw, pt, strict=True):
            q.copy_(torch.tensor(p.data))
    return mw, mt


def _layer(model, kind: str, k: int):
    """The k-th Linear of either model (own: a, b, c)."""
    if kind == "own":
        return getattr(model, "abc"[k])
    return [m for m in model if isinstance(m, (nn.Linear, torch.nn.Linear))][k]


def _scenario(name: str, kind: str, mw, mt, step: int, new: np.ndarray) -> None:
    """What the user does to both models before ``step``."""
    for model, lib in ((mw, nn), (mt, torch.nn)):
        first, second = _layer(model, kind, 0), _layer(model, kind, 1)
        if name == "tied" and step == 0:  # two layers share one weight from the start
            second.weight = first.weight
        elif name == "tied after the optimizer" and step == 2:
            second.weight = first.weight
        elif name == "frozen in the middle" and step == 0:
            second.weight.requires_grad_(False)
        elif name == "frozen, then thawed" and step in (1, 3):
            second.weight.requires_grad_(step == 3)
        elif name == "reassigned after the optimizer" and step == 2:
            # the optimiser keeps the old parameter; the new one gets gradients only
            data = torch.tensor(new) if lib is torch.nn else new
            second.weight = lib.Parameter(data)
        elif name == "set through .data" and step == 2:
            if lib is torch.nn:
                second.weight.data = torch.tensor(new)
            else:
                second.weight.data = new.copy()


SCENARIOS = [
    "plain",
    "tied",
    "tied after the optimizer",
    "frozen in the middle",
    "frozen, then thawed",
    "reassigned after the optimizer",
    "set through .data",
]


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("kind", ["own", "sequential"])
@pytest.mark.parametrize("opt", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_models_weights_after_a_few_steps_are_torchs(seeded, scenario, kind, opt, dtype):
    """Forward (twice per step: a Sequential's planned stack pending twice, with the
    input's own gradient), backward, step, five times; losses, every gradient, the
    input's gradient and every weight after each step equal torch's to rounding (in
    float32: to 1e-5, where a run of 40 seeds differed by 6e-7 at most)."""
    rng = seeded.rng
    mw, mt = _models(kind, dtype)
    rtol, atol = (1e-9, 1e-12) if dtype == "float64" else (1e-4, 1e-5)
    settings = {"lr": 0.05, "weight_decay": 0.01}
    if opt == "sgd":
        ow = optim.SGD(mw.parameters(), momentum=0.9, **settings)
        ot = torch.optim.SGD(mt.parameters(), momentum=0.9, **settings)
    else:
        ow, ot = (
            optim.Adam(mw.parameters(), **settings),
            torch.optim.Adam(mt.parameters(), **settings),
        )
    new = rng.normal(size=(4, 4)).astype(dtype)
    for step in range(5):
        _scenario(scenario, kind, mw, mt, step, new)
        X = rng.normal(size=(5, 4)).astype(dtype)
        X2 = rng.normal(size=(int(rng.integers(1, 4)), 4)).astype(dtype)
        ow.zero_grad()
        ot.zero_grad()
        (xw, xt), (x2w, x2t) = pair(X), pair(X2)
        lw = (mw(xw) ** 2).mean() + (mw(x2w) * 0.5).sum()
        lt = (mt(xt) ** 2).mean() + (mt(x2t) * 0.5).sum()
        lw.backward()
        lt.backward()
        msg = seeded.msg(f"{scenario}, {kind}, {opt}, step {step}")
        np.testing.assert_allclose(float(lw), lt.item(), rtol=rtol, atol=atol, err_msg=msg)
        for a, b in ((xw, xt), (x2w, x2t)):
            np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=rtol, atol=atol, err_msg=msg)
        for (name, p), q in zip(mw.named_parameters(), mt.parameters(), strict=True):
            assert (p.grad is None) == (q.grad is None), f"{name}: {msg}"
            if q.grad is not None:
                np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=rtol, atol=atol,
                                           err_msg=f"{name}: {msg}")  # fmt: skip
        ow.step()
        ot.step()
        for (name, p), q in zip(mw.named_parameters(), mt.parameters(), strict=True):
            np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=rtol, atol=atol,
                                       err_msg=f"{name}: {msg}")  # fmt: skip


@pytest.mark.parametrize("what", ["indices", "a mask", "one index", "beside an integer"])
def test_a_float_tensor_as_an_index_is_refused_by_name(seeded, what):
    """Tensor() makes integers and booleans floats, so idx = Tensor([0, 2]) (torch's
    torch.tensor([0, 2]) is int64) reached NumPy's bare IndexError ("arrays used as
    indices must be of integer (or boolean) type"), naming neither the tensor nor the
    way out; reading a float mask as indices 0 and 1 would be a silent wrong pick."""
    rng = seeded.rng
    x = Tensor(rng.normal(size=(3, 2)), requires_grad=True)
    key = {
        "indices": Tensor(np.array([0, 2])),
        "a mask": Tensor(np.array([True, False, True])),
        "one index": Tensor(2.0),
        "beside an integer": (0, Tensor(np.array([1]))),
    }[what]
    with pytest.raises(wxb.DataError, match=r"index: a wxb Tensor used as an index holds float"):
        x[key]
    with pytest.raises(wxb.DataError, match=r"x\[idx\.long\(\)\]"):
        x.detach()[key] = 1.0


@pytest.mark.parametrize("shape", ["vector", "0-d"])
def test_a_retained_gradient_is_in_the_tensors_own_dtype_as_torchs(seeded, shape):
    """y = x * 2 for a float32 x, y.retain_grad(), then y read by a float64 tensor: wxb
    kept y.grad in float64 (the dtype the gradient arrived in), where torch's (and
    wxb's own leaves') is y's dtype; and it adds up across backward calls."""
    rng = seeded.rng
    size = (int(rng.integers(1, 5)),) if shape == "vector" else ()
    a, b = rng.normal(size=size).astype(np.float32), rng.normal(size=size)
    (x, tx), (z, tz) = pair(a), pair(b)
    y, ty = x * 2.0, tx * 2.0
    y.retain_grad()
    ty.retain_grad()
    for _ in range(2):
        (y * z).sum().backward(retain_graph=True)
        (ty * tz).sum().backward(retain_graph=True)
    assert y.grad.dtype == y.dtype == TORCH_DTYPES_INV[ty.grad.dtype], seeded.msg(shape)
    np.testing.assert_allclose(y.grad, ty.grad.numpy(), rtol=1e-6, err_msg=seeded.msg(shape))


@pytest.mark.parametrize("shape", ["one sample", "a sequence batch"])
@pytest.mark.parametrize("model", ["Linear", "Sequential"])
def test_a_linear_layer_given_n_features_not_a_row_each_says_what_it_needs(seeded, shape, model):
    """torch's Linear maps the last dimension of any shape; wxb's takes (B, n), one sample
    a row, and said "needs X with 4 features (W is 2×4); got an array of shape (4,)" for
    an X that has 4 features: it now names the (B, n) it needs and the reshape."""
    rng = seeded.rng
    n, m = (int(k) for k in rng.integers(2, 6, size=2))
    size = (n,) if shape == "one sample" else (2, 3, n)
    layer = nn.Linear(n, m).double()
    net = layer if model == "Linear" else nn.Sequential(layer, nn.ReLU())
    with pytest.raises(wxb.ShapeError, match=rf"needs a batch X of shape \(B, {n}\).*{size}"):
        net(Tensor(rng.normal(size=size)))
    with wxb.no_grad(), pytest.raises(wxb.ShapeError, match=r"one sample a row"):
        net(rng.normal(size=size))
