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


def is_torchs(value: object) -> bool:
    """Whether ``value`` is one of PyTorch's objects (a tensor, a dtype, a scheduler),
    told by its type's package without importing torch (torchvision's are not)."""
    return type(value).__module__.split(".")[0] == "torch"


def is_torch_tensor(value: object) -> bool:
    """A torch tensor (or Parameter): torch's, and readable as an array."""
    return is_torchs(value) and hasattr(value, "__array__")


def resolve_dtype(dtype: object) -> np.dtype:
    """Turn 'float32', np.float64, etc. into a NumPy dtype wxb supports."""
    if dtype is None:
        return DEFAULT_DTYPE
    if is_torchs(dtype):  # torch.float64, as a PyTorch user passes it
        dtype = str(dtype).removeprefix("torch.")
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


# PyTorch's device names: .to("cpu") is what a PyTorch user writes; wxb computes on the CPU
DEVICE_KINDS = ("cpu", "cuda", "mps", "xpu", "xla", "meta")


def is_device(value: object) -> bool:
    """Whether ``.to(value)`` names a device ('cpu', 'cuda:0', a torch.device), not a dtype."""
    if type(value).__name__ == "device":  # a torch.device, without importing torch
        return True
    return isinstance(value, str) and value.split(":")[0].strip().lower() in DEVICE_KINDS


def is_cpu(device: object) -> bool:
    """'cpu', 'CPU', 'cpu:0', torch.device('cpu'): the one device wxb computes on."""
    return str(getattr(device, "type", device)).split(":")[0].strip().lower() == "cpu"


def check_device(device: object, where: str) -> None:
    """The CPU (or None): anything else is refused in one line."""
    if device is None:
        return
    if not is_cpu(device):
        raise ConfigError(
            f"{where}: device {str(device)!r} is not available: wxb computes on the CPU only "
            "(a GPU backend is planned); use 'cpu' or leave the device out"
        )


def to_arguments(args: tuple, dtype: object, device: object, where: str) -> object:
    """The dtype of PyTorch's ``.to(...)`` forms (``to(dtype)``, ``to(device)``,
    ``to(device, dtype)``, ``dtype=``/``device=``), its device checked; None: no cast."""
    if len(args) > 2:
        raise ConfigError(f"{where} takes a device and a dtype; got {len(args)} arguments")
    for arg in args:
        if is_device(arg):
            if device is not None:
                raise ConfigError(f"{where}: the device is given twice")
            device = arg
        else:
            if dtype is not None:
                raise ConfigError(f"{where}: the dtype is given twice")
            dtype = getattr(arg, "dtype", arg) if type(arg).__name__ == "Tensor" else arg
    check_device(device, where)
    return dtype


class device:  # torch.device's name: device = wxb.device("cpu"); x.to(device)
    """``torch.device("cpu")``: the device a ported script hands to ``.to()``; wxb computes
    on the CPU, and another device is refused here, in one line, as ``.to("cuda")`` is."""

    def __init__(self, type: object = "cpu", index: object = None) -> None:
        name = str(getattr(type, "type", type))
        check_device(name, "wxb.device")
        self.type, self.index = name.split(":")[0].strip().lower(), index

    def __repr__(self) -> str:
        return f"device(type={self.type!r})"

    def __str__(self) -> str:
        return self.type

    def __eq__(self, other: object) -> bool:
        return str(other) == self.type

    __hash__ = object.__hash__


CPU = device("cpu")  # what a tensor's .device answers
