"""The same work by different paths gives the same numbers: Python and the command line,
a DataFrame's columns in any order, continued training, and what a model file says of
itself. Inputs are drawn fresh each run; every expectation is derived in the test."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pandas as pd
import pytest

import wxb
from wxb.cli import main
from wxb.metrics import count_overlap, figure_text, unpack_fingerprints
from wxb.nn import Dense, ReLU, Sequential, Sigmoid

FAST = ("--hidden", "8", "--epochs", "4", "-q")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def train(capsys, data, target, model, *extra):
    """wxb train with the FAST settings, which must succeed."""
    code, _, err = run(capsys, "train", "--data", data, "--target", target, *FAST, *extra,
                       "-o", model)  # fmt: skip
    assert code == 0, err


def frame(rng, n=120):
    X = rng.normal(size=(n, 3)).round(3)
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["label"] = np.where(X[:, 0] - 2 * X[:, 2] > 0, "up", "down")
    return df


def test_evaluate_and_explain_take_a_dataframes_columns_by_name(rng):
    # they took them by position: evaluate(df[c, b, a]) gave another loss, silently
    df = frame(rng)
    model = Sequential(Dense(3, 8), ReLU(), Dense(8, 2))
    y = (df["label"] == "up").to_numpy().astype(int)
    wxb.fit(model, df[["a", "b", "c"]], y, epochs=3, seed=1, verbose=False)
    reordered = df[["c", "b", "a"]]
    assert wxb.evaluate(model, reordered, y) == wxb.evaluate(model, df[["a", "b", "c"]], y)
    ours = wxb.explain(model, reordered.iloc[:1], y[:1]).step("loss").value
    theirs = wxb.explain(model, df[["a", "b", "c"]].iloc[:1], y[:1]).step("loss").value
    np.testing.assert_array_equal(ours, theirs)


def test_fit_on_a_cli_model_takes_a_dataframe_through_its_table_stage(tmp_path, rng, capsys):
    # by position: fit on df[c, b, a] trained on swapped columns (loss 0.77 for 0.12)
    df = frame(rng)
    df.to_csv(tmp_path / "t.csv", index=False)
    train(capsys, tmp_path / "t.csv", "label", tmp_path / "m.safetensors")
    y = np.searchsorted(wxb.load(tmp_path / "m.safetensors").info["classes"], df["label"])
    losses = []
    for order in (["a", "b", "c"], ["c", "a", "b"]):
        model = wxb.load(tmp_path / "m.safetensors")
        history = wxb.fit(model, df[order], y, epochs=2, seed=3, verbose=False)
        losses.append(history["loss"])
    assert losses[0] == losses[1]


def test_continued_training_drops_test_figures_and_records_its_rows(tmp_path, rng, capsys):
    df = frame(rng)
    df.to_csv(tmp_path / "t.csv", index=False)
    train(capsys, tmp_path / "t.csv", "label", tmp_path / "m.safetensors", "--fingerprint")
    model = wxb.load(tmp_path / "m.safetensors")
    assert "test" in model.info
    new = frame(rng, 40)
    y = np.searchsorted(model.info["classes"], new["label"])
    wxb.fit(model, new[["a", "b", "c"]], y, epochs=1, verbose=False)
    assert "test" not in model.info  # figures of the weights before this fit
    X_new = wxb.columns.rows_for_model(model.info, new[["a", "b", "c"]], np.float32)
    known = unpack_fingerprints(model.info["training_rows"])
    assert count_overlap(known, X_new) == len(new)


def test_a_report_names_a_kept_epoch_only_when_weights_were_restored(tmp_path, rng, capsys):
    df = frame(rng)
    df.to_csv(tmp_path / "t.csv", index=False)
    for patience, restored in (("0", False), ("2", True)):
        history = tmp_path / f"h{patience}.json"
        code, out, err = run(
            capsys, "train", "--data", tmp_path / "t.csv", "--target", "label", "--hidden", "8",
            "--epochs", "30", "--patience", patience, "--history", history,
            "-o", tmp_path / "m.safetensors", "--report", tmp_path / "r.html",
        )  # fmt: skip
        assert code == 0, err
        record = json.loads(history.read_text())
        page = (tmp_path / "r.html").read_text()
        epochs = len(record["history"]["loss"])
        kept = record["kept_epoch"]
        if not restored:  # no early stopping: the last epoch's weights, whatever was best
            assert kept is None and "the model kept is epoch" not in page
        elif kept != epochs:
            assert f"kept the best, epoch {kept})" in out
            assert f"the model kept is epoch {kept}'s" in page


def test_eval_pairs_a_multi_output_models_outputs_with_its_own_targets(tmp_path, rng, capsys):
    n = 120
    X = rng.normal(size=(n, 3)).round(3)
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["y1"], df["y2"] = (X @ [1.0, 2.0, 0.0]).round(3), (100 * X[:, 2]).round(3)
    df.to_csv(tmp_path / "t.csv", index=False)
    train(capsys, tmp_path / "t.csv", "y1,y2", tmp_path / "m.safetensors")
    m = tmp_path / "m.safetensors"
    _, plain, _ = run(capsys, "eval", m, tmp_path / "t.csv")
    code, swapped, err = run(capsys, "eval", m, tmp_path / "t.csv", "--target", "y2,y1")
    assert code == 0 and swapped == plain, err
    code, _, err = run(capsys, "eval", m, tmp_path / "t.csv", "--target", "y1")
    assert code == 2 and "predicts 2 targets (y1, y2)" in err
    # other names pair by position: a copy of y2 under another name, in y2's place
    df["y2_copy"] = df["y2"]
    df.to_csv(tmp_path / "copy.csv", index=False)
    code, renamed, err = run(capsys, "eval", m, tmp_path / "copy.csv", "--target", "y1,y2_copy")
    expected = plain.replace("y2:", "y2_copy:").replace("/t.csv", "/copy.csv")
    assert code == 0 and renamed == expected, err
    # one of the model's own names out of its place scored y2's output against y1's column
    code, out, err = run(capsys, "eval", m, tmp_path / "copy.csv", "--target", "y2_copy,y1")
    assert code == 2 and not out
    assert err.strip().count("\n") == 0 and "'y1' as output 2" in err and "output 1 of 2" in err


def test_eval_names_each_outputs_figures_and_shows_a_tiny_error(tmp_path, rng, capsys):
    # the lines said "output 0/1" in the model's order whatever --target's order, and an
    # MSE of 7e-9 printed as 0.0000
    n = 160
    X = rng.normal(size=(n, 3)).round(3)
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["small"] = 1e-4 * (X[:, 0] + rng.normal(scale=0.5, size=n))
    df["big"] = 1e6 * (X[:, 2] + rng.normal(scale=0.5, size=n))
    df.to_csv(tmp_path / "t.csv", index=False)
    train(capsys, tmp_path / "t.csv", "big,small", tmp_path / "m.safetensors")
    code, out, err = run(capsys, "eval", tmp_path / "m.safetensors", tmp_path / "t.csv",
                         "--target", "small,big")  # fmt: skip
    assert code == 0, err
    model = wxb.load(tmp_path / "m.safetensors")
    z = model.predict(df[["a", "b", "c"]]).astype(np.float64)
    for k, name in enumerate(model.info["targets"]):
        y = df[name].to_numpy()
        r2 = 1 - ((y - z[:, k]) ** 2).sum() / ((y - y.mean()) ** 2).sum()
        assert f"  {name}: MAE {np.abs(y - z[:, k]).mean():.4g}" in out
        assert f"R² {figure_text(r2)}" in out.split(f"  {name}: ")[1].splitlines()[0]
    # one output, a tiny scale: the MSE in significant digits
    train(capsys, tmp_path / "t.csv", "small", tmp_path / "s.safetensors")
    code, out, err = run(capsys, "eval", tmp_path / "s.safetensors", tmp_path / "t.csv",
                         "--target", "small")  # fmt: skip
    assert code == 0, err
    small = wxb.load(tmp_path / "s.safetensors")
    y = df["small"].to_numpy()
    guess = small.predict(df.drop(columns="small")).astype(np.float64)[:, 0]  # big: a feature
    mse = np.mean((y - guess) ** 2)
    assert mse < 1e-6 and f"mse {mse:.4g}" in out.splitlines()[0]


def test_predict_and_eval_pick_the_same_class_for_a_logit_that_rounds_sigma_to_half(
    tmp_path, rng, capsys
):
    model = Sequential(Dense(1, 1))
    model[0].weight.data[...] = 1e-8  # z of 1e-8: σ(z) is exactly ½ in float32
    model[0].bias.data[...] = 0.0
    model.info = {"task": "classification", "classes": ["no", "yes"], "loss": "bce_with_logits",
                  "feature_names": ["x0"], "target": "label"}  # fmt: skip
    wxb.save(model, tmp_path / "m.safetensors")
    x = rng.uniform(0.5, 2.0, 5)
    pd.DataFrame({"x0": x, "label": "yes"}).to_csv(tmp_path / "d.csv", index=False)
    code, out, err = run(capsys, "predict", tmp_path / "m.safetensors", tmp_path / "d.csv")
    assert code == 0, err
    assert set(pd.read_csv(io.StringIO(out)).prediction) == {"yes"}
    code, out, err = run(capsys, "eval", tmp_path / "m.safetensors", tmp_path / "d.csv")
    assert code == 0 and "accuracy 1.0000" in out, err


def test_eval_of_a_model_fitted_on_arrays_leaves_the_named_target_out(tmp_path, rng, capsys):
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    model = Sequential(Dense(3, 2))
    wxb.fit(model, X, y, epochs=2, verbose=False)
    wxb.save(model, tmp_path / "m.safetensors")
    df = pd.DataFrame(X, columns=["p", "q", "r"]).assign(target=y)
    df.to_csv(tmp_path / "d.csv", index=False)
    code, out, err = run(capsys, "eval", tmp_path / "m.safetensors", tmp_path / "d.csv",
                         "--target", "target")  # fmt: skip
    assert code == 0, err
    by_hand = np.mean(model.predict(X.astype(np.float32)).argmax(axis=1) == y)
    assert f"accuracy {by_hand:.4f}" in out


class OwnLoss(wxb.nn.Loss):
    """A loss of one's own (not a stock loss's subclass): fit records nothing of it."""

    def __call__(self, output, target):
        return ((output - target) ** 2).mean()


def test_fit_records_a_stock_losss_subclass_as_that_loss(rng):
    # a later fit with MyLoss(MSELoss) left the earlier fit's BCE record: scored as classes
    X = rng.normal(size=(40, 3))
    model = Sequential(Dense(3, 4), ReLU(), Dense(4, 1))
    y = (X[:, :1] > 0).astype(float)
    wxb.fit(model, X, y, loss="bce_with_logits", epochs=1, verbose=False)
    assert (model.info["task"], model.info["loss"]) == ("classification", "bce_with_logits")
    wxb.fit(model, X, X[:, :1], loss=type("MyMSE", (wxb.nn.MSELoss,), {})(), epochs=1,
            verbose=False)  # fmt: skip
    assert (model.info["task"], model.info["loss"]) == ("regression", "mse")
    wxb.fit(model, X, X[:, :1], loss=OwnLoss(), epochs=1, verbose=False)
    assert (model.info["task"], model.info["loss"]) == ("regression", "mse")  # as it was


@pytest.mark.parametrize("loss", ["bce_with_logits", "mse", "own"])
def test_eval_reads_a_model_fitted_in_python_as_its_loss_trained_it(tmp_path, rng, capsys, loss):
    # one output trained with BCE was scored as a regression (R² of logits against 0/1),
    # and two outputs trained with MSE were refused as "class labels"
    n = 150
    X = rng.normal(size=(n, 3))
    if loss == "mse":
        y = np.column_stack([X @ rng.normal(size=3), X[:, 0] - X[:, 1]])
        model = Sequential(Dense(3, 8), ReLU(), Dense(8, 2))
        fitted_with = loss
    else:
        y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.float64)[:, None]
        model = Sequential(Dense(3, 8), ReLU(), Dense(8, 1))
        fitted_with = loss if loss != "own" else OwnLoss()
    wxb.fit(model, X, y, loss=fitted_with, epochs=3, seed=1, verbose=False)
    wxb.save(model, tmp_path / "m.safetensors")
    names = [f"t{j}" for j in range(y.shape[1])]
    df = pd.DataFrame(X, columns=["p", "q", "r"])
    df[names] = y
    df.to_csv(tmp_path / "d.csv", index=False)
    code, out, err = run(capsys, "eval", tmp_path / "m.safetensors", tmp_path / "d.csv",
                         "--target", ",".join(names))  # fmt: skip
    assert code == 0, err
    z = model.predict(X.astype(np.float32)).astype(np.float64)
    if loss == "bce_with_logits":
        by_hand = np.mean((z[:, 0] > 0) == (y[:, 0] == 1))
        assert f"accuracy {by_hand:.4f}" in out.splitlines()[0]
    elif loss == "mse":
        r2 = 1 - ((y - z) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)
        assert f"R² {figure_text(r2.mean())}" in out  # computed here, printed as eval prints
    else:  # a loss of its own: nothing recorded, the documented guess stands
        assert "task" not in model.info and "loss" not in model.info
        assert "R²" in out


def test_eval_reads_text_classes_that_look_like_numbers_as_text(tmp_path, rng, capsys):
    # an eval file holding only the codes '007' and '010' was read as numbers: '7' refused
    n = 240
    X = rng.normal(size=(n, 2)).round(3)
    codes = np.array(["007", "010", "A1"])[np.digitize(X[:, 0], [-0.4, 0.4])]
    df = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "code": codes})
    df.to_csv(tmp_path / "t.csv", index=False)
    train(capsys, tmp_path / "t.csv", "code", tmp_path / "m.safetensors")
    some = df[df.code != "A1"].copy()
    some.loc[some.index[0], "code"] = "NA"  # a missing target: dropped, never a class
    some.to_csv(tmp_path / "e.csv", index=False)
    code, out, err = run(capsys, "eval", tmp_path / "m.safetensors", tmp_path / "e.csv")
    assert code == 0, err
    model = wxb.load(tmp_path / "m.safetensors")
    kept = some.iloc[1:]
    guessed = np.array(model.info["classes"])[model.predict(kept[["a", "b"]]).argmax(axis=1)]
    assert f"{len(kept)} samples" in out
    assert f"accuracy {np.mean(guessed == kept.code.to_numpy()):.4f}" in out


@pytest.mark.parametrize("spelling", [("true", "false"), ("TRUE", "FALSE"), ("True", "False")])
def test_eval_reads_a_boolean_target_in_any_spelling(tmp_path, rng, capsys, spelling):
    # classes stored as 'False'/'True' made eval read the column as text: 'true' refused
    X = rng.normal(size=(120, 2)).round(3)
    truth = X[:, 0] + 0.3 * rng.normal(size=120) > 0
    df = pd.DataFrame(X, columns=["a", "b"]).assign(y=np.where(truth, *spelling))
    df.to_csv(tmp_path / "t.csv", index=False)
    train(capsys, tmp_path / "t.csv", "y", tmp_path / "m.safetensors")
    model = wxb.load(tmp_path / "m.safetensors")
    assert model.info["classes"] == ["False", "True"]
    for other in [("true", "false"), ("TRUE", "FALSE"), ("True", "False")]:
        df.assign(y=np.where(truth, *other)).to_csv(tmp_path / "e.csv", index=False)
        code, out, err = run(capsys, "eval", tmp_path / "m.safetensors", tmp_path / "e.csv")
        assert code == 0, err
        guessed = model.predict(df[["a", "b"]]).argmax(axis=1) == 1
        assert f"accuracy {np.mean(guessed == truth):.4f}" in out.splitlines()[0]


def test_eval_of_scikit_learns_float_classes(tmp_path, rng, capsys):
    # classes 1.0, 2.0, 3.0 (scikit-learn keeps y's float dtype) were looked up as '1.0'
    # while the file's labels read as '2': every row refused
    from sklearn.neural_network import MLPClassifier

    from wxb.interop import from_sklearn

    X = rng.normal(size=(150, 3))
    y = np.array([1.0, 2.0, 3.0])[np.digitize(X[:, 0], [-0.4, 0.4])]
    theirs = MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged in 300 iterations: no matter here
        theirs.fit(pd.DataFrame(X, columns=["x0", "x1", "x2"]), y)
    wxb.save(from_sklearn(theirs), tmp_path / "m.safetensors")
    pd.DataFrame(X, columns=["x0", "x1", "x2"]).assign(y=y).to_csv(tmp_path / "d.csv", index=False)
    code, out, err = run(capsys, "eval", tmp_path / "m.safetensors", tmp_path / "d.csv",
                         "--target", "y")  # fmt: skip
    assert code == 0, err
    assert f"accuracy {theirs.score(pd.DataFrame(X, columns=['x0', 'x1', 'x2']), y):.4f}" in out


def test_a_sigmoid_headed_model_saved_without_info_is_scored_as_probabilities(
    tmp_path, rng, capsys
):
    # the README says so; it was scored as a regression (R² of p against 0/1) and
    # predict --proba refused it as "a regression model"
    X = rng.normal(size=(90, 3))
    y = (X[:, 0] - X[:, 2] > 0).astype(int)
    model = Sequential(Dense(3, 6), ReLU(), Dense(6, 1), Sigmoid())
    assert model.info == {}
    wxb.save(model, tmp_path / "m.safetensors")
    pd.DataFrame(X, columns=["p", "q", "r"]).assign(y=y).to_csv(tmp_path / "d.csv", index=False)
    code, out, err = run(capsys, "eval", tmp_path / "m.safetensors", tmp_path / "d.csv",
                         "--target", "y")  # fmt: skip
    assert code == 0, err
    p = model.predict(X.astype(np.float32)).astype(np.float64)[:, 0]
    log_loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    first = out.splitlines()[0]
    assert f"loss {log_loss:.4f}" in first and f"accuracy {np.mean((p > 0.5) == y):.4f}" in first
    pd.DataFrame(X, columns=["p", "q", "r"]).to_csv(tmp_path / "x.csv", index=False)
    code, out, err = run(capsys, "predict", tmp_path / "m.safetensors", tmp_path / "x.csv",
                         "--proba")  # fmt: skip
    assert code == 0, err
    shown = pd.read_csv(io.StringIO(out))
    np.testing.assert_allclose(shown.filter(like="1").to_numpy()[:, -1], p, rtol=1e-5)


def test_a_regressions_history_says_its_loss_is_on_standardized_targets(tmp_path, rng, capsys):
    # val_loss 0.30 beside an eval mse of 1.3e12, with nothing to say why
    X = rng.normal(size=(120, 3)).round(3)
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["y"] = 1e6 * (X[:, 0] + rng.normal(scale=0.3, size=120))
    df["k"] = np.where(X[:, 1] > 0, "up", "down")
    df.to_csv(tmp_path / "t.csv", index=False)
    notes = {}
    for target, drop in (("y", "k"), ("k", "y")):
        model, history = tmp_path / f"{target}.safetensors", tmp_path / f"{target}.json"
        train(capsys, tmp_path / "t.csv", target, model, "--history", history, "--drop", drop)
        notes[target] = json.loads(history.read_text()).get("loss_note")
    assert "standardized targets" in notes["y"] and notes["k"] is None
    code, _, err = run(capsys, "report", tmp_path / "y.safetensors", "--history",
                       tmp_path / "y.json", "-o", tmp_path / "y.html")  # fmt: skip
    assert code == 0, err
    assert "standardized targets" in (tmp_path / "y.html").read_text(encoding="utf-8")


def test_a_sigmoid_heads_classes_follow_p(tmp_path, rng):
    # (the probability head path of the same rule: p > ½)
    model = Sequential(Dense(2, 1), Sigmoid())
    model.info = {"task": "classification", "classes": [0, 1], "loss": "bce_with_logits"}
    from wxb.prepare import prediction_table

    out = model.predict(rng.normal(size=(20, 2)).astype(np.float32))
    _, columns = prediction_table(model, out, proba=False)
    np.testing.assert_array_equal(columns[0].astype(int), (out[:, 0] > 0.5).astype(int))


@pytest.mark.parametrize("head", ["sigmoid", "softmax"])
def test_a_probability_heads_class_is_the_same_in_predict_and_eval(tmp_path, rng, capsys, head):
    # a z of 1e-9 gives p of exactly ½: eval's accuracy took z's side, predict p's
    from wxb.nn import Softmax

    if head == "sigmoid":
        model = Sequential(Dense(1, 1), Sigmoid())
        model[0].weight.data[...] = 1e-9
        loss = "bce_with_logits"
    else:
        model = Sequential(Dense(1, 2), Softmax())
        model[0].weight.data[...] = [[0.0], [1e-9]]
        loss = "cross_entropy"
    model[0].bias.data[...] = 0.0
    model.info = {"task": "classification", "classes": ["neg", "pos"], "loss": loss,
                  "feature_names": ["x0"], "target": "label"}  # fmt: skip
    wxb.save(model, tmp_path / "m.safetensors")
    label = rng.choice(["neg", "pos"], 6)
    pd.DataFrame({"x0": rng.uniform(0.5, 1.0, 6), "label": label}).to_csv(
        tmp_path / "d.csv", index=False
    )
    code, out, err = run(capsys, "predict", tmp_path / "m.safetensors", tmp_path / "d.csv")
    assert code == 0, err
    guessed = pd.read_csv(io.StringIO(out)).prediction.to_numpy()
    code, out, err = run(capsys, "eval", tmp_path / "m.safetensors", tmp_path / "d.csv")
    assert code == 0, err
    assert f"accuracy {np.mean(guessed == label):.4f}" in out.splitlines()[0]
