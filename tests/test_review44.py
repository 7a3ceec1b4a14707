"""Review of the day's merges: defects found against PyTorch, each test failing before
its fix."""

import warnings

import numpy as np
import pytest

import wxb
from wxb.optim import lr_scheduler as ours_module

torch = pytest.importorskip("torch")
theirs_module = torch.optim.lr_scheduler


def _twin_sgd(rng, groups):
    rates = [float(v) for v in rng.uniform(0.01, 0.5, groups)]
    ours = wxb.optim.SGD(
        [{"params": wxb.nn.Dense(2, 2).parameters(), "lr": r} for r in rates], momentum=0.9
    )
    theirs = torch.optim.SGD(
        [{"params": torch.nn.Linear(2, 2).parameters(), "lr": r} for r in rates], momentum=0.9
    )
    return ours, theirs


def test_a_rate_set_by_hand_after_a_sequences_polynomial_ends_is_kept(seeded):
    """A PolynomialLR in a SequentialLR, past its total_iters, took a rate set by hand
    to 0 at the next step (the cosine, linear or constant before it, then 0.0 where
    PyTorch's gives the rate set, 0.2537): alone it kept it, as PyTorch's does."""
    rng = seeded.rng
    for _ in range(5):
        groups = int(rng.integers(1, 4))
        ours, theirs = _twin_sgd(rng, groups)
        first = {
            "ConstantLR": {"factor": float(rng.uniform(0.1, 1)), "total_iters": 2},
            "LinearLR": {"start_factor": float(rng.uniform(0.1, 1)), "total_iters": 3},
            "ExponentialLR": {"gamma": float(rng.uniform(0.5, 0.99))},
        }
        name = str(rng.choice(list(first)))
        milestone = int(rng.integers(1, 5))
        poly = {"total_iters": int(rng.integers(1, 5)), "power": float(rng.uniform(0.5, 3))}
        steps = milestone + poly["total_iters"] + int(rng.integers(2, 6))
        by_hand = int(rng.integers(milestone + poly["total_iters"], steps))

        def make(module, opt, name=name, milestone=milestone, poly=poly, first=first):
            return module.SequentialLR(
                opt,
                [getattr(module, name)(opt, **first[name]), module.PolynomialLR(opt, **poly)],
                [milestone],
            )

        schedule = make(ours_module, ours)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (PyTorch's: step(epoch) at the milestone)
            their_schedule = make(theirs_module, theirs)
            for step in range(steps + 1):
                msg = seeded.msg(f"{name} {first[name]} then {poly} from {milestone}, "
                                 f"by hand at {by_hand}, step {step}")  # fmt: skip
                np.testing.assert_allclose(
                    [g["lr"] for g in ours.param_groups],
                    [g["lr"] for g in theirs.param_groups],
                    rtol=1e-12, err_msg=msg,
                )  # fmt: skip
                if step == by_hand:
                    for mine, their in zip(ours.param_groups, theirs.param_groups, strict=True):
                        mine["lr"] = their["lr"] = float(rng.uniform(0.01, 0.5))
                if step < steps:
                    schedule.step()
                    their_schedule.step()
