"""Rprop, ASGD, Adafactor and LBFGS, torch.optim's optimisers wxb lacked: PyTorch 2.13's
updates step by step in float64 (every option, several groups, parameters frozen for a
while, zero_grad(set_to_none=False)), their state carried both ways between PyTorch and
wxb mid-run, fit with them and its resume; SparseAdam refused in one line."""

import copy
import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import wxb
from wxb import interop
from wxb.errors import ConfigError
from wxb.nn import Dense, Parameter, ReLU, Sequential

torch = pytest.importorskip("torch")


class torch_default:
    """PyTorch keeps ASGD's eta and mu (and every step count) in its default dtype, wxb
    in the parameters': a float64 run compares with PyTorch set to float64."""

    def __init__(self, dtype: str) -> None:
        self.dtype = getattr(torch, dtype)

    def __enter__(self):
        self.before = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)

    def __exit__(self, *exc):
        torch.set_default_dtype(self.before)


def _rprop_options(rng) -> dict:
    options = {"lr": float(rng.choice([0.0, *rng.uniform(1e-3, 0.1, size=4)]))}
    if rng.random() < 0.6:
        options["etas"] = (float(rng.uniform(0.1, 0.9)), float(rng.uniform(1.05, 2.0)))
    if rng.random() < 0.6:
        low = float(rng.choice([0.0, 1e-6, 1e-3]))
        options["step_sizes"] = (low, float(rng.uniform(0.01, 1.0)))
    if rng.random() < 0.3:
        options["maximize"] = True
    return options


def _asgd_options(rng) -> dict:
    options = {"lr": float(rng.choice([0.0, *rng.uniform(1e-3, 0.1, size=4)]))}
    if rng.random() < 0.6:
        options["lambd"] = float(rng.uniform(0, 0.5))
    if rng.random() < 0.6:
        options["alpha"] = float(rng.uniform(0, 1.5))
    if rng.random() < 0.7:  # averaging from some step of the run on (PyTorch's 1e6: never)
        options["t0"] = float(rng.integers(0, 30))
    if rng.random() < 0.5:
        options["weight_decay"] = float(rng.uniform(0, 0.2))
    if rng.random() < 0.3:
        options["maximize"] = True
    return options


def _adafactor_options(rng) -> dict:
    options = {"lr": float(rng.choice([0.0, *rng.uniform(1e-3, 0.1, size=4)]))}
    if rng.random() < 0.6:
        options["beta2_decay"] = float(rng.uniform(-1.0, 0.0))
    if rng.random() < 0.6:  # eps1 None is the dtype's machine epsilon
        eps1 = None if rng.random() < 0.3 else float(rng.choice([0.0, 1e-30, 1e-3]))
        options["eps"] = (eps1, float(rng.choice([0.0, 1e-3, 0.5])))
    if rng.random() < 0.6:  # a threshold the updates' RMS crosses, and one it does not
        options["d"] = float(rng.choice([1.0, rng.uniform(1.0, 3.0), 1e3]))
    if rng.random() < 0.5:
        options["weight_decay"] = float(rng.uniform(0, 0.5))
    if rng.random() < 0.3:
        options["maximize"] = True
    return options


KINDS = {
    "Rprop": _rprop_options,
    "ASGD": _asgd_options,
    "Adafactor": _adafactor_options,
}


def _shapes(rng, kind: str) -> list[tuple]:
    count = int(rng.integers(2, 6))
    shapes = []
    for _ in range(count):
        ndim = int(rng.integers(0, 4))
        shapes.append(tuple(int(s) for s in rng.integers(1, 6, size=ndim)))
    return shapes


def _twins(rng, shapes, dtype="float64"):
    values = [rng.normal(size=s).astype(dtype) for s in shapes]
    mine = [Parameter(v.copy(), dtype=dtype) for v in values]
    theirs = [torch.nn.Parameter(torch.tensor(v)) for v in values]
    return mine, theirs


def _groups(rng, count: int, draw) -> list[tuple[int, int, dict]]:
    """The parameters cut into one to three groups, each with options of its own."""
    cuts = sorted({int(c) for c in rng.integers(1, count, size=2)}) if count > 1 else []
    bounds = [0, *cuts, count]
    return [(a, b, draw(rng)) for a, b in itertools.pairwise(bounds)]


class _Run:
    """Both optimisers stepped with the same gradients: a pull towards a target plus
    noise (so signs persist and flip), some parameters skipped at random steps, one frozen
    (grad None) for a stretch, and one step after zero_grad(set_to_none=False)."""

    def __init__(self, rng, mine, theirs, opt, their_opt, msg):
        self.rng, self.mine, self.theirs = rng, mine, theirs
        self.opt, self.their_opt, self.msg = opt, their_opt, msg
        self.targets = [rng.normal(size=p.shape) for p in mine]
        self.seen = [float(np.abs(q.detach().numpy()).max(initial=0.0)) for q in theirs]
        self.done = 0

    def steps(self, count: int, compare: bool = True) -> None:
        rng = self.rng
        frozen = int(rng.integers(0, len(self.mine)))
        window = sorted(int(s) for s in rng.integers(0, count, size=2))
        zero_at = int(rng.integers(0, count))
        for step in range(count):
            if step == zero_at:  # the gradients of the last step, zeroed where they lie
                self.opt.zero_grad(set_to_none=False)
                self.their_opt.zero_grad(set_to_none=False)
            else:
                skipped = int(rng.integers(0, len(self.mine))) if rng.random() < 0.2 else None
                for i, (p, q) in enumerate(zip(self.mine, self.theirs, strict=True)):
                    if i == skipped or (i == frozen and window[0] <= step < window[1]):
                        p.grad, q.grad = None, None
                        continue
                    now = q.detach().numpy()
                    g = 0.7 * (now - self.targets[i]) + rng.normal(
                        scale=float(rng.choice([1e-3, 0.3, 3.0])), size=p.shape
                    )
                    p.grad, q.grad = g.copy(), torch.tensor(g)
            self.opt.step()
            self.their_opt.step()
            self.done += 1
            if compare:
                self.check(f"after step {self.done}")

    def check(self, when: str) -> None:
        for i, (p, q) in enumerate(zip(self.mine, self.theirs, strict=True)):
            want = q.detach().numpy()
            self.seen[i] = max(self.seen[i], float(np.abs(want).max(initial=0.0)))
            # each step rounds at the scale of the values the parameter has taken
            np.testing.assert_allclose(
                p.data, want, rtol=1e-12, atol=1e-12 * (self.seen[i] or 1.0),
                err_msg=f"{self.msg}: parameter {i} {p.shape} {when}",
            )  # fmt: skip


def _pair(rng, kind, draw, dtype="float64"):
    mine, theirs = _twins(rng, _shapes(rng, kind), dtype)
    groups = _groups(rng, len(mine), draw)
    opt = getattr(wxb.optim, kind)([{"params": mine[a:b], **o} for a, b, o in groups])
    their_opt = getattr(torch.optim, kind)([{"params": theirs[a:b], **o} for a, b, o in groups])
    return mine, theirs, opt, their_opt, [o for _, _, o in groups]


@pytest.mark.parametrize("kind", list(KINDS))
def test_updates_are_pytorchs_float64(seeded, kind):
    rng = seeded.rng
    for _ in range(2):
        with torch_default("float64"):
            mine, theirs, opt, their_opt, options = _pair(rng, kind, KINDS[kind])
            msg = seeded.msg(f"{kind} groups {options}")
            run = _Run(rng, mine, theirs, opt, their_opt, msg)
            run.steps(int(rng.integers(50, 70)))
            # the state, under PyTorch's names in optimizer.state
            for p, q in zip(mine, theirs, strict=True):
                entry, their_entry = opt.state[p], their_opt.state[q]
                assert (not entry) == (not their_entry), msg
                for key, value in their_entry.items():
                    want = value.numpy()
                    np.testing.assert_allclose(
                        entry[key], want, rtol=1e-12,
                        atol=1e-12 * max(1.0, float(np.abs(want).max(initial=0))),
                        err_msg=f"{msg}: state {key}",
                    )  # fmt: skip


@pytest.mark.parametrize("kind", list(KINDS))
def test_state_carried_both_ways_mid_run(seeded, kind):
    """k steps in one, then wxb's state into a fresh PyTorch optimiser (or PyTorch's into
    a fresh wxb one) made with other settings, m more steps: the run of k + m in one."""
    rng = seeded.rng
    for direction in ("to_torch", "from_torch"):
        with torch_default("float64"):
            mine, theirs, opt, their_opt, options = _pair(rng, kind, KINDS[kind])
            msg = seeded.msg(f"{kind} {direction} groups {options}")
            run = _Run(rng, mine, theirs, opt, their_opt, msg)
            run.steps(int(rng.integers(5, 30)))
            fresh = [{"params": g["params"]} for g in their_opt.param_groups]
            if direction == "to_torch":
                other = getattr(torch.optim, kind)(fresh)
                assert interop.optimizer_to_torch(opt, other) is other
                run.their_opt = other
            else:
                mine_fresh = [
                    {"params": g["params"]} for g in opt.param_groups
                ]  # (the class's defaults: the settings come from PyTorch's)
                other = getattr(wxb.optim, kind)(mine_fresh)
                assert interop.optimizer_from_torch(their_opt, other) is other
                run.opt = other
            run.steps(int(rng.integers(25, 40)))


def _plain(state: dict) -> dict:
    """A state dict as a checkpoint keeps it: the numbers through JSON, arrays as they are."""
    out = {"state": {}, "param_groups": json.loads(json.dumps(state["param_groups"]))}
    out["steps"] = state["steps"]
    for i, entry in state["state"].items():
        numbers = {k: v for k, v in entry.items() if not isinstance(v, np.ndarray)}
        arrays = {k: v for k, v in entry.items() if isinstance(v, np.ndarray)}
        out["state"][i] = {**json.loads(json.dumps(numbers)), **arrays}
    return out


@pytest.mark.parametrize("kind", list(KINDS))
def test_own_state_dict_round_trip_mid_run(seeded, kind):
    rng = seeded.rng
    with torch_default("float64"):
        mine, theirs, opt, their_opt, options = _pair(rng, kind, KINDS[kind])
        msg = seeded.msg(f"{kind} groups {options}")
        run = _Run(rng, mine, theirs, opt, their_opt, msg)
        run.steps(int(rng.integers(5, 30)))
        other = getattr(wxb.optim, kind)(
            [{"params": g["params"], "lr": 0.5} for g in opt.param_groups]
        )
        other.load_state_dict(_plain(opt.state_dict()))
        assert [g["lr"] for g in other.param_groups] == [g["lr"] for g in opt.param_groups]
        run.opt = other
        run.steps(int(rng.integers(25, 40)))


def _fit(kind, X, y, dtype, folder=None, **options):
    model = Sequential(
        Dense(X.shape[1], 6, seed=1, dtype=dtype), ReLU(), Dense(6, 3, seed=2, dtype=dtype)
    )
    if folder is not None:
        options.update(checkpoint_dir=folder, checkpoint_every=1, keep_checkpoints=10_000)
    history = wxb.fit(
        model, X, y, loss="cross_entropy", optimizer=kind, epochs=3, batch_size=16,
        seed=5, verbose=False, **options,
    )  # fmt: skip
    return history, model


@pytest.mark.parametrize("kind", list(KINDS))
def test_fit_by_name_matches_torch_and_resumes(seeded, tmp_path, kind):
    """fit(optimizer=name) trains with it (the loss falls), and a run resumed from any of
    its checkpoints ends at the uninterrupted run's weights, bit for bit."""
    rng = seeded.rng
    dtype = str(rng.choice(["float32", "float64"]))
    X = rng.normal(size=(int(rng.integers(40, 80)), 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    msg = seeded.msg(f"{kind} {dtype}")
    name = kind.lower()
    reference = _fit(name, X, y, dtype)
    losses = reference[0].history["loss"]
    assert losses[-1] < losses[0], f"{msg}: {losses}"
    every = tmp_path / "every"
    _fit(name, X, y, dtype, every)
    found = sorted(every.glob("step-*.json"))
    source = found[int(rng.integers(0, len(found) - 1))]
    folder = tmp_path / "resumed"
    folder.mkdir()
    shutil.copy2(source, folder / source.name)
    arrays = source.with_suffix(".safetensors")
    shutil.copy2(arrays, folder / arrays.name)
    resumed = _fit(name, X, y, dtype, folder, resume=True)
    assert resumed[0].resumed_from is not None, msg
    assert resumed[0].history == reference[0].history, f"{msg} from {source.name}"
    for k, v in reference[1].state_dict().items():
        assert np.array_equal(v, resumed[1].state_dict()[k]), f"{msg} from {source.name}: {k}"


def test_defaults_are_pytorchs_and_bad_settings_refused():
    params = list(Dense(3, 2).parameters())
    for kind in KINDS:
        opt = getattr(wxb.optim, kind)(params)
        theirs = getattr(torch.optim, kind)([torch.nn.Parameter(torch.zeros(2))]).defaults
        for key, value in opt.param_groups[0].items():
            if key != "params":
                assert value == theirs[key], (kind, key)
        assert wxb.optim.get_optimizer(kind.lower(), params).lr == theirs["lr"]
        getattr(wxb.optim, kind)(params, foreach=True)  # the same numbers: taken
        if kind == "Adafactor":  # PyTorch's has neither
            with pytest.raises(TypeError, match="capturable"):
                wxb.optim.Adafactor(params, capturable=True)
            continue
        getattr(wxb.optim, kind)(params, capturable=True)
        with pytest.raises(ConfigError, match="differentiable"):
            getattr(wxb.optim, kind)(params, differentiable=True)
    with pytest.raises(ConfigError, match="etas"):
        wxb.optim.Rprop(params, etas=(1.2, 0.5))
    with pytest.raises(ConfigError, match="step_sizes"):
        wxb.optim.Rprop(params, step_sizes=(1.0, 0.1))
    with pytest.raises(ConfigError, match="lambd"):
        wxb.optim.ASGD(params, lambd=-1.0)
    with pytest.raises(ConfigError, match="maximize"):
        wxb.optim.ASGD(params, maximize="yes")
    with pytest.raises(ConfigError, match="beta2_decay"):
        wxb.optim.Adafactor(params, beta2_decay=0.5)
    with pytest.raises(ConfigError, match="clipping threshold"):
        wxb.optim.Adafactor(params, d=0.5)
    with pytest.raises(ConfigError, match=r"eps\[1\]"):
        wxb.optim.Adafactor(params, eps=(None, -1.0))


# -- LBFGS ------------------------------------------------------------------------------------
def _lbfgs_options(rng) -> dict:
    options = {
        "lr": float(rng.uniform(0.2, 1.0)),
        "max_iter": int(rng.integers(1, 5)),
        "history_size": int(rng.integers(1, 8)),
        "line_search_fn": [None, "strong_wolfe"][int(rng.integers(0, 2))],
    }
    if rng.random() < 0.3:
        options["max_eval"] = int(rng.integers(1, 8))
    if rng.random() < 0.3:
        options["tolerance_change"] = float(rng.choice([0.0, 1e-12, 1e-6]))
    if rng.random() < 0.3:
        options["tolerance_grad"] = float(rng.choice([0.0, 1e-9, 1e-3]))
    return options


class _Problem:
    """f(x) = ½xᵀAx + ¼Σx⁴ − bᵀx over the parameters' values in order (A SPD, condition
    10²…10⁴), its gradient computed in NumPy for both closures: each optimiser sees the
    same numbers at the same point."""

    def __init__(self, rng, shapes, quartic=True):
        self.sizes = [int(np.prod(s)) for s in shapes]
        n = sum(self.sizes)
        q, _ = np.linalg.qr(rng.normal(size=(n, n)))
        self.A = q @ np.diag(np.logspace(0, rng.uniform(2, 4), n)) @ q.T
        self.b = rng.normal(size=n)
        self.quartic = quartic
        self.frozen: int | None = None  # a parameter whose gradient is None now

    def value_and_grad(self, x):
        f = 0.5 * x @ self.A @ x - self.b @ x
        g = self.A @ x - self.b
        if self.quartic:
            f, g = f + 0.25 * np.sum(x**4), g + x**3
        return f, g

    def closure(self, params, opt, as_torch, noise=None):
        """``noise``: a generator that shifts the gradient by 1e-14 of its largest entry."""

        def closure():
            opt.zero_grad(set_to_none=False)  # (PyTorch's LBFGS counts a None as 0 too)
            values = [q.detach().numpy() if as_torch else q.data for q in params]
            f, g = self.value_and_grad(np.concatenate([v.reshape(-1) for v in values]))
            if noise is not None:
                g = g + noise.normal(scale=1e-14 * np.abs(g).max(initial=0.0), size=g.shape)
            start = 0
            for i, (q, size) in enumerate(zip(params, self.sizes, strict=True)):
                part = g[start : start + size].reshape(q.shape)
                start += size
                if i == self.frozen:
                    q.grad = None
                else:
                    q.grad = torch.tensor(part) if as_torch else part.copy()
            return torch.tensor(f) if as_torch else wxb.tensor(f, dtype="float64")

        return closure


def test_lbfgs_steps_are_pytorchs_from_the_same_state(seeded):
    """Over 50+ steps, each from the same weights and state as PyTorch's (handed over
    through optimizer_from_torch and optimizer_to_torch in turn, the whole run's state:
    directions, curvature pairs, t, H_diag, counts), wxb's step ends where PyTorch's does.

    Not compared over a whole free run: PyTorch's dot products (MKL's order) and fused
    p + t·d round otherwise than NumPy's, and L-BFGS amplifies such differences from step
    to step (a fixed step of lr 0.9, history 1: 1e-16 grew to 1e-6 in 58 steps). One step
    of up to 4 iterations from one state keeps them at the rounding times the problem's
    condition (≤ 10⁴): rtol 1e-10."""
    rng = seeded.rng
    with torch_default("float64"):
        shapes = _shapes(rng, "LBFGS")
        mine, theirs = _twins(rng, shapes)
        options = _lbfgs_options(rng)
        msg = seeded.msg(f"LBFGS {options} shapes {shapes}")
        opt = wxb.optim.LBFGS(mine, **options)
        their_opt = torch.optim.LBFGS(theirs, **options)
        problem = _Problem(rng, shapes)
        window = sorted(int(s) for s in rng.integers(0, 50, size=2))
        frozen = int(rng.integers(0, len(mine)))  # no gradient for a stretch of steps
        noise = np.random.default_rng(rng.integers(2**63))
        for step in range(int(rng.integers(50, 60))):
            problem.frozen = frozen if window[0] <= step < window[1] else None
            if step % 2:
                interop.optimizer_from_torch(their_opt, opt)
                for p, q in zip(mine, theirs, strict=True):
                    p.data[...] = q.detach().numpy()
            else:
                interop.optimizer_to_torch(opt, their_opt)
                with torch.no_grad():
                    for p, q in zip(mine, theirs, strict=True):
                        q.copy_(torch.tensor(p.data))
            # a third run from the same state, its gradients shifted by 1e-14 of their
            # largest: where curvature pairs go degenerate (a parameter frozen for a
            # stretch) a step amplifies rounding far past the condition's 10⁴ (1e-16 grew
            # to 0.9 in one step of a run diverging to 1e17), as it does this run's shift
            shadow = [q.detach().clone().requires_grad_(True) for q in theirs]
            shadow_opt = torch.optim.LBFGS(shadow, **options)
            shadow_opt.load_state_dict(copy.deepcopy(their_opt.state_dict()))
            loss = opt.step(problem.closure(mine, opt, as_torch=False))
            their_loss = their_opt.step(problem.closure(theirs, their_opt, as_torch=True))
            shadow_opt.step(problem.closure(shadow, shadow_opt, as_torch=True, noise=noise))
            assert float(loss) == pytest.approx(float(their_loss), rel=1e-12), msg
            scale = max(float(np.abs(q.detach().numpy()).max(initial=0)) for q in theirs)
            for i, (p, q, r) in enumerate(zip(mine, theirs, shadow, strict=True)):
                want = q.detach().numpy()
                spread = np.abs(r.detach().numpy() - want)
                off = np.abs(p.data - want) - (1e-10 * np.abs(want) + 1e-10 * scale + spread)
                assert np.all(off <= 0), (
                    f"{msg}: parameter {i} after step {step + 1}: {p.data} against torch's "
                    f"{want} (a shifted run's spread {spread})"
                )
            state, their_state = opt.state[mine[0]], their_opt.state[theirs[0]]
            for key in ("n_iter", "func_evals"):
                assert state[key] == their_state[key], f"{msg}: {key} after step {step + 1}"
            assert len(state["old_dirs"]) == len(their_state["old_dirs"]), msg


def test_lbfgs_reaches_the_least_squares_solution(seeded):
    """On a convex quadratic, L-BFGS with the strong-Wolfe search ends at A⁻¹b (NumPy's
    solve), the gradient under tolerance_grad; its state_dict taken mid-run through JSON
    continues the run unchanged."""
    rng = seeded.rng
    shapes = [(int(rng.integers(2, 6)), int(rng.integers(2, 6))), (int(rng.integers(1, 6)),)]
    mine, _ = _twins(rng, shapes)
    problem = _Problem(rng, shapes, quartic=False)
    msg = seeded.msg(f"shapes {shapes}")
    history = int(rng.integers(3, 20))
    opt = wxb.optim.LBFGS(mine, history_size=history, line_search_fn="strong_wolfe")
    opt.step(problem.closure(mine, opt, as_torch=False))
    saved = json.loads(json.dumps(opt.state_dict(), default=lambda a: a.tolist()))
    state = saved["state"]["0"]
    for key in ("d", "prev_flat_grad"):
        state[key] = np.array(state[key])
    for key in ("old_dirs", "old_stps"):
        state[key] = [np.array(v) for v in state[key]]
    again = wxb.optim.LBFGS(mine, line_search_fn="strong_wolfe")
    again.load_state_dict({"state": {0: state}, "param_groups": saved["param_groups"]})
    assert again.history_size == history, msg
    for _ in range(40):
        again.step(problem.closure(mine, again, as_torch=False))
    x = np.concatenate([p.data.reshape(-1) for p in mine])
    want = np.linalg.solve(problem.A, problem.b)
    cond = np.linalg.cond(problem.A)
    np.testing.assert_allclose(x, want, rtol=0, atol=1e-6 * cond * np.abs(want).max(), err_msg=msg)
    assert np.abs(problem.value_and_grad(x)[1]).max() <= 1e-5 * cond, msg


def test_lbfgs_trains_a_wxb_model_through_its_closure(seeded):
    """The closure a PyTorch user writes (zero_grad, forward, loss, backward, return the
    loss) on a wxb model: a linear model ends at NumPy's least-squares fit."""
    rng = seeded.rng
    X = rng.normal(size=(int(rng.integers(20, 60)), int(rng.integers(2, 6))))
    y = X @ rng.normal(size=(X.shape[1], 2)) + rng.normal(scale=0.1, size=(len(X), 2))
    model = Dense(X.shape[1], 2, dtype="float64")
    opt = wxb.optim.LBFGS(
        model.parameters(), line_search_fn="strong_wolfe", tolerance_grad=1e-12,
        tolerance_change=1e-15,
    )  # fmt: skip
    loss_fn = wxb.nn.MSELoss()

    def closure():
        opt.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        return loss

    first = float(opt.step(closure))
    for _ in range(20):
        opt.step(closure)
    ones = np.hstack([X, np.ones((len(X), 1))])
    want, *_ = np.linalg.lstsq(ones, y, rcond=None)
    got = np.vstack([model.weight.data.T, model.bias.data[None, :]])
    np.testing.assert_allclose(got, want, atol=1e-6, err_msg=seeded.msg("lstsq"))
    assert float(closure()) < first


def test_lbfgs_refusals_are_one_line():
    params = list(Dense(3, 2).parameters())
    with pytest.raises(ConfigError, match="closure"):
        wxb.optim.LBFGS(params).step()
    with pytest.raises(ConfigError, match="one parameter group"):
        wxb.optim.LBFGS([{"params": params[:1]}, {"params": params[1:]}])
    with pytest.raises(ConfigError, match="line_search_fn"):
        wxb.optim.LBFGS(params, line_search_fn="backtracking")
    with pytest.raises(ConfigError, match="history_size"):
        wxb.optim.LBFGS(params, history_size=0)
    theirs = torch.optim.LBFGS([torch.nn.Parameter(torch.zeros(2))]).defaults
    for key, value in wxb.optim.LBFGS(params).param_groups[0].items():
        if key != "params":
            assert value == theirs[key], key
    X, y = np.zeros((4, 3)), np.zeros(4, dtype=int)
    model = Sequential(Dense(3, 2))
    with pytest.raises(ConfigError, match=r"fit cannot run LBFGS: .*closure"):
        wxb.fit(model, X, y, optimizer=wxb.optim.LBFGS(model.parameters()), verbose=False)
    with pytest.raises(ConfigError, match=r"optimizer must be one of .*; got 'lbfgs': .*closure"):
        wxb.fit(model, X, y, optimizer="lbfgs", verbose=False)


def test_sparse_adam_says_why_it_is_missing():
    with pytest.raises(AttributeError, match=r"SparseAdam.*sparse gradients.*Adam"):
        wxb.optim.SparseAdam  # noqa: B018
    with pytest.raises(ImportError, match=r"SparseAdam.*sparse gradients"):
        from wxb.optim import SparseAdam  # noqa: F401


@pytest.mark.parametrize("kind", list(KINDS))
def test_wxb_train_runs_and_resumes_each_by_name(seeded, tmp_path, capsys, kind):
    """wxb train --optimizer rprop|asgd|adafactor: a run resumed from one of its own
    checkpoints ends at the uninterrupted run's weights, bit for bit."""
    from wxb.cli import main

    rng = seeded.rng
    rows = int(rng.integers(40, 80))
    X = rng.normal(size=(rows, 3))
    y = (X[:, 0] + rng.normal(scale=0.3, size=rows) > 0).astype(int)
    data = tmp_path / "d.csv"
    data.write_text(
        "a,b,c,y\n" + "".join(f"{r[0]},{r[1]},{r[2]},{t}\n" for r, t in zip(X, y, strict=True))
    )

    def train(folder, *more):
        argv = ["train", "--data", str(data), "--target", "y", "--optimizer", kind.lower(),
                "--epochs", "3", "--batch-size", "16", "--hidden", "5", "--seed", "3",
                "--checkpoint-dir", str(folder), "--keep-checkpoints", "100",
                "--checkpoint-every", "1", "-o", str(folder / "m.safetensors"), *more]  # fmt: skip
        code = main(argv)
        said = capsys.readouterr()
        assert code == 0, seeded.msg(f"{kind}: {said.err}")
        return wxb.load(folder / "m.safetensors").state_dict(), said.out

    whole, _ = train(tmp_path / "whole")
    found = sorted((tmp_path / "whole").glob("step-*.json"))
    source = found[int(rng.integers(0, len(found) - 1))]
    folder = tmp_path / "resumed"
    folder.mkdir()
    for path in (
        source,
        source.with_suffix(".safetensors"),
        source.with_name("train-options.json"),
    ):
        shutil.copy2(path, folder / path.name)
    resumed, out = train(folder, "--resume")
    assert f"resumed from {folder / source.name}" in out, seeded.msg(out)
    for k, v in whole.items():
        assert np.array_equal(v, resumed[k]), seeded.msg(f"{kind} from {source.name}: {k}")


_RANK_SCRIPT = """
import sys, numpy as np, wxb
from mpi4py import MPI
from wxb.nn import Dense, ReLU, Sequential
kind, dtype, data, out = sys.argv[1:5]
with np.load(data) as d:
    X, y = d["X"], d["y"]
model = Sequential(
    Dense(X.shape[1], 6, seed=1, dtype=dtype), ReLU(), Dense(6, 3, seed=2, dtype=dtype)
)
wxb.fit(model, X, y, loss="cross_entropy", optimizer=kind, epochs=3, batch_size=16, seed=5,
        verbose=False, distributed=True)
if MPI.COMM_WORLD.Get_rank() == 0:
    np.savez(out, **model.state_dict())
"""


# once in CI: ranks against one process, both on the same kernels (test_distributed's)
@pytest.mark.one_route
@pytest.mark.parametrize("kind", list(KINDS))
def test_ranks_sharing_their_weights_train_what_one_process_trains(seeded, tmp_path, kind):
    """fit(distributed=True) under mpiexec -n 2 on one machine, where the ranks share the
    weights and each updates its slice: Rprop's first step sizes and ASGD's average were
    set whole by every rank's step, over the slices the others had updated (Rprop ended
    0.19 away from one process's run), and Adafactor, which steps each parameter whole,
    was stepped by both ranks at once in the shared memory."""
    pytest.importorskip("mpi4py")
    mpiexec = Path(sys.executable).with_name("mpiexec")
    if not mpiexec.is_file():
        pytest.skip(f"no mpiexec beside {sys.executable}")
    rng = seeded.rng
    dtype = str(rng.choice(["float32", "float64"]))
    X = rng.normal(size=(int(rng.integers(40, 80)), 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    np.savez(tmp_path / "data.npz", X=X, y=y)
    (tmp_path / "rank.py").write_text(_RANK_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    out = tmp_path / "ranks.npz"
    done = subprocess.run(
        [str(mpiexec), "-n", "2", sys.executable, str(tmp_path / "rank.py"), kind.lower(),
         dtype, str(tmp_path / "data.npz"), str(out)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    msg = seeded.msg(f"{kind} {dtype}")
    assert done.returncode == 0, f"{msg}: {done.stdout}\n{done.stderr}"
    _, model = _fit(kind.lower(), X, y, dtype)
    rtol = 1e-12 if dtype == "float64" else 1e-5  # the ranks' gradients summed in another order
    with np.load(out) as ranks:
        for key, want in model.state_dict().items():
            scale = max(1.0, float(np.abs(want).max()))
            error = float(np.abs(ranks[key].astype(np.float64) - want).max())
            assert error <= 10 * rtol * scale, f"{msg}: {key} differs by {error:.3g}"


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_group_added_mid_run_is_pytorchs(seeded, kind):
    """add_param_group mid-run (a layer unfrozen later): its parameters start their state
    at their first step, as PyTorch's (Adafactor's repack looked for the new parameters'
    factored state before it was made: IndexError)."""
    rng = seeded.rng
    with torch_default("float64"):
        mine, theirs, opt, their_opt, options = _pair(rng, kind, KINDS[kind])
        extra_shapes = _shapes(rng, kind)
        extra, their_extra = _twins(rng, extra_shapes)
        msg = seeded.msg(f"{kind} groups {options} added {extra_shapes}")
        run = _Run(rng, mine, theirs, opt, their_opt, msg)
        run.steps(int(rng.integers(3, 10)))
        added = KINDS[kind](rng)
        opt.add_param_group({"params": extra, **added})
        their_opt.add_param_group({"params": their_extra, **added})
        run.mine, run.theirs = [*mine, *extra], [*theirs, *their_extra]
        run.targets += [rng.normal(size=p.shape) for p in extra]
        run.seen += [float(np.abs(q.detach().numpy()).max(initial=0.0)) for q in their_extra]
        run.steps(int(rng.integers(10, 20)))
