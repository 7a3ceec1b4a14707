"""Defects found while hunting the suite's flaky tolerances: each test here failed before
its fix (fresh random draws on each run; ``WXB_TEST_SEED`` replays one)."""

import numpy as np
import pytest
import torch

import wxb


@pytest.mark.parametrize("groups", [1, 3])
def test_a_rate_set_by_hand_after_a_linear_decay_to_zero_stays_as_in_pytorch(seeded, groups):
    """LinearLR(end_factor=0) decays the rate to 0 and PyTorch's then leaves each rate as
    it finds it: a rate set by hand after total_iters trains on. wxb's found no starting
    rate that its factor 0 brings to that rate, and its next step set it back to 0."""
    rng = seeded.rng
    rates = [float(r) for r in rng.uniform(0.01, 0.5, size=groups)]
    settings = {
        "start_factor": float(rng.uniform(0.05, 1.0)),
        "end_factor": 0.0,
        "total_iters": int(rng.integers(1, 6)),
    }
    ours = wxb.optim.SGD(
        [{"params": [wxb.nn.Parameter(np.zeros(2))], "lr": r} for r in rates], lr=0.1
    )
    theirs = torch.optim.SGD(
        [{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": r} for r in rates], lr=0.1
    )
    mine = wxb.optim.LinearLR(ours, **settings)
    their = torch.optim.lr_scheduler.LinearLR(theirs, **settings)
    by_hand = settings["total_iters"] + int(rng.integers(0, 4))
    for epoch in range(by_hand + 6):
        if epoch == by_hand:
            index = int(rng.integers(groups))
            ours.param_groups[index]["lr"] = theirs.param_groups[index]["lr"] = float(
                rng.uniform(0.01, 0.5)
            )
        ours.step()
        theirs.step()
        mine.step()
        their.step()
        what = seeded.msg(f"epoch {epoch + 1}, {settings}, set by hand at {by_hand}")
        # torch's chain multiplies factors that cancel to ~1e-18 at the end, not 0
        np.testing.assert_allclose(
            [g["lr"] for g in ours.param_groups],
            [g["lr"] for g in theirs.param_groups],
            rtol=1e-12,
            atol=1e-15,
            err_msg=what,
        )
        np.testing.assert_allclose(
            mine.get_last_lr(), their.get_last_lr(), rtol=1e-12, atol=1e-15, err_msg=what
        )
