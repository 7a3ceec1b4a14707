"""The element-wise kernels of a training step, each one pass over memory.

Between the matrix products a step runs element-wise work: the bias and the
activation after Z = W·X, δ = ∂L/∂A ⊙ f′(Z) before the next product, the loss's
δ⁽ᴸ⁾, and the optimiser's update of every parameter. As NumPy expressions each is
several passes (Adam's update is twelve); as compiled loops each is one.

One interface, two implementations that compute the same numbers:

- ``wxb.kernels.compiled``: numba loops (the ``fast`` extra), compiled on first use
  and cached on disk; the one used when numba is installed;
- ``wxb.kernels.reference``: NumPy, always present.

``WXB_KERNELS=numpy`` (or ``use("numpy")``) switches the compiled route off;
``WXB_KERNELS=compiled`` insists on it. Arrays the compiled loops do not take
(other dtypes, non-contiguous views) go through NumPy whatever the route.

SGD, Adam(W), NAdam, RAdam, Adamax and Adadelta update through a kernel here (their
``_rule`` is marked ``calls_kernel``). An optimiser with no update here (RMSprop,
Adagrad: their ``_rule`` is NumPy in wxb.optim) runs that rule on either route, in
cache-sized chunks: the two routes give it the same bits.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections.abc import Callable
from types import ModuleType

import numpy as np

from wxb.errors import ConfigError
from wxb.kernels import reference
from wxb.kernels.reference import IDENTITY, LEAKY_RELU, RELU, SIGMOID, TANH

__all__ = [
    "IDENTITY",
    "LEAKY_RELU",
    "RELU",
    "SIGMOID",
    "TANH",
    "activation_backward",
    "activation_forward",
    "adadelta",
    "adam",
    "adamax",
    "bias_activation",
    "cross_entropy_indices",
    "nadam",
    "one_pass",
    "radam",
    "route",
    "sgd",
    "sklearn_adam",
    "sklearn_sgd",
    "use",
]

ROUTES = ("auto", "compiled", "numpy")
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_lock = threading.Lock()


def _new_lock_in_child() -> None:  # a fork() while another thread loaded the kernels:
    global _lock  # held for ever in the child (which loads them again: _chosen is None)
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)
_compiled: ModuleType | None = None  # the compiled module, while that route is on
_chosen: str | None = None  # the route after _load(); None until the first kernel call
_why_numpy = ""


def use(setting: str) -> str:
    """Choose the route: "auto" (compiled when numba imports), "compiled" (an error
    when it cannot) or "numpy". Returns the route now in use."""
    global _chosen, _compiled
    if setting not in ROUTES:
        raise ConfigError(f"kernels must be one of {', '.join(ROUTES)}; got {setting!r}")
    with _lock:
        _chosen, _compiled = None, None
        _load(setting)
    return route()


def route() -> str:
    """The route in use: "compiled (numba X.Y)" or "numpy (why)"."""
    if _chosen is None:
        _load_once()
    if _compiled is not None:
        return f"compiled (numba {_compiled.numba.__version__})"
    return f"numpy ({_why_numpy})"


def _load_once() -> ModuleType | None:
    with _lock:
        if _chosen is None:
            _load(os.environ.get("WXB_KERNELS", "auto").strip().lower() or "auto")
    return _compiled


def _load(setting: str) -> None:
    global _chosen, _compiled, _why_numpy
    if setting not in ROUTES:
        raise ConfigError(f"WXB_KERNELS must be one of {', '.join(ROUTES)}; got {setting!r}")
    # _chosen is set last: other threads read _compiled without the lock once it is set
    # (set first, a thread calling a kernel during numba's import took the NumPy route)
    _chosen, _compiled = None, None
    if setting == "numpy":
        by_environment = os.environ.get("WXB_KERNELS", "").strip().lower() == "numpy"
        _why_numpy = "WXB_KERNELS=numpy" if by_environment else "switched off"
        _chosen = setting
        return
    try:
        from wxb.kernels import compiled
    except Exception as error:  # numba missing, or refusing this NumPy: NumPy serves
        if setting == "compiled":  # insisted on: every kernel call says so, none falls back
            raise ConfigError(f"the compiled kernels need numba ({error})") from error
        _why_numpy = f"numba unavailable: {error}"
        _chosen = setting
        return
    _compiled = compiled
    _chosen = setting


def one_pass() -> bool:
    """Whether contiguous float arrays go through the compiled loops (one pass each, so a
    caller need not cut them into cache-sized chunks as NumPy's several passes want)."""
    return (_compiled if _chosen is not None else _load_once()) is not None


def _impl(*arrays: np.ndarray) -> ModuleType:
    """The compiled module when it is on and takes these arrays, else the reference."""
    compiled = _compiled if _chosen is not None else _load_once()
    if compiled is None:
        return reference
    dtype = arrays[0].dtype
    if dtype not in _FLOATS:
        return reference
    for a in arrays:
        if a.dtype != dtype or not a.flags.c_contiguous:
            return reference
    return compiled


def loaded() -> ModuleType | None:
    """The compiled module while that route is on, else None: what a caller that
    prepared its calls (``prepared_*``) compares, to prepare them again after ``use``."""
    return _compiled if _chosen is not None else _load_once()


def compiled_takes(*arrays: np.ndarray) -> bool:
    """Whether a kernel call on these arrays runs the compiled loop (which needs no
    scratch), not the reference (another dtype, a mix of them, or numba off)."""
    return _impl(*arrays) is not reference


def _flat(*arrays: np.ndarray) -> list[np.ndarray]:
    return [a.reshape(-1) for a in arrays]


# -- activations: A = f(Z) and δ = ∂L/∂A ⊙ f′(Z) -------------------------------------------
_scalars: dict[tuple[np.dtype, float], tuple] = {}


def _activation_scalars(dtype: np.dtype, alpha: float) -> tuple:
    """α, 1 − α and 1 in the arrays' dtype (few distinct: kept)."""
    key = (dtype, alpha)
    found = _scalars.get(key)
    if found is None:
        if len(_scalars) > 256:
            _scalars.clear()
        kind = dtype.type
        found = _scalars[key] = (kind(alpha), kind(1 - alpha), kind(1))
    return found


def activation_forward(code: int, z: np.ndarray, out: np.ndarray, alpha: float = 0.0):
    """A = f(Z) into ``out`` (``alpha``: LeakyReLU's negative slope)."""
    impl = _impl(z, out)
    scalars = _activation_scalars(z.dtype, alpha)
    if impl is reference or z.shape != out.shape:  # (the loops check no bounds: NumPy raises)
        return reference.activation_forward(code, *scalars, z, out)
    impl.activation_forward(code, *scalars, *_flat(z, out))
    return out


def activation_backward(
    code: int, z: np.ndarray, a: np.ndarray, grad: np.ndarray, out: np.ndarray, alpha: float = 0.0
):
    """δ = ∂L/∂A ⊙ f′(Z) into ``out``, from Z, A = f(Z) and ∂L/∂A."""
    impl = _impl(z, a, grad, out)
    scalars = _activation_scalars(z.dtype, alpha)
    if impl is reference or not z.shape == a.shape == grad.shape == out.shape:
        return reference.activation_backward(code, *scalars, z, a, grad, out)
    impl.activation_backward(code, *scalars, *_flat(z, a, grad, out))
    return out


def bias_activation(
    code: int, z: np.ndarray, bias: np.ndarray, out: np.ndarray, alpha: float = 0.0
):
    """Z ← Z + b (b broadcast over the rows), then A = f(Z) into ``out``: one pass."""
    impl = _impl(z, bias, out)
    if z.ndim != 2 or bias.shape != z.shape[1:] or out.shape != z.shape:
        impl = reference
    impl.bias_activation(code, *_activation_scalars(z.dtype, alpha), z, bias, out)
    return out


# Calls prepared once for arrays that stay the same (a planned step's buffers): the
# checks and conversions above are made now, so each call is the loop alone; where the
# loop does not take the arrays, the call goes through the function above as usual.
def prepared_bias_activation(
    code: int, z: np.ndarray, bias: np.ndarray, out: np.ndarray, alpha: float = 0.0
) -> Callable[[], object]:
    """``bias_activation(code, z, bias, out, alpha)`` as a call of no arguments."""
    if z.ndim == 2 and bias.shape == z.shape[1:] and out.shape == z.shape:
        impl = _impl(z, bias, out)
        if impl is not reference:
            scalars = _activation_scalars(z.dtype, alpha)
            return functools.partial(impl.bias_activation, code, *scalars, z, bias, out)
    return functools.partial(bias_activation, code, z, bias, out, alpha)


def prepared_activation_backward(
    code: int, z: np.ndarray, a: np.ndarray, grad: np.ndarray, out: np.ndarray, alpha: float = 0.0
) -> Callable[[], object]:
    """``activation_backward(code, z, a, grad, out, alpha)`` as a call of no arguments."""
    if z.shape == a.shape == grad.shape == out.shape:
        impl = _impl(z, a, grad, out)
        if impl is not reference:
            scalars = _activation_scalars(z.dtype, alpha)
            flat = _flat(z, a, grad, out)
            return functools.partial(impl.activation_backward, code, *scalars, *flat)
    return functools.partial(activation_backward, code, z, a, grad, out, alpha)


# -- the loss ------------------------------------------------------------------------------
def cross_entropy_indices(
    z: np.ndarray, target: np.ndarray, grad: np.ndarray, scale: float
) -> float:
    """Softmax cross-entropy on class indices: δ⁽ᴸ⁾ = (softmax(Z) − Y)·scale into
    ``grad`` (Z's shape); returns Σ over rows of −log softmax(z)_target, unscaled."""
    impl = _impl(z, grad)
    if not target.dtype.isnative:  # big-endian indices: native ones, as the loop takes
        target = target.astype(target.dtype.newbyteorder("="))
    if impl is not reference and not (
        target.ndim == 1
        and target.dtype.kind in "iu"
        and target.flags.c_contiguous
        and grad.shape == z.shape == (len(target), z.shape[-1])  # the loop checks no bounds
    ):
        impl = reference
    return float(impl.cross_entropy_indices(z, target, grad, z.dtype.type(scale)))


# -- optimiser updates, in place over flat arrays ---------------------------------------------
_adam_last: tuple = (None, ())  # the last update's key and its scalars in the dtype
_adam_fixed: tuple = (None, ())  # the same for the scalars that do not depend on t


def _same_shape(name: str, *arrays: np.ndarray) -> None:
    """The update loops check no bounds: arrays of other sizes would be read and written
    past their ends (wxb's optimisers make them alike; a rule of one's own may not)."""
    shape = arrays[0].shape
    for a in arrays:
        if a.shape == shape:
            continue
        raise ValueError(
            f"kernels.{name}: the weights, gradient and state must have one shape; got "
            + ", ".join(str(a.shape) for a in arrays)
        )


def adam(data, grad, m, v, s1, s2, *, t, lr, beta1, beta2, eps, weight_decay, decoupled):
    """PyTorch's Adam (and AdamW, ``decoupled``) for update number ``t``. The bias
    corrections are folded: W ← W − η/(1 − β₁ᵗ)·c·m/(√v + ε·c) with c = √(1 − β₂ᵗ),
    which is η·m̂/(√v̂ + ε) with one pass fewer."""
    scalars = adam_scalars(data.dtype, t, lr, beta1, beta2, eps, weight_decay, decoupled)
    _same_shape("adam", data, grad, m, v)
    _impl(data, grad, m, v).adam(data, grad, m, v, s1, s2, *scalars)


def adam_scalars(dtype, t, lr, beta1, beta2, eps, weight_decay, decoupled) -> tuple:
    """The compiled ``adam`` loop's scalars after its arrays (a caller that checked the
    arrays once calls the loop with them: ``Optimizer._walk_stretch``)."""
    global _adam_last, _adam_fixed
    key = (dtype, t, lr, beta1, beta2, eps, weight_decay, decoupled)
    known, scalars = _adam_last
    if known != key:  # (the same for every run of an update's parameters: made once)
        kind = dtype.type
        fixed_key = key[:1] + key[2:]
        known_fixed, fixed = _adam_fixed
        if known_fixed != fixed_key:  # what does not change with t: made once a run
            shrink = 1 - lr * weight_decay if decoupled else 1.0
            decay = 0.0 if decoupled else weight_decay
            weight = kind(1 - beta1)  # m ← lerp(m, g, weight); 1 − weight in the dtype (PyTorch's)
            fixed = (
                kind(shrink), kind(decay), weight, kind(1) - weight, kind(beta2), kind(1 - beta2),
            )  # fmt: skip
            _adam_fixed = (fixed_key, fixed)
        c = math.sqrt(1 - beta2**t)
        scalars = (*fixed, kind(eps * c), kind(lr / (1 - beta1**t) * c))
        _adam_last = (key, scalars)
    return scalars


def nadam(
    data, grad, m, v, s1, s2, *, t, mu, mu_next, product, lr, beta1, beta2, eps, weight_decay,
    decoupled,
):  # fmt: skip
    """PyTorch's NAdam for update number ``t``: ``mu`` and ``mu_next`` are μ_t and μ_{t+1},
    ``product`` Π_t (μ_t's included); c₁ = −η·(1 − μ_t)/(1 − Π_t) and
    c₂ = −η·μ_{t+1}/(1 − Π_t·μ_{t+1}) are PyTorch's addcdiv values."""
    kind = data.dtype.type
    weight = kind(1 - beta1)
    scalars = (
        kind(1 - lr * weight_decay if decoupled else 1.0),
        kind(0.0 if decoupled else weight_decay),
        weight, kind(1) - weight, kind(beta2), kind(1 - beta2), kind(1 - beta2**t), kind(eps),
        kind(-lr * (1.0 - mu) / (1.0 - product)),
        kind((-lr * mu_next) / (1.0 - product * mu_next)),
    )  # fmt: skip
    _same_shape("nadam", data, grad, m, v)
    _impl(data, grad, m, v).nadam(data, grad, m, v, s1, s2, *scalars)


def radam(data, grad, m, v, s1, s2, *, t, lr, beta1, beta2, eps, weight_decay, decoupled):
    """PyTorch's RAdam for update number ``t``: rectified where
    ρ_t = ρ_∞ − 2t·β₂ᵗ/(1 − β₂ᵗ) > 5 (ρ_∞ = 2/(1 − β₂) − 1), by
    r_t = √((ρ_t − 4)(ρ_t − 2)ρ_∞/((ρ_∞ − 4)(ρ_∞ − 2)ρ_t)); else the step is η·m̂."""
    kind = data.dtype.type
    correction2 = 1 - beta2**t
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * (beta2**t) / correction2
    rectified = rho_t > 5.0
    rect = 1.0
    if rectified:
        rect = (
            (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
        ) ** 0.5
    weight = kind(1 - beta1)
    scalars = (
        kind(1 - lr * weight_decay if decoupled else 1.0),
        kind(0.0 if decoupled else weight_decay),
        weight, kind(1) - weight, kind(beta2), kind(1 - beta2), kind(1 - beta1**t), kind(lr),
        bool(rectified), kind(1), kind(eps), kind(correction2**0.5), kind(rect),
    )  # fmt: skip
    _same_shape("radam", data, grad, m, v)
    _impl(data, grad, m, v).radam(data, grad, m, v, s1, s2, *scalars)


def adamax(data, grad, m, u, s1, s2, *, t, lr, beta1, beta2, eps, weight_decay):
    """PyTorch's Adamax for update number ``t`` (u the infinity norm, ε inside its max)."""
    kind = data.dtype.type
    weight = kind(1 - beta1)
    scalars = (
        kind(weight_decay), weight, kind(1) - weight, kind(beta2), kind(eps),
        kind(-(lr / (1 - beta1**t))),
    )  # fmt: skip
    _same_shape("adamax", data, grad, m, u)
    _impl(data, grad, m, u).adamax(data, grad, m, u, s1, s2, *scalars)


def adadelta(data, grad, square, acc, s1, s2, *, lr, rho, eps, weight_decay):
    """PyTorch's Adadelta (s: the squared gradients' average, Δ: the squared updates')."""
    kind = data.dtype.type
    scalars = (kind(weight_decay), kind(rho), kind(1 - rho), kind(eps), kind(-lr))
    _same_shape("adadelta", data, grad, square, acc)
    _impl(data, grad, square, acc).adadelta(data, grad, square, acc, s1, s2, *scalars)


_sgd_last: tuple = (None, ())  # as _adam_last


def sgd(data, grad, velocity, s1, s2, *, lr, momentum, dampening, nesterov, weight_decay, first):
    """PyTorch's SGD; ``first``: the velocity's first update (v = g)."""
    scalars = sgd_scalars(data.dtype, lr, momentum, dampening, nesterov, weight_decay, first)
    if velocity is None:
        _same_shape("sgd", data, grad)
        _impl(data, grad).sgd(data, grad, s1, s1, s2, *scalars)  # s1: momentum 0 reads no velocity
        return
    _same_shape("sgd", data, grad, velocity)
    _impl(data, grad, velocity).sgd(data, grad, velocity, s1, s2, *scalars)


def sgd_scalars(dtype, lr, momentum, dampening, nesterov, weight_decay, first) -> tuple:
    """The compiled ``sgd`` loop's scalars after its arrays (as ``adam_scalars``)."""
    global _sgd_last
    key = (dtype, lr, momentum, dampening, nesterov, weight_decay, first)
    known, scalars = _sgd_last
    if known != key:
        kind = dtype.type
        scalars = (
            kind(weight_decay), kind(lr), kind(momentum), kind(1 - dampening),
            bool(nesterov), bool(first),
        )  # fmt: skip
        _sgd_last = (key, scalars)
    return scalars


def sklearn_sgd(data, grad, velocity, s1, s2, *, lr, momentum, nesterov, l2, l2_count=1.0):
    """scikit-learn's SGD: v ← μ·v − η·(g + (l2·W)/l2_count); W ← W + v (or its Nesterov
    form). The L2 term rounds as scikit-learn's (α·W)/B: a ReLU unit dead on every row
    has that term alone for its gradient, and Adam's m/√v blows a rounding apart up."""
    kind = data.dtype.type
    _same_shape("sklearn_sgd", data, grad, velocity)
    _impl(data, grad, velocity).sklearn_sgd(
        data, grad, velocity, s1, s2, kind(l2), kind(l2_count), kind(lr), kind(momentum),
        bool(nesterov),
    )  # fmt: skip


def sklearn_adam(
    data, grad, m, v, s1, s2, *, t, lr, beta1, beta2, eps, l2, weight_decay, l2_count=1.0
):  # fmt: skip
    """scikit-learn's Adam, its bias corrections folded into the step η_t, on the gradient
    g + (l2·W)/l2_count (as ``sklearn_sgd``); with ``weight_decay`` λ the weights first
    shrink by W ← W·(1 − η·λ) (solver "adamw")."""
    kind = data.dtype.type
    # np.sqrt, not math.sqrt: NumPy float32 betas keep the step in float32, as
    # scikit-learn's (for floats the two are the same correctly rounded root)
    step = lr * np.sqrt(1 - beta2**t) / (1 - beta1**t)
    _same_shape("sklearn_adam", data, grad, m, v)
    _impl(data, grad, m, v).sklearn_adam(
        data, grad, m, v, s1, s2,
        kind(1 - lr * weight_decay), kind(l2), kind(l2_count), kind(beta1), kind(1 - beta1),
        kind(beta2),
        kind(1 - beta2), kind(eps), kind(-step),
    )  # fmt: skip


# -- dropout masks by row ---------------------------------------------------------------------
def row_uniform(rows: np.ndarray, base: int, out: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) draws into ``out`` (rows × units), each a hash of ``base`` and
    (row, unit): what ``wxb.random.RowMasks`` hands out, the same on any process."""
    impl = _impl(out)
    if impl is not reference and (
        out.ndim != 2
        or rows.dtype.kind not in "iu"
        or not rows.dtype.isnative
        or rows.shape != out.shape[:1]  # the loop checks no bounds
    ):
        impl = reference
    if impl is reference:
        return reference.row_uniform(rows, base, out)
    impl.row_uniform(rows, np.uint64(base), out, out.dtype == np.float32)
    return out
