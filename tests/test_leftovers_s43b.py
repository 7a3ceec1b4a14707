"""Leftovers of session 43 (b): lr=0, Sequential(OrderedDict), buffers as a Dense's W or b,
patched loss classes, against PyTorch on random inputs drawn fresh each run (the seed is
printed; ``WXB_TEST_SEED`` replays it)."""

import itertools

import numpy as np
import pytest
import torch
from rounding import rounding_atol

import wxb
from wxb import optim
from wxb.nn.module import Parameter

OURS = {
    "sgd": optim.SGD,
    "adam": optim.Adam,
    "adamw": optim.AdamW,
    "rmsprop": optim.RMSprop,
    "adagrad": optim.Adagrad,
}
THEIRS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}


def _options(rng, name):
    options = {"weight_decay": float(rng.choice([0.0, rng.uniform(0, 0.1)]))}
    if name in ("sgd", "rmsprop"):
        options["momentum"] = float(rng.choice([0.0, rng.uniform(0.5, 0.9)]))
    return options


def _twins(rng, count):
    arrays = [
        rng.normal(size=tuple(rng.integers(1, 6, size=int(rng.integers(1, 3)))))
        for _ in range(count)
    ]
    ours = [Parameter(a, dtype="float64") for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    return ours, theirs


def _grads(rng, ours, theirs):
    for p, q in zip(ours, theirs, strict=True):
        g = rng.normal(size=p.shape)
        p.grad, q.grad = g.copy(), torch.tensor(g)


def _same(seeded, ours, theirs, where):
    for i, (p, q) in enumerate(zip(ours, theirs, strict=True)):
        np.testing.assert_allclose(
            p.data, q.detach().numpy(), rtol=1e-10, atol=1e-13, err_msg=seeded.msg(f"{where} #{i}")
        )


# -- 1. lr = 0 -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(OURS))
def test_lr_zero_group_freezes_as_torch_and_its_state_advances(seeded, name):
    # lr=0 was refused ("lr must be > 0"), which PyTorch takes: a group at 0 freezes part of
    # a model, and the moments and step counts still advance (seen once it is unfrozen)
    rng = seeded.rng
    ours, theirs = _twins(rng, int(rng.integers(3, 6)))
    cut = int(rng.integers(1, len(ours)))
    options, lr = _options(rng, name), float(rng.uniform(1e-3, 5e-2))
    whole = bool(rng.random() < 0.3)  # the constructor's lr at 0, else one group's
    late = {"params": ours[-1:], "lr": 0}, {"params": theirs[-1:], "lr": 0}
    if whole:
        opt = OURS[name](ours[:-1], lr=0, **options)
        ref = THEIRS[name](theirs[:-1], lr=0, **options)
    else:
        opt = OURS[name](
            [{"params": ours[:cut], "lr": 0.0}, {"params": ours[cut:-1]}], lr=lr, **options
        )
        ref = THEIRS[name](
            [{"params": theirs[:cut], "lr": 0.0}, {"params": theirs[cut:-1]}], lr=lr, **options
        )
    opt.add_param_group(late[0])
    ref.add_param_group(late[1])
    frozen = [p.data.copy() for p in ours[: (len(ours) if whole else cut)]] + [ours[-1].data.copy()]
    largest = 0.0  # the largest gradient entry: the size of the moments' terms
    for _ in range(int(rng.integers(2, 5))):
        _grads(rng, ours, theirs)
        largest = max(largest, *(float(np.abs(p.grad).max()) for p in ours))
        opt.step()
        ref.step()
    _same(seeded, ours, theirs, "after steps at lr 0")
    for a, b in zip(frozen, [*ours[: (len(ours) if whole else cut)], ours[-1]], strict=True):
        np.testing.assert_array_equal(a, b.data, err_msg=seeded.msg("a weight at lr 0 moved"))
    if name in ("adam", "adamw"):
        for p, q in zip(ours, theirs, strict=True):
            assert opt.state[p]["step"] == int(ref.state[q]["step"]), seeded.msg("step count")
            # m sums ≤ 4 gradients of either sign, torch's lerp in another order: an
            # entry near 0 differs by ulps of the gradients alone (v's terms are ≥ 0)
            np.testing.assert_allclose(
                opt.state[p]["moment1"],
                ref.state[q]["exp_avg"],
                rtol=1e-12,
                atol=rounding_atol(largest, 3 * 4),
            )
            np.testing.assert_allclose(
                opt.state[p]["moment2"], ref.state[q]["exp_avg_sq"], rtol=1e-12
            )
    for a, b in zip(opt.param_groups, ref.param_groups, strict=True):  # unfrozen
        a["lr"] = b["lr"] = lr
    for _ in range(2):
        _grads(rng, ours, theirs)
        opt.step()
        ref.step()
    _same(seeded, ours, theirs, "after unfreezing")


def test_lr_zero_schedules_and_fit(seeded):
    rng = seeded.rng
    ours, theirs = _twins(rng, 2)
    gamma = float(rng.uniform(0.1, 0.9))
    opt = optim.SGD([{"params": ours[:1], "lr": 0}, {"params": ours[1:]}], lr=0.1)
    ref = torch.optim.SGD([{"params": theirs[:1], "lr": 0}, {"params": theirs[1:]}], lr=0.1)
    mine = optim.StepLR(opt, step_size=1, gamma=gamma)
    theirs_ = torch.optim.lr_scheduler.StepLR(ref, step_size=1, gamma=gamma)
    for _ in range(3):
        _grads(rng, ours, theirs)
        opt.step()
        ref.step()
        mine.step()
        theirs_.step()
        assert [g["lr"] for g in opt.param_groups] == pytest.approx(
            [g["lr"] for g in ref.param_groups], rel=1e-12
        )
    _same(seeded, ours, theirs, "StepLR from a group at lr 0")
    # fit with lr=0 by name: it runs, and the weights stay as they were
    X = rng.normal(size=(int(rng.integers(8, 30)), 3))
    y = rng.normal(size=(len(X), 1))
    model = wxb.nn.Sequential(wxb.nn.Dense(3, 4), wxb.nn.Tanh(), wxb.nn.Dense(4, 1))
    before = [p.data.copy() for p in model.parameters()]
    wxb.fit(model, X, y, loss="mse", optimizer="adam", lr=0, epochs=2, batch_size=4, verbose=0)
    for a, p in zip(before, model.parameters(), strict=True):
        np.testing.assert_array_equal(a, p.data, err_msg=seeded.msg("fit at lr 0 moved a weight"))


# -- 2. Sequential(OrderedDict) ----------------------------------------------------------------
def test_sequential_of_an_ordered_dict_is_torch_s(seeded):
    # Sequential(OrderedDict([('fc1', Linear), …])), PyTorch's usual way to name layers, was
    # refused ("item 0 is OrderedDict, not a wxb.nn.Module")
    from collections import OrderedDict

    from wxb import nn

    rng = seeded.rng
    sizes = [int(s) for s in rng.integers(1, 7, size=int(rng.integers(2, 5)))]
    acts = {"relu": (nn.ReLU, torch.nn.ReLU), "tanh": (nn.Tanh, torch.nn.Tanh)}
    ours, theirs = [], []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        ours.append((f"fc{i}", nn.Linear(a, b, dtype="float64")))
        theirs.append((f"fc{i}", torch.nn.Linear(a, b).double()))
        if i < len(sizes) - 2:
            kind = str(rng.choice(list(acts)))
            ours.append((f"{kind}_{i}", acts[kind][0]()))
            theirs.append((f"{kind}_{i}", acts[kind][1]()))
    model = nn.Sequential(OrderedDict(ours))
    ref = torch.nn.Sequential(OrderedDict(theirs))
    assert list(model.state_dict()) == list(ref.state_dict()), seeded.msg("state_dict keys")
    assert [k for k, _ in model.named_children()] == [k for k, _ in ref.named_children()]
    model.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    X = rng.normal(size=(int(rng.integers(1, 20)), sizes[0]))
    y = rng.normal(size=(len(X), sizes[-1]))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        opt.zero_grad()
        topt.zero_grad()
        out, tout = model(X), ref(torch.tensor(X))
        np.testing.assert_allclose(
            out.data, tout.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=seeded.msg(f"step {_}")
        )
        wxb.nn.MSELoss()(out, y).backward()  # the seed's ½‖ŷ − y‖², averaged over rows
        (0.5 * ((tout - torch.tensor(y)) ** 2).sum(1).mean()).backward()
        opt.step()
        topt.step()
    theirs_now = ref.state_dict()
    for key, value in model.state_dict().items():
        np.testing.assert_allclose(
            value, theirs_now[key].numpy(), rtol=1e-10, atol=1e-12, err_msg=seeded.msg(key)
        )


def test_sequential_of_an_ordered_dict_names_and_refusals():
    from collections import OrderedDict

    from wxb import nn
    from wxb.errors import ConfigError

    shared = nn.Linear(2, 2)
    model = nn.Sequential(OrderedDict([("a", shared), ("act", nn.Tanh()), ("b", shared)]))
    assert list(model._modules) == ["a", "act", "b"] and model.b is shared
    assert shared.name == "a"  # a layer's name is its first key
    with pytest.raises(ConfigError, match=r"under 'fc' is named 'x'; give it that key"):
        nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2, name="x"))]))
    assert nn.Sequential(OrderedDict([("x", nn.Linear(2, 2, name="x"))]))[0].name == "x"
    with pytest.raises(ConfigError, match=r"'forward' is already an attribute"):
        nn.Sequential(OrderedDict([("forward", nn.Linear(2, 2))]))
    with pytest.raises(ConfigError, match=r"go in one OrderedDict"):
        nn.Sequential({"a": nn.Linear(2, 2)})


# -- 3. a Dense whose W or b is a buffer; a patched Dense.forward ------------------------------
def _as_buffer(layer, key):
    value = getattr(layer, key)
    value = value.detach().clone() if isinstance(value, torch.Tensor) else value.data.copy()
    delattr(layer, key)
    layer.register_buffer(key, value)


@pytest.mark.parametrize("key", ["weight", "bias"])
def test_summary_and_to_torch_take_a_buffer_as_weight_or_bias(seeded, key):
    # PyTorch's `del lin.bias; lin.register_buffer('bias', b)` (a frozen constant): the
    # layer ran, but model.summary() and to_torch failed with "'numpy.ndarray' object has
    # no attribute 'requires_grad'"
    from wxb import interop, nn

    rng = seeded.rng
    sizes = [int(s) for s in rng.integers(1, 7, size=3)]
    model = nn.Sequential(
        nn.Linear(sizes[0], sizes[1], dtype="float64"),
        nn.Tanh(),
        nn.Linear(sizes[1], sizes[2], dtype="float64"),
    )
    where = int(rng.integers(2)) * 2  # the first Dense, or the last
    _as_buffer(model[where], key)
    ref = torch.nn.Sequential(
        torch.nn.Linear(sizes[0], sizes[1]), torch.nn.Tanh(), torch.nn.Linear(sizes[1], sizes[2])
    ).double()
    _as_buffer(ref[where], key)
    for index, name in ((0, "weight"), (0, "bias"), (2, "weight"), (2, "bias")):  # ref's values
        mine = getattr(model[index], name)
        mine = mine if isinstance(mine, np.ndarray) else mine.data
        np.copyto(mine, getattr(ref[index], name).detach().numpy())
    shown = model.summary()
    assert shown.parameters == sum(p.numel() for p in ref.parameters()), seeded.msg("params")
    twin = interop.to_torch(model)
    assert sorted(n.split(".")[1] for n, _ in twin.named_buffers()) == [key]
    assert [tuple(p.shape) for p in twin.parameters()] == [tuple(p.shape) for p in ref.parameters()]
    X = rng.normal(size=(int(rng.integers(1, 9)), sizes[0]))
    expected = ref(torch.tensor(X)).detach().numpy()
    np.testing.assert_allclose(model(X).data, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(twin(torch.tensor(X)).detach().numpy(), expected, rtol=1e-12)
    # the twin trains as torch's model with that buffer: the buffer stays as it was
    opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    ((twin(torch.tensor(X)) ** 2).sum()).backward()
    opt.step()
    buffer = dict(twin.named_buffers())
    np.testing.assert_array_equal(next(iter(buffer.values())).numpy(), getattr(model[where], key))


def test_a_dense_whose_class_forward_was_patched_is_no_stock_dense(monkeypatch):
    # runs_dense_forward took a Dense whose class had a new forward (Dense.forward = …) for a
    # stock one: the summary showed '?' in its rows yet counted W·X in the totals
    from wxb import describe, nn

    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    stock = model.summary().forward_flops
    assert describe.runs_dense_forward(model[0]) and stock > 0
    original = nn.Dense.forward
    monkeypatch.setattr(nn.Dense, "forward", lambda self, x: original(self, x) * 2)
    assert not describe.runs_dense_forward(model[0])
    # its W·X is no Dense row's now: counted from the sample batch's graph as its own code's
    patched = model.summary()
    assert patched.forward_flops == stock
    assert [r.forward_flops for r in patched.rows if r.type == "Dense"] == [0, 0]
    monkeypatch.undo()
    assert describe.runs_dense_forward(model[0])


# -- 4. a forward assigned to Loss, or to a stock loss's class ---------------------------------
@pytest.mark.parametrize("patched", ["Loss", "MSELoss"])
def test_a_patched_loss_class_forward_is_what_fit_trains_on(seeded, monkeypatch, patched):
    # nn.Loss.forward = … (a scaled or logged loss for every loss) was ignored: the planned
    # step compared each loss's forward with the patched Loss.forward, took the loss for a
    # stock one and ran its kernel, training on the unscaled loss without a word
    from wxb import nn
    from wxb.nn.losses import stock_loss

    rng = seeded.rng
    n_in, hidden = (int(v) for v in rng.integers(1, 6, size=2))
    rows, batch = int(rng.integers(4, 24)), int(rng.integers(1, 8))
    scale = float(rng.uniform(0.5, 4.0))
    X, y = rng.normal(size=(rows, n_in)), rng.normal(size=(rows, 1))
    model = nn.Sequential(nn.Linear(n_in, hidden, dtype="float64"), nn.Tanh())
    model.append(nn.Linear(hidden, 1, dtype="float64"))
    ref = torch.nn.Sequential(
        torch.nn.Linear(n_in, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1)
    ).double()
    model.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    assert stock_loss(nn.MSELoss()) is nn.MSELoss  # (asked before the patch: cached)
    cls = getattr(nn, patched)
    original, calls = cls.forward, []

    def forward(self, output, target):
        calls.append(len(output))
        return original(self, output, target) * scale

    monkeypatch.setattr(cls, "forward", forward)
    epochs = int(rng.integers(1, 3))
    wxb.fit(
        model, X, y, loss="mse", optimizer="sgd", lr=0.05, epochs=epochs, batch_size=batch,
        shuffle=False, verbose=0,
    )  # fmt: skip
    opt = torch.optim.SGD(ref.parameters(), lr=0.05)
    for _ in range(epochs):
        for start in range(0, rows, batch):
            xb, yb = torch.tensor(X[start : start + batch]), torch.tensor(y[start : start + batch])
            opt.zero_grad()
            # wxb's MSELoss: the seed's ½‖ŷ − y‖² averaged over rows, here scaled
            (scale * 0.5 * ((ref(xb) - yb) ** 2).sum(1).mean()).backward()
            opt.step()
    pairs = zip(model.state_dict().items(), ref.state_dict().values(), strict=True)
    for (key, value), theirs in pairs:  # (by position: dense1.weight is 0.weight)
        np.testing.assert_allclose(
            value, theirs.numpy(), rtol=1e-9, atol=1e-12, err_msg=seeded.msg(key)
        )
    assert len(calls) == epochs * -(-rows // batch), seeded.msg(f"loss calls {calls}")
    assert stock_loss(nn.MSELoss()) is None, "a patched forward is no stock loss's"


# -- 6. fit's look at the output's shape: documented, and only that one call -------------------
def test_a_forward_of_one_s_own_runs_once_more_than_a_torch_loop_only_for_the_look(seeded):
    # fit looks at the output's shape with one forward of two rows before any step (its
    # docstring says so): a counter inside forward sees a PyTorch loop's calls, one per
    # batch, and that one more, no other
    from wxb import nn

    rng = seeded.rng
    calls = []

    class Net(nn.Module):
        def __init__(self, n_in):
            super().__init__()
            self.fc = nn.Linear(n_in, 1, dtype="float64")

        def forward(self, x):
            calls.append((len(x), self.training))
            return self.fc(x)

    n_in, rows = int(rng.integers(1, 5)), int(rng.integers(1, 30))
    batch, epochs = int(rng.integers(1, 9)), int(rng.integers(1, 3))
    X, y = rng.normal(size=(rows, n_in)), rng.normal(size=(rows, 1))
    wxb.fit(Net(n_in), X, y, loss="mse", epochs=epochs, batch_size=batch, shuffle=False, verbose=0)
    loop = [(len(X[s : s + batch]), True) for _ in range(epochs) for s in range(0, rows, batch)]
    assert calls == [(min(rows, 2), False), *loop], seeded.msg(f"forward calls {calls}")
    assert "once more than a PyTorch loop" in " ".join(wxb.fit.__doc__.split())


@pytest.mark.parametrize("key", ["weight", "bias"])
def test_explain_takes_a_buffer_as_weight_or_bias(seeded, key):
    # wxb.explain failed with a bare KeyError (the id of the array) on a Dense whose W or b
    # is a buffer: it now shows no ∂L/∂W or ∂L/∂b for that constant, as PyTorch's autograd
    # gives it none, and the other gradients are torch's
    from wxb import nn

    rng = seeded.rng
    sizes = [int(s) for s in rng.integers(2, 6, size=3)]
    model = nn.Sequential(
        nn.Linear(sizes[0], sizes[1], dtype="float64"),
        nn.Tanh(),
        nn.Linear(sizes[1], sizes[2], dtype="float64"),
    )
    ref = torch.nn.Sequential(
        torch.nn.Linear(sizes[0], sizes[1]), torch.nn.Tanh(), torch.nn.Linear(sizes[1], sizes[2])
    ).double()
    for index in (0, 2):
        for name in ("weight", "bias"):
            np.copyto(getattr(model[index], name).data, getattr(ref[index], name).detach().numpy())
    where = int(rng.integers(2)) * 2
    _as_buffer(model[where], key)
    _as_buffer(ref[where], key)
    X = rng.normal(size=(int(rng.integers(1, 6)), sizes[0]))
    y = rng.integers(0, sizes[2], size=len(X))
    shown = wxb.explain(model, X, y, loss="cross_entropy", sample_rows=None)
    torch.nn.functional.cross_entropy(ref(torch.tensor(X)), torch.tensor(y)).backward()
    names = {step.name for step in shown.steps}
    constant = f"dense{where // 2 + 1}.dL/d{'W' if key == 'weight' else 'b'}"
    assert constant not in names, seeded.msg(f"{constant} shown for a buffer")
    for index in (0, 2):
        for name, symbol in (("weight", "W"), ("bias", "b")):
            param = getattr(ref[index], name)
            if isinstance(param, torch.nn.Parameter):
                got = shown.step(f"dense{index // 2 + 1}.dL/d{symbol}").value
                np.testing.assert_allclose(
                    got, param.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=seeded.msg(name)
                )
