"""Threads where PyTorch users put them: a server's predicts beside a thread that trains
or recalibrates, gradients looked at in one thread while another accumulates, fits in a
pool. Each threaded result is a sequential run's (or an independent reference's)."""

import threading

import numpy as np
import pytest

import wxb
from wxb.nn import CrossEntropyLoss, Dense, Sequential, Tanh


def _join(threads, errors, seconds=120):
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors[:3]


def _torch_grads(model, X, y):
    """∂L/∂p of CrossEntropy(model(X), y) in float64 by PyTorch, for a Dense-Tanh-Dense."""
    torch = pytest.importorskip("torch")
    ps = [torch.tensor(p.data, requires_grad=True) for p in model.parameters()]
    w1, b1, w2, b2 = ps
    z = torch.tanh(torch.tensor(X) @ w1.T + b1) @ w2.T + b2
    torch.nn.functional.cross_entropy(z, torch.tensor(y)).backward()
    return [p.grad.numpy() for p in ps]


def test_autograd_grad_in_one_thread_leaves_another_threads_backward_its_share(seeded, monkeypatch):
    """wxb.autograd.grad after a planned forward set each .grad aside (None), ran the
    plan's backward into .grad, and put the old .grad back: a backward in another thread
    on the same model in between added into the None, so autograd.grad handed back both
    losses' gradients and the other thread's share was lost from .grad (no error). Made
    to happen at that point every time: the first thread waits there for the second."""
    from wxb.nn import plan as planned

    rng = seeded.rng
    seed = int(rng.integers(1 << 20))
    model = Sequential(Dense(6, 9, seed=seed), Tanh(), Dense(9, 4, seed=seed + 1)).to("float64")
    (XA, yA), (XB, yB) = [(rng.normal(size=(11, 6)), rng.integers(0, 4, 11)) for _ in range(2)]
    want_a, want_b = _torch_grads(model, XA, yA), _torch_grads(model, XB, yB)
    for p in model.parameters():
        p.grad = None

    looking = []  # the thread whose autograd.grad waits
    at_backward, other_done = threading.Event(), threading.Event()
    original = planned.StackPlan.backward

    def waits_first(self, *args, **kwargs):
        if threading.get_ident() in looking:
            at_backward.set()
            assert other_done.wait(60)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(planned.StackPlan, "backward", waits_first)
    got, errors = {}, []

    def look():
        try:
            looking.append(threading.get_ident())
            loss = CrossEntropyLoss()(model(XA), yA)
            got["a"] = [g.data.copy() for g in wxb.autograd.grad(loss, list(model.parameters()))]
        except Exception as error:  # an assertion in a thread would be lost
            errors.append(repr(error))

    def accumulate():
        try:
            assert at_backward.wait(60)
            CrossEntropyLoss()(model(XB), yB).backward()
        except Exception as error:
            errors.append(repr(error))
        finally:
            other_done.set()

    _join([threading.Thread(target=look), threading.Thread(target=accumulate)], errors)
    # float64, one product and a row sum each: rounding of the order of ε·(terms)
    for g, w in zip(got["a"], want_a, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14, err_msg=seeded.msg("grad"))
    for p, w in zip(model.parameters(), want_b, strict=True):
        assert p.grad is not None, seeded.msg("the other thread's backward was lost")
        np.testing.assert_allclose(p.grad, w, rtol=1e-12, atol=1e-14, err_msg=seeded.msg(".grad"))
