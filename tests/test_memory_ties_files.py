"""Weights tied through memory (``Parameter(enc.weight.T)``, ``dec.weight.data =
enc.weight.data.T``, ``Embedding.from_pretrained(out.weight)``) kept by wxb.save/wxb.load
and copy.deepcopy, as torch.save/torch.load and torch's deepcopy keep shared storage.

Drawn fresh each run (the seed is printed; ``WXB_TEST_SEED`` replays it), in float64.
"""

import copy
import json

import numpy as np
import pytest
import torch
from torch_twins import tanh_autoencoder_head

import wxb
from wxb import nn
from wxb.data import safetensors_parts
from wxb.errors import ConfigError, ModelFileError
from wxb.nn.module import Parameter

TIES = ("T", "data", "later holds", "embedding")


def tied_pair(rng, tie: str):
    """The same tied model in wxb and torch, with the same starting values."""
    d, h, k = (int(n) for n in rng.integers(2, 6, size=3))
    if tie == "embedding":  # a table made of the output layer's weights (weight tying)
        out, their_out = (
            nn.Linear(d, k, dtype="float64"),
            torch.nn.Linear(d, k, dtype=torch.float64),
        )
        with torch.no_grad():
            their_out.weight.copy_(torch.from_numpy(out.weight.data.copy()))
            their_out.bias.copy_(torch.from_numpy(out.bias.data.copy()))
        table = nn.Embedding.from_pretrained(out.weight, freeze=False)
        their_table = torch.nn.Embedding.from_pretrained(their_out.weight, freeze=False)
        ours = nn.Sequential(table, nn.Flatten(), out)
        theirs = torch.nn.Sequential(their_table, torch.nn.Flatten(), their_out)
        return ours, theirs, d, k
    ours, theirs = tanh_autoencoder_head(d, h, k)
    if tie == "T":
        ours[2].weight = Parameter(ours[0].weight.T)
        theirs[2].weight = torch.nn.Parameter(theirs[0].weight.t())
    elif tie == "data":
        ours[2].weight.data = ours[0].weight.data.T
        theirs[2].weight.data = theirs[0].weight.data.t()
    else:  # the first layer views the memory of a later one
        ours[0].weight = Parameter(ours[2].weight.T)
        theirs[0].weight = torch.nn.Parameter(theirs[2].weight.t())
    return ours, theirs, d, k


def batches(rng, d: int, k: int, steps: int, tie: str) -> list:
    rows = [int(rng.integers(2, 6)) for _ in range(steps)]
    if tie == "embedding":
        return [(rng.integers(0, k, size=(n, 1)), rng.integers(0, k, size=n)) for n in rows]
    return [(rng.normal(size=(n, d)), rng.integers(0, k, size=n)) for n in rows]


def train(model, opt, data) -> None:
    for X, y in data:
        opt.zero_grad()
        nn.CrossEntropyLoss()(model(X), y).backward()
        opt.step()


def train_torch(model, opt, data) -> None:
    for X, y in data:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(
            model(torch.from_numpy(X)), torch.from_numpy(y)
        ).backward()
        opt.step()


def settings(rng) -> tuple[str, dict]:
    name = str(rng.choice(["SGD", "Adam", "RMSprop"]))
    options = {"lr": float(rng.uniform(0.01, 0.1))}
    if name == "SGD":
        options["momentum"] = float(rng.uniform(0.5, 0.95))
    return name, options


@pytest.mark.parametrize("tie", TIES)
def test_a_model_tied_through_memory_loads_tied_and_trains_on_as_the_saved_one(
    seeded, tie, tmp_path
):
    """Saved mid-training and loaded, the model trains on bit for bit as the saved one
    does, and as torch's tied model. wxb.load gave each parameter memory of its own:
    right predictions, but training moved the two apart (0.01-0.1 after a few steps)."""
    rng = seeded.rng
    ours, theirs, d, k = tied_pair(rng, tie)
    name, options = settings(rng)
    opt = getattr(wxb.optim, name)(ours.parameters(), **options)
    ref = getattr(torch.optim, name)(theirs.parameters(), **options)
    before, after = batches(rng, d, k, 3, tie), batches(rng, d, k, 4, tie)
    train(ours, opt, before)
    train_torch(theirs, ref, before)
    path = wxb.save(ours, tmp_path / "tied.safetensors")
    loaded = wxb.load(path).train()
    pairs = [(p, q) for p, q in zip(loaded.parameters(), ours.parameters(), strict=True)]
    viewer = 2 if tie in ("T", "data") else 0
    holder = 2 - viewer
    assert np.shares_memory(loaded[viewer].weight.data, loaded[holder].weight.data), seeded.msg(
        f"{tie}: loaded apart"
    )
    for p, q in pairs:
        assert np.array_equal(p.data, q.data) and p.data.strides == q.data.strides, seeded.msg(tie)
    again = getattr(wxb.optim, name)(loaded.parameters(), **options)
    again.load_state_dict(opt.state_dict())
    train(ours, opt, after)
    train(loaded, again, after)
    train_torch(theirs, ref, after)
    where = f"{tie}, {name} {options}"
    for (path_, p), q, t in zip(
        loaded.named_parameters(), ours.parameters(), theirs.parameters(), strict=True
    ):
        assert np.array_equal(p.data, q.data), seeded.msg(
            f"{where}: {path_} apart from the saved model's"
        )
        np.testing.assert_allclose(
            p.data,
            t.detach().numpy(),
            rtol=1e-9,
            atol=1e-12,
            err_msg=seeded.msg(f"{where}: {path_} vs torch"),
        )


def test_a_deep_copy_and_a_loaded_state_keep_the_models_memory_ties(seeded):
    """copy.deepcopy gives the copy's tied parameter a view of the copy's holder (numpy's
    deepcopy of a view copied it alone: the copy trained apart, torch's does not); and
    load_state_dict copies into the tied memory, as torch's, keeping the model's ties."""
    rng = seeded.rng
    tie = str(rng.choice(TIES))
    ours, theirs, d, k = tied_pair(rng, tie)
    twin = copy.deepcopy(ours)
    holder, viewer = (0, 2) if tie in ("T", "data") else (2, 0)
    assert np.shares_memory(twin[viewer].weight.data, twin[holder].weight.data), seeded.msg(tie)
    assert not np.shares_memory(twin[holder].weight.data, ours[holder].weight.data), seeded.msg(tie)
    data = batches(rng, d, k, 4, tie)
    name, options = settings(rng)
    train(twin, getattr(wxb.optim, name)(twin.parameters(), **options), data)
    train_torch(theirs, getattr(torch.optim, name)(theirs.parameters(), **options), data)
    for p, t in zip(twin.parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(
            p.data, t.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=seeded.msg(tie)
        )
    ours.load_state_dict(twin.state_dict())
    assert np.shares_memory(ours[viewer].weight.data, ours[holder].weight.data), seeded.msg(tie)
    for p, q in zip(ours.parameters(), twin.parameters(), strict=True):
        assert np.array_equal(p.data, q.data), seeded.msg(tie)


def test_memory_a_file_cannot_record_is_refused_at_save_and_a_bad_tie_at_load(tmp_path):
    """Two weights viewing overlapping parts of an array no parameter holds whole would
    load apart and train apart: refused before writing, naming them. A file whose memory
    tie reaches outside its holder (as_strided checks nothing) is refused by load."""
    model = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 3))
    memory = np.zeros((3, 4), np.float32)
    model[0].weight.data, model[2].weight.data = memory[:, :3], memory[:, 1:]
    with pytest.raises(ConfigError, match=r"dense1\.weight, dense2\.weight share memory"):
        wxb.save(model, tmp_path / "odd.safetensors")
    assert not (tmp_path / "odd.safetensors").exists()
    model[0].weight.data = model[0].weight.data.copy()
    model[2].weight.data = model[0].weight.data.T
    good = wxb.save(model, tmp_path / "good.safetensors")
    from safetensors import safe_open
    from safetensors.numpy import load_file

    with safe_open(str(good), "np") as f:
        metadata = f.metadata()
    tie = json.loads(metadata["memory_ties"])
    assert tie == {
        "dense2.weight": {
            "holder": "dense1.weight",
            "offset": 0,
            "shape": [3, 3],
            "strides": [1, 3],
        }
    }
    metadata.pop("digest")  # (a file without one, an earlier wxb's, is read unchecked)
    tie["dense2.weight"]["offset"] = 1  # its last element one past the holder's
    metadata["memory_ties"] = json.dumps(tie)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"".join(safetensors_parts(load_file(str(good)), metadata=metadata)))
    with pytest.raises(
        ModelFileError,
        match=r"tie 'dense2\.weight' → 'dense1\.weight': the view reaches outside the holder's",
    ):
        wxb.load(bad)
