"""Default `wxb train` against scikit-learn's MLP on small tables: test scores over seeds.

    .venv/bin/python bench/table_defaults.py                  # about 2 minutes on 2 cores
    .venv/bin/python bench/table_defaults.py --seeds 2 --datasets iris,wine
    .venv/bin/python bench/table_defaults.py --wxb-args "--epochs 300 --patience 30"

For each data set (scikit-learn's iris, wine, breast cancer and diabetes, written to a
CSV with pandas; the target column is ``target``) and each seed S (0..4 unless
``--first-seed``/``--seeds`` say otherwise):

- wxb: ``wxb train --data CSV --target target --seed S -q -o TMP`` in a subprocess,
  with its default options (plus ``--wxb-args``); the test score is the saved model's
  ``info["test"]`` (accuracy for classification, R² for regression). "wxb s" is the
  subprocess's wall time, start-up and imports included.
- scikit-learn: the same test rows (wxb's first split,
  ``wxb.data.split_indices(n, test_split, np.random.default_rng(S), labels)``, stratified
  by class for classification), trained on all the other rows: ``StandardScaler`` fitted on
  them, then ``MLPClassifier``/``MLPRegressor(random_state=S, max_iter=5000)``, defaults
  otherwise (hidden 100, Adam, lr 1e-3, alpha 1e-4, its own tol/n_iter_no_change) —
  trained to convergence; the table says whether any ``ConvergenceWarning`` fired.

A data set passes when wxb's mean test score over the seeds is at least scikit-learn's.
Both are scored on the same rows, so the table also gives the paired difference: wxb's
score minus scikit-learn's, seed by seed, its mean with a 95 % t interval (in test rows
a seed for classification: how many more rows wxb classified right), and the seeds wxb
won, tied and lost. An interval that holds 0 means the seeds cannot tell the two apart.
``--datasets digits`` adds the built-in digits (``wxb train`` with no ``--data``);
``--datasets generated`` runs thirteen other small classification tables, fixed once
(digits subsets and pairs, ``make_classification``, moons, circles, blobs, …: GENERATED),
the out-of-sample check of the defaults in docs/sklearn.md.
Prints a Markdown table; writes every figure, per seed, as JSON
(default bench/results/table_defaults.json, which git ignores).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import sklearn
from _machine import load_average
from _tables import table
from sklearn import datasets as skdata
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler

import wxb
from wxb.data import split_indices

HERE = Path(__file__).resolve().parent
TEST_SPLIT = 0.2  # wxb train's default --test-split
MAX_ITER = 5000


@dataclass(frozen=True)
class Table:
    name: str
    loader: Callable | None  # a sklearn.datasets loader; None: wxb's built-in digits
    task: str  # "classification" or "regression"

    @property
    def metric(self) -> str:
        return "accuracy" if self.task == "classification" else "r2"


def _frame(X: np.ndarray, y: np.ndarray, names: list[str] | None = None) -> SimpleNamespace:
    """A generated table as a loader's ``as_frame=True`` bunch: features, integer target."""
    frame = pd.DataFrame(np.asarray(X, dtype=np.float64), columns=names)
    if names is None:
        frame.columns = [f"x{i}" for i in range(X.shape[1])]
    frame["target"] = np.asarray(y).astype(np.int64)
    return SimpleNamespace(frame=frame)


def _digits_rows(n: int) -> SimpleNamespace:
    digits = skdata.load_digits()
    keep, _ = train_test_split(
        np.arange(len(digits.target)), train_size=n, stratify=digits.target, random_state=2024
    )
    keep = np.sort(keep)
    return _frame(digits.data[keep], digits.target[keep], list(digits.feature_names))


def _digits_pair(a: int, b: int) -> SimpleNamespace:
    digits = skdata.load_digits()
    keep = np.flatnonzero((digits.target == a) | (digits.target == b))
    return _frame(digits.data[keep], digits.target[keep], list(digits.feature_names))


def _made(n: int, classes: int, state: int) -> SimpleNamespace:
    X, y = skdata.make_classification(
        n_samples=n, n_features=20, n_informative=6, n_redundant=2, n_classes=classes,
        flip_y=0.05, class_sep=1.0, random_state=state,
    )  # fmt: skip
    return _frame(X, y)


def _with_noise(X: np.ndarray, y: np.ndarray, extra: int, state: int) -> SimpleNamespace:
    noise = np.random.default_rng(state).standard_normal((len(X), extra))
    return _frame(np.hstack([X, noise]), y)


def _hastie(n: int, state: int) -> SimpleNamespace:
    X, y = skdata.make_hastie_10_2(n_samples=n, random_state=state)
    return _frame(X, (y > 0).astype(int))


# Small classification tables that are none of the four above, fixed once (not by seed):
# the out-of-sample check of the defaults (docs/sklearn.md, "Thirteen other small tables")
GENERATED = {
    "mc200_2c": lambda **_: _made(200, 2, 11),
    "blobs300_5c": lambda **_: _frame(
        *skdata.make_blobs(
            n_samples=300, n_features=10, centers=5, cluster_std=4.0, random_state=25
        )
    ),
    "digits300": lambda **_: _digits_rows(300),
    "quantiles300_3c": lambda **_: _frame(
        *skdata.make_gaussian_quantiles(n_samples=300, n_features=6, n_classes=3, random_state=23)
    ),
    "digits3v8": lambda **_: _digits_pair(3, 8),
    "digits1v7": lambda **_: _digits_pair(1, 7),
    "moons400": lambda **_: _with_noise(*skdata.make_moons(400, noise=0.3, random_state=21), 8, 31),
    "circles400": lambda **_: _with_noise(
        *skdata.make_circles(400, noise=0.2, factor=0.5, random_state=22), 8, 32
    ),
    "hastie500": lambda **_: _hastie(500, 24),
    "mc500_3c": lambda **_: _made(500, 3, 12),
    "digits600": lambda **_: _digits_rows(600),
    "digits1000": lambda **_: _digits_rows(1000),
    "mc1000_4c": lambda **_: _made(1000, 4, 13),
}

TABLES = {
    "iris": Table("iris", skdata.load_iris, "classification"),
    "wine": Table("wine", skdata.load_wine, "classification"),
    "breast_cancer": Table("breast_cancer", skdata.load_breast_cancer, "classification"),
    "diabetes": Table("diabetes", skdata.load_diabetes, "regression"),
    "digits": Table("digits", None, "classification"),
    **{name: Table(name, build, "classification") for name, build in GENERATED.items()},
}
DEFAULT_TABLES = "iris,wine,breast_cancer,diabetes"


def load(work: Table, folder: Path) -> tuple[np.ndarray, np.ndarray, Path | None]:
    """(X, y, the CSV wxb reads); the CSV is None for the built-in digits."""
    if work.loader is None:
        bunch = skdata.load_digits()
        return bunch.data.astype(np.float64), bunch.target, None
    frame = work.loader(as_frame=True).frame
    path = folder / f"{work.name}.csv"
    frame.to_csv(path, index=False)
    X = frame.drop(columns="target").to_numpy(np.float64)
    return X, frame["target"].to_numpy(), path


def wxb_command() -> list[str]:
    """The wxb entry point beside this interpreter, else ``python -m wxb.cli``."""
    script = Path(sys.executable).with_name("wxb")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "wxb.cli"]


def run_wxb(csv: Path | None, seed: int, extra: list[str], folder: Path) -> dict[str, object]:
    """One ``wxb train``: its test figures, epochs run and wall time."""
    model = folder / f"model-{seed}.safetensors"
    history = folder / f"history-{seed}.json"
    data = [] if csv is None else ["--data", str(csv), "--target", "target"]
    command = [*wxb_command(), "train", *data, "--seed", str(seed), "-q"]
    command += ["-o", str(model), "--history", str(history), *extra]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed ({done.returncode}):\n{done.stderr}")
    info = wxb.load(model).info
    record = json.loads(history.read_text())
    rows = re.search(r"(\d+) test\b", done.stdout)  # "data: … 120 train, 30 test"
    return {
        "test_rows": int(rows.group(1)) if rows else None,
        "test": info["test"],
        "task": info["task"],
        "epochs": len(record["history"]["loss"]),
        "best_epoch": record["best_epoch"],
        "stopped_early": record["stopped_early"],
        "seconds": seconds,
    }


def run_sklearn(work: Table, X: np.ndarray, y: np.ndarray, seed: int) -> dict[str, object]:
    """scikit-learn's MLP on wxb's train rows (all of them), scored on wxb's test rows."""
    labels = np.unique(y, return_inverse=True)[1] if work.task == "classification" else None
    train, test = split_indices(len(X), TEST_SPLIT, np.random.default_rng(seed), labels)
    scaler = StandardScaler().fit(X[train])
    cls = MLPClassifier if work.task == "classification" else MLPRegressor
    estimator = cls(random_state=seed, max_iter=MAX_ITER)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        estimator.fit(scaler.transform(X[train]), y[train])
        seconds = time.perf_counter() - start
    predicted = estimator.predict(scaler.transform(X[test]))
    score = accuracy_score if work.task == "classification" else r2_score
    return {
        "score": float(score(y[test], predicted)),
        "test_rows": len(test),
        "n_iter": int(estimator.n_iter_),
        "converged": not any(issubclass(w.category, ConvergenceWarning) for w in caught),
        "seconds": seconds,
    }


def bench(work: Table, seeds: range, extra: list[str], folder: Path) -> dict[str, object]:
    X, y, csv = load(work, folder)
    runs = []
    for seed in seeds:
        ours = run_wxb(csv, seed, extra, folder)
        if ours["task"] != work.task:
            raise RuntimeError(f"wxb took {work.name} for {ours['task']}, not {work.task}")
        theirs = run_sklearn(work, X, y, seed)
        if ours["test_rows"] != theirs["test_rows"]:
            raise RuntimeError(
                f"{work.name}: wxb tests on {ours['test_rows']} rows, "
                f"scikit-learn on {theirs['test_rows']}"
            )
        runs.append({"seed": seed, "wxb": ours, "sklearn": theirs})
        progress(
            f"  {work.name} seed {seed}: wxb {ours['test'][work.metric]:.4f} "
            f"({ours['epochs']} epochs, {ours['seconds']:.1f} s), "
            f"sklearn {theirs['score']:.4f} ({theirs['n_iter']} iterations)"
        )
    ours_scores = [r["wxb"]["test"][work.metric] for r in runs]
    theirs_scores = [r["sklearn"]["score"] for r in runs]
    test_rows = runs[0]["sklearn"]["test_rows"]
    # classification: in test rows a seed (accuracy × rows is a count)
    unit = test_rows if work.metric == "accuracy" else 1.0
    differences = [(a - b) * unit for a, b in zip(ours_scores, theirs_scores, strict=True)]
    return {
        "data": work.name,
        "rows": len(X),
        "features": X.shape[1],
        "metric": work.metric,
        "test_rows": runs[0]["sklearn"]["test_rows"],
        "wxb_mean": statistics.fmean(ours_scores),
        "wxb_sd": statistics.stdev(ours_scores) if len(seeds) > 1 else 0.0,
        "sklearn_mean": statistics.fmean(theirs_scores),
        "sklearn_sd": statistics.stdev(theirs_scores) if len(seeds) > 1 else 0.0,
        "wxb_mean_s": statistics.fmean(r["wxb"]["seconds"] for r in runs),
        "wxb_mean_epochs": statistics.fmean(r["wxb"]["epochs"] for r in runs),
        "sklearn_mean_s": statistics.fmean(r["sklearn"]["seconds"] for r in runs),
        "sklearn_all_converged": all(r["sklearn"]["converged"] for r in runs),
        "passes": statistics.fmean(ours_scores) >= statistics.fmean(theirs_scores),
        "paired": paired(differences),
        "paired_unit": "test rows a seed" if work.metric == "accuracy" else work.metric,
        "runs": runs,
    }


def paired(differences: list[float]) -> dict[str, float | int]:
    """Mean of the per-seed differences, its 95 % t interval, and the signs' counts."""
    n = len(differences)
    mean = statistics.fmean(differences)
    half = 0.0
    if n > 1:
        from scipy.stats import t  # scikit-learn's own dependency

        half = float(t.ppf(0.975, n - 1)) * statistics.stdev(differences) / n**0.5
    return {
        "mean": mean,
        "low": mean - half,
        "high": mean + half,
        "won": sum(d > 0 for d in differences),
        "tied": sum(d == 0 for d in differences),
        "lost": sum(d < 0 for d in differences),
    }


# -- report ------------------------------------------------------------------------------
def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def paired_text(result: dict[str, object]) -> str:
    p, digits = result["paired"], 2 if result["metric"] == "accuracy" else 4
    unit = " rows" if result["metric"] == "accuracy" else ""
    return f"{p['mean']:+.{digits}f}{unit} ({p['low']:+.{digits}f}, {p['high']:+.{digits}f})"


def render(results: list[dict[str, object]]) -> str:
    headers = [
        "data",
        "rows",
        "metric",
        "wxb (mean ± sd)",
        "scikit-learn (mean ± sd)",
        "passes",
        "wxb − sklearn, paired (95 % CI)",
        "seeds won/tied/lost",
        "wxb epochs",
        "wxb s",
        "sklearn s",
        "sklearn converged",
    ]
    rows = [
        [
            r["data"],
            str(r["rows"]),
            "R²" if r["metric"] == "r2" else r["metric"],
            f"{r['wxb_mean']:.4f} ± {r['wxb_sd']:.4f}",
            f"{r['sklearn_mean']:.4f} ± {r['sklearn_sd']:.4f}",
            "yes" if r["passes"] else "**no**",
            paired_text(r),
            f"{r['paired']['won']}/{r['paired']['tied']}/{r['paired']['lost']}",
            f"{r['wxb_mean_epochs']:.0f}",
            f"{r['wxb_mean_s']:.1f}",
            f"{r['sklearn_mean_s']:.1f}",
            "all" if r["sklearn_all_converged"] else "**not all**",
        ]
        for r in results
    ]
    return table(headers, rows, text_columns=3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="how many seeds (default: 5)")
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds FIRST..FIRST+N-1 (default: 0); try a change on seeds other than "
        "the reported 0..4, so that it is not chosen on their test rows",
    )
    parser.add_argument(
        "--datasets",
        default=DEFAULT_TABLES,
        help=f"comma separated, from {', '.join(TABLES)}, or 'generated' for the last "
        f"{len(GENERATED)} (default: {DEFAULT_TABLES})",
    )
    parser.add_argument(
        "--wxb-args", default="", help='extra wxb train options, e.g. "--epochs 300"'
    )
    parser.add_argument("--json", type=Path, default=HERE / "results" / "table_defaults.json")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    if names == ["generated"]:
        names = list(GENERATED)
    unknown = [n for n in names if n not in TABLES]
    if unknown:
        parser.error(f"unknown data sets {unknown}; choose from {', '.join(TABLES)}")
    if args.seeds < 1 or args.first_seed < 0:
        parser.error("--seeds must be ≥ 1 and --first-seed ≥ 0")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    extra = shlex.split(args.wxb_args)
    load_start = load_average()
    print(
        f"# default `wxb train` vs scikit-learn {sklearn.__version__} MLP: test score, "
        f"seeds {seeds.start}–{seeds.stop - 1}\n\n"
        f"- wxb {wxb.__version__}, options: {shlex.join(extra) or '(defaults)'}\n"
        f"- scikit-learn: StandardScaler, hidden (100,), Adam, lr 1e-3, alpha 1e-4, "
        f"max_iter {MAX_ITER}, on the rows wxb does not test on; load average at the "
        f"start: {load_start}\n"
    )
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="wxb-table-") as tmp:
        for name in names:
            progress(name)
            results.append(bench(TABLES[name], seeds, extra, Path(tmp)))
    print(render(results))
    failed = [r["data"] for r in results if not r["passes"]]
    print(f"\n{'all pass' if not failed else 'below scikit-learn: ' + ', '.join(failed)}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv if argv is None else argv,
        "wxb_args": extra,
        "seeds": list(seeds),
        "wxb": wxb.__version__,
        "sklearn": sklearn.__version__,
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "elapsed_s": time.perf_counter() - started,
        "results": results,
    }
    args.json.write_text(json.dumps(record, indent=1, default=float))
    progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
