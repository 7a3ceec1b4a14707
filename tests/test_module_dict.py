"""ModuleDict: modules by name in a module of one's own, against PyTorch's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import wxb
from wxb import describe
from wxb.errors import ConfigError
from wxb.nn import CrossEntropyLoss, Dense, LayerNorm, Module, ModuleDict, ReLU, Sequential
from wxb.optim import Adam


class Heads(Module):
    """A trunk and one head per task, picked by name in forward."""

    def __init__(self, rng, n_in, hidden, outputs):
        super().__init__()
        self.trunk = Sequential(Dense(n_in, hidden, seed=rng, dtype="float64"), ReLU())
        self.heads = ModuleDict(
            {name: Dense(hidden, width, seed=rng, dtype="float64") for name, width in outputs}
        )
        self.norms = ModuleDict([("pre", LayerNorm(hidden, dtype="float64"))])

    def forward(self, x, task):
        return self.heads[task](self.norms["pre"](self.trunk(x)))


class TorchHeads(torch.nn.Module):
    def __init__(self, n_in, hidden, outputs):
        super().__init__()
        self.trunk = torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.ReLU())
        self.heads = torch.nn.ModuleDict(
            {name: torch.nn.Linear(hidden, width) for name, width in outputs}
        )
        self.norms = torch.nn.ModuleDict([("pre", torch.nn.LayerNorm(hidden))])

    def forward(self, x, task):
        return self.heads[task](self.norms["pre"](self.trunk(x)))


def test_a_model_of_heads_by_name_trains_as_in_torch(seeded):
    rng = seeded.rng
    n_in, hidden = int(rng.integers(2, 6)), int(rng.integers(2, 8))
    outputs = [(f"task{i}", int(rng.integers(2, 5))) for i in range(int(rng.integers(1, 4)))]
    model = Heads(rng, n_in, hidden, outputs)
    twin = TorchHeads(n_in, hidden, outputs).double()
    mine, theirs = model.state_dict(), twin.state_dict()
    # PyTorch's names, in PyTorch's order (a Sequential's keys are wxb's layer names)
    renamed = [k.replace("trunk.dense1", "trunk.0") for k in mine]
    assert renamed == list(theirs), seeded.msg("state_dict names")
    twin.load_state_dict({k: torch.tensor(v) for k, v in zip(theirs, mine.values(), strict=True)})
    opt, topt = Adam(model.parameters(), lr=0.01), torch.optim.Adam(twin.parameters(), lr=0.01)
    for _ in range(4):
        name, width = outputs[int(rng.integers(len(outputs)))]
        X, y = rng.normal(size=(6, n_in)), rng.integers(0, width, 6)
        loss = CrossEntropyLoss()(model(X, name), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        tloss = torch.nn.functional.cross_entropy(twin(torch.tensor(X), name), torch.tensor(y))
        topt.zero_grad()
        tloss.backward()
        topt.step()
        assert np.isclose(loss.item(), tloss.item(), rtol=1e-10), seeded.msg(name)
    # (atol: after 4 Adam steps float64's summation order alone moved a weight of 6e-3 by
    # 2.7e-11 for some draws, WXB_TEST_SEED=69726931231759284772250767808425309181)
    for a, b in zip(model.state_dict().values(), twin.state_dict().values(), strict=True):
        assert np.allclose(a, b.numpy(), rtol=1e-9, atol=1e-10), seeded.msg("weights")
    assert "heads" in str(describe.summary(model))


def test_the_dict_api_is_pythons_and_pytorchs(rng):
    layers = {key: Dense(2, 2, seed=rng) for key in ("b", "a", "c")}
    heads = ModuleDict(layers)
    assert list(heads) == ["b", "a", "c"] == heads.keys()
    assert heads.values() == list(layers.values()) and len(heads) == 3 and "a" in heads
    assert heads.items() == list(layers.items())
    assert heads.pop("a") is layers["a"] and "a" not in heads
    del heads["b"]
    assert heads.keys() == ["c"] and [n for n, _ in heads.named_parameters()] == [
        "c.weight",
        "c.bias",
    ]
    heads.update([("d", layers["a"])])
    heads["c"] = layers["b"]  # replaced in its place
    assert heads.keys() == ["c", "d"] and heads["c"] is layers["b"]
    with pytest.raises(KeyError):
        heads["zzz"]
    with pytest.raises(KeyError):
        del heads["zzz"]
    with pytest.raises(ConfigError, match="keys"):
        heads["keys"] = Dense(2, 2)  # would hide the method, as PyTorch refuses
    with pytest.raises(ConfigError, match="no name"):
        heads["a.b"] = Dense(2, 2)
    with pytest.raises(ConfigError, match=r"not a wxb\.nn\.Module"):
        heads["e"] = np.zeros(2)
    with pytest.raises(ConfigError, match=r"not a \(name, module\) pair"):
        heads.update([Dense(2, 2)])
    with pytest.raises(ConfigError, match="no forward"):
        heads(np.zeros((1, 2)))
    heads.clear()
    assert len(heads) == 0 and heads.parameters() == []


def test_a_plain_dict_of_layers_is_refused_naming_module_dict(rng):
    class Plain(Module):
        def __init__(self):
            super().__init__()
            self.heads = {"a": Dense(2, 2, seed=rng)}

    with pytest.raises(ConfigError, match="ModuleDict"):
        Plain()


def test_save_refuses_a_module_dict_by_its_path(tmp_path, rng):
    model = Heads(rng, 3, 4, [("x", 2)])
    with pytest.raises(ConfigError, match="Heads cannot be saved"):
        wxb.save(model, tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()


def test_a_module_dict_takes_another_module_dict_as_pytorchs_does(rng):
    # ModuleDict(other) and .update(other) were refused ("item 0 is not a (name, module)
    # pair; got str": iterating a ModuleDict gives its names); PyTorch takes both
    keys = [f"h{i}" for i in rng.permutation(int(rng.integers(2, 6)))]
    first = ModuleDict({key: Dense(2, int(rng.integers(1, 4)), seed=rng) for key in keys})
    twin = torch.nn.ModuleDict({key: torch.nn.Linear(2, 1) for key in keys})
    assert list(torch.nn.ModuleDict(twin)) == keys
    copied = ModuleDict(first)
    assert copied.keys() == keys and all(copied[k] is first[k] for k in keys)
    extra = Dense(2, 2, seed=rng)
    later = ModuleDict({"z": extra, keys[0]: Dense(2, 2, seed=rng)})
    later.update(first)  # keys[0] replaced in its place, the others after it
    assert later.keys() == ["z", *keys] and later[keys[0]] is first[keys[0]]
    assert [name for name, _ in later.named_parameters()][2:4] == [
        f"{keys[0]}.weight",
        f"{keys[0]}.bias",
    ]


def test_a_module_dict_of_something_else_is_one_line(rng):
    # ModuleDict(Dense(…)) or .update(None) raised a bare TypeError ("'Dense' object is
    # not iterable"); PyTorch's says what update takes
    layer = Dense(2, int(rng.integers(1, 4)), seed=rng)
    with pytest.raises(TypeError, match="iterable of key/value pairs"):
        torch.nn.ModuleDict(torch.nn.Linear(2, 2))
    for wrong in (layer, None, int(rng.integers(9))):
        with pytest.raises(ConfigError, match="takes a mapping of names to modules"):
            ModuleDict().update(wrong)
    with pytest.raises(ConfigError, match="got Dense"):
        ModuleDict(layer)
