"""Interleaved timing for a shared, noisy machine.

Every contender is warmed up, then given an ``inner`` count of consecutive calls that
last at least a target time. Each round gives every contender a turn of ``inner``
timed calls (the first contender rotates from round to round), so a slow spell of
the machine hits all of them alike; a contender's figure is the median over rounds
of its per-call time.

Before each turn the timer pauses ``SETTLE_S`` and makes one untimed call. Thread
pools spin after a call before they sleep: OpenBLAS's workers for 2²⁸ cycles (about
0.1 s), libgomp's (PyTorch's) for milliseconds. Without the pause, the contender
before takes cores from the one after: interleaved straight after NumPy, PyTorch's
small steps ran twice as slowly as on their own.

Before timing starts the heap is collected and frozen (``quiet_heap``): with PyTorch,
scikit-learn and JAX loaded it holds ~400,000 objects, and a full garbage collection
(~0.2 s) landing inside one contender's turn, or inside one of a few whole fits, was
seen to double wxb's digits figure.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

SETTLE_S = 0.15  # longer than the thread pools' spin before they sleep


@dataclass(frozen=True)
class Plan:
    """How much to time: rounds, the least time one contender's turn lasts, warm-up calls."""

    rounds: int
    turn_s: float
    warmup_calls: int


@dataclass
class Timing:
    """Per-call seconds of each round, with the count of calls a turn timed."""

    inner: int
    per_call_s: list[float]
    last_result: object = None  # what the last call returned (a loss, for training steps)

    @property
    def median_s(self) -> float:
        return statistics.median(self.per_call_s)

    def to_dict(self) -> dict[str, object]:
        return {"inner": self.inner, "median_s": self.median_s, "per_round_s": self.per_call_s}


def quiet_heap() -> None:
    """Collect the garbage now and set the survivors aside from later collections
    (``gc.freeze``), so a collection during a timed call scans only what it made."""
    gc.collect()
    gc.freeze()


def calls_per_turn(fn: Callable[[], object], turn_s: float) -> int:
    """Consecutive calls of ``fn`` that take at least ``turn_s``."""
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < turn_s:
        fn()
        calls += 1
    return max(1, math.ceil(turn_s * calls / elapsed))


def interleave(contenders: dict[str, Callable[[], object]], plan: Plan) -> dict[str, Timing]:
    """Time every contender over ``plan.rounds`` interleaved rounds, after warm-up."""
    quiet_heap()
    timings = {}
    for name, fn in contenders.items():
        time.sleep(SETTLE_S)
        for _ in range(plan.warmup_calls):
            fn()
        timings[name] = Timing(calls_per_turn(fn, plan.turn_s), [])
    names = list(contenders)
    for round_index in range(plan.rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            fn, timing = contenders[name], timings[name]
            time.sleep(SETTLE_S)  # the previous contender's threads stop spinning
            fn()  # and this one's wake up
            start = time.perf_counter()
            for _ in range(timing.inner):
                result = fn()
            timing.per_call_s.append((time.perf_counter() - start) / timing.inner)
            timing.last_result = result
    return timings


def repeat_calls(fn: Callable[[], object], repeats: int, warmup_calls: int) -> list[float]:
    """Seconds of each of ``repeats`` single calls, after warm-up (for long calls)."""
    quiet_heap()
    for _ in range(warmup_calls):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times
