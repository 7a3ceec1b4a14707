"""torch's everyday names a port reaches for (Tensor.sin, cos, sign, norm, dot, prod,
cumsum, long/int, type, contiguous, new_zeros/new_ones; F.linear, F.one_hot, F.normalize;
LambdaLR, LinearLR and wxb.optim.lr_scheduler; wxb.tensor(...)), each against torch on
fresh random inputs (the ``seeded`` fixture prints its seed): values and gradients, in
float64 to ~1e-12 and float32 to its rounding."""

from __future__ import annotations

import numpy as np
import pytest
from rounding import rounding_atol

import wxb
from wxb.errors import ShapeError

torch = pytest.importorskip("torch")

TOL = {np.float64: {"rtol": 1e-12, "atol": 1e-13}, np.float32: {"rtol": 2e-5, "atol": 2e-6}}


def _pair(array: np.ndarray) -> tuple[wxb.Tensor, torch.Tensor]:
    return (
        wxb.Tensor(array.copy(), requires_grad=True),
        torch.tensor(array.copy(), requires_grad=True),
    )


def _agree(seeded, what, dtype, f_wxb, f_torch, *arrays, seed_grad=True) -> None:
    """f on wxb's and torch's tensors: the same values, and the same gradients of
    Σ out ⊙ W for a random W (every element of the result weighted differently)."""
    ours = [_pair(a.astype(dtype)) for a in arrays]
    out_w = f_wxb(*(w for w, _ in ours))
    out_t = f_torch(*(t for _, t in ours))
    tol = TOL[dtype]
    assert out_w.shape == tuple(out_t.shape), seeded.msg(f"{what}: shape")
    assert out_w.dtype == out_t.detach().numpy().dtype, seeded.msg(f"{what}: dtype")
    np.testing.assert_allclose(out_w.data, out_t.detach().numpy(), **tol, err_msg=seeded.msg(what))
    weights = seeded.rng.normal(size=out_w.shape).astype(dtype)
    (out_w * wxb.Tensor(weights)).sum().backward()
    (out_t * torch.tensor(weights)).sum().backward()
    for i, (w, t) in enumerate(ours):
        expected = t.grad.numpy() if t.grad is not None else np.zeros_like(t.detach().numpy())
        got = w.grad if w.grad is not None else np.zeros_like(w.data)
        np.testing.assert_allclose(got, expected, **tol, err_msg=seeded.msg(f"{what}: ∂/∂{i}"))


DTYPES = [np.float64, np.float32]


@pytest.mark.parametrize("dtype", DTYPES)
def test_sin_cos_sign_against_torch(seeded, dtype):
    """t.sin(), t.cos(), t.sign() (gradient 0, as torch's) and np.sin(t): AttributeError
    (and np.sin's 'would cut the graph') before."""
    x = seeded.rng.normal(size=(4, 5)) * 3
    x[0, :2] = 0.0  # sign's 0
    for name in ("sin", "cos", "sign"):
        _agree(seeded, name, dtype, lambda a, n=name: getattr(a, n)(),
               lambda a, n=name: getattr(a, n)(), x)  # fmt: skip
        _agree(seeded, f"np.{name}", dtype, lambda a, n=name: getattr(np, n)(a),
               lambda a, n=name: getattr(torch, n)(a), x)  # fmt: skip
        _agree(seeded, f"wxb.ops.{name}", dtype, lambda a, n=name: getattr(wxb.ops, n)(a),
               lambda a, n=name: getattr(torch, n)(a), x)  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", ["fro", 2, 1, 3, 1.5, float("inf")])
def test_norm_against_torch_with_dims_and_zeros(seeded, dtype, p):
    """t.norm(p, dim, keepdim), with a row and a column of zeros: torch's gradient at a
    zero norm is 0 (√ would give 0/0)."""
    x = seeded.rng.normal(size=(3, 4, 5))
    x[1] = 0.0  # a slice whose norm is 0
    x[:, 2, :] = 0.0
    x[2, 0, :2] = x[2, 0, 2]  # ties for inf's largest |x|
    cases = [(None, False), (0, False), (1, True), (-1, False), ((0, 2), False), ((1, 2), True)]
    for dim, keepdim in cases:
        f = lambda a, d=dim, k=keepdim: a.norm(p, d, k)  # noqa: E731
        _agree(seeded, f"norm(p={p}, dim={dim}, keepdim={keepdim})", dtype, f, f, x)
    _agree(seeded, "norm()", dtype, lambda a: a.norm(), lambda a: a.norm(), x)
    zero = np.zeros((3, 2))
    _agree(seeded, "norm of zeros", dtype, lambda a: a.norm(p), lambda a: a.norm(p), zero)


def test_norm_refuses_what_it_does_not_compute(seeded):
    t = wxb.Tensor(seeded.rng.normal(size=(3,)))
    with pytest.raises(wxb.ConfigError, match="p must be"):
        t.norm(-1)  # (torch's quasi-norm below 1 is computed: test_leftovers50)
    with pytest.raises(wxb.ConfigError, match="p must be"):
        t.norm("nuc")


@pytest.mark.parametrize("dtype", DTYPES)
def test_dot_against_torch(seeded, dtype):
    a, b = seeded.rng.normal(size=(2, 7))
    _agree(seeded, "dot", dtype, lambda u, v: u.dot(v), lambda u, v: u.dot(v), a, b)
    _agree(seeded, "wxb.ops.dot", dtype, wxb.ops.dot, torch.dot, a, b)
    with pytest.raises(ShapeError, match="two vectors"):
        wxb.Tensor(np.ones((2, 3))).dot(wxb.Tensor(np.ones((3, 2))))
    with pytest.raises(ShapeError, match="two vectors"):
        wxb.Tensor(np.ones(3)).dot(wxb.Tensor(np.ones(4)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_prod_against_torch_with_zeros(seeded, dtype):
    """t.prod(dim, keepdim): the gradient where one element of a slice is 0 is the
    product of the others there and 0 elsewhere, and 0 where two are (Π/x is 0/0)."""
    x = seeded.rng.uniform(0.5, 1.5, size=(4, 5)) * seeded.rng.choice([-1, 1], size=(4, 5))
    x[1, 2] = 0.0  # one zero in row 1 and column 2
    x[2, 0] = x[2, 3] = 0.0  # two zeros in row 2
    for dim, keepdim in [(None, False), (0, False), (1, False), (1, True), (-2, True)]:
        if dim is None:
            fw, ft = (lambda a: a.prod()), (lambda a: a.prod())
        else:
            fw = ft = lambda a, d=dim, k=keepdim: a.prod(d, keepdim=k)
        _agree(seeded, f"prod(dim={dim}, keepdim={keepdim})", dtype, fw, ft, x)
    y = x[0].copy()  # no zeros: Π over everything
    _agree(seeded, "prod of a row", dtype, lambda a: a.prod(), lambda a: a.prod(), y)
    y[3] = 0.0  # one zero in the whole tensor
    _agree(seeded, "prod with one zero", dtype, lambda a: a.prod(), lambda a: a.prod(), y)
    s = np.asarray(seeded.rng.normal())
    _agree(seeded, "prod of a 0-d", dtype, lambda a: a.prod(0), lambda a: a.prod(0), s)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cumsum_against_torch(seeded, dtype):
    x = seeded.rng.normal(size=(3, 4, 5))
    for dim in (0, 1, 2, -1):
        _agree(seeded, f"cumsum({dim})", dtype, lambda a, d=dim: a.cumsum(d),
               lambda a, d=dim: a.cumsum(d), x)  # fmt: skip
    _agree(seeded, "cumsum(dim=)", dtype, lambda a: a.cumsum(dim=1),
           lambda a: a.cumsum(dim=1), x)  # fmt: skip


def test_long_int_and_type_as_torch(seeded):
    """long()/int(): whole numbers truncated towards zero, as torch's (an integer array,
    as argmax's indices); type() names torch's types, type(dtype) casts."""
    x = seeded.rng.normal(size=(4, 6)) * 10
    x[0, :4] = [2.5, -2.5, 0.999, -0.999]
    ours, theirs = wxb.Tensor(x), torch.tensor(x)
    for name, kind in (("long", np.int64), ("int", np.int32)):
        got, expected = getattr(ours, name)(), getattr(theirs, name)().numpy()
        assert got.dtype == kind == expected.dtype, seeded.msg(name)
        np.testing.assert_array_equal(got, expected, err_msg=seeded.msg(name))
    f32 = torch.tensor(x, dtype=torch.float32)
    assert ours.type() == theirs.type() == "torch.DoubleTensor"
    assert ours.float().type() == f32.type() == "torch.FloatTensor"
    for dtype in (torch.float32, "torch.FloatTensor", np.float32):
        cast = ours.type(dtype)
        assert cast.dtype == np.float32, seeded.msg(str(dtype))
        np.testing.assert_array_equal(cast.data, f32.numpy())
    for dtype in (torch.int64, "torch.LongTensor"):
        np.testing.assert_array_equal(ours.type(dtype), theirs.type(dtype).numpy())
    w = wxb.Tensor(x, requires_grad=True)
    w.type(torch.float32).sum().backward()  # the cast's gradient comes back in float64
    assert w.grad.dtype == np.float64 and np.all(w.grad == 1)


def test_contiguous_and_new_zeros_ones(seeded):
    """contiguous(): self where the array is row-major, a copy in the graph where not, so
    torch's x.t().contiguous().view(-1) runs (view refused the transpose)."""
    x = seeded.rng.normal(size=(3, 4))
    t, tt = wxb.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    assert t.contiguous() is t
    flat, flat_t = t.t().contiguous().view(-1), tt.t().contiguous().view(-1)
    np.testing.assert_array_equal(flat.data, flat_t.detach().numpy())
    weights = seeded.rng.normal(size=12)
    (flat * wxb.Tensor(weights)).sum().backward()
    (flat_t * torch.tensor(weights)).sum().backward()
    np.testing.assert_array_equal(t.grad, tt.grad.numpy())
    for dtype in (np.float32, np.float64):
        src, src_t = wxb.Tensor(x.astype(dtype)), torch.tensor(x.astype(dtype))
        for name in ("new_zeros", "new_ones"):
            for args in [(2, 3), ((2, 3),), ([4],)]:
                got, expected = getattr(src, name)(*args), getattr(src_t, name)(*args)
                assert got.shape == tuple(expected.shape) and not got.requires_grad
                assert got.dtype == expected.numpy().dtype, seeded.msg(f"{name}{args}")
                np.testing.assert_array_equal(got.data, expected.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_functional_linear_against_torch(seeded, dtype):
    """F.linear(x, W, b) in torch's layout, W (out, in): x of 1, 2 and 3 dimensions, with
    and without a bias, and a vector W (AttributeError before)."""
    rng = seeded.rng
    n_in, n_out = 4, 3
    W, b = rng.normal(size=(n_out, n_in)), rng.normal(size=n_out)
    for shape in [(n_in,), (5, n_in), (2, 5, n_in)]:
        x = rng.normal(size=shape)
        _agree(seeded, f"linear {shape}", dtype, wxb.nn.functional.linear,
               torch.nn.functional.linear, x, W, b)  # fmt: skip
        _agree(seeded, f"linear {shape} no bias", dtype, wxb.nn.functional.linear,
               torch.nn.functional.linear, x, W)  # fmt: skip
    x, w = rng.normal(size=(5, n_in)), rng.normal(size=n_in)
    _agree(seeded, "linear, vector W", dtype, wxb.nn.functional.linear,
           torch.nn.functional.linear, x, w)  # fmt: skip
    with pytest.raises(ShapeError, match="out_features, in_features"):
        wxb.nn.functional.linear(wxb.Tensor(x), wxb.Tensor(W.T))  # (in, out): the seed's W?


def test_functional_one_hot_against_torch(seeded):
    rng = seeded.rng
    F = wxb.nn.functional
    labels = rng.integers(0, 6, size=(4, 5))
    for num_classes in (-1, 6, 9):
        got = F.one_hot(labels, num_classes)
        expected = torch.nn.functional.one_hot(torch.tensor(labels), num_classes).numpy()
        assert got.dtype == expected.dtype == np.int64, seeded.msg(str(num_classes))
        np.testing.assert_array_equal(got, expected, err_msg=seeded.msg(str(num_classes)))
    np.testing.assert_array_equal(F.one_hot(torch.tensor(labels)), F.one_hot(labels))
    np.testing.assert_array_equal(F.one_hot(wxb.Tensor(labels).long()), F.one_hot(labels))
    bad = labels.copy()
    bad[1, 2] = -1  # NumPy's indexing would have set the last class
    with pytest.raises(RuntimeError, match="non-negative"):  # torch's refusal
        torch.nn.functional.one_hot(torch.tensor(bad))
    with pytest.raises(wxb.DataError, match="≥ 0"):
        F.one_hot(bad)
    with pytest.raises(wxb.DataError, match="smaller than num_classes"):
        F.one_hot(labels, int(labels.max()))
    with pytest.raises(wxb.DataError, match="whole numbers"):
        F.one_hot(wxb.Tensor(labels))
    with pytest.raises(wxb.DataError, match="infer"):
        F.one_hot(np.zeros(0, dtype=np.int64))


@pytest.mark.parametrize("dtype", DTYPES)
def test_functional_normalize_against_torch(seeded, dtype):
    """F.normalize(x, p, dim, eps): a zero row (below ε, no gradient through its norm)
    and rows of every size."""
    x = seeded.rng.normal(size=(4, 5, 3))
    x[1, 2] = 0.0
    x[2, :, 1] = 0.0
    F, TF = wxb.nn.functional, torch.nn.functional
    _agree(seeded, "normalize()", dtype, F.normalize, TF.normalize, x)
    for p, dim, eps in [(2, -1, 1e-12), (1, 0, 1e-12), (3, 1, 1e-12), (2, 2, 0.5)]:
        f_w = lambda a, p=p, d=dim, e=eps: F.normalize(a, p=p, dim=d, eps=e)  # noqa: E731
        f_t = lambda a, p=p, d=dim, e=eps: TF.normalize(a, p=p, dim=d, eps=e)  # noqa: E731
        _agree(seeded, f"normalize(p={p}, dim={dim}, eps={eps})", dtype, f_w, f_t, x)


# -- LambdaLR, LinearLR and wxb.optim.lr_scheduler -------------------------------------
def _schedules(rng, kind, groups=3, **settings):
    """A wxb optimiser and schedule and torch's twins, several groups of random rates."""
    rates = [float(rng.uniform(0.01, 0.5)) for _ in range(groups)]
    ours = wxb.optim.SGD(
        [{"params": wxb.nn.Dense(2, 2).parameters(), "lr": r} for r in rates], lr=0.1
    )
    theirs = torch.optim.SGD(
        [{"params": torch.nn.Linear(2, 2).parameters(), "lr": r} for r in rates], lr=0.1
    )
    mine = getattr(wxb.optim.lr_scheduler, kind)(ours, **settings)
    their = getattr(torch.optim.lr_scheduler, kind)(theirs, **settings)
    return ours, mine, theirs, their


def _lambda_settings(rng):
    a, b = float(rng.uniform(0.5, 0.99)), int(rng.integers(2, 6))
    return {"lr_lambda": lambda epoch: a**epoch * (1 + epoch % b)}


# An end_factor near 0 takes the rate near 0, where torch's chainable LinearLR (the rate
# times 1 + (e − s)/(T·s + (t − 1)(e − s)), which cancels) is off by ulps of the rates it
# started from (rates ≤ 0.5, ≤ 30 steps), far above any rtol of it: e = 0 gives 3.7e-19.
RATE_ATOL = rounding_atol(0.5, 30)


def _linear_settings(rng):
    return {
        "start_factor": float(rng.uniform(0.05, 1.0)),
        "end_factor": float(rng.uniform(0.0, 1.0)),
        "total_iters": int(rng.integers(1, 12)),
    }


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`")
@pytest.mark.parametrize("kind", ["LambdaLR", "LinearLR"])
def test_schedules_rates_are_torchs_step_by_step(seeded, kind):
    """Over many steps, every group's rate as torch's, with a rate set by hand mid-run
    (LinearLR goes on from it, as torch's chainable form; LambdaLR sets base·λ over it,
    as torch's)."""
    rng = seeded.rng
    settings = _lambda_settings(rng) if kind == "LambdaLR" else _linear_settings(rng)
    ours, mine, theirs, their = _schedules(rng, kind, **settings)
    by_hand = int(rng.integers(2, 20))
    for epoch in range(30):
        got = [g["lr"] for g in ours.param_groups]
        expected = [g["lr"] for g in theirs.param_groups]
        np.testing.assert_allclose(
            got, expected, rtol=1e-12, atol=RATE_ATOL, err_msg=seeded.msg(f"{epoch}")
        )
        np.testing.assert_allclose(
            mine.get_last_lr(), their.get_last_lr(), rtol=1e-12, atol=RATE_ATOL
        )
        if epoch == by_hand:
            rate = float(rng.uniform(0.01, 0.5))
            ours.param_groups[1]["lr"] = theirs.param_groups[1]["lr"] = rate
        mine.step()
        their.step()


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`")
@pytest.mark.parametrize("kind", ["LambdaLR", "LinearLR"])
def test_schedules_resume_and_round_trip_as_torch(seeded, kind):
    """Made with last_epoch=k on an optimiser holding torch's state (initial_lr), and a
    state_dict round trip: the next rates are torch's and the uninterrupted run's."""
    rng = seeded.rng
    settings = _lambda_settings(rng) if kind == "LambdaLR" else _linear_settings(rng)
    ours, mine, theirs, their = _schedules(rng, kind, **settings)
    for _ in range(int(rng.integers(1, 8))):
        mine.step()
        their.step()
    k = their.last_epoch
    again, again_t = _schedules(rng, kind, **settings)[::2]
    for a, saved in ((again, ours), (again_t, theirs)):
        for g, h in zip(a.param_groups, saved.param_groups, strict=True):
            g["lr"], g["initial_lr"] = h["lr"], h["initial_lr"]
    resumed = getattr(wxb.optim.lr_scheduler, kind)(again, last_epoch=k, **settings)
    resumed_t = getattr(torch.optim.lr_scheduler, kind)(again_t, last_epoch=k, **settings)
    saved_opt, saved = ours.state_dict(), mine.state_dict()
    for _ in range(10):
        got = [g["lr"] for g in again.param_groups]
        expected = [g["lr"] for g in again_t.param_groups]
        np.testing.assert_allclose(
            got, expected, rtol=1e-12, atol=RATE_ATOL, err_msg=seeded.msg("resumed")
        )
        resumed.step()
        resumed_t.step()
    uninterrupted = [mine.step() for _ in range(6)]
    fresh = _schedules(rng, kind, **settings)[0]  # PyTorch's order: optimiser, its state,
    fresh.load_state_dict(saved_opt)  # the schedule, its state
    loaded = getattr(wxb.optim.lr_scheduler, kind)(fresh, **settings)
    loaded.load_state_dict(saved)
    got = [loaded.step() for _ in range(6)]
    np.testing.assert_allclose(
        got, uninterrupted, rtol=1e-12, atol=RATE_ATOL, err_msg=seeded.msg("loaded")
    )


def test_lr_scheduler_namespace_as_torchs():
    """``from wxb.optim.lr_scheduler import StepLR`` and ``import
    wxb.optim.lr_scheduler`` as a port writes them; LRScheduler says what to use instead."""
    import importlib

    import wxb.optim.lr_scheduler as S
    from wxb.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, StepLR

    assert S is wxb.optim.lr_scheduler is importlib.import_module("wxb.optim.lr_scheduler")
    assert StepLR is wxb.optim.StepLR and LambdaLR is wxb.optim.LambdaLR
    assert CosineAnnealingLR is wxb.optim.CosineAnnealingLR
    for name in S.__all__:
        assert hasattr(torch.optim.lr_scheduler, name), name
    assert S.OneCycleLR is wxb.optim.OneCycleLR and S.SequentialLR is wxb.optim.SequentialLR
    assert S.CyclicLR is wxb.optim.CyclicLR  # (test_odds49 steps it against torch's)
    with pytest.raises(AttributeError, match="LRSchedule"):
        S.LRScheduler  # noqa: B018
    with pytest.raises(AttributeError, match="it holds"):
        S.NoSuchLR  # noqa: B018


def test_schedules_refuse_what_torch_refuses():
    opt = wxb.optim.SGD(wxb.nn.Dense(2, 2).parameters(), lr=0.1)
    for settings in [{"start_factor": 0}, {"start_factor": 1.5}, {"end_factor": -0.1},
                     {"end_factor": 2}, {"total_iters": 0}]:  # fmt: skip
        with pytest.raises(wxb.ConfigError):
            wxb.optim.LinearLR(opt, **settings)
    with pytest.raises(wxb.ConfigError, match="2 functions for 1 parameter groups"):
        wxb.optim.LambdaLR(opt, [lambda e: 1.0, lambda e: 0.5])  # (PyTorch's refuses too)
    with pytest.raises(wxb.ConfigError, match="function of the epoch"):
        wxb.optim.LambdaLR(opt, 0.5)


def test_fit_steps_linear_and_lambda_schedules_once_an_epoch(seeded):
    rng = seeded.rng
    X, y = rng.normal(size=(32, 3)), rng.integers(0, 2, 32)
    for kind, settings in [
        ("LinearLR", _linear_settings(rng)),
        ("LambdaLR", _lambda_settings(rng)),
    ]:
        model = wxb.nn.Sequential(wxb.nn.Dense(3, 4), wxb.nn.ReLU(), wxb.nn.Dense(4, 2))
        opt = wxb.optim.SGD(model.parameters(), lr=0.1)
        schedule = getattr(wxb.optim, kind)(opt, **settings)
        history = wxb.fit(model, X, y, optimizer=opt, lr_schedule=schedule, epochs=6,
                          batch_size=8, verbose=0)  # fmt: skip
        their_opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.1)
        their = getattr(torch.optim.lr_scheduler, kind)(their_opt, **settings)
        expected = []
        for _ in range(6):
            expected.append(their_opt.param_groups[0]["lr"])
            their_opt.step()
            their.step()
        np.testing.assert_allclose(history.history["lr"], expected, rtol=1e-12, atol=RATE_ATOL,
                                   err_msg=seeded.msg(kind))  # fmt: skip


def test_wxb_tensor_is_torchs_tensor_and_still_the_module(seeded):
    """wxb.tensor(data, requires_grad=True) as torch.tensor ran into "'module' object is
    not callable"; the module's imports go on working."""
    import importlib
    import pickle
    import subprocess
    import sys

    import wxb.tensor
    from wxb.tensor import Tensor, no_grad

    rng = seeded.rng
    values = rng.normal(size=(3, 4))
    as_torch = torch.tensor(values)  # (torch.tensor of a tensor: the same, with a warning)
    for data, theirs in [(values, as_torch), (values.tolist(), torch.tensor(values.tolist())),
                         (as_torch, as_torch), (wxb.Tensor(values), as_torch)]:  # fmt: skip
        ours = wxb.tensor(data)
        assert isinstance(ours, Tensor) and not ours.requires_grad
        assert ours.dtype == theirs.numpy().dtype, seeded.msg(type(data).__name__)
        np.testing.assert_array_equal(ours.data, theirs.numpy())
    kept = values.copy()
    copied = wxb.tensor(values, requires_grad=True, dtype="float64")
    values[0, 0] += 1  # a copy, as torch.tensor's (wxb.Tensor(values) would see it)
    np.testing.assert_array_equal(copied.data, kept)
    (copied * copied).sum().backward()
    np.testing.assert_allclose(copied.grad, 2 * kept, rtol=1e-15)
    assert wxb.tensor([1.0, 2.0], dtype=torch.float64).dtype == np.float64
    assert wxb.tensor.Tensor is Tensor is wxb.Tensor and wxb.tensor.no_grad is no_grad
    assert importlib.import_module("wxb.tensor") is wxb.tensor is sys.modules["wxb.tensor"]
    assert "tensor" in wxb.__all__
    t = pickle.loads(pickle.dumps(wxb.tensor([1.0, 2.0])))
    assert isinstance(t, Tensor) and t.tolist() == [1.0, 2.0]
    code = (
        "import wxb.tensor as m, wxb; from wxb.tensor import Tensor; "
        "print(m(1.5).item(), wxb.tensor.Tensor is Tensor)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1.5", "True"], out.stderr


@pytest.mark.parametrize("p", [2, 1, 3, float("inf")])
def test_sign_and_norm_of_nan_and_inf_as_torchs(seeded, p):
    """NaN and ±inf among the values: torch's sign gives 0 for NaN (NumPy's NaN), and
    torch's norm's gradient is NaN through a NaN norm for p = 2 (a `norm > 0` test had
    made it 0, hiding the NaN) and 0 at the NaN for p = 1 and inf."""
    x = seeded.rng.normal(size=(3, 5))
    x[0, 1], x[1, 2], x[1, 3] = np.nan, np.inf, -np.inf
    with np.errstate(invalid="ignore"):
        _agree(seeded, "sign", np.float64, lambda a: a.sign(), lambda a: a.sign(), x)
        f = lambda a: a.norm(p, dim=1)  # noqa: E731
        _agree(seeded, f"norm({p}) with NaN", np.float64, f, f, x)
    with pytest.raises(ShapeError, match="inf norm of nothing"):
        wxb.Tensor(np.zeros((0, 3))).norm(float("inf"))


def test_float32_cumsum_carries_as_torchs(seeded):
    """A float32 running sum of many values: NumPy's float32 cumsum drifted ~3e-5
    relative over 10⁶ values in [0, 1), torch's carries in double (~1e-7); its gradient
    (a running sum from the other end) too."""
    x = seeded.rng.uniform(0, 1, size=400_000).astype(np.float32)
    exact = np.cumsum(x.astype(np.float64))
    ours = wxb.Tensor(x, requires_grad=True)
    out = ours.cumsum(0)
    theirs = torch.tensor(x).cumsum(0).numpy()
    np.testing.assert_allclose(out.data, exact, rtol=3e-7, err_msg=seeded.msg("cumsum"))
    np.testing.assert_allclose(theirs, exact, rtol=3e-7, err_msg=seeded.msg("torch's"))
    out.backward(np.ones(x.size, dtype=np.float32))
    counts = np.arange(x.size, 0, -1, dtype=np.float64)  # ∂/∂x_i = number of sums it is in
    np.testing.assert_allclose(ours.grad, counts, rtol=3e-7, err_msg=seeded.msg("∂/∂x"))
