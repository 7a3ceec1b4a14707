"""LayerNorm and BatchNorm1d against PyTorch 2.13, and through every path a model takes.

Shapes, settings, weights and data are drawn fresh on each run (``WXB_TEST_SEED``
replays one). float64 must agree with PyTorch to 1e-10; float32 to rounding. Gradients
are also checked against central differences of wxb's own forward.
"""

from __future__ import annotations

import copy
import json
import struct

import numpy as np
import onnxruntime as ort
import pytest
import torch

import wxb
import wxb.nn.functional as F
from wxb import describe, interop
from wxb import onnx as wxb_onnx
from wxb.errors import ConfigError, ModelFileError, ShapeError
from wxb.nn import (
    BatchNorm1d,
    CrossEntropyLoss,
    Dense,
    LayerNorm,
    Module,
    ReLU,
    Sequential,
    Tanh,
)
from wxb.optim import SGD

TORCH = {np.float32: torch.float32, np.float64: torch.float64}
TOL = {np.float32: 2e-5, np.float64: 1e-10}


def _norm_settings(rng, kind):
    eps = float(rng.choice([1e-5, 1e-3, 0.1]))
    if kind == "layer":
        return {
            "eps": eps,
            "elementwise_affine": bool(rng.random() < 0.8),
            "bias": bool(rng.random() < 0.8),
        }
    return {
        "eps": eps,
        "momentum": None if rng.random() < 0.3 else float(rng.uniform(0.01, 1)),
        "affine": bool(rng.random() < 0.8),
        "track_running_stats": bool(rng.random() < 0.8),
        "bias": bool(rng.random() < 0.8),
    }


def _pair(rng, kind, width, dtype):
    """A wxb layer and its torch twin with the same random γ and β."""
    settings = _norm_settings(rng, kind)
    if kind == "layer":
        mine = LayerNorm(width, dtype=dtype, **settings)
        twin = torch.nn.LayerNorm(width, dtype=TORCH[dtype], **settings)
    else:
        mine = BatchNorm1d(width, dtype=dtype, **settings)
        twin = torch.nn.BatchNorm1d(width, dtype=TORCH[dtype], **settings)
    for key in ("weight", "bias"):
        p = getattr(mine, key)
        if p is not None:
            p.data[...] = rng.normal(1 if key == "weight" else 0, 0.5, size=p.shape)
            with torch.no_grad():
                getattr(twin, key).copy_(torch.tensor(p.data))
    return mine, twin


def _net(rng, dtype, n_in, n_out, norms):
    """A Sequential Dense → norm → tanh → Dense → norm → ReLU → Dense, and its twin."""
    widths = [n_in, int(rng.integers(2, 9)), int(rng.integers(2, 9)), n_out]
    mine, twin = [], []
    for i, kind in enumerate(norms):
        dense = Dense(widths[i], widths[i + 1], seed=rng, dtype=dtype)
        linear = torch.nn.Linear(widths[i], widths[i + 1], dtype=TORCH[dtype])
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(dense.weight.data))
            linear.bias.copy_(torch.tensor(dense.bias.data))
        norm, norm_twin = _pair(rng, kind, widths[i + 1], dtype)
        act = [(Tanh(), torch.nn.Tanh()), (ReLU(), torch.nn.ReLU())][i % 2]
        mine += [dense, norm, act[0]]
        twin += [linear, norm_twin, act[1]]
    last = Dense(widths[2], n_out, seed=rng, dtype=dtype)
    linear = torch.nn.Linear(widths[2], n_out, dtype=TORCH[dtype])
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(last.weight.data))
        linear.bias.copy_(torch.tensor(last.bias.data))
    return Sequential(*mine, last), torch.nn.Sequential(*twin, linear)


def _close(a, b, dtype, msg, scale=None, ref=None):
    """Equal to rounding: ``scale``, of the terms a result was computed from (its size
    where it is a small difference of large ones), else the result's own size. Given
    ``ref`` (the same run in float64), a float32 result past that may be as far from it
    as ten times PyTorch's own float32 result is: a batch-normalised layer after a bias
    over a few rows is ill-conditioned, and four steps took both 4e-5 off."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(1.0, float(np.abs(b).max(initial=0)), scale or 0.0)
    if np.allclose(a, b, rtol=TOL[dtype], atol=TOL[dtype] * scale) or ref is None:
        assert np.allclose(a, b, rtol=TOL[dtype], atol=TOL[dtype] * scale), msg
        return
    ref = np.asarray(ref, np.float64)
    ours, theirs = float(np.abs(a - ref).max()), float(np.abs(b - ref).max())
    assert ours <= max(10 * theirs, TOL[dtype] * scale), f"{msg}: {ours:.2g} vs {theirs:.2g}"


def _state_matches(model, twin, dtype, msg, reference=None):
    mine, theirs = model.state_dict(), twin.state_dict()
    refs = list(reference.state_dict().values()) if reference is not None else None
    assert len(mine) == len(theirs), msg
    for k, ((key, a), b) in enumerate(zip(mine.items(), theirs.values(), strict=True)):
        if a.dtype.kind == "i":
            assert int(a) == int(b), msg + f" {key}"
        else:
            ref = None if refs is None else refs[k].detach().numpy()
            _close(a, b.detach().numpy(), dtype, msg + f" {key}", ref=ref)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["layer", "batch"])
def test_one_layer_forward_and_gradients_match_torch(seeded, dtype, kind):
    rng = seeded.rng
    for _ in range(10):
        # (one feature in float32: torch's x·rstd − μ·rstd leaves rounding where x̂ is 0)
        width = int(rng.integers(1 if dtype == np.float64 or kind == "batch" else 2, 9))
        rows = int(rng.integers(2, 12))
        if kind == "layer":
            shape = (rows, width) if rng.random() < 0.6 else (rows, int(rng.integers(1, 4)), width)
        else:
            shape = (rows, width) if rng.random() < 0.6 else (rows, width, int(rng.integers(1, 5)))
        mine, twin = _pair(rng, kind, width, dtype)
        training = bool(rng.random() < 0.7)
        mine.train(training)
        twin.train(training)
        if kind == "batch" and mine.track_running_stats:  # running statistics of their own
            mean, var = rng.normal(size=width), rng.uniform(0.2, 3, size=width)
            mine.running_mean[...], mine.running_var[...] = mean, var
            twin.running_mean.copy_(torch.tensor(mean)), twin.running_var.copy_(torch.tensor(var))
        X = rng.normal(rng.normal(), rng.uniform(0.1, 5), size=shape).astype(dtype)
        G = rng.normal(size=shape).astype(dtype)
        x = wxb.Tensor(X.copy(), requires_grad=True)
        out = mine(x)
        out.backward(G)
        tx = torch.tensor(X, requires_grad=True)
        tout = twin(tx)
        tout.backward(torch.tensor(G))
        msg = seeded.msg(f"{mine!r} on {shape}, training={training}")
        _close(out.data, tout.detach().numpy(), dtype, msg + " output")
        # ∂L/∂x = (ĝ − mean ĝ − x̂·mean(ĝ ⊙ x̂))/σ cancels: its terms are |ĝ|/σ in size
        if kind == "layer":
            axes = tuple(range(len(shape) - 1, len(shape)))
        else:
            axes = (0,) if len(shape) == 2 else (0, 2)
        spread = np.sqrt(np.var(X.astype(np.float64), axis=axes) + mine.eps)
        if kind == "batch" and not training and mine.track_running_stats:
            spread = np.sqrt(mine.running_var + mine.eps)
        gamma = 1.0 if mine.weight is None else float(np.abs(mine.weight.data).max())
        terms = float(np.abs(G).max()) * gamma / float(spread.min())
        _close(x.grad, tx.grad.numpy(), dtype, msg + " ∂L/∂x", scale=terms)
        for key in ("weight", "bias"):
            p = getattr(mine, key)
            assert (p is None) == (getattr(twin, key) is None), msg
            if p is not None:
                _close(p.grad, getattr(twin, key).grad.numpy(), dtype, msg + f" ∂L/∂{key}")
        _state_matches(mine, twin, dtype, msg)


def test_the_backward_rule_matches_central_differences(seeded):
    rng = seeded.rng
    for kind in ("layer", "batch"):
        width = int(rng.integers(2, 6))
        mine, _ = _pair(rng, kind, width, np.float64)
        X = rng.normal(size=(int(rng.integers(2, 6)), width))
        G = rng.normal(size=X.shape)
        if kind == "batch" and mine.track_running_stats:
            mine.momentum = 0.0  # the running statistics stay put while differences are taken
        x = wxb.Tensor(X.copy(), requires_grad=True)
        (mine(x) * G).sum().backward()
        h = 1e-6
        numeric = np.zeros_like(X)
        for idx in np.ndindex(*X.shape):
            plus, minus = X.copy(), X.copy()
            plus[idx] += h
            minus[idx] -= h
            # (Tensors: a layer without arrays would take a NumPy input as float32)
            f_plus = float((mine(wxb.Tensor(plus)).data * G).sum())
            f_minus = float((mine(wxb.Tensor(minus)).data * G).sum())
            numeric[idx] = (f_plus - f_minus) / (2 * h)
        assert np.allclose(x.grad, numeric, rtol=1e-6, atol=1e-7), seeded.msg(repr(mine))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_hand_written_loop_trains_as_torch_in_both_modes(seeded, dtype):
    rng = seeded.rng
    n_in, n_out = int(rng.integers(2, 7)), int(rng.integers(2, 5))
    norms = [str(rng.choice(["layer", "batch"])), str(rng.choice(["layer", "batch"]))]
    model, twin = _net(rng, dtype, n_in, n_out, norms)
    lr = float(rng.uniform(0.01, 0.3))
    opt, topt = (
        SGD(model.parameters(), lr=lr, momentum=0.9),
        torch.optim.SGD(twin.parameters(), lr=lr, momentum=0.9),
    )
    msg = seeded.msg(f"{model!r}")
    # the same run in float64, to judge float32's rounding by (PyTorch's is the measure)
    ref = copy.deepcopy(twin).double()
    ropt = torch.optim.SGD(ref.parameters(), lr=lr, momentum=0.9)
    for step in range(4):
        X = rng.normal(size=(int(rng.integers(2, 10)), n_in)).astype(dtype)
        y = rng.integers(0, n_out, len(X))
        loss = CrossEntropyLoss()(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        tloss = torch.nn.functional.cross_entropy(twin(torch.tensor(X)), torch.tensor(y))
        topt.zero_grad()
        tloss.backward()
        topt.step()
        rloss = torch.nn.functional.cross_entropy(ref(torch.tensor(X, dtype=torch.float64)),
                                                  torch.tensor(y))  # fmt: skip
        ropt.zero_grad()
        rloss.backward()
        ropt.step()
        _close(loss.item(), tloss.item(), dtype, msg + f" loss at step {step}", ref=rloss.item())
    _state_matches(model, twin, dtype, msg, reference=ref)
    model.eval()
    twin.eval()
    ref.eval()
    X = rng.normal(size=(5, n_in)).astype(dtype)
    with torch.no_grad():
        expected = twin(torch.tensor(X)).numpy()
        reference = ref(torch.tensor(X, dtype=torch.float64)).numpy()
    _close(model.predict(X), expected, dtype, msg + " eval outputs", ref=reference)
    if all(m.track_running_stats for m in model.modules() if isinstance(m, BatchNorm1d)):
        one = model.predict(X[:1])  # eval mode: a row's output is its own, whatever the batch
        # (to the batch's scale: a small running σ² amplifies float32's rounding of the
        # trained weights, 2e-5 off a float64 run for wxb and torch alike, as above)
        _close(one, expected[:1], dtype, msg + " one row", scale=float(np.abs(expected).max()))


def test_fit_trains_as_the_torch_loop_and_validates_in_eval_mode(seeded):
    rng = seeded.rng
    n_in, n_out = int(rng.integers(2, 7)), int(rng.integers(2, 5))
    model, twin = _net(rng, np.float64, n_in, n_out, ["batch", "layer"])
    rows, batch = 48, 8
    X = rng.normal(size=(rows + 10, n_in))
    y = rng.integers(0, n_out, rows + 10)
    lr = 0.05
    history = wxb.fit(
        model, X[:rows], y[:rows], loss="cross_entropy", optimizer=SGD(model.parameters(), lr=lr),
        epochs=2, batch_size=batch, shuffle=False, validation_data=(X[rows:], y[rows:]),
    )  # fmt: skip
    topt = torch.optim.SGD(twin.parameters(), lr=lr)
    losses, val_losses = [], []
    for _ in range(2):
        twin.train()
        total = 0.0
        for start in range(0, rows, batch):
            out = twin(torch.tensor(X[start : start + batch]))
            loss = torch.nn.functional.cross_entropy(out, torch.tensor(y[start : start + batch]))
            topt.zero_grad()
            loss.backward()
            topt.step()
            total += loss.item() * batch
        losses.append(total / rows)
        twin.eval()
        with torch.no_grad():
            val = torch.nn.functional.cross_entropy(
                twin(torch.tensor(X[rows:])), torch.tensor(y[rows:])
            )
        val_losses.append(val.item())
    msg = seeded.msg(repr(model))
    _state_matches(model, twin, np.float64, msg)
    if model.batchnorm1d1.track_running_stats:
        assert int(model.batchnorm1d1.num_batches_tracked) == 2 * rows // batch, msg
    _close(history.history["loss"], losses, np.float64, msg + " loss")
    _close(history.history["val_loss"], val_losses, np.float64, msg + " val_loss")


def test_fit_refuses_a_training_batch_of_one_row_for_batch_norm(rng):
    model = Sequential(Dense(3, 4, seed=rng), BatchNorm1d(4), Dense(4, 2, seed=rng))
    X, y = rng.normal(size=(33, 3)), rng.integers(0, 2, 33)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    for batch in (32, 16, 1):
        with pytest.raises(ConfigError, match=f"33 rows in batches of {batch} leave a batch of 1"):
            wxb.fit(model, X, y, batch_size=batch, epochs=1)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    rows, batch = int(rng.integers(20, 200)), int(rng.integers(2, 19))
    rows += (1 - rows % batch) % batch  # a last batch of one row
    X, y = rng.normal(size=(rows, 3)), rng.integers(0, 2, rows)
    with pytest.raises(ConfigError, match=r"batch size \((\d+) leaves none\)") as refused:
        wxb.fit(model, X, y, batch_size=batch, epochs=1)
    near = int(refused.value.args[0].rsplit("(", 1)[1].split()[0])
    assert near >= 2 and rows % near != 1
    closer = [s for s in range(2, rows + 1) if abs(s - batch) < abs(near - batch)]
    assert all(rows % s == 1 for s in closer)  # the nearest that leaves none
    wxb.fit(model, X, y, batch_size=near, epochs=1, loss="cross_entropy")  # and it trains
    bn = BatchNorm1d(4)
    with pytest.raises(ShapeError, match="more than 1 value per channel"):
        bn(rng.normal(size=(1, 4)))
    assert int(bn.num_batches_tracked) == 0  # a refused batch is not counted
    bn.eval()
    assert bn(rng.normal(size=(1, 4))).shape == (1, 4)  # eval mode: one row is fine


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_keeps_statistics_and_counts(tmp_path, seeded, dtype):
    rng = seeded.rng
    model = Sequential(
        Dense(4, 6, seed=rng), BatchNorm1d(6, momentum=None), ReLU(), LayerNorm(6, bias=False),
        BatchNorm1d(6, affine=False), BatchNorm1d(6, bias=False), Dense(6, 2, seed=rng),
    ).to(dtype)  # fmt: skip
    for _ in range(int(rng.integers(1, 5))):
        model(rng.normal(size=(int(rng.integers(2, 9)), 4)))
    model.eval()
    path = wxb.save(model, tmp_path / "m.safetensors")
    back = wxb.load(path)
    X = rng.normal(size=(7, 4)).astype(dtype)
    assert np.array_equal(back.predict(X), model.predict(X)), seeded.msg("round trip")
    for key, value in model.state_dict().items():
        assert np.array_equal(back.state_dict()[key], value), key
        assert back.state_dict()[key].dtype == value.dtype, key
    assert back.batchnorm1d3.bias is None and back.layernorm1.bias is None
    # the count is an int64 tensor in the file; a file that stores it otherwise is refused
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    assert header["batchnorm1d1.num_batches_tracked"]["dtype"] == "I64"
    header["batchnorm1d1.running_mean"]["dtype"] = "I64" if dtype == "float64" else "F32"
    if dtype == "float64":
        text = json.dumps(header).encode()
        bad = tmp_path / "bad.safetensors"
        bad.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + length :])
        with pytest.raises(ModelFileError, match="running_mean' is I64, not F32 or F64"):
            wxb.load(bad)


def test_save_refuses_what_would_load_otherwise(tmp_path, rng):
    class MyNorm(LayerNorm):
        def forward(self, x):
            return super().forward(x) * 2

    with pytest.raises(ConfigError, match="MyNorm cannot be saved"):
        wxb.save(Sequential(Dense(3, 4, seed=rng), MyNorm(4)), tmp_path / "a.safetensors")
    norm = LayerNorm(4)
    norm.bias = None  # config still says bias: it is read from the layer
    wxb.save(Sequential(Dense(3, 4, seed=rng), norm), tmp_path / "b.safetensors")
    assert wxb.load(tmp_path / "b.safetensors").layernorm1.bias is None
    batch = BatchNorm1d(4)
    batch.weight = None  # affine=True but no γ: would load with one
    with pytest.raises(ConfigError, match="BatchNorm1d"):
        wxb.save(Sequential(Dense(3, 4, seed=rng), batch), tmp_path / "c.safetensors")
    assert not (tmp_path / "a.safetensors").exists() and not (tmp_path / "c.safetensors").exists()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_to_torch_and_back_compute_the_same(seeded, dtype):
    rng = seeded.rng
    model, _ = _net(rng, dtype, 4, 3, ["batch", "layer"])
    for _ in range(3):
        model(rng.normal(size=(6, 4)).astype(dtype))
    twin = interop.to_torch(model)
    back = interop.from_torch(twin)  # (before the training forwards below move their statistics)
    msg = seeded.msg(repr(model))
    _state_matches(model, twin, dtype, msg)
    X = rng.normal(size=(5, 4)).astype(dtype)
    back.eval()
    model.eval()
    assert np.array_equal(back.predict(X), model.predict(X)), msg
    assert back.batchnorm1d1.state_dict().keys() == model.batchnorm1d1.state_dict().keys()
    for training in (True, False):
        model.train(training)
        twin.train(training)
        with wxb.no_grad(), torch.no_grad():
            _close(
                model(X).data, twin(torch.tensor(X)).numpy(), dtype, msg + f" training={training}"
            )
    _state_matches(model, twin, dtype, msg + " after a training forward")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_onnx_export_runs_as_predict(tmp_path, seeded, dtype):
    rng = seeded.rng
    model = Sequential(
        Dense(5, 7, seed=rng), BatchNorm1d(7, momentum=None), ReLU(), Dense(7, 6, seed=rng),
        LayerNorm(6), Tanh(), LayerNorm(6, elementwise_affine=False), BatchNorm1d(6, affine=False),
        Dense(6, 3, seed=rng),
    ).to(dtype)  # fmt: skip
    for module in model:
        for p in module.parameters():
            p.data[...] = rng.normal(size=p.shape)
    for _ in range(3):
        model((rng.normal(size=(8, 5)) * 3 + 1).astype(dtype))
    model.eval()
    path = wxb_onnx.export(model, tmp_path / "m.onnx")
    X = (rng.normal(size=(40, 5)) * 3).astype(dtype)
    got = ort.InferenceSession(str(path)).run(None, {"input": X})[0]
    expected = model.predict(X)
    tol = 1e-5 if dtype == "float32" else 1e-12
    assert np.allclose(got, expected, rtol=tol, atol=tol * np.abs(expected).max()), seeded.msg(
        "onnx"
    )
    unsaveable = Sequential(Dense(5, 4, seed=rng), BatchNorm1d(4, track_running_stats=False))
    with pytest.raises(ConfigError, match="normalises each batch"):
        wxb_onnx.export(unsaveable, tmp_path / "n.onnx")


def test_functional_forms_match_torch(seeded):
    rng = seeded.rng
    X = rng.normal(size=(6, 3, 4))
    w, b = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    got = F.layer_norm(wxb.Tensor(X), (3, 4), w, b, eps=1e-3)
    expected = torch.nn.functional.layer_norm(
        torch.tensor(X), (3, 4), torch.tensor(w), torch.tensor(b), 1e-3
    )
    _close(got.data, expected.numpy(), np.float64, seeded.msg("layer_norm"))
    mean, var = rng.normal(size=3), rng.uniform(0.5, 2, 3)
    tmean, tvar = torch.tensor(mean), torch.tensor(var)
    got = F.batch_norm(wxb.Tensor(X), mean, var, training=True, momentum=0.3)
    expected = torch.nn.functional.batch_norm(
        torch.tensor(X), tmean, tvar, training=True, momentum=0.3
    )
    _close(got.data, expected.numpy(), np.float64, seeded.msg("batch_norm"))
    _close(mean, tmean.numpy(), np.float64, seeded.msg("running mean"))
    _close(var, tvar.numpy(), np.float64, seeded.msg("running var"))
    with pytest.raises(ShapeError, match="normalized_shape \\[4, 3\\]"):
        F.layer_norm(wxb.Tensor(X), (4, 3))


def test_what_describes_a_model_shows_the_formula_and_leaves_it_alone(rng):
    class Own(Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.bn, self.fc2 = (
                Dense(5, 8, seed=rng),
                BatchNorm1d(8),
                Dense(8, 3, seed=rng),
            )

        def forward(self, x):
            return self.fc2(F.relu(self.bn(self.fc1(x))))

    models = [
        Sequential(
            Dense(5, 8, seed=rng), BatchNorm1d(8), ReLU(), LayerNorm(8), Dense(8, 3, seed=rng)
        ),
        Own(),
    ]
    for model in models:
        for _ in range(2):
            model(rng.normal(size=(6, 5)))
        before = {k: v.copy() for k, v in model.state_dict().items()}
        X, y = rng.normal(size=(10, 5)), rng.integers(0, 3, 10)
        texts = [
            str(describe.summary(model)),
            describe.architecture_diagram(model),
            describe.forward_diagram(model),
            describe.backward_diagram(model),
            str(wxb.explain(model, X, y)),
        ]
        model.predict(X)
        wxb.evaluate(model, X, y)
        for key, value in model.state_dict().items():
            assert np.array_equal(before[key], value), f"{key} changed"
        assert model.training
        joined = "\n".join(texts)
        assert "√(σ² + ε)" in joined and "the running statistics" in texts[-1]
        assert "(8,)" in texts[0]  # the summary knows the width it keeps
    assert "normalisation layer" in models[0].why_not_planned()


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_wxb_train_norm_puts_one_before_each_activation(tmp_path, rng, capsys, norm):
    from wxb.cli import main

    rows = int(rng.integers(60, 90))
    X = rng.normal(size=(rows, 3))
    table = tmp_path / "t.csv"
    table.write_text("a,b,c,y\n" + "".join(f"{a},{b},{c},{int(a + b > 0)}\n" for a, b, c in X))
    out = tmp_path / "m.safetensors"
    argv = ["train", "--data", table, "--target", "y", "--norm", norm, "--hidden", "8,4"]
    # (one batch of every training row: batches of 8 left one row over for some of these
    # sizes, 57 of them, and BatchNorm1d refuses that)
    code = main([str(a) for a in [*argv, "--epochs", "2", "--batch-size", "128", "-o", out]])
    printed, err = capsys.readouterr()
    assert code == 0, err
    kind = {"batch": BatchNorm1d, "layer": LayerNorm}[norm]
    assert f"{kind.__name__} before each" in printed
    model = wxb.load(out)
    names = [type(m).__name__ for m in model]
    assert names.count(kind.__name__) == 2
    assert names.index(kind.__name__) == names.index("Dense") + 1  # Z, then the norm, then f
    # predict through the command gives the model's own outputs, in eval mode
    code = main(["predict", str(out), str(table), "--proba", "-o", str(tmp_path / "p.csv")])
    assert code == 0 and "wrote" in capsys.readouterr().err
    written = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1)[:, 1:]
    logits = model.predict(X.astype(np.float32)).astype(np.float64)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    assert np.allclose(written, p / p.sum(axis=1, keepdims=True), atol=1e-6)
    if norm == "batch":  # a split leaving a training batch of one row: one line, status 2
        code = main(
            [str(a) for a in [*argv, "--batch-size", "1", "-o", tmp_path / "n.safetensors"]]
        )
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "batches of 1 leave a batch of 1" in err
        assert not (tmp_path / "n.safetensors").exists()


def test_wxb_train_refuses_norm_without_hidden_layers(tmp_path, capsys):
    from wxb.cli import main

    out = tmp_path / "m.safetensors"
    code = main(["train", "--hidden", "none", "--norm", "layer", "-q", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--norm layer acts on hidden layers" in err
    assert not out.exists()


def test_a_batch_norm_without_running_statistics_predicts_and_scores_all_rows_as_one_batch(rng):
    # eval mode normalises by the batch itself: predict's and evaluate's chunks would each
    # be normalised alone, where model(X) (and PyTorch's) takes all the rows together
    norm = BatchNorm1d(6, track_running_stats=False)
    model = Sequential(Dense(4, 6, seed=rng), norm, ReLU(), Dense(6, 3, seed=rng)).double()
    twin = interop.to_torch(model).eval()
    X, y = rng.normal(size=(50, 4)), rng.integers(0, 3, 50)
    with torch.no_grad():
        logits = twin(torch.tensor(X))
        expected_loss = torch.nn.functional.cross_entropy(logits, torch.tensor(y)).item()
    got = model.predict(X, batch_size=8)
    assert np.allclose(got, logits.numpy(), rtol=1e-10, atol=1e-12)
    figures = wxb.evaluate(model, X, y, loss="cross_entropy", batch_size=8)
    assert np.isclose(figures["loss"], expected_loss, rtol=1e-10)


def test_frozen_gamma_in_a_module_of_ones_own_trains_as_torch(seeded):
    rng = seeded.rng

    class Block(Module):  # a forward of one's own: norm before and after a residual
        def __init__(self):
            super().__init__()
            self.fc, self.bn = (
                Dense(4, 4, seed=rng, dtype="float64"),
                BatchNorm1d(4, dtype="float64"),
            )
            self.ln, self.out = (
                LayerNorm(4, dtype="float64"),
                Dense(4, 2, seed=rng, dtype="float64"),
            )

        def forward(self, x):
            return self.out(self.ln(x + F.relu(self.bn(self.fc(x)))))

    class TorchBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.bn = torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4)
            self.ln, self.out = torch.nn.LayerNorm(4), torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.out(self.ln(x + torch.relu(self.bn(self.fc(x)))))

    model, twin = Block(), TorchBlock().double()
    for p in (model.bn.weight, model.ln.bias, model.ln.weight):
        p.data[...] = rng.normal(1, 0.5, size=p.shape)
    twin.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    frozen = [model.bn.weight, model.ln.bias]
    for p in frozen:
        p.requires_grad = False
    twin.bn.weight.requires_grad_(False)
    twin.ln.bias.requires_grad_(False)
    kept = [p.data.copy() for p in frozen]
    opt = SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, weight_decay=0.01)
    topt = torch.optim.SGD(
        [p for p in twin.parameters() if p.requires_grad], lr=0.1, weight_decay=0.01
    )
    for _ in range(3):
        X, y = rng.normal(size=(6, 4)), rng.integers(0, 2, 6)
        opt.zero_grad()
        CrossEntropyLoss()(model(X), y).backward()
        opt.step()
        topt.zero_grad()
        torch.nn.functional.cross_entropy(twin(torch.tensor(X)), torch.tensor(y)).backward()
        topt.step()
    assert all(np.array_equal(p.data, k) for p, k in zip(frozen, kept, strict=True))
    assert model.bn.weight.grad is None and model.ln.bias.grad is None
    _state_matches(model, twin, np.float64, seeded.msg("frozen γ and β"))


def test_predicting_in_threads_while_another_thread_trains_its_own(rng):
    import threading

    def make(seed):
        return Sequential(Dense(5, 8, seed=seed), BatchNorm1d(8), ReLU(), LayerNorm(8),
                          Dense(8, 3, seed=seed + 1))  # fmt: skip

    served = make(1)
    X, y = rng.normal(size=(96, 5)), rng.integers(0, 3, 96)
    wxb.fit(served, X, y, loss="cross_entropy", epochs=2, batch_size=16, seed=0, verbose=False)
    rows = rng.normal(size=(40, 5))
    expected = served.predict(rows)
    alone = make(2)
    wxb.fit(alone, X, y, loss="cross_entropy", epochs=3, batch_size=16, seed=4, verbose=False)
    trained, seen, errors = make(2), [], []

    def serve():
        try:
            for _ in range(200):
                seen.append(served.predict(rows))
        except Exception as exc:  # reported below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=serve) for _ in range(2)]
    for t in threads:
        t.start()
    wxb.fit(trained, X, y, loss="cross_entropy", epochs=3, batch_size=16, seed=4, verbose=False)
    for t in threads:
        t.join()
    assert not errors and len(seen) == 400
    assert all(np.array_equal(out, expected) for out in seen)  # eval mode, stats untouched
    assert served.training and int(served.batchnorm1d1.num_batches_tracked) == 2 * 96 // 16
    for key, value in alone.state_dict().items():  # the training thread ran as alone
        assert np.array_equal(trained.state_dict()[key], value), key


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_and_channels_of_one_value_normalise_to_zero(seeded, dtype):
    """x − μ of a row (LayerNorm) or channel (BatchNorm1d, training) holding one value is
    0 exactly: Σx/n of 1e30 three times was an ulp off, and x̂ = that ulp over its own
    spread came out ±1 (PyTorch's LayerNorm: 0). A second pass over the centred values
    takes it out."""
    rng = seeded.rng
    top = 36 if dtype == np.float32 else 300
    for _ in range(20):
        b, k = int(rng.integers(2, 9)), int(rng.integers(2, 9))
        values = rng.choice([-1, 1]) * 10.0 ** rng.uniform(0, top, size=(b, 1))
        rows = np.repeat(values, k, axis=1).astype(dtype)
        out = LayerNorm(k, dtype=dtype)(wxb.Tensor(rows)).data
        np.testing.assert_array_equal(out, 0, err_msg=seeded.msg(f"LayerNorm of {values.T}"))
        channels = np.repeat(values.T, b, axis=0).astype(dtype)  # each column one value
        out = BatchNorm1d(b, dtype=dtype)(wxb.Tensor(channels)).data
        np.testing.assert_array_equal(out, 0, err_msg=seeded.msg(f"BatchNorm1d of {values.T}"))
