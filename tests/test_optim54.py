"""Optimisers and schedules against PyTorch 2.13: a rate a schedule took below 0 refused
naming that schedule (inside a SequentialLR or a chain too); Muon chosen by name in fit
and wxb train; option settings PyTorch users write, stepped beside torch's in float64."""

import numpy as np
import pytest

import wxb
from wxb.errors import ConfigError
from wxb.nn import Parameter

torch = pytest.importorskip("torch")


def _pair(rng, shapes):
    """wxb Parameters and torch float64 ones holding the same random values."""
    values = [rng.normal(size=s) for s in shapes]
    mine = [Parameter(v.copy()) for v in values]
    theirs = [torch.nn.Parameter(torch.tensor(v)) for v in values]
    return mine, theirs


def _grads(rng, mine, theirs):
    for p, q in zip(mine, theirs, strict=True):
        g = rng.normal(size=p.shape)
        p.grad, q.grad = g.copy(), torch.tensor(g)


# -- a negative scheduled rate names its schedule ---------------------------------------------
def test_a_negative_scheduled_rate_is_refused_naming_the_schedule(seeded):
    """OneCycleLR's linear anneal stepped past total_steps goes below 0 (PyTorch's too);
    the optimiser's next step refused it without saying which schedule set it, so that a
    SequentialLR of three left the user guessing. The rates up to there are PyTorch's."""
    rng = seeded.rng
    first, second = int(rng.integers(3, 7)), int(rng.integers(3, 7))
    mine, theirs = _pair(rng, [(3,)])
    opt = wxb.optim.SGD(mine, lr=0.1, momentum=0.9)
    their_opt = torch.optim.SGD(theirs, lr=0.1, momentum=0.9)

    def three(o, lib):
        return [
            lib.OneCycleLR(o, max_lr=0.1, total_steps=first + 1),
            lib.OneCycleLR(o, max_lr=0.2, total_steps=second, anneal_strategy="linear"),
            lib.CyclicLR(o, 0.01, 0.1, step_size_up=2),
        ]

    lr_scheduler = torch.optim.lr_scheduler
    seq = wxb.optim.SequentialLR(opt, three(opt, wxb.optim), milestones=[first, first + 99])
    their_seq = lr_scheduler.SequentialLR(
        their_opt, three(their_opt, lr_scheduler), milestones=[first, first + 99]
    )
    msg = seeded.msg(f"first {first}, second {second}")
    for _ in range(first + second):  # the last step takes the second past its end
        _grads(rng, mine, theirs)
        opt.step()
        their_opt.step()
        seq.step()
        their_seq.step()
        np.testing.assert_allclose(seq.get_last_lr(), their_seq.get_last_lr(), rtol=1e-12)
        np.testing.assert_allclose(mine[0].data, theirs[0].detach().numpy(), rtol=1e-12)
    assert seq.get_last_lr()[0] < 0, msg
    _grads(rng, mine, theirs)
    with pytest.raises(ConfigError) as refused:
        opt.step()
    said = str(refused.value)
    assert "schedulers[1], OneCycleLR" in said, msg + said
    assert f"total_steps={second}" in said, msg + said

    # a chain names the one that took it below 0, not the one after it
    opt = wxb.optim.SGD(mine, lr=0.1)
    chain = wxb.optim.ChainedScheduler(
        [wxb.optim.LambdaLR(opt, lambda e: 1 - e), wxb.optim.ExponentialLR(opt, 0.5)]
    )
    chain.step()
    chain.step()
    with pytest.raises(ConfigError, match=r"set by LambdaLR at its step 2$"):
        opt.step()
