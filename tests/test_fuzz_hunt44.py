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
