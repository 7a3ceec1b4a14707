"""wxb.sklearn against scikit-learn's MLPs on the options and call sequences the other
sklearn tests leave out (L-BFGS's stops by max_iter and max_fun, …): each test draws
its data and settings fresh, fits both estimators with the same ``random_state`` and
compares what a user sees (regression tests for the defects found)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor

from wxb.sklearn import MLPClassifier, MLPRegressor


def _task(rng: np.random.Generator, task: str):
    n, features = int(rng.integers(20, 120)), int(rng.integers(1, 5))
    X = rng.standard_normal((n, features))
    signal = X @ rng.standard_normal((features, 3)) + 0.3 * rng.standard_normal((n, 3))
    if task == "regressor":
        return X, signal[:, 0], SkRegressor, MLPRegressor
    y = signal.argmax(axis=1)
    y[:3] = [0, 1, 2]
    return X, y, SkClassifier, MLPClassifier


def _fit_caught(est, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, y)
    return [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]


@pytest.mark.parametrize("task", ["classifier", "regressor"])
def test_lbfgs_stopped_early_warns_as_sklearn(seeded, task):
    # L-BFGS stopped by max_iter or max_fun: scikit-learn's ConvergenceWarning ends
    # with its advice to scale the data; wxb's left that paragraph out
    rng = seeded.rng
    X, y, sk_cls, our_cls = _task(rng, task)
    params = {
        "hidden_layer_sizes": (int(rng.integers(1, 6)),),
        "solver": "lbfgs",
        "max_iter": int(rng.integers(1, 6)),
        "max_fun": int(rng.integers(1, 8)) if rng.random() < 0.5 else 15000,
        "random_state": int(rng.integers(2**31)),
    }
    what = seeded.msg(f"{task} n={len(X)} {params}")
    ref = _fit_caught(sk_cls(**params), X, y)
    ours = _fit_caught(our_cls(**params), X, y)
    assert ref, what  # (a stop within a few iterations or evaluations)
    assert ours == ref, what


def _relative_error(ours, ref) -> float:
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    return float(np.max(np.abs(ours - ref))) / max(float(np.max(np.abs(ref))), 1e-300)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_numpy_float_settings_round_as_in_sklearn(seeded, solver):
    # beta_1/beta_2 (Adam) and power_t (SGD's invscaling) as NumPy float32 or float16 (a
    # grid of such values): scikit-learn computes 1 − β, η·√(1 − β₂ᵗ)/(1 − β₁ᵗ) and
    # (t + 1)^power_t in that type; wxb made floats of them, and its weights were 1e-8
    # (float32) to 1e-4 (float16) away from scikit-learn's after 20 epochs
    rng = seeded.rng
    X, y, sk_cls, our_cls = _task(rng, "regressor" if rng.random() < 0.5 else "classifier")
    kind = (np.float32, np.float16)[int(rng.integers(2))]
    params = {
        "hidden_layer_sizes": (int(rng.integers(1, 6)),),
        "solver": solver,
        "batch_size": int(rng.integers(5, 30)),
        "learning_rate_init": float(10 ** rng.uniform(-3, -1.7)),
        "max_iter": int(rng.integers(5, 20)),
        "tol": 0.0,
        "random_state": int(rng.integers(2**31)),
    }
    if rng.random() < 0.5:
        params["learning_rate_init"] = kind(params["learning_rate_init"])
    if solver == "adam":
        params["beta_1"] = kind(rng.uniform(0.1, 0.95))
        params["beta_2"] = kind(rng.uniform(0.9, 0.999))
    else:
        params["learning_rate"] = "invscaling"
        params["power_t"] = kind(rng.uniform(0.1, 0.9))
        params["learning_rate_init"] = kind(0.1) if rng.random() < 0.5 else 0.1
    what = seeded.msg(f"{our_cls.__name__} n={len(X)} {params}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref, ours = sk_cls(**params).fit(X, y), our_cls(**params).fit(X, y)
        # and after a pickle round trip, one more epoch each (the settings travel along)
        ref = pickle.loads(pickle.dumps(ref)).partial_fit(X, y)
        ours = pickle.loads(pickle.dumps(ours)).partial_fit(X, y)
    for u, v in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_, strict=True):
        assert _relative_error(u, v) <= 1e-10, f"{what}: off by {_relative_error(u, v):.1e}"
    assert _relative_error(ours.loss_curve_, ref.loss_curve_) <= 1e-10, what
