"""evaluate (and a second fit) without loss= on a model of wxb train's Huber or smooth
L1 regression: the loss as training applied it, δ (β) = the targets' scale in their
units, not δ = 1 on targets that training standardized."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import wxb
from wxb.cli import main


@pytest.mark.parametrize("name", ["huber", "smooth_l1"])
def test_evaluate_scores_a_cli_model_with_trainings_delta(tmp_path, name):
    seed = int(np.random.SeedSequence().entropy % 2**32)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(120, 3))
    scale = float(rng.uniform(50, 500))
    y = scale * (X @ rng.normal(size=3) + 0.3 * rng.normal(size=120)) + rng.uniform(-1e3, 1e3)
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(target=y)
    frame.to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "m.safetensors"
    data = ["--data", str(tmp_path / "t.csv"), "--target", "target"]
    options = ["--loss", name, "--epochs", "3", "-q", "-o", str(out), "--seed", str(seed % 1000)]
    code = main(["train", *data, *options])
    assert code == 0
    model = wxb.load(out)
    s = float(model.info["target_scale"][0])
    rows = frame[["a", "b", "c"]]
    pred = torch.tensor(np.asarray(model.predict(rows), dtype=np.float64))
    truth = torch.tensor(y).reshape(-1, 1)
    if name == "huber":
        expected = torch.nn.functional.huber_loss(pred, truth, delta=s).item()
    else:
        expected = torch.nn.functional.smooth_l1_loss(pred, truth, beta=s).item()
    got = wxb.evaluate(model, rows, y)["loss"]
    assert got == pytest.approx(expected, rel=1e-5), (seed, s, got, expected)
    # δ = 1 in the targets' units, what evaluate took before, is another figure here
    plain = torch.nn.functional.huber_loss(pred, truth, delta=1.0).item()
    assert abs(plain - expected) > 1e-3 * expected, (seed, plain, expected)
