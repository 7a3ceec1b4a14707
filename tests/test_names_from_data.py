"""Names that come from the data (columns, categories, classes) as wxb shows and writes
them (a hunt with hostile names): a terminal's escape sequences are shown, not run;
Markdown shows them literally; a column named 'a,b' can be chosen; a model file too
large to load is not written."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_run import run

import wxb
from wxb.cli import main
from wxb.errors import DataError
from wxb.nn import Dense, Sequential

ESCAPE = "\x1b[2J\x1b[31m"  # clear the screen, then red


@pytest.fixture
def hostile(tmp_path, rng) -> tuple[Path, Path]:
    """A table whose names carry escape sequences and Markdown, and a model of it."""
    n = 60
    frame = pd.DataFrame(
        {
            "f" + ESCAPE: rng.normal(size=n).round(3),
            "<img src=x onerror=alert(1)>": rng.normal(size=n).round(3),
            "[click](javascript:alert(1))": [["a" + ESCAPE, "*b*", "<c>"][i % 3] for i in range(n)],
            "y": [["yes" + ESCAPE, "no\r"][i % 2] for i in range(n)],
        }
    )
    frame.iloc[1, 0] = np.nan
    frame.to_csv(tmp_path / "d.csv", index=False)
    model = tmp_path / "m.safetensors"
    assert main(["train", "--data", str(tmp_path / "d.csv"), "--target", "y", "--hidden", "8",
                 "--epochs", "2", "-q", "-o", str(model)]) == 0  # fmt: skip
    return tmp_path / "d.csv", model


@pytest.mark.parametrize("command", ["eval", "summary", "explain"])
def test_escape_sequences_in_names_are_shown_not_run(hostile, capsys, command):
    data, model = hostile
    capsys.readouterr()
    argv = {"eval": ("eval", model, data), "summary": ("summary", model, "--no-floor"),
            "explain": ("explain", model, "--data", data)}[command]  # fmt: skip
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "\x1b" not in out and "\r" not in out
    assert "\\x1b[2J\\x1b[31m" in out  # the name is there, as repr() writes it


@pytest.mark.parametrize("command", ["summary", "explain"])
def test_markdown_shows_names_literally(hostile, capsys, command):
    data, model = hostile
    capsys.readouterr()
    argv = {"summary": ("summary", model, "--no-floor", "--format", "md"),
            "explain": ("explain", model, "--data", data, "--format", "md")}[command]  # fmt: skip
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "<img" not in out and "<c>" not in out and "[click](" not in out
    assert "&lt;img src=x onerror=alert(1)&gt;" in out
    assert "\\[click\\](javascript:alert(1))" in out
    stage = [line for line in out.splitlines() if "&lt;img" in line]
    assert stage and all(line.startswith("- ") for line in stage)  # a list, not a paragraph


def test_a_column_named_with_a_comma_can_be_chosen_or_dropped(tmp_path, rng, capsys):
    n = 60
    frame = pd.DataFrame({name: rng.normal(size=n) for name in ("a", "b", "a,b", "c")})
    frame["y"] = rng.choice(["p", "q"], n)
    frame.to_csv(tmp_path / "d.csv", index=False)
    model = tmp_path / "m.safetensors"
    expected = {"--features": ["a,b"], "--drop": ["a", "b", "c"]}
    for option, features in expected.items():
        code, _, err = run(capsys, "train", "--data", tmp_path / "d.csv", "--target", "y",
                           option, "a,b", "--epochs", "2", "-q", "-o", model)  # fmt: skip
        assert code == 0, err
        assert wxb.load(model).info["feature_names"] == features
    # without a column of that name, a,b names two
    frame.drop(columns="a,b").to_csv(tmp_path / "e.csv", index=False)
    code, _, err = run(capsys, "train", "--data", tmp_path / "e.csv", "--target", "y",
                       "--drop", "a,b", "--epochs", "2", "-q", "-o", model)  # fmt: skip
    assert code == 0, err
    assert wxb.load(model).info["feature_names"] == ["c"]


def test_a_model_file_too_large_to_load_is_not_written(tmp_path):
    model = Sequential(Dense(2, 3, seed=0))
    path = tmp_path / "m.safetensors"
    wxb.save(model, path)
    before = path.read_bytes()
    model.info["classes"] = ["类" * 1000 + str(i) for i in range(16_000)]  # 7 bytes a 类
    with pytest.raises(DataError, match="at most 100 MiB"):
        wxb.save(model, path)
    assert path.read_bytes() == before


def test_escaping_is_the_commands_own_thread_and_goes_away_with_it(capsys):
    from wxb.cli import printable_output

    started, release = threading.Event(), threading.Event()

    def command():
        with printable_output(True):
            started.set()
            print("A\x1b[2J")
            release.wait(10)

    worker = threading.Thread(target=command)
    worker.start()
    started.wait(10)
    print("log\x1b[32m")  # another thread's own line: as written
    release.set()
    worker.join(10)
    out = capsys.readouterr().out
    assert "A\\x1b[2J" in out and "log\x1b[32m" in out
    assert type(sys.stdout).__name__ != "_Printable"  # taken away when done
