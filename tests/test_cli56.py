"""wxb train, predict and eval on tables, where a path was silently off: categories only
held-out rows hold (all zeros, as predict takes them) said by train as predict says them;
predict and evaluate in eval mode as ``model.eval()`` sets it (a module's own ``train``
keeps its say, as in PyTorch); booleans in any case, and odd cells, read as pandas reads them."""

from __future__ import annotations

import re

import numpy as np
import torch
from cli_run import run

import wxb
from wxb import nn


def test_train_says_which_held_out_categories_the_training_rows_lack(tmp_path, rng, capsys):
    # half the rows a colour of their own: the held-out ones among them are all zeros
    n = 60
    x = rng.normal(size=n)
    colour = rng.choice(["red", "blue"], size=n).astype(object)
    own = rng.choice(n, size=n // 2, replace=False)
    colour[own] = [f"shade{i}" for i in range(len(own))]
    y = x + (colour == "red")
    data = tmp_path / "t.csv"
    rows = (f"{a},{c},{b}\n" for a, c, b in zip(x, colour, y, strict=True))
    data.write_text("x,colour,y\n" + "".join(rows))
    model = tmp_path / "m.safetensors"
    code, out, err = run(capsys, "train", "--data", data, "--target", "y", "--hidden", "4",
                         "--epochs", "1", "-q", "-o", model)  # fmt: skip
    assert code == 0, err
    fit = int(re.search(r"; (\d+) train, ", out)[1])
    # the categories the model kept, from its file: the rows with others are the unseen
    known = set(wxb.load(str(model)).info["table"]["columns"][1]["categories"])
    unseen = [c for c in colour if c not in known]
    assert unseen and len(known) == 2 + len(own) - len(unseen), (known, unseen)
    (line,) = [line for line in err.splitlines() if "not seen in training" in line]
    assert line.startswith(f"wxb: warning: {data}'s validation and test rows: column 'colour': "
                           f"{len(unseen)} of {n - fit} rows"), line  # fmt: skip
    assert f"taken from the {fit} training rows" in line, line
    assert all(repr(c) in line for c in unseen[:3]) or "other value" in line, line
    # eval says the same rows of the whole file
    code, _, err = run(capsys, "eval", model, data)
    assert code == 0 and f"{len(unseen)} of {n} rows" in err, err


def test_predict_and_evaluate_keep_a_modules_own_train_as_torch_eval_does(seeded, rng):
    """Monte Carlo dropout as PyTorch writes it: a Dropout whose train() keeps it on.
    model.eval() leaves it training in torch; predict and evaluate run in that mode."""

    class MCDropout(nn.Dropout):
        def train(self, mode=True):
            return super().train(True)

    class TorchMCDropout(torch.nn.Dropout):
        def train(self, mode=True):
            return super().train(True)

    p = float(rng.uniform(0.2, 0.6))
    twin = torch.nn.Sequential(torch.nn.Linear(4, 16), TorchMCDropout(p), torch.nn.Linear(16, 2))
    twin.eval()
    model = nn.Sequential(nn.Linear(4, 16), MCDropout(p), nn.Linear(16, 2))
    model.load_state_dict({k: v.numpy() for k, v in twin.state_dict().items()})
    model.eval()
    flags = [m.training for m in model.modules()]
    assert flags == [m.training for m in twin.modules()] == [False, False, True, False]
    X = rng.normal(size=(int(rng.integers(2, 40)), 4)).astype(np.float32)
    with torch.no_grad():
        varies = not torch.equal(twin(torch.tensor(X)), twin(torch.tensor(X)))
    assert varies, seeded.msg("torch's Monte Carlo dropout gave the same outputs twice")

    # predict draws masks as the model's own call under no_grad does, and changes no flag
    wxb.manual_seed(seeded.wxb_seed)
    got = model.predict(X)
    wxb.manual_seed(seeded.wxb_seed)
    with wxb.no_grad():
        called = model(X).data
    np.testing.assert_array_equal(got, called, err_msg=seeded.msg("predict vs model(X)"))
    assert not np.array_equal(got, model.predict(X)), seeded.msg("predict gave one draw twice")
    assert [m.training for m in model.modules()] == flags
    # each dropped unit 0, each kept scaled by 1/(1 − p): torch's values
    alone = nn.Sequential(MCDropout(p)).eval().predict(np.ones((64, 8), np.float32))
    with torch.no_grad():
        expected = torch.unique(TorchMCDropout(p).eval()(torch.ones(64, 8))).numpy()
    np.testing.assert_allclose(np.unique(alone), expected, rtol=1e-6)

    y = rng.normal(size=(len(X), 2)).astype(np.float32)
    losses = {wxb.evaluate(model, X, y, loss="mse")["loss"] for _ in range(3)}
    assert len(losses) > 1, seeded.msg("evaluate ran without the kept-on dropout")

    # a stock Dropout, a model left in training mode: eval mode, torch's eval outputs
    stock = nn.Sequential(nn.Linear(4, 16), nn.Dropout(p), nn.Linear(16, 2))
    stock.load_state_dict(model.state_dict())
    stock.train()
    plain = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(p), torch.nn.Linear(16, 2))
    plain.load_state_dict(twin.state_dict())
    with torch.no_grad():
        expected = plain.eval()(torch.tensor(X)).numpy()
    np.testing.assert_allclose(stock.predict(X), expected, rtol=1e-5, atol=1e-6)
    assert stock.training
