"""wxb.sklearn dropped into scikit-learn code: cases where it crashed, or answered
otherwise than scikit-learn's MLPs, found by comparing the two (regression tests)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse
from scipy.special import softmax

import wxb.sklearn as wxb_sklearn
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


@pytest.mark.parametrize("weighted", [False, True])
def test_lbfgs_on_large_sparse_x_goes_by_chunks(rng, monkeypatch, weighted):
    # "lbfgs" densified a sparse X whole: 4000 x 2**17 TF-IDF-like rows took 3.9 GiB and
    # raised MemoryError where scikit-learn's sparse products need a few MB. Past a
    # budget it now densifies chunks; the loss and gradients are the same sums.
    n, d = 90, 40
    X = scipy.sparse.random(n, d, density=0.2, format="csr", random_state=rng)
    y = rng.integers(0, 3, n)
    sw = None
    if weighted:
        sw = rng.uniform(0.2, 3, n)
        sw[10:25] = 0  # a whole chunk of weight 0
    params = dict(solver="lbfgs", hidden_layer_sizes=(6,), max_iter=15, alpha=0.3, random_state=0)
    whole = MLPClassifier(**params).fit(X, y, sample_weight=sw)
    monkeypatch.setattr(
        wxb_sklearn, "_DENSE_ELEMENTS", 15 * d, raising=False
    )  # 24-row chunks (4 a unit)
    chunked = MLPClassifier(**params).fit(X, y, sample_weight=sw)
    assert chunked.n_iter_ == whole.n_iter_
    np.testing.assert_allclose(chunked.loss_, whole.loss_, rtol=1e-9)
    ours, theirs = chunked.coefs_ + chunked.intercepts_, whole.coefs_ + whole.intercepts_
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)

    n, d = 800, 2**15  # the dense X: 200 MiB
    X = scipy.sparse.random(n, d, density=30 / d, format="csr", random_state=rng)
    y = rng.integers(0, 2, n)
    monkeypatch.setattr(wxb_sklearn, "_DENSE_ELEMENTS", 1 << 20, raising=False)
    tracemalloc.start()
    try:
        reg = MLPRegressor(solver="lbfgs", hidden_layer_sizes=(4,), max_iter=2, random_state=0)
        reg.fit(X, y, sample_weight=None if sw is None else rng.uniform(0.5, 2, n))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * n * d // 2, peak  # (the chunks, and the plan's buffers for them)
    assert np.isfinite(reg.predict(X)).all()


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_stochastic_batches_of_wide_sparse_x_go_by_chunks(rng, monkeypatch, solver):
    # A batch of 200 rows of a HashingVectorizer's 2**20 columns took 1.6 GiB densified
    # (MemoryError under a 4 GiB limit, where scikit-learn fits in 2 s). Past a budget a
    # batch is densified a chunk of rows at a time, its gradients added up.
    n, d = 120, 30
    X = scipy.sparse.random(n, d, density=0.3, format="csr", random_state=rng)
    y = rng.integers(0, 3, n)
    sw = rng.uniform(0.2, 3, n)
    sw[:9] = 0
    params = dict(solver=solver, hidden_layer_sizes=(5,), batch_size=45, max_iter=4, alpha=0.2)
    for shuffle, weights in ((True, None), (False, sw)):
        args = dict(params, shuffle=shuffle, random_state=int(rng.integers(1000)))
        whole = MLPClassifier(**args).fit(X, y, sample_weight=weights)
        with monkeypatch.context() as patch:
            patch.setattr(wxb_sklearn, "_DENSE_ELEMENTS", 9 * d, raising=False)  # 20-row chunks
            chunked = MLPClassifier(**args).fit(X, y, sample_weight=weights)
        np.testing.assert_allclose(chunked.loss_curve_, whole.loss_curve_, rtol=1e-9)
        ours, theirs = chunked.coefs_ + chunked.intercepts_, whole.coefs_ + whole.intercepts_
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)

    n, d = 400, 2**15  # a batch of 200 dense rows: 50 MiB
    X = scipy.sparse.random(n, d, density=30 / d, format="csr", random_state=rng)
    monkeypatch.setattr(wxb_sklearn, "_DENSE_ELEMENTS", 1 << 18, raising=False)
    tracemalloc.start()
    try:
        reg = MLPRegressor(solver=solver, hidden_layer_sizes=(4,), max_iter=1, random_state=0)
        reg.fit(X, rng.standard_normal(n))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 200 * d // 2, peak
    assert np.isfinite(reg.predict(X)).all()
