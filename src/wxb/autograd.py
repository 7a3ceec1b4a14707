"""``torch.autograd.Function`` in wxb: an operation of one's own whose backward rule is
written beside its forward, as every primitive of ``wxb.ops`` is (``Tensor.from_op``).

    class LegendrePolynomial3(wxb.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return 0.5 * (5 * x**3 - 3 * x)

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return grad_output * 1.5 * (5 * x**2 - 1)

    y = LegendrePolynomial3.apply(c + d * x)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wxb.errors import ConfigError, ShapeError
from wxb.ops import _unbroadcast
from wxb.tensor import Tensor, float_array, no_grad


class FunctionCtx:
    """What ``forward`` leaves for ``backward`` (torch's ``ctx``)."""

    def __init__(self, needs_input_grad: tuple[bool, ...]) -> None:
        self.needs_input_grad = needs_input_grad
        self.saved_tensors: tuple[Any, ...] = ()

    def save_for_backward(self, *tensors: Any) -> None:
        self.saved_tensors = tensors


class Function:
    """Subclass it with static ``forward(ctx, *inputs)`` and ``backward(ctx,
    grad_output)``, and call ``apply(*inputs)``: one output, and from ``backward`` one
    gradient per input of ``forward`` (None for an input that needs none), each of the
    input's shape (or one that broadcasts to it, summed back as torch sums it)."""

    @staticmethod
    def forward(ctx: FunctionCtx, *inputs: Any) -> Any:
        raise NotImplementedError("a Function subclass writes its own forward(ctx, *inputs)")

    @staticmethod
    def backward(ctx: FunctionCtx, grad_output: Tensor) -> Any:
        raise NotImplementedError("a Function subclass writes its own backward(ctx, grad)")

    @classmethod
    def apply(cls, *inputs: Any) -> Tensor:
        name = cls.__name__
        ctx = FunctionCtx(tuple(isinstance(a, Tensor) and a.requires_grad for a in inputs))
        with no_grad():  # as torch's: the forward's own operations are not recorded
            output = cls.forward(ctx, *inputs)
        if isinstance(output, (tuple, list)):
            raise ConfigError(f"{name}.forward: returns one tensor in wxb; got {len(output)}")
        result = output.data if isinstance(output, Tensor) else np.asarray(output)
        tensors = [(i, a) for i, a in enumerate(inputs) if isinstance(a, Tensor)]

        def backward(g: np.ndarray) -> list[np.ndarray | None]:
            # ∂L/∂input = the rule the subclass wrote, run as its forward ran: not recorded
            with no_grad():
                grads = cls.backward(ctx, Tensor(g))
            grads = grads if isinstance(grads, tuple) else (grads,)
            if len(grads) != len(inputs):
                raise ConfigError(
                    f"{name}.backward returned {len(grads)} gradient(s); forward took "
                    f"{len(inputs)} input(s) (return None for one that needs none)"
                )
            out: list[np.ndarray | None] = []
            for i, a in tensors:
                given = grads[i]
                if given is None:
                    out.append(None)
                    continue
                array = given.data if isinstance(given, Tensor) else given
                array = float_array(array, a.dtype, f"{name}.backward's gradient {i}")
                try:  # the input's shape, or one it broadcasts to (summed back, as torch's)
                    fits = np.broadcast_shapes(array.shape, a.shape) == array.shape
                except ValueError:
                    fits = False
                if not fits:
                    raise ShapeError(
                        f"{name}.backward: gradient {i} has shape {array.shape}; input "
                        f"{i} has shape {a.shape}"
                    )
                out.append(_unbroadcast(array, a.shape) if array.shape != a.shape else array)
            return out

        return Tensor.from_op(result, name, tuple(a for _, a in tensors), backward)
