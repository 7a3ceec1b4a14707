"""``predict`` of a Sequential on its lean inference in eval mode without entering
``evaluating()`` or ``no_grad`` (``StackPlan.infer_evaluating``): never with a result
that no longer holds, nor with a Dropout in training mode drawing. Each case checks the
outputs against the stack's equations in float64 NumPy after a change made once the
fast path ran."""

from unittest import mock

import numpy as np
import pytest

import wxb
from wxb import nn
from wxb.errors import DataError, ShapeError
from wxb.nn.module import Module


def _stack(rng, n, dropout=False):
    layers = [nn.Dense(n, 7, dtype="float64", seed=rng), nn.Tanh()]
    if dropout:
        layers.append(nn.Dropout(0.5, seed=rng))
    layers += [nn.Dense(7, 3, dtype="float64", seed=rng)]
    return nn.Sequential(*layers)


def _reference(model, X):
    """The layers' equations in float64 NumPy, in eval mode (Dropout the identity)."""
    a = np.asarray(X, dtype=np.float64)
    for layer in model.layers:
        if isinstance(layer, nn.Dense):
            a = a @ layer.weight.data.astype(np.float64).T
            if layer.bias is not None:
                a = a + layer.bias.data
        elif isinstance(layer, nn.Tanh):
            a = np.tanh(a)
        elif isinstance(layer, nn.ReLU):
            a = np.maximum(a, 0.0)
        else:
            assert isinstance(layer, nn.Dropout)
    return a


def _rows(rng, n):
    return rng.normal(size=(int(rng.integers(1, 4)), n))


def _blocks():
    """predict's entries into ``evaluating()``, counted (``.call_count``)."""
    return mock.patch.object(Module, "evaluating", autospec=True, side_effect=Module.evaluating)


def _warm(model, X):
    for _ in range(3):  # the lean forward from the second call
        model.predict(X)


def test_a_warm_stack_predicts_outside_the_blocks(rng):
    """What the fast path is for: once the shape ran twice, predict enters no block (it
    cost as much as the one-row forward) and gives the equations' numbers, in eval mode
    whatever the model's (fit leaves it in training mode)."""
    n = int(rng.integers(2, 9))
    model = _stack(rng, n, dropout=bool(rng.integers(2))).train(bool(rng.integers(2)))
    X = _rows(rng, n)
    _warm(model, X)
    with _blocks() as blocks:
        got = model.predict(X)
    assert blocks.call_count == 0
    np.testing.assert_allclose(got, _reference(model, X), rtol=1e-12, atol=1e-12)


def test_dropout_in_training_mode_stays_off(rng):
    """model.train() after the fast path ran: predict is in eval mode all the same (the
    lean forward, left to read the layer's mode, draws masks), and model(X) under
    no_grad does draw them."""
    n = int(rng.integers(2, 9))
    model = _stack(rng, n, dropout=True).eval()
    X = rng.normal(size=(int(rng.integers(2, 5)), n))
    _warm(model, X)
    model.train()
    expected = _reference(model, X)
    for _ in range(3):
        with _blocks() as blocks:
            np.testing.assert_allclose(model.predict(X), expected, rtol=1e-12, atol=1e-12)
        assert blocks.call_count == 0
    # the training mode is real, and left as it was: model(X) under no_grad draws masks,
    # on its lean forward too (from the second call); all 64·7 kept has odds 2⁻⁴⁴⁸
    big = rng.normal(size=(64, n))
    for _ in range(3):
        with wxb.no_grad():
            assert not np.allclose(model(big).data, _reference(model, big))
        model.predict(big)
    model.eval()
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-12, atol=1e-12)


def test_dropout_set_to_training_alone(rng):
    """The Dropout's own flag, set on the layer, not the model."""
    n = int(rng.integers(2, 9))
    model = _stack(rng, n, dropout=True).eval()
    X = rng.normal(size=(4, n))
    _warm(model, X)
    model.layers[2].train()
    for _ in range(3):
        np.testing.assert_allclose(model.predict(X), _reference(model, X), rtol=1e-12, atol=1e-12)


def test_weights_loaded_after_the_fast_path_ran(rng):
    n = int(rng.integers(2, 9))
    model = _stack(rng, n).eval()
    X = _rows(rng, n)
    _warm(model, X)
    other = _stack(rng, n)
    model.load_state_dict(other.state_dict())
    for _ in range(3):
        np.testing.assert_allclose(model.predict(X), _reference(other, X), rtol=1e-12, atol=1e-12)


def test_a_layer_appended_after_the_fast_path_ran(rng):
    n = int(rng.integers(2, 9))
    model = _stack(rng, n).eval()
    X = _rows(rng, n)
    _warm(model, X)
    model.append(nn.ReLU())
    model.append(nn.Dense(3, 2, dtype="float64", seed=rng))
    for _ in range(3):
        got = model.predict(X)
        assert got.shape == (len(X), 2)
        np.testing.assert_allclose(got, _reference(model, X), rtol=1e-12, atol=1e-12)


def test_a_hook_added_after_the_fast_path_ran(rng):
    """A forward hook on the model runs in predict (the call it hooks), as before."""
    n = int(rng.integers(2, 9))
    model = _stack(rng, n).eval()
    X = _rows(rng, n)
    _warm(model, X)
    handle = model.register_forward_hook(lambda module, args, out: out * 2.0)
    for _ in range(3):
        np.testing.assert_allclose(
            model.predict(X), 2.0 * _reference(model, X), rtol=1e-12, atol=1e-12
        )
    handle.remove()
    _warm(model, X)
    np.testing.assert_allclose(model.predict(X), _reference(model, X), rtol=1e-12, atol=1e-12)


def test_use_plan_off_after_the_fast_path_ran(rng):
    """use_plan = False: layer by layer, in the blocks (the lean forward still held)."""
    n = int(rng.integers(2, 9))
    model = _stack(rng, n).eval()
    X = _rows(rng, n)
    _warm(model, X)
    model.layers[0].weight.data *= 2.0
    model.use_plan = False
    with _blocks() as blocks:
        got = model.predict(X)
    assert blocks.call_count == 1
    np.testing.assert_allclose(got, _reference(model, X), rtol=1e-12, atol=1e-12)


def test_the_checks_still_run_after_the_fast_path_ran(rng):
    """A NaN, another width, rows of another dtype: the errors and conversions of the
    first call, not the lean forward's numbers for them."""
    n = int(rng.integers(2, 9))
    model = _stack(rng, n).eval()
    X = rng.normal(size=(int(rng.integers(2, 5)), n))
    _warm(model, X)
    bad = X.copy()
    row, column = int(rng.integers(len(X))), int(rng.integers(n))
    bad[row, column] = rng.choice([np.nan, np.inf, -np.inf])
    with pytest.raises(DataError, match=f"row {row}, column {column}"):
        model.predict(bad)
    with pytest.raises(ShapeError):
        model.predict(rng.normal(size=(len(X), n + 1)))
    as32 = X.astype(np.float32)  # converted to the model's float64, as the first call
    np.testing.assert_allclose(model.predict(as32), _reference(model, as32), rtol=1e-12)
    as_list = X.tolist()
    np.testing.assert_allclose(model.predict(as_list), _reference(model, X), rtol=1e-12)


def test_fit_then_predict_with_dropout(rng):
    """fit leaves the model in training mode (as PyTorch's loop does): a Keras user's
    predict right after it is in eval mode, on the fast path from the second call."""
    n = int(rng.integers(2, 9))
    model = _stack(rng, n, dropout=True)
    X, y = rng.normal(size=(48, n)), rng.integers(0, 3, size=48)
    wxb.fit(model, X, y, epochs=2, batch_size=16, verbose=False)
    assert model.training
    rows = _rows(rng, n)
    for _ in range(3):
        np.testing.assert_allclose(model.predict(rows), _reference(model, rows), rtol=1e-12)


def test_a_subclass_with_its_own_forward_is_not_taken_past_it(rng):
    # a user's Sequential subclass: its forward, not the stock stack's, gives predict's rows
    class Scaled(nn.Sequential):
        def forward(self, x):
            return super().forward(x) * 2.0

    model = Scaled(*_stack(rng, 5).layers)
    X = _rows(rng, 5)
    _warm(model, X)
    np.testing.assert_allclose(model.predict(X), 2.0 * _reference(model, X), rtol=1e-12)


def test_two_threads_predicting_rows_of_other_counts(rng):
    # each thread's lean forward is its own: one thread's rows never come out of another's
    import threading

    model = _stack(rng, 6, dropout=True)
    inputs = [rng.normal(size=(1, 6)), rng.normal(size=(3, 6))]
    wrong = []

    def work(X):
        for _ in range(300):
            if not np.allclose(model.predict(X), _reference(model, X), rtol=1e-12, atol=0):
                wrong.append(len(X))

    threads = [threading.Thread(target=work, args=(X,)) for X in inputs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not wrong
