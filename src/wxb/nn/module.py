"""Module, Parameter and Sequential: the names PyTorch users already know."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from wxb.backend import resolve_dtype, xp
from wxb.errors import ConfigError, ShapeError
from wxb.tensor import Tensor, no_grad
from wxb.validation import as_features


class Parameter(Tensor):
    """A tensor the optimiser updates: ``.data`` and ``.grad`` are backend arrays.

    ``grad_buffer`` is where the optimiser would like ∂L/∂p written (a view of its
    flat gradient buffer); the planned path writes there and sets ``.grad`` to it.
    """

    __slots__ = ("grad_buffer",)

    def __init__(self, data: object, *, dtype: object = None, name: str | None = None) -> None:
        super().__init__(data, requires_grad=True, dtype=dtype, name=name)
        self.data = self.data.copy()  # own the memory: updates must not reach the caller's array
        self.grad_buffer: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


_structure_version = 0  # grows whenever any module gains or loses a parameter or sub-module


def structure_version() -> int:
    """A number that changes whenever some module's parameters or sub-modules change
    (cached plans compare it instead of walking the model on every call)."""
    return _structure_version


class Module:
    """Base of layers and models. Parameters and sub-modules are plain attributes.

    Each module may also hold *buffers*: arrays saved with the model but not
    trained (e.g. the mean and scale of ``Standardize``).
    """

    training: bool = True
    name: str | None = None

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_buffers", {})
        self.training = True
        self.name = None
        self.info: dict[str, Any] = {}

    def __setattr__(self, key: str, value: object) -> None:
        global _structure_version
        if "_parameters" not in self.__dict__:
            raise ConfigError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        for table in (self._parameters, self._modules, self._buffers):
            if table.pop(key, None) is not None:
                _structure_version += 1
        if isinstance(value, (Parameter, Module)):
            _structure_version += 1
        if isinstance(value, Parameter):
            self._parameters[key] = value
        elif isinstance(value, Module):
            self._modules[key] = value
        object.__setattr__(self, key, value)

    def register_buffer(self, key: str, array: np.ndarray) -> None:
        self._buffers[key] = array
        object.__setattr__(self, key, array)

    # -- what the model holds --------------------------------------------------------
    def _module_list(self) -> list[Module]:
        """Every module of the tree (self first), cached until the structure changes."""
        cached = self.__dict__.get("_modules_cache")
        if cached is None or cached[0] != _structure_version:
            cached = (_structure_version, [m for _, m in self.named_modules()])
            object.__setattr__(self, "_modules_cache", cached)
        return cached[1]

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for key, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{key}" if prefix else key)

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Each parameter once, under its first name (a shared one is not stepped twice)."""
        seen: set[int] = set()
        for path, module in self.named_modules():
            for key, param in module._parameters.items():
                if id(param) not in seen:
                    seen.add(id(param))
                    yield (f"{path}.{key}" if path else key), param

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        for path, module in self.named_modules():
            for key, array in module._buffers.items():
                yield (f"{path}.{key}" if path else key), array

    def num_parameters(self) -> int:
        return int(sum(p.data.size for p in self.parameters()))

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    # -- modes and dtype ----------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for _, module in self.named_modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def to(self, dtype: object) -> Module:
        """Cast every parameter and buffer to ``dtype`` (float32 or float64), in place."""
        target = resolve_dtype(dtype)
        for _, module in self.named_modules():
            for p in module._parameters.values():
                p.data = p.data.astype(target)
                p.grad = None
            for key, array in list(module._buffers.items()):
                module.register_buffer(key, array.astype(target))
        return self

    def double(self) -> Module:
        return self.to("float64")

    def float(self) -> Module:
        return self.to("float32")

    @property
    def dtype(self) -> np.dtype:
        for module in self._module_list():
            for p in module._parameters.values():
                return p.dtype
        return resolve_dtype(None)

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameter and buffer arrays by dotted name (copies)."""
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        state.update({name: a.copy() for name, a in self.named_buffers()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into the existing parameters and buffers; shapes must match exactly."""
        own = dict(self.named_parameters())
        buffers = {
            f"{path}.{key}" if path else key: (module, key)
            for path, module in self.named_modules()
            for key in module._buffers
        }
        expected = set(own) | set(buffers)
        if set(state) != expected:
            missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
            raise ShapeError(f"state does not fit the model: missing {missing}, unexpected {extra}")
        for name, array in state.items():
            array = np.asarray(array)
            if name in own:
                target_shape = own[name].shape
            else:
                module, key = buffers[name]
                target_shape = module._buffers[key].shape
            if array.shape != target_shape:
                raise ShapeError(f"{name}: shape {array.shape} does not fit {target_shape}")
            if name in own:
                np.copyto(own[name].data, array, casting="same_kind")
            else:
                module, key = buffers[name]
                np.copyto(module._buffers[key], array, casting="same_kind")

    # -- calling -------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} defines no forward()")

    def __call__(self, x: object) -> Tensor:
        if not isinstance(x, Tensor):
            x = Tensor(np.asarray(x, dtype=self.dtype))
        return self.forward(x)

    @contextmanager
    def evaluating(self) -> Iterator[Module]:
        """Eval mode inside the block (Dropout off); every module's own mode back after it."""
        modules = self._module_list()
        modes = [m.training for m in modules]
        if any(modes):
            self.eval()
        try:
            yield self
        finally:
            for module, training in zip(modules, modes, strict=True):
                object.__setattr__(module, "training", training)

    @contextmanager
    def gradients_set_aside(self) -> Iterator[Module]:
        """Parameters start the block without gradients and get theirs back after it: a
        look at ∂L/∂W (explain, diagnostics) leaves a training step's gradients alone."""
        params = self.parameters()
        saved = [p.grad for p in params]
        for p in params:
            p.grad = None
        try:
            yield self
        finally:
            for p, grad in zip(params, saved, strict=True):
                p.grad = grad

    def predict(self, X: object, batch_size: int = 4096) -> np.ndarray:
        """Outputs for rows X as a NumPy array, in eval mode, without recording a graph."""
        X = as_features(X, self.dtype)
        with self.evaluating(), no_grad():
            parts = [self(Tensor(X[i : i + batch_size])).data for i in range(0, len(X), batch_size)]
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts) if parts else xp.empty((0,), dtype=self.dtype)

    # -- description ---------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """What rebuilds this module (without its weights); saved in model files."""
        raise ConfigError(f"{type(self).__name__} cannot be saved: it defines no config()")

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = list(self._modules.items())
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        lines = [f"  ({key}): {child!r}".replace("\n", "\n  ") for key, child in children]
        return head + "\n" + "\n".join(lines) + "\n)"

    @property
    def label(self) -> str:
        """How errors and explanations refer to this module: its name, or its type."""
        return f"{type(self).__name__} '{self.name}'" if self.name else type(self).__name__


def input_width(model: Module) -> int | None:
    """Features the model takes: from the first module that says (``in_features``)."""
    for _, module in model.named_modules():
        if hasattr(module, "in_features"):
            return int(module.in_features)
    return None


def output_width(model: Module) -> int | None:
    """Outputs the model gives: from the last module that says (``out_features``)."""
    for _, module in reversed(list(model.named_modules())):
        if hasattr(module, "out_features"):
            return int(module.out_features)
    return None
