"""Copies, aliasing, threads and processes against PyTorch 2.13: each test here failed
before its fix (fresh random draws on each run; ``WXB_TEST_SEED`` replays one)."""

from __future__ import annotations

import copy
import multiprocessing
import os
import pickle

import numpy as np
import pytest
import torch
from sharing_workers import update
from torch_twins import tanh_classifier

import wxb
from wxb import nn


class KeepsLast(nn.Module):
    """A forward of one's own that keeps its last output (for a plot, a hook's look)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.last = None

    def forward(self, x):
        self.last = self.inner(x)
        return self.last


def _batch(rng, rows=6):
    return rng.normal(size=(rows, 5)), rng.integers(0, 3, size=rows)


def _losses(ours, theirs, X, y):
    mine = nn.CrossEntropyLoss()(ours(X), y)
    return mine, torch.nn.CrossEntropyLoss()(theirs(torch.tensor(X)), torch.tensor(y))


@pytest.mark.parametrize("how", ["pickle", "copy"])
def test_a_recorded_result_copies_as_torchs_a_leaf_of_its_values(seeded, how):
    # A loss or output sent through pickle (a process pool's or joblib's return value)
    # raised "Can't pickle local object 'loss.<locals>.backward'", before and after
    # backward(); copy.copy kept the graph, whose backward reached the original model.
    # PyTorch's pickle and copy.copy give a leaf of the values that requires grad.
    ours, theirs = tanh_classifier(seeded.rng)
    X, y = _batch(seeded.rng)
    copied = (lambda t: pickle.loads(pickle.dumps(t))) if how == "pickle" else copy.copy
    loss, their_loss = _losses(ours, theirs, X, y)
    out, their_out = ours(X), theirs(torch.tensor(X))
    for _ in ("before backward", "after"):
        for mine, theirs_ in ((loss, their_loss), (out, their_out)):
            got, want = copied(mine), copied(theirs_)
            assert got.is_leaf and want.is_leaf and got.requires_grad and want.requires_grad
            assert got.grad is None and got.grad_fn is None
            np.testing.assert_array_equal(got.data, mine.data)
            # (two libraries' float64 sums: a few units in the last place apart)
            np.testing.assert_allclose(got.data, want.detach().numpy(), rtol=1e-12, atol=1e-14)
        loss.backward(retain_graph=True)
        their_loss.backward(retain_graph=True)
    grads = [None if p.grad is None else p.grad.copy() for p in ours.parameters()]
    copied(loss).backward()  # a leaf's own gradient, nothing of the model's
    for p, g in zip(ours.parameters(), grads, strict=True):
        assert (p.grad is None) if g is None else np.array_equal(p.grad, g)


def test_a_leaf_copies_without_its_gradient_as_torchs(seeded):
    # pickle and copy.copy carried .grad along (copy.copy the same array, so the copy's
    # gradient grew with the original's next backward); PyTorch's carry the values and
    # requires_grad only, and its deepcopy, as wxb's, copies the gradient too
    values = seeded.rng.normal(size=int(seeded.rng.integers(1, 6)))
    mine, theirs = wxb.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    (mine * mine).sum().backward()
    (theirs * theirs).sum().backward()
    for copied in (lambda t: pickle.loads(pickle.dumps(t)), copy.copy):
        got, want = copied(mine), copied(theirs)
        assert (got.grad, got.requires_grad) == (want.grad, want.requires_grad) == (None, True)
        np.testing.assert_array_equal(got.data, values)
    got, want = copy.deepcopy(mine), copy.deepcopy(theirs)
    assert got.grad is not mine.grad
    np.testing.assert_array_equal(got.grad, want.grad.numpy())


def test_a_model_keeping_a_recorded_output_pickles_as_torchs(seeded):
    # joblib and multiprocessing pickle a model; one whose forward keeps its last output
    # (a recorded result) raised "Can't pickle local object" where PyTorch's pickles
    ours, theirs = tanh_classifier(seeded.rng)
    mine, twin = KeepsLast(ours), torch.nn.Module()
    X, _ = _batch(seeded.rng)
    mine(X)
    twin.inner, twin.last = theirs, theirs(torch.tensor(X))
    got, want = pickle.loads(pickle.dumps(mine)), pickle.loads(pickle.dumps(twin))
    assert got.last.is_leaf and want.last.is_leaf
    np.testing.assert_allclose(got.last.data, want.last.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(got(X).data, mine(X).data)


def _train_and_return_losses(model, batches):
    opt = wxb.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for X, y in batches:
        opt.zero_grad()
        loss = nn.CrossEntropyLoss()(model(X), y)
        loss.backward()
        opt.step()
        losses.append(loss)  # the tensors, as a PyTorch loop often keeps them
    return losses, model


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX's")
def test_a_process_pool_hands_back_a_loops_losses(seeded):
    # Pool.apply's return value is pickled: the losses a loop kept stopped it
    ours, _ = tanh_classifier(seeded.rng)
    batches = [_batch(seeded.rng) for _ in range(3)]
    want, trained = _train_and_return_losses(copy.deepcopy(ours), batches)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got, model = pool.apply_async(_train_and_return_losses, (ours, batches)).get(timeout=120)
    assert [t.item() for t in got] == [t.item() for t in want]
    for p, q in zip(model.parameters(), trained.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data)


def _update_here(model, state, X, y, lr):
    """sharing_workers.update in PyTorch, in this process (its tensors are not mapped)."""
    model.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
    model.train()
    torch.nn.functional.cross_entropy(model(torch.tensor(X)), torch.tensor(y)).backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    stats = [b for k, b in model.named_buffers() if k.endswith(("_mean", "_var"))]
    return [t.detach().numpy() for t in [*model.parameters(), *stats]]


def test_a_model_joblib_hands_a_worker_as_memory_maps_trains_there_as_torchs(seeded):
    # joblib passes each array over max_nbytes (1 MB by default) to its workers as a
    # read-only memory map: a wxb model arrived with read-only parameters and buffers,
    # and load_state_dict, p -= lr * p.grad and the running statistics raised
    # ("assignment destination is read-only"); PyTorch's tensors arrive writable
    joblib = pytest.importorskip("joblib")
    rng = seeded.rng
    n, hidden = 5, int(rng.integers(4, 9))
    ours = nn.Sequential(
        nn.Linear(n, hidden, dtype="float64"),
        nn.BatchNorm1d(hidden, dtype="float64"),
        nn.Tanh(),
        nn.Linear(hidden, 3, dtype="float64"),
    )
    theirs = torch.nn.Sequential(
        torch.nn.Linear(n, hidden, dtype=torch.float64),
        torch.nn.BatchNorm1d(hidden, dtype=torch.float64),
        torch.nn.Tanh(),
        torch.nn.Linear(hidden, 3, dtype=torch.float64),
    )
    state = {k: rng.normal(size=tuple(v.shape)) for k, v in theirs.state_dict().items()}
    state = {k: (abs(v) + 0.5 if k.endswith("running_var") else v) for k, v in state.items()}
    state["1.num_batches_tracked"] = np.array(0)
    X, y = _batch(rng, rows=int(rng.integers(4, 9)))
    lr = float(rng.uniform(0.01, 0.5))
    with joblib.parallel_config(backend="loky", n_jobs=2, max_nbytes=8):  # every array mapped
        (mine,) = joblib.Parallel(timeout=120)([joblib.delayed(update)(ours, state, X, y, lr)])
    want = _update_here(theirs, state, X, y, lr)
    assert len(mine) == len(want) == 8  # six parameters, the running mean and variance
    for got, expected in zip(mine, want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
