"""review50: what a user does around the last stops' changes, against PyTorch.

A CyclicLR made on an optimiser whose state is already loaded (a resume script that
rebuilds the optimiser first, or a new schedule on the live optimiser), its own state
then loaded: the run goes on as the uninterrupted one, as wxb's OneCycleLR and every
other schedule do (``LRSchedule.load_state_dict``). Inputs are drawn fresh each run."""

import numpy as np
import pytest
import torch

import wxb.nn as wnn
from wxb import optim

TS = torch.optim.lr_scheduler


@pytest.mark.parametrize("rebuilt", [True, False])
@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_a_cyclic_lr_made_after_the_optimisers_state_goes_on_as_the_run(seeded, kind, rebuilt):
    """The CyclicLR set each group's lr to base_lr before noting the rate the group held,
    so its load_state_dict put base_lr back where the others put the held rate: the first
    step after the resume ran at base_lr (its momentum the loaded step's), where the
    uninterrupted run (torch's, the reference here) steps at the cycle's rate."""
    rng = seeded.rng
    settings = {
        "base_lr": float(rng.uniform(1e-3, 1e-2)),
        "max_lr": float(rng.uniform(0.05, 0.2)),
        "step_size_up": int(rng.integers(3, 7)),
        "mode": str(rng.choice(["triangular", "triangular2"])),
    }
    options = {"momentum": float(rng.uniform(0.5, 0.9))} if kind == "SGD" else {}
    steps = int(rng.integers(12, 30))
    # a step where the cycle's rate is not base_lr (epoch 0 of a cycle is; the old code
    # stepped at base_lr only there): the two runs then differ by a whole step's rate
    period = 2 * settings["step_size_up"]
    resume = int(rng.choice([k for k in range(1, steps - 2) if (k + 1) % period]))
    values = rng.normal(size=(3, 4))
    grads = rng.normal(size=(steps, 3, 4))

    q = torch.tensor(values.copy(), requires_grad=True)
    theirs = getattr(torch.optim, kind)([q], lr=0.01, **options)
    reference = TS.CyclicLR(theirs, **settings)
    p = wnn.Parameter(values.copy(), dtype="float64")
    ours = getattr(optim, kind)([p], lr=0.01, **options)
    schedule = optim.lr_scheduler.CyclicLR(ours, **settings)
    for step in range(steps):
        q.grad = torch.tensor(grads[step])
        p.grad = grads[step].copy()
        theirs.step()
        ours.step()
        reference.step()
        schedule.step()
        if step == resume:  # the optimiser's state first, then a new schedule and its state
            saved, saved_schedule = ours.state_dict(), schedule.state_dict()
            if rebuilt:
                ours = getattr(optim, kind)([p], lr=0.01, **options)
                ours.load_state_dict(saved)
            schedule = optim.lr_scheduler.CyclicLR(ours, **settings)
            schedule.load_state_dict(saved_schedule)
            where = seeded.msg(f"resumed after step {resume}, {settings}")
            assert ours.param_groups[0]["lr"] == pytest.approx(
                theirs.param_groups[0]["lr"], rel=1e-12
            ), where
            key = "momentum" if kind == "SGD" else "betas"
            np.testing.assert_allclose(
                ours.param_groups[0][key], theirs.param_groups[0][key], rtol=1e-12, err_msg=where
            )
    # float64 on both sides: rounding of `steps` updates, far below one step at another rate
    np.testing.assert_allclose(
        p.data, q.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=seeded.msg(str(settings))
    )


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_a_cyclic_lr_ported_from_torch_mid_run_goes_on_as_torchs(seeded, kind):
    """PyTorch's optimiser and CyclicLR mid-run, ported as scheduler_from_torch says (the
    optimiser's state first, optimizer_from_torch, then the schedule's): a CyclicLR made
    between the two stepped its first step at base_lr where torch's run goes on at the
    cycle's rate. Both then run on; the weights are torch's (float64)."""
    from wxb.interop import optimizer_from_torch, scheduler_from_torch

    rng = seeded.rng
    settings = {
        "base_lr": float(rng.uniform(1e-3, 1e-2)),
        "max_lr": float(rng.uniform(0.05, 0.2)),
        "step_size_up": int(rng.integers(3, 7)),
    }
    options = {"momentum": float(rng.uniform(0.5, 0.9))} if kind == "SGD" else {}
    period = 2 * settings["step_size_up"]
    before = int(rng.choice([k for k in range(1, 3 * period) if k % period]))
    after = int(rng.integers(2, 10))
    q = torch.tensor(rng.normal(size=(3, 4)), requires_grad=True)
    theirs = getattr(torch.optim, kind)([q], lr=0.01, **options)
    reference = TS.CyclicLR(theirs, **settings)
    grads = rng.normal(size=(before + after, 3, 4))
    for step in range(before):
        q.grad = torch.tensor(grads[step])
        theirs.step()
        reference.step()
    p = wnn.Parameter(q.detach().numpy().copy(), dtype="float64")
    ours = getattr(optim, kind)([p], lr=0.01, **options)
    optimizer_from_torch(theirs, ours)
    schedule = optim.lr_scheduler.CyclicLR(ours, **settings)
    scheduler_from_torch(reference, schedule)
    where = seeded.msg(f"ported after {before} steps, {settings}")
    assert ours.param_groups[0]["lr"] == pytest.approx(theirs.param_groups[0]["lr"], rel=1e-12), (
        where
    )
    for step in range(before, before + after):
        q.grad = torch.tensor(grads[step])
        p.grad = grads[step].copy()
        theirs.step()
        ours.step()
        reference.step()
        schedule.step()
    np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=where)
