"""Primitives of the seed: each forward sits beside its backward rule.

Arrays hold one sample per row, as users hand them over: X is (B, n). The seed
writes the same products on columns; each rule says which seed equation it is.
Row form:    Z = X·Wᵀ + b         ∂L/∂W = δᵀ·X         ∂L/∂X = δ·W
Seed form:   Z = W·X + b          ∂L/∂W = δ·Xᵀ         ∂L/∂X = Wᵀ·δ

Element-wise work goes through small in-place kernels (``ActivationKernel``,
``LossKernel``) that write into a given ``out`` buffer; the graph ops below call
them with fresh buffers, and the planned training step (``wxb.step``) calls the
very same kernels with buffers it allocated once. One implementation, two users.
"""

from __future__ import annotations

import builtins
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from wxb import kernels
from wxb.backend import CPU, DTYPES, check_device, resolve_dtype, to_arguments
from wxb.errors import ConfigError, DataError, ShapeError, TrainingError
from wxb.random import as_generator, row_masks
from wxb.tensor import (
    ARRAY_FUNCTION_OPS,
    PLAIN_TENSORS,
    TYPE_NAMES,
    UFUNC_OPS,
    Tensor,
    ValuesIndices,
    dim_axes,
    dim_axis,
    float_array,
    foreign_array,
    hold_record,
    is_dtype,
    is_grad_enabled,
    is_view_of,
    keep_flag,
    keep_values,
    leaf_grad_slot,
    marks,
    no_grad,
    record_in_place,
    refuse_masked,
    result_type,
    retake_views,
    take_record,
    to_dtype,
    view_base,
    view_positions,
    view_record,
)


def as_tensor(value: object, like: Tensor | None = None) -> Tensor:
    if isinstance(value, Tensor):
        return value
    # a float tensor's operands take its dtype (np.float64(2) keeps x float32); an integer
    # one's (t.data = [1, 3]) keep theirs: 0.5 cast to int would be 0
    dtype = like.dtype if like is not None and like.dtype.kind == "f" else None
    if dtype is None:
        return Tensor(value)
    return Tensor(float_array(value, dtype, "an operand of a tensor"))


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a broadcast gradient back down to the operand's shape (an array, 0-d included)."""
    while grad.ndim > len(shape):
        grad = sum_along(grad, 0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = sum_along(grad, axis, keepdims=True)
    return np.asarray(grad)  # 0-d arithmetic gives NumPy scalars: .grad must be an array


def sum_along(array: np.ndarray, axis: object, keepdims: bool = False) -> np.ndarray:
    """Σ over ``axis`` (None: everything). In float32, NumPy adds the rows of an axis
    one after another, its error growing with their number (PyTorch's stays at float32's
    rounding): down a matrix's rows (a broadcast bias's gradient) it is then
    ``sum_over_batch``'s blocked gemv, over other axes a float64 sum. float64 and sums
    over everything (pairwise) stay NumPy's."""
    if array.dtype != np.float32 or axis is None or array.ndim < 2:
        return array.sum(axis=axis, keepdims=keepdims)
    if axis == 0 and array.ndim == 2 and not keepdims:
        return sum_over_batch(array)
    total = array.sum(axis=axis, keepdims=keepdims, dtype=np.float64)
    with np.errstate(over="ignore"):  # beyond float32: inf, as a float32 sum gives
        return np.asarray(total).astype(np.float32)


# ---------------------------------------------------------------------------------
# Matrix products
# ---------------------------------------------------------------------------------
def matmul(a: object, b: object) -> Tensor:
    """C = A·B for A (m×n), B (n×p): O(mnp) multiply-adds. A vector is a one-row A or a
    one-column B whose added dimension C drops, as NumPy's and PyTorch's @: X @ w of
    (m×n) and (n,) is (m,), v @ w a 0-d value."""
    a, b = _operands(a, b)
    if 1 in (a.ndim, b.ndim) and a.ndim <= 2 and b.ndim <= 2 and 0 not in (a.ndim, b.ndim):
        # as reshapes in the graph, whose rules carry ∂L/∂C back to the vector's shape
        rows = reshape(a, (1, a.shape[0])) if a.ndim == 1 else a
        columns = reshape(b, (b.shape[0], 1)) if b.ndim == 1 else b
        if rows.shape[1] == columns.shape[0]:
            product = matmul(rows, columns)
            return reshape(product, product.shape[a.ndim == 1 : 2 - (b.ndim == 1)])
    if max(a.ndim, b.ndim) > 2 and min(a.ndim, b.ndim) >= 1:
        return _batched_matmul(a, b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ShapeError(
            f"matmul: A·B needs A (m×n) and B (n×p); got A {_dims(a.shape)} and B {_dims(b.shape)}"
        )
    A, B = a.data, b.data
    needs_a, needs_b = a.requires_grad, b.requires_grad  # (one that asks later gets none)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        # ∂L/∂A = G·Bᵀ, ∂L/∂B = Aᵀ·G; each product only for an operand that asked for it
        return (g @ B.T if needs_a else None), (A.T @ g if needs_b else None)

    return Tensor.from_op(A @ B, "matmul", (a, b), backward, reads_inputs=(needs_b, needs_a))


def _batched_matmul(a: Tensor, b: Tensor) -> Tensor:
    """A stack of products (torch's and NumPy's @ of 3-d and more: attention's Q·Kᵀ), the
    leading dims broadcast; a vector on either side as a one-row or one-column matrix."""
    if a.ndim == 1:
        product = _batched_matmul(reshape(a, (1, a.shape[0])), b)
        return reshape(product, (*product.shape[:-2], product.shape[-1]))
    if b.ndim == 1:
        product = _batched_matmul(a, reshape(b, (b.shape[0], 1)))
        return reshape(product, product.shape[:-1])
    A, B = a.data, b.data
    try:
        batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    except ValueError:
        batch = None
    if batch is None or A.shape[-1] != B.shape[-2]:
        raise ShapeError(
            f"matmul: A·B needs A (…×m×n) and B (…×n×p), the leading dims broadcast; got A "
            f"{_dims(a.shape)} and B {_dims(b.shape)}"
        )

    needs_a, needs_b = a.requires_grad, b.requires_grad

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        # ∂L/∂A = G·Bᵀ and ∂L/∂B = Aᵀ·G per matrix of the stack, summed over broadcast dims
        ga = _unbroadcast(g @ np.swapaxes(B, -1, -2), A.shape) if needs_a else None
        return ga, (_unbroadcast(np.swapaxes(A, -1, -2) @ g, B.shape) if needs_b else None)

    out = np.matmul(A, B)
    return Tensor.from_op(out, "matmul", (a, b), backward, reads_inputs=(needs_b, needs_a))


def linear_map(x: Tensor, weight: Tensor, where: str = "Dense") -> Tensor:
    """The seed's W·X for W (m×n) and a batch X (n×B), computed on rows as X·Wᵀ."""
    m, n = weight.shape
    if x.ndim != 2 and x.shape[-1:] == (n,):  # n features, but not one sample a row
        # (torch's Linear maps the last dimension of any shape: "got (4,)" puzzled)
        raise ShapeError(
            f"{where}: Z = W·X + b needs a batch X of shape (B, {n}), one sample a row "
            f"(W is {m}×{n}); got shape {x.shape}: "
            + (
                "one sample is x.reshape(1, -1)"
                if x.ndim == 1
                else f"reshape to (-1, {n}) and back"
            )
        )
    if x.ndim != 2 or x.shape[1] != n:
        got = x.shape[1] if x.ndim == 2 else f"an array of shape {x.shape}"
        raise ShapeError(
            f"{where}: Z = W·X + b needs X with {n} features (W is {m}×{n}); got {got}"
        )
    X, W = x.data, weight.data
    needs_x, needs_w = x.requires_grad, weight.requires_grad  # (one that asks later gets none)

    def backward(delta: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        # seed: ∂L/∂A⁽ˡ⁻¹⁾ = W⁽ˡ⁾ᵀ·δ⁽ˡ⁾ (rows: δ·W);  ∂L/∂W⁽ˡ⁾ = δ⁽ˡ⁾·A⁽ˡ⁻¹⁾ᵀ (rows: δᵀ·X).
        # Only those asked for, as the planned backward: the first layer's δ·W (as costly
        # as its forward) has no taker when X is data, and a frozen W needs no δᵀ·X
        if not needs_w:
            return (delta @ W if needs_x else None), None
        # a new ∂L/∂W straight into the optimiser's buffer, where the step reads it
        slot = leaf_grad_slot(weight) if delta.dtype == X.dtype == W.dtype else None
        grad_w = delta.T @ X if slot is None else np.matmul(delta.T, X, out=slot)
        return (delta @ W if needs_x else None), grad_w

    return Tensor.from_op(X @ W.T, "W·X", (x, weight), backward, reads_inputs=(needs_w, needs_x))


def add_bias(z: Tensor, bias: Tensor) -> Tensor:
    """Z + b with b (m) broadcast over the batch."""
    if z.ndim != 2 or bias.shape != (z.shape[1],):
        raise ShapeError(f"add_bias: Z {_dims(z.shape)} and b {_dims(bias.shape)} do not match")

    def backward(delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # seed: ∂L/∂b⁽ˡ⁾ = δ⁽ˡ⁾, summed over the batch (into the optimiser's buffer if free)
        slot = leaf_grad_slot(bias) if delta.dtype == bias.dtype else None
        return delta, sum_over_batch(delta, out=slot)

    return Tensor.from_op(z.data + bias.data, "+b", (z, bias), backward, reads_inputs=False)


_ones: dict[tuple[int, np.dtype], np.ndarray] = {}


def dot64(a: np.ndarray, b: np.ndarray) -> float:
    """Σ a·b as a Python float. BLAS's float32 dot adds in float32, its error growing
    with the length; past 4,096 elements it goes in blocks whose dots add in float64."""
    if a.dtype == np.float64 or a.size <= 4096:
        return float(np.vdot(a, b))
    a, b = a.reshape(-1), b.reshape(-1)  # (a copy only where not contiguous)
    total = 0.0  # (not fsum: it raises where the dot gives inf or NaN)
    for i in range(0, a.size, 4096):
        total += float(np.vdot(a[i : i + 4096], b[i : i + 4096]))
    return total


_SUMMED_IN_FLOAT32 = 1024  # rows: beyond, float32 sums go in blocks added in float64


def sum_over_batch(delta: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Σ over rows as the product 1ᵀ·δ: BLAS's gemv is several times faster than a
    reduction. It adds in the arrays' dtype, so in float32 its error grows with the rows:
    a large batch goes in blocks of 1,024 rows whose sums add in float64 (PyTorch's sum
    keeps to float32's rounding at any batch)."""
    rows = len(delta)
    if delta.dtype != np.float32 or rows <= _SUMMED_IN_FLOAT32:
        return np.matmul(_ones_of(rows, delta.dtype), delta, out=out)
    ones = _ones_of(_SUMMED_IN_FLOAT32, delta.dtype)
    part = np.empty(delta.shape[1:], delta.dtype)
    total = np.zeros(delta.shape[1:], np.float64)
    for start in range(0, rows, _SUMMED_IN_FLOAT32):
        block = delta[start : start + _SUMMED_IN_FLOAT32]
        total += np.matmul(ones[: len(block)], block, out=part)
    with np.errstate(over="ignore"):  # beyond float32: inf, as the one gemv gives
        if out is None:
            return total.astype(delta.dtype)
        np.copyto(out, total, casting="same_kind")
    return out


def is_sparse(X: object) -> bool:
    """Whether X is a SciPy sparse matrix or array (SciPy is not imported for it: only
    sparse data brings it)."""
    return type(X).__module__.startswith("scipy.sparse")


def _touched_columns(X: object) -> tuple[np.ndarray, object] | None:
    """The columns a CSR batch touches and the batch on those alone (its column indices
    renumbered), where they are under half of X's: W's columns gathered, and ∂L/∂W's
    scattered, cost less than the product's transposed copy of all of W. None: all."""
    columns, renumbered = np.unique(X.indices, return_inverse=True)
    if 2 * len(columns) > X.shape[1]:
        return None
    indices = renumbered.astype(X.indices.dtype, copy=False)
    return columns, type(X)((X.data, indices, X.indptr), shape=(X.shape[0], len(columns)))


def sparse_rows_by_weight(X: object, weight: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Z = X·Wᵀ for CSR rows X (a TF-IDF or one-hot table) into ``out``: sparse × dense,
    as scikit-learn's MLP computes its first layer, so the work is nnz(X)·m, not B·n·m,
    and no dense copy of X is made. The sums run over each row's non-zeros in order."""
    touched = _touched_columns(X)
    if touched is None:
        np.copyto(out, X @ weight.T)
    else:  # the same sums, on the columns of W the batch reads
        columns, X = touched
        np.copyto(out, X @ np.take(weight, columns, axis=1).T)
    return out


def sparse_linear_map(X: object, weight: Tensor, where: str = "Dense") -> Tensor:
    """``linear_map`` for CSR rows X (a model called on a SciPy sparse X): Z = X·Wᵀ
    sparse × dense, recorded on W alone, as X is data (no ∂L/∂X is asked of it)."""
    m, n = weight.shape
    if X.shape[1] != n:
        raise ShapeError(
            f"{where}: Z = W·X + b needs X with {n} features (W is {m}×{n}); got {X.shape[1]}"
        )
    W = weight.data
    needs_w = weight.requires_grad  # (a frozen W: no δᵀ·X, as linear_map)

    def backward(delta: np.ndarray) -> tuple[np.ndarray | None]:
        # seed: ∂L/∂W⁽¹⁾ = δ⁽¹⁾·Xᵀ (rows: δᵀ·X), over the non-zeros of X
        if not needs_w:
            return (None,)
        slot = leaf_grad_slot(weight) if delta.dtype == X.dtype == W.dtype else None
        if slot is None:
            slot = np.empty((m, n), np.result_type(delta.dtype, X.dtype))
        return (sparse_weight_grad(delta, X, slot),)

    Z = sparse_rows_by_weight(X, W, np.empty((X.shape[0], m), np.result_type(X.dtype, W.dtype)))
    # X is the caller's own copy (validation.sparse_rows), W not read by the backward
    # (X, a constant, is kept for ∂L/∂W, as torch saves it: a second backward refuses)
    return keep_values(Tensor.from_op(Z, "W·X", (weight,), backward, reads_inputs=False))


def sparse_weight_grad(delta: np.ndarray, X: object, out: np.ndarray) -> np.ndarray:
    """The backward of ``sparse_rows_by_weight`` for W: ∂L/∂W = δᵀ·X into ``out`` (m × n),
    computed as (Xᵀ·δ)ᵀ, sparse × dense (∂L/∂X is not needed: X is data); 0 in the
    columns the batch does not touch."""
    touched = _touched_columns(X)
    if touched is None:
        np.copyto(out, (X.T @ delta).T)
    else:
        columns, X = touched
        out.fill(0)
        out[:, columns] = (X.T @ delta).T
    return out


def _ones_of(rows: int, dtype: np.dtype) -> np.ndarray:
    key = (rows, dtype)
    ones = _ones.get(key)
    if ones is None:
        if len(_ones) > 64:  # many batch sizes: start over rather than grow
            _ones.clear()
        ones = _ones[key] = np.ones(rows, dtype)
    return ones


def transpose(a: Tensor) -> Tensor:
    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g.T,)  # ∂L/∂A = (∂L/∂Aᵀ)ᵀ

    return _view_of(a, Tensor.from_op(a.data.T, "transpose", (a,), backward, reads_inputs=False))


def _view_of(source: Tensor, out: Tensor) -> Tensor:
    """``out``, sharing ``source``'s version counter when its array views source's: a
    later in-place change through either counts for both, as PyTorch's views do."""
    if out.data.base is not None and np.may_share_memory(out.data, source.data):
        out._versions = source._versions
        if out._backward is None:  # a constant's view: the version it was taken at, for
            out._seen_versions = (source._versions[0],)  # a recorded change after it
        # what it views, for an in-place change of it (recorded on the tensor at the
        # chain's end, as torch's base); a tuple where it was taken under no_grad
        # (torch refuses some of those: tensor.view_base)
        out._view_base = source if is_grad_enabled() else (source, True, False)
    return out


def _several(views: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """Views one op handed back together (split, chunk, unbind), marked as such: torch
    refuses an in-place change of one of them while the graph is recorded."""
    for v in views:
        own = getattr(v, "_view_base", None)
        if own is not None:
            source, quiet = (own, False) if type(own) is not tuple else own[:2]
            v._view_base = (source, quiet, True)
    return views


# ---------------------------------------------------------------------------------
# Element-wise arithmetic and reductions
# ---------------------------------------------------------------------------------
def _operands(a: object, b: object) -> tuple[Tensor, Tensor]:
    """Both as tensors of the dtype ``result_type`` gives (torch's rule: float32 x ⊙ a 0-d
    float64 scale stays float32, where NumPy would widen the result, which a float32
    layer after it then refuses); a plain number or array takes the tensor's dtype."""
    # the common cases first, as result_type decides them (a number or an array beside a
    # float tensor takes its dtype; two tensors of one dtype keep it), without its walk
    if isinstance(a, Tensor) and a.dtype.kind == "f":
        if not isinstance(b, Tensor):
            return a, _operand(b, a.dtype, a.requires_grad)
        if a.dtype == b.dtype:
            return a, b
    elif isinstance(b, Tensor) and b.dtype.kind == "f" and not isinstance(a, Tensor):
        return _operand(a, b.dtype, b.requires_grad), b
    a, b = in_result_type((a, b))
    return a, b


def in_result_type(operands: Sequence[object]) -> list[Tensor]:
    """The operands of one operation as tensors in the dtype of its result, by
    ``result_type`` (the one rule): a 0-d tensor of another dtype cast (``astype``, so its
    gradient comes back in its own dtype), numbers and arrays made tensors of it; whole
    numbers alone give float32, as wxb computes in floats."""
    dtype = result_type(*operands)
    dtype = dtype if dtype.kind == "f" else None  # (None: Tensor's default, checked)
    recorded = builtins.any(isinstance(x, Tensor) and x.requires_grad for x in operands)
    out = []
    for x in operands:
        if not isinstance(x, Tensor):
            out.append(Tensor(x) if dtype is None else _operand(x, dtype, recorded))
        elif x.ndim == 0 and dtype is not None and x.dtype != dtype and x.dtype.kind == "f":
            out.append(astype(x, dtype))  # (a dimensioned one NumPy widens by itself)
        else:
            out.append(x)
    return out


def _operand(value: object, dtype: np.dtype, recorded: bool) -> Tensor:
    """A number or array as a tensor of ``dtype``; kept apart from the caller's array
    where a graph that needs gradients will read it (``_kept``)."""
    made = Tensor(float_array(value, dtype, _OPERAND))
    return _kept(made, value) if recorded and is_grad_enabled() else made


_OPERAND = "an operand of a tensor"


def astype(a: Tensor, dtype: object) -> Tensor:
    """``a`` in another dtype (PyTorch's ``t.to(dtype)``); ∂L/∂a is ∂L/∂out cast back."""
    dtype = np.dtype(dtype)
    if a.dtype == dtype:
        return a
    original = a.dtype

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (np.asarray(g).astype(original),)

    return Tensor.from_op(a.data.astype(dtype), "astype", (a,), backward, reads_inputs=False)


def _kept(operand: Tensor, given: object) -> Tensor:
    """An array operand as a recorded backward will read it: a copy, so that the caller's
    ``arr *= 10`` after the forward cannot change the gradient unseen (no version counter
    follows a plain array; PyTorch refuses x * ndarray). Another library's array (a torch
    tensor, a pandas Series) is read through a view of its memory, which is copied too."""
    if isinstance(given, np.ndarray):
        shared = np.may_share_memory(operand.data, given)
    else:  # a number or list was cast into an array of its own: nothing else holds it
        shared = not operand.data.flags.owndata
    return Tensor(operand.data.copy()) if shared else operand


def add(a: object, b: object) -> Tensor:
    a, b = _operands(a, b)
    a_shape, b_shape = a.shape, b.shape

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # ∂(A + B)/∂A = ∂(A + B)/∂B = 1, summed over broadcast axes (as for ∂L/∂b)
        return _unbroadcast(g, a_shape), _unbroadcast(g, b_shape)

    return Tensor.from_op(_broadcasting(np.add, a, b), "+", (a, b), backward, reads_inputs=False)


def sub(a: object, b: object) -> Tensor:
    a, b = _operands(a, b)
    a_shape, b_shape = a.shape, b.shape

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _unbroadcast(g, a_shape), _unbroadcast(-g, b_shape)  # ∂(A − B)/∂B = −1

    return Tensor.from_op(
        _broadcasting(np.subtract, a, b), "-", (a, b), backward, reads_inputs=False
    )


def mul(a: object, b: object) -> Tensor:
    """Element-wise product ⊙ (a scalar is broadcast)."""
    a, b = _operands(a, b)
    A, B = a.data, b.data
    a_needs, b_needs = a.requires_grad, b.requires_grad

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        # ∂(A ⊙ B)/∂A = B: the same product rule as δ = ∂L/∂A ⊙ f′(Z); each only if asked
        # (the other factor alone is read: A changed in place since is no matter to ∂L/∂A)
        ga = _unbroadcast(g * B, A.shape) if a_needs else None
        return ga, (_unbroadcast(g * A, B.shape) if b_needs else None)

    out = _broadcasting(np.multiply, a, b)
    return Tensor.from_op(out, "⊙", (a, b), backward, reads_inputs=(b_needs, a_needs))


def div(a: object, b: object) -> Tensor:
    """Element-wise quotient A / B (a scalar is broadcast)."""
    constant = not isinstance(a, Tensor)
    a, b = _operands(a, b)
    A, B = a.data, b.data
    a_needs, b_needs = a.requires_grad, b.requires_grad
    if constant and b.dtype.kind == "f":
        return _number_over(A, b)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        # ∂(A / B)/∂A = 1/B, ∂(A / B)/∂B = −A/B²
        ga = _unbroadcast(g / B, A.shape) if a_needs else None
        # as (A/B)/B: B·B overflows (or underflows to 0) where −A/B² is finite
        gb = _unbroadcast(-g * ((A / B) / B), B.shape) if b_needs else None
        return ga, gb

    out = _broadcasting(np.true_divide, a, b)  # (A is read only for ∂L/∂B, as torch's)
    return Tensor.from_op(out, "/", (a, b), backward, reads_inputs=(b_needs, True))


def _number_over(A: np.ndarray, b: Tensor) -> Tensor:
    """``3.0 / x`` (a number or an array over a tensor) as torch's __rdiv__ computes it,
    x.reciprocal() * 3.0: its backward reads 1/B alone, which nothing else holds, so x
    and the quotient may change in place before it (the quotient read x, and refused)."""
    R = np.reciprocal(b.data)
    out = _broadcasting(np.multiply, Tensor(R), Tensor(A))

    def backward(g: np.ndarray) -> tuple[None, np.ndarray]:
        # ∂(A · 1/B)/∂B = −A/B², in torch's order: (g·A) through reciprocal's −g·R²
        return None, _unbroadcast(-(g * A) * (R * R), b.shape)

    return keep_values(Tensor.from_op(out, "/", (Tensor(A), b), backward, reads_inputs=False))


def power(a: object, b: object) -> Tensor:
    """Element-wise power A^B: ``x ** 2``, ``x ** y``, ``2 ** x``."""
    a, b = _operands(a, b)
    if a.dtype != b.dtype:  # in the wider dtype, as torch's: log A of a float32 base
        wider = np.promote_types(a.dtype, b.dtype)  # (∂/∂B) kept float32's 7 digits
        a, b = astype(a, wider), astype(b, wider)
    A, B = a.data, b.data
    a_needs, b_needs = a.requires_grad, b.requires_grad
    out = _broadcasting(np.power, a, b)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        ga = gb = None
        # inf and nan where A^(B−1) or log A has them, as PyTorch gives; no warnings
        with np.errstate(divide="ignore", invalid="ignore"):
            if a_needs:  # ∂(A^B)/∂A = B·A^(B−1), and 0 where B = 0 (as PyTorch)
                ga = _unbroadcast(g * np.where(B == 0, 0, B * np.power(A, B - 1)), A.shape)
            if b_needs:  # ∂(A^B)/∂B = A^B·log A, and 0 where A = 0 ≤ B (as PyTorch)
                gb = _unbroadcast(g * np.where((A == 0) & (B >= 0), 0, out * np.log(A)), B.shape)
        return ga, gb

    return Tensor.from_op(out, "^", (a, b), backward, saves_output=b.requires_grad)


def _broadcasting(ufunc: np.ufunc, a: Tensor, b: Tensor) -> np.ndarray:
    try:
        out = ufunc(a.data, b.data)
    except ValueError:
        raise ShapeError(
            f"{ufunc.__name__}: shapes {a.shape} and {b.shape} do not broadcast"
        ) from None
    return out if type(out) is np.ndarray else np.asarray(out)  # 0-d operands give scalars


def exp(a: object) -> Tensor:
    a = as_tensor(a)
    E = np.exp(a.data)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g * E,)  # (e^A)′ = e^A

    # it reads e^A alone: A changed in place since does not refuse it, as torch's
    return Tensor.from_op(E, "exp", (a,), backward, saves_output=True, reads_inputs=False)


def log(a: object) -> Tensor:
    a = as_tensor(a)
    A = a.data

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g / A,)  # (log A)′ = 1/A

    return Tensor.from_op(np.log(A), "log", (a,), backward)


def sqrt(a: object) -> Tensor:
    a = as_tensor(a)
    S = np.sqrt(a.data)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        with np.errstate(divide="ignore"):  # √0: an infinite slope, as PyTorch gives
            return (g / (2 * S),)  # (√A)′ = 1/(2√A)

    # (√A alone, as exp's e^A)
    return Tensor.from_op(S, "√", (a,), backward, saves_output=True, reads_inputs=False)


def absolute(a: object) -> Tensor:
    a = as_tensor(a)
    A = a.data

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g * _torch_sign(A),)  # |A|′ = sign(A), 0 at 0 and at NaN (as PyTorch)

    return Tensor.from_op(np.abs(A), "abs", (a,), backward)


def negative(a: object) -> Tensor:
    """−A. Its own node, not A ⊙ (−1): it reads nothing (torch's NegBackward saves
    nothing, so a second backward may walk it, and A may change in place)."""
    a = as_tensor(a)
    return Tensor.from_op(np.negative(a.data), "neg", (a,), _negated, reads_inputs=False)


def _negated(g: np.ndarray) -> tuple[np.ndarray]:
    return (np.negative(g),)  # ∂(−A)/∂A = −1


def sum(a: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
    shape = a.shape
    axis = tuple(axis) if isinstance(axis, list) else axis

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        if axis is not None and not keepdims:  # put the summed axes back, as size 1
            g = np.expand_dims(g, axis)
        # each summed element gets the sum's gradient (as ∂L/∂b = Σ δ)
        return (np.broadcast_to(g, shape),)

    total = sum_along(a.data, axis, keepdims)
    backward.reduced = (axis, keepdims)  # type: ignore[attr-defined]  # (ONNX export: axes)
    return Tensor.from_op(np.asarray(total), "Σ", (a,), backward, reads_inputs=False)


def mean(a: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
    total = sum(a, axis, keepdims)  # NumPy checks the axes first
    if axis is None:
        count = a.data.size
    else:
        axes = (axis,) if isinstance(axis, (int, np.integer)) else axis
        count = math.prod(a.shape[i] for i in axes)
    if not count:
        return mul(total, math.nan)  # the mean of nothing: NaN
    # Σ/n, not Σ·(1/n): the product rounds twice (5 of 12 right came out 0.41666669 in
    # float32, torch's 0.41666666); ∂L/∂Σ = G/n, torch's rule too. A node that reads
    # nothing (torch's MeanBackward saves nothing either), so a second backward may walk
    # it; n is its constant second input, as ONNX export reads Σ / n
    n = Tensor(np.asarray(count, dtype=total.dtype))
    out = np.true_divide(total.data, n.data)
    return Tensor.from_op(out, "/", (total, n), lambda g: (g / n.data, None), reads_inputs=False)


def reshape(a: Tensor, *shape: int | tuple[int, ...]) -> Tensor:
    """The same values in another shape: ``x.reshape(2, -1)`` or ``x.reshape((2, -1))``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    original = a.shape
    try:
        data = a.data.reshape(shape)
    except ValueError:
        raise ShapeError(f"reshape: {_dims(original)} cannot become {shape}") from None

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g.reshape(original),)  # reshaping moves no value: ∂L/∂A is G reshaped back

    return _view_of(a, Tensor.from_op(data, "reshape", (a,), backward, reads_inputs=False))


def concatenate(tensors: Sequence[object], axis: int = 0) -> Tensor:
    """Tensors joined along an existing ``axis`` (``torch.cat``, ``np.concatenate``): each
    one's ∂L/∂ is its own slice of ∂L/∂out. Arrays and numbers among them take the
    tensors' dtype, as an operand does; tensors of two dtypes give the wider, for all."""
    items, data, axis = _joined("concatenate", np.concatenate, tensors, axis)
    bounds = np.cumsum([0] + [t.shape[axis] for t in items])
    before = (slice(None),) * axis

    def backward(g: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(
            _in_dtype(g[(*before, slice(start, stop))], t.dtype)
            for t, start, stop in zip(items, bounds[:-1], bounds[1:], strict=True)
        )

    return Tensor.from_op(data, "concatenate", tuple(items), backward, reads_inputs=False)


cat = concatenate  # PyTorch's name


def stack(tensors: Sequence[object], axis: int = 0) -> Tensor:
    """Tensors of one shape joined along a new ``axis`` (``torch.stack``, ``np.stack``):
    each one's ∂L/∂ is its own index along that axis of ∂L/∂out."""
    items, data, axis = _joined("stack", np.stack, tensors, axis)

    def backward(g: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(_in_dtype(np.take(g, i, axis=axis), t.dtype) for i, t in enumerate(items))

    return Tensor.from_op(data, "stack", tuple(items), backward, reads_inputs=False)


def _joined(
    name: str, join: Callable, tensors: object, axis: object
) -> tuple[list[Tensor], np.ndarray, int]:
    """The operands of concatenate or stack as tensors, checked; their arrays joined by
    NumPy's ``join``; and the axis counted from the front of the result."""
    if not isinstance(tensors, (list, tuple)):
        kind = type(tensors).__name__
        raise ConfigError(f"{name} takes a list or tuple of tensors; got a {kind}")
    if not tensors:
        raise ShapeError(f"{name}: got no tensors to join")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ConfigError(f"{name}: axis must be an integer; got {axis!r}")
    # arrays and numbers take the widest float tensor's dtype (the result's): cast to a
    # narrower one's first, a float64 array would join a float64 result rounded to float32
    joined = [t for t in tensors if isinstance(t, Tensor)]
    like = max(joined, key=lambda t: (t.dtype.kind == "f", t.dtype.itemsize), default=None)
    items = [as_tensor(t, like) for t in tensors]
    try:
        data = join([t.data for t in items], axis=axis)
    except (ValueError, np.exceptions.AxisError) as error:
        shapes = ", ".join(_dims(t.shape) for t in items)
        raise ShapeError(f"{name}: {shapes} along axis {axis}: {error}") from None
    return items, data, axis % data.ndim


def _in_dtype(grad: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return grad if grad.dtype == dtype else grad.astype(dtype)


def _numpy_joining(op: Callable[..., Tensor], name: str) -> Callable[..., Tensor]:
    """``np.concatenate``/``np.stack`` on tensors, NumPy's signature: an ``out``, a
    ``dtype`` or a ``casting`` of its own would give an array, so they are refused."""

    def joined(arrays: Sequence[object], axis: int = 0, **options: object) -> Tensor:
        given = {key: value for key, value in options.items() if value is not None}
        if given.pop("casting", "same_kind") != "same_kind" or given:
            raise ConfigError(
                f"np.{name} on wxb tensors takes arrays and axis only (got "
                f"{', '.join(sorted(options))}); cast the tensors first"
            )
        return op(list(arrays), axis)

    return joined


def index(a: Tensor, key: object) -> Tensor:
    """``a[key]``: integers, slices, index arrays, boolean masks, as NumPy indexes, except
    that integers beside index arrays go first, as PyTorch's do (``_torch_order``)."""
    A = a.data
    key = _whole_key(key, A)
    first = None
    if _is_integer(key) or (type(key) is tuple and all(map(_is_integer, key))):
        chosen = A[(*key, ...) if type(key) is tuple else (key, ...)]  # a 0-d view, as torch's
    else:
        first, key = _torch_order(key, A.ndim)
        chosen = A[key] if first is None else A[first][key]
    repeats = _is_advanced(key)
    if repeats and a.requires_grad and is_grad_enabled():
        key = _copied(key)  # the backward's own: the caller may reuse its index arrays

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        # ∂L/∂A: G where A was picked, 0 elsewhere; an element picked twice gets both
        grad = np.zeros_like(A)
        picked = grad if first is None else grad[first]  # (a view: writes reach grad)
        if repeats:
            np.add.at(picked, key, g)
        else:
            picked[key] = g
        return (grad,)

    backward.key = key if first is None else None  # type: ignore[attr-defined]  # (ONNX export)
    picked = Tensor.from_op(chosen, "index", (a,), backward, reads_inputs=False)
    if repeats:  # (torch's IndexBackward saves the index arrays; a slice's saves none)
        keep_values(picked)
    return _view_of(a, picked)


def _torch_order(key: object, ndim: int) -> tuple[tuple | None, object]:
    """A key that mixes integers with index arrays as two steps, the integers (and slices)
    first, then the arrays on the dimensions left, as PyTorch indexes; (None, key) for
    any other key. NumPy counts an integer as an index array, and with a slice between
    it and an array puts the picked dimension first: for x of shape (2, 4, 3), NumPy's
    x[0, :, [0, 1, 2]] is x[0].T of shape (3, 4), PyTorch's x[0] of shape (4, 3). An
    ``...`` that stands for no dimension parts no arrays, as in PyTorch (NumPy's
    x[:, i, ..., j] on 3 dimensions put i, j's dimension first)."""
    if type(key) is not tuple:
        return None, key
    integers = arrays = False
    spanned = 0  # the dimensions the key names (not ... or None)
    for k in key:
        if _is_integer(k):
            integers = True
        elif isinstance(k, (bool, np.bool_)) or (isinstance(k, np.ndarray) and k.ndim == 0):
            return None, key  # (a 0-d mask adds a dimension: left to NumPy)
        elif isinstance(k, np.ndarray):
            arrays = True
            spanned += k.ndim if k.dtype == bool else 1
            continue
        spanned += k is not None and k is not Ellipsis
    if arrays and spanned == ndim and any(k is Ellipsis for k in key):
        key = tuple(k for k in key if k is not Ellipsis)
    if not (integers and arrays):
        return None, key
    first, then = [], []
    for k in key:
        if _is_integer(k):
            first.append(k)
        elif isinstance(k, np.ndarray):  # a mask spans as many dimensions as it has
            first += [slice(None)] * (k.ndim if k.dtype == bool else 1)
            then.append(k)
        else:  # a slice, None or ... : applied in the first step, kept whole in the second
            first.append(k)
            then.append(k if k is Ellipsis else slice(None))
    return tuple(first), tuple(then)


def _copied(key: object) -> object:
    """The key with each index array copied (torch.tensor(key) copies it too)."""
    if isinstance(key, tuple):
        return tuple(_copied(k) for k in key)
    return key.copy() if isinstance(key, np.ndarray) else key


def _is_integer(k: object) -> bool:
    return isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))


def _whole_key(key: object, indexed: np.ndarray) -> object:
    """The key of t[key] (t's array ``indexed``) as _index_key gives it, a list of index
    lists and a uint8 array of the dimensions' own shape refused (_refuse_byte_masks)."""
    if type(key) is list and len(key) < 32 and any(map(_names_dimensions, key)):
        # torch reads x[[rows, cols]] as x[rows, cols] (deprecated), NumPy as one index
        # array: x[[[0, 1], [1, 2]]] is (2, 5) in one and (2, 2, 3, 5) in the other
        raise ShapeError(
            "index: a list holding lists, arrays, slices or None is read as several dims' "
            "indices by torch (deprecated) and as one index array by NumPy; write "
            "x[rows, cols] (a tuple) or x[np.array(key)] for the one you mean"
        )
    key = _index_key(key)
    if type(key) is tuple:  # (checked inline: indexing is a hot path)
        for k in key:
            if isinstance(k, np.ndarray) and k.dtype.char == "B":  # uint8 (== costs more)
                _refuse_byte_masks(key, indexed)
                break
    elif isinstance(key, np.ndarray) and key.dtype.char == "B":
        _refuse_byte_masks(key, indexed)
    return key


def _refuse_byte_masks(key: object, indexed: np.ndarray) -> None:
    """A uint8 index array refused where it has the shape of the dimensions it stands at:
    torch reads it as a mask there (deprecated: its nonzero places), NumPy as positions,
    and the two pick other rows without a word (x[[1, 0, 1, 1]] as uint8). Elsewhere
    torch refuses it as a mask of the wrong shape, and NumPy's positions are taken."""
    parts = key if type(key) is tuple else (key,)
    shape = indexed.shape
    at = 0  # the dimension the part stands at
    for k in parts:
        if k is Ellipsis:
            return  # (what follows stands at dimensions counted from the end: not checked)
        if isinstance(k, np.ndarray) and k.dtype.char == "B" and k.ndim:
            if tuple(shape[at : at + k.ndim]) == k.shape:
                raise DataError(
                    f"index: a uint8 array of shape {k.shape} at dimension {at} of a tensor "
                    f"of shape {tuple(shape)}, which torch reads as a mask (its nonzero "
                    "places; deprecated there) and NumPy as positions; say which: "
                    "idx.astype(bool) for a mask, idx.astype(np.int64) for positions"
                )
        if isinstance(k, np.ndarray) and k.dtype == bool:
            at += k.ndim
        elif k is not None:
            at += 1


def _index_key(key: object) -> object:
    """The key with tensors as their arrays and lists as arrays (fixed at the forward)."""
    if isinstance(key, tuple):
        return tuple(_index_key(k) for k in key)
    if isinstance(key, Tensor):
        if key.dtype.kind == "f":  # NumPy's refusal named neither the tensor nor the way out
            raise DataError(
                f"index: a wxb Tensor used as an index holds {key.dtype} values, and torch "
                f"refuses float indices ({_FLOAT_INDEX}); index with integers: x[idx.long()], "
                "x[np.arange(n), y] for torch's x[torch.arange(n), y], or x[mask.data > 0] "
                "for a mask"
            )
        key = key.data
    elif hasattr(key, "__array__") and not isinstance(key, (np.ndarray, np.generic)):
        # a torch tensor: its array, which the backward then copies as any index array's,
        # and whose integers go first beside others as in PyTorch (_torch_order)
        key = np.asarray(key)
    if isinstance(key, np.ndarray) and key.ndim == 0 and key.dtype.kind in "iu":
        return int(key)  # an integer, as PyTorch reads it (a view), not NumPy's fancy index
    if isinstance(key, list):  # [] picks nothing (as an empty float array it is refused)
        return np.asarray(key) if key else np.empty(0, np.intp)
    return key


def _names_dimensions(k: object) -> bool:
    """Whether torch takes a list holding k as a tuple of indices (its NumPy-1 rule)."""
    return (
        k is None
        or k is Ellipsis
        or isinstance(k, (list, tuple, slice, np.ndarray, Tensor))
        or (hasattr(k, "__array__") and not isinstance(k, np.generic))
    )


def _is_advanced(key: object) -> bool:
    """Whether NumPy indexes with arrays here (the same element may be picked twice)."""
    parts = key if isinstance(key, tuple) else (key,)
    basic = (int, np.integer, slice, type(None), type(Ellipsis))
    return any(isinstance(k, bool) or not isinstance(k, basic) for k in parts)


# ---------------------------------------------------------------------------------
# Activations A = f(Z): in-place kernels, and the graph op that uses them
# ---------------------------------------------------------------------------------
_Z, _A = frozenset({"z"}), frozenset({"a"})  # what a kernel's backward reads: Z, A = f(Z)


class ActivationKernel(Protocol):
    name: str
    # ``backward_reads``: which of Z and A its backward reads (both unless it says), so
    # that an in-place change of the other one does not refuse the backward, as torch's
    # (σ, tanh, ReLU and softmax save their output; GELU, SiLU, ELU their input)

    def forward(self, z: np.ndarray, out: np.ndarray) -> np.ndarray: ...

    def backward(
        self, z: np.ndarray, a: np.ndarray, grad: np.ndarray, out: np.ndarray
    ) -> np.ndarray:
        """out = grad ⊙ f′(z): the seed's δ = ∂L/∂A ⊙ f′(Z)."""
        ...


class _Pointwise:
    """An activation the kernels know by code: f and f′ in one pass each (wxb.kernels)."""

    code: int
    alpha = 0.0

    def forward(self, z, out):
        return kernels.activation_forward(self.code, z, out, self.alpha)

    def backward(self, z, a, grad, out):
        return kernels.activation_backward(self.code, z, a, grad, out, self.alpha)


class Identity(_Pointwise):
    name = "identity"
    code = kernels.IDENTITY  # f′ = 1
    backward_reads = frozenset()


class Sigmoid(_Pointwise):
    name = "sigmoid"
    code = kernels.SIGMOID  # σ(z) = 1 / (1 + e^(−z)), σ′ = σ(1 − σ)
    backward_reads = _A


class Tanh(_Pointwise):
    name = "tanh"
    code = kernels.TANH  # tanh′ = 1 − tanh²
    backward_reads = _A


class ReLU(_Pointwise):
    name = "relu"
    code = kernels.RELU  # max(0, z); f′ = 1 where z > 0, else 0: exactly where a > 0
    backward_reads = _A


@dataclass(frozen=True)
class LeakyReLU(_Pointwise):
    negative_slope: float = 0.01
    name: str = "leaky_relu"
    code = kernels.LEAKY_RELU  # z where z > 0, else αz; f′ = 1 where z > 0, else α
    backward_reads = _Z

    def __post_init__(self) -> None:  # any finite α, as in PyTorch
        slope = self.negative_slope
        if not _is_number(slope):
            raise ConfigError(f"LeakyReLU negative_slope must be a number; got {slope!r}")
        if not math.isfinite(slope):
            raise ConfigError(f"LeakyReLU negative_slope must be finite; got {slope!r}")
        object.__setattr__(self, "negative_slope", float(slope))

    @property
    def alpha(self) -> float:
        return self.negative_slope


# Kernels the planned stack may run in one pass with the bias before them (exact types:
# a subclass may compute something else).
BIAS_FUSABLE = (Identity, Sigmoid, Tanh, ReLU, LeakyReLU)

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2 * math.pi)


@dataclass(frozen=True)
class GELU:
    """GELU(z) = z·Φ(z); ``approximate="tanh"`` uses the tanh formula, as PyTorch does."""

    approximate: str = "none"
    name: str = "gelu"
    backward_reads = _Z

    def __post_init__(self) -> None:
        if not isinstance(self.approximate, str) or self.approximate not in ("none", "tanh"):
            raise ConfigError(
                f"GELU approximate must be 'none' or 'tanh'; got {self.approximate!r}"
            )

    def forward(self, z, out):
        if self.approximate == "tanh":
            np.multiply(0.5 * z, 1 + np.tanh(_GELU_C * (z + 0.044715 * z**3)), out=out)
        else:
            np.multiply(z, _normal_cdf(z), out=out)
        return out

    def backward(self, z, a, grad, out):
        if self.approximate == "tanh":
            inner = _GELU_C * (z + 0.044715 * z**3)
            t = np.tanh(inner)
            d_inner = _GELU_C * (1 + 3 * 0.044715 * z**2)
            np.multiply(0.5 * (1 + t) + 0.5 * z * (1 - t * t) * d_inner, grad, out=out)
        else:  # d/dz z·Φ(z) = Φ(z) + z·φ(z)
            pdf = (np.exp(-0.5 * z.astype(np.float64) ** 2) * _INV_SQRT_2PI).astype(z.dtype)
            np.multiply(_normal_cdf(z) + z * pdf, grad, out=out)
        return out


def _finite_setting(value: object, what: str, positive: bool = False) -> float:
    """An activation's number setting, checked as the kernel is made."""
    if not _is_number(value) or not math.isfinite(value) or (positive and value <= 0):
        kind = "a positive finite number" if positive else "a finite number"
        raise ConfigError(f"{what} must be {kind}; got {value!r}")
    return float(value)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) in z's dtype, stable for any z (the Sigmoid kernel's)."""
    return kernels.activation_forward(kernels.SIGMOID, z, np.empty_like(z))


class SiLU:
    """SiLU (swish) z·σ(z); f′ = σ(z)·(1 + z·(1 − σ(z)))."""

    name = "silu"
    backward_reads = _Z

    def forward(self, z, out):
        return np.multiply(z, _sigmoid(z), out=out)

    def backward(self, z, a, grad, out):
        s = _sigmoid(z)
        np.multiply(s, 1 + z * (1 - s), out=out)
        out *= grad
        return out


def _nonpositive(z: np.ndarray) -> np.ndarray:
    """z where z ≤ 0 (−0 kept: torch's ELUs give −0 there), else 0."""
    return np.where(z > 0, z.dtype.type(0), z)


@dataclass(frozen=True)
class ELU:
    """z where z > 0, else α·(e^z − 1); f′ = 1 where z > 0, else α·e^z (PyTorch's, α = 1).
    At a NaN f′ is NaN, as torch's vectorised kernel gives it (its scalar tail, the last
    few elements, gives 1)."""

    alpha: float = 1.0
    name: str = "elu"
    backward_reads = _Z

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", _finite_setting(self.alpha, "ELU alpha"))

    def forward(self, z, out):
        below = np.expm1(_nonpositive(z))  # e^z − 1 where it is used: no overflow
        below *= self.alpha
        out[...] = np.where(z > 0, z, below)
        return out

    def backward(self, z, a, grad, out):
        slope = np.exp(np.minimum(z, 0))
        slope *= self.alpha
        np.multiply(np.where(z > 0, 1, slope), grad, out=out)
        return out


@dataclass(frozen=True)
class Softplus:
    """(1/β)·log(1 + e^(βz)), and z itself where βz > threshold (PyTorch's, for the
    rounding there); f′ = σ(βz), 1 beyond the threshold."""

    beta: float = 1.0
    threshold: float = 20.0
    name: str = "softplus"
    backward_reads = _Z

    def __post_init__(self) -> None:
        beta = _finite_setting(self.beta, "Softplus beta", positive=True)
        object.__setattr__(self, "beta", beta)
        threshold = _finite_setting(self.threshold, "Softplus threshold")
        object.__setattr__(self, "threshold", threshold)

    def forward(self, z, out):
        scaled = z * z.dtype.type(self.beta)
        linear = scaled > self.threshold
        # log(1 + e^x) = max(x, 0) + log1p(e^(−|x|)): no overflow, no lost small values
        smooth = np.maximum(scaled, 0) + np.log1p(np.exp(-np.abs(scaled)))
        smooth /= z.dtype.type(self.beta)
        out[...] = np.where(linear, z, smooth)
        return out

    def backward(self, z, a, grad, out):
        scaled = z * z.dtype.type(self.beta)
        slope = np.where(scaled > self.threshold, 1, _sigmoid(scaled))
        np.multiply(slope, grad, out=out)
        return out


def _typed(z: np.ndarray, value: float) -> np.generic:
    """A setting in z's dtype (float32 arithmetic stays float32, as torch's)."""
    return z.dtype.type(value)


class ReLU6:
    """min(max(z, 0), 6); f′ = 1 where 0 < z < 6, else 0 (torch's Hardtanh(0, 6): 0 at
    the kinks z = 0 and z = 6 themselves)."""

    name = "relu6"
    backward_reads = _Z
    low, high = 0.0, 6.0

    def forward(self, z, out):
        return np.clip(z, _typed(z, self.low), _typed(z, self.high), out=out)

    def backward(self, z, a, grad, out):
        flat = (z <= self.low) | (z >= self.high)
        np.copyto(out, grad)
        out[flat] = 0
        return out


@dataclass(frozen=True)
class Hardtanh(ReLU6):
    """min(max(z, min_val), max_val); f′ = 1 strictly between them, else 0 (torch's)."""

    min_val: float = -1.0
    max_val: float = 1.0
    name: str = "hardtanh"

    def __post_init__(self) -> None:
        low = _finite_setting(self.min_val, "Hardtanh min_val")
        high = _finite_setting(self.max_val, "Hardtanh max_val")
        if not high > low:
            raise ConfigError(f"Hardtanh max_val must exceed min_val; got {low} and {high}")
        object.__setattr__(self, "min_val", low)
        object.__setattr__(self, "max_val", high)

    @property
    def low(self) -> float:
        return self.min_val

    @property
    def high(self) -> float:
        return self.max_val


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


class SELU:
    """λ·z where z > 0, else λα·(e^z − 1) (λ, α: torch's constants); f′ = λ where z > 0,
    else λα·e^z (NaN at a NaN, as ELU's)."""

    name = "selu"
    backward_reads = _Z

    def forward(self, z, out):
        below = np.expm1(_nonpositive(z))  # e^z taken only where used: no overflow
        below *= _typed(z, _SELU_ALPHA * _SELU_SCALE)
        out[...] = np.where(z > 0, z * _typed(z, _SELU_SCALE), below)
        return out

    def backward(self, z, a, grad, out):
        slope = np.exp(np.minimum(z, 0))
        slope *= _typed(z, _SELU_ALPHA * _SELU_SCALE)
        np.multiply(np.where(z > 0, _typed(z, _SELU_SCALE), slope), grad, out=out)
        return out


@dataclass(frozen=True)
class CELU:
    """z where z > 0, else α·(e^(z/α) − 1); f′ = 1 where z > 0, else e^(z/α) (NaN at a
    NaN, as ELU's)."""

    alpha: float = 1.0
    name: str = "celu"
    backward_reads = _Z

    def __post_init__(self) -> None:
        alpha = _finite_setting(self.alpha, "CELU alpha")
        if alpha == 0:
            raise ConfigError("CELU alpha must be a finite number other than 0; got 0.0")
        object.__setattr__(self, "alpha", alpha)

    def forward(self, z, out):
        below = np.expm1(_nonpositive(z) * _typed(z, 1 / self.alpha))
        below *= _typed(z, self.alpha)
        out[...] = np.where(z > 0, z, below)
        return out

    def backward(self, z, a, grad, out):
        slope = np.exp(np.minimum(z, 0) * _typed(z, 1 / self.alpha))
        np.multiply(np.where(z > 0, 1, slope), grad, out=out)
        return out


def _softplus1(z: np.ndarray) -> np.ndarray:
    """log(1 + e^z) = max(z, 0) + log1p(e^(−|z|)): no overflow, no lost small values."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


class Mish:
    """z·tanh(softplus(z)); f′ = t + z·σ(z)·(1 − t²) with t = tanh(softplus(z))."""

    name = "mish"
    backward_reads = _Z

    def forward(self, z, out):
        return np.multiply(z, np.tanh(_softplus1(z)), out=out)

    def backward(self, z, a, grad, out):
        t = np.tanh(_softplus1(z))
        np.multiply(z * _sigmoid(z), 1 - t * t, out=out)
        out += t
        out *= grad
        return out


class Hardswish:
    """z·min(max(z + 3, 0), 6)/6; f′ = 0 up to −3, z/3 + ½ between, 1 from 3 (torch's
    choice at the kinks themselves: 0 at z = −3, 1 at z = 3)."""

    name = "hardswish"
    backward_reads = _Z

    def forward(self, z, out):
        np.multiply(z, np.clip(z + _typed(z, 3), _typed(z, 0), _typed(z, 6)), out=out)
        out /= _typed(z, 6)
        return out

    def backward(self, z, a, grad, out):
        slope = np.where(z <= -3, 0, np.where(z < 3, z / _typed(z, 3) + _typed(z, 0.5), 1))
        np.multiply(slope, grad, out=out)
        return out


class Hardsigmoid:
    """min(max(z + 3, 0), 6)/6; f′ = 1/6 strictly between −3 and 3, else 0 (torch's)."""

    name = "hardsigmoid"
    backward_reads = _Z

    def forward(self, z, out):
        np.clip(z + _typed(z, 3), _typed(z, 0), _typed(z, 6), out=out)
        out /= _typed(z, 6)
        return out

    def backward(self, z, a, grad, out):
        inside = (z > -3) & (z < 3)
        np.multiply(grad, _typed(z, 1 / 6), out=out)
        out[~inside] = 0
        return out


class LogSigmoid:
    """log σ(z) = min(z, 0) − log1p(e^(−|z|)); f′ = 1 − σ(z), as e^(−|z|)/(1 + e^(−|z|))
    for z ≥ 0 and 1 − that below (torch's, with no overflow either way)."""

    name = "logsigmoid"
    backward_reads = _Z

    def forward(self, z, out):
        np.subtract(np.minimum(z, 0), np.log1p(np.exp(-np.abs(z))), out=out)
        return out

    def backward(self, z, a, grad, out):
        e = np.exp(-np.abs(z))
        e /= 1 + e
        slope = np.where(z < 0, 1 - e, e)
        np.multiply(slope, grad, out=out)
        return out


class Softsign:
    """z/(1 + |z|); f′ = 1/(1 + |z|)². At z = ±inf both are NaN, as torch's (inf/inf;
    f′ was 0 under a NaN output)."""

    name = "softsign"
    backward_reads = _Z

    def forward(self, z, out):
        return np.divide(z, np.abs(z) + 1, out=out)

    def backward(self, z, a, grad, out):
        d = np.abs(z) + 1
        np.divide(grad, d * d, out=out)
        out[np.isinf(z)] = np.nan
        return out


class Tanhshrink:
    """z − tanh(z); f′ = tanh²(z)."""

    name = "tanhshrink"
    backward_reads = _Z

    def forward(self, z, out):
        return np.subtract(z, np.tanh(z), out=out)

    def backward(self, z, a, grad, out):
        t = np.tanh(z)
        np.multiply(t * t, grad, out=out)
        return out


@dataclass(frozen=True)
class Threshold:
    """value where z ≤ threshold, else z; f′ = 0 where z ≤ threshold, else 1."""

    threshold: float = 0.0
    value: float = 0.0
    name: str = "threshold"
    backward_reads = _Z

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "threshold", _finite_setting(self.threshold, "Threshold threshold")
        )
        object.__setattr__(self, "value", _finite_setting(self.value, "Threshold value"))

    # torch's test is z ≤ threshold (value there), so a NaN passes on as NaN, with δ
    def forward(self, z, out):
        out[...] = np.where(z <= self.threshold, _typed(z, self.value), z)
        return out

    def backward(self, z, a, grad, out):
        np.multiply(grad, ~(z <= self.threshold), out=out)
        return out


@dataclass(frozen=True)
class Hardshrink:
    """z where |z| > λ, else 0; f′ = 1 where |z| > λ, else 0 (0 at z = ±λ, as torch's).
    λ in z's dtype, as torch compares. A NaN passes as NaN, and δ with it (torch's rule;
    its vectorised loop gives 0 there, its loop's tail δ: no one answer to match)."""

    lambd: float = 0.5
    name: str = "hardshrink"
    backward_reads = _Z

    def __post_init__(self) -> None:
        object.__setattr__(self, "lambd", _finite_setting(self.lambd, "Hardshrink lambd"))

    def forward(self, z, out):
        out[...] = np.where(np.abs(z) <= _typed(z, self.lambd), _typed(z, 0), z)
        return out

    def backward(self, z, a, grad, out):
        # a select, not g ⊙ mask: an inf or NaN δ inside the band gives 0, as torch's
        out[...] = np.where(np.abs(z) <= _typed(z, self.lambd), _typed(z, 0), grad)
        return out


@dataclass(frozen=True)
class Softshrink:
    """z − λ where z > λ, z + λ where z < −λ, else 0 (λ ≥ 0, torch's check); f′ = 1
    where |z| > λ, else 0 (0 at z = ±λ, as torch's). z − sign(z)·λ rounds as torch's
    z ∓ λ in z's dtype. A NaN passes as NaN, and δ with it (as Hardshrink's)."""

    lambd: float = 0.5
    name: str = "softshrink"
    backward_reads = _Z

    def __post_init__(self) -> None:
        lambd = _finite_setting(self.lambd, "Softshrink lambd")
        if lambd < 0:  # (torch refuses it at the call: "lambda must be in range [0, …]")
            raise ConfigError(f"Softshrink lambd must be 0 or more; got {self.lambd!r}")
        object.__setattr__(self, "lambd", lambd)

    def forward(self, z, out):
        lambd = _typed(z, self.lambd)
        out[...] = np.where(np.abs(z) <= lambd, _typed(z, 0), z - np.copysign(lambd, z))
        return out

    def backward(self, z, a, grad, out):
        out[...] = np.where(np.abs(z) <= _typed(z, self.lambd), _typed(z, 0), grad)
        return out


_GELU_C = math.sqrt(2 / math.pi)


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    """Φ(z) = ½·erfc(−z/√2), in float64 (no cancellation in the lower tail), cast back."""
    return (0.5 * erfc(-np.asarray(z, dtype=np.float64) * _SQRT_HALF)).astype(z.dtype)


_ERF_SPLIT = 2.5
_ERF_TERMS = 40
_ERFC_SPLIT, _ERFC_TERMS = 2.0, 80  # the fraction converges more slowly nearer 0
_ERF_TAYLOR = [(-1) ** k / (math.factorial(k) * (2 * k + 1)) for k in range(_ERF_TERMS + 1)]


def erf(x: np.ndarray) -> np.ndarray:
    """The error function to ~1e-15 relative in float64, vectorised (NumPy has none)."""
    x = np.asarray(x, dtype=np.float64)
    ax = np.abs(x)
    near = ax < _ERF_SPLIT
    result = np.empty_like(ax)
    result[near] = _erf_series(ax[near])
    result[~near] = 1 - _erfc_fraction(ax[~near], _ERF_TERMS)
    return np.copysign(result, x)


def erfc(x: np.ndarray) -> np.ndarray:
    """1 − erf(x), accurate also where it is tiny (large positive x)."""
    x = np.asarray(x, dtype=np.float64)
    far = x >= _ERFC_SPLIT
    result = np.empty_like(x)
    result[~far] = 1 - erf(x[~far])  # erf ≤ 0.9954 here: no catastrophic cancellation
    result[far] = _erfc_fraction(x[far], _ERFC_TERMS)
    return result


def _erf_series(x: np.ndarray) -> np.ndarray:
    """erf for 0 ≤ x < 2.5: its Maclaurin series, 2/√π · Σ (−1)ᵏ x^(2k+1) / (k!(2k+1))."""
    x2 = x * x
    series = np.zeros_like(x)
    for coefficient in reversed(_ERF_TAYLOR):
        series *= x2
        series += coefficient
    return (2 / math.sqrt(math.pi)) * x * series


def _erfc_fraction(x: np.ndarray, terms: int = 40) -> np.ndarray:
    """erfc for x ≥ 2: e^(−x²)/√π · 1/(x + (1/2)/(x + (2/2)/(x + (3/2)/(x + …))))."""
    tail = np.zeros_like(x)
    for k in range(terms, 0, -1):
        tail = (k / 2) / (x + tail)
    return np.exp(-x * x) / (math.sqrt(math.pi) * (x + tail))


def softmax_rows(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row max so e^z never overflows."""
    if z.ndim == 0:  # one value: its own softmax is 1 (NaN from inf or NaN), as PyTorch's
        out[...] = 1 if np.isfinite(z) else np.nan
        return out
    if z.shape[-1] == 0:  # rows of no values: nothing to compute (no max to shift by)
        return out
    np.subtract(z, z.max(axis=-1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out


class Softmax:
    name = "softmax"
    backward_reads = _A

    def forward(self, z, out):
        return softmax_rows(z, out)

    def backward(self, z, a, grad, out):  # Jacobian-vector product: s ⊙ (g − Σ g⊙s)
        np.multiply(grad, a, out=out)
        dot = out.sum(axis=-1, keepdims=True)
        np.subtract(grad, dot, out=out)
        out *= a
        return out


class Softmin:
    """Row-wise softmax of −Z (torch's Softmin): e^(−zᵢ)/Σⱼ e^(−zⱼ), shifted so that no
    e^x overflows; backward −s ⊙ (g − Σ g⊙s), softmax's through the negation."""

    name = "softmin"
    backward_reads = _A

    def forward(self, z, out):
        return softmax_rows(np.negative(z), out)

    def backward(self, z, a, grad, out):
        Softmax.backward(self, z, a, grad, out)  # type: ignore[arg-type]
        np.negative(out, out=out)
        return out


class LogSoftmax:
    """A = Z − log Σⱼ e^(Zⱼ), row-wise: log-probabilities, shifted by the row maximum
    so that e^Z never overflows (PyTorch's ``LogSoftmax(dim=1)``, before ``NLLLoss``)."""

    name = "log_softmax"
    backward_reads = _A

    def forward(self, z, out):
        if z.ndim == 0 or z.shape[-1] == 0:  # one value: log 1 = 0 (NaN from inf or NaN)
            out[...] = np.where(np.isfinite(z), 0, np.nan) if z.ndim == 0 else z
            return out
        np.subtract(z, z.max(axis=-1, keepdims=True), out=out)
        sums = np.exp(out).sum(axis=-1, keepdims=True, dtype=np.float64)
        out -= np.log(sums).astype(out.dtype)
        return out

    def backward(self, z, a, grad, out):  # Jacobian-vector product: g − softmax(Z)·Σⱼ gⱼ
        total = grad.sum(axis=-1, keepdims=True)
        np.exp(a, out=out)  # softmax(Z) = e^A
        out *= -total
        out += grad
        return out


def activation(z: Tensor, kernel: ActivationKernel) -> Tensor:
    """A = f(Z), with the kernel's f′ for the backward pass."""
    Z = z.data
    A = kernel.forward(Z, np.empty_like(Z))

    def backward(grad: np.ndarray) -> tuple[np.ndarray]:
        return (kernel.backward(Z, A, grad, np.empty_like(Z)),)  # δ = ∂L/∂A ⊙ f′(Z)

    backward.kernel = kernel  # type: ignore[attr-defined]  # which f, slope and all (describe)
    reads = backward_reads_of(kernel)
    return Tensor.from_op(
        A, kernel.name, (z,), backward, saves_output="a" in reads, reads_inputs="z" in reads
    )


def backward_reads_of(kernel: object) -> frozenset[str]:
    """``kernel.backward_reads`` where the class that says it is the backward's own (or
    below it): a subclass with a backward of its own may read both, and is taken so."""
    mro = type(kernel).__mro__
    said = next((i for i, c in enumerate(mro) if "backward_reads" in c.__dict__), None)
    rule = next((i for i, c in enumerate(mro) if "backward" in c.__dict__), None)
    if said is None or (rule is not None and rule < said):
        return _Z | _A
    return frozenset(kernel.backward_reads)


def sigmoid(z: Tensor) -> Tensor:
    return activation(as_tensor(z), Sigmoid())


def _inplace(value: object, where: str) -> None:
    """torch.nn.functional's ``inplace`` flag, taken as the layers take it: wxb computes
    the same values out of place (use the result, ``x = F.relu(x, inplace=True)``)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{where}: inplace must be True or False; got {value!r}")


def relu(z: Tensor, inplace: bool = False) -> Tensor:
    _inplace(inplace, "relu")
    return activation(as_tensor(z), ReLU())


def tanh(z: Tensor) -> Tensor:
    return activation(as_tensor(z), Tanh())


def leaky_relu(z: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    _inplace(inplace, "leaky_relu")
    return activation(as_tensor(z), LeakyReLU(negative_slope))


def gelu(z: Tensor, approximate: str = "none") -> Tensor:
    return activation(as_tensor(z), GELU(approximate))


def silu(z: Tensor, inplace: bool = False) -> Tensor:
    _inplace(inplace, "silu")
    return activation(as_tensor(z), SiLU())


def elu(z: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    _inplace(inplace, "elu")
    return activation(as_tensor(z), ELU(alpha))


def softplus(z: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return activation(as_tensor(z), Softplus(beta, threshold))


def relu6(z: Tensor, inplace: bool = False) -> Tensor:
    _inplace(inplace, "relu6")
    return activation(as_tensor(z), ReLU6())


def hardtanh(
    z: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Tensor:
    _inplace(inplace, "hardtanh")
    return activation(as_tensor(z), Hardtanh(min_val, max_val))


def selu(z: Tensor, inplace: bool = False) -> Tensor:
    _inplace(inplace, "selu")
    return activation(as_tensor(z), SELU())


def celu(z: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    _inplace(inplace, "celu")
    return activation(as_tensor(z), CELU(alpha))


def mish(z: Tensor, inplace: bool = False) -> Tensor:
    _inplace(inplace, "mish")
    return activation(as_tensor(z), Mish())


def hardswish(z: Tensor, inplace: bool = False) -> Tensor:
    _inplace(inplace, "hardswish")
    return activation(as_tensor(z), Hardswish())


def hardsigmoid(z: Tensor, inplace: bool = False) -> Tensor:
    _inplace(inplace, "hardsigmoid")
    return activation(as_tensor(z), Hardsigmoid())


def logsigmoid(z: Tensor) -> Tensor:
    return activation(as_tensor(z), LogSigmoid())


def softsign(z: Tensor) -> Tensor:
    return activation(as_tensor(z), Softsign())


def tanhshrink(z: Tensor) -> Tensor:
    return activation(as_tensor(z), Tanhshrink())


def threshold(z: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    _inplace(inplace, "threshold")
    return activation(as_tensor(z), Threshold(threshold, value))


def bilinear(x1: object, x2: object, weight: object, bias: object = None) -> Tensor:
    """torch's F.bilinear: yₒ = x1ᵀ·Wₒ·x2 + bₒ for each output o, W of shape (out, in1,
    in2), over the last dims of x1 (*, in1) and x2 (*, in2), whose leading dims are the
    same. Backward, g = ∂L/∂y: ∂L/∂x1 = Σₒ gₒ·(Wₒ·x2), ∂L/∂x2 = Σₒ gₒ·(Wₒᵀ·x1),
    ∂L/∂Wₒ = Σₙ gₙₒ·x1ₙ·x2ₙᵀ (the rows' outer products); b through add's rule."""
    x1, x2, w = (as_tensor(v) for v in (x1, x2, weight))
    if not x1.dtype == x2.dtype == w.dtype or x1.dtype.kind != "f":
        raise DataError(
            f"bilinear: x1, x2 and W must be floats of one dtype; got {x1.dtype}, {x2.dtype} "
            f"and {w.dtype}"
        )
    if w.ndim != 3 or x1.ndim == 0 or x2.ndim == 0:
        raise ShapeError(
            f"bilinear: needs W of shape (out, in1, in2) and inputs of 1 dim or more; got W "
            f"of shape {w.shape}, x1 {x1.shape}, x2 {x2.shape}"
        )
    out, in1, in2 = w.shape
    if x1.shape[-1] != in1 or x2.shape[-1] != in2 or x1.shape[:-1] != x2.shape[:-1]:
        raise ShapeError(
            f"bilinear: W of shape {w.shape} takes x1 (*, {in1}) and x2 (*, {in2}) with the "
            f"same leading dims; got x1 of shape {x1.shape} and x2 of shape {x2.shape}"
        )
    lead = x1.shape[:-1]
    X1, X2, W = x1.data.reshape(-1, in1), x2.data.reshape(-1, in2), w.data
    U = np.einsum("ni,oij->noj", X1, W, optimize=True)  # x1ᵀ·Wₒ, kept for ∂L/∂x2
    Y = np.einsum("noj,nj->no", U, X2, optimize=True)
    needs_x1, needs_x2, needs_w = x1.requires_grad, x2.requires_grad, w.requires_grad

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        # each only for an operand that asked for it: ∂L/∂W of a frozen W (2·o·i1·i2 a
        # row, the step's largest) is not computed, as matmul's and Dense's
        g = g.reshape(-1, out)
        grad_x1 = grad_x2 = grad_w = None
        if needs_x1:
            grad_x1 = np.einsum("no,oij,nj->ni", g, W, X2, optimize=True).reshape(x1.shape)
        if needs_x2:
            grad_x2 = np.einsum("no,noj->nj", g, U, optimize=True).reshape(x2.shape)
        if needs_w:
            grad_w = np.einsum("no,ni,nj->oij", g, X1, X2, optimize=True)
        return grad_x1, grad_x2, grad_w

    result = Tensor.from_op(
        Y.reshape(*lead, out), "x1ᵀ·W·x2", (x1, x2, w), backward,
        reads_inputs=(needs_w, needs_x1 or needs_w, needs_x1),  # X1, X2, W: by whom
    )  # fmt: skip
    return result if bias is None else add(result, bias)


def hardshrink(z: Tensor, lambd: float = 0.5) -> Tensor:
    return activation(as_tensor(z), Hardshrink(lambd))


def softshrink(z: Tensor, lambd: float = 0.5) -> Tensor:
    return activation(as_tensor(z), Softshrink(lambd))


def glu(z: object, dim: int = -1) -> Tensor:
    """Gated linear unit (torch's F.glu / nn.GLU): Z split in halves A, B along ``dim``,
    A ⊙ σ(B), σ(b) = 1/(1 + e^(−b)) as the Sigmoid kernel computes it. Backward, with g
    = ∂L/∂(A ⊙ σ(B)): ∂L/∂A = g ⊙ σ(B), ∂L/∂B = g ⊙ A ⊙ σ(B) ⊙ (1 − σ(B)), joined
    along ``dim`` again."""
    z = as_tensor(z)
    if z.dtype.kind != "f":
        raise DataError(f"glu: needs a float input; got {z.dtype}")
    if z.ndim == 0:
        raise ShapeError("glu: a 0-d tensor has no dim to halve")
    axis = dim_axis(dim, z.ndim, "glu")
    Z = z.data
    if Z.shape[axis] % 2:
        raise ShapeError(
            f"glu: halves dim {dim}, which must be of even size; input of shape {Z.shape}"
        )
    A, B = np.split(Z, 2, axis=axis)
    with np.errstate(over="ignore"):  # (e^(−b) = inf: σ = 0, as the Sigmoid kernel's)
        s = 1 / (1 + np.exp(-B))
    out = A * s

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (np.concatenate((g * s, g * A * s * (1 - s)), axis=axis),)

    return Tensor.from_op(out, "glu", (z,), backward)


def prelu(z: Tensor, weight: Tensor) -> Tensor:
    """PReLU: z where z > 0, else a·z, with a learned ``weight`` a of one value, or one per
    channel (dim 1, the features of rows), as torch's F.prelu. Backward: ∂L/∂Z = δ where
    z > 0, else a·δ; ∂L/∂a = Σ δ·z over z ≤ 0 (summed over all but the channel dim)."""
    # an array beside a tensor takes its dtype, copied where the backward reads it
    z, weight = in_result_type((z, weight))
    Z, W = z.data, weight.data
    if W.ndim != 1:
        raise ShapeError(f"prelu: weight must be a vector; got shape {W.shape}")
    if W.size != 1 and (Z.ndim < 2 or Z.shape[1] != W.size):
        got = Z.shape[1] if Z.ndim >= 2 else "no channel dim"
        raise ShapeError(
            f"prelu: {W.size} parameters, one per channel (dim 1), but the input of shape "
            f"{Z.shape} has {got}"
        )
    if Z.dtype != W.dtype:
        raise DataError(f"prelu: the input is {Z.dtype} but the weight is {W.dtype}")
    # the weight along dim 1 (one value: everywhere)
    along = W.reshape((1, -1) + (1,) * (Z.ndim - 2)) if W.size != 1 else W.reshape(())
    positive = Z > 0
    out = np.where(positive, Z, along * Z)

    def backward(grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dz = np.where(positive, grad, along * grad)
        below = np.where(positive, 0, grad * Z)
        axes = tuple(i for i in range(Z.ndim) if W.size == 1 or i != 1)
        dw = below.sum(axis=axes).reshape(W.shape)
        return dz, dw

    return Tensor.from_op(out, "prelu", (z, weight), backward)


def softmax(z: Tensor, dim: int | None = None, *, dtype: object = None) -> Tensor:
    """Softmax over ``dim`` (torch's ``F.softmax(z, dim)``); without one, over the last
    axis of a vector or a (B, C) batch. A tensor of more dimensions needs ``dim``: torch's
    implicit choice for it (deprecated) is dim 0 for 3 and dim 1 for more, not the last.
    ``dtype=``: z cast to it first, as torch's (as ``Tensor.softmax``)."""
    z = _cast(as_tensor(z), dtype)
    if dim is not None:
        return softmax_along(z, dim)
    check_implicit_dim(z.ndim, "softmax")
    return activation(z, Softmax())


def softmin(z: Tensor, dim: int | None = None, *, dtype: object = None) -> Tensor:
    """Softmin over ``dim`` (torch's ``F.softmin``): softmax of −z."""
    z = _cast(as_tensor(z), dtype)
    if dim is not None:
        return softmax_along(negative(z), dim)
    check_implicit_dim(z.ndim, "softmin")
    return activation(z, Softmin())


def log_softmax(z: Tensor, dim: int | None = None, *, dtype: object = None) -> Tensor:
    """Log-softmax over ``dim``, as ``softmax`` (``dtype=`` too)."""
    z = _cast(as_tensor(z), dtype)
    if dim is not None:
        return log_softmax_along(z, dim)
    check_implicit_dim(z.ndim, "log_softmax")
    return activation(z, LogSoftmax())


def check_implicit_dim(ndim: int, name: str) -> None:
    """Softmax without a dim over ``ndim`` dimensions (F.softmax, the Softmax layers): torch's
    implicit choice past 2 dims is dim 0 (3) or 1 (more), deprecated, where the last axis
    would give other numbers without a word."""
    if ndim > 2:
        raise ConfigError(
            f"{name} of a tensor of {ndim} dimensions needs dim= (torch's implicit choice "
            f"there is dim {0 if ndim == 3 else 1}, deprecated; wxb's would be the last): "
            "give dim=-1 for the last axis"
        )


def _is_number(value: object) -> bool:
    """A real number, Python's or NumPy's, and not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def check_dropout_p(p: object) -> float:
    if not (_is_number(p) and 0 <= p < 1):
        raise ConfigError(f"Dropout p must be a number in [0, 1); got {p!r}")
    return float(p)


def dropout_mask(
    rng: np.random.Generator, p: float, out: np.ndarray, layer: object = None
) -> np.ndarray:
    """Inverted dropout: keep with probability 1 − p and scale by 1/(1 − p).

    Inside ``fit`` the draws come by row (``wxb.random.RowMasks``): the same mask for a
    data row at a step however the batch is split across processes."""
    if not out.flags.c_contiguous:  # a generator fills memory in order: draw in rows
        out[...] = dropout_mask(rng, p, np.empty(out.shape, out.dtype), layer)
        return out
    source = row_masks()
    drawn = None if source is None else source.draw(rng, out, layer)
    if drawn is not None:  # a row's units, whatever their shape, in one run of draws
        kernels.row_uniform(*drawn, out.reshape(len(out), -1))
    else:
        rng.random(out=out) if out.dtype == np.float64 else rng.random(dtype=out.dtype, out=out)
    np.greater_equal(out, p, out=out)
    out *= 1.0 / (1.0 - p)
    return out


# SELU's negative saturation −λα (torch's constant): alpha dropout sets dropped units there
ALPHA_DROPOUT_VALUE = 1.7580993408473766


def alpha_dropout(x: object, p: float, rng: np.random.Generator, feature: bool = False) -> Tensor:
    """Alpha dropout in training, as torch's F.alpha_dropout: each unit dropped with
    probability p is set to −α′ (α′ = λα of SELU), and all are then scaled and shifted,
    y = a·(x ⊙ M − α′·(1 − M)) + α′·a·p with a = 1/√((α′²p + 1)(1 − p)), so that inputs
    of mean 0 and variance 1 keep both (SELU's self-normalising). ∂L/∂x = a·M ⊙ g.
    ``feature``: torch's F.feature_alpha_dropout, one draw per (sample, channel) of an
    input (N, C, …), M shared along the dims after C (of rows (N, C): one per unit)."""
    x = as_tensor(x)
    X = x.data
    if feature and X.ndim < 2:
        raise ShapeError(
            f"feature_alpha_dropout: needs an input (N, C, …) of 2 dimensions or more; got "
            f"shape {X.shape}"
        )
    keep = rng.random(X.shape[:2] + (1,) * (X.ndim - 2) if feature else X.shape) >= p
    a = 1.0 / math.sqrt((ALPHA_DROPOUT_VALUE**2 * p + 1) * (1 - p))
    factor = (keep * a).astype(X.dtype)  # a where kept, 0 where dropped
    shift = np.where(keep, ALPHA_DROPOUT_VALUE * a * p, ALPHA_DROPOUT_VALUE * a * (p - 1))
    out = X * factor + shift.astype(X.dtype)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g * factor,)  # (the draw of the forward: factor holds M)

    name = "feature_alpha_dropout" if feature else "alpha_dropout"
    return keep_values(Tensor.from_op(out, name, (x,), backward, reads_inputs=False))


def dropout1d(x: object, p: float, rng: np.random.Generator) -> Tensor:
    """Channel dropout in training, as torch's F.dropout1d: of an input (N, C, L) or
    (C, L), each channel's whole length L is zeroed with probability p, the rest scaled
    by 1/(1 − p); one draw per (sample, channel), M of shape (N, C, 1). ∂L/∂x = M ⊙ g,
    the same M."""
    x = as_tensor(x)
    X = x.data
    if X.ndim not in (2, 3):
        raise ShapeError(
            f"dropout1d: needs an input (N, C, L) or (C, L), as torch's; got shape {X.shape}"
        )
    keep = rng.random((*X.shape[:-1], 1)) >= p
    mask = keep.astype(X.dtype) * X.dtype.type(1.0 / (1.0 - p))

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g * mask,)

    return keep_values(Tensor.from_op(X * mask, "dropout1d", (x,), backward, reads_inputs=False))


def check_rrelu_bounds(lower: object, upper: object, where: str) -> tuple[float, float]:
    """RReLU's slope bounds: finite numbers, lower ≤ upper (torch refuses the reverse)."""
    for key, value in (("lower", lower), ("upper", upper)):
        if not (_is_number(value) and math.isfinite(value)):
            raise ConfigError(f"{where}: {key} must be a finite number; got {value!r}")
    if lower > upper:
        raise ConfigError(f"{where}: lower {lower!r} must not exceed upper {upper!r}")
    return float(lower), float(upper)


def rrelu(
    x: object,
    lower: float = 1.0 / 8,
    upper: float = 1.0 / 3,
    training: bool = False,
    rng: np.random.Generator | None = None,
) -> Tensor:
    """Randomized leaky ReLU, as torch's F.rrelu: in training each z ≤ 0 is multiplied by
    a slope a ~ U(lower, upper) drawn for it (from ``rng``, else wxb's generator), z > 0
    passes; ∂L/∂z = a ⊙ g with the same draw (1 where z > 0). Not training: LeakyReLU of
    slope (lower + upper)/2."""
    lower, upper = check_rrelu_bounds(lower, upper, "rrelu")
    if not isinstance(training, (bool, np.bool_)):
        raise ConfigError(f"rrelu: training must be True or False; got {training!r}")
    x = as_tensor(x)
    if not training:
        return activation(x, LeakyReLU((lower + upper) / 2))
    X = x.data
    drawn = as_generator(rng).uniform(lower, upper, size=X.shape)
    slopes = np.where(X <= 0, drawn, 1).astype(X.dtype)  # (torch's: z ≤ 0 takes a slope)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g * slopes,)

    return keep_values(Tensor.from_op(X * slopes, "rrelu", (x,), backward, reads_inputs=False))


def _indices(value: object, where: str) -> np.ndarray:
    """Integer indices (an array, a list, ``t.long()``, a torch tensor, whole floats) as an
    int array; other floats refused (a float 2.7 is no row)."""
    source = value.data if isinstance(value, Tensor) else value
    if not isinstance(source, np.ndarray) and hasattr(source, "__array__"):
        source = foreign_array(source)
    indices = np.asarray(source)
    if indices.dtype.kind == "f" and np.all(np.isfinite(indices)):
        # whole floats, as a model's float input holds ids (a Sequential's X) and the
        # losses take class indices; float32 rounds ids past 2**24 onto their neighbours
        if indices.dtype.itemsize < 8 and indices.size and np.abs(indices).max() >= 2**24:
            raise DataError(
                f"{where}: ids of 2**24 or more as {indices.dtype} may be rounded onto "
                "other rows (16777217 reads as 16777216); pass them as integers, or use "
                "a float64 model"
            )
        whole = indices.astype(np.int64)
        if np.array_equal(whole, indices):
            return whole
    if indices.dtype.kind == "b":  # ("not all whole" misled: torch refuses bool ids too)
        raise DataError(f"{where}: ids are integers, not bools; pass ids.astype(np.int64)")
    if indices.dtype.kind not in "iu":
        raise DataError(
            f"{where}: indices must be whole numbers (an integer array); got {indices.dtype} "
            "values that are not all whole (pass ids as integers, or t.long())"
        )
    return indices


def embedding_renorm_(
    weight: Tensor, indices: np.ndarray, max_norm: float, norm_type: float
) -> None:
    """torch's max_norm: each row looked up whose p-norm exceeds ``max_norm`` scaled in
    place by max_norm/(‖row‖ + 1e-7), as torch's embedding_renorm_ (not recorded)."""
    W = weight.data
    rows = np.unique(indices)
    with np.errstate(over="ignore"):
        norms = np.linalg.norm(W[rows], ord=norm_type, axis=1) if norm_type != 0 else None
    if norms is None:  # (the count of nonzeros, as torch's norm 0)
        norms = np.count_nonzero(W[rows], axis=1).astype(np.float64)
    over = norms > max_norm
    if over.any():
        scale = (max_norm / (norms[over].astype(np.float64) + 1e-7)).astype(W.dtype)
        W[rows[over]] *= scale[:, None]
        weight._version += 1


def embedding(
    input: object,
    weight: object,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of ``weight`` (num_embeddings, embedding_dim) picked by integer indices, as
    torch's F.embedding: the product one_hot(ids) · W without the zeros, of shape
    (*ids.shape, embedding_dim). ∂L/∂W: each row the sum of the δ rows that picked it
    (divided by its count in the batch with ``scale_grad_by_freq``), 0 for ``padding_idx``.
    ``max_norm``: the rows looked up renormed in place first (``embedding_renorm_``).
    ``sparse=True`` is refused: wxb's gradients are dense."""
    w = as_tensor(weight)
    W = w.data
    if W.ndim != 2:
        raise ShapeError(
            f"embedding: weight must be a matrix (num_embeddings, embedding_dim); got shape "
            f"{W.shape}"
        )
    if not isinstance(sparse, (bool, np.bool_)) or sparse:
        raise ConfigError(
            f"embedding: sparse={sparse!r} is not taken: wxb's gradients are dense (sparse=False)"
        )
    if not isinstance(scale_grad_by_freq, (bool, np.bool_)):
        raise ConfigError(
            f"embedding: scale_grad_by_freq must be True or False; got {scale_grad_by_freq!r}"
        )
    n = W.shape[0]
    pad = check_padding_idx(padding_idx, n, "embedding")
    ids = _indices(input, "embedding")
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        bad = ids.min() if ids.min() < 0 else ids.max()
        raise DataError(f"embedding: index {bad} is out of range for {n} embeddings (0 … {n - 1})")
    if max_norm is not None:
        if not (_is_number(max_norm) and max_norm >= 0):
            raise ConfigError(f"embedding: max_norm must be a number ≥ 0; got {max_norm!r}")
        if not (_is_number(norm_type) and norm_type >= 0):
            raise ConfigError(f"embedding: norm_type must be a number ≥ 0; got {norm_type!r}")
        embedding_renorm_(w, ids, float(max_norm), float(norm_type))
    flat = ids.reshape(-1).astype(np.intp)
    out = W[flat].reshape(*ids.shape, W.shape[1])

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        rows = g.reshape(-1, W.shape[1])
        if scale_grad_by_freq:  # each by its index's count in this batch
            rows = rows / np.bincount(flat, minlength=n)[flat, None].astype(rows.dtype)
        if pad is not None:  # the padding row takes no gradient
            rows = np.where((flat == pad)[:, None], 0, rows)
        dW = np.zeros(W.shape, dtype=g.dtype)
        np.add.at(dW, flat, rows)
        return (dW,)

    return keep_values(Tensor.from_op(out, "embedding", (w,), backward, reads_inputs=False))


def check_padding_idx(padding_idx: object, n: int, where: str) -> int | None:
    """torch's padding_idx: None, or an index in [−n, n) (negative from the end), as
    the row it names (0 … n − 1)."""
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)):
        raise ConfigError(f"{where}: padding_idx must be an integer or None; got {padding_idx!r}")
    if not -n <= padding_idx < n:
        raise ConfigError(
            f"{where}: padding_idx {padding_idx} must be within num_embeddings {n} ({-n} … {n - 1})"
        )
    return int(padding_idx) % n


def dropout(
    x: Tensor,
    p: float = 0.5,
    rng: int | np.random.Generator | None = None,
    layer: object = None,
    *,
    training: bool = True,
) -> Tensor:
    """Inverted dropout in training; ``rng`` a generator or seed (wxb's default one if
    None); ``layer``: the Dropout module calling (its masks in fit go by its place). p = 1
    is refused, as by the Dropout layer (nothing would pass). ``training=False`` gives x
    as it is, as torch's ``F.dropout(x, p, training)``, which is also read where a bool
    stands third (a seed of True or False would be 1 or 0: dropout at evaluation)."""
    p = check_dropout_p(p)
    if isinstance(rng, (bool, np.bool_)):  # torch's F.dropout(x, p, training, inplace)
        if layer is not None and layer is not False:
            raise ConfigError("dropout: in place (inplace=True) is not taken; use its result")
        rng, layer, training = None, None, training and bool(rng)
    x = as_tensor(x)
    if not training:
        return x
    mask = dropout_mask(as_generator(rng), p, np.empty_like(x.data), layer)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g * mask,)  # δ ⊙ mask: dropped units pass no error back

    return keep_values(Tensor.from_op(x.data * mask, "dropout", (x,), backward, reads_inputs=False))


# ---------------------------------------------------------------------------------
# Losses: value and ∂L/∂output in one kernel
# ---------------------------------------------------------------------------------
class LossKernel(Protocol):
    name: str
    reduction: str  # "mean", "sum" or "none"
    # ``reads_inputs``: False where torch's backward keeps none of the loss's inputs (its
    # L1 and cross-entropy: |d| and log-softmax are its own), so that one changed in place
    # after the loss does not refuse the backward (wxb's ∂L/∂ŷ is taken in the forward)

    def value_and_grad(
        self, output: np.ndarray, target: np.ndarray, grad_out: np.ndarray | None
    ) -> float:
        """Return the loss; when grad_out is given, write ∂L/∂output into it."""
        ...

    def per_sample(self, output: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For reduction 'none': each sample's loss (each element's, for a loss taken
        per element), and the gradient of each with respect to its own outputs."""
        ...

    def target_grad(self, output: np.ndarray, target: np.ndarray) -> np.ndarray:
        """∂L/∂target, for a target that is itself computed (e.g. another model's output)."""
        ...


REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: object, name: str) -> None:
    """'mean', 'sum' or 'none' (a loss per sample, as PyTorch's); another word would have
    summed without a word."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        plain = isinstance(reduction, (str, type(None)))
        got = repr(reduction) if plain else f"a {type(reduction).__name__}"
        # PyTorch's F.cross_entropy takes the class weights third, where wxb's reduction is
        hint = ""
        if name in ("cross_entropy", "nll", "bce_with_logits") and not plain:
            hint = " (class weights go by keyword: weight=…)"
        raise ConfigError(
            f"{name} loss: reduction must be 'mean', 'sum' or 'none'; got {got}{hint}"
        )


def per_sample_refused(name: str) -> ConfigError:
    """What fit, evaluate and a training step say to a loss of reduction 'none'."""
    return ConfigError(
        f"the {name} loss with reduction='none' gives one loss per sample; fit, evaluate "
        "and a training step need one number per batch: use reduction='mean' or 'sum', or "
        "a loss function that reduces the per-sample losses (their weighted mean, say)"
    )


def _batch_scale(kernel: LossKernel, count: int) -> float:
    """1/count for a mean, 1 for a sum; a per-sample loss has no batch value."""
    if kernel.reduction == "none":
        raise per_sample_refused(kernel.name)
    return 1.0 / count if kernel.reduction == "mean" else 1.0


def _row_sums64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Σ over each sample's outputs of a·b, added in float64 (as dot64 adds a batch's)."""
    shape = (len(a), math.prod(a.shape[1:]))  # not (rows, -1): an empty batch has no -1
    return np.einsum("ij,ij->i", a.reshape(shape), b.reshape(shape), dtype=np.float64)


@dataclass(frozen=True)
class MSEKernel:
    """The seed's L = ½(ŷ − y)², summed over outputs; ``mean`` averages over samples."""

    reduction: str = "mean"
    name: str = "mse"

    def __post_init__(self) -> None:
        _check_reduction(self.reduction, self.name)

    def value_and_grad(self, output, target, grad_out):
        scale = _batch_scale(self, output.shape[0])
        diff = np.subtract(output, target, out=_workspace(output, grad_out))
        value = 0.5 * scale * dot64(diff, diff)
        diff *= scale  # ∇ŷ L = (ŷ − y), over the batch size for the mean
        return value

    def per_sample(self, output, target):  # ½‖ŷᵢ − yᵢ‖² and its ∇ŷᵢ = ŷᵢ − yᵢ
        diff = np.subtract(output, target)
        return (0.5 * _row_sums64(diff, diff)).astype(output.dtype), diff

    def target_grad(self, output, target):  # ∇_y L = −(ŷ − y), scaled as ∇ŷ L
        scale = 1.0 / output.shape[0] if self.reduction == "mean" else 1.0
        grad = np.subtract(target, output)
        grad *= scale
        return grad


def check_threshold(value: object, what: str, positive: bool) -> None:
    """Huber's δ (> 0) or SmoothL1's β (≥ 0), finite, as PyTorch's functional forms
    require: δ = 0 would give no gradient and β < 0 one pointing away from the target."""
    bound = "> 0" if positive else "≥ 0"
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        raise ConfigError(f"{what} must be a finite number {bound}; got {value!r}")


@dataclass(frozen=True)
class L1Kernel:
    """|ŷ − y| per element, as PyTorch's L1Loss: ``mean`` averages over every element
    (B·C), as PyTorch's does. ∂L/∂ŷ = sign(ŷ − y), 0 where they are equal (PyTorch's)."""

    reduction: str = "mean"
    name: str = "l1"
    reads_inputs = False

    def __post_init__(self) -> None:
        _check_reduction(self.reduction, self.name)

    def terms(self, diff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each element's loss and its derivative, from d = ŷ − y."""
        return np.abs(diff), np.sign(diff)

    def value_and_grad(self, output, target, grad_out):
        scale = _batch_scale(self, output.size)
        diff = np.subtract(output, target, out=_workspace(output, grad_out))
        values, slopes = self.terms(diff)
        value = scale * float(values.sum(dtype=np.float64))
        np.multiply(slopes, scale, out=diff)  # ∂L/∂ŷ, over the element count for the mean
        return value

    def per_sample(self, output, target):  # per element, as PyTorch's reduction='none'
        values, slopes = self.terms(np.subtract(output, target))
        return values.astype(output.dtype), slopes.astype(output.dtype)

    def target_grad(self, output, target):  # ∂L/∂y = −∂L/∂ŷ
        scale = 1.0 / output.size if self.reduction == "mean" else 1.0
        return (self.terms(np.subtract(output, target))[1] * -scale).astype(output.dtype)


@dataclass(frozen=True)
class HuberKernel(L1Kernel):
    """PyTorch's HuberLoss: ½d² where |d| ≤ δ, δ(|d| − ½δ) beyond (d = ŷ − y), per
    element: squared near the target, absolute far from it. ∂L/∂ŷ = d clipped to ±δ."""

    name: str = "huber"
    reads_inputs = True
    delta: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_threshold(self.delta, "huber loss delta", positive=True)

    def terms(self, diff):
        size = np.abs(diff)
        near = size <= self.delta
        values = np.where(near, 0.5 * diff * diff, self.delta * (size - 0.5 * self.delta))
        return values, np.clip(diff, -self.delta, self.delta)


@dataclass(frozen=True)
class SmoothL1Kernel(L1Kernel):
    """PyTorch's SmoothL1Loss: ½d²/β where |d| < β, |d| − ½β beyond: Huber's over β (β = 0:
    L1). ∂L/∂ŷ = d/β clipped to ±1."""

    name: str = "smooth_l1"
    reads_inputs = True
    beta: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_threshold(self.beta, "smooth L1 loss beta", positive=False)

    def terms(self, diff):
        if diff.dtype.type(self.beta) == 0:  # β = 0, or one below the dtype's range:
            return super().terms(diff)  # L1 (d/β was 0/0, a NaN gradient, where d = 0)
        size = np.abs(diff)
        values = np.where(size < self.beta, 0.5 * diff * diff / self.beta, size - 0.5 * self.beta)
        return values, np.clip(diff / self.beta, -1, 1)


@dataclass(frozen=True)
class CrossEntropyKernel:
    """Softmax and cross-entropy fused: stable, and δ⁽ᴸ⁾ = softmax(Z) − Y directly.

    Targets are class indices (B,) or probabilities (B, C). With z_max the row
    maximum and s = Σ e^(z − z_max), −log softmax(z)_c = log s − (z_c − z_max).

    PyTorch's options: ``weight`` (w_c per class), ``ignore_index`` (rows of that class
    index count for nothing) and ``label_smoothing`` ε. Each turns a row's target into
    y′ = w ⊙ ((1 − ε)·y + ε/C), and the loss into −Σ_c y′_c log softmax(z)_c with
    δ = (Σ_c y′_c)·softmax(z) − y′; for class indices the mean divides by Σᵢ w_yᵢ over
    the rows not ignored (PyTorch's), for probabilities by B.
    """

    reduction: str = "mean"
    name: str = "cross_entropy"
    reads_inputs = False
    weight: tuple[float, ...] | None = None
    ignore_index: int = -100
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        _check_reduction(self.reduction, self.name)

    def value_and_grad(self, output, target, grad_out):
        ignored = self.ignored_rows(target, output.shape[1])  # one argmin, most batches
        weighted = self._weighted_targets(output, target, ignored)
        if weighted is not None:
            return self._weighted_value_and_grad(output, *weighted, grad_out, target.ndim == 1)
        scale = _batch_scale(self, output.shape[0])
        if target.ndim == 1:  # δ⁽ᴸ⁾ = softmax(Z) − Y, over the batch size for the mean
            return scale * kernels.cross_entropy_indices(
                output, target, _workspace(output, grad_out), scale
            )
        return scale * self._probabilities(output, target, _workspace(output, grad_out), scale)

    @staticmethod
    def _probabilities(output, target, grad, scale, indices: bool = False) -> float:
        """Σᵢ −Σ_c yᵢc log softmax(zᵢ)_c, unscaled; δ = ((Σ_c y_c)·softmax(Z) − Y)·scale
        into ``grad``. ``indices``: Y was made from class indices, and a class it leaves
        out (a 0) adds nothing, even where its logit is −inf (a masked class), as
        PyTorch's picks y's column alone; 0·(−inf) made the loss NaN. So does a row left
        out whole (ignored): its log s adds nothing, even where its logits are NaN or ±inf
        (PyTorch skips the row; 0·NaN made the loss NaN)."""
        # Work on z − z_max, so the loss rounds at its own scale, not the logits'.
        shifted = np.subtract(output, output.max(axis=1, keepdims=True), out=grad)
        picked = dot64(target, np.where(target != 0, shifted, 0) if indices else shifted)
        exps = np.exp(shifted, out=shifted)
        sums = exps.sum(axis=1, keepdims=True, dtype=np.float64)  # float64: log s ≈ 0 stays exact
        log_sums = np.log(sums)
        mass = target.sum(axis=1, keepdims=True)  # Σ_c y_c, 1 for probabilities
        if indices:  # (one number a row)
            log_sums[mass == 0] = 0
        value = float(np.vdot(mass, log_sums)) - picked
        exps /= sums  # softmax(Z)
        exps *= mass  # δ⁽ᴸ⁾ = (Σ_c y_c)·softmax(Z) − Y
        exps -= target
        exps *= scale
        return value

    def _weighted_targets(self, output, target, ignored):
        """(y′, the mean's divisor, the rows ``ignored`` or None) when an option is in
        play; None when the loss is the plain one (the fused loop's)."""
        if self.weight is None and not self.label_smoothing and ignored is None:
            return None
        rows, classes = output.shape
        epsilon = self.label_smoothing
        weight = None if self.weight is None else np.asarray(self.weight, output.dtype)
        if target.ndim == 1:
            kept = np.ones(rows, bool) if ignored is None else ~ignored
            picked = np.where(kept, target, 0)
            smoothed = np.zeros(output.shape, output.dtype)
            smoothed[np.arange(rows), picked] = 1 - epsilon
            if epsilon:
                smoothed += epsilon / classes
            smoothed[~kept] = 0
            counted = kept if weight is None else weight[picked][kept]
            divisor = float(counted.sum(dtype=np.float64))
        else:
            smoothed = target * (1 - epsilon) + epsilon / classes if epsilon else target
            divisor = float(rows)
        if weight is not None:
            smoothed = smoothed * weight
        return smoothed.astype(output.dtype, copy=False), divisor, ignored

    def ignored_rows(self, target, classes: int | None = None):
        """The rows of class-index targets whose class is ``ignore_index``, or None when
        there are none (or the targets are probabilities). An index outside 0..C−1
        (``classes`` C) can only be the smallest or the largest (the target's check
        refuses others): one argmin or argmax tells, cheaper than a whole mask, which
        is what a training step asks of PyTorch's -100 at every batch."""
        if target.ndim != 1 or not target.size:
            return None
        index = self.ignore_index
        if index < 0 and target[target.argmin()] > index:
            return None
        if classes is not None and index >= classes and target[target.argmax()] < index:
            return None
        ignored = target == index
        return ignored if ignored.any() else None

    def _weighted_value_and_grad(self, output, smoothed, divisor, ignored, grad_out, indices):
        if self.reduction == "none":
            raise per_sample_refused(self.name)
        scale = 1.0 if self.reduction == "sum" else _ratio(1.0, divisor)
        # A mean over a zero weight sum (every row ignored or of a class weighted 0) is
        # PyTorch's NaN, its gradient NaN on each row kept: its NLL part is 0/0 there,
        # whatever label smoothing adds (which alone gave +inf and ±inf gradients)
        undefined = self.reduction == "mean" and divisor == 0
        if undefined:
            scale = math.nan
        grad = _workspace(output, grad_out)
        with np.errstate(invalid="ignore"):  # 0·inf over a zero weight sum: PyTorch's NaN
            value = self._probabilities(output, smoothed, grad, scale, indices)
        if ignored is not None:  # PyTorch's: an ignored row gets no gradient, even over 0
            grad[ignored] = 0
        if undefined:
            return math.nan
        return value if self.reduction == "sum" else _ratio(value, divisor)

    def per_sample(self, output, target):  # −Σ_c yᵢc log softmax(zᵢ)_c and its ∇zᵢ
        weighted = self._weighted_targets(output, target, self.ignored_rows(target))
        indices = weighted is not None and target.ndim == 1
        if weighted is not None:
            target = weighted[0]  # the rows ignored hold 0s: no loss, no gradient
        shifted = output - output.max(axis=1, keepdims=True)
        sums = np.exp(shifted).sum(axis=1, keepdims=True, dtype=np.float64)
        log_sums = np.log(sums)
        softmax = np.exp(shifted - log_sums)
        if target.ndim == 1:  # class indices: log s − (z_c − z_max), softmax(z) − e_c
            picked = np.arange(len(output)), target
            values = log_sums[:, 0] - shifted[picked]
            softmax[picked] -= 1
        else:  # probabilities (Σ_c y_c, 1 for them): Σ_c y_c·log s − Σ_c y_c (z_c − z_max)
            mass = target.sum(axis=1, keepdims=True, dtype=np.float64)
            # (from class indices, a class left out adds nothing, even at z = −inf)
            kept = np.where(target != 0, shifted, 0) if indices else shifted
            if indices:  # a row left out adds nothing, whatever its logits (as above)
                log_sums[mass == 0] = 0
            values = mass[:, 0] * log_sums[:, 0] - _row_sums64(target, kept)
            softmax *= mass
            softmax -= target
        return values.astype(output.dtype), softmax.astype(output.dtype)

    def target_grad(self, output, target):  # ∂L/∂y = −log softmax(z)·(1 − ε)·w, scaled
        scale = 1.0 / output.shape[0] if self.reduction == "mean" else 1.0
        shifted = output - output.max(axis=1, keepdims=True)
        sums = np.exp(shifted).sum(axis=1, keepdims=True, dtype=np.float64)
        grad = np.subtract(np.log(sums).astype(output.dtype), shifted, out=shifted)
        grad *= scale * (1 - self.label_smoothing)
        if self.weight is not None:
            grad *= np.asarray(self.weight, output.dtype)
        return grad


def _ratio(numerator: float, divisor: float) -> float:
    """numerator/divisor as PyTorch's mean over a weight sum gives it: ±inf or NaN for 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(numerator) / np.float64(divisor))


@dataclass(frozen=True)
class NLLKernel(CrossEntropyKernel):
    """Negative log-likelihood of log-probabilities A (a ``LogSoftmax``'s): L = −w_y·A[y]
    per sample, so δ = −w_y·e_y (over Σᵢ w_yᵢ for the mean; w = 1 without a weight); with
    A = log softmax(Z) it is the cross-entropy of Z. Targets are class indices (B,) only,
    as PyTorch's NLLLoss; the rows whose class is ``ignore_index`` count for nothing."""

    name: str = "nll"
    reads_inputs = True

    def _row_weights(self, output, target):
        """Each row's w_y (0 for a row ignored), its picked column, the rows kept, and
        the mean's divisor Σᵢ w_yᵢ."""
        kept = target != self.ignore_index
        picked = np.where(kept, target, 0)
        if self.weight is None:
            weights = kept.astype(output.dtype)
        else:
            weights = np.asarray(self.weight, output.dtype)[picked] * kept
        return weights, picked, kept, float(weights.sum(dtype=np.float64))

    def value_and_grad(self, output, target, grad_out):
        if self.reduction == "none":
            raise per_sample_refused(self.name)
        rows = np.arange(len(output))
        if self.weight is None and rows.size and not (target == self.ignore_index).any():
            # every row kept, each of weight 1 (F.nll_loss(out, y), a step's usual call):
            # the numbers below without their weight arrays, nor errstate (B ≥ 1 divides)
            value = -float(output[rows, target].sum(dtype=np.float64))
            scale = 1.0 if self.reduction == "sum" else 1.0 / rows.size
            grad = _workspace(output, grad_out)
            grad[...] = 0
            grad[rows, target] = -output.dtype.type(scale)
            return value if self.reduction == "sum" else value / rows.size
        weights, picked, kept, divisor = self._row_weights(output, target)
        value = -float((weights * self._picked(output, picked, kept)).sum(dtype=np.float64))
        scale = 1.0 if self.reduction == "sum" else _ratio(1.0, divisor)
        grad = _workspace(output, grad_out)
        grad[...] = 0
        with np.errstate(invalid="ignore"):  # 0·inf over a zero weight sum: PyTorch's NaN
            grad[rows, picked] = -weights * output.dtype.type(scale)
        grad[~kept] = 0  # PyTorch's: an ignored row gets no gradient, even over 0
        return value if self.reduction == "sum" else _ratio(value, divisor)

    @staticmethod
    def _picked(output, picked, kept):
        """aᵢ[yᵢ] of each row kept, 0 for a row ignored: PyTorch skips those rows, so
        their column (−inf where a probability was 0) makes no 0·(−inf) NaN."""
        values = output[np.arange(len(output)), picked]
        return values if kept.all() else np.where(kept, values, 0)

    def per_sample(self, output, target):  # −w_yᵢ·aᵢ[yᵢ] and its ∇aᵢ = −w_yᵢ·e_yᵢ
        weights, picked, kept, _ = self._row_weights(output, target)
        rows = np.arange(len(output))
        grad = np.zeros_like(output)
        grad[rows, picked] = -weights
        return (-weights * self._picked(output, picked, kept)).astype(output.dtype), grad

    def target_grad(self, output, target):  # class indices: no gradient to give
        raise DataError(f"{self.name} loss: its targets are class indices, which have no gradient")


@dataclass(frozen=True)
class BCEWithLogitsKernel:
    """Binary cross-entropy on logits z: max(z,0) − z·y + log(1 + e^(−|z|)), stable.

    PyTorch's options: ``weight`` w (each element's loss scaled by it) and ``pos_weight``
    p (the positive term's, per output): L = w·[(1 − y)·softplus(z) + p·y·softplus(−z)],
    δ = w·[(1 + (p − 1)·y)·σ(z) − p·y]. Each is kept as its values and its shape (the
    kernel is frozen and compared), broadcast against the output as PyTorch's are; the
    mean stays over every element."""

    reduction: str = "mean"
    name: str = "bce_with_logits"
    weight: tuple[tuple[float, ...], tuple[int, ...]] | None = None
    pos_weight: tuple[tuple[float, ...], tuple[int, ...]] | None = None

    def __post_init__(self) -> None:
        _check_reduction(self.reduction, self.name)

    def value_and_grad(self, output, target, grad_out):
        scale = _batch_scale(self, output.size)
        if self.weight is not None or self.pos_weight is not None:
            values, grad = self.per_sample(output, target)
            if grad_out is not None:
                np.multiply(grad, scale, out=grad_out)
            return scale * float(values.sum(dtype=np.float64))
        work = _workspace(output, grad_out)
        # Summed element by element: Σmax(z,0) − Σz·y cancels between two large sums
        # (1e-2 relative in float32 on confident logits); per element z − z·1 is exact.
        np.maximum(output, 0, out=work)
        work -= output * target
        remainder = np.abs(output)
        np.negative(remainder, out=remainder)
        np.exp(remainder, out=remainder)
        work += np.log1p(remainder, out=remainder)
        value = float(work.sum())
        Sigmoid().forward(output, work)  # δ⁽ᴸ⁾ = σ(z) − y
        work -= target
        work *= scale
        return scale * value

    def _option(self, option, output, what):
        """An option's values broadcast to the output's shape, in its dtype (None: unset)."""
        if option is None:
            return None
        values = np.asarray(option[0], output.dtype).reshape(option[1])
        try:
            return np.broadcast_to(values, output.shape)
        except ValueError:
            raise ShapeError(
                f"{self.name} loss: {what} of shape {values.shape} does not broadcast to the "
                f"output's {output.shape}"
            ) from None

    def per_sample(self, output, target):  # per element, as PyTorch's: its value, ∂/∂z
        weight = self._option(self.weight, output, "weight")
        pos_weight = self._option(self.pos_weight, output, "pos_weight")
        if pos_weight is None:
            values = np.maximum(output, 0) - output * target
            values += np.log1p(np.exp(-np.abs(output)))
            grad = np.empty_like(output)
            Sigmoid().forward(output, grad)
            grad -= target
        else:  # (1 − y)·softplus(z) + p·y·softplus(−z); δ = l·σ(z) − p·y, l = 1 + (p − 1)·y
            # PyTorch's (1 − y)·z + l·softplus(−z) is the same, but cancels where y = 0 and
            # z ≪ 0 (a right, confident answer): −20 + (20 + 2e-9) is 0 in float32
            log_weight = 1 + (pos_weight - 1) * target
            tail = np.log1p(np.exp(-np.abs(output)))
            values = (1 - target) * (np.maximum(output, 0) + tail)
            values += pos_weight * target * (np.maximum(-output, 0) + tail)
            grad = np.empty_like(output)
            Sigmoid().forward(output, grad)
            grad *= log_weight
            grad -= pos_weight * target
        if weight is not None:
            values = values * weight
            grad *= weight
        return values.astype(output.dtype), grad.astype(output.dtype, copy=False)

    def target_grad(self, output, target):  # ∂L/∂y = w·(p·softplus(−z) − softplus(z)), scaled
        scale = 1.0 / output.size if self.reduction == "mean" else 1.0
        grad = output * -scale  # −z = softplus(−z) − softplus(z), for p = 1
        pos_weight = self._option(self.pos_weight, output, "pos_weight")
        if pos_weight is not None:
            softplus_negative = np.maximum(-output, 0) + np.log1p(np.exp(-np.abs(output)))
            grad += (pos_weight - 1) * softplus_negative * scale
        weight = self._option(self.weight, output, "weight")
        return grad if weight is None else grad * weight


def _constant_option(values: object, what: str) -> None:
    """A loss's weights are constants of its kernel: one that asks for a gradient would
    get none, without a word (PyTorch's losses refuse it: not differentiable)."""
    if isinstance(values, Tensor) and values.requires_grad and is_grad_enabled():
        raise ConfigError(
            f"{what} requires grad, but the loss takes it as a constant, as PyTorch's "
            "(which refuses it too): pass it .detach()ed, or for a gradient multiply the "
            "losses of reduction='none' by it"
        )


def frozen_array(values: object, what: str) -> tuple[tuple[float, ...], tuple[int, ...]] | None:
    """An array option of a loss as a frozen kernel keeps it: its values and its shape."""
    if values is None:
        return None
    _constant_option(values, what)
    refuse_masked(values, what)
    array = np.asarray(values.data if isinstance(values, Tensor) else values)
    if array.dtype.kind not in "biuf" or array.size == 0:
        raise ConfigError(f"{what} must be numbers; got {array.dtype} of shape {array.shape}")
    return tuple(float(v) for v in array.ravel()), array.shape


def _workspace(output: np.ndarray, grad_out: np.ndarray | None) -> np.ndarray:
    """The gradient buffer doubles as scratch space; without one, a fresh array."""
    return grad_out if grad_out is not None else np.empty_like(output)


def loss_target(target: object, output: np.ndarray, kernel: LossKernel) -> np.ndarray:
    """The targets as an array in the output's dtype (class indices as given), checked
    against the output: text, dates, complex numbers and values beyond float32's range
    are refused, as in any operand of a tensor."""
    if target is None:
        raise DataError(f"{kernel.name} loss: got no target (None)")
    refuse_masked(target, f"{kernel.name} loss target")
    target = np.asarray(target)
    if target.dtype.kind not in "biu" and target.dtype != output.dtype:
        target = float_array(target, output.dtype, f"{kernel.name} loss target")
    if isinstance(kernel, (CrossEntropyKernel, NLLKernel)) and target.ndim == 1:
        target = _whole_class_indices(target, f"{kernel.name} loss")
    check_loss_target(kernel, output, target)
    return target


def _whole_class_indices(target: np.ndarray, where: str) -> np.ndarray:
    """Class indices given as floats: ``wxb.tensor(y)`` of integer labels holds floats
    (wxb's tensors are float) where ``torch.tensor(y)`` keeps int64. Whole numbers are
    the indices meant, as fit takes float labels; a fraction is refused by name."""
    if target.dtype.kind != "f":
        return target
    fraction = target[~np.isfinite(target) | (target != np.round(target))]
    if fraction.size:
        raise DataError(
            f"{where}: class-index targets (shape (B,)) must be whole numbers; got "
            f"{target.dtype} holding {fraction[0]} (probabilities go as shape (B, C))"
        )
    return target.astype(np.int64)


ONE_HOT_ADVICE = (
    "one-hot rows; class indices go as shape (B,), probabilities as floats, and several "
    "labels a row with BCEWithLogitsLoss (loss='bce_with_logits')"
)


def is_zero_one(y: np.ndarray) -> bool:
    """Every value 0 or 1 (labels, whatever their dtype)."""
    return bool(((y == 0) | (y == 1)).all())


def is_one_hot(y: np.ndarray) -> bool:
    """Rows of 0s and 1s with one 1 each."""
    return (
        y.ndim == 2
        and y.dtype.kind in "biuf"
        and is_zero_one(y)
        and bool((y.sum(axis=1) == 1).all())
    )


def check_loss_target(kernel: LossKernel, output: np.ndarray, target: np.ndarray) -> None:
    """Shape and range checks between a model's output and the targets, before any work."""
    where = f"{kernel.name} loss"
    if output.ndim == 0:
        raise DataError(f"{where}: needs outputs with a batch axis (B, …); got a 0-d value")
    if target.ndim == 0:
        raise DataError(
            f"{where}: needs a target per sample (B, …); got the single value {target.item()!r}"
        )
    if output.shape[0] == 0 and kernel.reduction == "mean":  # a mean of nothing
        raise DataError(f"{where}: the output holds no samples (shape {output.shape})")
    if output.shape[0] != target.shape[0]:
        raise ShapeError(
            f"{where}: output has {output.shape[0]} samples but target has {target.shape[0]}"
        )
    if isinstance(kernel, NLLKernel) and (target.ndim != 1 or target.dtype.kind not in "iu"):
        raise DataError(
            f"{where}: targets are class indices of shape (B,), as PyTorch's NLLLoss takes "
            f"them; got {target.dtype} of shape {target.shape} (probabilities go to "
            "CrossEntropyLoss, on logits)"
        )
    if isinstance(kernel, CrossEntropyKernel):
        if output.ndim != 2:
            raise ShapeError(f"{where}: needs logits of shape (B, C); got {output.shape}")
        classes = output.shape[1]
        if kernel.weight is not None and len(kernel.weight) != classes:
            raise ShapeError(
                f"{where}: weight holds {len(kernel.weight)} class weights but the model has "
                f"{classes} outputs; give one weight per class"
            )
        if target.ndim == 1:
            if target.dtype.kind not in "iu":
                raise DataError(
                    f"{where}: class-index targets must be integers; got {target.dtype}"
                )
            if target.size and (target.min() < 0 or target.max() >= classes):
                outside = target[(target < 0) | (target >= classes)]
                outside = outside[outside != kernel.ignore_index]  # those count for nothing
                if outside.size:
                    raise DataError(
                        f"{where}: target holds class {outside[0]} but the model has {classes} "
                        f"outputs (classes 0..{classes - 1}; ignore_index={kernel.ignore_index})"
                    )
            return
        # PyTorch's refusal: no class index to compare; a negative one (its -100, the -1
        # of padding) is no class either, and torch takes it with probabilities
        if kernel.ignore_index >= 0:
            raise DataError(
                f"{where}: ignore_index={kernel.ignore_index} applies to class-index targets; "
                "these are probabilities (give a row of 0s to leave one out)"
            )
        if target.shape == output.shape and target.dtype.kind in "biu":
            # whole numbers in (B, C) are one-hot rows, not class indices in a column
            if not is_one_hot(target):
                raise DataError(
                    f"{where}: a {target.dtype} target of shape {target.shape} must hold "
                    f"{ONE_HOT_ADVICE}"
                )
    if target.shape != output.shape:
        raise ShapeError(f"{where}: target shape {target.shape} != output shape {output.shape}")


def loss(output: Tensor, target: object, kernel: LossKernel) -> Tensor:
    """Scalar loss L(output, target) whose backward is the kernel's ∂L/∂output.

    A target tensor that requires grad (another model's output, say) is an input too,
    and gets ∂L/∂target; class indices have none.
    """
    if isinstance(output, (tuple, list, dict)) and any(
        isinstance(v, Tensor) for v in (output.values() if isinstance(output, dict) else output)
    ):  # a forward of two heads: read as one array, it said a Tensor "cannot become" one
        raise ConfigError(
            f"{kernel.name} loss: takes the outputs as one Tensor; got a "
            f"{type(output).__name__} of them (a forward of several heads): give it one, "
            "loss(out[0], y), or write a loss of one's own that reads them all"
        )
    output = as_tensor(output)
    out = output.data
    given = target.data if isinstance(target, Tensor) else target
    if (
        isinstance(given, np.ndarray)
        and given.dtype.kind == "f"
        and given.dtype.itemsize == 8  # (">f8" too)
        and out.dtype == np.float32
        and given.ndim
    ):
        # float32 outputs against a float64 array or tensor of targets: compared in
        # float64, as PyTorch promotes (its value float64, ∂L/∂ŷ cast back to float32);
        # rounding the targets first lost the residuals below float32's step (targets
        # near 1e4 within 1e-3 of the outputs gave L = 0 and no gradient). Targets
        # beyond float32's range are refused as before: ∂L/∂ŷ would be inf in float32.
        float_array(given, out.dtype, f"{kernel.name} loss target")
        out = out.astype(np.float64)
    tgt = loss_target(given, out, kernel)
    recording = is_grad_enabled()
    learned_target = (
        recording and isinstance(target, Tensor) and target.requires_grad and tgt.dtype.kind == "f"
    )
    if getattr(kernel, "reduction", None) == "none":
        return _per_sample_loss(output, target, tgt, kernel, learned_target, out)
    grad = np.empty_like(out) if recording and output.requires_grad else None
    value = kernel.value_and_grad(out, tgt, grad)
    if grad is not None and grad.dtype != output.dtype:
        grad = grad.astype(output.dtype)
    # ∂L/∂target now, as ∂L/∂ŷ: the backward reads neither input (either may change after)
    learned = kernel.target_grad(out, tgt).astype(target.dtype) if learned_target else None

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        # ∇_ŷ L, the first factor of δ⁽ᴸ⁾ = ∇_A L ⊙ f′(Z⁽ᴸ⁾); scaled when L is not the root
        output_grad = grad if grad is None or g == 1 else grad * g
        if output_grad is not None and output_grad.dtype != output.dtype:  # (g: float64)
            output_grad = output_grad.astype(output.dtype)
        if learned is None:
            return (output_grad,)
        return output_grad, (learned if g == 1 else learned * g)

    inputs = (output, target) if learned_target else (output,)
    reads = getattr(kernel, "reads_inputs", True)
    value = np.asarray(value, dtype=out.dtype)
    return Tensor.from_op(value, kernel.name, inputs, backward, reads_inputs=reads)


def _per_sample_loss(
    output: Tensor,
    target: object,
    tgt: np.ndarray,
    kernel: LossKernel,
    learned_target: bool,
    out: np.ndarray,
) -> Tensor:
    """Each sample's loss as a tensor, as PyTorch's reduction='none' gives it: (B,) for a
    loss over a sample's outputs, the output's shape for one taken per element. Its
    backward scales each sample's gradient by that sample's factor of ∂L/∂(its losses).
    ``out``: the outputs in the dtype compared (float64 beside float64 targets)."""
    values, grad = kernel.per_sample(out, tgt)
    # ∂/∂target now, as ∂/∂ŷ: the backward reads neither input (either may change after)
    learned = kernel.target_grad(out, tgt).astype(target.dtype) if learned_target else None

    def backward(g: np.ndarray) -> tuple[np.ndarray, ...]:
        factor = g.reshape(g.shape + (1,) * (grad.ndim - g.ndim))  # over the sample's outputs
        output_grad = (grad * factor).astype(output.dtype, copy=False)
        if learned is None:
            return (output_grad,)
        return output_grad, learned * factor

    inputs = (output, target) if learned_target else (output,)
    reads = getattr(kernel, "reads_inputs", True)
    return Tensor.from_op(values, kernel.name, inputs, backward, reads_inputs=reads)


def _reduced(values: np.ndarray, reduction: str, rows: int) -> tuple[np.ndarray, float]:
    """A pointwise loss reduced, and the factor each element's gradient takes."""
    if reduction == "none":
        return values, 1.0
    if reduction == "sum":
        return np.asarray(values.sum()), 1.0
    count = values.size if reduction == "mean" else rows  # "batchmean": over the rows
    return np.asarray(values.sum() / count), 1.0 / count


def _pointwise_target(output: Tensor, target: object, name: str, widen: bool = False) -> Tensor:
    """``widen``: a wider float array kept so (a float64 NumPy target beside float32
    outputs), where torch's functional form computes the loss in it, as wxb's MSELoss."""
    if not isinstance(target, Tensor):  # the output's dtype, copied where a backward reads it
        given = getattr(target, "dtype", None)
        wide = widen and isinstance(given, np.dtype) and given.kind == "f"
        dtype = np.promote_types(output.dtype, given) if wide else output.dtype
        target = _operand(target, dtype, output.requires_grad)
    if target.shape != output.shape:  # torch refuses another size (broadcasting misleads)
        raise ShapeError(
            f"{name}: the target's shape {target.shape} differs from the input's {output.shape}"
        )
    return target


def binary_cross_entropy(
    output: object, target: object, weight: object = None, reduction: str = "mean"
) -> Tensor:
    """Binary cross-entropy of probabilities p (torch's F.binary_cross_entropy / BCELoss):
    −w·[y·log p + (1 − y)·log(1 − p)], each log clamped at −100 as torch's (so p = 0 or 1
    gives a finite loss). ∂L/∂p = w·(p − y)/max(p·(1 − p), 1e-12), torch's rule;
    ∂L/∂y = w·(log(1 − p) − log p), unclamped as torch's."""
    _check_reduction(reduction, "binary_cross_entropy")
    p = as_tensor(output)
    y = _pointwise_target(p, target, "binary_cross_entropy")
    P, Y = p.data, y.data
    if P.size and not ((P >= 0) & (P <= 1)).all():  # (NaN too)
        raise DataError(
            "binary_cross_entropy: the input must be probabilities in [0, 1] (a Sigmoid's "
            "output; for logits use BCEWithLogitsLoss)"
        )
    W = (  # (a copy: the backward's own, as a target's)
        None
        if weight is None
        else np.broadcast_to(np.array(getattr(weight, "data", weight), P.dtype), P.shape)
    )
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(P), -100)
        log_q = np.maximum(np.log1p(-P), -100)
    values = (Y - 1) * log_q - Y * log_p
    if W is not None:
        values = values * W
    out, factor = _reduced(values, reduction, len(P) if P.ndim else 1)

    def backward(grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g = grad * factor
        # torch's floor 1e-12 is a float32 constant (9.99999996e-13) in float64 too
        dp = g * (P - Y) / np.maximum((1 - P) * P, P.dtype.type(np.float32(1e-12)))
        with np.errstate(divide="ignore"):  # torch's: the logs unclamped (±inf at 0, 1)
            dy = g * (np.log1p(-P) - np.log(P))
        if W is not None:
            dp, dy = dp * W, dy * W
        return dp.astype(P.dtype, copy=False), dy.astype(Y.dtype, copy=False)

    return Tensor.from_op(out.astype(P.dtype, copy=False), "binary_cross_entropy", (p, y), backward)


KL_REDUCTIONS = ("mean", "batchmean", "sum", "none")


def kl_div(
    output: object, target: object, reduction: str = "mean", log_target: bool = False
) -> Tensor:
    """KL divergence of log-probabilities x from the target (torch's F.kl_div /
    KLDivLoss): t·(log t − x), 0 where t = 0; ``log_target``: e^t·(t − x) with t a
    log-probability. "batchmean" divides the sum by the rows (the KL divergence's
    mathematical mean), "mean" by the elements (torch's default). ∂L/∂x = −t (−e^t);
    ∂L/∂t = log t + 1 − x (e^t·(t − x + 1))."""
    if reduction not in KL_REDUCTIONS:
        raise ConfigError(
            f"kl_div reduction must be one of {', '.join(KL_REDUCTIONS)}; got {reduction!r}"
        )
    if not isinstance(log_target, (bool, np.bool_)):
        raise ConfigError(f"kl_div log_target must be True or False; got {log_target!r}")
    x = as_tensor(output)
    t = _pointwise_target(x, target, "kl_div")
    X, T = x.data, t.data
    if log_target:
        e = np.exp(T)
        values = e * (T - X)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):  # (0·log 0 taken as 0)
            log_t = np.log(T)
            values = np.where(T > 0, T * log_t, np.where(T == 0, 0, np.nan)) - T * X
    out, factor = _reduced(values, reduction, len(X) if X.ndim else 1)

    def backward(grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g = grad * factor
        if log_target:
            return -g * e, g * e * (T - X + 1)
        with np.errstate(invalid="ignore"):  # (−inf where t = 0)
            return -g * T, g * (log_t + 1 - X)

    return Tensor.from_op(out.astype(X.dtype, copy=False), "kl_div", (x, t), backward)


# ---------------------------------------------------------------------------------
# torch.nn's other losses (PoissonNLLLoss … TripletMarginLoss): each on the recorded
# graph, forward and backward side by side, with torch's numbers, reductions and
# gradients at the kinks (a hinge max(0, z) passes its gradient at z = 0, as torch's
# clamp_min; the margins of multi_margin and multilabel_margin only above 0, as its kernels)
# ---------------------------------------------------------------------------------
def _loss_number(value: object, what: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not _is_number(value) or not math.isfinite(value):
        raise ConfigError(f"{what} must be a finite number; got {value!r}")
    return float(value)


def _loss_flag(value: object, what: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{what} must be True or False; got {value!r}")
    return bool(value)


def _loss_tensors(name: str, *values: object) -> list[Tensor]:
    """The loss's inputs as tensors of one float dtype (torch's promotion; an array or a
    number takes a tensor's dtype), whose shapes broadcast together, as torch's do."""
    tensors = in_result_type(values)
    try:
        np.broadcast_shapes(*(t.shape for t in tensors))
    except ValueError:
        shapes = " and ".join(str(t.shape) for t in tensors)
        raise ShapeError(f"{name}: the shapes {shapes} do not broadcast together") from None
    return tensors


def _grads(g: np.ndarray, *pairs: tuple[Tensor, np.ndarray | None]) -> tuple:
    """Each input's gradient, summed back to its shape and in its dtype (None: none)."""
    return tuple(
        None if grad is None else _in_dtype(_unbroadcast(np.asarray(grad), t.shape), t.dtype)
        for t, grad in pairs
    )


def _labels(target: object, name: str, what: str = "target") -> np.ndarray:
    """Class indices as torch's int64 (wxb.tensor's whole-number floats too; a fraction refused)."""
    values = target.data if isinstance(target, Tensor) else np.asarray(target)
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise DataError(f"{name}: the {what} must hold class indices (whole numbers)")
    elif values.dtype.kind not in "iu":
        raise DataError(f"{name}: the {what} must hold class indices; got {values.dtype} values")
    return values.astype(np.int64)


def _same_shape_target(input: object, target: object, name: str) -> list[Tensor]:
    """The input and a target of its shape, in one dtype. torch broadcasts them, and a
    (B,) target beside (B, 1) outputs spread into (B, B) without a word: refused, as
    BCELoss's (fit then hands the targets as (B, 1))."""
    x = as_tensor(input)
    return in_result_type((x, _pointwise_target(x, target, name)))


def poisson_nll_loss(
    input: object,
    target: object,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    reduction: str = "mean",
) -> Tensor:
    """Poisson negative log-likelihood (torch's F.poisson_nll_loss / PoissonNLLLoss):
    e^x − t·x of a log-rate x (``log_input``), or x − t·log(x + eps) of a rate x; ``full``
    adds Stirling's t·log t − t + ½·log(2πt) where t > 1; targets of the input's shape.
    ∂L/∂x = e^x − t (1 − t/(x + eps));
    ∂L/∂t = −x (−log(x + eps)), + log t + 1/(2t) where t > 1 with ``full``."""
    _check_reduction(reduction, "poisson_nll_loss")
    log_input = _loss_flag(log_input, "poisson_nll_loss log_input")
    full = _loss_flag(full, "poisson_nll_loss full")
    eps = _loss_number(eps, "poisson_nll_loss eps")
    x = as_tensor(input)
    t = _pointwise_target(x, target, "poisson_nll_loss", widen=True)
    X, T = x.data, t.data
    dtype = np.promote_types(X.dtype, T.dtype)  # torch's: float32 x, float64 t is float64
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if log_input:
            rate = np.exp(X)
            values = rate - T * X
        else:
            shifted = X + X.dtype.type(eps)
            log_rate = np.log(shifted)
            values = X - T * log_rate
        if full:
            above = T > 1
            stirling = T * np.log(T) - T + 0.5 * np.log(2 * math.pi * T)
            values = values + np.where(above, stirling, 0).astype(dtype)
    out, factor = _reduced(values, reduction, 1)

    def backward(g: np.ndarray) -> tuple:
        g = g * factor
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            dx = g * (rate - T) if log_input else g * (1 - T / shifted)
            dt = -g * (X if log_input else log_rate)
            if full:
                dt = dt + g * np.where(above, np.log(T) + 0.5 / T, 0)
        return _grads(g, (x, dx), (t, dt))

    return Tensor.from_op(np.asarray(out, dtype), "poisson_nll_loss", (x, t), backward)


def gaussian_nll_loss(
    input: object,
    target: object,
    var: object,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Tensor:
    """Gaussian negative log-likelihood (torch's F.gaussian_nll_loss / GaussianNLLLoss):
    ½·(log v + (x − t)²/v) with v = max(var, eps), + ½·log 2π with ``full``. ``var``: one
    per element of x, one per row (x's shape without its last dim, or with one dim of
    size 1), or a number. As torch's, the clamp is not differentiated: ∂L/∂var =
    ½·(1/v − (x − t)²/v²) wherever var is, clamped or not; ∂L/∂x = (x − t)/v = −∂L/∂t."""
    _check_reduction(reduction, "gaussian_nll_loss")
    full = _loss_flag(full, "gaussian_nll_loss full")
    eps = _loss_number(eps, "gaussian_nll_loss eps")
    number = not isinstance(var, (Tensor, np.ndarray, list, tuple))
    if number:
        if _loss_number(var, "gaussian_nll_loss var") < 0:
            raise ConfigError(f"gaussian_nll_loss: var must not be negative; got {var!r}")
        x, t = _loss_tensors("gaussian_nll_loss", input, target)
        v = Tensor(np.full(x.shape, var, dtype=x.dtype))
    else:
        x, t, v = in_result_type((input, target, var))
        if np.any(v.data < 0):
            raise DataError("gaussian_nll_loss: var has a negative entry (variances are ≥ 0)")
    V = v.data
    if v.shape != x.shape:
        if x.shape[:-1] == v.shape:  # one variance per row
            V = V[..., None]
        elif not (
            v.ndim == x.ndim
            and builtins.sum(b for a, b in zip(x.shape, v.shape, strict=True) if a != b) == 1
        ):
            raise ShapeError(
                f"gaussian_nll_loss: var of shape {v.shape} fits no input of shape {x.shape} "
                "(give one per element, per row: x's shape without its last dim, or one dim of 1)"
            )
    try:
        np.broadcast_shapes(x.shape, t.shape, V.shape)
    except ValueError:
        raise ShapeError(
            f"gaussian_nll_loss: the target's shape {t.shape} does not broadcast with the "
            f"input's {x.shape}"
        ) from None
    X, T = x.data, t.data
    with np.errstate(invalid="ignore", divide="ignore"):
        clamped = np.maximum(V, V.dtype.type(eps))
        d = X - T
        values = 0.5 * (np.log(clamped) + d**2 / clamped)
        if full:
            values = values + X.dtype.type(0.5 * math.log(2 * math.pi))
    out, factor = _reduced(values, reduction, 1)

    def backward(g: np.ndarray) -> tuple:
        g = g * factor
        dx = g * d / clamped
        dv = g * 0.5 * (1 / clamped - d**2 / clamped**2)
        dv = _unbroadcast(np.broadcast_to(dv, np.broadcast_shapes(dv.shape, V.shape)), V.shape)
        return _grads(g, (x, dx), (t, -dx), (v, None if number else dv.reshape(v.shape)))

    return Tensor.from_op(np.asarray(out, X.dtype), "gaussian_nll_loss", (x, t, v), backward)


def soft_margin_loss(input: object, target: object, reduction: str = "mean") -> Tensor:
    """log(1 + e^(−y·x)) of labels y = ±1 (torch's F.soft_margin_loss / SoftMarginLoss),
    the mean over every element. ∂L/∂x = −y·σ(−y·x); the labels get none, as torch's."""
    _check_reduction(reduction, "soft_margin_loss")
    x = as_tensor(input)
    Y = _pointwise_target(x, target, "soft_margin_loss").data
    margin = Y * x.data
    values = np.logaddexp(0, -margin)  # (stable: torch's log1p(e^(−y·x)) overflows far out)
    out, factor = _reduced(values, reduction, 1)

    def backward(g: np.ndarray) -> tuple:
        # σ(−y·x) = e^(−log(1 + e^(y·x))), which never overflows
        return _grads(g, (x, -g * factor * Y * np.exp(-np.logaddexp(0, margin))))

    return Tensor.from_op(np.asarray(out, x.dtype), "soft_margin_loss", (x,), backward)


def multilabel_soft_margin_loss(
    input: object, target: object, weight: object = None, reduction: str = "mean"
) -> Tensor:
    """Per row, the mean over the C classes of w·[−y·log σ(x) − (1 − y)·log σ(−x)]
    (torch's F.multilabel_soft_margin_loss / MultiLabelSoftMarginLoss), labels y in
    [0, 1] of the input's shape; ``weight`` broadcast over it (one per class). The mean
    is over the rows. ∂L/∂x = w·(σ(x) − y)/C; ∂L/∂y = −w·x/C."""
    _check_reduction(reduction, "multilabel_soft_margin_loss")
    x = as_tensor(input)
    if x.ndim == 0:
        raise ShapeError("multilabel_soft_margin_loss: the input needs a class dim (C,) or (N, C)")
    t = _pointwise_target(x, target, "multilabel_soft_margin_loss", widen=True)
    X, Y = x.data, t.data
    W = None
    if weight is not None:
        W = float_array(
            getattr(weight, "data", weight), X.dtype, "multilabel_soft_margin_loss weight"
        )
        try:
            np.broadcast_shapes(W.shape, X.shape)
        except ValueError:
            raise ShapeError(
                f"multilabel_soft_margin_loss: weight of shape {W.shape} does not broadcast "
                f"over the input's {X.shape}"
            ) from None
    classes = X.shape[-1]
    values = Y * np.logaddexp(0, -X) + (1 - Y) * np.logaddexp(0, X)
    if W is not None:
        values = values * W
    rows = np.sum(values, axis=-1) / X.dtype.type(classes)
    out, factor = _reduced(rows, reduction, 1)

    def backward(g: np.ndarray) -> tuple:
        g = np.expand_dims(g * factor, -1) / X.dtype.type(classes)
        if W is not None:
            g = g * W
        probability = np.exp(-np.logaddexp(0, -X))  # σ(x), never overflowing
        return _grads(g, (x, g * (probability - Y)), (t, -g * X))

    result = np.asarray(out, np.promote_types(X.dtype, Y.dtype))  # as torch's, as poisson's
    return Tensor.from_op(result, "multilabel_soft_margin_loss", (x, t), backward)


def hinge_embedding_loss(
    input: object, target: object, margin: float = 1.0, reduction: str = "mean"
) -> Tensor:
    """x where y = 1, max(0, margin − x) where y = −1 (torch's F.hinge_embedding_loss /
    HingeEmbeddingLoss: x a distance, y = ±1 whether the pair is alike; a label that is
    neither adds both terms, as torch's). The labels get no gradient, as torch's."""
    _check_reduction(reduction, "hinge_embedding_loss")
    margin = _loss_number(margin, "hinge_embedding_loss margin")
    x, t = _same_shape_target(input, target, "hinge_embedding_loss")
    X, Y = x.data, t.data
    gap = X.dtype.type(margin) - X
    hinge, alike = Y != 1, Y != -1
    values = np.where(hinge, np.maximum(gap, 0), 0) + np.where(alike, X, 0)
    out, factor = _reduced(values.astype(X.dtype, copy=False), reduction, 1)

    def backward(g: np.ndarray) -> tuple:
        g = g * factor
        return _grads(g, (x, g * (alike.astype(X.dtype) - (hinge & (gap >= 0)))), (t, None))

    return Tensor.from_op(np.asarray(out, X.dtype), "hinge_embedding_loss", (x, t), backward)


def _same_dims(name: str, what: str, *tensors: Tensor) -> None:
    if len({t.ndim for t in tensors}) > 1:
        dims = ", ".join(f"{t.ndim}-d" for t in tensors)
        raise ShapeError(f"{name}: {what} must have as many dims, as torch's; got {dims}")


def margin_ranking_loss(
    input1: object, input2: object, target: object, margin: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """max(0, −y·(x1 − x2) + margin) (torch's F.margin_ranking_loss / MarginRankingLoss):
    y = 1 where x1 should rank above x2, −1 below. Two inputs: a hand loop's loss, not
    fit's. The hinge passes its gradient at 0: ∂L/∂x1 = −y = −∂L/∂x2, ∂L/∂y = −(x1 − x2)."""
    _check_reduction(reduction, "margin_ranking_loss")
    margin = _loss_number(margin, "margin_ranking_loss margin")
    a, b, t = _loss_tensors("margin_ranking_loss", input1, input2, target)
    _same_dims("margin_ranking_loss", "input1, input2 and target", a, b, t)
    difference = a.data - b.data
    Y = t.data
    z = -Y * difference + difference.dtype.type(margin)
    out, factor = _reduced(np.maximum(z, 0), reduction, 1)

    def backward(g: np.ndarray) -> tuple:
        g = np.where(z >= 0, g * factor, 0)
        return _grads(g, (a, -g * Y), (b, g * Y), (t, -g * difference))

    return Tensor.from_op(np.asarray(out, z.dtype), "margin_ranking_loss", (a, b, t), backward)


def cosine_embedding_loss(
    input1: object, input2: object, target: object, margin: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """1 − cos(x1, x2) where y = 1, max(0, cos(x1, x2) − margin) where y = −1 (torch's
    F.cosine_embedding_loss / CosineEmbeddingLoss; 0 for another label), cos over the last
    dim with torch's 1e-12 added to each squared norm: rows (N, D) with labels (N,), or
    one pair (D,) with a 0-d label. Two inputs: a hand loop's loss, not fit's. ∂cos/∂x1 =
    x2/(‖x1‖‖x2‖) − cos·x1/‖x1‖²; the labels get no gradient, as torch's."""
    _check_reduction(reduction, "cosine_embedding_loss")
    margin = _loss_number(margin, "cosine_embedding_loss margin")
    a, b = in_result_type((input1, input2))
    labels = target.data if isinstance(target, Tensor) else np.asarray(target)
    if labels.ndim > 1:
        raise ShapeError(
            f"cosine_embedding_loss: the target holds one label per pair, (N,) or 0-d; got "
            f"shape {labels.shape}"
        )
    want = labels.ndim + 1
    if a.ndim != want or b.ndim != want:
        raise ShapeError(
            f"cosine_embedding_loss: a {labels.ndim}-d target takes {want}-d inputs, as "
            f"torch's; got shapes {a.shape} and {b.shape}"
        )
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
        np.broadcast_shapes(labels.shape, shape[:-1])
    except ValueError:
        raise ShapeError(
            f"cosine_embedding_loss: inputs {a.shape} and {b.shape} and target "
            f"{labels.shape} do not fit together"
        ) from None
    A, B = np.broadcast_to(a.data, shape), np.broadcast_to(b.data, shape)
    tiny = A.dtype.type(np.float32(1e-12))  # torch's EPSILON is a float32 constant
    dot = np.sum(A * B, axis=-1)
    square1, square2 = np.sum(A * A, axis=-1) + tiny, np.sum(B * B, axis=-1) + tiny
    denominator = np.sqrt(square1 * square2)
    cos = dot / denominator
    alike, apart = labels == 1, labels == -1
    over = cos - A.dtype.type(margin)
    values = np.where(alike, 1 - cos, 0) + np.where(apart, np.maximum(over, 0), 0)
    out, factor = _reduced(values.astype(A.dtype, copy=False), reduction, 1)

    def backward(g: np.ndarray) -> tuple:
        g = g * factor
        dcos = np.where(alike, -g, 0) + np.where(apart & (over >= 0), g, 0)
        dcos, c = dcos[..., None], cos[..., None]
        da = dcos * (B / denominator[..., None] - c * A / square1[..., None])
        db = dcos * (A / denominator[..., None] - c * B / square2[..., None])
        return _grads(g, (a, da), (b, db))

    return Tensor.from_op(np.asarray(out, A.dtype), "cosine_embedding_loss", (a, b), backward)


def _class_rows(input: object, target: object, name: str) -> tuple[Tensor, np.ndarray]:
    """(N, C) or (C,) scores and their class indices, (N,) or one, torch's shapes."""
    x = as_tensor(input)
    if x.ndim not in (1, 2) or x.size == 0:
        raise ShapeError(
            f"{name}: the input must be scores (N, C) or (C,) with values; got shape {x.shape}"
        )
    return x, _labels(target, name)


def multi_margin_loss(
    input: object,
    target: object,
    p: int = 1,
    margin: float = 1.0,
    weight: object = None,
    reduction: str = "mean",
) -> Tensor:
    """The multi-class hinge (torch's F.multi_margin_loss / MultiMarginLoss): per row,
    Σ_{j ≠ y} w_y·max(0, margin − x_y + x_j)^p / C, p = 1 or 2, over scores (N, C) (or
    one row (C,)) and class indices y; ``weight`` one per class. As torch's kernel, a term
    counts where it is above 0 (not at 0): ∂L/∂x_j = w_y·p·z^(p−1)/C, ∂L/∂x_y their −sum."""
    name = "multi_margin_loss"
    _check_reduction(reduction, name)
    if isinstance(p, bool) or p not in (1, 2):
        raise ConfigError(f"{name}: p must be 1 or 2, as torch's; got {p!r}")
    margin = _loss_number(margin, f"{name} margin")
    x, y = _class_rows(input, target, name)
    X = x.data.reshape(-1, x.shape[-1])
    rows, classes = X.shape
    if y.ndim > 1 or y.size != rows:
        raise ShapeError(f"{name}: the target needs {rows} class indices; got shape {y.shape}")
    y = y.reshape(rows)
    if y.size and (y.min() < 0 or y.max() >= classes):
        raise DataError(
            f"{name}: class indices must lie in [0, {classes}); got {y.min()}…{y.max()}"
        )
    W = None
    if weight is not None:
        W = float_array(getattr(weight, "data", weight), X.dtype, f"{name} weight")
        if W.ndim > 1 or W.size != classes:
            raise ShapeError(f"{name}: weight needs one per class, {classes}; got shape {W.shape}")
        W = W.reshape(classes)
    picked = X[np.arange(rows), y]
    z = X.dtype.type(margin) - picked[:, None] + X
    active = z > 0
    active[np.arange(rows), y] = False
    terms = np.where(active, z if p == 1 else z * z, 0)
    scale = np.ones(rows, X.dtype) if W is None else W[y]
    values = np.sum(terms, axis=1) * scale / X.dtype.type(classes)
    if x.ndim == 1:
        values = values.reshape(())
    out, factor = _reduced(values, reduction, 1)

    def backward(g: np.ndarray) -> tuple:
        each = np.broadcast_to(np.asarray(g * factor, X.dtype).reshape(-1), (rows,))
        slope = np.where(active, 1 if p == 1 else 2 * z, 0) * (each * scale / classes)[:, None]
        dx = slope.astype(X.dtype, copy=False)
        dx[np.arange(rows), y] -= slope.sum(axis=1)
        return _grads(g, (x, dx.reshape(x.shape)))

    return Tensor.from_op(np.asarray(out, X.dtype), name, (x,), backward)


def multilabel_margin_loss(input: object, target: object, reduction: str = "mean") -> Tensor:
    """The multi-label hinge (torch's F.multilabel_margin_loss / MultiLabelMarginLoss):
    per row, Σ_j Σ_k max(0, 1 − (x_j − x_k)) / C over the row's labels j and the classes k
    that are not among them; the target (input's shape, int) lists a row's labels first,
    then −1 ends them. As torch's kernel, a term counts above 0 (not at 0)."""
    name = "multilabel_margin_loss"
    _check_reduction(reduction, name)
    x, y = _class_rows(input, target, name)
    if y.shape != x.shape:
        raise ShapeError(
            f"{name}: the target lists labels in the input's shape {x.shape} (−1 ends a "
            f"row's); got shape {y.shape}"
        )
    X = x.data.reshape(-1, x.shape[-1])
    rows, classes = X.shape
    Y = y.reshape(rows, classes)
    if Y.size and (Y.min() < -1 or Y.max() >= classes):
        raise DataError(f"{name}: labels must lie in [0, {classes}), −1 ending a row's list")
    listed = np.cumprod(Y != -1, axis=1).astype(bool)  # the labels before the first −1
    counts = np.zeros((rows, classes), np.int64)  # each label as often as listed, as torch's
    np.add.at(counts, (np.nonzero(listed)[0], Y[listed]), 1)
    others = counts == 0
    z = 1 - X[:, :, None] + X[:, None, :]  # [i, j, k]: 1 − (x_j − x_k)
    pairs = (counts[:, :, None] * others[:, None, :]) * (z > 0)
    values = np.sum(pairs * z, axis=(1, 2)).astype(X.dtype) / X.dtype.type(classes)
    if x.ndim == 1:
        values = values.reshape(())
    out, factor = _reduced(values, reduction, 1)

    def backward(g: np.ndarray) -> tuple:
        each = np.broadcast_to(np.asarray(g * factor, X.dtype).reshape(-1), (rows,))
        share = (each / classes)[:, None]
        dx = (pairs.sum(axis=1) - pairs.sum(axis=2)) * share
        return _grads(g, (x, dx.astype(X.dtype).reshape(x.shape)))

    return Tensor.from_op(np.asarray(out, X.dtype), name, (x,), backward)


def _reduce_loss(values: Tensor, reduction: str) -> Tensor:
    return {"mean": mean, "sum": sum}[reduction](values) if reduction != "none" else values


def triplet_margin_with_distance_loss(
    anchor: object,
    positive: object,
    negative: object,
    *,
    distance_function: Callable | None = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """max(0, margin + d(a, p) − d(a, n)) (torch's F.triplet_margin_with_distance_loss /
    TripletMarginWithDistanceLoss), d ``distance_function`` (default: pairwise_distance);
    ``swap``: d(a, n) is min(d(a, n), d(p, n)). Composed of wxb's recorded operations,
    whose gradients are torch's (the hinge's at 0, a tie's shared). Three inputs: a hand
    loop's loss, not fit's."""
    name = "triplet_margin_with_distance_loss"
    _check_reduction(reduction, name)
    margin = _loss_number(margin, f"{name} margin")
    if margin <= 0:
        raise ConfigError(f"{name}: margin must be > 0, as torch's; got {margin}")
    swap = _loss_flag(swap, f"{name} swap")
    a, p, n = in_result_type((anchor, positive, negative))
    _same_dims(name, "anchor, positive and negative", a, p, n)
    distance = pairwise_distance if distance_function is None else distance_function
    if not callable(distance):
        raise ConfigError(f"{name}: distance_function must be a function (x1, x2) → Tensor")
    near, far = distance(a, p), distance(a, n)
    if swap:
        far = pairwise_extreme(far, distance(p, n), largest=False)
    return _reduce_loss(clamp(add(sub(near, far), margin), min=0), reduction)


def triplet_margin_loss(
    anchor: object,
    positive: object,
    negative: object,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """max(0, margin + ‖a − p + eps‖_p − ‖a − n + eps‖_p) over the last dim (torch's
    F.triplet_margin_loss / TripletMarginLoss: pairwise_distance's norm); ``swap``: the
    smaller of the anchor's and the positive's distance to the negative. Three inputs: a
    hand loop's loss, not fit's."""
    name = "triplet_margin_loss"
    _check_reduction(reduction, name)
    eps = _loss_number(eps, f"{name} eps")
    norm_p = _loss_number(p, f"{name} p")
    if norm_p < 0:
        raise ConfigError(f"{name}: p must be ≥ 0 (a norm's); got {p!r}")

    def distance(x1: Tensor, x2: Tensor) -> Tensor:
        return pairwise_distance(x1, x2, norm_p, eps)

    try:
        return triplet_margin_with_distance_loss(
            anchor, positive, negative, distance_function=distance, margin=margin, swap=swap,
            reduction=reduction,
        )  # fmt: skip
    except ConfigError as refused:  # (in this loss's name)
        raise ConfigError(str(refused).replace(f"{name}_with_distance_loss", name)) from None


def mse_loss(
    output: Tensor, target: object, reduction: str = "mean", *, weight: object = None
) -> Tensor:
    """The seed's L = ½‖ŷ − y‖² per sample, averaged over the B samples ("mean") or
    summed ("sum"). Not PyTorch's ``F.mse_loss``, which averages (ŷ − y)² over all B·C
    elements: for C outputs this is C/2 times it (half of it for one output), and so are
    its gradients; ``2 * mse_loss(ŷ, y) / C`` is PyTorch's figure. PyTorch's ``weight=``
    (per element, its mean over Σw) is refused by name: these are other numbers."""
    if weight is not None:
        raise ConfigError(
            "mse_loss: weight= is PyTorch's option (w·(ŷ − y)² per element, its mean over "
            "Σw), and wxb's mse_loss is the seed's ½‖ŷ − y‖² a sample: multiply the losses "
            "of reduction='none' (one a sample) by your weights"
        )
    return loss(output, target, MSEKernel(reduction))


def cross_entropy(
    output: Tensor,
    target: object,
    reduction: str = "mean",
    *,
    weight: object = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy of logits; PyTorch's ``weight``, ``ignore_index`` and
    ``label_smoothing`` by keyword (``reduction`` is wxb's third argument)."""
    return loss(
        output,
        target,
        CrossEntropyKernel(
            reduction, **class_options(weight, ignore_index, label_smoothing, "cross_entropy")
        ),
    )


def bce_with_logits(
    output: Tensor,
    target: object,
    reduction: str = "mean",
    *,
    weight: object = None,
    pos_weight: object = None,
) -> Tensor:
    """Binary cross-entropy of logits; PyTorch's ``weight`` and ``pos_weight`` by keyword
    (``reduction`` is wxb's third argument)."""
    return loss(
        output,
        target,
        BCEWithLogitsKernel(
            reduction,
            weight=frozen_array(weight, "bce_with_logits weight"),
            pos_weight=frozen_array(pos_weight, "bce_with_logits pos_weight"),
        ),
    )


binary_cross_entropy_with_logits = bce_with_logits  # PyTorch's name


def nll_loss(
    output: Tensor,
    target: object,
    reduction: str = "mean",
    *,
    weight: object = None,
    ignore_index: int = -100,
) -> Tensor:
    """−A[y] of log-probabilities; PyTorch's ``weight`` and ``ignore_index`` by keyword."""
    return loss(
        output, target, NLLKernel(reduction, **class_options(weight, ignore_index, 0.0, "nll"))
    )


def class_options(
    weight: object, ignore_index: object, label_smoothing: object, name: str
) -> dict[str, Any]:
    """PyTorch's class options of a cross-entropy, checked, as the kernel keeps them: the
    weights as a tuple of floats (one per class; the kernel is frozen and compared)."""
    where = f"{name} loss"
    if weight is not None:
        _constant_option(weight, f"{where}: weight")
        refuse_masked(weight, f"{where}: weight")
        values = np.asarray(weight.data if isinstance(weight, Tensor) else weight)
        if values.ndim != 1 or values.size == 0 or values.dtype.kind not in "biuf":
            raise ConfigError(
                f"{where}: weight must be a 1-D array of numbers, one per class; got "
                f"{values.dtype} of shape {values.shape}"
            )
        weight = tuple(float(v) for v in values)
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(
        ignore_index, (int, np.integer)
    ):
        raise ConfigError(f"{where}: ignore_index must be an integer; got {ignore_index!r}")
    if (
        isinstance(label_smoothing, (bool, np.bool_))
        or not isinstance(label_smoothing, (int, float, np.integer, np.floating))
        or not 0.0 <= label_smoothing <= 1.0
    ):
        raise ConfigError(
            f"{where}: label_smoothing must be a number between 0.0 and 1.0; "
            f"got {label_smoothing!r}"
        )
    return {
        "weight": weight,
        "ignore_index": int(ignore_index),
        "label_smoothing": float(label_smoothing),
    }


def l1_loss(
    output: Tensor, target: object, reduction: str = "mean", *, weight: object = None
) -> Tensor:
    """|ŷ − y| per element, reduced; PyTorch's ``weight=`` by keyword (see _weighted)."""
    if weight is not None:
        kernel = L1Kernel("none")
        return _weighted(loss(output, target, kernel), weight, reduction, kernel.name, True)
    return loss(output, target, L1Kernel(reduction))


def huber_loss(
    output: Tensor,
    target: object,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: object = None,
) -> Tensor:
    """Huber's loss per element, reduced; PyTorch's ``weight=`` (see _weighted)."""
    # checked before float(): a 0-d tensor (a Parameter) would pass as its value and get
    # no gradient without a word (PyTorch's takes only a float)
    check_threshold(delta, "huber loss delta", positive=True)
    if weight is not None:
        kernel = HuberKernel("none", delta=float(delta))
        return _weighted(loss(output, target, kernel), weight, reduction, kernel.name, False)
    return loss(output, target, HuberKernel(reduction, delta=float(delta)))


def _weighted(
    losses: Tensor, weight: object, reduction: str, name: str, over_weights: bool
) -> Tensor:
    """PyTorch's ``weight=`` of ``l1_loss`` and ``huber_loss`` (torch 2.6 on): each
    element's loss times its weight, of the output's shape as torch requires, then
    reduced; torch's mean is over the weights' sum for l1_loss (``over_weights``) and
    over the element count for huber_loss. A weight that requires grad gets its gradient,
    as torch's (an ignored keyword was Python's TypeError)."""
    _check_reduction(reduction, name)
    if not isinstance(weight, Tensor):  # the loss's dtype, copied where the backward reads it
        weight = _operand(weight, losses.dtype, losses.requires_grad)
    if weight.shape != losses.shape:
        raise ShapeError(
            f"{name} loss: weight of shape {weight.shape} must have the output's shape "
            f"{losses.shape}, as PyTorch requires"
        )
    weighted = mul(losses, weight)
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return sum(weighted)
    return div(sum(weighted), sum(weight)) if over_weights else mean(weighted)


def smooth_l1_loss(output: Tensor, target: object, reduction: str = "mean", beta: float = 1.0):
    check_threshold(beta, "smooth L1 loss beta", positive=False)  # as huber_loss's delta
    return loss(output, target, SmoothL1Kernel(reduction, beta=float(beta)))


# ---------------------------------------------------------------------------------
# Normalisation: LayerNorm and BatchNorm1d (x̂ = (x − μ)/√(σ² + ε), then γ ⊙ x̂ + β), RMSNorm
# ---------------------------------------------------------------------------------
def check_normalized_shape(value: object, what: str = "normalized_shape") -> tuple[int, ...]:
    """PyTorch's ``normalized_shape``: an int or a sequence of positive ints."""
    dims = (value,) if isinstance(value, (int, np.integer)) else value
    try:
        dims = tuple(dims)  # type: ignore[arg-type]
    except TypeError:
        raise ConfigError(f"{what} must be an int or a sequence of ints; got {value!r}") from None
    if not dims or any(
        isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1 for d in dims
    ):
        raise ConfigError(f"{what} must be positive ints; got {value!r}")
    return tuple(int(d) for d in dims)


def check_eps(eps: object, what: str) -> float:
    if not _is_number(eps) or not 0 <= eps < math.inf:
        raise ConfigError(f"{what}: eps must be a finite number ≥ 0; got {eps!r}")
    return float(eps)


def normalize(
    x: Tensor, axes: tuple[int, ...], eps: float
) -> tuple[Tensor, np.ndarray, np.ndarray]:
    """x̂ = (x − μ)/√(σ² + ε), μ and σ² the mean and (biased) variance over ``axes``,
    taken in float64; with μ and σ² themselves (for running statistics)."""
    X = x.data
    X64 = X.astype(np.float64, copy=False)
    mu0 = X64.mean(axis=axes, keepdims=True)
    centred = X64 - mu0
    # a second pass takes out what is left of the mean: Σx/n of a row of one value,
    # 1e30, is an ulp off, which x̂ blew up to ±1 (PyTorch's: 0)
    residue = centred.mean(axis=axes, keepdims=True)
    mu = mu0 + residue
    centred -= residue
    var = np.mean(centred * centred, axis=axes, keepdims=True)
    rstd64 = 1.0 / np.sqrt(var + eps)
    out = (centred * rstd64).astype(X.dtype, copy=False)
    rstd = rstd64.astype(X.dtype, copy=False)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        # x̂ again from x, μ and 1/σ, as the forward computed it: torch's norms keep x, not
        # x̂, so x̂ (F.layer_norm's result without γ, β) may change in place before this
        xhat = (((X.astype(np.float64, copy=False) - mu0) - residue) * rstd64).astype(
            X.dtype, copy=False
        )
        # x̂ depends on every x it was normalised with, through μ and σ:
        # ∂L/∂x = (1/σ)·(g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)), the means over ``axes``
        g_mean = g.mean(axis=axes, keepdims=True)
        g_out_mean = (g * xhat).mean(axis=axes, keepdims=True)
        return (rstd * (g - g_mean - xhat * g_out_mean),)

    # (x is recorded as torch's layer and batch norms keep it, so that x changed in place
    # before the backward refuses it as theirs)
    result = Tensor.from_op(out, "x̂", (x,), backward)
    return result, mu, var


def _affine(out: Tensor, weight: Tensor | None, bias: Tensor | None, shape: tuple) -> Tensor:
    """γ ⊙ x̂ + β, γ and β reshaped to ``shape`` to broadcast (their gradients flow back
    through the reshape: Σ over what they were broadcast over)."""
    if weight is not None:
        out = mul(out, weight if weight.shape == shape else reshape(weight, shape))
    if bias is not None:
        out = add(out, bias if bias.shape == shape else reshape(bias, shape))
    return out


def _affine_operand(value: object, size: tuple[int, ...], what: str, x: Tensor) -> Tensor | None:
    if value is None:
        return None
    # an array as an operand of x: x's dtype, and copied where x's backward reads it (γ)
    t = value if isinstance(value, Tensor) else _operand(value, x.dtype, x.requires_grad)
    if t.shape != size:
        raise ShapeError(f"{what}: needs shape {size}; got {t.shape}")
    return t


def layer_norm(
    x: Tensor,
    normalized_shape: object,
    weight: object = None,
    bias: object = None,
    eps: float = 1e-5,
) -> Tensor:
    """Each sample normalised over its last dims (``normalized_shape``), as PyTorch's
    ``F.layer_norm``: y = γ ⊙ (x − μ)/√(σ² + ε) + β, μ and σ² (biased) per sample."""
    x = as_tensor(x)  # (an array too, as the other functional forms take)
    shape = check_normalized_shape(normalized_shape)
    eps = check_eps(eps, "layer_norm")
    k = len(shape)
    if x.ndim < k or tuple(x.shape[x.ndim - k :]) != shape:
        raise ShapeError(
            f"layer_norm: normalized_shape {list(shape)} needs inputs ending in those dims; "
            f"got shape {tuple(x.shape)}"
        )
    gamma = _affine_operand(weight, shape, "layer_norm weight", x)
    beta = _affine_operand(bias, shape, "layer_norm bias", x)
    out, _, _ = normalize(x, tuple(range(x.ndim - k, x.ndim)), eps)
    return _affine(out, gamma, beta, shape)


def rms_norm(
    x: Tensor,
    normalized_shape: object,
    weight: object = None,
    eps: float | None = None,
) -> Tensor:
    """Each sample scaled by its root mean square over its last dims, as PyTorch's
    ``F.rms_norm``: y = γ ⊙ x ⊙ r, r = 1/√(mean(x²) + ε); ε None is the dtype's machine
    epsilon (torch's ``finfo(x.dtype).eps``). mean(x²) is taken in float64, as normalize
    takes σ². Backward, x̂ = x ⊙ r and ĝ = γ ⊙ g (the mean over the normalised dims):
    ∂L/∂x = r ⊙ (ĝ − x̂ ⊙ mean(ĝ ⊙ x̂)), since ∂r/∂xⱼ = −r³·xⱼ/n; ∂L/∂γ = Σ g ⊙ x̂."""
    x = as_tensor(x)  # (an array too, as the other functional forms take)
    shape = check_normalized_shape(normalized_shape)
    if x.dtype.kind != "f":
        raise DataError(f"rms_norm: needs a float input; got {x.dtype}")
    eps = float(np.finfo(x.dtype).eps) if eps is None else check_eps(eps, "rms_norm")
    k = len(shape)
    if x.ndim < k or tuple(x.shape[x.ndim - k :]) != shape:
        raise ShapeError(
            f"rms_norm: normalized_shape {list(shape)} needs inputs ending in those dims; "
            f"got shape {tuple(x.shape)}"
        )
    gamma = _affine_operand(weight, shape, "rms_norm weight", x)
    axes = tuple(range(x.ndim - k, x.ndim))
    X = x.data
    X64 = X.astype(np.float64, copy=False)
    with np.errstate(over="ignore", divide="ignore"):  # (1/√0 with eps=0: inf, as torch's)
        r64 = 1.0 / np.sqrt(np.mean(X64 * X64, axis=axes, keepdims=True) + eps)
    out = (X64 * r64).astype(X.dtype, copy=False)
    r = r64.astype(X.dtype, copy=False)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        # x̂ again from x and r, as the forward computed it (torch's keeps x, not x̂)
        xhat = (X.astype(np.float64, copy=False) * r64).astype(X.dtype, copy=False)
        return (r * (g - xhat * (g * xhat).mean(axis=axes, keepdims=True)),)

    result = Tensor.from_op(out, "x̂ (rms)", (x,), backward)
    return _affine(result, gamma, None, shape)


def batch_norm(
    x: Tensor,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: object = None,
    bias: object = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Each channel normalised over the batch (and length), as PyTorch's ``F.batch_norm``.

    ``training``: by the batch's own μ and σ², and the running statistics (when given)
    move towards them in place: r ← (1 − momentum)·r + momentum·s, with the unbiased
    variance, as PyTorch's. Else by the running statistics, a fixed affine map."""
    x = as_tensor(x)  # (an array too, as the other functional forms take)
    if x.ndim not in (2, 3):
        raise ShapeError(f"batch_norm: needs input of shape (N, C) or (N, C, L); got {x.shape}")
    channels = x.shape[1]
    eps = check_eps(eps, "batch_norm")
    stats = []
    for what, value in (("running_mean", running_mean), ("running_var", running_var)):
        array = value.data if isinstance(value, Tensor) else value
        if isinstance(array, np.ndarray) and array.dtype.kind != "f":  # (updated in place)
            raise DataError(f"batch_norm: {what} must be a float array; got {array.dtype}")
        if array is not None and (not isinstance(array, np.ndarray) or array.shape != (channels,)):
            got = array.shape if isinstance(array, np.ndarray) else type(array).__name__
            raise ShapeError(
                f"batch_norm: {what} needs shape ({channels},) for {channels} channels; got {got}"
            )
        stats.append(array)
    running_mean, running_var = stats
    if (running_mean is None) != (running_var is None):
        raise ConfigError("batch_norm: give both running_mean and running_var, or neither")
    shape = (channels,) if x.ndim == 2 else (channels, 1)
    gamma = _affine_operand(weight, (channels,), "batch_norm weight", x)
    beta = _affine_operand(bias, (channels,), "batch_norm bias", x)
    axes = (0,) if x.ndim == 2 else (0, 2)
    if training:
        if eps <= 0:  # as PyTorch's: a channel of one value throughout would be 0/0
            raise ConfigError(
                "batch_norm: eps must be > 0 to normalise by the batch (training mode, or no "
                f"running statistics), as PyTorch's; got {eps}"
            )
        count = x.shape[0] * (1 if x.ndim == 2 else x.shape[2])
        if count == 0:  # no rows: an empty result, the running statistics left (PyTorch's)
            return _affine(mul(x, 1.0), gamma, beta, shape)
        if count == 1:
            raise ShapeError(
                "batch_norm: needs more than 1 value per channel to normalise by the batch "
                f"(training mode, or no running statistics); got input of shape "
                f"{tuple(x.shape)}: give batches of 2 rows or more"
            )
        out, mu, var = normalize(x, axes, eps)
        if running_mean is not None:
            if not _is_number(momentum):
                raise ConfigError(f"batch_norm: momentum must be a number; got {momentum!r}")
            unbiased = var.reshape(channels) * (count / (count - 1))
            with np.errstate(over="ignore"):
                np.copyto(
                    running_mean,
                    (1 - momentum) * running_mean + momentum * mu.reshape(channels),
                    casting="same_kind",
                )
                np.copyto(
                    running_var,
                    (1 - momentum) * running_var + momentum * unbiased,
                    casting="same_kind",
                )
    else:
        if running_mean is None:
            raise ConfigError("batch_norm: needs running_mean and running_var when not training")
        rstd = (1.0 / np.sqrt(running_var + eps)).astype(x.dtype, copy=False)
        mu = running_mean.astype(x.dtype, copy=False)
        out = mul(sub(x, mu.reshape(shape)), rstd.reshape(shape))
    return _affine(out, gamma, beta, shape)


def _dims(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape) if shape else "scalar"


# ---------------------------------------------------------------------------------
# Operators on Tensor, defined here so that tensor.py needs nothing above it
# ---------------------------------------------------------------------------------
def _iterate(self: Tensor) -> Iterator[Tensor]:
    if self.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return (index(self, i) for i in range(len(self)))


Tensor.__matmul__ = lambda self, other: matmul(self, other)
Tensor.__rmatmul__ = lambda self, other: matmul(other, self)
Tensor.__add__ = Tensor.__radd__ = lambda self, other: add(self, other)
Tensor.__sub__ = lambda self, other: sub(self, other)
Tensor.__rsub__ = lambda self, other: sub(other, self)
Tensor.__mul__ = Tensor.__rmul__ = lambda self, other: mul(self, other)
Tensor.__truediv__ = lambda self, other: div(self, other)
Tensor.__rtruediv__ = lambda self, other: div(other, self)
Tensor.__pow__ = lambda self, other: power(self, other)
Tensor.__rpow__ = lambda self, other: power(other, self)
Tensor.__neg__ = negative
Tensor.__abs__ = lambda self: absolute(self)


def _in_place(ufunc: np.ufunc, symbol: str, op: Callable[[Tensor, object], Tensor]):
    """``t += x`` and its kin change t itself, as PyTorch's do: a parameter updated by
    hand (``p -= lr * p.grad`` under no_grad) must change in the model, where Python's
    fallback (``t = t - x``) would bind a new tensor to the name and leave it as it was.
    On a computed tensor while the graph is recorded, recorded as ``op`` (torch's)."""

    def apply(self: Tensor, other: object) -> Tensor:
        instead = f"write t = t {symbol[:-1]} x for a new tensor"
        if _recorded_in_place(self, other, f"in-place {symbol}", instead):
            return _record_change(self, lambda before: op(before, other), f"in-place {symbol}")
        value = _writable(self, other, f"in-place {symbol}", instead)
        try:  # the result's shape must be the tensor's: it cannot grow by broadcasting
            ufunc(self.data, value, out=self.data, casting="same_kind")
        except ValueError as exc:
            shape = self.shape
            raise ShapeError(f"in-place {symbol} on a tensor of shape {shape}: {exc}") from None
        self._version += 1  # shared with its views: graphs that read the old values refuse
        return self

    return apply


def _recorded_in_place(t: Tensor, other: object, action: str, instead: str) -> bool:
    """Whether changing ``t`` in place is to be recorded, as torch records it: while the
    graph is recorded, on a computed tensor or a view of one (or with an operand that
    requires grad). Refused as torch refuses: a leaf that requires grad, or a view of
    one; a view taken under no_grad; one of split's views. Refused too: a Parameter, and
    a tensor viewing another's array without being a view op's (a Function's output)."""
    if not is_grad_enabled():  # (an optimiser's p -= lr * g: nothing more to look at)
        return False
    retake_views((t,), action)  # a view from before a recorded change: its record now
    if isinstance(other, Tensor):
        retake_views((other,), action, joins=True)
    other_grad = isinstance(other, Tensor) and other.requires_grad
    found = view_base(t)
    if not (t.requires_grad or other_grad or (found is not None and found[0].requires_grad)):
        return False
    if isinstance(t.data, np.generic):  # (a NumPy scalar stored by ``t.data = …``)
        t.data = np.array(t.data)
    what = None
    why = "PyTorch refuses it too"
    if found is not None:
        base, quiet, several = found
        if base.requires_grad and base._backward is None:
            what = "a view of a leaf that requires grad (a parameter, an input requiring grad),"
        elif several:
            what = "one of the views split, chunk or unbind gave"
        elif quiet:
            what = "a view taken under no_grad"
            why = "PyTorch refuses it too (which values it stands for is ambiguous)"
        elif any(is_view_of(base, p) for p in base.inputs):  # (it would write the input)
            what = "a view of a tensor viewing its input's array (an autograd.Function's output)"
        elif type(base) not in PLAIN_TENSORS:
            what, why = (
                f"a view of a {type(base).__name__}",
                "wxb records no in-place operation on it",
            )
        elif not t.data.flags.writeable:  # (an expand's view: one place for several elements)
            raise DataError(f"{action}: the tensor's array is read-only")
    elif t.requires_grad and t._backward is None:
        what = "a tensor that requires grad, a leaf (a parameter, an input requiring grad),"
    elif any(is_view_of(t, p) for p in t.inputs):
        what = "a tensor viewing its input's array (an autograd.Function's output)"
        why = "wxb records an in-place operation only on a tensor or a view op's view of one"
    elif type(t) not in PLAIN_TENSORS:
        what, why = f"a {type(t).__name__}", "wxb records no in-place operation on it"
    elif not t.data.flags.writeable:
        raise DataError(f"{action}: the tensor's array is read-only")
    if what is None:
        return True
    raise TrainingError(
        f"{action} on {what} while the graph is recorded: {why}. Update parameters inside "
        f"`with wxb.no_grad():`, or {instead}"
    )


def _record_change(t: Tensor, compute: Callable[[Tensor], Tensor], action: str) -> Tensor:
    """``t`` set in place to ``compute(t)``'s values, recorded: compute runs on a copy
    of t's values that holds t's record so far, and t takes the result's record."""
    found = view_base(t)
    if found is not None:
        return _record_view_change(t, found[0], compute, action)
    before = Tensor.of_array(t.data.copy())  # (the operation may read the values before)
    before.requires_grad = t.requires_grad
    result = compute(before)
    if result.shape != t.shape:  # it cannot grow t by broadcasting
        raise ShapeError(f"{action} on a tensor of shape {t.shape}: the result's is {result.shape}")
    record_in_place(t, before, astype(result, t.dtype))
    return t


def _record_view_change(
    t: Tensor, base: Tensor, compute: Callable[[Tensor], Tensor], action: str
) -> Tensor:
    """``t``, a view of ``base``, set in place to ``compute(t)``'s values, as torch
    records it (CopySlices): base's record takes the result at the view's places, and
    t's record is taken again, as a view of base after the change."""
    places = view_positions(t.data, base.data)
    if places is None or np.unique(places).size < places.size:
        raise TrainingError(
            f"{action} on a view whose elements are not each one place of its tensor's array "
            "while the graph is recorded: change a copy, t = t.clone()"
        )
    held = hold_record(t)  # t's values before and its record so far
    result = compute(held)
    if result.shape != t.shape:  # it cannot grow t by broadcasting
        raise ShapeError(f"{action} on a tensor of shape {t.shape}: the result's is {result.shape}")
    result = astype(result, t.dtype)
    old = Tensor.of_array(base.data.copy())
    old.requires_grad = base.requires_grad
    record_in_place(base, old, _copy_slices(old, places, result))
    take_record(t, view_record(base, places, t.data), held)
    if result._output_version is not None:  # its backward reads its result, now the view's
        result._versions, result._output_version = t._versions, t._versions[0]
    return t


def _copy_slices(base: Tensor, places: np.ndarray, values: Tensor) -> Tensor:
    """``base`` with its elements at ``places`` (flat, C order) set to ``values``: the
    record an in-place change of a view leaves on its tensor (torch's CopySlices)."""
    out = base.data.copy()
    np.put(out, places, values.data)

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kept = g.copy()  # ∂L/∂base: G, 0 where the view's values replaced base's
        np.put(kept, places, 0)
        return kept, np.asarray(np.take(g, places))  # ∂L/∂values: G at those places

    return Tensor.from_op(out, "copy_slices", (base, values), backward, reads_inputs=False)


def _writable(t: Tensor, other: object, action: str, instead: str) -> object:
    """``other``'s array, once ``t`` may be changed in place without a record (the
    caller asked ``_recorded_in_place`` first): not when it is read-only."""
    if isinstance(t.data, np.generic):  # ``p.data = p.data * 2`` on a 0-d tensor stores
        t.data = np.array(t.data)  # NumPy's scalar, which nothing views: an array in its place
    if not t.data.flags.writeable:
        raise DataError(f"{action}: the tensor's array is read-only")
    if isinstance(other, Tensor):
        return other.data
    if t.dtype.kind == "f":  # as for t + x: no text, complex, or 1e39 turned to inf in float32
        return float_array(other, t.dtype, f"{action} on a {t.dtype} tensor")
    return other


def _put(a: Tensor, key: object, value: object) -> Tensor:
    """A copy of ``a`` with ``[key] = value`` (torch's index_put, recorded as torch
    records ``t[key] = v``): ∂L/∂a is G with the written places 0; ∂L/∂value is G at
    those places, summed over what value was broadcast over."""
    first, key = _torch_order(_whole_key(key, a.data), a.ndim)  # integers first, as torch's
    first, key = _copied(first), _copied(key)  # the backward's own, as index's
    v = as_tensor(value, a)
    v = astype(v, a.dtype) if v.dtype != a.dtype else v
    out = a.data.copy()
    try:
        (out if first is None else out[first])[key] = v.data
    except ValueError as exc:
        raise ShapeError(f"t[...] = x on a tensor of shape {a.shape}: {exc}") from None

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kept = g.copy()
        (kept if first is None else kept[first])[key] = 0
        written = np.asarray((g if first is None else g[first])[key])
        return kept, _unbroadcast(written, v.shape).astype(v.dtype, copy=False)

    return keep_values(Tensor.from_op(out, "index_put", (a, v), backward, reads_inputs=False))


def _set_item(self: Tensor, key: object, value: object) -> None:
    """``t[key] = x``, and the last part of ``t[key] += x``: in place, as PyTorch's."""
    instead = "set the values of a copy"
    if _recorded_in_place(self, value, "t[...] = x", instead):
        _record_change(self, lambda before: _put(before, key, value), "t[...] = x")
        return
    value = _writable(self, value, "t[...] = x", instead)
    first, key = _torch_order(_whole_key(key, self.data), self.ndim)  # integers first, as torch's
    try:
        (self.data if first is None else self.data[first])[key] = value
    except ValueError as exc:
        raise ShapeError(f"t[...] = x on a tensor of shape {self.shape}: {exc}") from None
    self._version += 1


Tensor.__iadd__ = _in_place(np.add, "+=", add)
Tensor.__isub__ = _in_place(np.subtract, "-=", sub)
Tensor.__imul__ = _in_place(np.multiply, "*=", mul)
Tensor.__itruediv__ = _in_place(np.true_divide, "/=", div)
Tensor.__ipow__ = _in_place(np.power, "**=", power)
Tensor.__getitem__ = index
Tensor.__setitem__ = _set_item
Tensor.__iter__ = _iterate
Tensor.T = property(transpose)
Tensor.reshape = reshape
Tensor.exp, Tensor.log, Tensor.sqrt, Tensor.abs = exp, log, sqrt, absolute


def _reduction(reduce: Callable[[Tensor, object, bool], Tensor], name: str) -> Callable:
    """t.sum(), t.mean(): NumPy's axis=/keepdims= or PyTorch's dim=/keepdim=; also what
    np.sum(t), np.mean(t) call (with dtype=, out=)."""

    def method(self, *given, axis=None, keepdims=False, dim=None, keepdim=None, dtype=None,
               out=None, **unused):  # fmt: skip
        if out is not None or unused or len(given) > 2:
            raise TypeError(f"Tensor.{name}: out= and other NumPy options are not taken")
        # the places are torch's, t.sum(dim, keepdim): NumPy's np.sum(t, …) names axis=
        if given and (dim is not None or axis is not None):
            raise TypeError(f"Tensor.{name}: give the axis once (axis= or dim=)")
        if len(given) == 2 and keepdim is not None:
            raise TypeError(f"Tensor.{name}: give keepdim once")
        if given:
            dim, keepdim = given[0], given[1] if len(given) == 2 else keepdim
        elif dim is not None and axis is not None:
            raise TypeError(f"Tensor.{name}: give the axis once (axis= or dim=)")
        if isinstance(dim, (tuple, list)) and not dim:  # torch's dim=() reduces every
            dim = None  # dimension (NumPy's axis=() none): not the tensor unreduced
        # checked as torch checks dims, where NumPy's AxisError, "duplicate value" or an
        # IndexError came from deep inside; NumPy's axis=() (no axis reduced) kept
        axis = dim if dim is not None else axis
        dims = axis if isinstance(axis, (tuple, list)) else () if axis is None else (axis,)
        if dims and self.ndim == 0:  # torch's dim 0 or -1 of a 0-d tensor
            for d in dims:
                _axis(d, 0, name)  # in range: 0 or -1
            axis = None  # its one value
        elif dims:  # refused by name, not NumPy's AxisError
            _axes(dims, self.ndim, f"Tensor.{name}")
        keep = _flag(keepdims if keepdim is None else keepdim, f"Tensor.{name}")
        if dtype is not None:  # torch's: the input cast first (its gradient back in its own)
            self = astype(self, _reduced_dtype(dtype, name))
        return reduce(self, axis, keep)

    return method


def _reduced_dtype(dtype: object, name: str) -> np.dtype:
    try:
        return resolve_dtype(dtype)
    except ConfigError:  # (an integer sum of floats: torch truncates each value first)
        raise ConfigError(
            f"Tensor.{name}: dtype= takes {' or '.join(DTYPES)}; got {dtype!r}"
        ) from None


Tensor.sum = _reduction(sum, "sum")
Tensor.mean = _reduction(mean, "mean")


# -- PyTorch's tensor methods: torch's names and arguments for a forward of one's own ----
_axis, _axes, _flag = dim_axis, dim_axes, keep_flag  # (tensor.py's: IndexArray's too)


def swap_axes(a: Tensor, dim0: int, dim1: int) -> Tensor:
    """Two axes exchanged (``t.transpose(0, 1)``): ∂L/∂A is G with them exchanged back."""
    axis0, axis1 = _axis(dim0, a.ndim, "transpose"), _axis(dim1, a.ndim, "transpose")
    if a.ndim == 0:  # dims 0 and -1 name a 0-d tensor's one place, as PyTorch's: itself
        return reshape(a, ())

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (np.swapaxes(g, axis0, axis1),)

    backward.axes = (axis0, axis1)  # type: ignore[attr-defined]  # (ONNX export; .T: all)
    data = np.swapaxes(a.data, axis0, axis1)
    return _view_of(a, Tensor.from_op(data, "transpose", (a,), backward, reads_inputs=False))


def clamp(a: Tensor, min: object = None, max: object = None) -> Tensor:
    """Values held within [min, max] (``torch.clamp``, ``np.clip``). ∂L/∂A passes where
    min ≤ A ≤ max, both ends included, and is 0 elsewhere (PyTorch's rule)."""
    if min is None and max is None:
        raise ConfigError("clamp: give min, max or both")
    if isinstance(min, (Tensor, np.ndarray)) or isinstance(max, (Tensor, np.ndarray)):
        return _clamp_between_tensors(a, min, max)
    for bound in (min, max):
        if bound is not None and not _is_number(bound):
            raise ConfigError(f"clamp: min and max must be numbers or tensors; got {bound!r}")
    A = a.data
    low = None if min is None else A.dtype.type(min) if A.dtype.kind == "f" else min
    high = None if max is None else A.dtype.type(max) if A.dtype.kind == "f" else max
    out = np.clip(A, low, high)
    if low is not None and high is not None and low > high:
        # every value is max, as PyTorch's (NumPy's says so too); a NaN stays NaN, as
        # torch's and np.clip's own (full_like made it max: a missing value turned real)
        out = np.where(np.isnan(A), A, high) if A.dtype.kind == "f" else np.full_like(A, high)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        inside = np.ones(A.shape, dtype=bool)
        if low is not None:
            inside &= A >= low
        if high is not None:
            inside &= A <= high
        return (np.where(inside, g, 0).astype(g.dtype, copy=False),)

    backward.bounds = (low, high)  # type: ignore[attr-defined]  # (ONNX export: Clip)
    return Tensor.from_op(np.asarray(out), "clamp", (a,), backward)


def _clamp_between_tensors(a: Tensor, min: object, max: object) -> Tensor:
    """``t.clamp(min=lo, max=hi)`` with tensor bounds, as torch's: min(max(A, lo), hi),
    broadcast (hi wherever lo > hi; NaN from any side). ∂L/∂A passes where lo ≤ A ≤ hi;
    ∂L/∂lo where A < lo < hi; ∂L/∂hi where A > hi or lo > hi (torch's rules)."""
    bounds = []
    for bound in (min, max):
        if bound is not None:
            if not isinstance(bound, Tensor) and not _is_number(bound):
                bound = np.asarray(bound)
            bounds.append(bound)
    inputs = in_result_type((a, *bounds))  # all three by one rule, as torch's result_type
    a = inputs[0]
    lo = inputs[1] if min is not None else None
    hi = inputs[-1] if max is not None else None
    A = a.data
    out = A if lo is None else _broadcasting(np.maximum, a, lo)
    out = out if hi is None else np.minimum(out, hi.data)
    out = np.broadcast_to(out, np.broadcast_shapes(A.shape, *(t.shape for t in inputs)))

    def backward(g: np.ndarray) -> tuple[np.ndarray, ...]:
        inside = np.ones(g.shape, dtype=bool)
        grads = []
        if lo is not None:
            inside &= A >= lo.data
            below = A < lo.data
            if hi is not None:  # (not &=: hi may broadcast below to a larger shape)
                below = below & (lo.data < hi.data)
            grads.append(_unbroadcast(np.where(below, g, 0), lo.shape))
        if hi is not None:
            inside &= A <= hi.data
            above = A > hi.data
            if lo is not None:
                above = above | (hi.data < lo.data)
            grads.append(_unbroadcast(np.where(above, g, 0), hi.shape))
        grad_a = _unbroadcast(np.where(inside, g, 0), A.shape)
        return tuple(_in_dtype(x, t.dtype) for x, t in zip([grad_a, *grads], inputs, strict=True))

    return Tensor.from_op(np.array(out), "clamp", tuple(inputs), backward)


def extreme(a: Tensor, dim: object = None, keepdim: bool = False, largest: bool = True):
    """``t.max()`` / ``t.min()``: over everything, a 0-d tensor whose gradient the
    elements tying for it share evenly (PyTorch's rule); along ``dim``, (values, indices),
    each value's gradient going to the element its index names."""
    name = "max" if largest else "min"
    A = a.data
    _check_not_empty(A, dim, name)
    if dim is None:
        best = A.max() if largest else A.min()

        def backward_all(g: np.ndarray) -> tuple[np.ndarray]:
            # a NaN max (min) is the NaNs': they share its gradient, as PyTorch's (NaN ≠ NaN)
            hit = np.isnan(A) if np.isnan(best) else A == best
            with np.errstate(divide="ignore", invalid="ignore"):
                return (np.where(hit, g / hit.sum(), 0).astype(A.dtype, copy=False),)

        backward_all.reduced = (None, False)  # type: ignore[attr-defined]
        # (torch keeps the result too: changed in place, the backward refuses, as its)
        found = Tensor.from_op(np.asarray(best), name, (a,), backward_all, saves_output=True)
        # keepdim: every dimension kept, as size 1 (NumPy's np.max(x, keepdims=True),
        # torch's amax(x, (), keepdim=True)), not the 0-d value
        return reshape(found, (1,) * A.ndim) if keepdim else found
    axis = _axis(dim, A.ndim, name)
    if A.ndim == 0:  # dim 0 or -1 of a 0-d tensor, as PyTorch's: itself, at index 0
        found = extreme(reshape(a, (1,)), 0, False, largest)
        return ValuesIndices(found.values, marks(found.indices.reshape(())))
    chosen = A.argmax(axis=axis, keepdims=True) if largest else A.argmin(axis=axis, keepdims=True)
    values = np.take_along_axis(A, chosen, axis)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        grad = np.zeros(A.shape, dtype=g.dtype)
        np.put_along_axis(grad, chosen, g if keepdim else np.expand_dims(g, axis), axis)
        return (grad,)

    if not keepdim:
        values, indices = np.squeeze(values, axis), np.squeeze(chosen, axis)
    else:
        indices = chosen
    backward.reduced = ((axis,), keepdim)  # type: ignore[attr-defined]  # (ONNX)
    # its backward reads the indices alone (torch's too): A may change in place after
    found = keep_values(Tensor.from_op(values, name, (a,), backward, reads_inputs=False))
    return ValuesIndices(found, marks(indices.astype(np.int64)))


def pairwise_extreme(a: object, b: object, largest: bool) -> Tensor:
    """``t.max(other)`` / ``torch.maximum``: the larger (smaller) of each pair, broadcast,
    NaN from either side. ∂L/∂A is G where A wins, G/2 at a tie, and G where either is
    NaN (torch's rule: a NaN is neither above nor below); ∂L/∂B likewise."""
    a, b = _operands(a, b)
    A, B = a.data, b.data
    out = _broadcasting(np.maximum if largest else np.minimum, a, b)

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a_loses, b_loses = (A < B, A > B) if largest else (A > B, A < B)
        shared = np.where(A == B, g / 2, g)
        ga = np.where(a_loses, 0, shared).astype(g.dtype, copy=False)
        gb = np.where(b_loses, 0, shared).astype(g.dtype, copy=False)
        return _unbroadcast(ga, A.shape), _unbroadcast(gb, B.shape)

    return Tensor.from_op(out, "maximum" if largest else "minimum", (a, b), backward)


def _check_not_empty(A: np.ndarray, dim: object, name: str) -> None:
    """An extreme of no values is refused, as torch's; along a dim that holds values, an
    empty tensor's (shape (0, k) along dim 1) is empty, as torch's (it was refused)."""
    if A.size == 0 and (dim is None or A.shape[_axis(dim, A.ndim, name)] == 0):
        raise ShapeError(f"{name}: the tensor holds no values (shape {A.shape}) along the dim")


def _extreme_method(largest: bool) -> Callable:
    """t.max(dim, keepdim) as PyTorch's; t.max(axis=…, keepdims=…) (and np.max(t)) as
    NumPy's, the values alone."""

    def method(self, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None, **unused):
        if out is not None or unused:
            raise TypeError("Tensor.max/min: out= and other NumPy options are not taken")
        if isinstance(dim, (Tensor, np.ndarray)):  # torch's t.max(other): element-wise
            if keepdim or axis is not None or keepdims is not None:
                raise TypeError("Tensor.max/min(other): takes no dim or keepdim beside it")
            return pairwise_extreme(self, dim, largest)
        if axis is not None or keepdims is not None:
            if dim is not None and axis is not None:
                raise TypeError("Tensor.max/min: give the axis once (axis= or dim=)")
            # NumPy's spelling: its first argument is the axis (t.max(0, keepdims=True))
            axis = dim if axis is None else axis
            found = extreme(self, axis, bool(keepdims), largest)
            return found if axis is None else found.values
        return extreme(self, dim, _flag(keepdim, "Tensor.max/min"), largest)

    return method


def _arg_method(largest: bool) -> Callable:
    def method(self, dim=None, keepdim=False, *, axis=None, out=None):
        """The index of the largest (smallest) value, as an int64 array (no gradient)."""
        dim = axis if dim is None else dim
        A = self.data
        _check_not_empty(A, dim, "argmax/argmin")
        axis = None if dim is None else _axis(dim, A.ndim, "argmax")
        find = A.argmax if largest else A.argmin
        found = find(axis=axis, keepdims=_flag(keepdim, "Tensor.argmax/argmin"))
        return marks(np.asarray(found, dtype=np.int64))

    return method


def variance(a: Tensor, dim: object = None, keepdim: bool = False, correction: float = 1):
    """Σ (A − mean)² / (n − correction) over ``dim`` (PyTorch's default correction 1, the
    unbiased estimate; NumPy's ``var`` has 0): from sum, mean and products, whose rules
    give its gradient, 2(A − mean)/(n − correction)."""
    axes = dim if dim is None or isinstance(dim, (tuple, list)) else (dim,)
    axes = None if axes is None else _axes(axes, a.ndim, "var")
    axes = None if a.ndim == 0 else axes  # a 0-d tensor's dim 0 or -1: its one value
    count = a.data.size if axes is None else math.prod(a.shape[i] for i in axes)
    free = max(count - correction, 0)  # PyTorch's max(0, n − correction): never negative
    scale = 1.0 / free if free else math.inf
    A = a.data
    with np.errstate(invalid="ignore", divide="ignore"):  # no values: NaN, as PyTorch's
        centred = A - np.asarray(mean(Tensor(A), axes, True).data)
        squares = sum_along(centred * centred, axes, keepdim)
        value = np.asarray(squares * np.asarray(scale, A.dtype))

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        # ∂var/∂A = 2(A − mean)/(n − correction): the mean's own share adds up to 0, and
        # taken through the graph it made inf − inf = NaN where n = correction (torch: ±inf)
        if axes is None and free == 0:  # torch's rule for no degrees of freedom left over
            # everything: NaN where A is its mean (∞·0), else ∞ (not −2·0 = −0, nor ±∞)
            with np.errstate(invalid="ignore"):
                return (g * np.where(centred == 0, np.nan, np.inf).astype(A.dtype),)
        if axes is not None and not keepdim:
            g = np.expand_dims(g, axes)
        # along dims, torch's 2/(n − correction) as it is: negative past n (a −0 slope
        # where every A is its mean), where max(n − correction, 0) made it ∞·0 = NaN
        slope = 2 / (count - correction) if count != correction else math.inf
        with np.errstate(invalid="ignore"):
            return ((g * np.asarray(slope, A.dtype)) * centred,)

    # (its backward reads its own A − mean; A is recorded as torch's keeps it, so that A
    # changed in place before the backward refuses it as torch's does)
    return Tensor.from_op(value, "var", (a,), backward)


def _root_of_variance(value: Tensor) -> Tensor:
    """√var for std: ∂std/∂var is 1/(2·std), and 0 where std is 0 (PyTorch's rule: a row
    of equal values has no direction to spread in, where 1/(2·0) · 0 would give NaN)."""
    S = np.sqrt(value.data)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (np.where(S == 0, 0, g / (2 * S)).astype(g.dtype, copy=False),)

    return Tensor.from_op(S, "std", (value,), backward, saves_output=True)


def _variance_method(root: bool) -> Callable:
    """t.var(dim, correction=, unbiased=, keepdim=) as PyTorch's (correction 1); NumPy's
    axis=/ddof=/keepdims= (what np.var(t), np.std(t) call) keep NumPy's ddof 0."""

    def method(self, dim=None, *args, correction=None, unbiased=None, keepdim=False,
               axis=None, ddof=None, keepdims=None, dtype=None, out=None):  # fmt: skip
        name = "std" if root else "var"
        if dtype is not None or out is not None:
            raise TypeError(f"Tensor.{name}: dtype= and out= are not taken")
        if axis is not None or ddof is not None or keepdims is not None:
            if dim is not None or args or correction is not None or unbiased is not None:
                raise TypeError(f"Tensor.{name}: give NumPy's axis=/ddof= or torch's dim=")
            dim, keepdim, correction = axis, bool(keepdims), 0 if ddof is None else ddof
        elif isinstance(dim, (tuple, list)) and not dim:  # torch's dim=(): every dimension
            dim = None
        elif isinstance(dim, (bool, np.bool_)) and not args and unbiased is None:
            dim, unbiased = None, dim  # torch's var(unbiased): over every dimension
        if args:  # torch's older var(dim, unbiased, keepdim)
            if len(args) > 2 or unbiased is not None:
                raise TypeError(f"Tensor.{name}: takes (dim, unbiased, keepdim) at most")
            unbiased, *rest = args
            keepdim = rest[0] if rest else keepdim
        if unbiased is not None and not isinstance(unbiased, (bool, np.bool_)):
            # var(1, 2) is refused by torch; taken as truthy, it was correction 1, not 2
            raise ConfigError(
                f"Tensor.{name}: unbiased must be True or False; got {unbiased!r} (give "
                f"correction={unbiased!r} for n − {unbiased!r} in the divisor)"
            )
        if unbiased is not None and correction is not None:  # torch refuses both
            raise ConfigError(f"Tensor.{name}: give unbiased= or correction=, not both")
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        value = variance(self, dim, _flag(keepdim, f"Tensor.{name}"), correction)
        return _root_of_variance(value) if root else value

    return method


def softmax_along(a: Tensor, dim: object) -> Tensor:
    """Softmax over ``dim`` (``t.softmax(dim)``): the kernel runs over the last axis."""
    axis = _axis(dim, a.ndim, "softmax")
    if axis == max(a.ndim, 1) - 1:
        return activation(a, Softmax())
    return swap_axes(activation(swap_axes(a, axis, -1), Softmax()), axis, -1)


def log_softmax_along(a: Tensor, dim: object) -> Tensor:
    """Log-softmax over ``dim`` (``t.log_softmax(dim)``): the kernel runs over the last
    axis, as softmax_along's."""
    axis = _axis(dim, a.ndim, "log_softmax")
    if axis == max(a.ndim, 1) - 1:
        return activation(a, LogSoftmax())
    return swap_axes(activation(swap_axes(a, axis, -1), LogSoftmax()), axis, -1)


def flattened_shape(shape: tuple[int, ...], start: object, end: object) -> tuple[int, ...]:
    """The shape ``flatten(start, end)`` gives (torch's: a 0-d tensor becomes (1,))."""
    if not shape:
        return (1,)
    first, last = _axis(start, len(shape), "flatten"), _axis(end, len(shape), "flatten")
    if first > last:
        raise ShapeError(f"flatten: start_dim {start} comes after end_dim {end}")
    return (*shape[:first], math.prod(shape[first : last + 1]), *shape[last + 1 :])


def unflattened_shape(shape: tuple[int, ...], dim: object, sizes: object) -> tuple[int, ...]:
    """The shape ``unflatten(dim, sizes)`` gives, as torch's: dim's size split into
    ``sizes``, one of which may be −1 (what the others leave)."""
    if not shape:
        raise ShapeError("unflatten: a 0-d tensor has no dim to unflatten")
    axis = _axis(dim, len(shape), "unflatten")
    sizes = check_unflattened_size(sizes, "unflatten")
    total, known = shape[axis], math.prod(n for n in sizes if n != -1)
    if -1 in sizes and known and total % known == 0:
        sizes = tuple(total // known if n == -1 else n for n in sizes)
    if math.prod(sizes) != total or -1 in sizes:
        raise ShapeError(
            f"unflatten: sizes {list(sizes)} do not multiply up to the size of dim {dim} "
            f"({total}) of an input of shape {tuple(shape)}"
        )
    return (*shape[:axis], *sizes, *shape[axis + 1 :])


def check_unflattened_size(value: object, what: str) -> tuple[int, ...]:
    """torch's ``unflattened_size``: a tuple or list of positive ints, one of which may be −1."""
    if not isinstance(value, (tuple, list)) or not value:
        raise ConfigError(f"{what}: unflattened_size must be a tuple of ints; got {value!r}")
    if any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) for n in value) or any(
        n < 1 and n != -1 for n in value
    ):
        raise ConfigError(
            f"{what}: unflattened_size must hold positive ints (one may be -1); got {value!r}"
        )
    sizes = tuple(int(n) for n in value)
    if sizes.count(-1) > 1:
        raise ConfigError(f"{what}: unflattened_size may hold one -1 only; got {value!r}")
    return sizes


def unflatten(a: Tensor, dim: object, sizes: object) -> Tensor:
    """``t.unflatten(dim, sizes)`` / nn.Unflatten: a reshape, so ∂L/∂A is G reshaped back."""
    a = as_tensor(a)
    return reshape(a, unflattened_shape(a.shape, dim, sizes))


def _unsqueezed(shape: tuple[int, ...], dim: object) -> tuple[int, ...]:
    axis = _axis(dim, len(shape), "unsqueeze", extra=1) if shape else _axis(dim, 0, "unsqueeze")
    return (*shape[:axis], 1, *shape[axis:])


def _squeezed(shape: tuple[int, ...], dim: object) -> tuple[int, ...]:
    if dim is None:
        return tuple(n for n in shape if n != 1)
    # one dim or several (torch's squeeze((0, 2))); one of size ≠ 1 is kept, as torch's
    dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    axes = {_axis(d, len(shape), "squeeze") for d in dims}
    if len(axes) != len(dims):
        raise ShapeError(f"squeeze: a dim appears twice in {dim!r}")
    return tuple(n for i, n in enumerate(shape) if n != 1 or i not in axes)


def _matrix_transpose(self: Tensor) -> Tensor:
    if self.ndim > 2:
        raise ShapeError(f"t(): a tensor of at most 2 dimensions; got {self.ndim} (use transpose)")
    return transpose(self)


def view(a: Tensor, *shape: int | tuple[int, ...]) -> Tensor:
    """``t.view(shape)``: reshape's values, but only as a view of ``a``'s array, as torch's
    view refuses a tensor whose strides do not allow one (a transpose's): a silent copy
    would keep later in-place writes through either from reaching the other."""
    if not shape:  # torch's view() refuses it; reshape() would give a 0-d tensor
        raise ConfigError("view: give the shape (view(-1), view(2, 3) or view((2, 3)))")
    if len(shape) == 1 and is_dtype(shape[0]):
        return _bits_as(a, shape[0])
    out = reshape(a, *shape)
    if out.data.size and not np.may_share_memory(out.data, a.data):
        raise ShapeError(
            f"view: {_dims(a.shape)} in this memory order cannot be seen as "
            f"{_dims(out.shape)} without a copy (as torch's view refuses); use reshape(...)"
        )
    return out


def _bits_as(a: Tensor, dtype: object) -> Tensor | np.ndarray:
    """``t.view(torch.int32)``: the same bytes read as another dtype, as torch's (the last
    dim scaled by the sizes' ratio), without a gradient, as torch's (its shape was read
    as the dtype: "'torch.dtype' object cannot be interpreted as an integer")."""
    kind = to_dtype(dtype, "view")
    try:
        if a.ndim == 0 and kind.itemsize != a.dtype.itemsize:
            raise ValueError("a 0-d tensor's bytes make no value of another size")
        data = a.data.view(kind)
    except ValueError as error:
        raise ShapeError(f"view({dtype}): {error}") from None
    return Tensor(data) if kind.kind == "f" else marks(data)


def clone(a: Tensor) -> Tensor:
    """A copy of the values in the graph (``t.clone()``): ∂L/∂A is ∂L/∂out."""

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g,)

    return Tensor.from_op(a.data.copy(), "clone", (a,), backward, reads_inputs=False)


def _sizes(sizes: tuple, what: str) -> tuple[int, ...]:
    """``f(2, 3)`` or ``f((2, 3))``, as PyTorch's shape arguments (at least one, as torch's
    expand() and repeat() refuse none: wxb gave the tensor back)."""
    if not sizes:
        raise ConfigError(f"{what}: give the sizes ({what}(2, 3) or {what}((2, 3)))")
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in sizes):
        raise ConfigError(f"sizes must be integers; got {sizes!r}")
    return tuple(int(n) for n in sizes)


def expand(a: Tensor, *sizes: object) -> Tensor:
    """``t.expand(4, -1)``: a read-only broadcast view (−1 keeps a size); ∂L/∂A sums
    ∂L/∂out back over the axes that were broadcast, as a bias's gradient does."""
    sizes = _sizes(sizes, "expand")
    lead = len(sizes) - a.ndim
    if lead < 0:
        raise ShapeError(f"expand: {_dims(a.shape)} cannot take {len(sizes)} sizes")
    shape = tuple(a.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(sizes))
    try:
        data = np.broadcast_to(a.data, shape)
    except ValueError:
        raise ShapeError(f"expand: {_dims(a.shape)} cannot expand to {sizes}") from None
    original = a.shape

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (_unbroadcast(g, original),)

    return _view_of(a, Tensor.from_op(data, "expand", (a,), backward, reads_inputs=False))


def repeat(a: Tensor, *sizes: object) -> Tensor:
    """``t.repeat(2, 1)``: the values tiled (a copy); ∂L/∂A adds up ∂L/∂out's tiles."""
    sizes = _sizes(sizes, "repeat")
    if len(sizes) < a.ndim or any(n < 0 for n in sizes):
        raise ShapeError(
            f"repeat: give a count ≥ 0 for each of the {a.ndim} dimensions; got {sizes}"
        )
    base = (1,) * (len(sizes) - a.ndim) + a.shape
    data = np.tile(a.data.reshape(base), sizes)
    original = a.shape

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        tiles = [n for pair in zip(sizes, base, strict=True) for n in pair]
        total = sum_along(g.reshape(tiles), tuple(range(0, len(tiles), 2)))
        return (np.asarray(total).reshape(original),)

    return Tensor.from_op(data, "repeat", (a,), backward, reads_inputs=False)


def _size(self: Tensor, dim: object = None) -> tuple[int, ...] | int:
    """``t.size()`` as PyTorch's (a tuple, as torch.Size is one), or one dimension's."""
    return tuple(self.shape) if dim is None else self.shape[_axis(dim, self.ndim, "size")]


def _to(
    self: Tensor,
    *args: object,
    dtype: object = None,
    device: object = None,
    non_blocking: bool = False,
    copy: bool = False,
) -> Tensor:
    """``t.to(torch's arguments)``: another float dtype recorded as a cast (its gradient
    comes back in this tensor's dtype); the CPU, where wxb computes, moves nothing.
    ``non_blocking`` (ported ``x.to(device, non_blocking=True)``) has nothing to wait for;
    ``copy=True`` gives a copy even when nothing is cast, as torch's."""
    dtype = to_arguments(args, dtype, device, "Tensor.to")
    try:
        kind = None if dtype is None else to_dtype(dtype, "Tensor.to")
    except ConfigError:  # (resolve_dtype's refusal below names the dtypes wxb takes)
        kind = None
    if kind is not None and kind.kind in "biu":  # whole numbers, as long(), int(), bool()
        return marks(self.data != 0) if kind.kind == "b" else whole_numbers(self, kind)
    out = self if dtype is None else astype(self, resolve_dtype(dtype))
    return clone(out) if copy and out is self else out


def _cuda(self: Tensor, device: object = None, non_blocking: bool = False) -> Tensor:
    """``t.cuda()`` as ported code calls it: refused in one line, as ``t.to("cuda")`` is."""
    check_device(f"cuda:{device}" if isinstance(device, int) else device or "cuda", "Tensor.cuda")
    return self  # (a device that is the CPU)


def _matrix_product(self: Tensor, other: object) -> Tensor:
    """``t.mm(m)``: torch's product of two matrices only (matmul takes vectors and
    batches); a vector or a batch is refused, as torch's mm refuses it."""
    for side, operand in (("self", self), ("mat2", other)):
        shape = np.shape(operand.data if isinstance(operand, Tensor) else operand)
        if len(shape) != 2:
            raise ShapeError(
                f"mm: {side} must be a matrix; got shape {shape} (use matmul or @ for "
                "vectors and batches)"
            )
    return matmul(self, other)


def _filler(name: str) -> Callable:
    def fill(self: Tensor, value: object) -> Tensor:
        """Every value set in place (``zero_()``, ``fill_(v)``), as ``t[...] = v``."""
        shape = np.shape(value.data if isinstance(value, Tensor) else value)
        if shape:  # torch's fill_ takes one value; t[...] = row broadcast it over the rows
            raise ShapeError(
                f"{name}(): takes one number (or a 0-d tensor); got values of shape {shape} "
                "(use t[...] = values to write several)"
            )
        if _recorded_in_place(self, value, f"{name}()", "fill a copy"):
            return _record_change(self, lambda before: _put(before, ..., value), f"{name}()")
        self.data[...] = _writable(self, value, f"{name}()", "fill a copy")
        self._version += 1
        return self

    return fill


def _in_place_of(name: str, op: Callable, call: str) -> Callable:
    """``t.name_(…)``: t's own values set to ``op(t, …)``'s, as torch's in-place form."""

    def apply(self: Tensor, *args: object, **kwargs: object) -> Tensor:
        instead = f"write t = t.{call} for a new tensor"
        given = [a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)]
        other = next((a for a in given if a.requires_grad), given[0] if given else None)
        if _recorded_in_place(self, other, f"{name}_()", instead):
            change = lambda before: op(before, *args, **kwargs)  # noqa: E731
            return _record_change(self, change, f"{name}_()")
        _writable(self, other if other is not None else 0, f"{name}_()", instead)
        with no_grad():
            values = op(self, *args, **kwargs).data
        if values.shape != self.shape:  # tensor bounds cannot grow t by broadcasting
            raise ShapeError(f"{name}_: its result's shape {values.shape} is not t's {self.shape}")
        self.data[...] = values
        self._version += 1
        return self

    return apply


# WGAN's weight clipping (p.clamp_(-c, c) under no_grad)
_clamp_in_place = _in_place_of(
    "clamp", lambda t, min=None, max=None: clamp(t, min, max), "clamp(min, max)"
)


def _scaled(self: Tensor, other: object, alpha: object, name: str) -> object:
    """``alpha * other`` of torch's ``t.add(other, alpha=…)``: a tensor through the graph,
    any other operand first in t's dtype, as ``t + x`` reads it."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
        raise TypeError(f"Tensor.{name}: alpha must be a number; got {type(alpha).__name__}")
    if alpha == 1:
        return other
    if isinstance(other, Tensor):
        return mul(other, alpha)
    dtype = self.dtype if self.dtype.kind == "f" else None
    return (float_array(other, dtype, f"Tensor.{name}") if dtype else np.asarray(other)) * alpha


def _divide(self: Tensor, other: object, rounding_mode: object = None) -> Tensor:
    """``t.div(other, rounding_mode=None)``: A / B; with 'trunc' or 'floor' the quotient
    rounded (floor as ``//``'s), whose gradient is 0 for both, as torch's (where ``//``
    refuses a backward): torch's spelling of integer division since floor_divide's."""
    if rounding_mode is None:
        return div(self, other)
    if rounding_mode not in ("trunc", "floor"):
        raise ConfigError(
            f"Tensor.div: rounding_mode must be None, 'trunc' or 'floor'; got {rounding_mode!r}"
        )
    a, b = _operands(self, other)
    with np.errstate(divide="ignore", invalid="ignore"):
        if rounding_mode == "floor":
            out = _broadcasting(np.floor_divide, a, b)
        else:
            out = np.trunc(_broadcasting(np.true_divide, a, b))

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # piecewise constant: ∂/∂A = ∂/∂B = 0
        return np.zeros(a.shape, dtype=a.dtype), np.zeros(b.shape, dtype=b.dtype)

    return Tensor.from_op(out, "div", (a, b), backward, reads_inputs=False)


def _copy_in(self: Tensor, src: object, non_blocking: bool = False) -> Tensor:
    """``t.copy_(src)``: src's values written into t (broadcast to t's shape, cast to its
    dtype), in place, as torch's; under no_grad for a parameter, as ``t[...] = src``.
    A torch tensor's values are read even when it requires grad, as torch's copy_ reads them."""
    if not isinstance(src, (Tensor, np.ndarray)) and hasattr(src, "__array__"):
        src = foreign_array(src)
    _set_item(self, Ellipsis, src)
    return self


# -- more of torch's everyday names (sin, cos, sign, norm, dot, prod, cumsum, casts) ----
def sin(a: object) -> Tensor:
    a = as_tensor(a)
    A = a.data

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g * np.cos(A),)  # (sin A)′ = cos A

    return Tensor.from_op(np.sin(A), "sin", (a,), backward)


def cos(a: object) -> Tensor:
    a = as_tensor(a)
    A = a.data

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (-g * np.sin(A),)  # (cos A)′ = −sin A

    return Tensor.from_op(np.cos(A), "cos", (a,), backward)


def _torch_sign(A: np.ndarray) -> np.ndarray:
    """−1, 0 or 1, and 0 for NaN, as torch's sign (NumPy's keeps NaN)."""
    signs = np.sign(A)
    return np.where(np.isnan(signs), 0, signs).astype(signs.dtype, copy=False)


def sign(a: object) -> Tensor:
    """−1, 0 or 1 (and 0 for NaN), as torch's sign; recorded with gradient 0, as torch's."""
    a = as_tensor(a)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (np.zeros_like(g),)  # piecewise constant: ∂ sign(A)/∂A = 0

    return Tensor.from_op(_torch_sign(a.data), "sign", (a,), backward, reads_inputs=False)


def norm(a: Tensor, p: object = "fro", dim: object = None, keepdim: bool = False) -> Tensor:
    """‖A‖_p over ``dim`` (None: every element), as torch's ``t.norm``: p = 2 ('fro'),
    1, any finite p > 0 (below 1 a quasi-norm, (Σ|a|^p)^(1/p), as torch's), inf, or 0
    (the count of nonzero elements, gradient 0, as torch's). Taken in float64 (the sum of
    |a|^p of many float32 values drifts as torch's does not), in A's dtype after.
    ∂‖A‖_p/∂a = sign(a)·|a|^(p−1) / ‖A‖^(p−1), and 0 where ‖A‖ = 0 (torch's choice for
    the kink at zero), or, for p < 1, where a = 0; for inf the elements tying for the
    largest |a| share it evenly."""
    if p == "fro":
        p = 2
    if isinstance(p, bool) or not _is_number(p) or not (p >= 0 or p == math.inf):
        raise ConfigError(f"norm: p must be 'fro', a number ≥ 0 or inf; got {p!r}")
    p = float(p)
    keepdim = _flag(keepdim, "norm")
    A = a.data
    if isinstance(dim, (tuple, list)) and dim:
        axes = tuple(sorted(_axes(dim, A.ndim, "norm")))
    elif dim is None or isinstance(dim, (tuple, list)):  # (torch's dim=(): every dimension)
        axes = tuple(range(A.ndim))
    else:
        axes = (_axis(dim, A.ndim, "norm"),)
    axes = tuple(i for i in axes if i < A.ndim)  # (a 0-d tensor's dim 0 is itself)
    magnitude = np.abs(A.astype(np.float64))
    if p == math.inf and any(A.shape[i] == 0 for i in axes):
        raise ShapeError(f"norm: the inf norm of nothing (shape {A.shape}) is not defined")
    if p == math.inf:
        total = magnitude.max(axis=axes, keepdims=True, initial=0.0)
    elif p == 2:
        total = np.sqrt(np.sum(magnitude * magnitude, axis=axes, keepdims=True))
    elif p == 1:
        total = np.sum(magnitude, axis=axes, keepdims=True)
    elif p == 0:
        total = np.sum(magnitude != 0, axis=axes, keepdims=True, dtype=np.float64)
    else:
        total = np.sum(magnitude**p, axis=axes, keepdims=True) ** (1 / p)
    out = total if keepdim else np.squeeze(total, axis=axes)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        g = g if keepdim else np.expand_dims(g, axes)
        signs = _torch_sign(A.astype(np.float64))  # (torch's: 0 at a NaN, as at 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            if p == math.inf:
                hit = (magnitude == total) & (total > 0)
                share = hit / np.sum(hit, axis=axes, keepdims=True)
                grad = g * signs * np.nan_to_num(share)
            elif p == 1:
                grad = g * signs
            elif p == 0:  # a count: piecewise constant
                grad = np.zeros_like(g * magnitude)
            else:
                ratio = signs * (magnitude / total) ** (p - 1)  # |a|^(p−1) / ‖A‖^(p−1)
                if p < 1:  # (0^(p−1) is inf at a = 0, where sign 0 gives torch's 0)
                    ratio = np.where(magnitude == 0, 0.0, ratio)
                grad = g * np.where(total == 0, 0.0, ratio)  # (a NaN norm: NaN)
        return (np.asarray(grad).astype(A.dtype, copy=False),)

    backward.p, backward.reduced = p, (axes, keepdim)  # type: ignore[attr-defined]
    # (torch keeps the result too: changed in place, the backward refuses, as its)
    return Tensor.from_op(np.asarray(out).astype(A.dtype), "norm", (a,), backward, True)


def renorm(a: Tensor, p: object, dim: object, maxnorm: object) -> Tensor:
    """Each slice along ``dim`` (a row of W for dim=0) whose p-norm over the other
    dimensions exceeds ``maxnorm`` scaled down to it, as torch's ``renorm``: A·F with
    F = maxnorm/(‖A_i‖ + 1e-7) there, else 1 (a max-norm constraint on W's rows).
    ∂L/∂A = G·F + A·∂L/∂F through the norm, ∂F/∂‖A_i‖ = −maxnorm/(‖A_i‖ + 1e-7)²."""
    a = as_tensor(a)
    if not _is_number(maxnorm) or not 0 <= maxnorm < math.inf:
        raise ConfigError(f"renorm: maxnorm must be a number ≥ 0; got {maxnorm!r}")
    if a.ndim < 2:  # (as torch's refuses it)
        raise ShapeError(f"renorm: needs at least 2 dimensions; got shape {a.shape}")
    if not (_is_number(p) and p > 0):  # (norm's own refusal would name norm)
        raise ConfigError(f"renorm: p must be a number > 0 or inf, as torch's; got {p!r}")
    axis = _axis(dim, a.ndim, "renorm")
    norms = norm(a, p, dim=tuple(i for i in range(a.ndim) if i != axis), keepdim=True)
    N = norms.data
    over = N > maxnorm
    F = np.where(over, maxnorm / (N + 1e-7), 1).astype(a.dtype)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (np.where(over, g * (-maxnorm / (N + 1e-7) ** 2), 0).astype(g.dtype),)

    return mul(a, Tensor.from_op(F, "renorm factor", (norms,), backward))


def dot(a: object, b: object) -> Tensor:
    """a·b of two vectors of one length, as torch's dot (which refuses anything else)."""
    a, b = _operands(a, b)
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape:
        raise ShapeError(
            f"dot: needs two vectors of one length; got {_dims(a.shape)} and {_dims(b.shape)} "
            "(use matmul or @ for matrices)"
        )
    return matmul(a, b)  # v @ w: a 0-d value, its gradients g·b and g·a


def prod(a: Tensor, dim: object = None, keepdim: bool = False) -> Tensor:
    """Π of the elements (along ``dim``), as torch's. ∂Π/∂a_i is the product of the
    others, taken as (product of those before) · (product of those after): exact where
    some a are 0 (Π/a_i would be 0/0), as torch's gives it."""
    keepdim = _flag(keepdim, "prod")
    A = a.data
    if dim is None:
        axis, flat = 0, A.reshape(-1)
    else:
        axis, flat = _axis(dim, A.ndim, "prod"), A
        if A.ndim == 0:
            flat = A.reshape(1)
    out = np.prod(flat, axis=axis, keepdims=keepdim and dim is not None)
    if (dim is None and keepdim) or A.ndim == 0:
        out = out.reshape((1,) * A.ndim)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        ones = np.ones_like(np.take(flat, [0], axis=axis)) if flat.shape[axis] else None
        if ones is None:  # an empty product: nothing to send back
            return (np.zeros(A.shape, dtype=A.dtype),)
        before = np.cumprod(np.concatenate([ones, flat], axis=axis), axis=axis)
        before = np.delete(before, -1, axis=axis)
        reversed_ = np.flip(flat, axis=axis)
        after = np.cumprod(np.concatenate([ones, reversed_], axis=axis), axis=axis)
        after = np.flip(np.delete(after, -1, axis=axis), axis=axis)
        given = g.reshape(()) if dim is None else g if keepdim else np.expand_dims(g, axis)
        return ((given * before * after).reshape(A.shape).astype(A.dtype, copy=False),)

    # (torch keeps the result too: changed in place, the backward refuses, as its)
    return Tensor.from_op(np.asarray(out, dtype=A.dtype), "Π", (a,), backward, True)


def cumsum(a: Tensor, dim: object) -> Tensor:
    """Running sums along ``dim``, as torch's: ∂L/∂a_i = Σ_{j ≥ i} g_j, the running sum of
    G taken from the other end."""
    A = a.data
    axis = _axis(dim, A.ndim, "cumsum")
    if A.ndim == 0:
        return clone(a)  # torch's cumsum of a 0-d tensor: itself

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (np.flip(_running_sum(np.flip(g, axis), axis), axis),)

    return Tensor.from_op(_running_sum(A, axis), "cumsum", (a,), backward, reads_inputs=False)


def _running_sum(A: np.ndarray, axis: int) -> np.ndarray:
    """np.cumsum, carried in float64 for float32 as torch's CPU cumsum carries it: NumPy's
    float32 running sum of a million values in [0, 1) drifted 3e-5 relative (torch's 6e-8)."""
    if A.dtype != np.float32:
        return np.cumsum(A, axis=axis)
    return np.cumsum(A, axis=axis, dtype=np.float64).astype(np.float32)


def _cast(a: Tensor, dtype: object) -> Tensor:
    return a if dtype is None else astype(a, resolve_dtype(dtype))


def whole_numbers(a: Tensor, dtype: object) -> np.ndarray:
    """``t.long()``, ``t.int()``: the values truncated towards zero, as an integer array
    (as argmax gives indices: no gradient, as torch's integer tensors have none)."""
    with np.errstate(invalid="ignore"):  # NaN and ±inf: what torch's cast gives, unchecked
        return marks(np.asarray(a.data).astype(dtype))


def _type(self: Tensor, dtype: object = None, non_blocking: bool = False) -> object:
    """``t.type()``: torch's type name ('torch.FloatTensor', 'torch.DoubleTensor'), which
    ported code compares with; ``t.type(dtype)``: the cast, as ``t.to(dtype)`` (an integer
    dtype gives the whole numbers, as ``long()``)."""
    if dtype is None:
        return TYPE_NAMES.get(self.dtype, str(self.dtype))
    # a type's name ('torch.BoolTensor') as its dtype; any dtype as to(dtype) casts it
    named = {v: k for k, v in TYPE_NAMES.items()}.get(dtype) if isinstance(dtype, str) else None
    return _to(self, dtype if named is None else named)


def _contiguous(self: Tensor, memory_format: object = None) -> Tensor:
    """``t.contiguous()``: self where its array is in row-major order, else a copy in the
    graph, as torch's: ``t.T.contiguous().view(-1)`` then works as it does in torch."""
    return self if self.data.flags.c_contiguous else clone(self)


def _new_filled(value: float) -> Callable:
    def new(self: Tensor, *size: object, dtype: object = None, device: object = None,
            requires_grad: bool = False, **unused: object) -> Tensor:  # fmt: skip
        """``t.new_zeros(size)``/``new_ones``: a new leaf in t's dtype, as torch's."""
        check_device(device, "Tensor.new_zeros/new_ones")
        shape = _sizes(size, "new_zeros/new_ones")
        kind = self.dtype if dtype is None else resolve_dtype(dtype)
        return Tensor(np.full(shape, value, dtype=kind), requires_grad=bool(requires_grad))

    return new


Tensor.size = _size
Tensor.dim = lambda self: self.ndim
Tensor.numel = lambda self: int(self.data.size)
Tensor.tolist = lambda self: self.data.tolist()
Tensor.to = _to
Tensor.cpu = lambda self: self  # as torch's on the CPU: the tensor itself
# torch's x.device (torch.zeros(n, device=x.device), next(model.parameters()).device)
Tensor.device = property(lambda self: CPU)
Tensor.is_cuda = property(lambda self: False)
Tensor.cuda = _cuda
Tensor.float = lambda self: astype(self, np.float32)
Tensor.double = lambda self: astype(self, np.float64)
Tensor.clone = clone
Tensor.zero_ = lambda self: _filler("zero_")(self, 0)
Tensor.fill_ = _filler("fill_")
Tensor.copy_ = _copy_in
# torch's method names for the operators, alpha= as torch's (t + alpha·other)
Tensor.add = lambda self, other, *, alpha=1: add(self, _scaled(self, other, alpha, "add"))
Tensor.sub = lambda self, other, *, alpha=1: sub(self, _scaled(self, other, alpha, "sub"))
Tensor.mul = lambda self, other: mul(self, other)
Tensor.div = _divide
Tensor.add_ = lambda self, other, *, alpha=1: self.__iadd__(_scaled(self, other, alpha, "add_"))
Tensor.sub_ = lambda self, other, *, alpha=1: self.__isub__(_scaled(self, other, alpha, "sub_"))
Tensor.mul_ = lambda self, other: self.__imul__(other)
Tensor.div_ = lambda self, other: self.__itruediv__(other)
Tensor.expand = expand
Tensor.repeat = repeat
Tensor.relu = lambda self: relu(self)
Tensor.sigmoid = lambda self: sigmoid(self)
Tensor.tanh = lambda self: tanh(self)
Tensor.hardshrink = lambda self, lambd=0.5: hardshrink(self, lambd)
# dtype=: cast first, as torch's (softmax(1, dtype=torch.float64) stopped at a TypeError)
Tensor.softmax = lambda self, dim, dtype=None: softmax_along(_cast(self, dtype), dim)
Tensor.log_softmax = lambda self, dim, dtype=None: log_softmax_along(_cast(self, dtype), dim)
Tensor.clamp = Tensor.clip = lambda self, min=None, max=None: clamp(self, min, max)
Tensor.clamp_ = Tensor.clip_ = _clamp_in_place
Tensor.renorm = lambda self, p, dim, maxnorm: renorm(self, p, dim, maxnorm)
Tensor.renorm_ = _in_place_of("renorm", renorm, "renorm(p, dim, maxnorm)")  # max-norm on W's rows
Tensor.pow = lambda self, exponent: power(self, exponent)
Tensor.square = lambda self: mul(self, self)
Tensor.neg = negative
Tensor.matmul = lambda self, other: matmul(self, other)
Tensor.mm = _matrix_product
Tensor.t = _matrix_transpose
Tensor.transpose = lambda self, dim0, dim1: swap_axes(self, dim0, dim1)
Tensor.view = view
Tensor.flatten = lambda self, start_dim=0, end_dim=-1: reshape(
    self, flattened_shape(self.shape, start_dim, end_dim)
)
Tensor.unsqueeze = lambda self, dim: reshape(self, _unsqueezed(self.shape, dim))
Tensor.unflatten = lambda self, dim, sizes: unflatten(self, dim, sizes)
Tensor.squeeze = lambda self, dim=None, *dims, axis=None: reshape(
    self, _squeezed(self.shape, (dim, *dims) if dims else axis if dim is None else dim)
)  # (axis=: what np.squeeze(t, axis) calls; squeeze(0, 2): torch's several dims)
Tensor.max, Tensor.min = _extreme_method(True), _extreme_method(False)
Tensor.argmax, Tensor.argmin = _arg_method(True), _arg_method(False)
Tensor.var, Tensor.std = _variance_method(False), _variance_method(True)
Tensor.sin, Tensor.cos, Tensor.sign = sin, cos, sign
# (dtype=: torch casts the input first, as here)
Tensor.norm = lambda self, p="fro", dim=None, keepdim=False, dtype=None: norm(
    _cast(self, dtype), p, dim, keepdim
)
Tensor.dot = dot


def _prod_method(self, dim=None, keepdim=False, dtype=None, *, axis=None, keepdims=None,
                 out=None, **unused):  # fmt: skip
    """t.prod(dim, keepdim) as PyTorch's; NumPy's spelling, t.prod(axis=…, keepdims=…),
    which np.prod(t) calls (it stopped at "<lambda>() got an unexpected keyword argument
    'axis'"), with NumPy's meaning."""
    if out is not None or unused:
        raise TypeError("Tensor.prod: out= and other NumPy options are not taken")
    if axis is not None and dim is not None:
        raise TypeError("Tensor.prod: give the axis once (axis= or dim=)")
    keepdim = keepdim if keepdims is None else keepdims
    return prod(_cast(self, dtype), dim if axis is None else axis, keepdim)


Tensor.prod = _prod_method
Tensor.cumsum = lambda self, dim, dtype=None: cumsum(_cast(self, dtype), dim)
Tensor.long = lambda self, memory_format=None: whole_numbers(self, np.int64)
Tensor.int = lambda self, memory_format=None: whole_numbers(self, np.int32)
Tensor.type = _type
Tensor.contiguous = _contiguous
Tensor.new_zeros, Tensor.new_ones = _new_filled(0.0), _new_filled(1.0)


def _on_values(function: Callable) -> Callable:
    """``function`` run on the tensors' arrays (it gives no tensor: nothing to record)."""

    def run(*args: object, **kwargs: object) -> object:
        return function(*(a.data if isinstance(a, Tensor) else a for a in args), **kwargs)

    return run


def _numpy_block(arrays: object) -> np.ndarray:
    """np.block of tensors, on their values: NumPy's own read each block's ``.size``
    (torch's method here) and failed ("+=: 'method' and 'method'"). Its result is an
    array, as torch's np.block gives; a tensor that requires grad is refused."""

    def values(blocks: object) -> object:
        if isinstance(blocks, list):
            return [values(b) for b in blocks]
        if isinstance(blocks, Tensor):
            if blocks.requires_grad:
                raise TypeError(
                    "np.block on a wxb Tensor that requires grad would cut the graph: "
                    "join with wxb.cat / wxb.stack (torch.cat), which keep it, or "
                    "np.block of tensor.detach() for values without gradients"
                )
            return blocks.data
        return blocks

    return np.block(values(arrays))


# NumPy on the left (array * tensor, np.float64(2) * tensor, np.exp(tensor)) lands in
# Tensor.__array_ufunc__, which runs these so the graph goes on.
ARRAY_FUNCTION_OPS.update(
    {
        np.concatenate: _numpy_joining(concatenate, "concatenate"),
        np.stack: _numpy_joining(stack, "stack"),
        # NumPy reads a.size of what is not an array: Tensor.size is torch's method, and
        # np.size(t) gave that bound method, not the count of elements
        np.size: lambda a, axis=None: np.size(a.data, axis),
        # NumPy's np.nonzero calls a.nonzero(): torch's (n, ndim) indices, not its tuple
        np.nonzero: lambda a: np.nonzero(a.data),
        np.block: _numpy_block,
        # answers with no gradient to lose: on the values (np.array_equal's own read of a
        # tensor that requires grad failed, and it answered False for equal values)
        **{f: _on_values(f) for f in (np.array_equal, np.array_equiv, np.allclose, np.isclose)},
    }
)
UFUNC_OPS.update(
    {
        np.add: add,
        np.subtract: sub,
        np.multiply: mul,
        np.true_divide: div,
        np.power: power,
        np.matmul: matmul,
        np.negative: negative,
        np.exp: exp,
        np.log: log,
        np.sqrt: sqrt,
        np.absolute: absolute,
        np.sin: sin,
        np.cos: cos,
        np.sign: sign,
    }
)


# -- torch's other everyday tensor methods: permute, split, sort, masked_fill, … --------
def permute(a: Tensor, *dims: object) -> Tensor:
    """``t.permute(dims)``: the axes in a new order; ∂L/∂A is G in the inverse order."""
    if not dims:  # (torch's refuses none, a 0-d tensor's too: permute(()) is its order)
        raise ConfigError("permute: give the dims' new order (permute(1, 0) or permute((1, 0)))")
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    if len(dims) != a.ndim:
        raise ShapeError(
            f"permute: a tensor of {a.ndim} dimensions needs {a.ndim} dims; got {dims}"
        )
    axes = tuple(_axis(d, a.ndim, "permute") for d in dims) if a.ndim else ()
    if len(set(axes)) != len(axes):
        raise ShapeError(f"permute: a dim appears twice in {dims}")
    inverse = tuple(int(i) for i in np.argsort(axes))

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (np.transpose(g, inverse),)

    backward.dims = axes  # type: ignore[attr-defined]  # (ONNX export: Transpose's perm)
    data = np.transpose(a.data, axes)
    return _view_of(a, Tensor.from_op(data, "permute", (a,), backward, reads_inputs=False))


def split(a: Tensor, split_size_or_sections: object, dim: object = 0) -> tuple[Tensor, ...]:
    """``t.split(size, dim)``: pieces of ``size`` along dim (the last smaller), or of the
    sizes listed, which must add up to the dim's size; each a recorded slice."""
    axis = _axis(dim, a.ndim, "split")
    if a.ndim == 0:
        raise ShapeError("split: a 0-d tensor has no dim to split")
    length = a.shape[axis]
    sizes = split_size_or_sections
    if isinstance(sizes, (list, tuple)):
        sizes = _sizes(tuple(sizes), "split") if sizes else ()
        if any(n < 0 for n in sizes) or builtins.sum(sizes) != length:
            raise ShapeError(f"split: sizes {list(sizes)} do not add up to dim {dim}'s {length}")
    else:
        if isinstance(sizes, bool) or not isinstance(sizes, (int, np.integer)) or sizes <= 0:
            raise ConfigError(f"split: split_size must be a positive integer; got {sizes!r}")
        step = int(sizes)
        sizes = [min(step, length - start) for start in range(0, length, step)] or [0]
    bounds = np.cumsum([0, *sizes])
    before = (slice(None),) * axis
    pieces = tuple(
        index(a, (*before, slice(int(i), int(j)))) for i, j in itertools.pairwise(bounds)
    )
    return _several(pieces)


def chunk(a: Tensor, chunks: object, dim: object = 0) -> tuple[Tensor, ...]:
    """``t.chunk(n, dim)``: torch's pieces of ⌈size/n⌉ along dim (so fewer than n where
    that size already covers the dim)."""
    if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks <= 0:
        raise ConfigError(f"chunk: chunks must be a positive integer; got {chunks!r}")
    axis = _axis(dim, a.ndim, "chunk")
    length = a.shape[axis] if a.ndim else 1
    if length == 0:  # torch's: chunks empty pieces
        return split(a, [0] * int(chunks), axis)
    return split(a, -(-length // int(chunks)), axis)


def _mask_for(a: Tensor, mask: object, what: str) -> np.ndarray:
    """A boolean mask that broadcasts to ``a``'s shape (torch refuses any other dtype)."""
    array = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if array.dtype != np.bool_:
        raise DataError(f"{what}: the mask must be boolean (t > 0, t == x); got {array.dtype}")
    try:
        return np.broadcast_to(array, a.shape)
    except ValueError:
        raise ShapeError(
            f"{what}: a mask of shape {array.shape} for a tensor of {a.shape}"
        ) from None


def masked_fill(a: Tensor, mask: object, value: object) -> Tensor:
    """``t.masked_fill(mask, value)``: value where the mask holds, A elsewhere; ∂L/∂A is G
    where the mask does not hold (and 0 where it does: the value does not depend on A)."""
    filled_at = _mask_for(a, mask, "masked_fill")
    if a.requires_grad and is_grad_enabled():
        filled_at = filled_at.copy()  # the backward's own (the caller may reuse its mask)
    if isinstance(value, Tensor):
        if value.ndim:
            raise ShapeError(
                f"masked_fill: value must be a number or a 0-d tensor; got {value.shape}"
            )
        if value.requires_grad:  # ∂L/∂value = Σ G over the filled places, as torch's
            return where(filled_at, value, a)
        value = value.data
    if not _is_number(value) and not (isinstance(value, np.ndarray) and value.ndim == 0):
        raise ConfigError(f"masked_fill: value must be a number; got {value!r}")
    filled = float_array(value, a.dtype, "masked_fill")

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (np.where(filled_at, 0, g).astype(g.dtype, copy=False),)

    out = np.where(filled_at, filled, a.data)
    return keep_values(Tensor.from_op(out, "masked_fill", (a,), backward, reads_inputs=False))


def where(condition: object, a: object, b: object) -> Tensor:
    """``torch.where(condition, a, b)``: a where the condition holds, b elsewhere,
    broadcast; ∂L/∂A is G where it holds, ∂L/∂B where it does not, each summed back to
    its operand's shape."""
    if isinstance(condition, Tensor):  # torch takes only bool tensors as the condition
        raise DataError("where: the condition must be a boolean mask (t > 0); got a float Tensor")
    c = np.asarray(condition)
    if c.dtype != np.bool_:
        raise DataError(f"where: the condition must be boolean (t > 0, t == x); got {c.dtype}")
    a, b = _operands(a, b)
    if (a.requires_grad or b.requires_grad) and is_grad_enabled():
        c = c.copy()  # the backward's own: a caller's mask &= … after it changed ∂L/∂A unseen
    if a.dtype != b.dtype:  # torch's result takes the wider dtype
        wider = np.promote_types(a.dtype, b.dtype)
        a, b = astype(a, wider), astype(b, wider)
    try:
        out = np.where(c, a.data, b.data)
    except ValueError:
        raise ShapeError(
            f"where: shapes {c.shape}, {a.shape} and {b.shape} do not broadcast"
        ) from None

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        zero = np.zeros((), dtype=g.dtype)
        return (
            _unbroadcast(np.where(c, g, zero), a.shape),
            _unbroadcast(np.where(c, zero, g), b.shape),
        )

    backward.condition = c  # type: ignore[attr-defined]  # (ONNX export: Where's mask)
    return keep_values(Tensor.from_op(out, "where", (a, b), backward, reads_inputs=False))


def log1p(a: object) -> Tensor:
    a = as_tensor(a)
    A = a.data

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g / (1 + A),)  # (log(1 + A))′ = 1/(1 + A)

    return Tensor.from_op(np.log1p(A), "log1p", (a,), backward)


def reciprocal(a: object) -> Tensor:
    a = as_tensor(a)
    R = np.reciprocal(a.data)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (-g * R * R,)  # (1/A)′ = −1/A²

    return Tensor.from_op(R, "reciprocal", (a,), backward, saves_output=True, reads_inputs=False)


def rsqrt(a: object) -> Tensor:
    a = as_tensor(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        R = np.reciprocal(np.sqrt(a.data))

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g * (-0.5) * R * R * R,)  # (A^(−½))′ = −½·A^(−3/2)

    return Tensor.from_op(R, "rsqrt", (a,), backward, saves_output=True, reads_inputs=False)


def _stepwise(name: str, function: Callable[[np.ndarray], np.ndarray]) -> Callable:
    """round, floor, ceil, trunc: piecewise constant, recorded with gradient 0, as torch's."""

    def op(a: object) -> Tensor:
        a = as_tensor(a)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (np.zeros_like(g),)  # flat between the steps: ∂/∂A = 0

        return Tensor.from_op(function(a.data), name, (a,), backward, reads_inputs=False)

    return op


floor, ceil, trunc = (
    _stepwise("floor", np.floor),
    _stepwise("ceil", np.ceil),
    _stepwise("trunc", np.trunc),
)


def round_(a: object, decimals: object = 0) -> Tensor:
    """``t.round(decimals=0)``: halves to even, as torch's (and NumPy's); gradient 0."""
    if isinstance(decimals, bool) or not isinstance(decimals, (int, np.integer)):
        raise ConfigError(f"round: decimals must be an integer; got {decimals!r}")
    return _stepwise("round", lambda A: np.round(A, int(decimals)))(a)


def remainder(a: object, b: object) -> Tensor:
    """``a % b`` as torch's (the sign of b, as Python's): A − B·⌊A/B⌋. ∂L/∂A = G and
    ∂L/∂B = −G·⌊A/B⌋ (torch's rule)."""
    return _remainder_of(a, b, "remainder", np.remainder, np.floor)


def _remainder_of(a: object, b: object, name: str, function: np.ufunc, rounding: np.ufunc):
    """A − B·q with q = rounding(A/B) (remainder's ⌊⌋, fmod's trunc): ∂L/∂A = G and
    ∂L/∂B = −G·q, torch's rule for both."""
    a, b = _operands(a, b)
    A, B = a.data, b.data
    with np.errstate(divide="ignore", invalid="ignore"):
        out = _broadcasting(function, a, b)
        quotient = rounding(A / B)

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _unbroadcast(g, A.shape), _unbroadcast(-g * quotient, B.shape)

    # A and B only for ∂L/∂B, as torch's (its own copy, q, is read)
    reads = (b.requires_grad,) * 2
    return Tensor.from_op(out, name, (a, b), backward, reads_inputs=reads)


def floor_divide(a: object, b: object) -> Tensor:
    """``a // b`` as torch's: ⌊A/B⌋. torch has no derivative for it and refuses a backward
    through it; so does this one's rule (a silent 0 would hide a broken loss)."""
    a, b = _operands(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = _broadcasting(np.floor_divide, a, b)

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise TrainingError(
            "backward() through a // b (floor_divide): it has no derivative, as in PyTorch; "
            "detach() the operands, or use a / b"
        )

    return Tensor.from_op(out, "floor_divide", (a, b), backward, reads_inputs=False)


# labels // t and np.float64(7) % t (NumPy on the left) as t's own // and %, which NumPy
# refused; np.maximum(array, t) as torch.maximum
UFUNC_OPS.update(
    {
        np.floor_divide: floor_divide,
        np.remainder: remainder,
        np.maximum: lambda a, b: pairwise_extreme(a, b, largest=True),
        np.minimum: lambda a, b: pairwise_extreme(a, b, largest=False),
    }
)


def _order(A: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """The indices that sort A along ``axis``, ties in their first order (stable), NaN
    counted above every number, as torch's sort: last ascending, first descending."""
    moved = np.moveaxis(A, axis, -1)
    nan = np.isnan(moved)
    values = np.where(nan, 0, moved)
    if descending:
        found = np.lexsort((-values, ~nan), axis=-1)
    else:
        found = np.lexsort((values, nan), axis=-1)
    return np.moveaxis(found, -1, axis)


def _taken(a: Tensor, chosen: np.ndarray, axis: int, name: str) -> Tensor:
    """A's values at ``chosen`` along ``axis``; each one's gradient goes back to its place."""

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        grad = np.zeros(a.shape, dtype=g.dtype)
        np.add.at(grad, _along(chosen, axis), g)
        return (grad,)

    taken = np.take_along_axis(a.data, chosen, axis)  # (torch's saves the indices)
    return keep_values(Tensor.from_op(taken, name, (a,), backward, reads_inputs=False))


def _along(chosen: np.ndarray, axis: int) -> tuple:
    """np.take_along_axis's index as a fancy index (for np.add.at)."""
    grids = list(np.indices(chosen.shape, sparse=True))
    grids[axis] = chosen
    return tuple(grids)


def sort(
    a: Tensor, dim: object = -1, descending: bool = False, stable: bool = False
) -> ValuesIndices:
    """``t.sort(dim=-1, descending=False)``: (values, indices), as torch's."""
    axis = _axis(dim, a.ndim, "sort")
    if a.ndim == 0:
        return ValuesIndices(clone(a), marks(np.zeros((), dtype=np.int64)))
    chosen = _order(a.data, axis, _flag(descending, "sort: descending"))
    return ValuesIndices(_taken(a, chosen, axis, "sort"), marks(chosen.astype(np.int64)))


def argsort(
    a: Tensor, dim: object = -1, descending: bool = False, stable: bool = False
) -> np.ndarray:
    return sort(a, dim, descending).indices


def topk(
    a: Tensor, k: object, dim: object = -1, largest: bool = True, sorted: bool = True
) -> ValuesIndices:
    """``t.topk(k, dim=-1, largest=True)``: the k largest (smallest) along dim, largest
    first, as (values, indices)."""
    axis = _axis(dim, a.ndim, "topk")
    length = a.shape[axis] if a.ndim else 1
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= length:
        raise ShapeError(
            f"topk: k must be an integer from 0 to {length} (dim {dim}'s size); got {k!r}"
        )
    if a.ndim == 0:  # the value itself, k 0 or 1, as torch's (reshape to (0,) failed)
        return sort(a)
    chosen = _order(a.data, axis, _flag(largest, "topk: largest"))
    chosen = np.take(chosen, np.arange(int(k)), axis=axis)
    return ValuesIndices(_taken(a, chosen, axis, "topk"), marks(chosen.astype(np.int64)))


# Why an index a torch script writes holds floats in wxb: wxb computes in floats
_FLOAT_INDEX = "wxb.tensor() and wxb.arange() make whole numbers float32; torch's arange is int64"


def index_select(a: Tensor, dim: object, index_: object) -> Tensor:
    """``t.index_select(dim, index)``: the slices along dim that a 1-d integer index names
    (repeats allowed); each slice's gradient adds back into its place."""
    axis = _axis(dim, a.ndim, "index_select")
    chosen = np.asarray(index_.data if isinstance(index_, Tensor) else index_)
    if chosen.dtype.kind not in "iu" or chosen.ndim > 1:
        raise DataError(
            f"index_select: index must be a 1-d integer array; got {chosen.dtype} of "
            f"{chosen.shape}"
            + (f" ({_FLOAT_INDEX}: write idx.long())" if chosen.dtype.kind == "f" else "")
        )
    length = a.shape[axis] if a.ndim else 1
    if chosen.size and (chosen.min() < -length or chosen.max() >= length):
        raise ShapeError(f"index_select: an index is out of range for dim {dim} of size {length}")
    chosen = chosen.reshape(-1) % max(length, 1)
    if a.ndim == 0:
        return index(reshape(a, (1,)), chosen).reshape(chosen.shape if chosen.size != 1 else ())
    before = (slice(None),) * axis
    return index(a, (*before, chosen))


def isnan(a: object) -> np.ndarray:
    return marks(np.isnan(a.data if isinstance(a, Tensor) else np.asarray(a)))


def _truth(name: str) -> Callable:
    """``t.all()``/``t.any()``, over everything or along dim, as a boolean mask."""
    reduce = np.all if name == "all" else np.any

    def method(self, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None):
        dim = axis if dim is None else dim
        keep = _flag(keepdim if keepdims is None else keepdims, f"Tensor.{name}")
        if dim is not None:
            dims = dim if isinstance(dim, (tuple, list)) else (dim,)
            dim = tuple(_axis(d, self.ndim, name) for d in dims) if self.ndim else None
        return marks(reduce(self.data, axis=dim, keepdims=keep))

    return method


Tensor.permute = permute
Tensor.split = split
Tensor.chunk = chunk
Tensor.masked_fill = masked_fill
Tensor.log1p = log1p
Tensor.reciprocal = reciprocal
Tensor.rsqrt = rsqrt
Tensor.floor, Tensor.ceil, Tensor.trunc, Tensor.round = floor, ceil, trunc, round_
Tensor.sort = sort
Tensor.argsort = argsort
Tensor.topk = topk
Tensor.index_select = index_select
Tensor.minimum = lambda self, other: pairwise_extreme(self, other, largest=False)
Tensor.maximum = lambda self, other: pairwise_extreme(self, other, largest=True)
Tensor.isnan = isnan
Tensor.all, Tensor.any = _truth("all"), _truth("any")
Tensor.bool = lambda self: marks(self.data != 0)
Tensor.view_as = lambda self, other: reshape(self, other.shape)
Tensor.eq = Tensor.__eq__
Tensor.ne = Tensor.__ne__
Tensor.gt = Tensor.__gt__
Tensor.ge = Tensor.__ge__
Tensor.lt = Tensor.__lt__
Tensor.le = Tensor.__le__
Tensor.__mod__ = lambda self, other: remainder(self, other)
Tensor.__rmod__ = lambda self, other: remainder(other, self)
Tensor.__floordiv__ = lambda self, other: floor_divide(self, other)
Tensor.__rfloordiv__ = lambda self, other: floor_divide(other, self)
# in place as += is (torch's): Python's fallback, t = t % x, left the array it named unchanged
Tensor.__imod__ = _in_place(np.remainder, "%=", remainder)
Tensor.__ifloordiv__ = _in_place(np.floor_divide, "//=", floor_divide)
Tensor.remainder = lambda self, other: remainder(self, other)
Tensor.floor_divide = lambda self, other: floor_divide(self, other)


def triangle(a: Tensor, diagonal: object = 0, lower: bool = True) -> Tensor:
    """``t.tril(diagonal)`` / ``t.triu(diagonal)`` over the last two dims (a causal mask's
    shape): A where the triangle keeps it, 0 elsewhere; ∂L/∂A is G on the same triangle."""
    name = "tril" if lower else "triu"
    if isinstance(diagonal, bool) or not isinstance(diagonal, (int, np.integer)):
        raise ConfigError(f"{name}: diagonal must be an integer; got {diagonal!r}")
    if a.ndim < 2:
        raise ShapeError(f"{name}: needs a tensor of at least 2 dimensions; got {_dims(a.shape)}")
    rows, cols = a.shape[-2:]
    make = np.tri if lower else (lambda n, m, k: ~np.tri(n, m, k - 1, dtype=bool))
    kept = make(rows, cols, int(diagonal)).astype(bool)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (np.where(kept, g, 0).astype(g.dtype, copy=False),)

    out = np.where(kept, a.data, 0).astype(a.dtype, copy=False)
    return Tensor.from_op(out, name, (a,), backward, reads_inputs=False)


def _batch_product(self: Tensor, other: object) -> Tensor:
    """``t.bmm(other)``: torch's product of two stacks of matrices (3-d each)."""
    other = other if isinstance(other, Tensor) else _operand(other, self.dtype, self.requires_grad)
    if self.ndim != 3 or other.ndim != 3:
        raise ShapeError(
            f"bmm: two 3-d tensors (b×n×m, b×m×p); got {_dims(self.shape)} and "
            f"{_dims(other.shape)} (matmul broadcasts)"
        )
    if self.shape[0] != other.shape[0]:
        raise ShapeError(f"bmm: batch sizes {self.shape[0]} and {other.shape[0]} differ")
    return matmul(self, other)


Tensor.tril = lambda self, diagonal=0: triangle(self, diagonal, lower=True)
Tensor.triu = lambda self, diagonal=0: triangle(self, diagonal, lower=False)
Tensor.bmm = _batch_product


def _outer(self: Tensor, vec2: object) -> Tensor:
    """``t.outer(v)``: of two vectors, as torch's (NumPy's np.outer flattened a matrix
    or a 0-d value without a word, where torch refuses them)."""
    other = vec2 if isinstance(vec2, Tensor) else _operand(vec2, self.dtype, self.requires_grad)
    if self.ndim != 1 or other.ndim != 1:
        raise ShapeError(
            f"outer: of two 1-D tensors, as torch's; got shapes {self.shape} and {other.shape} "
            "(flatten them first for NumPy's np.outer)"
        )
    return mul(reshape(self, (-1, 1)), reshape(other, (1, -1)))


Tensor.outer = _outer


def gather(a: Tensor, dim: object, index_: object) -> Tensor:
    """``t.gather(dim, index)``: out[i][j] = A[i][index[i][j]] along dim (the picked
    log-probability of each row's class, ``logp.gather(1, y.unsqueeze(1))``); index has
    A's number of dims and sizes up to A's in the others. Each picked value's gradient
    adds back into its place."""
    axis = _axis(dim, a.ndim, "gather")
    chosen = np.asarray(index_.data if isinstance(index_, Tensor) else index_)
    if a.ndim == 0 and chosen.ndim == 0:  # one value, one index: a 0-d result, as torch's
        return reshape(gather(a, dim, chosen.reshape(1)), ())
    if chosen.dtype.kind not in "iu":
        hint = f" ({_FLOAT_INDEX}: write idx.long())" if chosen.dtype.kind == "f" else ""
        raise DataError(f"gather: index must hold integers (int64); got {chosen.dtype}{hint}")
    if chosen.ndim != max(a.ndim, 1) or any(
        n > m for i, (n, m) in enumerate(zip(chosen.shape, a.shape, strict=False)) if i != axis
    ):
        raise ShapeError(
            f"gather: index of shape {chosen.shape} for a tensor of {a.shape} along dim {dim} "
            "(as many dims, each at most the tensor's)"
        )
    length = a.shape[axis] if a.ndim else 1
    if chosen.size and (chosen.min() < -length or chosen.max() >= length):
        raise ShapeError(f"gather: an index is out of range for dim {dim} of size {length}")
    place = _along(chosen % max(length, 1), axis)
    source = a.data if a.ndim else a.data.reshape(1)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        grad = np.zeros(source.shape, dtype=g.dtype)
        np.add.at(grad, place, g)  # a place picked twice gets both gradients
        return (grad.reshape(a.shape),)

    # (its backward reads A's shape alone; A is recorded as torch's gather keeps it)
    return Tensor.from_op(source[place], "gather", (a,), backward)


def logsumexp(a: Tensor, dim: object, keepdim: bool = False) -> Tensor:
    """log Σ exp(A) over dim, taken as m + log Σ exp(A − m) with m the largest (no
    overflow); ∂/∂A = exp(A − out), the softmax. A row of −inf gives −inf, as torch's."""
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    if a.ndim == 0:  # dim 0 or -1 of a 0-d tensor: its one value
        for d in dims:
            _axis(d, 0, "logsumexp")
        return reshape(logsumexp(reshape(a, (1,)), 0), ())
    axes = _axes(dims, a.ndim, "logsumexp")
    keep = _flag(keepdim, "logsumexp")
    A = a.data
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        top = np.max(A, axis=axes, keepdims=True) if A.size else np.zeros((1,) * A.ndim, A.dtype)
        top = np.where(np.isfinite(top), top, 0).astype(A.dtype, copy=False)
        total = np.log(np.sum(np.exp(A - top), axis=axes, keepdims=True)) + top
    out = total if keep else np.squeeze(total, axes)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        gk = g if keep else np.expand_dims(g, axes)
        with np.errstate(invalid="ignore", over="ignore"):
            return ((gk * np.exp(A - total)).astype(A.dtype, copy=False),)

    # the result's array is total's (or a view of it), which the backward reads
    return Tensor.from_op(np.asarray(out), "logsumexp", (a,), backward, saves_output=True)


def extreme_of_dims(a: Tensor, dim: object = (), keepdim: bool = False, largest: bool = True):
    """``t.amax(dim)`` / ``amin``: the largest (smallest) over dims, whose gradient the
    elements tying for it share evenly (torch's amax rule; max(dim) gives it to one)."""
    name = "amax" if largest else "amin"
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    axes = _axes(dims, a.ndim, name) if a.ndim and dims else None
    keep = _flag(keepdim, name)
    A = a.data
    if A.size == 0 and (axes is None or any(A.shape[i] == 0 for i in axes)):
        raise ShapeError(f"{name}: the tensor holds no values (shape {A.shape}) along the dims")
    # (along dims that hold values, an empty tensor's is empty, as torch's: (0, 3) → (0,))
    best = (np.max if largest else np.min)(A, axis=axes, keepdims=True)
    out = best if keep else np.squeeze(best, axes) if axes is not None else best.reshape(())

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        hit = (A == best) | (np.isnan(A) & np.isnan(best))  # a NaN extreme: the NaNs'
        share = hit / np.sum(hit, axis=axes, keepdims=True)
        gk = g if keep else np.expand_dims(g, axes) if axes is not None else g
        return ((gk * share).astype(A.dtype, copy=False),)

    backward.reduced = (axes, keep)  # type: ignore[attr-defined]  # (ONNX)
    # the result's array is best's (or a view of it), which the backward reads
    return Tensor.from_op(np.asarray(out), name, (a,), backward, saves_output=True)


def flip(a: Tensor, *dims: object) -> Tensor:
    """``t.flip(dims)``: the order reversed along dims; ∂L/∂A is G flipped back."""
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    axes = _axes(dims, a.ndim, "flip") if a.ndim else ()

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (np.flip(g, axes),)

    return Tensor.from_op(np.flip(a.data, axes).copy(), "flip", (a,), backward, reads_inputs=False)


def expm1(a: object) -> Tensor:
    a = as_tensor(a)
    E = np.expm1(a.data)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g * (E + 1),)  # (e^A − 1)′ = e^A, from the result as torch's

    return Tensor.from_op(E, "expm1", (a,), backward, saves_output=True, reads_inputs=False)


def _log_base(base: float, name: str) -> Callable:
    def op(a: object) -> Tensor:
        a = as_tensor(a)
        A = a.data
        scale = A.dtype.type(math.log(base))

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (g / (A * scale),)  # (log_b A)′ = 1/(A ln b)

        return Tensor.from_op(np.log2(A) if base == 2 else np.log10(A), name, (a,), backward)

    return op


log2, log10 = _log_base(2, "log2"), _log_base(10, "log10")


def _type_as(self: Tensor, other: object) -> Tensor:
    """``t.type_as(other)``: t in other's float dtype (a tensor's or an array's)."""
    kind = np.dtype(getattr(other, "dtype", np.float32))
    return astype(self, resolve_dtype(kind)) if kind.kind == "f" else whole_numbers(self, kind)


Tensor.gather = gather
Tensor.logsumexp = lambda self, dim, keepdim=False: logsumexp(self, dim, keepdim)
Tensor.amax = lambda self, dim=(), keepdim=False: extreme_of_dims(self, dim, keepdim, True)
Tensor.amin = lambda self, dim=(), keepdim=False: extreme_of_dims(self, dim, keepdim, False)
Tensor.flip = flip
Tensor.expm1, Tensor.log2, Tensor.log10 = expm1, log2, log10
Tensor.type_as = _type_as
Tensor.expand_as = lambda self, other: expand(self, tuple(np.shape(other)))  # (0-d too)
Tensor.reshape_as = lambda self, other: reshape(self, np.shape(other))
Tensor.mT = property(lambda self: swap_axes(self, -2, -1))


def unbind(a: Tensor, dim: object = 0) -> tuple[Tensor, ...]:
    """``t.unbind(dim)``: the slices along dim, each a recorded index."""
    axis = _axis(dim, a.ndim, "unbind")
    if a.ndim == 0:  # (shape[0] of a 0-d tensor stopped at "tuple index out of range")
        raise ShapeError("unbind: a 0-d tensor has no dim to unbind")
    return _several(tuple(index(a, (*(slice(None),) * axis, i)) for i in range(a.shape[axis])))


Tensor.unbind = unbind
Tensor.clamp_min = lambda self, min: clamp(self, min=min)
Tensor.clamp_max = lambda self, max: clamp(self, max=max)
Tensor.isinf = lambda self: marks(np.isinf(self.data))
Tensor.isfinite = lambda self: marks(np.isfinite(self.data))
Tensor.nonzero = lambda self, as_tuple=False: (
    tuple(marks(i.astype(np.int64)) for i in np.nonzero(np.atleast_1d(self.data)))
    if as_tuple
    else marks(np.argwhere(self.data).astype(np.int64))
)
Tensor.argwhere = lambda self: marks(np.argwhere(self.data).astype(np.int64))


def einsum(equation: object, *operands: object) -> Tensor:
    """``torch.einsum("bij,bjk->bik", a, b)``: NumPy's einsum forward. ∂L/∂Xₖ contracts
    G with the other operands back onto Xₖ's subscripts (G's subscripts the output's),
    broadcast along an index only Xₖ had (summed away in the forward). An ellipsis
    (...) stands for the dims no letter names, broadcast as torch's. An index repeated
    within one operand ("ii->i", "ii", "bii->bi") reads its diagonal, as torch's: its
    ∂L/∂X is zero off the diagonal. One repeated in the output is refused, as torch's."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not isinstance(equation, str):
        raise ConfigError(f"einsum: the equation must be a string; got {equation!r}")
    spec = equation.replace(" ", "")
    if "." in spec:
        spec, operands = _ellipsis_named(spec, operands, equation)
    inputs_spec, arrow, output = spec.partition("->")
    subs = inputs_spec.split(",")
    if len(subs) != len(operands):
        raise ShapeError(f"einsum: {equation!r} names {len(subs)} operands; got {len(operands)}")
    letters = "".join(subs)
    if not arrow:  # implicit: the indices met once, in alphabetical order (as torch's)
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    for s in (*subs, output):
        if s and not s.isalpha():
            raise ConfigError(f"einsum: subscripts are letters; got {s!r}")
    if len(set(output)) != len(output):
        raise ConfigError(f"einsum: an index repeated within the output {output!r} is not taken")
    tensors = in_result_type(operands)  # (an array: the tensors' dtype, copied if read)
    like = max(tensors, key=lambda t: t.dtype.itemsize)
    tensors = [astype(t, like.dtype) if t.dtype != like.dtype else t for t in tensors]
    try:
        out = np.einsum(f"{','.join(subs)}->{output}", *(t.data for t in tensors))
    except ValueError as error:
        shapes = ", ".join(_dims(t.shape) for t in tensors)
        raise ShapeError(f"einsum: {equation!r} with {shapes}: {error}") from None
    arrays = [t.data for t in tensors]
    if any(np.may_share_memory(out, a) for a in arrays):  # a diagonal is NumPy's view
        out = np.array(out)
    needs = [t.requires_grad for t in tensors]

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        grads: list[np.ndarray | None] = []
        for k, (sub, t) in enumerate(zip(subs, tensors, strict=True)):
            if not needs[k]:  # (its ∂ would read the others only: none taken)
                grads.append(None)
                continue
            others = [s for j, s in enumerate(subs) if j != k]
            distinct = "".join(dict.fromkeys(sub))  # a repeated index once: the diagonal
            kept = "".join(c for c in distinct if c in output or any(c in s for s in others))
            terms = ",".join([output, *others])
            rest = [a for j, a in enumerate(arrays) if j != k]
            grad = np.einsum(f"{terms}->{kept}", g, *rest)
            # an index only this operand had was summed away: ∂/∂ is G along all of it
            sizes = dict(zip(sub, t.shape, strict=True))
            shape = tuple(sizes[c] for c in distinct)
            grad = np.broadcast_to(
                grad.reshape([sizes[c] if c in kept else 1 for c in distinct]), shape
            )
            if distinct == sub:
                grads.append(grad.astype(t.dtype))
                continue
            # X's diagonal received G: zero off it (each index's stride the sum of its dims')
            full = np.zeros(t.shape, t.dtype)
            strides = tuple(
                int(np.sum([full.strides[i] for i, d in enumerate(sub) if d == c], dtype=np.intp))
                for c in distinct
            )
            np.lib.stride_tricks.as_strided(full, shape, strides, writeable=True)[...] = grad
            grads.append(full)
        return tuple(grads)

    backward.subscripts = subs  # type: ignore[attr-defined]  # (summary counts its FLOPs)
    # an operand is read only for the others' gradients
    reads = tuple(any(n for j, n in enumerate(needs) if j != k) for k in range(len(needs)))
    return Tensor.from_op(np.asarray(out), "einsum", tuple(tensors), backward, reads_inputs=reads)


def _ellipsis_named(spec: str, operands: tuple, equation: str) -> tuple[str, tuple]:
    """An equation with ``...`` as one with letters of their own for the dims it stands
    for (right-aligned, broadcast as torch's: each operand expanded to the broadcast
    sizes, so that expand's rule sums its gradient back); an implicit output puts them
    first, as torch's; an explicit one without ``...`` sums them."""
    inputs_spec, arrow, output = spec.partition("->")
    subs = inputs_spec.split(",")
    if len(subs) != len(operands):
        raise ShapeError(f"einsum: {equation!r} names {len(subs)} operands; got {len(operands)}")
    for s in (*subs, output):
        if s.count(".") not in (0, 3) or (s.count(".") == 3 and "..." not in s):
            raise ConfigError(f"einsum: a '.' stands only in an ellipsis (...); got {s!r}")
    tensors = in_result_type(operands)
    spans = []
    for sub, t in zip(subs, tensors, strict=True):
        named = len(sub.replace("...", ""))
        if "..." not in sub:
            spans.append(None)
            continue
        if t.ndim < named:
            raise ShapeError(f"einsum: {sub!r} names {named} dims of a {t.ndim}-d operand")
        start = sub.index("...")
        spans.append(t.shape[start : start + t.ndim - named])
    shapes = [s for s in spans if s is not None]
    try:
        wide = np.broadcast_shapes(*shapes)
    except ValueError:
        raise ShapeError(f"einsum: the dims of {equation!r}'s ellipses do not broadcast") from None
    unused = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in spec]
    if len(unused) < len(wide):
        raise ConfigError(f"einsum: {equation!r} leaves too few letters for its ellipsis")
    letters = "".join(unused[: len(wide)])
    named_subs, expanded = [], []
    for sub, t, span in zip(subs, tensors, spans, strict=True):
        if span is None:
            named_subs.append(sub)
            expanded.append(t)
            continue
        start = sub.index("...")
        named_subs.append(sub.replace("...", letters[len(wide) - len(span) :]))
        target = (*t.shape[:start], *wide[len(wide) - len(span) :], *t.shape[start + len(span) :])
        expanded.append(t if t.shape == target else expand(t, *target))
    if arrow:
        output = output.replace("...", letters)
    else:
        once = "".join(c for c in "".join(named_subs) if c not in letters)
        output = letters + "".join(sorted(c for c in set(once) if once.count(c) == 1))
    return f"{','.join(named_subs)}->{output}", tuple(expanded)


# torch's in-place forms of the element-wise ops (t's own array changed, under no_grad or
# on a tensor that records nothing; refused while a graph through t is recorded)
for _name, _op, _call in [
    ("masked_fill", masked_fill, "masked_fill(mask, value)"),
    ("relu", relu, "relu()"),
    ("sigmoid", sigmoid, "sigmoid()"),
    ("tanh", tanh, "tanh()"),
    ("exp", exp, "exp()"),
    ("log", log, "log()"),
    ("sqrt", sqrt, "sqrt()"),
    ("abs", absolute, "abs()"),
    ("neg", negative, "neg()"),
    ("clamp_min", lambda t, min: clamp(t, min=min), "clamp_min(min)"),
    ("clamp_max", lambda t, max: clamp(t, max=max), "clamp_max(max)"),
    ("pow", power, "pow(exponent)"),
]:
    setattr(Tensor, f"{_name}_", _in_place_of(_name, _op, _call))


def in_place_function(name: str, op: Callable, call: str) -> Callable:
    """torch's F.name_(x, …) (and torch.name_): x's own values set to ``op(x, …)``'s, as
    ``x.relu_()`` sets them (recorded on a computed tensor, refused on a leaf that
    requires grad while a graph is recorded); an array is refused, having no version."""
    apply = _in_place_of(name, op, call)

    def function(input: object, *args: object, **kwargs: object) -> Tensor:
        if not isinstance(input, Tensor):
            raise ConfigError(
                f"{name}_: changes a wxb Tensor in place; got {type(input).__name__} "
                f"(use {name}(x) for a new tensor)"
            )
        return apply(input, *args, **kwargs)

    function.__name__ = function.__qualname__ = f"{name}_"
    return function


relu_ = in_place_function("relu", relu, "relu(x)")
elu_ = in_place_function("elu", lambda t, alpha=1.0: elu(t, alpha), "elu(x, alpha)")
selu_ = in_place_function("selu", lambda t: selu(t), "selu(x)")
celu_ = in_place_function("celu", lambda t, alpha=1.0: celu(t, alpha), "celu(x, alpha)")
leaky_relu_ = in_place_function(
    "leaky_relu", lambda t, negative_slope=0.01: leaky_relu(t, negative_slope), "leaky_relu(x)"
)
hardtanh_ = in_place_function(
    "hardtanh",
    lambda t, min_val=-1.0, max_val=1.0: hardtanh(t, min_val, max_val),
    "hardtanh(x, min_val, max_val)",
)
threshold_ = in_place_function(
    "threshold", lambda t, *args, **kwargs: threshold(t, *args, **kwargs), "threshold(x, …)"
)
rrelu_ = in_place_function(
    "rrelu",
    lambda t, lower=1.0 / 8, upper=1.0 / 3, training=False: rrelu(t, lower, upper, training),
    "rrelu(x, lower, upper, training)",
)


def narrow(a: Tensor, dim: object, start: object, length: object) -> Tensor:
    """``t.narrow(dim, start, length)``: the slice start:start + length along dim."""
    axis = _axis(dim, a.ndim, "narrow")
    if a.ndim == 0:  # (as torch's; a.shape[0] stopped at "tuple index out of range")
        raise ShapeError("narrow: a 0-d tensor has no dim to narrow")
    size = a.shape[axis]
    for value in (start, length):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ConfigError(f"narrow: start and length must be integers; got {value!r}")
    first = int(start) + size if start < 0 else int(start)
    if not 0 <= first <= size or length < 0 or first + length > size:
        raise ShapeError(f"narrow: {start}:{start}+{length} is outside dim {dim} of size {size}")
    return index(a, (*(slice(None),) * axis, slice(first, first + int(length))))


def movedim(a: Tensor, source: object, destination: object) -> Tensor:
    """``t.movedim(source, destination)``: dims moved, the others in their order."""
    sources = source if isinstance(source, (tuple, list)) else (source,)
    targets = destination if isinstance(destination, (tuple, list)) else (destination,)
    if len(sources) != len(targets):
        raise ShapeError(f"movedim: {len(sources)} source dims but {len(targets)} destinations")
    frm = [_axis(d, a.ndim, "movedim") for d in sources]
    to = [_axis(d, a.ndim, "movedim") for d in targets]
    if a.ndim == 0:  # dim 0 or -1 of a 0-d tensor, as torch's: itself (permute refused it)
        return reshape(a, ())
    order = [n for n in range(a.ndim) if n not in frm]
    for dst, src in sorted(zip(to, frm, strict=True)):
        order.insert(dst, src)
    return permute(a, *order)


Tensor.narrow = narrow
Tensor.movedim = movedim
Tensor.swapdims = lambda self, dim0, dim1: swap_axes(self, dim0, dim1)
Tensor.swapaxes = lambda self, axis0, axis1: swap_axes(self, axis0, axis1)  # (torch's names)
# np.moveaxis(t, 0, 1) and np.transpose(t, axes) as these ops, the graph kept: NumPy's own
# called t.transpose(axes), torch's two-dim transpose ("missing ... 'dim1'")
ARRAY_FUNCTION_OPS.update(
    {
        np.moveaxis: movedim,
        np.transpose: lambda a, axes=None: permute(
            a, tuple(reversed(range(a.ndim))) if axes is None else tuple(axes)
        ),
    }
)


# -- what a ported script reaches for next: torch's names, each beside its backward ------
def _whole_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{what} must be an integer; got {value!r}")
    return int(value)


def roll(a: Tensor, shifts: object, dims: object = None) -> Tensor:
    """``t.roll(shifts, dims)``: the values shifted cyclically along dims (None: the
    flattened tensor, its shape kept); ∂L/∂A is G rolled back."""
    many = isinstance(shifts, (tuple, list))
    steps = tuple(_whole_int(s, "roll: shifts") for s in (shifts if many else (shifts,)))
    if dims is None:
        if len(steps) != 1:
            raise ShapeError(f"roll: {len(steps)} shifts need as many dims; got dims=None")
        axes = None
    else:
        given = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
        if len(given) != len(steps):
            raise ShapeError(f"roll: {len(steps)} shifts and {len(given)} dims must align")
        if a.ndim == 0:
            raise ShapeError("roll: a 0-d tensor has no dim to roll along")
        axes = tuple(_axis(d, a.ndim, "roll") for d in given)
    shift = steps[0] if axes is None else steps
    back = -steps[0] if axes is None else tuple(-s for s in steps)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (np.roll(g, back, axes),)

    return Tensor.from_op(np.roll(a.data, shift, axes), "roll", (a,), backward, reads_inputs=False)


def _shared_by_ties(A: np.ndarray, value: np.ndarray, g: np.ndarray) -> np.ndarray:
    """G shared evenly by the elements equal to ``value`` (the NaNs, for a NaN): torch's
    rule for a max, min or median over everything."""
    hit = np.isnan(A) if np.isnan(value) else A == value
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(hit, g / hit.sum(), 0).astype(A.dtype, copy=False)


def _selected(a: Tensor, chosen: np.ndarray, axis: int, keepdim: bool, name: str):
    """(values, indices) of the elements ``chosen`` (kept dims) names along ``axis``; each
    value's gradient goes to its element."""
    found = _taken(a, chosen, axis, name)
    if not keepdim:
        found, chosen = reshape(found, np.squeeze(chosen, axis).shape), np.squeeze(chosen, axis)
    return ValuesIndices(found, marks(chosen.astype(np.int64)))


def _kth_along(A: np.ndarray, axis: int, k: np.ndarray | int) -> np.ndarray:
    """The index of the k-th smallest (from 0) along axis, NaN above every number and
    ties in their first order (kept dims)."""
    order = _order(A, axis, False)
    return np.take(order, [k], axis=axis) if np.ndim(k) == 0 else np.take_along_axis(order, k, axis)


def median(a: Tensor, dim: object = None, keepdim: bool = False):
    """``t.median()``: the lower of the two middle values (torch's; NaN where one is NaN),
    its gradient shared evenly by the elements equal to it, as torch's. ``t.median(dim)``:
    (values, indices), each value's gradient to its index; of tied values the first in
    sorted order (torch leaves that choice to its kernel)."""
    A = a.data
    if dim is None:
        flat = A.reshape(-1)
        if flat.size == 0:
            value = np.asarray(np.nan, dtype=A.dtype)  # as torch's
        elif np.isnan(flat).any():
            value = np.asarray(np.nan, dtype=A.dtype)
        else:
            value = np.asarray(flat[_kth_along(flat, 0, (flat.size - 1) // 2)[0]])

        def backward_all(g: np.ndarray) -> tuple[np.ndarray]:
            return (_shared_by_ties(A, value, g),)

        found = Tensor.from_op(value, "median", (a,), backward_all, saves_output=True)
        return reshape(found, (1,) * A.ndim) if _flag(keepdim, "median") else found
    keep = _flag(keepdim, "median")
    axis = _axis(dim, A.ndim, "median")
    if A.ndim == 0:
        return ValuesIndices(clone(a), marks(np.zeros((), dtype=np.int64)))
    n = A.shape[axis]
    if n == 0:
        raise ShapeError(f"median: dim {dim} has no values to take the median of")
    chosen = _kth_along(A, axis, (n - 1) // 2)
    nan = np.isnan(A)
    first_nan = np.argmax(nan, axis=axis, keepdims=True)
    chosen = np.where(nan.any(axis=axis, keepdims=True), first_nan, chosen)  # NaN, as torch's
    return _selected(a, chosen, axis, keep, "median")


def kthvalue(a: Tensor, k: object, dim: object = -1, keepdim: bool = False):
    """``t.kthvalue(k, dim=-1)``: the k-th smallest along dim (k from 1), NaN above every
    number, as (values, indices); each value's gradient to its index (of ties the first
    in sorted order: torch leaves that choice to its kernel)."""
    keep = _flag(keepdim, "kthvalue")
    axis = _axis(dim, a.ndim, "kthvalue")
    n = a.shape[axis] if a.ndim else 1
    k = _whole_int(k, "kthvalue: k")
    if not 1 <= k <= n:
        raise ShapeError(f"kthvalue: k must be from 1 to {n} (dim {dim}'s size); got {k}")
    if a.ndim == 0:
        return ValuesIndices(clone(a), marks(np.zeros((), dtype=np.int64)))
    return _selected(a, _kth_along(a.data, axis, k - 1), axis, keep, "kthvalue")


def running_extreme(a: Tensor, dim: object, largest: bool) -> ValuesIndices:
    """``t.cummax(dim)`` / ``cummin``: the largest (smallest) so far, as (values, indices);
    a tie takes the later index and a NaN stays (the latest NaN's index), as torch's; each
    value's gradient goes to its index."""
    name = "cummax" if largest else "cummin"
    axis = _axis(dim, a.ndim, name)
    if a.ndim == 0:
        return ValuesIndices(clone(a), marks(np.zeros((), dtype=np.int64)))
    moved = np.moveaxis(a.data, axis, 0)
    indices = np.zeros(moved.shape, dtype=np.int64)
    if moved.shape[0]:
        best, place = moved[0].copy(), np.zeros(moved.shape[1:], dtype=np.int64)
        for i in range(moved.shape[0]):
            x = moved[i]
            beats = x >= best if largest else x <= best
            take = np.isnan(x) | (~np.isnan(best) & beats)
            best, place = np.where(take, x, best), np.where(take, i, place)
            indices[i] = place
    chosen = np.moveaxis(indices, 0, axis)
    return ValuesIndices(_taken(a, chosen, axis, name), marks(chosen))


def diagonal(a: Tensor, offset: object = 0, dim1: object = 0, dim2: object = 1) -> Tensor:
    """``t.diagonal(offset, dim1, dim2)``: the diagonal of the matrices over dim1 and dim2,
    as the last dim, a view as torch's (``m.diagonal().fill_(0)`` changes m); ∂L/∂A is G
    on that diagonal, 0 elsewhere."""
    offset = _whole_int(offset, "diagonal: offset")
    first, second = _axis(dim1, a.ndim, "diagonal"), _axis(dim2, a.ndim, "diagonal")
    if a.ndim < 2:
        raise ShapeError(f"diagonal: needs at least 2 dimensions; got {_dims(a.shape)}")
    if first == second:
        raise ShapeError(f"diagonal: dim1 and dim2 name one dim ({dim1}, {dim2})")
    moved_shape = np.moveaxis(a.data, (first, second), (-2, -1)).shape
    rows, cols = moved_shape[-2:]
    length = max(0, min(rows + min(offset, 0), cols - max(offset, 0)))
    i = np.arange(length) - min(offset, 0)
    j = np.arange(length) + max(offset, 0)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        grad = np.zeros(moved_shape, dtype=g.dtype)
        grad[..., i, j] = g
        return (np.moveaxis(grad, (-2, -1), (first, second)),)

    out = np.diagonal(a.data, offset, first, second)
    out.flags.writeable = a.data.flags.writeable  # (NumPy's is read-only: torch's is not)
    return _view_of(a, Tensor.from_op(out, "diagonal", (a,), backward, reads_inputs=False))


def diag(a: Tensor, diagonal_: object = 0) -> Tensor:
    """``t.diag(diagonal)``: of a vector, the square matrix with it on that diagonal; of a
    matrix, that diagonal, a copy (as torch's; other shapes refused)."""
    offset = _whole_int(diagonal_, "diag: diagonal")
    if a.ndim == 2:
        return clone(diagonal(a, offset))
    if a.ndim != 1:
        raise ShapeError(f"diag: takes a vector or a matrix; got {_dims(a.shape)}")

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (np.diagonal(g, offset).copy(),)  # the diagonal it went to

    return Tensor.from_op(np.diag(a.data, offset), "diag", (a,), backward, reads_inputs=False)


def trace(a: Tensor) -> Tensor:
    """``t.trace()``: Σ of a matrix's diagonal (Σ and diagonal's rules)."""
    if a.ndim != 2:
        raise ShapeError(f"trace: takes a matrix; got {_dims(a.shape)}")
    return sum(diagonal(a))


def lerp(start: object, end: object, weight: object) -> Tensor:
    """``torch.lerp(start, end, weight)``: start + w·(end − start), taken as torch takes it
    (end − (end − start)·(1 − w) where |w| ≥ ½, exact at w = 1). ∂/∂start = 1 − w,
    ∂/∂end = w, ∂/∂w = end − start."""
    start, end, w = in_result_type((start, end, weight))
    S, E, W = start.data, end.data, w.data
    try:
        shape = np.broadcast_shapes(S.shape, E.shape, W.shape)
    except ValueError:
        raise ShapeError(
            f"lerp: shapes {start.shape}, {end.shape} and weight {w.shape} do not broadcast"
        ) from None
    diff = E - S
    out = np.where(np.abs(W) < 0.5, S + W * diff, E - diff * (1 - W))
    out = np.broadcast_to(out, shape).astype(S.dtype, copy=False)
    needs = [t.requires_grad for t in (start, end, w)]

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        return (
            _unbroadcast(g * (1 - W), S.shape) if needs[0] else None,
            _unbroadcast(g * W, E.shape) if needs[1] else None,
            _unbroadcast(g * diff, W.shape) if needs[2] else None,
        )

    # start and end are read for ∂/∂w alone (as E − S, held), w for the other two
    reads = (False, False, needs[0] or needs[1])
    return Tensor.from_op(np.array(out), "lerp", (start, end, w), backward, reads_inputs=reads)


def fmod(a: object, b: object) -> Tensor:
    """``torch.fmod(a, b)``: C's remainder, A − B·trunc(A/B), with the sign of A (``%``,
    ``remainder``, takes B's). ∂L/∂A = G, ∂L/∂B = −G·trunc(A/B) (torch's rule)."""
    return _remainder_of(a, b, "fmod", np.fmod, np.trunc)


def cumprod(a: Tensor, dim: object) -> Tensor:
    """Running products along ``dim`` (float32 carried in float64, as torch's CPU one).
    ∂L/∂a_i = P_{i−1}·R_i, P the running product before i and R_i = g_i + a_{i+1}·R_{i+1}
    (Σ_{j ≥ i} g_j·Π_{i<k≤j} a_k): exact where some a are 0, where out/a_i is 0/0."""
    axis = _axis(dim, a.ndim, "cumprod")
    if a.ndim == 0:
        return clone(a)
    A = a.data
    wide = np.float64 if A.dtype == np.float32 else A.dtype
    out = np.cumprod(A, axis=axis, dtype=wide).astype(A.dtype, copy=False)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        x, gm = np.moveaxis(A.astype(wide), axis, 0), np.moveaxis(g.astype(wide), axis, 0)
        n = x.shape[0]
        before = np.cumprod(np.concatenate([np.ones_like(x[:1]), x[:-1]]), axis=0)
        rest = np.empty_like(gm)
        if n:
            rest[-1] = gm[-1]
        for i in range(n - 2, -1, -1):
            rest[i] = gm[i] + x[i + 1] * rest[i + 1]
        return (np.moveaxis(before * rest, 0, axis).astype(A.dtype, copy=False),)

    return Tensor.from_op(out, "cumprod", (a,), backward)


def logcumsumexp(a: Tensor, dim: object) -> Tensor:
    """log Σ_{j ≤ i} exp(a_j) along ``dim`` (NumPy's logaddexp, no overflow).
    ∂L/∂a_j = Σ_{i ≥ j} g_i·exp(a_j − out_i), summed in the log domain for the positive
    and the negative g apart (torch's way: neither exp(−out) nor exp(a) overflows)."""
    axis = _axis(dim, a.ndim, "logcumsumexp")
    if a.ndim == 0:
        return clone(a)
    A = a.data
    with np.errstate(invalid="ignore"):  # (a NaN gives NaN, as torch's, unwarned)
        out = np.logaddexp.accumulate(A, axis=axis) if A.size else A.copy()

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        x, o, gw = (v.astype(np.float64) for v in (A, out, g))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            grad = np.zeros_like(x)
            for sign in (1.0, -1.0):
                logs = np.log(np.maximum(sign * gw, 0)) - o
                tail = np.flip(np.logaddexp.accumulate(np.flip(logs, axis), axis=axis), axis)
                grad += sign * np.exp(x + tail)
        return (grad.astype(A.dtype, copy=False),)

    return Tensor.from_op(out, "logcumsumexp", (a,), backward, saves_output=True)


_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def quantile(
    a: Tensor,
    q: object,
    dim: object = None,
    keepdim: bool = False,
    *,
    interpolation: str = "linear",
    ignore_nan: bool = False,
) -> Tensor:
    """``t.quantile(q, dim=None, keepdim=False, interpolation='linear')`` (``nanquantile``
    with ``ignore_nan``): torch's way, the sorted values (NaN last, ties in their first
    order) at rank q·(n − 1), between the two neighbours by ``interpolation``; a row
    holding NaN gives NaN (nanquantile: NaN of a row of NaNs only). q a number, or a 1-D
    list or tensor, whose values come first in the result. The gradient goes to the two
    neighbours, 1 − w and w (lerp's)."""
    name = "nanquantile" if ignore_nan else "quantile"
    keep = _flag(keepdim, name)
    if interpolation not in _INTERPOLATIONS:
        raise ConfigError(
            f"{name}: interpolation must be one of {', '.join(_INTERPOLATIONS)}; got "
            f"{interpolation!r}"
        )
    values = q.data if isinstance(q, Tensor) else q
    if isinstance(values, bool) or (np.ndim(values) == 0 and not _is_number(values)):
        raise ConfigError(f"{name}: q must be a number or a 1-D tensor of them; got {q!r}")
    qs = np.asarray(values, dtype=np.float64)
    if qs.ndim > 1:
        raise ShapeError(f"{name}: q must be a number or 1-D; got shape {qs.shape}")
    if qs.size and not ((qs >= 0) & (qs <= 1)).all():
        raise ConfigError(f"{name}: q must be in [0, 1]; got {values!r}")
    if a.data.size == 0:
        raise ShapeError(f"{name}: the tensor holds no values (shape {a.shape})")
    if dim is None:
        rows, axis = reshape(a, (-1,)), None
    else:
        axis = _axis(dim, a.ndim, name)
        rows = movedim(a, axis, -1) if a.ndim else reshape(a, (1,))
    found = _quantile_last(rows, qs.reshape(-1).astype(a.dtype), interpolation, ignore_nan)
    # found: (*rows' other dims, len(q)); q's dim goes first, the reduced one kept as 1
    found = movedim(found, -1, 0)
    if keep:
        if axis is None:
            shape = (found.shape[0], *(1,) * a.ndim)
        elif a.ndim:
            shape = (*found.shape[: axis + 1], 1, *found.shape[axis + 1 :])
        else:
            shape = found.shape
        found = reshape(found, shape)
    return reshape(found, found.shape[1:]) if qs.ndim == 0 else found


def _quantile_last(rows: Tensor, qs: np.ndarray, how: str, ignore_nan: bool) -> Tensor:
    """The quantiles qs of each row along the last dim, shape (..., len(qs))."""
    A = rows.data
    n = A.shape[-1]
    order = _order(A, A.ndim - 1, False)
    sorted_ = np.take_along_axis(A, order, -1)
    nan = np.isnan(sorted_)
    if ignore_nan:
        counts = (~nan).sum(-1, keepdims=True)
        ranks = qs * (counts - 1).astype(A.dtype)
        ranks = np.where(ranks < 0, n - 1, ranks)  # a row of NaNs: its NaN
    else:
        ranks = np.broadcast_to(qs * A.dtype.type(n - 1), (*A.shape[:-1], qs.size))
        ranks = np.where(nan.any(-1, keepdims=True), n - 1, ranks)  # NaN in it: NaN
    ranks = {"lower": np.floor, "higher": np.ceil, "nearest": np.round}.get(how, np.asarray)(ranks)
    below = np.floor(ranks).astype(np.intp)
    above = np.ceil(ranks).astype(np.intp)
    if how == "midpoint":
        w = np.full(ranks.shape, 0.5, dtype=A.dtype)
    else:
        w = (ranks - below).astype(A.dtype)
    low = np.take_along_axis(order, below, -1)
    high = np.take_along_axis(order, above, -1)
    L, H = np.take_along_axis(A, low, -1), np.take_along_axis(A, high, -1)
    out = np.where(w < 0.5, L + w * (H - L), H - (H - L) * (1 - w)).astype(A.dtype)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        grad = np.zeros(A.shape, dtype=g.dtype)
        np.add.at(grad, _along(low, A.ndim - 1), g * (1 - w))
        np.add.at(grad, _along(high, A.ndim - 1), g * w)
        return (grad,)

    return keep_values(Tensor.from_op(out, "quantile", (rows,), backward, reads_inputs=False))


def nan_to_num(a: Tensor, nan: object = 0.0, posinf: object = None, neginf: object = None):
    """``t.nan_to_num(nan=0.0, posinf=None, neginf=None)``: NaN, +inf and −inf replaced
    (the infinities by the dtype's largest and smallest finite values unless given);
    ∂L/∂A is G where A was finite, 0 where a value was replaced (torch's rule)."""
    for value, what in ((nan, "nan"), (posinf, "posinf"), (neginf, "neginf")):
        if value is not None and (isinstance(value, bool) or not _is_number(value)):
            raise ConfigError(f"nan_to_num: {what} must be a number; got {value!r}")
    A = a.data
    info = np.finfo(A.dtype) if A.dtype.kind == "f" else None
    with np.errstate(over="ignore"):
        out = np.nan_to_num(
            A,
            nan=0.0 if nan is None else nan,
            posinf=posinf if posinf is not None or info is None else info.max,
            neginf=neginf if neginf is not None or info is None else info.min,
        )

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (np.where(np.isfinite(A), g, 0).astype(g.dtype, copy=False),)

    return Tensor.from_op(np.asarray(out, dtype=A.dtype), "nan_to_num", (a,), backward)


def _scaled_by(a: Tensor, factor: object, what: str) -> Tensor:
    """a·factor, exactly 0 for a factor 0 (torch's beta=0: a NaN or inf in a is not
    read), the gradient G·factor."""
    if isinstance(factor, bool) or not _is_number(factor):
        raise ConfigError(f"{what} must be a number; got {factor!r}")
    if factor == 1:
        return a
    A = a.data
    scale = A.dtype.type(factor)
    out = np.zeros_like(A) if factor == 0 else A * scale

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g * scale,)

    return Tensor.from_op(out, "scale", (a,), backward, reads_inputs=False)


def _add_products(input: object, first: object, second: object, beta: object, alpha: object,
                  name: str, dims: int) -> Tensor:  # fmt: skip
    """beta·input + alpha·(first @ second), torch's addmm (dims 2) and baddbmm (dims 3):
    input broadcast to the product's shape, the products matmul's."""
    c, x, y = in_result_type((input, first, second))
    for what, t in (("mat1" if dims == 2 else "batch1", x), ("mat2" if dims == 2 else "batch2", y)):
        if t.ndim != dims:
            kind = "a matrix" if dims == 2 else "a 3-d tensor"
            raise ShapeError(f"{name}: {what} must be {kind}; got {_dims(t.shape)}")
    if dims == 3 and x.shape[0] != y.shape[0]:
        raise ShapeError(f"{name}: batch sizes {x.shape[0]} and {y.shape[0]} differ")
    if x.shape[-1] != y.shape[-2]:
        raise ShapeError(f"{name}: {_dims(x.shape)} and {_dims(y.shape)} do not multiply")
    product = _scaled_by(matmul(x, y), alpha, f"{name}: alpha")
    try:
        fits = np.broadcast_shapes(c.shape, product.shape) == product.shape
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(
            f"{name}: input of shape {c.shape} does not broadcast to the product's {product.shape}"
        )
    return add(_scaled_by(c, beta, f"{name}: beta"), product)


def addmm(input: object, mat1: object, mat2: object, *, beta: object = 1, alpha: object = 1):
    """``torch.addmm(input, mat1, mat2, beta=1, alpha=1)``: β·input + α·(mat1 @ mat2)."""
    return _add_products(input, mat1, mat2, beta, alpha, "addmm", 2)


def baddbmm(input: object, batch1: object, batch2: object, *, beta: object = 1, alpha: object = 1):
    """``torch.baddbmm(input, batch1, batch2, beta=1, alpha=1)``: β·input + α·(b1 @ b2)."""
    return _add_products(input, batch1, batch2, beta, alpha, "baddbmm", 3)


def unique(
    a: Tensor,
    sorted: bool = True,
    return_inverse: bool = False,
    return_counts: bool = False,
    dim: object = None,
) -> Tensor | tuple:
    """``torch.unique``: the distinct values (in ascending order whatever ``sorted`` says;
    torch's unsorted order is its kernel's), each NaN one of its own, as torch's; with
    ``dim``, the distinct slices along it. ``return_inverse``: where each value (slice)
    went, int64; ``return_counts``: how often each came. No derivative, as torch's: a
    backward through it is refused."""
    A = a.data
    if dim is None:
        values, inverse, counts = np.unique(
            A.reshape(-1), return_inverse=True, return_counts=True, equal_nan=False
        )
        inverse = inverse.reshape(A.shape)
    else:
        axis = _axis(dim, A.ndim, "unique")
        if A.ndim == 0:
            raise ShapeError("unique: a 0-d tensor has no dim to take slices along")
        values, inverse, counts = np.unique(
            A, return_inverse=True, return_counts=True, axis=axis, equal_nan=False
        )
        inverse = inverse.reshape(-1)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        raise TrainingError(
            "backward() through unique: it has no derivative, as in PyTorch; detach() its "
            "input, or index the tensor with return_inverse's indices"
        )

    out = Tensor.from_op(values, "unique", (a,), backward, reads_inputs=False)
    extra = []
    if _flag(return_inverse, "unique: return_inverse"):
        extra.append(marks(inverse.astype(np.int64)))
    if _flag(return_counts, "unique: return_counts"):
        extra.append(marks(counts.astype(np.int64)))
    return (out, *extra) if extra else out


_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(input: object, pad: object, mode: str = "constant", value: object = None) -> Tensor:
    """``F.pad(x, pad, mode='constant', value=0)``: the last dims padded, (left, right) of
    the last first, then of the one before, …; a negative pad crops. reflect, replicate
    and circular as torch's (their number of padded dims by the tensor's: 1 of 2-d or 3-d,
    2 of 3-d or 4-d, 3 of 4-d or 5-d). ∂L/∂x sums G back onto the places each value was
    read from (a constant's places give none)."""
    x = as_tensor(input)
    if mode not in _PAD_MODES:
        raise ConfigError(f"pad: mode must be one of {', '.join(_PAD_MODES)}; got {mode!r}")
    if not isinstance(pad, (tuple, list)):
        raise ConfigError(f"pad: pad must be a tuple of integers; got {pad!r}")
    sizes = [_whole_int(p, "pad: each pad") for p in pad]
    if len(sizes) % 2:
        raise ShapeError(f"pad: pad's length must be even (left, right per dim); got {len(sizes)}")
    padded = len(sizes) // 2
    if padded > x.ndim:
        raise ShapeError(f"pad: {len(sizes)} pads name {padded} dims of a {x.ndim}-d tensor")
    if mode != "constant":
        if value is not None and value != 0:
            raise ConfigError(f"pad: mode {mode!r} takes no value")
        if padded not in (1, 2, 3) or x.ndim not in (padded + 1, padded + 2):
            raise ShapeError(
                f"pad: mode {mode!r} pads the last 1, 2 or 3 dims of a tensor with 1 or 2 "
                f"dims before them; got {len(sizes)} pads for a {x.ndim}-d tensor"
            )
    elif value is not None and (isinstance(value, bool) or not _is_number(value)):
        raise ConfigError(f"pad: value must be a number; got {value!r}")
    out = x
    for k in range(padded):
        out = _pad_axis(out, x.ndim - 1 - k, sizes[2 * k], sizes[2 * k + 1], mode, value or 0)
    return out


def _pad_axis(a: Tensor, axis: int, left: int, right: int, mode: str, value: object) -> Tensor:
    n = a.shape[axis]
    # torch's constant and circular pads crop first, as narrow; reflect and replicate read
    # each output place's place in the input (−left on), which may lie past a crop
    lasting = mode in ("reflect", "replicate")
    kept = n + left + right if lasting else n + min(left, 0) + min(right, 0)
    if kept < lasting:  # (torch's 1-d reflect and replicate refuse an empty output too)
        raise ShapeError(
            f"pad: ({left}, {right}) of dim {axis}, of size {n}, leaves {kept} values"
            + (f"; {mode} needs at least 1" if lasting else "")
        )
    if mode == "circular" and min(left, right) < 0:  # torch's crops, then wraps what is left
        if max(left, right) > kept:  # (torch's copy there reads places it is writing)
            raise ShapeError(
                f"pad: circular's pads ({left}, {right}) wrap more than once around the "
                f"{kept} values of dim {axis} left after the crop"
            )
        a = _pad_axis(a, axis, min(left, 0), min(right, 0), "constant", value)
        return _pad_axis(a, axis, max(left, 0), max(right, 0), mode, value)
    where_ = np.arange(-left, n + right)  # each output place's place in the input
    if mode == "reflect":
        if max(left, right) >= n:
            raise ShapeError(
                f"pad: reflect's pads ({left}, {right}) must be below dim {axis}'s size {n}"
            )
        where_ = np.abs(where_)
        where_ = np.where(where_ >= n, 2 * (n - 1) - where_, where_)
    elif mode == "replicate":
        if n == 0 and where_.size:
            raise ShapeError(f"pad: replicate has no value to repeat in dim {axis} of size 0")
        where_ = np.clip(where_, 0, n - 1)
    elif mode == "circular":
        if max(left, right) > n:
            raise ShapeError(
                f"pad: circular's pads ({left}, {right}) must be at most dim {axis}'s size {n}"
            )
        where_ = where_ % n if n else where_
    inside = (where_ >= 0) & (where_ < n)
    taken = np.where(inside, where_, 0)
    A = a.data
    out = (
        np.take(A, taken, axis=axis)
        if n
        else np.zeros((*A.shape[:axis], where_.size, *A.shape[axis + 1 :]), dtype=A.dtype)
    )
    shape = [1] * A.ndim
    shape[axis] = where_.size
    keep = inside.reshape(shape)
    if not inside.all():
        out = np.where(keep, out, A.dtype.type(value)).astype(A.dtype, copy=False)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        grad = np.zeros(A.shape, dtype=g.dtype)
        place = (slice(None),) * axis + (taken[inside],)
        np.add.at(grad, place, np.compress(inside, g, axis=axis))
        return (grad,)

    return Tensor.from_op(out, "pad", (a,), backward, reads_inputs=False)


def _floored_value(a: Tensor, eps: float) -> Tensor:
    """max(a, eps) whose gradient is G wherever (torch's clamp_min_ of a norm under
    no_grad in cosine_similarity: the graph sees no clamp)."""
    A = a.data

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g,)

    out = np.maximum(A, A.dtype.type(eps))
    return Tensor.from_op(out, "clamp_min (no_grad)", (a,), backward, reads_inputs=False)


def cosine_similarity(x1: object, x2: object, dim: object = 1, eps: object = 1e-8) -> Tensor:
    """``F.cosine_similarity(x1, x2, dim=1, eps=1e-8)`` as torch's: Σ (x1/‖x1‖)·(x2/‖x2‖)
    along dim, x1 and x2 broadcast, each norm held at least eps (by a clamp the gradient
    does not see, as torch's)."""
    if isinstance(eps, bool) or not _is_number(eps):
        raise ConfigError(f"cosine_similarity: eps must be a number; got {eps!r}")
    a, b = in_result_type((x1, x2))
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(
            f"cosine_similarity: shapes {a.shape} and {b.shape} do not broadcast"
        ) from None
    a = a if a.shape == shape else expand(a, *shape)
    b = b if b.shape == shape else expand(b, *shape)
    axis = _axis(dim, len(shape), "cosine_similarity")
    na = _floored_value(norm(a, 2, axis, keepdim=True), float(eps))
    nb = _floored_value(norm(b, 2, axis, keepdim=True), float(eps))
    return sum(mul(div(a, na), div(b, nb)), axis)


def pairwise_distance(
    x1: object, x2: object, p: object = 2.0, eps: object = 1e-6, keepdim: bool = False
) -> Tensor:
    """``F.pairwise_distance(x1, x2, p=2, eps=1e-6)`` as torch's: ‖x1 − x2 + eps‖_p over
    the last dim (norm's rules: p ≥ 0 or inf)."""
    if isinstance(eps, bool) or not _is_number(eps):
        raise ConfigError(f"pairwise_distance: eps must be a number; got {eps!r}")
    a, b = in_result_type((x1, x2))
    last = max(a.ndim, b.ndim) - 1
    difference = add(sub(a, b), eps)
    if last < 0:
        return norm(difference, p, None, keepdim=False)
    return norm(difference, p, last, keepdim=keepdim)


def cdist(x1: object, x2: object, p: object = 2.0, compute_mode: object = None) -> Tensor:
    """``torch.cdist(x1, x2, p=2)``: ‖x1_i − x2_j‖_p for each row i of x1 (…, P, M) and j of
    x2 (…, R, M), shape (…, P, R), the leading dims broadcast (norm's rules: p ≥ 0 or inf,
    0 at a zero distance; the differences taken one by one, never ‖a‖² + ‖b‖² − 2a·b)."""
    a, b = in_result_type((x1, x2))
    for what, t in (("x1", a), ("x2", b)):
        if t.ndim < 2:
            raise ShapeError(
                f"cdist: {what} must have at least 2 dims (rows, columns); got {_dims(t.shape)}"
            )
    if a.shape[-1] != b.shape[-1]:
        raise ShapeError(
            f"cdist: x1 and x2 need as many columns; got {a.shape[-1]} and {b.shape[-1]}"
        )
    rows = reshape(a, (*a.shape[:-1], 1, a.shape[-1]))
    columns = reshape(b, (*b.shape[:-2], 1, *b.shape[-2:]))
    try:
        difference = sub(rows, columns)
    except ShapeError:
        raise ShapeError(f"cdist: batch dims of {a.shape} and {b.shape} do not broadcast") from None
    return norm(difference, p, -1)


Tensor.roll = lambda self, shifts, dims=None: roll(self, shifts, dims)
Tensor.median = lambda self, dim=None, keepdim=False: median(self, dim, keepdim)
Tensor.kthvalue = lambda self, k, dim=-1, keepdim=False: kthvalue(self, k, dim, keepdim)
Tensor.cummax = lambda self, dim: running_extreme(self, dim, largest=True)
Tensor.cummin = lambda self, dim: running_extreme(self, dim, largest=False)
Tensor.diagonal = lambda self, offset=0, dim1=0, dim2=1: diagonal(self, offset, dim1, dim2)
Tensor.diag = lambda self, diagonal=0: diag(self, diagonal)
Tensor.trace = trace
Tensor.lerp = lambda self, end, weight: lerp(self, end, weight)
# an EMA's teacher.lerp_(student, 1 − decay) under no_grad, torch's idiom (timm's, swa_utils')
Tensor.lerp_ = _in_place_of("lerp", lerp, "lerp(end, weight)")
Tensor.fmod = lambda self, other: fmod(self, other)
Tensor.cumprod = lambda self, dim, dtype=None: cumprod(_cast(self, dtype), dim)
Tensor.logcumsumexp = lambda self, dim: logcumsumexp(self, dim)
Tensor.quantile = lambda self, q, dim=None, keepdim=False, *, interpolation="linear": quantile(
    self, q, dim, keepdim, interpolation=interpolation
)
Tensor.nanquantile = lambda self, q, dim=None, keepdim=False, *, interpolation="linear": quantile(
    self, q, dim, keepdim, interpolation=interpolation, ignore_nan=True
)
Tensor.nan_to_num = lambda self, nan=0.0, posinf=None, neginf=None: nan_to_num(
    self, nan, posinf, neginf
)
Tensor.addmm = lambda self, mat1, mat2, *, beta=1, alpha=1: addmm(
    self, mat1, mat2, beta=beta, alpha=alpha
)
Tensor.baddbmm = lambda self, batch1, batch2, *, beta=1, alpha=1: baddbmm(
    self, batch1, batch2, beta=beta, alpha=alpha
)
Tensor.unique = unique
Tensor.where = lambda self, condition, other: where(condition, self, other)
