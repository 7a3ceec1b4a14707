"""The README: `wxb train -o` "refuses a name ending in another format's suffix", `wxb
export` "refuses .safetensors and those others", `wxb.save` "refuses them too, writing
nothing", and `wxb predict -o` "refuses a name that says otherwise". They took a table's
name (`wxb train --data a.csv -o b.csv` wrote the model over the data file b.csv, `wxb
export -o b.csv` ONNX over it) and predict took a model's (`-o preds.safetensors`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cli_run import FAST, run

import wxb
import wxb.nn as nn

# names of formats wxb reads as tables, or writes as pages, a draw of each kind a run
TABLE_NAMES = (
    (".csv", ".tsv", ".txt", ".data"),
    (".parquet", ".pq"),
    (".feather", ".arrow", ".arrows"),
    (".jsonl", ".ndjson"),
    (".csv.gz", ".csv.zst", ".csv.bz2", ".tsv.lz4"),
    (".xlsx", ".html"),
)
TARGET = ("--target", "y", *FAST)
MODEL_NAMES = (".safetensors", ".onnx", ".pt", ".pkl", ".h5", ".npz")


def test_outputs_refuse_the_name_of_a_table_or_a_model_they_are_not(tmp_path, capsys, rng):
    X = rng.normal(size=(int(rng.integers(30, 60)), 3))
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(y=(X[:, 0] > 0).astype(int))
    frame.to_csv(tmp_path / "train.csv", index=False)
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", tmp_path / "train.csv", *TARGET, "-o", model)
    assert code == 0, err

    for kind in TABLE_NAMES:
        other = tmp_path / f"other{rng.choice(kind)}"  # a data file beside, not an input
        other.write_bytes(bytes(rng.integers(0, 256, 64, dtype=np.uint8)))
        before = other.read_bytes()
        for argv in (
            ("train", "--data", tmp_path / "train.csv", *TARGET, "-o", other),
            ("export", model, "-o", other),
        ):
            code, out, err = run(capsys, *argv)
            assert code == 2 and not out, (argv, err)
            assert err.startswith(f"wxb: error: {other}: ") and "name the file ." in err, err
            assert other.read_bytes() == before, argv  # written over: the data file lost
        with pytest.raises(wxb.ConfigError, match=r"name the file \.safetensors"):
            wxb.save(nn.Sequential(nn.Dense(3, 2)), other)
        assert other.read_bytes() == before

    named = tmp_path / f"predictions{rng.choice(MODEL_NAMES)}"
    code, out, err = run(capsys, "predict", model, tmp_path / "train.csv", "-o", named)
    assert code == 2 and not out and not named.exists(), err
    assert f"name the file .csv, not {named.suffix}" in err
    # CSV text under a name wxb reads as CSV is still taken
    plain = tmp_path / f"predictions{rng.choice(['.csv', '.txt', '.data'])}"
    code, _, err = run(capsys, "predict", model, tmp_path / "train.csv", "-o", plain)
    assert code == 0, err
    assert len(pd.read_csv(plain)) == len(X)
