"""Leftovers of session 42: numbers wrong without an error around an optimiser's state
set by hand, a loss of one's own probed by fit, F.dropout's streams, layers swapped in
a model, and History's learning rates. PyTorch is the reference throughout."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

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
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, err_msg=f"seed {seed}")


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
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, err_msg=f"seed {seed}")


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
