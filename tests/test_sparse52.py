"""SciPy sparse X off sparse51's well-tested path: a model called on it (``model(X)``,
with a graph or under no_grad), a distributed fit, and what users bring along (a frozen
first Dense, no bias, weight decay, a forward of one's own, tied weights, class and
sample weights, float32 and float64, partial_fit and warm_start, CSC/COO/csr_array, an
all-zero row, duplicate COO entries, unsorted CSR indices), each compared with the same
data dense, and the first layer's gradients with PyTorch's."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
from rounding import affine_terms, rounding_atol

import wxb
from wxb import nn
from wxb.optim import SGD, AdamW

sp = pytest.importorskip("scipy.sparse")

EPS32 = float(np.finfo(np.float32).eps)
FORMS = ("coo_duplicates", "csr_unsorted", "csc_matrix", "csr_array", "coo_array")


def _awkward(rng, rows, columns, density, dtype="float64"):
    """A sparse table as users hand it over: a random form (COO with each entry split in
    two duplicates, CSR with each row's indices reversed, CSC, csr_array), one row all
    zeros; and the table dense, as X.toarray() gives it (the dense path's input)."""
    X = sp.random(rows, columns, density=density, format="coo", random_state=rng, dtype=dtype)
    keep = X.row != int(rng.integers(rows))  # an all-zero row
    r, c, v = X.row[keep], X.col[keep], X.data[keep]
    form = str(rng.choice(FORMS))
    if form == "coo_duplicates":
        part = (v * rng.uniform(0.2, 0.8, v.shape)).astype(dtype)
        X = sp.coo_matrix(
            (np.concatenate([part, v - part]), (np.concatenate([r, r]), np.concatenate([c, c]))),
            shape=(rows, columns),
        )
    elif form == "csr_unsorted":
        csr = sp.coo_matrix((v, (r, c)), shape=(rows, columns)).tocsr()
        indices, data = csr.indices.copy(), csr.data.copy()
        for i in range(rows):
            span = slice(csr.indptr[i], csr.indptr[i + 1])
            indices[span], data[span] = indices[span][::-1], data[span][::-1]
        X = sp.csr_matrix((data, indices, csr.indptr), shape=(rows, columns))
    else:
        X = getattr(sp, form)(sp.coo_matrix((v, (r, c)), shape=(rows, columns)))
    return X, X.toarray(), form


def _stack(rng, columns, hidden, outputs, dtype, bias=True):
    seed = int(rng.integers(1 << 30))
    return nn.Sequential(
        nn.Dense(columns, hidden, bias=bias, seed=seed, dtype=dtype),
        nn.Tanh(),
        nn.Dense(hidden, outputs, seed=seed + 1, dtype=dtype),
    )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_model_called_on_sparse_rows_is_torchs_forward_and_first_layer_gradient(seeded, dtype):
    """model(X_sparse) made all of X dense (as_input); it now hands the first Dense the
    CSR rows, whose Z = X·Wᵀ and ∂L/∂W = δᵀ·X are sparse × dense. Compared with PyTorch
    in float64 (torch.sparse.mm for the first layer), with a frozen W or no bias too."""
    torch = pytest.importorskip("torch")
    rng = seeded.rng
    rows, columns = int(rng.integers(2, 60)), int(rng.integers(5, 300))
    hidden, outputs = int(rng.integers(2, 9)), int(rng.integers(1, 4))
    X, dense, form = _awkward(rng, rows, columns, float(rng.uniform(0.01, 0.3)), dtype)
    bias, frozen = bool(rng.random() < 0.6), bool(rng.random() < 0.3)
    model = _stack(rng, columns, hidden, outputs, dtype, bias)
    if frozen:
        model[0].weight.requires_grad_(False)
    where = seeded.msg(f"{form}, {dtype}, bias {bias}, frozen {frozen}")
    G = rng.normal(size=(rows, outputs)).astype(dtype).astype(np.float64)
    out = model(X)
    (out * wxb.tensor(G.astype(dtype))).sum().backward()
    with wxb.no_grad():
        inferred = model(X).data

    W1, W2, b2 = (
        t.astype(np.float64)
        for t in (model[0].weight.data, model[2].weight.data, model[2].bias.data)
    )
    b1 = model[0].bias.data.astype(np.float64) if bias else np.zeros(hidden)
    x64 = dense.astype(np.float64)
    Xt = torch.tensor(x64).to_sparse()
    w1 = torch.tensor(W1, requires_grad=not frozen)
    bt = torch.tensor(b1, requires_grad=True)
    z = torch.sparse.mm(Xt, w1.T) + bt
    a = torch.tanh(z)
    expected = a @ torch.tensor(W2).T + torch.tensor(b2)
    (expected * torch.tensor(G)).sum().backward()

    # bounds: each sum of K terms within K·eps·Σ|terms| of the exact one (two orders
    # of it: twice that), carried through tanh (1-Lipschitz, |tanh'| ≤ 1)
    k = max(int(np.diff(sp.csr_matrix(X).indptr).max(initial=0)), 1)
    eps = EPS32 if dtype == "float32" else float(np.finfo(np.float64).eps)
    A = a.detach().numpy()
    e_a = 2 * (k + 1) * eps * affine_terms(x64, W1.T, b1) + 2 * eps * np.abs(A)
    e_out = e_a @ np.abs(W2.T) + 2 * (hidden + 1) * eps * affine_terms(np.abs(A) + e_a, W2.T, b2)
    for got in (out.data, inferred):
        diff = np.abs(got.astype(np.float64) - expected.detach().numpy())
        assert (diff <= e_out).all(), (float(diff.max()), where)
    # ∂L/∂W⁽¹⁾ = δᵀ·X with δ = (G·W⁽²⁾) ⊙ (1 − a²): |1 − a²| ≤ 1 and off by ≤ 2·e_a + 2·eps
    GW = np.abs(G) @ np.abs(W2)
    e_delta = GW * (2 * e_a + 4 * eps) + 2 * (outputs + 2) * eps * GW
    if frozen:
        assert model[0].weight.grad is None, where
    else:
        bound = e_delta.T @ np.abs(x64) + 2 * (rows + 1) * eps * (GW.T @ np.abs(x64))
        diff = np.abs(model[0].weight.grad.astype(np.float64) - w1.grad.numpy())
        assert (diff <= bound).all(), (float(diff.max()), where)
    if bias:
        bound = e_delta.sum(axis=0) + 2 * (rows + 1) * eps * GW.sum(axis=0)
        diff = np.abs(model[0].bias.grad.astype(np.float64) - bt.grad.numpy())
        assert (diff <= bound).all(), (float(diff.max()), where)


def test_model_called_on_sparse_rows_never_makes_them_dense_whole(seeded):
    """model(X) on 2,000 × 20,000 rows at density 5e-4 made all of X dense (320 MB) with
    a graph and under no_grad; the sparse path holds X's non-zeros (a copy in the
    model's dtype), W-sized arrays (4 × 20,000) and the outputs. A forward of one's own,
    a first layer that is not a Dense, and a Dense with hooks read a Tensor: X is made
    dense for them, and they give the dense rows' outputs."""
    rng = seeded.rng
    rows, columns = 2000, 20_000
    X = sp.random(rows, columns, density=5e-4, format="csr", random_state=rng)
    model = _stack(rng, columns, 4, 2, "float64")
    model(X[:5])  # (the imports a first sparse call loads)
    dense_bytes = rows * columns * 8
    tracemalloc.start()
    try:
        out = model(X)
        (out * out).sum().backward()
        with_graph = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        with wxb.no_grad():
            model(X)
        no_graph = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # X's non-zeros: 20,000 values (+ indices) ≈ 0.3 MB, W and ∂L/∂W 0.64 MB each
    assert with_graph < dense_bytes / 16, (with_graph, seeded.msg("with a graph"))
    assert no_graph < dense_bytes / 16, (no_graph, seeded.msg("no_grad"))

    small, dense, _ = _awkward(rng, int(rng.integers(3, 40)), int(rng.integers(5, 50)), 0.3)
    first = _stack(rng, dense.shape[1], 3, 2, "float64")

    class Own(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = first[0], first[2]

        def forward(self, x):
            return self.fc2(wxb.nn.functional.tanh(self.fc1(x)))

    hooked = _stack(rng, dense.shape[1], 3, 2, "float64")
    hooked[0].register_forward_hook(lambda module, args, output: output)
    dropout_first = nn.Sequential(nn.Dropout(0.3), *_stack(rng, dense.shape[1], 3, 2, "float64"))
    dropout_first.eval()
    for name, m in (("own forward", Own()), ("hooks", hooked), ("dropout", dropout_first)):
        np.testing.assert_array_equal(m(small).data, m(dense).data, err_msg=seeded.msg(name))


def test_a_dense_layer_called_on_sparse_rows_multiplies_them_sparse(seeded, monkeypatch):
    """Dense(X_sparse) itself (no Sequential): the CSR rows to ops.sparse_rows_by_weight,
    the output the dense rows' to float64 rounding (rounding.py's bound)."""
    rng = seeded.rng
    calls = []
    product = wxb.ops.sparse_rows_by_weight

    def counted(X, W, out):
        calls.append(X.shape)
        return product(X, W, out)

    monkeypatch.setattr(wxb.ops, "sparse_rows_by_weight", counted)
    X, dense, form = _awkward(rng, int(rng.integers(2, 30)), int(rng.integers(2, 80)), 0.3)
    layer = nn.Dense(dense.shape[1], 3, seed=int(rng.integers(1 << 30)), dtype="float64")
    out = layer(X).data
    assert calls == [dense.shape], (calls, seeded.msg(form))
    expected = dense @ layer.weight.data.T + layer.bias.data
    atol = rounding_atol(affine_terms(dense, layer.weight.data.T, layer.bias.data), dense.shape[1])
    np.testing.assert_allclose(out, expected, rtol=0, atol=atol, err_msg=seeded.msg(form))


def test_a_distributed_fit_keeps_sparse_rows_sparse(seeded):
    """A distributed fit made a SciPy sparse X dense whole (320 MB for 2,000 × 20,000
    rows; its ranks checked and digested X in shares); each rank now takes its share of
    each CSR batch, as fit does alone. One rank, under no mpiexec: the same run as on
    the dense copy (float64, to the sparse sums' rounding)."""
    rng = seeded.rng
    rows, columns = 2000, 20_000
    X = sp.random(rows, columns, density=5e-4, format="csr", random_state=rng)
    y = rng.integers(0, 2, rows)
    model = _stack(rng, columns, 4, 2, "float64")
    wxb.fit(_stack(rng, 40, 2, 2, "float64"), X[:64, :40], y[:64], epochs=1, verbose=0,
            distributed=True)  # fmt: skip
    tracemalloc.start()
    try:
        wxb.fit(model, X, y, epochs=1, batch_size=256, validation_split=0.2, verbose=0,
                distributed=True)  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # a dense batch is 41 MB, X dense 320 MB; the sparse fit holds X's CSR copy (0.3 MB),
    # the first 64 and last 64 rows' CSR arrays for the ranks' check, W-sized arrays
    assert peak < rows * columns * 8 / 16, (peak, seeded.msg("distributed fit's peak"))

    n, columns = int(rng.integers(60, 200)), int(rng.integers(20, 200))
    X, dense, form = _awkward(rng, n, columns, float(rng.uniform(0.02, 0.3)))
    y = rng.integers(0, 3, n)
    a, b = (_stack(np.random.default_rng(seeded.seed), columns, 5, 3, "float64") for _ in "ab")
    options = dict(epochs=2, batch_size=int(rng.integers(8, 40)), seed=int(rng.integers(1 << 30)),
                   verbose=0, distributed=True, validation_split=0.25)  # fmt: skip
    ha, hb = wxb.fit(a, X, y, **options), wxb.fit(b, dense, y, **options)
    _same_fit(a, b, ha, hb, seeded.msg(form))


def _same_fit(a, b, ha, hb, where, tol=1e-11):
    """Two fits' weights and figures alike up to the sparse sums' rounding: each sum in
    another order (≤ k·eps·Σ|terms| ≈ 1e-14 of the terms), carried by a few epochs of
    updates (Adam's divided by √v̂ + ε) to ~1e-12 of the weights' size."""
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        scale = max(float(np.abs(q.data).max()), 1e-3)
        np.testing.assert_allclose(p.data, q.data, rtol=0, atol=tol * scale, err_msg=where)
    assert ha.history.keys() == hb.history.keys(), where
    for key in hb.history:
        np.testing.assert_allclose(ha.history[key], hb.history[key], rtol=tol, err_msg=where)


WORKER = """
import json, sys, tracemalloc
import numpy as np, scipy.sparse as sp
import wxb
from wxb import nn
from mpi4py import MPI

folder = sys.argv[1]
spec = json.load(open(f"{folder}/spec.json"))
rank = MPI.COMM_WORLD.Get_rank()


def stack(columns, seed):
    return nn.Sequential(nn.Dense(columns, 5, seed=seed, dtype="float64"), nn.Tanh(),
                         nn.Dense(5, 3, seed=seed + 1, dtype="float64"))


X, y = sp.load_npz(f"{folder}/X.npz"), np.load(f"{folder}/y.npy")
model = stack(X.shape[1], spec["seed"])
history = wxb.fit(model, X, y, epochs=2, batch_size=spec["batch"], seed=spec["seed"],
                  validation_split=0.25, verbose=0, distributed=True)
np.savez(f"{folder}/rank{rank}.npz", **model.state_dict())
json.dump(history.history, open(f"{folder}/rank{rank}.json", "w"))

wide = sp.random(2000, 20000, density=5e-4, format="csr", random_state=spec["seed"])
labels = np.arange(2000) % 3
tracemalloc.start()
wxb.fit(stack(20000, 1), wide, labels, epochs=1, batch_size=256, verbose=0, distributed=True)
peak = tracemalloc.get_traced_memory()[1]
json.dump(peak, open(f"{folder}/peak{rank}.json", "w"))
"""


# once in CI: ranks against one process, both on the same kernels (test_distributed's)
@pytest.mark.one_route
def test_two_ranks_fit_sparse_rows_as_one_process_fits_them_dense(seeded, tmp_path):
    """Under mpiexec -n 2 each rank takes its share of each CSR batch (a last batch may
    leave a rank none): the weights and figures are one process's on the dense copy (to
    the sparse sums' rounding), and no rank makes X dense (320 MB; a dense batch 41 MB)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    mpiexec = Path(sys.executable).with_name("mpiexec")
    pytest.importorskip("mpi4py")
    if not mpiexec.is_file():
        pytest.skip(f"no mpiexec beside {sys.executable}")
    rng = seeded.rng
    n, columns = int(rng.integers(60, 200)), int(rng.integers(20, 200))
    X, dense, form = _awkward(rng, n, columns, float(rng.uniform(0.02, 0.3)))
    y = rng.integers(0, 3, n)
    seed, batch = int(rng.integers(1 << 30)), int(rng.integers(3, 40))
    sp.save_npz(tmp_path / "X.npz", sp.csr_matrix(X) if form == "csr_unsorted" else X.tocoo())
    np.save(tmp_path / "y.npy", y)
    (tmp_path / "spec.json").write_text(json.dumps({"seed": seed, "batch": batch}))
    (tmp_path / "worker.py").write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    command = [str(mpiexec), "-n", "2", sys.executable, str(tmp_path / "worker.py"), str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    where = seeded.msg(f"{form}, batch {batch}")
    assert done.returncode == 0, (done.stdout + done.stderr, where)
    alone = nn.Sequential(nn.Dense(columns, 5, seed=seed, dtype="float64"), nn.Tanh(),
                          nn.Dense(5, 3, seed=seed + 1, dtype="float64"))  # fmt: skip
    history = wxb.fit(alone, dense, y, epochs=2, batch_size=batch, seed=seed,
                      validation_split=0.25, verbose=0).history  # fmt: skip
    for rank in range(2):
        with np.load(tmp_path / f"rank{rank}.npz") as stored:
            for key, value in alone.state_dict().items():
                scale = float(np.abs(value).max())
                np.testing.assert_allclose(stored[key], value, rtol=0, atol=1e-11 * scale,
                                           err_msg=f"rank {rank} {key} {where}")  # fmt: skip
        theirs = json.loads((tmp_path / f"rank{rank}.json").read_text())
        for key in history:
            np.testing.assert_allclose(theirs[key], history[key], rtol=1e-11, err_msg=where)
        peak = json.loads((tmp_path / f"peak{rank}.json").read_text())
        assert peak < 2000 * 20000 * 8 / 16, (rank, peak, where)


CASES = ("frozen_first", "no_bias", "weight_decay", "own_forward", "tied", "class_weight")


@pytest.mark.parametrize("case", CASES)
def test_fit_on_sparse_rows_off_the_usual_path_is_the_dense_fit(seeded, case):
    rng = seeded.rng
    n, columns = int(rng.integers(50, 160)), int(rng.integers(8, 120))
    X, dense, form = _awkward(rng, n, columns, float(rng.uniform(0.02, 0.3)))
    y = rng.integers(0, 3, n)
    loss, outputs = "cross_entropy", 3
    seed = int(rng.integers(1 << 30))

    def build():
        r = np.random.default_rng(seed)
        if case == "tied":  # the same Dense twice: its W gets both uses' gradients
            tied = nn.Dense(columns, columns, seed=int(r.integers(1 << 30)), dtype="float64")
            return nn.Sequential(tied, nn.Tanh(), tied, nn.Tanh(),
                                 nn.Dense(columns, 3, seed=1, dtype="float64"))  # fmt: skip
        model = _stack(r, columns, 5, outputs, "float64", bias=case != "no_bias")
        if case == "frozen_first":
            model[0].weight.requires_grad_(False)
        if case == "own_forward":
            inner = model

            class Own(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1, self.fc2 = inner[0], inner[2]

                def forward(self, x):
                    return self.fc2(wxb.nn.functional.tanh(self.fc1(x)))

            return Own()
        return model

    a, b = build(), build()
    options = dict(epochs=3, batch_size=int(rng.integers(8, 40)), seed=seed, verbose=0)
    if case == "class_weight":
        weights = rng.uniform(0.2, 3, outputs)
        options["loss"] = nn.CrossEntropyLoss(weight=weights)
    else:
        options["loss"] = loss
    where = seeded.msg(f"{case}, {form}")

    def optimiser(model):
        trainable = [p for p in model.parameters() if p.requires_grad]
        if case == "weight_decay":
            return AdamW(trainable, lr=0.01, weight_decay=0.05)
        return SGD(trainable, lr=0.1, momentum=0.9)

    ha = wxb.fit(a, X, y, optimizer=optimiser(a), **options)
    hb = wxb.fit(b, dense, y, optimizer=optimiser(b), **options)
    assert ha.engine == hb.engine, where
    _same_fit(a, b, ha, hb, where)
    if case == "frozen_first":
        np.testing.assert_array_equal(a[0].weight.data, build()[0].weight.data, err_msg=where)
    np.testing.assert_allclose(a.predict(X), b.predict(dense), rtol=1e-11, atol=1e-13,
                               err_msg=where)  # fmt: skip


@pytest.mark.parametrize("how", ["sample_weight", "partial_fit", "warm_start"])
def test_the_estimators_on_sparse_rows_off_the_usual_path_are_the_dense_ones(seeded, how):
    from wxb.sklearn import MLPClassifier, MLPRegressor

    rng = seeded.rng
    n, columns = int(rng.integers(60, 160)), int(rng.integers(10, 150))
    X, dense, form = _awkward(rng, n, columns, float(rng.uniform(0.03, 0.3)))
    labels = rng.integers(0, 3, n)
    targets = dense @ rng.normal(size=columns)
    solver = str(rng.choice(["sgd", "adam"] + (["lbfgs"] if how == "sample_weight" else [])))
    where = seeded.msg(f"{how}, {solver}, {form}")
    weights = rng.uniform(0, 2, n)
    for kind, y in ((MLPClassifier, labels), (MLPRegressor, targets)):
        params = dict(hidden_layer_sizes=(4,), solver=solver, max_iter=5,
                      alpha=float(rng.choice([0.0, 1e-3])), batch_size=int(rng.integers(8, 40)),
                      random_state=int(rng.integers(1 << 30)),
                      warm_start=how == "warm_start")  # fmt: skip
        fitted = []
        for data in (X, dense):
            est = kind(**params)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # (not converged)
                if how == "sample_weight":
                    est.fit(data, y, sample_weight=weights)
                elif how == "partial_fit":
                    extra = {"classes": np.arange(3)} if kind is MLPClassifier else {}
                    est.partial_fit(data, y, **extra)
                    # (a COO matrix has no rows to slice: its CSR rows, as a user takes them)
                    half = data.tocsr()[: n // 2] if sp.issparse(data) else data[: n // 2]
                    est.partial_fit(half, y[: n // 2])
                else:
                    est.fit(data, y)
                    est.fit(data, y)
            fitted.append(est)
        a, b = fitted
        for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
            scale = float(np.abs(q).max())
            np.testing.assert_allclose(p, q, rtol=0, atol=1e-10 * scale, err_msg=where)
        np.testing.assert_allclose(a.predict(X), b.predict(dense), rtol=1e-9, atol=1e-9,
                                   err_msg=where)  # fmt: skip
