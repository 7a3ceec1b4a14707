"""Leftovers of the last session: explain's and the diagnostics' gradients, Standardize's
float64 statistics in files, exported text cells, predict on no rows, optimiser state."""

import sys
import threading

import numpy as np
import pytest
import torch

import wxb
from wxb.diagnose import layer_reports
from wxb.nn import Dense, ReLU, Sequential, Tanh
from wxb.nn.losses import MSELoss


def _mlp(rng, dtype="float64"):
    model = Sequential(Dense(5, 7, dtype=dtype), Tanh(), Dense(7, 6, dtype=dtype), ReLU())
    model.append(Dense(6, 2, dtype=dtype))
    X, y = rng.normal(size=(int(rng.integers(3, 12)), 5)), rng.normal(size=(1, 2))
    return model, X, y + rng.normal(size=(len(X), 2))


def _torch_grads(model, X, y):
    """∂L/∂p of the mean squared error by PyTorch, on the model's own weights."""
    dense = [m for m in model if isinstance(m, Dense)]
    params = [torch.tensor(p.data, requires_grad=True) for d in dense for p in (d.weight, d.bias)]
    a = torch.tensor(X)
    for i, act in enumerate((torch.tanh, torch.relu, None)):
        a = a @ params[2 * i].T + params[2 * i + 1]
        a = act(a) if act else a
    torch.nn.functional.mse_loss(a, torch.tensor(y)).backward()
    return [p.grad.numpy() for p in params]


def test_explain_and_diagnostics_leave_accumulated_grads_bit_for_bit(seeded):
    model, X, y = _mlp(seeded.rng)
    MSELoss()(model(X), y).backward()
    MSELoss()(model(X[::-1]), y[::-1]).backward()  # two backwards accumulated
    kept = [p.grad.copy() for p in model.parameters()]
    explained = wxb.explain(model, X, y, loss="mse", sample_rows=None)
    reports = layer_reports(model, X, y, MSELoss())
    for p, g in zip(model.parameters(), kept, strict=True):
        assert np.array_equal(p.grad, g), seeded.msg("a .grad changed by explain/diagnose")
    # and what they show is this batch's own gradient, not the accumulated one
    expected = _torch_grads(model, X, y)
    for layer, (gw, gb) in enumerate(zip(expected[::2], expected[1::2], strict=True), 1):
        shown = explained.step(f"dense{layer}.dL/dW")
        np.testing.assert_allclose(shown.value, gw, rtol=1e-9, atol=1e-12, err_msg=seeded.msg(""))
        norm = reports[layer - 1].weight_grad_norm
        np.testing.assert_allclose(norm, np.linalg.norm(gw), rtol=1e-9, err_msg=seeded.msg(""))
        shown_b = explained.step(f"dense{layer}.dL/db").value
        np.testing.assert_allclose(shown_b, gb, rtol=1e-9, atol=1e-12, err_msg=seeded.msg(""))


def test_a_backward_in_another_thread_loses_nothing_to_explain(seeded):
    model, X, y = _mlp(seeded.rng)
    loss = MSELoss()
    loss(model(X), y).backward()
    one = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often: the interleavings happen
    done, looks = threading.Event(), []

    def looking():
        while not done.is_set():
            wxb.explain(model, X, y, loss="mse")
            layer_reports(model, X, y, loss)
            looks.append(1)

    try:
        thread = threading.Thread(target=looking)
        thread.start()
        steps = 0
        while steps < 100 or (len(looks) < 30 and steps < 20_000):  # both ran, interleaved
            loss(model(X), y).backward()
            steps += 1
        done.set()
        thread.join()
    finally:
        done.set()
        sys.setswitchinterval(before)
    for p, g in zip(model.parameters(), one, strict=True):
        np.testing.assert_allclose(p.grad, steps * g, rtol=1e-9, err_msg=seeded.msg("lost"))


def _standardized(rng, dtype):
    centre, spread = rng.uniform(1e3, 1e5), rng.uniform(1e-3, 1e-1)
    X = rng.normal(centre, spread, size=(40, 3))
    # statistics in float64, as NumPy gives them, held by a model of either dtype
    standardize = wxb.nn.Standardize(X.mean(0), X.std(0), dtype=dtype)
    model = Sequential(standardize, Dense(3, 2, dtype=dtype))
    return model, X


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_standardize_float64_statistics_survive_a_model_file(seeded, tmp_path, dtype):
    import copy

    model, X = _standardized(seeded.rng, dtype)
    wxb.save(model, tmp_path / "m.safetensors")
    loaded = wxb.load(tmp_path / "m.safetensors")
    # as saved, before any cast: the same numbers as the unsaved model's
    assert np.array_equal(loaded.predict(X), model.predict(X)), seeded.msg("as saved")
    unsaved = copy.deepcopy(model).double()
    back = loaded.double()
    exact = (X.mean(0), X.std(0))  # NumPy's own statistics, in float64
    for key, want in zip(("mean", "scale"), exact, strict=True):
        assert np.array_equal(getattr(back[0], key), getattr(unsaved[0], key)), seeded.msg(key)
        np.testing.assert_allclose(getattr(back[0], key), want, rtol=1e-12, err_msg=seeded.msg(key))
    assert np.array_equal(back.predict(X), unsaved.predict(X)), seeded.msg("predictions")


def test_a_model_file_written_before_loads_as_it_did(seeded, tmp_path):
    from safetensors.numpy import load_file, save_file

    from wxb.io import WIDER_STATISTICS, read_metadata

    model, _ = _standardized(seeded.rng, "float32")
    wxb.save(model, tmp_path / "m.safetensors")
    metadata = read_metadata(tmp_path / "m.safetensors")
    assert WIDER_STATISTICS in metadata
    old = {k: v for k, v in metadata.items() if k not in (WIDER_STATISTICS, "digest")}
    save_file(load_file(tmp_path / "m.safetensors"), tmp_path / "old.safetensors", old)
    loaded = wxb.load(tmp_path / "old.safetensors").double()
    rounded = model.state_dict()  # the float32 statistics, all an old file holds
    for key in ("mean", "scale"):
        want = rounded[f"standardize1.{key}"].astype(np.float64)
        assert np.array_equal(getattr(loaded[0], key), want), seeded.msg(key)
    # an entry that is not the float64 form of the buffer it names is refused
    broken = dict(old, **{WIDER_STATISTICS: '{"standardize1.mean": [1.0, 2.0, 3.0]}'})
    save_file(load_file(tmp_path / "m.safetensors"), tmp_path / "bad.safetensors", broken)
    with pytest.raises(wxb.ModelFileError, match=r"standardize1\.mean"):
        wxb.load(tmp_path / "bad.safetensors")


# every character wxb's reader trims around a text cell (pyarrow's, as str.isspace())
SPACES = [chr(c) for c in range(0x3001) if chr(c).isspace()]


def _padded(rng, text, spaces=None):
    """``text`` with 0–3 whitespace characters of any kind before and after it (with
    ``spaces``: 0 or 1 plain space)."""
    if spaces is not None:
        return " " * int(rng.integers(0, 2)) + text + " " * int(rng.integers(0, 2))
    before, after = (rng.choice(SPACES, size=int(rng.integers(0, 4))) for _ in range(2))
    return "".join(before) + text + "".join(after)


@pytest.mark.parametrize("opset", [None, 17])  # 17: no operator trims; one space either side
def test_exported_text_cells_match_wxb_predict_with_any_whitespace_around(seeded, tmp_path, opset):
    import onnxruntime as ort
    import pyarrow as pa

    from wxb.columns import TableEncoder
    from wxb.onnx import export
    from wxb.tables import from_object

    rng = seeded.rng
    colours, cities = ["red", "dark red", "Gelb ✓", "a.b*c"], ["Oslo", "Lima", "1", "x y"]
    n = int(rng.integers(30, 80))
    train = {
        "colour": list(rng.choice(colours, size=n)),
        "city": list(rng.choice(cities, size=n)),
        "size": rng.normal(size=n),
    }
    train["colour"][0] = None  # a gap in training: a missing indicator
    table = from_object(pa.table(train))
    enc = TableEncoder.fit(table, table.names)
    X = enc.transform(table, "float32")
    model = Sequential(Dense(X.shape[1], 3, seed=int(rng.integers(1 << 31))))
    model.info = {"table": enc.to_json(), "feature_names": enc.outputs}
    path = export(model, tmp_path / "m.onnx", opset=opset)
    # raw cells as a user's file holds them: any whitespace around, blanks, markers, unseen
    m = int(rng.integers(20, 60))
    pool_colour, pool_city = [*colours, "", "NA", "purple"], [*cities, "", "?", "Atlantis"]
    raw = {
        "colour": [_padded(rng, str(v), opset) for v in rng.choice(pool_colour, size=m)],
        "city": [_padded(rng, str(v), opset) for v in rng.choice(pool_city, size=m)],
        "size": rng.normal(size=m),
    }
    expected = model.predict(pa.table(raw))
    feeds = {
        "colour": np.array(raw["colour"], dtype=object).reshape(-1, 1),
        "city": np.array(raw["city"], dtype=object).reshape(-1, 1),
        "size": raw["size"].astype(np.float32).reshape(-1, 1),
    }
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    got = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(
        None, feeds
    )[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=seeded.msg("cells"))


class _OwnForward(wxb.nn.Module):
    def __init__(self, seed):
        super().__init__()
        self.a, self.b = Dense(4, 5, seed=seed), Dense(5, 3, seed=seed + 1)

    def forward(self, x):
        return self.b(self.a(x).tanh())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predict_on_no_rows_gives_an_empty_result_as_pytorch(seeded, dtype):
    rng = seeded.rng
    seed = int(rng.integers(1 << 31))
    torch_model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    torch_model = torch_model.to(getattr(torch, dtype))
    from wxb.interop import from_torch

    # (a norm by the batch's own statistics too: PyTorch gives no rows, wxb said it needs 2)
    unplanned = wxb.nn.BatchNorm1d(5, track_running_stats=False, dtype=dtype)
    normed = Sequential(Dense(4, 5, dtype=dtype), unplanned, Dense(5, 3, dtype=dtype))
    models = [from_torch(torch_model), _OwnForward(seed).to(dtype), normed]
    for X in (np.zeros((0, 4), dtype=dtype), np.zeros((0, 4)), np.zeros((0, 4), np.float32)):
        with torch.no_grad():
            want = torch_model(torch.as_tensor(np.asarray(X, dtype=dtype))).numpy()
        for model in models:
            for got in (model.predict(X), model.predict(X, batch_size=1)):
                assert got.shape == want.shape == (0, 3) and got.dtype == want.dtype, seeded.msg(
                    f"{type(model).__name__}: {got.shape} {got.dtype}"
                )
            with wxb.no_grad():
                assert model(np.asarray(X, dtype=dtype)).shape == (0, 3)
    # a width that does not fit is still refused, rows or none
    with pytest.raises(wxb.WxbError, match="4"):
        models[0].predict(np.zeros((0, 7), dtype=dtype))


def test_the_estimators_refuse_no_rows_as_scikit_learn_does(seeded):
    import warnings

    from sklearn.neural_network import MLPClassifier as Reference

    from wxb.sklearn import MLPClassifier

    X = seeded.rng.normal(size=(30, 3))
    y = (X[:, 0] > 0).astype(int)
    for kind in (MLPClassifier, Reference):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = kind(hidden_layer_sizes=(4,), max_iter=3).fit(X, y)
        for method in (model.predict, model.predict_proba):
            with pytest.raises(ValueError, match="0 sample"):
                method(np.zeros((0, 3)))


def test_wxb_predict_on_a_header_alone_writes_the_header_alone(seeded, tmp_path, capsys):
    import io

    import pandas as pd

    from wxb.cli import main

    rng = seeded.rng
    n = 40
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=n),
            "colour": rng.choice(["red", "blue"], size=n),
            "kind": rng.choice(["cat", "dog"], size=n),
        }
    )
    frame.to_csv(tmp_path / "train.csv", index=False)
    model = tmp_path / "m.safetensors"
    argv = ["train", "--data", tmp_path / "train.csv", "--target", "kind", "--hidden", "4"]
    assert main([str(a) for a in [*argv, "--epochs", "2", "-q", "-o", model]]) == 0
    for name, write in [
        ("none.csv", lambda p: frame.drop(columns="kind").iloc[:0].to_csv(p, index=False)),
        ("none.parquet", lambda p: frame.drop(columns="kind").iloc[:0].to_parquet(p)),
        ("bare.csv", lambda p: p.write_text("colour,size")),  # no line break after it
    ]:
        write(tmp_path / name)
        capsys.readouterr()
        for extra in ([], ["--proba"]):
            code = main([str(a) for a in ["predict", model, tmp_path / name, *extra]])
            out = capsys.readouterr()
            assert code == 0, seeded.msg(out.err)
            read = pd.read_csv(io.StringIO(out.out))
            rows = main([str(a) for a in ["predict", model, tmp_path / "train.csv", *extra]])
            assert rows == 0
            full = pd.read_csv(io.StringIO(capsys.readouterr().out))
            assert len(read) == 0 and list(read.columns) == list(full.columns), seeded.msg(name)
    # eval has nothing to score: refused, in one line
    assert main(["eval", str(model), str(tmp_path / "none.csv")]) == 2
    assert "no data rows" in capsys.readouterr().err


OPTIMISERS = [
    ("Adam", {"lr": 0.05, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
    ("Adagrad", {"lr": 0.1}),
]


@pytest.mark.parametrize(("kind", "options"), OPTIMISERS)
def test_writing_the_state_as_pytorch_users_do_takes_effect(seeded, kind, options):
    from wxb import optim
    from wxb.nn import Parameter

    rng = seeded.rng
    arrays = [rng.normal(size=s) for s in ((3, 2), (2,))]
    ours = [Parameter(a.copy()) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    ours_opt = getattr(optim, kind)(ours, **options)
    their_opt = getattr(torch.optim, kind)(theirs, **options)
    at = int(rng.integers(1, 4))
    for step in range(6):
        for p, q in zip(ours, theirs, strict=True):
            g = rng.normal(size=p.shape)
            p.grad, q.grad = g.copy(), torch.tensor(g)
        ours_opt.step()
        their_opt.step()
        if step == at:
            p, q = ours[-1], theirs[-1]
            for key, value in their_opt.state[q].items():
                # PyTorch's names read the same numbers
                np.testing.assert_allclose(np.asarray(ours_opt.state[p][key]), value.numpy())
                if key == "step":
                    their_opt.state[q][key] = torch.tensor(0.0)
                    ours_opt.state[p][key] = 0
                else:  # (RMSprop's centred √(s − ḡ²) needs s ≥ ḡ²)
                    low, high = (-0.1, 0.1) if key == "grad_avg" else (1.0, 2.0)
                    new = rng.uniform(low, high, size=p.shape)
                    their_opt.state[q][key] = torch.tensor(new)
                    ours_opt.state[p][key] = new
        for i, (p, q) in enumerate(zip(ours, theirs, strict=True)):
            np.testing.assert_allclose(
                p.data,
                q.detach().numpy(),
                rtol=1e-10,
                atol=1e-12,
                err_msg=seeded.msg(f"{kind}: written at step {at}; step {step}, #{i}"),
            )


def test_a_state_write_that_would_change_nothing_is_refused(seeded):
    import copy

    from wxb import optim
    from wxb.errors import ConfigError
    from wxb.nn import Parameter

    p = Parameter(seeded.rng.normal(size=3))
    opt = optim.Adam([p])
    assert opt.state[p] == {}  # not stepped: empty, as PyTorch's defaultdict
    p.grad = seeded.rng.normal(size=3)
    opt.step()
    entry = opt.state[p]
    with pytest.raises(ConfigError, match="keeps 'step', 'moment1', 'moment2'"):
        entry["max_exp_avg_sq"] = np.zeros(3)  # (amsgrad's: not kept)
    with pytest.raises(ConfigError, match=r"shape \(3,\)"):
        entry["exp_avg"] = np.zeros(4)
    with pytest.raises(ConfigError, match="whole number"):
        entry["step"] = 1.5
    with pytest.raises(ConfigError, match="cannot be removed"):
        del entry["exp_avg"]
    p.grad = seeded.rng.normal(size=3)
    opt.step()
    assert entry["step"] == 2  # read live, as PyTorch's tensor is
    kept = copy.deepcopy(opt.state[p])
    assert type(kept) is dict and kept["step"] == 2
    kept["moment1"][...] = 7.0
    assert not np.any(opt.state[p]["moment1"] == 7.0)


def test_explain_beside_training_leaves_a_frozen_layer_frozen(seeded):
    """explain and the diagnostics showed ∂L/∂W of frozen layers by setting their
    requires_grad for a while: a backward in another thread meanwhile gave the frozen
    weights a gradient, and its optimiser step moved them."""
    model, X, y = _mlp(seeded.rng)
    frozen = [model[0].weight, model[0].bias]
    for p in frozen:
        p.requires_grad = False
    kept = [p.data.copy() for p in frozen]
    loss = MSELoss()
    opt = wxb.optim.SGD(model.parameters(), lr=0.01)  # (as PyTorch users pass them all)
    shown = wxb.explain(model, X, y, loss="mse").step("dense1.dL/dW").value
    assert np.all(np.isfinite(shown)) and shown.shape == (7, 5)  # still shown
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    done, looks = threading.Event(), []

    def looking():
        while not done.is_set():
            try:
                wxb.explain(model, X, y, loss="mse")
                layer_reports(model, X, y, loss)
            except wxb.TrainingError:  # a step between its forward and backward: refused
                pass
            looks.append(1)

    try:
        thread = threading.Thread(target=looking)
        thread.start()
        steps = 0
        while steps < 100 or (len(looks) < 30 and steps < 20_000):
            opt.zero_grad()
            loss(model(X), y).backward()
            opt.step()
            steps += 1
        done.set()
        thread.join()
    finally:
        done.set()
        sys.setswitchinterval(before)
    for p, data in zip(frozen, kept, strict=True):
        assert np.array_equal(p.data, data) and not p.requires_grad, seeded.msg("moved")


@pytest.mark.parametrize(
    ("kind", "options", "written"),
    [
        ("SGD", {"lr": 0.05, "momentum": 0.9}, ("momentum_buffer",)),
        ("Adam", {"lr": 0.05}, ("step", "exp_avg", "exp_avg_sq")),
    ],
)
def test_state_written_before_the_first_step_is_where_it_starts(seeded, kind, options, written):
    """PyTorch takes a momentum buffer (or Adam's whole entry) set before the first step
    as the state to go on from; wxb's SGD set v = g at its first momentum update over it."""
    from wxb import optim
    from wxb.nn import Parameter

    rng = seeded.rng
    a = rng.normal(size=(4, 3))
    p, q = Parameter(a.copy()), torch.tensor(a, requires_grad=True)
    ours, theirs = getattr(optim, kind)([p], **options), getattr(torch.optim, kind)([q], **options)
    for key in written:
        if key == "step":
            value = int(rng.integers(1, 20))
            ours.state[p][key], theirs.state[q][key] = value, torch.tensor(float(value))
        else:
            value = rng.uniform(0.5, 1.5, size=a.shape)
            ours.state[p][key], theirs.state[q][key] = value, torch.tensor(value)
    for step in range(4):
        g = rng.normal(size=a.shape)
        p.grad, q.grad = g.copy(), torch.tensor(g)
        ours.step()
        theirs.step()
        np.testing.assert_allclose(
            p.data, q.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=seeded.msg(f"{step}")
        )


def test_explain_and_diagnostics_inside_no_grad_show_the_same_gradients(seeded):
    """Called in a no_grad() block (an evaluation loop's), they recorded no graph and
    stopped with 'backward() on a tensor that does not require grad'."""
    from wxb.tensor import is_grad_enabled

    model, X, y = _mlp(seeded.rng)
    expected = _torch_grads(model, X, y)
    with wxb.no_grad():
        shown = wxb.explain(model, X, y, loss="mse", sample_rows=None)
        reports = layer_reports(model, X, y, MSELoss())
        assert not is_grad_enabled()  # (the caller's mode, after them)
        assert "∂L/∂w" in wxb.explain().text()  # the seed's worked example too
    for layer, gw in enumerate(expected[::2], 1):
        value = shown.step(f"dense{layer}.dL/dW").value
        np.testing.assert_allclose(value, gw, rtol=1e-9, atol=1e-12, err_msg=seeded.msg(""))
        norm = reports[layer - 1].weight_grad_norm
        np.testing.assert_allclose(norm, np.linalg.norm(gw), rtol=1e-9, err_msg=seeded.msg(""))
