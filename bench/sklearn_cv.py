"""Cross-validated scores of wxb's scikit-learn estimators beside scikit-learn's own, with
the same hyper-parameters, on the data sets scikit-learn ships.

    .venv/bin/python bench/sklearn_cv.py            # about two minutes on 2 cores
    .venv/bin/python bench/sklearn_cv.py --quick    # fewer iterations, a smoke run

Each estimator sits in a Pipeline after a StandardScaler (as scikit-learn's guide
advises for its MLP) and is scored by 5-fold cross-validation on the same folds:
accuracy for the classifiers, R² for the regressor. The bar: wxb's mean score is at
least scikit-learn's mean minus the standard deviation of scikit-learn's folds.
Prints a Markdown table and writes JSON (default bench/results/sklearn_cv.json).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from wxb.sklearn import MLPClassifier, MLPRegressor

DATA = {
    "digits": (datasets.load_digits, "classification"),
    "iris": (datasets.load_iris, "classification"),
    "wine": (datasets.load_wine, "classification"),
    "breast cancer": (datasets.load_breast_cancer, "classification"),
    "diabetes": (datasets.load_diabetes, "regression"),
}


def settings(task: str, quick: bool) -> dict:
    """The same hyper-parameters for both libraries (scikit-learn's defaults, but more
    iterations for the regressor, whose default 200 stop short on diabetes)."""
    common = {"hidden_layer_sizes": (100,), "random_state": 0}
    if task == "regression":
        common.update(max_iter=100 if quick else 2000, learning_rate_init=0.01)
    else:
        common.update(max_iter=50 if quick else 500)
    return common


def score(estimator, X, y, folds) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(make_pipeline(StandardScaler(), estimator), X, y, cv=folds)
    return scores, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", default="bench/results/sklearn_cv.json")
    args = parser.parse_args()
    rows = []
    for name, (load, task) in DATA.items():
        X, y = load(return_X_y=True)
        options = settings(task, args.quick)
        if task == "classification":
            folds = StratifiedKFold(5, shuffle=True, random_state=0)
            ours, theirs = MLPClassifier(**options), SkClassifier(**options)
        else:
            folds = KFold(5, shuffle=True, random_state=0)
            ours, theirs = MLPRegressor(**options), SkRegressor(**options)
        wxb_scores, wxb_s = score(ours, X, y, folds)
        sk_scores, sk_s = score(theirs, X, y, folds)
        bar = sk_scores.mean() - sk_scores.std()
        rows.append(
            {
                "data": name,
                "samples": len(X),
                "metric": "accuracy" if task == "classification" else "R²",
                "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
                "wxb": wxb_scores.tolist(),
                "sklearn": sk_scores.tolist(),
                "wxb_seconds": wxb_s,
                "sklearn_seconds": sk_s,
                "meets_bar": bool(wxb_scores.mean() >= bar),
            }
        )
    print(
        "| data | metric | wxb (mean ± sd) | scikit-learn (mean ± sd) | bar | meets "
        "| time wxb / sklearn |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        w, s = np.array(r["wxb"]), np.array(r["sklearn"])
        print(
            f"| {r['data']} ({r['samples']}) | {r['metric']} | {w.mean():.4f} ± {w.std():.4f} "
            f"| {s.mean():.4f} ± {s.std():.4f} | {s.mean() - s.std():.4f} "
            f"| {'yes' if r['meets_bar'] else 'NO'} "
            f"| {r['wxb_seconds']:.1f} s / {r['sklearn_seconds']:.1f} s |"
        )
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
