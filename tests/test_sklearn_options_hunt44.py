"""wxb.sklearn against scikit-learn's MLPs on the options and call sequences the other
sklearn tests leave out (L-BFGS stopped by max_iter or max_fun, settings given as NumPy
float32/float16 scalars, ReLU units dead on every row, fit/partial_fit/set_params in any
order): each test draws its data and settings fresh, fits both estimators with the same
``random_state`` and compares what a user sees (regression tests for the defects found)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor

from wxb.sklearn import MLPClassifier, MLPRegressor


def _task(rng: np.random.Generator, task: str):
    n, features = int(rng.integers(20, 120)), int(rng.integers(1, 5))
    X = rng.standard_normal((n, features))
    signal = X @ rng.standard_normal((features, 3)) + 0.3 * rng.standard_normal((n, 3))
    if task == "regressor":
        return X, signal[:, 0], SkRegressor, MLPRegressor
    y = signal.argmax(axis=1)
    y[:3] = [0, 1, 2]
    return X, y, SkClassifier, MLPClassifier


def _fit_caught(est, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, y)
    return [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]


@pytest.mark.parametrize("task", ["classifier", "regressor"])
def test_lbfgs_stopped_early_warns_as_sklearn(seeded, task):
    # L-BFGS stopped by max_iter or max_fun: scikit-learn's ConvergenceWarning ends
    # with its advice to scale the data; wxb's left that paragraph out
    rng = seeded.rng
    for _ in range(20):  # (a draw that converges within max_iter warns of nothing: again)
        X, y, sk_cls, our_cls = _task(rng, task)
        params = {
            "hidden_layer_sizes": (int(rng.integers(1, 6)),),
            "solver": "lbfgs",
            "max_iter": int(rng.integers(1, 6)),
            "max_fun": int(rng.integers(1, 8)) if rng.random() < 0.5 else 15000,
            "random_state": int(rng.integers(2**31)),
        }
        what = seeded.msg(f"{task} n={len(X)} {params}")
        ref = _fit_caught(sk_cls(**params), X, y)
        ours = _fit_caught(our_cls(**params), X, y)
        assert ours == ref, what
        if ref:
            break
    # a stop within a few iterations or evaluations: L-BFGS on a hidden unit or two can
    # converge within 5 iterations (26 draws in 4000), never 20 times running
    assert ref, what


def _relative_error(ours, ref) -> float:
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    return float(np.max(np.abs(ours - ref))) / max(float(np.max(np.abs(ref))), 1e-300)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_numpy_float_settings_round_as_in_sklearn(seeded, solver):
    # beta_1/beta_2 (Adam) and power_t (SGD's invscaling) as NumPy float32 or float16 (a
    # grid of such values): scikit-learn computes 1 − β, η·√(1 − β₂ᵗ)/(1 − β₁ᵗ) and
    # (t + 1)^power_t in that type; wxb made floats of them, and its weights were 1e-8
    # (float32) to 1e-4 (float16) away from scikit-learn's after 20 epochs
    rng = seeded.rng
    X, y, sk_cls, our_cls = _task(rng, "regressor" if rng.random() < 0.5 else "classifier")
    kind = (np.float32, np.float16)[int(rng.integers(2))]
    params = {
        "hidden_layer_sizes": (int(rng.integers(1, 6)),),
        "solver": solver,
        "batch_size": int(rng.integers(5, 30)),
        "learning_rate_init": float(10 ** rng.uniform(-3, -1.7)),
        "max_iter": int(rng.integers(5, 20)),
        "tol": 0.0,
        "random_state": int(rng.integers(2**31)),
    }
    if rng.random() < 0.5:
        params["learning_rate_init"] = kind(params["learning_rate_init"])
    if solver == "adam":
        params["beta_1"] = kind(rng.uniform(0.1, 0.95))
        params["beta_2"] = kind(rng.uniform(0.9, 0.999))
    else:
        params["learning_rate"] = "invscaling"
        params["power_t"] = kind(rng.uniform(0.1, 0.9))
        params["learning_rate_init"] = kind(0.1) if rng.random() < 0.5 else 0.1
    what = seeded.msg(f"{our_cls.__name__} n={len(X)} {params}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref, ours = sk_cls(**params).fit(X, y), our_cls(**params).fit(X, y)
        # and after a pickle round trip, one more epoch each (the settings travel along)
        ref = pickle.loads(pickle.dumps(ref)).partial_fit(X, y)
        ours = pickle.loads(pickle.dumps(ours)).partial_fit(X, y)
    for u, v in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_, strict=True):
        assert _relative_error(u, v) <= 1e-10, f"{what}: off by {_relative_error(u, v):.1e}"
    assert _relative_error(ours.loss_curve_, ref.loss_curve_) <= 1e-10, what


# -- call sequences: fit, partial_fit and set_params in any order ----------------------------
_CHANGES = {  # settings a user changes between calls, and how to draw them
    "solver": lambda rng: ("sgd", "adam")[int(rng.integers(2))],
    "warm_start": lambda rng: bool(rng.random() < 0.6),
    "early_stopping": lambda rng: bool(rng.random() < 0.3),
    "alpha": lambda rng: float(10 ** rng.uniform(-5, 0)),
    "learning_rate_init": lambda rng: float(10 ** rng.uniform(-3, -1.5)),
    "learning_rate": lambda rng: ("constant", "invscaling", "adaptive")[int(rng.integers(3))],
    "batch_size": lambda rng: int(rng.integers(1, 150)),
    "shuffle": lambda rng: bool(rng.random() < 0.5),
    "activation": lambda rng: ("identity", "logistic", "tanh", "relu")[int(rng.integers(4))],
    "max_iter": lambda rng: int(rng.integers(1, 8)),
    "tol": lambda rng: float(10 ** rng.uniform(-4, -1)),
    "n_iter_no_change": lambda rng: int(rng.integers(1, 4)),
    "momentum": lambda rng: float(rng.uniform(0, 0.95)),
}
_RECORDS = ("n_iter_", "t_", "loss_", "loss_curve_", "best_loss_", "validation_scores_",
            "best_validation_score_", "_no_improvement_count", "out_activation_")  # fmt: skip


def _call(est, method, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            getattr(est, method)(*args, **kwargs)
        except Exception as error:  # (compared with scikit-learn's)
            return error, []
    return None, sorted({(w.category.__name__, str(w.message)) for w in caught
                         if not issubclass(w.category, RuntimeWarning)})  # fmt: skip


def _same_state(ours, ref, X, what) -> None:
    for name in _RECORDS:
        assert hasattr(ours, name) == hasattr(ref, name), f"{what}: {name}"
        a, b = getattr(ours, name, None), getattr(ref, name, None)
        if a is None or b is None or isinstance(b, str):
            assert a == b, f"{what}: {name} {a!r} against {b!r}"
        elif np.size(b):
            err = _relative_error(a, b)
            assert err <= 1e-8, f"{what}: {name} off by {err:.1e} ({a} against {b})"
    pairs = zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_, strict=True)
    for i, (u, v) in enumerate(pairs):
        assert u.shape == v.shape, f"{what}: parameter {i}"
        assert _relative_error(u, v) <= 1e-8, f"{what}: parameter {i} off"
    out = (
        (lambda e: e.predict_proba(X))
        if hasattr(ref, "predict_proba")
        else (lambda e: e.predict(X))
    )
    assert _relative_error(out(ours), out(ref)) <= 1e-8, what
    np.testing.assert_array_equal(ours.predict(X).shape, ref.predict(X).shape, err_msg=what)


def _run_sequence(rng, seeded) -> None:
    task = ("classifier", "regressor")[int(rng.integers(2))]
    X, y, sk_cls, our_cls = _task(rng, task)
    if task == "classifier" and rng.random() < 0.3:
        y = np.array(["ant", "bee", "cat"])[y]
    params = {name: draw(rng) for name, draw in _CHANGES.items()}
    params["hidden_layer_sizes"] = tuple(
        int(h) for h in rng.integers(1, 6, int(rng.integers(0, 3)))
    )
    params["random_state"] = int(rng.integers(2**31))
    ours, ref = our_cls(**params), sk_cls(**params)
    steps = [f"{our_cls.__name__} n={len(X)} {params}"]
    fitted = False
    for _ in range(int(rng.integers(2, 6))):
        if fitted and rng.random() < 0.3:
            names = rng.choice(list(_CHANGES), size=int(rng.integers(1, 3)), replace=False)
            change = {str(name): _CHANGES[str(name)](rng) for name in names}
            ours.set_params(**change)
            ref.set_params(**change)
            steps.append(f"set_params({change})")
            continue
        weights = rng.uniform(0.2, 2.0, len(X)) if rng.random() < 0.3 else None
        kwargs = {"sample_weight": weights}
        method = "fit" if rng.random() < 0.5 else "partial_fit"
        if method == "partial_fit" and task == "classifier":
            kwargs["classes"] = np.unique(y)
        if fitted and method == "fit" and ref.warm_start and ref.early_stopping:
            return  # parts from scikit-learn on purpose (docs/sklearn.md)
        steps.append(f"{method}(weighted={weights is not None})")
        what = seeded.msg(" → ".join(steps))
        ref_error, ref_said = _call(ref, method, X, y, **kwargs)
        if isinstance(ref_error, (TypeError, AttributeError)):
            return  # scikit-learn's own crash (e.g. partial_fit after an early-stopped fit)
        our_error, our_said = _call(ours, method, X, y, **kwargs)
        assert type(our_error) is type(ref_error), f"{what}: {our_error!r} against {ref_error!r}"
        if ref_error is not None:
            assert str(our_error) == str(ref_error), what
            return
        assert our_said == ref_said, what
        fitted = True
        _same_state(ours, ref, X, what)


def test_call_sequences_follow_sklearn(seeded):
    # fit / partial_fit / set_params in random orders, each step compared with scikit-learn
    # (warm starts, an optimiser kept across partial_fit calls, settings changed between
    # calls, early stopping switched on and off): no defect found, kept as a guard
    for _ in range(8):
        _run_sequence(seeded.rng, seeded)


@pytest.mark.parametrize("task", ["classifier", "regressor"])
def test_dead_relu_units_weights_follow_sklearn(seeded, task):
    # a ReLU unit dead on every row has the L2 term alone for its weights' gradient;
    # wxb rounded it as (α/B)·W where scikit-learn has (α·W)/B, and Adam's m/(√v + ε)
    # blew that rounding up: after 26 epochs a dead unit's weight was +2.4e-3 against
    # scikit-learn's −1.0e-3 (predictions the same, coefs_ not)
    for _ in range(3):  # (a draw shows it more often than not)
        _dead_units_case(seeded, task)


def _dead_units_case(seeded, task) -> None:
    rng = seeded.rng
    X, y, sk_cls, our_cls = _task(rng, task)
    units = int(rng.integers(2, 6))
    params = {
        "hidden_layer_sizes": (units,),
        "alpha": float(10 ** rng.uniform(-2, 0)),
        "batch_size": int(rng.integers(4, 16)),
        "learning_rate_init": float(10 ** rng.uniform(-2, -1.3)),
        "epsilon": float(10 ** rng.uniform(-10, -9)),
        "beta_1": float(rng.uniform(0.5, 0.9)),
        "beta_2": float(rng.uniform(0.9, 0.99)),
        "max_iter": 1,
        "tol": 0.0,
        "shuffle": bool(rng.random() < 0.5),
        "random_state": int(rng.integers(2**31)),
    }
    weights = rng.uniform(0.2, 2.0, len(X)) if rng.random() < 0.5 else None
    more = {"warm_start": True, "max_iter": int(rng.integers(40, 60))}
    dead = rng.choice(units, size=int(rng.integers(1, units)), replace=False)
    what = seeded.msg(f"{task} n={len(X)} dead={dead} weighted={weights is not None} {params}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = our_cls(**params).fit(X, y, sample_weight=weights)
        coefs = [np.array(c) for c in ours.coefs_]
        intercepts = [np.array(b) for b in ours.intercepts_]
        intercepts[0][dead] = -(np.abs(coefs[0][:, dead]).sum(axis=0) * np.abs(X).max() + 1)
        ours.coefs_, ours.intercepts_ = coefs, intercepts
        ref = sk_cls(**params).fit(X, y, sample_weight=weights)  # (fitted, to warm start)
        ref.coefs_ = [c.copy() for c in coefs]
        ref.intercepts_ = [b.copy() for b in intercepts]
        ours.set_params(**more).fit(X, y, sample_weight=weights)
        ref.set_params(**more).fit(X, y, sample_weight=weights)
    assert ours.n_iter_ == ref.n_iter_, what
    for i, (u, v) in enumerate(zip(ours.coefs_, ref.coefs_, strict=True)):
        # the dead units' weights, each alone (the live ones' scale would hide them; the
        # live ones follow scikit-learn to rounding, which Adam with ε this small may
        # amplify as much in scikit-learn against itself: test_sklearn_trajectory_hunt)
        rows = (slice(None), dead) if i == 0 else (dead, slice(None))
        for a, b in zip(u[rows].ravel(), v[rows].ravel(), strict=True):
            assert abs(a - b) <= 1e-10 * max(abs(b), 1e-3), f"{what}: coefs_[{i}] {a} vs {b}"


def test_numpy_float_tol_stops_where_sklearn_stops(seeded):
    # tol as a NumPy float16 (or float32): wxb's losses are Python floats, and best_loss_ −
    # tol became a value of tol's type (float16: 3 digits), so the training-loss rule
    # counted epochs without improvement otherwise: with tol=np.float16(0.000892)
    # scikit-learn cut the adaptive rate after epoch 5 and wxb went on at the same rate
    # (a slow run whose gains fall through tol: half such runs stopped elsewhere)
    rng = seeded.rng
    for _ in range(6):
        X, y, sk_cls, our_cls = _task(rng, "regressor" if rng.random() < 0.5 else "classifier")
        params = {
            "hidden_layer_sizes": (int(rng.integers(1, 6)),),
            "solver": ("sgd", "adam")[int(rng.integers(2))],
            "learning_rate_init": float(10 ** rng.uniform(-3, -2.5)),
            "tol": (np.float16, np.float32)[int(rng.random() < 0.25)](
                10 ** rng.uniform(-3.5, -2.5)
            ),
            "n_iter_no_change": 1,
            "max_iter": 300,
            "random_state": int(rng.integers(2**31)),
        }
        what = seeded.msg(f"{our_cls.__name__} n={len(X)} {params}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ref, ours = sk_cls(**params).fit(X, y), our_cls(**params).fit(X, y)
        assert ours.n_iter_ == ref.n_iter_, what
        assert ours._no_improvement_count == ref._no_improvement_count, what
        assert _relative_error(ours.loss_curve_, ref.loss_curve_) <= 1e-10, what
