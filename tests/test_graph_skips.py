"""The recorded graph's products compute only the gradients asked for, as the planned
backward does: the first layer's δ·W (as costly as its forward) has no taker when X is
data, and a frozen W needs no δᵀ·X."""

import numpy as np
import torch

import wxb
from wxb import ops


def test_a_product_gives_no_gradient_to_an_operand_that_did_not_ask(rng):
    X, W = rng.normal(size=(5, 4)), rng.normal(size=(3, 4))
    delta = rng.normal(size=(5, 3))
    for x_asks, w_asks in ((False, True), (True, False), (True, True)):
        x, w = wxb.Tensor(X, requires_grad=x_asks), wxb.Tensor(W, requires_grad=w_asks)
        for out, expected in (
            (ops.linear_map(x, w), (delta @ W, delta.T @ X)),
            (ops.matmul(x, w.T), (delta @ W, None)),  # (w.T's own rule takes B's gradient)
        ):
            grads = out._backward(delta)
            assert (grads[0] is None) == (not x_asks)
            if x_asks:
                assert np.allclose(grads[0], expected[0])
            if out.op == "W·X":
                assert (grads[1] is None) == (not w_asks)
                if w_asks:
                    assert np.allclose(grads[1], expected[1])


def test_gradients_through_frozen_and_data_inputs_match_torch(rng):
    X, W1, W2 = rng.normal(size=(6, 4)), rng.normal(size=(5, 4)), rng.normal(size=(2, 5))
    for freeze_first in (False, True):
        x = wxb.Tensor(X.copy(), requires_grad=True)
        w1, w2 = (
            wxb.Tensor(W1.copy(), requires_grad=not freeze_first),
            wxb.Tensor(W2.copy(), requires_grad=True),
        )
        (ops.linear_map(ops.relu(ops.linear_map(x, w1)), w2) ** 2).sum().backward()
        tx = torch.tensor(X, requires_grad=True)
        tw1 = torch.tensor(W1, requires_grad=not freeze_first)
        tw2 = torch.tensor(W2, requires_grad=True)
        ((torch.relu(tx @ tw1.T) @ tw2.T) ** 2).sum().backward()
        assert np.allclose(x.grad, tx.grad.numpy()) and np.allclose(w2.grad, tw2.grad.numpy())
        assert (w1.grad is None) == freeze_first
        if not freeze_first:
            assert np.allclose(w1.grad, tw1.grad.numpy())
