"""Resuming fit (and PyTorch's resume order by hand) after today's changes: several
parameter groups, each with its own rate, under the schedules added today.

A run is "stopped" at a step by copying that step's checkpoint, alone, into a fresh
folder (what a run killed there leaves); the resumed run must end with the
uninterrupted run's weights and every History figure, lr_group{i} included, bit for
bit. Sizes, seeds and rates are drawn fresh each run (the seed is in the messages).
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import wxb
from wxb.checkpoint import CheckpointWarning
from wxb.nn import Dense, Dropout, ReLU, Sequential
from wxb.optim import SGD, Adam, LambdaLR, LinearLR

torch = pytest.importorskip("torch")


def _copy_alone(json_path: Path, folder: Path) -> None:
    folder.mkdir(parents=True)
    for part in (json_path, json_path.with_suffix(".safetensors")):
        shutil.copy2(part, folder / part.name)


def _differences(a, b) -> list[str]:
    (ha, ma), (hb, mb) = a, b
    out = [k for k in set(ha.history) | set(hb.history) if ha.history.get(k) != hb.history.get(k)]
    sa, sb = ma.state_dict(), mb.state_dict()
    out += [k for k in sa if not np.array_equal(sa[k], sb[k])]
    return out


def _schedule(kind: str, opt, factor: float, iters: int):
    if kind == "linear":
        return LinearLR(opt, start_factor=factor, total_iters=iters)
    return LambdaLR(opt, lambda e: factor + (1 - factor) * min(e, iters) / iters)  # a warm-up


@pytest.mark.parametrize("kind", ["linear", "lambda"])
def test_a_warm_up_resumed_inside_its_first_epoch_keeps_its_rates(seeded, tmp_path, kind):
    """LinearLR (or a LambdaLR warm-up, λ(0) < 1) resumed from a checkpoint inside epoch 1
    trained the rest of that epoch at each group's full rate η, not start_factor·η: the
    optimiser's loaded rate equalled the one the new schedule had set for epoch 0, so the
    schedule's load took it for its own write and put back the η it had found."""
    rng = seeded.rng
    dtype = str(rng.choice(["float32", "float64"]))
    n, h, c, rows = int(rng.integers(3, 9)), int(rng.integers(3, 9)), 3, int(rng.integers(60, 120))
    X = rng.normal(size=(rows, n)).astype(dtype)
    y = rng.integers(0, c, rows)
    seeds = rng.integers(1 << 30, size=3)
    rates = rng.uniform(0.005, 0.05, size=2)
    factor, iters = float(rng.uniform(0.1, 0.9)), int(rng.integers(2, 5))
    batch = int(rng.integers(8, rows // 4))

    def fit(folder=None, **kw):
        model = Sequential(Dense(n, h, seed=int(seeds[0]), dtype=dtype), ReLU(), Dropout(0.2),
                           Dense(h, c, seed=int(seeds[1]), dtype=dtype))  # fmt: skip
        params = list(model.parameters())
        opt = Adam([{"params": params[:2], "lr": rates[0]}, {"params": params[2:], "lr": rates[1]}])
        if folder is not None:
            kw["checkpoint_dir"] = folder
        schedule = _schedule(kind, opt, factor, iters)
        history = wxb.fit(model, X, y, optimizer=opt, lr_schedule=schedule, epochs=iters + 1,
                          batch_size=batch, seed=int(seeds[2]), verbose=False, **kw)  # fmt: skip
        return history, model

    msg = seeded.msg(
        f"{kind} factor {factor:.3g} over {iters}, rates {rates}, {dtype}, batch {batch}"
    )
    reference = fit()
    assert reference[0].history["lr_group1"][0] == pytest.approx(rates[1] * factor), msg
    every = tmp_path / "every"
    assert _differences(reference, fit(every, checkpoint_every=1, keep_checkpoints=10_000)) == []
    for source in sorted(every.glob("step-*.json")):
        folder = tmp_path / source.stem
        _copy_alone(source, folder)
        with warnings.catch_warnings():
            warnings.simplefilter("error", CheckpointWarning)
            resumed = fit(folder, checkpoint_every=1, keep_checkpoints=10_000, resume=True)
        assert _differences(reference, resumed) == [], f"{msg}; resumed from {source.name}"


@pytest.mark.filterwarnings("ignore:Detected call of")
@pytest.mark.parametrize("kind", ["linear", "lambda"])
def test_pytorchs_resume_order_keeps_the_loaded_rates_of_epoch_0(seeded, kind):
    """optimiser made, schedule made, optimiser's state loaded, schedule's state loaded
    (PyTorch's resume): the rates are the saved ones, as torch's."""
    rng = seeded.rng
    rates = [float(r) for r in rng.uniform(0.01, 0.5, size=int(rng.integers(1, 4)))]
    factor, iters = float(rng.uniform(0.1, 0.9)), int(rng.integers(2, 6))
    msg = seeded.msg(f"{kind} factor {factor:.3g} over {iters}, rates {rates}")

    def both(opt_kind):
        if opt_kind == "torch":
            params = [torch.nn.Parameter(torch.zeros(2)) for _ in rates]
            opt = torch.optim.SGD(
                [{"params": [p], "lr": r} for p, r in zip(params, rates, strict=True)]
            )
            sch = torch.optim.lr_scheduler
            if kind == "linear":
                made = sch.LinearLR(opt, start_factor=factor, total_iters=iters)
            else:
                made = sch.LambdaLR(opt, lambda e: factor + (1 - factor) * min(e, iters) / iters)
        else:
            params = [Dense(2, 1, seed=i).weight for i in range(len(rates))]
            opt = SGD([{"params": [p], "lr": r} for p, r in zip(params, rates, strict=True)])
            made = _schedule(kind, opt, factor, iters)
        return opt, made

    for saved_epoch in (0, 1):  # inside epoch 0 (where it went wrong), or after a step
        _compare_resumed(both, saved_epoch, f"{msg}; saved at epoch {saved_epoch}")


def _compare_resumed(both, saved_epoch: int, msg: str) -> None:
    got = {}
    for side in ("torch", "wxb"):
        opt, sch = both(side)
        for _ in range(saved_epoch):
            sch.step()
        saved = opt.state_dict(), sch.state_dict()
        opt2, sch2 = both(side)
        opt2.load_state_dict(saved[0])
        sch2.load_state_dict(saved[1])
        now = [g["lr"] for g in opt2.param_groups]
        sch2.step()
        got[side] = now, [g["lr"] for g in opt2.param_groups]
    for t, w in zip(got["torch"], got["wxb"], strict=True):
        assert w == pytest.approx(t, rel=1e-12), msg


def test_a_resume_with_another_lambda_schedule_function_is_refused(seeded, tmp_path, monkeypatch):
    """LambdaLR's function is kept out of its state (PyTorch's too), so a resume given
    another one went on without a word: the saved epoch's rates, then the new function's
    (a schedule neither run had). Its code is now part of the run a checkpoint records;
    the same function made anew resumes, and a checkpoint without the record still does."""
    rng = seeded.rng
    X = rng.normal(size=(int(rng.integers(40, 80)), 4))
    y = rng.integers(0, 2, len(X))
    old, new = (float(g) for g in rng.uniform(0.5, 0.95, size=2))
    msg = seeded.msg(f"γ {old:.4g} then {new:.4g}")

    def fit(folder, gamma, epochs=3, **kw):
        model = Sequential(Dense(4, 5, seed=1), ReLU(), Dense(5, 2, seed=2))
        params = list(model.parameters())
        opt = Adam([{"params": params[:2], "lr": 0.02}, {"params": params[2:], "lr": 0.01}])
        schedule = LambdaLR(opt, lambda e: gamma**e)
        return wxb.fit(model, X, y, optimizer=opt, lr_schedule=schedule, epochs=epochs,
                       batch_size=16, seed=1, verbose=False, checkpoint_dir=folder,
                       **kw)  # fmt: skip

    reference = fit(tmp_path / "whole", old).history
    stopped = tmp_path / "stopped"
    fit(stopped, old, epochs=1)
    with pytest.raises(wxb.errors.ConfigError, match="schedule differs") as refused:
        fit(stopped, new, resume=True)
    assert "lr_lambda" in str(refused.value), msg
    resumed = fit(stopped, old, resume=True)
    assert resumed.resumed_from is not None and resumed.history == reference, msg
    # a checkpoint written before the function's digest: resumes as it did
    legacy = tmp_path / "legacy"
    monkeypatch.setattr(wxb.train, "_schedule_settings", lambda schedule: schedule.settings())
    fit(legacy, old, epochs=1)
    monkeypatch.undo()
    resumed = fit(legacy, old, resume=True)
    assert resumed.resumed_from is not None and resumed.history == reference, msg


def test_a_resume_from_a_checkpoint_without_group_rates_keeps_each_figure_by_epoch(
    seeded, tmp_path, monkeypatch
):
    """A checkpoint of a wxb before lr_group{i} (recorded since 7947ee2) holds none for
    its epochs: the resumed run's lr_group1 held the later epochs' rates alone, a shorter
    list whose first value read as epoch 1's (a report charted it so). Those epochs are
    now NaN (not recorded), each later value at its own epoch, as the uninterrupted run's."""
    rng = seeded.rng
    X = rng.normal(size=(int(rng.integers(40, 80)), 4))
    y = rng.integers(0, 3, len(X))
    rates = [float(r) for r in rng.uniform(0.005, 0.05, size=int(rng.integers(2, 4)))]
    done, epochs = int(rng.integers(1, 3)), int(rng.integers(3, 6))
    msg = seeded.msg(f"rates {rates}, stopped after {done} of {epochs} epochs")

    def fit(folder, epochs, **kw):
        model = Sequential(Dense(4, 6, seed=1), ReLU(), Dense(6, 3, seed=2))
        params = list(model.parameters())
        cut = np.linspace(0, len(params), len(rates) + 1).astype(int)
        groups = [
            {"params": params[a:b], "lr": r}
            for a, b, r in zip(cut[:-1], cut[1:], rates, strict=True)
        ]
        opt = SGD(groups, momentum=0.9)
        schedule = LinearLR(opt, start_factor=0.5, total_iters=2)
        return wxb.fit(model, X, y, optimizer=opt, lr_schedule=schedule, epochs=epochs,
                       batch_size=16, seed=3, verbose=False, checkpoint_dir=folder,
                       **kw)  # fmt: skip

    reference = fit(tmp_path / "whole", epochs).history
    record = wxb.train.History.record
    monkeypatch.setattr(
        wxb.train.History,
        "record",
        lambda self, **v: record(self, **{k: x for k, x in v.items() if "group" not in k}),
    )
    fit(tmp_path / "old", done)  # as a wxb before lr_group{i} wrote it
    monkeypatch.undo()
    resumed = fit(tmp_path / "old", epochs, resume=True)
    assert resumed.resumed_from is not None, msg
    assert set(resumed.history) == set(reference), msg
    for key, values in resumed.history.items():
        assert len(values) == epochs, f"{msg}: {key} {values}"
        if key.startswith("lr_group"):
            assert np.isnan(values[:done]).all(), f"{msg}: {key} {values}"
            assert values[done:] == reference[key][done:], f"{msg}: {key} {values}"
        else:
            assert values == reference[key], f"{msg}: {key}"


@pytest.mark.filterwarnings("ignore:Detected call of")
def test_a_cosine_past_its_trough_brings_a_group_at_lr_0_back_as_torchs(seeded):
    """CosineAnnealingLR with η_min > 0 on a group at lr 0 (taken since 46526be): out of
    the trough the rate fell back towards 0 in PyTorch (0.75·η_min, 0.25·η_min, 0, …)
    and rose to η_min here (0.9375·η_min, 0.8125·η_min, …): its base of 0, found again
    from the trough's rate, came out a rounding below 0 and was refused for the rate."""
    rng = seeded.rng
    rates = [float(r) for r in rng.uniform(0.01, 0.5, size=int(rng.integers(2, 4)))]
    rates[int(rng.integers(len(rates)))] = 0.0
    t_max, eta_min = int(rng.integers(2, 6)), float(rng.uniform(1e-4, 5e-3))
    msg = seeded.msg(f"rates {rates}, T_max {t_max}, η_min {eta_min:.4g}")
    params = [torch.nn.Parameter(torch.zeros(2)) for _ in rates]
    theirs = torch.optim.SGD([{"params": [p], "lr": r} for p, r in zip(params, rates, strict=True)])
    their_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(theirs, t_max, eta_min)
    ours = SGD([{"params": [Dense(2, 1, seed=i).weight], "lr": r} for i, r in enumerate(rates)])
    our_schedule = wxb.optim.CosineAnnealingLR(ours, t_max, eta_min)
    for epoch in range(4 * t_max + 2):
        want = [g["lr"] for g in theirs.param_groups]
        got = [g["lr"] for g in ours.param_groups]
        assert got == pytest.approx(want, rel=1e-9, abs=1e-15), f"{msg}: epoch {epoch}"
        their_schedule.step()
        our_schedule.step()
