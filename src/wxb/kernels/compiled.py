"""The compiled implementation of wxb.kernels: numba loops, one pass over memory each.

Every loop computes, element by element, the operations of its NumPy twin in
wxb.kernels.reference, in the same order and the same dtype (the scalars arrive in
the arrays' dtype), so the two agree to rounding: exactly, except where a
transcendental function (exp, tanh) comes from a different library.

Importing this module imports numba (a few tenths of a second); the loops are
compiled on their first call, per dtype, and cached on disk where that is possible.
"""

from __future__ import annotations

import math

import numba

from wxb.kernels.reference import GOLDEN, IDENTITY, LEAKY_RELU, MIX1, MIX2, RELU, SIGMOID

_OPTIONS = {"nogil": True, "error_model": "numpy", "boundscheck": False}


def _jit(function):
    """numba's dispatcher for ``function`` (compiled at its first call with each dtype),
    cached on disk when a cache folder is writable: numba refuses ``cache=True`` at this
    point when none is (a read-only install), and the loops then compile per process."""
    try:
        return numba.njit(cache=True, **_OPTIONS)(function)
    except RuntimeError:
        return numba.njit(cache=False, **_OPTIONS)(function)


# -- activations ----------------------------------------------------------------------------
@numba.njit(inline="always", **_OPTIONS)
def _f(code, alpha, one_minus_alpha, one, x):
    # ``one`` is 1 in x's dtype: an integer literal would make numba compute in float64.
    if code == IDENTITY:
        return x
    if code == RELU:  # NumPy's maximum keeps NaN: only x < 0 becomes 0
        return one - one if x < 0 else x
    if code == LEAKY_RELU:
        return (one if x > 0 else alpha) * x
    if code == SIGMOID:
        return one / (math.exp(-x) + one)
    return math.tanh(x)


@numba.njit(inline="always", **_OPTIONS)
def _f_prime_times(code, alpha, one_minus_alpha, one, z, a, g):
    if code == IDENTITY:
        return g
    if code == RELU:  # a select, as PyTorch's: 0 where a ≤ 0 (even for g = inf), else g
        return one - one if a <= 0 else g
    if code == LEAKY_RELU:
        return (one if z > 0 else alpha) * g
    if code == SIGMOID:
        return ((one - a) * a) * g
    return (one - a * a) * g


def _activation_forward(code, alpha, one_minus_alpha, one, z, out):
    for i in range(z.size):
        out[i] = _f(code, alpha, one_minus_alpha, one, z[i])


def _activation_backward(code, alpha, one_minus_alpha, one, z, a, grad, out):
    for i in range(grad.size):
        out[i] = _f_prime_times(code, alpha, one_minus_alpha, one, z[i], a[i], grad[i])


def _bias_activation(code, alpha, one_minus_alpha, one, z, bias, out):
    rows, cols = z.shape
    for r in range(rows):
        for j in range(cols):
            x = z[r, j] + bias[j]
            z[r, j] = x
            out[r, j] = _f(code, alpha, one_minus_alpha, one, x)


# -- the loss ----------------------------------------------------------------------------------
def _cross_entropy_indices(z, target, grad, scale):
    total = 0.0
    rows, cols = z.shape
    for r in range(rows):
        top = z[r, 0]
        for j in range(1, cols):
            x = z[r, j]
            if x > top or x != x:  # NaN wins, as in NumPy's max
                top = x
        s = 0.0  # float64, as NumPy's sum(dtype=float64)
        for j in range(cols):
            e = math.exp(z[r, j] - top)
            grad[r, j] = e
            s += e
        c = target[r]
        if c < 0 or c >= cols:  # checked by the callers; here no index goes out of bounds
            raise IndexError("cross_entropy_indices: a class index is out of range")
        total += math.log(s) - (z[r, c] - top)
        for j in range(cols):
            grad[r, j] = grad[r, j] / s
        grad[r, c] -= 1
        for j in range(cols):
            grad[r, j] *= scale
    return total


# -- optimisers ------------------------------------------------------------------------------
def _adam(
    data, grad, m, v, s1, s2, shrink, decay, weight, one_minus_weight, beta2, one_minus_beta2,
    eps_c, step_c,
):  # fmt: skip
    # PyTorch's lerp, exact at either end: m + w·(g − m) for w < 0.5, else g − (1 − w)·(g − m)
    # (written as one sum with a select, which the loop still vectorises)
    low = weight < 0.5
    c = weight if low else -one_minus_weight
    for i in range(data.size):
        w = data[i] * shrink if shrink != 1 else data[i]
        g = w * decay + grad[i] if decay != 0 else grad[i]
        mi = (m[i] if low else g) + (g - m[i]) * c
        vi = v[i] * beta2 + (g * one_minus_beta2) * g
        m[i] = mi
        v[i] = vi
        data[i] = w - mi / (math.sqrt(vi) + eps_c) * step_c


def _nadam(
    data, grad, m, v, s1, s2, shrink, decay, weight, one_minus_weight, beta2, one_minus_beta2,
    correction2, eps, c1, c2,
):  # fmt: skip
    low = weight < 0.5
    c = weight if low else -one_minus_weight
    for i in range(data.size):
        w = data[i] * shrink if shrink != 1 else data[i]
        g = w * decay + grad[i] if decay != 0 else grad[i]
        mi = (m[i] if low else g) + (g - m[i]) * c
        vi = v[i] * beta2 + (g * one_minus_beta2) * g
        m[i] = mi
        v[i] = vi
        d = math.sqrt(vi / correction2) + eps
        data[i] = (w + (g * c1) / d) + (mi * c2) / d


def _radam(
    data, grad, m, v, s1, s2, shrink, decay, weight, one_minus_weight, beta2, one_minus_beta2,
    correction1, lr, rectified, one, eps, root2, rect,
):  # fmt: skip
    low = weight < 0.5
    c = weight if low else -one_minus_weight
    for i in range(data.size):
        w = data[i] * shrink if shrink != 1 else data[i]
        g = w * decay + grad[i] if decay != 0 else grad[i]
        mi = (m[i] if low else g) + (g - m[i]) * c
        vi = v[i] * beta2 + (g * one_minus_beta2) * g
        m[i] = mi
        v[i] = vi
        u = (mi / correction1) * lr
        if rectified:
            u = (u * ((one / (math.sqrt(vi) + eps)) * root2)) * rect
        data[i] = w - u


def _adamax(data, grad, m, u, s1, s2, decay, weight, one_minus_weight, beta2, eps, minus_step):
    low = weight < 0.5
    c = weight if low else -one_minus_weight
    for i in range(data.size):
        g = data[i] * decay + grad[i] if decay != 0 else grad[i]
        mi = (m[i] if low else g) + (g - m[i]) * c
        ui = u[i] * beta2
        a = abs(g) + eps
        ui = ui if ui >= a or ui != ui else a  # NumPy's maximum: a NaN on either side wins
        m[i] = mi
        u[i] = ui
        data[i] = data[i] + (mi * minus_step) / ui


def _adadelta(data, grad, square, acc, s1, s2, decay, rho, keep, eps, minus_lr):
    for i in range(data.size):
        w = data[i]
        g = w * decay + grad[i] if decay != 0 else grad[i]
        si = square[i] * rho + (g * keep) * g
        square[i] = si
        delta = (math.sqrt(acc[i] + eps) / math.sqrt(si + eps)) * g
        acc[i] = acc[i] * rho + (delta * keep) * delta
        data[i] = w + delta * minus_lr


def _sgd(data, grad, velocity, s1, s2, decay, lr, momentum, keep, nesterov, first):
    for i in range(data.size):
        w = data[i]
        g = w * decay + grad[i] if decay != 0 else grad[i]
        update = g
        if momentum != 0:
            if first:
                vi = g
            elif keep != 1:
                vi = velocity[i] * momentum + g * keep
            else:
                vi = velocity[i] * momentum + g
            velocity[i] = vi
            update = vi * momentum + g if nesterov else vi
        data[i] = w - update * lr


def _sklearn_sgd(data, grad, velocity, s1, s2, decay, count, lr, momentum, nesterov):
    for i in range(data.size):
        w = data[i]
        g = (w * decay) / count + grad[i] if decay != 0 else grad[i]
        step = g * lr
        vi = velocity[i] * momentum - step
        velocity[i] = vi
        data[i] = w + (vi * momentum - step) if nesterov else w + vi


def _sklearn_adam(
    data, grad, m, v, s1, s2, shrink, decay, count, beta1, one_minus_beta1, beta2,
    one_minus_beta2, eps, minus_step,
):  # fmt: skip
    for i in range(data.size):
        w = data[i] * shrink if shrink != 1 else data[i]
        g = (w * decay) / count + grad[i] if decay != 0 else grad[i]
        mi = m[i] * beta1 + g * one_minus_beta1
        vi = v[i] * beta2 + (g * g) * one_minus_beta2
        m[i] = mi
        v[i] = vi
        data[i] = w + (mi * minus_step) / (math.sqrt(vi) + eps)


def _row_uniform(rows, base, out, single):
    width = out.shape[1]
    golden, mix1, mix2 = numba.uint64(GOLDEN), numba.uint64(MIX1), numba.uint64(MIX2)
    s30, s27, s31 = numba.uint64(30), numba.uint64(27), numba.uint64(31)
    top = numba.uint64(40) if single else numba.uint64(11)
    unit = 2.0**-24 if single else 2.0**-53
    for i in range(out.shape[0]):
        start = numba.uint64(rows[i]) * numba.uint64(width)
        for j in range(width):
            z = (start + numba.uint64(j)) * golden + base
            z = (z ^ (z >> s30)) * mix1
            z = (z ^ (z >> s27)) * mix2
            z = z ^ (z >> s31)
            out[i, j] = (z >> top) * unit


activation_forward = _jit(_activation_forward)
activation_backward = _jit(_activation_backward)
bias_activation = _jit(_bias_activation)
cross_entropy_indices = _jit(_cross_entropy_indices)
adam = _jit(_adam)
nadam = _jit(_nadam)
radam = _jit(_radam)
adamax = _jit(_adamax)
adadelta = _jit(_adadelta)
sgd = _jit(_sgd)
sklearn_sgd = _jit(_sklearn_sgd)
sklearn_adam = _jit(_sklearn_adam)
row_uniform = _jit(_row_uniform)
