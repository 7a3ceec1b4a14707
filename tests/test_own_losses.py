"""Losses of one's own in fit, evaluate and explain: a function or a Loss subclass gets
its targets as given (class indices, extra columns), as in a PyTorch loop or Keras's
fit, and trains to PyTorch's numbers; what cannot be a batch's loss is refused in one
line."""

import warnings

import numpy as np
import pytest
import torch

import wxb
from wxb.errors import ConfigError
from wxb.nn import Dense, Loss, MSELoss, Sequential, Tanh


class Doubled(wxb.nn.Module):
    """A model a user writes: a forward of its own around a Sequential."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x) * 2.0


class TorchDoubled(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x) * 2.0


def twin_models(rng, features, hidden, outputs, kind="sequential"):
    """A float64 wxb model and a torch one with the same weights: a Sequential, the same
    inside a forward of one's own ("subclass"), or with its first layer frozen."""
    model = Sequential(
        Dense(features, hidden, dtype="float64"), Tanh(), Dense(hidden, outputs, dtype="float64")
    )
    twin = torch.nn.Sequential(
        torch.nn.Linear(features, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, outputs)
    ).double()
    with torch.no_grad():
        for ours, theirs in zip([model[0], model[2]], [twin[0], twin[2]], strict=True):
            ours.weight.data[...] = rng.normal(scale=0.5, size=ours.weight.shape)
            ours.bias.data[...] = rng.normal(scale=0.1, size=ours.bias.shape)
            theirs.weight.copy_(torch.from_numpy(ours.weight.data))
            theirs.bias.copy_(torch.from_numpy(ours.bias.data))
    if kind == "frozen":
        model[0].requires_grad_(False)
        twin[0].requires_grad_(False)
    elif kind == "subclass":
        model, twin = Doubled(model), TorchDoubled(twin)
    return model, twin


def focal(output, target):
    """Focal loss (γ = 2) on class indices, in wxb's Tensor operations."""
    log_p = output - output.exp().sum(axis=1, keepdims=True).log()
    picked = log_p[np.arange(len(target)), target]
    return (-((1 - picked.exp()) ** 2) * picked).mean()


def torch_focal(output, target):
    log_p = torch.log_softmax(output, dim=1)[torch.arange(len(target)), target]
    return (-((1 - log_p.exp()) ** 2) * log_p).mean()


class WeightedMSE(Loss):
    """Each row's squared error times a weight given as the target's last column."""

    def __call__(self, output, target):
        weights = target[:, -1:]
        return (((output - target[:, :-1]) ** 2) * weights).sum() / len(target)


def torch_weighted_mse(output, target):
    return (((output - target[:, :-1]) ** 2) * target[:, -1:]).sum() / len(target)


def trains_as_torch(model, twin, X, y, loss, torch_loss, epochs, batch, lr):
    """``wxb.fit`` with plain SGD over the rows in order, and the same loop in PyTorch:
    the same per-epoch losses and the same weights after it. Returns fit's History."""
    history = wxb.fit(
        model,
        X,
        y,
        loss=loss,
        optimizer=wxb.optim.SGD(model.parameters(), lr=lr),
        epochs=epochs,
        batch_size=batch,
        shuffle=False,
    )
    optimizer = torch.optim.SGD(twin.parameters(), lr=lr)
    expected = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, len(X), batch):
            xb, yb = (torch.from_numpy(a[start : start + batch]) for a in (X, y))
            optimizer.zero_grad()
            value = torch_loss(twin(xb), yb)
            value.backward()
            optimizer.step()
            total += value.item() * len(xb)
        expected.append(total / len(X))
    np.testing.assert_allclose(history.history["loss"], expected, rtol=1e-12)
    for ours, theirs in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), atol=1e-12)
    return history


@pytest.mark.parametrize("model_kind", ["sequential", "subclass", "frozen"])
@pytest.mark.parametrize("as_subclass", [False, True])
def test_function_loss_on_class_indices_trains_as_torch(rng, as_subclass, model_kind):
    rows, features, classes = int(rng.integers(40, 90)), 5, int(rng.integers(3, 6))
    X = rng.normal(size=(rows, features))
    y = rng.integers(0, classes, size=rows)
    model, twin = twin_models(rng, features, 7, classes, model_kind)
    if as_subclass:
        loss = type("Focal", (Loss,), {"__call__": lambda self, o, t: focal(o, t)})()
    else:
        loss = focal
    history = trains_as_torch(model, twin, X, y, loss, torch_focal, 3, 16, 0.3)
    assert "accuracy" not in history.history  # wxb cannot know what the loss's outputs mean
    with torch.no_grad():
        value = torch_focal(twin(torch.from_numpy(X)), torch.from_numpy(y)).item()
    assert wxb.evaluate(model, X, y, loss=loss)["loss"] == pytest.approx(value, rel=1e-12)


def test_own_loss_takes_targets_of_another_width_as_given(rng):
    rows, outputs = int(rng.integers(30, 70)), 2
    X = rng.normal(size=(rows, 4))
    Y = np.column_stack([rng.normal(size=(rows, outputs)), rng.uniform(0.1, 2.0, size=rows)])
    model, twin = twin_models(rng, 4, 6, outputs)
    trains_as_torch(model, twin, X, Y, WeightedMSE(), torch_weighted_mse, 2, 10, 0.05)


def test_own_loss_keeps_the_stock_shapes_when_they_fit(rng):
    """(B,) numbers for one output still reach the loss as (B, 1), as a stock loss's do:
    output − target then subtracts row from row, never (B, 1) − (B,) into (B, B)."""
    X, y = rng.normal(size=(25, 3)), rng.normal(size=25)
    seen = []

    def squared(output, target):
        seen.append(np.asarray(target).shape)
        return ((output - target) ** 2).mean()

    model = Sequential(Dense(3, 1, dtype="float64"))
    wxb.fit(model, X, y, loss=squared, epochs=1, batch_size=25, shuffle=False)
    assert seen[-1] == (25, 1)  # (seen[0]: fit's probe of a few rows, which form reads right)
    expected = np.mean((model.predict(X) - y[:, None]) ** 2)
    assert wxb.evaluate(model, X, y, loss=squared)["loss"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "loss, message",
    [
        (lambda output, target: output, "returned shape"),
        (lambda output, target: 1.5, "returned a float"),
        (MSELoss, "give an instance: MSELoss()"),
        ("hinge", "a Loss, or a function"),
        (3, "a Loss, or a function"),
    ],
)
def test_what_cannot_be_a_batch_loss_is_refused_in_one_line(rng, loss, message):
    X, y = rng.normal(size=(12, 3)), rng.integers(0, 2, size=12)
    model = Sequential(Dense(3, 2))
    before = model.state_dict()
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        wxb.fit(model, X, y, loss=loss, epochs=1)
    for name, array in model.state_dict().items():  # refused before any update
        np.testing.assert_array_equal(array, before[name])


def test_explain_shows_a_function_loss_and_torch_gradients(rng):
    X, y = rng.normal(size=(4, 3)), rng.integers(0, 3, size=4)
    model, twin = twin_models(rng, 3, 5, 3)
    text = str(wxb.explain(model, X, y, loss=focal))
    assert "L = focal(Ŷ, Y)" in text
    value = torch_focal(twin(torch.from_numpy(X)), torch.from_numpy(y))
    value.backward()
    explained = wxb.explain(model, X, y, loss=focal)
    assert explained.step("loss").value == pytest.approx(value.item(), rel=1e-12)
    for name, layer in (("dense1", twin[0]), ("dense2", twin[2])):
        shown = explained.step(f"{name}.dL/dW").value
        np.testing.assert_allclose(shown, layer.weight.grad.numpy(), atol=1e-12)


def test_a_loss_subclass_that_skips_loss_init_computes_a_mean(rng):
    X, y = rng.normal(size=(30, 3)), rng.integers(0, 3, size=30)

    class NoInit(Loss):
        def __init__(self, gamma):  # no super().__init__(): PyTorch users' habit for a Module
            self.gamma = gamma

        def __call__(self, output, target):
            return focal(output, target) * self.gamma

    model = Sequential(Dense(3, 3, dtype="float64"))
    history = wxb.fit(model, X, y, loss=NoInit(1.0), epochs=1, shuffle=False, batch_size=30)
    expected = wxb.evaluate(model, X, y, loss=focal)["loss"]
    assert wxb.evaluate(model, X, y, loss=NoInit(1.0))["loss"] == pytest.approx(expected)
    assert np.isfinite(history.history["loss"][0])


def test_a_stock_loss_subclass_with_a_call_of_its_own_is_a_loss_of_ones_own(rng):
    """Its targets as given (a weight column beside the label), no accuracy (what its
    outputs mean is its own), and no stock loss recorded in model.info."""
    rows = int(rng.integers(30, 60))
    X = rng.normal(size=(rows, 4))
    Y = np.column_stack([rng.integers(0, 2, rows), rng.uniform(0.5, 2.0, rows)])

    class Weighted(wxb.nn.BCEWithLogitsLoss):
        def __call__(self, output, target):
            z, label, weight = output[:, 0], target[:, 0], target[:, 1]
            softplus = (1 + (-z.abs()).exp()).log() + (z + z.abs()) * 0.5
            return ((softplus - z * label) * weight).mean()

    def torch_weighted(output, target):
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        return (bce(output[:, 0], target[:, 0], reduction="none") * target[:, 1]).mean()

    model, twin = twin_models(rng, 4, 5, 1)
    history = trains_as_torch(model, twin, X, Y, Weighted(), torch_weighted, 2, 8, 0.1)
    assert "accuracy" not in history.history
    assert "accuracy" not in wxb.evaluate(model, X, Y, loss=Weighted())
    assert "multilabel" not in model.info and "loss" not in model.info


@pytest.mark.parametrize("shape", [(1,), (1, 1)])
def test_a_loss_of_one_element_in_any_shape_counts_as_its_number(rng, shape):
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 3, size=20)
    model = Sequential(Dense(3, 3, dtype="float64"))
    history = wxb.fit(
        model, X, y, loss=lambda o, t: focal(o, t).reshape(shape), epochs=1, batch_size=20
    )
    assert np.isfinite(history.history["loss"][0])
    value = wxb.evaluate(model, X, y, loss=lambda o, t: focal(o, t).reshape(shape))["loss"]
    assert value == pytest.approx(wxb.evaluate(model, X, y, loss=focal)["loss"], rel=1e-12)


def test_a_torch_tensor_returned_is_named_as_torchs(rng):
    X, y = rng.normal(size=(10, 3)), rng.integers(0, 3, size=10)
    with pytest.raises(ConfigError, match=r"returned a torch\.Tensor"):
        wxb.fit(Sequential(Dense(3, 3)), X, y, loss=lambda o, t: torch.zeros(()), epochs=1)


def test_nullable_integer_targets_reach_the_loss_as_whole_numbers(rng):
    """pandas' Int64 (convert_dtypes) class indices index as NumPy's do: fit and evaluate
    read them as float64 before, and a loss indexing with them failed."""
    pd = pytest.importorskip("pandas")
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 3, size=40)
    plain, nullable = (Sequential(Dense(3, 3, dtype="float64", seed=5)) for _ in range(2))
    a = wxb.fit(plain, X, y, loss=focal, epochs=2, seed=1, validation_split=0.25)
    b = wxb.fit(
        nullable,
        X,
        pd.Series(y, dtype="Int64"),
        loss=focal,
        epochs=2,
        seed=1,
        validation_split=0.25,
    )
    assert a.history == b.history  # the same rows held out (stratified), the same numbers
    text = str(wxb.explain(nullable, X[:3], pd.Series(y[:3], dtype="Int64"), loss=focal))
    assert "L = focal(Ŷ, Y)" in text
    mixed = pd.DataFrame({"a": pd.array(y, dtype="Int64"), "b": pd.array(X[:, 0], "Float64")})
    wxb.explain(Sequential(Dense(3, 2, dtype="float64")), X[:3], mixed[:3], loss="mse")


def test_a_validation_loss_that_is_not_a_number_stops_fit(rng):
    X, y = rng.normal(size=(30, 3)), rng.normal(size=30)
    y_val = rng.normal(size=10)

    def log_error(output, target):  # finite on the training targets only
        return ((output - target) ** 2).mean() + wxb.Tensor(target + 10.0).log().mean()

    model = Sequential(Dense(3, 1, dtype="float64"))
    y_val[0] = -20.0  # log of a negative number on a validation row: NaN
    with pytest.raises(wxb.errors.TrainingError, match="became nan at epoch 1 on the validation"):
        wxb.fit(
            model,
            X,
            y + 20.0,
            loss=log_error,
            epochs=3,
            early_stopping=2,
            validation_data=(rng.normal(size=(10, 3)), y_val),
        )


@pytest.mark.parametrize("change", ["lambda", "partial", "weights"])
def test_a_resume_refuses_another_loss_of_ones_own(rng, tmp_path, change):
    import functools

    X, y = rng.normal(size=(40, 3)), rng.integers(0, 3, size=40)

    def gamma_focal(output, target, gamma=2.0, weights=None):
        log_p = output - output.exp().sum(axis=1, keepdims=True).log()
        picked = log_p[np.arange(len(target)), target]
        weight = 1.0 if weights is None else weights[target]
        return (-((1 - picked.exp()) ** gamma) * picked * weight).mean()

    class ClassWeighted(Loss):
        def __init__(self, weights):
            super().__init__()
            self.weights = np.asarray(weights, float)

        def __call__(self, output, target):
            return gamma_focal(output, target, weights=self.weights)

    first, second = {
        "lambda": (lambda o, t: gamma_focal(o, t), lambda o, t: gamma_focal(o, t, gamma=5.0)),
        "partial": (
            functools.partial(gamma_focal, gamma=2),
            functools.partial(gamma_focal, gamma=5),
        ),
        "weights": (ClassWeighted([1, 1, 1]), ClassWeighted([1, 3, 10])),
    }[change]

    def run(loss, epochs):
        model = Sequential(Dense(3, 3, dtype="float64", seed=2))
        return wxb.fit(
            model, X, y, loss=loss, epochs=epochs, seed=0, checkpoint_dir=tmp_path, resume=True
        )

    run(first, 1)
    with pytest.raises(ConfigError, match="loss differs"):
        run(second, 2)
    assert len(run(first, 2).history["loss"]) == 2  # the same loss again resumes


def test_a_functions_digest_is_the_same_in_a_new_process(tmp_path):
    """A resume in a new process runs the same code: its digest must not hold anything
    of the process (addresses in reprs of nested code or objects)."""
    import subprocess
    import sys

    source = tmp_path / "lossdef.py"
    source.write_text(
        "import functools\n"
        "def outer(o, t, scale=2.0):\n"
        "    inner = lambda z: (z * scale).mean()\n"
        "    return inner(o - t)\n"
        "loss = functools.partial(outer, scale=3.0)\n"
    )
    script = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import lossdef; "
        "from wxb.checkpoint import code_digest; print(code_digest(lossdef.loss))"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    }
    assert len(digests) == 1 and len(digests.pop().strip()) == 16


def test_integer_targets_that_are_identifiers_are_not_stratified(rng):
    """Item ids as a loss of one's own's targets (more distinct values than half the
    rows) split as numbers do: stratifying by them took 49 s at 40,000 rows, and a class
    per row is no class. Targets of fewer values are still stratified as classes."""
    rows = int(rng.integers(200, 400))
    X = rng.normal(size=(rows, 3))
    ids = rng.permutation(rows)

    def regress(output, target):
        return ((output[:, 0] - target * 0.01) ** 2).mean()

    runs = [
        wxb.fit(
            Sequential(Dense(3, 1, dtype="float64", seed=3)),
            X, targets, loss=regress, epochs=2, seed=4, validation_split=0.2,
        ).history
        for targets in (ids, ids.astype(np.float64))
    ]  # fmt: skip
    assert runs[0] == runs[1]


def test_a_resume_tells_closures_apart_and_not_the_line_around_a_lambda(rng, tmp_path):
    """A loss made by a function of its weight (w captured in a closure) resumed with
    another weight silently; a lambda's digest took its whole source line, so the same
    lambda written in a fit call with other epochs was refused."""
    from wxb.checkpoint import code_digest

    def weighted(w):
        def loss(output, target):
            return focal(output, target) * w

        return loss

    assert code_digest(weighted(1.0)) == code_digest(weighted(1.0))
    assert code_digest(weighted(1.0)) != code_digest(weighted(5.0))
    first, second = lambda o, t: focal(o, t), lambda o, t: focal(o, t)
    assert code_digest(first) == code_digest(second)  # one line, the same code
    X, y = rng.normal(size=(30, 3)), rng.integers(0, 3, size=30)
    model = lambda: Sequential(Dense(3, 3, dtype="float64", seed=2))  # noqa: E731
    kept = dict(seed=0, checkpoint_dir=tmp_path, resume=True)
    wxb.fit(model(), X, y, loss=lambda o, t: focal(o, t), epochs=1, **kept)
    wxb.fit(model(), X, y, loss=lambda o, t: focal(o, t), epochs=2, **kept)  # resumes
    with pytest.raises(ConfigError, match="loss differs"):
        wxb.fit(model(), X, y, loss=weighted(5.0), epochs=3, **kept)


def test_a_checkpoint_from_before_loss_digests_resumes(rng, tmp_path):
    """Checkpoints written before losses of one's own got a code digest record only the
    loss's plain settings: compared on those, they resume."""
    import json

    X, y = rng.normal(size=(30, 3)), rng.integers(0, 3, size=30)

    class Scaled(Loss):
        def __init__(self):
            super().__init__()
            self.classes = np.ones(3)

        def __call__(self, output, target):
            return focal(output, target)

    def run(epochs):
        model = Sequential(Dense(3, 3, dtype="float64", seed=2))
        return wxb.fit(
            model, X, y, loss=Scaled(), epochs=epochs, seed=0, checkpoint_dir=tmp_path,
            resume=True,
        )  # fmt: skip

    from wxb.checkpoint import _json_digest

    run(1)
    records = list(tmp_path.glob("*.json"))
    assert records
    for record in records:  # as an earlier wxb wrote it, checksum and all
        meta = json.loads(record.read_text())
        meta["run"]["loss"] = {"type": "Scaled", "reduction": "mean"}
        meta["json_sha256"] = _json_digest(meta)
        record.write_text(json.dumps(meta))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not skipped as damaged, nor started afresh
        history = run(2)
    assert history.resumed_from is not None and len(history.history["loss"]) == 2
