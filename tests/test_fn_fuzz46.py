"""A differential fuzzer of wxb's torch-style functions (``wxb.exp``, ``wxb.pow``, …) and
Tensor methods against PyTorch: for each operation both have, random shapes (size-1
and size-0 dims, 0-d tensors), random dims (negative too), keepdim, float32 and float64,
values drawn to hit ties, zeros and infinities; the values, the indices, the dtypes and
the gradients (backward of a random weighting of the outputs) must be torch's. Then the
regressions of what it found, each failing on the code before its fix.

Differences on purpose, documented in README.md and docs/architecture.md, which the
fuzzer leaves alone:

- whole numbers become floats: ``wxb.tensor([1, 2])`` is float32 (torch's int64), so
  ``wxb.mean`` of whole numbers is their float32 mean (torch refuses an integer mean);
- a plain number or NumPy array combined with a tensor takes the tensor's dtype, and so
  does a 0-d tensor of the other float dtype beside a dimensioned one (as torch's);
- an in-place method (``add_``, ``mul_``, ``clamp_``, …) on a tensor that a recorded graph
  goes through is refused in one line (wxb records no in-place operation; torch records
  it on a non-leaf), and works under ``no_grad`` or on a tensor that records nothing;
- ``sort``/``argsort`` are stable whatever ``stable=`` says (ties in their first order);
- ``//`` has no gradient (its backward refused, as torch's); ``%``'s divisor gets
  ``−G·⌊A/B⌋`` as torch's, also where it divides a number (``wxb.remainder(2.5, t)``),
  whose derivative torch 2.13 has not implemented.

torch leaves some choices to its kernels, which wxb need not copy: which of tied values
``topk`` returns (its indices and so its gradient are checked against wxb's own
indices), the last bits of a float32 ``pow(x, 0.5)`` and the sign of ``(−0)^−½`` (torch
takes √x and 1/√x: −inf, where IEEE's pow gives inf; −0 is drawn only where no power
is taken), ``linspace``'s vectorised rounding.
"""

import numpy as np
import pytest

import wxb
from wxb.errors import ShapeError

torch = pytest.importorskip("torch")

pytestmark = [  # torch's warning on var's correction; NumPy's on log(−1), 1/0, …
    pytest.mark.filterwarnings("ignore:.*degrees of freedom"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
]

DRAWS = 10  # draws per operation: each case runs in milliseconds
EPS = {np.dtype(np.float32): float(np.finfo(np.float32).eps), np.dtype(np.float64): 2.0**-52}
TORCH_KIND = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64",
              torch.bool: "bool"}  # fmt: skip


class Params:
    """The operation's own random choices (a dim, k, an exponent), drawn alike for wxb's
    call and torch's from one seed."""

    def __init__(self, seed: int, lib) -> None:
        self.rng, self.lib = np.random.default_rng(seed), lib

    def dim(self, nd: int) -> int:
        n = max(nd, 1)
        return int(self.rng.integers(-n, n))

    def flag(self) -> bool:
        return bool(self.rng.integers(2))

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def int(self, low: int, high: int) -> int:
        return int(self.rng.integers(low, high))

    def of(self, array: np.ndarray):
        """An index or mask array as each library takes it."""
        return torch.tensor(array) if self.lib is torch else array

    def tensor(self, array: np.ndarray):
        return torch.tensor(array) if self.lib is torch else wxb.tensor(array, dtype=array.dtype)


def values(rng, shape, dtype, kind):
    """normal draws, or few distinct values (ties), zeros among them, ±inf, NaN,
    positives."""
    if kind == "ties":
        v = rng.choice([-1.0, 0.0, 0.5, 1.0], size=shape)
    elif kind == "special":
        v = rng.choice([-np.inf, -1.0, -0.0, 0.0, 0.5, 2.0, np.inf], size=shape)
    elif kind == "nan":
        v = rng.choice([np.nan, -1.0, 0.0, 0.5, 2.0], size=shape)
    elif kind == "zeros":
        v = np.where(rng.random(shape) < 0.7, rng.normal(size=shape), 0.0)  # (+0: see above)
    elif kind == "positive":
        v = rng.uniform(0.1, 3.0, size=shape)
    else:
        v = rng.normal(size=shape)
    return np.asarray(v, dtype=dtype)


def shape_of(rng, min_nd, max_nd, empty):
    sizes = [0, 1, 2, 3, 4] if empty else [1, 2, 3, 4]
    return tuple(int(rng.choice(sizes)) for _ in range(int(rng.integers(min_nd, max_nd + 1))))


CASES = {}


def case(*kinds, min_nd=0, max_nd=3, empty=True, indices="exact", grad=True, mixed=False):
    """``indices``: "exact" (torch's), "own" (any of tied values: checked against the
    values they pick); ``grad``: False where torch and wxb both refuse a backward;
    ``mixed``: float32 and float64 in one graph, compared to float32's precision (torch
    rounds a gradient to float32 at each float32 tensor, wxb only at a leaf)."""

    def register(fn):
        CASES[fn.__name__] = (fn, kinds or ("normal",), min_nd, max_nd, empty, indices, grad,
                              mixed)  # fmt: skip
        return fn

    return register


def _unary(name, *kinds):
    def fn(t, p, nd):
        return getattr(t, name)()

    fn.__name__ = name
    case(*kinds)(fn)


for _name in ["exp", "log", "sqrt", "abs", "log1p", "sin", "cos", "tanh", "sigmoid", "relu",
              "neg", "square", "reciprocal", "rsqrt", "sign", "floor", "ceil", "trunc",
              "round", "expm1", "log2", "log10", "clone"]:  # fmt: skip
    _unary(_name, "normal", "special", "zeros", "positive", "ties", "nan")


@case("normal", "ties", "special")
def round_decimals(t, p, nd):
    return t.round(decimals=p.pick([1, 2, -1]))


@case("normal", "ties", "special", "zeros")
def sum_dim(t, p, nd):
    return t.sum(dim=p.dim(nd), keepdim=p.flag())


@case("normal", "ties")
def sum_dims(t, p, nd):
    return t.sum(dim=tuple(range(nd))[: p.int(0, nd + 1)], keepdim=p.flag())


@case("normal", "ties", "special")
def mean_dim(t, p, nd):
    return t.mean(dim=p.dim(nd), keepdim=p.flag())


@case("normal", "ties", "zeros")
def prod(t, p, nd):
    # one or two zeros: the gradient is the product of the others, not Π/a
    return t.prod() if p.flag() else t.prod(p.dim(nd), keepdim=p.flag())


@case("normal", "ties", "special")
def cumsum(t, p, nd):
    return t.cumsum(p.dim(nd))


def _spread(name):
    def fn(t, p, nd):
        correction, keep = p.int(0, 4), p.flag()  # often ≥ the count: no freedom left
        form = p.int(0, 4)
        if form == 0:
            return getattr(t, name)(p.dim(nd), correction=correction, keepdim=keep)
        if form == 1:
            return getattr(t, name)(dim=p.dim(nd), unbiased=p.flag(), keepdim=keep)
        if form == 2:
            return getattr(t, name)(correction=correction)
        return getattr(t, name)(dim=tuple(range(nd)) or None, correction=correction)

    fn.__name__ = name
    case("normal", "ties", max_nd=2)(fn)


_spread("var")
_spread("std")


def _extreme(name):
    def fn(t, p, nd):
        if p.flag():
            return getattr(t, name)()  # ties share the gradient
        return getattr(t, name)(p.dim(nd), keepdim=p.flag())  # to the index returned

    fn.__name__ = name
    case("normal", "ties", "special")(fn)


def _extreme_of_dims(name):
    def fn(t, p, nd):
        form = p.int(0, 3)
        if form == 0:
            return getattr(t, name)()
        if form == 1:
            return getattr(t, name)(p.dim(nd), keepdim=p.flag())
        return getattr(t, name)(dim=tuple(range(nd))[: p.int(0, nd + 1)], keepdim=p.flag())

    fn.__name__ = name
    case("normal", "ties", "special")(fn)


def _argument(name):
    def fn(t, p, nd):
        return getattr(t, name)() if p.flag() else getattr(t, name)(p.dim(nd), keepdim=p.flag())

    fn.__name__ = name
    case("normal", "ties", "special")(fn)


for _name in ("max", "min"):
    _extreme(_name)
for _name in ("amax", "amin"):
    _extreme_of_dims(_name)
for _name in ("argmax", "argmin"):
    _argument(_name)


@case("normal", "ties", "special")
def sort(t, p, nd):
    return t.sort(dim=p.dim(nd), descending=p.flag(), stable=True)


@case("normal", "ties", "special")
def argsort(t, p, nd):
    return t.argsort(dim=p.dim(nd), descending=p.flag(), stable=True)


@case("normal", "ties", "special", indices="own")
def topk(t, p, nd):
    dim = p.chosen = p.dim(nd)
    return t.topk(p.int(0, (t.shape[dim] if nd else 1) + 1), dim=dim, largest=p.flag())


@case("normal", "zeros", "ties")
def norm(t, p, nd):
    order = p.pick([2.0, 1.0, 3.0, float("inf"), "fro"])
    if order == "fro" or p.flag():
        return t.norm() if order == "fro" else t.norm(p=order)
    return t.norm(p=order, dim=p.dim(nd), keepdim=p.flag())


@case("normal", "special", "zeros")
def logsumexp(t, p, nd):  # rows of −inf: −inf, and their gradient NaN, as torch's
    return t.logsumexp(p.dim(nd), keepdim=p.flag())


@case("normal", "special")
def softmax(t, p, nd):
    return (t * p.pick([1.0, 1e4])).softmax(p.dim(nd))


@case("normal", "special")
def log_softmax(t, p, nd):
    return (t * p.pick([1.0, 1e4])).log_softmax(p.dim(nd))


@case("normal", "ties", "special")
def clamp(t, p, nd):  # the ties sit on the bounds: torch passes the gradient there
    form = p.int(0, 5)
    if form == 0:
        return t.clamp(min=-1.0)
    if form == 1:
        return t.clamp(max=0.5)
    if form == 2:
        return t.clamp_min(0.0)
    if form == 3:
        return t.clamp_max(0.0)
    return t.clamp(-0.5, 1.0)


@case("normal", "ties")
def clamp_tensors(t, p, nd):
    low = p.tensor(np.full(t.shape[-1:], -0.5, dtype=np.float64))
    return t.clamp(min=low, max=p.tensor(np.array(1.0, dtype=np.float64)))


@case("normal", "ties", "zeros")
def pow_number(t, p, nd):  # a zero base with fractional and negative exponents
    return t.pow(p.pick([0.5, -1.0, -0.5, 2.0, 0.0, 3.0, 1.5]))


@case("normal", "ties", "zeros")
def number_pow(t, p, nd):
    return p.pick([0.0, 2.0, 0.1]) ** t


@case("normal", "ties", "zeros")
def pow_tensors(t, p, nd):
    return p.lib.pow(t.abs(), t)


@case("normal", "ties")
def pow_number_first(t, p, nd):  # torch.pow(0.1, x): 0.1 in x's dtype
    return p.lib.pow(p.pick([0.1, 2.0, 3]), t)


@case("normal", "ties")
def remainder(t, p, nd):  # the divisor's sign, as Python's, not C's
    return t.remainder(p.pick([1.5, -1.5, 0.7, -0.7]))


@case("normal", "ties")
def remainder_tensors(t, p, nd):  # the divisor's gradient, −G·⌊A/B⌋
    return (t * 3).remainder(t.abs() + p.pick([0.5, 1.0]))


@case("normal", "ties")
def remainder_number_first(t, p, nd):
    return p.lib.remainder(p.pick([0.1, -2.5]), t.detach() + 5.0) + t


@case("normal", "ties", "special")
def div_rounding(t, p, nd):  # torch's integer division: gradient 0, not refused
    divisor = p.pick([0.7, -1.5, 2.0, 0.0])
    return t.div(
        divisor if p.flag() else t.detach() - divisor, rounding_mode=p.pick(["floor", "trunc"])
    )


@case("normal", "ties", grad=False)
def floor_divide(t, p, nd):
    return t.floor_divide(p.pick([1.5, -1.5, 0.7, -0.7]))


@case("normal", "ties", "special")
def maximum(t, p, nd):
    kind = np.float64 if str(t.dtype).endswith("64") else np.float32
    other = p.tensor(np.asarray(p.rng.choice([0.0, 0.5, -1.0], size=t.shape), dtype=kind))
    return p.lib.maximum(t, other) if p.flag() else p.lib.minimum(t, other)


@case("ties")
def max_other(t, p, nd):  # t.max(other): ties split the gradient
    return t.max(t.flip(tuple(range(nd))))


@case(min_nd=1)
def flip(t, p, nd):
    return t.flip(p.dim(nd)) if p.flag() else t.flip(tuple(range(nd)))


@case(min_nd=2)
def tril(t, p, nd):
    return t.tril(p.int(-4, 5))


@case(min_nd=2)
def triu(t, p, nd):
    return t.triu(p.int(-4, 5))


@case(min_nd=1)
def split(t, p, nd):  # only some of the pieces used
    pieces = t.split(p.int(1, 4), dim=p.dim(nd))
    return pieces[: p.int(1, len(pieces) + 1)]


@case(min_nd=1)
def chunk(t, p, nd):
    pieces = t.chunk(p.int(1, 5), dim=p.dim(nd))
    return pieces[-1:]


@case(min_nd=1)
def unbind(t, p, nd):
    return t.unbind(p.dim(nd))[::2]


@case(min_nd=1)
def narrow(t, p, nd):
    dim = p.dim(nd)
    size = t.shape[dim]
    start = p.int(0, size + 1)
    length = p.int(0, size - start + 1)
    return t.narrow(dim, start - size if start < size and p.flag() else start, length)


@case()
def movedim(t, p, nd):
    return t.movedim(p.dim(nd), p.dim(nd))


@case(min_nd=1)
def permute(t, p, nd):
    return t.permute(*[int(i) - nd * p.int(0, 2) for i in p.rng.permutation(nd)])


@case()
def transpose(t, p, nd):
    return t.transpose(p.dim(nd), p.dim(nd))


@case()
def reshapes(t, p, nd):
    form = p.int(0, 4)
    if form == 0:
        return t.flatten()
    if form == 1:
        return t.unsqueeze(p.int(-nd - 1, nd + 1))
    if form == 2:
        return t.squeeze()
    return t.reshape(-1, 1).T


@case("normal", "ties", min_nd=1)
def gather(t, p, nd):  # repeated indices add their gradients
    dim = p.dim(nd)
    shape = list(t.shape)
    size = shape[dim]
    shape[dim] = p.int(0, 5) if size else 0
    return t.gather(dim, p.of(p.rng.integers(0, max(size, 1), size=shape)))


@case(min_nd=1)
def index_select(t, p, nd):
    dim = p.dim(nd)
    size = t.shape[dim]
    chosen = p.rng.integers(0, max(size, 1), size=p.int(0, 6) if size else 0)
    return t.index_select(dim, p.of(chosen))


@case("normal", "ties")
def masked_fill(t, p, nd):
    mask = p.rng.random(t.shape) < 0.5
    return t.masked_fill(p.of(mask), p.pick([0.0, -np.inf, 2.0]))


@case("normal", "ties")
def where(t, p, nd):
    mask = p.of(p.rng.random(t.shape) < 0.5)
    return p.lib.where(mask, t, t * 2) if p.flag() else p.lib.where(mask, t, 0.0)


@case()
def einsum(t, p, nd):
    v = t.reshape(-1)
    m = t.reshape(1, -1)
    form = p.int(0, 4)
    if form == 0:
        return p.lib.einsum("ij,kj->ik", m, m * 2)
    if form == 1:
        return p.lib.einsum("ij,kj", m.T, m.T)  # implicit output: "ik"
    if form == 2:
        return p.lib.einsum("i,j->ij", v, v + 1)
    return p.lib.einsum("ij->j", m)


@case()
def matmul(t, p, nd):  # vectors either side, stacks broadcast
    v = t.reshape(-1)
    n = v.shape[0]
    form = p.int(0, 5)
    if form == 0:
        return p.lib.matmul(v.reshape(1, 1, n).expand(2, 3, n), v.reshape(n, 1))
    if form == 1:
        return p.lib.matmul(v, v.reshape(1, n, 1).expand(2, n, 2))
    if form == 2:
        return p.lib.bmm(v.reshape(1, 1, n), v.reshape(1, n, 1))
    if form == 3:
        return p.lib.outer(v, v)
    return p.lib.dot(v, v)


@case()
def joins(t, p, nd):
    v = t.reshape(-1)
    form = p.int(0, 3)
    if form == 0:
        return p.lib.cat([v, v * 2], 0)
    if form == 1:
        return p.lib.hstack([v, v])
    return p.lib.vstack([v, v])


@case(mixed=True)
def operands(t, p, nd):  # Python numbers, the other float dtype, alpha=
    other = t.double() if t.dtype in (torch.float32, np.float32) else t.float()
    form = p.int(0, 6)
    if form == 0:
        return t + 0.1
    if form == 1:
        return 3 / (t + 5)
    if form == 2:
        return t.sub(t * t, alpha=2)
    if form == 3:
        return t.add(1.5, alpha=2)
    if form == 4:
        return t + other
    scale = p.lib.tensor(2.0, dtype=p.lib.float64 if t.dtype == other.dtype else p.lib.float32)
    return t * scale


@case()
def expands(t, p, nd):
    row = t.reshape(1, -1)
    return row.expand(3, -1) if p.flag() else row.repeat(2, 3)


def _weights(rng, outputs):
    return [rng.normal(size=tuple(o.shape)) for o in outputs]


def _arrays(out):
    """The outputs as a list: (values, indices) and tuples of pieces split."""
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _array(o):
    if isinstance(o, torch.Tensor):
        return o.detach().numpy()
    return o.data if isinstance(o, wxb.Tensor) else np.asarray(o)


def _kind(o):
    return TORCH_KIND[o.dtype] if isinstance(o, torch.Tensor) else _array(o).dtype.name


def _agree(ours, theirs, tolerance, scale, what):
    """Equal NaN and infinities; elsewhere within tolerance·(|torch's| + scale)."""
    A, B = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert A.shape == B.shape, f"{what}: shape {A.shape}, torch's {B.shape}"
    assert np.array_equal(np.isnan(A), np.isnan(B)), f"{what}: NaN at {A} where torch has {B}"
    infinite = np.isinf(B)
    assert np.array_equal(A[infinite], B[infinite]), f"{what}: {A} where torch has {B}"
    finite = np.isfinite(B)
    off = np.abs(A - B)[finite]
    bound = (tolerance * (np.abs(B) + scale))[finite]
    assert np.all(off <= bound), f"{what}: {A} where torch has {B} (bound {bound.max()})"


def _own_indices(x, values, indices, dim, what):
    """topk among tied values: the indices wxb returns pick the values it returns."""
    if x.ndim == 0:
        assert np.array_equal(indices, np.zeros_like(indices)), what
        return
    dim = dim % x.ndim
    picked = np.take_along_axis(x, indices, dim)
    assert np.array_equal(picked, values, equal_nan=True), f"{what}: indices pick {picked}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_function_agrees_with_torch(seeded, name):
    fn, kinds, min_nd, max_nd, empty, indices, grad, mixed = CASES[name]
    rng = seeded.rng
    for _ in range(DRAWS):
        dtype = np.dtype(rng.choice([np.float32, np.float64]))
        shape = shape_of(rng, min_nd, max_nd, empty)
        kind = kinds[int(rng.integers(len(kinds)))]
        x = values(rng, shape, dtype, kind)
        seed = int(rng.integers(2**63))
        what = seeded.msg(f"{name} of {kind} {dtype.name} {shape} ({x.ravel()[:12]})")
        ours_x = wxb.tensor(x, requires_grad=True, dtype=dtype)
        theirs_x = torch.tensor(x, requires_grad=True)
        try:
            theirs = fn(theirs_x, Params(seed, torch), len(shape))
        except (RuntimeError, IndexError, ValueError) as refusal:  # torch refuses: so must wxb
            with pytest.raises(Exception) as raised:
                fn(ours_x, Params(seed, wxb), len(shape))
            assert "\n" not in str(raised.value), f"{what}: refused in several lines"
            assert not isinstance(raised.value, (AttributeError, IndexError)), (
                f"{what}: {raised.value!r} where torch says {refusal}"
            )
            continue
        ours_p = Params(seed, wxb)
        ours = fn(ours_x, ours_p, len(shape))
        ours, theirs = _arrays(ours), _arrays(theirs)
        assert len(ours) == len(theirs), what
        # float32 sums and products of n terms may each be off by n·ε of their terms
        count = max(x.size, 1)
        tolerance = 8 * EPS[np.dtype(np.float32) if mixed else dtype] * count
        scale = float(np.max(np.abs(x[np.isfinite(x)]), initial=1.0))
        weighted = []
        for i, (o, t) in enumerate(zip(ours, theirs, strict=True)):
            assert _kind(o) == _kind(t), f"{what}: output {i} is {_kind(o)}, torch's {_kind(t)}"
            if _kind(t) in ("int64", "bool"):
                if indices == "own" and _kind(t) == "int64":
                    _own_indices(x, _array(ours[0]), _array(o), ours_p.chosen, what)
                else:
                    assert np.array_equal(_array(o), _array(t)), f"{what}: indices {i}"
                continue
            _agree(_array(o), _array(t), tolerance, scale, f"{what}: output {i}")
            if isinstance(o, wxb.Tensor) and o.requires_grad:
                weighted.append((o, t))
        if not weighted:
            continue
        weights = _weights(rng, [o for o, _ in weighted])
        our_loss = sum(
            (o * wxb.Tensor(w.astype(o.dtype))).sum()
            for (o, _), w in zip(weighted, weights, strict=True)
        )
        their_loss = sum(
            (t * torch.tensor(w).to(t.dtype)).sum()
            for (_, t), w in zip(weighted, weights, strict=True)
        )
        if not grad:
            with pytest.raises(Exception, match="no derivative"):
                our_loss.backward()
            with pytest.raises(RuntimeError, match="not implemented"):
                their_loss.backward()
            continue
        our_loss.backward()
        their_loss.backward()
        if indices == "own":  # topk: each value's gradient at the index wxb returned
            theirs_grad = _routed(x, weights[0], _array(ours[1]), ours_p.chosen)
        else:
            theirs_grad = np.zeros_like(x) if theirs_x.grad is None else theirs_x.grad.numpy()
        ours_grad = np.zeros_like(x) if ours_x.grad is None else ours_x.grad
        assert ours_grad.dtype == dtype, f"{what}: gradient in {ours_grad.dtype}"
        g_scale = scale * max(float(np.max(np.abs(w), initial=0.0)) for w in weights) + 1.0
        _agree(ours_grad, theirs_grad, 4 * tolerance, g_scale, f"{what}: gradient")


def _routed(x, weights, chosen, dim):
    """torch's topk gradient, taken at wxb's indices: each weight added at its index."""
    grad = np.zeros(x.shape, dtype=np.float64)
    if x.ndim == 0:
        return grad + weights
    grids = list(np.indices(chosen.shape, sparse=True))
    grids[dim] = chosen
    np.add.at(grad, tuple(grids), weights)
    return grad


# -- what the fuzzer found ---------------------------------------------------------------
def test_a_power_of_two_float_dtypes_is_taken_in_the_wider(seeded):
    """float32 base ** float64 exponent (0-d each: neither takes the other's dtype): the
    exponent's gradient A^B·log A took log A in float32, off from torch's by 2e-8."""
    rng = seeded.rng
    base, exponent = float(rng.uniform(0.05, 3.0)), float(rng.normal())
    a, b = wxb.tensor(base, requires_grad=True), wxb.tensor(exponent, dtype="float64",
                                                              requires_grad=True)  # fmt: skip
    ta = torch.tensor(base, requires_grad=True)
    tb = torch.tensor(exponent, dtype=torch.float64, requires_grad=True)
    out, theirs = a**b, ta**tb
    out.backward()
    theirs.backward()
    assert out.dtype == np.float64 and theirs.dtype == torch.float64
    # float64 arithmetic of the same float32 base: a few ulps of float64 apart at most
    np.testing.assert_allclose(out.item(), theirs.item(), rtol=8 * EPS[np.dtype(np.float64)])
    np.testing.assert_allclose(b.grad, tb.grad.numpy(), rtol=8 * EPS[np.dtype(np.float64)],
                               err_msg=seeded.msg("∂/∂exponent"))  # fmt: skip
    assert a.grad.dtype == np.float32
    np.testing.assert_allclose(a.grad, ta.grad.numpy(), rtol=4 * EPS[np.dtype(np.float32)])


@pytest.mark.parametrize("name", ["pow", "remainder"])
def test_a_number_first_takes_the_tensors_dtype(seeded, name):
    """wxb.pow(0.1, x) of a float64 x read 0.1 as float32 first (0.100000001…): its values
    and gradients were 1e-8 off torch's, whose number takes x's dtype."""
    rng = seeded.rng
    x = rng.uniform(0.5, 3.0, size=int(rng.integers(0, 5)) or ())
    number = float(rng.choice([0.1, 0.3, -2.7]))
    if name == "pow":
        number = abs(number)
    ours_x = wxb.tensor(x, dtype="float64", requires_grad=True)
    theirs_x = torch.tensor(x, requires_grad=True)
    ours, theirs = getattr(wxb, name)(number, ours_x), getattr(torch, name)(number, theirs_x)
    assert ours.dtype == np.float64
    tight = dict(rtol=8 * EPS[np.dtype(np.float64)], atol=0)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), **tight,
                               err_msg=seeded.msg(f"{name}({number}, x)"))  # fmt: skip
    if name == "pow":
        g = rng.normal(size=x.shape)
        (ours * wxb.tensor(g, dtype="float64")).sum().backward()
        (theirs * torch.tensor(g)).sum().backward()
        np.testing.assert_allclose(ours_x.grad, theirs_x.grad.numpy(), **tight)


@pytest.mark.parametrize("name", ["var", "std"])
def test_spread_with_no_degrees_of_freedom_left_has_torchs_gradient(seeded, name):
    """correction ≥ the count: torch's var gradient is ∞ (NaN where a value is its mean)
    over everything, and 2(A − mean)/(n − correction) along a dim, finite past n; wxb's
    was NaN everywhere (∞·0 from max(n − correction, 0))."""
    rng = seeded.rng
    for _ in range(20):
        rows, along = int(rng.integers(1, 4)), bool(rng.integers(2))
        x = rng.choice([-1.0, 0.0, 2.0], size=(rows, int(rng.integers(1, 3))))
        count = rows if along else x.size
        correction = int(rng.integers(count, count + 3))
        kwargs = dict(dim=0, correction=correction) if along else dict(correction=correction)
        g = rng.normal(size=(x.shape[1],) if along else ())
        ours_x, theirs_x = (
            wxb.tensor(x, requires_grad=True),
            torch.tensor(x, requires_grad=True, dtype=torch.float32),
        )
        ours = getattr(ours_x, name)(**kwargs)
        theirs = getattr(theirs_x, name)(**kwargs)  # (torch warns, once a process)
        (ours * wxb.tensor(g)).sum().backward()
        (theirs * torch.tensor(g, dtype=torch.float32)).sum().backward()
        what = seeded.msg(f"{name}({kwargs}) of {x.tolist()}")
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-6, err_msg=what)
        np.testing.assert_allclose(ours_x.grad, theirs_x.grad.numpy(), rtol=1e-6, err_msg=what)


@pytest.mark.parametrize("name", ["amax", "amin"])
def test_amax_of_an_empty_tensor_along_dims_holding_values(seeded, name):
    """amax((0, 3), dim=1) is empty, as torch's (and max(dim=1)'s); it was refused as
    holding no values. Over the empty dim it still is, as torch's."""
    rng = seeded.rng
    x = np.zeros((0, int(rng.integers(1, 4)), 2), dtype=np.float32)
    ours_x = wxb.tensor(x, requires_grad=True)
    ours = getattr(ours_x, name)(dim=(1, -1), keepdim=True)
    theirs = getattr(torch.tensor(x), name)(dim=(1, -1), keepdim=True)
    assert ours.shape == tuple(theirs.shape) == (0, 1, 1)
    ours.sum().backward()
    assert ours_x.grad.shape == x.shape
    with pytest.raises(ShapeError, match="holds no values"):
        getattr(ours_x, name)(0)


def test_topk_of_a_0d_tensor_is_the_value_as_torchs(seeded):
    """torch's topk of a 0-d tensor, k 0 or 1, is the value at index 0; k=0 stopped at
    "reshape: scalar cannot become (0,)"."""
    value = float(seeded.rng.normal())
    for k in (0, 1):
        x = wxb.tensor(value, requires_grad=True)
        values, indices = x.topk(k)
        theirs = torch.tensor(value).topk(k)
        assert values.shape == tuple(theirs.values.shape) == ()
        assert values.item() == theirs.values.item() and indices.item() == 0
        values.backward()
        assert x.grad.item() == 1.0


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.sum(dim=(1, -1)),
        lambda t: t.mean(dim=(0, 0)),
        lambda t: t.var(dim=(1, -1)),
        lambda t: t.std(dim=(-2, 0)),
        lambda t: t.amax(dim=(1, -1)),
        lambda t: t.logsumexp(dim=(1, -1)),
        lambda t: t.norm(dim=(1, -1)),  # wxb's dropped the second: a norm over dim 1
        lambda t: t.flip((0, -2)),
    ],
)
def test_a_dim_named_twice_is_refused_in_one_line(seeded, call):
    x = seeded.rng.normal(size=(2, 3))
    with pytest.raises(RuntimeError, match="appears multiple times"):
        call(torch.tensor(x))
    with pytest.raises(ShapeError, match="a dim appears more than once") as refused:
        call(wxb.tensor(x))
    assert "\n" not in str(refused.value)


def test_0d_tensors_unbind_narrow_movedim_as_torchs(seeded):
    """unbind and narrow of a 0-d tensor stopped at IndexError "tuple index out of range";
    torch's refuse it saying so, and movedim(0, 0) is the tensor itself (permute refused)."""
    value = float(seeded.rng.normal())
    x = wxb.tensor(value, requires_grad=True)
    with pytest.raises(ShapeError, match="unbind: a 0-d tensor"):
        x.unbind(0)
    with pytest.raises(ShapeError, match="narrow: a 0-d tensor"):
        x.narrow(0, 0, 1)
    moved = x.movedim(0, -1)
    assert moved.shape == tuple(torch.tensor(value).movedim(0, -1).shape) == ()
    (moved * 3).backward()
    assert moved.item() == np.float32(value) and x.grad.item() == 3.0


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_takes_torchs_dtype_argument(seeded, name):
    """t.softmax(1, dtype=torch.float64) stopped at "<lambda>() got an unexpected keyword
    argument 'dtype'": the input is cast first, as torch's."""
    x = seeded.rng.normal(size=(3, 4)).astype(np.float32)
    for dtype in (wxb.float64, torch.float64, "float64"):
        ours_x = wxb.tensor(x, requires_grad=True)
        ours = getattr(ours_x, name)(1, dtype=dtype)
        theirs = getattr(torch.tensor(x), name)(1, dtype=torch.float64)
        assert ours.dtype == np.float64
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-12, atol=1e-15)
        ours.sum().backward()
        assert ours_x.grad.dtype == np.float32
    assert getattr(wxb, name)(wxb.tensor(x), 1, dtype="float64").dtype == np.float64


@pytest.mark.parametrize("mode", ["floor", "trunc"])
def test_div_takes_torchs_rounding_mode(seeded, mode):
    """t.div(other, rounding_mode='floor') (torch's spelling of integer division since
    floor_divide's) was refused as not implemented: now the rounded quotient, bit for bit
    torch's (−0, ±inf and NaN included), with torch's zero gradient for both operands."""
    rng = seeded.rng
    for dtype in (np.float32, np.float64):
        size = int(rng.integers(0, 12))
        specials = [-3.0, -2.5, -0.0, 0.0, 2.5, np.inf, -np.inf, np.nan]
        a = np.where(rng.random(size) < 0.5, rng.normal(size=size) * 3, rng.choice(specials, size))
        b = np.where(rng.random(size) < 0.5, rng.normal(size=size), rng.choice(specials, size))
        a, b = a.astype(dtype), b.astype(dtype)
        ours_a, ours_b = (wxb.tensor(v, dtype=dtype, requires_grad=True) for v in (a, b))
        theirs_a, theirs_b = (torch.tensor(v, requires_grad=True) for v in (a, b))
        ours = ours_a.div(ours_b, rounding_mode=mode)
        theirs = theirs_a.div(theirs_b, rounding_mode=mode)
        expected = theirs.detach().numpy()
        what = seeded.msg(f"{a} div {b} ({mode})")
        assert ours.dtype == expected.dtype, what
        np.testing.assert_array_equal(ours.data, expected, err_msg=what)
        numbers = ~np.isnan(expected)  # (the sign of −0; a NaN's sign bit means nothing)
        assert np.array_equal(np.signbit(ours.data[numbers]), np.signbit(expected[numbers])), what
        g = rng.normal(size=size).astype(dtype)
        (ours * wxb.tensor(g, dtype=dtype)).sum().backward()
        (theirs * torch.tensor(g)).sum().backward()
        np.testing.assert_array_equal(ours_a.grad, theirs_a.grad.numpy(), err_msg=what)
        np.testing.assert_array_equal(ours_b.grad, theirs_b.grad.numpy(), err_msg=what)
    with pytest.raises(wxb.errors.ConfigError, match="rounding_mode must be"):
        wxb.tensor([1.0]).div(2, rounding_mode="round")


# -- in place ----------------------------------------------------------------------------
IN_PLACE = {
    "add_": lambda t, p: t.add_(p.pick([1.5, -0.25]), alpha=p.pick([1, 2, -0.5])),
    "sub_": lambda t, p: t.sub_(t * 0.5 if p.flag() else 0.3),
    "mul_": lambda t, p: t.mul_(p.pick([2.0, -1.0, 0.0])),
    "div_": lambda t, p: t.div_(p.pick([3.0, -0.5])),
    "clamp_": lambda t, p: t.clamp_(-0.5, 0.5) if p.flag() else t.clamp_(min=0.0),
    "clamp_min_": lambda t, p: t.clamp_min_(0.0),
    "clamp_max_": lambda t, p: t.clamp_max_(0.5),
    "masked_fill_": lambda t, p: t.masked_fill_(p.of(p.rng.random(tuple(t.shape)) < 0.5), -1.0),
    "relu_": lambda t, p: t.relu_(),
    "neg_": lambda t, p: t.neg_(),
    "abs_": lambda t, p: t.abs_(),
    "exp_": lambda t, p: t.exp_(),
    "tanh_": lambda t, p: t.tanh_(),
    "sigmoid_": lambda t, p: t.sigmoid_(),
    "pow_": lambda t, p: t.pow_(p.pick([2.0, 3.0])),
    "fill_": lambda t, p: t.fill_(p.pick([0.5, -2.0])),
    "zero_": lambda t, p: t.zero_(),
    "copy_": lambda t, p: t.copy_(t.flip(0) * 2),
}
VIEWS = {
    "itself": lambda t: t,
    "a row": lambda t: t[1],
    "the transpose": lambda t: t.T,
    "a reshape": lambda t: t.reshape(-1),
    "a column slice": lambda t: t[:, 1:3],
}


@pytest.mark.parametrize("name", sorted(IN_PLACE))
def test_in_place_methods_on_tensors_and_views_agree_with_torch(seeded, name):
    """t.name_(…) on a tensor that records nothing, or on a view of it: the tensor's own
    values afterwards are torch's, and the method returns the tensor it changed."""
    rng = seeded.rng
    for _ in range(DRAWS):
        dtype = np.dtype(rng.choice([np.float32, np.float64]))
        x = values(rng, (3, 4), dtype, str(rng.choice(["normal", "ties"])))
        view = str(rng.choice(sorted(VIEWS)))
        seed = int(rng.integers(2**63))
        ours_base, theirs_base = wxb.tensor(x, dtype=dtype), torch.tensor(x)
        ours_view, theirs_view = VIEWS[view](ours_base), VIEWS[view](theirs_base)
        returned = IN_PLACE[name](ours_view, Params(seed, wxb))
        IN_PLACE[name](theirs_view, Params(seed, torch))
        what = seeded.msg(f"{name} on {view} of {dtype.name} {x.tolist()}")
        assert returned is ours_view, what
        _agree(ours_base.data, theirs_base.numpy(), 4 * EPS[dtype], 1.0, what)
        _agree(ours_view.data, theirs_view.numpy(), 4 * EPS[dtype], 1.0, what)


SAVED = {  # operations whose backward reads their input, or their output (exp, sqrt)
    "mul": lambda w: w * w,
    "pow": lambda w: w.pow(2),
    "clamp": lambda w: w.clamp(-0.5, 0.5),
    "abs": lambda w: w.abs(),
    "exp": lambda w: w.exp(),
    "sqrt": lambda w: w.sqrt(),
    "sum": lambda w: w.sum(),
}


@pytest.mark.parametrize("name", sorted(SAVED))
def test_a_change_in_place_after_the_forward_is_refused_as_torchs(seeded, name):
    """What a recorded operation's backward reads, changed in place before backward()
    (through the leaf, a view of it, or the result's detach()): torch's version counter
    refuses the backward, and so must wxb's, in one line; where torch's goes through (a
    change of what it does not read: exp and sqrt keep their output, a sum nothing), so
    does wxb's, with torch's gradient. wxb refused a changed input of exp and sqrt."""
    rng = seeded.rng
    x = rng.uniform(0.5, 2.0, size=(3, 4)) * rng.choice([-1.0, 1.0], size=(3, 4))
    if name == "sqrt":
        x = np.abs(x)
    for how in ("the leaf", "a view of the leaf", "the result's detach()"):
        outcomes = []
        for lib in (torch, wxb):
            w = lib.tensor(x, requires_grad=True)
            y = SAVED[name](w)
            with lib.no_grad():
                if how == "the leaf":
                    w.mul_(2)
                elif how == "a view of the leaf":
                    w[0].zero_()
                else:
                    y.detach().add_(1)
            try:
                (y * 1.5).sum().backward()
            except (RuntimeError, wxb.errors.TrainingError) as refusal:
                assert "modified" in str(refusal), seeded.msg(f"{name}: {refusal}")
                assert lib is torch or "\n" not in str(refusal)
                outcomes.append("refused")
            else:
                outcomes.append(np.asarray(w.grad).copy())
        what = seeded.msg(f"{name}, {how} changed")
        theirs, ours = outcomes
        if isinstance(theirs, str) or isinstance(ours, str):
            assert isinstance(ours, str) and isinstance(theirs, str), f"{what}: {ours} / {theirs}"
        else:
            np.testing.assert_allclose(
                ours, theirs, rtol=4 * EPS[np.dtype(np.float64)], err_msg=what
            )


def test_abs_sends_no_gradient_to_a_nan_as_torchs(seeded):
    """|x|′ is sign(x), which torch takes as 0 at NaN (as its sign): wxb's np.sign gave
    NaN there, so one NaN input left a NaN in the gradient where torch's has 0."""
    rng = seeded.rng
    x = rng.choice([np.nan, -1.5, 0.0, 2.0], size=int(rng.integers(1, 9)))
    x[int(rng.integers(x.size))] = np.nan
    g = rng.normal(size=x.shape)
    ours_x, theirs_x = (
        wxb.tensor(x, dtype="float64", requires_grad=True),
        torch.tensor(x, requires_grad=True),
    )
    (ours_x.abs() * wxb.tensor(g, dtype="float64")).sum().backward()
    (theirs_x.abs() * torch.tensor(g)).sum().backward()
    np.testing.assert_array_equal(ours_x.grad, theirs_x.grad.numpy(), err_msg=seeded.msg(f"{x}"))
