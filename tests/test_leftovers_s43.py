"""Leftovers of session 42: numbers wrong without an error around an optimiser's state
set by hand, a loss of one's own probed by fit, F.dropout's streams, layers swapped in
a model, and History's learning rates. PyTorch is the reference throughout."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from rounding import affine_terms, rounding_atol

import wxb
from wxb.errors import ConfigError
from wxb.nn.module import Parameter

torch = pytest.importorskip("torch")


def _seed() -> int:
    return int(np.random.SeedSequence().entropy % (2**32))


# -- 1. an optimiser's state set by hand, part of it -------------------------------------
_STATES = [
    ("Adam", {}, ["step", "exp_avg", "exp_avg_sq"]),
    ("AdamW", {"weight_decay": 0.1}, ["step", "exp_avg", "exp_avg_sq"]),
    (
        "RMSprop",
        {"momentum": 0.9, "centered": True},
        ["step", "square_avg", "momentum_buffer", "grad_avg"],
    ),
    ("RMSprop", {}, ["step", "square_avg"]),
]


def _value(key: str, x: np.ndarray) -> object:
    return 4 if key == "step" else (x * x + 0.5 if key in ("exp_avg_sq", "square_avg") else 0.1 * x)


@pytest.mark.parametrize(("name", "options", "keys"), _STATES)
def test_a_state_set_by_hand_in_part_is_refused_as_pytorch_and_whole_is_used(name, options, keys):
    seed = _seed()
    rng = np.random.default_rng(seed)
    w0, g, x = (rng.normal(size=(3, 4)) for _ in range(3))
    g *= 1e-3  # small gradients: the zeros in place of a missing moment made steps of 1e3
    for size in range(1, len(keys) + 1):
        for subset in itertools.combinations(keys, size):
            p = Parameter(w0.copy(), name="w")
            opt = getattr(wxb.optim, name)([p], lr=0.1, **options)
            tp = torch.nn.Parameter(torch.tensor(w0))
            topt = getattr(torch.optim, name)([tp], lr=0.1, **options)
            for key in subset:
                opt.state[p][key] = _value(key, x)
                topt.state[tp][key] = torch.tensor(np.asarray(_value(key, x), dtype=float))
            p.grad, tp.grad = g.copy(), torch.tensor(g)
            if len(subset) < len(keys):
                with pytest.raises(KeyError):
                    topt.step()
                missing = [k for k in keys if k not in subset]
                with pytest.raises(ConfigError, match=f"parameter 0 \\(w.*{missing[0]}"):
                    opt.step()
                np.testing.assert_array_equal(p.data, w0)  # nothing moved
            else:
                topt.step()
                opt.step()
                np.testing.assert_allclose(
                    p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=f"seed {seed}"
                )


def test_sgd_momentum_count_without_its_buffer_is_refused_buffer_alone_is_used():
    seed = _seed()
    rng = np.random.default_rng(seed)
    w0, g, b = (rng.normal(size=(5,)) for _ in range(3))
    p = Parameter(w0.copy())
    opt = wxb.optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.5)
    opt.state[p]["momentum_step"] = 3  # (wxb's own count: PyTorch's first update sets v = g)
    p.grad = g.copy()
    with pytest.raises(ConfigError, match="momentum_buffer"):
        opt.step()
    opt.state[p]["momentum_buffer"] = b
    opt.step()
    tp = torch.nn.Parameter(torch.tensor(w0))
    topt = torch.optim.SGD([tp], lr=0.1, momentum=0.9, dampening=0.5)
    topt.state[tp]["momentum_buffer"] = torch.tensor(b)
    tp.grad = torch.tensor(g)
    topt.step()
    after = tp.detach().numpy()  # w − Δ rounds at the sizes of w and Δ (see below)
    atol = rounding_atol(np.abs(w0) + np.abs(after - w0), 4)
    np.testing.assert_allclose(p.data, after, rtol=1e-12, atol=atol, err_msg=f"seed {seed}")


def test_a_state_part_set_then_forgotten_starts_from_zero_as_pytorch():
    seed = _seed()
    rng = np.random.default_rng(seed)
    w0, g, x = (rng.normal(size=(4,)) for _ in range(3))
    p = Parameter(w0.copy())
    opt = wxb.optim.Adam([p], lr=0.01)
    opt.state[p]["exp_avg"] = x
    del opt.state[p]
    p.grad = g.copy()
    opt.step()
    tp = torch.nn.Parameter(torch.tensor(w0))
    topt = torch.optim.Adam([tp], lr=0.01)
    tp.grad = torch.tensor(g)
    topt.step()
    after = tp.detach().numpy()  # w − Δ rounds at the sizes of w and Δ (see below)
    atol = rounding_atol(np.abs(w0) + np.abs(after - w0), 4)
    np.testing.assert_allclose(p.data, after, rtol=1e-12, atol=atol, err_msg=f"seed {seed}")


# -- 5. History's learning rates with several parameter groups ---------------------------
@pytest.mark.parametrize("schedule", ["step", "cosine", "exponential"])
def test_history_records_every_parameter_groups_rate_as_pytorchs_groups_hold_it(schedule):
    seed = _seed()
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.001, 0.1, size=3)
    epochs = int(rng.integers(3, 6))
    X = rng.normal(size=(24, 3)).astype(np.float32)
    y = rng.integers(0, 2, size=24)
    model = wxb.nn.Sequential(
        wxb.nn.Linear(3, 4), wxb.nn.ReLU(), wxb.nn.Linear(4, 4), wxb.nn.ReLU(), wxb.nn.Linear(4, 2)
    )
    groups = [
        {"params": model[i].parameters(), "lr": float(r)}
        for i, r in zip((0, 2, 4), rates, strict=True)
    ]
    opt = wxb.optim.SGD(groups, lr=0.5)
    tmodel = torch.nn.Linear(1, 1)  # three groups of PyTorch's, for their rates alone
    tgroups = [
        {"params": [p], "lr": float(r)}
        for p, r in zip(
            (tmodel.weight, tmodel.bias, torch.nn.Parameter(torch.zeros(1))), rates, strict=True
        )
    ]
    topt = torch.optim.SGD(tgroups, lr=0.5)
    if schedule == "step":
        ours = wxb.optim.StepLR(opt, step_size=2, gamma=0.3)
        theirs = torch.optim.lr_scheduler.StepLR(topt, step_size=2, gamma=0.3)
    elif schedule == "cosine":
        ours = wxb.optim.CosineAnnealingLR(opt, T_max=epochs)
        theirs = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=epochs)
    else:
        ours = wxb.optim.ExponentialLR(opt, gamma=0.7)
        theirs = torch.optim.lr_scheduler.ExponentialLR(topt, gamma=0.7)
    history = wxb.fit(model, X, y, optimizer=opt, lr_schedule=ours, epochs=epochs, verbose=False)
    expected: list[list[float]] = [[] for _ in rates]
    for _ in range(epochs):  # the rate each group trains with in the epoch
        for i, g in enumerate(topt.param_groups):
            expected[i].append(g["lr"])
        topt.step()
        theirs.step()
    np.testing.assert_allclose(history["lr"], expected[0], rtol=1e-12, err_msg=f"seed {seed}")
    for i in (1, 2):
        np.testing.assert_allclose(
            history[f"lr_group{i}"], expected[i], rtol=1e-12, err_msg=f"seed {seed} group {i}"
        )
    assert "lr_group0" not in history and "lr_group3" not in history


# -- 3. F.dropout's streams in fit: two calls on one line, two lambdas of one function ------
class _TwoOnALine(wxb.nn.Module):
    """F.dropout twice on one line (the first in a branch), and two lambdas of one
    function, the first called in a branch: each mask drawn is recorded."""

    def __init__(self, d: int, take: bool) -> None:
        super().__init__()
        self.fc, self.take, self.seen = wxb.nn.Linear(d, 6), take, []
        self.f = lambda h: wxb.nn.functional.dropout(h, 0.5, self.training)
        self.g = lambda h: wxb.nn.functional.dropout(h, 0.5, self.training)

    def forward(self, x):
        F = wxb.nn.functional
        h = self.fc(x) * 0 + 1
        a, b = (
            (F.dropout(h, 0.5, self.training) if self.take else h),
            F.dropout(h, 0.5, self.training),
        )
        c = self.f(h) if self.take else h
        d = self.g(h)
        if self.training:
            self.seen.append([t.data.copy() for t in (a, b, c, d)])
        return (a + b + c + d).sum(axis=1, keepdims=True)


def test_f_dropout_calls_sharing_a_line_or_a_function_draw_streams_of_their_own():
    seed = _seed()
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(6, 20)), int(rng.integers(2, 5))
    X, y = rng.normal(size=(n, d)), rng.normal(size=n)
    kw = dict(loss="mse", epochs=2, batch_size=n, shuffle=False, verbose=False, seed=seed % 1000)
    runs = {}
    for label, take in (("both", True), ("again", True), ("skipped", False)):
        wxb.manual_seed(seed % 997)
        model = _TwoOnALine(d, take)
        wxb.fit(model, X, y, **kw)
        runs[label] = model.seen
    for step, (a, b, c, d_) in enumerate(runs["both"]):
        assert not np.array_equal(a, b) and not np.array_equal(c, d_), (seed, step)
        for mine, again in zip((a, b, c, d_), runs["again"][step], strict=True):
            assert np.array_equal(mine, again), (seed, step)  # the same seed: the same masks
        # a call skipped (a rank whose rows skip a branch) leaves the later calls' masks
        # as they were: by the line alone, b and d took a's and c's streams then
        assert np.array_equal(b, runs["skipped"][step][1]), (seed, step)
        assert np.array_equal(d_, runs["skipped"][step][3]), (seed, step)


# -- 2. a loss of one's own and forward hooks see the calls a PyTorch loop makes ----------
@pytest.mark.parametrize("given", ["vector", "column"])
def test_fit_and_evaluate_call_a_loss_of_ones_own_and_hooks_as_a_pytorch_loop_does(given):
    seed = _seed()
    rng = np.random.default_rng(seed)
    n, d, h = int(rng.integers(20, 50)), int(rng.integers(2, 5)), int(rng.integers(3, 7))
    batch, epochs = int(rng.integers(4, 12)), int(rng.integers(1, 4))
    X = rng.normal(size=(n, d))
    y = rng.normal(size=n) if given == "vector" else rng.normal(size=(n, 1))
    seen = {"calls": 0, "rows": []}

    def loss(out, t):  # written for y as given, as in a PyTorch loop
        seen["calls"] += 1
        return ((out[:, 0] - t) ** 2).mean() if t.ndim == 1 else ((out - t) ** 2).mean()

    model = wxb.nn.Sequential(wxb.nn.Linear(d, h), wxb.nn.Tanh(), wxb.nn.Linear(h, 1))
    model.to(np.float64)
    tmodel = torch.nn.Sequential(torch.nn.Linear(d, h), torch.nn.Tanh(), torch.nn.Linear(h, 1))
    tmodel.double()
    with torch.no_grad():
        for (_, tp), (_, value) in zip(
            tmodel.named_parameters(), model.state_dict().items(), strict=True
        ):
            tp.copy_(torch.tensor(value))
    model[0].register_forward_hook(lambda m, i, o: seen["rows"].append(len(o.data)))
    wxb.fit(model, X, y, loss=loss, optimizer="sgd", lr=0.05, epochs=epochs,
            batch_size=batch, shuffle=False, verbose=False)  # fmt: skip
    theirs = {"calls": 0, "rows": []}
    tmodel[0].register_forward_hook(lambda m, i, o: theirs["rows"].append(len(o)))
    opt = torch.optim.SGD(tmodel.parameters(), lr=0.05)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    for _ in range(epochs):
        for start in range(0, n, batch):
            opt.zero_grad()
            out, t = tmodel(Xt[start : start + batch]), yt[start : start + batch]
            theirs["calls"] += 1
            value = ((out[:, 0] - t) ** 2).mean() if t.ndim == 1 else ((out - t) ** 2).mean()
            value.backward()
            opt.step()
    assert seen == theirs, (seed, seen, theirs)
    for (key, value), (_, tp) in zip(
        model.state_dict().items(), tmodel.named_parameters(), strict=True
    ):
        np.testing.assert_allclose(
            value, tp.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=f"{seed} {key}"
        )
    seen.update(calls=0, rows=[])
    figures = wxb.evaluate(model, X, y, loss=loss)
    assert seen == {"calls": 1, "rows": [n]}, (seed, seen)
    with torch.no_grad():
        out = tmodel(Xt)
        expected = ((out[:, 0] - yt) ** 2).mean() if yt.ndim == 1 else ((out - yt) ** 2).mean()
    assert figures["loss"] == pytest.approx(expected.item(), rel=1e-9), seed


def test_a_loss_reading_the_other_form_is_still_handed_it_once_decided():
    """y as (B,) to a loss written for (B, 1) (F.mse_loss(out, y)): the first step's
    call on (B,) spreads into (B, B), so (B, 1) is taken, from then on, as before."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(20, 40)), int(rng.integers(2, 5))
    X, y = rng.normal(size=(n, d)), rng.normal(size=n)
    shapes = []

    def loss(out, t):
        shapes.append(t.shape)
        return ((out - t) ** 2).mean()

    model = wxb.nn.Sequential(wxb.nn.Linear(d, 1))
    model.to(np.float64)
    w0 = {k: v.copy() for k, v in model.state_dict().items()}
    wxb.fit(model, X, y, loss=loss, optimizer="sgd", lr=0.1, epochs=2, batch_size=8,
            shuffle=False, verbose=False)  # fmt: skip
    steps = 2 * -(-n // 8)
    assert shapes[0] == (8,) and all(s[1:] == (1,) for s in shapes[1:]), (seed, shapes)
    assert len(shapes) == steps + 1, (seed, len(shapes))  # one call more, at the first step
    lin = torch.nn.Linear(d, 1).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(w0["dense1.weight"]))
        lin.bias.copy_(torch.tensor(w0["dense1.bias"]))
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    Xt, yt = torch.tensor(X), torch.tensor(y)[:, None]
    for _ in range(2):
        for start in range(0, n, 8):
            opt.zero_grad()
            ((lin(Xt[start : start + 8]) - yt[start : start + 8]) ** 2).mean().backward()
            opt.step()
    np.testing.assert_allclose(
        model.state_dict()["dense1.weight"],
        lin.weight.detach().numpy(),
        rtol=1e-9,
        err_msg=str(seed),
    )


@pytest.mark.parametrize("given", ["vector", "column"])
def test_explain_calls_a_loss_of_ones_own_once_in_the_form_it_reads(given):
    from wxb.explanation import explain_model

    seed = _seed()
    rng = np.random.default_rng(seed)
    d, rows = int(rng.integers(2, 5)), int(rng.integers(2, 6))
    X = rng.normal(size=(rows, d))
    y = rng.normal(size=rows) if given == "vector" else rng.normal(size=(rows, 1))
    shapes = []

    def loss(out, t):
        shapes.append(t.shape)
        return ((out[:, 0] - t) ** 2).mean() if t.ndim == 1 else ((out - t) ** 2).mean()

    model = wxb.nn.Sequential(wxb.nn.Linear(d, 3), wxb.nn.Tanh(), wxb.nn.Linear(3, 1))
    explain_model(model, X, y, loss=loss, sample_rows=None)
    assert shapes == [y.shape], (seed, shapes)


class _OwnForward(wxb.nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.fc = wxb.nn.Linear(d, 2)

    def forward(self, x):
        return self.fc(x).tanh()


def test_evaluate_and_predict_in_chunks_show_hooks_the_chunks_alone():
    seed = _seed()
    rng = np.random.default_rng(seed)
    n, d, batch = int(rng.integers(30, 60)), int(rng.integers(2, 5)), int(rng.integers(4, 12))
    X, y = rng.normal(size=(n, d)), rng.normal(size=(n, 2))
    model = _OwnForward(d)
    rows = []
    model.fc.register_forward_hook(lambda m, i, o: rows.append(len(o.data)))
    chunks = [len(range(n)[s : s + batch]) for s in range(0, n, batch)]  # a PyTorch loop's
    figures = wxb.evaluate(model, X, y, loss="mse", batch_size=batch)
    assert rows == chunks, (seed, rows, chunks)
    whole = model.eval()(X).data
    assert figures["loss"] == pytest.approx(0.5 * ((whole - y) ** 2).sum(1).mean(), rel=1e-5), seed
    rows.clear()
    # float32 chunks of other sizes sum each row's d + 1 terms otherwise (tanh is
    # 1-Lipschitz): an output near 0 differs from the whole's by their rounding alone
    terms = affine_terms(X, model.fc.weight.data.T, model.fc.bias.data)
    atol = 2 * (d + 1) * float(np.finfo(whole.dtype).eps) * float(terms.max())
    np.testing.assert_allclose(
        model.predict(X, batch_size=batch), whole, rtol=1e-6, atol=atol, err_msg=str(seed)
    )
    assert rows == chunks, (seed, rows, chunks)


def test_a_state_loaded_at_count_0_is_the_parameters_state_as_pytorchs():
    seed = _seed()
    rng = np.random.default_rng(seed)
    w0, g, m, v = (rng.normal(size=(4,)) for _ in range(4))
    p = Parameter(w0.copy())
    opt = wxb.optim.Adam([p], lr=0.05)
    saved = opt.state_dict()
    saved["state"][0].update(moment1=m, moment2=v * v)
    opt.load_state_dict(saved)
    tp = torch.nn.Parameter(torch.tensor(w0))
    topt = torch.optim.Adam([tp], lr=0.05)
    groups = topt.state_dict()["param_groups"]
    entry = {
        "step": torch.tensor(0.0),
        "exp_avg": torch.tensor(m),
        "exp_avg_sq": torch.tensor(v * v),
    }
    topt.load_state_dict({"state": {0: entry}, "param_groups": groups})
    assert len(opt.state[p]) == len(topt.state[tp]) == 3, seed
    opt.state[p]["exp_avg"] = 2 * m  # the rest as loaded
    topt.state[tp]["exp_avg"] = torch.tensor(2 * m)
    p.grad, tp.grad = g.copy(), torch.tensor(g)
    opt.step()
    topt.step()
    # w − Δ rounds at the sizes of w and Δ (Δ itself to a few ulps): a weight stepped
    # near 0 from |w| ~ 1 differs from torch's by that alone
    after = tp.detach().numpy()
    atol = rounding_atol(np.abs(w0) + np.abs(after - w0), 4)
    np.testing.assert_allclose(p.data, after, rtol=1e-12, atol=atol, err_msg=str(seed))


def test_a_reports_constant_rate_names_every_parameter_groups():
    from wxb.reporting import _constant_lr

    seed = _seed()
    rng = np.random.default_rng(seed)
    rates = [float(r) for r in rng.uniform(0.001, 0.1, size=2)]
    X, y = rng.normal(size=(16, 3)), rng.integers(0, 2, size=16)
    model = wxb.nn.Sequential(wxb.nn.Linear(3, 4), wxb.nn.ReLU(), wxb.nn.Linear(4, 2))
    groups = [
        {"params": model[i].parameters(), "lr": r} for i, r in zip((0, 2), rates, strict=True)
    ]
    history = wxb.fit(model, X, y, optimizer=wxb.optim.SGD(groups), epochs=2, verbose=False)
    note = _constant_lr(history.to_dict()["history"])
    assert all(f"{r:g}" in note for r in rates), (seed, note)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("Adam", {}),
        ("SGD", {"momentum": 0.9, "dampening": 0.2}),
        ("RMSprop", {"momentum": 0.5, "centered": True}),
        ("Adagrad", {}),
    ],
)
def test_pytorchs_optimiser_state_goes_in_entry_by_entry_and_its_state_dict_is_named(name, options):
    seed = _seed()
    rng = np.random.default_rng(seed)
    w0 = rng.normal(size=(3, 2))
    tp = torch.nn.Parameter(torch.tensor(w0))
    topt = getattr(torch.optim, name)([tp], lr=0.1, **options)
    for _ in range(int(rng.integers(1, 4))):
        tp.grad = torch.tensor(rng.normal(size=w0.shape))
        topt.step()
    p = Parameter(tp.detach().numpy().copy())
    opt = getattr(wxb.optim, name)([p], lr=0.1, **options)
    with pytest.raises(ConfigError, match="PyTorch optimiser's state"):
        opt.load_state_dict(topt.state_dict())
    for key, value in topt.state[tp].items():
        opt.state[p][key] = value
    g = rng.normal(size=w0.shape)
    p.grad, tp.grad = g, torch.tensor(g)
    before = p.data.copy()
    opt.step()
    topt.step()
    # w − Δ rounds at the sizes of w and Δ (Δ itself to a few ulps): a weight stepped
    # near 0 from |w| ~ 3 is off by ulps of 3, above a fixed 1e-15
    after = tp.detach().numpy()
    atol = rounding_atol(np.abs(before) + np.abs(after - before), 4)
    np.testing.assert_allclose(p.data, after, rtol=1e-12, atol=atol, err_msg=str(seed))


# -- 4. a layer swapped by PyTorch's key of its place -------------------------------------
@pytest.mark.parametrize("how", ["_modules", "setattr", "by_name"])
def test_a_sequentials_layer_swapped_under_pytorchs_positional_key_replaces_it(how, tmp_path):
    seed = _seed()
    rng = np.random.default_rng(seed)
    d, h = int(rng.integers(2, 5)), int(rng.integers(2, 5))
    X = rng.normal(size=(7, d))
    model = wxb.nn.Sequential(wxb.nn.Linear(d, h), wxb.nn.ReLU(), wxb.nn.Linear(h, h))
    model.to(np.float64)
    tmodel = torch.nn.Sequential(
        torch.nn.Linear(d, h), torch.nn.ReLU(), torch.nn.Linear(h, h)
    ).double()
    new, tnew = wxb.nn.Linear(h, h), torch.nn.Linear(h, h).double()
    new.to(np.float64)
    with torch.no_grad():
        for (_, tp), value in zip(
            tmodel.named_parameters(), model.state_dict().values(), strict=True
        ):
            tp.copy_(torch.tensor(value))
        for (_, tp), value in zip(tnew.named_parameters(), new.state_dict().values(), strict=True):
            tp.copy_(torch.tensor(value))
    if how == "_modules":  # (the head, h → h: added after it, it ran on without a word)
        model._modules["2"], tmodel._modules["2"] = new, tnew
    elif how == "setattr":
        setattr(model, "2", new)
        setattr(tmodel, "2", tnew)
    else:  # wxb's key, an unnamed layer (wxb.save refused it: "named None")
        model._modules[list(model._modules)[2]], tmodel._modules["2"] = new, tnew
    assert len(model) == len(tmodel) == 3 and model[2] is new, seed
    assert len(list(model.parameters())) == len(list(tmodel.parameters())), seed
    expected = tmodel(torch.tensor(X)).detach().numpy()
    np.testing.assert_allclose(model(X).data, expected, rtol=1e-12, err_msg=str(seed))
    wxb.save(model, tmp_path / "m.wxb")  # its name is its place's: saved and loaded the same
    np.testing.assert_allclose(wxb.load(tmp_path / "m.wxb")(X).data, expected, rtol=1e-12)


class _PairOut(wxb.nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.fc = wxb.nn.Linear(d, 1)

    def forward(self, x):
        return self.fc(x), x  # a hook hands on the first


def test_a_forward_hook_that_makes_the_output_a_tensor_still_runs_in_fits_shape_look():
    seed = _seed()
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 5))
    X, y = rng.normal(size=(12, d)), rng.normal(size=(12, 1))
    model = _PairOut(d)
    model.register_forward_hook(lambda m, i, o: o[0])
    history = wxb.fit(model, X, y, loss="mse", epochs=1, batch_size=4, verbose=False)
    assert np.isfinite(history["loss"][0]), seed
