"""OneCycleLR, SequentialLR, CosineAnnealingWarmRestarts, ConstantLR and PolynomialLR:
PyTorch's rates (and OneCycleLR's momentum) step by step for generated settings and
several parameter groups, fit running them as a PyTorch loop would (OneCycleLR once a
batch), their state round trip, a resumed fit equal to the uninterrupted one, and
bad settings refused by name."""

import warnings

import numpy as np
import pytest

import wxb
from wxb.errors import ConfigError
from wxb.optim import lr_scheduler as ours_module

torch = pytest.importorskip("torch")
theirs_module = torch.optim.lr_scheduler
# PyTorch's schedulers here step with no optimiser step (only the rates are compared),
# and SequentialLR's milestone step passes an epoch (its own deprecation warning)
pytestmark = [
    pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`"),
    pytest.mark.filterwarnings("ignore:The epoch parameter in `scheduler.step\\(\\)`"),
]

KINDS = ["onecycle", "sequential", "warm_restarts", "constant", "polynomial"]


def _phases_last(pct, total, three):
    """Whether every phase of a one-cycle lasts (PyTorch divides by each one's length)."""
    ends = [pct * total - 1, 2 * pct * total - 2, total - 1] if three else [
        pct * total - 1, total - 1]  # fmt: skip
    return all(b != a for a, b in zip([0.0, *ends], ends, strict=False))


def _settings(rng, kind, groups):
    """Settings a user could write for ``kind`` (drawn), and the steps a run takes."""
    if kind == "onecycle":
        total = int(rng.integers(5, 60))
        pct, three = 0.3, bool(rng.integers(0, 2))
        while not _phases_last(pct, total, three):
            pct = float(rng.uniform(0.05, 0.6))
        max_lr = [float(v) for v in rng.uniform(0.05, 1.0, groups)]
        return {
            "max_lr": max_lr if rng.integers(0, 2) else max_lr[0],
            "total_steps": total,
            "pct_start": pct,
            "anneal_strategy": str(rng.choice(["cos", "linear"])),
            "three_phase": three,
            "div_factor": float(rng.uniform(2, 50)),
            "final_div_factor": float(rng.uniform(10, 1e4)),
            "base_momentum": float(rng.uniform(0.5, 0.85)),
            "max_momentum": float(rng.uniform(0.86, 0.99)),
        }, total
    if kind == "sequential":
        warm = int(rng.integers(1, 8))
        return {
            "warm": warm,
            "start_factor": float(rng.uniform(0.01, 1.0)),
            "T_max": int(rng.integers(2, 15)),
            "eta_min": float(rng.choice([0.0, rng.uniform(0, 0.01)])),
            "gamma": float(rng.uniform(0.5, 0.99)),
            "second": warm + int(rng.integers(1, 20)),
        }, int(rng.integers(10, 50))
    if kind == "warm_restarts":
        return {
            "T_0": int(rng.integers(1, 8)),
            "T_mult": int(rng.integers(1, 4)),
            "eta_min": float(rng.choice([0.0, rng.uniform(0, 0.01)])),
        }, int(rng.integers(5, 60))
    if kind == "constant":
        return {
            "factor": float(rng.uniform(0.01, 1.0)),
            "total_iters": int(rng.integers(1, 10)),
        }, int(rng.integers(3, 20))
    return {
        "total_iters": int(rng.integers(1, 15)),
        "power": float(rng.choice([1.0, rng.uniform(0.1, 3.0)])),
    }, int(rng.integers(3, 25))


def _schedule(module, opt, kind, settings):
    """``kind`` made with ``module``'s classes (wxb's or PyTorch's)."""
    if kind == "onecycle":
        return module.OneCycleLR(opt, **settings)
    if kind == "sequential":
        s = settings
        warm = module.LinearLR(opt, start_factor=s["start_factor"], total_iters=s["warm"])
        cosine = module.CosineAnnealingLR(opt, T_max=s["T_max"], eta_min=s["eta_min"])
        decay = module.ExponentialLR(opt, gamma=s["gamma"])
        return module.SequentialLR(opt, [warm, cosine, decay], [s["warm"], s["second"]])
    if kind == "warm_restarts":
        return module.CosineAnnealingWarmRestarts(opt, **settings)
    if kind == "constant":
        return module.ConstantLR(opt, **settings)
    return module.PolynomialLR(opt, **settings)


def _optimisers(rng, groups, optimiser):
    """A wxb optimiser and PyTorch's twin over ``groups`` groups of drawn rates."""
    rates = [float(v) for v in rng.uniform(0.01, 0.5, groups)]
    mine = [wxb.nn.Dense(2, 2) for _ in rates]
    their = [torch.nn.Linear(2, 2) for _ in rates]
    kw = {"momentum": 0.9} if optimiser == "SGD" else {}
    ours = getattr(wxb.optim, optimiser)(
        [{"params": m.parameters(), "lr": r} for m, r in zip(mine, rates, strict=True)], **kw
    )
    theirs = getattr(torch.optim, optimiser)(
        [{"params": m.parameters(), "lr": r} for m, r in zip(their, rates, strict=True)], **kw
    )
    return ours, theirs


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g.get("momentum") for g in opt.param_groups]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("optimiser", ["SGD", "Adam"])
def test_rates_are_pytorchs_at_every_step(seeded, kind, optimiser):
    rng = seeded.rng
    groups = int(rng.integers(1, 4))
    settings, steps = _settings(rng, kind, groups)
    ours, theirs = _optimisers(rng, groups, optimiser)
    schedule = _schedule(ours_module, ours, kind, settings)
    their_schedule = _schedule(theirs_module, theirs, kind, settings)
    # a rate set by hand mid-run, in half the runs: chainable schedules go on from it
    # (a cosine out of its trough too), the others overwrite it at the next step
    by_hand = int(rng.integers(0, steps)) if rng.integers(0, 2) else -1
    for step in range(steps + 1):
        where = f"{kind} {settings} at step {step}, by hand at {by_hand} (seed {seeded.seed})"
        np.testing.assert_allclose(
            schedule.get_last_lr(), their_schedule.get_last_lr(), rtol=1e-12, err_msg=where
        )
        np.testing.assert_allclose(
            [g["lr"] for g in ours.param_groups], their_schedule.get_last_lr(), rtol=1e-12
        )
        if kind == "onecycle":  # the momentum (Adam's β₁) cycles the other way
            np.testing.assert_allclose(_momenta(ours), _momenta(theirs), rtol=1e-12, err_msg=where)
        if step == by_hand:  # (after a PolynomialLR's end too: kept, as PyTorch's)
            for mine, their in zip(ours.param_groups, theirs.param_groups, strict=True):
                mine["lr"] = their["lr"] = float(rng.uniform(0.01, 0.5))
        if step < steps:
            schedule.step()
            their_schedule.step()


def _made(module, opt, kind, settings, last_epoch):
    """``kind`` made with ``last_epoch`` (PyTorch's resume), LambdaLR too."""
    if kind == "lambda":
        return module.LambdaLR(opt, lambda e: 0.9**e + 0.1 * (e % 3), last_epoch=last_epoch)
    names = {"onecycle": "OneCycleLR", "warm_restarts": "CosineAnnealingWarmRestarts",
             "constant": "ConstantLR", "polynomial": "PolynomialLR"}  # fmt: skip
    return getattr(module, names[kind])(opt, **settings, last_epoch=last_epoch)


@pytest.mark.parametrize("kind", ["onecycle", "warm_restarts", "constant", "polynomial", "lambda"])
@pytest.mark.parametrize("how", ["last_epoch_argument", "last_epoch_attribute"])
def test_a_schedule_moved_to_an_epoch_goes_on_as_pytorchs(seeded, kind, how):
    """PyTorch's two ways to move a schedule: made with last_epoch=k on an optimiser
    whose state was loaded, or ``scheduler.last_epoch = j`` then step(). LambdaLR's
    (and OneCycleLR's) step after ``last_epoch = j`` went on from the rate held ×
    λ(j + 1)/λ(j), not PyTorch's λ(j + 1)·initial_lr; ConstantLR made with last_epoch
    = total_iters − 1 kept the rate held where PyTorch's divides it by factor."""
    rng = seeded.rng
    settings, steps = _settings(rng, "constant" if kind == "lambda" else kind, 2)
    seed = int(rng.integers(0, 2**31))
    ours, theirs = _optimisers(np.random.default_rng(seed), 2, "SGD")
    schedule = _made(ours_module, ours, kind, settings, -1)
    their_schedule = _made(theirs_module, theirs, kind, settings, -1)
    stepped = int(rng.integers(0, max(1, steps - 1)))
    if kind == "constant" and rng.integers(0, 2):  # resumed the epoch before its end
        stepped = settings["total_iters"] - 1
    for _ in range(stepped):
        schedule.step()
        their_schedule.step()
    if how == "last_epoch_attribute":
        moved = int(rng.integers(0, max(1, steps - 1)))
        schedule.last_epoch = their_schedule.last_epoch = moved
        schedule.step()
        their_schedule.step()
    else:
        moved = stepped
        ours_again, theirs_again = _optimisers(np.random.default_rng(seed), 2, "SGD")
        ours_again.load_state_dict(ours.state_dict())
        theirs_again.load_state_dict(theirs.state_dict())
        schedule = _made(ours_module, ours_again, kind, settings, stepped)
        their_schedule = _made(theirs_module, theirs_again, kind, settings, stepped)
    for _ in range(3):
        np.testing.assert_allclose(
            schedule.get_last_lr(), their_schedule.get_last_lr(), rtol=1e-12,
            err_msg=f"{kind} {settings} stepped {stepped}, moved to {moved} (seed {seeded.seed})",
        )  # fmt: skip
        if kind == "onecycle" and schedule.last_epoch >= settings["total_steps"]:
            break
        schedule.step()
        their_schedule.step()


def test_warm_restarts_stepped_with_fractional_epochs_as_pytorchs(seeded):
    """PyTorch's example steps it once a batch with epoch + i / batches."""
    rng = seeded.rng
    settings, _ = _settings(rng, "warm_restarts", 2)
    ours, theirs = _optimisers(rng, 2, "SGD")
    schedule = ours_module.CosineAnnealingWarmRestarts(ours, **settings)
    their_schedule = theirs_module.CosineAnnealingWarmRestarts(theirs, **settings)
    batches = int(rng.integers(2, 7))
    for epoch in range(int(rng.integers(3, 20))):
        for i in range(batches):
            schedule.step(epoch + i / batches)
            their_schedule.step(epoch + i / batches)
            np.testing.assert_allclose(
                schedule.get_last_lr(), their_schedule.get_last_lr(), rtol=1e-12,
                err_msg=f"{settings} epoch {epoch} batch {i} (seed {seeded.seed})",
            )  # fmt: skip
    for _ in range(5):  # then on from there one epoch at a time, as PyTorch's
        schedule.step()
        their_schedule.step()
        np.testing.assert_allclose(
            schedule.get_last_lr(),
            their_schedule.get_last_lr(),
            rtol=1e-12,
            err_msg=f"seed {seeded.seed}",
        )


@pytest.mark.parametrize("kind", KINDS)
def test_state_round_trip_goes_on_as_the_uninterrupted_run(seeded, kind):
    """Saved mid-run, loaded in PyTorch's order (an optimiser and its state, the schedule
    made on it, its state): the next rates (and momenta) are the uninterrupted run's."""
    rng = seeded.rng
    settings, steps = _settings(rng, kind, 2)
    seed = int(rng.integers(0, 2**31))
    ours, _ = _optimisers(np.random.default_rng(seed), 2, "SGD")
    schedule = _schedule(ours_module, ours, kind, settings)
    stop = int(rng.integers(0, steps))
    for _ in range(stop):
        schedule.step()
    saved_opt, saved = ours.state_dict(), schedule.state_dict()
    expected = []
    for _ in range(steps - stop):
        schedule.step()
        expected.append((schedule.get_last_lr(), _momenta(ours)))
    again, _ = _optimisers(np.random.default_rng(seed), 2, "SGD")
    again.load_state_dict(saved_opt)
    resumed = _schedule(ours_module, again, kind, settings)
    resumed.load_state_dict(saved)
    got = []
    for _ in range(steps - stop):
        resumed.step()
        got.append((resumed.get_last_lr(), _momenta(again)))
    np.testing.assert_allclose(
        np.array(got, dtype=float), np.array(expected, dtype=float), rtol=1e-12,
        err_msg=f"{kind} {settings} stopped at {stop} (seed {seeded.seed})",
    )  # fmt: skip


def _models(seed):
    wxb.manual_seed(seed)
    model = wxb.nn.Sequential(wxb.nn.Dense(3, 5), wxb.nn.Tanh(), wxb.nn.Dense(5, 2))
    model = model.to("float64")
    twin = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    twin = twin.double()
    mine = [model[0].weight, model[0].bias, model[2].weight, model[2].bias]
    with torch.no_grad():
        for a, b in zip(mine, twin.parameters(), strict=True):
            b.copy_(torch.tensor(a.data))
    return model, mine, twin


def _fit_settings(rng, kind, epochs, batches):
    """Settings for a run of ``epochs`` × ``batches`` (OneCycleLR stepped once a batch)."""
    if kind == "onecycle":
        settings, _ = _settings(rng, kind, 2)
        settings["total_steps"] = total = epochs * batches
        while not _phases_last(settings["pct_start"], total, settings["three_phase"]):
            settings["pct_start"] = float(rng.uniform(0.05, 0.6))
        return settings
    return _settings(rng, kind, 2)[0]


@pytest.mark.parametrize("kind", KINDS)
def test_fit_trains_as_pytorchs_loop(seeded, kind):
    """fit with each schedule (two groups): the weights PyTorch's hand loop reaches, and
    History's lr the rate each epoch (its last batch, for OneCycleLR) trained with."""
    rng = seeded.rng
    rows, batch = int(rng.integers(12, 40)), int(rng.integers(3, 9))
    X, y = rng.normal(size=(rows, 3)), rng.integers(0, 2, rows)
    epochs, batches = int(rng.integers(2, 7)), -(-rows // batch)
    settings = _fit_settings(rng, kind, epochs, batches)
    model, mine, twin = _models(int(rng.integers(0, 2**31)))
    rates = [float(v) for v in rng.uniform(0.01, 0.3, 2)]
    opt = wxb.optim.SGD(
        [{"params": mine[:2], "lr": rates[0]}, {"params": mine[2:], "lr": rates[1]}],
        momentum=0.9,
    )
    their_params = list(twin.parameters())
    their_groups = [their_params[:2], their_params[2:]]
    their_opt = torch.optim.SGD(
        [{"params": p, "lr": r} for p, r in zip(their_groups, rates, strict=True)], momentum=0.9
    )
    schedule = _schedule(ours_module, opt, kind, settings)
    their_schedule = _schedule(theirs_module, their_opt, kind, settings)
    history = wxb.fit(
        model, X, y, optimizer=opt, lr_schedule=schedule, epochs=epochs, batch_size=batch,
        shuffle=False, verbose=0,
    )  # fmt: skip
    loss = torch.nn.CrossEntropyLoss()
    lrs = []
    for _ in range(epochs):
        for start in range(0, rows, batch):
            their_opt.zero_grad()
            loss(
                twin(torch.tensor(X[start : start + batch])), torch.tensor(y[start : start + batch])
            ).backward()
            their_opt.step()
            trained = [g["lr"] for g in their_opt.param_groups]
            if kind == "onecycle":
                their_schedule.step()
        lrs.append(trained)
        if kind != "onecycle":
            their_schedule.step()
    where = f"{kind} {settings} (seed {seeded.seed})"
    for a, b in zip(mine, their_params, strict=True):
        np.testing.assert_allclose(
            a.data, b.detach().numpy(), rtol=1e-10, atol=1e-13, err_msg=where
        )
    np.testing.assert_allclose(
        history.history["lr"], [r[0] for r in lrs], rtol=1e-12, err_msg=where
    )
    np.testing.assert_allclose(
        history.history["lr_group1"], [r[1] for r in lrs], rtol=1e-12, err_msg=where
    )


@pytest.mark.parametrize("kind", KINDS)
def test_a_resumed_fit_is_the_uninterrupted_run(seeded, kind, tmp_path):
    """Stopped after some epochs (checkpoints mid-epoch too) and resumed: the same
    weights and History, bit for bit, as the run that went straight through."""
    rng = seeded.rng
    rows, batch = int(rng.integers(16, 40)), int(rng.integers(3, 9))
    X, y = rng.normal(size=(rows, 3)), rng.integers(0, 2, rows)
    epochs, batches = int(rng.integers(3, 7)), -(-rows // batch)
    settings = _fit_settings(rng, kind, epochs, batches)
    seed = int(rng.integers(0, 2**31))

    def run(until, folder, resume):
        model, mine, _ = _models(seed)
        opt = wxb.optim.Adam([{"params": mine[:2], "lr": 0.05}, {"params": mine[2:], "lr": 0.02}])
        history = wxb.fit(
            model, X, y, optimizer=opt, lr_schedule=_schedule(ours_module, opt, kind, settings),
            epochs=until, batch_size=batch, verbose=0, seed=3, validation_split=0.25,
            checkpoint_dir=folder, checkpoint_every=int(rng.integers(1, batches + 1)),
            resume=resume,
        )  # fmt: skip
        return history, [p.data.copy() for p in mine]

    whole, weights = run(epochs, tmp_path / "whole", False)
    run(int(rng.integers(1, epochs)), tmp_path / "parts", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the counters are no changed settings
        resumed, got = run(epochs, tmp_path / "parts", True)
    where = f"{kind} {settings} (seed {seeded.seed})"
    for a, b in zip(got, weights, strict=True):
        np.testing.assert_array_equal(a, b, err_msg=where)
    assert resumed.history == whole.history, where


def test_a_resume_refuses_another_sequence(rng, tmp_path):
    """The checkpoint records each schedule of a SequentialLR: resuming with another
    warm-up length is refused, not run on from the saved step with other rates."""
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 2, 20)

    def run(warm, epochs, resume):
        model, _, _ = _models(1)
        opt = wxb.optim.SGD(model.parameters(), lr=0.1)
        schedule = ours_module.SequentialLR(
            opt,
            [ours_module.LinearLR(opt, 0.1, total_iters=warm), ours_module.ExponentialLR(opt, 0.9)],
            [warm],
        )
        return wxb.fit(
            model, X, y, optimizer=opt, lr_schedule=schedule, epochs=epochs, batch_size=5,
            verbose=0, checkpoint_dir=tmp_path, resume=resume, seed=0,
        )  # fmt: skip

    run(3, 2, False)
    with pytest.raises(ConfigError, match="schedule"):
        run(4, 5, True)


def test_fit_refuses_a_one_cycle_shorter_than_the_run(rng):
    """PyTorch's stops the run at the step past total_steps ("Tried to step …"); fit says
    so before training, naming the steps it takes."""
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 2, 20)
    model, _, _ = _models(0)
    opt = wxb.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    schedule = ours_module.OneCycleLR(opt, max_lr=0.5, total_steps=5)  # the epochs, not steps
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(ConfigError, match=r"20 steps \(5 epochs × 4 batches\).*total_steps=20"):
        wxb.fit(model, X, y, optimizer=opt, lr_schedule=schedule, epochs=5, batch_size=5, verbose=0)
    for a, b in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(a.data, b)
    schedule = ours_module.OneCycleLR(opt, max_lr=0.5, epochs=5, steps_per_epoch=4)
    wxb.fit(model, X, y, optimizer=opt, lr_schedule=schedule, epochs=5, batch_size=5, verbose=0)
    with pytest.raises(ConfigError, match="stepped 21 times; its total_steps is 20"):
        schedule.step()


def test_one_cycle_writes_torchs_group_keys(rng):
    """As PyTorch's: each group's initial_lr, max_lr and min_lr (and momentum bounds),
    which a port reads back (``group["max_lr"]``)."""
    ours, theirs = _optimisers(rng, 2, "SGD")
    ours_module.OneCycleLR(ours, max_lr=[0.4, 0.2], total_steps=10)
    theirs_module.OneCycleLR(theirs, max_lr=[0.4, 0.2], total_steps=10)
    for mine, their in zip(ours.param_groups, theirs.param_groups, strict=True):
        for key in ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum", "lr"):
            assert mine[key] == pytest.approx(their[key], rel=1e-15), key
        assert mine["momentum"] == their["momentum"]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda o, m: m.OneCycleLR(o, max_lr=0.1), "give total_steps, or epochs and steps_per"),
        (lambda o, m: m.OneCycleLR(o, max_lr=0.1, total_steps=0), "total_steps must be a pos"),
        (lambda o, m: m.OneCycleLR(o, max_lr=0.1, epochs=2, steps_per_epoch=1.5), "steps_per_ep"),
        (
            lambda o, m: m.OneCycleLR(o, max_lr=[0.1], total_steps=9),
            "max_lr holds 1 values for 2 param",
        ),
        (lambda o, m: m.OneCycleLR(o, max_lr=-1.0, total_steps=9), "max_lr must be ≥ 0"),
        (lambda o, m: m.OneCycleLR(o, 0.1, 9, pct_start=1.5), "pct_start must be in"),
        (lambda o, m: m.OneCycleLR(o, 0.1, 9, anneal_strategy="cosine"), "anneal_strategy"),
        (lambda o, m: m.OneCycleLR(o, 0.1, 9, div_factor=0), "div_factor must be > 0"),
        (lambda o, m: m.OneCycleLR(o, 0.1, 10, pct_start=0.1), "pct_start=0.1 with total_st"),
        (lambda o, m: m.SequentialLR(o, [], []), "at least one"),
        (lambda o, m: m.SequentialLR(o, [m.ConstantLR(o)], [3]), "one epoch fewer"),
        (lambda o, m: m.SequentialLR(o, [m.ConstantLR(o)] * 3, [5, 2]), "increasing order"),
        (lambda o, m: m.SequentialLR(o, [m.ReduceLROnPlateau(o)], []), "ReduceLROnPlateau"),
        (lambda o, m: m.SequentialLR(o, ["cosine"], []), r"schedulers\[0\] must be a wxb"),
        (lambda o, m: m.ConstantLR(o, factor=1.5), "factor must be in"),
        (lambda o, m: m.ConstantLR(o, total_iters=0), "total_iters must be a positive"),
        (lambda o, m: m.PolynomialLR(o, total_iters=2.5), "total_iters must be a positive"),
        (lambda o, m: m.PolynomialLR(o, power=-1), "power must be ≥ 0"),
        (lambda o, m: m.CosineAnnealingWarmRestarts(o, T_0=0), "T_0 must be a positive"),
        (lambda o, m: m.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0), "T_mult must be a pos"),
        (lambda o, m: m.CosineAnnealingWarmRestarts(o, 2, eta_min=-1), "eta_min must be ≥ 0"),
    ],
)
def test_bad_settings_are_refused_by_name(rng, make, match):
    ours, _ = _optimisers(rng, 2, "SGD")
    with pytest.raises(ConfigError, match=match):
        make(ours, ours_module)


def test_refusals_of_a_running_schedule(rng):
    adagrad = wxb.optim.Adagrad(wxb.nn.Dense(2, 2).parameters(), lr=0.1)
    with pytest.raises(ConfigError, match="Adagrad has no momentum or betas"):
        ours_module.OneCycleLR(adagrad, max_lr=0.1, total_steps=5)
    ours_module.OneCycleLR(adagrad, max_lr=0.1, total_steps=5, cycle_momentum=False)
    ours, _ = _optimisers(rng, 2, "SGD")
    other, _ = _optimisers(rng, 1, "SGD")
    with pytest.raises(ConfigError, match="on another optimiser"):
        ours_module.SequentialLR(ours, [ours_module.ConstantLR(other)], [])
    cycle = ours_module.OneCycleLR(ours, max_lr=0.1, total_steps=5)
    with pytest.raises(ConfigError, match="mixes schedules stepped once a batch"):
        ours_module.SequentialLR(ours, [cycle, ours_module.ConstantLR(ours)], [2])
    restarts = ours_module.CosineAnnealingWarmRestarts(ours, T_0=3)
    with pytest.raises(ConfigError, match="step epoch must be ≥ 0"):
        restarts.step(-1)
    sequence = ours_module.SequentialLR(
        ours, [ours_module.ConstantLR(ours), ours_module.ExponentialLR(ours, 0.9)], [2]
    )
    state = sequence.state_dict()
    other_sequence = ours_module.SequentialLR(
        ours, [ours_module.ConstantLR(ours), ours_module.ExponentialLR(ours, 0.5)], [2]
    )
    with pytest.raises(ConfigError, match="other settings"):
        other_sequence.load_state_dict(state)


def test_torchs_names_are_importable():
    from wxb.optim.lr_scheduler import (  # noqa: F401
        ConstantLR,
        CosineAnnealingWarmRestarts,
        OneCycleLR,
        PolynomialLR,
        SequentialLR,
    )


@pytest.mark.parametrize("optimiser", ["adam", "sgd", "sgd_momentum"])
def test_fit_onecycle_by_name_is_pytorchs_over_the_run(seeded, optimiser):
    """lr_schedule="onecycle": PyTorch's OneCycleLR peaking at the optimiser's lr over
    epochs × batches, Adam's β₁ (SGD's momentum) cycled; plain SGD stays plain."""
    rng = seeded.rng
    rows, batch = int(rng.integers(12, 40)), int(rng.integers(3, 9))
    X, y = rng.normal(size=(rows, 3)), rng.integers(0, 2, rows)
    epochs, lr = int(rng.integers(2, 6)), float(rng.uniform(0.01, 0.3))
    model, mine, twin = _models(int(rng.integers(0, 2**31)))
    momentum = {"momentum": 0.9} if optimiser == "sgd_momentum" else {}
    if optimiser == "adam":
        opt, their_opt = wxb.optim.Adam(mine, lr=lr), torch.optim.Adam(twin.parameters(), lr=lr)
    else:
        opt = wxb.optim.SGD(mine, lr=lr, **momentum)
        their_opt = torch.optim.SGD(twin.parameters(), lr=lr, **momentum)
    total = epochs * -(-rows // batch)
    their_schedule = theirs_module.OneCycleLR(
        their_opt, max_lr=lr, total_steps=total, cycle_momentum=optimiser != "sgd"
    )
    history = wxb.fit(
        model, X, y, optimizer=opt, lr_schedule="onecycle", epochs=epochs, batch_size=batch,
        shuffle=False, verbose=0,
    )  # fmt: skip
    loss, lrs = torch.nn.CrossEntropyLoss(), []
    for _ in range(epochs):
        for start in range(0, rows, batch):
            their_opt.zero_grad()
            rows_in = slice(start, start + batch)
            loss(twin(torch.tensor(X[rows_in])), torch.tensor(y[rows_in])).backward()
            their_opt.step()
            trained = their_opt.param_groups[0]["lr"]
            their_schedule.step()
        lrs.append(trained)
    where = f"{optimiser} lr {lr}, {total} steps (seed {seeded.seed})"
    for a, b in zip(mine, twin.parameters(), strict=True):
        np.testing.assert_allclose(
            a.data, b.detach().numpy(), rtol=1e-10, atol=1e-13, err_msg=where
        )
    np.testing.assert_allclose(history.history["lr"], lrs, rtol=1e-12, err_msg=where)
    assert opt.param_groups[0].get("momentum", 0) == their_opt.param_groups[0].get("momentum", 0)


def test_train_onecycle_on_the_command_line(seeded, tmp_path, capsys):
    """wxb train --lr-schedule onecycle: each epoch's lr in --history is PyTorch's
    OneCycleLR's at that epoch's last batch, peaking at --lr."""
    import json
    import re

    import pandas as pd
    from cli_run import run

    rng = seeded.rng
    rows, batch, epochs, lr = 120, 16, int(rng.integers(2, 6)), float(rng.uniform(0.01, 0.1))
    table = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["a", "b", "c"])
    table["label"] = rng.choice(["x", "y"], rows)
    table.to_csv(tmp_path / "t.csv", index=False)
    history = tmp_path / "history.json"
    code, out, err = run(
        capsys, "train", "--data", tmp_path / "t.csv", "--target", "label", "--optimizer",
        "adam", "--lr", lr, "--lr-schedule", "onecycle", "--epochs", epochs, "--batch-size",
        batch, "--patience", "0", "-q", "-o", tmp_path / "m.safetensors", "--history", history,
    )  # fmt: skip
    assert code == 0, err
    trained = int(re.search(r"(\d+) train", out).group(1))  # the rows it says it trains on
    steps = -(-trained // batch)
    their_opt = torch.optim.Adam(torch.nn.Linear(1, 1).parameters(), lr=lr)
    their_schedule = theirs_module.OneCycleLR(their_opt, max_lr=lr, total_steps=epochs * steps)
    expected = []
    for step in range(epochs * steps):
        if step % steps == steps - 1:
            expected.append(their_schedule.get_last_lr()[0])
        their_schedule.step()
    got = json.loads(history.read_text())["history"]["lr"]
    np.testing.assert_allclose(got, expected, rtol=1e-12, err_msg=f"seed {seeded.seed}")


@pytest.mark.filterwarnings("ignore:epochs changed from 2 to 3")
def test_a_resume_with_more_epochs_than_the_one_cycle_is_refused(seeded, tmp_path):
    """lr_schedule="onecycle" keeps the checkpoint's total_steps on a resume (a schedule
    derived from epochs): more epochs would have stopped mid-run at the step past it.
    Refused before training, the model as it was; fewer epochs go on."""
    rng = seeded.rng
    X, y = rng.normal(size=(24, 3)), rng.integers(0, 2, 24)

    def run(model, epochs, resume):
        return wxb.fit(
            model, X, y, optimizer="adam", lr=0.05, lr_schedule="onecycle", epochs=epochs,
            batch_size=6, verbose=0, seed=1, checkpoint_dir=tmp_path, resume=resume,
        )  # fmt: skip

    model, _, _ = _models(0)
    run(model, 2, False)
    again, _, _ = _models(0)
    before = [p.data.copy() for p in again.parameters()]
    with pytest.raises(ConfigError, match=r"total_steps=8, short of the 12 steps.*epochs ≤ 2"):
        run(again, 3, True)
    for a, b in zip(again.parameters(), before, strict=True):
        np.testing.assert_array_equal(a.data, b)


@pytest.mark.parametrize("kind", ["onecycle", "sequential"])
def test_a_fit_resumed_mid_epoch_is_the_uninterrupted_run(seeded, kind, tmp_path):
    """Resumed from a checkpoint taken between two batches (OneCycleLR stepped after each
    one): the same weights and History, bit for bit, as the run that went straight on."""
    import shutil

    rng = seeded.rng
    rows, batch = int(rng.integers(16, 40)), int(rng.integers(3, 7))
    X, y = rng.normal(size=(rows, 3)), rng.integers(0, 2, rows)
    batches = -(-int(rows * 0.75) // batch)  # (validation_split 0.25 keeps ⌈0.75·rows⌉ or so)
    epochs = int(rng.integers(2, 5))
    seed = int(rng.integers(0, 2**31))

    def run(folder, resume, settings):
        model, mine, _ = _models(seed)
        opt = wxb.optim.SGD(
            [{"params": mine[:2], "lr": 0.05}, {"params": mine[2:], "lr": 0.02}], momentum=0.9
        )
        history = wxb.fit(
            model, X, y, optimizer=opt, lr_schedule=_schedule(ours_module, opt, kind, settings),
            epochs=epochs, batch_size=batch, verbose=0, seed=3, validation_split=0.25,
            checkpoint_dir=folder, checkpoint_every=1, keep_checkpoints=10**6, resume=resume,
        )  # fmt: skip
        return history, [p.data.copy() for p in mine]

    whole_folder = tmp_path / "whole"
    settings = _fit_settings(rng, kind, epochs, batches)
    if kind == "onecycle":
        settings["total_steps"] += 2 * epochs  # (however many batches the split leaves)
    whole, weights = run(whole_folder, False, settings)
    steps = sorted(int(p.stem.split("-")[1]) for p in whole_folder.glob("step-*.json"))
    per_epoch = steps[-1] // epochs
    middle = [s for s in steps if s % per_epoch][: -1 or None]
    stop = int(rng.choice(middle))
    parts = tmp_path / "parts"
    shutil.copytree(whole_folder, parts)
    for path in parts.glob("step-*"):
        if int(path.name.split(".")[0].split("-")[1]) > stop:
            path.unlink()
    resumed, got = run(parts, True, settings)
    where = f"{kind} {settings}, resumed at step {stop} (seed {seeded.seed})"
    for a, b in zip(got, weights, strict=True):
        np.testing.assert_array_equal(a, b, err_msg=where)
    assert resumed.history == whole.history, where


def test_a_second_fit_with_onecycle_cycles_to_the_same_peak(rng):
    """fit(optimizer=opt, lr_schedule="onecycle") twice on one optimiser: the second
    cycle peaks at the first one's max_lr, not at the rate the first left (1e-5 of it),
    as every other named schedule starts again from its starting rate; a rate set by
    hand in between is the new peak."""
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 2, 20)
    model, _, _ = _models(0)
    opt = wxb.optim.Adam(model.parameters(), lr=0.05)
    first = wxb.fit(model, X, y, optimizer=opt, lr_schedule="onecycle", epochs=3, verbose=0)
    second = wxb.fit(model, X, y, optimizer=opt, lr_schedule="onecycle", epochs=3, verbose=0)
    assert second.history["lr"] == first.history["lr"]
    opt.param_groups[0]["lr"] = 0.01
    third = wxb.fit(model, X, y, optimizer=opt, lr_schedule="onecycle", epochs=3, verbose=0)
    np.testing.assert_allclose(third.history["lr"], np.array(first.history["lr"]) / 5, rtol=1e-12)


def test_a_sequence_of_one_cycles_is_pytorchs_and_resumes_with_its_momentum(seeded):
    """SequentialLR of two OneCycleLR: the rates and momenta are PyTorch's step by step;
    saved mid-run and loaded after the optimiser's state (PyTorch's order), the
    momentum is the loaded step's, not the max_momentum its making set."""
    rng = seeded.rng
    first, second = int(rng.integers(3, 12)), int(rng.integers(3, 12))

    def made(module, opt):
        cycles = [
            module.OneCycleLR(opt, max_lr=0.5, total_steps=first),
            module.OneCycleLR(opt, max_lr=0.2, total_steps=second, anneal_strategy="linear"),
        ]
        return module.SequentialLR(opt, cycles, [first])

    seed = int(rng.integers(0, 2**31))
    ours, theirs = _optimisers(np.random.default_rng(seed), 2, "Adam")
    schedule, their_schedule = made(ours_module, ours), made(theirs_module, theirs)
    stop = int(rng.integers(1, first + second))
    for step in range(first + second):
        where = f"{first}+{second} steps, at {step} (seed {seeded.seed})"
        np.testing.assert_allclose(
            schedule.get_last_lr(), their_schedule.get_last_lr(), rtol=1e-12, err_msg=where
        )
        np.testing.assert_allclose(_momenta(ours), _momenta(theirs), rtol=1e-12, err_msg=where)
        if step == stop:
            saved = ours.state_dict(), schedule.state_dict()
            momenta = _momenta(ours)
        schedule.step()
        their_schedule.step()
    again, _ = _optimisers(np.random.default_rng(seed), 2, "Adam")
    again.load_state_dict(saved[0])
    made(ours_module, again).load_state_dict(saved[1])
    assert _momenta(again) == momenta, f"stopped at {stop} (seed {seeded.seed})"
