"""Leftovers of earlier stops: SequentialLR made with last_epoch, a schedule made
beside an unstepped warm-up, schedules' state in PyTorch's form, public names,
class indices in a float tensor, and fit on a SciPy sparse X a batch at a time."""

import warnings

import numpy as np
import pytest

import wxb
from wxb import interop
from wxb.errors import ConfigError

torch = pytest.importorskip("torch")
L = torch.optim.lr_scheduler
pytestmark = [
    pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`"),
    pytest.mark.filterwarnings("ignore:The epoch parameter in `scheduler.step\\(\\)`"),
]


def _seed():
    return int(np.random.SeedSequence().entropy % 2**32)


def _torch_param():
    return torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))


def _wxb_param():
    return wxb.nn.Parameter(np.zeros(2))


def _sequence(module, opt, rng_values):
    warm, start, t_max, gamma = rng_values
    first = module.LinearLR(opt, start_factor=start, total_iters=warm)
    second = module.CosineAnnealingLR(opt, T_max=t_max, eta_min=0.001)
    third = module.ExponentialLR(opt, gamma=gamma)
    return module.SequentialLR(opt, [first, second, third], milestones=[warm, warm + t_max])


def test_sequential_lr_last_epoch_refused_and_state_resume_goes_on_as_torch():
    """SequentialLR(..., last_epoch=k) gave rates unlike PyTorch's (whose own restarts its
    first schedule, pytorch/pytorch#162591): refused, naming the way that works; loading
    the saved state goes on with the uninterrupted PyTorch run's rates."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    values = (int(rng.integers(1, 5)), float(rng.uniform(0.05, 1)), int(rng.integers(2, 6)),
              float(rng.uniform(0.5, 0.99)))  # fmt: skip
    lr, total = float(rng.uniform(0.01, 1)), 16
    k = int(rng.integers(0, total - 2))
    opt_t = torch.optim.SGD([_torch_param()], lr=lr)
    theirs = _sequence(L, opt_t, values)
    expected = [opt_t.param_groups[0]["lr"]]
    for _ in range(total):
        theirs.step()
        expected.append(opt_t.param_groups[0]["lr"])
    opt = wxb.optim.SGD([_wxb_param()], lr=lr)
    ours = _sequence(wxb.optim, opt, values)
    for _ in range(k):
        ours.step()
    saved_opt, saved = opt.state_dict(), ours.state_dict()
    resumed_opt = wxb.optim.SGD([_wxb_param()], lr=lr)
    resumed_opt.load_state_dict(saved_opt)
    children = [wxb.optim.LinearLR(resumed_opt, values[1], total_iters=values[0], last_epoch=k)]
    with pytest.raises(ConfigError, match=r"last_epoch=.*load_state_dict") as info:
        wxb.optim.SequentialLR(resumed_opt, children, milestones=[], last_epoch=k)
    assert "162591" in str(info.value), seed
    resumed = _sequence(wxb.optim, resumed_opt, values)
    resumed.load_state_dict(saved)
    got = [resumed_opt.param_groups[0]["lr"]]
    for _ in range(total - k):
        resumed.step()
        got.append(resumed_opt.param_groups[0]["lr"])
    np.testing.assert_allclose(got, expected[k:], rtol=1e-12, atol=1e-15, err_msg=f"seed {seed}")


@pytest.mark.parametrize("named", ["cosine", "step"])
def test_fit_named_schedule_after_unstepped_warm_up_warns_and_runs_torch_rates(named):
    """A LinearLR made on the optimiser and never stepped, then fit(lr_schedule="cosine"):
    the run trained at the warm-up's lowered rate throughout (PyTorch's rule for a second
    scheduler: it goes on from the lr it finds) without a word. Same rates, now said."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    lr, start, epochs = float(rng.uniform(0.01, 0.5)), float(rng.uniform(0.05, 0.9)), 6
    p = _torch_param()
    opt_t = torch.optim.SGD([p], lr=lr)
    L.LinearLR(opt_t, start_factor=start, total_iters=3)
    theirs = (L.CosineAnnealingLR(opt_t, T_max=epochs) if named == "cosine"
              else L.StepLR(opt_t, step_size=max(1, epochs // 3)))  # fmt: skip
    expected = []
    for _ in range(epochs):
        expected.append(opt_t.param_groups[0]["lr"])
        opt_t.step()
        theirs.step()
    X = rng.normal(size=(20, 3))
    y = X @ rng.normal(size=3)
    model = wxb.nn.Sequential(wxb.nn.Dense(3, 1))
    opt = wxb.optim.SGD(model.parameters(), lr=lr)
    wxb.optim.LinearLR(opt, start_factor=start, total_iters=3)
    with pytest.warns(UserWarning, match=r"never stepped.*SequentialLR") as caught:
        history = wxb.fit(model, X, y, loss="mse", optimizer=opt, epochs=epochs,
                          batch_size=20, lr_schedule=named, verbose=0)  # fmt: skip
    assert caught[0].filename == __file__, seed
    np.testing.assert_allclose(history.history["lr"], expected, rtol=1e-12, err_msg=f"{seed}")
    # no warning where no schedule left the rate lowered
    model = wxb.nn.Sequential(wxb.nn.Dense(3, 1))
    opt = wxb.optim.SGD(model.parameters(), lr=lr)
    wxb.optim.StepLR(opt, step_size=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wxb.fit(model, X, y, loss="mse", optimizer=opt, epochs=2, batch_size=20,
                lr_schedule=named, verbose=0)  # fmt: skip


SCHEDULE_KINDS = ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR",
                  "ConstantLR", "PolynomialLR", "OneCycleLR", "CosineAnnealingWarmRestarts",
                  "ReduceLROnPlateau", "LambdaLR", "MultiplicativeLR", "SequentialLR",
                  "ChainedScheduler", "CyclicLR"]  # fmt: skip
TOTAL = 14


def _schedule_settings(rng, kind):
    """Settings a user could write for ``kind`` (drawn once, used on both sides)."""
    u, i = rng.uniform, rng.integers
    return {
        "StepLR": {"step_size": int(i(1, 5)), "gamma": float(u(0.1, 0.9))},
        "MultiStepLR": {"milestones": sorted(int(v) for v in i(1, 10, 3)),
                        "gamma": float(u(0.1, 0.9))},
        "ExponentialLR": {"gamma": float(u(0.5, 0.99))},
        "CosineAnnealingLR": {"T_max": int(i(2, 8)), "eta_min": float(u(0, 0.01))},
        "LinearLR": {"start_factor": float(u(0.05, 1)), "end_factor": float(u(0, 1)),
                     "total_iters": int(i(1, 8))},
        "ConstantLR": {"factor": float(u(0.05, 1)), "total_iters": int(i(1, 8))},
        "PolynomialLR": {"total_iters": int(i(1, 10)), "power": float(u(0.5, 3))},
        "OneCycleLR": {"max_lr": [float(v) for v in u(0.1, 1, 2)], "total_steps": TOTAL + 1,
                       "pct_start": 0.3, "anneal_strategy": str(rng.choice(["cos", "linear"])),
                       "div_factor": float(u(5, 30)), "final_div_factor": float(u(10, 1e4))},
        "CosineAnnealingWarmRestarts": {"T_0": int(i(1, 5)), "T_mult": int(i(1, 3)),
                                        "eta_min": float(u(0, 0.01))},
        "ReduceLROnPlateau": {"patience": int(i(0, 3)), "factor": float(u(0.1, 0.9)),
                              "cooldown": int(i(0, 2))},
        "LambdaLR": {"decay": float(u(0.5, 0.99))},
        "MultiplicativeLR": {"decay": float(u(0.5, 0.99))},
        "SequentialLR": {"warm": int(i(1, 5)), "start_factor": float(u(0.05, 1)),
                         "T_max": int(i(2, 8)), "gamma": float(u(0.5, 0.99))},
        "ChainedScheduler": {"factor": float(u(0.05, 1)), "total_iters": int(i(1, 6)),
                             "gamma": float(u(0.5, 0.99))},
        "CyclicLR": {"base_lr": [float(v) for v in u(0.001, 0.01, 2)],
                     "max_lr": [float(v) for v in u(0.1, 1, 2)], "step_size_up": int(i(1, 5)),
                     "step_size_down": int(i(1, 5)), "gamma": float(u(0.8, 1)),
                     "mode": str(rng.choice(["triangular", "triangular2", "exp_range"]))},
    }[kind]  # fmt: skip


def _build(module, opt, kind, s):
    if kind in ("LambdaLR", "MultiplicativeLR"):
        decay = s["decay"]
        factor = (lambda e: decay**e + 0.1 * (e % 2)) if kind == "LambdaLR" else (lambda e: decay)
        return getattr(module, kind)(opt, factor)
    if kind == "SequentialLR":
        warm = module.LinearLR(opt, start_factor=s["start_factor"], total_iters=s["warm"])
        cosine = module.CosineAnnealingLR(opt, T_max=s["T_max"], eta_min=0.001)
        decay = module.ExponentialLR(opt, gamma=s["gamma"])
        return module.SequentialLR(
            opt, [warm, cosine, decay], milestones=[s["warm"], s["warm"] + s["T_max"]]
        )
    if kind == "ChainedScheduler":
        constant = module.ConstantLR(opt, factor=s["factor"], total_iters=s["total_iters"])
        return module.ChainedScheduler([constant, module.ExponentialLR(opt, gamma=s["gamma"])])
    return getattr(module, kind)(opt, **s)


def _optimizers(lrs):
    def torch_one():
        groups = [{"params": [_torch_param()], "lr": lr} for lr in lrs]
        return torch.optim.SGD(groups, lr=lrs[0], momentum=0.9)

    def wxb_one():
        groups = [{"params": [_wxb_param()], "lr": lr} for lr in lrs]
        return wxb.optim.SGD(groups, lr=lrs[0], momentum=0.9)

    return torch_one, wxb_one


def _step(schedule, figure):
    if type(schedule).__name__ == "ReduceLROnPlateau":
        schedule.step(figure)
    else:
        schedule.step()


def _seen(opt):
    return [g["lr"] for g in opt.param_groups] + [g["momentum"] for g in opt.param_groups]


def _drift(schedule, opt):
    """How far PyTorch's chainable recurrence has strayed from its own closed form (a
    kind that has one; momentum: none). Each step multiplies the rate by a factor
    computed with cancellation (LinearLR's 1 + (e − s)/(T·s + (t − 1)(e − s)) near e ≈ 0,
    the cosine's ratio of 1 + cos near a trough), so the recurrence rounds off by many
    ulps where wxb's closed form does not: that measured drift, not a guessed rtol, is
    what the two may differ by beyond the closed form's own rounding."""
    closed = getattr(schedule, "_get_closed_form_lr", None)
    lrs = [g["lr"] for g in opt.param_groups]
    if closed is None:
        return [0.0] * (2 * len(lrs))
    return [abs(a - b) for a, b in zip(lrs, closed(), strict=True)] + [0.0] * len(lrs)


def _assert_rates(got, expected, drift, where):
    got, expected = np.asarray(got), np.asarray(expected)
    allowed = np.asarray(drift) + 2e-15 * np.abs(expected)
    assert (np.abs(got - expected) <= allowed).all(), (
        f"{where}: {got.tolist()} != {expected.tolist()} "
        f"(off by {np.abs(got - expected).max():.3g}; allowed {allowed.tolist()})"
    )


@pytest.mark.parametrize("kind", SCHEDULE_KINDS)
def test_scheduler_state_from_and_to_torch_goes_on_with_torch_rates(kind):
    """wxb.interop had no way to take PyTorch's scheduler.state_dict() (nor give one back):
    a run resumed from PyTorch's checkpoint restarted its schedule. Now a PyTorch state
    loaded at step k goes on with PyTorch's rates (and OneCycleLR's momentum) step for
    step, and a wxb state loaded into PyTorch's scheduler does too."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    settings = _schedule_settings(rng, kind)
    torch_opt, wxb_opt = _optimizers([float(v) for v in rng.uniform(0.01, 1, 2)])
    figures = [float(v) for v in rng.uniform(0.5, 1, TOTAL)]
    k = int(rng.integers(0, TOTAL))
    opt_t = torch_opt()
    theirs = _build(L, opt_t, kind, settings)
    expected, drift = [], []
    for i in range(TOTAL):
        expected.append(_seen(opt_t))
        drift.append(_drift(theirs, opt_t))
        opt_t.step()
        _step(theirs, figures[i])
    expected.append(_seen(opt_t))
    drift.append(_drift(theirs, opt_t))
    where = f"{kind} k={k} seed {seed}"

    # PyTorch's state at step k into wxb (optimiser first, then the schedule)
    opt_t = torch_opt()
    theirs = _build(L, opt_t, kind, settings)
    for i in range(k):
        opt_t.step()
        _step(theirs, figures[i])
    opt = wxb_opt()
    ours = _build(wxb.optim, opt, kind, settings)
    interop.optimizer_from_torch(opt_t, opt)
    assert interop.scheduler_from_torch(theirs.state_dict(), ours) is ours
    got = [_seen(opt)]
    for i in range(k, TOTAL):
        _step(ours, figures[i])
        got.append(_seen(opt))
    # PyTorch's chainable recurrence and wxb's closed form round apart by an ulp or two,
    # beyond the recurrence's drift from the closed form
    _assert_rates(got, expected[k:], drift[k:], where)

    # wxb's state at step k into PyTorch's
    opt = wxb_opt()
    ours = _build(wxb.optim, opt, kind, settings)
    for i in range(k):
        _step(ours, figures[i])
    opt_t = torch_opt()
    theirs = _build(L, opt_t, kind, settings)
    interop.optimizer_to_torch(opt, opt_t)
    assert interop.scheduler_to_torch(ours, theirs) is theirs
    got, own = [_seen(opt_t)], [_drift(theirs, opt_t)]
    for i in range(k, TOTAL):
        opt_t.step()
        _step(theirs, figures[i])
        got.append(_seen(opt_t))
        own.append(_drift(theirs, opt_t))
    # both runs are PyTorch's recurrence, from step k and from 0: each drifts on its own
    _assert_rates(got, expected[k:], np.add(drift[k:], own), where)


def test_scheduler_interop_refuses_other_kinds_in_one_line():
    opt_t = torch.optim.SGD([_torch_param()], lr=0.1)
    opt = wxb.optim.SGD([_wxb_param()], lr=0.1)
    step = L.StepLR(opt_t, step_size=2)
    exponential = wxb.optim.ExponentialLR(opt, gamma=0.9)
    with pytest.raises(ConfigError, match="other kinds"):
        interop.scheduler_from_torch(step, exponential)
    with pytest.raises(ConfigError, match="other kinds"):
        interop.scheduler_to_torch(exponential, step)
    with pytest.raises(ConfigError, match="lacks"):
        interop.scheduler_from_torch({"gamma": 0.9}, exponential)
    with pytest.raises(ConfigError, match="holds no step_size"):  # an ExponentialLR's state
        interop.scheduler_from_torch(
            L.ExponentialLR(opt_t, gamma=0.5).state_dict(), wxb.optim.StepLR(opt, 2)
        )
    with pytest.raises(ConfigError, match="PyTorch has no InverseScalingLR"):
        interop.scheduler_from_torch(step.state_dict(), wxb.optim.InverseScalingLR(opt))
    with pytest.raises(ConfigError, match="must be PyTorch's lr_scheduler"):
        interop.scheduler_to_torch(exponential, step.state_dict())
    with pytest.raises(ConfigError, match="must be a wxb schedule"):
        interop.scheduler_from_torch(step, step)


def test_public_names_of_optim_and_nn_are_declared():
    """wxb.optim had no __all__: ``from wxb.optim import *`` brought np, math, os, sys,
    Module, Tensor and its helpers. Its __all__ now holds README's names and torch.optim's
    that wxb has; wxb.nn, wxb.nn.functional and wxb.optim.lr_scheduler's hold what is
    there, and each holds every name it shares with its torch module."""
    import re
    from pathlib import Path

    from wxb import nn
    from wxb.nn import functional
    from wxb.optim import lr_scheduler

    optim = wxb.optim
    namespace: dict = {}
    exec("from wxb.optim import *", namespace)
    brought = set(namespace) - {"__builtins__"}
    assert brought == set(optim.__all__)
    assert not {"np", "math", "os", "sys", "Module", "Tensor", "kernels"} & brought
    assert all(hasattr(optim, name) for name in optim.__all__)
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| Optimisers"))
    for name in set(re.findall(r"`([A-Za-z_]+)", row)):
        if isinstance(getattr(optim, name, None), type) or name.startswith("clip_grad"):
            assert name in optim.__all__, name
    pairs = [(optim, torch.optim), (lr_scheduler, torch.optim.lr_scheduler),
             (nn, torch.nn), (functional, torch.nn.functional)]  # fmt: skip
    for ours, theirs in pairs:
        assert all(hasattr(ours, name) for name in ours.__all__), ours.__name__
        shared = {n for n in vars(ours) if not n.startswith("_") and hasattr(theirs, n)}
        shared -= {"Tensor", "np", "annotations", "Callable", "Iterable", "Mapping"}
        shared -= {n for n in shared if type(getattr(ours, n)).__name__ == "module"} - {
            "functional", "init", "lr_scheduler"}  # fmt: skip
        assert shared <= set(ours.__all__), (ours.__name__, sorted(shared - set(ours.__all__)))


def test_cross_entropy_takes_class_indices_wxb_tensor_made_floats():
    """F.cross_entropy(out, wxb.tensor(y)) with y integer labels: wxb.tensor made floats
    (where torch.tensor(y) keeps int64) and the loss refused them with "must be
    integers; got float64", not saying why. Whole numbers are now the class indices
    meant, as fit takes float labels: PyTorch's value and gradient; a fraction is
    refused by name."""
    import torch.nn.functional as TF

    from wxb.nn import functional as F

    seed = _seed()
    rng = np.random.default_rng(seed)
    rows, classes = int(rng.integers(2, 30)), int(rng.integers(2, 8))
    logits = rng.normal(size=(rows, classes))
    y = rng.integers(0, classes, rows)
    y[rng.random(rows) < 0.2] = -100  # PyTorch's ignore_index, left out
    y[0] = 0
    weight = rng.uniform(0.1, 2, classes)
    cases = [
        (lambda o, t: F.cross_entropy(o, t), lambda o, t: TF.cross_entropy(o, t)),
        (lambda o, t: F.nll_loss(F.log_softmax(o, dim=1), t),
         lambda o, t: TF.nll_loss(TF.log_softmax(o, dim=1), t)),
        (lambda o, t: wxb.nn.CrossEntropyLoss(weight=weight)(o, t),
         lambda o, t: torch.nn.CrossEntropyLoss(weight=torch.tensor(weight))(o, t)),
    ]  # fmt: skip
    for index, (ours, theirs) in enumerate(cases):
        out = wxb.tensor(logits, requires_grad=True)
        value = ours(out, wxb.tensor(y))
        value.backward()
        out_t = torch.tensor(logits, requires_grad=True)
        expected = theirs(out_t, torch.tensor(y))
        expected.backward()
        where = f"case {index} seed {seed}"
        np.testing.assert_allclose(value.item(), expected.item(), rtol=1e-12, err_msg=where)
        np.testing.assert_allclose(out.grad, out_t.grad.numpy(), rtol=1e-10, atol=1e-15,
                                   err_msg=where)  # fmt: skip
    fractional = y.astype(float)
    fractional[-1] = 0.5
    with pytest.raises(wxb.DataError, match=r"whole numbers.*0\.5"):
        F.cross_entropy(wxb.tensor(logits), wxb.tensor(fractional))


def _same_fit(X, y, seed, **options):
    wxb.manual_seed(seed)
    model = wxb.nn.Sequential(
        wxb.nn.Dense(X.shape[1], 8, dtype="float64"),
        wxb.nn.Tanh(),
        wxb.nn.Dense(8, 3, dtype="float64"),
    )
    history = wxb.fit(model, X, y, epochs=2, batch_size=16, seed=seed, verbose=0, **options)
    return [p.data.copy() for p in model.parameters()], history.history


@pytest.mark.parametrize("how", ["plain", "validation_split", "validation_data"])
def test_fit_on_sparse_x_is_the_dense_fit(how):
    """fit made a SciPy sparse X dense whole; then a batch at a time; now its CSR batches
    go to the first Dense's sparse product: the same weights, figures and evaluate's as
    on X's dense copy (validation rows too), up to the order of each product's sums
    (float64: ~1e-12 of the values after two epochs of Adam)."""
    sparse = pytest.importorskip("scipy.sparse")
    seed = _seed()
    rng = np.random.default_rng(seed)
    rows, columns = int(rng.integers(40, 200)), int(rng.integers(2, 30))
    fmt = str(rng.choice(["csr", "csc", "coo"]))
    X = sparse.random(rows, columns, density=float(rng.uniform(0.05, 0.5)), format=fmt,
                      random_state=rng, dtype=np.float64)  # fmt: skip
    y = rng.integers(0, 3, rows)
    options, dense_options = {}, {}
    if how == "validation_split":
        options = dense_options = {"validation_split": 0.25}
    elif how == "validation_data":
        held = sparse.random(30, columns, density=0.3, format="csr", random_state=rng)
        options = {"validation_data": (held, y[:30])}
        dense_options = {"validation_data": (held.toarray(), y[:30])}
    weights, figures = _same_fit(X, y, seed, **options)
    dense_weights, dense_figures = _same_fit(X.toarray(), y, seed, **dense_options)
    assert figures.keys() == dense_figures.keys(), seed
    for key, values in figures.items():
        np.testing.assert_allclose(values, dense_figures[key], rtol=1e-11, err_msg=f"{seed}")
    for ours, theirs in zip(weights, dense_weights, strict=True):
        scale = float(np.abs(theirs).max())
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-11 * scale, err_msg=f"{seed}")
    model = wxb.nn.Sequential(wxb.nn.Dense(columns, 3, dtype="float64"))
    ours, theirs = wxb.evaluate(model, X, y), wxb.evaluate(model, X.toarray(), y)
    for key, value in theirs.items():
        np.testing.assert_allclose(ours[key], value, rtol=1e-12, err_msg=f"{seed}")
    chunk = int(rng.integers(1, rows + 5))
    outputs = model.predict(X.toarray(), batch_size=chunk)
    np.testing.assert_allclose(
        model.predict(X, batch_size=chunk), outputs, rtol=0,
        atol=1e-13 * float(np.abs(outputs).max()), err_msg=f"{seed}",
    )  # fmt: skip


def test_fit_on_sparse_x_stays_far_below_its_dense_size():
    """A 20,000 × 20,000 sparse X (dense: 1.6 GB in float32) trained with a peak of the
    whole dense matrix; now of a batch's rows."""
    import tracemalloc

    sparse = pytest.importorskip("scipy.sparse")
    seed = _seed()
    rng = np.random.default_rng(seed)
    n = 20_000
    X = sparse.random(n, n, density=1e-4, format="csr", random_state=rng, dtype=np.float64)
    y = rng.normal(size=n)
    model = wxb.nn.Sequential(wxb.nn.Dense(n, 1))
    # a small sparse fit first: the imports and kernels it loads are slow to trace
    wxb.fit(wxb.nn.Sequential(wxb.nn.Dense(5, 1)), X[:50, :5], y[:50], loss="mse", verbose=0)
    wxb.evaluate(model, X[:5], y[:5], loss="mse")
    tracemalloc.start()
    try:
        wxb.fit(model, X, y, loss="mse", epochs=1, batch_size=64, verbose=0)
        wxb.evaluate(model, X[:500], y[:500], loss="mse")
        model.predict(X, batch_size=256)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    dense = n * n * 4
    assert peak < dense / 10, (peak, dense, seed)


def test_fit_on_sparse_x_warns_of_rounded_columns_as_on_its_dense_copy():
    """The warning of float64 columns that float32 rounds (timestamps) is judged on a
    sparse X's sample kept sparse, and says what the dense copy's says."""
    sparse = pytest.importorskip("scipy.sparse")
    seed = _seed()
    rng = np.random.default_rng(seed)
    rows = int(rng.integers(30, 80))
    dense = np.where(rng.random((rows, 4)) < 0.5, rng.normal(size=(rows, 4)), 0.0)
    dense[:, int(rng.integers(0, 4))] = 1.7e9 + rng.uniform(0, 60, rows)  # seconds
    y = rng.integers(0, 2, rows)
    said = []
    for X in (sparse.csr_matrix(dense), dense):
        model = wxb.nn.Sequential(wxb.nn.Dense(4, 2))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            wxb.fit(model, X, y, epochs=1, verbose=0)
        said.append([str(w.message) for w in caught if "rounded" in str(w.message)])
    assert said[0] == said[1] and said[0], (said, seed)
