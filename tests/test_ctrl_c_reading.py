"""A Ctrl-C while wxb reads a table stops the read (and `wxb train`), as anywhere else.

pyarrow imports pandas at its first conversion to NumPy inside a call that drops any
exception: a Ctrl-C that came during that import was lost, and `wxb train` went on to
train as if nothing had been pressed. The Ctrl-C is simulated deterministically: an
import hook raises KeyboardInterrupt when pandas is imported, as the signal does when it
arrives then.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from test_distributed import MISSING, environment, mpiexec

# once in CI: a Ctrl-C while a table is read, before any kernel runs
pytestmark = pytest.mark.one_route
HOOK = textwrap.dedent(
    """
    import sys

    class CtrlCAtPandas:
        fired = 0

        def find_spec(self, name, path=None, target=None):
            if name == "pandas":
                CtrlCAtPandas.fired += 1
                raise KeyboardInterrupt
            return None

    sys.meta_path.insert(0, CtrlCAtPandas())
    """
)

READ = HOOK + textwrap.dedent(
    """
    from wxb.tables import read_table

    try:
        read_table(sys.argv[1])
        print("read on, the Ctrl-C lost", CtrlCAtPandas.fired)
    except KeyboardInterrupt:
        print("interrupted", CtrlCAtPandas.fired)
    """
)

TRAIN = HOOK + textwrap.dedent(
    """
    from wxb.cli import main

    code = main(sys.argv[1:])
    sys.stdout.write(f"fired {CtrlCAtPandas.fired}\\n")
    sys.exit(code)
    """
)


def write_table(path: Path, rng: np.random.Generator) -> None:
    rows = int(rng.choice([20, int(rng.integers(40_000, 60_000))]))  # one block, or several
    X = rng.standard_normal((rows, 3)).round(4)
    y = (X[:, 0] > 0).astype(int)
    body = "\n".join(f"{a},{b},{c},{t}" for (a, b, c), t in zip(X, y, strict=True))
    path.write_text("a,b,c,label\n" + body + "\n")


def run(script: str, *args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment(),
    )


def test_a_ctrl_c_during_a_read_reaches_the_caller(seeded, tmp_path):
    table = tmp_path / "table.csv"
    write_table(table, seeded.rng)
    done = run(READ, table)
    said = seeded.msg(done.stdout + done.stderr)
    assert done.stdout.split() == ["interrupted", "1"], said


def test_wxb_train_stops_at_a_ctrl_c_during_its_read(seeded, tmp_path):
    table = tmp_path / "table.csv"
    write_table(table, seeded.rng)
    model = tmp_path / "model.safetensors"
    done = run(TRAIN, "train", "--data", table, "--target", "label", "--epochs", 1,
               "--hidden", 4, "-q", "-o", model)  # fmt: skip
    said = seeded.msg(done.stdout + done.stderr)
    assert done.returncode == 130, said
    assert done.stderr == "wxb: interrupted\n", said
    assert done.stdout.splitlines()[-1] == "fired 1", said
    assert not model.exists(), said


@pytest.mark.skipif(MISSING is not None, reason=str(MISSING))
def test_under_mpiexec_a_ctrl_c_is_said_once(seeded, tmp_path):
    """mpiexec hands a Ctrl-C to every rank; each said 'interrupted' in its own line."""
    table = tmp_path / "table.csv"
    write_table(table, seeded.rng)
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    done = mpiexec([sys.executable, str(script), "train", "--data", str(table), "--target",
                    "label", "--epochs", "1", "--hidden", "4", "-q", "-o",
                    str(tmp_path / "model.safetensors")], timeout=120)  # fmt: skip
    said = seeded.msg(done.stdout + done.stderr)
    assert done.returncode == 130, said
    assert done.stderr.splitlines() == ["wxb: interrupted"], said
