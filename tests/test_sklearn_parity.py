"""wxb.sklearn's estimators against scikit-learn's, in float64: the same objective and
the same update rules give the same weights, losses and stopping decisions.

Protocol (``_copied_pair``): both estimators are built by a one-epoch ``fit`` with
different random states, then given the same random weights drawn here (copied into
scikit-learn's lists and through our ``coefs_``/``intercepts_`` setters) and the same
fresh training records; a warm-started ``fit`` over several epochs (a fresh optimiser
in both, schedules acting at epoch ends) and three ``partial_fit`` calls on other data
(the optimiser's state carried over) must then agree to 1e-10 relative after every
call. ``shuffle=False`` throughout, so nothing depends on random numbers.

The last tests do rely on random numbers: with the same ``random_state`` our
estimators draw initial weights, validation splits and shuffles as scikit-learn does.
Sizes, data and hyperparameters are drawn afresh on each run (the seed is printed and
in every message; ``WXB_TEST_SEED`` replays a run).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from rounding import affine_terms, rounding_atol
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor

from wxb.sklearn import MLPClassifier, MLPRegressor

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore:Got `batch_size`:UserWarning"),  # both warn alike
]

RTOL = 1e-10
ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
TASKS = ("binary", "multiclass", "multilabel", "regression", "poisson")
# (solver, nesterovs_momentum, learning_rate)
STOCHASTIC = [
    ("sgd", True, "constant"),
    ("sgd", False, "constant"),
    ("sgd", True, "invscaling"),
    ("sgd", False, "invscaling"),
    ("sgd", True, "adaptive"),
    ("sgd", False, "adaptive"),
    ("adam", True, "constant"),
]


# -- data ---------------------------------------------------------------------------------
def make_task(rng: np.random.Generator, task: str, n: int | None = None):
    """(X, y, classes or None) for a task, with random sizes."""
    n = int(rng.integers(40, 160)) if n is None else n
    features = int(rng.integers(2, 9))
    X = rng.standard_normal((n, features))
    mix = rng.standard_normal((features, 4))
    signal = X @ mix + 0.3 * rng.standard_normal((n, 4))
    if task == "binary":
        y = (signal[:, 0] > 0).astype(int)
        y[:2] = [0, 1]  # both classes present
        return X, y, np.array([0, 1])
    if task == "multiclass":
        k = int(rng.integers(3, 5))
        y = signal[:, :k].argmax(axis=1)
        y[:k] = np.arange(k)
        return X, y, np.arange(k)
    if task == "multilabel":
        k = int(rng.integers(2, 5))
        # scikit-learn reads any two-valued indicator as multilabel, non-zero as on
        off, on = [(0, 1), (0, 2), (-1, 1)][rng.integers(3)]
        return X, np.where(signal[:, :k] > 0, on, off), None
    outputs = int(rng.integers(1, 3))
    if task == "regression":
        y = signal[:, :outputs]
    else:  # poisson counts with a log-linear mean
        y = rng.poisson(np.exp(0.3 * signal[:, :outputs])).astype(float)
    return X, (y[:, 0] if outputs == 1 else y), None


def pair_classes(task: str):
    if task in ("regression", "poisson"):
        return SkRegressor, MLPRegressor
    return SkClassifier, MLPClassifier


def base_params(rng: np.random.Generator, task: str, activation: str) -> dict:
    depth = int(rng.integers(1, 3))
    params = {
        "hidden_layer_sizes": tuple(int(h) for h in rng.integers(2, 10, size=depth)),
        "activation": activation,
        "alpha": float(10 ** rng.uniform(-4, -1)),
        "batch_size": int(rng.integers(8, 50)) if rng.random() < 0.8 else "auto",
        "shuffle": False,
    }
    if task == "poisson":
        params["loss"] = "poisson"
    return params


def stochastic_params(rng: np.random.Generator, solver, nesterov, schedule) -> dict:
    params = {
        "solver": solver,
        "learning_rate": schedule,
        "nesterovs_momentum": nesterov,
        "momentum": float(rng.uniform(0.5, 0.95)),
        "learning_rate_init": float(10 ** rng.uniform(-3, -1.7)),
        "power_t": float(rng.uniform(0.2, 0.7)),
        "beta_1": float(rng.uniform(0.8, 0.95)),
        "beta_2": float(rng.uniform(0.9, 0.999)),
        "epsilon": float(10 ** rng.uniform(-9, -6)),
        # adaptive: a stall every epoch (large tol), so the rate is divided by 5 often
        "tol": 0.5 if schedule == "adaptive" else 1e-4,
        "n_iter_no_change": 1 if schedule == "adaptive" else 3,
    }
    return params


# -- comparison -----------------------------------------------------------------------------
def relative_error(ours: np.ndarray, ref: np.ndarray) -> float:
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape
    gaps = np.isnan(ref)  # both diverged alike (a Poisson loss of NaN): agreement there
    if not np.array_equal(np.isnan(ours), gaps):
        return float("inf")
    ours, ref = ours[~gaps], ref[~gaps]
    ends = np.isinf(ref)  # -inf where both did (a best score of all-NaN scores): the same
    if not np.array_equal(ours[ends], ref[ends]):
        return float("inf")
    ours, ref = ours[~ends], ref[~ends]
    scale = max(float(np.max(np.abs(ref), initial=0.0)), 1e-300)
    return float(np.max(np.abs(ours - ref), initial=0.0)) / scale


def assert_same_fit(ours, ref, seeded, what: str) -> None:
    for name in ("coefs_", "intercepts_"):
        for i, (a, b) in enumerate(zip(getattr(ours, name), getattr(ref, name), strict=True)):
            err = relative_error(a, b)
            assert err <= RTOL, seeded.msg(f"{what}: {name}[{i}] differs by {err:.2e} relative")
    err = relative_error(ours.loss_, ref.loss_)
    assert err <= RTOL, seeded.msg(f"{what}: loss_ {ours.loss_} vs {ref.loss_}")
    assert ours.n_iter_ == ref.n_iter_, seeded.msg(
        f"{what}: n_iter_ {ours.n_iter_} vs {ref.n_iter_}"
    )
    if hasattr(ref, "loss_curve_"):
        assert len(ours.loss_curve_) == len(ref.loss_curve_), seeded.msg(
            f"{what}: loss_curve_ has {len(ours.loss_curve_)} entries, not {len(ref.loss_curve_)}"
        )
        err = relative_error(ours.loss_curve_, ref.loss_curve_)
        assert err <= RTOL, seeded.msg(f"{what}: loss_curve_ differs by {err:.2e} relative")
        assert ours.t_ == ref.t_, seeded.msg(f"{what}: t_ {ours.t_} vs {ref.t_}")
        err = relative_error(ours.best_loss_, ref.best_loss_)
        assert err <= RTOL, seeded.msg(f"{what}: best_loss_ {ours.best_loss_} vs {ref.best_loss_}")


def fit_args(task: str, classes, partial: bool) -> dict:
    return {"classes": classes} if partial and classes is not None else {}


def _copied_pair(rng, task: str, params: dict, X, y, classes, sample_weight=None):
    """Both estimators built by a one-epoch fit (different random states), then the same
    random weights and fresh records in both; warm_start on from here."""
    sk_cls, our_cls = pair_classes(task)
    # The one-epoch build only makes the estimators; its weights are replaced below. A
    # tiny rate keeps it finite whatever the drawn parameters (scikit-learn's own fit
    # from its own initial weights can diverge: a Poisson loss, a linear output).
    lr = params.get("learning_rate_init", sk_cls().get_params()["learning_rate_init"])
    build = {**params, "max_iter": 1, "learning_rate_init": 1e-9}
    ref = sk_cls(**build, random_state=1).fit(X, y)
    ours = our_cls(**build, random_state=2).fit(X, y)
    for est in (ref, ours):  # fit (not partial_fit) comes next: its optimiser takes this rate
        est.set_params(learning_rate_init=lr)
    coefs = [rng.uniform(-0.5, 0.5, c.shape) for c in ref.coefs_]
    intercepts = [rng.uniform(-0.5, 0.5, b.shape) for b in ref.intercepts_]
    ref.coefs_ = [c.copy() for c in coefs]
    ref.intercepts_ = [b.copy() for b in intercepts]
    ours.coefs_ = coefs  # copied in through the setters
    for i, b in enumerate(intercepts):
        ours.intercepts_[i] = b  # item assignment writes through too
    for est in (ref, ours):
        est.set_params(warm_start=True)
        if hasattr(ref, "loss_curve_"):  # records as a new network has them
            est.loss_curve_, est.best_loss_, est.t_ = [], np.inf, 0
    for a, b in zip(ours.coefs_ + ours.intercepts_, coefs + intercepts, strict=True):
        np.testing.assert_array_equal(a, b)
    return ref, ours


# -- stochastic solvers --------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize(("solver", "nesterov", "schedule"), STOCHASTIC)
def test_stochastic_parity(seeded, rng, activation, solver, nesterov, schedule):
    """fit over several epochs, then three partial_fit calls, for every task."""
    for task in TASKS:
        X, y, classes = make_task(rng, task)
        params = {
            **base_params(rng, task, activation),
            **stochastic_params(rng, solver, nesterov, schedule),
        }
        if task == "poisson":  # the exp output: keep the steps small
            params["learning_rate_init"] = min(params["learning_rate_init"], 0.005)
        what = f"{task} {solver} nesterov={nesterov} {schedule} {activation} {params}"
        ref, ours = _copied_pair(rng, task, params, X, y, classes)
        epochs = int(rng.integers(3, 7))
        ref.set_params(max_iter=epochs).fit(X, y)
        ours.set_params(max_iter=epochs).fit(X, y)
        assert_same_fit(ours, ref, seeded, f"{what}, fit")
        for est in (ref, ours):  # (with warm_start, scikit-learn wants every class in y)
            est.set_params(warm_start=False)
        for call in range(3):
            rows = rng.permutation(len(X))[: int(rng.integers(10, len(X)))]
            ref.partial_fit(X[rows], y[rows], **fit_args(task, classes, True))
            ours.partial_fit(X[rows], y[rows], **fit_args(task, classes, True))
            assert_same_fit(ours, ref, seeded, f"{what}, partial_fit {call + 1}")


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("task", TASKS)
def test_sample_weight_parity(seeded, rng, task, solver):
    """Sample weights scale δ and the batch's L2 term, and weight the reported loss."""
    X, y, classes = make_task(rng, task)
    sample_weight = rng.uniform(0.1, 3.0, len(X))
    # some zero weights, but never two in a row nor the last: no batch sums to zero
    zero = (rng.random(len(X)) < 0.3) & (np.arange(len(X)) % 2 == 0)
    zero[-1] = False
    sample_weight[zero] = 0.0
    activation = ACTIVATIONS[int(rng.integers(len(ACTIVATIONS)))]
    params = {
        **base_params(rng, task, activation),
        **stochastic_params(rng, solver, True, "constant"),
    }
    params["learning_rate_init"] = min(params["learning_rate_init"], 0.005)
    what = f"{task} {solver} {params} with sample_weight"
    ref, ours = _copied_pair(rng, task, params, X, y, classes)
    ref.set_params(max_iter=4).fit(X, y, sample_weight=sample_weight)
    ours.set_params(max_iter=4).fit(X, y, sample_weight=sample_weight)
    assert_same_fit(ours, ref, seeded, f"{what}, fit")
    for call in range(3):
        ref.partial_fit(X, y, sample_weight=sample_weight, **fit_args(task, classes, True))
        ours.partial_fit(X, y, sample_weight=sample_weight, **fit_args(task, classes, True))
        assert_same_fit(ours, ref, seeded, f"{what}, partial_fit {call + 1}")


# -- L-BFGS ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_lbfgs_parity(seeded, rng, activation):
    """A few L-BFGS iterations from the same weights: the same path through SciPy."""
    for task in TASKS:
        X, y, classes = make_task(rng, task)
        params = {**base_params(rng, task, activation), "solver": "lbfgs"}
        params.pop("batch_size")
        weights = rng.uniform(0.1, 2.0, len(X)) if rng.random() < 0.5 else None
        what = f"{task} lbfgs {activation} {params} weights={weights is not None}"
        ref, ours = _copied_pair(rng, task, params, X, y, classes)
        iterations = int(rng.integers(2, 6))
        ref.set_params(max_iter=iterations).fit(X, y, sample_weight=weights)
        ours.set_params(max_iter=iterations).fit(X, y, sample_weight=weights)
        assert_same_fit(ours, ref, seeded, what)


# -- the same random numbers as scikit-learn ---------------------------------------------------
@pytest.mark.parametrize("task", TASKS)
def test_same_random_state_same_run(seeded, rng, task):
    """Initial weights, shuffles and the early-stopping split are drawn as scikit-learn
    draws them: the same random_state gives the same run, best weights restored."""
    X, y, _ = make_task(rng, task, n=int(rng.integers(80, 200)))
    sk_cls, our_cls = pair_classes(task)
    solver = ("sgd", "adam")[int(rng.integers(2))]
    activation = ACTIVATIONS[int(rng.integers(len(ACTIVATIONS)))]
    params = {
        **base_params(rng, task, activation),
        "solver": solver,
        "shuffle": True,
        "early_stopping": True,
        "validation_fraction": float(rng.uniform(0.1, 0.3)),
        "n_iter_no_change": 2,
        "max_iter": int(rng.integers(4, 9)),
        "learning_rate_init": 0.005,
        "random_state": int(rng.integers(2**31)),
    }
    what = f"{task} {params}"
    ref = sk_cls(**params).fit(X, y)
    ours = our_cls(**params).fit(X, y)
    for name in ("coefs_", "intercepts_"):
        for i, (a, b) in enumerate(zip(getattr(ours, name), getattr(ref, name), strict=True)):
            err = relative_error(a, b)
            assert err <= RTOL, seeded.msg(f"{what}: {name}[{i}] differs by {err:.2e}")
    assert ours.n_iter_ == ref.n_iter_, seeded.msg(what)
    err = relative_error(ours.loss_curve_, ref.loss_curve_)
    assert err <= RTOL, seeded.msg(f"{what}: loss_curve_ differs by {err:.2e}")
    err = relative_error(ours.validation_scores_, ref.validation_scores_)
    assert err <= RTOL, seeded.msg(f"{what}: validation_scores_ differ by {err:.2e}")
    err = relative_error(ours.best_validation_score_, ref.best_validation_score_)
    assert err <= RTOL, seeded.msg(f"{what}: best_validation_score_")
    assert ours.best_loss_ is None and ref.best_loss_ is None
    if task in ("regression", "poisson"):
        err = relative_error(ours.predict(X), ref.predict(X))
        assert err <= RTOL, seeded.msg(f"{what}: predictions differ by {err:.2e}")
    else:
        np.testing.assert_array_equal(ours.predict(X), ref.predict(X), err_msg=seeded.msg(what))


def test_initial_weights_match_sklearn(seeded, rng):
    """Glorot-uniform with scikit-learn's bounds (factor 2 for logistic), drawn in its order."""
    X, y, _ = make_task(rng, "multiclass")
    for activation in ACTIVATIONS:
        params = {
            "hidden_layer_sizes": (7, 3),
            "activation": activation,
            "solver": "sgd",
            "learning_rate_init": 1e-300,  # one epoch that moves nothing
            "momentum": 0.0,
            "max_iter": 1,
            "random_state": int(rng.integers(2**31)),
            "alpha": 0.0,
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ref = SkClassifier(**params).fit(X, y)
            ours = MLPClassifier(**params).fit(X, y)
        for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=seeded.msg(activation))


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_a_loss_changed_between_fits_counts_as_in_sklearn(seeded, rng, solver):
    """set_params(loss=…) on a fitted regressor: scikit-learn computes the new loss at
    each pass (so its stopping and L-BFGS's line search follow it) but keeps the output
    activation of the first fit, and so does a converted copy. wxb chose the loss by
    that activation: another loss_curve_, n_iter_ and weights, with no error."""
    X, y, _ = make_task(rng, "poisson")
    first, second = ("squared_error", "poisson")[:: int(rng.choice([1, -1]))]
    if solver == "lbfgs":  # Poisson on the identity output of a squared-error fit takes the
        # log of negative predictions: every loss of L-BFGS's line search is NaN, and where
        # it stops then turns on last-place differences (0.39 apart on 2 seeds in 2,000)
        first, second = "poisson", "squared_error"
    params = {
        **base_params(rng, "regression", "tanh"),
        "solver": solver,
        "loss": first,
        "warm_start": True,
        "learning_rate_init": 0.005,
        "n_iter_no_change": 3,
        "tol": 1e-3,
        "max_iter": int(rng.integers(5, 30)),
    }
    what = f"{first} → {second} {params}"
    ref, ours = _copied_pair(rng, "regression", params, X, y, None)
    for est in (ref, ours):
        est.fit(X, y)
        est.set_params(loss=second)
    converted = MLPRegressor.from_sklearn(ref)
    assert converted.out_activation_ == ref.out_activation_, seeded.msg(what)
    # summed in another order than scikit-learn's: an identity output near 0 is off by
    # ulps of its terms (tanh carries the earlier layers', |tanh z| <= |z|); exp makes
    # that a relative error, within the rtol
    terms, summed = X, 0
    for W, b in zip(ref.coefs_, ref.intercepts_, strict=True):
        terms, summed = affine_terms(terms, W, b), summed + W.shape[0] + 1
    atol = rounding_atol(terms, summed) if ref.out_activation_ == "identity" else 0.0
    np.testing.assert_allclose(converted.predict(X), ref.predict(X), rtol=1e-12, atol=atol)
    for est in (ref, ours):
        est.fit(X, y)
    assert_same_fit(ours, ref, seeded, what)
