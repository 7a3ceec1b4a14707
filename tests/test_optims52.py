"""Optimisers as PyTorch users write them, against PyTorch 2.13 step by step: LBFGS's free
runs part from PyTorch's only as PyTorch's part from themselves under a one-ulp change of
the start (rounding, not a rule of their own); ``del optimizer.state[p]`` restarts
LBFGS's run as PyTorch's; every optimiser's state (read, forgotten, saved and loaded into
another model's optimiser, a group added mid-run, gradients missing for some steps) as
PyTorch's; Muon, PyTorch's Newton–Schulz in bfloat16."""

import itertools
import json

import numpy as np
import pytest

import wxb
from wxb.errors import ConfigError
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


# -- every optimiser's state, as PyTorch's ------------------------------------------------
def _options(rng, kind: str) -> dict:
    u = lambda a, b: float(rng.uniform(a, b))  # noqa: E731
    flip = lambda p=0.5: bool(rng.random() < p)  # noqa: E731
    return {
        "SGD": lambda: {
            "lr": u(0.01, 0.1), "momentum": float(rng.choice([0.0, 0.9])),
            "dampening": float(rng.choice([0.0, 0.3])), "weight_decay": u(0, 0.1),
        },
        "Adam": lambda: {
            "lr": u(1e-3, 0.05), "weight_decay": u(0, 0.1), "betas": (u(0.5, 0.95), u(0.9, 0.999)),
        },
        "AdamW": lambda: {"lr": u(1e-3, 0.05), "weight_decay": u(0, 0.1)},
        "RMSprop": lambda: {
            "lr": u(1e-3, 0.05), "momentum": float(rng.choice([0.0, 0.5])), "centered": flip(),
            "alpha": u(0.8, 0.99),
        },
        # (a group's own initial_accumulator_value is its start in wxb, the constructor's in
        # PyTorch's: documented, so left at the default here)
        "Adagrad": lambda: {"lr": u(1e-3, 0.05), "lr_decay": u(0, 0.1), "weight_decay": u(0, 0.1)},
        "NAdam": lambda: {
            "lr": u(1e-3, 0.05), "momentum_decay": u(1e-3, 1e-2), "weight_decay": u(0, 0.1),
            "decoupled_weight_decay": flip(),
        },
        "RAdam": lambda: {
            "lr": u(1e-3, 0.05), "weight_decay": u(0, 0.1), "decoupled_weight_decay": flip(),
        },
        "Adamax": lambda: {"lr": u(1e-3, 0.05), "weight_decay": u(0, 0.1)},
        "Adadelta": lambda: {"lr": u(0.1, 1), "rho": u(0.5, 0.95), "weight_decay": u(0, 0.1)},
        "Rprop": lambda: {"lr": u(1e-3, 0.05)},
        "ASGD": lambda: {"lr": u(1e-3, 0.05), "t0": float(rng.integers(0, 8)), "lambd": u(0, 0.1)},
        "Adafactor": lambda: {"lr": u(1e-3, 0.05), "weight_decay": u(0, 0.1)},
        "Muon": lambda: {
            "lr": u(1e-3, 0.05), "weight_decay": u(0, 0.2), "momentum": u(0, 0.99),
            "nesterov": flip(),
            "adjust_lr_fn": [None, "original", "match_rms_adamw"][int(rng.integers(0, 3))],
        },
    }[kind]()  # fmt: skip


KINDS = [
    "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "NAdam", "RAdam", "Adamax", "Adadelta",
    "Rprop", "ASGD", "Adafactor", "Muon",
]  # fmt: skip


def _shape(rng, kind: str) -> tuple:
    if kind == "Muon":  # 2-D only
        return tuple(int(s) for s in rng.integers(1, 7, size=2))
    return tuple(int(s) for s in rng.integers(1, 5, size=int(rng.integers(0, 3))))


def _close(mine: np.ndarray, want: np.ndarray, atol: float) -> bool:
    return bool(np.all(np.abs(mine - want) <= atol + 1e-11 * np.abs(want)))


@pytest.mark.parametrize("kind", KINDS)
def test_state_is_torchs_step_by_step(seeded, kind):
    """20 steps of each optimiser beside PyTorch's, two groups, with at random steps:
    ``del opt.state[p]`` (the parameter starts afresh at its next step), a group added
    (``add_param_group``), the state saved (through JSON, half the time) and loaded into a
    fresh optimiser over another model's parameters of the same shapes, and gradients left
    None for some parameters (skipped: their state and counts unchanged). After each step
    the weights and every entry of PyTorch's ``state[p]`` (under PyTorch's names) are
    PyTorch's. Muon rounds its Newton–Schulz iteration in bfloat16 as PyTorch's: a sum
    that falls on a rounding boundary there moves a weight by lr′·2⁻⁴ at most (see
    test_muon_steps_are_torchs), allowed for at each of its steps."""
    rng = seeded.rng
    with torch_default("float64"):
        shapes = [_shape(rng, kind) for _ in range(int(rng.integers(3, 6)))]
        start = [rng.normal(size=s) for s in shapes]
        mine = [Parameter(v.copy(), dtype="float64") for v in start]
        theirs = [torch.nn.Parameter(torch.tensor(v)) for v in start]
        cut = int(rng.integers(1, len(shapes)))
        options, sizes = [_options(rng, kind), _options(rng, kind)], [cut, len(shapes) - cut]

        def made(module, params):
            bounds = np.cumsum([0, *sizes])
            groups = [
                {"params": params[a:b], **o}
                for (a, b), o in zip(itertools.pairwise(bounds), options, strict=True)
            ]
            return getattr(module, kind)(groups)

        opt, their_opt = made(wxb.optim, mine), made(torch.optim, theirs)
        events, drift = [], [0.0] * len(mine)  # Muon's allowance, per parameter
        for step in range(20):
            event = int(rng.integers(0, 6))
            if event == 1:
                i = int(rng.integers(0, len(mine)))
                if theirs[i] in their_opt.state:
                    del their_opt.state[theirs[i]]
                    del opt.state[mine[i]]
                    assert len(opt.state[mine[i]]) == 0, f"{kind}: state[p] after del"
                    events.append(f"del {i} at {step}")
            elif event == 2 and len(mine) < 8:
                value = rng.normal(size=_shape(rng, kind))
                added = _options(rng, kind)
                mine.append(Parameter(value.copy(), dtype="float64"))
                theirs.append(torch.nn.Parameter(torch.tensor(value)))
                opt.add_param_group({"params": [mine[-1]], **added})
                their_opt.add_param_group({"params": [theirs[-1]], **added})
                options.append(added)
                sizes.append(1)
                drift.append(0.0)
                events.append(f"group of {value.shape} added at {step}")
            elif event == 3:
                saved, their_saved = opt.state_dict(), their_opt.state_dict()
                if rng.random() < 0.5:
                    saved = json.loads(json.dumps(saved, default=lambda a: a.tolist()))
                mine = [Parameter(p.data.copy(), dtype="float64") for p in mine]
                theirs = [torch.nn.Parameter(q.detach().clone()) for q in theirs]
                opt, their_opt = made(wxb.optim, mine), made(torch.optim, theirs)
                opt.load_state_dict(saved)
                their_opt.load_state_dict(their_saved)
                events.append(f"loaded into another model's at {step}")
            skipped = (
                {int(i) for i in rng.integers(0, len(mine), size=2)}
                if rng.random() < 0.4
                else set()
            )
            for i, (p, q) in enumerate(zip(mine, theirs, strict=True)):
                if i in skipped:
                    p.grad, q.grad = None, None
                    continue
                g = rng.normal(size=p.shape) * float(rng.choice([1e-2, 1.0]))
                p.grad, q.grad = g.copy(), torch.tensor(g)
            opt.step()
            their_opt.step()
            msg = seeded.msg(f"{kind} {options} {events} step {step}")
            for i, (p, q) in enumerate(zip(mine, theirs, strict=True)):
                if kind == "Muon" and i not in skipped:
                    h = next(g for g in opt.param_groups if any(x is p for x in g["params"]))
                    drift[i] += wxb.optim.Muon._lr_of(h, p.shape) * 2.0**-4
                want = q.detach().numpy()
                assert _close(p.data, want, drift[i] + 1e-12), (
                    f"{msg}: parameter {i} is {np.abs(p.data - want).max():.3g} from PyTorch's"
                )
                state = opt.state[p]
                for key, value in their_opt.state.get(q, {}).items():
                    assert key in state, f"{msg}: parameter {i} has no {key!r} ({list(state)})"
                    value = value.detach().numpy() if hasattr(value, "detach") else value
                    value = np.asarray(value, dtype=float)
                    got = np.asarray(state[key], dtype=float)
                    assert got.shape == value.shape and _close(got, value, 1e-12), (
                        f"{msg}: parameter {i} state {key!r}: {got.ravel()[:3]}, PyTorch's "
                        f"{value.ravel()[:3]}"
                    )


@pytest.mark.parametrize("kind", ["Adam", "Muon", "LBFGS"])
def test_load_state_dict_of_other_groups_refused_in_one_line_as_torchs(seeded, kind):
    """A state dict of groups of other sizes (the same model's parameters grouped in
    another order) is refused in one line, as PyTorch refuses it (ValueError), and the
    optimiser is left as it was."""
    rng = seeded.rng
    rows = [int(r) for r in rng.integers(1, 5, size=3)]
    mine = [Parameter(rng.normal(size=(r, 2))) for r in rows]
    theirs = [torch.nn.Parameter(torch.tensor(p.data)) for p in mine]
    if kind == "LBFGS":  # one group: another count of parameters
        opt, other = wxb.optim.LBFGS(mine[:2]), wxb.optim.LBFGS(mine)
        their_opt, their_other = torch.optim.LBFGS(theirs[:2]), torch.optim.LBFGS(theirs)
    else:

        def made(module, params, order):
            return getattr(module, kind)([{"params": params[a:b]} for a, b in order])

        opt, other = (
            made(wxb.optim, mine, [(0, 1), (1, 3)]),
            made(wxb.optim, mine, [(0, 2), (2, 3)]),
        )
        their_opt = made(torch.optim, theirs, [(0, 1), (1, 3)])
        their_other = made(torch.optim, theirs, [(0, 2), (2, 3)])
    for p, q in zip(mine, theirs, strict=True):
        g = rng.normal(size=p.shape)
        p.grad, q.grad = g, torch.tensor(g)
    if kind == "LBFGS":
        other.step(lambda: wxb.tensor(0.5))
        their_other.step(lambda: torch.tensor(0.5))
    else:
        other.step()
        their_other.step()
    with pytest.raises(ValueError):
        their_opt.load_state_dict(their_other.state_dict())
    before = opt.state_dict()
    with pytest.raises(ConfigError) as caught:
        opt.load_state_dict(other.state_dict())
    assert "\n" not in str(caught.value) and "param" in str(caught.value), str(caught.value)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"], seeded.msg(kind)


# -- Muon ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_muon_steps_are_torchs(seeded, dtype):
    """PyTorch's Muon, step by step from the same weights (handed over after each step so
    that a rounding does not carry): the momentum buffer to the dtype's rounding; the
    weights as PyTorch's where the bfloat16 Newton–Schulz iteration rounds alike (each
    product accumulated wider and rounded once, as PyTorch's addmm): most elements (a sum
    on a rounding boundary early in the iteration spreads through the later products:
    92% of the elements alike at worst over 60 runs of 30 matrices, so 75% asked), the
    rest within lr′·2⁻⁴ (O's entries under 2, bfloat16's last bit 2⁻⁸ below 2: at most 3
    such bits apart over 3000 matrices). Computed in the weights' dtype instead, none are
    alike: it parts from PyTorch's by about 2⁻⁹ relative everywhere."""
    rng = seeded.rng
    eps = float(np.finfo(dtype).eps)
    with torch_default(dtype):
        shapes = [tuple(int(s) for s in rng.integers(1, 24, size=2)) for _ in range(3)]
        options = _options(rng, "Muon")
        if rng.random() < 0.5:
            options["ns_steps"] = int(rng.integers(0, 8))
        if rng.random() < 0.3:
            options["ns_coefficients"] = (2.0, -1.5, 0.5)
        start = [rng.normal(size=s).astype(dtype) for s in shapes]
        mine = [Parameter(v.copy(), dtype=dtype) for v in start]
        theirs = [torch.nn.Parameter(torch.tensor(v)) for v in start]
        opt, their_opt = wxb.optim.Muon(mine, **options), torch.optim.Muon(theirs, **options)
        msg = seeded.msg(f"Muon {dtype} {options} {shapes}")
        alike = total = 0
        for step in range(10):
            for p, q in zip(mine, theirs, strict=True):
                g = (rng.normal(size=p.shape) * 10 ** rng.uniform(-3, 1)).astype(dtype)
                p.grad, q.grad = g.copy(), torch.tensor(g)
                p.data[...] = q.detach().numpy()
            opt.step()
            their_opt.step()
            for i, (p, q) in enumerate(zip(mine, theirs, strict=True)):
                buffer = their_opt.state[q]["momentum_buffer"].numpy()
                np.testing.assert_allclose(
                    opt.state[p]["momentum_buffer"], buffer, rtol=4 * eps,
                    atol=4 * eps * float(np.abs(buffer).max()), err_msg=f"{msg}: buffer {i}",
                )  # fmt: skip
                want = q.detach().numpy()
                lr = wxb.optim.Muon._lr_of(opt.param_groups[0], p.shape)
                rounding = 4 * eps * (float(np.abs(want).max()) + lr)
                error = np.abs(p.data - want)
                assert float(error.max()) <= rounding + lr * 2.0**-4, (
                    f"{msg}: parameter {i} {p.shape} {float(error.max()):.3g} from PyTorch's "
                    f"after step {step + 1}"
                )
                alike += int(np.count_nonzero(error <= rounding))
                total += error.size
        assert alike >= 0.75 * total, f"{msg}: only {alike} of {total} elements are PyTorch's"


def test_muon_trains_a_wxb_model_beside_adamw(seeded):
    """PyTorch's docs' pattern: Muon for a model's matrices, AdamW for the rest; the loss
    falls, and a step with one matrix's gradient None leaves it and its buffer as they were."""
    rng = seeded.rng
    X = rng.normal(size=(64, 5))
    y = np.tanh(X @ rng.normal(size=(5, 2)))
    model = wxb.nn.Sequential(
        wxb.nn.Dense(5, 16, dtype="float64"), wxb.nn.Tanh(), wxb.nn.Dense(16, 2, dtype="float64")
    )
    matrices = [p for p in model.parameters() if p.ndim == 2]
    others = [p for p in model.parameters() if p.ndim != 2]
    muon = wxb.optim.Muon(matrices, lr=0.02, momentum=0.9)
    adamw = wxb.optim.AdamW(others, lr=1e-2)
    loss_fn = wxb.nn.MSELoss()
    first = None
    for _ in range(60):
        muon.zero_grad()
        adamw.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        first = float(loss) if first is None else first
        muon.step()
        adamw.step()
    assert float(loss_fn(model(X), y)) < 0.5 * first, seeded.msg("Muon + AdamW")
    kept, buffer = matrices[0].data.copy(), muon.state[matrices[0]]["momentum_buffer"].copy()
    matrices[0].grad = None
    matrices[1].grad = rng.normal(size=matrices[1].shape)
    muon.step()
    np.testing.assert_array_equal(matrices[0].data, kept)
    np.testing.assert_array_equal(muon.state[matrices[0]]["momentum_buffer"], buffer)


def test_muon_refusals_are_one_line_where_torchs_refuse():
    matrix, vector = Parameter(np.ones((3, 2))), Parameter(np.ones(3))
    their_matrix, their_vector = (
        torch.nn.Parameter(torch.ones(3, 2)),
        torch.nn.Parameter(torch.ones(3)),
    )
    cases = [
        ([matrix, vector], [their_matrix, their_vector], {}, r"parameter 1 has shape \(3,\).*2-D"),
        ([matrix], [their_matrix], {"adjust_lr_fn": "rms"}, "adjust_lr_fn"),
        ([matrix], [their_matrix], {"lr": -1.0}, "lr"),
        ([matrix], [their_matrix], {"momentum": -0.5}, "momentum"),
        ([matrix], [their_matrix], {"weight_decay": -0.1}, "weight_decay"),
    ]
    for params, their_params, options, match in cases:
        with pytest.raises(ValueError):
            torch.optim.Muon(their_params, **options)
        with pytest.raises(ConfigError, match=match) as caught:
            wxb.optim.Muon(params, **options)
        assert "\n" not in str(caught.value)
    opt = wxb.optim.Muon([matrix])
    with pytest.raises(ConfigError, match=r"param_groups\[1\]: parameter 0 has shape \(3,\)"):
        opt.add_param_group({"params": [vector]})  # (PyTorch's takes it, then fails at its step)
    assert len(opt.param_groups) == 1 and opt.params == [matrix]
    for options, match in (
        ({"ns_steps": 100}, "ns_steps"),
        ({"ns_coefficients": (1.0, 2.0)}, "ns_coefficients"),
    ):
        their_opt = torch.optim.Muon([their_matrix], **options)
        their_matrix.grad = torch.ones(3, 2)
        with pytest.raises(ValueError):  # PyTorch's at the step
            their_opt.step()
        with pytest.raises(ConfigError, match=match):
            wxb.optim.Muon([matrix], **options)
    theirs = torch.optim.Muon([their_matrix]).defaults
    for key, value in wxb.optim.Muon([matrix]).param_groups[0].items():
        if key != "params":
            assert value == theirs[key], key


def test_muon_state_goes_to_and_from_torch(seeded):
    """optimizer_from_torch and optimizer_to_torch carry Muon's momentum_buffer and group
    settings: the next step on either side is the other's."""
    from wxb import interop

    rng = seeded.rng
    with torch_default("float64"):
        shapes = [tuple(int(s) for s in rng.integers(1, 8, size=2)) for _ in range(2)]
        options = _options(rng, "Muon")
        start = [rng.normal(size=s) for s in shapes]
        mine = [Parameter(v.copy(), dtype="float64") for v in start]
        theirs = [torch.nn.Parameter(torch.tensor(v)) for v in start]
        opt, their_opt = wxb.optim.Muon(mine), torch.optim.Muon(theirs, **options)
        msg = seeded.msg(f"Muon {options} {shapes}")

        def step(handover):
            handover()
            for p, q in zip(mine, theirs, strict=True):
                p.data[...] = q.detach().numpy()
                g = rng.normal(size=p.shape)
                p.grad, q.grad = g.copy(), torch.tensor(g)
            opt.step()
            their_opt.step()
            for i, (p, q) in enumerate(zip(mine, theirs, strict=True)):
                lr = wxb.optim.Muon._lr_of(opt.param_groups[0], p.shape)
                np.testing.assert_allclose(
                    p.data, q.detach().numpy(), rtol=1e-12, atol=lr * 2.0**-4,
                    err_msg=f"{msg}: parameter {i}",
                )  # fmt: skip
                np.testing.assert_allclose(
                    opt.state[p]["momentum_buffer"],
                    their_opt.state[q]["momentum_buffer"].numpy(), rtol=1e-12, atol=1e-14,
                    err_msg=f"{msg}: buffer {i}",
                )  # fmt: skip

        for q in theirs:
            q.grad = torch.tensor(rng.normal(size=q.shape))
        their_opt.step()
        step(lambda: interop.optimizer_from_torch(their_opt, opt))
        assert opt.momentum == options["momentum"], msg
        their_opt = torch.optim.Muon(theirs)
        step(lambda: interop.optimizer_to_torch(opt, their_opt))
        assert their_opt.param_groups[0]["momentum"] == options["momentum"], msg
