"""Differential checks of wxb's torch-style functions and Tensor methods against
PyTorch (values, dtypes, gradients): the regressions of what a fuzzer of them found,
each failing on the code before its fix."""

import numpy as np
import pytest

import wxb
from wxb.errors import ShapeError

torch = pytest.importorskip("torch")

pytestmark = [  # torch's warning on var's correction; NumPy's on log(−1), 1/0, …
    pytest.mark.filterwarnings("ignore:.*degrees of freedom"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
]

EPS = {np.dtype(np.float32): float(np.finfo(np.float32).eps), np.dtype(np.float64): 2.0**-52}


# -- what the fuzzer found -------------------------------------------------------
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
