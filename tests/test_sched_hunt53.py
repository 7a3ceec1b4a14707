"""Learning-rate schedules composed and resumed mid-run, beside PyTorch's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import wxb
from wxb import nn


def _twins(kind: str, lrs: list[float], **options):
    """A wxb optimiser and torch's over the same groups (one 2-vector each)."""
    ours = getattr(wxb.optim, kind)(
        [{"params": [nn.Parameter(np.zeros(2))], "lr": lr} for lr in lrs], **options
    )
    theirs = getattr(torch.optim, kind)(
        [
            {"params": [torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))], "lr": lr}
            for lr in lrs
        ],
        **options,
    )
    return ours, theirs


def _same_groups(seeded, ours, theirs, where: str) -> None:
    for i, (a, b) in enumerate(zip(ours.param_groups, theirs.param_groups, strict=True)):
        for key in ("lr", "momentum", "betas"):
            if key in b:
                np.testing.assert_allclose(
                    a[key],
                    b[key],
                    rtol=1e-12,
                    atol=0,
                    err_msg=seeded.msg(f"{where}: group {i} {key}"),
                )


@pytest.mark.filterwarnings("ignore:Detected call of")
def test_a_multiplicative_schedule_after_a_milestone_goes_on_from_the_rate_held(seeded):
    """SequentialLR's MultiplicativeLR from a milestone on: PyTorch's, which has no closed
    form, multiplies the rate the schedule before it left by λ(0) there, then by λ(1), …;
    wxb's started again from initial_lr (after ExponentialLR(0.5) for 3 epochs and a
    MultiplicativeLR of 0.9: 1.0, not 0.25·0.9)."""
    rng = seeded.rng
    lrs = [float(v) for v in rng.uniform(0.01, 0.5, size=int(rng.integers(1, 4)))]
    milestone, epochs = int(rng.integers(1, 6)), int(rng.integers(7, 12))
    gamma, a = float(rng.uniform(0.3, 0.9)), float(rng.uniform(0.5, 1.2))
    hand = int(rng.integers(0, epochs)), float(rng.uniform(0.3, 2.0))
    ours, theirs = _twins("SGD", lrs)

    def made(module, opt):
        first = module.ExponentialLR(opt, gamma=gamma)
        then = module.MultiplicativeLR(opt, lr_lambda=lambda e: a / (1 + 0.1 * e))
        return module.SequentialLR(opt, [first, then], milestones=[milestone])

    schedules = made(wxb.optim.lr_scheduler, ours), made(torch.optim.lr_scheduler, theirs)
    for epoch in range(epochs):
        if epoch == hand[0]:  # a rate set by hand: PyTorch's multiplies it from there
            for opt in (ours, theirs):
                opt.param_groups[-1]["lr"] *= hand[1]
        for opt, schedule in zip((ours, theirs), schedules, strict=True):
            opt.step()
            schedule.step()
        _same_groups(seeded, ours, theirs, f"epoch {epoch}, milestone {milestone}")
        np.testing.assert_allclose(
            schedules[0].get_last_lr(), schedules[1].get_last_lr(), rtol=1e-12, atol=0,
            err_msg=seeded.msg(f"epoch {epoch}: get_last_lr()"),
        )  # fmt: skip
