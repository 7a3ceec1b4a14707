"""wxb.sklearn against scikit-learn's MLPs epoch by epoch, from a fresh ``fit``.

``test_sklearn_parity.py`` copies weights into warm-started estimators; here nothing is
copied: both estimators get the same ``random_state`` (so the same initial weights,
validation split and shuffles) and the same generated settings, and the weights are
read at the end of every epoch (each library's ``_update_no_improvement_count``, which
both call once an epoch after the updates). The settings span what the copied-weights
tests hold fixed: momentum 0, α from 0 to 1, ``hidden_layer_sizes=()``, short last
batches, ``tol``/``n_iter_no_change`` stops, ``max_iter`` reached, early stopping (with
sample weights), labels as strings, shifted ints or bools, one or several regression
outputs, sparse X; the stop, the warnings, the validation scores, ``verbose``'s lines
and the predictions must be scikit-learn's.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings

import numpy as np
import pytest
import scipy.sparse
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor

from wxb.sklearn import MLPClassifier, MLPRegressor

RTOL = 1e-10
ACTIVATIONS = ("identity", "logistic", "tanh", "relu")


def relative_error(ours, ref) -> float:
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if ours.shape != ref.shape or not np.array_equal(np.isnan(ours), np.isnan(ref)):
        return float("inf")
    # a diverged run: its ±inf where scikit-learn's are, the finite rest compared
    infinite = np.isinf(ref)
    if not np.array_equal(ours[infinite], ref[infinite]):
        return float("inf")
    ours, ref = ours[np.isfinite(ref)], ref[np.isfinite(ref)]
    scale = max(float(np.max(np.abs(ref), initial=0.0)), 1e-300)
    return float(np.max(np.abs(ours - ref), initial=0.0)) / scale


def make_task(rng: np.random.Generator, task: str):
    n = int(rng.integers(20, 260))  # past 200 rows, batch_size="auto" leaves a short batch
    features = int(rng.integers(1, 6))
    X = rng.standard_normal((n, features))
    signal = X @ rng.standard_normal((features, 4)) + 0.5 * rng.standard_normal((n, 4))
    if task == "binary":
        y = (signal[:, 0] > 0).astype(int)
        y[:4] = [0, 1, 0, 1]  # (a stratified split needs two of each)
        return X, [y, np.array(["no", "yes"])[y], y + 7, y.astype(bool)][rng.integers(4)]
    if task == "multiclass":
        k = int(rng.integers(3, 5))
        y = signal[:, :k].argmax(axis=1)
        y[:k] = np.arange(k)
        return X, [y, np.array(list("abcd"))[y], 3 * y - 5][rng.integers(3)]
    if task == "multilabel":
        return X, (signal[:, : int(rng.integers(2, 4))] > 0).astype(int)
    outputs = int(rng.integers(1, 4))
    if task == "poisson":
        return X, rng.poisson(np.exp(0.3 * signal[:, 0])).astype(float)
    return X, signal[:, 0] if outputs == 1 else signal[:, :outputs]


def draw_params(rng: np.random.Generator, task: str, n: int) -> dict:
    depth = int(rng.integers(0, 3))
    params = {
        "hidden_layer_sizes": tuple(int(h) for h in rng.integers(1, 7, size=depth)),
        "activation": ACTIVATIONS[int(rng.integers(4))],
        "solver": ("sgd", "adam")[int(rng.integers(2))],
        "alpha": float((0.0, 1.0, 10 ** rng.uniform(-5, 0))[int(rng.integers(3))]),
        "batch_size": "auto" if rng.random() < 0.3 else int(rng.integers(1, n + 5)),
        "learning_rate": ("constant", "invscaling", "adaptive")[int(rng.integers(3))],
        "learning_rate_init": float(10 ** rng.uniform(-3, -1.3)),
        "power_t": float(rng.uniform(0.1, 0.9)),
        "max_iter": int(rng.integers(1, 25)),
        "shuffle": bool(rng.random() < 0.5),
        "random_state": int(rng.integers(2**31)),
        "tol": float(10 ** rng.uniform(-4, -1)),
        "momentum": float((0.0, 0.9, rng.uniform(0, 1))[int(rng.integers(3))]),
        "nesterovs_momentum": bool(rng.random() < 0.5),
        "early_stopping": bool(rng.random() < 0.4),
        "validation_fraction": float(rng.uniform(0.1, 0.4)),
        "beta_1": float(rng.uniform(0.5, 0.99)),
        "beta_2": float(rng.uniform(0.9, 0.9999)),
        "epsilon": float(10 ** rng.uniform(-9, -6)),
        "n_iter_no_change": int(rng.integers(1, 5)),
        "verbose": bool(rng.random() < 0.3),
    }
    if task == "poisson":
        params["loss"] = "poisson"
        params["learning_rate_init"] = min(params["learning_rate_init"], 0.005)
    return params


def fit_recording(cls, params, X, y, sample_weight):
    """The fitted estimator, its weights after every epoch, its warnings and its printed
    lines (numbers masked: compared apart)."""
    est = cls(**params)
    epochs = []
    record = est._update_no_improvement_count

    def recording(*args, **kwargs):
        epochs.append([np.array(w) for w in (*est.coefs_, *est.intercepts_)])
        return record(*args, **kwargs)

    est._update_no_improvement_count = recording
    printed = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(printed):
        warnings.simplefilter("always")
        try:
            est.fit(X, y, sample_weight=sample_weight)
        except (ValueError, ZeroDivisionError) as error:
            # non-finite weights after a diverged fit; a batch whose weights are all 0
            return error, epochs, [], ""
    del est._update_no_improvement_count
    # (NumPy's RuntimeWarnings name the operation that overflowed: not compared)
    said = {(w.category.__name__, str(w.message)) for w in caught}
    said = sorted(s for s in said if s[0] != "RuntimeWarning")
    return est, epochs, said, printed.getvalue()


class RoundingSpread:
    """How far scikit-learn's own weights move, epoch by epoch, when X's or y's values
    move by one unit in the last place: a run whose steps amplify rounding (Adam with
    ε ~ 1e-9 over hundreds of steps through ReLU's kinks) diverges from itself by 1e-8
    in a few epochs, so summation orders alone put wxb that far off. A comparison may
    be off by ten times that spread, and by RTOL always; the spread is measured only
    when a comparison is past RTOL."""

    def __init__(self, cls, params, X, y, weights, epochs) -> None:
        self.run = (cls, params, X, y, weights)
        self.epochs, self.spreads = epochs, None

    def spread(self, epoch: int) -> float:
        if self.spreads is None:
            cls, params, X, y, weights = self.run
            nudged_X = X.copy()
            if scipy.sparse.issparse(X):
                nudged_X.data = np.nextafter(X.data, np.inf)
            else:
                nudged_X = np.nextafter(X, np.inf)
            self.spreads = np.zeros(len(self.epochs))
            runs = [(nudged_X, y)]
            if np.asarray(y).dtype.kind == "f":  # labels (text, ints, bools) have no last place
                runs.append((X, np.nextafter(y, np.inf)))
            for args in runs:
                _, moved, _, _ = fit_recording(cls, params, *args, weights)
                for e, (a, b) in enumerate(zip(moved, self.epochs, strict=False)):
                    gap = max(relative_error(u, v) for u, v in zip(a, b, strict=True))
                    self.spreads[e] = max(self.spreads[e], gap)
        return float(self.spreads[epoch - 1]) if len(self.spreads) else 0.0

    def allowed(self, err: float, epoch: int) -> float:
        return RTOL if err <= RTOL else max(RTOL, 10 * self.spread(epoch))


def compare_fits(rng, seeded, task: str) -> None:
    X, y = make_task(rng, task)
    params = draw_params(rng, task, len(X))
    weights = None
    if rng.random() < 0.4:
        weights = rng.uniform(0.1, 3.0, len(X))
        weights[rng.random(len(X)) < 0.2] = 0.0
        weights[:4] = 1.0  # never all zero
    if rng.random() < 0.2:
        X = scipy.sparse.csr_matrix(X * (rng.random(X.shape) < 0.6))
    regression = task in ("regression", "poisson")
    sk_cls, our_cls = (SkRegressor, MLPRegressor) if regression else (SkClassifier, MLPClassifier)
    what = seeded.msg(f"{task} n={X.shape[0]} weighted={weights is not None} {params}")
    ref, ref_epochs, ref_said, ref_printed = fit_recording(sk_cls, params, X, y, weights)
    ours, our_epochs, our_said, our_printed = fit_recording(our_cls, params, X, y, weights)
    if isinstance(ref, Exception):
        assert isinstance(ours, type(ref)) and str(ours) == str(ref), f"{what}: {ours!r}"
        return

    assert ours.n_iter_ == ref.n_iter_, what
    assert ours.t_ == ref.t_, what
    assert our_said == ref_said, what  # ConvergenceWarning at max_iter, batch clipping, …
    assert len(our_epochs) == len(ref_epochs) == ref.n_iter_, what
    rounding = RoundingSpread(sk_cls, params, X, y, weights, ref_epochs)
    for epoch, (a, b) in enumerate(zip(our_epochs, ref_epochs, strict=True), 1):
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            err = relative_error(u, v)
            assert err <= rounding.allowed(err, epoch), (
                f"{what}: epoch {epoch}, parameter {i} off by {err:.1e} "
                f"(scikit-learn against itself: {rounding.spread(epoch):.1e})"
            )

    def close(err: float) -> bool:  # within the last epoch's allowance
        return err <= rounding.allowed(err, len(ref_epochs))

    err = relative_error(ours.loss_curve_, ref.loss_curve_)
    assert close(err), f"{what}: loss_curve_ off by {err:.1e}"
    if params["early_stopping"]:
        err = relative_error(ours.validation_scores_, ref.validation_scores_)
        assert close(err), f"{what}: validation_scores_ off by {err:.1e}"
        assert close(relative_error(ours.best_validation_score_, ref.best_validation_score_))
        assert ours.best_loss_ is None and ref.best_loss_ is None, what
    else:
        assert close(relative_error(ours.best_loss_, ref.best_loss_)), what
        assert ours.validation_scores_ is None and ref.validation_scores_ is None, what
    # the weights kept (the best epoch's under early stopping), and what they predict
    for u, v in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_, strict=True):
        assert close(relative_error(u, v)), f"{what}: final weights"
    mask = r"-?\d+\.\d+(e[-+]?\d+)?"
    assert re.sub(mask, "#", our_printed) == re.sub(mask, "#", ref_printed), what
    numbers = [[float(m.group()) for m in re.finditer(mask, t)] for t in (our_printed, ref_printed)]
    try:
        np.testing.assert_allclose(*numbers, rtol=1e-8, atol=2e-6, err_msg=what)  # 6-8 places
    except AssertionError:  # a run that amplifies rounding: within its own spread
        spread = 10 * rounding.spread(len(ref_epochs))
        np.testing.assert_allclose(*numbers, rtol=spread, atol=2e-6, err_msg=what)
    if regression:
        assert close(relative_error(ours.predict(X), ref.predict(X))), what
    else:
        np.testing.assert_array_equal(ours.classes_, ref.classes_, err_msg=what)
        np.testing.assert_array_equal(ours.predict(X), ref.predict(X), err_msg=what)
        assert ours.predict(X).dtype == ref.predict(X).dtype, what
        assert close(relative_error(ours.predict_proba(X), ref.predict_proba(X))), what
    assert close(relative_error(ours.score(X, y, weights), ref.score(X, y, weights))), what


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel", "regression", "poisson"])
def test_fresh_fit_follows_sklearn_epoch_by_epoch(seeded, rng, task):
    for _ in range(12):
        compare_fits(rng, seeded, task)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel", "regression", "poisson"])
def test_fresh_fit_follows_sklearn_epoch_by_epoch_many(seeded, rng, task):
    for _ in range(60):
        compare_fits(rng, seeded, task)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_numpy_float32_alpha_is_not_rounded_to_float32(seeded, rng, solver):
    # alpha=np.float32(0.7) (a grid of float32 values): α/B was computed as a float32,
    # so the L2 gradient was 3e-8 off and the weights 1e-8 away from scikit-learn's,
    # whose α·W is a float64 product in a float64 network
    X = rng.standard_normal((int(rng.integers(40, 120)), 3))
    y = X @ rng.standard_normal(3)
    params = {
        "hidden_layer_sizes": (int(rng.integers(2, 7)),),
        "solver": solver,
        "alpha": np.float32(rng.uniform(0.1, 2.0)),
        "batch_size": int(rng.integers(7, 20)),
        "learning_rate_init": 0.05,
        "max_iter": 20,
        "tol": 0.0,
        "random_state": int(rng.integers(2**31)),
    }
    what = seeded.msg(f"{params}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = SkRegressor(**params).fit(X, y)
        ours = MLPRegressor(**params).fit(X, y)
    for u, v in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_, strict=True):
        assert relative_error(u, v) <= RTOL, f"{what}: off by {relative_error(u, v):.1e}"
    assert relative_error(ours.loss_, ref.loss_) <= RTOL, what
