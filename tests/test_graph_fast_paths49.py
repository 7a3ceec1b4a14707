"""The recorded graph's fast paths for PyTorch's MNIST hand loop (a custom forward,
F.log_softmax then F.nll_loss): each gives the general path's numbers, and the calls it
must not take go the general way with torch's numbers. Inputs are drawn fresh each run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import wxb
from wxb import ops
from wxb.nn import functional as F


def _log_probs(rng, rows, classes, dtype):
    """log softmax of logits drawn at two scales (torch's, in float64), as ``dtype``."""
    z = torch.tensor(rng.normal(size=(rows, classes)) * float(rng.choice([1.0, 30.0])))
    return torch.log_softmax(z, dim=1).numpy().astype(dtype)


def _ours_and_torchs(a, y, **options):
    ours, theirs = wxb.Tensor(a.copy(), requires_grad=True), torch.tensor(a, requires_grad=True)
    loss = F.nll_loss(ours, y, **options)
    t_options = dict(options)
    if "weight" in t_options:
        t_options["weight"] = torch.tensor(t_options["weight"], dtype=theirs.dtype)
    t_loss = TF.nll_loss(theirs, torch.tensor(y), **t_options)
    loss.backward()
    t_loss.backward()
    return loss, ours.grad, t_loss.detach().numpy(), theirs.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_plain_nll_loss_skips_the_weight_arrays_and_keeps_every_bit(
    rng, monkeypatch, dtype, reduction
):
    rows, classes = int(rng.integers(1, 130)), int(rng.integers(2, 12))
    a = _log_probs(rng, rows, classes, dtype)
    y = rng.integers(0, classes, rows)
    # the general path with weights of 1: the numbers the fast path must give, bit for bit
    general = wxb.Tensor(a.copy(), requires_grad=True)
    ones = np.ones(classes)
    expected = F.nll_loss(general, y, reduction, weight=ones)
    expected.backward()

    def refused(*args):
        raise AssertionError("the plain call built the weight arrays")

    monkeypatch.setattr(ops.NLLKernel, "_row_weights", refused)
    labels = wxb.Tensor(y)  # float32 labels, as wxb.Tensor(y) holds them
    loss, grad, t_value, t_grad = _ours_and_torchs(
        a, labels.data.astype(np.int64), reduction=reduction
    )
    ours = wxb.Tensor(a.copy(), requires_grad=True)
    again = F.nll_loss(ours, labels, reduction)
    again.backward()
    assert loss.dtype == dtype and loss.shape == ()
    np.testing.assert_array_equal(loss.data, expected.data)
    np.testing.assert_array_equal(again.data, expected.data)
    np.testing.assert_array_equal(grad, general.grad)
    np.testing.assert_array_equal(ours.grad, general.grad)
    # torch sums the picked values in its own order: float32's rounding of a sum of
    # `rows` terms of size |a| at most, and the mean's one division
    eps = np.finfo(dtype).eps
    bound = eps * rows * np.abs(a[np.arange(rows), y]).sum() + eps * abs(float(t_value))
    assert abs(float(loss.data) - float(t_value)) <= bound
    np.testing.assert_array_equal(grad, t_grad.astype(dtype))


def test_weighted_nll_loss_goes_the_general_way_with_torchs_numbers(rng):
    rows, classes = int(rng.integers(2, 40)), int(rng.integers(2, 8))
    a = _log_probs(rng, rows, classes, np.float64)
    y = rng.integers(0, classes, rows)
    weight = rng.uniform(0.1, 3.0, classes)
    weight[y[0]] = 7.5  # a row's weight far from 1: the unweighted mean cannot match
    for reduction in ("mean", "sum"):
        loss, grad, t_value, t_grad = _ours_and_torchs(a, y, weight=weight, reduction=reduction)
        np.testing.assert_allclose(loss.data, t_value, rtol=1e-12)
        np.testing.assert_allclose(grad, t_grad, rtol=1e-12, atol=0)


@pytest.mark.parametrize("ignored", ["-100", "a class"])
def test_ignored_rows_go_the_general_way_with_torchs_numbers(rng, ignored):
    rows, classes = int(rng.integers(2, 40)), int(rng.integers(2, 8))
    a = _log_probs(rng, rows, classes, np.float64)
    y = rng.integers(0, classes, rows)
    index = -100 if ignored == "-100" else int(y[0])
    y[0] = index  # at least one row ignored, at least one kept
    y[1] = (index + 1) % classes if index >= 0 else y[1]
    for reduction in ("mean", "sum"):
        loss, grad, t_value, t_grad = _ours_and_torchs(
            a, y, ignore_index=index, reduction=reduction
        )
        np.testing.assert_allclose(loss.data, t_value, rtol=1e-12)
        np.testing.assert_allclose(grad, t_grad, rtol=1e-12, atol=0)
        assert not grad[y == index].any()


def test_an_empty_batch_through_the_kernel_is_torchs_nan(rng):
    # fit's steps call the kernel itself: a mean over no rows is NaN (torch's), not 1/0
    classes = int(rng.integers(2, 8))
    output = np.empty((0, classes), np.float32)
    grad = np.empty_like(output)
    value = ops.NLLKernel("mean").value_and_grad(output, np.empty(0, np.int64), grad)
    t_value = TF.nll_loss(torch.empty((0, classes)), torch.empty(0, dtype=torch.int64))
    assert np.isnan(value) and torch.isnan(t_value)
