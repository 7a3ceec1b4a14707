"""A model fit trained with a loss it cannot record by name (a function of one's own, a
stock loss's subclass with a forward of its own): evaluate and a second fit without loss=
refuse in one line, where they scored and trained a cross-entropy of the targets without
a word. KLDivLoss and BCELoss, refused so before, are recorded by name ("kl_div", "bce",
with their options) since s51: evaluate then scores them as torch does."""

import numpy as np
import pytest

import wxb
from wxb import nn
from wxb.errors import ConfigError

torch = pytest.importorskip("torch")


class _OwnKL(nn.KLDivLoss):
    def forward(self, output, target):  # code of its own: no name says what it computes
        return super().forward(output, target)


def _own_loss(output, target):
    return ((output - target) ** 2).mean()


def _cases(rng, rows, features, classes):
    soft = rng.dirichlet(np.ones(classes), rows).astype(np.float32)
    labels = rng.integers(0, 2, (rows, 1)).astype(np.float32)
    return [
        (nn.LogSoftmax(dim=1), classes, nn.KLDivLoss(reduction="batchmean"), soft, "KLDivLoss"),
        (nn.Sigmoid(), 1, nn.BCELoss(), labels, "BCELoss"),
        (None, classes, _own_loss, soft, "_own_loss"),
        (nn.LogSoftmax(dim=1), classes, _OwnKL(reduction="batchmean"), soft, "_OwnKL"),
    ]


@pytest.mark.parametrize("case", range(4))
def test_evaluate_and_fit_without_loss_refuse_an_unnamed_loss(rng, case):
    rows, features, classes = int(rng.integers(8, 40)), int(rng.integers(2, 6)), 3
    X = rng.standard_normal((rows, features)).astype(np.float32)
    head, width, loss, y, name = _cases(rng, rows, features, classes)[case]
    model = nn.Sequential(nn.Dense(features, width), *([head] if head is not None else []))
    wxb.fit(model, X, y, loss=loss, epochs=2, batch_size=8, verbose=0)
    named = name in ("KLDivLoss", "BCELoss")  # recorded by name, with their options
    if named:
        assert "unnamed_loss" not in model.info
        score = wxb.evaluate(model, X, y)["loss"]
        assert score == wxb.evaluate(model, X, y, loss=loss)["loss"]
    else:
        with pytest.raises(ConfigError, match=f"last trained with .*{name}.*give loss="):
            wxb.evaluate(model, X, y)
        with pytest.raises(ConfigError, match=f"last trained with .*{name}.*give loss="):
            wxb.fit(model, X, y, epochs=1, verbose=0)
    # given the loss, the figure is that loss's, as torch computes it on the same outputs
    got = wxb.evaluate(model, X, y, loss=loss)["loss"]
    out = torch.tensor(model.predict(X).astype(np.float64))
    target = torch.tensor(y.astype(np.float64))
    if name in ("KLDivLoss", "_OwnKL"):
        want = torch.nn.functional.kl_div(out, target, reduction="batchmean")
    elif name == "BCELoss":
        want = torch.nn.functional.binary_cross_entropy(out, target)
    else:
        want = ((out - target) ** 2).mean()
    np.testing.assert_allclose(got, float(want), rtol=1e-5)
    # a fit with a loss it records by name takes the record back
    labels = rng.integers(0, width if width > 1 else 2, rows)
    if width > 1:
        wxb.fit(model, X, labels, loss="cross_entropy", epochs=1, verbose=0)
        assert "unnamed_loss" not in model.info
        assert set(wxb.evaluate(model, X, labels)) == {"loss", "accuracy"}
