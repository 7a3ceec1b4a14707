"""Checkpoints: optimiser and schedule state, resuming ``fit`` bit for bit, refusals,
damaged folders, Ctrl-C and full disks.

Every test draws its sizes, seeds, settings and the points where a run stops from a
fresh generator (the ``seeded`` fixture in tests/conftest.py): the seed is printed and
named in the assertion messages, and ``WXB_TEST_SEED=<seed>`` replays a run.

"Stopping" a run at an arbitrary step is done honestly: a run writes a checkpoint
after every step, and one of those checkpoints, alone in a fresh folder, is what a
run killed at that step would have left behind.
"""

from __future__ import annotations

import copy
import errno
import hashlib
import json
import os
import shutil
import signal
import stat
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

import wxb
import wxb.data
from wxb import checkpoint as ckpt
from wxb.checkpoint import CheckpointWarning
from wxb.errors import CheckpointError, ConfigError, TrainingInterrupted, WxbError
from wxb.nn import CrossEntropyLoss, Dense, Dropout, Module, ReLU, Sequential, Tanh
from wxb.optim import SGD, Adam, AdamW, CosineAnnealingLR, InverseScalingLR, StepLR
from wxb.tensor import Tensor


# =====================================================================================
# Helpers
# =====================================================================================
def blobs(rng, n, features, classes, noisy=False):
    """Classes around random centres; ``noisy``: labels unrelated to X (the validation
    loss soon stops improving, so early stopping has something to do)."""
    centres = 3 * rng.normal(size=(classes, features))
    y = rng.integers(0, classes, size=n)
    X = centres[y] + rng.normal(size=(n, features))
    if noisy:
        y = rng.permutation(y)
    return X, y


def same_weights(a: Module, b: Module) -> list[str]:
    """Names of the arrays that are not bit-identical (empty when all are)."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return [k for k in sa if sa[k].dtype != sb[k].dtype or not np.array_equal(sa[k], sb[k])]


def _plain_group(group: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()}


def state_differences(a: dict, b: dict) -> list[str]:
    """Where two optimiser state dicts differ (arrays bit for bit, the rest by ==)."""
    found = []
    if a["steps"] != b["steps"]:
        found.append(f"steps {a['steps']} vs {b['steps']}")
    if len(a["param_groups"]) != len(b["param_groups"]):
        return [*found, "group count"]
    for i, (ga, gb) in enumerate(zip(a["param_groups"], b["param_groups"], strict=True)):
        if _plain_group(ga) != _plain_group(gb):
            found.append(f"param_groups[{i}]: {ga} vs {gb}")
    if set(a["state"]) != set(b["state"]):
        return [*found, f"state indices {sorted(a['state'])} vs {sorted(b['state'])}"]
    for i in a["state"]:
        ea, eb = a["state"][i], b["state"][i]
        if set(ea) != set(eb):
            found.append(f"state[{i}] keys {sorted(ea)} vs {sorted(eb)}")
            continue
        for k in ea:
            va, vb = ea[k], eb[k]
            if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
                if not (np.shape(va) == np.shape(vb) and np.array_equal(va, vb)):
                    found.append(f"state[{i}][{k}]")
            elif va != vb:
                found.append(f"state[{i}][{k}]: {va} vs {vb}")
    return found


def checkpoints(folder: Path) -> list[Path]:
    """The checkpoint JSON files in ``folder``, oldest first."""
    return sorted(folder.glob("step-*.json"))


def step_of(json_path: Path) -> int:
    return int(json_path.stem.split("-")[1])


def copy_checkpoint(json_path: Path, folder: Path) -> Path:
    """One checkpoint (its JSON and arrays) alone in ``folder``: what a run stopped there left."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(json_path, folder / json_path.name)
    arrays = json_path.with_suffix(".safetensors")
    shutil.copy2(arrays, folder / arrays.name)
    return folder / json_path.name


def steps_per_epoch(folder: Path) -> int:
    """The steps of an epoch, as a run's checkpoint records them (after any split)."""
    return json.loads(checkpoints(folder)[0].read_text())["position"]["steps_per_epoch"]


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def assert_complete_and_no_orphans(folder: Path, msg: str) -> list[int]:
    """Every JSON has its arrays file and reads back whole; no arrays file without
    JSON; no temporaries. Returns the checkpoints' steps."""
    jsons = checkpoints(folder)
    arrays = sorted(folder.glob("step-*.safetensors"))
    assert [p.with_suffix(".safetensors") for p in jsons] == arrays, msg
    for path in jsons:
        ckpt.read(path)  # raises on a damaged one
    assert temporaries(folder) == [], msg
    return [step_of(p) for p in jsons]


# =====================================================================================
# 1. Optimiser and schedule state round trips
# =====================================================================================
OPTIMISER_KINDS = [
    "sgd",
    "sgd_momentum",
    "sgd_nesterov",
    "sgd_decay_dampening",
    "adam",
    "adamw",
]
SCHEDULE_KINDS = [None, "step", "cosine", "invscaling"]


def group_settings(rng, kind: str) -> dict:
    """One group's hyperparameters for an optimiser of ``kind`` (lr included)."""
    s = {"lr": float(rng.uniform(0.005, 0.1))}
    if kind == "sgd_momentum":
        s["momentum"] = float(rng.uniform(0.5, 0.95))
    elif kind == "sgd_nesterov":
        s.update(momentum=float(rng.uniform(0.5, 0.95)), nesterov=True)
    elif kind == "sgd_decay_dampening":
        s.update(
            momentum=float(rng.uniform(0.5, 0.95)),
            dampening=float(rng.uniform(0.1, 0.6)),
            weight_decay=float(rng.uniform(1e-3, 0.05)),
        )
    elif kind in ("adam", "adamw"):
        s.update(
            betas=(float(rng.uniform(0.8, 0.95)), float(rng.uniform(0.99, 0.9999))),
            eps=float(10 ** rng.uniform(-9, -6)),
            weight_decay=float(rng.choice([0.0, rng.uniform(1e-3, 0.05)])),
        )
    return s


def build_optimiser(kind: str, params: list, groups: list[dict], split: int | None, lr_scale=1.0):
    """``kind`` over ``params``: one group, or two split at ``split``; lr scaled (an
    optimiser built differently, which load_state_dict must bring to the saved one)."""
    cls = {"adam": Adam, "adamw": AdamW}.get(kind, SGD)
    scaled = [{**g, "lr": g["lr"] * lr_scale} for g in groups]
    if split is None:
        return cls(params, **scaled[0])
    return cls(
        [{"params": params[:split], **scaled[0]}, {"params": params[split:], **scaled[1]}],
        lr=scaled[0]["lr"],
    )


def build_schedule(kind: str | None, opt, values: dict, other: bool = False):
    """A schedule of ``kind``; ``other``: with different settings (a load must restore them)."""
    if kind is None:
        return None
    bump = 1 if other else 0
    if kind == "step":
        return StepLR(opt, step_size=values["step_size"] + bump, gamma=values["gamma"])
    if kind == "cosine":
        return CosineAnnealingLR(opt, T_max=values["T_max"] + 2 * bump, eta_min=values["eta_min"])
    return InverseScalingLR(opt, power=values["power"] * (1 + bump))


def small_mlp(n, h, c, seed, dtype):
    return Sequential(
        Dense(n, h, seed=seed, dtype=dtype), Tanh(), Dense(h, c, seed=seed + 1, dtype=dtype)
    )


def manual_steps(model, opt, schedule, X, y, batches, first: int, per_epoch: int) -> None:
    """One optimiser step per batch; the schedule steps after every ``per_epoch`` steps,
    counting from global step ``first``."""
    loss_fn = CrossEntropyLoss()
    for k, rows in enumerate(batches, start=first):
        opt.zero_grad()
        loss_fn(model(Tensor(X[rows])), y[rows]).backward()
        opt.step()
        if schedule is not None and (k + 1) % per_epoch == 0:
            schedule.step()


class RoundTrip:
    """Random model, data, optimiser and schedule settings for the round-trip tests."""

    def __init__(self, rng, kind: str, groups: int, schedule: str | None) -> None:
        self.kind, self.schedule = kind, schedule
        self.n, self.h, self.c = int(rng.integers(3, 9)), int(rng.integers(3, 9)), 3
        self.rows = int(rng.integers(30, 80))
        self.dtype = str(rng.choice(["float32", "float64"]))
        self.X, self.y = blobs(rng, self.rows, self.n, self.c)
        self.X = self.X.astype(self.dtype)
        self.groups = [group_settings(rng, kind) for _ in range(groups)]
        self.split = None if groups == 1 else int(rng.integers(1, 4))  # 4 parameters
        self.values = {
            "step_size": int(rng.integers(1, 4)),
            "gamma": float(rng.uniform(0.2, 0.9)),
            "T_max": int(rng.integers(2, 7)),
            "eta_min": float(rng.uniform(0, 1e-3)),
            "power": float(rng.uniform(0.2, 1.0)),
        }
        self.per_epoch = int(rng.integers(1, 4))
        self.seed = int(rng.integers(1 << 30))

    def batches(self, rng, count: int) -> list[np.ndarray]:
        size = int(rng.integers(4, 17))
        return [rng.choice(self.rows, size=size, replace=False) for _ in range(count)]

    def model(self, seed_offset=0):
        return small_mlp(self.n, self.h, self.c, self.seed + seed_offset, self.dtype)

    def optimiser(self, model, lr_scale=1.0):
        return build_optimiser(self.kind, model.parameters(), self.groups, self.split, lr_scale)

    def describe(self) -> str:
        return (
            f"{self.kind}, groups {self.groups}, split {self.split}, schedule {self.schedule} "
            f"{self.values}, per_epoch {self.per_epoch}, {self.rows}×{self.n}, {self.dtype}"
        )


@pytest.mark.parametrize("schedule", SCHEDULE_KINDS, ids=str)
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("kind", OPTIMISER_KINDS)
def test_optimiser_and_schedule_state_continue_bit_for_bit(seeded, kind, groups, schedule):
    rng = seeded.rng
    case = RoundTrip(rng, kind, groups, schedule)
    k1, k2 = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    msg = seeded.msg(f"{case.describe()}, {k1} steps then {k2}")

    model_a = case.model()
    opt_a = case.optimiser(model_a)
    sched_a = build_schedule(schedule, opt_a, case.values)
    manual_steps(model_a, opt_a, sched_a, case.X, case.y, case.batches(rng, k1), 0, case.per_epoch)

    # B: another model (other initial weights), an optimiser built with other rates,
    # a schedule with other settings; then everything loaded from A.
    model_b = case.model(seed_offset=1000)
    opt_b = case.optimiser(model_b, lr_scale=3.0)
    sched_b = build_schedule(schedule, opt_b, case.values, other=True)
    model_b.load_state_dict(model_a.state_dict())
    opt_b.load_state_dict(opt_a.state_dict())
    if schedule is not None:
        sched_b.load_state_dict(sched_a.state_dict())
        assert sched_b.state_dict() == sched_a.state_dict(), msg
    assert state_differences(opt_a.state_dict(), opt_b.state_dict()) == [], msg

    later = case.batches(rng, k2)
    manual_steps(model_a, opt_a, sched_a, case.X, case.y, later, k1, case.per_epoch)
    manual_steps(model_b, opt_b, sched_b, case.X, case.y, later, k1, case.per_epoch)
    assert same_weights(model_a, model_b) == [], msg
    assert state_differences(opt_a.state_dict(), opt_b.state_dict()) == [], msg
    assert [g["lr"] for g in opt_a.param_groups] == [g["lr"] for g in opt_b.param_groups], msg
    if schedule is not None:
        assert sched_b.state_dict() == sched_a.state_dict(), msg


def test_state_dict_counts_what_the_optimiser_did(seeded):
    """The layout the brief names: per-parameter step counts (SGD momentum: its own
    count too), the state arrays, groups with parameter indices, and the step total."""
    rng = seeded.rng
    case = RoundTrip(rng, "sgd_momentum", 2, None)
    case.groups[1].pop("momentum")  # the second group without momentum
    k = int(rng.integers(1, 7))
    msg = seeded.msg(f"{case.describe()}, {k} steps")
    model = case.model()
    opt = case.optimiser(model)
    manual_steps(model, opt, None, case.X, case.y, case.batches(rng, k), 0, 1)
    state = opt.state_dict()
    assert state["steps"] == k, msg
    assert [g["params"] for g in state["param_groups"]] == [
        list(range(case.split)),
        list(range(case.split, 4)),
    ], msg
    params = model.parameters()
    for i, entry in state["state"].items():
        in_first = i < case.split
        assert entry["step"] == k, msg
        assert entry["momentum_step"] == (k if in_first else 0), msg
        assert entry["velocity"].shape == params[i].shape, msg
    adam_model = case.model()
    adam = Adam(adam_model.parameters(), lr=0.01)
    manual_steps(adam_model, adam, None, case.X, case.y, case.batches(rng, k), 0, 1)
    entry = adam.state_dict()["state"][0]
    assert set(entry) == {"step", "moment1", "moment2"}, msg
    assert entry["step"] == k and np.all(entry["moment2"] >= 0), msg


@pytest.mark.parametrize("kind", ["sgd_momentum", "adam"])
def test_state_dict_returns_copies(seeded, kind):
    rng = seeded.rng
    case = RoundTrip(rng, kind, 2, "step")
    msg = seeded.msg(case.describe())
    model = case.model()
    opt = case.optimiser(model)
    sched = build_schedule("step", opt, case.values)
    manual_steps(model, opt, sched, case.X, case.y, case.batches(rng, 3), 0, 1)
    before = copy.deepcopy(opt.state_dict())
    sched_before = copy.deepcopy(sched.state_dict())

    mutated = opt.state_dict()
    for entry in mutated["state"].values():
        for key, value in entry.items():
            if isinstance(value, np.ndarray):
                value += 1.0
                value[...] = np.nan
            else:
                entry[key] = value + 5
    mutated["state"].pop(0)
    mutated["steps"] += 7
    mutated["param_groups"][0]["lr"] = 123.0
    mutated["param_groups"][0]["params"].append(99)
    mutated["param_groups"].pop()
    s = sched.state_dict()
    s["base_lrs"][0] = 77.0
    s["base_lrs"].append(1.0)
    s["epoch"] = 1000

    assert state_differences(before, opt.state_dict()) == [], msg
    assert opt.param_groups[0]["lr"] == before["param_groups"][0]["lr"], msg
    assert sched.state_dict() == sched_before, msg
    assert sched.base_lrs == sched_before["base_lrs"], msg


def _corruptions(rng, state: dict, kind: str) -> dict[str, tuple[dict, str]]:
    """Bad state dicts made from a good one: (state, what the message must say)."""
    array_key = "moment1" if kind == "adam" else "velocity"
    n_params = len(state["state"])
    which = int(rng.integers(n_params))
    out: dict[str, tuple[dict, str]] = {}

    s = copy.deepcopy(state)
    s["param_groups"].pop()
    out["one group fewer"] = (s, "parameter groups")

    s = copy.deepcopy(state)
    s["param_groups"].append(copy.deepcopy(s["param_groups"][-1]))
    out["one group more"] = (s, "parameter groups")

    s = copy.deepcopy(state)
    a = s["state"][which][array_key]
    s["state"][which][array_key] = np.zeros((*a.shape, 2), a.dtype)
    out["wrong shape"] = (s, "shape")

    s = copy.deepcopy(state)
    a = s["state"][which][array_key]
    s["state"][which][array_key] = a.T.copy() if a.ndim == 2 and a.shape[0] != a.shape[1] else a[:1]
    if s["state"][which][array_key].shape == a.shape:  # a 1×1 matrix: make it longer instead
        s["state"][which][array_key] = np.zeros(a.size + 1, a.dtype)
    out["transposed or cut"] = (s, "shape")

    s = copy.deepcopy(state)
    s["state"][which]["bogus"] = np.zeros_like(s["state"][which][array_key])
    out["unknown state key"] = (s, "unknown state 'bogus'")

    s = copy.deepcopy(state)
    s["param_groups"][-1]["weight_decay"] = "strong"
    out["a setting that is not a number"] = (s, "weight_decay")

    s = copy.deepcopy(state)
    s["state"][which]["step"] = -int(rng.integers(1, 5))
    out["negative step"] = (s, "step count")

    s = copy.deepcopy(state)
    s["steps"] = -int(rng.integers(1, 5))
    out["negative steps"] = (s, "step count")

    s = copy.deepcopy(state)
    del s["state"][which]
    out["missing entry"] = (s, "missing")

    s = copy.deepcopy(state)
    for entry in s["state"].values():
        del entry[array_key]
    out["no state arrays"] = (s, repr(array_key))

    s = copy.deepcopy(state)
    s["param_groups"][0]["params"] = [i + 1 for i in s["param_groups"][0]["params"]]
    out["other parameter indices"] = (s, "not this group's")

    s = copy.deepcopy(state)
    s["param_groups"][-1]["lr"] = -0.5
    out["negative lr"] = (s, "lr")

    s = copy.deepcopy(state)
    s["state"][which][array_key] = s["state"][which][array_key].astype(np.int64)
    out["integer state"] = (s, array_key)

    s = copy.deepcopy(state)
    del s["param_groups"]
    out["no param_groups"] = (s, "state_dict")
    return out


@pytest.mark.parametrize("kind", ["sgd_momentum", "adam"])
def test_load_state_dict_refuses_bad_states_and_changes_nothing(seeded, kind):
    rng = seeded.rng
    case = RoundTrip(rng, kind, 2, "cosine")
    msg = seeded.msg(case.describe())
    model_a = case.model()
    opt_a = case.optimiser(model_a)
    sched_a = build_schedule("cosine", opt_a, case.values)
    manual_steps(model_a, opt_a, sched_a, case.X, case.y, case.batches(rng, 4), 0, 1)
    good = opt_a.state_dict()

    # B has a state of its own (other rates, other steps): a refused load must keep it.
    model_b = case.model(seed_offset=7)
    opt_b = case.optimiser(model_b, lr_scale=0.5)
    sched_b = build_schedule("cosine", opt_b, case.values)
    manual_steps(model_b, opt_b, sched_b, case.X, case.y, case.batches(rng, 2), 0, 1)
    before, weights = copy.deepcopy(opt_b.state_dict()), model_b.state_dict()
    lrs = [g["lr"] for g in opt_b.param_groups]

    for name, (bad, says) in _corruptions(rng, good, kind).items():
        with pytest.raises(ConfigError, match=None) as refused:
            opt_b.load_state_dict(bad)
        assert says in str(refused.value), seeded.msg(f"{name}: {refused.value}")
        assert state_differences(before, opt_b.state_dict()) == [], seeded.msg(name)
        assert [g["lr"] for g in opt_b.param_groups] == lrs, seeded.msg(name)
    # still usable, and a good state still loads after all those refusals
    opt_b.load_state_dict(good)
    assert state_differences(good, opt_b.state_dict()) == [], msg
    assert all(np.array_equal(v, weights[k]) for k, v in model_b.state_dict().items()), msg


def test_schedule_load_refuses_another_kind_and_bad_values(seeded):
    rng = seeded.rng
    case = RoundTrip(rng, "adam", 1, None)
    msg = seeded.msg(case.describe())
    model = case.model()
    opt = case.optimiser(model)
    schedules = {k: build_schedule(k, opt, case.values) for k in ("step", "cosine", "invscaling")}
    for s in schedules.values():
        for _ in range(int(rng.integers(1, 4))):
            s.step()
    for mine, target in schedules.items():
        before = copy.deepcopy(target.state_dict())
        for other, source in schedules.items():
            if other == mine:
                continue
            with pytest.raises(ConfigError, match=type(source).__name__):
                target.load_state_dict(source.state_dict())
            assert target.state_dict() == before, msg
        bad_states = {
            "extra key": {**before, "bogus": 1},
            "missing key": {k: v for k, v in before.items() if k != "epoch"},
            "negative epoch": {**before, "epoch": -1},
            "rates not a list": {**before, "base_lrs": 0.1},
            # (a cosine's negative starting rate is refused where the rate climbs below 0)
            "negative rate": {
                **before,
                "base_lrs": [-0.1],
                **({"epoch": target.T_max + 1} if mine == "cosine" else {}),
            },
            "not a dict": [before],
        }
        for name, bad in bad_states.items():
            with pytest.raises(ConfigError):
                target.load_state_dict(bad)
            assert target.state_dict() == before, seeded.msg(f"{mine}: {name}")


def test_a_schedule_holding_what_json_cannot_keep_is_refused_before_training(rng, tmp_path):
    """A StepLR subclass holding the model (a hook) crashed at the first checkpoint, after
    an epoch of training, with json's 'Object of type Sequential is not JSON serializable'."""

    class Hooked(StepLR):
        def __init__(self, optimizer, model, hidden: bool):
            super().__init__(optimizer, step_size=int(rng.integers(1, 4)), gamma=0.5)
            setattr(self, "_model" if hidden else "model", model)
            self.best = float("inf")  # the checkpoints keep it (as a tagged string)

    n = int(rng.integers(10, 40))
    X, y = rng.normal(size=(n, 3)), rng.integers(0, 2, n)

    def fit(hidden: bool, folder: Path) -> Sequential:
        model = Sequential(Dense(3, 4), Tanh(), Dense(4, 2)).to("float64")
        opt = SGD(model.parameters(), lr=0.1)
        schedule = Hooked(opt, model, hidden)
        fit.before = [p.data.copy() for p in model.parameters()]
        wxb.fit(model, X, y, optimizer=opt, lr_schedule=schedule, epochs=2, verbose=False,
                checkpoint_dir=folder)  # fmt: skip
        return model

    with pytest.raises(ConfigError, match=r"attribute 'model' \(Sequential\).*'_model'"):
        fit(False, tmp_path / "refused")
    assert not (tmp_path / "refused").exists() or not list((tmp_path / "refused").iterdir())
    model = fit(True, tmp_path / "kept")  # underscored: not in the schedule's state
    assert list((tmp_path / "kept").glob("*.json"))
    pairs = zip(model.parameters(), fit.before, strict=True)
    assert not all(np.array_equal(p.data, b) for p, b in pairs)  # it trained


def test_schedule_load_refuses_rates_for_another_number_of_groups(seeded):
    rng = seeded.rng
    case = RoundTrip(rng, "sgd_momentum", 2, "step")
    two = case.optimiser(case.model())
    sched_two = build_schedule("step", two, case.values)
    sched_two.step()
    one_model = case.model()
    one = SGD(one_model.parameters(), lr=0.01)
    sched_one = build_schedule("step", one, case.values)
    before = copy.deepcopy(sched_one.state_dict())
    try:
        sched_one.load_state_dict(sched_two.state_dict())
    except ConfigError:
        assert sched_one.state_dict() == before
        return
    sched_one.step()  # a load that was accepted must leave a schedule that works


# =====================================================================================
# fit: the runs that are compared
# =====================================================================================
class Through(Sequential):
    """A Sequential with its own forward: fit takes the graph engine."""

    def forward(self, x):
        return super().forward(x)


class Gated(Module):
    """A custom module (layers as attributes, its own forward), dropout inside."""

    def __init__(self, n, h, c, seed, p, dropout_seed, dtype):
        super().__init__()
        self.body = Dense(n, h, seed=seed, dtype=dtype)
        self.gate = Dense(n, h, seed=seed + 2, dtype=dtype)
        self.drop = Dropout(p, seed=dropout_seed)
        self.head = Dense(h, c, seed=seed + 1, dtype=dtype)

    def forward(self, x):
        h = wxb.ops.relu(self.body(x)) * wxb.nn.functional.sigmoid(self.gate(x))
        return self.head(self.drop(h))


class Run:
    """One fit configuration: ``fit()`` builds a fresh model (same constructor seeds)
    and a fresh optimiser every time, so runs can be compared bit for bit."""

    def __init__(self, rng, engine="planned", opt="adam", schedule=None, dropout=None,
                 split=False, shuffle=True, stop=None, clip=False, epochs=None):  # fmt: skip
        self.engine, self.opt, self.schedule = engine, opt, schedule
        self.n = int(rng.integers(5, 31))
        self.h = int(rng.integers(4, 17))
        self.c = int(rng.integers(2, 5))
        self.rows = int(rng.integers(50, 201))
        self.dtype = str(rng.choice(["float32", "float64"]))
        self.X, self.y = blobs(rng, self.rows, self.n, self.c, noisy=stop == "patience")
        self.seed = int(rng.integers(1 << 30))
        self.model_seed = int(rng.integers(1 << 30))
        self.p = float(rng.uniform(0.1, 0.5)) if dropout else 0.0
        self.dropout_seed = int(rng.integers(1 << 30)) if dropout == "own" else None
        self.split = float(rng.uniform(0.15, 0.35)) if split else 0.0
        train_rows = self.rows - int(np.ceil(self.split * self.rows))
        self.batch_size = int(rng.integers(8, max(9, train_rows // 3)))  # ≥ 3 steps an epoch
        self.epochs = int(rng.integers(3, 6)) if epochs is None else epochs
        self.lr = float(rng.uniform(0.005, 0.05) if opt == "adam" else rng.uniform(0.02, 0.2))
        self.nesterov = bool(rng.random() < 0.5)
        self.options = {"shuffle": shuffle}
        if stop == "forced":  # nothing improves by 1e9: stops after epoch 1 + patience
            patience = int(rng.integers(1, 4))
            self.epochs = max(self.epochs, patience + 2)
            self.options.update(early_stopping=patience, min_delta=1e9)
        elif stop == "patience":
            self.options.update(early_stopping=1)
            self.lr *= 5
        if clip:
            self.options["clip_grad_norm"] = float(rng.uniform(0.1, 2.0))

    def model(self):
        layers = []
        if self.engine != "module":
            layers = [Dense(self.n, self.h, seed=self.model_seed, dtype=self.dtype), ReLU()]
            if self.p:
                layers.append(Dropout(self.p, seed=self.dropout_seed))
            layers.append(Dense(self.h, self.c, seed=self.model_seed + 1, dtype=self.dtype))
        if self.engine == "planned":
            return Sequential(*layers)
        if self.engine == "subclass":
            return Through(*layers)
        return Gated(self.n, self.h, self.c, self.model_seed, self.p, self.dropout_seed, self.dtype)

    def optimiser(self, model):
        if self.opt == "sgd_momentum":
            return {"optimizer": SGD(model.parameters(), lr=self.lr, momentum=0.9,
                                     nesterov=self.nesterov)}  # fmt: skip
        return {"optimizer": self.opt, "lr": self.lr}

    def fit(self, folder=None, model=None, **override):
        model = self.model() if model is None else model
        kwargs = {
            "loss": "cross_entropy",
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "validation_split": self.split,
            "lr_schedule": self.schedule,
            "verbose": False,
            **self.options,
        }
        if "optimizer" not in override:
            kwargs.update(self.optimiser(model))
        if folder is not None:
            kwargs["checkpoint_dir"] = folder
        kwargs.update(override)
        X, y = kwargs.pop("X", self.X), kwargs.pop("y", self.y)
        history = wxb.fit(model, X, y, **kwargs)
        return history, model

    def describe(self) -> str:
        return (
            f"{self.engine} engine, {self.opt} lr {self.lr:.4g} (nesterov {self.nesterov}), "
            f"schedule {self.schedule}, "
            f"dropout {self.p:.2f} (own seed {self.dropout_seed}), split {self.split:.2f}, "
            f"{self.rows}×{self.n} → {self.c} classes, hidden {self.h}, batch {self.batch_size}, "
            f"epochs {self.epochs}, {self.dtype}, seed {self.seed}, {self.options}"
        )


def assert_same_run(a, b, msg: str) -> None:
    (ha, ma), (hb, mb) = a, b
    assert hb.history == ha.history, msg
    assert hb.best_epoch == ha.best_epoch, msg
    assert hb.stopped_early == ha.stopped_early, msg
    assert same_weights(ma, mb) == [], msg


def positions(folder: Path) -> dict[Path, dict]:
    return {p: json.loads(p.read_text())["position"] for p in checkpoints(folder)}


# =====================================================================================
# 2. Resuming fit from any step
# =====================================================================================
RESUME_CASES = {
    "planned-adam-cosine-dropout-split-stops": dict(
        engine="planned", opt="adam", schedule="cosine", dropout="fit", split=True, stop="forced"
    ),
    "planned-sgdm-step-unshuffled": dict(
        engine="planned", opt="sgd_momentum", schedule="step", shuffle=False
    ),
    "planned-adam-invscaling-own-dropout-patience": dict(
        engine="planned", opt="adam", schedule="invscaling", dropout="own", split=True,
        stop="patience",
    ),
    "planned-sgd-clipped": dict(engine="planned", opt="sgd", dropout="fit", split=True, clip=True),
    "subclass-sgdm-cosine-dropout-stops": dict(
        engine="subclass", opt="sgd_momentum", schedule="cosine", dropout="fit", split=True,
        stop="forced",
    ),
    "subclass-adam-split": dict(engine="subclass", opt="adam", split=True),
    "module-adam-step-dropout-patience": dict(
        engine="module", opt="adam", schedule="step", dropout="fit", split=True, stop="patience"
    ),
    "module-sgdm-invscaling-own-dropout-stops-on-loss": dict(
        engine="module", opt="sgd_momentum", schedule="invscaling", dropout="own", stop="forced"
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_resume_from_any_checkpoint_matches_the_uninterrupted_run(seeded, tmp_path, case):
    rng = seeded.rng
    run = Run(rng, **RESUME_CASES[case])
    msg = seeded.msg(run.describe())
    reference = run.fit()
    expected_engine = "planned" if run.engine == "planned" else "graph"
    assert reference[0].engine == expected_engine, msg
    if "stop" in RESUME_CASES[case] and RESUME_CASES[case]["stop"] == "forced":
        patience = run.options["early_stopping"]
        assert reference[0].stopped_early and reference[0].epochs == 1 + patience, msg

    every = tmp_path / "every"
    checkpointed = run.fit(every, checkpoint_every=1, keep_checkpoints=10_000)
    assert_same_run(reference, checkpointed, msg + " (writing checkpoints changed the run)")
    assert checkpointed[0].resumed_from is None, msg

    found = positions(every)
    ends = [p for p, pos in found.items() if pos["step"] == 0]
    mids = [p for p, pos in found.items() if pos["step"] != 0]
    assert ends and mids, msg
    # Every checkpoint is at its global step: one per step.
    assert [step_of(p) for p in found] == list(range(1, len(found) + 1)), msg
    # an epoch's end, a step inside an epoch, any step, and a late one (where early
    # stopping has waited, when it waits)
    chosen = {ends[rng.integers(len(ends))], mids[rng.integers(len(mids))]}
    chosen.add(list(found)[rng.integers(len(found))])
    per_epoch = next(iter(found.values()))["steps_per_epoch"]
    chosen.add(list(found)[-int(rng.integers(2, per_epoch + 2))])
    for source in sorted(chosen):
        where = f"{msg}; resumed from {source.name} {found[source]}"
        folder = tmp_path / f"from-{source.stem}"
        copied = copy_checkpoint(source, folder)
        with warnings.catch_warnings():
            warnings.simplefilter("error", CheckpointWarning)  # nothing here is damaged
            resumed = run.fit(folder, checkpoint_every=1, keep_checkpoints=10_000, resume=True)
        assert_same_run(reference, resumed, where)
        assert resumed[0].resumed_from == str(copied), where
        assert resumed[0].engine == expected_engine, where
        # The resumed run wrote the same checkpoints as the uninterrupted one, byte for byte.
        for later in checkpoints(folder):
            twin = every / later.name
            assert twin.exists(), where
            assert later.read_bytes() == twin.read_bytes(), f"{where}: {later.name}"
            arrays = later.with_suffix(".safetensors").name
            assert (folder / arrays).read_bytes() == (every / arrays).read_bytes(), where


class LegacyNoise(Module):
    """Gaussian noise drawn from a legacy np.random.RandomState, as older code does."""

    def __init__(self, n, h, c, seed):
        super().__init__()
        self.body, self.head = Dense(n, h, seed=seed), Dense(h, c, seed=seed + 1)
        self.noise = np.random.RandomState(seed)

    def forward(self, x):
        h = wxb.ops.relu(self.body(x))
        if self.training:  # normal() keeps a cached Gaussian: resumed with the state
            h = h + self.noise.normal(scale=0.1, size=h.shape)
        return self.head(h)


def test_resume_restores_a_legacy_random_state_a_module_holds(seeded, tmp_path):
    """A module's np.random.RandomState is checkpointed as a Generator is (it was left
    where the new process put it: the resumed run drew other noise, and said nothing)."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 9, size=3))
    seed = int(rng.integers(1 << 30))
    X, y = blobs(rng, int(rng.integers(40, 100)), n, c)
    options = {"epochs": 3, "batch_size": 16, "seed": seed, "verbose": False}
    reference = LegacyNoise(n, h, c, seed)
    wxb.fit(reference, X, y, **options)
    every = tmp_path / "every"
    wxb.fit(LegacyNoise(n, h, c, seed), X, y, checkpoint_dir=every, checkpoint_every=1,
            keep_checkpoints=10_000, **options)  # fmt: skip
    found = checkpoints(every)
    source = found[int(rng.integers(0, len(found) - 1))]
    resumed = LegacyNoise(n, h, c, seed)  # its RandomState at the start, not at the step
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)
        wxb.fit(resumed, X, y, checkpoint_dir=copy_checkpoint(source, tmp_path / "one").parent,
                resume=True, **options)  # fmt: skip
    assert same_weights(reference, resumed) == [], seeded.msg(source.name)


def test_resume_with_every_epoch_checkpoints_and_default_keep(seeded, tmp_path):
    """checkpoint_every=None: a checkpoint at each epoch's end, two kept."""
    rng = seeded.rng
    run = Run(rng, engine=str(rng.choice(["planned", "subclass"])), opt="adam",
              schedule=str(rng.choice(["step", "cosine", "invscaling"])), dropout="fit",
              split=True)  # fmt: skip
    msg = seeded.msg(run.describe())
    reference = run.fit()
    folder = tmp_path / "run"
    assert_same_run(reference, run.fit(folder), msg)
    found = positions(folder)
    assert len(found) == 2, msg
    assert all(pos["step"] == 0 for pos in found.values()), msg
    assert [pos["epoch"] - 1 for pos in found.values()] == [run.epochs - 1, run.epochs], msg
    older = next(iter(found))
    fresh = tmp_path / "older"
    copy_checkpoint(older, fresh)
    assert_same_run(reference, run.fit(fresh, resume=True), msg)


def test_resume_with_an_empty_folder_starts_afresh(seeded, tmp_path):
    rng = seeded.rng
    run = Run(rng, dropout="fit", split=True, schedule="cosine")
    msg = seeded.msg(run.describe())
    reference = run.fit()
    for folder in (tmp_path / "missing", tmp_path / "empty"):
        if folder.name == "empty":
            folder.mkdir()
        resumed = run.fit(folder, resume=True)
        assert_same_run(reference, resumed, msg)
        assert resumed[0].resumed_from is None, msg
        assert checkpoints(folder), msg


def test_resume_of_a_finished_run_changes_nothing(seeded, tmp_path):
    rng = seeded.rng
    run = Run(rng, opt="sgd_momentum", dropout="fit", split=True, stop="forced")
    msg = seeded.msg(run.describe())
    folder = tmp_path / "run"
    first = run.fit(folder, checkpoint_every=int(rng.integers(1, 4)))
    before = folder_bytes(folder)
    again = run.fit(folder, resume=True)
    assert_same_run(first, again, msg)
    assert folder_bytes(folder) == before, msg


# -- Ctrl-C -----------------------------------------------------------------------------
class InterruptingAdam(Adam):
    """Adam that sends this process SIGINT (``times`` times) right after step ``at``."""

    def __init__(self, params, lr, at=None, times=1):
        super().__init__(params, lr=lr)
        self.at, self.times = at, times

    def step(self):
        super().step()
        if self.steps == self.at:
            for _ in range(self.times):
                os.kill(os.getpid(), signal.SIGINT)


class InterruptingThrough(Through):
    """A graph-engine model that sends SIGINT at its ``at``-th forward call."""

    at: int | None = None
    times = 1

    def forward(self, x):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == self.at:
            for _ in range(self.times):
                os.kill(os.getpid(), signal.SIGINT)
        return super().forward(x)


@pytest.fixture
def python_sigint_handler():
    """fit installs its Ctrl-C handler only over Python's own; the test puts it there, as
    an interactive session has it: CI's runner, started in the background of a shell,
    ignores SIGINT, and these tests were skipped there (test_resume_same_objects50's
    way). fit must leave Python's handler in place when it returns."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "not restored"
    finally:
        signal.signal(signal.SIGINT, previous)


def _where(epoch: int, step: int, steps: int) -> str:
    return (
        f"the end of epoch {epoch}" if step == steps else f"epoch {epoch}, step {step} of {steps}"
    )


@pytest.mark.parametrize("every", [None, 1, 3], ids=str)
def test_ctrl_c_in_the_planned_engine_stops_and_resumes_exactly(
    seeded, tmp_path, python_sigint_handler, every
):
    rng = seeded.rng
    run = Run(rng, engine="planned", opt="adam", dropout="fit", split=bool(rng.random() < 0.5),
              schedule=str(rng.choice(["step", "cosine", "invscaling"])))  # fmt: skip

    def fit(folder=None, interrupt_at=None, **kw):
        model = run.model()
        opt = InterruptingAdam(model.parameters(), lr=run.lr, at=interrupt_at)
        return run.fit(folder, model=model, optimizer=opt, lr=None, **kw)

    reference = fit(tmp_path / "reference")
    steps = steps_per_epoch(tmp_path / "reference")
    total = steps * run.epochs
    at = int(rng.integers(1, total))  # not the very last step: that one just finishes
    msg = seeded.msg(f"{run.describe()}; SIGINT after step {at} of {total}; every {every}")
    assert reference[0].engine == "planned", msg
    folder = tmp_path / "run"
    # Caught as KeyboardInterrupt, so a plain one fails this test, not the whole session.
    with pytest.raises(KeyboardInterrupt) as stopped:
        fit(folder, interrupt_at=at, checkpoint_every=every)
    exc = stopped.value
    assert isinstance(exc, TrainingInterrupted), seeded.msg(repr(exc))
    epoch, step = (at - 1) // steps + 1, (at - 1) % steps + 1
    assert exc.where == _where(epoch, step, steps), msg
    assert exc.checkpoint is not None and Path(exc.checkpoint).is_file(), msg
    assert Path(exc.checkpoint) == checkpoints(folder)[-1], msg
    assert step_of(Path(exc.checkpoint)) == at, msg
    assert str(exc.checkpoint) in str(exc) and "resume=True" in str(exc), msg
    assert exc.history.epochs == epoch - (step != steps), msg
    assert_complete_and_no_orphans(folder, msg)

    resumed = fit(folder, resume=True, checkpoint_every=every)
    assert_same_run(reference, resumed, msg)
    assert resumed[0].resumed_from == str(exc.checkpoint), msg


def test_ctrl_c_in_the_graph_engine_during_training_or_validation(
    seeded, tmp_path, python_sigint_handler
):
    rng = seeded.rng
    run = Run(rng, engine="subclass", opt="sgd_momentum", dropout="fit", split=True,
              schedule="cosine")  # fmt: skip

    def fit(folder=None, interrupt_at=None, **kw):
        model = InterruptingThrough(*run.model())
        model.at = interrupt_at
        return run.fit(folder, model=model, **kw)

    reference = fit(tmp_path / "reference")
    steps = steps_per_epoch(tmp_path / "reference")
    # forward calls: 1 (fit's check of the output shape), then per epoch `steps` training
    # calls and one for the validation data (smaller than evaluate's 4096 rows)
    last = 1 + (run.epochs - 1) * (steps + 1) + (steps - 1)
    at = int(rng.integers(2, last + 1))
    epoch, k = (at - 2) // (steps + 1) + 1, (at - 2) % (steps + 1) + 1  # k = steps + 1: validation
    msg = seeded.msg(f"{run.describe()}; SIGINT at forward call {at} (epoch {epoch}, call {k})")
    assert reference[0].engine == "graph", msg
    folder = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt) as stopped:
        fit(folder, interrupt_at=at)
    exc = stopped.value
    assert isinstance(exc, TrainingInterrupted), seeded.msg(repr(exc))
    assert exc.where == _where(epoch, min(k, steps), steps), msg
    assert Path(exc.checkpoint) == checkpoints(folder)[-1], msg
    assert_complete_and_no_orphans(folder, msg)
    resumed = fit(folder, resume=True)
    assert_same_run(reference, resumed, msg)


@pytest.mark.parametrize("with_folder", [True, False])
def test_a_second_ctrl_c_stops_at_once(seeded, tmp_path, python_sigint_handler, with_folder):
    rng = seeded.rng
    run = Run(rng, engine="planned", opt="adam")
    steps = int(np.ceil(run.rows / run.batch_size))
    at = int(rng.integers(1, steps * run.epochs))
    msg = seeded.msg(f"{run.describe()}; two SIGINTs after step {at}")
    model = run.model()
    opt = InterruptingAdam(model.parameters(), lr=run.lr, at=at, times=2)
    folder = tmp_path / "run" if with_folder else None
    with pytest.raises(KeyboardInterrupt) as stopped:
        run.fit(folder, model=model, optimizer=opt, lr=None, checkpoint_every=None)
    assert not isinstance(stopped.value, TrainingInterrupted), msg
    assert opt.steps == at, msg  # no step after the second Ctrl-C
    # One Ctrl-C without a checkpoint folder: stops after the step, says it cannot resume.
    model = run.model()
    opt = InterruptingAdam(model.parameters(), lr=run.lr, at=at, times=1)
    with pytest.raises(KeyboardInterrupt) as once:
        run.fit(folder and tmp_path / "other", model=model, optimizer=opt, lr=None)
    assert isinstance(once.value, TrainingInterrupted), seeded.msg(repr(once.value))
    assert opt.steps == at, msg
    if with_folder:
        assert Path(once.value.checkpoint).is_file(), msg
    else:
        assert once.value.checkpoint is None and "cannot be resumed" in str(once.value), msg


# =====================================================================================
# 3. Refusals
# =====================================================================================
def test_a_resume_that_differs_is_refused_by_name(seeded, tmp_path):
    rng = seeded.rng
    run = Run(rng, opt="adam", dropout="fit")
    msg = seeded.msg(run.describe())
    folder = tmp_path / "run"
    run.fit(folder, checkpoint_every=int(rng.integers(1, 5)))
    saved = folder_bytes(folder)

    X = run.X.copy()
    X[rng.integers(len(X)), rng.integers(X.shape[1])] += float(rng.choice([-1, 1])) * 0.5
    wider = Run.__new__(Run)
    vars(wider).update(vars(run))
    wider.h = run.h + int(rng.integers(1, 4))
    other_batch = run.batch_size + int(rng.choice([-1, 1]))
    variants = {
        "data": ({"X": X}, "data differ"),
        "batch_size": ({"batch_size": other_batch}, "batch_size differs"),
        "lr": ({"lr": run.lr * 2}, "optimizer differs"),
        "optimiser": ({"optimizer": "adamw"}, "optimizer differs"),
        "seed": ({"seed": run.seed + 1}, "seed differs"),
        "shuffle": ({"shuffle": False}, "shuffle differs"),
        "loss": ({"loss": wxb.nn.CrossEntropyLoss(reduction="sum")}, "loss differs"),
        "early_stopping": ({"early_stopping": 2}, "early_stopping differs"),
        "clip": ({"clip_grad_norm": 1.0}, "clip_grad_norm differs"),
        "schedule": ({"lr_schedule": "step"}, "schedule differs"),
        "validation": ({"validation_split": 0.2}, "validation_split differs"),
    }
    for name, (override, says) in variants.items():
        model = run.model()
        initial = model.state_dict()
        with pytest.raises(ConfigError) as refused:
            run.fit(folder, model=model, resume=True, **override)
        text = str(refused.value)
        assert says in text and "cannot resume from" in text, seeded.msg(f"{name}: {text}")
        assert all(np.array_equal(v, initial[k]) for k, v in model.state_dict().items()), name
        assert folder_bytes(folder) == saved, seeded.msg(f"{name} changed the folder")
    # the setting that differs, by name, not the two whole records
    said = rf"optimizer differs: group 0 lr {run.lr!r} in the checkpoint, {run.lr * 2!r} now$"
    with pytest.raises(ConfigError, match=said):
        run.fit(folder, resume=True, lr=run.lr * 2)
    with pytest.raises(ConfigError, match="architecture differs"):
        wider.fit(folder, resume=True)
    assert folder_bytes(folder) == saved, msg


def test_a_run_whose_arrays_an_older_wxb_listed_in_another_order_is_the_same_run(rng):
    # state_dict's order changed (parameters then buffers → module by module): a run an
    # older wxb wrote lists the same arrays in the old order, and must still resume
    from wxb import checkpoint as ckpt
    from wxb.train import _differences

    n = int(rng.integers(2, 9))
    model = wxb.nn.Sequential(
        wxb.nn.Standardize(rng.normal(size=n), rng.uniform(0.5, 2, size=n)),
        wxb.nn.Dense(n, 3),
    )
    now = {"architecture": ckpt.architecture(model)}
    state = model.state_dict()
    older = [*model.named_parameters(), *model.named_buffers()]  # the old order
    old_arrays = [[k, list(state[k].shape), str(state[k].dtype)] for k, _ in older]
    assert [a[0] for a in old_arrays] != [a[0] for a in now["architecture"]["arrays"]]
    saved = {"architecture": {**now["architecture"], "arrays": old_arrays}}
    assert _differences(saved, now) == []
    other = {"architecture": {**now["architecture"], "arrays": old_arrays[:-1]}}
    assert _differences(other, now) == ["the model's architecture differs"]


def test_a_folder_holding_checkpoints_needs_resume(seeded, tmp_path):
    rng = seeded.rng
    run = Run(rng)
    folder = tmp_path / "run"
    run.fit(folder)
    saved = folder_bytes(folder)
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        run.fit(folder)
    assert folder_bytes(folder) == saved, seeded.msg(run.describe())
    with pytest.raises(ConfigError, match="checkpoint_dir"):
        run.fit(None, resume=True)
    with pytest.raises(ConfigError, match="checkpoint_dir"):
        run.fit(None, checkpoint_every=2)
    with pytest.raises(ConfigError, match="keep_checkpoints"):
        run.fit(tmp_path / "zero", keep_checkpoints=0)
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        run.fit(tmp_path / "a-file")
    with pytest.raises(ConfigError, match="checkpoint_every"):
        run.fit(tmp_path / "every", checkpoint_every=0)


@pytest.mark.parametrize("schedule", ["cosine", "step", "invscaling", None], ids=str)
def test_more_epochs_keep_the_schedule_of_the_checkpoint(seeded, tmp_path, schedule):
    rng = seeded.rng
    run = Run(rng, opt="adam", schedule=schedule, dropout="fit", split=True)
    more = run.epochs + int(rng.integers(1, 4))
    msg = seeded.msg(f"{run.describe()}; resumed with epochs {more}")
    folder = tmp_path / "run"
    run.fit(folder)
    # derived from epochs: cosine's T_max, step's step_size (epochs // 3); invscaling is not
    changes = schedule == "cosine" or (
        schedule == "step" and max(1, run.epochs // 3) != max(1, more // 3)
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = run.fit(folder, resume=True, epochs=more)
    said = [str(w.message) for w in caught if issubclass(w.category, CheckpointWarning)]
    if changes:
        assert len(said) == 1 and "keeps its settings" in said[0], seeded.msg(str(said))
        assert f"from {run.epochs} to {more}" in said[0], msg
    else:
        assert said == [], seeded.msg(str(said))
    assert resumed[0].epochs == more, msg

    # The same run uninterrupted: a schedule made for the first `epochs`, trained for more.
    model = run.model()
    opt = Adam(model.parameters(), lr=run.lr)
    sched = {
        "cosine": lambda: CosineAnnealingLR(opt, T_max=run.epochs),
        "step": lambda: StepLR(opt, step_size=max(1, run.epochs // 3)),
        "invscaling": lambda: InverseScalingLR(opt),
        None: lambda: None,
    }[schedule]()
    reference = run.fit(model=model, optimizer=opt, lr=None, lr_schedule=sched, epochs=more)
    assert_same_run(reference, resumed, msg)


def test_fewer_epochs_than_trained_are_refused(seeded, tmp_path):
    rng = seeded.rng
    run = Run(rng, opt="sgd", epochs=int(rng.integers(3, 6)))
    msg = seeded.msg(run.describe())
    folder = tmp_path / "run"
    run.fit(folder, checkpoint_every=1, keep_checkpoints=10_000)
    found = positions(folder)
    end = next(p for p, pos in found.items() if pos["step"] == 0 and pos["epoch"] - 1 >= 2)
    done = found[end]["epoch"] - 1
    fresh = tmp_path / "end"
    copy_checkpoint(end, fresh)
    saved = folder_bytes(fresh)
    fewer = int(rng.integers(1, done))
    with pytest.raises(ConfigError, match=f"trained {done} epochs already; epochs is {fewer}"):
        run.fit(fresh, resume=True, epochs=fewer)
    assert folder_bytes(fresh) == saved, msg
    # exactly the epochs trained: allowed, and it is the run of that many epochs
    reference = run.fit(epochs=done)
    assert_same_run(reference, run.fit(fresh, resume=True, epochs=done), msg)


def test_fewer_epochs_than_a_mid_epoch_checkpoint_reached_are_refused(seeded, tmp_path):
    rng = seeded.rng
    run = Run(rng, opt="sgd", epochs=3)
    folder = tmp_path / "run"
    run.fit(folder, checkpoint_every=1, keep_checkpoints=10_000)
    mid = next(p for p, pos in positions(folder).items() if pos["epoch"] == 3 and pos["step"])
    fresh = tmp_path / "mid"
    copy_checkpoint(mid, fresh)
    try:
        resumed = run.fit(fresh, resume=True, epochs=2)
    except ConfigError:
        return
    # Accepted: then it must at least be the 2-epoch run.
    assert_same_run(run.fit(epochs=2), resumed, seeded.msg(run.describe()))


# =====================================================================================
# 4. Damaged checkpoints
# =====================================================================================
def _damage(how: str, json_path: Path, rng) -> None:
    arrays = json_path.with_suffix(".safetensors")
    payload = arrays.read_bytes()
    if how == "truncated arrays":
        arrays.write_bytes(payload[: int(rng.integers(0, len(payload)))])
    elif how == "flipped byte":
        at = int(rng.integers(len(payload)))
        arrays.write_bytes(payload[:at] + bytes([payload[at] ^ (1 << int(rng.integers(8)))])
                           + payload[at + 1 :])  # fmt: skip
    elif how == "arrays deleted":
        arrays.unlink()
    elif how == "garbage JSON":
        json_path.write_bytes(rng.bytes(int(rng.integers(0, 200))))
    elif how == "JSON cut short":
        text = json_path.read_bytes()
        json_path.write_bytes(text[: int(rng.integers(1, len(text) - 1))])
    elif how == "JSON not a checkpoint":
        json_path.write_text(json.dumps(["not", "a", "checkpoint"]))
    elif how == "future format":
        meta = json.loads(json_path.read_text())
        meta["format_version"] = 99
        json_path.write_text(json.dumps(meta))
    elif how == "edited JSON":  # valid JSON, one figure changed: its own checksum says so
        meta = json.loads(json_path.read_text())
        meta["loop"]["waited"] += int(rng.integers(1, 5))  # (a rate may be 0: × would not edit)
        json_path.write_text(json.dumps(meta, indent=1))
    elif how == "unreadable arrays, matching checksum":
        junk = rng.bytes(int(rng.integers(8, 300)))
        arrays.write_bytes(junk)
        meta = json.loads(json_path.read_text())
        meta["sha256"] = hashlib.sha256(junk).hexdigest()
        json_path.write_text(json.dumps(meta))
    else:
        raise AssertionError(how)


DAMAGES = [
    "truncated arrays",
    "flipped byte",
    "arrays deleted",
    "garbage JSON",
    "JSON cut short",
    "JSON not a checkpoint",
    "edited JSON",
    "unreadable arrays, matching checksum",
]


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_newest_checkpoint_is_skipped(seeded, tmp_path, how):
    rng = seeded.rng
    run = Run(rng, engine=str(rng.choice(["planned", "module"])), opt="adam", dropout="fit",
              split=True, schedule="cosine")  # fmt: skip
    every, keep = int(rng.integers(1, 4)), int(rng.integers(2, 4))
    msg = seeded.msg(f"{run.describe()}; every {every}, keep {keep}; {how}")
    reference = run.fit()
    complete = tmp_path / "complete"
    run.fit(complete, checkpoint_every=every, keep_checkpoints=10_000)
    all_steps = [step_of(p) for p in checkpoints(complete)]
    # Stop the run somewhere (≥ 2 checkpoints written), as a kill there would leave it.
    cut = int(rng.integers(2, len(all_steps) + 1))
    folder = tmp_path / "run"
    for path in checkpoints(complete)[max(0, cut - keep) : cut]:
        copy_checkpoint(path, folder)
    newest, previous = checkpoints(folder)[-1], checkpoints(folder)[-2]
    _damage(how, newest, rng)
    with pytest.warns(CheckpointWarning, match="skipped checkpoint") as caught:
        resumed = run.fit(folder, checkpoint_every=every, keep_checkpoints=keep, resume=True)
    skipped = [str(w.message) for w in caught if issubclass(w.category, CheckpointWarning)]
    assert len(skipped) == 1 and newest.name in skipped[0], seeded.msg(str(skipped))
    assert resumed[0].resumed_from == str(previous), msg
    assert_same_run(reference, resumed, msg)
    steps = assert_complete_and_no_orphans(folder, msg)
    assert steps == all_steps[-keep:], msg


def test_every_checkpoint_damaged_starts_afresh(seeded, tmp_path):
    rng = seeded.rng
    run = Run(rng, opt="sgd_momentum", dropout="fit", split=True, schedule="step")
    msg = seeded.msg(run.describe())
    reference = run.fit()
    folder = tmp_path / "run"
    run.fit(folder, checkpoint_every=2, keep_checkpoints=3)
    damaged = checkpoints(folder)
    for path in damaged:
        _damage(str(rng.choice(DAMAGES)), path, rng)
    with pytest.warns(CheckpointWarning) as caught:
        resumed = run.fit(folder, checkpoint_every=2, keep_checkpoints=3, resume=True)
    skipped = [w for w in caught if issubclass(w.category, CheckpointWarning)]
    assert len(skipped) == len(damaged), msg
    assert resumed[0].resumed_from is None, msg
    assert_same_run(reference, resumed, msg)
    assert_complete_and_no_orphans(folder, msg)


def test_stray_temporaries_and_orphan_arrays_do_not_trip_resume(seeded, tmp_path):
    rng = seeded.rng
    run = Run(rng, engine="subclass", opt="adam", dropout="own", split=True)
    msg = seeded.msg(run.describe())
    reference = run.fit()
    complete = tmp_path / "complete"
    run.fit(complete, checkpoint_every=1, keep_checkpoints=10_000)
    jsons = checkpoints(complete)
    source = jsons[int(rng.integers(len(jsons) - 1))]  # not the last: the resume writes more
    folder = tmp_path / "run"
    copied = copy_checkpoint(source, folder)
    beyond = step_of(jsons[-1]) + int(rng.integers(1, 100))
    # Temporaries as atomic_write names them (what a killed writer leaves) ...
    strays = []
    for target in (copied.name, f"step-{beyond:09d}.safetensors", f"step-{beyond:09d}.json"):
        fd, name = tempfile.mkstemp(prefix=f".{target}.", suffix=".tmp", dir=folder)
        os.write(fd, rng.bytes(int(rng.integers(0, 100))))
        os.close(fd)
        strays.append(Path(name))
    # ... and a temporary-looking name that is not wxb's: it must not trip resume either.
    odd = folder / f".step-{step_of(source):09d}.json.abc.tmp"
    odd.write_bytes(b"{")
    orphan = folder / f"step-{beyond:09d}.safetensors"  # a newer arrays file without JSON
    orphan.write_bytes((complete / jsons[-1].with_suffix(".safetensors").name).read_bytes())
    (folder / "notes.txt").write_text("mine")  # a user's file: left alone
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)
        resumed = run.fit(folder, checkpoint_every=1, keep_checkpoints=2, resume=True)
    assert resumed[0].resumed_from == str(copied), msg
    assert_same_run(reference, resumed, msg)
    assert not orphan.exists(), msg
    assert [p.name for p in strays if p.exists()] == [], msg
    assert (folder / "notes.txt").read_text() == "mine", msg
    odd.unlink(missing_ok=True)
    assert_complete_and_no_orphans(folder, msg)
    assert len(checkpoints(folder)) == 2, msg


# =====================================================================================
# 5. Keeping the newest k
# =====================================================================================
def test_keep_checkpoints_keeps_exactly_the_newest(seeded, tmp_path):
    rng = seeded.rng
    keep = int(rng.integers(1, 4))
    every = int(rng.integers(1, 3))
    run = Run(rng, engine=str(rng.choice(["planned", "subclass"])), dropout="fit")
    msg = seeded.msg(f"{run.describe()}; keep {keep}, every {every}")
    folder = tmp_path / "run"
    history, _ = run.fit(folder, checkpoint_every=every, keep_checkpoints=keep)
    steps_per_epoch = int(np.ceil(run.rows / run.batch_size))
    total = steps_per_epoch * run.epochs
    written = sorted({s for s in range(every, total + 1, every)} | {total})
    assert assert_complete_and_no_orphans(folder, msg) == written[-keep:], msg
    assert len(list(folder.iterdir())) == 2 * min(keep, len(written)), msg
    newest = ckpt.read(checkpoints(folder)[-1])
    assert newest.meta["position"]["global_step"] == total, msg
    assert newest.meta["history"]["history"] == history.history, msg


def test_a_resume_removes_checkpoints_a_killed_run_left_beyond_keep(seeded, tmp_path, monkeypatch):
    """A kill between a checkpoint's write and its pruning leaves one too many; the resume
    prunes, even when it has nothing left to train (CI found 3 kept with keep 2)."""
    rng = seeded.rng
    keep = int(rng.integers(1, 3))
    run = Run(rng, opt="sgd_momentum", dropout="fit", split=True, stop="forced")
    msg = seeded.msg(f"{run.describe()}; keep {keep}")
    folder = tmp_path / "run"
    with monkeypatch.context() as patch:  # every pruning cut short
        patch.setattr(ckpt.CheckpointFolder, "prune", lambda self, newest: None)
        first = run.fit(folder, checkpoint_every=1, keep_checkpoints=keep)
    written = assert_complete_and_no_orphans(folder, msg)
    assert len(written) > keep, msg
    again = run.fit(folder, resume=True, keep_checkpoints=keep)
    assert_same_run(first, again, msg)
    assert assert_complete_and_no_orphans(folder, msg) == written[-keep:], msg


# =====================================================================================
# 6. Full disks
# =====================================================================================
class _FullDisk:
    """Stands in for the ``os`` module inside wxb.data: the ``fail_at``-th file opened for
    writing (one per atomic_write) fails with ENOSPC at its write, or at its fsync."""

    def __init__(self, fail_at: int, where: str) -> None:
        self.fail_at, self.where, self.files, self.armed_fd = fail_at, where, 0, None

    def __getattr__(self, name):
        return getattr(os, name)

    def fdopen(self, fd, *args, **kwargs):
        handle = os.fdopen(fd, *args, **kwargs)
        self.files += 1
        if self.files != self.fail_at:
            return handle
        if self.where == "fsync":
            self.armed_fd = fd
            return handle
        return _FailingHandle(handle)

    def fsync(self, fd):
        if fd == self.armed_fd and stat.S_ISREG(os.fstat(fd).st_mode):
            self.armed_fd = None
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.fsync(fd)


class _FailingHandle:
    def __init__(self, handle) -> None:
        self.handle = handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()
        return False

    def write(self, payload):
        self.handle.write(payload[: len(payload) // 2])  # part of it got to the disk
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self.handle, name)


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_a_full_disk_stops_fit_and_keeps_the_earlier_checkpoints(
    seeded, tmp_path, monkeypatch, where
):
    rng = seeded.rng
    run = Run(rng, opt=str(rng.choice(["adam", "sgd_momentum"])), dropout="fit", split=True,
              schedule="invscaling")  # fmt: skip
    keep = int(rng.integers(1, 4))
    reference = run.fit()
    complete = tmp_path / "complete"
    run.fit(complete, checkpoint_every=1, keep_checkpoints=10_000)
    total = steps_per_epoch(complete) * run.epochs
    assert step_of(checkpoints(complete)[-1]) == total
    fail_at = int(rng.integers(3, 2 * total + 1))  # two files a checkpoint: arrays, JSON
    failing = (fail_at + 1) // 2  # the checkpoint (= its global step) that fails
    msg = seeded.msg(f"{run.describe()}; keep {keep}; ENOSPC at {where} of file {fail_at}")

    folder = tmp_path / "run"
    disk = _FullDisk(fail_at, where)
    monkeypatch.setattr(wxb.data, "os", disk)
    with pytest.raises(CheckpointError) as failed:
        run.fit(folder, checkpoint_every=1, keep_checkpoints=keep)
    monkeypatch.undo()
    exc = failed.value
    assert isinstance(exc, WxbError), msg
    assert "No space left on device" in str(exc), seeded.msg(str(exc))
    assert isinstance(exc.__cause__, OSError) and exc.__cause__.errno == errno.ENOSPC, msg
    assert disk.files == fail_at, msg
    assert temporaries(folder) == [], msg

    # The complete checkpoints are the newest `keep` before the failing one, byte for byte
    # those of an undisturbed run; an arrays file whose JSON failed may be left over.
    jsons = checkpoints(folder)
    expected = list(range(max(1, failing - keep), failing))
    assert [step_of(p) for p in jsons] == expected, msg
    for path in jsons:
        assert path.read_bytes() == (complete / path.name).read_bytes(), msg
        arrays = path.with_suffix(".safetensors").name
        assert (folder / arrays).read_bytes() == (complete / arrays).read_bytes(), msg
    leftover = sorted(p.name for p in folder.glob("step-*.safetensors"))
    allowed = {p.with_suffix(".safetensors").name for p in jsons}
    if fail_at % 2 == 0:
        allowed.add(f"step-{failing:09d}.safetensors")
    assert set(leftover) <= allowed, msg
    assert str(jsons[-1]) in str(exc), msg

    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)
        resumed = run.fit(folder, checkpoint_every=1, keep_checkpoints=keep, resume=True)
    assert resumed[0].resumed_from == str(jsons[-1]), msg
    assert_same_run(reference, resumed, msg)
    assert assert_complete_and_no_orphans(folder, msg) == list(range(total - keep + 1, total + 1))


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_save_on_a_full_disk_keeps_the_old_model_file(seeded, tmp_path, monkeypatch, where):
    rng = seeded.rng
    n, h, c = int(rng.integers(5, 31)), int(rng.integers(4, 17)), int(rng.integers(2, 5))
    seed = int(rng.integers(1 << 30))
    msg = seeded.msg(f"Dense({n}, {h}) → Dense({h}, {c}), seed {seed}, fails at {where}")
    path = tmp_path / "model.safetensors"
    old = small_mlp(n, h, c, seed, "float32")
    wxb.save(old, path)
    before = path.read_bytes()
    new = small_mlp(n, h, c, seed + 7, "float32")
    monkeypatch.setattr(wxb.data, "os", _FullDisk(1, where))
    with pytest.raises(OSError) as failed:
        wxb.save(new, path)
    monkeypatch.undo()
    assert failed.value.errno == errno.ENOSPC, msg
    assert failed.value.filename == str(path), msg
    assert path.read_bytes() == before, msg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"], msg
    assert same_weights(wxb.load(path), old) == [], msg
    wxb.save(new, path)  # with room again it is written
    assert same_weights(wxb.load(path), new) == [], msg


def test_load_state_dict_refuses_unknown_entries_and_replaces_groups_as_pytorch(seeded):
    rng = seeded.rng
    n, h = int(rng.integers(2, 8)), int(rng.integers(2, 8))
    model = Sequential(Dense(n, h, seed=int(rng.integers(1 << 30))), Tanh(), Dense(h, 2))
    saved = Adam(model.parameters(), lr=float(rng.uniform(1e-4, 1e-2))).state_dict()
    opt = Adam(model.parameters(), lr=0.5)
    StepLR(opt, step_size=2)  # writes initial_lr into the group; the saved state has none
    before = opt.state_dict()
    for bad, named in (
        ({**saved, "extra": 1}, "extra"),
        ({**saved, "state": {**saved["state"], len(opt.params): saved["state"][0]}}, "does not"),
    ):
        with pytest.raises(ConfigError, match=named):
            opt.load_state_dict(bad)
        assert state_differences(opt.state_dict(), before) == [], seeded.msg(named)
    opt.load_state_dict(saved)
    assert "initial_lr" not in opt.param_groups[0], seeded.msg("group not replaced")
    assert opt.lr == saved["param_groups"][0]["lr"]
    # A key of the user's own (PyTorch keeps them: a group's "name") comes back as it was.
    saved["param_groups"][0]["name"] = "all"
    opt.load_state_dict(saved)
    assert opt.param_groups[0]["name"] == "all"


def test_a_checkpoint_from_a_newer_wxb_is_refused_not_skipped(seeded, tmp_path):
    """Not damaged: skipping it would start afresh and in time overwrite it."""
    rng = seeded.rng
    run = Run(rng, opt="adam")
    msg = seeded.msg(run.describe())
    folder = tmp_path / "run"
    run.fit(folder, checkpoint_every=int(rng.integers(1, 4)))
    newest = checkpoints(folder)[-1]
    _damage("future format", newest, rng)
    before = folder_bytes(folder)
    with pytest.raises(ConfigError, match="newer wxb") as refused:
        run.fit(folder, resume=True)
    assert str(newest) in str(refused.value), msg
    assert folder_bytes(folder) == before, msg


def test_a_folder_in_use_by_another_run_is_refused(seeded, tmp_path):
    rng = seeded.rng
    run = Run(rng, opt="adam")
    folder = tmp_path / "run"
    with ckpt.CheckpointFolder(folder).lock():  # as a run in another process holds it
        with pytest.raises(ConfigError, match="in use by another training run"):
            run.fit(folder)
        assert not checkpoints(folder), seeded.msg("the refused run wrote")
    assert_same_run(run.fit(), run.fit(folder), seeded.msg(run.describe()))  # free again


class Scaled(Module):
    """A custom module with a setting of its own (no config())."""

    def __init__(self, n, classes, factor, seed):
        super().__init__()
        self.factor = factor
        self.dense = Dense(n, classes, seed=seed)

    def forward(self, x):
        return self.dense(x) * self.factor


def test_a_resume_with_other_frozen_parameters_or_module_settings_is_refused(seeded, tmp_path):
    rng = seeded.rng
    n, classes, seed = int(rng.integers(2, 7)), int(rng.integers(2, 5)), int(rng.integers(1000))
    X, y = blobs(rng, int(rng.integers(40, 90)), n, classes)
    msg = seeded.msg(f"{n} features, {classes} classes, seed {seed}")

    def stack(frozen):
        model = Sequential(Dense(n, 6, seed=seed), Tanh(), Dense(6, 6), Tanh(), Dense(6, classes))
        model[frozen].weight.requires_grad = False
        return model

    first = int(rng.choice([0, 2]))
    folder = tmp_path / "frozen"
    wxb.fit(stack(first), X, y, epochs=2, batch_size=8, seed=seed, checkpoint_dir=folder)
    with pytest.raises(ConfigError, match="trainable") as refused:
        wxb.fit(stack(2 - first), X, y, epochs=3, batch_size=8, seed=seed,
                checkpoint_dir=folder, resume=True)  # fmt: skip
    frozen_now = "dense1.weight" if first else "dense2.weight"  # trainable then, not now
    checkpoint_part = str(refused.value).split("now [")[0]
    assert (
        frozen_now in checkpoint_part and frozen_now not in str(refused.value).split("now [")[-1]
    ), msg

    factor = float(rng.uniform(0.5, 2))
    folder = tmp_path / "custom"
    wxb.fit(Scaled(n, classes, factor, seed), X, y, epochs=2, batch_size=8, seed=seed,
            checkpoint_dir=folder)  # fmt: skip
    with pytest.raises(ConfigError, match="architecture"):
        wxb.fit(Scaled(n, classes, factor * 1.5, seed), X, y, epochs=3, batch_size=8,
                seed=seed, checkpoint_dir=folder, resume=True)  # fmt: skip


@pytest.mark.parametrize("engine", ["planned", "graph"])
def test_a_run_without_a_seed_resumes_with_the_same_dropout_masks(seeded, tmp_path, engine):
    """Without a seed the masks' key is drawn from wxb's default generator, whose state
    a resumed run cannot rebuild: the checkpoint carries it."""
    rng = seeded.rng
    n, c, rows = int(rng.integers(2, 6)), 3, int(rng.integers(30, 90))
    X, y = rng.normal(size=(rows, n)), rng.integers(0, c, size=rows)
    init, default = int(rng.integers(1 << 30)), int(rng.integers(1 << 30))
    batch, epochs = int(rng.integers(4, 16)), int(rng.integers(3, 6))
    msg = seeded.msg(f"{engine}, batch {batch}, epochs {epochs}")

    def run(folder=None, **extra):
        model = Sequential(Dense(n, 12, seed=init), Tanh(), Dropout(0.4), Dense(12, c, seed=init))
        model.use_plan = engine == "planned"
        kwargs = dict(epochs=epochs, batch_size=batch, verbose=False, optimizer="adam")
        kwargs.update(extra)
        if folder is not None:
            kwargs["checkpoint_dir"] = folder
        return wxb.fit(model.double(), X, y, **kwargs), model

    wxb.manual_seed(default)
    reference = run()
    wxb.manual_seed(default)
    run(tmp_path / "ckpt", epochs=1)
    wxb.manual_seed(int(rng.integers(1 << 30)))  # the default generator is elsewhere now
    resumed = run(tmp_path / "ckpt", resume=True)
    assert resumed[0].resumed_from is not None, msg
    assert_same_run(reference, resumed, msg)


def test_a_run_without_a_seed_and_a_validation_split_is_refused_with_the_reason(seeded, tmp_path):
    rng = seeded.rng
    X, y = rng.normal(size=(60, 3)), rng.integers(0, 2, size=60)
    model = Sequential(Dense(3, 2))
    wxb.fit(model, X, y, epochs=1, validation_split=0.2, verbose=False, checkpoint_dir=tmp_path)
    with pytest.raises(ConfigError, match="without a seed, validation_split holds out other rows"):
        wxb.fit(model, X, y, epochs=2, validation_split=0.2, verbose=False,
                checkpoint_dir=tmp_path, resume=True)  # fmt: skip


@pytest.mark.parametrize("validation", ["none", "split", "data"])
def test_a_checkpoint_with_whole_array_data_digests_still_resumes(
    seeded, tmp_path, monkeypatch, validation
):
    """Checkpoints written before the data digests went by blocks of rows described the
    data by one digest of each whole array; the same data is recognised in them."""
    rng = seeded.rng
    n, c, rows = int(rng.integers(2, 6)), 3, int(rng.integers(40, 90))
    X, y = rng.normal(size=(rows, n)), rng.integers(0, c, size=rows)
    extra = {
        "none": {},
        "split": {"validation_split": 0.2},
        "data": {"validation_data": (rng.normal(size=(9, n)), rng.integers(0, c, 9))},
    }
    kwargs = dict(epochs=3, batch_size=8, seed=int(rng.integers(1 << 30)), verbose=False,
                  **extra[validation])  # fmt: skip
    init = int(rng.integers(1 << 30))

    def model():
        return Sequential(Dense(n, 6, seed=init), Tanh(), Dense(6, c, seed=init + 1))

    reference = model()
    wxb.fit(reference, X, y, **kwargs)
    earlier = lambda A, rows, ranks: ckpt.fingerprint(A if rows is None else A[rows])  # noqa: E731
    monkeypatch.setattr(wxb.train, "_digest_rows", earlier)
    wxb.fit(model(), X, y, checkpoint_dir=tmp_path, **{**kwargs, "epochs": 1})
    monkeypatch.undo()
    resumed = model()
    history = wxb.fit(resumed, X, y, checkpoint_dir=tmp_path, resume=True, **kwargs)
    assert history.resumed_from is not None
    assert same_weights(reference, resumed) == [], seeded.msg(validation)
    # and other data is still told apart
    with pytest.raises(ConfigError, match="data differ"):
        wxb.fit(model(), X + 1, y, checkpoint_dir=tmp_path, resume=True, **kwargs)


def test_resume_warns_only_when_it_replaces_other_weights(seeded, tmp_path):
    """Rerunning the stopped model (its weights are the checkpoint's) continues without a
    word; another model's weights are replaced by the checkpoint's, with a warning."""
    rng = seeded.rng
    run = Run(rng, epochs=4)
    run.fit(tmp_path, epochs=2)
    stopped = run.model()
    run.fit(tmp_path / "again", model=stopped, epochs=2)  # the same weights, its own folder
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)
        run.fit(tmp_path / "again", model=stopped, resume=True)
    other = run.model()
    for p in other.parameters():
        p.data += 1.0
    with pytest.warns(CheckpointWarning, match="differ from those that run started from"):
        run.fit(tmp_path, model=other, resume=True)
    assert same_weights(other, stopped) == [], seeded.msg(run.describe())


@pytest.mark.parametrize("engine", ["planned", "module"])
def test_a_checkpoint_whose_row_order_is_no_permutation_is_refused(seeded, tmp_path, engine):
    """Each batch is gathered trusting its rows (np.take with mode="clip", no temporary):
    a checkpoint written consistently (checksums recomputed) but whose saved row order
    repeats a row or names one out of range is refused by name at resume, and the model
    keeps its weights. Before, a repeated row trained twice without a word."""
    from safetensors.numpy import load_file, save_file

    rng = seeded.rng
    run = Run(rng, engine=engine, opt="adam", epochs=2)
    folder = tmp_path / "run"
    run.fit(folder, checkpoint_every=1, keep_checkpoints=10_000, epochs=1)
    newest = checkpoints(folder)[-1]
    arrays_path = newest.with_suffix(".safetensors")
    arrays = load_file(str(arrays_path))
    order = arrays["order"].copy()
    how = str(rng.choice(["repeated", "out of range", "shorter"]))
    i, j = rng.choice(len(order), size=2, replace=False)
    if how == "repeated":
        order[i] = order[j]
    elif how == "out of range":
        order[i] = len(order) + int(rng.integers(0, 5))
    else:
        order = order[:-1]
    arrays["order"] = order
    save_file(arrays, str(arrays_path))
    record = json.loads(newest.read_text())
    record["sha256"] = hashlib.sha256(arrays_path.read_bytes()).hexdigest()
    record["json_sha256"] = ckpt._json_digest(record)
    newest.write_text(json.dumps(record, indent=1))
    model = run.model()
    before = model.state_dict()
    with pytest.raises(ConfigError, match="row order is not a permutation") as caught:
        run.fit(folder, model=model, checkpoint_every=1, keep_checkpoints=10_000, resume=True)
    assert newest.name in str(caught.value), seeded.msg(how)
    assert same_weights_as(model, before) == [], seeded.msg(how)


def same_weights_as(model: Module, state: dict) -> list[str]:
    now = model.state_dict()
    return [k for k in state if not np.array_equal(now[k], state[k])]
