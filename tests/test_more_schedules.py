"""ExponentialLR and MultiStepLR: PyTorch's rates epoch by epoch (several groups, a
rate set by hand mid-run), their state round trip, and fit running them."""

import warnings

import numpy as np
import pytest

import wxb
from wxb.errors import ConfigError
from wxb.optim import ExponentialLR, MultiStepLR

torch = pytest.importorskip("torch")
# PyTorch's schedulers here step with no optimiser step: only the rates are compared
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`")


def _groups(modules, rates):
    return [{"params": m.parameters(), "lr": r} for m, r in zip(modules, rates, strict=True)]


def _pair(rng, kind, settings=None):
    """A wxb optimiser and schedule, and PyTorch's twins, two groups of random rates."""
    rates = [float(rng.uniform(0.01, 0.5)), float(rng.uniform(0.01, 0.5))]
    ours = wxb.optim.SGD(_groups([wxb.nn.Dense(2, 2), wxb.nn.Dense(2, 2)], rates), lr=0.1)
    theirs = torch.optim.SGD(_groups([torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)], rates))
    if settings is None:
        settings = {"gamma": float(rng.uniform(0.3, 0.99))}
        if kind == "multistep":
            count = int(rng.integers(1, 5))
            settings["milestones"] = sorted(int(m) for m in rng.integers(1, 12, size=count))
    if kind == "exponential":
        their_schedule = torch.optim.lr_scheduler.ExponentialLR(theirs, **settings)
        return ours, ExponentialLR(ours, **settings), theirs, their_schedule, settings
    their_schedule = torch.optim.lr_scheduler.MultiStepLR(theirs, **settings)
    return ours, MultiStepLR(ours, **settings), theirs, their_schedule, settings


@pytest.mark.parametrize("kind", ["exponential", "multistep"])
def test_rates_are_pytorchs_epoch_by_epoch(rng, kind):
    ours, schedule, theirs, their_schedule, _ = _pair(rng, kind)
    by_hand = int(rng.integers(2, 10))
    for epoch in range(15):
        for mine, their in zip(ours.param_groups, theirs.param_groups, strict=True):
            assert mine["lr"] == pytest.approx(their["lr"], rel=1e-12), epoch
        if epoch == by_hand:  # a rate set by hand: both go on from it
            rate = float(rng.uniform(0.01, 0.5))
            ours.param_groups[1]["lr"] = theirs.param_groups[1]["lr"] = rate
        schedule.step()
        their_schedule.step()


@pytest.mark.parametrize("kind", ["exponential", "multistep"])
def test_state_round_trip_continues_as_the_uninterrupted_run(rng, kind):
    """Saved mid-run and loaded (PyTorch's order: the optimiser, then the schedule made
    on it): the next rates are the uninterrupted run's."""
    ours, schedule, _, _, settings = _pair(rng, kind)
    for _ in range(int(rng.integers(1, 10))):
        schedule.step()
    saved_opt, saved_schedule = ours.state_dict(), schedule.state_dict()
    expected = [schedule.step() for _ in range(5)]
    again, _, _, _, _ = _pair(rng, kind, settings)
    again.load_state_dict(saved_opt)
    resumed = type(schedule)(again, **settings)
    resumed.load_state_dict(saved_schedule)
    np.testing.assert_allclose([resumed.step() for _ in range(5)], expected, rtol=1e-12)


def test_fit_runs_them_as_pytorch_would(rng):
    X, y = rng.normal(size=(32, 3)), rng.integers(0, 2, 32)
    model = wxb.nn.Sequential(wxb.nn.Dense(3, 4), wxb.nn.ReLU(), wxb.nn.Dense(4, 2))
    opt = wxb.optim.SGD(model.parameters(), lr=0.1)
    milestones = [2, 4]
    history = wxb.fit(
        model, X, y, optimizer=opt, lr_schedule=MultiStepLR(opt, milestones, 0.5),
        epochs=5, batch_size=8, verbose=0,
    )  # fmt: skip
    their_opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.1)
    their = torch.optim.lr_scheduler.MultiStepLR(their_opt, milestones, 0.5)
    expected = []
    for _ in range(5):
        expected.append(their_opt.param_groups[0]["lr"])
        their.step()
    np.testing.assert_allclose(history.history["lr"], expected, rtol=1e-12)


def test_bad_settings_are_refused():
    opt = wxb.optim.SGD(wxb.nn.Dense(2, 2).parameters(), lr=0.1)
    for make in (
        lambda: ExponentialLR(opt, 0.0),
        lambda: ExponentialLR(opt, "0.9"),
        lambda: MultiStepLR(opt, [3, 0]),
        lambda: MultiStepLR(opt, 5),
        lambda: MultiStepLR(opt, "35"),
    ):
        with pytest.raises(ConfigError):
            make()


# -- ReduceLROnPlateau --------------------------------------------------------------------
def _plateau_settings(rng):
    return {
        "mode": str(rng.choice(["min", "max"])),
        "factor": float(rng.uniform(0.1, 0.9)),
        "patience": int(rng.integers(0, 4)),
        "threshold": float(rng.choice([0.0, 1e-4, 0.05])),
        "threshold_mode": str(rng.choice(["rel", "abs"])),
        "cooldown": int(rng.integers(0, 3)),
        "min_lr": [float(rng.uniform(0, 0.01)), float(rng.uniform(0, 0.01))],
        "eps": float(rng.choice([1e-8, 1e-3])),
    }


def _figures(rng, count):
    """A loss that falls, stalls and jumps, as a validation loss does."""
    steps = rng.choice([-0.1, 0.0, 0.0, 0.05, 0.3], size=count) * rng.random(count)
    return list(1.0 + np.cumsum(steps))


def test_plateau_rates_are_pytorchs(rng):
    for _ in range(20):
        settings = _plateau_settings(rng)
        rates = [float(rng.uniform(0.01, 0.5)), float(rng.uniform(0.01, 0.5))]
        ours = wxb.optim.SGD(_groups([wxb.nn.Dense(2, 2), wxb.nn.Dense(2, 2)], rates), lr=0.1)
        theirs = torch.optim.SGD(_groups([torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)], rates))
        schedule = wxb.optim.ReduceLROnPlateau(ours, **settings)
        their_schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs, **settings)
        for epoch, figure in enumerate(_figures(rng, 30)):
            schedule.step(figure)
            their_schedule.step(figure)
            for mine, their in zip(ours.param_groups, theirs.param_groups, strict=True):
                assert mine["lr"] == pytest.approx(their["lr"], rel=1e-12), (settings, epoch)


def test_plateau_state_round_trip_continues_as_the_uninterrupted_run(rng):
    settings = _plateau_settings(rng)
    settings["min_lr"] = 0.0
    figures = _figures(rng, 30)
    cut = int(rng.integers(1, 29))
    opt = wxb.optim.SGD(wxb.nn.Dense(2, 2).parameters(), lr=0.3)
    schedule = wxb.optim.ReduceLROnPlateau(opt, **settings)
    for figure in figures[:cut]:
        schedule.step(figure)
    saved_opt, saved = opt.state_dict(), schedule.state_dict()
    expected = [schedule.step(figure) for figure in figures[cut:]]
    again = wxb.optim.SGD(wxb.nn.Dense(2, 2).parameters(), lr=0.3)
    again.load_state_dict(saved_opt)
    resumed = wxb.optim.ReduceLROnPlateau(again, **settings)
    resumed.load_state_dict(saved)
    assert [resumed.step(figure) for figure in figures[cut:]] == expected


def test_fit_steps_the_plateau_on_the_validation_loss(rng):
    """fit's recorded rates are what PyTorch's scheduler makes of fit's own val_loss."""
    X, y = rng.normal(size=(48, 3)), rng.integers(0, 2, 48)
    model = wxb.nn.Sequential(wxb.nn.Dense(3, 8), wxb.nn.ReLU(), wxb.nn.Dense(8, 2))
    opt = wxb.optim.SGD(model.parameters(), lr=0.5)
    history = wxb.fit(
        model, X, y, optimizer=opt, lr_schedule="plateau", validation_split=0.25,
        early_stopping=4, epochs=12, batch_size=8, verbose=0,
    )  # fmt: skip
    their_opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.5)
    their = torch.optim.lr_scheduler.ReduceLROnPlateau(their_opt, patience=1)  # ⌊4/2⌋ − 1
    expected = []
    for figure in history.history["val_loss"]:
        expected.append(their_opt.param_groups[0]["lr"])
        their.step(figure)
    np.testing.assert_allclose(history.history["lr"], expected, rtol=1e-12)


def test_fit_refuses_a_plateau_watching_for_a_rise(rng):
    """A ported ReduceLROnPlateau(opt, mode='max') (PyTorch's loop stepped it on the
    validation accuracy) given to fit, which steps it on val_loss: each better epoch
    counted as a bad one and the rate was cut while the model improved, in silence."""
    X, y = rng.normal(size=(32, 3)), rng.integers(0, 2, 32)
    model = wxb.nn.Sequential(wxb.nn.Dense(3, 4), wxb.nn.ReLU(), wxb.nn.Dense(4, 2))
    opt = wxb.optim.SGD(model.parameters(), lr=0.1)
    schedule = wxb.optim.ReduceLROnPlateau(opt, mode="max", patience=int(rng.integers(0, 3)))
    with pytest.raises(ConfigError, match="mode='min'"):
        wxb.fit(model, X, y, optimizer=opt, lr_schedule=schedule, epochs=4, verbose=0)


def test_plateau_refusals():
    opt = wxb.optim.SGD(wxb.nn.Dense(2, 2).parameters(), lr=0.1)
    for make, pattern in (
        (lambda: wxb.optim.ReduceLROnPlateau(opt, factor=1.5), r"factor must be in \[0, 1\)"),
        (lambda: wxb.optim.ReduceLROnPlateau(opt, mode="up"), "mode must be 'min' or 'max'"),
        (lambda: wxb.optim.ReduceLROnPlateau(opt, patience=-1), "patience must be a whole"),
        (lambda: wxb.optim.ReduceLROnPlateau(opt, min_lr=[0, 0]), "2 rates for 1 parameter"),
        (lambda: wxb.optim.ReduceLROnPlateau(opt).step(), r"step\(val_loss\)"),
    ):
        with pytest.raises(ConfigError, match=pattern):
            make()


def test_plateau_floors_per_group_and_a_group_added_since():
    """min_lr as one rate per group, then add_param_group: the cut asked for the new
    group's floor past the list's end, a bare IndexError (PyTorch refuses it too, by
    name); a scalar floor serves every group, as PyTorch's."""
    first, second = wxb.nn.Dense(2, 2), wxb.nn.Dense(2, 2)
    for floors in ([0.01], 0.01):
        opt = wxb.optim.SGD(first.parameters(), lr=0.1)
        schedule = wxb.optim.ReduceLROnPlateau(opt, patience=0, min_lr=floors)
        opt.add_param_group({"params": second.parameters(), "lr": 0.2})
        schedule.step(1.0)
        if isinstance(floors, list):
            with pytest.raises(ConfigError, match="1 rates for 2 parameter groups"):
                schedule.step(2.0)
            schedule.min_lr = [0.01, 0.05]  # as PyTorch's message asks (its min_lrs)
        schedule.step(2.0)
        expected = [0.01, 0.05] if isinstance(floors, list) else [0.01, 0.02]
        assert [g["lr"] for g in opt.param_groups] == pytest.approx(expected)


def test_a_resumed_fit_continues_the_plateau_exactly(rng, tmp_path):
    X, y = rng.normal(size=(48, 3)), rng.integers(0, 2, 48)

    def run(epochs, folder, resume):
        wxb.manual_seed(5)
        model = wxb.nn.Sequential(wxb.nn.Dense(3, 8), wxb.nn.ReLU(), wxb.nn.Dense(8, 2))
        opt = wxb.optim.SGD(model.parameters(), lr=0.5)
        schedule = wxb.optim.ReduceLROnPlateau(opt, patience=1, factor=0.5)
        return wxb.fit(
            model, X, y, optimizer=opt, lr_schedule=schedule, validation_split=0.25,
            epochs=epochs, batch_size=8, verbose=0, seed=1, checkpoint_dir=folder,
            resume=resume,
        )  # fmt: skip

    whole = run(10, tmp_path / "whole", False)
    run(4, tmp_path / "parts", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the schedule's counters are no changed settings
        resumed = run(10, tmp_path / "parts", True)
    assert resumed.history["lr"] == whole.history["lr"]
    assert resumed.history["val_loss"] == whole.history["val_loss"]


@pytest.mark.parametrize(
    ("kind", "settings"),
    [
        ("StepLR", {"step_size": 2, "gamma": 0.5}),
        ("CosineAnnealingLR", {"T_max": 5, "eta_min": 0.001}),
        ("ExponentialLR", {"gamma": 0.7}),
        ("MultiStepLR", {"milestones": [1, 3], "gamma": 0.3}),
    ],
)
def test_a_running_schedule_loads_a_state_leaving_the_rates_as_pytorchs(rng, kind, settings):
    """load_state_dict into a schedule that has stepped (its own state, or an earlier
    one with the optimiser's, a rollback): the groups' lr stay what the optimiser holds,
    as PyTorch's. They went back to the rates the groups held when the schedule was made:
    ExponentialLR(γ=0.5) after two steps trained on at 0.1 where PyTorch's is at 0.025."""
    rates = [float(rng.uniform(0.01, 0.5)), float(rng.uniform(0.01, 0.5))]
    ours = wxb.optim.SGD(_groups([wxb.nn.Dense(2, 2), wxb.nn.Dense(2, 2)], rates), lr=0.1)
    theirs = torch.optim.SGD(_groups([torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)], rates))
    mine = getattr(wxb.optim, kind)(ours, **settings)
    reference = getattr(torch.optim.lr_scheduler, kind)(theirs, **settings)
    saved = None
    for epoch in range(8):
        if epoch == int(rng.integers(1, 3)):
            saved = (ours.state_dict(), mine.state_dict(), theirs.state_dict(),
                     reference.state_dict())  # fmt: skip
        if epoch in (3, 5):  # its own state, then the saved one with the optimiser's
            if epoch == 5 and saved is not None:
                ours.load_state_dict(saved[0])
                theirs.load_state_dict(saved[2])
                mine.load_state_dict(saved[1])
                reference.load_state_dict(saved[3])
            else:
                mine.load_state_dict(mine.state_dict())
                reference.load_state_dict(reference.state_dict())
            expected = [g["lr"] for g in theirs.param_groups]
            assert [g["lr"] for g in ours.param_groups] == pytest.approx(expected, rel=1e-12)
            assert mine.get_last_lr() == pytest.approx(reference.get_last_lr(), rel=1e-12)
        mine.step()
        reference.step()
        expected = [g["lr"] for g in theirs.param_groups]
        assert [g["lr"] for g in ours.param_groups] == pytest.approx(expected, rel=1e-12), epoch
