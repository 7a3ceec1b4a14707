"""Rprop, ASGD, Adafactor and LBFGS, torch.optim's optimisers wxb lacked: PyTorch 2.13's
updates step by step in float64 (every option, several groups, parameters frozen for a
while, zero_grad(set_to_none=False)), their state carried both ways between PyTorch and
wxb mid-run, fit with them and its resume; SparseAdam refused in one line."""

import itertools
import json
import shutil

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
