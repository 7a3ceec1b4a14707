"""wxb.sklearn against scikit-learn's MLPs on the options and call sequences the other
sklearn tests leave out (L-BFGS's stops by max_iter and max_fun, …): each test draws
its data and settings fresh, fits both estimators with the same ``random_state`` and
compares what a user sees (regression tests for the defects found)."""

from __future__ import annotations

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
