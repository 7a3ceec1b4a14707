"""The tensor methods and functions a ported PyTorch script reaches for next, against
PyTorch: ``roll``, ``median``, ``kthvalue``, ``cummax``/``cummin``, ``diag``/``diagonal``,
``trace``, ``lerp``, ``fmod``, ``cumprod``, ``logcumsumexp``, ``quantile``/``nanquantile``,
``nan_to_num``, ``addmm``/``baddbmm``, ``wxb.unique``, ``F.pad``, ``F.cosine_similarity``,
``F.pairwise_distance``, ``wxb.cdist``, ``wxb.einsum`` with ``...``, ``Tensor.where``.

Each draw: random shapes and dims (negative too), keepdim, float32 and float64, values
drawn with ties on purpose; the values (and indices), then the gradients of a random
weighting of the outputs, must be torch's; float64 gradients of ties-free draws also
match central finite differences; what torch refuses, wxb refuses in one line.

Where torch leaves a choice to its kernel — which of tied values ``median(dim)`` and
``kthvalue`` name (torch's own picks vary with the values' order) — wxb's index must
name a value equal to torch's, and the gradient must go to wxb's index; ``median()``
over everything shares it among the ties, ``cummax``/``cummin`` take the later index of
a tie, as torch's, and are held to torch's indices exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest

import wxb
import wxb.nn.functional as F
from wxb.errors import ConfigError, DataError, ShapeError, TrainingError

torch = pytest.importorskip("torch")
TF = torch.nn.functional

pytestmark = [
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

DRAWS = 30
EPS = {np.dtype(np.float32): 2.0**-23, np.dtype(np.float64): 2.0**-52}
WXB_ERRORS = (ConfigError, DataError, ShapeError)
TORCH_ERRORS = (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError)


# -- drawing and comparing ------------------------------------------------------------------
class Draw:
    def __init__(self, rng: np.random.Generator, dtype=None) -> None:
        self.rng = rng
        self.dtype = np.dtype(dtype or rng.choice([np.float32, np.float64]))

    def int(self, low: int, high: int) -> int:
        return int(self.rng.integers(low, high))

    def flag(self) -> bool:
        return bool(self.rng.random() < 0.5)

    def shape(self, min_nd: int = 1, max_nd: int = 3, low: int = 1) -> tuple[int, ...]:
        return tuple(self.int(low, 6) for _ in range(self.int(min_nd, max_nd + 1)))

    def values(self, shape, ties: bool | None = None) -> np.ndarray:
        ties = self.flag() if ties is None else ties
        if ties:  # few distinct values: ties on purpose
            return self.rng.choice([-1.0, 0.0, 0.5, 2.0], size=shape).astype(self.dtype)
        return self.rng.normal(size=shape).astype(self.dtype)

    def dim(self, ndim: int) -> int:
        return self.int(-max(ndim, 1), max(ndim, 1))


def array(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    if isinstance(value, wxb.Tensor):
        return np.asarray(value.data)
    return np.asarray(value)


def assert_agrees(ours, theirs, terms: float, what: str, floor: float = 0.0) -> None:
    """Same dtype and shape; NaN and ±inf where torch's are; finite values within
    4·terms ulps of the value plus the largest one (``terms``: about how many rounded
    operations each output went through), or of ``floor`` if larger."""
    ours, theirs = array(ours), array(theirs)
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype}, torch's {theirs.dtype}"
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape}, torch's {theirs.shape}"
    nan = np.isnan(theirs)
    assert np.array_equal(np.isnan(ours), nan), f"{what}: NaN at {ours}, torch's {theirs}"
    inf = np.isinf(theirs)
    assert np.array_equal(ours[inf], theirs[inf]), f"{what}: ±inf at {ours}, torch's {theirs}"
    finite = ~nan & ~inf
    o, t = ours[finite].astype(np.float64), theirs[finite].astype(np.float64)
    scale = max(np.abs(t).max(initial=0.0), floor)
    bound = 4 * terms * EPS[theirs.dtype] * (np.abs(t) + scale)
    err = np.abs(o - t)
    assert (err <= bound).all(), f"{what}: off by {err.max():.3g}; {ours}, torch's {theirs}"


def product_scale(*arrays) -> float:
    """A bound on each summand of a multilinear op's gradient: |weight| (below 5) times
    the largest of each other operand's entries."""
    return 5 * float(np.prod([max(1.0, np.abs(a).max(initial=0.0)) for a in arrays]))


def one_line(error: BaseException) -> bool:
    return isinstance(error, WXB_ERRORS) and "\n" not in str(error) and len(str(error)) > 10


def first(result):
    return result[0] if isinstance(result, tuple) else result


def compare(seeded, what, inputs, ours, theirs, terms=1.0, picks=None, fd=None, floor=0.0,
            by_value=False):  # fmt: skip
    """ours(*wxb tensors) and theirs(*torch tensors) on the same arrays: torch refuses
    ⇔ wxb refuses in one line; values; indices, torch's exactly, or where ``picks``
    (dim, keepdim) says torch's choice among ties is its kernel's, indices that name
    elements holding the values; gradients of a random weighting (torch's, or where the
    indices differ, the weights at wxb's indices); finite differences in float64 where
    ``fd`` (the draw has no ties). ``floor``: the scale of a gradient's summands, where
    they cancel to nearly 0; ``by_value``: torch's sort placed tied values in its
    kernel's order, so each value's gradient summed over its ties is compared."""
    what = seeded.msg(what)
    ours_in = [wxb.tensor(a, dtype=a.dtype, requires_grad=True) for a in inputs]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in inputs]
    try:
        expected = theirs(*theirs_in)
    except TORCH_ERRORS as refused:
        with pytest.raises(WXB_ERRORS) as ours_refused:
            ours(*ours_in)
        assert one_line(ours_refused.value), f"{what}: torch: {refused}; wxb: {ours_refused.value}"
        return None
    got = ours(*ours_in)
    got_values, expected_values = first(got), first(expected)
    assert_agrees(got_values, expected_values, terms, f"{what}: value", floor)
    same_indices, places = True, None
    if isinstance(expected, tuple):
        mine, theirs_i = np.asarray(got[1]), expected[1].numpy()
        assert mine.dtype == np.int64 and mine.shape == theirs_i.shape, what
        same_indices = np.array_equal(mine, theirs_i)
        if picks is None:
            assert same_indices, f"{what}: indices {mine}, torch's {theirs_i}"
        elif inputs[0].ndim:
            dim, keepdim = picks
            places = mine if keepdim else np.expand_dims(mine, dim)
            named = np.take_along_axis(inputs[0], places, dim)
            values = array(got_values).reshape(named.shape)
            assert np.array_equal(named, values, equal_nan=True), f"{what}: {mine} names others"
    weights = seeded.rng.normal(size=expected_values.shape).astype(inputs[0].dtype)
    (expected_values * torch.tensor(weights)).sum().backward()
    (got_values * wxb.tensor(weights, dtype=weights.dtype)).sum().backward()
    for k, (a, b) in enumerate(zip(ours_in, theirs_in, strict=True)):
        if b.grad is None:
            assert a.grad is None or not np.any(array(a.grad)), f"{what}: gradient {k}"
        elif by_value:
            mine, theirs_g = array(a.grad), array(b.grad)
            groups = np.unique(inputs[k], equal_nan=True)
            for v in groups:
                hit = np.isnan(inputs[k]) if np.isnan(v) else inputs[k] == v
                assert_agrees(mine[hit].sum(keepdims=True), theirs_g[hit].sum(keepdims=True),
                              terms * hit.sum(), f"{what}: gradient {k} of the {v}s")  # fmt: skip
        elif same_indices:
            assert_agrees(a.grad, b.grad, terms, f"{what}: gradient {k}", floor)
        else:  # torch's kernel named another of the ties: the weights go to wxb's
            expected_grad = np.zeros_like(inputs[0])
            np.put_along_axis(expected_grad, places, weights.reshape(places.shape), picks[0])
            assert np.array_equal(array(a.grad), expected_grad), f"{what}: gradient {k}"
    if fd is not None and inputs[0].dtype == np.float64 and all(np.isfinite(inputs[0]).flat):
        finite_differences(fd, inputs, weights, [array(a.grad) for a in ours_in], what)
    return got


def finite_differences(fn, inputs, weights, grads, what, h=1e-6):
    """Σ weights·fn(inputs) differentiated by central differences, each input element."""

    def total(arrays):
        with wxb.no_grad():
            return float(np.sum(array(first(fn(*[wxb.tensor(a, dtype=a.dtype) for a in arrays])))
                                * weights))  # fmt: skip

    for k, a in enumerate(inputs):
        numeric = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            up, down = [x.copy() for x in inputs], [x.copy() for x in inputs]
            up[k][i] += h
            down[k][i] -= h
            numeric[i] = (total(up) - total(down)) / (2 * h)
        scale = 1e-6 * (1 + np.abs(numeric).max(initial=0.0)) * max(1, a.size) ** 0.5
        err = np.abs(grads[k] - numeric).max(initial=0.0)
        assert err <= scale * 10, f"{what}: input {k}'s gradient {err:.3g} off finite differences"


# -- the ops ----------------------------------------------------------------------------------
def _one_draw_roll_is_torchs(seeded, draw):
    d = Draw(seeded.rng)
    x = d.values(d.shape(0, 3))
    if d.flag() or x.ndim == 0:
        shifts, dims = d.int(-7, 8), None
    else:
        count = d.int(1, x.ndim + 1)
        shifts = tuple(d.int(-7, 8) for _ in range(count))
        dims = tuple(d.dim(x.ndim) for _ in range(count))
        if d.int(0, 8) == 0:  # misaligned: refused
            dims = dims[:-1] or (0, 0)
    fn = (lambda t, s=shifts, m=dims: t.roll(s, m)) if dims else (lambda t, s=shifts: t.roll(s))
    compare(seeded, f"roll({shifts}, {dims}), draw {draw}", [x], fn, fn, fd=fn)
    tfn = (lambda t, s=shifts, m=dims: torch.roll(t, s, m)) if dims else None
    if tfn is not None:
        compare(seeded, f"wxb.roll, draw {draw}", [x], lambda t: wxb.roll(t, shifts, dims), tfn)


def test_roll_is_torchs(seeded):
    for draw in range(DRAWS):
        _one_draw_roll_is_torchs(seeded, draw)


def _one_draw_median_is_torchs_lower_median_ties_sharing_the_gradient(seeded, draw):
    d = Draw(seeded.rng)
    ties = d.flag()
    x = d.values(d.shape(0, 3), ties)
    if d.int(0, 6) == 0 and x.size:
        x.flat[d.int(0, x.size)] = np.nan
    keepdim = d.flag()
    # over everything: torch shares the gradient among the tied elements
    compare(seeded, f"median(), draw {draw}", [x], lambda t: t.median(),
            lambda t: t.median(), fd=None if ties else (lambda t: t.median()))  # fmt: skip
    dim = d.dim(x.ndim)
    compare(
        seeded,
        f"median({dim}, keepdim={keepdim}), draw {draw}",
        [x],
        lambda t: t.median(dim, keepdim),
        lambda t: t.median(dim, keepdim),
        picks=(dim, keepdim),
        fd=None if ties else (lambda t: t.median(dim, keepdim)),
    )


def test_median_is_torchs_lower_median_ties_sharing_the_gradient(seeded):
    for draw in range(DRAWS):
        _one_draw_median_is_torchs_lower_median_ties_sharing_the_gradient(seeded, draw)


def test_median_along_a_dim_sends_the_gradient_to_its_index(seeded):
    d = Draw(seeded.rng)
    x = d.values((4, 5), ties=True)
    t = wxb.tensor(x, dtype=x.dtype, requires_grad=True)
    found = t.median(1)
    weights = seeded.rng.normal(size=4).astype(x.dtype)
    (found.values * wxb.tensor(weights, dtype=x.dtype)).sum().backward()
    expected = np.zeros_like(x)
    expected[np.arange(4), np.asarray(found.indices)] = weights
    assert np.array_equal(np.asarray(t.grad.data), expected), seeded.msg("median's gradient")
    lower = np.sort(x, axis=1)[:, 2]  # the lower median of 5: the third
    assert np.array_equal(np.asarray(found.values.data), lower), seeded.msg("median's values")


def _one_draw_kthvalue_is_torchs(seeded, draw):
    d = Draw(seeded.rng)
    ties = d.flag()
    x = d.values(d.shape(0, 3), ties)
    dim = d.dim(x.ndim)
    n = x.shape[dim] if x.ndim else 1
    k = d.int(0, n + 2)  # 0 and n + 1: refused
    keepdim = d.flag()
    fn = lambda t: t.kthvalue(k, dim, keepdim)  # noqa: E731
    compare(seeded, f"kthvalue({k}, {dim}, {keepdim}), draw {draw}", [x], fn, fn,
            picks=(dim, keepdim), fd=None if ties else fn)  # fmt: skip


def test_kthvalue_is_torchs(seeded):
    for draw in range(DRAWS):
        _one_draw_kthvalue_is_torchs(seeded, draw)


def _one_draw_cummax_and_cummin_take_torchs_indices_at_ties_and_nan(seeded, name, draw):
    d = Draw(seeded.rng)
    ties = d.flag()
    x = d.values(d.shape(0, 3), ties)
    if d.int(0, 5) == 0 and x.size:
        x.flat[d.int(0, x.size)] = np.nan
    dim = d.dim(x.ndim)
    fn = lambda t: getattr(t, name)(dim)  # noqa: E731
    compare(seeded, f"{name}({dim}), draw {draw}", [x], fn, fn,
            fd=None if ties or np.isnan(x).any() else fn)  # fmt: skip
    compare(seeded, f"wxb.{name}, draw {draw}", [x], lambda t: getattr(wxb, name)(t, dim),
            lambda t: getattr(torch, name)(t, dim))  # fmt: skip


@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_and_cummin_take_torchs_indices_at_ties_and_nan(seeded, name):
    for draw in range(DRAWS):
        _one_draw_cummax_and_cummin_take_torchs_indices_at_ties_and_nan(seeded, name, draw)


def _one_draw_diag_diagonal_and_trace_are_torchs(seeded, draw):
    d = Draw(seeded.rng)
    x = d.values(d.shape(1, 3))
    offset = d.int(-6, 7)
    fn = lambda t: t.diag(offset)  # noqa: E731
    compare(seeded, f"diag({offset}) of {x.shape}, draw {draw}", [x], fn, fn, fd=fn)
    y = d.values(d.shape(1, 4))
    dim1, dim2 = d.dim(y.ndim), d.dim(y.ndim)
    fn = lambda t: t.diagonal(offset, dim1, dim2)  # noqa: E731
    compare(seeded, f"diagonal({offset}, {dim1}, {dim2}) of {y.shape}", [y], fn, fn, fd=fn)
    fn = lambda t: t.trace()  # noqa: E731
    compare(seeded, f"trace of {y.shape}", [y], fn, fn, terms=y.size, fd=fn)
    compare(seeded, "wxb.diagonal", [y], lambda t: wxb.diagonal(t, offset, dim1, dim2),
            lambda t: torch.diagonal(t, offset, dim1, dim2))  # fmt: skip


def test_diag_diagonal_and_trace_are_torchs(seeded):
    for draw in range(DRAWS):
        _one_draw_diag_diagonal_and_trace_are_torchs(seeded, draw)


def _one_draw_lerp_is_torchs_with_number_and_tensor_weights(seeded, draw):
    d = Draw(seeded.rng)
    shape = d.shape(0, 3)
    start, end = d.values(shape, False), d.values(shape[d.int(0, len(shape) + 1) :], False)
    # a broadcast operand's gradient sums up to size terms of |g|·|w|, |g|·|1 − w|, |g|·|e − s|,
    # which may cancel: held to their scale
    size = int(np.prod(shape))
    if d.flag():
        w = float(d.rng.choice([0.0, 0.25, 0.5, 0.75, 1.0, d.rng.normal()]))
        floor = 5 * (1 + abs(w))
        compare(seeded, f"lerp(w={w}), draw {draw}", [start, end],
                lambda s, e: s.lerp(e, w), lambda s, e: s.lerp(e, w), terms=4 * size,
                fd=lambda s, e: s.lerp(e, w), floor=floor)  # fmt: skip
    else:
        w = d.values(shape[d.int(0, len(shape) + 1) :], False)
        floor = 5 * (1 + np.abs(w).max(initial=0) + np.abs(end).max() + np.abs(start).max())
        fn = lambda s, e, w: s.lerp(e, w)  # noqa: E731
        compare(seeded, f"lerp(tensor w), draw {draw}", [start, end, w], fn, fn,
                terms=4 * size, fd=fn, floor=floor)  # fmt: skip
        compare(seeded, "wxb.lerp", [start, end, w], wxb.lerp, torch.lerp, terms=4 * size,
                floor=floor)  # fmt: skip


def test_diagonal_is_a_view_as_torchs_and_diag_a_copy(seeded):
    """m.diagonal().fill_(v) changes m (masking a similarity matrix's self-pairs), and
    an in-place change through it is recorded as torch records it; diag's is a copy."""
    d = Draw(seeded.rng)
    x = d.values((2, 4, 5), False)
    offset, value = d.int(-2, 3), float(d.rng.normal())
    for lib in (wxb, torch):
        m = (wxb.tensor(x, dtype=x.dtype) if lib is wxb else torch.tensor(x)).clone()
        m.diagonal(offset, 1, 2).fill_(value)
        if lib is wxb:
            ours = array(m)
        else:
            assert np.array_equal(ours, m.numpy()), seeded.msg("diagonal().fill_")
    x2 = d.values((4, 4), False)
    grads = []
    for lib in (wxb, torch):
        leaf = (wxb.tensor(x2, dtype=x2.dtype, requires_grad=True) if lib is wxb
                else torch.tensor(x2, requires_grad=True))  # fmt: skip
        y = leaf * 1
        y.diagonal(offset).mul_(3)
        (y * y).sum().backward()
        grads.append(array(leaf.grad))
    assert_agrees(grads[0], grads[1], 4, seeded.msg("a change through diagonal's view"))
    kept = wxb.tensor(x2, dtype=x2.dtype)
    kept.diag(offset).fill_(0)
    assert np.array_equal(array(kept), x2), seeded.msg("diag of a matrix is a copy")


def test_lerp_is_torchs_with_number_and_tensor_weights(seeded):
    for draw in range(DRAWS):
        _one_draw_lerp_is_torchs_with_number_and_tensor_weights(seeded, draw)


def _one_draw_fmod_takes_the_dividends_sign_and_remainder_the_divisors(seeded, draw):
    d = Draw(seeded.rng)
    shape = d.shape(0, 3)
    a = (d.rng.normal(size=shape) * 5).astype(d.dtype)
    b = d.rng.choice([-3.0, -1.5, 0.7, 2.0, 2.5], size=shape[d.int(0, len(shape) + 1) :])
    b = b.astype(d.dtype)
    for name in ("fmod", "remainder"):
        fn = lambda x, y, n=name: getattr(x, n)(y)  # noqa: E731
        # b's gradient, broadcast, sums terms of |g|·|quotient| that may cancel
        floor = 5 * (1 + float(np.abs(a).max(initial=0)) / 0.7)
        compare(seeded, f"{name}, draw {draw}", [a, b], fn, fn, terms=2 * max(a.size, 1),
                floor=floor)  # fmt: skip
        if name == "fmod":
            assert np.all(np.sign(array(fn(wxb.tensor(a, dtype=a.dtype), b)))
                          * np.sign(a) >= 0), seeded.msg("fmod's sign")  # fmt: skip
    compare(seeded, "wxb.fmod with a number", [a], lambda x: wxb.fmod(x, -1.5),
            lambda x: torch.fmod(x, -1.5), terms=2)  # fmt: skip


def test_fmod_takes_the_dividends_sign_and_remainder_the_divisors(seeded):
    for draw in range(DRAWS):
        _one_draw_fmod_takes_the_dividends_sign_and_remainder_the_divisors(seeded, draw)


def _one_draw_cumprod_is_torchs_with_zeros(seeded, draw):
    d = Draw(seeded.rng)
    x = np.asarray(d.values(d.shape(0, 3), False) + 0.5, dtype=d.dtype)
    zeros = d.int(0, 3)
    for _ in range(zeros if x.size else 0):
        x.flat[d.int(0, x.size)] = 0  # one zero, two: the gradient's hard cases
    dim = d.dim(x.ndim)
    fn = lambda t: t.cumprod(dim)  # noqa: E731
    n = x.shape[dim] if x.ndim else 1
    compare(seeded, f"cumprod({dim}) with {zeros} zeros, draw {draw}", [x], fn, fn,
            terms=2 * n, fd=fn)  # fmt: skip


def test_cumprod_is_torchs_with_zeros(seeded):
    for draw in range(DRAWS):
        _one_draw_cumprod_is_torchs_with_zeros(seeded, draw)


def _one_draw_logcumsumexp_is_torchs(seeded, draw):
    d = Draw(seeded.rng)
    x = d.values(d.shape(0, 3), False) * d.dtype.type(d.rng.choice([1.0, 30.0]))
    if d.flag() and d.dtype == np.float64:  # far from 0: exp would overflow
        x = x + float(d.rng.choice([-500.0, 500.0]))
    x = np.asarray(x, dtype=d.dtype)
    dim = d.dim(x.ndim)
    fn = lambda t: t.logcumsumexp(dim)  # noqa: E731
    n = x.shape[dim] if x.ndim else 1
    # exp(x − out) carries the rounding of x and out, |x| + |out| ulps of its exponent
    # (x near ±30: a float32 gradient's last 3 digits), n of them summed
    spread = 1 + 2 * float(np.abs(x).max(initial=0.0)) + np.log(max(n, 1))
    compare(seeded, f"logcumsumexp({dim}), draw {draw}", [x], fn, fn,
            terms=4 * n * spread + 8, fd=fn)  # fmt: skip


def test_logcumsumexp_is_torchs(seeded):
    for draw in range(DRAWS):
        _one_draw_logcumsumexp_is_torchs(seeded, draw)


def _one_draw_quantile_is_torchs_for_each_interpolation(seeded, name, draw):
    d = Draw(seeded.rng)
    ties = d.flag()
    x = d.values(d.shape(0, 3), ties)
    if d.int(0, 4) == 0 and x.size:
        x.flat[d.int(0, x.size)] = np.nan
    how = str(d.rng.choice(["linear", "lower", "higher", "midpoint", "nearest"]))
    if d.flag():
        q = float(d.rng.choice([0.0, 0.25, 0.5, 1.0, d.rng.random()]))
        tq = q
    else:
        q = d.rng.random(size=d.int(1, 4)).astype(d.dtype)
        tq = torch.tensor(q)
    dim = None if d.flag() else d.dim(x.ndim)
    keepdim = d.flag()

    def ours(t):
        return getattr(t, name)(q, dim, keepdim, interpolation=how)

    def theirs(t):
        return getattr(t, name)(tq, dim, keepdim, interpolation=how)

    smooth = not ties and not np.isnan(x).any() and how in ("linear", "midpoint")
    compare(seeded, f"{name}({q}, {dim}, {keepdim}, {how}) of {x.shape}, draw {draw}",
            [x], ours, theirs, terms=4, fd=ours if smooth else None, by_value=ties)  # fmt: skip


@pytest.mark.parametrize("name", ["quantile", "nanquantile"])
def test_quantile_is_torchs_for_each_interpolation(seeded, name):
    for draw in range(DRAWS):
        _one_draw_quantile_is_torchs_for_each_interpolation(seeded, name, draw)


def _one_draw_nan_to_num_is_torchs(seeded, draw):
    d = Draw(seeded.rng)
    x = d.values(d.shape(0, 3), False)
    for special in (np.nan, np.inf, -np.inf):
        if x.size and d.flag():
            x.flat[d.int(0, x.size)] = special
    options = {k: float(d.rng.normal()) for k in ("nan", "posinf", "neginf") if d.flag()}
    fn = lambda t: t.nan_to_num(**options)  # noqa: E731
    compare(seeded, f"nan_to_num({options}), draw {draw}", [x], fn, fn)
    compare(seeded, "wxb.nan_to_num", [x], lambda t: wxb.nan_to_num(t, **options),
            lambda t: torch.nan_to_num(t, **options))  # fmt: skip


def test_nan_to_num_is_torchs(seeded):
    for draw in range(DRAWS):
        _one_draw_nan_to_num_is_torchs(seeded, draw)


def _one_draw_addmm_and_baddbmm_are_torchs(seeded, draw):
    d = Draw(seeded.rng)
    n, m, p, b = d.int(1, 5), d.int(1, 5), d.int(1, 5), d.int(1, 4)
    beta = float(d.rng.choice([0.0, 1.0, 0.5, -2.0]))
    alpha = float(d.rng.choice([1.0, 0.0, 3.0, -0.5]))
    shape = [(n, p), (p,), (1, p), (n, 1), ()][d.int(0, 5)]
    if d.int(0, 6) == 0:
        shape = (n + 1, p)  # does not broadcast: refused
    c = d.values(shape, False)
    if beta == 0 and c.size:
        c.flat[0] = np.nan  # beta=0: input not read, its NaN neither
    x, y = d.values((n, m), False), d.values((m if d.int(0, 8) else m + 1, p), False)
    fn = lambda c, x, y: c.addmm(x, y, beta=beta, alpha=alpha)  # noqa: E731
    compare(seeded, f"addmm(beta={beta}, alpha={alpha}) of {shape}", [c, x, y], fn, fn,
            terms=n * p + m + 3, fd=None if beta == 0 else fn,
            floor=product_scale(c, x, y, [alpha, beta]))  # fmt: skip
    compare(seeded, "wxb.addmm", [c, x, y], lambda c, x, y: wxb.addmm(c, x, y, alpha=alpha),
            lambda c, x, y: torch.addmm(c, x, y, alpha=alpha), terms=n * p + m + 3,
            floor=product_scale(c, x, y, [alpha]))  # fmt: skip
    c3 = d.values([(b, n, p), (n, p), (1, 1, p), ()][d.int(0, 4)], False)
    x3, y3 = d.values((b, n, m), False), d.values((b, m, p), False)
    fn = lambda c, x, y: c.baddbmm(x, y, beta=beta, alpha=alpha)  # noqa: E731
    compare(seeded, f"baddbmm(beta={beta}, alpha={alpha})", [c3, x3, y3], fn, fn,
            terms=b * n * p + m + 3, fd=None if beta == 0 else fn,
            floor=product_scale(c3, x3, y3, [alpha, beta]))  # fmt: skip


def test_addmm_and_baddbmm_are_torchs(seeded):
    for draw in range(DRAWS):
        _one_draw_addmm_and_baddbmm_are_torchs(seeded, draw)


def _one_draw_unique_is_torchs_and_refuses_a_backward(seeded, draw):
    d = Draw(seeded.rng)
    x = d.values(d.shape(0, 3), ties=True)
    inverse, counts = d.flag(), d.flag()
    dim = None if d.flag() or x.ndim == 0 else d.dim(x.ndim)
    if d.int(0, 4) == 0 and x.size and dim is None:  # (along a dim torch orders the
        x.flat[d.int(0, x.size)] = np.nan  # NaN slices by chance) each NaN its own
    what = seeded.msg(f"unique(inverse={inverse}, counts={counts}, dim={dim}) of {x}")
    theirs = torch.unique(torch.tensor(x), True, inverse, counts, dim)
    ours = wxb.unique(wxb.tensor(x, dtype=x.dtype), True, inverse, counts, dim)
    theirs = theirs if isinstance(theirs, tuple) else (theirs,)
    ours = ours if isinstance(ours, tuple) else (ours,)
    assert len(ours) == len(theirs), what
    assert_agrees(ours[0], theirs[0], 1, what)
    for a, b in zip(ours[1:], theirs[1:], strict=True):
        assert np.asarray(a).dtype == np.int64, what
        assert np.array_equal(np.asarray(a), b.numpy()), f"{what}: {a}, torch's {b}"


def test_unique_is_torchs_and_refuses_a_backward(seeded):
    for draw in range(DRAWS):
        _one_draw_unique_is_torchs_and_refuses_a_backward(seeded, draw)
    t = wxb.tensor([1.0, 2.0, 2.0], requires_grad=True)
    with pytest.raises(TrainingError, match="unique"):
        wxb.unique(t).sum().backward()


def _one_draw_pad_is_torchs_in_every_mode(seeded, draw):
    d = Draw(seeded.rng)
    mode = str(d.rng.choice(["constant", "reflect", "replicate", "circular"]))
    x = d.values(d.shape(1, 5), False)
    pads = tuple(d.int(-2, 5) for _ in range(2 * d.int(1, 4)))
    if mode != "constant":
        pads = tuple(abs(p) for p in pads)
    value = float(d.rng.normal()) if mode == "constant" and d.flag() else None
    kwargs = {"mode": mode} if value is None else {"mode": mode, "value": value}
    fn = lambda t: F.pad(t, pads, **kwargs)  # noqa: E731
    theirs = lambda t: TF.pad(t, pads, **kwargs)  # noqa: E731
    # (a border element's gradient sums one weight per output copying it: up to the
    # product over the padded dims of 1 + both pads, summed in another order than torch's)
    copies = math.prod(1 + pads[i] + pads[i + 1] for i in range(0, len(pads), 2))
    terms = 1.0 if mode == "constant" else float(copies)
    compare(seeded, f"pad({pads}, {kwargs}) of {x.shape}, draw {draw}", [x], fn, theirs, terms)


def test_pad_is_torchs_in_every_mode(seeded):
    for draw in range(DRAWS):
        _one_draw_pad_is_torchs_in_every_mode(seeded, draw)


def _one_draw_cosine_similarity_and_pairwise_distance_are_torchs(seeded, draw):
    d = Draw(seeded.rng)
    shape = d.shape(1, 3)
    x1 = d.values(shape, False)
    x2 = d.values(shape[d.int(0, len(shape) + 1) :], False)
    if d.int(0, 5) == 0 and x1.ndim:
        x1[..., 0] = 0  # a zero vector: the norm below eps, held at eps
    dim = d.dim(len(shape))
    k = shape[dim] if shape else 1
    fn = lambda a, b: F.cosine_similarity(a, b, dim)  # noqa: E731
    theirs = lambda a, b: TF.cosine_similarity(a, b, dim)  # noqa: E731
    # its gradient sums terms of |x2|/(‖x1‖‖x2‖) and |x1·x2|/‖x1‖³ that may cancel
    norms = [max(float(np.sqrt((a.astype(np.float64) ** 2).sum(dim, keepdims=True)).min()),
                 1e-8) for a in np.broadcast_arrays(x1, x2)]  # fmt: skip
    compare(seeded, f"cosine_similarity(dim={dim}), draw {draw}", [x1, x2], fn, theirs,
            terms=4 * k + 8, floor=4 / min(norms))  # fmt: skip
    p = float(d.rng.choice([1.0, 2.0, 3.0, np.inf]))
    keepdim = d.flag()
    fn = lambda a, b: F.pairwise_distance(a, b, p, 1e-6, keepdim)  # noqa: E731
    theirs = lambda a, b: TF.pairwise_distance(a, b, p, 1e-6, keepdim)  # noqa: E731
    compare(seeded, f"pairwise_distance(p={p}, keepdim={keepdim}), draw {draw}", [x1, x2],
            fn, theirs, terms=4 * x1.size + 8, fd=fn, floor=5.0)  # fmt: skip


def test_cosine_similarity_and_pairwise_distance_are_torchs(seeded):
    for draw in range(DRAWS):
        _one_draw_cosine_similarity_and_pairwise_distance_are_torchs(seeded, draw)


def _one_draw_cdist_is_torchs(seeded, draw):
    d = Draw(seeded.rng)
    batch = d.shape(0, 2)
    m = d.int(1, 5)
    x1 = d.values((*batch, d.int(1, 6), m), False)
    x2 = d.values((*batch[d.int(0, len(batch) + 1) :], d.int(1, 6), m), False)
    if d.flag():
        x2[..., 0, :] = x1.reshape(-1, m)[0]  # a zero distance: gradient 0, as torch's
    p = float(d.rng.choice([1.0, 2.0, 3.0, np.inf]))
    fn = lambda a, b: wxb.cdist(a, b, p)  # noqa: E731
    theirs = lambda a, b: torch.cdist(a, b, p)  # noqa: E731
    compare(seeded, f"cdist(p={p}) of {x1.shape}, {x2.shape}, draw {draw}", [x1, x2], fn,
            theirs, terms=8 * (x1.size + x2.size) + 8, floor=5.0)  # fmt: skip


def test_cdist_is_torchs(seeded):
    for draw in range(DRAWS):
        _one_draw_cdist_is_torchs(seeded, draw)


def test_einsum_takes_ellipses_as_torch(seeded):
    equations = [
        ("...ij,...jk->...ik", [(3, 4), (4, 5)], 2),
        ("...ij,...jk", [(2, 3, 4), (4, 5)], 2),
        ("b...i,bi->b...", [(2, 3, 4), (2, 4)], 0),
        ("...ij->...ji", [(2, 3, 4)], 0),
        ("...ij->ij", [(2, 3, 4)], 0),
        ("i...->...", [(2, 3, 4)], 0),
        ("...,...->...", [(3, 1), (1, 4)], 0),
        ("...i,...i", [(2, 1, 4), (5, 4)], 0),
    ]
    for draw in range(DRAWS // 3):
        d = Draw(seeded.rng)
        for equation, shapes, _ in equations:
            arrays = [d.values(s, False) for s in shapes]
            fn = lambda *ts, e=equation: wxb.einsum(e, *ts)  # noqa: E731
            theirs = lambda *ts, e=equation: torch.einsum(e, *ts)  # noqa: E731
            compare(seeded, f"einsum({equation!r}), draw {draw}", arrays, fn, theirs,
                    terms=8 + sum(a.size for a in arrays), floor=product_scale(*arrays),
                    fd=fn)  # fmt: skip
    compare(seeded, "einsum: ellipses that do not broadcast", [np.ones((2, 3)), np.ones((4, 3))],
            lambda a, b: wxb.einsum("...i,...i", a, b),
            lambda a, b: torch.einsum("...i,...i", a, b))  # fmt: skip


def test_tensor_where_is_torchs(seeded):
    d = Draw(seeded.rng)
    x, y = d.values((3, 4), False), d.values((4,), False)
    mask = seeded.rng.random((3, 4)) < 0.5
    compare(seeded, "x.where(mask, y)", [x, y], lambda a, b: a.where(mask, b),
            lambda a, b: a.where(torch.tensor(mask), b))  # fmt: skip


def test_bad_arguments_are_refused_as_torch_refuses_them(seeded):
    """Each: torch raises ⇔ wxb raises one clear line."""
    d = Draw(seeded.rng)
    x = d.values((3, 4), False)
    v = d.values((5,), False)
    calls = [
        (lambda t: t.roll((1, 2), (0,)), [x]),
        (lambda t: t.median(2), [x]),
        (lambda t: t.kthvalue(5, 1), [x]),
        (lambda t: t.kthvalue(0), [x]),
        (lambda t: t.cummax(-3), [x]),
        (lambda t: t.diagonal(0, 1, -1), [x]),
        (lambda t: t.diag(), [x.reshape(3, 2, 2)]),
        (lambda t: t.trace(), [v]),
        (lambda t: t.quantile(1.5), [x]),
        (lambda t: t.quantile(0.5, interpolation="bogus"), [x]),
        (lambda t: t.quantile(0.5, 2), [x]),
        (lambda t: t.cumprod(2), [x]),
        (lambda t: t.logcumsumexp(-3), [x]),
        (lambda t, m: t.addmm(m, m), [x, x]),
        (lambda t, m: t.baddbmm(m, m), [x, x]),
        (lambda t: (F if isinstance(t, wxb.Tensor) else TF).pad(t, (1,)), [x]),
        (lambda t: (F if isinstance(t, wxb.Tensor) else TF).pad(t, (1, 1, 1, 1, 1, 1)), [x]),
        (lambda t: (F if isinstance(t, wxb.Tensor) else TF).pad(t, (4, 0), mode="reflect"), [x]),
        (lambda t: (F if isinstance(t, wxb.Tensor) else TF).pad(t, (5, 0), mode="circular"), [x]),
        (lambda t: (F if isinstance(t, wxb.Tensor) else TF).pad(t, (1, 1), mode="bogus"), [x]),
        (lambda t: (F if isinstance(t, wxb.Tensor) else TF).pad(t, (1, 1), mode="reflect"), [v]),
        (lambda t: (F if isinstance(t, wxb.Tensor) else TF).pad(t, (-3, -3)), [x]),
        (lambda a, b: (F if isinstance(a, wxb.Tensor) else TF).cosine_similarity(a, b), [x, v]),
        (lambda a, b: (F if isinstance(a, wxb.Tensor) else TF).pairwise_distance(a, b), [x, v]),
        (lambda a, b: (wxb if isinstance(a, wxb.Tensor) else torch).cdist(a, b), [v, x]),
        (lambda a, b: (wxb if isinstance(a, wxb.Tensor) else torch).cdist(a, b), [x, x.T]),
        (
            lambda a, b: (wxb if isinstance(a, wxb.Tensor) else torch).einsum("...i,...i", a, b),
            [x, v],
        ),
    ]
    for k, (fn, arrays) in enumerate(calls):
        assert compare(seeded, f"refusal {k}", arrays, fn, fn) is None, seeded.msg(f"call {k}")


def test_the_functions_are_wxbs_and_torchs_names():
    for name in ("roll", "median", "kthvalue", "cummax", "cummin", "diag", "diagonal", "trace",
                 "lerp", "fmod", "cumprod", "logcumsumexp", "quantile", "nanquantile",
                 "nan_to_num", "addmm", "baddbmm", "unique", "cdist"):  # fmt: skip
        assert hasattr(torch, name) and callable(getattr(wxb, name)), name
        assert name in wxb.functions.__all__, name
    for name in ("pad", "cosine_similarity", "pairwise_distance"):
        assert name in F.__all__ and hasattr(TF, name), name


IN_PLACE_CASES = {
    "cumprod": lambda y: y.cumprod(0),
    "logcumsumexp": lambda y: y.logcumsumexp(0),
    "nan_to_num": lambda y: y.nan_to_num(),
    "median": lambda y: y.median(),
    "median(dim)": lambda y: y.median(0)[0],
    "kthvalue": lambda y: y.kthvalue(2)[0],
    "cummax": lambda y: y.cummax(0)[0],
    "roll": lambda y: y.roll(1),
    "diag": lambda y: y.diag(),
    "quantile": lambda y: y.quantile(0.3),
    "lerp (weight)": lambda y: (y * 2).lerp(y * 3, y),
    "fmod": lambda y: (y * 3).fmod(y),
    "pad": lambda y: (F if isinstance(y, wxb.Tensor) else TF).pad(y, (1, 2)),
}


# torch's backward keeps y though it reads only the indices: wxb's gives the gradient
READS_INDICES_ALONE = {"cummax"}


@pytest.mark.parametrize("name", sorted(IN_PLACE_CASES))
def test_an_input_changed_in_place_before_backward_is_refused_where_torchs_is(seeded, name):
    """y changed in place after the op: torch's backward refuses where it reads y (or the
    result), and goes on where it does not; so does wxb's (its refusal one line)."""
    x = np.sort(seeded.rng.normal(size=5)) + 3.0
    op = IN_PLACE_CASES[name]
    theirs_x = torch.tensor(x, requires_grad=True)
    theirs_y = theirs_x * 1
    theirs = op(theirs_y)
    theirs_y.mul_(2)
    ours_x = wxb.tensor(x, dtype=x.dtype, requires_grad=True)
    ours_y = ours_x * 1
    ours = op(ours_y)
    ours_y.mul_(2)
    if name in READS_INDICES_ALONE:
        theirs_x.grad = None
        op(theirs_x * 1).sum().backward()  # (torch's gradient without the change)
        ours.sum().backward()
        assert_agrees(ours_x.grad, theirs_x.grad, 1, seeded.msg(f"{name}: gradient"))
        return
    try:
        theirs.sum().backward()
    except RuntimeError:
        with pytest.raises(TrainingError) as refused:
            ours.sum().backward()
        assert "\n" not in str(refused.value), seeded.msg(name)
        return
    ours.sum().backward()
    assert_agrees(ours_x.grad, theirs_x.grad, 8, seeded.msg(f"{name}: gradient"))
