"""Hunted bugs of data-parallel training (``mpiexec -n 2``), each against one process."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from test_distributed import MISSING, MPIEXEC, environment

pytestmark = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))

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
