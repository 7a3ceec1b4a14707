"""PyTorch's MNIST model, ``Sequential(Flatten(), Linear, ReLU, Linear)``, on the planned
stack: a Flatten that gives rows back as they are is left out of the plan (torch's
flatten returns its input then), and one in front makes images (N, 28, 28) rows. The
numbers are the layer-by-layer path's and torch's; a Flatten set to reshape rows since
takes the model off the plan."""

import numpy as np
import pytest

import wxb
from wxb import nn

torch = pytest.importorskip("torch")


def _twins(rng, dims, hidden, classes, middle_flatten=False):
    width = int(np.prod(dims))
    layers = [nn.Flatten(), nn.Dense(width, hidden), nn.ReLU()]
    theirs = [torch.nn.Flatten(), torch.nn.Linear(width, hidden), torch.nn.ReLU()]
    if middle_flatten:
        layers.append(nn.Flatten())
        theirs.append(torch.nn.Flatten())
    layers.append(nn.Dense(hidden, classes))
    theirs.append(torch.nn.Linear(hidden, classes))
    model = nn.Sequential(*layers).to("float64")
    twin = torch.nn.Sequential(*theirs).double()
    dense = [m for m in model if isinstance(m, nn.Dense)]
    linear = [m for m in twin if isinstance(m, torch.nn.Linear)]
    for a, b in zip(dense, linear, strict=True):
        a.weight.data[...] = rng.standard_normal(a.weight.shape) / np.sqrt(a.in_features)
        a.bias.data[...] = rng.standard_normal(a.bias.shape) * 0.1
        b.weight.data = torch.tensor(a.weight.data.copy())
        b.bias.data = torch.tensor(a.bias.data.copy())
    return model, twin, dense, linear


def _same_weights(dense, linear):
    for a, b in zip(dense, linear, strict=True):
        np.testing.assert_allclose(a.weight.data, b.weight.detach().numpy(), rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(a.bias.data, b.bias.detach().numpy(), rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("middle_flatten", [False, True])
def test_the_mnist_model_is_planned_and_trains_as_torchs(rng, middle_flatten):
    dims = tuple(int(d) for d in rng.integers(2, 5, size=int(rng.integers(1, 4))))
    hidden, classes = int(rng.integers(3, 9)), int(rng.integers(2, 5))
    model, twin, dense, linear = _twins(rng, dims, hidden, classes, middle_flatten)
    assert model.why_not_planned() is None
    rows, batch = int(rng.integers(8, 30)), int(rng.integers(2, 8))
    X = rng.standard_normal((rows, *dims))
    y = rng.integers(0, classes, rows)
    # the hand loop a PyTorch user writes, images in: planned nodes, torch's numbers
    mine = wxb.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    theirs = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.5)
    for start in range(0, rows, batch):
        part = slice(start, start + batch)
        mine.zero_grad()
        theirs.zero_grad()
        out = model(wxb.Tensor(X[part]))
        assert out.shape == (len(X[part]), classes)
        wxb.nn.functional.cross_entropy(out, wxb.Tensor(y[part])).backward()
        torch.nn.functional.cross_entropy(
            twin(torch.tensor(X[part])), torch.tensor(y[part])
        ).backward()
        for a, b in zip(dense, linear, strict=True):
            np.testing.assert_allclose(a.weight.grad, b.weight.grad.numpy(), rtol=1e-10, atol=1e-13)
        mine.step()
        theirs.step()
    _same_weights(dense, linear)
    # fit: the planned step (images in, as fit's flatten_rows hands them), torch's loop
    opt = torch.optim.Adam(twin.parameters(), lr=0.01)
    for start in range(0, rows, batch):
        part = slice(start, start + batch)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(
            twin(torch.tensor(X[part])), torch.tensor(y[part])
        ).backward()
        opt.step()
    adam = wxb.optim.Adam(model.parameters(), lr=0.01)
    wxb.fit(model, X, y, optimizer=adam, epochs=1, batch_size=batch, shuffle=False, verbose=0)
    _same_weights(dense, linear)
    # inference without a graph, images in
    with wxb.no_grad():
        got = model(wxb.Tensor(X)).data
    np.testing.assert_allclose(got, twin(torch.tensor(X)).detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(model.predict(X), got, rtol=1e-12, atol=1e-13)


def test_make_step_takes_images_and_equals_the_graph_step(rng):
    dims = (3, 4)
    model, _, dense, _ = _twins(rng, dims, 6, 3)
    other, _, other_dense, _ = _twins(rng, dims, 6, 3)
    for a, b in zip(dense, other_dense, strict=True):
        b.weight.data[...] = a.weight.data
        b.bias.data[...] = a.bias.data
    other.use_plan = False
    planned = wxb.make_step(model, "cross_entropy", wxb.optim.SGD(model.parameters(), lr=0.2))
    graph = wxb.make_step(other, "cross_entropy", wxb.optim.SGD(other.parameters(), lr=0.2))
    assert type(planned).__name__ == "PlannedStep"
    for _ in range(4):
        X = rng.standard_normal((int(rng.integers(1, 9)), *dims))
        y = rng.integers(0, 3, len(X))
        np.testing.assert_allclose(planned(X, y), graph(X, y), rtol=1e-12)
        for a, b in zip(dense, other_dense, strict=True):
            np.testing.assert_allclose(a.weight.data, b.weight.data, rtol=1e-12, atol=1e-14)


def test_a_flatten_set_to_reshape_rows_takes_the_model_off_the_plan(rng):
    model, twin, _, _ = _twins(rng, (5,), 4, 2, middle_flatten=True)
    X = rng.standard_normal((6, 5))
    with wxb.no_grad():
        model(wxb.Tensor(X))  # planned and run, with the Flatten left out
    assert model.why_not_planned() is None
    model[3].start_dim = 0  # (torch: Linear(4, 2) then gets 24 numbers in one row)
    assert "start_dim=0" in model.why_not_planned()
    twin[3].start_dim = 0
    with pytest.raises(RuntimeError):
        twin(torch.tensor(X))
    with pytest.raises(wxb.errors.ShapeError), wxb.no_grad():
        model(wxb.Tensor(X))
    model[3].start_dim = 1
    assert model.why_not_planned() is None
    with wxb.no_grad():
        got = model(wxb.Tensor(X)).data
    twin[3].start_dim = 1
    np.testing.assert_allclose(got, twin(torch.tensor(X)).detach().numpy(), rtol=1e-12)


def test_flatten_of_rows_is_its_input_as_torchs_and_both_paths_record_one_graph(rng):
    rows = int(rng.integers(1, 6))
    x = wxb.Tensor(rng.standard_normal((rows, 4)))
    t = torch.tensor(x.data)
    for start, end in ((1, -1), (-1, 1), (1, 1)):
        assert (nn.Flatten(start, end)(x) is x) == (torch.nn.Flatten(start, end)(t) is t)
    ops = []
    for use_plan in (True, False):
        model, _, _, _ = _twins(rng, (2, 3), 4, 2, middle_flatten=True)
        model.use_plan = use_plan
        out = model(wxb.Tensor(rng.standard_normal((rows, 2, 3))))
        ops.append([node.op for node in wxb.graph(out)])
    assert ops[0] == ops[1]


@pytest.mark.parametrize("how", ["view", "flatten", "reshape"])
def test_pytorchs_mnist_example_module_fits_images_as_torchs_loop(rng, how):
    """PyTorch's MNIST example: a Module of one's own whose forward starts with
    ``x.view(-1, 784)`` (or ``torch.flatten(x, 1)``, ``x.reshape(x.size(0), -1)``), no
    Flatten layer held; fit takes (N, 1, h, w) as torch's loop over the same batches."""
    dims = (1, int(rng.integers(2, 5)), int(rng.integers(2, 5)))
    width, hidden, classes = int(np.prod(dims)), int(rng.integers(3, 8)), 3

    def flat(x, lib):
        if how == "view":
            return x.view(-1, width)
        if how == "flatten":
            return lib.flatten(x, 1)
        return x.reshape(x.size(0), -1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(width, hidden), nn.Linear(hidden, classes)

        def forward(self, x):
            x = nn.functional.relu(self.fc1(flat(x, wxb)))
            return nn.functional.log_softmax(self.fc2(x), dim=1)

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(width, hidden)
            self.fc2 = torch.nn.Linear(hidden, classes)

        def forward(self, x):
            x = torch.nn.functional.relu(self.fc1(flat(x, torch)))
            return torch.nn.functional.log_softmax(self.fc2(x), dim=1)

    model, twin = Net().to("float64"), TorchNet().double()
    for a, b in ((model.fc1, twin.fc1), (model.fc2, twin.fc2)):
        a.weight.data[...] = rng.standard_normal(a.weight.shape) / np.sqrt(a.in_features)
        a.bias.data[...] = rng.standard_normal(a.bias.shape) * 0.1
        b.weight.data = torch.tensor(a.weight.data.copy())
        b.bias.data = torch.tensor(a.bias.data.copy())
    rows, batch = int(rng.integers(6, 20)), int(rng.integers(2, 6))
    X, y = rng.standard_normal((rows, *dims)), rng.integers(0, classes, rows)
    opt = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    for start in range(0, rows, batch):
        opt.zero_grad()
        part = slice(start, start + batch)
        out = twin(torch.tensor(X[part]))
        torch.nn.functional.nll_loss(out, torch.tensor(y[part])).backward()
        opt.step()
    mine = wxb.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    wxb.fit(model, X, y, loss="nll", optimizer=mine, epochs=1, batch_size=batch, shuffle=False,
            verbose=0)  # fmt: skip
    _same_weights([model.fc1, model.fc2], [twin.fc1, twin.fc2])
    np.testing.assert_allclose(
        model.predict(X), twin(torch.tensor(X)).detach().numpy(), rtol=1e-11, atol=1e-13
    )
    assert set(wxb.evaluate(model, X, y, loss="nll")) == {"loss", "accuracy"}


def test_a_flatten_a_user_changed_is_run_as_written_not_planned(rng):
    """A Flatten subclass with a forward of its own, or one with a forward hook, computes
    what its code says: the model leaves the plan, and its outputs and gradients are its
    code's (checked against the same code in torch)."""

    class Scaled(nn.Flatten):
        def forward(self, x):
            return super().forward(x) * 2.0

    class TorchScaled(torch.nn.Flatten):
        def forward(self, x):
            return super().forward(x) * 2.0

    X = rng.standard_normal((int(rng.integers(2, 7)), 2, 3))
    for hooked in (False, True):
        model, twin, dense, linear = _twins(rng, (2, 3), 4, 2)
        if hooked:
            model[0].register_forward_hook(lambda m, i, o: o * 2.0)
            twin[0].register_forward_hook(lambda m, i, o: o * 2.0)
        else:
            model.layers[0].__class__ = Scaled
            twin[0].__class__ = TorchScaled
        assert model.why_not_planned() is not None
        out = model(wxb.Tensor(X))
        expected = twin(torch.tensor(X))
        np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-12)
        out.sum().backward()
        expected.sum().backward()
        for a, b in zip(dense, linear, strict=True):
            np.testing.assert_allclose(a.weight.grad, b.weight.grad.numpy(), rtol=1e-11)
