"""Keras's arguments spelled out at their defaults, as Keras scripts write them
(``fit(..., class_weight=None, sample_weight=None, callbacks=None, initial_epoch=0)``),
ask for what wxb does: they are taken, and the run is the one without them; a real value
is still refused naming wxb's way. The references: Keras 3's signatures (fit's defaults;
tf.keras 2's for its loading workers), its weighted accuracy (a Mean of the rows' 0/1
weighted by the sample weights) and PyTorch's state_dict, which shares the parameters'
storage. Every run draws a fresh seed (printed; ``WXB_TEST_SEED`` replays it)."""

import warnings

import numpy as np
import pytest

import wxb
from wxb.errors import ConfigError
from wxb.nn import Dense, ReLU, Sequential

# Keras's fit (and compile's metrics, tf.keras 2's loading workers) arguments wxb has
# not, at Keras's defaults; each a list of the spellings of that default
FIT_DEFAULTS = {
    "class_weight": [None],
    "sample_weight": [None],
    "callbacks": [None, [], ()],
    "steps_per_epoch": [None],
    "validation_steps": [None],
    "validation_batch_size": [None],
    "validation_freq": [1, np.int64(1)],
    "initial_epoch": [0, np.int64(0)],
    "metrics": [None],
    "workers": [1],
    "use_multiprocessing": [False, np.bool_(False)],
    "max_queue_size": [10],
}
# a value each refuses, Keras's meaning of it not being wxb's
FIT_REFUSED = {
    "class_weight": {0: 2.0},
    "callbacks": [object()],
    "steps_per_epoch": 3,
    "validation_freq": 2,
    "initial_epoch": 1,
    "workers": True,  # not a count
    "use_multiprocessing": True,
    "max_queue_size": 0,
}


def _pick(rng, values):
    return values[int(rng.integers(len(values)))]


def _problem(rng):
    n, d, c = int(rng.integers(30, 80)), int(rng.integers(2, 6)), int(rng.integers(2, 4))
    X, y = rng.normal(size=(n, d)), rng.integers(0, c, n)
    init = int(rng.integers(1 << 30))

    def model():
        return Sequential(Dense(d, 6, seed=init), ReLU(), Dense(6, c, seed=init + 1))

    return X, y, model


def test_kerass_fit_arguments_at_their_defaults_train_as_without_them(seeded):
    """fit(..., class_weight=None, sample_weight=None, callbacks=None, steps_per_epoch=None)
    was refused ("takes no class_weight="), where Keras's None is its default: no weights,
    no callbacks, an epoch one pass over X. Taken now, the run is the one without them, bit
    for bit; validation_data's third element None (no weights) too."""
    rng = seeded.rng
    X, y, model = _problem(rng)
    k = int(rng.integers(len(X) // 2, len(X) - 5))
    names = [n for n in FIT_DEFAULTS if rng.random() < 0.5] or [str(rng.choice(list(FIT_DEFAULTS)))]
    spelled = {n: _pick(rng, FIT_DEFAULTS[n]) for n in names}
    settings = {"epochs": 2, "batch_size": int(rng.integers(4, 17)), "verbose": 0,
                "seed": int(rng.integers(1 << 30))}  # fmt: skip
    plain = model()
    want = wxb.fit(plain, X[:k], y[:k], validation_data=(X[k:], y[k:]), **settings)
    given = model()
    got = wxb.fit(given, X[:k], y[:k], validation_data=(X[k:], y[k:], None), **settings, **spelled)
    assert got.history == want.history, seeded.msg(f"History with {spelled}")
    for p, q in zip(given.parameters(), plain.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=seeded.msg(f"with {spelled}"))
    name = str(rng.choice(list(FIT_REFUSED)))
    with pytest.raises(ConfigError, match=rf"^wxb\.fit takes no {name}= \(Keras's\)"):
        wxb.fit(given, X, y, epochs=1, verbose=0, **{**spelled, name: FIT_REFUSED[name]})
    for p, q in zip(given.parameters(), plain.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=seeded.msg("trained, refused"))


def test_kerass_evaluate_and_predict_arguments_at_their_defaults_are_taken(seeded):
    """evaluate(x, y, sample_weight=None, steps=None, callbacks=None), Keras's defaults,
    was refused; predict(x, steps=None, callbacks=None) met Python's bare "unexpected
    keyword argument 'steps'". Taken, the figures are those without them; a real value is
    refused naming wxb's way, and a name Keras has not is Python's TypeError."""
    rng = seeded.rng
    X, y, model = _problem(rng)
    model = model()
    callbacks = _pick(rng, [None, [], ()])
    scores = wxb.evaluate(model, X, y, sample_weight=None, steps=None, callbacks=callbacks)
    assert scores == wxb.evaluate(model, X, y), seeded.msg(str(scores))
    out = model.predict(X, steps=None, callbacks=callbacks, verbose=0)
    np.testing.assert_array_equal(out, model.predict(X), err_msg=seeded.msg("predict"))
    with pytest.raises(ConfigError, match=r"^wxb\.evaluate takes no steps= .*every row"):
        wxb.evaluate(model, X, y, steps=int(rng.integers(1, 5)))
    with pytest.raises(ConfigError, match=r"^wxb\.predict takes no steps= .*every row"):
        model.predict(X, steps=int(rng.integers(1, 5)))
    with pytest.raises(ConfigError, match=r"^wxb\.predict takes no callbacks= .*calls none"):
        model.predict(X, callbacks=[object()])
    with pytest.raises(TypeError, match="unexpected keyword argument 'no_such_option'"):
        model.predict(X, steps=None, no_such_option=1)


def test_evaluates_sample_weight_refusal_names_kerass_weighted_accuracy(seeded):
    """The refusal said "or wxb.sklearn's estimators' score(X, y, sample_weight=w)" as
    the way to Keras's weighted evaluate: that score is a weighted accuracy (or R²), not
    the loss, and an estimator's, not the model's. It now names both of Keras's figures:
    the weighted accuracy, Σ wᵢ·rightᵢ / Σ wᵢ (Keras's Mean metric weighted by the sample
    weights), by an expression that runs as written and gives it."""
    from sklearn.metrics import accuracy_score

    from wxb.sklearn import MLPClassifier

    rng = seeded.rng
    X, y, model = _problem(rng)
    model = model()
    w = rng.random(len(X))
    with pytest.raises(ConfigError, match="takes no sample_weight=") as caught:
        wxb.evaluate(model, X, y, sample_weight=w)
    message = str(caught.value)
    way = "accuracy_score(y, model.predict(X).argmax(1), sample_weight=w)"
    assert way in message and "not a loss" in message, seeded.msg(message)
    scope = {"accuracy_score": accuracy_score, "model": model, "X": X, "y": y, "w": w}
    got = eval(way, scope)  # the expression as the message writes it
    right = model.predict(X).argmax(1) == y
    want = float((w * right).sum() / w.sum())  # Keras: Mean()(right, sample_weight=w)
    assert got == pytest.approx(want, rel=1e-12), seeded.msg(f"{got} vs {want}")
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=int(rng.integers(99)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (not converged in 2 iterations)
        clf.fit(X, y)
    right = clf.predict(X) == y  # the estimator's score: that accuracy, not its loss
    want = float((w * right).sum() / w.sum())
    assert clf.score(X, y, sample_weight=w) == pytest.approx(want, rel=1e-12), seeded.msg("score")


def test_state_dict_is_a_snapshot_where_torchs_shares_the_parameters(seeded):
    """The README's Modules row: wxb's state_dict() holds NumPy copies, so changing one in
    place leaves the model as it was (and the dict as taken when the model trains on);
    PyTorch's holds the parameters' storage."""
    import torch

    rng = seeded.rng
    model = _problem(rng)[2]()
    before = [p.data.copy() for p in model.parameters()]
    state = model.state_dict()
    for value in state.values():
        value *= 0
    for p, q in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p.data, q, err_msg=seeded.msg("sd[k] *= 0 changed it"))
    twin = torch.nn.Linear(3, 2)
    torch_state = twin.state_dict()
    torch_state["weight"] *= 0  # PyTorch's: the parameter itself
    assert not twin.weight.detach().any()


KERAS_MODEL_METHODS = ["save", "save_weights", "load_weights", "get_weights", "set_weights",
                       "count_params"]  # fmt: skip


def test_kerass_model_methods_for_weights_and_files_name_ways_that_do_what_kerass_do(
    seeded, tmp_path
):
    """model.save("m.keras"), model.get_weights(), model.set_weights(ws), count_params(),
    a Keras script's lines, met a bare AttributeError. Each now names wxb's way, and the
    way runs as written and gives Keras's result: set_weights of Keras's arrays (kernels
    (in, out)) computes Keras's Dense, x·kernel + bias, by NumPy; get_weights gives them
    back; count_params is Σ (in·out + out); the files load the same model."""
    rng = seeded.rng
    d, h, c = (int(v) for v in rng.integers(1, 7, 3))
    model = Sequential(Dense(d, h), ReLU(), Dense(h, c))
    for name in KERAS_MODEL_METHODS:
        assert not hasattr(model, name), name  # still an AttributeError (duck typing)
    ways = {}
    for name in KERAS_MODEL_METHODS:
        with pytest.raises(AttributeError, match=rf"model\.{name} is Keras's: ") as caught:
            getattr(model, name)
        ways[name] = str(caught.value).split("is Keras's: ", 1)[1].split(" (")[0].split(": ")[0]
    kernels = [rng.normal(size=(d, h)), rng.normal(size=(h, c))]
    biases = [rng.normal(size=h), rng.normal(size=c)]
    arrays = [kernels[0], biases[0], kernels[1], biases[1]]  # Keras's get_weights order
    scope = {"wxb": wxb, "model": model, "arrays": [a.T if a.ndim == 2 else a for a in arrays]}
    exec(ways["set_weights"], scope)
    X = rng.normal(size=(int(rng.integers(1, 20)), d))
    want = np.maximum(X @ kernels[0] + biases[0], 0) @ kernels[1] + biases[1]  # Keras's Dense
    np.testing.assert_allclose(model.predict(X), want, rtol=1e-5, atol=1e-5, err_msg=seeded.msg(""))
    got = eval(ways["get_weights"], scope)
    for a, b in zip(got, arrays, strict=True):
        np.testing.assert_allclose(a.T if a.ndim == 2 else a, b, rtol=1e-6)
    assert eval(ways["count_params"], scope) == d * h + h + h * c + c
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        exec(ways["save"].split(" writes it")[0], scope)
        assert np.array_equal(wxb.load("model.safetensors").predict(X), model.predict(X))
        exec(ways["save_weights"], scope)
        twin = Sequential(Dense(d, h), ReLU(), Dense(h, c))
        exec(ways["load_weights"], {**scope, "model": twin})
        assert np.array_equal(twin.predict(X), model.predict(X)), seeded.msg("load_weights")


def test_kerass_layer_keywords_at_their_none_default_are_taken(seeded):
    """Dense(64, 10, activation=None), Keras's linear output layer, and
    kernel_regularizer=None, Dropout(0.5, noise_shape=None) were refused ("takes no
    activation="), where None is Keras's default: no activation, no penalty, each unit
    dropped on its own. Taken, the layer computes Keras's Dense, x·kernel + bias (W is
    Keras's kernel transposed), by NumPy; a real value is still refused."""
    from wxb.nn import Dropout

    rng = seeded.rng
    d, h = (int(v) for v in rng.integers(1, 9, 2))
    spelled = {k: None for k in ("activation", "kernel_regularizer") if rng.random() < 0.5}
    layer = Dense(d, h, **(spelled or {"activation": None}), dtype="float64")
    X = rng.normal(size=(int(rng.integers(1, 9)), d))
    want = X @ layer.weight.data.T + layer.bias.data  # Keras's Dense, kernel = W.T
    np.testing.assert_allclose(layer(X).data, want, rtol=1e-12, err_msg=seeded.msg(str(spelled)))
    p, seed = float(rng.uniform(0.1, 0.9)), int(rng.integers(1 << 30))
    kept, plain = Dropout(p, noise_shape=None, seed=seed), Dropout(p, seed=seed)
    np.testing.assert_array_equal(kept(X).data, plain(X).data, err_msg=seeded.msg("masks"))
    with pytest.raises(ConfigError, match="takes no activation="):
        Dense(d, h, activation="linear")
    with pytest.raises(ConfigError, match="takes no noise_shape="):
        Dropout(p, noise_shape=(1, d))


def test_scikit_learns_predict_proba_and_score_on_a_model_name_ways_giving_theirs(seeded):
    """model.predict_proba(X) and model.score(X, y), a scikit-learn user's lines on a
    wxb Sequential (and tf.keras 2.5's predict_classes), met a bare AttributeError. Each
    names a way that runs as written: softmax of the logits (NumPy's), the accuracy of
    the argmax (scikit-learn's accuracy_score), a regression's R² (its r2_score)."""
    from sklearn.metrics import accuracy_score, r2_score

    rng = seeded.rng
    X, y, model = _problem(rng)
    model = model()
    ways = {}
    for name in ("predict_proba", "score", "predict_classes"):
        with pytest.raises(AttributeError, match=rf"model\.{name} is [^:]+'s: ") as caught:
            getattr(model, name)
        ways[name] = str(caught.value).split("'s: ", 2)[-1]
    scope = {"wxb": wxb, "model": model, "X": X, "y": y}
    proba = eval(ways["predict_proba"].split(", a classifier's")[0], scope)
    z = model.predict(X).astype(np.float64)
    want = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(proba, want / want.sum(1, keepdims=True), rtol=1e-5, atol=1e-7)
    classes = eval(ways["predict_classes"], scope)
    accuracy = eval(ways["score"].split(" for a classifier")[0], scope)
    assert accuracy == pytest.approx(accuracy_score(y, classes), rel=1e-12), seeded.msg("")
    regressor = Sequential(Dense(X.shape[1], 1))
    targets = rng.normal(size=len(X))
    r2 = eval(ways["score"].split("R², ")[1], {**scope, "model": regressor, "y": targets})
    assert r2 == pytest.approx(r2_score(targets, regressor.predict(X)), rel=1e-6), seeded.msg("")


def test_a_models_method_on_fits_history_says_fit_trained_the_model_in_place(seeded):
    """wxb.fit(model, X, y).predict(X), scikit-learn's chain (its fit returns the
    estimator), met "'History' object has no attribute 'predict'". It now says fit returns
    the History, as Keras's, and names the calls on the model, which give its outputs."""
    rng = seeded.rng
    X, y, model = _problem(rng)
    model = model()
    history = wxb.fit(model, X, y, epochs=1, verbose=0)
    name = str(rng.choice(["predict", "predict_proba", "score", "evaluate"]))
    assert not hasattr(history, name)
    with pytest.raises(AttributeError, match=f"^History has no {name}: wxb.fit returns") as caught:
        getattr(history, name)
    way = str(caught.value).split("in place: ")[1]
    scope = {"wxb": wxb, "model": model, "X": X, "y": y}
    predict_call, evaluate_call = way.split(", wxb.", 1)
    np.testing.assert_array_equal(eval(predict_call, scope), model.predict(X))
    assert eval("wxb." + evaluate_call, scope) == wxb.evaluate(model, X, y)
