"""What the lean stacks save: the planned step and the hand-written loop with them and
without them (the plan's general forward and backward at every step), in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/lean_stack.py
    .venv/bin/python bench/lean_stack.py --quick      # smoke run, well under a minute

Networks: "zero" 4-4-3 at B = 2 (a step with next to no arithmetic: its time is the
Python between the products) and bench/run.py's tiny, small and medium; ReLU between
Dense layers, cross-entropy, float32. "step" is ``wxb.make_step``'s step (what ``fit``
runs); "hand" is ``opt.zero_grad(); loss_fn(model(X), y).backward(); opt.step()``. Each
pair is timed interleaved (``_timing.py``); a figure is the median over rounds. Prints a
Markdown table and writes every figure as JSON (default bench/results/lean_stack.json).
"""

from __future__ import annotations

import argparse
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
from _machine import announce_machine, write_results
from _tables import num, table
from _timing import Plan, interleave
from _workloads import CONFIGS

import wxb
from wxb.nn import CrossEntropyLoss, Dense, ReLU, Sequential
from wxb.nn.sequential import _PLANS
from wxb.optim import SGD, Adam

HERE = Path(__file__).resolve().parent
NETWORKS = {"zero": ((4, 4, 3), 2)} | {
    name: (CONFIGS[name].dims, CONFIGS[name].batch) for name in ("tiny", "small", "medium")
}
OPTIMIZERS = {"SGD": lambda p: SGD(p, lr=0.01), "Adam": lambda p: Adam(p, lr=1e-3)}


def _model(dims: tuple[int, ...]) -> Sequential:
    layers: list = []
    for a, b in pairwise(dims):
        layers += [Dense(a, b), ReLU()]
    return Sequential(*layers[:-1])


def _without_lean(plans: list) -> None:
    """These plans run their general forward and backward at every step from now on."""
    for plan in plans:
        plan._leans, plan._lean_ran = {}, None
        plan._remember_lean = lambda X: None


def _contenders(dims, batch, optimizer, path, X, y) -> dict[str, object]:
    runs = {}
    for lean in (True, False):
        model = _model(dims)
        opt, loss_fn = OPTIMIZERS[optimizer](model.parameters()), CrossEntropyLoss()
        if path == "step":
            step = wxb.make_step(model, loss_fn, opt)
            run = step.__call__  # (X, y)
            run(X, y)
            plans = [step.plan]
        else:

            def run(X, y, model=model, opt=opt, loss_fn=loss_fn) -> float:
                opt.zero_grad()
                loss = loss_fn(model(X), y)
                loss.backward()
                opt.step()
                return loss.item()

            run(X, y)
            plans = _PLANS[model].training
        if not lean:
            _without_lean(plans)
        runs["lean" if lean else "general"] = lambda run=run: run(X, y)
        runs[f"{'lean' if lean else 'general'} plans"] = plans
    return runs


def _check(runs: dict, batch: int) -> None:
    """The lean contender ran on a lean stack, the other on none (else the table lies)."""
    built = [p._leans.get(batch) is not None for p in runs["lean plans"]]
    if not any(built) or any(p._leans for p in runs["general plans"]):
        raise RuntimeError("the contenders did not run as labelled")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of short turns")
    parser.add_argument("--json", default=str(HERE / "results" / "lean_stack.json"))
    args = parser.parse_args(argv)
    plan = Plan(rounds=3, turn_s=0.02, warmup_calls=3) if args.quick else Plan(15, 0.1, 20)
    blas, forced = announce_machine()
    rng = np.random.default_rng(0)
    wxb.manual_seed(0)
    results, rows = {}, []
    networks = ("zero", "tiny") if args.quick else tuple(NETWORKS)
    for name in networks:
        dims, batch = NETWORKS[name]
        X = rng.normal(size=(batch, dims[0])).astype(np.float32)
        y = rng.integers(0, dims[-1], batch)
        for optimizer in OPTIMIZERS:
            for path in ("step", "hand"):
                runs = _contenders(dims, batch, optimizer, path, X, y)
                timings = interleave({k: runs[k] for k in ("lean", "general")}, plan)
                _check(runs, batch)
                lean, general = timings["lean"].median_s, timings["general"].median_s
                key = f"{name} {optimizer} {path}"
                results[key] = {k: t.to_dict() for k, t in timings.items()}
                rows.append(
                    [
                        f"{name} {'-'.join(map(str, dims))} B={batch}",
                        optimizer,
                        path,
                        num(general * 1e6),
                        num(lean * 1e6),
                        num((general - lean) * 1e6),
                        num(general / lean),
                    ]
                )
                print(f"{key}: done", file=sys.stderr)
    print(table(["network", "optimizer", "path", "general µs", "lean µs", "saved µs", "×"], rows))
    print("\ngeneral: the plan's forward and backward at every step; lean: its lean stacks.")
    out = write_results(
        args.json,
        results,
        blas=blas,
        forcing_variables=forced,
        wxb=wxb.__version__,
        plan=plan.__dict__,
    )
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
