"""What the docs say of today's optimisers, schedules and model files, held to the code.

docs/architecture.md said every optimiser's update rule calls wxb.kernels (RMSprop's and
Adagrad's are NumPy's on either route) and listed a model file's metadata keys without
``dense_buffers``; ``wxb train --help`` said onecycle cycles "momentum or Adam's beta1
where the optimiser has one", leaving out NAdam's, RAdam's and Adamax's β₁, and sgd
without --momentum has a momentum (0) that fit leaves uncycled."""

from __future__ import annotations

import argparse
import json
import pathlib
import re

import numpy as np
import pytest

import wxb
from wxb.data import read_safetensors_header
from wxb.nn import Dense, ReLU, Sequential, Standardize
from wxb.optim import OPTIMIZERS

ROOT = pathlib.Path(__file__).parents[1]
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def test_architecture_names_the_update_rules_that_call_the_kernels():
    # the Kernels section's sentence: the rules that call wxb.kernels, then in brackets
    # the ones that are NumPy's on either route
    sentence = re.search(
        r"Underneath, the pointwise activations.*?call `wxb.kernels`", ARCHITECTURE, re.S
    )
    assert sentence, "docs/architecture.md no longer says which rules call wxb.kernels"
    text = " ".join(sentence[0].split())
    compiled, _, numpy_only = text.rpartition("(")
    assert "every optimiser" not in text, text
    for name, cls in OPTIMIZERS.items():
        kernel = getattr(cls._rule, "calls_kernel", False)
        shown = "Adam(W)" if name in ("adam", "adamw") else cls.__name__
        if kernel:
            assert shown in compiled, (cls.__name__, text)
        else:
            assert f"{cls.__name__}'s" in numpy_only and shown not in compiled, (
                cls.__name__,
                text,
            )


def test_every_metadata_key_a_model_file_holds_is_in_the_files_section(tmp_path):
    rng = np.random.default_rng(np.random.SeedSequence().entropy)
    width = int(rng.integers(2, 5))
    tied = Dense(width, width)
    held = Dense(width, width)
    bias = held.bias.data.copy()
    del held.bias
    held.register_buffer("bias", bias)  # a constant bias: dense_buffers
    model = Sequential(
        Standardize(rng.normal(size=width), rng.uniform(0.5, 2, size=width), dtype="float32"),
        tied,
        ReLU(),
        tied,  # ties
        held,
        Dense(width, 2),
    )
    model.parameters()[0].requires_grad = False  # frozen
    path = wxb.save(model, tmp_path / "m.safetensors")
    metadata = read_safetensors_header(path)["__metadata__"]
    assert {"ties", "frozen", "dense_buffers", "float64_statistics"} <= set(metadata)
    files = _section(ARCHITECTURE, "Files")
    for key in metadata:
        assert f"`{key}`" in files, f"docs/architecture.md's Files section lacks `{key}`"
    assert json.loads(metadata["dense_buffers"]) == ["dense2.bias"]


def _help_of(option: str) -> str:
    from wxb.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    train = commands.choices["train"]
    action = next(a for a in train._actions if option in a.option_strings)
    return " ".join((action.help or "").split())


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_onecycle_cycles_what_wxb_train_help_says(name):
    seed = np.random.SeedSequence().entropy
    rng = np.random.default_rng(seed)
    text = _help_of("--lr-schedule")
    said = re.search(r"cycling beta1 \(([^)]*)\) or a --momentum above 0 \(([^)]*)\)", text)
    assert said, text
    with_betas = [n.strip() for n in said[1].split(",")]
    with_momentum = [n.strip() for n in said[2].split(",")]
    momentum = float(rng.choice([0.0, rng.uniform(0.1, 0.99)]))
    options = {"momentum": momentum} if name in ("sgd", "rmsprop") else {}
    X = rng.normal(size=(int(rng.integers(8, 20)), 3))
    y = X @ rng.normal(size=(3, 1))
    model = Sequential(Dense(3, 1, dtype="float64"))
    opt = wxb.optim.get_optimizer(name, model.parameters(), **options)
    before = json.dumps({k: v for k, v in opt.param_groups[0].items() if k != "params"})
    wxb.fit(model, X, y, optimizer=opt, lr_schedule="onecycle", epochs=2, batch_size=4,
            loss="mse", verbose=0, seed=1)  # fmt: skip
    group = opt.param_groups[0]
    if name == "muon":  # Muon's momentum on the matrices (group 0), AdamW's β₁ on the rest
        assert name in with_betas and name in with_momentum, text
        assert group["momentum"] != 0.95 and opt.param_groups[1]["betas"][0] != 0.9, seed
    elif name in with_betas:
        assert group["betas"][0] != json.loads(before)["betas"][0], (name, seed)
    elif name in with_momentum and momentum > 0:
        assert group["momentum"] != momentum, (name, momentum, seed)
    else:  # nothing to cycle, or a --momentum of 0 (plain SGD stays plain)
        assert "max_momentum" not in group, (name, momentum, group, seed)
        assert "momentum" not in group or group["momentum"] == momentum, (name, group, seed)
    # every optimiser with betas is named, and no other
    assert sorted(with_betas) == sorted(n for n, c in OPTIMIZERS.items() if "betas" in
                                        c.__init__.__code__.co_varnames)  # fmt: skip


def _fit_with(schedule_of, folder, epochs, resume=False):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(24, 3))
    y = X @ rng.normal(size=(3, 1))
    model = Sequential(Dense(3, 1, dtype="float64", seed=1))
    opt = wxb.optim.SGD(model.parameters(), lr=0.05)
    return wxb.fit(model, X, y, optimizer=opt, lr_schedule=schedule_of(opt), epochs=epochs,
                   batch_size=8, loss="mse", verbose=0, seed=1, checkpoint_dir=folder,
                   resume=resume)  # fmt: skip


@pytest.mark.parametrize("nested", [False, True])
def test_a_resume_refused_for_another_schedule_names_what_differs(tmp_path, nested):
    """A resume whose LambdaLR had another function was refused with the two digests it
    is recorded by ("schedule differs (checkpoint {'type': 'LambdaLR', 'lr_lambda':
    '6d78c34de0c25d09'}, now {... '7871f67a4aaab85d'})"); it now says which setting
    differs, a function as a function, a SequentialLR's schedule by its place."""
    seed = np.random.SeedSequence().entropy
    rng = np.random.default_rng(seed)
    gamma = float(rng.uniform(0.5, 0.95))
    other = float(rng.uniform(0.1, 0.45))

    def schedule(function, decay=gamma):
        def make(opt):
            made = wxb.optim.LambdaLR(opt, function)
            if not nested:
                return made
            warm = wxb.optim.ExponentialLR(opt, gamma=decay)
            return wxb.optim.SequentialLR(opt, [warm, made], milestones=[1])

        return make

    _fit_with(schedule(lambda e: gamma**e), tmp_path, 1)
    place = "schedulers[1] " if nested else ""
    with pytest.raises(wxb.ConfigError) as refused:
        _fit_with(schedule(lambda e: other ** (e + 1)), tmp_path, 2, resume=True)
    text = str(refused.value)
    assert f"schedule differs: {place}lr_lambda is another function" in text, (seed, text)
    assert not re.search(r"[0-9a-f]{16}", text), (seed, text)  # no digest shown
    if nested:  # a plain setting: by name, both values
        with pytest.raises(wxb.ConfigError) as refused:
            _fit_with(schedule(lambda e: gamma**e, other), tmp_path, 2, resume=True)
        said = f"schedulers[0] gamma {gamma!r} in the checkpoint, {other!r} now"
        assert said in str(refused.value), (seed, str(refused.value))


# (MultiplicativeLR, ChainedScheduler and CyclicLR, lacked when this was written, are
# there now)
TORCH_SCHEDULERS_LACKED = ["LRScheduler"]


@pytest.mark.parametrize("name", TORCH_SCHEDULERS_LACKED)
def test_torch_scheduler_names_wxb_lacks_are_the_readmes_and_say_what_to_write(name):
    """README said wxb.optim.lr_scheduler holds torch's names but CyclicLR; it also lacks
    MultiplicativeLR, ChainedScheduler and LRScheduler, whose imports said only
    'has no attribute', listing the names it holds."""
    import torch.optim.lr_scheduler as torch_schedulers

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"`{name}`" in readme
    lacked = set(torch_schedulers.__all__) - set(wxb.optim.lr_scheduler.__all__)
    assert lacked == set(TORCH_SCHEDULERS_LACKED)
    with pytest.raises(ImportError, match=f"has no {name}: "):
        exec(f"from wxb.optim.lr_scheduler import {name}", {})


def test_the_ways_said_for_multiplicative_and_chained_schedules_give_torchs_rates():
    import math

    import torch

    seed = np.random.SeedSequence().entropy
    rng = np.random.default_rng(seed)
    factors = rng.uniform(0.5, 1.0, size=3)
    gamma, step, drop = rng.uniform(0.7, 0.99), int(rng.integers(1, 4)), rng.uniform(0.1, 0.9)

    def f(epoch):
        return float(factors[epoch % 3])

    def torch_rates(make):
        p = torch.nn.Parameter(torch.zeros(2))
        opt = torch.optim.SGD([p], lr=0.1)
        schedule = make(opt)
        rates = []
        for _ in range(12):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            schedule.step()
        return np.array(rates)

    def wxb_rates(make):
        opt = wxb.optim.SGD(Dense(2, 2).parameters(), lr=0.1)
        schedules = make(opt)
        rates = []
        for _ in range(12):
            rates.append(opt.param_groups[0]["lr"])
            for schedule in schedules:
                schedule.step()
        return np.array(rates)

    L = torch.optim.lr_scheduler
    W = wxb.optim.lr_scheduler
    multiplied = torch_rates(lambda o: L.MultiplicativeLR(o, f))
    product = wxb_rates(
        lambda o: [W.LambdaLR(o, lambda e: math.prod(f(k) for k in range(1, e + 1)))]
    )
    np.testing.assert_allclose(product, multiplied, rtol=1e-13, err_msg=str(seed))
    chained = torch_rates(
        lambda o: L.ChainedScheduler([L.ExponentialLR(o, gamma), L.StepLR(o, step, drop)])
    )
    both = wxb_rates(lambda o: [W.ExponentialLR(o, gamma), W.StepLR(o, step, drop)])
    np.testing.assert_allclose(both, chained, rtol=1e-13, err_msg=str(seed))
