"""fit: batches, validation, metrics, early stopping, determinism, divergence."""

import io
import warnings

import numpy as np
import pytest

import wxb
from wxb.nn import Dense, ReLU, Sequential, Tanh


def blobs(rng, n=300, features=5, classes=3):
    centres = 6 * np.eye(classes, features) + rng.normal(scale=0.5, size=(classes, features))
    y = rng.integers(0, classes, size=n)
    X = centres[y] + rng.normal(size=(n, features))
    return X, y


def exploding_sgd(model, after_step, snapshot=None):
    """SGD that makes every weight infinite after step ``after_step``; with
    ``snapshot=(k, dict)``, it first copies the weights after step k into the dict."""

    class Exploding(wxb.optim.SGD):
        def step(self):
            super().step()
            if snapshot is not None and self.steps == snapshot[0]:
                snapshot[1].update(model.state_dict())
            if self.steps == after_step:
                for p in self.params:
                    p.data *= np.inf

    return Exploding(model.parameters(), lr=0.01)


def mlp(features, hidden, outputs, seed, dtype="float32"):
    return Sequential(
        Dense(features, hidden, seed=seed, dtype=dtype),
        ReLU(),
        Dense(hidden, outputs, seed=seed + 1, dtype=dtype),
    )


def test_fit_learns_separable_classes_and_records_history(rng):
    X, y = blobs(rng)
    model = mlp(5, 16, 3, seed=int(rng.integers(1000)))
    history = wxb.fit(
        model, X, y, epochs=30, batch_size=16, lr=0.01, validation_split=0.2, seed=0, verbose=False
    )
    assert history.epochs == 30
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.9
    predicted = model.predict(X).argmax(axis=1)
    assert (predicted == y).mean() > 0.9


def test_same_seed_gives_the_same_run_bit_for_bit(rng):
    X, y = blobs(rng)
    runs = []
    for _ in range(2):
        model = mlp(5, 8, 3, seed=7)
        history = wxb.fit(
            model, X, y, epochs=4, batch_size=10, validation_split=0.25, seed=3, verbose=False
        )
        runs.append((history.history, [p.data.copy() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        assert np.array_equal(a, b)
    other = mlp(5, 8, 3, seed=7)
    different = wxb.fit(
        other, X, y, epochs=4, batch_size=10, validation_split=0.25, seed=4, verbose=False
    )
    assert different.history != runs[0][0]


def test_manual_seed_drives_initialisation():
    wxb.manual_seed(11)
    first = Dense(4, 3).weight.data.copy()
    wxb.manual_seed(11)
    assert np.array_equal(Dense(4, 3).weight.data, first)


def test_early_stopping_restores_the_best_weights(rng):
    X, y = blobs(rng, n=120)
    X_val, y_val = blobs(rng, n=60)
    y_val = rng.permutation(y_val)  # labels unrelated to X: validation loss soon rises
    model = mlp(5, 32, 3, seed=1)
    history = wxb.fit(
        model,
        X,
        y,
        epochs=200,
        batch_size=8,
        lr=0.05,
        validation_data=(X_val, y_val),
        early_stopping=3,
        seed=0,
        verbose=False,
    )
    assert history.stopped_early
    best = history.best_epoch
    assert history["val_loss"][best - 1] == min(history["val_loss"])
    assert history.epochs == best + 3
    restored = wxb.evaluate(model, X_val.astype(np.float32), y_val, wxb.nn.CrossEntropyLoss())
    assert restored["loss"] == pytest.approx(history["val_loss"][best - 1], rel=1e-5)


def test_divergence_stops_with_epoch_and_step_and_keeps_last_good_weights(rng):
    X, y = blobs(rng, n=64)
    model = mlp(5, 8, 3, seed=2, dtype="float64")
    initial = model.state_dict()
    opt = exploding_sgd(model, after_step=3)  # the loss of step 4 is NaN
    with pytest.raises(wxb.TrainingError, match=r"epoch 1, step 4.*their initial values"):
        wxb.fit(model, X, y, epochs=3, batch_size=8, optimizer=opt, seed=0, verbose=False)
    for name, array in model.state_dict().items():
        assert np.array_equal(array, initial[name]), name


def test_divergence_after_first_epoch_restores_the_previous_epoch(rng):
    X, y = blobs(rng, n=64)
    model = mlp(5, 8, 3, seed=2, dtype="float64")
    after_epoch_1 = {}
    # 8 steps per epoch: keep the weights after step 8, explode after step 9 (epoch 2)
    opt = exploding_sgd(model, after_step=9, snapshot=(8, after_epoch_1))
    with pytest.raises(wxb.TrainingError, match=r"epoch 2, step 2.*end of epoch 1"):
        wxb.fit(model, X, y, epochs=3, batch_size=8, optimizer=opt, seed=0, verbose=False)
    for name, array in model.state_dict().items():
        assert np.array_equal(array, after_epoch_1[name]), name


def test_progress_bar_draws_on_a_terminal_and_stays_quiet_otherwise(rng):
    X, y = blobs(rng, n=40)

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    quiet, loud = io.StringIO(), Terminal()
    wxb.fit(mlp(5, 4, 3, 0), X, y, epochs=2, batch_size=8, stream=quiet, verbose="auto")
    wxb.fit(mlp(5, 4, 3, 0), X, y, epochs=2, batch_size=8, stream=loud, verbose="auto")
    assert quiet.getvalue() == ""
    assert "epoch 2/2" in loud.getvalue() and "loss" in loud.getvalue()


def test_regression_with_mse_and_bce_with_logits(rng):
    X = rng.normal(size=(200, 3))
    w = rng.normal(size=(3, 2))
    y = np.tanh(X @ w)
    model = Sequential(Dense(3, 16, seed=0), Tanh(), Dense(16, 2, seed=1))
    history = wxb.fit(model, X, y, loss="mse", epochs=40, batch_size=20, lr=0.01, verbose=False)
    assert "accuracy" not in history.history
    assert history["loss"][-1] < 0.2 * history["loss"][0]

    labels = (X @ w[:, :1] > 0).astype(float)
    binary = Sequential(Dense(3, 8, seed=0), Tanh(), Dense(8, 1, seed=1))
    history = wxb.fit(binary, X, labels, loss="bce_with_logits", epochs=30, lr=0.02, verbose=False)
    assert history["accuracy"][-1] > 0.9


def test_schedules_and_clipping_run_through_fit(rng):
    X, y = blobs(rng, n=50)
    for schedule in ("step", "cosine", "invscaling"):
        history = wxb.fit(
            mlp(5, 4, 3, 0),
            X,
            y,
            epochs=6,
            lr=0.1,
            optimizer="sgd",
            lr_schedule=schedule,
            clip_grad_norm=1.0,
            verbose=False,
        )
        assert history["lr"][0] == 0.1 and history["lr"][-1] < 0.1


@pytest.mark.parametrize(
    "X,y,message",
    [
        ([[1.0, np.nan]], [0], r"X has nan at row 0, column 1"),
        ([[1.0, np.inf], [1.0, 2.0]], [0, 1], r"X has inf at row 0, column 1"),
        ([["a", "b"]], [0], r"X must hold numbers"),
        (np.empty((0, 2)), [], r"X is empty"),
        ([[1.0, 2.0], [3.0, 4.0]], [0], r"X has 2 samples but y has 1"),
        ([[1.0, 2.0]], [5], r"y holds class 5 but the model has 3 outputs"),
        ([[1.0, 2.0]], [-1], r"negative label"),
        ([[1.0, 2.0]], ["cat"], r"y must hold integer class labels"),
        ([[1.0, 2.0]], [0.5], r"non-integer class labels"),
        ([1.0, 2.0], [0], r"X must be 2-D"),
    ],
)
def test_bad_data_is_refused_before_any_work(X, y, message):
    model = mlp(2, 4, 3, seed=0)
    before = model.state_dict()
    with pytest.raises(wxb.DataError, match=message):
        wxb.fit(model, X, y, epochs=1, verbose=False)
    for name, array in model.state_dict().items():
        assert np.array_equal(array, before[name])


def test_bad_options_are_config_errors():
    model = mlp(2, 4, 3, seed=0)
    X, y = np.zeros((4, 2)), np.zeros(4, dtype=int)
    for options, message in (
        ({"epochs": -1}, "epochs"),  # (0 trains none, as Keras's: an empty History)
        ({"batch_size": -1}, "batch_size"),
        ({"loss": "hinge"}, "loss must be one of"),
        ({"optimizer": "lbfgs"}, "optimizer must be one of"),
        ({"lr_schedule": "linear"}, "lr_schedule"),
    ):
        with pytest.raises(wxb.ConfigError, match=message):
            wxb.fit(model, X, y, verbose=False, **options)


def test_history_reads_like_a_dict(rng):
    X, y = rng.normal(size=(40, 3)).astype(np.float32), rng.integers(0, 2, size=40)
    model = Sequential(Dense(3, 2))
    history = wxb.fit(model, X, y, epochs=2, validation_split=0.25, verbose=False)
    assert "val_accuracy" in history and "nonsense" not in history
    assert list(history) == list(history.keys()) == list(history.history)
    assert len(history["loss"]) == 2


def test_validation_split_of_a_regression_with_1d_targets_holds_out_the_fraction(rng, monkeypatch):
    """A model whose output is (B,) with MSE: its float targets are not classes to
    stratify by (unique floats were refused as too few; rounded ones held out too few)."""
    from wxb import data as wdata

    held_out, split = [], wdata.split_indices

    def recording(*args, **kwargs):
        kept, held = split(*args, **kwargs)
        held_out.append(len(held))
        return kept, held

    monkeypatch.setattr(wdata, "split_indices", recording)

    class Flat(wxb.nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = wxb.nn.Dense(3, 1, seed=1, dtype="float64")

        def forward(self, x):
            return self.dense(x).reshape(-1)

    n, fraction = 50, 0.2
    X = rng.normal(size=(n, 3))
    for y in (rng.normal(size=n), np.round(rng.normal(size=n), 1)):
        wxb.fit(Flat(), X, y, loss="mse", epochs=1, batch_size=8, validation_split=fraction,
                verbose=False)  # fmt: skip
    assert held_out == [round(n * fraction)] * 2


def test_validation_split_stratifies_by_class_only(rng, monkeypatch):
    """Class indices and 0/1 labels are classes; soft BCE targets are not."""
    from wxb import data as wdata

    seen, split = [], wdata.split_indices

    def recording(n, fraction, generator, labels=None, **kwargs):
        seen.append(labels is not None)
        return split(n, fraction, generator, labels, **kwargs)

    monkeypatch.setattr(wdata, "split_indices", recording)

    class Flat(wxb.nn.Module):
        def __init__(self, outputs):
            super().__init__()
            self.dense = wxb.nn.Dense(3, outputs, seed=1, dtype="float64")
            self.flat = outputs == 1

        def forward(self, x):
            out = self.dense(x)
            return out.reshape(-1) if self.flat else out

    X = rng.normal(size=(40, 3))
    fit = dict(epochs=1, batch_size=8, validation_split=0.25, verbose=False)
    wxb.fit(Flat(3), X, rng.integers(0, 3, 40), loss="cross_entropy", **fit)
    wxb.fit(Flat(1), X, rng.integers(0, 2, 40).astype(float), loss="bce_with_logits", **fit)
    wxb.fit(Flat(1), X, rng.uniform(0.1, 0.9, 40), loss="bce_with_logits", **fit)
    assert seen == [True, True, False]


class Doubled(wxb.nn.MSELoss):
    """A loss subclass with its own __call__: twice the MSE."""

    def __call__(self, output, target):
        return super().__call__(output, target) * 2.0


def test_a_loss_subclass_with_its_own_call_is_what_fit_trains(rng):
    """fit trains the loss's own __call__ (the planned step called the base kernel and
    trained plain MSE, while val_loss used the override). With SGD, twice the loss at
    lr is the plain loss at 2·lr."""
    n, h = int(rng.integers(2, 6)), int(rng.integers(3, 8))
    X, y = rng.normal(size=(48, n)), rng.normal(size=(48, 2))
    lr, kw = float(rng.uniform(0.01, 0.05)), {"epochs": 3, "batch_size": 16, "seed": 1}

    def network():
        return Sequential(Dense(n, h, seed=3), Tanh(), Dense(h, 2, seed=4)).to("float64")

    doubled, plain = network(), network()
    history = wxb.fit(doubled, X, y, loss=Doubled(), optimizer="sgd", lr=lr, verbose=False,
                      validation_split=0.25, **kw)  # fmt: skip
    reference = wxb.fit(plain, X, y, loss="mse", optimizer="sgd", lr=2 * lr, verbose=False,
                        validation_split=0.25, **kw)  # fmt: skip
    assert history.engine == "graph" and "__call__" in history.engine_reason
    np.testing.assert_allclose(history.history["loss"], 2 * np.array(reference.history["loss"]))
    np.testing.assert_allclose(
        history.history["val_loss"], 2 * np.array(reference.history["val_loss"])
    )
    np.testing.assert_allclose(doubled.predict(X), plain.predict(X), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["mse", "cross_entropy", "bce_with_logits"])
def test_reduction_set_after_building_the_loss_is_the_one_computed(rng, kind):
    """loss.reduction = "sum" after construction (as PyTorch allows): the loss, its
    gradient and fit's figures are the sum's (the kernel kept the mean)."""
    out = rng.normal(size=(6, 3))
    target = {
        "mse": rng.normal(size=(6, 3)),
        "cross_entropy": rng.integers(0, 3, 6),
        "bce_with_logits": rng.integers(0, 2, (6, 3)).astype(float),
    }[kind]
    changed = type(wxb.nn.get_loss(kind))()
    changed.reduction = "sum"
    built = type(changed)(reduction="sum")
    values = []
    for loss in (changed, built):
        z = wxb.Tensor(out, requires_grad=True)
        value = loss(z, target)
        value.backward()
        values.append((float(value.data), z.grad))
    assert values[0][0] == values[1][0]
    np.testing.assert_array_equal(values[0][1], values[1][1])
    changed.reduction = "none"  # per sample now, as one built so
    np.testing.assert_array_equal(
        changed(wxb.Tensor(out), target).data, type(changed)("none")(wxb.Tensor(out), target).data
    )
    with pytest.raises(wxb.ConfigError, match="'mean', 'sum' or 'none'; got 'avg'"):
        changed.reduction = "avg"
    assert changed.reduction == "none"


def test_a_schedule_built_on_another_optimiser_is_refused(rng):
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 2, 20)
    model = Sequential(Dense(3, 2))
    other = wxb.optim.SGD(Sequential(Dense(3, 2)).parameters(), lr=0.1)
    schedule = wxb.optim.StepLR(other, step_size=1, gamma=0.5)
    with pytest.raises(wxb.ConfigError, match="another optimiser"):
        wxb.fit(model, X, y, optimizer="sgd", lr_schedule=schedule, epochs=2, verbose=False)


def test_fit_on_a_dataframe_records_its_columns_and_predict_takes_them_by_name(rng):
    """As scikit-learn's feature_names_in_: a model fitted on a DataFrame predicts a
    DataFrame by column name (the columns were taken in whatever order they came:
    accuracy 0.5 for 1.0), and a second fit or validation data in another order is
    refused by name."""
    pd = pytest.importorskip("pandas")
    n = int(rng.integers(60, 120))
    names = ["age", "income", "height"]
    X = pd.DataFrame(rng.normal(size=(n, 3)) * [1, 10, 100], columns=names)
    y = (X["income"] > 0).astype(int).to_numpy()
    model = Sequential(Dense(3, 8), Tanh(), Dense(8, 2))
    wxb.fit(model, X, y, epochs=2, seed=0, verbose=False)
    assert model.info["feature_names"] == names
    order = names[1:] + names[:1]
    np.testing.assert_array_equal(model.predict(X[order]), model.predict(X))
    np.testing.assert_array_equal(model.predict(X), model.predict(X.to_numpy()))
    with pytest.raises(wxb.DataError, match="not those the model was trained on"):
        wxb.fit(model, X[names[::-1]], y, epochs=1, verbose=False)
    with pytest.raises(wxb.DataError, match="validation X"):
        wxb.fit(model, X, y, epochs=1, verbose=False, validation_data=(X[names[::-1]], y))
    plain = Sequential(Dense(3, 2))
    wxb.fit(plain, X.to_numpy(), y, epochs=1, verbose=False)
    assert "feature_names" not in plain.info


def test_a_refused_fit_records_no_column_names(rng):
    """The names go into model.info once the data is accepted: a fit refused for a
    wrong column (the target left in) must not make the right columns refused next."""
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(rng.normal(size=(20, 4)), columns=["a", "b", "c", "price"])
    y = rng.normal(size=20)
    model = Sequential(Dense(3, 1))
    with pytest.raises(wxb.ShapeError):
        wxb.fit(model, X, y, loss="mse", epochs=1, verbose=False)
    assert "feature_names" not in model.info
    wxb.fit(model, X[["a", "b", "c"]], y, loss="mse", epochs=1, verbose=False)
    assert model.info["feature_names"] == ["a", "b", "c"]


def test_a_loss_pickles_with_its_reduction(rng):
    import pickle

    loss = wxb.nn.CrossEntropyLoss()
    loss.reduction = "sum"
    copy = pickle.loads(pickle.dumps(loss))
    assert copy.reduction == "sum" and copy.kernel.reduction == "sum"
    assert vars(copy)["reduction"] == "sum"  # what a checkpoint's loss settings read
    # as a wxb before `reduction` became a property pickled it: unpickling fills __dict__
    old = wxb.nn.MSELoss.__new__(wxb.nn.MSELoss)
    old.__dict__.update({"reduction": "sum", "kernel": wxb.nn.MSELoss("sum").kernel})
    z, t = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    assert old.reduction == "sum"
    assert float(old(wxb.Tensor(z), t).data) == float(wxb.nn.MSELoss("sum")(wxb.Tensor(z), t).data)


def test_fit_takes_a_dataframe_of_nullable_numbers(rng):
    """pandas' nullable Float64/Int64 columns are numbers to fit, as to predict (fit said
    they held object values); a pd.NA is a gap, refused by its row and column."""
    pd = pytest.importorskip("pandas")
    values = rng.normal(size=(30, 2))
    df = pd.DataFrame(
        {
            "a": pd.array(values[:, 0], dtype="Float64"),
            "b": pd.array(rng.integers(0, 5, 30), dtype="Int64"),
        }
    )
    y = rng.integers(0, 2, 30)
    models = [Sequential(Dense(2, 2, seed=1)) for _ in range(2)]
    wxb.fit(models[0], df, y, epochs=2, seed=0, verbose=False)
    plain = df.astype({"a": "float64", "b": "int64"})
    wxb.fit(models[1], plain, y, epochs=2, seed=0, verbose=False)
    np.testing.assert_array_equal(models[0].predict(df), models[1].predict(plain))
    df.loc[3, "b"] = pd.NA
    with pytest.raises(wxb.DataError, match="row 3, column 1"):
        wxb.fit(Sequential(Dense(2, 2)), df, y, epochs=1, verbose=False)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy", "bce_with_logits"])
def test_fit_takes_targets_of_nullable_numbers(rng, loss):
    """y as pandas nullable columns (what convert_dtypes gives): several Float64 columns
    were refused as "object values", and a pd.NA in one was not named as a gap."""
    pd = pytest.importorskip("pandas")
    n, outputs = 30, int(rng.integers(1, 4))
    X = rng.normal(size=(n, 3))
    if loss == "cross_entropy":
        y = rng.integers(0, 3, n)
        outputs = 3
    elif loss == "bce_with_logits":
        y = rng.integers(0, 2, (n, outputs))
    else:
        y = rng.normal(size=(n, outputs))
    kind = "Float64" if loss == "mse" else "Int64"
    frame = pd.DataFrame(y.reshape(n, -1)).astype(kind)
    given = frame[0] if loss == "cross_entropy" else frame
    models = [Sequential(Dense(3, outputs, seed=1, dtype="float64")) for _ in range(2)]
    first = wxb.fit(models[0], X, given, loss=loss, epochs=2, seed=0, verbose=False)
    second = wxb.fit(models[1], X, y, loss=loss, epochs=2, seed=0, verbose=False)
    assert first["loss"] == second["loss"]
    np.testing.assert_array_equal(models[0].predict(X), models[1].predict(X))
    row = int(rng.integers(0, n))
    frame.iloc[row, 0] = pd.NA
    given = frame[0] if loss == "cross_entropy" else frame
    with pytest.raises(wxb.DataError, match=rf"y has nan at (row {row}|index \({row},\))"):
        wxb.fit(models[0], X, given, loss=loss, epochs=1, verbose=False)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("shuffle", "no"),
        ("restore_best_weights", "no"),
        ("diagnose", "no"),
        ("resume", 0.5),
        ("verbose", 3),  # (2 is Keras's one line per epoch)
        ("verbose", "yes"),
    ],
)
def test_a_switch_given_something_other_than_true_or_false_is_refused(rng, option, value):
    # shuffle="no" shuffled and restore_best_weights="no" restored: any truthy value read as True
    model = Sequential(Dense(3, 2))
    before = [p.data.copy() for p in model.parameters()]
    X, y = rng.normal(size=(12, 3)), rng.integers(0, 2, 12)
    with pytest.raises(wxb.ConfigError, match=rf"{option}.* must be True or False; got"):
        wxb.fit(model, X, y, epochs=1, **{option: value})
    for p, b in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p.data, b)
    wxb.fit(model, X, y, epochs=1, shuffle=np.bool_(False), verbose=0)  # NumPy's and Keras's


def test_fit_warns_of_feature_columns_the_model_dtype_rounds_coarsely(rng):
    """A timestamp near 1.7e9 readings seconds apart, fitted from a float64 array or a
    DataFrame on a float32 model: float32 holds it to a step of 128, two or three values
    the network cannot tell apart. fit cast it without a word; it now says so, as wxb
    train does, and names the column; nothing is said where nothing is rounded."""
    import pandas as pd

    n = int(rng.integers(200, 400))
    stamps = float(rng.uniform(1e9, 2e9)) + rng.uniform(-30, 30, n)
    small = rng.standard_normal(n)
    X = np.c_[small, stamps]
    y = (stamps - stamps.mean()) / 10 + small

    def warned(model, X):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            wxb.fit(model, X, y, loss="mse", epochs=1, verbose=False)
        return [str(w.message) for w in caught if "rounded to a step" in str(w.message)]

    def net(dtype="float32"):
        return Sequential(Dense(2, 4, dtype=dtype), ReLU(), Dense(4, 1, dtype=dtype))

    step = float(np.spacing(np.float32(np.median(stamps))))
    for given, name in ((X, "X[:, 1]"), (pd.DataFrame({"small": small, "stamp": stamps}), "stamp")):
        messages = warned(net(), given)
        assert len(messages) == 1 and f"feature {name!r}" in messages[0], messages
        assert f"a step of {step:.3g}" in messages[0] and "float64" in messages[0]
    assert warned(net("float64"), X) == []  # held exactly
    assert warned(net(), X.astype(np.float32)) == []  # rounded already, by the caller
    assert warned(net(), np.c_[small, rng.integers(0, 256, n)]) == []  # pixels: exact


@pytest.mark.parametrize("head", ["softmax", "sigmoid"])
def test_fit_warns_when_the_loss_applies_the_models_last_layer_again(rng, head):
    """A Keras habit: a classifier ending in Softmax (or Sigmoid, one output) trained
    with cross_entropy (bce_with_logits), which applies it again: fit trained through
    it twice without a word (PyTorch too). It now says so; a Sigmoid output trained as a
    regression (mse), and a model ending in its logits, are said nothing of."""
    from wxb.nn import Dropout, Identity, Sigmoid, Softmax

    n, features = int(rng.integers(40, 80)), int(rng.integers(2, 5))
    X = rng.standard_normal((n, features))
    k = int(rng.integers(3, 6)) if head == "softmax" else 1
    y = rng.integers(0, k if k > 1 else 2, n)
    loss = "cross_entropy" if head == "softmax" else "bce_with_logits"
    last = Softmax() if head == "softmax" else Sigmoid()
    tail = [[], [Identity()], [Dropout(0.2)]][int(rng.integers(0, 3))]

    def warned(layers, loss, targets=y):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            wxb.fit(Sequential(*layers), X, targets, loss=loss, epochs=1, verbose=False)
        return [str(w.message) for w in caught if "twice" in str(w.message)]

    body = [Dense(features, 6), Tanh(), Dense(6, k)]
    messages = warned([*body, last, *tail], loss)
    assert len(messages) == 1, (tail, messages)
    assert f"trains through {head} twice" in messages[0] and type(last).__name__ in messages[0]
    assert warned(body, loss) == []
    if head == "sigmoid":  # a probability fitted as a number: nothing applies it again
        assert warned([*body, last], "mse", y.astype(float)) == []
