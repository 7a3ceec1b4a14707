"""A process that read a CSV exits cleanly: pyarrow's threaded reader lets go of the
Python objects it was handed (wxb's bad-row handler, a stream) on one of its own threads
after the read returns, which takes the GIL. A thread asking for it while the interpreter
finalises is stopped inside C++ that cannot unwind, and the process aborted ('terminate
called without an active exception', exit 134) after its work was done: about once in
200 quick `wxb train` runs under load. Exit now waits until pyarrow has let go."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from wxb import tables


def _write_csv(path, rng: np.random.Generator, bad_row: bool) -> None:
    rows = int(rng.integers(5, 200))
    lines = ["a,b,c,target"]
    for _ in range(rows):
        a, b, c = rng.normal(size=3)
        lines.append(f"{a:.5f},{b:.5f},{c:.5f},{int(rng.integers(0, 3))}")
    if bad_row:  # a row the handler reports (pyarrow calls it from its threads)
        lines.insert(int(rng.integers(1, len(lines))), "1.0,2.0")
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("bad_row", [False, True])
def test_pyarrow_lets_go_of_what_a_read_handed_it(tmp_path, bad_row):
    """Every object a read handed pyarrow is let go of once the read is done, so the
    wait at exit ends at once (one kept alive would hold every exit for seconds)."""
    seed = np.random.SeedSequence().entropy
    path = tmp_path / "t.csv"
    _write_csv(path, np.random.default_rng(seed), bad_row)
    try:
        tables.read_table(path)
    except Exception:  # a bad row is refused by line; what it handed pyarrow still goes
        assert bad_row, seed
    assert tables._ARROW_HOLDS, "the read noted nothing it handed pyarrow"
    tables._wait_for_arrow()
    assert all(held.is_set() for held in tables._ARROW_HOLDS), seed


@pytest.mark.slow
@pytest.mark.one_route  # once in CI: processes that read and exit, before any kernel runs
def test_processes_that_read_a_csv_and_exit_at_once_exit_cleanly(tmp_path):
    """Short processes (read, then exit at once, as an error after reading does), four
    at a time: none aborts. (Before the wait, 2 in ~630 wxb train runs so did here: this
    cannot catch the race every time, the test above checks the wait's premise.)"""
    seed = np.random.SeedSequence().entropy
    path = tmp_path / "t.csv"
    _write_csv(path, np.random.default_rng(seed), bad_row=False)
    script = textwrap.dedent(
        f"""
        from wxb import tables
        tables.read_table({str(path)!r})
        raise SystemExit(2)
        """
    )
    runs = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(4)]
    codes = []
    for _ in range(40):
        done = runs.pop(0)
        codes.append(done.wait(timeout=120))
        runs.append(subprocess.Popen([sys.executable, "-c", script]))
    codes += [run.wait(timeout=120) for run in runs]
    assert set(codes) == {2}, (seed, sorted(set(codes)))
