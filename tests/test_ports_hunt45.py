"""PyTorch scripts ported line by line, round 3: ``torch.nn.utils``, gradients with
respect to the inputs, in-place edits of parameters, saving and resuming. Each runs
beside the PyTorch original from the same weights on the same batches, in float64.
Draws are fresh on each run (the ``seeded`` fixture prints its seed; replay with
``WXB_TEST_SEED=<seed>``)."""

from __future__ import annotations

import numpy as np
import pytest
from rounding import affine_terms, rounding_atol

import wxb
import wxb.nn.functional as F
from wxb import nn

torch = pytest.importorskip("torch")
from torch_twins import tanh_classifier  # noqa: E402 (torch is there)

TF = torch.nn.functional


_twins = tanh_classifier  # (tests/torch_twins.py)


def _batch(rng, rows=7, sizes=(5, 8, 3)):
    return rng.normal(size=(rows, sizes[0])), rng.integers(0, sizes[2], size=rows)


def _backward_both(ours, theirs, X, y):
    """The batch's cross-entropy backward through each library's model."""
    F.cross_entropy(ours(X), y).backward()
    TF.cross_entropy(theirs(torch.from_numpy(X)), torch.from_numpy(y)).backward()


def _step_both(ours, theirs, opt, topt, X, y):
    """One training step of each library's loop on the batch."""
    opt.zero_grad()
    topt.zero_grad()
    _backward_both(ours, theirs, X, y)
    opt.step()
    topt.step()


def _same_weights(ours, theirs, msg, rtol=1e-12):
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(
            p.data, q.detach().numpy(), rtol=rtol, atol=1e-13, err_msg=f"{name}: {msg}"
        )


def test_torch_nn_utils_imports_and_trains_as_torchs(seeded):
    """``from torch.nn.utils import clip_grad_norm_, clip_grad_value_,
    parameters_to_vector, vector_to_parameters`` stopped a port at a bare
    ModuleNotFoundError: wxb.nn.utils did not exist. A loop that clips, flattens the
    weights for an L2 penalty on the vector, and writes an averaged vector back, each
    step as PyTorch's."""
    from wxb.nn.utils import (
        clip_grad_norm_,
        clip_grad_value_,
        parameters_to_vector,
        vector_to_parameters,
    )

    assert nn.utils.clip_grad_norm_ is clip_grad_norm_ is wxb.optim.clip_grad_norm_
    assert wxb.optim.clip_grad_value_ is clip_grad_value_
    rng = seeded.rng
    ours, theirs = _twins(rng)
    opt = wxb.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    average = parameters_to_vector(ours.parameters()).data.copy()
    taverage = torch.nn.utils.parameters_to_vector(theirs.parameters()).detach().clone()
    np.testing.assert_array_equal(average, taverage.numpy(), err_msg=seeded.msg("vector"))
    for step in range(6):
        X, y = _batch(rng)
        opt.zero_grad()
        topt.zero_grad()
        vec = parameters_to_vector(ours.parameters())
        loss = F.cross_entropy(ours(X), y) + 1e-2 * (vec * vec).sum()
        tvec = torch.nn.utils.parameters_to_vector(theirs.parameters())
        tloss = TF.cross_entropy(theirs(torch.from_numpy(X)), torch.from_numpy(y))
        tloss = tloss + 1e-2 * (tvec * tvec).sum()
        loss.backward()
        tloss.backward()
        if step % 2:
            clip_grad_value_(ours.parameters(), 0.05)
            torch.nn.utils.clip_grad_value_(theirs.parameters(), 0.05)
        else:
            norm = nn.utils.clip_grad_norm_(ours.parameters(), 0.3)
            tnorm = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 0.3)
            assert float(norm) == pytest.approx(tnorm.item(), rel=1e-12), seeded.msg(step)
        opt.step()
        topt.step()
        average = 0.5 * average + 0.5 * parameters_to_vector(ours.parameters()).data
        taverage = (
            0.5 * taverage + 0.5 * torch.nn.utils.parameters_to_vector(theirs.parameters()).detach()
        )
        _same_weights(ours, theirs, seeded.msg(f"step {step}"))
    vector_to_parameters(wxb.tensor(average), ours.parameters())
    torch.nn.utils.vector_to_parameters(taverage, theirs.parameters())
    _same_weights(ours, theirs, seeded.msg("averaged"))
    X, y = _batch(rng)  # the optimiser steps on from the written values, as PyTorch's
    _step_both(ours, theirs, opt, topt, X, y)
    _same_weights(ours, theirs, seeded.msg("after the written vector"))
    with pytest.raises(wxb.ShapeError, match="vec has 3 entries; the 4 parameters hold"):
        vector_to_parameters(np.zeros(3), ours.parameters())
    # a torch model's vector, as a port moving weights across writes it
    their_vector = torch.nn.utils.parameters_to_vector(theirs.parameters())
    vector_to_parameters(their_vector, ours.parameters())
    _same_weights(ours, theirs, seeded.msg("torch's vector"))
    # a graph recorded before the write would take its gradient at the new values (torch's
    # keeps the old arrays): refused, as after any in-place change of a parameter
    loss = F.cross_entropy(ours(X), y)
    vector_to_parameters(average, ours.parameters())
    with pytest.raises(wxb.TrainingError, match="modified in place since the forward"):
        loss.backward()


@pytest.mark.parametrize("optimizer", ["RMSprop", "Adam"])
def test_weight_clipping_with_clamp_trains_as_torchs(seeded, optimizer):
    """WGAN's critic clips its weights after each step, ``for p in critic.parameters():
    p.clamp_(-c, c)`` under no_grad (RMSprop, as the paper): wxb's Tensor had no clamp_
    (an AttributeError stopped the port). Trained side by side with PyTorch; ``clip_``
    (its alias) and tensor bounds too, and the same refusal while the graph records."""
    rng = seeded.rng
    ours, theirs = _twins(rng)
    opt = getattr(wxb.optim, optimizer)(ours.parameters(), lr=0.05)
    topt = getattr(torch.optim, optimizer)(theirs.parameters(), lr=0.05)
    c = float(rng.uniform(0.2, 0.6))
    for step in range(5):
        X, y = _batch(rng)
        _step_both(ours, theirs, opt, topt, X, y)
        with wxb.no_grad():
            for p in ours.parameters():
                assert (p.clamp_(-c, c) if step % 2 else p.clip_(min=-c, max=c)) is p
        with torch.no_grad():
            for q in theirs.parameters():
                q.clamp_(-c, c)
        _same_weights(ours, theirs, seeded.msg(f"step {step}"))
        assert max(np.abs(p.data).max() for p in ours.parameters()) <= c
    lo = rng.normal(size=3) - 1
    with wxb.no_grad():
        ours[2].bias.clamp_(wxb.tensor(lo, dtype="float64"), wxb.tensor(lo + 0.5, dtype="float64"))
    with torch.no_grad():
        theirs[2].bias.clamp_(torch.from_numpy(lo), torch.from_numpy(lo + 0.5))
    _same_weights(ours, theirs, seeded.msg("tensor bounds"))
    with pytest.raises(wxb.TrainingError, match=r"clamp_\(\) on a tensor that requires grad"):
        ours[0].weight.clamp_(-c, c)


@pytest.mark.parametrize("frozen", [False, True])
def test_input_gradients_and_autograd_grad_as_torchs(seeded, frozen):
    """Saliency maps and FGSM as PyTorch scripts write them: ``x.grad`` after
    ``loss.backward()`` (eval mode, parameters frozen or not, after ``model.zero_grad()``),
    and ``torch.autograd.grad(loss, x)[0]``, which wxb lacked (an AttributeError on
    wxb.autograd.grad). Gradients with respect to the parameters handed back by
    ``autograd.grad`` after the planned Sequential's forward were written into their
    ``.grad`` instead, over what a loop had accumulated: the step then took a wrong one."""
    rng = seeded.rng
    ours, theirs = _twins(rng)
    ours.eval()
    theirs.eval()
    if frozen:
        ours.requires_grad_(False)
        theirs.requires_grad_(False)
    X, y = _batch(rng)
    eps = float(rng.uniform(0.01, 0.3))
    ours.zero_grad()
    theirs.zero_grad()
    x = wxb.tensor(X, requires_grad=True, dtype="float64")
    tx = torch.tensor(X, requires_grad=True)
    F.cross_entropy(ours(x), y).backward()
    TF.cross_entropy(theirs(tx), torch.from_numpy(y)).backward()
    np.testing.assert_allclose(
        x.grad, tx.grad.numpy(), rtol=1e-12, atol=1e-15, err_msg=seeded.msg("input gradient")
    )
    x = wxb.tensor(X, requires_grad=True, dtype="float64")
    tx = torch.tensor(X, requires_grad=True)
    (g,) = wxb.autograd.grad(F.cross_entropy(ours(x), y), x)
    (tg,) = torch.autograd.grad(TF.cross_entropy(theirs(tx), torch.from_numpy(y)), tx)
    assert x.grad is None and tx.grad is None
    np.testing.assert_allclose(
        g.data, tg.numpy(), rtol=1e-12, atol=1e-15, err_msg=seeded.msg("input gradient")
    )
    adversarial = (x + eps * g.sign()).detach()
    their_adversarial = (tx + eps * tg.sign()).detach()
    # an output near 0 is a sum that cancels: the two libraries' summation orders differ
    # there by the rounding of the terms summed (tanh is 1-Lipschitz, |tanh z| ≤ |z|, so
    # the first layer's terms bound the second's), not by any rtol of the small result
    (W1, b1), (W2, b2) = ((layer.weight.data, layer.bias.data) for layer in (ours[0], ours[2]))
    terms = affine_terms(affine_terms(adversarial.data, W1.T, b1), W2.T, b2)
    np.testing.assert_allclose(
        ours(adversarial).data,
        theirs(their_adversarial).detach().numpy(),
        rtol=1e-12,
        atol=rounding_atol(terms, W1.shape[1] + 1 + W2.shape[1] + 1 + 1),
        err_msg=seeded.msg("adversarial outputs"),
    )
    if frozen:
        with pytest.raises(wxb.ShapeError, match=r"inputs\[0\] does not require grad"):
            wxb.autograd.grad(F.cross_entropy(ours(X), y), ours[0].weight)
        return
    # a loop's accumulated gradients, then autograd.grad on the parameters of a planned
    # forward (X a plain array): handed back, .grad left as it was, the step as torch's
    opt = wxb.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    ours.train()
    theirs.train()
    for step in range(3):
        opt.zero_grad()
        topt.zero_grad()
        X, y = _batch(rng)
        _backward_both(ours, theirs, X, y)
        X2, y2 = _batch(rng)
        assert ours.why_not_planned() is None
        grads = wxb.autograd.grad(F.cross_entropy(ours(X2), y2), ours.parameters())
        tgrads = torch.autograd.grad(
            TF.cross_entropy(theirs(torch.from_numpy(X2)), torch.from_numpy(y2)),
            list(theirs.parameters()),
        )
        for a, b in zip(grads, tgrads, strict=True):
            np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-12, atol=1e-15)
        for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
            np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-12, atol=1e-15)
        opt.step()
        topt.step()
        _same_weights(ours, theirs, seeded.msg(f"step {step}"))
    unused = wxb.tensor(X, requires_grad=True)
    with pytest.raises(wxb.ShapeError, match=r"inputs\[0\] was not used"):
        wxb.autograd.grad(F.cross_entropy(ours(X), y), unused)
    assert wxb.autograd.grad(ours(X).sum(), [unused], allow_unused=True) == (None,)


def test_model_apply_with_init_on_the_weights_data_trains_as_torchs(seeded):
    """``model.apply(init_weights)`` where ``init_weights`` hands ``m.weight.data`` to
    ``nn.init`` (``xavier_uniform_(m.weight.data, gain=calculate_gain('tanh'))``,
    ``constant_(m.bias.data, 0.01)``), as older PyTorch scripts write it: wxb refused the
    array ('writes into a wxb Tensor or Parameter'). Applied after the optimiser was
    built (it steps the new values), then trained beside PyTorch from those weights."""
    rng = seeded.rng
    ours, theirs = _twins(rng)
    opt = wxb.optim.Adam(ours.parameters(), lr=0.01)
    gain = nn.init.calculate_gain("tanh")
    bias = float(rng.uniform(-0.1, 0.1))

    def init_weights(m):
        if isinstance(m, nn.Linear):
            assert nn.init.xavier_uniform_(m.weight.data, gain=gain) is m.weight.data
            nn.init.constant_(m.bias.data, bias)

    assert ours.apply(init_weights) is ours
    for layer in (ours[0], ours[2]):
        out, inputs = layer.weight.shape
        bound = gain * np.sqrt(6 / (inputs + out))
        assert np.abs(layer.weight.data).max() <= bound, seeded.msg("xavier bound")
        assert np.all(layer.bias.data == bias)
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
            q.copy_(torch.from_numpy(p.data))
    topt = torch.optim.Adam(theirs.parameters(), lr=0.01)
    for step in range(4):
        X, y = _batch(rng)
        _step_both(ours, theirs, opt, topt, X, y)
        _same_weights(ours, theirs, seeded.msg(f"step {step}"))


def test_optimizer_over_named_parameters_with_no_decay_groups_as_torchs(seeded):
    """PyTorch (2.6 on) takes ``model.named_parameters()`` as an optimiser's parameters,
    keeping their names in each group's ``param_names``; the no-decay idiom then reads
    ``[{"params": [(n, p) for n, p in named if "bias" not in n]}, ...]``. wxb refused
    the pairs ('takes wxb Parameters'). Trained beside PyTorch, and its state resumes."""
    import pickle

    rng = seeded.rng
    ours, theirs = _twins(rng)
    decay = float(rng.uniform(0.01, 0.2))

    def groups(model):
        named = list(model.named_parameters())
        return [
            {"params": [(n, p) for n, p in named if "bias" not in n], "weight_decay": decay},
            {"params": [(n, p) for n, p in named if "bias" in n], "weight_decay": 0.0},
        ]

    opt = wxb.optim.AdamW(groups(ours), lr=0.01)
    topt = torch.optim.AdamW(groups(theirs), lr=0.01)
    names = [[n for n, _ in g["params"]] for g in groups(ours)]
    assert [g["param_names"] for g in opt.param_groups] == names
    assert [len(g["param_names"]) for g in topt.param_groups] == [len(n) for n in names]
    batches = [_batch(rng) for _ in range(5)]
    saved = None
    for step, (X, y) in enumerate(batches):
        _step_both(ours, theirs, opt, topt, X, y)
        _same_weights(ours, theirs, seeded.msg(f"step {step}"))
        if step == 2:
            saved = pickle.dumps({"model": ours.state_dict(), "optimizer": opt.state_dict()})
    resumed = nn.Sequential(
        nn.Linear(5, 8, dtype="float64"), nn.Tanh(), nn.Linear(8, 3, dtype="float64")
    )
    checkpoint = pickle.loads(saved)
    resumed.load_state_dict(checkpoint["model"])
    again = wxb.optim.AdamW(groups(resumed), lr=0.01)
    again.load_state_dict(checkpoint["optimizer"])
    assert [g["param_names"] for g in again.param_groups] == names
    for X, y in batches[3:]:
        again.zero_grad()
        F.cross_entropy(resumed(X), y).backward()
        again.step()
    for p, q in zip(resumed.parameters(), ours.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=seeded.msg("resumed"))
    with pytest.raises(wxb.ConfigError, match="with its name, as named_parameters"):
        wxb.optim.SGD([("0.weight", ours[0].weight), ours[0].bias], lr=0.1)


def test_a_loop_with_dropout_resumes_bit_for_bit_with_the_generators_state(seeded):
    """A checkpoint as PyTorch scripts write it, ``{"model": …, "optimizer": …,
    "scheduler": …, "epoch": e, "rng": torch.get_rng_state()}``, pickled, then loaded into
    a new model, optimiser and schedule: wxb had no get_rng_state (an AttributeError), so
    a loop with Dropout could not draw the masks the uninterrupted run drew."""
    import pickle

    rng = seeded.rng
    batches = [_batch(rng) for _ in range(8)]

    def make():
        model = nn.Sequential(
            nn.Linear(5, 16, dtype="float64"),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(16, 3, dtype="float64"),
        )
        opt = wxb.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        return model, opt, wxb.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)

    def epoch(model, opt, sched, part):
        for X, y in part:
            opt.zero_grad()
            F.cross_entropy(model(X), y).backward()
            opt.step()
        sched.step()

    wxb.manual_seed(int(rng.integers(2**31)))
    model, opt, sched = make()
    for e in range(4):
        epoch(model, opt, sched, batches[2 * e : 2 * e + 2])
        if e == 1:
            saved = pickle.dumps(
                {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "epoch": e + 1,
                    "rng": wxb.get_rng_state(),
                }
            )
    wxb.manual_seed(int(rng.integers(2**31)))  # a new process: another seed, new weights
    again, opt2, sched2 = make()
    checkpoint = pickle.loads(saved)
    again.load_state_dict(checkpoint["model"])
    opt2.load_state_dict(checkpoint["optimizer"])
    sched2.load_state_dict(checkpoint["scheduler"])
    wxb.set_rng_state(checkpoint["rng"])
    for e in range(checkpoint["epoch"], 4):
        epoch(again, opt2, sched2, batches[2 * e : 2 * e + 2])
    for (name, p), q in zip(again.named_parameters(), model.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=seeded.msg(name))
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    with pytest.raises(wxb.ConfigError, match=r"takes what wxb\.get_rng_state"):
        wxb.set_rng_state(torch.get_rng_state())


@pytest.mark.parametrize("in_place", [True, False])
def test_max_norm_constraint_with_renorm_trains_as_torchs(seeded, in_place):
    """A max-norm constraint after each step, as PyTorch ports of Keras's MaxNorm write
    it: ``w.renorm_(2, 0, c)`` under no_grad, or ``w.copy_(w.renorm(2, 0, c))``; wxb's
    Tensor had no renorm (an AttributeError). Each row of W whose norm passes c is
    scaled to c·‖w‖/(‖w‖ + 1e-7), as torch's; its gradient (renorm in a loss) too."""
    rng = seeded.rng
    ours, theirs = _twins(rng)
    opt = wxb.optim.SGD(ours.parameters(), lr=0.5, momentum=0.9)
    topt = torch.optim.SGD(theirs.parameters(), lr=0.5, momentum=0.9)
    c = float(rng.uniform(0.5, 1.5))
    for step in range(5):
        X, y = _batch(rng)
        _step_both(ours, theirs, opt, topt, X, y)
        with wxb.no_grad():
            for layer in (ours[0], ours[2]):
                w = layer.weight
                assert (w.renorm_(2, 0, c) if in_place else w.copy_(w.renorm(2, 0, c))) is w
        with torch.no_grad():
            for layer in (theirs[0], theirs[2]):
                layer.weight.renorm_(2, 0, c)
        _same_weights(ours, theirs, seeded.msg(f"step {step}"))
        assert np.linalg.norm(ours[0].weight.data, axis=1).max() <= c
    W = rng.normal(size=(4, 6))
    G = rng.normal(size=(4, 6))
    w = wxb.tensor(W, requires_grad=True, dtype="float64")
    tw = torch.tensor(W, requires_grad=True)
    p, dim = (float("inf"), 1) if in_place else (1, 0)
    limit = float(np.median(np.abs(W).max(axis=0) if dim == 1 else np.abs(W).sum(axis=1)))
    out, their_out = w.renorm(p, dim, limit), tw.renorm(p, dim, limit)
    np.testing.assert_array_equal(out.data, their_out.detach().numpy(), err_msg=seeded.msg("out"))
    (out * G).sum().backward()
    (their_out * torch.from_numpy(G)).sum().backward()
    np.testing.assert_allclose(w.grad, tw.grad.numpy(), rtol=1e-12, atol=1e-15)


def _gradient_atols(model, X, y, scale):
    """How far two summation orders of the cross-entropy gradients of ``_twins``'s
    W₁, b₁, W₂, b₂ may differ (``rounding.rounding_atol`` of the terms each sums)."""
    (W1, b1), (W2, b2) = ((layer.weight.data, layer.bias.data) for layer in (model[0], model[2]))
    A1 = np.tanh(X @ W1.T + b1)
    Z2 = A1 @ W2.T + b2
    P = np.exp(Z2 - Z2.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    delta2 = np.abs(P - np.eye(W2.shape[0])[y]) / len(X)
    delta1 = delta2 @ np.abs(W2)
    terms = [delta1.T @ np.abs(X), delta1.sum(0), delta2.T @ np.abs(A1), delta2.sum(0)]
    k = len(X) + W2.shape[0] + 2  # the batch's rows, δ₂·W₂'s classes, softmax and tanh′
    return [scale * rounding_atol(t, k) for t in terms]


def test_clipping_takes_torchs_keywords(seeded):
    """``clip_grad_norm_(parameters=model.parameters(), max_norm=…)`` and
    ``clip_grad_value_(parameters=…, clip_value=…)``, PyTorch's keywords, raised
    TypeError (wxb named the first argument ``params``, which it still takes)."""
    rng = seeded.rng
    ours, theirs = _twins(rng)
    X, y = _batch(rng)
    _backward_both(ours, theirs, X, y)
    limit = float(rng.uniform(0.05, 0.5))
    norm = nn.utils.clip_grad_norm_(parameters=ours.parameters(), max_norm=limit, norm_type=2.0)
    expected = torch.nn.utils.clip_grad_norm_(parameters=theirs.parameters(), max_norm=limit)
    assert float(norm) == pytest.approx(expected.item(), rel=1e-12), seeded.msg("norm")
    value = limit / 10
    nn.utils.clip_grad_value_(parameters=ours.parameters(), clip_value=value)
    torch.nn.utils.clip_grad_value_(parameters=theirs.parameters(), clip_value=value)
    # an entry of ∂L/∂W near 0 is a sum over the batch that cancels: the two libraries'
    # orders differ there by the rounding of the terms summed (δ₂ᵀ·A₁, then (δ₂·W₂)ᵀ·X,
    # |tanh′| ≤ 1), scaled as clip_grad_norm_ scaled the gradients
    atols = _gradient_atols(ours, X, y, min(1.0, limit / (float(norm) + 1e-6)))
    for p, q, atol in zip(ours.parameters(), theirs.parameters(), atols, strict=True):
        np.testing.assert_allclose(
            p.grad, q.grad.numpy(), rtol=1e-12, atol=atol, err_msg=seeded.msg("grad")
        )
    assert wxb.optim.clip_grad_norm_(params=ours.parameters(), max_norm=limit) <= limit
    with pytest.raises(wxb.ConfigError, match="give the parameters once"):
        nn.utils.clip_grad_norm_(ours.parameters(), limit, params=ours.parameters())


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`")
def test_load_state_dict_takes_torchs_keyword(seeded):
    """``model.load_state_dict(state_dict=ckpt["model"], strict=False)`` and
    ``scheduler.load_state_dict(state_dict=…)``, PyTorch's keyword, raised TypeError
    (wxb named it ``state``); the returned keys and the resumed rates as torch's."""
    rng = seeded.rng
    ours, theirs = _twins(rng)
    partial = {k: v for k, v in ours.state_dict().items() if k != "dense2.bias"}
    fresh, _ = _twins(rng)
    keys = fresh.load_state_dict(state_dict=partial, strict=False)
    their_partial = {k: v for k, v in theirs.state_dict().items() if k != "2.bias"}
    their_keys = theirs.load_state_dict(state_dict=their_partial, strict=False)
    assert keys.missing_keys == ["dense2.bias"] and their_keys.missing_keys == ["2.bias"]
    assert keys.unexpected_keys == [] == their_keys.unexpected_keys
    np.testing.assert_array_equal(fresh[0].weight.data, ours[0].weight.data)
    gamma = float(rng.uniform(0.5, 0.9))
    for Schedule, options in (
        ("StepLR", {"step_size": 1, "gamma": gamma}),
        ("ReduceLROnPlateau", {"factor": gamma, "patience": 0}),
    ):
        lrs = []
        for lib, model in (("wxb", ours), ("torch", theirs)):
            optim = wxb.optim if lib == "wxb" else torch.optim
            make = getattr(optim.lr_scheduler, Schedule)
            first = make(optim.SGD(model.parameters(), lr=0.1), **options)
            for value in (1.0, 2.0, 3.0):
                first.step(value) if "Plateau" in Schedule else first.step()
            opt = optim.SGD(model.parameters(), lr=0.1)
            second = make(opt, **options)
            opt.load_state_dict(state_dict=first.optimizer.state_dict())
            second.load_state_dict(state_dict=first.state_dict())
            second.step(4.0) if "Plateau" in Schedule else second.step()
            lrs.append(opt.param_groups[0]["lr"])
        assert lrs[0] == pytest.approx(lrs[1], rel=1e-15), seeded.msg(Schedule)


def test_saving_a_checkpoint_dict_writes_it(seeded, tmp_path):
    """``torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch":
    e}, path)`` ported as ``wxb.save(checkpoint, path)`` was refused, and the refusal
    sent the user to pickle (whose load runs code); wxb.save writes it, without pickle,
    and ``wxb.load`` gives it back for load_state_dict."""
    ours, _ = _twins(seeded.rng)
    opt = wxb.optim.Adam(ours.parameters(), lr=0.01)
    X, y = _batch(seeded.rng)
    F.cross_entropy(ours(X), y).backward()
    opt.step()
    checkpoint = {"model": ours.state_dict(), "optimizer": opt.state_dict(), "epoch": 1}
    path = wxb.save(checkpoint, tmp_path / "checkpoint.safetensors")
    back = wxb.load(path)
    assert back["epoch"] == 1 and list(back["optimizer"]["state"]) == [0, 1, 2, 3]
    again = wxb.optim.Adam(ours.parameters(), lr=0.01)
    again.load_state_dict(back["optimizer"])
    for key, value in opt.state_dict()["state"][0].items():
        np.testing.assert_array_equal(again.state_dict()["state"][0][key], value)
    ours.load_state_dict(back["model"])


def test_load_state_dict_with_assign_trains_on_as_torchs(seeded):
    """``model.load_state_dict(torch_model.state_dict(), assign=True)``, PyTorch 2's
    keyword, raised TypeError. The same values are loaded where the dtypes agree (the
    optimiser made after, as PyTorch requires with assign=True), and training goes on
    to PyTorch's numbers; a state that would change a parameter's dtype is refused."""
    rng = seeded.rng
    _, theirs = _twins(rng)
    fresh = nn.Sequential(
        nn.Linear(5, 8, dtype="float64"), nn.Tanh(), nn.Linear(8, 3, dtype="float64")
    )
    # (clones: with assign=True the model takes the tensors themselves, as torch's, and
    # theirs.state_dict()'s share the twin's memory: each step would move both)
    state = {key: value.clone() for key, value in theirs.state_dict().items()}
    keys = fresh.load_state_dict(state, assign=True)
    assert not keys.missing_keys and not keys.unexpected_keys
    opt = wxb.optim.Adam(fresh.parameters(), lr=0.01)
    topt = torch.optim.Adam(theirs.parameters(), lr=0.01)
    for step in range(3):
        X, y = _batch(rng)
        _step_both(fresh, theirs, opt, topt, X, y)
        _same_weights(fresh, theirs, seeded.msg(f"step {step}"))
    single = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))  # float32
    with pytest.raises(wxb.ConfigError, match=r"assign=True\) would make this float32"):
        single.load_state_dict(theirs.state_dict(), assign=True)


def test_backward_hooks_say_what_gives_the_same_numbers(seeded):
    """``layer.register_full_backward_hook(lambda m, gi, go: …)``, to look at ∂L/∂ a
    layer's output, stopped a port at a bare AttributeError, then at a refusal; wxb has
    the full hook now (test_hooks51 holds it to torch's), and the grad_output it sees is
    torch's, as is that of the way the refusal named (a forward hook keeping the output
    with retain_grad). torch's deprecated register_backward_hook is refused, naming it."""
    rng = seeded.rng
    ours, theirs = _twins(rng)
    X, y = _batch(rng)
    with pytest.raises(wxb.ConfigError, match="register_full_backward_hook"):
        ours[0].register_backward_hook(lambda module, grad_in, grad_out: None)
    kept, seen, ours_seen = {}, {}, {}

    def keep(module, args, output):
        output.retain_grad()
        kept["out"] = output

    def look(module, grad_input, grad_output):
        seen["out"] = grad_output[0]

    def look_ours(module, grad_input, grad_output):
        ours_seen["out"] = grad_output[0]

    ours[0].register_forward_hook(keep)
    ours[0].register_full_backward_hook(look_ours)
    theirs[0].register_full_backward_hook(look)
    x = wxb.tensor(X, requires_grad=True, dtype="float64")  # (torch's hook wants one)
    F.cross_entropy(ours(x), y).backward()
    tx = torch.tensor(X, requires_grad=True)
    TF.cross_entropy(theirs(tx), torch.from_numpy(y)).backward()
    for got in (kept["out"].grad, ours_seen["out"].data):
        np.testing.assert_allclose(
            got, seen["out"].numpy(), rtol=1e-12, atol=1e-15, err_msg=seeded.msg("")
        )
