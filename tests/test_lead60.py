"""The lead's fixes of this stop, each against an independent reference."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import wxb


def test_evaluate_with_a_classifiers_own_labels_names_its_classes(seeded):
    """`wxb.evaluate(clf.to_wxb(), X, y)` with the estimator's own labels ([0, 10, 20] or
    text) was refused with "the model has 3 outputs (classes 0..2)", or told to number the
    labels by np.unique, which numbers them afresh on rows that lack a class. The line now
    names the model's classes and how to index them; done as it says, the accuracy is
    scikit-learn's own score of the estimator."""
    from wxb.sklearn import MLPClassifier

    rng = seeded.rng
    rows = int(rng.integers(40, 80))
    X = rng.normal(size=(rows, 3))
    for names in (np.array([0, 10, 20]), np.array(["setosa", "versicolor", "virginica"])):
        labels = names[np.argmax(X + rng.normal(scale=0.5, size=X.shape), axis=1)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # not converged in a few iterations
            clf = MLPClassifier(max_iter=20, random_state=int(rng.integers(1 << 30)))
            clf.fit(X, labels)
        model = clf.to_wxb()
        held_out = labels != names[0]  # rows that lack a class: np.unique would renumber
        with pytest.raises(wxb.DataError) as caught:
            wxb.evaluate(model, X[held_out], labels[held_out])
        message = str(caught.value)
        assert "\n" not in message and "np.unique" not in message, seeded.msg(message)
        assert str([names[0].item(), names[1].item(), names[2].item()])[1:-1] in message
        code = message.split("e.g. ")[1].split(" with classes")[0]
        scope = {"np": np, "labels": labels[held_out], "classes": model.info["classes"]}
        exec(code, scope)
        scores = wxb.evaluate(model, X[held_out], scope["y"])
        expected = clf.score(X[held_out], labels[held_out])
        assert scores["accuracy"] == pytest.approx(expected, abs=1e-12), seeded.msg(names)


def test_warm_fit_with_early_stopping_has_no_best_loss(seeded):
    """scikit-learn documents best_loss_ as None when early_stopping=True; a warm fit that
    switched early stopping on after a fit without it kept the first fit's best loss (its
    own MLP crashes there, so its documentation is the reference), and a fresh
    early-stopped fit has None as scikit-learn's has."""
    from sklearn.neural_network import MLPClassifier as SkMLP

    from wxb.sklearn import MLPClassifier

    rng = seeded.rng
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] + rng.normal(scale=0.3, size=60) > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged in a few iterations
        ours = MLPClassifier(max_iter=5, warm_start=True).fit(X, y)
        assert np.isfinite(ours.best_loss_)
        ours.set_params(early_stopping=True).fit(X, y)
        theirs = SkMLP(max_iter=5, early_stopping=True).fit(X, y)
    assert theirs.best_loss_ is None
    assert ours.best_loss_ is None, seeded.msg(str(ours.best_loss_))
    assert len(ours.validation_scores_) == ours.n_iter_  # the second fit's epochs


def test_sklearn_device_takes_pytorchs_spellings_of_the_cpu(seeded):
    """device=torch.device("cpu") and "cpu:0" (a PyTorch user's spellings) were refused
    with "use device='cpu'"; they now fit the same network bit for bit, and a GPU is
    refused as before."""
    import torch

    from wxb.sklearn import MLPRegressor

    rng = seeded.rng
    X, y = rng.normal(size=(30, 3)), rng.normal(size=30)
    state = int(rng.integers(1 << 30))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged in a few iterations
        plain = MLPRegressor(max_iter=3, random_state=state).fit(X, y).predict(X)
        for device in (torch.device("cpu"), "cpu:0", "CPU"):
            other = MLPRegressor(max_iter=3, random_state=state, device=device).fit(X, y)
            np.testing.assert_array_equal(other.predict(X), plain, err_msg=str(device))
        with pytest.raises(ValueError, match="runs on the CPU only"):
            MLPRegressor(max_iter=3, device=torch.device("cuda")).fit(X, y)
