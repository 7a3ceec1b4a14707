"""A script ported from ``import torch`` to ``import wxb``: torch's functions (wxb.cat,
wxb.zeros, wxb.randn, wxb.exp, wxb.where, …) and tensor methods (permute, split, sort,
topk, masked_fill, comparisons, …) stopped at AttributeErrors, and the accuracy idiom
``(out.argmax(1) == y).float().mean().item()`` at a NumPy mask's missing ``.float()``.
Each is compared with torch on fresh random inputs: values, and gradients through
``.backward()`` for the differentiable ones, in float32 and float64."""

import numpy as np
import pytest

import wxb
from wxb.errors import ConfigError, DataError, ShapeError, TrainingError

torch = pytest.importorskip("torch")

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}


def pair(array):
    """The same values as a wxb leaf and a torch leaf, both requiring grad."""
    return wxb.tensor(array, requires_grad=True, dtype=array.dtype), torch.tensor(
        array, requires_grad=True
    )


def close(ours, theirs, dtype, what):
    ours = ours.data if isinstance(ours, wxb.Tensor) else np.asarray(ours)
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != torch's {theirs.shape}"
    np.testing.assert_allclose(ours, theirs, **TOL[dtype], err_msg=what)


def backward_both(ours, theirs, rng, dtype):
    """A random weighting of the outputs, the same for both, then backward."""
    g = rng.normal(size=ours.shape).astype(dtype)
    (ours * wxb.Tensor(g)).sum().backward()
    (theirs * torch.tensor(g)).sum().backward()


# -- the accuracy idioms --------------------------------------------------------------
def test_accuracy_idioms_give_torchs_numbers(seeded):
    rng = seeded.rng
    n, c = int(rng.integers(5, 40)), int(rng.integers(2, 6))
    logits = rng.normal(size=(n, c)).astype(np.float32)
    y = rng.integers(0, c, size=n)
    out, theirs = wxb.tensor(logits), torch.tensor(logits)
    y_t = torch.tensor(y)
    expected_mean = (theirs.argmax(1) == y_t).float().mean().item()
    expected_sum = (theirs.argmax(1) == y_t).sum().item()
    for labels in (y, wxb.tensor(y)):  # the labels as an array or as a wxb tensor
        correct = out.argmax(1) == labels
        assert correct.float().mean().item() == expected_mean, seeded.msg("float().mean()")
        total = correct.sum().item()
        assert total == expected_sum and isinstance(total, int), seeded.msg("sum().item()")
        assert wxb.sum(correct).item() == expected_sum, seeded.msg("wxb.sum(mask)")
        assert correct.double().dtype == np.float64
        as_x = correct.type_as(out)  # older code's mask.type_as(x)
        assert isinstance(as_x, wxb.Tensor) and as_x.mean().item() == expected_mean
    # per row and per column, torch's dim= (NumPy's sum refused it)
    for dim in (0, 1):
        found = (out > 0).sum(dim=dim, keepdim=bool(dim))
        np.testing.assert_array_equal(found, (theirs > 0).sum(dim=dim, keepdim=bool(dim)).numpy())
    # the MNIST example's pred.eq(target.view_as(pred)).sum().item()
    pred = out.argmax(dim=1, keepdim=True)
    assert pred.eq(wxb.tensor(y).view_as(pred)).sum().item() == expected_sum
    # out.max(1) as torch's namedtuple; its indices take part in the idiom too
    _, pred = out.max(1)
    assert (pred == y).float().sum().item() == expected_sum, seeded.msg("max(1).indices")
    assert (pred.eq(y_t.numpy())).sum().item() == expected_sum


def test_argmax_and_max_along_a_dim_take_the_first_of_tied_values_as_torch(seeded):
    rng = seeded.rng
    values = rng.integers(0, 3, size=(int(rng.integers(3, 9)), 5)).astype(np.float32)  # ties
    ours, theirs = wxb.tensor(values), torch.tensor(values)
    for dim in (0, 1, -1):
        np.testing.assert_array_equal(wxb.argmax(ours, dim), theirs.argmax(dim).numpy())
        np.testing.assert_array_equal(wxb.argmin(ours, dim=dim), theirs.argmin(dim).numpy())
        found, expected = wxb.max(ours, dim), torch.max(theirs, dim)
        np.testing.assert_array_equal(found.indices, expected.indices.numpy())
        np.testing.assert_array_equal(found.values.data, expected.values.numpy())
        found, expected = ours.min(dim, keepdim=True), theirs.min(dim, keepdim=True)
        np.testing.assert_array_equal(found.indices, expected.indices.numpy())
    assert int(wxb.argmax(ours)) == int(theirs.argmax()), seeded.msg("argmax over all")


@pytest.mark.parametrize("dtype", DTYPES)
def test_var_and_std_are_unbiased_by_default_as_torchs(seeded, dtype):
    rng = seeded.rng
    x = rng.normal(size=(4, 6)).astype(dtype)
    for dim in (None, 0, 1):
        ours, theirs = pair(x)
        args = () if dim is None else (dim,)
        close(wxb.var(ours, *args), torch.var(theirs, *args), dtype, seeded.msg(f"var {dim}"))
        found, expected = wxb.std(ours, *args), torch.std(theirs, *args)
        close(found, expected, dtype, seeded.msg(f"std {dim}"))
        backward_both(found, expected, rng, dtype)
        close(ours.grad, theirs.grad, dtype, seeded.msg(f"std grad {dim}"))


# -- constructors ---------------------------------------------------------------------
def test_constructors_give_torchs_shapes_values_and_float32(seeded):
    rng = seeded.rng
    shape = tuple(int(n) for n in rng.integers(1, 5, size=int(rng.integers(1, 4))))
    for name in ("zeros", "ones", "empty"):
        for args in (shape, (shape,), (list(shape),)):
            made = getattr(wxb, name)(*args)
            assert made.shape == shape and made.dtype == wxb.float32, seeded.msg(name)
            if name != "empty":
                close(made, getattr(torch, name)(*args), np.float32, name)
    value = float(rng.normal())
    close(wxb.full(shape, value), torch.full(shape, value), np.float32, "full")
    n, m = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    close(wxb.eye(n), torch.eye(n), np.float32, "eye")
    close(wxb.eye(n, m), torch.eye(n, m), np.float32, "eye(n, m)")
    for dtype in (wxb.float64, np.float64, "float64", torch.float64):
        made = wxb.zeros(2, 3, dtype=dtype, requires_grad=True)
        assert made.dtype == np.float64 and made.requires_grad and made.is_leaf
    assert wxb.float32 == np.float32 and wxb.float64 == np.float64
    like = wxb.tensor(rng.normal(size=shape), dtype="float64")
    for name in ("zeros_like", "ones_like", "randn_like", "rand_like"):
        made = getattr(wxb, name)(like)
        assert made.shape == shape and made.dtype == np.float64, name
    assert float(wxb.full_like(like, 2.5).data.max()) == 2.5


@pytest.mark.parametrize("dtype", DTYPES)
def test_arange_and_linspace_give_torchs_values(seeded, dtype):
    rng = seeded.rng
    torch_dtype = torch.float32 if dtype == np.float32 else torch.float64
    for _ in range(5):
        start = float(rng.uniform(-5, 5))
        step = float(rng.choice([-1, 1]) * rng.uniform(0.05, 1.5))
        end = start + step * float(rng.uniform(0, 30))
        ours = wxb.arange(start, end, step, dtype=dtype)
        theirs = torch.arange(start, end, step, dtype=torch_dtype)
        close(ours, theirs, dtype, seeded.msg(f"arange({start}, {end}, {step})"))
        steps = int(rng.integers(0, 50))
        ours = wxb.linspace(start, end, steps, dtype=dtype)
        close(ours, torch.linspace(start, end, steps, dtype=torch_dtype), dtype, "linspace")
    for steps in (0, 1, 2):  # one step: start alone, as torch's (it gave end)
        expected = torch.linspace(start, end, steps, dtype=torch_dtype)
        close(wxb.linspace(start, end, steps, dtype=dtype), expected, dtype, f"linspace {steps}")
    stop = int(rng.integers(1, 20))
    close(wxb.arange(stop), torch.arange(stop).float(), np.float32, "arange(n)")
    assert wxb.arange(stop).dtype == np.float32


def test_random_draws_follow_manual_seed(seeded):
    seed = int(seeded.rng.integers(2**31))
    for name in ("randn", "rand"):
        wxb.manual_seed(seed)
        first = getattr(wxb, name)(3, 4)
        wxb.manual_seed(seed)
        again = getattr(wxb, name)((3, 4))
        assert first.dtype == np.float32 and first.shape == (3, 4)
        np.testing.assert_array_equal(first.data, again.data, err_msg=seeded.msg(name))
        assert not np.array_equal(getattr(wxb, name)(3, 4).data, first.data)
    draws = wxb.rand(2000).data
    assert 0 <= draws.min() and draws.max() < 1
    assert wxb.randn(5, dtype=wxb.float64, requires_grad=True).requires_grad
    labels = wxb.randint(0, 7, (500,))
    assert labels.dtype == np.int64 and labels.min() >= 0 and labels.max() < 7
    high = int(seeded.rng.integers(1, 9))  # torch's randint(high, size): from 0
    labels = wxb.randint(high, (300,))
    assert labels.shape == (300,) and labels.min() >= 0 and labels.max() < high


def test_from_numpy_wraps_the_array(seeded):
    array = seeded.rng.normal(size=(3, 2))
    t = wxb.from_numpy(array)
    assert t.dtype == np.float64 and np.shares_memory(t.data, array)
    array[0, 0] = 42.0
    assert t.data[0, 0] == 42.0
    assert wxb.is_tensor(t) and not wxb.is_tensor(array) and wxb.numel(t) == 6
    with pytest.raises(TypeError, match="NumPy array"):
        wxb.from_numpy([1.0, 2.0])


# -- functions of tensors, against torch.f with gradients -----------------------------
UNARY = ["exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "log1p", "reciprocal"]
UNARY += ["rsqrt", "sin", "cos", "neg", "square"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", UNARY)
def test_unary_functions_and_methods_match_torch(seeded, name, dtype):
    rng = seeded.rng
    x = rng.normal(size=(3, 4)).astype(dtype)
    if name in ("log", "sqrt", "log1p", "rsqrt", "reciprocal"):
        x = np.abs(x) + dtype(0.1)
    for call in ("function", "method"):
        ours, theirs = pair(x)
        if call == "function":
            found, expected = getattr(wxb, name)(ours), getattr(torch, name)(theirs)
        else:
            found, expected = getattr(ours, name)(), getattr(theirs, name)()
        assert found.dtype == dtype
        close(found, expected, dtype, seeded.msg(f"{call} {name}"))
        backward_both(found, expected, rng, dtype)
        close(ours.grad, theirs.grad, dtype, seeded.msg(f"{call} {name} grad"))


@pytest.mark.parametrize("name", ["round", "floor", "ceil", "trunc"])
def test_steps_match_torch_with_gradient_zero(seeded, name):
    rng = seeded.rng
    x = (rng.integers(-8, 8, size=7) / 2 + rng.choice([0, 0.3], size=7)).astype(np.float32)
    ours, theirs = pair(x)
    found, expected = getattr(ours, name)(), getattr(torch, name)(theirs)
    close(found, expected, np.float32, seeded.msg(name))  # halves to even, as torch's
    found.sum().backward()
    assert np.all(ours.grad == 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions_softmax_and_clamp_as_functions(seeded, dtype):
    rng = seeded.rng
    x = rng.normal(size=(3, 4, 5)).astype(dtype)
    for dim in (0, 1, -1):
        for name, kwargs in [
            ("sum", dict(dim=dim)),
            ("mean", dict(dim=dim, keepdim=True)),
            ("softmax", dict(dim=dim)),
            ("log_softmax", dict(dim=dim)),
            ("cumsum", dict(dim=dim)),
        ]:
            ours, theirs = pair(x)
            found, expected = (
                getattr(wxb, name)(ours, **kwargs),
                getattr(torch, name)(theirs, **kwargs),
            )
            close(found, expected, dtype, seeded.msg(f"{name} {kwargs}"))
            backward_both(found, expected, rng, dtype)
            close(ours.grad, theirs.grad, dtype, seeded.msg(f"{name} {kwargs} grad"))
    ours, theirs = pair(x)
    found = wxb.clamp(ours, min=-0.5, max=0.7)
    expected = torch.clamp(theirs, min=-0.5, max=0.7)
    close(found, expected, dtype, "clamp")
    backward_both(found, expected, rng, dtype)
    close(ours.grad, theirs.grad, dtype, "clamp grad")
    close(wxb.sum(wxb.tensor(x, dtype=dtype)), torch.sum(torch.tensor(x)), dtype, "sum all")
    close(
        wxb.flatten(wxb.tensor(x, dtype=dtype), 1),
        torch.flatten(torch.tensor(x), 1),
        dtype,
        "flatten",
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_cat_stack_matmul_and_where_with_gradients(seeded, dtype):
    rng = seeded.rng
    a, b = rng.normal(size=(3, 4)).astype(dtype), rng.normal(size=(3, 4)).astype(dtype)
    for dim in (0, 1, -1, -2):
        for name in ("cat", "stack"):
            (oa, ta), (ob, tb) = pair(a), pair(b)
            found, expected = (
                getattr(wxb, name)([oa, ob], dim=dim),
                getattr(torch, name)([ta, tb], dim=dim),
            )
            close(found, expected, dtype, seeded.msg(f"{name} dim={dim}"))
            backward_both(found, expected, rng, dtype)
            close(oa.grad, ta.grad, dtype, f"{name} grad a")
            close(ob.grad, tb.grad, dtype, f"{name} grad b")
    w = rng.normal(size=(4, 2)).astype(dtype)
    for name in ("matmul", "mm"):
        (oa, ta), (ow, tw) = pair(a), pair(w)
        found, expected = getattr(wxb, name)(oa, ow), getattr(torch, name)(ta, tw)
        close(found, expected, dtype, name)
        backward_both(found, expected, rng, dtype)
        close(ow.grad, tw.grad, dtype, f"{name} grad")
    # where, broadcast: a row of b against the whole of a
    (oa, ta), (orow, trow) = pair(a), pair(b[:1])
    found = wxb.where(oa > 0, oa, orow)
    expected = torch.where(ta > 0, ta, trow)
    close(found, expected, dtype, seeded.msg("where"))
    backward_both(found, expected, rng, dtype)
    close(oa.grad, ta.grad, dtype, "where grad input")
    close(orow.grad, trow.grad, dtype, "where grad other")
    rows, cols = wxb.where(wxb.tensor(a) > 0)
    expected_rows, expected_cols = torch.where(torch.tensor(a) > 0)
    np.testing.assert_array_equal(rows, expected_rows.numpy())
    np.testing.assert_array_equal(cols, expected_cols.numpy())


# -- tensor methods -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_permute_split_chunk_and_index_select(seeded, dtype):
    rng = seeded.rng
    x = rng.normal(size=(4, 5, 3)).astype(dtype)
    order = tuple(int(i) for i in rng.permutation(3))
    ours, theirs = pair(x)
    found, expected = ours.permute(*order), theirs.permute(*order)
    close(found, expected, dtype, seeded.msg(f"permute {order}"))
    backward_both(found, expected, rng, dtype)
    close(ours.grad, theirs.grad, dtype, "permute grad")
    close(wxb.permute(wxb.tensor(x), order), torch.permute(torch.tensor(x), order), dtype, "fn")
    dim = int(rng.integers(-3, 3))
    size = x.shape[dim]
    for how in (int(rng.integers(1, size + 2)), "sections", "chunk"):
        ours, theirs = pair(x)
        if how == "sections":
            cut = sorted(rng.integers(0, size + 1, size=2))
            sections = [int(cut[0]), int(cut[1] - cut[0]), int(size - cut[1])]
            found, expected = ours.split(sections, dim), theirs.split(sections, dim)
        elif how == "chunk":
            chunks = int(rng.integers(1, size + 2))
            found, expected = ours.chunk(chunks, dim), theirs.chunk(chunks, dim)
        else:
            found, expected = wxb.split(ours, how, dim=dim), torch.split(theirs, how, dim=dim)
        assert len(found) == len(expected), seeded.msg(f"split {how} along {dim}")
        for f, e in zip(found, expected, strict=True):
            close(f, e, dtype, seeded.msg(f"split {how} along {dim}"))
        weights = [rng.normal(size=f.shape).astype(dtype) for f in found]
        sum((f * wxb.Tensor(w)).sum() for f, w in zip(found, weights, strict=True)).backward()
        sum((e * torch.tensor(w)).sum() for e, w in zip(expected, weights, strict=True)).backward()
        close(ours.grad, theirs.grad, dtype, seeded.msg(f"split {how} grad"))
    index = rng.integers(0, x.shape[1], size=7)  # repeats: their gradients add up
    ours, theirs = pair(x)
    found, expected = ours.index_select(1, index), theirs.index_select(1, torch.tensor(index))
    close(found, expected, dtype, seeded.msg("index_select"))
    backward_both(found, expected, rng, dtype)
    close(ours.grad, theirs.grad, dtype, seeded.msg("index_select grad"))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sort_argsort_and_topk_as_torch(seeded, dtype):
    rng = seeded.rng
    x = rng.integers(-4, 4, size=(5, 6)).astype(dtype)  # ties: in their first order (stable)
    x[rng.random(size=x.shape) < 0.1] = np.nan  # NaN sorts above every number, as torch's
    for dim in (0, 1, -1):
        for descending in (False, True):
            ours, theirs = pair(x)
            found = ours.sort(dim=dim, descending=descending)
            expected = torch.sort(theirs, dim=dim, descending=descending, stable=True)
            what = seeded.msg(f"sort dim={dim} descending={descending}")
            np.testing.assert_array_equal(found.values.data, expected.values.detach().numpy(), what)
            np.testing.assert_array_equal(found.indices, expected.indices.numpy(), what)
            np.testing.assert_array_equal(
                wxb.argsort(ours, dim=dim, descending=descending), expected.indices.numpy(), what
            )
            backward_both(found.values, expected.values, rng, dtype)
            close(ours.grad, theirs.grad, dtype, what + " grad")
    x = rng.normal(size=(4, 7)).astype(dtype)  # distinct: torch's topk order of ties is its own
    k = int(rng.integers(0, 8))
    for largest in (True, False):
        ours, theirs = pair(x)
        found, expected = (
            ours.topk(k, dim=1, largest=largest),
            theirs.topk(k, dim=1, largest=largest),
        )
        close(found.values, expected.values, dtype, seeded.msg(f"topk {k} {largest}"))
        np.testing.assert_array_equal(found.indices, expected.indices.numpy())
        backward_both(found.values, expected.values, rng, dtype)
        close(ours.grad, theirs.grad, dtype, "topk grad")


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_fill_minimum_maximum_and_modulo(seeded, dtype):
    rng = seeded.rng
    x, y = rng.normal(size=(3, 4)).astype(dtype), rng.normal(size=(3, 4)).astype(dtype)
    mask = rng.random(size=(1, 4)) < 0.5  # broadcast over the rows
    ours, theirs = pair(x)
    found, expected = ours.masked_fill(mask, -1e4), theirs.masked_fill(torch.tensor(mask), -1e4)
    close(found, expected, dtype, seeded.msg("masked_fill"))
    backward_both(found, expected, rng, dtype)
    close(ours.grad, theirs.grad, dtype, "masked_fill grad")
    ours, theirs = pair(x)
    found = ours.masked_fill(ours > 0.3, 0.0)  # a comparison of its own as the mask
    expected = theirs.masked_fill(theirs > 0.3, 0.0)
    close(found, expected, dtype, "masked_fill by comparison")
    for name in ("minimum", "maximum", "remainder"):
        (ox, tx), (oy, ty) = pair(x * 3), pair(y)
        found, expected = getattr(ox, name)(oy), getattr(tx, name)(ty)
        close(found, expected, dtype, seeded.msg(name))
        backward_both(found, expected, rng, dtype)
        close(ox.grad, tx.grad, dtype, f"{name} grad x")
        close(oy.grad, ty.grad, dtype, f"{name} grad y")
    ours, theirs = pair(x * 5)
    close(ours % 1.5, theirs % 1.5, dtype, "%")  # the divisor's sign, as Python's
    close(7.0 % (ours + 10), 7.0 % (theirs + 10), dtype, "rmod")
    close(ours // 2, theirs // 2, dtype, "//")
    close(-3 // (ours + 10), -3 // (theirs + 10), dtype, "rfloordiv")
    with pytest.raises(TrainingError, match="floor_divide"):  # torch: not implemented either
        (ours // 2).sum().backward()


def test_comparisons_and_truth_methods_as_torch(seeded):
    rng = seeded.rng
    x = rng.integers(-2, 3, size=(4, 5)).astype(np.float32)
    y = rng.integers(-2, 3, size=(4, 5)).astype(np.float32)
    ours, theirs = wxb.tensor(x), torch.tensor(x)
    for name in ("eq", "ne", "gt", "ge", "lt", "le"):
        for other in (y, 0.0):
            found = getattr(ours, name)(wxb.tensor(y) if other is y else other)
            expected = getattr(theirs, name)(torch.tensor(y) if other is y else other)
            np.testing.assert_array_equal(found, expected.numpy(), seeded.msg(name))
            assert found.float().dtype == np.float32 and found.long().dtype == np.int64
            np.testing.assert_array_equal(getattr(wxb, name)(ours, other), found)
    x[0, 0] = np.nan
    ours, theirs = wxb.tensor(x), torch.tensor(x)
    np.testing.assert_array_equal(ours.isnan(), theirs.isnan().numpy())
    assert bool(wxb.isnan(ours).any()) and wxb.isnan(ours).any().item() is True
    for dim in (None, 0, 1):
        args = () if dim is None else (dim,)
        b, tb = ours.bool(), theirs.bool()
        np.testing.assert_array_equal(b, tb.numpy())
        for name in ("all", "any"):
            found = getattr(ours > 0, name)(*args)
            np.testing.assert_array_equal(found, getattr(theirs > 0, name)(*args).numpy())
            np.testing.assert_array_equal(getattr(wxb.tensor(x), name)(*args),
                                          getattr(theirs, name)(*args).numpy())  # fmt: skip
    a = wxb.tensor(y)
    assert wxb.equal(a, wxb.tensor(y.copy())) and not wxb.equal(a, a[:2])
    assert wxb.allclose(a, a + 1e-9) and not wxb.allclose(a, a + 1e-3)
    assert wxb.allclose(a, a + 1e-3, atol=1e-2)


# -- refused clearly ------------------------------------------------------------------
def test_dims_out_of_range_and_wrong_types_are_refused_by_name(rng):
    x = wxb.tensor(rng.normal(size=(2, 3)))
    for call in (
        lambda: wxb.sum(x, dim=2),
        lambda: wxb.softmax(x, dim=-3),
        lambda: wxb.argmax(x, dim=5),
        lambda: wxb.max(x, 2),
        lambda: x.permute(0, 2),
        lambda: x.split(1, dim=3),
        lambda: x.sort(dim=2),
        lambda: x.topk(1, dim=2),
        lambda: x.index_select(2, np.array([0])),
        lambda: x.all(dim=2),
    ):
        with pytest.raises(ShapeError, match="out of range"):
            call()
    for call, error in [
        (lambda: wxb.cat([x, x], dim=2), ShapeError),
        (lambda: x.permute(0, 0), ShapeError),
        (lambda: x.topk(4, dim=1), ShapeError),
        (lambda: x.split([1, 1], dim=1), ShapeError),
        (lambda: x.masked_fill(np.ones((2, 3)), 0.0), DataError),  # a float mask
        (lambda: wxb.where(x, x, x), DataError),
        (lambda: wxb.zeros(2.5), ConfigError),
        (lambda: wxb.zeros(2, dtype="int64"), ConfigError),
        (lambda: wxb.randn(2, generator=42), ConfigError),
        (lambda: wxb.arange(0, 5, 0), ConfigError),
        (lambda: wxb.exp("a"), TypeError),
        (lambda: x.chunk(0), ConfigError),
        (lambda: x.index_select(1, np.array([0.5])), DataError),
    ]:
        with pytest.raises(error):
            call()


@pytest.mark.parametrize("dtype", DTYPES)
def test_batched_matmul_as_torchs(seeded, dtype):
    """Attention's Q·Kᵀ of (B, T, d) tensors, a batch against one matrix, broadcast batch
    dims and vectors: torch's @ runs them; wxb's refused anything beyond 2-d."""
    rng = seeded.rng
    b, t, d, p = (int(n) for n in rng.integers(1, 5, size=4))
    for shape_a, shape_b in [
        ((b, t, d), (b, d, t)),
        ((b, t, d), (d, p)),
        ((d, p), (b, p, t)),
        ((2, 1, t, d), (1, b, d, p)),
        ((b, t, d), (d,)),
        ((d,), (b, d, p)),
    ]:
        (oa, ta), (ob, tb) = (
            pair(rng.normal(size=shape_a).astype(dtype)),
            pair(rng.normal(size=shape_b).astype(dtype)),
        )
        found, expected = wxb.matmul(oa, ob), torch.matmul(ta, tb)
        close(found, expected, dtype, seeded.msg(f"{shape_a} @ {shape_b}"))
        backward_both(found, expected, rng, dtype)
        close(oa.grad, ta.grad, dtype, seeded.msg(f"{shape_a} @ {shape_b} grad A"))
        close(ob.grad, tb.grad, dtype, seeded.msg(f"{shape_a} @ {shape_b} grad B"))
        close(oa @ ob, ta @ tb, dtype, "@")
    with pytest.raises(ShapeError, match="matmul"):
        wxb.matmul(wxb.zeros(2, 3, 4), wxb.zeros(2, 5, 4))


def test_a_scripts_device_line_picks_the_cpu(rng):
    """device = torch.device("cuda" if torch.cuda.is_available() else "cpu"), the first
    lines of most PyTorch scripts, stopped at wxb.cuda / wxb.device."""
    device = wxb.device("cuda" if wxb.cuda.is_available() else "cpu")
    assert str(device) == "cpu" and device == "cpu" and wxb.cuda.device_count() == 0
    model = wxb.nn.Sequential(wxb.nn.Dense(3, 2)).to(device)
    x = wxb.tensor(rng.normal(size=(4, 3)), dtype=wxb.float32).to(device)
    np.testing.assert_allclose(model(x).data, model(x.data).data)
    with pytest.raises(ConfigError, match="cuda"):
        wxb.device("cuda:0")


@pytest.mark.parametrize("dtype", DTYPES)
def test_causal_self_attention_written_as_in_torch(seeded, dtype):
    """A causal attention head as PyTorch tutorials write it (tril, masked_fill with -inf,
    softmax(-1), batched @, transpose(-2, -1)), with torch's values and gradients."""
    rng = seeded.rng
    b, t, d = (int(n) for n in rng.integers(1, 6, size=3))
    x = rng.normal(size=(b, t, d)).astype(dtype)
    weights = [(rng.normal(size=(d, d)) / np.sqrt(d)).astype(dtype) for _ in range(3)]

    def head(lib, x, wq, wk, wv):
        q, k, v = x @ wq, x @ wk, x @ wv
        scores = q @ k.transpose(-2, -1) / float(np.sqrt(d))
        causal = lib.tril(lib.ones(t, t, dtype=x.dtype))
        scores = scores.masked_fill(causal == 0, float("-inf"))
        return lib.softmax(scores, dim=-1) @ v

    ours = [pair(a) for a in (x, *weights)]
    found = head(wxb, *(o for o, _ in ours))
    expected = head(torch, *(t_ for _, t_ in ours))
    close(found, expected, dtype, seeded.msg("attention"))
    backward_both(found, expected, rng, dtype)
    for i, (o, t_) in enumerate(ours):
        close(o.grad, t_.grad, dtype, seeded.msg(f"attention grad {i}"))


@pytest.mark.parametrize("dtype", DTYPES)
def test_tril_triu_bmm_outer_and_randperm(seeded, dtype):
    rng = seeded.rng
    x = rng.normal(size=(2, 4, 5)).astype(dtype)
    diagonal = int(rng.integers(-4, 5))
    for name in ("tril", "triu"):
        ours, theirs = pair(x)
        found, expected = getattr(wxb, name)(ours, diagonal), getattr(torch, name)(theirs, diagonal)
        close(found, expected, dtype, seeded.msg(f"{name}({diagonal})"))
        backward_both(found, expected, rng, dtype)
        close(ours.grad, theirs.grad, dtype, f"{name} grad")
    (oa, ta), (ob, tb) = pair(x), pair(rng.normal(size=(2, 5, 3)).astype(dtype))
    found, expected = wxb.bmm(oa, ob), torch.bmm(ta, tb)
    close(found, expected, dtype, "bmm")
    backward_both(found, expected, rng, dtype)
    close(ob.grad, tb.grad, dtype, "bmm grad")
    (ou, tu), (ov, tv) = pair(x[0, 0]), pair(x[1, 1, :3])
    found, expected = ou.outer(ov), torch.outer(tu, tv)
    close(found, expected, dtype, "outer")
    backward_both(found, expected, rng, dtype)
    close(ou.grad, tu.grad, dtype, "outer grad")
    n = int(rng.integers(0, 30))
    seed = int(rng.integers(2**31))
    wxb.manual_seed(seed)
    order = wxb.randperm(n)
    assert order.dtype == np.int64 and sorted(order.tolist()) == list(range(n))
    wxb.manual_seed(seed)
    np.testing.assert_array_equal(wxb.randperm(n), order)
    with pytest.raises(ShapeError, match="bmm"):
        wxb.bmm(oa, ob[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_mean_of_a_mask_is_torchs_exactly(seeded, dtype):
    """mean was Σ·(1/n), rounded twice: 5 right of 12 gave 0.41666669 in float32 where
    torch's Σ/n gives 0.41666666 (an accuracy printed in full, or compared, differed)."""
    rng = seeded.rng
    for n in rng.integers(1, 500, size=40):
        hits = rng.random(int(n)) < rng.random()
        found = wxb.tensor(hits, dtype=dtype).mean().item()
        expected = torch.tensor(hits.astype(dtype)).mean().item()
        assert found == expected, seeded.msg(f"mean of {hits.sum()} of {n}")
    x = rng.normal(size=(int(rng.integers(1, 50)), 3)).astype(dtype)
    ours, theirs = pair(x)
    found, expected = ours.mean(0), theirs.mean(0)
    close(found, expected, dtype, seeded.msg("mean(0)"))
    backward_both(found, expected, rng, dtype)
    close(ours.grad, theirs.grad, dtype, seeded.msg("mean(0) grad"))


def test_chunk_and_split_of_an_empty_dim_as_torchs(seeded):
    rows = int(seeded.rng.integers(1, 5))
    chunks = int(seeded.rng.integers(2, 6))  # (one chunk is one piece either way)
    empty = np.zeros((0, rows), np.float32)
    for dim in (0, 1):
        shape = (0, rows)
        found = wxb.tensor(empty).chunk(chunks, dim)
        expected = torch.tensor(empty).chunk(chunks, dim)
        assert [f.shape for f in found] == [tuple(e.shape) for e in expected], seeded.msg(
            f"chunk({chunks}, {dim}) of {shape}"
        )
        found, expected = wxb.tensor(empty).split(2, dim), torch.tensor(empty).split(2, dim)
        assert [f.shape for f in found] == [tuple(e.shape) for e in expected]


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_fill_with_a_learned_value_passes_its_gradient(seeded, dtype):
    """masked_fill(mask, v) with a 0-d v that requires grad: torch gives v the sum of the
    gradient over the filled places."""
    rng = seeded.rng
    x = rng.normal(size=(3, 5)).astype(dtype)
    mask = rng.random(size=(3, 5)) < 0.4
    (ox, tx), (ov, tv) = pair(x), pair(np.asarray(rng.normal(), dtype=dtype))
    found = ox.masked_fill(mask, ov)
    expected = tx.masked_fill(torch.tensor(mask), tv)
    close(found, expected, dtype, seeded.msg("masked_fill(v)"))
    backward_both(found, expected, rng, dtype)
    close(ox.grad, tx.grad, dtype, seeded.msg("masked_fill(v) grad x"))
    close(ov.grad, tv.grad, dtype, seeded.msg("masked_fill(v) grad v"))


@pytest.mark.parametrize("dtype", DTYPES)
def test_gather_logsumexp_amax_flip_and_logs_as_torchs(seeded, dtype):
    """logp.gather(1, y.unsqueeze(1)), logsumexp, amax/amin (ties share the gradient),
    flip, expm1, log2, log10, type_as, mT, unbind: torch's values and gradients."""
    rng = seeded.rng
    x = rng.integers(-3, 3, size=(4, 5)).astype(dtype) + rng.choice([0, 0.5], size=(4, 5))
    x = x.astype(dtype)
    index = rng.integers(0, 5, size=(4, int(rng.integers(1, 7))))  # repeats: gradients add
    cases = [
        ("gather", lambda t, i: t.gather(1, i), True),
        ("gather rows", lambda t, i: t.gather(0, i[:3, :5].T % 4), True),
        ("logsumexp", lambda t, i: t.logsumexp(1), False),
        ("logsumexp keep", lambda t, i: t.logsumexp((0, 1), keepdim=True), False),
        ("amax", lambda t, i: t.amax(1), False),
        ("amin keep", lambda t, i: t.amin(0, keepdim=True), False),
        ("amax all", lambda t, i: t.amax(), False),
        ("flip", lambda t, i: t.flip(0, 1), False),
        ("expm1", lambda t, i: t.expm1(), False),
        ("log2", lambda t, i: (t.abs() + 0.5).log2(), False),
        ("log10", lambda t, i: (t.abs() + 0.5).log10(), False),
        ("mT", lambda t, i: t.mT, False),
        ("clamp_min", lambda t, i: t.clamp_min(0.2), False),
    ]
    for name, f, takes_index in cases:
        ours, theirs = pair(x)
        i_ours, i_theirs = (index, torch.tensor(index)) if takes_index else (None, None)
        found, expected = f(ours, i_ours), f(theirs, i_theirs)
        close(found, expected, dtype, seeded.msg(name))
        backward_both(found, expected, rng, dtype)
        close(ours.grad, theirs.grad, dtype, seeded.msg(f"{name} grad"))
    ours, theirs = pair(x)
    pieces, expected = ours.unbind(1), theirs.unbind(1)
    assert len(pieces) == len(expected)
    for p, e in zip(pieces, expected, strict=True):
        close(p, e, dtype, "unbind")
    other = wxb.zeros(1, dtype=np.float64 if dtype == np.float32 else np.float32)
    assert ours.type_as(other).dtype == other.dtype
    assert np.array_equal(wxb.isinf(wxb.tensor([1.0, np.inf])), [False, True])
    found = wxb.nonzero(wxb.tensor(x))
    np.testing.assert_array_equal(found, torch.nonzero(torch.tensor(x)).numpy())
    for a, b in zip(
        wxb.tensor(x).nonzero(as_tuple=True), torch.tensor(x).nonzero(as_tuple=True), strict=True
    ):
        np.testing.assert_array_equal(a, b.numpy())
    np.testing.assert_array_equal(
        wxb.logical_and(wxb.tensor(x) > 0, wxb.tensor(x) < 2),
        torch.logical_and(torch.tensor(x) > 0, torch.tensor(x) < 2).numpy(),
    )
    rows = np.full((2, 3), -np.inf, dtype=dtype)
    rows[1] = x[0, :3]
    found = wxb.logsumexp(wxb.tensor(rows), 1)
    close(found, torch.logsumexp(torch.tensor(rows), 1), dtype, "logsumexp of -inf")
    with pytest.raises(ShapeError, match="out of range"):
        wxb.gather(wxb.tensor(x), 2, index)
    with pytest.raises(ShapeError, match="out of range"):
        wxb.gather(wxb.tensor(x), 1, index + 5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_einsum_as_torchs_with_gradients(seeded, dtype):
    rng = seeded.rng
    b, i, j, k = (int(n) for n in rng.integers(1, 5, size=4))
    for equation, shapes in [
        ("bij,bjk->bik", [(b, i, j), (b, j, k)]),  # batched product
        ("ij,kj->ik", [(i, j), (k, j)]),  # A·Bᵀ
        ("bi,bi->b", [(b, i), (b, i)]),  # row-wise dot
        ("ij->j", [(i, j)]),  # a sum over rows
        ("i,j->ij", [(i,), (j,)]),  # outer
        ("ij,jk", [(i, j), (j, k)]),  # implicit output: ik
        ("bij,jk->b", [(b, i, j), (j, k)]),  # k summed away, only B had it
        ("ij->ji", [(i, j)]),
    ]:
        pairs = [pair(rng.normal(size=s).astype(dtype)) for s in shapes]
        found = wxb.einsum(equation, *(o for o, _ in pairs))
        expected = torch.einsum(equation, *(t for _, t in pairs))
        close(found, expected, dtype, seeded.msg(equation))
        backward_both(found, expected, rng, dtype)
        for n, (o, t) in enumerate(pairs):
            close(o.grad, t.grad, dtype, seeded.msg(f"{equation} grad {n}"))
    with pytest.raises(ConfigError, match="repeated within the output"):  # (torch's too)
        wxb.einsum("i->ii", wxb.zeros(2))
    with pytest.raises(ShapeError, match="einsum"):
        wxb.einsum("ij,jk->ik", wxb.zeros(2, 3), wxb.zeros(4, 2))


@pytest.mark.parametrize("dtype", DTYPES)
def test_in_place_forms_narrow_movedim_and_stacks(seeded, dtype):
    rng = seeded.rng
    x = rng.normal(size=(3, 4, 2)).astype(dtype)
    mask = rng.random(size=(3, 4, 2)) < 0.5
    for name, args in [
        ("masked_fill_", (mask, 0.25)),
        ("relu_", ()),
        ("sigmoid_", ()),
        ("tanh_", ()),
        ("exp_", ()),
        ("abs_", ()),
        ("neg_", ()),
        ("clamp_min_", (0.1,)),
        ("clamp_max_", (-0.1,)),
        ("pow_", (2,)),
    ]:
        ours, theirs = wxb.tensor(x.copy()), torch.tensor(x.copy())
        targs = tuple(torch.tensor(a) if isinstance(a, np.ndarray) else a for a in args)
        assert getattr(ours, name)(*args) is ours
        getattr(theirs, name)(*targs)
        close(ours, theirs, dtype, seeded.msg(name))
    w, torch_w = wxb.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    # in a recorded graph, on a computed tensor: recorded, as torch's
    backward_both((w * 2).relu_(), (torch_w * 2).relu_(), rng, dtype)
    close(w.grad, torch_w.grad, dtype, seeded.msg("relu_ recorded"))
    cases = [
        ("narrow", lambda t: t.narrow(1, 1, 2), lambda t: t.narrow(1, 1, 2)),
        ("narrow neg", lambda t: t.narrow(-1, -1, 1), lambda t: t.narrow(-1, -1, 1)),
        ("movedim", lambda t: t.movedim(0, -1), lambda t: t.movedim(0, -1)),
        ("movedim 2", lambda t: t.movedim((0, 2), (2, 0)), lambda t: t.movedim((0, 2), (2, 0))),
        ("swapaxes", lambda t: wxb.swapaxes(t, 0, 2), lambda t: torch.swapaxes(t, 0, 2)),
        ("hstack", lambda t: wxb.hstack([t, t[:, :1]]), lambda t: torch.hstack([t, t[:, :1]])),
        ("vstack", lambda t: wxb.vstack([t[0], t[1]]), lambda t: torch.vstack([t[0], t[1]])),
        (
            "vstack 1d",
            lambda t: wxb.vstack([t[0, 0], t[1, 1]]),
            lambda t: torch.vstack([t[0, 0], t[1, 1]]),
        ),
        (
            "hstack 1d",
            lambda t: wxb.hstack([t[0, 0], t[1, 1]]),
            lambda t: torch.hstack([t[0, 0], t[1, 1]]),
        ),
        (
            "broadcast_to",
            lambda t: wxb.broadcast_to(t[:1], (5, 4, 2)),
            lambda t: torch.broadcast_to(t[:1], (5, 4, 2)),
        ),
    ]
    for name, f, g in cases:
        ours, theirs = pair(x)
        found, expected = f(ours), g(theirs)
        close(found, expected, dtype, seeded.msg(name))
        backward_both(found, expected, rng, dtype)
        close(ours.grad, theirs.grad, dtype, seeded.msg(f"{name} grad"))
    with pytest.raises(ShapeError, match="narrow"):
        wxb.tensor(x).narrow(1, 3, 2)


def _fd_cases(rng):
    """The new primitives as (function of float64 tensors, input arrays) for the central
    finite-difference check of test_gradcheck (values kept off kinks and ties)."""
    x = rng.normal(size=(3, 4))
    positive = np.abs(x) + 0.5
    mask = rng.random(size=(3, 4)) < 0.5
    index = rng.integers(0, 4, size=(3, 6))
    return {
        "permute": (lambda t: t.permute(2, 0, 1), [rng.normal(size=(2, 3, 4))]),
        "where": (lambda a, b: wxb.where(mask, a, b), [x, rng.normal(size=(1, 4))]),
        "masked_fill": (lambda t: t.masked_fill(mask, 2.0), [x]),
        "masked_fill value": (lambda t, v: t.masked_fill(mask, v), [x, np.array(0.3)]),
        "log1p": (lambda t: t.log1p(), [positive]),
        "reciprocal": (lambda t: t.reciprocal(), [positive]),
        "rsqrt": (lambda t: t.rsqrt(), [positive]),
        "remainder": (lambda a, b: a % b, [x * 3 + 0.01, positive]),
        "tril": (lambda t: t.tril(-1), [x]),
        "gather": (lambda t: t.gather(1, index), [x]),
        "sort": (lambda t: t.sort(1, descending=True).values, [x]),
        "topk": (lambda t: t.topk(2, 0).values, [x]),
        "index_select": (lambda t: t.index_select(1, index[0]), [x]),
        "logsumexp": (lambda t: t.logsumexp(0), [x]),
        "amax": (lambda t: t.amax(1), [x]),
        "flip": (lambda t: t.flip(0), [x]),
        "expm1": (lambda t: t.expm1(), [x]),
        "log2": (lambda t: t.log2(), [positive]),
        "log10": (lambda t: t.log10(), [positive]),
        "batched matmul": (
            lambda a, b: a @ b,
            [rng.normal(size=(2, 3, 4)), rng.normal(size=(4, 2))],
        ),
        "einsum": (lambda a, b: wxb.einsum("bij,jk->bk", a, b), [rng.normal(size=(2, 3, 4)), x.T]),
        "mean": (lambda t: t.mean(1), [x]),
    }


def test_new_primitives_pass_the_finite_difference_check(seeded):
    from test_gradcheck import check_op

    for name, (fn, arrays) in _fd_cases(seeded.rng).items():
        check_op(seeded, name, fn, arrays)


@pytest.mark.parametrize(
    ("name", "says"), [("long", "int64 NumPy array"), ("set_default_dtype", "float64")]
)
def test_torch_names_wxb_lacks_say_what_to_write(name, says):
    """torch.tensor(y, dtype=torch.long) and torch.set_default_dtype: a bare AttributeError."""
    with pytest.raises(AttributeError, match=says):
        getattr(wxb, name)


def test_one_hot_float_as_torchs(seeded):
    """F.one_hot(y, C).float(), the soft-target idiom, stopped at the int64 array's
    missing .float()."""
    rng = seeded.rng
    classes = int(rng.integers(2, 7))
    y = rng.integers(0, classes, size=int(rng.integers(1, 20)))
    found = wxb.nn.functional.one_hot(y, classes).float()
    expected = torch.nn.functional.one_hot(torch.tensor(y), classes).float()
    assert isinstance(found, wxb.Tensor) and found.dtype == np.float32
    close(found, expected, np.float32, seeded.msg("one_hot().float()"))
