"""Plots: valid PNG files of the curves and diagnostics a history holds."""

import json

import numpy as np
import pytest

import wxb
from wxb.cli import main
from wxb.nn import Dense, Sequential, Sigmoid
from wxb.plots import plot_history

matplotlib = pytest.importorskip("matplotlib")
PNG = b"\x89PNG\r\n\x1a\n"


def history_of(rng, diagnose):
    X = rng.normal(size=(120, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    model = Sequential(Dense(5, 8), Sigmoid(), Dense(8, 2))
    epochs = int(rng.integers(2, 5))
    return wxb.fit(
        model, X, y, epochs=epochs, validation_split=0.2, diagnose=diagnose, verbose=False
    )


@pytest.mark.parametrize("diagnose", [False, True])
def test_plots_are_pngs_of_the_history(tmp_path, rng, diagnose):
    history = history_of(rng, diagnose)
    written = plot_history(history.to_dict(), tmp_path / "plots")
    names = ["loss.png", "accuracy.png"] + (["diagnostics.png"] if diagnose else [])
    assert [p.name for p in written] == names
    for path in written:
        assert path.read_bytes()[:8] == PNG
        height, width, _ = matplotlib.image.imread(path).shape
        assert width >= 600 and height >= 400


def test_wxb_plot_reads_a_history_file_and_refuses_other_files(tmp_path, rng, capsys):
    history = history_of(rng, diagnose=True)
    path = tmp_path / "h.json"
    path.write_text(history.to_json())
    assert main(["plot", str(path), "-o", str(tmp_path / "out")]) == 0
    assert "diagnostics.png" in capsys.readouterr().out
    assert (tmp_path / "out" / "diagnostics.png").read_bytes()[:8] == PNG
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"history": {"accuracy": [0.5]}}))
    assert main(["plot", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a wxb history" in err
    empty = tmp_path / "empty.json"  # what a run stopped in its first epoch writes
    empty.write_text(wxb.History(engine="planned").to_json())
    assert main(["plot", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no finished epoch" in err
    assert main(["plot", str(path), "-o", str(path)]) == 2  # a file, not a folder
    assert "is a file" in capsys.readouterr().err
    assert json.loads(path.read_text()) == json.loads(history.to_json())  # untouched
