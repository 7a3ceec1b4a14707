"""Saving, loading and resuming: what a user saves, loaded into fresh objects, goes on as
the uninterrupted run does, bit for bit.

Random models, optimisers, schedules and moments drawn fresh each run (the seed is
printed; ``WXB_TEST_SEED`` replays it).
"""

import copy
import itertools

import numpy as np

from wxb import nn, optim


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
    state was taken; its load now restores it."""
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
