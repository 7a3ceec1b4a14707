"""PyTorch's class options of a cross-entropy — ``weight``, ``ignore_index`` and
``label_smoothing`` — on CrossEntropyLoss, NLLLoss and their functional forms, compared
with PyTorch: values and gradients for every reduction, class-index and probability
targets, and whole training runs through ``fit`` on both of its paths."""

import numpy as np
import pytest

import wxb
from wxb import nn
from wxb.errors import ConfigError, DataError, ShapeError

torch = pytest.importorskip("torch")


def _options(rng, classes, probabilities, nll):
    """A random mix of the options, and the class index to plant as ignored (or None)."""
    options, planted = {}, None
    if rng.random() < 0.6:
        options["weight"] = rng.uniform(0.1, 3.0, classes)
    if not probabilities and rng.random() < 0.6:
        # inside 0..C−1 (a real class left out), or outside it (PyTorch's -100 and kin)
        planted = (
            int(rng.integers(0, classes)) if rng.random() < 0.5 else int(rng.integers(-200, 0))
        )
        if planted != -100 or rng.random() < 0.5:
            options["ignore_index"] = planted
    if not nll and rng.random() < 0.6:
        options["label_smoothing"] = float(rng.uniform(0.0, 1.0))
    return options, planted


def _targets(rng, rows, classes, probabilities, planted):
    if probabilities:
        return rng.dirichlet(np.ones(classes), rows)
    y = rng.integers(0, classes, rows)
    if planted is not None:
        y[rng.random(rows) < 0.4] = planted
        y[0] = planted if rows > 1 and rng.random() < 0.5 else y[0]
    return y


def _torch_options(options):
    return {k: torch.tensor(v) if k in ("weight", "pos_weight") else v for k, v in options.items()}


@pytest.mark.parametrize("nll", [False, True], ids=["cross_entropy", "nll"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_values_and_gradients_are_pytorchs(rng, nll, reduction):
    """float64, many random draws: the loss and ∂L/∂z as PyTorch gives them, with each
    option alone and together, through the class, the functional form, and a gradient
    from above (the per-sample losses weighted by the caller)."""
    for _ in range(30):
        rows, classes = int(rng.integers(1, 9)), int(rng.integers(2, 6))
        probabilities = not nll and rng.random() < 0.3
        options, planted = _options(rng, classes, probabilities, nll)
        y = _targets(rng, rows, classes, probabilities, planted)
        z = rng.normal(size=(rows, classes)) * 3
        theirs = torch.tensor(z, requires_grad=True)
        inputs = torch.log_softmax(theirs, 1) if nll else theirs
        kind = torch.nn.NLLLoss if nll else torch.nn.CrossEntropyLoss
        expected = kind(reduction=reduction, **_torch_options(options))(inputs, torch.tensor(y))
        upstream = rng.normal(size=expected.shape)
        (expected * torch.tensor(upstream)).sum().backward()

        for functional in (False, True):
            ours = wxb.Tensor(z, requires_grad=True)
            given = ours.log_softmax(dim=1) if nll else ours
            if functional:
                f = nn.functional.nll_loss if nll else nn.functional.cross_entropy
                value = f(given, y, reduction, **options)
            else:
                value = (nn.NLLLoss if nll else nn.CrossEntropyLoss)(
                    reduction=reduction, **options
                )(given, y)
            (value * wxb.Tensor(upstream)).sum().backward()
            where = f"{options}, y={y}, functional={functional}"
            np.testing.assert_allclose(
                value.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=where
            )
            np.testing.assert_allclose(
                ours.grad, theirs.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=where
            )


def test_float32_agrees_to_rounding(rng):
    rows, classes = int(rng.integers(20, 200)), int(rng.integers(2, 12))
    options, planted = _options(rng, classes, False, False)
    options["weight"] = rng.uniform(0.1, 3.0, classes)
    y = _targets(rng, rows, classes, False, planted)
    z = rng.normal(size=(rows, classes)).astype(np.float32)
    theirs = torch.tensor(z.astype(np.float64), requires_grad=True)
    expected = torch.nn.CrossEntropyLoss(**_torch_options(options))(theirs, torch.tensor(y))
    expected.backward()
    ours = wxb.Tensor(z, requires_grad=True)
    value = nn.CrossEntropyLoss(**options)(ours, y)
    value.backward()
    assert value.dtype == np.float32 and ours.grad.dtype == np.float32
    np.testing.assert_allclose(value.item(), expected.item(), rtol=1e-5)
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-4, atol=1e-7)


def test_a_target_that_requires_grad_gets_pytorchs_gradient(rng):
    """Probability targets computed by another model: ∂L/∂y with weights and smoothing."""
    rows, classes = int(rng.integers(2, 8)), int(rng.integers(2, 6))
    weight, eps = rng.uniform(0.1, 3.0, classes), float(rng.uniform(0, 1))
    z, p = rng.normal(size=(rows, classes)), rng.dirichlet(np.ones(classes), rows)
    tz, tp = torch.tensor(z, requires_grad=True), torch.tensor(p, requires_grad=True)
    torch.nn.CrossEntropyLoss(weight=torch.tensor(weight), label_smoothing=eps)(tz, tp).backward()
    oz, op = wxb.Tensor(z, requires_grad=True), wxb.Tensor(p, requires_grad=True)
    nn.CrossEntropyLoss(weight=weight, label_smoothing=eps)(oz, op).backward()
    np.testing.assert_allclose(oz.grad, tz.grad.numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(op.grad, tp.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_every_row_ignored_is_nan_with_no_gradient_as_in_pytorch(rng):
    z = rng.normal(size=(4, 3))
    ours = wxb.Tensor(z, requires_grad=True)
    value = nn.CrossEntropyLoss(ignore_index=1)(ours, np.ones(4, np.int64))
    value.backward()
    assert np.isnan(value.item())
    np.testing.assert_array_equal(ours.grad, np.zeros_like(z))


class _OwnForward(nn.Module):
    """A model of one's own: fit trains it layer by layer, not through the planned step."""

    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        return self.b(self.a(x).relu())


@pytest.mark.parametrize("planned", [True, False], ids=["planned", "layer_by_layer"])
def test_fit_trains_as_pytorchs_loop(rng, planned):
    """fit with class weights, a class ignored and smoothing: the weights PyTorch's loop
    reaches with the same batches, on the planned step and on the layer-by-layer path."""
    rows, features, classes, batch = 60, 5, 4, 20
    X = rng.normal(size=(rows, features))
    y = rng.integers(0, classes, rows)
    ignored = int(rng.integers(0, classes))
    y[rng.random(rows) < 0.2] = ignored
    options = {
        "weight": rng.uniform(0.2, 2.0, classes),
        "ignore_index": ignored,
        "label_smoothing": float(rng.uniform(0, 0.3)),
    }
    a, b = nn.Dense(features, 8).to("float64"), nn.Dense(8, classes).to("float64")
    model = nn.Sequential(a, nn.ReLU(), b) if planned else _OwnForward(a, b)
    assert (model.why_not_planned() is None) is planned
    theirs = torch.nn.Sequential(
        torch.nn.Linear(features, 8), torch.nn.ReLU(), torch.nn.Linear(8, classes)
    ).double()
    with torch.no_grad():
        for mine, their in zip(
            [a.weight, a.bias, b.weight, b.bias], theirs.parameters(), strict=True
        ):
            their.copy_(torch.tensor(mine.data))
    loss = torch.nn.CrossEntropyLoss(**_torch_options(options))
    opt = torch.optim.SGD(theirs.parameters(), lr=0.1)
    for start in range(0, rows, batch):
        opt.zero_grad()
        loss(
            theirs(torch.tensor(X[start : start + batch])), torch.tensor(y[start : start + batch])
        ).backward()
        opt.step()
    history = wxb.fit(
        model, X, y, loss=nn.CrossEntropyLoss(**options),
        optimizer=wxb.optim.SGD(model.parameters(), lr=0.1),
        epochs=1, batch_size=batch, shuffle=False, verbose=0,
    )  # fmt: skip
    for mine, their in zip([a.weight, a.bias, b.weight, b.bias], theirs.parameters(), strict=True):
        np.testing.assert_allclose(mine.data, their.detach().numpy(), rtol=1e-9, atol=1e-12)
    # accuracy is over the rows that count: the ignored class's rows are no rows
    figures = wxb.evaluate(model, X, y, nn.CrossEntropyLoss(**options))
    kept = y != ignored
    predicted = model(X).data.argmax(axis=1)
    assert figures["accuracy"] == pytest.approx((predicted[kept] == y[kept]).mean())
    with torch.no_grad():
        expected = loss(theirs(torch.tensor(X)), torch.tensor(y)).item()
    assert figures["loss"] == pytest.approx(expected, rel=1e-9)
    assert 0 <= history.history["accuracy"][0] <= 1


@pytest.mark.parametrize("planned", [True, False], ids=["planned", "layer_by_layer"])
def test_a_batch_of_ignored_rows_only_trains_on_as_pytorchs_loop(rng, planned):
    """A batch whose rows are all of the ignored class (padding at the end of a file):
    PyTorch's loss is NaN there with no gradient, and its loop goes on. fit took the NaN
    for a loss that diverged and stopped with TrainingError. The epoch's loss is the
    weighted mean over every row, as PyTorch's loss of all the rows at once."""
    rows, features, classes, batch = 48, 4, 3, 12
    X = rng.normal(size=(rows, features))
    ignored = int(rng.integers(0, classes))
    y = rng.integers(0, classes, rows)
    y[rng.random(rows) < 0.2] = ignored
    y[:batch] = ignored  # the first batch: nothing to learn from
    y[batch] = (ignored + 1) % classes  # (and some row that counts)
    options = {"weight": rng.uniform(0.2, 2.0, classes), "ignore_index": ignored}
    a, b = nn.Dense(features, 8).to("float64"), nn.Dense(8, classes).to("float64")
    model = nn.Sequential(a, nn.ReLU(), b) if planned else _OwnForward(a, b)
    theirs = torch.nn.Sequential(
        torch.nn.Linear(features, 8), torch.nn.ReLU(), torch.nn.Linear(8, classes)
    ).double()
    with torch.no_grad():
        for mine, their in zip(
            [a.weight, a.bias, b.weight, b.bias], theirs.parameters(), strict=True
        ):
            their.copy_(torch.tensor(mine.data))
    loss = torch.nn.CrossEntropyLoss(**_torch_options(options))
    summed = torch.nn.CrossEntropyLoss(**_torch_options(options), reduction="sum")
    opt = torch.optim.Adam(theirs.parameters(), lr=0.01)
    total = 0.0
    for start in range(0, rows, batch):
        opt.zero_grad()
        out = theirs(torch.tensor(X[start : start + batch]))
        target = torch.tensor(y[start : start + batch])
        loss(out, target).backward()  # NaN on the first batch, its gradient 0
        total += summed(out, target).item()
        opt.step()
    history = wxb.fit(
        model, X, y, loss=nn.CrossEntropyLoss(**options), optimizer="adam", lr=0.01,
        epochs=1, batch_size=batch, shuffle=False, verbose=0,
    )  # fmt: skip
    for mine, their in zip([a.weight, a.bias, b.weight, b.bias], theirs.parameters(), strict=True):
        np.testing.assert_allclose(mine.data, their.detach().numpy(), rtol=1e-9, atol=1e-12)
    kept = y != ignored
    weight_sum = options["weight"][y[kept]].sum()
    assert history.history["loss"][0] == pytest.approx(total / weight_sum, rel=1e-9)


@pytest.mark.parametrize("kind", [nn.CrossEntropyLoss, nn.NLLLoss])
def test_validation_rows_all_ignored_train_on_as_pytorchs_loop(rng, kind):
    """Validation rows all of the ignored class: PyTorch's val loss is NaN (0/0) and its
    loop goes on. fit raised TrainingError ('the loss became nan … on the validation
    rows') and put the initial weights back."""
    rows, features, classes = 10, 3, 4
    X, y = rng.normal(size=(rows, features)), rng.integers(0, classes, rows)
    ignored = int(rng.choice([-100, int(rng.integers(0, classes))]))
    y[y == ignored] = (ignored + 1) % classes
    X_val, y_val = rng.normal(size=(3, features)), np.full(3, ignored)
    runs = []
    for validation in (None, (X_val, y_val)):
        model = nn.Dense(features, classes).to("float64")
        model.weight.data[...] = np.linspace(-1, 1, features * classes).reshape(classes, -1)
        history = wxb.fit(
            model, X, y, loss=kind(ignore_index=ignored), optimizer="sgd", lr=0.1, epochs=2,
            batch_size=4, shuffle=False, verbose=0, validation_data=validation,
        )  # fmt: skip
        runs.append((model.weight.data.copy(), history))
    np.testing.assert_array_equal(runs[1][0], runs[0][0])
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(
            torch.zeros(3, classes, dtype=torch.float64),
            torch.tensor(y_val),
            ignore_index=ignored,
        ).item()
    assert np.isnan(expected)
    assert all(np.isnan(runs[1][1].history["val_loss"]))


def test_evaluate_in_batches_is_pytorchs_loss_of_every_row(rng):
    """Class weights and ignored rows give each batch's mean its own divisor: evaluate's
    figure over several batches is still PyTorch's loss over all the rows at once (it
    was the batch means weighted by their row counts, and NaN where a batch held only
    ignored rows)."""
    rows, features, classes = int(rng.integers(20, 60)), 3, 4
    X, y = rng.normal(size=(rows, features)), rng.integers(0, classes, rows)
    ignored = int(rng.integers(0, classes))
    y[rng.random(rows) < 0.3] = ignored
    y[:5] = ignored  # a batch of 5 rows that all count for nothing
    y[5] = (ignored + 1) % classes
    options = {"weight": rng.uniform(0.1, 3.0, classes), "ignore_index": ignored}
    model = nn.Sequential(nn.Dense(features, classes)).to("float64")
    figures = wxb.evaluate(model, X, y, nn.CrossEntropyLoss(**options), batch_size=5)
    loss = torch.nn.CrossEntropyLoss(**_torch_options(options))
    expected = loss(torch.tensor(model(X).data), torch.tensor(y)).item()
    assert figures["loss"] == pytest.approx(expected, rel=1e-9)


def test_options_set_later_change_the_loss_as_in_pytorch(rng):
    z, y = rng.normal(size=(6, 3)), rng.integers(0, 3, 6)
    weight = rng.uniform(0.1, 3.0, 3)
    ours = nn.CrossEntropyLoss()
    ours.weight = weight
    ours.label_smoothing = 0.25
    expected = torch.nn.CrossEntropyLoss(weight=torch.tensor(weight), label_smoothing=0.25)(
        torch.tensor(z), torch.tensor(y)
    )
    assert ours(wxb.Tensor(z), y).item() == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_array_equal(ours.weight.data, weight)
    assert "label_smoothing=0.25" in repr(ours)
    with pytest.raises(ConfigError, match=r"between 0\.0 and 1\.0"):
        ours.label_smoothing = -0.1
    assert ours.label_smoothing == 0.25  # a refused value leaves the loss as it was
    # the old positional reduction still reads as the reduction
    assert nn.CrossEntropyLoss("sum").reduction == "sum"


def test_clear_errors(rng):
    z = wxb.Tensor(rng.normal(size=(4, 3)))
    with pytest.raises(ShapeError, match="weight holds 2 class weights but the model has 3"):
        nn.CrossEntropyLoss(weight=[1.0, 2.0])(z, np.array([0, 1, 2, 0]))
    with pytest.raises(DataError, match="ignore_index=1 applies to class-index targets"):
        nn.CrossEntropyLoss(ignore_index=1)(z, rng.dirichlet(np.ones(3), 4))
    with pytest.raises(DataError, match="holds class 5"):
        nn.CrossEntropyLoss(ignore_index=7)(z, np.array([0, 5, 7, 1]))
    # PyTorch's F.cross_entropy takes the weights third, where wxb's reduction is
    with pytest.raises(ConfigError, match="weight="):
        nn.functional.cross_entropy(z, np.array([0, 1, 2, 0]), np.ones(3))


# -- BCEWithLogitsLoss: weight and pos_weight ---------------------------------------------
def _bce_options(rng, shape):
    options = {}
    if rng.random() < 0.7:
        shapes = [shape[-1:], shape, (1,)] if len(shape) == 2 else [shape]
        options["weight"] = rng.uniform(0.1, 3.0, shapes[int(rng.integers(0, len(shapes)))])
    if rng.random() < 0.7 or not options:
        options["pos_weight"] = rng.uniform(0.1, 5.0, shape[-1:])
    return options


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_weights_are_pytorchs(rng, reduction):
    """Values, ∂L/∂z and ∂L/∂y (a target that is another model's output) as PyTorch's,
    for weights of the output's shape, a row's, or one number, and labels or soft targets."""
    for _ in range(30):
        rows, outputs = int(rng.integers(1, 7)), int(rng.integers(1, 5))
        shape = (rows, outputs) if rng.random() < 0.8 else (rows,)
        z = rng.normal(size=shape) * 4
        y = rng.random(shape) if rng.random() < 0.5 else (rng.random(shape) < 0.3) * 1.0
        options = _bce_options(rng, shape)
        tz, ty = torch.tensor(z, requires_grad=True), torch.tensor(y, requires_grad=True)
        expected = torch.nn.BCEWithLogitsLoss(reduction=reduction, **_torch_options(options))(
            tz, ty
        )
        upstream = rng.normal(size=expected.shape)
        (expected * torch.tensor(upstream)).sum().backward()
        for functional in (False, True):
            oz, oy = wxb.Tensor(z, requires_grad=True), wxb.Tensor(y, requires_grad=True)
            if functional:
                f = nn.functional.binary_cross_entropy_with_logits
                value = f(oz, oy, reduction, **options)
            else:
                value = nn.BCEWithLogitsLoss(reduction=reduction, **options)(oz, oy)
            (value * wxb.Tensor(upstream)).sum().backward()
            where = f"{options}, functional={functional}"
            np.testing.assert_allclose(
                value.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=where
            )
            np.testing.assert_allclose(oz.grad, tz.grad.numpy(), rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(oy.grad, ty.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_fit_with_pos_weight_trains_as_pytorchs_loop(rng):
    """Several labels a row, rare positives weighted up: the planned step's weights after
    an epoch are PyTorch's."""
    rows, features, labels, batch = 48, 6, 3, 16
    X = rng.normal(size=(rows, features))
    y = (rng.random((rows, labels)) < 0.2) * 1.0
    options = {"pos_weight": rng.uniform(1.0, 6.0, labels), "weight": rng.uniform(0.5, 2, labels)}
    model = nn.Sequential(nn.Dense(features, 8), nn.Tanh(), nn.Dense(8, labels)).to("float64")
    assert model.why_not_planned() is None
    theirs = torch.nn.Sequential(
        torch.nn.Linear(features, 8), torch.nn.Tanh(), torch.nn.Linear(8, labels)
    ).double()
    with torch.no_grad():
        for mine, their in zip(model.parameters(), theirs.parameters(), strict=True):
            their.copy_(torch.tensor(mine.data))
    loss = torch.nn.BCEWithLogitsLoss(**_torch_options(options))
    opt = torch.optim.Adam(theirs.parameters(), lr=0.01)
    for start in range(0, rows, batch):
        opt.zero_grad()
        part = slice(start, start + batch)
        loss(theirs(torch.tensor(X[part])), torch.tensor(y[part])).backward()
        opt.step()
    wxb.fit(
        model, X, y, loss=nn.BCEWithLogitsLoss(**options),
        optimizer=wxb.optim.Adam(model.parameters(), lr=0.01),
        epochs=1, batch_size=batch, shuffle=False, verbose=0,
    )  # fmt: skip
    for mine, their in zip(model.parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(mine.data, their.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_bce_options_set_later_and_their_errors(rng):
    z, y = rng.normal(size=(5, 2)), (rng.random((5, 2)) < 0.5) * 1.0
    pos_weight = rng.uniform(0.5, 4.0, 2)
    ours = nn.BCEWithLogitsLoss()
    ours.pos_weight = pos_weight
    expected = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight))(
        torch.tensor(z), torch.tensor(y)
    )
    assert ours(wxb.Tensor(z), y).item() == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_array_equal(ours.pos_weight.data, pos_weight)
    assert ours.weight is None and "pos_weight=" in repr(ours)
    with pytest.raises(ShapeError, match=r"pos_weight of shape \(3,\) does not broadcast"):
        nn.BCEWithLogitsLoss(pos_weight=np.ones(3))(wxb.Tensor(z), y)
    with pytest.raises(ConfigError, match="weight must be numbers"):
        nn.BCEWithLogitsLoss(weight=["a", "b"])
    assert nn.BCEWithLogitsLoss("sum").reduction == "sum"  # the old positional reduction


def test_pos_weight_keeps_a_confident_right_answers_small_loss(rng):
    """y = 0, z ≪ 0: the loss is softplus(z), tiny. PyTorch's formula, (1 − y)·z +
    l·softplus(−z), cancels there to 0 in float32; wxb's sums two terms that do not."""
    z = -rng.uniform(15, 30, size=(8, 2)).astype(np.float32)
    y = np.zeros_like(z)
    loss = nn.BCEWithLogitsLoss(pos_weight=rng.uniform(0.5, 4, 2), reduction="none")
    expected = np.log1p(np.exp(z.astype(np.float64)))
    np.testing.assert_allclose(loss(wxb.Tensor(z), y).data, expected, rtol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_explain_states_the_weighted_bce_it_computes(rng, reduction):
    """explain of a BCEWithLogitsLoss with weight and pos_weight: its loss and δ lines
    state the weighted equation, and the numbers shown are that equation's (the plain
    BCE's equation stood beside the weighted numbers)."""
    rows, features, labels = 5, 3, int(rng.integers(2, 4))
    X = rng.normal(size=(rows, features))
    y = (rng.random((rows, labels)) < 0.4) * 1.0
    w, p = rng.uniform(0.2, 2.0, labels), rng.uniform(0.2, 5.0, labels)
    model = nn.Sequential(nn.Dense(features, 4), nn.ELU(), nn.Dense(4, labels)).to("float64")
    loss = nn.BCEWithLogitsLoss(weight=w, pos_weight=p, reduction=reduction)
    steps = {s.name: s for s in wxb.explain(model, X, y, loss, sample_rows=None).steps}
    z = model(X).data
    softplus = np.logaddexp(0, z)  # softplus(z); softplus(−z) = softplus(z) − z
    terms = w * (p * y * (softplus - z) + (1 - y) * softplus)
    scale = 1 / z.size if reduction == "mean" else 1.0
    sigma = 1 / (1 + np.exp(-z))
    delta = w * ((1 + (p - 1) * y) * sigma - p * y) * scale
    mean_or_sum = "mean of" if reduction == "mean" else "sum of"
    assert steps["loss"].equation.startswith(f"L = {mean_or_sum} w·[p·y·softplus(−z)")
    assert steps["loss"].value == pytest.approx(terms.sum() * scale, rel=1e-12)
    assert "w ⊙ ((1 + (p − 1)·Y) ⊙ σ(Z⁽²⁾) − p·Y)" in steps["dense2.delta"].equation
    np.testing.assert_allclose(steps["dense2.delta"].value, delta.T, rtol=1e-10, atol=1e-15)


def test_explain_takes_rows_of_the_ignore_index_as_fit_does(rng):
    """PyTorch's padding label -100 (or any ignore_index outside 0..C−1) among the targets:
    fit and evaluate take it, and explain refused it ('y holds the negative label -100').
    Its loss is PyTorch's, over the rows kept."""
    rows, classes = 6, 3
    X, y = rng.normal(size=(rows, 4)), rng.integers(0, classes, rows)
    ignored = int(rng.choice([-100, int(rng.integers(-50, 0)), classes + int(rng.integers(0, 5))]))
    y[rng.permutation(rows)[: int(rng.integers(1, rows))]] = ignored
    model = nn.Sequential(nn.Dense(4, 5), nn.SiLU(), nn.Dense(5, classes)).to("float64")
    loss = nn.CrossEntropyLoss(ignore_index=ignored)
    steps = {s.name: s for s in wxb.explain(model, X, y, loss, sample_rows=None).steps}
    expected = torch.nn.CrossEntropyLoss(ignore_index=ignored)(
        torch.tensor(model(X).data), torch.tensor(y)
    )
    assert steps["loss"].value == pytest.approx(expected.item(), rel=1e-12)


@pytest.mark.parametrize("nll", [False, True], ids=["cross_entropy", "nll"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_masked_classes_at_minus_infinity_are_pytorchs(rng, nll, reduction):
    """Logits of −inf (classes masked out), or log-probabilities of −inf (a probability
    of 0), in columns a row's class does not pick, and in rows ignored: PyTorch's loss
    picks y's column alone and skips the rows ignored, so it stays finite. With a weight
    or an ignore_index, wxb multiplied the 0s of its target rows by −inf: NaN."""
    rows, classes = int(rng.integers(4, 12)), int(rng.integers(3, 6))
    y = rng.integers(0, classes, rows)
    options = {"weight": rng.uniform(0.1, 3.0, classes)} if rng.random() < 0.5 else {}
    # (NLLLoss with a weight alone picks y's column alone: its NaN came from rows ignored)
    ignored = int(rng.integers(0, classes)) if nll or not options or rng.random() < 0.5 else None
    if ignored is not None:
        options["ignore_index"] = ignored
        y[rng.permutation(rows)[: rows // 2]] = ignored
        y[0] = (ignored + 1) % classes  # a row that counts
    z = rng.normal(size=(rows, classes)) * 3
    if nll:
        z -= np.log(np.exp(z).sum(axis=1, keepdims=True))
    masked = rng.random((rows, classes)) < 0.5
    masked[:, 0] |= y == ignored  # an ignored row's column 0 too (wxb picked it there)
    kept = np.flatnonzero(y != ignored)
    masked[kept, y[kept]] = False  # never a kept row's own class
    masked[np.arange(rows), np.where(y == ignored, classes - 1, y)] = False  # (a finite one)
    z[masked] = -np.inf
    ours_loss = (nn.NLLLoss if nll else nn.CrossEntropyLoss)(**options, reduction=reduction)
    their_loss = (torch.nn.NLLLoss if nll else torch.nn.CrossEntropyLoss)(
        **_torch_options(options), reduction=reduction
    )
    ours = wxb.Tensor(z, requires_grad=True)
    theirs = torch.tensor(z, requires_grad=True)
    value, expected = ours_loss(ours, y), their_loss(theirs, torch.tensor(y))
    g = rng.normal(size=value.shape)
    (value * wxb.Tensor(g)).sum().backward()
    (expected * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(value.data, expected.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-12, atol=1e-14)
