"""NumPy operands off the well-tested path, each compared with what PyTorch, NumPy or
scikit-learn gives: subclasses of ndarray (np.matrix, masked arrays), NumPy integers and
lists in comparisons, and arrays shared between the caller and the model (fit's batch
buffers, Standardize's statistics, coefs_ given back, a forward that changes its input)."""

import warnings

import numpy as np
import numpy.ma as ma
import pytest
import torch

import wxb
from wxb import ops
from wxb.nn import Dense, Dropout, Identity, Module, Sequential, Standardize
from wxb.sklearn import MLPRegressor
from wxb.tensor import Tensor


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix's own
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_matrix_given_with_a_dtype_is_a_plain_tensor_as_torchs(rng, dtype):
    # torch.tensor(np.matrix(a), dtype=…) is a plain tensor: t[:, 0] is a column's values
    a = rng.normal(size=(3, 4)).astype(dtype)
    t = Tensor(np.matrix(a), dtype=dtype)
    theirs = torch.tensor(np.matrix(a), dtype=getattr(torch, dtype))
    assert type(t.data) is np.ndarray
    for pick in (lambda x: x[:, 0], lambda x: x[1], lambda x: x.reshape(-1), lambda x: x * x):
        ours, expected = pick(t), pick(theirs)
        assert ours.shape == tuple(expected.shape)
        np.testing.assert_array_equal(ours.data, expected.numpy())


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
@pytest.mark.parametrize("where", ["leaf", "seed"])
@pytest.mark.parametrize("subclass", ["masked", "matrix"])
def test_a_subclass_of_ndarray_gives_torchs_gradients(rng, where, subclass):
    # a masked array kept as a leaf's data (or as backward's grad) left its masked
    # entries out of g ⊙ A; one with entries masked is now refused (test_masked54.py),
    # one with none computes as its plain array, a subclass kept nowhere
    a, b, g = (rng.normal(size=(3, 3)) for _ in range(3))
    wrap = {
        "masked": lambda v: ma.masked_array(v, mask=np.zeros(v.shape, bool)),
        "matrix": np.matrix,
    }[subclass]
    x = Tensor(wrap(a) if where == "leaf" else a, dtype="float64", requires_grad=True)
    w = Tensor(b, requires_grad=True)
    out = (x * w).exp() * 2
    out.backward(wrap(g) if where == "seed" else g)
    tx = torch.tensor(a, requires_grad=True)
    tw = torch.tensor(b, requires_grad=True)
    ((tx * tw).exp() * 2).backward(torch.tensor(g))
    np.testing.assert_allclose(out.data, ((tx * tw).exp() * 2).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad, tw.grad.numpy(), rtol=1e-12)
    assert type(x.grad) is np.ndarray and type(w.grad) is np.ndarray


COMPARISONS = ["__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"]


@pytest.mark.parametrize("form", ["scalar", "0-d", "array"])
@pytest.mark.parametrize("int_dtype", [np.int64, np.int32, np.uint64])
def test_numpy_integers_compare_with_a_float_tensor_as_torchs(rng, form, int_dtype):
    # torch compares float32 with integers in float32 (as x − n is computed); NumPy
    # compares float32 with int64 in float64: beyond 2**24 the masks differed
    # odd integers beyond 2**25: none is a float32; the tensor holds each one's float32
    # (equal in torch's eyes), or a float32 or two away
    ints = (rng.integers(2**24, 2**29, size=6) * 2 + 1).astype(int_dtype)
    steps = rng.integers(-1, 2, size=6) * 64
    pick = int(rng.integers(6))
    steps[pick] = 0
    floats = (ints.astype(np.float32) + steps).astype(np.float32)
    if form == "array":
        given = ints
    else:
        given = int_dtype(ints[pick]) if form == "scalar" else np.array(ints[pick])
    ours, theirs = Tensor(floats), torch.tensor(floats)
    other = torch.tensor(np.asarray(given).astype(np.int64))
    for name in COMPARISONS:
        want = getattr(theirs, name)(other).numpy()
        np.testing.assert_array_equal(getattr(ours, name)(given), want, err_msg=name)
    # on the left: NumPy's ufunc hands the comparison to the tensor
    np.testing.assert_array_equal(given == ours, (other == theirs).numpy())
    np.testing.assert_array_equal(np.less(given, ours), (other < theirs).numpy())
    # the same answer as the difference gives
    np.testing.assert_array_equal(ours == given, (ours - given).data == 0)


@pytest.mark.parametrize("container", [list, tuple])
def test_a_list_compares_with_a_float32_tensor_in_its_dtype(rng, container):
    # a list is read in the tensor's dtype, as t − [0.1] reads it and torch.tensor(list)
    # makes it (float32); NumPy read the Python floats as float64: t == [0.1] was False
    values = rng.normal(size=5)
    given = container(values.tolist())
    ours = Tensor(values.astype(np.float32))
    theirs, other = torch.tensor(values, dtype=torch.float32), torch.tensor(values.tolist())
    for name in COMPARISONS:
        want = getattr(theirs, name)(other).numpy()
        np.testing.assert_array_equal(getattr(ours, name)(given), want, err_msg=name)
    np.testing.assert_array_equal(ours == given, (ours - given).data == 0)
    assert (ours == given).all() and (given == ours).all()


class _Keeps(Module):
    """A forward of one's own that keeps each input it is given (a user's debugging list)."""

    def __init__(self, n, seed):
        super().__init__()
        self.dense = Dense(n, 3, seed=seed)
        self.kept = []

    def forward(self, x):
        self.kept.append((x, x.data.copy()))
        return self.dense(x)


@pytest.mark.parametrize("loss", ["cross_entropy", "own"])
def test_inputs_and_targets_fit_hands_over_stay_as_given(rng, loss):
    # a DataLoader's batches are tensors of their own: one kept by the forward or the
    # loss stays that batch; fit refilled one buffer, and every kept one became the last
    n = int(rng.integers(2, 6))
    X = rng.normal(size=(48, n)).astype(np.float32)
    y = rng.integers(0, 3, size=48)
    targets = []

    def own(output, target):
        targets.append((target, np.array(target, copy=True)))
        return ops.cross_entropy(output, target)

    model = _Keeps(n, int(rng.integers(1 << 20)))
    wxb.fit(model, X, y, loss=own if loss == "own" else loss, epochs=2, batch_size=8,
            seed=int(rng.integers(1 << 20)), verbose=False)  # fmt: skip
    assert len(model.kept) >= 12
    for x, then in model.kept:
        np.testing.assert_array_equal(x.data, then)
    for target, then in targets:
        np.testing.assert_array_equal(target, then)
    if loss == "own":
        assert len(targets) >= 12


@pytest.mark.parametrize("name", ["coefs_", "intercepts_"])
def test_layers_values_swapped_through_the_setter_are_swapped_as_scikit_learns(rng, name):
    # scikit-learn's coefs_ is a list: giving it back permuted swaps the layers' values.
    # wxb's items view the network, and the first copied in overwrote the second's source
    width = int(rng.integers(2, 6))
    X = rng.normal(size=(30, width))
    y = rng.normal(size=30)
    est = MLPRegressor(hidden_layer_sizes=(width, width), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (not converged in 3 iterations)
        est.fit(X, y)
    before = [a.copy() for a in getattr(est, name)]
    given = getattr(est, name)
    setattr(est, name, [given[1], given[0], given[2]])
    after = getattr(est, name)
    for got, want in zip(after, [before[1], before[0], before[2]], strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_standardize_keeps_statistics_of_its_own(rng, dtype):
    # the arrays given are the caller's: refilled later (the next data set's statistics),
    # they must not change the model, nor bring in a scale the checks refused
    n = int(rng.integers(1, 6))
    mean = rng.normal(size=n).astype(dtype)
    scale = rng.uniform(0.5, 2.0, size=n).astype(dtype)
    layer = Standardize(mean, scale, dtype=dtype)
    model = Sequential(layer, Dense(n, 2, dtype=dtype))  # (the planned stack reads them too)
    X = rng.normal(size=(4, n)).astype(dtype)
    alone, whole = layer.predict(X).copy(), model.predict(X).copy()
    mean += 3
    scale[...] = 0
    np.testing.assert_array_equal(layer.predict(X), alone)
    np.testing.assert_array_equal(model.predict(X), whole)


class _Shifts(Module):
    """A forward of one's own that changes its input in place, a PyTorch idiom
    (x.sub_(μ)) that is harmless there: each batch a DataLoader gives is a new tensor."""

    def __init__(self, n, seed, shift):
        super().__init__()
        self.dense = Dense(n, 3, dtype="float64", seed=seed)
        self.shift = shift

    def forward(self, x):
        x -= self.shift
        return self.dense(x)


def test_a_forward_that_changes_its_input_in_place_is_scored_on_the_rows_given(rng):
    n = int(rng.integers(2, 6))
    model = _Shifts(n, int(rng.integers(1 << 20)), rng.normal(size=n))
    X = rng.normal(size=(int(rng.integers(6, 30)), n))
    y = rng.integers(0, 3, size=len(X))
    with wxb.no_grad(), model.evaluating():
        expected = model(X.copy()).data  # torch.tensor(X): the rows as given
    loss = torch.nn.functional.cross_entropy(torch.tensor(expected), torch.tensor(y)).item()
    # predict in chunks runs the rows about the first border again: on changed rows, it
    # took the model for one that couples rows and ran them all, changed, once more
    for batch_size in (1, int(rng.integers(2, len(X)))):
        got = model.predict(X.copy(), batch_size=batch_size)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    # evaluate's look at the output's shape ran the first rows once before scoring them
    assert wxb.evaluate(model, X.copy(), y)["loss"] == pytest.approx(loss, rel=1e-12)
    # fit's validation_data: scored each epoch on the rows as given (an lr of 1e-300 leaves
    # float64 weights as they are: one model throughout)
    X_val = X.copy()
    history = wxb.fit(model, X.copy(), y, validation_data=(X_val, y), epochs=3,
                      optimizer="sgd", lr=1e-300, verbose=False)  # fmt: skip
    np.testing.assert_allclose(history.history["val_loss"], [loss] * 3, rtol=1e-12)


class _Passes(Module):
    """A forward of one's own that hands back a view of its input (a crop)."""

    def forward(self, x):
        return x[:, :2]


def test_predict_leaves_the_callers_rows_alone_and_hands_back_an_array_of_its_own(rng):
    """predict(X), as scikit-learn's: X is not changed, and the predictions are not X
    (nor a view of it) even where the forward gives back its input, as eval-mode Dropout
    and an identity do (model(X) itself does hand it back, as PyTorch's)."""
    n = int(rng.integers(3, 6))
    shifts = _Shifts(n, int(rng.integers(1 << 20)), rng.normal(size=n))
    for model in (shifts, Sequential(Dropout(0.5)), Sequential(Identity()), _Passes()):
        X = rng.normal(size=(int(rng.integers(6, 30)), n))
        if model is not shifts:
            X = X.astype(model.dtype)  # (a model without parameters takes float32)
        given = X.copy()
        for batch_size in (len(X), 1, int(rng.integers(2, len(X)))):
            out = model.predict(X, batch_size=batch_size)
            np.testing.assert_array_equal(X, given)
            assert not np.may_share_memory(out, X)
