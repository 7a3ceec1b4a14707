"""Data-parallel training over MPI against one process: step time, scaling efficiency,
the time spent waiting on the ranks, the optimiser update's share, and whether the
gradient sums overlap the backward pass (measured, not assumed).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/mpi_bench.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/mpi_bench.py --quick

The full run (medium and large, SGD and Adam, 15 rounds) takes about 3 minutes on 2 cores;
--quick (medium only, 3 rounds) about 20 seconds. See bench/README.md for the columns.

(The project's machines set those two variables so that old OpenBLAS builds pick a safe
kernel; benchmarks run without them. The children this script starts never see them.)

It keeps two children alive for the whole run and drives them turn by turn over their
stdin, so that every contender is interleaved with every other one, round after round:

- one process (``--child single``) holding the "1×1" and "1×K" contenders: the plain
  ``wxb.make_step`` step on the global batch of B rows, with 1 BLAS thread pinned to
  one core, and with K threads on K cores (threadpoolctl);
- one MPI job (``mpiexec -n K … --child ranks``), each rank with 1 BLAS thread
  (OPENBLAS_NUM_THREADS=1 and threadpoolctl) pinned to a core of its own, holding
  "K×1": the step ``wxb.fit`` runs distributed on one machine (``GradientSum`` with
  ``SharedGradients``: the flat gradient buffers in MPI shared memory, summed slice by
  slice after the backward pass); "K×1 Allreduce": the same with WXB_MPI_SHARED=0, as
  across machines (each Dense layer's Iallreduce starts from the backward pass as soon
  as that layer's gradients exist); "K×1 deferred": those Iallreduce sums, the same
  buckets, all started only after the backward pass; and "comm": those sums alone, on
  gradients already computed, with no forward or backward at all.

Every contender drives the step the way ``wxb.train._train_epoch`` does: each rank takes
``ranks.share(B)`` rows, ``reducer.begin(rows, B)``, ``step(xb, yb)``. The waits are
timed by a ``Ranks`` subclass (every blocking wait — the gradient sums' ``finish``, the
loss sum ``sum_numbers`` — goes through ``Ranks.wait``), the update by wrapping
``optimizer.step``. Prints Markdown tables; writes JSON (default bench/results/mpi.json).

Pinning (``os.sched_setaffinity`` of the main thread; off with --no-pin) also sizes wxb's
own optimiser update threads, which follow the usable cores: pinned to one core, a
process updates on one thread, as its BLAS does.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from _args import at_least_two, names, positive_int
from _machine import FORCING_VARIABLES, cpu_model, load_average, numpy_blas
from _tables import num, table

HERE = Path(__file__).resolve().parent
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
OPTIMIZERS = ("SGD", "Adam")
CONFIG_NAMES = ("tiny", "small", "medium", "large")  # _workloads.CONFIGS (not imported here)
SETTLE_S = 0.15  # as _timing.SETTLE_S: thread pools stop spinning before the next turn
TARGET = ("large", 0.85)  # the goal: efficiency against 1×1 on large
REPLY_TIMEOUT_S = 600.0
NOISY = 0.15  # other work above this share of one core while timing: say so in bold


@dataclass(frozen=True)
class Settings:
    rounds: int
    warmup_steps: int  # per contender, before any turn (their losses are compared)
    steps_per_turn: dict[str, int] = field(default_factory=dict)  # timed steps, per config

    def steps(self, config: str) -> int:
        return self.steps_per_turn.get(config, 10)


FULL = Settings(
    rounds=15, warmup_steps=3, steps_per_turn={"tiny": 40, "small": 20, "medium": 10, "large": 3}
)
QUICK = Settings(
    rounds=3, warmup_steps=2, steps_per_turn={"tiny": 10, "small": 6, "medium": 4, "large": 1}
)


# == the children ======================================================================
# Everything heavy (NumPy, wxb, mpi4py, _workloads with its PyTorch) is imported here only.

FIELDS = ("step_s", "update_s", "finish_s", "wait_s", "post_s")


def child_main(args: argparse.Namespace) -> None:
    """Build every contender, warm them up, then run the turns the parent asks for."""
    out = sys.stdout
    sys.stdout = sys.stderr  # stray prints must not break the protocol on stdout
    import numpy as np
    import threadpoolctl

    import wxb
    from wxb.distributed import GradientSum, Ranks
    from wxb.nn import CrossEntropyLoss, Dense
    from wxb.optim import update_threads
    from wxb.step import PlannedStep

    sys.path.insert(0, str(HERE))
    from _workloads import CONFIGS, random_batch, wxb_model, wxb_optimizer

    cores = sorted(os.sched_getaffinity(0))
    K = args.ranks

    class Meter:
        """Seconds accumulated by one contender (update, finish) and by the ranks (waits)."""

        def __init__(self) -> None:
            self.update_s = self.finish_s = 0.0

    class TimedRanks(Ranks):
        """Ranks that add up the time inside the blocking waits and the non-blocking calls."""

        def __init__(self) -> None:
            super().__init__()
            self.wait_s = self.post_s = 0.0

        def wait(self, requests: list[Any], what: str) -> None:
            start = time.perf_counter()
            try:
                super().wait(requests, what)
            finally:
                self.wait_s += time.perf_counter() - start

        def start_sum(self, array: np.ndarray) -> None:
            start = time.perf_counter()
            super().start_sum(array)
            self.post_s += time.perf_counter() - start

        def progress(self) -> None:
            start = time.perf_counter()
            super().progress()
            self.post_s += time.perf_counter() - start

    class DeferredSum(GradientSum):
        """The same buckets as GradientSum, all started after the backward pass."""

        def begin(self, rows: int, batch_rows: int) -> None:
            super().begin(rows, batch_rows)
            self._layers: list[list[Any]] = []

        def layer_done(self, layer_params: list[Any]) -> None:
            self._layers.append(layer_params)  # nothing starts during the backward

        def finish(self, value: float, output: Any, y: Any) -> float:
            for params in self._layers:
                super().layer_done(params)
            self._layers = []
            return super().finish(value, output, y)

    ranks = TimedRanks() if args.child == "ranks" else None
    if ranks is not None and ranks.size != K:
        raise SystemExit(f"started with {ranks.size} ranks, told {K}")
    controller = threadpoolctl.ThreadpoolController()

    def pin(wanted: list[int]) -> None:
        if not args.no_pin:
            os.sched_setaffinity(0, wanted)

    def count_correct(output: np.ndarray, y: np.ndarray) -> int:
        return int(np.count_nonzero(np.argmax(output, axis=1) == y))

    def build(config: Any, optimizer: str, meter: Meter) -> tuple[Any, Any, Any]:
        model = wxb_model(config.dims)  # seed 0 everywhere: the same initial weights
        opt = wxb_optimizer(optimizer, model.parameters())
        step = wxb.make_step(model, CrossEntropyLoss(), opt)
        if not isinstance(step, PlannedStep):
            raise SystemExit(f"expected the planned step, got {type(step).__name__}")
        update = opt.step

        def timed_update() -> None:
            start = time.perf_counter()
            update()
            meter.update_s += time.perf_counter() - start

        opt.step = timed_update  # the step calls optimizer.step(): this one
        return model, opt, step

    def reducer_for(kind: type, opt: Any, meter: Meter, shared: bool = True) -> Any:
        """``shared``: the sums in shared memory (wxb's default on one machine), else by
        Iallreduce per layer, as across machines (WXB_MPI_SHARED=0)."""
        os.environ["WXB_MPI_SHARED"] = "1" if shared else "0"
        reducer = kind(ranks, opt, mean_loss=True, count_correct=count_correct, planned=True)
        os.environ.pop("WXB_MPI_SHARED")
        finish = reducer.finish

        def timed_finish(value: float, output: Any, y: Any) -> float:
            start = time.perf_counter()
            try:
                return finish(value, output, y)
            finally:
                meter.finish_s += time.perf_counter() - start

        reducer.finish = timed_finish
        return reducer

    contenders: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for name in args.configs.split(","):
        config = CONFIGS[name]
        X, y = random_batch(config)
        B = len(X)
        for optimizer in args.optimizers.split(","):
            case: dict[str, dict[str, Any]] = {}
            if ranks is None:
                for threads in sorted({1, K}):
                    meter = Meter()
                    model, opt, step = build(config, optimizer, meter)
                    case[f"1x{threads}"] = {
                        "run": lambda step=step, X=X, y=y: step(X, y),
                        "meter": meter,
                        "model": model,
                        "threads": threads,
                        "cores": cores[:threads],
                    }
            else:
                share = ranks.share(B)
                xb, yb = np.ascontiguousarray(X[share]), y[share].copy()
                for label, kind, shared in (
                    (f"{K}x1", GradientSum, True),
                    (f"{K}x1-allreduce", GradientSum, False),
                    (f"{K}x1-deferred", DeferredSum, False),
                ):
                    meter = Meter()
                    model, opt, step = build(config, optimizer, meter)
                    step.reducer = reducer_for(kind, opt, meter, shared)

                    def run(step: Any = step, xb: Any = xb, yb: Any = yb, B: int = B) -> float:
                        step.reducer.begin(len(xb), B)
                        return step(xb, yb)

                    case[label] = {"run": run, "meter": meter, "model": model}
                # the sums alone, on gradients already there (zeros: their values don't
                # change MPI's work), the buckets started in the backward's order
                meter = Meter()
                model, opt, step = build(config, "SGD", meter)
                step(xb, yb)  # no reducer yet: fills the flat gradient buffer
                opt.flat.grad[...] = 0
                reducer = reducer_for(GradientSum, opt, meter, shared=False)
                layers = zip(step.plan.layers, step.plan.layer_params, strict=True)
                dense = [params for layer, params in layers if isinstance(layer, Dense)]

                def comm(
                    reducer: Any = reducer, dense: list = dense, rows: int = len(xb), B: int = B
                ) -> float:
                    reducer.begin(rows, B)
                    for params in reversed(dense):
                        reducer.layer_done(params)
                    return reducer.finish(0.0, None, None)

                case["comm"] = {"run": comm, "meter": meter, "model": model, "warmup": False}
            contenders[(name, optimizer)] = case

    def prepare(contender: dict[str, Any]) -> None:
        if ranks is None:
            controller.limit(limits=contender["threads"])
            pin(contender["cores"])

    def comm_seconds() -> tuple[float, float]:
        """Seconds so far in the ranks' blocking waits and in their non-blocking calls."""
        return (ranks.wait_s, ranks.post_s) if ranks is not None else (0.0, 0.0)

    def timed_steps(contender: dict[str, Any], steps: int) -> tuple[dict[str, list], float]:
        meter, run = contender["meter"], contender["run"]
        record: dict[str, list] = {key: [] for key in FIELDS}
        loss = float("nan")
        for _ in range(steps):
            update, finish, (wait, post) = meter.update_s, meter.finish_s, comm_seconds()
            start = time.perf_counter()
            loss = run()
            record["step_s"].append(time.perf_counter() - start)
            wait_now, post_now = comm_seconds()
            record["update_s"].append(meter.update_s - update)
            record["finish_s"].append(meter.finish_s - finish)
            record["wait_s"].append(wait_now - wait)
            record["post_s"].append(post_now - post)
        return record, float(loss)

    # -- start: pin, thread counts, warm-up ---------------------------------------------------
    if ranks is not None:
        controller.limit(limits=1)
        pin([cores[ranks.rank % len(cores)]])
    warmup: dict[str, dict[str, list[float]]] = {}
    for (name, optimizer), case in contenders.items():
        losses = {}
        for label, contender in case.items():
            prepare(contender)
            values = [float(contender["run"]()) for _ in range(args.warmup)]
            if contender.get("warmup", True):
                losses[label] = values
        warmup[f"{name}:{optimizer}"] = losses
    info = child_info(np, wxb, update_threads, ranks)
    if ranks is not None:
        info["ranks"] = ranks.comm.gather(info["process"], root=0)
    if ranks is None or ranks.leader:
        send(out, {"ready": True, "info": info, "warmup": warmup})

    # -- the turns --------------------------------------------------------------------------------
    while True:
        command = receive(ranks, np)
        if command["op"] == "end":
            break
        case = contenders[(command["config"], command["optimizer"])]
        contender = case[command["contender"]]
        prepare(contender)
        time.sleep(SETTLE_S)  # the previous contender's threads stop spinning
        contender["run"]()  # and this one's wake up (and the ranks meet)
        record, loss = timed_steps(contender, command["steps"])
        records = [record] if ranks is None else ranks.comm.gather(record, root=0)
        if ranks is None or ranks.leader:
            send(out, {"records": records, "loss": loss})

    same: dict[str, bool] = {}
    if ranks is not None:  # every rank must hold the same weights after all those steps
        for (name, optimizer), case in contenders.items():
            for label, contender in case.items():
                if label == "comm":  # its one step was each rank's own, by design
                    continue
                try:
                    ranks.check_same([p.data for p in contender["model"].parameters()], label)
                    same[f"{name}:{optimizer}:{label}"] = True
                except Exception:
                    same[f"{name}:{optimizer}:{label}"] = False
    if ranks is None or ranks.leader:
        send(out, {"end": True, "same_weights": same})


def child_info(np: Any, wxb: Any, update_threads: Callable, ranks: Any) -> dict[str, Any]:
    """The BLAS this process loaded, its environment's forcing variables, MPI's make-up."""
    blas = numpy_blas()
    info: dict[str, Any] = {
        "numpy": np.__version__,
        "blas": {k: blas.get(k) for k in ("internal_api", "version", "architecture", "prefix")},
        "forcing_variables": {k: os.environ[k] for k in FORCING_VARIABLES if k in os.environ},
        "thread_variables": {k: os.environ[k] for k in THREAD_VARIABLES if k in os.environ},
        "wxb": wxb.__version__,
        "wxb_kernels": wxb.kernels.route(),
        "python": sys.version.split()[0],
        "process": {
            "pid": os.getpid(),
            "affinity": sorted(os.sched_getaffinity(0)),
            "blas_threads": blas.get("num_threads"),
            "update_threads": update_threads(),
        },
    }
    if ranks is not None:
        import mpi4py

        MPI = ranks.MPI
        levels = {
            MPI.THREAD_SINGLE: "single",
            MPI.THREAD_FUNNELED: "funneled",
            MPI.THREAD_SERIALIZED: "serialized",
            MPI.THREAD_MULTIPLE: "multiple",
        }
        info["mpi"] = {
            "library": "; ".join(
                " ".join(line.split())
                for line in MPI.Get_library_version().splitlines()
                if line.startswith(("MPICH Version", "MPICH Device", "Open MPI"))
            )
            or " ".join(MPI.Get_library_version().split()[:4]),
            "library_version": MPI.Get_library_version().strip(),
            "mpi4py": mpi4py.__version__,
            "thread_level": levels.get(MPI.Query_thread(), str(MPI.Query_thread())),
            "size": ranks.size,
            "cvars": {k: v for k, v in os.environ.items() if k.startswith("MPIR_CVAR_")},
            "async_progress": os.environ.get("MPIR_CVAR_ASYNC_PROGRESS", "0") not in ("", "0"),
        }
    return info


def send(out: TextIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def receive(ranks: Any, np: Any) -> dict[str, Any]:
    """The parent's next command: rank 0 reads it from stdin (mpiexec forwards stdin to
    rank 0 only) and broadcasts it; the others poll for it with pauses, so an idle rank
    does not take a core from the contender being timed."""
    if ranks is None:
        return json.loads(sys.stdin.readline() or '{"op": "end"}')
    buffer = np.zeros(1 << 12, np.uint8)
    if ranks.leader:
        data = (sys.stdin.readline() or '{"op": "end"}').encode()
        buffer[: len(data)] = np.frombuffer(data, np.uint8)
    request = ranks.comm.Ibcast(buffer, root=0)
    while not request.Test():
        time.sleep(0.005)
    return json.loads(bytes(buffer).rstrip(b"\0"))


# == the parent ========================================================================
class Child:
    """A child process (or MPI job) answering one JSON line per command."""

    def __init__(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            bufsize=1,
            cwd=HERE.parent,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.startswith("{"):
                self.lines.put(line)
            else:  # not ours: pass it on
                sys.stderr.write(f"[{self.name}] {line}")
        self.lines.put(None)

    def reply(self) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=REPLY_TIMEOUT_S)
        except queue.Empty:
            raise RuntimeError(f"{self.name}: no answer in {REPLY_TIMEOUT_S:g} s") from None
        if line is None:
            raise RuntimeError(f"{self.name} stopped (exit status {self.process.wait()})")
        return json.loads(line)

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self.reply()

    def end(self) -> dict[str, Any]:
        answer = self.ask({"op": "end"})
        self.process.stdin.close()
        self.process.wait(timeout=120)
        return answer

    def stop(self) -> None:
        """End this child alone: SIGTERM first (mpiexec then stops its ranks), then SIGKILL."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def cpu_times() -> list[int] | None:
    """The first line of /proc/stat: user nice system idle iowait irq softirq steal …"""
    try:
        return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None


def tree_ticks(root: int) -> int | None:
    """CPU ticks (user + system, every thread) of ``root`` and the processes under it."""
    parents, ticks = {}, {}
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:
        return None
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            parents[int(entry.name)] = int(fields[1])
            ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            continue
    below: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        below.setdefault(parent, []).append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += ticks.get(pid, 0)
        stack.extend(below.get(pid, []))
    return total


class Others:
    """CPU time the rest of the machine used (all busy time in /proc/stat minus this run's
    process tree), and the hypervisor's steal: how noisy the machine was."""

    HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self) -> None:
        self.start = self.last = self.mark()

    def mark(self) -> tuple[list[int] | None, int | None, float]:
        return cpu_times(), tree_ticks(os.getpid()), time.perf_counter()

    @classmethod
    def between(cls, a: tuple, b: tuple) -> dict[str, float | None]:
        (stat_a, tree_a, t_a), (stat_b, tree_b, t_b) = a, b
        if not stat_a or not stat_b or tree_a is None or tree_b is None or len(stat_a) < 8:
            return {"seconds": t_b - t_a, "others_cpu_s": None, "steal_share": None}
        delta = [y - x for x, y in zip(stat_a, stat_b, strict=False)]
        busy = delta[0] + delta[1] + delta[2] + delta[5] + delta[6]
        total = sum(delta[:8])
        return {
            "seconds": t_b - t_a,
            "others_cpu_s": max(0, busy - (tree_b - tree_a)) / cls.HZ,
            "steal_share": delta[7] / total if total else None,
        }

    def since_last(self) -> dict[str, float | None]:
        now = self.mark()
        period, self.last = self.between(self.last, now), now
        return period

    def whole(self) -> dict[str, float | None]:
        return self.between(self.start, self.mark())


def mpiexec_path(given: str | None) -> str:
    if given:
        return given
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if not found:
        raise SystemExit("no mpiexec next to this Python or on PATH: pip install 'wxb[mpi]'")
    return found


def progress(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


def run_parent(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    settings = QUICK if args.quick else FULL
    if args.rounds:
        settings = Settings(args.rounds, settings.warmup_steps, settings.steps_per_turn)
    configs = args.configs or (["medium"] if args.quick else ["medium", "large"])
    optimizers = args.optimizers or list(OPTIMIZERS)
    K = args.ranks
    usable = sorted(os.sched_getaffinity(0))
    if K > len(usable):
        print(
            f"WARNING: {K} ranks on {len(usable)} usable cores: they share cores", file=sys.stderr
        )

    base = {k: v for k, v in os.environ.items() if k not in FORCING_VARIABLES + THREAD_VARIABLES}
    script = [sys.executable, str(Path(__file__).resolve())]
    common = [
        "--configs",
        ",".join(configs),
        "--optimizers",
        ",".join(optimizers),
        "--warmup",
        str(settings.warmup_steps),
        "--ranks",
        str(K),
    ]
    common += ["--no-pin"] if args.no_pin else []
    one_thread = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    results: dict[str, Any] = {
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
        "quick": args.quick,
        "ranks": K,
        "configs": configs,
        "optimizers": optimizers,
        "settings": asdict(settings),
        "pinned": not args.no_pin,
        "cpu": cpu_model(),
        "usable_cores": usable,
        "parent_forcing_variables": {
            k: os.environ[k] for k in FORCING_VARIABLES if k in os.environ
        },
        "load_average_start": load_average(),
    }
    others = Others()
    progress(f"starting 1 process and {K} MPI ranks (imports and warm-up)")
    single = Child("single", [*script, "--child", "single", *common], base)
    ranks = Child(
        "ranks",
        [mpiexec_path(args.mpiexec), "-n", str(K), *script, "--child", "ranks", *common],
        {**base, **one_thread},
    )
    children = (single, ranks)
    try:
        ready = {child.name: child.reply() for child in children}
        results["children"] = {name: r["info"] for name, r in ready.items()}
        warmup = {
            case: {**ready["single"]["warmup"][case], **ready["ranks"]["warmup"][case]}
            for case in ready["single"]["warmup"]
        }
        results["warmup_losses"] = warmup
        labels = [
            ("single", "1x1"),
            ("single", f"1x{K}"),
            ("ranks", f"{K}x1"),
            ("ranks", f"{K}x1-allreduce"),
            ("ranks", f"{K}x1-deferred"),
            ("ranks", "comm"),
        ]
        turns: dict[str, dict[str, list[dict[str, list]]]] = {
            f"{c}:{o}": {label: [] for _, label in labels} for c in configs for o in optimizers
        }
        results["turns"], results["load_per_round"], results["others_per_round"] = turns, [], []
        others.since_last()  # the rounds from here: start-up and warm-up not counted
        who = dict(zip(("single", "ranks"), children, strict=True))
        for round_index in range(settings.rounds):
            progress(f"round {round_index + 1}/{settings.rounds}, load {load_average()}")
            results["load_per_round"].append(load_average())
            for case_index, (config, optimizer) in enumerate(
                (c, o) for c in configs for o in optimizers
            ):
                shift = (round_index + case_index) % len(labels)
                for kind, label in labels[shift:] + labels[:shift]:
                    answer = who[kind].ask(
                        {
                            "op": "turn",
                            "config": config,
                            "optimizer": optimizer,
                            "contender": label,
                            "steps": settings.steps(config),
                        }
                    )
                    turns[f"{config}:{optimizer}"][label].append(answer["records"])
            results["others_per_round"].append(others.since_last())
        results["others"] = others.whole()  # before the children leave the process tree
        results["same_weights"] = ranks.end()["same_weights"]
        single.end()
    except BaseException:
        for child in children:
            child.stop()
        raise
    results["load_average_end"] = load_average()
    results["elapsed_s"] = time.perf_counter() - started
    results["summary"] = [summarise(case, turns[case], K) for case in turns]
    results["checks"] = checks(results, K)
    print(render(results, settings) + "\n", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(f"Total {results['elapsed_s']:.0f} s; JSON: {args.json}")
    return 0


# -- the figures ----------------------------------------------------------------------------------
def steps_of(turns: list[list[dict[str, list]]], rank: int = 0) -> dict[str, list[float]]:
    """Every timed step of one contender (one rank's), its turns joined."""
    return {key: [v for turn in turns for v in turn[rank][key]] for key in FIELDS}


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def shares(steps: dict[str, list[float]], key: str) -> float:
    """The median over steps of ``key``'s share of the step."""
    return median([part / whole for part, whole in zip(steps[key], steps["step_s"], strict=True)])


def breakdown(turns: list[list[dict[str, list]]], rank: int) -> dict[str, float]:
    s = steps_of(turns, rank)
    compute = [t - f - u for t, f, u in zip(s["step_s"], s["finish_s"], s["update_s"], strict=True)]
    return {
        "step_s": median(s["step_s"]),
        "forward_backward_s": median(compute),  # everything before finish, layer_done included
        "finish_s": median(s["finish_s"]),
        "wait_s": median(s["wait_s"]),
        "post_s": median(s["post_s"]),
        "update_s": median(s["update_s"]),
        "wait_share": shares(s, "wait_s"),
        "update_share": shares(s, "update_s"),
        "steps": len(s["step_s"]),
    }


def summarise(case: str, turns: dict[str, list], K: int) -> dict[str, Any]:
    config, optimizer = case.split(":")
    ranks_of = {label: len(t[0]) if t else 0 for label, t in turns.items()}
    per = {label: [breakdown(t, r) for r in range(ranks_of[label])] for label, t in turns.items()}
    T = {label: p[0]["step_s"] for label, p in per.items()}
    t11, tk1, deferred = T["1x1"], T[f"{K}x1"], T[f"{K}x1-deferred"]
    allreduce = T[f"{K}x1-allreduce"]
    wait = max(p["wait_s"] for p in per[f"{K}x1"])
    return {
        "config": config,
        "optimizer": optimizer,
        "median_step_s": T,
        "per_rank": per,
        "efficiency": t11 / (K * tk1),
        "speedup_vs_1xK": T[f"1x{K}"] / tk1,
        "speedup_vs_1x1": t11 / tk1,
        "efficiency_without_wait": t11 / (K * (tk1 - wait)),
        "allreduce_efficiency": t11 / (K * allreduce),
        "overlap": {
            "step_s": allreduce,
            "deferred_step_s": deferred,
            "saved_s": deferred - allreduce,
            "comm_alone_s": T["comm"],
            "hidden_share": (deferred - allreduce) / T["comm"],
        },
    }


def checks(results: dict[str, Any], K: int) -> dict[str, Any]:
    """The ranks' losses in warm-up against one process's, and the ranks' weights."""
    worst = 0.0
    for losses in results["warmup_losses"].values():
        for label in (f"{K}x1", f"{K}x1-allreduce", f"{K}x1-deferred"):
            for a, b in zip(losses["1x1"], losses[label], strict=True):
                worst = max(worst, abs(a - b) / max(abs(a), 1e-30))
    return {
        "warmup_loss_max_relative_difference": worst,
        "weights_same_on_every_rank": all(results["same_weights"].values()),
    }


# -- Markdown -----------------------------------------------------------------------------------
def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def noise(results: dict[str, Any]) -> str:
    """CPU time outside this run's processes, over the rounds and in the worst round."""
    whole, rounds = results["others"], results["others_per_round"]
    if whole["others_cpu_s"] is None:
        return "unknown (needs Linux /proc)"
    worst = max(rounds, key=lambda r: r["others_cpu_s"] / r["seconds"])
    share = whole["others_cpu_s"] / whole["seconds"]
    steal = "?" if whole["steal_share"] is None else pct(whole["steal_share"])
    text = (
        f"{whole['others_cpu_s']:.1f} CPU-s over {whole['seconds']:.0f} s ({pct(share)} of one "
        f"core on average; worst round {pct(worst['others_cpu_s'] / worst['seconds'])}); "
        f"hypervisor steal {steal}"
    )
    if share > NOISY:
        text += " — **a busy machine: these figures are not a quiet run's; run again**"
    return text


def render(results: dict[str, Any], settings: Settings) -> str:
    K = results["ranks"]
    single, ranks = results["children"]["single"], results["children"]["ranks"]
    mpi = ranks["mpi"]
    blas = single["blas"]
    kernel = (
        blas["architecture"]
        if blas["architecture"] == ranks["blas"]["architecture"]
        else (f"{blas['architecture']} (1 process), {ranks['blas']['architecture']} (ranks)")
    )
    removed = results["parent_forcing_variables"]
    steps = ", ".join(f"{c} {settings.steps(c)}" for c in results["configs"])
    rank_cores = [r["affinity"] for r in ranks["ranks"]]
    rank_updates = sorted({r["update_threads"] for r in ranks["ranks"]})
    header = [
        f"# wxb data-parallel training: {K} MPI ranks against 1 process"
        + (" (quick)" if results["quick"] else ""),
        "",
        f"- CPU: {results['cpu']}; usable cores {results['usable_cores']}",
        f"- NumPy {single['numpy']}; BLAS {blas['internal_api']} {blas['version']} "
        f"({blas['prefix']}), kernel {kernel}, OpenBLAS's own choice"
        + (f" (the children ran without {removed})" if removed else ""),
        f"- MPI: {mpi['library']}; mpi4py {mpi['mpi4py']}; thread level {mpi['thread_level']}; "
        f"async progress thread: {'on' if mpi['async_progress'] else 'off'}",
        f"- wxb {single['wxb']}; element-wise kernels: {single['wxb_kernels']}; Python "
        f"{single['python']}",
        f"- pinning: {'on' if results['pinned'] else 'OFF (--no-pin)'}; 1×1 on core(s) "
        f"{results['usable_cores'][:1] if results['pinned'] else 'any'}, ranks on {rank_cores}; "
        f"wxb's optimiser update threads per rank: {rank_updates}",
        f"- timing: {settings.rounds} interleaved rounds; each turn a {SETTLE_S:g} s pause, "
        f"one untimed step, then timed steps ({steps}); {settings.warmup_steps} warm-up "
        "steps per contender first; figures are medians over all timed steps",
        f"- load average (1, 5, 15 min): {results['load_average_start']} at the start, "
        f"{results['load_average_end']} at the end (this run's own processes count in it)",
        f"- other work on the machine while timing: {noise(results)}",
    ]
    rows = []
    for s in results["summary"]:
        T, r0 = s["median_step_s"], s["per_rank"][f"{K}x1"]
        rows.append(
            [
                s["config"],
                s["optimizer"],
                num(T["1x1"] * 1e3),
                num(T[f"1x{K}"] * 1e3),
                num(T[f"{K}x1"] * 1e3),
                f"{s['efficiency']:.2f}",
                f"{s['speedup_vs_1xK']:.2f}",
                " / ".join(pct(r["wait_share"]) for r in r0),
                pct(r0[0]["update_share"]),
                pct(s["per_rank"]["1x1"][0]["update_share"]),
                f"{s['efficiency_without_wait']:.2f}",
                num(T[f"{K}x1-allreduce"] * 1e3),
                f"{s['allreduce_efficiency']:.2f}",
            ]
        )
    scaling = table(
        [
            "config",
            "optimizer",
            "1×1 ms",
            f"1×{K} ms",
            f"{K}×1 ms",
            "efficiency",
            f"speed-up vs 1×{K}",
            f"{K}×1 wait (per rank)",
            f"{K}×1 update",
            "1×1 update",
            "efficiency w/o wait",
            f"{K}×1 Allreduce ms",
            "Allreduce efficiency",
        ],
        rows,
        text_columns=2,
    )
    rows = []
    for s in results["summary"]:
        o, per = s["overlap"], s["per_rank"]
        rows.append(
            [
                s["config"],
                s["optimizer"],
                num(o["step_s"] * 1e3),
                num(o["deferred_step_s"] * 1e3),
                num(o["saved_s"] * 1e3),
                num(o["comm_alone_s"] * 1e3),
                pct(o["hidden_share"]),
                " / ".join(num(r["wait_s"] * 1e3) for r in per[f"{K}x1-allreduce"]),
                " / ".join(num(r["wait_s"] * 1e3) for r in per[f"{K}x1-deferred"]),
                " / ".join(num(r["wait_s"] * 1e3) for r in per["comm"]),
            ]
        )
    overlap = table(
        [
            "config",
            "optimizer",
            "in backward ms",
            "after backward ms",
            "saved ms",
            "comm alone ms",
            "hidden",
            "wait ms in bwd",
            "wait ms after",
            "wait ms comm alone",
        ],
        rows,
        text_columns=2,
    )
    rows = []
    for s in results["summary"]:
        for label in (f"{K}x1", f"{K}x1-allreduce", f"{K}x1-deferred"):
            for rank, r in enumerate(s["per_rank"][label]):
                rows.append(
                    [
                        s["config"],
                        s["optimizer"],
                        label.replace("x", "×"),
                        str(rank),
                        num(r["step_s"] * 1e3),
                        num(r["forward_backward_s"] * 1e3),
                        num(r["post_s"] * 1e3),
                        num(r["finish_s"] * 1e3),
                        num(r["wait_s"] * 1e3),
                        num(r["update_s"] * 1e3),
                        str(r["steps"]),
                    ]
                )
    parts = table(
        [
            "config",
            "optimizer",
            "contender",
            "rank",
            "step ms",
            "fwd+bwd ms",
            "start+poll ms",
            "finish ms",
            "of which wait ms",
            "update ms",
            "steps",
        ],
        rows,
        text_columns=3,
    )
    target_config, goal = TARGET
    met = [
        f"{s['optimizer']} {s['efficiency']:.2f} "
        + ("(met)" if s["efficiency"] >= goal else "(NOT met)")
        for s in results["summary"]
        if s["config"] == target_config
    ]
    c = results["checks"]
    notes = [
        f"efficiency = T(1×1) / ({K} · T({K}×1)); speed-up vs 1×{K} = T(1×{K}) / T({K}×1); "
        f"the global batch is B rows in every case. Wait: the median share of a step spent in "
        "Ranks.wait (the gradient sums' finish and the loss sum); update: optimizer.step, "
        "which every rank runs whole. Efficiency w/o wait: the same with rank 0's median wait "
        "taken off the step.",
        "Overlap: 'in backward' is wxb's GradientSum (each Dense layer's Iallreduce starts in "
        "the backward pass as soon as its gradients are written); 'after backward' starts the "
        "same buckets only in finish(); 'comm alone' runs those sums (and the loss sum) with "
        "no forward or backward. hidden = (after − in backward) / comm alone: the share of the "
        "communication the backward pass hid.",
        "MPI progress: "
        + (
            "MPICH's async progress thread is ON (MPIR_CVAR_ASYNC_PROGRESS), so sums may "
            "also move between MPI calls. "
            if mpi["async_progress"]
            else "MPICH advances a non-blocking collective only inside MPI calls (no async "
            "progress thread here). "
        )
        + "wxb makes them in GradientSum.layer_done (one "
        "MPI_Testall after each Dense layer's gradients) and in Ranks.wait (MPI_Testall in a "
        "loop: spinning for 50 ms, then sleeping up to 10 ms between polls); none during the "
        "BLAS products of the backward pass. start+poll: time in those calls outside the "
        "waits (Iallreduce posting, MPI_Testall): inside the backward for "
        f"{K}×1 (counted in fwd+bwd), inside finish for deferred.",
        f"Target (efficiency ≥ {goal} against 1×1 on {target_config}): "
        + ("; ".join(met) if met else f"{target_config} not run")
        + ".",
        f"Checks: warm-up losses of the ranks against 1 process, largest relative difference "
        f"{c['warmup_loss_max_relative_difference']:.2e}; weights the same on every rank at the "
        f"end: {'yes' if c['weights_same_on_every_rank'] else 'NO'}.",
    ]
    return (
        "\n".join(header)
        + "\n\n"
        + "\n\n".join(
            [
                f"## Step time and scaling (float32, cross-entropy, one fixed batch)\n\n{scaling}",
                f"## Communication overlap with the backward pass ({K} ranks)\n\n{overlap}",
                f"## Where a {K}-rank step goes (medians, each rank)\n\n{parts}",
                "\n".join(f"- {n}" for n in notes),
            ]
        )
    )


# -- arguments -------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: medium only, 3 rounds, fewer steps"
    )
    parser.add_argument(
        "--configs",
        type=names(CONFIG_NAMES),
        help="comma-separated (default medium,large; --quick: medium)",
    )
    parser.add_argument("--optimizers", type=names(OPTIMIZERS), help="default: SGD,Adam")
    parser.add_argument("--ranks", type=at_least_two, default=2, help="K ≥ 2 (default 2)")
    parser.add_argument("--rounds", type=positive_int, help="interleaved rounds (default 15; 3)")
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="leave every process on all cores (wxb's update threads then size "
        "themselves by all of them, as under a plain mpiexec)",
    )
    parser.add_argument("--mpiexec", help="default: the one next to this Python, else PATH's")
    parser.add_argument(
        "--json",
        type=Path,
        default=HERE / "results" / "mpi.json",
        help="where the results go (default bench/results/mpi.json)",
    )
    parser.add_argument("--child", choices=("single", "ranks"), help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # the children get the lists as text
        args.configs = ",".join(args.configs or [])
        args.optimizers = ",".join(args.optimizers or [])
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child_main(args)
        return 0
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())
