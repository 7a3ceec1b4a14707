"""MuonWithAdamW (session 56): each parameter keeps its own rule's state only, a group
without ``use_muon`` is told so, and its state goes to and from PyTorch's Muon and AdamW,
the pair its docs write. Held against torch.optim.Muon and torch.optim.AdamW.

Drawn fresh each run (the seed is printed; ``WXB_TEST_SEED`` replays it), in float64.
"""

import numpy as np
import pytest
import torch

import wxb
from wxb import interop
from wxb.errors import ConfigError
from wxb.nn import Parameter

TORCH_NAMES = {"moment1": "exp_avg", "moment2": "exp_avg_sq"}


def _twins(rng):
    """Hidden matrices for Muon; biases and an output matrix for AdamW (as the reference
    MuonWithAuxAdam's docs advise for the head), wxb's and torch's alike."""
    widths = [int(k) for k in rng.integers(2, 7, size=4)]
    shapes = [(widths[k + 1], widths[k]) for k in range(3)]
    muon_values = [rng.standard_normal(s) for s in shapes[:2]]
    adamw_values = [rng.standard_normal(shapes[2])] + [rng.standard_normal(w) for w in widths[1:]]
    groups = (muon_values, adamw_values)
    mine = [[Parameter(v.copy(), dtype="float64") for v in vs] for vs in groups]
    theirs = [[torch.nn.Parameter(torch.tensor(v)) for v in vs] for vs in groups]
    return mine, theirs


def _set_gradients(rng, pairs):
    for p, q in pairs:
        g = rng.standard_normal(p.shape)
        p.grad, q.grad = g.copy(), torch.tensor(g)


def test_state_is_each_rules_own_and_goes_to_and_from_torchs_muon_and_adamw(seeded):
    """Every parameter held momentum_buffer, moment1 and moment2 (3x the weights' memory,
    where Muon's rule needs 1x and AdamW's 2x), and optimizer_to_torch/optimizer_from_torch
    refused MuonWithAdamW ("PyTorch's optimiser is Muon, the wxb one MuonWithAdamW"). Now
    each parameter's state is what torch's Muon or AdamW keeps for it, handed over both
    ways exactly: the next step on either side is the other's (Muon's within its bfloat16
    Newton–Schulz rounding, AdamW's to 1e-12)."""
    rng = seeded.rng
    lr, decay = float(rng.uniform(0.005, 0.05)), float(rng.uniform(0.0, 0.1))
    momentum, betas = float(rng.uniform(0.8, 0.97)), (float(rng.uniform(0.8, 0.95)), 0.99)
    (muon_params, adamw_params), (their_muon_params, their_adamw_params) = _twins(rng)
    opt = wxb.optim.MuonWithAdamW(
        [{"params": muon_params, "use_muon": True}, {"params": adamw_params, "use_muon": False}],
        lr=lr, weight_decay=decay, momentum=momentum, betas=betas,
    )  # fmt: skip
    their_muon = torch.optim.Muon(
        their_muon_params, lr=lr, weight_decay=decay, momentum=momentum,
        adjust_lr_fn="match_rms_adamw",
    )  # fmt: skip
    their_adamw = torch.optim.AdamW(their_adamw_params, lr=lr, weight_decay=decay, betas=betas)
    mine = [*muon_params, *adamw_params]
    pairs = list(zip(mine, [*their_muon_params, *their_adamw_params], strict=True))
    msg = seeded.msg(f"lr {lr} decay {decay} momentum {momentum} betas {betas}")

    def compare_states(what):
        kept = 0
        for k, (p, q) in enumerate(pairs):
            own = opt.state[p]
            their = (their_muon if k < len(muon_params) else their_adamw).state[q]
            arrays = {TORCH_NAMES.get(n, n): v for n, v in own.items() if n != "step"}
            assert set(arrays) == {n for n in their if n != "step"}, f"{msg}: {what} {k}"
            for name, array in arrays.items():
                np.testing.assert_array_equal(array, their[name].numpy(), err_msg=f"{msg} {name}")
                kept += array.nbytes
            if "step" in their:
                assert own["step"] == their["step"].item(), f"{msg}: {what} {k} step"
        return kept

    def step_both():
        for p, q in pairs:
            p.data[...] = q.detach().numpy()
        _set_gradients(rng, pairs)
        opt.step()
        their_muon.step()
        their_adamw.step()
        for k, (p, q) in enumerate(pairs):
            muon = k < len(muon_params)
            lr_used = wxb.optim.Muon._lr_of(opt.param_groups[0], p.shape) if muon else 0
            np.testing.assert_allclose(
                p.data, q.detach().numpy(), rtol=1e-12, atol=3 * lr_used * 2.0**-4 or 1e-12,
                err_msg=f"{msg}: parameter {k}",
            )  # fmt: skip

    for _ in range(int(rng.integers(1, 4))):  # wxb trains, then torch goes on from its state
        _set_gradients(rng, pairs)
        opt.step()
    for k, p in enumerate(mine):  # its own rule's arrays, not all three
        wanted = {"momentum_buffer"} if k < len(muon_params) else {"moment1", "moment2"}
        assert set(opt.state[p]) - {"step"} == wanted, f"{msg}: parameter {k}"
    interop.optimizer_to_torch(opt, (their_muon, their_adamw))
    muon_bytes = sum(p.data.nbytes for p in muon_params)
    adamw_bytes = sum(p.data.nbytes for p in adamw_params)
    assert compare_states("to torch") == muon_bytes + 2 * adamw_bytes, msg
    step_both()
    for _ in range(int(rng.integers(1, 3))):  # torch trains, then wxb goes on from its state
        _set_gradients(rng, pairs)
        their_muon.step()
        their_adamw.step()
    interop.optimizer_from_torch((their_muon, their_adamw), opt)
    compare_states("from torch")
    step_both()

    # a state wxb wrote before, all three arrays a parameter, loads (the other rule's 0s
    # dropped); a parameter holding the other rule's values is refused, naming it
    saved = opt.state_dict()
    before = {i: {n: np.copy(a) for n, a in e.items()} for i, e in saved["state"].items()}
    for i, entry in saved["state"].items():
        for name in ("momentum_buffer", "moment1", "moment2"):
            entry.setdefault(name, np.zeros_like(mine[i].data))
    opt.load_state_dict(saved)
    after = opt.state_dict()["state"]
    assert {i: sorted(e) for i, e in after.items()} == {i: sorted(e) for i, e in before.items()}
    for i, entry in before.items():
        for name, value in entry.items():
            np.testing.assert_array_equal(after[i][name], value, err_msg=f"{msg}: {i} {name}")
    saved["state"][0]["moment1"] = np.ones_like(muon_params[0].data)
    with pytest.raises(ConfigError, match=r"state\[0\] moment1: parameter 0 is stepped by Muon"):
        opt.load_state_dict(saved)


def test_a_group_without_use_muon_is_told_to_say_its_rule(seeded):
    """The reference MuonWithAuxAdam asserts each group has use_muon; wxb's said "use_muon
    must be True … or False; got None" of a key never given. Now it says the key is
    missing and what it chooses, for the groups given and for add_param_group alike."""
    rng = seeded.rng
    (muon_params, adamw_params), _ = _twins(rng)
    with pytest.raises(ConfigError, match=r"param_groups\[1\] has no 'use_muon'.*use_muon=True"):
        wxb.optim.MuonWithAdamW(
            [{"params": muon_params, "use_muon": True}, {"params": adamw_params}]
        )
    opt = wxb.optim.MuonWithAdamW([{"params": muon_params, "use_muon": True}])
    with pytest.raises(ConfigError, match=r"param_groups\[1\] has no 'use_muon'"):
        opt.add_param_group({"params": adamw_params})
    opt.add_param_group({"params": adamw_params, "use_muon": False})
    assert [g["use_muon"] for g in opt.param_groups] == [True, False]


@pytest.mark.parametrize("kind", ["Muon", "MuonWithAdamW"])
def test_a_momentum_buffer_set_by_hand_starts_the_run_as_torchs(seeded, kind):
    """``opt.state[p]["momentum_buffer"] = b`` before the first step is where PyTorch's
    Muon starts from (it keeps no 'step'); wxb's refused the step, wanting a 'step' too
    (MuonWithAdamW's also AdamW's 'exp_avg' and 'exp_avg_sq' of a Muon weight). Now the
    step starts from that buffer, as torch's."""
    rng = seeded.rng
    (muon_params, _), (their_params, _) = _twins(rng)
    lr = float(rng.uniform(0.005, 0.05))
    opt = getattr(wxb.optim, kind)(muon_params, lr=lr, adjust_lr_fn="match_rms_adamw")
    theirs = torch.optim.Muon(their_params, lr=lr, adjust_lr_fn="match_rms_adamw")
    theirs.param_groups[0]["weight_decay"] = opt.param_groups[0]["weight_decay"]
    for p, q in zip(muon_params, their_params, strict=True):
        buffer = rng.standard_normal(p.shape)
        opt.state[p]["momentum_buffer"] = buffer
        theirs.state[q]["momentum_buffer"] = torch.tensor(buffer)
        g = rng.standard_normal(p.shape)
        p.grad, q.grad = g.copy(), torch.tensor(g)
    opt.step()
    theirs.step()
    for k, (p, q) in enumerate(zip(muon_params, their_params, strict=True)):
        allowance = 3 * wxb.optim.Muon._lr_of(opt.param_groups[0], p.shape) * 2.0**-4
        np.testing.assert_allclose(
            p.data, q.detach().numpy(), rtol=1e-12, atol=allowance, err_msg=seeded.msg(str(k))
        )
        np.testing.assert_allclose(
            opt.state[p]["momentum_buffer"], theirs.state[q]["momentum_buffer"].numpy(),
            rtol=1e-12, atol=1e-14, err_msg=seeded.msg(f"buffer {k}"),
        )  # fmt: skip
