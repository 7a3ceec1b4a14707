"""What bounds `wxb.fit` against scikit-learn's `MLPClassifier` on the MNIST-sized
workload (issue 12's "≥ 2.5× per epoch"): three costs no implementation of the same
epoch avoids, each timed alone, beside whole epochs of both libraries, in one process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/fit_bound.py
    .venv/bin/python bench/fit_bound.py --quick        # smoke run: 6,000 rows, 1 round

- floor: an epoch's matrix products alone (bench/run.py's floor: the forward products and
  ∂L/∂W of every layer, δ of all but the first), on one batch kept in cache;
- gather: copying each shuffled batch's rows out of X (np.take into a buffer, as fit does);
- adam: the compiled Adam update over a flat buffer of the network's parameters, once a
  step (one pass at memory speed).
Each is a lower bound of its part (in cache, back to back). Rounds interleave the five
contenders after one untimed call each; figures are medians over rounds. Prints a table
and writes JSON (default bench/results/fit_bound.json).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
from _machine import announce_machine, write_results
from _tables import num, table
from _timing import SETTLE_S, quiet_heap
from _workloads import CONFIGS, teacher_split
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

import wxb
from wxb.kernels import compiled

HERE = Path(__file__).resolve().parent
BATCH = 128
EPOCHS_PER_FIT = 2  # a whole fit's time over this many epochs (its setup spread over them)


def _model(dims: tuple[int, ...], seed: int) -> wxb.nn.Sequential:
    layers: list[wxb.nn.Module] = []
    for k, (fan_in, fan_out) in enumerate(itertools.pairwise(dims)):
        layers.append(wxb.nn.Dense(fan_in, fan_out, seed=seed + k, dtype="float32"))
        if k < len(dims) - 2:
            layers.append(wxb.nn.ReLU())
    return wxb.nn.Sequential(*layers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6,000 rows, one round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--json", default=str(HERE / "results" / "fit_bound.json"))
    args = parser.parse_args()
    blas, forced = announce_machine()
    rows = 6_000 if args.quick else 60_000
    rounds = 1 if args.quick else args.rounds
    X, y, _, _ = teacher_split(rows, 1_000)
    dims = CONFIGS["small"].dims
    steps = -(-len(X) // BATCH)
    rng = np.random.default_rng(0)
    W = [rng.standard_normal((o, i)).astype(np.float32) * 0.05 for i, o in itertools.pairwise(dims)]
    n_params = sum(w.size + w.shape[0] for w in W)

    def floor() -> float:
        x = X[:BATCH]
        start = time.perf_counter()
        for _ in range(steps):
            a, acts = x, [x]
            for w in W:
                a = a @ w.T
                acts.append(a)
            delta = np.ones_like(a)
            for i in range(len(W) - 1, -1, -1):
                _ = delta.T @ acts[i]  # ∂L/∂W⁽ⁱ⁾
                if i > 0:
                    delta = delta @ W[i]  # δ of the layer below (not the input's)
        return time.perf_counter() - start

    buffer = np.empty((BATCH, X.shape[1]), np.float32)

    def gather() -> float:
        order = rng.permutation(len(X))
        start = time.perf_counter()
        for s in range(0, len(order), BATCH):
            part = order[s : s + BATCH]
            np.take(X, part, axis=0, out=buffer[: len(part)], mode="clip")
        return time.perf_counter() - start

    f32 = np.float32
    flat = [rng.standard_normal(n_params).astype(f32) for _ in range(4)]
    flat[3] = np.abs(flat[3])
    scalars = [f32(v) for v in (1, 1, 1, 0, 0.1, 0.9, 0.999, 0.001, 1e-8, 1e-3)]

    def adam() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            compiled.adam(*flat, *scalars)
        return time.perf_counter() - start

    def wxb_fit(seed: int) -> float:
        model = _model(dims, seed)
        start = time.perf_counter()
        wxb.fit(model, X, y, loss="cross_entropy", optimizer="adam", lr=1e-3,
                epochs=EPOCHS_PER_FIT, batch_size=BATCH, seed=seed, verbose=False)  # fmt: skip
        return (time.perf_counter() - start) / EPOCHS_PER_FIT

    def sklearn_fit(seed: int) -> float:
        model = MLPClassifier(hidden_layer_sizes=dims[1:-1], solver="adam", batch_size=BATCH,
                              learning_rate_init=1e-3, alpha=0.0, max_iter=EPOCHS_PER_FIT,
                              tol=0.0, n_iter_no_change=EPOCHS_PER_FIT + 1, shuffle=True,
                              random_state=seed)  # fmt: skip
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        return (time.perf_counter() - start) / EPOCHS_PER_FIT

    contenders = {
        "floor": lambda r: floor(),
        "gather": lambda r: gather(),
        "adam": lambda r: adam(),
        "wxb": wxb_fit,
        "sklearn": sklearn_fit,
    }
    for fn in contenders.values():  # untimed: compiled code loaded, caches warm
        fn(99)
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    for r in range(rounds):
        for name, fn in contenders.items():
            quiet_heap()
            time.sleep(SETTLE_S)
            seconds[name].append(fn(r))
    median = {name: statistics.median(values) for name, values in seconds.items()}
    bound = median["floor"] + median["gather"] + median["adam"]
    rows_out = [
        [name, num(median[name], 4), num(median[name] / median["floor"], 3)] for name in contenders
    ]
    rows_out.append(["floor + gather + adam", num(bound, 4), num(bound / median["floor"], 3)])
    print(f"## What bounds fit against MLPClassifier ({rows} rows, B = {BATCH}, Adam, float32)\n")
    print(table(["part", "s/epoch", "× floor"], rows_out))
    print(
        f"\nsklearn/wxb {median['sklearn'] / median['wxb']:.2f}; the most any implementation "
        f"doing these three could reach: sklearn/(floor + gather + adam) "
        f"{median['sklearn'] / bound:.2f}"
    )
    out = write_results(
        args.json,
        {"seconds_per_epoch": seconds, "median": median, "bound": bound,
         "sklearn_over_wxb": median["sklearn"] / median["wxb"],
         "sklearn_over_bound": median["sklearn"] / bound, "parameters": n_params,
         "steps_per_epoch": steps},
        blas=blas, forced=forced, rounds=rounds, rows=rows,
    )  # fmt: skip
    print(f"\nJSON: {out}")


if __name__ == "__main__":
    main()
