"""torch's one-input losses fit takes by name ("poisson_nll", "soft_margin",
"multilabel_soft_margin", "hinge_embedding", "multi_margin", "multilabel_margin"), carried
through the rest of the tool as "cross_entropy" or "bce_with_logits" are.

fit recorded none of them ("not recorded by name"): ``wxb.evaluate(model, X, y)`` asked
for ``loss=`` again, a saved model knew neither its loss nor its task, and the commands
guessed from the output's width (a multilabel_soft_margin model predicted one class a
row, a Poisson model's log-rates were written as the counts predicted). fit now records
each by name with its options (log_input, full, eps, margin, p, reduction), its task and
what its outputs are (a Poisson's log link, several labels a row); wxb train takes
multi_margin and soft_margin and refuses the others in one line; wxb eval and wxb predict
read each as trained, or refuse in one line where its outputs give no prediction.

Every figure is compared with torch computing the same loss on the same outputs
(float64: a few roundings of sums of at most a few hundred terms, so 1e-12 relative)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from cli_run import predicted, run

import wxb
import wxb.nn as nn
from wxb.metrics import figure_text

torch = pytest.importorskip("torch")
TF = torch.nn.functional

NAMES = (
    "poisson_nll", "soft_margin", "multilabel_soft_margin", "hinge_embedding", "multi_margin",
    "multilabel_margin",
)  # fmt: skip
KINDS = {
    "poisson_nll": nn.PoissonNLLLoss, "soft_margin": nn.SoftMarginLoss,
    "multilabel_soft_margin": nn.MultiLabelSoftMarginLoss,
    "hinge_embedding": nn.HingeEmbeddingLoss, "multi_margin": nn.MultiMarginLoss,
    "multilabel_margin": nn.MultiLabelMarginLoss,
}  # fmt: skip
TOL = dict(rtol=1e-12, atol=1e-14)


def _options(rng, name: str) -> dict:
    """Options drawn for the loss ``name``, each set or left at torch's default at random."""
    drawn = {"reduction": str(rng.choice(["mean", "sum"]))}
    if name == "poisson_nll":
        drawn.update(log_input=bool(rng.integers(2)), full=bool(rng.integers(2)),
                     eps=float(10 ** rng.uniform(-8, -2)))  # fmt: skip
    elif name == "hinge_embedding":
        drawn["margin"] = float(rng.uniform(0.1, 3))
    elif name == "multi_margin":
        drawn.update(p=int(rng.integers(1, 3)), margin=float(rng.uniform(0.1, 3)))
    return {key: value for key, value in drawn.items() if rng.integers(2)}


def _targets(rng, name: str, rows: int, width: int, options: dict) -> np.ndarray:
    if name == "poisson_nll":
        return rng.poisson(2.0, size=(rows, width)).astype(np.float64)
    if name in ("soft_margin", "hinge_embedding"):
        return rng.choice([-1.0, 1.0], size=(rows, width))
    if name == "multilabel_soft_margin":
        return rng.integers(0, 2, size=(rows, width)).astype(np.float64)
    if name == "multi_margin":
        return rng.integers(0, width, rows)
    y = -np.ones((rows, width), np.int64)  # multilabel_margin: each row's labels, then −1
    for row in y:
        labels = rng.permutation(width)[: int(rng.integers(0, width + 1))]
        row[: len(labels)] = labels
    return y


def _width(rng, name: str) -> int:
    if name in ("multi_margin", "multilabel_margin"):
        return int(rng.integers(2, 5))
    if name == "soft_margin":
        return 1  # (the commands read one logit; several are refused, tested below)
    return int(rng.integers(1, 4))


def _fitted(rng, name: str, rows: int):
    """A float64 model fitted with the loss ``name`` (by name, or as a Loss with options
    drawn), its rows X and targets y, and the options."""
    options = _options(rng, name)
    width, n = _width(rng, name), int(rng.integers(1, 4))
    y = _targets(rng, name, rows, width, options)
    head = [nn.Softplus()] if not options.get("log_input", True) else []  # rates > 0
    model = nn.Sequential(nn.Linear(n, 6), nn.Tanh(), nn.Linear(6, width), *head).to("float64")
    X = rng.normal(size=(rows, n))
    loss = KINDS[name](**options) if options or rng.integers(2) else name
    wxb.fit(model, X, y, loss=loss, epochs=1, batch_size=8, verbose=0)
    return model, X, y, options


def _torch_loss(name: str, out: np.ndarray, y: np.ndarray, options: dict) -> float:
    o, reduction = torch.from_numpy(out), options.get("reduction", "mean")
    t = torch.from_numpy(np.array(y))  # (a copy: a frame's column may be read-only)
    if name == "poisson_nll":
        log_input, full = options.get("log_input", True), options.get("full", False)
        eps = options.get("eps", 1e-8)
        value = TF.poisson_nll_loss(o, t, log_input, full, eps=eps, reduction=reduction)
    elif name == "soft_margin":
        value = TF.soft_margin_loss(o, t, reduction=reduction)
    elif name == "multilabel_soft_margin":
        value = TF.multilabel_soft_margin_loss(o, t, reduction=reduction)
    elif name == "hinge_embedding":
        value = TF.hinge_embedding_loss(o, t, options.get("margin", 1.0), reduction=reduction)
    elif name == "multi_margin":
        value = TF.multi_margin_loss(o, t.long(), options.get("p", 1),
                                     options.get("margin", 1.0), reduction=reduction)  # fmt: skip
    else:
        value = TF.multilabel_margin_loss(o, t.long(), reduction=reduction)
    return float(value)


def _accuracy(name: str, out: np.ndarray, y: np.ndarray) -> float | None:
    """The accuracy as scikit-learn counts it (a row right when each of its labels is)."""
    if name == "multi_margin":
        return float(np.mean(out.argmax(axis=1) == y))
    if name == "soft_margin":
        return float(np.mean(np.where(out > 0, 1.0, -1.0) == y))
    if name == "multilabel_soft_margin":
        return float(np.mean(((out > 0) == (y > 0.5)).all(axis=1)))
    return None


def _recorded(name: str, options: dict, y: np.ndarray) -> dict:
    """What fit should record of the loss in model.info."""
    default = KINDS[name]()
    set_ = {key: value for key, value in options.items() if getattr(default, key) != value}
    record = {"loss": name, "task": "regression" if name in ("poisson_nll", "hinge_embedding")
              else "classification"}  # fmt: skip
    if set_:
        record["loss_options"] = set_
    if name == "poisson_nll" and options.get("log_input", True):
        record["link"] = "log"
    if name in ("multilabel_soft_margin", "multilabel_margin") and y.shape[1] > 1:
        record["multilabel"] = True
    return record


def _record_of(info: dict) -> dict:
    keys = ("loss", "task", "loss_options", "link", "multilabel", "unnamed_loss")
    return {key: info[key] for key in keys if key in info}


@pytest.mark.parametrize("name", NAMES)
def test_fit_records_each_one_input_loss_with_its_options(seeded, name, tmp_path):
    """fit recorded "unnamed_loss" for these losses given by name: evaluate and a second
    fit refused ("not recorded by name"), and a saved model knew no loss or task. Now the
    name, the options set, the task and the outputs' meaning are recorded, kept by the
    safetensors file, and evaluate without loss= scores the loss training applied, as
    torch computes it on the loaded model's outputs (its options included: a margin, p,
    log_input, full, eps, the sum)."""
    rng = seeded.rng
    model, X, y, options = _fitted(rng, name, int(rng.integers(5, 40)))
    msg = lambda what: seeded.msg(f"{what}, fit with {name} {options}")  # noqa: E731
    want = _recorded(name, options, y)
    assert _record_of(model.info) == want, msg("the record")
    path = tmp_path / "model.safetensors"
    wxb.save(model, path)
    loaded = wxb.load(path)
    assert _record_of(loaded.info) == want, msg("the saved model's record")
    out = loaded.predict(X)
    scores = wxb.evaluate(loaded, X, y)  # without loss=: the recorded one
    expected = _torch_loss(name, out, y, options)
    np.testing.assert_allclose(scores["loss"], expected, **TOL, err_msg=msg("evaluate"))
    accuracy = _accuracy(name, out, y)
    assert scores.get("accuracy") == accuracy, msg(f"evaluate's accuracy {scores}")
    wxb.fit(loaded, X, y, epochs=1, batch_size=8, verbose=0)  # without loss=: the recorded one
    assert _record_of(loaded.info) == want, msg("a second fit's record")


def _files(tmp_path, X: np.ndarray, y: np.ndarray) -> tuple:
    """X's columns alone (x0, …), and with the targets (y, or y0, y1, … for several)."""
    features = pd.DataFrame({f"x{k}": X[:, k] for k in range(X.shape[1])})
    x_path, data_path = tmp_path / "x.csv", tmp_path / "data.csv"
    features.to_csv(x_path, index=False)
    y2 = y.reshape(len(y), -1)
    names = ["y"] if y2.shape[1] == 1 else [f"y{k}" for k in range(y2.shape[1])]
    labelled = features.assign(**{n: y2[:, k] for k, n in enumerate(names)})
    labelled.to_csv(data_path, index=False)
    # X as the commands read it back from the file (the reference's outputs are of these)
    X_read = pd.read_csv(x_path).to_numpy(np.float64)
    return x_path, data_path, ",".join(names), X_read


@pytest.mark.parametrize("name", [n for n in NAMES if n != "multilabel_margin"])
def test_wxb_eval_and_predict_read_a_model_fitted_with_each_loss(seeded, name, tmp_path, capsys):
    """wxb predict guessed these models' outputs by their width: a multilabel_soft_margin
    model's three labels were read as three classes (one a row), a Poisson model's
    log-rates were written as the counts it predicts, a soft_margin model's labels were
    0/1, not its −1/+1. Now they are read as trained: several labels a row (σ(z) > ½ each),
    the rate e^x of a log-rate (the output as it is with log_input=False), −1/+1 by the
    sign of the logit (σ(z) its probability), the argmax of multi_margin's scores (no
    --proba: a hinge's scores are no probabilities), hinge_embedding's distances as they
    are. wxb eval scores the recorded loss with its options, as torch computes it, and
    its accuracy, or MSE and R² of the rate predicted; it refuses a multilabel model
    (as it does bce_with_logits's) and hinge_embedding's in one line."""
    rng = seeded.rng
    model, X, y, options = _fitted(rng, name, int(rng.integers(20, 60)))
    msg = lambda what: seeded.msg(f"{what}, fit with {name} {options}")  # noqa: E731
    path = tmp_path / "model.safetensors"
    wxb.save(model, path)
    x_path, data_path, target, X_read = _files(tmp_path, X, y)
    out = wxb.load(path).predict(X_read)
    width = out.shape[1]
    table = predicted(capsys, path, x_path)
    multilabel = name == "multilabel_soft_margin" and width > 1
    if name == "poisson_nll":
        rate = np.exp(out) if options.get("log_input", True) else out
        np.testing.assert_allclose(table.to_numpy(np.float64), rate, **TOL, err_msg=msg("rates"))
    elif name == "hinge_embedding":
        np.testing.assert_allclose(table.to_numpy(np.float64), out, **TOL, err_msg=msg("distances"))
    elif multilabel:
        assert list(table) == [f"prediction_{k}" for k in range(width)], msg(str(list(table)))
        np.testing.assert_array_equal(table.to_numpy(), (out > 0).astype(np.int64), msg("labels"))
    elif name == "multi_margin":
        np.testing.assert_array_equal(table["prediction"], out.argmax(axis=1), msg("classes"))
    else:  # one logit: soft_margin's −1/+1, multilabel_soft_margin's 0/1
        low = -1 if name == "soft_margin" else 0
        np.testing.assert_array_equal(table["prediction"], np.where(out[:, 0] > 0, 1, low),
                                      msg("classes"))  # fmt: skip
        proba = predicted(capsys, path, x_path, "--proba")
        assert list(proba) == ["prediction", f"p_{low}", "p_1"], msg(str(list(proba)))
        p = 1 / (1 + np.exp(-out[:, 0]))
        np.testing.assert_allclose(proba["p_1"], p, **TOL, err_msg=msg("σ(z)"))
    if name in ("poisson_nll", "hinge_embedding"):
        code, _, err = run(capsys, "predict", path, x_path, "--proba")
        assert code != 0 and "--proba is for classifiers" in err, msg(err)
    if name == "multi_margin":
        code, _, err = run(capsys, "predict", path, x_path, "--proba")
        assert code != 0 and "no probabilities" in err and err.count("\n") == 1, msg(err)
    code, text, err = run(capsys, "eval", path, data_path, "--target", target)
    if multilabel or name == "hinge_embedding":
        assert code != 0 and err.count("\n") == 1, msg(f"eval's refusal: {err}")
        return
    assert code == 0, msg(err)
    loss = _torch_loss(name, out, y, options)
    figures = f"samples; loss {figure_text(loss)}"
    accuracy = _accuracy(name, out, y.reshape(len(y), -1) if name != "multi_margin" else y)
    if accuracy is not None:
        figures += f", accuracy {figure_text(accuracy)}"
    else:  # a Poisson's rate against the counts, as scikit-learn's metrics give them
        from sklearn.metrics import mean_squared_error, r2_score

        rate = np.exp(out) if options.get("log_input", True) else out
        figures += f", mse {figure_text(mean_squared_error(y, rate))}"
        figures += f", r2 {figure_text(r2_score(y, rate))}"
    assert figures in text.splitlines()[0], msg(f"wxb eval said {text.splitlines()[0]!r}")


def test_commands_refuse_what_they_cannot_read_in_one_line(seeded, tmp_path, capsys):
    """A multilabel_margin model's scores rank labels with no threshold saying which are
    predicted, and soft_margin's several outputs are −1/+1 labels of their own: wxb eval
    and wxb predict refuse them in one line (they guessed classes by the width)."""
    rng = seeded.rng
    rows, n, width = int(rng.integers(5, 20)), int(rng.integers(1, 4)), int(rng.integers(2, 5))
    X = rng.normal(size=(rows, n))
    for name, y in (
        ("multilabel_margin", _targets(rng, "multilabel_margin", rows, width, {})),
        ("soft_margin", rng.choice([-1.0, 1.0], size=(rows, width))),
    ):
        model = nn.Sequential(nn.Linear(n, width)).to("float64")
        wxb.fit(model, X, y, loss=name, epochs=1, verbose=0)
        path = tmp_path / f"{name}.safetensors"
        wxb.save(model, path)
        x_path, data_path, target, _ = _files(tmp_path, X, y)
        for argv in (("predict", path, x_path), ("eval", path, data_path, "--target", target)):
            code, out, err = run(capsys, *argv)
            said = seeded.msg(f"wxb {argv[0]} of a {name} model: {err!r}")
            assert code != 0 and not out and err.count("\n") == 1, said
            assert name in err and "model(X)" in err, said


def test_wxb_train_takes_three_of_them_and_refuses_the_others(seeded, tmp_path, capsys):
    """``wxb train --loss`` offered none of torch's losses. It now trains multi_margin
    (class indices), soft_margin (two classes as −1/+1, one logit) and poisson_nll (counts
    as they are, not standardized: the outputs are log-rates, predicted as the rate e^x)
    and records them, so wxb eval and predict read the model as trained; the others are
    refused in one line saying why, as are a negative count and --class-weight, which
    weighs the cross-entropies' classes."""
    rng = seeded.rng
    rows = int(rng.integers(60, 120))
    X = rng.normal(size=(rows, 3))
    labels = np.array(["lo", "mid", "hi"])[np.digitize(X[:, 0] + 0.3 * X[:, 1], [-0.5, 0.5])]
    columns = {"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "k": labels,
               "two": np.where(X[:, 1] > 0, "yes", "no"),
               "cnt": rng.poisson(np.exp(0.5 * X[:, 0]))}  # fmt: skip
    data = tmp_path / "data.csv"
    pd.DataFrame(columns).to_csv(data, index=False)
    frame = pd.read_csv(data)
    for name, target in (("multi_margin", "k"), ("soft_margin", "two"), ("poisson_nll", "cnt")):
        msg = lambda what: seeded.msg(f"wxb train --loss {name}: {what}")  # noqa: E731,B023
        path = tmp_path / f"{name}.safetensors"
        others = [c for c in ("k", "two", "cnt") if c != target]
        code, _, err = run(capsys, "train", "--data", data, "--target", target, "--drop",
                           ",".join(others), "--loss", name, "--hidden", "4", "--epochs", "2",
                           "--dtype", "float64", "-q", "-o", path)  # fmt: skip
        assert code == 0, msg(err)
        model = wxb.load(path)
        task = "regression" if name == "poisson_nll" else "classification"
        assert (model.info["loss"], model.info["task"]) == (name, task), msg(str(model.info))
        table = predicted(capsys, path, data)
        out = model.predict(frame.drop(columns=[target, *others]))
        code, text, err = run(capsys, "eval", path, data, "--target", target)
        assert code == 0, msg(err)
        if name == "poisson_nll":
            assert model.info.get("link") == "log", msg(str(model.info))
            rate, y = np.exp(out), frame[[target]].to_numpy(np.float64)
            np.testing.assert_allclose(table["prediction"], rate[:, 0], **TOL, err_msg=msg("rate"))
            figures = f"loss {figure_text(_torch_loss(name, out, y, {}))}, mse "
            assert figures in text, msg(text)
            continue
        classes = list(model.info["classes"])
        if name == "multi_margin":
            want = np.array(classes, dtype=object)[out.argmax(axis=1)]
        else:  # the first class is −1, the second +1: the sign of the logit
            want = np.where(out[:, 0] > 0, classes[1], classes[0])
        np.testing.assert_array_equal(table["prediction"].astype(str), want.astype(str),
                                      msg("classes"))  # fmt: skip
        index = np.array([classes.index(v) for v in frame[target]])
        y = index if name == "multi_margin" else (2.0 * index - 1).reshape(-1, 1)
        loss = _torch_loss(name, out, y, model.info.get("loss_options", {}))
        assert f"loss {figure_text(loss)}" in text, msg(text)
    for name in ("multilabel_soft_margin", "hinge_embedding", "multilabel_margin"):
        code, _, err = run(capsys, "train", "--data", data, "--target", "a", "--loss", name, "-q")
        said = seeded.msg(f"wxb train --loss {name}: {err!r}")
        assert code != 0 and err.count("\n") == 1 and f"--loss {name}: " in err, said
        assert f"wxb.fit(model, X, y, loss={name!r})" in err, said
    for target, option in (("a", "poisson_nll"), ("k", "--class-weight")):
        argv = ["--loss", "poisson_nll"]  # a negative count
        if target == "k":
            argv = ["--loss", "multi_margin", "--class-weight", "balanced"]
        code, _, err = run(capsys, "train", "--data", data, "--target", target, *argv, "-q")
        assert code != 0 and err.count("\n") == 1 and option in err, seeded.msg(err)


@pytest.mark.parametrize("name", ["poisson_nll", "multilabel_soft_margin", "soft_margin",
                                  "multi_margin"])  # fmt: skip
def test_onnx_export_says_what_the_outputs_are(seeded, name, tmp_path):
    """The ONNX graph gives the network's outputs, as model.predict and PyTorch's forward
    (a Poisson's log-rates); its metadata now names the loss, its options, the task and
    the log link or the labels, which a reader needs to turn them into predictions (it
    named no loss, and a Poisson model no link)."""
    import onnx

    import wxb.onnx

    ort = pytest.importorskip("onnxruntime")
    rng = seeded.rng
    model, X, y, options = _fitted(rng, name, int(rng.integers(5, 30)))
    msg = lambda what: seeded.msg(f"{what}, fit with {name} {options}")  # noqa: E731
    path = wxb.onnx.export(model, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(path))
    got = session.run(None, {session.get_inputs()[0].name: X})[0]
    np.testing.assert_allclose(got, model.predict(X), **TOL, err_msg=msg("onnxruntime"))
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    want = _recorded(name, options, y)
    assert props.get("loss") == name and props.get("task") == want["task"], msg(str(props))
    assert props.get("link") == want.get("link"), msg(str(props))
    assert json.loads(props.get("multilabel", "false")) == want.get("multilabel", False), msg(
        str(props)
    )
    assert json.loads(props.get("loss_options", "{}")) == want.get("loss_options", {}), msg(
        str(props)
    )


@pytest.mark.parametrize("name", NAMES)
def test_explain_and_diagram_name_the_recorded_loss(seeded, name, tmp_path, capsys):
    """wxb explain scored these saved models with a loss guessed from their width (a
    cross-entropy or an MSE of their targets) and wxb diagram --kind graph drew that
    loss's graph; they now take the recorded loss with its options, as explain shows it
    (its repr, margin and p included), its value torch's on the row."""
    rng = seeded.rng
    model, X, y, options = _fitted(rng, name, int(rng.integers(5, 20)))
    msg = lambda what: seeded.msg(f"{what}, fit with {name} {options}")  # noqa: E731
    path = tmp_path / "model.safetensors"
    wxb.save(model, path)
    _, data_path, target, X_read = _files(tmp_path, X, y)
    code, text, err = run(capsys, "explain", path, "--data", data_path, "--target", target)
    assert code == 0, msg(err)
    shown = repr(KINDS[name](**options))
    assert f"{shown} on B = 1" in text, msg(f"explain's loss: {text}")
    first = _torch_loss(name, model.predict(X_read[:1]), y[:1], options)
    assert f"L = {type(KINDS[name]()).__name__}(Ŷ, Y) = {first:.6g}" in text, msg(text)
    code, text, err = run(capsys, "diagram", path, "--kind", "graph")
    assert code == 0 and f"{name}_loss" in text, msg(f"diagram: {err}{text}")
