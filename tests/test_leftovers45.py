"""Leftovers of earlier stops: SequentialLR made with last_epoch, a schedule made
beside an unstepped warm-up, schedules' state in PyTorch's form, public names,
class indices in a float tensor, and fit on a SciPy sparse X a batch at a time."""

import warnings

import numpy as np
import pytest

import wxb
from wxb.errors import ConfigError

torch = pytest.importorskip("torch")
L = torch.optim.lr_scheduler
pytestmark = [
    pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`"),
    pytest.mark.filterwarnings("ignore:The epoch parameter in `scheduler.step\\(\\)`"),
]


def _seed():
    return int(np.random.SeedSequence().entropy % 2**32)


def _torch_param():
    return torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))


def _wxb_param():
    return wxb.nn.Parameter(np.zeros(2))


def _sequence(module, opt, rng_values):
    warm, start, t_max, gamma = rng_values
    first = module.LinearLR(opt, start_factor=start, total_iters=warm)
    second = module.CosineAnnealingLR(opt, T_max=t_max, eta_min=0.001)
    third = module.ExponentialLR(opt, gamma=gamma)
    return module.SequentialLR(opt, [first, second, third], milestones=[warm, warm + t_max])


def test_sequential_lr_last_epoch_refused_and_state_resume_goes_on_as_torch():
    """SequentialLR(..., last_epoch=k) gave rates unlike PyTorch's (whose own restarts its
    first schedule, pytorch/pytorch#162591): refused, naming the way that works; loading
    the saved state goes on with the uninterrupted PyTorch run's rates."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    values = (int(rng.integers(1, 5)), float(rng.uniform(0.05, 1)), int(rng.integers(2, 6)),
              float(rng.uniform(0.5, 0.99)))  # fmt: skip
    lr, total = float(rng.uniform(0.01, 1)), 16
    k = int(rng.integers(0, total - 2))
    opt_t = torch.optim.SGD([_torch_param()], lr=lr)
    theirs = _sequence(L, opt_t, values)
    expected = [opt_t.param_groups[0]["lr"]]
    for _ in range(total):
        theirs.step()
        expected.append(opt_t.param_groups[0]["lr"])
    opt = wxb.optim.SGD([_wxb_param()], lr=lr)
    ours = _sequence(wxb.optim, opt, values)
    for _ in range(k):
        ours.step()
    saved_opt, saved = opt.state_dict(), ours.state_dict()
    resumed_opt = wxb.optim.SGD([_wxb_param()], lr=lr)
    resumed_opt.load_state_dict(saved_opt)
    children = [wxb.optim.LinearLR(resumed_opt, values[1], total_iters=values[0], last_epoch=k)]
    with pytest.raises(ConfigError, match=r"last_epoch=.*load_state_dict") as info:
        wxb.optim.SequentialLR(resumed_opt, children, milestones=[], last_epoch=k)
    assert "162591" in str(info.value), seed
    resumed = _sequence(wxb.optim, resumed_opt, values)
    resumed.load_state_dict(saved)
    got = [resumed_opt.param_groups[0]["lr"]]
    for _ in range(total - k):
        resumed.step()
        got.append(resumed_opt.param_groups[0]["lr"])
    np.testing.assert_allclose(got, expected[k:], rtol=1e-12, atol=1e-15, err_msg=f"seed {seed}")


@pytest.mark.parametrize("named", ["cosine", "step"])
def test_fit_named_schedule_after_unstepped_warm_up_warns_and_runs_torch_rates(named):
    """A LinearLR made on the optimiser and never stepped, then fit(lr_schedule="cosine"):
    the run trained at the warm-up's lowered rate throughout (PyTorch's rule for a second
    scheduler: it goes on from the lr it finds) without a word. Same rates, now said."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    lr, start, epochs = float(rng.uniform(0.01, 0.5)), float(rng.uniform(0.05, 0.9)), 6
    p = _torch_param()
    opt_t = torch.optim.SGD([p], lr=lr)
    L.LinearLR(opt_t, start_factor=start, total_iters=3)
    theirs = (L.CosineAnnealingLR(opt_t, T_max=epochs) if named == "cosine"
              else L.StepLR(opt_t, step_size=max(1, epochs // 3)))  # fmt: skip
    expected = []
    for _ in range(epochs):
        expected.append(opt_t.param_groups[0]["lr"])
        opt_t.step()
        theirs.step()
    X = rng.normal(size=(20, 3))
    y = X @ rng.normal(size=3)
    model = wxb.nn.Sequential(wxb.nn.Dense(3, 1))
    opt = wxb.optim.SGD(model.parameters(), lr=lr)
    wxb.optim.LinearLR(opt, start_factor=start, total_iters=3)
    with pytest.warns(UserWarning, match=r"never stepped.*SequentialLR") as caught:
        history = wxb.fit(model, X, y, loss="mse", optimizer=opt, epochs=epochs,
                          batch_size=20, lr_schedule=named, verbose=0)  # fmt: skip
    assert caught[0].filename == __file__, seed
    np.testing.assert_allclose(history.history["lr"], expected, rtol=1e-12, err_msg=f"{seed}")
    # no warning where no schedule left the rate lowered
    model = wxb.nn.Sequential(wxb.nn.Dense(3, 1))
    opt = wxb.optim.SGD(model.parameters(), lr=lr)
    wxb.optim.StepLR(opt, step_size=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wxb.fit(model, X, y, loss="mse", optimizer=opt, epochs=2, batch_size=20,
                lr_schedule=named, verbose=0)  # fmt: skip
