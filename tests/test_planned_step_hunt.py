"""Models users change after they were planned, or write so that they look plannable,
trained by ``wxb.fit``, ``wxb.make_step`` and the hand-written loop against the same
PyTorch loop from the same weights and batches: what a hunt through the planner found.
The seed of each run is printed in the assertion (replay with ``WXB_TEST_SEED``)."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import wxb
from wxb import nn, optim

torch = pytest.importorskip("torch")


def linear_like(dense: nn.Dense, cls: type = torch.nn.Linear) -> torch.nn.Linear:
    """A float64 torch Linear (or subclass) holding a copy of ``dense``'s W and b."""
    layer = cls(dense.in_features, dense.out_features, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(dense.weight.data))
        layer.bias.copy_(torch.from_numpy(dense.bias.data))
    return layer


def half_mse(out, target):
    """wxb's MSELoss: ½‖ŷ − y‖² summed over the outputs, averaged over the rows."""
    return 0.5 * ((out - target) ** 2).sum(1).mean()


class Run:
    """One wxb model and its torch twin, trained batch by batch in the same order."""

    def __init__(self, seeded, model, twin, n, c, batch=6, batches=4):
        rng = seeded.rng
        self.seeded, self.model, self.twin, self.batch = seeded, model, twin, batch
        self.X = rng.normal(size=(batch * batches, n))
        self.y = rng.normal(size=(batch * batches, c))
        self.opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        self.twin_opt = torch.optim.SGD(twin.parameters(), lr=0.05, momentum=0.9)
        self.ours, self.theirs, self.done = [], [], 0
        self.step, self.loss, self.twin_loss = None, nn.MSELoss(), half_mse

    def batches(self, count):
        for k in range(self.done, self.done + count):
            start = (k * self.batch) % len(self.X)
            yield self.X[start : start + self.batch], self.y[start : start + self.batch]
        self.done += count

    def train(self, how, count):
        for xb, yb in self.batches(count):
            if how == "make_step":
                if self.step is None:
                    self.step = wxb.make_step(self.model, self.loss, self.opt)
                self.ours.append(self.step(xb, yb))
            else:  # the loop a user writes
                self.opt.zero_grad()
                loss = self.loss(self.model(xb), yb)
                loss.backward()
                self.opt.step()
                self.ours.append(loss.item())
            self.twin_opt.zero_grad()
            loss = self.twin_loss(self.twin(torch.from_numpy(xb)), torch.from_numpy(yb))
            loss.backward()
            self.twin_opt.step()
            self.theirs.append(loss.item())

    def check(self, what):
        msg = self.seeded.msg(what)
        np.testing.assert_allclose(self.ours, self.theirs, rtol=1e-10, atol=1e-12, err_msg=msg)
        ours = [p.data for p in self.model.parameters()]
        theirs = [p.detach().numpy() for p in self.twin.parameters()]
        assert len(ours) == len(theirs), msg
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=msg)
        with wxb.no_grad():
            predicted = self.model(self.X).data
        with torch.no_grad():
            expected = self.twin(torch.from_numpy(self.X)).numpy()
        np.testing.assert_allclose(predicted, expected, rtol=1e-10, atol=1e-12, err_msg=msg)


@pytest.mark.parametrize("how", ["make_step", "loop"])
def test_a_layer_class_given_another_forward_after_planning_runs_it(seeded, how):
    """``MyDense.forward = …`` after the model trained a few steps: the layers of that
    class compute the new forward, as PyTorch's do. The planned stack (whose plans are
    checked only when the structure changes) kept running the stock W·X + b."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 6, size=3))
    factor = float(rng.uniform(0.2, 0.8))

    class MyDense(nn.Dense):  # a subclass of one's own, as yet with Dense's forward
        pass

    class TheirDense(torch.nn.Linear):
        factor = 1.0

        def forward(self, x):
            return super().forward(x) * self.factor

    first = nn.Dense(n, h, dtype="float64", seed=rng)
    middle = MyDense(h, h, dtype="float64", seed=rng)
    last = nn.Dense(h, c, dtype="float64", seed=rng)
    model = nn.Sequential(first, nn.ReLU(), middle, nn.Tanh(), last)
    twin = torch.nn.Sequential(
        linear_like(first),
        torch.nn.ReLU(),
        linear_like(middle, TheirDense),
        torch.nn.Tanh(),
        linear_like(last),
    )
    run = Run(seeded, model, twin, n, c)
    run.train(how, 3)  # (the third on the lean stack of its batch size)

    def scaled(self, x):
        return nn.Dense.forward(self, x) * factor

    MyDense.forward = scaled
    TheirDense.factor = factor
    run.train(how, 4)
    run.check(f"{how}: a Dense subclass given another forward after 3 steps")


def test_a_stock_layers_forward_patched_is_what_fit_trains(seeded, monkeypatch):
    """``nn.Dense.forward`` wrapped (a patch that scales, adds noise, logs): fit took the
    model for stock layers by comparing each class's forward with Dense.forward, which
    is the patch now, and trained the planned stack's W·X + b without it."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 6, size=3))
    factor = float(rng.uniform(0.2, 0.8))
    model = nn.Sequential(
        nn.Dense(n, h, dtype="float64", seed=rng), nn.Tanh(), nn.Dense(h, c, dtype="float64")
    )

    class TheirDense(torch.nn.Linear):
        def forward(self, x):
            return super().forward(x) * factor

    twin = torch.nn.Sequential(
        linear_like(model[0], TheirDense), torch.nn.Tanh(), linear_like(model[2], TheirDense)
    )
    stock = nn.Dense.forward

    def scaled(self, x):
        return stock(self, x) * factor

    monkeypatch.setattr(nn.Dense, "forward", scaled)
    X, y = rng.normal(size=(24, n)), rng.normal(size=(24, c))
    opt = optim.Adam(model.parameters(), lr=0.01)
    history = wxb.fit(
        model, X, y, loss="mse", optimizer=opt, epochs=2, batch_size=8, shuffle=False,
        verbose=False,
    )  # fmt: skip
    twin_opt = torch.optim.Adam(twin.parameters(), lr=0.01)
    expected = []
    for _ in range(2):
        total = 0.0
        for start in range(0, len(X), 8):
            twin_opt.zero_grad()
            loss = half_mse(twin(torch.from_numpy(X[start : start + 8])),
                            torch.from_numpy(y[start : start + 8]))  # fmt: skip
            loss.backward()
            twin_opt.step()
            total += loss.item() * 8
        expected.append(total / len(X))
    msg = seeded.msg(f"fit with Dense.forward patched (engine {history.engine})")
    np.testing.assert_allclose(history["loss"], expected, rtol=1e-10, err_msg=msg)
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=msg)


def stack_and_twin(rng, n, h, c):
    """A float64 Sequential of stock layers and its torch twin."""
    first = nn.Dense(n, h, dtype="float64", seed=rng)
    last = nn.Dense(h, c, dtype="float64", seed=rng)
    model = nn.Sequential(first, nn.Tanh(), last)
    return model, torch.nn.Sequential(linear_like(first), torch.nn.Tanh(), linear_like(last))


@pytest.mark.parametrize("where", ["instance", "class"])
def test_a_loss_given_a_forward_after_make_step_is_what_the_step_trains(seeded, where):
    """``loss.forward = …`` (or the loss's class given one) after ``make_step`` built a
    planned step: the step called the stock loss's kernel still, and trained on the old
    loss without a word (GraphStep calls the loss, as a PyTorch loop does)."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 6, size=3))
    weight = float(rng.uniform(1.5, 4))
    model, twin = stack_and_twin(rng, n, h, c)
    run = Run(seeded, model, twin, n, c)

    class MyLoss(nn.MSELoss):  # a subclass of one's own, as yet the stock loss
        pass

    run.loss = MyLoss()
    run.train("make_step", 3)
    if where == "instance":
        stock = run.loss.forward
        run.loss.forward = lambda out, target: stock(out, target) * weight
    else:
        MyLoss.forward = lambda self, out, target: nn.MSELoss.forward(self, out, target) * weight
    run.twin_loss = lambda out, target: half_mse(out, target) * weight
    run.train("make_step", 4)
    run.check(f"make_step, the loss given another forward on its {where} after 3 steps")


@pytest.mark.parametrize("how", ["make_step", "loop"])
def test_a_layer_given_another_class_after_planning_runs_its_forward(seeded, how):
    """``layer.__class__ = Scaled`` (how some tools convert layers in place) after a few
    steps: the layer computes Scaled's forward, as PyTorch's does. The assignment did not
    reach the plans, which kept running the stock W·X + b for it."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 6, size=3))
    factor = float(rng.uniform(0.2, 0.8))

    class Scaled(nn.Dense):
        def forward(self, x):
            return super().forward(x) * factor

    class TheirScaled(torch.nn.Linear):
        def forward(self, x):
            return super().forward(x) * factor

    model, twin = stack_and_twin(rng, n, h, c)
    run = Run(seeded, model, twin, n, c)
    run.train(how, 3)
    model[2].__class__, twin[2].__class__ = Scaled, TheirScaled
    run.train(how, 4)
    run.check(f"{how}: the last Dense given a class with its own forward after 3 steps")


def fit_epochs(seeded, model, twin, X, y, epochs, batch, make_optimizers):
    """``wxb.fit`` (shuffle=False) and the same epochs of a torch loop, each with a new
    optimiser from ``make_optimizers``; returns both per-epoch losses."""
    ours_opt, their_opt = make_optimizers(model, twin)
    history = wxb.fit(
        model, X, y, loss="mse", optimizer=ours_opt, epochs=epochs, batch_size=batch,
        shuffle=False, verbose=False,
    )  # fmt: skip
    theirs = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, len(X), batch):
            rows = slice(start, start + batch)
            their_opt.zero_grad()
            loss = half_mse(twin(torch.from_numpy(X[rows])), torch.from_numpy(y[rows]))
            loss.backward()
            their_opt.step()
            total += loss.item() * len(X[rows])
        theirs.append(total / len(X))
    return history["loss"], theirs


def test_a_layer_set_at_a_second_place_is_shared_there_as_torchs(seeded):
    """``model[4] = model[2]`` after a fit (tying two layers' weights, as a PyTorch user
    writes it) was refused with advice that cannot be followed ("give it that name, or
    none": the layer's name is its first place's); ``append`` took the same layer. Now it
    is held at both places and the next fit trains the tied weights as PyTorch's."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 6, size=3))
    dense = [nn.Dense(a, b, dtype="float64", seed=rng) for a, b in ((n, h), (h, h), (h, h), (h, c))]
    model = nn.Sequential(dense[0], nn.ReLU(), dense[1], nn.Tanh(), dense[2], nn.Tanh(), dense[3])
    twin = torch.nn.Sequential(
        linear_like(dense[0]), torch.nn.ReLU(), linear_like(dense[1]), torch.nn.Tanh(),
        linear_like(dense[2]), torch.nn.Tanh(), linear_like(dense[3]),
    )  # fmt: skip
    X, y = rng.normal(size=(24, n)), rng.normal(size=(24, c))

    def adam(ours, theirs):
        return optim.Adam(ours.parameters(), lr=0.01), torch.optim.Adam(
            theirs.parameters(), lr=0.01
        )

    first = fit_epochs(seeded, model, twin, X, y, 2, 8, adam)
    model[4], twin[4] = model[2], twin[2]
    model[4] = model[4]  # (a layer set where it is: as it was, also under a key of its own)
    assert model[4] is model[2] and len(model) == 7, seeded.msg(str(list(model._modules)))
    second = fit_epochs(seeded, model, twin, X, y, 2, 8, adam)
    msg = seeded.msg("a fit after model[4] = model[2]")
    np.testing.assert_allclose(first[0] + second[0], first[1] + second[1], rtol=1e-10, err_msg=msg)
    ours = list(model.parameters())
    theirs = list(twin.parameters())
    assert len(ours) == len(theirs) == 6, msg
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=msg)


def test_make_step_takes_a_loss_and_optimiser_as_fit_takes_them(seeded):
    """``wxb.make_step`` (fit's step, public) failed at its first call on an attribute
    for what fit takes (``make_step(model, "mse", "sgd")``: 'str' object has no attribute
    'reduction') and for PyTorch's loss or optimiser ('int' object is not callable, 'SGD'
    object has no attribute 'params'). Names are taken as fit takes them (trained as the
    same torch loop), and the rest is refused in one line."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 6, size=3))
    model, twin = stack_and_twin(rng, n, h, c)
    step = wxb.make_step(model, "mse", "sgd")  # fit's SGD: its default rate
    rate = step.optimizer.param_groups[0]["lr"]
    their_opt = torch.optim.SGD(twin.parameters(), lr=rate)
    X, y = rng.normal(size=(18, n)), rng.normal(size=(18, c))
    for start in range(0, 18, 6):
        ours = step(X[start : start + 6], y[start : start + 6])
        their_opt.zero_grad()
        loss = half_mse(twin(torch.from_numpy(X[start : start + 6])),
                        torch.from_numpy(y[start : start + 6]))  # fmt: skip
        loss.backward()
        their_opt.step()
        np.testing.assert_allclose(ours, loss.item(), rtol=1e-10, err_msg=seeded.msg("loss"))
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-10, atol=1e-12)
    opt = optim.SGD(model.parameters(), lr=0.1)
    refused = [
        (torch.nn.MSELoss(), opt, "PyTorch's MSELoss"),
        (nn.MSELoss, opt, "the class MSELoss"),
        (nn.MSELoss(), torch.optim.SGD(twin.parameters(), lr=0.1), "PyTorch's SGD"),
        (nn.MSELoss(), None, "optimizer must be one of"),
    ]
    for loss, optimizer, said in refused:
        for make in (wxb.make_step, wxb.GraphStep, wxb.PlannedStep):
            with pytest.raises(wxb.errors.ConfigError, match=said) as caught:
                make(model, loss, optimizer)
            assert "\n" not in str(caught.value), seeded.msg(str(caught.value))


@pytest.mark.parametrize("shape", ["vector", "3-D"])
def test_a_weight_given_through_data_that_is_no_matrix_is_refused_in_one_line(seeded, shape):
    """``dense.weight.data = a`` with ``a`` no (out × in) matrix: PyTorch's Linear refuses
    it at the next call. wxb read ``a.shape[1]`` as the inputs: predict ran an (m, n, 1)
    W broadcast through the planned stack and gave numbers without a word, training
    failed in the planned backward on a matmul's gufunc signature, and a vector W failed
    on 'tuple index out of range'. Each now says which layer's W, in one line."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 6, size=3))
    model, twin = stack_and_twin(rng, n, h, c)
    X, y = rng.normal(size=(8, n)), rng.normal(size=(8, c))
    bad = rng.normal(size=(h,) if shape == "vector" else (h, n, 1))
    twin[0].weight.data = torch.from_numpy(bad)
    with pytest.raises(RuntimeError):  # PyTorch's Linear refuses it
        twin(torch.from_numpy(X))
    model[0].weight.data = bad
    opt = optim.SGD(model.parameters(), lr=0.1)
    calls = {
        "predict": lambda: model.predict(X),
        "no_grad call": lambda: model(X),
        "loop": lambda: nn.MSELoss()(model(X), y).backward(),
        "make_step": lambda: wxb.make_step(model, nn.MSELoss(), opt)(X, y),
        "fit": lambda: wxb.fit(model, X, y, loss="mse", optimizer=opt, epochs=1, verbose=False),
    }
    for what, call in calls.items():
        with wxb.no_grad() if what == "no_grad call" else contextlib.nullcontext():
            with pytest.raises(wxb.errors.ShapeError, match="W must be a matrix") as caught:
                call()
        message = str(caught.value)
        assert "\n" not in message and model[0].label in message, seeded.msg(f"{what}: {message}")
    assert str(tuple(bad.shape)) in repr(model), seeded.msg(repr(model))


@pytest.mark.parametrize("which", ["mean", "scale"])
def test_standardize_statistics_set_in_another_shape_are_refused_in_one_line(seeded, which):
    """A Standardize's mean (or scale) set later as a column, (n, 1), where the
    constructor takes one value per feature: for a batch of n rows the planned stack and
    the graph both broadcast it along the rows (row i less mean[i], not each feature
    less its mean) and predicted without a word; a (1, n) mean was read as one feature.
    Each path now refuses it in one line naming the layer."""
    rng = seeded.rng
    n, c = (int(v) for v in rng.integers(2, 6, size=2))
    layer = nn.Standardize(rng.normal(size=n), rng.uniform(0.5, 2, size=n), dtype="float64")
    model = nn.Sequential(layer, nn.Dense(n, c, dtype="float64", seed=rng))
    X, y = rng.normal(size=(n, n)), rng.normal(size=(n, c))  # n rows: the broadcast fits
    setattr(layer, which, getattr(layer, which).reshape(n, 1).copy())
    opt = optim.SGD(model.parameters(), lr=0.1)
    calls = {
        "predict": lambda: model.predict(X),
        "loop": lambda: nn.MSELoss()(model(X), y).backward(),
        "make_step": lambda: wxb.make_step(model, nn.MSELoss(), opt)(X, y),
        "fit": lambda: wxb.fit(model, X, y, loss="mse", optimizer=opt, epochs=1, verbose=False),
    }
    for what, call in calls.items():
        with pytest.raises(wxb.errors.ShapeError, match="one value per feature") as caught:
            call()
        message = str(caught.value)
        assert "\n" not in message and layer.label in message, seeded.msg(f"{what}: {message}")


def test_a_class_given_another_forward_during_fit_is_what_its_later_epochs_train(seeded):
    """A schedule of one's own (stepped by fit after each epoch) that gives a layer
    class another forward after epoch 1, as a callback might: fit's planned step, made
    at the start, ran the stock tanh for the rest of the run (the losses of epochs 2 and
    3 off PyTorch's loop, which calls the layer)."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 6, size=3))
    factor = float(rng.uniform(0.2, 0.8))

    class MyTanh(nn.Tanh):
        pass

    class TheirTanh(torch.nn.Tanh):
        factor = 1.0

        def forward(self, x):
            return super().forward(x) * self.factor

    first = nn.Dense(n, h, dtype="float64", seed=rng)
    last = nn.Dense(h, c, dtype="float64", seed=rng)
    model = nn.Sequential(first, MyTanh(), last)
    twin = torch.nn.Sequential(linear_like(first), TheirTanh(), linear_like(last))
    opt = optim.Adam(model.parameters(), lr=0.01)

    class Patching(optim.StepLR):
        def step(self):
            rate = super().step()
            if self.epoch == 1:
                MyTanh.forward = lambda self, x: nn.Tanh.forward(self, x) * factor
            return rate

    X, y = rng.normal(size=(24, n)), rng.normal(size=(24, c))
    history = wxb.fit(
        model, X, y, loss="mse", optimizer=opt, epochs=3, batch_size=8, shuffle=False,
        verbose=False, lr_schedule=Patching(opt, step_size=100),
    )  # fmt: skip
    their_opt = torch.optim.Adam(twin.parameters(), lr=0.01)
    expected = []
    for epoch in range(3):
        total = 0.0
        for start in range(0, 24, 8):
            their_opt.zero_grad()
            loss = half_mse(twin(torch.from_numpy(X[start : start + 8])),
                            torch.from_numpy(y[start : start + 8]))  # fmt: skip
            loss.backward()
            their_opt.step()
            total += loss.item() * 8
        expected.append(total / 24)
        if epoch == 0:
            TheirTanh.factor = factor
    msg = seeded.msg("fit, a layer's class given another forward after epoch 1")
    np.testing.assert_allclose(history["loss"], expected, rtol=1e-10, err_msg=msg)
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=msg)


@pytest.mark.parametrize("how", ["fit", "make_step", "loop"])
def test_a_dense_whose_w_or_b_is_a_buffer_trains_as_torchs(seeded, how):
    """PyTorch's way to freeze a Linear's b (or W) and keep it in the state:
    ``del lin.bias; lin.register_buffer("bias", b)``. wxb's Dense handed the array to
    its ops as if it were a Tensor, and every call failed on "'numpy.ndarray' object
    has no attribute 'requires_grad'"; it is now a constant, as PyTorch's buffer."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 6, size=3))
    model, twin = stack_and_twin(rng, n, h, c)
    b = rng.normal(size=h)
    W = model[2].weight.data.copy()
    del model[0].bias, model[2].weight
    model[0].register_buffer("bias", b.copy())
    model[2].register_buffer("weight", W.copy())
    del twin[0].bias, twin[2].weight
    twin[0].register_buffer("bias", torch.from_numpy(b.copy()))
    twin[2].register_buffer("weight", torch.from_numpy(W.copy()))
    run = Run(seeded, model, twin, n, c)
    if how == "fit":
        ours, theirs = fit_epochs(seeded, model, twin, run.X, run.y, 2, 6, lambda a, b: (
            optim.SGD(a.parameters(), lr=0.05, momentum=0.9),
            torch.optim.SGD(b.parameters(), lr=0.05, momentum=0.9),
        ))  # fmt: skip
        run.ours, run.theirs = list(ours), theirs
    else:
        run.train(how, 6)
    run.check(f"{how}: the first b and the last W buffers")
    np.testing.assert_array_equal(model[0].bias, b)  # constants: not trained
    np.testing.assert_array_equal(model[2].weight, W)
