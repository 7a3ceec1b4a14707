"""The planned step's update takes a short path when every gradient already lies where
the update reads it and the rule is a stock compiled loop (``Optimizer._update_params``,
``_walk_stretch``, ``_direct``). Each case a user can make between steps must leave that
path or be read by it: each test below changes one thing mid-run and checks the weights
against PyTorch doing the same, so a later short cut cannot skip one of them silently."""

import copy

import numpy as np
import pytest
import torch

import wxb
from wxb import nn
from wxb.errors import TrainingError
from wxb.optim import SGD, Adam, AdamW, calls_kernel
from wxb.step import PlannedStep, make_step
from wxb.tensor import Tensor

TORCH = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
OURS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}
OPTIONS = {
    "sgd": {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3},
    "adam": {"lr": 1e-2, "weight_decay": 1e-3},
    "adamw": {"lr": 1e-2, "weight_decay": 1e-2},
}
NAMES = list(OURS)


def pair(rng, dtype="float64", sizes=(5, 7, 3)):
    """A wxb MLP and a PyTorch copy of it, in ``dtype``."""
    n, h, c = sizes
    model = nn.Sequential(
        nn.Dense(n, h, dtype=dtype, seed=rng), nn.ReLU(), nn.Dense(h, c, dtype=dtype, seed=rng)
    )
    kind = torch.float64 if dtype == "float64" else torch.float32
    twin = torch.nn.Sequential(torch.nn.Linear(n, h), torch.nn.ReLU(), torch.nn.Linear(h, c))
    twin = twin.to(kind)
    with torch.no_grad():
        for ours, theirs in zip(model.parameters(), twin.parameters(), strict=True):
            theirs.copy_(torch.from_numpy(ours.data.copy()))
    return model, twin


def batch(rng, n=5, c=3, rows=8, dtype=np.float64):
    return rng.normal(size=(rows, n)).astype(dtype), rng.integers(0, c, rows)


def torch_step(twin, opt, X, y):
    opt.zero_grad()
    out = twin(torch.from_numpy(X).to(next(twin.parameters()).dtype))
    torch.nn.functional.cross_entropy(out, torch.from_numpy(y)).backward()
    opt.step()


def assert_same(model, twin, rtol=1e-9, atol=1e-12):
    for ours, theirs in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=rtol, atol=atol)


def run(rng, name, change, steps=(3, 3), dtype="float64", make=None):
    """``steps[0]`` planned steps, ``change(model, opt, twin, topt)``, ``steps[1]`` more;
    the weights checked against PyTorch after each."""
    model, twin = pair(rng, dtype)
    opt = (make or OURS[name])(model.parameters(), **OPTIONS[name])
    topt = TORCH[name](twin.parameters(), **OPTIONS[name])
    step = make_step(model, "cross_entropy", opt)
    assert isinstance(step, PlannedStep)
    tolerances = TOLERANCES[np.dtype(dtype).type]
    for k in range(steps[0] + steps[1]):
        if k == steps[0]:
            change(model, opt, twin, topt)
        X, y = batch(rng, dtype=np.dtype(model.dtype))
        step(X, y)
        torch_step(twin, topt, X, y)
        assert_same(model, twin, *tolerances)
    return model, opt, step


# float64: a few steps of a small net round at ~1e-15 relative; float32 (eps 1.2e-7) at a
# few hundred ulps after six steps of Adam's divide by √v
TOLERANCES = {np.float64: (1e-9, 1e-12), np.float32: (2e-4, 1e-6)}


@pytest.mark.parametrize("name", NAMES)
def test_a_learning_rate_edited_in_param_groups_is_read(seeded, name):
    def change(model, opt, twin, topt):
        for group in (*opt.param_groups, *topt.param_groups):
            group["lr"] *= 0.3
            group["weight_decay"] = 0.02

    run(seeded.rng, name, change)


def test_momentum_switched_off_and_on_is_read(seeded):
    rng = seeded.rng

    def change(model, opt, twin, topt):
        for group in (*opt.param_groups, *topt.param_groups):
            group["momentum"] = 0.0

    run(rng, "sgd", change)

    def back_on(model, opt, twin, topt):
        for group in (*opt.param_groups, *topt.param_groups):
            group["momentum"], group["nesterov"] = 0.5, True

    run(rng, "sgd", back_on)


@pytest.mark.parametrize("name", NAMES)
def test_a_gradient_set_by_hand_is_copied_in(seeded, name):
    rng = seeded.rng
    model, twin = pair(rng)
    opt = OURS[name](model.parameters(), **OPTIONS[name])
    topt = TORCH[name](twin.parameters(), **OPTIONS[name])
    step = make_step(model, "cross_entropy", opt)
    for k in range(6):
        X, y = batch(rng)
        step(X, y)
        torch_step(twin, topt, X, y)
        if k in (2, 4):  # then one step on gradients of one's own, some or all
            chosen = [bool(rng.random() < 0.5) or k == 4 for _ in model.parameters()]
            for ours, theirs, mine in zip(
                model.parameters(), twin.parameters(), chosen, strict=True
            ):
                if mine:
                    g = rng.normal(size=ours.shape)
                    ours.grad, theirs.grad = g, torch.from_numpy(g.copy())
                else:
                    theirs.grad = torch.from_numpy(np.array(ours.grad))
            opt.step()
            topt.step()
        assert_same(model, twin)


@pytest.mark.parametrize("name", NAMES)
def test_a_frozen_parameter_is_not_stepped(seeded, name):
    def change(model, opt, twin, topt):
        model[0].weight.requires_grad = False
        twin[0].weight.requires_grad = False
        frozen.append(model[0].weight.data.copy())

    frozen = []
    model, _, _ = run(seeded.rng, name, change)
    np.testing.assert_array_equal(model[0].weight.data, frozen[0])


@pytest.mark.parametrize("name", NAMES)
def test_state_loaded_or_forgotten_is_read(seeded, name):
    rng = seeded.rng
    saved = {}

    def save(model, opt, twin, topt):
        saved["ours"] = copy.deepcopy((model.state_dict(), opt.state_dict()))
        saved["theirs"] = copy.deepcopy((twin.state_dict(), topt.state_dict()))

    model, twin = pair(rng)
    opt = OURS[name](model.parameters(), **OPTIONS[name])
    topt = TORCH[name](twin.parameters(), **OPTIONS[name])
    step = make_step(model, "cross_entropy", opt)
    for k in range(9):
        if k == 2:
            save(model, opt, twin, topt)
        if k == 5:  # back to step 2's weights and state
            model.load_state_dict(saved["ours"][0])
            opt.load_state_dict(saved["ours"][1])
            twin.load_state_dict(saved["theirs"][0])
            topt.load_state_dict(saved["theirs"][1])
        if k == 7:  # one parameter starts again: its step count differs from the others'
            del opt.state[model[2].weight]
            del topt.state[twin[2].weight]
        X, y = batch(rng)
        step(X, y)
        torch_step(twin, topt, X, y)
        assert_same(model, twin)


@pytest.mark.parametrize("name", NAMES)
def test_a_model_cast_to_float64_trains_on(seeded, name):
    def change(model, opt, twin, topt):
        model.double()  # wxb casts the optimiser's state with it; torch's is cast by hand
        twin.double()
        for entry in topt.state.values():
            for key, value in entry.items():
                if key != "step" and torch.is_tensor(value):
                    entry[key] = value.double()

    model, opt, _ = run(seeded.rng, name, change, dtype="float32")
    assert opt.flat.dtype == np.float64 and model[0].weight.data.dtype == np.float64


@pytest.mark.parametrize("name", NAMES)
def test_a_group_added_is_stepped_with_its_own_values(seeded, name):
    rng = seeded.rng
    model, twin = pair(rng)
    for p in (*model[2].parameters(), *twin[2].parameters()):
        p.requires_grad = False
    opt = OURS[name](model[0].parameters(), **OPTIONS[name])
    topt = TORCH[name](twin[0].parameters(), **OPTIONS[name])
    step = make_step(model, "cross_entropy", opt)
    assert isinstance(step, PlannedStep)
    for k in range(6):
        if k == 3:
            for p in (*model[2].parameters(), *twin[2].parameters()):
                p.requires_grad = True
            opt.add_param_group({"params": list(model[2].parameters()), "lr": 0.02})
            topt.add_param_group({"params": list(twin[2].parameters()), "lr": 0.02})
        X, y = batch(rng)
        step(X, y)
        torch_step(twin, topt, X, y)
        assert_same(model, twin)


@pytest.mark.parametrize("base", ["sgd", "adam"])
def test_a_subclass_rule_is_the_one_run(seeded, base):
    # a compiled rule of one's own (calls_kernel: one pass) must not be passed over for the
    # stock loop: this one steps with twice the group's learning rate
    parent = OURS[base]

    class Doubled(parent):
        @calls_kernel
        def _rule(self, data, grad, states, t, s1, s2, h):
            parent._rule(self, data, grad, states, t, s1, s2, {**h, "lr": 2 * h["lr"]})

    rng = seeded.rng
    model, twin = pair(rng)
    opt = Doubled(model.parameters(), **OPTIONS[base])
    topt = TORCH[base](twin.parameters(), **{**OPTIONS[base], "lr": 2 * OPTIONS[base]["lr"]})
    step = make_step(model, "cross_entropy", opt)
    for _ in range(4):
        X, y = batch(rng)
        step(X, y)
        torch_step(twin, topt, X, y)
        assert_same(model, twin)


@pytest.mark.parametrize("name", NAMES)
def test_a_kept_gradient_and_an_old_graph_are_left_as_they_were(seeded, name):
    rng = seeded.rng
    model, _ = pair(rng)
    opt = OURS[name](model.parameters(), **OPTIONS[name])
    step = make_step(model, "cross_entropy", opt)
    for _ in range(2):
        step(*batch(rng))
    held = [p.grad for p in model.parameters()]
    values = [g.copy() for g in held]
    X, y = batch(rng)
    loss = wxb.nn.CrossEntropyLoss()(model(Tensor(X)), y)  # a graph recorded before the update
    step(*batch(rng))
    for g, v in zip(held, values, strict=True):
        np.testing.assert_array_equal(g, v)
    with pytest.raises(TrainingError, match="modified in place since the forward"):
        loss.backward()
