"""Tensor paths a user reaches off the well-tested road, checked against PyTorch in float64.

Each test draws its inputs fresh (the ``rng`` fixture prints its seed; replay with
``WXB_TEST_SEED=<seed>``) and builds the same computation in torch, whose autograd is
the independent reference for every value and gradient.
"""

from __future__ import annotations

import numpy as np
import pytest

import wxb
from wxb import ops
from wxb.tensor import Tensor

torch = pytest.importorskip("torch")

RTOL = 1e-10  # float64 on both sides: only the order of summation differs


def close(actual, expected, rtol: float = RTOL) -> None:
    expected = expected.detach().numpy() if isinstance(expected, torch.Tensor) else expected
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=rtol, atol=1e-12)


def pair(array: np.ndarray) -> tuple[Tensor, torch.Tensor]:
    """The same float64 leaf in wxb and in torch, both requiring grad."""
    return Tensor(array, requires_grad=True), torch.tensor(array, requires_grad=True)


def dims(rng, count: int) -> tuple[int, ...]:
    return tuple(int(d) for d in rng.integers(2, 5, size=count))


@pytest.mark.parametrize("method", ["sum", "mean", "var", "std"])
@pytest.mark.parametrize("empty", [(), []])
@pytest.mark.parametrize("keepdim", [False, True])
def test_dim_of_no_dimensions_reduces_every_one_as_torchs(rng, method, empty, keepdim):
    """torch's dim=() reduces every dimension; wxb gave the tensor unreduced (sum, mean)
    or NaN in every place (var, std), without a word."""
    x, tx = pair(rng.normal(size=dims(rng, 3)))
    out = getattr(x, method)(dim=empty, keepdim=keepdim)
    close(out.data, getattr(tx, method)(dim=empty, keepdim=keepdim))
    # the gradient from dim=None: torch's backward of var(dim=(), keepdim=True) divides
    # by n − 1 for n = 1 (inf), though its forward reduced every dimension
    expected = getattr(tx, method)(dim=None, keepdim=keepdim)
    assert out.shape == tuple(expected.shape)
    close(out.data, expected)
    r = rng.normal(size=out.shape)
    (out * r).sum().backward()
    (expected * torch.tensor(r)).sum().backward()
    close(x.grad, tx.grad)


def test_numpys_axis_of_no_dimensions_still_reduces_none(rng):
    """NumPy's spelling keeps NumPy's meaning: np.sum(t, axis=()) reduces nothing."""
    a = rng.normal(size=dims(rng, 2))
    t = Tensor(a)
    np.testing.assert_array_equal(np.sum(t, axis=()).data, np.sum(a, axis=()))
    np.testing.assert_array_equal(t.mean(axis=()).data, a.mean(axis=()))


@pytest.mark.parametrize(
    "operand",
    [
        lambda t: t * None,
        lambda t: None - t,
        lambda t: ops.add(t, [1.0, None, 2.0]),
        lambda t: t ** np.array([2, None, 1], dtype=object),
        lambda t: ops.cat([t, [[0.0, None, 1.0]]]),
        lambda t: Tensor([1.0, None]),
    ],
)
def test_none_among_the_values_is_refused_not_nan(rng, operand):
    """NumPy casts None to NaN: t * None gave NaN everywhere (t ** None gave 1 where t
    is 1); torch refuses None, and so does wxb, in one line."""
    t = Tensor(rng.normal(size=(2, 3)), requires_grad=True)
    with pytest.raises(wxb.errors.DataError, match="None"):
        operand(t)


@pytest.mark.parametrize("write", ["setitem", "iadd", "fill_"])
def test_none_written_into_a_tensor_is_refused_not_nan(rng, write):
    t = Tensor(rng.normal(size=(2, 3)))
    before = t.data.copy()
    with pytest.raises(wxb.errors.DataError, match="None"):
        if write == "setitem":
            t[0, 0] = None
        elif write == "iadd":
            t += None
        else:
            t.fill_(None)
    np.testing.assert_array_equal(t.data, before)


def test_a_model_input_holding_none_is_refused(rng):
    model = wxb.nn.Sequential(wxb.nn.Dense(3, 2))
    X = rng.normal(size=(4, 3)).astype(object)
    X[1, 2] = None
    with pytest.raises(wxb.errors.DataError, match="None"):
        model(X)


@pytest.mark.parametrize(
    ("operand", "held"),
    [
        (lambda t: Tensor(np.array(["1.5", "2"], dtype=object)), "text"),
        (lambda t: t * np.array(["3", 1.0, b"4"], dtype=object), "text"),
        (
            lambda t: wxb.nn.Sequential(wxb.nn.Dense(3, 1))(np.array([["1", 2, 3]], dtype=object)),
            "text",
        ),
        (lambda t: t + np.array([np.datetime64("2020-01-01"), 1.0, 2.0], dtype=object), "dates"),
        (lambda t: Tensor(np.array([np.timedelta64(3, "D"), 1.0], dtype=object)), "dates"),
        (lambda t: t * np.array([np.complex128(1 + 1j), 1.0, 2.0], dtype=object), "complex"),
    ],
)
def test_what_a_cast_would_change_is_refused_when_held_as_objects(rng, operand, held):
    """Text, dates and complex numbers are refused as arrays of their own dtype, but held
    in an object array (a pandas object column) NumPy's cast took them without a word:
    text parsed, a date counted in days, the imaginary part dropped. torch refuses all."""
    t = Tensor(rng.normal(size=(2, 3)), requires_grad=True)
    with pytest.raises(wxb.errors.DataError, match=held):
        operand(t)


def test_numbers_held_as_objects_still_count(rng):
    """A frame of floats beside bools reads as objects: those are numbers, and stay taken."""
    a = rng.normal(size=(3, 2))
    mixed = np.empty((3, 2), dtype=object)
    mixed[:, 0], mixed[:, 1] = list(a[:, 0]), [True, False, True]
    np.testing.assert_array_equal(Tensor(mixed, dtype="float64").data[:, 0], a[:, 0])


@pytest.mark.parametrize("largest", [True, False])
def test_a_nan_max_over_everything_sends_its_gradient_to_the_nans_as_torchs(rng, largest):
    """max() of values holding NaN is NaN, and torch gives its gradient to the NaNs
    (shared evenly); wxb compared A == NaN, found no element, and gave zeros."""
    a = rng.normal(size=dims(rng, 2))
    a.flat[rng.choice(a.size, size=rng.integers(1, 3), replace=False)] = np.nan
    x, tx = pair(a)
    out = x.max() if largest else x.min()
    expected = tx.max() if largest else tx.min()
    assert np.isnan(out.item()) and np.isnan(expected.item())
    g = rng.normal()
    (out * g).backward()
    (expected * g).backward()
    close(x.grad, tx.grad)


VIEWED = {
    "contiguous": lambda t: t,
    "transposed": lambda t: t.transpose(0, 2),
    "a column slice": lambda t: t[:, :, ::2],
    "a row": lambda t: t[1],
    "expanded": lambda t: t[:1].expand(3, *t.shape[1:]),
}


@pytest.mark.parametrize("source", sorted(VIEWED))
def test_view_is_a_view_or_refused_as_torchs(rng, source):
    """t.view(shape) was reshape: on a transpose it copied without a word, where torch's
    view refuses, and a write through the "view" then never reached the tensor."""
    a = rng.normal(size=(2, 3, 4))
    x, tx = Tensor(a.copy()), torch.tensor(a.copy())
    v, tv = VIEWED[source](x), VIEWED[source](tx)
    for shape in [(-1,), (v.shape[0], -1), (*v.shape[:-1], 1, v.shape[-1]), tuple(v.shape)]:
        try:
            expected = tv.view(shape)
        except RuntimeError:
            with pytest.raises(wxb.errors.ShapeError, match="view"):
                v.view(shape)
            continue
        seen = v.view(shape)
        assert seen.shape == tuple(expected.shape)
        if source != "expanded":  # (read-only in wxb, as a broadcast array is)
            value = rng.normal()
            with wxb.no_grad():
                seen[(0,) * seen.ndim] = value
            expected[(0,) * expected.ndim] = value
        close(x.data, tx)


@pytest.mark.parametrize("switch", ["no_grad", "enable_grad"])
def test_a_decorated_generator_runs_each_step_in_the_mode_as_torchs(rng, switch):
    """@no_grad() on a generator switched only the call, which returns before the body
    runs: every yielded result recorded its graph. Each step now runs switched, and
    the caller's code between the steps in the caller's mode, as in torch."""
    w = Tensor(rng.normal(size=3), requires_grad=True)
    tw = torch.tensor(w.data, requires_grad=True)

    def steps(weight, is_enabled):
        sent = None
        for k in range(3):
            sent = yield weight * float(k), is_enabled(), sent
        return "done"

    ours = getattr(wxb, switch)()(lambda: (yield from steps(w, wxb.is_grad_enabled)))
    theirs = getattr(torch, switch)()(lambda: (yield from steps(tw, torch.is_grad_enabled)))
    outer = switch == "no_grad"  # the caller's mode: the other one
    with wxb.set_grad_enabled(outer), torch.set_grad_enabled(outer):
        a, b = ours(), theirs()
        for request in [None, "one", "two"]:
            (out, mode, got), (t_out, t_mode, t_got) = a.send(request), b.send(request)
            assert (out.requires_grad, mode, got) == (t_out.requires_grad, t_mode, t_got)
            assert mode is not outer and wxb.is_grad_enabled() is outer
            assert (w * 1.0).requires_grad is outer  # between the steps: the caller's mode
            close(out.data, t_out)
        with pytest.raises(StopIteration, match="done"):
            a.send(None)
        a, b = ours(), theirs()
        next(a), next(b)
        for g in (a, b):
            with pytest.raises(KeyError):
                g.throw(KeyError("thrown in"))
        assert wxb.is_grad_enabled() is outer


@pytest.mark.parametrize(
    ("grad", "message"),
    [
        (lambda n: [1.0, None] + [2.0] * (n - 2), "None"),
        (lambda n: np.array(["1.5"] * n), "U3"),
        (lambda n: np.full(n, 1 + 1j), "complex"),
        (lambda n: np.array([1.0] * (n - 1) + ["2"], dtype=object), "text"),
    ],
)
def test_a_backward_gradient_is_checked_as_an_operand_is(rng, grad, message):
    """backward(grad) cast the caller's gradient with NumPy alone: None became NaN in the
    gradients, text was parsed and a complex gradient lost its imaginary part."""
    n = int(rng.integers(3, 6))
    w = Tensor(rng.normal(size=n), requires_grad=True)
    y = w * 2.0
    with pytest.raises(wxb.errors.DataError, match=message):
        y.backward(grad(n))
    assert w.grad is None
    g = rng.normal(size=n)
    y.backward(list(g))  # a list of numbers, as before
    close(w.grad, 2.0 * g)


@pytest.mark.parametrize("mode", [False, True])
def test_set_grad_enabled_as_a_decorator_as_torchs(rng, mode):
    """@set_grad_enabled(mode) switched this thread's recording at once, then failed (the
    object was not callable), leaving recording switched for the rest of the thread."""
    w = Tensor(rng.normal(size=3), requires_grad=True)
    tw = torch.tensor(w.data, requires_grad=True)
    with wxb.set_grad_enabled(not mode), torch.set_grad_enabled(not mode):

        @wxb.set_grad_enabled(mode)
        def ours(scale):
            return w * scale

        @torch.set_grad_enabled(mode)
        def theirs(scale):
            return tw * scale

        assert wxb.is_grad_enabled() is (not mode) is torch.is_grad_enabled()
        scale = rng.normal()
        out, expected = ours(scale), theirs(scale)
        assert out.requires_grad is mode is expected.requires_grad
        close(out.data, expected)
        assert wxb.is_grad_enabled() is (not mode)
    assert wxb.is_grad_enabled()


def test_functional_dropout_reads_torchs_training_flag(rng):
    """F.dropout(h, p, self.training), torch's spelling, took the flag as the seed: False
    was seed 0, and units were dropped at evaluation (predict, eval()) without a word."""
    p = float(rng.uniform(0.2, 0.8))

    class Own(wxb.nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = wxb.nn.Dense(4, 6)

        def forward(self, x):
            return wxb.nn.functional.dropout(self.dense(x), p, self.training)

    model = Own()
    X = rng.normal(size=(5, 4))
    model.eval()
    expected = torch.nn.functional.dropout(torch.tensor(model.dense(X).data), p, False)
    close(model(X).data, expected)
    x, tx = pair(rng.normal(size=(3, 4)))
    out = wxb.nn.functional.dropout(x, p, training=False)
    close(out.data, torch.nn.functional.dropout(tx, p, training=False))
    model.train()
    kept = model(X).data / model.dense(X).data  # 0 or 1/(1 − p) in training, as before
    assert np.all(np.isclose(kept, 0) | np.isclose(kept, 1 / (1 - p)))
    with pytest.raises(wxb.errors.ConfigError, match="in place"):
        wxb.nn.functional.dropout(x, p, True, True)


def _keys(rng, shape):
    """Keys that mix integers with index arrays or masks, a slice, None or ... between
    them, where NumPy's order of the result's dimensions is not PyTorch's; and (i, ..., j)
    with ... standing for no dimension. Each as (NumPy's key, torch's key)."""
    a, b, c = shape
    # distinct places (some counted from the end): a write picks each element once
    i = rng.choice(b, size=int(rng.integers(1, b + 1)), replace=False)
    j = rng.choice(c, size=int(rng.integers(1, c + 1)), replace=False)
    i, j = i - b * (rng.random(i.size) < 0.5), j - c * (rng.random(j.size) < 0.5)
    mask = rng.random(c) < 0.5
    n, m = int(rng.integers(-a, a)), int(rng.integers(-b, b))  # on the first, the second
    keys = [
        (n, slice(None), j),
        (n, Ellipsis, j),
        (n, None, i),
        (slice(None), m, None, j),
        (n, slice(None, None, 2), mask),
        (slice(None), i, Ellipsis, j[:1]),  # ... of no dimension: i and j side by side
        (np.array(n), slice(None), list(j)),  # a 0-d index and a list, as torch reads them
    ]
    return [
        (k, tuple(torch.tensor(v) if isinstance(v, np.ndarray | list) else v for v in k))
        for k in keys
    ]


def test_integers_beside_index_arrays_index_as_torchs(rng):
    """x[0, :, idx] for x of (2, 4, 3): NumPy counts the 0 as an index array and, a slice
    between, puts idx's dimension first: shape (3, 4), x[0].T, where torch gives x[0]'s
    columns (4, 3). wxb indexed as NumPy: transposed values (when square, of the right
    shape), transposed gradients and t[0, :, idx] = v written transposed."""
    shape = tuple(int(d) for d in rng.integers(2, 5, size=3))
    for key, t_key in _keys(rng, shape):
        x, tx = pair(rng.normal(size=shape))
        out, expected = x[key], tx[t_key]
        assert out.shape == tuple(expected.shape), key
        close(out.data, expected)
        r = rng.normal(size=out.shape)
        (out * r).sum().backward()
        (expected * torch.tensor(r)).sum().backward()
        close(x.grad, tx.grad)
        value = rng.normal(size=out.shape)
        written, t_written = Tensor(x.data.copy()), tx.detach().clone()
        written[key] = value
        t_written[t_key] = torch.tensor(value)
        close(written.data, t_written)


def test_a_torch_tensor_as_an_index_is_read_as_an_index_array(rng):
    """A torch tensor in a key went to NumPy as it was: not copied for the backward (an
    in-place change of it after the forward moved the gradient to other rows), and
    not counted as an index array beside integers (x[0, :, idx] transposed)."""
    shape = tuple(int(d) for d in rng.integers(2, 5, size=3))
    x, tx = pair(rng.normal(size=shape))
    rows = torch.tensor(rng.integers(0, shape[0], size=4))
    out, expected = x[rows], tx[rows.clone()]
    rows[:] = torch.tensor(rng.integers(0, shape[0], size=4))  # reused for the next batch
    r = rng.normal(size=out.shape)
    (out * r).sum().backward()
    (expected * torch.tensor(r)).sum().backward()
    close(x.grad, tx.grad)
    cols = torch.tensor(rng.choice(shape[2], size=shape[2], replace=False))
    n = int(rng.integers(0, shape[0]))
    close(x[n, :, cols].data, tx[n, :, cols])


@pytest.mark.parametrize(
    ("kind", "op"),
    [
        ("torch", "*"),
        ("torch", "/ on the left"),
        ("torch", "@"),
        ("pandas", "*"),
        ("pandas", "/ on the left"),
    ],
)
def test_another_librarys_array_changed_after_the_forward_leaves_the_gradient(rng, kind, op):
    """A NumPy operand is copied where the graph keeps it; a torch tensor's or a pandas
    Series' values were read through a view of their memory, so an in-place change of
    them after the forward (a reused buffer) changed the gradient without a word."""
    n = int(rng.integers(2, 5))
    shape = (n, n) if op == "@" else (n,)
    c = rng.uniform(0.5, 2.0, size=shape)
    given = torch.tensor(c.copy()) if kind == "torch" else pytest.importorskip("pandas").Series(c)
    x, tx = pair(rng.uniform(0.5, 2.0, size=shape))
    ours = {"*": lambda a, b: a * b, "/ on the left": lambda a, b: ops.div(b, a), "@": ops.matmul}
    theirs = {"*": lambda a, b: a * b, "/ on the left": lambda a, b: b / a, "@": torch.matmul}
    out, expected = ours[op](x, given), theirs[op](tx, torch.tensor(c))
    if kind == "torch":
        given.mul_(10.0)
    else:
        given.iloc[0] = 1e3
    r = rng.normal(size=out.shape)
    (out * r).sum().backward()
    (expected * torch.tensor(r)).sum().backward()
    close(x.grad, tx.grad)
