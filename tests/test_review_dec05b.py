"""Review of the changes of 5 December: errors said once under mpiexec (Ranks.together),
explain's Markdown, explain/report without the target column, a Ctrl-C while reading.

Each test is a case where the change was wrong or left a gap; the reference is the same
command in one process, or what the data says.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from test_distributed import MISSING, environment, mpiexec
from test_distributed_one_line import WXB, one_process, write_table
from test_explain_markdown_names import ESCAPED, MARK, text_lines

_HAS_MPI = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))


def mpi_job(test):
    """A test of the lines and exit status of an mpiexec job (an error said once, as one
    process says it). How the ranks say an error is not the kernels' to decide (the one
    met in training, a NaN loss from --lr 1e308, is met on either route), so once in
    CI (one_route), as test_distributed_one_line's."""
    return pytest.mark.one_route(_HAS_MPI(test))


# The same command on every rank, but '@RANK@' in an argument is the rank's number: a
# file one rank reads and another cannot (as on machines that do not share a disk)
PER_RANK = textwrap.dedent(
    """
    import os, sys
    from wxb.cli import main

    rank = os.environ.get("PMI_RANK") or os.environ.get("OMPI_COMM_WORLD_RANK") or "0"
    sys.exit(main([a.replace("@RANK@", rank) for a in sys.argv[1:]]))
    """
)


def said_once_as_one_process(seeded, args: list[str], what: str = "", last=False, **env):
    """``wxb ARGS`` under mpiexec -n 2 fails (2) with the lines one process says for it
    (``last``: its last line, after lines of its own such as warnings)."""
    alone = one_process(args)
    done = mpiexec([WXB, *args], timeout=120, **env)
    said = seeded.msg(f"{what}: {done.stdout}\n{done.stderr}")
    assert alone.returncode == 2, seeded.msg(alone.stderr)
    assert done.returncode == 2, said
    expected = alone.stderr.splitlines()
    assert done.stderr.splitlines() == (expected[-1:] if last else expected), said
    return said


def a_word(rng: np.random.Generator) -> str:
    return "".join(rng.choice(list("abcdefgh"), 6))


@mpi_job
def test_a_path_with_undecodable_bytes_is_said_once_as_one_process(seeded, tmp_path):
    """A file name that is not UTF-8 (held as surrogates by Python) in the error text:
    Ranks.together could not encode it to share it, and every rank ended in a traceback
    (UnicodeEncodeError, exit 1) where one process says one line."""
    name = os.fsdecode(a_word(seeded.rng).encode() + bytes([int(seeded.rng.integers(0x80, 0x100))]))
    missing = str(tmp_path / f"{name}.csv")
    args = ["train", "--data", missing, "--target", "label", "-o", str(tmp_path / "m.safetensors")]
    said_once_as_one_process(seeded, args)


@mpi_job
def test_an_optimizer_refusal_is_said_once_as_one_process(seeded, tmp_path):
    """make_optimizer ran after the ranks agreed, so its refusals were said by each rank
    ('wxb: error: --momentum is an option of sgd…' and 'wxb: rank 1: error: …')."""
    table = tmp_path / "good.csv"
    write_table(table, seeded.rng, int(seeded.rng.integers(30, 60)))
    refused = [
        ["--momentum", f"{seeded.rng.uniform(0.1, 0.9):.3f}"],  # adam has none
        ["--optimizer", "sgd", "--momentum", f"{seeded.rng.uniform(2, 9):.3f}"],  # > 1
    ][int(seeded.rng.integers(2))]
    args = ["train", "--data", str(table), "--target", "label", "--epochs", "1",
            "--hidden", "4", "-q", "-o", str(tmp_path / "m.safetensors"), *refused]  # fmt: skip
    said = said_once_as_one_process(seeded, args, str(refused))
    assert not (tmp_path / "m.safetensors").exists(), said


@mpi_job
def test_a_start_failed_on_another_rank_leaves_no_options_to_resume_against(seeded, tmp_path):
    """Rank 0 recorded the run's options in --checkpoint-dir while rank 1 failed to read
    its data: the job stopped, and the options stayed. A later run with other options
    kept them (they are written once), so its own --resume was refused ('--lr was …')."""
    write_table(tmp_path / "good0.csv", seeded.rng, int(seeded.rng.integers(40, 80)))
    folder = tmp_path / "checkpoints"
    script = tmp_path / "per_rank.py"
    script.write_text(PER_RANK)
    first = f"{seeded.rng.uniform(1e-3, 1e-1):.4g}"
    common = ["train", "--target", "label", "--hidden", "4", "-q",
              "-o", str(tmp_path / "m.safetensors"), "--checkpoint-dir", str(folder)]  # fmt: skip
    done = mpiexec([sys.executable, str(script), *common, "--data",
                    str(tmp_path / "good@RANK@.csv"), "--epochs", "1", "--lr", first],
                   timeout=120)  # fmt: skip
    said = seeded.msg(f"{done.stdout}\n{done.stderr}")
    assert done.returncode == 2, said
    assert done.stderr.splitlines() == [f"wxb: error: rank 1: {tmp_path}/good1.csv: no such file"]
    assert not (folder / "train-options.json").exists(), said


@mpi_job
def test_a_checkpoint_folder_in_use_is_said_once_without_a_wait(seeded, tmp_path):
    """Rank 0 alone locks --checkpoint-dir, in fit: a folder in use by another run was
    refused on rank 0 while rank 1 went on, waited WXB_MPI_TIMEOUT for it, and aborted
    the job with a second line ('no answer from the other ranks … setting up the run')."""
    import fcntl

    table = tmp_path / "good.csv"
    write_table(table, seeded.rng, int(seeded.rng.integers(30, 60)))
    folder = tmp_path / f"in-use-{a_word(seeded.rng)}"
    folder.mkdir()
    model = str(tmp_path / "m.safetensors")
    args = ["train", "--data", str(table), "--target", "label", "--epochs", "1", "--hidden", "4",
            "-q", "-o", model, "--checkpoint-dir", str(folder)]  # fmt: skip
    held = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)  # as another training run holds it
        done = mpiexec([WXB, *args], timeout=120, WXB_MPI_TIMEOUT="10")
        alone = one_process(args)
    finally:
        os.close(held)
    said = seeded.msg(f"{done.stdout}\n{done.stderr}")
    assert alone.returncode == 2, seeded.msg(alone.stderr)
    assert "in use by another training run" in alone.stderr, seeded.msg(alone.stderr)
    assert done.returncode == 2, said
    assert done.stderr.splitlines() == alone.stderr.splitlines(), said
    assert not (tmp_path / "m.safetensors").exists(), said


@mpi_job
def test_an_error_every_rank_reaches_in_fit_is_said_once_as_one_process(seeded, tmp_path):
    """A resume refused (the data differ from the checkpoint's) and a loss that became
    NaN are reached by every rank together; each rank said it ('wxb: error: …' and
    'wxb: rank 1: error: …'). A checkpoint of a newer wxb is refused by rank 0, which
    alone reads the folder: rank 1 waited WXB_MPI_TIMEOUT and aborted with more lines."""
    rng = seeded.rng
    table, other = tmp_path / "good.csv", tmp_path / "other.csv"
    write_table(table, rng, int(rng.integers(30, 60)))
    write_table(other, rng, int(rng.integers(30, 60)))
    common = ["train", "--target", "label", "--hidden", "4", "-q",
              "-o", str(tmp_path / "m.safetensors")]  # fmt: skip
    case = str(rng.choice(["resume", "newer", "nan"]))
    if case in ("resume", "newer"):
        folder = ["--checkpoint-dir", str(tmp_path / "checkpoints")]
        first = one_process([*common, "--data", str(table), "--epochs", "1", *folder])
        assert first.returncode == 0, seeded.msg(first.stderr)
        args = [*common, "--data", str(other), "--epochs", "2", "--resume", *folder]
        if case == "newer":  # rank 0 alone reads the folder: it refused, rank 1 waited
            args[args.index(str(other))] = str(table)
            (last,) = sorted((tmp_path / "checkpoints").glob("step-*.json"))[-1:]
            meta = json.loads(last.read_text())
            meta["format_version"] = int(rng.integers(2, 100))  # a newer wxb's
            last.write_text(json.dumps(meta))
    else:
        args = [*common, "--data", str(table), "--epochs", "1", "--lr", "1e308"]
    said_once_as_one_process(seeded, args, case, last=True, WXB_MPI_TIMEOUT="10")


BROKEN_PANDAS = textwrap.dedent(
    """
    import json, sys

    class BrokenPandas:  # pandas built for another NumPy: its import fails, not ImportError
        def find_spec(self, name, path=None, target=None):
            if name == "pandas":
                raise ValueError("numpy.dtype size changed, may indicate binary incompatibility")

    sys.meta_path.insert(0, BrokenPandas())
    from wxb.tables import read_table

    table = read_table(sys.argv[1])
    print(json.dumps({name: table[name].values.tolist() for name in table.names}))
    """
)


def test_a_pandas_that_fails_to_import_does_not_stop_a_table_read(seeded, tmp_path):
    """The probe that makes pyarrow import pandas early (so a Ctrl-C there is not lost)
    let any other error of that import through: with a pandas that fails to import
    (ValueError: built for another NumPy), every table read ended in that traceback,
    where pyarrow, and wxb, read on without pandas (not a dependency of wxb)."""
    import json

    table = tmp_path / "table.csv"
    rows = int(seeded.rng.integers(3, 30))
    X = seeded.rng.standard_normal((rows, 3)).round(4)
    body = "\n".join(",".join(f"{v:.4f}" for v in row) for row in X)
    table.write_text("a,b,c\n" + body + "\n")
    script = tmp_path / "read.py"
    script.write_text(BROKEN_PANDAS)
    done = subprocess.run([sys.executable, str(script), str(table)], capture_output=True,
                          text=True, timeout=120, env=environment())  # fmt: skip
    said = seeded.msg(done.stdout + done.stderr)
    assert done.returncode == 0, said
    read = json.loads(done.stdout)
    assert list(read) == ["a", "b", "c"], said
    assert np.array_equal(np.array([read[k] for k in "abc"]).T, X), said


# CommonMark: '&' + a name or number + ';' not preceded by a backslash is a character
# reference, shown as the character it names ('&lt;' is '<'); '\&' is a plain '&'
ENTITY = re.compile(r"(?<!\\)&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]*);")


def test_names_with_character_references_read_back_in_explain_markdown(rng):
    """explain's Markdown escaped Markdown's characters in the data's names but not '&':
    a class '&lt;b&gt;' was shown as '<b>', '&amp;x' as '&x' (the text rendering,
    read back, is the reference)."""
    from wxb import nn
    from wxb.explanation import explain_model

    def a_name() -> str:
        word = "".join(rng.choice(list("abcdefgh"), int(rng.integers(1, 4))))
        ref = str(rng.choice(["lt", "gt", "amp", "copy", "#65", "#x42", "quot"]))
        parts = [word, f"&{ref};"]
        return "".join(parts[i] for i in rng.permutation(2))

    n_in, hidden = int(rng.integers(2, 5)), int(rng.integers(2, 6))
    model = nn.Sequential()
    layer_name = a_name()
    model.add_module(layer_name, nn.Dense(n_in, hidden, seed=int(rng.integers(1 << 30))))
    model.add_module("act", nn.ReLU())
    model.add_module("out", nn.Dense(hidden, 2, seed=int(rng.integers(1 << 30))))
    classes = [a_name(), a_name() + "0"]
    model.info["classes"] = classes
    X = rng.standard_normal((2, n_in)).astype(np.float32)
    shown = explain_model(model, X, rng.permutation(2), sample_rows=2)
    text, md = shown.text(), shown.markdown()
    for name in [layer_name, *classes]:
        assert name in text, (name, text)
    for line in text_lines(md):
        assert not ENTITY.search(line), (line, md)
        body = re.sub(MARK, "", line).rstrip()
        plain = ESCAPED.sub(r"\1", body)
        if plain:
            assert plain in text, (plain, text)


# A --checkpoint-dir that takes no file (a read-only disk, as a user resumes from a copy
# there): simulated, since root writes anywhere, by a TemporaryFile refused in it
READ_ONLY_FOLDER = textwrap.dedent(
    """
    import os, sys, tempfile
    from pathlib import Path

    folder = Path(sys.argv[1])
    made = tempfile.TemporaryFile

    def refused(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == folder:
            raise PermissionError(13, "Read-only file system")
        return made(*args, dir=dir, **kwargs)

    tempfile.TemporaryFile = refused
    from wxb.cli import main

    sys.exit(main(sys.argv[2:]))
    """
)


@mpi_job
def test_a_checkpoint_folder_that_takes_no_file_is_said_once(seeded, tmp_path):
    """Rank 0 alone checks that --checkpoint-dir takes a file, in fit: refused there,
    while rank 1 went on, waited WXB_MPI_TIMEOUT and aborted the job with a second line."""
    table = tmp_path / "good.csv"
    write_table(table, seeded.rng, int(seeded.rng.integers(30, 60)))
    folder = tmp_path / f"read-only-{a_word(seeded.rng)}"
    script = tmp_path / "read_only.py"
    script.write_text(READ_ONLY_FOLDER)
    args = [str(folder), "train", "--data", str(table), "--target", "label", "--epochs", "1",
            "--hidden", "4", "-q", "-o", str(tmp_path / "m.safetensors"),
            "--checkpoint-dir", str(folder)]  # fmt: skip
    done = mpiexec([sys.executable, str(script), *args], timeout=120, WXB_MPI_TIMEOUT="10")
    alone = subprocess.run([sys.executable, str(script), *args], capture_output=True,
                           text=True, timeout=120, env=environment())  # fmt: skip
    said = seeded.msg(f"{done.stdout}\n{done.stderr}")
    assert alone.returncode == 2, seeded.msg(alone.stderr)
    assert "cannot write checkpoints there" in alone.stderr, seeded.msg(alone.stderr)
    assert done.returncode == 2, said
    assert done.stderr.splitlines() == alone.stderr.splitlines(), said


# One rank short of memory while it reads the data (ranks on one machine, each reading
# it whole): simulated by a MemoryError from rank 1's read
SHORT_OF_MEMORY = textwrap.dedent(
    """
    import os, sys
    import wxb.cli

    if (os.environ.get("PMI_RANK") or os.environ.get("OMPI_COMM_WORLD_RANK")) == "1":
        def read_table(*args, **kwargs):
            raise MemoryError

        wxb.cli.read_table = read_table
    sys.exit(wxb.cli.main(sys.argv[1:]))
    """
)


@mpi_job
def test_one_rank_out_of_memory_at_the_start_is_said_once(seeded, tmp_path):
    """Ranks.together let a MemoryError through: rank 1 said 'out of memory' and ended,
    while rank 0 waited WXB_MPI_TIMEOUT for it in the agreement and said a second line
    ('no answer from the other ranks')."""
    table = tmp_path / "good.csv"
    write_table(table, seeded.rng, int(seeded.rng.integers(30, 60)))
    script = tmp_path / "short.py"
    script.write_text(SHORT_OF_MEMORY)
    model = str(tmp_path / "m.safetensors")
    done = mpiexec([sys.executable, str(script), "train", "--data", str(table), "--target",
                    "label", "--epochs", "1", "--hidden", "4", "-q", "-o", model],
                   timeout=120, WXB_MPI_TIMEOUT="10")  # fmt: skip
    said = seeded.msg(f"{done.stdout}\n{done.stderr}")
    assert done.returncode == 2, said
    assert done.stderr.splitlines() == [
        "wxb: error: rank 1: out of memory (are the layer sizes or the data too large?)"
    ], said


# CommonMark blocks a line can begin (after up to 3 spaces): an ATX heading, a list item,
# a setext underline, a block quote
BLOCK_START = re.compile(r"^ {0,3}(#{1,6}(\s|$)|[-+*](\s|$)|\d{1,9}[.)](\s|$)|=+\s*$|>)")


def test_a_layer_name_at_the_start_of_a_line_stays_text_in_explain_markdown(rng):
    """A line of explain's Markdown that begins with a layer's name (the note on a norm
    that normalises by the batch itself) became a heading for a layer '# bn', a list
    item for '- bn' or '1) bn'. The text rendering, read back, is the reference."""
    from wxb import nn
    from wxb.explanation import explain_model

    word = "".join(rng.choice(list("abcdefgh"), int(rng.integers(1, 5))))
    marker = str(rng.choice(["#", "##", "-", "+", f"{int(rng.integers(1, 99))})"]))
    name = f"{marker} {word}"
    n_in, hidden = int(rng.integers(2, 5)), int(rng.integers(2, 6))
    model = nn.Sequential()
    model.add_module("dense", nn.Dense(n_in, hidden, seed=int(rng.integers(1 << 30))))
    model.add_module(name, nn.BatchNorm1d(hidden, track_running_stats=False))
    model.add_module("out", nn.Dense(hidden, 2, seed=int(rng.integers(1 << 30))))
    X = rng.standard_normal((2, n_in)).astype(np.float32)
    shown = explain_model(model, X, rng.permutation(2), sample_rows=2)
    text, md = shown.text(), shown.markdown()
    assert f"{name} normalises" in text, text
    for line in text_lines(md):
        if line.endswith("  "):  # a line of a section's intro: text from its start
            body = line.rstrip()
        else:  # a heading or a note's item: its text after the mark
            body = re.sub(r"^(## \d+\. |#+ |- |\*\*Cross-check\*\* with )", "", line).rstrip()
        if line.endswith("  ") or not line.startswith("#"):  # (a heading's text is inline)
            assert not BLOCK_START.match(body), (line, md)
        plain = ESCAPED.sub(r"\1", body)
        if plain:
            assert plain in text, (plain, text)
