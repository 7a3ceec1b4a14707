"""Saving, loading and resuming: what a user saves, loaded into fresh objects, goes on as
the uninterrupted run does, bit for bit.

Random models, optimisers, schedules and moments drawn fresh each run (the seed is
printed; ``WXB_TEST_SEED`` replays it).
"""

import copy
import itertools
import random
import shutil

import numpy as np
import pytest
import torch

import wxb
from wxb import nn, optim
from wxb.nn import Parameter


def _model(seed: int, sizes: list[int]) -> nn.Sequential:
    layers: list = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b, seed=seed + i, dtype="float64"))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def _step(model, opt, schedule, X, y) -> None:
    opt.zero_grad()
    loss = nn.CrossEntropyLoss()(model(X), y)
    loss.backward()
    opt.step()
    schedule.step()


def _optimiser(kind: str, params, lr: float):
    if kind == "sgd":
        return optim.SGD(params, lr=lr, momentum=0.9)
    if kind == "adam":
        return optim.Adam(params, lr=lr)
    return optim.RMSprop(params, lr=lr)


# =====================================================================================
# A cosine schedule, a group added since its last step, saved in PyTorch's order
# =====================================================================================
def test_cosine_resume_after_a_group_was_added_climbs_as_the_uninterrupted_run(seeded):
    """Saved (optimizer.state_dict() first, then the scheduler's, as a PyTorch checkpoint
    dict is written) in the epoch a group was added, the resumed cosine climbed out of
    its trough towards the group's base rate, not towards the rate it was added with:
    0.0020 where the uninterrupted run had 0.00076 (T_max 5, lr 0.002 added at epoch 3).
    The scheduler's state_dict() wrote the group's initial_lr after the optimiser's
    state was taken; it is now a read, and the group is taken on at the next step in
    both runs alike."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 7, size=3))
    sizes = [n, h, h, c]
    seed = int(rng.integers(1 << 30))
    X = rng.normal(size=(int(rng.integers(8, 20)), n))
    y = rng.integers(0, c, size=len(X))
    kind = str(rng.choice(["sgd", "adam", "rmsprop"]))
    lr, added_lr = float(rng.uniform(0.01, 0.1)), float(rng.uniform(1e-3, 0.05))
    t_max = int(rng.integers(2, 5))
    eta_min = float(rng.choice([0.0, rng.uniform(1e-5, 1e-3)]))
    added = int(rng.integers(1, t_max + 1))  # before the first trough (or at it)
    epochs = added + 2 * t_max + 2  # through a trough and the climb out of it
    msg = seeded.msg(
        f"{kind} lr {lr:.4g}, group of lr {added_lr:.4g} added at epoch {added}, "
        f"cosine T_max {t_max} eta_min {eta_min:.3g}, {epochs} epochs"
    )

    def fresh(groups_now: int):
        model = _model(seed, sizes)
        params = list(model.parameters())
        first, rest = params[:2], params[2:]
        if groups_now == 2:
            opt = _optimiser(kind, [{"params": first}, {"params": rest, "lr": added_lr}], lr)
        else:
            opt = _optimiser(kind, first, lr)
        return model, rest, opt

    model, rest, opt = fresh(1)
    schedule = optim.CosineAnnealingLR(opt, T_max=t_max, eta_min=eta_min)
    for epoch in range(epochs):
        if epoch == added:
            opt.add_param_group({"params": rest, "lr": added_lr})
            saved = {  # PyTorch's checkpoint dict, in its usual order
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": copy.deepcopy(schedule.state_dict()),
            }
        _step(model, opt, schedule, X, y)

    # the usual resume: everything made, then each state loaded in turn
    model2, _, opt2 = fresh(2)
    schedule2 = optim.CosineAnnealingLR(opt2, T_max=t_max, eta_min=eta_min)
    model2.load_state_dict(saved["model"])
    opt2.load_state_dict(saved["optimizer"])
    schedule2.load_state_dict(saved["scheduler"])
    for _ in range(added, epochs):
        _step(model2, opt2, schedule2, X, y)

    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups], msg
    ours, theirs = model.state_dict(), model2.state_dict()
    assert all(np.array_equal(ours[k], theirs[k]) for k in ours), msg


# =====================================================================================
# Chained schedules, a group added: state_dict() is a read, and a resume goes on alike
# =====================================================================================
def _schedules(names, ours, theirs, rng_values):
    made_ours, made_theirs = [], []
    for name, (gamma, step, milestones) in zip(names, rng_values, strict=True):
        if name == "exp":
            made_ours.append(optim.ExponentialLR(ours, gamma))
            made_theirs.append(torch.optim.lr_scheduler.ExponentialLR(theirs, gamma))
        elif name == "step":
            made_ours.append(optim.StepLR(ours, step, gamma))
            made_theirs.append(torch.optim.lr_scheduler.StepLR(theirs, step, gamma))
        else:
            made_ours.append(optim.MultiStepLR(ours, milestones, gamma))
            made_theirs.append(torch.optim.lr_scheduler.MultiStepLR(theirs, milestones, gamma))
    return made_ours, made_theirs


@pytest.mark.filterwarnings("ignore:Detected call of")  # torch: no optimizer.step() here
def test_chained_schedules_with_a_group_added_follow_torch_through_saves_and_resumes(seeded):
    """Two schedules stepped on one optimiser, a group added mid-run: taking the
    schedules' state_dict() (a checkpoint) between the addition and the next step made
    the second schedule take the group on at its rate before the first one's step, so
    the first one's decay was lost: ExponentialLR(0.8) then MultiStepLR gave the added
    group 0.0020 where PyTorch, and the same run without the read, give 0.0016. A
    resume from a checkpoint taken there went on with the same wrong rate."""
    rng = seeded.rng
    epochs = int(rng.integers(6, 10))
    added = int(rng.integers(1, epochs - 2))
    saved_at = int(rng.integers(added, epochs - 1))  # the epoch added, or later
    # the first one changes the rate at every step: the second must compound on it
    names = ["exp", str(rng.choice(["exp", "step", "multi"]))]
    values = [
        (
            float(rng.uniform(0.3, 0.95)),
            int(rng.integers(1, 4)),
            sorted({int(v) for v in rng.integers(1, epochs + 1, size=3)}),
        )
        for _ in names
    ]
    lr, added_lr = float(rng.uniform(0.01, 0.1)), float(rng.uniform(1e-3, 0.05))
    msg = seeded.msg(
        f"{names} {values}, lr {lr:.4g}, group of {added_lr:.4g} added at epoch {added}, "
        f"saved at {saved_at}, {epochs} epochs"
    )
    arrays = [rng.normal(size=(3, 2)), rng.normal(size=3)]

    def ours_made(groups: int):
        params = [Parameter(a.copy(), dtype="float64") for a in arrays]
        if groups == 2:
            return params, optim.SGD(
                [{"params": params[:1]}, {"params": params[1:], "lr": added_lr}], lr=lr
            )
        return params, optim.SGD(params[:1], lr=lr)

    params, opt = ours_made(1)
    tparams = [torch.tensor(a, requires_grad=True) for a in arrays]
    topt = torch.optim.SGD(tparams[:1], lr=lr)
    scheds, tscheds = _schedules(names, opt, topt, values)
    ours, theirs, saved = [], [], None
    for epoch in range(epochs):
        if epoch == added:
            opt.add_param_group({"params": params[1:], "lr": added_lr})
            topt.add_param_group({"params": tparams[1:], "lr": added_lr})
        # a checkpoint each epoch, in PyTorch's usual order
        checkpoint = (opt.state_dict(), [copy.deepcopy(s.state_dict()) for s in scheds])
        if epoch == saved_at:
            saved = checkpoint
        for s, t in zip(scheds, tscheds, strict=True):
            s.step()
            t.step()
        ours.append([g["lr"] for g in opt.param_groups])
        theirs.append([g["lr"] for g in topt.param_groups])
    np.testing.assert_allclose(
        [r for row in ours for r in row],
        [r for row in theirs for r in row],
        rtol=1e-12,
        err_msg=msg,
    )

    # resumed from the checkpoint of epoch saved_at: everything made, then loaded
    _, opt2 = ours_made(2)
    scheds2 = _schedules(names, opt2, topt, values)[0]
    opt2.load_state_dict(saved[0])
    for s, state in zip(scheds2, saved[1], strict=True):
        s.load_state_dict(state)
    resumed = []
    for _ in range(saved_at, epochs):
        for s in scheds2:
            s.step()
        resumed.append([g["lr"] for g in opt2.param_groups])
    assert resumed == ours[saved_at:], msg


@pytest.mark.filterwarnings("ignore:Detected call of")  # torch: no optimizer.step() here
def test_chained_schedules_compound_on_a_group_added_before_their_first_step(seeded):
    """A group added after the schedules were made but before their first step: the
    second schedule started it from its initial_lr, not from the rate the first one had
    just set, so ExponentialLR(0.9) then MultiStepLR left it at 0.0020 after the first
    epoch where PyTorch gives 0.0018 (and every later rate stayed a factor 1/0.9 off)."""
    rng = seeded.rng
    epochs = int(rng.integers(3, 9))
    names = ["exp", str(rng.choice(["exp", "step", "multi"]))]
    values = [
        (
            float(rng.uniform(0.3, 0.95)),
            int(rng.integers(1, 4)),
            sorted({int(v) for v in rng.integers(1, epochs + 1, size=3)}),
        )
        for _ in names
    ]
    lr, added_lr = float(rng.uniform(0.01, 0.1)), float(rng.uniform(1e-3, 0.05))
    msg = seeded.msg(f"{names} {values}, lr {lr:.4g}, group of {added_lr:.4g}, {epochs} epochs")
    arrays = [rng.normal(size=(3, 2)), rng.normal(size=3)]
    params = [Parameter(a.copy(), dtype="float64") for a in arrays]
    tparams = [torch.tensor(a, requires_grad=True) for a in arrays]
    opt, topt = optim.SGD(params[:1], lr=lr), torch.optim.SGD(tparams[:1], lr=lr)
    scheds, tscheds = _schedules(names, opt, topt, values)
    opt.add_param_group({"params": params[1:], "lr": added_lr})
    topt.add_param_group({"params": tparams[1:], "lr": added_lr})
    ours, theirs = [], []
    for _ in range(epochs):
        for s, t in zip(scheds, tscheds, strict=True):
            s.step()
            t.step()
        ours += [g["lr"] for g in opt.param_groups]
        theirs += [g["lr"] for g in topt.param_groups]
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, err_msg=msg)


# =====================================================================================
# fit's checkpoints: a Dropout with a generator of its own
# =====================================================================================
def _resume_from_a_random_step(run_saving, run_resuming, tmp_path, rng):
    """``run_saving`` writes a checkpoint at every step; one of them, picked at random
    (not the last: steps are left), is copied alone into a folder that ``run_resuming``
    resumes from. Returns its (history, weights) and the copied checkpoint's path."""
    every = tmp_path / "every"
    run_saving(every, checkpoint_every=1, keep_checkpoints=10_000)
    found = sorted(every.glob("step-*.json"))
    source = found[int(rng.integers(0, len(found) - 1))]
    folder = tmp_path / "resumed"
    folder.mkdir()
    for path in (source, source.with_suffix(".safetensors")):
        shutil.copy2(path, folder / path.name)
    history, weights = run_resuming(folder, resume=True)
    return history, weights, folder / source.name


def test_a_resume_keeps_the_runs_dropout_masks_whatever_seed_the_dropout_was_rebuilt_with(
    seeded, tmp_path
):
    """The checkpoint restores a Dropout's own generator to the saved run's state, but its
    masks went by a key taken from the seed the rebuilt layer was given: a resume on a
    model rebuilt with Dropout(seed=8) for a run begun with seed=7 dropped other units
    than either run, with no word said. The checkpoint now keeps the key too."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 8, size=3))
    rows = int(rng.integers(20, 50))
    X, y = rng.normal(size=(rows, n)), rng.integers(0, c, size=rows)
    p = float(rng.uniform(0.2, 0.6))
    seeds = [int(v) for v in rng.choice(1 << 30, size=4, replace=False)]
    dropout_seed, other_seed, model_seed, fit_seed = seeds
    batch, epochs = int(rng.integers(4, 12)), int(rng.integers(2, 5))
    msg = seeded.msg(f"{rows}×{n} → {h} → {c}, dropout {p:.2f}, batch {batch}, {epochs} epochs")

    def run(drop_seed, folder=None, **options):
        model = nn.Sequential(
            nn.Linear(n, h, seed=model_seed, dtype="float64"),
            nn.ReLU(),
            nn.Dropout(p, seed=drop_seed),
            nn.Linear(h, c, seed=model_seed + 1, dtype="float64"),
        )
        history = wxb.fit(
            model, X, y, epochs=epochs, batch_size=batch, seed=fit_seed, verbose=False,
            checkpoint_dir=folder, **options,
        )  # fmt: skip
        return history, model.state_dict()

    reference = run(dropout_seed)
    history, weights, source = _resume_from_a_random_step(
        lambda folder, **options: run(dropout_seed, folder, **options),
        lambda folder, **options: run(other_seed, folder, **options),
        tmp_path,
        rng,
    )
    assert history.resumed_from == str(source), msg
    assert history.history == reference[0].history, f"{msg}; from {source.name}"
    assert all(np.array_equal(weights[k], v) for k, v in reference[1].items()), msg


class _NoisyByList(nn.Module):
    """Noise from generators the module keeps in a list and a dict (one per kind of noise)."""

    def __init__(self, n, h, c, seed, scale):
        super().__init__()
        self.body = nn.Linear(n, h, seed=seed, dtype="float64")
        self.head = nn.Linear(h, c, seed=seed + 1, dtype="float64")
        self.rngs = [np.random.default_rng(seed + 2)]
        self.by_kind = {"mask": np.random.default_rng(seed + 3)}
        self.scale = scale

    def forward(self, x):
        h = wxb.ops.relu(self.body(x))
        if self.training:
            h = h + self.rngs[0].normal(scale=self.scale, size=h.shape)
            h = h * (self.by_kind["mask"].random(h.shape) > 0.2)
        return self.head(h)


def test_a_resume_restores_generators_a_module_keeps_in_a_list_or_a_dict(seeded, tmp_path):
    """Only a generator held directly as an attribute was checkpointed: one in a list or
    a dict (self.rngs = [default_rng(s)]) went on from where the new process made it,
    and the resumed run drew other noise than the uninterrupted one, with no word said."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 8, size=3))
    rows = int(rng.integers(20, 50))
    X, y = rng.normal(size=(rows, n)), rng.integers(0, c, size=rows)
    seed, fit_seed = (int(v) for v in rng.integers(0, 1 << 30, size=2))
    scale = float(rng.uniform(0.1, 1.0))
    batch, epochs = int(rng.integers(4, 12)), int(rng.integers(2, 4))
    msg = seeded.msg(f"{rows}×{n} → {h} → {c}, noise {scale:.2f}, batch {batch}")

    def run(folder=None, **options):
        model = _NoisyByList(n, h, c, seed, scale)
        history = wxb.fit(
            model, X, y, epochs=epochs, batch_size=batch, seed=fit_seed, verbose=False,
            checkpoint_dir=folder, **options,
        )  # fmt: skip
        return history, model.state_dict()

    reference = run()
    history, weights, source = _resume_from_a_random_step(run, run, tmp_path, rng)
    assert history.resumed_from == str(source), msg
    assert history.history == reference[0].history, f"{msg}; from {source.name}"
    assert all(np.array_equal(weights[k], v) for k, v in reference[1].items()), msg


class _NoisyCrossEntropy(nn.CrossEntropyLoss):
    """Cross-entropy of logits scaled by a random factor from a generator of its own."""

    def __init__(self, seed):
        super().__init__()
        self.rng = np.random.default_rng(seed)

    def __call__(self, output, target):
        return super().__call__(output * float(self.rng.uniform(0.5, 1.5)), target)


class _Trainer:
    """A training helper whose method is the loss, drawing from the helper's generator."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.cross_entropy = nn.CrossEntropyLoss()

    def loss(self, output, target):
        return self.cross_entropy(output * float(self.rng.uniform(0.5, 1.5)), target)


@pytest.mark.parametrize("kind", ["Loss subclass", "function", "method"])
def test_a_resume_restores_the_generator_of_a_loss_of_ones_own(seeded, tmp_path, kind):
    """A loss that draws (noise, sampled rows) from a generator of its own: the checkpoint
    kept only the model's generators, so the resumed run's loss drew from where the new
    process made it, and the run ended with other weights, with no word said."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 8, size=3))
    rows = int(rng.integers(20, 50))
    X, y = rng.normal(size=(rows, n)), rng.integers(0, c, size=rows)
    seed, loss_seed, fit_seed = (int(v) for v in rng.integers(0, 1 << 30, size=3))
    batch, epochs = int(rng.integers(4, 12)), int(rng.integers(2, 4))
    msg = seeded.msg(f"{kind}: {rows}×{n} → {h} → {c}, batch {batch}, {epochs} epochs")

    def make_loss():
        if kind == "Loss subclass":
            return _NoisyCrossEntropy(loss_seed)
        if kind == "method":
            return _Trainer(loss_seed).loss
        draws = np.random.default_rng(loss_seed)
        base = nn.CrossEntropyLoss()

        def noisy(output, target):
            return base(output * float(draws.uniform(0.5, 1.5)), target)

        return noisy

    def run(folder=None, **options):
        model = _model(seed, [n, h, c])
        history = wxb.fit(
            model, X, y, loss=make_loss(), epochs=epochs, batch_size=batch, seed=fit_seed,
            verbose=False, checkpoint_dir=folder, **options,
        )  # fmt: skip
        return history, model.state_dict()

    reference = run()
    history, weights, source = _resume_from_a_random_step(run, run, tmp_path, rng)
    assert history.history == reference[0].history, f"{msg}; from {source.name}"
    assert all(np.array_equal(weights[k], v) for k, v in reference[1].items()), msg


class _GlobalNoise(nn.Module):
    """Noise from a global generator, as older code draws it: NumPy's (np.random.normal)
    or Python's (random.gauss)."""

    def __init__(self, n, h, c, seed, scale, source):
        super().__init__()
        self.body = nn.Linear(n, h, seed=seed, dtype="float64")
        self.head = nn.Linear(h, c, seed=seed + 1, dtype="float64")
        self.scale, self.source = scale, source

    def forward(self, x):
        h = wxb.ops.relu(self.body(x))
        if self.training:
            if self.source == "numpy":
                noise = np.random.normal(scale=self.scale, size=h.shape)
            else:
                flat = [random.gauss(0.0, self.scale) for _ in range(h.shape[0] * h.shape[1])]
                noise = np.reshape(flat, h.shape)
            h = h + noise
        return self.head(h)


@pytest.mark.parametrize("source", ["numpy", "python"])
def test_a_resume_restores_the_global_generators(seeded, tmp_path, source):
    """A module drawing from np.random or random (the global generators): the resumed run drew
    from wherever the new process had left it, not from where the run had, and ended
    with other weights than the uninterrupted run, with no word said."""
    rng = seeded.rng
    kept = np.random.get_state(), random.getstate()  # this test's seeding stays its own
    try:
        n, h, c = (int(v) for v in rng.integers(2, 8, size=3))
        rows = int(rng.integers(20, 50))
        X, y = rng.normal(size=(rows, n)), rng.integers(0, c, size=rows)
        seed, fit_seed, global_seed, other = (int(v) for v in rng.integers(0, 1 << 30, size=4))
        scale = float(rng.uniform(0.1, 1.0))
        batch, epochs = int(rng.integers(4, 12)), int(rng.integers(2, 4))
        msg = seeded.msg(f"{source}: {rows}×{n} → {h} → {c}, noise {scale:.2f}, batch {batch}")

        def run(start, folder=None, **options):
            np.random.seed(start)
            random.seed(start)
            model = _GlobalNoise(n, h, c, seed, scale, source)
            history = wxb.fit(
                model, X, y, epochs=epochs, batch_size=batch, seed=fit_seed, verbose=False,
                checkpoint_dir=folder, **options,
            )  # fmt: skip
            return history, model.state_dict()

        reference = run(global_seed)
        history, weights, picked = _resume_from_a_random_step(
            lambda folder, **options: run(global_seed, folder, **options),
            # a new process: the global generators elsewhere
            lambda folder, **options: run(other, folder, **options),
            tmp_path,
            rng,
        )
        assert history.history == reference[0].history, f"{msg}; from {picked.name}"
        assert all(np.array_equal(weights[k], v) for k, v in reference[1].items()), msg
    finally:
        np.random.set_state(kept[0])
        random.setstate(kept[1])
