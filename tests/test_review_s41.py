"""Review of seven commits of 2026-12-06 (table stage, seeded Dropout, --x-array,
the scikit-learn trajectory allowance, Huber's δ in explain, --diagnose's factor)."""

from __future__ import annotations

import warnings

import numpy as np
from test_sklearn_trajectory_hunt import (
    RoundingSpread,
    SkClassifier,
    fit_recording,
    relative_error,
)


def test_trajectory_allowance_takes_text_labels(seeded, rng):
    """The trajectory test's allowance (how far scikit-learn moves from itself when X or
    y moves by one unit in the last place) nudged y with np.nextafter whatever it held:
    labels 'no'/'yes' or 'a'..'d' (a quarter and a third of the binary and multiclass
    draws) raised numpy's TypeError in the test instead of measuring the allowance.
    Labels have no last place: X alone is nudged, as a run by hand measures it."""
    n, d = int(rng.integers(20, 80)), int(rng.integers(1, 5))
    X = rng.standard_normal((n, d))
    k = int(rng.integers(2, 5))
    codes = rng.integers(0, k, n)
    codes[:k] = np.arange(k)
    y = np.array(list("abcd"))[codes]
    params = {
        "hidden_layer_sizes": (int(rng.integers(1, 6)),),
        "solver": "adam",
        "max_iter": int(rng.integers(2, 6)),
        "random_state": int(rng.integers(2**31)),
        "epsilon": float(10 ** rng.uniform(-9, -6)),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, epochs, _, _ = fit_recording(SkClassifier, params, X, y, None)
        _, moved, _, _ = fit_recording(SkClassifier, params, np.nextafter(X, np.inf), y, None)
        spread = RoundingSpread(SkClassifier, params, X, y, None, epochs)
        for epoch in range(1, len(epochs) + 1):
            expected = max(
                relative_error(u, v)
                for u, v in zip(moved[epoch - 1], epochs[epoch - 1], strict=True)
            )
            assert spread.spread(epoch) == expected, seeded.msg(f"epoch {epoch}")
