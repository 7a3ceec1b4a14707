"""Differential tests: models a user could write, against their PyTorch twins.

Hypothesis draws whole models (``user_models.user_models()``: Sequentials, subclasses
with their own forward, custom Modules with residuals, shared and tied layers, bare
Parameters, branch arithmetic, NumPy constants and ufuncs, batch statistics, indexing,
learnable 0-d gains, frozen parameters, (B,) outputs, two inputs), a loss (every wxb
loss, mean and sum; the object, the function, or the formula written in tensor
operations; PyTorch's weight=, ignore_index=, label_smoothing= and pos_weight=), an
optimiser (SGD with momentum, Adam, AdamW, RMSprop, Adagrad, NAdam, RAdam, Adamax,
Adadelta; random settings; one or two parameter groups, or two optimisers), a schedule
(StepLR, CosineAnnealingLR, ExponentialLR, MultiStepLR, ReduceLROnPlateau on the loss,
OneCycleLR, SequentialLR, CosineAnnealingWarmRestarts (also stepped with a fractional
epoch), ConstantLR, PolynomialLR), ``wxb.nn.init`` through
``model.apply`` after the optimiser is made, and data. PyTorch 2.13 runs the same model with
the same weights; everything is float64 and must agree to rtol = atol = 1e-10:

* one pass: the outputs, the loss, every parameter's gradient (one that torch leaves
  without a gradient, a frozen one, has none in wxb either), the inputs' gradients, a
  retained output gradient; or ``output.backward(G)``;
* three steps of the hand-written loop, written in the ways people write it
  (``opt.zero_grad()``, ``model.zero_grad()`` or ``set_to_none=False``; one
  ``backward()``, gradient accumulation, a sum of two or five losses, a scaled loss,
  ``retain_graph=True``; inference or a dropped forward between forward and backward;
  clipping with norm_type 2, 1, inf or 3; a learning-rate change or a schedule (and
  ``get_last_lr()``); ``model.apply(init_weights)``; ``add_param_group``; parameters
  frozen and unfrozen between steps; ``load_state_dict``, ``double()``; train or eval
  mode): the losses, the clipped norms, the gradients, the rates and the weights;
* ``wxb.fit`` (an optimiser instance of one or two groups, no shuffling, one to three
  epochs, a schedule by name or of one's own (ReduceLROnPlateau on the loss fit watches;
  OneCycleLR, and 'onecycle', stepped once a batch),
  clipping, validation data; then fit again, or a step by hand) against the same steps
  in PyTorch: the weights, and History's loss, accuracy, val_loss and lr; then
  ``wxb.evaluate``;
* ``model.predict`` (whole and in chunks) and no-grad and eval-mode calls against the
  twin in eval mode;
* a loss whose target is another model's output (distillation): gradients to both;
* every expression and hand-written loss the generator knows, each on its own (an
  expression wxb.Tensor cannot compute is kept out of generated models, and fails
  here by name).

Where wxb deliberately differs from PyTorch, the torch side computes wxb's documented
definition (``MSELoss``: (1/B) Σᵢ ½‖ŷᵢ − yᵢ‖²; Adagrad's Σ starts at a group's own
initial_accumulator_value). A failure prints the falsifying
example (the model as code, the loss, the optimiser, every other draw) and a
``@reproduce_failure`` blob. ``WXB_DIFF_EXAMPLES=<n>`` sets the examples per test
(default 100: about 20 s on 2 cores when everything passes; shrinking a failure adds
up to a minute; e.g. 2000 for a long hunt).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, assume, event, given, settings
from hypothesis import strategies as st
from user_models import (
    CONSTANTS,
    GAINS,
    LOSS_NAMES,
    MATRIX_OPERANDS,
    MIXES,
    OPERANDS,
    SEEDS,
    SQUEEZES,
    TRANSFORMS,
    ApplySpec,
    BranchesSpec,
    ConstantSpec,
    DenseSpec,
    GainSpec,
    LossCase,
    RawLinear,
    SqueezeSpec,
    TorchRawLinear,
    UserModel,
    build_user_model,
    optimizers,
    user_models,
)

import wxb
from wxb.nn import functional as wf

RTOL = ATOL = 1e-10
EXAMPLES = int(os.environ.get("WXB_DIFF_EXAMPLES", "100"))
DIFFERENTIAL = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written into the checkout; replay with the printed blob
    print_blob=True,
    # no "explain" phase: it reruns a shrunk failure many times for its comments
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
STEPS = 3
TOO_LARGE = 1e8  # a draw whose torch loss exceeds this diverges: rounding decides it


# ---------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------
def as_numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    if isinstance(value, wxb.Tensor):
        return np.asarray(value.data)
    return np.asarray(value)


def check(what: str, ours, theirs) -> None:
    a, b = as_numpy(ours), as_numpy(theirs)
    assert a.shape == b.shape, f"{what}: wxb has shape {a.shape}, torch {b.shape}"
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=f"{what} (wxb vs torch)")


def check_gradients(case: UserModel, where: str) -> None:
    """Every parameter's gradient; where torch has none (frozen), wxb has none either."""
    for name, p, q in case.params:
        if q.grad is None:
            assert p.grad is None, f"{where}: {name} has a gradient in wxb, none in torch"
        else:
            assert p.grad is not None, f"{where}: {name} has no gradient in wxb"
            check(f"{where}: ∂L/∂{name}", p.grad, q.grad)


def check_weights(case: UserModel, where: str) -> None:
    for name, p, q in case.params:
        check(f"{where}: {name}", p.data, q)


def to_torch(array) -> torch.Tensor:
    return torch.from_numpy(np.array(array))


def moderate(value) -> bool:
    """A finite loss of sane size: beyond, the draw diverges and rounding decides."""
    v = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
    return math.isfinite(v) and abs(v) < TOO_LARGE


# ---------------------------------------------------------------------------------
# One forward and backward pass
# ---------------------------------------------------------------------------------
@DIFFERENTIAL
@given(case=user_models(), data=st.data())
def test_one_pass_matches_torch(case: UserModel, data) -> None:
    """Outputs, loss and every gradient (parameters, and inputs when they require one)."""
    loss = data.draw(case.losses(), label="loss")
    batch = data.draw(st.integers(1, 8), label="batch")
    rng = np.random.default_rng(data.draw(SEEDS, label="data seed"))
    if loss.name == "bce_with_logits" and data.draw(st.booleans(), label="weight per row"):
        # PyTorch's weight broadcast over the batch too: (B, C), (B, 1), or (B,) for (B,)
        shape = data.draw(
            st.sampled_from(
                [(batch,)] if case.vector_output else [(batch, case.output_width), (batch, 1)]
            ),
            label="weight shape",
        )
        weight = (tuple(rng.uniform(0.1, 3.0, size=math.prod(shape))), shape)
        options = {**dict(loss.options), "weight": weight}
        form = "object" if loss.form == "by hand" else loss.form
        loss = dataclasses.replace(loss, options=tuple(options.items()), form=form)
    inputs_need_grad = data.draw(st.booleans(), label="inputs require grad")
    target_tensor = loss.name not in ("cross_entropy", "nll") and data.draw(
        st.booleans(), label="target as wxb.Tensor"
    )
    seed_output = data.draw(st.booleans(), label="output.backward(G) instead of a loss")
    xs, y = case.inputs(rng, batch), case.targets(loss, rng, batch)

    assert {id(p) for p in case.wxb_model.parameters()} == {id(p) for _, p, _ in case.params}
    assert len(list(case.torch_model.parameters())) == len(case.params), (
        "wxb's parameters() and torch's differ in number"
    )

    txs = [to_torch(x).requires_grad_(inputs_need_grad) for x in xs]
    t_out = case.torch_model(*txs)
    t_out.retain_grad()
    G = rng.normal(size=tuple(t_out.shape))
    t_value = loss.torch(t_out, to_torch(y))
    assume(moderate(t_value))
    if seed_output:
        t_out.backward(to_torch(G))
    else:
        t_value.backward()

    wxs = [wxb.Tensor(x.copy(), requires_grad=True) if inputs_need_grad else x.copy() for x in xs]
    out = case.wxb_model(*wxs)
    check("output", out, t_out)
    out.retain_grad()
    if seed_output:
        out.backward(G.copy())
    else:
        value = loss.wxb_fn()(out, wxb.Tensor(y.copy()) if target_tensor else y.copy())
        check("loss", value, t_value)
        value.backward()
    check_gradients(case, "one pass")
    assert out.grad is not None, "output.retain_grad(): no gradient kept"
    check("∂L/∂output (retain_grad)", out.grad, t_out.grad)
    if inputs_need_grad:
        for i, (x, tx) in enumerate(zip(wxs, txs, strict=True)):
            assert x.grad is not None, f"input {i} got no gradient in wxb"
            check(f"∂L/∂input{i}", x.grad, tx.grad)


# ---------------------------------------------------------------------------------
# The hand-written training loop
# ---------------------------------------------------------------------------------
ZEROING = ["opt.zero_grad()", "model.zero_grad()", "opt.zero_grad(set_to_none=False)"]
BACKWARD = {  # how the step's loss goes backward, and how many batches it reads
    "loss.backward()": 1,
    "(0.5 * loss).backward()": 1,
    "loss.backward(retain_graph=True); loss.backward()": 1,
    "loss1.backward(); loss2.backward()": 2,  # gradient accumulation
    "(loss1 + loss2).backward()": 2,  # two forwards pending at once
    "sum(five losses).backward()": 5,  # more pending forwards than wxb keeps plans for
}
BETWEEN = [  # what else runs between the forward and the backward
    None,
    "model.predict(X2)",
    "with wxb.no_grad(): model(X2)",
    "model(X2), its result dropped",
]
BEFORE_STEP = [  # done to both models before a step
    None,
    "model.load_state_dict(initial state)",
    "model.double()",
    "opt.load_state_dict(opt.state_dict())",  # and the schedule's
    "a new optimiser, loaded with the old one's state_dict()",  # a resumed run, schedule too
    "opt.state = collections.defaultdict(dict)",  # PyTorch's reset of the moments
]
ARRANGEMENTS = [
    "one optimiser",
    "two parameter groups",
    "two optimisers",
    "add_param_group before step 2",
]
LR_CHANGES = [None, "opt.lr = opt.lr / 2", "for g in opt.param_groups: g['lr'] /= 2"]


def backward_pass(how: str, model, loss_fn, batches, between=None) -> list:
    """Forward and backward as ``how`` says; returns the losses it computed.
    ``between()`` runs after the forwards, before the backward."""
    values = [loss_fn(model(*xs), y) for xs, y in batches]
    if between is not None:
        between()
    if how == "loss.backward()":
        values[0].backward()
    elif how == "(0.5 * loss).backward()":
        (0.5 * values[0]).backward()
    elif how.startswith("loss.backward(retain_graph=True)"):
        values[0].backward(retain_graph=True)
        values[0].backward()
    elif how == "loss1.backward(); loss2.backward()":
        values[0].backward()
        values[1].backward()
    elif how == "(loss1 + loss2).backward()":
        (values[0] + values[1]).backward()
    else:
        total = values[0]
        for value in values[1:]:
            total = total + value
        total.backward()
    return values


def run_between(what: str | None, model, xs: list) -> None:
    """Inference (or a dropped forward) on other rows while a graph waits for backward."""
    if what == "model.predict(X2)":
        model.predict(*xs)
    elif what == "with wxb.no_grad(): model(X2)":
        with wxb.no_grad():
            model(*xs)
    elif what == "model(X2), its result dropped":
        model(*xs)


SEQUENCED = {  # a SequentialLR's parts (kind → drawn settings)
    "LinearLR": lambda draw: {
        "start_factor": draw(st.floats(0.1, 1.0)),
        "end_factor": draw(st.sampled_from([1.0]) | st.floats(0.1, 1.0)),
        "total_iters": draw(st.integers(1, 3)),
    },
    "ConstantLR": lambda draw: {
        "factor": draw(st.floats(0.1, 1.0)),
        "total_iters": draw(st.integers(1, 3)),
    },
    "ExponentialLR": lambda draw: {"gamma": draw(st.floats(0.5, 0.99))},
    "StepLR": lambda draw: {
        "step_size": draw(st.integers(1, 2)),
        "gamma": draw(st.floats(0.1, 0.9)),
    },
    "CosineAnnealingLR": lambda draw: {
        "T_max": draw(st.integers(1, 4)),
        "eta_min": draw(st.sampled_from([0.0, 1e-3])),
    },
    "PolynomialLR": lambda draw: {
        "total_iters": draw(st.integers(1, 4)),
        "power": draw(st.sampled_from([1.0, 2.0]) | st.floats(0.5, 3.0)),
    },
}


@st.composite
def schedules(draw, n_groups: int = 1, steps: int = STEPS):
    """A schedule a user makes on an optimiser: (kind, its settings). ``steps``: the most
    steps it may be stepped (OneCycleLR's total_steps covers them, as torch requires)."""
    kind = draw(
        st.sampled_from(
            ["StepLR", "CosineAnnealingLR", "ExponentialLR", "MultiStepLR", "ReduceLROnPlateau",
             "OneCycleLR", "SequentialLR", "CosineAnnealingWarmRestarts", "ConstantLR",
             "PolynomialLR"]
        )
    )  # fmt: skip
    if kind in ("StepLR", "CosineAnnealingLR", "ExponentialLR", "ConstantLR", "PolynomialLR"):
        options = SEQUENCED[kind](draw)
    elif kind == "MultiStepLR":
        milestones = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
        options = {"milestones": milestones, "gamma": draw(st.floats(0.1, 0.9))}
    elif kind == "OneCycleLR":
        peak = st.floats(1e-3, 0.05)
        options = {
            "max_lr": draw(st.lists(peak, min_size=n_groups, max_size=n_groups))
            if n_groups > 1 and draw(st.booleans())
            else draw(peak),
            "total_steps": steps + draw(st.integers(0, 3)),
            "pct_start": draw(st.sampled_from([0.3]) | st.floats(0.1, 0.45)),
            "anneal_strategy": draw(st.sampled_from(["cos", "linear"])),
            "three_phase": draw(st.booleans()),
            "div_factor": draw(st.sampled_from([25.0, 10.0, 2.5])),
            "final_div_factor": draw(st.sampled_from([1e4, 100.0])),
            "cycle_momentum": draw(st.booleans()),  # (off where the optimiser has none)
        }
        # a phase 0 steps long: torch divides by 0 (ZeroDivisionError), wxb refuses it
        total, pct = options["total_steps"], options["pct_start"]
        ends = [float(pct * total) - 1, total - 1]
        if options["three_phase"]:
            ends.insert(1, float(2 * pct * total) - 2)
        assume(all(end != start for start, end in zip([0.0, *ends], ends, strict=False)))
        if draw(st.booleans()):
            options["base_momentum"] = draw(st.floats(0.5, 0.85))
            options["max_momentum"] = draw(st.floats(0.9, 0.99))
    elif kind == "SequentialLR":
        parts = draw(st.lists(st.sampled_from(sorted(SEQUENCED)), min_size=2, max_size=3))
        milestones = sorted(draw(st.sets(st.integers(1, 4), min_size=len(parts) - 1,
                                         max_size=len(parts) - 1)))  # fmt: skip
        options = {
            "schedulers": tuple((part, tuple(SEQUENCED[part](draw).items())) for part in parts),
            "milestones": milestones,
        }
    elif kind == "CosineAnnealingWarmRestarts":
        options = {
            "T_0": draw(st.integers(1, 3)),
            "T_mult": draw(st.integers(1, 2)),
            "eta_min": draw(st.sampled_from([0.0, 1e-3])),
        }
    else:
        options = {
            "factor": draw(st.sampled_from([0.1, 0.5]) | st.floats(0.05, 0.9)),
            "patience": draw(st.integers(0, 2)),
            "threshold": draw(st.sampled_from([1e-4, 0.01, 0.1])),
            "threshold_mode": draw(st.sampled_from(["rel", "abs"])),
            "cooldown": draw(st.integers(0, 1)),
        }
        floor = st.sampled_from([0.0, 1e-3, 5e-3])
        if draw(st.booleans()):
            options["min_lr"] = (
                draw(st.lists(floor, min_size=n_groups, max_size=n_groups))
                if draw(st.booleans())
                else draw(floor)
            )
    return kind, tuple(options.items())


def make_schedule(schedule, w_opt, t_opt):
    """The same schedule on a wxb and a torch optimiser."""
    kind, options = schedule
    options = dict(options)
    if kind == "ReduceLROnPlateau" and isinstance(options.get("min_lr"), list):
        floors = options["min_lr"]  # one per group: as many as the optimiser holds
        if len(floors) != len(w_opt.param_groups):
            options["min_lr"] = floors[0]
    if kind == "OneCycleLR":
        if isinstance(options["max_lr"], list) and len(options["max_lr"]) != len(
            w_opt.param_groups
        ):
            options["max_lr"] = options["max_lr"][0]
        # torch refuses cycle_momentum on an optimiser without momentum or betas
        if "momentum" not in t_opt.defaults and "betas" not in t_opt.defaults:
            options["cycle_momentum"] = False
    if kind == "SequentialLR":
        parts = options.pop("schedulers")
        return (
            wxb.optim.SequentialLR(
                w_opt, [getattr(wxb.optim, k)(w_opt, **dict(o)) for k, o in parts], **options
            ),
            torch.optim.lr_scheduler.SequentialLR(
                t_opt,
                [getattr(torch.optim.lr_scheduler, k)(t_opt, **dict(o)) for k, o in parts],
                **options,
            ),
        )
    return (
        getattr(wxb.optim, kind)(w_opt, **options),
        getattr(torch.optim.lr_scheduler, kind)(t_opt, **options),
    )


INITS = {  # wxb.nn.init's function for a weight matrix, with its settings: (name, kwargs)
    "xavier_uniform_": {"gain": 1.0},
    "xavier_normal_": {"gain": 0.5},
    "kaiming_uniform_": {"a": 5**0.5},  # Linear.reset_parameters' own
    "kaiming_normal_": {"mode": "fan_out", "nonlinearity": "relu"},
    "orthogonal_": {"gain": 0.8},
    "uniform_": {"a": -0.3, "b": 0.3},
    "normal_": {"std": 0.2},
    "trunc_normal_": {"std": 0.5, "a": -0.6, "b": 0.6},
    "eye_": {},
    "zeros_": {},
}  # (not constant_: equal weights make gradients 0 in exact arithmetic, whose rounding
# noise RMSprop and Adagrad divide by ε and blow up past the tolerance)
BIAS_INITS = {"zeros_": {}, "constant_": {"val": 0.01}, "uniform_": {"a": -0.1, "b": 0.1}}
RANDOM_INITS = {"xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
                "orthogonal_", "uniform_", "normal_", "trunc_normal_"}  # fmt: skip


@st.composite
def initialisations(draw):
    """model.apply(init_weights): (weight function, bias function, how draws are seeded)."""
    weight = draw(st.sampled_from(sorted(INITS)))
    bias = draw(st.none() | st.sampled_from(sorted(BIAS_INITS)))
    seeding = draw(st.sampled_from(["generator=", "wxb.manual_seed"]))
    return weight, bias, seeding, draw(SEEDS)


def initialise(case: UserModel, init) -> None:
    """model.apply(init_weights) on the wxb model, as PyTorch users write it; then the
    twin gets the same values (torch's own function where it draws nothing)."""
    weight, bias, seeding, seed = init
    rng = np.random.default_rng(seed)
    if seeding == "wxb.manual_seed":
        wxb.manual_seed(seed)

    def drawn(name: str, settings: dict) -> dict:
        random = name in RANDOM_INITS
        return {**settings, "generator": rng} if random and seeding == "generator=" else settings

    done: dict[int, str] = {}  # id(parameter) → the function that set it

    def init_weights(m):
        if isinstance(m, (wxb.nn.Dense, RawLinear)):
            getattr(wxb.nn.init, weight)(m.weight, **drawn(weight, INITS[weight]))
            done[id(m.weight)] = weight
            if bias is not None and getattr(m, "bias", None) is not None:
                getattr(wxb.nn.init, bias)(m.bias, **drawn(bias, BIAS_INITS[bias]))
                done[id(m.bias)] = bias

    case.wxb_model.apply(init_weights)

    def torch_init_weights(m):
        if isinstance(m, (torch.nn.Linear, TorchRawLinear)):
            getattr(torch.nn.init, weight)(m.weight, **INITS[weight])
            if bias is not None and getattr(m, "bias", None) is not None:
                getattr(torch.nn.init, bias)(m.bias, **BIAS_INITS[bias])

    case.torch_model.apply(torch_init_weights)
    # what torch drew is replaced by wxb's draws (checked as far as a draw can be);
    # what it set is compared
    for name, p, q in case.params:
        function = done.get(id(p))
        if function in RANDOM_INITS and q.ndim == 2:
            check_drawn(name, function, np.array(p.data), q)
        elif function in RANDOM_INITS:
            assert np.all(np.abs(np.array(p.data)) <= 0.1), f"{name}: {function} beyond ±0.1"
        else:
            check(f"{name} after model.apply(init_weights)", p.data, q)
            continue
        with torch.no_grad():
            q.copy_(to_torch(p.data))


def check_drawn(name: str, weight: str, values: np.ndarray, q: torch.Tensor) -> None:
    """What can be checked of a draw: its bounds, or orthogonality (by torch's fans)."""
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(q)
    settings = INITS[weight]
    if weight == "xavier_uniform_":
        bound = settings["gain"] * math.sqrt(6 / (fan_in + fan_out))
    elif weight == "kaiming_uniform_":
        bound = (
            math.sqrt(3)
            * torch.nn.init.calculate_gain("leaky_relu", settings["a"])
            / math.sqrt(fan_in)
        )
    elif weight == "uniform_":
        bound = 0.3
    elif weight == "trunc_normal_":
        bound = 0.6
    elif weight == "orthogonal_":
        rows, cols = values.shape
        m = values @ values.T if rows <= cols else values.T @ values
        np.testing.assert_allclose(m, settings["gain"] ** 2 * np.eye(min(rows, cols)), atol=1e-12,
                                   err_msg=f"{name}: orthogonal_ is not orthogonal")  # fmt: skip
        return
    else:
        return
    assert np.all(np.abs(values) <= bound), f"{name}: {weight} drew beyond ±{bound}"


@DIFFERENTIAL
@given(case=user_models(eval_dropout=True), data=st.data())
def test_hand_written_loop_matches_torch(case: UserModel, data) -> None:
    """opt.zero_grad(); loss = loss_fn(model(X), y); loss.backward(); opt.step() — ×3,
    in the variants people write."""
    n_params = len(case.params)
    loss = data.draw(case.losses(), label="loss")
    opt_case = data.draw(optimizers(), label="optimizer")
    which = data.draw(st.sampled_from(["all", "trainable"]), label="optimised parameters")
    arrangement = "one optimiser"
    if n_params > 1:
        arrangement = data.draw(st.sampled_from(ARRANGEMENTS), label="arrangement")
    if arrangement != "one optimiser":
        first = data.draw(
            st.sets(st.sampled_from(range(n_params)), min_size=1, max_size=n_params - 1),
            label="first group or optimiser (indices)",
        )
    if arrangement == "two optimisers":
        second_opt = data.draw(optimizers(), label="second optimizer")
    zeroing = data.draw(st.sampled_from(ZEROING), label="zeroing")
    how = data.draw(st.sampled_from(list(BACKWARD)), label="backward")
    clip = data.draw(st.none() | st.floats(0.05, 2.0), label="clip_grad_norm_ max_norm")
    norm_type = data.draw(st.sampled_from([2, 2.0, 1, math.inf, "inf", 3.0]), label="norm_type")
    lr_change = data.draw(st.sampled_from(LR_CHANGES), label="before step 2")
    schedule = None
    if not arrangement.startswith("add_param_group"):  # (wxb's own rule for a group added)
        groups = 2 if arrangement == "two parameter groups" else 1
        schedule = data.draw(
            st.none() | schedules(groups), label="schedule stepped after each step"
        )
    beside = None  # a second schedule on each optimiser, stepped after it: they compound
    if schedule is not None and schedule[0] in SEQUENCED:
        kind = data.draw(st.none() | st.sampled_from(sorted(SEQUENCED)), label="and beside it")
        if kind is not None:
            beside = (kind, tuple(SEQUENCED[kind](data.draw).items()))
    restarts_at = data.draw(
        st.sampled_from([None, 2, 3]),
        label="CosineAnnealingWarmRestarts stepped with step(k / this), as once a batch",
    )
    plateau_on = data.draw(
        st.sampled_from(["scheduler.step(loss)", "scheduler.step(loss.item())"]),
        label="ReduceLROnPlateau stepped on",
    )
    init = data.draw(
        st.none() | st.tuples(initialisations(), st.integers(1, STEPS)),
        label="model.apply(init_weights) before step",
    )
    toggles = data.draw(
        st.lists(
            st.sets(st.sampled_from(range(n_params)), max_size=2), min_size=STEPS, max_size=STEPS
        ),
        label="requires_grad flipped before each step (indices)",
    )
    event(f"optimizer {opt_case.kind}")
    event(f"schedule {schedule and schedule[0]}")
    event(f"loss {loss.name}{' with options' if loss.options else ''}")
    event(f"init {init is not None}")
    eval_mode = not case.trains_deterministically or data.draw(st.booleans(), label="eval()")
    between = data.draw(st.sampled_from(BETWEEN), label="between forward and backward")
    if between == "model.predict(X2)" and case.n_inputs != 1:
        between = None
    before = data.draw(st.sampled_from(BEFORE_STEP), label="before step 3")
    sizes = data.draw(
        st.lists(
            st.lists(st.integers(1, 8), min_size=BACKWARD[how], max_size=BACKWARD[how]),
            min_size=STEPS,
            max_size=STEPS,
        ),
        label="batch sizes",
    )
    rng = np.random.default_rng(data.draw(SEEDS, label="data seed"))
    steps = [[(case.inputs(rng, b), case.targets(loss, rng, b)) for b in step] for step in sizes]

    # The optimisers, the same on both sides
    chosen = [i for i, (_, _, q) in enumerate(case.params) if which == "all" or q.requires_grad]
    assume(chosen)
    ours = [case.params[i][1] for i in chosen]
    theirs = [case.params[i][2] for i in chosen]
    if arrangement == "one optimiser":
        w_opts, t_opts = [opt_case.wxb(ours)], [opt_case.torch(theirs)]
        makers = [(lambda: opt_case.wxb(ours), lambda: opt_case.torch(theirs))]
    else:
        one = [k for k, i in enumerate(chosen) if i in first]
        two = [k for k, i in enumerate(chosen) if i not in first]
        assume(one and two)
        w1, w2 = [ours[k] for k in one], [ours[k] for k in two]
        t1, t2 = [theirs[k] for k in one], [theirs[k] for k in two]
        # (after add_param_group, the same two groups)
        makers = [(lambda: opt_case.wxb(w1, w2), lambda: opt_case.torch(t1, t2))]
        if arrangement == "two parameter groups":
            w_opts, t_opts = [opt_case.wxb(w1, w2)], [opt_case.torch(t1, t2)]
        elif arrangement.startswith("add_param_group"):
            w_opts, t_opts = [opt_case.wxb(w1)], [opt_case.torch(t1)]
        else:
            w_opts = [opt_case.wxb(w1), second_opt.wxb(w2)]
            t_opts = [opt_case.torch(t1), second_opt.torch(t2)]
            makers = [
                (lambda: opt_case.wxb(w1), lambda: opt_case.torch(t1)),
                (lambda: second_opt.wxb(w2), lambda: second_opt.torch(t2)),
            ]

    w_schedules, t_schedules = [], []
    w_besides, t_besides = [], []
    if schedule is not None:
        for w_opt, t_opt in zip(w_opts, t_opts, strict=True):
            w_schedule, t_schedule = make_schedule(schedule, w_opt, t_opt)
            w_schedules.append(w_schedule)
            t_schedules.append(t_schedule)
            if beside is not None:
                w_beside, t_beside = make_schedule(beside, w_opt, t_opt)
                w_besides.append(w_beside)
                t_besides.append(t_beside)

    model, twin = case.wxb_model, case.torch_model
    model.train(not eval_mode)
    twin.train(not eval_mode)
    loss_fn = loss.wxb_fn()
    initial = model.state_dict()
    t_initial = [q.detach().clone() for _, _, q in case.params]
    others = case.inputs(rng, 3)
    for step, batches in enumerate(steps, start=1):
        at = f"step {step}"
        if step == 3 and before == "model.load_state_dict(initial state)":
            model.load_state_dict(initial)
            with torch.no_grad():
                for (_, _, q), value in zip(case.params, t_initial, strict=True):
                    q.copy_(value)
        elif step == 3 and before == "model.double()":
            model.double()  # already float64: a cast all the same (new arrays)
        elif step == 3 and before == "opt.load_state_dict(opt.state_dict())":
            for w_opt, t_opt in zip(w_opts, t_opts, strict=True):
                w_opt.load_state_dict(w_opt.state_dict())
                t_opt.load_state_dict(t_opt.state_dict())
            for w_sched, t_sched in zip(
                w_schedules + w_besides, t_schedules + t_besides, strict=True
            ):
                w_sched.load_state_dict(w_sched.state_dict())
                t_sched.load_state_dict(t_sched.state_dict())
        elif step == 3 and before == "opt.state = collections.defaultdict(dict)":
            for k, (w_opt, t_opt) in enumerate(zip(w_opts, t_opts, strict=True)):
                w_opt.state = collections.defaultdict(dict)
                t_opt.state = collections.defaultdict(dict)
                (second_opt if k == 1 else opt_case).start_sums(t_opt)
        elif step == 3 and before is not None and before.startswith("a new optimiser"):
            # as a run resumes: optimiser and schedule made again, then their states loaded
            for i, (make_wxb, make_torch) in enumerate(makers):
                w_new, t_new = make_wxb(), make_torch()
                if w_schedules:
                    w_sched, t_sched = make_schedule(schedule, w_new, t_new)
                if w_besides:
                    w_next, t_next = make_schedule(beside, w_new, t_new)
                w_new.load_state_dict(w_opts[i].state_dict())
                t_new.load_state_dict(t_opts[i].state_dict())
                if w_schedules:
                    w_sched.load_state_dict(w_schedules[i].state_dict())
                    t_sched.load_state_dict(t_schedules[i].state_dict())
                    w_schedules[i], t_schedules[i] = w_sched, t_sched
                if w_besides:
                    w_next.load_state_dict(w_besides[i].state_dict())
                    t_next.load_state_dict(t_besides[i].state_dict())
                    w_besides[i], t_besides[i] = w_next, t_next
                w_opts[i], t_opts[i] = w_new, t_new
        if init is not None and step == init[1]:  # the optimisers made, their states kept
            initialise(case, init[0])
        for i in toggles[step - 1]:
            _, p, q = case.params[i]
            p.requires_grad = not p.requires_grad
            q.requires_grad_(not q.requires_grad)
        if not any(q.requires_grad for _, _, q in case.params):  # nothing to train: undo
            for i in toggles[step - 1]:
                _, p, q = case.params[i]
                p.requires_grad = not p.requires_grad
                q.requires_grad_(not q.requires_grad)
        if step == 2 and arrangement.startswith("add_param_group"):
            w_opts[0].add_param_group(opt_case.second_group(w2))
            t_opts[0].add_param_group(opt_case.second_group(t2))
            opt_case.start_sums(t_opts[0])
        if step == 2 and lr_change is not None:
            for w_opt, t_opt in zip(w_opts, t_opts, strict=True):
                if lr_change.startswith("opt.lr"):
                    w_opt.lr = w_opt.lr / 2
                    rate = t_opt.param_groups[0]["lr"] / 2
                    for g in t_opt.param_groups:  # wxb: opt.lr sets every group's rate
                        g["lr"] = rate
                else:
                    for g in w_opt.param_groups:
                        g["lr"] /= 2
                    for g in t_opt.param_groups:
                        g["lr"] /= 2
        # zero_grad
        if zeroing == "model.zero_grad()":
            model.zero_grad()
            twin.zero_grad()
        else:
            none = zeroing == "opt.zero_grad()"
            for w_opt, t_opt in zip(w_opts, t_opts, strict=True):
                w_opt.zero_grad(set_to_none=none)
                t_opt.zero_grad(set_to_none=none)
        # forward and backward: torch first (a divergent draw is dropped)
        t_batches = [([to_torch(x) for x in xs], to_torch(y)) for xs, y in batches]
        t_values = backward_pass(how, twin, loss.torch, t_batches)
        assume(all(moderate(v) for v in t_values))
        values = backward_pass(
            how, model, loss_fn, batches, lambda: run_between(between, model, others)
        )
        for k, (value, t_value) in enumerate(zip(values, t_values, strict=True)):
            check(f"{at}: loss {k + 1}", value, t_value)
        check_gradients(case, f"{at}: after backward")
        if clip is not None:
            norm = wxb.optim.clip_grad_norm_(ours, clip, norm_type=norm_type)
            t_norm = torch.nn.utils.clip_grad_norm_(theirs, clip, norm_type=norm_type)
            check(f"{at}: clip_grad_norm_ returned", norm, t_norm)
            check_gradients(case, f"{at}: after clipping")
        for w_opt, t_opt in zip(w_opts, t_opts, strict=True):
            w_opt.step()
            t_opt.step()
        check_weights(case, f"{at}: after opt.step()")
        for i, (w_schedule, t_schedule) in enumerate(zip(w_schedules, t_schedules, strict=True)):
            if schedule[0] == "CosineAnnealingWarmRestarts" and restarts_at is not None:
                w_schedule.step(step / restarts_at)  # torch's epoch + i / iters
                t_schedule.step(step / restarts_at)
            elif schedule[0] != "ReduceLROnPlateau":
                w_schedule.step()
                t_schedule.step()
            elif plateau_on == "scheduler.step(loss)":
                w_schedule.step(values[0])
                t_schedule.step(t_values[0].detach())  # (torch warns of a float of a graph)
            else:
                w_schedule.step(values[0].item())
                t_schedule.step(t_values[0].item())
            check(
                f"{at}: optimiser {i}: get_last_lr()",
                w_schedule.get_last_lr(),
                t_schedule.get_last_lr(),
            )
            if w_besides:
                w_besides[i].step()
                t_besides[i].step()
                check(
                    f"{at}: optimiser {i}: the schedule beside: get_last_lr()",
                    w_besides[i].get_last_lr(),
                    t_besides[i].get_last_lr(),
                )
            groups = zip(w_opts[i].param_groups, t_opts[i].param_groups, strict=True)
            for k, (g, tg) in enumerate(groups):
                check(
                    f"{at}: optimiser {i}, group {k}: lr after the schedule's step",
                    g["lr"],
                    tg["lr"],
                )


# ---------------------------------------------------------------------------------
# wxb.fit and wxb.evaluate
# ---------------------------------------------------------------------------------
def scheduled_lr(schedule: str | None, base: float, epoch: int, epochs: int) -> float:
    """The rate of epoch ``epoch`` (0-based) under fit's named schedules, as documented."""
    if schedule == "step":  # StepLR(step_size=max(1, epochs // 3), gamma=0.1)
        return base * 0.1 ** (epoch // max(1, epochs // 3))
    if schedule == "cosine":  # CosineAnnealingLR(T_max=epochs)
        return base * (1 + math.cos(math.pi * epoch / epochs)) / 2
    if schedule == "invscaling":  # InverseScalingLR(power=0.5)
        return base / (epoch + 1) ** 0.5
    return base


def torch_evaluate(case: UserModel, loss, X, y) -> dict[str, float]:
    """What wxb.evaluate reports, from the twin in eval mode."""
    twin = case.torch_model
    mode = twin.training
    twin.eval()
    with torch.no_grad():
        out = twin(to_torch(X))
        figures = {"loss": float(loss.torch_library(out, to_torch(y)))}
    twin.train(mode)
    correct = correct_predictions(loss, out, y)
    if correct is not None:
        figures["accuracy"] = scored_share(loss, correct, y)
    return figures


def scored_share(loss, correct: int, y: np.ndarray) -> float:
    """The accuracy: over the rows scored (NaN where none is, as wxb reports)."""
    scored = int((~loss.ignored(y)).sum())
    return correct / scored if scored else math.nan


def correct_predictions(loss, out: torch.Tensor, y: np.ndarray) -> int | None:
    """Rows predicted right (rows of the ignored class index are not scored). Outputs
    within rounding of a tie (of the argmax, or of 0) are dropped: rounding decides."""
    out = out.detach().numpy()
    if loss.name.startswith("cross_entropy") or loss.name == "nll":
        if out.shape[1] > 1:
            top = np.sort(out, axis=1)
            assume(np.all(top[:, -1] - top[:, -2] > 1e-9 * (1 + np.abs(top[:, -1]))))
        labels = y if y.ndim == 1 else y.argmax(axis=1)
        return int(((out.argmax(axis=1) == labels) & ~loss.ignored(y)).sum())
    if loss.name == "bce_with_logits":  # a row is right when all its labels are (sklearn's)
        assume(np.all((out == 0) | (np.abs(out) > 1e-9)))
        right = (out > 0) == (y > 0.5)
        return int(right.reshape(len(right), -1).all(axis=1).sum())
    return None


def scored_row_kept(
    loss: LossCase, y: np.ndarray, width: int, rng: np.random.Generator
) -> np.ndarray:
    """``y``, or where the loss leaves out every row (each of its ignore_index), ``y`` with
    one row, drawn, given another class."""
    ignored = loss.ignored(y)
    if not len(y) or not ignored.all():
        return y
    index = dict(loss.options)["ignore_index"]
    y = y.copy()
    y[rng.integers(len(y))] = (index + 1) % width if 0 <= index < width else 0
    return y


@DIFFERENTIAL
@given(case=user_models(n_inputs=1), data=st.data())
def test_fit_matches_torch(case: UserModel, data) -> None:
    """fit(..., optimizer=<instance>, shuffle=False) takes the same steps as PyTorch on
    the same batches, in order, and reports the same figures."""
    loss = data.draw(case.losses(), label="loss")
    opt_case = data.draw(optimizers(), label="optimizer")
    which = data.draw(st.sampled_from(["all", "trainable"]), label="optimised parameters")
    n = data.draw(st.integers(1, 12), label="rows")
    batch_size = data.draw(st.integers(1, 8), label="batch_size")
    epochs = data.draw(st.integers(1, 3), label="epochs")
    two_groups = len(case.params) > 1 and data.draw(st.booleans(), label="two parameter groups")
    batches = math.ceil(n / min(batch_size, n))  # a fit's steps: OneCycleLR must cover two fits'
    schedule = data.draw(
        st.one_of(
            st.sampled_from([None, "step", "cosine", "invscaling", "plateau", "onecycle"]),
            schedules(2 if two_groups else 1, 2 * epochs * batches),
            schedules(2 if two_groups else 1, 2 * epochs * batches),
        ),
        label="lr_schedule",
    )
    clip = data.draw(st.none() | st.floats(0.05, 2.0), label="clip_grad_norm")
    n_val = data.draw(st.none() | st.integers(1, 6), label="validation rows")
    x_form = data.draw(st.sampled_from(["float64", "float32", "list"]), label="X as")
    init = data.draw(st.none() | initialisations(), label="model.apply(init_weights) before fit")
    early_stopping = data.draw(st.none() | st.integers(1, 2), label="early_stopping")
    restore_best = data.draw(st.booleans(), label="restore_best_weights")
    rng = np.random.default_rng(data.draw(SEEDS, label="data seed"))
    X, y = rng.normal(size=(n, case.input_width)), case.targets(loss, rng, n)
    # fit refuses, on purpose, targets whose every row is of a cross-entropy's ignore_index
    # (nothing is trained on: 'no row is trained on'), and such validation rows where early
    # stopping or a plateau schedule would watch their NaN val_loss (tested where those
    # refusals are): a few rows planted at 30% each were so now and then
    y = scored_row_kept(loss, y, case.output_width, rng)
    y_fit = y
    if loss.name in ("mse", "bce_with_logits") and case.output_width == 1:
        if data.draw(st.booleans(), label="y reshaped, (n,) ↔ (n, 1)"):
            y_fit = y[:, None] if case.vector_output else y[:, 0]
    if x_form == "float32":
        X = X.astype(np.float32)
    X_fit = X.tolist() if x_form == "list" else X
    X = X.astype(np.float64)  # what both train on
    val = None
    if n_val is not None:
        y_val = case.targets(loss, rng, n_val)
        if early_stopping is not None or schedule == "plateau":
            y_val = scored_row_kept(loss, y_val, case.output_width, rng)
        val = (rng.normal(size=(n_val, case.input_width)), y_val)

    then = data.draw(
        st.sampled_from([None, "fit again", "one hand-written step"]), label="after fit"
    )
    event(f"fit: optimizer {opt_case.kind}, {'two groups' if two_groups else 'one group'}")
    event(f"fit: schedule {schedule[0] if isinstance(schedule, tuple) else schedule}")
    event(f"fit: loss {loss.name}{' with options' if loss.options else ''}")

    chosen = [k for k, (_, _, q) in enumerate(case.params) if which == "all" or q.requires_grad]
    assume(chosen)
    ours = [case.params[k][1] for k in chosen]
    theirs = [case.params[k][2] for k in chosen]
    if two_groups:
        first = data.draw(st.integers(1, len(case.params) - 1), label="first group: parameters")
        assume(0 < first < len(chosen))
        t_opt = opt_case.torch(theirs[:first], theirs[first:])
        w_opt = opt_case.wxb(ours[:first], ours[first:])
    else:
        t_opt = opt_case.torch(theirs)
        w_opt = opt_case.wxb(ours)
    bases = [g["lr"] for g in t_opt.param_groups]
    rows = min(batch_size, n)
    w_schedule = t_schedule = None
    if isinstance(schedule, tuple):  # a schedule of one's own, built on the optimiser
        w_schedule, t_schedule = make_schedule(schedule, w_opt, t_opt)
    # fit's "plateau": a cut after half early stopping's patience (refused for 1)
    assume(not (schedule == "plateau" and early_stopping == 1))
    patience = max(1, early_stopping // 2) - 1 if early_stopping else 10
    if schedule == "plateau":
        t_schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(t_opt, patience=patience)
    if init is not None:  # after the optimiser is made, as PyTorch users do
        initialise(case, init)

    def torch_fit() -> dict[str, list[float]]:
        """PyTorch through the batches fit takes, in order; the figures History keeps."""
        expected: dict[str, list[float]] = {"loss": [], "lr": []}
        best, best_state = [math.inf, 0], []  # the best figure, epochs waited; its weights
        if schedule in ("step", "cosine", "invscaling"):  # each fit starts it over
            for g, base in zip(t_opt.param_groups, bases, strict=True):
                g["lr"] = scheduled_lr(schedule, base, 0, epochs)
        for epoch in range(epochs):
            case.torch_model.train()
            total, correct = 0.0, 0
            for start in range(0, n, rows):
                xb, yb = X[start : start + rows], y[start : start + rows]
                t_opt.zero_grad()
                out = case.torch_model(to_torch(xb))
                t_value = loss.torch_library(out, to_torch(yb))
                assume(moderate(t_value))
                t_value.backward()
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(theirs, clip)
                t_opt.step()
                trained = t_opt.param_groups[0]["lr"]  # the rate this batch took
                if per_batch:  # OneCycleLR: once a batch, as fit steps it
                    t_schedule.step()
                total += t_value.item() * (loss.divisor(yb) if loss.reduction == "mean" else 1)
                correct += correct_predictions(loss, out, yb) or 0
            figure = total / loss.divisor(y) if loss.reduction == "mean" else total
            expected["loss"].append(figure)
            expected["lr"].append(trained)  # the rate the epoch's last batch took
            if correct_predictions(loss, out, yb) is not None:
                expected.setdefault("accuracy", []).append(scored_share(loss, correct, y))
            if val is not None:
                for key, value in torch_evaluate(case, loss, *val).items():
                    expected.setdefault(f"val_{key}", []).append(value)
            # early stopping, and the best weights kept, on val_loss (else loss)
            watched = expected["val_loss" if val is not None else "loss"][-1]
            if watched < best[0]:
                best[:] = [watched, 0]
                if early_stopping is not None and restore_best:
                    best_state[:] = [q.detach().clone() for _, _, q in case.params]
            else:
                best[1] += 1
                if early_stopping is not None and best[1] >= early_stopping:
                    break  # (no schedule step after the epoch that stops)
            # fit steps the schedule after every epoch, the last too; a plateau's on what
            # early stopping watches
            if isinstance(t_schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
                t_schedule.step(watched)
            elif t_schedule is not None and not per_batch:
                t_schedule.step()
            if schedule in ("step", "cosine", "invscaling"):
                for g, base in zip(t_opt.param_groups, bases, strict=True):
                    g["lr"] = scheduled_lr(schedule, base, epoch + 1, epochs)
        if best_state:
            with torch.no_grad():
                for (_, _, q), value in zip(case.params, best_state, strict=True):
                    q.copy_(value)
        return expected

    def wxb_fit():
        return wxb.fit(
            case.wxb_model,
            X_fit,
            y_fit.copy(),
            loss=loss.wxb(),
            optimizer=w_opt,
            epochs=epochs,
            batch_size=batch_size,
            shuffle=False,
            lr_schedule=w_schedule if w_schedule is not None else schedule,
            clip_grad_norm=clip,
            validation_data=val,
            early_stopping=early_stopping,
            restore_best_weights=restore_best,
        )

    calls = 2 if then == "fit again" else 1
    for call in range(1, calls + 1):
        if call == 2 and schedule == "plateau":  # fit makes a new one each call
            t_schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(t_opt, patience=patience)
        if schedule == "onecycle":  # fit's: torch's defaults, peaking at each group's lr
            # (a second fit peaks where the first did), β₁ or a momentum in use cycled
            t_schedule = torch.optim.lr_scheduler.OneCycleLR(
                t_opt,
                max_lr=[g["lr"] if call == 1 else g["max_lr"] for g in t_opt.param_groups],
                total_steps=epochs * batches,
                cycle_momentum="betas" in t_opt.defaults
                or any(g.get("momentum") for g in t_opt.param_groups),
            )
        per_batch = isinstance(t_schedule, torch.optim.lr_scheduler.OneCycleLR)
        expected = torch_fit()
        history = wxb_fit()
        at = f"fit call {call} with {opt_case!r}"
        check_weights(case, at)
        for key, values in expected.items():
            assert key in history, f"History has no {key!r}"
            check(f"{at}: History[{key!r}]", history[key], values)
        for k, (g, tg) in enumerate(zip(w_opt.param_groups, t_opt.param_groups, strict=True)):
            check(f"{at}: group {k}'s lr after fit", g["lr"], tg["lr"])
        if w_schedule is not None:
            check(f"{at}: get_last_lr()", w_schedule.get_last_lr(), t_schedule.get_last_lr())
    if then == "one hand-written step":  # the same optimiser, by hand, after fit
        t_opt.zero_grad()
        loss.torch(case.torch_model(to_torch(X)), to_torch(y)).backward()
        t_opt.step()
        w_opt.zero_grad()
        loss.wxb_fn()(case.wxb_model(X_fit), y.copy()).backward()
        w_opt.step()
        check_weights(case, "a hand-written step after fit")
    figures = wxb.evaluate(case.wxb_model, X, y_fit, loss=loss.wxb())
    for key, value in torch_evaluate(case, loss, X, y).items():
        check(f"evaluate(...)[{key!r}]", figures[key], value)


# ---------------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------------
@DIFFERENTIAL
@given(case=user_models(n_inputs=1, eval_dropout=True), data=st.data())
def test_predict_matches_torch_eval(case: UserModel, data) -> None:
    """predict(X) (in chunks too), no_grad calls and eval-mode calls = torch in eval mode."""
    n = data.draw(st.integers(1, 12), label="rows")
    chunk = data.draw(st.none() | st.integers(1, 5), label="predict batch_size")
    x_form = data.draw(st.sampled_from(["float64", "float32", "list"]), label="X as")
    rng = np.random.default_rng(data.draw(SEEDS, label="data seed"))
    X = rng.normal(size=(n, case.input_width))
    if x_form == "float32":
        X = X.astype(np.float32)
    X_in = X.tolist() if x_form == "list" else X
    X = X.astype(np.float64)
    with torch.no_grad():
        # predict in chunks too: a model with batch statistics sees all rows, as model(X)
        expected = case.torch_model.eval()(to_torch(X))

    model = case.wxb_model
    predicted = model.predict(X_in) if chunk is None else model.predict(X_in, batch_size=chunk)
    assert isinstance(predicted, np.ndarray), f"predict returned {type(predicted).__name__}"
    check("predict(X)", predicted, expected)
    assert all(m.training for _, m in model.named_modules()), "predict left eval mode on"
    model.eval()
    with wxb.no_grad():
        check("model(X) in eval mode under no_grad", model(X_in), expected)
    check("model(X) in eval mode, recording a graph", model(X_in), expected)


# ---------------------------------------------------------------------------------
# A target that is itself a model's output
# ---------------------------------------------------------------------------------
@DIFFERENTIAL
@given(data=st.data())
def test_loss_against_another_models_output(data) -> None:
    """loss_fn(student(X), teacher(X)): ∂L/∂ reaches the teacher too, unless detached.
    For cross-entropy the target is softmax(teacher(X)) (distillation)."""
    student = data.draw(user_models(n_inputs=1), label="student")
    teacher = data.draw(
        user_models(
            n_inputs=1,
            input_width=student.input_width,
            output_width=student.output_width,
            vector_output=student.vector_output,
        ),
        label="teacher",
    )
    names = ["mse", "bce_with_logits"] + ["cross_entropy_prob"] * (student.output_width > 1)
    loss = data.draw(student.losses(names), label="loss")
    detach = data.draw(st.booleans(), label="teacher(X).detach()")
    batch = data.draw(st.integers(1, 8), label="batch")
    X = np.random.default_rng(data.draw(SEEDS, label="data seed")).normal(
        size=(batch, student.input_width)
    )

    t_target = teacher.torch_model(to_torch(X))
    if loss.name == "cross_entropy_prob":
        t_target = torch.softmax(t_target, dim=1)
    if detach:
        t_target = t_target.detach()
    t_value = loss.torch(student.torch_model(to_torch(X)), t_target)
    assume(moderate(t_value))
    t_value.backward()

    target = teacher.wxb_model(X.copy())
    if loss.name == "cross_entropy_prob":
        target = wf.softmax(target)
    if detach:
        target = target.detach()
    value = loss.wxb_fn()(student.wxb_model(X.copy()), target)
    check("loss", value, t_value)
    value.backward()
    check_gradients(student, "student")
    check_gradients(teacher, "teacher")


# ---------------------------------------------------------------------------------
# Every expression the generator knows, each on its own
# ---------------------------------------------------------------------------------
EXPRESSIONS = (
    [("mix", m, None) for m in MIXES]
    + [
        ("operand", op, c)
        for op in OPERANDS
        for c in CONSTANTS
        if (op in MATRIX_OPERANDS) == (c == "matrix (w, w)")
    ]
    + [("transform", t, None) for t in TRANSFORMS]
    + [("squeeze", form, None) for form in SQUEEZES]
    + [("gain", op, shape) for op in GAINS for shape in ("0-d", "vector")]
)


@pytest.mark.parametrize(("kind", "expression", "option"), EXPRESSIONS)
def test_expressions_a_user_writes(kind: str, expression: str, option: str | None) -> None:
    """Each expression in a custom Module's forward: the output and every gradient.
    (An expression wxb.Tensor cannot compute is kept out of generated models: here it
    fails by name.)"""
    if kind == "mix":
        spec = BranchesSpec(DenseSpec(3, 4), DenseSpec(3, 4, bias=False), expression)
    elif kind == "operand":
        spec = ConstantSpec(DenseSpec(3, 4), expression, option, seed=5)
    elif kind == "transform":
        spec = ApplySpec(DenseSpec(3, 4), expression, seed=5)
    elif kind == "squeeze":
        spec = SqueezeSpec(DenseSpec(3, 1 if "reshape" in expression else 4), expression)
    else:
        spec = GainSpec(DenseSpec(3, 4), option == "0-d", expression)
    case = build_user_model(spec, seed=7)
    X = np.random.default_rng(7).normal(size=(5, 3))
    t_out = case.torch_model(to_torch(X))
    (t_out * t_out).sum().backward()
    out = case.wxb_model(X)
    check("output", out, t_out)
    (out * out).sum().backward()
    check_gradients(case, expression)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_losses_written_by_hand(name: str, reduction: str) -> None:
    """A loss written in tensor operations (indexing, exp, log, abs, NumPy targets on
    the left) against torch's own loss: value and gradients."""
    loss = LossCase(name, reduction, "by hand")
    case = build_user_model(DenseSpec(3, 4), seed=7)
    rng = np.random.default_rng(7)
    X, y = rng.normal(size=(5, 3)), loss.targets(rng, 5, 4)
    t_value = loss.torch_library(case.torch_model(to_torch(X)), to_torch(y))
    t_value.backward()
    value = loss.wxb_fn()(case.wxb_model(X), y)
    check("loss", value, t_value)
    value.backward()
    check_gradients(case, repr(loss))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(user=user_models(), data=st.data())
def test_every_generated_model_round_trips_or_is_refused_by_save(tmp_path_factory, user, data):
    """save/load over the same generator: a file is written only if load rebuilds the
    model exactly (same predictions bit for bit, ties kept); otherwise save refuses with
    a message naming the module, and nothing is left on disk."""
    folder = tmp_path_factory.mktemp("saved")
    path = folder / "model.safetensors"
    path.write_bytes(b"an earlier file")
    model = user.wxb_model
    try:
        wxb.save(model, path)
    except wxb.ConfigError as refusal:
        event("refused by save")
        names = {type(m).__name__ for _, m in model.named_modules()}
        assert any(name in str(refusal) for name in names), str(refusal)
        assert path.read_bytes() == b"an earlier file"
        assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors"]
        return
    event("round trip")
    loaded = wxb.load(path)
    rng = np.random.default_rng(data.draw(SEEDS, label="data seed"))
    if user.n_inputs == 1:
        X = user.inputs(rng, data.draw(st.integers(1, 6), label="batch"))[0]
        model.eval()
        assert np.array_equal(loaded.predict(X), model.predict(X)), user.describe()
    shared = {id(p) for p in model.parameters()}
    assert len(loaded.parameters()) == len(shared), user.describe()
    assert loaded.dtype == model.dtype
