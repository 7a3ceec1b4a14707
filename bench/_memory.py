"""Memory of training runs, each measured in a fresh process that run.py starts:
``python bench/_memory.py {peak,growth} PATH --config NAME --optimizer NAME --steps N
--threads N`` prints one JSON result. It imports only what its contender needs.

Linux only: resident sizes come from /proc/self/status. The peak (VmHWM) is reset to
the current size right before training (``/proc/self/clear_refs``), so what imports
and data creation briefly held does not count; the extra peak is VmHWM − VmRSS then.
"""

from __future__ import annotations

import argparse
import json
import resource
import tracemalloc

import numpy as np
import threadpoolctl
from _machine import STATUS, reset_peak, resident_kib
from _workloads import CONFIGS, TRAINING_PATHS, Config, TrainingStep, random_batch, torch_loop


def available() -> bool:
    return STATUS.exists()


def training_step(
    path: str, config: Config, optimizer: str, X: np.ndarray, y: np.ndarray
) -> TrainingStep:
    """A contender's step on the batch (X, y); PyTorch keeps its own initial weights here,
    so no wxb model is built in its process."""
    if path == "torch":
        return torch_loop(config, optimizer, X, y, same_weights=False)
    return TRAINING_PATHS[path](config, optimizer, X, y)


def peak(path: str, config: Config, optimizer: str, steps: int) -> dict[str, object]:
    """Extra peak resident size of ``steps`` training steps above the size before them.

    The batch is made before the baseline is read; the model, optimiser and every
    buffer of training come after it.
    """
    X, y = random_batch(config)
    baseline = resident_kib()["VmRSS"]
    peak_was_reset = reset_peak()
    step = training_step(path, config, optimizer, X, y)
    for _ in range(steps):
        loss = step()
    sizes = resident_kib()
    return {
        "path": path,
        "steps": steps,
        "baseline_rss_kib": baseline,
        "peak_rss_kib": sizes["VmHWM"],
        "final_rss_kib": sizes["VmRSS"],
        "extra_peak_kib": sizes["VmHWM"] - baseline,
        "peak_was_reset": peak_was_reset,
        "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "final_loss": loss,
    }


def growth(
    path: str, config: Config, optimizer: str, steps: int, early: int = 10
) -> dict[str, object]:
    """Traced Python/NumPy memory and resident size after step ``early`` and after the last."""
    step = training_step(path, config, optimizer, *random_batch(config))
    step()  # the first step loads the compiled kernels: slow under tracemalloc, and not growth
    tracemalloc.start()
    for index in range(2, steps + 1):
        step()
        if index == early:
            traced_early, rss_early = tracemalloc.get_traced_memory()[0], resident_kib()["VmRSS"]
    traced_end, rss_end = tracemalloc.get_traced_memory()[0], resident_kib()["VmRSS"]
    tracemalloc.stop()
    return {
        "path": path,
        "early_step": early,
        "steps": steps,
        "traced_early_bytes": traced_early,
        "traced_end_bytes": traced_end,
        "traced_delta_bytes": traced_end - traced_early,
        "rss_early_kib": rss_early,
        "rss_end_kib": rss_end,
        "rss_delta_kib": rss_end - rss_early,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One memory measurement, printed as JSON.")
    parser.add_argument("kind", choices=("peak", "growth"))
    parser.add_argument("path", choices=tuple(TRAINING_PATHS))
    parser.add_argument("--config", choices=tuple(CONFIGS), required=True)
    parser.add_argument("--optimizer", required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args(argv)
    measure = {"peak": peak, "growth": growth}[args.kind]
    with threadpoolctl.threadpool_limits(limits=args.threads):
        if args.path == "torch":
            import torch

            torch.set_num_threads(args.threads)
        result = measure(args.path, CONFIGS[args.config], args.optimizer, args.steps)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
