"""Silent differences from PyTorch 2.13 off the well-tested path: each test here failed
before its fix (fresh random draws on each run; ``WXB_TEST_SEED`` replays one)."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from rounding import affine_terms, rounding_atol

import wxb
from wxb import interop
from wxb.errors import ConfigError
from wxb.nn import BatchNorm1d, Dense, Module, ReLU, Sequential


def test_track_running_stats_switched_off_after_construction_as_torchs(rng):
    # PyTorch's idiom: the statistics stay for eval mode, training no longer moves them.
    # wxb read only whether the buffers were there: training went on moving them, and
    # to_torch/from_torch dropped them, so eval outputs differed without a word.
    width = int(rng.integers(2, 6))
    batches = [rng.normal(size=(int(rng.integers(3, 9)), width)) * 3 + 1 for _ in range(3)]
    mine = BatchNorm1d(width, momentum=float(rng.uniform(0.1, 0.9)), dtype="float64")
    twin = torch.nn.BatchNorm1d(width, momentum=mine.momentum, dtype=torch.float64)
    for layer, to in ((mine, np.asarray), (twin, torch.tensor)):
        layer(to(batches[0]))
        layer.track_running_stats = False
        out = layer(to(batches[1]))  # training: by the batch, nothing moved
        assert np.allclose(np.asarray(out.detach()), (batches[1] - batches[1].mean(0))
                           / np.sqrt(batches[1].var(0) + 1e-5), atol=1e-10)  # fmt: skip
    assert np.allclose(mine.running_mean, twin.running_mean.numpy(), rtol=1e-12)
    assert np.allclose(mine.running_var, twin.running_var.numpy(), rtol=1e-12)
    assert int(mine.num_batches_tracked) == int(twin.num_batches_tracked) == 1
    mine.eval(), twin.eval()
    expected = twin(torch.tensor(batches[2])).detach().numpy()
    assert np.allclose(mine(batches[2]).data, expected, rtol=1e-10, atol=1e-12)
    # converted either way, the statistics and the flag go with it
    model = Sequential(Dense(width, width, seed=rng), mine).double().eval()
    ported = interop.to_torch(model).eval()
    assert ported[1].track_running_stats is False
    X = torch.tensor(batches[2])
    assert np.allclose(ported(X).detach().numpy(), model(batches[2]).data, rtol=1e-10, atol=1e-12)
    back = interop.from_torch(torch.nn.Sequential(twin)).eval()
    assert back[0].track_running_stats is False
    assert np.allclose(back(batches[2]).data, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["Softmax", "LogSoftmax"])
def test_softmax_dim_set_after_construction_is_checked_as_at_construction(rng, kind):
    # PyTorch's layer.dim = 0 runs over the batch; wxb's kernel kept to the last axis,
    # on its own and in a Sequential, and gave the other axis's numbers without a word
    width = int(rng.integers(2, 5))
    layer = getattr(wxb.nn, kind)(dim=1)
    model = Sequential(Dense(width, width, seed=rng), getattr(wxb.nn, kind)(dim=-1))
    for held in (layer, model[1]):
        with pytest.raises(ConfigError, match="dim=0"):
            held.dim = 0
        held.dim = -1  # the last axis, taken
        assert held.dim == -1
    X = rng.normal(size=(int(rng.integers(2, 6)), width))
    twin = getattr(torch.nn, kind)(dim=-1)
    assert np.allclose(layer(X).data, twin(torch.tensor(X, dtype=torch.float32)).numpy(), atol=1e-6)
    assert np.all(np.isfinite(model(X).data))


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copied_model_starts_without_the_originals_gradients_as_torchs(rng, how):
    # PyTorch's Parameter copies (deepcopy, pickle, so a model's) leave .grad behind;
    # wxb's kept it, and a copy taken between backward and step, trained by a loop that
    # zeroes after its step, added that stale gradient into its first step silently
    model = Sequential(Dense(4, 6, seed=rng), ReLU(), Dense(6, 2, seed=rng)).double()
    twin = interop.to_torch(model)
    X, y = rng.normal(size=(8, 4)), rng.normal(size=(8, 2))

    def backward(m, to):
        ((m(to(X)) - to(y)) ** 2).mean().backward()

    wxb.optim.SGD(model.parameters(), lr=0.1)  # an optimiser holds the gradients' buffer
    backward(model, np.asarray)
    backward(twin, torch.tensor)
    if how == "deepcopy":
        mine, theirs = copy.deepcopy(model), copy.deepcopy(twin)
    else:
        mine, theirs = pickle.loads(pickle.dumps(model)), pickle.loads(pickle.dumps(twin))
    assert all(p.grad is None for p in theirs.parameters())
    assert all(p.grad is None for p in mine.parameters())
    assert all(p.grad is not None for p in model.parameters())  # the original keeps its own
    lr = float(rng.uniform(0.01, 0.1))
    opts = wxb.optim.SGD(mine.parameters(), lr=lr), torch.optim.SGD(theirs.parameters(), lr=lr)
    for _ in range(2):  # backward, step, then zero: the order many loops use
        backward(mine, np.asarray)
        backward(theirs, torch.tensor)
        for opt in opts:
            opt.step()
            opt.zero_grad()
    for p, q in zip(mine.parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-10, atol=1e-12)


COUPLINGS = {  # forwards of one's own whose rows depend on the rest of the batch
    "batch statistics": lambda h: (h - h.mean(0)) / (h.std(0) + 1e-3),
    "the first row": lambda h: h + h[0],
    "a softmax over the batch": lambda h: h.softmax(0),
}


class Coupled(Module):
    def __init__(self, rng, coupling):
        super().__init__()
        self.a, self.b = Dense(3, 5, seed=rng), Dense(5, 2, seed=rng)
        self.coupling = coupling

    def forward(self, x):
        return self.b(COUPLINGS[self.coupling](self.a(x)).tanh())


class RowWise(Module):
    def __init__(self, rng):
        super().__init__()
        self.a = Dense(3, 2, seed=rng)
        self.rows_seen = []

    def forward(self, x):
        self.rows_seen.append(len(x))
        return self.a(x).tanh() * 2.0


@pytest.mark.parametrize("coupling", list(COUPLINGS))
def test_predict_and_evaluate_of_a_forward_coupling_rows_give_model_X(rng, coupling):
    # predict and evaluate cut X into chunks: each chunk was standardised by itself
    # (or took its own first row), and the outputs and the loss differed from
    # model(X)'s without a word
    rows, chunk = int(rng.integers(6, 40)), int(rng.integers(1, 6))
    X = rng.normal(size=(rows, 3)) + np.linspace(0, 4, rows)[:, None]
    y = rng.normal(size=(rows, 2))
    model = Coupled(rng, coupling).double()
    with wxb.no_grad():
        whole = model(X).data
    np.testing.assert_allclose(model.predict(X, batch_size=chunk), whole, rtol=1e-12)
    loss = wxb.evaluate(model, X, y, loss="mse", batch_size=chunk)["loss"]
    assert loss == pytest.approx(0.5 * ((whole - y) ** 2).sum(1).mean(), rel=1e-12)
    # a forward of one's own that takes each row alone still runs in chunks
    rowwise = RowWise(rng).double()
    with wxb.no_grad():
        whole = rowwise(X).data
    rowwise.rows_seen.clear()
    # chunks of other sizes (1 row: gemv) sum the 3 + 1 terms of a row otherwise, and
    # 2·tanh carries that at most x2: an output near 0 differs by rounding alone
    terms = affine_terms(X, rowwise.a.weight.data.T, rowwise.a.bias.data)
    atol = 2 * rounding_atol(terms, 4)
    np.testing.assert_allclose(rowwise.predict(X, batch_size=chunk), whole, rtol=1e-12, atol=atol)
    assert max(rowwise.rows_seen) == max(chunk, 2)  # (2: the look across a border)


@pytest.mark.parametrize("kind", ["CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss"])
@pytest.mark.parametrize("how", ["item", "through a name", "attribute *="])
def test_class_weights_changed_in_place_reach_the_loss_as_torchs(rng, kind, how):
    # PyTorch's loss.weight is a buffer: loss.weight[0] = 5 changes the loss. Each read of
    # wxb's gave a copy, so the change was dropped and the old weights used silently
    classes, rows = int(rng.integers(2, 5)), int(rng.integers(3, 9))
    z = rng.normal(size=(rows, classes))
    binary = kind == "BCEWithLogitsLoss"
    y = rng.random((rows, classes)) if binary else rng.integers(0, classes, rows)
    name = "pos_weight" if binary else "weight"
    start = rng.uniform(0.5, 2.0, classes)
    mine = getattr(wxb.nn, kind)(reduction="sum", **{name: start})
    theirs = getattr(torch.nn, kind)(reduction="sum", **{name: torch.tensor(start)})
    new = float(rng.uniform(3.0, 6.0))
    for loss in (mine, theirs):
        if how == "item":
            getattr(loss, name)[0] = new
        elif how == "through a name":
            held = getattr(loss, name)
            held *= new
        else:
            setattr(loss, name, getattr(loss, name) * new)  # as loss.weight *= new reads
    expected = theirs(torch.tensor(z), torch.tensor(y)).item()
    assert mine(wxb.Tensor(z), y).item() == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(getattr(mine, name).data, getattr(theirs, name).numpy())


@pytest.mark.parametrize(
    "kind, settings, changed",
    [
        ("StepLR", {"step_size": 1, "gamma": 0.5}, "gamma"),
        ("ExponentialLR", {"gamma": 0.5}, "gamma"),
        ("MultiStepLR", {"milestones": [1, 2, 5], "gamma": 0.5}, "gamma"),
        ("CosineAnnealingLR", {"T_max": 10}, "eta_min"),
    ],
)
def test_a_schedule_setting_changed_mid_run_goes_on_from_the_rate_as_torchs(
    rng, kind, settings, changed
):
    # StepLR(γ 0.5) at 0.0125 after 3 steps, γ set to 0.9: PyTorch's next rate is
    # 0.0125 · 0.9; wxb's was 0.1 · 0.9⁴ = 0.066, five times larger, without a word
    lr = float(rng.uniform(0.05, 0.5))
    mine = wxb.optim.SGD([wxb.nn.Parameter(np.zeros(2))], lr=lr)
    theirs = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)
    schedules = (
        getattr(wxb.optim, kind)(mine, **settings),
        getattr(torch.optim.lr_scheduler, kind)(theirs, **settings),
    )
    value = float(rng.uniform(0.8, 0.95)) if changed == "gamma" else lr * 0.3
    for epoch in range(6):
        if epoch == 3:
            for schedule in schedules:
                setattr(schedule, changed, value)
        for step in (mine.step, theirs.step, *(s.step for s in schedules)):
            step()
        assert mine.param_groups[0]["lr"] == pytest.approx(theirs.param_groups[0]["lr"], rel=1e-9)


@pytest.mark.parametrize(
    "call",
    [
        lambda z, w: wxb.nn.functional.cross_entropy(z, np.arange(len(z)) % 3, weight=w),
        lambda z, w: wxb.nn.functional.nll_loss(z, np.arange(len(z)) % 3, weight=w),
        lambda z, w: wxb.nn.functional.bce_with_logits(z, np.ones(z.shape) / 2, weight=w),
        lambda z, w: wxb.nn.functional.bce_with_logits(z, np.ones(z.shape) / 2, pos_weight=w),
        lambda z, w: wxb.nn.CrossEntropyLoss(weight=w)(z, np.arange(len(z)) % 3),
        lambda z, w: wxb.nn.BCEWithLogitsLoss(pos_weight=w)(z, np.ones(z.shape) / 2),
    ],
    ids=["F.cross_entropy", "F.nll_loss", "F.bce weight", "F.bce pos_weight", "CE", "BCE"],
)
def test_loss_weights_that_require_grad_are_refused_as_torch_refuses(rng, call):
    # PyTorch: 'not differentiable with respect to argument weight'; wxb took the values
    # as constants, and the weights (a model's output, a Parameter) got no gradient unsaid
    z = wxb.Tensor(rng.normal(size=(int(rng.integers(3, 7)), 3)), requires_grad=True)
    w = wxb.Tensor(rng.uniform(0.5, 2.0, 3), requires_grad=True)
    with pytest.raises(ConfigError, match="requires grad"):
        call(z, w)
    call(z, w.detach()).backward()  # as a constant: taken
    assert w.grad is None and z.grad is not None
    with wxb.no_grad():
        call(z, w)  # nothing recorded: nothing to lose


@pytest.mark.parametrize("loss, setting", [("huber_loss", "delta"), ("smooth_l1_loss", "beta")])
def test_a_tensor_as_a_loss_threshold_is_refused_as_torch_refuses(rng, loss, setting):
    # F.huber_loss(..., delta=param) took float(param): a learnable δ got no gradient
    # without a word; PyTorch's takes only a float ('must be float, not Parameter')
    z = wxb.Tensor(rng.normal(size=(4, 3)), requires_grad=True)
    value = float(rng.uniform(0.2, 2.0))
    for bad in (wxb.nn.Parameter(np.array(value)), wxb.Tensor(np.array(value)), str(value)):
        with pytest.raises(ConfigError, match=setting):
            getattr(wxb.nn.functional, loss)(z, np.zeros((4, 3)), **{setting: bad})
    torch_loss = getattr(torch.nn.functional, loss)
    expected = torch_loss(
        torch.tensor(z.data), torch.zeros(4, 3, dtype=torch.float64), **{setting: value}
    )
    mine = getattr(wxb.nn.functional, loss)(z, np.zeros((4, 3)), **{setting: np.float64(value)})
    assert mine.item() == pytest.approx(expected.item(), rel=1e-12)


def test_a_schedule_setting_changed_mid_run_is_checked_and_resumes(rng):
    lr = float(rng.uniform(0.05, 0.5))
    optimizer = wxb.optim.SGD([wxb.nn.Parameter(np.zeros(2))], lr=lr)
    schedule = wxb.optim.StepLR(optimizer, step_size=1, gamma=0.5)
    schedule.step()
    schedule.gamma = -1.0
    with pytest.raises(wxb.ConfigError, match="gamma"):
        schedule.step()
    schedule.gamma = float(rng.uniform(0.8, 0.95))
    schedule.step()
    saved_optimizer, saved_schedule = optimizer.state_dict(), schedule.state_dict()
    expected = [schedule.step() for _ in range(3)]
    # a resumed run, made with the new setting, goes on as the uninterrupted one
    resumed = wxb.optim.SGD([wxb.nn.Parameter(np.zeros(2))], lr=lr)
    resumed.load_state_dict(saved_optimizer)
    again = wxb.optim.StepLR(resumed, step_size=1, gamma=schedule.gamma)
    again.load_state_dict(saved_schedule)
    assert [again.step() for _ in range(3)] == pytest.approx(expected, rel=1e-12)


def test_int_of_a_one_element_tensor_as_torchs(rng):
    for value in rng.normal(scale=50, size=8):
        for shape in ((), (1,), (1, 1)):
            data = np.full(shape, value)
            assert int(wxb.Tensor(data)) == int(torch.tensor(data))
    with pytest.raises(wxb.ShapeError):
        int(wxb.Tensor(rng.normal(size=3)))
