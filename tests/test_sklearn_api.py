"""wxb.sklearn as a drop-in: the API a scikit-learn user's script touches, and wxb's
own additions (dtype, dropout, solver="adamw", device, to_wxb)."""

from __future__ import annotations

import inspect
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse
from scipy.special import expit, softmax
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import wxb
import wxb.interop
from wxb.sklearn import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = {"hidden_layer_sizes": (12,), "max_iter": 30, "learning_rate_init": 0.02}


def blobs(rng: np.random.Generator, n: int = 150, features: int = 5, classes: int = 3):
    while True:  # well apart, so thresholds on the score hold (drawn again when two are near)
        centres = rng.standard_normal((classes, features)) * 6
        gaps = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
        if gaps[np.triu_indices(classes, 1)].min() > 8:
            break
    y = rng.integers(0, classes, n)
    y[:classes] = np.arange(classes)
    return centres[y] + rng.standard_normal((n, features)), y


# -- the same constructor as scikit-learn's -------------------------------------------------------
@pytest.mark.parametrize(
    ("ours", "theirs"), [(MLPClassifier, SkClassifier), (MLPRegressor, SkRegressor)]
)
def test_every_sklearn_parameter_with_its_default(ours, theirs):
    mine = inspect.signature(ours).parameters
    for name, parameter in inspect.signature(theirs).parameters.items():
        assert name in mine, name
        assert mine[name].default == parameter.default, name
        assert mine[name].kind == parameter.kind, name
    extras = {
        name: mine[name].default for name in set(mine) - set(inspect.signature(theirs).parameters)
    }
    assert extras == {"dtype": None, "dropout": 0.0, "device": "cpu"}
    assert ours().get_params().keys() == {*inspect.signature(theirs).parameters, *extras}


def test_classifier_attributes_as_sklearn(rng):
    X, y = blobs(rng)
    ours = MLPClassifier(**FAST, random_state=0).fit(X, y)
    ref = SkClassifier(**FAST, random_state=0).fit(X, y)
    for name in ("n_layers_", "n_outputs_", "out_activation_", "n_features_in_", "n_iter_", "t_"):
        assert getattr(ours, name) == getattr(ref, name), name
    assert ours.loss == ref.loss == "log_loss"
    np.testing.assert_array_equal(ours.classes_, ref.classes_)
    assert [c.shape for c in ours.coefs_] == [c.shape for c in ref.coefs_]
    assert [b.shape for b in ours.intercepts_] == [b.shape for b in ref.intercepts_]
    assert ours.best_validation_score_ is None and ours.validation_scores_ is None
    assert len(ours.loss_curve_) == ours.n_iter_ and ours.best_loss_ == min(ours.loss_curve_)
    assert ours.score(X, y) == pytest.approx(ref.score(X, y), abs=1e-12)


def test_unfitted_raises_not_fitted(rng):
    X, _ = blobs(rng)
    for est in (MLPClassifier(), MLPRegressor()):
        for method in ("predict", "to_wxb"):
            with pytest.raises(NotFittedError):
                getattr(est, method)(X) if method == "predict" else est.to_wxb()
        assert not hasattr(est, "coefs_")


# -- targets --------------------------------------------------------------------------------------
def test_string_labels(rng):
    X, y = blobs(rng, classes=3)
    names = np.array(["cat", "dog", "eel"])[y]
    clf = MLPClassifier(**FAST, random_state=0).fit(X, names)
    assert list(clf.classes_) == ["cat", "dog", "eel"]
    predicted = clf.predict(X)
    assert predicted.dtype.kind == "U" and set(predicted) <= {"cat", "dog", "eel"}
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], predicted)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-12)
    binary = np.where(y == 0, "no", "yes")
    clf = MLPClassifier(**FAST, random_state=0).fit(X, binary)
    assert clf.predict_proba(X).shape == (len(X), 2) and clf.n_outputs_ == 1
    assert clf.out_activation_ == "logistic"
    assert set(clf.predict(X)) <= {"no", "yes"}


def test_multilabel_and_multioutput(rng):
    X, _ = blobs(rng)
    Y = (X[:, :3] + 0.3 * rng.standard_normal((len(X), 3)) > 0).astype(int)
    clf = MLPClassifier(**FAST, random_state=0).fit(X, Y)
    assert clf.predict(X).shape == Y.shape and clf.out_activation_ == "logistic"
    assert clf.predict_proba(X).shape == Y.shape
    targets = X[:, :2] @ rng.standard_normal((2, 2))
    reg = MLPRegressor(**FAST, random_state=0).fit(X, targets)
    assert reg.predict(X).shape == targets.shape and reg.n_outputs_ == 2
    assert reg.predict(X[:1]).shape == (1, 2)
    counts = rng.poisson(np.exp(0.3 * X[:, 0]))
    poisson = MLPRegressor(loss="poisson", **FAST, random_state=0).fit(X, counts)
    assert poisson.out_activation_ == "exp" and (poisson.predict(X) > 0).all()


def test_partial_fit_classes_and_solver(rng):
    X, y = blobs(rng)
    clf = MLPClassifier(**FAST, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[y != 2], y[y != 2], classes=[0, 1, 2])
    assert list(clf.classes_) == [0, 1, 2] and clf.n_iter_ == 1
    clf.partial_fit(X, y)
    assert clf.t_ == (y != 2).sum() + len(y)
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(X, y + 5)
    for est in (MLPClassifier(solver="lbfgs"), MLPRegressor(solver="lbfgs")):
        assert not hasattr(est, "partial_fit")
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


@pytest.mark.parametrize("how", ["partial_fit", "fit"])
def test_training_on_after_an_early_stopped_fit(rng, how):
    # fit with early stopping, then go on without it (partial_fit refuses it): the
    # training-loss records start there, as a fit without early stopping starts them
    X, y = blobs(rng)
    clf = MLPClassifier(**FAST, early_stopping=True, warm_start=True, random_state=0)
    clf.fit(X, y)
    assert clf.best_loss_ is None
    scores = list(clf.validation_scores_)
    clf.set_params(early_stopping=False)
    getattr(clf, how)(X, y)
    assert clf.best_loss_ == min(clf.loss_curve_[-clf.n_iter_ :])
    assert clf.validation_scores_ == scores  # the early-stopped fit's, kept
    reg = MLPRegressor(**FAST, early_stopping=True, random_state=0).fit(X, X[:, 0])
    reg.set_params(early_stopping=False)
    reg.partial_fit(X, X[:, 0])
    assert reg.best_loss_ == reg.loss_curve_[-1] and reg.n_iter_ == 1


# -- scikit-learn's machinery ---------------------------------------------------------------------
def test_pipeline_gridsearch_cross_val_score(rng):
    X, y = blobs(rng, n=120)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(**FAST, random_state=0))
    theirs = make_pipeline(StandardScaler(), SkClassifier(**FAST, random_state=0))
    assert pipe.fit(X, y).score(X, y) == theirs.fit(X, y).score(X, y)
    search = GridSearchCV(
        Pipeline([("scale", StandardScaler()), ("mlp", MLPClassifier(**FAST, random_state=0))]),
        {"mlp__alpha": [1e-4, 1e-2], "mlp__solver": ["adam", "lbfgs"]},
        cv=3,
    ).fit(X, y)
    assert search.best_params_["mlp__alpha"] in (1e-4, 1e-2)
    assert search.best_estimator_.named_steps["mlp"].coefs_[0].shape == (5, 12)
    target = X[:, 0] - X[:, 1]
    scores = cross_val_score(MLPRegressor(**FAST, random_state=0), X, target, cv=3)
    # The same folds, the same random_state, float64: scikit-learn's own scores.
    expected = cross_val_score(SkRegressor(**FAST, random_state=0), X, target, cv=3)
    np.testing.assert_allclose(scores, expected, rtol=1e-8)


def test_clone_keeps_parameters_not_fit(rng):
    X, y = blobs(rng)
    est = MLPClassifier(**FAST, dtype="float32", dropout=0.1, solver="adamw", random_state=3)
    est.fit(X, y)
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert not hasattr(copy, "coefs_") and not hasattr(copy, "classes_")


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_pickle_round_trip_continues_training(rng, solver):
    X, y = blobs(rng)
    est = MLPClassifier(**FAST, solver=solver, random_state=0).fit(X, y)
    copy = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(copy.predict_proba(X), est.predict_proba(X))
    assert copy.loss_ == est.loss_ and copy.n_iter_ == est.n_iter_
    if solver == "lbfgs":
        return
    for model in (est, copy):  # the optimiser's state came along: the same next epoch
        model.partial_fit(X, y)
    for a, b in zip(copy.coefs_ + copy.intercepts_, est.coefs_ + est.intercepts_, strict=True):
        np.testing.assert_array_equal(a, b)
    assert copy.loss_curve_ == est.loss_curve_


def test_dataframe_feature_names(rng):
    pd = pytest.importorskip("pandas")
    X, y = blobs(rng)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    clf = MLPClassifier(**FAST, random_state=0).fit(frame, y)
    assert list(clf.feature_names_in_) == list(frame.columns)
    assert clf.to_wxb().info["feature_names"] == list(frame.columns)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        np.testing.assert_array_equal(clf.predict(frame), clf.predict(X))
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(frame.rename(columns={"f0": "other"}))


def test_sparse_input_matches_dense(rng):
    X, y = blobs(rng)
    X[np.abs(X) < 1] = 0
    for solver in ("adam", "lbfgs"):
        dense = MLPClassifier(**FAST, solver=solver, random_state=0).fit(X, y)
        for fmt in ("csr", "csc"):
            sparse = MLPClassifier(**FAST, solver=solver, random_state=0)
            sparse.fit(scipy.sparse.csr_matrix(X).asformat(fmt), y)
            for a, b in zip(sparse.coefs_, dense.coefs_, strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(
                sparse.predict_proba(scipy.sparse.csr_array(X)), dense.predict_proba(X), rtol=1e-10
            )


# -- coefs_ and intercepts_ are the network's parameters ------------------------------------------
def test_setting_weights_takes_effect(rng):
    X, y = blobs(rng)
    clf = MLPClassifier(**FAST, random_state=0).fit(X, y)
    ref = SkClassifier(**FAST, random_state=1).fit(X, y)
    clf.coefs_ = ref.coefs_
    clf.intercepts_ = ref.intercepts_
    np.testing.assert_allclose(clf.predict_proba(X), ref.predict_proba(X), rtol=1e-12)
    clf.coefs_[1][...] = 0  # in place, through the view
    clf.intercepts_[1] = np.zeros_like(clf.intercepts_[1])  # item assignment
    np.testing.assert_allclose(clf.predict_proba(X), 1 / 3)
    with pytest.raises(ValueError, match="shape"):
        clf.coefs_ = [np.zeros((2, 2)), np.zeros((12, 3))]
    with pytest.raises(ValueError, match="needs 2 arrays"):
        clf.intercepts_ = [np.zeros(12)]


def test_warm_start_refuses_other_layer_sizes(rng):
    X, y = blobs(rng)
    clf = MLPClassifier(**FAST, warm_start=True, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="layer sizes"):
        clf.set_params(hidden_layer_sizes=(7,)).fit(X, y)


# -- dtype ----------------------------------------------------------------------------------------
def test_float32_path_keeps_float32(rng):
    X, y = blobs(rng)
    targets = X[:, 0] - 2 * X[:, 1]
    for data, dtype in ((X.astype(np.float32), None), (X, "float32"), (X, np.float32)):
        clf = MLPClassifier(**FAST, dtype=dtype, random_state=0).fit(data, y)
        assert all(c.dtype == np.float32 for c in clf.coefs_ + clf.intercepts_)
        assert clf.predict_proba(X).dtype == np.float32
        assert clf.to_wxb().dtype == np.float32
        reg = MLPRegressor(**FAST, dtype=dtype, random_state=0).fit(data, targets)
        assert reg.predict(X).dtype == np.float32
    lbfgs = MLPClassifier(**FAST, solver="lbfgs", dtype="float32", random_state=0).fit(X, y)
    assert lbfgs.coefs_[0].dtype == np.float32 and lbfgs.score(X, y) > 0.8
    clf = MLPClassifier(**FAST, random_state=0).fit(X.astype(np.int64), y)
    assert clf.coefs_[0].dtype == np.float64  # anything but float32 trains in float64
    clf = MLPClassifier(**FAST, dtype="float64", random_state=0).fit(X.astype(np.float32), y)
    assert clf.coefs_[0].dtype == np.float64
    with pytest.raises(ValueError, match="dtype must be"):
        MLPClassifier(dtype="float16").fit(X, y)


def test_float32_close_to_float64(rng):
    X, y = blobs(rng)
    a = MLPClassifier(**FAST, random_state=0).fit(X, y)
    b = MLPClassifier(**FAST, random_state=0, dtype="float32").fit(X, y)
    np.testing.assert_allclose(b.predict_proba(X), a.predict_proba(X), atol=1e-3)


# -- wxb's extras ---------------------------------------------------------------------------------
def test_device_other_than_cpu_refused(rng):
    X, y = blobs(rng)
    for device in ("gpu", "cuda"):
        with pytest.raises(ValueError, match=f"device='{device}' is not supported.*'cpu'"):
            MLPClassifier(device=device).fit(X, y)


def test_dropout(rng):
    X, y = blobs(rng)
    plain = MLPClassifier(**FAST, random_state=0).fit(X, y)
    dropped = MLPClassifier(**FAST, dropout=0.3, random_state=0).fit(X, y)
    again = MLPClassifier(**FAST, dropout=0.3, random_state=0).fit(X, y)
    assert not np.allclose(plain.coefs_[0], dropped.coefs_[0])  # the masks acted
    np.testing.assert_array_equal(dropped.coefs_[0], again.coefs_[0])  # reproducibly
    np.testing.assert_array_equal(dropped.predict_proba(X), dropped.predict_proba(X))  # off
    # 30 iterations with dropout leave one class out now and then (2 draws in 2000 from
    # random_state=0, scores 0.73): the best of it and 5 more drawn starts must do
    others = (
        MLPClassifier(**FAST, dropout=0.3, random_state=int(r))
        for r in rng.integers(1 << 31, size=5)
    )
    scores = [dropped.score(X, y), *(other.fit(X, y).score(X, y) for other in others)]
    assert max(scores) > 0.8, scores
    assert any(isinstance(m, wxb.nn.Dropout) for m in dropped.to_wxb())
    with pytest.raises(ValueError, match="dropout needs a stochastic solver"):
        MLPClassifier(solver="lbfgs", dropout=0.2).fit(X, y)


def test_adamw_decays_weights_apart_from_the_gradient(rng):
    """One full-batch step: AdamW's W is Adam's (α = 0) step from W·(1 − η·α); biases as Adam's."""
    X, y = blobs(rng)
    eta, decay = 0.01, 0.05
    start = MLPClassifier(hidden_layer_sizes=(6,), max_iter=1, random_state=0).fit(X, y)
    results = {}
    for solver, alpha in (("adam", 0.0), ("adamw", decay)):
        est = MLPClassifier(
            hidden_layer_sizes=(6,),
            solver=solver,
            alpha=alpha,
            learning_rate_init=eta,
            batch_size=len(X),
            shuffle=False,
            max_iter=1,
            warm_start=True,
            random_state=0,
        ).fit(X, y)
        est.coefs_, est.intercepts_ = start.coefs_, start.intercepts_
        results[solver] = est.fit(X, y)  # a fresh optimiser: one step
    adam, adamw = results["adam"], results["adamw"]
    for w0, wa, ww in zip(start.coefs_, adam.coefs_, adamw.coefs_, strict=True):
        np.testing.assert_allclose(ww, w0 * (1 - eta * decay) + (wa - w0), rtol=1e-12, atol=1e-15)
    for ba, bw in zip(adam.intercepts_, adamw.intercepts_, strict=True):
        np.testing.assert_array_equal(bw, ba)
    assert adamw.loss_ == adam.loss_  # the reported loss holds no L2 term
    # 30 iterations from a drawn start leave one class out now and then (score ~0.7):
    # 1 start in 300 overall, 1 in 40 on the hardest blobs seen, so the best of 6
    # starts fails with probability below 1e-9
    starts = rng.integers(1 << 31, size=6)
    scores = [
        MLPClassifier(**FAST, solver="adamw", alpha=1e-2, random_state=int(r)).fit(X, y).score(X, y)
        for r in starts
    ]
    assert max(scores) > 0.8, scores


def test_alpha_changed_between_partial_fits_acts_with_adamw(rng):
    """scikit-learn reads alpha at every batch, so set_params(alpha=…) between partial_fit
    calls acts at the next one; with "adamw" the decay is the new alpha's too. A solver
    changed between them waits for the next fit (the optimiser is kept, as scikit-learn
    keeps it), and its alpha then acts the way the running optimiser applies it."""
    X, y = blobs(rng)
    eta, decay = 0.01, 0.5
    settings = {"hidden_layer_sizes": (6,), "learning_rate_init": eta, "random_state": 0}
    settings |= {"batch_size": len(X), "shuffle": False}
    first = MLPClassifier(**settings, solver="adamw", alpha=0.0).partial_fit(
        X, y, classes=[0, 1, 2]
    )
    plain, decayed = pickle.loads(pickle.dumps(first)), pickle.loads(pickle.dumps(first))
    decayed.set_params(alpha=decay)
    plain.partial_fit(X, y)
    decayed.partial_fit(X, y)  # one step: W·(1 − η·α) plus the same Adam update
    for w0, wp, wd in zip(first.coefs_, plain.coefs_, decayed.coefs_, strict=True):
        np.testing.assert_allclose(wd, w0 * (1 - eta * decay) + (wp - w0), rtol=1e-12, atol=1e-15)
    for bp, bd in zip(plain.intercepts_, decayed.intercepts_, strict=True):
        np.testing.assert_array_equal(bd, bp)

    # adam ⇄ adamw between partial_fits: the running optimiser's own regularisation,
    # with the alpha set now: never none of the two, never both
    for before, after in (("adam", "adamw"), ("adamw", "adam")):
        start = MLPClassifier(**settings, solver=before, alpha=0.0).partial_fit(
            X, y, classes=[0, 1, 2]
        )
        kept = pickle.loads(pickle.dumps(start)).set_params(alpha=decay)
        switched = pickle.loads(pickle.dumps(start)).set_params(alpha=decay, solver=after)
        kept.partial_fit(X, y)
        switched.partial_fit(X, y)
        for a, b in zip(
            kept.coefs_ + kept.intercepts_, switched.coefs_ + switched.intercepts_, strict=True
        ):
            np.testing.assert_array_equal(b, a)
        assert switched.loss_ == kept.loss_


# -- to_wxb ---------------------------------------------------------------------------------------
def test_to_wxb_save_load_same_predictions(rng, tmp_path):
    X, y = blobs(rng)
    names = np.array(["a", "b", "c"])[y]
    clf = MLPClassifier(**FAST, random_state=0).fit(X, names)
    model = clf.to_wxb()
    assert model.info["task"] == "classification" and model.info["loss"] == "cross_entropy"
    assert model.info["classes"] == ["a", "b", "c"]
    loaded = wxb.load(wxb.save(model, tmp_path / "clf.safetensors"))
    assert loaded.info == model.info
    np.testing.assert_allclose(softmax(loaded.predict(X), axis=1), clf.predict_proba(X), rtol=1e-12)

    binary = MLPClassifier(**FAST, random_state=0).fit(X, y == 0)
    loaded = wxb.load(wxb.save(binary.to_wxb(), tmp_path / "bin.safetensors"))
    assert loaded.info["loss"] == "bce_with_logits" and loaded.info["classes"] == [False, True]
    np.testing.assert_allclose(expit(loaded.predict(X))[:, 0], binary.predict_proba(X)[:, 1])

    reg = MLPRegressor(**FAST, random_state=0, dtype="float32").fit(X, X[:, :2].sum(axis=1))
    loaded = wxb.load(wxb.save(reg.to_wxb(), tmp_path / "reg.safetensors"))
    assert loaded.dtype == np.float32 and loaded.info["task"] == "regression"
    np.testing.assert_array_equal(loaded.predict(X)[:, 0], reg.predict(X))

    counts = rng.poisson(np.exp(0.3 * X[:, 0]))
    poisson = MLPRegressor(loss="poisson", **FAST, random_state=0).fit(X, counts)
    loaded = wxb.load(wxb.save(poisson.to_wxb(), tmp_path / "poisson.safetensors"))
    assert loaded.info["link"] == "log"
    np.testing.assert_allclose(np.exp(loaded.predict(X))[:, 0], poisson.predict(X), rtol=1e-12)


def test_to_wxb_is_the_live_network(rng):
    X, y = blobs(rng)
    clf = MLPClassifier(**FAST, random_state=0).fit(X, y)
    model = clf.to_wxb()
    dense = [m for m in model if isinstance(m, wxb.nn.Dense)]
    for layer, coef in zip(dense, clf.coefs_, strict=True):
        assert np.shares_memory(layer.weight.data, coef)
    summary = str(model.summary())
    assert "dense1" in summary
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        text = wxb.explain(model, X[:2], y[:2], loss="cross_entropy").render()
    assert "W" in text


def test_verbose_prints_as_sklearn(rng, capsys):
    X, y = blobs(rng)
    MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, verbose=True, random_state=0).fit(X, y)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Iteration 1, loss = ") and out[1].startswith("Iteration 2, loss = ")


# -- settings changed by set_params on a fitted estimator ---------------------------------------
def _sgd_settings(rng: np.random.Generator) -> dict:
    """Plain SGD without early stopping: a warm-start fit depends only on the weights."""
    return {
        "hidden_layer_sizes": (int(rng.integers(4, 12)),),
        "solver": "sgd",
        "momentum": 0.0,
        "learning_rate_init": 0.05,
        "max_iter": int(rng.integers(2, 6)),
        "n_iter_no_change": 1000,
        "random_state": int(rng.integers(1 << 30)),
        "warm_start": True,
    }


def test_activation_changed_after_fit_acts_as_sklearns(rng):
    """scikit-learn reads ``activation`` at every pass: a changed one acts at predict,
    at a warm-start fit and at partial_fit (wxb kept the layers it had built)."""
    X, y = blobs(rng)
    settings = _sgd_settings(rng)
    ours, theirs = MLPClassifier(**settings).fit(X, y), SkClassifier(**settings).fit(X, y)
    for est in (ours, theirs):
        est.set_params(activation="tanh")
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-12)
    for step in ("fit", "partial_fit"):
        for est in (ours, theirs):
            getattr(est, step)(X, y)
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-12)
    assert [type(m).__name__ for m in ours.to_wxb()] == ["Dense", "Tanh", "Dense"]


def test_dropout_changed_after_fit_acts(rng):
    """A dropout rate changed by set_params is the one the next fit trains with: switched
    off, the fit is scikit-learn's own; switched on, the masks act, reproducibly."""
    X, y = blobs(rng)
    settings = _sgd_settings(rng)
    ours = MLPClassifier(**settings, dropout=0.5).fit(X, y)
    ours.set_params(dropout=0.0)
    theirs = SkClassifier(**settings).fit(X, y)
    theirs.coefs_ = [c.copy() for c in ours.coefs_]  # scikit-learn from ours' weights
    theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
    ours.fit(X, y)
    theirs.fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-12)
    assert not any(isinstance(m, wxb.nn.Dropout) for m in ours.to_wxb())

    plain, masked, again = (MLPClassifier(**settings).fit(X, y) for _ in range(3))
    for est in (masked, again):
        est.set_params(dropout=0.5)
    for est in (plain, masked, again):
        est.partial_fit(X, y)
    assert not np.allclose(plain.coefs_[0], masked.coefs_[0])  # the masks acted
    np.testing.assert_array_equal(masked.coefs_[0], again.coefs_[0])


@pytest.mark.parametrize("early_stopping", [False, True])
def test_memory_mapped_load_trains_on(rng, tmp_path, early_stopping):
    """joblib.load(mmap_mode="r") hands back read-only arrays: the loaded estimator
    predicts, and keeps training (warm_start, early stopping's best weights included)
    as a copy loaded into memory does."""
    joblib = pytest.importorskip("joblib")
    X = rng.standard_normal((200, 5))
    y = X @ rng.standard_normal(5)
    settings = {**FAST, "max_iter": 3}  # short: the next fit finds new best weights
    est = MLPRegressor(**settings, early_stopping=early_stopping, warm_start=True, random_state=0)
    est.fit(X, y)
    path = joblib.dump(est, tmp_path / "mlp.joblib")[0]
    mapped, loaded = joblib.load(path, mmap_mode="r"), joblib.load(path)
    np.testing.assert_array_equal(mapped.predict(X), est.predict(X))
    for model in (mapped, loaded):
        model.set_params(max_iter=30).fit(X, y)
    if early_stopping:
        assert max(loaded.validation_scores_[-loaded.n_iter_ :]) > est.best_validation_score_
    np.testing.assert_array_equal(mapped.predict(X), loaded.predict(X))


def test_pickled_copy_with_dropout_trains_on_as_the_original(rng):
    """The masks' generators travel with a pickle or a deep copy: the copy's next epochs
    are the original's, bit for bit (they were drawn from fresh entropy)."""
    import copy

    X, y = blobs(rng)
    est = MLPClassifier(**FAST, dropout=0.3, random_state=int(rng.integers(1 << 30)))
    est.set_params(warm_start=True).fit(X, y)
    copies = [pickle.loads(pickle.dumps(est)), copy.deepcopy(est)]
    for model in (est, *copies):
        model.fit(X, y)
    for other in copies:
        np.testing.assert_array_equal(other.predict_proba(X), est.predict_proba(X))


def test_from_sklearn_leaves_every_generator_where_it_was(rng):
    """Converting draws nothing from the source's RandomState (a copy of it goes with the
    wxb estimator, as clone gives) nor from NumPy's global generator; both estimators
    then go on as scikit-learn's would."""
    X, y = blobs(rng)
    seed = int(rng.integers(1 << 30))
    settings = {"hidden_layer_sizes": (8,), "max_iter": 3, "random_state": None}
    source = SkClassifier(**settings, warm_start=True).set_params(
        random_state=np.random.RandomState(seed)
    )
    source.fit(X, y)
    untouched = SkClassifier(**settings, warm_start=True).set_params(
        random_state=np.random.RandomState(seed)
    )
    untouched.fit(X, y)
    ours = MLPClassifier.from_sklearn(source)
    assert ours.random_state is not source.random_state
    for est in (ours, source, untouched):
        est.fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), untouched.predict_proba(X), atol=1e-12)
    np.testing.assert_array_equal(source.predict_proba(X), untouched.predict_proba(X))

    fitted = SkClassifier(**settings).fit(X, y)
    np.random.seed(seed)
    expected = np.random.rand()
    np.random.seed(seed)
    MLPClassifier.from_sklearn(fitted)
    assert np.random.rand() == expected


def test_from_sklearn_takes_wxbs_own_estimator(rng):
    """from_sklearn admits an estimator of its own name: wxb's own converts too, keeping
    its wxb parameters (dtype, dropout), or the dtype asked for."""
    X, y = blobs(rng)
    source = MLPClassifier(**FAST, dtype="float32", dropout=0.2, random_state=0).fit(X, y)
    for convert in (MLPClassifier.from_sklearn, wxb.interop.estimator_from_sklearn):
        copied = convert(source)
        assert copied.get_params() == source.get_params()
        np.testing.assert_array_equal(copied.predict_proba(X), source.predict_proba(X))
    wide = MLPClassifier.from_sklearn(source, dtype="float64")
    assert wide.dtype == "float64" and wide.coefs_[0].dtype == np.float64
    # float32 rounds each logit's sums (5 + 1 terms, then 12 + 1 through |W₂|) by up to
    # k·eps32·Σ|terms|, and p = exp(z − lse z) carries twice the row's worst of that as
    # a relative error: 1e-5 alone was 0.59 of it for a tail probability of 1e-15
    (W1, W2), (b1, b2) = wide.coefs_, wide.intercepts_
    eps32 = float(np.finfo(np.float32).eps)
    terms1 = np.abs(X) @ np.abs(W1) + np.abs(b1)
    terms2 = np.maximum(X @ W1 + b1, 0) @ np.abs(W2) + np.abs(b2)
    z_off = eps32 * (6 * terms1 @ np.abs(W2) + 13 * terms2)
    relative = np.expm1(2 * z_off.max(axis=1, keepdims=True) + 8 * eps32)
    p, p32 = wide.predict_proba(X), source.predict_proba(X)
    off = np.abs(p32 - p)
    assert np.all(off <= relative * p + np.finfo(np.float32).tiny), off.max()
    reg = MLPRegressor(**FAST, solver="adamw", random_state=0).fit(X, X[:, 0])
    np.testing.assert_array_equal(MLPRegressor.from_sklearn(reg).predict(X), reg.predict(X))
