"""What a benchmark says about the machine and its own process: the CPU, the load,
resident memory (Linux: /proc/self/status), the BLAS that NumPy loaded and the
variables that force OpenBLAS's kernel. Imports nothing heavy (threadpoolctl only
inside ``numpy_blas``), so a fresh child process can measure its baseline with it."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

STATUS = Path("/proc/self/status")
# Set on the project's machines so that old OpenBLAS builds pick a safe kernel; a
# user's machine does not set them, and they can halve the GEMM rate.
FORCING_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def numpy_blas() -> dict[str, object]:
    """threadpoolctl's record of the BLAS that NumPy loaded (the first BLAS if unsure)."""
    import threadpoolctl

    blas = [pool for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
    own = [pool for pool in blas if Path(pool["filepath"]).parent.name.startswith("numpy")]
    return (own or blas or [{}])[0]


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages, where the platform has them."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def resident_kib() -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of this process, in KiB."""
    sizes = {}
    for line in STATUS.read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            sizes[key] = int(value.split()[0])
    return sizes


def reset_peak() -> bool:
    """Set VmHWM back to VmRSS; False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def announce_machine() -> tuple[dict[str, object], dict[str, str]]:
    """Print (to stderr) the CPU, NumPy's BLAS kernel and threads and the load, and a
    warning when a variable forces OpenBLAS's kernel; returns (the BLAS, those variables)."""
    forced = {k: os.environ[k] for k in FORCING_VARIABLES if k in os.environ}
    blas = numpy_blas()
    print(
        f"# {cpu_model()}; BLAS {blas.get('internal_api')} {blas.get('architecture')}, "
        f"{blas.get('num_threads')} threads; load {load_average()}",
        file=sys.stderr,
    )
    if forced:
        print(
            f"warning: {forced} set: OpenBLAS may run a slower kernel than a user's "
            "(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)",
            file=sys.stderr,
        )
    return blas, forced


def write_results(path: str | Path, results: dict, **meta: object) -> Path:
    """``results`` as JSON under ``{"meta", "results"}``, the meta holding when, the CPU,
    Python, the load at the end and what the caller adds (its BLAS, plan, versions)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    head = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(), "python": platform.python_version(),
        "load_average_end": load_average(), **meta,
    }  # fmt: skip
    out.write_text(json.dumps({"meta": head, "results": results}, indent=2, default=str))
    return out
