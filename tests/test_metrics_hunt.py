"""What wxb eval, its tables and the metrics functions print about a model's quality,
against scikit-learn.metrics (and the counts behind each share) on fresh random rows."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from cli_run import run


def _overlap_said(err: str) -> tuple[int, int, str]:
    found = re.search(r"warning: (\d+) of (\d+) rows \(([^)]*)\) are", err)
    assert found, err
    return int(found[1]), int(found[2]), found[3]


def test_the_share_of_training_rows_reads_none_or_all_only_when_it_is(tmp_path, seeded, capsys):
    rng = seeded.rng
    # a few distinct rows, each many times: every one of them lands among the training rows
    patterns = rng.normal(size=(int(rng.integers(3, 6)), 2)).round(3)
    labels = np.array(["a", "b"])[np.arange(len(patterns)) % 2]
    pick = np.repeat(np.arange(len(patterns)), 30)
    frame = pd.DataFrame(patterns[pick], columns=["u", "v"]).assign(y=labels[pick])
    frame.to_csv(tmp_path / "train.csv", index=False)
    model = tmp_path / "m.safetensors"
    train = ("--target", "y", "--hidden", "4", "--epochs", "1", "-q", "--fingerprint")
    code, _, err = run(capsys, "train", "--data", tmp_path / "train.csv", *train, "-o", model)
    assert code == 0, err

    many = int(rng.integers(250, 400))
    new = pd.DataFrame(rng.normal(size=(1, 2)) + 10, columns=["u", "v"]).assign(y="a")
    seen = frame.sample(many, replace=True, random_state=int(rng.integers(1 << 31)))
    nearly_all = pd.concat([seen, new])  # many of many + 1: not "100%"
    nearly_none = pd.concat([seen.iloc[:1], new.iloc[[0] * many]])  # 1 of many + 1: not "0%"
    for rows, expected in ((nearly_all, many), (nearly_none, 1)):
        rows.to_csv(tmp_path / "e.csv", index=False)
        code, _, err = run(capsys, "eval", model, tmp_path / "e.csv")
        assert code == 0, err
        count, whole, text = _overlap_said(err)
        assert (count, whole) == (expected, len(rows)), seeded.msg(err)
        share = count / whole
        # as a whole percent, up to one either side; 0% and 100% only for none and all
        assert text not in ("0%", "100%"), seeded.msg(f"{count} of {whole} said as {text}")
        shown = float(text.strip("<>%")) / 100
        assert abs(shown - share) <= 0.01, seeded.msg(f"{count} of {whole} said as {text}")
