"""README's "Coming from PyTorch": the ported script gives its PyTorch original's losses,
and each "What differs without an error" item holds as stated, against torch itself,
with the stated way back giving torch's number."""

from __future__ import annotations

import contextlib
import copy
import io
import math
import re
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from rounding import EPS, affine_terms, rounding_atol

import wxb
import wxb.nn as nn

torch = pytest.importorskip("torch")
stats = pytest.importorskip("scipy.stats")

README = Path(__file__).resolve().parents[1] / "README.md"
EPS32 = float(np.finfo(np.float32).eps)


def ported_block() -> str:
    section = README.read_text().split("## Coming from PyTorch\n", 1)[1]
    return re.search(r"^```python\n(.*?)^```", section, re.S | re.M).group(1)


def torch_original(X_train, y_train, X_test, y_test, model, losses):
    """The PyTorch script README's block ports, line for line, from ``model`` on."""
    rng = np.random.default_rng(0)
    decay = [p for n, p in model.named_parameters() if n.endswith("weight")]
    no_decay = [p for n, p in model.named_parameters() if not n.endswith("weight")]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-2,
    )
    epochs, batch = 5, 32
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = torch.nn.CrossEntropyLoss()
    X_t, y_t = torch.tensor(X_train, dtype=torch.float32), torch.tensor(y_train).long()
    accs = []
    for _epoch in range(epochs):
        model.train()
        perm = rng.permutation(len(X_t))
        for start in range(0, len(X_t), batch):
            idx = perm[start : start + batch]
            opt.zero_grad()
            loss = loss_fn(model(X_t[idx]), y_t[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            opt.step()
            losses.append(loss.item())
        sched.step()
        model.eval()
        with torch.no_grad():
            out = model(torch.tensor(X_test, dtype=torch.float32))
            accs.append((out.argmax(1) == torch.tensor(y_test).long()).float().mean().item())
    return accs


def test_the_ported_script_gives_its_pytorch_originals_losses(tmp_path, monkeypatch, seeded):
    rng = seeded.rng
    monkeypatch.chdir(tmp_path)
    n = int(rng.integers(40, 200))
    X_train, X_test = rng.uniform(0, 1, (n, 64)), rng.uniform(0, 1, (int(rng.integers(5, 60)), 64))
    y_train, y_test = rng.integers(0, 10, n), rng.integers(0, 10, len(X_test))
    torch.manual_seed(int(rng.integers(2**31)))
    twin = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))

    block = ported_block()
    head, tail = block.split("model = nn.Sequential(", 1)
    head += "model = nn.Sequential(" + tail.split("\n", 1)[0] + "\n"
    ns = {"X_train": X_train, "y_train": y_train, "X_test": X_test, "y_test": y_test}
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        exec(compile(head, "<README>", "exec"), ns)
        ns["model"].load_state_dict(twin.state_dict())  # the same initial weights
        first_W = [p.data.astype(np.float64) for p in ns["model"].parameters()]
        exec(compile(block[len(head) :], "<README>", "exec"), ns)

    theirs: list[float] = []
    accs = torch_original(X_train, y_train, X_test, y_test, twin, theirs)
    ours = np.array(ns["losses"])
    assert len(ours) == len(theirs) == 5 * -(-n // 32), seeded.msg("one loss a batch")
    # The first batch's logits are two float32 sums of 64 then 128 terms (rounding.py,
    # with float32's eps): a cross-entropy's mean moves by at most twice its logits'.
    hidden = np.maximum(affine_terms(X_train, first_W[0].T, first_W[1]), 0)
    bound = 2 * rounding_atol(affine_terms(hidden, np.abs(first_W[2]).T, first_W[3]), 64 + 128)
    bound *= EPS32 / EPS
    assert abs(ours[0] - theirs[0]) <= bound, seeded.msg(f"first loss {ours[0]} vs {theirs[0]}")
    # Later steps carry that rounding through AdamW, whose step divides by √v and so
    # enlarges a difference in a small gradient; the runs stay within √eps32 of each other.
    np.testing.assert_allclose(
        ours, theirs, rtol=math.sqrt(EPS32), atol=math.sqrt(EPS32), err_msg=seeded.msg("the losses")
    )
    assert ns["acc"] == pytest.approx(accs[-1], abs=2 / len(X_test)), seeded.msg("accuracy")
    assert printed.getvalue().count("epoch ") == 5
    for p, q in zip(ns["model"].parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.detach().numpy(), atol=1e-3, err_msg=seeded.msg("W"))
    assert ns["ckpt"]["epoch"] == 5


def test_mse_loss_is_c_over_2_times_torchs_and_the_mean_of_squares_is_torchs(seeded):
    rng = seeded.rng
    B, C = (int(v) for v in rng.integers(1, 20, 2))
    out, y = rng.normal(size=(B, C)), rng.normal(size=(B, C))
    ours = nn.MSELoss()(wxb.tensor(out, dtype="float64"), y).item()
    theirs = torch.nn.MSELoss()(torch.tensor(out), torch.tensor(y)).item()
    sq = (out - y) ** 2
    atol = rounding_atol(sq, B * C)  # two sums of the B·C squares, scaled by < 1
    assert abs(ours - theirs * C / 2) <= atol, seeded.msg(f"{ours} vs {theirs} × {C}/2")
    functional = nn.functional.mse_loss(wxb.tensor(out, dtype="float64"), y).item()
    assert abs(functional - theirs * C / 2) <= atol, seeded.msg(f"F.mse_loss {functional}")
    back = ((wxb.tensor(out, dtype="float64") - y) ** 2).mean().item()
    assert abs(back - theirs) <= atol, seeded.msg("((out - y) ** 2).mean()")


def test_linear_default_init_is_glorot_and_the_readme_lines_draw_torchs(seeded):
    rng = seeded.rng
    fan_in, fan_out = int(rng.integers(200, 400)), int(rng.integers(200, 400))
    wxb.manual_seed(int(rng.integers(2**31)))
    torch.manual_seed(int(rng.integers(2**31)))
    theirs = torch.nn.Linear(fan_in, fan_out)
    layer = nn.Linear(fan_in, fan_out)
    assert not layer.bias.data.any(), seeded.msg("b = 0")
    glorot = np.random.default_rng(int(rng.integers(2**31))).uniform(
        -1, 1, (fan_out, fan_in)
    ) * math.sqrt(6 / (fan_in + fan_out))
    assert stats.ks_2samp(layer.weight.data.ravel(), glorot.ravel()).pvalue > 1e-6
    tw = theirs.weight.detach().numpy().ravel()
    assert stats.ks_2samp(layer.weight.data.ravel(), tw).pvalue < 1e-6, seeded.msg("differs")

    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5))
    nn.init.uniform_(layer.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
    assert stats.ks_2samp(layer.weight.data.ravel(), tw).pvalue > 1e-6, seeded.msg("W")
    assert np.abs(layer.weight.data).max() <= 1 / math.sqrt(fan_in)
    assert stats.ks_2samp(layer.bias.data, theirs.bias.detach().numpy()).pvalue > 1e-6


def test_manual_seed_draws_other_weights_and_load_state_dict_aligns_them(seeded):
    rng = seeded.rng
    seed = int(rng.integers(2**31))
    wxb.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    torch.manual_seed(seed)
    twin = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
    x = rng.normal(size=(int(rng.integers(1, 30)), 5))
    assert not np.allclose(model[0].weight.data, twin[0].weight.detach().numpy())
    model.load_state_dict(twin.state_dict())
    model.to("float64")
    want = twin.double()(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(model(wxb.tensor(x)).data, want, rtol=1e-12, atol=1e-12)


def test_state_dict_keys_are_names_and_torchs_positions_load(seeded):
    rng = seeded.rng
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)).to("float64")
    twin = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2))
    assert list(model.state_dict()) == [
        "dense1.weight",
        "dense1.bias",
        "dense2.weight",
        "dense2.bias",
    ]
    assert list(twin.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    model.load_state_dict(twin.state_dict())
    x = rng.normal(size=(int(rng.integers(1, 30)), 4))
    want = twin.double()(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(model(wxb.tensor(x)).data, want, rtol=1e-12, atol=1e-12)
    named = nn.Sequential(OrderedDict([("fc1", nn.Linear(4, 6)), ("act", nn.Tanh())]))
    assert list(named.state_dict()) == ["fc1.weight", "fc1.bias"]


def _grads(rng):
    """One batch's gradient of the same model in wxb and in torch, float64."""
    n_in, n_out, B = (int(v) for v in rng.integers(2, 12, 3))
    twin = torch.nn.Linear(n_in, n_out).double()
    model = nn.Linear(n_in, n_out, dtype="float64")
    model.load_state_dict(twin.state_dict())
    x, y = rng.normal(size=(B, n_in)), rng.integers(0, n_out, B)
    nn.CrossEntropyLoss()(model(wxb.tensor(x)), y).backward()
    torch.nn.CrossEntropyLoss()(twin(torch.tensor(x)), torch.tensor(y)).backward()
    return model.weight.grad, twin.weight.grad


def test_grad_std_is_numpys_and_ddof_1_gives_torchs(seeded):
    ours, _ = _grads(seeded.rng)
    theirs = torch.tensor(ours)  # the same numbers: only the divisor differs
    n = ours.size
    assert isinstance(ours, np.ndarray)
    t_std = theirs.std().item()
    rtol = 4 * n * EPS  # two sums of n squares, then a square root
    assert ours.std() == pytest.approx(t_std * math.sqrt((n - 1) / n), rel=rtol, abs=1e-300)
    assert ours.var() == pytest.approx(theirs.var().item() * (n - 1) / n, rel=rtol, abs=1e-300)
    assert ours.std(ddof=1) == pytest.approx(t_std, rel=rtol, abs=1e-300), seeded.msg("ddof=1")


def test_max_along_a_dim_of_numpy_arrays_gives_values_alone(seeded):
    ours, _ = _grads(seeded.rng)
    theirs = torch.tensor(ours)  # the same numbers, so values and indices are exact
    tv, ti = theirs.max(1)
    np.testing.assert_array_equal(ours.max(1), tv.numpy())  # the values alone
    v, i = wxb.max(wxb.tensor(ours), 1)
    np.testing.assert_array_equal(v.data, tv.numpy())
    np.testing.assert_array_equal(i, ti.numpy())
    out = wxb.tensor(ours)  # a Tensor's .data too: the old MNIST example's .max(1)[1]
    assert out.data.max(1)[1] == tv[1].item(), seeded.msg("row 1's maximum")
    np.testing.assert_array_equal(out.max(1)[1], ti.numpy())

    mask_w = (wxb.tensor(ours) > 0).long()  # comparisons: NumPy arrays, int64 with .long()
    mask_t = (theirs > 0).long()
    assert isinstance(mask_w, np.ndarray) and mask_w.dtype == np.int64
    # the mask's own max(1) is torch's (values, indices); NumPy's np.max the values alone
    np.testing.assert_array_equal(mask_w.max(1)[0], mask_t.max(1).values.numpy())
    np.testing.assert_array_equal(mask_w.max(1).indices, mask_t.max(1).indices.numpy())
    np.testing.assert_array_equal(np.max(mask_w, 1), mask_t.max(1).values.numpy())
    v, i = wxb.max(mask_w, 1)
    np.testing.assert_array_equal(v, mask_t.max(1).values.numpy())
    np.testing.assert_array_equal(np.take_along_axis(mask_w, np.asarray(i)[:, None], 1)[:, 0], v)


def test_whole_numbers_are_float32_and_long_gives_torchs_int64(seeded):
    rng = seeded.rng
    values = [int(v) for v in rng.integers(-1000, 1000, int(rng.integers(1, 10)))]
    n = int(rng.integers(1, 100))
    for ours, theirs in (
        (wxb.tensor(values), torch.tensor(values)),
        (wxb.arange(n), torch.arange(n)),
    ):
        assert ours.dtype == np.float32 and theirs.dtype == torch.int64
        got, want = ours.sum().item(), theirs.sum().item()
        assert isinstance(got, float) and isinstance(want, int) and got == want
        got = ours.long().sum().item()
        assert isinstance(got, int) and got == want, seeded.msg(".long()")


def test_parameters_is_a_list_that_a_second_use_still_clips(seeded):
    rng = seeded.rng
    twin = torch.nn.Linear(6, 3).double()
    model = nn.Linear(6, 3, dtype="float64")
    model.load_state_dict(twin.state_dict())
    x, y = rng.normal(size=(8, 6)) * 10, rng.integers(0, 3, 8)
    nn.CrossEntropyLoss()(model(wxb.tensor(x)), y).backward()
    torch.nn.CrossEntropyLoss()(twin(torch.tensor(x)), torch.tensor(y)).backward()
    full = twin.weight.grad.clone()
    params, tparams = model.parameters(), twin.parameters()
    wxb.optim.SGD(params, lr=0.1), torch.optim.SGD(tparams, lr=0.1)
    nn.utils.clip_grad_norm_(params, max_norm=1e-3)
    with pytest.warns(UserWarning, match="empty generator"):  # torch's generator is spent
        assert torch.nn.utils.clip_grad_norm_(tparams, max_norm=1e-3).item() == 0.0
    assert torch.equal(twin.weight.grad, full)  # torch clipped nothing
    torch.nn.utils.clip_grad_norm_(list(twin.parameters()), max_norm=1e-3)
    np.testing.assert_allclose(model.weight.grad, twin.weight.grad.numpy(), rtol=1e-10)


def test_what_is_refused_is_refused_in_one_line():
    tm = torch.nn.Linear(3, 2)
    topt = torch.optim.Adam(tm.parameters())
    tm(torch.randn(4, 3)).sum().backward()
    topt.step()
    model = nn.Linear(3, 2)
    opt = wxb.optim.Adam(model.parameters())
    with pytest.raises(wxb.errors.ConfigError, match="optimizer_from_torch"):
        opt.load_state_dict(topt.state_dict())
    assert wxb.cuda.is_available() is False
    with pytest.raises(Exception, match="cuda"):
        model.to("cuda")
    with pytest.raises(AttributeError):
        model.weight.data.clamp_(-1, 1)


def test_state_dicts_are_copies_where_torchs_follow_training(seeded):
    rng = seeded.rng
    twin = torch.nn.Linear(4, 3).double()
    model = nn.Linear(4, 3, dtype="float64")
    model.load_state_dict(twin.state_dict())
    opt, topt = (
        wxb.optim.Adam(model.parameters(), lr=0.1),
        torch.optim.Adam(twin.parameters(), lr=0.1),
    )
    x, y = rng.normal(size=(6, 4)), rng.integers(0, 3, 6)

    def step():
        opt.zero_grad(), topt.zero_grad()
        nn.CrossEntropyLoss()(model(wxb.tensor(x)), y).backward()
        torch.nn.CrossEntropyLoss()(twin(torch.tensor(x)), torch.tensor(y)).backward()
        opt.step(), topt.step()

    step()
    best, tbest = model.state_dict(), twin.state_dict()
    deep = copy.deepcopy(twin.state_dict())  # PyTorch users' way to keep them
    ostate, tostate = opt.state_dict(), topt.state_dict()
    step()
    for k, v in best.items():  # wxb's: that step's weights
        np.testing.assert_allclose(
            v, deep[k].numpy(), rtol=1e-12, atol=1e-15, err_msg=seeded.msg(k)
        )
    # torch's followed training: the last weights, as the model holds them
    np.testing.assert_array_equal(tbest["weight"].numpy(), twin.weight.detach().numpy())
    assert not np.allclose(deep["weight"].numpy(), twin.weight.detach().numpy())
    assert ostate["state"][0]["step"] == 1 and tostate["state"][0]["step"].item() == 2
    model.load_state_dict(best)
    twin.load_state_dict(deep)
    np.testing.assert_allclose(model.weight.data, twin.weight.detach().numpy(), rtol=1e-12)
