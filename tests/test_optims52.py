"""Optimisers as PyTorch users write them, against PyTorch 2.13 step by step: LBFGS's free
runs part from PyTorch's only as PyTorch's part from themselves under a one-ulp change of
the start (rounding, not a rule of their own); ``del optimizer.state[p]`` restarts
LBFGS's run as PyTorch's."""

import itertools
import json

import numpy as np
import pytest

import wxb
from wxb.nn import Parameter

torch = pytest.importorskip("torch")


class torch_default:
    """PyTorch keeps some scalars in its default dtype: float64 runs compare with it set
    to float64."""

    def __init__(self, dtype: str) -> None:
        self.dtype = getattr(torch, dtype)

    def __enter__(self):
        self.before = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)

    def __exit__(self, *exc):
        torch.set_default_dtype(self.before)


# -- LBFGS: free runs -----------------------------------------------------------------------
def _problem(rng, kind: str):
    """Least squares, logistic regression or a small tanh MLP on random rows: the shapes of
    its parameters and f, ∇f in NumPy float64 (both optimisers' closures read the same)."""
    n, k = int(rng.integers(20, 60)), int(rng.integers(2, 7))
    X = rng.normal(size=(n, k))
    if kind == "least squares":
        y = X @ rng.normal(size=k) + 0.1 * rng.normal(size=n)

        def value_and_grad(w, b):
            r = X @ w + b[0] - y
            return 0.5 * r @ r / n, [X.T @ r / n, np.array([r.sum() / n])]

        return [(k,), (1,)], value_and_grad
    if kind == "logistic regression":
        y = (X @ rng.normal(size=k) + rng.normal(size=n) > 0).astype(float)

        def value_and_grad(w, b):
            z = X @ w + b[0]
            r = (0.5 * (1 + np.tanh(z / 2)) - y) / n  # the sigmoid, without overflow
            return np.mean(np.logaddexp(0, z) - y * z), [X.T @ r, np.array([r.sum()])]

        return [(k,), (1,)], value_and_grad
    h = int(rng.integers(3, 8))
    y = np.sin(X[:, 0]) + X[:, 1]

    def value_and_grad(W1, b1, W2, b2):
        a = np.tanh(X @ W1.T + b1)
        r = (a @ W2[0] + b2[0] - y) / n
        da = r[:, None] * W2 * (1 - a**2)
        grads = [da.T @ X, da.sum(0), (r @ a)[None, :], np.array([r.sum()])]
        return 0.5 * n * r @ r, grads

    return [(h, k), (h,), (1, h), (1,)], value_and_grad


def _closure(params, opt, value_and_grad, dtype, as_torch):
    def closure():
        opt.zero_grad()
        values = [(q.detach().numpy() if as_torch else q.data).astype(np.float64) for q in params]
        f, grads = value_and_grad(*values)
        for q, g in zip(params, grads, strict=True):
            q.grad = torch.tensor(g.astype(dtype)) if as_torch else g.astype(dtype)
        return torch.tensor(f) if as_torch else wxb.tensor(f, dtype="float64")

    return closure


def _flat(params) -> np.ndarray:
    return np.concatenate([np.asarray(q.detach().numpy()).ravel() for q in params])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_lbfgs_free_runs_part_from_torch_as_torch_from_itself(seeded, dtype):
    """50 steps of a free run on least squares, logistic regression and a small MLP, the
    same closure for both. wxb's LBFGS makes PyTorch's decisions in PyTorch's order, in the
    parameters' dtype as PyTorch's (t, ys, ρ, H_diag and the Armijo test in float32 for
    float32 weights); what differs is rounding: PyTorch's dot products (MKL's order) and
    its fused p + t·d round otherwise than NumPy's. L-BFGS amplifies such differences from
    step to step (a fixed step on the non-convex MLP: 1e-16 grows to 1e-2 in 30 steps), so
    the bound is PyTorch's own sensitivity: three PyTorch runs from the start moved by one
    ulp per element part from the unmoved one by some spread; wxb's run stays within 30
    times it (measured: within 3), or 30 ulps of the weights where the runs contract. A
    rule of its own (another history or line-search decision) parts by O(1) at once.
    While PyTorch's runs have not parted (100 ulps) and agree on the counts, wxb's n_iter
    and func_evals are theirs."""
    rng = seeded.rng
    eps = float(np.finfo(dtype).eps)
    with torch_default(dtype):
        for kind in ("least squares", "logistic regression", "MLP"):
            shapes, value_and_grad = _problem(rng, kind)
            start = [(0.5 * rng.normal(size=s)).astype(dtype) for s in shapes]
            options = {
                "lr": float(rng.uniform(0.3, 1.0)),
                "max_iter": int(rng.integers(1, 6)),
                "history_size": int(rng.integers(1, 10)),
                "line_search_fn": [None, "strong_wolfe"][int(rng.integers(0, 2))],
            }
            if rng.random() < 0.3:
                options["max_eval"] = int(rng.integers(1, 8))
            if rng.random() < 0.3:
                options["tolerance_change"] = float(rng.choice([0.0, 1e-12, 1e-6]))
            msg = seeded.msg(f"{dtype} {kind} {options}")
            mine = [Parameter(v.copy(), dtype=dtype) for v in start]
            runs = [[torch.nn.Parameter(torch.tensor(v)) for v in start]]
            for _ in range(3):  # each element one ulp up or down
                toward = [np.where(rng.random(v.shape) < 0.5, np.inf, -np.inf) for v in start]
                moved = [
                    np.nextafter(v, t.astype(dtype)) for v, t in zip(start, toward, strict=True)
                ]
                runs.append([torch.nn.Parameter(torch.tensor(v)) for v in moved])
            opt = wxb.optim.LBFGS(mine, **options)
            theirs = [torch.optim.LBFGS(r, **options) for r in runs]
            for step in range(50):
                opt.step(_closure(mine, opt, value_and_grad, dtype, False))
                for r, t in zip(runs, theirs, strict=True):
                    t.step(_closure(r, t, value_and_grad, dtype, True))
                want = _flat(runs[0])
                scale = max(1.0, float(np.abs(want).max()))
                spread = max(float(np.abs(_flat(r) - want).max()) for r in runs[1:])
                error = float(np.abs(np.concatenate([p.data.ravel() for p in mine]) - want).max())
                assert error <= 30 * max(spread, eps * scale), (
                    f"{msg}: after step {step + 1} wxb is {error:.3g} from PyTorch, whose own "
                    f"runs from a start one ulp away are {spread:.3g} apart"
                )
                counts = [
                    (t.state[r[0]]["n_iter"], t.state[r[0]]["func_evals"])
                    for r, t in zip(runs, theirs, strict=True)
                ]
                if len(set(counts)) == 1 and spread <= 100 * eps * scale:  # (not parted yet)
                    state = opt.state[mine[0]]
                    assert (state["n_iter"], state["func_evals"]) == counts[0], (
                        f"{msg}: counts after step {step + 1}"
                    )


# -- LBFGS: its state forgotten, saved and loaded ------------------------------------------
def _quadratic(rng, shapes):
    n = sum(int(np.prod(s)) for s in shapes)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    A = q @ np.diag(np.logspace(0, rng.uniform(0.5, 2), n)) @ q.T
    b = rng.normal(size=n)
    sizes = np.cumsum([0, *(int(np.prod(s)) for s in shapes)])

    def value_and_grad(*values):
        x = np.concatenate([v.ravel() for v in values])
        g = A @ x - b
        return 0.5 * x @ A @ x - b @ x, [
            g[a:z].reshape(s) for (a, z), s in zip(itertools.pairwise(sizes), shapes, strict=True)
        ]

    return value_and_grad


def test_lbfgs_state_forgotten_restarts_the_run_as_torchs(seeded):
    """``del opt.state[p]`` (or pop, ``= {}``, clear()) on LBFGS restarts its run at the
    next step, as PyTorch's: n_iter 1 again, the steepest descent with t = min(1, 1/Σ|g|)·lr,
    the history gone. It was a plain dict made afresh at each read: deleting from it changed
    nothing, and the run went on with its old curvature pairs (0.44 apart from PyTorch's
    after one step). Then the state saved and loaded into a fresh LBFGS over another
    model's parameters goes on as PyTorch's loaded one does."""
    rng = seeded.rng
    with torch_default("float64"):
        shapes = [(int(rng.integers(1, 5)), int(rng.integers(1, 5))), (int(rng.integers(1, 5)),)]
        value_and_grad = _quadratic(rng, shapes)
        start = [rng.normal(size=s) for s in shapes]
        options = {
            "max_iter": int(rng.integers(1, 4)),
            "history_size": int(rng.integers(2, 8)),
            "line_search_fn": [None, "strong_wolfe"][int(rng.integers(0, 2))],
            "lr": float(rng.uniform(0.2, 0.6)),
        }
        how = ["del", "pop", "assign", "clear"][int(rng.integers(0, 4))]
        msg = seeded.msg(f"LBFGS {options} forgotten by {how}")
        mine = [Parameter(v.copy(), dtype="float64") for v in start]
        theirs = [torch.nn.Parameter(torch.tensor(v)) for v in start]
        opt, their_opt = wxb.optim.LBFGS(mine, **options), torch.optim.LBFGS(theirs, **options)
        assert opt.state[mine[1]] == {} and their_opt.state[theirs[1]] == {}, msg

        def both(count, when):
            for step in range(count):
                opt.step(_closure(mine, opt, value_and_grad, "float64", False))
                their_opt.step(_closure(theirs, their_opt, value_and_grad, "float64", True))
                state, their_state = opt.state[mine[0]], their_opt.state[theirs[0]]
                for key in ("n_iter", "func_evals"):
                    assert state[key] == their_state[key], f"{msg}: {key} {when} {step + 1}"
                assert len(state["old_dirs"]) == len(their_state["old_dirs"]), msg
                np.testing.assert_allclose(
                    _flat(mine), _flat(theirs), rtol=1e-9, atol=1e-9,
                    err_msg=f"{msg}: {when} step {step + 1}",
                )  # fmt: skip

        both(int(rng.integers(2, 5)), "before")
        for state, p in ((opt.state, mine[0]), (their_opt.state, theirs[0])):
            if how == "del":
                del state[p]
            elif how == "pop":
                state.pop(p)
            elif how == "assign":
                state[p] = {}
            else:
                state.clear()
        assert not any(dict(opt.state).values()), msg
        assert not any(dict(their_opt.state).values()), msg
        both(1, "after forgetting,")
        both(int(rng.integers(1, 4)), "after forgetting,")
        saved = json.loads(json.dumps(opt.state_dict(), default=lambda a: a.tolist()))
        entry = saved["state"]["0"]
        for key in ("d", "prev_flat_grad"):
            entry[key] = np.array(entry[key])
        for key in ("old_dirs", "old_stps"):
            entry[key] = [np.array(v) for v in entry[key]]
        their_saved = their_opt.state_dict()
        mine = [Parameter(p.data.copy(), dtype="float64") for p in mine]
        theirs = [torch.nn.Parameter(q.detach().clone()) for q in theirs]
        opt, their_opt = wxb.optim.LBFGS(mine), torch.optim.LBFGS(theirs)
        opt.load_state_dict({"state": {0: entry}, "param_groups": saved["param_groups"]})
        their_opt.load_state_dict(their_saved)
        both(int(rng.integers(1, 4)), "loaded into another model's,")
