"""``ModuleList`` and ``ModuleDict``, ``ParameterList`` and ``ParameterDict``: modules
or parameters held by index or by name inside a module of one's own, as PyTorch's.

A plain Python list of modules or parameters on a module is not registered (nor in
PyTorch): they would not reach ``parameters()``, the optimiser, ``state_dict()`` or
``eval()``. ``Module`` refuses one for that reason and names these classes.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from wxb.errors import ConfigError
from wxb.nn.module import Module, Parameter
from wxb.tensor import Tensor


class ModuleList(Module):
    """Modules by index ("0", "1", … in ``state_dict``, as PyTorch names them); no
    forward of its own: the module holding it calls them."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _checked(self, module: object, where: str) -> Module:
        if not isinstance(module, Module):
            raise ConfigError(f"ModuleList {where}: {type(module).__name__} is not a wxb.nn.Module")
        return module

    def _index(self, index: int) -> int:
        index = operator.index(index)  # an int, or NumPy's: a TypeError for anything else
        size = len(self)
        if not -size <= index < size:
            raise IndexError(f"ModuleList index {index} out of range for {size} modules")
        return index % size

    def _renumber(self, modules: list[Module]) -> None:
        for key in list(self._modules):
            delattr(self, key)
        for index, module in enumerate(modules):
            setattr(self, str(index), module)

    def append(self, module: Module) -> ModuleList:
        setattr(self, str(len(self)), self._checked(module, "append"))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        modules = list(self)
        modules.insert(index, self._checked(module, "insert"))
        self._renumber(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def __getitem__(self, index: int | slice) -> Any:
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(modules[index])
        return modules[self._index(index)]

    def __setitem__(self, index: int, module: Module) -> None:
        setattr(self, str(self._index(index)), self._checked(module, "item"))

    def __delitem__(self, index: int | slice) -> None:
        modules = list(self)
        del modules[index if isinstance(index, slice) else self._index(index)]
        self._renumber(modules)

    def pop(self, index: int | slice) -> Any:
        """The module (or for a slice, a ModuleList of them) at ``index``, taken out."""
        taken = self[index]
        del self[index]
        return taken

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        """A new ModuleList of both's modules (the same objects), as PyTorch's."""
        return ModuleList([*self, *other])

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        raise ConfigError(
            "a ModuleList has no forward: call its modules from the module that holds it "
            "(for layers applied in order, use Sequential)"
        )


class _NamedEntries:
    """A dict's reading and deleting over a container's table of named entries
    (ModuleDict's modules, ParameterDict's parameters), in its order, as PyTorch's."""

    _table_name: str

    def _table(self) -> dict:
        return getattr(self, self._table_name)

    def __getitem__(self, key: str) -> Any:
        table = self._table()
        if key not in table:
            raise KeyError(key)
        return table[key]

    def __delitem__(self, key: str) -> None:
        if key not in self._table():
            raise KeyError(key)
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._table())

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._table()))

    def __contains__(self, key: object) -> bool:
        return key in self._table()

    def keys(self) -> list[str]:
        return list(self._table())

    def values(self) -> list[Any]:
        return list(self._table().values())

    def items(self) -> list[tuple[str, Any]]:
        return list(self._table().items())


class ModuleDict(_NamedEntries, Module):
    """Modules by name, in the order they were added ("encoder.weight" … in
    ``state_dict``, as PyTorch names them); no forward of its own: the module holding it
    calls them. A name must be one an attribute can take (not ``keys``, no dots), as in
    PyTorch."""

    _table_name = "_modules"

    def __init__(
        self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None
    ) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Add or replace modules from a mapping (another ModuleDict too, as PyTorch's),
        or from (name, module) pairs."""
        pairs = modules.items() if isinstance(modules, (Mapping, ModuleDict)) else modules
        if isinstance(pairs, Module) or not isinstance(pairs, Iterable):  # (as PyTorch's)
            raise ConfigError(
                "ModuleDict.update takes a mapping of names to modules, or (name, module) "
                f"pairs; got {type(modules).__name__}"
            )
        for index, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ConfigError(
                    f"ModuleDict.update: item {index} is not a (name, module) pair; got "
                    f"{type(pair).__name__}"
                )
            self[pair[0]] = pair[1]

    def pop(self, key: str) -> Module:
        module = self[key]
        del self[key]
        return module

    def clear(self) -> None:
        for key in list(self._modules):
            delattr(self, key)

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        raise ConfigError(
            "a ModuleDict has no forward: call its modules from the module that holds it"
        )


def _as_parameter(value: object, where: str) -> Parameter:
    """A Parameter as given; an array or Tensor made one (as PyTorch's containers wrap a
    tensor), of its values."""
    if isinstance(value, Parameter):
        return value
    if isinstance(value, (np.ndarray, Tensor)):
        return Parameter(value.data if isinstance(value, Tensor) else value)
    raise ConfigError(
        f"{where}: {type(value).__name__} is not a wxb.nn.Parameter (or an array to make one)"
    )


class ParameterList(Module):
    """Parameters by index ("0", "1", … in ``state_dict``, as PyTorch names them), for the
    module holding it to use (``x @ self.weights[i]``); arrays given become Parameters."""

    def __init__(self, values: Iterable[object] | None = None) -> None:
        super().__init__()
        if values is not None:
            self.extend(values)

    def _index(self, index: int) -> int:
        index = operator.index(index)
        size = len(self)
        if not -size <= index < size:
            raise IndexError(f"ParameterList index {index} out of range for {size} parameters")
        return index % size

    def append(self, value: object) -> ParameterList:
        setattr(self, str(len(self)), _as_parameter(value, "ParameterList.append"))
        return self

    def extend(self, values: Iterable[object]) -> ParameterList:
        if isinstance(values, (np.ndarray, Tensor)) or not isinstance(values, Iterable):
            raise ConfigError(
                "ParameterList takes an iterable of parameters (or arrays); got "
                f"{type(values).__name__} (one parameter: ParameterList([p]))"
            )
        for value in list(values):
            self.append(value)
        return self

    def __iadd__(self, values: Iterable[object]) -> ParameterList:
        return self.extend(values)

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(list(self._parameters.values()))

    def __getitem__(self, index: int | slice) -> Any:
        values = list(self._parameters.values())
        if isinstance(index, slice):
            return ParameterList(values[index])
        return values[self._index(index)]

    def __setitem__(self, index: int, value: object) -> None:
        setattr(self, str(self._index(index)), _as_parameter(value, "ParameterList item"))

    def extra_repr(self) -> str:
        return ", ".join(f"({i}): {p!r}" for i, p in enumerate(self))

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        raise ConfigError(
            "a ParameterList has no forward: use its parameters in the module that holds it"
        )


class ParameterDict(_NamedEntries, Module):
    """Parameters by name, in the order they were added ("scales.a" … in ``state_dict``, as
    PyTorch names them; a plain dict's sorted by name, as PyTorch adds them), for the
    module holding it to use; arrays given become Parameters. A name must be one an
    attribute can take, as in ModuleDict."""

    _table_name = "_parameters"

    def __init__(
        self, values: Mapping[str, object] | Iterable[tuple[str, object]] | None = None
    ) -> None:
        super().__init__()
        if values is not None:
            self.update(values)

    def __setitem__(self, key: str, value: object) -> None:
        self.register_parameter(key, _as_parameter(value, f"ParameterDict[{key!r}]"))

    def update(self, values: Mapping[str, object] | Iterable[tuple[str, object]]) -> None:
        """As PyTorch's: an OrderedDict's, a ParameterDict's or pairs' order is kept, and a
        plain dict's entries are added sorted by name (so are its parameters(), which an
        optimiser's state numbers, and parameters_to_vector's order)."""
        pairs = values.items() if isinstance(values, (Mapping, ParameterDict)) else values
        if isinstance(values, Mapping) and not isinstance(values, OrderedDict):
            pairs = sorted(values.items(), key=lambda pair: pair[0])
        if isinstance(pairs, (Module, np.ndarray, Tensor)) or not isinstance(pairs, Iterable):
            raise ConfigError(
                "ParameterDict.update takes a mapping of names to parameters, or (name, "
                f"parameter) pairs; got {type(values).__name__}"
            )
        for index, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ConfigError(
                    f"ParameterDict.update: item {index} is not a (name, parameter) pair; got "
                    f"{type(pair).__name__}"
                )
            self[pair[0]] = pair[1]

    def pop(self, key: str) -> Parameter:
        value = self[key]
        del self[key]
        return value

    def get(self, key: str, default: object = None) -> object:
        return self._parameters.get(key, default)

    # torch's dict methods, with its semantics: a copy holds the same Parameter objects
    def setdefault(self, key: str, default: object = None) -> Parameter:
        if key not in self:
            self[key] = default
        return self[key]

    def popitem(self) -> tuple[str, Parameter]:
        """The last entry added, taken out (a KeyError when empty, as a dict's)."""
        if not self._parameters:
            raise KeyError("popitem(): ParameterDict is empty")
        key = next(reversed(self._parameters))
        return key, self.pop(key)

    def copy(self) -> ParameterDict:
        """A new ParameterDict of the same Parameter objects (shallow), in this order."""
        return ParameterDict(OrderedDict(self._parameters))

    def fromkeys(self, keys: Iterable[str], default: object = None) -> ParameterDict:
        """A new ParameterDict of ``keys``, each holding ``default`` (one Parameter
        shared, as torch's)."""
        return ParameterDict([(key, default) for key in keys])

    def __reversed__(self) -> Iterator[str]:
        return reversed(list(self._parameters))

    def __or__(self, other: ParameterDict) -> ParameterDict:
        merged = self.copy()
        merged.update(other)
        return merged

    def __ror__(self, other: ParameterDict) -> ParameterDict:
        merged = other.copy()
        merged.update(self)
        return merged

    def __ior__(self, other: ParameterDict) -> ParameterDict:
        self.update(other)
        return self

    def clear(self) -> None:
        for key in list(self._parameters):
            delattr(self, key)

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        raise ConfigError(
            "a ParameterDict has no forward: use its parameters in the module that holds it"
        )
