"""Optimisers, schedules and clipping over random runs, against torch.optim: the cases
the other optimiser tests leave out. Every run draws a fresh seed (printed;
``WXB_TEST_SEED`` replays it)."""

import math
import warnings

import numpy as np
import pytest

from wxb import optim
from wxb.nn.module import Parameter

torch = pytest.importorskip("torch")
TS = torch.optim.lr_scheduler


def _plateau_settings(rng):
    return {
        "mode": str(rng.choice(["min", "max"])),
        "factor": float(rng.uniform(0.1, 0.9)),
        "patience": int(rng.integers(0, 3)),
        "threshold": float(rng.choice([0.0, 1e-4, 0.1])),
        "threshold_mode": str(rng.choice(["rel", "abs"])),
        "cooldown": int(rng.integers(0, 3)),
        "min_lr": float(rng.choice([0.0, 1e-4])),
    }


def test_a_plateaus_last_rates_are_its_own_with_another_schedule_after_it(seeded):
    """get_last_lr() of a ReduceLROnPlateau stepped before another schedule on the same
    optimiser: the rates its own step left, as PyTorch's (it gave the rates after the
    other schedule's step, ×γ off at every epoch)."""
    rng = seeded.rng
    lrs = [float(rng.uniform(0.05, 1)) for _ in range(int(rng.integers(1, 3)))]
    ours = optim.SGD([{"params": [Parameter(np.zeros(2))], "lr": lr} for lr in lrs])
    theirs = torch.optim.SGD(
        [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs]
    )
    settings = _plateau_settings(rng)
    gamma = float(rng.uniform(0.5, 0.95))
    mine = [optim.ReduceLROnPlateau(ours, **settings), optim.ExponentialLR(ours, gamma)]
    reference = [TS.ReduceLROnPlateau(theirs, **settings), TS.ExponentialLR(theirs, gamma)]
    for epoch in range(int(rng.integers(3, 12))):
        figure = float(rng.normal())
        with warnings.catch_warnings():  # (no optimiser step here: only the rates)
            warnings.simplefilter("ignore", UserWarning)
            for schedule, their_schedule in zip(mine, reference, strict=True):
                if isinstance(schedule, optim.ReduceLROnPlateau):
                    schedule.step(figure)
                    their_schedule.step(figure)
                else:
                    schedule.step()
                    their_schedule.step()
        for schedule, their_schedule in zip(mine, reference, strict=True):
            np.testing.assert_allclose(
                schedule.get_last_lr(),
                their_schedule.get_last_lr(),
                rtol=1e-12,
                err_msg=seeded.msg(f"epoch {epoch}: {type(schedule).__name__}.get_last_lr()"),
            )
        got = [g["lr"] for g in ours.param_groups]
        want = [g["lr"] for g in theirs.param_groups]
        assert all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(got, want, strict=True)), (
            seeded.msg(f"epoch {epoch}: {got} vs {want}")
        )


def _schedule_pair(rng):
    """One of the schedules wxb and PyTorch both have, with random settings."""
    kind = str(rng.choice(["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR"]))
    if kind == "StepLR":
        settings = {"step_size": int(rng.integers(1, 4)), "gamma": float(rng.uniform(0.1, 0.95))}
    elif kind == "MultiStepLR":
        milestones = sorted(int(m) for m in rng.integers(1, 12, size=int(rng.integers(1, 4))))
        settings = {"milestones": milestones, "gamma": float(rng.uniform(0.1, 0.95))}
    elif kind == "ExponentialLR":
        settings = {"gamma": float(rng.uniform(0.5, 0.99))}
    else:
        settings = {"T_max": int(rng.integers(1, 8)), "eta_min": float(rng.choice([0.0, 1e-3]))}
    return getattr(optim, kind), getattr(TS, kind), settings


def _sgd_pair(lrs):
    ours = optim.SGD([{"params": [Parameter(np.zeros(2))], "lr": lr} for lr in lrs])
    theirs = torch.optim.SGD(
        [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs]
    )
    return ours, theirs


def test_a_schedule_resumed_with_last_epoch_goes_on_as_pytorchs(seeded):
    """PyTorch's resume: the optimiser's state loaded, then ``StepLR(opt, …,
    last_epoch=k)``; wxb's schedules refused the argument (TypeError)."""
    rng = seeded.rng
    for _ in range(10):
        ours_kind, their_kind, settings = _schedule_pair(rng)
        lrs = [float(rng.uniform(0.01, 1)) for _ in range(int(rng.integers(1, 3)))]
        ours, theirs = _sgd_pair(lrs)
        mine, reference = ours_kind(ours, **settings), their_kind(theirs, **settings)
        epochs = int(rng.integers(0, 10))
        with warnings.catch_warnings():  # (no optimiser step here: only the rates)
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(epochs):
                mine.step()
                reference.step()
            resumed, their_resumed = _sgd_pair(lrs)
            resumed.load_state_dict(ours.state_dict())
            their_resumed.load_state_dict(theirs.state_dict())
            if rng.random() < 0.3:  # a rate set by hand in the resumed run
                lr = float(rng.uniform(0.01, 1))
                resumed.param_groups[0]["lr"] = their_resumed.param_groups[0]["lr"] = lr
            last_epoch = int(rng.integers(max(0, epochs - 2), epochs + 2))
            mine = ours_kind(resumed, **settings, last_epoch=last_epoch)
            reference = their_kind(their_resumed, **settings, last_epoch=last_epoch)
            for epoch in range(8):
                got = [g["lr"] for g in resumed.param_groups]
                want = [g["lr"] for g in their_resumed.param_groups]
                if min(want) < 0:  # PyTorch's cosine below 0 (wxb's stays above: documented)
                    break
                where = f"{ours_kind.__name__}({settings}) last_epoch={last_epoch}, step {epoch}"
                np.testing.assert_allclose(got, want, rtol=1e-10, err_msg=seeded.msg(where))
                np.testing.assert_allclose(
                    mine.get_last_lr(),
                    reference.get_last_lr(),
                    rtol=1e-10,
                    err_msg=seeded.msg(where),
                )
                mine.step()
                reference.step()


def test_last_epoch_without_an_initial_rate_or_of_a_bad_kind_is_refused(rng):
    from wxb.errors import ConfigError

    ours, theirs = _sgd_pair([0.1])
    with pytest.raises(KeyError):  # PyTorch refuses it too
        TS.StepLR(theirs, 2, last_epoch=3)
    with pytest.raises(ConfigError, match=r"param_groups\[0\] has no 'initial_lr'"):
        optim.StepLR(ours, 2, last_epoch=3)
    for bad in (-2, 1.5, True, "3"):
        with pytest.raises(ConfigError, match="last_epoch must be a whole number"):
            optim.ExponentialLR(ours, 0.9, last_epoch=bad)
