"""torch.nn's other losses against PyTorch: PoissonNLLLoss, GaussianNLLLoss,
MultiLabelSoftMarginLoss, MarginRankingLoss, SoftMarginLoss, CosineEmbeddingLoss,
HingeEmbeddingLoss, MultiMarginLoss, MultiLabelMarginLoss, TripletMarginLoss and
TripletMarginWithDistanceLoss, as classes and as wxb.nn.functional's functions.

Each draw takes fresh shapes, options (every reduction, weights, margins, p, eps,
full, log_input, swap) and values, in float32 or float64, with the edges torch defines
drawn on purpose: margin 0, labels and targets at their boundaries (t = 0 and 1 with
``full``, the first and last class, a label list empty or full), variances below eps,
``log_input=False`` at 0, ties at the hinges' kinks. Compared with torch: the value and
its dtype and shape, the gradient of every input (the backward of a random weighting of
the output), and where torch refuses, wxb refuses in one line of its own.

The bounds are the arithmetic's, as in tests/test_nn_options_fuzz48.py: each number is
a sum of about ``terms`` rounded operations in each library, so they may differ by a few
ulps of the largest summand (the summands' scale where they cancel) times ``terms``.

Where torch's number is an accident of its composition, not the loss's, the test says so
and checks wxb's own: PoissonNLLLoss(full=True)'s ∂L/∂t at t = 0 is torch's 0·log 0 =
NaN, and wxb's 0 (Stirling's term is 0 for t ≤ 1, as its gradient)."""

from __future__ import annotations

import numpy as np
import pytest

import wxb
import wxb.nn as nn
import wxb.nn.functional as F
from wxb.errors import ConfigError, DataError, ShapeError

torch = pytest.importorskip("torch")
TF = torch.nn.functional

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # torch's broadcasting notes

DRAWS = 30
EPS = {np.dtype(np.float32): 2.0**-23, np.dtype(np.float64): 2.0**-52}
WXB_ERRORS = (ConfigError, DataError, ShapeError)
REDUCTIONS = ("mean", "sum", "none")


class Draw:
    def __init__(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        self.rng, self.dtype = rng, np.dtype(dtype)

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def flag(self, p: float = 0.5) -> bool:
        return bool(self.rng.random() < p)

    def int(self, low: int, high: int) -> int:
        return int(self.rng.integers(low, high))

    def normal(self, shape, scale: float = 1.0) -> np.ndarray:
        return (self.rng.normal(size=shape) * scale).astype(self.dtype)

    def signs(self, shape, other: float = 0.0) -> np.ndarray:
        """Labels ±1 (now and then another value, which torch reads as neither)."""
        labels = self.rng.choice([-1.0, 1.0], size=shape)
        if other:
            labels = np.where(self.rng.random(shape) < 0.1, 0.0, labels)
        return labels.astype(self.dtype)


class Case:
    """``inputs``: arrays (floats require grad where ``grad`` says); ``ours``/``theirs``
    the two calls; ``terms`` about how many rounded operations a number sums;
    ``floor``: the summands' scale (where a value or gradient may cancel)."""

    def __init__(self, inputs, ours, theirs, terms, grad=None, floor=0.0, skip=None):
        self.inputs, self.ours, self.theirs, self.terms = inputs, ours, theirs, terms
        self.grad = grad if grad is not None else [a.dtype.kind == "f" for a in inputs]
        self.floor = floor
        self.skip = skip or {}  # gradient index → mask of elements checked apart


def as_wxb(a: np.ndarray, grad: bool):
    return wxb.tensor(a, dtype=a.dtype, requires_grad=grad) if a.dtype.kind == "f" else a


def as_torch(a: np.ndarray, grad: bool):
    return torch.tensor(a, requires_grad=bool(grad) and a.dtype.kind == "f")


def values(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    return np.asarray(t.data if isinstance(t, wxb.Tensor) else t)


def agrees(ours, theirs, terms: int, what: str, floor: float = 0.0) -> None:
    ours, theirs = values(ours), values(theirs)
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype}, torch's {theirs.dtype}"
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape}, torch's {theirs.shape}"
    nan = np.isnan(theirs)
    assert np.array_equal(np.isnan(ours), nan), f"{what}: NaN at {ours}, torch's {theirs}"
    inf = np.isinf(theirs)
    assert np.array_equal(ours[inf], theirs[inf]), f"{what}: ±inf at {ours}, torch's {theirs}"
    finite = ~nan & ~inf
    a, b = ours[finite].astype(np.float64), theirs[finite].astype(np.float64)
    scale = max(np.abs(b).max(initial=0.0), floor)
    bound = 16 * terms * EPS[theirs.dtype] * (np.abs(b) + scale)
    err = np.abs(a - b)
    assert (err <= bound).all(), (
        f"{what}: off by {err.max():.3g} (bound {bound[np.argmax(err - bound)]:.3g}); "
        f"{ours}, torch's {theirs}"
    )


def one_line(error: BaseException) -> bool:
    return isinstance(error, WXB_ERRORS) and "\n" not in str(error) and len(str(error)) > 10


def run(case: Case, seeded, what: str) -> None:
    try:
        _run(case, seeded, seeded.msg(what))
    except AssertionError as failed:
        shown = "; ".join(f"{a.dtype}{list(a.shape)} {a.tolist()}" for a in case.inputs)
        raise AssertionError(f"{failed}\ninputs: {shown[:3000]}") from None


def _run(case: Case, seeded, what: str) -> None:
    ours_in = [as_wxb(a, g) for a, g in zip(case.inputs, case.grad, strict=True)]
    theirs_in = [as_torch(a, g) for a, g in zip(case.inputs, case.grad, strict=True)]
    try:
        theirs = case.theirs(*theirs_in)
    except (RuntimeError, ValueError, IndexError) as refused:
        with pytest.raises(WXB_ERRORS) as ours_refused:
            case.ours(*ours_in)
        assert one_line(ours_refused.value), f"{what}: torch: {refused}; wxb: {ours_refused.value}"
        return
    ours = case.ours(*ours_in)
    agrees(ours, theirs, case.terms, f"{what}: value", case.floor)
    upstream = seeded.rng.normal(size=theirs.shape).astype(values(theirs).dtype)
    (theirs * torch.tensor(upstream)).sum().backward()
    (ours * wxb.tensor(upstream, dtype=upstream.dtype)).sum().backward()
    for k, (a, b) in enumerate(zip(ours_in, theirs_in, strict=True)):
        if not isinstance(b, torch.Tensor) or not b.requires_grad:
            continue
        mine = np.zeros(b.shape, b.detach().numpy().dtype) if a.grad is None else a.grad
        theirs_grad = np.zeros_like(mine) if b.grad is None else b.grad.numpy()
        mask = case.skip.get(k)
        if mask is not None:  # checked apart by the case
            mine, theirs_grad = mine[~mask], theirs_grad[~mask]
        floor = case.floor * np.abs(upstream).max(initial=0.0)
        agrees(mine, theirs_grad, case.terms, f"{what}: gradient of input {k}", floor)


def reduced(x: np.ndarray, reduction: str) -> np.ndarray:
    """The summands' scale of a reduction of x (mean: over its elements)."""
    total = np.abs(x.astype(np.float64)).sum()
    return float(total / max(x.size, 1) if reduction == "mean" else total)


def pick_layer(d: Draw, make_layer, make_function):
    """The class or the function, at random (both are torch's API)."""
    return make_layer if d.flag() else make_function


# -- the cases ----------------------------------------------------------------------------
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def _shape(d: Draw, min_nd: int = 1, max_nd: int = 3) -> tuple[int, ...]:
    return tuple(d.int(1, 5) for _ in range(d.int(min_nd, max_nd + 1)))


@case
def poisson_nll(d: Draw) -> Case:
    shape = _shape(d)
    log_input, full = d.flag(), d.flag()
    eps = d.pick([1e-8, 1e-3, 0.5])
    reduction = d.pick(REDUCTIONS)
    t = d.rng.choice([0.0, 1.0, 2.0, 0.5, 7.0, 3.25], size=shape)  # 0 and 1: Stirling's edges
    if log_input:
        x = d.normal(shape, d.pick([1.0, 3.0]))
    else:
        x = np.abs(d.normal(shape, 2.0))
        x.reshape(-1)[: d.int(0, x.size + 1)] = 0  # log(0 + eps): rates of 0
    t = t.astype(d.dtype)
    if d.flag(0.05):
        t = t.reshape(-1)[:1]  # another shape: refused (torch's broadcasting spreads it)
    options = {"log_input": log_input, "full": full, "eps": eps, "reduction": reduction}

    def ours(a, b):
        if d.flag():
            return nn.PoissonNLLLoss(**options)(a, b)
        return F.poisson_nll_loss(a, b, **options)

    def theirs(a, b):
        if a.shape != b.shape:
            raise RuntimeError("size mismatch")  # (torch broadcasts: see the docstring)
        return torch.nn.PoissonNLLLoss(**options)(a, b)

    x64, t64 = x.astype(np.float64), t.astype(np.float64)
    rate = np.exp(x64) if log_input else 1 + t64 / (x64 + eps)
    each = rate + np.abs(t64 * (x64 if log_input else np.log(x64 + eps)))
    if full:
        each = each + np.where(t64 > 1, np.abs(t64 * np.log(np.maximum(t64, 1))) + t64 + 3, 0)
    skip = {1: (t == 0) & full}  # torch's 0·log 0 (module docstring)
    return Case([x, t], ours, theirs, x.size + 16, floor=reduced(each, reduction), skip=skip)


@case
def gaussian_nll(d: Draw) -> Case:
    shape = _shape(d, 1, 3)
    full, eps, reduction = d.flag(), d.pick([1e-6, 1e-2, 0.3]), d.pick(REDUCTIONS)
    x, t = d.normal(shape), d.normal(shape)
    form = d.pick(["element", "row", "one", "number"])
    if form == "element":
        var_shape = shape
    elif form == "row":
        var_shape = shape[:-1]
    else:  # one dim of 1
        var_shape = tuple(1 if i == len(shape) - 1 else n for i, n in enumerate(shape))
    var = np.abs(d.normal(var_shape, 2.0))
    var.reshape(-1)[: d.int(0, var.size + 1)] *= d.pick([0.0, 1e-9, 0.5])  # below eps: clamped
    if d.flag(0.05):
        var.reshape(-1)[0] = -1.0  # refused, as torch refuses it
    if d.flag(0.05) and len(shape) > 1:
        var = np.abs(d.normal((*shape[:-1], shape[-1] + 1)))  # no fitting shape: refused
    number = float(d.pick([0.5, 2.0, 0.0, 1e-9])) if form == "number" else None
    inputs = [x, t] if number is not None else [x, t, var]
    options = {"full": full, "eps": eps, "reduction": reduction}

    def ours(a, b, v=None):
        v = number if v is None else v
        if d.flag():
            return nn.GaussianNLLLoss(**options)(a, b, v)
        return F.gaussian_nll_loss(a, b, v, **options)

    def theirs(a, b, v=None):
        return torch.nn.GaussianNLLLoss(**options)(a, b, number if v is None else v)

    v = np.maximum(np.abs(var.astype(np.float64)) if number is None else number, eps)
    d2 = (x.astype(np.float64) - t) ** 2
    v = v[..., None] if number is None and var.shape == shape[:-1] else v
    try:
        each = np.abs(np.log(v)) + d2 / v + 1 / v + d2 / v**2 + 1
    except ValueError:  # (a var of no fitting shape: refused)
        each = d2
    return Case(inputs, ours, theirs, x.size + 16, floor=reduced(each, reduction))


@case
def soft_margin(d: Draw) -> Case:
    shape = _shape(d)
    reduction = d.pick(REDUCTIONS)
    x, y = d.normal(shape, d.pick([1.0, 5.0])), d.signs(shape)
    if d.flag(0.1):
        y = d.signs((*shape, 2))  # another shape: refused (torch's broadcasting refuses too)

    def ours(a, b):
        if d.flag():
            return nn.SoftMarginLoss(reduction=reduction)(a, b)
        return F.soft_margin_loss(a, b, reduction=reduction)

    def theirs(a, b):
        if a.shape != b.shape:
            raise RuntimeError("size mismatch")  # (torch broadcasts, then fails its backward)
        return torch.nn.SoftMarginLoss(reduction=reduction)(a, b)

    each = np.abs(x.astype(np.float64)) + 1
    return Case([x, y], ours, theirs, x.size + 16, grad=[True, False],
                floor=reduced(each, reduction))  # fmt: skip


@case
def multilabel_soft_margin(d: Draw) -> Case:
    shape = _shape(d, 1, 2)
    reduction = d.pick(REDUCTIONS)
    x = d.normal(shape, d.pick([1.0, 6.0]))
    y = d.rng.choice([0.0, 1.0, 0.0, 1.0, 0.3], size=shape).astype(d.dtype)  # 0 and 1, a soft one
    weight = np.abs(d.normal(shape[-1:])) if d.flag() else None
    if weight is not None and d.flag(0.05):
        weight = np.abs(d.normal(shape[-1] + 1))  # refused: no class's weight each

    def ours(a, b):
        if d.flag():
            return nn.MultiLabelSoftMarginLoss(weight=weight, reduction=reduction)(a, b)
        return F.multilabel_soft_margin_loss(a, b, weight=weight, reduction=reduction)

    def theirs(a, b):
        w = None if weight is None else torch.tensor(weight)
        return torch.nn.MultiLabelSoftMarginLoss(weight=w, reduction=reduction)(a, b)

    w = 1 if weight is None else np.abs(weight).max()
    each = (np.abs(x.astype(np.float64)) + 1) * w
    return Case([x, y], ours, theirs, x.size + 16, floor=reduced(each, reduction))


@case
def hinge_embedding(d: Draw) -> Case:
    shape = _shape(d)
    margin = d.pick([1.0, 0.0, 0.5, 2.0])
    reduction = d.pick(REDUCTIONS)
    x = np.abs(d.normal(shape, 2.0))
    x.reshape(-1)[: d.int(0, 3)] = margin  # at the kink: torch's clamp passes its gradient
    y = d.signs(shape, other=True)
    if d.flag(0.05):
        y = y.reshape(-1)[:1]  # another shape: refused (torch's broadcasting spreads it)

    def ours(a, b):
        if d.flag():
            return nn.HingeEmbeddingLoss(margin=margin, reduction=reduction)(a, b)
        return F.hinge_embedding_loss(a, b, margin=margin, reduction=reduction)

    def theirs(a, b):
        if a.shape != b.shape:
            raise RuntimeError("size mismatch")  # (torch broadcasts: see the docstring)
        return torch.nn.HingeEmbeddingLoss(margin=margin, reduction=reduction)(a, b)

    each = np.abs(x.astype(np.float64)) + margin
    return Case([x, y], ours, theirs, x.size + 16, grad=[True, False],
                floor=reduced(each, reduction))  # fmt: skip


@case
def margin_ranking(d: Draw) -> Case:
    shape = _shape(d, 1, 2)
    margin = d.pick([0.0, 0.5, 1.0, -0.2])
    reduction = d.pick(REDUCTIONS)
    x1, x2 = d.normal(shape), d.normal(shape)
    tied = d.rng.random(shape) < 0.3
    x2 = np.where(tied, x1, x2)  # margin 0 and x1 = x2: the kink, passed as torch's
    y = d.signs(shape if d.flag(0.9) else shape[-1:])
    if d.flag(0.05):
        y = d.signs((*shape, 1))  # dims differ: refused

    def ours(a, b, c):
        if d.flag():
            return nn.MarginRankingLoss(margin=margin, reduction=reduction)(a, b, c)
        return F.margin_ranking_loss(a, b, c, margin=margin, reduction=reduction)

    def theirs(a, b, c):
        return torch.nn.MarginRankingLoss(margin=margin, reduction=reduction)(a, b, c)

    each = np.abs(x1.astype(np.float64)) + np.abs(x2) + abs(margin)
    return Case([x1, x2, y], ours, theirs, x1.size + 16, floor=reduced(each, reduction))


@case
def cosine_embedding(d: Draw) -> Case:
    one = d.flag(0.2)
    rows, width = d.int(1, 6), d.int(1, 5)
    shape = (width,) if one else (rows, width)
    margin = d.pick([0.0, 0.5, -0.3, 0.9])
    reduction = d.pick(REDUCTIONS)
    x1, x2 = d.normal(shape), d.normal(shape)
    if d.flag(0.3):
        x2 = (x1 * d.pick([2.0, -1.0])).astype(d.dtype)  # cos ±1
    if d.flag(0.1):
        x1 = np.zeros_like(x1)  # torch's 1e-12 beside a zero norm
    y = d.signs(() if one else (rows,), other=True)
    if d.flag(0.05):
        y = d.signs(shape)  # a label per element: refused

    def ours(a, b, c):
        if d.flag():
            return nn.CosineEmbeddingLoss(margin=margin, reduction=reduction)(a, b, c)
        return F.cosine_embedding_loss(a, b, c, margin=margin, reduction=reduction)

    def theirs(a, b, c):
        return torch.nn.CosineEmbeddingLoss(margin=margin, reduction=reduction)(a, b, c)

    # ∂cos/∂x1 = x2/(‖x1‖‖x2‖) − cos·x1/‖x1‖²: each term up to 1/‖x1‖
    norms = np.sqrt((x1.astype(np.float64) ** 2).sum(-1) + 1e-12)
    floor = 4 * width / max(norms.min(initial=1.0), 1e-6) + 2 + abs(margin)
    return Case([x1, x2, y], ours, theirs, 4 * width + 16, grad=[True, True, False], floor=floor)


@case
def multi_margin(d: Draw) -> Case:
    one = d.flag(0.2)
    rows, classes = d.int(1, 6), d.int(1, 6)
    shape = (classes,) if one else (rows, classes)
    p = d.pick([1, 2])
    margin = d.pick([1.0, 0.0, 0.5, 2.5])
    reduction = d.pick(REDUCTIONS)
    x = d.rng.choice([0.0, 1.0, -0.5, 0.5], size=shape) if d.flag(0.3) else d.normal(shape)
    x = x.astype(d.dtype)  # (ties: margin − x_y + x_j = 0 counts not, as torch's kernel)
    y = d.rng.integers(0, classes, size=() if one else (rows,))
    y = np.where(d.rng.random(y.shape) < 0.3, d.pick([0, classes - 1]), y).astype(np.int64)
    weight = np.abs(d.normal(classes)) if d.flag() else None
    if d.flag(0.05):
        y = np.asarray(y + classes)  # out of range: refused
    if weight is not None and d.flag(0.05):
        weight = np.abs(d.normal(classes + 1))  # refused

    def ours(a, b):
        options = {"p": p, "margin": margin, "weight": weight, "reduction": reduction}
        if d.flag():
            return nn.MultiMarginLoss(**options)(a, b)
        return F.multi_margin_loss(a, b, **options)

    def theirs(a, b):
        w = None if weight is None else torch.tensor(weight, dtype=a.dtype)
        return torch.nn.MultiMarginLoss(p=p, margin=margin, weight=w, reduction=reduction)(a, b)

    w = 1 if weight is None else float(np.abs(weight).max(initial=1.0))
    z = abs(margin) + 2 * np.abs(x.astype(np.float64)).max()
    floor = classes * w * (z if p == 1 else z * z + 2 * z)
    return Case([x, y], ours, theirs, 4 * classes * rows + 16, floor=floor)


@case
def multilabel_margin(d: Draw) -> Case:
    one = d.flag(0.2)
    rows, classes = d.int(1, 6), d.int(1, 6)
    shape = (classes,) if one else (rows, classes)
    reduction = d.pick(REDUCTIONS)
    x = d.rng.choice([0.0, 1.0, -1.0, 2.0], size=shape) if d.flag(0.3) else d.normal(shape)
    x = x.astype(d.dtype)  # (ties: 1 − (x_j − x_k) = 0 counts not, as torch's kernel)
    y = np.full(x.shape, -1, np.int64).reshape(-1, classes)
    for row in y:  # a row's labels first (none, some, all; repeated now and then), then −1
        count = d.int(0, classes + 1)
        row[:count] = d.rng.choice(classes, size=count, replace=d.flag(0.2))
        if count < classes and d.flag(0.3):
            row[count + 1 :] = d.rng.integers(0, classes, size=classes - count - 1)  # after −1
    y = y.reshape(x.shape)
    if d.flag(0.05):
        y.reshape(-1)[0] = classes  # out of range: refused

    def ours(a, b):
        if d.flag():
            return nn.MultiLabelMarginLoss(reduction=reduction)(a, b)
        return F.multilabel_margin_loss(a, b, reduction=reduction)

    def theirs(a, b):
        return torch.nn.MultiLabelMarginLoss(reduction=reduction)(a, b)

    floor = classes * classes * (1 + 2 * np.abs(x.astype(np.float64)).max())
    return Case([x, y], ours, theirs, 2 * classes * classes * rows + 16, floor=floor)


@case
def triplet_margin(d: Draw) -> Case:
    rows, width = d.int(1, 6), d.int(1, 5)
    shape = d.pick([(rows, width), (width,)])
    margin = d.pick([1.0, 0.3, 2.0, 0.0])  # 0: refused, as torch's
    p, eps = d.pick([2.0, 1.0, 3.0, 1.5]), d.pick([1e-6, 0.0, 0.1])
    swap, reduction = d.flag(), d.pick(REDUCTIONS)
    a, pos, neg = d.normal(shape), d.normal(shape), d.normal(shape)
    if d.flag(0.3):
        pos = a.copy()  # with swap: d(a, n) = d(p, n), the tie shared, as torch.minimum's
    options = {"margin": margin, "p": p, "eps": eps, "swap": swap, "reduction": reduction}

    def ours(x, y, z):
        if d.flag():
            return nn.TripletMarginLoss(**options)(x, y, z)
        return F.triplet_margin_loss(x, y, z, **options)

    def theirs(x, y, z):
        return torch.nn.TripletMarginLoss(**options)(x, y, z)

    # a norm's gradient |d|^(p−1)/‖d‖^(p−1) is up to 1 per element (more below ‖d‖ ~ eps)
    floor = 8 * width + abs(margin) + 4 * np.abs(np.concatenate([a, pos, neg])).max()
    return Case([a, pos, neg], ours, theirs, 8 * width + 32, floor=floor)


@case
def triplet_margin_with_distance(d: Draw) -> Case:
    rows, width = d.int(1, 6), d.int(1, 5)
    shape = (rows, width)
    margin = d.pick([1.0, 0.3, 2.0, -1.0])
    swap, reduction = d.flag(), d.pick(REDUCTIONS)
    kind = d.pick(["default", "cosine", "l1"])
    a, pos, neg = d.normal(shape), d.normal(shape), d.normal(shape)
    if d.flag(0.3):
        pos = a.copy()

    def distance(lib):
        if kind == "default":
            return None
        if kind == "cosine":
            return lambda x, y: 1 - lib.cosine_similarity(x, y)
        return lambda x, y: (x - y).abs().sum(-1)

    def ours(x, y, z):
        options = {"distance_function": distance(F), "margin": margin, "swap": swap}
        if d.flag():
            return nn.TripletMarginWithDistanceLoss(**options, reduction=reduction)(x, y, z)
        return F.triplet_margin_with_distance_loss(x, y, z, **options, reduction=reduction)

    def theirs(x, y, z):
        options = {"distance_function": distance(TF), "margin": margin, "swap": swap}
        return torch.nn.TripletMarginWithDistanceLoss(**options, reduction=reduction)(x, y, z)

    floor = 8 * width + abs(margin) + 4 * np.abs(np.concatenate([a, pos, neg])).max()
    return Case([a, pos, neg], ours, theirs, 8 * width + 32, floor=floor)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_agrees_with_torch(seeded, name, dtype):
    """Values, dtypes, shapes and every input's gradient, or the refusal, as torch's."""
    for draw in range(DRAWS):
        run(CASES[name](Draw(seeded.rng, dtype)), seeded, f"{name} {dtype}, draw {draw}")


def test_poisson_full_target_gradient_at_zero_is_stirlings(seeded):
    """PoissonNLLLoss(full=True)'s ∂L/∂t where t = 0: Stirling's term is 0 for t ≤ 1, so
    is its gradient: −x (e^x's log-rate) alone (torch's composition gives 0·log 0 = NaN)."""
    rng = seeded.rng
    x = rng.normal(size=(3, 2))
    t = np.where(rng.random((3, 2)) < 0.5, 0.0, rng.uniform(0, 1, (3, 2)))
    t[0, 0] = 0.0
    ours_t = wxb.tensor(t, dtype="float64", requires_grad=True)
    F.poisson_nll_loss(
        wxb.tensor(x, dtype="float64"), ours_t, full=True, reduction="sum"
    ).backward()
    np.testing.assert_array_equal(ours_t.grad, -x, err_msg=seeded.msg("∂L/∂t"))
    theirs_t = torch.tensor(t, requires_grad=True)
    TF.poisson_nll_loss(torch.tensor(x), theirs_t, full=True, reduction="sum").backward()
    assert np.isnan(theirs_t.grad.numpy()[0, 0])  # (what the module's docstring says)


# -- finite differences -------------------------------------------------------------------
STEP = 1e-6


def numeric(f, array: np.ndarray) -> np.ndarray:
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        kept = array[index]
        array[index] = kept + STEP
        plus = f()
        array[index] = kept - STEP
        minus = f()
        array[index] = kept
        grad[index] = (plus - minus) / (2 * STEP)
    return grad


def _smooth(rng, shape, gap: float = 0.05) -> np.ndarray:
    """Normal values kept off 0 by ``gap`` (the kinks below sit at 0 of a difference)."""
    x = rng.normal(size=shape)
    return np.where(np.abs(x) < gap, np.sign(x + 1e-300) * gap, x) + 0.0


def gradcheck_cases(rng):
    """(name, function of float64 arrays → wxb Tensor, arrays, which take a gradient):
    every loss at random options, its inputs away from the kinks (a hinge's corner is no
    derivative, and finite differences across it would measure both sides)."""
    n, c = int(rng.integers(2, 5)), int(rng.integers(2, 5))
    red = str(rng.choice(REDUCTIONS))
    counts = rng.poisson(2, size=(n, c)).astype(np.float64)
    signs = rng.choice([-1.0, 1.0], size=(n, c))
    yield (
        "poisson_nll",
        lambda x, t: F.poisson_nll_loss(x, t, full=True, reduction=red),
        [rng.normal(size=(n, c)), counts + rng.uniform(0.1, 0.9, (n, c))],
        [1, 1],
    )
    yield (
        "poisson_nll rates",
        lambda x, t: F.poisson_nll_loss(x, t, log_input=False, reduction=red),
        [rng.uniform(0.5, 3, (n, c)), counts],
        [1, 1],
    )
    yield (
        "gaussian_nll",
        lambda x, t, v: F.gaussian_nll_loss(x, t, v, full=True, reduction=red),
        [rng.normal(size=(n, c)), rng.normal(size=(n, c)), rng.uniform(0.2, 2, (n,))],
        [1, 1, 1],
    )
    yield (
        "gaussian_nll clamped",
        lambda x, t, v: F.gaussian_nll_loss(x, t, v, eps=0.5, reduction=red),
        [rng.normal(size=(n, c)), rng.normal(size=(n, c)), rng.uniform(0.6, 2, (n, 1))],
        [1, 1, 1],
    )
    yield (
        "soft_margin",
        lambda x: F.soft_margin_loss(x, signs, reduction=red),
        [rng.normal(size=(n, c)) * 2],
        [1],
    )
    weight = rng.uniform(0.5, 2, c)
    yield (
        "multilabel_soft_margin",
        lambda x, t: F.multilabel_soft_margin_loss(x, t, weight=weight, reduction=red),
        [rng.normal(size=(n, c)) * 2, rng.uniform(0, 1, (n, c))],
        [1, 1],
    )
    distances = np.abs(rng.normal(size=(n, c))) * 2
    margin = float(rng.uniform(0.5, 2))
    distances = np.where(np.abs(distances - margin) < 0.05, margin + 0.1, distances)
    yield (
        "hinge_embedding",
        lambda x: F.hinge_embedding_loss(x, signs, margin, reduction=red),
        [distances],
        [1],
    )
    x1 = rng.normal(size=(n, c))
    gap = _smooth(rng, (n, c))  # −y·(x1 − x2) + margin kept off 0: x2 = x1 + y·(margin + gap)
    yield (
        "margin_ranking",
        lambda a, b, y: F.margin_ranking_loss(a, b, y, margin, reduction=red),
        [x1, x1 + signs * (margin + gap), signs],
        [1, 1, 1],
    )
    labels = rng.choice([-1.0, 1.0], size=n)

    def cosine(a, b):
        return F.cosine_embedding_loss(a, b, labels, 0.0, reduction=red)

    b1, b2 = rng.normal(size=(n, c)), rng.normal(size=(n, c))
    b2 = np.where((labels[:, None] < 0) & ((b1 * b2).sum(1, keepdims=True) > 0), -b2, b2)
    b2 = np.where(np.abs((b1 * b2).sum(1, keepdims=True)) < 0.05, b2 - 0.3 * b1, b2)
    yield ("cosine_embedding", cosine, [b1, b2], [1, 1])
    y = rng.integers(0, c, n)
    scores = rng.normal(size=(n, c))
    gaps = scores - scores[np.arange(n), y][:, None] + 1.0
    scores = np.where(np.abs(gaps) < 0.05, scores + 0.1, scores)  # off margin − x_y + x_j = 0
    scores[np.arange(n), y] = scores[np.arange(n), y]
    for p in (1, 2):
        yield (
            f"multi_margin p={p}",
            lambda x, p=p: F.multi_margin_loss(x, y, p, 1.0, weight, reduction=red),
            [scores],
            [1],
        )
    listed = np.full((n, c), -1)
    listed[:, 0] = rng.integers(0, c, n)
    spread = np.arange(c, dtype=np.float64) * 0.37 + rng.normal(size=(n, c)) * 0.01
    yield (
        "multilabel_margin",
        lambda x: F.multilabel_margin_loss(x, listed, reduction=red),
        [spread],
        [1],
    )
    anchor, positive, negative = (rng.normal(size=(n, c)) for _ in range(3))
    for swap in (False, True):
        yield (
            f"triplet_margin swap={swap}",
            lambda a, p, q, s=swap: F.triplet_margin_loss(a, p, q, 5.0, 1.5, swap=s, reduction=red),
            [anchor, positive, negative],
            [1, 1, 1],
        )
    yield (
        "triplet_margin_with_distance",
        lambda a, p, q: nn.TripletMarginWithDistanceLoss(
            distance_function=lambda u, v: ((u - v) ** 2).sum(-1), margin=50.0, reduction=red
        )(a, p, q),
        [anchor, positive, negative],
        [1, 1, 1],
    )


def test_gradients_agree_with_finite_differences(seeded):
    """Every loss's backward against central differences in float64 (relative error of
    the whole gradient below 1e-6), a random weighting of a 'none' output."""
    for _ in range(5):
        for name, f, arrays, grads in gradcheck_cases(seeded.rng):
            tensors = [wxb.tensor(a, dtype="float64", requires_grad=bool(g))
                       for a, g in zip(arrays, grads, strict=True)]  # fmt: skip
            out = f(*tensors)
            upstream = seeded.rng.normal(size=out.shape)
            (out * wxb.tensor(upstream, dtype="float64")).sum().backward()
            for k, (t, a) in enumerate(zip(tensors, arrays, strict=True)):
                if not grads[k]:
                    continue

                def scalar(arrays=arrays, f=f, upstream=upstream):
                    made = [wxb.tensor(x, dtype="float64") for x in arrays]
                    return float((np.asarray(f(*made).data) * upstream).sum())

                expected = numeric(scalar, a)
                got = np.asarray(t.grad)
                error = np.linalg.norm(got - expected) / max(
                    np.linalg.norm(got) + np.linalg.norm(expected), 1e-300
                )
                assert error < 1e-6, seeded.msg(f"{name}: input {k}'s gradient off by {error:.2e}")


# -- fit and the hand loop ----------------------------------------------------------------
def _twins(rng, features: int, width: int, rates: bool = False):
    """A model and torch's twin of its weights (ending in Softplus: positive ``rates``)."""
    model = nn.Sequential(nn.Linear(features, 5), nn.Tanh(), nn.Linear(5, width))
    twin = torch.nn.Sequential(
        torch.nn.Linear(features, 5), torch.nn.Tanh(), torch.nn.Linear(5, width)
    )
    if rates:
        model.append(nn.Softplus())
        twin.append(torch.nn.Softplus())
    model, twin = model.to("float64"), twin.double()
    with torch.no_grad():
        for ours, theirs in zip((model[0], model[2]), (twin[0], twin[2]), strict=True):
            theirs.weight.copy_(torch.tensor(np.asarray(ours.weight.data)))
            theirs.bias.copy_(torch.tensor(np.asarray(ours.bias.data)))
    return model, twin


def _same_weights(model, twin, what: str) -> None:
    for ours, theirs in zip((model[0], model[2]), (twin[0], twin[2]), strict=True):
        for key in ("weight", "bias"):
            np.testing.assert_allclose(
                np.asarray(getattr(ours, key).data), getattr(theirs, key).detach().numpy(),
                rtol=1e-10, atol=1e-12, err_msg=what,
            )  # fmt: skip


def fit_cases(rng, rows: int):
    counts = rng.poisson(2, size=(rows, 1)).astype(np.float64)
    yield "poisson_nll", nn.PoissonNLLLoss(), torch.nn.PoissonNLLLoss(), counts, 1
    yield (
        "PoissonNLLLoss rates, y (B,)",
        nn.PoissonNLLLoss(log_input=False, full=True, eps=0.1),
        torch.nn.PoissonNLLLoss(log_input=False, full=True, eps=0.1),
        counts[:, 0],
        1,
    )
    labels = rng.integers(0, 2, size=(rows, 3)).astype(np.float64)
    weight = rng.uniform(0.5, 2, 3)
    yield (
        "multilabel_soft_margin",
        nn.MultiLabelSoftMarginLoss(weight=weight),
        torch.nn.MultiLabelSoftMarginLoss(weight=torch.tensor(weight)),
        labels,
        3,
    )
    signs = rng.choice([-1.0, 1.0], size=(rows, 1))
    yield "soft_margin", nn.SoftMarginLoss(), torch.nn.SoftMarginLoss(), signs, 1
    yield (
        "hinge_embedding",
        nn.HingeEmbeddingLoss(margin=0.5),
        torch.nn.HingeEmbeddingLoss(margin=0.5),
        signs,
        1,
    )
    classes = rng.integers(0, 3, size=rows)
    yield (
        "multi_margin",
        nn.MultiMarginLoss(p=2, margin=0.8, weight=weight),
        torch.nn.MultiMarginLoss(p=2, margin=0.8, weight=torch.tensor(weight)),
        classes,
        3,
    )
    listed = np.full((rows, 3), -1)
    listed[:, 0] = classes
    listed[:, 1] = np.where(rng.random(rows) < 0.5, (classes + 1) % 3, -1)
    yield (
        "multilabel_margin",
        nn.MultiLabelMarginLoss(),
        torch.nn.MultiLabelMarginLoss(),
        listed,
        3,
    )


def test_fit_trains_as_torchs_loop(seeded):
    """wxb.fit with each one-input loss (by its class, or by torch.nn.functional's name less
    "_loss") takes the weights where torch's loop of the same batches takes its own."""
    rng = seeded.rng
    rows, features = 24, 3
    X = rng.normal(size=(rows, features))
    for name, ours, theirs, y, width in fit_cases(rng, rows):
        model, twin = _twins(rng, features, width, rates="rates" in name)
        opt = torch.optim.SGD(twin.parameters(), lr=0.1)
        target = torch.tensor(y if y.ndim > 1 or width > 1 else y[:, None])
        for _epoch in range(2):
            for start in range(0, rows, 8):
                opt.zero_grad()
                part = slice(start, start + 8)
                theirs(twin(torch.tensor(X[part])), target[part]).backward()
                opt.step()
        default = repr(ours) == repr(type(ours)())  # (by name: the loss of default options)
        loss = name if default and name in nn.losses.GRAPH_LOSSES and rng.random() < 0.5 else ours
        wxb.fit(model, X, y, loss=loss, optimizer=wxb.optim.SGD(model.parameters(), lr=0.1),
                epochs=2, batch_size=8, shuffle=False, verbose=0)  # fmt: skip
        _same_weights(model, twin, seeded.msg(f"{name} (fit's loss {loss!r})"))


def test_two_and_three_input_losses_train_in_a_hand_loop_and_fit_refuses_them(seeded):
    """MarginRankingLoss, CosineEmbeddingLoss, GaussianNLLLoss and the triplet losses take
    more than (output, target): a hand loop trains with them as torch's, and fit refuses
    them in one line that says so."""
    rng = seeded.rng
    X = rng.normal(size=(16, 3))
    hand = [
        (nn.MarginRankingLoss(margin=0.2), torch.nn.MarginRankingLoss(margin=0.2), 1),
        (nn.CosineEmbeddingLoss(margin=0.1), torch.nn.CosineEmbeddingLoss(margin=0.1), 4),
        (nn.GaussianNLLLoss(full=True), torch.nn.GaussianNLLLoss(full=True), 2),
        (nn.TripletMarginLoss(swap=True), torch.nn.TripletMarginLoss(swap=True), 4),
        (nn.TripletMarginWithDistanceLoss(margin=0.5),
         torch.nn.TripletMarginWithDistanceLoss(margin=0.5), 4),
    ]  # fmt: skip
    for ours, theirs, width in hand:
        name = type(ours).__name__
        with pytest.raises(ConfigError, match=f"loss {name} takes .* loop of your own") as refused:
            wxb.fit(nn.Sequential(nn.Linear(3, width)), X, X[:, 0], loss=ours, verbose=0)
        assert "\n" not in str(refused.value)
        model, twin = _twins(rng, 3, width)
        mine = wxb.optim.SGD(model.parameters(), lr=0.1)
        opt = torch.optim.SGD(twin.parameters(), lr=0.1)
        labels = rng.choice([-1.0, 1.0], size=8 if width > 1 else (8, 1))
        for start in range(0, 16, 8):
            a, b = X[start : start + 8], X[(start + 8) % 16 : (start + 8) % 16 + 8]
            mine.zero_grad()
            opt.zero_grad()
            oa, ob = model(wxb.tensor(a, dtype="float64")), model(wxb.tensor(b, dtype="float64"))
            ta, tb = twin(torch.tensor(a)), twin(torch.tensor(b))
            if isinstance(ours, nn.GaussianNLLLoss):
                y = b[:, :1]
                ours(oa[:, :1], y, oa[:, 1:].exp()).backward()
                theirs(ta[:, :1], torch.tensor(y), ta[:, 1:].exp()).backward()
            elif isinstance(ours, (nn.TripletMarginLoss, nn.TripletMarginWithDistanceLoss)):
                c = X[::2]
                ours(oa, ob, model(wxb.tensor(c, dtype="float64"))).backward()
                theirs(ta, tb, twin(torch.tensor(c))).backward()
            else:
                ours(oa, ob, labels).backward()
                theirs(ta, tb, torch.tensor(labels)).backward()
            mine.step()
            opt.step()
        _same_weights(model, twin, seeded.msg(name))


# -- options, refusals, names -------------------------------------------------------------
def test_options_are_torchs_and_bad_ones_are_refused_in_one_line():
    assert repr(nn.MultiMarginLoss(p=2, margin=0.5)) == (
        "MultiMarginLoss(reduction='mean', p=2, margin=0.5)"
    )
    loss = nn.HingeEmbeddingLoss()
    loss.margin, loss.reduction = 0.0, "sum"  # set later, as torch's attributes
    x = wxb.tensor([0.5, 2.0], requires_grad=True)
    loss(x, np.array([-1.0, 1.0])).backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0])
    refused = [
        lambda: nn.PoissonNLLLoss(log_input="yes"),
        lambda: nn.PoissonNLLLoss(size_average=False),
        lambda: nn.GaussianNLLLoss(eps=float("nan")),
        lambda: nn.MultiMarginLoss(p=3),
        lambda: nn.MultiMarginLoss(weight=[1.0, 2.0])(
            wxb.tensor(np.zeros((2, 3))), np.array([0, 1])
        ),
        lambda: nn.TripletMarginLoss(margin=0.0),
        lambda: nn.TripletMarginWithDistanceLoss(margin=-1.0),
        lambda: nn.TripletMarginWithDistanceLoss(distance_function="euclidean"),
        lambda: nn.SoftMarginLoss(reduction="avg"),
        lambda: F.multi_margin_loss(wxb.tensor(np.zeros((2, 3))), np.array([0.5, 1.0])),
        lambda: F.multilabel_margin_loss(wxb.tensor(np.zeros((2, 3))), np.array([0, 1])),
        lambda: F.gaussian_nll_loss(wxb.tensor([1.0]), [1.0], -1.0),
        lambda: F.cosine_embedding_loss(wxb.tensor(np.ones((2, 3))), np.ones((2, 3)), np.ones(3)),
    ]
    for make in refused:
        with pytest.raises(WXB_ERRORS) as error:
            make()
        assert one_line(error.value), error.value


def test_every_new_loss_has_torchs_names_and_signatures():
    """wxb.nn has the classes and wxb.nn.functional the functions, with torch's parameter
    names in torch's order (a positional call binds as torch's)."""
    import inspect

    functions = ["poisson_nll_loss", "gaussian_nll_loss", "soft_margin_loss",
                 "multilabel_soft_margin_loss", "hinge_embedding_loss", "margin_ranking_loss",
                 "cosine_embedding_loss", "multi_margin_loss", "multilabel_margin_loss",
                 "triplet_margin_loss", "triplet_margin_with_distance_loss"]  # fmt: skip
    for name in functions:
        assert name in F.__all__, name
        ours = list(inspect.signature(getattr(F, name)).parameters)
        assert ours == list(inspect.signature(getattr(TF, name)).parameters), name
    classes = ["PoissonNLLLoss", "GaussianNLLLoss", "SoftMarginLoss", "MultiLabelSoftMarginLoss",
               "HingeEmbeddingLoss", "MarginRankingLoss", "CosineEmbeddingLoss",
               "MultiMarginLoss", "MultiLabelMarginLoss", "TripletMarginLoss",
               "TripletMarginWithDistanceLoss"]  # fmt: skip
    for name in classes:
        assert name in nn.__all__, name
        ours = list(inspect.signature(getattr(nn, name)).parameters)
        assert ours == list(inspect.signature(getattr(torch.nn, name)).parameters), name
