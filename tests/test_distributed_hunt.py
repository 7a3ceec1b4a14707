"""Hunted bugs of data-parallel training (``mpiexec -n 2``), each against one process."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_distributed import MISSING, MPIEXEC, environment, wait_for

# once in CI: ranks against one process, both on the same kernels
pytestmark = [
    pytest.mark.skipif(MISSING is not None, reason=str(MISSING)),
    pytest.mark.one_route,
]

WXB = str(Path(sys.executable).with_name("wxb"))


@pytest.mark.slow
def test_sigterm_to_mpiexec_stops_wxb_train_after_the_step_with_a_checkpoint(seeded, tmp_path):
    """A batch scheduler's (or kill's) SIGTERM to `mpiexec -n 2 wxb train`: mpiexec hands
    it to the ranks, which died of it at once (exit 15, 'BAD TERMINATION'), the steps
    since the last checkpoint lost; in one process it stops after the current step with
    a checkpoint written and one line (exit 130). Now so under mpiexec too."""
    rng = seeded.rng
    rows, features = 3000, 8
    X = rng.standard_normal((rows, features))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    lines = [",".join([*(f"f{i}" for i in range(features)), "label"])]
    lines += [",".join([*(f"{v:.5g}" for v in r), str(t)]) for r, t in zip(X, y, strict=True)]
    table = tmp_path / "table.csv"
    table.write_text("\n".join(lines) + "\n")
    folder = tmp_path / "ckpt"
    command = [str(MPIEXEC), "-n", "2", WXB, "train", "--data", str(table), "--target", "label",
               "--epochs", "100000", "--patience", "0", "--hidden", "16", "-q",
               "--seed", str(int(rng.integers(0, 2**31))), "--checkpoint-dir", str(folder),
               "-o", str(tmp_path / "model.safetensors")]  # fmt: skip
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=environment())  # fmt: skip
    try:
        wait_for(lambda: folder.is_dir() and any(folder.glob("step-*.json")), 120, "a checkpoint")
        job.send_signal(signal.SIGTERM)
        stdout, stderr = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
    said = seeded.msg(stdout + stderr)
    assert job.returncode == 130, said
    written = re.search(r"checkpoint written to (\S+\.json)", stderr)
    assert written is not None and "to continue exactly" in stderr, said
    assert Path(written.group(1)).is_file(), said
    assert "BAD TERMINATION" not in stdout + stderr, said
    assert Path(written.group(1)).with_suffix(".safetensors").is_file(), said


LATE_STOP = """
import sys, numpy as np, wxb
from wxb import nn
from wxb.distributed import Ranks
from wxb.errors import TrainingInterrupted
ranks = Ranks()
class LateStop(wxb.optim.StepLR):  # steps after the ranks' stop check of each epoch
    _ends = 0
    def step(self):
        LateStop._ends += 1
        if ranks.rank == 1 and LateStop._ends == {epoch}:  # a Ctrl-C there, on rank 1 alone
            wxb.train.request_stop()
        return super().step()
rng = np.random.default_rng({seed})
X, y = rng.standard_normal((64, 4)), rng.integers(0, 3, 64)
model = nn.Sequential(nn.Dense(4, 3))
opt = wxb.optim.SGD(model.parameters(), lr=0.1)
try:
    wxb.fit(model, X, y, optimizer=opt, epochs=6, batch_size=16, seed=1, verbose=False,
            lr_schedule=LateStop(opt, step_size=100), distributed=ranks)
    where = "nowhere"
except TrainingInterrupted as stop:
    where = stop.where
sys.stdout.write(f"rank {{ranks.rank}} stopped at {{where}};")
"""


def test_a_stop_reaching_one_rank_after_the_epochs_stop_check_stops_every_rank(seeded, tmp_path):
    """A Ctrl-C or SIGTERM that reached one rank after the end of an epoch's stop check
    (while rank 0 wrote the checkpoint: often) took that rank out of the loop alone;
    the others waited for it until the timeout (30 s), then aborted the job naming a
    wait ('no answer from the other ranks'). It now goes into the next step's sum (the
    first step only sets it), and every rank stops after the step that sums it."""
    rng = seeded.rng
    epoch = int(rng.integers(1, 4))
    script = tmp_path / "late_stop.py"
    script.write_text(LATE_STOP.format(epoch=epoch, seed=int(rng.integers(0, 2**31))))
    done = subprocess.run(
        [str(MPIEXEC), "-n", "2", sys.executable, str(script)],
        capture_output=True, text=True, timeout=120, env=environment(WXB_MPI_TIMEOUT="8"),
    )  # fmt: skip
    said = seeded.msg(done.stdout + done.stderr)
    assert done.returncode == 0, said
    stops = sorted(re.findall(r"rank (\d) stopped at ([^;]+);", done.stdout))
    assert stops == [("0", f"epoch {epoch + 1}, step 2 of 4"),
                     ("1", f"epoch {epoch + 1}, step 2 of 4")], said  # fmt: skip


class Writes:
    """A stderr that records each write made to it."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_the_error_line_of_wxb_is_one_write_so_ranks_lines_do_not_glue(monkeypatch, tmp_path):
    """Under mpiexec each rank says its line (rank 0 'wxb: interrupted at …', rank 1
    'wxb: rank 1: interrupted at …'); print wrote the text and its newline apart, and
    stderr writes through, so the other rank's line landed between them: 'wxb: rank 1:
    interrupted at epoch 10, step 77 of 90wxb: interrupted at epoch 10, …'."""
    from wxb import cli

    said = Writes()
    monkeypatch.setattr(sys, "stderr", said)
    code = cli.main(["train", "--data", str(tmp_path / "absent.csv"), "--target", "y"])
    assert code == 2
    assert len(said.writes) == 1 and said.writes[0].startswith("wxb: error: "), said.writes
    assert said.writes[0].endswith("\n") and said.writes[0].count("\n") == 1, said.writes
