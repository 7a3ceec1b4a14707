"""Tensor and parameter paths a PyTorch user walks (session 56), each checked against
torch 2.13: in-place detach, ties of memory through pickle, PReLU's init kept, uint8
index arrays that torch reads as masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import wxb
from wxb.errors import ConfigError


def test_detach_in_place_as_torch(rng: np.random.Generator) -> None:
    """torch's h.detach_(): the same tensor, now a leaf needing no gradient; a view and
    (in wxb) a record not yet walked are refused by name. It had no detach_ at all."""
    x0 = rng.standard_normal(4)
    x, tx = wxb.Tensor(x0, requires_grad=True), torch.tensor(x0, requires_grad=True)
    y, ty = x * 3.0, tx * 3.0
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    assert y.detach_() is y and ty.detach_() is ty
    assert (y.requires_grad, y.is_leaf, y.grad_fn) == (False, True, None)
    assert (ty.requires_grad, ty.is_leaf, ty.grad_fn) == (False, True, None)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12)
    w0 = rng.standard_normal(4)
    w, tw = wxb.Tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    (y * w).sum().backward()  # y a constant now: only w gets a gradient
    (ty * tw).sum().backward()
    np.testing.assert_allclose(w.grad, tw.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12)  # unchanged
    # a leaf (a Parameter too) just stops needing its gradient
    p = wxb.nn.Parameter(rng.standard_normal(3))
    assert p.detach_() is p and not p.requires_grad
    with pytest.raises(ConfigError, match="view"):
        wxb.Tensor(x0, requires_grad=True)[:2].detach_()
    with pytest.raises(RuntimeError, match="views in-place"):
        torch.tensor(x0, requires_grad=True)[:2].detach_()
    live = x * 2.0
    _ = live.sum()
    with pytest.raises(ConfigError, match=r"t = t\.detach\(\)"):
        live.detach_()


def test_prelu_keeps_its_init_through_a_file_and_torch(rng: np.random.Generator, tmp_path) -> None:
    """PReLU(init=a): reset_parameters() puts the slopes back to a, as torch's. A saved and
    loaded one, and one converted to or from torch, forgot a (back to 0.25)."""
    from wxb.interop import from_torch, to_torch

    init = float(rng.uniform(-0.9, 0.9))
    model = wxb.nn.Sequential(wxb.nn.Linear(3, 4), wxb.nn.PReLU(4, init=init))
    with wxb.no_grad():
        model[1].weight[...] = rng.standard_normal(4)  # trained away from init
    wxb.save(model, tmp_path / "m.safetensors")
    loaded = wxb.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(loaded[1].weight.data, model[1].weight.data)
    twin = to_torch(model)
    back = from_torch(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.PReLU(4, init=init)))
    for prelu in (loaded[1], twin[1], back[1]):
        prelu.reset_parameters()
        np.testing.assert_allclose(np.asarray(prelu.weight.detach()), np.full(4, init), rtol=1e-6)


def test_pickle_keeps_parameters_tied_in_memory(rng: np.random.Generator) -> None:
    """A decoder whose W is Parameter(enc.weight.T) steps in the encoder's memory; after
    pickle.loads it stepped in a copy of its own, so the loaded model trained apart from
    the original (deepcopy and wxb.save kept the tie; so does torch.save)."""
    import pickle

    enc, dec = wxb.nn.Linear(3, 5), wxb.nn.Linear(5, 3)
    dec.weight = wxb.nn.Parameter(enc.weight.T)
    model = wxb.nn.Sequential(wxb.nn.Sequential(enc, wxb.nn.Tanh()), dec)  # tied across
    loaded = pickle.loads(pickle.dumps(model))
    assert np.shares_memory(loaded[0][0].weight.data, loaded[1].weight.data)
    X = rng.standard_normal((8, 3))
    for m in (model, loaded):
        opt = wxb.optim.SGD(m.parameters(), lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            ((m(X) - X) ** 2).mean().backward()
            opt.step()
    for (name, p), q in zip(model.named_parameters(), loaded.parameters(), strict=True):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-6, atol=1e-7, err_msg=name)
    np.testing.assert_array_equal(loaded[1].weight.data, loaded[0][0].weight.data.T)


def test_uint8_index_of_the_dimensions_shape_is_refused(rng: np.random.Generator) -> None:
    """torch reads a uint8 index as a mask (deprecated), NumPy as positions: x[u8] with u8
    of x's first dimension's length picked other rows than torch's without a word. It is
    refused, naming both ways; a uint8 array of another length (torch refuses it as a
    mask) is taken as positions, values and gradient as torch's with .long()."""
    n, d = int(rng.integers(3, 7)), int(rng.integers(2, 5))
    a0 = rng.standard_normal((n, d))
    flags = rng.integers(0, 2, n).astype(np.uint8)
    x, tx = wxb.Tensor(a0, requires_grad=True), torch.tensor(a0, requires_grad=True)
    with pytest.warns(UserWarning, match="uint8"):  # torch's own: a mask
        picked = tx[torch.from_numpy(flags)]
    np.testing.assert_array_equal(picked.detach().numpy(), a0[flags.astype(bool)])
    columns = rng.integers(0, 2, d).astype(np.uint8)
    whole = rng.integers(0, 2, (n, d)).astype(np.uint8)  # a mask of all of x
    for key in (flags, torch.from_numpy(flags), (slice(None), columns), whole):
        with pytest.raises(wxb.DataError, match=r"uint8.*astype\(bool\).*astype\(np\.int64\)"):
            x[key]
        with pytest.raises(wxb.DataError, match="uint8"):
            x.detach()[key] = 0.0
    np.testing.assert_array_equal(x[flags.astype(bool)].data, a0[flags.astype(bool)])
    positions = rng.integers(0, n, n + 1).astype(np.uint8)  # not a mask's length: positions
    g0 = rng.standard_normal((n + 1, d))
    (x[positions] * wxb.Tensor(g0)).sum().backward()
    (tx[torch.from_numpy(positions).long()] * torch.tensor(g0)).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12)


def test_load_state_dict_assign_takes_the_tensors_themselves(rng: np.random.Generator) -> None:
    """load_state_dict(sd, assign=True), as torch's: a Parameter given becomes the
    module's (requires_grad the replaced one's), an array or tensor a Parameter in its
    memory, a buffer the array itself. wxb copied the values in, so a model loaded from
    another's state_dict(keep_vars=True) trained apart where torch's trains one set."""
    ours, theirs = [wxb.nn.Sequential(wxb.nn.Linear(3, 4), wxb.nn.BatchNorm1d(4)) for _ in "ab"]
    tnn = torch.nn
    twin, twin2 = [tnn.Sequential(tnn.Linear(3, 4), tnn.BatchNorm1d(4)) for _ in "ab"]
    with wxb.no_grad():
        ours[0].weight.requires_grad = False  # the flag stays the replaced parameter's
    twin[0].weight.requires_grad_(False)
    for model, source in ((ours, theirs), (twin, twin2)):
        state = source.state_dict(keep_vars=True)
        weight, bias = list(state)[:2]  # (wxb's Sequential names its layers: dense1.weight)
        model.load_state_dict(state, assign=True)
        assert model[0].weight is state[weight] and model[0].bias is state[bias]
        assert not model[0].weight.requires_grad and model[0].bias.requires_grad
    mean = rng.standard_normal(4).astype(np.float32)
    key = next(k for k in ours.state_dict() if k.endswith("running_mean"))
    ours.load_state_dict({**ours.state_dict(), key: mean}, assign=True)
    given = torch.from_numpy(mean)
    twin.load_state_dict({**twin.state_dict(), "1.running_mean": given}, assign=True)
    mean[0] = 7.0  # the buffer is the array given, in both
    assert ours[1].running_mean[0] == 7.0 and twin[1].running_mean[0].item() == 7.0
    w = rng.standard_normal((4, 3)).astype(np.float32)
    lin = wxb.nn.Linear(3, 4)
    lin.load_state_dict({"weight": w, "bias": np.zeros(4, np.float32)}, assign=True)
    w += 1.0  # a Parameter in the array's own memory, as torch's Parameter(t)
    np.testing.assert_array_equal(lin.weight.data, w)


def test_parameter_of_a_buffer_is_refused_and_a_buffer_of_a_parameter_tied(
    rng: np.random.Generator,
) -> None:
    """torch's Parameter(self.b) shares buffer b's memory: a step moves b too. wxb's
    trained a copy and left b as it was, without a word: now refused, naming the ways.
    The other way round (register_buffer("b", p.data)) is one memory in both."""
    values = rng.standard_normal((2, 3)).astype(np.float32)
    ours, theirs = wxb.nn.Module(), torch.nn.Module()
    ours.register_buffer("b", values.copy())
    theirs.register_buffer("b", torch.from_numpy(values.copy()))
    theirs.w = torch.nn.Parameter(theirs.b)
    with pytest.raises(ConfigError, match=r"buffer.*Parameter\(buffer\.copy\(\)\)"):
        ours.w = wxb.nn.Parameter(ours.b)
    with pytest.raises(ConfigError, match="buffer"):
        wxb.nn.Parameter(wxb.Tensor(ours.b))
    frozen = wxb.nn.Parameter(ours.b, requires_grad=False)  # no step: its values, as torch's
    np.testing.assert_array_equal(frozen.data, values)
    ours.w = wxb.nn.Parameter(values.copy())
    ours.register_buffer("v", ours.w.data)
    theirs.register_buffer("v", theirs.w.data)
    g = rng.standard_normal((2, 3)).astype(np.float32)
    (ours.w * wxb.Tensor(g)).sum().backward()
    wxb.optim.SGD([ours.w], lr=0.5).step()
    (theirs.w * torch.from_numpy(g)).sum().backward()
    with torch.no_grad():  # torch's SGD step, written out (torch.optim's first import is slow)
        theirs.w -= 0.5 * theirs.w.grad
    np.testing.assert_allclose(np.asarray(ours.v), theirs.v.numpy(), rtol=1e-6)
    np.testing.assert_allclose(theirs.b.numpy(), values - 0.5 * g, rtol=1e-6)  # torch's b moved


def test_autograd_grad_frees_only_what_it_ran(rng: np.random.Generator) -> None:
    """torch.autograd.grad runs, and frees, only the nodes toward its inputs: a
    discriminator's gradient, then the generator's backward through the same fake rows.
    wxb's grad freed the whole graph, and the second backward raised."""
    a0, b0 = rng.standard_normal(3), rng.standard_normal(3)
    grads = []
    for lib, grad in ((wxb, wxb.autograd.grad), (torch, torch.autograd.grad)):
        a = lib.tensor(a0, requires_grad=True, dtype=lib.float64)
        b = lib.tensor(b0, requires_grad=True, dtype=lib.float64)
        fake = a.exp()  # (its backward reads its result: freed, a second walk would raise)
        (gb,) = grad((fake * b).sum(), b)
        (fake * fake).sum().backward()
        grads.append([np.asarray(gb.detach()), np.asarray(a.grad)])
    for ours, theirs in zip(*grads, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    x = wxb.Tensor(a0, requires_grad=True)
    y = (x.exp() * x).sum()
    wxb.autograd.grad(y, x)
    with pytest.raises(wxb.TrainingError, match="second time"):  # what it ran is freed
        y.backward()
