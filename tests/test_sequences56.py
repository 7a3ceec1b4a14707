"""Training sequences a PyTorch user writes, generated, against the same run in PyTorch.

The other generators (test_differential, test_user_models50, test_hunt52, …) draw models
and a few steps of one loop shape each. This one draws the *sequence* of a run: per step,
gradient accumulation over one to three backward calls (scaled losses, fresh batches),
a loss backed twice through one graph (``retain_graph=True``), ``zero_grad`` by the
optimiser or the model with ``set_to_none`` True or False (and sometimes not at all, so
gradients carry), a submodule's and the shared weight's ``requires_grad_(False)``
toggled, ``optimizer.add_param_group`` for a head left out at first, an lr set by hand
under the schedule, weights rebound (``p.data = …``), scaled in place or copied in, and
gradients scaled and given NumPy noise before the step, ``clip_grad_norm_`` (2 or inf)
or ``clip_grad_value_``; one of 15 schedules (chained and sequential among them) or none,
stepped per batch or per epoch, after the optimiser or before it. The model holds NumPy arrays
used as operands in its forward, a forward hook that changes a layer's output, and one
weight shared by two submodules whose other parameters sit in different parameter
groups; all in float64, under 16 optimiser settings of 11 classes.

Once in the run, model, optimiser and schedule ``state_dict`` are written through
``wxb.save`` of a dict and read back by ``wxb.load`` into fresh objects: the continued
run must equal the uninterrupted one exactly. From the same point, torch's objects are
continued in wxb (``wxb.interop.optimizer_from_torch``/``scheduler_from_torch``) and
wxb's in torch (``optimizer_to_torch``/``scheduler_to_torch``), each against torch's run;
and each library resumes with the schedule made at its epoch (``last_epoch=k``, PyTorch's
other way), the two against each other. Some runs then roll the live objects back to the
checkpoint and go on.

Compared to torch at every step: the losses, the clipped norm, each group's lr and
``get_last_lr()``, every parameter and gradient. The seed of each run is printed in the
assertion (replay with ``WXB_TEST_SEED``). After it, the defects it found, each a direct
test that failed before.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import wxb
import wxb.interop
from wxb import nn
from wxb.nn import functional as WF

# float64 over ≤ 9 steps of 4 layers of ≤ 5 units: the worst seen over 100 runs was 9e-15
# of the scale; the margin is for Adam-like steps, whose division by √v + ε magnifies the
# rounding of a gradient near 0 (float32 rounding of NAdam's μ product gave 6.5e-10)
TOL = 1e-9


class Lib:
    """The calls that differ between the libraries, so one script trains both."""

    def __init__(self, is_torch: bool) -> None:
        self.torch = is_torch
        self.nn = torch.nn if is_torch else nn
        self.F = TF if is_torch else WF
        self.optim = torch.optim if is_torch else wxb.optim
        self.sched = torch.optim.lr_scheduler if is_torch else wxb.optim.lr_scheduler
        self.utils = torch.nn.utils if is_torch else nn.utils

    def linear(self, n: int, m: int, bias: bool = True):
        if self.torch:
            return torch.nn.Linear(n, m, bias=bias, dtype=torch.float64)
        return nn.Linear(n, m, bias=bias, dtype="float64")

    def operand(self, a: np.ndarray):
        """The NumPy array as a wxb user writes it; torch's tensor of it."""
        return torch.from_numpy(a.copy()) if self.torch else a.copy()

    def tensor(self, a: np.ndarray):
        return torch.from_numpy(a.copy()) if self.torch else wxb.tensor(a.copy())


def as_numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    return np.asarray(getattr(value, "data", value))


def make_model(L: Lib, n: int, h: int, c: int, scale: np.ndarray, shift: np.ndarray):
    class Net(L.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = L.linear(n, h)
            self.mid = L.linear(h, h)
            self.head = L.linear(h, c)
            self.aux = L.linear(h, c, bias=True)
            self.aux.weight = self.head.weight  # one weight in two submodules
            self.scale = L.operand(scale)
            self.shift = L.operand(shift)

        def forward(self, x):
            z = torch.tanh(self.enc(x)) if L.torch else self.enc(x).tanh()
            z = z * self.scale + self.shift  # NumPy operands on the right
            z = self.shift - z * 0.5 + z  # and on the left
            m = self.mid(z)
            z = z + (torch.tanh(m) if L.torch else m.tanh())
            return self.head(z) + 0.5 * self.aux(z)

    return Net()


def copy_into(ours, theirs) -> None:
    with torch.no_grad():
        for (name, p), (tname, q) in zip(
            ours.named_parameters(), theirs.named_parameters(), strict=True
        ):
            assert name == tname
            q.copy_(torch.from_numpy(np.asarray(p.data, dtype=np.float64).copy()))


OPTIMIZERS = {
    "SGD": {"momentum": 0.9, "nesterov": True},
    "SGD_plain": {},
    "SGD_damp": {"momentum": 0.8, "dampening": 0.3, "weight_decay": 1e-2},
    "Adam": {},
    "Adam_wd": {"weight_decay": 1e-2},
    "AdamW": {"weight_decay": 0.1},
    "RMSprop": {"momentum": 0.5, "centered": True},
    "RMSprop_plain": {"alpha": 0.9},
    "Adagrad": {"lr_decay": 0.01},
    "NAdam": {},
    "NAdam_w": {"weight_decay": 0.05, "decoupled_weight_decay": True},
    "RAdam": {},
    "Adamax": {},
    "Adadelta": {"rho": 0.8},
    "Rprop": {},
    "ASGD": {"t0": 2.0},
}

# those PyTorch's own schedulers follow a group added after them with (the others keep a
# list of starting rates one short, or no initial_lr, and fail)
# those made with last_epoch=k in both libraries (a resume from the optimiser's state alone)
RESUMABLE_BY_EPOCH = (
    "step", "exp", "cos", "linear", "multistep", "const", "poly", "warm", "lambda",
    "multiplicative", "onecycle", "cyclic",
)  # fmt: skip
FOLLOW_ADDED = ("none", "step", "exp", "linear", "multistep", "const", "chained", "poly")
SCHEDULES = (
    *FOLLOW_ADDED, "cos", "onecycle", "plateau", "warm", "cyclic", "sequential", "lambda",
    "multiplicative",
)  # fmt: skip


def warmup(epoch: int) -> float:
    return 0.5 + 0.25 * min(epoch, 3)


def shrink(epoch: int) -> float:
    return 0.9 if epoch % 2 else 1.0


def make_schedule(L: Lib, kind: str, opt, total: int, last_epoch: int = -1):
    S = L.sched
    e = {"last_epoch": last_epoch}
    if kind == "none":
        return None
    if kind == "step":
        return S.StepLR(opt, step_size=2, gamma=0.5, **e)
    if kind == "exp":
        return S.ExponentialLR(opt, gamma=0.8, **e)
    if kind == "cos":
        return S.CosineAnnealingLR(opt, T_max=5, eta_min=1e-4, **e)
    if kind == "linear":
        return S.LinearLR(opt, start_factor=0.3, total_iters=4, **e)
    if kind == "multistep":
        return S.MultiStepLR(opt, milestones=[2, 5], gamma=0.3, **e)
    if kind == "const":
        return S.ConstantLR(opt, factor=0.5, total_iters=3, **e)
    if kind == "poly":
        return S.PolynomialLR(opt, total_iters=6, power=2.0, **e)
    if kind == "chained":
        first = S.ConstantLR(opt, factor=0.4, total_iters=2)
        second = S.ExponentialLR(opt, gamma=0.9)
        return S.ChainedScheduler([first, second])
    if kind == "sequential":
        first = S.LinearLR(opt, start_factor=0.5, total_iters=2)
        second = S.ExponentialLR(opt, gamma=0.9)
        return S.SequentialLR(opt, [first, second], milestones=[2])
    if kind == "onecycle":
        cycle = "momentum" in opt.defaults or "betas" in opt.defaults
        return S.OneCycleLR(
            opt, max_lr=[0.05] * len(opt.param_groups), total_steps=total + 2,
            cycle_momentum=cycle, **e,
        )  # fmt: skip
    if kind == "plateau":
        return S.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.0)
    if kind == "warm":
        return S.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2, eta_min=1e-3, **e)
    if kind == "cyclic":
        return S.CyclicLR(opt, base_lr=0.01, max_lr=0.05, step_size_up=2, cycle_momentum=False, **e)
    if kind == "lambda":
        return S.LambdaLR(opt, lr_lambda=warmup, **e)
    if kind == "multiplicative":
        return S.MultiplicativeLR(opt, lr_lambda=shrink, **e)
    raise AssertionError(kind)


def draw_run(rng) -> dict:
    steps = int(rng.integers(5, 10))
    plan = []
    for _ in range(steps):
        plan.append(
            {
                "backwards": int(rng.integers(1, 4)),
                "retain": bool(rng.random() < 0.25),
                "zero": str(
                    rng.choice(
                        ["opt_none", "opt_keep", "model_none", "model_keep", "skip"],
                        p=[0.3, 0.25, 0.15, 0.15, 0.15],
                    )
                ),
                "clip": str(rng.choice(["none", "norm", "value", "norm_inf"])),
                "freeze": str(rng.choice(["-", "freeze", "thaw"], p=[0.7, 0.15, 0.15])),
                "freeze_shared": str(rng.choice(["-", "freeze", "thaw"], p=[0.8, 0.1, 0.1])),
                "set_lr": bool(rng.random() < 0.1),
                "weights": str(
                    rng.choice(["-", "rebind", "in_place", "copy"], p=[0.7, 0.1, 0.1, 0.1])
                ),
                "which": str(rng.choice(PARAMETER_NAMES)),
                "grad_edit": bool(rng.random() < 0.15),
            }
        )
    schedule = str(rng.choice(SCHEDULES))
    save_at = int(rng.integers(1, steps))
    # (torch's OneCycleLR and CosineAnnealingLR fail on a group added after them: no
    # initial_lr, one base_lr short)
    addable = schedule in FOLLOW_ADDED
    add_group_at = int(rng.integers(1, steps)) if addable and rng.random() < 0.5 else None
    rollback_at = int(rng.integers(save_at + 1, steps)) if save_at + 1 < steps else None
    if (
        rollback_at is not None
        and add_group_at is not None
        and save_at < add_group_at <= rollback_at
    ):
        rollback_at = None  # the checkpoint's groups are fewer than the optimiser's by then
    if rng.random() < 0.5:
        rollback_at = None
    if save_at + 1 < steps:
        # gradients are not in a state_dict: the step after it drops them all (the
        # optimiser's zero_grad leaves a head not yet added to it alone, and zeros kept
        # on a frozen layer would still step it)
        plan[save_at + 1]["zero"] = "model_none"
    return {
        "n": int(rng.integers(2, 5)),
        "h": int(rng.integers(2, 6)),
        "c": int(rng.integers(2, 4)),
        "rows": int(rng.integers(3, 7)),
        "optimizer": str(rng.choice(sorted(OPTIMIZERS))),
        "schedule": schedule,
        "per_batch": bool(rng.random() < 0.5),
        "schedule_first": bool(rng.random() < 0.2),
        "loss": str(rng.choice(["ce", "mse"])),
        "hook": str(rng.choice(["none", "scale", "add"])),
        "add_group_at": add_group_at,
        "save_at": save_at,
        "rollback_at": rollback_at,
        "plan": plan,
    }


PARAMETER_NAMES = ("enc.weight", "enc.bias", "mid.weight", "mid.bias", "head.weight", "aux.bias")


def params_in_groups(model, with_head: bool):
    """Two groups: the encoder's, and the rest; the head (its weight shared with aux)
    only when ``with_head``, else added later by add_param_group."""
    first = [model.enc.weight, model.enc.bias]
    second = [model.mid.weight, model.mid.bias, model.aux.bias]
    groups = [
        {"params": first, "lr": 0.03},
        {"params": second, "lr": 0.02, "weight_decay": 0.0},
    ]
    if with_head:
        groups.append({"params": [model.head.weight, model.head.bias], "lr": 0.01})
    return groups


class Runner:
    """One library's run: model, optimiser, schedule, and the plan's steps."""

    def __init__(self, L: Lib, run: dict, consts: dict, weights=None) -> None:
        self.L, self.run, self.consts = L, run, consts
        self.model = make_model(L, run["n"], run["h"], run["c"], consts["scale"], consts["shift"])
        if weights is not None:
            copy_into(weights, self.model)
        self.hooked = None
        self.hook()
        self.make_opt(with_head=run["add_group_at"] is None)
        self.sched = make_schedule(L, run["schedule"], self.opt, len(run["plan"]) * 3)
        self.step_index = 0
        self.frozen = self.shared_frozen = False
        self.schedule_steps = 0

    def hook(self) -> None:
        kind, L = self.run["hook"], self.L
        bump = self.consts["bump"]
        if kind == "scale":
            self.model.mid.register_forward_hook(lambda mod, inp, out: out * 1.5)
        elif kind == "add":
            self.model.enc.register_forward_hook(lambda mod, inp, out: out + L.operand(bump))

    def make_opt(self, with_head: bool) -> None:
        name = self.run["optimizer"]
        cls = getattr(self.L.optim, name.split("_")[0])
        lr = 0.05
        self.opt = cls(params_in_groups(self.model, with_head), lr=lr, **OPTIMIZERS[name])

    def loss(self, X, Y):
        L = self.L
        out = self.model(L.tensor(X))
        if self.run["loss"] == "ce":
            target = torch.from_numpy(Y) if L.torch else Y
            return L.F.cross_entropy(out, target)
        return ((out - L.tensor(Y)) ** 2).mean()

    def one_step(self, k: int, batches: list) -> dict:
        L, model, opt = self.L, self.model, self.opt
        step = self.run["plan"][k]
        record = {}
        if self.run["add_group_at"] == k:
            opt.add_param_group({"params": [model.head.weight, model.head.bias], "lr": 0.015})
        if step["freeze"] != "-":
            self.frozen = step["freeze"] == "freeze"
            model.mid.requires_grad_(not self.frozen)
        if step["freeze_shared"] != "-":  # the weight head and aux share
            self.shared_frozen = step["freeze_shared"] == "freeze"
            model.head.weight.requires_grad_(not self.shared_frozen)
        if step["set_lr"]:  # by hand, under the schedule
            opt.param_groups[0]["lr"] = opt.param_groups[0]["lr"] * 0.5
        named = dict(model.named_parameters())
        if step["weights"] == "rebind":  # a new array for the weight, as p.data = … gives
            p = named[step["which"]]
            p.data = p.data * 0.98
        elif step["weights"] == "in_place":
            p = named[step["which"]]
            p.data *= 0.97
        elif step["weights"] == "copy":  # weights copied in, as from an averaged model
            p = named[step["which"]]
            if L.torch:
                with torch.no_grad():
                    p.copy_(p * 0.5 + 0.1)
            else:
                p.data[...] = p.data * 0.5 + 0.1
        zero = step["zero"]
        if zero != "skip":
            target = opt if zero.startswith("opt") else model
            target.zero_grad(set_to_none=zero.endswith("none"))
        losses = []
        for X, Y in batches[: step["backwards"]]:
            loss = self.loss(X, Y) / step["backwards"]
            loss.backward(retain_graph=step["retain"])
            if step["retain"]:
                (loss * 0.25).backward()
            losses.append(float(loss.item()))
        record["loss"] = losses
        params = [p for p in model.parameters()]
        if step["grad_edit"]:  # gradients changed by hand before the step (noise, scaling)
            for p, noise in zip(params, self.consts["noise"], strict=True):
                if p.grad is not None:
                    p.grad *= 0.5
                    p.grad += L.operand(noise) if L.torch else noise
        if step["clip"] == "norm":
            record["norm"] = float(L.utils.clip_grad_norm_(params, max_norm=0.5))
        elif step["clip"] == "norm_inf":
            record["norm"] = float(L.utils.clip_grad_norm_(params, 0.2, norm_type="inf"))
        elif step["clip"] == "value":
            L.utils.clip_grad_value_(params, clip_value=0.05)
        if self.run["schedule_first"]:  # (PyTorch warns, and steps the rate first)
            self.schedule(k, losses)
        opt.step()
        if not self.run["schedule_first"]:
            self.schedule(k, losses)
        record["lr"] = [g["lr"] for g in opt.param_groups]
        if self.sched is not None:
            record["last_lr"] = [float(lr) for lr in self.sched.get_last_lr()]
        record["params"] = {
            name: np.array(as_numpy(p), dtype=np.float64) for name, p in model.named_parameters()
        }
        record["grads"] = {
            name: None if p.grad is None else np.array(as_numpy(p.grad), dtype=np.float64)
            for name, p in model.named_parameters()
        }
        return record

    def schedule(self, k: int, losses: list) -> None:
        if self.sched is not None and (self.run["per_batch"] or k % 2 == 1):
            self.schedule_steps += 1
            if self.run["schedule"] == "plateau":
                self.sched.step(sum(losses))
            else:
                self.sched.step()

    def state(self) -> dict:
        state = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict()}
        if self.sched is not None:
            state["scheduler"] = self.sched.state_dict()
        return state

    def restore(self, state: dict, source: Runner | None = None, by_epoch: bool = False) -> None:
        """Fresh objects, as a user's resume script builds them, then the states loaded:
        ``state`` from this library's own run, or (``source``) the other library's objects
        taken by wxb.interop."""
        self.model = make_model(
            self.L, self.run["n"], self.run["h"], self.run["c"],
            self.consts["scale"], self.consts["shift"],
        )  # fmt: skip
        self.hook()
        added = self.run["add_group_at"]
        self.make_opt(with_head=added is None or added < self.step_index)
        self.sched = make_schedule(
            self.L, self.run["schedule"], self.opt, len(self.run["plan"]) * 3
        )
        if source is None and by_epoch:  # PyTorch's other way: the schedule made at its epoch
            self.model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["optimizer"])
            self.sched = make_schedule(
                self.L, self.run["schedule"], self.opt, len(self.run["plan"]) * 3,
                last_epoch=self.schedule_steps - 1,
            )  # fmt: skip
        elif source is None:
            self.load(state)
        elif self.L.torch:  # wxb's run continued in PyTorch
            state = {k: torch.from_numpy(np.array(v)) for k, v in source.model.state_dict().items()}
            # wxb's state_dict gives the shared weight once, under its first name
            missing = self.model.load_state_dict(state, strict=False).missing_keys
            assert missing == ["aux.weight"], missing
            wxb.interop.optimizer_to_torch(source.opt, self.opt)
            if self.sched is not None:
                wxb.interop.scheduler_to_torch(source.sched, self.sched)
        else:  # PyTorch's run continued in wxb
            self.model.load_state_dict(source.model.state_dict())
            wxb.interop.optimizer_from_torch(source.opt, self.opt)
            if self.sched is not None:
                wxb.interop.scheduler_from_torch(source.sched, self.sched)
        self.model.mid.requires_grad_(not self.frozen)  # not in a state_dict either
        self.model.head.weight.requires_grad_(not self.shared_frozen)

    def load(self, state: dict) -> None:
        """The states loaded into the objects this run holds."""
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        if self.sched is not None:
            self.sched.load_state_dict(state["scheduler"])


def draw_consts(rng, run) -> dict:
    h = run["h"]
    return {
        "scale": rng.uniform(0.5, 1.5, size=h),
        "shift": rng.normal(scale=0.3, size=(1, h)),
        "bump": rng.normal(scale=0.2, size=h),
        "noise": [
            rng.normal(scale=0.01, size=shape)
            for shape in (
                (h, run["n"]),
                (h,),
                (h, h),
                (h,),
                (run["c"], h),
                (run["c"],),
                (run["c"],),
            )
        ],
    }


def draw_batches(rng, run) -> list:
    out = []
    for _ in run["plan"]:
        step = []
        for _ in range(3):
            X = rng.normal(size=(run["rows"], run["n"]))
            if run["loss"] == "ce":
                Y = rng.integers(0, run["c"], size=run["rows"])
            else:
                Y = rng.normal(size=(run["rows"], run["c"]))
            step.append((X, Y))
        out.append(step)
    return out


def close(a, b, what: str, msg) -> None:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, msg(f"{what}: shape {a.shape} vs torch {b.shape}")
    scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
    worst = float(np.max(np.abs(a - b), initial=0.0))
    assert worst <= TOL * scale, msg(f"{what}: {a} vs torch {b}, off by {worst:.3g}")


def compare(ours: dict, theirs: dict, k: int, msg) -> None:
    close(ours["loss"], theirs["loss"], f"step {k} loss", msg)
    if "norm" in theirs:
        close(ours["norm"], theirs["norm"], f"step {k} clipped norm", msg)
    close(ours["lr"], theirs["lr"], f"step {k} lrs", msg)
    if "last_lr" in theirs:  # (a group added since the last step: wxb's adds its lr now)
        given = len(theirs["last_lr"])
        close(ours["last_lr"][:given], theirs["last_lr"], f"step {k} get_last_lr()", msg)
    for name, q in theirs["params"].items():
        close(ours["params"][name], q, f"step {k} {name}", msg)
    for name, g in theirs["grads"].items():
        mine = ours["grads"][name]
        assert (mine is None) == (g is None), msg(f"step {k} {name}.grad: {mine} vs torch {g}")
        if g is not None:
            close(mine, g, f"step {k} {name}.grad", msg)


def same_exactly(again: dict, mine: dict, k: int, msg) -> None:
    assert again["lr"] == mine["lr"], msg(f"step {k} lrs: {again['lr']} vs {mine['lr']}")
    assert again["loss"] == mine["loss"], msg(f"step {k} loss: {again['loss']} vs {mine['loss']}")
    for name, p in mine["params"].items():
        assert np.array_equal(again["params"][name], p), msg(
            f"step {k} {name}: {again['params'][name]} vs {p}"
        )


# (a schedule stepped before the optimiser, on purpose in some runs)
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_generated_training_sequences_match_torch_and_resume_exactly(
    seeded, tmp_path, torch_default_dtype
):
    rng = seeded.rng
    for case in range(4):
        run = draw_run(rng)
        consts = draw_consts(rng, run)
        batches = draw_batches(rng, run)

        def msg(what, run=run, case=case):
            return seeded.msg(f"case {case}: {what}\nrun: {run}")

        ours = Runner(Lib(False), run, consts)
        theirs = Runner(Lib(True), run, consts, weights=ours.model)
        resumed = []  # (runner, the run it must follow, exactly or to torch's allowance)
        saved = None
        for k in range(len(run["plan"])):
            mine = ours.one_step(k, batches[k])
            torchs = theirs.one_step(k, batches[k])
            ours.step_index = theirs.step_index = k + 1
            compare(mine, torchs, k, msg)
            for runner, follows in resumed:
                again = runner.one_step(k, batches[k])
                if follows == "exactly":
                    same_exactly(again, mine, k, lambda w: msg(f"{w}, after resume"))
                elif follows == "torch":
                    into = "torch" if runner.L.torch else "wxb"
                    where = f"torch's run resumed in {into}"
                    compare(again, torchs, k, lambda w, where=where: msg(f"{w}, {where}"))
                elif follows == "by_epoch":  # the wxb twin of the torch runner after it
                    by_epoch = again
                else:
                    where = "both resumed with the schedule made at its epoch"
                    compare(by_epoch, again, k, lambda w, where=where: msg(f"{w}, {where}"))
            if k == run["save_at"]:
                path = tmp_path / f"run{case}.safetensors"
                wxb.save(ours.state(), path)
                saved = (wxb.load(path), copy.deepcopy(theirs.state()))
                ways = [(False, None, "exactly"), (False, theirs, "torch"), (True, ours, "torch")]
                added = run["add_group_at"]  # (a group added holds no initial_lr: refused)
                if run["schedule"] in RESUMABLE_BY_EPOCH and (added is None or added > k):
                    ways += [(False, None, "by_epoch"), (True, None, "by_epoch_torch")]
                for L, source, follows in ways:
                    runner = Runner(Lib(L), run, consts)
                    runner.step_index, runner.frozen = k + 1, ours.frozen
                    runner.shared_frozen = ours.shared_frozen
                    runner.schedule_steps = ours.schedule_steps
                    # (a copy each: torch's optimiser takes the state's tensors as they are)
                    own = copy.deepcopy(saved[1] if L else saved[0])
                    runner.restore(own, source, by_epoch=follows.startswith("by_epoch"))
                    resumed.append((runner, follows))
            if k == run["rollback_at"] and saved is not None:
                # back to the checkpoint in the live objects; gradients stay as they are
                ours.load(copy.deepcopy(saved[0]))
                theirs.load(copy.deepcopy(saved[1]))
                resumed = []  # they follow the run without the rollback


# -- the defects the generator found, each a direct test that failed before ------------------


def _twin_layers(rng, n: int, m: int):
    ours = nn.Linear(n, m, dtype="float64")
    theirs = torch.nn.Linear(n, m, dtype=torch.float64)
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
            p.data[...] = rng.normal(size=p.shape)
            q.copy_(torch.from_numpy(p.data.copy()))
    return ours, theirs


def _train_torch(layer, opt, sched, rng, steps: int, by_loss: bool = False) -> None:
    for _ in range(steps):
        opt.zero_grad()
        loss = (layer(torch.from_numpy(rng.normal(size=(4, layer.in_features)))) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step(loss.item()) if by_loss else sched.step()


@pytest.mark.parametrize("kind", ["plateau", "cyclic", "sequential"])
def test_a_torch_schedule_continued_in_wxb_reports_torchs_last_rates(seeded, kind):
    """scheduler_from_torch of a ReduceLROnPlateau, CyclicLR or SequentialLR left
    get_last_lr() at the fresh wxb schedule's rates (0.1 where torch's plateau had cut the
    rate to 0.00625; 0.05 for torch's 0.081 in a SequentialLR) until the next step: a
    resumed run logged rates it never used."""
    rng = seeded.rng
    ours, theirs = _twin_layers(rng, 3, 2)
    t_opt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.5)
    w_opt = wxb.optim.SGD(ours.parameters(), lr=0.1, momentum=0.5)
    if kind == "plateau":  # factor 0.5 on every step that does not improve by 10x
        t_sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            t_opt, factor=0.5, patience=0, threshold=0.9
        )
        w_sched = wxb.optim.ReduceLROnPlateau(w_opt, factor=0.5, patience=0, threshold=0.9)
        steps = int(rng.integers(3, 7))
    elif kind == "cyclic":
        up = int(rng.integers(2, 5))
        make = (torch.optim.lr_scheduler.CyclicLR, wxb.optim.CyclicLR)
        t_sched, w_sched = (
            cls(opt, base_lr=0.01, max_lr=0.1, step_size_up=up)
            for cls, opt in zip(make, (t_opt, w_opt), strict=True)
        )
        steps = int(rng.integers(1, 2 * up))  # (not back at base_lr)
    else:  # a warm-up, then a decay
        t_sched, w_sched = (
            S.SequentialLR(
                opt, [S.LinearLR(opt, start_factor=0.5, total_iters=2), S.ExponentialLR(opt, 0.9)],
                milestones=[2],
            )
            for S, opt in ((torch.optim.lr_scheduler, t_opt), (wxb.optim.lr_scheduler, w_opt))
        )  # fmt: skip
        steps = int(rng.integers(1, 6))
    fresh = w_sched.get_last_lr()
    _train_torch(theirs, t_opt, t_sched, rng, steps, by_loss=kind == "plateau")
    wxb.interop.optimizer_from_torch(t_opt, w_opt)
    wxb.interop.scheduler_from_torch(t_sched, w_sched)
    expected = t_sched.get_last_lr()
    assert expected != pytest.approx(fresh)  # (the drawn run moved the rate)
    assert w_sched.get_last_lr() == pytest.approx(expected, rel=1e-15), seeded.msg(
        f"get_last_lr() {w_sched.get_last_lr()} vs torch's {expected}"
    )


def test_a_torch_rprop_whose_groups_carry_weight_decay_continues_in_wxb(seeded):
    """Groups written once for several optimisers carry weight_decay; torch's Rprop keeps
    the key (and ignores it), and so does wxb's, but optimizer_from_torch refused the
    state as "the state of another optimiser class"."""
    rng = seeded.rng
    ours, theirs = _twin_layers(rng, 3, 2)
    groups = [  # weights decayed, biases not, as users write them for AdamW
        (
            {"params": [layer.weight], "weight_decay": 0.01},
            {"params": [layer.bias], "weight_decay": 0.0},
        )
        for layer in (ours, theirs)
    ]
    w_opt = wxb.optim.Rprop(list(groups[0]), lr=0.01)
    t_opt = torch.optim.Rprop(list(groups[1]), lr=0.01)
    sched = torch.optim.lr_scheduler.ExponentialLR(t_opt, gamma=0.9)
    _train_torch(theirs, t_opt, sched, rng, 3)
    ours.load_state_dict(theirs.state_dict())
    wxb.interop.optimizer_from_torch(t_opt, w_opt)
    X = rng.normal(size=(4, 3))
    for _ in range(3):  # the next steps are torch's
        w_opt.zero_grad()
        ((ours(X) ** 2).mean()).backward()
        w_opt.step()
        t_opt.zero_grad()
        ((theirs(torch.from_numpy(X)) ** 2).mean()).backward()
        t_opt.step()
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(
            p.data,
            q.detach().numpy(),
            rtol=1e-12,
            atol=1e-14,
            err_msg=seeded.msg("Rprop continued from torch's state"),
        )
