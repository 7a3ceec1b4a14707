"""The newer training options as a user runs them end to end: fit and wxb train with
the plateau schedule beside early stopping, class weights, and what the command says."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from cli_run import run

import wxb
import wxb.interop
from wxb.errors import ConfigError


def _plateau_rates(figures: list[float], lr: float, wait: int) -> list[float]:
    """The rate of each epoch when it is cut × 0.1 after ``wait`` epochs in a row whose
    figure is not below the best so far by PyTorch's relative threshold (1e-4), unless
    the cut is by no more than PyTorch's eps (1e-8): from 3e-9 the rate stays."""
    rates, best, bad = [], np.inf, 0
    for figure in figures:
        rates.append(lr)
        if figure < best * (1 - 1e-4):
            best, bad = figure, 0
        else:
            bad += 1
        if bad >= wait:
            lr, bad = (lr * 0.1 if lr - lr * 0.1 > 1e-8 else lr), 0
    return rates


@pytest.mark.parametrize("patience", [2, 3, 4, 6])
def test_fit_plateau_cuts_the_rate_after_half_early_stoppings_patience(rng, patience):
    """fit(lr_schedule='plateau', early_stopping=P) cuts the rate once the watched loss
    has not improved for ⌊P/2⌋ epochs, before early stopping ends the run. It waited
    ⌊P/2⌋ + 1 (PyTorch's patience ⌊P/2⌋), so with P = 2 it would cut at the epoch the run
    stopped at, and the rate was never lowered."""
    X = rng.normal(size=(60, 4))
    y = rng.integers(0, 3, 60)  # labels unrelated to X: the validation loss soon stalls
    model = wxb.nn.Sequential(wxb.nn.Dense(4, 16), wxb.nn.ReLU(), wxb.nn.Dense(16, 3))
    lr = float(rng.uniform(0.2, 0.5))
    history = wxb.fit(
        model, X, y, optimizer="sgd", lr=lr, lr_schedule="plateau", validation_split=0.3,
        early_stopping=patience, epochs=300, batch_size=8, seed=int(rng.integers(1 << 30)),
        verbose=False,
    )  # fmt: skip
    assert history.stopped_early
    expected = _plateau_rates(history["val_loss"], lr, max(1, patience // 2))
    np.testing.assert_allclose(history["lr"], expected, rtol=1e-12)
    assert min(history["lr"]) < lr  # the stall that stopped the run cut the rate first


def test_fit_refuses_a_plateau_early_stopping_would_always_end_first(rng):
    model = wxb.nn.Sequential(wxb.nn.Dense(3, 2))
    X, y = rng.normal(size=(16, 3)), rng.integers(0, 2, 16)
    with pytest.raises(ConfigError, match="early_stopping=1"):
        wxb.fit(model, X, y, lr_schedule="plateau", early_stopping=1, epochs=3, verbose=False)


def _noise_table(rng, folder) -> str:
    rows = 120
    table = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["a", "b", "c"])
    table["label"] = rng.choice(["x", "y", "z"], rows)  # nothing to learn: a stall
    path = folder / "noise.csv"
    table.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("patience", [2, 3])
def test_train_plateau_cuts_the_rate_before_early_stopping(tmp_path, rng, capsys, patience):
    data = _noise_table(rng, tmp_path)
    history = tmp_path / "history.json"
    code, _, err = run(
        capsys, "train", "--data", data, "--target", "label", "--hidden", "16",
        "--optimizer", "sgd", "--lr", "0.3", "--lr-schedule", "plateau",
        "--patience", patience, "--epochs", "300", "--seed", int(rng.integers(1000)),
        "-q", "-o", tmp_path / "m.safetensors", "--history", history,
    )  # fmt: skip
    assert code == 0, err
    record = json.loads(history.read_text())
    assert record["stopped_early"]
    figures = record["history"]
    expected = _plateau_rates(figures["val_loss"], 0.3, max(1, patience // 2))
    np.testing.assert_allclose(figures["lr"], expected, rtol=1e-12)
    assert min(figures["lr"]) < 0.3


def test_train_refuses_plateau_with_patience_1(tmp_path, rng, capsys):
    data = _noise_table(rng, tmp_path)
    code, _, err = run(
        capsys, "train", "--data", data, "--target", "label", "--lr-schedule", "plateau",
        "--patience", "1", "-q", "-o", tmp_path / "m.safetensors",
    )  # fmt: skip
    assert code == 2
    assert err.count("\n") == 1 and "--patience 2 or more" in err, err
    assert not (tmp_path / "m.safetensors").exists()


def test_resume_of_a_run_from_before_class_weight_continues_exactly(tmp_path, rng, capsys):
    """A checkpoint folder whose options were recorded by a wxb without --class-weight
    (the run weighed no class) resumes as that run goes on: it was refused with
    "--class-weight was None, now 'none'", an option the user never gave."""
    data = _noise_table(rng, tmp_path)
    common = ["train", "--data", data, "--target", "label", "--hidden", "6", "--epochs"]
    rest = ["--seed", int(rng.integers(1000)), "-q", "--patience", "0"]
    whole = tmp_path / "whole.safetensors"
    code, _, err = run(capsys, *common, 5, *rest, "-o", whole)
    assert code == 0, err
    folder = tmp_path / "ckpt"
    first = [*rest, "--checkpoint-dir", folder, "-o", tmp_path / "first.safetensors"]
    code, _, err = run(capsys, *common, 3, *first)
    assert code == 0, err
    options = folder / "train-options.json"
    recorded = json.loads(options.read_text())
    del recorded["class_weight"]
    options.write_text(json.dumps(recorded))
    resumed = tmp_path / "resumed.safetensors"
    code, out, err = run(
        capsys, *common, 5, *rest, "--checkpoint-dir", folder, "--resume", "-o", resumed
    )
    assert code == 0, err
    assert "resumed from" in out
    assert resumed.read_bytes() == whole.read_bytes()
    code, _, err = run(
        capsys, *common, 5, *rest, "--checkpoint-dir", folder, "--resume", "-o", resumed,
        "--class-weight", "balanced",
    )  # fmt: skip
    assert code == 2 and "--class-weight was 'none', now 'balanced'" in err, err


def test_balanced_weights_of_one_logit_are_named_by_class(tmp_path, rng, capsys):
    """Two classes on one logit (--loss bce_with_logits) print their balanced weights by
    class name, the same as the cross-entropy's over two logits: it printed
    'positives/negatives: 5.24/0.553', naming neither class."""
    rows = 150
    table = pd.DataFrame(rng.normal(size=(rows, 2)), columns=["a", "b"])
    table["label"] = np.where(rng.random(rows) < 0.15, "rare", "common")
    table.loc[:5, "label"] = "rare"
    data = tmp_path / "two.csv"
    table.to_csv(data, index=False)
    printed = []
    for loss in ("cross_entropy", "bce_with_logits"):
        code, out, err = run(
            capsys, "train", "--data", data, "--target", "label", "--loss", loss,
            "--class-weight", "balanced", "--hidden", "4", "--epochs", "1", "-q",
            "-o", tmp_path / f"{loss}.safetensors",
        )  # fmt: skip
        assert code == 0, err
        printed.append(out.splitlines()[0])
    assert printed[0].startswith("class weights (balanced): common ")
    assert printed[1] == printed[0]


def test_class_weight_of_a_regression_says_so_once(tmp_path, rng, capsys):
    data = tmp_path / "numbers.csv"
    pd.DataFrame({"a": rng.normal(size=40), "y": rng.normal(size=40)}).to_csv(data, index=False)
    code, _, err = run(
        capsys, "train", "--data", data, "--target", "y", "--class-weight", "balanced",
        "-o", tmp_path / "m.safetensors",
    )  # fmt: skip
    assert code == 2
    assert "this is a regression (40 distinct numbers)" in err, err
    assert err.count("regression") == 1, err


def test_resume_of_a_plateau_an_earlier_wxb_made_says_why_it_keeps_its_settings(
    rng, tmp_path, monkeypatch
):
    """A checkpoint whose 'plateau' an earlier wxb made with another patience goes on as
    that run would (its settings are kept), and the warning says why: it said 'epochs
    changed from 6 to 6'."""
    X, y = rng.normal(size=(48, 3)), rng.integers(0, 3, 48)
    made = wxb.train._make_schedule

    def earlier(schedule, optimizer, epochs, early_stopping=None, *rest):  # ⌊P/2⌋, as before
        made_now = made(schedule, optimizer, epochs, early_stopping, *rest)
        made_now.patience = early_stopping // 2
        return made_now

    def run(folder=None, **options):
        model = wxb.nn.Sequential(wxb.nn.Dense(3, 8, seed=1), wxb.nn.ELU(), wxb.nn.Dense(8, 3))
        model[2].reset_parameters()
        history = wxb.fit(
            model, X, y, optimizer="rmsprop", lr_schedule="plateau", early_stopping=4,
            validation_split=0.25, epochs=6, batch_size=8, seed=2, verbose=False,
            checkpoint_dir=folder, **options,
        )  # fmt: skip
        return history, model

    monkeypatch.setattr(wxb.train, "_make_schedule", earlier)
    wxb.manual_seed(3)
    whole = run()
    wxb.manual_seed(3)
    run(tmp_path, checkpoint_every=5, keep_checkpoints=100)
    first = sorted(tmp_path.glob("step-*.json"))[0]
    for later in sorted(tmp_path.glob("step-*")):
        if later.stem != first.stem:
            later.unlink()
    monkeypatch.setattr(wxb.train, "_make_schedule", made)
    wxb.manual_seed(3)
    with pytest.warns(wxb.checkpoint.CheckpointWarning) as caught:
        resumed = run(tmp_path, resume=True)
    said = [str(w.message) for w in caught]
    assert any("other settings than this wxb makes" in m and "patience=2" in m for m in said)
    assert not any("epochs changed" in m for m in said), said
    assert resumed[0].history == whole[0].history
    for a, b in zip(whole[1].parameters(), resumed[1].parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize(
    "given",
    [("--activation", "elu"), ("--dropout", "0.3"), ("--activation", "silu", "--dropout", "0.2")],
)
def test_train_refuses_hidden_layer_options_without_hidden_layers(tmp_path, rng, capsys, given):
    """--hidden none builds one Dense layer: an activation or dropout for the hidden layers
    was dropped without a word (the model trained as if neither had been given)."""
    data = _noise_table(rng, tmp_path)
    code, _, err = run(
        capsys, "train", "--data", data, "--target", "label", "--hidden", "none", *given,
        "-q", "-o", tmp_path / "m.safetensors",
    )  # fmt: skip
    assert code == 2 and err.count("\n") == 1, err
    assert "--hidden none has none" in err and given[1] in err
    assert not (tmp_path / "m.safetensors").exists()
    code, _, err = run(
        capsys, "train", "--data", data, "--target", "label", "--hidden", "none", "--epochs",
        "1", "-q", "-o", tmp_path / "m.safetensors",
    )  # fmt: skip
    assert code == 0, err


def test_history_of_a_class_weighted_run_says_its_loss_is_weighted(tmp_path, rng, capsys):
    """The history's loss and val_loss are the weighted loss fit trained on; the test
    figures and wxb eval's the plain one. Nothing said so: the regression's note on its
    standardized scale is the only one there was."""
    data = _noise_table(rng, tmp_path)
    history = tmp_path / "history.json"
    code, _, err = run(
        capsys, "train", "--data", data, "--target", "label", "--class-weight", "balanced",
        "--hidden", "4", "--epochs", "2", "-q", "-o", tmp_path / "m.safetensors",
        "--history", history,
    )  # fmt: skip
    assert code == 0, err
    assert "--class-weight balanced" in json.loads(history.read_text())["loss_note"]
    code, _, err = run(
        capsys, "train", "--data", data, "--target", "label", "--hidden", "4", "--epochs",
        "2", "-q", "-o", tmp_path / "m.safetensors", "--history", history,
    )  # fmt: skip
    assert code == 0, err
    assert "loss_note" not in json.loads(history.read_text())


def test_an_interrupted_regression_writes_its_historys_note(tmp_path, rng, capsys, monkeypatch):
    """Stopped without --checkpoint-dir, wxb train writes the history so far: without the
    note that its figures are on standardized targets, which the finished run writes."""
    rows = 80
    table = pd.DataFrame(rng.normal(size=(rows, 2)), columns=["a", "b"])
    table["y"] = 1000 + 50 * table["a"] + rng.normal(size=rows)
    data = tmp_path / "numbers.csv"
    table.to_csv(data, index=False)
    made = wxb.cli.make_optimizer

    def stopping(args, model):  # asks to stop after the third step, as SIGTERM would
        opt = made(args, model)
        step, steps = opt.step, []

        def counted(*a, **k):
            steps.append(1)
            if len(steps) == 3:
                wxb.train.request_stop()
            return step(*a, **k)

        opt.step = counted
        return opt

    monkeypatch.setattr(wxb.cli, "make_optimizer", stopping)
    history = tmp_path / "history.json"
    code, _, err = run(
        capsys, "train", "--data", data, "--target", "y", "--hidden", "4", "--epochs", "50",
        "--batch-size", "8", "-q", "-o", tmp_path / "m.safetensors", "--history", history,
    )  # fmt: skip
    assert code == 130 and "interrupted at epoch 1" in err, err
    assert "standardized targets" in json.loads(history.read_text())["loss_note"]


class _Ported(wxb.nn.Module):
    """A forward as PyTorch code writes it, with torch.nn.functional's inplace flags."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = wxb.nn.Dense(3, 5), wxb.nn.Dense(5, 5), wxb.nn.Dense(5, 2)

    def forward(self, x):
        F = wxb.nn.functional
        x = F.elu(self.a(x), 0.5, True)
        x = F.silu(self.b(x), inplace=True)
        return F.leaky_relu(self.c(x), 0.2, inplace=True)


def test_functional_activations_take_torchs_inplace_flag(rng):
    """F.elu(x, 0.5, True), F.silu(x, inplace=True), F.relu and F.leaky_relu with inplace
    were a bare TypeError (the layers took the flag; the functions did not). The values,
    the gradients and the converted PyTorch model are torch's."""
    torch = pytest.importorskip("torch")
    F, T = wxb.nn.functional, torch.nn.functional
    z = rng.normal(size=(4, 3)) * 3
    for name, args, kwargs in [
        ("relu", (), {"inplace": True}),
        ("leaky_relu", (0.2, True), {}),
        ("elu", (0.5, True), {}),
        ("elu", (), {"alpha": 0.5, "inplace": False}),
        ("silu", (True,), {}),
    ]:
        mine = wxb.Tensor(z, requires_grad=True)
        out = getattr(F, name)(mine, *args, **kwargs)
        out.sum().backward()
        theirs = torch.tensor(z, requires_grad=True)
        expected = getattr(T, name)(theirs * 1.0, *args, **kwargs)  # (in place on a copy)
        expected.sum().backward()
        np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(mine.grad, theirs.grad.numpy(), rtol=1e-12, atol=1e-15)
    with pytest.raises(ConfigError, match="inplace must be True or False"):
        F.silu(wxb.Tensor(z), "yes")
    model = _Ported().to("float64")
    X = rng.normal(size=(6, 3))
    converted = wxb.interop.to_torch(model)
    with torch.no_grad():
        expected = converted(torch.tensor(X)).numpy()
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-12, atol=1e-15)
