"""The last gaps of wxb's optimisers against PyTorch's: load_state_dict replaces each group
by the saved one (then ``__setstate__``), ``print(opt)`` shows the groups, the step and
state-dict hooks, and a step that raised is counted as the weights it wrote. Each
optimiser of one's own is written once, for both libraries."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import wxb
import wxb.nn as nn
from wxb.interop import to_torch

TORCH_IMPORTS = (
    "from torch.optim.optimizer import Optimizer\nfrom torch import no_grad, enable_grad\n"
)
WXB_IMPORTS = "from wxb.optim.optimizer import Optimizer\nfrom wxb import no_grad, enable_grad\n"

# momentum came in a later version of this optimiser: its __setstate__ gives groups saved
# before it the old behaviour (PyTorch's idiom, as its SGD's setdefault("nesterov", False))
MOMENTUM_SGD = """
class Mom(Optimizer):
    def __init__(self, params, lr=0.05, momentum=0.9, fail_after=None):
        super().__init__(params, dict(lr=lr, momentum=momentum))
        self.fail_after = fail_after

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("momentum", 0.0)

    @no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        done = 0
        for group in self.param_groups:
            for p in group["params"]:
                if done == self.fail_after:
                    raise ArithmeticError("the step failed half-way")
                state = self.state[p]
                buf = state.setdefault("buf", 0 * p.grad)
                buf *= group["momentum"]
                buf += p.grad
                p.data -= group["lr"] * buf
                done += 1
        return loss
"""


def _made(torch) -> tuple[type, type]:
    made_torch, made_wxb = {}, {}
    exec(TORCH_IMPORTS + MOMENTUM_SGD, made_torch)
    exec(WXB_IMPORTS + MOMENTUM_SGD, made_wxb)
    return made_wxb["Mom"], made_torch["Mom"]


def _pair(rng: np.random.Generator):
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to("float64")
    twin = to_torch(model).double()
    X, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    return model, twin, X, y


def _backward(model, X, y, opt) -> None:
    opt.zero_grad()
    ((model(X) - y) ** 2).mean().backward()


def _assert_same_weights(model, twin, seeded, what: str) -> None:
    for p, tp in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(
            p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=seeded.msg(what)
        )


def test_load_replaces_groups_then_setstate_as_torch(rng, seeded):
    """The saved groups were merged into the current ones, and ``__setstate__`` not
    called: a group saved before the optimiser had ``momentum`` kept the 0.9 it was made
    with, where PyTorch's load gives it the saved group (then its __setstate__, 0.0), so
    the weights went apart; a key added since the save stayed (a built-in's too)."""
    import torch

    Mine, Theirs = _made(torch)
    model, twin, X, y = _pair(rng)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    lr = float(rng.uniform(0.01, 0.1))
    both = [(model, X, y, Mine), (twin, Xt, yt, Theirs)]
    opts = [cls(m.parameters(), lr=lr) for m, _, _, cls in both]
    for (m, a, b, _), opt in zip(both, opts, strict=True):
        _backward(m, a, b, opt)
        opt.step()
    for k, ((m, _, _, cls), opt) in enumerate(zip(both, opts, strict=True)):
        saved = opt.state_dict()
        del saved["param_groups"][0]["momentum"]  # (saved by the version before momentum)
        opts[k] = cls(m.parameters(), lr=lr, momentum=0.9)
        opts[k].param_groups[0]["note"] = "added since"
        opts[k].load_state_dict(saved)
        assert opts[k].param_groups[0]["momentum"] == 0.0, type(opts[k]).__module__
        assert "note" not in opts[k].param_groups[0]
    for _ in range(3):
        for (m, a, b, _), opt in zip(both, opts, strict=True):
            _backward(m, a, b, opt)
            opt.step()
    _assert_same_weights(model, twin, seeded, "after the load")
    # the built-in ones: a key set since the save is gone, as PyTorch's
    built_in = [
        wxb.optim.Adam(model.parameters(), lr=lr),
        torch.optim.Adam(twin.parameters(), lr=lr),
        wxb.optim.SGD(model.parameters(), lr=lr, momentum=0.5),
        torch.optim.SGD(twin.parameters(), lr=lr, momentum=0.5),
        wxb.optim.LBFGS(model.parameters(), lr=lr),
        torch.optim.LBFGS(twin.parameters(), lr=lr),
    ]
    for opt in built_in:
        saved = opt.state_dict()
        opt.param_groups[0]["note"] = 1
        opt.load_state_dict(saved)
        assert "note" not in opt.param_groups[0], type(opt)


# a built-in's keys that PyTorch's __setstate__ gives a group saved before them, and the
# settings (not those defaults) the optimiser loading it is made with
SAVED_BEFORE = {
    "SGD": ({"nesterov"}, dict(momentum=0.9, nesterov=True)),
    "RMSprop": ({"momentum", "centered"}, dict(momentum=0.5, centered=True)),
    "NAdam": ({"decoupled_weight_decay"}, dict(weight_decay=0.1, decoupled_weight_decay=True)),
    "RAdam": ({"decoupled_weight_decay"}, dict(weight_decay=0.1, decoupled_weight_decay=True)),
    "ASGD": ({"maximize"}, dict(maximize=True)),
}


@pytest.mark.parametrize("name", sorted(SAVED_BEFORE))
def test_builtin_loads_group_saved_before_a_key_as_torch(name, rng, seeded, torch_default_dtype):
    """A group saved before a key existed (PyTorch's SGD state without nesterov) was
    refused, 'nesterov must be True or False; got None'; PyTorch's __setstate__ gives it
    the old default, and the run goes on from there."""
    import torch

    dropped, settings = SAVED_BEFORE[name]
    model, twin, X, y = _pair(rng)
    lr = float(rng.uniform(0.001, 0.01))
    both = [(model, X, y, getattr(wxb.optim, name)), (twin, *map(torch.tensor, (X, y)), None)]
    both[1] = (*both[1][:3], getattr(torch.optim, name))
    opts = [cls(m.parameters(), lr=lr, **settings) for m, _, _, cls in both]
    for step in range(4):
        for k, (m, a, b, cls) in enumerate(both):
            if step == 2:
                saved = opts[k].state_dict()
                for key in dropped:
                    del saved["param_groups"][0][key]
                opts[k] = cls(m.parameters(), lr=lr, **settings)
                opts[k].load_state_dict(saved)
            _backward(m, a, b, opts[k])
            opts[k].step()
    _assert_same_weights(model, twin, seeded, name)


def test_print_shows_groups_as_torch(rng):
    """``print(opt)`` of one's own gave ``<Mom object at 0x…>`` (and of a built-in
    ``<wxb.optim.Adam object at 0x…>``); PyTorch's prints the class and each group's
    settings, sorted, its params left out."""
    import torch

    Mine, Theirs = _made(torch)
    model, twin, _, _ = _pair(rng)
    lr, momentum = float(rng.uniform(0.01, 0.1)), float(rng.uniform(0, 1))

    def groups(m):
        first, rest = list(m.parameters())[:2], list(m.parameters())[2:]
        return [{"params": first, "name": "first"}, {"params": rest, "lr": lr * 2}]

    mine, theirs = Mine(groups(model), lr, momentum), Theirs(groups(twin), lr, momentum)
    assert repr(mine) == repr(theirs) and str(mine) == str(theirs)
    assert repr(mine).startswith("Mom (\nParameter Group 0\n    lr: ")
    betas = (float(rng.uniform(0.8, 0.9)), float(rng.uniform(0.9, 0.999)))
    settings = dict(lr=lr, betas=betas, eps=1e-7, weight_decay=float(rng.uniform(0, 0.1)))
    mine = wxb.optim.Adam(model.parameters(), **settings)
    theirs = torch.optim.Adam(twin.parameters(), **settings)
    lines = repr(mine).splitlines()
    assert lines[:2] == ["Adam (", "Parameter Group 0"] and lines[-1] == ")"
    assert set(lines) <= set(repr(theirs).splitlines())  # (torch's adds its own flags)
    assert len(lines) == 2 + len(settings) + 1


def test_step_and_state_dict_hooks_as_torch(rng, seeded):
    """``register_step_pre_hook`` and the others were missing (AttributeError). The same
    hooks on wxb's and PyTorch's optimisers (a built-in, one's own) see the same calls:
    a pre-hook giving the step a closure, a post-hook, a handle's remove(); the state
    dict's hooks adding an entry and taking it out again before the load."""
    import torch

    Mine, Theirs = _made(torch)
    lr = float(rng.uniform(0.01, 0.1))
    for kind in ("built-in", "own"):
        model, twin, X, y = _pair(rng)
        Xt, yt = torch.tensor(X), torch.tensor(y)
        if kind == "own":
            opts = [Mine(model.parameters(), lr=lr), Theirs(twin.parameters(), lr=lr)]
        else:
            opts = [
                wxb.optim.SGD(model.parameters(), lr=lr, momentum=0.9),
                torch.optim.SGD(twin.parameters(), lr=lr, momentum=0.9),
            ]
        events, losses = [[], []], [[], []]
        for k, (m, a, b) in enumerate(((model, X, y), (twin, Xt, yt))):
            opt, seen = opts[k], events[k]

            def closure(m=m, a=a, b=b, opt=opt):
                opt.zero_grad()
                loss = ((m(a) - b) ** 2).mean()
                loss.backward()
                return loss

            def pre(o, args, kwargs, closure=closure, seen=seen, me=opt):
                assert o is me and args[0] is me
                seen.append(("pre", len(args), sorted(kwargs)))
                return args[:1], {"closure": closure}  # (PyTorch's (new_args, new_kwargs))

            def post(o, args, kwargs, seen=seen):
                seen.append(("post", len(args), sorted(kwargs)))

            handles = [opt.register_step_pre_hook(pre), opt.register_step_post_hook(post)]
            for _ in range(2):
                losses[k].append(opt.step().item())
            handles[0].remove()
            closure()
            assert opt.step() is None
            with opt.register_state_dict_post_hook(lambda o, sd: {**sd, "extra": 1}):
                opt.register_state_dict_pre_hook(lambda o, seen=seen: seen.append("sd pre"))
                saved = opt.state_dict()
            assert saved["extra"] == 1 and "extra" not in opt.state_dict()

            def drop_extra(o, sd, seen=seen):
                seen.append(("load pre", sorted(sd)))
                return {key: v for key, v in sd.items() if key != "extra"}

            opt.register_load_state_dict_pre_hook(drop_extra)
            opt.register_load_state_dict_post_hook(lambda o, seen=seen: seen.append("loaded"))
            opt.register_load_state_dict_pre_hook(
                lambda o, sd, seen=seen: seen.append("first"), prepend=True
            )
            opt.load_state_dict(saved)
            closure()
            opt.step()
            copy.deepcopy(opt).state_dict()  # (copied without its hooks, as PyTorch's)
        assert events[0] == [  # ('steps' is wxb's alone)
            e if e[0] != "load pre" else ("load pre", sorted([*e[1], "steps"])) for e in events[1]
        ]
        # two hooked steps, one with the post-hook alone, two state_dict() calls, a load's
        # three hooks, a step; the copy's state_dict() none
        assert len(events[0]) == 2 * 2 + 1 + 2 + 3 + 1, str(events[0])
        np.testing.assert_allclose(losses[0], losses[1], rtol=1e-12, err_msg=seeded.msg(kind))
        _assert_same_weights(model, twin, seeded, kind)


def test_step_that_raised_is_counted_as_it_wrote(rng, seeded):
    """A step of one's own that raised half-way (some weights written) was not counted,
    where the built-in one counts before it writes: a resume from there read one step
    fewer than the weights had. Now both count a step once it may have written; one
    whose closure raised wrote nothing and is not counted (LBFGS's was)."""
    import torch

    Mine, Theirs = _made(torch)
    model, twin, X, y = _pair(rng)
    fail_after = int(rng.integers(1, 4))
    mine = Mine(model.parameters(), fail_after=fail_after)
    theirs = Theirs(twin.parameters(), fail_after=fail_after)
    _backward(model, X, y, mine)
    _backward(twin, torch.tensor(X), torch.tensor(y), theirs)
    for opt in (mine, theirs):
        with pytest.raises(ArithmeticError, match="half-way"):
            opt.step()
    assert mine.steps == 1
    _assert_same_weights(model, twin, seeded, "the first parameters written")

    def failing():
        raise KeyError("no batch")

    before = [p.data.copy() for p in model.parameters()]
    built_in = [wxb.optim.SGD(model.parameters(), lr=0.1), wxb.optim.LBFGS(model.parameters())]
    for opt in (Mine(model.parameters()), *built_in):
        with pytest.raises(KeyError, match="no batch"):
            opt.step(failing)
        assert opt.steps == 0, type(opt).__name__
    for p, old in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p.data, old)
