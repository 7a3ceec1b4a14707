"""wxb.prepare: the data preparation the CLI uses, for fit users too."""

import numpy as np
import pytest

import wxb
from wxb import prepare
from wxb.nn import Dense, Sequential


def test_targets_from_class_names_one_hot_rows_and_numbers(rng):
    names = np.array(["cat", "dog", "emu", "fox"])[: int(rng.integers(2, 5))]
    labels = rng.choice(names, size=int(rng.integers(20, 60)))
    labels[: len(names)] = names  # every class present
    t = prepare.targets(labels)
    assert (t.task, t.loss) == ("classification", "cross_entropy")
    assert [t.classes[i] for i in t.y] == list(labels)  # indices decode to the names
    one_hot = np.eye(len(names))[t.y]
    assert np.array_equal(prepare.targets(one_hot).y, t.y)
    values = rng.normal(size=len(labels))
    r = prepare.targets(values)
    assert (r.task, r.loss, r.y.shape) == ("regression", "mse", (len(labels), 1))
    with pytest.raises(wxb.DataError, match="single class"):
        prepare.targets(np.array(["a"] * 5), task="classification")


def test_unscale_output_folds_the_target_scale_into_the_last_layer(rng):
    n, k = int(rng.integers(2, 6)), int(rng.integers(1, 4))
    model = Sequential(Dense(n, k, dtype="float64", seed=int(rng.integers(1 << 30))))
    X = rng.normal(size=(9, n))
    mean, scale = rng.normal(size=k), rng.uniform(0.5, 3, size=k)
    expected = model.predict(X) * scale + mean
    prepare.unscale_output(model[0], mean, scale)
    assert np.allclose(model.predict(X), expected, rtol=1e-12)


@pytest.mark.parametrize("kind", ["multilabel", "poisson", "multilabel from fit"])
def test_wxb_predict_gives_what_the_estimator_predicts(tmp_path, rng, capsys, kind):
    """Models from wxb.sklearn keep their meaning in the CLI: a multilabel model's 0/1
    label columns, a Poisson regressor's exp(z); wxb eval says it cannot score the
    multilabel ones (a Poisson one it scores as poisson_nll, test_losses52b). A
    multilabel model trained by wxb.fit (which records no label names) had a header of
    two columns over rows of one a label."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from wxb.cli import main
    from wxb.sklearn import MLPClassifier, MLPRegressor

    n, features = int(rng.integers(40, 100)), int(rng.integers(2, 6))
    X = rng.normal(size=(n, features))
    labels = 3 if kind == "multilabel" else int(rng.integers(2, 6))
    if kind.startswith("multilabel"):
        y = (X @ rng.normal(size=(features, labels)) > 0).astype(int)
        est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0)
    else:
        y = rng.poisson(np.exp(X @ rng.normal(scale=0.3, size=features)))
        est = MLPRegressor(hidden_layer_sizes=(8,), loss="poisson", max_iter=20, random_state=0)
    if kind == "multilabel from fit":
        model = wxb.nn.Sequential(wxb.nn.Dense(features, 8), wxb.nn.Tanh())
        model.append(wxb.nn.Dense(8, labels)).to("float64")
        wxb.fit(model, X, y, loss="bce_with_logits", epochs=2, verbose=False)
        probability = 1 / (1 + np.exp(-model.predict(X)))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
        model = est.to_wxb()
        if kind == "multilabel":
            probability = est.predict_proba(X)
    model_path, data = tmp_path / "m.safetensors", tmp_path / "x.npz"
    wxb.save(model, model_path)
    np.savez(data, X=X, y=y)
    assert main(["predict", str(model_path), str(data)]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = np.array([line.split(",") for line in lines[1:]], dtype=float)
    if kind.startswith("multilabel"):
        assert lines[0] == ",".join(f"prediction_{j}" for j in range(labels))
        assert np.array_equal(table, (probability > 0.5).astype(int))
        # --proba: each label's probability, as predict_proba gives it
        assert main(["predict", str(model_path), str(data), "--proba"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].split(",")[labels:] == [f"p_{j}" for j in range(labels)]
        table = np.array([line.split(",") for line in lines[1:]], dtype=float)
        assert table.shape == (n, 2 * labels)
        np.testing.assert_allclose(table[:, labels:], probability, rtol=1e-12)
    else:
        np.testing.assert_allclose(table[:, 0], est.predict(X), rtol=1e-12)
    if kind == "poisson":
        assert main(["eval", str(model_path), str(data)]) == 0
        assert "poisson_deviance" in capsys.readouterr().out
        return
    assert main(["eval", str(model_path), str(data)]) == 2
    assert "does not evaluate" in capsys.readouterr().err


def test_a_probability_head_is_the_last_layer_the_model_runs(rng):
    """A Softmax at the end of a nested Sequential is a head; a model with a forward of
    its own is not looked into (its last layer may not be what it returns)."""
    from wxb.nn import Dense, Sequential, Softmax

    class OwnForward(Sequential):
        def forward(self, x):
            return self.layers[0](x)  # the logits: the Softmax it holds is never run

    info = {"task": "classification", "loss": "cross_entropy", "classes": [0, 1, 2]}
    nested = Sequential(Dense(4, 3), Sequential(Dense(3, 3), Softmax()))
    own = OwnForward(Dense(4, 3), Softmax())
    for model in (nested, own):
        model.info = dict(info)
    assert prepare.probability_head(nested) == "softmax"
    assert prepare.probability_head(own) is None
    out = own.predict(rng.normal(size=(5, 4)))
    np.testing.assert_array_equal(prepare.class_logits(own, out), out)  # logits as they are
    nested.info["loss"] = "mse"
    assert prepare.probability_head(nested) is None


@pytest.mark.parametrize(
    "info,width,expected",
    [
        ({"loss": "bce_with_logits"}, 1, ("classification", "bce_with_logits", [0, 1])),
        ({"task": "classification"}, 1, ("classification", "bce_with_logits", [0, 1])),
        ({"task": "classification"}, 3, ("classification", "cross_entropy", [0, 1, 2])),
        ({"loss": "cross_entropy"}, 3, ("classification", "cross_entropy", [0, 1, 2])),
        ({"loss": "mse"}, 2, ("regression", "mse", [0, 1])),
        ({}, 1, ("regression", "mse", [0])),
    ],
)
def test_a_model_file_saying_only_its_loss_or_only_its_task_is_read_whole(info, width, expected):
    # one output with info {"loss": "bce_with_logits"} read as a regression; with
    # {"task": "classification"} as a softmax over one class
    model = Sequential(Dense(2, width))
    model.info = dict(info)
    assert prepare.model_task(model) == expected
