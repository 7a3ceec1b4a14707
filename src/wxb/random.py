"""One seed drives initialisation, shuffling and dropout.

``wxb.manual_seed(s)`` resets the generator that layers and ``fit`` draw from
when they are not given a seed of their own, as ``torch.manual_seed`` does.
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed wxb's default generator and return it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A generator from a seed, an existing generator, or wxb's default one."""
    if seed is None:
        return _generator
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)
