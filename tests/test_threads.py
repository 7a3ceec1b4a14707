"""Threads: inference on one shared model while other threads train their own.

What is safe (docs/architecture.md, "Threads"): any number of threads may call
``predict`` or run the model under ``no_grad`` on one model at once, and threads may
train models of their own; a model being trained is not shared. Grad mode and
``evaluating()`` are per thread, as in PyTorch.
"""

import threading

import numpy as np
import pytest

import wxb
from wxb.nn import CrossEntropyLoss, Dense, Dropout, Module, ReLU, Sequential, Tanh
from wxb.optim import Adam
from wxb.random import drawing_from

CALLS = 1500  # per inference thread


class Gate(Module):
    """A custom module (graph path), with Dropout that must be off in inference."""

    def __init__(self, n, seed):
        super().__init__()
        self.a = Dense(n, 12, seed=seed)
        self.b = Dense(n, 12, seed=seed + 1)
        self.drop = Dropout(0.5)
        self.out = Dense(12, 3, seed=seed + 2)

    def forward(self, x):
        return self.out(self.drop(wxb.ops.tanh(self.a(x)) * wxb.ops.sigmoid(self.b(x))))


def make_trainee(n, seed, hidden=16):
    """``hidden`` over 64K/n: layers with memory of their own, stepped as runs of their
    own (models built in several threads at once interleave in wxb.nn's memory too)."""
    return Sequential(
        Dense(n, hidden, seed=seed),
        ReLU(),
        Dropout(0.3),
        Dense(hidden, 16, seed=seed + 1),
        Tanh(),
        Dense(16, 3, seed=seed + 2),
    )


def train(model, X, y, seed):
    """fit for the planned step, then a hand-written loop for the recorded graph."""
    wxb.fit(model, X, y, epochs=2, batch_size=16, seed=seed, verbose=False)
    opt = Adam(model.parameters(), lr=0.01)
    model.train()
    with drawing_from(np.random.default_rng(seed)):  # this thread's Dropout masks
        for start in range(0, len(X), 16):
            opt.zero_grad()
            loss = CrossEntropyLoss()(model(X[start : start + 16]), y[start : start + 16])
            loss.backward()
            opt.step()
    return [p.data.copy() for p in model.parameters()]


def test_inference_threads_and_training_threads_do_not_disturb_each_other(seeded):
    rng = seeded.rng
    n = 7
    seed = int(rng.integers(1 << 20))
    shared = Sequential(Dense(n, 32, seed=seed), ReLU(), Dropout(0.5), Dense(32, 3, seed=seed + 1))
    gate = Gate(n, seed + 5)
    shared.train()  # left in training mode: predict must still switch Dropout off
    gate.train()
    inputs = [rng.normal(size=(int(rng.integers(1, 40)), n)).astype(np.float32) for _ in range(16)]
    with shared.evaluating(), gate.evaluating(), wxb.no_grad():
        expected_shared = [shared.predict(x) for x in inputs]
        expected_gate = [gate(x).data.copy() for x in inputs]

    jobs = []
    for k in range(3):
        X = rng.normal(size=(96, n)).astype(np.float32)
        y = rng.integers(0, 3, size=96)
        jobs.append((X, y, seed + 100 * (k + 1), 10_000 if k == 0 else 16))
    # Single-threaded runs first: the reference for the threaded ones.
    alone = [train(make_trainee(n, s, h), X, y, s) for X, y, s, h in jobs]

    start = threading.Barrier(3 + 2 + len(jobs))
    failures: list[str] = []
    trained: dict[int, list[np.ndarray]] = {}

    def infer(worker: int) -> None:
        local = np.random.default_rng(seeded.seed + worker)
        start.wait()
        for call in range(CALLS):
            i = int(local.integers(len(inputs)))
            if call % 2:
                got, want = shared.predict(inputs[i]), expected_shared[i]
            else:
                with gate.evaluating(), wxb.no_grad():
                    got, want = gate(inputs[i]).data, expected_gate[i]
            if not np.array_equal(got, want):
                failures.append(f"inference worker {worker}, call {call}: output differs")
                return

    def toggle(worker: int) -> None:
        start.wait()
        for call in range(CALLS):
            if not wxb.is_grad_enabled():
                failures.append(f"grad worker {worker}: grad mode off outside no_grad, {call}")
                return
            with wxb.no_grad():
                if wxb.is_grad_enabled():
                    failures.append(f"grad worker {worker}: grad mode on inside no_grad")
                    return

    def trainer(k: int) -> None:
        X, y, s, h = jobs[k]
        model = make_trainee(n, s, h)
        start.wait()
        trained[k] = train(model, X, y, s)

    threads = [threading.Thread(target=infer, args=(w,)) for w in range(3)]
    threads += [threading.Thread(target=toggle, args=(w,)) for w in range(2)]
    threads += [threading.Thread(target=trainer, args=(k,)) for k in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), seeded.msg("a thread hung")
    assert not failures, seeded.msg("; ".join(failures[:5]))
    assert wxb.is_grad_enabled()
    for k, weights in enumerate(alone):
        for a, b in zip(weights, trained[k], strict=True):
            assert np.array_equal(a, b), seeded.msg(f"trainer {k} differs from its lone run")
    assert shared.training and shared[2].training  # nobody's mode was changed


def test_fit_in_another_thread_leaves_signals_alone_and_checkpoints(rng, tmp_path):
    """Signal handlers belong to the main thread: fit elsewhere installs none, and still
    checkpoints and resumes exactly."""
    import signal

    n, rows, seed = int(rng.integers(3, 9)), int(rng.integers(40, 120)), int(rng.integers(1000))
    X = rng.standard_normal((rows, n))
    y = rng.integers(0, 3, rows)
    before = signal.getsignal(signal.SIGINT)
    seen, results = {"thread": [], "main": []}, {}

    def train(name, **options):
        model = make_trainee(n, seed)
        original = model.forward

        def watched(x):
            seen[name].append(signal.getsignal(signal.SIGINT))
            return original(x)

        model.forward = watched  # graph path; records the handler in force during fit
        results[name] = (model, wxb.fit(model, X, y, epochs=3, batch_size=8, seed=seed, **options))

    worker = threading.Thread(target=train, args=("thread",), kwargs={"checkpoint_dir": tmp_path})
    worker.start()
    worker.join()
    train("main")
    assert seen["thread"] and all(handler is before for handler in seen["thread"])
    if before is signal.default_int_handler:  # the main thread's fit installs its own
        assert seen["main"][-1] is not before  # (its first forward, a probe, comes before)
    assert signal.getsignal(signal.SIGINT) is before  # and puts it back
    assert sorted(p.name for p in tmp_path.glob("step-*.json"))  # it checkpointed
    a, b = results["thread"][0].state_dict(), results["main"][0].state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a), f"seed {seed}"


def test_forwards_that_record_a_graph_on_one_shared_model_in_several_threads(rng):
    """As each PyTorch forward has tensors of its own: outputs, losses and gradients of
    forwards recorded at once in several threads on one Sequential are each thread's own."""
    model = Sequential(Dense(8, 64, seed=1), Tanh(), Dense(64, 3, seed=2))
    batches = [rng.standard_normal((int(rng.integers(1, 200)), 8)).astype(np.float32)
               for _ in range(3)]  # fmt: skip
    targets = [rng.integers(0, 3, len(X)) for X in batches]
    loss_fn = CrossEntropyLoss()

    def alone(X, y):
        out = model(X)
        x_in = wxb.Tensor(X, requires_grad=True)  # ∂L/∂X: per call, nothing shared
        loss = loss_fn(model(x_in), y)
        loss.backward()
        return out.data.copy(), float(loss.data), x_in.grad.copy()

    want = [alone(X, y) for X, y in zip(batches, targets, strict=True)]
    wrong, errors = [], []

    def work(k):
        try:
            for _ in range(150):
                got = alone(batches[k], targets[k])
                for a, b in zip(got, want[k], strict=True):
                    if not np.allclose(a, b, rtol=1e-6, atol=1e-7):
                        wrong.append(k)
        except Exception as error:  # an assertion in a thread would be lost
            errors.append(repr(error))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert not wrong, f"{len(wrong)} results differ from the single-threaded ones"


@pytest.mark.parametrize("path", ["planned", "planned, with an optimiser", "layer by layer"])
def test_backwards_in_several_threads_add_every_share_into_the_gradients(rng, path):
    """Threads each run forward and backward on their own rows of one model, without
    zero_grad: every parameter's .grad is the sum of all their shares (read, add and
    write raced, and whole shares were lost: 199 for 200). Big enough products, and
    several tries, for the threads to overlap."""
    threads, rounds = 4, 10
    model = Sequential(Dense(128, 256), Tanh(), Dense(256, 10)).to("float64")
    model.use_plan = path != "layer by layer"
    if path == "planned, with an optimiser":
        Adam(model.parameters())  # its flat gradient buffer is where backward writes
    shards = [(rng.normal(size=(64, 128)), rng.integers(0, 10, 64)) for _ in range(threads)]

    def work(X, y, start=None) -> None:
        if start is not None:
            start.wait()
        for _ in range(rounds):
            CrossEntropyLoss()(model(X), y).backward()

    for X, y in shards:  # one after another
        work(X, y)
    expected = {name: p.grad.copy() for name, p in model.named_parameters()}
    for attempt in range(8):
        for p in model.parameters():
            p.grad = None
        start = threading.Barrier(threads)
        workers = [threading.Thread(target=work, args=(X, y, start)) for X, y in shards]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        for name, p in model.named_parameters():
            np.testing.assert_allclose(
                p.grad, expected[name], rtol=1e-9, atol=1e-12, err_msg=f"{name}, try {attempt}"
            )


class _TanhByAutogradInThreads:
    """A custom activation whose f′ comes from wxb's own autograd, run in a pool."""

    name = "tanh_by_autograd"

    def forward(self, z, out):
        return np.tanh(z, out=out)

    @staticmethod
    def _derivative(z):
        t = wxb.Tensor(z.copy(), requires_grad=True)
        wxb.ops.tanh(t).sum().backward()
        return t.grad

    def backward(self, z, a, grad, out):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            parts = list(pool.map(self._derivative, np.array_split(z, 2)))
        return np.multiply(grad, np.concatenate(parts), out=out)


def test_a_kernel_whose_backward_waits_on_other_threads_backwards_finishes(rng):
    """The planned backward holds its model's lock, never the one other backwards take
    (held through the whole backward, it deadlocked this kernel's pool)."""
    from wxb.nn import Activation, MSELoss

    model = Sequential(Dense(4, 8), Activation(_TanhByAutogradInThreads()), Dense(8, 1))
    reference = Sequential(Dense(4, 8), Tanh(), Dense(8, 1))
    reference.load_state_dict(model.state_dict())
    X, y = rng.normal(size=(16, 4)).astype(np.float32), np.zeros((16, 1), np.float32)
    done = threading.Thread(target=lambda: MSELoss()(model(X), y).backward(), daemon=True)
    done.start()
    done.join(60)
    assert not done.is_alive(), "the backward did not finish"
    MSELoss()(reference(X), y).backward()
    # float32, f′ computed two ways (1 − tanh² by autograd, by the stock kernel): rounding
    np.testing.assert_allclose(model[0].weight.grad, reference[0].weight.grad, rtol=1e-5, atol=1e-6)


def _train_with_threaded_updates(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    model = Sequential(Dense(30, 40, seed=seed), ReLU(), Dense(40, 3, seed=seed + 1))
    optimizer = Adam(model.parameters(), lr=1e-2)
    optimizer.threaded_from = 64  # every update in chunks on the pool's threads
    for _ in range(3):
        X, y = rng.normal(size=(16, 30)).astype(np.float32), rng.integers(0, 3, 16)
        optimizer.zero_grad()
        CrossEntropyLoss()(model(X), y).backward()
        optimizer.step()
    return np.concatenate([p.data.ravel() for p in model.parameters()])


def _child(seed, queue):
    queue.put(_train_with_threaded_updates(seed))


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="fork() is POSIX's")
def test_a_forked_child_trains_after_its_parent_used_the_update_threads(rng):
    """The child inherited the parent's idle pool without its threads: the pool started
    none for the child's work, which waited for ever (joblib's multiprocessing backend,
    multiprocessing's default start on Linux)."""
    import multiprocessing
    import os

    from wxb import kernels

    seed = int(rng.integers(1 << 30))
    kernels.use("numpy")  # its chunks go to threads from threaded_from (compiled: from 2M)
    try:
        expected = _train_with_threaded_updates(seed)  # the parent's pool exists, idle, now
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        child = context.Process(target=_child, args=(seed, queue))
        child.start()
        try:
            got = queue.get(timeout=120)  # ~1 s of work: a hang, not slowness, ends here
        finally:
            child.join(10)
            if child.is_alive():
                child.kill()
    finally:
        kernels.use(os.environ.get("WXB_KERNELS", "auto"))
    np.testing.assert_array_equal(got, expected)


def _build_and_predict(X):
    model = Sequential(Dense(4, 8, seed=0), ReLU(), Dense(8, 8, seed=1))
    model.predict(X)  # caches the module list at this process's structure version
    return model


def _child_changes_and_pickles(X, queue):
    import pickle

    model = _build_and_predict(X)
    model.append(Dropout(0.5))  # the cache is stale from here on
    queue.put(pickle.dumps(model))


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="fork() is POSIX's")
def test_a_model_pickled_in_a_forked_child_lists_its_own_modules_in_the_parent(rng):
    """The child counts structure versions on from the parent's numbers: its pickled
    cache of the module list could pass for current in the parent, which then left the
    Dropout added in the child out of predict's eval mode (random predictions)."""
    import multiprocessing
    import pickle

    X = rng.normal(size=(5, 4)).astype(np.float32)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_changes_and_pickles, args=(X, queue))
    child.start()
    _build_and_predict(X)  # the same changes here as the child made before its append
    try:
        model = pickle.loads(queue.get(timeout=120))
    finally:
        child.join(10)
    assert [type(m) for m in model._module_list()] == [type(m) for _, m in model.named_modules()]
    np.testing.assert_array_equal(model.predict(X), model.predict(X))


@pytest.mark.parametrize("change", ["bias", "dtype"])
def test_a_plan_made_in_another_thread_after_a_bad_data_refuses_it_too(rng, change):
    """A .data the planned stack cannot run (a b of shape (1,), a float64 W in a float32
    model) is refused by predict in this thread; a plan made later in another thread
    trusted the model's first check and ran it (b broadcast, the float64 W used)."""
    X = rng.normal(size=(6, 2)).astype(np.float32)
    model = Sequential(Dense(2, 3, seed=0), ReLU(), Dense(3, 2, seed=1))
    model.predict(X)
    if change == "bias":
        model[2].bias.data = np.array([0.5], np.float32)
    else:
        model[2].weight.data = model[2].weight.data.astype(np.float64)
    outcome = {}

    def predict():
        try:
            outcome["output"] = model.predict(X)
        except wxb.WxbError as error:
            outcome["error"] = error

    thread = threading.Thread(target=predict)
    thread.start()
    thread.join()
    assert "error" in outcome, outcome
    with pytest.raises(wxb.WxbError):
        model.predict(X)


class _Held(Module):
    """A custom module holding generators (a seeded Dropout's own, one for noise) and a
    hook its forward calls first: where a test makes another thread work mid-summary."""

    def __init__(self, seed):
        super().__init__()
        self.fc = Dense(5, 4, seed=seed)
        self.drop = Dropout(0.5, seed=seed + 1)
        self.noise = np.random.default_rng(seed + 2)
        self.hook = None

    def forward(self, x):
        if self.hook is not None:
            self.hook()
        return self.drop(self.fc(x))


def _in_a_thread(work):
    thread = threading.Thread(target=work)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the other thread hung"


def test_a_summary_leaves_the_draws_another_thread_makes_meanwhile(seeded):
    """summary's sample run put the generators the model holds back to their states
    before it: a thread that drew from them meanwhile (training the model: its Dropout
    masks) had those draws made again after the summary, and trained to other weights."""
    seed = int(seeded.rng.integers(1 << 20))
    model = _Held(seed)
    drawn = []

    def other_thread():  # draws while the summary's forward runs, as a training thread would
        drawn.append((model.drop.rng.random(6), model.noise.standard_normal(6)))

    model.hook = lambda: _in_a_thread(other_thread)
    model.summary()
    model.hook = None
    assert drawn  # (once per forward the summary ran)
    assert model.drop.rng is model.drop._own_rng and type(model.noise) is np.random.Generator
    fresh_mask = Dropout(0.5, seed=seed + 1).rng  # the layer's generator as it is made
    fresh_noise = np.random.default_rng(seed + 2)
    # the other thread's draws were the generators' first, and they move on from there
    for mask, noise in drawn:
        np.testing.assert_array_equal(mask, fresh_mask.random(6), seeded.msg("mask"))
        np.testing.assert_array_equal(noise, fresh_noise.standard_normal(6))
    after = seeded.msg("after the summary")
    np.testing.assert_array_equal(model.drop.rng.random(6), fresh_mask.random(6), after)
    np.testing.assert_array_equal(model.noise.standard_normal(6), fresh_noise.standard_normal(6))


def test_summaries_of_one_model_in_two_threads_put_every_forward_back(seeded):
    """A summary started in another thread during this one's sample run, and ending after
    it, wraps this run's wrappers: it put back this run's (ended) wrapper, left on the
    layers for good (the model recorded calls on every forward from then on, and a
    Sequential among them stayed off its planned stack). Both count their own calls."""
    seed = int(seeded.rng.integers(1 << 20))
    model = _Held(seed)
    first = threading.get_ident()
    inside, first_done, other = threading.Event(), threading.Event(), {}

    def hook():
        if threading.get_ident() == first and not inside.is_set():
            threading.Thread(target=lambda: other.setdefault("summary", model.summary())).start()
            assert inside.wait(60)  # the other run's wrappers are on the layers now
        elif threading.get_ident() != first and not first_done.is_set():
            inside.set()
            assert first_done.wait(60)  # it ends after this thread's run

    model.hook = hook
    mine = model.summary()
    first_done.set()
    for _ in range(600):
        if "summary" in other:
            break
        threading.Event().wait(0.1)
    model.hook = None
    assert "summary" in other, "the other thread's summary did not end"
    left = [m.label for m in (model, model.fc, model.drop) if "forward" in vars(m)]
    assert not left, seeded.msg(f"sample-run wrappers left on {left}")
    held = (model.drop._own_rng, model.noise)  # the generators themselves, as they were made
    assert all(type(g) is np.random.Generator for g in held)
    assert [g.bit_generator.state for g in held] == [
        np.random.default_rng(s).bit_generator.state for s in (seed + 1, seed + 2)
    ]
    for s in (mine, other["summary"]):
        assert s.calls_counted and [r.calls for r in s.rows if r.name == "fc"] == [1]


def test_fit_draws_its_masks_alike_while_another_thread_summarises_the_model(seeded):
    """A fit in one thread while another summarises the model trains as it would without
    the summary: the sample run touches neither the model's generators (a seeded
    Dropout's masks are keyed by its generator's identity) nor its layers."""
    rng = seeded.rng
    seed = int(rng.integers(1 << 20))
    X = rng.normal(size=(64, 5)).astype(np.float32)
    y = rng.integers(0, 4, 64)

    def trained(summarise: bool) -> list[np.ndarray]:
        model = _Held(seed)
        fitting = threading.get_ident()
        calls, inside, failed = [0], threading.Event(), []

        def summarised():
            try:
                model.summary()
            except BaseException as error:  # (a thread's error would pass unseen)
                failed.append(error)

        summary = threading.Thread(target=summarised)

        def hook():
            if threading.get_ident() != fitting:  # the summary's sample run
                inside.set()
                return
            calls[0] += 1
            if summarise and calls[0] == 2:  # the sample run reads the weights, so fit's
                summary.start()  # steps wait for each of its calls (WEIGHTS): it runs
                assert inside.wait(60)  # within fit's forward and between its steps
            if summarise and calls[0] == 12:  # (it held each step for 60 s, when this hook
                summary.join(60)  # kept it inside a call until step 12: one read)

        model.hook = hook
        wxb.fit(model, X, y, epochs=2, batch_size=8, seed=seed, verbose=False)
        assert not summarise or (inside.is_set() and not summary.is_alive()), "hung"
        assert not failed, failed
        return [p.data.copy() for p in model.parameters()]

    for a, b in zip(trained(False), trained(True), strict=True):
        np.testing.assert_array_equal(a, b, seeded.msg("fit with a summary meanwhile"))
