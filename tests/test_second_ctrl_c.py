"""A second Ctrl-C while `wxb train` says why the first stopped it (its checkpoint already
written): the command ends with status 130 and one line, as after one Ctrl-C. The
KeyboardInterrupt had escaped main's handler of the first stop, so its traceback went
out and the status was 1 (tests/test_checkpoint_cli.py met it once in CI, the second
SIGINT 16 ms after the first)."""

import subprocess
import sys
import textwrap

import pytest

# once in CI: a process's exit, before any kernel runs
pytestmark = pytest.mark.one_route

# main, as the second Ctrl-C finds it: inside its handler of the first stop, before its
# line (said_first False) or after it (True)
SCRIPT = textwrap.dedent(
    """
    import sys
    from wxb import cli

    def interrupted_in_its_handler(argv=None):
        cli._stop_said[0] = False
        if {said_first}:
            print("wxb: interrupted at epoch 1, step 2 of 18; checkpoint written", file=sys.stderr)
            cli._stop_said[0] = True
        raise KeyboardInterrupt

    cli.main = interrupted_in_its_handler
    cli.entry()
    """
)


@pytest.mark.parametrize("said_first", [False, True], ids=["before its line", "after it"])
def test_a_second_ctrl_c_in_the_first_ones_stop_ends_with_one_line(said_first):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(said_first=said_first)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 130, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    expected = "wxb: interrupted at epoch 1" if said_first else "wxb: interrupted"
    assert lines[0].startswith(expected) and "Traceback" not in done.stderr, done.stderr
