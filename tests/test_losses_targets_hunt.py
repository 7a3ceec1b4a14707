"""Losses and targets as users write and pass them, against torch.nn.functional: a loss
of one's own written as PyTorch's are (``forward``), targets of every shape and dtype."""

import numpy as np
import pytest
import torch
from rounding import affine_terms, rounding_atol

import wxb
from wxb.nn import Dense, Loss, MSELoss, Sequential


def twins(rng, features, outputs):
    """A float64 wxb Linear model and a torch one with the same weights."""
    model = Sequential(Dense(features, outputs, dtype="float64"))
    twin = torch.nn.Linear(features, outputs).double()
    model[0].weight.data[...] = rng.normal(size=(outputs, features))
    model[0].bias.data[...] = rng.normal(size=outputs)
    with torch.no_grad():
        twin.weight.copy_(torch.from_numpy(model[0].weight.data))
        twin.bias.copy_(torch.from_numpy(model[0].bias.data))
    return model, twin


def one_sgd_step(model, twin, X, y, loss, torch_loss, ty, seeded, what):
    """fit's one step of SGD with lr 1 over the whole batch, and the same in PyTorch."""
    history = wxb.fit(model, X, y, loss=loss, optimizer="sgd", lr=1.0, epochs=1,
                      batch_size=len(X), shuffle=False, verbose=False)  # fmt: skip
    optimizer = torch.optim.SGD(twin.parameters(), lr=1.0)
    value = torch_loss(twin(torch.from_numpy(X)), ty)
    value.backward()
    optimizer.step()
    assert history.history["loss"][0] == pytest.approx(value.item(), rel=1e-12), seeded.msg(what)
    for ours, theirs in [(model[0].weight, twin.weight), (model[0].bias, twin.bias)]:
        np.testing.assert_allclose(
            ours.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg=seeded.msg(what)
        )
    return history


# -- a Loss subclass written as PyTorch's are: its forward computes it --------------------
class ScaledL1(MSELoss):
    """PyTorch's way to write a loss of one's own: a subclass with a forward."""

    def forward(self, output, target):
        return (output - target).abs().mean() * 3.0


class PlainForward(Loss):
    def forward(self, output, target):
        return ((output - target) ** 2).mean()


class DoubledStock(MSELoss):
    def forward(self, output, target):  # the stock value through super(), as in PyTorch
        return super().forward(output, target) * 2.0


@pytest.mark.parametrize(
    "loss, torch_loss",
    [
        (ScaledL1, lambda o, t: (o - t).abs().mean() * 3.0),
        (PlainForward, lambda o, t: ((o - t) ** 2).mean()),
        (DoubledStock, lambda o, t: ((o - t) ** 2).sum() / len(o)),
    ],
)
def test_a_loss_subclass_with_a_forward_of_its_own_is_what_fit_and_a_call_compute(
    loss, torch_loss, seeded
):
    """A stock loss's subclass whose forward computes another loss: ``loss(ŷ, y)`` and fit
    took the stock MSE and ignored its forward without a word (a Loss subclass with a
    forward alone: "has no kernel")."""
    rng = seeded.rng
    rows, features, outputs = int(rng.integers(5, 12)), 3, int(rng.integers(1, 4))
    X, y = rng.normal(size=(rows, features)), rng.normal(size=(rows, outputs))
    out = rng.normal(size=(rows, outputs))
    ours = wxb.Tensor(out.copy(), requires_grad=True)
    value = loss()(ours, y)
    value.backward()
    theirs = torch.tensor(out, requires_grad=True)
    expected = torch_loss(theirs, torch.from_numpy(y))
    expected.backward()
    assert value.item() == pytest.approx(expected.item(), rel=1e-12), seeded.msg("value")
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-12, atol=1e-15)
    model, twin = twins(rng, features, outputs)
    history = one_sgd_step(
        model, twin, X, y, loss(), torch_loss, torch.from_numpy(y), seeded, loss.__name__
    )
    assert history.engine == "graph"
    assert "loss" not in model.info  # what its outputs mean is its own
    assert wxb.evaluate(model, X, y, loss=loss())["loss"] == pytest.approx(
        torch_loss(twin(torch.from_numpy(X)), torch.from_numpy(y)).item(), rel=1e-12
    )


def test_a_forward_set_on_a_loss_instance_is_what_it_computes(seeded):
    rng = seeded.rng
    rows = int(rng.integers(5, 12))
    out, y = rng.normal(size=(rows, 2)), rng.normal(size=(rows, 2))
    loss = MSELoss()
    loss.forward = lambda o, t: (o - t).abs().sum()
    assert loss(wxb.Tensor(out), y).item() == pytest.approx(np.abs(out - y).sum(), rel=1e-12)
    assert wxb.nn.losses.computes_its_own(loss)
    assert wxb.nn.losses.stock_loss(loss) is None


# -- a loss of one's own on one output: (B,) targets never spread into (B, B) ------------
OWN_LOSSES = {
    "out[:, 0] - y": lambda out, y: ((out[:, 0] - y) ** 2).mean(),  # PyTorch's usual form
    "out.squeeze(1) - y": lambda out, y: (out.squeeze(1) - y).abs().mean(),
    "out.reshape(-1) - 2y": lambda out, y: ((out.reshape(-1) - y * 2.0) ** 2).sum(),
    "out - y": lambda out, y: ((out - y) ** 2).mean(),  # wxb hands it (B, 1) targets
}
# the same with wxb's functional and PyTorch's: wxb's refuses (B,) outputs against (B, 1)
WXB_TORCH_FORMS = {
    "F.l1_loss(out[:, 0], y)": (
        lambda out, y: wxb.nn.functional.l1_loss(out[:, 0], y),
        lambda out, y: torch.nn.functional.l1_loss(out[:, 0], y),
    ),
}


@pytest.mark.parametrize("written", [*OWN_LOSSES, *WXB_TORCH_FORMS])
def test_a_loss_of_ones_own_on_one_output_compares_row_with_row(written, seeded):
    """A loss written for (B,) targets, ``out[:, 0] − y``, got them as (B, 1) from fit and
    evaluate and subtracted every row's target from every output, (B, B), without a word:
    the weights after a step, the epoch's loss and evaluate's were all off (evaluate 5.9
    where PyTorch's loop gives its row-wise mean). The same loss in PyTorch on y as given
    is the reference; ``out − y`` is compared there with y as a column, as wxb hands it."""
    rng = seeded.rng
    rows, features = int(rng.integers(6, 20)), int(rng.integers(1, 5))
    X, y = rng.normal(size=(rows, features)), rng.normal(size=rows)
    own = their = OWN_LOSSES.get(written)
    if own is None:
        own, their = WXB_TORCH_FORMS[written]
    torch_y = torch.from_numpy(y[:, None] if written == "out - y" else y)
    for given in (y, y.tolist(), y[:, None]):  # (B, 1) too: out[:, 0] - y is row by row
        model, twin = twins(rng, features, 1)
        # ∂L/∂W sums the rows' δ·x (δ ≤ 2·|out − 2y|, /B for a mean) in another order than
        # torch's: a weight stepped near 0 keeps that rounding and an ulp of its start
        W = np.abs(model[0].weight.data)
        sizes = affine_terms(X, W.T, np.abs(model[0].bias.data)) + 2 * np.abs(y)[:, None]
        sizes *= 2.0 if written == "out.reshape(-1) - 2y" else 2.0 / rows
        atol = 0.1 * rounding_atol(sizes.T @ np.abs(X), features + 3 + rows)
        atol += rounding_atol(W, 1)
        history = wxb.fit(model, X, given, loss=own, optimizer="sgd", lr=0.1, epochs=1,
                          batch_size=len(X), shuffle=False, verbose=False,
                          validation_data=(X, given))  # fmt: skip
        optimizer = torch.optim.SGD(twin.parameters(), lr=0.1)
        value = their(twin(torch.from_numpy(X)), torch_y)
        value.backward()
        optimizer.step()
        what = seeded.msg(f"{written} on y as a {type(given).__name__}")
        assert history.history["loss"][0] == pytest.approx(value.item(), rel=1e-12), what
        np.testing.assert_allclose(
            model[0].weight.data, twin.weight.detach().numpy(), rtol=1e-12, atol=atol, err_msg=what
        )
        with torch.no_grad():
            after = their(twin(torch.from_numpy(X)), torch_y).item()
        assert history.history["val_loss"][0] == pytest.approx(after, rel=1e-12), what
        assert wxb.evaluate(model, X, given, loss=own)["loss"] == pytest.approx(after, rel=1e-12)


def test_a_loss_that_pairs_outputs_with_every_target_on_purpose_keeps_the_column(seeded):
    """A loss that spreads the targets over the outputs in either form (a pairwise loss)
    gets them as before, (B, 1)."""
    rng = seeded.rng
    rows = int(rng.integers(5, 12))
    X, y = rng.normal(size=(rows, 2)), rng.normal(size=rows)
    seen = []

    def pairwise(out, target):
        seen.append(np.shape(target))
        t = np.reshape(target, -1)
        return ((out - t) ** 2).mean() + ((out[:, 0] - t[:, None]) ** 2).mean()

    wxb.fit(Sequential(Dense(2, 1, dtype="float64")), X, y, loss=pairwise, epochs=1,
            batch_size=rows, verbose=False)  # fmt: skip
    assert seen[-1] == (rows, 1)


# -- evaluate scores with the loss the model was trained with ----------------------------
@pytest.mark.parametrize("loss", ["mse", "l1", "huber", "smooth_l1", "bce_with_logits"])
def test_evaluate_scores_a_model_with_the_loss_it_was_fitted_with(loss, seeded):
    """evaluate(model, X, Y) after fit(loss="mse") on three outputs reported a
    cross-entropy of the regression targets (0.135, 'accuracy' 0.13) where the MSE was
    3.27; a multilabel BCE model's figures were a cross-entropy's too."""
    rng = seeded.rng
    rows, features, outputs = int(rng.integers(10, 30)), 3, int(rng.integers(2, 5))
    X = rng.normal(size=(rows, features))
    Y = rng.integers(0, 2, size=(rows, outputs)).astype(float)
    if loss != "bce_with_logits":
        Y = rng.normal(size=(rows, outputs))
    model = Sequential(Dense(features, outputs, dtype="float64"))
    wxb.fit(model, X, Y, loss=loss, epochs=1, verbose=False)
    out = torch.from_numpy(model.predict(X))
    expected = {
        "mse": lambda: 0.5 * ((out - torch.from_numpy(Y)) ** 2).sum(1).mean(),
        "l1": lambda: torch.nn.functional.l1_loss(out, torch.from_numpy(Y)),
        "huber": lambda: torch.nn.functional.huber_loss(out, torch.from_numpy(Y)),
        "smooth_l1": lambda: torch.nn.functional.smooth_l1_loss(out, torch.from_numpy(Y)),
        "bce_with_logits": lambda: torch.nn.functional.binary_cross_entropy_with_logits(
            out, torch.from_numpy(Y)
        ),
    }[loss]().item()
    figures = wxb.evaluate(model, X, Y)
    assert figures["loss"] == pytest.approx(expected, rel=1e-12), seeded.msg(loss)
    assert ("accuracy" in figures) == (loss == "bce_with_logits")
    assert figures == wxb.evaluate(model, X, Y, loss=loss)


def test_explain_hands_a_loss_of_ones_own_its_targets_as_fit_does(seeded):
    """explain's loss of ``out[:, 0] − y`` on (B,) targets was the (B, B) mean too (0.816
    where the rows' own is 1.050), and its δ and ∂L/∂W followed it."""
    rng = seeded.rng
    rows = int(rng.integers(4, 12))
    X, y = rng.normal(size=(rows, 3)), rng.normal(size=rows)
    model, twin = twins(rng, 3, 1)
    own = OWN_LOSSES["out[:, 0] - y"]
    explained = wxb.explain(model, X, y, loss=own, sample_rows=None)
    value = own(twin(torch.from_numpy(X)), torch.from_numpy(y))
    value.backward()
    assert explained.step("loss").value == pytest.approx(value.item(), rel=1e-12), seeded.msg("")
    np.testing.assert_allclose(
        explained.step("dense1.dL/dW").value, twin.weight.grad.numpy(), rtol=1e-10, atol=1e-14
    )


@pytest.mark.parametrize("form", ["several labels", "one-hot", "probabilities"])
def test_nll_refuses_rows_of_labels_before_training_in_its_own_words(form, seeded):
    """fit(loss="nll") on a 0/1 matrix said 'for cross_entropy must hold one-hot rows', and
    one-hot rows were then refused by NLLLoss at the first step."""
    from wxb.errors import DataError

    rng = seeded.rng
    rows, classes = int(rng.integers(6, 20)), int(rng.integers(2, 5))
    X = rng.normal(size=(rows, 3))
    picked = np.eye(classes, dtype=int)[rng.integers(0, classes, rows)]
    y = {
        "several labels": np.maximum(picked, rng.integers(0, 2, (rows, classes))),
        "one-hot": picked,
        "probabilities": rng.dirichlet(np.ones(classes), rows),
    }[form]
    model = Sequential(Dense(3, classes, dtype="float64"), wxb.nn.LogSoftmax(dim=1))
    before = model[0].weight.data.copy()
    for call in (
        lambda: wxb.fit(model, X, y, loss="nll", epochs=1, verbose=False),
        lambda: wxb.evaluate(model, X, y, loss="nll"),
    ):
        with pytest.raises(DataError, match=r"nll takes class indices of shape \(B,\)"):
            call()
    np.testing.assert_array_equal(model[0].weight.data, before)
    with pytest.raises(RuntimeError):  # PyTorch's NLLLoss refuses them too
        torch.nn.functional.nll_loss(torch.zeros(rows, classes), torch.from_numpy(y))


def test_a_second_fit_without_a_loss_trains_on_the_loss_of_the_first(seeded):
    """fit(model, X, Y) after fit(..., loss="mse") on three outputs trained the regression
    as a cross-entropy of its targets (rows read as probabilities) without a word."""
    rng = seeded.rng
    rows = int(rng.integers(8, 20))
    X, Y = rng.normal(size=(rows, 3)), rng.normal(size=(rows, 3))
    model, twin = twins(rng, 3, 3)
    model.info["loss"] = "mse"  # as a first fit(loss="mse") leaves it
    one_sgd_step(model, twin, X, Y, None, lambda o, t: 0.5 * ((o - t) ** 2).sum(1).mean(),
                 torch.from_numpy(Y), seeded, "mse recorded")  # fmt: skip
    assert model.info["loss"] == "mse"


def test_evaluate_scores_an_estimators_network_with_its_loss(seeded):
    """to_wxb()'s network of a binary MLPClassifier was refused by evaluate ('y holds class
    1 but the model has 1 outputs') and a regressor's too ('non-integer class labels'):
    the default cross-entropy, not the log-loss and squared error the estimator fits."""
    import warnings

    from sklearn.metrics import log_loss, mean_squared_error

    import wxb.sklearn as ws

    rng = seeded.rng
    rows = int(rng.integers(20, 50))
    X = rng.normal(size=(rows, 3))
    labels, numbers = rng.integers(0, 2, rows), rng.normal(size=rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (not converged in a few iterations)
        classifier = ws.MLPClassifier(hidden_layer_sizes=(4,), max_iter=5).fit(X, labels)
        regressor = ws.MLPRegressor(hidden_layer_sizes=(4,), max_iter=5).fit(X, numbers)
    figures = wxb.evaluate(classifier.to_wxb(), X, labels)
    expected = log_loss(labels, classifier.predict_proba(X))
    assert figures["loss"] == pytest.approx(expected, rel=1e-10), seeded.msg("log-loss")
    assert figures["accuracy"] == pytest.approx(classifier.score(X, labels))
    half_squared = mean_squared_error(numbers, regressor.predict(X)) / 2  # (one output)
    assert wxb.evaluate(regressor.to_wxb(), X, numbers)["loss"] == pytest.approx(half_squared)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy", "bce_with_logits", "own"])
def test_no_targets_are_named_as_such(loss, seeded):
    """y=None (targets forgotten) was 'y must hold numbers; it holds object values'."""
    from wxb.errors import DataError

    rng = seeded.rng
    X = rng.normal(size=(int(rng.integers(4, 10)), 3))
    model = Sequential(Dense(3, 2, dtype="float64"))
    given = OWN_LOSSES["out - y"] if loss == "own" else loss
    for call in (
        lambda: wxb.fit(model, X, None, loss=given, epochs=1, verbose=False),
        lambda: wxb.evaluate(model, X, None, loss=given),
        lambda: wxb.fit(model, X, X[:, :2], loss="mse", validation_data=(X, None)),
    ):
        with pytest.raises(DataError, match="y is None: give the targets"):
            call()


# -- a guard: every stock loss, both steps, targets in the forms users pass them ---------
class OwnForward(wxb.nn.Module):
    """The same Linear behind a forward of one's own: fit's recorded-graph step."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


TORCH_STOCK = {
    "mse": lambda o, t, r: (lambda s: s.mean() if r == "mean" else s.sum())(
        0.5 * ((o - t) ** 2).sum(1)
    ),
    "l1": lambda o, t, r: torch.nn.functional.l1_loss(o, t, reduction=r),
    "huber": lambda o, t, r: torch.nn.functional.huber_loss(o, t, reduction=r),
    "smooth_l1": lambda o, t, r: torch.nn.functional.smooth_l1_loss(o, t, reduction=r),
    "bce_with_logits": lambda o, t, r: torch.nn.functional.binary_cross_entropy_with_logits(
        o, t, reduction=r
    ),
    "cross_entropy": lambda o, t, r: torch.nn.functional.cross_entropy(o, t, reduction=r),
}


@pytest.mark.parametrize("name", TORCH_STOCK)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_every_stock_loss_steps_as_torch_on_targets_in_every_form(name, reduction, seeded):
    import pandas as pd

    rng = seeded.rng
    rows, features = int(rng.integers(5, 12)), 3
    X = rng.normal(size=(rows, features))
    if name == "cross_entropy":
        outputs = int(rng.integers(2, 5))
        labels = rng.integers(0, outputs, rows)
        reference = torch.from_numpy(labels)
        forms = [labels, labels.astype(np.int32), labels.astype(np.uint8), labels.astype(float),
                 labels[:, None], labels.tolist(), pd.Series(labels)]  # fmt: skip
    else:
        outputs = 1
        numbers = rng.integers(0, 2, rows) if name == "bce_with_logits" else rng.normal(size=rows)
        reference = torch.from_numpy(numbers.astype(float)[:, None])
        forms = [numbers, numbers[:, None], numbers.tolist(), pd.Series(numbers)]
        if name == "bce_with_logits":
            forms.append(numbers.astype(bool))
    loss = wxb.nn.LOSSES[name](reduction=reduction)
    for graph in (False, True):
        for given in forms:
            model, twin = twins(rng, features, outputs)
            fitted = OwnForward(model) if graph else model
            history = wxb.fit(fitted, X, given, loss=loss, optimizer="sgd", lr=0.5, epochs=1,
                              batch_size=rows, shuffle=False, verbose=False)  # fmt: skip
            assert history.engine == ("graph" if graph else "planned")
            optimizer = torch.optim.SGD(twin.parameters(), lr=0.5)
            value = TORCH_STOCK[name](twin(torch.from_numpy(X)), reference, reduction)
            value.backward()
            optimizer.step()
            what = seeded.msg(f"{name} {reduction} graph={graph} y as {type(given).__name__}")
            assert history.history["loss"][0] == pytest.approx(value.item(), rel=1e-12), what
            np.testing.assert_allclose(model[0].weight.data, twin.weight.detach().numpy(),
                                       rtol=1e-12, atol=1e-14, err_msg=what)  # fmt: skip


def test_a_model_trained_with_a_loss_wxb_has_not_is_not_scored_as_a_classifier(seeded):
    """A Poisson MLPRegressor's network (its info's loss 'poisson') was scored by evaluate
    as a cross-entropy of its counts (refused in other words, or read as classes). It is
    scored as poisson_nll of its log-rates now (test_losses52b); a recorded loss wxb has
    not is refused."""
    import warnings

    import wxb.sklearn as ws
    from wxb.errors import ConfigError

    rng = seeded.rng
    X = rng.normal(size=(30, 3))
    counts = rng.poisson(2.0, size=(30, 2)).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = ws.MLPRegressor(loss="poisson", hidden_layer_sizes=(3,), max_iter=3).fit(X, counts)
    model = net.to_wxb()
    x = model.predict(X).astype(np.float64)
    want = float(np.mean(np.exp(x) - counts * x))
    assert wxb.evaluate(model, X, counts)["loss"] == pytest.approx(want, rel=1e-12)
    model.info["loss"] = "tweedie"
    with pytest.raises(ConfigError, match=r"trained with the tweedie loss.*give loss="):
        wxb.evaluate(model, X, counts)
    assert wxb.evaluate(model, X, counts, loss="mse")["loss"] >= 0
