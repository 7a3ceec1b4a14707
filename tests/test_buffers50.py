"""Buffers answer torch's in-place idioms (``self.ema.mul_(m).add_(x.mean(0), alpha=1 - m)``,
``self.count.add_(1)``, ``copy_``, ``fill_``, ``lerp_``, ``clamp_``...), changing the buffer
the module holds, as torch's do; checked against PyTorch in float64."""

import copy
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import wxb
from wxb import nn
from wxb.errors import ConfigError


def make(self, torchs: bool, h: int, m: float) -> None:
    def zeros(*shape, dtype="float64"):
        return torch.zeros(shape, dtype=getattr(torch, dtype)) if torchs else np.zeros(shape, dtype)

    self.m, self.torchs = m, torchs
    if torchs:
        self.layer = torch.nn.Linear(h, 2, dtype=torch.float64)
    else:
        self.layer = nn.Linear(h, 2, dtype="float64")
    self.register_buffer("ema", zeros(h))
    self.register_buffer("square", zeros(h))
    self.register_buffer("band", zeros(h))
    self.register_buffer("scale", zeros(1))
    self.register_buffer("count", zeros(dtype="int64"))


def track(self, x):
    """Statistics kept in buffers by torch's in-place methods, and used in the output."""
    m = self.m
    if self.training:
        with torch.no_grad() if self.torchs else wxb.no_grad():
            mean = x.mean(0)
            self.ema.mul_(m).add_(mean, alpha=1 - m)
            self.square.lerp_((x * x).mean(0), 1 - m).sub_(mean, alpha=0.0)
            self.band.copy_(self.ema).mul_(2.0).clamp_(-0.2, 0.2)
            self.count.add_(1)
            self.scale.fill_(1.0).div_(self.count.item() + 1).addcmul_(mean[:1], mean[:1])
    centre = self.ema.detach().to("cpu")
    spread = self.square.clone() - self.ema * self.ema + 1.0
    return self.layer((x - centre - self.band) / spread.sqrt() * (1 + self.scale))


class Ours(nn.Module):  # (at the top level: pickled)
    def __init__(self, h, m):
        super().__init__()
        make(self, False, h, m)

    forward = track


class Theirs(torch.nn.Module):
    def __init__(self, h, m):
        super().__init__()
        make(self, True, h, m)

    forward = track


def build(lib: str, h: int, m: float):
    return Theirs(h, m) if lib == "torch" else Ours(h, m)


def same(ours, theirs, msg, tol):
    for (name, b), q in zip(ours.named_buffers(), theirs.buffers(), strict=True):
        np.testing.assert_allclose(b, q.numpy(), rtol=tol, atol=tol, err_msg=msg(name))
        assert b.dtype == q.numpy().dtype, msg(f"{name}'s dtype")
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(
            p.data, q.detach().numpy(), rtol=tol, atol=tol, err_msg=msg(name)
        )


@pytest.mark.parametrize("way", ["hand", "fit"])
def test_buffers_changed_in_place_by_torchs_methods_train_as_torchs(seeded, way):
    rng = seeded.rng
    h, size, steps = int(rng.integers(2, 6)), int(rng.integers(2, 6)), int(rng.integers(2, 5))
    m = float(rng.uniform(0.5, 0.95))
    msg = lambda what: seeded.msg(f"{what}, by {way}, h={h} m={m:.3f}")  # noqa: E731
    ours, theirs = build("wxb", h, m), build("torch", h, m)
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
            q.copy_(torch.from_numpy(np.asarray(p.data)))
    X = rng.normal(size=(steps * size, h)) + rng.normal(size=h)
    y = rng.integers(0, 2, steps * size)
    if way == "fit":
        wxb.fit(ours, X, y, epochs=1, batch_size=size, shuffle=False, optimizer="sgd", lr=0.3,
                verbose=False)  # fmt: skip
    else:
        opt = wxb.optim.SGD(ours.parameters(), lr=0.3)
        ours.train()
        for i in range(steps):
            rows = slice(i * size, (i + 1) * size)
            opt.zero_grad()
            wxb.nn.functional.cross_entropy(ours(wxb.tensor(X[rows])), y[rows]).backward()
            opt.step()
    opt = torch.optim.SGD(theirs.parameters(), lr=0.3)
    theirs.train()
    for i in range(steps):
        rows = slice(i * size, (i + 1) * size)
        opt.zero_grad()
        F.cross_entropy(theirs(torch.from_numpy(X[rows])), torch.from_numpy(y[rows])).backward()
        opt.step()
    assert int(ours.count) == steps, msg("steps counted")
    same(ours, theirs, msg, 1e-9)
    ours.eval()
    theirs.eval()
    with torch.no_grad():
        want = theirs(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(ours(wxb.tensor(X)).numpy(), want, rtol=1e-9, atol=1e-9,
                               err_msg=msg("the outputs"))  # fmt: skip
    # the state as plain arrays; loaded into a fresh model, which goes on as torch's
    state = ours.state_dict()
    assert all(type(a) is np.ndarray for a in state.values()), msg("state_dict's types")
    again = build("wxb", h, m)
    again.load_state_dict(state)
    twin = pickle.loads(pickle.dumps(ours))
    deep = copy.deepcopy(ours)
    more = rng.normal(size=(size, h))
    for model in (again, twin, deep, theirs):
        model.train()
        with torch.no_grad() if model is theirs else wxb.no_grad():
            model(torch.from_numpy(more) if model is theirs else wxb.tensor(more))
    for model, what in ((again, "loaded"), (twin, "pickled"), (deep, "deep-copied")):
        same(model, theirs, lambda w, what=what: msg(f"{w}, {what} and a step on"), 1e-9)
    assert int(ours.count) == steps, msg("the original changed through a copy")


def test_a_buffer_is_the_modules_own_array_through_every_name(seeded, tmp_path):
    rng = seeded.rng
    n = int(rng.integers(2, 7))
    values = rng.normal(size=n)
    given = values.copy()
    model = nn.Module()
    model.register_buffer("ema", given)
    shared = nn.Module()
    shared.register_buffer("ema", given)  # one array, one buffer, as torch's
    model.child = shared
    assert len(list(model.named_buffers())) == 1, seeded.msg("one array registered twice")
    step = rng.normal(size=n)
    assert model.ema.add_(step) is model.ema, seeded.msg("add_ returns the buffer")
    np.testing.assert_allclose(given, values + step, err_msg=seeded.msg("the given array"))
    for held in (model._buffers["ema"], model.get_buffer("ema"), shared.ema,
                 next(model.buffers()), model.ema.detach(), model.ema.to("cpu")):  # fmt: skip
        np.testing.assert_array_equal(held, values + step, err_msg=seeded.msg("a name"))
    model.ema.zero_()
    assert not given.any(), seeded.msg("zero_ on the given array")
    clone = model.ema.clone()
    model.ema.fill_(3.0)
    assert not np.asarray(clone.numpy()).any(), seeded.msg("clone is a copy")
    assert type(model.ema * 2) is np.ndarray, seeded.msg("arithmetic gives plain arrays")
    assert type(model.ema.copy()) is np.ndarray, seeded.msg("a copy is a plain array")
    assert model.ema.size(0) == n and model.ema.size() == (n,) and model.ema.dim() == 1
    extra = rng.normal(size=n)
    model._buffers["extra"] = extra  # PyTorch's table edited directly: a buffer as any other
    model.extra.mul_(0.0)
    assert not extra.any() and not model._buffers["extra"].any(), seeded.msg("table edit")
    model.ema.copy_(rng.normal(size=n))  # saved in a dict of one's own, as torch.save takes it
    wxb.save({"ema": model.ema, "count": 3}, tmp_path / "state.safetensors")
    loaded = wxb.load(tmp_path / "state.safetensors")
    assert type(loaded["ema"]) is np.ndarray, seeded.msg("a saved buffer loads as an array")
    np.testing.assert_array_equal(loaded["ema"], model.ema, err_msg=seeded.msg("saved"))


def test_in_place_methods_keep_the_buffers_dtype_as_torchs(seeded):
    rng = seeded.rng
    n = int(rng.integers(2, 7))
    a, b = rng.normal(size=n), rng.normal(size=n)
    w = float(rng.uniform(0, 1))
    model = nn.Module()
    model.register_buffer("f", a.astype(np.float32))
    model.register_buffer("count", np.zeros(n, np.int64))
    t_f, t_count = torch.from_numpy(a.astype(np.float32)), torch.zeros(n, dtype=torch.int64)
    model.f.lerp_(b.astype(np.float32), w).mul_(b).add_(wxb.tensor(a), alpha=w)
    t_f.lerp_(torch.from_numpy(b.astype(np.float32)), w).mul_(torch.from_numpy(b))
    t_f.add_(torch.from_numpy(a), alpha=w)
    # float32: each of the four roundings within half an ulp of values at most ~(1+|a|+|b|)³
    bound = 4 * np.finfo(np.float32).eps * (1 + np.abs(a) + np.abs(b)) ** 3
    assert model.f.dtype == np.float32
    np.testing.assert_array_less(np.abs(model.f - t_f.numpy()), bound, err_msg=seeded.msg("f"))
    model.count.add_(2).mul_(3).sub_(1).clamp_(max=4)
    t_count.add_(2).mul_(3).sub_(1).clamp_(max=4)
    assert model.count.dtype == np.int64
    np.testing.assert_array_equal(model.count, t_count.numpy(), err_msg=seeded.msg("count"))
    with pytest.raises(ConfigError, match="does not fit the buffer's int64"):
        model.count.add_(0.5)
    with pytest.raises(RuntimeError):  # (torch refuses it too)
        t_count.add_(0.5)
    assert model.count.float().dtype == np.float32 and model.f.to(wxb.float64).dtype == np.float64


def test_batchnorm_running_statistics_are_unchanged(seeded):
    rng = seeded.rng
    c, rows = int(rng.integers(2, 6)), int(rng.integers(3, 9))
    ours = nn.BatchNorm1d(c)
    theirs = torch.nn.BatchNorm1d(c)
    for _ in range(3):
        X = rng.normal(size=(rows, c)).astype(np.float32) * 2 + 1
        ours(wxb.tensor(X))
        theirs(torch.from_numpy(X))
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        got, want = getattr(ours, name), getattr(theirs, name).detach().numpy()
        assert got.dtype == want.dtype, seeded.msg(name)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=seeded.msg(name))
    state = ours.state_dict()
    assert all(type(a) is np.ndarray for a in state.values())
    ours.running_mean.zero_()
    assert not ours._buffers["running_mean"].any()
