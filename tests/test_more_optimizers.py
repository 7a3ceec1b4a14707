"""RMSprop and Adagrad: PyTorch's updates step by step (every option, two groups, a
parameter without a gradient), their state round trip, and fit training with them."""

import numpy as np
import pytest

import wxb
from wxb.errors import ConfigError

torch = pytest.importorskip("torch")


def _rmsprop_options(rng):
    options = {"lr": float(rng.uniform(1e-3, 0.05)), "alpha": float(rng.uniform(0.5, 0.999))}
    if rng.random() < 0.5:
        options["momentum"] = float(rng.uniform(0, 0.95))
    if rng.random() < 0.5:
        options["centered"] = True
    if rng.random() < 0.5:
        options["weight_decay"] = float(rng.uniform(0, 0.1))
    if rng.random() < 0.3:
        options["eps"] = float(rng.choice([1e-8, 1e-4, 1e-2]))
    return options


def _adagrad_options(rng):
    options = {"lr": float(rng.uniform(1e-3, 0.1))}
    for key, high in (("lr_decay", 0.2), ("weight_decay", 0.1)):
        if rng.random() < 0.5:
            options[key] = float(rng.uniform(0, high))
    if rng.random() < 0.3:
        options["eps"] = float(rng.choice([1e-10, 1e-4]))
    return options


KINDS = {
    "rmsprop": (wxb.optim.RMSprop, torch.optim.RMSprop, _rmsprop_options),
    "adagrad": (wxb.optim.Adagrad, torch.optim.Adagrad, _adagrad_options),
}


def _twins(rng):
    """Two wxb layers and PyTorch's, with the same weights, in float64."""
    ours = [wxb.nn.Dense(4, 3, dtype="float64"), wxb.nn.Dense(3, 2, dtype="float64")]
    theirs = [torch.nn.Linear(4, 3).double(), torch.nn.Linear(3, 2).double()]
    with torch.no_grad():
        for a, b in zip(ours, theirs, strict=True):
            for p, q in zip(a.parameters(), b.parameters(), strict=True):
                q.copy_(torch.tensor(p.data))
    return ours, theirs


@pytest.mark.parametrize("kind", list(KINDS))
def test_updates_are_pytorchs(rng, kind):
    ours_kind, their_kind, draw = KINDS[kind]
    for _ in range(5):
        ours, theirs = _twins(rng)
        groups = [draw(rng), draw(rng)]  # each layer its own group, its own options
        # Adagrad's starting sum: the constructor's, which PyTorch gives every group
        start = {"initial_accumulator_value": float(rng.uniform(0, 1))} if kind == "adagrad" else {}
        opt = ours_kind(
            [{"params": m.parameters(), **g} for m, g in zip(ours, groups, strict=True)], **start
        )
        their_opt = their_kind(
            [{"params": m.parameters(), **g} for m, g in zip(theirs, groups, strict=True)], **start
        )
        mine = [p for m in ours for p in m.parameters()]
        their = [p for m in theirs for p in m.parameters()]
        for step in range(20):
            skipped = int(rng.integers(0, len(mine))) if rng.random() < 0.3 else None
            for index, (p, q) in enumerate(zip(mine, their, strict=True)):
                if index == skipped:  # no gradient this step: not stepped, as in PyTorch
                    p.grad, q.grad = None, None
                    continue
                g = rng.normal(size=p.shape)
                p.grad, q.grad = g.copy(), torch.tensor(g)
            opt.step()
            their_opt.step()
            for p, q in zip(mine, their, strict=True):
                np.testing.assert_allclose(
                    p.data, q.detach().numpy(), rtol=1e-11, atol=1e-13, err_msg=f"{groups} {step}"
                )


@pytest.mark.parametrize("kind", list(KINDS))
def test_state_round_trip_continues_as_the_uninterrupted_run(rng, kind):
    ours_kind, _, draw = KINDS[kind]
    options = draw(rng)
    layer = wxb.nn.Dense(3, 2, dtype="float64")
    opt = ours_kind(layer.parameters(), **options)
    grads = [[rng.normal(size=p.shape) for p in layer.parameters()] for _ in range(10)]

    def step(optimizer, params, gs):
        for p, g in zip(params, gs, strict=True):
            p.grad = g.copy()
        optimizer.step()

    for gs in grads[:5]:
        step(opt, layer.parameters(), gs)
    saved_weights = [p.data.copy() for p in layer.parameters()]
    saved = opt.state_dict()
    for gs in grads[5:]:
        step(opt, layer.parameters(), gs)
    again = wxb.nn.Dense(3, 2, dtype="float64")
    for p, w in zip(again.parameters(), saved_weights, strict=True):
        p.data[...] = w
    resumed = ours_kind(again.parameters(), **options)
    resumed.load_state_dict(saved)
    for gs in grads[5:]:
        step(resumed, again.parameters(), gs)
    for p, q in zip(again.parameters(), layer.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data)


@pytest.mark.parametrize("kind", list(KINDS))
def test_fit_by_name_trains_as_pytorchs_loop(rng, kind):
    X, y = rng.normal(size=(32, 4)), rng.integers(0, 2, 32)
    model = wxb.nn.Sequential(wxb.nn.Dense(4, 3), wxb.nn.ReLU(), wxb.nn.Dense(3, 2)).to("float64")
    twin = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    twin = twin.double()
    with torch.no_grad():
        for p, q in zip(model.parameters(), twin.parameters(), strict=True):
            q.copy_(torch.tensor(p.data))
    wxb.fit(model, X, y, optimizer=kind, lr=0.01, epochs=2, batch_size=8, shuffle=False, verbose=0)
    their_opt = KINDS[kind][1](twin.parameters(), lr=0.01)
    loss = torch.nn.CrossEntropyLoss()
    for _ in range(2):
        for start in range(0, 32, 8):
            their_opt.zero_grad()
            loss(
                twin(torch.tensor(X[start : start + 8])), torch.tensor(y[start : start + 8])
            ).backward()
            their_opt.step()
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_bad_options_are_refused():
    params = wxb.nn.Dense(2, 2).parameters()
    for make in (
        lambda: wxb.optim.RMSprop(params, alpha=1.5),
        lambda: wxb.optim.RMSprop(params, eps=-1.0),
        lambda: wxb.optim.RMSprop(params, centered="yes"),
        lambda: wxb.optim.RMSprop(params, momentum=-0.1),
        lambda: wxb.optim.Adagrad(params, lr_decay=-1.0),
        lambda: wxb.optim.Adagrad(params, initial_accumulator_value=-0.5),
        lambda: wxb.optim.Adagrad(params, maximize=True),
    ):
        with pytest.raises(ConfigError):
            make()


def test_adagrad_starts_each_group_from_its_own_sum(rng):
    """A group's initial_accumulator_value is its start (PyTorch's takes the
    constructor's for every group, whatever the group says)."""
    values = rng.uniform(0.1, 2.0, 2)
    a, b = wxb.nn.Dense(3, 2), wxb.nn.Dense(2, 2)
    opt = wxb.optim.Adagrad(
        [{"params": a.parameters(), "initial_accumulator_value": values[0]},
         {"params": b.parameters(), "initial_accumulator_value": values[1]}],
    )  # fmt: skip
    for index, start in enumerate([values[0]] * 2 + [values[1]] * 2):
        np.testing.assert_allclose(opt.sum[index], start, rtol=1e-6)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_state_reset_starts_again_as_pytorchs(rng, kind):
    """``optimizer.state = defaultdict(dict)``, PyTorch's reset: the steps after it are
    PyTorch's. Adagrad's Σ restarts at initial_accumulator_value, as PyTorch's lazily
    made sum does (it restarted at 0, so the next steps were larger)."""
    import collections

    ours_kind, their_kind, draw = KINDS[kind]
    options = draw(rng)
    if kind == "adagrad":
        options["initial_accumulator_value"] = float(rng.uniform(0.1, 2.0))
    (ours,), (theirs,) = (group[:1] for group in _twins(rng))
    opt, their_opt = (
        ours_kind(ours.parameters(), **options),
        their_kind(theirs.parameters(), **options),
    )
    for step in range(8):
        if step == 4:
            opt.state = collections.defaultdict(dict)
            their_opt.state = collections.defaultdict(dict)
        for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
            g = rng.normal(size=p.shape)
            p.grad, q.grad = g.copy(), torch.tensor(g)
        opt.step()
        their_opt.step()
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_tied_layer_and_a_frozen_one_train_as_pytorchs(rng, kind):
    """A user's model: one Dense applied twice (its gradient the sum of both uses) after
    a frozen first layer; fit with the optimiser built on every parameter, as PyTorch's
    loop is (the frozen one gets no gradient, so no step)."""
    X, y = rng.normal(size=(24, 3)), rng.integers(0, 3, 24)
    first, tied = wxb.nn.Dense(3, 3, dtype="float64"), wxb.nn.Dense(3, 3, dtype="float64")
    first.weight.requires_grad = first.bias.requires_grad = False
    model = wxb.nn.Sequential(first, wxb.nn.Tanh(), tied, wxb.nn.Tanh(), tied)
    t_first, t_tied = torch.nn.Linear(3, 3).double(), torch.nn.Linear(3, 3).double()
    with torch.no_grad():
        for mine, their in ((first, t_first), (tied, t_tied)):
            their.weight.copy_(torch.tensor(mine.weight.data))
            their.bias.copy_(torch.tensor(mine.bias.data))
    t_first.requires_grad_(False)
    twin = torch.nn.Sequential(t_first, torch.nn.Tanh(), t_tied, torch.nn.Tanh(), t_tied)
    options = KINDS[kind][2](rng)
    opt = KINDS[kind][0](model.parameters(), **options)
    wxb.fit(model, X, y, optimizer=opt, epochs=2, batch_size=8, shuffle=False, verbose=0)
    their_opt = KINDS[kind][1](twin.parameters(), **options)
    loss = torch.nn.CrossEntropyLoss()
    for _ in range(2):
        for start in range(0, 24, 8):
            their_opt.zero_grad()
            loss(
                twin(torch.tensor(X[start : start + 8])), torch.tensor(y[start : start + 8])
            ).backward()
            their_opt.step()
    for mine, their in ((first, t_first), (tied, t_tied)):
        np.testing.assert_allclose(
            mine.weight.data, their.weight.detach().numpy(), rtol=1e-10, atol=1e-12
        )
        np.testing.assert_allclose(
            mine.bias.data, their.bias.detach().numpy(), rtol=1e-10, atol=1e-12
        )
