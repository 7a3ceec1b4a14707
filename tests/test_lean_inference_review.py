"""Review of the lean forward of calls without a graph (``wxb.nn.plan.LeanInference``):
sequences a user can produce, each checked against what the layers compute one by one."""

import copy
import gc
import threading
import weakref

import numpy as np
import pytest

import wxb
from wxb import nn
from wxb.errors import DataError
from wxb.nn.sequential import _PLANS


def _stack(rng, n, dtype="float64"):
    return nn.Sequential(
        nn.Dense(n, 6, dtype=dtype, seed=rng),
        nn.Tanh(),
        nn.Dense(6, 3, dtype=dtype, seed=rng),
    )


def test_a_threads_plan_goes_with_the_thread(rng):
    """A thread that predicts goes, and its buffers with it: the lean forward it made
    holds no reference back to its plan (a cycle would keep both until a gc pass)."""
    n = int(rng.integers(2, 6))
    model = _stack(rng, n)
    X = rng.normal(size=(int(rng.integers(1, 5)), n))
    plans = []

    def work():
        for _ in range(3):  # the lean forward from the second call
            model.predict(X)
        plan = _PLANS[model].inference
        assert plan._inference_lean is not None
        plans.append(weakref.ref(plan))

    was_enabled = gc.isenabled()
    gc.disable()  # only reference counts free it
    try:
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        assert plans[0]() is None
    finally:
        if was_enabled:
            gc.enable()


def test_threads_each_get_their_single_threaded_numbers(rng):
    """Several threads and the main thread predict (and call under no_grad) on one model,
    one-row and many-row batches interleaved: each gets the layers' own numbers."""
    n = int(rng.integers(2, 6))
    model = nn.Sequential(
        nn.Standardize(rng.normal(size=n), rng.uniform(0.5, 2, size=n)),
        nn.Dense(n, 16, seed=rng),
        nn.LeakyReLU(float(rng.uniform(0, 0.5))),
        nn.Dropout(0.3, seed=rng),
        nn.Dense(16, 4, seed=rng),
        nn.Softmax(dim=1),
    )
    model.eval()  # model(X) too without Dropout draws (its generator is the model's one)
    general = copy.deepcopy(model)
    general.use_plan = False
    rows = [1, 1, 1, 5, 5, 5, 1, 33, 33, 2, 2, 1]
    batches = [rng.normal(size=(r, n)).astype("float32") for r in rows]
    expected = [general.predict(X) for X in batches]
    wrong = []

    def work(k):
        for i in range(40):
            for j, X in enumerate(batches):
                if (i + k) % 2:
                    out = model.predict(X)
                else:
                    with wxb.no_grad():
                        out = model(X).data
                if not np.array_equal(out, expected[j]):
                    wrong.append((k, i, j))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    work(3)
    for thread in threads:
        thread.join()
    assert wrong == []


@pytest.mark.parametrize("new_width", [1, 5])
def test_a_standardize_given_statistics_of_another_width(rng, new_width):
    """A stack with no Dense takes the width its Standardize takes: statistics of another
    width set since the plan was made (width 1 broadcast over any X) and the plan, lean or
    not, ran the old width; the layers raise, and with rows of the new width agree."""
    n = int(rng.integers(2, 5))
    model = nn.Sequential(
        nn.Standardize(rng.normal(size=n), rng.uniform(0.5, 2, size=n), dtype="float64"),
        nn.ReLU(),
    )
    X = rng.normal(size=(int(rng.integers(1, 4)), n))
    for _ in range(3):
        model.predict(X)
        with wxb.no_grad():
            model(X)
    model[0].mean = rng.normal(size=new_width)
    model[0].scale = rng.uniform(0.5, 2, size=new_width)
    with pytest.raises(DataError, match=f"needs X with {new_width} features"):
        model.predict(X)
    with pytest.raises(DataError, match=f"needs X with {new_width} features"), wxb.no_grad():
        model(X)
    general = copy.deepcopy(model)
    general.use_plan = False
    X = rng.normal(size=(len(X), new_width))
    for _ in range(3):
        np.testing.assert_array_equal(model.predict(X), general.predict(X))
