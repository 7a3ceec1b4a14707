"""One model served and fine-tuned at once: a thread predicts (or calls the model under
no_grad) while another steps an optimiser on it, runs fit, or loads a state. Each
prediction must be the model's eval-mode output at one weight version the training
passed through, never a mix of two. The race is made to happen at its worst point every
time: the predicting thread waits between its first and second layer's products until
the other thread's write is done, or is seen held back until the prediction ends."""

import itertools
import threading

import numpy as np
import pytest
import thread_runs as runs

import wxb
from wxb.nn import CrossEntropyLoss, Dense, Dropout, Module, ReLU, Sequential, Tanh
from wxb.nn import module as module_mod
from wxb.nn import plan as planned


def _writer_held_back():
    """Whether a write of weights waits for a reader (the weight guard's own record;
    without one, no write is ever held back)."""
    guard = getattr(module_mod, "WEIGHTS", None)
    return guard is not None and bool(guard.writers)


def _reference(weights, X, activation):
    """The model's eval-mode output in float64 by NumPy (Dropout is the identity)."""
    w1, b1, w2, b2 = weights
    return activation(X @ w1.T + b1) @ w2.T + b2


def _one_of(out, versions, X, activation, seeded, what):
    """``out`` is the output at one of ``versions`` (float64, a product's rounding:
    rtol 1e-9 of values of order 1), and each two versions' outputs differ far beyond
    that (else the check could not fail)."""
    wants = [_reference(w, X, activation) for w in versions]
    for a, b in itertools.pairwise(wants):
        assert np.max(np.abs(a - b)) > 1e-4, seeded.msg(f"{what}: the versions agree")
    close = [np.allclose(out, want, rtol=1e-9, atol=1e-9) for want in wants]
    assert any(close), seeded.msg(
        f"{what}: the prediction is the output of no weight version (nearest off by "
        f"{min(np.max(np.abs(out - w)) for w in wants):.3g})"
    )


class _PausingNumpy:
    """NumPy as plan.py sees it, but the armed thread's second matmul of a call (the
    second Dense's product) waits first until ``release()`` holds."""

    def __init__(self):
        self.thread, self.calls, self.paused = None, 0, threading.Event()
        self.release = lambda: True

    def __getattr__(self, name):
        return getattr(np, name)

    def matmul(self, *args, **kwargs):
        if threading.get_ident() == self.thread:
            self.calls += 1
            if self.calls == 2:
                self.paused.set()
                runs.until(self.release)
        return np.matmul(*args, **kwargs)


class _OwnForward(Module):
    """A module of one's own (its forward runs layer by layer); ``between`` runs between
    the two layers, where the test makes the other thread write."""

    def __init__(self, seed):
        super().__init__()
        self.fc1, self.fc2 = Dense(6, 9, seed=seed), Dense(9, 4, seed=seed + 1)
        self.between = lambda: None

    def forward(self, x):
        h = self.fc1(x).tanh()
        self.between()
        return self.fc2(h)


def _model(kind, seed):
    if kind == "own forward":
        return _OwnForward(seed).to("float64")
    return Sequential(Dense(6, 9, seed=seed), Tanh(), Dense(9, 4, seed=seed + 1)).to("float64")


@pytest.mark.parametrize("write", ["step", "load_state_dict"])
@pytest.mark.parametrize(
    "kind, call", [("planned", "predict"), ("planned", "no_grad"), ("own forward", "no_grad")]
)
def test_a_prediction_while_another_thread_writes_the_weights_is_of_one_version(
    seeded, monkeypatch, kind, call, write
):
    """The prediction read the first layer's W before the other thread's optimiser step
    (or load_state_dict) and the second's after it: an output of no weights (off by the
    step's effect), without a word. Now the write waits for the prediction."""
    rng = seeded.rng
    model = _model(kind, int(rng.integers(1 << 20)))
    X, y = rng.normal(size=(int(rng.integers(1, 9)), 6)), rng.integers(0, 4, 16)
    data = rng.normal(size=(16, 6))
    opt = wxb.optim.SGD(model.parameters(), lr=float(rng.uniform(0.5, 1.0)))
    other = [w + rng.normal(size=w.shape) for w in runs.weights(model)]
    names = list(model.state_dict())

    def predict():
        if call == "predict":
            return model.predict(X)
        with wxb.no_grad():
            return model(X).data.copy()

    for _ in range(3):  # the planned model's lean forward built, as a server's would be
        predict()
    before = runs.weights(model)
    if write == "step":
        CrossEntropyLoss()(model(data), y).backward()

    pausing, wrote = _PausingNumpy(), threading.Event()
    pausing.release = lambda: wrote.is_set() or _writer_held_back()
    if kind == "own forward":

        def between():
            if threading.get_ident() == pausing.thread:
                pausing.paused.set()
                runs.until(pausing.release)

        model.between = between
    else:
        monkeypatch.setattr(planned, "np", pausing)
    got, errors = [], []

    def serve():
        try:
            pausing.thread = threading.get_ident()
            got.append(predict())
        except Exception as error:  # an assertion in a thread would be lost
            errors.append(repr(error))

    def train():
        try:
            assert pausing.paused.wait(60)
            if write == "step":
                opt.step()
            else:
                model.load_state_dict(dict(zip(names, other, strict=True)))
        except Exception as error:
            errors.append(repr(error))
        finally:
            wrote.set()

    runs.join_all([threading.Thread(target=serve), threading.Thread(target=train)], errors)
    after = runs.weights(model)
    if write == "load_state_dict":
        for a, b in zip(after, other, strict=True):
            np.testing.assert_array_equal(a, b)
    _one_of(got[0], [before, after], X, np.tanh, seeded, f"{call} of the {kind} model")


def test_predicts_while_fit_trains_the_model_in_another_thread_are_of_one_version(
    seeded, monkeypatch
):
    """A server predicts while fit fine-tunes the same model (train mode, Dropout on):
    each prediction is the eval-mode output (Dropout off) at one of the weight versions
    fit's steps passed through; one of them provoked at its worst point, the rest as
    the threads fall."""
    rng = seeded.rng
    seed = int(rng.integers(1 << 20))
    model = Sequential(
        Dense(6, 16, seed=seed), ReLU(), Dropout(0.5), Dense(16, 3, seed=seed + 1)
    ).to("float64")
    X, y = rng.normal(size=(64, 6)), rng.integers(0, 3, 64)
    served = rng.normal(size=(int(rng.integers(1, 6)), 6))
    model.predict(served), model.predict(served)  # its lean forward built

    versions = [runs.weights(model)]
    original = wxb.optim.Optimizer._update_params
    stepped = threading.Event()

    def recorded(self):
        original(self)
        versions.append(runs.weights(model))  # (the fit thread's own next write comes after)
        stepped.set()

    monkeypatch.setattr(wxb.optim.Optimizer, "_update_params", recorded)
    pausing = _PausingNumpy()
    monkeypatch.setattr(planned, "np", pausing)
    done, got, errors = threading.Event(), [], []

    def train():
        try:
            wxb.fit(model, X, y, optimizer="sgd", lr=0.5, epochs=6, batch_size=8, verbose=0)
        except Exception as error:
            errors.append(repr(error))
        finally:
            done.set()

    def serve():
        try:
            assert stepped.wait(60)  # fit under way
            stepped.clear()
            pausing.release = lambda: stepped.is_set() or _writer_held_back() or done.is_set()
            pausing.thread = threading.get_ident()
            got.append(model.predict(served))  # provoked: waits for fit's next step
            pausing.thread = None
            while not done.is_set():
                got.append(model.predict(served))
        except Exception as error:
            errors.append(repr(error))

    runs.join_all([threading.Thread(target=train), threading.Thread(target=serve)], errors)
    assert len(versions) == 1 + 6 * 8
    relu = lambda z: np.maximum(z, 0)  # noqa: E731
    wants = [_reference(w, served, relu) for w in versions]
    for k, out in enumerate(got):
        close = [np.allclose(out, want, rtol=1e-9, atol=1e-9) for want in wants]
        assert any(close), seeded.msg(
            f"prediction {k} of {len(got)} is the output of no weight version fit passed "
            f"through (nearest off by {min(np.max(np.abs(out - w)) for w in wants):.3g})"
        )


def test_a_state_dict_taken_while_another_thread_steps_is_of_one_version(seeded, monkeypatch):
    """state_dict() copied the first layer's arrays before another thread's step and the
    rest after it: a state of no weights the training passed through (a checkpoint a
    server takes of the model it fine-tunes). Now the step waits for the copies."""
    rng = seeded.rng
    model = _model("planned", int(rng.integers(1 << 20)))
    data, y = rng.normal(size=(16, 6)), rng.integers(0, 4, 16)
    opt = wxb.optim.SGD(model.parameters(), lr=float(rng.uniform(0.5, 1.0)))
    CrossEntropyLoss()(model(data), y).backward()
    before = runs.weights(model)

    pausing, wrote = _PausingNumpy(), threading.Event()
    pausing.release = lambda: wrote.is_set() or _writer_held_back()
    read = module_mod.Parameter.data

    def paused_get(p):
        if threading.get_ident() == pausing.thread:
            pausing.calls += 1
            if pausing.calls == 2:  # the first array copied, the next not yet
                pausing.paused.set()
                runs.until(pausing.release)
        return read.__get__(p)

    monkeypatch.setattr(module_mod.Parameter, "data", property(paused_get, read.fset))
    got, errors = [], []

    def save():
        try:
            pausing.thread = threading.get_ident()
            got.append(list(model.state_dict().values()))
        except Exception as error:
            errors.append(repr(error))

    def train():
        try:
            assert pausing.paused.wait(60)
            opt.step()
        except Exception as error:
            errors.append(repr(error))
        finally:
            wrote.set()

    runs.join_all([threading.Thread(target=save), threading.Thread(target=train)], errors)
    monkeypatch.undo()
    after = runs.weights(model)
    assert all(np.max(np.abs(a - b)) > 0 for a, b in zip(before, after, strict=True))
    same = [all(map(np.array_equal, got[0], w)) for w in (before, after)]
    assert any(same), seeded.msg("the state mixes the arrays of two weight versions")


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")  # (torch's, at backward)
@pytest.mark.parametrize("hook", ["full backward", "backward pre", "parameter"])
def test_backward_hooks_leave_predict_and_no_grad_calls_planned_as_torch_runs_none(
    seeded, monkeypatch, hook
):
    """A backward hook (a module's, or a parameter's register_hook) made every predict
    and no_grad call of the model go layer by layer, though no backward hook runs in a
    call without a graph, in torch neither. Now those calls run the inference plan: the
    outputs torch's twin gives, its hooks silent in both; a call with a graph still
    runs them, as torch's."""
    torch = pytest.importorskip("torch")
    from torch_twins import tanh_classifier

    rng = seeded.rng
    ours, theirs = tanh_classifier(rng, (5, int(rng.integers(3, 9)), 3))
    X = rng.normal(size=(int(rng.integers(1, 7)), 5))
    ran = {"ours": 0, "theirs": 0}

    def counts(who):
        def seen(*args):
            ran[who] += 1

        return seen

    for model, who in ((ours, "ours"), (theirs, "theirs")):
        if hook == "full backward":
            model[0].register_full_backward_hook(counts(who))
        elif hook == "backward pre":
            model[2].register_full_backward_pre_hook(counts(who))
        else:
            model[2].weight.register_hook(counts(who))
    planned_calls = []
    infer = planned.StackPlan.infer
    monkeypatch.setattr(
        planned.StackPlan, "infer", lambda self, X: planned_calls.append(1) or infer(self, X)
    )
    with torch.no_grad():
        want = theirs(torch.from_numpy(X)).numpy()
    with wxb.no_grad():
        got = ours(X).data
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=seeded.msg("no_grad"))
    assert planned_calls, seeded.msg("the no_grad call ran layer by layer")
    for k in range(3):  # (the lean forward built after two)
        before = len(planned_calls)
        np.testing.assert_allclose(ours.predict(X), want, rtol=1e-12, atol=1e-12)
        assert len(planned_calls) > before, seeded.msg(f"predict {k} ran layer by layer")
    assert ran == {"ours": 0, "theirs": 0}
    theirs(torch.from_numpy(X)).sum().backward()
    ours(X).sum().backward()
    assert ran["ours"] == ran["theirs"] == 1, seeded.msg(f"hooks run: {ran}")


def test_an_estimators_predict_while_another_thread_runs_partial_fit_is_of_one_version(
    seeded, monkeypatch
):
    """wxb.sklearn's MLPClassifier served (predict_proba of sparse rows) while another
    thread's partial_fit trains it: the first layer's product was of the weights before
    the step, its bias and the later layers' after it (a probability of no weights).
    Now the step waits for the prediction, which equals a copy's at one version."""
    import copy

    import scipy.sparse

    from wxb.sklearn import MLPClassifier

    rng = seeded.rng
    X, y = rng.normal(size=(40, 7)), rng.integers(0, 3, 40)
    est = MLPClassifier(
        hidden_layer_sizes=(int(rng.integers(4, 12)),),
        solver="sgd",
        learning_rate_init=float(rng.uniform(0.3, 0.6)),
        batch_size=40,  # one step per partial_fit
        random_state=int(rng.integers(1 << 20)),
        max_iter=3,
    )
    with pytest.warns(Warning):  # (not converged in 3 iterations)
        est.fit(X, y)
    rows = scipy.sparse.random(int(rng.integers(1, 6)), 7, density=0.6, random_state=rng)
    rows = scipy.sparse.csr_matrix(rows.toarray() * 3)
    before = copy.deepcopy(est)

    pausing, wrote = _PausingNumpy(), threading.Event()
    pausing.release = lambda: wrote.is_set() or _writer_held_back()
    product = wxb.ops.sparse_rows_by_weight

    def paused_product(*args, **kwargs):
        out = product(*args, **kwargs)
        if threading.get_ident() == pausing.thread:
            pausing.paused.set()
            runs.until(pausing.release)
        return out

    monkeypatch.setattr(wxb.ops, "sparse_rows_by_weight", paused_product)
    got, errors = [], []

    def serve():
        try:
            pausing.thread = threading.get_ident()
            got.append(est.predict_proba(rows))
        except Exception as error:
            errors.append(repr(error))

    def train():
        try:
            assert pausing.paused.wait(60)
            est.partial_fit(X, y)
        except Exception as error:
            errors.append(repr(error))
        finally:
            wrote.set()

    runs.join_all([threading.Thread(target=serve), threading.Thread(target=train)], errors)
    monkeypatch.undo()
    wants = [before.predict_proba(rows), est.predict_proba(rows)]
    assert np.max(np.abs(wants[0] - wants[1])) > 1e-6, seeded.msg("the step changed nothing")
    close = [np.allclose(got[0], want, rtol=1e-12, atol=1e-14) for want in wants]
    assert any(close), seeded.msg(
        f"the probabilities are of no weight version (nearest off by "
        f"{min(np.max(np.abs(got[0] - w)) for w in wants):.3g})"
    )


@pytest.mark.parametrize("where", ["network", "first layer"])
@pytest.mark.parametrize("kind", ["forward", "pre"])
def test_an_estimators_hooked_network_predicts_sparse_rows_as_dense_ones(seeded, where, kind):
    """A forward hook (or pre-hook) on a wxb.sklearn estimator's network or its first
    Dense ran for dense rows (their calls) and not for sparse ones, whose first product
    is taken apart from the layer's call: the same rows predicted otherwise. Now both
    run it; the reference is NumPy's forward with the hook applied by hand."""
    import scipy.sparse

    from wxb.sklearn import MLPRegressor

    rng = seeded.rng
    X, y = rng.normal(size=(30, 5)), rng.normal(size=30)
    est = MLPRegressor(
        hidden_layer_sizes=(int(rng.integers(3, 9)),),
        max_iter=5,
        random_state=int(rng.integers(1 << 20)),
    )
    with pytest.warns(Warning):  # (not converged in 5 iterations)
        est.fit(X, y)
    scale = float(rng.uniform(1.5, 3))
    target = est._net if where == "network" else est._net[0]
    if kind == "forward":
        target.register_forward_hook(lambda module, args, out: out * scale)
    else:
        target.register_forward_pre_hook(lambda module, args: (args[0] * scale,))
    rows = X[: int(rng.integers(1, 8))]
    (w1, w2), (b1, b2) = est.coefs_, est.intercepts_
    if kind == "pre":
        want = np.maximum(rows * scale @ w1 + b1, 0) @ w2 + b2
    elif where == "network":
        want = (np.maximum(rows @ w1 + b1, 0) @ w2 + b2) * scale
    else:
        want = np.maximum((rows @ w1 + b1) * scale, 0) @ w2 + b2
    for given in (rows, scipy.sparse.csr_matrix(rows)):
        np.testing.assert_allclose(
            est.predict(given), want.ravel(), rtol=1e-10, atol=1e-12,
            err_msg=seeded.msg(type(given).__name__),
        )  # fmt: skip
