"""A hand loop's ``loss.backward()`` beside another thread's write of the same weights
(an optimiser's step, ``load_state_dict``): the backward reads the weights as the forward
does, so the write waits for it and its gradients are those of the weights the forward
used. The race is made to happen at its worst point each run: the backward pauses after
the last layer's rule (which read W3) and before the middle one's (which reads W2) until
the other thread has written or is seen held back; gradients and weights are compared
with the chain rule's float64 answer by NumPy."""

import threading

import numpy as np
import pytest
import thread_runs as runs

import wxb
from wxb.nn import CrossEntropyLoss, Dense, Module, Sequential, Tanh


class _ThreeLayers(Module):
    """tanh(tanh(x W1ᵀ + b1) W2ᵀ + b2) W3ᵀ + b3, layer by layer (one graph node each);
    ``kept`` gets the second hidden layer of each forward (a hook's place)."""

    def __init__(self, seed, widths):
        super().__init__()
        a, b, c, d = widths
        self.fc1, self.fc2, self.fc3 = (
            Dense(a, b, seed=seed),
            Dense(b, c, seed=seed + 1),
            Dense(c, d, seed=seed + 2),
        )
        self.kept = []

    def forward(self, x):
        h2 = self.fc2(self.fc1(x).tanh()).tanh()
        self.kept.append(h2)
        return self.fc3(h2)


def _grads(ws, X, y):
    """∂L/∂(W1, b1, W2, b2, W3, b3) of the mean cross-entropy at ``ws``, by the chain rule
    in NumPy float64: δ = (softmax − one-hot)/n at the output, δ W through each layer,
    ⊙ (1 − h²) through each tanh, ∂L/∂W = δᵀ h and ∂L/∂b = Σ δ over the rows."""
    w1, b1, w2, b2, w3, b3 = ws
    h1 = np.tanh(X @ w1.T + b1)
    h2 = np.tanh(h1 @ w2.T + b2)
    o = h2 @ w3.T + b3
    p = np.exp(o - o.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    d3 = p / len(y)
    d2 = (d3 @ w3) * (1 - h2**2)
    d1 = (d2 @ w2) * (1 - h1**2)
    return [d1.T @ X, d1.sum(0), d2.T @ h1, d2.sum(0), d3.T @ h2, d3.sum(0)]


def _model(kind, seed, widths):
    """The three-layer tanh net: layer by layer (a node each), or a Sequential (planned:
    one node for the stack, whose rule reads every W)."""
    if kind == "own forward":
        return _ThreeLayers(seed, widths).to("float64")
    a, b, c, d = widths
    layers = Dense(a, b, seed=seed), Tanh(), Dense(b, c, seed=seed + 1), Tanh()
    return Sequential(*layers, Dense(c, d, seed=seed + 2)).to("float64")


@pytest.mark.parametrize("kind", ["own forward", "planned"])
@pytest.mark.parametrize("write", ["step", "load_state_dict"])
def test_a_hand_loops_backward_beside_another_threads_write_is_of_the_forwards_weights(
    seeded, kind, write
):
    """The backward was no reader of the weights: another thread's step went ahead in
    the middle of it, and the layers below took ∂L/∂h through the new W2 while the
    layers above had the old W3 (a planned Sequential's rule took every W new, beside
    the forward's old activations): gradients of no weights, without a word (W1's off
    by O(1)). Now the write waits for the backward, whose gradients are the chain
    rule's at the forward's weights; the step then uses them whole."""
    rng = seeded.rng
    widths = [int(w) for w in rng.integers(3, 9, size=4)]
    model = _model(kind, int(rng.integers(1 << 20)), widths)
    n = int(rng.integers(2, 17))
    X, y = rng.normal(size=(n, widths[0])), rng.integers(0, widths[3], n)
    lr = float(rng.uniform(0.5, 1.0))
    opt = wxb.optim.SGD(model.parameters(), lr=lr)
    loaded = {k: v + rng.normal(size=v.shape) for k, v in model.state_dict().items()}
    held = [rng.normal(size=p.shape) for p in model.parameters()]  # gradients already there
    for p, g in zip(model.parameters(), held, strict=True):
        p.grad = g.copy()  # (so the step writes W2, whose rule the backward has not run)
    before = runs.weights(model)

    reached, wrote, got, errors = threading.Event(), threading.Event(), {}, []

    def pause(g):  # the backward, between the rules reading W3 and W2 (before the stack's)
        reached.set()
        runs.until(lambda: wrote.is_set() or runs.writer_waiting(), what="the write never came")

    def hand_loop():
        out = model(X)
        loss = CrossEntropyLoss()(out, y)
        (model.kept[-1] if kind == "own forward" else out).register_hook(pause)
        loss.backward()
        got["grads"] = [p.grad - g for p, g in zip(model.parameters(), held, strict=True)]

    def other_thread():
        try:
            assert reached.wait(runs.SECONDS), "the backward never came"
            if write == "step":
                opt.step()
            else:
                model.load_state_dict(loaded)
        finally:
            wrote.set()

    runs.join_all([runs.guarded(hand_loop, errors), runs.guarded(other_thread, errors)], errors)
    want = _grads(before, X, y)
    names = list(model.state_dict())
    for name, g, w in zip(names, got["grads"], want, strict=True):
        np.testing.assert_allclose(
            g, w, rtol=1e-9, atol=1e-12, err_msg=seeded.msg(f"{kind}, {write}: ∂L/∂{name}")
        )
    after = runs.weights(model)
    for name, a, w0, g0, gw in zip(names, after, before, held, want, strict=True):
        expected = w0 - lr * (g0 + gw) if write == "step" else loaded[name]
        np.testing.assert_allclose(
            a, expected, rtol=1e-9, atol=1e-12, err_msg=seeded.msg(f"{kind}, {write}: {name} after")
        )
