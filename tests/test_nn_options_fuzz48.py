"""A differential fuzzer of ``wxb.nn.functional`` and of wxb.nn's activation, linear,
normalisation, dropout and loss classes against PyTorch, over the options torch takes:
for each function and class both have, random options (all reductions, class weights,
ignore_index present in the targets, absent, or on every row, label smoothing,
probability targets, negative dims, eps, momentum incl. None, affine / bias off,
track_running_stats off, train and eval mode, several calls in a row, options set after
construction), random shapes (1 row, 1 feature, 3-d where torch takes them), float32
and float64, and values drawn to hit the edges (ties at the kinks, |x| at Softplus's
threshold, huge logits, −inf where torch gives a number). Compared: the values and their
dtype, the gradients of every input and parameter (the backward of a random weighting
of the output), the running statistics after each call; and where torch raises, wxb
raises too, one line of its own.

The bounds are the arithmetic's: each output (and gradient) is a sum of about ``terms``
rounded operations in each library, so they may differ by a few ulps of the largest
summand times ``terms``; NaN and ±inf must sit where torch's do.

Differences on purpose, documented in README.md and docs/architecture.md (or in the
functions' docstrings), which the fuzzer leaves out of its draws:

- ``F.mse_loss`` and ``MSELoss`` are the seed's ½‖ŷ − y‖² summed over a sample's outputs
  and averaged over the B samples (torch's averages (ŷ − y)² over every element):
  compared with torch's sum, halved and divided by B, and ``'none'`` with its row sums;
- wxb's Softmax layers and ``F.softmax`` without ``dim`` refuse a tensor of 3 or more
  dimensions (torch's implicit, deprecated choice there is not the last axis); ``Linear``
  takes batches of rows (B, in), and the losses over classes take (B, C) logits;
- a refused batch (one row in training mode) is not counted in ``num_batches_tracked``
  (torch counts it before refusing);
- wxb computes out of place where ``inplace=True`` (use the result, as the docstrings say);
- where wxb refuses an option torch takes (``Dropout(p=1)``, Softplus's β ≤ 0,
  BatchNorm's momentum outside [0, 1]), it names it.

Edges where torch's number is its kernel's accident rather than the function's, also left
out of the draws: ``F.gelu`` of +inf in float32 (torch's vectorised erf gives NaN, its
float64 gives inf), BCE of −inf logits with a positive target (torch NaN; the loss is
+inf), a cross-entropy row of +inf logits or of −inf everywhere (torch's NaN gradient
even on a row it ignores), a class weight of 0 beside a −inf logit (0·inf), and label
smoothing 1 beside a −inf logit (torch's (1 − ε)·inf, NaN; the loss is +inf), and a norm
equal to ``F.normalize``'s ε (torch's float32 norm of (0, 0.5) with p = 1.5 rounds below
0.5 and is clamped, no gradient through it; wxb's is 0.5, and its gradient passes).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import wxb
import wxb.nn as nn
import wxb.nn.functional as F
from wxb.errors import ConfigError, DataError, ShapeError

torch = pytest.importorskip("torch")
TF = torch.nn.functional

pytestmark = [  # NumPy's on inf − inf and 0·inf, torch's on its deprecated paths
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

DRAWS = 25  # draws per case: each runs in milliseconds
EPS = {np.dtype(np.float32): 2.0**-23, np.dtype(np.float64): 2.0**-52}
WXB_ERRORS = (ConfigError, DataError, ShapeError)


# -- drawing ------------------------------------------------------------------------------
class Draw:
    """One case's random choices, made once and read by both libraries' calls."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.dtype = np.dtype(rng.choice([np.float32, np.float64]))

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def flag(self, p: float = 0.5) -> bool:
        return bool(self.rng.random() < p)

    def int(self, low: int, high: int) -> int:
        return int(self.rng.integers(low, high))

    def shape(self, min_nd: int = 1, max_nd: int = 3) -> tuple[int, ...]:
        return tuple(self.int(1, 5) for _ in range(self.int(min_nd, max_nd + 1)))

    def normal(self, shape, scale: float = 1.0, offset: float = 0.0) -> np.ndarray:
        return (self.rng.normal(size=shape) * scale + offset).astype(self.dtype)

    def values(self, shape, kinds=("normal", "ties", "edge", "huge"), edges=()) -> np.ndarray:
        """Normal draws, ties at the kinks (0 among them), the edges given (a threshold,
        ±inf), or huge values."""
        kind = self.pick(kinds)
        if kind == "ties":
            v = self.rng.choice([-1.0, -0.0, 0.0, 0.0, 0.5, 1.0], size=shape)
        elif kind == "edge":
            v = self.rng.choice([0.0, -1.0, 1.0, 2.5, -3.0, *edges], size=shape)
        elif kind == "huge":
            big = 1e30 if self.dtype == np.float32 else 1e300
            v = self.rng.normal(size=shape) * self.pick([1e3, big])
        else:
            v = self.rng.normal(size=shape) * self.pick([1.0, 4.0])
        return np.asarray(v, dtype=self.dtype)


class Case:
    """What one draw computes: ``inputs`` (arrays; the floating ones require grad) given to
    ``ours`` as wxb tensors and to ``theirs`` as torch tensors; ``terms``: about how many
    rounded operations each output sums; ``after``: (ours, theirs) arrays compared once
    the calls are made (running statistics); ``params``: (ours, theirs) parameters whose
    gradients are compared after the backward."""

    def __init__(self, inputs, ours, theirs, terms, after=None, grad=None, params=None,
                 grad_floor=None):  # fmt: skip
        self.inputs, self.ours, self.theirs, self.terms = inputs, ours, theirs, terms
        # the size of the summands of a gradient that cancels to nearly nothing (a
        # normalisation's: its gradient sums terms of 1/σ·|w|·|g| to nearly 0)
        self.grad_floor = grad_floor or (lambda weights: 0.0)
        self.value_floor = 0.0  # (the same for the values, where a case says)
        self.after = after or (lambda: [])
        self.params = params or (lambda: [])
        self.grad = grad if grad is not None else [a.dtype.kind == "f" for a in inputs]


def wt(a: np.ndarray, grad: bool = False):
    if a.dtype.kind != "f":
        return a
    return wxb.tensor(a, dtype=a.dtype, requires_grad=grad)


def tt(a: np.ndarray, grad: bool = False):
    return torch.tensor(a, requires_grad=grad and a.dtype.kind == "f")


def array(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    if isinstance(value, wxb.Tensor):
        return np.asarray(value.data)
    return np.asarray(value)


def assert_agrees(ours, theirs, terms: int, what: str, floor: float = 0.0, eps: float = 0.0):
    """Same dtype and shape; NaN and ±inf where torch's are; finite values within
    16·terms ulps of the largest value, or of ``floor`` (the summands' scale) if larger
    (ulps of the dtype computed in, ``eps``, where that is the coarser: a float64 input
    to a float32 softmax gets a gradient rounded to float32)."""
    ours, theirs = array(ours), array(theirs)
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype}, torch's {theirs.dtype}"
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape}, torch's {theirs.shape}"
    nan = np.isnan(theirs)
    assert np.array_equal(np.isnan(ours), nan), f"{what}: NaN at {ours}, torch's {theirs}"
    inf = np.isinf(theirs)
    assert np.array_equal(ours[inf], theirs[inf]), f"{what}: ±inf at {ours}, torch's {theirs}"
    finite = ~nan & ~inf
    ours64, theirs64 = ours[finite].astype(np.float64), theirs[finite].astype(np.float64)
    scale = max(np.abs(theirs64).max(initial=0.0), floor)
    ulp = max(EPS.get(theirs.dtype, 0.0), eps)
    bound = 16 * terms * ulp * (np.abs(theirs64) + scale)
    err = np.abs(ours64 - theirs64)
    assert (err <= bound).all(), (
        f"{what}: off by {err.max():.3g} (bound {bound[np.argmax(err - bound)]:.3g}); "
        f"{ours}, torch's {theirs}"
    )


def one_line(error: BaseException) -> bool:
    return isinstance(error, WXB_ERRORS) and "\n" not in str(error) and len(str(error)) > 10


def run_case(case: Case, seeded, name: str) -> None:
    """Both calls, then the output, the gradients of a random weighting and the state;
    a failure shows the inputs."""
    try:
        _run_case(case, seeded, name)
    except AssertionError as failed:
        shown = "; ".join(f"{a.dtype}{list(a.shape)} {a.tolist()}" for a in case.inputs)
        raise AssertionError(f"{failed}\ninputs: {shown[:2000]}") from None


def _run_case(case: Case, seeded, name: str) -> None:
    what = seeded.msg(f"{name}")
    ours_in = [wt(a, g) for a, g in zip(case.inputs, case.grad, strict=True)]
    theirs_in = [tt(a, g) for a, g in zip(case.inputs, case.grad, strict=True)]
    try:
        theirs = case.theirs(*theirs_in)
    except (RuntimeError, ValueError, IndexError, TypeError) as refused:
        with pytest.raises(WXB_ERRORS) as ours_refused:
            case.ours(*ours_in)
        assert one_line(ours_refused.value), f"{what}: torch: {refused}; wxb: {ours_refused.value}"
        return
    ours = case.ours(*ours_in)
    assert_agrees(ours, theirs, case.terms, f"{what}: value", case.value_floor)
    for k, (a, b) in enumerate(case.after()):
        assert_agrees(a, b, case.terms, f"{what}: state {k}")
    if not any(case.grad) or not theirs.requires_grad:
        return
    weights = seeded.rng.normal(size=theirs.shape).astype(array(theirs).dtype)
    (theirs * torch.tensor(weights)).sum().backward()
    (ours * wxb.tensor(weights, dtype=weights.dtype)).sum().backward()
    floor, eps = case.grad_floor(weights), EPS[weights.dtype]
    for k, (a, b) in enumerate(zip(ours_in, theirs_in, strict=True)):
        if not isinstance(b, torch.Tensor) or not b.requires_grad:
            continue
        assert (a.grad is None) == (b.grad is None), f"{what}: gradient {k}: {a.grad}, {b.grad}"
        if b.grad is not None:
            assert_agrees(a.grad, b.grad, case.terms, f"{what}: gradient {k}", floor, eps)
    for k, (a, b) in enumerate(case.params()):
        assert (a.grad is None) == (b.grad is None), f"{what}: parameter {k}: {a.grad}, {b.grad}"
        if b.grad is not None:
            assert_agrees(
                a.grad, b.grad, case.terms, f"{what}: parameter {k}'s gradient", floor, eps
            )


CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def lib_of(x):
    """(the functional module, the nn module, a constant-maker) of x's library."""
    if isinstance(x, torch.Tensor):
        return TF, torch.nn, lambda a: None if a is None else torch.tensor(a)
    return F, nn, lambda a: a


# -- activations: function and layer ------------------------------------------------------
def _activation(d: Draw, function, layer, edges=(), kinds=("normal", "ties", "edge", "huge"),
                slope: float = 1.0):  # fmt: skip
    """``function(F, x)`` / ``layer(nn)`` on one input of any shape (0-d too); ``slope``:
    the largest |f′| (a gradient g·f′ rounds at that scale: 1 − tanh² near 0 is ulps of 1)."""
    x = d.values(d.shape(0, 3), kinds, edges)
    as_layer = d.flag()

    def call(x):
        f, n, _ = lib_of(x)
        x = x * 1  # (torch's in place refuses a leaf)
        return layer(n)(x) if as_layer else function(f, x)

    floor = max(1.0, abs(slope))
    return Case([x], call, call, terms=4, grad_floor=lambda w: floor * np.abs(w).max())


@case
def relu(d):
    inplace = d.flag()
    return _activation(d, lambda f, x: f.relu(x, inplace=inplace), lambda n: n.ReLU(inplace))


@case
def leaky_relu(d):
    slope = d.pick([0.01, 0.2, 0.0, 1.0, 3.0, float(d.rng.uniform(-2, 2))])
    inplace = d.flag() and slope >= 0  # (torch's backward refuses one in place below 0)
    return _activation(
        d,
        lambda f, x: f.leaky_relu(x, slope, inplace),
        lambda n: n.LeakyReLU(negative_slope=slope, inplace=inplace),
        edges=(-np.inf, np.inf),
        slope=slope,
    )


@case
def gelu(d):
    """torch takes Φ(x) as ½(1 + erf(x/√2)) (the tanh form ½(1 + tanh u)), rounded at the
    scale of 1, so its x·Φ(x) is good to ulps of |x|, not of the value, in the lower tail
    (1e-4 relative at x = −3 in float32, 2e-2 at x = −8 in float64; wxb's erfc is exact
    there): the bound is ulps of max|x|."""
    approximate = d.pick(["none", "tanh"])
    case = _activation(
        d,
        lambda f, x: f.gelu(x, approximate=approximate),
        lambda n: n.GELU(approximate),
        edges=(-np.inf, 8.0, -8.0, -3.0, -5.0),
        kinds=("normal", "ties", "edge"),
    )
    x = case.inputs[0]
    size = 1 + float(np.abs(x[np.isfinite(x)]).max(initial=0.0))
    case.value_floor = size
    case.grad_floor = lambda weights: size * np.abs(weights).max()  # Φ + x·φ, as Φ
    return case


@case
def silu(d):
    inplace = d.flag()
    return _activation(
        d, lambda f, x: f.silu(x, inplace=inplace), lambda n: n.SiLU(inplace=inplace),
        edges=(-np.inf, np.inf, -40.0, 40.0),
    )  # fmt: skip


@case
def elu(d):
    alpha, inplace = d.pick([1.0, 0.5, 2.0, 0.0, -1.0]), d.flag()
    inplace = inplace and alpha >= 0  # (as LeakyReLU's)
    return _activation(
        d, lambda f, x: f.elu(x, alpha, inplace), lambda n: n.ELU(alpha, inplace=inplace),
        edges=(-np.inf, np.inf, -40.0), slope=alpha,
    )  # fmt: skip


@case
def softplus(d):
    beta, threshold = d.pick([1.0, 2.0, 0.5, 3.0]), d.pick([20.0, 5.0, 1.0, 0.0, -1.0])
    at = threshold / beta  # |x| at the threshold, and a step either side
    edges = (at, -at, np.nextafter(d.dtype.type(at), d.dtype.type(np.inf)), at * 0.99, -np.inf)
    return _activation(
        d,
        lambda f, x: f.softplus(x, beta, threshold),
        lambda n: n.Softplus(beta=beta, threshold=threshold),
        edges=edges,
    )


# a floor that makes assert_agrees's bound ~4 float32 ulps in a float64 comparison with
# terms=4 (16·terms·ε64·floor = ε32·scale): where torch rounds a constant to float32
F32_IN_F64 = float(np.finfo(np.float32).eps / np.finfo(np.float64).eps) / (16 * 4) * 4


@case
def relu6(d):
    return _activation(
        d, lambda f, x: f.relu6(x), lambda n: n.ReLU6(), edges=(0.0, 6.0, -np.inf, np.inf)
    )


@case
def hardtanh(d):
    low = d.pick([-1.0, -2.0, 0.0, -0.5])
    high = d.pick([1.0, 2.0, 0.5, 3.0])
    return _activation(
        d, lambda f, x: f.hardtanh(x, low, high), lambda n: n.Hardtanh(low, high),
        edges=(low, high, -np.inf, np.inf),
    )  # fmt: skip


@case
def selu(d):
    return _activation(
        d, lambda f, x: f.selu(x), lambda n: n.SELU(), edges=(-40.0, np.inf), slope=1.76
    )


@case
def celu(d):
    """torch's float64 backward rounds 1/α to float32: ulps of float32 at large |x/α|."""
    alpha = d.pick([1.0, 0.5, 2.0, 3.0])
    case = _activation(
        d, lambda f, x: f.celu(x, alpha), lambda n: n.CELU(alpha), edges=(-40.0, np.inf)
    )
    if d.dtype == np.float64:
        x = case.inputs[0]
        size = 1 + float(np.abs(x[np.isfinite(x)]).max(initial=0.0)) / alpha
        case.grad_floor = lambda weights: F32_IN_F64 * size * np.abs(weights).max()
    return case


@case
def mish(d):
    return _activation(
        d, lambda f, x: f.mish(x), lambda n: n.Mish(), edges=(-40.0, 40.0), slope=1.1
    )


@case
def hardswish(d):
    return _activation(
        d, lambda f, x: f.hardswish(x), lambda n: n.Hardswish(), edges=(-3.0, 3.0), slope=1.5
    )


@case
def hardsigmoid(d):
    """torch's float64 backward takes 1/6 as a float32 constant."""
    case = _activation(
        d, lambda f, x: f.hardsigmoid(x), lambda n: n.Hardsigmoid(), edges=(-3.0, 3.0)
    )
    if d.dtype == np.float64:
        case.grad_floor = lambda weights: F32_IN_F64 * np.abs(weights).max()
    return case


@case
def logsigmoid(d):
    return _activation(d, lambda f, x: f.logsigmoid(x), lambda n: n.LogSigmoid(), (-40.0,))


@case
def softsign(d):
    return _activation(d, lambda f, x: f.softsign(x), lambda n: n.Softsign(), (-1e3, 1e3))


@case
def tanhshrink(d):
    made = _activation(d, lambda f, x: f.tanhshrink(x), lambda n: n.Tanhshrink(), (-5.0, 5.0))
    # x − tanh(x) cancels to ~x³/3 near 0: its rounding is ulps of |x|, not of the result
    x = made.inputs[0]
    made.value_floor = float(np.abs(x[np.isfinite(x)]).max(initial=0.0))
    return made


@case
def hardshrink(d):
    lambd = d.pick([0.5, 0.0, 1.0, float(d.rng.uniform(-1, 3))])  # (torch takes λ < 0)
    given = {} if lambd == 0.5 and d.flag() else {"lambd": lambd}  # torch's default too
    return _activation(
        d, lambda f, x: f.hardshrink(x, **given), lambda n: n.Hardshrink(**given),
        edges=(lambd, -lambd, -np.inf, np.inf),
    )  # fmt: skip


@case
def softshrink(d):
    lambd = d.pick([0.5, 0.0, 1.0, float(d.rng.uniform(0, 3))])
    given = {} if lambd == 0.5 and d.flag() else {"lambd": lambd}
    return _activation(
        d, lambda f, x: f.softshrink(x, **given), lambda n: n.Softshrink(**given),
        edges=(lambd, -lambd, -np.inf, np.inf),
    )  # fmt: skip


@case
def threshold(d):
    at, value = d.pick([0.0, 0.5, -1.0, 2.0]), d.pick([0.0, -1.0, 3.0])
    return _activation(
        d, lambda f, x: f.threshold(x, at, value), lambda n: n.Threshold(at, value), edges=(at,)
    )


@case
def sigmoid(d):
    return _activation(d, lambda f, x: f.sigmoid(x), lambda n: n.Sigmoid(), (-np.inf, np.inf))


@case
def tanh(d):
    return _activation(d, lambda f, x: f.tanh(x), lambda n: n.Tanh(), (-np.inf, np.inf))


@case
def identity(d):
    x = d.values(d.shape(1, 3))
    return Case([x], lambda x: nn.Identity()(x), lambda x: torch.nn.Identity()(x), terms=1)


@case
def glu(d):
    shape = list(d.shape(1, 3))
    dim = d.int(-len(shape), len(shape))
    if d.flag(0.9):  # else an odd length along dim, which both refuse
        shape[dim] *= 2
    x = d.values(tuple(shape))
    as_layer = d.flag()

    def call(x):
        f, n, _ = lib_of(x)
        return n.GLU(dim)(x) if as_layer else f.glu(x, dim)

    # ∂L/∂b = g·a·σ(b)·(1 − σ(b)), 1 − σ(b) taken from σ(b) rounded in both: off by ulps
    # of |g|·|a|, not of the product (σ(b) near 1)
    size = max(1.0, float(np.abs(x.astype(np.float64)).max(initial=0.0)))
    return Case([x], call, call, terms=4, grad_floor=lambda w: size * np.abs(w).max())


def _softmax(d: Draw, name: str, layer: str):
    shape = d.shape(1, 3)
    x = d.values(shape, ("normal", "ties", "edge", "huge"), edges=(-np.inf,))
    x[..., 0] = np.where(np.isneginf(x[..., 0]), 0, x[..., 0])  # no row of −inf alone
    form = d.int(0, 3)
    dim = d.int(-len(shape), len(shape))
    cast = d.pick([None, "float32", "float64"])

    def call(x):
        f, n, _ = lib_of(x)
        if form == 0:  # dim, and torch's dtype= (x cast first)
            kind = None if cast is None else (getattr(torch, cast) if f is TF else cast)
            return getattr(f, name)(x, dim, dtype=kind)
        if form == 1 or x.ndim > 2:  # the layer over the last axis
            return getattr(n, layer)(dim=-1)(x)
        return getattr(n, layer)(dim=None if x.ndim == 1 or d.flag() else 1)(x)

    # the gradient: s ⊙ (g − Σ g·s), or g − s·Σg: summands up to n·max|g|
    floor = max(shape)
    return Case([x], call, call, 2 * max(shape) + 4, grad_floor=lambda w: floor * np.abs(w).max())


@case
def softmax(d):
    return _softmax(d, "softmax", "Softmax")


@case
def log_softmax(d):
    return _softmax(d, "log_softmax", "LogSoftmax")


@case
def normalize(d):
    shape = d.shape(1, 3)
    x = d.values(shape, ("normal", "ties", "edge"), edges=(np.inf,))
    if d.flag():  # a slice of zeros: the norm clamped to ε, no gradient through it
        x[(0,) * (len(shape) - 1)] = 0
    p = d.pick([2.0, 1.0, 3.0, 1.5, math.inf])
    dim = d.int(-len(shape), len(shape))
    eps = d.pick([1e-12, 1e-3, 0.3])  # (no norm of the values drawn is ε itself)

    def call(x):
        return lib_of(x)[0].normalize(x, p, dim, eps)

    # the gradient sums terms of |g|/‖x‖ (each x's share of the norm cancels)
    with np.errstate(all="ignore"):
        norms = np.abs(x.astype(np.float64)).max(axis=dim)
    smallest = max(float(np.nanmin(norms, initial=np.inf)), eps)
    floor = max(shape) / smallest if np.isfinite(smallest) else 0.0
    return Case([x], call, call, 4 * max(shape) + 8, grad_floor=lambda w: floor * np.abs(w).max())


@case
def dropout(d):
    """Dropout that keeps everything (eval mode, training=False, p = 0): x itself."""
    x = d.values(d.shape(1, 3))
    p, form = d.pick([0.0, 0.3, 0.9]), d.int(0, 3)

    def call(x):
        f, n, _ = lib_of(x)
        if form == 0:
            return f.dropout(x, p, training=False)
        if form == 1:
            return f.dropout(x * 1, 0.0, True)  # (torch gives x itself: no graph of its own)
        layer = n.Dropout(p)
        layer.eval()
        return layer(x)

    return Case([x], call, call, terms=1)


@case
def linear(d):
    rows, n_in, n_out = d.shape(1, 2), d.int(1, 5), d.int(1, 5)
    as_layer = d.flag()
    x = d.normal((*rows, n_in))
    w = d.normal((n_out, n_in) if as_layer or d.flag(0.8) else (n_in,))
    with_bias = d.flag() and w.ndim == 2
    b = d.normal(w.shape[:1])
    if as_layer:
        x = x.reshape(-1, n_in)  # (wxb's Linear takes rows)

    made = {}

    def call(x, w, b):
        f, n, _ = lib_of(x)
        if not as_layer:
            return f.linear(x, w, b if with_bias else None)
        kind = getattr(torch, d.dtype.name) if f is TF else d.dtype.name
        layer = made["torch" if f is TF else "wxb"] = n.Linear(n_in, n_out, with_bias, dtype=kind)
        copy_into(layer.weight, w)
        if with_bias:
            copy_into(layer.bias, b)
        return layer(x)

    def params():
        if not as_layer:
            return []
        names = ("weight", "bias") if with_bias else ("weight",)
        return [(getattr(made["wxb"], key), getattr(made["torch"], key)) for key in names]

    grad = [True, not as_layer, with_bias and not as_layer]
    return Case([x, w, b], call, call, 2 * n_in + 2, grad=grad, params=params)


def copy_into(parameter, values) -> None:
    """A layer's parameter set to ``values`` (a tensor of its library's), in place."""
    if isinstance(parameter, torch.Tensor):
        with torch.no_grad():
            parameter.copy_(values)
    else:
        parameter.data[...] = array(values)


# -- normalisation: functional forms ------------------------------------------------------
@case
def layer_norm(d):
    shape = d.shape(1, 3)
    k = d.int(1, len(shape) + 1)
    normalized = shape[len(shape) - k :]
    x = d.normal(shape, d.pick([1.0, 100.0]), d.pick([0.0, 3.0]))
    if d.flag(0.2):
        x[...] = 2.5  # one value throughout: x̂ = 0
    w, b = d.normal(normalized), d.normal(normalized)
    use_w, use_b, eps = d.flag(), d.flag(), d.pick([1e-5, 1e-3, 1.0])

    def call(x, w, b):
        return lib_of(x)[0].layer_norm(
            x, list(normalized), w if use_w else None, b if use_b else None, eps
        )

    terms = 8 * math.prod(normalized) + 8
    axes = tuple(range(len(shape) - k, len(shape)))
    floor = norm_floor(x, axes, eps, w if use_w else None)
    made = Case([x, w, b], call, call, terms, grad=[True, use_w, use_b], grad_floor=floor)
    made.value_floor = norm_value_floor(x, axes, eps, w if use_w else None)
    return made


@case
def rms_norm(d):
    shape = d.shape(1, 3)
    k = d.int(1, len(shape) + 1)
    normalized = shape[len(shape) - k :]
    x = d.normal(shape, d.pick([1.0, 100.0]), d.pick([0.0, 3.0]))
    if d.flag(0.2):
        x[...] = d.pick([0.0, 2.5])  # zeros: r = 1/√ε
    w = d.normal(normalized)
    use_w, eps = d.flag(), d.pick([None, 1e-5, 1e-3, 1.0])

    def call(x, w):
        return lib_of(x)[0].rms_norm(x, list(normalized), w if use_w else None, eps)

    n = math.prod(normalized)
    axes = tuple(range(len(shape) - k, len(shape)))
    x64 = x.astype(np.float64)
    r = 1 / np.sqrt((x64 * x64).mean(axis=axes).min() + (EPS[d.dtype] if eps is None else eps))
    gain = max(1.0, float(np.abs(w).max())) if use_w else 1.0
    # ∂L/∂x = r·(ĝ − x̂·mean(ĝ ⊙ x̂)) sums terms up to r·|γ|·|g|·(1 + n) (|x̂| ≤ √n)
    floor = lambda weights: r * gain * float(np.abs(weights).max()) * (1 + n)  # noqa: E731
    return Case([x, w], call, call, 8 * n + 8, grad=[True, use_w], grad_floor=floor)


@case
def batch_norm(d):
    shape = (d.int(1, 5), d.int(1, 4)) if d.flag() else (d.int(1, 4), d.int(1, 4), d.int(1, 4))
    channels = shape[1]
    x = d.normal(shape, d.pick([1.0, 10.0]), d.pick([0.0, 2.0]))
    training, stats = d.flag(), d.flag()
    training = training or not stats  # (no statistics: by the batch's own only)
    momentum, eps = d.pick([0.1, 0.0, 1.0, 0.5]), d.pick([1e-5, 1e-2])
    w, b = d.normal(channels), d.normal(channels)
    use_w, use_b = d.flag(), d.flag()
    mean0 = d.normal(channels)
    var0 = d.rng.uniform(0.5, 2.0, channels).astype(d.dtype)
    kept = {"wxb": (mean0.copy(), var0.copy()), "torch": (tt(mean0), tt(var0))}

    def call(x, w, b):
        f = lib_of(x)[0]
        mean, var = kept["torch" if f is TF else "wxb"] if stats else (None, None)
        return f.batch_norm(x, mean, var, w if use_w else None, b if use_b else None,
                            training, momentum, eps)  # fmt: skip

    def after():
        return list(zip(kept["wxb"], kept["torch"], strict=True)) if stats else []

    count = shape[0] * (shape[2] if len(shape) == 3 else 1)
    axes = (0,) if len(shape) == 2 else (0, 2)
    floor = norm_floor(x, axes, eps, w if use_w else None)
    made = Case([x, w, b], call, call, 8 * count + 8, after, [True, use_w, use_b], grad_floor=floor)
    made.value_floor = norm_value_floor(x, axes, eps, w if use_w else None) if training else 0.0
    return made


def norm_floor(x: np.ndarray, axes: tuple[int, ...], eps: float, w: np.ndarray | None):
    """The summands' size in a normalisation's gradient: 1/σ·|w|·|g|·(1 + max|x̂|), with
    max|x̂| ≤ √n (the gradient of x sums such terms, and cancels where n is 2)."""
    x64 = x.astype(np.float64)
    rstd = 1 / np.sqrt(x64.var(axis=axes) + eps).min()
    count = math.prod(x.shape[i] for i in axes)
    gain = 1.0 if w is None else max(1.0, float(np.abs(w).max()))
    return lambda weights: rstd * gain * float(np.abs(weights).max()) * (1 + math.sqrt(count))


def norm_value_floor(x: np.ndarray, axes: tuple[int, ...], eps: float, w: np.ndarray | None):
    """The summands' size in a normalisation's output: x and μ over σ, times |w| (x − μ
    rounds at the scale of |x|: two float32 values near 50 a step apart normalise to a
    number whose error is ulps of 50/σ, not of itself)."""
    x64 = x.astype(np.float64)
    rstd = 1 / np.sqrt(x64.var(axis=axes) + eps).min()
    gain = 1.0 if w is None else max(1.0, float(np.abs(w).max()))
    return float(np.abs(x64).max()) * rstd * gain


@case
def one_hot(d):
    shape = d.shape(1, 2)
    y = d.rng.integers(0, 4, size=shape)
    classes = d.pick([-1, int(y.max()) + 1, 6])

    def call(y):
        if isinstance(y, torch.Tensor):
            return TF.one_hot(y, classes)
        return F.one_hot(y, classes)

    return Case([y], call, call, terms=1, grad=[False])


# -- losses: function and class -----------------------------------------------------------
REDUCTIONS = ["mean", "sum", "none"]


def _loss(d: Draw, inputs, function, layer, terms, grad=None, later=None, gain=1.0, logs=False):
    """``function(F, *tensors)`` or ``layer(nn)(*tensors)``; ``later``: (name, value)
    options set on the layer after construction, as torch's attributes take them;
    ``gain``: the largest factor on a gradient's summands (weights, pos_weight), whose
    ulps bound a gradient that cancels to nearly 0 (σ(z) − 1 of a huge z); ``logs``: the
    loss sums logs of sums of 1 and more (log Σ e^(z − max)), rounded at the scale of 1:
    torch's float32 log(1 + 2.5e-13) is 0, wxb's (summed in float64) is not."""
    as_layer, set_later = d.flag(), later if later and d.flag() else []

    def call(*tensors):
        f, n, const = lib_of(tensors[0])
        if not as_layer:
            return function(f, const, *tensors)
        loss = layer(n, const)
        for key, value in set_later:
            setattr(loss, key, const(value) if isinstance(value, np.ndarray) else value)
        return loss(*tensors[:2])

    floor = max(1.0, float(gain))
    made = Case(inputs, call, call, terms, grad=grad, grad_floor=lambda w: floor * np.abs(w).max())
    made.value_floor = floor if logs else 0.0
    return made


def _class_options(d: Draw, classes: int, logits: np.ndarray):
    weight = d.rng.uniform(0.1, 2.0, classes).astype(d.dtype) if d.flag() else None
    if weight is not None and d.flag(0.2) and not np.isinf(logits).any():
        weight[d.int(0, classes)] = 0  # (0·(−inf) left out: see the module's docstring)
    return {
        "weight": weight,
        "ignore_index": d.pick([-100, -1, 0, classes - 1, classes + 2]),
        "reduction": d.pick(REDUCTIONS),
    }


def _torch_options(options: dict, const) -> dict:
    """The class options with the weights as the library's constant."""
    return {**options, "weight": const(options["weight"])}


def _logits(d: Draw, rows: int, classes: int) -> np.ndarray:
    z = d.values((rows, classes), ("normal", "ties", "huge", "edge"), edges=(-np.inf, -30.0))
    if classes > 1:
        z[:, 0] = np.where(np.isneginf(z[:, 0]), 0, z[:, 0])  # no row of −inf alone
    else:
        z[np.isneginf(z)] = 0
    return z


@case
def cross_entropy(d):
    rows, classes = d.int(1, 6), d.int(1, 5)
    z = _logits(d, rows, classes)
    options = _class_options(d, classes, z)
    smoothing = d.pick([0.0, 0.0, 0.1, 0.5, 1.0 if np.isfinite(z).all() else 0.9])
    if d.flag(0.7):  # class indices, some (or all) of them the ignore_index
        y = d.rng.integers(0, classes, rows)
        index = options["ignore_index"]
        y[d.rng.random(rows) < d.pick([0.0, 0.3, 1.0])] = index
        if (y >= classes).any() and index < classes:
            y[y >= classes] = 0
        grad = [True, False]
    else:  # probabilities (zeros among them); PyTorch takes only a negative ignore_index
        y = d.rng.dirichlet(np.ones(classes), rows)
        y[d.rng.random(y.shape) < 0.2] = 0
        y = y.astype(d.dtype)
        if np.isinf(z).any():
            y[np.isinf(z)] = 0.5  # (0·(−inf) is torch's NaN too; a number here)
        options["ignore_index"] = d.pick([-100, -1, -7])
        grad = [True, d.flag()]
    later = [(key, value) for key, value in options.items() if d.flag()]
    later += [("label_smoothing", smoothing)] if d.flag() else []

    def function(f, const, z, y):
        return f.cross_entropy(z, y, label_smoothing=smoothing, **_torch_options(options, const))

    def layer(n, const):
        return n.CrossEntropyLoss(label_smoothing=smoothing, **_torch_options(options, const))

    gain = 1.0 if options["weight"] is None else np.abs(options["weight"]).max()
    return _loss(d, [z, y], function, layer, 8 * rows * classes + 8, grad, later, gain, True)


@case
def nll_loss(d):
    rows, classes = d.int(1, 6), d.int(1, 5)
    z = _logits(d, rows, classes).astype(np.float64)
    log_p = (z - z.max(1, keepdims=True)) - np.log(
        np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)
    )
    log_p = log_p.astype(d.dtype)
    options = _class_options(d, classes, log_p)
    y = d.rng.integers(0, classes, rows)
    index = options["ignore_index"]
    if 0 <= index < classes or d.flag():
        y[d.rng.random(rows) < d.pick([0.3, 1.0])] = index
    later = [(key, value) for key, value in options.items() if d.flag()]

    def function(f, const, a, y):
        return f.nll_loss(a, y, **_torch_options(options, const))

    def layer(n, const):
        return n.NLLLoss(**_torch_options(options, const))

    gain = 1.0 if options["weight"] is None else np.abs(options["weight"]).max()
    return _loss(d, [log_p, y], function, layer, 4 * rows + 8, [True, False], later, gain)


@case
def binary_cross_entropy_with_logits(d):
    shape = d.shape(1, 3)
    z = d.values(shape, ("normal", "ties", "huge"))
    y = d.rng.choice([0.0, 1.0, 0.3], size=shape).astype(d.dtype)
    weight = d.normal(d.pick([shape, shape[-1:], (1,)])) if d.flag() else None
    pos_weight = (
        d.rng.uniform(0, 4, d.pick([shape[-1:], (1,)])).astype(d.dtype) if d.flag() else None
    )
    reduction = d.pick(REDUCTIONS)
    later = [("weight", weight), ("pos_weight", pos_weight), ("reduction", reduction)]
    later = [option for option in later if d.flag()]

    def function(f, const, z, y):
        return f.binary_cross_entropy_with_logits(z, y, weight=const(weight), reduction=reduction,
                                                  pos_weight=const(pos_weight))  # fmt: skip

    def layer(n, const):
        return n.BCEWithLogitsLoss(
            weight=const(weight), reduction=reduction, pos_weight=const(pos_weight)
        )

    gain = max([1.0, *(np.abs(a).max() for a in (weight, pos_weight) if a is not None)])
    gain *= 1.0 if pos_weight is None or weight is None else max(1.0, pos_weight.max())
    return _loss(d, [z, y], function, layer, 8 * z.size + 8, [True, d.flag()], later, gain, True)


def _regression(d: Draw, thresholds=(1.0,)):
    shape = d.shape(1, 3)
    y = d.values(shape, ("normal", "ties"))
    step = d.rng.choice(
        [0.0, 0.3, -0.3, 1.0, -1.0, 5.0, *thresholds, *(-t for t in thresholds)], size=shape
    )
    out = (y + step).astype(d.dtype)  # differences of 0 (the kink) and at the threshold
    return [out, y], [True, d.flag()], d.pick(REDUCTIONS)


def _element_weight(d: Draw, inputs, grad):
    """torch's weight= of F.l1_loss and F.huber_loss (one per element, asking for its
    gradient or not), or None; appended to the inputs."""
    if not d.flag():
        return False
    inputs.append(d.rng.uniform(0.0, 2.0, inputs[0].shape).astype(d.dtype))
    grad.append(d.flag())
    return True


@case
def l1_loss(d):
    inputs, grad, reduction = _regression(d)
    weighted = _element_weight(d, inputs, grad)

    def function(f, const, a, b, *weight):
        return f.l1_loss(a, b, reduction=reduction, weight=weight[0] if weighted else None)

    return _loss(d, inputs, function, lambda n, c: n.L1Loss(reduction=reduction),
                 4 * inputs[0].size + 4, grad, [("reduction", reduction)])  # fmt: skip


@case
def huber_loss(d):
    delta = d.pick([1.0, 0.3, 5.0, 1e-6])
    inputs, grad, reduction = _regression(d, (delta,))
    weighted = _element_weight(d, inputs, grad)

    def function(f, const, a, b, *weight):
        return f.huber_loss(a, b, reduction, delta, weight[0] if weighted else None)

    later = [("delta", delta), ("reduction", reduction)]
    return _loss(d, inputs, function, lambda n, c: n.HuberLoss(reduction, delta),
                 8 * inputs[0].size + 4, grad, later)  # fmt: skip


@case
def smooth_l1_loss(d):
    beta = d.pick([1.0, 0.3, 0.0, 5.0])
    inputs, grad, reduction = _regression(d, (beta,))

    def function(f, const, a, b):
        return f.smooth_l1_loss(a, b, reduction=reduction, beta=beta)

    later = [("beta", beta), ("reduction", reduction)]
    return _loss(d, inputs, function, lambda n, c: n.SmoothL1Loss(reduction=reduction, beta=beta),
                 8 * inputs[0].size + 4, grad, later)  # fmt: skip


@case
def mse_loss(d):
    """wxb's ½‖ŷ − y‖² per sample (see the module's docstring): torch's sum, halved."""
    inputs, grad, reduction = _regression(d)
    rows = inputs[0].shape[0]
    as_layer = d.flag()

    def ours(a, b):
        return nn.MSELoss(reduction)(a, b) if as_layer else F.mse_loss(a, b, reduction)

    def theirs(a, b):
        each = TF.mse_loss(a, b, reduction="none").reshape(rows, -1).sum(1) / 2
        return {"none": each, "sum": each.sum(), "mean": each.sum() / rows}[reduction]

    return Case(inputs, ours, theirs, 4 * inputs[0].size + 4, grad=grad)


@pytest.mark.parametrize("name", sorted(CASES))
def test_function_and_layer_agree_with_torch(seeded, name):
    for draw in range(DRAWS):
        run_case(CASES[name](Draw(seeded.rng)), seeded, f"{name}, draw {draw}")


# checked against torch, with their options, in tests/test_more_layers48.py
AGAINST_TORCH_IN_MORE_LAYERS = {"Flatten", "PReLU", "Softmin", "BCELoss", "KLDivLoss"}
# and in tests/test_layers50.py (RMSNorm's options, and that it is F.rms_norm's forward, fuzzed
# here; AlphaDropout's masks are its own generator's, so its formula only), and Bilinear in
# tests/test_layers50b.py
AGAINST_TORCH_IN_LAYERS50 = {"RMSNorm", "Unflatten", "CosineSimilarity", "PairwiseDistance",
                             "AlphaDropout", "Bilinear"}  # fmt: skip
# and torch.nn's other losses, classes and functions, in tests/test_losses51.py
AGAINST_TORCH_IN_LOSSES51 = {
    "PoissonNLLLoss", "GaussianNLLLoss", "SoftMarginLoss", "MultiLabelSoftMarginLoss",
    "HingeEmbeddingLoss", "MarginRankingLoss", "CosineEmbeddingLoss", "MultiMarginLoss",
    "MultiLabelMarginLoss", "TripletMarginLoss", "TripletMarginWithDistanceLoss",
}  # fmt: skip
FUNCTIONS_IN_LOSSES51 = {
    "poisson_nll_loss", "gaussian_nll_loss", "soft_margin_loss", "multilabel_soft_margin_loss",
    "hinge_embedding_loss", "margin_ranking_loss", "cosine_embedding_loss", "multi_margin_loss",
    "multilabel_margin_loss", "triplet_margin_loss", "triplet_margin_with_distance_loss",
}  # fmt: skip
# and in tests/test_layers51.py (the random ones in eval mode, and their draws' statistics)
AGAINST_TORCH_IN_LAYERS51 = {"RReLU", "FeatureAlphaDropout", "Dropout1d", "Embedding",
                             "LazyLinear"}  # fmt: skip


def test_every_function_and_layer_torch_also_has_is_fuzzed():
    """The cases cover wxb.nn.functional's whole public list and every layer and loss
    class of wxb.nn that torch.nn has (a new one fails here until it is fuzzed)."""
    # (wxb's short name of the same function; and those tests/test_more_layers48.py checks
    # against torch with their options)
    covered = set(CASES) | {"bce_with_logits", "prelu", "softmin", "binary_cross_entropy", "kl_div"}
    # checked against torch, with their options, in tests/test_missing_ops49.py
    covered |= {"pad", "cosine_similarity", "pairwise_distance"}
    covered |= {"glu", "rms_norm", "bilinear"}  # (in tests/test_layers50.py and 50b)
    covered |= FUNCTIONS_IN_LOSSES51
    covered |= {"rrelu", "rrelu_", "embedding", "alpha_dropout", "feature_alpha_dropout",
                "dropout1d", "elu_", "relu_", "selu_", "celu_", "leaky_relu_", "hardtanh_",
                "threshold_"}  # (in tests/test_layers51.py)  # fmt: skip
    functions = {name for name in F.__all__ if hasattr(TF, name) or name == "bce_with_logits"}
    assert functions <= covered | {"batch_norm", "layer_norm"}, functions - covered
    classes = {name for name in nn.__all__ if isinstance(getattr(nn, name), type)}
    layers_fuzzed = {
        "ReLU", "LeakyReLU", "GELU", "SiLU", "ELU", "Softplus", "Sigmoid", "Tanh", "Identity",
        "Softmax", "LogSoftmax", "Dropout", "Linear", "CrossEntropyLoss", "NLLLoss",
        "BCEWithLogitsLoss", "L1Loss", "HuberLoss", "SmoothL1Loss", "MSELoss", "BatchNorm1d",
        "LayerNorm", "ReLU6", "Hardtanh", "SELU", "CELU", "Mish", "Hardswish", "Hardsigmoid",
        "LogSigmoid", "Softsign", "Tanhshrink", "Threshold", "GLU", "Hardshrink", "Softshrink",
    } | AGAINST_TORCH_IN_MORE_LAYERS | AGAINST_TORCH_IN_LAYERS50  # fmt: skip
    layers_fuzzed |= AGAINST_TORCH_IN_LOSSES51
    layers_fuzzed |= AGAINST_TORCH_IN_LAYERS51
    torch_has = {name for name in classes if hasattr(torch.nn, name)}
    containers = {"Module", "Sequential", "ModuleList", "ModuleDict", "Parameter",
                  "ParameterList", "ParameterDict", "UninitializedParameter"}  # fmt: skip
    assert torch_has - containers <= layers_fuzzed, torch_has - containers - layers_fuzzed


# -- layers with state: several calls, options set between them ---------------------------
def _normalisation_step(seeded, ours, theirs, x, floor_axes, what):
    """One forward of both layers on x, the output, the gradients of x and of the
    parameters (a random weighting's backward), compared; refused alike, or not."""
    ours_x, theirs_x = wt(x, True), tt(x, True)
    try:
        expected = theirs(theirs_x)
    except (RuntimeError, ValueError) as refused:
        with pytest.raises(WXB_ERRORS) as ours_refused:
            ours(ours_x)
        assert one_line(ours_refused.value), f"{what}: torch: {refused}; wxb: {ours_refused.value}"
        return False
    got = ours(ours_x)
    count = math.prod(x.shape[i] for i in floor_axes)
    terms = 8 * count + 8
    gamma = getattr(ours, "weight", None)
    gamma = None if gamma is None else array(gamma)
    value_floor = norm_value_floor(x, floor_axes, ours.eps, gamma)
    if not ours.training and getattr(ours, "running_var", None) is not None:
        value_floor = 0.0  # (eval mode: by the running statistics, a fixed affine map)
    assert_agrees(got, expected, terms, f"{what}: value", value_floor)
    weights = seeded.rng.normal(size=x.shape).astype(x.dtype)
    (expected * torch.tensor(weights)).sum().backward()
    (got * wxb.tensor(weights, dtype=x.dtype)).sum().backward()
    floor = norm_floor(x, floor_axes, ours.eps, gamma)(weights)
    assert_agrees(ours_x.grad, theirs_x.grad, terms, f"{what}: x's gradient", floor)
    for key, parameter in theirs.named_parameters():
        mine = getattr(ours, key)
        assert_agrees(mine.grad, parameter.grad, terms, f"{what}: {key}'s gradient", floor)
        parameter.grad, mine.grad = None, None
    return True


def test_batch_norm_layer_over_calls_agrees_with_torch(seeded):
    """BatchNorm1d with random options (momentum None too, affine or bias off, no running
    statistics), called 5 times in train or eval mode on (N, C) or (N, C, L) batches, its
    momentum, eps or track_running_stats set between calls: outputs, gradients of x, γ
    and β, and the buffers after each call, as torch's."""
    for draw in range(30):
        d = Draw(seeded.rng)
        channels = d.int(1, 4)
        options = {
            "eps": d.pick([1e-5, 1e-3, 0.1]),
            "momentum": d.pick([0.1, None, 0.0, 1.0, 0.6]),
            "affine": d.flag(0.7),
            "track_running_stats": d.flag(0.7),
        }
        if d.flag():
            options["bias"] = d.flag()
        ours = nn.BatchNorm1d(channels, dtype=d.dtype.name, **options)
        theirs = torch.nn.BatchNorm1d(channels, dtype=getattr(torch, d.dtype.name), **options)
        if ours.weight is not None:  # γ and β away from 1 and 0
            for key, _ in theirs.named_parameters():
                values = d.normal(channels)
                copy_into(getattr(theirs, key), torch.tensor(values))
                copy_into(getattr(ours, key), values)
        what = seeded.msg(f"BatchNorm1d({channels}, {options}), draw {draw}")
        assert sorted(ours.state_dict()) == sorted(theirs.state_dict()), what
        for call in range(5):
            change = d.int(0, 6)
            if change == 0:
                ours.momentum = theirs.momentum = d.pick([0.3, None, 1.0])
            elif change == 1:
                ours.track_running_stats = theirs.track_running_stats = False
            elif change == 2:
                ours.eps = theirs.eps = d.pick([1e-2, 0.5])
            training = d.flag()
            ours.train(training)
            theirs.train(training)
            rows = d.int(1, 5)
            shape = (rows, channels) if d.flag() else (rows, channels, d.int(1, 4))
            x = d.normal(shape, d.pick([1.0, 5.0]), d.pick([0.0, 3.0]))
            axes = (0,) if len(shape) == 2 else (0, 2)
            mode = "train" if training else "eval"
            step = f"{what}, call {call}: {mode}, x {shape}, momentum {theirs.momentum}"
            taken = _normalisation_step(seeded, ours, theirs, x, axes, step)
            counted = training and theirs.track_running_stats
            if not taken and counted and theirs.num_batches_tracked is not None:
                theirs.num_batches_tracked -= 1  # (torch counts the batch it refuses)
            for key, buffer in theirs.named_buffers():
                assert_agrees(getattr(ours, key), buffer, 8 * x.size + 8, f"{step}: {key}")


def test_layer_norm_layer_agrees_with_torch(seeded):
    """LayerNorm over 1 to 3 last dims, elementwise_affine or bias off, eps set later:
    outputs and gradients of x, γ and β, as torch's; the same in eval mode."""
    for draw in range(40):
        d = Draw(seeded.rng)
        shape = d.shape(1, 3)
        k = d.int(1, len(shape) + 1)
        normalized = shape[len(shape) - k :]
        options = {"eps": d.pick([1e-5, 1e-3, 1.0]), "elementwise_affine": d.flag(0.7)}
        if d.flag():
            options["bias"] = d.flag()
        ours = nn.LayerNorm(normalized, dtype=d.dtype.name, **options)
        theirs = torch.nn.LayerNorm(normalized, dtype=getattr(torch, d.dtype.name), **options)
        assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
        for key, _ in theirs.named_parameters():
            values = d.normal(normalized)
            copy_into(getattr(theirs, key), torch.tensor(values))
            copy_into(getattr(ours, key), values)
        for call in range(2):
            if d.flag(0.3):
                ours.eps = theirs.eps = d.pick([1e-2, 0.5])
            if d.flag(0.3):
                ours.eval()
                theirs.eval()
            x = d.normal(shape, d.pick([1.0, 50.0]), d.pick([0.0, 3.0]))
            what = seeded.msg(f"LayerNorm({normalized}, {options}), draw {draw}, call {call}")
            axes = tuple(range(len(shape) - k, len(shape)))
            assert _normalisation_step(seeded, ours, theirs, x, axes, what), what


# -- dropout in training: masks of NumPy's count ------------------------------------------
@pytest.mark.parametrize("form", ["function", "layer"])
def test_dropout_in_training_scales_what_it_keeps_and_sends_the_gradient_through_it(seeded, form):
    """torch's masks come from its own generator: the reference is the rule itself. Each
    output is 0 or x/(1 − p), the gradient the same mask times the incoming one, and the
    share kept is 1 − p within 5 standard deviations (a binomial count)."""
    rng = seeded.rng
    for dtype in (np.float32, np.float64):
        p = float(rng.choice([0.1, 0.5, 0.8]))
        x = rng.uniform(0.5, 2.0, size=(200, 30)).astype(dtype)
        t = wxb.tensor(x, dtype=dtype, requires_grad=True)
        out = F.dropout(t, p, training=True) if form == "function" else nn.Dropout(p)(t)
        got = array(out)
        assert got.dtype == dtype
        kept = got != 0
        scale = dtype(1) / (dtype(1) - dtype(p))
        np.testing.assert_allclose(got[kept], x[kept] * scale, rtol=4 * EPS[np.dtype(dtype)])
        share, n = kept.mean(), kept.size
        assert abs(share - (1 - p)) < 5 * math.sqrt(p * (1 - p) / n), seeded.msg(f"kept {share}")
        weights = rng.normal(size=x.shape).astype(dtype)
        (out * wxb.tensor(weights, dtype=dtype)).sum().backward()
        np.testing.assert_allclose(array(t.grad), np.where(kept, weights * scale, 0),
                                   rtol=4 * EPS[np.dtype(dtype)])  # fmt: skip


# -- refusals: where torch raises, wxb raises one line naming what -------------------------
def _refusals(rng):
    z = rng.normal(size=(4, 3))
    y = np.array([0, 2, 1, 1])
    p = rng.dirichlet(np.ones(3), 4)
    b = rng.random((4, 3))
    return [
        ("label_smoothing", lambda f, c: f.cross_entropy(c(z), c(y), label_smoothing=1.5)),
        ("weight", lambda f, c: f.cross_entropy(c(z), c(y), weight=c(np.ones(2)))),
        ("class 3", lambda f, c: f.cross_entropy(c(z), c(np.array([0, 3, 1, 1])))),
        ("class -2", lambda f, c: f.nll_loss(c(z), c(np.array([0, -2, 1, 1])))),
        ("ignore_index=1", lambda f, c: f.cross_entropy(c(z), c(p), ignore_index=1)),
        ("delta", lambda f, c: f.huber_loss(c(z), c(b), delta=0.0)),
        ("delta", lambda f, c: f.huber_loss(c(z), c(b), delta=-1.0)),
        ("beta", lambda f, c: f.smooth_l1_loss(c(z), c(b), beta=-0.5)),
        ("reduction", lambda f, c: f.l1_loss(c(z), c(b), reduction="avg")),
        ("reduction", lambda f, c: f.binary_cross_entropy_with_logits(c(z), c(b), reduction="avg")),
        ("approximate", lambda f, c: f.gelu(c(z), approximate="erf")),
        ("shape", lambda f, c: f.layer_norm(c(z), [4])),
        ("weight", lambda f, c: f.layer_norm(c(z), [3], weight=c(np.ones(2)))),
        ("running_mean", lambda f, c: f.batch_norm(c(z), c(np.zeros(2)), c(np.ones(2)))),
        ("1 value per channel", lambda f, c: f.batch_norm(c(z[:1]), None, None, training=True)),
        ("eps", lambda f, c: f.batch_norm(c(z), None, None, training=True, eps=0.0)),
        ("smaller than num_classes", lambda f, c: f.one_hot(c(y), 2)),
        ("≥ 0", lambda f, c: f.one_hot(c(np.array([0, -1])), 3)),
        ("in_features", lambda f, c: f.linear(c(z), c(np.ones((2, 4))))),
        ("pos_weight", lambda f, c: f.binary_cross_entropy_with_logits(
            c(z), c(b), pos_weight=c(np.ones(2)))),
        ("dim", lambda f, c: f.softmax(c(z), 2)),
        ("dim", lambda f, c: f.normalize(c(z), dim=-3)),
        ("weight", lambda f, c: f.l1_loss(c(z), c(b), weight=c(np.ones(3)))),
        ("weight", lambda f, c: f.huber_loss(c(z), c(b), weight=c(np.ones((4, 1))))),
    ]  # fmt: skip


def test_what_torch_refuses_wxb_refuses_in_one_line_naming_it(seeded):
    for k, (named, call) in enumerate(_refusals(seeded.rng)):
        with pytest.raises((RuntimeError, ValueError, IndexError)):
            call(TF, lambda a: torch.tensor(a))
        with pytest.raises(WXB_ERRORS) as refused:
            call(F, lambda a: a)
        message = str(refused.value)
        assert one_line(refused.value) and named.lower() in message.lower(), (k, named, message)


@pytest.mark.parametrize(
    "named, ours",
    [
        ("p", lambda: nn.Dropout(1.0)),
        ("beta", lambda: nn.Softplus(beta=-1.0)),
        ("beta", lambda: F.softplus(wxb.randn(3), beta=0.0)),
        ("momentum", lambda: nn.BatchNorm1d(3, momentum=1.5)),
        ("dim", lambda: nn.Softmax(dim=0)),
        ("dim", lambda: nn.LogSoftmax(dim=1)(wxb.randn(2, 3, 4))),
        ("inplace", lambda: F.dropout(wxb.randn(2, 3), 0.5, True, True)),
        ("device", lambda: nn.Linear(3, 4, device="cuda")),
        ("weight", lambda: F.mse_loss(wxb.randn(2, 3), wxb.randn(2, 3), weight=np.ones((2, 3)))),
        # (torch takes a negative one as 0, without a word)
        ("label_smoothing", lambda: F.cross_entropy(wxb.randn(2, 3), [0, 1], label_smoothing=-0.1)),
    ],
)
def test_what_torch_takes_and_wxb_does_not_is_refused_by_name(named, ours):
    """Options torch takes that wxb has not (its documented differences): refused in one
    line naming them, never ignored."""
    with pytest.raises(WXB_ERRORS) as refused:
        ours()
    assert one_line(refused.value) and named in str(refused.value), str(refused.value)


# -- regressions of what the fuzzer found, each failing on the code before its fix --------
def test_probability_targets_take_a_negative_ignore_index_as_torch(seeded):
    """torch refuses ignore_index with probability targets only where it could name a
    class (≥ 0): CrossEntropyLoss(ignore_index=-1), the padding label of many scripts, on
    soft targets was refused by wxb ("applies to class-index targets")."""
    rng = seeded.rng
    for dtype in (np.float32, np.float64):
        z = rng.normal(size=(5, 4)).astype(dtype)
        p = rng.dirichlet(np.ones(4), 5).astype(dtype)
        for index in (-1, -7):
            for reduction in REDUCTIONS:
                options = {"ignore_index": index, "reduction": reduction, "label_smoothing": 0.1}
                ours_z = wxb.tensor(z, dtype=dtype, requires_grad=True)
                theirs_z = torch.tensor(z, requires_grad=True)
                got = nn.CrossEntropyLoss(**options)(ours_z, p)
                expected = torch.nn.CrossEntropyLoss(**options)(theirs_z, torch.tensor(p))
                assert_agrees(got, expected, 64, seeded.msg(f"{options}"), 1.0)
                got.sum().backward()
                expected.sum().backward()
                assert_agrees(ours_z.grad, theirs_z.grad, 64, seeded.msg(f"{options}"), 1.0)
                functional = F.cross_entropy(wxb.tensor(z, dtype=dtype), p, **options)
                assert_agrees(functional, expected, 64, seeded.msg(f"F, {options}"), 1.0)


@pytest.mark.parametrize("device", ["cpu", "torch", "wxb"])
def test_layers_take_torchs_device_keyword_for_the_cpu(seeded, device):
    """nn.Linear(…, device=device), a ported script's device line (README: wxb.cuda is
    not available, so it picks "cpu"), was Python's "unexpected keyword argument
    'device'"; the CPU is taken, and the layers are those without it."""
    where = {"cpu": "cpu", "torch": torch.device("cpu"), "wxb": wxb.device("cpu")}[device]
    x = seeded.rng.normal(size=(4, 3)).astype(np.float32)
    seed = int(seeded.rng.integers(2**31))
    made = nn.Linear(3, 2, seed=seed, device=where)
    plain = nn.Linear(3, 2, seed=seed)
    np.testing.assert_array_equal(array(made(wxb.tensor(x))), array(plain(wxb.tensor(x))))
    for layer in (nn.LayerNorm(3, device=where), nn.BatchNorm1d(3, device=where)):
        again = type(layer)(3)
        np.testing.assert_array_equal(array(layer(wxb.tensor(x))), array(again(wxb.tensor(x))))
    for kind, make in (("Dense", lambda: nn.Linear(3, 2, device="cuda:0")),
                       ("LayerNorm", lambda: nn.LayerNorm(3, device="mps")),
                       ("BatchNorm1d", lambda: nn.BatchNorm1d(3, device="cuda"))):  # fmt: skip
        with pytest.raises(ConfigError, match=f"{kind}: device .* CPU only"):
            make()


@pytest.mark.parametrize("name", ["l1_loss", "huber_loss"])
def test_l1_and_huber_loss_take_torchs_weight_per_element(seeded, name):
    """torch's F.l1_loss(…, weight=w) and F.huber_loss(…, weight=w) (one weight per
    element; l1's mean over Σw, huber's over the count) were Python's "unexpected
    keyword argument 'weight'"; values and the gradients of ŷ, y and w are torch's."""
    rng = seeded.rng
    for dtype in (np.float32, np.float64):
        for reduction in REDUCTIONS:
            arrays = [rng.normal(size=(4, 3)).astype(dtype) for _ in range(2)]
            arrays.append(rng.uniform(0.0, 2.0, (4, 3)).astype(dtype))
            ours = [wxb.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
            theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
            extra = {"delta": 0.5} if name == "huber_loss" else {}
            got = getattr(F, name)(*ours[:2], reduction=reduction, weight=ours[2], **extra)
            expected = getattr(TF, name)(
                *theirs[:2], reduction=reduction, weight=theirs[2], **extra
            )
            what = seeded.msg(f"{name} {dtype.__name__} {reduction}")
            assert_agrees(got, expected, 64, what)
            weights = rng.normal(size=expected.shape).astype(dtype)
            (expected * torch.tensor(weights)).sum().backward()
            (got * wxb.tensor(weights, dtype=dtype)).sum().backward()
            for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
                assert_agrees(a.grad, b.grad, 64, f"{what}: gradient {k}", np.abs(weights).max())


@pytest.mark.parametrize("smoothing", [0.1, 0.5])
def test_a_mean_over_a_zero_weight_sum_is_nan_with_label_smoothing_as_torchs(seeded, smoothing):
    """Class weights and label smoothing, every row of a class weighted 0 (or ignored):
    torch's mean is NaN (its NLL part is 0/0) and so is each kept row's gradient; wxb's
    was +inf, its gradients ±inf (the smoothing's part over a zero sum)."""
    rng = seeded.rng
    for dtype in (np.float32, np.float64):
        classes = int(rng.integers(2, 5))
        z = rng.normal(size=(4, classes)).astype(dtype)
        weight = rng.uniform(0.5, 2.0, classes).astype(dtype)
        weight[-1] = 0
        y = np.full(4, classes - 1)
        y[0] = 0  # a row ignored: no gradient, as torch's
        options = {"weight": weight, "label_smoothing": smoothing, "ignore_index": 0}
        ours_z = wxb.tensor(z, dtype=dtype, requires_grad=True)
        theirs_z = torch.tensor(z, requires_grad=True)
        for as_layer in (False, True):
            got = (
                nn.CrossEntropyLoss(**options)(ours_z, y)
                if as_layer
                else F.cross_entropy(ours_z, y, **options)
            )
            torch_options = {**options, "weight": torch.tensor(weight)}
            expected = TF.cross_entropy(theirs_z, torch.tensor(y), **torch_options)
            what = seeded.msg(f"{dtype.__name__}, {options}, layer {as_layer}")
            assert_agrees(got, expected, 64, what)
            got.backward()
            expected.backward()
            assert_agrees(ours_z.grad, theirs_z.grad, 64, what)
            ours_z.grad, theirs_z.grad = None, None


def test_normalize_takes_a_quasi_norm_below_p_1_as_torch(seeded):
    """F.normalize(x, p) for 0 < p < 1 divides by torch's (Σ|x|^p)^(1/p) (wxb refused
    it before norm took such p; the refusal test above still expected that)."""
    rng = seeded.rng
    for dtype in (np.float32, np.float64):
        for p in (0.3, 0.5, 0.9):
            shape = (int(rng.integers(1, 5)), int(rng.integers(1, 6)))
            x = (rng.normal(size=shape) * rng.choice([1.0, 100.0])).astype(dtype)
            ours_x = wxb.tensor(x, dtype=dtype, requires_grad=True)
            theirs_x = torch.tensor(x, requires_grad=True)
            got, expected = F.normalize(ours_x, p=p), TF.normalize(theirs_x, p=p)
            g = rng.normal(size=shape).astype(dtype)
            (got * wxb.tensor(g, dtype=dtype)).sum().backward()
            (expected * torch.tensor(g)).sum().backward()
            # N = (Σ|x|^p)^(1/p): n powers summed, then ^(1/p), which multiplies their
            # relative error by 1/p; y = x/N carries it. ∂L/∂x_j = g_j/N − (Σ g·x)/N² ·
            # (|x_j|/N)^(p−1)·sign(x_j): its two terms each that relatively, they may cancel
            n, eps = shape[1], EPS[np.dtype(dtype)]
            rel = 4 * (n + 10) * eps / p
            x64, g64 = x.astype(np.float64), g.astype(np.float64)
            norm = (np.abs(x64) ** p).sum(axis=1, keepdims=True) ** (1 / p)
            y = array(expected).astype(np.float64)
            what = seeded.msg(f"{dtype.__name__}, p {p}, shape {shape}")
            assert array(got).dtype == dtype, what
            assert (np.abs(array(got) - y) <= rel * np.abs(y)).all(), f"{what}: {got}, {y}"
            dot = np.abs(g64 * x64).sum(axis=1, keepdims=True)
            terms = np.abs(g64) / norm + dot / norm**2 * (np.abs(x64) / norm) ** (p - 1)
            err = np.abs(ours_x.grad.astype(np.float64) - theirs_x.grad.numpy())
            assert (err <= rel * terms).all(), f"{what}: {ours_x.grad}, {theirs_x.grad}"
