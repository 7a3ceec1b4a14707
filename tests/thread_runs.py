"""Helpers of the thread tests (test_threads52, 52b, 53, 54): threads started and joined
with a deadline (a hang fails the test, its threads left as daemons), an error raised in
a thread kept for the test to show, a wait for a condition, and what the weight guard
(``WEIGHTS``, tensor.py's, read here as nn.module exports it, as before it moved) says
of a writer."""

import threading
import time

from wxb.nn import module as module_mod

SECONDS = 60  # a thread still alive then hangs (each run here takes well under a second)


def guarded(target, errors: list) -> threading.Thread:
    """A thread running ``target``; an error raised there goes into ``errors`` (an
    assertion failing in a thread would be lost)."""

    def run():
        try:
            target()
        except Exception as error:
            errors.append(repr(error))

    return threading.Thread(target=run)


def join_all(threads: list[threading.Thread], errors: list, seconds: float = SECONDS) -> None:
    """Start ``threads``, join them by one deadline, and fail on a hang or an error."""
    for t in threads:
        t.daemon = True  # (a hung one must not hold the test run's exit)
        t.start()
    deadline = time.monotonic() + seconds
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), f"a thread hung; errors so far: {errors[:3]}"
    assert not errors, errors[:3]


def until(condition, seconds: float = SECONDS, what: str = "the other thread never came") -> None:
    """Wait until ``condition()`` holds; fail with ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.001)


def writer_waiting() -> bool:
    """Whether a writer waits for its turn (the guard's count; an old guard without one,
    or a write that found no reader and went ahead, is seen only once it has written)."""
    return getattr(module_mod.WEIGHTS, "waiting", 0) > 0


def weights(model) -> list:
    """Copies of the model's parameter values, in ``parameters()`` order."""
    return [p.data.copy() for p in model.parameters()]
