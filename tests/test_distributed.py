"""Data-parallel training under ``mpiexec -n 2`` against one process (tests/mpi_worker.py).

The suite starts MPI jobs itself; without mpi4py or an ``mpiexec`` beside this Python
(``pip install -e '.[mpi]'``, which the dev extra includes) the tests are skipped with
that reason.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from mpi_worker import fit_case

import wxb

HERE = Path(__file__).resolve().parent
MPIEXEC = Path(sys.executable).with_name("mpiexec")
try:
    import mpi4py  # noqa: F401

    MISSING = None if MPIEXEC.is_file() else f"no mpiexec beside {sys.executable}"
except ImportError:
    MISSING = "mpi4py is not installed (pip install -e '.[mpi]')"
# once in CI: ranks against one process, both on the same kernels
pytestmark = [
    pytest.mark.skipif(MISSING is not None, reason=str(MISSING)),
    pytest.mark.one_route,
]

RANKS = 2


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", **extra)
    return env


def mpiexec(args: list[str], ranks: int = RANKS, timeout: float = 300, **env: str):
    command = [str(MPIEXEC), "-n", str(ranks), *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=environment(**env)
    )


NEW_OPTIMIZERS = ["nadam", "radam", "adamax", "adadelta"]


def optimizer_options(rng: np.random.Generator, name: str) -> dict:
    """The settings of today's optimisers that Adam's have not (PyTorch's names)."""
    if name == "nadam":
        return {"momentum_decay": float(rng.choice([4e-3, 0.05])),
                "decoupled_weight_decay": bool(rng.random() < 0.5)}  # fmt: skip
    if name == "radam":
        return {"decoupled_weight_decay": bool(rng.random() < 0.5)}
    if name == "adadelta":
        return {"rho": float(rng.uniform(0.8, 0.95))}
    return {}


def sequential_case(rng: np.random.Generator) -> dict:
    """A SequentialLR's parts (mpi_worker.sequential_for builds it on the optimiser)."""
    return {
        "first": str(rng.choice(["linear", "constant"])),
        "factor": float(rng.uniform(0.1, 0.9)),
        "warm": int(rng.integers(1, 3)),
        "then": str(rng.choice(["cosine", "exponential"])),
        "T_max": int(rng.integers(2, 5)),
        "gamma": float(rng.uniform(0.5, 0.95)),
        "milestone": int(rng.integers(1, 3)),
    }


def random_case(rng: np.random.Generator, folder: Path, name: str, **override) -> dict:
    """A random network, data set and fit, written to ``folder``; ``override`` fixes parts."""
    dtype = override.pop("dtype", str(rng.choice(["float32", "float64"])))
    rows = int(rng.integers(40, 160))
    hidden = [int(rng.integers(3, 17)) for _ in range(rng.integers(1, 3))]
    sizes = [int(rng.integers(2, 9)), *hidden]
    classes = int(rng.integers(2, 5))
    sizes.append(classes)
    X = rng.standard_normal((rows, sizes[0])).astype(dtype)
    # The loss: classes, or targets for each output (values, or 0/1 for logits' BCE).
    loss = override.pop("loss", None) or str(
        rng.choice(["cross_entropy", "cross_entropy", "mse", "bce_with_logits"])
    )

    def targets(count: int) -> np.ndarray:
        if loss == "cross_entropy":
            return rng.integers(0, classes, count)
        if loss == "mse":
            return rng.standard_normal((count, classes)).astype(dtype)
        return rng.integers(0, 2, (count, classes)).astype(dtype)

    y = targets(rows)
    data = {"X": X, "y": y}
    if rng.random() < 0.5:  # validation rows, split across the ranks for the figures
        val = int(rng.integers(3, 40))
        data["X_val"] = rng.standard_normal((val, sizes[0])).astype(dtype)
        data["y_val"] = targets(val)
    np.savez(folder / f"{name}-data.npz", **data)
    on_disk = bool(rng.random() < 0.5)  # the ranks memory-map X (the reference does not)
    if on_disk:
        np.save(folder / f"{name}-X.npy", X)
        if "X_val" in data:
            np.save(folder / f"{name}-X_val.npy", data["X_val"])
    case = {
        "sizes": sizes,
        "activation": str(rng.choice(["relu", "tanh"])),
        "dtype": dtype,
        "graph": bool(rng.random() < 0.3),
        "frozen_first": bool(len(sizes) > 3 and rng.random() < 0.3),
        "frozen_in_optimizer": bool(rng.random() < 0.5),
        "replaced": bool(rng.random() < 0.2),
        "midrun": None,  # after epoch 1: the first layer frozen, or an own activation swapped in
        "dropout": float(rng.uniform(0.1, 0.5)) if rng.random() < 0.5 else 0.0,
        "dropout_seed": int(rng.integers(0, 2**31)) if rng.random() < 0.3 else None,
        "data": str(folder / f"{name}-data.npz"),
        "on_disk": str(folder / f"{name}-X.npy") if on_disk else None,
        "on_disk_val": str(folder / f"{name}-X_val.npy") if on_disk else None,
        "weights": str(folder / f"{name}-weights.npz"),
        "optimizer": {
            "name": str(rng.choice(["sgd", "adam", "adamw", *NEW_OPTIMIZERS])),
            "lr": float(rng.uniform(0.003, 0.05)),
            "momentum": float(rng.choice([0.0, 0.9])),
            "nesterov": False,
            "weight_decay": float(rng.choice([0.0, 1e-3])),
        },
        "fit": {
            "loss": loss,
            # A summed loss: no 1/B, and the ranks' sums add up to one process's.
            "reduction": str(rng.choice(["mean", "mean", "sum"])),
            "epochs": int(rng.integers(2, 5)),
            # Up to more rows than a batch has: the last batch can leave a rank empty.
            "batch_size": int(rng.integers(3, 40)),
            "seed": int(rng.integers(0, 2**31)),
            "shuffle": bool(rng.random() < 0.8),
            "clip_grad_norm": float(rng.uniform(0.5, 2)) if rng.random() < 0.3 else None,
            "lr_schedule": str(rng.choice(["cosine", "step", "onecycle"]))
            if rng.random() < 0.3
            else None,
        },
        "sequential": None,  # a SequentialLR of its own (sequential_case), given by override
    }
    if "X_val" not in data and rng.random() < 0.5:  # held out by fit, from the same rows
        case["fit"]["validation_split"] = float(rng.uniform(0.1, 0.3))
    case["optimizer"]["nesterov"] = case["optimizer"]["momentum"] > 0 and bool(rng.random() < 0.5)
    case["optimizer"].update(override.pop("optimizer", {}))  # merged, not replaced
    case["optimizer"]["options"] = optimizer_options(rng, case["optimizer"]["name"])
    if case["fit"]["reduction"] == "sum":  # the gradient of a sum is B times the mean's
        case["optimizer"]["lr"] /= case["fit"]["batch_size"]
    for key, value in override.items():
        if key in case["fit"]:
            case["fit"][key] = value
        else:
            case[key] = value
    # The initial weights: one draw, used by every rank and by the reference.
    state = {}
    for i, (m, n) in enumerate(itertools.pairwise(sizes)):
        state[f"dense{i + 1}.weight"] = (rng.standard_normal((n, m)) * 0.5).astype(dtype)
        state[f"dense{i + 1}.bias"] = (rng.standard_normal(n) * 0.1).astype(dtype)
    if case["graph"]:  # Scaled's gain
        state["gain"] = np.array(rng.uniform(0.5, 1.5), dtype)
    np.savez(folder / f"{name}-weights.npz", **state)
    return case


def run_cases(folder: Path, cases: dict, ranks: int = RANKS, env: dict | None = None, **extra):
    spec = {"folder": str(folder), "cases": cases, "extra": extra}
    (folder / "spec.json").write_text(json.dumps(spec))
    worker = [sys.executable, str(HERE / "mpi_worker.py"), str(folder / "spec.json")]
    done = mpiexec(worker, ranks, **(env or {}))
    said = f"{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, f"mpiexec failed ({done.returncode}):\n{said}"
    return done


def rank_result(folder: Path, rank: int, name: str):
    with np.load(folder / f"rank{rank}-{name}.npz") as stored:
        state = {k: stored[k] for k in stored.files}
    history = json.loads((folder / f"rank{rank}-{name}.json").read_text())
    return state, history


def assert_close_states(got: dict, want: dict, dtype: str, msg: str, floor: float = 0.0) -> None:
    rtol = 1e-12 if dtype == "float64" else 1e-5
    for key in want:
        scale = max(1.0, float(np.max(np.abs(want[key]))))
        error = float(np.max(np.abs(got[key].astype(np.float64) - want[key])))
        bound = max(rtol * scale * 10, floor)
        assert error <= bound, f"{msg}: {key} differs by {error:.3g} (max {scale:.3g})"


def rounding_spread(case: dict, reference: object) -> float:
    """How far the run itself carries a rounding-sized change: the case fitted again from
    a first weight matrix moved by a few units in the last place of its dtype (one part in
    1e15 in float64), against ``reference``. Adam at a rate near 0.01 on random labels can
    be chaotic: such a change grows to O(0.1) in ~1000 steps (0.28 at
    WXB_TEST_SEED=176036604786388988566085196877518024131), as the other summation order
    of two ranks does, and a resumed run can agree no better than that; a run that
    diverges (SGD with momentum 0.9 taking the weights to 1e4) carries it further still."""
    weights = dict(np.load(case["weights"]))
    first = weights["dense1.weight"]
    nudge = 1e-15 if first.dtype == np.float64 else 4 * float(np.finfo(first.dtype).eps)
    weights["dense1.weight"] = (first * (1 + nudge)).astype(first.dtype)
    path = Path(case["weights"]).with_name("nudged-weights.npz")
    np.savez(path, **weights)
    nudged, _ = fit_case({**case, "weights": str(path)}, False)
    want = reference.state_dict()
    return max(
        float(np.max(np.abs(np.asarray(v, np.float64) - np.asarray(want[k], np.float64))))
        for k, v in nudged.state_dict().items()
    )


@pytest.mark.parametrize(("shared", "ranks"), [("1", 2), ("0", 2), ("1", 3)])
def test_ranks_train_what_one_process_trains(seeded, tmp_path, shared, ranks):
    """Random networks, optimisers, losses (cross-entropy, MSE, BCE; mean or sum), batch
    sizes (uneven shares, empty ones), validation data, schedules, clipping, frozen
    layers (in the optimiser or not: no gradient, no update, not even weight decay),
    changes after epoch 1 (mpi_worker.MidRun: a layer frozen kept moving in shared
    memory; the graph the step fell back to went unscaled; an optimiser repacked, or
    given a group, updated the shared weights once per rank), MuonWithAdamW (never run
    on ranks before session 56),
    weights replaced after the optimiser was built, dropout (the run's seed or a layer's
    own), both engines, X in memory or memory-mapped: K ranks = 1 process, and a view
    of a weight taken before follows training (it was left behind in shared memory). The planned
    step's gradients are summed in shared memory (WXB_MPI_SHARED=1, the default on one
    machine) or by Iallreduce per layer (0, as across machines); the graph step's always
    by Iallreduce."""
    rng = seeded.rng
    changes = ["freeze", "swap", "repack", "add_group"]
    forced = [{"graph": True}] + [{"midrun": change} for change in changes]  # each at least once
    if ranks == 2:  # today's optimisers each once, under OneCycleLR (fit's) or a SequentialLR
        forced[0].update(optimizer={"name": "adadelta"}, sequential=sequential_case(rng))
        forced += [
            {"optimizer": {"name": "nadam"}, "lr_schedule": "onecycle"},
            {
                "optimizer": {"name": "radam"},
                "lr_schedule": None,
                "sequential": sequential_case(rng),
            },
            {"optimizer": {"name": "adamax"}, "lr_schedule": "onecycle"},
            # MuonWithAdamW (fit's "muon"): each matrix stepped whole by every rank; its
            # bfloat16 Newton–Schulz of a float64 momentum rounds alike whichever order
            # the ranks summed in (1e-16 apart)
            {"optimizer": {"name": "muon"}, "dtype": "float64", "midrun": None},
        ]
    cases = {}
    for i in range(9 if ranks == 2 else 5):
        drawn = {"midrun": str(rng.choice(changes))} if rng.random() < 0.3 else {}
        if not drawn and rng.random() < 0.2:
            drawn = {"lr_schedule": None, "sequential": sequential_case(rng)}
        cases[f"c{i}"] = random_case(
            rng, tmp_path, f"c{i}", **(forced[i] if i < len(forced) else drawn)
        )
    run_cases(tmp_path, cases, ranks=ranks, env={"WXB_MPI_SHARED": shared})
    for name, case in cases.items():
        msg = seeded.msg(f"{name}: {json.dumps(case)}")
        model, history = fit_case(case, False)
        want = {k: np.asarray(v, np.float64) for k, v in model.state_dict().items()}
        first, first_history = rank_result(tmp_path, 0, name)
        for rank in range(ranks):
            state, hist = rank_result(tmp_path, rank, name)
            for key in first:  # every rank ends with the same weights, bit for bit
                assert np.array_equal(state[key], first[key]), f"{msg}: rank {rank} {key}"
            assert hist["history"] == first_history["history"], msg
        try:
            assert_close_states(first, want, case["dtype"], msg)
            chaotic = False
        except AssertionError:  # a run that carries rounding far (chaotic, or diverging):
            # the ranks' other summation order may differ by what a rounding-sized change
            # grows to in this very run, measured by fitting it again from nudged weights
            spread = rounding_spread(case, model)
            assert_close_states(first, want, case["dtype"], msg, floor=10 * spread)
            chaotic = True
        for rank in range(ranks):  # the shared memory let go: the weights where they lay
            assert (tmp_path / f"rank{rank}-{name}-view").read_text() == "1", msg
        ours, theirs = first_history["history"], history.history
        assert ours.keys() == theirs.keys(), msg
        for key in ours if not chaotic else ():  # figures over all the rows, as one process's
            # (JSON's null is a figure not there: lr_group1 before a group added mid-run)
            written = [np.nan if value is None else value for value in ours[key]]
            np.testing.assert_allclose(written, theirs[key], rtol=1e-4, atol=1e-6, err_msg=msg)


def test_a_checkpoint_of_two_ranks_resumes_in_one_and_back(seeded, tmp_path):
    rng = seeded.rng
    case = random_case(rng, tmp_path, "r", dtype="float64", lr_schedule=None, graph=False)
    case["fit"].update(epochs=4)
    msg = seeded.msg(json.dumps(case))
    reference, _ = fit_case(case, False)
    want = {k: np.asarray(v) for k, v in reference.state_dict().items()}
    # Two ranks for 2 epochs, then one process resumes to 4.
    folder = tmp_path / "two-then-one"
    run_cases(tmp_path, {"first": case}, checkpoint_dir=str(folder), epochs=2)
    assert sorted(p.name for p in folder.iterdir() if p.suffix == ".json"), msg
    model, history = fit_case(case, False, checkpoint_dir=folder, resume=True)
    assert history.resumed_from is not None, msg
    assert_close_states({k: np.asarray(v) for k, v in model.state_dict().items()}, want,
                        "float64", f"{msg}: 2 ranks, then 1")  # fmt: skip
    # One process for 2 epochs, then two ranks resume to 4.
    folder = tmp_path / "one-then-two"
    fit_case(case, False, checkpoint_dir=folder, epochs=2)
    run_cases(tmp_path, {"second": case}, checkpoint_dir=str(folder), resume=True)
    state, _ = rank_result(tmp_path, 0, "second")
    assert_close_states(state, want, "float64", f"{msg}: 1, then 2 ranks")


def write_table(path: Path, rng: np.random.Generator, rows: int, features: int) -> None:
    X = rng.standard_normal((rows, features))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    lines = [",".join([*(f"f{i}" for i in range(features)), "label"])]
    lines += [",".join([*(f"{v:.6g}" for v in row), str(t)]) for row, t in zip(X, y, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def test_wxb_train_under_mpiexec_writes_once_and_matches_one_process(seeded, tmp_path):
    rng = seeded.rng
    table = tmp_path / "table.csv"
    write_table(table, rng, int(rng.integers(150, 400)), int(rng.integers(2, 8)))
    seed = str(int(rng.integers(0, 2**31)))
    common = ["train", "--data", str(table), "--target", "label", "--seed", seed,
              "--epochs", "3", "--hidden", "16", "--dtype", "float64"]  # fmt: skip
    two = tmp_path / "two"
    done = mpiexec([str(Path(sys.executable).with_name("wxb")), *common, "-o",
                    str(two / "model.safetensors"), "--history", str(two / "history.json"),
                    "--checkpoint-dir", str(two / "ckpt")])  # fmt: skip
    msg = seeded.msg(f"wxb {' '.join(common)}: {done.stdout}\n{done.stderr}")
    assert done.returncode == 0, msg
    assert done.stdout.count("saved model to") == 1, msg  # rank 0 alone prints
    assert sorted(p.name for p in two.iterdir()) == ["ckpt", "history.json", "model.safetensors"]
    one = tmp_path / "one"
    alone = subprocess.run(
        [str(Path(sys.executable).with_name("wxb")), *common, "-o", str(one / "model.safetensors"),
         "--history", str(one / "history.json")],
        capture_output=True, text=True, env=environment(), timeout=300,
    )  # fmt: skip
    assert alone.returncode == 0, alone.stderr
    assert done.stdout.splitlines()[-2] == alone.stdout.splitlines()[-2], msg  # test figures
    a, b = wxb.load(two / "model.safetensors"), wxb.load(one / "model.safetensors")
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-10, atol=1e-12, err_msg=f"{msg}: {name}")


def test_other_commands_refuse_to_run_under_mpiexec(tmp_path):
    done = mpiexec([str(Path(sys.executable).with_name("wxb")), "summary", "x.safetensors"])
    assert done.returncode != 0
    assert "under mpiexec only wxb train runs" in done.stderr


def test_wxb_train_class_weight_under_mpiexec_is_refused_in_the_commands_words(seeded, tmp_path):
    """--class-weight balanced on classes under mpiexec: fit refuses a distributed
    weighted mean, and its advice (reduction='sum') named an option the command does
    not have; the command says what to do instead."""
    rng = seeded.rng
    table = tmp_path / "table.csv"
    write_table(table, rng, int(rng.integers(60, 120)), int(rng.integers(2, 5)))
    done = mpiexec([str(Path(sys.executable).with_name("wxb")), "train", "--data", str(table),
                    "--target", "label", "--epochs", "1", "--hidden", "4", "--class-weight",
                    "balanced", "-o", str(tmp_path / "model.safetensors")])  # fmt: skip
    said = done.stdout + done.stderr
    assert done.returncode != 0, seeded.msg(said)
    assert "--class-weight balanced does not run under mpiexec" in done.stderr, seeded.msg(said)
    assert "reduction=" not in said, seeded.msg(said)
    assert not (tmp_path / "model.safetensors").exists()


def long_case(rng: np.random.Generator, folder: Path) -> dict:
    """A run of several seconds on two ranks, checkpointed every few steps."""
    # float64 and a moderate rate: the resumed run is compared with an uninterrupted one
    # after ~1000 steps, and float32 rounding (other shares, other BLAS threads) would grow.
    case = random_case(rng, folder, "long", dtype="float64", graph=False, lr_schedule=None,
                       loss="cross_entropy", reduction="mean")  # fmt: skip
    case["optimizer"]["lr"] = float(rng.uniform(0.001, 0.01))
    rows, features = 6000, 64
    X = rng.standard_normal((rows, features))
    y = rng.integers(0, 3, rows)
    np.savez(folder / "long-data.npz", X=X, y=y)
    np.save(folder / "long-X.npy", X)  # the ranks memory-map it
    sizes = [features, 256, 256, 3]
    state = {}
    for i, (m, n) in enumerate(itertools.pairwise(sizes)):
        state[f"dense{i + 1}.weight"] = rng.standard_normal((n, m)) / np.sqrt(m)
        state[f"dense{i + 1}.bias"] = np.zeros(n)
    np.savez(folder / "long-weights.npz", **state)
    case.update(sizes=sizes, frozen_first=False, activation="relu")
    case.update(on_disk=str(folder / "long-X.npy"))
    case["fit"].update(epochs=6, batch_size=32, clip_grad_norm=None, validation_split=0.0)
    return case


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.02)


@pytest.mark.parametrize("fault", ["killed", "hangs"])
def test_a_rank_that_dies_or_hangs_stops_the_job_in_bounded_time(seeded, tmp_path, fault):
    """Rank 1 is killed (SIGKILL) or stopped (SIGSTOP) mid-run, after a checkpoint: the
    job ends within the bound with a message, and the checkpoint resumes to the end."""
    rng = seeded.rng
    case = long_case(rng, tmp_path)
    msg = seeded.msg(f"rank 1 {fault}")
    folder = tmp_path / "ckpt"
    spec = {"folder": str(tmp_path), "cases": {"long": case},
            "extra": {"checkpoint_dir": str(folder), "checkpoint_every": 10}}  # fmt: skip
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    bound = 10.0  # WXB_MPI_TIMEOUT for the test (the default is 30 s): a loaded host
    # needs a few seconds to end the job after it, and two timeouts would be ≥ 2 × bound
    command = [str(MPIEXEC), "-n", "2", sys.executable, str(HERE / "mpi_worker.py"),
               str(tmp_path / "spec.json")]  # fmt: skip
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=environment(WXB_MPI_TIMEOUT=str(bound)))  # fmt: skip
    try:
        wait_for(lambda: (tmp_path / "pid-1").is_file(), 120, "rank 1 to start")
        wait_for(lambda: folder.is_dir() and any(folder.glob("step-*.json")), 120, "a checkpoint")
        pid = int((tmp_path / "pid-1").read_text())
        os.kill(pid, signal.SIGKILL if fault == "killed" else signal.SIGSTOP)
        hit = time.monotonic()
        stdout, stderr = job.communicate(timeout=bound + 30)
        said = stdout + stderr  # mpiexec reports a killed rank on its stdout
        took = time.monotonic() - hit
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
        if fault == "hangs":
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, UnboundLocalError):
                pass
    assert job.returncode != 0, msg
    # One timeout, not two (a clean-up that waited again for the stopped rank).
    assert took < 2 * bound, f"{msg}: the job took {took:.1f} s to end"
    if fault == "hangs":
        assert "no answer from the other ranks" in said, f"{msg}: {said}"
    else:  # mpiexec names the process that died
        assert "BAD TERMINATION" in said and "EXIT CODE: 9" in said, f"{msg}: {said}"
    assert not (tmp_path / "rank0-long.npz").exists(), f"{msg}: the job finished first"
    # The last checkpoint loads, and resumes (here in one process) to the uninterrupted end.
    model, history = fit_case(case, False, checkpoint_dir=folder, checkpoint_every=10, resume=True)
    assert history.resumed_from is not None, msg
    reference, _ = fit_case(case, False)
    want = {k: np.asarray(v, np.float64) for k, v in reference.state_dict().items()}
    got = {k: np.asarray(v) for k, v in model.state_dict().items()}
    # float64, after ~1000 steps: 1e-5, or what a rounding-sized change grows to in this run
    spread = rounding_spread(case, reference)
    assert_close_states(got, want, "float32", f"{msg} (spread {spread:.3g})", floor=10 * spread)


@pytest.mark.parametrize("variable", ["MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE"])
def test_ranks_on_one_machine_share_its_cores_for_the_update(monkeypatch, variable):
    """mpiexec often binds nothing: K ranks each sizing their update threads by every
    core would run K times too many threads."""
    from wxb import optim

    monkeypatch.delenv("MPI_LOCALNRANKS", raising=False)
    monkeypatch.delenv("OMPI_COMM_WORLD_LOCAL_SIZE", raising=False)
    alone = optim.update_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert alone == max(1, min(8, cores))
    for local in (2, 3, 64):
        monkeypatch.setenv(variable, str(local))
        assert optim.update_threads() == max(1, min(8, cores // local)), local


def failed_job(script: Path, source: str, **env: str) -> str:
    """Run ``source`` (which prints "finished" at its end) on 2 ranks; it must fail before
    that. What the job said, for the caller's checks."""
    script.write_text(source)
    done = mpiexec([sys.executable, str(script)], timeout=900, **env)
    said = done.stdout + done.stderr
    assert done.returncode != 0 and "finished" not in said, said
    return said


BRANCH_MODEL = """
import sys, numpy as np, wxb
from wxb import nn
from wxb.nn import functional as F
seed, threshold, mode, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
rng = np.random.default_rng(seed)
X, y = rng.standard_normal((int(rng.integers(30, 60)), 5)), rng.integers(0, 3, 60)
class Branch(nn.Module):  # rows past the threshold add a head of their own, with a Dropout
    def __init__(self):
        super().__init__()
        self.base, self.extra = nn.Dense(5, 8, seed=rng), nn.Dense(5, 8, seed=rng)
        self.drop_extra, self.drop = nn.Dropout(0.5), nn.Dropout(0.3)
        self.out = nn.Dense(8, 3, seed=rng)
    def forward(self, x):
        h = self.base(x)
        rows = x.data[:, 0] > threshold
        if rows.any():  # a batch (or a rank's share) without such rows skips the branch
            h = h + self.drop_extra(self.extra(x)) * rows[:, None].astype(float)
        return self.out(self.drop(F.tanh(h)))
model = Branch().to("float64")
wxb.fit(model, X, y[: len(X)], optimizer="sgd", lr=0.1, epochs=3, batch_size=8, seed=seed,
        verbose=False, distributed=mode == "dist")
if mode == "one" or wxb.distributed.Ranks().rank == 0:
    np.savez(out, *[p.data for p in model.parameters()])
"""


def test_a_dropout_in_a_branch_some_ranks_skip_leaves_the_later_masks_alike(seeded, tmp_path):
    """Masks were keyed by how many the step had drawn: a rank whose rows skipped a
    branch holding a Dropout gave every later Dropout another stream than one process
    (4.6e-2 apart after 3 epochs). They go by each layer's place in the model now."""
    rng = seeded.rng
    script = tmp_path / "branch.py"
    script.write_text(BRANCH_MODEL)
    args = [str(int(rng.integers(0, 2**31))), str(float(rng.uniform(0.8, 1.5)))]
    command = [sys.executable, str(script), *args, "one", str(tmp_path / "one.npz")]
    one = subprocess.run(command, capture_output=True, text=True, timeout=120, env=environment())
    assert one.returncode == 0, one.stderr
    done = mpiexec([sys.executable, str(script), *args, "dist", str(tmp_path / "dist.npz")])
    assert done.returncode == 0, done.stdout + done.stderr
    with np.load(tmp_path / "one.npz") as a, np.load(tmp_path / "dist.npz") as b:
        for key in a.files:
            np.testing.assert_allclose(b[key], a[key], rtol=0, atol=1e-12, err_msg=seeded.msg(key))


@pytest.mark.parametrize("which", ["training", "validation"])
def test_ranks_given_other_data_are_stopped_by_name(seeded, tmp_path, which):
    """Each rank reads its own copy of the data: a rank given other rows of the same
    shape would train a mixture (or sum validation figures over a mixture) without a
    word."""
    seed = int(seeded.rng.integers(0, 2**31))
    said = failed_job(
        tmp_path / "other_data.py",
        "import numpy as np, wxb\n"
        "from wxb import nn\n"
        "from wxb.distributed import Ranks\n"
        "ranks = Ranks()\n"
        f"rng = np.random.default_rng({seed} + ranks.rank)\n"
        "Xv, yv = rng.standard_normal((20, 4)), rng.integers(0, 3, 20)\n"
        f"rng = np.random.default_rng({seed} + ranks.rank * {int(which == 'training')})\n"
        "X, y = rng.standard_normal((64, 4)), rng.integers(0, 3, 64)\n"
        "wxb.fit(nn.Sequential(nn.Dense(4, 3)), X, y, loss='cross_entropy', epochs=1,\n"
        "        seed=1, verbose=False, distributed=ranks, validation_data=(Xv, yv))\n"
        "print('finished', ranks.rank)\n",
    )
    assert f"the {which} data differ between rank 0 and rank 1" in said, seeded.msg(said)


@pytest.mark.parametrize("which", ["architecture", "a non-finite value"])
def test_a_rank_set_up_otherwise_stops_every_rank_at_once_by_name(seeded, tmp_path, which):
    """A rank whose model had other widths failed inside MPI's broadcast with mpi4py's
    'See the MPI_ERROR field'; a NaN in one rank's copy of X stopped that rank only.
    Either way the other waited out the 30 s timeout, then named another wait."""
    # the row in rank 1's share of the 64 (rank 0's share is caught as other data)
    seed, row = int(seeded.rng.integers(0, 2**31)), int(seeded.rng.integers(32, 64))
    start = time.monotonic()
    said = failed_job(
        tmp_path / "other_setup.py",
        "import numpy as np, wxb\n"
        "from wxb import nn\n"
        "from wxb.distributed import Ranks\n"
        "ranks = Ranks()\n"
        f"rng = np.random.default_rng({seed})\n"
        "X, y = rng.standard_normal((64, 4)), rng.integers(0, 3, 64)\n"
        f"hidden = 5 + ranks.rank * {int(which == 'architecture')}\n"
        f"if ranks.rank == 1 and {which == 'a non-finite value'}:\n"
        f"    X[{row}, 2] = np.nan\n"
        "model = nn.Sequential(nn.Dense(4, hidden), nn.ReLU(), nn.Dense(hidden, 3))\n"
        "wxb.fit(model, X, y, epochs=1, seed=1, verbose=False, distributed=ranks)\n"
        "print('finished', ranks.rank)\n",
        WXB_MPI_TIMEOUT="600",
    )
    assert time.monotonic() - start < 300, seeded.msg(said)  # not after a rank's timeout
    if which == "architecture":
        assert "parameter shapes differ between rank 0 and rank 1" in said, seeded.msg(said)
    else:
        assert f"row {row}" in said and "another rank's copy" in said, seeded.msg(said)


def test_ranks_read_a_memory_mapped_x_without_copying_it(seeded, tmp_path):
    """X memory-mapped from a .npy stays on disk: each rank holds index lists and its
    batches, never a copy of X, and the run equals one process's from memory."""
    rng = seeded.rng
    # tanh, not ReLU: a pre-activation within rounding of 0 on one of ~1e6 row-units
    # flips its row's gradient when the sums' order differs, a change of lr·|x|/B that
    # momentum carries to 0.1–0.2 of the bound (2 in 24 ReLU runs nudged by 4 ulps)
    case = random_case(rng, tmp_path, "big", dtype="float32", graph=False, dropout=0.2,
                       loss="cross_entropy", reduction="mean", activation="tanh")  # fmt: skip
    rows, features = int(rng.integers(70_000, 90_000)), 256
    X = rng.standard_normal((rows, features)).astype("float32")
    y = (X[:, 0] > 0).astype(int)
    np.savez(tmp_path / "big-data.npz", X=X, y=y)
    np.save(tmp_path / "big-X.npy", X)
    sizes = [features, 16, 2]
    state = {}
    for i, (m, n) in enumerate(itertools.pairwise(sizes)):
        state[f"dense{i + 1}.weight"] = (rng.standard_normal((n, m)) / np.sqrt(m)).astype("f4")
        state[f"dense{i + 1}.bias"] = np.zeros(n, "f4")
    np.savez(tmp_path / "big-weights.npz", **state)
    case.update(sizes=sizes, frozen_first=False, on_disk=str(tmp_path / "big-X.npy"))
    # 60–70 steps of SGD at a modest rate: float32 rounding (sums in another order) stays
    # small. (Adam turns it into steps of order lr where a gradient is near 0: 5e-4 to 9e-3
    # here; the same case in float64 agrees to 1e-11.)
    case["fit"].update(epochs=1, batch_size=1024, validation_split=0.2, clip_grad_norm=None)
    case["optimizer"].update(name="sgd", lr=float(rng.uniform(0.001, 0.01)))
    msg = seeded.msg(json.dumps(case))
    run_cases(tmp_path, {"big": case}, checkpoint_dir=str(tmp_path / "ckpt"))
    for rank in range(RANKS):
        peak = int((tmp_path / f"rank{rank}-big-peak").read_text())
        # A copy of the training rows alone would be 0.8 of X's size.
        assert peak < 0.25 * X.nbytes, f"{msg}: rank {rank} held {peak} bytes, X {X.nbytes}"
    model, _ = fit_case(case, False)
    got, _ = rank_result(tmp_path, 0, "big")
    want = {k: np.asarray(v, np.float64) for k, v in model.state_dict().items()}
    assert_close_states(got, want, "float32", msg)


def test_a_run_without_a_seed_resumes_on_two_ranks_and_on_one(seeded, tmp_path):
    """Rank 0 draws the run's seed; the checkpoints record that none was given (a resume
    draws another), and carry the generators' states and the masks' key."""
    rng = seeded.rng
    case = random_case(rng, tmp_path, "s", dtype="float64", lr_schedule=None, dropout=0.3)
    case["fit"].update(seed=None, epochs=4)
    case["fit"].pop("validation_split", None)  # without a seed, other rows each run
    msg = seeded.msg(json.dumps(case))
    folder = tmp_path / "ckpt"
    run_cases(tmp_path, {"first": case}, checkpoint_dir=str(folder), epochs=2)
    copy = tmp_path / "ckpt-copy"
    copy.mkdir()
    for path in folder.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    run_cases(tmp_path, {"two": case}, checkpoint_dir=str(folder), resume=True)
    two, two_history = rank_result(tmp_path, 0, "two")
    assert len(two_history["history"]["loss"]) == 4, msg
    model, history = fit_case(case, False, checkpoint_dir=copy, resume=True)
    assert history.resumed_from is not None, msg
    # The same run from the same checkpoint: the rest of it alike, on 2 ranks or 1.
    assert_close_states(two, {k: np.asarray(v) for k, v in model.state_dict().items()},
                        "float64", msg)  # fmt: skip


def test_a_dropout_whose_mask_cannot_go_by_row_stops_the_ranks_by_name(seeded, tmp_path):
    """Dropout on a transposed input (features × rows): one process draws it from the
    layer's generator, which K ranks cannot reproduce; refused rather than different."""
    seed = int(seeded.rng.integers(0, 2**31))
    said = failed_job(
        tmp_path / "transposed.py",
        "import numpy as np, wxb\n"
        "from wxb import nn\n"
        "class Across(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.dense, self.drop = nn.Dense(4, 3), nn.Dropout(0.5)\n"
        "    def forward(self, x):\n"
        "        return self.drop(self.dense(x).T).T\n"
        f"rng = np.random.default_rng({seed})\n"
        "X, y = rng.standard_normal((64, 4)), rng.integers(0, 3, 64)\n"
        "wxb.fit(Across(), X, y, loss='cross_entropy', epochs=1, batch_size=16, seed=1,\n"
        "        verbose=False, distributed=True)\n"
        "print('finished')\n",
    )
    assert "its mask cannot be drawn by data row" in said, seeded.msg(said)


def test_a_summed_loss_of_ones_own_is_warned_about_under_ranks(seeded, tmp_path):
    """A loss of one's own with reduction='sum' plus a weight penalty: every rank's value
    is summed, so the penalty counted K times (the weights 3.6 % off one process's after
    three epochs), silently. Warned; the same loss as a mean is not."""
    seed = int(seeded.rng.integers(0, 2**31))
    script = tmp_path / "penalty.py"
    script.write_text(
        "import sys, warnings, numpy as np, wxb\n"
        "from wxb import nn\n"
        "class Penalised(nn.MSELoss):\n"
        "    def __init__(self, model, reduction):\n"
        "        super().__init__(reduction)\n"
        "        self.model = model\n"
        "    def __call__(self, output, target):\n"
        "        penalty = 0.5 * (self.model[0].weight ** 2).sum()\n"
        "        return super().__call__(output, target) + penalty\n"
        f"rng = np.random.default_rng({seed})\n"
        "X, y = rng.standard_normal((24, 3)), rng.standard_normal((24, 1))\n"
        "model = nn.Sequential(nn.Dense(3, 1))\n"
        "with warnings.catch_warnings(record=True) as said:\n"
        "    warnings.simplefilter('always')\n"
        "    wxb.fit(model, X, y, loss=Penalised(model, sys.argv[1]), epochs=1, batch_size=24,\n"
        "            seed=1, verbose=False, distributed=True)\n"
        "n = sum('counts once per rank' in str(w.message) for w in said)\n"
        "sys.stdout.write(f'warned={n};')\n"  # one write: the ranks' output interleaves
    )
    for reduction, expected in (("sum", "1"), ("mean", "0")):
        done = mpiexec([sys.executable, str(script), reduction])
        assert done.returncode == 0, seeded.msg(done.stderr[-3000:])
        said = re.findall(r"warned=(\d+);", done.stdout)
        assert said == [expected, expected], seeded.msg(done.stdout)


def test_an_error_on_one_rank_ends_the_job_at_once_with_that_error(seeded, tmp_path):
    """A user's forward that fails on rank 1 only, mid-run: the other rank waits in a
    collective that never comes, and the job ends now, with rank 1's error and where it
    happened, not after the timeout with a message about something else."""
    seed = int(seeded.rng.integers(0, 2**31))
    failing_step = int(seeded.rng.integers(2, 8))
    start = time.monotonic()
    said = failed_job(
        tmp_path / "one_rank_fails.py",
        "import numpy as np, wxb\n"
        "from wxb import nn\n"
        "from wxb.distributed import Ranks\n"
        "ranks = Ranks()\n"
        "class Fails(nn.Sequential):\n"
        "    calls = 0\n"
        "    def forward(self, x):\n"
        "        Fails.calls += 1\n"
        f"        if ranks.rank == 1 and Fails.calls == {failing_step}:\n"
        "            raise ZeroDivisionError('the user forward failed here')\n"
        "        return super().forward(x)\n"
        f"rng = np.random.default_rng({seed})\n"
        "X, y = rng.standard_normal((256, 4)), rng.integers(0, 3, 256)\n"
        "wxb.fit(Fails(nn.Dense(4, 3)), X, y, loss='cross_entropy', epochs=2, batch_size=16,\n"
        "        seed=1, verbose=False, distributed=ranks,\n"
        f"        checkpoint_dir={str(tmp_path / 'c')!r}, checkpoint_every=1)\n"
        "print('finished', ranks.rank)\n",
        WXB_MPI_TIMEOUT="600",
    )
    took = time.monotonic() - start
    msg = seeded.msg(said)
    assert "wxb: rank 1: the user forward failed here" in said, msg
    assert "ZeroDivisionError" in said and "Traceback" in said, msg  # a bug: where it is
    assert took < 300, f"{msg}: took {took:.1f} s (the timeout is 600 s)"
