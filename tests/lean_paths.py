"""What the lean-stack tests share: the lean stacks switched off, the batches, and the
bit-for-bit comparison of two runs (losses, gradients after each step, final weights)."""

from contextlib import contextmanager
from unittest import mock

import numpy as np

from wxb.nn.plan import LeanStack


@contextmanager
def lean_stacks_off():
    """Within the block no plan builds a lean stack: its own forward and backward run."""
    with mock.patch.object(LeanStack, "build", classmethod(lambda cls, plan, X: None)):
        yield


def batches_for(rng, n, classes, dtype, sizes):
    """One (X, class indices) batch of each size, X of ``n`` features."""
    return [
        (rng.normal(size=(size, n)).astype(dtype), rng.integers(0, classes, size=size))
        for size in sizes
    ]


def assert_identical(lean_run, plan_run):
    """(losses, gradients per step, final weights, …) of two runs, bit for bit: the
    same operations on the same operands."""
    assert lean_run[0] == plan_run[0]
    for lean_grads, plan_grads in zip(lean_run[1], plan_run[1], strict=True):
        for a, b in zip(lean_grads, plan_grads, strict=True):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_array_equal(a, b)
    for a, b in zip(lean_run[2], plan_run[2], strict=True):
        np.testing.assert_array_equal(a, b)
