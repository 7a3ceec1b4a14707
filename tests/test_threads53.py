"""Threads around the weight guard (``nn.module.WEIGHTS``), where test_threads52 left
off: a training forward (a graph recorded) beside another thread's optimiser step; a
read of another model inside a call (a hook's ``predict``, ``state_dict`` or no-grad
call) beside a step of that model and a writer waiting for the outer call; steps in the
forward hooks of two threads' calls beside a server. Every race is made to happen at
its worst point each run; every thread is joined with a timeout (a hang fails the test,
its threads left as daemons), and each result is compared with NumPy's or PyTorch's
float64 answer at the weight versions the training passed through."""

import threading

import numpy as np
import pytest
import thread_runs as runs

import wxb
from wxb import step as step_mod
from wxb.errors import TrainingError
from wxb.nn import CrossEntropyLoss, Dense, Module, Sequential, Tanh
from wxb.nn import module as module_mod
from wxb.nn import plan as planned

runs.SECONDS = 30  # a thread still alive then hangs (each run here takes well under a second)


def _weights_grads(model):
    return [np.array(p.grad, dtype=np.float64) for p in model.parameters()]


def _output(weights, X):
    """The two-Dense tanh model's output in float64, by NumPy."""
    w1, b1, w2, b2 = weights
    return np.tanh(X @ w1.T + b1) @ w2.T + b2


def _which(out, versions, X, seeded, what):
    """The index of the version ``out`` is the output of (float64 products of a few
    terms of order 1: rtol 1e-9), after checking that the versions' outputs are far
    apart (else the check could not fail)."""
    wants = [_output(w, X) for w in versions]
    for k in range(1, len(wants)):
        assert np.max(np.abs(wants[k] - wants[k - 1])) > 1e-4, seeded.msg(f"{what}: no change")
    close = [k for k, want in enumerate(wants) if np.allclose(out, want, rtol=1e-9, atol=1e-9)]
    assert close, seeded.msg(
        f"{what} is the output of no weight version (nearest off by "
        f"{min(np.max(np.abs(out - w)) for w in wants):.3g})"
    )
    return close[0]


class _OwnForward(Module):
    """A forward of one's own, layer by layer; ``between`` runs between the layers."""

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


class _Pause:
    """Makes the armed thread wait, at the point the test names, until ``release()``."""

    def __init__(self):
        self.thread, self.paused = None, threading.Event()
        self.release = lambda: True

    def here(self):
        if threading.get_ident() == self.thread and not self.paused.is_set():
            self.paused.set()
            runs.until(self.release)


def _pause_between_layers(model, pause, monkeypatch):
    """The model's forward pauses between its two Dense layers: a layer-by-layer one
    through ``between``, the planned one at its second product (after the first)."""
    if isinstance(model, _OwnForward):
        model.between = pause.here
        return

    class Numpy:  # NumPy as plan.py sees it
        def __getattr__(self, name):
            return getattr(np, name)

        def matmul(self, *args, **kwargs):
            if threading.get_ident() == pause.thread:
                pause.calls = getattr(pause, "calls", 0) + 1
                if pause.calls == 2:
                    pause.here()
            return np.matmul(*args, **kwargs)

    monkeypatch.setattr(planned, "np", Numpy())


def _torch_grads(weights, X, y):
    """∂L/∂(W1, b1, W2, b2) of the mean cross-entropy at ``weights``, by PyTorch in float64."""
    import torch

    ts = [torch.tensor(w, requires_grad=True) for w in weights]
    out = torch.tanh(torch.tensor(X) @ ts[0].T + ts[1]) @ ts[2].T + ts[3]
    torch.nn.functional.cross_entropy(out, torch.tensor(y)).backward()
    return [t.grad.numpy() for t in ts]


# -- a training forward beside another thread's step ------------------------------------
@pytest.mark.parametrize("kind", ["planned", "own forward"])
def test_a_training_forward_beside_another_threads_step_is_of_one_version(
    seeded, monkeypatch, kind
):
    """A forward recording a graph read the first layer's W before another thread's
    optimiser step and the second layer's after it: an output of no weights the
    training passed through, whose backward then ran without a word (the planned
    Sequential records its weights' versions after its products, and the first W's
    backward reads no W), giving gradients of no weights. Now the step waits for the
    forward, like a no-grad call's: the output is of the weights before the step, and
    the backward after the step refuses, as a backward after a step in one thread
    does. A backward before any step gives PyTorch's gradients at those weights."""
    pytest.importorskip("torch")
    rng = seeded.rng
    model = _model(kind, int(rng.integers(1 << 20)))
    n = int(rng.integers(2, 17))
    X, y = rng.normal(size=(n, 6)), rng.integers(0, 4, n)
    opt = wxb.optim.SGD(model.parameters(), lr=float(rng.uniform(0.5, 1.0)))
    loss = CrossEntropyLoss()
    loss(model(X), y).backward()  # the other thread's gradients, stepped below
    before = runs.weights(model)
    for p in model.parameters():
        p.grad = p.grad.copy()  # (this thread's backwards below write gradients of their own)

    # first a backward right after the forward, no step between: PyTorch's gradients
    opt_free = [p.grad for p in model.parameters()]
    for p in model.parameters():
        p.grad = None
    loss(model(X), y).backward()
    for got, want in zip(_weights_grads(model), _torch_grads(before, X, y), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=seeded.msg(kind))
    for p, g in zip(model.parameters(), opt_free, strict=True):
        p.grad = g

    pause, wrote = _Pause(), threading.Event()
    pause.release = lambda: wrote.is_set() or runs.writer_waiting()
    _pause_between_layers(model, pause, monkeypatch)
    got, errors = {}, []

    def forward():
        pause.thread = threading.get_ident()
        out = model(X)
        got["output"] = out.data.copy()
        runs.until(wrote.is_set)  # the step done: the graph's weights changed since
        for p in model.parameters():
            p.grad = None
        try:
            loss(out, y).backward()
        except TrainingError as error:
            got["refused"] = str(error)
        else:
            got["grads"] = _weights_grads(model)

    def step():
        try:
            assert pause.paused.wait(runs.SECONDS)
            opt.step()
        finally:
            wrote.set()

    runs.join_all([runs.guarded(forward, errors), runs.guarded(step, errors)], errors)
    monkeypatch.undo()
    after = runs.weights(model)
    version = _which(got["output"], [before, after], X, seeded, f"the {kind} training forward")
    if "refused" in got:
        assert "modified in place since the forward" in got["refused"], got["refused"]
        return
    want = _torch_grads([before, after][version], X, y)
    for g, w in zip(got["grads"], want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12, err_msg=seeded.msg("gradients"))


# -- a read of another model inside a call --------------------------------------------------
class _ThreeLayers(Module):
    """B of the test below: its first layer is A's; ``between`` runs before its last."""

    def __init__(self, seed):
        super().__init__()
        self.fc0 = Dense(6, 6, seed=seed)
        self.fc1, self.fc2 = Dense(6, 9, seed=seed + 1), Dense(9, 4, seed=seed + 2)
        self.between = lambda: None

    def forward(self, x):
        h = self.fc1(self.fc0(x).tanh()).tanh()
        self.between()
        return self.fc2(h)


def _three_layers(weights, X):
    w0, b0, w1, b1, w2, b2 = weights
    return np.tanh(np.tanh(X @ w0.T + b0) @ w1.T + b1) @ w2.T + b2


@pytest.mark.parametrize("inner", ["predict", "no_grad call", "state_dict"])
@pytest.mark.parametrize("where", ["forward hook", "own forward"])
def test_a_read_of_another_model_inside_a_call_is_of_one_version_and_does_not_hang(
    seeded, monkeypatch, inner, where
):
    """A call of model A (no graph) reads model B inside it (a forward hook's
    ``B.predict``, ``B(x)`` or ``B.state_dict()``, or A's own forward calling B, held
    in a plain attribute) while another thread steps B's last two layers and a third
    waits to step A, whose one layer is B's first. The read of B went unguarded (this
    thread already read A): the step went between B's last two layers, or between two
    of its arrays' copies, giving an output (a state) of no weights of B. Now the inner
    read of B is a read too: the step of B's layers waits for it, and the waiting step
    of A (which waits for this thread's call, and writes a layer B holds) holds it
    back neither: no hang, A's output of its weights before its step."""
    rng = seeded.rng
    b = _ThreeLayers(int(rng.integers(1 << 20))).to("float64")
    a = Sequential(b.fc0, Tanh())
    X = rng.normal(size=(int(rng.integers(1, 9)), 6))
    opt_a = wxb.optim.SGD(a.parameters(), lr=float(rng.uniform(0.5, 1.0)))
    later = [*b.fc1.parameters(), *b.fc2.parameters()]
    opt_b = wxb.optim.SGD(later, lr=float(rng.uniform(0.5, 1.0)))
    for p in b.parameters():
        p.grad = rng.normal(size=p.shape)
    b_before = runs.weights(b)
    guard = module_mod.WEIGHTS

    pause, b_wrote, a_waits = _Pause(), threading.Event(), threading.Event()
    pause.release = lambda: b_wrote.is_set() or guard.waiting >= 2  # (both steps wait)
    if inner == "state_dict":  # the pause between B's fc1.weight's copy and its bias's
        read = module_mod.Parameter.data
        ids, copies = {id(p) for p in b.parameters()}, [0]

        def paused_get(p):
            if threading.get_ident() == pause.thread and id(p) in ids:
                copies[0] += 1
                if copies[0] == 4:
                    pause.here()
            return read.__get__(p)

        monkeypatch.setattr(module_mod.Parameter, "data", property(paused_get, read.fset))
    else:
        b.between = pause.here

    def read_b():
        a_waits.set()
        runs.until(lambda: guard.waiting >= 1)  # A's step waits for this call now
        pause.thread = threading.get_ident()
        if inner == "predict":
            return b.predict(X)
        if inner == "no_grad call":
            return b(X).data.copy()
        return [w.copy() for w in b.state_dict().values()]

    got, errors = {}, []
    if where == "forward hook":

        def hook(module, args, out):
            got["b"] = read_b()

        a.register_forward_hook(hook)
        outer = a
    else:

        class Outer(Module):  # B in a plain attribute: not one of this model's layers
            def __init__(self):
                super().__init__()
                self.a = a

            def forward(self, x):
                got["b"] = read_b()
                return self.a(x)

        outer = Outer()

    def serve():
        with wxb.no_grad():
            got["a"] = outer(X).data.copy()

    def step_a():
        assert a_waits.wait(runs.SECONDS)
        opt_a.step()

    def step_b():
        try:
            assert pause.paused.wait(runs.SECONDS)
            opt_b.step()
        finally:
            b_wrote.set()

    runs.join_all(
        [runs.guarded(serve, errors), runs.guarded(step_a, errors), runs.guarded(step_b, errors)],
        errors,
    )
    monkeypatch.undo()
    b_after = runs.weights(b)  # (A's step too: B's first layer, after the call)
    b_stepped = b_before[:2] + b_after[2:]  # B's step alone (its last two layers)
    if inner == "state_dict":
        same = [all(map(np.array_equal, got["b"], w)) for w in (b_before, b_stepped)]
        assert any(same), seeded.msg("B's state mixes the arrays of two weight versions")
    else:
        wants = [_three_layers(w, X) for w in (b_before, b_stepped)]
        assert np.max(np.abs(wants[0] - wants[1])) > 1e-4, seeded.msg("B's step changed nothing")
        close = [np.allclose(got["b"], want, rtol=1e-9, atol=1e-9) for want in wants]
        assert any(close), seeded.msg(f"B's {inner} inside A's call is of no weights of B")
    w1, b1 = b_before[:2]
    want = np.tanh(X @ w1.T + b1)
    np.testing.assert_allclose(got["a"], want, rtol=1e-9, atol=1e-9, err_msg=seeded.msg("A"))
    assert all(np.max(np.abs(p - q)) > 0 for p, q in zip(b_after, b_before, strict=True))


# -- steps inside the forward hooks of two threads' calls, beside a server -----------------
def test_steps_in_two_threads_forward_hooks_beside_a_server_neither_hang_nor_mix(
    seeded, monkeypatch
):
    """Two threads call one model (no graph, then with one), and each call's forward
    hook steps the model's optimiser, while a third thread predicts. The two no-grad
    calls were both readers when each began its step: one waited for the other's call
    to end, the other for the first's step (two steppers of the same weights), and
    both hung. Now a call waiting to step inside itself reads nothing meanwhile: the
    steps go one after the other, and every prediction is of a version they passed
    through."""
    rng = seeded.rng
    model = _model("planned", int(rng.integers(1 << 20)))
    X = rng.normal(size=(int(rng.integers(1, 9)), 6))
    served = rng.normal(size=(int(rng.integers(1, 6)), 6))
    opt = wxb.optim.SGD(model.parameters(), lr=float(rng.uniform(0.05, 0.2)))
    for p in model.parameters():
        p.grad = rng.normal(size=p.shape)
    versions, stepping = [runs.weights(model)], set()
    original = wxb.optim.Optimizer._update_params

    def recorded(self):
        original(self)
        versions.append(runs.weights(model))  # (inside the write: no other write between)

    monkeypatch.setattr(wxb.optim.Optimizer, "_update_params", recorded)
    both = threading.Barrier(2, timeout=runs.SECONDS)

    def hook(module, args, out):
        if threading.get_ident() in stepping:
            both.wait()  # (both calls inside their hooks: each a reader that steps)
            opt.step()

    model.register_forward_hook(hook)
    done, predictions, errors = threading.Event(), [], []

    def train():
        stepping.add(threading.get_ident())
        for graph in (False, True, False):
            with wxb.set_grad_enabled(graph):
                model(X)
            both.wait()  # (outside the calls: both steps of this round done)

    def serve():
        while not done.is_set():
            predictions.append(model.predict(served))

    trainers = [runs.guarded(train, errors), runs.guarded(train, errors)]
    server = runs.guarded(serve, errors)
    server.daemon = True
    server.start()
    try:
        runs.join_all(trainers, errors)
    finally:
        done.set()
        server.join(runs.SECONDS)
    assert not server.is_alive(), "the server hung"
    assert len(versions) == 1 + 6
    for k, out in enumerate(predictions):
        _which(out, versions, served, seeded, f"prediction {k} of {len(predictions)}")


# -- a write beside fit's own step --------------------------------------------------------
@pytest.mark.parametrize("kind", ["planned", "own forward"])
def test_a_write_beside_fits_step_leaves_gradients_of_the_weights_its_forward_used(
    seeded, monkeypatch, kind
):
    """fit trains a model while another thread loads a state into it (a hand loop's
    step is the same write). The write went between fit's two layers' products, or
    between its forward and its backward (the planned step records no versions, and
    the graph's first W·X reads no W): fit's update was of gradients of no weights.
    Now the write waits for fit's forward and backward: fit's one step is PyTorch's
    SGD step from the weights before the write, applied before the write (which then
    leaves the loaded state) or after it."""
    pytest.importorskip("torch")
    rng = seeded.rng
    model = _model(kind, int(rng.integers(1 << 20)))
    n = int(rng.integers(2, 17))
    X, y = rng.normal(size=(n, 6)), rng.integers(0, 4, n)
    lr = float(rng.uniform(0.5, 1.0))
    names = list(model.state_dict())
    loaded = [w + rng.normal(size=w.shape) for w in model.state_dict().values()]
    before = runs.weights(model)

    pause, wrote = _Pause(), threading.Event()
    pause.release = lambda: wrote.is_set() or runs.writer_waiting()
    _pause_between_layers(model, pause, monkeypatch)
    for cls in (step_mod.PlannedStep, step_mod.GraphStep):  # fit's steps, not its other calls
        monkeypatch.setattr(cls, "__call__", _armed(cls.__call__, pause))
    errors = []

    def train():
        wxb.fit(
            model, X, y, loss="cross_entropy", optimizer=wxb.optim.SGD(model.parameters(), lr=lr),
            epochs=1, batch_size=n, shuffle=False, verbose=0,
        )  # fmt: skip

    def load():
        try:
            assert pause.paused.wait(runs.SECONDS)
            model.load_state_dict(dict(zip(names, loaded, strict=True)))
        finally:
            wrote.set()

    runs.join_all([runs.guarded(train, errors), runs.guarded(load, errors)], errors)
    monkeypatch.undo()
    got = runs.weights(model)
    stepped = [w - lr * g for w, g in zip(before, _torch_grads(before, X, y), strict=True)]
    wants = {
        "the loaded state (fit stepped first)": loaded,
        "the loaded state stepped by the gradients at the weights before": [
            w + (s - b) for w, s, b in zip(loaded, stepped, before, strict=True)
        ],
    }
    close = [
        all(np.allclose(g, w, rtol=1e-9, atol=1e-9) for g, w in zip(got, want, strict=True))
        for want in wants.values()
    ]
    assert any(close), seeded.msg(
        f"fit's step was of no weights: off by {[f'{_apart(got, w):.3g}' for w in wants.values()]}"
    )


def _apart(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


def _armed(call, pause):
    def armed(self, *args, **kwargs):
        pause.thread = threading.get_ident()
        try:
            return call(self, *args, **kwargs)
        finally:
            pause.thread = None

    return armed
