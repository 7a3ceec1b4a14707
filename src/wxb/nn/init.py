"""PyTorch's ``torch.nn.init``: a tensor's values drawn or set again, in place.

Each function writes into the tensor it is given (a ``Parameter`` stays the same
object, holding the same array, so an optimiser built on it and the planned step
follow) and returns it, as PyTorch's do; no graph is recorded. A parameter's float
array (``m.weight.data``, as older PyTorch scripts hand it) is written where it lies
and returned. Fans follow PyTorch's
(out, in) layout, which is Dense's W: fan_in = shape[1], fan_out = shape[0] (times the
size of any further dimensions). Draws come from ``generator`` (a seed or a NumPy
generator), else from wxb's default generator, which ``wxb.manual_seed`` sets; they
are drawn in float64 and rounded to the tensor's dtype. The numbers are not
PyTorch's (another generator); the distributions are.
"""

from __future__ import annotations

import math

import numpy as np

from wxb.errors import ConfigError
from wxb.random import as_generator
from wxb.tensor import Tensor, no_grad

__all__ = [
    "calculate_gain",
    "constant_",
    "eye_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

Seed = int | np.random.Generator | None

_GAINS = {
    "linear": 1.0,
    "identity": 1.0,  # wxb's name for its Identity activation (PyTorch's: linear)
    "sigmoid": 1.0,
    **{f"conv{kind}{d}d": 1.0 for kind in ("", "_transpose") for d in (1, 2, 3)},
    "tanh": 5.0 / 3,
    "relu": math.sqrt(2.0),
    "selu": 3.0 / 4,
}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor by which an activation shrinks the spread of its inputs, to scale an
    initialisation by (PyTorch's values; leaky_relu's from its slope, 0.01 by default)."""
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ConfigError(f"calculate_gain: negative_slope {slope!r} is not a number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity not in _GAINS:
        raise ConfigError(
            f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; one of "
            f"{', '.join(sorted([*_GAINS, 'leaky_relu']))}"
        )
    return _GAINS[nonlinearity]


class _GivenArray(Tensor):
    """A float array given in a tensor's place (``m.weight.data``, which PyTorch's init
    functions take as they take ``m.weight``): written where it lies, and given back."""


def _tensor(tensor: object, where: str) -> Tensor:
    if (
        isinstance(tensor, np.ndarray)
        and tensor.dtype in (np.float32, np.float64)
        and tensor.dtype.isnative
        and tensor.flags.writeable
    ):
        return _GivenArray.of_array(tensor)
    if not isinstance(tensor, Tensor):
        raise ConfigError(
            f"{where} writes into a wxb Tensor or Parameter (layer.weight), or its float "
            f"array (layer.weight.data); got {type(tensor).__name__}"
            + (f" of {tensor.dtype}" if isinstance(tensor, np.ndarray) else "")
        )
    return tensor


def _fill(tensor: Tensor, values: np.ndarray | float) -> Tensor:
    values = np.asarray(values, dtype=np.float64).astype(tensor.dtype)  # drawn in float64
    with no_grad():  # in place, as PyTorch's: graphs recorded before refuse backward
        tensor[...] = values
    return tensor.data if isinstance(tensor, _GivenArray) else tensor


def _fans(tensor: Tensor, where: str) -> tuple[int, int]:
    shape = tensor.shape
    if len(shape) < 2:
        raise ConfigError(
            f"{where}: fan in and fan out cannot be computed for a tensor of fewer than 2 "
            f"dimensions (shape {shape})"
        )
    field = math.prod(shape[2:])
    return shape[1] * field, shape[0] * field


def _fan(tensor: Tensor, mode: str, where: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ConfigError(f"{where}: mode must be 'fan_in' or 'fan_out'; got {mode!r}")
    fan_in, fan_out = _fans(tensor, where)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Seed = None) -> Tensor:
    """Values drawn uniformly from [a, b)."""
    tensor = _tensor(tensor, "uniform_")
    return _fill(tensor, as_generator(generator).uniform(a, b, size=tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Seed = None) -> Tensor:
    """Values drawn from N(mean, std²)."""
    tensor = _tensor(tensor, "normal_")
    return _fill(tensor, as_generator(generator).normal(mean, std, size=tensor.shape))


def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: Seed = None,
) -> Tensor:
    """N(mean, std²) restricted to [a, b] (a and b in the values' units, as PyTorch's):
    draws outside are drawn again."""
    tensor = _tensor(tensor, "trunc_normal_")
    if not a < b:
        raise ConfigError(f"trunc_normal_: a must be below b; got a={a}, b={b}")
    rng = as_generator(generator)
    values = rng.normal(mean, std, size=tensor.shape)
    outside = (values < a) | (values > b)
    for _ in range(1000):  # each round keeps the share inside; far tails: clip the rest
        if not outside.any():
            break
        values[outside] = rng.normal(mean, std, size=int(outside.sum()))
        outside = (values < a) | (values > b)
    return _fill(tensor, np.clip(values, a, b))


def constant_(tensor: Tensor, val: float) -> Tensor:
    return _fill(_tensor(tensor, "constant_"), val)


def ones_(tensor: Tensor) -> Tensor:
    return _fill(_tensor(tensor, "ones_"), 1.0)


def zeros_(tensor: Tensor) -> Tensor:
    return _fill(_tensor(tensor, "zeros_"), 0.0)


def eye_(tensor: Tensor) -> Tensor:
    """The identity matrix (of a 2-D tensor; a non-square one gets ones on its diagonal)."""
    tensor = _tensor(tensor, "eye_")
    if tensor.ndim != 2:
        raise ConfigError(f"eye_ takes a 2-D tensor; got shape {tensor.shape}")
    return _fill(tensor, np.eye(*tensor.shape))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: Seed = None) -> Tensor:
    """Glorot: U(−a, a), a = gain·√(6/(fan_in + fan_out))."""
    tensor = _tensor(tensor, "xavier_uniform_")
    fan_in, fan_out = _fans(tensor, "xavier_uniform_")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(tensor, as_generator(generator).uniform(-bound, bound, size=tensor.shape))


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Seed = None) -> Tensor:
    """Glorot: N(0, σ²), σ = gain·√(2/(fan_in + fan_out))."""
    tensor = _tensor(tensor, "xavier_normal_")
    fan_in, fan_out = _fans(tensor, "xavier_normal_")
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill(tensor, as_generator(generator).normal(0.0, std, size=tensor.shape))


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Seed = None,
) -> Tensor:
    """He: U(−b, b), b = √3·gain/√fan (gain from the nonlinearity; ``a`` the leaky
    slope, 0 for ReLU's √2)."""
    tensor = _tensor(tensor, "kaiming_uniform_")
    fan = _fan(tensor, mode, "kaiming_uniform_")
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return _fill(tensor, as_generator(generator).uniform(-bound, bound, size=tensor.shape))


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Seed = None,
) -> Tensor:
    """He: N(0, σ²), σ = gain/√fan."""
    tensor = _tensor(tensor, "kaiming_normal_")
    fan = _fan(tensor, mode, "kaiming_normal_")
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return _fill(tensor, as_generator(generator).normal(0.0, std, size=tensor.shape))


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator: Seed = None) -> Tensor:
    """A (semi-)orthogonal matrix times gain: orthonormal rows, or columns when there
    are fewer of them (the Q of a Gaussian matrix's QR, signs fixed so it is uniform)."""
    tensor = _tensor(tensor, "orthogonal_")
    if tensor.ndim < 2:
        raise ConfigError(f"orthogonal_ takes a tensor of 2 or more dimensions; got {tensor.shape}")
    rows, columns = tensor.shape[0], math.prod(tensor.shape[1:])
    flat = as_generator(generator).normal(size=(rows, columns))
    if rows < columns:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < columns:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor.shape))
