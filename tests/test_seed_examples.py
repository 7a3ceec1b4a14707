"""The seed's worked examples, reproduced with numbers and checked term by term.

Expected values are computed here with plain Python floats and math.exp — an
independent hand computation — and compared with what the engine computes.
"""

import math

import numpy as np
from rounding import rounding_atol

import wxb
from wxb import ops
from wxb.nn import Dense, MSELoss, Sequential, Sigmoid


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def test_two_input_two_neuron_forward_pass(rng):
    # Z = W·X + b with W = [[w11, w12], [w21, w22]], X = [x1, x2], b = [b1, b2]
    (w11, w12), (w21, w22) = rng.normal(size=(2, 2)).tolist()
    x1, x2 = rng.normal(size=2).tolist()
    b1, b2 = rng.normal(size=2).tolist()
    z1 = w11 * x1 + w12 * x2 + b1
    z2 = w21 * x1 + w22 * x2 + b2

    layer = Dense(2, 2, dtype="float64")
    layer.weight.data[:] = [[w11, w12], [w21, w22]]
    layer.bias.data[:] = [b1, b2]
    Z = layer(np.array([[x1, x2]]))  # one sample, as a row
    np.testing.assert_allclose(Z.data[0], [z1, z2], rtol=1e-14, atol=1e-15)  # z may be ≈ 0

    A = Sigmoid()(Z)  # A = f(Z) = [f(z1), f(z2)]
    np.testing.assert_allclose(A.data[0], [sigmoid(z1), sigmoid(z2)], rtol=1e-14)


def test_one_hidden_neuron_network_forward_and_four_backprop_steps(rng):
    x, y = rng.normal(), rng.uniform(0.1, 0.9)
    w1, b1, w2, b2 = rng.normal(size=4).tolist()

    # Forward pass, by hand.
    z1 = w1 * x + b1
    a1 = sigmoid(z1)
    z2 = w2 * a1 + b2
    y_hat = sigmoid(z2)
    loss = 0.5 * (y_hat - y) ** 2

    def f_prime(z: float) -> float:
        return sigmoid(z) * (1 - sigmoid(z))

    # The seed's four backpropagation steps, by hand.
    delta2 = (y_hat - y) * f_prime(z2)  # 1. δ⁽²⁾ = (ŷ − y)·f′(z⁽²⁾)
    grad_w2 = delta2 * a1  # 2. ∂L/∂w⁽²⁾ = δ⁽²⁾·a⁽¹⁾
    delta1 = w2 * delta2 * f_prime(z1)  # 3. δ⁽¹⁾ = w⁽²⁾δ⁽²⁾·f′(z⁽¹⁾)
    grad_w1 = delta1 * x  # 4. ∂L/∂w⁽¹⁾ = δ⁽¹⁾·x

    # The engine, op by op, keeping δ = ∂L/∂Z of each layer.
    X = wxb.Tensor([[x]], dtype="float64")
    W1 = wxb.nn.Parameter([[w1]], dtype="float64")
    B1 = wxb.nn.Parameter([b1], dtype="float64")
    W2 = wxb.nn.Parameter([[w2]], dtype="float64")
    B2 = wxb.nn.Parameter([b2], dtype="float64")
    Z1 = ops.add_bias(ops.linear_map(X, W1), B1).retain_grad()
    A1 = ops.sigmoid(Z1)
    Z2 = ops.add_bias(ops.linear_map(A1, W2), B2).retain_grad()
    Y_hat = ops.sigmoid(Z2)
    L = ops.mse_loss(Y_hat, [[y]])
    L.backward()

    assert math.isclose(Z1.item(), z1, rel_tol=1e-14)
    assert math.isclose(A1.item(), a1, rel_tol=1e-14)
    assert math.isclose(Z2.item(), z2, rel_tol=1e-14)
    assert math.isclose(Y_hat.item(), y_hat, rel_tol=1e-14)
    assert math.isclose(L.item(), loss, rel_tol=1e-12)
    assert math.isclose(Z2.grad.item(), delta2, rel_tol=1e-12)
    assert math.isclose(W2.grad.item(), grad_w2, rel_tol=1e-12)
    assert math.isclose(Z1.grad.item(), delta1, rel_tol=1e-12)
    assert math.isclose(W1.grad.item(), grad_w1, rel_tol=1e-12)
    # ∂L/∂b⁽ˡ⁾ = δ⁽ˡ⁾
    assert math.isclose(B2.grad.item(), delta2, rel_tol=1e-12)
    assert math.isclose(B1.grad.item(), delta1, rel_tol=1e-12)

    # The same network as layers gives the same gradients.
    model = Sequential(
        Dense(1, 1, dtype="float64"), Sigmoid(), Dense(1, 1, dtype="float64"), Sigmoid()
    )
    model.load_state_dict(
        {"dense1.weight": [[w1]], "dense1.bias": [b1], "dense2.weight": [[w2]], "dense2.bias": [b2]}
    )
    MSELoss()(model([[x]]), [[y]]).backward()
    assert math.isclose(model.dense1.weight.grad.item(), grad_w1, rel_tol=1e-12)
    assert math.isclose(model.dense2.weight.grad.item(), grad_w2, rel_tol=1e-12)


def test_batch_weight_gradient_is_delta_times_previous_activation_transposed(rng):
    """∂L/∂W⁽ˡ⁾ = δ⁽ˡ⁾·A⁽ˡ⁻¹⁾ᵀ and ∂L/∂b = Σ_batch δ, on a batch in column notation."""
    m, n, batch = rng.integers(1, 6, size=3)
    X = wxb.Tensor(rng.normal(size=(batch, n)), dtype="float64")
    W = wxb.nn.Parameter(rng.normal(size=(m, n)), dtype="float64")
    b = wxb.nn.Parameter(rng.normal(size=m), dtype="float64")
    Z = ops.add_bias(ops.linear_map(X, W), b).retain_grad()
    target = rng.normal(size=(batch, m))
    ops.mse_loss(ops.tanh(Z), target).backward()
    delta_columns = Z.grad.T  # m×B, the seed's column layout
    A_prev_columns = X.data.T  # n×B
    np.testing.assert_allclose(W.grad, delta_columns @ A_prev_columns.T, rtol=1e-13)
    # Σ_batch δ in another order than wxb's: a sum near 0 is off by ulps of its terms
    atol = rounding_atol(np.abs(delta_columns).sum(axis=1), batch)
    np.testing.assert_allclose(b.grad, delta_columns.sum(axis=1), rtol=1e-13, atol=atol)
