"""The lean forward of calls without a graph (``wxb.nn.plan.LeanInference``: ``predict``,
a model called under ``no_grad``): the same numbers as the plan's general forward, bit
for bit, and the general forward again whenever something it took as fixed changed."""

import os
from contextlib import contextmanager
from unittest import mock

import numpy as np
import pytest

import wxb
from wxb import kernels, nn
from wxb.nn.plan import KEPT_INFERENCE_ROWS, LeanInference
from wxb.nn.sequential import _PLANS


@contextmanager
def lean_inference_off():
    """Within the block no plan builds a lean forward: its general forward runs."""
    with mock.patch.object(LeanInference, "build", classmethod(lambda cls, plan, X: None)):
        yield


def _activation(rng):
    choices = [
        lambda: nn.ReLU(),
        lambda: nn.Tanh(),
        lambda: nn.Sigmoid(),
        lambda: nn.Identity(),
        lambda: nn.LeakyReLU(float(rng.uniform(-0.5, 0.5))),
        lambda: nn.GELU(approximate=str(rng.choice(["none", "tanh"]))),
        lambda: nn.SiLU(),
        lambda: nn.ELU(float(rng.uniform(0.2, 2.0))),
        lambda: nn.Softplus(beta=float(rng.uniform(0.5, 3.0))),
        lambda: nn.Softmax(dim=1),
    ]
    return choices[int(rng.integers(len(choices)))]()


def random_stack(rng, dtype):
    """A Sequential of stock layers as a user writes one: Dense layers with or without
    bias, activations between them (or none), Dropout, a Standardize in front."""
    n = int(rng.integers(1, 9))
    layers = []
    if rng.random() < 0.3:
        layers.append(nn.Standardize(rng.normal(size=n), rng.uniform(0.5, 2, size=n), dtype=dtype))
    width = n
    for _ in range(int(rng.integers(1, 4))):
        out = int(rng.integers(1, 9))
        layers.append(nn.Dense(width, out, bias=bool(rng.random() < 0.8), dtype=dtype, seed=rng))
        width = out
        if rng.random() < 0.8:
            layers.append(_activation(rng))
        if rng.random() < 0.2:
            layers.append(nn.Dropout(float(rng.uniform(0.1, 0.6)), seed=rng))
    return nn.Sequential(*layers), n


def lean_of(model):
    """This thread's lean forward of the model's inference plan, if any."""
    plan = _PLANS[model].inference
    return plan._inference_lean


def calls(model, batches):
    """predict and model(X) under no_grad, each twice per batch (the second on the lean
    forward once the shape has run twice): the outputs, copied."""
    out = []
    for X in batches:
        for _ in range(2):
            out.append(model.predict(X).copy())
            with wxb.no_grad():
                out.append(model(X).data.copy())
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_random_stacks_give_the_general_forwards_numbers_bit_for_bit(rng, dtype):
    """Twins built from one seed (weights and Dropout generators alike): one on the lean
    forward, one on the general; model(X) under no_grad in training mode draws Dropout
    masks, predict is in eval mode."""
    for _ in range(12):
        seed = int(rng.integers(2**32))
        model, n = random_stack(np.random.default_rng(seed), dtype)
        rows = [1, 1, int(rng.integers(2, 40)), 1, int(rng.integers(2, 40))]
        rows += [rows[-1]] * 2
        batches = [rng.normal(size=(r, n)).astype(dtype) for r in rows]
        lean = calls(model, batches)
        assert lean_of(model) is not None  # the lean forward did run
        twin, _ = random_stack(np.random.default_rng(seed), dtype)
        with lean_inference_off():
            general = calls(twin, batches)
        assert lean_of(twin) is None
        for a, b in zip(lean, general, strict=True):
            np.testing.assert_array_equal(a, b)


def test_one_row_and_many_rows_each_on_a_lean_forward_of_their_own(rng):
    model, n = random_stack(rng, "float32")
    model.eval()  # model(X) as predict runs it (no Dropout draws)
    one, many = rng.normal(size=(1, n)).astype("float32"), rng.normal(size=(7, n))
    many = many.astype("float32")
    for X in (one, one, many, many):
        expected = model.predict(X)
    np.testing.assert_array_equal(expected, model.predict(many))
    assert lean_of(model).shape == many.shape
    with wxb.no_grad():
        np.testing.assert_array_equal(model(one).data, model.predict(one))


def test_results_handed_out_are_the_callers_own(rng):
    """Each call returns a new array: one kept by the caller is not overwritten by the
    next call's (the buffers are reused)."""
    model, n = random_stack(rng, "float64")
    X1, X2 = rng.normal(size=(2, 3, n))
    first = model.predict(X1)
    kept = [model.predict(X1) for _ in range(3)]  # the lean forward from the 2nd call
    model.predict(X2)
    for k in kept:
        np.testing.assert_array_equal(k, first)
    assert kept[1] is not kept[2]


def _warm(model, X):
    for _ in range(3):
        model.predict(X)
    assert lean_of(model) is not None


def _expected(model, X):
    """What the layers compute one by one (no plan at all)."""
    model.use_plan = False
    try:
        return model.predict(X, batch_size=len(X))
    finally:
        model.use_plan = True


def _changes(rng):
    """Changes a user can make between two calls, each to something the lean forward took
    as fixed or reads at each call."""

    def new_weight_array(model):
        dense = model.layers[0]
        dense.weight.data = rng.normal(size=dense.weight.shape)

    def weight_changed_in_place(model):
        model.layers[0].weight.data *= 2.0

    def bias_changed_in_place(model):
        model.layers[0].bias.data += 1.0

    def new_bias_array(model):
        dense = model.layers[0]
        dense.bias.data = rng.normal(size=dense.bias.shape)

    def new_slope(model):
        model.layers[1].negative_slope = -float(model.layers[1].negative_slope) - 0.3

    def dropout_into_training_mode(model):
        model.layers[2].train()  # predict is in eval mode all the same; model(X) is not

    def dropout_p(model):
        model.layers[2].p = 0.9

    def kernels_route(model):
        kernels.use("numpy")

    def model_to_float32(model):
        model.to("float32")

    return [
        new_weight_array,
        weight_changed_in_place,
        bias_changed_in_place,
        new_bias_array,
        new_slope,
        dropout_into_training_mode,
        dropout_p,
        kernels_route,
        model_to_float32,
    ]


@pytest.mark.parametrize("which", range(9))
def test_a_change_between_calls_is_followed(rng, which):
    try:
        n = int(rng.integers(2, 6))
        model = nn.Sequential(
            nn.Dense(n, 5, dtype="float64", seed=rng),
            nn.LeakyReLU(0.1),
            nn.Dropout(0.5, seed=rng),
            nn.Dense(5, 3, dtype="float64", seed=rng),
        )
        model.eval()
        X = rng.normal(size=(int(rng.integers(1, 4)), n))
        _warm(model, X)
        _changes(rng)[which](model)
        X = X.astype(model.dtype)
        got = model.predict(X)
        np.testing.assert_array_equal(got, _expected(model, X))
        again = model.predict(X)  # and the lean forward built again from here on
        np.testing.assert_array_equal(again, got)
        with wxb.no_grad():  # model(X) in the model's own mode (Dropout on, if set so)
            if model.layers[2].training:
                out = model(X).data
                assert out.shape == got.shape
            else:
                np.testing.assert_array_equal(model(X).data, got)
    finally:
        kernels.use(os.environ.get("WXB_KERNELS", "auto"))


def test_a_standardize_reads_its_statistics_at_each_call(rng):
    n = 3
    model = nn.Sequential(
        nn.Standardize(np.zeros(n), np.ones(n), dtype="float64"),
        nn.Dense(n, 2, dtype="float64", seed=rng),
    )
    X = rng.normal(size=(2, n))
    _warm(model, X)
    model.layers[0].mean[:] = rng.normal(size=n)  # in place, as a refit of the statistics
    np.testing.assert_array_equal(model.predict(X), _expected(model, X))


def test_a_larger_batch_and_back(rng):
    """A batch larger than the buffers makes them again; the old lean forward is not run
    on the new buffers, and a batch beyond what is kept lets them go."""
    model, n = random_stack(rng, "float64")
    small = rng.normal(size=(2, n))
    _warm(model, small)
    for rows in (50, KEPT_INFERENCE_ROWS + 1):
        big = rng.normal(size=(rows, n))
        np.testing.assert_array_equal(model.predict(big, batch_size=rows), _expected(model, big))
        np.testing.assert_array_equal(model.predict(small), _expected(model, small))
    plan = _PLANS[model].inference
    model.predict(rng.normal(size=(KEPT_INFERENCE_ROWS + 1, n)), batch_size=10**6)
    assert plan._inference_lean is None and plan.capacity == 0


def test_alternating_shapes_build_nothing(rng):
    """Shapes that change at every call run the general forward: a lean forward is made
    for a shape that has run twice in a row, not at every call."""
    model, n = random_stack(rng, "float32")
    built = []
    original = LeanInference.build.__func__

    def counting(cls, plan, X):
        built.append(X.shape)
        return original(cls, plan, X)

    with mock.patch.object(LeanInference, "build", classmethod(counting)):
        for i in range(10):
            model.predict(rng.normal(size=(1 + i % 2, n)).astype("float32"))
    assert built == []
