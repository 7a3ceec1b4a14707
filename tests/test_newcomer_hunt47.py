"""A newcomer's next steps after the README's examples, each a place where wxb's answer
did not say what was wrong or what to do: a model saved under the name of the format
`wxb export` writes, a --loss that picks the task against the target, Keras's
model.compile and model.fit, a PyTorch optimiser's state from before its steps."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_run import FAST, run

import wxb
from wxb.errors import ConfigError


def _table(rng: np.random.Generator, path: Path, labels: bool, capsys) -> Path:
    capsys.readouterr()  # the seed's line, printed by the fixture
    rows = int(rng.integers(40, 90))
    table = pd.DataFrame(rng.normal(size=(rows, 3)).round(3), columns=["a", "b", "c"])
    if labels:
        table["y"] = rng.choice(["setosa", "virginica", "versicolor"], size=rows)
    else:  # every value its own: no classification has so many classes
        table["y"] = table["a"] * 3.0 - table["b"] + rng.normal(size=rows) * 0.1
    table.to_csv(path, index=False)
    return path


def _one_error(code: int, out: str, err: str) -> None:
    assert code == 2 and out == "", out
    assert err.startswith("wxb: error: ") and err.count("\n") == 1, err


def test_a_model_named_onnx_or_an_export_named_safetensors_is_refused(tmp_path, capsys, seeded):
    """`wxb train -o model.onnx` wrote a safetensors model under an ONNX name, which
    onnxruntime then refused ('protobuf parsing failed'), and `wxb export -o
    m.safetensors` ONNX under a model's name, which wxb's readers refused. Both are
    refused before training or exporting, naming the way; that way gives an ONNX
    file whose outputs are the model's."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    rng = seeded.rng
    data = _table(rng, tmp_path / "t.csv", labels=False, capsys=capsys)
    stem = rng.choice(["model", "houses", "my.net"])
    suffix = rng.choice([".onnx", ".ONNX"])
    onnx_named = tmp_path / f"{stem}{suffix}"
    code, out, err = run(capsys, "train", "--data", data, "--target", "y", *FAST, "-o", onnx_named)
    _one_error(code, out, err)
    assert "wxb export" in err and ".safetensors" in err, err
    assert not onnx_named.exists()

    model = tmp_path / f"{stem}.safetensors"
    code, _, err = run(capsys, "train", "--data", data, "--target", "y", *FAST, "-o", model)
    assert code == 0, seeded.msg(err)
    named_model = tmp_path / "exported.safetensors"
    code, out, err = run(capsys, "export", model, "-o", named_model)
    _one_error(code, out, err)
    assert "ONNX" in err and ".onnx" in err, err
    assert not named_model.exists()

    code, _, err = run(capsys, "export", model, "-o", onnx_named)
    assert code == 0, seeded.msg(err)
    X = pd.read_csv(data)[["a", "b", "c"]].to_numpy(np.float32)
    session = ort.InferenceSession(str(onnx_named))
    got = session.run(None, {session.get_inputs()[0].name: X})[0]
    want = wxb.load(model).predict(X)
    # float32 through two implementations of the same three small products: a few ulps
    scale = float(np.abs(want).max()) + 1.0
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * scale, err_msg=seeded.msg(""))


@pytest.mark.parametrize("loss", ["mse", "l1", "huber", "smooth_l1"])
def test_a_regression_loss_on_text_labels_names_the_loss(tmp_path, capsys, seeded, loss):
    """`wxb train --data iris.csv --target species --loss mse` said only "target
    'setosa' is not a number (a regression model needs numeric targets)": no word of
    the --loss that made it a regression. It now names the loss and the way, which
    trains the classifier."""
    data = _table(seeded.rng, tmp_path / "t.csv", labels=True, capsys=capsys)
    model = tmp_path / "m.safetensors"
    argv = ["train", "--data", data, "--target", "y", *FAST, "-o", model]
    code, out, err = run(capsys, *argv, "--loss", loss)
    _one_error(code, out, err)
    assert "is not a number" in err and f"--loss {loss} is a regression loss" in err, err
    assert not model.exists()
    code, out, err = run(capsys, *argv)  # the way it names: --loss left out
    assert code == 0 and "task: classification (3 text labels)" in out, seeded.msg(err)
    # --task regression asked for it: the target's fault alone, as before
    code, out, err = run(capsys, *argv, "--loss", loss, "--task", "regression")
    _one_error(code, out, err)
    assert "--loss" not in err, err


def test_a_classification_loss_on_continuous_targets_names_the_loss(tmp_path, capsys, seeded):
    """`wxb train --data houses.csv --target price --loss cross_entropy` said "(use --task
    regression)", and that way was refused in turn ('--loss cross_entropy is for
    classification'). The hint now says to leave the loss out, which trains the
    regression."""
    rng = seeded.rng
    data = _table(rng, tmp_path / "t.csv", labels=False, capsys=capsys)
    model = tmp_path / "m.safetensors"
    argv = ["train", "--data", data, "--target", "y", *FAST, "-o", model]
    loss = str(rng.choice(["cross_entropy", "bce_with_logits"]))
    code, out, err = run(capsys, *argv, "--loss", loss)
    _one_error(code, out, err)
    assert "is this a regression target?" in err and f"leave --loss {loss} out" in err, err
    code, out, err = run(capsys, *argv)
    assert code == 0 and "task: regression" in out, seeded.msg(err)
    # with --task classification too, --task regression alone would be refused again
    code, out, err = run(capsys, *argv, "--loss", loss, "--task", "classification")
    _one_error(code, out, err)
    assert "--task regression and a regression --loss" in err, err
    code, out, err = run(capsys, *argv, "--task", "regression", "--loss", "mse")
    assert code == 0 and "task: regression (as --task asked)" in out, seeded.msg(err)


@pytest.mark.parametrize("method", ["compile", "fit", "evaluate"])
def test_keras_model_methods_name_wxbs_functions(seeded, method):
    """A Keras user's `model.compile(optimizer="adam", loss=…)` then `model.fit(X, y)`
    met "'Sequential' object has no attribute 'compile'" and nothing more (README:
    "there is no compile or model.fit"). The AttributeError, still one (hasattr is
    False, as duck typing needs), now names wxb.fit and wxb.evaluate; that way trains."""
    from wxb.nn import Dense, ReLU, Sequential

    rng = seeded.rng
    features, classes = int(rng.integers(2, 6)), int(rng.integers(2, 5))
    model = Sequential(Dense(features, 8), ReLU(), Dense(8, classes))
    assert not hasattr(model, method)
    with pytest.raises(AttributeError, match=rf"model\.{method} is Keras's") as info:
        getattr(model, method)
    assert "wxb.fit(model, X, y" in str(info.value) and "wxb.evaluate(model, X, y)" in str(
        info.value
    )
    assert "\n" not in str(info.value)
    X = rng.normal(size=(40, features))
    y = rng.integers(0, classes, size=40)
    history = wxb.fit(model, X, y, loss="cross_entropy", optimizer="adam", epochs=2, verbose=0)
    assert len(history["loss"]) == 2
    assert set(wxb.evaluate(model, X, y)) == {"loss", "accuracy"}


@pytest.mark.parametrize("kind", ["SGD", "Adam", "RMSprop", "Adamax"])
def test_a_pytorch_optimisers_state_before_its_steps_names_optimizer_from_torch(seeded, kind):
    """README: "A PyTorch optimiser's state is refused by load_state_dict, naming
    wxb.interop.optimizer_from_torch". One that had not stepped (an empty state), or
    had stepped only its last layer's parameters (no entry for the others), was refused
    with "state[0]: missing (parameter of shape (3, 4))" instead. Both now name the way,
    and that way's next steps are PyTorch's."""
    torch = pytest.importorskip("torch")
    import wxb.interop

    rng = seeded.rng
    torch.manual_seed(int(rng.integers(1 << 31)))
    n_in, hidden = int(rng.integers(2, 6)), int(rng.integers(2, 6))
    twin = torch.nn.Sequential(
        torch.nn.Linear(n_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2)
    ).double()
    model = wxb.interop.from_torch(twin)
    lr = float(rng.uniform(0.01, 0.1))
    topt = getattr(torch.optim, kind)(twin.parameters(), lr=lr)
    opt = getattr(wxb.optim, kind)(model.parameters(), lr=lr)
    before = opt.state_dict()
    for partial in (False, True):
        if partial:  # the last layer alone has a gradient: the others have no entry
            twin[2](torch.tensor(rng.normal(size=(3, hidden)))).sum().backward()
            topt.step()
            model.load_state_dict(twin.state_dict())
        with pytest.raises(ConfigError) as info:
            opt.load_state_dict(topt.state_dict())
        message = str(info.value)
        assert "optimizer_from_torch" in message and "\n" not in message, message
        assert "missing" not in message, message
        assert opt.state_dict()["state"][0]["step"] == before["state"][0]["step"]
    wxb.interop.optimizer_from_torch(topt, opt)  # the way named
    x = rng.normal(size=(8, n_in))
    for _ in range(2):
        topt.zero_grad()
        opt.zero_grad()
        (twin(torch.tensor(x)) ** 2).sum().backward()
        (model(wxb.tensor(x, dtype="float64")) ** 2).sum().backward()
        topt.step()
        opt.step()
    for (name, theirs), ours in zip(twin.state_dict().items(), model.parameters(), strict=True):
        # float64 through the same few updates: rounding only
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("source", ["DataLoader", "TensorDataset", "generator"])
def test_a_dataloader_given_as_x_names_the_way(seeded, source):
    """A PyTorch user's `wxb.fit(model, loader, y)` (and `model.predict(loader)`,
    `wxb.evaluate(model, loader, y)`) said "X must hold numbers; it holds object values
    (e.g. <torch.utils.data.dataloader.DataLoader object at 0x…>)", and a Dataset "X is
    not a rectangular array: … inhomogeneous shape": neither says to give the arrays.
    Each now says what X is and the way, which trains as the arrays do."""
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, TensorDataset

    from wxb.errors import DataError
    from wxb.nn import Dense, ReLU, Sequential

    rng = seeded.rng
    n, features = int(rng.integers(10, 40)), int(rng.integers(2, 6))
    X, y = rng.normal(size=(n, features)), rng.integers(0, 3, size=n)
    data = TensorDataset(torch.tensor(X, dtype=torch.float32), torch.tensor(y))
    given = {
        "DataLoader": lambda: DataLoader(data, batch_size=8),
        "TensorDataset": lambda: data,
        "generator": lambda: (row for row in X),
    }[source]
    model = Sequential(Dense(features, 8), ReLU(), Dense(8, 3))
    calls = {
        "fit": lambda: wxb.fit(model, given(), y, epochs=1, verbose=0),
        "evaluate": lambda: wxb.evaluate(model, given(), y),
        "predict": lambda: model.predict(given()),
    }
    for name, call in calls.items():
        with pytest.raises(DataError) as info:
            call()
        message = str(info.value)
        assert message.startswith(f"X is a {type(given()).__name__}, not an array"), name
        assert "wxb.fit(model, X, y, batch_size=" in message and "\n" not in message, message
    wxb.manual_seed(int(rng.integers(1 << 31)))
    twin = Sequential(Dense(features, 8), ReLU(), Dense(8, 3))
    twin.load_state_dict(model.state_dict())
    seed = int(rng.integers(1 << 31))
    wxb.fit(model, *data.tensors, epochs=2, verbose=0, seed=seed)  # the way named
    wxb.fit(twin, X.astype(np.float32), y, epochs=2, verbose=0, seed=seed)
    np.testing.assert_array_equal(model.predict(X), twin.predict(X))  # the same run, bit for bit


def test_a_table_too_wide_for_a_model_fitted_on_arrays_names_its_columns(tmp_path, capsys, seeded):
    """A model fitted in Python on NumPy arrays, saved, then `wxb predict m.safetensors
    data.csv` on a CSV that also holds the target: "data.csv: 5 features but the model
    takes 4", with no word of why five (such a model records no names, so every column
    is read in order). It now names the columns read and the way; that way predicts
    what the model predicts."""
    from wxb.nn import Dense, ReLU, Sequential

    rng = seeded.rng
    capsys.readouterr()
    n, features = int(rng.integers(20, 50)), int(rng.integers(2, 6))
    X, y = rng.normal(size=(n, features)), rng.integers(0, 3, size=n)
    model = Sequential(Dense(features, 8), ReLU(), Dense(8, 3))
    wxb.fit(model, X, y, epochs=2, verbose=0, seed=int(rng.integers(1 << 31)))
    saved = wxb.save(model, tmp_path / "m.safetensors")
    names = [f"f{k}" for k in range(features)]
    table = pd.DataFrame(X, columns=names)
    table.insert(int(rng.integers(features + 1)), "label", y)
    table.to_csv(tmp_path / "all.csv", index=False)
    code, out, err = run(capsys, "predict", saved, tmp_path / "all.csv")
    _one_error(code, out, err)
    assert f"{features + 1} features but the model takes {features}" in err, err
    assert ", ".join(table.columns) in err and "feature columns alone" in err, err
    table.drop(columns="label").to_csv(tmp_path / "x.csv", index=False)  # the way named
    code, out, err = run(capsys, "predict", saved, tmp_path / "x.csv")
    assert code == 0, seeded.msg(err)
    got = pd.read_csv(io.StringIO(out))["prediction"].to_numpy()
    np.testing.assert_array_equal(got, model.predict(X.astype(np.float32)).argmax(axis=1))
    code, out, err = run(capsys, "eval", saved, tmp_path / "all.csv", "--target", "label")
    assert code == 0 and f"{n} samples" in out, seeded.msg(err)
