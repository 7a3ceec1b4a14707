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
