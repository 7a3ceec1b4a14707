"""Checking where an output goes, from two processes at once (the ranks of an mpiexec
`wxb train`, each checking -o before training): the check made the output's missing
folder and removed it, so the other saw it come and go. Under mpiexec one rank in a few
stopped with 'folder … is not writable' or '… is a file, not a folder', or never
stopped: a folder seen to exist, then gone, sent the walk up to it past the root for
ever (an mpiexec job of tests/test_distributed.py hung in CI that way)."""

import multiprocessing
import random
import time

import pytest

from wxb.data import check_can_write

# once in CI: two processes checking a path
pytestmark = pytest.mark.one_route

ROUNDS = 1500


def _check_each(folder, start, errors, seed) -> None:
    rng = random.Random(seed)
    for i in range(ROUNDS):
        start.wait()
        time.sleep(rng.uniform(0, 2e-4))  # the two checks overlap at any phase
        try:  # both processes check the same path, whose folder does not exist yet
            check_can_write(folder / f"run{i}" / "model.safetensors", "model")
        except Exception as exc:  # any failure is the defect
            errors.put(f"round {i}: {type(exc).__name__}: {exc}")


def test_two_processes_checking_one_missing_folder_at_once_both_pass(tmp_path):
    context = multiprocessing.get_context("fork")
    start, errors = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=_check_each, args=(tmp_path, start, errors, k), daemon=True)
        for k in range(2)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    hung = [w for w in workers if w.is_alive()]
    for w in hung:
        w.kill()
    assert not hung, "a check never returned"
    found = []
    while not errors.empty():
        found.append(errors.get(timeout=5))
    assert not found, f"{len(found)} of {2 * ROUNDS} checks failed: {found[:3]}"
    assert all(w.exitcode == 0 for w in workers)
    assert not list(tmp_path.iterdir()), "a check left a folder behind"
