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
