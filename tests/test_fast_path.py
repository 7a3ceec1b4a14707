"""The fast path's shortcuts change how the work is done, never what is computed.

- The optimiser's one update over a flat buffer, in cache-sized chunks and on
  threads, gives bit for bit the weights of one update per parameter array.
- ``backward()`` hands a fresh gradient array to a leaf without copying it, but
  never one that another tensor also holds.
- The bias gradient as 1ᵀ·δ equals the sum over the batch.
"""

import copy

import numpy as np
import pytest

import wxb
from wxb import ops, optim
from wxb.nn import CrossEntropyLoss, Dense, ReLU, Sequential, Tanh
from wxb.nn.module import Parameter
from wxb.optim import SGD, Adam, AdamW, FlatParameters
from wxb.tensor import Tensor

OPTIMIZERS = {
    "sgd": lambda p: SGD(p, lr=0.05),
    "sgd_momentum": lambda p: SGD(p, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-3),
    "sgd_nesterov": lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda p: Adam(p, lr=1e-2, weight_decay=1e-3),
    "adamw": lambda p: AdamW(p, lr=1e-2),
}


def random_params(rng, dtype="float64"):
    shapes = [tuple(int(d) for d in rng.integers(1, 40, size=int(rng.integers(1, 3))))]
    shapes += [(int(rng.integers(1, 300)),) for _ in range(int(rng.integers(1, 5)))]
    return [Parameter(rng.normal(size=s), dtype=dtype) for s in shapes]


def clone(params):
    return [Parameter(p.data.copy()) for p in params]


def run_updates(opt, params, grads):
    for step_grads in grads:
        opt.zero_grad()
        for p, g in zip(params, step_grads, strict=True):
            p.grad = g.copy()
        opt.step()


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_flat_chunked_threaded_update_equals_one_array_at_a_time(rng, monkeypatch, name, dtype):
    params = random_params(rng, dtype)
    grads = [[rng.normal(size=p.shape).astype(dtype) for p in params] for _ in range(4)]
    expected_params = clone(params)
    monkeypatch.setattr(FlatParameters, "possible", classmethod(lambda cls, ps: False))
    expected = OPTIMIZERS[name](expected_params)
    run_updates(expected, expected_params, grads)  # one array at a time, whole
    assert expected.flat is None
    monkeypatch.undo()

    # Tiny chunks and a low threading threshold: every boundary case is walked.
    monkeypatch.setattr(optim, "CHUNK", int(rng.integers(1, 64)))
    monkeypatch.setattr(optim, "update_threads", lambda: int(rng.integers(2, 5)))
    flat_params = clone(params)
    flat = OPTIMIZERS[name](flat_params)
    flat.threaded_from = int(rng.integers(1, 200))
    assert flat.flat is not None
    run_updates(flat, flat_params, grads)
    for a, b in zip(flat_params, expected_params, strict=True):
        assert a.dtype == b.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_the_kept_update_pieces_follow_whatever_they_view(rng, name):
    """The update cuts each stretch of the flat buffers into pieces once and keeps them;
    every change of what they view between steps must reach the weights: a kernel route
    switched, the threading threshold, the state moved into other buffers (as ranks
    sharing memory do), a gradient the user kept, a deep copy, a replaced ``p.data``."""
    from wxb import kernels

    params = random_params(rng, "float64") + random_params(rng, "float64")
    params[-1].data = params[-1].data.copy()  # in memory of its own: another piece
    grads = [[rng.normal(size=p.shape) for p in params] for _ in range(8)]
    expected_params = clone(params)
    with pytest.MonkeyPatch.context() as patch:  # one array at a time: no pieces at all
        patch.setattr(FlatParameters, "possible", classmethod(lambda cls, ps: False))
        expected = OPTIMIZERS[name](expected_params)
        run_updates(expected, expected_params, grads)
    assert expected.flat is None

    opt = OPTIMIZERS[name](params)
    assert len(opt.flat.runs) >= 2  # several pieces
    route = "auto" if kernels.one_pass() else "numpy"  # to come back to
    kept = []
    try:
        for k, step_grads in enumerate(grads):
            if k == 2:
                kernels.use("numpy" if route == "auto" else "auto")
            if k == 3:
                kernels.use(route)
                opt.threaded_from = 1  # the NumPy route's chunks on threads from here
            if k == 4 and opt.state_names:
                opt.use_state_buffers({s: np.empty_like(opt.flat.grad) for s in opt.state_names})
            if k == 5:
                opt = copy.deepcopy(opt)
                params = opt.params
            if k == 6:
                params[0].data = params[0].data.copy()
            opt.zero_grad()
            for p, g in zip(params, step_grads, strict=True):
                p.grad = g.copy() if k != 1 else None
            if k == 1:  # the planned path's way: into the optimiser's views, one kept after
                for p, g, view in zip(params, step_grads, opt.grad_buffers(), strict=True):
                    np.copyto(view, g)
                    p.grad = view
                kept.append(params[-1].grad)
            opt.step()
    finally:
        kernels.use(route)
    np.testing.assert_array_equal(kept[0], grads[1][-1])  # the kept gradient not written over
    for a, b in zip(params, expected_params, strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-13, atol=1e-15)


def test_parameters_become_views_of_one_buffer_with_their_values(rng):
    params = random_params(rng)
    before = [p.data.copy() for p in params]
    opt = Adam(params)
    for p, values, view in zip(params, before, opt.flat.views, strict=True):
        assert p.data is view and np.shares_memory(p.data, opt.flat.data)
        np.testing.assert_array_equal(p.data, values)
    assert opt.flat.data.size == sum(v.size for v in before)


def test_an_assigned_parameter_array_is_kept_and_trained(rng):
    params = random_params(rng)
    opt = SGD(params, lr=0.5)
    replacement = rng.normal(size=params[0].shape)
    params[0].data = replacement.copy()  # the user rebinds .data, as PyTorch allows
    grad = rng.normal(size=params[0].shape)
    for p in params:
        p.grad = np.zeros(p.shape)
    params[0].grad = grad.copy()
    opt.step()
    np.testing.assert_allclose(params[0].data, replacement - 0.5 * grad, rtol=1e-14)
    assert params[0].data is opt.flat.views[0]  # packed again


def test_a_parameter_without_gradient_is_not_stepped_and_counts_its_own_steps(rng):
    params = random_params(rng)
    params = params if len(params) > 1 else params + random_params(rng)
    opt = Adam(params, lr=0.1)
    frozen = params[0].data.copy()
    for _ in range(3):
        for p in params:
            p.grad = rng.normal(size=p.shape)
        params[0].grad = None
        opt.step()
    np.testing.assert_array_equal(params[0].data, frozen)
    assert opt.param_steps[0] == 0 and opt.param_steps[1:] == [3] * (len(params) - 1)
    # Its first update later is a first Adam step, |ΔW| = lr·|g|/(|g| + ε), as in PyTorch.
    for p in params:
        p.grad = rng.normal(size=p.shape)
    g = np.abs(params[0].grad)
    opt.step()
    np.testing.assert_allclose(np.abs(params[0].data - frozen), 0.1 * g / (g + 1e-8), rtol=1e-9)


def test_hand_loop_and_planned_step_give_the_same_weights_on_a_flat_optimiser(rng):
    def build():
        return Sequential(Dense(6, 9, seed=3, dtype="float64"), Tanh(), Dense(9, 4, seed=4))

    X, y = rng.normal(size=(10, 6)), rng.integers(0, 4, size=10)
    hand_model, planned_model = build().to("float64"), build().to("float64")
    hand_opt, planned_opt = Adam(hand_model.parameters()), Adam(planned_model.parameters())
    step = wxb.PlannedStep(planned_model, CrossEntropyLoss(), planned_opt)
    loss_fn = CrossEntropyLoss()
    for _ in range(3):
        hand_opt.zero_grad()
        value = loss_fn(hand_model(X), y)
        value.backward()
        hand_opt.step()
        assert step(X, y) == pytest.approx(float(value), rel=1e-12)
    for a, b in zip(hand_model.parameters(), planned_model.parameters(), strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12)
    # the planned step wrote its gradients where the optimiser reads them: no copy
    assert all(
        p.grad is g for p, g in zip(planned_opt.params, planned_opt.flat.grad_views, strict=True)
    )


def test_leaves_never_share_a_gradient_array(rng):
    a = Tensor(rng.normal(size=(3, 4)), requires_grad=True)
    b = Tensor(rng.normal(size=(3, 4)), requires_grad=True)
    total = ops.add(a, b)  # the backward of + hands the same δ to both inputs
    ops.sum(total).backward()
    assert not np.shares_memory(a.grad, b.grad)
    a.grad *= 5  # an in-place change (clipping does this) must not reach b
    np.testing.assert_array_equal(b.grad, np.ones((3, 4)))
    np.testing.assert_array_equal(a.grad, 5 * np.ones((3, 4)))


def test_a_retained_gradient_is_not_handed_to_a_leaf(rng):
    x = Tensor(rng.normal(size=(2, 3)), requires_grad=True)
    middle = ops.mul(x, 1.0).retain_grad()
    ops.sum(ops.add(middle, 0.0)).backward()
    assert not np.shares_memory(middle.grad, x.grad)
    x.grad *= 0
    np.testing.assert_array_equal(middle.grad, np.ones((2, 3)))


def test_a_callers_seed_gradient_is_never_kept_by_a_leaf(rng):
    x = Tensor(rng.normal(size=(2, 3)), requires_grad=True)
    seed = rng.normal(size=(2, 3))
    ops.add(x, 0.0).backward(seed)
    assert not np.shares_memory(x.grad, seed)
    np.testing.assert_array_equal(x.grad, seed)


def test_bias_gradient_as_ones_product_equals_the_batch_sum(rng):
    for dtype in ("float64", "float32"):
        delta = rng.normal(size=(int(rng.integers(1, 300)), int(rng.integers(1, 50))))
        delta = delta.astype(dtype)
        out = np.empty(delta.shape[1], dtype)
        result = ops.sum_over_batch(delta, out=out)
        assert result is out and out.dtype == np.dtype(dtype)
        # a sum of k terms in the dtype, in any order, is within λ·√k·eps·Σ|terms| of the
        # exact one but with probability 2·exp(-λ²/2) (Higham & Mary 2019): λ = 7, 5e-11
        # a column; a fixed 1e-5 was ~0.65 of float32's rounding over 299 rows (k·eps·Σ|terms|
        # holds always but is √k times wider)
        k, eps = len(delta), float(np.finfo(dtype).eps)
        bound = 7 * np.sqrt(k) * eps * np.abs(delta).sum(axis=0, dtype=np.float64)
        off = np.abs(out - delta.sum(axis=0, dtype=np.float64))
        assert np.all(off <= bound), f"{dtype}: {off.max()} off, bound {bound[off.argmax()]}"


def test_zero_grad_can_zero_in_place_as_pytorch_offers(rng):
    params = random_params(rng)
    opt = SGD(params, lr=0.1)
    for p in params:
        p.grad = rng.normal(size=p.shape)
    kept = [p.grad for p in params]
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is g and not g.any() for p, g in zip(params, kept, strict=True))
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_hand_loop_relu_network_learns(rng):
    """A smoke check of the whole hand-written loop on the fast paths."""
    X = rng.normal(size=(200, 5)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = Sequential(Dense(5, 16, seed=int(rng.integers(1000))), ReLU(), Dense(16, 2))
    opt, loss_fn = Adam(model.parameters(), lr=0.05), CrossEntropyLoss()
    first = None
    for _ in range(60):
        opt.zero_grad()
        value = loss_fn(model(X), y)
        first = float(value) if first is None else first
        value.backward()
        opt.step()
    assert float(value) < 0.3 * first


# -- the planned stack behind the hand-written loop ------------------------------------------
def mlp(rng, dtype="float64", dropout=False):
    seed = int(rng.integers(1 << 30))
    layers = [Dense(5, 7, seed=seed, dtype=dtype), Tanh()]
    if dropout:
        layers.append(wxb.nn.Dropout(0.3, seed=seed))
    return Sequential(*layers, Dense(7, 3, seed=seed + 1, dtype=dtype))


def grads_of(model, X, y):
    model.zero_grad()
    CrossEntropyLoss()(model(X), y).backward()
    return [p.grad.copy() for p in model.parameters()]


def test_planned_graph_records_the_same_nodes_as_layer_by_layer(rng):
    model = Sequential(
        wxb.nn.Standardize(rng.normal(size=5), rng.uniform(1, 2, size=5)), *mlp(rng, "float32")
    )
    X, y = rng.normal(size=(4, 5)).astype(np.float32), rng.integers(0, 3, size=4)
    planned = wxb.graph(CrossEntropyLoss()(model(X), y))
    model.use_plan = False
    layered = wxb.graph(CrossEntropyLoss()(model(X), y))
    assert [(n.op, n.shape, n.inputs) for n in planned] == [
        (n.op, n.shape, n.inputs) for n in layered
    ]


def test_two_forwards_then_one_backward_gets_both_gradients(rng):
    model = mlp(rng)
    X1, X2 = rng.normal(size=(4, 5)), rng.normal(size=(6, 5))
    y1, y2 = rng.integers(0, 3, size=4), rng.integers(0, 3, size=6)
    loss_fn = CrossEntropyLoss()
    total = ops.add(loss_fn(model(X1), y1), loss_fn(model(X2), y2))
    total.backward()
    planned = [p.grad.copy() for p in model.parameters()]
    model.use_plan = False
    expected = [
        a + b for a, b in zip(grads_of(model, X1, y1), grads_of(model, X2, y2), strict=True)
    ]
    for a, b in zip(planned, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_gradients_accumulate_without_zero_grad_as_in_pytorch(rng):
    model = mlp(rng)
    X, y = rng.normal(size=(5, 5)), rng.integers(0, 3, size=5)
    once = grads_of(model, X, y)
    CrossEntropyLoss()(model(X), y).backward()  # no zero_grad: adds
    for p, g in zip(model.parameters(), once, strict=True):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-12)


def test_an_output_kept_by_the_user_survives_the_next_forward(rng):
    model = mlp(rng)
    X = rng.normal(size=(5, 5))
    first = model(X)
    kept = first.data.copy()
    CrossEntropyLoss()(first, rng.integers(0, 3, size=5)).backward()
    model(rng.normal(size=(5, 5)))
    np.testing.assert_array_equal(first.data, kept)


def test_backward_twice_through_reused_buffers_is_refused(rng):
    model = mlp(rng)
    X, y = rng.normal(size=(5, 5)), rng.integers(0, 3, size=5)
    loss = CrossEntropyLoss()(model(X), y)
    loss.backward()
    with pytest.raises(wxb.TrainingError, match="a second time"):
        loss.backward()
    stale = CrossEntropyLoss()(model(X), y)
    model(X)  # reuses the buffers while `stale` waits
    model(X)
    for _ in range(3):
        CrossEntropyLoss()(model(X), y)
    # more waiting graphs than plans: `stale`'s plan was not taken, so it still works
    stale.backward()


def test_a_graph_whose_buffers_a_later_forward_reused_is_refused(rng):
    model = mlp(rng)
    X, y = rng.normal(size=(5, 5)), rng.integers(0, 3, size=5)
    first = CrossEntropyLoss()(model(X), y)
    del first  # dropped without backward: its plan is free again …
    output = model(X)
    loss = CrossEntropyLoss()(output, y)
    loss.backward()
    model(X)  # … and after this backward, a new forward takes the plan
    with pytest.raises(wxb.TrainingError, match="a later forward has reused"):
        loss.backward()


def test_input_gradients_and_frozen_weights_take_the_layer_path(rng):
    model = mlp(rng)
    X = Tensor(rng.normal(size=(4, 5)), requires_grad=True)
    y = rng.integers(0, 3, size=4)
    CrossEntropyLoss()(model(X), y).backward()
    assert X.grad is not None and X.grad.shape == (4, 5)
    model.zero_grad()
    model[0].weight.requires_grad = False
    CrossEntropyLoss()(model(X.data), y).backward()
    assert model[0].weight.grad is None and model[0].bias.grad is not None


def test_eval_mode_dropout_and_no_grad_need_no_plan(rng):
    model = mlp(rng, dropout=True)
    X = rng.normal(size=(4, 5))
    model.eval()
    with wxb.no_grad():
        inference = model(X)
    assert not inference.requires_grad
    np.testing.assert_allclose(model(X).data, inference.data, rtol=1e-15)


@pytest.mark.parametrize("batch", [1, 2, 33])
def test_no_grad_inference_equals_layer_by_layer(rng, batch):
    model = Sequential(
        wxb.nn.Standardize(rng.normal(size=5), rng.uniform(1, 2, size=5), dtype="float64"),
        *mlp(rng, dropout=True),
    )
    X = rng.normal(size=(batch, 5))
    for training in (False, True):  # training mode: Dropout draws masks, as layer by layer
        model.train(training)
        reference = copy.deepcopy(model)
        reference.use_plan = False
        with wxb.no_grad():
            for _ in range(2):
                np.testing.assert_allclose(model(X).data, reference(X).data, rtol=1e-12)
    np.testing.assert_allclose(model.predict(X), reference.predict(X), rtol=1e-12)


def test_more_pending_graphs_than_plans_still_get_their_gradients(rng):
    model = mlp(rng)
    batches = [(rng.normal(size=(3, 5)), rng.integers(0, 3, size=3)) for _ in range(7)]
    losses = [CrossEntropyLoss()(model(X), y) for X, y in batches]  # all waiting at once
    for loss in reversed(losses):
        loss.backward()
    planned = [p.grad.copy() for p in model.parameters()]
    model.use_plan = False
    per_batch = [grads_of(model, X, y) for X, y in batches]
    expected = [sum(parts) for parts in zip(*per_batch, strict=True)]
    for a, b, parts in zip(planned, expected, zip(*per_batch, strict=True), strict=True):
        # summed in another order: an entry that cancels to ~1e-6 from terms ~0.3 carries
        # their rounding (1e-17), above 1e-12 of itself (a fresh-clone CI run drew one)
        scale = max(float(np.abs(part).max()) for part in parts)
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14 * scale)


def test_a_replaced_parameter_is_trained_by_the_planned_stack(rng):
    model = mlp(rng)
    X, y = rng.normal(size=(4, 5)), rng.integers(0, 3, size=4)
    grads_of(model, X, y)  # plans made for the old parameters
    model[0].weight = Parameter(rng.normal(size=(7, 5)))
    planned = grads_of(model, X, y)
    model.use_plan = False
    for a, b in zip(planned, grads_of(model, X, y), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inference_follows_the_batch_the_layers_and_the_input(rng, dtype):
    """The no-grad forward, which keeps nothing for a backward and reuses its buffers,
    against the layer-by-layer one: batches above and below the buffers' size with each
    output kept, a layer's setting and a parameter's array changed between calls, and
    inputs that need a cast, a byte swap or a copy first."""
    seed = int(rng.integers(1 << 30))
    model = Sequential(
        Dense(5, 7, seed=seed, dtype=dtype),
        wxb.nn.LeakyReLU(0.1),
        Dense(7, 6, bias=False, seed=seed + 1, dtype=dtype),
        wxb.nn.Sigmoid(),
        Dense(6, 3, seed=seed + 2, dtype=dtype),
        wxb.nn.Softmax(),
    )
    reference = copy.deepcopy(model)
    reference.use_plan = False

    def close(actual, desired):  # the two paths' exp and tanh may differ in the last place
        np.testing.assert_allclose(actual, desired, rtol=2e-12 if dtype == "float64" else 2e-6)

    def both(X):
        with wxb.no_grad():
            return model(X).data, reference(X).data

    kept = [(X, *both(X)) for X in (rng.normal(size=(int(b), 5)) for b in rng.permutation(5) + 1)]
    for X, planned, expected in kept:  # each output still its own after the later calls
        close(planned, expected)
        np.testing.assert_array_equal(planned, both(X)[0])
    for m in (model, reference):  # a new kernel and a new array, read by the next call
        m[1].negative_slope = 0.3
        m[4].bias.data = np.full(3, rng.normal(), dtype=dtype)
    X = rng.normal(size=(4, 5)) * 3
    close(*both(X))
    for variant in (  # a cast, the other byte order, a strided view, a list
        X.astype("float32" if dtype == "float64" else "float64"),
        X.astype(np.dtype(dtype).newbyteorder(">")),
        np.asfortranarray(X).astype(dtype)[::-1][::-1],
        np.repeat(X.astype(dtype), 2, axis=1)[:, ::2],
        X.tolist(),
    ):
        close(both(variant)[0], both(np.asarray(variant, dtype))[1])
    close(model.predict(X), reference.predict(X))
