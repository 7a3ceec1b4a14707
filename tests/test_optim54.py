"""Optimisers and schedules against PyTorch 2.13: a rate a schedule took below 0 refused
naming that schedule (inside a SequentialLR or a chain too); Muon chosen by name in fit
and wxb train; option settings PyTorch users write, stepped beside torch's in float64."""

import numpy as np
import pytest

import wxb
import wxb.interop
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


# -- Muon by name ------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Detected call of")  # (their rates alone are compared)
def test_muon_by_name_is_muon_on_the_matrices_and_adamw_on_the_rest(seeded, tmp_path, capsys):
    """fit(optimizer="muon") and wxb train --optimizer muon refused the name. By name it
    is PyTorch's docs' pairing in one optimiser: Muon (its rate matched to AdamW's) for the
    2-D weights, AdamW for the rest; step for step wxb's Muon and AdamW side by side (to
    the bit), the AdamW part PyTorch's; OneCycleLR cycles Muon's momentum and AdamW's β₁
    as PyTorch's on torch.optim.Muon and AdamW."""
    rng = seeded.rng
    k, h, c = (int(v) for v in rng.integers(2, 9, size=3))
    shapes = [(h, k), (h,), (h,), (c, h), (c,)]  # a LayerNorm's weight between the two
    lr, decay, momentum = 10 ** rng.uniform(-3, -1), rng.uniform(0, 0.1), rng.uniform(0.5, 0.99)
    mine, theirs = _pair(rng, shapes)
    pair = [Parameter(p.data.copy()) for p in mine]
    named = wxb.optim.get_optimizer("muon", mine, lr=lr, weight_decay=decay, momentum=momentum)
    matrices, rest = [p for p in pair if p.ndim == 2], [p for p in pair if p.ndim != 2]
    muon = wxb.optim.Muon(
        matrices, lr=lr, weight_decay=decay, momentum=momentum, adjust_lr_fn="match_rms_adamw"
    )
    adamw = wxb.optim.AdamW(rest, lr=lr, weight_decay=decay)
    their_rest = [q for q in theirs if q.ndim != 2]
    their_adamw = torch.optim.AdamW(their_rest, lr=lr, weight_decay=decay)
    msg = seeded.msg(f"shapes {shapes}, lr {lr:.3g}, weight_decay {decay:.3g}")
    for _ in range(6):
        _grads(rng, mine, theirs)
        for p, q in zip(mine, pair, strict=True):
            q.grad = p.grad.copy()
        named.step()
        muon.step()
        adamw.step()
        their_adamw.step()
        for p, q in zip(mine, pair, strict=True):
            np.testing.assert_array_equal(p.data, q.data, err_msg=msg)
        for p, q in zip([p for p in mine if p.ndim != 2], their_rest, strict=True):
            np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-12, err_msg=msg)

    total = int(rng.integers(4, 9))
    schedule = wxb.optim.OneCycleLR(named, max_lr=lr, total_steps=total)
    their_muon = torch.optim.Muon([q for q in theirs if q.ndim == 2], lr=lr, momentum=momentum)
    theirs_cycled = [
        torch.optim.lr_scheduler.OneCycleLR(o, max_lr=lr, total_steps=total)
        for o in (their_muon, their_adamw)
    ]
    for _ in range(total - 1):
        schedule.step()
        for s in theirs_cycled:
            s.step()
        group, their_group = named.param_groups[0], their_muon.param_groups[0]
        assert group["momentum"] == pytest.approx(their_group["momentum"], rel=1e-12), msg
        group, their_group = named.param_groups[1], their_adamw.param_groups[0]
        assert group["betas"] == pytest.approx(their_group["betas"], rel=1e-12), msg

    # and by name in fit and wxb train, --momentum its Muon's
    from cli_run import run

    X = rng.normal(size=(60, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = wxb.nn.Sequential(wxb.nn.Linear(3, 8), wxb.nn.ReLU(), wxb.nn.Linear(8, 2))
    history = wxb.fit(model, X, y, loss="cross_entropy", optimizer="muon", lr=0.01, epochs=4)
    assert history.history["loss"][-1] < history.history["loss"][0], msg
    data = tmp_path / "rows.csv"
    rows = "".join(f"{a},{b},{c},{t}\n" for (a, b, c), t in zip(X, y, strict=True))
    data.write_text("a,b,c,label\n" + rows)
    code, _, err = run(
        capsys, "train", "--data", data, "--target", "label", "--hidden", "4", "--epochs", "2",
        "--optimizer", "muon", "--momentum", "0.9", "-q", "-o", tmp_path / "m.safetensors",
    )  # fmt: skip
    assert code == 0, err


# -- a PyTorch scheduler's state -------------------------------------------------------------
SCHEDULES = {
    "StepLR": {"step_size": 2, "gamma": 0.5},
    "CosineAnnealingLR": {"T_max": 6, "eta_min": 0.001},
    "OneCycleLR": {"max_lr": 0.2, "total_steps": 20},
    "ReduceLROnPlateau": {"mode": "max", "patience": 1, "cooldown": 1, "min_lr": [0.001, 0.002]},
}


@pytest.mark.parametrize("kind", sorted(SCHEDULES))
def test_a_torch_schedulers_state_is_refused_naming_the_way_that_loads_it(seeded, kind):
    """schedule.load_state_dict(torch_sched.state_dict()) listed the keys it lacked
    ("the state holds [... 'last_epoch' ...]; expected [... 'epoch' ...]"), where the
    optimiser's refusal names wxb.interop.optimizer_from_torch; now it names
    scheduler_from_torch, and that way goes on with PyTorch's rates."""
    rng = seeded.rng
    mine, theirs = _pair(rng, [(3,), (2,)])
    options = {"lr": 0.1, "momentum": 0.9}
    their_opt = torch.optim.SGD(
        [{"params": theirs[:1]}, {"params": theirs[1:], "lr": 0.05}], **options
    )
    lr_scheduler = torch.optim.lr_scheduler
    their_schedule = getattr(lr_scheduler, kind)(their_opt, **SCHEDULES[kind])
    plateau = kind == "ReduceLROnPlateau"
    for _ in range(int(rng.integers(1, 7))):
        _grads(rng, mine, theirs)
        their_opt.step()
        their_schedule.step(float(rng.choice([1.0, 2.0]))) if plateau else their_schedule.step()
    opt = wxb.optim.SGD([{"params": mine[:1]}, {"params": mine[1:], "lr": 0.05}], **options)
    schedule = getattr(wxb.optim.lr_scheduler, kind)(opt, **SCHEDULES[kind])
    with pytest.raises(ConfigError, match=r"a PyTorch scheduler's state .*scheduler_from_torch"):
        schedule.load_state_dict(their_schedule.state_dict())
    for p, q in zip(mine, theirs, strict=True):
        p.data[...] = q.detach().numpy()
    wxb.interop.optimizer_from_torch(their_opt, opt)
    wxb.interop.scheduler_from_torch(their_schedule, schedule)
    for _ in range(5):
        _grads(rng, mine, theirs)
        opt.step()
        their_opt.step()
        figure = float(rng.choice([1.0, 2.0]))
        (schedule.step(figure), their_schedule.step(figure)) if plateau else (
            schedule.step(),
            their_schedule.step(),
        )
        msg = seeded.msg(kind)
        np.testing.assert_allclose(
            schedule.get_last_lr(), their_schedule.get_last_lr(), 1e-12, 0, msg
        )
        for p, q in zip(mine, theirs, strict=True):
            np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-12, err_msg=msg)


# -- a chain inside a chain or a SequentialLR ------------------------------------------------
def test_a_chain_within_a_chain_or_a_sequential_is_refused_saying_what_it_is(seeded):
    """A ChainedScheduler given to a ChainedScheduler or a SequentialLR was refused as
    "must be a wxb schedule; got <wxb.optim.ChainedScheduler object at 0x…>": it is one.
    Now the refusal says what it is and what to write; the chain of the nested chain's
    schedules, in their order, gives the rates of PyTorch's nested chain."""
    rng = seeded.rng
    gamma, factor = rng.uniform(0.5, 0.95), rng.uniform(0.1, 0.9)
    mine, theirs = _pair(rng, [(2,)])
    opt, their_opt = wxb.optim.SGD(mine, lr=0.1), torch.optim.SGD(theirs, lr=0.1)

    def three(o, lib):
        return (
            lib.ConstantLR(o, factor, total_iters=3),
            lib.ExponentialLR(o, gamma),
            lib.StepLR(o, 2),
        )

    a, b, c = three(opt, wxb.optim)
    nested = wxb.optim.ChainedScheduler([a, b])
    with pytest.raises(ConfigError, match=r"schedulers\[0\] is a ChainedScheduler: list its"):
        wxb.optim.ChainedScheduler([nested, c])
    with pytest.raises(ConfigError, match=r"schedulers\[1\] is a ChainedScheduler: Sequential"):
        wxb.optim.SequentialLR(opt, [c, nested], milestones=[2])
    flat = wxb.optim.ChainedScheduler([a, b, c])
    ta, tb, tc = three(their_opt, torch.optim.lr_scheduler)
    ChainedScheduler = torch.optim.lr_scheduler.ChainedScheduler
    theirs_nested = ChainedScheduler([ChainedScheduler([ta, tb]), tc])
    for _ in range(8):
        opt.step()
        their_opt.step()
        flat.step()
        theirs_nested.step()
        np.testing.assert_allclose(
            flat.get_last_lr(), theirs_nested.get_last_lr(), rtol=1e-12, err_msg=seeded.msg("")
        )
