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


# -- ∂L/∂W and ∂L/∂b written straight into the optimiser's flat buffer ------------------


class _Net(wxb.nn.Module):
    """PyTorch's MNIST example's module of one's own, at a size drawn per test."""

    def __init__(self, sizes):
        super().__init__()
        self.fc1 = wxb.nn.Linear(sizes[0], sizes[1])
        self.fc2 = wxb.nn.Linear(sizes[1], sizes[2])

    def forward(self, x):
        x = x.view(-1, self.fc1.weight.shape[1])
        return F.log_softmax(self.fc2(F.relu(self.fc1(x))), dim=1)


class _TorchNet(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.fc1 = torch.nn.Linear(*reversed(net.fc1.weight.shape))
        self.fc2 = torch.nn.Linear(*reversed(net.fc2.weight.shape))
        with torch.no_grad():
            for name, p in self.named_parameters():
                p.copy_(torch.from_numpy(np.array(net.state_dict()[name])))

    def forward(self, x):
        x = x.view(-1, self.fc1.weight.shape[1])
        return TF.log_softmax(self.fc2(torch.relu(self.fc1(x))), dim=1)


def _draw(rng):
    sizes = (int(rng.integers(3, 40)), int(rng.integers(2, 30)), int(rng.integers(2, 9)))
    rows = int(rng.integers(1, 70))
    X = rng.normal(size=(rows, 1, sizes[0])).astype(np.float32)
    return sizes, X, rng.integers(0, sizes[2], rows)


def _grads(model):
    return {name: np.array(p.grad) for name, p in model.named_parameters()}


def _close_to_torch(ours, theirs, what):
    # float32 sums of at most a few dozen products of O(1) terms, in another order
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(
            np.asarray(ours[name]), p.grad.numpy(), rtol=2e-5, atol=2e-6, err_msg=f"{what} {name}"
        )


@pytest.mark.parametrize("make", ["SGD", "Adam"])
def test_the_hand_loop_writes_gradients_into_the_optimisers_buffer(rng, make):
    sizes, X, y = _draw(rng)
    model = _Net(sizes)
    twin = _TorchNet(model)
    bare = _Net(sizes)  # no optimiser: each gradient an array of its own, as before
    bare.load_state_dict(model.state_dict())
    options = {"momentum": 0.9} if make == "SGD" else {}
    opt = getattr(wxb.optim, make)(model.parameters(), lr=0.01, **options)
    t_opt = getattr(torch.optim, make)(twin.parameters(), lr=0.01, **options)
    for _ in range(3):
        opt.zero_grad()
        t_opt.zero_grad()
        bare.zero_grad()
        F.nll_loss(model(wxb.Tensor(X)), y).backward()
        F.nll_loss(bare(wxb.Tensor(X)), y).backward()
        TF.nll_loss(twin(torch.from_numpy(X)), torch.from_numpy(y)).backward()
        for p in model.parameters():  # where the step reads it: nothing to copy
            assert p.grad is p.grad_buffer
        for (name, got), want in zip(_grads(model).items(), _grads(bare).values(), strict=True):
            np.testing.assert_array_equal(got, want, err_msg=name)  # the same products
        _close_to_torch(_grads(model), twin, "step")
        opt.step()
        t_opt.step()
        bare.load_state_dict(model.state_dict())
    for name, p in twin.named_parameters():
        np.testing.assert_allclose(model.state_dict()[name], p.detach().numpy(), atol=1e-5)


def test_a_second_backward_adds_to_the_gradient_in_the_buffer(rng):
    sizes, X, y = _draw(rng)
    model = _Net(sizes)
    twin = _TorchNet(model)
    wxb.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):  # no zero_grad between them: the gradients accumulate, as torch's
        F.nll_loss(model(wxb.Tensor(X)), y).backward()
        TF.nll_loss(twin(torch.from_numpy(X)), torch.from_numpy(y)).backward()
    _close_to_torch(_grads(model), twin, "accumulated")
    loss = F.nll_loss(model(wxb.Tensor(X)), y)
    t_loss = TF.nll_loss(twin(torch.from_numpy(X)), torch.from_numpy(y))
    loss.backward(retain_graph=True)
    loss.backward()
    t_loss.backward(retain_graph=True)
    t_loss.backward()
    _close_to_torch(_grads(model), twin, "retained")


def test_a_gradient_kept_from_an_earlier_step_is_not_written_over(rng):
    sizes, X, y = _draw(rng)
    model = _Net(sizes)
    opt = wxb.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    F.nll_loss(model(wxb.Tensor(X)), y).backward()
    kept = [p.grad for p in model.parameters()]  # views of the optimiser's buffer
    before = [k.copy() for k in kept]
    opt.step()
    opt.zero_grad()
    X2 = rng.normal(size=X.shape).astype(np.float32)
    F.nll_loss(model(wxb.Tensor(X2)), y).backward()
    for k, b in zip(kept, before, strict=True):
        np.testing.assert_array_equal(k, b)
    assert not any(
        np.shares_memory(p.grad, k) for p, k in zip(model.parameters(), kept, strict=True)
    )


def test_a_layer_applied_twice_gets_both_shares(rng):
    n = int(rng.integers(2, 20))
    layer = wxb.nn.Linear(n, n)
    t_layer = torch.nn.Linear(n, n)
    with torch.no_grad():
        t_layer.weight.copy_(torch.from_numpy(np.array(layer.weight.data)))
        t_layer.bias.copy_(torch.from_numpy(np.array(layer.bias.data)))
    wxb.optim.SGD(layer.parameters(), lr=0.1)
    X = rng.normal(size=(int(rng.integers(1, 30)), n)).astype(np.float32)
    (layer(F.relu(layer(wxb.Tensor(X)))) ** 2).sum().backward()
    (t_layer(torch.relu(t_layer(torch.from_numpy(X)))) ** 2).sum().backward()
    scale = float(np.abs(t_layer.weight.grad.numpy()).max()) + 1
    np.testing.assert_allclose(layer.weight.grad, t_layer.weight.grad.numpy(), atol=1e-5 * scale)
    np.testing.assert_allclose(layer.bias.grad, t_layer.bias.grad.numpy(), atol=1e-5 * scale)


class _Mixed(wxb.nn.Module):
    """A planned Sequential inside a module of one's own, before a Linear of its own."""

    def __init__(self, sizes):
        super().__init__()
        self.body = wxb.nn.Sequential(wxb.nn.Linear(sizes[0], sizes[1]), wxb.nn.ReLU())
        self.head = wxb.nn.Linear(sizes[1], sizes[2])

    def forward(self, x):
        return F.log_softmax(self.head(self.body(x)), dim=1)


def test_a_planned_stack_inside_the_graph_keeps_the_one_buffer(rng):
    sizes, X, y = _draw(rng)
    X = X.reshape(len(X), -1)
    model = _Mixed(sizes)
    twin = torch.nn.Sequential(
        torch.nn.Linear(sizes[0], sizes[1]), torch.nn.ReLU(), torch.nn.Linear(sizes[1], sizes[2])
    )
    with torch.no_grad():
        for mine, p in zip(model.parameters(), twin.parameters(), strict=True):
            p.copy_(torch.from_numpy(np.array(mine.data)))
    opt = wxb.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    t_opt = torch.optim.SGD(twin.parameters(), lr=0.05, momentum=0.9)
    buffers = set()
    for _ in range(3):
        opt.zero_grad()
        t_opt.zero_grad()
        F.nll_loss(model(wxb.Tensor(X)), y).backward()
        TF.nll_loss(
            TF.log_softmax(twin(torch.from_numpy(X)), dim=1), torch.from_numpy(y)
        ).backward()
        for mine, p in zip(model.parameters(), twin.parameters(), strict=True):
            assert mine.grad is mine.grad_buffer  # the head's rules and the plan's, in place
            np.testing.assert_allclose(mine.grad, p.grad.numpy(), rtol=2e-5, atol=2e-6)
        buffers.add(id(opt.flat.grad))  # the walk's own claims are no user's holding it
        opt.step()
        t_opt.step()
    assert len(buffers) == 1
