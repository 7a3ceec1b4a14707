"""Sequential: layers applied in order, with the planned stack while it trains.

When a graph is recorded (``loss.backward()`` will follow) and every layer is a
stock one, ``forward`` runs the planned stack (``wxb.nn.plan``): the same
per-layer nodes are recorded (W·X, +b, relu, …) so the graph reads as the
seed draws it, but their arrays live in reused buffers, and the last node's
backward runs the whole δ chain at once, writing each ∂L/∂W where the optimiser
reads it. The hand-written loop then costs what ``fit``'s step costs.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from wxb.errors import ConfigError, TrainingError
from wxb.nn.layers import Activation, Dense, Dropout
from wxb.nn.module import (
    _NATIVE_FLOATS,
    Module,
    _structure_changed,
    class_code,
    same_class_code,
    stock_kind,
    structure_version,
)
from wxb.nn.plan import StackPlan, unplannable_reason
from wxb.ops import backward_reads_of
from wxb.tensor import (
    Tensor,
    is_grad_enabled,
    is_retaining_graph,
    keeping_gradients_apart,
)
from wxb.validation import SparseRows

MAX_PENDING_GRAPHS = 4  # plans kept per model; beyond, graphs are recorded layer by layer


class _Plans:
    """The plans of one Sequential: for recorded graphs (a few may be pending) and
    inference. Each thread has plans of its own, as each PyTorch forward has tensors of
    its own: two threads running one model must not write into the same buffers."""

    def __init__(self, key: tuple) -> None:
        self.key = key  # (layers, parameters, forwards set on instances) they were made for
        self.version = -1  # the structure_version() at which the key was last checked
        self.reason = unplannable_reason(list(key[0]))  # None: the plan computes forward
        # (calls without a graph: backward hooks, which run in none, leave them planned)
        self.inference_reason = unplannable_reason(list(key[0]), inference=True)
        self.code = class_code(key[0])  # the layers' classes' forwards it was checked with
        self._per_thread = threading.local()
        self.grad_lock = threading.RLock()  # this model's training plans, in every thread

    @property
    def training(self) -> list[StackPlan]:
        """This thread's plans for recorded graphs."""
        plans = getattr(self._per_thread, "training", None)
        if plans is None:
            plans = self._per_thread.training = []
        return plans

    @property
    def inference(self) -> StackPlan | None:
        """This thread's plan for calls without a graph (no_grad, predict)."""
        if self.inference_reason is not None:
            return None
        plan = getattr(self._per_thread, "inference", None)
        if plan is None:
            plan = self._per_thread.inference = StackPlan(list(self.key[0]))
        return plan


_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Sequential → _Plans
_HELD_AT_FORK: list[threading.RLock] = []


def _take_grad_locks() -> None:
    """Before fork(): every model's backward lock, so that none is held by a thread the
    child will not have (its planned backward of that model hung for ever). Runs before
    tensor.GRAD_LOCK is taken (registered later), the order a planned backward takes them."""
    for _ in range(100):  # another thread may add a model meanwhile: read them again
        try:
            _HELD_AT_FORK[:] = [plans.grad_lock for plans in list(_PLANS.values())]
            break
        except RuntimeError:
            continue
    for lock in _HELD_AT_FORK:
        lock.acquire()


def _give_grad_locks_back() -> None:
    for lock in _HELD_AT_FORK:
        lock.release()
    _HELD_AT_FORK.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_take_grad_locks,
        after_in_parent=_give_grad_locks_back,
        after_in_child=_give_grad_locks_back,
    )

# A layer's name is its key (unlike PyTorch's numbered keys) and stays with the layer:
# joining two Sequentials (a + b) meets each one's 'dense1'. Say why, and how to go on.
_SAME_NAME_HINT = (
    "a layer keeps the name it was given, or the one its first Sequential gave it "
    "(dense1, relu1, …); name one of them apart, e.g. Dense(…, name='out')"
)


class Sequential(Module):
    """Layers applied in order. Unnamed layers are named by type: dense1, relu1, dense2, …
    (skipping a name a layer given here has already: a nested Sequential's shared layer's).

    ``use_plan = False`` records the graph layer by layer instead of through the
    planned stack (the same numbers, more allocation; tests compare the two).
    """

    use_plan = True
    _children_by_position = True  # PyTorch's state_dict names its layers 0, 1, …

    def __init__(self, *layers: Module, name: str | None = None) -> None:
        """``Sequential(a, b, …)``, or as PyTorch ``Sequential(OrderedDict([('fc1', a),
        …]))``: each key the layer's name (its key in ``state_dict``), as ``add_module``."""
        super().__init__()
        self.name = name
        if len(layers) == 1 and isinstance(layers[0], OrderedDict):
            for index, (key, layer) in enumerate(layers[0].items()):
                if not isinstance(layer, Module):
                    raise ConfigError(
                        f"Sequential: item {index} ({key!r}) is {type(layer).__name__}, not a "
                        "wxb.nn.Module"
                    )
                self._check_name(key, "__init__(OrderedDict)", "module")
                if layer.name not in (None, key) and not any(
                    m is layer for m in self._modules.values()
                ):  # a saved model finds each layer by its name, which is its key
                    raise ConfigError(
                        f"Sequential(OrderedDict): the layer under {key!r} is named "
                        f"{layer.name!r}; give it that key, or no name"
                    )
                self.add_module(key, layer)
            return
        if any(isinstance(layer, dict) for layer in layers):
            raise ConfigError(
                "Sequential: named layers go in one OrderedDict, as PyTorch takes them: "
                "Sequential(OrderedDict([('fc1', layer), …]))"
            )
        counts: dict[str, int] = {}
        placed: dict[int, str] = {}  # id(layer) → its key, for a layer given twice
        # names the layers carry already (a nested Sequential's shared layer, dense1): an
        # unnamed one before it named dense1 too refused a model that runs
        given_names = {layer.name for layer in layers if isinstance(layer, Module) and layer.name}
        for index, layer in enumerate(layers):
            if isinstance(layer, (list, tuple)):  # Keras's form; PyTorch refuses it too
                raise ConfigError(
                    f"Sequential: item {index} is a {type(layer).__name__} of layers; "
                    "Sequential takes the layers themselves, as PyTorch's: "
                    "Sequential(*layers)"
                )
            if not isinstance(layer, Module):
                raise ConfigError(
                    f"Sequential: item {index} is {type(layer).__name__}, not a wxb.nn.Module"
                )
            if id(layer) in placed:  # the same layer again: shared weights, as in PyTorch
                key = f"{placed[id(layer)]}_{index}"
                while key in self._modules or any(m.name == key for m in layers):
                    key += "_"
                setattr(self, key, layer)
                continue
            if layer.name is None:
                kind = type(layer).__name__.lower()
                counts[kind] = counts.get(kind, 0) + 1
                name = f"{kind}{counts[kind]}"
                while name in self._modules or name in given_names:
                    counts[kind] += 1
                    name = f"{kind}{counts[kind]}"
                layer.name = name
            # it would hide the method (model(X) ran it), or the model's own attribute (a
            # layer named 'info' replaced model.info, and fit then failed on it)
            own = layer.name in vars(self) and layer.name not in self._modules
            if hasattr(type(self), layer.name) or own:
                raise ConfigError(
                    f"Sequential: item {index} is named {layer.name!r}, which is "
                    f"Sequential.{layer.name}; give the layer another name"
                )
            if layer.name in self._modules:
                first = list(self._modules).index(layer.name)
                raise ConfigError(
                    f"Sequential: two layers are named {layer.name!r} (items {first} and "
                    f"{index}); {_SAME_NAME_HINT}"
                )
            placed[id(layer)] = layer.name
            setattr(self, layer.name, layer)

    _names_its_layers = True  # model._modules[key] = an unnamed layer: named key (_Table)

    def __setattr__(self, key: str, value: object) -> None:
        """``model.head = Dense(…)`` (PyTorch's way to replace or add a layer): an unnamed
        layer takes its key as its name, as ``model[i] = …`` and ``add_module`` name it (a
        saved model finds each layer by its name: wxb.save refused the model)."""
        if (
            isinstance(value, Module)
            and value.name is None
            and "_modules" in self.__dict__
            and not any(m is value for m in self._modules.values())
        ):
            value.name = key
        super().__setattr__(key, value)

    def __getattr__(self, key: str) -> Any:
        """Only for a name not found: Keras's ``model.add`` named with wxb's way, then
        Module's hints for Keras's and scikit-learn's other model methods. (Not a method:
        a layer named 'add' would then be refused as hiding it.)"""
        if key == "add":
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute 'add'; a layer is added at "
                "the end with model.append(layer), as PyTorch's",
                name=key,
                obj=self,
            )
        return super().__getattr__(key)

    @property
    def layers(self) -> list[Module]:
        return list(self._modules.values())

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, index: int | slice) -> Module:
        """A layer, or for a slice a Sequential of those layers (the same objects), as
        PyTorch's: ``model[:-1]`` runs the network up to its last layer."""
        if isinstance(index, slice):
            return Sequential(*self.layers[index])
        return self.layers[index]

    def __setitem__(self, index: int, layer: Module) -> None:
        """``model[1] = ReLU()``: the layer in that place replaced, as PyTorch's."""
        if not isinstance(layer, Module):
            raise ConfigError(f"Sequential[{index}] = …: {type(layer).__name__} is not a Module")
        key = self._key_at(index)
        if self._modules[key] is layer:  # model[i] = model[i]: as it is
            return
        first = next((k for k, m in self._modules.items() if m is layer and k != key), None)
        if first is not None:  # a layer held at another place: shared (tied), as PyTorch's
            # model[4] = model[2]; under a key of its own, as the constructor keys a layer
            # given twice (its name is its first place's: it could take neither)
            place = list(self._modules).index(key)
            new_key = f"{first}_{place}"
            while new_key in self._modules and new_key != key:  # (key itself goes below)
                new_key += "_"
            items = [(new_key, layer) if k == key else (k, m) for k, m in self._modules.items()]
            delattr(self, key)
            setattr(self, new_key, layer)
            self._modules.clear()  # (in the replaced layer's place)
            self._modules.update(items)
            _structure_changed()
            return
        if layer.name is None:  # named after its place, as the constructor names layers
            layer.name = key
        elif layer.name != key:  # a saved model finds each layer by its name
            raise ConfigError(
                f"Sequential[{index}] = …: the layer is named {layer.name!r} but its place is "
                f"{key!r}; give it that name, or none"
            )
        setattr(self, key, layer)

    def __delitem__(self, index: int | slice) -> None:
        keys = list(self._modules)[index] if isinstance(index, slice) else [self._key_at(index)]
        for key in keys:
            delattr(self, key)

    def _place(self, layer: Module, where: str) -> str:
        """The key ``layer`` goes under: its name (named by type if unnamed), or for a
        layer there already (shared weights, as the constructor takes it) a key of its own."""
        if not isinstance(layer, Module):
            raise ConfigError(f"Sequential.{where}: {type(layer).__name__} is not a Module")
        if any(m is layer for m in self._modules.values()):
            key = f"{layer.name}_{len(self._modules)}"
            while key in self._modules:
                key += "_"
            return key
        if layer.name is None:
            kind = type(layer).__name__.lower()
            count = 1
            while f"{kind}{count}" in self._modules:
                count += 1
            layer.name = f"{kind}{count}"
        if layer.name in self._modules:
            raise ConfigError(
                f"Sequential.{where}: a layer named {layer.name!r} is there already; "
                f"{_SAME_NAME_HINT}"
            )
        if hasattr(type(self), layer.name) or layer.name in vars(self):
            raise ConfigError(
                f"Sequential.{where}: a layer named {layer.name!r} would hide the model's own "
                f"{layer.name!r}; give the layer another name"
            )
        return layer.name

    def append(self, layer: Module) -> Sequential:
        """The layer added at the end (named by type if unnamed), as PyTorch's."""
        setattr(self, self._place(layer, "append"), layer)
        return self

    def extend(self, layers: Iterable[Module]) -> Sequential:
        """Each layer appended in turn, as PyTorch's."""
        for layer in list(layers):  # (a Sequential extended by itself: its layers as they were)
            self.append(layer)
        return self

    def insert(self, index: int, layer: Module) -> Sequential:
        """The layer placed before ``index`` (named by type if unnamed), as PyTorch's."""
        size = len(self._modules)
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise ConfigError(f"Sequential.insert: an index is an integer; got {index!r}")
        if not -size <= index <= size:
            raise IndexError(f"Sequential.insert index {index} out of range for {size} layers")
        key = self._place(layer, "insert")
        setattr(self, key, layer)  # at the end (or where a layer of that name was set to None)
        items = [(k, m) for k, m in self._modules.items() if k != key]
        items.insert(index + size if index < 0 else index, (key, layer))
        self._modules.clear()
        self._modules.update(items)
        _structure_changed()  # the order changed after the assignment's own bump
        return self

    def pop(self, index: int | slice) -> Module:
        """The layer (or for a slice, a Sequential of them) at ``index``, taken out."""
        taken = self[index]
        del self[index]
        return taken

    def add_module(self, name: str, module: Module | None) -> None:
        """As Module's: a new name goes at the end. A layer's name is its key (a saved
        model finds each layer by its name): an unnamed one takes ``name``."""
        if isinstance(module, Module) and not any(m is module for m in self._modules.values()):
            if module.name is not None and module.name != name:
                raise ConfigError(
                    f"Sequential.add_module({name!r}, …): the layer is named {module.name!r}; "
                    "give it that name, or none"
                )
            self._check_name(name, "add_module", "module")  # before the layer is named
            module.name = name
        super().add_module(name, module)

    def __iadd__(self, layers: Iterable[Module]) -> Sequential:
        return self.extend(layers)

    def __add__(self, other: Sequential) -> Sequential:
        """A new Sequential of both's layers (the same objects), as PyTorch's; layers of
        one name in both are refused, as the constructor refuses them."""
        if not isinstance(other, Sequential):
            return NotImplemented
        return Sequential(*self.layers, *other.layers)

    def _key_at(self, index: int) -> str:
        keys = list(self._modules)
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise ConfigError(f"Sequential: an index is an integer; got {index!r}")
        if not -len(keys) <= index < len(keys):
            raise IndexError(f"Sequential index {index} out of range for {len(keys)} layers")
        return keys[index]

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            x = self.as_input(x)
        if isinstance(x, SparseRows) and self.use_plan and not is_grad_enabled():
            # CSR rows (model(X_sparse) under no_grad) to the inference plan's first
            # Dense; with a graph, through the layers: the first Dense's own sparse product
            plan = self._plans().inference
            out = plan.infer(x.matrix) if plan is not None and plan.takes_sparse() else None
            if out is not None:
                return Tensor.of_array(out)
        if self.use_plan and isinstance(x, Tensor) and not x.requires_grad:
            # (the planned backward writes .grad itself: not where gradients go apart)
            if is_grad_enabled() and not keeping_gradients_apart():
                plan = self._free_plan()
                if plan is not None:
                    rows = plan.rows(x.data)  # (N, 28, 28) through a Flatten in front
                    if plan.fits(rows):
                        return _record(plan, x if rows is x.data else Tensor.of_array(rows))
            elif not is_grad_enabled():  # inference: straight through, no graph
                plan = self._plans().inference
                if plan is not None:
                    out = plan.infer(plan.rows(x.data))
                    if out is not None:
                        return Tensor.of_array(out)
        for layer in self._modules.values():  # layer by layer (also what raises the errors)
            x = layer(x)
        return x

    def _rows_forward(self, X: np.ndarray) -> np.ndarray:
        # predict's rows straight to the inference plan, where forward would take them
        # there: the call and the Tensors around it cost as much as a one-row product
        if (
            self.use_plan
            # Sequential's own forward and __call__, no hooks (its __call__ runs them)
            and stock_kind(self, (Sequential,)) is Sequential
            and X.dtype in _NATIVE_FLOATS
        ):
            plan = self._plans().inference
            if plan is not None:
                out = plan.infer(X)
                if out is not None:
                    return out
        return super()._rows_forward(X)

    def _looks_up_ids(self) -> bool:
        if self._own_forward() or not self._modules:
            return False
        first = next(iter(self._modules.values()))
        return isinstance(first, Module) and first._looks_up_ids()

    def _takes_sparse_rows(self) -> bool:
        # this forward, no hooks, and a first layer that takes CSR rows (a Dense)
        if self._own_forward() or self._has_hooks() or not self._modules:
            return False
        first = next(iter(self._modules.values()))
        return isinstance(first, Module) and first._takes_sparse_rows()

    def _sparse_forward(self, X: object) -> np.ndarray | None:
        # CSR rows to the inference plan's first Dense, where predict's rows go there
        if (
            self.use_plan
            and stock_kind(self, (Sequential,)) is Sequential
            and X.dtype in _NATIVE_FLOATS
        ):
            plan = self._plans().inference
            if plan is not None and plan.takes_sparse():
                return plan.infer(X)
        return None

    def _rows_evaluating(self, X: np.ndarray) -> np.ndarray | None:
        # predict's checked rows on this thread's lean inference, in eval mode without
        # the blocks, where it holds (StackPlan.infer_evaluating); else None
        if self.use_plan and stock_kind(self, (Sequential,)) is Sequential:
            plan = self._plans().inference
            if plan is not None and not type(self)._own_modes:  # (layers': no lean plan)
                return plan.infer_evaluating(X)
        return None

    def why_not_planned(self) -> str | None:
        """None when calls of this model run the planned stack; else the reason they go
        layer by layer (the numbers are the same; the planned stack is faster). A class
        with a forward or __call__ of its own, or hooks on the model, answer as fit's
        engine_reason does: its calls run that code, and fit records the graph."""
        if not self.use_plan:
            return "use_plan is False"
        return own_code_reason(self) or self._plans().reason

    def _plans(self) -> _Plans:
        """This model's plans, made again when its layers or parameters were replaced."""
        plans = _PLANS.get(self)
        version = structure_version()
        if plans is not None and plans.version == version and same_class_code(plans.code):
            return plans
        key = plan_key(self)
        layers = key[0]
        if plans is None or not same_plan_key(plans.key, key):
            plans = _PLANS[self] = _Plans(key)
        else:  # the same layers and parameters, perhaps in other dtypes now (.to()), or
            # a layer's class given another forward (MyDense.forward = …)
            plans.reason = unplannable_reason(list(layers))
            plans.inference_reason = unplannable_reason(list(layers), inference=True)
            plans.code = class_code(layers)
        plans.version = version
        return plans

    def _free_plan(self) -> StackPlan | None:
        """A plan whose buffers no pending graph holds, for a stack of stock layers."""
        plans = self._plans()
        if plans.reason is not None:
            return None
        for plan in plans.training:
            if not plan.pending():
                return plan
        if len(plans.training) < MAX_PENDING_GRAPHS:
            # one lock for the backwards of this model's graphs, whichever thread runs them
            plans.training.append(StackPlan(list(self._modules.values()), plans.grad_lock))
            return plans.training[-1]
        return None  # many graphs are waiting for backward(): record this one layer by layer

    def config(self) -> dict[str, Any]:
        return {
            "type": "Sequential",
            "name": self.name,
            "layers": [layer.config() for layer in self.layers],
        }


def own_code_reason(model: Sequential) -> str | None:
    """Why ``model`` itself is not run as Sequential's own forward (a forward or
    __call__ of its class or instance, forward or backward hooks), or None."""
    if model._has_backward_hooks():  # (a stock kind still: diagrams and ONNX see its forward)
        return "the model has backward hooks, which run only through its calls"
    if stock_kind(model, (Sequential,)) is Sequential:
        return None
    if "forward" in vars(model):  # model.forward = … on the instance
        return "the model was given a forward of its own"
    if model._has_hooks():  # (the planned step calls the plan, never the model)
        return "the model has forward hooks, which run only through its calls"
    return (
        f"{type(model).__name__} overrides forward or __call__ (or its class was "
        "given another since: Sequential.forward = …)"
    )


def plan_key(model: Sequential) -> tuple[tuple, tuple, tuple, tuple]:
    """What a plan of ``model`` was made for: its layers, their parameters and buffers
    (a Standardize's statistics given another width change the width the plan takes), and
    the forwards set on the model or a layer (``layer.forward = …``); see same_plan_key."""
    layers = tuple(model._modules.values())
    params = tuple(p for m in layers for p in m._parameters.values())
    buffers = tuple(a for m in layers for a in m._buffers.values())
    own_forwards = tuple(vars(m).get("forward") for m in (model, *layers))
    return layers, params, buffers, own_forwards


def same_plan_key(a: tuple, b: tuple) -> bool:
    """Two plan keys of the same objects (a plan made for one runs the other)."""
    return all(map(_same_objects, a, b))


def _same_objects(a: tuple, b: tuple) -> bool:
    """By identity: a tuple's == would compare parameters element-wise, as tensors compare."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def layers_in_order(model: Module) -> list[Module]:
    """The layers ``model`` runs, in order, nested Sequentials opened up; a module that is
    not a Sequential running Sequential's own forward (a subclass with a forward of its
    own, any other Module) is one layer: its parts in order would compute something else."""
    if stock_kind(model, (Sequential,)) is Sequential:
        return [leaf for layer in model.layers for leaf in layers_in_order(layer)]
    return [model]


def _no_gradient(count: int):
    """Backward of a node inside the planned stack: the last node does the whole chain."""
    nothing = (None,) * count
    return lambda g: nothing


_NO_GRADIENT = {count: _no_gradient(count) for count in (1, 2)}  # a node's inputs: x (and W or b)


_NONE_FROZEN: frozenset[int] = frozenset()


def _record(plan: StackPlan, x: Tensor) -> Tensor:
    """Run the plan and record its nodes; the last one's backward runs ``plan.backward``."""
    plan.forward(x.data, fresh_output=True)
    # parameters frozen now get no gradient from this graph if unfrozen before its backward
    frozen = _NONE_FROZEN
    for p in plan.params:  # a plain loop: the usual answer is none
        if not p.requires_grad:
            frozen = frozenset(id(q) for q in plan.params if not q.requires_grad)
            break
    steps = []  # (array, op, extra inputs), in the order the layers' own ops record them
    for (i, layer, kind, _), data in zip(plan.program, plan.results, strict=True):
        if kind is Dense:
            steps.append((data, "W·X", (layer.weight,)))
            if layer.bias is not None:
                steps.append((data, "+b", (layer.bias,)))
        elif kind is Activation:
            steps.append((data, layer.kernel.name, ()))
        elif kind is Dropout:
            if layer.training and layer.p > 0:
                steps.append((data, "dropout", ()))
        else:  # Standardize: (X − mean) ⊙ (1/scale), as its graph ops record it
            steps.append((data, "-", (Tensor(layer.mean),)))
            steps.append((data, "⊙", (Tensor(plan.factors[i]),)))
    if not steps:  # e.g. only eval-mode Dropout: the output is the input
        return Tensor(plan.output)
    token = object()  # this graph's claim on the plan's buffers
    node, last = x, len(steps) - 1
    for j, (data, op, extra) in enumerate(steps):
        inputs = (node, *extra)
        # as the graph's W·X: X is read for ∂L/∂W, W for the δ of what needs one (a step
        # on the first layer's W, with X data, leaves what the backward reads as it was);
        # + b reads neither
        reads = (extra[0].requires_grad, node.requires_grad) if op == "W·X" else op != "+b"
        if j == last:  # the output: a fresh array, and the whole backward
            # a last f(Z) whose backward reads A (σ, tanh, ReLU, softmax), as the graph's:
            # GELU's, SiLU's, ELU's read Z alone, and torch lets their output change
            last_layer = plan.layers[-1]
            reads_output = plan.program[-1][2] is Activation and "a" in backward_reads_of(
                last_layer.kernel
            )
            node = Tensor.from_op(
                plan.output,
                op,
                inputs,
                _planned_backward(plan, token, inputs, frozen),
                reads_output,
                reads,
            )
        else:
            rule = _NO_GRADIENT.get(len(inputs)) or _no_gradient(len(inputs))
            node = Tensor.from_op(data, op, inputs, rule, reads_inputs=reads)
    if node.requires_grad:
        plan.claim(node, token)
    return node


def _planned_backward(plan: StackPlan, token: object, inputs: tuple, frozen: frozenset[int]):
    nothing = (None,) * len(inputs)

    def backward(g: np.ndarray) -> tuple[None, ...]:
        if not plan.claimed_by(token):
            raise TrainingError(
                "backward() through this graph a second time: its buffers are released after "
                "the first backward (as PyTorch frees a graph); run the forward again"
                if plan.released_by(token)
                else "backward() through a Sequential whose buffers a later forward has reused: "
                "call backward() once per forward, before the model runs again on a batch"
            )
        # autograd.grad after a planned forward: into this thread's store, .grad untouched
        plan.backward(g, frozen=frozen, apart=keeping_gradients_apart())
        if not is_retaining_graph():  # backward(retain_graph=True) may run it again
            plan.release()
        return nothing

    return backward
