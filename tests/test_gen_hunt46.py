"""Generated user models trained for several steps beside PyTorch.

Each draw builds one ``Module`` subclass, written once for either library (``Lib``), so
both models hold the same names and weights: an input layer, a few blocks from a
ModuleList (a residual, a layer applied twice, a nested Sequential, a ModuleDict gate, a
BatchNorm1d, a LayerNorm, a detached branch, a parameter used by its layer and directly,
one Parameter registered in two layers, a buffer, a dropout), a head, and a decoder that
reuses the input layer's matrix transposed (its reconstruction a second loss term).
Then a training run drawn as a user writes one: every optimiser with its options, two
parameter groups, a schedule stepped per epoch, gradient clipping, two backward() calls
per step, zero_grad with set_to_none either way (on the optimiser or the model), a
layer frozen before the optimiser was made or during the run, a group added mid-run, an
optimiser and schedule rebuilt from their state_dicts mid-run (the rebuilt one made
with another rate, which the loaded state replaces), a layer unfrozen, one Parameter
frozen by its attribute, a Parameter left out of one step's forward, train/eval
switches. After every step: the loss, every gradient (None where torch's is None), every
weight, buffer, rate and the optimiser's state against torch's, in float64 to 1e-8 and
in float32 to a bound measured per draw (``Checker``). Then ``wxb.fit`` (a stack of stock
layers, planned, or with tied or normalisation layers, on the graph; and the Module
above) in one call or two going on, against torch's loop on the same shuffled batches.
The seed of each run is printed in the assertion (replay with ``WXB_TEST_SEED``).

Where torch itself differs from wxb's documented behaviour the torch side is told: its
Adagrad's Σ starts at each group's own initial_accumulator_value (wxb's, documented in
optim.Adagrad), its NAdam μ product in float64 (``torch_default_dtype``). Left out: a
group added under a schedule (torch's schedules then fail on their own), Dropout p > 0 in
training (the masks differ; eval mode is checked with p > 0), AMSGrad (refused).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import wxb
from wxb import nn

BLOCKS = (
    "residual",
    "twice",
    "nested",
    "gate",
    "batchnorm",
    "layernorm",
    "detach",
    "direct",
    "shared",
    "buffer",
    "dropout",
)
OPTIMIZERS = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam")
SCHEDULES = (
    "StepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "MultiStepLR",
    "LinearLR",
    "ConstantLR",
    "PolynomialLR",
    "CosineAnnealingWarmRestarts",
    "LambdaLR",
    "MultiplicativeLR",
    "ReduceLROnPlateau",
    "OneCycleLR",
    None,
)
PER_STEP = ("OneCycleLR",)  # stepped after every optimiser step, not per epoch
# PyTorch's name of each optimiser's state (wxb's state[p] answers to it too)
STATE = {
    "SGD": ("momentum_buffer",),
    "Adam": ("exp_avg", "exp_avg_sq"),
    "AdamW": ("exp_avg", "exp_avg_sq"),
    "RMSprop": ("square_avg", "momentum_buffer", "grad_avg"),
    "Adagrad": ("sum",),
    "Adadelta": ("square_avg", "acc_delta"),
    "Adamax": ("exp_avg", "exp_inf"),
    "NAdam": ("exp_avg", "exp_avg_sq"),
    "RAdam": ("exp_avg", "exp_avg_sq"),
}


class Lib:
    """What the model's code needs from a library: the same code builds both models."""

    def __init__(self, t, dtype: str) -> None:
        self.t, self.dtype = t, dtype
        self.nn = torch.nn if t else nn
        self.F = torch.nn.functional if t else nn.functional
        self.tdtype = getattr(torch, dtype)

    def linear(self, i, o, bias=True):
        if self.t:
            return torch.nn.Linear(i, o, bias=bias, dtype=self.tdtype)
        return nn.Linear(i, o, bias=bias, dtype=self.dtype)

    def param(self, a):
        if self.t:
            return torch.nn.Parameter(torch.tensor(a, dtype=self.tdtype))
        return nn.Parameter(a.astype(self.dtype))

    def array(self, a):
        return torch.tensor(a, dtype=self.tdtype) if self.t else a.astype(self.dtype)

    def batch_norm(self, n, momentum):
        if self.t:
            return torch.nn.BatchNorm1d(n, momentum=momentum, dtype=self.tdtype)
        return nn.BatchNorm1d(n, momentum=momentum).to(self.dtype)

    def layer_norm(self, n):
        if self.t:
            return torch.nn.LayerNorm(n, dtype=self.tdtype)
        return nn.LayerNorm(n).to(self.dtype)

    def dropout(self, p):
        return self.nn.Dropout(p)


def build(lib: Lib, spec: dict):
    """The model of ``spec`` in ``lib``: n inputs, h hidden, c outputs."""
    n, h, c = spec["n"], spec["h"], spec["c"]
    F = lib.F

    class Block(lib.nn.Module):
        def __init__(self, kind: str, draws: dict) -> None:
            super().__init__()
            self.kind = kind
            if kind in ("residual", "twice", "detach", "direct"):
                self.lin = lib.linear(h, h)
            elif kind == "nested":
                inner = lib.nn.Sequential(lib.layer_norm(h), lib.linear(h, h, bias=False))
                self.body = lib.nn.Sequential(lib.linear(h, h), lib.nn.Tanh(), inner)
            elif kind == "gate":
                self.parts = lib.nn.ModuleDict(
                    {"value": lib.linear(h, h), "gate": lib.linear(h, h)}
                )
            elif kind == "batchnorm":
                self.norm = lib.batch_norm(h, draws["momentum"])
            elif kind == "layernorm":
                self.norm = lib.layer_norm(h)
                self.gain = lib.param(draws["gain"])
            elif kind == "shared":
                self.a, self.b = lib.linear(h, h), lib.linear(h, h)
                self.b.weight = self.a.weight  # one Parameter in two layers
            elif kind == "buffer":
                self.register_buffer("scale", lib.array(draws["scale"]))
                self.lin = lib.linear(h, h)
            elif kind == "dropout":
                self.drop = lib.dropout(0.0)  # trained at p = 0 (the masks would differ)
                self.lin = lib.linear(h, h)

        def forward(self, x):
            k = self.kind
            if k == "residual":
                return x + F.tanh(self.lin(x))
            if k == "twice":
                return self.lin(torch.tanh(self.lin(x)) if lib.t else self.lin(x).tanh())
            if k == "nested":
                return self.body(x) + x
            if k == "gate":
                return self.parts["value"](x) * F.sigmoid(self.parts["gate"](x))
            if k == "batchnorm":  # (with a skip: a bias just before a BatchNorm has a
                # gradient of 0 but rounding, which Adam's g/(|g| + eps) magnifies)
                return self.norm(x) + 0.5 * x
            if k == "layernorm":
                return F.layer_norm(x, (h,)) * self.gain + self.norm(x)
            if k == "detach":
                return x + self.lin(x.detach()).tanh() * x
            if k == "direct":  # the layer's weight used by it and by hand
                return F.tanh(self.lin(x)) + 0.5 * (x @ self.lin.weight.T)
            if k == "shared":
                return self.b(F.tanh(self.a(x)))
            if k == "buffer":
                return F.tanh(self.lin(x * self.scale))
            return F.tanh(self.lin(self.drop(x)))

    class Model(lib.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = lib.linear(n, h)
            self.blocks = lib.nn.ModuleList(
                [Block(k, d) for k, d in zip(spec["blocks"], spec["draws"], strict=True)]
            )
            self.head = lib.nn.Sequential(lib.nn.Tanh(), lib.linear(h, c))
            self.dec_bias = lib.param(spec["dec_bias"])
            self.out_gain = lib.param(np.ones(c))
            self.use_gain = True  # off for a step: out_gain then has no gradient

        def forward(self, x):
            z = self.inp(x)
            for block in self.blocks:
                z = block(z)
            # a decoder tied to the input layer: Wᵀ maps back to the inputs
            self.recon = F.tanh(z) @ self.inp.weight + self.dec_bias
            out = self.head(z)
            return out * self.out_gain if self.use_gain else out

    return Model()


def random_spec(rng) -> dict:
    count = int(rng.integers(1, 4))
    kinds = [str(k) for k in rng.choice(BLOCKS, size=count)]
    h = int(rng.integers(2, 6))
    draws = []
    for _ in kinds:
        draws.append(
            {
                "momentum": float(rng.choice([0.1, rng.uniform(0.05, 0.9)])),
                "gain": rng.uniform(0.5, 1.5, size=h),
                "scale": rng.uniform(0.5, 1.5, size=h),
                "p": float(rng.uniform(0.2, 0.6)),
            }
        )
    return {
        "n": int(rng.integers(2, 6)),
        "h": h,
        "c": int(rng.integers(2, 5)),
        "blocks": kinds,
        "draws": draws,
        "dec_bias": rng.normal(size=0),
    }


def models(rng, spec, dtype):
    """The wxb model in ``dtype`` and its torch twins holding the same values: in float64
    (the reference) and, for a float32 run, in float32 (what torch's own rounding does)."""
    spec = dict(spec, dec_bias=rng.normal(scale=0.3, size=spec["n"]))
    made = [build(Lib(False, dtype), spec), build(Lib(True, "float64"), spec)]
    if dtype == "float32":
        made.append(build(Lib(True, "float32"), spec))
    # (a Sequential's keys are its layers' names in wxb, positions in torch: by order)
    with torch.no_grad():
        for p, *others in zip(*(m.parameters() for m in made), strict=True):
            values = rng.normal(scale=0.6, size=p.shape).astype(dtype)
            p.data[...] = values
            for q in others:
                q.copy_(torch.from_numpy(values))
    return made


def optimizer_settings(rng, kind: str) -> dict:
    u = rng.uniform
    wd = float(u(0, 0.1)) if rng.random() < 0.5 else 0.0
    if kind == "SGD":
        momentum = float(u(0.1, 0.95)) if rng.random() < 0.7 else 0.0
        nesterov = bool(momentum and rng.random() < 0.5)
        dampening = 0.0 if nesterov or rng.random() < 0.5 else float(u(0, 0.5))
        return {
            "lr": float(u(0.01, 0.2)),
            "momentum": momentum,
            "nesterov": nesterov,
            "dampening": dampening,
            "weight_decay": wd,
        }
    if kind in ("Adam", "AdamW", "Adamax", "NAdam", "RAdam"):
        s = {
            "lr": float(u(0.005, 0.05)),
            "betas": (float(u(0.5, 0.95)), float(u(0.9, 0.999))),
            "eps": float(10 ** u(-8, -4)),
            "weight_decay": wd,
        }
        if kind == "NAdam":
            s["momentum_decay"] = float(u(1e-3, 1e-2))
        if kind in ("NAdam", "RAdam") and rng.random() < 0.5:
            s["decoupled_weight_decay"] = True
        return s
    if kind == "RMSprop":
        return {
            "lr": float(u(0.001, 0.02)),
            "alpha": float(u(0.8, 0.99)),
            "eps": float(10 ** u(-8, -4)),
            "weight_decay": wd,
            "momentum": float(u(0.1, 0.9)) if rng.random() < 0.5 else 0.0,
            "centered": bool(rng.random() < 0.5),
        }
    if kind == "Adagrad":
        return {
            "lr": float(u(0.01, 0.1)),
            "lr_decay": float(u(0, 0.1)),
            "weight_decay": wd,
            "initial_accumulator_value": float(u(0, 0.5)) if rng.random() < 0.5 else 0.0,
            "eps": float(10 ** u(-10, -6)),
        }
    return {
        "lr": float(u(0.5, 1.0)),
        "rho": float(u(0.8, 0.95)),
        "eps": float(10 ** u(-6, -4)),
        "weight_decay": wd,
    }


def group_settings(rng, kind: str) -> dict:
    """The second group's own values of the optimiser's other settings (some drawn)."""
    u, coin = rng.uniform, lambda: bool(rng.random() < 0.5)
    if kind == "SGD":
        momentum = float(u(0.1, 0.9)) if coin() else 0.0
        nesterov = bool(momentum and coin())
        return {
            "momentum": momentum,
            "nesterov": nesterov,
            "dampening": 0.0 if nesterov else float(u(0, 0.5)),
        }
    if kind in ("Adam", "AdamW", "Adamax", "NAdam", "RAdam"):
        return {"betas": (float(u(0.5, 0.95)), float(u(0.9, 0.999))), "eps": float(10 ** u(-8, -5))}
    if kind == "RMSprop":
        return {
            "alpha": float(u(0.8, 0.99)),
            "centered": coin(),
            "momentum": float(u(0.1, 0.9)) if coin() else 0.0,
        }
    if kind == "Adagrad":
        return {
            "lr_decay": float(u(0, 0.1)),
            "eps": float(10 ** u(-10, -6)),
            "initial_accumulator_value": float(u(0, 0.5)),
        }
    return {"rho": float(u(0.8, 0.95))}


def schedule_settings(rng, kind: str) -> dict:
    if kind == "StepLR":
        return {"step_size": int(rng.integers(1, 3)), "gamma": float(rng.uniform(0.3, 0.9))}
    if kind == "ExponentialLR":
        return {"gamma": float(rng.uniform(0.5, 0.95))}
    if kind == "CosineAnnealingLR":
        return {"T_max": int(rng.integers(2, 5)), "eta_min": float(rng.uniform(0, 1e-3))}
    if kind == "MultiStepLR":
        return {"milestones": [1, 3], "gamma": float(rng.uniform(0.3, 0.9))}
    if kind == "LinearLR":
        return {"start_factor": float(rng.uniform(0.2, 0.9)), "total_iters": 2}
    if kind == "ConstantLR":
        return {"factor": float(rng.uniform(0.2, 0.9)), "total_iters": 2}
    if kind == "CosineAnnealingWarmRestarts":
        return {
            "T_0": int(rng.integers(1, 3)),
            "T_mult": int(rng.integers(1, 3)),
            "eta_min": float(rng.uniform(0, 1e-3)),
        }
    if kind == "LambdaLR":
        return {"lr_lambda": lambda epoch: 1 / (1 + 0.5 * epoch)}
    if kind == "MultiplicativeLR":
        return {"lr_lambda": lambda epoch: 0.8}
    if kind == "ReduceLROnPlateau":
        return {
            "factor": float(rng.uniform(0.2, 0.8)),
            "patience": int(rng.integers(0, 2)),
            "threshold": float(rng.uniform(0, 0.1)),
            "cooldown": int(rng.integers(0, 2)),
            "mode": str(rng.choice(["min", "max"])),  # (fit takes "min" alone)
        }
    if kind == "OneCycleLR":
        return {
            "max_lr": None,
            "total_steps": 20,
            "pct_start": float(rng.uniform(0.2, 0.5)),
            "anneal_strategy": str(rng.choice(["cos", "linear"])),
            "cycle_momentum": False,
        }
    return {"total_iters": 4, "power": float(rng.uniform(0.5, 2.0))}


def plan(rng, spec) -> dict:
    """A training run as a user writes one."""
    kind = str(rng.choice(OPTIMIZERS))
    schedule = rng.choice(np.array(SCHEDULES, dtype=object))
    steps = int(rng.integers(4, 9))
    events = ["freeze", "unfreeze", "freeze_one", "reload", "eval_step", "skip_gain", "none"]
    if schedule is None:  # (torch's schedules index base_lrs by group: one added breaks them)
        events.append("add_group")
    later = [str(e) for e in rng.choice(events, size=2)]
    return {
        "kind": kind,
        "settings": optimizer_settings(rng, kind),
        "group2": {
            "lr_factor": float(rng.uniform(0.3, 2.0)),
            "weight_decay": float(rng.uniform(0, 0.05)),
            "own": group_settings(rng, kind) if rng.random() < 0.6 else {},
        },
        "schedule": schedule,
        "schedule_settings": schedule_settings(rng, schedule) if schedule else None,
        "steps_per_epoch": int(rng.integers(1, 3)),
        "steps": steps,
        "accumulate": bool(rng.random() < 0.4),
        "clip": str(rng.choice(["none", "norm", "value"])),
        "clip_at": float(rng.uniform(0.2, 2.0)),
        "norm_type": float(rng.choice([2.0, 1.0, np.inf, 3.0])),
        "rebuilt_lr": float(rng.uniform(0.5, 3.0)),  # the rebuilt optimiser's own (loaded over)
        "set_to_none": bool(rng.random() < 0.5),
        "zero_on_model": bool(rng.random() < 0.3),
        "frozen_first": bool(rng.random() < 0.3),
        "schedule_first": bool(rng.random() < 0.5),
        "events": {int(rng.integers(1, steps)): e for e in later},
        "loss": str(rng.choice(["cross_entropy", "mse"])),
        "recon_weight": float(rng.uniform(0, 0.5)),
    }


def split_groups(model):
    """Group 1: the input layer and blocks; group 2: the head (and decoder bias)."""
    first, second = [], []
    for name, p in model.named_parameters():
        (second if name.startswith(("head", "dec_bias")) else first).append(p)
    return first, second


def make_optimizer(lib_t: bool, p: dict, groups: list[list]):
    settings = dict(p["settings"])
    module = torch.optim if lib_t else wxb.optim
    cls = getattr(module, p["kind"])
    dicts = [{"params": groups[0]}]
    if len(groups) > 1 and groups[1]:
        dicts.append(
            {
                "params": groups[1],
                "lr": settings["lr"] * p["group2"]["lr_factor"],
                "weight_decay": p["group2"]["weight_decay"],
                **p["group2"]["own"],
            }
        )
    opt = cls(dicts, **settings)
    if lib_t:
        start_sums(opt)
    return opt


def start_sums(opt) -> None:
    """wxb's documented Adagrad (optim.Adagrad): Σ starts at the parameter's own group's
    initial_accumulator_value, where torch's takes the constructor's for every group (and
    makes none for a group added later: its step's KeyError)."""
    if not isinstance(opt, torch.optim.Adagrad):
        return
    for group in opt.param_groups:
        for q in group["params"]:
            if float(opt.state[q].get("step", 0)) == 0:
                opt.state[q]["step"] = torch.tensor(0.0)
                opt.state[q]["sum"] = torch.full_like(q, group["initial_accumulator_value"])


def make_schedule(lib_t: bool, p: dict, opt):
    if p["schedule"] is None:
        return None
    module = torch.optim.lr_scheduler if lib_t else wxb.optim
    settings = dict(p["schedule_settings"])
    if p["schedule"] == "OneCycleLR":
        settings["max_lr"] = 2 * p["settings"]["lr"]
    return getattr(module, p["schedule"])(opt, **settings)


def as_np(t) -> np.ndarray:
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


class Checker:
    """Compares one quantity of wxb's run with the float64 torch run's.

    float64: to rtol 1e-8 (both round at ~1e-16 and sum in other orders; eight steps
    through a LayerNorm over two to five features, which divides by their spread, grew
    that to 1e-9 in one draw of thousands). float32: wxb's error against the float64 run
    must be at most 8 times torch float32's own (measured on the same draw: after the
    first update the float32 runs no longer share weights, and how far rounding carries
    depends on the model's curvature: a LayerNorm over two features, Adam on a gradient
    near 0), plus 64 float32 roundings of the quantity's size (or of 1, the size of the
    terms it is made of).
    """

    def __init__(self, seeded, dtype, context: str) -> None:
        self.seeded, self.dtype, self.context = seeded, dtype, context

    def __call__(self, what, ours, reference, shadow=None):
        a, b = np.asarray(as_np(ours), np.float64), np.asarray(as_np(reference), np.float64)
        msg = self.seeded.msg(f"{self.context}: {what}")
        assert a.shape == b.shape, msg
        if self.dtype == "float64":
            # (``shadow``: a torch run with gradients shifted far above rounding, whose
            # spread from ``reference`` is added where a quantity amplifies rounding)
            spread = 0.0 if shadow is None else np.abs(as_np(shadow) - b)
            np.testing.assert_array_less(
                np.abs(a - b), 1e-8 * np.abs(b) + 1e-10 + spread + 1e-300, err_msg=msg
            )
            return
        own = np.abs(np.asarray(as_np(shadow), np.float64) - b).max(initial=0.0)
        # (the terms summed are O(1): weights, inputs, their products; a gradient entry
        # near 0 is a difference of such terms)
        bound = 8 * own + 64 * np.finfo(np.float32).eps * max(np.abs(b).max(initial=0.0), 1.0)
        assert np.abs(a - b).max(initial=0.0) <= bound, (
            f"{msg}: wxb float32 is {np.abs(a - b).max():.3g} from torch float64, torch "
            f"float32 {own:.3g} (bound {bound:.3g})\nwxb {a}\nreference {b}"
        )


def run(seeded, dtype: str, spec: dict, p: dict) -> None:
    """The plan ``p`` on the wxb model and its torch twins, compared after every step."""
    rng = seeded.rng
    made = models(rng, spec, dtype)
    libs = [False] + [True] * (len(made) - 1)  # torch's side: the float64 run, then float32
    dtypes = [dtype, "float64", "float32"][: len(made)]
    context = f"{dtype} {spec['blocks']} {p}"
    check = Checker(seeded, dtype, context)
    n, c = spec["n"], spec["c"]
    names = [name for name, _ in made[0].named_parameters()]
    params = [list(m.parameters()) for m in made]

    def compare(what, values):
        check(what, values[0], values[1], values[2] if len(values) > 2 else None)

    if p["frozen_first"]:  # frozen before the optimiser is made (and still handed to it)
        for m in made:
            m.inp.requires_grad_(False)
    groups = [split_groups(m) for m in made]
    added = "add_group" in p["events"].values()
    opts = [make_optimizer(t, p, g[:1] if added else g) for t, g in zip(libs, groups, strict=True)]
    scheds = [make_schedule(t, p, o) for t, o in zip(libs, opts, strict=True)]
    for m in made:
        m.train()
    for step in range(p["steps"]):
        event = p["events"].get(step)
        if event == "freeze":  # a layer frozen during the run
            for m in made:
                m.head.requires_grad_(False)
        elif event == "unfreeze":  # the input layer (perhaps frozen at the start) trains again
            for m in made:
                m.inp.requires_grad_(True)
        elif event == "freeze_one":  # one Parameter, by its attribute
            for m in made:
                m.dec_bias.requires_grad = False
        elif event == "add_group" and len(opts[0].param_groups) == 1:
            for o, g in zip(opts, groups, strict=True):
                o.add_param_group({"params": g[1], "lr": p["settings"]["lr"] / 2})
                start_sums(o)
        elif event == "reload":  # rebuilt from their state_dicts, as a resumed run
            for k, t in enumerate(libs):
                saved = opts[k].state_dict(), scheds[k].state_dict() if scheds[k] else None
                other = dict(
                    p, settings=dict(p["settings"], lr=p["settings"]["lr"] * p["rebuilt_lr"])
                )
                opts[k] = make_optimizer(t, other, [g["params"] for g in opts[k].param_groups])
                # torch's order (a schedule made on the new optimiser sets its rate: loaded
                # after, the saved rates win); wxb takes it and the optimiser's state first
                if t or p["schedule_first"]:
                    scheds[k] = make_schedule(t, p, opts[k])
                    opts[k].load_state_dict(saved[0])
                else:
                    opts[k].load_state_dict(saved[0])
                    scheds[k] = make_schedule(t, p, opts[k])
                if scheds[k]:
                    scheds[k].load_state_dict(saved[1])
        elif event == "eval_step":  # an eval-mode pass between steps, then train again
            X = rng.normal(size=(3, n)).astype(dtype)
            outs = []
            for m, t in zip(made, libs, strict=True):
                m.eval()
                with torch.no_grad() if t else wxb.no_grad():
                    outs.append(m(torch.from_numpy(X).to(m.inp.weight.dtype) if t else X))
                m.train()
            compare(
                f"step {step}: eval-mode output",
                [o.data if not t else o for o, t in zip(outs, libs, strict=True)],
            )
        for m, o in zip(made, opts, strict=True):
            (m if p["zero_on_model"] else o).zero_grad(set_to_none=p["set_to_none"])
            m.use_gain = event != "skip_gain"
        for part in range(2 if p["accumulate"] else 1):
            B = int(rng.integers(2, 7))
            X = rng.normal(size=(B, n)).astype(dtype)
            if p["loss"] == "cross_entropy":
                y = rng.integers(0, c, size=B)
            else:
                y = rng.normal(size=(B, c)).astype(dtype)
            losses = []
            for m, t, dt in zip(made, libs, dtypes, strict=True):
                F = torch.nn.functional if t else nn.functional
                x = torch.from_numpy(X.astype(dt)) if t else X
                target = torch.from_numpy(y if p["loss"] == "cross_entropy" else y.astype(dt))
                target = target if t else y
                out = m(x)
                if p["loss"] == "cross_entropy":
                    main = F.cross_entropy(out, target)
                else:
                    main = ((out - target) ** 2).mean()
                value = main + p["recon_weight"] * ((m.recon - x) ** 2).mean()
                value.backward()
                losses.append(value.item())
            compare(f"step {step}.{part}: loss", losses)
        if p["clip"] == "norm":
            totals = [
                (torch.nn.utils if t else nn.utils).clip_grad_norm_(
                    m.parameters(), p["clip_at"], norm_type=p["norm_type"]
                )
                for m, t in zip(made, libs, strict=True)
            ]
            compare(f"step {step}: clip_grad_norm_'s total", totals)
        elif p["clip"] == "value":
            for m, t in zip(made, libs, strict=True):
                (torch.nn.utils if t else nn.utils).clip_grad_value_(
                    m.parameters(), p["clip_at"] / 4
                )
        for name, ps in zip(names, zip(*params, strict=True), strict=True):
            grads = [q.grad for q in ps]
            if grads[1] is None:
                assert grads[0] is None, seeded.msg(
                    f"{context}: step {step}: {name}.grad is not None where torch's is"
                )
            else:
                assert grads[0] is not None, seeded.msg(f"{context}: step {step}: {name}.grad None")
                compare(f"step {step}: {name}.grad", grads)
        for o in opts:
            o.step()
        for name, ps in zip(names, zip(*params, strict=True), strict=True):
            compare(f"step {step}: {name} after the step", [q.data for q in ps])
        buffers = [[b for _, b in m.named_buffers()] for m in made]
        for name, bs in zip(
            [bn for bn, _ in made[0].named_buffers()], zip(*buffers, strict=True), strict=True
        ):
            compare(f"step {step}: buffer {name}", bs)
        for name, ps in zip(names, zip(*params, strict=True), strict=True):
            entries = [o.state.get(q, {}) for o, q in zip(opts, ps, strict=True)]
            if float(entries[1].get("step", 1)) == 0:
                continue  # (torch's Adagrad makes every entry at construction)
            for key in STATE[p["kind"]]:
                if key in entries[1]:
                    assert key in entries[0], seeded.msg(f"{context}: step {step}: {name} {key}")
                    compare(f"step {step}: {name} state {key}", [e[key] for e in entries])
            if "step" in entries[1]:
                assert float(entries[0]["step"]) == float(entries[1]["step"]), seeded.msg(
                    f"{context}: step {step}: {name} step count"
                )
        per_step = p["schedule"] in PER_STEP
        if scheds[0] and (per_step or (step + 1) % p["steps_per_epoch"] == 0):  # an epoch's end
            for sched, value in zip(scheds, losses, strict=True):
                if p["schedule"] == "ReduceLROnPlateau":
                    sched.step(value)
                else:
                    sched.step()
        for gs in zip(*(o.param_groups for o in opts), strict=True):
            compare(f"step {step}: group lr", [g["lr"] for g in gs])
    for ms in zip(*(m.modules() for m in made), strict=True):
        if isinstance(ms[0], nn.Dropout):  # eval mode leaves any p out
            value = float(rng.uniform(0.2, 0.8))
            for m in ms:
                m.p = value
    X = rng.normal(size=(4, n)).astype(dtype)
    outs = [made[0].eval().predict(X)]
    for m in made[1:]:
        with torch.no_grad():
            outs.append(m.eval()(torch.from_numpy(X).to(m.inp.weight.dtype)))
    compare("eval-mode output at the end", outs)


@pytest.mark.parametrize("draw", range(6))
def test_generated_models_train_as_torchs_by_hand_float64(seeded, draw, torch_default_dtype):
    spec = random_spec(seeded.rng)
    run(seeded, "float64", spec, plan(seeded.rng, spec))


@pytest.mark.parametrize("draw", range(2))
def test_generated_models_train_as_torchs_by_hand_float32(seeded, draw, torch_default_dtype):
    spec = random_spec(seeded.rng)
    run(seeded, "float32", spec, plan(seeded.rng, spec))


# -- wxb.fit: a stack of stock layers (planned) and a Module of one's own (recorded graph) --


def stack(lib: Lib, spec: dict):
    """A Sequential of stock layers: Linear, activations, BatchNorm1d, LayerNorm, Dropout."""
    n, h, c = spec["n"], spec["h"], spec["c"]
    layers = [lib.linear(n, h), lib.nn.Tanh()]
    for kind in spec["stack"]:
        if kind == "batchnorm":
            layers.append(lib.batch_norm(h, spec["draws"][0]["momentum"]))
        elif kind == "layernorm":
            layers.append(lib.layer_norm(h))
        elif kind == "dropout":
            layers.append(lib.dropout(0.0))
        else:
            layers += [lib.linear(h, h), getattr(lib.nn, kind)()]
    layers.append(lib.linear(h, c))
    square = [layer for layer in layers[1:] if isinstance(layer, lib.nn.Linear)][:-1]
    spec["tied"] = spec["tie"] and len(square) > 1
    if spec["tied"]:  # one (h, h) matrix in two layers of the stack
        square[1].weight = square[0].weight
    return lib.nn.Sequential(*layers)


@pytest.mark.parametrize("kind", ["stack", "module"])
def test_generated_models_trained_by_fit_as_a_torch_loop(seeded, kind, torch_default_dtype):
    """fit with a drawn optimiser in two groups, a schedule stepped per epoch, clipping,
    shuffled batches with a last partial one; torch's loop on the same batches."""
    rng = seeded.rng
    spec = random_spec(rng)
    spec["stack"] = [
        str(k)
        for k in rng.choice(
            ["batchnorm", "layernorm", "dropout", "ReLU", "Tanh", "SiLU"],
            size=int(rng.integers(1, 4)),
        )
    ]
    spec["tie"] = bool(rng.random() < 0.5)
    p = plan(rng, spec)
    if p["schedule"] == "ReduceLROnPlateau":  # (fit refuses mode="max" on a loss, in one line)
        p["schedule_settings"]["mode"] = "min"
    n, c = spec["n"], spec["c"]
    if kind == "stack":
        ours, theirs = stack(Lib(False, "float64"), spec), stack(Lib(True, "float64"), spec)
        with torch.no_grad():
            for pw, pt in zip(ours.parameters(), theirs.parameters(), strict=True):
                values = rng.normal(scale=0.6, size=pw.shape)
                pw.data[...] = values
                pt.copy_(torch.from_numpy(values))
    else:
        ours, theirs = models(rng, spec, "float64")
    if p["frozen_first"]:
        ours[0].requires_grad_(False) if kind == "stack" else ours.inp.requires_grad_(False)
        theirs[0].requires_grad_(False) if kind == "stack" else theirs.inp.requires_grad_(False)
    # (an optimiser holding the frozen layer too runs the graph: fit's planned step wants
    # exactly the trainable parameters)
    params_w = [q for q in ours.parameters() if q.requires_grad]
    params_t = [q for q in theirs.parameters() if q.requires_grad]
    half = len(params_w) // 2
    opt_w = make_optimizer(False, p, [params_w[:half], params_w[half:]])
    opt_t = make_optimizer(True, p, [params_t[:half], params_t[half:]])
    sched_w, sched_t = make_schedule(False, p, opt_w), make_schedule(True, p, opt_t)
    epochs, batch = int(rng.integers(2, 4)), int(rng.integers(3, 7))
    # a last batch of fewer rows (2 or more: BatchNorm1d refuses one row in training)
    rows = int(rng.integers(2, 4)) * batch + int(rng.integers(2, batch + 1))
    X = rng.normal(size=(rows, n))
    y = (
        rng.integers(0, c, size=rows)
        if p["loss"] == "cross_entropy"
        else rng.normal(size=(rows, c))
    )
    clip = p["clip_at"] if p["clip"] != "none" else None
    seed = int(rng.integers(2**31)) if rng.random() < 0.7 else None
    weight = 0.0 if kind == "stack" else p["recon_weight"]

    def loss_of(F, model, out, target, x):
        if p["loss"] == "cross_entropy":
            main = F.cross_entropy(out, target)
        elif kind == "stack":  # fit's "mse", wxb's MSELoss: (1/B) Σ ½‖ŷ − y‖²
            main = ((out - target) ** 2).sum(1).mean() / 2
        else:
            main = ((out - target) ** 2).mean()
        return main + weight * ((model.recon - x) ** 2).mean() if weight else main

    held = {}

    def our_loss(out, target):
        return loss_of(nn.functional, ours, out, target, held.get("x"))

    if weight:  # the reconstruction term needs the batch's rows: kept as forward sees them
        inner_forward = ours.forward

        def forward(x):
            held["x"] = x
            return inner_forward(x)

        ours.forward = forward
    # by name on a stack (a function of one's own runs the graph); else a function
    # in one call, or two going on with the same optimiser and schedule (each call's seed
    # shuffles its own epochs)
    parts = [epochs] if rng.random() < 0.5 else [1, epochs - 1]
    seeds = [None if seed is None else seed + k for k in range(len(parts))]
    histories = [
        wxb.fit(
            ours,
            X,
            y,
            loss=p["loss"] if kind == "stack" else our_loss,
            optimizer=opt_w,
            epochs=part,
            batch_size=batch,
            shuffle=s is not None,
            seed=s,
            lr_schedule=sched_w,
            clip_grad_norm=clip,
            verbose=False,
        )
        for part, s in zip(parts, seeds, strict=True)
    ]
    history = histories[0]
    # a second torch run whose every gradient is shifted by noise far above rounding's
    # (1e-12 of the step's largest entry): where a parameter's true gradient is 0 (a
    # LayerNorm's bias before a training-mode BatchNorm, which subtracts it again), Adam's
    # family turns the rounding left in it into steps of lr·noise/ε, and the two runs'
    # spread bounds how far two correct implementations can part
    shadow = copy.deepcopy(theirs)  # (frozen layers and tied weights as in ``theirs``)
    trainable = [q for q in shadow.parameters() if q.requires_grad]
    opt_s = make_optimizer(True, p, [trainable[:half], trainable[half:]])
    sched_s = make_schedule(True, p, opt_s)
    epoch_seeds = [s for part, s in zip(parts, seeds, strict=True) for _ in range(part)]

    def torch_loop(model, opt, sched, noise=None):
        model.train()
        losses = []
        shuffles = None
        for epoch in range(epochs):
            if epoch == 0 or (len(parts) == 2 and epoch == parts[0]):  # a call: rows in order
                shuffles = None if seed is None else np.random.default_rng(epoch_seeds[epoch])
                order = np.arange(rows)
            if shuffles is not None:
                shuffles.shuffle(order)
            total = 0.0
            for start in range(0, rows, batch):
                idx = order[start : start + batch]
                xb = torch.from_numpy(X[idx])
                yb = torch.from_numpy(y[idx])
                opt.zero_grad()
                value = loss_of(torch.nn.functional, model, model(xb), yb, xb)
                value.backward()
                if noise is not None:
                    grads = [q.grad for q in model.parameters() if q.grad is not None]
                    size = 1e-12 * max(float(g.abs().max()) for g in grads)
                    for g in grads:
                        g += torch.from_numpy(noise.normal(scale=size, size=tuple(g.shape)))
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                if sched and p["schedule"] in PER_STEP:
                    sched.step()
                total += value.item() * len(idx)
            losses.append(total / rows)
            if sched and p["schedule"] == "ReduceLROnPlateau":  # fit's: the epoch's loss
                sched.step(losses[-1])
            elif sched and p["schedule"] not in PER_STEP:
                sched.step()
        return losses

    losses = torch_loop(theirs, opt_t, sched_t)
    shadow_losses = torch_loop(shadow, opt_s, sched_s, np.random.default_rng(rng.integers(2**63)))
    context = f"fit of {kind} {spec['stack'] if kind == 'stack' else spec['blocks']} {p}"
    check = Checker(seeded, "float64", context)
    # (a normalisation layer runs on the recorded graph, the rest of a stack planned)
    norms = {"batchnorm", "layernorm"} & set(spec["stack"])
    planned = kind == "stack" and not norms and not spec["tied"]  # (shared: the graph)
    assert history.engine == ("planned" if planned else "graph"), seeded.msg(
        f"{context}: {history.engine} ({history.engine_reason})"
    )
    check("history's losses", [v for h in histories for v in h["loss"]], losses, shadow_losses)
    for (name, pw), pt, ps in zip(
        ours.named_parameters(), theirs.parameters(), shadow.parameters(), strict=True
    ):
        check(f"{name} after fit", pw.data, pt, ps)
    for (name, bw), bt, bs in zip(
        ours.named_buffers(), theirs.buffers(), shadow.buffers(), strict=True
    ):
        check(f"buffer {name} after fit", bw, bt, bs)
    for gw, gt in zip(opt_w.param_groups, opt_t.param_groups, strict=True):
        check("group lr after fit", gw["lr"], gt["lr"])
