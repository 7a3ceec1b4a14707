"""LayerNorm and BatchNorm1d at their edges, against PyTorch 2.13: each test here failed
before its fix (fresh random draws on each run; ``WXB_TEST_SEED`` replays one)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import wxb
import wxb.nn.functional as F
from wxb.errors import ConfigError
from wxb.nn import BatchNorm1d, Dense, Sequential


def test_batch_norm_with_eps_0_is_refused_where_it_normalises_by_the_batch(rng):
    # a constant channel with eps 0 is 0/0: PyTorch refuses eps 0 in training mode (its
    # eval mode takes it); wxb gave NaN for the channel, with a RuntimeWarning at most
    width = int(rng.integers(2, 6))
    X = rng.normal(size=(int(rng.integers(3, 9)), width))
    X[:, int(rng.integers(width))] = rng.normal()
    mine, twin = (
        BatchNorm1d(width, eps=0, dtype="float64"),
        torch.nn.BatchNorm1d(width, eps=0, dtype=torch.float64),
    )
    with pytest.raises(ValueError, match="eps"):
        twin(torch.tensor(X))
    with pytest.raises(ConfigError, match="eps"):
        mine(X)
    assert int(mine.num_batches_tracked) == 0  # a refused batch changes nothing
    assert np.array_equal(mine.running_mean, np.zeros(width))
    with pytest.raises(ConfigError, match="eps"):
        F.batch_norm(wxb.Tensor(X), None, None, training=True, eps=0.0)
    with pytest.raises(ConfigError, match="eps"):
        BatchNorm1d(width, eps=0, track_running_stats=False).eval()(X.astype(np.float32))
    model = Sequential(Dense(width, 3, seed=rng), BatchNorm1d(3, eps=0))
    with pytest.raises(ConfigError, match="eps"):
        wxb.fit(model, X, rng.normal(size=(len(X), 3)), loss="mse", epochs=1, verbose=False)
    # eval mode, by running statistics: as PyTorch's
    stats = rng.normal(size=width), rng.uniform(0.5, 2, size=width)
    for module in (mine, twin):
        module.eval()
        module.load_state_dict(
            {
                "weight": torch.ones(width, dtype=torch.float64),
                "bias": torch.zeros(width, dtype=torch.float64),
                "running_mean": torch.tensor(stats[0]),
                "running_var": torch.tensor(stats[1]),
                "num_batches_tracked": torch.tensor(3),
            }
        )
    assert np.allclose(mine(X).data, twin(torch.tensor(X)).detach().numpy(), atol=1e-12)
