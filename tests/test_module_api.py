"""The Module API a PyTorch user reaches for, compared with PyTorch on mirror models.

Each test builds a random model a user could write (widths, depths, nested containers,
a module in two places, tied and frozen parameters, buffers persistent and not) in wxb
and the same in PyTorch (float64, weights copied across), then compares what each new
method gives (names, order, counts) and training after each change of structure: the
same SGD steps must give the same losses, gradients and weights to 1e-10. Caches keyed
on the model's structure (planned stacks, the planned step) must follow every change.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn as tnn

import wxb
from wxb.nn import (
    Dense,
    Module,
    ModuleList,
    MSELoss,
    Parameter,
    ReLU,
    Sequential,
    Sigmoid,
    Standardize,
    Tanh,
)
from wxb.optim import SGD
from wxb.step import make_step

TOLERANCE = 1e-10
TORCH_ACTIVATION = {Tanh: tnn.Tanh, ReLU: tnn.ReLU, Sigmoid: tnn.Sigmoid}


# ---------------------------------------------------------------------------------
# Mirror models
# ---------------------------------------------------------------------------------
class TorchStandardize(tnn.Module):
    """wxb's Standardize in PyTorch: (x − mean) ⊙ (1/scale), buffers mean and scale."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.from_numpy(mean.copy()))
        self.register_buffer("scale", torch.from_numpy(scale.copy()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * (1 / self.scale)


def torch_layer(layer: Module) -> tnn.Module:
    """The PyTorch twin of a stock wxb layer, with its weights and buffers."""
    if isinstance(layer, Dense):
        twin = tnn.Linear(
            layer.in_features, layer.out_features, layer.bias is not None, dtype=torch.float64
        )
        with torch.no_grad():
            twin.weight.copy_(torch.from_numpy(layer.weight.data))
            if layer.bias is not None:
                twin.bias.copy_(torch.from_numpy(layer.bias.data))
        return twin
    if isinstance(layer, Standardize):
        return TorchStandardize(layer.mean, layer.scale)
    if isinstance(layer, Sequential):
        return tnn.Sequential(OrderedDict((k, torch_layer(m)) for k, m in layer._modules.items()))
    return TORCH_ACTIVATION[type(layer)]()


def torch_sequential(model: Sequential, twins: dict[Module, tnn.Module]) -> tnn.Sequential:
    """``model`` in PyTorch under the same keys; a layer in two places is one twin.
    ``twins`` is keyed by the modules themselves (held: an id could be a new layer's)."""
    items = []
    for key, layer in model._modules.items():
        if layer not in twins:
            twins[layer] = torch_layer(layer)
        items.append((key, twins[layer]))
    return tnn.Sequential(OrderedDict(items))


def dense(rng, fan_in: int, fan_out: int, bias: bool | None = None) -> Dense:
    bias = bool(rng.random() < 0.8) if bias is None else bias
    layer = Dense(fan_in, fan_out, bias, dtype="float64", seed=int(rng.integers(1 << 62)))
    if bias:
        layer.bias.data[...] = rng.normal(scale=0.3, size=fan_out)
    return layer


def activation(rng) -> Module:
    return [Tanh, ReLU, Sigmoid][int(rng.integers(3))]()


class Gain(Module):
    """A module of one's own: a trained gain and a non-persistent buffer (a call count)."""

    def __init__(self, width: int, rng) -> None:
        super().__init__()
        self.register_parameter("gain", Parameter(1 + 0.1 * rng.normal(size=width)))
        self.register_buffer("calls", np.zeros(1), persistent=False)

    def forward(self, x):
        self.calls += 1
        return x * self.gain


class TorchGain(tnn.Module):
    def __init__(self, gain: np.ndarray) -> None:
        super().__init__()
        self.register_parameter("gain", tnn.Parameter(torch.from_numpy(gain.copy())))
        self.register_buffer("calls", torch.zeros(1, dtype=torch.float64), persistent=False)

    def forward(self, x):
        self.calls += 1
        return x * self.gain


class Net(Module):
    """trunk (maybe a Standardize first) → shared → block (ReLU, shared again) → gain →
    the sum of the heads (the first two maybe tied) + shift; later changes may add an
    ``extra`` layer and an ``out_bias`` parameter, which forward then uses."""

    def __init__(self, rng, width_in: int, width: int, outputs: int) -> None:
        super().__init__()
        layers: list[Module] = []
        if rng.random() < 0.5:
            layers.append(Standardize(rng.normal(size=width_in), rng.uniform(0.5, 2, width_in)))
            layers[0].to("float64")
        widths = [width_in, *(int(w) for w in rng.integers(2, 7, size=rng.integers(0, 3))), width]
        for fan_in, fan_out in itertools.pairwise(widths):
            layers += [dense(rng, fan_in, fan_out), activation(rng)]
        self.trunk = Sequential(*layers)
        self.shared = dense(rng, width, width)
        self.block = Sequential(ReLU(), self.shared)
        self.gain = Gain(width, rng)
        self.heads = ModuleList(dense(rng, width, outputs) for _ in range(rng.integers(1, 4)))
        if len(self.heads) > 1 and rng.random() < 0.7:
            self.heads[1].weight = self.heads[0].weight  # tied
        self.register_buffer("shift", rng.normal(size=outputs))
        self.register_buffer("seen", np.zeros(2), persistent=False)

    def forward(self, x):
        h = self.gain(self.block(self.shared(self.trunk(x))))
        out = self.heads[0](h)
        for head in list(self.heads)[1:]:
            out = out + head(h)
        out = out + wxb.Tensor(self.shift)
        if "extra" in self._modules:
            out = self.extra(out)
        if getattr(self, "out_bias", None) is not None:
            out = out + self.out_bias
        return out


class TorchNet(tnn.Module):
    def __init__(self, model: Net) -> None:
        super().__init__()
        twins: dict[Module, tnn.Module] = {}
        self.trunk = torch_sequential(model.trunk, twins)
        self.shared = twins[model.shared] = torch_layer(model.shared)
        self.block = torch_sequential(model.block, twins)
        self.gain = TorchGain(model.gain.gain.data)
        self.heads = tnn.ModuleList(torch_layer(h) for h in model.heads)
        if len(model.heads) > 1 and model.heads[1].weight is model.heads[0].weight:
            self.heads[1].weight = self.heads[0].weight
        self.register_buffer("shift", torch.from_numpy(model.shift.copy()))
        self.register_buffer("seen", torch.zeros(2, dtype=torch.float64), persistent=False)

    def forward(self, x):
        h = self.gain(self.block(self.shared(self.trunk(x))))
        out = self.heads[0](h)
        for head in list(self.heads)[1:]:
            out = out + head(h)
        out = out + self.shift
        if "extra" in self._modules:
            out = self.extra(out)
        if getattr(self, "out_bias", None) is not None:
            out = out + self.out_bias
        return out


def mirror_pair(rng) -> tuple[Net, TorchNet, int, int]:
    width_in, width, outputs = (int(w) for w in rng.integers(2, 7, size=3))
    model = Net(rng, width_in, width, outputs)
    twin = TorchNet(model)
    for name, p in model.named_parameters():  # frozen ones, the same on both sides
        if rng.random() < 0.2:
            p.requires_grad_(False)
            twin.get_parameter(name).requires_grad_(False)
    if not any(p.requires_grad for p in model.parameters()):  # (backward would refuse)
        model.heads.requires_grad_(True)
        twin.heads.requires_grad_(True)
    return model, twin, width_in, outputs


def batch(rng, width_in: int, outputs: int) -> tuple[np.ndarray, np.ndarray]:
    rows = int(rng.integers(1, 9))
    return rng.normal(size=(rows, width_in)), rng.normal(size=(rows, outputs))


# ---------------------------------------------------------------------------------
# Comparisons
# ---------------------------------------------------------------------------------
def paths(model, twin) -> tuple[dict[int, str], dict[int, str]]:
    """Each module's first path, by id, on either side."""
    return (
        {id(m): name for name, m in model.named_modules()},
        {id(m): name for name, m in twin.named_modules()},
    )


def torch_aliases(twin: tnn.Module) -> set[str]:
    """PyTorch's other names of a shared parameter (its state_dict gives each; wxb's the
    first only)."""
    first = {name for name, _ in twin.named_parameters()}
    return {name for name, _ in twin.named_parameters(remove_duplicate=False)} - first


def assert_same_structure(model: Module, twin: tnn.Module) -> None:
    """Every listing of the new API gives PyTorch's names in PyTorch's order."""
    for dedup in (True, False):
        ours = [n for n, _ in model.named_modules(remove_duplicate=dedup)]
        assert ours == [n for n, _ in twin.named_modules(remove_duplicate=dedup)], dedup
        ours = [n for n, _ in model.named_parameters(remove_duplicate=dedup)]
        assert ours == [n for n, _ in twin.named_parameters(remove_duplicate=dedup)], dedup
        ours = [n for n, _ in model.named_buffers(remove_duplicate=dedup)]
        assert ours == [n for n, _ in twin.named_buffers(remove_duplicate=dedup)], dedup
    assert len(list(model.modules())) == len(list(twin.modules()))
    assert len(model.parameters()) == len(list(twin.parameters()))
    assert len(list(model.buffers())) == len(list(twin.buffers()))
    ours_paths, their_paths = paths(model, twin)
    for (path, module), (their_path, their_module) in zip(
        model.named_modules(), twin.named_modules(), strict=True
    ):
        assert path == their_path
        assert [k for k, _ in module.named_children()] == [
            k for k, _ in their_module.named_children()
        ]
        assert len(list(module.children())) == len(list(their_module.children()))
        for recurse in (True, False):
            kw = {"prefix": "p", "recurse": recurse}
            assert [n for n, _ in module.named_parameters(**kw)] == [
                n for n, _ in their_module.named_parameters(**kw)
            ]
            assert [n for n, _ in module.named_buffers(**kw)] == [
                n for n, _ in their_module.named_buffers(**kw)
            ]
            assert len(module.parameters(recurse)) == len(list(their_module.parameters(recurse)))
            assert len(list(module.buffers(recurse))) == len(list(their_module.buffers(recurse)))
        assert model.get_submodule(path) is module
        assert ours_paths[id(module)] == their_paths[id(their_module)]
    for name, p in twin.named_parameters(remove_duplicate=False):
        ours = model.get_parameter(name)
        assert_close(ours.data, p.detach().numpy(), name)  # (training: rounding apart)
        assert ours.requires_grad == p.requires_grad, name
    for name, b in twin.named_buffers(remove_duplicate=False):
        np.testing.assert_array_equal(model.get_buffer(name), b.numpy())
    aliases = torch_aliases(twin)
    assert list(model.state_dict()) == [k for k in twin.state_dict() if k not in aliases]


def train_and_compare(seeded, model, twin, ours_opt, their_opt, rng, width_in, outputs, label):
    """A few SGD steps on each side (a fresh batch each): the same losses, gradients and
    weights. False once both sides' loss overflowed alike (the run diverged)."""
    loss = MSELoss()

    def their_loss(out, y):  # wxb's MSE: (1/B) Σ ½‖ŷ − y‖², not torch's MSELoss
        return 0.5 * ((out - y) ** 2).sum(dim=1).mean()

    for step in range(int(rng.integers(1, 4))):
        X, y = batch(rng, width_in, outputs)
        ours_opt.zero_grad()
        value = loss(model(X), y)
        value.backward()
        ours_opt.step()
        their_opt.zero_grad()
        their_value = their_loss(twin(torch.from_numpy(X)), torch.from_numpy(y))
        their_value.backward()
        their_opt.step()
        where = seeded.msg(f"{label}, step {step + 1}")
        ours_value, theirs_value = float(value.data), their_value.item()
        if not np.isfinite(theirs_value):  # a draw whose steps blew up (SGD on a sum of
            # tied heads): both sides overflow alike, and from here the weights are inf or
            # nan on both, with nothing left to compare
            np.testing.assert_equal(ours_value, theirs_value, err_msg=where)
            return False
        assert abs(ours_value - theirs_value) <= TOLERANCE * max(1, abs(theirs_value)), where
        for name, p in twin.named_parameters():
            ours = model.get_parameter(name)
            assert (ours.grad is None) == (p.grad is None), f"{where}: {name}'s gradient"
            if p.grad is not None:
                assert_close(ours.grad, p.grad.numpy(), f"{where}: ∂L/∂{name}")
            assert_close(ours.data, p.detach().numpy(), f"{where}: {name}")
    return True


def assert_close(ours: np.ndarray, theirs: np.ndarray, where: str) -> None:
    """‖a − b‖ / max(‖a‖, ‖b‖) within TOLERANCE (test_parity_torch's measure: the sums of
    the two sides differ in order only)."""
    assert ours.shape == theirs.shape, where
    scale = max(np.linalg.norm(ours), np.linalg.norm(theirs))
    error = np.linalg.norm(ours - theirs) / scale if scale else 0.0
    assert error <= TOLERANCE, f"{where}: relative error {error:.3g}"


def assert_same_predictions(seeded, model, twin, rng, width_in: int, label: str) -> None:
    """Eval-mode outputs without a graph (the inference plan, the module list's cache)."""
    X = rng.normal(size=(int(rng.integers(1, 6)), width_in))
    with torch.no_grad():
        theirs = twin.eval()(torch.from_numpy(X)).numpy()
    twin.train()
    assert_close(model.predict(X), theirs, seeded.msg(label))


def optimisers(rng, model, twin):
    # rates at which a few steps on random targets do not diverge: at up to 0.05, a sum of
    # three tied heads behind a layer applied twice overflowed in one draw in ~30
    lr, momentum = float(rng.uniform(0.002, 0.01)), float(rng.choice([0.0, 0.5]))
    return (
        SGD(model.parameters(), lr, momentum=momentum),
        torch.optim.SGD(twin.parameters(), lr, momentum=momentum),
    )


def twin_map(model: Module, twin: tnn.Module) -> dict[Module, tnn.Module]:
    """Each wxb module → its PyTorch twin (by path)."""
    return {m: twin.get_submodule(path) for path, m in model.named_modules()}


def rebuilt(sequential: Sequential, twins: dict[Module, tnn.Module]) -> tnn.Sequential:
    """PyTorch's twin of ``sequential`` as it is now, under wxb's keys (PyTorch's own
    insert and del renumber keys "0", "1", …; wxb's keys are layer names, on purpose)."""
    return torch_sequential(sequential, twins)


# ---------------------------------------------------------------------------------
# Listings
# ---------------------------------------------------------------------------------
def test_listings_match_torch(seeded, rng):
    model, twin, _, _ = mirror_pair(rng)
    assert_same_structure(model, twin)
    assert model.get_submodule("") is model
    memo: set[int] = set()
    first = [n for n, _ in model.named_modules(memo)]
    assert first and not list(model.named_modules(memo)), "a memo given again yields nothing"
    assert [n for n, _ in model.named_modules(prefix="net")] == [
        n for n, _ in twin.named_modules(prefix="net")
    ]
    # apply: children first, each child's subtree in turn (a shared module once per parent)
    ours_paths, their_paths = paths(model, twin)
    ours, theirs = [], []
    assert model.apply(lambda m: ours.append(ours_paths[id(m)])) is model
    twin.apply(lambda m: theirs.append(their_paths[id(m)]))
    assert ours == theirs, seeded.msg("apply's order")


# ---------------------------------------------------------------------------------
# Changes of structure, then training
# ---------------------------------------------------------------------------------
def add_extra(model, twin, rng, outputs):
    model.add_module("extra", dense(rng, outputs, outputs))
    twin.add_module("extra", torch_layer(model.extra))


def add_out_bias(model, twin, rng, outputs):
    model.register_parameter("out_bias", None)  # held, then assigned: in its place
    twin.register_parameter("out_bias", None)
    assert model.out_bias is None
    assert_same_structure(model, twin)
    values = rng.normal(size=outputs)
    model.out_bias = Parameter(values)
    twin.out_bias = tnn.Parameter(torch.from_numpy(values.copy()))


def replace_biases(model, twin, rng, outputs):
    """apply() replacing every Dense's bias by a new Parameter (a shared layer's twice)."""
    ours_paths, their_paths = paths(model, twin)
    values = {
        ours_paths[id(m)]: rng.normal(size=m.out_features)
        for m in model.modules()
        if isinstance(m, Dense) and m.bias is not None
    }

    def ours(m):
        if isinstance(m, Dense) and m.bias is not None:
            m.bias = Parameter(values[ours_paths[id(m)]])

    def theirs(m):
        if isinstance(m, tnn.Linear) and m.bias is not None:
            m.bias = tnn.Parameter(torch.from_numpy(values[their_paths[id(m)]].copy()))

    model.apply(ours)
    twin.apply(theirs)


def change_heads(model, twin, rng, outputs):
    width = model.heads[0].in_features
    choice = int(rng.integers(3)) if len(model.heads) > 1 else int(rng.integers(2))
    if choice == 0:
        model.heads.append(dense(rng, width, outputs))
        twin.heads.append(torch_layer(model.heads[-1]))
    elif choice == 1:
        index = int(rng.integers(len(model.heads) + 1))  # (PyTorch's fails on negative ones)
        model.heads.insert(index, dense(rng, width, outputs))
        twin.heads.insert(index, torch_layer(model.heads[index]))
    else:
        index = int(rng.integers(-len(model.heads), len(model.heads)))
        model.heads.pop(index)
        twin.heads.pop(index)


def change_trunk(model, twin, rng, outputs):
    """A change of the trunk's layers that keeps its widths; PyTorch's twin rebuilt."""
    twins = twin_map(model, twin)
    trunk = model.trunk
    activations = [i for i, m in enumerate(trunk) if isinstance(m, (Tanh, ReLU, Sigmoid))]
    choice = int(rng.integers(6 if activations else 3))
    if choice == 0:
        trunk.insert(int(rng.integers(-len(trunk), len(trunk) + 1)), activation(rng))
    elif choice == 1:
        width = model.shared.in_features
        trunk.append(dense(rng, width, width))
    elif choice == 2:
        trunk.extend([activation(rng)])
    elif choice == 3:
        trunk.pop(int(rng.choice(activations)))
    elif choice == 4:
        del trunk[int(rng.choice(activations))]
    else:
        trunk[int(rng.choice(activations))] = activation(rng)
    twin.trunk = rebuilt(trunk, twins)


def change_block(model, twin, rng, outputs):
    twins = twin_map(model, twin)
    if rng.random() < 0.5:
        model.block += [activation(rng)]
    else:
        model.block.add_module("gate", activation(rng))  # an unnamed layer takes the key
        assert model.block.gate.name == "gate"
    twin.block = rebuilt(model.block, twins)


def freeze_some(model, twin, rng, outputs):
    path = str(rng.choice([p for p, _ in model.named_modules()]))
    flag = bool(rng.random() < 0.5)
    model.get_submodule(path).requires_grad_(flag)
    twin.get_submodule(path).requires_grad_(flag)
    if not any(p.requires_grad for p in model.parameters()):  # (backward would refuse)
        model.heads.requires_grad_(True)
        twin.heads.requires_grad_(True)


CHANGES = [
    add_extra,
    add_out_bias,
    replace_biases,
    change_heads,
    change_trunk,
    change_block,
    freeze_some,
]


@pytest.mark.parametrize("optimiser", ["kept", "fresh"])
def test_changes_of_structure_train_as_torch(seeded, rng, optimiser):
    """Train, change the structure (each change in a random order, some twice), train
    again: PyTorch doing the same gets the same numbers. With the optimiser ``kept``,
    parts added since are not trained on either side; ``fresh`` trains them too."""
    model, twin, width_in, outputs = mirror_pair(rng)
    ours_opt, their_opt = optimisers(rng, model, twin)
    if not train_and_compare(seeded, model, twin, ours_opt, their_opt, rng, width_in, outputs,
                             "start"):  # fmt: skip
        return  # diverged alike: compared up to there
    order = [CHANGES[i] for i in rng.permutation(len(CHANGES))]
    order += [
        CHANGES[i]
        for i in rng.integers(len(CHANGES), size=3)
        if CHANGES[i] not in (add_extra, add_out_bias)
    ]
    for change in order:
        change(model, twin, rng, outputs)
        label = f"after {change.__name__}"
        assert_same_structure(model, twin)
        assert_same_predictions(seeded, model, twin, rng, width_in, label)
        if optimiser == "fresh":
            ours_opt, their_opt = optimisers(rng, model, twin)
        if not train_and_compare(seeded, model, twin, ours_opt, their_opt, rng, width_in,
                                 outputs, label):  # fmt: skip
            return  # diverged alike: compared up to there


# ---------------------------------------------------------------------------------
# A Sequential changed in place while it trains (its planned stack, the planned step)
# ---------------------------------------------------------------------------------
def widths_into(model: Sequential, width_in: int) -> list[int]:
    """The width going into each place 0..len (the last: the output's)."""
    widths = [width_in]
    for layer in model:
        widths.append(layer.out_features if isinstance(layer, Dense) else widths[-1])
    return widths


def change_sequential(model: Sequential, twins: dict, rng, width_in: int, width: int) -> str:
    """One change a user could make that keeps the model runnable; what it was. (A new
    layer's PyTorch twin is made from it later; a weight replaced is replaced there too.)"""
    size = len(model)
    into = widths_into(model, width_in)
    inner = [i for i in range(1, size) if into[i] == width]  # places taking `width`
    acts = [i for i, m in enumerate(model) if isinstance(m, (Tanh, ReLU, Sigmoid))]
    squares = [i for i in inner if isinstance(model[i], Dense) and into[i + 1] == width]
    choices = ["insert dense", "insert activation", "append", "extend", "add_module", "apply"]
    choices += ["pop", "del", "pop slice", "replace activation"] if acts else []
    choices += ["replace dense", "replace weight"] if squares else []
    choice = str(rng.choice(choices))
    out = into[-1]
    if choice == "insert dense":
        index = int(rng.choice(inner))
        model.insert(index - size if rng.random() < 0.5 else index, dense(rng, width, width))
    elif choice == "insert activation":
        model.insert(int(rng.integers(-size, size + 1)), activation(rng))
    elif choice == "append":
        model.append(dense(rng, out, out))
    elif choice == "extend":
        model.extend([activation(rng), dense(rng, out, out)])
    elif choice == "add_module":
        model.add_module(f"late{size}", activation(rng))
    elif choice == "pop":
        model.pop(int(rng.choice(acts)))
    elif choice == "del":
        del model[int(rng.choice(acts))]
    elif choice == "pop slice":
        index = int(rng.choice(acts))
        assert len(model.pop(slice(index, index + 1))) == 1
    elif choice == "replace activation":
        model[int(rng.choice(acts))] = activation(rng)
    elif choice == "apply":  # an initialisation, in place or by a new array (p.data = …)
        in_place = bool(rng.random() < 0.5)

        def init(m):
            if isinstance(m, Dense):
                values = rng.normal(scale=0.5, size=m.weight.shape)
                if in_place:
                    m.weight.data[...] = values
                else:
                    m.weight.data = values
                twins[m].weight.data.copy_(torch.from_numpy(values))

        assert model.apply(init) is model
    elif choice == "replace dense":
        model[int(rng.choice(squares))] = dense(rng, width, width)
    else:
        layer = model[int(rng.choice(squares))]
        layer.weight = Parameter(rng.normal(size=(width, width)))
        twins[layer].weight = tnn.Parameter(torch.from_numpy(layer.weight.data.copy()))
    return choice


@pytest.mark.parametrize("path", ["loop", "step"])
@pytest.mark.parametrize("optimiser", ["kept", "fresh"])
def test_sequential_changed_while_training_matches_torch(seeded, rng, path, optimiser):
    """Train, change the layers (insert, append, extend, pop, del, replace), train again,
    several times: PyTorch doing the same gets the same losses and weights. A plan made
    for the old layers (the planned stack of ``model(X)``, a PlannedStep kept across the
    change) must be made again."""
    width_in, width, outputs = (int(w) for w in rng.integers(2, 7, size=3))
    layers = [dense(rng, width_in, width), activation(rng)]
    for _ in range(int(rng.integers(0, 3))):
        layers += [dense(rng, width, width), activation(rng)]
    model = Sequential(*layers, dense(rng, width, outputs))
    twins: dict[Module, tnn.Module] = {}
    twin = torch_sequential(model, twins)
    assert model.why_not_planned() is None
    ours_opt, their_opt = optimisers(rng, model, twin)
    step = make_step(model, MSELoss(), ours_opt)
    label = "start"
    for change in range(int(rng.integers(3, 7)) + 1):
        for number in range(int(rng.integers(1, 3))):
            X, y = batch(rng, width_in, widths_into(model, width_in)[-1])
            where = seeded.msg(f"{label}, step {number + 1}")
            if path == "step":
                value = step(X, y)
            else:
                ours_opt.zero_grad()
                loss = MSELoss()(model(wxb.Tensor(X)), y)
                loss.backward()
                ours_opt.step()
                value = float(loss.data)
            their_opt.zero_grad()
            out = twin(torch.from_numpy(X))
            their_value = 0.5 * ((out - torch.from_numpy(y)) ** 2).sum(dim=1).mean()
            their_value.backward()
            their_opt.step()
            assert_close(np.array(value), their_value.detach().numpy(), f"{where}: loss")
            for name, p in twin.named_parameters():
                ours = model.get_parameter(name)
                if path == "loop" and p.grad is not None:
                    assert_close(ours.grad, p.grad.numpy(), f"{where}: ∂L/∂{name}")
                assert_close(ours.data, p.detach().numpy(), f"{where}: {name}")
        assert_same_predictions(seeded, model, twin, rng, width_in, label)
        label = (
            f"after {change_sequential(model, twins, rng, width_in, width)} (change {change + 1})"
        )
        twin = torch_sequential(model, twins)
        assert [n for n, _ in model.named_parameters()] == [n for n, _ in twin.named_parameters()]
        if optimiser == "fresh":
            ours_opt, their_opt = optimisers(rng, model, twin)
            step = make_step(model, MSELoss(), ours_opt)


# ---------------------------------------------------------------------------------
# load_state_dict, buffers, names held by None, errors
# ---------------------------------------------------------------------------------
def test_load_state_dict_strict_or_not_as_torch(seeded, rng):
    """PyTorch's state (a tied parameter under each name) with keys dropped and added:
    strict=False loads what fits and names the rest as PyTorch does (less the other
    names of a tied parameter, which wxb's state_dict does not give); strict raises,
    naming them, and changes nothing."""
    model, twin, _, _ = mirror_pair(rng)
    aliases = torch_aliases(twin)
    names = list(twin.state_dict())
    assert (
        model.load_state_dict({k: v.numpy() for k, v in twin.state_dict().items()}).missing_keys
        == []
    )  # PyTorch's own state, tied names and all
    assert repr(model.load_state_dict(model.state_dict())) == "<All keys matched successfully>"
    state = {
        k: rng.normal(size=tuple(v.shape))
        for k, v in twin.state_dict().items()
        if rng.random() < 0.7
    }
    for i in range(int(rng.integers(0, 3))):
        state[f"{rng.choice(names)}_stray{i}"] = rng.normal(size=2)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    missing = [k for k in names if k not in state and k not in aliases]
    unexpected = [k for k in state if k not in names]
    if any(k not in state for k in names) or unexpected:
        with pytest.raises(RuntimeError):
            twin.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    if missing or unexpected:
        with pytest.raises(wxb.ShapeError) as caught:
            model.load_state_dict(state)
        for key in missing + unexpected:
            assert repr(key) in str(caught.value), seeded.msg(key)
        for key, array in model.state_dict().items():  # all or nothing
            np.testing.assert_array_equal(array, before[key])
    theirs = twin.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    ours = model.load_state_dict(state, strict=False)
    assert ours.missing_keys == [k for k in theirs.missing_keys if k not in aliases]
    # (the state's order; PyTorch's lists them module by module)
    assert sorted(ours.unexpected_keys) == sorted(theirs.unexpected_keys)
    assert_same_structure(model, twin)  # the values loaded, the rest as they were
    key = str(rng.choice([k for k, _ in model.named_parameters()]))
    wrong = {key: np.zeros((*model.get_parameter(key).shape, 2))}
    with pytest.raises(RuntimeError):  # a shape that does not fit: refused either way
        twin.load_state_dict({key: torch.from_numpy(wrong[key])}, strict=False)
    with pytest.raises(wxb.ShapeError, match=key):
        model.load_state_dict(wrong, strict=False)


def test_non_persistent_buffers_stay_out_of_the_state(seeded, rng):
    """Listed with the buffers, left out of state_dict, and still left out after a cast
    (``.to()`` registers the cast array again)."""
    model, twin, _, _ = mirror_pair(rng)
    hidden = {"seen", "gain.calls"}
    assert hidden <= {n for n, _ in model.named_buffers()}
    assert not hidden & set(model.state_dict())
    model.float()
    twin.float()
    assert_same_structure(model, twin)
    assert model.gain.calls.dtype == np.float32
    model.register_buffer("seen", np.ones(3))  # registered again, persistent: saved
    twin.register_buffer("seen", torch.ones(3))
    assert list(model.state_dict()) == [
        k for k in twin.state_dict() if k not in torch_aliases(twin)
    ]


class Slots(Module):
    """Parameters, modules and buffers registered in a random order, some as None first."""


def test_a_name_held_by_none_keeps_its_place(seeded, rng):
    """register_parameter / add_module / register_buffer with None, then an assignment:
    in the place the name was registered, as PyTorch's."""
    ours, theirs = Slots(), tnn.Module()
    kinds = rng.choice(["parameter", "module", "buffer"], size=int(rng.integers(3, 9)))
    later = []
    for i, kind in enumerate(kinds):
        name, held = f"{kind}{i}", bool(rng.random() < 0.5)
        values = rng.normal(size=2)
        if kind == "parameter":
            ours.register_parameter(name, None if held else Parameter(values))
            theirs.register_parameter(
                name, None if held else tnn.Parameter(torch.from_numpy(values.copy()))
            )
        elif kind == "module":
            ours.add_module(name, None if held else Tanh())
            theirs.register_module(name, None if held else tnn.Tanh())
        else:
            ours.register_buffer(name, None if held else values)
            theirs.register_buffer(name, None if held else torch.from_numpy(values.copy()))
        if held:
            assert getattr(ours, name) is None
            later.append((kind, name, values))
    for index in rng.permutation(len(later)):
        kind, name, values = later[index]
        if kind == "parameter":
            setattr(ours, name, Parameter(values))
            setattr(theirs, name, tnn.Parameter(torch.from_numpy(values.copy())))
        elif kind == "module":
            setattr(ours, name, Tanh())
            setattr(theirs, name, tnn.Tanh())
        else:
            setattr(ours, name, values)
            setattr(theirs, name, torch.from_numpy(values.copy()))
    assert_same_slots(ours, theirs)
    set_to_none_and_back(ours, theirs, [f"{k}{i}" for i, k in enumerate(kinds)], rng)


def test_names_set_to_none_come_back_in_place(seeded, rng):
    """Attributes (parameters, modules, buffers) set to None, then assigned again in
    another order: each in its place, as PyTorch's (wxb put a name back after the
    names present when it was set to None, so two set to None came back swapped)."""
    ours, theirs = Slots(), tnn.Module()
    names = []
    for i, kind in enumerate(rng.choice(["parameter", "module", "buffer"], size=6)):
        name, values = f"{kind}{i}", rng.normal(size=2)
        if kind == "parameter":
            setattr(ours, name, Parameter(values))
            setattr(theirs, name, tnn.Parameter(torch.from_numpy(values.copy())))
        elif kind == "module":
            setattr(ours, name, Tanh())
            setattr(theirs, name, tnn.Tanh())
        else:
            ours.register_buffer(name, values)
            theirs.register_buffer(name, torch.from_numpy(values.copy()))
        names.append(name)
    set_to_none_and_back(ours, theirs, names, rng)


def set_to_none_and_back(ours: Module, theirs: tnn.Module, names: list[str], rng) -> None:
    """All set to None and back in their order (two of a kind among them came back
    swapped before), then a random few, put back in a random order."""
    back_and_forth(ours, theirs, names, names)
    names = [str(n) for n in rng.permutation(names)]
    gone = names[: int(rng.integers(1, len(names) + 1))]
    back_and_forth(ours, theirs, gone, [gone[i] for i in rng.permutation(len(gone))])


def back_and_forth(ours: Module, theirs: tnn.Module, gone: list[str], back: list[str]) -> None:
    kept = {name: (getattr(ours, name), getattr(theirs, name)) for name in gone}
    for name in gone:
        setattr(ours, name, None)
        setattr(theirs, name, None)
    assert_same_slots(ours, theirs)
    for name in back:
        setattr(ours, name, kept[name][0])
        setattr(theirs, name, kept[name][1])
    assert_same_slots(ours, theirs)


def assert_same_slots(ours: Module, theirs: tnn.Module) -> None:
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]


def test_refused_where_torch_refuses(seeded, rng):
    """Names and values PyTorch refuses are refused, naming what and where; paths that
    lead nowhere raise an AttributeError, as PyTorch's."""
    width = int(rng.integers(2, 6))
    model = Sequential(dense(rng, width, width, bias=True), Tanh())
    twin = torch_sequential(model, {})
    calls = [
        ("add_module", "a.b", Tanh(), tnn.Tanh()),
        ("add_module", "", Tanh(), tnn.Tanh()),
        ("add_module", 3, Tanh(), tnn.Tanh()),
        ("add_module", "training", Tanh(), tnn.Tanh()),
        ("add_module", "tanh2", "not a module", "not a module"),
        ("register_parameter", "forward", None, None),
        ("register_parameter", "w", np.zeros(2), torch.zeros(2)),
        ("register_parameter", "x.y", Parameter(np.zeros(2)), tnn.Parameter(torch.zeros(2))),
    ]
    for method, name, value, their_value in calls:
        with pytest.raises((KeyError, TypeError)):  # PyTorch's kinds
            getattr(twin, method)(name, their_value)
        with pytest.raises(wxb.ConfigError) as caught:
            getattr(model, method)(name, value)
        assert method in str(caught.value) and "Sequential" in str(caught.value)
    dense1 = model.dense1
    for method, name in [
        ("add_module", "weight"),
        ("register_parameter", "in_features"),
        ("add_module", "name"),
    ]:
        with pytest.raises(wxb.ConfigError, match=repr(name)):
            getattr(dense1, method)(name, Tanh() if method == "add_module" else None)
    for method, target in [
        ("get_submodule", "nowhere"),
        ("get_submodule", "dense1.weight"),
        ("get_parameter", "dense1.nothing"),
        ("get_parameter", "nowhere.weight"),
        ("get_buffer", "dense1.weight"),
    ]:
        with pytest.raises(AttributeError):
            getattr(twin, method)(target)
        with pytest.raises(wxb.NotFoundError) as caught:
            getattr(model, method)(target)
        assert isinstance(caught.value, AttributeError)
        assert f"{method}({target!r})" in str(caught.value)


def test_why_not_planned_answers_for_a_model_of_ones_own(rng):
    """README: `model.why_not_planned()` for your own loop. A Module subclass had no such
    method (AttributeError); it says why its calls go through the graph, as
    History.engine_reason does for fit."""
    width = int(rng.integers(2, 6))

    class Net(Module):
        def __init__(self) -> None:
            super().__init__()
            self.first, self.second = Dense(width, width), Dense(width, 1)

        def forward(self, x):
            return self.second(wxb.nn.functional.relu(self.first(x)))

    model = Net()
    reason = model.why_not_planned()
    assert reason == "the model is a Net, not a Sequential", reason
    X, y = rng.standard_normal((8, width)), rng.standard_normal(8)
    history = wxb.fit(model, X, y, loss="mse", epochs=1, verbose=False)
    assert history.engine == "graph" and history.engine_reason == reason


def test_linear_is_pytorchs_name_for_dense(rng, tmp_path):
    """nn.Linear(in, out) is what a PyTorch user types first: the same layer as Dense."""
    from wxb.nn import Linear

    width_in, width_out = (int(w) for w in rng.integers(1, 6, size=2))
    model = Sequential(Linear(width_in, width_out), wxb.nn.ReLU(), Linear(width_out, 1, bias=False))
    assert Linear is Dense and isinstance(model[0], Dense)
    twin = tnn.Sequential(
        tnn.Linear(width_in, width_out), tnn.ReLU(), tnn.Linear(width_out, 1, bias=False)
    )
    twin.double()
    with torch.no_grad():
        for ours, theirs in zip(model.parameters(), twin.parameters(), strict=True):
            assert ours.shape == tuple(theirs.shape)
            theirs.copy_(torch.tensor(ours.data))
    X = rng.normal(size=(5, width_in))
    np.testing.assert_allclose(
        model.double()(X).data, twin(torch.tensor(X)).detach().numpy(), rtol=1e-12
    )
    path = wxb.save(model, tmp_path / "linear.safetensors")
    np.testing.assert_array_equal(wxb.load(path)(X).data, model(X).data)


@pytest.mark.parametrize("mode", ["False", 0, None, 1.0])
def test_train_mode_must_be_a_bool(mode):
    """model.train("False") put the model in training mode (a non-empty string is true);
    PyTorch refuses a mode that is not a bool, and so does wxb now."""
    model = Sequential(Dense(2, 2), wxb.nn.Dropout(0.5))
    model.eval()
    with pytest.raises(wxb.errors.ConfigError, match="mode must be True or False"):
        model.train(mode)
    assert not model.training and not model[1].training
    assert model.train(np.bool_(True)).training and model.train(False).training is False
