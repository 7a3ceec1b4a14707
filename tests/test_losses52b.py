"""Follow-ups of fit recording torch's one-input losses by name (test_losses52.py).

- A scikit-learn Poisson MLPRegressor's model (recorded loss "poisson", a log link) was
  refused by ``wxb.evaluate`` and ``wxb eval``: it is scored as torch's poisson_nll of its
  log-rates, and ``wxb eval`` says so and gives scikit-learn's mean_poisson_deviance too.
- fit warned of a Sigmoid head before bce_with_logits, not before soft_margin and
  multilabel_soft_margin, which take logits too.
- wxb report's "Loss" row gave the name alone, without the options training applied.
- Class weights were not recorded: evaluate (and a second fit) without loss= applied none
  without a word; fit records their values now (a file from before is warned of).

Figures are compared with torch or scikit-learn on the same outputs in float64 (sums of
at most a few hundred terms: 1e-12 relative)."""

from __future__ import annotations

import html
import io
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from cli_run import run

import wxb
import wxb.nn as nn
from wxb.metrics import figure_text
from wxb.reporting import report_html

torch = pytest.importorskip("torch")
TF = torch.nn.functional
TOL = dict(rtol=1e-12, atol=1e-14)


def _caught(call):
    """call()'s result and the messages of the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


# -- 1. scikit-learn's Poisson regressor ------------------------------------------------
def test_a_scikit_learn_poisson_model_is_scored_as_poisson_nll(seeded, tmp_path, capsys):
    """wxb.evaluate and wxb eval refused wxb.sklearn's MLPRegressor(loss="poisson") model
    ("which wxb's losses do not include", "does not evaluate a scikit-learn Poisson model
    yet"), and wxb explain and wxb diagram --kind graph stopped at its name. Its outputs
    are log-rates x and its loss, half the Poisson deviance, is torch's poisson_nll_loss
    e^x − y·x plus y·log y − y, a term of the targets alone: evaluate and explain give
    torch's, wxb eval gives it and scikit-learn's mean_poisson_deviance and says which is
    which."""
    from sklearn.metrics import mean_poisson_deviance

    from wxb.sklearn import MLPRegressor

    rng = seeded.rng
    rows, n = int(rng.integers(30, 80)), int(rng.integers(1, 4))
    X = rng.normal(size=(rows, n))
    y = rng.poisson(np.exp(0.5 * X[:, 0]) + float(rng.uniform(0, 2))).astype(np.float64)
    est = MLPRegressor(loss="poisson", hidden_layer_sizes=(int(rng.integers(2, 6)),),
                       max_iter=int(rng.integers(1, 20)), random_state=int(rng.integers(1000)),
                       dtype="float64")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (its ConvergenceWarning)
        est.fit(X, y)
    model = est.to_wxb()
    path = tmp_path / "poisson.safetensors"
    wxb.save(model, path)
    loaded = wxb.load(path)
    assert loaded.info["loss"] == "poisson", seeded.msg(str(loaded.info))
    x = loaded.predict(X)[:, 0].astype(np.float64)  # the log-rates
    want = float(TF.poisson_nll_loss(torch.from_numpy(x), torch.from_numpy(y)))
    scores, said = _caught(lambda: wxb.evaluate(loaded, X, y))
    assert said == [], seeded.msg(str(said))
    np.testing.assert_allclose(scores["loss"], want, **TOL, err_msg=seeded.msg("evaluate"))
    # the note's claim: plus y·log y − y, half scikit-learn's deviance of the rates
    rate = est.predict(X)
    np.testing.assert_allclose(rate, np.exp(x), **TOL, err_msg=seeded.msg("the rates"))
    term = np.mean(np.where(y > 0, y * np.log(np.where(y > 0, y, 1)), 0) - y)
    deviance = mean_poisson_deviance(y, rate)
    np.testing.assert_allclose(scores["loss"] + term, deviance / 2, rtol=1e-10,
                               err_msg=seeded.msg("the term of the targets"))  # fmt: skip

    columns = {f"x{k}": X[:, k] for k in range(n)}
    data = tmp_path / "data.csv"
    pd.DataFrame({**columns, "y": y}).to_csv(data, index=False)
    code, text, err = run(capsys, "eval", path, data, "--target", "y")
    assert code == 0, seeded.msg(err)
    lines = text.splitlines()
    first = f"loss {figure_text(want)}, mse "
    assert first in lines[0], seeded.msg(lines[0])
    assert f"poisson_deviance {figure_text(deviance)}" in lines[0], seeded.msg(lines[0])
    assert "torch's poisson_nll_loss" in lines[1], seeded.msg(lines[1])
    assert "scikit-learn's mean_poisson_deviance" in lines[1], seeded.msg(lines[1])
    # explain and diagram stopped at get_loss("poisson") ("loss must be one of …")
    code, text, err = run(capsys, "explain", path, "--data", data, "--target", "y")
    assert code == 0, seeded.msg(err)
    first = float(TF.poisson_nll_loss(torch.from_numpy(x[:1]), torch.from_numpy(y[:1])))
    assert f"L = PoissonNLLLoss(Ŷ, Y) = {first:.6g}" in text, seeded.msg(text)
    code, text, err = run(capsys, "diagram", path, "--kind", "graph")
    assert code == 0 and "poisson_nll_loss" in text, seeded.msg(f"diagram: {err}{text}")


# -- 2. a Sigmoid head before a loss that takes logits ----------------------------------
@pytest.mark.parametrize("name", ["soft_margin", "multilabel_soft_margin"])
def test_fit_warns_of_a_sigmoid_head_before_soft_margin_losses(seeded, name):
    """soft_margin's log(1 + e^(−y·x)) is −log σ(y·x), and multilabel_soft_margin takes
    each label's logit: after a Sigmoid head they train through it twice, as
    bce_with_logits does, of which fit warned alone. The same warning now (test_fit's
    words: "trains through sigmoid twice" and the loss's class); none without the head."""
    rng = seeded.rng
    rows, n = int(rng.integers(20, 50)), int(rng.integers(1, 4))
    width = 1 if name == "soft_margin" else int(rng.integers(1, 4))
    X = rng.normal(size=(rows, n))
    if name == "soft_margin":
        y = rng.choice([-1.0, 1.0], size=(rows, 1))
    else:
        y = rng.integers(0, 2, size=(rows, width)).astype(np.float64)
    kind = {"soft_margin": nn.SoftMarginLoss, "multilabel_soft_margin": nn.MultiLabelSoftMarginLoss}
    loss = name if rng.integers(2) else kind[name]()
    tail = [[], [nn.Identity()], [nn.Dropout(0.2)]][int(rng.integers(0, 3))]

    def twice(layers):
        model = nn.Sequential(*layers).to("float64")
        _, said = _caught(lambda: wxb.fit(model, X, y, loss=loss, epochs=1, verbose=0))
        return [m for m in said if "twice" in m]

    body = [nn.Linear(n, 5), nn.Tanh(), nn.Linear(5, width)]
    messages = twice([*body, nn.Sigmoid(), *tail])
    msg = seeded.msg(f"{name} ({loss!r}), tail {tail}: {messages}")
    assert len(messages) == 1, msg
    assert "trains through sigmoid twice" in messages[0], msg
    assert kind[name].__name__ in messages[0] and "BCELoss()" in messages[0], msg
    # BCELoss takes 0/1 targets: soft_margin's −1/+1 are said to be mapped
    assert ("(y + 1)/2" in messages[0]) == (name == "soft_margin"), msg
    assert twice(body) == [], seeded.msg(f"{name} without a Sigmoid head")


# -- 3. wxb report's Loss row -------------------------------------------------------------
def _loss_row(page: str) -> str:
    found = re.search(r"<tr><th>Loss</th><td>(.*?)</td></tr>", page)
    assert found, "the page has no Loss row"
    return html.unescape(found.group(1))


CASES = {
    "multi_margin": lambda rng: nn.MultiMarginLoss(p=int(rng.integers(1, 3)),
                                                   margin=float(rng.uniform(0.1, 3))),
    "hinge_embedding": lambda rng: nn.HingeEmbeddingLoss(margin=float(rng.uniform(0.1, 3))),
    "poisson_nll": lambda rng: nn.PoissonNLLLoss(log_input=True, full=True,
                                                 eps=float(10 ** rng.uniform(-8, -2))),
    "huber": lambda rng: nn.HuberLoss(delta=float(rng.uniform(0.1, 3))),
    "cross_entropy": lambda rng: nn.CrossEntropyLoss(label_smoothing=float(rng.uniform(0.05, 0.5))),
    "soft_margin": lambda rng: nn.SoftMarginLoss(reduction="sum"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_report_shows_the_loss_with_its_recorded_options(seeded, name):
    """The report's Loss row said "multi_margin" for MultiMarginLoss(p=2, margin=0.5),
    where its walk-through shows the loss with those options: the row now shows them as
    the walk-through does (the loss's repr), and the name alone for a loss without."""
    rng = seeded.rng
    rows, n = int(rng.integers(10, 30)), int(rng.integers(1, 4))
    width = int(rng.integers(2, 4)) if name in ("multi_margin", "cross_entropy") else 1
    X = rng.normal(size=(rows, n))
    if name in ("multi_margin", "cross_entropy"):
        y = rng.integers(0, width, rows)
    elif name in ("soft_margin", "hinge_embedding"):
        y = rng.choice([-1.0, 1.0], size=(rows, 1))
    elif name == "poisson_nll":
        y = rng.poisson(2.0, size=(rows, 1)).astype(np.float64)
    else:
        y = rng.normal(size=(rows, 1))
    model = nn.Sequential(nn.Linear(n, 4), nn.Tanh(), nn.Linear(4, width)).to("float64")
    loss = CASES[name](rng)
    wxb.fit(model, X, y, loss=loss, epochs=1, batch_size=8, verbose=0)
    page = report_html(model, None, X, y, gemm_rate=1e10)
    row = _loss_row(page)
    assert row == f"{name}: {loss!r}", seeded.msg(f"the row {row!r} for {loss!r}")
    assert f"{loss!r} on B = 1" in page.replace("&#x27;", "'"), seeded.msg("the walk-through")
    plain = nn.Sequential(nn.Linear(n, width)).to("float64")
    wxb.fit(plain, X, y, loss=name, epochs=1, verbose=0)
    assert _loss_row(report_html(plain, None, X, y, gemm_rate=1e10)) == name, seeded.msg(name)


# -- 4. class weights, which fit records --------------------------------------------------
def _weighted(rng, name: str, width: int) -> tuple:
    """(the loss with class weights drawn, its torch twin, the same loss unweighted's
    twin, which options are set)."""
    w = rng.uniform(0.2, 3.0, width)
    tw = torch.from_numpy(w)
    if name == "cross_entropy":
        return (nn.CrossEntropyLoss(weight=w), torch.nn.CrossEntropyLoss(weight=tw),
                torch.nn.CrossEntropyLoss(), ["weight"])  # fmt: skip
    if name == "multi_margin":
        return (nn.MultiMarginLoss(weight=w), torch.nn.MultiMarginLoss(weight=tw),
                torch.nn.MultiMarginLoss(), ["weight"])  # fmt: skip
    if name == "multilabel_soft_margin":
        return (nn.MultiLabelSoftMarginLoss(weight=w),
                torch.nn.MultiLabelSoftMarginLoss(weight=tw),
                torch.nn.MultiLabelSoftMarginLoss(), ["weight"])  # fmt: skip
    set_ = [["pos_weight"], ["weight"], ["weight", "pos_weight"]][int(rng.integers(3))]
    options = {key: w for key in set_}
    twin = {key: tw for key in set_}
    return (nn.BCEWithLogitsLoss(**options), torch.nn.BCEWithLogitsLoss(**twin),
            torch.nn.BCEWithLogitsLoss(), set_)  # fmt: skip


@pytest.mark.parametrize(
    "name", ["cross_entropy", "multi_margin", "multilabel_soft_margin", "bce_with_logits"]
)
def test_evaluate_applies_the_class_weights_fit_recorded(seeded, name, tmp_path):
    """A model trained with CrossEntropyLoss(weight=…) (MultiMarginLoss's,
    MultiLabelSoftMarginLoss's weight, BCEWithLogitsLoss's weight or pos_weight) was
    scored by evaluate without loss= unweighted, with a warning: fit recorded which were
    set, not their values. fit records the values now (exact float64, through the saved
    file), and evaluate without loss= is torch's criterion(model(X), y) with the weighted
    criterion, as fit's own figures are; a second fit trains with them, without a word. A
    file from before, with their names alone, is scored unweighted and says so."""
    rng = seeded.rng
    rows, n = int(rng.integers(10, 40)), int(rng.integers(1, 4))
    width = int(rng.integers(2, 5))
    X = rng.normal(size=(rows, n))
    if name in ("cross_entropy", "multi_margin"):
        y = rng.integers(0, width, rows)
    else:
        y = rng.integers(0, 2, size=(rows, width)).astype(np.float64)
    loss, twin, unweighted, set_ = _weighted(rng, name, width)
    msg = lambda what: seeded.msg(f"{what}, {loss!r}")  # noqa: E731
    model = nn.Sequential(nn.Linear(n, 5), nn.Tanh(), nn.Linear(5, width)).to("float64")
    wxb.fit(model, X, y, loss=loss, epochs=1, batch_size=8, verbose=0)
    assert sorted(model.info.get("loss_weights", {})) == sorted(set_), msg(str(model.info))
    path = tmp_path / "model.safetensors"
    wxb.save(model, path)
    model = wxb.load(path)
    for key in set_:  # the values, bit for bit
        np.testing.assert_array_equal(model.info["loss_weights"][key], getattr(twin, key).numpy())
    out, t = torch.from_numpy(model.predict(X)), torch.from_numpy(y)
    scores, said = _caught(lambda: wxb.evaluate(model, X, y))
    assert said == [], msg(str(said))
    np.testing.assert_allclose(scores["loss"], float(twin(out, t)), **TOL, err_msg=msg("weighted"))
    _, said = _caught(lambda: wxb.fit(model, X, y, epochs=1, verbose=0))
    assert said == [], msg(str(said))
    assert sorted(model.info.get("loss_weights", {})) == sorted(set_), msg(str(model.info))
    # a file saved before the values were recorded: the names alone
    model.info["loss_weights"] = set_
    out = torch.from_numpy(model.predict(X))
    scores, said = _caught(lambda: wxb.evaluate(model, X, y))
    kind = type(loss).__name__
    assert len(said) == 1 and "\n" not in said[0], msg(str(said))
    assert kind in said[0] and all(key in said[0] for key in set_), msg(said[0])
    assert "evaluate scores the loss without" in said[0], msg(said[0])
    np.testing.assert_allclose(scores["loss"], float(unweighted(out, t)), **TOL,
                               err_msg=msg("unweighted"))  # fmt: skip
    # the report's Loss row says they were set
    row = _loss_row(report_html(model, None, X, y, gemm_rate=1e10))
    assert f"trained with {' and '.join(set_)} set (not recorded)" in row, msg(row)


# -- 5. the commands read a Sigmoid head's p as probabilities after these losses too -----
@pytest.mark.parametrize("name", ["soft_margin", "multilabel_soft_margin", "bce_with_logits"])
def test_commands_read_a_sigmoid_heads_p_after_losses_taking_logits(seeded, name, tmp_path,
                                                                    capsys):  # fmt: skip
    """A model ending in Sigmoid trained with soft_margin (fit warns of it now) was read by
    wxb predict as if its p were the logit: p > 0 for every row, so every row was class
    +1, and wxb eval's accuracy counted so; several labels a row (multilabel_soft_margin,
    bce_with_logits) were σ(p) > ½: every label 1. They are read as the Sigmoid head's
    probabilities now, as after bce_with_logits: the class by p > ½ (z > 0), --proba p
    itself, wxb eval's loss that of z, the logit the head turned into p, as torch's."""
    rng = seeded.rng
    rows, n = int(rng.integers(20, 50)), int(rng.integers(1, 4))
    # (bce_with_logits's one output was read so already: several labels)
    width = {"soft_margin": 1, "bce_with_logits": int(rng.integers(2, 4))}.get(
        name, int(rng.integers(1, 4))
    )
    X = rng.normal(size=(rows, n))
    if name == "soft_margin":
        y = rng.choice([-1.0, 1.0], size=(rows, 1))
    else:
        y = rng.integers(0, 2, size=(rows, width)).astype(np.float64)
    model = nn.Sequential(nn.Linear(n, 4), nn.Tanh(), nn.Linear(4, width), nn.Sigmoid())
    model = model.to("float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (it trains through the sigmoid twice)
        wxb.fit(model, X, y, loss=name, epochs=int(rng.integers(1, 4)), batch_size=8, verbose=0)
    path = tmp_path / "model.safetensors"
    wxb.save(model, path)
    columns = {f"x{k}": X[:, k] for k in range(n)}
    x_path, data = tmp_path / "x.csv", tmp_path / "data.csv"
    pd.DataFrame(columns).to_csv(x_path, index=False)
    X_read = pd.read_csv(x_path).to_numpy(np.float64)
    first, second = model[0], model[2]
    h = np.tanh(X_read @ first.weight.data.T + first.bias.data)
    z = h @ second.weight.data.T + second.bias.data  # the logits the head turns into p
    p = 1 / (1 + np.exp(-z))
    msg = lambda what: seeded.msg(f"{what}, {name} of {width} outputs")  # noqa: E731
    code, text, err = run(capsys, "predict", path, x_path, "--proba", "-o", "-")
    assert code == 0, msg(err)
    table = pd.read_csv(io.StringIO(text))
    if width > 1:
        got = table[[f"prediction_{k}" for k in range(width)]].to_numpy()
        np.testing.assert_array_equal(got, (z > 0).astype(np.int64), msg("labels"))
        np.testing.assert_allclose(table[[f"p_{k}" for k in range(width)]], p, rtol=1e-12,
                                   err_msg=msg("p"))  # fmt: skip
        return  # (wxb eval refuses several labels a row)
    low = -1 if name == "soft_margin" else 0
    np.testing.assert_array_equal(
        table["prediction"], np.where(z[:, 0] > 0, 1, low), msg("classes")
    )
    np.testing.assert_allclose(table["p_1"], p[:, 0], rtol=1e-12, err_msg=msg("p"))
    pd.DataFrame({**columns, "y": y[:, 0]}).to_csv(data, index=False)
    code, text, err = run(capsys, "eval", path, data, "--target", "y")
    assert code == 0, msg(err)
    zt, yt = torch.from_numpy(z), torch.from_numpy(y)
    if name == "soft_margin":
        loss = TF.soft_margin_loss(zt, yt)
    elif name == "multilabel_soft_margin":
        loss = TF.multilabel_soft_margin_loss(zt, yt)
    else:
        loss = TF.binary_cross_entropy_with_logits(zt, yt)
    accuracy = float(np.mean((z[:, 0] > 0) == (y[:, 0] > 0)))
    want = f"loss {figure_text(float(loss))}, accuracy {figure_text(accuracy)}"
    assert want in text.splitlines()[0], msg(text.splitlines()[0])
