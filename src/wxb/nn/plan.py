"""The planned stack: a Sequential of stock layers run straight through the seed's equations.

Buffers for every Z, A and δ are allocated for the largest batch seen and reused
after it, so a training step allocates nothing once it has run:

    forward   Z⁽ˡ⁾ = W⁽ˡ⁾·A⁽ˡ⁻¹⁾ + b⁽ˡ⁾,  A⁽ˡ⁾ = f(Z⁽ˡ⁾)
    backward  δ⁽ˡ⁾ = (W⁽ˡ⁺¹⁾ᵀ·δ⁽ˡ⁺¹⁾) ⊙ f′(Z⁽ˡ⁾)
    gradients ∂L/∂W⁽ˡ⁾ = δ⁽ˡ⁾·A⁽ˡ⁻¹⁾ᵀ,  ∂L/∂b⁽ˡ⁾ = Σ_batch δ⁽ˡ⁾ (as 1ᵀ·δ, one gemv)

The element-wise work goes through the same kernels as the graph's ops
(wxb.kernels), so both paths compute the same numbers; a Dense layer followed by a
pointwise activation adds its bias and applies f in one pass. Two users:
``Sequential.forward`` (the loop a user writes: the recorded graph keeps its
per-layer nodes, and one fused node runs the whole backward) and ``wxb.step.PlannedStep`` (``fit``).
Once a batch size has run, a ``LeanStack`` runs it with every decision taken once.
"""

from __future__ import annotations

import operator
import threading
import weakref
from collections.abc import Callable
from itertools import repeat

import numpy as np

from wxb import kernels, ops
from wxb.errors import ConfigError, DataError, ShapeError
from wxb.nn.layers import (
    GLU,
    Activation,
    AlphaDropout,
    Dense,
    Dropout,
    Dropout1d,
    Embedding,
    FeatureAlphaDropout,
    Flatten,
    LazyLinear,
    PReLU,
    RReLU,
    Standardize,
    Unflatten,
    dtype_mismatch,
)
from wxb.nn.module import Module, Parameter, input_width, stock_kind
from wxb.nn.norm import NORMS
from wxb.tensor import GRAD_LOCK, WRITING, accumulate_grad, ensure_free_once, keep_apart

_requires_grad = operator.attrgetter("requires_grad")

# ids of the parameters whose optimiser buffer a backward is writing ∂L/∂p into now
# (under GRAD_LOCK), shared with the graph's rules (tensor.leaf_grad_slot): two models
# sharing a layer run their backwards under locks of their own
_WRITING = WRITING


def _apart_slot(p: Parameter, claimed: list[int]) -> np.ndarray:
    return np.empty_like(p.data)  # (a gradients_apart backward: never the optimiser's buffer)


def _apart_done(p: Parameter, slot: np.ndarray, claimed: list[int]) -> None:
    keep_apart(p, slot)


def _claim_buffer(p: Parameter) -> bool:
    """Whether this backward may write p's new gradient into ``p.grad_buffer``: no
    gradient yet, and no other backward writing there. Call with GRAD_LOCK held."""
    if p.grad is not None or id(p) in _WRITING:
        return False
    _WRITING.add(id(p))
    return True


STOCK_LAYERS = (Dense, Activation, Dropout, Standardize)
# Inference buffers kept for later calls up to predict's batch; a larger call's go with it
KEPT_INFERENCE_ROWS = 4096


def unplannable_reason(layers: list[Module], inference: bool = False) -> str | None:
    """None when the planned stack computes exactly what the layers' own forwards
    compute; else why it cannot (the layer-by-layer path then runs, and raises any error).
    ``inference``: for calls without a graph, where no backward hook runs (nor torch's)."""
    if all(passes_rows(layer) for layer in layers):
        return "it has no layers" if not layers else "it has no layers but Flatten"
    for layer in layers:
        if passes_rows(layer):
            continue
        if stock_kind(layer, NORMS) is not None:
            return f"{layer.label} is a normalisation layer, which runs on the recorded graph"
        if stock_kind(layer, (Flatten,)) is not None and not passes_rows(layer):
            return (
                f"{layer.label} (start_dim={layer.start_dim}, end_dim={layer.end_dim}) "
                "reshapes its rows, which runs on the recorded graph"
            )
        if stock_kind(layer, (PReLU,)) is not None:
            return f"{layer.label} learns its slope on the recorded graph"
        if stock_kind(layer, (AlphaDropout, FeatureAlphaDropout, Dropout1d)) is not None:
            return f"{layer.label} drops units on the recorded graph"
        if stock_kind(layer, (RReLU,)) is not None:
            return f"{layer.label} draws its slopes on the recorded graph"
        if stock_kind(layer, (Embedding,)) is not None:
            return f"{layer.label} looks up rows by index on the recorded graph"
        if stock_kind(layer, (LazyLinear,)) is not None:
            return f"{layer.label} infers in_features at its first call, on the recorded graph"
        if stock_kind(layer, (Unflatten,)) is not None:
            return f"{layer.label} reshapes its rows, which runs on the recorded graph"
        if stock_kind(layer, (GLU,)) is not None:
            return f"{layer.label} gates one half of its input by the other on the recorded graph"
        if not _is_stock(layer):
            return (
                f"{layer.label} is not a stock layer (its class overrides forward or __call__, "
                "or it was given a forward of its own, or forward hooks)"
            )
    for layer in layers:  # W or b computed from other parameters (a property of a subclass)
        if isinstance(layer, Dense):
            for key in ("weight", "bias"):
                value = getattr(layer, key)
                if value is not None and not isinstance(value, Parameter):
                    return f"the {key} of {layer.label} is not a parameter (computed, or a buffer)"
            if layer.weight.ndim != 2:  # (given through .data; the layer's forward refuses it)
                return f"the W of {layer.label} has shape {layer.weight.shape}, not out × in"
        elif isinstance(layer, Standardize):  # (set since; the layer's forward refuses them)
            if layer.mean.ndim != 1 or layer.scale.shape != layer.mean.shape:
                return f"the mean and scale of {layer.label} are not one value per feature"
    slots = [p for m in layers for p in m._parameters.values()]
    for layer in () if inference else layers:  # the plan writes ∂L/∂p itself, where
        if layer._has_backward_hooks():  # no register_hook hook runs (nor a module's: the
            # plan records no call of it)
            return f"{layer.label} has backward hooks, which run on the recorded graph"
        for key, p in layer._parameters.items():
            if p is not None and p._hooks:
                return f"the {key} of {layer.label} has a gradient hook (register_hook)"
    if len({id(p) for p in slots}) != len(slots):
        return "some layers share parameters"
    arrays = [p.data for p in slots] + [a for m in layers for a in m._buffers.values()]
    if len({a.dtype for a in arrays}) > 1:
        return "its parameters are of mixed dtypes"
    for layer in layers:  # a b given through .data that the rows would broadcast
        if isinstance(layer, Dense) and layer.bias is not None:
            shape = layer.bias.data.shape
            if shape != (layer.out_features,):
                outputs = layer.out_features
                return f"the b of {layer.label} has shape {shape}; its W gives {outputs} outputs"
    return width_mismatch(layers)


def passes_rows(layer: Module) -> bool:
    """A stock Flatten that gives (B, F) rows back as they are (torch's flatten returns its
    input then): the plan leaves it out, and one in front makes X of more dims its rows."""
    return stock_kind(layer, (Flatten,)) is Flatten and layer.rows_of((1, 1))


def width_mismatch(layers: list[Module]) -> str | None:
    """Where a layer takes another width than the layer before it gives, if anywhere."""
    width = None
    for layer in layers:
        takes = input_width(layer)
        if takes is not None and width is not None and takes != width:
            return f"{layer.label} takes {takes} features but the layer before gives {width}"
        if isinstance(layer, Dense):
            width = layer.out_features
        elif takes is not None:
            width = takes
        elif isinstance(layer, GLU) and width is not None:  # a row's halves: A ⊙ σ(B)
            width = width // 2 if layer.halves_rows() else None
        elif isinstance(layer, Unflatten):  # not rows: what a Dense then takes is its own
            width = None
    return None


def _sparse(X: object) -> bool:
    """SciPy sparse rows (a plain ndarray, the common case, answered by its type alone)."""
    return type(X) is not np.ndarray and ops.is_sparse(X)


def _is_stock(module: Module) -> bool:
    return stock_kind(module, STOCK_LAYERS) is not None


def _factor_forward(
    layer: Dropout | Standardize,
    x: np.ndarray,
    out: np.ndarray,
    mask: np.ndarray | None,
    evaluating: bool = False,
) -> np.ndarray | float:
    """A Dropout's or Standardize's output into ``out``; returns the factor it multiplied
    by, which is also its backward's (``mask``: the Dropout's buffer for its draws).
    ``evaluating``: in eval mode whatever the layer's own (predict's, outside its block)."""
    if isinstance(layer, Dropout):
        factor = 1.0  # eval mode: dropout is the identity
        if not evaluating and layer.training and layer.p > 0:
            factor = ops.dropout_mask(layer.rng, layer.p, mask[: len(x)], layer)
        np.multiply(x, factor, out=out)
        return factor
    # Standardize: (X − mean) / scale, on the buffers' memory as plain arrays (a
    # BufferArray's NumPy override costs microseconds an operation)
    factor = 1.0 / np.asarray(layer.scale)
    np.subtract(x, np.asarray(layer.mean), out=out)
    out *= factor
    return factor


class StackPlan:
    """Buffers and the forward/backward equations of one stack of stock layers."""

    def __init__(self, layers: list[Module], grad_lock: threading.RLock | None = None) -> None:
        layers = list(layers)
        # a Flatten in front makes (N, 28, 28) rows (N, 784); one anywhere passes rows on
        self.front_flatten = layers[0] if layers and passes_rows(layers[0]) else None
        self.layers = [m for m in layers if not passes_rows(m)]
        # held through backward: the plans of other threads on the same model share it
        # (both would take the optimiser's one gradient buffer, or add into one .grad)
        self._grad_lock = grad_lock or threading.RLock()
        self.layer_params = [list(m._parameters.values()) for m in self.layers]
        self.params = [p for params in self.layer_params for p in params]
        self.in_features = next(
            (input_width(m) for m in self.layers if input_width(m) is not None), None
        )
        self.first_dense = next((m for m in self.layers if isinstance(m, Dense)), None)
        # the walk of forward and of the graph it records: (index, layer, its stock kind,
        # the activation right after a Dense)
        kinds = [next((k for k in STOCK_LAYERS if isinstance(m, k)), None) for m in self.layers]
        self.program = [
            (i, m, kind, m_next if kind is Dense and kind_next is Activation else None)
            for i, (m, kind, m_next, kind_next) in enumerate(
                zip(self.layers, kinds, [*self.layers[1:], None], [*kinds[1:], None], strict=True)
            )
        ]
        # Layer i may need ∂L/∂(its input) only if some layer before it has parameters
        # (whether they are trainable is read at each backward: they may be frozen later).
        self.has_input_grad = []
        dense_before = False
        for layer in self.layers:
            self.has_input_grad.append(dense_before)
            dense_before |= isinstance(layer, Dense)
        self.capacity, self.width, self.dtype = 0, 0, None
        # the parameters' shapes and dtypes the buffers are for (a .data assigned with
        # another width or dtype: buffers made again, or the layer-by-layer path's error)
        self._signature = self._parameter_signature()
        self._arrays = [p.data for p in self.params]  # cheap to check: by identity
        # checked here too, not only when the model's plans were first made: a .data given
        # another shape or dtype since (a plan made later, in another thread) must not run
        self._signature_reason = unplannable_reason(self.layers)
        self.stale_reason: str | None = self._signature_reason
        self._claim: weakref.ref | None = None  # the recorded graph using the buffers
        self._token: object = None
        self._released: object = None  # the token of the graph that last ran backward
        # LeanStacks by batch rows (fit's two sizes), and the one the last forward ran on
        self._leans: dict[int, LeanStack | None] = {}
        self._lean_ran: LeanStack | None = None
        # the same for calls without a graph: the shape the last one ran the general way,
        # and a LeanInference once a shape has run twice in a row
        self._inference_lean: LeanInference | None = None
        self._inference_shape: tuple | None = None

    # -- checks ---------------------------------------------------------------------------
    def _parameter_signature(self) -> tuple:
        return tuple((p.data.shape, p.data.dtype) for p in self.params)

    def _follow_parameters(self) -> None:
        """Take parameters whose .data was given another shape or dtype since the buffers
        were made: buffers made again, or ``stale_reason`` says why the stack cannot run."""
        for p, array in zip(self.params, self._arrays, strict=True):
            if p.data is not array:
                break
        else:
            return
        self._arrays = [p.data for p in self.params]
        signature = self._parameter_signature()
        if signature == self._signature:  # other arrays of the shapes the buffers are for
            self.stale_reason = self._signature_reason  # (a repack, or a change undone)
            return
        self.stale_reason = unplannable_reason(self.layers)
        if self.stale_reason is None:
            self._signature, self._signature_reason = signature, None
            self.in_features = next(
                (input_width(m) for m in self.layers if input_width(m) is not None), None
            )
            self.capacity = 0  # every buffer again at the next batch

    def rows(self, X: np.ndarray) -> np.ndarray:
        """X as the plan's first layer takes it: X of more than 2 dims made (B, −1) rows
        where the stack begins with a Flatten that makes them so (as its forward would)."""
        flatten = self.front_flatten
        if X.ndim > 2 and flatten is not None and flatten.rows_of(X.shape):
            return X.reshape(X.shape[0], int(np.prod(X.shape[1:])))
        return X

    def fits(self, X: np.ndarray) -> bool:
        """Whether a batch can run planned (if not, the layer-by-layer path gives the error)."""
        self._follow_parameters()
        if self.stale_reason is not None:
            return False
        first = self.first_dense
        return (
            X.ndim == 2
            and X.shape[0] > 0
            and (self.in_features is None or X.shape[1] == self.in_features)
            and (first is None or X.dtype == first.weight.dtype)
        )

    def takes_sparse(self) -> bool:
        """Whether SciPy sparse rows go to the first layer as they are: it is a Dense,
        whose Z = X·Wᵀ and ∂L/∂W = δᵀ·X are sparse × dense products (anything else in
        front computes on dense rows: ``forward`` makes a sparse batch dense)."""
        return bool(self.layers) and self.layers[0] is self.first_dense

    def check(self, X: np.ndarray) -> None:
        """The errors the layers would raise, for a batch handed to the planned path."""
        self._follow_parameters()
        if self.stale_reason is not None:
            raise ConfigError(
                f"the model's parameters were changed through .data since training began: "
                f"{self.stale_reason}"
            )
        if X.ndim != 2 or X.shape[0] == 0:
            raise DataError(f"a training batch must be a non-empty 2-D array; got shape {X.shape}")
        first = self.first_dense
        if first is not None and X.dtype != first.weight.dtype:
            raise dtype_mismatch(first.label, X.dtype, first.weight.dtype)
        if self.in_features is not None and X.shape[1] != self.in_features:
            if isinstance(first, Dense) and first is self.layers[0]:
                m, n = first.weight.shape
                raise ShapeError(
                    f"{first.label}: Z = W·X + b needs X with {n} features (W is {m}×{n}); "
                    f"got {X.shape[1]}"
                )
            raise ShapeError(f"the model takes {self.in_features} features; got {X.shape[1]}")

    # -- buffers ----------------------------------------------------------------------------
    def _allocate(self, batch: int, width: int, dtype: np.dtype) -> None:
        """Every buffer for batches of up to ``batch`` rows."""
        self.outputs, self.input_grads, self.masks = [], [], {}
        width_in = width
        for i, layer in enumerate(self.layers):
            in_width = width
            if isinstance(layer, Dense):
                width = layer.out_features
            self.outputs.append(np.empty((batch, width), dtype))
            self.input_grads.append(
                np.empty((batch, in_width), dtype) if self.has_input_grad[i] else None
            )
            if isinstance(layer, Dropout):
                self.masks[i] = np.empty((batch, width), dtype)
        self.capacity, self.width, self.dtype = batch, width_in, dtype

    def drop_buffers(self) -> None:
        """Let the buffers go (the next batch makes them again): after a batch far larger
        than usual, memory comes back as PyTorch's does when its tensors are dropped."""
        self.outputs, self.input_grads, self.masks = [], [], {}
        self.inputs, self.results, self.factors, self.used = [], [], {}, {}
        self.output, self.capacity = None, 0
        self._leans, self._lean_ran = {}, None
        self._inference_lean = self._inference_shape = None

    def _ensure(self, X: np.ndarray) -> None:
        # the width too: a stack with no Dense or Standardize takes any width
        rows = X.shape[0]  # (CSR rows have no len)
        if rows > self.capacity or X.shape[1] != self.width or X.dtype != self.dtype:
            self._allocate(rows, X.shape[1], X.dtype)

    # -- the equations --------------------------------------------------------------------------
    def forward(
        self, X: np.ndarray, fresh_output: bool = False, for_backward: bool = True
    ) -> np.ndarray:
        """Run every layer into its buffer; the last into a new array if ``fresh_output``
        (the caller keeps it past the next forward). Without ``for_backward`` (a call
        under no_grad) nothing is kept for a backward. X may be SciPy sparse rows (CSR,
        in the plan's dtype): a Dense first multiplies them sparse (``takes_sparse``),
        else they are made dense here, this batch alone."""
        sparse = _sparse(X)
        if sparse and not self.takes_sparse():
            X, sparse = X.toarray(), False
        if for_backward and not sparse:  # a batch size that has run before: on its lean stack
            lean = self.lean_for(X)
            self._lean_ran = lean
            if lean is not None:
                return lean.forward(X, fresh_output, record=True)
        else:  # (lean stacks run dense rows only)
            self._lean_ran = None
        self._ensure(X)
        batch, last = X.shape[0], len(self.layers) - 1
        whole = batch == self.capacity  # the buffers as they are, not sliced
        # Each layer's input and output, and what each Dropout/Standardize multiplied by;
        # and what each Dense and activation computed with, for the backward to use even
        # if the layer is given another weight or kernel before it runs (as the graph does)
        inputs, results, factors, used = [], [], {}, {}
        if for_backward:
            self.inputs, self.results, self.factors, self.used = inputs, results, factors, used
        x, fused_into = X, None  # the activation's output, when the Dense before it ran both
        for i, layer, kind, after in self.program:
            inputs.append(x)
            if fused_into is not None:  # A = f(Z) was computed with the bias
                out, fused_into = fused_into, None
                results.append(out)
                x = out
                continue
            out = self.outputs[i] if whole else self.outputs[i][:batch]
            if i == last and fresh_output:
                out = np.empty_like(out)
            if kind is Dense:  # Z = W·X + b, on rows: X·Wᵀ + b
                weight = layer.weight.data
                used[i] = (layer.weight, weight, layer.bias)
                if sparse and i == 0:  # CSR rows: sparse × dense, no dense copy of X
                    ops.sparse_rows_by_weight(x, weight, out)
                elif batch == 1:  # one sample: the seed's W·x itself, a matrix-vector product
                    np.matmul(weight, x[0], out=out[0])
                else:
                    np.matmul(x, weight.T, out=out)
                if layer.bias is not None:
                    if after is not None and type(after.kernel) in ops.BIAS_FUSABLE:
                        # Z ← Z + b and A = f(Z) in one pass, into the activation's buffer
                        fused_into = self.outputs[i + 1] if whole else self.outputs[i + 1][:batch]
                        if i + 1 == last and fresh_output:
                            fused_into = np.empty_like(fused_into)
                        kernel = used[i + 1] = after.kernel
                        kernels.bias_activation(
                            kernel.code, out, layer.bias.data, fused_into, kernel.alpha
                        )
                    else:
                        out += layer.bias.data
            elif kind is Activation:  # A = f(Z)
                kernel = used[i] = layer.kernel
                result = kernel.forward(x, out)
                if result is not out and result is not None:  # a user kernel may return A
                    np.copyto(out, result)
            else:  # Dropout, Standardize
                factors[i] = _factor_forward(layer, x, out, self.masks.get(i))
            results.append(out)
            x = out
        self.output = x
        return x

    def infer(self, X: np.ndarray) -> np.ndarray | None:
        """``forward(X, fresh_output=True, for_backward=False)`` (a call without a graph:
        no_grad, predict), on a lean forward once X's shape has run twice in a row; None
        where X does not fit (the layer-by-layer path then raises the error)."""
        if _sparse(X):  # (lean forwards run dense rows only)
            if not self.fits(X):
                return None
            out = self.forward(X, fresh_output=True, for_backward=False)
            if X.shape[0] > KEPT_INFERENCE_ROWS:  # not held for the model's life
                self.drop_buffers()
            return out
        lean = self._inference_lean
        if lean is not None and lean.current(X, self):
            return lean.forward(X)
        self._inference_lean = None  # (it keeps arrays alive that may be old now)
        if not self.fits(X):
            return None
        out = self.forward(X, fresh_output=True, for_backward=False)
        shape = (X.shape, X.dtype)
        if len(X) > KEPT_INFERENCE_ROWS:  # not held for the model's life
            self.drop_buffers()
        elif shape == self._inference_shape:
            self._inference_lean = LeanInference.build(self, X)
        self._inference_shape = shape
        return out

    def infer_evaluating(self, X: np.ndarray) -> np.ndarray | None:
        """What ``infer(X)`` gives inside ``evaluating()`` and ``no_grad`` (predict's
        blocks), without them, where its lean forward holds for X: it records nothing, and
        Dropout, the one layer here that reads the mode, is told eval mode (at one row
        entering the blocks cost as much as the forward). None otherwise: the caller
        enters them and runs ``infer``."""
        lean = self._inference_lean
        if lean is None or _sparse(X) or not lean.current(X, self):
            return None
        return lean.forward(X, evaluating=True)

    # -- which recorded graph may use the buffers -------------------------------------------
    def pending(self) -> bool:
        """Whether a recorded graph still waits to run backward through these buffers."""
        return self._claim is not None and self._claim() is not None

    def claim(self, node: object, token: object) -> None:
        self._claim, self._token, self._released = weakref.ref(node), token, None

    def claimed_by(self, token: object) -> bool:
        return self._token is token

    def released_by(self, token: object) -> bool:
        """Whether the graph holding ``token`` ran its backward and nothing ran since."""
        return self._released is token

    def release(self) -> None:
        self._released, self._claim, self._token = self._token, None, None

    def backward(
        self,
        grad: np.ndarray,
        layer_done: Callable[[list], None] | None = None,
        frozen: frozenset[int] = frozenset(),
        apart: bool = False,
    ) -> None:
        """The δ chain, in reverse, from ∂L/∂output; fills ``p.grad`` of every parameter
        that requires one, and stops below the first layer with a trainable parameter.
        ``apart``: into this thread's ``gradients_apart`` store instead, ``.grad`` and the
        optimiser's buffer untouched (swapped out and back, another thread's backward
        meanwhile was lost and counted as this one's).

        A new gradient goes where the optimiser reads it (``p.free_grad_buffer()``) when
        there is one; a gradient already set is added to, as PyTorch accumulates.
        ``layer_done`` is told each Dense layer's parameters once their gradients are
        written (a distributed run starts summing them across ranks there). ``frozen``:
        the ids of parameters that did not require grad when the forward ran, which get
        none even if they do now (as in PyTorch).
        """
        lean = self._lean_ran
        if lean is not None and layer_done is None and not frozen and not apart:
            if lean.takes(grad):
                lean.backward(self.inputs[0], grad)
                return
        claimed: list[int] = []
        try:
            with self._grad_lock:
                self._backward(grad, layer_done, frozen, claimed, apart)
        finally:
            if claimed:  # a backward that raised: its buffers are free again
                with GRAD_LOCK:
                    _WRITING.difference_update(claimed)
        if (
            layer_done is None
            and not frozen
            and not apart
            and self.inputs
            and not _sparse(self.inputs[0])
        ):
            self._remember_lean(self.inputs[0])  # (lean stacks run dense rows only)

    # -- the lean stacks -----------------------------------------------------------------------
    def lean_for(self, X: np.ndarray) -> LeanStack | None:
        """The lean stack for batches like ``X``, if one was built and still holds."""
        lean = self._leans.get(len(X)) if self._leans else None
        return lean if lean is not None and lean.current(X) else None

    def _remember_lean(self, X: np.ndarray) -> None:
        """After a forward and backward of X's size the general way: a lean stack for the
        next batch of that size (None where the stack is not one it runs)."""
        # those of other sizes that no longer hold go (they keep old arrays alive)
        leans = {n: lean for n, lean in self._leans.items() if lean and lean.holds_arrays()}
        if len(leans) > 4:  # many sizes: start over rather than grow
            leans = {}
        leans[len(X)] = LeanStack.build(self, X)
        self._leans = leans

    def _backward(
        self,
        grad: np.ndarray,
        layer_done: Callable[[list], None] | None,
        frozen: frozenset[int],
        claimed: list[int],
        apart: bool = False,
    ) -> None:
        batch = len(grad)
        wants = _requires_grad
        if frozen:

            def wants(p: Parameter) -> bool:
                return p.requires_grad and id(p) not in frozen

        trainable_below = self._trainable_below(wants)
        homes = {id(p.grad_home): p.grad_home for p in self.params if p.grad_home is not None}
        if apart:  # the optimiser's buffers are not this backward's
            homes = {}
        slot, done = (_apart_slot, _apart_done) if apart else (self._grad_slot, self._grad_done)
        for home in homes.values():  # a gradient kept from an earlier step is never written over
            ensure_free_once(home)  # (once a backward: a graph's rules may hold its views now)
        for i in range(len(self.layers) - 1, -1, -1):
            layer, x_in = self.layers[i], self.inputs[i]
            if isinstance(layer, Dense):
                weight, weight_data, bias = self.used[i]  # as the forward ran
                delta = grad  # δ⁽ˡ⁾ for this layer's Z
                if wants(weight):  # ∂L/∂W = δ·Aᵀ (rows: δᵀ·X)
                    weight_grad = slot(weight, claimed)
                    if _sparse(x_in):  # CSR rows into the first Dense, as forward took them
                        ops.sparse_weight_grad(delta, x_in, weight_grad)
                    else:
                        np.matmul(delta.T, x_in, out=weight_grad)
                    done(weight, weight_grad, claimed)
                if bias is not None and wants(bias):  # ∂L/∂b = Σ_batch δ
                    bias_grad = slot(bias, claimed)
                    ops.sum_over_batch(delta, out=bias_grad)
                    done(bias, bias_grad, claimed)
                if layer_done is not None:
                    layer_done(self.layer_params[i])
                if not trainable_below[i]:
                    break
                # ∂L/∂A⁽ˡ⁻¹⁾ = Wᵀ·δ (rows: δ·W)
                grad = np.matmul(delta, weight_data, out=self.input_grads[i][:batch])
            elif not trainable_below[i]:
                break
            elif isinstance(layer, Activation):  # δ = ∂L/∂A ⊙ f′(Z)
                grad = self.used[i].backward(
                    x_in, self.results[i], grad, self.input_grads[i][:batch]
                )
            else:  # Dropout, Standardize: an element-wise factor
                grad = np.multiply(grad, self.factors[i], out=self.input_grads[i][:batch])

    def _trainable_below(self, wants: Callable[[Parameter], bool]) -> list[bool]:
        """For each layer, whether a Dense before it has a parameter that requires grad
        (only a Dense computes with its parameters: one registered on another layer gets
        no gradient, as on the layer-by-layer path, and asks for no δ below it)."""
        below, found = [], False
        for layer, params in zip(self.layers, self.layer_params, strict=True):
            below.append(found)
            found = found or (isinstance(layer, Dense) and any(wants(p) for p in params))
        return below

    @staticmethod
    def _grad_slot(p: Parameter, claimed: list[int]) -> np.ndarray:
        """Where this backward writes ∂L/∂p: the optimiser's buffer (checked free above)
        for a new gradient, else a new array (an existing ``.grad`` is added to after)."""
        home = p.grad_buffer
        if home is not None and home.shape == p.shape and home.dtype == p.dtype:
            with GRAD_LOCK:
                if _claim_buffer(p):
                    claimed.append(id(p))
                    return home
        return np.empty_like(p.data)

    @staticmethod
    def _grad_done(p: Parameter, slot: np.ndarray, claimed: list[int]) -> None:
        with GRAD_LOCK:  # as a graph's leaves add theirs: a tied weight may get both
            p.grad = slot if p.grad is None else accumulate_grad(p.grad, slot)
            if claimed and claimed[-1] == id(p):
                _WRITING.discard(claimed.pop())


_data = operator.attrgetter("data")
_grad = operator.attrgetter("grad")
_grad_buffer = operator.attrgetter("grad_buffer")
_grad_home = operator.attrgetter("grad_home")

# the kinds of a lean forward's and backward's steps (_ROW: a one-row batch's W·x)
_DENSE, _DENSE_FUSED, _ACTIVATION, _FACTOR, _ROW, _ROW_FUSED = range(6)


def _forward_program(plan: StackPlan, batch: int) -> tuple[list, dict, list, list]:
    """``plan.forward``'s steps for batches of ``batch`` rows, each decision taken: (the
    steps, what each Dense and activation computes with as the plan's forward records it,
    each activation with its kernel as taken, each layer's input buffer (None: X)).
    A step is (kind, the buffer it writes, and what the kind needs)."""
    layers = plan.layers
    outs = [out[:batch] for out in plan.outputs]
    masks = {i: mask[:batch] for i, mask in plan.masks.items()}
    one_row = batch == 1  # the plan's gemv form: W·x, as the seed writes it
    program: list[tuple] = []
    used: dict[int, object] = {}
    taken: list[tuple[Activation, object]] = []
    inputs: list[np.ndarray | None] = []
    i = 0
    while i < len(layers):
        layer, kind, after = layers[i], plan.program[i][2], plan.program[i][3]
        inputs.append(None if i == 0 else outs[i - 1])
        if kind is Dense:
            weight, bias = layer.weight.data, layer.bias
            operand = weight if one_row else weight.T
            used[i] = (layer.weight, weight, bias)
            fusable = after is not None and type(after.kernel) in ops.BIAS_FUSABLE
            if bias is not None and fusable:  # Z = X·Wᵀ; Z + b, A = f(Z) in one pass
                kernel = used[i + 1] = after.kernel
                taken.append((after, kernel))
                fused = kernels.prepared_bias_activation(
                    kernel.code, outs[i], bias.data, outs[i + 1], kernel.alpha
                )
                z = outs[i][0] if one_row else outs[i]
                program.append(
                    (_ROW_FUSED if one_row else _DENSE_FUSED, outs[i + 1], operand, fused, z)
                )
                inputs.append(outs[i])
                i += 2
                continue
            b = None if bias is None else bias.data
            step = _ROW if one_row else _DENSE
            program.append((step, outs[i], operand, b, outs[i][0] if one_row else None))
        elif kind is Activation:
            used[i] = layer.kernel
            taken.append((layer, layer.kernel))
            program.append((_ACTIVATION, outs[i], layer.kernel, None, None))
        else:  # Dropout, Standardize
            program.append((_FACTOR, outs[i], layer, i, masks.get(i)))
        i += 1
    return program, used, taken, inputs


def _run_forward(
    program: list[tuple], X: np.ndarray, factors: dict, evaluating: bool = False
) -> np.ndarray:
    """The steps of ``_forward_program`` on X; the last step's buffer (each Dropout's and
    Standardize's factor into ``factors``). ``evaluating``: every Dropout in eval mode."""
    x = X
    for kind, out, what, extra, more in program:
        if kind is _DENSE_FUSED:  # Z = X·Wᵀ, then Z + b and A = f(Z)
            np.matmul(x, what, out=more)
            extra()
        elif kind is _DENSE:  # Z = X·Wᵀ + b
            np.matmul(x, what, out=out)
            if extra is not None:
                out += extra
        elif kind is _ROW_FUSED:  # z = W·x, then z + b and a = f(z)
            np.matmul(what, x[0], out=more)
            extra()
        elif kind is _ROW:  # z = W·x + b
            np.matmul(what, x[0], out=more)
            if extra is not None:
                out += extra
        elif kind is _ACTIVATION:  # A = f(Z)
            result = what.forward(x, out)
            if result is not out and result is not None:
                np.copyto(out, result)
        else:  # Dropout, Standardize
            factors[extra] = _factor_forward(what, x, out, more, evaluating)
        x = out
    return x


def _wxb_kernels_only(plan: StackPlan) -> bool:
    """Whether a lean program can be made for the plan: its activations are wxb's own
    (a kernel of one's own runs on the plan's general path)."""
    return all(
        type(layer.kernel).__module__ == ops.__name__
        for layer in plan.layers
        if isinstance(layer, Activation)
    )


class LeanInference:
    """A StackPlan's forward without a graph (``predict``, a call under ``no_grad``) for
    one batch shape, every decision taken once, as ``LeanStack``'s for training: the same
    products and kernels into the same buffers, so the same numbers. At one row the
    checks and dispatch of the general forward cost as much as the arithmetic."""

    @classmethod
    def build(cls, plan: StackPlan, X: np.ndarray) -> LeanInference | None:
        """One for batches shaped as ``X``, after ``plan.forward`` ran on them; None where
        the stack is not one it runs."""
        if (
            plan.stale_reason is not None
            or len(X) > plan.capacity
            or X.shape[1:] != (plan.width,)
            or X.dtype != plan.dtype
            or plan.dtype not in (np.float32, np.float64)
            or not _wxb_kernels_only(plan)
            # its evaluating forward turns every Dropout off; eval() of such a layer may not
            or any(type(layer)._own_modes for layer in plan.layers)
        ):
            return None
        return cls(plan, X)

    def __init__(self, plan: StackPlan, X: np.ndarray) -> None:
        # (the plan itself is not held: it holds this, and a plan let go, as a thread's
        # when the thread ends, must take its buffers with it at once, not at a gc pass)
        self.shape, self.dtype = X.shape, X.dtype
        self.outputs = plan.outputs  # the plan's buffers, while it keeps these
        self.params, self.arrays = plan.params, [p.data for p in plan.params]
        self.loops = kernels.loaded()
        self.program, _, self.kernels, _ = _forward_program(plan, len(X))
        self.factors: dict[int, np.ndarray | float] = {}

    def current(self, X: np.ndarray, plan: StackPlan) -> bool:
        """Whether a batch like ``X`` runs here: the same shape and dtype, and the plan's
        (``plan``: the one it was built for) buffers, every parameter's array, every
        activation's kernel and the kernel route as when it was built (Dropout's mode and
        p, Standardize's statistics are read at each call)."""
        return (
            X.shape == self.shape
            and X.dtype == self.dtype
            and plan.outputs is self.outputs
            and all(map(operator.is_, map(_data, self.params), self.arrays))
            and all(layer.kernel is kernel for layer, kernel in self.kernels)
            and kernels.loaded() is self.loops
        )

    def forward(self, X: np.ndarray, evaluating: bool = False) -> np.ndarray:
        """What ``plan.forward(X, fresh_output=True, for_backward=False)`` returns (with
        ``evaluating``: every Dropout in eval mode, whatever its own)."""
        return _run_forward(self.program, X, self.factors, evaluating).copy()


class LeanStack:
    """A StackPlan's training forward and backward for one batch size, every decision
    taken once: the buffers sliced, the layers' kinds read, the kernel calls prepared.

    It computes what ``StackPlan.forward`` and ``backward`` compute, operation for
    operation (the same products of the same operands, the same kernels), for a stack
    whose parameters all train and write their gradients into one optimiser's flat
    buffer. At small sizes the Python of those general methods (their checks, slicing,
    dispatch and bookkeeping) costs more than the products. ``current`` says whether
    everything it took as fixed still holds; when not, the caller runs the plan's own
    methods (and may build another).
    """

    @classmethod
    def build(cls, plan: StackPlan, X: np.ndarray) -> LeanStack | None:
        """One for batches shaped as ``X``, after ``plan.forward`` ran on them; None
        where the stack is not one it runs."""
        params = plan.params
        if (
            len(X) < 2  # one row: the plan's gemv form
            or not params
            or plan.stale_reason is not None
            or len(X) > plan.capacity
            or X.shape[1:] != (plan.width,)
            or X.dtype != plan.dtype
            or plan.dtype not in (np.float32, np.float64)
            or not all(map(_requires_grad, params))
        ):
            return None
        home = params[0].grad_home
        for p in params:
            buffer = p.grad_buffer
            if (
                home is None
                or p.grad_home is not home
                or buffer is None
                or buffer.shape != p.shape
                or buffer.dtype != p.dtype
            ):
                return None
        if not _wxb_kernels_only(plan):
            return None  # a kernel of one's own: the plan runs it
        computed = [
            p
            for layer in plan.layers
            if isinstance(layer, Dense)
            for p in (layer.weight, layer.bias)
            if p is not None
        ]
        if len(computed) != len(params):
            return None  # a parameter besides a W or b gets no gradient: the plan leaves it
        return cls(plan, X)

    def __init__(self, plan: StackPlan, X: np.ndarray) -> None:
        batch, layers = len(X), plan.layers
        # the plan held weakly: it holds this, and a plan let go (a thread's, when the
        # thread ends) must take its buffers with it at once, not at a gc pass
        self._plan, self.shape, self.dtype = weakref.ref(plan), X.shape, X.dtype
        self.outputs = plan.outputs  # the plan's buffers, while it keeps these
        self.params, self.arrays = plan.params, [p.data for p in plan.params]
        self.home = plan.params[0].grad_home
        self.loops = kernels.loaded()
        outs = [out[:batch] for out in plan.outputs]
        grads = [None if g is None else g[:batch] for g in plan.input_grads]
        self.loss_grad = np.empty_like(outs[-1])  # ∇_A L, for the step to fill
        self.factors: dict[int, np.ndarray | float] = {}
        # the forward, and what it records (as the plan's forward records it)
        self.forward_program, self.used, self.kernels, inputs = _forward_program(plan, batch)
        self.results, self.later_inputs = outs, inputs[1:]
        index = {id(p): k for k, p in enumerate(plan.params)}
        # the output handed out by a recorded forward, where the last layer's backward
        # reads A: a change made to it in place is what the backward reads (as PyTorch's)
        self.reads_output = isinstance(layers[-1], Activation)
        self.handed_out: np.ndarray | None = None
        # the backward, from the last layer down to the first with a trainable one below;
        # each step's incoming gradient is what the step above it wrote (fixed buffers)
        below = plan._trainable_below(_requires_grad)
        self.backward_program: list[tuple] = []
        for i in range(len(layers) - 1, -1, -1):
            layer, x_in = layers[i], inputs[i]
            g_in = self.loss_grad if i == len(layers) - 1 else grads[i + 1]
            if isinstance(layer, Dense):
                w = index[id(layer.weight)]
                b = None if layer.bias is None else index[id(layer.bias)]
                to_input = grads[i] if below[i] else None
                entry = (_DENSE, g_in, x_in, (w, b, layer.weight.data), to_input)
                self.backward_program.append(entry)
                if not below[i]:
                    break
            elif not below[i]:
                break
            elif isinstance(layer, Activation):
                kernel, call = layer.kernel, None
                if x_in is not None and type(kernel) in ops.BIAS_FUSABLE:  # arrays fixed
                    call = kernels.prepared_activation_backward(
                        kernel.code, x_in, outs[i], g_in, grads[i], kernel.alpha
                    )
                entry = (_ACTIVATION, g_in, x_in, (call, kernel, outs[i]), grads[i])
                self.backward_program.append(entry)
            else:
                self.backward_program.append((_FACTOR, g_in, None, i, grads[i]))

    @property
    def plan(self) -> StackPlan:
        """The plan this runs for (alive while this is: only the plan holds this)."""
        return self._plan()

    def holds_arrays(self) -> bool:
        """Whether the plan's buffers and the parameters' arrays are still those it took."""
        return self.plan.outputs is self.outputs and all(
            map(operator.is_, map(_data, self.params), self.arrays)
        )

    def current(self, X: np.ndarray) -> bool:
        """Whether a batch like ``X`` runs here: the same shape and dtype, and the plan's
        buffers, every parameter's array, trainable flag and gradient buffers' owner, every
        activation's kernel and the kernel route as when it was built."""
        return (
            X.shape == self.shape
            and X.dtype == self.dtype
            and self.plan.outputs is self.outputs
            and self.plan.stale_reason is None
            and all(map(operator.is_, map(_data, self.params), self.arrays))
            and all(map(_requires_grad, self.params))
            and all(map(operator.is_, map(_grad_home, self.params), repeat(self.home)))
            and all(layer.kernel is kernel for layer, kernel in self.kernels)
            and kernels.loaded() is self.loops
        )

    def takes(self, grad: np.ndarray) -> bool:
        """Whether the backward after this stack's forward can run here from ``grad``:
        its shape and dtype, and every parameter still trainable (one frozen since the
        forward: the plan's general backward, from what ``forward`` recorded)."""
        return (
            type(grad) is np.ndarray
            and grad.shape == self.loss_grad.shape
            and grad.dtype == self.dtype
            and all(map(_requires_grad, self.params))
        )

    def forward(
        self, X: np.ndarray, fresh_output: bool = False, record: bool = False
    ) -> np.ndarray:
        """What ``StackPlan.forward(X, fresh_output)`` computes, into the same buffers (the
        output copied into a new array if ``fresh_output``). ``record``: leave in the plan
        what its forward leaves for its general backward (which a recorded graph may run)."""
        x = _run_forward(self.forward_program, X, self.factors)
        if fresh_output:
            x = x.copy()
        plan = self.plan
        self.handed_out = x if fresh_output and record and self.reads_output else None
        if record:
            plan.inputs, plan.used, plan.factors = [X, *self.later_inputs], self.used, self.factors
            plan.results = [*self.results[:-1], x] if fresh_output else self.results
            plan.output = x
        else:  # the plan's records are not this forward's: its backward must not follow it
            plan._lean_ran = None
        return x

    def backward(self, X: np.ndarray, grad: np.ndarray | None = None) -> None:
        """What ``StackPlan.backward(grad)`` computes after ``forward(X)``: ∂L/∂p into each
        parameter's gradient buffer, which becomes its ``.grad``. ``grad``: ∂L/∂output,
        if not already in ``loss_grad``."""
        if grad is not None and grad is not self.loss_grad:
            np.copyto(self.loss_grad, grad)
        if self.handed_out is not None:  # the general backward reads that array itself
            np.copyto(self.results[-1], self.handed_out)
        with self.plan._grad_lock:
            ensure_free_once(
                self.home
            )  # a gradient kept from an earlier step is never written over
            # (read at each step, never kept: a reference held here would count as a
            # user's, and ensure_free would start a new buffer at every step); as the
            # plan's _grad_slot: a gradient already set (a zero_grad that zeroes in place
            # leaves the buffer itself) is added to, from an array of its own
            buffers = list(map(_grad_buffer, self.params))
            with GRAD_LOCK:  # claimed, as _grad_slot's: another model may share a layer
                if _WRITING or any(map(operator.is_not, map(_grad, self.params), repeat(None))):
                    mine = [_claim_buffer(p) for p in self.params]
                    buffers = [
                        buffer if own else np.empty_like(p.data)
                        for p, buffer, own in zip(self.params, buffers, mine, strict=True)
                    ]
                    claimed = [id(p) for p, own in zip(self.params, mine, strict=True) if own]
                else:
                    claimed = list(map(id, self.params))
                    _WRITING.update(claimed)
            try:
                self._run_backward(X, buffers)
            except BaseException:
                with GRAD_LOCK:  # its buffers are free again
                    _WRITING.difference_update(claimed)
                raise
            with GRAD_LOCK:  # as the plan's backward sets them (another thread may add)
                for p, buffer in zip(self.params, buffers, strict=True):
                    p.grad = buffer if p.grad is None else accumulate_grad(p.grad, buffer)
                _WRITING.difference_update(claimed)

    def _run_backward(self, X: np.ndarray, buffers: list[np.ndarray]) -> None:
        """The backward program: ∂L/∂p of each parameter into ``buffers``."""
        for kind, g_in, x_in, what, out in self.backward_program:
            if kind is _DENSE:
                w, b, weight = what
                np.matmul(g_in.T, X if x_in is None else x_in, out=buffers[w])  # δ·Aᵀ
                if b is not None:
                    ops.sum_over_batch(g_in, out=buffers[b])  # Σ_batch δ
                if out is not None:
                    np.matmul(g_in, weight, out=out)  # ∂L/∂A⁽ˡ⁻¹⁾ = Wᵀ·δ
            elif kind is _ACTIVATION:  # δ = ∂L/∂A ⊙ f′(Z)
                call, kernel, a = what
                if call is not None:
                    call()
                else:
                    result = kernel.backward(X if x_in is None else x_in, a, g_in, out)
                    if result is not out:
                        np.copyto(out, result)
            else:
                np.multiply(g_in, self.factors[what], out=out)
