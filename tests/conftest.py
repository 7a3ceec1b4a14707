import numpy as np
import pytest


@pytest.fixture
def rng(request):
    """A generator seeded freshly each run; the seed is printed when a test fails."""
    seed = np.random.SeedSequence().entropy
    request.node.user_properties.append(("seed", seed))
    print(f"random seed: {seed}")
    return np.random.default_rng(seed)
