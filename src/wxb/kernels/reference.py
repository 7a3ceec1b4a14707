"""The NumPy implementation of wxb.kernels: always present, and the one the compiled
kernels are tested against. Each function computes, operation by operation and in
the same order, what its compiled twin computes in one pass.

Scalars arrive already derived (1 − β₂, η/(1 − β₁ᵗ)·c, …) and in the arrays' dtype,
so both implementations round the same values.
"""

from __future__ import annotations

import numpy as np

# Activation codes shared with the compiled kernels.
IDENTITY, RELU, LEAKY_RELU, SIGMOID, TANH = range(5)


# -- activations: A = f(Z) and δ = ∂L/∂A ⊙ f′(Z) ------------------------------------------
def _leaky_slope(z, alpha, one_minus_alpha, out):
    """1 where z > 0, else α: as [z > 0]·(1 − α) + α in place, where that sum is exactly 1
    (every α in [−1, 1]); else through a mask (a slope beyond that range)."""
    if one_minus_alpha + alpha != 1:
        np.copyto(out, np.where(z > 0, out.dtype.type(1), alpha))
        return out
    np.greater(z, 0, out=out)  # 1.0 where z > 0, else 0.0
    out *= one_minus_alpha
    out += alpha
    return out


def _zero_where_not_positive(a, grad, out):
    """out = 0 where a ≤ 0, else grad: a select (0·inf would be NaN, and a NaN in ``a``
    passes its gradient on, as PyTorch's), done as a bit mask because NumPy's masked
    copies run element by element, ten times slower than the product they replace."""
    if grad.dtype != out.dtype:
        np.copyto(out, np.where(a <= 0, out.dtype.type(0), grad))
        return out
    bits = out.view(f"i{out.itemsize}")
    np.less_equal(a, 0, out=bits)  # 1 where a ≤ 0, else 0
    bits -= 1  # all bits clear where a ≤ 0, all set elsewhere
    np.bitwise_and(bits, grad.view(bits.dtype), out=bits)
    return out


def activation_forward(code, alpha, one_minus_alpha, one, z, out):
    if code == IDENTITY:
        np.copyto(out, z)
    elif code == RELU:  # max(0, z)
        np.maximum(z, 0, out=out)
    elif code == LEAKY_RELU:  # z where z > 0, else αz
        _leaky_slope(z, alpha, one_minus_alpha, out)
        out *= z
    elif code == SIGMOID:  # σ(z) = 1 / (1 + e^(−z)); e^(−z) = inf gives σ = 0, the limit
        with np.errstate(over="ignore"):
            np.negative(z, out=out)
            np.exp(out, out=out)
        out += 1
        np.reciprocal(out, out=out)
    else:
        np.tanh(z, out=out)
    return out


def activation_backward(code, alpha, one_minus_alpha, one, z, a, grad, out):
    if code == IDENTITY:  # f′ = 1
        np.copyto(out, grad)
        return out
    if code == RELU:  # f′ = 1 where z > 0, else 0: a select, as PyTorch's, not a product
        return _zero_where_not_positive(a, grad, out)
    if code == LEAKY_RELU:  # f′ = 1 where z > 0, else α
        _leaky_slope(z, alpha, one_minus_alpha, out)
    elif code == SIGMOID:  # σ′ = σ(1 − σ)
        np.subtract(1, a, out=out)
        out *= a
    else:  # tanh′ = 1 − tanh²
        np.multiply(a, a, out=out)
        np.subtract(1, out, out=out)
    out *= grad
    return out


def bias_activation(code, alpha, one_minus_alpha, one, z, bias, out):
    """Z ← Z + b, then A = f(Z) into ``out``."""
    z += bias
    return activation_forward(code, alpha, one_minus_alpha, one, z, out)


# -- the loss: softmax and cross-entropy on class indices ----------------------------------
def cross_entropy_indices(z, target, grad, scale):
    """δ⁽ᴸ⁾ = (softmax(Z) − Y)·scale into ``grad``; returns Σ −log softmax(z)_target
    (unscaled, float64). Works on z − z_max, so the loss rounds at its own scale."""
    rows = np.arange(len(z))
    shifted = np.subtract(z, z.max(axis=1, keepdims=True), out=grad)
    picked = float(shifted[rows, target].sum(dtype=np.float64))
    exps = np.exp(shifted, out=shifted)
    sums = exps.sum(axis=1, keepdims=True, dtype=np.float64)  # float64: log s ≈ 0 stays exact
    value = float(np.log(sums).sum()) - picked
    exps /= sums  # softmax(Z)
    exps[rows, target] -= 1
    exps *= scale
    return value


# -- optimiser updates, in place over flat arrays ---------------------------------------------
def _coupled(data, grad, decay, out):
    """g + λ·W (L2 regularisation coupled into the gradient)."""
    if not decay:
        return grad
    np.multiply(data, decay, out=out)
    out += grad
    return out


def adam(
    data, grad, m, v, s1, s2, shrink, decay, weight, one_minus_weight, beta2, one_minus_beta2,
    eps_c, step_c,
):  # fmt: skip
    """PyTorch's Adam and AdamW. W ← W·shrink (AdamW's decoupled decay; 1 for Adam),
    g ← g + λ·W, m ← lerp(m, g, 1 − β₁), v ← β₂·v + (1 − β₂)·g²,
    W ← W − step_c·m/(√v + ε·c)."""
    if shrink != 1:
        data *= shrink
    g = _coupled(data, grad, decay, s2)
    _moments(m, v, g, s1, weight, one_minus_weight, beta2, one_minus_beta2)
    np.sqrt(v, out=s1)
    s1 += eps_c
    np.divide(m, s1, out=s1)
    s1 *= step_c
    data -= s1


def _lerp(m, g, weight, one_minus_weight, s1):
    """m ← lerp(m, g, w) as PyTorch's lerp writes β₁·m + (1 − β₁)·g: m + w·(g − m) for
    w < 0.5, else g − (1 − w)·(g − m), exact at either end (β₁·(m − g) + g lost g − β₁·g
    to cancellation in float32, 1.8 % off at β₁ = 0.999999; m + (g − m) need not be g)."""
    np.subtract(g, m, out=s1)
    if weight < 0.5:
        s1 *= weight
        m += s1
    else:
        s1 *= one_minus_weight
        np.subtract(g, s1, out=m)


def _moments(m, v, g, s1, weight, one_minus_weight, beta2, one_minus_beta2):
    """Adam's m ← lerp(m, g, 1 − β₁) and v ← β₂·v + ((1 − β₂)·g)·g (addcmul's order)."""
    _lerp(m, g, weight, one_minus_weight, s1)
    np.multiply(g, one_minus_beta2, out=s1)
    s1 *= g
    v *= beta2
    v += s1


def nadam(
    data, grad, m, v, s1, s2, shrink, decay, weight, one_minus_weight, beta2, one_minus_beta2,
    correction2, eps, c1, c2,
):  # fmt: skip
    """PyTorch's NAdam. W ← W·shrink (decoupled decay; 1 without), g ← g + λ·W, m and v
    as Adam's, d = √(v/(1 − β₂ᵗ)) + ε, W ← W + (c₁·g)/d + (c₂·m)/d (two addcdivs, in
    PyTorch's order)."""
    if shrink != 1:
        data *= shrink
    g = _coupled(data, grad, decay, s2)
    _moments(m, v, g, s1, weight, one_minus_weight, beta2, one_minus_beta2)
    np.divide(v, correction2, out=s1)
    np.sqrt(s1, out=s1)
    s1 += eps
    np.multiply(g, c1, out=s2)  # (g may be s2: the coupled gradient, read once more here)
    s2 /= s1
    data += s2
    np.multiply(m, c2, out=s2)
    s2 /= s1
    data += s2


def radam(
    data, grad, m, v, s1, s2, shrink, decay, weight, one_minus_weight, beta2, one_minus_beta2,
    correction1, lr, rectified, one, eps, root2, rect,
):  # fmt: skip
    """PyTorch's RAdam. W ← W·shrink, g ← g + λ·W, m and v as Adam's, u = η·m/(1 − β₁ᵗ);
    ``rectified`` (ρ_t > 5): u ← (u·((1/(√v + ε))·√(1 − β₂ᵗ)))·r_t; W ← W − u."""
    if shrink != 1:
        data *= shrink
    g = _coupled(data, grad, decay, s2)
    _moments(m, v, g, s1, weight, one_minus_weight, beta2, one_minus_beta2)
    np.divide(m, correction1, out=s2)  # g (perhaps s2) is read no more
    s2 *= lr
    if rectified:
        np.sqrt(v, out=s1)
        s1 += eps
        np.divide(one, s1, out=s1)  # PyTorch's scalar/tensor: a reciprocal, times √(1 − β₂ᵗ)
        s1 *= root2
        s2 *= s1
        s2 *= rect
    data -= s2


def adamax(data, grad, m, u, s1, s2, decay, weight, one_minus_weight, beta2, eps, minus_step):
    """PyTorch's Adamax. g ← g + λ·W, m ← lerp(m, g, 1 − β₁), u ← max(β₂·u, |g| + ε)
    (NaN kept, as torch.maximum), W ← W + (−η/(1 − β₁ᵗ)·m)/u (addcdiv's order)."""
    g = _coupled(data, grad, decay, s2)
    _lerp(m, g, weight, one_minus_weight, s1)
    u *= beta2
    np.abs(g, out=s1)
    s1 += eps
    np.maximum(u, s1, out=u)
    np.multiply(m, minus_step, out=s1)
    s1 /= u
    data += s1


def adadelta(data, grad, square, acc, s1, s2, decay, rho, keep, eps, minus_lr):
    """PyTorch's Adadelta. g ← g + λ·W, s ← ρ·s + ((1 − ρ)·g)·g,
    δ = (√(Δ + ε)/√(s + ε))·g, Δ ← ρ·Δ + ((1 − ρ)·δ)·δ, W ← W + (−η)·δ."""
    g = grad
    if decay:  # g + λ·W in an array of its own: s1 and s2 hold √(s + ε) and δ
        g = np.multiply(data, decay)
        g += grad
    square *= rho
    np.multiply(g, keep, out=s1)
    s1 *= g
    square += s1
    np.add(square, eps, out=s1)
    np.sqrt(s1, out=s1)
    np.add(acc, eps, out=s2)
    np.sqrt(s2, out=s2)
    s2 /= s1
    s2 *= g
    acc *= rho
    np.multiply(s2, keep, out=s1)
    s1 *= s2
    acc += s1
    np.multiply(s2, minus_lr, out=s1)
    data += s1


def sgd(data, grad, velocity, s1, s2, decay, lr, momentum, keep, nesterov, first):
    """PyTorch's SGD: g ← g + λ·W; with momentum v = g on the first update, then
    v ← μ·v + keep·g (keep = 1 − dampening); W ← W − η·(g + μ·v if Nesterov else v)."""
    g = _coupled(data, grad, decay, s2)
    update = g
    if momentum:
        if first:
            np.copyto(velocity, g)
        else:
            velocity *= momentum
            if keep != 1:
                np.multiply(g, keep, out=s1)
                velocity += s1
            else:
                velocity += g
        if nesterov:
            np.multiply(velocity, momentum, out=s1)
            s1 += g
            update = s1
        else:
            update = velocity
    np.multiply(update, lr, out=s1)
    data -= s1


def _coupled_sklearn(data, grad, decay, count, out):
    """g + (α·W)/B, the L2 term rounded as scikit-learn's (α·W)/B (B = 1: g + α·W)."""
    if not decay:
        return grad
    np.multiply(data, decay, out=out)
    if count != 1:
        out /= count
    out += grad
    return out


def sklearn_sgd(data, grad, velocity, s1, s2, decay, count, lr, momentum, nesterov):
    """scikit-learn's SGD: v ← μ·v − η·g; W ← W + (μ·v − η·g if Nesterov else v)."""
    g = _coupled_sklearn(data, grad, decay, count, s2)
    velocity *= momentum
    np.multiply(g, lr, out=s1)
    velocity -= s1
    if nesterov:
        np.multiply(velocity, momentum, out=s2)
        s2 -= s1
        data += s2
    else:
        data += velocity


def sklearn_adam(
    data, grad, m, v, s1, s2, shrink, decay, count, beta1, one_minus_beta1, beta2,
    one_minus_beta2, eps, minus_step,
):  # fmt: skip
    """scikit-learn's Adam: m ← β₁·m + (1 − β₁)·g, v ← β₂·v + (1 − β₂)·g²,
    W ← W + (−η_t·m)/(√v + ε); W·shrink first for solver "adamw"."""
    if shrink != 1:
        data *= shrink
    g = _coupled_sklearn(data, grad, decay, count, s2)
    m *= beta1
    np.multiply(g, one_minus_beta1, out=s1)
    m += s1
    np.multiply(g, g, out=s1)
    s1 *= one_minus_beta2
    v *= beta2
    v += s1
    np.sqrt(v, out=s1)
    s1 += eps
    np.multiply(m, minus_step, out=s2)
    s2 /= s1
    data += s2


# -- dropout masks by row: uniform draws from a counter-based hash ----------------------------
GOLDEN, MIX1, MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def row_uniform(rows, base, out):
    """out[i, j] = U(hash(base + (rows[i]·width + j)·φ)), SplitMix64's finaliser, in
    [0, 1): the top 24 bits (float32) or 53 bits (float64) of the hash."""
    width = out.shape[1]
    z = rows.astype(np.uint64)[:, None] * np.uint64(width)
    z = z + np.arange(width, dtype=np.uint64)
    z *= np.uint64(GOLDEN)
    z += np.uint64(base)  # uint64 arithmetic wraps, as the hash wants
    z ^= z >> np.uint64(30)
    z *= np.uint64(MIX1)
    z ^= z >> np.uint64(27)
    z *= np.uint64(MIX2)
    z ^= z >> np.uint64(31)
    if out.dtype == np.float32:
        np.multiply(z >> np.uint64(40), np.float32(2.0**-24), out=out, casting="unsafe")
    else:
        np.multiply(z >> np.uint64(11), 2.0**-53, out=out, casting="unsafe")
    return out
