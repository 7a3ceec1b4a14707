"""A fit stopped by Ctrl-C says "run the same again with resume=True". Run so, with the
same optimiser and schedule, in the same process (a notebook's cell run again), it must
resume and end where the uninterrupted run ends. It was refused ("optimizer differs")
wherever the schedule had moved a setting the run's record holds at its start: a
ReduceLROnPlateau's lowered rate, a OneCycleLR's or CyclicLR's cycled momentum."""

import os
import signal
import warnings

import numpy as np
import pytest

import wxb
from wxb.errors import ConfigError, TrainingInterrupted
from wxb.nn import Dense, ReLU, Sequential
from wxb.optim import SGD, Adam, CyclicLR, OneCycleLR, ReduceLROnPlateau

SCHEDULES = ["plateau", "onecycle", "cyclic"]


@pytest.fixture(autouse=True)
def python_sigint_handler():
    """Python's own Ctrl-C handler, as an interactive session has it: a test runner started
    in the background of a shell (CI's) ignores SIGINT, and fit then rightly leaves it
    alone, so the interruption this test sends would not stop the run."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _run(kind, seed, rng_seed, stop_at, folder, resume_by_hand=None):
    """fit 6 epochs; with ``stop_at``, Ctrl-C after that optimiser step, then the same
    call again with resume=True (``resume_by_hand`` first changes what it says)."""
    rng = np.random.default_rng(rng_seed)
    X, y = rng.normal(size=(80, 4)), rng.integers(0, 3, 80)
    model = Sequential(Dense(4, 6, seed=seed), ReLU(), Dense(6, 3, seed=seed + 1))
    momentum = kind != "plateau" or bool(seed % 2)
    opt = SGD(model.parameters(), lr=0.3, momentum=0.9) if momentum else Adam(model.parameters())
    if kind == "plateau":
        schedule = ReduceLROnPlateau(opt, factor=0.5, patience=0)
    elif kind == "onecycle":
        schedule = OneCycleLR(opt, max_lr=0.3, total_steps=30)
    else:
        schedule = CyclicLR(opt, base_lr=0.01, max_lr=0.3, step_size_up=4)
    stepping, calls = opt.step, [0]

    def step(*args):
        out = stepping(*args)
        calls[0] += 1
        if calls[0] == stop_at:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    opt.step = step
    options = dict(epochs=6, batch_size=16, seed=seed, verbose=False, checkpoint_dir=folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            history = wxb.fit(model, X, y, optimizer=opt, lr_schedule=schedule, **options)
        except TrainingInterrupted:
            if resume_by_hand is not None:
                resume_by_hand(opt)
            history = wxb.fit(
                model, X, y, optimizer=opt, lr_schedule=schedule, resume=True, **options
            )
    return model, history


@pytest.mark.parametrize("kind", SCHEDULES)
def test_the_same_objects_resume_where_the_interruption_left_them(seeded, rng, tmp_path, kind):
    seed, data_seed = int(rng.integers(0, 1000)), int(rng.integers(0, 2**31))
    stop_at = int(rng.integers(2, 28))  # 5 steps an epoch, 30 in all
    whole, whole_history = _run(kind, seed, data_seed, None, tmp_path / "whole")
    resumed, history = _run(kind, seed, data_seed, stop_at, tmp_path / "stopped")
    assert history.resumed_from is not None
    for (name, a), (_, b) in zip(
        whole.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        np.testing.assert_array_equal(a, b, err_msg=f"{kind}, stopped after step {stop_at}: {name}")
    assert history.history == whole_history.history


def test_a_setting_changed_by_hand_after_the_interruption_is_still_refused(seeded, tmp_path):
    def change(opt):
        for group in opt.param_groups:
            group["weight_decay"] = 0.1

    with pytest.raises(ConfigError, match="optimizer differs"):
        _run("plateau", 1, 2, 7, tmp_path, resume_by_hand=change)
