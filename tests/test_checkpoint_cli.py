"""wxb train's checkpoints from the command line: --checkpoint-dir, --resume, Ctrl-C, kill -9.

Each run is compared with an uninterrupted run of the same options: a resumed model
must hold the same bits (its tensors and its metadata, test figures included). Data,
seeds and sizes are drawn afresh each run (``WXB_TEST_SEED`` replays one). Timing only
chooses when a signal is sent; what a test asserts never depends on when it landed.
"""

import csv
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file

import wxb
from wxb import checkpoint
from wxb.cli import main

WXB = [sys.executable, "-m", "wxb.cli"]
OPTIONS = "train-options.json"

# once in CI: signals and kills of wxb train; resume on both routes is tests/test_checkpoint.py's
pytestmark = pytest.mark.one_route
_STEP = re.compile(r"^step-(\d{9,})\.(json|safetensors)$")
# What may lie in a checkpoint folder after a kill: checkpoints, the options, and the
# temporaries of atomic writes cut short (the next checkpoint write removes the .step ones).
_ALLOWED = re.compile(
    r"^(step-\d{9,}\.(json|safetensors)|train-options\.json"
    r"|\.(step-\d{9,}\.(json|safetensors)|train-options\.json)\..+\.tmp)$"
)
_WHERE = (
    r"(?:epoch (?P<epoch>\d+), step (?P<step>\d+) of (?P<steps>\d+)|the end of epoch (?P<end>\d+))"
)


# ---------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------
def write_data(path: Path, rng: np.random.Generator, n=None, features=None) -> Path:
    """200-400 rows, 6-10 features (unless given), 3 classes that overlap a little; CSV
    (named classes, column 'label') or NPZ (X, y) by the suffix of ``path``."""
    n = int(rng.integers(200, 401)) if n is None else n
    features = int(rng.integers(6, 11)) if features is None else features
    centres = rng.normal(scale=1.5, size=(3, features))
    y = rng.integers(0, 3, size=n)
    X = centres[y] + rng.normal(size=(n, features))
    if path.suffix == ".npz":
        np.savez(path, X=X, y=y)
        return path
    names = np.array(["ash", "birch", "cedar"])
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*(f"f{i}" for i in range(features)), "label"])
        writer.writerows([*map(repr, map(float, x)), names[k]] for x, k in zip(X, y, strict=True))
    return path


def data_args(path: Path) -> list[str]:
    return ["--data", str(path)] + (["--target", "label"] if path.suffix == ".csv" else [])


def train_args(data: Path, seed: int, epochs: int, *extra: str) -> list[str]:
    return [
        "train",
        *data_args(data),
        "--hidden",
        "16",
        "--batch-size",
        "16",
        "--epochs",
        str(epochs),
        "--seed",
        str(seed),
        "-q",
        *extra,
    ]


def _default_sigint() -> None:
    # A test runner started in the background of a non-interactive shell ignores SIGINT,
    # and its children inherit that; wxb then (rightly) leaves SIGINT alone. The child
    # gets the default disposition back, so Python installs its own handler.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _ignore_sigint() -> None:  # as a job a script starts with & finds it
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def popen(argv: list[str], ignore_sigint: bool = False) -> subprocess.Popen:
    return subprocess.Popen(
        [*WXB, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint if ignore_sigint else _default_sigint,
    )


def run(argv: list[str], msg: str) -> subprocess.CompletedProcess:
    """A whole wxb run that must succeed."""
    result = subprocess.run([*WXB, *argv], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{msg}: wxb {' '.join(argv)} failed:\n{result.stderr}"
    return result


def run_in_process(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def model_contents(path: Path) -> tuple[dict[str, tuple[str, tuple, bytes]], dict[str, str]]:
    """A model file's tensors as (dtype, shape, bytes) and its metadata."""
    tensors = {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in load_file(path).items()}
    with safe_open(path, "np") as handle:
        metadata = handle.metadata()
    return tensors, metadata


def assert_same_model(path: Path, reference: Path, msg: str) -> None:
    """Bit for bit: every tensor's dtype, shape and bytes, and the metadata (test figures
    included). Not the file's bytes: safetensors orders the metadata as it likes."""
    tensors, metadata = model_contents(path)
    ref_tensors, ref_metadata = model_contents(reference)
    assert sorted(tensors) == sorted(ref_tensors), msg
    differ = [k for k in ref_tensors if tensors[k] != ref_tensors[k]]
    assert not differ, f"{msg}: tensors {differ} differ from the uninterrupted run's"
    assert metadata == ref_metadata, f"{msg}: metadata differ from the uninterrupted run's"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.is_dir() else {}


def step_names(folder: Path) -> list[int]:
    """Global steps of the checkpoint JSON files in ``folder`` (as they appear: complete)."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for m in map(_STEP.match, names) if m and m.group(2) == "json")


def newest_strict(folder: Path, msg: str) -> checkpoint.Checkpoint | None:
    """The newest checkpoint, failing if any checkpoint JSON in the folder is not complete
    (its JSON is written last, atomically: a JSON file there must mean a whole checkpoint)."""
    listed = checkpoint.CheckpointFolder(folder).listed()
    for _, path in listed:
        try:
            checkpoint.read(path)
        except checkpoint.CheckpointFileError as exc:
            pytest.fail(f"{msg}: {path.name} is listed but not complete: {exc}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", checkpoint.CheckpointWarning)
        return checkpoint.CheckpointFolder(folder).latest()


def is_final(found: checkpoint.Checkpoint | None) -> bool:
    """The checkpoint a run writes when its training is over."""
    if found is None:
        return False
    position = found.meta["position"]
    return bool(position["finished"]) or position["epoch"] > position["epochs"]


def wait_for_checkpoint(proc: subprocess.Popen, folder: Path, step: int) -> bool:
    """Poll until ``folder`` holds a checkpoint of global step ≥ ``step``; False when the
    process ended first."""
    while proc.poll() is None:
        names = step_names(folder)
        if names and names[-1] >= step:
            return True
        time.sleep(0.002)
    return False


def one_line(err: str, msg: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, f"{msg}: not one line:\n{err}"
    assert "Traceback" not in err, msg
    return err[:-1]


# ---------------------------------------------------------------------------------
# 1. A resume from any checkpoint gives the uninterrupted run's bits
# ---------------------------------------------------------------------------------
def test_resume_from_any_checkpoint_is_bit_identical(tmp_path, seeded):
    rng = seeded.rng
    suffix = str(rng.choice([".csv", ".npz"]))
    data = write_data(tmp_path / f"data{suffix}", rng)
    seed, epochs = int(rng.integers(0, 2**31)), int(rng.integers(6, 11))
    schedule = str(rng.choice(["step", "cosine", "invscaling"]))
    patience = int(rng.integers(1, 4))
    argv = train_args(
        data,
        seed,
        epochs,
        *("--dropout", "0.2", "--val-split", "0.2", "--patience", str(patience)),
        *("--lr-schedule", schedule),
    )
    msg = seeded.msg(f"{suffix} data, {epochs} epochs, {schedule}, patience {patience}")

    reference = tmp_path / "reference.safetensors"
    run([*argv, "-o", str(reference)], msg)
    folder = tmp_path / "all"
    checkpointed = tmp_path / "checkpointed.safetensors"
    extra = ["--checkpoint-dir", str(folder), "--checkpoint-every", "1"]
    run([*argv, *extra, "--keep-checkpoints", "100000", "-o", str(checkpointed)], msg)
    assert_same_model(checkpointed, reference, f"{msg}: writing checkpoints changed the run")

    steps = step_names(folder)
    assert len(steps) >= epochs, f"{msg}: only {steps} checkpointed"
    assert steps == sorted(set(steps)) and steps[0] == 1, msg
    # The last one (training over), and three others drawn from the run.
    chosen = [steps[-1], *rng.choice(steps[:-1], size=min(3, len(steps) - 1), replace=False)]
    for step in chosen:
        fresh = tmp_path / f"from-{step}"
        fresh.mkdir()
        shutil.copy2(folder / OPTIONS, fresh)
        for suffix in (".json", ".safetensors"):
            shutil.copy2(folder / f"step-{step:09d}{suffix}", fresh)
        out = tmp_path / f"resumed-{step}.safetensors"
        extra = ["--checkpoint-dir", str(fresh), "--checkpoint-every", "1"]
        result = run([*argv, *extra, "--resume", "-o", str(out)], f"{msg}, step {step}")
        first = result.stdout.splitlines()[0]
        assert first == f"resumed from {fresh / f'step-{step:09d}.json'}", f"{msg}: {first}"
        assert result.stderr == "", f"{msg}, step {step}: {result.stderr}"
        assert_same_model(out, reference, f"{msg}: resumed from step {step}")


def test_resume_skips_a_damaged_newest_checkpoint_with_a_warning(tmp_path, seeded):
    rng = seeded.rng
    data = write_data(tmp_path / "data.npz", rng)
    seed, epochs = int(rng.integers(0, 2**31)), int(rng.integers(4, 7))
    argv = train_args(data, seed, epochs, "--dropout", "0.2", "--patience", "0")
    msg = seeded.msg(f"{epochs} epochs")
    reference = tmp_path / "reference.safetensors"
    run([*argv, "-o", str(reference)], msg)
    folder = tmp_path / "all"
    extra = ["--checkpoint-dir", str(folder), "--checkpoint-every", "1"]
    run([*argv, *extra, "--keep-checkpoints", "100000", "-o", str(tmp_path / "x.safetensors")], msg)

    steps = step_names(folder)
    older, newer = sorted(int(s) for s in rng.choice(steps[:-1], size=2, replace=False))
    partial = newer + 1  # its arrays file only: as a write cut short leaves it
    fresh = tmp_path / "damaged"
    fresh.mkdir()
    shutil.copy2(folder / OPTIONS, fresh)
    for step in (older, newer):
        for suffix in (".json", ".safetensors"):
            shutil.copy2(folder / f"step-{step:09d}{suffix}", fresh)
    shutil.copy2(folder / f"step-{partial:09d}.safetensors", fresh)
    damaged = fresh / f"step-{newer:09d}.safetensors"
    payload = bytearray(damaged.read_bytes())
    payload[int(rng.integers(len(payload)))] ^= 1 << int(rng.integers(8))  # one bit flipped
    damaged.write_bytes(bytes(payload))

    out = tmp_path / "resumed.safetensors"
    extra = ["--checkpoint-dir", str(fresh), "--checkpoint-every", "1"]
    result = run([*argv, *extra, "--resume", "-o", str(out)], msg)
    line = one_line(result.stderr, msg)
    assert line.startswith(f"wxb: warning: skipped checkpoint {fresh / f'step-{newer:09d}.json'}")
    assert "checksum" in line, f"{msg}: {line}"
    first = result.stdout.splitlines()[0]
    assert first == f"resumed from {fresh / f'step-{older:09d}.json'}", f"{msg}: {first}"
    assert_same_model(out, reference, f"{msg}: resumed from step {older}")


# ---------------------------------------------------------------------------------
# 2. kill -9 at random moments, then --resume: the same bits
# ---------------------------------------------------------------------------------
def check_after_kill(folder: Path, before, msg: str) -> checkpoint.Checkpoint | None:
    """The folder after a SIGKILL: every checkpoint listed is complete, none was lost
    (the newest is at least as far as ``before``, the newest before the kill), nothing
    strange lies there. Returns the newest checkpoint."""
    names = sorted(os.listdir(folder)) if folder.is_dir() else []
    strange = [n for n in names if not _ALLOWED.match(n)]
    assert not strange, f"{msg}: unexpected files {strange}"
    newest = newest_strict(folder, msg)
    if before is not None:
        was, now = before.meta["position"]["global_step"], None
        if newest is not None:
            now = newest.meta["position"]["global_step"]
        assert now is not None and now >= was, (
            f"{msg}: the newest checkpoint went from {was} to {now}"
        )
    if newest is not None:
        assert (folder / OPTIONS).is_file(), f"{msg}: checkpoints without {OPTIONS}"
    return newest


def check_after_finish(folder: Path, keep: int, msg: str) -> None:
    """A run that ended: at most ``keep`` checkpoints, each whole, no leftover pieces."""
    names = os.listdir(folder)
    assert not [n for n in names if n.startswith(".step-")], f"{msg}: temporaries {names}"
    jsons = {n[: -len(".json")] for n in names if _STEP.match(n) and n.endswith(".json")}
    arrays = {n[: -len(".safetensors")] for n in names if n.endswith(".safetensors")}
    assert jsons == arrays, f"{msg}: pieces of checkpoints left: {sorted(jsons ^ arrays)}"
    assert 1 <= len(jsons) <= keep, f"{msg}: {len(jsons)} checkpoints kept, keep is {keep}"
    assert is_final(newest_strict(folder, msg)), msg


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path, seeded):
    rng = seeded.rng
    data = write_data(tmp_path / "data.npz", rng)
    seed, epochs = int(rng.integers(0, 2**31)), int(rng.integers(6, 9))
    keep = int(rng.integers(1, 4))
    plain = train_args(
        data,
        seed,
        epochs,
        *("--dropout", "0.2", "--val-split", "0.2", "--patience", str(rng.integers(1, 4))),
        *("--lr-schedule", str(rng.choice(["step", "cosine", "invscaling"]))),
    )
    argv = [*plain, "--checkpoint-every", "1", "--keep-checkpoints", str(keep)]
    msg = seeded.msg(f"{epochs} epochs, keep {keep}")
    reference = tmp_path / "reference.safetensors"
    run([*plain, "-o", str(reference)], msg)

    # One uninterrupted run: its length, the time to its first checkpoint (Python's start,
    # reading the data) and its number of steps decide when the kills are sent.
    measure, measured = tmp_path / "measure", tmp_path / "measured.safetensors"
    start = time.monotonic()
    proc = popen([*argv, "--checkpoint-dir", str(measure), "-o", str(measured)])
    wait_for_checkpoint(proc, measure, 1)
    startup = time.monotonic() - start
    _, stderr = proc.communicate(timeout=300)
    length = time.monotonic() - start
    assert proc.returncode == 0, f"{msg}: {stderr}"
    assert_same_model(measured, reference, f"{msg}: the checkpointed run")
    check_after_finish(measure, keep, msg)
    total = checkpoint.CheckpointFolder(measure).latest().meta["position"]["global_step"]

    out = tmp_path / "out" / "model.safetensors"
    chain, folder, resume, newest = 0, tmp_path / "chain0", False, None
    kills, landed, runs = 0, [], 0
    while kills < 10 or resume:
        runs += 1
        assert runs <= 100, f"{msg}: {runs} runs for {kills} kills; every run ended first"
        command = [*argv, "--checkpoint-dir", str(folder), "-o", str(out)]
        proc = popen(command + (["--resume"] if resume else []))
        step = 0 if newest is None else newest.meta["position"]["global_step"]
        delay = None  # 10 kills sent, or training over: nothing but Python's start to hit
        if kills < 10 and not is_final(newest):  # a moment within what is left of the run:
            left = (length - startup) * (total - step) / total  # mostly in training
            delay = float(
                rng.uniform(0, startup) if rng.random() < 0.2 else startup + rng.uniform(0, left)
            )
        try:
            stdout, stderr = proc.communicate(timeout=300 if delay is None else delay)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            assert delay is not None, f"{msg}: a run took more than 300 s"
            kills += 1
            where = f"{msg}: kill {kills} after {delay:.3f} s ({length:.3f} s a whole run)"
            newest = check_after_kill(folder, newest, where)
            landed.append(0 if newest is None else newest.meta["position"]["global_step"])
            resume = True
            continue
        # The run ended (before its kill): it ended well, with the uninterrupted run's bits.
        assert proc.returncode == 0, f"{msg}: run {runs} failed:\n{stderr}"
        assert "wxb: warning" not in stderr, f"{msg}: {stderr}"
        if newest is not None:
            first = f"resumed from {newest.path}"
            assert stdout.splitlines()[0] == first, f"{msg}: {stdout}"
        assert_same_model(out, reference, f"{msg}: chain {chain}, resumed after its kills")
        check_after_finish(folder, keep, msg)
        chain += 1
        folder, resume, newest = tmp_path / f"chain{chain}", False, None
        out.unlink()
    print(f"{total} steps; kills landed after checkpoints {landed}; {runs} runs, {chain} chains")


# ---------------------------------------------------------------------------------
# 3. Ctrl-C
# ---------------------------------------------------------------------------------
def interrupt_after_checkpoint(
    make_argv, folder, rng, epochs, every, seconds=0.0, sig=signal.SIGINT, ignore_sigint=False
):
    """Start ``make_argv(epochs)`` with checkpoints into ``folder``; send ``sig`` once a
    checkpoint of a drawn step exists (and, with ``seconds``, SIGINT that much later).
    A run whose training had ended before the signal took hold is tried again with
    more epochs. Returns (epochs, returncode, stderr)."""
    for _ in range(5):
        shutil.rmtree(folder, ignore_errors=True)
        command = [*make_argv(epochs), "--checkpoint-dir", str(folder)]
        command += ["--checkpoint-every", str(every), "--keep-checkpoints", "3"]
        proc = popen([*command, "-o", str(folder.parent / "unused.safetensors")], ignore_sigint)
        target = every * int(rng.integers(1, 4))
        if wait_for_checkpoint(proc, folder, target):
            proc.send_signal(sig)
            if seconds:
                time.sleep(seconds)
                proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=300)
        late = proc.returncode == 0 or stderr == "wxb: interrupted\n"
        if not (late and is_final(checkpoint.CheckpointFolder(folder).latest())):
            return epochs, proc.returncode, stderr
        epochs *= 3  # training had ended before the signal: a longer run
    pytest.fail("every run ended before its SIGINT")


SIGNALS = [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGTERM, True)]
SIGNAL_IDS = ["SIGINT", "SIGTERM", "SIGTERM-with-SIGINT-ignored"]


@pytest.mark.parametrize("sig, ignore_sigint", SIGNALS, ids=SIGNAL_IDS)
def test_sigint_writes_a_checkpoint_and_resume_is_bit_identical(
    tmp_path, seeded, sig, ignore_sigint
):
    """SIGTERM (a scheduler's, `kill`) stops as Ctrl-C does; it ended the run at once,
    with no message and the steps since the last checkpoint lost. So it does in a job a
    script started with &, which ignores SIGINT (Ctrl-C), not `kill`: there too it ended
    the run at once."""
    rng = seeded.rng
    data = write_data(tmp_path / "data.npz", rng)
    seed, every = int(rng.integers(0, 2**31)), int(rng.integers(1, 6))
    extra = ("--dropout", "0.2", "--val-split", "0.2", "--patience", str(rng.integers(1, 4)))

    def make_argv(epochs: int) -> list[str]:
        return train_args(data, seed, epochs, *extra)

    folder = tmp_path / "ck"
    epochs, code, err = interrupt_after_checkpoint(
        make_argv, folder, rng, int(rng.integers(6, 10)), every, sig=sig,
        ignore_sigint=ignore_sigint,
    )  # fmt: skip
    msg = seeded.msg(f"{epochs} epochs, --checkpoint-every {every}")
    argv = make_argv(epochs)
    assert code == 130, f"{msg}: exit {code}:\n{err}"
    line = one_line(err, msg)
    match = re.fullmatch(
        rf"wxb: interrupted at {_WHERE}; checkpoint written to (?P<path>.+); "
        r"to continue exactly, run the same command with --resume",
        line,
    )
    assert match, f"{msg}: {line}"
    path = Path(match["path"])
    assert path.parent == folder and path.is_file(), f"{msg}: {line}"
    found = checkpoint.read(path)
    assert newest_strict(folder, msg).path == path, f"{msg}: not the newest: {line}"
    position = found.meta["position"]
    if match["end"]:
        assert (position["epoch"], position["step"]) == (int(match["end"]) + 1, 0), msg
    else:
        assert position["epoch"] == int(match["epoch"]), f"{msg}: {line} but {position}"
        assert position["step"] == int(match["step"]), f"{msg}: {line} but {position}"
        assert position["steps_per_epoch"] == int(match["steps"]), f"{msg}: {line}"
    assert not is_final(found), f"{msg}: interrupted after training ended? {position}"

    reference = tmp_path / "reference.safetensors"
    run([*argv, "-o", str(reference)], msg)
    out = tmp_path / "resumed.safetensors"
    ck = ["--checkpoint-dir", str(folder), "--checkpoint-every", str(every)]
    result = run([*argv, *ck, "--keep-checkpoints", "3", "--resume", "-o", str(out)], msg)
    assert result.stdout.splitlines()[0] == f"resumed from {path}", f"{msg}: {result.stdout}"
    assert result.stderr == "", f"{msg}: {result.stderr}"
    assert_same_model(out, reference, f"{msg}: resumed after Ctrl-C at {match[1]}")


def test_a_second_sigint_stops_at_once_and_leaves_the_folder_resumable(tmp_path, seeded):
    rng = seeded.rng
    data = write_data(tmp_path / "data.npz", rng)
    seed, gap = int(rng.integers(0, 2**31)), float(rng.uniform(0.0, 0.02))

    def make_argv(epochs: int) -> list[str]:
        return train_args(data, seed, epochs, "--dropout", "0.2")

    folder = tmp_path / "ck"
    epochs, code, err = interrupt_after_checkpoint(
        make_argv, folder, rng, int(rng.integers(6, 10)), 1, seconds=gap
    )
    msg = seeded.msg(f"{epochs} epochs, second SIGINT {gap * 1000:.1f} ms after the first")
    # 130 from wxb, or death by SIGINT (a shell says 130 too) when the second signal came
    # while Python was shutting down after the first's stop. The signals may have come as
    # one, or the second may have cut the first's stop short: either line.
    assert code in (130, -signal.SIGINT), f"{msg}: exit {code}:\n{err}"
    assert err.startswith("wxb: interrupted"), f"{msg}: {err}"
    newest_strict(folder, msg)

    argv = make_argv(epochs)
    reference = tmp_path / "reference.safetensors"
    run([*argv, "-o", str(reference)], msg)
    out = tmp_path / "resumed.safetensors"
    ck = ["--checkpoint-dir", str(folder), "--checkpoint-every", "1", "--keep-checkpoints", "3"]
    result = run([*argv, *ck, "--resume", "-o", str(out)], msg)
    assert "wxb: warning" not in result.stderr, f"{msg}: {result.stderr}"
    assert_same_model(out, reference, f"{msg}: resumed after two SIGINTs")


@pytest.mark.parametrize("sig, ignore_sigint", SIGNALS, ids=SIGNAL_IDS)
def test_sigint_without_checkpoint_dir_saves_the_weights(tmp_path, seeded, sig, ignore_sigint):
    rng = seeded.rng
    data = write_data(tmp_path / "data.npz", rng)
    patience = int(rng.choice([0, 100_000]))  # 0: no early stopping, so no best weights
    delay = float(rng.uniform(0.8, 1.5))  # past Python's start, into training
    out = tmp_path / "out" / "model.safetensors"
    history = tmp_path / "history.json"  # an older run's: replaced, not left beside the model
    history.write_text('{"history": {"loss": [9.0]}}')
    argv = train_args(data, int(rng.integers(0, 2**31)), 1_000_000, "--patience", str(patience))
    argv += ["--history", str(history)]
    for _ in range(5):
        proc = popen([*argv, "-o", str(out)], ignore_sigint)
        time.sleep(delay)
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(seeded.msg(f"ended before its signal, exit {proc.returncode}: {err}"))
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=300)
        if "interrupted at" in err or out.exists():
            break
        delay *= 2  # the signal came before training began: later next time
    msg = seeded.msg(f"patience {patience}, {sig.name} after {delay:.2f} s")
    assert proc.returncode == 130, f"{msg}: exit {proc.returncode}:\n{err}"
    line = one_line(err, msg)
    match = re.fullmatch(
        rf"wxb: interrupted at {_WHERE}; no --checkpoint-dir was set, so it cannot be "
        rf"resumed; saved the (?P<kept>best|current) weights so far to {re.escape(str(out))} "
        rf"and their history to {re.escape(str(history))}",
        line,
    )
    assert match, f"{msg}: {line}"
    epochs_done = int(match["end"]) if match["end"] else int(match["epoch"]) - 1
    # (a run stopped in its first epoch has no series yet: {"history": {}}, as Keras's)
    assert len(json.loads(history.read_text())["history"].get("loss", [])) == epochs_done, msg
    had_an_epoch = bool(match["end"]) or int(match["epoch"]) > 1
    expected = "best" if patience and had_an_epoch else "current"
    assert match["kept"] == expected, f"{msg}: {line}"
    model = wxb.load(out)
    assert set(model.info["test"]) == {"loss", "accuracy"}, msg
    X = np.load(data)["X"]
    assert np.isfinite(model.predict(X)).all(), msg
    assert not [p.name for p in out.parent.iterdir() if p.name.endswith(".tmp")], msg


# ---------------------------------------------------------------------------------
# 4. Refusals: one line, status 2, nothing touched
# ---------------------------------------------------------------------------------
def test_options_without_a_folder_are_refused(tmp_path, seeded, capsys):
    data = write_data(tmp_path / "data.npz", seeded.rng)
    out = tmp_path / "model.safetensors"
    for extra in (["--checkpoint-every", "3"], ["--resume"]):
        code, _, err = run_in_process(capsys, [*train_args(data, 0, 2, *extra), "-o", str(out)])
        assert code == 2, seeded.msg(f"{extra}: exit {code}")
        assert one_line(err, str(extra)).startswith("wxb: error:"), err
        assert "--checkpoint-dir" in err, err
    for extra in (["--checkpoint-every", "0"], ["--keep-checkpoints", "0"]):
        argv = [*train_args(data, 0, 2, *extra), "--checkpoint-dir", str(tmp_path / "ck")]
        code, _, err = run_in_process(capsys, [*argv, "-o", str(out)])
        assert code == 2, seeded.msg(f"{extra}: exit {code}")
        assert extra[0] in one_line(err, str(extra)), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npz"], "something was written"


def test_a_resume_with_other_options_or_data_is_refused(tmp_path, seeded, capsys):
    rng = seeded.rng
    data = write_data(tmp_path / "data.npz", rng)
    seed, every = int(rng.integers(0, 1000)), int(rng.integers(2, 6))
    lr = [] if rng.random() < 0.5 else ["--lr", "0.002"]
    folder = tmp_path / "ck"
    ck = ["--checkpoint-dir", str(folder), "--checkpoint-every", str(every)]
    first = tmp_path / "first.safetensors"
    code, _, err = run_in_process(capsys, [*train_args(data, seed, 2, *lr, *ck), "-o", str(first)])
    assert code == 0, seeded.msg(err)
    before = snapshot(folder)
    assert OPTIONS in before and any(n.endswith(".json") and n != OPTIONS for n in before)
    out = tmp_path / "out.safetensors"

    def refused(argv: list[str], expected: str, what: str) -> None:
        msg = seeded.msg(what)
        code, _, err = run_in_process(capsys, [*argv, "-o", str(out)])
        assert code == 2, f"{msg}: exit {code}: {err}"
        line = one_line(err, msg)
        assert line.startswith("wxb: error:") and re.search(expected, line), f"{msg}: {line}"
        assert snapshot(folder) == before, f"{msg}: the checkpoint folder changed"
        assert not out.exists(), f"{msg}: a model was written"

    shape = np.load(data)["X"].shape
    # By its path (--data was …) or by its rows (the fingerprints in the checkpoint); other rows
    # may also change what the default schedule derives from their count (early_stopping).
    different_data = r"--data was|: the training or validation data differ(;|$)"
    other = write_data(tmp_path / "other.npz", rng, *shape)  # the same shape, other rows
    for argv, expected, what in [
        (train_args(data, seed, 2, "--lr", "0.1", *ck), "--lr was", "another --lr"),
        (train_args(data, seed + 1, 2, *lr, *ck), f"--seed was {seed}, now {seed + 1}", "seed"),
        ([*train_args(data, seed, 2, *lr, *ck), "--hidden", "8"], "--hidden was '16'", "hidden"),
        (train_args(other, seed, 2, *lr, *ck), different_data, "another data file"),
    ]:
        refused([*argv, "--resume"], expected, what)

    # The same options, the data file's contents changed: the run itself says so.
    original = data.read_bytes()
    shutil.copy2(other, data)
    refused(
        [*train_args(data, seed, 2, *lr, *ck), "--resume"],
        ": the training or validation data differ(;|$)",
        "data changed in place",
    )
    data.write_bytes(original)
    # Without --resume, a folder holding checkpoints is refused, whatever the options.
    for argv in (train_args(data, seed, 2, *lr, *ck), train_args(data, seed, 3, "--lr", "1", *ck)):
        refused(argv, "already holds checkpoints", "no --resume")
    # With its own options and data (the file moved: the same rows), --resume (and more
    # epochs) is accepted.
    moved = shutil.copy2(data, tmp_path / "moved.npz")
    argv = [*train_args(moved, seed, 3, *lr, *ck), "--resume", "-o", str(out)]
    code, stdout, err = run_in_process(capsys, argv)
    assert code == 0 and stdout.startswith(f"resumed from {folder}"), seeded.msg(err)


# ---------------------------------------------------------------------------------
# 5. A full disk: one line, status 2, what was written before still whole
# ---------------------------------------------------------------------------------
def failing_on(monkeypatch, module, call: int) -> list[Path]:
    """Make call number ``call`` of ``module.atomic_write`` meet a full disk where a real
    one does (at fsync, after the bytes went into the temporary file). Returns the paths
    written through it, the failing one last."""
    real = module.atomic_write
    paths: list[Path] = []

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def atomic_write(path, payload):
        paths.append(Path(path))
        if len(paths) != call:
            return real(path, payload)
        with monkeypatch.context() as patch:
            patch.setattr(os, "fsync", full)
            return real(path, payload)

    monkeypatch.setattr(module, "atomic_write", atomic_write)
    return paths


def test_a_full_disk_while_checkpointing_stops_with_one_line(tmp_path, seeded, capsys, monkeypatch):
    rng = seeded.rng
    data = write_data(tmp_path / "data.npz", rng)
    seed, failing = int(rng.integers(0, 1000)), int(rng.integers(1, 7))
    part = int(rng.integers(1, 3))  # 1: the arrays file, 2: the JSON
    msg = seeded.msg(f"checkpoint {failing} fails at its {['arrays', 'JSON'][part - 1]}")
    argv = train_args(data, seed, 3, "--dropout", "0.2")
    reference = tmp_path / "reference.safetensors"
    code, _, err = run_in_process(capsys, [*argv, "-o", str(reference)])
    assert code == 0, f"{msg}: {err}"

    folder = tmp_path / "ck"
    out = tmp_path / "out.safetensors"
    ck = ["--checkpoint-dir", str(folder), "--checkpoint-every", "1", "--keep-checkpoints", "99"]
    written = failing_on(monkeypatch, checkpoint, 2 * (failing - 1) + part)
    code, _, err = run_in_process(capsys, [*argv, *ck, "-o", str(out)])
    monkeypatch.undo()
    assert code == 2, f"{msg}: exit {code}:\n{err}"
    line = one_line(err, msg)
    assert line.startswith("wxb: error:") and "No space left on device" in line, f"{msg}: {line}"
    assert str(written[-1]) in line, f"{msg}: the line names no file: {line}"
    assert not out.exists(), f"{msg}: a model was saved after the failure"
    names = sorted(os.listdir(folder))
    assert not [n for n in names if n.endswith(".tmp")], f"{msg}: temporaries left: {names}"
    steps = step_names(folder)
    assert steps == list(range(1, failing)), f"{msg}: complete checkpoints {steps}"
    for step in steps:
        checkpoint.read(folder / f"step-{step:09d}.json")  # raises if not whole

    # The disk has room again: --resume continues to the uninterrupted run's bits.
    code, stdout, err = run_in_process(capsys, [*argv, *ck, "--resume", "-o", str(out)])
    assert code == 0, f"{msg}: {err}"
    assert err == "", f"{msg}: {err}"
    if steps:
        assert stdout.startswith(f"resumed from {folder / f'step-{steps[-1]:09d}.json'}\n"), msg
    assert_same_model(out, reference, f"{msg}: resumed after the full disk")


def test_a_full_disk_while_saving_the_model_keeps_the_old_file(
    tmp_path, seeded, capsys, monkeypatch
):
    rng = seeded.rng
    data = write_data(tmp_path / "data.npz", rng)
    seed = int(rng.integers(0, 1000))
    out = tmp_path / "model.safetensors"
    code, _, err = run_in_process(capsys, [*train_args(data, seed, 2), "-o", str(out)])
    assert code == 0, seeded.msg(err)
    old = out.read_bytes()

    from wxb import io as wio

    written = failing_on(monkeypatch, wio, 1)
    argv = [*train_args(data, seed + 1, 2), "-o", str(out)]
    argv += ["--checkpoint-dir", str(tmp_path / "ck")] if rng.random() < 0.5 else []
    code, _, err = run_in_process(capsys, argv)
    monkeypatch.undo()
    msg = seeded.msg(" ".join(argv))
    assert written == [out], f"{msg}: {written}"
    assert code == 2, f"{msg}: exit {code}:\n{err}"
    assert one_line(err, msg) == f"wxb: error: {out}: No space left on device", msg
    assert out.read_bytes() == old, f"{msg}: the old model file changed"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in names if n.endswith(".tmp")], f"{msg}: temporaries left: {names}"


def test_a_stop_asked_before_fit_and_lost_stops_the_next_fit_at_once(rng):
    """SIGTERM before training: wxb train's handler raises KeyboardInterrupt, but one raised
    while numba compiles (C calling back into Python) is printed and dropped, and the run
    trained on. The request is kept: the fit that begins next stops at once; forgotten,
    a later fit runs as usual."""
    from wxb.cli import _terminate_as_interrupt
    from wxb.train import forget_stop_request

    X, y = rng.normal(size=(20, 3)), rng.integers(0, 2, 20)
    model = wxb.nn.Sequential(wxb.nn.Dense(3, 4), wxb.nn.ReLU(), wxb.nn.Dense(4, 2))
    before = [p.data.copy() for p in model.parameters()]
    try:
        _terminate_as_interrupt(signal.SIGTERM, None)
    except KeyboardInterrupt:
        pass  # as a ctypes callback drops it
    try:
        with pytest.raises(KeyboardInterrupt):
            wxb.fit(model, X, y, epochs=3, verbose=0)
        for p, b in zip(model.parameters(), before, strict=True):
            np.testing.assert_array_equal(p.data, b)  # not one step taken
        history = wxb.fit(model, X, y, epochs=2, verbose=0)  # the request was used once
        assert len(history.history["loss"]) == 2
    finally:
        forget_stop_request()
    try:
        _terminate_as_interrupt(signal.SIGTERM, None)
    except KeyboardInterrupt:
        pass
    forget_stop_request()  # what wxb train does as it ends
    assert len(wxb.fit(model, X, y, epochs=1, verbose=0).history["loss"]) == 1


@pytest.mark.parametrize(
    "first, again",
    [
        (["--optimizer", "sgd"], ["--optimizer", "sgd", "--momentum", "0", "--lr", "0.01"]),
        (["--optimizer", "adamw"], ["--optimizer", "adamw", "--weight-decay", "0.01"]),
        (["--optimizer", "adam", "--lr", "0.001"], ["--optimizer", "adam"]),
    ],
)
def test_a_resume_may_spell_an_optimiser_default_out_or_leave_it(
    tmp_path, capsys, rng, first, again
):
    """A run without --momentum is one with --momentum 0 on sgd (and the same for the
    rate and weight decay): the resume was refused, "--momentum was None, now 0.0"."""
    data = write_data(tmp_path / "d.csv", rng)
    folder, seed = str(tmp_path / "ck"), int(rng.integers(1 << 30))
    out = ["-o", str(tmp_path / "m.safetensors"), "--checkpoint-dir", folder]
    code, _, err = run_in_process(capsys, train_args(data, seed, 1, *first, *out))
    assert code == 0, err
    code, _, err = run_in_process(capsys, train_args(data, seed, 2, *again, *out, "--resume"))
    assert code == 0, err
    # a value that is not the default still differs, by name
    changed = [*again[:2], "--lr", "0.5"]
    code, _, err = run_in_process(capsys, train_args(data, seed, 3, *changed, *out, "--resume"))
    assert code == 2 and "--lr was" in err and err.count("\n") == 1, err
