"""wxb.sklearn dropped into scikit-learn code: cases where it crashed, or answered
otherwise than scikit-learn's MLPs, found by comparing the two (regression tests)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse
from scipy.special import softmax

from wxb.sklearn import MLPClassifier

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
