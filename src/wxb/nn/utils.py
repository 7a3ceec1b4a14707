"""PyTorch's ``torch.nn.utils``: gradient clipping and a model's parameters as one
vector (``parameters_to_vector``, ``vector_to_parameters``). They work on parameters
alone, so they sit here, beneath ``wxb.optim`` (which re-exports the clipping: every
``wxb.optim.clip_grad_norm_`` stays), and a port's ``from torch.nn.utils import
clip_grad_norm_`` reads ``from wxb.nn.utils import clip_grad_norm_``."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from wxb import ops
from wxb.errors import ConfigError, ShapeError, TrainingError
from wxb.nn.module import Module, Parameter
from wxb.tensor import Tensor, foreign_array

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector", "vector_to_parameters"]


def _number(value: object, what: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.floating, np.integer)
    ):
        raise ConfigError(f"{what} must be a number; got {value!r}")
    return float(value)


def _check_grad_shape(p: Parameter, index: int) -> None:
    """A gradient set by hand must be the parameter's shape: NumPy would spread a (3,)
    gradient over every row of a (2, 3) weight (PyTorch refuses the assignment)."""
    shape = getattr(p.grad, "shape", None)  # np.shape() costs ~0.5 µs a call
    if shape != p.data.shape:
        shape = np.shape(p.grad)  # a Python float set by hand
    if shape != p.data.shape:
        raise ConfigError(
            f"parameter {index} ({p.name or 'unnamed'}, shape {p.data.shape}) has a gradient "
            f"of shape {shape}"
        )


def _given(parameters: object, params: object, where: str) -> object:
    """The parameters, by PyTorch's keyword ``parameters=`` or wxb's earlier ``params=``."""
    if (parameters is None) == (params is None):
        raise ConfigError(f"{where}: give the parameters once (parameters=model.parameters())")
    return parameters if params is None else params


def clip_grad_norm_(
    parameters: Parameter | Iterable[Parameter] | None = None,
    max_norm: float | None = None,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
    *,
    params: Parameter | Iterable[Parameter] | None = None,
) -> np.float64:
    """Scale all gradients in place so their joint norm is at most max_norm.

    Takes one Parameter or an iterable of them; those without a gradient are skipped.
    The norm is the p-norm of all the gradients' entries together (``norm_type``, 2 by
    default; ``inf`` or ``"inf"``: the largest magnitude). Returns the norm before
    clipping, as ``torch.nn.utils.clip_grad_norm_`` does, as a NumPy float (a float that
    also has torch's ``.item()``); ``error_if_nonfinite`` refuses a NaN or infinite one.
    ``foreach`` (an implementation choice of torch's) is taken and changes nothing.
    """
    params = _given(parameters, params, "clip_grad_norm_")
    max_norm = _number(max_norm, "clip_grad_norm_ max_norm")
    if not max_norm >= 0:
        raise ConfigError(f"clip_grad_norm_ max_norm must be ≥ 0; got {max_norm}")
    if norm_type in ("inf", "Inf"):
        norm_type = math.inf
    norm_type = _number(norm_type, "clip_grad_norm_ norm_type")
    if not norm_type > 0:
        raise ConfigError(f"clip_grad_norm_ norm_type must be > 0 (or inf); got {norm_type}")
    if foreach not in (None, True, False):
        raise ConfigError(f"clip_grad_norm_ foreach must be True, False or None; got {foreach!r}")
    if isinstance(params, Tensor):
        params = [params]
    params = list(params)
    for index, p in enumerate(params):  # numbered as the caller listed them
        if p.grad is not None:
            try:
                _check_grad_shape(p, index)
            except ConfigError as exc:
                raise ConfigError(f"clip_grad_norm_: {exc}") from None
    params = [p for p in params if p.grad is not None]
    if norm_type == 2:
        total = math.sqrt(sum(float(np.vdot(p.grad, p.grad)) for p in params))
    elif norm_type == math.inf:
        total = max((float(np.max(np.abs(p.grad), initial=0)) for p in params), default=0.0)
    else:
        with np.errstate(over="ignore"):
            powers = sum(float(np.sum(np.abs(np.asarray(p.grad, np.float64)) ** norm_type))
                         for p in params)  # fmt: skip
        total = powers ** (1 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise TrainingError(
            f"clip_grad_norm_: the gradients' norm is {total}; error_if_nonfinite=True "
            "refuses to scale by it"
        )
    factor = max_norm / (total + 1e-6)
    if not factor >= 1:  # (a NaN norm makes every gradient NaN, as PyTorch's does)
        for p in params:
            if isinstance(p.grad, np.ndarray) and p.grad.dtype.kind == "f":
                p.grad *= factor  # in place, as PyTorch: the planned path's views stay put
            else:  # a NumPy scalar, list or whole numbers a user assigned by hand
                p.grad = np.asarray(p.grad, dtype=p.dtype) * p.dtype.type(factor)
    return np.float64(total)


def clip_grad_value_(
    parameters: Parameter | Iterable[Parameter] | None = None,
    clip_value: float | None = None,
    foreach: bool | None = None,
    *,
    params: Parameter | Iterable[Parameter] | None = None,
) -> None:
    """Clamp every gradient entry to [−clip_value, clip_value] in place, as
    ``torch.nn.utils.clip_grad_value_``; those without a gradient are skipped.
    ``foreach`` (an implementation choice of torch's) is taken and changes nothing."""
    params = _given(parameters, params, "clip_grad_value_")
    clip_value = _number(clip_value, "clip_grad_value_ clip_value")
    if not clip_value >= 0:
        raise ConfigError(f"clip_grad_value_ clip_value must be ≥ 0; got {clip_value}")
    if foreach not in (None, True, False):
        raise ConfigError(f"clip_grad_value_ foreach must be True, False or None; got {foreach!r}")
    params = [params] if isinstance(params, Tensor) else list(params)
    for index, p in enumerate(params):
        if p.grad is None:
            continue
        try:
            _check_grad_shape(p, index)
        except ConfigError as exc:
            raise ConfigError(f"clip_grad_value_: {exc}") from None
        if isinstance(p.grad, np.ndarray) and p.grad.dtype.kind == "f":
            np.clip(p.grad, -clip_value, clip_value, out=p.grad)  # in place, as PyTorch's
        else:  # a NumPy scalar, list or whole numbers a user assigned by hand
            p.grad = np.clip(np.asarray(p.grad, dtype=p.dtype), -clip_value, clip_value)


def _parameters(parameters: object, where: str) -> list:
    """PyTorch's ``parameters`` argument: one tensor, or an iterable of them (a model's
    ``parameters()``, tied ones once, as it yields them)."""
    if isinstance(parameters, Tensor):
        return [parameters]
    if isinstance(parameters, Module):
        raise ConfigError(f"{where} takes model.parameters(), not the model itself")
    try:
        items = list(parameters)
    except TypeError:
        kind = type(parameters).__name__
        raise ConfigError(f"{where} takes an iterable of parameters; got a {kind}") from None
    for index, p in enumerate(items):
        if not isinstance(p, Tensor):
            kind = type(p).__name__
            raise ConfigError(f"{where}: item {index} is a {kind}, not a parameter")
    return items


def parameters_to_vector(parameters: Iterable[Parameter]) -> Tensor:
    """The parameters' entries as one vector, each flattened in row-major order, in the
    order given (``torch.nn.utils.parameters_to_vector``). Recorded in the graph as
    reshapes and a concatenation, so ∂L/∂p is p's own slice of ∂L/∂vector, reshaped."""
    items = _parameters(parameters, "parameters_to_vector")
    if not items:
        raise ShapeError("parameters_to_vector: got no parameters")
    return ops.concatenate([ops.reshape(p, -1) for p in items])


def vector_to_parameters(vec: Tensor | np.ndarray, parameters: Iterable[Parameter]) -> None:
    """Write consecutive slices of ``vec`` into the parameters, in the order given, each
    reshaped to its parameter (``torch.nn.utils.vector_to_parameters``'s order). Written
    into each parameter's own array, in its dtype and without a graph, so an optimiser
    built on it keeps stepping the new values (PyTorch sets ``param.data`` to a view of
    ``vec``: the same values). A vector of another length than the parameters' entries
    together is refused (PyTorch's ignores what is left over)."""
    if isinstance(vec, Tensor):
        vec = vec.data
    elif not isinstance(vec, np.ndarray) and hasattr(vec, "__array__"):
        vec = foreign_array(vec)  # a torch vector (parameters_to_vector of a torch model)
    if not isinstance(vec, np.ndarray) or vec.dtype.kind not in "fiu":
        kind = type(vec).__name__ + (f" of {vec.dtype}" if isinstance(vec, np.ndarray) else "")
        raise ConfigError(
            f"vector_to_parameters takes a Tensor or a NumPy array of numbers; got a {kind}"
        )
    if vec.ndim != 1:
        raise ShapeError(
            f"vector_to_parameters: vec must be one-dimensional; got shape {vec.shape}"
        )
    items = _parameters(parameters, "vector_to_parameters")
    total = sum(p.data.size for p in items)
    if vec.size != total:
        raise ShapeError(
            f"vector_to_parameters: vec has {vec.size} entries; the {len(items)} parameters "
            f"hold {total}"
        )
    start = 0
    for p in items:
        p.data[...] = vec[start : start + p.data.size].reshape(p.data.shape)
        p._version += 1  # a graph that read the old values refuses its backward
        start += p.data.size
