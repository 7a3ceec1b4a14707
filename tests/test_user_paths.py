"""Off the well-tested path: subclasses, frozen parameters, kept gradients, seeds,
layers that do not chain. Each test is a defect a user met; each compares with
PyTorch or with wxb's own layer-by-layer reference, on fresh random data."""

import copy
import itertools
import os

import numpy as np
import pytest
import torch
from rounding import affine_terms, rounding_atol

import wxb
from wxb.nn import CrossEntropyLoss, Dense, Dropout, Module, MSELoss, ReLU, Sequential, Tanh
from wxb.optim import SGD, Adam
from wxb.step import PlannedStep, make_step


def twin(model: Sequential) -> torch.nn.Sequential:
    """The same stack in PyTorch, float64, with the same weights."""
    layers = []
    for layer in model:
        if isinstance(layer, Dense):
            linear = torch.nn.Linear(
                layer.in_features, layer.out_features, layer.bias is not None, dtype=torch.float64
            )
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(layer.weight.data.astype(np.float64)))
                if layer.bias is not None:
                    linear.bias.copy_(torch.from_numpy(layer.bias.data.astype(np.float64)))
            layers.append(linear)
        else:
            layers.append({"relu": torch.nn.ReLU(), "tanh": torch.nn.Tanh()}[layer.kernel.name])
    return torch.nn.Sequential(*layers).double()


def half_mse(out, y):  # wxb's MSELoss: ½ Σ (ŷ − y)² over outputs, mean over the batch
    return 0.5 * ((out - y) ** 2).sum() / len(out)


def step_both(model, reference, opt, topt, X, y) -> tuple[float, float]:
    """One hand-written step on the same batch in wxb and in torch (``reference``: a
    module or a function of a torch tensor); both losses."""
    opt.zero_grad()
    topt.zero_grad()
    loss = MSELoss()(model(X), y)
    loss.backward()
    opt.step()
    expected = half_mse(reference(torch.from_numpy(X)), torch.from_numpy(y))
    expected.backward()
    topt.step()
    return float(loss.data), expected.item()


class Residual(Sequential):
    def forward(self, x):
        return x + super().forward(x)


def test_fit_runs_a_sequential_subclass_through_its_own_forward(rng):
    n, batch = 5, 16
    model = Residual(Dense(n, 7, seed=int(rng.integers(1 << 30))), Tanh(), Dense(7, n)).double()
    reference = twin(model)
    X, y = rng.normal(size=(batch, n)), rng.normal(size=(batch, n))
    history = wxb.fit(
        model,
        X,
        y,
        loss="mse",
        optimizer=SGD(model.parameters(), lr=0.1),
        epochs=3,
        batch_size=batch,
        shuffle=False,
        verbose=False,
    )
    assert history.engine == "graph" and "overrides forward" in history.engine_reason
    opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(3):
        opt.zero_grad()
        loss = half_mse(Xt + reference(Xt), yt)
        loss.backward()
        opt.step()
    assert np.allclose(history["loss"][-1], loss.item(), rtol=1e-10)
    final = half_mse(Xt + reference(Xt), yt).item()
    assert np.isclose(wxb.evaluate(model, X, y, loss="mse")["loss"], final, rtol=1e-10)


def test_fit_leaves_frozen_parameters_alone_and_trains_the_rest_as_pytorch(rng):
    n, c, batch = 6, 3, 12
    model = Sequential(Dense(n, 8, seed=int(rng.integers(1 << 30))), ReLU(), Dense(8, c)).double()
    model[0].weight.requires_grad = False
    frozen = model[0].weight.data.copy()
    reference = twin(model)
    reference[0].weight.requires_grad_(False)
    X, y = rng.normal(size=(batch, n)), rng.integers(0, c, size=batch)
    history = wxb.fit(
        model,
        X,
        y,
        optimizer="adam",
        lr=0.01,
        epochs=4,
        batch_size=batch,
        shuffle=False,
        verbose=False,
    )
    assert history.engine == "planned"  # the planned step knows frozen parameters
    assert np.array_equal(model[0].weight.data, frozen)
    opt = torch.optim.Adam([p for p in reference.parameters() if p.requires_grad], lr=0.01)
    for _ in range(4):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(
            reference(torch.from_numpy(X)), torch.from_numpy(y)
        ).backward()
        opt.step()
    for mine, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        assert np.allclose(mine.data, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("use_plan", [True, False])
def test_hand_loop_with_a_frozen_layer_matches_pytorch(rng, use_plan):
    n, batch = 4, 10
    model = Sequential(
        Dense(n, 6, seed=int(rng.integers(1 << 30))), Tanh(), Dense(6, 6), Tanh(), Dense(6, 2)
    ).double()
    model.use_plan = use_plan
    model[2].weight.requires_grad = False
    model[2].bias.requires_grad = False
    reference = twin(model)
    for p in reference[2].parameters():
        p.requires_grad_(False)
    X, y = rng.normal(size=(batch, n)), rng.normal(size=(batch, 2))
    loss = MSELoss()(model(X), y)
    loss.backward()
    half_mse(reference(torch.from_numpy(X)), torch.from_numpy(y)).backward()
    for mine, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        if not theirs.requires_grad:
            assert mine.grad is None
        else:
            assert np.allclose(mine.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_a_gradient_kept_from_an_earlier_step_is_never_overwritten(rng):
    n, batch = 5, 8
    model = Sequential(Dense(n, 6, seed=int(rng.integers(1 << 30))), ReLU(), Dense(6, 3)).double()
    opt = Adam(model.parameters(), lr=0.01)
    kept = []
    for step in range(3):
        X, y = rng.normal(size=(batch, n)), rng.integers(0, 3, size=batch)
        opt.zero_grad()
        CrossEntropyLoss()(model(X), y).backward()
        if step == 0:
            kept = [p.grad for p in model.parameters()]  # as a user logs them
            copies = [g.copy() for g in kept]
            view = model[0].weight.grad.reshape(-1)  # a view of a gradient, kept too
            view_copy = view.copy()
        opt.step()
    for g, c in zip(kept, copies, strict=True):
        assert np.array_equal(g, c)
    assert np.array_equal(view, view_copy)


@pytest.mark.parametrize("other", ["optimizer", "fit"])
@pytest.mark.parametrize("planned", [False, True])
def test_a_kept_gradient_survives_another_optimiser_over_the_same_parameters(rng, other, planned):
    """A second optimiser takes the parameters' gradient views (p.grad_buffer) into its
    own buffer: the first one's count of its views then dropped by one each, and the
    user's reference made it up, so the next step wrote over the kept gradient."""
    n, batch = int(rng.integers(2, 7)), int(rng.integers(2, 9))
    model = Sequential(Dense(n, 6, seed=int(rng.integers(1 << 30))), ReLU(), Dense(6, 3)).double()
    opt = SGD(model.parameters(), lr=0.1)
    step = wxb.make_step(model, CrossEntropyLoss(), opt) if planned else None

    def one_step():
        X, y = rng.normal(size=(batch, n)), rng.integers(0, 3, size=batch)
        if planned:
            step(X, y)
        else:
            opt.zero_grad()
            CrossEntropyLoss()(model(X), y).backward()
            opt.step()

    one_step()
    kept = [p.grad for p in model.parameters()]
    copies = [g.copy() for g in kept]
    if other == "optimizer":
        Adam(model.parameters(), lr=1e-3)  # e.g. for a later phase of training
    else:
        wxb.fit(model, rng.normal(size=(20, n)), rng.integers(0, 3, 20), epochs=1)
    one_step()
    for g, c in zip(kept, copies, strict=True):
        np.testing.assert_array_equal(g, c)


@pytest.mark.parametrize("how", ["T", "reshape", "row", "whole"])
def test_one_view_of_a_gradient_kept_after_a_planned_step_is_never_overwritten(rng, how):
    """One view of a view (its base is the flat buffer, not the parameter's view): the
    buffer's own reference count must notice it."""
    n, batch = int(rng.integers(2, 7)), int(rng.integers(2, 9))
    model = Sequential(Dense(n, 6, seed=int(rng.integers(1 << 30))), ReLU(), Dense(6, 3)).double()
    step = wxb.make_step(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1))
    assert isinstance(step, wxb.PlannedStep)
    step(rng.normal(size=(batch, n)), rng.integers(0, 3, size=batch))
    grad = model[2].weight.grad
    if how == "T":
        held = grad.T
    elif how == "reshape":
        held = grad.reshape(-1)
    elif how == "row":
        held = grad[0]
    else:
        held = grad
    del grad
    copy = held.copy()
    for _ in range(2):
        step(rng.normal(size=(batch, n)), rng.integers(0, 3, size=batch))
    assert np.array_equal(held, copy)


def test_a_backward_between_a_users_backward_and_step_leaves_pending_gradients(rng):
    n, batch = 5, 8
    model = Sequential(Dense(n, 6, seed=int(rng.integers(1 << 30))), ReLU(), Dense(6, 3)).double()
    opt = SGD(model.parameters(), lr=0.1)
    X, y = rng.normal(size=(batch, n)), rng.integers(0, 3, size=batch)
    opt.zero_grad()
    CrossEntropyLoss()(model(X), y).backward()
    pending = [p.grad.copy() for p in model.parameters()]
    wxb.explain(model, rng.normal(size=(3, n)), rng.integers(0, 3, size=3))  # runs a backward
    assert all(np.array_equal(p.grad, g) for p, g in zip(model.parameters(), pending, strict=True))
    before = [p.data.copy() for p in model.parameters()]
    opt.step()
    for p, b, g in zip(model.parameters(), before, pending, strict=True):
        assert np.allclose(p.data, b - 0.1 * g, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("groups", [1, 2])
def test_free_gradient_buffers_are_reused_and_only_held_ones_replaced(rng, monkeypatch, groups):
    renewals = []
    new_grad = wxb.optim.FlatParameters._new_grad
    monkeypatch.setattr(
        wxb.optim.FlatParameters, "_new_grad", lambda self: (renewals.append(1), new_grad(self))
    )
    model = Sequential(Dense(4, 5, seed=int(rng.integers(1 << 30))), ReLU(), Dense(5, 2)).double()
    params = model.parameters()
    opt = SGD(params if groups == 1 else [{"params": params[:2]}, {"params": params[2:]}], lr=0.1)
    made = len(renewals)

    def step(graph: bool) -> None:
        model.use_plan = not graph  # the graph path copies gradients into the flat buffer
        opt.zero_grad()
        MSELoss()(model(rng.normal(size=(6, 4))), rng.normal(size=(6, 2))).backward()
        opt.step()

    for graph in (True, False, True, False):
        step(graph)
        assert graph or all(p.grad is p.grad_buffer for p in model.parameters())
    assert len(renewals) == made  # nothing held: the same buffer every step
    kept = model[2].bias.grad  # the optimiser's own view, after a planned step
    step(False)
    assert len(renewals) == made + 1 and kept is not model[2].bias.grad
    del kept
    step(True)
    step(False)
    assert len(renewals) == made + 1


def test_fit_with_a_seed_is_reproducible_with_dropout(rng):
    n, c = 6, 3
    X, y = rng.normal(size=(64, n)), rng.integers(0, c, size=64)
    seed = int(rng.integers(1 << 30))

    def run():
        wxb.manual_seed(int(rng.integers(1 << 30)))  # the global generator differs each run
        model = Sequential(Dense(n, 16, seed=seed), ReLU(), Dropout(0.5), Dense(16, c, seed=seed))
        history = wxb.fit(model, X, y, epochs=3, batch_size=16, seed=seed, verbose=False)
        return history["loss"], [p.data.copy() for p in model.parameters()]

    (loss1, w1), (loss2, w2) = run(), run()
    assert loss1 == loss2
    assert all(np.array_equal(a, b) for a, b in zip(w1, w2, strict=True))


def test_layers_that_do_not_chain_raise_the_documented_shape_error(rng):
    model = Sequential(Dense(4, 8), ReLU(), Dense(9, 3))
    X = rng.normal(size=(5, 4)).astype(np.float32)
    message = r"dense2.*Z = W·X \+ b needs X with 9 features \(W is 3×9\); got 8"
    with pytest.raises(wxb.ShapeError, match=message):
        model(X)
    with pytest.raises(wxb.ShapeError, match=message):
        model.predict(X)
    with pytest.raises(wxb.ShapeError, match=message):
        wxb.fit(model, X, rng.integers(0, 3, size=5), epochs=1, verbose=False)
    assert "takes 9 features" in model.why_not_planned()


class TwoHeads(Module):
    """Attributes in an order that says nothing about the output's width."""

    def __init__(self, n):
        super().__init__()
        self.head = Dense(8, 3)
        self.body = Dense(n, 8)

    def forward(self, x):
        return self.head(wxb.ops.relu(self.body(x)))


def test_fit_and_evaluate_find_a_custom_modules_output_width_by_running_it(rng):
    n = 5
    model = TwoHeads(n)
    X, y = rng.normal(size=(20, n)), rng.integers(0, 3, size=20)
    history = wxb.fit(model, X, y, epochs=2, batch_size=10, verbose=False)
    assert history.engine == "graph"
    assert set(wxb.evaluate(model, X, y)) == {"loss", "accuracy"}
    with pytest.raises(wxb.DataError, match="class 3 but the model has 3 outputs"):
        wxb.evaluate(model, X, np.full(20, 3))


def test_validation_data_of_the_wrong_width_is_refused_before_training(rng):
    model = Sequential(Dense(4, 3, seed=int(rng.integers(1 << 30))))
    before = [p.data.copy() for p in model.parameters()]
    X, y = rng.normal(size=(10, 4)), rng.integers(0, 3, size=10)
    with pytest.raises(wxb.DataError, match="validation X has 5 features but X has 4"):
        wxb.fit(model, X, y, validation_data=(rng.normal(size=(4, 5)), y[:4]), verbose=False)
    with pytest.raises(wxb.DataError, match="validation y"):
        wxb.fit(model, X, y, validation_data=(X[:4], np.full(4, 7)), verbose=False)
    assert all(np.array_equal(p.data, b) for p, b in zip(model.parameters(), before, strict=True))


def test_validation_split_beside_validation_data_is_refused(rng):
    model = Sequential(Dense(4, 3))
    X, y = rng.normal(size=(10, 4)), rng.integers(0, 3, size=10)
    with pytest.raises(wxb.ConfigError, match="not both"):
        wxb.fit(model, X, y, validation_split=0.2, validation_data=(X, y), verbose=False)


@pytest.mark.parametrize("size", [0, -1, 2.5, True])
def test_predict_refuses_a_batch_size_that_is_not_a_positive_integer(rng, size):
    model = Sequential(Dense(3, 2))
    with pytest.raises(wxb.ConfigError, match="batch_size"):
        model.predict(rng.normal(size=(4, 3)), batch_size=size)


def test_the_same_layer_twice_in_a_sequential_shares_its_weights_as_in_pytorch(rng):
    d = Dense(4, 4, seed=int(rng.integers(1 << 30)))
    model = Sequential(d, Tanh(), d).double()
    assert model.layers[0] is model.layers[2] and len(model.parameters()) == 2
    reference = torch.nn.Sequential(twin(Sequential(d))[0], torch.nn.Tanh())
    reference.append(reference[0])
    X, y = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    MSELoss()(model(X), y).backward()
    half_mse(reference(torch.from_numpy(X)), torch.from_numpy(y)).backward()
    assert np.allclose(d.weight.grad, reference[0].weight.grad.numpy(), rtol=1e-10)
    assert "share parameters" in model.why_not_planned()


def test_two_layers_with_one_name_get_an_error_that_says_so():
    with pytest.raises(wxb.ConfigError, match=r"two layers are named 'a' \(items 0 and 1\)"):
        Sequential(Dense(2, 2, name="a"), Dense(2, 2, name="a"))


@pytest.mark.parametrize("join", ["+", "+=", "extend", "constructor"])
def test_joining_two_sequentials_that_named_their_layers_alike_says_how_to_fix_it(join):
    # PyTorch's `a + b` numbers the keys anew; wxb's keys are the layers' names, and
    # each Sequential named its unnamed Dense 'dense1': the refusal must say that and
    # how to go on, not only "give them different names" to a user who named nothing
    a, b = Sequential(Dense(2, 3), ReLU()), Sequential(Dense(3, 1))
    joins = {
        "+": lambda: a + b,
        "+=": lambda: a.__iadd__(b),
        "extend": lambda: a.extend(b),
        "constructor": lambda: Sequential(*a, *b),
    }
    with pytest.raises(wxb.ConfigError, match="'dense1'") as caught:
        joins[join]()
    assert "name=" in str(caught.value) and "first Sequential" in str(caught.value)
    assert len(a) == 2  # nothing appended before the refusal
    assert len(Sequential(Dense(2, 3), ReLU()) + Sequential(Dense(3, 1, name="out"))) == 3


def test_sequential_forward_takes_arrays_and_modules_take_several_inputs(rng):
    model = Sequential(Dense(3, 2, seed=int(rng.integers(1 << 30))))
    X = rng.normal(size=(4, 3)).astype(np.float32)
    assert np.array_equal(model.forward(X).data, model(X).data)

    class Pair(Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = Dense(3, 2), Dense(5, 2)

        def forward(self, x, z, *, scale=1.0):
            return self.a(x) + self.b(z) * scale

    pair = Pair()
    Z = rng.normal(size=(4, 5))
    out = pair(X, Z, scale=2.0)
    expected = pair.a(X).data + 2.0 * pair.b(Z.astype(np.float32)).data
    assert np.allclose(out.data, expected, rtol=1e-6)


class Gated(Module):
    """A forward of one's own that reads its input again after the layer."""

    def __init__(self):
        super().__init__()
        self.dense = Dense(3, 2)

    def forward(self, x):
        return self.dense(x) * x[:, :2]


@pytest.mark.parametrize("how", ["planned", "layer by layer", "own forward", "two inputs"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_input_buffer_refilled_before_backward_does_not_change_the_gradient(rng, how, dtype):
    # torch.tensor(batch) copies the batch: a loader refilling its buffer for the next
    # batch (or two batches' forwards before one backward) leaves each gradient its own
    models = {
        "planned": lambda: Sequential(Dense(3, 4), Tanh(), Dense(4, 2)),
        "layer by layer": lambda: Sequential(Dense(3, 4), Tanh(), Dense(4, 2)),
        "own forward": Gated,
        "two inputs": lambda: Sequential(Dense(3, 2)),
    }
    model = models[how]().to(dtype)
    model.use_plan = how != "layer by layer"
    reference = copy.deepcopy(model)
    buffer = rng.normal(size=(int(rng.integers(1, 6)), 3)).astype(dtype)
    batch = buffer.copy()
    if how == "two inputs":  # Module.__call__'s path for several inputs
        model.forward = lambda x, scale: model[0](x) * scale
        reference.forward = lambda x, scale: reference[0](x) * scale
        out, expected = model(buffer, 2.0), reference(batch, 2.0)
    else:
        out, expected = model(buffer), reference(batch)
    buffer[...] = rng.normal(size=buffer.shape)  # the next batch, before this backward
    r = rng.normal(size=out.shape)
    (out * r).sum().backward()
    (expected * r).sum().backward()
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        np.testing.assert_array_equal(p.grad, q.grad)


class WeightNormDense(Dense):
    """W = g ⊙ v / ‖v‖ row by row (weight normalisation), Dense's own forward."""

    def __init__(self, in_features, out_features, rng):
        super().__init__(in_features, out_features, dtype="float64")
        self.v = wxb.nn.Parameter(rng.normal(size=(out_features, in_features)))
        self.g = wxb.nn.Parameter(rng.uniform(0.5, 2.0, size=(out_features, 1)))

    @property
    def weight(self):
        return self.v * self.g / ((self.v * self.v).sum(axis=1, keepdims=True) ** 0.5)

    @weight.setter
    def weight(self, value):  # Dense's own W, registered by Module, is left unused
        pass

    @property
    def in_features(self):
        return self.v.shape[1]

    @property
    def out_features(self):
        return self.v.shape[0]


@pytest.mark.parametrize("grad_mode", [True, False])
def test_a_dense_whose_weight_is_computed_trains_as_in_pytorch(rng, grad_mode):
    # a subclass keeping Dense's forward, with W a property of other parameters: the
    # planned stack (which reads stock layers' own parameters) must not take it
    model = Sequential(WeightNormDense(3, 4, rng), Tanh(), Dense(4, 2, dtype="float64"))
    v, g = (torch.tensor(p.data, requires_grad=True) for p in (model[0].v, model[0].g))
    b0, w1, b1 = (
        torch.tensor(p.data, requires_grad=True)
        for p in (model[0].bias, model[2].weight, model[2].bias)
    )
    X = rng.normal(size=(int(rng.integers(1, 6)), 3))
    W0 = v * g / (v * v).sum(1, keepdim=True).sqrt()
    expected = torch.tanh(torch.from_numpy(X) @ W0.T + b0) @ w1.T + b1
    if not grad_mode:
        with wxb.no_grad():
            np.testing.assert_allclose(
                model(X).data, expected.detach().numpy(), rtol=1e-12, atol=1e-14
            )
        return
    out = model(X)
    # outputs are sums of O(1) terms: an output near 0 can differ by rounding (~1e-16)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-12, atol=1e-14)
    r = rng.normal(size=out.shape)
    (out * r).sum().backward()
    (expected * torch.from_numpy(r)).sum().backward()
    for ours, theirs in zip(
        (model[0].v, model[0].g, model[0].bias, model[2].weight, model[2].bias),
        (v, g, b0, w1, b1),
        strict=True,
    ):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_mixed_dtype_layers_give_the_same_error_on_both_paths(rng):
    model = Sequential(Dense(3, 4), ReLU(), Dense(4, 2, dtype="float64"))
    X = rng.normal(size=(5, 3)).astype(np.float32)
    assert model.why_not_planned() == "its parameters are of mixed dtypes"
    for use_plan in (True, False):
        model.use_plan = use_plan
        with pytest.raises(wxb.DataError, match="X is float32 but W is float64"):
            model(X)
        with pytest.raises(wxb.DataError, match="X is float32 but W is float64"):
            model.predict(X)


@pytest.mark.parametrize("use_plan", [True, False])
def test_retain_graph_runs_a_sequentials_backward_twice_as_pytorch(rng, use_plan):
    model = Sequential(Dense(3, 5, seed=int(rng.integers(1 << 30))), Tanh(), Dense(5, 2)).double()
    model.use_plan = use_plan
    reference = twin(model)
    X, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 2))
    loss = MSELoss()(model(X), y)
    loss.backward(retain_graph=True)
    loss.backward()
    with pytest.raises(wxb.TrainingError):
        loss.backward()
    torch_loss = half_mse(reference(torch.from_numpy(X)), torch.from_numpy(y))
    torch_loss.backward(retain_graph=True)
    torch_loss.backward()
    for mine, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        assert np.allclose(mine.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_evaluating_one_model_leaves_other_models_in_training_mode(rng):
    teacher = Sequential(Dense(4, 4, seed=int(rng.integers(1 << 30))), Dropout(0.5))
    student = Sequential(Dense(4, 4, seed=int(rng.integers(1 << 30))), Dropout(0.5))
    X = np.ones((64, 4), dtype=np.float32)
    with teacher.evaluating():
        assert not teacher[1].training and student[1].training
        with wxb.no_grad():
            dropped = (student(X).data == 0).mean()
    assert 0.2 < dropped < 0.8  # the student's Dropout still drops about half
    assert teacher[1].training


def test_a_dropout_made_inside_another_models_evaluating_block_drops(rng):
    # evaluating() holds the ids of the model's modules: one taken out inside the block
    # and freed must not hand its id (CPython reuses the memory at once) to a new module,
    # which would then skip its dropout in this thread as if it were in eval mode
    X = np.ones((64, 4), dtype=np.float32)
    for _ in range(5):
        model = Sequential(Dense(4, 4, seed=int(rng.integers(1 << 30))), Dropout(0.5))
        with model.evaluating():
            del model[1]
            assert model.dtype == np.float32  # (reading the model drops its old module list)
            others = [Dropout(0.5) for _ in range(50)]
            assert all(d.training for d in others)
            with wxb.no_grad():
                assert all((d(X).data == 0).any() for d in others)


def test_retained_graph_gives_a_fresh_gradient_after_zeroing_in_place(rng):
    p = wxb.nn.Parameter(rng.normal(size=3), dtype="float64")
    y = rng.normal(size=3)
    opt = SGD([p], lr=0.1)
    loss = 0.5 * ((p - y) ** 2).sum()
    loss.backward(retain_graph=True)
    opt.zero_grad(set_to_none=False)
    loss.backward()
    assert np.allclose(p.grad, p.data - y, rtol=1e-12)


@pytest.mark.parametrize("use_plan", [True, False])
def test_backward_after_a_step_changed_the_weights_raises_as_pytorch(rng, use_plan):
    model = Sequential(Dense(3, 4, seed=int(rng.integers(1 << 30))), Tanh(), Dense(4, 2)).double()
    model.use_plan = use_plan
    opt = SGD(model.parameters(), lr=0.1)
    loss = MSELoss()(model(rng.normal(size=(5, 3))), rng.normal(size=(5, 2)))
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(wxb.TrainingError, match="modified in place"):
        loss.backward()


@pytest.mark.parametrize("where", ["model", "layer"])
def test_a_forward_assigned_on_an_instance_is_what_trains_and_predicts(rng, where):
    """``model.forward = …`` (or a layer's) is what Module.__call__ runs: the planned
    stack, which would skip it, must step aside, also after a plan was already made."""
    n, batch = 5, 16
    model = Sequential(Dense(n, 7, seed=int(rng.integers(1 << 30))), Tanh(), Dense(7, n)).double()
    reference = twin(model)
    X, y = rng.normal(size=(batch, n)), rng.normal(size=(batch, n))
    model.predict(X)  # a plan exists before the assignment
    target = model if where == "model" else model[0]
    original = target.forward
    target.forward = lambda x: original(x) * 2.0
    history = wxb.fit(
        model,
        X,
        y,
        loss="mse",
        optimizer=SGD(model.parameters(), lr=0.05),
        epochs=3,
        batch_size=batch,
        shuffle=False,
        verbose=False,
    )
    assert history.engine == "graph" and "forward of its own" in history.engine_reason
    first = reference[0]
    opt = torch.optim.SGD(reference.parameters(), lr=0.05)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def run(x):
        if where == "model":
            return reference(x) * 2.0
        return reference[2](reference[1](first(x) * 2.0))

    for _ in range(3):
        opt.zero_grad()
        loss = half_mse(run(Xt), yt)
        loss.backward()
        opt.step()
    assert np.allclose(history["loss"][-1], loss.item(), rtol=1e-10)
    assert np.allclose(model.predict(X), run(Xt).detach().numpy(), rtol=1e-10)


def test_fits_without_a_seed_draw_other_dropout_masks(rng):
    """Nothing else draws (no shuffle, no split): the masks' key must still differ."""
    n, c = 5, 3
    X, y = rng.normal(size=(32, n)), rng.integers(0, c, size=32)
    seed = int(rng.integers(1 << 30))

    def run():
        model = Sequential(Dense(n, 16, seed=seed), ReLU(), Dropout(0.5), Dense(16, c, seed=seed))
        wxb.fit(model, X, y, epochs=1, batch_size=8, shuffle=False, verbose=False)
        return model[0].weight.data.copy()

    assert not np.array_equal(run(), run())


# -- changing a model after it was built ----------------------------------------------------
def test_a_layer_replaced_by_assignment_keeps_its_place_as_in_pytorch(rng):
    from wxb.nn import Sigmoid

    model = Sequential(Dense(4, 5, seed=1), Tanh(), Dense(5, 3, seed=2)).double()
    X = rng.normal(size=(int(rng.integers(1, 9)), 4))
    model(X)  # plans made for the old layers
    reference = twin(model)
    model.tanh1 = Sigmoid()
    reference[1] = torch.nn.Sigmoid()
    assert list(model._modules) == ["dense1", "tanh1", "dense2"]

    def atol() -> float:
        # PyTorch sums in another order: an output near 0 is off by ulps of its terms.
        # |sigmoid| <= 1, and it carries dense1's rounding at most x1/4 (+ its own 2 ulps)
        first, last = model[0], model[2]
        inner = affine_terms(X, first.weight.data.T, first.bias.data)
        terms = affine_terms(1 + inner, last.weight.data.T, last.bias.data)
        return rounding_atol(terms, (4 + 1) + 2 + (5 + 1))

    want = reference(torch.from_numpy(X)).detach().numpy()
    np.testing.assert_allclose(model.predict(X), want, rtol=1e-12, atol=atol())
    np.testing.assert_allclose(model(X).data, want, rtol=1e-12, atol=atol())
    new = Dense(4, 5, seed=3).double()
    model.dense1 = new  # same shape: it would chain anywhere, so only the order shows it
    with torch.no_grad():
        reference[0].weight.copy_(torch.from_numpy(new.weight.data))
        reference[0].bias.copy_(torch.from_numpy(new.bias.data))
    assert model[0] is new
    with torch.no_grad():
        want = reference(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(model.predict(X), want, rtol=1e-12, atol=atol())
    dense = model[2]
    dense.weight = wxb.nn.Parameter(rng.normal(size=(3, 5)))
    assert [name for name, _ in dense.named_parameters()] == ["weight", "bias"]


def test_del_removes_a_layer_or_parameter_as_in_pytorch(rng):
    model = Sequential(Dense(3, 4, seed=1), Tanh(), Dense(4, 2, seed=2)).double()
    X = rng.normal(size=(5, 3))
    model(X)
    del model.tanh1
    assert list(model._modules) == ["dense1", "dense2"]
    reference = twin(model)  # Dense, Dense
    np.testing.assert_allclose(model.predict(X), reference(torch.from_numpy(X)).detach().numpy())
    dense = Dense(3, 3)
    del dense.bias
    assert [name for name, _ in dense.named_parameters()] == ["weight"]
    with pytest.raises(AttributeError):
        dense.bias  # noqa: B018


def test_assigning_an_array_to_a_parameter_is_refused_and_to_a_buffer_kept(rng):
    from wxb.nn import Standardize

    dense = Dense(3, 2)
    with pytest.raises(wxb.ConfigError, match=r"weight is a parameter: assign a wxb.nn.Parameter"):
        dense.weight = rng.normal(size=(2, 3))
    assert [name for name, _ in dense.named_parameters()] == ["weight", "bias"]
    layer = Standardize(np.zeros(3), np.ones(3))
    mean = rng.normal(size=3).astype(np.float32)
    layer.mean = mean
    assert layer.state_dict()["mean"] is not mean and np.array_equal(
        layer.state_dict()["mean"], mean
    )
    assert list(layer._buffers) == ["mean", "scale"]


def test_one_layer_cast_after_the_model_ran_is_refused_as_on_the_graph_path(rng):
    model = Sequential(Dense(4, 6, seed=1), Tanh(), Dense(6, 3, seed=2)).double()
    X = rng.normal(size=(5, 4))
    CrossEntropyLoss()(model(X), rng.integers(0, 3, 5)).backward()
    model[2].to("float32")
    assert "mixed dtypes" in model.why_not_planned()
    with pytest.raises(wxb.DataError):
        model(X)


def test_a_float64_model_without_parameters_computes_in_float64(rng):
    from wxb.nn import Standardize

    mean, scale = np.array([1000.0]), np.array([1e-3])
    model = Sequential(Standardize(mean, scale, dtype="float64"))
    X = 1000 + rng.uniform(0, 1e-3, size=(4, 1))
    assert model.dtype == np.float64
    np.testing.assert_allclose(model.predict(X), (X - mean) / scale, rtol=1e-12)
    np.testing.assert_allclose(model(X).data, (X - mean) / scale, rtol=1e-12)


def test_calling_a_model_on_a_dataframe_says_what_to_do_instead(rng):
    pd = pytest.importorskip("pandas")
    model = Sequential(Dense(2, 2))
    table = pd.DataFrame(rng.normal(size=(3, 2)), columns=["a", "b"])
    with pytest.raises(wxb.DataError, match=r"model.predict\(table\)"):
        model(table)
    np.testing.assert_array_equal(model.predict(table), model.predict(table.to_numpy()))


def test_to_none_keeps_the_dtype_and_float_alone_is_refused_as_ambiguous(rng):
    # .to(dtype=None) cast a float64 model to float32 (PyTorch: no change), and "float"
    # meant float64 (NumPy's reading) where .float() and PyTorch mean float32
    model = Sequential(Dense(2, 3, dtype="float64"))
    model[0].weight.data[...] = 1 + rng.uniform(1e-12, 1e-10, size=(3, 2))
    before = model[0].weight.data.copy()
    assert model.to(dtype=None) is model and model.dtype == np.float64
    np.testing.assert_array_equal(model[0].weight.data, before)
    for spelling in ("float", " Float "):
        with pytest.raises(wxb.ConfigError, match="float32 in PyTorch and float64 in NumPy"):
            model.to(spelling)
        with pytest.raises(wxb.ConfigError, match="float32 in PyTorch"):
            Dense(2, 2, dtype=spelling)
    assert model.to("double").dtype == np.float64 and model.float().dtype == np.float32


@pytest.mark.parametrize("when", ["before", "after"])  # the optimiser is made
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_weights_tied_through_data_stay_tied_as_in_pytorch(rng, when, transposed, optimizer):
    """``b.weight.data = a.weight.data`` (PyTorch's old tying idiom, or its transpose for
    an autoencoder): the optimiser's flat buffer copied each into a slice of its own,
    untying them, and the losses parted from PyTorch's at the second step."""
    n = int(rng.integers(3, 7))
    a, b = Dense(n, n, bias=False, seed=rng).double(), Dense(n, n, seed=rng).double()
    model = Sequential(a, Tanh(), b)
    reference = twin(model)
    ta, tb = reference[0], reference[2]

    def tie():
        b.weight.data = a.weight.data.T if transposed else a.weight.data
        tb.weight.data = ta.weight.data.T if transposed else ta.weight.data

    make = {
        "sgd": (SGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
        "adam": (Adam, torch.optim.Adam, {"lr": 0.05}),
    }
    ours, theirs, options = make[optimizer]
    if when == "before":
        tie()
    opt, topt = ours(model.parameters(), **options), theirs(reference.parameters(), **options)
    if when == "after":
        X = rng.normal(size=(8, n))
        step_both(model, reference, opt, topt, X, X)  # a step first: the flat buffer in use
        tie()
    for _ in range(4):
        X, y = rng.normal(size=(8, n)), rng.normal(size=(8, n))
        loss, expected = step_both(model, reference, opt, topt, X, y)
        assert loss == pytest.approx(expected, rel=1e-10)
        np.testing.assert_allclose(a.weight.data, ta.weight.detach().numpy(), rtol=1e-9, atol=1e-12)
        assert np.shares_memory(a.weight.data, b.weight.data)


def test_a_layer_set_deleted_or_appended_by_index_trains_as_in_pytorch(rng, tmp_path):
    """``model[1] = ReLU()`` raised TypeError (no __setitem__), as did ``del model[1]`` and
    ``model.append(...)``; each now changes the stack as PyTorch's does, and the
    planned path (made again for the new layers) trains as PyTorch."""
    n = int(rng.integers(3, 7))
    model = Sequential(Dense(n, 5, seed=rng), Tanh(), Dense(5, 5, seed=rng), ReLU()).double()
    reference = twin(model)
    model[1] = ReLU()
    reference[1] = torch.nn.ReLU()
    del model[3]
    del reference[3]
    tail = Dense(5, 2, seed=rng).double()
    model.append(tail)
    reference.append(twin(Sequential(tail))[0])
    assert [type(m).__name__ for m in model] == ["Dense", "ReLU", "Dense", "Dense"]
    opt, topt = SGD(model.parameters(), lr=0.1), torch.optim.SGD(reference.parameters(), lr=0.1)
    for _ in range(3):
        X, y = rng.normal(size=(8, n)), rng.normal(size=(8, 2))
        loss, expected = step_both(model, reference, opt, topt, X, y)
        assert loss == pytest.approx(expected, rel=1e-10)
    with pytest.raises(IndexError, match="out of range"):
        model[4] = ReLU()
    with pytest.raises(wxb.ConfigError, match="not a Module"):
        model[0] = "relu"
    with pytest.raises(wxb.ConfigError, match="named 'other' but its place is"):
        model[1] = ReLU(name="other")
    square = Dense(2, 2, seed=rng).double()
    model.append(square).append(square)  # the same layer again: shared, as in the constructor
    assert model[-1] is model[-2] is square
    path = tmp_path / "edited.safetensors"  # the layers set by index are saved by name
    wxb.save(model, path)
    X = rng.normal(size=(4, n))
    np.testing.assert_array_equal(wxb.load(path).predict(X), model.predict(X))


def test_leaky_relu_slope_gelu_form_and_dropout_p_set_later_act_or_are_refused(rng):
    """PyTorch's attribute names, set after construction: ``negative_slope`` was a plain
    attribute that nothing read (the slope lives in the kernel), and ``Dropout.p = 1.5``
    was taken (outputs all 0; 1.0 raised ZeroDivisionError later)."""
    slope = float(rng.uniform(0.05, 0.5))
    layer = wxb.nn.LeakyReLU()
    layer.negative_slope = slope
    z = rng.normal(size=(4, 3))
    expected = torch.nn.functional.leaky_relu(torch.from_numpy(z), slope).numpy()
    np.testing.assert_allclose(layer(wxb.Tensor(z)).data, expected, rtol=1e-15)
    gelu = wxb.nn.GELU()
    gelu.approximate = "tanh"
    expected = torch.nn.functional.gelu(torch.from_numpy(z), approximate="tanh").numpy()
    # ½z(1 + tanh(u)) cancels for z < 0 (tanh ≈ −1): the ~8 roundings of the formula
    # (u, tanh, 1 +, ·z, ·½) are ulps of |z|, not of the result
    atol = rounding_atol(np.abs(z), 8)
    np.testing.assert_allclose(gelu(wxb.Tensor(z)).data, expected, rtol=1e-12, atol=atol)
    drop = Dropout(0.2)
    drop.p = 0.4
    assert drop.p == 0.4
    for bad in (1.5, 1.0, -0.1, "0.3"):
        with pytest.raises(wxb.ConfigError, match="Dropout p"):
            drop.p = bad
    assert drop.p == 0.4


@pytest.mark.parametrize("change", ["data", "parameter", "kernel"])
def test_a_layer_changed_between_forward_and_backward_gets_the_forwards_gradient(rng, change):
    """The planned backward read each layer as it was at backward: a weight given a new
    array (or a new Parameter) after the forward doubled the gradient below it, and the
    new Parameter took the gradient; torch (and the graph path) use what the forward
    used. A kernel changed in between likewise."""
    n = int(rng.integers(3, 7))
    model = Sequential(Dense(n, 5, seed=rng), Tanh(), Dense(5, 2, seed=rng)).double()
    reference = twin(model)
    X, y = rng.normal(size=(8, n)), rng.normal(size=(8, 2))
    loss = MSELoss()(model(X), y)
    expected = half_mse(reference(torch.from_numpy(X)), torch.from_numpy(y))
    # the sizes of the terms each gradient entry sums (δ = (ŷ − y)/8 through |W|, |tanh′|
    # ≤ 1): an entry that cancels near 0 differs from torch's by their rounding alone
    (W0, b0), (W2, b2) = ((m.weight.data, m.bias.data) for m in (model[0], model[2]))
    H = np.abs(np.tanh(X @ W0.T + b0))
    delta2 = (affine_terms(H, W2.T, b2) + np.abs(y)) / len(X)
    delta1 = delta2 @ np.abs(W2)
    k = (n + 1) + (5 + 1) + 2 + len(X)
    atol0, atol2 = (rounding_atol(d.T @ a, k) for d, a in ((delta1, np.abs(X)), (delta2, H)))
    old, told = model[2].weight, reference[2].weight
    if change == "data":
        model[2].weight.data = model[2].weight.data * 2
        reference[2].weight.data = reference[2].weight.data * 2
    elif change == "parameter":
        model[2].weight = wxb.nn.Parameter(old.data * 2)
        reference[2].weight = torch.nn.Parameter(reference[2].weight.detach() * 2)
    else:
        model[1] = ReLU()
        reference[1] = torch.nn.ReLU()
    loss.backward()
    expected.backward()
    np.testing.assert_allclose(
        model[0].weight.grad, reference[0].weight.grad.numpy(), rtol=1e-10, atol=atol0
    )
    # the gradient goes to the Parameter the forward used, as torch's
    np.testing.assert_allclose(old.grad, told.grad.numpy(), rtol=1e-10, atol=atol2)
    if change == "parameter":
        assert model[2].weight.grad is None and reference[2].weight.grad is None


@pytest.mark.parametrize("change", ["replace", "delete", "own forward"])
def test_a_planned_step_follows_the_layers_changed_after_it_was_made(rng, change):
    """make_step's PlannedStep ran the layers it was made with: an activation replaced
    or deleted later, or a forward given to a layer, kept training the old network."""
    n = int(rng.integers(3, 7))
    model = Sequential(Dense(n, 5, seed=rng), Tanh(), Dense(5, 5, seed=rng)).double()
    reference = twin(model)
    step = make_step(model, MSELoss(), SGD(model.parameters(), lr=0.1))
    topt = torch.optim.SGD(reference.parameters(), lr=0.1)
    assert isinstance(step, PlannedStep)
    for k in range(3):
        if k == 1 and change == "replace":
            model[1] = ReLU()
            reference[1] = torch.nn.ReLU()
        elif k == 1 and change == "delete":
            del model[1]
            del reference[1]
        elif k == 1:
            model[1].forward = lambda x: x * 2.0
            reference[1].forward = lambda x: x * 2.0
        X, y = rng.normal(size=(8, n)), rng.normal(size=(8, 5))
        value = step(X, y)
        topt.zero_grad()
        expected = half_mse(reference(torch.from_numpy(X)), torch.from_numpy(y))
        expected.backward()
        topt.step()
        assert value == pytest.approx(expected.item(), rel=1e-10), (k, change)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("kind", ["sequential", "subclass"])
def test_views_of_a_weight_taken_before_training_follow_it_as_in_pytorch(rng, optimizer, kind):
    """The optimiser copied every parameter into a flat buffer of its own and rebound
    p.data: ``w = layer.weight.data``, ``p.detach()`` or ``p[0]`` taken before it (or
    before wxb.fit) stayed at the initial weights, and an edit through one was lost. The
    parameters now lie back to back from the start and are stepped where they are;
    views stay views through a second optimiser, a momentum switched on (a re-pack of
    the state) and ``model.to`` of the dtype it has; also for a Sequential subclass
    with its own forward (trained on the graph path)."""
    n = int(rng.integers(3, 7))
    layers = (Dense(n, 5, seed=rng), Tanh(), Dense(5, n, seed=rng))
    model = (Sequential if kind == "sequential" else Residual)(*layers).double()
    reference = twin(model)
    forward = reference if kind == "sequential" else (lambda t: t + reference(t))
    weight, tweight = model[0].weight, reference[0].weight
    array, detached, row = weight.data, weight.detach(), weight[0]
    tarray, tdetached, trow = tweight.data, tweight.detach(), tweight[0]
    make = {
        "sgd": (SGD, torch.optim.SGD, {"lr": 0.1}),
        "adam": (Adam, torch.optim.Adam, {"lr": 0.05}),
    }
    ours, theirs, options = make[optimizer]
    opt, topt = ours(model.parameters(), **options), theirs(reference.parameters(), **options)
    with wxb.no_grad():
        row += 0.5  # an edit through a view taken before the optimiser reaches the model
    with torch.no_grad():
        trow += 0.5
    for k in range(4):
        if k == 1:
            opt = ours(model.parameters(), **options)  # a second optimiser, as torch's
            topt = theirs(reference.parameters(), **options)
        if k == 2 and optimizer == "sgd":
            opt.param_groups[0]["momentum"] = topt.param_groups[0]["momentum"] = 0.9
        if k == 3:
            model.to(model.dtype)
        X, y = rng.normal(size=(8, n)), rng.normal(size=(8, n))
        loss, expected = step_both(model, forward, opt, topt, X, y)
        assert loss == pytest.approx(expected, rel=1e-10)
        for ours_view, theirs_view in (
            (array, tarray),
            (detached.data, tdetached),
            (row.data, trow),
        ):
            np.testing.assert_allclose(
                ours_view, theirs_view.detach().numpy(), rtol=1e-9, atol=1e-12
            )
    assert model[0].weight.data is array


@pytest.mark.parametrize("source", ["frombuffer", "torch", "read-only view"])
def test_a_parameter_on_memory_the_optimiser_cannot_adopt_trains_as_before(rng, source):
    """The optimiser's adoption of back-to-back parameters took any ``.base``: p.data
    on a bytes buffer or a torch tensor's memory raised AttributeError, and a view of a
    read-only array was adopted and failed at the step; such memory is copied, as it was."""
    values = rng.normal(size=4)
    if source == "frombuffer":
        data = np.frombuffer(bytearray(values.tobytes()), dtype=np.float64)
    elif source == "torch":
        data = torch.tensor(values).numpy()
    else:
        frozen = values.copy()
        frozen.flags.writeable = False
        data = frozen[:]
    p = wxb.nn.Parameter(np.zeros(4))
    p.data = data
    opt = SGD([p], lr=0.1)
    p.grad = np.ones(4)
    opt.step()
    np.testing.assert_allclose(p.data, values - 0.1)


def test_small_parameters_kept_do_not_hold_the_memory_of_large_ones_dropped():
    """Parameters get memory back to back from chunks; a large parameter in a chunk kept
    alive by a small one kept after it would never be freed. Large ones have memory of
    their own, and a chunk is at most 1M elements."""
    from wxb.nn.module import parameter_memory

    kept = []
    for _ in range(3):
        big = Dense(600, 600).double()  # 360K weights: above the chunk's largest
        kept.append(Dense(2, 1).double())
        assert big.weight.data.base is None or big.weight.data.base.size == big.weight.size
        assert kept[-1].weight.data.base.size <= parameter_memory.CHUNK


def _layout(rng, kind: str, n: int) -> Sequential:
    """A model whose parameters do not lie back to back in wxb.nn's memory."""
    seed = int(rng.integers(1 << 30))
    if kind == "large":  # a layer over the arena's 64K elements: memory of its own
        wide = int(rng.integers(66_000 // n, 70_000 // n))
        return Sequential(Dense(n, wide, seed=seed), Tanh(), Dense(wide, n, seed=seed + 1)).double()
    if kind == "interleaved":  # two models built layer by layer, in turns
        first, _ = Dense(n, 5, seed=seed, dtype="float64"), Dense(n, 5, dtype="float64")
        second, _ = Dense(5, n, seed=seed + 1, dtype="float64"), Dense(5, n, dtype="float64")
        return Sequential(first, Tanh(), second)
    model = Sequential(Dense(n, 5, seed=seed), Tanh(), Dense(5, n, seed=seed + 1)).double()
    for p in model.parameters():  # arrays of the user's own
        p.data = rng.normal(size=p.shape)
    return model


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("kind", ["large", "interleaved", "assigned"])
@pytest.mark.parametrize("container", ["sequential", "subclass"])
def test_views_follow_training_wherever_the_parameters_lie(rng, optimizer, kind, container):
    """The optimiser stepped in place only parameters lying back to back in wxb.nn's
    memory; the others (a layer over 64K weights, models built in turns, arrays a user
    assigned) were copied into a buffer of its own with p.data rebound, so a view taken
    before training (``layer.weight.data``, ``detach()``, ``p[0]``) stayed at the
    initial weights, in a hand loop and in wxb.fit alike (planned, or through the
    graph for a subclass with its own forward). Values are now stepped where they lie."""
    n = int(rng.integers(3, 6))
    model = _layout(rng, kind, n)
    stack = twin(model)
    if container == "subclass":
        model = Residual(*model)
        reference = lambda t: t + stack(t)  # noqa: E731
    else:
        reference = stack
    first, last = model[0].weight, model[-1].weight
    views = [first.data, first.detach(), first[0], last.data, model[-1].bias.detach()]
    theirs_first, theirs_last = stack[0].weight, stack[-1].weight
    tviews = [theirs_first, theirs_first[0], theirs_last, stack[-1].bias]
    make = {
        "sgd": (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
        "adam": (Adam, torch.optim.Adam, {"lr": 0.01}),
    }
    ours, theirs, options = make[optimizer]
    opt, topt = ours(model.parameters(), **options), theirs(stack.parameters(), **options)
    for _ in range(3):
        X, y = rng.normal(size=(8, n)), rng.normal(size=(8, n))
        loss, expected = step_both(model, reference, opt, topt, X, y)
        assert loss == pytest.approx(expected, rel=1e-10)
    X, y = rng.normal(size=(8, n)), rng.normal(size=(8, n))
    history = wxb.fit(model, X, y, loss="mse", optimizer=opt, epochs=1, batch_size=8, verbose=False)
    assert history.engine == ("graph" if container == "subclass" else "planned")
    topt.zero_grad()
    half_mse(reference(torch.from_numpy(X)), torch.from_numpy(y)).backward()
    topt.step()
    want = [t.detach().numpy() for t in (tviews[0], tviews[0], tviews[1], *tviews[2:])]
    for view, expected in zip(views, want, strict=True):
        got = view.data if isinstance(view, wxb.Tensor) else view
        # (Adam divides by √v: a weight whose gradients are ~0 takes BLAS's summation order
        # over a 66K-wide layer into its last digits; a stale view is off by the updates)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10)
    assert model[0].weight.data is views[0] and model[-1].weight.data is views[3]


@pytest.mark.parametrize("large", [False, True])
def test_weights_tied_to_a_parameter_outside_the_optimiser_stay_tied(rng, large):
    """An autoencoder's decoder tied to its encoder through ``.data`` and left out of
    the optimiser (frozen): the optimiser copied the encoder's weight into its own
    buffer and the decoder kept the initial weights, so the losses parted from
    PyTorch's at the second step."""
    n = int(rng.integers(3, 6))
    m = int(rng.integers(66_000 // n, 70_000 // n)) if large else int(rng.integers(3, 8))
    seed = int(rng.integers(1 << 30))
    encoder, decoder = Dense(n, m, seed=seed), Dense(m, n, seed=seed + 1)
    model = Sequential(encoder, Tanh(), decoder).double()
    reference = twin(model)
    decoder.weight.data = encoder.weight.data.T
    decoder.weight.requires_grad = False
    with torch.no_grad():
        reference[2].weight.data = reference[0].weight.data.T
    reference[2].weight.requires_grad = False
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = Adam(trainable, lr=0.01)
    topt = torch.optim.Adam([p for p in reference.parameters() if p.requires_grad], lr=0.01)
    for _ in range(4):
        X = rng.normal(size=(8, n))
        loss, expected = step_both(model, reference, opt, topt, X, X)
        assert loss == pytest.approx(expected, rel=1e-10)
    assert np.shares_memory(decoder.weight.data, encoder.weight.data)


@pytest.mark.parametrize("mixed", [False, True])
def test_a_scalar_parameter_reassigned_by_arithmetic_keeps_training(rng, mixed):
    """``gain.data = gain.data * 2`` on a 0-d parameter stores the NumPy scalar NumPy's
    arithmetic gives; the update wrote into a copy of it and the gain stopped learning
    (also with parameters of mixed dtypes, stepped one by one)."""

    class Gained(Sequential):
        def __init__(self, *layers):
            super().__init__(*layers)
            self.gain = wxb.nn.Parameter(np.array(1.0))

        def forward(self, x):
            return super().forward(x) * self.gain

    n = int(rng.integers(3, 6))
    model = Gained(Dense(n, 4, seed=int(rng.integers(1 << 30))), Tanh(), Dense(4, n)).double()
    if mixed:  # one float32 parameter: no flat buffer, each parameter in its own dtype
        model[0].bias.data = model[0].bias.data.astype(np.float32)
    reference = twin(model)
    tgain = torch.nn.Parameter(torch.tensor(1.0, dtype=torch.float64))
    opt = SGD(model.parameters(), lr=0.1)
    topt = torch.optim.SGD([*reference.parameters(), tgain], lr=0.1)
    model.gain.data = model.gain.data * 2
    with torch.no_grad():
        tgain.mul_(2)
    for _ in range(3):
        X, y = rng.normal(size=(8, n)), rng.normal(size=(8, n))
        loss, expected = step_both(model, lambda t: reference(t) * tgain, opt, topt, X, y)
        assert loss == pytest.approx(expected, rel=1e-5 if mixed else 1e-10)
    assert float(model.gain.data) == pytest.approx(tgain.item(), rel=1e-5)
    assert float(model.gain.data) != 2.0


@pytest.fixture(params=["auto", "numpy"])
def kernel_route(request):
    """Each kernel route in turn (the compiled loops where numba is installed, then
    NumPy's); the environment's afterwards."""
    from wxb import kernels

    kernels.use(request.param)
    yield request.param
    kernels.use(os.environ.get("WXB_KERNELS", "auto"))


def _values_of(rng, kind: str, sizes: list[int]) -> list[np.ndarray]:
    """float32 arrays as a user may hand them over: read from a big-endian file, or
    views of one buffer of bytes or of float64 values."""
    values = [rng.normal(size=size).astype(np.float32) for size in sizes]
    if kind == "big-endian":
        return [v.astype(">f4") for v in values]
    blob = np.concatenate(values).view(np.uint8).copy()
    if kind == "float64 buffer":  # the same bytes behind a float64 array (sizes sum even)
        blob = blob.view(np.float64)
    flat = blob.view(np.float32)
    bounds = np.cumsum([0, *sizes])
    return [flat[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("kind", ["big-endian", "bytes", "float64 buffer"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_parameters_on_memory_of_another_dtype_step_as_in_pytorch(
    rng, kernel_route, kind, optimizer
):
    """Stepped where they lie, float32 views of a uint8 or float64 buffer were joined as
    one run of the buffer's dtype (a crash, or on NumPy's route garbage), and big-endian
    values crashed the compiled route's one-call walk (NumPy's kernel wanted scratch)."""
    sizes = [int(rng.integers(2, 6)) * 2 for _ in range(3)]
    values = _values_of(rng, kind, sizes)
    params = [wxb.nn.Parameter(np.zeros(size, np.float32)) for size in sizes]
    for p, v in zip(params, values, strict=True):
        p.data = v
    theirs = [torch.nn.Parameter(torch.tensor(v.astype(np.float32))) for v in values]
    make = {"sgd": (SGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
            "adam": (Adam, torch.optim.Adam, {"lr": 0.05})}  # fmt: skip
    ours, reference, options = make[optimizer]
    opt, topt = ours(params, **options), reference(theirs, **options)
    largest = max(float(np.abs(v).max()) for v in values)
    for _ in range(3):
        grads = [rng.normal(size=size).astype(np.float32) for size in sizes]
        for p, t, g in zip(params, theirs, grads, strict=True):
            p.grad, t.grad = g, torch.tensor(g)
        opt.step()
        topt.step()
        largest = max(largest, *(float(t.detach().abs().max()) for t in theirs))
    # each of the 3 float32 updates rounds at the ulp of the weight (and its step), so a
    # weight that passes near 0 keeps ulps of its larger past: 8 of those at most
    atol = 8 * float(np.finfo(np.float32).eps) * largest
    for p, t in zip(params, theirs, strict=True):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-6, atol=atol)
    if kind != "big-endian":  # stepped where they lie: the user's buffer follows
        np.testing.assert_allclose(values[0], theirs[0].detach().numpy(), rtol=1e-6, atol=atol)


def test_gradients_set_by_hand_of_another_type_step_one_by_one_as_together(rng, kernel_route):
    """With a parameter left without a gradient the update goes parameter by parameter,
    and a float64 gradient on a float32 parameter (``p.grad + noise``), an int one or a
    Python float on a 0-d parameter crashed there, where the one walk casts them."""
    n, seed = int(rng.integers(2, 6)), int(rng.integers(1 << 30))
    results = []
    for idle in (False, True):
        scale = wxb.nn.Parameter(np.array(1.5, np.float32))
        weight = wxb.nn.Parameter(np.ones(n, np.float32))
        spare = wxb.nn.Parameter(np.ones(2, np.float32))
        opt = Adam([scale, weight, spare], lr=0.1)
        draw = np.random.default_rng(seed)  # the same gradients for both
        for _ in range(2):
            scale.grad = float(draw.normal())
            weight.grad = draw.normal(size=n)  # float64
            spare.grad = None if idle else np.zeros(2, np.int64)
            opt.step()
        results.append((scale.data.copy(), weight.data.copy()))
    assert results[0][0] != 1.5
    np.testing.assert_array_equal(results[1][0], results[0][0])
    np.testing.assert_array_equal(results[1][1], results[0][1])


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_weight_assigned_in_fortran_order_steps_where_it_lies(rng, kernel_route, optimizer):
    """A non-contiguous weight (``p.data = W.T`` of the user's own) is a run of its own,
    stepped in its shape with its gradient's and state's views, beside runs walked flat."""
    n, m = int(rng.integers(2, 6)), int(rng.integers(2, 6))
    model = Sequential(Dense(n, m), Tanh(), Dense(m, n)).double()
    own = rng.normal(size=(n, m))
    model[0].weight.data = own.T  # Fortran order, the user's memory
    reference = twin(model)
    make = {"sgd": (SGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
            "adam": (Adam, torch.optim.Adam, {"lr": 0.05})}  # fmt: skip
    ours, theirs, options = make[optimizer]
    opt, topt = ours(model.parameters(), **options), theirs(reference.parameters(), **options)
    assert opt.flat is not None and any(run.shaped for run in opt.flat.runs)
    for _ in range(3):
        X, y = rng.normal(size=(8, n)), rng.normal(size=(8, n))
        loss, expected = step_both(model, reference, opt, topt, X, y)
        assert loss == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(own.T, reference[0].weight.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_a_forward_of_ones_own_gets_integer_ids_as_given_as_in_pytorch(rng):
    """``model(ids)`` made whole numbers in the first place a float Tensor, so an
    embedding lookup ``self.E[ids]`` raised NumPy's IndexError (model.forward(ids)
    worked). A forward of the user's own now gets them as given; a wxb layer it hands
    them to still reads them as numbers."""

    class Bag(Module):
        def __init__(self, vocab, width):
            super().__init__()
            self.E = wxb.nn.Parameter(rng.normal(size=(vocab, width)))
            self.head = Dense(width, 1, seed=int(rng.integers(1 << 30)), dtype="float64")
            self.counts = Dense(vocab, 1, seed=int(rng.integers(1 << 30)), dtype="float64")

        def forward(self, ids, counts=None):
            out = self.head(self.E[ids])
            return out if counts is None else out + self.counts(counts)

    vocab, width = int(rng.integers(3, 8)), int(rng.integers(2, 5))
    model = Bag(vocab, width)
    ids = rng.integers(0, vocab, size=int(rng.integers(4, 10)))  # repeats: gradients add
    counts = rng.integers(0, 4, size=(len(ids), vocab))
    E = torch.tensor(model.E.data, requires_grad=True)
    W = torch.tensor(model.head.weight.data, requires_grad=True)
    b = torch.tensor(model.head.bias.data, requires_grad=True)
    C, c = (torch.tensor(a) for a in (model.counts.weight.data, model.counts.bias.data))
    expected = E[torch.from_numpy(ids)] @ W.T + b
    with_counts = expected + torch.from_numpy(counts).double() @ C.T + c
    out = model(ids)
    # PyTorch sums in another order: an output near 0 is off by ulps of its terms
    terms = affine_terms(model.E.data[ids], model.head.weight.data.T, model.head.bias.data)
    atol = rounding_atol(terms, width + 1)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-12, atol=atol)
    terms = terms + affine_terms(counts, model.counts.weight.data.T, model.counts.bias.data)
    atol = rounding_atol(terms, (width + 1) + (vocab + 1) + 1)
    np.testing.assert_allclose(
        model(ids, counts).data, with_counts.detach().numpy(), rtol=1e-12, atol=atol
    )
    (out * out).sum().backward()
    (expected * expected).sum().backward()
    # ∂/∂out = 2·out, of the sizes of out's terms; E's rows add one 2·out·W per repeat of
    # their id, W sums a row's 2·out·E over the rows: an entry near 0 is off by ulps
    out_sizes = 2 * affine_terms(model.E.data[ids], model.head.weight.data.T, model.head.bias.data)
    E_terms = np.zeros_like(model.E.data)
    np.add.at(E_terms, ids, out_sizes @ np.abs(model.head.weight.data))
    k = (width + 1) + len(ids) + 2
    atol_E = rounding_atol(E_terms, k)
    atol_W = rounding_atol(out_sizes.T @ np.abs(model.E.data[ids]), k)
    np.testing.assert_allclose(model.E.grad, E.grad.numpy(), rtol=1e-10, atol=atol_E)
    np.testing.assert_allclose(model.head.weight.grad, W.grad.numpy(), rtol=1e-10, atol=atol_W)
    features = rng.integers(0, 5, size=(3, vocab))  # a stock model still reads numbers
    stack = Sequential(Dense(vocab, 2, dtype="float64"))
    np.testing.assert_allclose(stack(features).data, stack(features.astype(float)).data)


@pytest.mark.parametrize("path", ["no_grad", "graph", "step"])
def test_a_bias_of_another_shape_is_refused_on_every_path(rng, path):
    """A b given through .data that the rows would broadcast ((1,) over every unit): the
    planned stack added it where the layer-by-layer path refuses it."""
    model = Sequential(Dense(4, 6), ReLU(), Dense(6, 3)).double()
    step = wxb.make_step(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1))
    X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, size=8)
    step(X, y)
    model(X)
    with wxb.no_grad():
        model(X)  # every plan made, with the right b
    model[0].bias.data = np.full(int(rng.choice([1, 5, 7])), 0.5)
    with pytest.raises((wxb.errors.ShapeError, wxb.errors.ConfigError), match="b"):
        if path == "no_grad":
            with wxb.no_grad():
                model(X)
        elif path == "graph":
            model(X)
        else:
            step(X, y)


def test_module_zero_grad_zeroes_in_place_when_asked_as_torch(rng):
    model = Sequential(Dense(3, 4), ReLU(), Dense(4, 2)).double()
    twin = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    X = rng.normal(size=(5, 3))
    model(X).sum().backward()
    twin(torch.from_numpy(X).float()).sum().backward()
    kept, kept_torch = model[0].weight.grad, twin[0].weight.grad
    model.zero_grad(set_to_none=False)
    twin.zero_grad(set_to_none=False)
    assert model[0].weight.grad is kept and not kept.any()
    assert twin[0].weight.grad is kept_torch and not kept_torch.any()
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("kind", ["sequential", "subclass"])
def test_a_graph_node_is_not_copied_as_torch_refuses(rng, kind):
    """deepcopy((model, optimizer, loss)) between forward and backward: the copied loss's
    backward filled the original model's gradients on the planned stack. PyTorch refuses
    to deep-copy a non-leaf tensor; so does wxb, and a detached copy still works."""
    model = Sequential(Dense(4, 6), ReLU(), Dense(6, 3)).double()
    if kind == "subclass":
        model = Doubled(model)
    X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, size=8)
    loss = CrossEntropyLoss()(model(X), y)
    with pytest.raises(wxb.errors.ConfigError, match="cannot be deep-copied"):
        copy.deepcopy((model, loss))
    assert copy.deepcopy(loss.detach()).item() == loss.item()
    assert copy.copy(loss).item() == loss.item()  # a shallow copy is the same node's
    twin = copy.deepcopy(model)  # the model alone copies, and its own loss fills its own grads
    CrossEntropyLoss()(twin(X), y).backward()
    assert all(p.grad is not None for p in twin.parameters())
    assert all(p.grad is None for p in model.parameters())
    loss.backward()  # the original's graph is intact
    assert all(p.grad is not None for p in model.parameters())


class Doubled(Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x) * 2.0


def test_a_kept_grad_of_an_older_shape_is_not_broadcast_into_the_new_one(rng):
    """A weight given more rows through .data while its .grad stayed: the next backward
    added the old (1, n) gradient to every row (PyTorch raises)."""
    n = int(rng.integers(2, 6))
    model = Sequential(Dense(n, 1), Tanh(), Dense(1, 2)).double()
    X = rng.normal(size=(5, n))
    model(X).sum().backward()
    model[0].weight.data = rng.normal(size=(3, n))
    model[0].bias.data = rng.normal(size=3)
    model[2].weight.data = rng.normal(size=(2, 3))
    with pytest.raises(wxb.errors.ShapeError, match="zero_grad"):
        model(X).sum().backward()


class SlottedScale(Module):
    __slots__ = ("scale",)

    def __init__(self, scale):
        super().__init__()
        self.inner = Dense(3, 2)
        self.scale = scale

    def forward(self, x):
        return self.inner(x) * self.scale


def test_a_module_with_slots_of_its_own_keeps_them_through_pickle_and_deepcopy(rng):
    """Module.__getstate__ (which leaves out a cache) gave only the instance dict."""
    import pickle

    model = SlottedScale(float(rng.uniform(1, 3)))
    X = rng.normal(size=(4, 3)).astype(np.float32)
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert twin.scale == model.scale
        np.testing.assert_array_equal(twin.predict(X), model.predict(X))


def test_reset_parameters_draws_a_dense_again_in_place_as_pytorchs(rng):
    """PyTorch's re-initialisation idiom (a fresh start for each cross-validation fold),
    ``if hasattr(layer, "reset_parameters"): layer.reset_parameters()``, found none on
    Dense and silently kept the trained weights: the next fold started where the last
    one ended."""
    n, h, c = (int(d) for d in rng.integers(2, 6, size=3))
    seed = int(rng.integers(1 << 30))

    def build():
        return Sequential(Dense(n, h, dtype="float64"), Tanh(), Dense(h, c, dtype="float64"))

    model = build()
    opt = Adam(model.parameters(), lr=0.05)
    X, y = rng.normal(size=(8, n)), rng.integers(0, c, size=8)
    for _ in range(2):
        opt.zero_grad()
        CrossEntropyLoss()(model(X), y).backward()
        opt.step()
    params, views = model.parameters(), [p.data for p in model.parameters()]
    pending = CrossEntropyLoss()(model(X), y)
    wxb.manual_seed(seed)
    for layer in model.children():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    wxb.manual_seed(seed)
    fresh = build()  # the same draws from the same generator
    for p, view, q in zip(params, views, fresh.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data)
        assert np.shares_memory(view, p.data)  # in place: views and the optimiser follow
    assert model.parameters() == params
    with pytest.raises(wxb.TrainingError, match="modified in place"):
        pending.backward()  # recorded before the reset, as PyTorch refuses it
    opt.zero_grad()
    CrossEntropyLoss()(model(X), y).backward()
    opt.step()
    assert not np.array_equal(params[0].data, fresh[0].weight.data)
