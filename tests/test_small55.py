"""Small defects found beside other work, each beside PyTorch or NumPy: a big-endian
``p.data``, a read-only buffer, NumPy's moveaxis and ufuncs on tensors, a list of tensors
given to a layer, 0-d tensors as optimiser settings, ``state_dict``'s keywords, and
masked targets to ``score``."""

import warnings

import numpy as np
import pytest
import torch

import wxb
from wxb import nn
from wxb.errors import DataError
from wxb.sklearn import MLPClassifier, MLPRegressor


def test_big_endian_weight_data_trains_as_the_native_one(seeded):
    """``dense.weight.data = W.astype('>f8')`` (as read from a file) gave "X is float64
    but W is >f8" at the next call; it is taken in the machine's order, as Tensor() takes it."""
    rng = seeded.rng
    W, b, X = rng.standard_normal((2, 3)), rng.standard_normal(2), rng.standard_normal((4, 3))
    layer = nn.Linear(3, 2, dtype="float64")
    layer.weight.data = W.astype(">f8")
    layer.bias.data = b.astype(">f8")
    assert layer.weight.dtype == np.float64 and layer.weight.data.dtype.isnative
    out = layer(wxb.tensor(X))
    np.testing.assert_allclose(out.data, X @ W.T + b, rtol=1e-12, err_msg=seeded.msg("Z"))


def test_read_only_running_mean_is_copied_and_updated_as_torchs(seeded):
    """A buffer set to read-only memory (np.broadcast_to, a memmap opened "r") raised
    NumPy's "assignment destination is read-only" at the first training call."""
    rng = seeded.rng
    X = rng.standard_normal((6, 3))
    start = rng.standard_normal()
    read_only = np.broadcast_to(np.float64(start), (3,))
    ours = nn.BatchNorm1d(3, dtype="float64")
    ours.running_mean = read_only
    theirs = torch.nn.BatchNorm1d(3, dtype=torch.float64)
    theirs.running_mean = torch.full((3,), start, dtype=torch.float64)
    ours(wxb.tensor(X))
    theirs(torch.tensor(X))
    np.testing.assert_allclose(
        ours.running_mean, theirs.running_mean.numpy(), rtol=1e-12, err_msg=seeded.msg("mean")
    )
    assert np.all(read_only == start)  # the caller's memory untouched


def test_numpy_moveaxis_and_transpose_keep_the_graph(seeded):
    """``np.moveaxis(t, 0, 1)`` raised "<lambda>() missing ... 'dim1'" (NumPy called
    torch's two-dim t.transpose); it and np.transpose(t, axes) run as wxb ops."""
    A = seeded.rng.standard_normal((2, 3, 4))
    G = seeded.rng.standard_normal((3, 4, 2))
    ours, theirs = wxb.tensor(A, requires_grad=True), torch.tensor(A, requires_grad=True)
    moved = np.moveaxis(ours, 0, -1)
    np.testing.assert_array_equal(moved.data, np.moveaxis(A, 0, -1))
    (moved * G).sum().backward()
    (torch.movedim(theirs, 0, -1) * torch.tensor(G)).sum().backward()
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), err_msg=seeded.msg("grad"))
    np.testing.assert_array_equal(np.transpose(ours, (1, 0, 2)).data, A.transpose(1, 0, 2))
    np.testing.assert_array_equal(np.transpose(ours).data, A.T)


def test_a_list_of_tensors_to_a_layer_is_refused_in_one_line():
    """``model([wxb.tensor(r) for r in X])`` raised "'list' object has no attribute
    'dtype'"; torch's layers refuse the list too: refused, naming wxb.stack."""
    rows = [wxb.tensor(np.ones(3, np.float32)) for _ in range(4)]
    with pytest.raises(DataError, match=r"(Dense|Linear) input: a list of 4 Tensors.*wxb\.stack"):
        nn.Sequential(nn.Linear(3, 2))(rows)
    assert nn.Linear(3, 2)(wxb.stack(rows)).shape == (4, 2)


def test_numpy_ufuncs_on_tensors_without_gradients_run_as_torchs(seeded):
    """``x += t`` (x an array) and ``np.tanh(t)`` were refused as cutting the graph
    though t needs no gradient; as torch's, they give values (np.tanh a tensor), and are
    refused only where a tensor requires grad."""
    A, B = seeded.rng.standard_normal((2, 3)), seeded.rng.standard_normal((2, 3))
    x = A.copy()
    x += wxb.tensor(B)
    np.testing.assert_allclose(x, A + B, err_msg=seeded.msg("x += t"))
    y = np.tanh(wxb.tensor(B))
    assert isinstance(y, wxb.Tensor)  # (torch's np.tanh(t) gives a torch tensor)
    np.testing.assert_allclose(y.data, np.tanh(B), err_msg=seeded.msg("tanh"))
    graph = wxb.tensor(B, requires_grad=True)
    with pytest.raises(TypeError, match=r"np\.tanh on a wxb Tensor that requires grad"):
        np.tanh(graph)
    with pytest.raises(TypeError, match=r"x = x \+ t keeps it"):
        x += graph
    with pytest.raises(RuntimeError):  # (torch's refuses it as well)
        np.tanh(torch.tensor(B, requires_grad=True))


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_zero_d_tensor_lr_steps_as_torchs(seeded, name):
    """PyTorch takes ``lr=torch.tensor(0.05)``; wxb said "lr must be a number". A 0-d
    tensor (torch's, wxb's) or array is taken as its value."""
    rng = seeded.rng
    W = rng.standard_normal((3, 2))
    settings = {"momentum": 0.9} if name == "SGD" else {}
    theirs = torch.nn.Parameter(torch.tensor(W))
    ours = nn.Parameter(W.copy())
    rate = [torch.tensor(0.05), wxb.tensor(0.05), np.array(0.05)][rng.integers(3)]
    # torch's own lr=torch.tensor(0.05) steps as this float (its first tensor lr costs ~2 s)
    torch_opt = getattr(torch.optim, name)([theirs], lr=float(np.float32(0.05)), **settings)
    our_opt = getattr(wxb.optim, name)([ours], lr=rate, **settings)
    for _ in range(3):
        G = rng.standard_normal((3, 2))
        theirs.grad, ours.grad = torch.tensor(G), G.copy()
        torch_opt.step()
        our_opt.step()
    np.testing.assert_allclose(
        ours.data, theirs.detach().numpy(), rtol=1e-6, atol=1e-7, err_msg=seeded.msg(name)
    )


def test_step_lr_takes_a_0d_tensor_epoch_as_torchs():
    ours = wxb.optim.StepLR(wxb.optim.SGD([nn.Parameter(np.zeros(1))], lr=0.1), 2)
    their_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    theirs = torch.optim.lr_scheduler.StepLR(their_opt, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch's step(epoch) is deprecated)
        theirs.step(torch.tensor(5))
    assert ours.step(torch.tensor(5)) == pytest.approx(float(theirs.get_last_lr()[0]))


def test_state_dict_takes_torchs_keywords():
    """``state_dict(keep_vars=True)`` (and prefix, destination) was a bare TypeError."""
    ours = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    copies = ours.state_dict()
    weight = next(iter(copies))  # (its layers' names are wxb's)
    mean = next(name for name in copies if name.endswith("running_mean"))
    kept = ours.state_dict(keep_vars=True)
    assert list(kept) == list(copies)
    assert kept[weight] is ours[0].weight and isinstance(kept[weight], nn.Parameter)
    kept[mean][:] = 7.0  # the module's own buffer, as torch's
    assert np.all(ours[1].running_mean == 7.0)
    copies[weight][:] = 0.0  # without keep_vars a copy: the model is untouched
    assert np.all(ours[0].weight.data != 0.0)
    filled: dict = {"other": 1}
    assert ours.state_dict(destination=filled, prefix="net.") is filled
    assert list(filled) == ["other", *(f"net.{name}" for name in copies)]


@pytest.mark.parametrize("estimator", [MLPRegressor, MLPClassifier])
def test_score_refuses_masked_targets_and_weights(seeded, estimator):
    """``score(X, y_masked)`` read the values under the mask (fit refuses them)."""
    rng = seeded.rng
    X = rng.standard_normal((12, 3))
    y = rng.standard_normal(12) if estimator is MLPRegressor else np.arange(12) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (no convergence in 2 iterations)
        model = estimator(hidden_layer_sizes=(4,), max_iter=2).fit(X, y)
    hidden = np.zeros(12, bool)
    hidden[rng.integers(12)] = True
    with pytest.raises(DataError, match=r"^y: a masked array with 1 masked entry"):
        model.score(X, np.ma.masked_array(y, mask=hidden))
    with pytest.raises(DataError, match=r"^sample_weight: a masked array"):
        model.score(X, y, sample_weight=np.ma.masked_array(np.ones(12), mask=hidden))
    assert np.isfinite(model.score(X, np.ma.masked_array(y, mask=np.zeros(12, bool))))
