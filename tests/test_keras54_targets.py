"""Targets a class-index loss refuses, as a Keras user without loss= gives them (Keras's
compile always names one): the refusal names the loss that takes them, and that loss
trains on them. Every run draws a fresh seed (printed; ``WXB_TEST_SEED`` replays it)."""

import functools

import numpy as np
import pytest

import wxb
from wxb.errors import DataError
from wxb.nn import Dense, Sequential


def test_targets_cross_entropy_refuses_name_the_loss_that_takes_them(seeded):
    """A Keras user's regression without loss= (Keras's compile always has one) got fit's
    default cross_entropy and "y holds class 8 but the model has 1 outputs (classes
    0..0)" or "non-integer class labels", naming no way. The refusal now names the loss
    that takes such targets, and that loss trains on them (to the loss NumPy computes for
    the weights it ends with: ½(ŷ − y)² a row, the seed's)."""
    rng = seeded.rng
    n, d = int(rng.integers(10, 40)), int(rng.integers(1, 5))
    X = rng.normal(size=(n, d))
    numbers = rng.normal(size=n) * 10
    labels = rng.integers(0, 2, n)
    wholes = rng.integers(2, 9, n)
    for y, outputs, way in [
        (numbers, int(rng.integers(1, 4)), "loss='mse'"),
        (wholes, 1, "loss='mse'"),
        (labels, 1, "loss='bce_with_logits'"),
    ]:
        model = Sequential(Dense(d, outputs, dtype="float64"))
        for call in (functools.partial(wxb.fit, epochs=1, verbose=0), wxb.evaluate):
            with pytest.raises(DataError, match="cross_entropy takes class") as caught:
                call(model, X, y)
            assert way in str(caught.value), seeded.msg(str(caught.value))
        loss = way.split("'")[1]
        model = Sequential(Dense(d, 1, dtype="float64"))  # one target a row: one output
        wxb.fit(model, X, y, loss=loss, epochs=1, verbose=0, batch_size=n)
        out, target = model.predict(X), np.asarray(y, float).reshape(n, -1)
        want = (
            0.5 * ((out - target) ** 2).sum(1).mean()
            if loss == "mse"
            else np.mean(np.logaddexp(0, out) - target * out)
        )
        got = wxb.evaluate(model, X, y)["loss"]  # the loss fit recorded
        assert got == pytest.approx(want, rel=1e-9), seeded.msg(f"{loss}: {got} vs {want}")
    model = Sequential(Dense(d, 3))  # a class past the outputs: no regression to name
    with pytest.raises(DataError, match="the model has 3 outputs") as caught:
        wxb.fit(model, X, np.full(n, 5), epochs=1, verbose=0)
    assert "mse" not in str(caught.value)
