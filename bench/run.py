"""wxb's benchmark suite, in one process: GEMM rates, training steps against their floors,
PyTorch eager and a JAX jit step (when JAX is installed), inference latency against a
bare-NumPy floor and PyTorch, full fits against scikit-learn, and (each in a fresh
subprocess) memory.

    .venv/bin/python bench/run.py --native-blas   # full run, 7–11 minutes on 2 cores
    .venv/bin/python bench/run.py --quick          # smoke run, about a minute

Prints a Markdown table per section and writes every figure, raw per-round times
included, as JSON (default bench/results/latest.json). See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import _memory
import numpy as np
import sklearn
import threadpoolctl
import torch
from _args import names, positive_int
from _machine import FORCING_VARIABLES, cpu_model, load_average, numpy_blas
from _tables import num, table
from _timing import SETTLE_S, Plan, interleave, quiet_heap, repeat_calls
from _workloads import (
    CONFIGS,
    TRAINING_PATHS,
    Config,
    Split,
    blas_floor,
    digits_split,
    jax_available,
    math_needs,
    numpy_inference_floor,
    random_batch,
    teacher_split,
    torch_model,
    wxb_model,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

import wxb

HERE = Path(__file__).resolve().parent
OPTIMIZERS = ("SGD", "Adam")
MEMORY_CONFIG, MEMORY_OPTIMIZER = "medium", "Adam"
INFERENCE_ROWS = (1, 1024)
KIB, MIB = 1024, 1024**2
NAMES = {
    "blas_floor": "BLAS floor",
    "wxb_step": "wxb fit step",
    "wxb_step_numpy": "wxb fit step, NumPy kernels",
    "wxb_hand": "wxb hand loop",
    "torch": "PyTorch eager",
    "jax": "JAX jit",
}
PEERS = [path for path in TRAINING_PATHS if path in ("torch", "jax")]


@dataclass(frozen=True)
class Settings:
    """How long each section runs."""

    training: Plan
    inference: Plan
    gemm_n: int
    gemm_repeats: int
    digits_epochs: int
    digits_repeats: int  # the digits fit is short: its time is the median of a few fits
    teacher_repeats: int  # seeds of the MNIST-sized fit: accuracy is their mean
    teacher_rows: tuple[int, int]  # train, test
    teacher_epochs: int
    memory_steps: int
    growth_steps: int


FULL = Settings(
    training=Plan(rounds=15, turn_s=0.025, warmup_calls=3),
    inference=Plan(rounds=15, turn_s=0.02, warmup_calls=3),
    gemm_n=2048,
    gemm_repeats=7,
    digits_epochs=20,
    digits_repeats=3,
    teacher_repeats=3,
    teacher_rows=(60_000, 10_000),
    teacher_epochs=3,
    memory_steps=200,
    growth_steps=1000,
)
QUICK = Settings(
    training=Plan(rounds=3, turn_s=0.01, warmup_calls=2),
    inference=Plan(rounds=3, turn_s=0.005, warmup_calls=2),
    gemm_n=2048,
    gemm_repeats=3,
    digits_epochs=3,
    digits_repeats=1,
    teacher_repeats=1,
    teacher_rows=(6_000, 1_000),
    teacher_epochs=1,
    memory_steps=10,
    growth_steps=50,
)


# -- the machine ---------------------------------------------------------------------------
def native_blas_kernel() -> str | None:
    """The kernel OpenBLAS picks with the forcing variables unset (in a subprocess)."""
    env = {k: v for k, v in os.environ.items() if k not in FORCING_VARIABLES}
    code = (
        "import numpy, threadpoolctl, pathlib\n"
        "pools = [p for p in threadpoolctl.threadpool_info() if p['user_api'] == 'blas']\n"
        "own = [p for p in pools if pathlib.Path(p['filepath']).parent.name.startswith('numpy')]\n"
        "print(((own or pools or [{}])[0]).get('architecture'))"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def blas_forcing() -> dict[str, object]:
    """Which forcing variables are set, the kernel in use, and the one OpenBLAS would pick."""
    forced = {k: os.environ[k] for k in FORCING_VARIABLES if k in os.environ}
    in_use = numpy_blas().get("architecture")
    native = native_blas_kernel() if forced else in_use
    return {"variables": forced, "kernel": in_use, "native_kernel": native}


def git_revision() -> str | None:
    """The checkout's commit, with "-dirty" when the working tree has changes."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    return done.stdout.strip() or None


def machine_info() -> dict[str, object]:
    blas = numpy_blas()
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(usable) if usable else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": {
            "name": blas.get("internal_api"),
            "library": blas.get("prefix"),
            "version": blas.get("version"),
            "architecture": blas.get("architecture"),
            "threads": blas.get("num_threads"),
        },
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "sklearn": sklearn.__version__,
        "wxb": wxb.__version__,
        "wxb_git": git_revision(),
        "threadpools": threadpoolctl.threadpool_info(),
        "blas_forcing": blas_forcing(),
        "jax": jax_available(),
        "wxb_kernels": wxb.kernels.route(),
    }


# -- 1. GEMM rate ----------------------------------------------------------------------------
def bench_gemm(settings: Settings) -> list[dict[str, object]]:
    """Square matmuls into a preallocated output: the rate the BLAS reaches."""
    n, rng = settings.gemm_n, np.random.default_rng(0)
    results = []
    for dtype in (np.float32, np.float64):
        A, B = (rng.standard_normal((n, n)).astype(dtype) for _ in range(2))
        C = np.empty((n, n), dtype)
        times = repeat_calls(partial(np.matmul, A, B, out=C), settings.gemm_repeats, 1)
        median = statistics.median(times)
        results.append(
            {
                "dtype": np.dtype(dtype).name,
                "n": n,
                "flops": 2.0 * n**3,
                "median_s": median,
                "gflops": 2.0 * n**3 / median / 1e9,
                "times_s": times,
            }
        )
    return results


# -- 2. training steps -----------------------------------------------------------------------
def bench_training(configs: list[Config], gemm_rate: float, plan: Plan) -> list[dict[str, object]]:
    """Each config × optimiser: the BLAS floor, both wxb paths and PyTorch, interleaved."""
    results = []
    for config in configs:
        X, y = random_batch(config)
        rate_floor = config.step_flops / gemm_rate
        for optimizer in OPTIMIZERS:
            progress(f"training {config.name} {optimizer}")
            contenders: dict[str, Callable[[], object]] = {"blas_floor": blas_floor(config)}
            for path, build in TRAINING_PATHS.items():
                contenders[path] = build(config, optimizer, X, y)
            timings = interleave(contenders, plan)
            median = {name: timing.median_s for name, timing in timings.items()}
            losses = {path: float(timings[path].last_result) for path in TRAINING_PATHS}
            results.append(
                {
                    "config": config.name,
                    "architecture": config.architecture,
                    "batch": config.batch,
                    "optimizer": optimizer,
                    "step_flops": config.step_flops,
                    "rate_floor_s": rate_floor,
                    "blas_floor_s": median["blas_floor"],
                    "median_s": median,
                    "x_blas_floor": {k: v / median["blas_floor"] for k, v in median.items()},
                    "x_rate_floor": {k: v / rate_floor for k, v in median.items()},
                    "peer_over_wxb": {
                        peer: {p: median[peer] / median[p] for p in ("wxb_step", "wxb_hand")}
                        for peer in PEERS
                    },
                    "final_loss": losses,
                    "losses_finite": all(math.isfinite(v) for v in losses.values()),
                    "timings": {name: timing.to_dict() for name, timing in timings.items()},
                }
            )
    return results


# -- 3. inference ----------------------------------------------------------------------------
def wxb_no_grad(model: wxb.nn.Module, x: np.ndarray) -> np.ndarray:
    with wxb.no_grad():
        return model(x).data


def torch_inference(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(x)


def bench_inference(configs: list[Config], plan: Plan) -> list[dict[str, object]]:
    """Latency of one sample and of a batch, for each config's network in eval mode."""
    rng = np.random.default_rng(3)
    results = []
    for config in configs:
        model = wxb_model(config.dims).eval()
        reference = torch_model(config.dims, model).eval()
        for rows in INFERENCE_ROWS:
            progress(f"inference {config.name} rows={rows}")
            x = rng.standard_normal((rows, config.dims[0]), dtype=np.float32)
            x_torch = torch.from_numpy(x)
            timings = interleave(
                {
                    "numpy_floor": partial(numpy_inference_floor(model, rows), x),
                    "wxb_predict": partial(model.predict, x),
                    "wxb_no_grad": partial(wxb_no_grad, model, x),
                    "torch": partial(torch_inference, reference, x_torch),
                },
                plan,
            )
            median = {name: timing.median_s for name, timing in timings.items()}
            difference = np.abs(model.predict(x) - torch_inference(reference, x_torch).numpy())
            results.append(
                {
                    "config": config.name,
                    "architecture": config.architecture,
                    "rows": rows,
                    "median_s": median,
                    "torch_over_wxb": {
                        path: median["torch"] / median[path]
                        for path in ("wxb_predict", "wxb_no_grad")
                    },
                    "x_numpy_floor": {
                        path: median[path] / median["numpy_floor"]
                        for path in ("wxb_predict", "wxb_no_grad")
                    },
                    "predict_over_no_grad": median["wxb_predict"] / median["wxb_no_grad"],
                    "max_abs_diff_vs_torch": float(difference.max()),
                    "timings": {name: timing.to_dict() for name, timing in timings.items()},
                }
            )
    return results


# -- 4. full fit against scikit-learn ----------------------------------------------------
@dataclass(frozen=True)
class FitWorkload:
    name: str
    split: Split
    dims: tuple[int, ...]
    batch: int
    epochs: int
    repeats: int


def fit_wxb(work: FitWorkload, seed: int) -> tuple[float, float]:
    """Seconds of ``wxb.fit`` (Adam) and the test accuracy after it."""
    X_train, y_train, X_test, y_test = work.split
    model = wxb_model(work.dims, seed=seed)
    start = time.perf_counter()
    wxb.fit(
        model,
        X_train,
        y_train,
        loss="cross_entropy",
        optimizer="adam",
        lr=1e-3,
        epochs=work.epochs,
        batch_size=work.batch,
        seed=seed,
        verbose=False,
    )
    seconds = time.perf_counter() - start
    accuracy = np.mean(np.argmax(model.predict(X_test), axis=1) == y_test)
    return seconds, float(accuracy)


def fit_sklearn(work: FitWorkload, seed: int) -> tuple[float, float, str]:
    """Seconds of ``MLPClassifier.fit`` for exactly ``work.epochs`` epochs, the test
    accuracy after it, and the dtype it trained in."""
    X_train, y_train, X_test, y_test = work.split
    model = MLPClassifier(
        hidden_layer_sizes=work.dims[1:-1],
        solver="adam",
        batch_size=work.batch,
        learning_rate_init=1e-3,
        alpha=0.0,  # no L2 penalty: wxb's Adam has none by default
        max_iter=work.epochs,
        tol=0.0,
        n_iter_no_change=work.epochs + 1,
        early_stopping=False,
        shuffle=True,
        random_state=seed,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    if model.n_iter_ != work.epochs:
        raise RuntimeError(f"MLPClassifier ran {model.n_iter_} epochs, not {work.epochs}")
    return seconds, float(np.mean(model.predict(X_test) == y_test)), model.coefs_[0].dtype.name


def bench_fit(settings: Settings) -> list[dict[str, object]]:
    """Whole training runs, per epoch, with the accuracy each reaches."""
    workloads = [
        FitWorkload(
            name="digits",
            split=digits_split(),
            dims=(64, 512, 10),
            batch=32,
            epochs=settings.digits_epochs,
            repeats=settings.digits_repeats,
        ),
        FitWorkload(
            name="mnist-sized",
            split=teacher_split(*settings.teacher_rows),
            dims=CONFIGS["small"].dims,
            batch=128,
            epochs=settings.teacher_epochs,
            repeats=settings.teacher_repeats,
        ),
    ]
    results = []
    for work in workloads:
        progress(f"fit {work.name}")
        wxb_runs, sklearn_runs = [], []
        # one untimed epoch each on a slice first: the first fit in a process loads
        # compiled code and fills caches (wxb's kernels, scikit-learn's imports)
        warm = replace(work, split=tuple(part[:256] for part in work.split), epochs=1)
        fit_wxb(warm, 0)
        fit_sklearn(warm, 0)
        for seed in range(work.repeats):  # initial weights and shuffling differ by seed
            quiet_heap()
            time.sleep(SETTLE_S)  # each fit starts with no other thread pool spinning
            wxb_runs.append(fit_wxb(work, seed))
            quiet_heap()
            time.sleep(SETTLE_S)
            sklearn_runs.append(fit_sklearn(work, seed))
        wxb_s = statistics.median(run[0] for run in wxb_runs)
        sklearn_s = statistics.median(run[0] for run in sklearn_runs)
        results.append(
            {
                "workload": work.name,
                "architecture": "-".join(map(str, work.dims)),
                "train_rows": len(work.split[0]),
                "test_rows": len(work.split[2]),
                "batch": work.batch,
                "epochs": work.epochs,
                "wxb_s_per_epoch": wxb_s / work.epochs,
                "sklearn_s_per_epoch": sklearn_s / work.epochs,
                "sklearn_over_wxb": sklearn_s / wxb_s,
                "wxb_test_accuracy": statistics.mean(run[1] for run in wxb_runs),
                "sklearn_test_accuracy": statistics.mean(run[1] for run in sklearn_runs),
                "wxb_test_accuracies": [run[1] for run in wxb_runs],
                "sklearn_test_accuracies": [run[1] for run in sklearn_runs],
                "sklearn_dtype": sklearn_runs[-1][2],
                "wxb_fit_s": [run[0] for run in wxb_runs],
                "sklearn_fit_s": [run[0] for run in sklearn_runs],
            }
        )
    return results


# -- 5. memory, each measurement in a fresh process ------------------------------------
def memory_child_result(
    kind: str, path: str, steps: int, threads: int, kernels: str | None = None
) -> dict[str, object]:
    """Run _memory.py in a new interpreter and read the JSON it prints; ``kernels``: the
    WXB_KERNELS route it runs with (default: the automatic choice)."""
    command = [sys.executable, str(HERE / "_memory.py"), kind, path, "--steps", str(steps)]
    command += ["--config", MEMORY_CONFIG, "--optimizer", MEMORY_OPTIMIZER]
    command += ["--threads", str(threads)]
    env = {**os.environ, "WXB_KERNELS": kernels} if kernels else None
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, env=env
    )
    if done.returncode:
        raise RuntimeError(f"memory child {kind} {path} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def bench_memory(settings: Settings, threads: int) -> dict[str, object]:
    """Extra peak RSS of training against what the math needs; growth over many steps."""
    needs = math_needs(CONFIGS[MEMORY_CONFIG], MEMORY_OPTIMIZER)
    peaks = []
    # The compiled kernels load numba (and LLVM) at the first step: the NumPy route's
    # row shows the training itself without that one-time cost.
    for path, kernels in (("wxb_step", None), ("wxb_step", "numpy"), ("wxb_hand", None),
                          ("torch", None)):  # fmt: skip
        label = f"{path}_numpy" if kernels else path
        progress(f"memory peak {label}")
        result = memory_child_result("peak", path, settings.memory_steps, threads, kernels)
        result["path"] = label
        result["extra_over_needs"] = result["extra_peak_kib"] * KIB / needs["total"]
        peaks.append(result)
    growth = []
    for path in ("wxb_step", "wxb_hand"):
        progress(f"memory growth {path}")
        growth.append(memory_child_result("growth", path, settings.growth_steps, threads))
    return {
        "config": MEMORY_CONFIG,
        "optimizer": MEMORY_OPTIMIZER,
        "math_needs_bytes": needs,
        "peak": peaks,
        "growth": growth,
    }


# -- Markdown --------------------------------------------------------------------------------
def ratio(value: float) -> str:
    return f"{value:.2f}"


def render_header(
    info: dict[str, object], settings: Settings, quick: bool, load: list[float] | None
) -> str:
    blas = info["blas"]
    training = settings.training
    forcing = info["blas_forcing"]
    if not forcing["variables"]:
        kernel_note = f"- BLAS kernel: {forcing['kernel']}, OpenBLAS's own choice"
    elif forcing["native_kernel"] == forcing["kernel"]:
        kernel_note = (
            f"- BLAS kernel: {forcing['kernel']}; {forcing['variables']} set, but OpenBLAS "
            "picks the same kernel without them"
        )
    else:
        kernel_note = (
            f"- **BLAS kernel FORCED: {forcing['kernel']} by {forcing['variables']}; OpenBLAS "
            f"would pick {forcing['native_kernel']}. These figures understate the machine: "
            "rerun with --native-blas.**"
        )
    jax = f"; JAX {info['jax']}" if info["jax"] else "; JAX not installed (the bench extra)"
    return "\n".join(
        [
            "# wxb benchmark" + (" (quick)" if quick else ""),
            "",
            f"- CPU: {info['cpu']}; {info['logical_cores']} logical cores, "
            f"{info['usable_cores']} usable",
            f"- NumPy {info['numpy']}; BLAS: {blas['name']} {blas['version']} "
            f"({blas['library']}, {blas['architecture']}), {blas['threads']} threads",
            kernel_note,
            f"- PyTorch {info['torch']}, {info['torch_threads']} threads; "
            f"scikit-learn {info['sklearn']}{jax}",
            f"- wxb's element-wise kernels: {info['wxb_kernels']}",
            f"- wxb {info['wxb']} (git {info['wxb_git']}); Python {info['python']}",
            f"- timing: median per-call time over {training.rounds} interleaved rounds, "
            f"each ≥ {training.turn_s * 1e3:g} ms per contender, after warm-up; each turn "
            f"starts after a {SETTLE_S:g} s pause and one untimed call",
            f"- load average (1, 5, 15 min) at the start: {load} (other work on the machine "
            "slows multi-threaded BLAS badly: compare quiet runs only)",
        ]
    )


def render_gemm(results: list[dict[str, object]]) -> str:
    rows = [[r["dtype"], str(r["n"]), num(r["median_s"] * 1e3), num(r["gflops"])] for r in results]
    return "## GEMM rate (NumPy matmul, n×n)\n\n" + table(
        ["dtype", "n", "median ms", "GFLOP/s"], rows
    )


def render_training(results: list[dict[str, object]]) -> str:
    headers = ["config", "optimizer", "rate floor ms", "BLAS floor ms", "BLAS ×rate"]
    for path in TRAINING_PATHS:
        short = {"wxb_step": "wxb step", "wxb_hand": "wxb hand"}.get(path, path)
        headers += [f"{short} ms", "×BLAS", "×rate"]
    for peer in PEERS:
        headers += [f"{peer}/wxb step", f"{peer}/wxb hand"]
    rows = []
    for r in results:
        median, x_blas, x_rate = r["median_s"], r["x_blas_floor"], r["x_rate_floor"]
        row = [
            f"{r['config']} {r['architecture']} B={r['batch']}",
            r["optimizer"],
            num(r["rate_floor_s"] * 1e3),
            num(median["blas_floor"] * 1e3),
            ratio(x_rate["blas_floor"]),
        ]
        for path in TRAINING_PATHS:
            row += [num(median[path] * 1e3), ratio(x_blas[path]), ratio(x_rate[path])]
        for peer in PEERS:
            row += [ratio(r["peer_over_wxb"][peer][p]) for p in ("wxb_step", "wxb_hand")]
        rows.append(row)
    bad = [f"{r['config']} {r['optimizer']}" for r in results if not r["losses_finite"]]
    check = f"NOT finite in: {', '.join(bad)}" if bad else "all finite"
    return (
        "## Training step (float32, cross-entropy, one fixed batch)\n\n"
        + table(headers, rows, text_columns=2)
        + "\n\n×BLAS, ×rate: time over the BLAS floor, over the rate floor. "
        "peer/wxb > 1: wxb is faster.\n"
        + f"Losses after warm-up ({', '.join(TRAINING_PATHS)}): {check}."
    )


def render_inference(results: list[dict[str, object]]) -> str:
    headers = ["config", "rows", "NumPy floor µs", "wxb predict µs", "wxb no_grad µs"]
    headers += ["torch µs", "no_grad ×floor", "predict/no_grad"]
    headers += ["torch/wxb predict", "torch/wxb no_grad"]
    contenders = ("numpy_floor", "wxb_predict", "wxb_no_grad", "torch")
    rows = [
        [
            f"{r['config']} {r['architecture']}",
            str(r["rows"]),
            *(num(r["median_s"][p] * 1e6) for p in contenders),
            ratio(r["x_numpy_floor"]["wxb_no_grad"]),
            ratio(r["predict_over_no_grad"]),
            ratio(r["torch_over_wxb"]["wxb_predict"]),
            ratio(r["torch_over_wxb"]["wxb_no_grad"]),
        ]
        for r in results
    ]
    return (
        "## Inference latency (eval mode)\n\n"
        + table(headers, rows)
        + "\n\nNumPy floor: each layer's product, bias and ReLU into preallocated arrays, "
        "no checks. torch: `inference_mode`."
    )


def render_fit(results: list[dict[str, object]]) -> str:
    headers = ["workload", "architecture", "train/test rows", "batch", "epochs"]
    headers += ["wxb s/epoch", "sklearn s/epoch", "sklearn/wxb", "wxb test acc", "sklearn test acc"]
    rows = [
        [
            r["workload"],
            r["architecture"],
            f"{r['train_rows']}/{r['test_rows']}",
            str(r["batch"]),
            str(r["epochs"]),
            num(r["wxb_s_per_epoch"]),
            num(r["sklearn_s_per_epoch"]),
            ratio(r["sklearn_over_wxb"]),
            f"{r['wxb_test_accuracy']:.4f}",
            f"{r['sklearn_test_accuracy']:.4f}",
        ]
        for r in results
    ]
    return (
        "## Full fit: wxb.fit vs scikit-learn MLPClassifier (Adam, lr 1e-3, float32)\n\n"
        + table(headers, rows, text_columns=2)
        + "\n\nsklearn/wxb > 1: wxb is faster."
    )


PEAK_HEADERS = [
    "contender",
    "steps",
    "baseline RSS MiB",
    "extra peak MiB",
    "math needs MiB",
    "extra/needs",
]
GROWTH_HEADERS = [
    "path",
    "steps",
    "traced KiB (early)",
    "traced KiB (end)",
    "traced Δ KiB",
    "RSS Δ KiB",
]


def render_memory(result: dict[str, object]) -> str:
    if "skipped" in result:
        return f"## Memory\n\nSkipped: {result['skipped']}"
    needs = result["math_needs_bytes"]
    peak_rows = [
        [
            NAMES[r["path"]],
            str(r["steps"]),
            num(r["baseline_rss_kib"] / KIB),
            num(r["extra_peak_kib"] / KIB),
            num(needs["total"] / MIB),
            ratio(r["extra_over_needs"]),
        ]
        for r in result["peak"]
    ]
    growth_rows = [
        [
            NAMES[r["path"]],
            f"{r['early_step']} → {r['steps']}",
            num(r["traced_early_bytes"] / KIB),
            num(r["traced_end_bytes"] / KIB),
            num(r["traced_delta_bytes"] / KIB),
            str(r["rss_delta_kib"]),
        ]
        for r in result["growth"]
    ]
    parts = ", ".join(f"{k.replace('_', ' ')} {num(v / MIB)}" for k, v in needs.items())
    return "\n\n".join(
        [
            f"## Memory: training {result['config']} with {result['optimizer']} "
            "(a fresh process each)",
            table(PEAK_HEADERS, peak_rows),
            f"Math needs, MiB: {parts}.",
            table(GROWTH_HEADERS, growth_rows),
        ]
    )


# -- running -----------------------------------------------------------------------------------
def progress(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


def emit(markdown: str) -> None:
    print(markdown + "\n", flush=True)


def plain(value: object) -> object:
    """JSON for NumPy scalars."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def save(results: dict[str, object], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=plain) + "\n")


SECTIONS = ("training", "inference", "fit", "memory")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer rounds, no large")
    parser.add_argument(
        "--json",
        type=Path,
        default=HERE / "results" / "latest.json",
        help="where to write the results (default: bench/results/latest.json)",
    )
    parser.add_argument(
        "--configs",
        type=names(CONFIGS, "config"),
        help=f"comma-separated, from {','.join(CONFIGS)} (default: all; --quick: not large)",
    )
    parser.add_argument(
        "--threads", type=positive_int, help="BLAS and torch threads (default: the BLAS's own)"
    )
    parser.add_argument(
        "--sections",
        type=names(SECTIONS, "section"),
        help=f"comma-separated, from {','.join(SECTIONS)} (default: all; the GEMM rate "
        "is always measured: the floors are made of it)",
    )
    parser.add_argument(
        "--native-blas",
        action="store_true",
        help=f"rerun without {' and '.join(FORCING_VARIABLES)}, so OpenBLAS picks its own kernel",
    )
    return parser.parse_args(argv)


def run_suite(args: argparse.Namespace, threads: int) -> int:
    """Every section in turn, printed as it finishes; the JSON is rewritten after each."""
    started = time.perf_counter()
    settings = QUICK if args.quick else FULL
    names = args.configs or [n for n in CONFIGS if not (args.quick and n == "large")]
    configs = [CONFIGS[name] for name in names]
    info = machine_info()
    forcing = info["blas_forcing"]
    if forcing["variables"] and forcing["native_kernel"] != forcing["kernel"]:
        print(
            f"WARNING: {forcing['variables']} forces OpenBLAS's {forcing['kernel']} kernel; "
            f"it would pick {forcing['native_kernel']}. Rerun with --native-blas.",
            file=sys.stderr,
        )
    results: dict[str, object] = {
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
        "quick": args.quick,
        "threads": threads,
        "configs": names,
        "load_average_start": load_average(),
        "machine": info,
        "settings": asdict(settings),
    }
    emit(render_header(info, settings, args.quick, results["load_average_start"]))

    section_s: dict[str, float] = {}
    results["section_s"] = section_s

    def record(key: str, measure: Callable[[], object], render: Callable[[object], str]) -> None:
        start = time.perf_counter()
        results[key] = measure()
        section_s[key] = time.perf_counter() - start
        emit(render(results[key]))
        save(results, args.json)

    sections = args.sections or SECTIONS
    results["sections"] = list(sections)
    record("gemm", partial(bench_gemm, settings), render_gemm)
    gemm_rate = results["gemm"][0]["gflops"] * 1e9  # float32
    if "training" in sections:
        training = partial(bench_training, configs, gemm_rate, settings.training)
        record("training", training, render_training)
    if "inference" in sections:
        record("inference", partial(bench_inference, configs, settings.inference), render_inference)
    if "fit" in sections:
        record("fit", partial(bench_fit, settings), render_fit)
    if "memory" in sections and _memory.available():
        record("memory", partial(bench_memory, settings, threads), render_memory)
    elif "memory" in sections:
        record("memory", lambda: {"skipped": "needs Linux (/proc/self/status)"}, render_memory)

    finite = all(r["losses_finite"] for r in results.get("training", []))
    results["checks"] = {"losses_finite": finite}
    results["elapsed_s"] = time.perf_counter() - started
    results["load_average_end"] = load_average()
    save(results, args.json)
    print(
        f"Total {results['elapsed_s']:.0f} s; load average at the end "
        f"{results['load_average_end']}; JSON: {args.json}"
    )
    return 0 if finite else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.native_blas and any(k in os.environ for k in FORCING_VARIABLES):
        # The variables are read when OpenBLAS loads: start again without them.
        env = {k: v for k, v in os.environ.items() if k not in FORCING_VARIABLES}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    threads = args.threads or numpy_blas().get("num_threads") or 1
    with threadpoolctl.threadpool_limits(limits=threads):
        torch.set_num_threads(threads)
        return run_suite(args, threads)


if __name__ == "__main__":
    sys.exit(main())
