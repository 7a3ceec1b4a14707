"""The lean stack (``wxb.nn.plan.LeanStack``) takes over the planned step once a batch
size has run: it must compute exactly, bit for bit, what the plan's general forward and
backward compute, and hand back to them whenever something it took as fixed changes."""

import copy
import os

import numpy as np
import pytest
from lean_paths import assert_identical, batches_for, lean_stacks_off

import wxb
from wxb import kernels, nn
from wxb.nn.plan import LeanStack
from wxb.optim import SGD, Adam, AdamW, FlatParameters
from wxb.step import PlannedStep

OPTIMIZERS = {
    "sgd": lambda p: SGD(p, lr=0.05),
    "sgd_momentum": lambda p: SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True),
    "adam": lambda p: Adam(p, lr=1e-2, weight_decay=1e-3),
    "adamw": lambda p: AdamW(p, lr=1e-2),
}
ACTIVATIONS = [
    lambda rng: nn.ReLU(),
    lambda rng: nn.Tanh(),
    lambda rng: nn.Sigmoid(),
    lambda rng: nn.LeakyReLU(float(rng.uniform(0.01, 0.5))),
    lambda rng: nn.Identity(),
    lambda rng: nn.GELU(),
    lambda rng: nn.SiLU(),
    lambda rng: nn.ELU(),
]


def random_stack(rng, dtype):
    """A Sequential a user could write: Dense layers with or without a bias, stock
    activations (some after a bias-free Dense, one maybe first), Dropout, Standardize."""
    n = int(rng.integers(1, 7))
    layers = []
    if rng.random() < 0.3:
        layers.append(nn.Standardize(rng.normal(size=n), rng.uniform(0.5, 2, size=n), dtype=dtype))
    if rng.random() < 0.2:
        layers.append(ACTIVATIONS[rng.integers(len(ACTIVATIONS))](rng))
    width = n
    for _ in range(int(rng.integers(1, 4))):
        out = int(rng.integers(1, 9))
        layers.append(nn.Dense(width, out, bias=bool(rng.random() < 0.8), dtype=dtype, seed=rng))
        layers.append(ACTIVATIONS[rng.integers(len(ACTIVATIONS))](rng))
        if rng.random() < 0.3:
            layers.append(nn.Dropout(float(rng.uniform(0.1, 0.6)), seed=int(rng.integers(1 << 30))))
        width = out
    classes = int(rng.integers(2, 5))
    layers.append(nn.Dense(width, classes, dtype=dtype, seed=rng))
    return nn.Sequential(*layers), n, classes


def run_steps(model, optimizer_name, batches, between=None):
    """Each batch's loss, the gradients after it and the final weights, from the step
    ``fit`` runs; ``between(i, model, optimizer)`` changes something before step i."""
    optimizer = OPTIMIZERS[optimizer_name](model.parameters())
    step = PlannedStep(model, nn.CrossEntropyLoss(), optimizer)
    losses, grads, used = [], [], []
    for i, (X, y) in enumerate(batches):
        if between is not None:
            between(i, model, optimizer)
        lean = step.plan._leans.get(len(X))
        used.append(lean is not None and lean.current(X))
        losses.append(step(X, y))
        grads.append([None if p.grad is None else p.grad.copy() for p in model.parameters()])
    return losses, grads, [p.data.copy() for p in model.parameters()], used


@pytest.mark.parametrize("optimizer_name", list(OPTIMIZERS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lean_stack_computes_what_the_plan_computes(rng, optimizer_name, dtype):
    for _ in range(6):
        model, n, classes = random_stack(rng, dtype)
        big = int(rng.integers(2, 9))
        sizes = [big, big, big, big - 1 if big > 2 else big, big, big, 2, big]  # fit's last batch
        batches = batches_for(rng, n, classes, dtype, sizes)
        lean = run_steps(copy.deepcopy(model), optimizer_name, batches)
        assert any(lean[3]), "the lean stack never ran"
        with lean_stacks_off():
            plan = run_steps(copy.deepcopy(model), optimizer_name, batches)
        assert not any(plan[3])
        assert_identical(lean, plan)


def changes():
    """Things a user does between steps (in a callback, or by hand), each of which the
    lean stack must notice or follow: (name, change before step i)."""

    def freeze(i, model, optimizer):
        first = model[0] if isinstance(model[0], nn.Dense) else model[1]
        first.requires_grad_(i not in (3, 4))

    def new_data(i, model, optimizer):
        if i == 3:
            dense = model[0]
            dense.weight.data = dense.weight.data * 0.5  # another array, the same shape

    def eval_mode(i, model, optimizer):
        model.train(i not in (2, 3))

    def slope(i, model, optimizer):
        if i == 3:
            model[1].negative_slope = 0.3

    def learning_rate(i, model, optimizer):
        for group in optimizer.param_groups:
            group["lr"] = 0.05 / (i + 1)

    def route(i, model, optimizer):
        if i in (3, 5):
            kernels.use("numpy" if i == 3 else "auto")

    def swap_layer(i, model, optimizer):
        if i == 4:
            model[1] = nn.Tanh()

    return {
        "freeze": freeze,
        "new_data": new_data,
        "eval_mode": eval_mode,
        "slope": slope,
        "learning_rate": learning_rate,
        "route": route,
        "swap_layer": swap_layer,
    }


@pytest.mark.parametrize("change", list(changes()))
def test_changes_between_steps_take_effect(rng, change):
    dtype = "float64"
    n, hidden, classes = 4, 6, 3
    model = nn.Sequential(
        nn.Dense(n, hidden, dtype=dtype, seed=rng),
        nn.LeakyReLU(0.1),
        nn.Dropout(0.3, seed=int(rng.integers(1 << 30))),
        nn.Dense(hidden, classes, dtype=dtype, seed=rng),
    )
    batches = batches_for(rng, n, classes, dtype, [5] * 7)
    between = changes()[change]
    try:
        lean = run_steps(copy.deepcopy(model), "adam", batches, between)
        kernels.use(os.environ.get("WXB_KERNELS", "auto"))  # both runs from the same route
        with lean_stacks_off():
            plan = run_steps(copy.deepcopy(model), "adam", batches, between)
    finally:
        kernels.use(os.environ.get("WXB_KERNELS", "auto"))
    assert any(lean[3])
    assert_identical(lean, plan)


def test_a_gradient_kept_by_the_user_is_not_written_over(rng, monkeypatch):
    new_buffers = []
    original = FlatParameters._new_grad
    monkeypatch.setattr(
        FlatParameters, "_new_grad", lambda flat: (new_buffers.append(1), original(flat))[1]
    )
    model = nn.Sequential(nn.Dense(3, 5, seed=rng), nn.ReLU(), nn.Dense(5, 2, seed=rng))
    step = PlannedStep(model, nn.CrossEntropyLoss(), SGD(model.parameters(), lr=0.1))
    X, y = rng.normal(size=(4, 3)).astype(np.float32), rng.integers(0, 2, size=4)
    step(X, y)
    step(X, y)
    assert isinstance(step.plan._leans[4], LeanStack)
    new_buffers.clear()  # (the optimiser's first, when it was made)
    kept = model[0].weight.grad
    before = kept.copy()
    step(X * 2, y)  # the lean stack: its gradients must go elsewhere
    np.testing.assert_array_equal(kept, before)
    assert model[0].weight.grad is not kept
    assert len(new_buffers) == 1
    del kept
    # nothing outside holds a gradient now: and the lean stack itself holds none that
    # would make every step start a new buffer
    for _ in range(3):
        step(X, y)
    assert len(new_buffers) == 1


def test_fit_with_a_last_partial_batch_is_the_same_with_and_without(rng):
    X = rng.normal(size=(53, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=53)
    model = nn.Sequential(nn.Dense(6, 16, seed=rng), nn.ReLU(), nn.Dropout(0.2), nn.Dense(16, 3))
    runs = []
    for off in (False, True):
        trained = copy.deepcopy(model)
        if off:
            with lean_stacks_off():
                history = wxb.fit(trained, X, y, epochs=3, batch_size=8, seed=5, verbose=False)
        else:
            history = wxb.fit(trained, X, y, epochs=3, batch_size=8, seed=5, verbose=False)
        runs.append((history["loss"], [p.data.copy() for p in trained.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_lean_step_against_pytorch(rng):
    """An independent check: several lean steps against PyTorch's, in float64."""
    torch = pytest.importorskip("torch")
    from wxb.interop import to_torch

    model = nn.Sequential(
        nn.Dense(5, 7, dtype="float64", seed=rng),
        nn.Tanh(),
        nn.Dense(7, 4, bias=False, dtype="float64", seed=rng),
        nn.ReLU(),
        nn.Dense(4, 3, dtype="float64", seed=rng),
    )
    reference = to_torch(model)
    step = PlannedStep(model, nn.CrossEntropyLoss(), Adam(model.parameters(), lr=0.01))
    torch_optimizer = torch.optim.Adam(reference.parameters(), lr=0.01)
    for _ in range(6):
        X, y = rng.normal(size=(6, 5)), rng.integers(0, 3, size=6)
        value = step(X, y)
        torch_optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(
            reference(torch.from_numpy(X)), torch.from_numpy(y)
        )
        loss.backward()
        torch_optimizer.step()
        assert value == pytest.approx(loss.item(), rel=1e-10)
    assert isinstance(step.plan._leans[6], LeanStack)
    for ours, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_a_gradient_already_set_is_added_to_as_the_plan_adds(rng):
    """LeanStack.backward with .grad already set, even to the optimiser's own view (a
    step's zero_grad leaves none; a direct caller may): the sum, as the plan's backward."""
    results = []
    for lean_side in (True, False):
        seeded = np.random.default_rng(7)
        model = nn.Sequential(
            nn.Dense(3, 5, seed=seeded, dtype="float64"),
            nn.Tanh(),
            nn.Dense(5, 2, seed=seeded, dtype="float64"),
        )
        step = PlannedStep(model, nn.MSELoss(), SGD(model.parameters(), lr=0.1))
        X = seeded.normal(size=(4, 3))
        y = seeded.normal(size=(4, 2))
        step(X, y)
        lean, plan = step.plan._leans[4], step.plan
        before = [p.grad.copy() for p in model.parameters()]  # the views, still held as .grad
        grad = seeded.normal(size=(4, 2))
        if lean_side:
            lean.forward(X)
            lean.loss_grad[...] = grad
            lean.backward(X)
        else:
            plan.forward(X)
            plan.backward(grad)
        results.append(([p.grad.copy() for p in model.parameters()], before))
    (lean_grads, lean_before), (plan_grads, plan_before) = results
    for a, b, old in zip(lean_grads, plan_grads, lean_before, strict=True):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, old)
    for a, b in zip(lean_before, plan_before, strict=True):
        np.testing.assert_array_equal(a, b)


# -- the loop a user writes: model(X), the loss, backward(), step() ------------------------
def hand_loop(model, optimizer_name, batches, between=None, *, zero_every=1, retain=False):
    """The hand-written loop's losses, gradients after each backward and final weights;
    ``between(i, model, optimizer)`` runs between the forward and the backward of step i."""
    optimizer = OPTIMIZERS[optimizer_name](model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    losses, grads = [], []
    for i, (X, y) in enumerate(batches):
        if i % zero_every == 0:
            optimizer.zero_grad()
        loss = loss_fn(model(X), y)
        if between is not None:
            between(i, model, optimizer)
        loss.backward(retain_graph=retain)
        if retain:
            loss.backward()  # the same graph again: its gradients added
        losses.append(loss.item())
        grads.append([None if p.grad is None else p.grad.copy() for p in model.parameters()])
        if (i + 1) % zero_every == 0:
            optimizer.step()
    return losses, grads, [p.data.copy() for p in model.parameters()], [True]


def lean_stacks_built(model):
    from wxb.nn.sequential import _PLANS

    return [lean for plan in _PLANS[model].training for lean in plan._leans.values() if lean]


@pytest.mark.parametrize("optimizer_name", ["sgd_momentum", "adam"])
def test_the_hand_loop_on_lean_stacks_computes_what_the_plan_computes(rng, optimizer_name):
    for dtype in ("float32", "float64"):
        for _ in range(4):
            model, n, classes = random_stack(rng, dtype)
            big = int(rng.integers(2, 9))
            batches = batches_for(rng, n, classes, dtype, [big] * 5 + [2, big])
            lean_model = copy.deepcopy(model)
            lean = hand_loop(lean_model, optimizer_name, batches)
            assert lean_stacks_built(lean_model), "the lean stack never ran"
            with lean_stacks_off():
                plan_model = copy.deepcopy(model)
                plan = hand_loop(plan_model, optimizer_name, batches)
                assert not lean_stacks_built(plan_model)
            assert_identical(lean, plan)


def freeze_after_forward(i, model, optimizer):
    model[0].requires_grad_(i != 3)  # frozen between the forward and the backward


@pytest.mark.parametrize(
    "options",
    [
        {"between": freeze_after_forward},
        {"zero_every": 2},  # gradients of two batches added before a step
        {"retain": True},  # backward twice through one graph
    ],
    ids=["frozen_after_forward", "accumulate", "retain_graph"],
)
def test_the_hand_loop_off_the_usual_path_is_the_same_on_lean_stacks(rng, options):
    model = nn.Sequential(
        nn.Dense(4, 6, dtype="float64", seed=rng),
        nn.Tanh(),
        nn.Dense(6, 3, dtype="float64", seed=rng),
    )
    batches = batches_for(rng, 4, 3, "float64", [5] * 7)
    lean_model = copy.deepcopy(model)
    lean = hand_loop(lean_model, "adam", batches, **options)
    assert lean_stacks_built(lean_model)
    with lean_stacks_off():
        plan = hand_loop(copy.deepcopy(model), "adam", batches, **options)
    assert_identical(lean, plan)


def test_two_graphs_pending_at_once(rng):
    """Two forwards before either backward (the second takes another plan's buffers),
    the backwards in the reverse order: the same gradients as the plan gives."""
    model = nn.Sequential(
        nn.Dense(3, 5, dtype="float64", seed=rng), nn.ReLU(), nn.Dense(5, 2, dtype="float64")
    )
    X1, X2 = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    y = rng.integers(0, 2, size=4)
    results = []
    for off in (False, True):
        trained = copy.deepcopy(model)
        optimizer = Adam(trained.parameters(), lr=0.01)
        loss_fn = nn.CrossEntropyLoss()

        def run(trained=trained, optimizer=optimizer, loss_fn=loss_fn):
            for _ in range(4):
                optimizer.zero_grad()
                first, second = loss_fn(trained(X1), y), loss_fn(trained(X2), y)
                second.backward()
                first.backward()
                optimizer.step()
            return [p.data.copy() for p in trained.parameters()]

        if off:
            with lean_stacks_off():
                results.append(run())
        else:
            results.append(run())
            assert lean_stacks_built(trained)
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)


def test_lean_stacks_that_no_longer_hold_let_their_arrays_go(rng):
    """After each .data is replaced, the lean stacks of other batch sizes, built on the
    old arrays, are dropped when the next one is built, not kept with those arrays."""
    import weakref

    model = nn.Sequential(nn.Dense(3, 5, seed=rng), nn.ReLU(), nn.Dense(5, 2, seed=rng))
    step = PlannedStep(model, nn.CrossEntropyLoss(), SGD(model.parameters(), lr=0.1))
    plan = step.plan
    for rows in (4, 4, 3, 3):
        step(rng.normal(size=(rows, 3)).astype(np.float32), rng.integers(0, 2, size=rows))
    assert set(plan._leans) == {3, 4}
    old = weakref.ref(plan._leans[3])
    for p in model.parameters():
        p.data = p.data.copy()  # another array each: the same plan, its lean stacks stale
    for _ in range(2):
        step(rng.normal(size=(4, 3)).astype(np.float32), rng.integers(0, 2, size=4))
    assert step.plan is plan
    assert set(plan._leans) == {4}
    assert plan._leans[4].holds_arrays()
    assert old() is None


def test_a_parameter_on_a_layer_before_the_first_dense(rng):
    """A Parameter registered on an activation before any Dense: no layer computes with
    it, so it gets no gradient; the plan asked for a δ below the first Dense for it, into
    a buffer it never made (TypeError)."""
    from wxb.nn.module import Parameter

    results = []
    for use_plan in (True, False):
        seeded = np.random.default_rng(11)
        model = nn.Sequential(nn.Tanh(), nn.Dense(4, 3, dtype="float64", seed=seeded))
        model[0].extra = Parameter(seeded.normal(size=2))
        model.use_plan = use_plan
        optimizer = SGD(model.parameters(), lr=0.1)
        for _ in range(3):
            X, y = seeded.normal(size=(5, 4)), seeded.integers(0, 3, size=5)
            optimizer.zero_grad()
            nn.CrossEntropyLoss()(model(X), y).backward()
            optimizer.step()
        assert model[0].extra.grad is None
        results.append([p.data.copy() for p in model.parameters()])
        history = wxb.fit(copy.deepcopy(model), X, y, epochs=2, batch_size=2, verbose=False)
        assert history.engine == "planned"
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)
