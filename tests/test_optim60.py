"""Optimisers written PyTorch's way (a subclass with its own step over param_groups and
state), ported by changing the imports: they step as PyTorch's, count their steps,
write the weights as the built-in step does (a predict in another thread sees them
whole), take any defaults dict, and survive fit's checkpoints."""

from __future__ import annotations

import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import wxb
import wxb.nn as nn
from wxb.errors import ConfigError
from wxb.interop import optimizer_from_torch, optimizer_to_torch, to_torch

# -- a generator of the optimisers a user writes, one text for PyTorch and for wxb ---------
TORCH_IMPORTS = """
from torch.optim.optimizer import Optimizer, required
from torch import no_grad, enable_grad, zeros_like, sqrt, maximum, clone, sign, tensor
"""
WXB_IMPORTS = """
from wxb.optim.optimizer import Optimizer, required
from wxb import no_grad, enable_grad
from numpy import zeros_like, sqrt, maximum, sign, copy as clone, asarray as tensor
"""

SGD_BODY = """
if group["weight_decay"] != 0:
    g = g + group["weight_decay"] * p.data
mom = group["momentum"]
if mom != 0:
    if {fresh}:
        buf = state["momentum_buffer"] = clone(g)
    else:
        buf = state["momentum_buffer"]
        buf *= mom
        buf += (1 - group["dampening"]) * g
    g = g + mom * buf if group["nesterov"] else buf
{target} -= lr * g
"""
ADAM_BODY = """
beta1, beta2 = group["betas"]
if {fresh}:
    state["step"] = {step_zero}
    state["exp_avg"] = zeros_like(p.data)
    state["exp_avg_sq"] = zeros_like(p.data)
    if group["amsgrad"]:
        state["max_sq"] = zeros_like(p.data)
state["step"] += 1
t = float(state["step"])
if group["weight_decay"] != 0:
    if group["decoupled"]:
        {target} *= 1 - lr * group["weight_decay"]
    else:
        g = g + group["weight_decay"] * p.data
m, v = state["exp_avg"], state["exp_avg_sq"]
m *= beta1
m += (1 - beta1) * g
v *= beta2
v += (1 - beta2) * g * g
if group["amsgrad"]:
    state["max_sq"][...] = maximum(state["max_sq"], v)
    v = state["max_sq"]
{target} -= lr / (1 - beta1**t) * m / (sqrt(v / (1 - beta2**t)) + group["eps"])
"""
SIGN_BODY = """
state["n"] = state.get("n", 0) + 1
{target} -= lr / state["n"] * sign(g)
"""


def _indent(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line + "\n" for line in text.strip("\n").splitlines())


def optimiser_source(o: dict) -> str:
    """A user's optimiser class ``Opt`` in the text both libraries run."""
    defaults = o["defaults"]
    args = ", ".join(
        f"{k}=required" if k == "lr" and o["required"] else f"{k}={v!r}"
        for k, v in defaults.items()
    )
    given = (
        f"dict({', '.join(f'{k}={k}' for k in defaults)})"
        if o["dict_call"]
        else "{" + ", ".join(f"{k!r}: {k}" for k in defaults) + "}"
    )
    fresh = "len(state) == 0" if o["len_state"] else '"momentum_buffer" not in state'
    if o["kind"] == "adam":
        fresh = "len(state) == 0" if o["len_state"] else '"step" not in state'
    body = {"sgd": SGD_BODY, "adam": ADAM_BODY, "sign": SIGN_BODY}[o["kind"]].format(
        fresh=fresh,
        target="p.data" if o["data_target"] else "p",
        step_zero="tensor(0.0)" if o["tensor_step"] else "0",
    )
    lr = 'group["lr"]' if "lr" in defaults else "0.05"  # (an optimiser with no lr in its groups)
    loop = f"""
for group in self.param_groups:
    lr = {lr}
    for p in group["params"]:
        if p.grad is None:
            continue
        g = -p.grad if group.get("maximize", False) else p.grad
        state = self.state[p]
{_indent(body, 8)}"""
    decorated = o["decorated"]
    return f"""
class Opt(Optimizer):
    def __init__(self, params, {args}):
        super().__init__(params, {given})

{"    @no_grad()" if decorated else ""}
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
{_indent(loop, 8) if decorated else "        with no_grad():" + chr(10) + _indent(loop, 12)}
        return loss
"""


def draw_options(rng: np.random.Generator) -> dict:
    flip = lambda: bool(rng.integers(2))  # noqa: E731
    kind = str(rng.choice(["sgd", "adam", "sign"]))
    if kind == "sgd":
        nesterov = flip()
        defaults = dict(
            lr=float(rng.uniform(0.01, 0.1)),
            momentum=0.9 if nesterov else float(rng.choice([0, 0.9])),
            dampening=0.0 if nesterov else float(rng.choice([0, 0.1])),
            weight_decay=float(rng.choice([0, 1e-2])),
            nesterov=nesterov,
        )
    elif kind == "adam":
        defaults = dict(
            lr=float(rng.uniform(0.001, 0.05)), betas=(0.9, 0.99), eps=1e-8,
            weight_decay=float(rng.choice([0, 1e-2])), amsgrad=flip(), decoupled=flip(),
        )  # fmt: skip
    else:
        defaults = dict(lr=0.01)
    if flip():
        defaults["maximize"] = flip()  # (its own step reads it: wxb refused True)
    if kind != "adam" and rng.integers(3) == 0:
        del defaults["lr"]  # (PyTorch takes any defaults: wxb refused one without lr)
    keys = ["dict_call", "decorated", "data_target", "len_state", "tensor_step", "groups"]
    keys += ["required"]  # (lr=required, torch.optim.optimizer's: given at construction)
    keys += ["closure", "set_to_none", "drop_grad", "save_load", "add_group", "schedule"]
    return {"kind": kind, "defaults": defaults, **{k: flip() for k in keys}}


def _run_ported(o: dict, rng: np.random.Generator, torch) -> None:
    source = optimiser_source(o)
    made_torch, made_wxb = {}, {}
    exec(TORCH_IMPORTS + source, made_torch)
    exec(WXB_IMPORTS + source, made_wxb)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).to("float64")
    twin = to_torch(model).double()
    X, y = rng.normal(size=(8, 4)), rng.normal(size=(8, 3))
    pairs = [(model, X, y, made_wxb["Opt"]), (twin, torch.tensor(X), torch.tensor(y), None)]
    pairs[1] = (*pairs[1][:3], made_torch["Opt"])

    def groups(m):
        ps = list(m.parameters())[: 3 if o["add_group"] else 4]
        if not o["groups"]:
            return ps
        second = {"params": ps[2:]}
        if "lr" in o["defaults"]:
            second["lr"] = o["defaults"]["lr"] * 2
        if "momentum" in o["defaults"]:
            second["momentum"] = 0.5
        return [{"params": ps[:2]}, second]

    def make(m, cls):
        given = {"lr": o["defaults"]["lr"]} if o["required"] and "lr" in o["defaults"] else {}
        opt = cls(groups(m), **given)
        if o["add_group"]:
            opt.add_param_group({"params": [list(m.parameters())[-1]]})
        return opt

    opts = [make(m, cls) for m, _, _, cls in pairs]
    schedules = [None, None]
    if o["schedule"] and "lr" in o["defaults"]:
        schedules = [
            wxb.optim.StepLR(opts[0], 2, 0.5),
            torch.optim.lr_scheduler.StepLR(opts[1], 2, 0.5),
        ]
    for step in range(5):
        losses = []
        for k, (m, a, b, cls) in enumerate(pairs):
            opt = opts[k]

            def closure(m=m, a=a, b=b, opt=opt):
                opt.zero_grad(set_to_none=o["set_to_none"])
                loss = ((m(a) - b) ** 2).mean()
                loss.backward()
                if o["drop_grad"]:  # (a parameter without a gradient: skipped)
                    list(m.parameters())[-1].grad = None
                return loss

            if o["closure"]:
                losses.append(opt.step(closure).item())
            else:
                closure()
                assert opt.step() is None
            if schedules[k] is not None:
                schedules[k].step()
            if o["save_load"] and step == 2 and schedules[k] is None:
                saved = opt.state_dict()
                opts[k] = make(m, cls)
                opts[k].load_state_dict(saved)
        if losses:
            assert losses[0] == pytest.approx(losses[1], rel=1e-12)
    assert opts[0].steps == 5  # (counted, saved and loaded as the built-in step's)
    for p, tp in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-13)


def test_optimisers_written_torch_way_step_as_torch(rng, seeded, torch_default_dtype):
    """Drawn optimisers (SGD with momentum, nesterov, dampening, weight decay; Adam with
    amsgrad and L2 or decoupled decay; a sign step with a count of its own), each
    written once and run by both after the imports alone: 5 steps' weights to 1e-12."""
    import torch

    for _ in range(10):
        o = draw_options(rng)
        try:
            _run_ported(o, rng, torch)
        except Exception as e:
            raise AssertionError(seeded.msg(f"{o}:\n{optimiser_source(o)}")) from e


# -- the weights' lock and the count --------------------------------------------------------
class ByHand(wxb.optim.Optimizer):
    """p.data -= lr·g, a parameter at a time with a pause between (a slow step)."""

    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group in self.param_groups:
            for p in group["params"]:
                p.data -= group["lr"] * p.grad
                time.sleep(0.001)
        return loss


class ByHandAgain(ByHand):
    def step(self, closure=None):  # (a subclass's step calling its base's: one step)
        return super().step(closure)


class StepMixin:
    def step(self, closure=None):
        for p in self.params:
            p.data -= 0.1 * p.grad


class FromMixin(StepMixin, wxb.optim.Optimizer):  # (its step from a class beside Optimizer)
    def __init__(self, params):
        super().__init__(params, {"lr": 0.1})


def test_own_step_writes_weights_whole_and_counts(rng, seeded):
    """A predict in another thread saw some parameters stepped and others not (outputs
    between two steps'), and ``steps`` stayed 0; the closure runs outside the write
    (its forward in a worker thread waited for the step that waited for it)."""
    lr = float(rng.uniform(0.05, 0.2))
    model = nn.Linear(4, 4).to("float64")
    model.weight.data[...] = 0
    model.bias.data[...] = 0
    opt = ByHandAgain(model.parameters(), lr)
    seen, done = [], threading.Event()

    def serve():
        while not done.is_set():
            seen.append(model.predict(np.ones((1, 4)))[0, 0])

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    for _ in range(12):
        for p in model.parameters():
            p.grad = -np.ones_like(p.data)  # each step: every weight and bias up by lr
        opt.step()
        time.sleep(0.002)
    done.set()
    server.join()
    steps = np.array(seen) / (5 * lr)  # whole after k steps: 4·k·lr + k·lr
    assert np.allclose(steps, np.round(steps), atol=1e-9), seeded.msg(sorted(set(steps)))
    assert opt.steps == 12 and opt.state_dict()["steps"] == 12

    X, y = rng.normal(size=(8, 4)), rng.normal(size=(8, 4))

    def closure():
        opt.zero_grad()
        with ThreadPoolExecutor(1) as pool:  # (its forward in another thread)
            out = pool.submit(model, X).result()
        loss = ((out - y) ** 2).mean()
        loss.backward()
        return loss

    result: list = []
    stepping = threading.Thread(target=lambda: result.append(opt.step(closure)), daemon=True)
    stepping.start()
    stepping.join(timeout=10)
    assert result and opt.steps == 13, "a step with a closure in another thread never ended"
    mixed = FromMixin(model.parameters())
    mixed.step()
    assert mixed.steps == 1

    class MyLBFGS(wxb.optim.LBFGS):  # (one of wxb's, subclassed: its step was counted twice)
        pass

    lbfgs = MyLBFGS(model.parameters(), max_iter=2)
    lbfgs.step(closure)
    assert lbfgs.steps == 1 and lbfgs.state_dict()["state"]


# -- defaults without lr --------------------------------------------------------------------
MOMENTUM_ONLY = """
class MomentumOnly(Optimizer):
    def __init__(self, params, momentum=0.9, maximize=False):
        super().__init__(params, dict(momentum=momentum, maximize=maximize))

    @no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = -p.grad if group["maximize"] else p.grad
                state = self.state[p]
                if "buf" not in state:
                    state["buf"] = clone(g)
                else:
                    state["buf"] *= group["momentum"]
                    state["buf"] += g
                p.data -= 0.01 * state["buf"]
"""


def test_own_step_defaults_without_lr(rng, seeded, torch_default_dtype):
    """PyTorch takes any defaults dict (momentum alone; maximize read by the step itself):
    wxb refused "lr must be a number; got None" and "maximize=True: runs with
    maximize=False". A schedule on it is refused in a line (PyTorch's: KeyError 'lr');
    fit trains with it, no rate in its history."""
    import torch

    made_torch, made_wxb = {}, {}
    exec(TORCH_IMPORTS + MOMENTUM_ONLY, made_torch)
    exec(WXB_IMPORTS + MOMENTUM_ONLY, made_wxb)
    model = nn.Linear(3, 2).to("float64")
    twin = to_torch(model).double()
    maximize = bool(rng.integers(2))
    opt = made_wxb["MomentumOnly"](model.parameters(), maximize=maximize)
    topt = made_torch["MomentumOnly"](twin.parameters(), maximize=maximize)
    assert "lr" not in opt.param_groups[0] and "lr" not in topt.param_groups[0]
    X, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    for _ in range(3):
        for m, a, b, o in ((model, X, y, opt), (twin, torch.tensor(X), torch.tensor(y), topt)):
            o.zero_grad()
            ((m(a) - b) ** 2).mean().backward()
            o.step()
    for p, tp in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(
            p.data, tp.detach().numpy(), rtol=1e-12, err_msg=seeded.msg("weights")
        )
    with pytest.raises(KeyError, match="lr"):
        torch.optim.lr_scheduler.StepLR(topt, 1)
    with pytest.raises(ConfigError, match=r"StepLR: MomentumOnly.param_groups\[0\] has no 'lr'"):
        wxb.optim.StepLR(opt, 1)
    with pytest.raises(ConfigError, match=r"lr_schedule='cosine': .* has no 'lr'"):
        wxb.fit(model, X, y, optimizer=opt, loss="mse", epochs=1, verbose=0, lr_schedule="cosine")
    history = wxb.fit(model, X, y, optimizer=opt, loss="mse", epochs=2, batch_size=3, verbose=0)
    assert "lr" not in history.history and len(history.history["loss"]) == 2
    assert opt.steps == 3 + 4


# -- fit's checkpoints ----------------------------------------------------------------------
class Heavy(wxb.optim.Optimizer):
    """Heavy-ball momentum with a count of its own and a NumPy scalar (the gradient's
    largest size so far, in the parameter's dtype), kept in its state."""

    def __init__(self, params, lr=0.05, momentum=0.9):
        super().__init__(params, dict(lr=lr, momentum=momentum))

    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                if not state:
                    state["buf"], state["n"] = np.zeros_like(p.data), 0
                    state["largest"] = np.abs(p.grad).max()
                state["buf"] *= group["momentum"]
                state["buf"] += p.grad
                state["n"] += 1
                state["largest"] = max(state["largest"], np.abs(p.grad).max())
                p.data -= group["lr"] / np.sqrt(state["n"]) * state["buf"] / state["largest"]


def test_fit_resume_keeps_own_step_state(rng, seeded):
    """Resumed from fit's checkpoint, an own step's arrays (the momentum buffer) were
    dropped (fit read back only the state names of wxb's own optimisers): the resumed
    run differed from the run not interrupted (by 0.27 in a weight). A NumPy scalar in
    its state (np.float32) failed the checkpoint: "Object of type float32 is not JSON
    serializable"."""
    X = rng.normal(size=(32, 3))
    y = X @ rng.normal(size=(3, 1))
    start = nn.Linear(3, 1).state_dict()

    def run(epochs: int, **checkpoint: object) -> tuple[nn.Module, Heavy]:
        model = nn.Linear(3, 1)
        model.load_state_dict(start)
        opt = Heavy(model.parameters())
        wxb.fit(model, X, y, optimizer=opt, loss="mse", epochs=epochs, batch_size=8,
                shuffle=False, verbose=0, **checkpoint)  # fmt: skip
        return model, opt

    whole, _ = run(4)
    folder = tempfile.mkdtemp()
    run(2, checkpoint_dir=folder)
    resumed, opt = run(4, checkpoint_dir=folder, resume=True)
    assert opt.steps == 16 and all(s["n"] == 16 for s in opt.state.values())
    np.testing.assert_allclose(
        resumed.weight.data, whole.weight.data, rtol=1e-6, err_msg=seeded.msg("weights")
    )


# -- MuonWithAdamW: a group's rule changed ----------------------------------------------------
def test_muon_with_adamw_rule_changed_counts_from_one(rng, seeded, torch_default_dtype):
    """A group moved from Muon to AdamW (use_muon=False) started AdamW's moments from zero
    but its count at Muon's steps: the first AdamW step divided by 1 − β₁⁴, not 1 − β₁
    (0.0042 from PyTorch's AdamW made then). Now that rule's first step, as PyTorch's."""
    import torch

    model = nn.Linear(4, 3).to("float64")
    opt = wxb.optim.MuonWithAdamW(model.parameters(), lr=0.01)
    for _ in range(int(rng.integers(2, 5))):
        for p in model.parameters():
            p.grad = rng.normal(size=p.shape)
        opt.step()
    W, g = model.weight.data.copy(), rng.normal(size=(3, 4))
    opt.param_groups[0]["use_muon"] = False
    model.bias.grad, model.weight.grad = None, g.copy()
    opt.step()
    tw = torch.tensor(W, requires_grad=True)
    tw.grad = torch.tensor(g)
    torch.optim.AdamW([tw], lr=0.01, weight_decay=0.01).step()
    np.testing.assert_allclose(
        model.weight.data, tw.detach().numpy(), rtol=1e-12, err_msg=seeded.msg("weights")
    )
    assert opt.state_dict()["state"][0]["step"] == 1


# -- copied and pickled ---------------------------------------------------------------------
class WithSetstate(wxb.optim.Optimizer):
    """PyTorch's idiom (its SGD's, Adam's): a group key added since, set on unpickling."""

    def __init__(self, params, lr=0.1, momentum=0.9):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=False))

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("nesterov", False)

    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                buf = self.state[p].setdefault("buf", np.zeros_like(p.data))
                buf *= group["momentum"]
                buf += p.grad
                p.data -= group["lr"] * (p.grad + buf if group["nesterov"] else buf)


def test_own_step_with_setstate_copies_and_pickles(rng, seeded):
    """super().__setstate__(state) raised AttributeError ('super' object has no attribute
    '__setstate__'): copy.deepcopy and pickle of such an optimiser failed, as they do
    not with PyTorch's base class. The copy steps on as the original."""
    import copy
    import pickle

    model = nn.Linear(3, 2).to("float64")
    opt = WithSetstate(model.parameters(), lr=float(rng.uniform(0.01, 0.1)))
    grads = [[rng.normal(size=p.shape) for p in model.parameters()] for _ in range(3)]

    def step(m, o, k):
        for p, g in zip(m.parameters(), grads[k], strict=True):
            p.grad = g.copy()
        o.step()

    step(model, opt, 0)
    del opt.param_groups[0]["nesterov"]  # (a group saved before the key existed)
    copied = copy.deepcopy((model, opt))
    pickled = pickle.loads(pickle.dumps((model, opt)))
    for k in (1, 2):
        for m, o in ((model, opt), copied, pickled):
            if k == 1:
                o.param_groups[0].setdefault("nesterov", False)
            step(m, o, k)
    for m, o in (copied, pickled):
        assert o.steps == 3 and o.param_groups[0]["nesterov"] is False
        for p, q in zip(m.parameters(), model.parameters(), strict=True):
            np.testing.assert_array_equal(p.data, q.data, err_msg=seeded.msg("copy"))


# -- PyTorch's saved state, loaded into the port --------------------------------------------
ADAMISH = """
class Adamish(Optimizer):
    def __init__(self, params, lr=0.01, betas=(0.9, 0.99), eps=1e-8):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = tensor(0.0)
                    state["moments"] = [zeros_like(p.data), zeros_like(p.data)]
                state["step"] += 1
                t, (m, v) = float(state["step"]), state["moments"]
                m *= beta1
                m += (1 - beta1) * p.grad
                v *= beta2
                v += (1 - beta2) * p.grad * p.grad
                denom = sqrt(v / (1 - beta2**t)) + group["eps"]
                p.data -= group["lr"] / (1 - beta1**t) * m / denom
"""


def test_own_step_loads_torch_saved_state(rng, seeded, torch_default_dtype):
    """The port's load_state_dict kept PyTorch's tensors in its state (a user's training
    moved from torch, its checkpoint loaded as is): the next step raised "unsupported
    operand type(s) for -=: 'numpy.ndarray' and 'Tensor'". As PyTorch's load casts a
    tensor to the parameter's dtype (but 'step', kept), they load as NumPy arrays, and
    the steps go on as PyTorch's."""
    import torch

    made_torch, made_wxb = {}, {}
    exec(TORCH_IMPORTS + ADAMISH, made_torch)
    exec(WXB_IMPORTS + ADAMISH, made_wxb)
    model = nn.Linear(3, 2).to("float64")
    twin = to_torch(model).double()
    X, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    Xt, yt = torch.tensor(X), torch.tensor(y)
    topt = made_torch["Adamish"](twin.parameters())

    def backward(m, a, b, o):
        o.zero_grad()
        ((m(a) - b) ** 2).mean().backward()

    for _ in range(2):
        backward(twin, Xt, yt, topt)
        topt.step()
    for p, tp in zip(model.parameters(), twin.parameters(), strict=True):
        p.data[...] = tp.detach().numpy()
    opt = made_wxb["Adamish"](model.parameters())
    opt.load_state_dict(topt.state_dict())
    assert all(type(m) is np.ndarray for m in opt.state[model.weight]["moments"])
    again = made_wxb["Adamish"](model.parameters())  # (float32 saved: the parameter's dtype)
    again.load_state_dict({**opt.state_dict(), "state": {0: {"moments": [np.ones((2, 3), "f4")]}}})
    assert again.state[model.weight]["moments"][0].dtype == np.float64
    for _ in range(3):
        backward(model, X, y, opt)
        opt.step()
        backward(twin, Xt, yt, topt)
        topt.step()
    for p, tp in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, err_msg=seeded.msg("w"))
    # wxb.interop's pair took no optimiser of one's own: "PyTorch's optimiser is Adamish,
    # the wxb one Adamish; the state of one is not the other's"
    twin = to_torch(model).double()
    topt = optimizer_to_torch(opt, made_torch["Adamish"](twin.parameters()))
    opt = optimizer_from_torch(topt, made_wxb["Adamish"](model.parameters()))
    for _ in range(2):
        backward(model, X, y, opt)
        opt.step()
        backward(twin, Xt, yt, topt)
        topt.step()
    for p, tp in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, err_msg=seeded.msg("w"))


def test_torch_optim_optimizer_names_port():
    """``from torch.optim.optimizer import Optimizer, required`` (an optimiser written for
    torch, lr=required) had no wxb module to port to; a group without the required value
    is refused in PyTorch's words."""
    import torch

    source = """
class Plain(Optimizer):
    def __init__(self, params, lr=required):
        super().__init__(params, dict(lr=lr))

    def step(self, closure=None):
        pass
"""
    for imports, model in ((TORCH_IMPORTS, torch.nn.Linear(2, 1)), (WXB_IMPORTS, nn.Linear(2, 1))):
        made = {}
        exec(imports + source, made)
        with pytest.raises(ValueError, match=r"didn't specify a value of required .* lr"):
            made["Plain"](model.parameters())
        opt = made["Plain"]([{"params": [model.weight], "lr": 0.5}, {"params": [model.bias]}], 0.1)
        assert [g["lr"] for g in opt.param_groups] == [0.5, 0.1]
