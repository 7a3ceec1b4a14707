"""Follow-ups of fit recording torch's one-input losses by name (test_losses52.py).

- A scikit-learn Poisson MLPRegressor's model (recorded loss "poisson", a log link) was
  refused by ``wxb.evaluate`` and ``wxb eval``: it is scored as torch's poisson_nll of its
  log-rates, and ``wxb eval`` says so and gives scikit-learn's mean_poisson_deviance too.
- fit warned of a Sigmoid head before bce_with_logits, not before soft_margin and
  multilabel_soft_margin, which take logits too.
- wxb report's "Loss" row gave the name alone, without the options training applied.
- Class weights are not recorded: evaluate (and a second fit) without loss= applied none
  without a word; they now say so in a warning.

Figures are compared with torch or scikit-learn on the same outputs in float64 (sums of
at most a few hundred terms: 1e-12 relative)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import wxb
import wxb.nn as nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional
TOL = dict(rtol=1e-12, atol=1e-14)


def _caught(call):
    """call()'s result and the messages of the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


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
