"""LayerNorm and BatchNorm1d at their edges, against PyTorch 2.13: each test here failed
before its fix (fresh random draws on each run; ``WXB_TEST_SEED`` replays one)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import wxb
import wxb.nn.functional as F
from wxb import interop
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
    model = Sequential(Dense(width, 3, seed=rng), BatchNorm1d(3, eps=0)).double()
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


def test_onnx_layer_norm_of_float32_rows_with_a_large_offset_runs_as_predict(tmp_path, rng):
    # 1e4 + noise of 1e-2: the export took μ and σ² in float32 and came out ~15% off
    # PyTorch's float64 (the reference); wxb's predict takes them in float64, to 1e-7
    ort = pytest.importorskip("onnxruntime")
    from wxb import onnx as wxb_onnx

    width = int(rng.integers(3, 9))
    model = Sequential(wxb.nn.LayerNorm(width), Dense(width, 2, seed=rng))
    for p in model[0].parameters():
        p.data[...] = rng.normal(1, 0.5, size=p.shape)
    X = (1e4 + rng.normal(size=(64, width)) * 1e-2).astype(np.float32)
    twin = torch.nn.LayerNorm(width, dtype=torch.float64)
    with torch.no_grad():
        twin.weight.copy_(torch.tensor(model[0].weight.data))
        twin.bias.copy_(torch.tensor(model[0].bias.data))
    reference = twin(torch.tensor(X, dtype=torch.float64)).detach().numpy()
    normalised = Sequential(model[0])
    assert np.allclose(normalised.predict(X), reference, atol=1e-5)
    path = wxb_onnx.export(model, tmp_path / "m.onnx")
    got = ort.InferenceSession(str(path)).run(None, {"input": X})[0]
    assert np.allclose(got, model.predict(X), rtol=1e-5, atol=1e-5)
    first = wxb_onnx.export(normalised, tmp_path / "n.onnx")
    got = ort.InferenceSession(str(first)).run(None, {"input": X})[0]
    assert got.dtype == np.float32
    assert np.allclose(got, reference, atol=1e-5)


def test_functional_forms_take_arrays_as_the_other_functional_forms(rng):
    # F.layer_norm(array, …) and F.batch_norm(array, None, None, training=True) raised
    # AttributeError: 'memoryview' object has no attribute 'astype' (F.relu(array) works)
    X = rng.normal(size=(int(rng.integers(2, 7)), int(rng.integers(2, 6))))
    width = X.shape[1]
    gamma, beta = rng.normal(size=width), rng.normal(size=width)
    expected = torch.nn.functional.layer_norm(
        torch.tensor(X), (width,), torch.tensor(gamma), torch.tensor(beta), eps=1e-3
    )
    got = F.layer_norm(X, (width,), gamma, beta, eps=1e-3)
    assert np.allclose(got.data, expected.numpy(), atol=1e-12)
    mean, var = np.zeros(width), np.ones(width)
    tmean, tvar = torch.zeros(width, dtype=torch.float64), torch.ones(width, dtype=torch.float64)
    expected = torch.nn.functional.batch_norm(torch.tensor(X), tmean, tvar, training=True)
    got = F.batch_norm(X, mean, var, training=True)
    assert np.allclose(got.data, expected.numpy(), atol=1e-12)
    assert np.allclose(mean, tmean.numpy(), atol=1e-15) and np.allclose(var, tvar.numpy())
    # a list becomes float32, as wxb.tensor makes it: the same as the float32 array, bit for
    # bit (against the float64 array, a row of two close values differs by ~1e-5 in float32)
    from_list = F.layer_norm(X.tolist(), width).data
    assert from_list.dtype == np.float32
    assert np.array_equal(from_list, F.layer_norm(X.astype(np.float32), width).data)


def test_a_torch_state_without_num_batches_tracked_loads_as_in_torch(rng):
    # a state dict from before PyTorch kept the count, or filtered into a plain dict:
    # PyTorch's BatchNorm loads it strict, keeping its count; wxb's refused it (ShapeError:
    # missing [...num_batches_tracked])
    width = int(rng.integers(2, 6))
    source = torch.nn.Sequential(torch.nn.Linear(3, width), torch.nn.BatchNorm1d(width))
    for _ in range(int(rng.integers(1, 5))):
        source(torch.tensor(rng.normal(size=(6, 3)) * 2 + 1, dtype=torch.float32))
    state = {k: v for k, v in source.state_dict().items() if "num_batches" not in k}
    twin = torch.nn.Sequential(torch.nn.Linear(3, width), torch.nn.BatchNorm1d(width))
    mine = interop.from_torch(twin)
    ran = int(rng.integers(1, 4))
    for _ in range(ran):
        x = rng.normal(size=(5, 3)).astype(np.float32)
        twin(torch.tensor(x))
        mine(x)
    for strict in (True, False):
        theirs = twin.load_state_dict(dict(state), strict=strict)
        names = {"0": "dense1", "1": "batchnorm1d1"}  # from_torch's names of "0", "1"
        ours = mine.load_state_dict(
            {names[k[0]] + k[1:]: v for k, v in state.items()}, strict=strict
        )
        assert ours.missing_keys == theirs.missing_keys == []
        assert int(mine[1].num_batches_tracked) == int(twin[1].num_batches_tracked) == ran
        assert np.array_equal(mine[1].running_var, twin[1].running_var.numpy())
    with pytest.raises(wxb.errors.ShapeError, match="running_var"):  # the others stay required
        mine.load_state_dict({k: v for k, v in mine.state_dict().items() if "var" not in k})


def test_diagnostics_see_the_activation_after_a_normalisation(rng):
    # Dense → BatchNorm1d → ReLU (wxb train --norm batch --diagnose): dead and saturated
    # units were never reported (None for every layer); A = f(BN(Z)) is the layer's A
    from wxb.diagnose import layer_reports
    from wxb.nn import LayerNorm, ReLU, Tanh

    width = int(rng.integers(4, 9))
    X = rng.normal(size=(40, 3)).astype(np.float32)
    y = rng.integers(0, 2, 40)
    dense1, dense2 = Dense(3, width, seed=rng), Dense(width, width, seed=rng)
    bn, ln = BatchNorm1d(width), LayerNorm(width)
    dead = rng.choice(width, size=int(rng.integers(1, width)), replace=False)
    bn.bias.data[dead] = -50.0  # these units never fire, whatever the row
    ln.weight.data[...] = rng.uniform(0.5, 5, size=width)
    model = Sequential(dense1, bn, ReLU(), dense2, ln, Tanh(), Dense(width, 2, seed=rng))
    for _ in range(3):
        model(rng.normal(size=(8, 3)))
    reports = layer_reports(model, X, y, wxb.nn.CrossEntropyLoss())
    # (the norms' own rows, their γ's ‖W‖, aside: the Dense layers' activations here)
    reports = [r for r in reports if r.kind == "Dense"]
    # in NumPy, float64: BatchNorm1d by its running statistics (eval mode), LayerNorm by row
    z1 = X @ dense1.weight.data.T.astype(np.float64) + dense1.bias.data
    a1 = np.maximum(
        (z1 - bn.running_mean) / np.sqrt(bn.running_var + bn.eps) * bn.weight.data + bn.bias.data, 0
    )
    z2 = a1 @ dense2.weight.data.T.astype(np.float64) + dense2.bias.data
    centred = z2 - z2.mean(axis=1, keepdims=True)
    x_hat = centred / np.sqrt((centred**2).mean(axis=1, keepdims=True) + ln.eps)
    a2 = np.tanh(x_hat * ln.weight.data + ln.bias.data)
    assert reports[0].activation == "relu" and reports[1].activation == "tanh"
    assert reports[0].dead_fraction == pytest.approx(np.mean(np.all(a1 <= 0, axis=0)))
    assert reports[0].dead_fraction >= len(dead) / width
    saturated = np.mean(1 - a2 * a2 < 0.01)  # (float32's rounding may move one on the edge)
    assert reports[1].saturated_fraction == pytest.approx(saturated, abs=1.5 / a2.size)


def test_bad_arguments_are_one_line_errors_naming_them(rng):
    # integer running statistics (updated in place): a bare NumPy TypeError ("Cannot cast
    # array data from dtype('float64') to dtype('int64')"); PyTorch refuses them too
    width = int(rng.integers(2, 6))
    X = rng.normal(size=(4, width))
    with pytest.raises(wxb.errors.DataError, match="running_mean must be a float array"):
        F.batch_norm(X, np.zeros(width, int), np.ones(width), training=True)
    # "LayerNorm must be positive ints": the argument now named
    with pytest.raises(ConfigError, match="LayerNorm normalized_shape must be positive"):
        wxb.nn.LayerNorm([width, -int(rng.integers(1, 4))])


def test_the_training_step_diagrams_say_how_a_training_step_normalises(rng):
    # The forward and backward diagrams draw a training step (Dropout's mask M, the loss,
    # the δ chain, the optimiser step). For a model in eval mode, as wxb.load gives and
    # `wxb diagram` draws, they said BatchNorm1d took "the running statistics" and its
    # backward "γ ⊙ g / √(running σ² + ε)": fit trains it by the batch's own
    from wxb import describe
    from wxb.nn import Dropout, ReLU

    width = int(rng.integers(2, 9))
    model = Sequential(
        Dense(3, width, seed=rng), BatchNorm1d(width), ReLU(), Dropout(0.5), Dense(width, 2)
    )
    for mode in (False, True):
        model.train(mode)
        forward = describe.forward_diagram(model)
        backward = describe.backward_diagram(model)
        assert "⊙ M / (1 − 0.5)" in forward and "⊙ M / (1 − 0.5)" in backward
        assert "μ and σ² over the batch, per unit (row) (predict: the running statistics)" in (
            forward
        )
        assert "running σ²" not in backward and "means over the batch" in backward
    # where the layer's own mode decides, it is still said: the running statistics in eval
    model.eval()
    assert "the running statistics" in describe.architecture_diagram(model)
    assert "the running statistics" in str(wxb.explain(model, rng.normal(size=(4, 3))))
    # and the backward rule drawn is the one training computes: torch's, by the batch
    X = rng.normal(size=(int(rng.integers(3, 8)), width))
    g = rng.normal(size=X.shape)
    bn = torch.nn.BatchNorm1d(width, dtype=torch.float64)
    x = torch.tensor(X, requires_grad=True)
    (bn(x) * torch.tensor(g)).sum().backward()
    x_hat = (X - X.mean(0)) / np.sqrt(X.var(0) + bn.eps)  # γ = 1: ĝ = g, means over the batch
    rule = (g - g.mean(0) - x_hat * (g * x_hat).mean(0)) / np.sqrt(X.var(0) + bn.eps)
    assert np.allclose(rule, x.grad.numpy(), atol=1e-10)
