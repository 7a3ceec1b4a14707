"""Training with mid-run changes, generated, against PyTorch step by step.

A random model (a Sequential or a Module of one's own), optimiser and loss, and a random
script of 10–30 steps whose steps hold the events users make between steps: freezing and
unfreezing, hyperparameters changed in a group, a group added for parameters left out,
a state loaded from another optimiser, ``zero_grad`` either way or not at all (gradients
accumulated), gradients edited by hand, weights replaced, two layers' weights tied,
clipping, train/eval, a schedule stepped, everything saved and loaded into fresh objects.
The same script runs in wxb and in torch, in float64 from the same weights and batches,
and after every step each parameter, each gradient (None or not), the optimiser's state
and the rates must agree. Every run draws a fresh seed (printed; ``WXB_TEST_SEED``
replays it)."""

import copy
import math
import warnings

import numpy as np
import pytest

import wxb
import wxb.nn as wnn
from wxb import optim

torch = pytest.importorskip("torch")
TS = torch.optim.lr_scheduler

# float64 on both sides: the differences are rounding, amplified at most by Adam-like
# divisions by √v + ε over 30 steps; far below what any wrong rule gives (1e-3 and up).
RTOL, ATOL = 1e-7, 1e-10

KINDS = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "NAdam", "RAdam", "Adamax", "Adadelta")


# -- models ---------------------------------------------------------------------------------
def _act_pair(rng):
    name = str(rng.choice(["ReLU", "Tanh", "Sigmoid", "GELU", "SiLU", "ELU"]))
    return getattr(wnn, name)(), getattr(torch.nn, name)()


def _norm_pair(kind, width):
    if kind == "layer":
        return wnn.LayerNorm(width), torch.nn.LayerNorm(width)
    if kind == "batch":
        return wnn.BatchNorm1d(width), torch.nn.BatchNorm1d(width)
    return wnn.Dropout(0.0), torch.nn.Dropout(0.0)


class OursNet(wnn.Module):
    """A forward of one's own: residual hidden layers, a head and a second head added."""

    def __init__(self, d_in, width, depth, d_out, act, norm):
        super().__init__()
        self.fc0 = wnn.Linear(d_in, width)
        self.hidden = wnn.ModuleList([wnn.Linear(width, width) for _ in range(depth)])
        self.norm = norm
        self.head = wnn.Linear(width, d_out)
        self.aux = wnn.Linear(width, d_out)
        self.act = act

    def forward(self, x):
        z = self.act(self.fc0(x))
        if self.norm is not None:
            z = self.norm(z)
        for layer in self.hidden:
            z = z + self.act(layer(z))
        return self.head(z) + 0.5 * self.aux(z)


class TheirNet(torch.nn.Module):
    def __init__(self, d_in, width, depth, d_out, act, norm):
        super().__init__()
        self.fc0 = torch.nn.Linear(d_in, width)
        self.hidden = torch.nn.ModuleList([torch.nn.Linear(width, width) for _ in range(depth)])
        self.norm = norm
        self.head = torch.nn.Linear(width, d_out)
        self.aux = torch.nn.Linear(width, d_out)
        self.act = act

    def forward(self, x):
        z = self.act(self.fc0(x))
        if self.norm is not None:
            z = self.norm(z)
        for layer in self.hidden:
            z = z + self.act(layer(z))
        return self.head(z) + 0.5 * self.aux(z)


def _architecture(rng):
    return {
        "own": bool(rng.random() < 0.5),
        "d_in": int(rng.integers(2, 6)),
        "width": int(rng.integers(2, 6)),
        "depth": int(rng.integers(0, 3)),
        "d_out": int(rng.integers(1, 4)),
        "act": int(rng.integers(1 << 30)),
        "norm": str(rng.choice(["none", "layer", "batch", "dropout"])),
    }


def _build(arch):
    """The wxb model and its torch twin (weights not yet equal)."""
    r = np.random.default_rng(arch["act"])
    if arch["own"]:
        act_o, act_t = _act_pair(r)
        norm_o, norm_t = (
            (None, None) if arch["norm"] == "none" else _norm_pair(arch["norm"], arch["width"])
        )
        ours = OursNet(arch["d_in"], arch["width"], arch["depth"], arch["d_out"], act_o, norm_o)
        theirs = TheirNet(arch["d_in"], arch["width"], arch["depth"], arch["d_out"], act_t, norm_t)
    else:
        lo, lt = (
            [wnn.Linear(arch["d_in"], arch["width"])],
            [torch.nn.Linear(arch["d_in"], arch["width"])],
        )
        for k in range(arch["depth"] + 1):
            a, b = _act_pair(r)
            lo.append(a)
            lt.append(b)
            if k == 0 and arch["norm"] != "none":
                a, b = _norm_pair(arch["norm"], arch["width"])
                lo.append(a)
                lt.append(b)
            if k < arch["depth"]:
                lo.append(wnn.Linear(arch["width"], arch["width"]))
                lt.append(torch.nn.Linear(arch["width"], arch["width"]))
        lo.append(wnn.Linear(arch["width"], arch["d_out"]))
        lt.append(torch.nn.Linear(arch["width"], arch["d_out"]))
        ours, theirs = wnn.Sequential(*lo), torch.nn.Sequential(*lt)
    return ours.double(), theirs.double()


def _twins(arch):
    ours, theirs = _build(arch)
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()})
    return ours, theirs


# -- optimisers -------------------------------------------------------------------------------
def _group_options(rng, kind, nesterov):
    """Random settings of one group; keys the group may change later stay valid."""
    o = {"lr": float(10 ** rng.uniform(-3, -1))}
    if kind == "Adadelta":
        o["lr"] = float(rng.uniform(0.1, 1.0))
    if rng.random() < 0.5:
        o["weight_decay"] = float(rng.uniform(0, 0.2))
    if kind == "SGD":
        if nesterov:
            o.update(momentum=float(rng.uniform(0.1, 0.95)), dampening=0.0, nesterov=True)
        elif rng.random() < 0.7:
            o["momentum"] = float(rng.uniform(0.1, 0.95))
            if rng.random() < 0.5:
                o["dampening"] = float(rng.uniform(0, 0.9))
    elif kind in ("Adam", "AdamW", "NAdam", "RAdam", "Adamax"):
        if rng.random() < 0.6:
            o["betas"] = (float(rng.uniform(0, 0.95)), float(rng.uniform(0.5, 0.999)))
        if rng.random() < 0.4:
            o["eps"] = float(rng.choice([1e-8, 1e-3, 0.1]))
        if kind == "NAdam" and rng.random() < 0.5:
            o["momentum_decay"] = float(rng.uniform(0, 0.05))
        if kind in ("NAdam", "RAdam") and rng.random() < 0.4:
            o["decoupled_weight_decay"] = True
    elif kind == "RMSprop":
        if rng.random() < 0.5:
            o["alpha"] = float(rng.uniform(0.5, 0.999))
        if rng.random() < 0.5:
            o["momentum"] = float(rng.uniform(0.1, 0.9))
        if rng.random() < 0.5:
            o["centered"] = True
        if rng.random() < 0.3:
            o["eps"] = float(rng.choice([1e-8, 1e-2]))
    elif kind == "Adagrad":
        if rng.random() < 0.5:
            o["lr_decay"] = float(rng.uniform(0, 0.3))
        if rng.random() < 0.3:
            o["eps"] = float(rng.choice([1e-10, 1e-3]))
    elif kind == "Adadelta":
        if rng.random() < 0.5:
            o["rho"] = float(rng.uniform(0.5, 0.99))
        if rng.random() < 0.3:
            o["eps"] = float(rng.choice([1e-6, 1e-3]))
    return o


def _changed(rng, kind, group):
    """A hyperparameter of ``group`` changed as a user would between steps: (key, value)."""
    keys = ["lr", "lr", "weight_decay"]
    if kind == "SGD":
        keys.append("momentum")
        if not group["nesterov"]:
            keys.append("dampening")
    elif kind in ("Adam", "AdamW", "NAdam", "RAdam", "Adamax"):
        keys += ["betas", "eps"]
        if kind == "NAdam":
            keys.append("momentum_decay")
    elif kind == "RMSprop":
        keys += ["alpha", "eps"]
        if group["momentum"]:  # (torch's state holds a buffer only when it began with one)
            keys.append("momentum")
    elif kind == "Adagrad":
        keys += ["lr_decay", "eps"]
    elif kind == "Adadelta":
        keys += ["rho", "eps"]
    key = str(rng.choice(keys))
    if key == "lr":
        value = (
            float(rng.uniform(0.1, 1.0)) if kind == "Adadelta" else float(10 ** rng.uniform(-3, -1))
        )
    elif key == "weight_decay":
        value = float(rng.choice([0.0, rng.uniform(0, 0.2)]))
    elif key == "momentum":
        low = 0.05 if kind == "RMSprop" or group.get("nesterov") else 0.0
        value = float(rng.choice([low, rng.uniform(max(low, 0.1), 0.95)]))
    elif key == "dampening":
        value = float(rng.uniform(0, 0.9))
    elif key == "betas":
        value = (float(rng.uniform(0, 0.95)), float(rng.uniform(0.5, 0.999)))
    elif key == "eps":
        value = float(rng.choice([1e-8, 1e-3, 0.1]))
    elif key in ("alpha", "rho"):
        value = float(rng.uniform(0.5, 0.999))
    elif key == "momentum_decay":
        value = float(rng.uniform(0, 0.05))
    else:  # lr_decay
        value = float(rng.uniform(0, 0.3))
    return key, value


# -- schedules --------------------------------------------------------------------------------
def _schedule_spec(rng, kind_opt, total, momentum_everywhere):
    names = ["none", "StepLR", "ExponentialLR", "MultiStepLR", "Plateau", "LambdaLR",
             "CosineAnnealingLR", "LinearLR", "OneCycleLR", "ConstantLR", "PolynomialLR",
             "CosineAnnealingWarmRestarts", "MultiplicativeLR", "SequentialLR",
             "ChainedScheduler"]  # fmt: skip
    name = str(rng.choice(names))
    if name == "ConstantLR":
        return name, {
            "factor": float(rng.uniform(0.1, 1.0)),
            "total_iters": int(rng.integers(1, 6)),
        }
    if name == "PolynomialLR":
        return name, {
            "total_iters": int(rng.integers(1, total + 2)),
            "power": float(rng.uniform(0.5, 3)),
        }
    if name == "CosineAnnealingWarmRestarts":
        return name, {"T_0": int(rng.integers(1, 6)), "T_mult": int(rng.integers(1, 3)),
                      "eta_min": float(rng.choice([0.0, 1e-4]))}  # fmt: skip
    if name == "MultiplicativeLR":
        return name, {"rate": float(rng.uniform(0.8, 1.0))}
    if name == "SequentialLR":
        return name, {
            "warm": int(rng.integers(1, 5)),
            "start": float(rng.uniform(0.1, 0.9)),
            "gamma": float(rng.uniform(0.7, 1.0)),
            "T_max": int(rng.integers(2, total + 2)),
            "then": str(rng.choice(["ExponentialLR", "CosineAnnealingLR", "StepLR"])),
        }
    if name == "ChainedScheduler":
        return name, {
            "factor": float(rng.uniform(0.1, 1.0)),
            "total_iters": int(rng.integers(1, 6)),
            "gamma": float(rng.uniform(0.7, 1.0)),
        }
    if name == "StepLR":
        return name, {"step_size": int(rng.integers(1, 5)), "gamma": float(rng.uniform(0.3, 1.0))}
    if name == "ExponentialLR":
        return name, {"gamma": float(rng.uniform(0.7, 1.0))}
    if name == "MultiStepLR":
        marks = sorted({int(m) for m in rng.integers(1, total + 1, size=3)})
        return name, {"milestones": marks, "gamma": float(rng.uniform(0.3, 1.0))}
    if name == "Plateau":
        return name, {
            "mode": str(rng.choice(["min", "max"])),
            "factor": float(rng.uniform(0.1, 0.9)),
            "patience": int(rng.integers(0, 3)),
            "threshold": float(rng.choice([0.0, 1e-4, 0.1])),
            "cooldown": int(rng.integers(0, 3)),
        }
    if name == "LambdaLR":
        return name, {"rate": float(rng.uniform(0.8, 1.0)), "warm": int(rng.integers(1, 5))}
    if name == "CosineAnnealingLR":
        return name, {"T_max": int(rng.integers(2, total + 2))}
    if name == "LinearLR":
        return name, {
            "start_factor": float(rng.uniform(0.1, 1.0)),
            "end_factor": float(rng.uniform(0.5, 1.0)),
            "total_iters": int(rng.integers(1, total)),
        }
    if name == "OneCycleLR":
        cycle = kind_opt in ("Adam", "AdamW", "NAdam", "RAdam", "Adamax") or (
            kind_opt in ("SGD", "RMSprop") and momentum_everywhere
        )
        return name, {
            "max_lr": float(10 ** rng.uniform(-2.5, -1)),
            "total_steps": total + 2,
            "pct_start": float(rng.uniform(0.1, 0.6)),
            "anneal_strategy": str(rng.choice(["cos", "linear"])),
            "cycle_momentum": bool(cycle and rng.random() < 0.7),
            "three_phase": bool(rng.random() < 0.3),
        }
    return "none", {}


def _lambda(rate, warm):
    return lambda epoch: min(1.0, (epoch + 1) / warm) * rate**epoch


def _make_schedule(module, opt, name, spec):
    if name == "none":
        return None
    if name == "Plateau":
        return module.ReduceLROnPlateau(opt, **spec)
    if name == "LambdaLR":
        return module.LambdaLR(opt, _lambda(spec["rate"], spec["warm"]))
    if name == "MultiplicativeLR":
        rate = spec["rate"]
        return module.MultiplicativeLR(opt, lambda epoch: rate)
    if name == "SequentialLR":
        warm = module.LinearLR(opt, start_factor=spec["start"], total_iters=spec["warm"])
        if spec["then"] == "ExponentialLR":
            then = module.ExponentialLR(opt, gamma=spec["gamma"])
        elif spec["then"] == "StepLR":
            then = module.StepLR(opt, step_size=2, gamma=spec["gamma"])
        else:
            then = module.CosineAnnealingLR(opt, T_max=spec["T_max"])
        return module.SequentialLR(opt, [warm, then], milestones=[spec["warm"]])
    if name == "ChainedScheduler":
        return module.ChainedScheduler(
            [module.ConstantLR(opt, factor=spec["factor"], total_iters=spec["total_iters"]),
             module.ExponentialLR(opt, gamma=spec["gamma"])]
        )  # fmt: skip
    return getattr(module, name)(opt, **spec)


# -- the comparison ------------------------------------------------------------------------
def _close(a, b, what, moved=0.0):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs torch's {b.shape}"
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL + moved, err_msg=what)


def _noise_moves(ctx):
    """How far Adagrad may move a weight by rounding alone, steps · lr · 1e-15·G/ε: a
    gradient that is rounding noise (a bias before a BatchNorm behind a ReLU all of whose
    rows pass, ∂L/∂b = Σ δ = 0 in exact arithmetic, ~1e-16·G here) is divided by
    √Σg² + ε, ε = 1e-10 by default, so each step moves it up to lr·1e-15·G/ε, with noise
    of wxb's order of summation or of torch's (CI saw a weight 2.7e-7 apart, rtol 1e-7;
    the same run twice is bit-identical). A wrong rule moves entries by O(lr). Those
    moves reach a BatchNorm's running mean too. Other optimisers: 0."""
    if ctx["kind"] != "Adagrad":
        return 0.0
    groups = ctx["opt_t"].param_groups
    eps = min(g["eps"] for g in groups)
    lr = max(max(g["lr"], g.get("initial_lr", 0.0)) for g in groups)
    steps = max((float(s["step"]) for s in ctx["opt_t"].state.values() if "step" in s), default=0)
    grads = [float(q.grad.abs().max()) for g in groups for q in g["params"] if q.grad is not None]
    return steps * lr * min(1.0, 1e-15 * max([1.0, *grads]) / eps)


def _compare(ctx, where):
    moved = _noise_moves(ctx)
    ours_p, their_p = (
        ctx["opt_o"].params,
        [q for g in ctx["opt_t"].param_groups for q in g["params"]],
    )
    assert len(ours_p) == len(their_p), f"{where}: {len(ours_p)} parameters vs {len(their_p)}"
    every_o = list(ctx["model_o"].parameters())
    every_t = list(ctx["model_t"].parameters())
    assert len(every_o) == len(every_t), (
        f"{where}: the models hold {len(every_o)} vs {len(every_t)}"
    )
    for i, (p, q) in enumerate(zip(every_o, every_t, strict=True)):
        _close(p.data, q.detach().numpy(), f"{where}: model parameter {i} value", moved)
        assert (p.grad is None) == (q.grad is None), (
            f"{where}: model parameter {i} grad is {'None' if p.grad is None else 'set'}, "
            f"torch's {'None' if q.grad is None else 'set'}"
        )
        if p.grad is not None:
            _close(p.grad, q.grad.numpy(), f"{where}: model parameter {i} grad")
        assert p.requires_grad == q.requires_grad, f"{where}: parameter {i} requires_grad"
    for i, (p, q) in enumerate(zip(ours_p, their_p, strict=True)):
        _close(p.data, q.detach().numpy(), f"{where}: optimised parameter {i} value", moved)
        mine, theirs = ctx["opt_o"].state.get(p, {}), ctx["opt_t"].state.get(q, {})
        for key, value in theirs.items():
            if value is None:
                continue
            if key == "step" and ctx["kind"] == "SGD":
                continue
            if ctx["kind"] == "Adagrad" and not mine and float(theirs["step"]) == 0:
                continue  # (torch's made at construction; wxb's reads empty until a step)
            assert key in mine, (
                f"{where}: parameter {i}: torch's state has {key!r}, wxb's {list(mine)}"
            )
            got = mine[key]
            if key in ("step", "mu_product"):
                _close(float(got), float(value), f"{where}: parameter {i} state {key}")
            elif ctx["kind"] == "RMSprop" and key == "momentum_buffer":
                # Σ g/(√s + ε): a gradient that is rounding noise (a bias before a
                # BatchNorm, ∂L/∂b = 0 in exact arithmetic, ~1e-16 here) comes out as
                # noise/ε, up to 1e-8 for ε = 1e-8, where a wrong rule moves O(1) entries
                eps = min(g["eps"] for g in ctx["opt_t"].param_groups)
                scale = max(1.0, float(np.abs(value.numpy()).max()))
                np.testing.assert_allclose(
                    np.asarray(got), value.numpy(), rtol=RTOL, atol=1e-15 * scale / eps,
                    err_msg=f"{where}: parameter {i} state {key}",
                )  # fmt: skip
            else:
                _close(got, value.numpy(), f"{where}: parameter {i} state {key}")
    for k, (g, h) in enumerate(
        zip(ctx["opt_o"].param_groups, ctx["opt_t"].param_groups, strict=True)
    ):
        for key in h:
            if key in ("params", "initial_lr", "foreach", "maximize", "capturable",
                       "differentiable", "fused", "amsgrad", "max_lr", "min_lr",
                       "base_momentum", "max_momentum", "base_lr", "decoupled_weight_decay",
                       "param_names"):  # fmt: skip
                continue
            if key == "betas":
                _close(list(g[key]), list(h[key]), f"{where}: group {k} {key}")
            elif isinstance(h[key], (int, float)) and not isinstance(h[key], bool):
                _close(g[key], h[key], f"{where}: group {k} {key}")
    if ctx["sched_o"] is not None:
        # (a group added since the last step: torch's list lacks it; wxb's gives its lr now)
        theirs = ctx["sched_t"].get_last_lr()
        _close(ctx["sched_o"].get_last_lr()[: len(theirs)], theirs, f"{where}: get_last_lr()")
    for (name, b), (name_t, c) in zip(
        ctx["model_o"].named_buffers(), ctx["model_t"].named_buffers(), strict=False
    ):
        if "num_batches" in name_t:
            continue
        value = b.data if hasattr(b, "data") else b
        _close(value, c.numpy(), f"{where}: buffer {name}/{name_t}", moved)


# -- the script -----------------------------------------------------------------------------
def _loss_pair(rng, d_out):
    name = str(rng.choice(["mse", "ce", "l1", "huber", "bce"]))
    if name == "ce" and d_out < 2:
        name = "mse"
    if name == "mse":  # torch's mean over every element (wxb's MSELoss halves it per row)
        return name, (lambda o, y: ((o - y) ** 2).mean()), (lambda o, y: ((o - y) ** 2).mean())
    if name == "ce":
        return name, wnn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    if name == "l1":
        return name, wnn.L1Loss(), torch.nn.L1Loss()
    if name == "huber":
        return name, wnn.HuberLoss(delta=0.5), torch.nn.HuberLoss(delta=0.5)
    return name, wnn.BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss()


def _batch(rng, arch, loss):
    n = int(rng.integers(3, 9))
    x = rng.normal(size=(n, arch["d_in"]))
    if loss == "ce":
        y = rng.integers(0, arch["d_out"], size=n)
        return x, y, torch.tensor(y)
    if loss == "bce":
        y = (rng.random(size=(n, arch["d_out"])) < 0.5).astype(np.float64)
    else:
        y = rng.normal(size=(n, arch["d_out"]))
    return x, wxb.tensor(y, dtype="float64"), torch.tensor(y)


def _backward(ctx, rng):
    x, y_o, y_t = _batch(rng, ctx["arch"], ctx["loss"])
    out_o = ctx["model_o"](wxb.tensor(x, dtype="float64"))
    out_t = ctx["model_t"](torch.tensor(x))
    loss_o, loss_t = ctx["loss_o"](out_o, y_o), ctx["loss_t"](out_t, y_t)
    _close(loss_o.item(), loss_t.item(), f"{ctx['where']}: loss")
    loss_o.backward()
    loss_t.backward()
    return float(loss_t.item())


def _groups_now(opt_t):
    return [{k: v for k, v in g.items() if k != "params"} for g in opt_t.param_groups]


def _fresh_optimizers(ctx):
    """New optimisers over the live parameters, grouped and set as the current ones."""
    groups = _groups_now(ctx["opt_t"])
    opt_o = getattr(optim, ctx["kind"])(
        [{"params": list(g["params"]), **{k: v for k, v in h.items() if k in ctx["keys"]}}
         for g, h in zip(ctx["opt_o"].param_groups, groups, strict=True)],
        **ctx["defaults"],
    )  # fmt: skip
    opt_t = getattr(torch.optim, ctx["kind"])(
        [{"params": list(g["params"]), **{k: v for k, v in h.items() if k in ctx["keys"]}}
         for g, h in zip(ctx["opt_t"].param_groups, groups, strict=True)],
        **ctx["defaults"],
    )  # fmt: skip
    return opt_o, opt_t


def _one_script(rng, msg):
    arch = _architecture(rng)
    model_o, model_t = _twins(arch)
    kind = str(rng.choice(KINDS))
    nesterov = kind == "SGD" and rng.random() < 0.3
    params_o, params_t = list(model_o.parameters()), list(model_t.parameters())
    for p, q in zip(params_o, params_t, strict=True):
        assert p.shape == tuple(q.shape)
    late = int(rng.integers(0, 3)) if len(params_o) > 2 else 0  # left out, added later
    held = len(params_o) - late
    cut = int(rng.integers(1, held + 1))
    spans = [(0, cut), (cut, held)] if cut < held else [(0, held)]
    defaults = _group_options(rng, kind, nesterov)
    specs = [_group_options(rng, kind, nesterov) if rng.random() < 0.6 else {} for _ in spans]
    if kind == "Adagrad" and rng.random() < 0.5:
        defaults["initial_accumulator_value"] = float(rng.uniform(0, 0.5))
    opt_o = getattr(optim, kind)(
        [{"params": params_o[a:b], **s} for (a, b), s in zip(spans, specs, strict=True)], **defaults
    )
    opt_t = getattr(torch.optim, kind)(
        [{"params": params_t[a:b], **s} for (a, b), s in zip(spans, specs, strict=True)], **defaults
    )
    keys = set(opt_t.defaults) - {"foreach", "maximize", "capturable", "differentiable", "fused"}
    steps = int(rng.integers(10, 31))
    momentum_everywhere = all(g.get("momentum", 0) > 0 for g in opt_t.param_groups)
    sched_name, sched_spec = _schedule_spec(rng, kind, steps, momentum_everywhere)
    loss_name, loss_o, loss_t = _loss_pair(rng, arch["d_out"])
    ctx = {
        "arch": arch, "kind": kind, "model_o": model_o, "model_t": model_t, "opt_o": opt_o,
        "opt_t": opt_t, "defaults": defaults, "keys": keys, "loss": loss_name,
        "loss_o": loss_o, "loss_t": loss_t, "where": msg,
    }  # fmt: skip
    ctx["sched_o"] = _make_schedule(optim.lr_scheduler, opt_o, sched_name, sched_spec)
    ctx["sched_t"] = _make_schedule(TS, opt_t, sched_name, sched_spec)
    tied = saved = False
    snapshot = None
    log = [f"{kind} defaults {defaults} groups {specs} late {late} sched {sched_name} "
           f"{sched_spec} loss {loss_name} arch {arch}"]  # fmt: skip
    for step in range(steps):
        events = []
        ctx["where"] = f"{msg}; step {step}; " + " | ".join(log[:1] + log[max(1, len(log) - 6) :])
        # before the gradients
        if rng.random() < 0.15:  # freeze or unfreeze a parameter (one stays trainable)
            i = int(rng.integers(len(params_o)))
            flag = not params_o[i].requires_grad
            if not flag and sum(p.requires_grad for p in params_o) == 1:
                flag = True
            params_o[i].requires_grad_(flag)
            params_t[i].requires_grad_(flag)
            events.append(f"requires_grad_({flag}) on {i}")
        if rng.random() < 0.1:
            mode = bool(rng.random() < 0.5)
            model_o.train(mode)
            model_t.train(mode)
            events.append(f"train({mode})")
        if rng.random() < 0.08:  # weights replaced between steps
            i = int(rng.integers(len(params_o)))
            values = rng.normal(size=params_o[i].shape)
            if rng.random() < 0.5:
                params_o[i].data = values.copy()
                params_t[i].data = torch.tensor(values)
                events.append(f"p.data = … on {i}")
            else:
                with wxb.no_grad():
                    params_o[i].copy_(wxb.tensor(values, dtype="float64"))
                with torch.no_grad():
                    params_t[i].copy_(torch.tensor(values))
                events.append(f"copy_ on {i}")
        if (
            arch["own"] and arch["depth"] == 2 and not tied and not saved and rng.random() < 0.1
        ):  # tie the two hidden layers' weights from here on
            model_o.hidden[1].weight = model_o.hidden[0].weight
            model_t.hidden[1].weight = model_t.hidden[0].weight
            tied = True
            events.append("tied hidden[1].weight = hidden[0].weight")
        # gradients: one backward, or several accumulated
        figure = _backward(ctx, rng)
        for _ in range(int(rng.choice([0, 0, 0, 1, 2]))):
            figure = _backward(ctx, rng)
            events.append("accumulated")
        if rng.random() < 0.1:
            i = int(rng.integers(len(params_o)))
            if params_o[i].grad is not None:
                factor = float(rng.uniform(0, 2))
                params_o[i].grad *= factor
                params_t[i].grad.mul_(factor)
                events.append(f"grad *= {factor:.3g} on {i}")
        if rng.random() < 0.1:
            i = int(rng.integers(len(params_o)))
            params_o[i].grad = None
            params_t[i].grad = None
            events.append(f"grad = None on {i}")
        if rng.random() < 0.15:
            if rng.random() < 0.5:
                norm_type = float(rng.choice([1.0, 2.0, math.inf]))
                max_norm = float(rng.uniform(0.05, 2))
                a = optim.clip_grad_norm_(model_o.parameters(), max_norm, norm_type=norm_type)
                b = torch.nn.utils.clip_grad_norm_(model_t.parameters(), max_norm, norm_type)
                _close(float(a), float(b), f"{ctx['where']}: clip_grad_norm_'s total")
                events.append(f"clip_grad_norm_({max_norm:.3g}, {norm_type})")
            else:
                value = float(rng.uniform(0.01, 0.5))
                optim.clip_grad_value_(model_o.parameters(), value)
                # torch 2.13's raises its own internal error where no parameter has a
                # gradient (its clip_grad_norm_ returns 0 there); wxb's skips them all
                if any(q.grad is not None for q in model_t.parameters()):
                    torch.nn.utils.clip_grad_value_(model_t.parameters(), value)
                events.append(f"clip_grad_value_({value:.3g})")
        # the step, and what a user changes between steps
        if rng.random() < 0.12:
            k = int(rng.integers(len(opt_t.param_groups)))
            key, value = _changed(rng, kind, opt_t.param_groups[k])
            ctx["opt_o"].param_groups[k][key] = value
            ctx["opt_t"].param_groups[k][key] = value
            events.append(f"group {k} {key} = {value}")
        ctx["where"] = f"{msg}; step {step}; " + " | ".join(
            [*log[:1] + log[max(1, len(log) - 6) :], ", ".join(events)]
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ctx["opt_o"].step()
            ctx["opt_t"].step()
        if ctx["sched_o"] is not None and rng.random() < 0.7:
            if sched_name == "Plateau":
                ctx["sched_o"].step(figure)
                ctx["sched_t"].step(figure)
            else:
                ctx["sched_o"].step()
                ctx["sched_t"].step()
            events.append("schedule step")
        _compare(ctx, ctx["where"] + " (after the step)")
        # between steps
        how = str(rng.choice(["none", "opt", "opt", "opt0", "model"]))
        if how == "opt":
            ctx["opt_o"].zero_grad()
            ctx["opt_t"].zero_grad()
        elif how == "opt0":
            ctx["opt_o"].zero_grad(set_to_none=False)
            ctx["opt_t"].zero_grad(set_to_none=False)
        elif how == "model":
            model_o.zero_grad()
            model_t.zero_grad()
        events.append(f"zero_grad: {how}")
        if late and rng.random() < 0.15 and sched_name in ("none", "StepLR", "ExponentialLR"):
            spec = _group_options(rng, kind, nesterov) if rng.random() < 0.6 else {}
            ctx["opt_o"].add_param_group({"params": params_o[held:], **spec})
            ctx["opt_t"].add_param_group({"params": params_t[held:], **spec})
            held, late = len(params_o), 0
            events.append(f"add_param_group {spec}")
        if rng.random() < 0.08:  # a state loaded from another optimiser
            opt_o, opt_t = _fresh_optimizers(ctx)
            opt_o.load_state_dict(copy.deepcopy(ctx["opt_o"].state_dict()))
            opt_t.load_state_dict(copy.deepcopy(ctx["opt_t"].state_dict()))
            if ctx["sched_o"] is None:
                ctx["opt_o"], ctx["opt_t"] = opt_o, opt_t
                events.append("optimizer replaced by a loaded one")
        if rng.random() < 0.1:  # a snapshot of the optimiser's state, for a rollback later
            snapshot = (
                copy.deepcopy(ctx["opt_o"].state_dict()),
                copy.deepcopy(ctx["opt_t"].state_dict()),
                len(ctx["opt_t"].param_groups),
                ctx["opt_o"],
            )
            events.append("snapshot")
        elif (
            snapshot is not None
            and snapshot[3] is ctx["opt_o"]
            and snapshot[2] == len(ctx["opt_t"].param_groups)
            and rng.random() < 0.3
        ):  # the live optimiser rolled back to it, its schedule going on
            ctx["opt_o"].load_state_dict(copy.deepcopy(snapshot[0]))
            ctx["opt_t"].load_state_dict(copy.deepcopy(snapshot[1]))
            events.append("rolled back to the snapshot")
        if not tied and rng.random() < 0.08:  # save everything, load into fresh objects
            saved = True
            sd_o, sd_t = model_o.state_dict(), copy.deepcopy(model_t.state_dict())
            osd_o, osd_t = ctx["opt_o"].state_dict(), copy.deepcopy(ctx["opt_t"].state_dict())
            new_o, new_t = _build(arch)
            grads_o = [p.grad for p in params_o]
            grads_t = [q.grad for q in params_t]
            new_params_o, new_params_t = list(new_o.parameters()), list(new_t.parameters())
            for p, q, new_p, new_q in zip(
                params_o, params_t, new_params_o, new_params_t, strict=True
            ):
                new_p.requires_grad_(p.requires_grad)
                new_q.requires_grad_(q.requires_grad)
            new_o.train(model_o.training)
            new_t.train(model_t.training)
            ctx["model_o"], ctx["model_t"] = model_o, model_t = new_o, new_t
            bounds = [len(g["params"]) for g in ctx["opt_t"].param_groups]
            old_o, old_t = ctx["opt_o"], ctx["opt_t"]
            starts = np.cumsum([0, *bounds])
            groups = _groups_now(old_t)
            ctx["opt_o"] = getattr(optim, kind)(
                [{"params": new_params_o[a:b], **{k: v for k, v in h.items() if k in keys}}
                 for a, b, h in zip(starts[:-1], starts[1:], groups, strict=True)],
                **defaults,
            )  # fmt: skip
            ctx["opt_t"] = getattr(torch.optim, kind)(
                [{"params": new_params_t[a:b], **{k: v for k, v in h.items() if k in keys}}
                 for a, b, h in zip(starts[:-1], starts[1:], groups, strict=True)],
                **defaults,
            )  # fmt: skip
            ssd_o = ctx["sched_o"].state_dict() if ctx["sched_o"] is not None else None
            ssd_t = ctx["sched_t"].state_dict() if ctx["sched_t"] is not None else None
            ctx["sched_o"] = _make_schedule(
                optim.lr_scheduler, ctx["opt_o"], sched_name, sched_spec
            )
            ctx["sched_t"] = _make_schedule(TS, ctx["opt_t"], sched_name, sched_spec)
            model_o.load_state_dict(sd_o)
            model_t.load_state_dict(sd_t)
            ctx["opt_o"].load_state_dict(osd_o)
            ctx["opt_t"].load_state_dict(osd_t)
            if ssd_o is not None:
                ctx["sched_o"].load_state_dict(ssd_o)
                ctx["sched_t"].load_state_dict(ssd_t)
            for p, q, g, h in zip(new_params_o, new_params_t, grads_o, grads_t, strict=True):
                p.grad = None if g is None else np.array(g)
                q.grad = None if h is None else h.clone()
            params_o, params_t = new_params_o, new_params_t
            del old_o, old_t
            events.append("saved and loaded into fresh objects")
        log.append(f"step {step}: " + ", ".join(events))
        _compare(
            ctx,
            f"{msg}; step {step}; "
            + " | ".join(log[:1] + log[max(1, len(log) - 6) :])
            + " (between steps)",
        )
    return log


def test_random_scripts_of_mid_run_changes_follow_torch_step_by_step(seeded):
    """Six random scripts, each compared with PyTorch after and between every step."""
    # torch's NAdam keeps Π μ in the default dtype (wxb's in the parameter's, documented)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        for run in range(6):
            _one_script(seeded.rng, seeded.msg(f"script {run}"))
    finally:
        torch.set_default_dtype(previous)


# -- the fit path: several fit calls on one optimiser and schedule, events between them -------
def _fit_script(rng, msg):
    arch = _architecture(rng)
    arch["d_out"] = max(arch["d_out"], 1)
    model_o, model_t = _twins(arch)
    kind = str(rng.choice(KINDS))
    nesterov = kind == "SGD" and rng.random() < 0.3
    params_o, params_t = list(model_o.parameters()), list(model_t.parameters())
    late = int(rng.integers(0, 3)) if len(params_o) > 2 else 0
    held = len(params_o) - late
    defaults = _group_options(rng, kind, nesterov)
    opt_o = getattr(optim, kind)(params_o[:held], **defaults)
    opt_t = getattr(torch.optim, kind)(params_t[:held], **defaults)
    rows = int(rng.integers(6, 20))
    X = rng.normal(size=(rows, arch["d_in"]))
    Y = rng.normal(size=(rows, arch["d_out"]))
    total_epochs = int(rng.integers(4, 9))
    sched_name = str(rng.choice(["none", "StepLR", "ExponentialLR", "Plateau", "LambdaLR",
                                 "CosineAnnealingLR", "LinearLR"]))  # fmt: skip
    if sched_name == "Plateau":
        spec = {"mode": "min", "factor": float(rng.uniform(0.1, 0.9)),
                "patience": int(rng.integers(0, 2)), "threshold": 0.0}  # fmt: skip
    else:
        sched_name, spec = (
            _schedule_spec(
                np.random.default_rng(int(rng.integers(1 << 30))), kind, total_epochs, False
            )
            if sched_name != "none"
            else ("none", {})
        )
        if sched_name in ("Plateau", "OneCycleLR", "ChainedScheduler"):  # (fit takes none)
            sched_name, spec = "none", {}
    sched_o = _make_schedule(optim.lr_scheduler, opt_o, sched_name, spec)
    sched_t = _make_schedule(TS, opt_t, sched_name, spec)
    clip = float(rng.uniform(0.1, 2)) if rng.random() < 0.4 else None
    batch = int(rng.integers(2, rows + 1))
    while arch["norm"] == "batch" and rows % batch == 1:
        batch += 1  # (a BatchNorm refuses a batch of one row, torch's too; 7 rows: 2, 3, 4)

    def loss_fn(o, y):
        return ((o - y) ** 2).mean()

    log = [f"{kind} {defaults} late {late} sched {sched_name} {spec} clip {clip} batch {batch} "
           f"rows {rows} arch {arch}"]  # fmt: skip
    done = 0
    while done < total_epochs:
        epochs = int(rng.integers(1, total_epochs - done + 1))
        # between fits
        events = []
        if rng.random() < 0.4:
            i = int(rng.integers(len(params_o)))
            flag = not params_o[i].requires_grad
            params_o[i].requires_grad_(flag)
            params_t[i].requires_grad_(flag)
            events.append(f"requires_grad_({flag}) on {i}")
        if rng.random() < 0.3:
            k = int(rng.integers(len(opt_t.param_groups)))
            key, value = _changed(rng, kind, opt_t.param_groups[k])
            opt_o.param_groups[k][key] = value
            opt_t.param_groups[k][key] = value
            events.append(f"group {k} {key} = {value}")
        if late and rng.random() < 0.4 and sched_name in ("none", "StepLR", "ExponentialLR"):
            extra = _group_options(rng, kind, nesterov)
            opt_o.add_param_group({"params": params_o[held:], **extra})
            opt_t.add_param_group({"params": params_t[held:], **extra})
            late, held = 0, len(params_o)
            events.append(f"add_param_group {extra}")
        if rng.random() < 0.3:
            mode = bool(rng.random() < 0.5)
            model_o.train(mode)
            model_t.train(mode)
            events.append(f"train({mode}) before fit")
        log.append(f"fit of {epochs} epochs after " + ", ".join(events))
        where = f"{msg}; " + " | ".join(log)
        if not any(p.requires_grad for p in params_o):
            break
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wxb.fit(model_o, X, Y, loss=loss_fn, optimizer=opt_o, epochs=epochs,
                    batch_size=batch, shuffle=False, lr_schedule=sched_o,
                    clip_grad_norm=clip, verbose=False)  # fmt: skip
            model_t.train()
            for _ in range(epochs):
                total = 0.0
                for a in range(0, rows, batch):
                    opt_t.zero_grad()
                    out = model_t(torch.tensor(X[a : a + batch]))
                    loss = loss_fn(out, torch.tensor(Y[a : a + batch]))
                    loss.backward()
                    total += float(loss) * len(X[a : a + batch])
                    if clip is not None:
                        torch.nn.utils.clip_grad_norm_(
                            [q for g in opt_t.param_groups for q in g["params"]], clip
                        )
                    opt_t.step()
                if sched_t is not None:
                    if sched_name == "Plateau":
                        sched_t.step(total / rows)
                    else:
                        sched_t.step()
        done += epochs
        ctx = {"opt_o": opt_o, "opt_t": opt_t, "model_o": model_o, "model_t": model_t,
               "kind": kind, "sched_o": sched_o, "sched_t": sched_t}  # fmt: skip
        _compare(ctx, where + " (after the fit)")


def test_fit_calls_on_one_optimiser_with_changes_between_them_follow_a_torch_loop(seeded):
    """fit(optimizer=opt, lr_schedule=sched, shuffle=False) called several times, with
    freezing, group changes, a group added and train/eval between the calls: weights,
    gradients, the optimiser's state and the rates as a PyTorch loop over the same
    batches gives them."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        for run in range(4):
            _fit_script(seeded.rng, seeded.msg(f"script {run}"))
    finally:
        torch.set_default_dtype(previous)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("how", ["group", "added", "mid-run"])
def test_a_groups_own_differentiable_true_is_refused_as_the_constructors(seeded, kind, how):
    """PyTorch's step reads ``differentiable`` from each group; wxb refused it in the
    constructor but took ``{"params": …, "differentiable": True}``, an added group's, and
    ``param_groups[0]["differentiable"] = True`` set between steps, and stepped as if
    it were not there."""
    rng = seeded.rng
    layer = wnn.Linear(int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    first, second = layer.weight, layer.bias
    for p in (first, second):
        p.grad = rng.normal(size=p.shape).astype(p.dtype)
    with pytest.raises(wxb.errors.ConfigError, match=r"differentiable=True: .*records no graph"):
        if how == "group":
            getattr(optim, kind)([{"params": [first], "differentiable": True}])
        elif how == "added":
            opt = getattr(optim, kind)([first])
            opt.add_param_group({"params": [second], "differentiable": True})
        else:
            opt = getattr(optim, kind)([first, second])
            opt.step()
            opt.param_groups[0]["differentiable"] = True
            opt.step()
    # False, PyTorch's default, is taken wherever it is written
    opt = getattr(optim, kind)([{"params": [first], "differentiable": False}])
    opt.add_param_group({"params": [second], "differentiable": False})
    opt.step()


def _rmsprop_reference(p, grads, switch_at, key, value, lr, alpha, eps):
    """RMSprop in float64 NumPy, ``key`` (momentum or centered) switched on before update
    ``switch_at``: its buffer starts at zero there."""
    p, square, mean, buf = p.copy(), np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads):
        on = t >= switch_at
        square = alpha * square + (1 - alpha) * g * g
        if key == "centered" and on:
            mean = alpha * mean + (1 - alpha) * g
            avg = np.sqrt(square - mean * mean) + eps
        else:
            avg = np.sqrt(square) + eps
        if key == "momentum" and on:
            buf = value * buf + g / avg
            p -= lr * buf
        else:
            p -= lr * g / avg
    return p


@pytest.mark.parametrize("key", ["momentum", "centered"])
@pytest.mark.parametrize("how", ["group value", "group added"])
def test_rmsprops_state_saved_after_a_buffer_was_switched_on_loads_and_goes_on(seeded, key, how):
    """RMSprop's momentum (or centered) switched on between steps, by a group's value or
    a group added with it, makes its buffer at the next step: a state_dict() taken in
    between has none, and load_state_dict refused wxb's own state ("the state has no
    'momentum_buffer'"), into the same optimiser or a fresh one. It loads, and the run
    goes on as the rule in NumPy gives it."""
    rng = seeded.rng
    shape = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    lr, alpha, eps = float(rng.uniform(1e-3, 0.05)), float(rng.uniform(0.5, 0.99)), 1e-8
    value = float(rng.uniform(0.1, 0.9)) if key == "momentum" else True
    start = rng.normal(size=shape)
    before, after = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    grads = [rng.normal(size=shape) for _ in range(before + after)]
    p = wnn.Parameter(start.copy(), dtype="float64")
    opt = optim.RMSprop([p], lr=lr, alpha=alpha, eps=eps)
    for g in grads[:before]:
        p.grad = g.copy()
        opt.step()
    extra = None
    if how == "group value":
        opt.param_groups[0][key] = value
    else:  # the buffer the new group needs: made at the next step for every parameter
        extra = wnn.Parameter(rng.normal(size=3), dtype="float64")
        opt.add_param_group({"params": [extra], key: value})
    saved = copy.deepcopy(opt.state_dict())
    opt.load_state_dict(saved)  # its own state, back into it
    groups = [{"params": [p], **({key: value} if how == "group value" else {})}]
    if extra is not None:
        groups.append({"params": [extra], key: value})
    fresh = optim.RMSprop(groups, lr=lr, alpha=alpha, eps=eps)
    fresh.load_state_dict(saved)
    for g in grads[before:]:
        p.grad = g.copy()
        fresh.step()
    expected = _rmsprop_reference(
        start, grads, before if how == "group value" else len(grads), key, value, lr, alpha, eps
    )
    # float64 against float64: a handful of roundings a step
    np.testing.assert_allclose(p.data, expected, rtol=1e-12, atol=1e-14, err_msg=seeded.msg(key))


def _resumed_schedules(kind, rng):
    """A schedule whose group's rate was set by hand (a PolynomialLR's, then stepped past
    its end; a plateau's, after its last step), saved and
    loaded into fresh objects in PyTorch's order, beside torch's: (wxb's, torch's,
    wxb's saved state)."""
    lr, late = float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.001, 0.3))
    values = rng.normal(size=3)

    def make(module, opt):
        if kind == "PolynomialLR":  # past its end the rate is kept, a rate set by hand too
            return module.PolynomialLR(opt, total_iters=2, power=float(rng_power))
        return module.ReduceLROnPlateau(opt, factor=float(rng_factor), patience=0)

    rng_power, rng_factor = rng.uniform(0.5, 3), rng.uniform(0.1, 0.9)
    p, q = wnn.Parameter(values.copy(), dtype="float64"), torch.tensor(values, requires_grad=True)
    ours, theirs = optim.SGD([p], lr=lr), torch.optim.SGD([q], lr=lr)
    mine, reference = make(optim.lr_scheduler, ours), make(TS, theirs)
    for _ in range(int(rng.integers(3, 6))):
        p.grad, q.grad = np.ones(3), torch.ones(3, dtype=torch.float64)
        ours.step()
        theirs.step()
        if kind == "PolynomialLR":
            mine.step()
            reference.step()
        else:
            mine.step(1.0)
            reference.step(1.0)
    ours.param_groups[0]["lr"] = theirs.param_groups[0]["lr"] = late
    if kind == "PolynomialLR":  # a step past its end keeps the rate set by hand
        mine.step()
        reference.step()
    saved = copy.deepcopy(mine.state_dict())
    saved_t = copy.deepcopy(reference.state_dict())
    opt_saved, opt_saved_t = ours.state_dict(), theirs.state_dict()
    p2, q2 = wnn.Parameter(values.copy(), dtype="float64"), torch.tensor(values, requires_grad=True)
    ours, theirs = optim.SGD([p2], lr=lr), torch.optim.SGD([q2], lr=lr)
    mine, reference = make(optim.lr_scheduler, ours), make(TS, theirs)
    ours.load_state_dict(opt_saved)
    theirs.load_state_dict(opt_saved_t)
    mine.load_state_dict(saved)
    reference.load_state_dict(saved_t)
    return mine, reference, saved


@pytest.mark.parametrize("kind", ["PolynomialLR", "ReduceLROnPlateau"])
def test_a_resumed_schedules_get_last_lr_is_the_saved_runs(seeded, kind):
    """get_last_lr() right after a schedule's state was loaded into a fresh one: the
    rates the saved run's schedule last set, as PyTorch's (whose state holds _last_lr).
    A group's lr set by hand gave, after the resume, 0.0 (a PolynomialLR past its end,
    which keeps that rate: the closed form at the epoch) or the hand-set rate (a
    ReduceLROnPlateau, set after its last step: the rate the group held), where the
    saved run, and PyTorch, said the schedule's last rate."""
    mine, reference, saved = _resumed_schedules(kind, seeded.rng)
    np.testing.assert_allclose(
        mine.get_last_lr(), reference.get_last_lr(), rtol=1e-12, err_msg=seeded.msg(kind)
    )
    # a state saved by a wxb that kept no _last_lr still loads, as it did
    older = {k: v for k, v in saved.items() if k != "_last_lr"}
    mine.load_state_dict(older)
    assert len(mine.get_last_lr()) == 1
    with pytest.raises(wxb.errors.ConfigError, match="_last_lr must be a list of 1 to 1"):
        mine.load_state_dict({**saved, "_last_lr": [0.1, 0.2]})


@pytest.mark.parametrize("schedule", ["OneCycleLR", "CyclicLR"])
@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_a_onecycle_resumed_in_pytorchs_order_keeps_the_loaded_momentum(seeded, kind, schedule):
    """A OneCycleLR cycling the momentum (Adam's β₁), resumed in PyTorch's order (the
    schedule made, then the optimiser's state loaded, then the schedule's): the momentum
    is the loaded optimiser's, as PyTorch's. One set by hand after the last step (or an
    optimiser rolled back to an earlier state, as the generator found) was put back to
    the schedule's value at the loaded step."""
    rng = seeded.rng
    values = rng.normal(size=3)
    total_steps = int(rng.integers(8, 20))
    if schedule == "OneCycleLR":
        settings = {
            "max_lr": float(rng.uniform(0.01, 0.1)),
            "total_steps": total_steps,
            "pct_start": float(rng.uniform(0.2, 0.6)),
        }
    else:  # (a CyclicLR as a OneCycleLR: its momentum cycles opposite to the rate)
        settings = {
            "base_lr": float(rng.uniform(1e-4, 1e-3)),
            "max_lr": float(rng.uniform(0.01, 0.1)),
            "step_size_up": int(rng.integers(2, 6)),
        }
    options = {"momentum": 0.9} if kind == "SGD" else {}
    by_hand = float(rng.uniform(0.5, 0.8))

    def run(p, opt_module, sched_module, p_grad):
        opt = getattr(opt_module, kind)([p], lr=0.01, **options)
        cycle = getattr(sched_module, schedule)(opt, **settings)
        for _ in range(int(rng_steps)):
            p.grad = p_grad()
            opt.step()
            cycle.step()
        if kind == "SGD":
            opt.param_groups[0]["momentum"] = by_hand
        else:
            opt.param_groups[0]["betas"] = (by_hand, opt.param_groups[0]["betas"][1])
        return opt, cycle

    rng_steps = rng.integers(1, total_steps - 2)
    p, q = wnn.Parameter(values.copy(), dtype="float64"), torch.tensor(values, requires_grad=True)
    ours, mine = run(p, optim, optim.lr_scheduler, lambda: np.ones(3))
    theirs, reference = run(q, torch.optim, TS, lambda: torch.ones(3, dtype=torch.float64))
    saved = (ours.state_dict(), mine.state_dict(), theirs.state_dict(), reference.state_dict())
    p2, q2 = wnn.Parameter(values.copy(), dtype="float64"), torch.tensor(values, requires_grad=True)
    ours = getattr(optim, kind)([p2], lr=0.01, **options)
    theirs = getattr(torch.optim, kind)([q2], lr=0.01, **options)
    mine = getattr(optim.lr_scheduler, schedule)(ours, **settings)
    reference = getattr(TS, schedule)(theirs, **settings)
    ours.load_state_dict(saved[0])
    theirs.load_state_dict(saved[2])
    mine.load_state_dict(saved[1])
    reference.load_state_dict(saved[3])
    key = "momentum" if kind == "SGD" else "betas"
    got, expected = ours.param_groups[0][key], theirs.param_groups[0][key]
    np.testing.assert_allclose(got, expected, rtol=1e-12, err_msg=seeded.msg(key))
    assert np.ravel(got)[0] == by_hand
