"""Parameter groups, hyperparameter checks, clipping and frozen parameters, against PyTorch.

Every comparison is in float64 on random parameters, gradients and settings drawn
fresh each run (the seed is printed; ``WXB_TEST_SEED`` replays it).
"""

import math
import os

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as TS

import wxb
from wxb import ops, optim
from wxb.errors import ConfigError
from wxb.nn import CrossEntropyLoss, Dense, Sequential, Tanh
from wxb.nn.module import Parameter
from wxb.optim import (
    SGD,
    Adam,
    AdamW,
    CosineAnnealingLR,
    FlatParameters,
    InverseScalingLR,
    StepLR,
    clip_grad_norm_,
)

RTOL, ATOL = 1e-10, 1e-13  # float64, a few steps: rounding of differently ordered sums
OURS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}
THEIRS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


# -- helpers ---------------------------------------------------------------------------------
def random_arrays(rng, count):
    """Arrays of random shapes: matrices, vectors and now and then a 0-d one."""
    shapes = []
    for _ in range(count):
        kind = rng.integers(3)
        shapes.append(
            () if kind == 0 else tuple(int(d) for d in rng.integers(1, 9, size=int(kind)))
        )
    return [rng.normal(size=s) for s in shapes]


def twins(arrays):
    ours = [Parameter(a, dtype="float64") for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    return ours, theirs


def settings(rng, name, defaults=False):
    """Random hyperparameters for one group of optimiser ``name``; some keys left out."""
    options = {"lr": float(rng.uniform(1e-3, 5e-2))}
    if name == "sgd":
        options["momentum"] = float(rng.choice([0.0, rng.uniform(0.5, 0.95)]))
        if options["momentum"] and not defaults and rng.random() < 0.5:
            options["nesterov"] = True
        elif options["momentum"] and not defaults:
            options["dampening"] = float(rng.uniform(0, 0.5))
    else:
        options["betas"] = (float(rng.uniform(0.8, 0.95)), float(rng.uniform(0.99, 0.9999)))
        options["eps"] = float(10 ** rng.uniform(-10, -6))
    options["weight_decay"] = float(rng.choice([0.0, rng.uniform(1e-3, 0.1)]))
    kept = {k: v for k, v in options.items() if k in ("lr", "nesterov") or rng.random() < 0.7}
    if "nesterov" in kept:  # Nesterov needs the group's own momentum
        kept["momentum"] = options["momentum"]
    return kept


def grouping(rng, name, n, groups=None):
    """A random split of ``n`` parameters into groups: (bounds, group settings, defaults)."""
    if groups is None:
        groups = int(rng.integers(2, min(4, n) + 1))
    cuts = sorted(int(c) for c in rng.choice(np.arange(1, n), size=groups - 1, replace=False))
    bounds = list(zip([0, *cuts], [*cuts, n], strict=True))
    return bounds, [settings(rng, name) for _ in bounds], settings(rng, name, defaults=True)


def build(cls, params, split):
    bounds, specs, defaults = split
    return cls(
        [{"params": params[a:b], **spec} for (a, b), spec in zip(bounds, specs, strict=True)],
        **defaults,
    )


def grouped(rng, name, ours, theirs, groups=None):
    """The same random grouping of the parameters for both; returns both optimisers."""
    split = grouping(rng, name, len(ours), groups)
    return build(OURS[name], ours, split), build(THEIRS[name], theirs, split)


def set_grads(rng, ours, theirs, missing=0.0):
    """The same random gradient on both sides; each is None with probability ``missing``."""
    for p, q in zip(ours, theirs, strict=True):
        if rng.random() < missing:
            p.grad, q.grad = None, None
        else:
            g = rng.normal(size=p.shape)
            p.grad = g.copy() if g.ndim else np.float64(g)  # a 0-d gradient: a NumPy scalar
            q.grad = torch.tensor(g, dtype=torch.float64)


def step_both(rng, ours, theirs, opt, ref, schedules):
    """One epoch on both sides: fresh gradients, each optimiser's step, then each pair of
    schedules (wxb's, PyTorch's) stepped."""
    set_grads(rng, ours, theirs)
    opt.step()
    ref.step()
    for mine, torchs in schedules:
        mine.step()
        torchs.step()


def assert_same_rates(seeded, opt, ref, where):
    """Each group's lr as PyTorch's optimiser ``ref`` has it."""
    for i, (a, b) in enumerate(zip(opt.param_groups, ref.param_groups, strict=True)):
        assert math.isclose(a["lr"], b["lr"], rel_tol=1e-12), seeded.msg(
            f"{where} group {i}: {a['lr']} vs {b['lr']}"
        )


def assert_same(seeded, ours, theirs, where):
    for i, (p, q) in enumerate(zip(ours, theirs, strict=True)):
        np.testing.assert_allclose(
            p.data, q.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg=seeded.msg(f"{where}: #{i}")
        )


# -- parameter groups ------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(OURS))
def test_parameter_groups_match_torch(seeded, name):
    rng = seeded.rng
    ours, theirs = twins(random_arrays(rng, int(rng.integers(3, 8))))
    opt, ref = grouped(rng, name, ours, theirs)
    assert len(opt.param_groups) == len(ref.param_groups)
    for ours_group, theirs_group in zip(opt.param_groups, ref.param_groups, strict=True):
        for key in opt.hyperparameters:  # missing keys took the constructor's values
            assert ours_group[key] == pytest.approx(theirs_group[key]), key
    assert [id(p) for g in opt.param_groups for p in g["params"]] == [id(p) for p in ours]
    assert opt.params == ours
    for step in range(6):
        set_grads(rng, ours, theirs, missing=0.25 if step in (2, 3) else 0.0)
        opt.step()
        ref.step()
        assert_same(seeded, ours, theirs, f"{name} step {step + 1}")


@pytest.mark.parametrize("name", list(OURS))
def test_edited_group_values_take_effect_at_the_next_step(seeded, name):
    rng = seeded.rng
    ours, theirs = twins(random_arrays(rng, int(rng.integers(3, 7))))
    opt, ref = grouped(rng, name, ours, theirs)
    for step in range(5):
        if step == 2:
            factor = float(rng.uniform(0.05, 0.5))
            for a, b in zip(opt.param_groups, ref.param_groups, strict=True):
                a["lr"] *= factor
                b["lr"] *= factor
            wd = float(rng.uniform(0, 0.1))
            opt.param_groups[-1]["weight_decay"] = ref.param_groups[-1]["weight_decay"] = wd
        set_grads(rng, ours, theirs)
        opt.step()
        ref.step()
        assert_same(seeded, ours, theirs, f"{name} step {step + 1}")


def test_momentum_turned_on_later_starts_its_velocity_as_torch(seeded):
    """PyTorch makes a momentum buffer at a parameter's first momentum update: v = g."""
    rng = seeded.rng
    ours, theirs = twins(random_arrays(rng, 4))
    lr = float(rng.uniform(0.01, 0.1))
    opt = SGD([{"params": ours[:2]}, {"params": ours[2:], "momentum": 0.9}], lr=lr)
    ref = torch.optim.SGD([{"params": theirs[:2]}, {"params": theirs[2:], "momentum": 0.9}], lr=lr)
    for step in range(6):
        if step == 2:
            for g in (opt.param_groups[0], ref.param_groups[0]):
                g["momentum"], g["dampening"] = 0.8, 0.3
        set_grads(rng, ours, theirs, missing=0.3 if step == 3 else 0.0)
        opt.step()
        ref.step()
        assert_same(seeded, ours, theirs, f"step {step + 1}")


@pytest.mark.parametrize("name", list(OURS))
def test_add_param_group_matches_torch(seeded, name):
    rng = seeded.rng
    ours, theirs = twins(random_arrays(rng, 5))
    opt, ref = grouped(rng, name, ours[:3], theirs[:3], groups=2)
    for step in range(5):
        if step == 2:
            spec = settings(rng, name)
            opt.add_param_group({"params": ours[3:], **spec})
            ref.add_param_group({"params": theirs[3:], **spec})
            assert opt.params == ours and opt.param_steps[3:] == [0, 0]
        set_grads(rng, ours[: len(opt.params)], theirs[: len(opt.params)])
        opt.step()
        ref.step()
        assert_same(seeded, ours, theirs, f"{name} step {step + 1}")


@pytest.mark.parametrize("name", ["sgd_momentum", "adam", "adamw"])
def test_grouped_flat_chunked_threaded_update_equals_one_array_at_a_time(rng, monkeypatch, name):
    """With several groups, each group's walk over its stretch of the flat buffer gives
    bit for bit the weights of one update per array."""
    kind = "sgd" if name.startswith("sgd") else name
    arrays = random_arrays(rng, int(rng.integers(3, 8)))
    split = grouping(rng, kind, len(arrays))
    if name == "sgd_momentum":
        split[2]["momentum"] = 0.9
    grads = [[rng.normal(size=a.shape) for a in arrays] for _ in range(4)]

    def run(flat: bool):
        params = [Parameter(a, dtype="float64") for a in arrays]
        opt = build(OURS[kind], params, split)
        assert (opt.flat is not None) == flat
        opt.threaded_from = int(rng.integers(1, 50))
        for step_grads in grads:
            for p, g in zip(params, step_grads, strict=True):
                p.grad = g.copy()
            opt.step()
        return params

    monkeypatch.setattr(FlatParameters, "possible", classmethod(lambda cls, ps: False))
    expected = run(flat=False)
    monkeypatch.undo()
    monkeypatch.setattr(optim, "CHUNK", int(rng.integers(1, 16)))
    monkeypatch.setattr(optim, "update_threads", lambda: int(rng.integers(2, 5)))
    for a, b in zip(run(flat=True), expected, strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_one_group_given_as_a_dict_is_the_plain_list_bit_for_bit(rng):
    arrays = random_arrays(rng, 4)
    grads = [[rng.normal(size=a.shape) for a in arrays] for _ in range(3)]
    runs = []
    for as_groups in (False, True):
        params = [Parameter(a, dtype="float64") for a in arrays]
        opt = Adam([{"params": params}] if as_groups else params, lr=0.01, weight_decay=1e-3)
        for step_grads in grads:
            for p, g in zip(params, step_grads, strict=True):
                p.grad = g.copy()
            opt.step()
        runs.append(params)
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_groups_share_one_flat_buffer_and_every_parameter_has_its_gradient_view(rng):
    params = [Parameter(a, dtype="float64") for a in random_arrays(rng, 5)]
    opt = Adam([{"params": params[:2]}, {"params": params[2:], "lr": 0.1}])
    views = opt.grad_buffers()
    assert views is not None and len(views) == len(params)
    for p, view in zip(params, views, strict=True):
        assert p.grad_buffer is view and view.shape == p.shape
        assert np.shares_memory(view, opt.flat.grad) and np.shares_memory(p.data, opt.flat.data)


def test_lr_attribute_reads_the_first_group_and_sets_every_group(rng):
    params = [Parameter(a, dtype="float64") for a in random_arrays(rng, 3)]
    opt = SGD([{"params": params[:1], "lr": 0.5}, {"params": params[1:]}], lr=0.1)
    assert opt.lr == 0.5 and opt.param_groups[1]["lr"] == 0.1
    opt.lr = 0.2
    assert [g["lr"] for g in opt.param_groups] == [0.2, 0.2]
    with pytest.raises(ConfigError, match=r"lr must be ≥ 0 and finite; got -1"):
        opt.lr = -1
    assert [g["lr"] for g in opt.param_groups] == [0.2, 0.2]
    opt.momentum = 0.9  # the same for the other hyperparameters
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.9]


def test_planned_step_and_hand_loop_agree_with_groups(rng):
    def build():
        seed = 7
        return Sequential(Dense(5, 8, seed=seed, dtype="float64"), Tanh(), Dense(8, 3, seed=8))

    X, y = rng.normal(size=(12, 5)), rng.integers(0, 3, size=12)
    models = [build().to("float64"), build().to("float64")]
    opts = [
        Adam([{"params": m[0].parameters(), "lr": 0.05}, {"params": m[2].parameters()}], lr=0.01)
        for m in models
    ]
    planned = wxb.PlannedStep(models[1], CrossEntropyLoss(), opts[1])
    loss_fn = CrossEntropyLoss()
    for _ in range(3):
        opts[0].zero_grad()
        value = loss_fn(models[0](X), y)
        value.backward()
        opts[0].step()
        assert planned(X, y) == pytest.approx(float(value), rel=1e-12)
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12)


def test_fit_takes_a_grouped_optimiser_and_its_schedule_keeps_the_ratio(rng):
    model = Sequential(Dense(4, 6, dtype="float64"), Tanh(), Dense(6, 3, dtype="float64"))
    X, y = rng.normal(size=(24, 4)), rng.integers(0, 3, size=24)
    opt = SGD(
        [{"params": model[0].parameters(), "lr": 0.02}, {"params": model[2].parameters()}], 0.01
    )
    history = wxb.fit(
        model, X, y, optimizer=opt, epochs=4, batch_size=8, lr_schedule="step", verbose=False
    )
    assert len(history.history["loss"]) == 4
    first, second = (g["lr"] for g in opt.param_groups)
    assert first == pytest.approx(2 * second, rel=1e-12) and first < 0.02


# -- learning-rate schedules -----------------------------------------------------------------
@pytest.mark.parametrize("name", ["sgd", "adam"])
@pytest.mark.parametrize("schedule", ["step", "cosine"])
def test_schedules_scale_each_groups_own_rate_as_torch(seeded, name, schedule):
    rng = seeded.rng
    ours, theirs = twins(random_arrays(rng, 4))
    opt, ref = grouped(rng, name, ours, theirs, groups=2)
    opt.param_groups[1]["lr"] = ref.param_groups[1]["lr"] = 10 * opt.param_groups[0]["lr"]
    if schedule == "step":
        step_size, gamma = int(rng.integers(1, 4)), float(rng.uniform(0.1, 0.9))
        mine = StepLR(opt, step_size, gamma)
        theirs_sched = torch.optim.lr_scheduler.StepLR(ref, step_size, gamma)
        epochs = int(rng.integers(6, 12))
    else:
        T_max = int(rng.integers(2, 10))
        eta_min = float(rng.uniform(0, 0.5) * opt.param_groups[0]["lr"])
        mine = CosineAnnealingLR(opt, T_max, eta_min)
        theirs_sched = torch.optim.lr_scheduler.CosineAnnealingLR(ref, T_max, eta_min)
        epochs = 2 * T_max + int(rng.integers(1, 4))  # down, through the trough, back up
    bases = [g["initial_lr"] for g in ref.param_groups]
    assert [g["initial_lr"] for g in opt.param_groups] == bases
    # rates set by hand mid-run: both go on from them (wxb's closed form put it back).
    # While a cosine falls, any rate (below η_min too); while it climbs, one above η_min.
    half = epochs if schedule == "step" else T_max
    edits = {int(rng.integers(1, half + 1)): int(rng.integers(0, 2))}
    if schedule == "cosine":
        edits[int(rng.integers(T_max + 1, epochs + 1))] = int(rng.integers(0, 2))
    for epoch in range(1, epochs + 1):
        set_grads(rng, ours, theirs)
        opt.step()
        ref.step()
        if epoch in edits:
            lr, floor = opt.param_groups[edits[epoch]]["lr"], 0.0
            if schedule == "cosine" and epoch > T_max:
                floor = eta_min
            rate = floor + float(rng.uniform(0.2, 0.9)) * (lr - floor)
            opt.param_groups[edits[epoch]]["lr"] = ref.param_groups[edits[epoch]]["lr"] = rate
        returned = mine.step()
        theirs_sched.step()
        assert returned == opt.lr == opt.param_groups[0]["lr"]
        for i, (a, b) in enumerate(zip(opt.param_groups, ref.param_groups, strict=True)):
            assert abs(a["lr"] - b["lr"]) <= 1e-12 * bases[i], seeded.msg(
                f"{schedule} epoch {epoch} group {i}: wxb {a['lr']}, torch {b['lr']}"
            )
    assert_same(seeded, ours, theirs, f"{name} {schedule} after {epochs} epochs")


@pytest.mark.parametrize("schedule", ["step", "cosine"])
def test_a_second_schedule_starts_from_a_rate_set_by_hand_as_torch(seeded, schedule):
    """A second phase at a lower rate (a second fit with a schedule, say): the new
    schedule went back to the first one's starting rate, ten times what was set."""
    rng = seeded.rng
    ours, theirs = twins(random_arrays(rng, 3))
    opt, ref = grouped(rng, "sgd", ours, theirs, groups=2)

    def schedules():
        """Each kind's schedule, and how many epochs to compare: a cosine up to T_max
        (past its trough PyTorch climbs back towards the first schedule's initial_lr, a
        rate set by hand since notwithstanding)."""
        if schedule == "step":
            options = {"step_size": int(rng.integers(1, 3)), "gamma": 0.5}
            return (
                StepLR(opt, **options),
                torch.optim.lr_scheduler.StepLR(ref, **options),
                int(rng.integers(2, 5)),
            )
        T_max = int(rng.integers(2, 6))
        return (
            CosineAnnealingLR(opt, T_max),
            torch.optim.lr_scheduler.CosineAnnealingLR(ref, T_max),
            T_max,
        )

    for phase in range(2):
        mine, theirs_sched, epochs = schedules()
        for epoch in range(epochs):
            assert_same_rates(seeded, opt, ref, f"{schedule} phase {phase} epoch {epoch}")
            step_both(rng, ours, theirs, opt, ref, [(mine, theirs_sched)])
        for a, b in zip(opt.param_groups, ref.param_groups, strict=True):
            a["lr"] = b["lr"] = float(rng.uniform(0.001, 0.01))  # the next phase's rate
    assert_same(seeded, ours, theirs, f"{schedule}: two phases")


def test_chained_schedules_resumed_one_by_one_go_on_as_torch(seeded):
    """StepLR and CosineAnnealingLR chained on one optimiser, resumed in PyTorch's order
    (the optimiser and its state, then each schedule made and its state loaded): making
    the second took the lr the first's load left (unlike the first's own rate) for one set
    by hand and wrote it as initial_lr, so every climb out of a cosine trough after the
    resume started from it (a fifth of the rate, say, for the rest of the run)."""
    rng = seeded.rng
    ours, theirs = twins(random_arrays(rng, 3))
    split = grouping(rng, "sgd", len(ours), 2)
    opt, ref = build(SGD, ours, split), build(torch.optim.SGD, theirs, split)
    step_size, gamma = int(rng.integers(1, 4)), float(rng.uniform(0.5, 0.95))
    T_max = int(rng.integers(2, 5))

    def schedules(opt, ref, saved=None):
        made = []
        for k, (kind, theirs_kind, options) in enumerate(
            [
                (StepLR, TS.StepLR, {"step_size": step_size, "gamma": gamma}),
                (CosineAnnealingLR, TS.CosineAnnealingLR, {"T_max": T_max}),
            ]
        ):
            pair = kind(opt, **options), theirs_kind(ref, **options)
            if saved is not None:  # made and loaded one by one
                pair[0].load_state_dict(saved[0][k])
                pair[1].load_state_dict(saved[1][k])
            made.append(pair)
        return made

    made = schedules(opt, ref)
    resume_at = int(rng.integers(1, 4))
    for epoch in range(resume_at + 3 * T_max):
        assert_same_rates(seeded, opt, ref, f"epoch {epoch} (resumed after {resume_at})")
        step_both(rng, ours, theirs, opt, ref, made)
        if epoch + 1 == resume_at:
            if rng.random() < 0.5:  # and a rate set by hand just before saving, or not
                for a, b in zip(opt.param_groups, ref.param_groups, strict=True):
                    a["lr"] = b["lr"] = a["lr"] * float(rng.uniform(0.2, 0.9))
            saved = [s.state_dict() for s, _ in made], [t.state_dict() for _, t in made]
            state, ref_state = opt.state_dict(), ref.state_dict()
            opt, ref = build(SGD, ours, split), build(torch.optim.SGD, theirs, split)
            opt.load_state_dict(state)
            ref.load_state_dict(ref_state)
            made = schedules(opt, ref, saved)
            for a, b in zip(opt.param_groups, ref.param_groups, strict=True):
                assert a["initial_lr"] == b["initial_lr"], seeded.msg("initial_lr after loading")
    assert_same(seeded, ours, theirs, "chained schedules, resumed")


def test_a_cosine_saved_at_its_trough_after_a_rate_below_its_floor_loads_as_torch(seeded):
    """A rate set by hand below η_min while the cosine falls (allowed, as PyTorch) can
    leave a negative starting rate; saved at the trough, where the rate is η_min whatever
    it is and the next step re-bases, the schedule's own state was refused on loading."""
    rng = seeded.rng
    ours, theirs = twins(random_arrays(rng, 2))
    T_max = int(rng.integers(2, 6))
    eta_min = float(rng.uniform(1e-3, 1e-2))
    opt, ref = SGD(ours, lr=0.1), torch.optim.SGD(theirs, lr=0.1)
    mine, theirs_sched = (
        CosineAnnealingLR(opt, T_max, eta_min),
        TS.CosineAnnealingLR(ref, T_max, eta_min),
    )
    below = int(rng.integers(1, T_max))  # an epoch while it falls
    for epoch in range(1, T_max + 1):
        set_grads(rng, ours, theirs)
        opt.step()
        ref.step()
        mine.step()
        theirs_sched.step()
        if epoch == below:
            floor = eta_min * (1 - math.cos(math.pi * epoch / T_max)) / 2  # base 0's rate now
            opt.param_groups[0]["lr"] = ref.param_groups[0]["lr"] = floor * rng.uniform(0, 0.9)
    state, ref_state = opt.state_dict(), ref.state_dict()
    saved, ref_saved = mine.state_dict(), theirs_sched.state_dict()
    opt, ref = SGD(ours, lr=0.5), torch.optim.SGD(theirs, lr=0.5)
    opt.load_state_dict(state)
    ref.load_state_dict(ref_state)
    mine, theirs_sched = (
        CosineAnnealingLR(opt, T_max, eta_min),
        TS.CosineAnnealingLR(ref, T_max, eta_min),
    )
    mine.load_state_dict(saved)
    theirs_sched.load_state_dict(ref_saved)
    for epoch in range(T_max + 1, 3 * T_max + 2):
        set_grads(rng, ours, theirs)
        opt.step()
        ref.step()
        mine.step()
        theirs_sched.step()
        a, b = opt.param_groups[0]["lr"], ref.param_groups[0]["lr"]
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15), seeded.msg(
            f"epoch {epoch} after resuming at the trough: {a} vs {b}"
        )
    assert_same(seeded, ours, theirs, "a cosine resumed at its trough")


def test_inverse_scaling_and_a_second_schedule_start_from_each_groups_initial_rate(rng):
    params = [Parameter(a, dtype="float64") for a in random_arrays(rng, 3)]
    opt = SGD([{"params": params[:1], "lr": 0.4}, {"params": params[1:]}], lr=0.1)
    power = float(rng.uniform(0.1, 1))
    schedule = InverseScalingLR(opt, power)
    for epoch in range(1, 4):
        schedule.step()
        expected = [0.4 / (epoch + 1) ** power, 0.1 / (epoch + 1) ** power]
        assert [g["lr"] for g in opt.param_groups] == pytest.approx(expected, rel=1e-14)
    StepLR(opt, step_size=1)
    assert [g["lr"] for g in opt.param_groups] == [0.4, 0.1]


# -- hyperparameter checks -------------------------------------------------------------------
def one_param():
    return [Parameter(np.zeros(3), dtype="float64")]


REFUSED = [
    # (optimiser, options, words in the message, PyTorch refuses it too)
    ("adam", {"eps": -1.0}, r"Adam eps must be ≥ 0 and finite; got -1\.0", True),
    ("adam", {"eps": math.inf}, r"Adam eps .*got inf", False),
    ("adamw", {"eps": math.nan}, r"AdamW eps .*got nan", False),
    ("adam", {"betas": (1.0, 0.9)}, r"Adam betas must be in \[0, 1\); got 1\.0", True),
    ("adam", {"betas": (0.9, -0.1)}, r"Adam betas .*got -0\.1", True),
    ("adam", {"betas": (0.9, 0.99, 0.9)}, r"Adam betas must be two numbers", False),
    ("adam", {"weight_decay": -1.0}, r"Adam weight_decay must be ≥ 0 and finite; got -1", True),
    ("adamw", {"weight_decay": math.inf}, r"AdamW weight_decay .*got inf", False),
    ("adam", {"lr": -1.0}, r"Adam lr must be ≥ 0 and finite; got -1", True),
    ("adam", {"lr": math.nan}, r"Adam lr must be ≥ 0 and finite; got nan", True),
    ("adam", {"lr": math.inf}, r"Adam lr must be ≥ 0 and finite; got inf", False),
    ("adam", {"lr": "0.1"}, r"Adam lr must be a number; got '0\.1'", False),
    ("sgd", {"lr": True}, r"SGD lr must be a number; got True", False),
    ("sgd", {"momentum": -0.1}, r"SGD momentum must be in \[0, 1\]; got -0\.1", True),
    ("sgd", {"momentum": 1.5}, r"SGD momentum must be in \[0, 1\]; got 1\.5", False),
    ("sgd", {"dampening": -1.0}, r"SGD dampening must be in \[0, 1\]; got -1", False),
    ("sgd", {"dampening": 2.0}, r"SGD dampening .*got 2", False),
    ("sgd", {"weight_decay": -1.0}, r"SGD weight_decay must be ≥ 0 and finite; got -1", True),
    ("sgd", {"nesterov": True}, r"Nesterov momentum needs momentum > 0", True),
    ("sgd", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, r"dampening 0\.1", True),
    ("sgd", {"nesterov": "yes", "momentum": 0.9}, r"nesterov must be True or False", False),
]


@pytest.mark.parametrize("name,options,message,torch_too", REFUSED)
def test_bad_hyperparameters_are_refused(name, options, message, torch_too):
    with pytest.raises(ConfigError, match=message):
        OURS[name](one_param(), **options)
    if torch_too:
        with pytest.raises(ValueError):
            THEIRS[name]([torch.zeros(3, requires_grad=True)], **{"lr": 0.1, **options})


@pytest.mark.parametrize("name,options,message,torch_too", REFUSED)
def test_bad_hyperparameters_in_a_group_are_refused(name, options, message, torch_too):
    message = message.replace(f"{OURS[name].__name__} ", f"{OURS[name].__name__} param_groups.1. ")
    message = message.replace("Nesterov", "param_groups.1.: Nesterov")
    with pytest.raises(ConfigError, match=message):
        OURS[name]([{"params": one_param()}, {"params": one_param(), **options}])


def test_a_bad_value_written_into_a_group_is_refused_at_the_next_step(rng):
    params = one_param()
    opt = Adam([{"params": params}], lr=0.1)
    params[0].grad = rng.normal(size=3)
    opt.param_groups[0]["eps"] = -1.0
    with pytest.raises(ConfigError, match=r"Adam param_groups\[0\] eps .*got -1"):
        opt.step()
    np.testing.assert_array_equal(params[0].data, np.zeros(3))
    opt.param_groups[0]["eps"] = 1e-8
    opt.param_groups[0]["lr"] = 0.0  # a schedule may end at 0: allowed once set
    opt.step()
    np.testing.assert_array_equal(params[0].data, np.zeros(3))


def test_malformed_groups_are_refused():
    a, b = one_param(), one_param()
    with pytest.raises(ConfigError, match="another parameter group"):
        SGD([{"params": a}, {"params": [*b, *a]}])
    opt = SGD([{"params": a}])
    with pytest.raises(ConfigError, match="another parameter group"):
        opt.add_param_group({"params": a})
    with pytest.raises(ConfigError, match="lists a parameter twice"):
        SGD([{"params": [*a, *a]}])
    with pytest.raises(ConfigError, match="has no 'params'"):
        SGD([{"lr": 0.1}])
    with pytest.raises(ConfigError, match="not a set"):
        SGD([{"params": set(a)}])
    with pytest.raises(ConfigError, match="in a list"):
        SGD({"params": a})
    with pytest.raises(ConfigError, match="not a mix"):
        SGD([*a, {"params": b}])
    with pytest.raises(ConfigError, match="no parameters"):
        SGD([{"params": []}])
    with pytest.raises(ConfigError, match=r"param_groups\[1\] momentum"):
        opt.add_param_group({"params": b, "momentum": -1})
    assert len(opt.param_groups) == 1 and opt.params == a
    opt.param_groups[0]["params"].append(b[0])  # by hand: refused at the next step
    with pytest.raises(ConfigError, match="add_param_group"):
        opt.step()


SCHEDULE_REFUSED = [
    (StepLR, {"step_size": 1, "gamma": -1.0}, r"StepLR gamma must be > 0; got -1"),
    (StepLR, {"step_size": 1, "gamma": 0.0}, r"StepLR gamma must be > 0; got 0"),
    (StepLR, {"step_size": 1, "gamma": math.inf}, r"StepLR gamma must be > 0; got inf"),
    (StepLR, {"step_size": 0}, r"StepLR step_size must be a positive integer; got 0"),
    (StepLR, {"step_size": 1.5}, r"StepLR step_size must be a positive integer; got 1\.5"),
    (StepLR, {"step_size": True}, r"StepLR step_size must be a positive integer; got True"),
    (CosineAnnealingLR, {"T_max": 0}, r"T_max must be a positive integer; got 0"),
    (CosineAnnealingLR, {"T_max": 2.5}, r"T_max must be a positive integer; got 2\.5"),
    (CosineAnnealingLR, {"T_max": 3, "eta_min": -1.0}, r"eta_min must be ≥ 0 and finite; got -1"),
    (
        InverseScalingLR,
        {"power": -0.5},
        r"InverseScalingLR power must be ≥ 0 and finite; got -0\.5",
    ),
    (InverseScalingLR, {"power": math.nan}, r"power must be ≥ 0 and finite; got nan"),
]


@pytest.mark.parametrize("schedule,options,message", SCHEDULE_REFUSED)
def test_bad_schedule_settings_are_refused(schedule, options, message):
    opt = SGD(one_param(), lr=0.1)
    with pytest.raises(ConfigError, match=message):
        schedule(opt, **options)
    assert opt.lr == 0.1


# -- clipping and zeroing ----------------------------------------------------------------------
@pytest.mark.parametrize("regime", ["clipped", "unclipped"])
def test_clip_grad_norm_with_a_scalar_parameter_and_a_missing_gradient_matches_torch(
    seeded, regime
):
    rng = seeded.rng
    arrays = [rng.normal(), *random_arrays(rng, int(rng.integers(2, 5)))]  # first: 0-d
    ours, theirs = twins(arrays)
    set_grads(rng, ours, theirs)
    skipped = int(rng.integers(1, len(ours)))
    ours[skipped].grad, theirs[skipped].grad = None, None
    assert isinstance(ours[0].grad, np.generic)
    norm = math.sqrt(sum(float(np.vdot(p.grad, p.grad)) for p in ours if p.grad is not None))
    max_norm = norm * float(rng.uniform(0.05, 0.9) if regime == "clipped" else rng.uniform(1.1, 3))
    returned = clip_grad_norm_(ours, max_norm)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm)
    assert returned == pytest.approx(float(expected), rel=1e-13)
    assert ours[skipped].grad is None
    for i, (p, q) in enumerate(zip(ours, theirs, strict=True)):
        if p.grad is not None:
            np.testing.assert_allclose(
                p.grad, q.grad.numpy(), rtol=1e-13, err_msg=seeded.msg(f"#{i}")
            )


def test_clip_grad_norm_takes_one_parameter_as_torch(seeded):
    rng = seeded.rng
    for shape in [(), (int(rng.integers(1, 9)), 3)]:
        (p,), (q,) = twins([rng.normal(size=shape)])
        g = rng.normal(size=shape)
        p.grad = g.copy() if g.ndim else np.float64(g)
        q.grad = torch.tensor(g, dtype=torch.float64)
        max_norm = float(np.linalg.norm(g)) * 0.5
        assert clip_grad_norm_(p, max_norm) == pytest.approx(
            float(torch.nn.utils.clip_grad_norm_(q, max_norm)), rel=1e-13
        )
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-13)
    with pytest.raises(ConfigError, match="max_norm must be ≥ 0; got -1"):
        clip_grad_norm_(p, -1.0)


def test_a_nan_gradient_makes_every_clipped_gradient_nan_as_torch(seeded):
    """The NaN norm failed `factor < 1`, so the finite gradients went unclipped beside it."""
    rng = seeded.rng
    ours, theirs = twins([rng.normal(size=(3, 2)), rng.normal(size=4)])
    grads = [rng.normal(size=(3, 2)), rng.normal(size=4)]
    grads[int(rng.integers(0, 2))].flat[0] = np.nan
    for p, q, g in zip(ours, theirs, grads, strict=True):
        p.grad, q.grad = g.copy(), torch.tensor(g)
    norm = clip_grad_norm_(ours, 1.0)
    assert math.isnan(norm) and math.isnan(float(torch.nn.utils.clip_grad_norm_(theirs, 1.0)))
    for p, q in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(p.grad, q.grad.numpy())  # NaN everywhere in both


def test_a_scalar_parameter_found_by_backward_is_clipped_and_zeroed(rng):
    scale = Parameter(np.float64(rng.uniform(1, 2)), dtype="float64")
    weights = Parameter(rng.normal(size=4), dtype="float64")
    x = wxb.Tensor(rng.normal(size=4))
    ops.sum(ops.mul(ops.mul(x, weights), scale)).backward()
    before = float(scale.grad)
    opt = SGD([scale, weights], lr=0.1)
    total = clip_grad_norm_(opt.params, 1e-3)
    assert float(scale.grad) == pytest.approx(before * 1e-3 / (total + 1e-6), rel=1e-12)
    opt.zero_grad(set_to_none=False)
    assert float(scale.grad) == 0 and not weights.grad.any()


def test_zero_grad_in_place_for_a_numpy_scalar_gradient(rng):
    params = [Parameter(np.float64(1.0), dtype="float64"), Parameter(rng.normal(size=3))]
    opt = Adam(params)
    params[0].grad, params[1].grad = np.float64(2.5), rng.normal(size=3)
    kept = params[1].grad
    opt.zero_grad(set_to_none=False)
    assert float(params[0].grad) == 0.0 and params[0].grad.shape == ()
    assert params[1].grad is kept and not kept.any()


@pytest.mark.parametrize("name", list(OURS))
def test_scalar_parameters_are_stepped_as_torch(seeded, name):
    rng = seeded.rng
    ours, theirs = twins([rng.normal(), *random_arrays(rng, 3)])
    opt, ref = grouped(rng, name, ours, theirs, groups=2)
    for step in range(4):
        set_grads(rng, ours, theirs, missing=0.3 if step == 2 else 0.0)
        opt.step()
        ref.step()
        assert_same(seeded, ours, theirs, f"{name} step {step + 1}")


# -- frozen parameters -----------------------------------------------------------------------
def test_a_frozen_layer_is_left_alone_and_the_rest_match_torch(seeded):
    rng = seeded.rng
    widths = [int(w) for w in rng.integers(2, 8, size=4)]
    layers = []
    for i in range(3):
        layers.append(Dense(widths[i], widths[i + 1], dtype="float64", seed=int(rng.integers(99))))
        layers.append(Tanh())
    model = Sequential(*layers[:-1])
    twin = torch.nn.Sequential(
        *[torch.nn.Linear(widths[i], widths[i + 1], dtype=torch.float64) for i in range(3)]
    )
    torch_layers = [twin[0], torch.nn.Tanh(), twin[1], torch.nn.Tanh(), twin[2]]
    with torch.no_grad():
        for ours_layer, theirs_layer in zip(model[0:5:2], twin, strict=True):
            ours_layer.bias.data[...] = rng.normal(scale=0.3, size=ours_layer.bias.shape)
            theirs_layer.weight.copy_(torch.from_numpy(ours_layer.weight.data.copy()))
            theirs_layer.bias.copy_(torch.from_numpy(ours_layer.bias.data.copy()))
    frozen = int(rng.integers(3))
    model[2 * frozen].weight.requires_grad = False
    twin[frozen].weight.requires_grad_(False)
    kept = model[2 * frozen].weight.data.copy()
    lr = float(rng.uniform(1e-3, 3e-2))
    opt = Adam(model.parameters(), lr=lr, weight_decay=1e-3)
    ref = torch.optim.Adam(twin.parameters(), lr=lr, weight_decay=1e-3)
    loss_fn = CrossEntropyLoss()
    for _ in range(3):
        X = rng.normal(size=(int(rng.integers(2, 9)), widths[0]))
        y = rng.integers(0, widths[-1], size=len(X))
        opt.zero_grad()
        loss_fn(model(X), y).backward()
        opt.step()
        ref.zero_grad()
        out = torch.from_numpy(X)
        for layer in torch_layers:
            out = layer(out)
        torch.nn.functional.cross_entropy(out, torch.from_numpy(y)).backward()
        ref.step()
    np.testing.assert_array_equal(model[2 * frozen].weight.data, kept)
    for (name, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(
            p.data, q.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg=seeded.msg(name)
        )


def test_a_group_added_during_a_step_schedule_follows_pytorch(rng):
    from wxb.optim import StepLR

    step_size, gamma = int(rng.integers(1, 4)), float(rng.uniform(0.1, 0.9))
    added_at, lr, extra_lr = int(rng.integers(0, 8)), float(rng.uniform(0.1, 1)), 0.7
    w = [Parameter(np.zeros(2)), Parameter(np.zeros(2))]
    tw = [torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)]
    opt, torch_opt = SGD([w[0]], lr=lr), torch.optim.SGD([tw[0]], lr=lr)
    schedule = StepLR(opt, step_size, gamma)
    torch_schedule = torch.optim.lr_scheduler.StepLR(torch_opt, step_size, gamma)
    for epoch in range(12):
        if epoch == added_at:
            opt.add_param_group({"params": [w[1]], "lr": extra_lr})
            torch_opt.add_param_group({"params": [tw[1]], "lr": extra_lr})
        got = [g["lr"] for g in opt.param_groups]
        np.testing.assert_allclose(got, [g["lr"] for g in torch_opt.param_groups], rtol=1e-12)
        opt.step()
        torch_opt.step()
        schedule.step()
        torch_schedule.step()


@pytest.mark.parametrize("kind", ["cosine", "invscaling"])
def test_a_group_added_later_keeps_its_rate_through_the_epoch_it_joined(rng, kind):
    from wxb.optim import SCHEDULES

    opt = SGD([Parameter(np.zeros(2))], lr=float(rng.uniform(0.1, 1)))
    schedule = SCHEDULES[kind](opt, **({"T_max": 10} if kind == "cosine" else {}))
    for _ in range(int(rng.integers(1, 5))):
        schedule.step()
    opt.add_param_group({"params": [Parameter(np.zeros(2))], "lr": 0.5})
    first = schedule.lr_at(schedule.epoch, 1.0)
    schedule.step()
    ratio = schedule.lr_at(schedule.epoch, 1.0) / first  # the first group's change
    # Both are multiplicative (the cosine with η_min = 0): the new group, kept at 0.5
    # through the epoch it joined, moves by the same factor as the first group.
    np.testing.assert_allclose(opt.param_groups[1]["lr"], 0.5 * ratio, rtol=1e-12)


def test_a_late_group_copying_another_groups_settings_follows_its_own_lr(rng):
    from wxb.optim import StepLR

    gamma = float(rng.uniform(0.2, 0.8))
    p1, p2 = Parameter(np.zeros(2)), Parameter(np.zeros(2))
    t1, t2 = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    opt, torch_opt = SGD([p1], lr=1.0), torch.optim.SGD([t1], lr=1.0)
    schedule = StepLR(opt, 1, gamma)
    torch_schedule = torch.optim.lr_scheduler.StepLR(torch_opt, 1, gamma)
    for _ in range(2):
        opt.step(), torch_opt.step(), schedule.step(), torch_schedule.step()
    opt.add_param_group({**opt.param_groups[0], "params": [p2]})  # initial_lr copied too
    torch_opt.add_param_group({**torch_opt.param_groups[0], "params": [t2]})
    for _ in range(3):
        opt.step(), torch_opt.step(), schedule.step(), torch_schedule.step()
        np.testing.assert_allclose(
            [g["lr"] for g in opt.param_groups], [g["lr"] for g in torch_opt.param_groups]
        )


def test_a_late_group_below_the_cosines_floor_keeps_a_state_that_loads(rng):
    from wxb.optim import CosineAnnealingLR

    opt = SGD([Parameter(np.zeros(2))], lr=0.1)
    schedule = CosineAnnealingLR(opt, T_max=10, eta_min=0.05)
    for _ in range(5):
        schedule.step()
    opt.add_param_group({"params": [Parameter(np.zeros(2))], "lr": 0.01})
    schedule.step()
    state = schedule.state_dict()
    schedule.load_state_dict(state)
    for _ in range(30):  # through the trough and the climb after it
        assert all(g["lr"] >= 0 for g in opt.param_groups)
        schedule.step()


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_state_loaded_after_a_cast_keeps_its_precision(rng, name):
    """model.to("float64") after the optimiser was built, then load_state_dict: the
    state loads in float64 (it was rounded into the float32 buffers, and the next step
    drifted from a run whose optimiser was built after the cast; PyTorch casts it too)."""
    X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, 8)
    settings = {"lr": 0.01, "momentum": 0.9} if name == "sgd" else {"lr": 0.01}

    def network() -> Sequential:
        return Sequential(Dense(4, 5, seed=1), Tanh(), Dense(5, 3, seed=2))

    source = network().to("float64")
    source_opt = optim.get_optimizer(name, source.parameters(), **settings)
    for _ in range(3):
        source_opt.zero_grad()
        CrossEntropyLoss()(source(X), y).backward()
        source_opt.step()
    weights, state = source.state_dict(), source_opt.state_dict()

    results = []
    for built_before_cast in (True, False):
        model = network()
        if built_before_cast:
            opt = optim.get_optimizer(name, model.parameters(), **settings)
            model.to("float64")
        else:
            opt = optim.get_optimizer(name, model.to("float64").parameters(), **settings)
        model.load_state_dict(weights)
        opt.load_state_dict(state)
        for i, entry in opt.state_dict()["state"].items():
            for key, value in entry.items():
                if isinstance(value, np.ndarray):
                    assert value.dtype == np.float64
                    np.testing.assert_array_equal(value, state["state"][i][key])
        opt.zero_grad()
        CrossEntropyLoss()(model(X), y).backward()
        opt.step()
        results.append(model.state_dict())
    for key in results[0]:
        np.testing.assert_array_equal(results[0][key], results[1][key])


# -- what a PyTorch user writes that wxb does not implement, or edits by hand -------------------
@pytest.mark.parametrize(
    ("name", "flag"), [("sgd", "maximize"), ("adam", "maximize"), ("adamw", "amsgrad")]
)
@pytest.mark.parametrize("when", ["built", "edited"])
def test_a_torch_flag_wxb_does_not_implement_is_refused_not_ignored(rng, name, flag, when):
    # in a group dict it used to pass, and the optimiser minimised (or ran plain Adam)
    params = one_param()
    if when == "built":
        with pytest.raises(
            ConfigError, match=rf"param_groups\[0\] {flag}=True: .* runs with {flag}=False"
        ):
            OURS[name]([{"params": params, flag: True}], lr=0.1)
        return
    opt = OURS[name]([{"params": params, flag: False}], lr=0.1)  # PyTorch's default: fine
    params[0].grad = rng.normal(size=3)
    opt.step()
    before = params[0].data.copy()
    opt.param_groups[0][flag] = True
    with pytest.raises(ConfigError, match=rf"{flag}=True"):
        opt.step()
    np.testing.assert_array_equal(params[0].data, before)


@pytest.mark.parametrize("name", list(OURS))
def test_a_parameter_swapped_into_a_group_by_hand_is_refused(rng, name):
    # the count was the same, so the old parameter went on being stepped and the new one not
    old, new = Parameter(rng.normal(size=4)), Parameter(rng.normal(size=4))
    opt = OURS[name]([old], lr=0.1)
    opt.param_groups[0]["params"][0] = new
    new.grad = rng.normal(size=4)
    kept = old.data.copy(), new.data.copy()
    with pytest.raises(ConfigError, match="replaced in param_groups by hand"):
        opt.step()
    np.testing.assert_array_equal(old.data, kept[0])
    np.testing.assert_array_equal(new.data, kept[1])


@pytest.mark.parametrize("name", list(OURS))
@pytest.mark.parametrize("grad_shape", [(3,), (), (1, 3), (2, 3, 1)])
def test_a_gradient_of_another_shape_is_refused_not_broadcast(rng, name, grad_shape):
    # NumPy spread a (3,) gradient over every row of the (2, 3) weight
    w = Parameter(rng.normal(size=(2, 3)), name="weight")
    opt = OURS[name]([w], lr=0.1)
    w.grad = rng.normal(size=grad_shape)
    before = w.data.copy()
    with pytest.raises(ConfigError, match=r"weight, shape \(2, 3\)\) has a gradient of shape"):
        opt.step()
    np.testing.assert_array_equal(w.data, before)
    w.grad = rng.normal(size=(2, 3))  # the right shape steps
    opt.step()
    assert not np.array_equal(w.data, before)


def test_sgd_state_saved_without_momentum_loads_into_one_built_with_it_as_torch(seeded):
    rng = seeded.rng
    start = rng.normal(size=5)
    ours, theirs = twins([start])
    lr, momentum = float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.5, 0.95))
    a, ta = SGD(ours, lr=lr), torch.optim.SGD(theirs, lr=lr)
    set_grads(rng, ours, theirs)
    a.step(), ta.step()
    b = SGD(ours, lr=lr, momentum=momentum)  # refused: "the state has no 'velocity'"
    tb = torch.optim.SGD(theirs, lr=lr, momentum=momentum)
    b.load_state_dict(a.state_dict())
    tb.load_state_dict(ta.state_dict())
    assert b.param_groups[0]["momentum"] == tb.param_groups[0]["momentum"] == 0
    for step in range(3):
        if step == 1:  # momentum switched on again: the velocity starts from the gradient
            b.param_groups[0]["momentum"] = tb.param_groups[0]["momentum"] = momentum
        set_grads(rng, ours, theirs)
        b.step(), tb.step()
        assert_same(seeded, ours, theirs, f"step {step}")


def scheduled_twins(rng, ours, theirs, options, epochs):
    """SGD on twin parameters, wxb's and torch's, each with its schedule, stepped
    ``epochs`` times on the same gradients: (params, tparams, lr, (opt, sched), (topt,
    tsched))."""
    params, tparams = twins([rng.normal(size=int(rng.integers(1, 5)))])
    lr = float(rng.uniform(0.05, 0.5))
    opt, topt = SGD(params, lr=lr), torch.optim.SGD(tparams, lr=lr)
    sched, tsched = ours(opt, **options), theirs(topt, **options)
    for _ in range(epochs):
        set_grads(rng, params, tparams)
        opt.step(), topt.step()
        sched.step(), tsched.step()
    return params, tparams, lr, (opt, sched), (topt, tsched)


@pytest.mark.parametrize("route", ["numpy", "compiled"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adam_with_beta1_below_a_half_keeps_the_moment_as_torch(seeded, route, dtype):
    """PyTorch's lerp computes g − β₁·(g − m) when 1 − β₁ ≥ 0.5: with β₁ = 0 the moment
    is the gradient exactly. wxb's m + (1 − β₁)·(g − m) lost a small gradient after a
    large one (β₁ = 0: m = 0 where g = 4e-7, and no update)."""
    from wxb import kernels

    rng = seeded.rng
    kernels.use(route)
    try:
        for beta1 in (0.0, float(rng.uniform(0, 0.5))):
            start = rng.normal(size=(3, 4)).astype(dtype)
            ours = Parameter(start.copy())
            theirs = torch.tensor(start.copy(), requires_grad=True)
            betas = (beta1, float(rng.uniform(0, 0.999)))
            opt = optim.Adam([ours], lr=0.1, betas=betas)
            topt = torch.optim.Adam([theirs], lr=0.1, betas=betas)
            for scale in (1e3, 1e-6, 1e-9):  # a small gradient after a large one
                g = (rng.normal(size=(3, 4)) * scale).astype(dtype)
                ours.grad, theirs.grad = g.copy(), torch.tensor(g)
                opt.step()
                topt.step()
                msg = seeded.msg(f"β {betas}, gradients of {scale}")
                tight = 1e-6 if dtype == "float32" else 1e-14
                m_theirs = topt.state[theirs]["exp_avg"].numpy()
                np.testing.assert_allclose(opt.moment1[0], m_theirs, rtol=tight, err_msg=msg)
                np.testing.assert_allclose(
                    ours.data - start, theirs.detach().numpy() - start, rtol=1e-4, err_msg=msg
                )
    finally:
        kernels.use(os.environ.get("WXB_KERNELS", "auto"))


@pytest.mark.parametrize(
    ("ours", "theirs", "options"),
    [
        (StepLR, torch.optim.lr_scheduler.StepLR, {"step_size": 2, "gamma": 0.5}),
        (CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR, {"T_max": 7}),
    ],
)
def test_a_schedule_rebuilt_for_a_resume_keeps_the_loaded_rate_as_torch(
    seeded, ours, theirs, options
):
    # PyTorch's order: optimiser, its state, schedule, its state. The new schedule set
    # the rate back to epoch 0's and loading its state did not set it again.
    rng = seeded.rng
    params, tparams, lr, (opt, sched), (topt, tsched) = scheduled_twins(
        rng, ours, theirs, options, epochs=int(rng.integers(1, 6))
    )
    opt2, topt2 = SGD(params, lr=lr), torch.optim.SGD(tparams, lr=lr)
    opt2.load_state_dict(opt.state_dict())
    topt2.load_state_dict(topt.state_dict())
    sched2, tsched2 = ours(opt2, **options), theirs(topt2, **options)
    sched2.load_state_dict(sched.state_dict())
    tsched2.load_state_dict(tsched.state_dict())
    assert math.isclose(opt2.lr, topt2.param_groups[0]["lr"], rel_tol=1e-12), seeded.msg()
    for _ in range(2):
        set_grads(rng, params, tparams)
        opt2.step(), topt2.step()
        sched2.step(), tsched2.step()
        assert_same(seeded, params, tparams, "after the resume")


def test_a_cosine_resumed_back_at_its_top_goes_on_bit_for_bit(rng):
    """A schedule made before the optimiser's state is loaded, resumed where the cosine
    is back at its top (epoch a multiple of 2·T_max): the loaded rate, one ulp from
    epoch 0's after the uninterrupted run's re-basing, was taken for an untouched one
    and replaced by the starting rate, so the runs parted in the last bit."""
    parted = 0
    for _ in range(40):
        lr, T = float(rng.uniform(1e-3, 0.1)), int(rng.integers(2, 8))
        resume_at, steps = 2 * T * int(rng.integers(1, 3)), 4 * T + 3

        def fresh(lr=lr, T=T):
            opt = SGD(one_param(), lr=lr)
            return opt, CosineAnnealingLR(opt, T_max=T)

        opt, sched = fresh()
        uninterrupted = []
        for _ in range(steps):
            uninterrupted.append(opt.lr)
            sched.step()
        opt, sched = fresh()
        resumed = []
        for _ in range(resume_at):
            resumed.append(opt.lr)
            sched.step()
        opt2, sched2 = fresh()  # the schedule first, then both states
        opt2.load_state_dict(opt.state_dict())
        sched2.load_state_dict(sched.state_dict())
        for _ in range(resume_at, steps):
            resumed.append(opt2.lr)
            sched2.step()
        assert resumed == uninterrupted
        parted += uninterrupted[resume_at] != lr  # the case: re-basing moved the top by an ulp
    assert parted  # (0 would mean the draws never reached the case this test is about)


@pytest.mark.parametrize("name", list(OURS))
@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copied_model_and_optimiser_train_on_as_the_original(rng, name, how):
    # each view of the flat buffer was copied as an array of its own: the copy's step
    # updated a buffer no parameter read, and its weights never moved
    import copy
    import pickle

    model = Sequential(Dense(4, 6, dtype="float64"), Tanh(), Dense(6, 3, dtype="float64"))
    opt = OURS[name](model.parameters(), lr=0.05, **({"momentum": 0.9} if name == "sgd" else {}))
    X, y = rng.normal(size=(10, 4)), rng.integers(0, 3, 10)
    loss = CrossEntropyLoss()

    def train(m, o):
        o.zero_grad()
        loss(m(X), y).backward()
        o.step()

    for _ in range(2):
        train(model, opt)
    twin, twin_opt = (
        copy.deepcopy((model, opt))
        if how == "deepcopy"
        else pickle.loads(pickle.dumps((model, opt)))
    )
    before = [p.data.copy() for p in twin.parameters()]
    for _ in range(3):
        train(model, opt)
        train(twin, twin_opt)
    for p, q, b in zip(model.parameters(), twin.parameters(), before, strict=True):
        assert not np.array_equal(q.data, b)
        np.testing.assert_array_equal(q.data, p.data)


def test_decoupled_weight_decay_names_the_other_optimiser(rng):
    # Adam with PyTorch's decoupled_weight_decay=True ran L2 Adam without a word
    with pytest.raises(ConfigError, match="use AdamW"):
        Adam([{"params": one_param(), "decoupled_weight_decay": True}], lr=0.1)
    with pytest.raises(ConfigError, match="use Adam for L2"):
        AdamW([{"params": one_param(), "decoupled_weight_decay": False}], lr=0.1)
    Adam([{"params": one_param(), "decoupled_weight_decay": False}], lr=0.1)
    AdamW([{"params": one_param(), "decoupled_weight_decay": True}], lr=0.1)


@pytest.mark.parametrize("kind", ["adam", "sgd_momentum"])
def test_a_parameter_given_another_shape_through_data_is_refused_by_its_optimiser(rng, kind):
    # the old (1, 4) moments were broadcast over every row of the new (3, 4) weight and the
    # step went on; PyTorch refuses ("doesn't match the broadcast shape")
    layer = wxb.nn.Dense(4, 1, dtype="float64")
    opt = (
        wxb.optim.Adam(layer.parameters(), lr=0.01)
        if kind == "adam"
        else wxb.optim.SGD(layer.parameters(), lr=0.01, momentum=0.9)
    )
    X = rng.normal(size=(8, 4))
    for _ in range(2):
        opt.zero_grad()
        (layer(wxb.Tensor(X)) ** 2).mean().backward()
        opt.step()
    layer.weight.data = rng.normal(size=(3, 4))
    layer.bias.data = np.zeros(3)
    opt.zero_grad()
    (layer(wxb.Tensor(X)) ** 2).mean().backward()
    before = layer.weight.data.copy()
    with pytest.raises(wxb.errors.ConfigError, match="make a new optimiser"):
        opt.step()
    assert np.array_equal(layer.weight.data, before)


@pytest.mark.parametrize("route", ["numpy", "compiled"])
def test_adam_with_beta1_near_one_in_float32_as_torch(seeded, route):
    """m ← β₁·(m − g) + g lost g − β₁·g to cancellation in float32: the first updates
    were 5e-4 (β₁ = 0.9999) to 1.8e-2 (β₁ = 0.999999) off PyTorch's."""
    from wxb import kernels

    rng = seeded.rng
    kernels.use(route)
    try:
        for beta1 in (0.9999, 0.999999, float(rng.uniform(0.99, 0.9999))):
            start = rng.normal(size=(5, 4)).astype(np.float32)
            ours = Parameter(start.copy())
            theirs = torch.tensor(start.copy(), requires_grad=True)
            opt = optim.Adam([ours], lr=1e-3, betas=(beta1, 0.999))
            topt = torch.optim.Adam([theirs], lr=1e-3, betas=(beta1, 0.999))
            for _ in range(3):
                g = rng.normal(size=(5, 4)).astype(np.float32)
                ours.grad, theirs.grad = g.copy(), torch.tensor(g)
                opt.step()
                topt.step()
                moved, tmoved = ours.data - start, theirs.detach().numpy() - start
                np.testing.assert_allclose(moved, tmoved, rtol=2e-4, atol=2e-7,
                                           err_msg=seeded.msg(f"β₁ {beta1}"))  # fmt: skip
    finally:
        kernels.use(os.environ.get("WXB_KERNELS", "auto"))


@pytest.mark.parametrize(
    ("ours", "theirs", "options"),
    [
        (StepLR, torch.optim.lr_scheduler.StepLR, {"step_size": 2, "gamma": 0.5}),
        (CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR, {"T_max": 9}),
    ],
)
@pytest.mark.parametrize("order", ["optimiser first", "schedule first"])
def test_a_rate_set_by_hand_before_a_save_survives_the_resume_as_torch(
    seeded, ours, theirs, options, order
):
    # The resumed schedule put its own rate back (50–80× the lowered one), where the
    # uninterrupted run and PyTorch's resume go on from the rate set by hand.
    rng = seeded.rng
    params, tparams, lr, (opt, sched), (topt, tsched) = scheduled_twins(
        rng, ours, theirs, options, epochs=int(rng.integers(1, 5))
    )
    by_hand = lr * float(rng.uniform(0.001, 0.1))
    opt.param_groups[0]["lr"] = topt.param_groups[0]["lr"] = by_hand
    opt2, topt2 = SGD(params, lr=lr), torch.optim.SGD(tparams, lr=lr)
    if order == "optimiser first":  # PyTorch's order
        opt2.load_state_dict(opt.state_dict())
        sched2 = ours(opt2, **options)
    else:
        sched2 = ours(opt2, **options)
        opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    topt2.load_state_dict(topt.state_dict())
    tsched2 = theirs(topt2, **options)
    tsched2.load_state_dict(tsched.state_dict())
    for epoch in range(4):
        ours_lr, theirs_lr, straight = opt2.lr, topt2.param_groups[0]["lr"], opt.lr
        assert math.isclose(ours_lr, theirs_lr, rel_tol=1e-9), seeded.msg(f"epoch {epoch}")
        assert math.isclose(ours_lr, straight, rel_tol=1e-12), seeded.msg(f"epoch {epoch}")
        sched.step(), sched2.step(), tsched2.step()


def test_a_cosine_rate_set_below_its_floor_while_it_climbs_stays_non_negative(rng):
    """PyTorch's chained cosine takes such a rate below zero (gradient ascent); wxb's
    climbs from it towards the rate set, and a state with a negative starting rate in
    the climbing half is refused."""
    from wxb.optim import CosineAnnealingLR

    T_max, lr = int(rng.integers(2, 8)), float(rng.uniform(0.05, 0.5))
    eta_min = float(rng.uniform(0.2, 0.8)) * lr
    opt = SGD([Parameter(np.zeros(2))], lr=lr)
    ref = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=lr)
    mine = CosineAnnealingLR(opt, T_max, eta_min)
    theirs = torch.optim.lr_scheduler.CosineAnnealingLR(ref, T_max, eta_min)
    for _ in range(T_max + 1):
        ref.step()  # PyTorch's order (no gradients: nothing moves)
        mine.step()
        theirs.step()
    # low enough that no starting rate ≥ 0 reaches it here: (1 − cos(π/T))/2 of the rise
    rise = (1 - math.cos(math.pi / T_max)) / 2
    set_rate = float(rng.uniform(0.01, 0.9)) * eta_min * (1 - rise)
    opt.param_groups[0]["lr"] = ref.param_groups[0]["lr"] = set_rate
    ours, torch_rates = [], []
    for _ in range(T_max - 1):
        ours.append(mine.step())
        ref.step()
        theirs.step()
        torch_rates.append(ref.param_groups[0]["lr"])
    assert min(torch_rates) < 0  # what this guards against
    assert all(set_rate * (1 - 1e-12) <= r <= eta_min for r in ours), ours
    state = mine.state_dict()
    state["base_lrs"], state["epoch"] = [-abs(set_rate)], T_max + 1
    with pytest.raises(ConfigError, match="negative starting rate"):
        mine.load_state_dict(state)


@pytest.mark.parametrize("how", ["set by hand", "a group added"])
def test_sgd_state_saved_after_momentum_is_switched_on_loads_as_torchs(seeded, how):
    """Momentum switched on and the state saved before the next step: no velocity yet
    (PyTorch's has no momentum_buffer either); wxb refused to load it."""
    rng = seeded.rng
    ours, theirs = twins(random_arrays(rng, 2))
    lr, momentum = float(rng.uniform(0.01, 0.5)), float(rng.uniform(0.1, 0.99))
    opt = SGD(ours[:1], lr=lr)
    ref = torch.optim.SGD(theirs[:1], lr=lr)
    set_grads(rng, ours, theirs)
    opt.step()
    ref.step()
    if how == "set by hand":
        opt.param_groups[0]["momentum"] = ref.param_groups[0]["momentum"] = momentum
    else:
        opt.add_param_group({"params": ours[1:], "momentum": momentum})
        ref.add_param_group({"params": theirs[1:], "momentum": momentum})
    saved, t_saved = opt.state_dict(), ref.state_dict()
    mine, theirs_again = twins([p.data.copy() for p in ours])
    held = len(opt.param_groups)
    opt = SGD([{"params": mine[i : i + 1]} for i in range(held)], lr=lr)
    ref = torch.optim.SGD([{"params": theirs_again[i : i + 1]} for i in range(held)], lr=lr)
    opt.load_state_dict(saved)
    ref.load_state_dict(t_saved)
    for _ in range(int(rng.integers(2, 5))):
        set_grads(rng, mine[:held], theirs_again[:held])
        opt.step()
        ref.step()
    assert_same(seeded, mine[:held], theirs_again[:held], f"momentum {how}")
    begun = opt.state_dict()
    for entry in begun["state"].values():
        entry.pop("velocity", None)
    with pytest.raises(ConfigError, match="has no 'velocity'"):
        SGD([{"params": mine[i : i + 1]} for i in range(held)], lr=lr).load_state_dict(begun)


def test_two_schedules_stepped_on_one_optimiser_compound_as_torchs(seeded):
    """Each schedule went back to its own closed form over the rate the other had just
    set, so one schedule's decay was lost (0.75 where PyTorch's chained rate is 0.375)."""
    rng = seeded.rng
    ours, theirs = twins(random_arrays(rng, 2))
    opt, ref = grouped(rng, "sgd", ours, theirs, groups=2)
    kinds = [str(k) for k in rng.choice(["step", "cosine"], size=2)]
    pairs = []
    for kind in kinds:
        if kind == "step":
            step_size, gamma = int(rng.integers(1, 4)), float(rng.uniform(0.1, 0.9))
            pairs.append((StepLR(opt, step_size, gamma), TS.StepLR(ref, step_size, gamma)))
        else:
            # η_min 0: with a floor, another schedule can take the rate below it while the
            # cosine climbs, where PyTorch's goes below zero (wxb's does not; tested above)
            T_max = int(rng.integers(2, 8))
            pairs.append((CosineAnnealingLR(opt, T_max), TS.CosineAnnealingLR(ref, T_max)))
    for epoch in range(1, int(rng.integers(8, 20))):
        step_both(rng, ours, theirs, opt, ref, pairs)
        for i, (a, b) in enumerate(zip(opt.param_groups, ref.param_groups, strict=True)):
            assert a["lr"] == pytest.approx(b["lr"], rel=1e-10, abs=1e-15), seeded.msg(
                f"{kinds} epoch {epoch} group {i}"
            )
    assert_same(seeded, ours, theirs, f"{kinds}")


@pytest.mark.parametrize("name", list(OURS))
def test_step_takes_a_closure_and_returns_its_loss_as_torch(seeded, name):
    # step(closure) (PyTorch's generic loop, L-BFGS-ready) raised TypeError: step() took
    # no argument; torch calls the closure with gradients on, then updates, then returns
    rng = seeded.rng
    n, c = int(rng.integers(2, 6)), int(rng.integers(2, 5))
    model = Sequential(Dense(n, c, dtype="float64"))
    theirs = torch.nn.Linear(n, c).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(model[0].weight.data))
        theirs.bias.copy_(torch.from_numpy(model[0].bias.data))
    spec = settings(rng, name)
    opt, ref = OURS[name](model.parameters(), **spec), THEIRS[name](theirs.parameters(), **spec)
    for _ in range(3):
        X, y = rng.normal(size=(7, n)), rng.integers(0, c, size=7)

        def closure(X=X, y=y):
            opt.zero_grad()
            loss = CrossEntropyLoss()(model(X), y)
            loss.backward()
            return loss

        def torch_closure(X=X, y=y):
            ref.zero_grad()
            loss = torch.nn.functional.cross_entropy(
                theirs(torch.from_numpy(X)), torch.from_numpy(y)
            )
            loss.backward()
            return loss

        with wxb.no_grad(), torch.no_grad():  # the closure runs with gradients on even so
            loss, expected = opt.step(closure), ref.step(torch_closure)
        assert float(loss.data) == pytest.approx(expected.item(), rel=1e-12), seeded.msg("loss")
    assert_same(seeded, model.parameters(), list(theirs.parameters()), "after closure steps")
    set_grads(rng, model.parameters(), list(theirs.parameters()))
    assert opt.step() is None and ref.step() is None
    assert_same(seeded, model.parameters(), list(theirs.parameters()), "after a plain step")


@pytest.mark.parametrize("name", list(OURS))
def test_optimiser_state_reset_by_assignment_starts_again_as_torch(seeded, name):
    # opt.state = defaultdict(dict), PyTorch's reset of the moments and step counts (a new
    # task, a restart), set an attribute nothing read: Adam went on with its old moments
    # and bias correction, SGD with its old velocity
    from collections import defaultdict

    rng = seeded.rng
    ours, theirs = twins(random_arrays(rng, int(rng.integers(2, 6))))
    spec = settings(rng, name)
    opt, ref = OURS[name](ours, **spec), THEIRS[name](theirs, **spec)
    for _ in range(3):
        set_grads(rng, ours, theirs, missing=0.3)
        opt.step()
        ref.step()
    state = opt.state  # read as PyTorch's: an entry for each parameter stepped so far
    if name != "sgd":  # (torch's SGD keeps no step count, and no entry without momentum)
        stepped = [id(p) for p, q in zip(ours, theirs, strict=True) if q in ref.state]
        assert [id(p) for p in state] == stepped
        for p, q in zip(ours, theirs, strict=True):
            if q in ref.state:
                assert state[p]["step"] == int(ref.state[q]["step"])
                np.testing.assert_allclose(state[p]["moment1"], ref.state[q]["exp_avg"])
    opt.state, ref.state = defaultdict(dict), defaultdict(dict)
    assert not opt.state
    for _ in range(3):
        set_grads(rng, ours, theirs, missing=0.3)
        opt.step()
        ref.step()
    assert_same(seeded, ours, theirs, "after the reset")
    with pytest.raises(ConfigError, match="load_state_dict"):
        opt.state = {ours[0]: {"step": 1}}


def test_pytorchs_options_at_their_defaults_are_taken_and_others_refused():
    """Code written for PyTorch spells out options wxb does not have (amsgrad=False,
    foreach=None, ignore_index=-100, label_smoothing=0.0, weight=None): each was a
    TypeError. At PyTorch's default they are taken; any other value is one line that
    says what to do instead, never ignored; a misspelt keyword stays Python's TypeError."""
    import torch

    params = lambda: wxb.nn.Dense(2, 2).parameters()  # noqa: E731
    wxb.optim.Adam(params(), amsgrad=False, foreach=None, fused=False, maximize=False,
                   capturable=False, differentiable=False)  # fmt: skip
    wxb.optim.AdamW(params(), foreach=True)  # an implementation: the same numbers
    wxb.optim.SGD(params(), lr=0.1, maximize=False, foreach=False)
    wxb.nn.CrossEntropyLoss(weight=None, ignore_index=-100, label_smoothing=0.0)
    wxb.nn.BCEWithLogitsLoss(weight=None, pos_weight=None, reduction="sum")
    wxb.nn.MSELoss(size_average=None, reduce=None)
    refused = [
        (lambda: wxb.optim.Adam(params(), amsgrad=True), "amsgrad=True.*AMSGrad is not"),
        (lambda: wxb.optim.SGD(params(), lr=0.1, maximize=True), "maximize=True.*negated"),
        (lambda: wxb.optim.SGD(params(), lr=0.1, differentiable=True), "differentiable=True"),
        (lambda: wxb.optim.SGD(params(), lr=0.1, foreach="yes"), "foreach must be True, False"),
        (lambda: wxb.nn.CrossEntropyLoss(label_smoothing=1.5), "between 0.0 and 1.0"),
        (lambda: wxb.nn.CrossEntropyLoss(weight=torch.ones(3, 3)), "1-D array of numbers"),
        (lambda: wxb.nn.CrossEntropyLoss(ignore_index=0.5), "ignore_index must be an integer"),
        (lambda: wxb.nn.MSELoss(reduce=False), "PyTorch deprecated it too"),
    ]
    for make, pattern in refused:
        with pytest.raises(wxb.errors.ConfigError, match=pattern):
            make()
    with pytest.raises(TypeError, match="unexpected keyword argument 'amsgrd'"):
        wxb.optim.Adam(params(), amsgrd=True)


def test_label_smoothing_as_probability_targets_is_torchs_loss(rng):
    """Smoothed probability targets give PyTorch's smoothed loss, as label_smoothing does."""
    import torch

    n, classes, eps = int(rng.integers(3, 9)), int(rng.integers(2, 6)), float(rng.uniform(0, 0.3))
    z, y = rng.normal(size=(n, classes)), rng.integers(0, classes, n)
    smoothed = (1 - eps) * np.eye(classes)[y] + eps / classes
    ours = wxb.Tensor(z, requires_grad=True)
    loss = wxb.nn.CrossEntropyLoss()(ours, smoothed)
    loss.backward()
    theirs = torch.tensor(z, requires_grad=True)
    expected = torch.nn.CrossEntropyLoss(label_smoothing=eps)(theirs, torch.tensor(y))
    expected.backward()
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-12)
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-15)
