"""Defects the extended differential fuzz (today's optimisers and schedules) led to."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import wxb

# Schedules whose epoch-0 rate is not the starting rate (a warm-up), made first, and what
# a user steps beside them (README: schedules on one optimiser compound, as a
# ChainedScheduler's)
WARMUPS = ["ConstantLR", "LinearLR"]
BESIDE = ["ExponentialLR", "StepLR", "ConstantLR", "LinearLR", "CosineAnnealingLR", "PolynomialLR"]


def settings(kind: str, rng: np.random.Generator) -> dict:
    if kind == "ConstantLR":
        return {"factor": float(rng.uniform(0.1, 0.9)), "total_iters": int(rng.integers(1, 4))}
    if kind == "LinearLR":
        return {
            "start_factor": float(rng.uniform(0.1, 0.9)),
            "total_iters": int(rng.integers(1, 4)),
        }
    if kind == "ExponentialLR":
        return {"gamma": float(rng.uniform(0.5, 0.99))}
    if kind == "StepLR":
        return {"step_size": int(rng.integers(1, 3)), "gamma": float(rng.uniform(0.1, 0.9))}
    if kind == "CosineAnnealingLR":
        return {"T_max": int(rng.integers(2, 6))}
    return {"total_iters": int(rng.integers(2, 6)), "power": float(rng.uniform(0.5, 3.0))}


@pytest.mark.parametrize("warmup", WARMUPS)
@pytest.mark.parametrize("beside", BESIDE)
def test_a_warm_up_compounded_with_another_schedule_gives_torchs_rates(warmup, beside):
    """ConstantLR(factor=0.2, total_iters=2) then ExponentialLR(γ=0.5), made on one
    optimiser at lr=1 and both stepped (PyTorch's ChainedScheduler example): wxb's rates
    were 1, 0.5, 1.25, 0.625 where torch's are 0.2, 0.1, 0.25, 0.125. Making the second
    schedule set the rate back to initial_lr dropped the warm-up's factor, which the
    warm-up then undid at its end (×5 for ever after; two ConstantLR ended at twice the
    rate set)."""
    seed = np.random.SeedSequence().entropy
    rng = np.random.default_rng(seed)
    kinds = [warmup, beside]
    options = [settings(kind, rng) for kind in kinds]
    lr = float(rng.uniform(0.01, 1.0))
    p = wxb.nn.Parameter(np.zeros(2))
    q = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    w_opt, t_opt = wxb.optim.SGD([p], lr=lr), torch.optim.SGD([q], lr=lr)
    ours = [getattr(wxb.optim, k)(w_opt, **o) for k, o in zip(kinds, options, strict=True)]
    theirs = [
        getattr(torch.optim.lr_scheduler, k)(t_opt, **o)
        for k, o in zip(kinds, options, strict=True)
    ]
    got, want = [w_opt.param_groups[0]["lr"]], [t_opt.param_groups[0]["lr"]]
    for _ in range(8):
        for w, t in zip(ours, theirs, strict=True):
            w.step()
            t.step()
        got.append(w_opt.param_groups[0]["lr"])
        want.append(t_opt.param_groups[0]["lr"])
    np.testing.assert_allclose(
        got, want, rtol=1e-12, atol=1e-15, err_msg=f"{kinds} {options} lr={lr} (seed {seed})"
    )


@pytest.mark.parametrize("warmup", WARMUPS)
def test_compounded_schedules_resumed_after_the_optimiser_go_on_as_the_run_did(warmup):
    """An optimiser's state loaded, then the two schedules made on it and their states
    loaded (wxb's documented order: the saved rates kept): MultiStepLR and a
    ConstantLR(factor=0.2) at lr=1, saved after making them, ran 0.5 where the run went
    on at 0.1 (and torch's 0.1): the second schedule's load put back the rate it found,
    the first's write over the loaded one. Against the uninterrupted run, which torch
    2.13's rates give."""
    seed = np.random.SeedSequence().entropy
    rng = np.random.default_rng(seed)
    kinds = [str(rng.choice(BESIDE)), warmup]
    if rng.random() < 0.5:
        kinds.reverse()
    options = [settings(kind, rng) for kind in kinds]
    at = int(rng.integers(0, 5))
    p = wxb.nn.Parameter(np.zeros(2))
    q = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    w_opt, t_opt = wxb.optim.SGD([p], lr=0.5), torch.optim.SGD([q], lr=0.5)
    ours = [getattr(wxb.optim, k)(w_opt, **o) for k, o in zip(kinds, options, strict=True)]
    theirs = [
        getattr(torch.optim.lr_scheduler, k)(t_opt, **o)
        for k, o in zip(kinds, options, strict=True)
    ]
    got, want = [], []
    for step in range(8):
        if step == at:  # a resumed run: the optimiser's state first, then the schedules'
            saved, schedules = w_opt.state_dict(), [s.state_dict() for s in ours]
            w_opt = wxb.optim.SGD([p], lr=0.5)
            w_opt.load_state_dict(saved)
            ours = [getattr(wxb.optim, k)(w_opt, **o) for k, o in zip(kinds, options, strict=True)]
            for schedule, state in zip(ours, schedules, strict=True):
                schedule.load_state_dict(state)
        for w, t in zip(ours, theirs, strict=True):
            w.step()
            t.step()
        got.append(w_opt.param_groups[0]["lr"])
        want.append(t_opt.param_groups[0]["lr"])
    np.testing.assert_allclose(
        got, want, rtol=1e-12, atol=1e-15, err_msg=f"{kinds} {options} at {at} (seed {seed})"
    )
