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


@pytest.mark.parametrize("name", ["sum", "mean"])
def test_an_empty_dim_given_in_place_reduces_every_dim_as_torchs(seeded, name):
    """torch's `t.sum(())`, `t.mean([], keepdim=True)` reduce every dimension (as dim=()
    did in wxb); given in the first place, wxb read () as NumPy's axis=(), none reduced,
    and handed back the tensor unreduced: a loss `(out - y).pow(2).sum(())` was a matrix.
    NumPy's own np.sum(t, axis=()) keeps NumPy's meaning."""
    torch = pytest.importorskip("torch")
    rng = seeded.rng
    for _ in range(20):
        shape = tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(1, 4))))
        a = rng.standard_normal(shape)
        dims = [(), [], None, int(rng.integers(-len(shape), len(shape)))][int(rng.integers(4))]
        keep = [None, False, True][int(rng.integers(3))]
        args, kwargs = (dims,), {}
        if keep is not None:
            if rng.random() < 0.5:
                args = (dims, keep)
            else:
                kwargs = {"keepdim": keep}
        x = wxb.tensor(a, requires_grad=True)
        t = torch.tensor(a, requires_grad=True)
        got, want = getattr(x, name)(*args, **kwargs), getattr(t, name)(*args, **kwargs)
        weights = rng.standard_normal(tuple(want.shape))
        (got * weights).sum().backward()
        (want * torch.from_numpy(weights)).sum().backward()
        case = seeded.msg((shape, args, kwargs))
        assert got.shape == tuple(want.shape), case
        np.testing.assert_allclose(got.data, want.detach().numpy(), rtol=1e-12, err_msg=case)
        np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-12, err_msg=case)
        assert getattr(wxb, name)(x, *args, **kwargs).shape == got.shape, case
    x = wxb.tensor(rng.standard_normal((2, 3)))
    assert np.sum(x, axis=()).shape == (2, 3) and np.mean(x, axis=()).shape == (2, 3)
