"""Layers: Dense (Z = W·X + b), activations (A = f(Z)), Dropout, Standardize."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from wxb import ops
from wxb.backend import DTYPES, check_device, resolve_dtype
from wxb.errors import ConfigError, DataError, ShapeError
from wxb.nn.module import Module, Parameter, UninitializedParameter, _structure_changed
from wxb.random import as_generator, key_of
from wxb.tensor import Tensor, no_grad
from wxb.validation import SparseRows, as_features, numbers_from_pandas, refuse_keras_arguments

INITS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "torch")


def init_weight(
    shape: tuple[int, int], init: str, rng: np.random.Generator, dtype: np.dtype
) -> np.ndarray:
    """Glorot (Xavier) keeps Var(Z) ≈ Var(X) for tanh/sigmoid; He doubles it for ReLU;
    "torch" is PyTorch Linear's kaiming_uniform(a=√5), U(±1/√fan_in)."""
    fan_out, fan_in = shape
    if init == "torch":
        limit = 1 / math.sqrt(fan_in)
        return rng.uniform(-limit, limit, size=shape).astype(dtype)
    if init == "glorot_uniform":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape).astype(dtype)
    if init == "glorot_normal":
        return (rng.standard_normal(shape) * math.sqrt(2.0 / (fan_in + fan_out))).astype(dtype)
    if init == "he_uniform":
        limit = math.sqrt(6.0 / fan_in)
        return rng.uniform(-limit, limit, size=shape).astype(dtype)
    if init == "he_normal":
        return (rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(dtype)
    raise ConfigError(f"init must be one of {', '.join(INITS)}; got {init!r}")


def _bias_values(
    fan_out: int, fan_in: int, init: str, rng: np.random.Generator, dtype: np.dtype
) -> np.ndarray:
    """A Dense's b as ``init`` makes it: zeros (Keras's), or U(±1/√fan_in) for "torch"."""
    if init == "torch":
        limit = 1 / math.sqrt(fan_in)
        return rng.uniform(-limit, limit, size=fan_out).astype(dtype)
    return np.zeros(fan_out, dtype=dtype)


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{what} must be a positive integer; got {value!r}")
    return int(value)


def dtype_mismatch(label: str, x: np.dtype, w: np.dtype) -> DataError:
    """X of another dtype than a layer's W: what to cast (the model only to a dtype wxb
    computes in)."""
    if x in DTYPES.values():
        advice = f"cast the data or the model (model.to('{x}'))"
    else:
        advice = f"cast the data (X.astype(np.{w}))"
    return DataError(f"{label}: X is {x} but W is {w}; {advice}")


def _operand(value: object) -> object:
    """A Dense's W or b as its forward computes with it: a buffer (an array, PyTorch's
    ``del lin.bias; lin.register_buffer("bias", b)``, a frozen b kept in the state) as a
    constant Tensor; a Parameter, a Tensor computed from others, or None as it is."""
    return Tensor(value) if isinstance(value, np.ndarray) else value


# Keras's Dense arguments, each with wxb's way (Python's bare "unexpected keyword
# argument 'activation'" named neither)
_KERAS_DENSE = {
    "units": "Dense(in_features, out_features) takes the inputs' count too, as PyTorch's "
    "Linear: Keras's Dense(units) infers it, wxb's does not",
    "activation": "an activation is a layer of its own: Sequential(Dense(4, 8), ReLU(), …)",
    "use_bias": "write bias=False",
    "kernel_initializer": "Keras's glorot_uniform (the default) and he_uniform are taken; "
    f"else write init= (one of {', '.join(INITS)}) or use wxb.nn.init on layer.weight",
    "bias_initializer": "b starts at 0, as Keras's ('zeros' is taken); "
    "wxb.nn.init.constant_(layer.bias, v) sets it",
    "kernel_regularizer": "an L2 penalty is the optimiser's weight_decay=",
    "input_dim": "the inputs' count is Dense's first argument, in_features",
    "input_shape": "the inputs' count is Dense's first argument, in_features",
}


# Keras's initializer names (its snake_case and class names) whose draw is wxb's init of
# that name: Keras's GlorotUniform is U(±√(6/(fan_in + fan_out))), HeUniform U(±√(6/fan_in))
_KERAS_SAME_INITS = {
    "glorot_uniform": "glorot_uniform",
    "GlorotUniform": "glorot_uniform",
    "he_uniform": "he_uniform",
    "HeUniform": "he_uniform",
}
# Keras's normal ones: a normal truncated at ±2σ, σ rescaled by 0.8796 (the standard
# normal's deviation within ±2) to keep the variance; wxb's (PyTorch's) are untruncated
_KERAS_TRUNCATED_INITS = {
    "glorot_normal": ("glorot_normal", "2/(fan_in + fan_out)"),
    "GlorotNormal": ("glorot_normal", "2/(fan_in + fan_out)"),
    "he_normal": ("he_normal", "2/fan_in"),
    "HeNormal": ("he_normal", "2/fan_in"),
}


def _keras_initializers(init: str, options: dict) -> str:
    """Keras's ``kernel_initializer=`` and ``bias_initializer=`` on a Dense, taken where
    wxb draws the same (Keras's Glorot- and He-uniform kernels; its zeros bias, which
    every init but "torch" gives), else refused naming wxb's way; ``options`` is left
    with Keras's other keywords. Returns the init to draw W with."""
    kernel = options.pop("kernel_initializer", None)
    bias = options.pop("bias_initializer", None)
    if isinstance(kernel, str) and kernel in _KERAS_SAME_INITS:
        if init not in ("glorot_uniform", _KERAS_SAME_INITS[kernel]):  # (the default, or it)
            raise ConfigError(
                f"Dense takes W's draw once: init={init!r} and Keras's "
                f"kernel_initializer={kernel!r} were both given"
            )
        init = _KERAS_SAME_INITS[kernel]
    elif isinstance(kernel, str) and kernel in _KERAS_TRUNCATED_INITS:
        name, variance = _KERAS_TRUNCATED_INITS[kernel]
        raise ConfigError(
            f"Dense takes no kernel_initializer= (Keras's): Keras's {kernel!r} is a normal "
            f"truncated at ±2σ, σ = √({variance})/0.8796, of variance {variance}; wxb's "
            f"init={name!r} is PyTorch's, untruncated, of that variance; Keras's draw is "
            "wxb.nn.init.trunc_normal_(layer.weight, std=σ, a=-2*σ, b=2*σ)"
        )
    elif kernel is not None:
        options["kernel_initializer"] = kernel  # refused below, naming wxb's way
    zeros = isinstance(bias, str) and bias in ("zeros", "Zeros")
    if zeros and init == "torch":
        raise ConfigError(
            "Dense(init='torch') draws b from U(±1/√in_features), as PyTorch's Linear, not "
            "Keras's bias_initializer='zeros': leave one out, or wxb.nn.init.zeros_(layer.bias)"
        )
    if bias is not None and not zeros:
        options["bias_initializer"] = bias  # refused below, naming wxb's way
    return init


def _refuse_keras_spelling(
    in_features: object, out_features: object, bias: object, options: dict
) -> None:
    """Keras's habits refused in one line with wxb's way. Dense(64, 10, "relu") took the
    activation for ``bias`` (a true value): a plain linear layer, without a word."""
    refuse_keras_arguments(
        options,
        "Dense",
        _KERAS_DENSE,
        dict.fromkeys(("activation", "kernel_regularizer")),  # None: no activation, no L2
        called="Dense.__init__",
    )
    activation = "an activation is a layer of its own in wxb: Sequential(Dense(4, 8), ReLU())"
    if out_features is None:
        raise ConfigError(
            f"Dense({in_features!r}): wxb's Dense takes (in_features, out_features), as "
            "PyTorch's Linear; Keras's Dense(units) infers its inputs, wxb's does not: "
            f"write Dense(<features in>, {in_features!r})"
        )
    if isinstance(out_features, str):
        raise ConfigError(
            f"Dense({in_features!r}, {out_features!r}): the second argument is out_features, "
            f"a count; {activation}"
        )
    flag = isinstance(bias, (bool, np.bool_)) or bias is None  # None: no b, as torch's
    if not flag and not (isinstance(bias, (int, np.integer)) and bias in (0, 1)):
        where = f"Dense({in_features!r}, {out_features!r}, {bias!r})"
        raise ConfigError(
            f"{where}: the third argument is bias, True or False; got {bias!r}"
            + (f" ({activation})" if isinstance(bias, str) else "")
        )


class Dense(Module):
    """Z = W·X + b with W of shape (out_features, in_features), as the seed writes it.

    Inputs are rows (B, in_features); the product is computed as X·Wᵀ, which is
    the seed's W·X on columns, with no copy (BLAS reads Wᵀ as a view). PyTorch's
    ``device=`` is taken for the CPU (wxb computes there), another refused in one line.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int | None = None,
        bias: bool = True,
        *,
        init: str = "glorot_uniform",
        seed: int | np.random.Generator | None = None,
        dtype: object = None,
        device: object = None,
        name: str | None = None,
        **keras_options: object,
    ) -> None:
        super().__init__()
        init = _keras_initializers(init, keras_options)
        _refuse_keras_spelling(in_features, out_features, bias, keras_options)
        check_device(device, "Dense")  # PyTorch's factory keyword: the CPU, or refused
        n = _positive_int(in_features, "Dense in_features")
        m = _positive_int(out_features, "Dense out_features")
        self.init = init
        self.name = name
        dt = resolve_dtype(dtype)
        rng = as_generator(seed)
        self.weight = Parameter(init_weight((m, n), init, rng, dt))
        self.bias = Parameter(_bias_values(m, n, init, rng, dt)) if bias else None
        # A subclass's own init, PyTorch's way to change it (torch's Linear.__init__ calls
        # reset_parameters): left uncalled, its weights stayed the stock draw unsaid. The
        # stock one is not called again, which would redraw W without ``seed``.
        if type(self).reset_parameters is not Dense.reset_parameters:
            self.reset_parameters()

    # From W itself: a weight replaced by one of another shape changes them (PyTorch's
    # attributes would go stale, and the planned stack sized its buffers from them).
    @property
    def in_features(self) -> int:
        return self._weight_shape()[1]

    @property
    def out_features(self) -> int:
        return self._weight_shape()[0]

    def _weight_shape(self) -> tuple[int, int]:
        """W's (out, in); a W given through ``.data`` that is not a matrix refused in one
        line (its shape[1] was read as the inputs: an IndexError, or for (m, n, 1) a
        prediction broadcast through it without a word)."""
        shape = self.weight.shape
        if len(shape) != 2:
            raise ShapeError(
                f"{self.label}: W must be a matrix (out_features × in_features); its "
                f"array has shape {shape}"
            )
        return int(shape[0]), int(shape[1])

    def forward(self, x: Tensor) -> Tensor:
        self._weight_shape()
        weight, bias = _operand(self.weight), _operand(self.bias)
        if x.dtype != weight.dtype:
            raise dtype_mismatch(self.label, x.dtype, weight.dtype)
        if isinstance(x, SparseRows):  # model(X_sparse): CSR rows, multiplied sparse
            z = ops.sparse_linear_map(x.matrix, weight, where=self.label)
        else:
            z = ops.linear_map(x, weight, where=self.label)
        return ops.add_bias(z, bias) if bias is not None else z

    def _takes_sparse_rows(self) -> bool:
        return not self._own_forward() and not self._has_hooks()

    def reset_parameters(self) -> None:
        """W drawn again (its ``init``, from wxb's default generator, which
        ``wxb.manual_seed`` sets) and b zeroed (with init "torch", a materialised
        LazyLinear's, drawn from U(±1/√in) as torch's Linear), in place, as PyTorch's: the
        same Parameters, so an optimiser holding them and views of them follow."""
        w = self.weight
        rng = as_generator(None)
        with no_grad():  # (in place: graphs recorded before refuse backward, as PyTorch's)
            w[...] = init_weight(w.shape, self.init, rng, w.dtype)
            if self.bias is not None:
                self.bias[...] = _bias_values(w.shape[0], w.shape[1], self.init, rng, w.dtype)

    def config(self) -> dict[str, Any]:
        refuse_subclass(self, Dense)
        return {
            "type": "Dense",
            "name": self.name,
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias is not None,
        }

    def extra_repr(self) -> str:
        if self.weight.ndim != 2:  # (shown, not refused: repr is how one looks at it)
            return f"weight of shape {self.weight.shape}, bias={self.bias is not None}"
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


# PyTorch's name for the same layer (nn.Linear(in, out, bias=True): W is out × in, as here)
Linear = Dense


def _inplace(value: object, where: str) -> bool:
    """PyTorch's ``inplace`` flag, taken: wxb computes out of place, the same values (only
    the input is left as it was, which PyTorch's would have overwritten)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{where}: inplace must be True or False; got {value!r}")
    return bool(value)


class Activation(Module):
    """A = f(Z), element-wise (Softmax: row-wise). The kernel holds f and f′."""

    takes_inplace = False  # PyTorch's twin has an inplace flag (ReLU, LeakyReLU, ELU, SiLU)

    def __init__(
        self, kernel: ops.ActivationKernel, name: str | None = None, inplace: object = False
    ) -> None:
        super().__init__()
        if isinstance(kernel, str):  # Keras's Activation("relu") was taken, and its forward
            # crashed later: "'str' object has no attribute 'forward'"
            known = {"linear": "identity", "swish": "silu"}.get(kernel, kernel)
            layer = ACTIVATIONS.get(known)
            way = (
                f"Keras's Activation({kernel!r}) is {layer.__name__}() here"
                if layer is not None
                else "its activation layers: "
                + ", ".join(cls.__name__ for cls in ACTIVATIONS.values())
            )
            raise ConfigError(
                f"Activation({kernel!r}): wxb's Activation is the base of its activation "
                f"layers, not Keras's Activation(name); {way}"
            )
        if self.takes_inplace and isinstance(name, (bool, np.bool_)):
            name, inplace = None, name  # PyTorch's positional flag: ReLU(True)
        if name is not None and not isinstance(name, str):
            # PyTorch's first argument (Softmax(0): dim) taken as the name: Softmax(0) then
            # ran over the last axis, not the batch, in a module of one's own; in a
            # Sequential, Python's bare TypeError for an attribute name
            raise ConfigError(
                f"{type(self).__name__}: got {name!r} where it takes the layer's name (text); "
                "PyTorch's arguments go by keyword here (Softmax(dim=1), "
                "LeakyReLU(negative_slope=0.2))"
            )
        self.kernel = kernel
        self.name = name
        self.inplace = _inplace(inplace, type(self).__name__)

    def forward(self, x: Tensor) -> Tensor:
        # (Log)Softmax's dim checked here: a forward of _RowWise's own would read as one
        # replaced (stock_kind), refused by export and to_torch
        dim, ndim = getattr(self, "dim", 0), getattr(x, "ndim", 2)
        if dim == 1 and ndim != 2:
            raise ConfigError(
                f"{type(self).__name__}(dim=1) of a tensor of {ndim} dimensions: wxb's "
                "runs over the last axis; give dim=-1 for that, or use tensor.softmax(1)"
            )
        if dim is None:  # (1-D and 2-D: the last axis is torch's implicit dim too)
            ops.check_implicit_dim(ndim, f"{type(self).__name__}()")
        return ops.activation(x, self.kernel)

    def config(self) -> dict[str, Any]:
        if type(self) not in ACTIVATIONS.values():  # a file holds only what load rebuilds
            raise ConfigError(
                f"{type(self).__name__} cannot be saved: a model file rebuilds only the "
                f"activations {', '.join(cls.__name__ for cls in ACTIVATIONS.values())}"
            )
        return {"type": type(self).__name__, "name": self.name}


class _KernelSetting:
    """An activation kernel's setting, read and set on the layer by PyTorch's attribute
    name; setting it makes the kernel again, which checks the value."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, layer: Activation | None, owner: type | None = None) -> Any:
        return self if layer is None else getattr(layer.kernel, self.name)

    def __set__(self, layer: Activation, value: Any) -> None:
        # the kernel made again with this one setting changed (the others kept)
        layer.kernel = dataclasses.replace(layer.kernel, **{self.name: value})


def _dim_setting(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{what} must be an integer (a dim); got {value!r}")
    return int(value)


class _DimSetting:
    """A layer's dim (Flatten's start_dim and end_dim, Unflatten's and GLU's dim), checked
    when set later too (torch's layer.start_dim = 2), as at construction. A change is one
    of the model's structure: a plan leaves out a Flatten that passes rows, and the width
    out is read from it (summary, save, export)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.what = name, f"{owner.__name__} {name}"

    def __get__(self, layer: Module | None, owner: type | None = None) -> Any:
        return self if layer is None else getattr(layer, f"_{self.name}")

    def __set__(self, layer: Module, value: object) -> None:
        setattr(layer, f"_{self.name}", _dim_setting(value, self.what))
        _structure_changed()


class Identity(Activation):
    def __init__(self, name: str | None = None) -> None:
        super().__init__(ops.Identity(), name)


class Sigmoid(Activation):
    def __init__(self, name: str | None = None) -> None:
        super().__init__(ops.Sigmoid(), name)


class Tanh(Activation):
    def __init__(self, name: str | None = None) -> None:
        super().__init__(ops.Tanh(), name)


class ReLU(Activation):
    takes_inplace = True

    def __init__(self, name: str | None = None, *, inplace: bool = False) -> None:
        super().__init__(ops.ReLU(), name, inplace)


class LeakyReLU(Activation):
    """z where z > 0, else α·z (any finite α, as in PyTorch)."""

    takes_inplace = True

    def __init__(
        self,
        negative_slope: float = 0.01,
        name: str | None = None,
        *,
        inplace: bool = False,
        **keras_options: object,
    ) -> None:
        refuse_keras_arguments(
            keras_options,
            "LeakyReLU",
            {"alpha": "the slope is negative_slope= (Keras 3's name)"},
            called="LeakyReLU.__init__",
        )
        super().__init__(ops.LeakyReLU(negative_slope), name, inplace)  # it checks the slope

    negative_slope = _KernelSetting()

    def config(self) -> dict[str, Any]:
        return {**super().config(), "negative_slope": self.kernel.negative_slope}

    def extra_repr(self) -> str:
        return f"negative_slope={self.kernel.negative_slope}"


class GELU(Activation):
    def __init__(self, approximate: str = "none", name: str | None = None) -> None:
        super().__init__(ops.GELU(approximate), name)  # it checks ``approximate``

    approximate = _KernelSetting()

    def config(self) -> dict[str, Any]:
        return {**super().config(), "approximate": self.kernel.approximate}


class SiLU(Activation):
    """z·σ(z) (swish)."""

    takes_inplace = True

    def __init__(self, name: str | None = None, *, inplace: bool = False) -> None:
        super().__init__(ops.SiLU(), name, inplace)


class ELU(Activation):
    """z where z > 0, else α·(e^z − 1)."""

    takes_inplace = True

    def __init__(
        self, alpha: float = 1.0, name: str | None = None, *, inplace: bool = False
    ) -> None:
        super().__init__(ops.ELU(alpha), name, inplace)  # it checks α

    alpha = _KernelSetting()

    def config(self) -> dict[str, Any]:
        return {**super().config(), "alpha": self.kernel.alpha}

    def extra_repr(self) -> str:
        return f"alpha={self.kernel.alpha}"


class Softplus(Activation):
    """(1/β)·log(1 + e^(βz)), linear where βz > threshold (PyTorch's)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0, name: str | None = None) -> None:
        super().__init__(ops.Softplus(beta, threshold), name)  # it checks both

    beta = _KernelSetting()
    threshold = _KernelSetting()

    def config(self) -> dict[str, Any]:
        return {**super().config(), "beta": self.kernel.beta, "threshold": self.kernel.threshold}

    def extra_repr(self) -> str:
        return f"beta={self.kernel.beta}, threshold={self.kernel.threshold}"


class _Plain(Activation):
    """An activation of no settings whose torch twin takes ``inplace`` (or not)."""

    kernel_type: type

    def __init__(self, name: str | None = None, *, inplace: bool = False) -> None:
        super().__init__(self.kernel_type(), name, inplace)


class ReLU6(_Plain):
    """min(max(z, 0), 6)."""

    takes_inplace = True
    kernel_type = ops.ReLU6


class Hardtanh(Activation):
    """min(max(z, min_val), max_val)."""

    takes_inplace = True

    def __init__(
        self,
        min_val: float = -1.0,
        max_val: float = 1.0,
        name: str | None = None,
        *,
        inplace: bool = False,
    ) -> None:
        super().__init__(ops.Hardtanh(min_val, max_val), name, inplace)  # it checks both

    min_val = _KernelSetting()
    max_val = _KernelSetting()

    def config(self) -> dict[str, Any]:
        return {**super().config(), "min_val": self.min_val, "max_val": self.max_val}

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class SELU(_Plain):
    """λ·z where z > 0, else λα·(e^z − 1), with torch's λ ≈ 1.0507 and α ≈ 1.6733."""

    takes_inplace = True
    kernel_type = ops.SELU


class CELU(Activation):
    """z where z > 0, else α·(e^(z/α) − 1)."""

    takes_inplace = True

    def __init__(
        self, alpha: float = 1.0, name: str | None = None, *, inplace: bool = False
    ) -> None:
        super().__init__(ops.CELU(alpha), name, inplace)  # it checks α

    alpha = _KernelSetting()

    def config(self) -> dict[str, Any]:
        return {**super().config(), "alpha": self.alpha}

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Mish(_Plain):
    """z·tanh(softplus(z))."""

    takes_inplace = True
    kernel_type = ops.Mish


class Hardswish(_Plain):
    """z·min(max(z + 3, 0), 6)/6."""

    takes_inplace = True
    kernel_type = ops.Hardswish


class Hardsigmoid(_Plain):
    """min(max(z + 3, 0), 6)/6."""

    takes_inplace = True
    kernel_type = ops.Hardsigmoid


class LogSigmoid(_Plain):
    """log σ(z)."""

    kernel_type = ops.LogSigmoid


class Softsign(_Plain):
    """z/(1 + |z|)."""

    kernel_type = ops.Softsign


class Tanhshrink(_Plain):
    """z − tanh(z)."""

    kernel_type = ops.Tanhshrink


class Threshold(Activation):
    """z where z > threshold, else value (both required, as torch's; a NaN passes as NaN)."""

    takes_inplace = True

    def __init__(
        self, threshold: float, value: float, name: str | None = None, *, inplace: bool = False
    ) -> None:
        super().__init__(ops.Threshold(threshold, value), name, inplace)  # it checks both

    threshold = _KernelSetting()
    value = _KernelSetting()

    def config(self) -> dict[str, Any]:
        return {**super().config(), "threshold": self.threshold, "value": self.value}

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, value={self.value}"


class _Shrink(Activation):
    """Hardshrink and Softshrink: torch's one setting, lambd (λ = 0.5), and its repr."""

    def __init__(self, lambd: float = 0.5, name: str | None = None) -> None:
        super().__init__(self.kernel_type(lambd), name)  # it checks λ

    lambd = _KernelSetting()

    def config(self) -> dict[str, Any]:
        return {**super().config(), "lambd": self.lambd}

    def extra_repr(self) -> str:
        return f"{self.lambd}"  # torch's Hardshrink(0.5)


class Hardshrink(_Shrink):
    """z where |z| > λ, else 0 (torch's nn.Hardshrink(lambd=0.5))."""

    kernel_type = ops.Hardshrink


class Softshrink(_Shrink):
    """z − λ where z > λ, z + λ where z < −λ, else 0 (torch's nn.Softshrink(lambd=0.5),
    λ ≥ 0)."""

    kernel_type = ops.Softshrink


class PReLU(Module):
    """z where z > 0, else a·z, with a a learned parameter: one shared value
    (``num_parameters=1``) or one per feature (dim 1), each starting at ``init``, as
    torch's nn.PReLU. It runs on the recorded graph (``ops.prelu``: f and f′ there).
    ``device=``: the CPU, as Dense takes it."""

    def __init__(
        self,
        num_parameters: int = 1,
        init: float = 0.25,
        *,
        device: object = None,
        dtype: object = None,
        name: str | None = None,
    ) -> None:
        super().__init__()
        check_device(device, "PReLU")  # PyTorch's factory keyword: the CPU, or refused
        n = _positive_int(num_parameters, "PReLU num_parameters")
        self.init = ops._finite_setting(init, "PReLU init")
        self.weight = Parameter(np.full(n, self.init, dtype=resolve_dtype(dtype)))
        self.name = name
        self.reset_parameters()  # (as torch's __init__: a subclass's own init runs)

    @property
    def num_parameters(self) -> int:
        return int(self.weight.shape[0]) if self.weight.ndim == 1 else int(self.weight.size)

    def forward(self, x: Tensor) -> Tensor:
        return ops.prelu(x, self.weight)

    def reset_parameters(self) -> None:
        """Every slope back to ``init``, in place (the same Parameter, as PyTorch's)."""
        with no_grad():
            self.weight[...] = self.init

    def config(self) -> dict[str, Any]:
        refuse_subclass(self, PReLU)
        return {
            "type": "PReLU",
            "name": self.name,
            "num_parameters": self.num_parameters,
            "init": self.init,  # (reset_parameters() puts the slopes back to it)
        }

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class GLU(Module):
    """Gated linear unit, as torch's nn.GLU(dim=-1): the input split in halves A, B along
    ``dim``, A ⊙ σ(B), so a row of 2k features gives k (Dense(n, 2k), GLU() is one gated
    layer). It runs on the recorded graph (``ops.glu``: f and its backward there)."""

    def __init__(self, dim: int = -1, name: str | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.name = name

    dim = _DimSetting()

    def halves_rows(self) -> bool:
        """Whether it halves the features of rows (B, F): dim 1 or -1."""
        return self.dim in (1, -1)

    def forward(self, x: Tensor) -> Tensor:
        return ops.glu(x, self.dim)

    def config(self) -> dict[str, Any]:
        refuse_subclass(self, GLU)
        return {"type": "GLU", "name": self.name, "dim": self.dim}

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class _RowWise(Activation):
    """Softmax and LogSoftmax: over each row's last axis, the classes of a (B, C) batch.
    PyTorch's ``dim=`` is taken where it names that axis (1 or -1; None, PyTorch's
    implicit choice, is 1 for a batch); another axis is refused in one line, at
    construction (0) or at the call (dim=1 or None of a tensor of 3 or more dimensions,
    where torch's dim=None is dim 0 for 3 and dim 1 for more)."""

    def __init__(self, kernel: ops.ActivationKernel, name: str | None, dim: object) -> None:
        self._check_dim(dim)
        super().__init__(kernel, name)
        self.dim = dim  # checked against the input in Activation.forward

    def _check_dim(self, dim: object) -> None:
        if dim is not None and (isinstance(dim, bool) or dim not in (1, -1)):
            raise ConfigError(
                f"{type(self).__name__}(dim={dim!r}): wxb's {type(self).__name__} runs over "
                "the last axis (dim=1 or -1 of a (batch, classes) output); for another axis "
                f"use {self._along}"
            )

    @property
    def dim(self) -> object:
        held = self.__dict__
        return held["_dim"] if "_dim" in held else held.get("dim")  # (pickled before: "dim")

    @dim.setter
    def dim(self, value: object) -> None:
        # checked when set later too (PyTorch's layer.dim = 0): the kernel would still
        # run over the last axis, another axis's numbers without a word
        self._check_dim(value)
        object.__setattr__(self, "_dim", value)


_KERAS_AXIS = {"axis": "the axis is dim= (PyTorch's name): dim=-1 for the last"}


class Softmax(_RowWise):
    """Row-wise softmax. For training a classifier, prefer CrossEntropyLoss on logits."""

    _along = "tensor.softmax(dim)"

    def __init__(
        self, name: str | None = None, *, dim: int | None = None, **keras_options: object
    ) -> None:
        refuse_keras_arguments(keras_options, "Softmax", _KERAS_AXIS, called="Softmax.__init__")
        super().__init__(ops.Softmax(), name, dim)


class LogSoftmax(_RowWise):
    """Row-wise log-softmax, Z − log Σⱼ e^(Zⱼ): log-probabilities, for NLLLoss (together
    the cross-entropy of Z, as PyTorch's LogSoftmax(dim=1) and NLLLoss)."""

    _along = "tensor.log_softmax(dim)"

    def __init__(
        self, name: str | None = None, *, dim: int | None = None, **keras_options: object
    ) -> None:
        refuse_keras_arguments(
            keras_options, "LogSoftmax", _KERAS_AXIS, called="LogSoftmax.__init__"
        )
        super().__init__(ops.LogSoftmax(), name, dim)


class Softmin(_RowWise):
    """Row-wise softmax of −Z (torch's Softmin(dim=1))."""

    _along = "(-tensor).softmax(dim)"

    def __init__(
        self, name: str | None = None, *, dim: int | None = None, **keras_options: object
    ) -> None:
        refuse_keras_arguments(keras_options, "Softmin", _KERAS_AXIS, called="Softmin.__init__")
        super().__init__(ops.Softmin(), name, dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


ACTIVATIONS: dict[str, type[Activation]] = {
    "identity": Identity,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "gelu": GELU,
    "silu": SiLU,
    "elu": ELU,
    "softplus": Softplus,
    "relu6": ReLU6,
    "hardtanh": Hardtanh,
    "selu": SELU,
    "celu": CELU,
    "mish": Mish,
    "hardswish": Hardswish,
    "hardsigmoid": Hardsigmoid,
    "logsigmoid": LogSigmoid,
    "softsign": Softsign,
    "tanhshrink": Tanhshrink,
    "threshold": Threshold,
    "hardshrink": Hardshrink,
    "softshrink": Softshrink,
    "softmax": Softmax,
    "log_softmax": LogSoftmax,
    "softmin": Softmin,
}

# the settings of the activations that take some: a file keeps them (wxb.io)
SETTINGS: dict[type[Activation], tuple[str, ...]] = {
    LeakyReLU: ("negative_slope",),
    GELU: ("approximate",),
    ELU: ("alpha",),
    Softplus: ("beta", "threshold"),
    Hardtanh: ("min_val", "max_val"),
    CELU: ("alpha",),
    Threshold: ("threshold", "value"),
    Hardshrink: ("lambd",),
    Softshrink: ("lambd",),
}


def stock_kernel(cls: type[Activation]) -> object:
    """A kernel of the type ``cls`` makes (Threshold's settings have no defaults)."""
    return (cls(0.0, 0.0) if cls is Threshold else cls()).kernel


def stand_in(kind: str, kernel: object) -> Activation:
    """The activation layer whose kernel is named ``kind``, computing with ``kernel``."""
    cls = ACTIVATIONS[kind]
    layer = cls(*(getattr(kernel, key) for key in SETTINGS.get(cls, ())))
    layer.kernel = kernel  # (the kernel that ran, exactly)
    return layer


class Dropout(Module):
    """Inverted dropout: in training, zero each unit with probability p, scale the rest."""

    def __init__(
        self,
        p: float = 0.5,
        inplace: bool = False,
        *,
        seed: int | np.random.Generator | None = None,
        name: str | None = None,
        **keras_options: object,
    ) -> None:
        super().__init__()
        refuse_keras_arguments(
            keras_options,
            "Dropout",
            {
                "rate": "the share dropped is p= (PyTorch's name), Dropout(0.5)",
                "noise_shape": "each unit of each row is dropped on its own",
            },
            {"noise_shape": None},
            called="Dropout.__init__",
        )
        self.p = p
        self.inplace = _inplace(inplace, "Dropout")  # PyTorch's Dropout(p, inplace)
        self._own_rng = None if seed is None else as_generator(seed)
        # The masks' key a wxb before 2026-12-06 used in every fit (from the generator's
        # state here, without drawing): a checkpoint it wrote without its keys resumes on it.
        self._row_key = None if self._own_rng is None else key_of(self._own_rng)
        self.name = name

    @property
    def p(self) -> float:
        return self._p

    @p.setter
    def p(self, value: float) -> None:  # checked when set later too, as at construction
        self._p = ops.check_dropout_p(value)

    @property
    def rng(self) -> np.random.Generator:
        """Its own generator if given a seed; else wxb's default one, as it is now
        (so ``wxb.manual_seed`` after building the model still governs the masks)."""
        return self._own_rng if self._own_rng is not None else as_generator(None)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        return ops.dropout(x, self.p, self.rng, layer=self)

    def config(self) -> dict[str, Any]:
        refuse_subclass(self, Dropout)
        return {"type": "Dropout", "name": self.name, "p": self.p}

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _dropout_p(value: object, kind: str) -> float:
    if not (ops._is_number(value) and 0 <= value < 1):  # (p = 1: nothing would pass)
        raise ConfigError(f"{kind} p must be a number in [0, 1); got {value!r}")
    return float(value)


class _DropoutP:
    """A dropout layer's p in [0, 1) (p = 1: nothing would pass), checked when set later
    too (torch's layer.p = 0.2), as at construction."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.kind = owner.__name__

    def __get__(self, layer: Module | None, owner: type | None = None) -> Any:
        return self if layer is None else layer._p

    def __set__(self, layer: Module, value: object) -> None:
        layer._p = _dropout_p(value, self.kind)


class AlphaDropout(Module):
    """Alpha dropout, as torch's nn.AlphaDropout(p=0.5): in training each unit is dropped
    with probability p to SELU's saturation value and the rest scaled and shifted so
    that a SELU network's mean 0 and variance 1 are kept (``ops.alpha_dropout``); in eval
    mode the identity. The masks come from wxb's default generator (``wxb.manual_seed``).
    It runs on the recorded graph."""

    def __init__(self, p: float = 0.5, inplace: bool = False, name: str | None = None) -> None:
        super().__init__()
        self.p = p
        self.inplace = _inplace(inplace, "AlphaDropout")  # torch's: the same values here
        self.name = name

    p = _DropoutP()

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        return ops.alpha_dropout(x, self.p, as_generator(None))

    def config(self) -> dict[str, Any]:
        refuse_subclass(self, AlphaDropout)
        return {"type": "AlphaDropout", "name": self.name, "p": self.p}

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class FeatureAlphaDropout(Module):
    """torch's nn.FeatureAlphaDropout(p=0.5): alpha dropout (AlphaDropout's formula) of
    whole channels, one draw per (sample, channel) of an input (N, C, …), the dims after
    C sharing it (rows (N, C): one per unit, as AlphaDropout). Eval mode: the identity.
    Draws from wxb's default generator (``wxb.manual_seed``); on the recorded graph."""

    def __init__(self, p: float = 0.5, inplace: bool = False, name: str | None = None) -> None:
        super().__init__()
        self.p = p
        self.inplace = _inplace(inplace, "FeatureAlphaDropout")  # the same values here
        self.name = name

    p = _DropoutP()

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        return ops.alpha_dropout(x, self.p, as_generator(None), feature=True)

    def config(self) -> dict[str, Any]:
        refuse_subclass(self, FeatureAlphaDropout)
        return {"type": "FeatureAlphaDropout", "name": self.name, "p": self.p}

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout1d(Module):
    """torch's nn.Dropout1d(p=0.5): channel dropout of inputs (N, C, L) or (C, L), each
    channel's whole length zeroed with probability p, the rest scaled by 1/(1 − p)
    (``ops.dropout1d``); other shapes refused, as torch's. Eval mode: the identity. Draws
    from wxb's default generator (``wxb.manual_seed``); on the recorded graph."""

    def __init__(self, p: float = 0.5, inplace: bool = False, name: str | None = None) -> None:
        super().__init__()
        self.p = p
        self.inplace = _inplace(inplace, "Dropout1d")  # the same values here
        self.name = name

    p = _DropoutP()

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        return ops.dropout1d(x, self.p, as_generator(None))

    def config(self) -> dict[str, Any]:
        refuse_subclass(self, Dropout1d)
        return {"type": "Dropout1d", "name": self.name, "p": self.p}

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class RReLU(Module):
    """torch's nn.RReLU(lower=1/8, upper=1/3): in training each z ≤ 0 is multiplied by a
    slope drawn from U(lower, upper) (wxb's default generator, ``wxb.manual_seed``), and
    its backward uses that same slope; in eval mode LeakyReLU of slope (lower + upper)/2.
    On the recorded graph (``ops.rrelu``)."""

    def __init__(
        self,
        lower: float = 1.0 / 8,
        upper: float = 1.0 / 3,
        inplace: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__()
        self._lower, self._upper = ops.check_rrelu_bounds(lower, upper, "RReLU")
        self.inplace = _inplace(inplace, "RReLU")  # the same values here
        self.name = name

    # checked when set later too, as at construction
    @property
    def lower(self) -> float:
        return self._lower

    @lower.setter
    def lower(self, value: float) -> None:
        self._lower, _ = ops.check_rrelu_bounds(value, self._upper, "RReLU")

    @property
    def upper(self) -> float:
        return self._upper

    @upper.setter
    def upper(self, value: float) -> None:
        _, self._upper = ops.check_rrelu_bounds(self._lower, value, "RReLU")

    def forward(self, x: Tensor) -> Tensor:
        return ops.rrelu(x, self.lower, self.upper, self.training, as_generator(None))

    def config(self) -> dict[str, Any]:
        refuse_subclass(self, RReLU)
        return {"type": "RReLU", "name": self.name, "lower": self.lower, "upper": self.upper}

    def extra_repr(self) -> str:
        return f"lower={self.lower}, upper={self.upper}"


class Embedding(Module):
    """torch's nn.Embedding(num_embeddings, embedding_dim): a table W of one row per index,
    looked up by integer ids, (*ids.shape) → (*ids.shape, embedding_dim): one_hot(ids)·W
    without the zeros (``ops.embedding``: ∂L/∂W adds each δ row into the row it picked).
    W drawn from N(0, 1) (wxb's default generator), torch's init; ``padding_idx``'s row
    zeros and takes no gradient; ``max_norm`` renorms the rows looked up in place, as
    torch's; ``scale_grad_by_freq`` divides each row's gradient by its count in the batch.
    ``sparse=True`` (sparse gradients) is refused. ``device=``: the CPU, as Dense takes it."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: object = None,
        _freeze: bool = False,
        *,
        device: object = None,
        dtype: object = None,
        name: str | None = None,
    ) -> None:
        super().__init__()
        check_device(device, "Embedding")  # PyTorch's factory keyword: the CPU, or refused
        n = _positive_int(num_embeddings, "Embedding num_embeddings")
        d = _positive_int(embedding_dim, "Embedding embedding_dim")
        self.padding_idx = ops.check_padding_idx(padding_idx, n, "Embedding")
        if max_norm is not None and not (ops._is_number(max_norm) and max_norm >= 0):
            raise ConfigError(f"Embedding max_norm must be a number ≥ 0 or None; got {max_norm!r}")
        if not (ops._is_number(norm_type) and norm_type >= 0):
            raise ConfigError(f"Embedding norm_type must be a number ≥ 0; got {norm_type!r}")
        for key, flag in (("scale_grad_by_freq", scale_grad_by_freq), ("sparse", sparse)):
            if not isinstance(flag, (bool, np.bool_)):
                raise ConfigError(f"Embedding {key} must be True or False; got {flag!r}")
        if sparse:
            raise ConfigError(
                "Embedding(sparse=True): sparse gradients are not taken, wxb's are dense "
                "(sparse=False; any optimiser then trains it)"
            )
        self.max_norm = None if max_norm is None else float(max_norm)
        self.norm_type = float(norm_type)
        self.scale_grad_by_freq = bool(scale_grad_by_freq)
        self.sparse = False
        self.name = name
        if _weight is None:
            self.weight = Parameter(np.zeros((n, d), dtype=resolve_dtype(dtype)))
            self.reset_parameters()
        else:
            values = _weight.data if isinstance(_weight, Tensor) else _weight
            if not isinstance(values, np.ndarray) and hasattr(values, "__array__"):
                values = np.asarray(values.detach() if hasattr(values, "detach") else values)
            values = np.asarray(values)
            if values.shape != (n, d):
                raise ShapeError(
                    f"Embedding: _weight of shape {values.shape} does not fit ({n}, {d})"
                )
            own = values.dtype if values.dtype.kind == "f" else None  # (ids-like ints: float32)
            dt = resolve_dtype(dtype if dtype is not None else own)
            # a tensor as it is, as torch's Parameter(_weight) takes it: one viewing a
            # parameter's memory (from_pretrained(out.weight)) keeps it (Parameter)
            kept = isinstance(_weight, Tensor) and values.dtype == dt
            source = _weight if kept else values.astype(dt)
            self.weight = Parameter(source, requires_grad=not _freeze)

    @classmethod
    def from_pretrained(
        cls,
        embeddings: object,
        freeze: bool = True,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
    ) -> Embedding:
        """An Embedding holding the matrix ``embeddings`` (rows: the indices): a copy of its
        values, but a tensor viewing a parameter's memory (``out.weight``) keeps it, as
        torch's Parameter keeps its tensor's; ``freeze`` (the default) leaves it out of
        training (requires_grad False); the padding row kept as given, as torch's."""
        values = embeddings.data if isinstance(embeddings, Tensor) else embeddings
        if not isinstance(values, np.ndarray) and hasattr(values, "__array__"):
            values = np.asarray(values.detach() if hasattr(values, "detach") else values)
        values = np.asarray(values)
        if values.ndim != 2:
            raise ShapeError(
                f"Embedding.from_pretrained: embeddings must be a matrix (num_embeddings, "
                f"embedding_dim); got shape {values.shape}"
            )
        if not isinstance(freeze, (bool, np.bool_)):
            raise ConfigError(
                f"Embedding.from_pretrained: freeze must be True or False; got {freeze!r}"
            )
        dtype = values.dtype if values.dtype.kind == "f" else None
        given = embeddings if isinstance(embeddings, Tensor) else values
        return cls(*values.shape, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=given, _freeze=bool(freeze), dtype=dtype)  # fmt: skip

    @property
    def num_embeddings(self) -> int:
        return int(self.weight.shape[0])

    @property
    def embedding_dim(self) -> int:
        return int(self.weight.shape[1])

    def reset_parameters(self) -> None:
        """W drawn again from N(0, 1), the padding row zeroed, in place, as torch's."""
        w = self.weight
        with no_grad():
            w[...] = as_generator(None).standard_normal(w.shape).astype(w.dtype)
            if self.padding_idx is not None:
                w[self.padding_idx] = 0

    def _looks_up_ids(self) -> bool:
        return not self._own_forward()

    def forward(self, input: object) -> Tensor:
        return ops.embedding(
            input, _operand(self.weight), self.padding_idx, self.max_norm, self.norm_type,
            self.scale_grad_by_freq,
        )  # fmt: skip

    def config(self) -> dict[str, Any]:
        refuse_subclass(self, Embedding)
        return {
            "type": "Embedding",
            "name": self.name,
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
            "padding_idx": self.padding_idx,
            "max_norm": self.max_norm,
            "norm_type": self.norm_type,
            "scale_grad_by_freq": self.scale_grad_by_freq,
        }

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            text += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            text += ", scale_grad_by_freq=True"
        return text


class LazyLinear(Module):
    """torch's nn.LazyLinear(out_features, bias=True), Keras's Dense(units): in_features
    is inferred at the first call from the input's last dim; W and b are then drawn from
    U(±1/√in_features) (torch's Linear init, wxb's default generator) and the layer
    becomes a Dense, as torch's becomes a Linear. Before that call its W and b are
    ``UninitializedParameter``s: an optimiser, a file, an export refuse them;
    ``load_state_dict`` of a state with them makes them, as torch's."""

    cls_to_become = Dense

    def __init__(
        self,
        out_features: int,
        bias: bool = True,
        *,
        device: object = None,
        dtype: object = None,
        name: str | None = None,
    ) -> None:
        super().__init__()
        check_device(device, "LazyLinear")
        self._out_features = _positive_int(out_features, "LazyLinear out_features")
        if not isinstance(bias, (bool, np.bool_)):
            raise ConfigError(f"LazyLinear bias must be True or False; got {bias!r}")
        dt = resolve_dtype(dtype)
        self.weight = UninitializedParameter(dt)
        self.bias = UninitializedParameter(dt) if bias else None
        self.init = "torch"  # (Dense's reset_parameters, once it is one: torch's Linear's)
        self.name = name

    in_features = 0  # (torch's, before the first call)

    @property
    def out_features(self) -> int:
        return self._out_features

    def has_uninitialized_params(self) -> bool:
        return isinstance(self.weight, UninitializedParameter)

    def initialize_parameters(self, x: object) -> None:
        """W (out, n) and b made for inputs of n = x.shape[-1] features; the layer is
        then a Dense."""
        shape = np.shape(x.data if isinstance(x, Tensor) else x)
        if not shape or shape[-1] < 1:
            raise ShapeError(
                f"{self.label}: infers in_features from the input's last dim; got shape {shape}"
            )
        n = int(shape[-1])
        rng, dt = as_generator(None), self.weight.dtype
        weight = init_weight((self._out_features, n), self.init, rng, dt)
        bias = _bias_values(self._out_features, n, self.init, rng, dt)
        own = type(self).reset_parameters is not LazyLinear.reset_parameters
        self._become(weight, bias if self.bias is not None else None, reset=own)

    def reset_parameters(self) -> None:
        """Once made, W and b drawn again as torch's Linear draws them (a subclass's
        ``super().reset_parameters()``); before, nothing to draw, as torch's."""
        if not self.has_uninitialized_params():
            Dense.reset_parameters(self)

    def _become(self, weight: np.ndarray, bias: np.ndarray | None, reset: bool = False) -> None:
        self.weight = Parameter(weight)
        self.bias = None if bias is None else Parameter(bias)
        if reset:  # a subclass's own init, run once W and b are made, as torch's (it was
            # left uncalled, its W the stock draw unsaid); in_features read as torch's then
            self.__dict__["in_features"] = weight.shape[1]
            try:
                self.reset_parameters()
            finally:
                del self.__dict__["in_features"]
        del self._out_features
        self.__class__ = self.cls_to_become  # (a new structure: plans are made again)

    def _lazy_load(self, state: dict, prefix: str) -> None:
        """load_state_dict with this layer's W (and b): made from them, as torch's."""
        key = f"{prefix}.weight" if prefix else "weight"
        if not self.has_uninitialized_params() or key not in state:
            return
        shape = np.shape(state[key])
        if len(shape) != 2 or shape[0] != self._out_features:
            return  # (load_state_dict names the misfit)
        dt = self.weight.dtype
        self._become(
            np.zeros(shape, dtype=dt), None if self.bias is None else np.zeros(shape[0], dtype=dt)
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.has_uninitialized_params():
            self.initialize_parameters(x)
        return Dense.forward(self, x)

    def config(self) -> dict[str, Any]:
        raise ConfigError(
            f"{self.label} cannot be saved before its first call: its in_features is inferred "
            "then; call the model once on a batch (model(X[:1])) first"
        )

    def extra_repr(self) -> str:
        return f"in_features=0, out_features={self._out_features}, bias={self.bias is not None}"


def refuse_subclass(layer: Module, kind: type[Module]) -> None:
    """A model file rebuilds a plain ``kind`` from its config: a subclass (its own
    forward, its own state) is refused by name rather than saved as what it is not."""
    if type(layer) is not kind:
        raise ConfigError(
            f"{type(layer).__name__} cannot be saved: it subclasses {kind.__name__}, and a "
            f"model file rebuilds only a plain {kind.__name__}"
        )


class Flatten(Module):
    """Dims start_dim … end_dim made one, as torch's nn.Flatten: (N, 28, 28) → (N, 784)
    by default. A view of the input (a reshape); its backward reshapes δ back."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1, name: str | None = None) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim
        self.name = name

    start_dim = _DimSetting()
    end_dim = _DimSetting()

    def forward(self, x: Tensor) -> Tensor:
        x = ops.as_tensor(x)
        shape = ops.flattened_shape(x.shape, self.start_dim, self.end_dim)
        if tuple(shape) == x.shape:  # one dim made one: torch's flatten returns its input
            return x
        return ops.reshape(x, shape)

    def config(self) -> dict[str, Any]:
        refuse_subclass(self, Flatten)
        return {
            "type": "Flatten",
            "name": self.name,
            "start_dim": self.start_dim,
            "end_dim": self.end_dim,
        }

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    def rows_of(self, shape: tuple[int, ...]) -> bool:
        """Whether this Flatten makes an input of ``shape`` rows (B, features): fit and
        predict then take X of that shape, as (B, −1) rows."""
        n = len(shape)
        return n >= 2 and self.start_dim in (1, 1 - n) and self.end_dim in (-1, n - 1)


class Unflatten(Module):
    """Dim ``dim`` split into ``unflattened_size``, as torch's nn.Unflatten: Linear(32, 784)
    then Unflatten(1, (1, 28, 28)) gives images (N, 1, 28, 28). A view of the input (a
    reshape, ``ops.unflatten``); its backward reshapes δ back."""

    def __init__(
        self, dim: int, unflattened_size: tuple[int, ...] | list[int], name: str | None = None
    ) -> None:
        super().__init__()
        self.dim = dim
        self.unflattened_size = unflattened_size
        self.name = name

    dim = _DimSetting()

    @property
    def unflattened_size(self) -> tuple[int, ...]:
        return self._unflattened_size

    @unflattened_size.setter
    def unflattened_size(self, value: object) -> None:
        self._unflattened_size = ops.check_unflattened_size(value, "Unflatten")
        _structure_changed()

    def forward(self, x: Tensor) -> Tensor:
        return ops.unflatten(x, self.dim, self.unflattened_size)

    def shape_of_rows(self, width: int) -> tuple[int, ...] | None:
        """Each row's shape out for rows (B, ``width``) in, or None (another dim, or sizes
        that do not fit)."""
        if self.dim not in (1, -1):
            return None
        try:
            return ops.unflattened_shape((1, width), 1, self.unflattened_size)[1:]
        except ShapeError:
            return None

    def config(self) -> dict[str, Any]:
        refuse_subclass(self, Unflatten)
        return {
            "type": "Unflatten",
            "name": self.name,
            "dim": self.dim,
            "unflattened_size": list(self.unflattened_size),
        }

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class CosineSimilarity(Module):
    """Σ (x1/‖x1‖)·(x2/‖x2‖) along ``dim``, each norm held at least ``eps``, as torch's
    nn.CosineSimilarity(dim=1, eps=1e-8): a module of two inputs (a Siamese network's
    two rows), for a forward of one's own. ``ops.cosine_similarity`` composes it from
    recorded ops (norm, div, mul, sum), whose backward rules give its gradient."""

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim = _dim_setting(dim, "CosineSimilarity dim")
        self.eps = ops._finite_setting(eps, "CosineSimilarity eps")

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return ops.cosine_similarity(x1, x2, self.dim, self.eps)


class Bilinear(Module):
    """y = x1ᵀ·W·x2 + b, each output o its own form x1ᵀ·Wₒ·x2, as torch's
    nn.Bilinear(in1_features, in2_features, out_features, bias=True): W of shape (out,
    in1, in2), W and b drawn from U(±1/√in1_features), torch's init, from the generator
    ``wxb.manual_seed`` sets; state_dict keys "weight" and "bias". A module of two inputs
    (x1 (*, in1), x2 (*, in2)), for a forward of one's own; ``ops.bilinear`` holds its
    forward and backward. ``device=``: the CPU, as Dense takes it."""

    def __init__(
        self,
        in1_features: int,
        in2_features: int,
        out_features: int,
        bias: bool = True,
        *,
        device: object = None,
        dtype: object = None,
    ) -> None:
        super().__init__()
        check_device(device, "Bilinear")  # PyTorch's factory keyword: the CPU, or refused
        shape = tuple(
            _positive_int(n, f"Bilinear {what}")
            for n, what in (
                (out_features, "out_features"),
                (in1_features, "in1_features"),
                (in2_features, "in2_features"),
            )
        )
        if not isinstance(bias, (bool, np.bool_)):
            raise ConfigError(f"Bilinear bias must be True or False; got {bias!r}")
        dt = resolve_dtype(dtype)
        self.weight = Parameter(np.zeros(shape, dtype=dt))
        self.bias = Parameter(np.zeros(shape[0], dtype=dt)) if bias else None
        self.reset_parameters()

    @property
    def in1_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def in2_features(self) -> int:
        return int(self.weight.shape[2])

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])

    def reset_parameters(self) -> None:
        """W and b drawn again from U(±1/√in1_features), in place, as torch's."""
        bound = 1 / math.sqrt(self.in1_features)
        rng = as_generator(None)
        with no_grad():
            for p in (self.weight, self.bias):
                if p is not None:
                    p[...] = rng.uniform(-bound, bound, size=p.shape).astype(p.dtype)

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        weight, bias = _operand(self.weight), _operand(self.bias)
        for x in (x1, x2):
            if getattr(x, "dtype", weight.dtype) != weight.dtype:
                raise dtype_mismatch("Bilinear", x.dtype, weight.dtype)
        return ops.bilinear(x1, x2, weight, bias)

    def extra_repr(self) -> str:
        return (
            f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
            f"out_features={self.out_features}, bias={self.bias is not None}"
        )


class PairwiseDistance(Module):
    """‖x1 − x2 + eps‖_p over the last dim, as torch's nn.PairwiseDistance(p=2.0,
    eps=1e-6, keepdim=False): a module of two inputs, for a forward of one's own;
    ``ops.pairwise_distance`` composes it from recorded ops (sub, add, norm)."""

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm = ops._finite_setting(p, "PairwiseDistance p") if p != math.inf else p
        self.eps = ops._finite_setting(eps, "PairwiseDistance eps")
        if not isinstance(keepdim, (bool, np.bool_)):
            raise ConfigError(f"PairwiseDistance keepdim must be True or False; got {keepdim!r}")
        self.keepdim = bool(keepdim)

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return ops.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


def standard_scale(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations, computed in float64.

    A column that never changes keeps scale 1: its spread is 0 exactly (np.ptp),
    while its standard deviation may be rounding noise that would blow it up.
    """
    values = np.asarray(X, dtype=np.float64)
    # a variance past float64: inf, refused by Standardize; a sum past it too (values near
    # ±1e308): inf, or NaN where +inf meets -inf; said by the callers, not as RuntimeWarnings
    with np.errstate(over="ignore", invalid="ignore"):
        mean, scale = values.mean(axis=0), values.std(axis=0)
        scale[(np.ptp(values, axis=0) == 0) | (scale == 0)] = 1
    return mean, scale


def _feature(index: int, names: Sequence[str] | None) -> str:
    return repr(names[index]) if names is not None else str(index)


def _check_statistics(
    mean: np.ndarray, scale: np.ndarray, dtype: np.dtype, names: Sequence[str] | None = None
) -> None:
    """Refuse a mean or scale with which X·(1/scale) would give ±inf, or (x − mean)/inf
    every 0, in ``dtype``."""
    with np.errstate(over="ignore", divide="ignore"):
        reciprocal = 1 / scale
    bad = np.flatnonzero(~np.isfinite(scale) | ~np.isfinite(reciprocal) | ~np.isfinite(mean))
    if len(bad):
        j = int(bad[0])
        raise ConfigError(
            f"Standardize: feature {_feature(j, names)}: mean {mean[j]:.3g} and scale "
            f"{scale[j]:.3g} are beyond what {np.dtype(dtype).name} can standardize with"
        )


class Standardize(Module):
    """X ↦ (X − mean) / scale with fixed, saved statistics (not trained)."""

    def __init__(
        self,
        mean: object,
        scale: object,
        *,
        dtype: object = None,
        name: str | None = None,
    ) -> None:
        super().__init__()
        dt = resolve_dtype(dtype)
        given = {"mean": mean, "scale": scale}
        # copies, as a Parameter copies: the caller's arrays, later refilled, changed the
        # model without a word (and past the checks below: a scale of 0 gave ±inf)
        mean = np.array(mean, dtype=dt).reshape(-1)
        scale = np.array(scale, dtype=dt).reshape(-1)
        if mean.shape != scale.shape:
            raise ConfigError(f"Standardize: mean {mean.shape} and scale {scale.shape} differ")
        if np.isnan(mean).any() or np.isnan(scale).any():
            raise ConfigError("Standardize: the mean or scale holds NaN (NaN in the data?)")
        if not np.all(scale > 0):
            raise ConfigError("Standardize: every scale must be > 0")
        _check_statistics(mean, scale, dt)
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)
        self.name = name
        if dt != np.float64:  # statistics given wider: .to("float64") takes them back
            wider = {}
            for key, values in given.items():
                exact = np.array(values, dtype=np.float64).reshape(-1)
                if not np.array_equal(exact.astype(dt), exact):
                    wider[key] = exact
            if wider:
                object.__setattr__(self, "_given_buffers", wider)

    @classmethod
    def fit(
        cls,
        X: object,
        name: str | None = "standardize",
        feature_names: Sequence[str] | None = None,
        dtype: object = None,
    ) -> Standardize:
        """Statistics from training data (see ``standard_scale``): an array, a Tensor, a
        list or a table of numbers. The buffers are in ``dtype``: by default X's own float
        dtype, else float32, as a Tensor's. ``feature_names`` name in a message the column
        its dtype cannot standardize (else its index)."""
        source = X.data if isinstance(X, Tensor) else X
        if not isinstance(source, (np.ndarray, list, tuple)):  # a table, a torch tensor
            source = np.asarray(numbers_from_pandas(source))
        own = getattr(source, "dtype", None)  # (a list has none: float32, as a Tensor's)
        if dtype is None and isinstance(own, np.dtype) and own.kind == "f":
            dtype = own  # ('>f8' too: resolved to the machine's byte order)
        dt = resolve_dtype(dtype)
        X = as_features(source, dt, "Standardize.fit X", check=False)
        mean, scale = standard_scale(X)
        _check_statistics(mean.astype(dt), scale.astype(dt), dt, feature_names)
        # X − mean in X's dtype: 3e38 − (−1e38) is beyond float32, and the output ±inf
        with np.errstate(over="ignore", invalid="ignore"):
            reach = np.max(np.abs(np.asarray(X, np.float64) - mean), axis=0, initial=0.0)
        bad = np.flatnonzero(~(reach <= np.finfo(dt).max))
        if len(bad):
            j = int(bad[0])
            raise ConfigError(
                f"Standardize: feature {_feature(j, feature_names)}: its values minus their "
                f"mean {mean[j]:.3g} reach {reach[j]:.3g}, beyond what {dt.name} holds "
                "(use float64)"
            )
        return cls(mean, scale, dtype=dt, name=name)

    @property
    def in_features(self) -> int:
        mean, scale = self.mean, self.scale
        if mean.ndim != 1 or scale.shape != mean.shape:
            # one value per feature, as the constructor takes them: a mean set since as
            # (n, 1) took row i's mean from it for a batch of n rows, without a word
            raise ShapeError(
                f"{self.label}: mean and scale must be vectors of one value per feature, "
                f"of one length; they have shapes {mean.shape} and {scale.shape}"
            )
        return mean.shape[0]

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise DataError(
                f"{self.label}: needs X with {self.in_features} features; got shape {x.shape}"
            )
        mean, scale = np.asarray(self.mean), np.asarray(self.scale)  # (plain: see plan.py)
        return ops.mul(ops.sub(x, mean), 1.0 / scale)

    def config(self) -> dict[str, Any]:
        refuse_subclass(self, Standardize)
        return {"type": "Standardize", "name": self.name, "features": self.in_features}
