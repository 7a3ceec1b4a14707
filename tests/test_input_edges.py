"""Inputs off the usual path — another library's arrays, big-endian bytes, lists,
tables of mixed column types, odd targets — reach every entry point (a model's call,
make_step on either path, the losses, wxb.fit, Standardize.fit) as they reach
predict: read the same, or refused with one clear error; never a silent cast."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import wxb
from wxb.nn import Dense, Module, MSELoss, Sequential, Standardize, Tanh
from wxb.optim import SGD


class Doubled(Module):
    """A model of the user's own: make_step runs it through the recorded graph."""

    def __init__(self, n, seed):
        super().__init__()
        self.inner = Dense(n, 1, seed=seed, dtype="float64")

    def forward(self, x):
        return self.inner(x) * 2.0


def refused_like_predict(model, X):
    """model(X) raises what model.predict(X) raises (a DataError)."""
    with pytest.raises(wxb.DataError) as by_predict:
        model.predict(X)
    with pytest.raises(wxb.DataError) as by_call:
        model(X)
    return str(by_predict.value), str(by_call.value)


def test_a_model_call_refuses_what_a_cast_would_change_as_predict_does(rng):
    """model(X) cast with astype: 1e39 became inf in float32, complex lost its imaginary
    part, text was parsed and dates became days since 1970, while predict refused them."""
    n = int(rng.integers(2, 5))
    m32 = Sequential(Dense(n, 1, seed=int(rng.integers(1 << 30))))
    m64 = m32.double()
    big = rng.normal(size=(3, n))
    big[int(rng.integers(3)), int(rng.integers(n))] = 1e39
    refused_like_predict(Sequential(Dense(n, 1)), big)
    complex_X = rng.normal(size=(3, n)) + 1j
    text = rng.normal(size=(3, n)).astype(str)
    dates = np.arange(3 * n).reshape(3, n).astype("datetime64[D]")
    for X in (complex_X, text, dates):
        _, said = refused_like_predict(m64, X)
        assert str(X.dtype) in said and "Sequential input" in said
    X = rng.normal(size=(4, n))
    np.testing.assert_array_equal(m64(torch.from_numpy(X)).data, m64(X).data)
    np.testing.assert_array_equal(m64(X.astype(">f8")).data, m64(X).data)


def test_a_big_endian_dtype_is_the_native_one(rng):
    """Dense(dtype='>f8') and model.to('>f8') were accepted as they are, and every
    optimiser step on the compiled route then died inside NumPy."""
    n = int(rng.integers(2, 5))
    seed = int(rng.integers(1 << 30))
    swapped = Sequential(Dense(n, 3, seed=seed, dtype=">f8"), Tanh(), Dense(3, 1, seed=seed + 1))
    swapped.to(">f8")
    native = Sequential(Dense(n, 3, seed=seed, dtype="float64"), Tanh(), Dense(3, 1, seed=seed + 1))
    native.double()
    assert all(p.data.dtype == np.float64 and p.data.dtype.isnative for p in swapped.parameters())
    steps = [wxb.make_step(m, MSELoss(), SGD(m.parameters(), lr=0.1)) for m in (swapped, native)]
    for _ in range(3):
        X, y = rng.normal(size=(8, n)), rng.normal(size=(8, 1))
        losses = [steps[0](X.astype(">f8"), y.astype(">f8")), steps[1](X, y)]
        assert losses[0] == losses[1]
    for a, b in zip(swapped.parameters(), native.parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_a_dtype_error_advises_only_a_cast_that_works(rng):
    """An int batch to make_step said ``model.to('int64')``, which is refused."""
    n = int(rng.integers(2, 5))
    model = Sequential(Dense(n, 1)).double()
    step = wxb.make_step(model, MSELoss(), SGD(model.parameters(), lr=0.1))
    with pytest.raises(wxb.DataError, match=r"cast the data \(X\.astype\(np\.float64\)\)"):
        step(rng.integers(0, 5, size=(4, n)), rng.normal(size=(4, 1)))
    with pytest.raises(wxb.DataError, match=r"model\.to\('float32'\)") as said:
        step(rng.normal(size=(4, n)).astype(np.float32), rng.normal(size=(4, 1)))
    assert "int" not in str(said.value)


@pytest.mark.parametrize("path", ["planned", "graph", "loss"])
def test_targets_are_read_alike_on_every_path(rng, path):
    """make_step cast y with astype: text, complex and dates raised NumPy's own errors,
    and 1e39 became inf in a float32 model; a single number gave IndexError on every
    path. The hand loop's loss refused all of them by name."""
    n = int(rng.integers(2, 5))
    seed = int(rng.integers(1 << 30))
    model = Sequential(Dense(n, 1, seed=seed)) if path != "graph" else Doubled(n, seed)
    if path == "graph":
        model = model.float()
    X = rng.normal(size=(4, n)).astype(np.float32)

    def run(y):
        if path == "loss":
            return MSELoss()(model(X), y)
        return wxb.make_step(model, MSELoss(), SGD(model.parameters(), lr=0.1))(X, y)

    bad = {
        "text": rng.normal(size=(4, 1)).astype(str),
        "complex": rng.normal(size=(4, 1)) + 1j,
        "dates": np.arange(4).reshape(4, 1).astype("datetime64[D]"),
    }
    before = [p.data.copy() for p in model.parameters()]
    for y in bad.values():
        with pytest.raises(wxb.DataError, match=str(y.dtype).replace("[", r"\[")):
            run(y)
    huge = rng.normal(size=(4, 1))
    huge[int(rng.integers(4))] = 1e39
    with pytest.raises(wxb.DataError, match="beyond float32's range"):
        run(huge)
    for single in (float(rng.normal()), np.array(int(rng.integers(3)))):
        with pytest.raises(wxb.DataError, match="needs a target per sample"):
            run(single)
    with pytest.raises(wxb.DataError, match="no target"):
        run(None)
    for a, p in zip(before, model.parameters(), strict=True):  # nothing refused was stepped
        np.testing.assert_array_equal(a, p.data)


def test_fit_reads_a_table_of_numbers_and_booleans_as_predict_does(rng):
    """A DataFrame with a float and a bool column (NumPy reads it as objects) and a dict
    of columns were refused by wxb.fit ("holds object values (e.g. 0.125…)"), while
    predict took them; they now train exactly as the same numbers in an array."""
    rows = int(rng.integers(20, 40))
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "flag": rng.normal(size=rows) > 0,
            "k": rng.integers(0, 9, rows),
        }
    )
    matrix = frame.to_numpy(dtype=np.float64)
    y = rng.normal(size=rows)
    seed = int(rng.integers(1 << 30))
    trained = []
    for X in (matrix, frame, {name: frame[name].to_numpy() for name in frame}):
        model = Sequential(Dense(3, 2, seed=seed), Tanh(), Dense(2, 1, seed=seed + 1)).double()
        wxb.fit(model, X, y, loss="mse", epochs=2, batch_size=8, seed=seed, verbose=False)
        trained.append(model)
    for model in trained[1:]:
        for a, b in zip(model.parameters(), trained[0].parameters(), strict=True):
            np.testing.assert_array_equal(a.data, b.data)
        np.testing.assert_array_equal(model.predict(frame), trained[0].predict(matrix))


def test_arrays_of_other_libraries_and_lists_keep_their_numbers(rng):
    """wxb.Tensor(a torch float64 tensor) became float32; make_step on a model of the
    user's own then refused a list that the Sequential path took."""
    values = rng.normal(size=(3, 2))
    tensor = wxb.Tensor(torch.from_numpy(values))
    assert tensor.dtype == np.float64
    np.testing.assert_array_equal(tensor.data, values)
    n = int(rng.integers(2, 5))
    seed = int(rng.integers(1 << 30))
    X, y = rng.normal(size=(6, n)), rng.normal(size=(6, 1))
    losses = []
    for batch in (X, X.tolist()):
        model = Doubled(n, seed)
        step = wxb.make_step(model, MSELoss(), SGD(model.parameters(), lr=0.1))
        losses.append([step(batch, y) for _ in range(2)])
    assert losses[0] == losses[1]


def test_standardize_fits_any_array_like_as_its_float_array(rng):
    """Standardize.fit read X.dtype: a list or a DataFrame raised AttributeError, whole
    numbers NumPy's 'not inexact', and big-endian X gave '>f8' buffers (the model then
    mixed dtypes and would not save)."""
    rows, n = int(rng.integers(5, 20)), int(rng.integers(2, 5))
    counts = rng.integers(-50, 50, size=(rows, n))
    reference = Standardize.fit(counts.astype(np.float32))
    for X in (counts, counts.tolist(), pd.DataFrame(counts), wxb.Tensor(counts.astype(np.float32))):
        fitted = Standardize.fit(X)
        assert fitted.mean.dtype == np.float32
        np.testing.assert_array_equal(fitted.mean, reference.mean)
        np.testing.assert_array_equal(fitted.scale, reference.scale)
    values = rng.normal(size=(rows, n))
    swapped = Standardize.fit(values.astype(">f8"))
    assert swapped.mean.dtype == np.float64 and swapped.mean.dtype.isnative
    np.testing.assert_array_equal(swapped.mean, Standardize.fit(values).mean)
    assert Standardize.fit(counts, dtype="float64").mean.dtype == np.float64


@pytest.mark.parametrize("kind", ["sequential", "custom"])
def test_a_list_batch_is_read_in_the_models_dtype_on_either_step(rng, kind):
    """A list has no dtype: make_step read one of floats as float64 and refused it on a
    float32 model (the graph path, which took it before, too), while model(list) reads
    it in the model's dtype."""
    n, seed = int(rng.integers(2, 5)), int(rng.integers(1 << 30))
    X, y = rng.normal(size=(6, n)).astype(np.float32), rng.normal(size=(6, 1)).astype(np.float32)
    losses = []
    for batch in (X, X.tolist()):
        model = Sequential(Dense(n, 1, seed=seed)) if kind == "sequential" else Doubled(n, seed)
        model.float()
        step = wxb.make_step(model, MSELoss(), SGD(model.parameters(), lr=0.1))
        losses.append([step(batch, y) for _ in range(2)])
    assert losses[0] == losses[1]


def test_fit_on_a_table_names_what_it_cannot_take(rng):
    """Through the table reader, a complex column raised pyarrow's own error, a value
    beyond float32 became inf without a word (then 'X has inf'), and a validation
    table's gap was blamed on 'table'."""
    rows = int(rng.integers(10, 20))
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    y = rng.normal(size=rows)
    model = Sequential(Dense(2, 1))
    with pytest.raises(wxb.DataError, match="X: a column cannot be read"):
        wxb.fit(model, frame.assign(b=frame.b + 1j), y, loss="mse", epochs=1, verbose=False)
    row = int(rng.integers(rows))
    huge = frame.copy()
    huge.loc[row, "b"] = 1e39
    with pytest.raises(wxb.DataError, match=rf"X, row {row}, column 'b': 1e\+39 is beyond"):
        wxb.fit(model, huge, y, loss="mse", epochs=1, verbose=False)
    gap = frame.copy()
    gap.loc[row, "a"] = np.inf
    with pytest.raises(wxb.DataError, match=rf"^validation X, row {row}, column 'a'"):
        wxb.fit(model, frame, y, validation_data=(gap, y), loss="mse", epochs=1, verbose=False)


def test_standardize_keeps_the_float64_of_a_table_or_a_torch_tensor(rng):
    """Standardize.fit found no numpy dtype on a DataFrame or a torch tensor and made
    float32 buffers from float64 data (values near 1e6 lost their last digits)."""
    values = rng.normal(size=(int(rng.integers(5, 20)), 3)) + 1e6
    reference = Standardize.fit(values)
    mixed = pd.DataFrame(values).assign(flag=rng.normal(size=len(values)) > 0)
    for X in (pd.DataFrame(values), torch.from_numpy(values)):
        fitted = Standardize.fit(X)
        assert fitted.mean.dtype == np.float64
        np.testing.assert_array_equal(fitted.mean, reference.mean)
        np.testing.assert_array_equal(fitted.scale, reference.scale)
    with_flag = Standardize.fit(mixed)  # floats beside bools: NumPy alone reads objects
    np.testing.assert_array_equal(with_flag.mean[:3], reference.mean)
