"""Small fixes of this stop, each failing on the code before it."""

from __future__ import annotations

import numpy as np
import pytest

import wxb
from wxb.errors import DataError
from wxb.nn import Dense, ReLU, Sequential


@pytest.mark.parametrize("call", ["fit", "evaluate"])
@pytest.mark.parametrize("source", ["DataLoader", "iterator", "arrays"])
def test_fit_and_evaluate_without_y_say_what_is_missing(seeded, call, source):
    """A PyTorch or Keras user's `wxb.fit(model, loader)` (the batches hold the targets)
    raised Python's own "fit() missing 1 required positional argument: 'y'", which says
    nothing of the loader; `fit(model, X)` the same. Now one DataError line: a batch source
    is named with the way, arrays without targets are told to give y."""
    rng = seeded.rng
    n, features = int(rng.integers(10, 40)), int(rng.integers(2, 6))
    X = rng.normal(size=(n, features)).astype(np.float32)
    y = rng.integers(0, 3, size=n)
    if source == "DataLoader":
        torch = pytest.importorskip("torch")
        from torch.utils.data import DataLoader, TensorDataset

        given = DataLoader(TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), batch_size=4)
        expected = "X is a DataLoader, not an array"
    elif source == "iterator":
        given = iter([(X[i : i + 4], y[i : i + 4]) for i in range(0, n, 4)])
        expected = "X is a list_iterator, not an array"
    else:
        given, expected = X, "y is None: give the targets"
    model = Sequential(Dense(features, 8), ReLU(), Dense(8, 3))
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(DataError) as info:
        if call == "fit":
            wxb.fit(model, given, epochs=1, verbose=0)
        else:
            wxb.evaluate(model, given)
    message = str(info.value)
    assert message.startswith(expected) and "\n" not in message, message
    for p, old in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p.data, old)  # nothing trained
