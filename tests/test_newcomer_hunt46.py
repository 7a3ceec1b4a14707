"""A newcomer's next steps after the README's examples: a report asked for one row of a
model trained on a file, and a checkpoint handed to the commands that read a model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_run import FAST, run

import wxb
from wxb.errors import ModelFileError


def _table(rng: np.random.Generator, path: Path) -> Path:
    rows = int(rng.integers(40, 90))
    table = pd.DataFrame(rng.normal(size=(rows, 3)).round(3), columns=["a", "b", "c"])
    table["y"] = rng.choice(["x", "z"], size=rows)
    table.to_csv(path, index=False)
    return path


def test_report_refuses_a_row_it_has_no_data_for(tmp_path, capsys, seeded):
    """`wxb report iris.safetensors --sample 3` (a model trained on a file, no --data)
    wrote a page without a walk-through and exited 0, --sample ignored; --target alone
    was refused. Either one now asks for --data, and no page is written."""
    rng = seeded.rng
    data = _table(rng, tmp_path / "t.csv")
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", data, "--target", "y", *FAST, "-o", model)
    assert code == 0, err
    sample = int(rng.integers(1, 40))
    page = tmp_path / "r.html"
    for extra in (["--sample", sample], ["--sample", sample, "--target", "y"], ["--target", "y"]):
        code, out, err = run(capsys, "report", model, *extra, "--no-floor", "-o", page)
        assert code == 2 and out == "", seeded.msg(f"{extra}: {out}")
        assert err.startswith("wxb: error: ") and err.count("\n") == 1, err
        assert all(f"{o}" in err for o in extra if str(o).startswith("--")) and "--data" in err
        assert not page.exists()
    code, out, err = run(capsys, "report", model, "--sample", sample, "--data", data,
                         "--no-floor", "-o", page)  # fmt: skip
    assert code == 0 and f"row {sample} of" in out, seeded.msg(err)


@pytest.mark.parametrize("command", ["summary", "predict", "eval", "explain", "diagram", "report"])
def test_a_checkpoint_given_as_a_model_is_named_as_one(tmp_path, capsys, seeded, command):
    """`wxb predict ckpt/step-….safetensors new.csv`, to predict from a run under way,
    said 'a safetensors file, but not a wxb model … weights alone, as
    safetensors.numpy.save_file writes them …' (its own checkpoint, whose keys
    model.*/optimizer.* no load_state_dict takes), and of the step's JSON 'not a
    safetensors file (bad header length)'. Both now say it is a training checkpoint
    and that --resume finishes the run; that way then gives a model."""
    rng = seeded.rng
    data = _table(rng, tmp_path / "t.csv")
    folder, model = tmp_path / "ckpt", tmp_path / "m.safetensors"
    argv = ["train", "--data", data, "--target", "y", "--hidden", "8", "--epochs", "4", "-q",
            "--checkpoint-dir", folder, "-o", model]  # fmt: skip
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    steps = sorted(folder.glob("step-*.json"))
    assert steps, "no checkpoint written"
    record = steps[int(rng.integers(len(steps)))]
    rest = {"predict": [data], "eval": [data], "explain": ["--data", data],
            "report": ["--no-floor", "-o", tmp_path / "r.html"]}.get(command, [])  # fmt: skip
    for given in rng.permutation([record, record.with_suffix(".safetensors")]):
        code, out, err = run(capsys, command, given, *rest)
        assert code == 2 and out == "", seeded.msg(f"{given}: {out}")
        assert err.startswith(f"wxb: error: {given}: a training checkpoint"), err
        assert "--resume" in err and err.count("\n") == 1, err
        with pytest.raises(ModelFileError, match="a training checkpoint"):
            wxb.load(given)
    model.unlink()
    code, _, err = run(capsys, *argv, "--resume")  # the way the error names
    assert code == 0, err
    code, out, err = run(capsys, "summary", model, "--no-floor")
    assert code == 0 and "hidden1 (Dense)" in out, err


def test_an_npz_without_the_array_named_says_which_it_has(tmp_path, capsys, seeded):
    """An NPZ whose arrays are not X and y (`np.savez(path, feats=…, target=…)`) was
    refused as 'not a readable NPZ file (…: no array 'X' (found …); name it with
    --x-array)': the reader's own DataError, a ValueError, was caught as a broken file's.
    The line now says only what is missing, which arrays there are and the option."""
    rng = seeded.rng
    rows, width = int(rng.integers(30, 60)), int(rng.integers(2, 6))
    names = [f"a{rng.integers(1000)}", f"b{rng.integers(1000)}"]
    data = tmp_path / "d.npz"
    X, y = rng.normal(size=(rows, width)), rng.integers(0, 2, size=rows)
    np.savez(data, **{names[0]: X, names[1]: y})
    found = ", ".join(sorted(names))
    capsys.readouterr()  # (the fixture's line with the seed)
    wanted = {
        (): f"{data}: no array 'X' (found {found}); name it with --x-array",
        ("--x-array", names[0], "--y-array", "nope"): f"{data}: no array 'nope' (found {found})",
        ("--x-array", names[0]): f"{data}: no array 'y' with the targets; name it with --y-array",
    }
    for extra, line in wanted.items():
        code, out, err = run(capsys, "train", "--data", data, *extra, *FAST)
        assert (code, out, err) == (2, "", f"wxb: error: {line}\n"), seeded.msg(str(extra))
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", data, "--x-array", names[0], "--y-array",
                       names[1], *FAST, "-o", model)  # fmt: skip
    assert code == 0, err
    np.testing.assert_array_equal(wxb.load(model).predict(X).shape, (rows, 2))


def test_explain_names_the_one_option_out_of_range_with_its_value(capsys, seeded):
    """`wxb explain MODEL --sample -3` said "--rows must be ≥ 1 and --sample ≥ 0", naming
    an option the user left alone and not the value given (wxb report's own check says
    "--sample must be ≥ 0; got -3"). Each is now named alone, with its value."""
    rng = seeded.rng
    capsys.readouterr()  # (the fixture's line with the seed)
    sample, rows = -int(rng.integers(1, 100)), -int(rng.integers(0, 100))
    for argv, line in (
        (["--sample", sample], f"--sample must be ≥ 0; got {sample}"),
        (["--rows", rows], f"--rows must be ≥ 1; got {rows}"),
    ):
        code, out, err = run(capsys, "explain", "model.safetensors", *argv)
        assert (code, out, err) == (2, "", f"wxb: error: {line}\n"), seeded.msg(str(argv))
