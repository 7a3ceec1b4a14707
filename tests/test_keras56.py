"""A Keras user's first hour: the lines a Keras script writes, each given Keras's result
or refused in one line naming wxb's way that gives it. The references: Keras 3's
initializers (GlorotUniform U(±√(6/(fan_in + fan_out))), HeUniform U(±√(6/fan_in)),
HeNormal a normal truncated at ±2σ of variance 2/fan_in), its evaluate (a list
[loss, accuracy] where metrics are given), and PyTorch's cross_entropy. Every run draws a
fresh seed (printed; ``WXB_TEST_SEED`` replays it)."""

import math

import numpy as np
import pytest
import torch
from test_keras54 import _problem

import wxb
from wxb.errors import ConfigError
from wxb.nn import Dense, Module, ReLU, Sequential

KERAS_MODEL_METHODS = ["compile", "fit", "evaluate", "save", "save_weights", "load_weights",
                       "get_weights", "set_weights", "count_params", "predict_classes"]  # fmt: skip


class _Own(Module):
    def __init__(self, d, h, c):
        super().__init__()
        self.hidden, self.out = Dense(d, h), Dense(h, c)

    def forward(self, x):
        return self.out(self.hidden(x).relu())


def test_kerass_model_methods_on_a_model_of_ones_own_name_wxbs_way(seeded, tmp_path):
    """model.compile / fit / save / get_weights on a Module subclass met Python's bare
    AttributeError: the ways were on Sequential alone. Now any model names them (still an
    AttributeError: hasattr is False), and the save way for a model of one's own runs and
    gives back the same model."""
    rng = seeded.rng
    d, h, c = (int(v) for v in rng.integers(1, 7, 3))
    model = _Own(d, h, c)
    for name in KERAS_MODEL_METHODS:
        assert not hasattr(model, name), name
        with pytest.raises(AttributeError, match=rf"^'_Own' object has no attribute '{name}'; "):
            getattr(model, name)
    with pytest.raises(AttributeError, match="return_dict=False"):
        model.evaluate  # noqa: B018
    with pytest.raises(AttributeError) as caught:
        model.save  # noqa: B018
    way = str(caught.value).split("a model of one's own saves its weights, ")[1]
    save, load = way.split(", and ")[0], way.split(", and ")[1].split(" takes them back")[0]
    path = str(tmp_path / "w.safetensors")
    scope = {"wxb": wxb, "model": model, "path": path}
    exec(save, scope)
    twin = _Own(d, h, c)
    exec(load, {**scope, "model": twin})
    X = rng.normal(size=(int(rng.integers(1, 9)), d))
    assert np.array_equal(twin.predict(X), model.predict(X)), seeded.msg("save way")
    with pytest.raises(AttributeError, match=r"model\.append"):  # Sequential's own kept
        Sequential(Dense(d, c)).add  # noqa: B018
    with pytest.raises(AttributeError, match="normalises several dims"):  # a property's own
        wxb.nn.LayerNorm((d, c)).in_features  # noqa: B018


def test_kerass_uniform_and_zeros_initializers_are_taken_its_normal_ones_name_the_draw(seeded):
    """Dense(in, out, kernel_initializer="he_uniform", bias_initializer="zeros") was
    refused though wxb draws the same: now taken (W within Keras's limit, filling it, b
    zero). Keras's he_normal and glorot_normal are truncated normals, not wxb's (torch's)
    untruncated ones of the same variance: refused naming both, and the trunc_normal_
    way given draws Keras's: |w| ≤ 2σ and variance 2/fan_in."""
    rng = seeded.rng
    fan_in, fan_out = int(rng.integers(100, 200)), int(rng.integers(100, 200))
    limits = {
        "he_uniform": math.sqrt(6 / fan_in),
        "glorot_uniform": math.sqrt(6 / (fan_in + fan_out)),
    }
    for keras_name, limit in limits.items():
        seed = int(rng.integers(1 << 30))
        layer = Dense(
            fan_in, fan_out, kernel_initializer=keras_name, bias_initializer="zeros", seed=seed
        )
        assert layer.init == keras_name and not layer.bias.data.any()
        largest = np.abs(layer.weight.data).max()
        assert 0.99 * limit < largest <= limit, seeded.msg(f"{keras_name}: {largest} vs {limit}")
        same = Dense(fan_in, fan_out, init=keras_name, seed=seed)
        assert np.array_equal(layer.weight.data, same.weight.data), seeded.msg(keras_name)
    with pytest.raises(ConfigError, match="both given"):
        Dense(fan_in, fan_out, init="he_normal", kernel_initializer="glorot_uniform")
    with pytest.raises(ConfigError, match="truncated at ±2σ") as caught:
        Dense(fan_in, fan_out, kernel_initializer="he_normal")
    assert "init='he_normal'" in str(caught.value) and "\n" not in str(caught.value)
    way = str(caught.value).split("Keras's draw is ")[1]
    layer = Dense(fan_in, fan_out, dtype="float64")
    sigma = math.sqrt(2 / fan_in) / 0.87962566103423978
    exec(way, {"wxb": wxb, "layer": layer, "σ": sigma})
    w = layer.weight.data
    assert np.abs(w).max() <= 2 * sigma, seeded.msg("truncated")
    assert abs(w.var() / (2 / fan_in) - 1) < 0.05, seeded.msg(f"variance {w.var()} vs {2 / fan_in}")
    with pytest.raises(ConfigError, match="bias_initializer"):
        Dense(fan_in, fan_out, bias_initializer="ones")


def test_kerass_unpacking_of_evaluate_is_refused_naming_return_dict_false(seeded):
    """loss, acc = wxb.evaluate(model, X, y), Keras's line, gave loss = "loss" and
    acc = "accuracy" (a dict's keys) without a word. Now the unpacking is refused naming
    return_dict=False, whose list holds the figures: the loss is torch's cross_entropy of
    the logits, the accuracy their argmax's share. The dict is read as one otherwise:
    loops, set() and pytest.approx iterate its keys."""
    rng = seeded.rng
    n, d, c = int(rng.integers(5, 40)), int(rng.integers(1, 6)), int(rng.integers(2, 5))
    X, y = rng.normal(size=(n, d)), rng.integers(0, c, n)
    model = Sequential(Dense(d, 8), ReLU(), Dense(8, c))
    scores = wxb.evaluate(model, X, y)
    with pytest.raises(TypeError, match=r"return_dict=False\)") as caught:
        loss, acc = scores
    assert "\n" not in str(caught.value)
    loss, acc = wxb.evaluate(model, X, y, return_dict=False)
    logits = torch.from_numpy(model.predict(X).astype(np.float64))
    want = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y)).item()
    assert loss == pytest.approx(want, rel=1e-5), seeded.msg("loss")
    assert acc == (logits.argmax(1).numpy() == y).mean(), seeded.msg("accuracy")
    assert dict(scores) == {"loss": loss, "accuracy": acc} == {**scores} == scores
    assert list(scores.keys()) == ["loss", "accuracy"] == [name for name in scores]
    assert set(scores) == {"loss", "accuracy"} and {"loss": loss, "accuracy": acc} == pytest.approx(
        scores
    )


def test_kerass_accuracy_metric_and_early_stoppings_monitor_are_taken_where_wxbs(seeded):
    """metrics=["accuracy"], Keras's most common line, and EarlyStopping's
    monitor="val_loss", mode="min", baseline=None, start_from_epoch=0 were refused,
    though each asks for what fit does (it records the accuracy of a classifier's loss;
    its early stopping watches val_loss, lower better, from the first epoch): now taken,
    the run the same as without them, bit for bit. Where they are not wxb's (accuracy of
    a regression, val_loss without validation rows) they are refused naming why."""
    rng = seeded.rng
    X, y, model = _problem(rng)
    k = len(X) // 4
    settings = dict(epochs=int(rng.integers(2, 5)), early_stopping=1, seed=int(rng.integers(99)),
                    verbose=0, validation_data=(X[:k], y[:k]))  # fmt: skip
    plain, keras = model(), model()
    want = wxb.fit(plain, X[k:], y[k:], **settings)
    got = wxb.fit(keras, X[k:], y[k:], metrics=["accuracy"], monitor="val_loss", mode="min",
                  baseline=None, start_from_epoch=0, **settings)  # fmt: skip
    assert got.history == want.history and "val_accuracy" in got, seeded.msg(str(got.history))
    for p, q in zip(keras.parameters(), plain.parameters(), strict=True):
        assert np.array_equal(p.data, q.data), seeded.msg("weights")
    with pytest.raises(ConfigError, match="here loss"):  # no validation rows: loss watched
        wxb.fit(model(), X, y, epochs=1, verbose=0, monitor="val_loss", early_stopping=2)
    regression = Sequential(Dense(X.shape[1], 1))
    with pytest.raises(ConfigError, match="MSELoss has none"):
        wxb.fit(regression, X, rng.normal(size=len(X)), loss="mse", metrics=["accuracy"])


def test_fit_of_zero_epochs_checks_its_inputs_and_returns_an_empty_history(seeded):
    """fit(epochs=0) was refused ("epochs must be ≥ 1"); Keras's fit loops over
    range(0) and returns a History of no epochs. Now so: the weights untouched bit for
    bit, History's figures empty; its inputs are still checked (a label past the
    outputs refused), and a schedule spanning the epochs is refused naming why."""
    rng = seeded.rng
    X, y, model = _problem(rng)
    net, twin = model(), model()
    history = wxb.fit(net, X, y, epochs=0, validation_split=0.25, early_stopping=2, verbose=0)
    assert history.history == {} and history.epochs == 0 and history.best_epoch is None
    for p, q in zip(net.parameters(), twin.parameters(), strict=True):
        assert np.array_equal(p.data, q.data), seeded.msg("weights")
    with pytest.raises(wxb.DataError, match="class"):
        wxb.fit(net, X, y + 10, epochs=0, verbose=0)
    with pytest.raises(ConfigError, match="epochs=0 trains none"):
        wxb.fit(net, X, y, epochs=0, lr_schedule="cosine", verbose=0)
    with pytest.raises(ConfigError, match="≥ 0"):
        wxb.fit(net, X, y, epochs=-1, verbose=0)


def test_kerass_learning_rate_on_fit_names_lr_which_trains_at_that_rate(seeded):
    """fit(..., optimizer="adam", learning_rate=r), Keras's optimiser keyword, met
    Python's bare "unexpected keyword argument": now refused naming lr=, and the way
    given trains at r (History's lr, and the weights' moves in one full-batch step:
    Adam's first moves each by r·|g|/(|g| + ε), r for all but the tiniest gradients)."""
    rng = seeded.rng
    X, y, model = _problem(rng)
    rate = float(rng.uniform(1e-3, 1e-1))
    with pytest.raises(ConfigError, match="takes no learning_rate=") as caught:
        wxb.fit(model(), X, y, optimizer="adam", learning_rate=rate, verbose=0)
    way = str(caught.value).split("(PyTorch's name): ")[1].split(", or ")[0]
    net = model()
    before = [p.data.astype(np.float64) for p in net.parameters()]
    scope = {"fit": wxb.fit, "model": net, "X": X, "y": y}
    history = eval(
        way.replace("lr=0.001", f"lr={rate!r}, epochs=1, batch_size=len(X), verbose=0"), scope
    )
    assert history["lr"] == [rate], seeded.msg(str(history["lr"]))
    pairs = zip(net.parameters(), before, strict=True)
    moved = np.concatenate([np.abs(p.data - a).ravel() for p, a in pairs])
    assert moved.max() == pytest.approx(rate, rel=1e-4), seeded.msg("Adam's first step")
    assert (moved <= rate * (1 + 1e-4)).all(), seeded.msg("Adam's first step")


def test_kerass_module_and_layer_names_say_where_wxb_has_them(seeded):
    """keras.layers / keras.callbacks, keras.layers.Input, BatchNormalization,
    Normalization, Conv2D, … met Python's bare AttributeError (or "cannot import name").
    Each now says where wxb has it, as torch's names do (the same check: attribute and
    import, hasattr False). The Normalization way gives Keras's adapted layer:
    (x − mean)/√var, the variance over the rows (biased), a constant column 0."""
    from test_docs_truth_hunt3 import test_from_import_of_a_missing_torch_name_says_what_to_write

    for module in (wxb, wxb.nn):
        assert len(module._KERAS_NAMES) > 5
        for name in module._KERAS_NAMES:
            test_from_import_of_a_missing_torch_name_says_what_to_write(module.__name__, name)
    with pytest.raises(AttributeError) as caught:
        wxb.nn.Normalization  # noqa: B018
    way = str(caught.value).split("adapt(X_train) is ")[1].split(", as the first")[0]
    rng = seeded.rng
    X = rng.normal(size=(int(rng.integers(5, 30)), int(rng.integers(2, 6)))) * 3 + 1
    X[:, 0] = rng.normal()  # a constant column
    layer = eval(way, {"Standardize": wxb.nn.Standardize, "X_train": X.astype(np.float32)})
    var = ((X - X.mean(0)) ** 2).mean(0)
    keras = (X - X.mean(0)) / np.maximum(np.sqrt(var), 1e-7)  # Keras 3's Normalization
    got = layer(wxb.tensor(X, dtype="float32")).data
    np.testing.assert_allclose(
        got, keras, rtol=1e-4, atol=1e-5, err_msg=seeded.msg("Normalization")
    )
