"""Threads where PyTorch users put them: a server's predicts beside a thread that trains
or recalibrates, gradients looked at in one thread while another accumulates, fits in a
pool. Each threaded result is a sequential run's (or an independent reference's)."""

import sys
import threading

import numpy as np
import pytest

import wxb
from wxb.nn import BatchNorm1d, CrossEntropyLoss, Dense, Sequential, Tanh


def _join(threads, errors, seconds=120):
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors[:3]


def _torch_grads(model, X, y):
    """∂L/∂p of CrossEntropy(model(X), y) in float64 by PyTorch, for a Dense-Tanh-Dense."""
    torch = pytest.importorskip("torch")
    ps = [torch.tensor(p.data, requires_grad=True) for p in model.parameters()]
    w1, b1, w2, b2 = ps
    z = torch.tanh(torch.tensor(X) @ w1.T + b1) @ w2.T + b2
    torch.nn.functional.cross_entropy(z, torch.tensor(y)).backward()
    return [p.grad.numpy() for p in ps]


def test_autograd_grad_in_one_thread_leaves_another_threads_backward_its_share(seeded, monkeypatch):
    """wxb.autograd.grad after a planned forward set each .grad aside (None), ran the
    plan's backward into .grad, and put the old .grad back: a backward in another thread
    on the same model in between added into the None, so autograd.grad handed back both
    losses' gradients and the other thread's share was lost from .grad (no error). Made
    to happen at that point every time: the first thread waits there for the second."""
    from wxb.nn import plan as planned

    rng = seeded.rng
    seed = int(rng.integers(1 << 20))
    model = Sequential(Dense(6, 9, seed=seed), Tanh(), Dense(9, 4, seed=seed + 1)).to("float64")
    (XA, yA), (XB, yB) = [(rng.normal(size=(11, 6)), rng.integers(0, 4, 11)) for _ in range(2)]
    want_a, want_b = _torch_grads(model, XA, yA), _torch_grads(model, XB, yB)
    for p in model.parameters():
        p.grad = None

    looking = []  # the thread whose autograd.grad waits
    at_backward, other_done = threading.Event(), threading.Event()
    original = planned.StackPlan.backward

    def waits_first(self, *args, **kwargs):
        if threading.get_ident() in looking:
            at_backward.set()
            assert other_done.wait(60)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(planned.StackPlan, "backward", waits_first)
    got, errors = {}, []

    def look():
        try:
            looking.append(threading.get_ident())
            loss = CrossEntropyLoss()(model(XA), yA)
            got["a"] = [g.data.copy() for g in wxb.autograd.grad(loss, list(model.parameters()))]
        except Exception as error:  # an assertion in a thread would be lost
            errors.append(repr(error))

    def accumulate():
        try:
            assert at_backward.wait(60)
            CrossEntropyLoss()(model(XB), yB).backward()
        except Exception as error:
            errors.append(repr(error))
        finally:
            other_done.set()

    _join([threading.Thread(target=look), threading.Thread(target=accumulate)], errors)
    # float64, one product and a row sum each: rounding of the order of ε·(terms)
    for g, w in zip(got["a"], want_a, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14, err_msg=seeded.msg("grad"))
    for p, w in zip(model.parameters(), want_b, strict=True):
        assert p.grad is not None, seeded.msg("the other thread's backward was lost")
        np.testing.assert_allclose(p.grad, w, rtol=1e-12, atol=1e-14, err_msg=seeded.msg(".grad"))


class _PausingNumpy:
    """NumPy as wxb.ops sees it, but for the first write of a BatchNorm's running
    statistics in a training step the test marks (``pause``): the training thread waits
    there for a prediction from the other thread, or, where a fixed wxb holds that
    prediction back until the update is whole, a second (a wait that decides nothing)."""

    def __init__(self):
        self.pause, self.predicted = threading.Event(), threading.Event()
        self.waiting = False  # a prediction begun while this is set is one between the writes

    def __getattr__(self, name):
        return getattr(np, name)

    def copyto(self, dst, src, **options):
        np.copyto(dst, src, **options)
        if self.pause.is_set():
            self.pause.clear()
            self.predicted.clear()
            self.waiting = True
            self.predicted.wait(1.0)
            self.waiting = False


def test_predicts_while_another_thread_moves_batchnorms_statistics_see_one_update(
    seeded, monkeypatch
):
    """A thread runs training-mode forwards through a BatchNorm1d (recalibrating its
    running statistics, SWA's update_bn) while another predicts: each prediction must be
    the eval-mode output of the statistics after some number of batches. The eval forward
    read σ² and then r while the training forward wrote r and then σ²: a prediction made
    of r of one batch and σ² of the one before, equal to none (bit for bit: the eval
    arithmetic is the sequential run's). Provoked at chosen steps (the training thread
    waits between its two writes) and by frequent thread switches at the others."""
    rng = seeded.rng
    channels, rounds = int(rng.integers(1024, 4096)), 300
    bn = BatchNorm1d(channels, momentum=float(rng.uniform(0.05, 0.5))).to("float64")
    batches = [rng.normal(size=(8, channels)) * rng.uniform(0.5, 3) + rng.normal()
               for _ in range(rounds)]  # fmt: skip
    x = rng.normal(size=(5, channels))

    def evaluated(layer):
        with layer.evaluating(), wxb.no_grad():
            return layer(wxb.Tensor(x)).data.copy()

    alone = BatchNorm1d(channels, momentum=bn.momentum).to("float64")
    seen = {evaluated(alone).tobytes(): 0}  # every state's prediction, by its bytes
    mean, var = np.zeros(channels), np.ones(channels)
    for k, X in enumerate(batches, 1):
        alone(wxb.Tensor(X))
        seen.setdefault(evaluated(alone).tobytes(), k)
        m = bn.momentum
        mean, var = (1 - m) * mean + m * X.mean(0), (1 - m) * var + m * X.var(0, ddof=1)
    # the sequential run itself against NumPy's recursion (float64 rounding of 300 steps)
    np.testing.assert_allclose(alone.running_mean, mean, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(alone.running_var, var, rtol=1e-12)

    pausing = _PausingNumpy()
    monkeypatch.setattr(wxb.ops, "np", pausing)
    start, done, wrong, errors = threading.Barrier(2), threading.Event(), [], []
    served = threading.Condition()
    count = [0]  # predictions made: the recalibration waits for a new one every 10 batches

    def recalibrate():
        try:
            start.wait()
            for k, X in enumerate(batches):
                if k % 10 == 0:
                    with served:
                        seen_then = count[0]
                        assert served.wait_for(lambda s=seen_then: count[0] > s, 60)
                if k in (rounds // 3, 2 * rounds // 3):
                    pausing.pause.set()
                bn(wxb.Tensor(X))
        except Exception as error:
            errors.append(repr(error))
        finally:
            done.set()

    def serve():
        try:
            start.wait()
            while not done.is_set():
                between = pausing.waiting
                if evaluated(bn).tobytes() not in seen:
                    wrong.append(1)
                if between:
                    pausing.predicted.set()
                with served:
                    count[0] += 1
                    served.notify()
        except Exception as error:
            errors.append(repr(error))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        _join([threading.Thread(target=recalibrate), threading.Thread(target=serve)], errors)
    finally:
        sys.setswitchinterval(interval)
    assert count[0] >= rounds // 10  # (the predictions overlapped the recalibration)
    assert not wrong, seeded.msg(f"{len(wrong)} of {count[0]} predictions of no sequential state")
    np.testing.assert_array_equal(bn.running_mean, alone.running_mean, seeded.msg("mean"))
    np.testing.assert_array_equal(bn.running_var, alone.running_var, seeded.msg("var"))


class _NumpyWaiting:
    """NumPy as wxb.tables sees it, but each thread's first ``nanmax`` (fit's look at how
    float32 rounds the features) runs ``arrive(thread)`` before it."""

    def __init__(self, first):
        self.first, self.seen = first, set()

    def __getattr__(self, name):
        return getattr(np, name)

    def nanmax(self, *args, **kwargs):
        me = threading.get_ident()
        if me not in self.seen:
            self.seen.add(me)
            self.first(me)
        return np.nanmax(*args, **kwargs)


def test_fits_in_two_threads_leave_the_warning_filters_as_they_were(seeded, monkeypatch):
    """fit of float64 X into a float32 model looks at how float32 rounds each column, with
    NumPy's all-NaN warning silenced by warnings.catch_warnings, which swaps the
    process's one list of filters: two fits in threads, the second entering before the
    first left, put back "ignore RuntimeWarning" for good (NumPy's overflow warnings,
    fit's diagnose warnings gone for the rest of the process). Made to interleave so
    every time: the first fit waits inside for the second to come in; the second waits
    there until the first fit has ended. Each fit as it trains alone."""
    import warnings

    rng = seeded.rng
    seed = int(rng.integers(1 << 20))
    X = rng.normal(size=(48, 5)) * 1e3 + 1.7e6  # float64, and rounded by float32
    y = rng.normal(size=(48, 1))

    def trained(k):
        model = Sequential(Dense(5, 8, seed=seed + k), Tanh(), Dense(8, 1, seed=seed + 9))
        wxb.fit(model, X, y, loss="mse", epochs=2, batch_size=16, seed=seed, verbose=False)
        return [p.data.copy() for p in model.parameters()]

    alone = [trained(k) for k in range(2)]
    before = list(warnings.filters)
    order = []  # the threads, first in first
    first_in, second_in, first_done = threading.Event(), threading.Event(), threading.Event()

    def arrive(me):
        if not order:
            order.append(me)
            first_in.set()
            second_in.wait(30)  # (a fixed wxb holds nothing here: the wait ends at once)
        else:
            second_in.set()
            first_done.wait(30)

    monkeypatch.setattr(wxb.tables, "np", _NumpyWaiting(arrive))
    got, errors = {}, []

    def work(k):
        try:
            if k == 1:
                assert first_in.wait(60)
            got[k] = trained(k)
        except Exception as error:
            errors.append(repr(error))
        finally:
            if k == 0:
                first_done.set()

    _join([threading.Thread(target=work, args=(k,)) for k in range(2)], errors)
    after = list(warnings.filters)
    assert after == before, seeded.msg(f"filters left: {after[: len(after) - len(before) + 1]}")
    for k in range(2):
        for a, b in zip(alone[k], got[k], strict=True):
            np.testing.assert_array_equal(a, b, seeded.msg(f"fit {k}"))


def test_wxb_train_commands_in_threads_show_only_their_own_warnings_their_way(
    seeded, tmp_path, monkeypatch, capsys
):
    """wxb train shows its fit's warnings one line each ("wxb: warning: …") and drops
    its RuntimeWarnings (diagnostics, printed from the history), by swapping the
    process's filters and showwarning for the fit (warnings.catch_warnings): meanwhile
    another thread's warnings came out as wxb's or not at all, and two commands in
    threads, the second entering before the first left, left both swapped for good.
    Made to interleave so every time (the first command's fit waits for the second to
    begin, which waits until the first command has ended); each model as made alone."""
    import warnings

    from wxb import cli

    rng = seeded.rng
    data = tmp_path / "d.csv"
    X, labels = rng.normal(size=(60, 3)), rng.integers(0, 2, 60)
    data.write_text("a,b,c,label\n" + "".join(f"{a},{b},{c},{k}\n" for (a, b, c), k in
                                                zip(X, labels, strict=True)))  # fmt: skip

    def command(name):
        seed = str(int(rng.integers(1 << 20)))
        out = str(tmp_path / f"{name}.safetensors")
        return ["train", "--data", str(data), "--target", "label", "--epochs", "2", "-q",
                "--hidden", "5", "--seed", seed, "-o", out]  # fmt: skip

    commands = [command("a"), command("b")]
    for argv in commands:
        assert cli.main([*argv[:-1], argv[-1].replace(".safetensors", "-alone.safetensors")]) == 0
    fit, order = cli.fit, []
    first_in, second_in, first_done = threading.Event(), threading.Event(), threading.Event()

    def interleaved(*args, **kwargs):
        if not order:
            order.append(1)
            first_in.set()
            assert second_in.wait(60)
        else:
            second_in.set()
            assert first_done.wait(60)
        return fit(*args, **kwargs)

    monkeypatch.setattr(cli, "fit", interleaved)
    errors = []

    def work(k):
        try:
            if k == 1:
                assert first_in.wait(60)
            assert cli.main(commands[k]) == 0
        except Exception as error:
            errors.append(repr(error))
        finally:
            if k == 0:
                first_done.set()

    capsys.readouterr()
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
        threads[0].start()
        assert first_in.wait(60)  # a command is fitting: this thread's warnings are its own
        warnings.warn("during, mine", UserWarning, stacklevel=1)
        warnings.warn("during, a RuntimeWarning of mine", RuntimeWarning, stacklevel=1)
        threads[1].start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads), "a command hung"
        warnings.warn("after, mine", UserWarning, stacklevel=1)
        warnings.warn("after, a RuntimeWarning of mine", RuntimeWarning, stacklevel=1)
    assert not errors, errors
    shown = [str(w.message) for w in log]
    err = capsys.readouterr().err
    for said in ("during, mine", "during, a RuntimeWarning of mine", "after, mine",
                 "after, a RuntimeWarning of mine"):  # fmt: skip
        assert said in shown, seeded.msg(f"{said!r} not shown as Python shows it; stderr: {err}")
    assert "wxb: warning" not in err, seeded.msg(err)
    for name in ("a", "b"):
        alone = wxb.load(tmp_path / f"{name}-alone.safetensors").state_dict()
        got = wxb.load(tmp_path / f"{name}.safetensors").state_dict()
        for key in alone:
            np.testing.assert_array_equal(got[key], alone[key], seeded.msg(f"{name}: {key}"))


def test_a_fit_of_a_model_sharing_a_trained_layer_with_another_threads_fit_is_refused(seeded):
    """Two heads on one encoder, each fitted in its own thread at once: both fits stepped
    the encoder, each model trained by neither's data and seed alone, without a word (a
    second fit of the same model is refused; one sharing its trainable layer was not).
    Refused now, naming the parameter; with the encoder frozen both run at once, each as
    it trains alone. The second fit starts while the first is under way (from its
    progress stream), so the two overlap every time."""
    from wxb.errors import TrainingError
    from wxb.nn import ReLU

    rng = seeded.rng
    seed = int(rng.integers(1 << 20))
    X = rng.normal(size=(96, 5)).astype(np.float32)
    ys = [rng.integers(0, 3, 96), rng.integers(0, 2, 96)]

    def heads(frozen):
        encoder = Dense(5, 12, seed=seed)
        for p in encoder.parameters():
            p.requires_grad = not frozen
        return [Sequential(encoder, ReLU(), Dense(12, k, seed=seed + k)) for k in (3, 2)]

    def weights(model):
        return [p.data.copy() for p in model.parameters()]

    for frozen in (False, True):
        alone = []  # each head's weights right after its fit (the next moves a shared one)
        for model, y in zip(heads(frozen), ys, strict=True):
            wxb.fit(model, X, y, epochs=2, batch_size=16, seed=seed, verbose=False)
            alone.append(weights(model))
        models, outcome = heads(frozen), {}

        def second(models=models, outcome=outcome):
            try:
                wxb.fit(models[1], X, ys[1], epochs=2, batch_size=16, seed=seed, verbose=False)
                outcome["trained"] = weights(models[1])
            except TrainingError as error:
                outcome["refused"] = str(error)
            except Exception as error:
                outcome["error"] = repr(error)

        class Progress:  # the first fit's progress: the second fit runs while it is under way
            started = None

            def write(self, text):
                if self.started is None:
                    self.started = threading.Thread(target=second)
                    self.started.start()
                    self.started.join(120)
                return len(text)

            def flush(self):
                pass

        progress = Progress()
        wxb.fit(models[0], X, ys[0], epochs=2, batch_size=16, seed=seed, verbose=True,
                stream=progress)  # fmt: skip
        assert progress.started is not None and not progress.started.is_alive()
        assert "error" not in outcome, outcome
        for a, b in zip(alone[0], weights(models[0]), strict=True):
            np.testing.assert_array_equal(a, b, seeded.msg(f"the first fit, frozen {frozen}"))
        if frozen:
            assert "trained" in outcome, outcome
            for a, b in zip(alone[1], outcome["trained"], strict=True):
                np.testing.assert_array_equal(a, b, seeded.msg("the second fit, frozen"))
        else:
            said = outcome.get("refused", "")
            assert "'dense1.weight'" in said and "another thread" in said, seeded.msg(str(outcome))
            wxb.fit(models[1], X, ys[1], epochs=2, batch_size=16, seed=seed, verbose=False)


def test_blocks_a_streamed_generator_leaves_in_another_thread_end_without_error(seeded):
    """A generator holding ``with wxb.no_grad(), model.evaluating():`` stepped by a pool's
    threads (a server streaming a response: each next() on whichever worker is free) ends
    its blocks in another thread than it entered them: both raised KeyError naming a
    thread's number at the stream's end, and the entering thread kept the model in eval
    mode for good (a later training forward there ran with Dropout off). Now the blocks
    end as torch's no_grad does (no error; the ending thread gets the mode the block was
    entered from) and the entering thread's eval mode ends with its block."""
    from concurrent.futures import ThreadPoolExecutor

    from wxb.nn import Dropout

    rng = seeded.rng
    model = Sequential(Dense(4, 6, seed=int(rng.integers(1 << 20))), Dropout(0.5))
    model.train()
    chunks = [rng.normal(size=(int(rng.integers(1, 9)), 4)).astype(np.float32) for _ in range(3)]
    W, b = model[0].weight.data.astype(np.float64), model[0].bias.data.astype(np.float64)

    def stream():
        with wxb.no_grad(), model.evaluating():
            for x in chunks:
                yield x, model(x).data.copy(), model[1].training

    pools = [ThreadPoolExecutor(1) for _ in range(len(chunks) + 1)]
    try:
        steps = stream()
        first = pools[0].submit(next, steps).result()  # entered in pool 0's thread
        rest = [pool.submit(next, steps, None).result() for pool in pools[1:]]  # left in the last
        assert rest[-1] is None
        x, out, training = first
        assert not training  # inside its block, in the thread that entered it: eval mode
        # float32 products against float64's: a few roundings of |W||x| (Dropout off)
        np.testing.assert_allclose(out, x @ W.T + b, rtol=1e-5, atol=1e-5)
        after = [pool.submit(lambda: model[1].training).result() for pool in pools]
        assert all(after), seeded.msg(f"eval mode left on in the threads: {after}")
        assert pools[-1].submit(wxb.is_grad_enabled).result()  # (the mode it was entered from)
    finally:
        for pool in pools:
            pool.shutdown()
