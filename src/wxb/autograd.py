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

and ``torch.autograd.grad(outputs, inputs)``: the gradients handed back, no ``.grad`` set
(a saliency map, ``wxb.autograd.grad(loss, x)[0]``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wxb.errors import ConfigError, ShapeError
from wxb.ops import _unbroadcast
from wxb.tensor import Tensor, float_array, gradients_apart, no_grad


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

        # What the backward keeps (saved, or set on ctx) is checked as torch checks saved
        # tensors: an input kept, or one sharing its memory, changed in place refuses the
        # backward; so does the output changed, where it is kept (e^x's forward saving e^x)
        kept = _arrays_kept(ctx)
        reads = tuple(any(_shares(k, a.data) for k in kept) for _, a in tensors)
        saves_output = any(_shares(k, result) for k in kept)
        operands = tuple(a for _, a in tensors)
        out = Tensor.from_op(
            result, name, operands, backward, saves_output=saves_output, reads_inputs=reads
        )
        # an output that is an input's array, or a view of it (forward returning x or
        # x[:2]), is a view of that input, as torch's: an in-place change of it is
        # refused, where it would write into the input (a parameter) without a word
        for _, a in tensors:
            if _shares(result, a.data):
                out._versions = a._versions
                break
        return out


def _arrays_kept(ctx: FunctionCtx) -> list[np.ndarray]:
    """The arrays of what ``forward`` left on ``ctx``: its saved tensors and attributes
    (and those in a list, tuple or dict there)."""
    found = []
    values = [*ctx.saved_tensors, *(v for k, v in vars(ctx).items() if k != "saved_tensors")]
    for value in values:
        parts = value.values() if isinstance(value, dict) else value
        for part in parts if isinstance(value, (list, tuple, dict)) else (value,):
            if isinstance(part, Tensor):
                found.append(part.data)
            elif isinstance(part, np.ndarray):
                found.append(part)
    return found


def _shares(kept: np.ndarray, array: np.ndarray) -> bool:
    return kept is array or np.may_share_memory(kept, array)


def grad(
    outputs: Tensor | list[Tensor] | tuple[Tensor, ...],
    inputs: Tensor | list[Tensor] | tuple[Tensor, ...],
    grad_outputs: object = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool | None = None,
    is_grads_batched: bool = False,
    materialize_grads: bool = False,
) -> tuple[Tensor | None, ...]:
    """∂(outputs)/∂(each input), handed back as a tuple of tensors, as
    ``torch.autograd.grad``: no tensor's ``.grad`` changes (a model's accumulated
    gradients stay as they were). Several outputs add their gradients (each seeded by its
    ``grad_outputs`` entry; a scalar's may be left None). The graph is freed as
    ``backward`` frees it, unless ``retain_graph=True``. An input that the outputs do not
    depend on is refused, or with ``allow_unused=True`` given as None (zeros with
    ``materialize_grads=True``), as torch's. ``create_graph`` and ``is_grads_batched``
    (second derivatives, vmap) are torch's options wxb does not have: refused."""
    if create_graph or is_grads_batched:
        option = "create_graph" if create_graph else "is_grads_batched"
        raise ConfigError(
            f"autograd.grad({option}=True) is PyTorch's option, which wxb does not have: its "
            "backward records no graph of its own (no second derivatives)"
        )
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    seeds = [grad_outputs] if isinstance(grad_outputs, Tensor) or grad_outputs is None else None
    if seeds is None:
        seeds = list(grad_outputs)  # (an array is one seed, not one per row)
        if isinstance(grad_outputs, np.ndarray):
            seeds = [grad_outputs]
    if len(seeds) == 1 and len(outs) > 1 and seeds[0] is None:
        seeds = seeds * len(outs)
    if len(seeds) != len(outs):
        raise ShapeError(f"autograd.grad: {len(seeds)} grad_outputs for {len(outs)} outputs")
    for where, items in (("outputs", outs), ("inputs", ins)):
        if not items:
            raise ConfigError(f"autograd.grad: got no {where}")
        for i, t in enumerate(items):
            if not isinstance(t, Tensor):
                raise ConfigError(f"autograd.grad: {where}[{i}] is a {type(t).__name__}")
    for i, t in enumerate(ins):
        if not t.requires_grad:
            raise ShapeError(f"autograd.grad: inputs[{i}] does not require grad")
    # a recorded input's gradient is read as retain_grad() reads it, its .grad put back
    kept = [(t, t.retains_grad, t.grad) for t in ins if t.grad_fn is not None]
    for t, _, _ in kept:
        t.retains_grad, t.grad = True, None
    try:
        with gradients_apart() as store:
            for k, (out, seed) in enumerate(zip(outs, seeds, strict=True)):
                last = k == len(outs) - 1
                out.backward(seed, retain_graph=bool(retain_graph) or not last)
        found = [t.grad if t.grad_fn is not None else store[t] for t in ins]
    finally:
        for t, retains, before in kept:
            t.retains_grad, t.grad = retains, before
    result: list[Tensor | None] = []
    for i, (t, g) in enumerate(zip(ins, found, strict=True)):
        if g is None:
            if not allow_unused and not materialize_grads:
                raise ShapeError(
                    f"autograd.grad: inputs[{i}] was not used to compute the outputs "
                    "(allow_unused=True gives None for it)"
                )
            result.append(Tensor(np.zeros_like(t.data)) if materialize_grads else None)
        else:
            result.append(Tensor(np.array(g, dtype=t.dtype)))
    return tuple(result)
