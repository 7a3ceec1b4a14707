"""A newcomer's walk through the optimisers added this stop (newcomer51): wxb train's
--weight-decay on an optimiser without one is refused by the option's name, before the
data is read, and an option an optimiser lacks is refused naming only options a user
can give. Inputs are drawn fresh each run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import wxb
from wxb.cli import main
from wxb.errors import ConfigError
from wxb.optim import OPTIMIZERS, get_optimizer


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_weight_decay_on_rprop_is_refused_by_the_option_before_the_data(
    tmp_path: Path, rng, capsys
):
    # a file that is not there: the refusal must come from the options, not the data
    missing = tmp_path / f"absent{int(rng.integers(1000))}.csv"
    decay = float(rng.uniform(0.01, 0.5))
    code, out, err = run(capsys, "train", "--data", missing, "--target", "y",
                         "--optimizer", "rprop", "--weight-decay", decay)  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--weight-decay is not an option of rprop" in err, err
    assert "torch_only" not in err and out == "", (out, err)
    # ASGD (L2) and Adafactor (decoupled) have one: taken, as the help says
    n = 40
    x1, x2 = rng.normal(size=n).round(3), rng.normal(size=n).round(3)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "y": (x1 - x2 > 0).astype(int)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    for optimizer in ("asgd", "adafactor"):
        code, out, err = run(capsys, "train", "--data", tmp_path / "t.csv", "--target", "y",
                             "--optimizer", optimizer, "--weight-decay", decay, "--hidden", 4,
                             "--epochs", 2, "-q", "-o", tmp_path / "m.safetensors")  # fmt: skip
        assert code == 0 and "saved model to" in out, err


def test_an_option_the_optimiser_lacks_names_only_real_options(rng):
    model = wxb.nn.Sequential(wxb.nn.Dense(int(rng.integers(2, 6)), 3))
    with pytest.raises(ConfigError) as caught:
        get_optimizer("rprop", model.parameters(), weight_decay=float(rng.uniform(0.01, 1)))
    message = str(caught.value)
    assert "rprop has no option 'weight_decay'" in message, message
    assert "torch_only" not in message, message  # (**torch_only: no option of its own)
    assert "lr, etas, step_sizes, maximize)" in message, message


def test_train_help_names_every_optimisers_default_rate_and_decay(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    lr_help = text.split("--lr LR learning rate", 1)[1].split("--momentum MOMENTUM", 1)[0]
    decay_help = text.split("--weight-decay WEIGHT_DECAY L2", 1)[1].split("--lr-schedule {", 1)[0]
    model = wxb.nn.Sequential(wxb.nn.Dense(3, 2))
    for name in OPTIMIZERS:
        assert name in lr_help, (name, lr_help)
        assert name in decay_help, (name, decay_help)
    # the rate the help gives the new ones is the one they start from
    assert "rprop, asgd and adafactor 0.01" in lr_help, lr_help
    for name in ("rprop", "asgd", "adafactor"):
        assert get_optimizer(name, model.parameters()).param_groups[0]["lr"] == 0.01


def test_torch_autograd_function_module_ports_as_written(rng):
    torch = pytest.importorskip("torch")
    from torch.autograd.function import once_differentiable as torch_once
    from wxb.autograd.function import Function, FunctionCtx, once_differentiable

    assert Function is wxb.autograd.Function and FunctionCtx is wxb.autograd.FunctionCtx

    def cube(base, decorate):
        class Cube(base):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x**3

            @staticmethod
            @decorate
            def backward(ctx, grad_output):
                (x,) = ctx.saved_tensors
                return grad_output * 3 * x**2

        return Cube

    x = rng.normal(size=(int(rng.integers(2, 6)), 3))
    g = rng.normal(size=x.shape)
    ours = wxb.tensor(x, dtype="float64", requires_grad=True)
    (
        cube(Function, once_differentiable).apply(ours) * wxb.tensor(g, dtype="float64")
    ).sum().backward()
    theirs = torch.tensor(x, requires_grad=True)
    (cube(torch.autograd.Function, torch_once).apply(theirs) * torch.tensor(g)).sum().backward()
    # float64 both ways: the same three products, to a few ulps
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-13, atol=0)
    # a name torch's module has and wxb's lacks: one line naming what it holds
    with pytest.raises(ImportError, match="it holds Function, FunctionCtx, once_differentiable"):
        from wxb.autograd.function import InplaceFunction  # noqa: F401


def test_wxb_predict_takes_the_ids_an_embedding_model_was_fitted_on(tmp_path: Path, rng, capsys):
    vocabulary, per_row, n = int(rng.integers(5, 20)), int(rng.integers(2, 5)), 50
    ids = rng.integers(0, vocabulary, (n, per_row))
    model = wxb.nn.Sequential(
        wxb.nn.Embedding(vocabulary, 4), wxb.nn.Flatten(), wxb.nn.Linear(4 * per_row, 3)
    )
    wxb.fit(model, ids, rng.integers(0, 3, n), epochs=1, verbose=0)
    wxb.save(model, tmp_path / "m.safetensors")
    columns = [f"w{i}" for i in range(per_row)]
    pd.DataFrame(ids, columns=columns).to_csv(tmp_path / "ids.csv", index=False)
    code, out, err = run(capsys, "predict", tmp_path / "m.safetensors", tmp_path / "ids.csv")
    # (it said: 'N features but the model takes 4·N', the Dense after the lookup's width)
    assert code == 0, err
    predicted = np.array(out.split()[1:], dtype=np.int64)
    np.testing.assert_array_equal(predicted, model.predict(ids).argmax(axis=1))
