"""wxb's table reader against pandas and pyarrow: time and peak memory of reading a
1,000,000 × 20 CSV and the same table as Parquet, each read in a fresh process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/read_bench.py
    .venv/bin/python bench/read_bench.py --rows 20000 --repeats 1     # smoke run

The data (20 float columns f0…f19 of N(0, 1) values written with 6 significant digits,
and an integer 0/1 column ``target``) is made once under ``--data-dir`` and reused.
Each measurement is a fresh interpreter (this script with ``--child``) that imports
everything first, reads VmRSS (the baseline), resets VmHWM to it where the kernel
allows (``/proc/self/clear_refs``), runs one read, and reports its wall time, its
CPU time (the process's: every thread's, user and system) and VmHWM − baseline: the
peak resident memory the read added. A warm-up read of each file primes the OS file
cache; then every round runs every contender once, the first contender rotating.
Figures are medians over rounds; a line a format gives wxb's path to the matrix against
the faster peer's read.

Targets (from the issue), for wxb's "read → float32 matrix" path: time ≤ 1.5× the
faster of pandas's and pyarrow's own read of the same file; peak ≤ 4× the float32
matrix's size (rows × 20 × 4 bytes).

Prints a Markdown table; writes every figure, per-round ones included, as JSON
(default bench/results/read.json, which git ignores). Linux only (/proc/self/status).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from _machine import STATUS, cpu_model, load_average, reset_peak, resident_kib
from _tables import num, table

import wxb
from wxb.columns import TableEncoder
from wxb.tables import read_table

HERE = Path(__file__).resolve().parent
FEATURES = [f"f{j}" for j in range(20)]
FORMATS = {"csv": "data.csv", "parquet": "data.parquet"}
TIME_TARGET = 1.5  # × the faster peer's own read
MEMORY_TARGET = 4.0  # × the float32 matrix
assert pyarrow.compute  # imported for its side effect: wxb uses it on text columns


# -- data --------------------------------------------------------------------------------
def make_data(folder: Path, rows: int, seed: int = 0) -> dict[str, Path]:
    """The CSV and the Parquet file of the same table, made unless both are there."""
    paths = {fmt: folder / name for fmt, name in FORMATS.items()}
    marker = folder / "rows.txt"
    if all(p.exists() for p in paths.values()) and marker.exists():
        if int(marker.read_text()) == rows:
            progress(f"reusing {folder}")
            return paths
    folder.mkdir(parents=True, exist_ok=True)
    progress(f"writing {rows:,} rows to {folder} …")
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.standard_normal((rows, len(FEATURES))), columns=FEATURES)
    frame["target"] = rng.integers(0, 2, rows)
    frame.to_csv(paths["csv"], index=False, float_format="%.6g")
    # the Parquet file holds exactly the CSV's values (float64, as read back)
    pq.write_table(pcsv.read_csv(paths["csv"]), paths["parquet"])
    marker.write_text(str(rows))
    return paths


# -- the contenders (each runs in its own process) ---------------------------------------
def wxb_matrix(path: Path, fmt: str, phases: dict) -> np.ndarray:
    """What wxb does before training: the table, its encoder, the float32 matrix."""
    start = time.perf_counter()
    data = read_table(path, float32=True)
    phases["read_table_s"] = time.perf_counter() - start
    phases["after_read_table_kib"] = resident_kib()
    start = time.perf_counter()
    encoder = TableEncoder.fit(data, FEATURES)
    phases["fit_s"] = time.perf_counter() - start
    phases["after_fit_kib"] = resident_kib()
    start = time.perf_counter()
    X = encoder.transform(data, np.float32)
    phases["transform_s"] = time.perf_counter() - start
    phases["after_transform_kib"] = resident_kib()
    del data
    return X


def wxb_table(path: Path, fmt: str, phases: dict) -> object:
    return read_table(path, float32=True)


def pandas_read(path: Path, fmt: str, phases: dict) -> pd.DataFrame:
    return pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)


def pandas_matrix(path: Path, fmt: str, phases: dict) -> np.ndarray:
    frame = pandas_read(path, fmt, phases)
    X = frame[FEATURES].to_numpy(np.float32)
    del frame
    return X


def arrow_read(path: Path, fmt: str, phases: dict) -> pa.Table:
    return pcsv.read_csv(path) if fmt == "csv" else pq.read_table(path)


def arrow_matrix(path: Path, fmt: str, phases: dict) -> np.ndarray:
    """pyarrow has no Table → matrix call: fill a float32 array column by column."""
    arrow = arrow_read(path, fmt, phases)
    X = np.empty((arrow.num_rows, len(FEATURES)), np.float32)
    for j, name in enumerate(FEATURES):
        X[:, j] = arrow.column(name).to_numpy()
    del arrow
    return X


CONTENDERS: dict[str, tuple[str, Callable]] = {
    # key: (label, call)
    "wxb": ("wxb: read → float32 matrix", wxb_matrix),
    "wxb-table": ("wxb: read_table(float32=True)", wxb_table),
    "pandas": ("pandas", pandas_read),
    "pandas-f32": ("pandas → .to_numpy(float32)", pandas_matrix),
    "pyarrow": ("pyarrow", arrow_read),
    "pyarrow-f32": ("pyarrow → float32 matrix", arrow_matrix),
}
PEERS = ("pandas", "pyarrow")  # the time target's reference: the faster of their own reads
WXB = ("wxb", "wxb-table")


def peer_call(key: str, fmt: str) -> str:
    calls = {
        "pandas": {"csv": "pd.read_csv(path)", "parquet": "pd.read_parquet(path)"},
        "pyarrow": {"csv": "pyarrow.csv.read_csv(path)", "parquet": "pyarrow.parquet.read_table"},
    }
    return calls[key][fmt]


# -- one measurement (child process) -----------------------------------------------------
def child(key: str, fmt: str, path: Path) -> dict[str, object]:
    """Everything is imported at module level, before the baseline."""
    call = CONTENDERS[key][1]
    gc.collect()
    baseline = resident_kib()
    peak_was_reset = reset_peak()
    phases: dict[str, object] = {}
    start, cpu = time.perf_counter(), time.process_time()
    result = call(path, fmt, phases)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    sizes = resident_kib()
    # what the contender hands back, held until now (its bytes count in the peak)
    if isinstance(result, np.ndarray):
        held, shape = result.nbytes, list(result.shape)
    elif isinstance(result, pd.DataFrame):
        held, shape = int(result.memory_usage(index=False).sum()), list(result.shape)
    elif isinstance(result, pa.Table):
        held, shape = result.nbytes, [result.num_rows, result.num_columns]
    else:  # a wxb Table
        held = sum(c.values.nbytes for c in result.columns.values())
        shape = [result.n_rows, len(result.columns)]
    if key == "wxb" and (result.dtype != np.float32 or result.shape[1] != len(FEATURES)):
        raise RuntimeError(f"wxb made a {result.dtype} matrix of shape {result.shape}")
    return {
        "contender": key,
        "format": fmt,
        "seconds": seconds,
        "cpu_seconds": cpu,  # the process's, every thread's (user + system)
        "baseline_rss_kib": baseline["VmRSS"],
        "baseline_hwm_kib": baseline["VmHWM"],
        "peak_was_reset": peak_was_reset,
        "peak_rss_kib": sizes["VmHWM"],
        "final_rss_kib": sizes["VmRSS"],
        "extra_peak_kib": sizes["VmHWM"] - baseline["VmRSS"],
        "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "result_bytes": held,
        "result_shape": shape,
        "phases": phases,
    }


def measure(key: str, fmt: str, path: Path) -> dict[str, object]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", key, fmt, str(path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{key} {fmt} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the run -----------------------------------------------------------------------------
def run(paths: dict[str, Path], keys: list[str], repeats: int) -> dict[str, dict]:
    results: dict[str, dict] = {}
    for fmt, path in paths.items():
        progress(f"{fmt}: warm-up read")
        measure("pyarrow", fmt, path)
        runs: dict[str, list[dict]] = {key: [] for key in keys}
        for round_ in range(repeats):
            shift = round_ % len(keys)
            for key in keys[shift:] + keys[:shift]:
                runs[key].append(measure(key, fmt, path))
            progress(f"  {fmt} round {round_ + 1}/{repeats}")
        results[fmt] = runs
    return results


def summarise(results: dict[str, dict], rows: int) -> list[dict[str, object]]:
    matrix_bytes = rows * len(FEATURES) * 4
    summary = []
    for fmt, runs in results.items():
        median = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
        peers = {k: median[k] for k in PEERS if k in median}
        fastest = min(peers, key=peers.get) if peers else None
        for key, items in runs.items():
            seconds = median[key]
            extra = statistics.median(r["extra_peak_kib"] for r in items) * 1024
            entry = {
                "contender": key,
                "label": CONTENDERS[key][0],
                "format": fmt,
                "median_s": seconds,
                "median_cpu_s": statistics.median(r["cpu_seconds"] for r in items),
                "min_s": min(r["seconds"] for r in items),
                "max_s": max(r["seconds"] for r in items),
                "faster_peer": fastest,
                "over_faster_peer": seconds / peers[fastest] if fastest else None,
                "extra_peak_bytes": extra,
                "over_float32_matrix": extra / matrix_bytes,
                "float32_matrix_bytes": matrix_bytes,
                "runs": items,
            }
            if key in WXB and fastest:
                entry["time_ok"] = entry["over_faster_peer"] <= TIME_TARGET
                entry["memory_ok"] = entry["over_float32_matrix"] <= MEMORY_TARGET
            if key == "wxb":
                entry["phases"] = phase_medians(items)
            summary.append(entry)
    return summary


def phase_medians(items: list[dict]) -> dict[str, float]:
    """Median seconds of each phase of wxb's path, and the peak (MiB above the
    baseline) reached by the end of each: VmHWM only grows, so the first phase whose
    figure jumps is where the peak happened."""
    out: dict[str, float] = {}
    for phase in ("read_table", "fit", "transform"):
        out[f"{phase}_s"] = statistics.median(r["phases"][f"{phase}_s"] for r in items)
        out[f"{phase}_peak_mib"] = statistics.median(
            (r["phases"][f"after_{phase}_kib"]["VmHWM"] - r["baseline_rss_kib"]) / 1024
            for r in items
        )
        out[f"{phase}_rss_mib"] = statistics.median(
            (r["phases"][f"after_{phase}_kib"]["VmRSS"] - r["baseline_rss_kib"]) / 1024
            for r in items
        )
    return out


# -- report ------------------------------------------------------------------------------
def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def verdict(entry: dict, key: str) -> str:
    if key not in entry:
        return ""
    return "pass" if entry[key] else "**fail**"


def render(summary: list[dict[str, object]]) -> str:
    headers = [
        "reader",
        "format",
        "time s",
        "min–max s",
        "CPU s",
        "×faster peer",
        "peak MiB",
        "×f32 matrix",
        f"time ≤{TIME_TARGET}×",
        f"memory ≤{MEMORY_TARGET:g}×",
    ]
    rows = [
        [
            str(e["label"]),
            str(e["format"]),
            num(e["median_s"]),
            f"{num(e['min_s'])}–{num(e['max_s'])}",
            num(e["median_cpu_s"]),
            f"{e['over_faster_peer']:.2f}" if e["over_faster_peer"] is not None else "",
            num(e["extra_peak_bytes"] / 2**20),
            f"{e['over_float32_matrix']:.2f}",
            verdict(e, "time_ok"),
            verdict(e, "memory_ok"),
        ]
        for e in summary
    ]
    return table(headers, rows, text_columns=2)


def render_ratios(summary: list[dict[str, object]]) -> str:
    """One line a format: wxb's path to the float32 matrix against each peer's own read
    (the faster one is the issue's time target), wall and CPU time."""
    lines = []
    for e in summary:
        if e["contender"] != "wxb":
            continue
        peers = [p for p in summary if p["format"] == e["format"] and p["contender"] in PEERS]
        against = "; ".join(
            f"{'**' * (p['contender'] == e['faster_peer'])}{e['median_s'] / p['median_s']:.2f}×"
            f"{'**' * (p['contender'] == e['faster_peer'])} {peer_call(str(p['contender']), fmt)}"
            f" ({num(p['median_s'])} s, CPU {num(p['median_cpu_s'])} s)"
            for p in peers
            for fmt in [str(e["format"])]
        )
        lines.append(
            f"- {e['format']}: wxb's read → float32 matrix {num(e['median_s'])} s (CPU "
            f"{num(e['median_cpu_s'])} s): {against}; target ≤ {TIME_TARGET}× the faster"
        )
    return "\n".join(lines)


def render_phases(summary: list[dict[str, object]]) -> str:
    headers = ["format", "phase", "median s", "peak MiB by its end", "RSS MiB at its end"]
    rows = []
    for e in summary:
        if e["contender"] != "wxb":
            continue
        for phase, label in (
            ("read_table", "read_table(float32=True)"),
            ("fit", "TableEncoder.fit"),
            ("transform", "encoder.transform"),
        ):
            p = e["phases"]
            rows.append(
                [
                    str(e["format"]),
                    label,
                    num(p[f"{phase}_s"]),
                    num(p[f"{phase}_peak_mib"]),
                    num(p[f"{phase}_rss_mib"]),
                ]
            )
    return table(headers, rows, text_columns=2)


def machine() -> dict[str, object]:
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(usable) if usable else os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pyarrow": pa.__version__,
        "pyarrow_threads": pa.cpu_count(),
        "pyarrow_memory_pool": pa.default_memory_pool().backend_name,
        "wxb": wxb.__version__,
        "load_average": load_average(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the table")
    parser.add_argument("--repeats", type=int, default=5, help="rounds (fresh process each)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="where the files are made, or reused (default: a folder under the temp dir)",
    )
    parser.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        help=f"comma-separated subset of {', '.join(CONTENDERS)}",
    )
    parser.add_argument("--formats", default=",".join(FORMATS), help="csv, parquet or both")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "read.json")
    parser.add_argument("--child", nargs=3, metavar=("CONTENDER", "FORMAT", "PATH"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    if args.child:
        key, fmt, path = args.child
        print(json.dumps(child(key, fmt, Path(path))))
        return 0
    if not STATUS.exists():
        parser.error("needs Linux's /proc/self/status for resident sizes")
    keys = [k for k in args.contenders.split(",") if k]
    formats = [f for f in args.formats.split(",") if f]
    unknown = [k for k in keys if k not in CONTENDERS] + [f for f in formats if f not in FORMATS]
    if unknown:
        parser.error(f"unknown contender or format: {', '.join(unknown)}")
    folder = args.data_dir or Path(tempfile.gettempdir()) / f"wxb-read-bench-{args.rows}"
    paths = make_data(folder, args.rows)
    paths = {fmt: paths[fmt] for fmt in formats}
    info = machine()
    sizes = ", ".join(f"{fmt} {p.stat().st_size / 1e6:.0f} MB" for fmt, p in paths.items())
    print(
        f"# Reading a {args.rows:,} × {len(FEATURES)} table: wxb vs pandas {info['pandas']} "
        f"and pyarrow {info['pyarrow']}\n\n"
        f"- CPU: {info['cpu']}, {info['logical_cores']} logical / {info['usable_cores']} "
        f"usable cores; Python {info['python']}, NumPy {info['numpy']}; pyarrow "
        f"{info['pyarrow_threads']} threads, {info['pyarrow_memory_pool']} memory pool\n"
        f"- files: {sizes} (+ a 0/1 `target` column); float32 matrix "
        f"{args.rows * len(FEATURES) * 4 / 1e6:.0f} MB\n"
        f"- each read in a fresh process; median of {args.repeats} after a warm-up read; "
        f"peak = VmHWM − VmRSS after imports; load average at the start: "
        f"{info['load_average']}\n"
    )
    started = time.perf_counter()
    results = run(paths, keys, args.repeats)
    summary = summarise(results, args.rows)
    print(render(summary))
    peers = ", ".join(
        f"{fmt}: {' / '.join(peer_call(k, fmt) for k in PEERS if k in keys)}" for fmt in paths
    )
    print(
        f"\n×faster peer: time ÷ the faster of the peers' own reads ({peers}). "
        f"×f32 matrix: peak ÷ {args.rows * len(FEATURES) * 4 / 2**20:.1f} MiB. "
        f"Load average at the end: {machine()['load_average']}.\n"
    )
    ratios = render_ratios(summary)
    if ratios:
        print(f"{ratios}\n")
    if any(e["contender"] == "wxb" for e in summary):
        print("Where wxb's path spends time and memory (medians; MiB above the baseline):\n")
        print(render_phases(summary))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv[1:] if argv is None else argv,
        "rows": args.rows,
        "repeats": args.repeats,
        "files": {fmt: {"path": str(p), "bytes": p.stat().st_size} for fmt, p in paths.items()},
        "machine": info,
        "load_average_end": load_average(),
        "elapsed_s": time.perf_counter() - started,
        "results": summary,
    }
    args.json.write_text(json.dumps(record, indent=1, default=float))
    progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
