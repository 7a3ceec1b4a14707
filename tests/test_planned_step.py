"""The planned training step computes exactly what the recorded graph computes."""

import copy
import itertools
import tracemalloc

import numpy as np
import pytest

import wxb
from wxb.nn import (
    ACTIVATIONS,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Dense,
    Dropout,
    MSELoss,
    Sequential,
    Standardize,
)
from wxb.optim import SGD, Adam, AdamW
from wxb.step import GraphStep, PlannedStep, make_step

ACTIVATION_NAMES = sorted(ACTIVATIONS)
LOSSES = {"mse": MSELoss, "cross_entropy": CrossEntropyLoss, "bce": BCEWithLogitsLoss}
OPTIMIZERS = {
    "sgd": lambda p: SGD(p, lr=0.05),
    "sgd_momentum": lambda p: SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "sgd_nesterov": lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda p: Adam(p, lr=1e-2, weight_decay=1e-3),
    "adamw": lambda p: AdamW(p, lr=1e-2),
}


def make_problem(rng, activation, loss_name, dtype, dropout=0.0, standardize=False):
    n, h, c = (int(v) for v in rng.integers(2, 9, size=3))
    seed = int(rng.integers(1 << 31))
    layers = []
    if standardize:
        layers.append(Standardize(rng.normal(size=n), rng.uniform(0.5, 2, size=n), dtype=dtype))
    settings = (0.1, -0.5) if activation == "threshold" else ()  # (torch's: no defaults)
    layers += [Dense(n, h, seed=seed, dtype=dtype), ACTIVATIONS[activation](*settings)]
    if dropout:
        layers.append(Dropout(dropout, seed=seed))
    layers += [Dense(h, c, seed=seed + 1, dtype=dtype)]
    model = Sequential(*layers)
    batch = int(rng.integers(3, 12))
    X = rng.normal(size=(batch * 3, n)).astype(dtype)
    if loss_name == "cross_entropy":
        y = rng.integers(0, c, size=batch * 3)
    elif loss_name == "bce":
        y = rng.integers(0, 2, size=(batch * 3, c)).astype(dtype)
    else:
        y = rng.normal(size=(batch * 3, c)).astype(dtype)
    return model, X, y, batch


def run(step_cls, model, loss_name, optimizer_name, X, y, batch, steps=4, use_plan=True):
    """Losses, gradients and final weights of a few steps.

    ``GraphStep`` is the loop a user writes (zero_grad, forward, loss, backward,
    step); with ``use_plan=False`` the Sequential records its graph layer by layer,
    the reference every planned path is compared with.
    """
    model = copy.deepcopy(model)
    model.use_plan = use_plan
    optimizer = OPTIMIZERS[optimizer_name](model.parameters())
    step = step_cls(model, LOSSES[loss_name](), optimizer)
    losses, grads = [], []
    for i in range(steps):
        rows = slice((i * batch) % len(X), (i * batch) % len(X) + batch)
        losses.append(step(X[rows], y[rows]))
        grads.append([p.grad.copy() for p in model.parameters()])
    return losses, grads, [p.data.copy() for p in model.parameters()]


@pytest.mark.parametrize(
    "activation,loss_name,optimizer_name",
    list(itertools.product(ACTIVATION_NAMES, LOSSES, OPTIMIZERS)),
)
def test_planned_step_equals_graph_step(rng, activation, loss_name, optimizer_name):
    for dtype, rtol in (("float64", 1e-12), ("float32", 1e-5)):
        model, X, y, batch = make_problem(rng, activation, loss_name, dtype)
        graph = run(GraphStep, model, loss_name, optimizer_name, X, y, batch, use_plan=False)
        planned = run(PlannedStep, model, loss_name, optimizer_name, X, y, batch)
        hand_loop = run(GraphStep, model, loss_name, optimizer_name, X, y, batch)
        for fast in (planned, hand_loop):
            np.testing.assert_allclose(fast[0], graph[0], rtol=rtol)
            for g_fast, g_graph in zip(fast[1], graph[1], strict=True):
                for a, b in zip(g_fast, g_graph, strict=True):
                    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-3)
            for a, b in zip(fast[2], graph[2], strict=True):
                np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-3)


@pytest.mark.parametrize("loss_name", list(LOSSES))
def test_planned_step_with_dropout_and_standardize_equals_graph(rng, loss_name):
    model, X, y, batch = make_problem(
        rng, "relu", loss_name, "float64", dropout=0.3, standardize=True
    )
    graph = run(GraphStep, model, loss_name, "adam", X, y, batch, use_plan=False)
    for fast_path in (PlannedStep, GraphStep):
        fast = run(fast_path, model, loss_name, "adam", X, y, batch)
        np.testing.assert_allclose(fast[0], graph[0], rtol=1e-12)
        for a, b in zip(fast[2], graph[2], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_fit_uses_planned_step_and_matches_graph_fit(rng):
    """fit takes the planned path for Sequential MLPs; the graph path gives the same run."""
    model, X, y, _ = make_problem(rng, "tanh", "cross_entropy", "float64")
    planned_model = copy.deepcopy(model)
    history = wxb.fit(planned_model, X, y, epochs=3, batch_size=5, seed=1, verbose=False)
    assert history.engine == "planned"

    class Wrapped(wxb.nn.Module):  # not a Sequential: fit falls back to the graph
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x)

    graph_model = Wrapped(copy.deepcopy(model))
    graph_history = wxb.fit(graph_model, X, y, epochs=3, batch_size=5, seed=1, verbose=False)
    assert graph_history.engine == "graph"
    np.testing.assert_allclose(history["loss"], graph_history["loss"], rtol=1e-12)
    for a, b in zip(planned_model.parameters(), graph_model.parameters(), strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12)


def test_make_step_chooses_graph_for_custom_models(rng):
    model, *_ = make_problem(rng, "relu", "mse", "float32")
    assert isinstance(make_step(model, MSELoss(), Adam(model.parameters())), PlannedStep)
    part = Adam(model.parameters()[:2])  # optimiser over part of the model
    assert isinstance(make_step(model, MSELoss(), part), GraphStep)


def test_planned_step_allocates_no_buffers_after_the_first_step(rng):
    n, h, c, batch = 64, 256, 64, 1024
    model = Sequential(Dense(n, h), wxb.nn.ReLU(), Dense(h, h), wxb.nn.Tanh(), Dense(h, c))
    step = PlannedStep(model, CrossEntropyLoss(), Adam(model.parameters()))
    X = rng.normal(size=(batch, n)).astype(np.float32)
    y = rng.integers(0, c, size=batch)
    for _ in range(2):
        step(X, y)
    buffers = [id(b) for b in step.outputs] + [id(p.grad) for p in model.parameters()]
    # NumPy's ufuncs may take a fixed 32 KiB iteration buffer (8192 elements) and small
    # per-row vectors; no step may allocate anything the size of a batch-sized array.
    smallest_buffer = batch * c * 4  # 256 KiB: the smallest batch-sized array
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(20):
            step(X, y)
        settled = tracemalloc.get_traced_memory()[0]
        for _ in range(20):  # (the first window may fill a cache once: ~4 KiB seen)
            step(X, y)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [id(b) for b in step.outputs] + [id(p.grad) for p in model.parameters()] == buffers
    assert settled - base < 16384, f"the first 20 steps kept {settled - base} bytes"
    assert current - settled < 4096, f"memory grew {current - settled} bytes over 20 more steps"
    assert peak - base < smallest_buffer, f"a step allocated {peak - base} bytes"


def test_planned_step_respects_eval_mode_dropout(rng):
    model, X, y, batch = make_problem(rng, "relu", "mse", "float64", dropout=0.5)
    model.eval()  # Dropout is the identity in eval mode, in both paths
    graph = run(GraphStep, model, "mse", "sgd", X, y, batch, use_plan=False)
    planned = run(PlannedStep, model, "mse", "sgd", X, y, batch)
    np.testing.assert_allclose(planned[0], graph[0], rtol=1e-12)
    for a, b in zip(planned[2], graph[2], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_layers_with_their_own_forward_take_the_graph_path(rng):
    class Scaled(Dense):
        def forward(self, x):
            return super().forward(x) * 2.0

    model = Sequential(Scaled(3, 2, dtype="float64"))
    assert not PlannedStep.supports(model)
    assert isinstance(make_step(model, MSELoss(), SGD(model.parameters())), GraphStep)


def test_a_width_or_dtype_given_through_data_reaches_the_planned_stack(rng):
    # the buffers kept the old width (a raw NumPy "mismatch in its core dimension"), and a
    # float32 W in a float64 model ran planned, where layer by layer refuses it
    width = int(rng.integers(3, 7))
    model = Sequential(Dense(4, width), wxb.nn.ReLU(), Dense(width, 2)).to("float64")
    X, y = rng.normal(size=(16, 4)), rng.integers(0, 2, 16)
    PlannedStep(model, CrossEntropyLoss(), Adam(model.parameters()))(X, y)
    model(wxb.Tensor(X))  # the inference and recorded plans exist now too
    with wxb.no_grad():
        model(wxb.Tensor(X))
    wider = width + int(rng.integers(1, 4))
    model[0].weight.data = rng.normal(size=(wider, 4))
    model[0].bias.data = rng.normal(size=wider)
    model[2].weight.data = rng.normal(size=(2, wider))
    reference = copy.deepcopy(model)
    reference.use_plan = False
    with wxb.no_grad():
        np.testing.assert_allclose(model(X).data, reference(X).data, rtol=1e-12)
    planned = run(PlannedStep, model, "cross_entropy", "adam", X, y, 8)
    graph = run(GraphStep, model, "cross_entropy", "adam", X, y, 8, use_plan=False)
    for a, b in zip(planned[2], graph[2], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    step = PlannedStep(model, CrossEntropyLoss(), Adam(model.parameters()))
    step(X, y)
    model[2].weight.data = model[2].weight.data.astype(np.float32)
    with pytest.raises(wxb.errors.ConfigError, match=r"changed through \.data"):
        step(X, y)
    kept = model[2].weight.data
    model[2].weight.data = kept.astype(np.float64)  # undone: the step runs planned again
    reference = copy.deepcopy(model)
    reference.use_plan = False
    loss = step(X, y)
    with wxb.no_grad():
        z = reference(X).data
    expected = np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(y)), y])
    assert loss == pytest.approx(expected, rel=1e-12)
    model[2].weight.data = kept
    with pytest.raises(wxb.errors.DataError, match="W is float32"):
        model(wxb.Tensor(X))
    with pytest.raises(wxb.errors.ConfigError, match="mixed dtypes"):
        PlannedStep(model, CrossEntropyLoss(), Adam(model.parameters()))(X, y)


@pytest.mark.parametrize("loss_name", sorted(LOSSES))
@pytest.mark.parametrize("change", ["replace", "append", "delete", "data"])
def test_a_head_of_another_width_gets_a_loss_gradient_of_its_width(rng, loss_name, change):
    # the ∂L/∂output buffer kept the first head's width: a raw NumPy error, or for
    # cross-entropy the compiled loop writing the wider rows past the buffer's end
    width = int(rng.integers(2, 5))
    model = Sequential(Dense(4, 6), wxb.nn.Tanh(), Dense(6, width)).to("float64")
    optimizer = SGD(model.parameters(), lr=0.1)
    step = make_step(model, LOSSES[loss_name](), optimizer)
    X = rng.normal(size=(16, 4))
    step(X, rng.integers(0, width, 16) if loss_name == "cross_entropy" else X[:, :width])
    new = width + int(rng.choice([-1, 1, 3])) if change != "delete" else 6
    if change == "replace":
        model[2] = Dense(6, new, dtype="float64")
    elif change == "append":
        model.append(Dense(width, new, dtype="float64"))
    elif change == "delete":
        del model[2]
        del model[1]
    else:  # momentum-free SGD keeps no state that would catch the shape
        model[2].weight.data = rng.normal(size=(new, 6))
        model[2].bias.data = rng.normal(size=new)
    optimizer = SGD(model.parameters(), lr=0.1)
    step.optimizer = optimizer
    y = rng.integers(0, new, 16) if loss_name == "cross_entropy" else rng.normal(size=(16, new))
    reference = copy.deepcopy(model)
    expected = make_step(reference, LOSSES[loss_name](), SGD(reference.parameters(), lr=0.1))
    assert step(X, y) == pytest.approx(expected(X, y), rel=1e-12)
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-15)


def test_a_large_inference_call_gives_its_memory_back(rng):
    """model(X) under no_grad on far more rows than predict's batches: the planned
    buffers were kept at that size for the model's life (PyTorch frees its tensors)."""
    model = Sequential(Dense(10, 256), wxb.nn.ReLU(), Dense(256, 256), wxb.nn.ReLU(), Dense(256, 3))
    small = rng.normal(size=(32, 10)).astype(np.float32)
    large = rng.normal(size=(int(rng.integers(10_000, 12_000)), 10)).astype(np.float32)
    with wxb.no_grad():
        model(small)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        with wxb.no_grad():
            out = model(large)
        np.testing.assert_allclose(out.data[:32], model.predict(large[:32]), rtol=1e-5, atol=1e-6)
        del out
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 1 << 20, f"{held / 2**20:.1f} MiB still held"  # the buffers: ~90 MiB
    with wxb.no_grad():
        again = model(small).data
    np.testing.assert_array_equal(again, model.predict(small))
