"""SciPy sparse X (a TF-IDF or one-hot table) kept sparse to the first Dense layer.

fit, evaluate, predict and wxb.sklearn's estimators made each batch (predict: each chunk
of 4,096 rows) of a sparse X dense, and multiplied it dense: on 20,000 × 50,000 rows of
0.1 % non-zeros an epoch took 5.6× scikit-learn's, whose MLP multiplies X sparse. Now
the planned stack's first Dense computes Z = X·Wᵀ and ∂L/∂W = δᵀ·X as sparse × dense
products. The sums then run over each row's non-zeros alone, in another order than
BLAS's: the results are the dense path's up to rounding, checked here against the same
data dense.
"""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
from rounding import affine_terms

import wxb
from wxb import nn
from wxb.optim import SGD, Adam
from wxb.step import PlannedStep, make_step

sp = pytest.importorskip("scipy.sparse")

FORMATS = ("csr_matrix", "csc_matrix", "coo_matrix", "csr_array")
EPS32 = float(np.finfo(np.float32).eps)


def _table(rng, rows, columns, density):
    """A random sparse table (TF-IDF-like values) in a random SciPy format, and it dense."""
    X = sp.random(rows, columns, density=density, format="csr", random_state=rng)
    form = str(rng.choice(FORMATS))
    return getattr(sp, form)(X), X.toarray(), form


def _model(rng, columns, outputs, dtype, hidden=6):
    seed = int(rng.integers(1 << 30))
    return nn.Sequential(
        nn.Dense(columns, hidden, seed=seed, dtype=dtype),
        nn.ReLU(),
        nn.Dense(hidden, outputs, seed=seed + 1, dtype=dtype),
    )


def _optimizer(name, model):
    params = model.parameters()
    return {
        "sgd": lambda: SGD(params, lr=0.1, momentum=0.9),
        "sgd+decay": lambda: SGD(params, lr=0.1, momentum=0.9, weight_decay=0.01),
        "adam": lambda: Adam(params, lr=0.01),
        "adam+decay": lambda: Adam(params, lr=0.01, weight_decay=0.01),
    }[name]()


def _counted(monkeypatch, name):
    """Calls of ``wxb.ops.<name>`` (the first Dense's sparse products), counted."""
    calls = []
    product = getattr(wxb.ops, name)

    def counted(*args):
        calls.append(args[1].shape if name == "sparse_weight_grad" else args[0].shape)
        return product(*args)

    monkeypatch.setattr(wxb.ops, name, counted)
    return calls


@pytest.mark.parametrize("optimizer", ["sgd", "sgd+decay", "adam", "adam+decay"])
@pytest.mark.parametrize("task", ["classifier", "regressor"])
def test_fit_on_sparse_rows_is_the_dense_fit_in_float64(seeded, monkeypatch, optimizer, task):
    rng = seeded.rng
    forwards = _counted(monkeypatch, "sparse_rows_by_weight")
    backwards = _counted(monkeypatch, "sparse_weight_grad")
    n, columns = int(rng.integers(60, 200)), int(rng.integers(30, 400))
    X, dense, form = _table(rng, n, columns, float(rng.uniform(0.02, 0.2)))
    if task == "classifier":
        outputs, loss = 3, "cross_entropy"
        y = rng.integers(0, outputs, n)
    else:
        outputs, loss = 2, "mse"
        y = dense @ rng.normal(size=(columns, outputs)) + 0.1 * rng.normal(size=(n, outputs))
    a = _model(rng, columns, outputs, "float64")
    b = _model(rng, columns, outputs, "float64")
    b.load_state_dict(a.state_dict())
    held = int(rng.integers(10, 40))
    X_val, dense_val, _ = _table(rng, held, columns, 0.1)
    y_val = y[:held]
    options = dict(loss=loss, epochs=3, batch_size=int(rng.integers(8, 40)), verbose=0)
    seed = int(rng.integers(1 << 30))
    ha = wxb.fit(a, X, y, optimizer=_optimizer(optimizer, a), seed=seed,
                 validation_data=(X_val, y_val), **options)  # fmt: skip
    hb = wxb.fit(b, dense, y, optimizer=_optimizer(optimizer, b), seed=seed,
                 validation_data=(dense_val, y_val), **options)  # fmt: skip
    where = seeded.msg(f"{form}, {optimizer}, {task}")
    assert ha.engine == hb.engine == "planned", where
    # every training batch went to the first Dense sparse, and the validation rows too
    steps = 3 * -(-n // options["batch_size"])
    assert len(backwards) == steps and len(forwards) == steps + 3, (len(forwards), where)
    # Each sum differs from BLAS's in order alone (≤ k·eps·Σ|terms| ≈ 1e-14 of the terms
    # here); three epochs of updates carry that, Adam's divided by √v̂ + ε: ~1e-12 of
    # the weights' size, as the brief asks of float64
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        scale = float(np.abs(q.data).max())
        np.testing.assert_allclose(p.data, q.data, rtol=0, atol=1e-11 * scale, err_msg=where)
    for key in ha.history:
        np.testing.assert_allclose(ha.history[key], hb.history[key], rtol=1e-11, err_msg=where)
    chunk = int(rng.integers(1, n + 5))
    out_a, out_b = a.predict(X, batch_size=chunk), b.predict(dense, batch_size=chunk)
    scale = float(np.abs(out_b).max())
    np.testing.assert_allclose(out_a, out_b, rtol=0, atol=1e-11 * scale, err_msg=where)
    figures_a, figures_b = wxb.evaluate(a, X, y, loss=loss), wxb.evaluate(b, dense, y, loss=loss)
    for key in figures_b:
        np.testing.assert_allclose(figures_a[key], figures_b[key], rtol=1e-11, err_msg=where)


def test_a_planned_step_on_sparse_rows_is_float32_rounding_of_the_exact_gradient(seeded):
    """One step in float32: Z = X·Wᵀ + b and ∂L/∂W = δᵀ·X from the CSR batch are within
    float32's rounding of the same sums in float64 (the bound from the terms' sizes)."""
    rng = seeded.rng
    batch, columns, outputs = int(rng.integers(20, 120)), int(rng.integers(50, 600)), 3
    X, dense, form = _table(rng, batch, columns, float(rng.uniform(0.01, 0.1)))
    model = nn.Sequential(nn.Dense(columns, outputs, seed=int(rng.integers(1 << 30))))
    y = rng.normal(size=(batch, outputs)).astype(np.float32)
    W0 = model[0].weight.data.astype(np.float64)
    b0 = model[0].bias.data.astype(np.float64)
    step = make_step(model, "mse", SGD(model.parameters(), lr=0.0))  # lr 0: W stays W0
    assert isinstance(step, PlannedStep)
    step(X.tocsr().astype(np.float32), y)
    grad = model[0].weight.grad.astype(np.float64)
    # float64: the exact sums up to 1e-16, far below float32's rounding
    x = dense.astype(np.float32).astype(np.float64)
    z = x @ W0.T + b0
    delta = (z - y) / batch  # (wxb's "mse" is the seed's ½(ŷ − y)² summed over outputs)
    expected = delta.T @ x
    # float32: Z's sums of ≤ k + 1 terms off by ≤ (k + 1)·eps·(|X|·|W|ᵀ + |b|); δ carries
    # that (/B) and one rounding of its own per operation; δᵀ·X sums B terms
    k = np.diff(X.tocsr().indptr).max() + 1
    dz = (k + 1) * EPS32 * affine_terms(x, W0.T, b0)
    ddelta = dz / batch + 4 * EPS32 * np.abs(delta)
    bound = np.abs(ddelta).T @ np.abs(x) + (batch + 1) * EPS32 * affine_terms(delta.T, x)
    assert (np.abs(grad - expected) <= bound).all(), seeded.msg(form)
    out = model.predict(X).astype(np.float64)  # (the weights are W0: lr 0)
    assert (np.abs(out - z) <= dz + EPS32 * np.abs(z)).all(), seeded.msg(form)


def test_fit_evaluate_and_predict_never_make_a_sparse_batch_dense(seeded):
    """A dense batch of 256 rows of 20,000 columns is 41 MB; fit gathered each batch into
    one, and predict made its chunk of up to 4,096 rows dense (here all of X, 160 MB). The
    sparse path holds the batch's non-zeros and arrays of the weights' size (4 × 20,000),
    far below half a dense batch. A model whose first layer is not a Dense (Dropout,
    Standardize) still makes each batch dense, and trains as on X's dense copy."""
    rng = seeded.rng
    n, columns, batch = 1000, 20_000, 256
    X = sp.random(n, columns, density=5e-4, format="csr", random_state=rng)
    y = rng.integers(0, 2, n)
    model = _model(rng, columns, 2, "float64", hidden=4)
    # the imports and kernels a first sparse fit loads are slow to trace
    wxb.fit(_model(rng, 50, 2, "float64"), X[:64, :50], y[:64], epochs=1, verbose=0)
    dense_batch = batch * columns * 8
    tracemalloc.start()
    try:
        wxb.fit(model, X, y, epochs=1, batch_size=batch, validation_split=0.2, verbose=0)
        fit_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        wxb.evaluate(model, X, y)
        model.predict(X)
        predict_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert fit_peak < dense_batch / 2, (fit_peak, dense_batch, seeded.msg("fit"))
    assert predict_peak < dense_batch / 2, (predict_peak, dense_batch, seeded.msg("predict"))

    # not a Dense first: the batch made dense, the same run as on the dense copy, bit for bit
    small, dense_small, form = _table(rng, 80, 30, 0.2)
    y_small = rng.integers(0, 2, 80)
    mean, scale = rng.normal(size=30), rng.uniform(0.5, 2, 30)
    for first in ("dropout", "standardize"):
        a, b = (
            nn.Sequential(
                nn.Dropout(0.2) if first == "dropout" else nn.Standardize(mean, scale),
                *_model(np.random.default_rng(seeded.seed), 30, 2, "float32"),
            )
            for _ in range(2)
        )
        seed = int(rng.integers(1 << 30))
        ha = wxb.fit(a, small, y_small, epochs=2, batch_size=16, seed=seed, verbose=0)
        hb = wxb.fit(b, dense_small, y_small, epochs=2, batch_size=16, seed=seed, verbose=0)
        where = seeded.msg(f"{first} first, {form}")
        assert ha.engine == "planned", (ha.engine_reason, where)
        assert ha.history == hb.history, where
        for p, q in zip(a.parameters(), b.parameters(), strict=True):
            np.testing.assert_array_equal(p.data, q.data, err_msg=where)
        np.testing.assert_array_equal(a.predict(small), b.predict(dense_small), err_msg=where)


@pytest.mark.parametrize("solver", ["sgd", "adam", "adamw", "lbfgs"])
def test_the_estimators_train_on_sparse_rows_as_on_dense_ones(seeded, solver):
    from wxb.sklearn import MLPClassifier, MLPRegressor

    rng = seeded.rng
    n, columns = int(rng.integers(60, 160)), int(rng.integers(20, 300))
    X, dense, form = _table(rng, n, columns, float(rng.uniform(0.03, 0.2)))
    labels = rng.integers(0, 3, n)
    targets = dense @ rng.normal(size=columns)
    alpha = float(rng.choice([0.0, 1e-3, 0.1]))
    random_state = int(rng.integers(1 << 30))
    where = seeded.msg(f"{solver}, {form}, alpha {alpha}")
    for kind, y in ((MLPClassifier, labels), (MLPRegressor, targets)):
        params = dict(hidden_layer_sizes=(5,), solver=solver, alpha=alpha, max_iter=8,
                      batch_size=int(rng.integers(10, 50)), random_state=random_state)  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (not converged in 8 iterations)
            a, b = kind(**params).fit(X, y), kind(**params).fit(dense, y)
        for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
            scale = float(np.abs(q).max())
            np.testing.assert_allclose(p, q, rtol=0, atol=1e-10 * scale, err_msg=where)
        if kind is MLPClassifier:
            np.testing.assert_allclose(
                a.predict_proba(X), b.predict_proba(dense), rtol=0, atol=1e-10, err_msg=where
            )
        np.testing.assert_allclose(a.score(X, y), b.score(dense, y), rtol=1e-9, err_msg=where)

    # no batch made dense: 200 rows of 20,000 columns are 32 MB dense (lbfgs: all of X)
    n, columns = 600, 20_000
    X = sp.random(n, columns, density=5e-4, format="csr", random_state=rng)
    y = rng.integers(0, 2, n)
    MLPClassifier(hidden_layer_sizes=(2,), solver=solver, max_iter=1).fit(X[:50, :40], y[:50])
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = MLPClassifier(hidden_layer_sizes=(4,), solver=solver, max_iter=2).fit(X, y)
        est.predict_proba(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    dense_batch = 200 * columns * 8
    # L-BFGS-B keeps 10 pairs of correction vectors and a workspace: ~(2·10 + 5) arrays
    # of the parameters' size, and scipy's copies of them (old code: all of X, 96 MB)
    weights = sum(p.size for p in est.coefs_ + est.intercepts_) * 8
    allowed = dense_batch / 2 + (60 * weights if solver == "lbfgs" else 0)
    assert peak < allowed, (peak, dense_batch, seeded.msg(solver))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_first_dense_products_on_touched_columns_are_scipys_sums(seeded, dtype):
    """Z = X·Wᵀ and ∂L/∂W = δᵀ·X on the columns a batch touches (a gather of W's, a
    scatter of ∂L/∂W's into zeros) are SciPy's own sparse × dense sums, bit for bit, at
    any density (under half the columns touched, or not; no row, or no non-zero)."""
    rng = seeded.rng
    for density in (0.0, 0.005, 0.05, 0.5, 1.0):
        rows, columns, outputs = int(rng.integers(1, 60)), int(rng.integers(20, 300)), 4
        X = sp.random(rows, columns, density=density, format="csr", random_state=rng)
        X = getattr(sp, str(rng.choice(["csr_matrix", "csr_array"])))(X.astype(dtype))
        W = rng.normal(size=(outputs, columns)).astype(dtype)
        delta = rng.normal(size=(rows, outputs)).astype(dtype)
        Z = wxb.ops.sparse_rows_by_weight(X, W, np.empty((rows, outputs), dtype))
        G = wxb.ops.sparse_weight_grad(delta, X, np.full((outputs, columns), np.nan, dtype))
        where = seeded.msg(f"density {density}, {type(X).__name__}")
        np.testing.assert_array_equal(Z, X @ np.ascontiguousarray(W.T), err_msg=where)
        np.testing.assert_array_equal(G, (X.T @ delta).T, err_msg=where)
        dense = X.toarray().astype(np.float64)  # and the sums themselves, to rounding
        eps = float(np.finfo(dtype).eps)
        bound = 2 * (columns + rows) * eps * affine_terms(dense, W.T)
        assert (np.abs(Z - dense @ W.T.astype(np.float64)) <= bound).all(), where
        bound = 2 * (columns + rows) * eps * affine_terms(delta.T, dense)
        assert (np.abs(G - delta.T.astype(np.float64) @ dense) <= bound).all(), where
