"""Edge cases found in review: each once produced a wrong number or a raw traceback."""

import copy
import warnings
from functools import partial

import numpy as np
import pytest
import torch
from rounding import affine_terms, rounding_atol

import wxb
from wxb import ops
from wxb.nn import CrossEntropyLoss, Dense, Dropout, MSELoss, ReLU, Sequential, Standardize, Tanh
from wxb.optim import SGD, Adam, StepLR
from wxb.step import GraphStep, PlannedStep, make_step


def mlp(rng, dtype="float64", sizes=(4, 6, 3)):
    seed = int(rng.integers(1 << 30))
    return Sequential(
        Dense(sizes[0], sizes[1], seed=seed, dtype=dtype),
        Tanh(),
        Dense(sizes[1], sizes[2], seed=seed + 1, dtype=dtype),
    )


# -- numerics ---------------------------------------------------------------------------
def test_cross_entropy_gradient_for_targets_that_do_not_sum_to_one(rng):
    z = rng.normal(size=(5, 4))
    targets = rng.uniform(0, 2, size=(5, 4)) * (rng.random((5, 4)) < 0.6)
    ours = wxb.Tensor(z, requires_grad=True)
    ops.cross_entropy(ours, targets).backward()
    theirs = torch.tensor(z, requires_grad=True)
    torch.nn.functional.cross_entropy(theirs, torch.tensor(targets)).backward()
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_adam_counts_steps_per_parameter_as_pytorch(rng):
    weights = [rng.normal(size=3) for _ in range(3)]
    ours = [wxb.nn.Parameter(w, dtype="float64") for w in weights]
    theirs = [torch.tensor(w, requires_grad=True) for w in weights]
    opt_ours, opt_theirs = Adam(ours, lr=0.1), torch.optim.Adam(theirs, lr=0.1)
    # the same steps on |g|: their m sums no signs, so how far they move bounds the
    # terms each parameter's updates add up (where they cancel, to a p near 0)
    sizes = [torch.tensor(w, requires_grad=True) for w in weights]
    opt_sizes = torch.optim.Adam(sizes, lr=0.1)
    for step in range(6):
        for index, (p, q, s) in enumerate(zip(ours, theirs, sizes, strict=True)):
            frozen = index == 2 and step < 3  # no gradient for the first three steps
            grad = None if frozen else rng.normal(size=3)
            p.grad = grad
            q.grad = None if frozen else torch.tensor(grad)
            s.grad = None if frozen else torch.tensor(np.abs(grad))
        opt_ours.step()
        opt_theirs.step()
        opt_sizes.step()
    for p, q, s, w in zip(ours, theirs, sizes, weights, strict=True):
        terms = np.abs(w) + np.abs(w - s.detach().numpy())
        # 6 steps, each update through at most 15 roundings (m, v, corrections, √, ÷, ·lr)
        atol = rounding_atol(terms, 6 * 15)
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-12, atol=atol)


def test_a_plain_number_takes_the_tensors_dtype():
    t = wxb.Tensor(np.zeros(2), requires_grad=True)  # float64
    assert (0.1 - t).data[0] == 0.1
    assert ops.add(0.1, t).data[0] == 0.1
    assert ops.mul(0.1, t + 1).data[0] == 0.1


def test_a_constant_column_keeps_scale_one_even_when_its_std_is_rounding_noise():
    X = np.column_stack([np.linspace(0, 1, 50), np.full(50, 0.1)]).astype(np.float32)
    layer = Standardize.fit(X)
    assert layer.scale[1] == 1.0


def test_leaky_relu_with_any_slope_matches_pytorch(rng):
    z = rng.normal(size=(4, 5))
    for slope in (2.0, -0.5, 0.2):
        ours = wxb.Tensor(z, requires_grad=True)
        ops.leaky_relu(ours, slope).sum().backward()
        theirs = torch.tensor(z, requires_grad=True)
        torch.nn.functional.leaky_relu(theirs, slope).sum().backward()
        np.testing.assert_allclose(
            ops.leaky_relu(wxb.Tensor(z), slope).data,
            torch.nn.functional.leaky_relu(torch.tensor(z), slope),
        )
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy())


def test_exact_gelu_is_accurate_in_float32_lower_tail(rng):
    z = np.concatenate([rng.uniform(-6, -2, size=200), rng.normal(size=200)])
    exact = ops.gelu(wxb.Tensor(z)).data  # float64
    single = ops.gelu(wxb.Tensor(z.astype(np.float32))).data
    error = np.abs(single - exact) / np.maximum(np.abs(exact), 1e-30)
    assert error.max() < 1e-5


def test_fit_and_evaluate_report_sum_reductions_as_sums(rng):
    model = mlp(rng)
    X, y = rng.normal(size=(40, 4)), rng.integers(0, 3, size=40)
    total = wxb.evaluate(model, X, y, CrossEntropyLoss("sum"))["loss"]
    mean = wxb.evaluate(model, X, y, CrossEntropyLoss("mean"))["loss"]
    assert total == pytest.approx(40 * mean, rel=1e-12)
    history = wxb.fit(
        model,
        X,
        y,
        loss=CrossEntropyLoss("sum"),
        epochs=1,
        lr=1e-12,
        validation_data=(X, y),
        verbose=False,
    )
    assert history["val_loss"][0] == pytest.approx(total, rel=1e-6)


@pytest.mark.parametrize("kind", [CrossEntropyLoss, MSELoss, wxb.nn.BCEWithLogitsLoss])
def test_a_per_sample_loss_is_refused_where_one_number_per_batch_is_needed(rng, kind):
    model = mlp(rng)
    X = rng.normal(size=(12, 4))
    y = rng.integers(0, 3, size=12) if kind is CrossEntropyLoss else rng.uniform(size=(12, 3))
    per_sample = kind("none")
    assert per_sample(model(X), y).shape == (
        (12,) if kind is not wxb.nn.BCEWithLogitsLoss else (12, 3)
    )
    before = [p.data.copy() for p in model.parameters()]
    calls = {
        "fit": lambda: wxb.fit(model, X, y, loss=per_sample, epochs=1, verbose=False),
        "evaluate": lambda: wxb.evaluate(model, X, y, per_sample),
        "explain": lambda: wxb.explain(model, X[:1], y[:1], loss=per_sample),
        "make_step": lambda: make_step(model, per_sample, SGD(model.parameters(), lr=0.1)),
        "GraphStep": lambda: GraphStep(model, per_sample, SGD(model.parameters(), lr=0.1)),
        "PlannedStep": lambda: PlannedStep(model, per_sample, SGD(model.parameters(), lr=0.1)),
    }
    for where, call in calls.items():
        with pytest.raises(wxb.ConfigError) as refused:
            call()
        assert "reduction='none' gives one loss per sample" in str(refused.value), where
    # set on a step's loss after the step was made: refused at the next step, nothing moved
    for kind_of_step in (GraphStep, PlannedStep):
        loss = kind("mean")
        step = kind_of_step(model, loss, SGD(model.parameters(), lr=0.1))
        loss.reduction = "none"
        with pytest.raises(wxb.ConfigError, match="reduction='none'"):
            step(X, y)
    for p, b in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p.data, b)
    with pytest.raises(wxb.ConfigError, match="'mean', 'sum' or 'none'; got 'avg'"):
        kind("avg")


def test_a_new_schedule_starts_from_the_initial_rate(rng):
    model = mlp(rng)
    opt = SGD(model.parameters(), lr=0.1)
    StepLR(opt, step_size=1, gamma=0.1).step()
    assert opt.lr == pytest.approx(0.01)
    StepLR(opt, step_size=1, gamma=0.1)
    assert opt.lr == pytest.approx(0.1)


# -- the planned step against the graph ---------------------------------------------------
def test_shared_weights_are_stepped_once_as_in_pytorch(rng):
    first, second = Dense(3, 3, dtype="float64"), Dense(3, 3, dtype="float64")
    second.weight = first.weight  # tied
    model = Sequential(first, Tanh(), second)
    assert len(model.parameters()) == 3
    assert not PlannedStep.supports(model)
    X, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    twin = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Tanh(), torch.nn.Linear(3, 3))
    twin = twin.double()
    with torch.no_grad():
        twin[0].weight.copy_(torch.tensor(first.weight.data))
        twin[0].bias.copy_(torch.tensor(first.bias.data))
        twin[2].weight = twin[0].weight
        twin[2].bias.copy_(torch.tensor(second.bias.data))
    # the sizes of the terms the tied weight's gradient sums (δ = (ŷ − y)/5 back through
    # |W|, |tanh′| ≤ 1, both uses added), for the rounding a weight stepped near 0 keeps
    W, b2 = np.abs(first.weight.data), np.abs(second.bias.data)
    H = np.abs(np.tanh(X @ first.weight.data.T + first.bias.data))
    delta = (affine_terms(H, W.T, b2) + np.abs(y)) / len(X)
    terms = delta.T @ H + (delta @ W).T @ np.abs(X)
    atol = 0.1 * rounding_atol(terms, 4 + 4 + 2 + 2 * len(X)) + rounding_atol(W, 1)
    step = make_step(model, MSELoss(), SGD(model.parameters(), lr=0.1))
    assert isinstance(step, GraphStep)
    step(X, y)
    opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    out = twin(torch.tensor(X))
    (0.5 * ((out - torch.tensor(y)) ** 2).sum(1).mean()).backward()
    opt.step()
    np.testing.assert_allclose(
        first.weight.data, twin[0].weight.detach().numpy(), rtol=1e-12, atol=atol
    )


def test_planned_step_refuses_optimisers_over_other_parameters(rng):
    model = mlp(rng)
    with pytest.raises(wxb.ConfigError, match=r"exactly the model.s trainable parameters"):
        PlannedStep(model, MSELoss(), SGD(model[2].parameters()))
    extra = wxb.nn.Parameter(np.zeros(3))
    with pytest.raises(wxb.ConfigError, match=r"exactly the model.s trainable parameters"):
        PlannedStep(model, MSELoss(), SGD([*model.parameters(), extra]))
    assert isinstance(make_step(model, MSELoss(), SGD(model[2].parameters())), GraphStep)


def test_planned_step_checks_its_input_like_the_graph(rng):
    model = mlp(rng, sizes=(4, 6, 3))
    step = PlannedStep(model, MSELoss(), SGD(model.parameters()))
    y = rng.normal(size=(5, 3))
    with pytest.raises(wxb.ShapeError, match=r"needs X with 4 features \(W is 6×4\); got 3"):
        step(rng.normal(size=(5, 3)), y)
    with pytest.raises(wxb.DataError, match="X is float32 but W is float64"):
        step(rng.normal(size=(5, 4)).astype(np.float32), y)
    with pytest.raises(wxb.DataError, match="non-empty 2-D"):
        step(np.zeros((0, 4)), y[:0])


def test_planned_step_follows_changes_made_after_planning(rng):
    model = Sequential(
        Dense(4, 6, dtype="float64", seed=1),
        ReLU(),
        Dropout(0.0, seed=3),
        Dense(6, 2, dtype="float64", seed=2),
    )
    X, y = rng.normal(size=(8, 4)), rng.normal(size=(8, 2))
    planned_model, graph_model = copy.deepcopy(model), copy.deepcopy(model)
    planned = PlannedStep(planned_model, MSELoss(), SGD(planned_model.parameters(), lr=0.1))
    graph = GraphStep(graph_model, MSELoss(), SGD(graph_model.parameters(), lr=0.1))
    assert planned(X, y) == pytest.approx(graph(X, y), rel=1e-12)
    planned_model[2].p = graph_model[2].p = 0.5  # dropout switched on after planning
    assert planned(X, y) == pytest.approx(graph(X, y), rel=1e-12)
    planned_model.to("float32")  # recast after planning: buffers are planned anew
    graph_model.to("float32")
    X32, y32 = X.astype(np.float32), y.astype(np.float32)
    assert planned(X32, y32) == pytest.approx(graph(X32, y32), rel=1e-5)
    assert all(p.grad.dtype == np.float32 for p in planned_model.parameters())


def test_casting_the_model_keeps_the_optimiser_state(rng):
    model = mlp(rng, dtype="float32")
    opt = Adam(model.parameters(), lr=1e-3)
    X, y = rng.normal(size=(8, 4)).astype(np.float32), rng.integers(0, 3, size=8)
    step = make_step(model, CrossEntropyLoss(), opt)
    for _ in range(5):
        step(X, y)
    moments = [m.copy() for m in opt.moment1]
    model.to("float64")
    make_step(model, CrossEntropyLoss(), opt)(X.astype(np.float64), y)
    for before, after in zip(moments, opt.moment1, strict=True):
        assert after.dtype == np.float64
        assert np.abs(after).sum() > 0.5 * np.abs(before).sum()  # continued, not restarted


# -- fit ------------------------------------------------------------------------------------
def test_weights_that_overflow_at_an_epochs_end_are_not_kept(rng):
    model = mlp(rng)
    initial = model.state_dict()
    X, y = rng.normal(size=(16, 4)), rng.integers(0, 3, size=16)

    class OverflowsLast(SGD):
        def step(self):
            super().step()
            if self.steps == 2:  # the last step of epoch 1: finite loss, infinite weights
                self.params[0].data *= np.inf

    with pytest.raises(wxb.TrainingError, match="end of epoch 1"):
        wxb.fit(
            model,
            X,
            y,
            epochs=3,
            batch_size=8,
            verbose=False,
            optimizer=OverflowsLast(model.parameters(), lr=0.01),
        )
    for name, array in model.state_dict().items():
        assert np.array_equal(array, initial[name])


def test_manual_seed_governs_dropout_layers_built_before_it(rng):
    model = Sequential(Dense(4, 16), ReLU(), Dropout(0.5), Dense(16, 3))
    start = model.state_dict()
    X, y = rng.normal(size=(32, 4)), rng.integers(0, 3, size=32)
    runs = []
    for _ in range(2):
        model.load_state_dict(start)
        wxb.manual_seed(0)
        runs.append(wxb.fit(model, X, y, epochs=2, batch_size=8, verbose=False).history)
    assert runs[0] == runs[1]


def test_a_dropout_mask_does_not_depend_on_the_inputs_memory_layout(rng):
    """The same seed drops the same units of the same rows whether the tensor is stored
    by rows or by columns (a transpose, np.asfortranarray): the generator filled memory
    in its order, so another element got each draw."""
    values = rng.normal(size=(int(rng.integers(2, 9)), int(rng.integers(2, 9))))
    other = np.asfortranarray(values)
    assert np.array_equal(other, values) and not other.flags.c_contiguous
    seed = int(rng.integers(1 << 30))
    masks = []
    for data in (values, other):
        x = wxb.Tensor(data, requires_grad=True)
        out = Dropout(0.5, seed=seed)(x)
        out.sum().backward()
        masks.append((out.data, x.grad))
    assert np.array_equal(masks[0][0], masks[1][0])
    assert np.array_equal(masks[0][1], masks[1][1])
    # a strided buffer to draw into (the generator refused it): the same draws too
    shape, p = values.shape, float(rng.uniform(0.1, 0.9))
    rows = ops.dropout_mask(np.random.default_rng(seed), p, np.empty(shape))
    strided = np.empty((shape[0], 2 * shape[1]))[:, ::2]
    assert np.array_equal(ops.dropout_mask(np.random.default_rng(seed), p, strided), rows)


@pytest.mark.parametrize(
    "options,message",
    [
        ({"lr": "0.1"}, "lr must be a number"),
        ({"validation_split": "0.2"}, "validation_split must be a number"),
        ({"seed": "abc"}, "seed must be an integer"),
        ({"validation_data": ([[0.0] * 4],)}, "validation_data must be a pair"),
        ({"early_stopping": -1}, "early_stopping"),
        ({"clip_grad_norm": -1.0}, "clip_grad_norm"),
        ({"clip_grad_norm": 0}, "clip_grad_norm"),
        ({"min_delta": "x"}, "min_delta"),
    ],
)
def test_fit_refuses_wrong_types_with_config_errors(rng, options, message):
    model = mlp(rng)
    X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, size=8)
    with pytest.raises(wxb.ConfigError, match=message):
        wxb.fit(model, X, y, verbose=False, **options)


def test_numpy_integers_are_fine_for_epochs_and_batch_size(rng):
    model = mlp(rng)
    X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, size=8)
    history = wxb.fit(model, X, y, epochs=np.int64(2), batch_size=np.int64(4), verbose=False)
    assert history.epochs == 2


def test_optimisers_take_parameters_not_models(rng):
    model, other = mlp(rng), mlp(rng)
    with pytest.raises(wxb.ConfigError, match=r"model\.parameters"):
        SGD(model)
    with pytest.raises(wxb.ConfigError, match="betas"):
        Adam(model.parameters(), betas=0.9)
    with pytest.raises(wxb.ConfigError, match="Dropout p"):
        Dropout("0.5")
    X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, size=8)
    with pytest.raises(wxb.ConfigError, match="not this model's"):
        wxb.fit(model, X, y, optimizer=SGD(other.parameters()), verbose=False)


def test_losses_and_evaluate_take_numpy_arrays_and_names(rng):
    model = mlp(rng)
    X, y = rng.normal(size=(6, 4)), rng.integers(0, 3, size=6)
    value = CrossEntropyLoss()(model.predict(X), y)
    assert np.isfinite(float(value))
    assert wxb.evaluate(model, X.tolist(), y.tolist(), "cross_entropy")["loss"] == pytest.approx(
        float(value), rel=1e-12
    )
    with pytest.raises(wxb.DataError, match="empty"):
        wxb.evaluate(model, np.zeros((0, 4)), [], "cross_entropy")


def test_parameters_own_their_memory():
    array = np.zeros((2, 2))
    p = wxb.nn.Parameter(array, dtype="float64")
    p.data += 1
    assert array.sum() == 0


def test_loading_refuses_impossible_standardize_statistics(tmp_path, rng):
    model = Sequential(Standardize(np.zeros(3), np.ones(3)), Dense(3, 2))
    path = wxb.save(model, tmp_path / "m.safetensors")
    from safetensors.numpy import load_file, save_file

    tensors = load_file(path)
    metadata = wxb.io.read_metadata(path)
    del metadata["digest"]  # (a file made by hand: else refused as changed since wxb.save)
    tensors["standardize1.scale"] = np.zeros(3, np.float32)
    save_file(tensors, tmp_path / "zero.safetensors", metadata=metadata)
    with pytest.raises(wxb.ModelFileError, match="scale must be > 0"):
        wxb.load(tmp_path / "zero.safetensors")
    broken = dict(
        metadata, architecture=metadata["architecture"].replace('"features": 3', '"features": -1')
    )
    save_file(load_file(path), tmp_path / "neg.safetensors", metadata=broken)
    with pytest.raises(wxb.ModelFileError):
        wxb.load(tmp_path / "neg.safetensors")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("shape", [(1, 7), (300, 5000)])  # one call; several blocks
def test_the_finite_check_names_the_first_bad_value_wherever_it_is(rng, bad, shape):
    from wxb.validation import as_features, first_non_finite

    X = rng.normal(size=shape).astype(np.float32)
    assert first_non_finite(X) is None
    row, col = int(rng.integers(shape[0])), int(rng.integers(shape[1]))
    X[row, col] = bad
    assert first_non_finite(X) == (row, col)
    with pytest.raises(wxb.DataError, match=rf"X has {bad} at row {row}, column {col}"):
        as_features(X, np.float32)


def test_finite_values_whose_sum_overflows_are_not_taken_for_infinities(rng):
    from wxb.validation import as_features, first_non_finite

    X = np.full((3, 4), np.finfo(np.float32).max / 2, dtype=np.float32)
    X[1, 2] = -rng.uniform(1, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no overflow warning from the check's Σx²
        assert first_non_finite(X) is None
        assert as_features(X, np.float32) is X  # right dtype and layout: no copy


def test_a_stratified_split_holds_out_the_fraction_to_within_a_row(rng):
    from wxb.data import split_indices

    for _ in range(200):
        classes = int(rng.integers(1, 12))
        labels = np.repeat(np.arange(classes), rng.integers(1, 8, size=classes))
        rng.shuffle(labels)
        n, fraction = len(labels), float(rng.uniform(0.05, 0.6))
        try:
            kept, held = split_indices(
                n, fraction, np.random.default_rng(int(rng.integers(99))), labels
            )
        except wxb.DataError:
            continue  # too few rows to hold any out (or to keep any)
        assert abs(len(held) - n * fraction) < 1 + 1e-9, (n, fraction, len(held))
        assert len(np.intersect1d(kept, held)) == 0 and len(kept) + len(held) == n
        counts = np.bincount(labels)
        gave = np.bincount(labels[held], minlength=classes)
        over = gave - counts * fraction  # each class near its share (within a row) ...
        assert (over > -2).all(), (counts, fraction, gave)
        # ... or more, only where the others short of theirs keep just one row to train:
        # many classes of one row (which give none) leave the rows they cannot give to
        # the rest, e.g. 17 rows at 0.45 as classes of 6, 3, 2 and six of 1 hold out 5
        # of the 6, 2 of the 3 and 1 of the 2 (drawn by 1 table in 200,000 or so)
        if (over >= 2).any():
            short = over < 0
            assert (gave[short] == counts[short] - 1).all(), (counts, fraction, gave)


def test_a_small_table_of_classes_holds_out_a_row_as_one_of_numbers_does(rng):
    """Each class's share rounded to 0 and the split refused the table as too small,
    where the same rows as a regression held one out."""
    from wxb.data import split_indices

    n = int(rng.integers(4, 12))
    labels = np.arange(n) % int(rng.integers(2, 4))
    kept, held = split_indices(n, 0.1, np.random.default_rng(int(rng.integers(99))), labels)
    assert len(held) == 1 and len(kept) == n - 1


def test_a_stratified_split_draws_which_classes_give_the_odd_rows(rng):
    """Equal remainders are broken at random (no class always first), and a class keeps
    a row for training while another class can give one."""
    from wxb.data import split_indices

    labels = np.repeat(np.arange(10), 3)
    held_classes = set()
    for _ in range(40):
        _, held = split_indices(30, 0.2, np.random.default_rng(int(rng.integers(1 << 30))), labels)
        assert len(held) == 6
        held_classes |= set(labels[held].tolist())
    assert held_classes == set(range(10))
    lonely = np.array([0] + [1] * 9)
    for _ in range(20):
        kept, _ = split_indices(10, 0.5, np.random.default_rng(int(rng.integers(1 << 30))), lonely)
        assert 0 in kept  # class 0's only row trains


# -- the functional forms check what their layers check --------------------------------
def test_functional_gelu_dropout_and_leaky_relu_refuse_what_their_layers_refuse(rng):
    from wxb.errors import ConfigError
    from wxb.nn import GELU, LeakyReLU
    from wxb.nn import functional as F

    x = wxb.Tensor(rng.normal(size=(int(rng.integers(1, 5)), int(rng.integers(1, 5)))))
    refused = [
        (lambda: F.gelu(x, approximate="Tanh"), "approximate"),  # gave the exact GELU
        (lambda: GELU(approximate="Tanh"), "approximate"),
        (lambda: F.dropout(x, -float(rng.uniform(0.1, 1))), "Dropout p"),  # scaled all up
        (lambda: F.dropout(x, 1 + float(rng.uniform(0, 1))), "Dropout p"),  # gave -0
        (lambda: F.dropout(x, 1.0), "Dropout p"),  # ZeroDivisionError
        (lambda: F.dropout(x, float("nan")), "Dropout p"),  # gave NaN
        (lambda: Dropout(True), "Dropout p"),
        (lambda: F.leaky_relu(x, float("nan")), "negative_slope"),
        (lambda: LeakyReLU(True), "negative_slope"),  # was slope 1
    ]
    for call, words in refused:
        with pytest.raises(ConfigError, match=words):
            call()
    slope, p = np.float32(rng.uniform(-2, 2)), np.float32(rng.uniform(0, 0.9))
    assert LeakyReLU(slope).kernel.negative_slope == float(slope)  # NumPy numbers are numbers
    assert Dropout(p).p == float(p)
    kept = F.dropout(x, float(p), int(rng.integers(1 << 30))).data  # a seed, or None, as rng
    scaled = x.data / (1 - float(p))
    np.testing.assert_allclose(kept[kept != 0], scaled[kept != 0], rtol=1e-12)
    assert F.dropout(x, float(p)).shape == x.shape


def test_a_loss_target_that_a_cast_would_change_or_that_means_indices_is_refused(rng):
    """An int (B, 1) column against one logit was read as class probabilities: loss 0,
    gradient 0 (PyTorch refuses it); a float64 target beyond float32 became inf."""
    from wxb.errors import DataError
    from wxb.nn import BCEWithLogitsLoss

    n = int(rng.integers(2, 9))
    one = wxb.Tensor(rng.normal(size=(n, 1)).astype(np.float32), requires_grad=True)
    labels = rng.integers(0, 2, size=(n, 1))
    labels[0] = 0  # a row that is not one-hot
    with pytest.raises(DataError, match="one-hot rows; class indices go as shape"):
        CrossEntropyLoss()(one, labels)
    classes = int(rng.integers(2, 6))
    z = rng.normal(size=(n, classes))
    picked = rng.integers(0, classes, size=n)
    for one_hot in (np.eye(classes, dtype=int)[picked], np.eye(classes, dtype=bool)[picked]):
        ours = CrossEntropyLoss()(wxb.Tensor(z), one_hot).item()
        theirs = torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(picked))
        assert ours == pytest.approx(theirs.item(), rel=1e-12)
    big = np.full((n, 1), float(rng.uniform(3.5, 100)) * 1e38)  # float32's max: 3.4028e38
    for loss in (MSELoss(), BCEWithLogitsLoss()):
        with pytest.raises(DataError, match="beyond float32's range"):
            loss(one, big)
        with pytest.raises(DataError, match="real numbers"):
            loss(one, np.array([["a"]] * n))


def test_fit_refuses_several_labels_a_row_for_cross_entropy_as_the_loss_does(rng):
    """A 0/1 matrix with several 1s a row under fit's default cross-entropy trained on rows
    read as probabilities summing to 2 or 3; the loss itself and PyTorch refuse it."""
    from wxb.errors import DataError

    n, labels = int(rng.integers(4, 20)), int(rng.integers(2, 6))
    X = rng.normal(size=(n, 3))
    Y = rng.integers(0, 2, size=(n, labels))
    Y[0] = 1  # a row with several labels on
    model = mlp(rng, sizes=(3, 5, labels))
    before = [p.data.copy() for p in model.parameters()]
    one_hot = np.eye(labels, dtype=int)[rng.integers(0, labels, n)]
    for y in (Y, Y.astype(bool), Y.astype(float)):  # (0/1 floats: not probabilities either)
        calls = (
            partial(wxb.fit, model, X, y, epochs=1, verbose=False),
            partial(wxb.evaluate, model, X, y),
            partial(wxb.fit, model, X, one_hot, validation_data=(X, y), verbose=False),
        )
        for call in calls:
            with pytest.raises(DataError, match=r"one-hot rows.*bce_with_logits"):
                call()
            after = model.parameters()
            assert all(np.array_equal(p.data, b) for p, b in zip(after, before, strict=True))
    with pytest.raises(RuntimeError):
        torch.nn.functional.cross_entropy(torch.zeros(n, labels), torch.tensor(Y))
    # several labels a row are what bce_with_logits trains on
    history = wxb.fit(model, X, Y, loss="bce_with_logits", epochs=2, verbose=False)
    assert len(history.history["loss"]) == 2
    # one-hot whole numbers stay classes
    picked = rng.integers(0, labels, size=n)
    one_hot = wxb.evaluate(model, X, np.eye(labels, dtype=int)[picked], "cross_entropy")
    assert one_hot == pytest.approx(wxb.evaluate(model, X, picked, "cross_entropy"), rel=1e-12)


@pytest.mark.parametrize("shape", [(3, 0), (0, 4), ()])
def test_softmax_of_no_values_or_of_one_is_torchs(rng, shape):
    """Softmax over an empty last axis raised NumPy's 'zero-size array to reduction'; of a
    0-d tensor, an AxisError. PyTorch gives the empty tensor, and 1 for a lone value."""
    array = rng.standard_normal(shape)
    x, xt = wxb.Tensor(array, requires_grad=True), torch.tensor(array, requires_grad=True)
    y, yt = ops.softmax(x), torch.softmax(xt, dim=-1)
    np.testing.assert_array_equal(y.data, yt.detach().numpy())
    weights = rng.standard_normal(shape)
    (y * weights).sum().backward()
    (yt * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), atol=1e-15)


def test_an_option_an_optimiser_does_not_take_is_named():
    """get_optimizer('adam', momentum=0.9) raised Python's TypeError from Adam's
    constructor; it is a ConfigError naming the option and those Adam takes."""
    from wxb.optim import get_optimizer

    params = list(Dense(2, 3).parameters())
    with pytest.raises(wxb.ConfigError, match=r"adam has no option 'momentum' \(it takes lr, "):
        get_optimizer("adam", params, momentum=0.9)
    assert get_optimizer("sgd", params, momentum=0.9, nesterov=None).momentum == 0.9


@pytest.mark.parametrize("form", ["int", "list", "float32"])
def test_clip_grad_norm_takes_the_gradients_an_optimiser_takes(rng, form):
    """A gradient set by hand as whole numbers (or a list) raised NumPy's UFuncTypeError
    in clip_grad_norm_ (the optimisers take it); one of another shape was spread over the
    parameter without a word. Clipped as the same gradient in float64, as torch clips it."""
    from wxb.optim import clip_grad_norm_

    values = rng.integers(-9, 10, size=5)
    values[0] = 9  # a norm above the limit: the clip acts
    given = {"int": values, "list": values.tolist(), "float32": values.astype(np.float32)}[form]
    p = wxb.nn.Parameter(np.zeros(5))
    p.grad = given
    limit = float(rng.uniform(0.5, 2))
    pt = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    pt.grad = torch.tensor(values, dtype=torch.float64)
    expected = torch.nn.utils.clip_grad_norm_([pt], limit)
    assert clip_grad_norm_([p], limit) == pytest.approx(float(expected), rel=1e-7)
    np.testing.assert_allclose(p.grad, pt.grad.numpy(), rtol=1e-6)
    p.grad = np.ones(4)
    with pytest.raises(wxb.ConfigError, match=r"shape \(5,\)\) has a gradient of shape \(4,\)"):
        clip_grad_norm_([p], limit)
