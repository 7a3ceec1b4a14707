"""Review of the lean stack (``wxb.nn.plan.LeanStack``): sequences a user can produce
where the lean path must still compute exactly what the plan's own forward and backward
compute (the lean path switched off by tests/lean_paths.py's ``lean_stacks_off``)."""

import copy
import os

import numpy as np
import pytest
from lean_paths import assert_identical, batches_for, lean_stacks_off

import wxb
from wxb import kernels, nn
from wxb.optim import SGD, Adam
from wxb.step import PlannedStep


def small_model(rng, dtype="float64", n=4, hidden=6, classes=3):
    return nn.Sequential(
        nn.Dense(n, hidden, dtype=dtype, seed=rng),
        nn.Tanh(),
        nn.Dense(hidden, hidden, bias=False, dtype=dtype, seed=rng),
        nn.ReLU(),
        nn.Dense(hidden, classes, dtype=dtype, seed=rng),
    )


def observe(model, step, batches, between=None):
    """Each step's loss, the gradients after it (copies), and the final weights."""
    losses, grads, lean_ran = [], [], []
    for i, (X, y) in enumerate(batches):
        if between is not None:
            between(i, model, step)
        lean = step.plan._leans.get(len(X))
        lean_ran.append(lean is not None and lean.current(X))
        losses.append(step(X, y))
        grads.append([None if p.grad is None else np.array(p.grad) for p in model.parameters()])
    return losses, grads, [p.data.copy() for p in model.parameters()], lean_ran


class ZeroingSGD(SGD):
    """An optimiser whose zero_grad zeroes the gradients where they lie (PyTorch's
    ``set_to_none=False``) rather than forgetting them."""

    def zero_grad(self, set_to_none: bool = False) -> None:
        super().zero_grad(set_to_none=set_to_none)


class AccumulatingSGD(SGD):
    """Gradient accumulation: zero_grad forgets nothing, each step adds to ``.grad``."""

    def zero_grad(self, set_to_none: bool = True) -> None:
        pass


@pytest.mark.parametrize("optimizer", [ZeroingSGD, AccumulatingSGD])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_grad_left_by_zero_grad_is_added_to_once(rng, optimizer, dtype):
    """After a zero_grad that zeroes in place (or leaves the gradients), ``p.grad`` is
    the optimiser's buffer itself: the plan writes ∂L/∂p into a new array and adds it
    to ``.grad``; the lean stack wrote it into the buffer, over ``.grad``, and then
    added the buffer to itself (2·∂L/∂p, the accumulated part lost)."""
    model = small_model(rng, dtype)
    batches = batches_for(rng, 4, 3, dtype, [5] * 5)
    runs = []
    for off in (False, True):
        trained = copy.deepcopy(model)
        step = PlannedStep(trained, nn.CrossEntropyLoss(), optimizer(trained.parameters(), lr=0.01))
        if off:
            with lean_stacks_off():
                runs.append(observe(trained, step, batches))
        else:
            runs.append(observe(trained, step, batches))
    assert any(runs[0][3]), "the lean stack never ran"
    assert_identical(*runs)


@pytest.mark.parametrize("where", ["activation", "dense"])
def test_a_parameter_no_dense_computes_with_gets_no_gradient(rng, where):
    """A Parameter registered on a stock layer besides a Dense's W and b (a learnable
    setting its forward does not use) gets no gradient from the plan, as from PyTorch's
    backward: ``.grad`` stays None and the optimiser leaves it (no weight decay). The
    lean stack set its ``.grad`` to its slice of the optimiser's buffer, never written
    (uninitialised memory), and the optimiser stepped it."""
    model = small_model(rng)
    layer = model[1] if where == "activation" else model[2]
    layer.extra = nn.Parameter(rng.normal(size=3))
    batches = batches_for(rng, 4, 3, "float64", [5] * 5)
    runs = []
    for off in (False, True):
        trained = copy.deepcopy(model)
        optimizer = SGD(trained.parameters(), lr=0.1, momentum=0.9, weight_decay=0.5)
        step = PlannedStep(trained, nn.CrossEntropyLoss(), optimizer)
        if off:
            with lean_stacks_off():
                runs.append(observe(trained, step, batches))
        else:
            runs.append(observe(trained, step, batches))
    assert_identical(*runs)
    at = [name.endswith("extra") for name, _ in model.named_parameters()].index(True)
    assert all(grads[at] is None for grads in runs[0][1])


def test_fit_with_an_optimiser_that_zeroes_in_place(rng):
    """The first defect as fit meets it: an Optimizer given to fit whose zero_grad zeroes
    in place trained on doubled gradients once the lean stack took over."""
    X = rng.normal(size=(45, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=45)
    model = nn.Sequential(nn.Dense(6, 8, seed=rng), nn.ReLU(), nn.Dense(8, 3, seed=rng))
    runs = []
    for off in (False, True):
        trained = copy.deepcopy(model)
        optimizer = ZeroingSGD(trained.parameters(), lr=0.05, momentum=0.5)
        settings = dict(optimizer=optimizer, epochs=3, batch_size=8, seed=1, verbose=False)
        if off:
            with lean_stacks_off():
                history = wxb.fit(trained, X, y, **settings)
        else:
            history = wxb.fit(trained, X, y, **settings)
        runs.append((history["loss"], [p.data.copy() for p in trained.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("route", ["numpy", "auto"])
def test_the_lean_stack_runs_on_either_kernel_route(rng, route):
    """CI runs the suite again with WXB_KERNELS=numpy: the lean stack must run there too
    (it did not, and every test that checks it ran failed), computing what the plan does."""
    model = small_model(rng, "float32")
    model.insert(2, nn.Dropout(0.25, seed=int(rng.integers(1 << 30))))
    batches = batches_for(rng, 4, 3, "float32", [6, 6, 6, 2, 6, 6])
    runs = []
    try:
        for off in (False, True):
            kernels.use(route)
            trained = copy.deepcopy(model)
            step = PlannedStep(trained, nn.CrossEntropyLoss(), Adam(trained.parameters(), lr=0.01))
            if off:
                with lean_stacks_off():
                    runs.append(observe(trained, step, batches))
            else:
                runs.append(observe(trained, step, batches))
    finally:
        kernels.use(os.environ.get("WXB_KERNELS", "auto"))
    assert any(runs[0][3]), "the lean stack never ran"
    assert_identical(*runs)
