"""wxb.sklearn in a pandas user's script, beside scikit-learn's MLP: a ColumnTransformer
on a DataFrame with gaps and text categories, pandas' own target dtypes (a Categorical
whose categories are not sorted, nullable booleans and integers, a one-column frame),
and a frame whose columns come in another order at predict.

A guard, not a fix: session 60 found these to follow scikit-learn (the same
``random_state`` gives the same run in float64), and no test held them. The same session
also checked, by hand: GridSearchCV and cross_val_score with n_jobs=2 (loky's processes
and joblib's threads) against n_jobs=1 and scikit-learn; clone then set_params of every
parameter; warm_start and partial_fit with settings changed between calls; ~1,500 drawn
settings and call sequences, warnings included (a loky pool takes 10 s to start here:
too slow to keep as a test; pickling, its mechanism, is tested in test_sklearn_api).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from wxb.sklearn import MLPClassifier, MLPRegressor

pd = pytest.importorskip("pandas")

SETTINGS = {"hidden_layer_sizes": (6,), "max_iter": 8, "learning_rate_init": 0.01}


def _frame(rng: np.random.Generator, n: int):
    frame = pd.DataFrame(
        {
            "height": rng.normal(170, 10, n),
            "weight": rng.normal(70, 12, n),
            "colour": rng.choice(np.array(["red", "green", "blue", None], dtype=object), n),
            "size": pd.Categorical(rng.choice(["S", "M", "L"], n), categories=["S", "M", "L"]),
        }
    )
    frame.loc[rng.random(n) < 0.15, "height"] = np.nan  # gaps, imputed in the pipeline
    return frame


def _pipeline(estimator):
    numeric = make_pipeline(SimpleImputer(), StandardScaler())
    text = OneHotEncoder(handle_unknown="ignore")  # (None is a category of its own)
    columns = ColumnTransformer(
        [("numeric", numeric, ["height", "weight"]), ("text", text, ["colour", "size"])]
    )
    return make_pipeline(columns, estimator)


def _fit_both(ours, theirs, X, y, sample_weight):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning after a few epochs: both
        return ours.fit(X, y, **sample_weight), theirs.fit(X, y, **sample_weight)


def test_frames_and_pandas_targets_follow_sklearn(seeded):
    rng = seeded.rng
    n = int(rng.integers(60, 120))
    X = _frame(rng, n)
    signal = X["weight"].to_numpy() - 70 + 5 * (X["colour"] == "red").to_numpy()
    weights = rng.uniform(0.2, 2.0, n)
    state = int(rng.integers(2**31))
    level = np.array(["low", "mid", "high"])[np.digitize(signal, [-5, 5])]
    targets = {  # categories in an order of their own: classes_ are sorted, as sklearn's
        "categorical": pd.Series(pd.Categorical(level, categories=["mid", "high", "low"])),
        "nullable boolean": pd.Series(signal > 0, dtype="boolean"),
        "nullable integer": pd.Series(np.digitize(signal, [-5, 5]) * 10 - 10, dtype="Int64"),
    }
    for name, y in targets.items():
        what = seeded.msg(f"{name} target, n={n}, random_state={state}")
        kw = {"mlpclassifier__sample_weight": weights}
        ours, theirs = _fit_both(
            _pipeline(MLPClassifier(**SETTINGS, random_state=state)),
            _pipeline(SkClassifier(**SETTINGS, random_state=state)),
            X,
            y,
            kw,
        )
        np.testing.assert_array_equal(ours.classes_, theirs.classes_, err_msg=what)
        assert ours.classes_.dtype == theirs.classes_.dtype, what
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X), err_msg=what)
        np.testing.assert_allclose(
            ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-8, atol=1e-12, err_msg=what
        )
        assert ours.score(X, y, sample_weight=weights) == theirs.score(
            X, y, sample_weight=weights
        ), what

    # a one-column frame as y: a ravelled target (with sklearn's warning), 1-D predictions
    y = pd.DataFrame({"target": signal})
    what = seeded.msg(f"regression, n={n}, random_state={state}")
    ours, theirs = _fit_both(
        _pipeline(MLPRegressor(**SETTINGS, random_state=state, early_stopping=True)),
        _pipeline(SkRegressor(**SETTINGS, random_state=state, early_stopping=True)),
        X,
        y,
        {"mlpregressor__sample_weight": weights},  # the validation scores weighted too
    )
    assert ours.predict(X).shape == theirs.predict(X).shape == (n,), what
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-8, err_msg=what)
    np.testing.assert_allclose(
        ours[-1].validation_scores_, theirs[-1].validation_scores_, rtol=1e-8, err_msg=what
    )

    # the bare estimator fitted on named columns: another order at predict is refused
    numbers = X[["height", "weight"]].fillna(170.0)
    bare = MLPClassifier(**SETTINGS, random_state=state)
    _fit_both(bare, SkClassifier(**SETTINGS, random_state=state), numbers, signal > 0, {})
    with pytest.raises(ValueError, match="same order"):
        bare.predict(numbers[["weight", "height"]])


def _outputs(est, X: np.ndarray) -> np.ndarray:
    """The network's last z, by the seed's Z = W·X + b and A = f(Z) from coefs_."""
    a = X
    for W, b in zip(est.coefs_[:-1], est.intercepts_[:-1], strict=True):
        a = np.tanh(a @ W + b)
    return a @ est.coefs_[-1] + est.intercepts_[-1]


def test_weighted_loss_is_the_weighted_objective(seeded):
    # an independent reference: loss_ of an lbfgs fit with sample weights is the weighted
    # mean of the per-row loss plus α/(2·Σw)·Σ‖W‖², recomputed from the fitted weights
    rng = seeded.rng
    n = int(rng.integers(40, 90))
    X = rng.standard_normal((n, 3))
    w = rng.uniform(0.1, 3.0, n)
    alpha = float(rng.uniform(0.1, 2.0))
    settings = {"hidden_layer_sizes": (5,), "activation": "tanh", "solver": "lbfgs"}
    settings |= {"alpha": alpha, "max_iter": 15, "random_state": int(rng.integers(2**31))}
    what = seeded.msg(f"n={n}, {settings}")
    y = np.digitize(X[:, 0] + X[:, 1], [-0.5, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier(**settings).fit(X, y, sample_weight=w)
        targets = np.c_[X @ [1.0, -2.0, 0.5], X[:, 0] ** 2]
        reg = MLPRegressor(**settings).fit(X, targets, sample_weight=w)
    penalty = [alpha / (2 * w.sum()) * sum((W**2).sum() for W in e.coefs_) for e in (clf, reg)]
    z = _outputs(clf, X)
    log_p = z - z.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    expected = -(w * log_p[np.arange(n), y]).sum() / w.sum() + penalty[0]
    np.testing.assert_allclose(clf.loss_, expected, rtol=1e-10, err_msg=what)
    # scikit-learn's squared error: ½ · the mean over outputs of each weighted mean
    squares = (w[:, None] * (_outputs(reg, X) - targets) ** 2).sum(axis=0) / w.sum()
    np.testing.assert_allclose(
        reg.loss_, 0.5 * squares.mean() + penalty[1], rtol=1e-10, err_msg=what
    )
