"""One seed drives initialisation, shuffling and dropout.

``wxb.manual_seed(s)`` resets the generator that layers and ``fit`` draw from
when they are not given a seed of their own, as ``torch.manual_seed`` does.
Inside ``drawing_from(generator)`` this thread draws from that generator instead:
``fit(seed=…)`` uses it so Dropout's masks follow the run's own seed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

_generator = np.random.default_rng()
_thread = threading.local()  # per thread: the generator drawing_from() put in place


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed wxb's default generator and return it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A generator from a seed, an existing generator, or wxb's default one."""
    if seed is None:
        local = getattr(_thread, "generator", None)
        return local if local is not None else _generator
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


@contextmanager
def drawing_from(generator: np.random.Generator) -> Iterator[np.random.Generator]:
    """Draws that would come from the default generator come from ``generator``, in
    this thread only, inside the block."""
    previous = getattr(_thread, "generator", None)
    _thread.generator = generator
    try:
        yield generator
    finally:
        _thread.generator = previous
