"""wxb.sklearn against scikit-learn: time per epoch of ``fit`` with identical
hyperparameters, float32 and float64, on an MNIST-sized synthetic problem and digits.

    .venv/bin/python bench/sklearn_bench.py            # about 3 minutes on 2 idle cores
    .venv/bin/python bench/sklearn_bench.py --quick    # smoke run, under a minute

Both estimators get the same parameters (Adam, batch 200, shuffled, the same
random_state: wxb.sklearn draws its initial weights and shuffles as scikit-learn
does, so both run the same training). A fit runs exactly ``epochs`` epochs (tol=0);
its time divided by the epochs is one round's figure. Rounds alternate which
estimator goes first, each fit after a pause for the BLAS threads to sleep (see
``_timing.py``), after a warm-up fit of each. The figure is the median over rounds.

"matmul floor" is the time of the training step's matrix products alone (forward
X·Wᵀ, backward δᵀ·X and δ·W, per layer, into preallocated outputs) for every batch of
an epoch: what a step cannot go below with this BLAS.

Prints a Markdown table; writes every figure, per-round times included, as JSON
(default bench/results/sklearn.json, which git ignores).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import pairwise
from pathlib import Path

import numpy as np
import sklearn
import threadpoolctl
from _machine import cpu_model, load_average
from _tables import num, table
from _timing import SETTLE_S
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkClassifier

import wxb
from wxb.sklearn import MLPClassifier

HERE = Path(__file__).resolve().parent
BATCH = 200


@dataclass(frozen=True)
class Workload:
    name: str
    hidden: tuple[int, ...]
    epochs: int  # per timed fit
    rounds: int
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def synthetic(train_rows: int, test_rows: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """MNIST-sized and learnable: X ~ N(0, 1) (784 features), 10 classes from a fixed
    random linear teacher plus noise."""
    rng = np.random.default_rng(seed)
    rows = train_rows + test_rows
    X = rng.standard_normal((rows, 784))
    teacher = rng.standard_normal((784, 10)) / math.sqrt(784)
    y = np.argmax(X @ teacher + 0.1 * rng.standard_normal((rows, 10)), axis=1)
    return X[:train_rows], y[:train_rows], X[train_rows:], y[train_rows:]


def digits() -> tuple[np.ndarray, ...]:
    """scikit-learn's handwritten digits scaled to [0, 1]; 80/20 stratified split."""
    data = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        data.data / 16.0, data.target, test_size=0.2, stratify=data.target, random_state=0
    )
    return X_train, y_train, X_test, y_test


def params(work: Workload, seed: int) -> dict:
    """The same for both estimators: Adam, batch 200, shuffled, exactly ``epochs`` epochs."""
    return {
        "hidden_layer_sizes": work.hidden,
        "solver": "adam",
        "batch_size": BATCH,
        "learning_rate_init": 1e-3,
        "alpha": 1e-4,
        "max_iter": work.epochs,
        "tol": 0.0,
        "n_iter_no_change": work.epochs + 1,
        "shuffle": True,
        "random_state": seed,
    }


def timed_fit(cls: type, work: Workload, X: np.ndarray, seed: int) -> tuple[float, object]:
    estimator = cls(**params(work, seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        estimator.fit(X, work.y_train)
        seconds = time.perf_counter() - start
    if estimator.n_iter_ != work.epochs:
        raise RuntimeError(f"{cls.__module__} ran {estimator.n_iter_} epochs, not {work.epochs}")
    return seconds / work.epochs, estimator


def matmul_floor(work: Workload, dtype: np.dtype, repeats: int = 5) -> float:
    """Seconds per epoch of the step's matrix products alone (median of ``repeats``)."""
    rng = np.random.default_rng(1)
    dims = [work.X_train.shape[1], *work.hidden, 10]
    rows = len(work.X_train)
    sizes = [BATCH] * (rows // BATCH) + ([rows % BATCH] if rows % BATCH else [])
    weights = [rng.standard_normal((o, i)).astype(dtype) for i, o in pairwise(dims)]
    X = rng.standard_normal((BATCH, dims[0])).astype(dtype)
    acts = [np.empty((BATCH, o), dtype) for o in dims[1:]]
    grads = [np.empty_like(w) for w in weights]
    backs = [np.empty((BATCH, i), dtype) for i in dims[:-1]]

    def step(b: int) -> None:
        x = X[:b]
        for W, a in zip(weights, acts, strict=True):
            np.matmul(x, W.T, out=a[:b])
            x = a[:b]
        for layer in range(len(weights) - 1, -1, -1):
            delta = acts[layer][:b]
            inputs = X[:b] if layer == 0 else acts[layer - 1][:b]
            np.matmul(delta.T, inputs, out=grads[layer])
            if layer:
                np.matmul(delta, weights[layer], out=backs[layer][:b])

    step(BATCH)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for b in sizes:
            step(b)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def accuracy(estimator, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(estimator.predict(X) == y))


def bench(work: Workload, dtype: np.dtype) -> dict[str, object]:
    X = work.X_train.astype(dtype)
    X_test = work.X_test.astype(dtype)
    contenders = {"wxb": MLPClassifier, "sklearn": SkClassifier}
    # warm-up: the BLAS threads, the allocator, the first import-time costs
    for cls in contenders.values():
        warm = Workload(**{**work.__dict__, "epochs": 1})
        timed_fit(cls, warm, X, seed=0)
    per_epoch: dict[str, list[float]] = {name: [] for name in contenders}
    last = {}
    order = list(contenders)
    for round_ in range(work.rounds):
        for name in order if round_ % 2 == 0 else order[::-1]:
            time.sleep(SETTLE_S)
            seconds, last[name] = timed_fit(contenders[name], work, X, seed=round_)
            per_epoch[name].append(seconds)
        progress(f"  {work.name} {np.dtype(dtype).name} round {round_ + 1}/{work.rounds}")
    time.sleep(SETTLE_S)
    floor = matmul_floor(work, dtype)
    median = {name: statistics.median(times) for name, times in per_epoch.items()}
    ours, theirs = last["wxb"], last["sklearn"]
    weights_differ = max(
        float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
        for a, b in zip(
            ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True
        )
    )
    return {
        "workload": work.name,
        "dtype": np.dtype(dtype).name,
        "architecture": "-".join(map(str, [X.shape[1], *work.hidden, 10])),
        "train_rows": len(X),
        "batches_per_epoch": math.ceil(len(X) / BATCH),
        "epochs_per_fit": work.epochs,
        "rounds": work.rounds,
        "wxb_s_per_epoch": median["wxb"],
        "sklearn_s_per_epoch": median["sklearn"],
        "sklearn_over_wxb": median["sklearn"] / median["wxb"],
        "matmul_floor_s_per_epoch": floor,
        "wxb_over_floor": median["wxb"] / floor,
        "sklearn_over_floor": median["sklearn"] / floor,
        "wxb_final_loss": ours.loss_,
        "sklearn_final_loss": float(theirs.loss_),
        "max_relative_weight_difference": weights_differ,
        "wxb_test_accuracy": accuracy(ours, X_test, work.y_test),
        "sklearn_test_accuracy": accuracy(theirs, X_test, work.y_test),
        "wxb_coef_dtype": ours.coefs_[0].dtype.name,
        "sklearn_coef_dtype": theirs.coefs_[0].dtype.name,
        "per_round_s_per_epoch": per_epoch,
    }


# -- report ------------------------------------------------------------------------------
def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def render(results: list[dict[str, object]]) -> str:
    headers = [
        "workload",
        "dtype",
        "batches",
        "floor ms/ep",
        "wxb ms/ep",
        "sklearn ms/ep",
        "sklearn/wxb",
        "wxb/floor",
        "sklearn/floor",
        "Δweights",
        "acc wxb",
        "acc sklearn",
    ]
    rows = [
        [
            f"{r['workload']} {r['architecture']}",
            r["dtype"],
            str(r["batches_per_epoch"]),
            num(r["matmul_floor_s_per_epoch"] * 1e3),
            num(r["wxb_s_per_epoch"] * 1e3),
            num(r["sklearn_s_per_epoch"] * 1e3),
            f"{r['sklearn_over_wxb']:.2f}",
            f"{r['wxb_over_floor']:.2f}",
            f"{r['sklearn_over_floor']:.2f}",
            f"{r['max_relative_weight_difference']:.0e}",
            f"{r['wxb_test_accuracy']:.3f}",
            f"{r['sklearn_test_accuracy']:.3f}",
        ]
        for r in results
    ]
    return table(headers, rows, text_columns=2)


def machine() -> dict[str, object]:
    blas = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": cpu_model(),
        "usable_cores": len(usable) if usable else os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": [
            {k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for p in blas
        ],
        "sklearn": sklearn.__version__,
        "wxb": wxb.__version__,
        "load_average": load_average(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, one round")
    parser.add_argument("--threads", type=int, help="BLAS threads (default: the BLAS's own)")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "sklearn.json")
    args = parser.parse_args(argv)
    if args.threads:
        threadpoolctl.threadpool_limits(args.threads)
    big = synthetic(6_000, 1_000) if args.quick else synthetic(60_000, 10_000)
    workloads = [
        Workload("synthetic", (256, 128), 1 if args.quick else 2, 1 if args.quick else 3, *big),
        Workload("digits", (100,), 5 if args.quick else 20, 1 if args.quick else 5, *digits()),
    ]
    info = machine()
    blas = info["blas"][0] if info["blas"] else {}
    print(
        f"# wxb.sklearn vs scikit-learn {info['sklearn']}: seconds per epoch of fit\n\n"
        f"- CPU: {info['cpu']}, {info['usable_cores']} usable cores; NumPy {info['numpy']}, "
        f"BLAS {blas.get('internal_api')} {blas.get('version')} ({blas.get('architecture')}), "
        f"{blas.get('num_threads')} threads\n"
        f"- Adam, batch {BATCH}, shuffled, same random_state; median over rounds after a "
        f"warm-up fit; load average at the start: {info['load_average']}\n"
    )
    results = []
    for work in workloads:
        for dtype in (np.float32, np.float64):
            progress(f"{work.name} {np.dtype(dtype).name}")
            results.append(bench(work, dtype))
    print(render(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": info,
        "load_average_end": load_average(),
        "results": results,
    }
    args.json.write_text(json.dumps(record, indent=1, default=float))
    progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
