"""NumPy arrays off the well-tested path. Masked arrays with entries masked, handed to
every door wxb reads arrays through: refused in one line naming the masked entries.
NumPy's plain read of such an array (np.asarray, as torch.tensor and scikit-learn's
validate_data read it) takes the values hidden under the mask, so a model trained,
predicted, scored or loaded as if those values were data. A masked array with no entry
masked computes as its plain array does. And ``wxb.from_numpy`` of a big-endian array,
which shares no memory with it."""

import re

import numpy as np
import numpy.ma as ma
import pytest
import torch

import wxb
from wxb import nn
from wxb.errors import DataError
from wxb.nn import Dense, Parameter, Sequential, Tanh
from wxb.nn import functional as F
from wxb.sklearn import MLPClassifier, MLPRegressor
from wxb.tensor import Tensor


def _masked(rng, shape):
    """Random values with one random entry (or more) masked, and the plain values."""
    values = rng.normal(size=shape)
    hidden = rng.random(shape) < 0.2
    hidden.flat[rng.integers(hidden.size)] = True
    return ma.masked_array(values, mask=hidden), values


def _model():
    return Sequential(Dense(3, 4, dtype="float64"), Tanh(), Dense(4, 2, dtype="float64"))


def _doors(X, y, labels, weight, column):
    """(name, call) for each way an array reaches wxb's numbers (weight: a first layer's
    W; column: one output's targets), each array with entries masked."""
    model, t = _model(), Tensor(np.ones((6, 3)), requires_grad=True)
    regressor = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2).fit(np.ones((6, 3)), np.ones(6))

    def state_with(array):
        state = dict(model[0].state_dict())
        state["weight"] = array
        return state

    def set_weight(array):
        model[0].weight.data = array

    return {
        "Tensor(X)": lambda: Tensor(X),
        "wxb.tensor(X)": lambda: wxb.tensor(X),
        "Parameter(X)": lambda: Parameter(X),
        "t + X": lambda: t + X,
        "t * X": lambda: t * X,
        "t @ X.T": lambda: t @ X.T,
        "t == X": lambda: t == X,
        "wxb.where(c, t, X)": lambda: wxb.where(np.ones((6, 3), bool), t, X),
        "backward(grad=X)": lambda: (t * 2).backward(X),
        "model(X)": lambda: model(X),
        "model(rows)": lambda: model(list(X)),
        "t + [rows]": lambda: t + list(X),
        "model.predict(X)": lambda: model.predict(X),
        "fit(X, y)": lambda: wxb.fit(model, X, y.data, loss="mse", epochs=1, verbose=False),
        "fit(rows, y)": lambda: wxb.fit(model, list(X), y.data, loss="mse", verbose=False),
        "fit(X, y) targets": lambda: wxb.fit(model, X.data, y, loss="mse", epochs=1, verbose=False),
        "evaluate(X, y)": lambda: wxb.evaluate(model, X, y.data, loss="mse"),
        "make_step(X, y)": lambda: wxb.make_step(model, "mse", "sgd")(X, y.data),
        "F.mse_loss(out, y)": lambda: F.mse_loss(model(X.data), y),
        "F.cross_entropy(out, labels)": lambda: F.cross_entropy(model(X.data), labels),
        "fit(X, labels)": lambda: wxb.fit(
            model, X.data, labels, loss="cross_entropy", epochs=1, verbose=False
        ),
        "load_state_dict": lambda: model[0].load_state_dict(state_with(weight)),
        "W.data = X": lambda: set_weight(weight),
        "register_buffer": lambda: model[0].register_buffer("shift", column),
        "MLPRegressor.fit(X)": lambda: MLPRegressor(max_iter=2).fit(X, y.data[:, 0]),
        "MLPRegressor.fit(y)": lambda: MLPRegressor(max_iter=2).fit(X.data, column),
        "MLPClassifier.fit(X)": lambda: MLPClassifier(max_iter=2).fit(X, labels.data),
        "MLPRegressor.fit(sample_weight)": lambda: MLPRegressor(max_iter=2).fit(
            X.data, column.data, sample_weight=column
        ),
        "CrossEntropyLoss(weight)": lambda: nn.CrossEntropyLoss(weight=column),
        "BCEWithLogitsLoss(pos_weight)": lambda: nn.BCEWithLogitsLoss(pos_weight=column),
        "MLPRegressor.predict(X)": lambda: regressor.predict(X),
    }


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_masked_array_with_entries_masked_is_refused_at_every_door(seeded):
    rng = seeded.rng
    X, _ = _masked(rng, (6, 3))
    y, _ = _masked(rng, (6, 2))
    labels = ma.masked_array(rng.integers(0, 2, 6), mask=rng.permutation(6) == 0)
    count = int(X.mask.sum())
    doors = _doors(X, y, labels, _masked(rng, (4, 3))[0], _masked(rng, 6)[0])
    for name, call in doors.items():
        try:
            call()
        except DataError as exc:
            assert re.search(r"masked array with \d+ masked entr.*under", str(exc)), seeded.msg(
                f"{name}: {exc}"
            )
        else:
            pytest.fail(seeded.msg(f"{name}: computed with the values under the mask"))
    with pytest.raises(DataError, match=rf"Tensor: a masked array with {count} masked entr"):
        Tensor(X)


def test_a_masked_array_with_nothing_masked_computes_as_torch(rng):
    # as the plain array: values and gradients (torch reads the same values)
    a, b, g = (rng.normal(size=(3, 3)) for _ in range(3))
    x = Tensor(ma.masked_array(a, mask=False), requires_grad=True)
    w = Tensor(b, requires_grad=True)
    out = (x * ma.masked_array(b)).exp() @ w
    out.backward(ma.masked_array(g, mask=np.zeros((3, 3), bool)))
    tx, tw = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    expected = (tx * torch.tensor(b)).exp() @ tw
    expected.backward(torch.tensor(g))
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad, tw.grad.numpy(), rtol=1e-12)
    model = _model()
    rows = rng.normal(size=(5, 3))
    np.testing.assert_array_equal(model.predict(ma.masked_array(rows)), model.predict(rows))


@pytest.mark.parametrize("order", ["<", ">"])
def test_from_numpy_shares_the_arrays_memory_or_refuses_as_torch(rng, order):
    # a big-endian array (np.load of a file written so) was copied into the machine's
    # order: t.mul_(2) left the array as it was, where the docs promise both change
    values = rng.normal(size=(3, 4)).astype(f"{order}f8")
    before, twin = values.copy(), values.copy()
    try:
        theirs = torch.from_numpy(twin)
    except ValueError:  # torch's refusal: the other byte order
        with pytest.raises(DataError, match=r"byte order.*wxb\.tensor"):
            wxb.from_numpy(values)
        np.testing.assert_array_equal(wxb.tensor(values, dtype="float64").data, before)
        return
    t = wxb.from_numpy(values)
    with wxb.no_grad():
        t.mul_(2)
    theirs.mul_(2)
    np.testing.assert_array_equal(values, twin)  # each array changed through its tensor
    np.testing.assert_array_equal(values, before * 2)
