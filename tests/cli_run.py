"""The command line run in-process, as the tests of tables and figures drive it."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from wxb.cli import main

FAST = ("--hidden", "8", "--epochs", "3", "-q")  # a small model, trained briefly


def run(capsys, *argv) -> tuple[int, str, str]:
    """``wxb ARGV``: its exit status, standard output and standard error."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def trained(capsys, data, *extra, fast: tuple[str, ...] = FAST) -> Path:
    """``wxb train`` on ``data`` (FAST), the model beside it; it must succeed."""
    model = Path(data).with_name("model.safetensors")
    code, _, err = run(capsys, "train", "--data", data, *fast, "-o", model, *extra)
    assert code == 0, err
    return model


def predicted(capsys, model, data, *extra, **read_csv) -> pd.DataFrame:
    """``wxb predict`` of ``data`` as pandas reads its output; it must succeed."""
    code, out, err = run(capsys, "predict", model, data, *extra)
    assert code == 0, err
    return pd.read_csv(io.StringIO(out), **read_csv)
