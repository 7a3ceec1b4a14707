"""Whole training runs of a drawn optimiser under a drawn schedule, beside PyTorch.

Each draw builds one small model in both libraries (two Linear layers, an auxiliary head
used on some steps only, a late layer whose parameters join the optimiser mid-run), an
optimiser of ``wxb.optim`` with one to three parameter groups of their own options, and a
schedule: one of ``wxb.optim.lr_scheduler``'s, a ``SequentialLR`` or ``ChainedScheduler``
of two, two schedules stepped side by side, or none. Then the run's steps, with user
actions drawn among them: ``add_param_group``, a checkpoint of the optimiser and of the
schedule loaded into fresh ones (PyTorch's order: optimiser, schedule, then their
states), a group's lr set by hand, ``zero_grad(set_to_none=False)``, a layer frozen
mid-run, the auxiliary head left out of a forward, gradient clipping, ``scheduler.step()``
called before ``optimizer.step()``. After every step the parameters, every group's lr,
momentum and betas, the optimiser's state and ``get_last_lr()`` are compared with torch's
run of the same actions, in float64.

Where torch has no answer the run stops comparing: most of its schedules fail at the step
after a group is added (a zip of other lengths, OneCycleLR's KeyError), where wxb's take
the group on; its cosine chained after a schedule that took the rate below η_min goes
below 0, where wxb's stays ≥ 0. Left out: a CyclicLR made after another schedule (torch's
starts at the initial_lr that one wrote, not at its base_lr, for one step), LBFGS's strong
Wolfe search (test_optims52), Adagrad's initial_accumulator_value per group (wxb's
documented Σ start; torch's Σ is started the same way here).
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch

import wxb
from wxb import nn

OPTIMIZERS = (
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "Adamax",
    "NAdam",
    "RAdam",
    "Rprop",
    "ASGD",
    "LBFGS",
)
# schedules stepped once an epoch, which SequentialLR and ChainedScheduler take
EPOCH_KINDS = (
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "LinearLR",
    "ConstantLR",
    "PolynomialLR",
    "LambdaLR",
    "MultiplicativeLR",
    "CosineAnnealingWarmRestarts",
)
CYCLING = ("OneCycleLR", "CyclicLR")
# wxb's state names where they are not torch's
WXB_KEY = {"exp_avg": "moment1", "exp_avg_sq": "moment2", "exp_inf": "inf_norm"}
MOMENTUM = ("SGD", "RMSprop")
BETAS = ("Adam", "AdamW", "NAdam", "RAdam", "Adamax")


@pytest.fixture
def torch_float64():
    """torch keeps NAdam's μ product and ASGD's η and μ in its default dtype."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def option_draw(rng, kind: str, group: bool) -> dict:
    """The optimiser's options (``group``: a group's own, the lr among them)."""
    u, coin = rng.uniform, lambda p=0.5: bool(rng.random() < p)
    wd = float(u(0, 0.05)) if coin() else 0.0
    if kind == "SGD":
        momentum = float(u(0.1, 0.95)) if coin(0.7) else 0.0
        nesterov = bool(momentum and coin())
        damp = 0.0 if nesterov or coin() else float(u(0, 0.5))
        s = {"lr": float(u(0.01, 0.2)), "momentum": momentum, "nesterov": nesterov}
        return {**s, "dampening": damp, "weight_decay": wd}
    if kind in BETAS:
        s = {
            "lr": float(u(0.005, 0.05)),
            "betas": (float(u(0.5, 0.95)), float(u(0.9, 0.999))),
            "eps": float(10 ** u(-8, -5)),
            "weight_decay": wd,
        }
        if kind == "NAdam":
            s["momentum_decay"] = float(u(1e-3, 1e-2))
        if kind in ("NAdam", "RAdam") and coin():
            s["decoupled_weight_decay"] = True
        return s
    if kind == "RMSprop":
        return {
            "lr": float(u(0.001, 0.02)),
            "alpha": float(u(0.8, 0.99)),
            "eps": float(10 ** u(-8, -5)),
            "weight_decay": wd,
            "momentum": float(u(0.1, 0.9)) if coin() else 0.0,
            "centered": coin(),
        }
    if kind == "Adagrad":
        s = {"lr": float(u(0.01, 0.1)), "lr_decay": float(u(0, 0.1)), "weight_decay": wd}
        # (torch's Σ starts at the constructor's initial_accumulator_value for every group,
        # wxb's at each group's own, as documented: drawn for the whole optimiser only)
        return s if group else {**s, "initial_accumulator_value": float(u(0, 0.5))}
    if kind == "Adadelta":
        return {"lr": float(u(0.5, 1.0)), "rho": float(u(0.8, 0.95)), "weight_decay": wd}
    if kind == "Rprop":
        return {
            "lr": float(u(0.005, 0.05)),
            "etas": (float(u(0.3, 0.7)), float(u(1.1, 1.5))),
            "step_sizes": (float(10 ** u(-6, -4)), float(u(0.5, 5))),
        }
    if kind == "LBFGS":  # (one group: its options are the optimiser's)
        return {
            "lr": float(u(0.05, 0.5)),
            "max_iter": int(rng.integers(1, 5)),
            "history_size": int(rng.integers(1, 6)),
        }
    return {  # ASGD
        "lr": float(u(0.01, 0.1)),
        "lambd": float(10 ** u(-4, -2)),
        "alpha": float(u(0.5, 1.0)),
        "t0": float(rng.integers(1, 6)),
        "weight_decay": wd,
    }


def schedule_draw(rng, kind: str, steps: int, groups: int) -> dict:
    """One schedule's settings; ``groups``: how many per-group values a list may hold (0:
    plain numbers only)."""
    u, ints = rng.uniform, rng.integers
    if kind == "StepLR":
        return {"step_size": int(ints(1, 4)), "gamma": float(u(0.3, 0.9))}
    if kind == "MultiStepLR":
        return {
            "milestones": sorted({int(v) for v in ints(1, steps, 2)}),
            "gamma": float(u(0.3, 0.9)),
        }
    if kind == "ExponentialLR":
        return {"gamma": float(u(0.6, 0.98))}
    if kind == "CosineAnnealingLR":
        return {
            "T_max": int(ints(2, 7)),
            "eta_min": float(u(0, 1e-3)) if rng.random() < 0.5 else 0.0,
        }
    if kind == "LinearLR":
        return {
            "start_factor": float(u(0.2, 1.0)),
            "end_factor": float(u(0.1, 1.0)),
            "total_iters": int(ints(1, 5)),
        }
    if kind == "ConstantLR":
        return {"factor": float(u(0.2, 0.9)), "total_iters": int(ints(1, 5))}
    if kind == "PolynomialLR":
        return {"total_iters": int(ints(2, 7)), "power": float(u(0.5, 2.0))}
    if kind == "LambdaLR":
        return {"lr_lambda": ("inverse", float(u(0.1, 1.0)))}
    if kind == "MultiplicativeLR":
        return {"lr_lambda": ("power", float(u(0.7, 0.99)))}
    if kind == "CosineAnnealingWarmRestarts":
        return {"T_0": int(ints(1, 4)), "T_mult": int(ints(1, 3)), "eta_min": float(u(0, 1e-3))}
    if kind == "ReduceLROnPlateau":
        return {
            "mode": str(rng.choice(["min", "max"])),
            "factor": float(u(0.2, 0.8)),
            "patience": int(ints(0, 2)),
            "threshold": float(u(0, 0.1)),
            "threshold_mode": str(rng.choice(["rel", "abs"])),
            "cooldown": int(ints(0, 2)),
            "min_lr": float(u(0, 1e-3)),
        }
    per = (lambda lo, hi: [float(u(lo, hi)) for _ in range(groups)]) if groups else None
    if kind == "OneCycleLR":
        s = {
            "max_lr": per(0.01, 0.1) if per and rng.random() < 0.5 else float(u(0.01, 0.1)),
            "total_steps": steps + int(ints(0, 4)),
            "pct_start": float(u(0.2, 0.6)),
            "anneal_strategy": str(rng.choice(["cos", "linear"])),
            "div_factor": float(u(5, 30)),
            "final_div_factor": float(u(10, 1e4)),
            "three_phase": bool(rng.random() < 0.3),
            "cycle_momentum": bool(rng.random() < 0.7),
        }
        if rng.random() < 0.5:
            s["base_momentum"] = per(0.6, 0.85) if per else float(u(0.6, 0.85))
            s["max_momentum"] = per(0.86, 0.97) if per else float(u(0.86, 0.97))
        return s
    s = {  # CyclicLR
        "base_lr": per(1e-3, 1e-2) if per and rng.random() < 0.5 else float(u(1e-3, 1e-2)),
        "max_lr": per(0.02, 0.1) if per and rng.random() < 0.5 else float(u(0.02, 0.1)),
        "step_size_up": int(ints(1, 4)),
        "step_size_down": int(ints(1, 4)) if rng.random() < 0.5 else None,
        "mode": str(rng.choice(["triangular", "triangular2", "exp_range"])),
        "gamma": float(u(0.8, 1.0)),
        "cycle_momentum": bool(rng.random() < 0.7),
    }
    if rng.random() < 0.5:
        s["base_momentum"] = per(0.6, 0.85) if per else float(u(0.6, 0.85))
        s["max_momentum"] = per(0.86, 0.97) if per else float(u(0.86, 0.97))
    return s


def lr_lambda(spec):
    how, a = spec
    if how == "inverse":
        return lambda epoch: 1.0 / (1.0 + a * epoch)
    return lambda epoch: a


def plan(rng) -> dict:
    kind = str(rng.choice(OPTIMIZERS))
    steps = int(rng.integers(6, 16))
    count = 1 if kind == "LBFGS" else int(rng.integers(1, 4))  # parameter groups
    form = str(
        rng.choice(
            ["single", "sequential", "chained", "two", "plateau", "cycling", "cycles", "none"]
        )
    )
    can_cycle = kind in MOMENTUM or kind in BETAS
    add_at = int(rng.integers(1, steps)) if rng.random() < 0.35 and kind != "LBFGS" else None
    lists = 0 if add_at is not None else count  # (a list of per-group values fits no new group)
    schedules = []
    if form in ("single", "sequential", "chained", "two"):
        picks = [str(k) for k in rng.choice(EPOCH_KINDS, size=1 if form == "single" else 2)]
        if form in ("chained", "two") and rng.random() < 0.3:  # a cycling one among them
            # (first: torch's CyclicLR made after another schedule starts at the initial_lr
            # that one wrote, not at its base_lr, for a step)
            picks[0] = str(rng.choice(CYCLING))
        schedules = [(k, schedule_draw(rng, k, steps, lists)) for k in picks]
        for k, settings in schedules:
            if k in CYCLING:
                settings["cycle_momentum"] = settings["cycle_momentum"] and can_cycle
                if k == "OneCycleLR":
                    settings["total_steps"] = max(settings["total_steps"], 8) + 1
        if form == "single" and picks[0] == "LambdaLR" and add_at is None and rng.random() < 0.5:
            # one function per group
            schedules[0][1]["lr_lambda"] = [
                ("inverse", float(rng.uniform(0.1, 1.0))) for _ in range(count)
            ]
    elif form == "plateau":  # alone, or beside a schedule stepped once an epoch
        schedules = [("ReduceLROnPlateau", schedule_draw(rng, "ReduceLROnPlateau", steps, 0))]
        if rng.random() < 0.4:
            k = str(rng.choice(EPOCH_KINDS))
            schedules.insert(int(rng.integers(0, 2)), (k, schedule_draw(rng, k, steps, lists)))
    elif form in ("cycling", "cycles"):  # one, or a SequentialLR of two
        for _ in range(1 if form == "cycling" else 2):
            k = str(rng.choice(CYCLING))
            s = schedule_draw(rng, k, steps, lists)
            s["cycle_momentum"] = s["cycle_momentum"] and can_cycle
            if k == "OneCycleLR":  # (stepped before the optimiser: one step more)
                s["total_steps"] = max(s["total_steps"], 8 if s["three_phase"] else 0) + 1
            schedules.append((k, s))
    events = {}
    for what in ("checkpoint", "hand_lr", "freeze", "unfreeze", "aux", "hand_momentum") * 2:
        if rng.random() < 0.5:
            events.setdefault(int(rng.integers(1, steps)), []).append(what)
    if add_at is not None:
        events.setdefault(add_at, []).append("add_group")
    return {
        "kind": kind,
        "count": count,
        "split": sorted(int(v) for v in rng.choice(np.arange(1, 6), size=count - 1, replace=False)),
        "options": option_draw(rng, kind, False),
        "groups": [
            option_draw(rng, kind, True) if rng.random() < 0.7 else {} for _ in range(count)
        ],
        "late": option_draw(rng, kind, True) if rng.random() < 0.5 else {},
        "form": form,
        "schedules": schedules,
        "milestone": int(rng.integers(1, steps)),
        "per_epoch": int(rng.integers(1, 3)) if not any(k in CYCLING for k, _ in schedules) else 1,
        "sched_first": bool(rng.random() < 0.25),
        "steps": steps,
        "events": events,
        "set_to_none": [bool(v) for v in rng.random(steps) < 0.5],
        "clip": str(rng.choice(["none", "norm", "value"])),
        "clip_at": float(rng.uniform(0.2, 2.0)),
        "norm_type": float(rng.choice([2.0, 1.0, np.inf])),
        "rebuilt_lr": float(rng.uniform(0.5, 3.0)),
        "hand": float(rng.uniform(0.3, 2.0)),
    }


class Side:
    """One library's model, optimiser and schedules, driven by the plan."""

    def __init__(self, t: bool, p: dict, weights: dict, sizes: tuple) -> None:
        self.t, self.p = t, p
        n, h, c = sizes
        if t:
            make = lambda i, o: torch.nn.Linear(i, o, dtype=torch.float64)  # noqa: E731
        else:
            make = lambda i, o: nn.Linear(i, o, dtype="float64")  # noqa: E731
        self.layers = {"l1": make(n, h), "l2": make(h, c), "aux": make(h, c), "late": make(n, c)}
        self.params = {}
        for name, layer in self.layers.items():
            for part in ("weight", "bias"):
                q = getattr(layer, part)
                if t:
                    with torch.no_grad():
                        q.copy_(torch.from_numpy(weights[f"{name}.{part}"]))
                else:
                    q.data[...] = weights[f"{name}.{part}"]
                self.params[f"{name}.{part}"] = q
        self.use_aux = True
        self.added = False
        self.closure = None
        self.opt = self.make_optimizer(p["options"]["lr"])
        self.scheds = self.make_schedules(self.opt)

    # -- building -------------------------------------------------------------------------
    def group_params(self) -> list[list]:
        """The groups over l1, l2 and aux's six parameters, split at ``split``."""
        order = [self.params[k] for k in ("l1.weight", "l1.bias", "l2.weight", "l2.bias")]
        order += [self.params["aux.weight"], self.params["aux.bias"]]
        cuts = [0, *self.p["split"], len(order)]
        return [order[a:b] for a, b in itertools.pairwise(cuts)]

    def late_group(self) -> dict:
        late = [self.params["late.weight"], self.params["late.bias"]]
        return {"params": late, **self.p["late"]}

    def make_optimizer(self, lr: float):
        p = self.p
        cls = getattr(torch.optim if self.t else wxb.optim, p["kind"])
        dicts = [{"params": g, **o} for g, o in zip(self.group_params(), p["groups"], strict=True)]
        if self.added:
            dicts.append(self.late_group())
        opt = cls(dicts, **{**p["options"], "lr": lr})
        if self.t:
            start_sums(opt)
        return opt

    def one(self, opt, kind: str, settings: dict):
        module = torch.optim.lr_scheduler if self.t else wxb.optim.lr_scheduler
        s = dict(settings)
        if "lr_lambda" in s:
            f = s["lr_lambda"]
            s["lr_lambda"] = [lr_lambda(g) for g in f] if isinstance(f, list) else lr_lambda(f)
        return getattr(module, kind)(opt, **s)

    def make_schedules(self, opt) -> list:
        p = self.p
        module = torch.optim.lr_scheduler if self.t else wxb.optim.lr_scheduler
        made = [self.one(opt, k, s) for k, s in p["schedules"]]
        if p["form"] in ("sequential", "cycles"):
            return [module.SequentialLR(opt, made, milestones=[p["milestone"]])]
        if p["form"] == "chained":
            return [module.ChainedScheduler(made)]
        return made

    # -- actions --------------------------------------------------------------------------
    def checkpoint(self) -> None:
        """A resume: fresh optimiser (another lr, loaded over) and schedules, their states in."""
        saved = copy.deepcopy(self.opt.state_dict())
        saved_s = [copy.deepcopy(s.state_dict()) for s in self.scheds]
        self.opt = self.make_optimizer(self.p["options"]["lr"] * self.p["rebuilt_lr"])
        self.scheds = self.make_schedules(self.opt)
        self.opt.load_state_dict(saved)
        for s, state in zip(self.scheds, saved_s, strict=True):
            s.load_state_dict(state)

    def add_group(self) -> None:
        self.added = True
        self.opt.add_param_group(self.late_group())
        if self.t:
            start_sums(self.opt)

    def freeze(self, flag: bool) -> None:
        for part in ("weight", "bias"):
            q = self.params[f"l1.{part}"]
            if self.t:
                q.requires_grad_(not flag)
            else:
                q.requires_grad = not flag

    def loss(self, X, y):
        L = self.layers
        if self.t:
            x, target = torch.from_numpy(X), torch.from_numpy(y)
            z = torch.tanh(L["l1"](x))
        else:
            x, target = X, y
            z = L["l1"](x).tanh()
        out = L["l2"](z) + 0.5 * L["late"](x)
        if self.use_aux:
            out = out + L["aux"](z)
        return ((out - target) ** 2).mean()

    def closure_of(self, X, y, set_to_none: bool):
        def closure():
            self.opt.zero_grad(set_to_none=set_to_none)
            value = self.loss(X, y)
            value.backward()
            self.clip()
            return value

        return closure

    def clip(self):
        p, utils = self.p, torch.nn.utils if self.t else nn.utils
        qs = list(self.params.values())
        if p["clip"] == "norm":
            return float(utils.clip_grad_norm_(qs, p["clip_at"], norm_type=p["norm_type"]))
        if p["clip"] == "value":
            utils.clip_grad_value_(qs, p["clip_at"] / 4)
        return None

    def step_schedules(self, loss: float) -> bool:
        """Each schedule's step; False where torch's fails: most of its schedules index
        their own per-group lists by the optimiser's groups, and fail on a group added since
        (a zip of other lengths, OneCycleLR's KeyError), where wxb's take it on."""
        try:
            for s in self.scheds:
                if type(s).__name__ == "ReduceLROnPlateau":
                    s.step(loss)
                else:
                    s.step()
        except (ValueError, KeyError):
            if self.t and self.added:
                return False
            raise
        return True


def start_sums(opt) -> None:
    """wxb's documented Adagrad (optim.Adagrad): Σ starts at the parameter's own group's
    initial_accumulator_value; torch's makes none for a group added later (its step's
    KeyError)."""
    if not isinstance(opt, torch.optim.Adagrad):
        return
    for group in opt.param_groups:
        for q in group["params"]:
            if float(opt.state[q].get("step", 0)) == 0:
                opt.state[q]["step"] = torch.tensor(0.0)
                opt.state[q]["sum"] = torch.full_like(q, group["initial_accumulator_value"])


def as_np(v) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        return v.detach().numpy()
    if isinstance(v, list):  # LBFGS's history: its vectors end to end
        return np.concatenate([np.ravel(as_np(e)) for e in v] or [np.zeros(0)])
    return np.asarray(v, dtype=np.float64)


RTOL = 1e-11


def close(ours, theirs, what: str, msg, shadow=None, atol=0.0) -> None:
    """``ours`` within RTOL of ``theirs`` (of the quantity's largest entry too: an entry
    near 0 is a difference of terms that size) and ``atol``, plus 64 times a shadow torch
    run's own largest distance where given (LBFGS: see ``run``)."""
    a, b = np.asarray(as_np(ours), np.float64), np.asarray(as_np(theirs), np.float64)
    assert a.shape == b.shape, msg(f"{what}: shapes {a.shape} and {b.shape}")
    bound = RTOL * (np.abs(b) + np.abs(b).max(initial=0.0)) + atol + 1e-300
    if shadow is not None:
        bound = bound + 64 * np.abs(np.asarray(as_np(shadow), np.float64) - b).max(initial=0)
    if not np.all(np.abs(a - b) <= bound):
        worst = np.abs(a - b).max()
        raise AssertionError(msg(f"{what}: off by {worst:.3g}\nwxb   {a}\ntorch {b}"))


def run(seeded, p: dict) -> None:
    rng = seeded.rng
    sizes = tuple(int(v) for v in rng.integers(2, 5, size=3))
    n, h, c = sizes
    shapes = {"l1": (h, n), "l2": (c, h), "aux": (c, h), "late": (c, n)}
    weights = {}
    for name, (o, i) in shapes.items():
        weights[f"{name}.weight"] = rng.normal(scale=0.7, size=(o, i))
        weights[f"{name}.bias"] = rng.normal(scale=0.3, size=o)
    ours, theirs = Side(False, p, weights, sizes), Side(True, p, weights, sizes)
    sides = [ours, theirs]
    # LBFGS's steps may grow the weights a hundredfold, and rounding with them (a weight
    # 2e-11 of itself apart from torch's): a second torch run on inputs moved by 1e-14 of
    # themselves measures how much, per quantity (its strong Wolfe search, whose branches
    # rounding may flip, is left to test_optims52's runs)
    shadow = Side(True, p, weights, sizes) if p["kind"] == "LBFGS" else None
    if shadow is not None:
        sides.append(shadow)
    context = f"{p}"

    def msg(what):
        return seeded.msg(f"{context}\n{what}")

    def compare(what, get, atol=0.0):
        close(get(ours), get(theirs), what, msg, None if shadow is None else get(shadow), atol)

    def compare_groups(where):
        g1, g2 = ours.opt.param_groups, theirs.opt.param_groups
        assert len(g1) == len(g2), msg(f"{where}: {len(g1)} groups, torch {len(g2)}")
        for i, b in enumerate(g2):
            compare(f"{where}: group {i} lr", lambda side, i=i: side.opt.param_groups[i]["lr"])
            for key in ("momentum", "betas"):
                if key in b:
                    compare(
                        f"{where}: group {i} {key}",
                        lambda side, i=i, key=key: side.opt.param_groups[i][key],
                    )

    def compare_last_lr(where):
        for i, b in enumerate(theirs.scheds):
            # (torch's lists the groups at its last step; wxb's a group added since too)
            count = len(b.get_last_lr())
            compare(
                f"{where}: schedule {i} get_last_lr()",
                lambda side, i=i, count=count: side.scheds[i].get_last_lr()[:count],
            )

    compare_groups("made")
    for step in range(p["steps"]):
        where = f"step {step}"
        for event in p["events"].get(step, []):
            where = f"step {step} ({event})"
            if event == "checkpoint":
                for side in sides:
                    side.checkpoint()
                compare_groups(where)
                compare_last_lr(where)
            elif event == "hand_lr":
                i = step % len(ours.opt.param_groups)
                for side in sides:
                    side.opt.param_groups[i]["lr"] = side.opt.param_groups[i]["lr"] * p["hand"]
            elif event in ("freeze", "unfreeze"):
                for side in sides:
                    side.freeze(event == "freeze")
            elif event == "aux":  # the auxiliary head left out of the forward, or back in
                for side in sides:
                    side.use_aux = not side.use_aux
            elif event == "hand_momentum":  # SGD's or RMSprop's momentum, or β₁, by hand
                i = (step + 1) % len(ours.opt.param_groups)
                for side in sides:
                    group = side.opt.param_groups[i]
                    if "betas" in group:
                        group["betas"] = (group["betas"][0] * 0.9, group["betas"][1])
                    elif "momentum" in group:
                        group["momentum"] = group["momentum"] * 0.9
            elif event == "add_group":
                for side in sides:
                    side.add_group()
                compare_groups(where)
        for side in sides:
            side.opt.zero_grad(set_to_none=p["set_to_none"][step])
        B = int(rng.integers(2, 6))
        X, y = rng.normal(size=(B, n)), rng.normal(size=(B, c))
        inputs = [X, X]
        if shadow is not None:
            inputs.append(X * (1 + 1e-14 * rng.normal(size=X.shape)))
        if p["kind"] == "LBFGS":  # its step evaluates a closure several times
            for side, x in zip(sides, inputs, strict=True):
                side.closure = side.closure_of(x, y, p["set_to_none"][step])
        losses = []
        for side, x in zip(sides, inputs, strict=True):
            value = side.loss(x, y)
            value.backward()
            losses.append(float(value.item()))
        compare(f"{where}: loss", lambda side, losses=losses: losses[sides.index(side)])
        norms = [side.clip() for side in sides]
        if norms[1] is not None:
            compare(
                f"{where}: clip_grad_norm_'s total",
                lambda side, norms=norms: norms[sides.index(side)],
            )
        for name in ours.params:
            a, b = ours.params[name].grad, theirs.params[name].grad
            assert (a is None) == (b is None), msg(f"{where}: {name}.grad {a} where torch's is {b}")
            if b is not None:
                # (tanh′ = 1 − tanh² rounds to eps of 1, not of itself: a saturated unit's
                # gradient, 1e-8 after LBFGS grew the weights, was 6e-17 from torch's;
                # its terms are products of O(1) weights, inputs and residuals)
                compare(
                    f"{where}: {name}.grad", lambda side, name=name: side.params[name].grad, 1e-14
                )
        epoch_end = (step + 1) % p["per_epoch"] == 0
        for side in sides[::-1]:  # (torch's first: where its schedule fails, none to compare)
            if p["sched_first"] and epoch_end:
                if not side.step_schedules(losses[0]):
                    return  # torch's schedule failed on a group added since: no reference
            side.opt.step(side.closure) if p["kind"] == "LBFGS" else side.opt.step()
            if not p["sched_first"] and epoch_end:
                if not side.step_schedules(losses[0]):
                    return
        if min(g["lr"] for g in theirs.opt.param_groups) < 0:
            # torch's chained cosine, stepped on a rate another schedule took below its
            # η_min, goes below 0 (an ascent); wxb's stays ≥ 0, as documented: no reference
            return
        for name in ours.params:
            compare(f"{where}: {name}", lambda side, name=name: side.params[name].data)
        compare_groups(where)
        compare_last_lr(where)
        for name in ours.params:
            b = theirs.opt.state.get(theirs.params[name], {})
            if not b or float(b.get("step", 1)) == 0:
                continue
            for key, value in b.items():
                if key == "al" or (key == "momentum_buffer" and value is None):
                    continue  # (LBFGS's scratch of its last two-loop recursion; SGD's none)

                def get(side, key=key, name=name):
                    state = side.opt.state.get(side.params[name], {})
                    if side is not ours:
                        return state[key]
                    if key == "momentum_buffer" and p["kind"] == "SGD":
                        return state.get("velocity")
                    return state.get(WXB_KEY.get(key, key))

                assert get(ours) is not None, msg(f"{where}: {name} has no state {key}")
                compare(f"{where}: {name} state {key}", get)


@pytest.mark.filterwarnings("ignore:Detected call of")  # (scheduler.step() drawn first)
@pytest.mark.parametrize("draw", range(8))
def test_drawn_runs_with_user_actions_are_torchs(seeded, draw, torch_float64):
    run(seeded, plan(seeded.rng))


# -- the defects the draws above found, each on its own ------------------------------


def _twins(kind: str, lrs: list[float], **options):
    """A wxb optimiser and torch's over the same groups (one 2-vector each)."""
    ours = getattr(wxb.optim, kind)(
        [{"params": [nn.Parameter(np.zeros(2))], "lr": lr} for lr in lrs], **options
    )
    theirs = getattr(torch.optim, kind)(
        [
            {"params": [torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))], "lr": lr}
            for lr in lrs
        ],
        **options,
    )
    return ours, theirs


def _same_groups(seeded, ours, theirs, where: str) -> None:
    for i, (a, b) in enumerate(zip(ours.param_groups, theirs.param_groups, strict=True)):
        for key in ("lr", "momentum", "betas"):
            if key in b:
                np.testing.assert_allclose(
                    a[key],
                    b[key],
                    rtol=1e-12,
                    atol=0,
                    err_msg=seeded.msg(f"{where}: group {i} {key}"),
                )


@pytest.mark.filterwarnings("ignore:Detected call of")
def test_a_multiplicative_schedule_after_a_milestone_goes_on_from_the_rate_held(seeded):
    """SequentialLR's MultiplicativeLR from a milestone on: PyTorch's, which has no closed
    form, multiplies the rate the schedule before it left by λ(0) there, then by λ(1), …;
    wxb's started again from initial_lr (after ExponentialLR(0.5) for 3 epochs and a
    MultiplicativeLR of 0.9: 1.0, not 0.25·0.9)."""
    rng = seeded.rng
    lrs = [float(v) for v in rng.uniform(0.01, 0.5, size=int(rng.integers(1, 4)))]
    milestone, epochs = int(rng.integers(1, 6)), int(rng.integers(7, 12))
    gamma, a = float(rng.uniform(0.3, 0.9)), float(rng.uniform(0.5, 1.2))
    hand = int(rng.integers(0, epochs)), float(rng.uniform(0.3, 2.0))
    ours, theirs = _twins("SGD", lrs)

    def made(module, opt):
        first = module.ExponentialLR(opt, gamma=gamma)
        then = module.MultiplicativeLR(opt, lr_lambda=lambda e: a / (1 + 0.1 * e))
        return module.SequentialLR(opt, [first, then], milestones=[milestone])

    schedules = made(wxb.optim.lr_scheduler, ours), made(torch.optim.lr_scheduler, theirs)
    for epoch in range(epochs):
        if epoch == hand[0]:  # a rate set by hand: PyTorch's multiplies it from there
            for opt in (ours, theirs):
                opt.param_groups[-1]["lr"] *= hand[1]
        for opt, schedule in zip((ours, theirs), schedules, strict=True):
            opt.step()
            schedule.step()
        _same_groups(seeded, ours, theirs, f"epoch {epoch}, milestone {milestone}")
        np.testing.assert_allclose(
            schedules[0].get_last_lr(), schedules[1].get_last_lr(), rtol=1e-12, atol=0,
            err_msg=seeded.msg(f"epoch {epoch}: get_last_lr()"),
        )  # fmt: skip


def _cycling(rng, kind: str, groups: int, steps: int) -> dict:
    per = lambda lo, hi: [float(v) for v in rng.uniform(lo, hi, size=groups)]  # noqa: E731
    momenta = {"base_momentum": per(0.6, 0.85), "max_momentum": per(0.86, 0.97)}
    if kind == "OneCycleLR":
        return {"max_lr": per(0.05, 0.5), "total_steps": steps, "pct_start": 0.4, **momenta}
    return {"base_lr": per(1e-3, 1e-2), "max_lr": per(0.02, 0.2), "step_size_up": 2, **momenta}


@pytest.mark.parametrize(
    "kinds",
    [("CyclicLR", "CyclicLR"), ("CyclicLR", "OneCycleLR"), ("OneCycleLR", "CyclicLR"),
     ("OneCycleLR", "OneCycleLR")],
)  # fmt: skip
@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_cycling_schedules_in_a_sequential_keep_their_own_bounds(seeded, kinds, kind):
    """A SequentialLR of CyclicLR and OneCycleLR, per-group bounds: PyTorch's CyclicLR
    runs on its own base_lr, max_lr and momenta of each group, its OneCycleLR on those
    the groups hold (written by the last one made); wxb's ran a CyclicLR from the
    SequentialLR's starting rates and the first group's max_lr, never cycled its
    momentum, and ran a OneCycleLR on its own bounds."""
    rng = seeded.rng
    groups, first, second = int(rng.integers(1, 4)), int(rng.integers(3, 8)), 8
    options = {"momentum": 0.9} if kind == "SGD" else {}
    ours, theirs = _twins(kind, [float(v) for v in rng.uniform(0.01, 0.1, size=groups)], **options)
    settings = [_cycling(rng, k, groups, n) for k, n in zip(kinds, (first, second), strict=True)]

    def made(module, opt):
        members = [getattr(module, k)(opt, **s) for k, s in zip(kinds, settings, strict=True)]
        return module.SequentialLR(opt, members, milestones=[first])

    schedules = made(wxb.optim.lr_scheduler, ours), made(torch.optim.lr_scheduler, theirs)
    _same_groups(seeded, ours, theirs, f"{kinds} made")
    for step in range(first + second - 1):
        for opt, schedule in zip((ours, theirs), schedules, strict=True):
            opt.step()
            schedule.step()
        _same_groups(seeded, ours, theirs, f"{kinds} step {step}")


def test_one_cycle_follows_bounds_set_in_its_groups_as_torchs(seeded):
    """PyTorch's OneCycleLR reads each group's initial_lr, max_lr, min_lr and momentum
    bounds at every step: one set by hand mid-run is followed (wxb's kept its own)."""
    rng = seeded.rng
    total, at = 12, int(rng.integers(1, 10))
    ours, theirs = _twins("SGD", [0.1, 0.1], momentum=0.9)
    max_lr = [float(v) for v in rng.uniform(0.1, 0.5, size=2)]
    schedules = [
        module.OneCycleLR(opt, max_lr=max_lr, total_steps=total)
        for module, opt in ((wxb.optim.lr_scheduler, ours), (torch.optim.lr_scheduler, theirs))
    ]
    changed = {
        "max_lr": float(rng.uniform(0.5, 1.0)),
        "base_momentum": float(rng.uniform(0.5, 0.8)),
    }
    for step in range(total - 1):
        if step == at:
            for opt in (ours, theirs):
                opt.param_groups[1].update(changed)
        for opt, schedule in zip((ours, theirs), schedules, strict=True):
            opt.step()
            schedule.step()
        _same_groups(seeded, ours, theirs, f"step {step} (bounds set at {at})")


@pytest.mark.parametrize("kind", ["OneCycleLR", "CyclicLR"])
def test_a_sequential_resumed_keeps_the_momentum_its_optimiser_loaded(seeded, kind):
    """A SequentialLR whose cycling schedule moves the momentum, resumed in PyTorch's
    order (optimiser, schedule, the optimiser's state, the schedule's): the momentum is
    the loaded optimiser's (one set by hand before the save stays), as PyTorch's and as
    a OneCycleLR's own load_state_dict leaves it; wxb's SequentialLR set it back to the
    schedule's."""
    rng = seeded.rng
    first = int(rng.integers(2, 5))
    at = int(rng.integers(first + 1, first + 8))  # (in the cycling schedule's part)
    settings = _cycling(rng, kind, 1, 12)
    hand = float(rng.uniform(0.3, 0.6))

    def made(module, opt):
        warm = module.CyclicLR(opt, 0.01, 0.05, step_size_up=1, cycle_momentum=False)
        members = [warm, getattr(module, kind)(opt, **settings)]
        return module.SequentialLR(opt, members, milestones=[first])

    modules = wxb.optim.lr_scheduler, torch.optim.lr_scheduler
    pair = list(_twins("SGD", [0.05], momentum=0.9))
    schedules = [made(m, o) for m, o in zip(modules, pair, strict=True)]
    for _ in range(at):
        for opt, schedule in zip(pair, schedules, strict=True):
            opt.step()
            schedule.step()
    for opt in pair:
        opt.param_groups[0]["momentum"] = hand  # by hand, then saved
    saved = [
        (copy.deepcopy(o.state_dict()), copy.deepcopy(s.state_dict()))
        for o, s in zip(pair, schedules, strict=True)
    ]
    fresh = _twins("SGD", [0.05], momentum=0.9)
    for module, opt, (state, schedule_state) in zip(modules, fresh, saved, strict=True):
        schedule = made(module, opt)
        opt.load_state_dict(state)
        schedule.load_state_dict(schedule_state)
    _same_groups(seeded, *fresh, f"resumed after {at} steps (milestone {first})")
    assert fresh[0].param_groups[0]["momentum"] == hand, seeded.msg(f"resumed after {at} steps")
