"""A PyTorch user's code ported as written: an optimiser of one's own (PyTorch's way: a
defaults dict, its own step over param_groups and state[p]), and ids to an Embedding."""

from __future__ import annotations

import math

import numpy as np
import pytest

import wxb
import wxb.nn as nn
from wxb.errors import ConfigError, DataError
from wxb.interop import to_torch
from wxb.optim import Optimizer


class WxbMomentumSGD(Optimizer):
    """PyTorch's docs' SGD with momentum, ported line by line (NumPy's in-place ops)."""

    def __init__(self, params, lr=0.1, momentum=0.9):
        defaults = dict(lr=lr, momentum=momentum)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with wxb.enable_grad():
                loss = closure()
        with wxb.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = p.grad.copy()
                    else:
                        buf = state["momentum_buffer"]
                        buf *= group["momentum"]
                        buf += p.grad
                    p.data -= group["lr"] * state["momentum_buffer"]
        return loss


class WxbAdam(Optimizer):
    """Adam as Kingma & Ba's Algorithm 1 writes it, ported line by line."""

    def __init__(self, params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with wxb.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = np.zeros_like(p.data)
                    state["exp_avg_sq"] = np.zeros_like(p.data)
                state["step"] += 1
                m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
                m *= beta1
                m += (1 - beta1) * p.grad
                v *= beta2
                v += (1 - beta2) * p.grad * p.grad
                denom = np.sqrt(v) / math.sqrt(1 - beta2**t) + group["eps"]
                p.data -= group["lr"] / (1 - beta1**t) * m / denom
        return loss


def torch_ports():
    import torch

    class TorchMomentumSGD(torch.optim.Optimizer):
        def __init__(self, params, lr=0.1, momentum=0.9):
            defaults = dict(lr=lr, momentum=momentum)
            super().__init__(params, defaults)

        @torch.no_grad()
        def step(self, closure=None):
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = p.grad.clone()
                    else:
                        state["momentum_buffer"].mul_(group["momentum"]).add_(p.grad)
                    p.data.add_(state["momentum_buffer"], alpha=-group["lr"])
            return loss

    class TorchAdam(torch.optim.Optimizer):
        def __init__(self, params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8):
            super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

        @torch.no_grad()
        def step(self, closure=None):
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            for group in self.param_groups:
                beta1, beta2 = group["betas"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if not state:
                        state["step"] = 0
                        state["exp_avg"] = torch.zeros_like(p)
                        state["exp_avg_sq"] = torch.zeros_like(p)
                    state["step"] += 1
                    m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
                    m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                    v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                    denom = v.sqrt() / math.sqrt(1 - beta2**t) + group["eps"]
                    p.data.addcdiv_(m, denom, value=-group["lr"] / (1 - beta1**t))
            return loss

    return {"sgd": TorchMomentumSGD, "adam": TorchAdam}


@pytest.mark.parametrize("rule", ["sgd", "adam"])
def test_own_optimizer_written_torch_way_trains_as_torch(rule, rng, seeded, torch_default_dtype):
    """The defaults dict was refused ("lr must be a number; got {'lr': 0.1, …}"), and
    state[p] refused the keys a step of one's own writes."""
    import torch

    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).to("float64")
    twin = to_torch(model).double()
    X, y = rng.normal(size=(16, 4)), rng.normal(size=(16, 3))
    Xt, yt = torch.tensor(X), torch.tensor(y)
    lr = float(rng.uniform(0.01, 0.1))
    opt = {"sgd": WxbMomentumSGD, "adam": WxbAdam}[rule](model.parameters(), lr=lr)
    topt = torch_ports()[rule](twin.parameters(), lr=lr)

    def loss_of(m, a, b, optimizer):
        def closure():
            optimizer.zero_grad()
            loss = ((m(a) - b) ** 2).mean()
            loss.backward()
            return loss

        return closure

    for step in range(5):
        if step == 4:  # step(closure): the closure's loss, the same update
            loss = opt.step(loss_of(model, X, y, opt))
            tloss = topt.step(loss_of(twin, Xt, yt, topt))
            np.testing.assert_allclose(
                float(loss), tloss.item(), rtol=1e-12, err_msg=seeded.msg("closure loss")
            )
        else:
            loss_of(model, X, y, opt)()
            loss_of(twin, Xt, yt, topt)()
            assert opt.step() is None
            topt.step()
    for p, tp in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(
            p.data, tp.detach().numpy(), rtol=1e-10, atol=1e-13, err_msg=seeded.msg(rule)
        )
    if rule == "adam":  # PyTorch's own Adam agrees with both ports (the rule is Adam's)
        again = to_torch(model).double()  # (any start: compare one step)
        mine = torch_ports()["adam"](again.parameters(), lr=lr)
        ref_model = to_torch(model).double()
        ref = torch.optim.Adam(ref_model.parameters(), lr=lr)
        for m, o in ((again, mine), (ref_model, ref)):
            loss_of(m, Xt, yt, o)()
            o.step()
        for a, b in zip(again.parameters(), ref_model.parameters(), strict=True):
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12)

    # its state saved and loaded as PyTorch's: by parameter index, copies
    saved = opt.state_dict()
    assert saved["param_groups"][0]["lr"] == lr and saved["param_groups"][0]["params"] == [
        0,
        1,
        2,
        3,
    ]
    assert sorted(saved["state"]) == [0, 1, 2, 3]
    again = type(opt)(model.parameters(), lr=0.5)
    again.load_state_dict(saved)
    assert again.param_groups[0]["lr"] == lr
    for p, tp in zip(model.parameters(), twin.parameters(), strict=True):
        for key, value in topt.state[tp].items():
            mine = again.state[p][key]
            np.testing.assert_allclose(mine, np.asarray(value), rtol=1e-10, atol=1e-13)
            if isinstance(mine, np.ndarray):
                assert not np.shares_memory(mine, opt.state[p][key])
    # a schedule sets its groups' lr, as PyTorch's
    wxb.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5).step()
    assert opt.param_groups[0]["lr"] == pytest.approx(lr / 2)


def test_own_optimizer_defaults_dict_beside_keywords_refused():
    model = nn.Linear(2, 1)
    with pytest.raises(ConfigError, match=r"one dict .* or as keywords, not both"):
        Optimizer(model.parameters(), {"lr": 0.1}, momentum=0.9)


def test_bool_ids_refused_by_fit_and_evaluate(rng):
    """True/False went through fit and evaluate as ids 1 and 0 (model(X) and predict
    refused them); uint8 ids, which torch refuses, are kept: they look up the same rows."""
    model = nn.Sequential(nn.Embedding(4, 3), nn.Flatten(), nn.Linear(6, 2))
    X, y = rng.random((12, 2)) > 0.5, rng.integers(0, 2, 12)
    with pytest.raises(DataError, match="ids are integers, not bools"):
        wxb.fit(model, X, y, epochs=1, verbose=0)
    with pytest.raises(DataError, match="ids are integers, not bools"):
        wxb.evaluate(model, X, y)
    with pytest.raises(DataError, match="validation X: ids are integers, not bools"):
        wxb.fit(model, X.astype(np.int64), y, epochs=1, verbose=0, validation_data=(X, y))
    ids = rng.integers(0, 4, (5, 2))
    assert np.array_equal(model.predict(ids.astype(np.uint8)), model.predict(ids.astype(np.int64)))
