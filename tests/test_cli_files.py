"""The CLI and the files already on disk: nothing a user has is deleted or overwritten
by a command that did not name it, and every refusal is one line with status 2 before
any file is touched. Each test is a defect a hunt met (see the commit that added it)."""

import json
import os
import re
from pathlib import Path

import pytest

from wxb.cli import main

FAST = ("--hidden", "4", "--epochs", "2", "-q", "--target", "y")


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code, err, pattern):
    assert code == 2, (code, err)
    assert err.startswith("wxb: error: ") and err.count("\n") == 1, err
    assert re.search(pattern, err), (pattern, err)


@pytest.fixture
def data(tmp_path, rng):
    n = int(rng.integers(40, 80))
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    rows = "\n".join(f"{a:.4f},{b:.4f},{c:.4f},{t}" for (a, b, c), t in zip(X, y, strict=True))
    path = tmp_path / "d.csv"
    path.write_text("a,b,c,y\n" + rows + "\n")
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_checkpoint_pruning_leaves_files_it_did_not_write(tmp_path, data, capsys):
    """Pruning removed every step-*.safetensors without its JSON: a user's
    step-best.safetensors in the folder, or the model written there by -o."""
    mine = {"step-best.safetensors": b"mine", "step-1.safetensors": b"mine too"}
    for name, payload in mine.items():
        (tmp_path / name).write_bytes(payload)
    code, _, err = run_cli(capsys, "train", "--data", data, *FAST, "-o",
                           tmp_path / "m.safetensors", "--checkpoint-dir", tmp_path)  # fmt: skip
    assert code == 0, err
    for name, payload in mine.items():
        assert (tmp_path / name).read_bytes() == payload


def test_plots_never_overwrite_an_input_another_output_or_a_model(tmp_path, data, capsys):
    """--plots DIR (and wxb plot -o DIR) wrote loss.png and accuracy.png over whatever had
    those names: the model just saved, the history, the input history of wxb plot."""
    folder = tmp_path / "P"
    folder.mkdir()
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, "train", "--data", data, *FAST, "-o", folder / "loss.png",
                           "--plots", folder)  # fmt: skip
    one_line_error(code, err, r"loss\.png is also another output")
    code, _, err = run_cli(capsys, "train", "--data", data, *FAST, "-o", tmp_path / "m.safetensors",
                           "--history", folder / "accuracy.png", "--plots", folder)  # fmt: skip
    one_line_error(code, err, r"accuracy\.png is also another output")
    assert snapshot(tmp_path) == before  # refused before anything was written
    history = tmp_path / "h.json"
    code, _, err = run_cli(capsys, "train", "--data", data, *FAST, "-o", tmp_path / "m.safetensors",
                           "--history", history)  # fmt: skip
    assert code == 0, err
    (folder / "loss.png").write_bytes(history.read_bytes())
    code, _, err = run_cli(capsys, "plot", folder / "loss.png", "-o", folder)
    one_line_error(code, err, r"loss\.png is also an input")
    (folder / "loss.png").write_bytes((tmp_path / "m.safetensors").read_bytes())
    code, _, err = run_cli(capsys, "plot", history, "-o", folder)
    one_line_error(code, err, r"loss\.png is a wxb model file")


def test_a_refused_resume_records_nothing_and_the_right_one_then_runs(tmp_path, data, capsys):
    """A folder without train-options.json (Python's fit wrote it): a --resume with other
    options was refused, but had already recorded its options, so the right command was
    then refused too."""
    folder, model = tmp_path / "ck", tmp_path / "m.safetensors"
    base = ["train", "--data", data, "-q", "--target", "y", "-o", model, "--checkpoint-dir", folder]
    code, _, err = run_cli(capsys, *base, "--hidden", "4", "--epochs", "2")
    assert code == 0, err
    (folder / "train-options.json").unlink()
    code, _, err = run_cli(capsys, *base, "--hidden", "8", "--epochs", "3", "--resume")
    one_line_error(code, err, "architecture")
    assert not (folder / "train-options.json").exists()
    code, _, err = run_cli(capsys, *base, "--hidden", "4", "--epochs", "3", "--resume")
    assert code == 0, err
    assert json.loads((folder / "train-options.json").read_text())["hidden"] == "4"


@pytest.mark.parametrize("name", ["train-options.json", "step-000000004.json"])
def test_no_output_may_be_a_file_of_the_checkpoint_folder(tmp_path, data, capsys, name):
    folder = tmp_path / "ck"
    code, _, err = run_cli(capsys, "train", "--data", data, *FAST, "-o", tmp_path / "m.safetensors",
                           "--checkpoint-dir", folder, "--history", folder / name)  # fmt: skip
    one_line_error(code, err, "is a file of --checkpoint-dir")
    assert not folder.exists()


@pytest.mark.parametrize(
    "record, fragment",
    [
        ({"history": {"loss": [1, "x"]}}, "not a list of numbers"),
        ({"history": {"loss": [1, 2], "val_loss": [1]}}, "has 1 epochs"),
        ({"history": {"loss": [1, 2], "accuracy": 5}}, "not a list of numbers"),
        ({"history": {"loss": [1, 2]}, "diagnostics": [{"epoch": 1}]}, "diagnostics"),
        ({"history": {"loss": [1, 2]}, "loss_note": 5}, "loss_note"),
        ({"history": {"loss": [None, None]}}, "no epoch has a loss"),
    ],
)
def test_wxb_plot_refuses_a_malformed_history_in_one_line_and_draws_nothing(
    tmp_path, capsys, record, fragment
):
    """A traceback (TypeError, ValueError, KeyError…) with loss.png already drawn."""
    path = tmp_path / "h.json"
    path.write_text(json.dumps(record))
    code, _, err = run_cli(capsys, "plot", path, "-o", tmp_path / "out")
    one_line_error(code, err, re.escape(fragment))
    assert not list((tmp_path / "out").glob("*.png"))


def test_odd_output_paths_get_one_line_and_a_long_name_is_written(tmp_path, data, capsys):
    """'out/' became a file 'out'; a symlink loop gave RuntimeError's traceback; a name
    with a line break gave two lines; a legal 250-byte name failed after training (the
    temporary's name added 14 bytes)."""
    code, _, err = run_cli(capsys, "train", "--data", data, *FAST, "-o", f"{tmp_path}/newdir/")
    one_line_error(code, err, "names a folder")
    assert not (tmp_path / "newdir").exists()
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    code, _, err = run_cli(capsys, "train", "--data", data, *FAST, "-o", tmp_path / "loop")
    one_line_error(code, err, "cannot write there")
    code, _, err = run_cli(capsys, "eval", tmp_path / "no\nsuch.safetensors", data)
    one_line_error(code, err, r"no\\nsuch")
    long = tmp_path / ("a" * 238 + ".safetensors")
    code, _, err = run_cli(capsys, "train", "--data", data, *FAST, "-o", long)
    assert code == 0 and long.is_file(), err
    assert not list(tmp_path.glob(".*.tmp"))
