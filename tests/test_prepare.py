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
