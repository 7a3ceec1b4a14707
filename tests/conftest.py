"""Fresh random draws on every run, with the seed printed so a failure can be replayed."""

import os

import numpy as np
import pytest


class Seeded:
    """A generator built from a fresh seed, and the message that replays it.

    ``WXB_TEST_SEED=<seed>`` replays a run.
    """

    def __init__(self) -> None:
        replay = os.environ.get("WXB_TEST_SEED")
        self.seed = int(replay) if replay else np.random.SeedSequence().entropy
        self.rng = np.random.default_rng(self.seed)

    def msg(self, what: str) -> str:
        return f"{what} (seed {self.seed}; replay with WXB_TEST_SEED={self.seed})"


@pytest.fixture
def seeded() -> Seeded:
    s = Seeded()
    print(f"random seed: {s.seed}")
    return s


@pytest.fixture
def rng(seeded: Seeded) -> np.random.Generator:
    return seeded.rng
