"""wxb.sklearn used as scikit-learn users use its estimators (pipelines, searches,
meta-estimators, set_config, sparse inputs): cases where it answered otherwise than
scikit-learn's MLPs, found by comparing the two (regression tests)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse
import sklearn
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor

from wxb.sklearn import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning", "ignore::RuntimeWarning"
)


@pytest.fixture
def seeded(seeded):  # (conftest's, so WXB_TEST_SEED=<the seed printed> replays a failure)
    seed = int(seeded.seed % 2**32)  # (scikit-learn's random_state is below 2³²)
    return seed, np.random.default_rng(seed)


def _pair(task: str, seed: int, **params):
    """wxb's estimator and scikit-learn's with the same settings (the same run, to
    rounding: tests/test_sklearn_parity.py)."""
    params = {"hidden_layer_sizes": (8,), "max_iter": 4, "random_state": seed, **params}
    if task == "classifier":
        return MLPClassifier(**params), SkClassifier(**params)
    return MLPRegressor(**params), SkRegressor(**params)


def _outputs(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


@pytest.mark.parametrize("task", ["classifier", "regressor"])
def test_sparse_rows_overflowing_the_first_layer_predict_as_sklearn(seeded, task):
    # A sparse X's first layer is a sparse product, the rest of the network then ran
    # through Sequential.predict, which checks its input: a finite row whose first-layer
    # output overflowed (±1e308 features) raised DataError 'X has inf at row r, column
    # k', k a hidden unit's index, where scikit-learn (and the dense path) predicts.
    seed, rng = seeded
    n, d = 60, 30
    X = rng.standard_normal((n, d))
    y = rng.integers(0, 3, n) if task == "classifier" else X[:, 0] - X[:, 1]
    ours, theirs = _pair(task, seed)
    ours.fit(X, y)
    theirs.fit(X, y)
    W = ours.coefs_[0]
    unit = int(np.abs(W).sum(axis=0).argmax())
    assert np.abs(W[:, unit]).sum() > 2, f"seed {seed}: the row would not overflow"
    rows = rng.choice(n, 3, replace=False)
    X[rows] = 1e308 * np.sign(W[:, unit])  # finite; the unit's input sums past 1.8e308
    for Z in (scipy.sparse.csr_matrix(X), scipy.sparse.csc_matrix(X), X):
        got, want = _outputs(ours, Z), _outputs(theirs, Z)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=f"seed {seed}")


@pytest.mark.parametrize("task", ["classifier", "regressor"])
def test_assume_finite_predicts_as_sklearn(seeded, task):
    # sklearn.set_config(assume_finite=True) skips the check of finite values (to save
    # its pass over X): scikit-learn then predicts NaN for a row holding NaN or inf and
    # the other rows as usual; wxb checked X again itself and raised DataError.
    seed, rng = seeded
    n, d = 50, 5
    X = rng.standard_normal((n, d))
    y = rng.integers(0, 2, n) if task == "classifier" else X @ rng.standard_normal(d)
    ours, theirs = _pair(task, seed)
    ours.fit(X, y)
    theirs.fit(X, y)
    bad = rng.choice(n, 4, replace=False)
    X[bad, rng.integers(0, d, 4)] = [np.nan, np.inf, -np.inf, np.nan]
    with sklearn.config_context(assume_finite=True):
        for Z in (X, X.astype(np.float32), scipy.sparse.csr_matrix(X)):
            got, want = _outputs(ours, Z), _outputs(theirs, Z)
            np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-7, err_msg=f"seed {seed}")
            assert ours.score(Z, y) == pytest.approx(theirs.score(Z, y), nan_ok=True)


@pytest.mark.parametrize("task", ["classifier", "regressor"])
def test_float32_network_refuses_float64_values_past_float32(seeded, task):
    # A float32 network (dtype="float32", or fitted on float32 X) casts the rows it
    # predicts to float32 after checking them in float64: a value past float32's range
    # (1e39) became inf, and wxb's own check then said 'X has inf at row r, column c'
    # (the sparse path: c a hidden unit's index). It is refused now as scikit-learn's
    # validate_data refuses a value too large for the dtype it casts to.
    seed, rng = seeded
    n, d = 40, 4
    X = rng.standard_normal((n, d))
    y = rng.integers(0, 3, n) if task == "classifier" else X[:, 0]
    estimator = MLPClassifier if task == "classifier" else MLPRegressor
    est = estimator(hidden_layer_sizes=(8,), max_iter=4, random_state=seed, dtype="float32")
    est.fit(X, y)
    row, col = int(rng.integers(n)), int(rng.integers(d))
    X[row, col] = rng.choice([-1, 1]) * 10.0 ** rng.uniform(39, 300)
    for Z in (X, scipy.sparse.csr_matrix(X)):
        with pytest.raises(ValueError, match=r"too large for dtype\('float32'\)"):
            _outputs(est, Z)
    X[row, col] = 0.0
    np.testing.assert_array_equal(_outputs(est, X), _outputs(est, X.astype(np.float32)))


@pytest.mark.parametrize("task", ["classifier", "regressor"])
def test_a_batch_of_weightless_rows_fails_as_in_sklearn_when_chunked(seeded, monkeypatch, task):
    # sample_weight of 0 on every row of one batch: the batch's loss is a weighted mean,
    # 0/0, and scikit-learn (as wxb's dense path) raises numpy's ZeroDivisionError. wxb's
    # path for wide sparse X, which densifies a batch a chunk of rows at a time, skipped
    # every chunk and trained on without an error, loss_ and every loss_curve_ entry inf.
    # (Sparse batches now go whole to the first layer's sparse product: the same error.)
    seed, rng = seeded
    n, d, batch = 60, 6, 10
    X = rng.standard_normal((n, d))
    y = rng.integers(0, 3, n) if task == "classifier" else X[:, 0]
    sw = rng.uniform(0.5, 2, n)
    start = batch * int(rng.integers(n // batch))
    sw[start : start + batch] = 0
    params = {"batch_size": batch, "shuffle": False, "hidden_layer_sizes": (2,)}
    ours, theirs = _pair(task, seed, **params)
    with pytest.raises(ZeroDivisionError) as error:  # 0/0: no answer to compare with
        theirs.fit(X, y, sample_weight=sw)
    message = re.escape(str(error.value))
    with pytest.raises(ZeroDivisionError, match=message):
        ours.fit(X, y, sample_weight=sw)
    Xs = scipy.sparse.csr_matrix(X)
    with pytest.raises(ZeroDivisionError, match=message):
        ours.fit(Xs, y, sample_weight=sw)
    sw[start] = 1e-3  # one row of weight: trains, as scikit-learn does
    ours.fit(Xs, y, sample_weight=sw)
    theirs.fit(Xs, y, sample_weight=sw)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9, err_msg=f"{seed}")
    np.testing.assert_allclose(_outputs(ours, X), _outputs(theirs, X), rtol=1e-9, atol=1e-12)
