"""Leftovers the hunts noticed: NumPy's spelling of max/min with a positional axis, and
the MPI timeout's words before training."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

import wxb
from wxb.distributed import Ranks, RanksStopped


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_take_numpys_positional_axis_with_keepdims(name, seeded):
    """t.max(0, keepdims=True) is NumPy's a.max(0, keepdims=True); it was refused with
    'give the axis once', though the axis was given once."""
    rng = seeded.rng
    shape = tuple(int(n) for n in rng.integers(2, 5, int(rng.integers(2, 4))))
    values = rng.standard_normal(shape)  # continuous: no ties
    axis = int(rng.integers(-len(shape), len(shape)))
    x = wxb.Tensor(values.copy(), requires_grad=True)
    found = getattr(x, name)(axis, keepdims=True)
    expected = getattr(np, name)(values, axis, keepdims=True)
    assert found.shape == expected.shape and np.array_equal(found.data, expected), seeded.msg("")
    weights = rng.standard_normal(expected.shape)
    (found * weights).sum().backward()
    t = torch.tensor(values, requires_grad=True)
    reduce = torch.amax if name == "max" else torch.amin
    (reduce(t, dim=axis, keepdim=True) * torch.tensor(weights)).sum().backward()
    assert np.allclose(x.grad, t.grad.numpy(), rtol=0, atol=1e-15), seeded.msg("")


def test_the_timeout_before_training_reads_once_where_it_was(seeded):
    """'… during the start at start' named the place twice; later places stay named."""
    ranks = Ranks.__new__(Ranks)  # no MPI job: a request that never completes
    never = types.SimpleNamespace(Testall=lambda requests: False)
    ranks.MPI = types.SimpleNamespace(Request=never)
    ranks.rank, ranks.size, ranks.timeout, ranks.where = 0, 2, 0.01, "start"
    with pytest.raises(RanksStopped) as stopped:
        ranks.wait([object()], "the start")
    assert "during the start (a rank died" in str(stopped.value), str(stopped.value)
    ranks.where = f"epoch {int(seeded.rng.integers(1, 9))}, step 3 of 7"
    with pytest.raises(RanksStopped) as stopped:
        ranks.wait([object()], "a sum")
    assert f"during a sum at {ranks.where} (" in str(stopped.value), str(stopped.value)
