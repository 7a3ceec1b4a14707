"""The array namespace and the dtype policy.

Everything numerical goes through NumPy here; a GPU backend (CuPy) slots in
behind the same names later. float32 is the default, float64 is for checks.
"""

from __future__ import annotations

import numpy as np

from wxb.errors import ConfigError

xp = np

DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}
DEFAULT_DTYPE = DTYPES["float32"]


def resolve_dtype(dtype: object) -> np.dtype:
    """Turn 'float32', np.float64, etc. into a NumPy dtype wxb supports."""
    if dtype is None:
        return DEFAULT_DTYPE
    if isinstance(dtype, str) and dtype.strip().lower() == "float":
        raise ConfigError(
            "dtype 'float' is float32 in PyTorch and float64 in NumPy: write 'float32' or 'float64'"
        )
    try:
        resolved = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in DTYPES:
        raise ConfigError(f"dtype must be one of {sorted(DTYPES)}; got {dtype!r}")
    return DTYPES[resolved.name]  # '>f8' too: computed in the machine's byte order
