"""Hunted bugs of data-parallel training (``mpiexec -n 2``), round 2: what the ranks were
given against what one process does, and failures that one rank alone meets."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_distributed import MISSING, MPIEXEC, environment, mpiexec

from wxb.checkpoint import CheckpointFolder

# once in CI: ranks against one process, both on the same kernels
pytestmark = [
    pytest.mark.skipif(MISSING is not None, reason=str(MISSING)),
    pytest.mark.one_route,
]


def one_process(monkeypatch, script: Path, args: list[str]) -> None:
    """The reference: ``script`` run in this process, as ``python script *args`` runs it."""
    monkeypatch.setattr(sys, "argv", [str(script), *args])
    runpy.run_path(str(script), run_name="__main__")


OTHER_SETTING = """
import sys, numpy as np, wxb
from wxb import nn
from wxb.distributed import Ranks, RanksFailed
from wxb.errors import ConfigError
ranks = Ranks()
seed, rows, batch, lrs, cases = {seed}, {rows}, {batch}, {lrs}, {cases}
rng = np.random.default_rng(seed)
X, y = rng.standard_normal((rows, 4)), rng.integers(0, 3, rows)
for which in cases:
    lr, batch_size, p = lrs[0], batch, 0.25
    if which in ("lr", "optimizer"):  # a rate drawn on each rank (a random search)
        lr = lrs[ranks.rank]
    elif which == "batch_size":  # one row more on rank 1: the same steps, another batch
        batch_size = batch + ranks.rank
    elif which == "dropout":  # a Dropout's rate drawn on each rank
        p = lrs[ranks.rank] * 10
    validation = (X[:9], y[:9]) if which == "validation_data" and ranks.rank == 0 else None
    model = nn.Sequential(nn.Dense(4, 6, seed=1), nn.ReLU(), nn.Dropout(p), nn.Dense(6, 3, seed=2))
    optimizer = wxb.optim.Adam(model.parameters(), lr=lr) if which == "optimizer" else "adam"
    try:
        history = wxb.fit(model, X, y, optimizer=optimizer, lr=None if which == "optimizer" else lr,
                          epochs=2, batch_size=batch_size, seed=seed, verbose=False,
                          distributed=ranks, validation_data=validation)
        said = f"finished, loss {{history.history['loss'][-1]!r}}"
    except (ConfigError, RanksFailed) as error:
        said = str(error)
    sys.stdout.write(f"rank {{ranks.rank}} {{which}}: {{said}}<end>")
    sys.stdout.flush()
"""


def test_ranks_given_other_settings_are_stopped_by_name(seeded, tmp_path):
    """The ranks checked their data, seeds and weights, not fit's settings. A learning
    rate drawn on each rank trained silently on one machine: the ranks share one copy
    of the weights, each updating its slice at its own rate (the end-of-epoch check of
    the weights saw the one copy); one process has one rate. A batch size one row
    larger on rank 1 (the same steps per epoch) summed shares of two other batches,
    and the ranks even reported other losses. A Dropout's rate drawn on each rank
    dropped other units than one process. Validation rows given to rank 0 alone paired
    its check of them with rank 1's check of the weights' shapes, and the job ended on
    nonsense ('validation X: row 790127956 holds a value that is not finite in another
    rank's copy'). Every rank now stops at once, naming the setting."""
    rng = seeded.rng
    batch = int(rng.integers(8, 20))
    steps = int(rng.integers(3, 6))  # and a last short batch of more rows than that:
    rows = batch * steps + int(rng.integers(steps + 1, batch))  # as many with batch + 1
    lrs = [float(rng.uniform(0.001, 0.01)), float(rng.uniform(0.02, 0.05))]
    cases = [str(c) for c in rng.permutation(["lr", "optimizer", "batch_size", "dropout"])]
    cases.append("validation_data")  # (old code: the job ended on it)
    script = tmp_path / "other_setting.py"
    script.write_text(OTHER_SETTING.format(seed=int(rng.integers(0, 2**31)), rows=rows,
                                           batch=batch, lrs=lrs, cases=cases))  # fmt: skip
    done = mpiexec([sys.executable, str(script)], timeout=900, WXB_MPI_TIMEOUT="600")
    said = done.stdout + done.stderr
    msg = seeded.msg(said)
    assert done.returncode == 0, msg
    expected = {
        "lr": f"lr ({lrs[1]!r} here, {lrs[0]!r} on rank 0)",
        "optimizer": f"optimizer.groups[0].lr ({lrs[1]!r} here, {lrs[0]!r} on rank 0)",
        "batch_size": f"batch_size ({batch + 1} here, {batch} on rank 0)",
        "dropout": f"model.dropout1.p ({lrs[1] * 10!r} here, {lrs[0] * 10!r} on rank 0)",
        "validation_data": "validation_data (false here, true on rank 0)",
    }
    for which in cases:
        for rank in (0, 1):  # rank 0 names rank 1's difference ("rank 1: …")
            line = next(iter(re.findall(rf"rank {rank} {which}: (.*?)<end>", said, re.S)), "")
            assert "fit's settings differ from rank 0's" in line, f"{msg}: rank {rank}, {which}"
            assert expected[which] in line, f"{msg}: rank {rank}, {which}"


KEPT_STATE = """
import sys, numpy as np, wxb
from wxb import nn
seed, mode, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class Logged(nn.MSELoss):  # keeps its last value: another on each rank
    def __call__(self, output, target):
        value = super().__call__(output, target)
        self.last = float(value.item())
        return value
class Net(nn.Module):  # keeps its last batch's mean: another on each rank
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Dense(4, 6, seed=1), nn.Dense(6, 2, seed=2)
    def forward(self, x):
        h = wxb.nn.functional.tanh(self.a(x))
        self.last_mean = float(h.data.mean())
        return self.b(h)
rng = np.random.default_rng(seed)
X, y = rng.standard_normal((int(rng.integers(30, 60)), 4)), rng.standard_normal((60, 2))
model, loss = Net().to("float64"), Logged()
for epochs in (1, 2):  # the second fit starts from the state the first left
    wxb.fit(model, X, y[: len(X)], loss=loss, optimizer="sgd", lr=0.05, epochs=epochs,
            batch_size=7, seed=seed, verbose=False, distributed=mode == "dist")
if mode == "one" or wxb.distributed.Ranks().rank == 0:
    np.savez(out, *[p.data for p in model.parameters()])
"""


def test_state_kept_by_ones_own_loss_or_module_does_not_stop_a_later_fit(
    seeded, tmp_path, monkeypatch
):
    """The settings compared are those that decide the run: the attributes of a loss or
    a module of one's own may be state (its last value), another on each rank after a
    fit, and a second fit goes on as one process does."""
    script = tmp_path / "kept_state.py"
    script.write_text(KEPT_STATE)
    seed = str(int(seeded.rng.integers(0, 2**31)))
    one_process(monkeypatch, script, [seed, "one", str(tmp_path / "one.npz")])
    done = subprocess.run(
        [str(MPIEXEC), "-n", "2", sys.executable, str(script), seed, "dist",
         str(tmp_path / "dist.npz")],
        capture_output=True, text=True, timeout=120, env=environment(),
    )  # fmt: skip
    assert done.returncode == 0, seeded.msg(done.stdout + done.stderr)
    with np.load(tmp_path / "one.npz") as a, np.load(tmp_path / "dist.npz") as b:
        for key in a.files:
            np.testing.assert_allclose(b[key], a[key], rtol=0, atol=1e-12, err_msg=seeded.msg(key))


LOCKED = """
import sys, time, numpy as np, wxb
from wxb import nn
from wxb.distributed import Ranks
ranks = Ranks()
rng = np.random.default_rng({seed})
X, y = rng.standard_normal((48, 3)), rng.integers(0, 2, 48)
start = time.monotonic()
try:
    wxb.fit(nn.Sequential(nn.Dense(3, 2)), X, y, epochs=1, seed=1, verbose=False,
            distributed=ranks, checkpoint_dir=sys.argv[1])
except Exception as error:
    sys.stdout.write(f"rank {{ranks.rank}} {{type(error).__name__}} after "
                     f"{{time.monotonic() - start:.1f}} s: {{error}}<end>")
    sys.stdout.flush()
    raise
print("finished")
"""


def test_a_checkpoint_folder_another_run_holds_stops_every_rank_at_once(seeded, tmp_path):
    """Only rank 0 takes the checkpoint folder's lock (and checks that it takes a file):
    a folder another run held stopped rank 0 at once, while rank 1 went on to wait for
    it, and only after the timeout (30 s) stopped the job, naming a wait ('no answer
    from the other ranks ... during setting up the run'). The ranks now agree at once,
    every one naming the folder."""
    folder = tmp_path / "ckpt"
    script = tmp_path / "locked.py"
    script.write_text(LOCKED.format(seed=int(seeded.rng.integers(0, 2**31))))
    start = time.monotonic()
    with CheckpointFolder(folder).lock():  # another run, under way
        done = subprocess.run(
            [str(MPIEXEC), "-n", "2", sys.executable, str(script), str(folder)],
            capture_output=True, text=True, timeout=900, env=environment(WXB_MPI_TIMEOUT="600"),
        )  # fmt: skip
    took = time.monotonic() - start
    said = done.stdout + done.stderr
    msg = seeded.msg(said)
    assert done.returncode != 0 and "finished" not in said, msg
    assert took < 300, f"{msg}: took {took:.1f} s (the timeout is 600 s)"
    assert "no answer from the other ranks" not in said, msg
    for rank in (0, 1):
        line = next(iter(re.findall(rf"rank {rank} (.*?)<end>", said, re.S)), "")
        assert "in use by another training run" in line, msg


NOT_SHARED = """
import os, sys, time, numpy as np, wxb
from wxb import nn
from wxb.distributed import Ranks
ranks = Ranks()
os.makedirs(f"machine{{ranks.rank}}", exist_ok=True)
os.chdir(f"machine{{ranks.rank}}")  # the same path, a folder of each machine's own
rng = np.random.default_rng({seed})
X, y = rng.standard_normal((40, 3)), rng.integers(0, 2, 40)
def run(epochs, resume):
    model = nn.Sequential(nn.Dense(3, 2, seed=1))
    wxb.fit(model, X, y, epochs=epochs, seed=1, verbose=False, distributed=ranks,
            checkpoint_dir="ckpt", resume=resume)
run(1, False)
start = time.monotonic()
try:
    run(2, True)
except Exception as error:
    sys.stdout.write(f"rank {{ranks.rank}} {{type(error).__name__}} after "
                     f"{{time.monotonic() - start:.1f}} s: {{error}}<end>")
    sys.stdout.flush()
    raise
print("finished")
"""


def test_a_checkpoint_one_rank_cannot_read_stops_every_rank_at_once(seeded, tmp_path):
    """On resume rank 0 picks the checkpoint and the others read it by its path. A
    folder not shared between machines (here: the same relative path from another
    folder on each rank) left rank 1 unable to read it: it failed alone with
    CheckpointFileError, and rank 0 waited for it until the timeout, naming a wait.
    The ranks now agree at once, and say that the folder must be shared."""
    script = tmp_path / "not_shared.py"
    script.write_text(NOT_SHARED.format(seed=int(seeded.rng.integers(0, 2**31))))
    start = time.monotonic()
    done = subprocess.run(
        [str(MPIEXEC), "-n", "2", sys.executable, str(script)], cwd=tmp_path,
        capture_output=True, text=True, timeout=900, env=environment(WXB_MPI_TIMEOUT="600"),
    )  # fmt: skip
    took = time.monotonic() - start
    said = done.stdout + done.stderr
    msg = seeded.msg(said)
    assert done.returncode != 0 and "finished" not in said, msg
    assert took < 300, f"{msg}: took {took:.1f} s (the timeout is 600 s)"
    assert "no answer from the other ranks" not in said, msg
    for rank in (0, 1):
        line = next(iter(re.findall(rf"rank {rank} (.*?)<end>", said, re.S)), "")
        assert "cannot resume from" in line and "every rank sees" in line, msg


FUNCTIONAL_BRANCH = """
import sys, numpy as np, wxb
from wxb import nn
from wxb.nn import functional as F
seed, threshold, mode, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
rng = np.random.default_rng(seed)
X, y = rng.standard_normal((int(rng.integers(30, 60)), 5)), rng.integers(0, 3, 60)
class Branch(nn.Module):  # PyTorch's style: F.dropout(x, p, training=self.training)
    def __init__(self):
        super().__init__()
        self.base, self.extra = nn.Dense(5, 8, seed=rng), nn.Dense(5, 8, seed=rng)
        self.out = nn.Dense(8, 3, seed=rng)
    def forward(self, x):
        h = self.base(x)
        rows = x.data[:, 0] > threshold
        if rows.any():  # a batch (or a rank's share) without such rows skips the branch
            extra = F.dropout(self.extra(x), 0.5, training=self.training)
            h = h + extra * rows[:, None].astype(float)
        return self.out(F.dropout(F.tanh(h), 0.3, training=self.training))
model = Branch().to("float64")
wxb.fit(model, X, y[: len(X)], optimizer="sgd", lr=0.1, epochs=3, batch_size=8, seed=seed,
        verbose=False, distributed=mode == "dist")
if mode == "one" or wxb.distributed.Ranks().rank == 0:
    np.savez(out, *[p.data for p in model.parameters()])
"""


def test_an_f_dropout_in_a_branch_some_ranks_skip_leaves_the_later_masks_alike(
    seeded, tmp_path, monkeypatch
):
    """F.dropout's masks in fit were keyed by how many the step had drawn: a rank whose
    rows skipped a branch calling F.dropout gave every later F.dropout another stream
    than one process (3.4e-2 apart after 3 epochs), as Dropout layers did before they
    went by place. They go by where they are called now."""
    rng = seeded.rng
    script = tmp_path / "branch.py"
    script.write_text(FUNCTIONAL_BRANCH)
    args = [str(int(rng.integers(0, 2**31))), str(float(rng.uniform(0.8, 1.5)))]
    one_process(monkeypatch, script, [*args, "one", str(tmp_path / "one.npz")])
    done = subprocess.run(
        [str(MPIEXEC), "-n", "2", sys.executable, str(script), *args, "dist",
         str(tmp_path / "dist.npz")],
        capture_output=True, text=True, timeout=120, env=environment(),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    with np.load(tmp_path / "one.npz") as a, np.load(tmp_path / "dist.npz") as b:
        for key in a.files:
            np.testing.assert_allclose(b[key], a[key], rtol=0, atol=1e-12, err_msg=seeded.msg(key))


STALE = """
import os, sys, numpy as np, wxb
from wxb import nn
from wxb.distributed import Ranks
ranks = Ranks()
os.makedirs(f"machine{ranks.rank}", exist_ok=True)
os.chdir(f"machine{ranks.rank}")  # the same path, a folder of each machine's own
rng = np.random.default_rng(int(sys.argv[1]))
X, y = rng.standard_normal((40, 3)), rng.integers(0, 2, 40)
model = nn.Sequential(nn.Dense(3, 2, seed=1)).to("float64")
wxb.fit(model, X, y, epochs=2, seed=1, verbose=False, distributed=ranks, checkpoint_dir="ckpt")
if ranks.rank == 0:
    np.savez(sys.argv[2], *[p.data for p in model.parameters()])
print("finished")
"""


def test_stale_checkpoints_in_another_ranks_copy_of_the_folder_do_not_stop_the_job(
    seeded, tmp_path
):
    """Rank 0 writes the checkpoints, but every rank looked for earlier ones in its own
    view of the folder: one not shared between machines, holding an older run's
    checkpoints on rank 1's machine only, stopped rank 1 alone ('already holds
    checkpoints of a run'), and rank 0 waited for it until the timeout. Rank 0's folder,
    the one written, decides now (and its refusal stops every rank at once)."""
    import wxb
    from wxb import nn

    seed = int(seeded.rng.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((40, 3)), rng.integers(0, 2, 40)
    reference = nn.Sequential(nn.Dense(3, 2, seed=1)).to("float64")
    # an older run's checkpoints, in rank 1's copy of the folder only
    wxb.fit(reference, X, y, epochs=2, seed=1, verbose=False,
            checkpoint_dir=tmp_path / "machine1" / "ckpt")  # fmt: skip
    script = tmp_path / "stale.py"
    script.write_text(STALE)
    start = time.monotonic()
    done = subprocess.run(
        [str(MPIEXEC), "-n", "2", sys.executable, str(script), str(seed),
         str(tmp_path / "dist.npz")], cwd=tmp_path,
        capture_output=True, text=True, timeout=900, env=environment(WXB_MPI_TIMEOUT="600"),
    )  # fmt: skip
    took = time.monotonic() - start
    msg = seeded.msg(done.stdout + done.stderr)
    assert done.returncode == 0, msg
    assert took < 300, f"{msg}: took {took:.1f} s (the timeout is 600 s)"
    with np.load(tmp_path / "dist.npz") as got:  # the same run as the one process's
        for key, p in zip(got.files, reference.parameters(), strict=True):
            np.testing.assert_allclose(got[key], p.data, rtol=0, atol=1e-12, err_msg=msg)
