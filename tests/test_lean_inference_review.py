"""Review of the lean forward of calls without a graph (``wxb.nn.plan.LeanInference``):
sequences a user can produce, each checked against what the layers compute one by one."""

import copy
import gc
import os
import threading
import weakref

import numpy as np
import pytest

import wxb
from wxb import kernels, nn
from wxb.errors import DataError, ShapeError
from wxb.nn.sequential import _PLANS
from wxb.tensor import Tensor


def _stack(rng, n, dtype="float64"):
    return nn.Sequential(
        nn.Dense(n, 6, dtype=dtype, seed=rng),
        nn.Tanh(),
        nn.Dense(6, 3, dtype=dtype, seed=rng),
    )


def _gone_with_its_thread(work, plans) -> bool:
    """Run ``work`` in a thread of its own with the garbage collector off (so only
    reference counts free anything); whether the plan it noted (``plans[0]``, a weak
    reference) went when the thread ended."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        return plans[0]() is None
    finally:
        if was_enabled:
            gc.enable()


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

    assert _gone_with_its_thread(work, plans)


def test_a_threads_training_plan_goes_with_the_thread(rng):
    """The same for a thread that trains (a hand loop): its training plan's lean stack
    holds no reference back to the plan."""
    n = int(rng.integers(2, 6))
    model = _stack(rng, n)
    optimizer = wxb.optim.SGD(model.parameters(), lr=0.01)
    rows = int(rng.integers(2, 9))
    X, target = rng.normal(size=(rows, n)), rng.normal(size=(rows, 3))
    plans = []

    def work():
        for _ in range(3):  # the lean stack from the second step
            optimizer.zero_grad()
            nn.MSELoss()(model(X), target).backward()
            optimizer.step()
        plan = _PLANS[model].training[0]
        assert plan._leans.get(rows) is not None
        plans.append(weakref.ref(plan))

    assert _gone_with_its_thread(work, plans)


def test_threads_each_get_their_single_threaded_numbers(rng):
    """Several threads and the main thread predict (and call under no_grad) on one model,
    one-row and many-row batches interleaved: each gets the layers' own numbers."""
    n = int(rng.integers(2, 6))
    model = nn.Sequential(
        nn.Standardize(rng.normal(size=n), rng.uniform(0.5, 2, size=n)),
        nn.Dense(n, 16, seed=rng),
        nn.LeakyReLU(float(rng.uniform(0, 0.5))),
        nn.Dropout(0.3, seed=int(rng.integers(2**32))),
        nn.Dense(16, 4, seed=rng),
        nn.Softmax(dim=1),
    )
    model.eval()  # model(X) too without Dropout draws (one generator for every thread)
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


def test_errors_the_layers_raise_are_raised_with_a_lean_forward_built(rng):
    """Once a shape runs on the lean forward: a wrong width, a wrong dtype under no_grad
    and NaN given to predict raise as the layers do, and the numbers after are the same."""
    n = int(rng.integers(2, 6))
    model = _stack(rng, n)
    general = copy.deepcopy(model)
    general.use_plan = False
    for rows in (1, int(rng.integers(2, 6))):
        X = rng.normal(size=(rows, n))
        for _ in range(3):
            model.predict(X)
            with wxb.no_grad():
                model(X)
        assert _PLANS[model].inference._inference_lean is not None
        wide = rng.normal(size=(rows, n + 1))
        with pytest.raises(ShapeError):
            model.predict(wide)
        with pytest.raises(ShapeError), wxb.no_grad():
            model(wide)
        with pytest.raises(DataError, match="float32"), wxb.no_grad():
            model(Tensor(X.astype("float32")))
        bad = X.copy()
        bad[int(rng.integers(rows)), int(rng.integers(n))] = rng.choice([np.nan, np.inf])
        with pytest.raises(DataError):
            model.predict(bad)
        for _ in range(2):
            np.testing.assert_array_equal(model.predict(X), general.predict(X))


def test_outputs_handed_out_under_no_grad_are_the_callers_own(rng):
    """One row and many, model(X) under no_grad and predict in chunks: an output kept is
    not written by later calls of the same shape (on the lean forward, the same buffers)."""
    n = int(rng.integers(2, 6))
    model = _stack(rng, n)
    for rows in (1, int(rng.integers(2, 6))):
        X = rng.normal(size=(rows, n))
        with wxb.no_grad():
            kept = [model(X).data for _ in range(4)]
        chunked = [model.predict(np.vstack([X, X, X]), batch_size=rows) for _ in range(3)]
        expected = kept[0].copy()
        for _ in range(3):
            with wxb.no_grad():
                model(rng.normal(size=(rows, n)))
            model.predict(rng.normal(size=(3 * rows, n)), batch_size=rows)
        for k in kept:
            np.testing.assert_array_equal(k, expected)
        for c in chunked:
            np.testing.assert_array_equal(c, np.vstack([expected] * 3))


def _twins(rng, dtype):
    """A random stack of stock layers (a Standardize in front) and its copy that runs
    layer by layer."""
    n = int(rng.integers(1, 5))
    layers = [nn.Standardize(rng.normal(size=n), rng.uniform(0.5, 2, size=n), dtype=dtype)]
    width = n
    makers = [
        nn.ReLU,
        nn.Tanh,
        nn.Sigmoid,
        nn.SiLU,
        nn.Identity,
        lambda: nn.LeakyReLU(0.1),
        lambda: nn.ELU(0.5),
        nn.Softplus,
        nn.GELU,
    ]
    for _ in range(int(rng.integers(1, 4))):
        out = int(rng.integers(1, 6))
        bias = bool(rng.random() < 0.8)
        layers.append(nn.Dense(width, out, bias=bias, dtype=dtype, seed=rng))
        layers.append(makers[int(rng.integers(len(makers)))]())
        if rng.random() < 0.3:  # (a generator of its own: the test's draws go on apart)
            layers.append(nn.Dropout(0.3, seed=int(rng.integers(2**32))))
        width = out
    model = nn.Sequential(*layers)
    general = copy.deepcopy(model)
    general.use_plan = False
    return model, general, n


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_random_sequences_of_calls_and_changes(rng, dtype):
    """predict (whole, in chunks whose last is another shape) and no_grad calls of one
    row and several, between changes a user makes to both twins alike (weights given
    and scaled, an activation replaced, a training step, the statistics, use_plan, the
    kernel route): each output as the layers compute it, bit for bit."""
    try:
        for _ in range(4):
            model, general, n = _twins(rng, dtype)
            optimizers = [wxb.optim.SGD(m.parameters(), lr=0.01) for m in (model, general)]
            for _ in range(40):
                action = int(rng.integers(12))
                rows = int(rng.choice([1, 1, 2, 3, 7]))
                X = rng.normal(size=(rows, n)).astype(dtype)
                dense = [i for i, layer in enumerate(model) if isinstance(layer, nn.Dense)]
                i = int(rng.choice(dense))
                if action <= 4:
                    batch = int(rng.choice([rows, max(1, rows - 1), 2, 1000]))
                    got = model.predict(X, batch_size=batch)
                    np.testing.assert_array_equal(got, general.predict(X, batch_size=batch))
                elif action == 5:
                    with wxb.no_grad():
                        model.eval(), general.eval()
                        np.testing.assert_array_equal(model(X).data, general(X).data)
                        model.train(), general.train()
                elif action == 6:
                    weight = rng.normal(size=model[i].weight.shape).astype(dtype)
                    for m in (model, general):
                        m[i].weight.data = weight.copy()
                elif action == 7:
                    factor = np.dtype(dtype).type(rng.uniform(0.5, 2))
                    for m in (model, general):
                        m[i].weight.data *= factor
                elif action == 8:
                    slope = float(rng.uniform(-1, 1))
                    make = [nn.ReLU, nn.Tanh, lambda s=slope: nn.LeakyReLU(s)][int(rng.integers(3))]
                    for m in (model, general):
                        m[i + 1] = make()
                elif action == 9:
                    Xt = rng.normal(size=(4, n)).astype(dtype)
                    target = np.zeros((4, model[dense[-1]].out_features), dtype)
                    for m, optimizer in zip((model, general), optimizers, strict=True):
                        optimizer.zero_grad()
                        nn.MSELoss()(m(Xt), target).backward()
                        optimizer.step()
                elif action == 10:
                    mean = rng.normal(size=n).astype(dtype)
                    for m in (model, general):
                        m[0].mean[:] = mean
                else:
                    if rng.random() < 0.5:
                        model.use_plan = not model.use_plan
                    else:
                        kernels.use(str(rng.choice(["numpy", "auto"])))
    finally:
        kernels.use(os.environ.get("WXB_KERNELS", "auto"))


def _changes(rng):
    """Changes between calls that tests/test_lean_inference.py does not make."""

    def elu_alpha(model):
        model[1].alpha = float(rng.uniform(0.2, 2.0))

    def softplus_beta(model):
        model[3].beta = float(rng.uniform(0.5, 3.0))

    def softplus_threshold(model):
        model[3].threshold = float(rng.uniform(0.05, 1.0))

    def gelu_approximate(model):
        model[5].approximate = "tanh" if model[5].approximate == "none" else "none"

    def layer_replaced(model):
        model[1] = nn.Tanh()

    def layer_inserted(model):
        model.insert(2, nn.Sigmoid())

    def layer_appended(model):
        model.append(nn.ReLU())

    def bias_removed(model):
        model[2].bias = None

    def state_loaded(model):
        model.load_state_dict({k: v * 1.5 for k, v in model.state_dict().items()})

    def statistics_replaced(model):
        n = model[0].mean.shape[0]
        model[0].mean = rng.normal(size=n)
        model[0].scale = rng.uniform(0.5, 2, size=n)

    def frozen(model):
        for p in model.parameters():
            p.requires_grad = False

    return [
        elu_alpha,
        softplus_beta,
        softplus_threshold,
        gelu_approximate,
        layer_replaced,
        layer_inserted,
        layer_appended,
        bias_removed,
        state_loaded,
        statistics_replaced,
        frozen,
    ]


@pytest.mark.parametrize("which", range(11))
def test_more_changes_between_calls(rng, which):
    n = int(rng.integers(2, 6))
    model = nn.Sequential(
        nn.Standardize(rng.normal(size=n), rng.uniform(0.5, 2, size=n), dtype="float64"),
        nn.ELU(float(rng.uniform(0.2, 2.0))),
        nn.Dense(n, 5, dtype="float64", seed=rng),
        nn.Softplus(beta=float(rng.uniform(0.5, 3.0))),
        nn.Dense(5, 3, dtype="float64", seed=rng),
        nn.GELU(approximate=str(rng.choice(["none", "tanh"]))),
    )
    for rows in (1, int(rng.integers(2, 6))):
        X = rng.normal(size=(rows, n))
        for _ in range(3):
            model.predict(X)
        _changes(rng)[which](model)
        general = copy.deepcopy(model)
        general.use_plan = False
        expected = general.predict(X)
        for _ in range(3):  # the general forward, then a lean one built again
            np.testing.assert_array_equal(model.predict(X), expected)
            with wxb.no_grad():
                np.testing.assert_array_equal(model(X).data, expected)


def test_graphs_inside_no_grad_and_models_inside_models(rng):
    """enable_grad inside a no_grad block (a step between lean calls); a Sequential
    subclass with and without a forward of its own; a model called twice inside another
    model's forward: the numbers of their layer-by-layer twins."""

    class Plain(nn.Sequential):
        pass

    class Doubled(nn.Sequential):
        def forward(self, x):
            return super().forward(x) * 2.0

    class Outer(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x) + self.inner(x * 2.0)

    n = int(rng.integers(2, 6))
    for make in (nn.Sequential, Plain, Doubled, lambda *layers: Outer(nn.Sequential(*layers))):
        model = make(
            nn.Dense(n, 6, dtype="float64", seed=rng),
            nn.ReLU(),
            nn.Dense(6, 2, dtype="float64", seed=rng),
        )
        general = copy.deepcopy(model)
        for m in general.modules():
            if isinstance(m, nn.Sequential):
                m.use_plan = False
        outs = []
        for m in (model, general):
            got = []
            with wxb.no_grad():
                for rows in (1, 1, 1, 3, 3, 3, 1, 1):
                    X = np.random.default_rng(rows).normal(size=(rows, n))
                    got += [m(X).data, m.predict(X)]
                    with wxb.enable_grad():
                        out = m(X)
                        out.sum().backward()
                    for p in m.parameters():
                        p.data -= 0.01 * p.grad
                        p.grad = None
                    got += [m(X).data, m.predict(X)]
            outs.append(got)
        for a, b in zip(*outs, strict=True):
            np.testing.assert_array_equal(a, b)
