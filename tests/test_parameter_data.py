"""``p.data = t`` with a tensor, PyTorch's idiom: the parameter takes the tensor's array."""

import numpy as np
import pytest

import wxb
from wxb import nn


def test_a_tensor_assigned_as_data_gives_its_array(rng):
    torch = pytest.importorskip("torch")
    from wxb.interop import to_torch

    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    new = rng.normal(size=(4, 3)).astype(np.float32)
    model[0].weight.data = wxb.Tensor(new, requires_grad=True)  # as torch: p.data = t
    assert type(model[0].weight.data) is np.ndarray
    np.testing.assert_array_equal(model[0].weight.data, new)
    reference = to_torch(model)
    X = rng.normal(size=(5, 3)).astype(np.float32)
    y = rng.integers(0, 2, size=5)
    optimizer = wxb.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    torch_optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        optimizer.zero_grad()
        output = model(X)
        assert type(output.data) is np.ndarray  # a Tensor nested in .data made it one
        loss = nn.CrossEntropyLoss()(output, y)
        loss.backward()
        optimizer.step()  # failed: the flat buffer cannot take a Tensor's memory
        torch_optimizer.zero_grad()
        torch_loss = torch.nn.functional.cross_entropy(
            reference(torch.from_numpy(X)), torch.from_numpy(y)
        )
        torch_loss.backward()
        torch_optimizer.step()
        assert loss.item() == pytest.approx(torch_loss.item(), rel=1e-5)
    for ours, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_data_from_another_parameter_and_a_state_dict_round_trip(rng):
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    b.weight.data = a.weight  # a Parameter is a tensor too
    assert type(b.weight.data) is np.ndarray
    np.testing.assert_array_equal(b.weight.data, a.weight.data)
    b.load_state_dict(a.state_dict())
    X = rng.normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_array_equal(b(X).data, a(X).data)
