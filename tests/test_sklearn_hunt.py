"""wxb.sklearn dropped into scikit-learn code: cases where it crashed, or answered
otherwise than scikit-learn's MLPs, found by comparing the two (regression tests)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse
from scipy.special import softmax

from wxb.sklearn import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _relu_forward(est, X) -> np.ndarray:
    """The network's output z computed here from coefs_/intercepts_ (ReLU hidden layers)."""
    a = X
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_, strict=True)):
        a = a @ W + b
        if i < len(est.coefs_) - 1:
            a = np.maximum(a, 0)
    return np.asarray(a)


def test_sparse_predict_does_not_densify_wide_x(rng):
    # Hashed or TF-IDF features are sparse and wide (HashingVectorizer: 2**20 columns).
    # scikit-learn multiplies the sparse X by the first layer; densifying 4096 rows at a
    # time took rows x n_features floats (2**18 columns: 8 GiB) and raised MemoryError.
    n, d = 300, 2**16
    X = scipy.sparse.random(n, d, density=30 / d, format="csr", random_state=rng)
    y = rng.integers(0, 3, n)
    clf = MLPClassifier(hidden_layer_sizes=(8,), batch_size=16, max_iter=1, random_state=0)
    clf.fit(X, y)
    tracemalloc.start()
    try:
        proba = clf.predict_proba(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * n * d // 10, peak  # a tenth of what the dense X takes
    np.testing.assert_allclose(proba, softmax(_relu_forward(clf, X), axis=1), rtol=1e-10)
    assert proba.dtype == np.float64


def _sparse_and_dense_fits_agree(params, X, y, sw) -> None:
    """Fits on sparse X and on it dense: the same sums but for their order (each row's
    non-zeros), so the weights agree to float64 rounding carried by a few iterations."""
    sparse = MLPClassifier(**params).fit(X, y, sample_weight=sw)
    dense = MLPClassifier(**params).fit(X.toarray(), y, sample_weight=sw)
    assert sparse.n_iter_ == dense.n_iter_
    losses = "loss_" if params["solver"] == "lbfgs" else "loss_curve_"
    np.testing.assert_allclose(getattr(sparse, losses), getattr(dense, losses), rtol=1e-9)
    ours, theirs = sparse.coefs_ + sparse.intercepts_, dense.coefs_ + dense.intercepts_
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9 * float(np.abs(b).max()))


def _fit_peak(solver, X, y, sw, max_iter) -> tuple[int, int]:
    """tracemalloc's peak of one MLPRegressor fit on X, and its weights' bytes."""
    MLPRegressor(solver=solver, hidden_layer_sizes=(4,), max_iter=1).fit(X[:20, :30], y[:20])
    tracemalloc.start()
    try:
        reg = MLPRegressor(solver=solver, hidden_layer_sizes=(4,), max_iter=max_iter,
                           random_state=0).fit(X, y, sample_weight=sw)  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.isfinite(reg.predict(X)).all()
    return peak, sum(p.nbytes for p in reg.coefs_ + reg.intercepts_)


@pytest.mark.parametrize("weighted", [False, True])
def test_lbfgs_on_large_sparse_x_stays_sparse(rng, weighted):
    # "lbfgs" densified a sparse X whole: 4000 x 2**17 TF-IDF-like rows took 3.9 GiB and
    # raised MemoryError where scikit-learn's sparse products need a few MB. (Then it
    # densified chunks of rows; since sparse51 no row is made dense: the first layer
    # multiplies X sparse.) Weights of 0, a block of rows' among them, change nothing.
    n, d = 90, 40
    X = scipy.sparse.random(n, d, density=0.2, format="csr", random_state=rng)
    y = rng.integers(0, 3, n)
    sw = None
    if weighted:
        sw = rng.uniform(0.2, 3, n)
        sw[10:25] = 0
    params = dict(solver="lbfgs", hidden_layer_sizes=(6,), max_iter=15, alpha=0.3,
                  random_state=int(rng.integers(1000)))  # fmt: skip
    _sparse_and_dense_fits_agree(params, X, y, sw)

    n, d = 800, 2**15  # the dense X: 200 MiB
    X = scipy.sparse.random(n, d, density=30 / d, format="csr", random_state=rng)
    sw = None if not weighted else rng.uniform(0.5, 2, n)
    peak, weights = _fit_peak("lbfgs", X, rng.standard_normal(n), sw, 2)
    # L-BFGS-B's 10 pairs of corrections, its workspace and SciPy's copies: ~40 arrays
    # of the weights' size (1 MiB here), nothing of X's dense size
    assert peak < 60 * weights < 8 * n * d / 3, (peak, weights)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_stochastic_batches_of_wide_sparse_x_stay_sparse(rng, solver):
    # A batch of 200 rows of a HashingVectorizer's 2**20 columns took 1.6 GiB densified
    # (MemoryError under a 4 GiB limit, where scikit-learn fits in 2 s). (Then it was
    # densified a chunk of rows at a time; since sparse51 the first layer multiplies the
    # batch sparse.) Shuffled or not, weights of 0 among them: the dense fit's numbers.
    n, d = 120, 30
    X = scipy.sparse.random(n, d, density=0.3, format="csr", random_state=rng)
    y = rng.integers(0, 3, n)
    sw = rng.uniform(0.2, 3, n)
    sw[:9] = 0
    params = dict(solver=solver, hidden_layer_sizes=(5,), batch_size=45, max_iter=4, alpha=0.2)
    for shuffle, weights in ((True, None), (False, sw)):
        args = dict(params, shuffle=shuffle, random_state=int(rng.integers(1000)))
        _sparse_and_dense_fits_agree(args, X, y, weights)

    n, d = 400, 2**15  # a batch of 200 dense rows: 50 MiB
    X = scipy.sparse.random(n, d, density=30 / d, format="csr", random_state=rng)
    peak, weights = _fit_peak(solver, X, rng.standard_normal(n), rng.uniform(0.5, 2, n), 1)
    # the weights, their gradients and the optimiser's moments: a few copies of 1 MiB
    assert peak < 12 * weights < 8 * 200 * d / 4, (peak, weights)
