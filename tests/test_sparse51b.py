"""SciPy sparse X where sparse51 left it dense: a tensor of it, wxb.explain, diagnose's
rows, a distributed fit, and wxb.sklearn's predict, each compared with the same data
dense (and, where a sparse X was made dense whole or Wᵀ copied, with a memory bound)."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
from rounding import affine_terms, rounding_atol

import wxb
import wxb.nn.functional as F
from wxb import nn
from wxb.errors import DataError

sp = pytest.importorskip("scipy.sparse")

FORMATS = ("csr_matrix", "csc_matrix", "coo_matrix", "csr_array")


def _table(rng, rows, columns, density):
    X = sp.random(rows, columns, density=density, format="csr", random_state=rng)
    form = str(rng.choice(FORMATS))
    return getattr(sp, form)(X), X.toarray(), form


def _model(rng, columns, outputs=2, hidden=5):
    seed = int(rng.integers(1 << 30))
    return nn.Sequential(
        nn.Dense(columns, hidden, seed=seed, dtype="float64"),
        nn.ReLU(),
        nn.Dense(hidden, outputs, seed=seed + 1, dtype="float64"),
    )


def test_a_tensor_of_sparse_rows_is_refused_in_one_line_and_model_x_is_the_dense_result(seeded):
    """wxb.tensor(X), Tensor(X) and F.linear(X, W) on a SciPy sparse X said "setting an
    array element with a sequence" (NumPy read X as one object); torch.tensor refuses it
    too. model(X) takes it, as predict does: its output is the dense rows' up to the
    sparse sums' order (sparse52: the first Dense multiplies the CSR rows)."""
    rng = seeded.rng
    X, dense, form = _table(rng, int(rng.integers(2, 40)), int(rng.integers(2, 60)), 0.3)
    model = _model(rng, dense.shape[1])
    where = seeded.msg(form)
    for make in (
        lambda: wxb.tensor(X),
        lambda: wxb.Tensor(X),
        lambda: F.linear(X, model[0].weight, model[0].bias),
    ):
        with pytest.raises(DataError, match=rf"SciPy sparse {type(X).__name__} .*toarray\(\)"):
            make()
    out = model(X).data
    W1, b1 = model[0].weight.data, model[0].bias.data
    W2, b2 = model[2].weight.data, model[2].bias.data
    expected = np.maximum(dense @ W1.T + b1, 0) @ W2.T + b2  # (float64: the same sums)
    # two orders of the same sums, through ReLU (1-Lipschitz): rounding.py's bound
    terms = affine_terms(affine_terms(dense, W1.T, b1), W2.T, b2)
    atol = rounding_atol(terms, dense.shape[1] + W2.shape[1] + 2)
    np.testing.assert_allclose(out, expected, rtol=0, atol=atol, err_msg=where)
    np.testing.assert_allclose(out, model(dense).data, rtol=0, atol=atol, err_msg=where)


def test_explain_makes_only_the_sample_rows_of_a_sparse_x_dense(seeded):
    """explain shows the first sample_rows rows, yet made all of a sparse X dense first
    (here 64 MB for 4 rows). It now slices the rows sparse; the report is the one of the
    same data dense."""
    rng = seeded.rng
    X, dense, form = _table(rng, int(rng.integers(20, 60)), int(rng.integers(10, 80)), 0.2)
    y = rng.integers(0, 2, X.shape[0])
    model = _model(rng, dense.shape[1])
    sample = int(rng.integers(1, 8))
    where = seeded.msg(f"{form}, sample_rows {sample}")
    ours = wxb.explain(model, X, y, sample_rows=sample)
    assert str(ours) == str(wxb.explain(model, dense, y, sample_rows=sample)), where
    assert str(wxb.explain(model, X, y, sample_rows=None)) == str(
        wxb.explain(model, dense, y, sample_rows=None)
    ), where

    rows, columns = 2000, 4000  # dense: 64 MB
    X = sp.random(rows, columns, density=1e-3, format="csr", random_state=rng)
    y = rng.integers(0, 2, rows)
    model = _model(rng, columns)
    wxb.explain(model, X[:8], y[:8])  # (the imports a first explain loads)
    tracemalloc.start()
    try:
        wxb.explain(model, X, y, sample_rows=4)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the sample's rows, the model's twin (4 × 4,000 weights) and the report's arrays
    assert peak < rows * columns * 8 / 8, (peak, seeded.msg("explain's peak"))


def test_diagnose_and_a_distributed_fit_on_sparse_rows_are_the_dense_runs(seeded):
    """Checks of what sparse51 left as it was: diagnose's pass over the first 256 rows
    (made dense, those rows alone) gives the dense run's figures to rounding (the sparse
    products' sums run in another order), and a one-rank distributed fit, which reads X
    as CSR batches since sparse52 (it made X dense whole), is the dense run to rounding."""
    rng = seeded.rng
    n, columns = int(rng.integers(260, 400)), int(rng.integers(20, 90))
    X, dense, form = _table(rng, n, columns, float(rng.uniform(0.05, 0.3)))
    y = rng.integers(0, 2, n)
    where = seeded.msg(form)
    options = dict(epochs=2, batch_size=int(rng.integers(16, 64)), verbose=0)
    seed = int(rng.integers(1 << 30))
    a = _model(rng, columns)
    b = _model(rng, columns)
    b.load_state_dict(a.state_dict())
    ha = wxb.fit(a, X, y, seed=seed, diagnose=True, **options)
    hb = wxb.fit(b, dense, y, seed=seed, diagnose=True, **options)
    assert len(ha.diagnostics) == len(hb.diagnostics) == 2, where
    for epoch_a, epoch_b in zip(ha.diagnostics, hb.diagnostics, strict=True):
        for la, lb in zip(epoch_a["layers"], epoch_b["layers"], strict=True):
            assert la.keys() == lb.keys(), where
            for key, value in la.items():
                if isinstance(value, float):
                    np.testing.assert_allclose(value, lb[key], rtol=1e-9, err_msg=where + key)
                else:
                    assert value == lb[key], (key, where)

    a = _model(rng, columns)
    b = _model(rng, columns)
    b.load_state_dict(a.state_dict())
    ha = wxb.fit(a, X, y, seed=seed, distributed=True, **options)
    hb = wxb.fit(b, dense, y, seed=seed, distributed=True, **options)
    # (sparse52: CSR batches there too, each sum in another order: ~1e-14 of the terms)
    for key in hb.history:
        np.testing.assert_allclose(ha.history[key], hb.history[key], rtol=1e-11, err_msg=where)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        scale = float(np.abs(q.data).max())
        np.testing.assert_allclose(p.data, q.data, rtol=0, atol=1e-11 * scale, err_msg=where)


def test_sklearn_predict_multiplies_sparse_chunks_by_the_plans_product(seeded, monkeypatch):
    """wxb.sklearn's predict computed each chunk's X·Wᵀ with SciPy's X @ W.T, which copies
    all of Wᵀ (C-contiguous) per chunk: 8 MB here for 300 rows touching 9,000 of 65,536
    columns. It now goes through ops.sparse_rows_by_weight, the planned first Dense's
    product, which gathers the columns of W a chunk touches; the outputs are the dense
    rows' to rounding, over several chunks."""
    import wxb.sklearn as wxb_sklearn
    from wxb.sklearn import MLPClassifier, MLPRegressor

    rng = seeded.rng
    calls = []
    product = wxb.ops.sparse_rows_by_weight

    def counted(X, W, out):
        calls.append(X.shape[0])
        return product(X, W, out)

    monkeypatch.setattr(wxb.ops, "sparse_rows_by_weight", counted)
    n, columns = int(rng.integers(40, 120)), int(rng.integers(10, 200))
    X, dense, form = _table(rng, n, columns, float(rng.uniform(0.02, 0.3)))
    chunk = int(rng.integers(1, n + 3))
    monkeypatch.setattr(wxb_sklearn, "_PREDICT_ROWS", chunk)
    where = seeded.msg(f"{form}, chunks of {chunk}")
    params = dict(hidden_layer_sizes=(6,), max_iter=5, random_state=int(rng.integers(1 << 30)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (not converged)
        clf = MLPClassifier(**params).fit(dense, rng.integers(0, 3, n))
        reg = MLPRegressor(**params).fit(dense, rng.normal(size=n))
    for estimator, method in ((clf, "predict_proba"), (reg, "predict")):
        calls.clear()
        ours, theirs = getattr(estimator, method)(X), getattr(estimator, method)(dense)
        # the chunks' sums, over each row's non-zeros: float64 rounding, ~1e-15 of them
        scale = float(np.abs(theirs).max())
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12 * scale, err_msg=where)
        assert calls == [min(chunk, n - a) for a in range(0, n, chunk)], (calls, where)

    monkeypatch.setattr(wxb_sklearn, "_PREDICT_ROWS", 4096)
    rows, columns = 300, 2**16
    X = sp.random(rows, columns, density=30 / columns, format="csr", random_state=rng)
    clf = MLPClassifier(hidden_layer_sizes=(16,), batch_size=100, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, rng.integers(0, 2, rows))
    clf.predict_proba(X[:5])
    weight_bytes = clf.coefs_[0].nbytes  # 8 MB
    tracemalloc.start()
    try:
        clf.predict_proba(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # ≤ 9,000 columns of W gathered (1.2 MB) and the chunk's outputs
    assert peak < weight_bytes / 2, (peak, weight_bytes, seeded.msg("predict's peak"))
