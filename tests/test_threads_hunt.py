"""Threads and processes, hunted against PyTorch and against the same work alone."""

import threading
import time

import numpy as np
import pytest

from wxb.nn import CrossEntropyLoss, Dense, ReLU, Sequential, Tanh
from wxb.optim import Adam


def _join(threads, errors, seconds=120):
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors[:3]


def test_two_models_sharing_a_layer_back_propagate_at_once_into_one_optimiser(seeded):
    """Two Sequentials sharing an encoder, one Adam over both, a backward of each in two
    threads at once: each planned backward found the encoder's .grad None under its own
    model's lock and wrote ∂L/∂W into the optimiser's one buffer, so one model's share
    was lost (the encoder's gradient off by a whole share, no error)."""
    torch = pytest.importorskip("torch")
    seed, rng = seeded.seed, seeded.rng
    enc = Dense(128, 256, seed=seed % 1000)
    heads = [Dense(256, 5, seed=seed % 1000 + 1), Dense(256, 5, seed=seed % 1000 + 2)]
    models = [
        Sequential(enc, Tanh(), heads[0]).to("float64"),
        Sequential(enc, ReLU(), heads[1]).to("float64"),
    ]
    params = list({id(p): p for m in models for p in m.parameters()}.values())
    optimizer = Adam(params)
    data = [(rng.normal(size=(64, 128)), rng.integers(0, 5, 64)) for _ in models]

    # PyTorch: the encoder's gradient of both losses, summed
    tw = torch.tensor(enc.weight.data, requires_grad=True)
    tb = torch.tensor(enc.bias.data, requires_grad=True)
    acts = [torch.tanh, torch.relu]
    total = 0
    for (X, y), head, act in zip(data, heads, acts, strict=True):
        z = act(torch.tensor(X) @ tw.T + tb) @ torch.tensor(head.weight.data).T
        z = z + torch.tensor(head.bias.data)
        total = total + torch.nn.functional.cross_entropy(z, torch.tensor(y))
    total.backward()

    errors: list[str] = []
    for attempt in range(200):  # the first backwards run the general way, later ones lean
        optimizer.zero_grad()
        start = threading.Barrier(2)

        def work(k, start=start):
            try:
                loss = CrossEntropyLoss()(models[k](data[k][0]), data[k][1])
                start.wait()  # the backwards together
                loss.backward()
            except Exception as error:  # an assertion in a thread would be lost
                errors.append(repr(error))

        _join([threading.Thread(target=work, args=(k,)) for k in range(2)], errors)
        for got, want, name in ((enc.weight, tw, "weight"), (enc.bias, tb, "bias")):
            np.testing.assert_allclose(
                got.grad,
                want.grad.numpy(),
                rtol=1e-10,
                atol=1e-13,
                err_msg=f"encoder {name}, try {attempt}, seed {seed}",
            )


def test_forwards_through_one_batchnorm_in_several_threads_keep_every_batch(seeded):
    """Training forwards through one BatchNorm1d (momentum None: the running statistics
    are the plain mean of every batch's, whatever the order) in four threads at once: each
    read the count and r, and wrote (1 − m)·r + m·s over the others' updates (a running
    mean off by ~1e-2 from NumPy's mean of the batch means, no error)."""
    import wxb
    from wxb.nn import BatchNorm1d

    seed, rng = seeded.seed, seeded.rng
    threads, rounds = 4, 150
    bn = BatchNorm1d(16, momentum=None).to("float64")
    data = [[rng.normal(size=(32, 16)) * 2 + 1 for _ in range(rounds)] for _ in range(threads)]
    start, errors = threading.Barrier(threads), []

    def work(k):
        try:
            start.wait()
            for X in data[k]:
                bn(wxb.Tensor(X))
        except Exception as error:
            errors.append(repr(error))

    _join([threading.Thread(target=work, args=(k,)) for k in range(threads)], errors)
    batches = [X for part in data for X in part]
    assert int(bn.num_batches_tracked) == len(batches), f"seed {seed}"
    want_mean = np.mean([X.mean(axis=0) for X in batches], axis=0)
    want_var = np.mean([X.var(axis=0, ddof=1) for X in batches], axis=0)
    np.testing.assert_allclose(bn.running_mean, want_mean, rtol=1e-10, err_msg=f"seed {seed}")
    np.testing.assert_allclose(bn.running_var, want_var, rtol=1e-10, err_msg=f"seed {seed}")


def _backward_in_child(model, X, y, queue):
    from wxb.nn import CrossEntropyLoss as Loss

    model.zero_grad()
    Loss()(model(X), y).backward()
    queue.put([p.grad for p in model.parameters()])


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="fork() is POSIX's")
def test_a_child_forked_while_other_threads_run_backwards_runs_its_own(seeded):
    """fork() (multiprocessing's default start on Linux) while two threads run backwards:
    a lock one of them held (tensor.GRAD_LOCK, a model's backward lock, a BatchNorm's)
    stayed held for ever in the child, whose first backward hung (about one fork in five)."""
    import multiprocessing
    import queue as queues

    from wxb.nn import BatchNorm1d

    rng = seeded.rng
    X, y = rng.normal(size=(64, 32)), rng.integers(0, 3, 64)
    planned = Sequential(Dense(32, 64), Tanh(), Dense(64, 3)).to("float64")
    Adam(planned.parameters())
    graph = Sequential(Dense(32, 64), BatchNorm1d(64), Tanh(), Dense(64, 3)).to("float64")
    fresh = Sequential(Dense(32, 8), Tanh(), Dense(8, 3)).to("float64")
    models = [planned, graph, fresh]
    for model in models:  # the kernels loaded (a fork during an import is CPython's to fix)
        CrossEntropyLoss()(model(X), y).backward()
    stop, errors = threading.Event(), []

    def busy():
        try:
            while not stop.is_set():
                CrossEntropyLoss()(planned(X), y).backward()
                CrossEntropyLoss()(graph(X), y).backward()
        except Exception as error:
            errors.append(repr(error))

    workers = [threading.Thread(target=busy, daemon=True) for _ in range(2)]
    for w in workers:
        w.start()
    context = multiprocessing.get_context("fork")
    hung = []
    try:
        for attempt in range(45):
            model = models[attempt % 3]
            time.sleep(0.005)  # the busy threads under way
            results = context.Queue()
            child = context.Process(target=_backward_in_child, args=(model, X, y, results))
            child.start()
            try:
                grads = results.get(timeout=20)
            except queues.Empty:
                hung.append(f"fork {attempt}: the child's backward of model {attempt % 3} hung")
                break
            finally:
                child.join(5)
                if child.is_alive():
                    child.kill()
            if model is fresh:  # the child's numbers: the parent's, alone
                fresh.zero_grad()
                CrossEntropyLoss()(fresh(X), y).backward()
                for got, p in zip(grads, fresh.parameters(), strict=True):
                    np.testing.assert_array_equal(got, p.grad, err_msg=seeded.msg("child"))
    finally:
        stop.set()
        for w in workers:
            w.join(60)
    assert not errors, errors[:3]
    assert not hung, seeded.msg(hung[0])


def test_a_second_fit_of_a_model_another_thread_is_fitting_is_refused(seeded):
    """Two fits of one model in two threads ran to the end without a word, each stepping
    the other's weights: the model was neither run's (what wxb says is not safe must not
    be silent). The second is refused; the first trains as it does alone."""
    import wxb
    from wxb.errors import TrainingError

    rng = seeded.rng
    X = rng.normal(size=(400, 6)).astype(np.float32)
    y = rng.integers(0, 3, 400)

    def make():
        return Sequential(Dense(6, 16, seed=1), ReLU(), Dense(16, 3, seed=2))

    alone = make()
    wxb.fit(alone, X, y, epochs=3, batch_size=16, seed=5, verbose=False)
    model, errors, refused = make(), [], []

    def second():
        try:
            wxb.fit(model, X, y, epochs=1, seed=6, verbose=False)
        except TrainingError as error:
            refused.append(str(error))
        except Exception as error:
            errors.append(repr(error))

    class Progress:  # the first fit's progress: the second fit starts while it is under way
        def __init__(self):
            self.other = None

        def write(self, text):
            if self.other is None:
                self.other = threading.Thread(target=second)
                self.other.start()
                self.other.join(60)
            return len(text)

        def flush(self):
            pass

    progress = Progress()
    wxb.fit(model, X, y, epochs=3, batch_size=16, seed=5, verbose=True, stream=progress)
    assert progress.other is not None and not progress.other.is_alive()
    assert not errors, errors
    assert len(refused) == 1 and "another thread" in refused[0], refused
    for a, b in zip(alone.parameters(), model.parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data, err_msg=seeded.msg("the first fit"))


def test_one_no_grad_instance_entered_in_several_threads_puts_back_each_ones_mode(seeded):
    """``inference = wxb.no_grad()`` kept in a module and entered by several threads: its
    one list of previous modes handed a thread the mode another had before the block (a
    thread inside an outer no_grad came out recording, another came out not recording)."""
    import random

    import wxb

    shared = [wxb.no_grad(), wxb.enable_grad()]
    start, wrong, errors = threading.Barrier(4), [], []

    def work(k):
        draw = random.Random(seeded.seed + k)
        try:
            start.wait()
            for call in range(150):
                outer = wxb.no_grad() if k % 2 else wxb.enable_grad()
                with outer:
                    mine = wxb.is_grad_enabled()  # what this thread alone gets back
                    with shared[draw.randrange(2)]:
                        time.sleep(draw.random() * 1e-3)
                    if wxb.is_grad_enabled() != mine:
                        wrong.append(f"thread {k}, call {call}")
                        return
        except Exception as error:
            errors.append(repr(error))

    _join([threading.Thread(target=work, args=(k,)) for k in range(4)], errors)
    assert not wrong, seeded.msg(
        f"a thread came out of the shared block in the wrong mode: {wrong}"
    )
    assert wxb.is_grad_enabled()


def test_one_evaluating_block_entered_in_several_threads_holds_each_ones_eval_mode(seeded):
    """``ev = model.evaluating()`` entered by several threads at once: a thread leaving it
    ended another thread's entry (whose forwards inside the block ran with Dropout on:
    outputs unlike x·Wᵀ + b) and left its own for good (Dropout off after the block)."""
    import random

    import wxb
    from wxb.nn import Dropout

    rng = seeded.rng
    model = Sequential(Dense(5, 9, seed=int(rng.integers(1000))), Dropout(0.5))
    model.train()
    shared = model.evaluating()
    x = rng.normal(size=(7, 5)).astype(np.float32)
    W, b = model[0].weight.data, model[0].bias.data
    want = x.astype(np.float64) @ W.T.astype(np.float64) + b  # eval mode: Dropout is identity
    start, wrong, errors = threading.Barrier(4), [], []

    def work(k):
        draw = random.Random(seeded.seed + k)
        try:
            start.wait()
            for call in range(100):
                with shared, wxb.no_grad():
                    time.sleep(draw.random() * 1e-3)
                    got = model(x).data
                if not np.allclose(got, want, rtol=1e-5, atol=1e-5):
                    wrong.append(f"thread {k}, call {call}: Dropout on inside the block")
                    return
                if not model[1].training:
                    wrong.append(f"thread {k}, call {call}: eval mode after the block")
                    return
        except Exception as error:
            errors.append(repr(error))

    _join([threading.Thread(target=work, args=(k,)) for k in range(4)], errors)
    assert not wrong, seeded.msg("; ".join(wrong[:4]))
