"""A generator of interrupted-and-resumed runs: each must equal the uninterrupted run.

A random model (Dropout, BatchNorm1d, LayerNorm, frozen parameters, a Module of one's
own), a random optimiser of every kind wxb has with one or two parameter groups, a
random schedule, loss (class weights, label smoothing), batch size (a last partial
batch), validation split with early stopping (patience, min_delta), dense or sparse X.
The run is trained E epochs uninterrupted; then again, from scratch, stopped (after k
epochs, at a checkpoint copied alone, or by Ctrl-C), and resumed with FRESH model,
optimiser and schedule objects to E. Weights, buffers, optimiser state, rates, history,
early stopping's figures and the checkpoints written must match bit for bit.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import warnings
from pathlib import Path

import numpy as np
import pytest

import wxb
from wxb.checkpoint import CheckpointWarning
from wxb.errors import TrainingInterrupted
from wxb.nn import (
    BatchNorm1d,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Dense,
    Dropout,
    LayerNorm,
    Module,
    ReLU,
    Sequential,
    Tanh,
)
from wxb.optim import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    ConstantLR,
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    CyclicLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    MultiplicativeLR,
    MultiStepLR,
    NAdam,
    OneCycleLR,
    PolynomialLR,
    RAdam,
    ReduceLROnPlateau,
    RMSprop,
    SequentialLR,
    StepLR,
)

scipy_sparse = pytest.importorskip("scipy.sparse")

OPTIMISERS = ["sgd", "sgdm", "adam", "adamw", "rmsprop", "adagrad", "nadam", "radam", "adamax",
              "adadelta"]  # fmt: skip
SCHEDULES = [None, "step", "cosine", "exp", "multistep", "plateau", "lambda", "linear",
             "onecycle", "poly", "warm_restarts", "named", "sequential", "cyclic",
             "multiplicative", "constant"]  # fmt: skip


class Custom(Module):
    """A Module of one's own: a frozen input layer, a residual gate, normalisations."""

    def __init__(self, cfg) -> None:
        super().__init__()
        n, h, c, dt, s = cfg["n"], cfg["h"], cfg["c"], cfg["dtype"], cfg["mseed"]
        self.inp = Dense(n, h, seed=s, dtype=dt)
        self.norm = norm(cfg)
        self.mid = Dense(h, h, seed=s + 1, dtype=dt)
        self.drop = Dropout(cfg["p"], seed=cfg["dseed"])
        self.functional_p = cfg["fp"]
        self.jitter = random.Random(s)  # a Python generator of its own, as torch users hold
        self.head = Dense(h, c, seed=s + 2, dtype=dt)
        if cfg["frozen"]:
            self.inp.weight.requires_grad = False

    def forward(self, x):
        h = wxb.ops.relu(self.norm(self.inp(x)))
        if self.functional_p and self.training:  # F.dropout, from wxb's default generator
            h = wxb.nn.functional.dropout(h, self.functional_p)
        if self.training:
            h = h * (1.0 + 0.1 * self.jitter.gauss(0.0, 1.0))
        h = h + wxb.nn.functional.tanh(self.mid(h))
        return self.head(self.drop(h))


def norm(cfg):
    h, dt = cfg["h"], cfg["dtype"]
    if cfg["bn"]:
        return BatchNorm1d(h, momentum=cfg["bn_momentum"], dtype=dt)
    return LayerNorm(h, dtype=dt)


_SIGINT_AT = {"at": None, "calls": 0}  # kept outside the module: not one of its settings


class Interrupting(Module):
    """Wraps a model; sends SIGINT at the ``_SIGINT_AT["at"]``-th forward (training, or
    validation: fit's first look at the output's shape is not counted)."""

    def __init__(self, inner) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        if self.training or x.shape[0] != 2:
            _SIGINT_AT["calls"] += 1
            if _SIGINT_AT["calls"] == _SIGINT_AT["at"]:
                os.kill(os.getpid(), signal.SIGINT)
        return self.inner(x)


def draw(rng) -> dict:
    cfg = {
        "n": int(rng.integers(3, 12)),
        "h": int(rng.integers(4, 12)),
        "c": int(rng.integers(2, 5)),
        "rows": int(rng.integers(40, 130)),
        "dtype": str(rng.choice(["float32", "float64"])),
        "mseed": int(rng.integers(1 << 30)),
        "dseed": None if rng.random() < 0.5 else int(rng.integers(1 << 30)),
        "p": float(rng.uniform(0.05, 0.5)),
        "bn": bool(rng.random() < 0.6),
        "bn_momentum": None if rng.random() < 0.3 else float(rng.uniform(0.05, 0.5)),
        "fp": float(rng.choice([0.0, rng.uniform(0.1, 0.4)])),
        "val_data": bool(rng.random() < 0.3),
        "every": None if rng.random() < 0.5 else int(rng.integers(1, 5)),
        "frozen": bool(rng.random() < 0.5),
        "custom": bool(rng.random() < 0.5),
        "opt": str(rng.choice(OPTIMISERS)),
        "groups": int(rng.integers(1, 3)),
        "lrs": [float(v) for v in rng.uniform(0.005, 0.05, size=2)],
        "schedule": rng.choice(np.array(SCHEDULES, dtype=object)),
        "sparse": bool(rng.random() < 0.3),
        "split": float(rng.choice([0.0, rng.uniform(0.15, 0.35)])),
        "patience": None if rng.random() < 0.3 else int(rng.integers(1, 3)),
        "min_delta": float(rng.choice([0.0, rng.uniform(0.0, 0.05)])),
        "restore": bool(rng.random() < 0.5),
        "weights": bool(rng.random() < 0.5),
        "loss": str(rng.choice(["ce", "ce", "bce", "mse"])),
        "opt_interrupt": bool(rng.random() < 0.5),
        "diagnose": bool(rng.random() < 0.4),
        "smoothing": float(rng.choice([0.0, rng.uniform(0, 0.2)])),
        "epochs": int(rng.integers(3, 7)),
        "seed": int(rng.integers(1 << 30)),
        "shuffle": bool(rng.random() < 0.8),
        "clip": None if rng.random() < 0.6 else float(rng.uniform(0.2, 2.0)),
    }
    cfg["class_weight"] = [float(v) for v in rng.uniform(0.3, 3.0, size=cfg["c"])]
    X = rng.normal(size=(cfg["rows"], cfg["n"]))
    if cfg["sparse"]:
        X[rng.random(X.shape) < 0.6] = 0.0
    Z = X @ rng.normal(size=(cfg["n"], cfg["c"]))
    y = (Z.argmax(1) + (rng.random(cfg["rows"]) < 0.3)) % cfg["c"]
    y[: cfg["c"]] = np.arange(cfg["c"])  # every class present
    if cfg["loss"] == "bce":  # several labels a row
        y = (Z + rng.normal(size=Z.shape) > 0).astype(float)
    elif cfg["loss"] == "mse":
        y = Z + rng.normal(scale=0.3, size=Z.shape)
    cfg["X"], cfg["y"] = X.astype(cfg["dtype"]), y
    if cfg["val_data"]:  # validation_data=, not a split
        cut = cfg["rows"] // 4
        cfg["val"] = (cfg["X"][:cut], y[:cut])
        cfg["X"], cfg["y"], cfg["rows"], cfg["split"] = (
            cfg["X"][cut:],
            y[cut:],
            cfg["rows"] - cut,
            0.0,
        )
    rows = train_rows(cfg)
    batch = int(rng.integers(5, max(6, rows // 3)))
    while rows % batch in (0, 1):  # a last partial batch, of 2 rows or more (BatchNorm1d)
        batch += 1
    cfg["batch"] = batch
    cfg["diagnose"] &= cfg["opt_interrupt"] and not cfg["custom"]  # chained layers alone
    return cfg


def build(cfg, wrap=False):
    if cfg["custom"]:
        model = Custom(cfg)
    else:
        n, h, c, dt, s = cfg["n"], cfg["h"], cfg["c"], cfg["dtype"], cfg["mseed"]
        first = Dense(n, h, seed=s, dtype=dt)
        if cfg["frozen"]:
            first.bias.requires_grad = False
        # two Dropouts sharing one generator, when the draw has one
        shared = None if cfg["dseed"] is None else np.random.default_rng(cfg["dseed"])
        model = Sequential(first, norm(cfg), Tanh(), Dropout(cfg["p"], seed=shared),
                           Dense(h, h, seed=s + 1, dtype=dt), ReLU(),
                           Dropout(cfg["p"], seed=shared),
                           Dense(h, c, seed=s + 2, dtype=dt))  # fmt: skip
    params = list(model.parameters())
    lr0, lr1 = cfg["lrs"]
    kind = cfg["opt"]
    if cfg["groups"] == 2:
        cut = len(params) // 2
        spec = [{"params": params[:cut], "lr": lr0}, {"params": params[cut:], "lr": lr1}]
    else:
        spec = params
    opt = {
        "sgd": lambda: SGD(spec, lr=lr0),
        "sgdm": lambda: SGD(spec, lr=lr0, momentum=0.9, nesterov=True, weight_decay=1e-3),
        "adam": lambda: Adam(spec, lr=lr0, weight_decay=1e-3),
        "adamw": lambda: AdamW(spec, lr=lr0),
        "rmsprop": lambda: RMSprop(spec, lr=lr0 / 5, momentum=0.5, centered=True),
        "adagrad": lambda: Adagrad(spec, lr=lr0 * 5, lr_decay=0.01),
        "nadam": lambda: NAdam(spec, lr=lr0),
        "radam": lambda: RAdam(spec, lr=lr0),
        "adamax": lambda: Adamax(spec, lr=lr0),
        "adadelta": lambda: Adadelta(spec, lr=1.0),
    }[kind]()
    sched = schedule(cfg, opt)
    if wrap:
        model = Interrupting(model)
    return model, opt, sched


def train_rows(cfg) -> int:
    return cfg["rows"] - (max(1, round(cfg["split"] * cfg["rows"])) if cfg["split"] else 0)


def steps_per_epoch(cfg) -> int:
    return -(-train_rows(cfg) // cfg["batch"])


def schedule(cfg, opt):
    kind = cfg["schedule"]
    E = cfg["epochs"]
    if kind is None or kind == "named":
        return None
    if kind == "step":
        return StepLR(opt, step_size=2, gamma=0.5)
    if kind == "cosine":
        return CosineAnnealingLR(opt, T_max=E, eta_min=1e-4)
    if kind == "exp":
        return ExponentialLR(opt, gamma=0.8)
    if kind == "multistep":
        return MultiStepLR(opt, milestones=[1, 3], gamma=0.3)
    if kind == "plateau":
        return ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.01, cooldown=1,
                                 min_lr=1e-3)  # fmt: skip
    if kind == "lambda":
        return LambdaLR(opt, lambda e: 0.9**e)
    if kind == "linear":
        return LinearLR(opt, start_factor=0.3, total_iters=2)
    if kind == "onecycle":
        maxes = [lr * 2 for lr in cfg["lrs"][: cfg["groups"]]]
        cycle = cfg["opt"] not in ("adagrad", "adadelta")  # no momentum nor betas to cycle
        return OneCycleLR(opt, max_lr=maxes, total_steps=E * steps_per_epoch(cfg) + 3,
                          cycle_momentum=cycle)  # fmt: skip
    if kind == "sequential":
        warm = LinearLR(opt, start_factor=0.2, total_iters=2)
        return SequentialLR(opt, [warm, CosineAnnealingLR(opt, T_max=3)], milestones=[2])
    if kind == "cyclic":
        cycle = cfg["opt"] not in ("sgd", "adagrad", "adadelta")
        return CyclicLR(opt, base_lr=1e-3, max_lr=0.05, step_size_up=3, mode="triangular2",
                        cycle_momentum=cycle)  # fmt: skip
    if kind == "multiplicative":
        return MultiplicativeLR(opt, lambda e: 0.95)
    if kind == "constant":
        return ConstantLR(opt, factor=0.4, total_iters=3)
    if kind == "poly":
        return PolynomialLR(opt, total_iters=E, power=2.0)
    return CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2, eta_min=1e-4)


def run(cfg, folder=None, epochs=None, interrupt_at=None, wrap=False, objs=None, **kw):
    _SIGINT_AT.update(at=interrupt_at, calls=0)
    by_step = cfg["opt_interrupt"]  # SIGINT after an optimiser step (any engine), else in forward
    if objs is not None:  # the objects a stopped run trained, resumed in its process
        model, opt, sched = objs
    else:
        model, opt, sched = build(cfg, not by_step and (wrap or interrupt_at is not None))
    if by_step and objs is None:
        step = opt.step

        def interrupting_step(*args, **kwargs):
            out = step(*args, **kwargs)
            _SIGINT_AT["calls"] += 1
            if _SIGINT_AT["calls"] == _SIGINT_AT["at"]:
                os.kill(os.getpid(), signal.SIGINT)
            return out

        opt.step = interrupting_step
    weight = cfg["class_weight"] if cfg["weights"] else None
    if cfg["loss"] == "bce":
        loss = BCEWithLogitsLoss(pos_weight=weight)
    elif cfg["loss"] == "mse":
        loss = "mse"
    else:
        loss = CrossEntropyLoss(weight=weight, label_smoothing=cfg["smoothing"])
    X = scipy_sparse.csr_matrix(cfg["X"]) if cfg["sparse"] else cfg["X"]
    if folder is not None:
        kw["checkpoint_dir"] = folder
    if cfg["val_data"]:
        vx, vy = cfg["val"]
        kw["validation_data"] = (scipy_sparse.csr_matrix(vx) if cfg["sparse"] else vx, vy)
    history = wxb.fit(
        model, X, cfg["y"], loss=loss, optimizer=opt,
        lr_schedule="step" if cfg["schedule"] == "named" else sched,
        epochs=cfg["epochs"] if epochs is None else epochs, batch_size=cfg["batch"],
        validation_split=cfg["split"], shuffle=cfg["shuffle"], seed=cfg["seed"],
        early_stopping=cfg["patience"], min_delta=cfg["min_delta"],
        restore_best_weights=cfg["restore"], diagnose=cfg["diagnose"],
        clip_grad_norm=cfg["clip"], verbose=False, **kw,
    )  # fmt: skip
    return history, model, opt, sched


def _eq(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_eq(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return a == b


def differences(a, b) -> list[str]:
    (ha, ma, oa, sa), (hb, mb, ob, sb) = a, b
    out = [f"history {k}" for k in set(ha.history) | set(hb.history)
           if not _eq(ha.history.get(k), hb.history.get(k))]  # fmt: skip
    for name in ("best_epoch", "stopped_early", "epochs", "kept_epoch", "warnings", "loss_note"):
        if getattr(ha, name) != getattr(hb, name):
            out.append(f"{name} {getattr(ha, name)} != {getattr(hb, name)}")
    for k in ("best_value", "best", "best_loss"):
        if hasattr(ha, k) and not _eq(getattr(ha, k), getattr(hb, k)):
            out.append(k)
    if not _eq(ha.diagnostics, hb.diagnostics):
        out.append("diagnostics")
    da, db = ma.state_dict(), mb.state_dict()
    out += [f"model {k}" for k in da if not _eq(da[k], db[k])]
    if not _eq(oa.state_dict(), ob.state_dict()):
        out.append("optimizer state")
    if sa is not None and not _eq(sa.state_dict(), sb.state_dict()):
        out.append(f"schedule state {sa.state_dict()} != {sb.state_dict()}")
    return out


def describe(cfg) -> str:
    return ", ".join(f"{k}={v}" for k, v in cfg.items() if k not in ("X", "y"))


def _copy_alone(json_path: Path, folder: Path) -> None:
    folder.mkdir(parents=True)
    for part in (json_path, json_path.with_suffix(".safetensors")):
        shutil.copy2(part, folder / part.name)


def test_resumed_runs_equal_the_uninterrupted_one(seeded, tmp_path):
    rng = seeded.rng
    cfg = draw(rng)
    msg = seeded.msg(describe(cfg))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "named" schedule notes and the like
        reference = run(cfg)
    E = reference[0].epochs
    assert E >= 1, msg

    # 1. every step checkpointed: the same run
    every = tmp_path / "every"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        written = run(cfg, every, checkpoint_every=1, keep_checkpoints=10_000)
    assert differences(reference, written) == [], msg
    found = sorted(every.glob("step-*.json"))
    chosen = {found[int(i)] for i in rng.integers(len(found), size=3)}
    for source in sorted(chosen):
        folder = tmp_path / f"from-{source.stem}"
        _copy_alone(source, folder)
        with warnings.catch_warnings():
            warnings.simplefilter("error", CheckpointWarning)
            resumed = run(cfg, folder, checkpoint_every=1, keep_checkpoints=10_000, resume=True)
        where = f"{msg}; resumed from {source.name}"
        assert differences(reference, resumed) == [], f"{where}: {differences(reference, resumed)}"
        for later in sorted(folder.glob("step-*")):
            assert later.read_bytes() == (every / later.name).read_bytes(), f"{where}: {later.name}"

    # 2. stopped after k epochs (fit's epochs=k), resumed to E with fresh objects
    if cfg["schedule"] not in ("named",) and cfg["epochs"] > 1:
        k = int(rng.integers(1, cfg["epochs"]))
        folder = tmp_path / f"after-{k}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stopped = run(cfg, folder, epochs=k)
            # else fresh objects; the same ones are refused after a schedule that moves
            # what the run's record of the optimiser reads (plateau's lr, cycled momentum)
            moves = cfg["schedule"] in ("plateau", "cyclic", "onecycle")
            same = not moves and bool(rng.random() < 0.5)
            resumed = run(cfg, folder, resume=True, objs=stopped[1:] if same else None)
        got = differences(reference, resumed)
        assert got == [], f"{msg}; stopped after {k} epochs (same objects {same}): {got}"

    # 3. Ctrl-C at a training step, resumed with fresh objects; under Python's own Ctrl-C
    # handler, as an interactive session has it (CI's runner ignores SIGINT: this part
    # was left out there)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # twice: in the run, then in its resumed run (counted from the resumed run's start)
        ats = [int(a) for a in rng.integers(1, max(2, len(found) + E), size=2)]
        folder = tmp_path / "ctrl-c"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wrapped = run(cfg, wrap=True)  # another engine, maybe: its own reference
            for i, at in enumerate(ats):
                try:
                    run(cfg, folder, interrupt_at=at, checkpoint_every=cfg["every"], resume=i > 0)
                except TrainingInterrupted:
                    pass
            # (not interrupted when ``at`` is past the run: resuming it then changes nothing)
            resumed = run(cfg, folder, resume=True, wrap=True, checkpoint_every=cfg["every"])
    finally:
        signal.signal(signal.SIGINT, previous)
    got = differences(wrapped, resumed)
    assert got == [], f"{msg}; Ctrl-C at {ats}: {got}"


class PythonNoise(Module):
    """Multiplicative noise from a Python random.Random the module holds, as a PyTorch
    user's module may (``self.rng = random.Random(seed)``)."""

    def __init__(self, n, h, c, seed, scale, in_list) -> None:
        super().__init__()
        self.body, self.head = Dense(n, h, seed=seed), Dense(h, c, seed=seed + 1)
        self.scale = scale
        generator = random.Random(seed)
        self.rngs = [generator] if in_list else None
        self.rng = None if in_list else generator

    def forward(self, x):
        h = wxb.ops.relu(self.body(x))
        if self.training:
            generator = self.rng if self.rng is not None else self.rngs[0]
            h = h * (1.0 + self.scale * generator.gauss(0.0, 1.0))
        return self.head(h)


def test_a_python_random_generator_a_module_holds_resumes_where_it_was(seeded, tmp_path):
    """A module's random.Random was not checkpointed (NumPy's generators were): the resumed
    run's module drew again from its seed, trained on other noise, and said nothing."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 8, size=3))
    rows = int(rng.integers(40, 90))
    X, y = rng.normal(size=(rows, n)), rng.integers(0, c, rows)
    seed, fit_seed = int(rng.integers(1 << 30)), int(rng.integers(1 << 30))
    scale, in_list = float(rng.uniform(0.05, 0.5)), bool(rng.random() < 0.5)
    epochs = int(rng.integers(3, 6))
    done = int(rng.integers(1, epochs))
    batch = int(rng.integers(8, 20))
    msg = seeded.msg(f"{rows}×{n} → {c}, noise {scale:.3g}, in a list {in_list}, "
                     f"stopped after {done} of {epochs} epochs, batch {batch}")  # fmt: skip

    def fit(folder=None, epochs=epochs, **kw):
        model = PythonNoise(n, h, c, seed, scale, in_list)
        opt = Adam(model.parameters(), lr=0.01)
        history = wxb.fit(model, X, y, optimizer=opt, epochs=epochs, batch_size=batch,
                          seed=fit_seed, verbose=False, checkpoint_dir=folder, **kw)  # fmt: skip
        return history, model, opt, None

    reference = fit()
    folder = tmp_path / "stopped"
    fit(folder, epochs=done)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)
        resumed = fit(folder, resume=True)
    assert resumed[0].resumed_from is not None, msg
    assert differences(reference, resumed) == [], msg
    # the state wxb.get_rng_state(model) gives holds it too, and puts it back
    model = resumed[1]
    state = wxb.get_rng_state(model)
    generator = model.rng if model.rng is not None else model.rngs[0]
    drawn = [generator.random() for _ in range(3)]
    wxb.set_rng_state(state, model)
    assert [generator.random() for _ in range(3)] == drawn, msg


class NoisySGD(SGD):
    """SGD with Gaussian noise on the gradients, from a generator the optimiser holds."""

    def __init__(self, params, lr, seed, scale) -> None:
        super().__init__(params, lr=lr)
        self.noise, self.scale = np.random.default_rng(seed), scale

    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad = p.grad + self.scale * self.noise.normal(size=p.grad.shape)
        super().step()


def test_a_generator_an_optimiser_of_ones_own_holds_resumes_where_it_was(seeded, tmp_path):
    """An optimiser's own generator (noisy gradients) was not checkpointed (a module's and
    a loss's were): the resumed run drew its noise again from the seed, and said nothing."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 8, size=3))
    rows = int(rng.integers(40, 90))
    X, y = rng.normal(size=(rows, n)), rng.integers(0, c, rows)
    seed, noise_seed, fit_seed = (int(v) for v in rng.integers(1 << 30, size=3))
    scale, lr = float(rng.uniform(0.001, 0.05)), float(rng.uniform(0.01, 0.2))
    epochs = int(rng.integers(3, 6))
    done = int(rng.integers(1, epochs))
    batch = int(rng.integers(8, 20))
    msg = seeded.msg(f"{rows}×{n} → {c}, noise {scale:.3g}, lr {lr:.3g}, stopped after "
                     f"{done} of {epochs} epochs, batch {batch}")  # fmt: skip

    def fit(folder=None, epochs=epochs, **kw):
        model = Sequential(Dense(n, h, seed=seed), ReLU(), Dense(h, c, seed=seed + 1))
        opt = NoisySGD(model.parameters(), lr, noise_seed, scale)
        history = wxb.fit(model, X, y, optimizer=opt, epochs=epochs, batch_size=batch,
                          seed=fit_seed, verbose=False, checkpoint_dir=folder, **kw)  # fmt: skip
        return history, model, opt, None

    reference = fit()
    folder = tmp_path / "stopped"
    fit(folder, epochs=done)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)
        resumed = fit(folder, resume=True)
    assert resumed[0].resumed_from is not None, msg
    assert differences(reference, resumed) == [], msg
    assert resumed[2].noise.bit_generator.state == reference[2].noise.bit_generator.state, msg
