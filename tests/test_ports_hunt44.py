"""Whole training scripts as PyTorch users write them, ported line by line to wxb
(``wxb.nn``, ``wxb.optim``, ``wxb.optim.lr_scheduler``, ``wxb.nn.functional``) and run
beside the PyTorch original from the same weights on the same batches: losses, weights
and rates compared after every step, in float64. Draws are fresh on each run (the
``seeded`` fixture prints its seed; replay with ``WXB_TEST_SEED=<seed>``)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import wxb
import wxb.nn.functional as F

torch = pytest.importorskip("torch")
from torch_twins import tanh_classifier  # noqa: E402 (torch is there)

TF = torch.nn.functional
pytestmark = [
    pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`"),
    pytest.mark.filterwarnings("ignore:The epoch parameter in `scheduler.step\\(\\)`"),
]


@pytest.fixture(autouse=True)
def _torch_float64():
    """float64 as torch's default: its NAdam, RAdam and Adamax keep step counts and
    NAdam's μ product in the default dtype (float32 otherwise, ~1e-8 off float64's)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


_twin_models = tanh_classifier  # (tests/torch_twins.py)


def _batches(rng, count, sizes=(5, 8, 3)):
    return [
        (rng.normal(size=(7, sizes[0])), rng.integers(0, sizes[2], size=7)) for _ in range(count)
    ]


def _chained(module, optimizer, name, values):
    factor, total, gamma = values
    return {
        "constant": lambda: module.ConstantLR(optimizer, factor=factor, total_iters=total),
        "linear": lambda: module.LinearLR(optimizer, start_factor=factor, total_iters=total),
        "exponential": lambda: module.ExponentialLR(optimizer, gamma=gamma),
        "step": lambda: module.StepLR(optimizer, step_size=total, gamma=gamma),
        "multistep": lambda: module.MultiStepLR(optimizer, [total, total + 2], gamma=gamma),
        "cosine": lambda: module.CosineAnnealingLR(optimizer, T_max=total + 3),
        "polynomial": lambda: module.PolynomialLR(optimizer, total_iters=total + 3, power=2.0),
    }[name]()


@pytest.mark.parametrize("first", ["constant", "linear"])
def test_chained_schedules_of_torchs_docs_train_as_torch(seeded, first):
    """PyTorch's docs chain schedules by making them one after the other and stepping
    each every epoch (``scheduler1 = ConstantLR(optimizer, factor=0.1, total_iters=2)``,
    ``scheduler2 = ExponentialLR(optimizer, gamma=0.9)``). The second, made, set the rate
    back to the optimiser's lr, undoing the first one's factor: every rate of the run was
    1/factor times PyTorch's (0.05, 0.045, 0.405, … where PyTorch's are 0.005, 0.0045,
    0.0405, …), the model trained on with them, without a word."""
    rng = seeded.rng
    second = str(
        rng.choice(["exponential", "step", "multistep", "cosine", "polynomial", "constant"])
    )
    values = (float(rng.uniform(0.05, 0.9)), int(rng.integers(1, 4)), float(rng.uniform(0.5, 0.95)))
    msg = seeded.msg(f"{first} then {second} {values}")
    ours, theirs = _twin_models(rng)
    batches = _batches(rng, int(rng.integers(2, 5)))
    lr = float(rng.uniform(0.01, 0.2))
    opt = wxb.optim.NAdam(ours.parameters(), lr=lr)
    ref = torch.optim.NAdam(theirs.parameters(), lr=lr)
    scheds = [_chained(wxb.optim.lr_scheduler, opt, n, values) for n in (first, second)]
    refs = [_chained(torch.optim.lr_scheduler, ref, n, values) for n in (first, second)]
    for epoch in range(8):
        assert opt.param_groups[0]["lr"] == pytest.approx(ref.param_groups[0]["lr"], rel=1e-12), (
            msg + f" epoch {epoch}"
        )
        for x, y in batches:
            opt.zero_grad()
            ref.zero_grad()
            loss = F.cross_entropy(ours(wxb.tensor(x)), y)
            expected = TF.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y))
            loss.backward()
            expected.backward()
            assert loss.item() == pytest.approx(expected.item(), rel=1e-10), msg
            opt.step()
            ref.step()
        for s, r in zip(scheds, refs, strict=True):
            s.step()
            r.step()
            np.testing.assert_allclose(s.get_last_lr(), r.get_last_lr(), rtol=1e-12, err_msg=msg)
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=msg)


@pytest.mark.parametrize("order", ["schedules_then_loads", "optimiser_loaded_first"])
def test_chained_schedules_resumed_from_a_checkpoint_end_as_the_whole_run(seeded, order):
    """The same chain saved (``optimizer.state_dict()``, each scheduler's) at a drawn
    epoch, its very first included, and resumed in a fresh optimiser and fresh
    schedules: the rates are the uninterrupted run's. Made in PyTorch's order (every
    object, then every state) or with the optimiser's state loaded before the schedules
    are made: there the second schedule took the first one's epoch-0 rate for the lr it
    found, and its load_state_dict put that back (0.1 where the run had 0.01125)."""
    rng = seeded.rng
    values = (float(rng.uniform(0.05, 0.9)), int(rng.integers(1, 4)), float(rng.uniform(0.5, 0.95)))
    kinds = ["constant", "linear", "exponential", "step", "multistep", "cosine", "polynomial"]
    names = [str(rng.choice(kinds)), str(rng.choice(kinds[:2]))]  # a factor at epoch 0 last
    cut, epochs = int(rng.integers(0, 6)), 8
    msg = seeded.msg(f"{names} {values}, saved at epoch {cut}")
    lr = float(rng.uniform(0.01, 0.2))

    def made(state=None):
        opt = wxb.optim.SGD([wxb.nn.Parameter(np.zeros(3))], lr=lr, momentum=0.9)
        if state is not None:
            opt.load_state_dict(state)
        return opt, [_chained(wxb.optim.lr_scheduler, opt, n, values) for n in names]

    opt, scheds = made()
    ref = torch.optim.SGD([torch.zeros(3, requires_grad=True)], lr=lr, momentum=0.9)
    refs = [_chained(torch.optim.lr_scheduler, ref, n, values) for n in names]
    rates, expected = [], []
    for epoch in range(epochs):
        if epoch == cut:
            saved = pickle.dumps((opt.state_dict(), [s.state_dict() for s in scheds]))
        rates.append(opt.param_groups[0]["lr"])
        expected.append(ref.param_groups[0]["lr"])
        for s, r in zip(scheds, refs, strict=True):
            s.step()
            r.step()
    np.testing.assert_allclose(rates, expected, rtol=1e-12, err_msg=msg)
    state, states = pickle.loads(saved)
    if order == "schedules_then_loads":
        opt, scheds = made()
        opt.load_state_dict(state)
    else:
        opt, scheds = made(state)
    for s, loaded in zip(scheds, states, strict=True):
        s.load_state_dict(loaded)
    resumed = []
    for _ in range(cut, epochs):
        resumed.append(opt.param_groups[0]["lr"])
        for s in scheds:
            s.step()
    assert resumed == rates[cut:], msg


@pytest.mark.parametrize("optimiser", ["SGD", "NAdam", "Adamax"])
def test_a_group_added_to_a_one_cycle_run_follows_its_own_cycle_as_torch(seeded, optimiser):
    """Fine-tuning as PyTorch's OneCycleLR wants a group added mid-run: with its own
    ``initial_lr``, ``max_lr``, ``min_lr`` (and ``max_momentum``, ``base_momentum``),
    which PyTorch's cycles it between. wxb's ignored them, scaling the first group's
    cycle to the rate it found (0.0087 where PyTorch's gives 0.0406) and leaving its
    momentum at 0.9; a checkpoint of that run was refused at resume ('max_lr holds 1
    values for 2 parameter groups'). The run, and one resumed from a drawn step."""
    rng = seeded.rng
    total, three = int(rng.integers(8, 16)), bool(rng.integers(0, 2))
    add, cut = int(rng.integers(0, total // 2)), int(rng.integers(0, total))
    own = {
        "initial_lr": float(rng.uniform(1e-3, 0.01)),
        "max_lr": float(rng.uniform(0.02, 0.1)),
        "min_lr": float(rng.uniform(0, 1e-4)),
        "max_momentum": float(rng.uniform(0.9, 0.99)),
        "base_momentum": float(rng.uniform(0.5, 0.85)),
    }
    msg = seeded.msg(f"{optimiser} {total} steps (three {three}), added at {add} {own}")
    kw = {"momentum": 0.9} if optimiser == "SGD" else {}

    def run(lib, parameter, start=0, state=None):
        params = [parameter(), parameter()]
        opt = getattr(lib.optim, optimiser)(params[:1], lr=0.1, **kw)
        sched = lib.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=0.3, total_steps=total, three_phase=three
        )
        if state is not None:
            if start >= add:
                opt.add_param_group({"params": params[1:], "lr": 0.01, **own})
            opt.load_state_dict(state[0])
            sched.load_state_dict(state[1])
        rows, saved = [], None
        for k in range(start, total):
            if k == add and (state is None or add > start):
                opt.add_param_group({"params": params[1:], "lr": 0.01, **own})
            if k == cut and state is None:
                saved = pickle.loads(pickle.dumps((opt.state_dict(), sched.state_dict())))
            opt.step()
            sched.step()
            rows.append(
                [g["lr"] for g in opt.param_groups]
                + [g["momentum"] if "momentum" in g else g["betas"][0] for g in opt.param_groups]
                + sched.get_last_lr()
            )
        return rows, saved

    ours, saved = run(wxb, lambda: wxb.nn.Parameter(np.zeros(2)))
    theirs, _ = run(torch, lambda: torch.zeros(2, requires_grad=True))
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        np.testing.assert_allclose(a, b, rtol=1e-12, err_msg=msg + f" step {k}")
    resumed, _ = run(wxb, lambda: wxb.nn.Parameter(np.zeros(2)), cut, saved)
    assert resumed == ours[cut:], msg + f" resumed at {cut}"


@pytest.mark.parametrize(
    "name", ["constant", "linear", "exponential", "step", "multistep", "cosine", "polynomial"]
)
def test_older_scripts_stepping_with_the_epoch_get_torchs_rates(seeded, name):
    """``scheduler.step(epoch)``, the older form many scripts still call (PyTorch takes it,
    with a deprecation warning, and sets that epoch's closed-form rates): wxb's step()
    took no argument, so the port stopped at a TypeError ('step() takes 1 positional
    argument but 2 were given'). Epochs in order, at the start or the end of each
    epoch, and out of order; ReduceLROnPlateau's step(metric, epoch) too."""
    rng = seeded.rng
    values = (float(rng.uniform(0.05, 0.9)), int(rng.integers(1, 4)), float(rng.uniform(0.5, 0.95)))
    rates = [float(v) for v in rng.uniform(0.01, 0.5, 2)]
    epochs = [int(e) for e in rng.permutation(12)[:8]] if rng.integers(0, 2) else list(range(8))
    msg = seeded.msg(f"{name} {values} at epochs {epochs}")
    rows = {}
    for lib, parameter in (
        (wxb, lambda: wxb.nn.Parameter(np.zeros(2))),
        (torch, lambda: torch.zeros(2, requires_grad=True)),
    ):
        opt = lib.optim.Adamax([{"params": [parameter()], "lr": r} for r in rates])
        sched = _chained(lib.optim.lr_scheduler, opt, name, values)
        plateau = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0)
        rows[lib.__name__] = []
        for k, epoch in enumerate(epochs):
            opt.step()
            sched.step(epoch)
            rows[lib.__name__].append([g["lr"] for g in opt.param_groups] + sched.get_last_lr())
            plateau.step(1.0, epoch=k + 1)  # no progress: the rates cut by 10
            assert plateau.last_epoch == k + 1, msg
            rows[lib.__name__].append([g["lr"] for g in opt.param_groups])
    for a, b in zip(rows["wxb"], rows["torch"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, err_msg=msg)


def test_chained_scheduler_of_torchs_docs_trains_and_resumes_as_torch(seeded):
    """``ChainedScheduler([ConstantLR(opt, factor=0.1, total_iters=2), ExponentialLR(opt,
    gamma=0.9)])``, PyTorch's docs example, stepped once an epoch: the port stopped at
    an AttributeError (wxb.optim.lr_scheduler had no ChainedScheduler). Its rates, the
    weights trained with them, and a resume from its state_dict at a drawn epoch."""
    rng = seeded.rng
    values = (float(rng.uniform(0.05, 0.9)), int(rng.integers(1, 4)), float(rng.uniform(0.5, 0.95)))
    kinds = ["constant", "linear", "exponential", "step", "multistep", "cosine", "polynomial"]
    names = [str(rng.choice(kinds[:2])), str(rng.choice(kinds))]
    cut, epochs = int(rng.integers(0, 7)), 8
    msg = seeded.msg(f"{names} {values}, resumed at {cut}")
    ours, theirs = _twin_models(rng)
    batches = _batches(rng, 2)
    lr = float(rng.uniform(0.01, 0.2))

    def made(lib, params):
        opt = lib.optim.RAdam(params, lr=lr)
        chain = [_chained(lib.optim.lr_scheduler, opt, n, values) for n in names]
        return opt, lib.optim.lr_scheduler.ChainedScheduler(chain, optimizer=opt)

    opt, sched = made(wxb, ours.parameters())
    ref, ref_sched = made(torch, theirs.parameters())
    rates = []
    for epoch in range(epochs):
        if epoch == cut:
            saved = pickle.dumps((opt.state_dict(), sched.state_dict()))
        rates.append(opt.param_groups[0]["lr"])
        for x, y in batches:
            opt.zero_grad()
            ref.zero_grad()
            F.cross_entropy(ours(wxb.tensor(x)), y).backward()
            TF.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y)).backward()
            opt.step()
            ref.step()
        sched.step()
        ref_sched.step()
        np.testing.assert_allclose(
            sched.get_last_lr(), ref_sched.get_last_lr(), rtol=1e-12, err_msg=msg
        )
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=msg)
    opt, sched = made(wxb, _twin_models(rng)[0].parameters())
    state, sched_state = pickle.loads(saved)
    opt.load_state_dict(state)
    sched.load_state_dict(sched_state)
    resumed = []
    for _ in range(cut, epochs):
        resumed.append(opt.param_groups[0]["lr"])
        sched.step()
    assert resumed == rates[cut:], msg


@pytest.mark.parametrize("optimiser", ["NAdam", "RAdam", "Adamax", "Adadelta"])
def test_warm_restarts_by_fractional_epochs_with_clipped_values_train_as_torch(seeded, optimiser):
    """PyTorch's CosineAnnealingWarmRestarts example (``scheduler.step(epoch + i /
    iters)`` after every batch) with ``torch.nn.utils.clip_grad_value_``: wxb had no
    clip_grad_value_, so the port stopped at an AttributeError. Now beside
    clip_grad_norm_ in wxb.optim: the losses, weights and rates are PyTorch's."""
    rng = seeded.rng
    T_0, T_mult = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    clip, lr = float(rng.uniform(0.01, 0.2)), float(rng.uniform(0.01, 0.1))
    if optimiser == "Adadelta":
        lr *= 10
    msg = seeded.msg(f"{optimiser} T_0 {T_0} T_mult {T_mult}, clip {clip}, lr {lr}")
    ours, theirs = _twin_models(rng)
    batches = _batches(rng, int(rng.integers(2, 5)))
    opt = getattr(wxb.optim, optimiser)(ours.parameters(), lr=lr)
    ref = getattr(torch.optim, optimiser)(theirs.parameters(), lr=lr)
    sched = wxb.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0, T_mult, eta_min=1e-4)
    ref_sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(ref, T_0, T_mult, 1e-4)
    iters = len(batches)
    for epoch in range(5):
        for i, (x, y) in enumerate(batches):
            opt.zero_grad()
            ref.zero_grad()
            loss = F.cross_entropy(ours(wxb.tensor(x)), y)
            expected = TF.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y))
            loss.backward()
            expected.backward()
            assert loss.item() == pytest.approx(expected.item(), rel=1e-10), msg
            assert wxb.optim.clip_grad_value_(ours.parameters(), clip) is None
            torch.nn.utils.clip_grad_value_(theirs.parameters(), clip)
            for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
                want = q.grad.numpy()  # (an entry near 0 keeps the rounding of its sums,
                # ulps of the largest: 6e-15 off a -5.5e-5 beside 0.13, 1.1e-10 relative)
                atol = 1e-12 * float(np.abs(want).max(initial=0.0))
                np.testing.assert_allclose(p.grad, want, rtol=1e-10, atol=atol, err_msg=msg)
            opt.step()
            ref.step()
            sched.step(epoch + i / iters)
            ref_sched.step(epoch + i / iters)
            np.testing.assert_allclose(
                sched.get_last_lr(), ref_sched.get_last_lr(), rtol=1e-12, err_msg=msg
            )
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=msg)


def test_lambda_lr_with_one_function_per_group_as_torchs_docs(seeded):
    """PyTorch's LambdaLR example: ``lambda1 = lambda epoch: epoch // 30``, ``lambda2 =
    lambda epoch: 0.95 ** epoch``, ``LambdaLR(optimizer, lr_lambda=[lambda1, lambda2])``
    on an optimiser of two groups: refused ('a list of functions, one per parameter
    group, is not implemented'). Each group's rate, through a resume from a drawn
    epoch's state, and step(epoch)."""
    rng = seeded.rng
    every, gamma = int(rng.integers(1, 4)), float(rng.uniform(0.5, 0.99))
    rates = [float(v) for v in rng.uniform(0.01, 0.5, 2)]
    cut, epochs = int(rng.integers(0, 9)), 10
    msg = seeded.msg(f"every {every}, gamma {gamma}, rates {rates}, resumed at {cut}")

    def made(lib, parameter):
        opt = lib.optim.RAdam([{"params": [parameter()], "lr": r} for r in rates])
        lambdas = [lambda epoch: epoch // every, lambda epoch: gamma**epoch]
        return opt, lib.optim.lr_scheduler.LambdaLR(opt, lr_lambda=lambdas)

    rows, saved = {}, None
    for lib, parameter in (
        (wxb, lambda: wxb.nn.Parameter(np.zeros(2))),
        (torch, lambda: torch.zeros(2, requires_grad=True)),
    ):
        opt, sched = made(lib, parameter)
        rows[lib.__name__] = []
        for epoch in range(epochs):
            if epoch == cut and lib is wxb:
                saved = pickle.dumps((opt.state_dict(), sched.state_dict()))
            opt.step()
            sched.step()
            rows[lib.__name__].append([g["lr"] for g in opt.param_groups] + sched.get_last_lr())
        sched.step(3)
        rows[lib.__name__].append([g["lr"] for g in opt.param_groups] + sched.get_last_lr())
    np.testing.assert_allclose(rows["wxb"], rows["torch"], rtol=1e-12, err_msg=msg)
    opt, sched = made(wxb, lambda: wxb.nn.Parameter(np.zeros(2)))
    state, sched_state = pickle.loads(saved)
    opt.load_state_dict(state)
    sched.load_state_dict(sched_state)
    resumed = []
    for _ in range(cut, epochs):
        opt.step()
        sched.step()
        resumed.append([g["lr"] for g in opt.param_groups] + sched.get_last_lr())
    assert resumed == rows["wxb"][cut:epochs], msg


def test_multiplicative_lr_trains_and_resumes_as_torch(seeded):
    """``MultiplicativeLR(optimizer, lr_lambda=lambda epoch: 0.95)``, PyTorch's docs
    example, stopped the port at an AttributeError (wxb.optim.lr_scheduler had none).
    Each group's rate after every epoch, a rate set by hand mid-run, an ExponentialLR
    stepped beside it, and a resume from a drawn epoch's state."""
    rng = seeded.rng
    gamma, hand = float(rng.uniform(0.5, 1.0)), int(rng.integers(0, 10))
    rates = [float(v) for v in rng.uniform(0.01, 0.5, 2)]
    cut, epochs = int(rng.integers(0, 10)), 12
    msg = seeded.msg(f"gamma {gamma}, set by hand at {hand}, rates {rates}, resumed at {cut}")

    def made(lib, parameter):
        opt = lib.optim.Adadelta([{"params": [parameter()], "lr": r} for r in rates])
        S = lib.optim.lr_scheduler
        return opt, [
            S.MultiplicativeLR(opt, lambda e: gamma if e % 2 else 1 / (1 + 0.1 * e)),
            S.ExponentialLR(opt, 0.9),
        ]

    rows, saved = {}, None
    for lib, parameter in (
        (wxb, lambda: wxb.nn.Parameter(np.zeros(2))),
        (torch, lambda: torch.zeros(2, requires_grad=True)),
    ):
        opt, scheds = made(lib, parameter)
        rows[lib.__name__] = []
        for epoch in range(epochs):
            if epoch == hand:
                opt.param_groups[0]["lr"] = 0.05
            if epoch == cut and lib is wxb:
                saved = pickle.dumps((opt.state_dict(), [s.state_dict() for s in scheds]))
            opt.step()
            for s in scheds:
                s.step()
            rows[lib.__name__].append([g["lr"] for g in opt.param_groups] + scheds[0].get_last_lr())
    np.testing.assert_allclose(rows["wxb"], rows["torch"], rtol=1e-11, err_msg=msg)
    opt, scheds = made(wxb, lambda: wxb.nn.Parameter(np.zeros(2)))
    state, states = pickle.loads(saved)
    opt.load_state_dict(state)
    for s, loaded in zip(scheds, states, strict=True):
        s.load_state_dict(loaded)
    resumed = []
    for epoch in range(cut, epochs):
        if epoch == hand:
            opt.param_groups[0]["lr"] = 0.05
        opt.step()
        for s in scheds:
            s.step()
        resumed.append([g["lr"] for g in opt.param_groups] + scheds[0].get_last_lr())
    np.testing.assert_allclose(resumed, rows["wxb"][cut:], rtol=1e-13, err_msg=msg)
