"""Optimisers, schedules and clipping over random runs, against torch.optim: the cases
the other optimiser tests leave out. Every run draws a fresh seed (printed;
``WXB_TEST_SEED`` replays it)."""

import copy
import math
import warnings

import numpy as np
import pytest

from wxb import optim
from wxb.nn.module import Parameter

torch = pytest.importorskip("torch")
TS = torch.optim.lr_scheduler


def _step_both(mine, reference, figure: float) -> None:
    """One epoch's step of a wxb schedule and its PyTorch twin (a plateau reads figure)."""
    if isinstance(mine, optim.ReduceLROnPlateau):
        mine.step(figure)
        reference.step(figure)
    else:
        mine.step()
        reference.step()


def _plateau_settings(rng):
    return {
        "mode": str(rng.choice(["min", "max"])),
        "factor": float(rng.uniform(0.1, 0.9)),
        "patience": int(rng.integers(0, 3)),
        "threshold": float(rng.choice([0.0, 1e-4, 0.1])),
        "threshold_mode": str(rng.choice(["rel", "abs"])),
        "cooldown": int(rng.integers(0, 3)),
        "min_lr": float(rng.choice([0.0, 1e-4])),
    }


def test_a_plateaus_last_rates_are_its_own_with_another_schedule_after_it(seeded):
    """get_last_lr() of a ReduceLROnPlateau stepped before another schedule on the same
    optimiser: the rates its own step left, as PyTorch's (it gave the rates after the
    other schedule's step, ×γ off at every epoch)."""
    rng = seeded.rng
    lrs = [float(rng.uniform(0.05, 1)) for _ in range(int(rng.integers(1, 3)))]
    ours = optim.SGD([{"params": [Parameter(np.zeros(2))], "lr": lr} for lr in lrs])
    theirs = torch.optim.SGD(
        [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs]
    )
    settings = _plateau_settings(rng)
    gamma = float(rng.uniform(0.5, 0.95))
    mine = [optim.ReduceLROnPlateau(ours, **settings), optim.ExponentialLR(ours, gamma)]
    reference = [TS.ReduceLROnPlateau(theirs, **settings), TS.ExponentialLR(theirs, gamma)]
    for epoch in range(int(rng.integers(3, 12))):
        figure = float(rng.normal())
        with warnings.catch_warnings():  # (no optimiser step here: only the rates)
            warnings.simplefilter("ignore", UserWarning)
            for schedule, their_schedule in zip(mine, reference, strict=True):
                _step_both(schedule, their_schedule, figure)
        for schedule, their_schedule in zip(mine, reference, strict=True):
            np.testing.assert_allclose(
                schedule.get_last_lr(),
                their_schedule.get_last_lr(),
                rtol=1e-12,
                err_msg=seeded.msg(f"epoch {epoch}: {type(schedule).__name__}.get_last_lr()"),
            )
        got = [g["lr"] for g in ours.param_groups]
        want = [g["lr"] for g in theirs.param_groups]
        assert all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(got, want, strict=True)), (
            seeded.msg(f"epoch {epoch}: {got} vs {want}")
        )


def _schedule_pair(rng):
    """One of the schedules wxb and PyTorch both have, with random settings."""
    kind = str(rng.choice(["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR"]))
    if kind == "StepLR":
        settings = {"step_size": int(rng.integers(1, 4)), "gamma": float(rng.uniform(0.1, 0.95))}
    elif kind == "MultiStepLR":
        milestones = sorted(int(m) for m in rng.integers(1, 12, size=int(rng.integers(1, 4))))
        settings = {"milestones": milestones, "gamma": float(rng.uniform(0.1, 0.95))}
    elif kind == "ExponentialLR":
        settings = {"gamma": float(rng.uniform(0.5, 0.99))}
    else:
        settings = {"T_max": int(rng.integers(1, 8)), "eta_min": float(rng.choice([0.0, 1e-3]))}
    return getattr(optim, kind), getattr(TS, kind), settings


def _sgd_pair(lrs):
    ours = optim.SGD([{"params": [Parameter(np.zeros(2))], "lr": lr} for lr in lrs])
    theirs = torch.optim.SGD(
        [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs]
    )
    return ours, theirs


def test_a_schedule_resumed_with_last_epoch_goes_on_as_pytorchs(seeded):
    """PyTorch's resume: the optimiser's state loaded, then ``StepLR(opt, …,
    last_epoch=k)``; wxb's schedules refused the argument (TypeError)."""
    rng = seeded.rng
    for _ in range(10):
        ours_kind, their_kind, settings = _schedule_pair(rng)
        lrs = [float(rng.uniform(0.01, 1)) for _ in range(int(rng.integers(1, 3)))]
        ours, theirs = _sgd_pair(lrs)
        mine, reference = ours_kind(ours, **settings), their_kind(theirs, **settings)
        epochs = int(rng.integers(0, 10))
        with warnings.catch_warnings():  # (no optimiser step here: only the rates)
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(epochs):
                mine.step()
                reference.step()
            resumed, their_resumed = _sgd_pair(lrs)
            resumed.load_state_dict(ours.state_dict())
            their_resumed.load_state_dict(theirs.state_dict())
            if rng.random() < 0.3:  # a rate set by hand in the resumed run
                lr = float(rng.uniform(0.01, 1))
                resumed.param_groups[0]["lr"] = their_resumed.param_groups[0]["lr"] = lr
            last_epoch = int(rng.integers(max(0, epochs - 2), epochs + 2))
            mine = ours_kind(resumed, **settings, last_epoch=last_epoch)
            reference = their_kind(their_resumed, **settings, last_epoch=last_epoch)
            for epoch in range(8):
                got = [g["lr"] for g in resumed.param_groups]
                want = [g["lr"] for g in their_resumed.param_groups]
                if min(want) < 0:  # PyTorch's cosine below 0 (wxb's stays above: documented)
                    break
                where = f"{ours_kind.__name__}({settings}) last_epoch={last_epoch}, step {epoch}"
                np.testing.assert_allclose(got, want, rtol=1e-10, err_msg=seeded.msg(where))
                np.testing.assert_allclose(
                    mine.get_last_lr(),
                    reference.get_last_lr(),
                    rtol=1e-10,
                    err_msg=seeded.msg(where),
                )
                mine.step()
                reference.step()


def test_last_epoch_without_an_initial_rate_or_of_a_bad_kind_is_refused(rng):
    from wxb.errors import ConfigError

    ours, theirs = _sgd_pair([0.1])
    with pytest.raises(KeyError):  # PyTorch refuses it too
        TS.StepLR(theirs, 2, last_epoch=3)
    with pytest.raises(ConfigError, match=r"param_groups\[0\] has no 'initial_lr'"):
        optim.StepLR(ours, 2, last_epoch=3)
    for bad in (-2, 1.5, True, "3"):
        with pytest.raises(ConfigError, match="last_epoch must be a whole number"):
            optim.ExponentialLR(ours, 0.9, last_epoch=bad)


# -- a long random hand loop beside torch.optim ------------------------------------------------
KINDS = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad")


def _options(rng, kind):
    """Random settings of one group (any key may be left to the defaults)."""
    o = {"lr": float(10 ** rng.uniform(-3, -0.7))} if rng.random() < 0.8 else {}
    if kind == "SGD":
        if rng.random() < 0.7:
            o["momentum"] = float(rng.choice([rng.uniform(0.1, 0.99), 1.0]))
            if rng.random() < 0.4:
                o["nesterov"] = True
            elif rng.random() < 0.5:
                o["dampening"] = float(rng.uniform(0, 1))
    elif kind in ("Adam", "AdamW"):
        if rng.random() < 0.6:
            o["betas"] = (
                float(rng.choice([0.0, rng.uniform(0, 0.99)])),
                float(rng.uniform(0.5, 0.9999)),
            )
        if rng.random() < 0.4:
            o["eps"] = float(rng.choice([1e-8, 1e-3, 0.5]))
    elif kind == "RMSprop":
        if rng.random() < 0.5:
            o["alpha"] = float(rng.uniform(0.3, 0.999))
        if rng.random() < 0.5:
            o["momentum"] = float(rng.uniform(0, 0.99))
        o["centered"] = bool(rng.random() < 0.5)
    else:
        if rng.random() < 0.5:
            o["lr_decay"] = float(rng.uniform(0, 0.5))
        if rng.random() < 0.3:
            o["eps"] = float(rng.choice([1e-10, 1e-3]))
    if rng.random() < 0.5:
        o["weight_decay"] = float(rng.uniform(0, 0.3))
    return o


def _schedules(rng, ours, theirs, epochs):
    """One or two schedules on both optimisers (a cosine's floor 0: below a floor above
    zero PyTorch's cosine may fall below zero, where wxb's stays above on purpose)."""
    pairs = []
    for _ in range(int(rng.integers(1, 3))):
        kind = str(
            rng.choice(["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "Plateau"])
        )
        if kind == "Plateau":
            settings = _plateau_settings(rng)
            pairs.append(
                (
                    optim.ReduceLROnPlateau(ours, **settings),
                    TS.ReduceLROnPlateau(theirs, **settings),
                )
            )
            continue
        if kind == "StepLR":
            settings = {"step_size": int(rng.integers(1, 5)), "gamma": float(rng.uniform(0.1, 1.2))}
        elif kind == "MultiStepLR":
            milestones = [int(m) for m in rng.integers(1, epochs + 2, size=int(rng.integers(1, 4)))]
            settings = {"milestones": milestones, "gamma": float(rng.uniform(0.1, 1.2))}
        elif kind == "ExponentialLR":
            settings = {"gamma": float(rng.uniform(0.7, 1.05))}
        else:
            settings = {"T_max": int(rng.integers(1, epochs + 2))}
        pairs.append(
            (getattr(optim, kind)(ours, **settings), getattr(TS, kind)(theirs, **settings))
        )
    return pairs


def _one_hand_run(rng, msg):
    kind = str(rng.choice(KINDS))
    dtype = np.dtype(str(rng.choice(["float64", "float32"])))
    rtol, atol = (1e-9, 1e-12) if dtype == np.float64 else (3e-3, 3e-5)
    count = int(rng.integers(2, 6))
    shapes = [
        tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(0, 3))))
        for _ in range(count)
    ]
    arrays = [rng.normal(size=s).astype(dtype) for s in shapes]
    ours = [Parameter(a.copy(), dtype=dtype.name) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    late = count - 1  # the last parameter joins in a group added later
    cut = int(rng.integers(1, late + 1))
    specs = [_options(rng, kind) for _ in range(2)]
    defaults = _options(rng, kind)
    if kind == "SGD":
        for spec in (*specs, defaults):
            if spec.get("nesterov"):
                spec.update(momentum=spec.get("momentum") or 0.5, dampening=0.0)
        if defaults.get("nesterov"):  # a group's own settings must agree with it
            for spec in specs:
                spec.setdefault("momentum", defaults["momentum"])
                spec["dampening"] = 0.0
    if kind == "Adagrad" and rng.random() < 0.5:
        defaults["initial_accumulator_value"] = float(rng.uniform(0, 1))
    groups = [(0, cut), (cut, late)] if cut < late else [(0, late)]
    ours_opt = getattr(optim, kind)(
        [{"params": ours[a:b], **s} for (a, b), s in zip(groups, specs, strict=False)], **defaults
    )
    their_opt = getattr(torch.optim, kind)(
        [{"params": theirs[a:b], **s} for (a, b), s in zip(groups, specs, strict=False)], **defaults
    )
    epochs = int(rng.integers(8, 20))
    schedules = _schedules(rng, ours_opt, their_opt, epochs)
    joins = int(rng.integers(0, epochs))
    if any(isinstance(mine, optim.CosineAnnealingLR) for mine, _ in schedules):
        joins = -1  # (PyTorch's cosine fails on a group added since, at its trough)
    clipping = rng.random() < 0.6
    where = f"{msg}: {kind} {dtype.name} groups {specs} defaults {defaults}"
    for epoch in range(epochs):
        if epoch == joins:
            spec = {k: v for k, v in _options(rng, kind).items() if k != "nesterov"}
            if kind == "SGD" and defaults.get("nesterov"):
                spec.update(momentum=defaults["momentum"], dampening=0.0)
            ours_opt.add_param_group({"params": [ours[late]], **spec})
            their_opt.add_param_group({"params": [theirs[late]], **spec})
        held = len(ours_opt.params)
        for p, q in zip(ours[:held], theirs[:held], strict=True):
            if rng.random() < 0.2:  # no gradient: not stepped (no decay, no count)
                p.grad = q.grad = None
                continue
            g = (rng.normal(size=p.shape) * float(rng.choice([0.01, 1, 10]))).astype(dtype)
            p.grad, q.grad = g.copy(), torch.tensor(g)
        if rng.random() < 0.15:  # a rate set by hand
            index = int(rng.integers(len(ours_opt.param_groups)))
            lr = float(10 ** rng.uniform(-3, -1))
            ours_opt.param_groups[index]["lr"] = their_opt.param_groups[index]["lr"] = lr
        if clipping:
            norm_type = float(rng.choice([1.0, 2.0, math.inf, 3.0]))
            max_norm = float(rng.uniform(0.1, 5))
            total = optim.clip_grad_norm_(ours[:held], max_norm, norm_type=norm_type)
            their_total = torch.nn.utils.clip_grad_norm_(theirs[:held], max_norm, norm_type)
            assert math.isclose(total, float(their_total), rel_tol=rtol), seeded_where(
                where, epoch, f"norm {norm_type}: {total} vs {float(their_total)}"
            )
        ours_opt.step()
        their_opt.step()
        figure = float(rng.normal())
        for mine, reference in schedules:
            _step_both(mine, reference, figure)
            np.testing.assert_allclose(
                mine.get_last_lr(),
                reference.get_last_lr(),
                rtol=1e-12,
                err_msg=seeded_where(where, epoch, f"{type(mine).__name__}.get_last_lr()"),
            )
        for i, (p, q) in enumerate(zip(ours, theirs, strict=True)):
            np.testing.assert_allclose(
                p.data, q.detach().numpy(), rtol=rtol, atol=atol,
                err_msg=seeded_where(where, epoch, f"parameter {i}"),
            )  # fmt: skip


def seeded_where(where, epoch, what):
    return f"{where}; epoch {epoch}: {what}"


@pytest.mark.parametrize("route", ["compiled", "numpy"])
def test_long_random_hand_loops_are_torch_optims(seeded, route):
    """Every optimiser with random settings per group, a group added mid-run, gradients
    missing now and then, rates set by hand, clipping by norms 1, 2, 3 and inf, one or
    two schedules: step by step beside torch.optim, on both kernel routes."""
    from wxb import kernels

    if route == "compiled" and not kernels.one_pass():
        pytest.skip("numba is not installed")
    previous = kernels.route().split()[0]
    kernels.use("numpy" if route == "numpy" else "auto")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for run in range(12):
                _one_hand_run(seeded.rng, seeded.msg(f"run {run}"))
    finally:
        kernels.use("auto" if previous == "compiled" else "numpy")


def test_a_schedule_moved_by_setting_last_epoch_goes_on_as_pytorchs(seeded):
    """``scheduler.last_epoch = k`` (PyTorch users' way of moving a schedule on a resume):
    wxb's schedules kept an attribute of that name and went on from their own epoch
    (StepLR at epoch 1 moved to 5: the next rate η·γ³ where PyTorch's gives η·γ)."""
    rng = seeded.rng
    for _ in range(10):
        ours_kind, their_kind, settings = _schedule_pair(rng)
        ours, theirs = _sgd_pair([float(rng.uniform(0.01, 1)) for _ in range(2)])
        mine, reference = ours_kind(ours, **settings), their_kind(theirs, **settings)
        moved_at, moved_to = int(rng.integers(0, 6)), int(rng.integers(0, 15))
        with warnings.catch_warnings():  # (no optimiser step here: only the rates)
            warnings.simplefilter("ignore", UserWarning)
            for epoch in range(12):
                if epoch == moved_at:
                    mine.last_epoch = reference.last_epoch = moved_to
                mine.step()
                reference.step()
                want = [g["lr"] for g in theirs.param_groups]
                if min(want) < 0:  # PyTorch's cosine below 0 (wxb's stays above: documented)
                    break
                where = f"{ours_kind.__name__}({settings}) moved to {moved_to} at {moved_at}"
                got = [g["lr"] for g in ours.param_groups]
                np.testing.assert_allclose(
                    got, want, rtol=1e-10, err_msg=seeded.msg(f"{where}: epoch {epoch}")
                )
                assert mine.last_epoch == reference.last_epoch, seeded.msg(where)
            assert optim.StepLR(ours, 3).last_epoch == 0  # read before any move, as torch's


def test_a_plateaus_floors_set_through_min_lrs_hold_as_pytorchs(seeded):
    """``scheduler.min_lrs = [...]`` (PyTorch's attribute, which its own error after an
    add_param_group asks for): wxb kept an attribute of that name and cut every rate
    below the floors set there."""
    rng = seeded.rng
    lrs = [float(rng.uniform(0.1, 1)) for _ in range(2)]
    ours, theirs = _sgd_pair(lrs)
    settings = {"factor": float(rng.uniform(0.1, 0.5)), "patience": 0, "threshold": 0.0}
    mine = optim.ReduceLROnPlateau(ours, **settings)
    reference = TS.ReduceLROnPlateau(theirs, **settings)
    late = float(rng.uniform(0.1, 1))
    ours.add_param_group({"params": [Parameter(np.zeros(2))], "lr": late})
    theirs.add_param_group({"params": [torch.zeros(2, requires_grad=True)], "lr": late})
    floors = [float(f) for f in rng.uniform(0.01, 0.09, size=3)]
    mine.min_lrs = floors
    reference.min_lrs = floors
    assert mine.min_lrs == reference.min_lrs
    for epoch in range(12):  # nothing improves: a cut every epoch, down to the floors
        mine.step(1.0)
        reference.step(1.0)
        got = [g["lr"] for g in ours.param_groups]
        want = [g["lr"] for g in theirs.param_groups]
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=seeded.msg(f"epoch {epoch}"))
    np.testing.assert_allclose(got, floors, rtol=1e-12, err_msg=seeded.msg("the floors"))


@pytest.mark.parametrize("how", ["del", "pop", "assign", "clear"])
def test_forgetting_a_parameters_state_starts_it_again_as_pytorchs(seeded, how):
    """``del optimizer.state[p]``, ``optimizer.state.pop(p)``, ``optimizer.state[p] = {}``
    or ``optimizer.state.clear()`` (PyTorch's way of restarting a re-initialised layer's
    moments): wxb's ``state`` was a copy, so the moments and step counts went on as before
    (Adam's bias correction too) without a word."""
    rng = seeded.rng
    for kind in KINDS:
        arrays = [rng.normal(size=s) for s in ((3, 2), (2,), (4,))]
        ours = [Parameter(a.copy()) for a in arrays]
        theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
        options = {"lr": 0.05, "weight_decay": 0.1}
        if kind in ("SGD", "RMSprop"):
            options["momentum"] = 0.9
        if kind == "Adagrad":
            options["initial_accumulator_value"] = float(rng.uniform(0, 1))
        ours_opt = getattr(optim, kind)(ours, **options)
        their_opt = getattr(torch.optim, kind)(theirs, **options)
        forget = int(rng.integers(len(ours)))
        for step in range(6):
            for p, q in zip(ours, theirs, strict=True):
                g = rng.normal(size=p.shape)
                p.grad, q.grad = g.copy(), torch.tensor(g)
            ours_opt.step()
            their_opt.step()
            if step == 2:
                for state, params in ((ours_opt.state, ours), (their_opt.state, theirs)):
                    if how == "del":
                        del state[params[forget]]
                    elif how == "pop":
                        state.pop(params[forget])
                    elif how == "assign":
                        state[params[forget]] = {}
                    else:
                        state.clear()
            for i, (p, q) in enumerate(zip(ours, theirs, strict=True)):
                np.testing.assert_allclose(
                    p.data,
                    q.detach().numpy(),
                    rtol=1e-10,
                    atol=1e-13,
                    err_msg=seeded.msg(f"{kind} {how} parameter {forget}: step {step}, #{i}"),
                )


def test_an_unstepped_parameters_state_reads_empty_and_only_empty_goes_in(rng):
    from wxb.errors import ConfigError

    p = Parameter(rng.normal(size=3))
    opt = optim.Adam([p])
    assert opt.state[p] == {}  # PyTorch's defaultdict
    with pytest.raises(ConfigError, match=r"only \{\} may be assigned"):
        opt.state[p] = {"step": 3}
    p.grad = rng.normal(size=3)
    opt.step()
    kept = copy.deepcopy(opt.state)  # a snapshot: a plain dict of copies
    (entry,) = kept.values()  # (its key a copy of p, as torch's deepcopy makes)
    assert type(kept) is dict and entry["step"] == 1
    entry["moment1"][...] = 7.0
    assert not np.any(opt.state[p]["moment1"] == 7.0)
