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

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from wxb.errors import ConfigError, ShapeError, missing_name
from wxb.ops import _unbroadcast
from wxb.tensor import (
    Tensor,
    float_array,
    gradients_apart,
    keep_values,
    no_grad,
    walking_toward,
)


class FunctionCtx:
    """What ``forward`` leaves for ``backward`` (torch's ``ctx``)."""

    def __init__(self, needs_input_grad: tuple[bool, ...]) -> None:
        self.needs_input_grad = needs_input_grad
        self.saved_tensors: tuple[Any, ...] = ()
        self.materialize_grads = True
        self.non_differentiable: tuple[Any, ...] = ()

    def save_for_backward(self, *tensors: Any) -> None:
        self.saved_tensors = tensors

    def mark_non_differentiable(self, *outputs: Any) -> None:
        """These outputs require no grad (indices, a mask), as torch's: backward still
        gets a gradient for each (zeros, or None without materialized gradients)."""
        self.non_differentiable = self.non_differentiable + outputs

    def set_materialize_grads(self, value: bool) -> None:
        """False: backward gets None, not zeros, for an output that no gradient reached."""
        self.materialize_grads = bool(value)

    def mark_dirty(self, *tensors: Any) -> None:
        raise ConfigError(
            "ctx.mark_dirty: wxb's Function takes no forward that changes its inputs in "
            "place; return a new tensor (x.clone() changed, say) instead"
        )


def once_differentiable(backward: Callable) -> Callable:
    """torch's decorator for a backward that cannot itself be differentiated: wxb's
    backward records no graph (no second derivatives), so it is the backward as it is."""
    return backward


class Function:
    """Subclass it with static ``forward(ctx, *inputs)`` and ``backward(ctx,
    *grad_outputs)``, and call ``apply(*inputs)``: one output or a tuple of them (torch's
    ``setup_context(ctx, inputs, output)`` beside a ``forward(*inputs)`` too), and from
    ``backward`` one gradient per input of ``forward`` (None for an input that needs
    none), each of the input's shape (or one that broadcasts to it, summed back as torch
    sums it). ``backward`` gets one gradient per output (None for one not a tensor, a
    count); for an output that no gradient reached, zeros, or None after
    ``ctx.set_materialize_grads(False)``."""

    @staticmethod
    def forward(ctx: FunctionCtx, *inputs: Any) -> Any:
        raise NotImplementedError("a Function subclass writes its own forward(ctx, *inputs)")

    @staticmethod
    def setup_context(ctx: FunctionCtx, inputs: tuple, output: Any) -> None:
        raise NotImplementedError("setup_context is torch's, beside a forward without ctx")

    @staticmethod
    def backward(ctx: FunctionCtx, *grad_outputs: Tensor) -> Any:
        raise NotImplementedError("a Function subclass writes its own backward(ctx, grad)")

    @classmethod
    def apply(cls, *inputs: Any) -> Any:
        name = cls.__name__
        ctx = FunctionCtx(tuple(isinstance(a, Tensor) and a.requires_grad for a in inputs))
        with no_grad():  # as torch's: the forward's own operations are not recorded
            if cls.setup_context is not Function.setup_context:  # torch's other form
                output = cls.forward(*inputs)
                cls.setup_context(ctx, inputs, output)
            else:
                output = cls.forward(ctx, *inputs)
        several = isinstance(output, (tuple, list))
        given = list(output) if several else [output]
        # which items are outputs (tensors, arrays); others (a count) go back as they are
        places = [i for i, o in enumerate(given) if isinstance(o, (Tensor, np.ndarray))]
        if not several and not places:
            places = [0]  # (a number: a 0-d output, as before)
        results = [
            given[i].data if isinstance(given[i], Tensor) else np.asarray(given[i]) for i in places
        ]
        tensors = [(i, a) for i, a in enumerate(inputs) if isinstance(a, Tensor)]
        count = len(given) if several else 1

        def run_backward(grad_outputs: list[np.ndarray | None]) -> list[np.ndarray | None]:
            # ∂L/∂input = the rule the subclass wrote, run as its forward ran: not recorded
            if ctx.materialize_grads:
                grad_outputs = [
                    np.zeros_like(r) if g is None else g
                    for g, r in zip(grad_outputs, results, strict=True)
                ]
            if len(places) != count:  # as torch's: None in each non-tensor output's place
                full: list[np.ndarray | None] = [None] * count
                for i, g in zip(places, grad_outputs, strict=True):
                    full[i] = g
                grad_outputs = full
            with no_grad():
                grads = cls.backward(ctx, *(None if g is None else Tensor(g) for g in grad_outputs))
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
        # backward; so does an output changed, where it is kept (e^x's forward saving e^x)
        kept = _arrays_kept(ctx)
        reads = tuple(any(_shares(k, a.data) for k in kept) for _, a in tensors)
        operands = tuple(a for _, a in tensors)
        marked = [o.data if isinstance(o, Tensor) else o for o in ctx.non_differentiable]
        # (whole numbers, indices, are constants too, as torch's integer outputs)
        constant = [r.dtype.kind != "f" or any(m is r for m in marked) for r in results]
        # torch frees what save_for_backward kept at the first backward: a second one,
        # without retain_graph, is refused (it read the old x's values after a step)
        freed_after = any(t is not None for t in ctx.saved_tensors)
        if not several:
            out = Tensor.from_op(
                results[0],
                name,
                operands,
                lambda g: run_backward([g]),
                saves_output=any(_shares(k, results[0]) for k in kept),
                reads_inputs=reads,
            )
            if freed_after:
                keep_values(out)
            made = [out]
            if ctx.non_differentiable and constant[0]:  # (a number stays as before)
                made = [_as_constant(given[0], results[0])]
        else:
            made = _several_outputs(
                name, results, operands, run_backward, kept, reads, constant, freed_after
            )
            made = [_as_constant(given[i], r) if t is None else t
                    for i, r, t in zip(places, results, made, strict=True)]  # fmt: skip
        # an output that is an input's array, or a view of it (forward returning x or
        # x[:2]), is a view of that input, as torch's: an in-place change of it is
        # refused, where it would write into the input (a parameter) without a word
        for t, r in zip(made, results, strict=True):
            for _, a in tensors:
                if _shares(r, a.data):
                    t._versions = a._versions
                    break
        if not several:
            return made[0]
        for i, t in zip(places, made, strict=True):
            given[i] = t
        return tuple(given)


def _several_outputs(
    name: str,
    results: list[np.ndarray],
    operands: tuple[Tensor, ...],
    run_backward: Callable,
    kept: list[np.ndarray],
    reads: tuple[bool, ...],
    constant: list[bool],
    freed_after: bool,
) -> list[Tensor | None]:
    """The outputs of a Function that gives several (None for a constant one): one node
    (``joint``) records the Function over its inputs, and each output is a node on it
    that hands its gradient over; the walk reaches ``joint`` after every output it
    reaches (they depend on it), so its rule runs the Function's backward once, with all
    the gradients that came."""
    came: dict[int, np.ndarray] = {}
    token = np.zeros((), np.float64)  # (what the outputs hand on to joint: nothing)

    def joint_backward(g: np.ndarray) -> list[np.ndarray | None]:
        try:
            return run_backward([came.get(k) for k in range(len(results))])
        finally:
            came.clear()  # (a retained graph's next backward starts afresh)

    joint = Tensor.from_op(token, name, operands, joint_backward, reads_inputs=reads)
    if freed_after:
        keep_values(joint)
    made = []
    for k, result in enumerate(results):
        if constant[k]:
            made.append(None)  # mark_non_differentiable: no gradient asked
            continue

        def hand_over(g: np.ndarray, k: int = k) -> list[np.ndarray]:
            came[k] = g if k not in came else came[k] + g
            return [token]

        saves = any(_shares(kept_array, result) for kept_array in kept)
        made.append(
            Tensor.from_op(
                result, f"{name}[{k}]", (joint,), hand_over, saves_output=saves, reads_inputs=False
            )
        )
    return made


def _as_constant(given: Any, result: np.ndarray) -> Tensor:
    """An output that takes no gradient: what forward gave, as a tensor without a graph."""
    return given if isinstance(given, Tensor) else Tensor.of_array(result)


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
    ``torch.autograd.grad``: no leaf's ``.grad`` changes (a model's accumulated
    gradients stay as they were; a tensor that retains its grad adds this one, as in
    torch), and only what leads to the inputs runs (another leaf's hooks do not).
    Several outputs add their gradients (each seeded by its ``grad_outputs`` entry; a
    scalar's may be left None). What it runs is freed as
    ``backward`` frees it, unless ``retain_graph=True``; the rest of the graph, as in
    torch, stays for a later backward. An input that the outputs do not
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
    # (with this one added, where it retains its grad)
    kept = [(t, t.retains_grad, t.grad) for t in ins if t.grad_fn is not None]
    for t, _, _ in kept:
        t.retains_grad, t.grad = True, None
    try:
        with gradients_apart() as store, walking_toward(ins):
            for k, (out, seed) in enumerate(zip(outs, seeds, strict=True)):
                last = k == len(outs) - 1
                out.backward(seed, retain_graph=bool(retain_graph) or not last)
        found = [t.grad if t.grad_fn is not None else store[t] for t in ins]
    finally:
        for t, retains, before in kept:
            # one that retains its grad keeps this one too, as torch's (the retained
            # tensors that are not inputs get theirs): it lost it here before
            got = t.grad if retains else None
            if got is not None and before is not None:
                got = np.asarray(before + got)
            t.retains_grad, t.grad = retains, before if got is None else got
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


class _TorchFunctionNames(type(sys)):
    """``wxb.autograd.function``: torch.autograd.function's names, so a port's ``from
    torch.autograd.function import once_differentiable`` (or Function, FunctionCtx) works
    as written, where it raised ModuleNotFoundError ('wxb.autograd' is not a package)."""

    def __getattr__(self, name: str) -> object:
        raise missing_name(
            self.__name__,
            name,
            f"wxb.autograd.function has no attribute {name!r}; it holds {', '.join(self.__all__)}",
        )


function = _TorchFunctionNames(f"{__name__}.function")
function.__all__ = ["Function", "FunctionCtx", "once_differentiable"]
for _name in function.__all__:
    setattr(function, _name, globals()[_name])
sys.modules[function.__name__] = function  # import wxb.autograd.function as torch's
