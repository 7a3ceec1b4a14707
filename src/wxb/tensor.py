"""Tensor and the tape: the computational graph of the seed.

A Tensor wraps a backend array. Every primitive in ``wxb.ops`` that reads a
tensor which requires a gradient records itself on the result: the operation's
name, its input tensors and a small closure, its backward rule, that maps
∂L/∂output to ∂L/∂input for each input. ``loss.backward()`` sorts that graph
topologically and walks it in reverse, which is the chain rule of the seed:
∂L/∂W⁽ˡ⁾ = ∂L/∂A⁽ᴸ⁾ · Π ∂A⁽ᵏ⁾/∂Z⁽ᵏ⁾ · ∂Z⁽ᵏ⁾/∂W⁽ᵏ⁾.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from wxb.backend import resolve_dtype, xp
from wxb.errors import ShapeError

BackwardRule = Callable[[np.ndarray], Sequence["np.ndarray | None"]]

_grad_enabled = True


@contextmanager
def no_grad() -> Iterator[None]:
    """Run operations without recording them (inference, evaluation)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    return _grad_enabled


class Tensor:
    """An array plus, when it came out of an operation, the record of that operation."""

    __slots__ = (
        "__weakref__",
        "_backward",
        "data",
        "grad",
        "inputs",
        "name",
        "op",
        "requires_grad",
        "retains_grad",
    )

    def __init__(
        self,
        data: object,
        requires_grad: bool = False,
        *,
        dtype: object = None,
        name: str | None = None,
    ) -> None:
        if isinstance(data, Tensor):
            data = data.data
        if dtype is None and isinstance(data, np.ndarray) and data.dtype.kind == "f":
            array = data
        else:
            array = xp.asarray(data, dtype=resolve_dtype(dtype))
        self.data: np.ndarray = array
        self.grad: np.ndarray | None = None
        self.requires_grad = requires_grad
        self.retains_grad = False
        self.name = name
        self.op: str | None = None
        self.inputs: tuple[Tensor, ...] = ()
        self._backward: BackwardRule | None = None

    # -- construction by operations -------------------------------------------------
    @classmethod
    def from_op(
        cls, data: np.ndarray, op: str, inputs: tuple[Tensor, ...], backward: BackwardRule
    ) -> Tensor:
        """The result of primitive ``op``; records the graph edge if any input needs it."""
        out = cls.__new__(cls)
        out.data = data
        out.grad = None
        out.retains_grad = False
        out.name = None
        out.op = op
        needs = _grad_enabled and any(t.requires_grad for t in inputs)
        out.requires_grad = needs
        out.inputs = inputs if needs else ()
        out._backward = backward if needs else None
        return out

    # -- array-like surface -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        if self.data.size != 1:
            raise ShapeError(f"item() needs a tensor with one element; got shape {self.shape}")
        return float(self.data.item())

    def __float__(self) -> float:
        return self.item()

    def detach(self) -> Tensor:
        return Tensor(self.data)

    def retain_grad(self) -> Tensor:
        """Keep ∂L/∂self in ``.grad`` after backward, though self is not a leaf."""
        self.retains_grad = True
        return self

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        op = f", op={self.op}" if self.op else ""
        return f"Tensor(shape={self.shape}, dtype={self.dtype}{op}{grad})"

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    # Arithmetic operators (@ + - * / .T .sum() .mean()) are attached by wxb.ops,
    # which builds on this module: a module knows only those beneath it.

    # -- the reverse walk -------------------------------------------------------------
    def backward(self, grad: object = None) -> None:
        """Fill ``.grad`` of every leaf (and retained) tensor that this one depends on.

        Leaf gradients accumulate, as in PyTorch: call ``zero_grad()`` between steps.
        """
        if not self.requires_grad:
            raise ShapeError(
                "backward() on a tensor that does not require grad: no parameter "
                "(or input with requires_grad=True) went into it"
            )
        if grad is None:
            if self.data.size != 1:
                raise ShapeError(
                    f"backward() without a gradient needs a scalar loss; got shape {self.shape}"
                )
            seed = xp.ones_like(self.data)
        else:
            seed = xp.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
            if seed.shape != self.shape:
                raise ShapeError(
                    f"backward(grad): grad has shape {seed.shape}, tensor has {self.shape}"
                )
        grads: dict[int, np.ndarray] = {id(self): seed}
        # How often each gradient array was handed out: a leaf may keep an array as
        # its .grad without a copy only if nothing else holds it (or a view of it).
        handed: dict[int, int] = {id(seed): 2}  # the seed may be the caller's own array
        for node in reversed(topological_order(self)):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._backward is None:  # a leaf
                if node.grad is not None:
                    node.grad = node.grad + g
                elif g.base is None and handed.get(id(g)) == 1 and g.flags.writeable:
                    node.grad = g
                    handed[id(g)] = 2
                else:
                    node.grad = g.copy()
                continue
            if node.retains_grad:
                node.grad = g
                handed[id(g)] = 2
            for parent, pg in zip(node.inputs, node._backward(g), strict=True):
                if pg is None or not parent.requires_grad:
                    continue
                key = id(parent)
                if key in grads:
                    pg = grads[key] + pg
                grads[key] = pg
                handed[id(pg)] = handed.get(id(pg), 0) + 1


def topological_order(root: Tensor) -> list[Tensor]:
    """Tensors of the graph ending at root, each after all of its inputs."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:  # iterative: deep graphs must not hit Python's recursion limit
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in node.inputs if id(p) not in seen)
    return order


@dataclass
class GraphNode:
    """One operation of a recorded graph, for inspection and drawing."""

    id: int
    op: str
    shape: tuple[int, ...]
    inputs: list[int] = field(default_factory=list)
    name: str | None = None


def graph(root: Tensor) -> list[GraphNode]:
    """The recorded graph that ends at ``root``: nodes (ops or leaves) with shapes and edges.

    Leaves have op ``"input"`` or ``"parameter"``; edges are the ``inputs`` ids.
    """
    order = topological_order(root)
    index = {id(t): i for i, t in enumerate(order)}
    nodes = []
    for i, t in enumerate(order):
        if t.op is None:
            op = "parameter" if t.requires_grad else "input"
        else:
            op = t.op
        nodes.append(GraphNode(i, op, t.shape, [index[id(p)] for p in t.inputs], t.name))
    return nodes
