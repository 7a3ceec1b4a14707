"""CosineAnnealingWarmRestarts stepped with a fractional epoch (``step(epoch + i / iters)``,
PyTorch's once-a-batch form) after its state was loaded: ``get_last_lr()`` is the rate
that step set, as PyTorch's. It returned the loaded rate until a plain ``step()``, while
the groups held the new one (the hand-written loop of test_differential caught it once)."""

import warnings

import numpy as np
import pytest

import wxb

torch = pytest.importorskip("torch")
TS = torch.optim.lr_scheduler
pytestmark = pytest.mark.filterwarnings("ignore:The epoch parameter in `scheduler.step\\(\\)`")


def _pair(lr, settings):
    w = wxb.nn.Parameter(np.ones(3))
    t = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    w_opt, t_opt = wxb.optim.SGD([w], lr=lr), torch.optim.SGD([t], lr=lr)
    return (
        w_opt,
        t_opt,
        wxb.optim.CosineAnnealingWarmRestarts(w_opt, **settings),
        TS.CosineAnnealingWarmRestarts(t_opt, **settings),
    )


@pytest.mark.parametrize("resume", ["loaded onto itself", "loaded into new objects"])
def test_a_fractional_step_after_a_load_reports_the_rate_it_set(seeded, rng, resume):
    settings = {
        "T_0": int(rng.integers(1, 4)),
        "T_mult": int(rng.integers(1, 3)),
        "eta_min": float(rng.choice([0.0, 1e-3])),
    }
    lr = float(rng.uniform(0.01, 0.5))
    per_epoch = int(rng.integers(2, 5))  # batches an epoch: step(k / per_epoch)
    steps = int(rng.integers(4, 12))
    load_at = int(rng.integers(1, steps))
    w_opt, t_opt, w_sched, t_sched = _pair(lr, settings)
    for k in range(1, steps + 1):
        if k == load_at:
            if resume == "loaded onto itself":
                w_opt.load_state_dict(w_opt.state_dict())
                t_opt.load_state_dict(t_opt.state_dict())
                w_sched.load_state_dict(w_sched.state_dict())
                t_sched.load_state_dict(t_sched.state_dict())
            else:  # a resumed run: optimiser and schedule made again, their states loaded
                w_new, t_new, w_next, t_next = _pair(lr, settings)
                w_new.load_state_dict(w_opt.state_dict())
                t_new.load_state_dict(t_opt.state_dict())
                w_next.load_state_dict(w_sched.state_dict())
                t_next.load_state_dict(t_sched.state_dict())
                w_opt, t_opt, w_sched, t_sched = w_new, t_new, w_next, t_next
        w_opt.step()
        t_opt.step()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w_sched.step(k / per_epoch)
            t_sched.step(k / per_epoch)
        at = f"{settings}, lr {lr}, step({k}/{per_epoch}), loaded before step {load_at}"
        np.testing.assert_allclose(w_sched.get_last_lr(), t_sched.get_last_lr(), 1e-12, 0, at)
        assert w_opt.param_groups[0]["lr"] == pytest.approx(t_opt.param_groups[0]["lr"], 1e-12)
        # what the groups hold is what get_last_lr() says, on both sides
        assert t_sched.get_last_lr() == [g["lr"] for g in t_opt.param_groups]
        assert w_sched.get_last_lr() == [g["lr"] for g in w_opt.param_groups], at
