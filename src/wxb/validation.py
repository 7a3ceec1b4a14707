"""Validation at the edges: refuse bad input before any work, saying what and where.

Users hand over rows: X of shape (n_samples, n_features), as in NumPy,
scikit-learn and PyTorch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import numpy as np

from wxb.errors import ConfigError, DataError
from wxb.tensor import Tensor, refuse_masked

# ---------------------------------------------------------------------------------
NOT_GIVEN: object = type("NotGiven", (), {"__repr__": lambda self: "NOT_GIVEN"})()


def keras_rows(X: object, x: object, where: str) -> object:
    """The rows given as X, or under Keras's name x= (``fit(model, x=X, y=y)`` stopped on
    Python's "missing 1 required positional argument: 'X'"); both at once refused."""
    if x is NOT_GIVEN:
        if X is NOT_GIVEN:
            raise TypeError(f"{where}() missing 1 required positional argument: 'X'")
        return X
    if X is not NOT_GIVEN:
        raise ConfigError(f"{where} takes the rows once: X and x= (Keras's name) were both given")
    return x


def _at_kerass_default(value: object, default: object) -> bool:
    """Whether ``value`` is Keras's ``default`` for its argument: None (or, for a list
    argument such as ``callbacks``, an empty list, which Keras takes as none), False, or a
    whole number (not a bool: ``workers=True`` is no count)."""
    if default is None:
        return value is None
    if default == ():  # a list of callbacks: none
        return value is None or (isinstance(value, (list, tuple)) and len(value) == 0)
    if isinstance(default, bool):
        return isinstance(value, (bool, np.bool_)) and bool(value) is default
    whole = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    return whole and value == default


def refuse_keras_arguments(
    options: dict[str, object],
    where: str,
    ways: dict[str, str],
    defaults: dict[str, object] | None = None,
    *,
    called: str,
) -> None:
    """Keras's arguments wxb has not, given to ``where`` (``wxb.fit``, ``Dense``, …):
    taken at Keras's default (``defaults``: a script's explicit ``class_weight=None``,
    ``initial_epoch=0``, ``Dense(…, activation=None)`` asks for what wxb does), else
    refused with wxb's way (``ways``; Python's bare "unexpected keyword argument" named
    none); a name Keras has not, as Python says it of ``called`` (``fit``,
    ``Dense.__init__``)."""
    for name, value in options.items():
        if defaults and name in defaults and _at_kerass_default(value, defaults[name]):
            continue
        way = ways.get(name)
        if way is None:
            raise TypeError(f"{called}() got an unexpected keyword argument {name!r}")
        raise ConfigError(f"{where} takes no {name}= (Keras's): {way}")


# ---------------------------------------------------------------------------------
def dense_if_sparse(data: object) -> object:
    """A SciPy sparse matrix or array as a dense ndarray, whole and in its own dtype
    (scikit-learn's MLP takes sparse X; wxb's layers compute on dense rows), and a pandas
    DataFrame's or Series' sparse columns as dense ones; anything else as it is. NumPy
    read a sparse matrix as a 0-d array of objects ("holds object values")."""
    if isinstance(data, np.ndarray):  # (the common case, once a forward: nothing to ask)
        return data
    if type(data).__module__.startswith("scipy.sparse") and hasattr(data, "toarray"):
        return data.toarray()
    if type(data).__module__.split(".")[0] == "pandas":  # pd.get_dummies(..., sparse=True)
        dtypes = getattr(data, "dtypes", None)  # ("Sparse pandas data not supported")
        if isinstance(getattr(data, "dtype", None), _pandas_sparse()):  # a Series
            return data.astype(data.dtype.subtype)
        if hasattr(dtypes, "items"):  # a DataFrame's (a Series' dtypes is its one dtype)
            sparse = {c: k.subtype for c, k in dtypes.items() if isinstance(k, _pandas_sparse())}
            return data.astype(sparse) if sparse else data
    return data


class SparseRows:
    """A SciPy sparse X (CSR, in the model's dtype) that fit, evaluate and predict read a
    batch at a time: where the model's planned stack begins with a Dense, its CSR rows go
    to it as they are (Z = X·Wᵀ and ∂L/∂W = δᵀ·X sparse × dense, as scikit-learn's MLP
    computes them); elsewhere rows come out dense only when a batch takes them (``np.take``
    calls ``take``). Either way a TF-IDF matrix whose dense form would not fit in memory
    trains. A slice (and ``picked``) stays sparse; ``np.asarray`` of it is dense."""

    ndim = 2

    def __init__(self, matrix: object, dtype: np.dtype) -> None:
        self.matrix, self.dtype, self.shape = matrix, np.dtype(dtype), matrix.shape

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def nbytes(self) -> int:  # the dense rows' (the checkpoints' digest blocks count them)
        return self.size * self.dtype.itemsize

    def __getitem__(self, key: object) -> object:
        if isinstance(key, slice):
            return SparseRows(self.matrix[key], self.dtype)
        return self.take(key)

    def picked(self, indices: object) -> SparseRows:
        """The rows at ``indices``, still sparse (a chunk for a first Dense to multiply)."""
        return SparseRows(self.matrix[np.asarray(indices)], self.dtype)

    def take(self, indices: object, axis: int = 0, out=None, mode: str = "raise") -> np.ndarray:
        if axis != 0:
            raise ValueError("SparseRows.take takes rows (axis=0)")
        rows = self.matrix[np.asarray(indices)].toarray()
        if out is None:
            return rows
        out[...] = rows
        return out

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        dense = self.matrix.toarray()
        return dense if dtype is None else dense.astype(dtype, copy=False)

    def copy(self) -> np.ndarray:
        return self.matrix.toarray()


def sparse_rows(X: object, dtype: np.dtype) -> SparseRows | None:
    """A 2-D SciPy sparse X of finite numbers as ``SparseRows`` in ``dtype``, each value as
    the dense path casts it; None for anything else (dense data, or a sparse X the
    dense path refuses by name: empty, not numbers, a NaN, a value past the dtype)."""
    if not (type(X).__module__.startswith("scipy.sparse") and hasattr(X, "tocsr")):
        return None
    if getattr(X, "ndim", 0) != 2 or 0 in X.shape or X.dtype.kind not in "biuf":
        return None
    matrix = X.tocsr(copy=True)
    matrix.sum_duplicates()  # (summed in X's dtype, as toarray sums them)
    with np.errstate(over="ignore"):
        data = matrix.data.astype(dtype)
    if not np.isfinite(data).all():
        return None
    return SparseRows(type(matrix)((data, matrix.indices, matrix.indptr), shape=X.shape), dtype)


def _pandas_sparse() -> type:
    import pandas  # (only asked of pandas data)

    return pandas.SparseDtype


def refuse_batch_source(X: object, where: str = "X") -> None:
    """A DataLoader, Dataset, tf.data pipeline or iterator handed over as the rows: said,
    with the way ('must hold numbers; it holds object values' said neither)."""
    module = type(X).__module__
    if not (
        module.startswith(("torch.utils.data", "tensorflow.python.data")) or isinstance(X, Iterator)
    ):
        return
    name = type(X).__name__
    raise DataError(
        f"{where} is a {name}, not an array: give the arrays themselves; wxb.fit(model, "
        "X, y, batch_size=…) batches and shuffles them, model.predict(X) takes X whole "
        f"(a loop of your own may iterate the {name}: a wxb model takes torch tensors)"
    )


def as_features(
    X: object,
    dtype: np.dtype | str = "float32",
    where: str = "X",
    check: bool = True,
    no_rows: bool = False,
) -> np.ndarray:
    """X as a 2-D float array, or a DataError that says what is wrong.

    A C-contiguous copy in ``dtype``, except a memory-mapped array (``np.load(path,
    mmap_mode="r")``) already in ``dtype``: it stays on disk, and training reads the rows
    its batches take. ``check=False`` leaves the check of finite values to the caller.
    """
    if isinstance(X, Tensor):
        X = X.data
    if (  # the usual input, already right (predict's one row): only the finite check
        type(X) is np.ndarray
        and X.dtype == dtype
        and X.ndim == 2
        and X.shape[0]
        and X.shape[1]
        and X.flags.c_contiguous
    ):
        if check:
            check_finite(X, where)
        return X
    refuse_batch_source(X, where)  # (after the usual input: predict's one row pays nothing)
    refuse_masked(X, where)
    X = numbers_from_pandas(dense_if_sparse(X))
    try:
        array = np.asarray(X)
    except ValueError as exc:  # ragged lists
        raise DataError(f"{where} is not a rectangular array: {exc}") from None
    if array.dtype.kind not in "biuf":
        raise DataError(
            f"{where} must hold numbers; it holds {array.dtype} values (e.g. {array.flat[0]!r})"
            if array.size
            else f"{where} must hold numbers"
        )
    if array.ndim != 2:
        hint = (  # a port's (N, 28, 28) images, which its forward would flatten itself
            f": reshape it to ({array.shape[0]}, -1), a row a sample"
            if array.ndim > 2
            else ": reshape it to (-1, 1) for one feature, (1, -1) for one sample"
            if array.ndim == 1
            else ""
        )
        raise DataError(f"{where} must be 2-D (samples × features); got shape {array.shape}{hint}")
    if (array.shape[0] == 0 and not no_rows) or array.shape[1] == 0:
        raise DataError(f"{where} is empty (shape {array.shape})")
    if isinstance(X, np.memmap) and array.dtype == np.dtype(dtype):
        array = X  # still a memmap (np.asarray gave a plain view): fit keeps it on disk
    else:
        if isinstance(X, np.memmap):  # a file larger than memory would not fit: say why
            warnings.warn(
                f"{where} is a memory-mapped {array.dtype} array and the model is "
                f"{np.dtype(dtype)}: it is copied into memory to convert it (save it as "
                f"{np.dtype(dtype)} to keep it on disk)",
                RuntimeWarning,
                stacklevel=3,
            )
        given = array
        with np.errstate(over="ignore"):  # a value past the dtype's range: named below
            array = np.ascontiguousarray(array, dtype=dtype)
        if check and given.dtype.kind == "f" and given.dtype.itemsize > array.dtype.itemsize:
            position = first_non_finite(array)
            if position is None:
                return array  # (scanned once: check_finite below would scan again)
            if np.isfinite(given[position]):
                raise DataError(
                    f"{where} has {given[position]:.6g} at row {position[0]}, column "
                    f"{position[1]}: beyond {array.dtype.name}'s range "
                    f"(±{float(np.finfo(array.dtype).max):.3g}); scale it, or use float64"
                )
    if check:
        check_finite(array, where)
    return array


def first_non_finite(array: np.ndarray) -> tuple[int, ...] | None:
    """The position of the first NaN or infinity in ``array``, or None.

    Goes through the rows in blocks of about a million values, so a memory-mapped array
    is read once with little memory, and no temporary as large as the array is made.
    """
    if array.dtype.kind != "f" or array.size == 0:
        return None
    if array.size <= 1 << 13:  # predict's row: isfinite is quickest below ~16K values
        if np.isfinite(array).all():
            return None
    elif array.size <= 1 << 20:  # one block: Σx² is finite only if every x is, and is
        flat = array.reshape(-1)  # quicker than isfinite; an overflow of it to inf is
        with np.errstate(over="ignore", invalid="ignore"):  # rechecked
            if math.isfinite(np.dot(flat, flat)) or np.isfinite(array).all():
                return None
    per_row = max(1, array[:1].size)
    block = max(1, (1 << 20) // per_row)
    for start in range(0, len(array), block):
        part = array[start : start + block]
        if not np.isfinite(part).all():
            position = tuple(int(i) for i in np.argwhere(~np.isfinite(part))[0])
            return (position[0] + start, *position[1:])
    return None


def check_finite(array: np.ndarray, where: str, first_row: int = 0) -> None:
    """A DataError naming the first non-finite value (rows counted from ``first_row``)."""
    position = first_non_finite(array)
    if position is None:
        return
    value = array[position]
    row = position[0] + first_row
    at = (
        f"row {row}, column {position[1]}"
        if len(position) == 2
        else f"index {(row, *position[1:])}"
    )
    raise DataError(f"{where} has {value} at {at}; remove or fill non-finite values first")


def check_lengths(X: np.ndarray, y: np.ndarray, where: str = "") -> None:
    if len(X) != len(y):
        prefix = f"{where}: " if where else ""
        raise DataError(f"{prefix}X has {len(X)} samples but y has {len(y)}; they must match")


def as_class_indices(
    y: object, n_classes: int | None = None, where: str = "y", ignore_index: int | None = None
) -> np.ndarray:
    """Integer class labels 0..C−1 (floats that are whole numbers are accepted); labels
    equal to ``ignore_index`` (a cross-entropy's rows that count for nothing) pass too."""
    refuse_masked(y, where)
    array = np.asarray(y)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or array.size == 0:
        raise DataError(f"{where} must be a non-empty 1-D array of class labels; got {array.shape}")
    if array.dtype.kind == "f":
        check_finite(array, where)
        fractional = array[array != np.round(array)]
        if fractional.size:
            raise DataError(f"{where} holds non-integer class labels (e.g. {fractional[0]})")
    elif array.dtype.kind not in "iub":
        # text labels ('setosa') met a line that named the CLI alone, no way in Python
        example = f" such as {str(array.flat[0])!r}" if array.dtype.kind in "USO" else ""
        raise DataError(
            f"{where} must hold integer class labels 0..C−1; it holds {array.dtype} "
            f"values{example}: encode them, classes, y = np.unique(y, return_inverse=True) "
            "(then classes[model.predict(X).argmax(1)] names the predictions), or train "
            "with wxb.sklearn's MLPClassifier or wxb train, which encode them"
        )
    array = array.astype(np.int64)
    labels = array if ignore_index is None else array[array != ignore_index]
    if labels.size and labels.min() < 0:
        raise DataError(f"{where} holds the negative label {labels.min()}; classes are 0..C−1")
    if n_classes is not None and labels.size and labels.max() >= n_classes:
        raise DataError(
            f"{where} holds class {labels.max()} but the model has {n_classes} outputs "
            f"(classes 0..{n_classes - 1})"
        )
    return array


def as_own_loss_targets(
    y: object, dtype: np.dtype | str, n_outputs: int, where: str = "y"
) -> np.ndarray:
    """Targets for a loss of one's own: (B, n_outputs) as ``as_targets`` makes them when
    they have that shape (or are (B,) for one output); else in the shape given, one per
    row, as PyTorch's loop and Keras's fit hand them over: whole numbers as given (class
    indices), others in the model's dtype."""
    refuse_masked(y, where)
    y = np.asarray(numbers_from_pandas(y))
    if (y.ndim == 2 and y.shape[1] == n_outputs) or (y.ndim == 1 and n_outputs == 1):
        return as_targets(y, dtype, n_outputs, where)
    if y.dtype.kind not in "biuf":
        raise DataError(f"{where} must hold numbers; it holds {y.dtype} values")
    if y.ndim == 0 or len(y) == 0:
        raise DataError(f"{where} must hold one target per row; got shape {y.shape}")
    if y.dtype.kind in "iu":
        return np.ascontiguousarray(y, dtype=y.dtype.newbyteorder("="))
    array = _narrowed(y, dtype, where)
    check_finite(array, where)
    return array


def numbers_from_pandas(data: object) -> object:
    """A pandas Series or DataFrame of nullable columns (Float64, Int64, boolean: what
    ``convert_dtypes`` gives) or of numbers of several dtypes (floats beside bools) as a
    float64 array, pd.NA as NaN (refused as a gap later); anything else as it is. NumPy
    reads such columns as objects. Whole numbers without a gap (Int64 class indices)
    stay whole: int64, as a loss of one's own indexes with them."""
    dtypes = getattr(data, "dtypes", getattr(data, "dtype", None))
    if type(data).__module__.split(".")[0] != "pandas" or dtypes is None:
        return data
    kinds = np.atleast_1d(np.asarray(dtypes, object))
    if all(isinstance(kind, np.dtype) for kind in kinds):
        if len(set(kinds)) == 1 or not all(kind.kind in "biuf" for kind in kinds):
            return data  # one dtype, as NumPy reads it; or text, named by the caller
        return data.to_numpy(dtype=np.float64)  # floats beside bools: NumPy reads objects
    if any(str(kind) in ("str", "string") or str(kind).startswith("string[") for kind in kinds):
        return data  # text ('0' and '00' are two labels): named by the caller as it is
    numpy_kinds = [getattr(kind, "numpy_dtype", None) for kind in kinds]  # Int64 → int64
    whole = all(
        isinstance(k, np.dtype) and k.kind in "iu" and not (k.kind == "u" and k.itemsize == 8)
        for k in numpy_kinds
    )  # (UInt64 may exceed int64)
    if whole and not bool(np.asarray(data.isna()).any()):
        return data.to_numpy(dtype=np.int64)
    try:
        return data.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        return data  # text or categories: named by the caller as they are


def as_targets(y: object, dtype: np.dtype | str, n_outputs: int, where: str = "y") -> np.ndarray:
    """Real-valued targets of shape (B, n_outputs)."""
    refuse_masked(y, where)
    array = np.asarray(numbers_from_pandas(y))
    if array.dtype.kind not in "biuf":
        raise DataError(f"{where} must hold numbers; it holds {array.dtype} values")
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[1] != n_outputs or array.shape[0] == 0:
        raise DataError(
            f"{where} must have shape (samples, {n_outputs}) to match the model's outputs; "
            f"got {np.asarray(y).shape}"
        )
    array = _narrowed(array, dtype, where)
    check_finite(array, where)
    return array


def _narrowed(given: np.ndarray, dtype: np.dtype | str, where: str) -> np.ndarray:
    """``given`` as a C-contiguous array in ``dtype``; a finite value the cast makes
    ±inf (1e39 in float32) named as such, as ``as_features`` names it (it was said to
    be inf: "remove or fill non-finite values first")."""
    with np.errstate(over="ignore"):
        array = np.ascontiguousarray(given, dtype=dtype)
    if given.dtype.kind == "f" and given.dtype.itemsize > array.dtype.itemsize:
        position = first_non_finite(array)
        if position is not None and np.isfinite(given[position]):
            at = ", ".join(str(i) for i in position)
            raise DataError(
                f"{where} has {given[position]:.6g} at [{at}]: beyond "
                f"{array.dtype.name}'s range (±{float(np.finfo(array.dtype).max):.3g}); "
                "scale it, or use float64"
            )
    return array


# ---------------------------------------------------------------------------------
def torch_options(where: str, given: dict, defaults: dict, instead: dict) -> None:
    """PyTorch's keyword options that wxb does not have: taken at PyTorch's default (code
    written for PyTorch that spells them out runs unchanged), refused in one line with
    what to do instead at any other value, never ignored. An unknown keyword is Python's
    TypeError."""
    for key, value in given.items():
        if key not in defaults:
            raise TypeError(f"{where}() got an unexpected keyword argument {key!r}")
        default = defaults[key]
        number = isinstance(value, (bool, int, float, np.integer, np.floating))
        if value is default or (number and default is not None and value == default):
            continue
        raise ConfigError(
            f"{where}: {key}={_shown(value)} is PyTorch's option, which wxb does not have; "
            f"{instead[key]}"
        )


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"a {type(value).__name__}"
