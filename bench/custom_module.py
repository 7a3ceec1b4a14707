"""PyTorch's MNIST example as a PyTorch user first ports it: a module of one's own
(x.view(-1, 784), fc1, F.relu, fc2, F.log_softmax) trained by the hand loop with
F.nll_loss, on wxb's recorded graph, against PyTorch eager in the same process; beside
it ``wxb.fit`` on that module and the same network as a Sequential (the planned stack).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/custom_module.py
    .venv/bin/python bench/custom_module.py --quick      # smoke run, under a minute

784-128-10, float32, inputs (B, 1, 28, 28), the same weights for both libraries; one call
is ``opt.zero_grad(); F.nll_loss(model(xb), yb).backward(); opt.step()`` with SGD
(momentum 0.9) or Adam. One BLAS thread and one torch thread unless ``--threads``; each
figure is the median of per-call CPU times (``time.process_time``) over interleaved
rounds, so a loaded machine slows every contender alike. ``fit`` is timed per epoch of
``--rows`` rows, and shown per step. Prints a Markdown table and writes every figure as
JSON (default bench/results/custom_module.json, git-ignored).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as TF
from _args import positive_int
from _machine import announce_machine, write_results
from _tables import num, table
from threadpoolctl import threadpool_limits

import wxb
import wxb.nn.functional as F

HERE = Path(__file__).resolve().parent


class Net(wxb.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = wxb.nn.Linear(784, 128), wxb.nn.Linear(128, 10)

    def forward(self, x):
        x = x.view(-1, 784)
        x = F.relu(self.fc1(x))
        return F.log_softmax(self.fc2(x), dim=1)


class TorchNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(784, 128), torch.nn.Linear(128, 10)

    def forward(self, x):
        x = x.view(-1, 784)
        x = TF.relu(self.fc1(x))
        return TF.log_softmax(self.fc2(x), dim=1)


def _same_weights(ours: wxb.nn.Module, theirs: torch.nn.Module) -> None:
    with torch.no_grad():
        for mine, twin in zip(ours.parameters(), theirs.parameters(), strict=True):
            twin.copy_(torch.from_numpy(np.array(mine.data)))


def _optimizer(module: object, name: str, params: object) -> object:
    options = {"momentum": 0.9} if name == "SGD" else {}
    return getattr(module, name)(params, lr=0.01 if name == "SGD" else 1e-3, **options)


def contenders(opt_name: str, X: np.ndarray, y: np.ndarray, rows: int) -> dict:
    """The step functions, each returning the loss (to keep it honest)."""
    ours, theirs = Net(), TorchNet()
    _same_weights(ours, theirs)
    opt = _optimizer(wxb.optim, opt_name, ours.parameters())
    t_opt = _optimizer(torch.optim, opt_name, theirs.parameters())
    xb, yb = wxb.Tensor(X), wxb.Tensor(y)
    tx, ty = torch.from_numpy(X), torch.from_numpy(y)

    def wxb_step() -> float:
        opt.zero_grad()
        loss = F.nll_loss(ours(xb), yb)
        loss.backward()
        opt.step()
        return loss.item()

    def torch_step() -> float:
        t_opt.zero_grad()
        loss = TF.nll_loss(theirs(tx), ty)
        loss.backward()
        t_opt.step()
        return loss.item()

    planned = wxb.nn.Sequential(
        wxb.nn.Flatten(), wxb.nn.Linear(784, 128), wxb.nn.ReLU(), wxb.nn.Linear(128, 10)
    )
    p_opt = _optimizer(wxb.optim, opt_name, planned.parameters())

    def planned_step() -> float:
        p_opt.zero_grad()
        loss = F.cross_entropy(planned(xb), yb)
        loss.backward()
        p_opt.step()
        return loss.item()

    rng = np.random.default_rng(1)
    X_fit = rng.normal(size=(rows, 784)).astype(np.float32)  # fit takes (samples, features)
    y_fit = rng.integers(0, 10, rows)
    fit_model, batch = Net(), len(X)
    fit_opt = _optimizer(wxb.optim, opt_name, fit_model.parameters())

    def fit_epoch() -> float:  # one epoch; its time is divided by the steps it took
        wxb.fit(
            fit_model,
            X_fit,
            y_fit,
            loss="nll",
            optimizer=fit_opt,
            epochs=1,
            batch_size=batch,
            verbose=False,
            shuffle=False,
        )
        return 0.0

    return {
        "wxb hand loop (graph)": (wxb_step, 1),
        "torch eager": (torch_step, 1),
        "wxb fit (graph)": (fit_epoch, -(-rows // batch)),
        "wxb Sequential (planned)": (planned_step, 1),
    }


def interleaved(steps: dict, rounds: int, calls: int, warmup: int) -> dict[str, list[float]]:
    """Per-step CPU seconds: each round times every contender in turn, ``calls`` calls
    each, so a slow spell of the machine falls on all of them."""
    for fn, _ in steps.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, (fn, per_call) in steps.items():
            n = max(1, calls // per_call)
            for _ in range(n):
                start = time.process_time()
                fn()
                times[name].append((time.process_time() - start) / per_call)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 short rounds")
    parser.add_argument("--batch", type=positive_int, default=64)
    parser.add_argument("--rows", type=positive_int, default=1920, help="fit's rows an epoch")
    parser.add_argument("--threads", type=positive_int, default=1)
    parser.add_argument("--optimizers", default="SGD,Adam")
    parser.add_argument("--json", default=str(HERE / "results" / "custom_module.json"))
    args = parser.parse_args(argv)
    rounds, calls, warmup = (3, 30, 5) if args.quick else (9, 200, 50)
    torch.set_num_threads(args.threads)
    blas, forced = announce_machine()
    rng = np.random.default_rng(0)
    wxb.manual_seed(0)
    torch.manual_seed(0)
    X = rng.normal(size=(args.batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, args.batch)
    results, rows = {}, []
    with threadpool_limits(args.threads):
        for opt_name in args.optimizers.split(","):
            steps = contenders(opt_name, X, y, args.rows)
            times = interleaved(steps, rounds, calls, warmup)
            medians = {name: float(np.median(t)) for name, t in times.items()}
            results[opt_name] = {"median_s": medians, "per_call_s": times}
            torch_s = medians["torch eager"]
            for name, s in medians.items():
                rows.append([opt_name, name, num(s * 1e6), num(torch_s / s)])
            print(f"{opt_name}: done", file=sys.stderr)
    print(table(["optimizer", "contender", "µs a step", "torch/this"], rows))
    print(
        f"\ntorch/this > 1: faster than torch eager. 784-128-10, B = {args.batch}, float32, "
        f"{args.threads} thread(s), CPU time."
    )
    out = write_results(
        args.json,
        results,
        blas=blas,
        forcing_variables=forced,
        torch=torch.__version__,
        wxb=wxb.__version__,
        plan={
            "rounds": rounds,
            "calls": calls,
            "warmup": warmup,
            "batch": args.batch,
            "rows": args.rows,
            "threads": args.threads,
        },
    )
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
