"""scikit-learn's own estimator checks (``parametrize_with_checks``) on wxb.sklearn.

Settings: small networks and few epochs to keep the checks fast, with learning rates
that reach the checks' accuracy thresholds within them; every solver; the dtype
following X (float64 for the checks' data) and forced to float32.

scikit-learn's own ``MLPClassifier``/``MLPRegressor`` pass every check with the
float64 settings below (verified with scikit-learn 1.9.1). The one expected failure
is float32-only, and ``test_float32_failure_is_sklearns_too`` shows scikit-learn's MLP
failing it the same way when it trains in float32 (on float32 X, its equivalent of
``dtype="float32"``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor
from sklearn.utils.estimator_checks import (
    check_sample_weight_equivalence_on_dense_data,
    parametrize_with_checks,
)

from wxb.sklearn import MLPClassifier, MLPRegressor

SMALL = {"hidden_layer_sizes": (16,), "max_iter": 25}
ADAM = {**SMALL, "learning_rate_init": 0.02}
ESTIMATORS = [
    MLPClassifier(**ADAM),
    MLPClassifier(**SMALL, solver="sgd", learning_rate_init=0.1),
    MLPClassifier(**SMALL, solver="lbfgs"),
    MLPClassifier(**ADAM, dtype="float32"),
    MLPRegressor(**ADAM),
    MLPRegressor(**SMALL, solver="sgd", learning_rate_init=0.01),
    MLPRegressor(**SMALL, solver="lbfgs"),
    MLPRegressor(**ADAM, dtype="float32"),
]

FLOAT32_EQUIVALENCE = (
    "float32 arithmetic: weighting a row by 2 and repeating it sum in different orders, "
    "and after 25 epochs the predictions differ by ~1 float32 ulp, above the check's "
    "rtol=1e-7. scikit-learn's MLP trained on float32 X fails it the same way "
    "(test_float32_failure_is_sklearns_too)."
)


def expected_failed_checks(estimator) -> dict[str, str]:
    if estimator.dtype == "float32":
        return {
            "check_sample_weight_equivalence_on_dense_data": FLOAT32_EQUIVALENCE,
            "check_sample_weight_equivalence_on_sparse_data": FLOAT32_EQUIVALENCE,
        }
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_check(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


class _SkClassifier32(SkClassifier):
    """scikit-learn's MLPClassifier computing in float32, as on float32 data."""

    def fit(self, X, y, sample_weight=None):
        return super().fit(np.asarray(X, np.float32), y, sample_weight=sample_weight)

    def predict(self, X):
        return super().predict(np.asarray(X, np.float32))

    def predict_proba(self, X):
        return super().predict_proba(np.asarray(X, np.float32))


class _SkRegressor32(SkRegressor):
    """scikit-learn's MLPRegressor computing in float32, as on float32 data."""

    def fit(self, X, y, sample_weight=None):
        return super().fit(np.asarray(X, np.float32), y, sample_weight=sample_weight)

    def predict(self, X):
        return super().predict(np.asarray(X, np.float32))


@pytest.mark.parametrize("estimator", [_SkClassifier32(**ADAM), _SkRegressor32(**ADAM)])
def test_float32_failure_is_sklearns_too(estimator):
    """The expected failure above is scikit-learn's too, with the same settings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.raises(AssertionError, match="not equivalent"):
            check_sample_weight_equivalence_on_dense_data(type(estimator).__name__, estimator)
