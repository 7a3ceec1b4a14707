"""wxb train --class-weight balanced: scikit-learn's balanced weights on the training
rows, in the loss fit trains with; refused for a regression."""

import numpy as np
import pytest

import wxb
from wxb.cli import main, training_loss
from wxb.prepare import Targets

sklearn_weights = pytest.importorskip("sklearn.utils.class_weight")


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_balanced_weights_are_scikit_learns_on_the_training_rows(rng, capsys):
    classes = int(rng.integers(2, 6))
    y = rng.choice(classes, size=200, p=rng.dirichlet(np.ones(classes) * 0.7))
    y[:classes] = np.arange(classes)  # each class has a row somewhere
    fit_rows = rng.permutation(200)[:150]
    fit_rows = np.union1d(fit_rows, np.arange(classes))  # and a training row
    targets = Targets(
        "classification", "cross_entropy", y, classes, [f"c{k}" for k in range(classes)]
    )
    loss = training_loss(targets, fit_rows, "balanced")
    expected = sklearn_weights.compute_class_weight(
        "balanced", classes=np.arange(classes), y=y[fit_rows]
    )
    np.testing.assert_allclose(loss.weight.data, expected, rtol=1e-12)
    assert "class weights (balanced): c0 " in capsys.readouterr().out
    assert training_loss(targets, fit_rows, "none") == "cross_entropy"


def test_balanced_labels_weigh_each_labels_positives_and_negatives(rng):
    """One logit a label: each row's loss is scikit-learn's balanced weight of its label
    value (per column) times the plain binary cross-entropy."""
    rows, labels = 120, int(rng.integers(1, 4))
    y = (rng.random((rows, labels)) < rng.uniform(0.05, 0.5, labels)).astype(float)
    y[0], y[1] = 1, 0
    targets = Targets("classification", "bce_with_logits", y, labels)
    loss = training_loss(targets, np.arange(rows), "balanced")
    loss.reduction = "none"
    z = rng.normal(size=(rows, labels)) * 3
    plain = wxb.nn.BCEWithLogitsLoss(reduction="none")(wxb.Tensor(z), y).data
    for column in range(labels):
        weights = sklearn_weights.compute_sample_weight("balanced", y[:, column])
        np.testing.assert_allclose(
            loss(wxb.Tensor(z), y).data[:, column], weights * plain[:, column], rtol=1e-12
        )


def test_the_command_trains_with_it_and_refuses_it_for_a_regression(tmp_path, rng, capsys):
    n = 120
    X = rng.normal(size=(n, 3))
    label = np.where(X[:, 0] > 1.0, "rare", "common")
    label[:4] = "rare"
    table = tmp_path / "t.csv"
    table.write_text(
        "a,b,c,label,amount\n"
        + "".join(f"{a},{b},{c},{k},{a * 2 + b}\n" for (a, b, c), k in zip(X, label, strict=True))
    )
    out = tmp_path / "m.safetensors"
    code, printed, err = _run(
        capsys, "train", "--data", table, "--target", "label", "--drop", "amount",
        "--class-weight", "balanced", "--epochs", "2", "--hidden", "8", "-q", "-o", out,
    )  # fmt: skip
    assert code == 0, err
    assert "class weights (balanced): common " in printed and out.exists()
    code, printed, err = _run(
        capsys, "train", "--data", table, "--target", "amount", "--drop", "label",
        "--class-weight", "balanced", "--epochs", "2", "-q", "-o", tmp_path / "r.safetensors",
    )  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "--class-weight balanced weighs classes; this is a regression" in err
    assert not (tmp_path / "r.safetensors").exists()
