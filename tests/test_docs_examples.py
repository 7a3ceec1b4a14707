"""The docs' examples run as written: the README's ```python blocks, the self-contained
block of docs/scaling.md, the seed's worked example the tutorial prints, the lines of
the transcripts that do not depend on how training went, and every wxb command and option
the README and the tutorial name. A change of the code that breaks one of them fails here,
not in a reader's hands."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_run import run

import wxb
from wxb.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TUTORIAL = ROOT / "docs" / "tutorial.md"
SCALING = ROOT / "docs" / "scaling.md"

# Options the docs name that belong to other programs: bench/run.py's, Open MPI's
# mpiexec's, ruff's.
# bench/run.py's (--native-blas, --quick, --sections), mpiexec's and ruff's
NOT_WXB = {"--native-blas", "--quick", "--sections", "--allow-run-as-root", "--check"}


def fenced(path: Path, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", path.read_text(), re.S | re.M)


def readme_blocks() -> dict[str, str]:
    """The README's Python blocks by what they show; a new one must be added here."""
    blocks = fenced(README, "python")
    names = [
        "wine_dataframe",
        "digits_fit",
        "checkpoints",
        "hand_loop",
        "sklearn",
        "from_pytorch",
    ]
    assert len(blocks) == len(names), (
        f"README.md has {len(blocks)} ```python blocks, this test runs {len(names)}: "
        "run the new one in tests/test_docs_examples.py too"
    )
    return dict(zip(names, blocks, strict=True))


def execute(block: str, namespace: dict) -> str:
    """Runs a block as a script would, in ``namespace``; what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(block, "<docs example>", "exec"), namespace)
    return printed.getvalue()


def test_the_readme_dataframe_example_predicts_by_column_name(tmp_path, monkeypatch, capsys, rng):
    (tmp_path / "examples").mkdir()
    for name in ("wine.csv", "new_bottles.csv"):
        shutil.copy(ROOT / "examples" / name, tmp_path / "examples" / name)
    monkeypatch.chdir(tmp_path)
    # The README's wxb train command, briefly: the block needs its model file.
    code, _, err = run(
        capsys,
        *("train", "--data", "examples/wine.csv", "--comment", "#", "--target", "cultivar"),
        *("--id-column", "bottle_id", "--epochs", "3", "-q", "-o", "wine.safetensors"),
    )
    assert code == 0, err

    ns: dict = {}
    execute(readme_blocks()["wine_dataframe"], ns)
    logits, model, new = ns["logits"], ns["model"], ns["new"]
    assert logits.shape == (2, 3) and np.isfinite(logits).all()
    # "columns by name": any order of the DataFrame's columns gives the same outputs
    shuffled = new[list(rng.permutation(new.columns))]
    np.testing.assert_array_equal(model.predict(shuffled), logits)
    # and they are what wxb predict --proba gives for the same file
    code, out, err = run(
        capsys, "predict", "wine.safetensors", "examples/new_bottles.csv", "--comment", "#"
    )
    assert code == 0, err
    cli = pd.read_csv(io.StringIO(out))
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    classes = np.asarray(model.info["classes"])
    assert list(cli["prediction"]) == list(classes[proba.argmax(axis=1)])
    assert list(cli["bottle_id"]) == [9001, 9002]


def test_the_readme_python_api_blocks_run_in_order(tmp_path, monkeypatch, rng):
    pytest.importorskip("sklearn")
    monkeypatch.chdir(tmp_path)
    blocks = readme_blocks()
    ns: dict = {}

    execute(blocks["digits_fit"], ns)
    model, history = ns["model"], ns["history"]
    assert ns["accuracy"] > 0.9
    assert history.engine == "planned"
    assert len(history["val_accuracy"]) == history.epochs >= 1
    # "rebuilds it": the loaded model predicts what the trained one does, bit for bit
    rows = rng.uniform(0, 1, size=(int(rng.integers(1, 50)), 64))
    np.testing.assert_array_equal(ns["same"].predict(rows), model.predict(rows))

    execute(blocks["checkpoints"], ns)
    first = ns["history"]
    assert first.resumed_from is None  # none there yet: from the start
    assert sorted((tmp_path / "digits_ckpt").glob("step-*.json"))
    weights = [p.data.copy() for p in model.parameters()]
    state = ns["state"]  # "PyTorch's layout: step counts, moments, param_groups"
    assert {"state", "param_groups"} <= set(state) and state["param_groups"][0]["lr"] == 1e-3
    assert all(entry["step"] == 0 for entry in state["state"].values())  # a fresh Adam
    # "rerun the same script ... and it goes on where it stopped": here, at the end
    execute(blocks["checkpoints"], ns)
    again = ns["history"]
    assert again.resumed_from is not None
    assert again["loss"] == first["loss"]
    for before, p in zip(weights, model.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, before)

    # "opt.step(): in place on each parameter's .data": a view taken before follows it
    view = model.parameters()[0].data
    before = view.copy()
    execute(blocks["hand_loop"], ns)
    assert model.parameters()[0].data is view and not np.array_equal(view, before)
    assert np.isfinite(ns["loss"].item())

    execute(blocks["sklearn"], ns)
    clf, X_test, y_test = ns["clf"], ns["X_test"], ns["y_test"]
    assert clf.score(X_test, y_test) > 0.9
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert [w.shape for w in clf.coefs_] == [(64, 100), (100, 10)]
    assert 0 < len(clf.loss_curve_) <= 300

    # Coming from PyTorch: the ported script trains, and its checkpoint loads back
    printed = execute(blocks["from_pytorch"], ns)
    assert printed.count("epoch ") == ns["epochs"] and ns["acc"] > 0.9
    assert len(ns["losses"]) == ns["epochs"] * -(-len(ns["X_train"]) // ns["batch"])
    assert ns["ckpt"]["epoch"] == ns["epochs"] and (tmp_path / "mlp.safetensors").exists()


def test_the_scaling_script_prints_the_table_docs_scaling_shows():
    (block,) = fenced(SCALING, "python")
    printed = execute(block, {"__name__": "__main__"}).splitlines()
    text = SCALING.read_text()
    start = text.index(printed[0] + "\n")
    shown = text[start:].split("\n\n")[0].splitlines()
    assert printed == shown


def test_the_seeds_examples_are_what_the_tutorial_prints():
    for block in fenced(TUTORIAL, "console"):
        if block.startswith("$ wxb explain\n"):
            shown = block.split("\n", 1)[1].rstrip("\n")
            break
    else:
        pytest.fail("docs/tutorial.md no longer shows `$ wxb explain`")
    assert str(wxb.explain()).rstrip("\n") == shown


def documented_commands() -> list[str]:
    """Each wxb command line of the README's bash blocks and the tutorial's transcripts."""
    lines = []
    for block in fenced(README, "bash"):
        lines += block.replace("\\\n", " ").splitlines()
    for block in fenced(TUTORIAL, "console"):
        lines += [
            line[2:] for line in block.replace("\\\n", " ").splitlines() if line.startswith("$ ")
        ]
    commands = []
    for line in lines:
        for part in line.split("&&"):
            words = shlex.split(part, comments=True)
            at = [i for i, word in enumerate(words) if word == "wxb" or word.endswith("/wxb")]
            if at:
                commands.append(shlex.join(words[at[0] + 1 :]))
    return commands


def test_every_command_the_docs_show_parses():
    commands = documented_commands()
    assert len(commands) > 20, commands  # the blocks were found
    parser = build_parser()
    for command in commands:
        try:
            parser.parse_args(shlex.split(command))
        except SystemExit:
            pytest.fail(f"the docs show `wxb {command}`, which wxb refuses")


def test_every_option_the_readme_and_tutorial_name_is_one_of_wxbs():
    parser = build_parser()
    known = {
        option
        for command in parser.commands.values()
        for action in command._actions
        for option in action.option_strings
    }
    for path in (README, TUTORIAL):
        named = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", path.read_text()))
        assert named - known - NOT_WXB == set(), path.name


def test_train_help_gives_each_options_default():
    """The README: "`wxb train --help` lists every option with its default". Options
    whose absence means "none of that" (no column named, no file written) are exempt."""
    exempt = {
        "--target",
        "--features",
        "--drop",
        "--id-column",
        "--history",
        "--report",
        "--plots",
        "--checkpoint-dir",
        "--comment",
        "--na-values",  # its help lists the markers that are always missing
    }
    train = build_parser().commands["train"]
    formatter = train._get_formatter()
    for action in train._actions:
        if action.nargs == 0 or not action.option_strings:  # flags: off unless given
            continue
        name = max(action.option_strings, key=len)
        if name not in exempt:
            assert "default" in formatter._expand_help(action), name


def transcripts(path: Path) -> dict[str, list[str]]:
    """Each ``$ wxb …`` line of the console blocks, and the lines shown after it."""
    shown: dict[str, list[str]] = {}
    for block in fenced(path, "console"):
        command = None
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("$ "):
                command = " ".join(line[2:].split())
                shown[command] = []
            else:
                shown[command].append(line)
    return shown


def readme_output(command: str) -> list[str]:
    """The lines of the README's plain block that follows the bash block holding
    ``command``."""
    text = README.read_text()
    at = text.index(command)
    start = text.index("\n```\n", text.index("```\n", at)) + len("\n```\n")
    return text[start : text.index("```", start)].rstrip("\n").splitlines()


def cli_lines(capsys, *argv) -> list[str]:
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return (err + out).rstrip("\n").splitlines()


def test_the_transcripts_show_what_wxb_prints_bar_the_trained_figures(
    tmp_path, monkeypatch, capsys
):
    """What reading, splitting, the table stage, the summary and the diagrams print does
    not depend on how training went: those lines of the tutorial's and the README's
    transcripts are compared as they are, on models trained for an epoch or two."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    tutorial = transcripts(TUTORIAL)

    # digits: `wxb train`, then what describes its model
    got = cli_lines(capsys, "train", "--epochs", "1", "-q")
    shown = tutorial["wxb train"]
    assert got[:2] == shown[:2]
    assert got[2].split(";")[0] == shown[2].split(";")[0]  # the model, not its epochs
    got = cli_lines(capsys, "summary", "model.safetensors", "--no-floor")
    assert got == [
        line for line in tutorial["wxb summary model.safetensors"] if "floor" not in line
    ]
    assert (
        cli_lines(capsys, "diagram", "model.safetensors")
        == tutorial["wxb diagram model.safetensors"]
    )
    drawn = [block.rstrip("\n").splitlines() for block in fenced(TUTORIAL, "mermaid")]
    for kind, diagram in zip(("architecture", "backward", "graph"), drawn, strict=True):
        assert cli_lines(capsys, "diagram", "model.safetensors", "--kind", kind) == diagram
    # `wxb explain` on a sample: the model and X̂ (the Standardize the split fitted)
    shown = tutorial["wxb explain model.safetensors --sample 0"]
    head = shown.index("   [hidden1: Dense 64→512]")
    assert cli_lines(capsys, "explain", "model.safetensors", "--sample", "0")[:head] == shown[:head]

    # a history of another model is refused in the line shown
    command = (
        "wxb train --hidden 64,64,64,64,64,64,64 --activation sigmoid --lr 0.05 --epochs 5 "
        "--diagnose --history deep.json -o deep.safetensors"
    )
    assert command in tutorial
    cli_lines(capsys, *shlex.split(command)[1:], "--epochs", "1", "-q")
    code, out, err = run(capsys, "report", "model.safetensors", "--history", "deep.json")
    assert code == 2 and not out
    assert err.splitlines() == tutorial["wxb report model.safetensors --history deep.json"]

    # wine: the README's walk-through and the tutorial's section 8
    train = (
        "wxb train --data examples/wine.csv --comment '#' --target cultivar "
        "--id-column bottle_id --fingerprint -o wine.safetensors -q"
    )
    assert " ".join(train.split()) in " ".join(README.read_text().replace("\\\n", " ").split())
    got = cli_lines(capsys, *shlex.split(train)[1:], "--epochs", "2")
    shown = readme_output("--id-column bottle_id --fingerprint -o wine.safetensors -q")
    assert got[:3] == shown[:3]  # the rows dropped, the split, the task
    assert got[3].split(";")[0] == shown[3].split(";")[0]
    shown = tutorial["wxb summary wine.safetensors --no-floor"]
    assert cli_lines(capsys, "summary", "wine.safetensors", "--no-floor")[: len(shown)] == shown
    command = "wxb explain wine.safetensors --data examples/wine.csv --comment '#' --sample 2"
    shown = tutorial[command]
    assert cli_lines(capsys, *shlex.split(command)[1:])[: len(shown)] == shown

    command = "wxb eval wine.safetensors examples/wine.csv --comment '#'"
    shown = readme_output(command)
    got = cli_lines(capsys, *shlex.split(command)[1:])  # the warning (stderr) first
    assert set(shown[:2]) <= set(got)  # the rows dropped, and the training rows found
    assert shown[2].split(";")[0] in [line.split(";")[0] for line in got]

    command = (
        "wxb predict wine.safetensors examples/new_bottles.csv --comment '#' -o predictions.csv"
    )
    cli_lines(capsys, *shlex.split(command)[1:])
    shown = readme_output(command)
    written = Path("predictions.csv").read_text().splitlines()
    assert written[0] == shown[0] and [row.split(",")[0] for row in written] == [
        row.split(",")[0] for row in shown
    ]


def test_the_readme_names_every_test_that_not_slow_skips():
    """The README's Development list says what `-m "not slow"` skips: each file holding a
    test marked slow must have its phrase there (a new slow test was left out of it)."""
    phrases = {
        "test_cli.py": "the end-to-end training run",
        "test_bench_smoke.py": "the benchmarks' smoke runs",
        "test_checkpoint_cli.py": "the SIGKILL-and-resume run",
        "test_distributed_hunt.py": "the SIGTERM to `mpiexec`",
        "test_sklearn_trajectory_hunt.py": "epoch-by-epoch comparison with scikit-learn's MLP",
        "test_arrow_exit.py": "the processes that read a CSV and exit at once",
    }
    marked = re.compile(r"^\s*(@pytest\.mark\.slow\b|pytestmark\s*=.*\bslow\b)", re.M)
    slow = {
        path.name
        for path in (ROOT / "tests").glob("test_*.py")
        if marked.search(path.read_text(encoding="utf-8"))
    }
    assert slow == set(phrases), f"files with slow tests: {sorted(slow)}, named: {sorted(phrases)}"
    text = README.read_text()
    start = text.index('`-m "not slow"` skips')
    listed = " ".join(text[start : text.index(")", start)].split())  # (as wrapped)
    for name, phrase in phrases.items():
        assert phrase in listed, f"README's not-slow list lacks {name}'s {phrase!r}"


def test_the_commits_the_docs_name_are_in_the_history():
    """A hash the docs cite must be one a checkout can show: a helper branch's hashes
    from before the branch was rebased onto main are not (docs/performance.md cited four)."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    shallow = subprocess.run(
        [git, "rev-parse", "--is-shallow-repository"], cwd=ROOT, capture_output=True, text=True
    )
    if shallow.returncode != 0 or shallow.stdout.strip() != "false":
        pytest.skip("a shallow or unreadable history")
    # a hex word of 7 or more with a letter and a digit, alone (not a number's digits)
    pattern = re.compile(
        r"(?<![\w.\-])(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}(?![\w\-])"
    )
    paths = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]
    cited = sorted({h for path in paths for h in pattern.findall(path.read_text())})
    assert len(cited) > 10, cited  # the citations were found
    found = subprocess.run(
        [git, "cat-file", "--batch-check=%(objecttype)"],
        cwd=ROOT,
        input="".join(f"{h}^{{commit}}\n" for h in cited),
        capture_output=True,
        text=True,
    )
    missing = [
        h for h, kind in zip(cited, found.stdout.splitlines(), strict=True) if kind != "commit"
    ]
    assert not missing, f"the docs cite commits this history lacks: {missing}"
