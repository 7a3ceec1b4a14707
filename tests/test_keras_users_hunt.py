"""A Keras user trying wxb: Keras's spellings that wxb either takes with Keras's meaning
or refuses in one line naming wxb's way, never with another meaning without a word.

The references: PyTorch's ``Linear(in, out, bias)`` for which bias flags mean a bias;
Keras's documented ``fit(batch_size=None)`` (its default, 32); and the arguments Keras's
``fit``, ``Dense`` and ``History`` have that wxb has not. Every run draws a fresh seed
(printed; ``WXB_TEST_SEED`` replays it)."""

import warnings

import numpy as np
import pytest

import wxb
from wxb.errors import ConfigError
from wxb.nn import Dense, ReLU, Sequential

torch = pytest.importorskip("torch")

ACTIVATIONS = ["relu", "sigmoid", "tanh", "softmax", "linear", "gelu", "elu"]


def _data(rng, n=None):
    n = int(rng.integers(40, 120)) if n is None else n
    d, c = int(rng.integers(2, 6)), int(rng.integers(2, 5))
    X = rng.normal(size=(n, d))
    y = rng.integers(0, c, n)
    return X, y, d, c


def test_an_activation_where_dense_takes_bias_is_refused_not_taken_for_true(seeded):
    """Dense(64, 10, "relu"), Keras's Dense(units, activation) habit in wxb's (in, out):
    "relu" was taken for bias=True, a plain linear layer without a word."""
    rng = seeded.rng
    d, h = int(rng.integers(1, 50)), int(rng.integers(1, 50))
    activation = str(rng.choice(ACTIVATIONS))
    with pytest.raises(ConfigError, match="activation is a layer of its own") as caught:
        Dense(d, h, activation)
    assert "bias" in str(caught.value), seeded.msg(str(caught.value))
    with pytest.raises(ConfigError, match="out_features"):  # Dense(units, activation)
        Dense(h, activation)


@pytest.mark.parametrize("flag", [True, False, None, 0, 1, np.bool_(True), np.bool_(False)])
def test_dense_bias_flags_mean_what_pytorchs_linear_makes_of_them(seeded, flag):
    rng = seeded.rng
    d, h = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    layer = Dense(d, h, flag)
    twin = torch.nn.Linear(d, h, bias=flag)
    assert (layer.bias is None) == (twin.bias is None), seeded.msg(repr(flag))
    assert (Dense(d, h, bias=flag).bias is None) == (twin.bias is None)


@pytest.mark.parametrize(
    ("keyword", "way"),
    [
        ("activation", "ReLU()"),
        ("use_bias", "bias=False"),
        ("kernel_initializer", "init="),
        ("bias_initializer", "constant_"),
        ("kernel_regularizer", "weight_decay"),
        ("input_dim", "in_features"),
        ("input_shape", "in_features"),
    ],
)
def test_kerass_dense_keywords_are_refused_naming_wxbs_way(seeded, keyword, way):
    rng = seeded.rng
    d, h = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    with pytest.raises(ConfigError, match=keyword) as caught:
        Dense(d, h, **{keyword: "relu"})
    assert way in str(caught.value), seeded.msg(str(caught.value))


def test_dense_of_units_alone_says_it_takes_its_inputs_too(seeded):
    units = int(seeded.rng.integers(1, 99))
    with pytest.raises(ConfigError, match=r"\(in_features, out_features\)") as caught:
        Dense(units)
    assert f"Dense(<features in>, {units})" in str(caught.value)
    with pytest.raises(TypeError, match="no_such_thing"):  # others: Python's own error
        Dense(units, units, no_such_thing=1)


KERAS_FIT = {
    "class_weight": ({0: 1.0, 1: 2.0}, "CrossEntropyLoss(weight="),
    "sample_weight": (None, "np.column_stack"),
    "initial_epoch": (3, "resume=True"),
    "steps_per_epoch": (5, "one pass over X"),
    "validation_steps": (2, "all the validation rows"),
    "validation_batch_size": (64, "do not depend on it"),
    "validation_freq": (2, "every epoch"),
    "callbacks": (["EarlyStopping(patience=3)"], "early_stopping=patience"),  # (a callback)
    "metrics": (["mae"], "wxb.metrics"),
    "patience": (3, "early_stopping=patience"),
    "monitor": ("val_accuracy", "val_loss"),
    "baseline": (0.5, "no baseline"),
    "start_from_epoch": (2, "first epoch"),
}


@pytest.mark.parametrize("keyword", sorted(KERAS_FIT))
def test_kerass_fit_arguments_are_refused_naming_wxbs_way_before_training(seeded, keyword):
    rng = seeded.rng
    X, y, d, c = _data(rng)
    value, way = KERAS_FIT[keyword]
    if keyword == "sample_weight":
        value = rng.random(len(X))
    model = Sequential(Dense(d, 8, seed=int(rng.integers(1 << 30))), ReLU(), Dense(8, c))
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(ConfigError, match=f"takes no {keyword}=") as caught:
        wxb.fit(model, X, y, epochs=1, verbose=0, **{keyword: value})
    assert way in str(caught.value), seeded.msg(str(caught.value))
    for p, q in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p.data, q, err_msg=seeded.msg("trained before refusing"))
    with pytest.raises(TypeError, match="no_such_option"):  # a typo: Python's own error
        wxb.fit(model, X, y, epochs=1, verbose=0, no_such_option=1)


def test_batch_size_none_is_kerass_default_of_32(seeded):
    """Keras's fit(batch_size=None) trains in batches of 32; evaluate's and predict's
    None is their default too (their figures do not depend on it)."""
    rng = seeded.rng
    X, y, d, c = _data(rng, int(rng.integers(33, 130)))  # more rows than one batch of 32
    init = int(rng.integers(1 << 30))
    seed = int(rng.integers(1 << 30))
    runs = []
    for batch_size in (None, 32):
        model = Sequential(Dense(d, 8, seed=init), ReLU(), Dense(8, c, seed=init + 1))
        history = wxb.fit(model, X, y, epochs=2, batch_size=batch_size, seed=seed, verbose=0)
        runs.append((history.history, [p.data.copy() for p in model.parameters()], model))
    assert runs[0][0] == runs[1][0], seeded.msg("History of batch_size=None vs 32")
    for p, q in zip(runs[0][1], runs[1][1], strict=True):
        np.testing.assert_array_equal(p, q, err_msg=seeded.msg("weights, None vs 32"))
    model = runs[0][2]
    assert wxb.evaluate(model, X, y, batch_size=None) == wxb.evaluate(model, X, y)
    np.testing.assert_array_equal(model.predict(X, batch_size=None), model.predict(X))


@pytest.mark.parametrize(
    ("name", "way"),
    [("epoch", "range(1, history.epochs + 1)"), ("params", "batch_size"), ("model", "in place")],
)
def test_kerass_history_attributes_name_wxbs_way(seeded, name, way):
    rng = seeded.rng
    X, y, d, c = _data(rng)
    history = wxb.fit(Sequential(Dense(d, c)), X, y, epochs=1, verbose=0)
    with pytest.raises(AttributeError, match=f"History has no {name}") as caught:
        getattr(history, name)
    assert way in str(caught.value)
    assert not hasattr(history, "no_such_attribute")


KERAS_ACTIVATION_LAYERS = {
    "relu": "ReLU",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "softmax": "Softmax",
    "elu": "ELU",
    "gelu": "GELU",
    "swish": "SiLU",
    "linear": "Identity",
}


def test_kerass_activation_layer_by_name_is_refused_naming_wxbs_layer(seeded):
    """wxb.nn.Activation("relu"), Keras's Activation layer, was built and crashed at the
    first forward: "'str' object has no attribute 'forward'"."""
    import wxb.nn as nn

    name = str(seeded.rng.choice(sorted(KERAS_ACTIVATION_LAYERS)))
    wanted = KERAS_ACTIVATION_LAYERS[name]
    assert hasattr(nn, wanted)
    with pytest.raises(ConfigError, match=rf"is {wanted}\(\) here"):
        nn.Activation(name)
    with pytest.raises(ConfigError, match=r"its activation layers: .*ReLU"):
        nn.Activation("exponential")


@pytest.mark.parametrize(
    ("layer", "keyword", "way"),
    [
        ("Dropout", "rate", "p="),
        ("Dropout", "noise_shape", "on its own"),
        ("LeakyReLU", "alpha", "negative_slope="),
        ("Softmax", "axis", "dim="),
        ("LogSoftmax", "axis", "dim="),
        ("LayerNorm", "epsilon", "eps="),
        ("BatchNorm1d", "epsilon", "eps="),
        ("BatchNorm1d", "center", "bias=False"),
        ("LayerNorm", "scale", "elementwise_affine=False"),
    ],
)
def test_kerass_layer_keywords_are_refused_naming_wxbs_way(seeded, layer, keyword, way):
    import wxb.nn as nn

    cls = getattr(nn, layer)
    args = (int(seeded.rng.integers(1, 9)),) if layer in ("LayerNorm", "BatchNorm1d") else ()
    with pytest.raises(ConfigError, match=f"{layer} takes no {keyword}=") as caught:
        cls(*args, **{keyword: 0.5})
    assert way in str(caught.value), seeded.msg(str(caught.value))
    with pytest.raises(TypeError, match="no_such_thing"):
        cls(*args, no_such_thing=1)


def test_kerass_validation_data_with_weights_says_wxb_has_no_third_element(seeded):
    rng = seeded.rng
    X, y, d, c = _data(rng)
    model = Sequential(Dense(d, c))
    k = len(X) // 2
    third = (X[k:], y[k:], rng.random(len(X) - k))
    with pytest.raises(ConfigError, match="third element") as caught:
        wxb.fit(model, X[:k], y[:k], epochs=1, verbose=0, validation_data=third)
    assert "extra columns" in str(caught.value), seeded.msg(str(caught.value))


KERAS_LOSSES = {
    "binary_crossentropy": "'bce_with_logits'",
    "categorical_crossentropy": "'cross_entropy'",
    "sparse_categorical_crossentropy": "'cross_entropy'",
    "mean_squared_error": "'mse'",
    "mae": "'l1'",
    "mean_absolute_error": "'l1'",
}


@pytest.mark.parametrize("name", sorted(KERAS_LOSSES))
def test_kerass_loss_names_are_refused_naming_wxbs(seeded, name):
    rng = seeded.rng
    X, y, d, c = _data(rng)
    model = Sequential(Dense(d, c))
    for call in (
        lambda: wxb.fit(model, X, y, loss=name, epochs=1, verbose=0),
        lambda: wxb.evaluate(model, X, y, loss=name),
    ):
        with pytest.raises(ConfigError, match="Keras's name") as caught:
            call()
        assert f"wxb's is {KERAS_LOSSES[name]}" in str(caught.value), seeded.msg(name)


def test_validation_split_without_shuffling_warns_its_rows_are_not_kerass_last(seeded):
    """Keras's validation_split holds out the last rows as given; wxb's draws them at
    random, as its docs say. A Keras user with rows in time order (shuffle=False) trained
    on the rows after the ones it validated on, without a word."""
    rng = seeded.rng
    X, y, d, c = _data(rng)
    fraction = float(rng.uniform(0.1, 0.4))
    seed = int(rng.integers(1 << 30))
    with pytest.warns(UserWarning, match="not the last rows as Keras's does") as caught:
        history = wxb.fit(Sequential(Dense(d, c)), X, y, epochs=1, verbose=0, shuffle=False,
                          validation_split=fraction, seed=seed)  # fmt: skip
    assert "validation_data=(X[k:], y[k:])" in str(caught[0].message), seeded.msg("advice")
    assert "val_loss" in history
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # shuffled rows: no word
        wxb.fit(Sequential(Dense(d, c)), X, y, epochs=1, verbose=0, validation_split=fraction)


def _kerass_stop(values, patience):
    """Keras 3's EarlyStopping.on_epoch_end on a loss (mode "min", min_delta 0): the
    0-based epoch it stops after, or None."""
    best, wait = np.inf, 0
    for epoch, current in enumerate(values):
        wait += 1
        if current < best:
            best, wait = current, 0
            continue
        if wait >= patience and epoch > 0:
            return epoch
    return None


def test_kerass_default_patience_0_is_refused_naming_early_stopping_1(seeded):
    """Keras's EarlyStopping(patience=0), its default, stops where patience=1 does (the
    reference rule above, on random figures); wxb refuses 0 and now says to give 1."""
    rng = seeded.rng
    for _ in range(50):
        values = rng.normal(size=int(rng.integers(1, 12))).tolist()
        assert _kerass_stop(values, 0) == _kerass_stop(values, 1), seeded.msg(str(values))
    X, y, d, c = _data(rng)
    with pytest.raises(ConfigError, match="as early_stopping=1 does here"):
        wxb.fit(Sequential(Dense(d, c)), X, y, epochs=2, verbose=0, early_stopping=0)


@pytest.mark.parametrize("verbose", [0, 1, 2, True, False, "auto"])
def test_kerass_verbose_on_predict_and_evaluate_is_taken(seeded, verbose, capsys):
    """model.predict(X, verbose=0), a Keras script's habit, met Python's "unexpected
    keyword argument"; the numbers are those without it, and nothing is shown."""
    rng = seeded.rng
    X, y, d, c = _data(rng)
    model = Sequential(Dense(d, 8), ReLU(), Dense(8, c))
    np.testing.assert_array_equal(model.predict(X, verbose=verbose), model.predict(X))
    assert wxb.evaluate(model, X, y, verbose=verbose) == wxb.evaluate(model, X, y)
    assert capsys.readouterr() == ("", "")
    with pytest.raises(ConfigError, match="verbose must be"):
        model.predict(X, verbose=3)
    with pytest.raises(ConfigError, match="verbose must be"):
        wxb.evaluate(model, X, y, verbose="loud")


def test_the_bars_loss_is_kerass_running_mean_of_the_batch_losses(seeded, monkeypatch):
    """Keras 3's progress bar shows, after k batches, the mean of the batch losses so far
    weighted by their rows (its loss tracker's Mean with sample_weight = the batch's rows);
    the reference: a hand-written PyTorch loop on the same weights and batches."""
    import io
    import re

    from wxb.metrics import figure_text

    rng = seeded.rng
    n, d, c = int(rng.integers(5, 40)), int(rng.integers(1, 5)), int(rng.integers(2, 4))
    batch = int(rng.integers(2, 9))
    X, y = rng.normal(size=(n, d)), rng.integers(0, c, n)
    init = int(rng.integers(1 << 30))
    model = Sequential(Dense(d, 6, seed=init, dtype="float64"), wxb.nn.Tanh(),
                       Dense(6, c, seed=init + 1, dtype="float64"))  # fmt: skip
    twin = torch.nn.Sequential(torch.nn.Linear(d, 6), torch.nn.Tanh(), torch.nn.Linear(6, c))
    twin = twin.double()
    with torch.no_grad():
        for p, q in zip(model.parameters(), twin.parameters(), strict=True):
            q.copy_(torch.from_numpy(p.data))
    opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    expected, total, seen = [], 0.0, 0
    for start in range(0, n, batch):
        xb, yb = (
            torch.from_numpy(X[start : start + batch]),
            torch.from_numpy(y[start : start + batch]),
        )
        opt.zero_grad()
        value = torch.nn.functional.cross_entropy(twin(xb), yb)
        value.backward()
        opt.step()
        total, seen = total + value.item() * len(yb), seen + len(yb)
        expected.append(figure_text(total / seen))

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    clock = iter(range(1, 10**6))  # every step past the bar's 0.1 s: each step draws
    monkeypatch.setattr(wxb.train.time, "monotonic", lambda: float(next(clock)))
    stream = Terminal()
    wxb.fit(model, X, y, loss="cross_entropy", optimizer="sgd", lr=0.1, epochs=1,
            batch_size=batch, shuffle=False, stream=stream, verbose=True)  # fmt: skip
    shown = re.findall(r"[█·] \d+/\d+  loss ([^\s\033]+)", stream.getvalue())  # the bar, by step
    assert shown == expected, seeded.msg(f"bar {shown} vs Keras's running mean {expected}")


KERAS_EVALUATE = {
    "sample_weight": "np.column_stack",
    "steps": "every row of X",
    "callbacks": "calls none",
}


@pytest.mark.parametrize("keyword", sorted(KERAS_EVALUATE))
def test_kerass_evaluate_arguments_are_refused_naming_wxbs_way(seeded, keyword):
    """evaluate(..., sample_weight=w), Keras's, was Python's bare TypeError, naming no way;
    the way named for sample_weight gives the weighted mean NumPy computes."""
    rng = seeded.rng
    X, y, d, c = _data(rng)
    model = Sequential(Dense(d, 8, seed=int(rng.integers(1 << 30))), ReLU(), Dense(8, c))
    w = rng.random(len(X))
    value = {"sample_weight": w, "steps": 2, "callbacks": [object()]}[keyword]
    with pytest.raises(ConfigError, match=f"wxb.evaluate takes no {keyword}=") as caught:
        wxb.evaluate(model, X, y, **{keyword: value})
    assert KERAS_EVALUATE[keyword] in str(caught.value), seeded.msg(str(caught.value))
    with pytest.raises(TypeError, match="no_such_option"):  # a typo: Python's own error
        wxb.evaluate(model, X, y, no_such_option=1)

    def weighted(out, yw):  # each row's cross-entropy times its column w
        yw = np.asarray(yw)
        rows = -wxb.log_softmax(out, dim=1)[np.arange(len(yw)), yw[:, 0].astype(np.int64)]
        return (rows * yw[:, 1]).mean()

    got = wxb.evaluate(model, X, np.column_stack([y, w]), loss=weighted)["loss"]
    z = model.predict(X).astype(np.float64)
    log_p = z - z.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    want = float((-log_p[np.arange(len(y)), y] * w).mean())
    # float32 forward and loss: a few ulps of values of order 1 to 10
    assert got == pytest.approx(want, rel=1e-5, abs=1e-6), seeded.msg(f"{got} vs {want}")
