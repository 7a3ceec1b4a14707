"""Under ``mpiexec -n 2`` a command's error is one line, as in one process.

Every rank runs the same command on the same data, so every rank met the same error
and printed it: two lines ('wxb: error: …' and 'wxb: rank 1: error: …') where the
CLI promises one. The reference is the same command run in one process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from test_distributed import MISSING, environment, mpiexec

# once in CI: the lines an mpiexec job prints
pytestmark = [
    pytest.mark.skipif(MISSING is not None, reason=str(MISSING)),
    pytest.mark.one_route,
]

WXB = str(Path(sys.executable).with_name("wxb"))


def one_process(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [WXB, *args], capture_output=True, text=True, timeout=300, env=environment()
    )


def write_table(path: Path, rng: np.random.Generator, rows: int) -> None:
    X = rng.standard_normal((rows, 3))
    lines = ["a,b,c,label", *(f"{a:.4f},{b:.4f},{c:.4f},{int(a > 0)}" for a, b, c in X)]
    path.write_text("\n".join(lines) + "\n")


def failing_commands(folder: Path, rng: np.random.Generator) -> list[list[str]]:
    good = folder / "good.csv"
    write_table(good, rng, int(rng.integers(60, 120)))
    few = folder / "few.csv"
    write_table(few, rng, 2)
    out = ["-o", str(folder / "model.safetensors"), "--epochs", "1", "--hidden", "4"]
    return [
        ["train", "--data", str(folder / "missing.csv"), "--target", "label", *out],
        ["train", "--data", str(few), "--target", "label", *out],
        ["train", "--data", str(good), "--target", "nothing", *out],
        ["train", "--data", str(good), "--target", "label", "--norm", "batch", *out],
        ["train", "--data", str(good), "--target", "label", "--no-such-option", *out],
        ["summary", str(folder / "model.safetensors")],
    ]


def test_a_failing_command_under_mpiexec_says_one_line_as_one_process(seeded, tmp_path):
    commands = failing_commands(tmp_path, seeded.rng)
    order = seeded.rng.permutation(len(commands))
    for index in order[:2]:  # two of them a run: each job starts two Pythons
        args = commands[index]
        done = mpiexec([WXB, *args], timeout=120)
        said = seeded.msg(f"{args}:\n{done.stdout}\n{done.stderr}")
        assert done.returncode == 2, said
        lines = done.stderr.splitlines()
        assert len(lines) == 1, said
        if args[0] == "summary":  # refused under mpiexec before it runs
            assert "under mpiexec only wxb train runs" in lines[0], said
            continue
        if "--norm" in args:  # trains in one process (no reference run); refused across ranks
            assert lines[0].startswith("wxb: error: BatchNorm1d"), said
            assert "distributed fit does not train it" in lines[0], said
            assert not (tmp_path / "model.safetensors").exists(), said
            continue
        assert not (tmp_path / "model.safetensors").exists(), said
        alone = one_process(args)
        assert alone.returncode == 2, seeded.msg(alone.stderr)
        assert lines == alone.stderr.splitlines()[-1:], said


RANKS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from wxb.distributed import Ranks, RanksFailed
    from wxb.errors import DataError

    plans, folder = json.loads(sys.argv[1]), sys.argv[2]
    ranks = Ranks(timeout=60)
    results = []
    for plan in plans:
        try:
            with ranks.together("the start"):
                if plan[ranks.rank]:
                    raise DataError(plan[ranks.rank])
            results.append({"raised": None})
        except (DataError, RanksFailed) as error:
            results.append({"raised": type(error).__name__, "text": str(error),
                            "quiet": getattr(error, "quiet", False)})
    with open(f"{folder}/rank{ranks.rank}.json", "w") as out:
        json.dump(results, out)
    """
)


def test_ranks_agree_on_a_failed_start(seeded, tmp_path):
    """Ranks.together: every rank raises when any failed (none goes on to train and
    wait), rank 0 alone is loud, and each distinct failure is named once."""
    word = "".join(seeded.rng.choice(list("abcdefgh"), 8))
    plans = {
        "none": ["", ""],
        "rank 1 only": ["", f"rank one: {word}"],
        "both alike": [f"same: {word}", f"same: {word}"],
        "both differ": [f"zero: {word}", f"one: {word}"],
    }
    order = [str(c) for c in seeded.rng.permutation(list(plans))]
    script = tmp_path / "ranks.py"
    script.write_text(RANKS_SCRIPT)
    done = mpiexec(
        [sys.executable, str(script), json.dumps([plans[c] for c in order]), str(tmp_path)],
        timeout=120,
    )
    said = seeded.msg(done.stdout + done.stderr)
    assert done.returncode == 0, said
    zeros = json.loads((tmp_path / "rank0.json").read_text())
    ones = json.loads((tmp_path / "rank1.json").read_text())
    for case, zero, one in zip(order, zeros, ones, strict=True):
        plan, said = plans[case], seeded.msg(f"{case}: {zero}, {one}")
        if case == "none":
            assert zero["raised"] is None and one["raised"] is None, said
            continue
        assert zero["quiet"] is False and one["quiet"] is True, said
        if case == "rank 1 only":
            assert zero["raised"] == "RanksFailed", said
            assert zero["text"] == f"rank 1: {plan[1]}", said
            assert one["text"] == plan[1], said
        elif case == "both alike":  # as one process raises it: its type and words
            assert zero["raised"] == "DataError" and zero["text"] == plan[0], said
            assert one["raised"] == "RanksFailed" and one["text"] == plan[1], said
        else:  # each distinct failure once, the rank's own first
            assert zero["text"] == f"{plan[0]}; rank 1: {plan[1]}", said
            assert one["text"] == f"{plan[1]}; rank 0: {plan[0]}", said


NO_MPI4PY = textwrap.dedent(
    """
    import sys

    class NoMPI4Py:  # as an install without the mpi extra
        def find_spec(self, name, path=None, target=None):
            if name == "mpi4py":
                raise ImportError("No module named 'mpi4py'")

    sys.meta_path.insert(0, NoMPI4Py())
    from wxb.cli import main

    sys.exit(main(sys.argv[1:]))
    """
)


def test_wxb_train_under_mpiexec_without_mpi4py_says_so_once(seeded, tmp_path):
    table = tmp_path / "good.csv"
    write_table(table, seeded.rng, int(seeded.rng.integers(30, 60)))
    script = tmp_path / "no_mpi4py.py"
    script.write_text(NO_MPI4PY)
    done = mpiexec([sys.executable, str(script), "train", "--data", str(table), "--target",
                    "label", "-o", str(tmp_path / "model.safetensors")], timeout=120)  # fmt: skip
    said = seeded.msg(done.stdout + done.stderr)
    assert done.returncode == 2, said
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "pip install mpi4py mpich" in lines[0], said
