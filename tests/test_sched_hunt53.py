"""Learning-rate schedules composed and resumed mid-run, beside PyTorch's."""

from __future__ import annotations

import copy

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


def _cycling(rng, kind: str, groups: int, steps: int) -> dict:
    per = lambda lo, hi: [float(v) for v in rng.uniform(lo, hi, size=groups)]  # noqa: E731
    momenta = {"base_momentum": per(0.6, 0.85), "max_momentum": per(0.86, 0.97)}
    if kind == "OneCycleLR":
        return {"max_lr": per(0.05, 0.5), "total_steps": steps, "pct_start": 0.4, **momenta}
    return {"base_lr": per(1e-3, 1e-2), "max_lr": per(0.02, 0.2), "step_size_up": 2, **momenta}


@pytest.mark.parametrize(
    "kinds",
    [("CyclicLR", "CyclicLR"), ("CyclicLR", "OneCycleLR"), ("OneCycleLR", "CyclicLR"),
     ("OneCycleLR", "OneCycleLR")],
)  # fmt: skip
@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_cycling_schedules_in_a_sequential_keep_their_own_bounds(seeded, kinds, kind):
    """A SequentialLR of CyclicLR and OneCycleLR, per-group bounds: PyTorch's CyclicLR
    runs on its own base_lr, max_lr and momenta of each group, its OneCycleLR on those
    the groups hold (written by the last one made); wxb's ran a CyclicLR from the
    SequentialLR's starting rates and the first group's max_lr, never cycled its
    momentum, and ran a OneCycleLR on its own bounds."""
    rng = seeded.rng
    groups, first, second = int(rng.integers(1, 4)), int(rng.integers(3, 8)), 8
    options = {"momentum": 0.9} if kind == "SGD" else {}
    ours, theirs = _twins(kind, [float(v) for v in rng.uniform(0.01, 0.1, size=groups)], **options)
    settings = [_cycling(rng, k, groups, n) for k, n in zip(kinds, (first, second), strict=True)]

    def made(module, opt):
        members = [getattr(module, k)(opt, **s) for k, s in zip(kinds, settings, strict=True)]
        return module.SequentialLR(opt, members, milestones=[first])

    schedules = made(wxb.optim.lr_scheduler, ours), made(torch.optim.lr_scheduler, theirs)
    _same_groups(seeded, ours, theirs, f"{kinds} made")
    for step in range(first + second - 1):
        for opt, schedule in zip((ours, theirs), schedules, strict=True):
            opt.step()
            schedule.step()
        _same_groups(seeded, ours, theirs, f"{kinds} step {step}")


def test_one_cycle_follows_bounds_set_in_its_groups_as_torchs(seeded):
    """PyTorch's OneCycleLR reads each group's initial_lr, max_lr, min_lr and momentum
    bounds at every step: one set by hand mid-run is followed (wxb's kept its own)."""
    rng = seeded.rng
    total, at = 12, int(rng.integers(1, 10))
    ours, theirs = _twins("SGD", [0.1, 0.1], momentum=0.9)
    max_lr = [float(v) for v in rng.uniform(0.1, 0.5, size=2)]
    schedules = [
        module.OneCycleLR(opt, max_lr=max_lr, total_steps=total)
        for module, opt in ((wxb.optim.lr_scheduler, ours), (torch.optim.lr_scheduler, theirs))
    ]
    changed = {
        "max_lr": float(rng.uniform(0.5, 1.0)),
        "base_momentum": float(rng.uniform(0.5, 0.8)),
    }
    for step in range(total - 1):
        if step == at:
            for opt in (ours, theirs):
                opt.param_groups[1].update(changed)
        for opt, schedule in zip((ours, theirs), schedules, strict=True):
            opt.step()
            schedule.step()
        _same_groups(seeded, ours, theirs, f"step {step} (bounds set at {at})")


@pytest.mark.parametrize("kind", ["OneCycleLR", "CyclicLR"])
def test_a_sequential_resumed_keeps_the_momentum_its_optimiser_loaded(seeded, kind):
    """A SequentialLR whose cycling schedule moves the momentum, resumed in PyTorch's
    order (optimiser, schedule, the optimiser's state, the schedule's): the momentum is
    the loaded optimiser's (one set by hand before the save stays), as PyTorch's and as
    a OneCycleLR's own load_state_dict leaves it; wxb's SequentialLR set it back to the
    schedule's."""
    rng = seeded.rng
    first = int(rng.integers(2, 5))
    at = int(rng.integers(first + 1, first + 8))  # (in the cycling schedule's part)
    settings = _cycling(rng, kind, 1, 12)
    hand = float(rng.uniform(0.3, 0.6))

    def made(module, opt):
        warm = module.CyclicLR(opt, 0.01, 0.05, step_size_up=1, cycle_momentum=False)
        members = [warm, getattr(module, kind)(opt, **settings)]
        return module.SequentialLR(opt, members, milestones=[first])

    modules = wxb.optim.lr_scheduler, torch.optim.lr_scheduler
    pair = list(_twins("SGD", [0.05], momentum=0.9))
    schedules = [made(m, o) for m, o in zip(modules, pair, strict=True)]
    for _ in range(at):
        for opt, schedule in zip(pair, schedules, strict=True):
            opt.step()
            schedule.step()
    for opt in pair:
        opt.param_groups[0]["momentum"] = hand  # by hand, then saved
    saved = [
        (copy.deepcopy(o.state_dict()), copy.deepcopy(s.state_dict()))
        for o, s in zip(pair, schedules, strict=True)
    ]
    fresh = _twins("SGD", [0.05], momentum=0.9)
    for module, opt, (state, schedule_state) in zip(modules, fresh, saved, strict=True):
        schedule = made(module, opt)
        opt.load_state_dict(state)
        schedule.load_state_dict(schedule_state)
    _same_groups(seeded, *fresh, f"resumed after {at} steps (milestone {first})")
    assert fresh[0].param_groups[0]["momentum"] == hand, seeded.msg(f"resumed after {at} steps")
