"""A Module subclass driven as a PyTorch user drives it, beside the same model in PyTorch.

Each run draws a model of one's own — a stem, a ModuleList of blocks, an inner module
with a BatchNorm1d, a non-persistent buffer and a parameter registered as None, a
ModuleDict of heads, a ParameterList of scales and a ParameterDict of offsets — builds
its twin in torch.nn (float64, the same weights), and then applies to both, in a random
order between optimiser steps (SGD with momentum, or Adam), the edits a user makes:
containers appended to, extended, inserted into, deleted from by index and by slice,
set by index or name, updated and popped; a submodule registered under a second name,
a weight tied between two layers, a weight replaced by a new Parameter after the
optimiser was made (the optimiser keeps stepping the old one, in both), a submodule
frozen or unfrozen, one submodule put in eval or train mode, ``apply(init)``, a
``float()``/``double()`` round trip (parameters keep their identity), a state loaded
with ``strict=False``, a ``copy.deepcopy`` that keeps the ties, ``zero_grad`` with
``set_to_none`` either way. After each edit the listings (named_modules with and
without duplicates, named_parameters with a prefix and recurse=False, children,
modules, get_submodule/get_parameter, state_dict's keys and values) must be PyTorch's,
and after each step the loss, every gradient, every weight, the buffers and the
parameters each optimiser holds (those no longer in the model too).
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn as tnn

import wxb
from wxb import nn
from wxb.optim import SGD, Adam

# float64 on both sides, the same operations in a different summation order: a few ulps
# per operation, grown by at most a few dozen steps of a small network (the relative
# norm of the difference, as test_module_api measures it)
TOLERANCE = 1e-9


def forward(self, x):
    """One forward for both libraries' classes (their APIs agree on all it uses)."""
    h = self.stem(x)
    for i, block in enumerate(self.blocks):
        h = block(h) * self.scales[i % len(self.scales)]
    h = self.inner(h)
    out = None
    for head in self.heads.values():
        out = head(h) if out is None else out + head(h)
    for offset in self.offsets.values():
        out = out + offset
    return out


def inner_forward(self, h):
    self.calls += 1
    h = self.norm(h)
    if self.gate is not None:
        h = h * self.gate
    return h


class Inner(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(width, dtype="float64")
        self.register_buffer("calls", np.zeros(1), persistent=False)
        self.register_parameter("gate", None)

    forward = inner_forward


class TorchInner(tnn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = tnn.BatchNorm1d(width, dtype=torch.float64)
        self.register_buffer("calls", torch.zeros(1, dtype=torch.float64), persistent=False)
        self.register_parameter("gate", None)

    forward = inner_forward


class Net(nn.Module):
    def __init__(self, stem: nn.Module, width: int) -> None:
        super().__init__()
        self.stem = stem
        self.blocks = nn.ModuleList()
        self.inner = Inner(width)
        self.heads = nn.ModuleDict()
        self.scales = nn.ParameterList()
        self.offsets = nn.ParameterDict()

    forward = forward


class TorchNet(tnn.Module):
    def __init__(self, stem: tnn.Module, width: int) -> None:
        super().__init__()
        self.stem = stem
        self.blocks = tnn.ModuleList()
        self.inner = TorchInner(width)
        self.heads = tnn.ModuleDict()
        self.scales = tnn.ParameterList()
        self.offsets = tnn.ParameterDict()

    forward = forward


# ---------------------------------------------------------------------------------
# Twins
# ---------------------------------------------------------------------------------
def t64(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(values, dtype=np.float64))


def dense(rng, fan_in: int, fan_out: int) -> tuple[nn.Dense, tnn.Linear]:
    bias = bool(rng.random() < 0.8)
    ours = nn.Dense(fan_in, fan_out, bias, dtype="float64", seed=int(rng.integers(1 << 62)))
    theirs = tnn.Linear(fan_in, fan_out, bias, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(t64(ours.weight.data))
        if bias:
            ours.bias.data[...] = rng.normal(scale=0.3, size=fan_out)
            theirs.bias.copy_(t64(ours.bias.data))
    return ours, theirs


def block(rng, width: int) -> tuple[nn.Sequential, tnn.Sequential]:
    ours, theirs = dense(rng, width, width)
    model = nn.Sequential(ours, nn.Tanh())  # (wxb keys a Sequential's layers by name)
    return model, tnn.Sequential(
        OrderedDict(zip(model._modules, [theirs, tnn.Tanh()], strict=True))
    )


def parameter(rng, size: int) -> tuple[nn.Parameter, tnn.Parameter]:
    values = 1 + 0.2 * rng.normal(size=size)
    return nn.Parameter(values.copy()), tnn.Parameter(t64(values))


class Pair:
    """The wxb model and its PyTorch twin, with their sizes and optimisers."""

    def __init__(self, rng) -> None:
        self.width_in, self.width, self.outputs = (int(w) for w in rng.integers(2, 6, size=3))
        stem, their_stem = dense(rng, self.width_in, self.width)
        self.ours, self.theirs = Net(stem, self.width), TorchNet(their_stem, self.width)
        for _ in range(int(rng.integers(1, 4))):
            self.add(rng, "blocks", block(rng, self.width))
        for key in rng.permutation(["a", "b", "c"])[: int(rng.integers(1, 4))]:
            ours, theirs = dense(rng, self.width, self.outputs)
            self.ours.heads[key], self.theirs.heads[key] = ours, theirs
        for _ in range(int(rng.integers(1, 3))):
            self.add(rng, "scales", parameter(rng, self.width))
        for key in ("p", "q")[: int(rng.integers(1, 3))]:
            ours, theirs = parameter(rng, self.outputs)
            self.ours.offsets[key], self.theirs.offsets[key] = ours, theirs
        with torch.no_grad():  # BatchNorm's γ, β and running statistics, not the defaults
            for name in ("weight", "bias"):
                values = rng.normal(scale=0.3, size=self.width) + (name == "weight")
                self.ours.inner.norm.get_parameter(name).data[...] = values
                self.theirs.inner.norm.get_parameter(name).copy_(t64(values))
            for name, values in (
                ("running_mean", rng.normal(size=self.width)),
                ("running_var", rng.uniform(0.5, 2, size=self.width)),
            ):
                self.ours.inner.norm.get_buffer(name)[...] = values
                self.theirs.inner.norm.get_buffer(name).copy_(t64(values))
        self.kind = str(rng.choice(["sgd", "adam"]))
        # rates at which a dozen steps stay tame (a block applied several times, its
        # scales multiplied, grew weights tenfold at 0.03, and rounding with them)
        self.lr = float(rng.uniform(0.002, 0.01)) if self.kind == "sgd" else 0.005
        decay = float(rng.choice([0.0, 0.01]))
        if self.kind == "sgd":
            momentum = float(rng.choice([0.0, 0.9]))
            nesterov = bool(momentum and rng.random() < 0.5)
            self.settings = {"momentum": momentum, "nesterov": nesterov, "weight_decay": decay}
        else:
            self.settings = {"weight_decay": decay}  # (amsgrad: refused in one line)
        self.groups = bool(rng.random() < 0.5)
        self.new_optimisers()

    def add(self, rng, container: str, pair: tuple) -> None:
        getattr(self.ours, container).append(pair[0])
        getattr(self.theirs, container).append(pair[1])

    def new_optimisers(self) -> None:
        """The heads in a group of their own half the time, at another rate."""
        ours, theirs = self.ours, self.theirs
        if self.groups:
            heads = {id(p) for p in ours.heads.parameters()}
            their_heads = {id(p) for p in theirs.heads.parameters()}
            rest = [p for p in ours.parameters() if id(p) not in heads]
            their_rest = [p for p in theirs.parameters() if id(p) not in their_heads]
            params = [{"params": ours.heads.parameters(), "lr": self.lr / 2}]
            their_params = [{"params": list(theirs.heads.parameters()), "lr": self.lr / 2}]
            if rest:
                params.append({"params": rest})
                their_params.append({"params": their_rest})
        else:
            params, their_params = ours.parameters(), list(theirs.parameters())
        if self.kind == "sgd":
            self.opt = SGD(params, self.lr, **self.settings)
            self.their_opt = torch.optim.SGD(their_params, self.lr, **self.settings)
        else:
            self.opt = Adam(params, self.lr, **self.settings)
            self.their_opt = torch.optim.Adam(their_params, self.lr, **self.settings)

    def submodule_paths(self) -> list[str]:
        return [path for path, _ in self.theirs.named_modules()]


# ---------------------------------------------------------------------------------
# Edits, each the same on both sides
# ---------------------------------------------------------------------------------
def edit_blocks(pair: Pair, rng) -> str:
    ours, theirs = pair.ours.blocks, pair.theirs.blocks
    size = len(ours)
    choices = ["append", "extend", "insert", "setitem", "alias"]
    choices += ["del index", "del slice"] if size > 1 else []
    choice = str(rng.choice(choices))
    if choice == "append":
        new = block(rng, pair.width)
        ours.append(new[0])
        theirs.append(new[1])
    elif choice == "extend":
        new = [block(rng, pair.width) for _ in range(2)]
        ours.extend([n[0] for n in new])
        theirs.extend([n[1] for n in new])
    elif choice == "insert":
        index = int(rng.integers(0, size + 1))  # (PyTorch's insert misplaces negative ones)
        new = block(rng, pair.width)
        ours.insert(index, new[0])
        theirs.insert(index, new[1])
    elif choice == "setitem":
        index = int(rng.integers(-size, size))
        new = block(rng, pair.width)
        ours[index], theirs[index] = new
    elif choice == "alias":  # a block already held, at a second index
        index = int(rng.integers(size))
        ours.append(ours[index])
        theirs.append(theirs[index])
    elif choice == "del index":
        index = int(rng.integers(-size, size))
        del ours[index]
        del theirs[index]
    else:
        start = int(rng.integers(0, size - 1))
        stop = int(rng.integers(start + 1, size))  # (at least one block stays)
        del ours[start:stop]
        del theirs[start:stop]
    return f"blocks {choice}"


def edit_heads(pair: Pair, rng) -> str:
    ours, theirs = pair.ours.heads, pair.theirs.heads
    keys = list(ours.keys())
    choices = ["update", "setitem", "alias"] + (["pop"] if len(keys) > 1 else [])
    choice = str(rng.choice(choices))
    if choice == "update":
        names = [f"h{int(rng.integers(100))}", str(rng.choice(keys))]
        made = {key: dense(rng, pair.width, pair.outputs) for key in names}
        ours.update({k: v[0] for k, v in made.items()})
        theirs.update({k: v[1] for k, v in made.items()})
    elif choice == "setitem":
        key = str(rng.choice([*keys, "new"]))
        ours[key], theirs[key] = dense(rng, pair.width, pair.outputs)
    elif choice == "alias":  # a head held under a second name
        key, new = str(rng.choice(keys)), f"also{int(rng.integers(100))}"
        ours[new], theirs[new] = ours[key], theirs[key]
    else:
        key = str(rng.choice(keys))
        assert isinstance(ours.pop(key), nn.Dense)
        theirs.pop(key)
    return f"heads {choice}"


def edit_parameters(pair: Pair, rng) -> str:
    choice = str(rng.choice(["scales append", "scales setitem", "scales extend", "scales shared",
                             "scales a bias", "offsets update", "offsets setitem",
                             "offsets a bias", "offsets pop"]))  # fmt: skip
    scales, their_scales = pair.ours.scales, pair.theirs.scales
    offsets, their_offsets = pair.ours.offsets, pair.theirs.offsets
    if choice == "scales append":
        new = parameter(rng, pair.width)
        scales.append(new[0])
        their_scales.append(new[1])
    elif choice == "scales setitem":
        index = int(rng.integers(-len(scales), len(scales)))
        scales[index], their_scales[index] = parameter(rng, pair.width)
    elif choice == "scales extend":
        new = [parameter(rng, pair.width) for _ in range(2)]
        scales.extend([n[0] for n in new])
        their_scales.extend([n[1] for n in new])
    elif choice == "scales shared":  # a parameter held at a second index
        index = int(rng.integers(len(scales)))
        scales.append(scales[index])
        their_scales.append(their_scales[index])
    elif choice == "scales a bias":  # a block's bias, held in the list too
        index = int(rng.integers(len(pair.ours.blocks)))
        if pair.ours.blocks[index][0].bias is not None:
            scales.append(pair.ours.blocks[index][0].bias)
            their_scales.append(pair.theirs.blocks[index][0].bias)
    elif choice == "offsets a bias":  # a head's bias, under a name of the dict too
        key = str(rng.choice(list(pair.ours.heads.keys())))
        if pair.ours.heads[key].bias is not None:
            offsets[f"of_{key}"] = pair.ours.heads[key].bias
            their_offsets[f"of_{key}"] = pair.theirs.heads[key].bias
    elif choice == "offsets update":  # a plain dict: added sorted by name, as PyTorch's
        names = [f"o{int(rng.integers(100))}", f"n{int(rng.integers(100))}"]
        made = {key: parameter(rng, pair.outputs) for key in names}
        offsets.update({k: v[0] for k, v in made.items()})
        their_offsets.update({k: v[1] for k, v in made.items()})
    elif choice == "offsets setitem":
        key = str(rng.choice([*offsets.keys(), "fresh"]))
        offsets[key], their_offsets[key] = parameter(rng, pair.outputs)
    elif len(offsets) > 0:
        key = str(rng.choice(list(offsets.keys())))
        offsets.pop(key)
        their_offsets.pop(key)
    return choice


def tie_weights(pair: Pair, rng) -> str:
    """One block's weight made another's (the optimiser made before keeps both)."""
    denses = [(b[0], t[0]) for b, t in zip(pair.ours.blocks, pair.theirs.blocks, strict=True)]
    i, j = (int(k) for k in rng.integers(len(denses), size=2))
    denses[j][0].weight = denses[i][0].weight
    denses[j][1].weight = denses[i][1].weight
    return f"tie blocks.{j}.0.weight to blocks.{i}.0.weight"


def replace_weight(pair: Pair, rng) -> str:
    """A weight replaced by a new Parameter: the optimiser keeps the old one."""
    paths = [
        p for p in pair.submodule_paths() if isinstance(pair.theirs.get_submodule(p), tnn.Linear)
    ]
    path = str(rng.choice(paths))
    ours, theirs = pair.ours.get_submodule(path), pair.theirs.get_submodule(path)
    values = rng.normal(scale=0.5, size=ours.weight.shape)
    ours.weight = nn.Parameter(values.copy())
    theirs.weight = tnn.Parameter(t64(values))
    return f"replace {path}.weight"


def set_gate(pair: Pair, rng) -> str:
    """The parameter registered as None, assigned (or set to None again)."""
    if pair.ours.inner.gate is None or rng.random() < 0.5:
        pair.ours.inner.gate, pair.theirs.inner.gate = parameter(rng, pair.width)
        return "gate assigned"
    if rng.random() < 0.5:
        pair.ours.inner.gate = pair.theirs.inner.gate = None
        return "gate None"
    pair.ours.inner.register_parameter("gate", None)
    pair.theirs.inner.register_parameter("gate", None)
    return "register_parameter('gate', None)"


def buffer_persistence(pair: Pair, rng) -> str:
    """The call count registered again, persistent or not (its values kept)."""
    flag = bool(rng.random() < 0.5)
    values = pair.ours.inner.calls.copy()
    pair.ours.inner.register_buffer("calls", values, persistent=flag)
    pair.theirs.inner.register_buffer("calls", t64(values), persistent=flag)
    return f"register_buffer('calls', persistent={flag})"


def alias_inner(pair: Pair, rng) -> str:
    """The inner module (its BatchNorm's buffers too) held under a second name, or that
    name given up again."""
    if "again" in pair.ours._modules:
        del pair.ours.again
        del pair.theirs.again
        return "del again"
    pair.ours.add_module("again", pair.ours.inner)
    pair.theirs.add_module("again", pair.theirs.inner)
    return "again = inner"


def freeze(pair: Pair, rng) -> str:
    path, flag = str(rng.choice(pair.submodule_paths())), bool(rng.random() < 0.5)
    pair.ours.get_submodule(path).requires_grad_(flag)
    pair.theirs.get_submodule(path).requires_grad_(flag)
    if not any(p.requires_grad for p in pair.theirs.parameters()):  # (backward would refuse)
        pair.ours.heads.requires_grad_(True)
        pair.theirs.heads.requires_grad_(True)
    return f"{path or 'model'}.requires_grad_({flag})"


def mode(pair: Pair, rng) -> str:
    path = str(rng.choice(["inner", "inner.norm", "blocks", "heads"]))
    flag = bool(rng.random() < 0.5)
    pair.ours.get_submodule(path).train(flag)
    pair.theirs.get_submodule(path).train(flag)
    return f"{path}.train({flag})"


def init(pair: Pair, rng) -> str:
    """apply(fn): every Linear's weight drawn again, in place (its paths, once each)."""
    values = {}
    for module in pair.theirs.modules():
        if isinstance(module, tnn.Linear):
            values[id(module)] = rng.normal(scale=0.5, size=tuple(module.weight.shape))
    twin = {id(m): pair.theirs.get_submodule(p) for p, m in pair.ours.named_modules()}

    def ours(m):
        if isinstance(m, nn.Dense):
            m.weight.data[...] = values[id(twin[id(m)])]

    def theirs(m):
        if isinstance(m, tnn.Linear):
            with torch.no_grad():
                m.weight.copy_(t64(values[id(m)]))

    assert pair.ours.apply(ours) is pair.ours
    pair.theirs.apply(theirs)
    return "apply(init)"


def round_trip(pair: Pair, rng) -> str:
    """float() then double(): both round to float32 alike; parameters keep identity."""
    before = list(pair.ours.parameters())
    their_before = list(pair.theirs.parameters())
    pair.ours.float()
    pair.theirs.float()
    for (name, p), q in zip(pair.theirs.named_parameters(), pair.ours.parameters(), strict=True):
        assert q.dtype == np.float32, name
        np.testing.assert_array_equal(q.data, p.detach().numpy(), err_msg=name)
    assert pair.ours.double() is pair.ours
    pair.theirs.double()
    assert [id(p) for p in pair.ours.parameters()] == [id(p) for p in before]
    assert [id(p) for p in pair.theirs.parameters()] == [id(p) for p in their_before]
    return "float() then double()"


def load_partial(pair: Pair, rng, deepest_first: bool = False) -> str:
    """PyTorch's state_dict, a few keys dropped, some added, values moved: strict=False
    loads the rest in both and names the same keys in the same order (less a tied
    parameter's other names, which wxb's state_dict leaves out: documented)."""
    state = {k: v.clone() for k, v in pair.theirs.state_dict().items()}
    keys = list(state)
    for key in rng.choice(keys, size=int(rng.integers(0, min(3, len(keys)) + 1)), replace=False):
        del state[str(key)]
    for key, value in state.items():  # (a variance stays positive)
        if key.endswith("running_var"):
            value.mul_(t64(rng.uniform(0.8, 1.2, size=tuple(value.shape))))
        elif value.dtype == torch.float64:
            value.add_(t64(0.1 * rng.normal(size=tuple(value.shape))))
    # keys that fit nothing, met at several depths (a non-persistent buffer's name too),
    # put in the state in a random order: listed module by module, as PyTorch's are
    strays = ["stray.weight", "inner.calls", f"blocks.{len(pair.ours.blocks) + 2}.0.weight",
              "heads.nowhere", "inner.norm.extra", "scales.extra"]  # fmt: skip
    if "inner.calls" in pair.theirs.state_dict():  # (made persistent: a key that fits)
        strays.remove("inner.calls")
    items = list(state.items())
    if deepest_first:  # (a sub-module's before the model's own: the order that told)
        strays.sort(key=lambda key: -key.count("."))
        items = [(key, t64(rng.normal(size=2))) for key in strays] + items
    else:
        for key in rng.permutation(strays)[: int(rng.integers(1, len(strays) + 1))]:
            stray = (str(key), t64(rng.normal(size=2)))
            items.insert(int(rng.integers(len(items) + 1)), stray)
    state = dict(items)
    ours_state = {k: v.numpy().copy() for k, v in state.items()}
    result = pair.ours.load_state_dict(ours_state, strict=False)
    theirs = pair.theirs.load_state_dict(state, strict=False)
    aliases = {n for n, _ in pair.theirs.named_parameters(remove_duplicate=False)} - {
        n for n, _ in pair.theirs.named_parameters()
    }
    assert result.unexpected_keys == theirs.unexpected_keys, list(state)
    assert result.missing_keys == [k for k in theirs.missing_keys if k not in aliases]
    return "load_state_dict(strict=False)"


def deep_copy(pair: Pair, rng) -> str:
    """Both models deep-copied (ties kept), optimisers made again for the copies."""
    pair.ours, pair.theirs = copy.deepcopy(pair.ours), copy.deepcopy(pair.theirs)
    pair.new_optimisers()
    return "deepcopy"


def fresh_optimisers(pair: Pair, rng) -> str:
    pair.new_optimisers()
    return "new optimisers"


EDITS = [edit_blocks, edit_heads, edit_parameters, tie_weights, replace_weight, set_gate,
         freeze, mode, init, round_trip, load_partial, deep_copy, fresh_optimisers,
         buffer_persistence, alias_inner]  # fmt: skip


# ---------------------------------------------------------------------------------
# Comparisons
# ---------------------------------------------------------------------------------
def assert_close(ours, theirs, where: str, floor: float = 0.0) -> None:
    """‖a − b‖ within TOLERANCE of max(‖a‖, ‖b‖, floor): a quantity summed from terms of
    size ``floor`` that nearly cancel keeps their rounding, not its own size's."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, where
    scale = max(np.linalg.norm(ours), np.linalg.norm(theirs), floor)
    error = np.linalg.norm(ours - theirs) / scale if scale else 0.0
    assert error <= TOLERANCE, f"{where}: relative error {error:.3g}"


def names(listing) -> list[str]:
    return [name for name, _ in listing]


def assert_same_listings(pair: Pair, where: str) -> None:
    ours, theirs = pair.ours, pair.theirs
    for dedup in (True, False):
        for method in ("named_modules", "named_parameters", "named_buffers"):
            assert names(getattr(ours, method)(remove_duplicate=dedup)) == names(
                getattr(theirs, method)(remove_duplicate=dedup)
            ), f"{where}: {method}(remove_duplicate={dedup})"
    assert len(list(ours.modules())) == len(list(theirs.modules())), where
    for (path, module), (_, twin) in zip(ours.named_modules(), theirs.named_modules(), strict=True):
        assert ours.get_submodule(path) is module, f"{where}: get_submodule({path!r})"
        assert names(module.named_children()) == names(twin.named_children()), where
        assert len(list(module.children())) == len(list(twin.children())), where
        for recurse in (True, False):
            kw = {"prefix": "net", "recurse": recurse}
            assert names(module.named_parameters(**kw)) == names(twin.named_parameters(**kw)), (
                f"{where}: {path}.named_parameters({kw})"
            )
            assert names(module.named_buffers(**kw)) == names(twin.named_buffers(**kw)), where
    for path, module in theirs.named_modules(remove_duplicate=False):
        assert type(ours.get_submodule(path)).__name__ in (
            type(module).__name__.replace("Torch", ""),
            {"Linear": "Dense"}.get(type(module).__name__),
        ), f"{where}: get_submodule({path!r})"
    for name, p in theirs.named_parameters(remove_duplicate=False):
        q = ours.get_parameter(name)
        assert q.requires_grad == p.requires_grad, f"{where}: {name}.requires_grad"
        assert_close(q.data, p.detach().numpy(), f"{where}: {name}")
    # ties: the same object under the same names on both sides
    their_ids = {n: id(p) for n, p in theirs.named_parameters(remove_duplicate=False)}
    our_ids = {n: id(p) for n, p in ours.named_parameters(remove_duplicate=False)}
    assert len(set(our_ids.values())) == len(set(their_ids.values())), f"{where}: ties"
    for a in their_ids:
        for b in their_ids:
            assert (their_ids[a] == their_ids[b]) == (our_ids[a] == our_ids[b]), (
                f"{where}: {a} and {b} tied on one side only"
            )
    for name, b in theirs.named_buffers(remove_duplicate=False):
        assert_close(ours.get_buffer(name), b.numpy(), f"{where}: buffer {name}")
    aliases = set(names(theirs.named_parameters(remove_duplicate=False))) - set(
        names(theirs.named_parameters())
    )
    state, their_state = ours.state_dict(), theirs.state_dict()
    assert list(state) == [k for k in their_state if k not in aliases], f"{where}: state_dict"
    for key, value in state.items():
        assert_close(value, their_state[key].numpy(), f"{where}: state_dict {key}")


def assert_same_outputs(pair: Pair, rng, where: str) -> None:
    """Outputs without a graph, in the modes set (BatchNorm's running statistics move in
    a training-mode one, alike), then predict's (eval mode) against PyTorch's eval()."""
    X = rng.normal(size=(int(rng.integers(2, 6)), pair.width_in))
    with wxb.no_grad():
        ours = pair.ours(wxb.Tensor(X))
    with torch.no_grad():
        theirs = pair.theirs(t64(X))
    assert_close(ours.data, theirs.numpy(), f"{where}: output under no_grad")
    modes = [m.training for m in pair.theirs.modules()]
    with torch.no_grad():
        theirs = pair.theirs.eval()(t64(X)).numpy()
    for module, flag in zip(pair.theirs.modules(), modes, strict=True):
        module.training = flag
    assert_close(pair.ours.predict(X), theirs, f"{where}: predict")
    assert [m.training for m in pair.ours.modules()] == modes, f"{where}: modes after predict"


def optimiser_params(opt) -> list:
    return [p for group in opt.param_groups for p in group["params"]]


def step(pair: Pair, rng, where: str) -> bool:
    """One step on each side; False once both diverged alike (nothing left to compare)."""
    rows = int(rng.integers(3, 9))  # (BatchNorm in training mode needs two rows or more)
    X, y = rng.normal(size=(rows, pair.width_in)), rng.normal(size=(rows, pair.outputs))
    set_to_none = bool(rng.random() < 0.5)
    where = f"{where} (zero_grad set_to_none={set_to_none}"
    choice = rng.random()
    if choice < 0.4:
        pair.ours.zero_grad(set_to_none=set_to_none)
        pair.theirs.zero_grad(set_to_none=set_to_none)
        where += ", the model's)"
    elif choice < 0.8:
        pair.opt.zero_grad(set_to_none=set_to_none)
        pair.their_opt.zero_grad(set_to_none=set_to_none)
        where += ", the optimiser's)"
    else:  # one submodule's: the others' gradients add up over the steps, in both
        path = str(rng.choice(pair.submodule_paths()))
        pair.ours.get_submodule(path).zero_grad(set_to_none=set_to_none)
        pair.theirs.get_submodule(path).zero_grad(set_to_none=set_to_none)
        where += f", {path or 'model'}'s)"
    loss = ((pair.ours(wxb.Tensor(X)) - wxb.Tensor(y)) ** 2).mean()
    their_loss = ((pair.theirs(t64(X)) - t64(y)) ** 2).mean()
    loss.backward()
    their_loss.backward()
    pair.opt.step()
    pair.their_opt.step()
    if not np.isfinite(their_loss.item()):
        np.testing.assert_equal(float(loss.data), their_loss.item(), err_msg=where)
        return False
    assert_close(float(loss.data), their_loss.item(), f"{where}: loss")
    # a gradient behind a training-mode BatchNorm is a sum over the batch that nearly
    # cancels (exactly, for a shift before it): compared on the scale of the step's
    # largest, whose rounding it carries (1e-3 of it: a 1e-12 shift of that largest)
    largest = max(
        (np.linalg.norm(p.grad.numpy()) for p in pair.theirs.parameters() if p.grad is not None),
        default=0.0,
    )
    for name, p in pair.theirs.named_parameters():
        q = pair.ours.get_parameter(name)
        assert (q.grad is None) == (p.grad is None), f"{where}: {name}'s gradient is None"
        if p.grad is not None:
            assert_close(q.grad, p.grad.numpy(), f"{where}: ∂L/∂{name}", 1e-3 * largest)
        assert_close(q.data, p.detach().numpy(), f"{where}: {name}")
    held, their_held = optimiser_params(pair.opt), optimiser_params(pair.their_opt)
    assert len(held) == len(their_held), where
    names = ["exp_avg", "exp_avg_sq"] if pair.kind == "adam" else ["momentum_buffer"]
    stateful = pair.kind == "adam" or pair.settings["momentum"]  # (else torch keeps none)
    for i, (q, p) in enumerate(zip(held, their_held, strict=True)):  # in the model or not
        assert_close(q.data, p.detach().numpy(), f"{where}: the optimiser's parameter {i}")
        if not stateful:
            continue
        assert (q in pair.opt.state) == (p in pair.their_opt.state), f"{where}: state {i}"
        if p in pair.their_opt.state:
            ours, theirs = pair.opt.state[q], pair.their_opt.state[p]
            for name in names:
                assert_close(ours[name], theirs[name].numpy(), f"{where}: state {i} {name}")
            if pair.kind == "adam":
                assert ours["step"] == int(theirs["step"]), f"{where}: state {i} step"
    for name, b in pair.theirs.named_buffers():
        assert_close(pair.ours.get_buffer(name), b.numpy(), f"{where}: buffer {name}")
    return True


@pytest.mark.parametrize("run", range(3))
def test_a_model_edited_as_pytorch_users_edit_it_trains_as_torchs(seeded, run):
    rng = seeded.rng
    pair = Pair(rng)
    assert_same_listings(pair, seeded.msg("built"))
    done = []
    for _ in range(int(rng.integers(6, 12))):
        edit = EDITS[int(rng.integers(len(EDITS)))]
        done.append(edit(pair, rng))
        where = seeded.msg(" → ".join(done))
        assert_same_listings(pair, where)
        assert_same_outputs(pair, rng, where)
        for k in range(int(rng.integers(1, 3))):
            if not step(pair, rng, f"{where}, step {k + 1}"):
                return  # diverged alike


def test_keys_that_fit_nothing_are_listed_as_pytorch_lists_them(seeded):
    """load_state_dict(strict=False)'s unexpected_keys, module by module as PyTorch's load
    meets them (the state's order had a sub-module's stray key before the model's own)."""
    pair = Pair(seeded.rng)
    for edit in seeded.rng.choice(EDITS[:3], size=int(seeded.rng.integers(0, 4))):
        edit(pair, seeded.rng)
    load_partial(pair, seeded.rng, deepest_first=True)
    assert_same_listings(pair, seeded.msg("after load_state_dict(strict=False)"))
    load_partial(pair, seeded.rng)
    assert_same_listings(pair, seeded.msg("after load_state_dict(strict=False), again"))
