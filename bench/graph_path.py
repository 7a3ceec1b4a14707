"""The recorded graph against PyTorch eager: the hand-written loop on models the planned
stack does not run — a module of one's own, a Sequential holding BatchNorm1d or
LayerNorm — beside the planned Sequential, in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/graph_path.py
    .venv/bin/python bench/graph_path.py --quick      # smoke run, well under a minute

Every model is 784-256-128-10 (ReLU; a norm layer between each hidden Dense and its
ReLU), B = 128, Adam at 1e-3, float32, the same weights for both libraries; one call is
``opt.zero_grad(); loss_fn(model(X), y).backward(); opt.step()``. Contenders are timed
interleaved (``_timing.py``); a figure is the median over rounds. Prints a Markdown table
and writes every figure as JSON (default bench/results/graph_path.json, git-ignored).
"""

from __future__ import annotations

import argparse
import os
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch
from _machine import announce_machine, numpy_blas, write_results
from _tables import num, table
from _timing import Plan, interleave

import wxb
import wxb.nn.functional as F
from wxb.nn import BatchNorm1d, CrossEntropyLoss, Dense, LayerNorm, Module, ReLU, Sequential
from wxb.optim import Adam

HERE = Path(__file__).resolve().parent
WIDTHS, BATCH = (784, 256, 128, 10), 128


class OwnModule(Module):
    """The same network as a module of one's own (its forward calls F.relu)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = (Dense(a, b) for a, b in pairwise(WIDTHS))

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class TorchOwnModule(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = (torch.nn.Linear(a, b) for a, b in pairwise(WIDTHS))

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def _sequential(norm: str | None) -> tuple[Module, torch.nn.Module]:
    ours, theirs = [], []
    for a, b in pairwise(WIDTHS[:-1]):  # the hidden layers
        ours.append(Dense(a, b))
        theirs.append(torch.nn.Linear(a, b))
        if norm == "batch":
            ours.append(BatchNorm1d(b))
            theirs.append(torch.nn.BatchNorm1d(b))
        elif norm == "layer":
            ours.append(LayerNorm(b))
            theirs.append(torch.nn.LayerNorm(b))
        ours.append(ReLU())
        theirs.append(torch.nn.ReLU())
    ours.append(Dense(WIDTHS[-2], WIDTHS[-1]))
    theirs.append(torch.nn.Linear(WIDTHS[-2], WIDTHS[-1]))
    return Sequential(*ours), torch.nn.Sequential(*theirs)


MODELS = {
    "Sequential (planned stack)": lambda: _sequential(None),
    "module of one's own": lambda: (OwnModule(), TorchOwnModule()),
    "Sequential + BatchNorm1d": lambda: _sequential("batch"),
    "Sequential + LayerNorm": lambda: _sequential("layer"),
}


def _same_weights(ours: Module, theirs: torch.nn.Module) -> None:
    state = ours.state_dict()
    with torch.no_grad():
        for (_, mine), (_, twin) in zip(state.items(), theirs.state_dict().items(), strict=True):
            twin.copy_(torch.from_numpy(np.array(mine)))


def _steps(name: str, X: np.ndarray, y: np.ndarray) -> dict[str, object]:
    ours, theirs = MODELS[name]()
    _same_weights(ours, theirs)
    opt, loss_fn = Adam(ours.parameters(), lr=1e-3), CrossEntropyLoss()
    t_opt = torch.optim.Adam(theirs.parameters(), lr=1e-3)
    tX, ty = torch.from_numpy(X), torch.from_numpy(y)

    def wxb_step() -> float:
        opt.zero_grad()
        loss = loss_fn(ours(X), y)
        loss.backward()
        opt.step()
        return loss.item()

    def torch_step() -> float:
        t_opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(theirs(tX), ty)
        loss.backward()
        t_opt.step()
        return loss.item()

    return {"wxb": wxb_step, "torch": torch_step, "engine": ours.why_not_planned()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of short turns")
    parser.add_argument("--json", default=str(HERE / "results" / "graph_path.json"))
    args = parser.parse_args(argv)
    plan = Plan(rounds=3, turn_s=0.1, warmup_calls=3) if args.quick else Plan(9, 0.5, 20)
    torch.set_num_threads(int(numpy_blas().get("num_threads") or os.cpu_count() or 1))
    blas, forced = announce_machine()
    rng = np.random.default_rng(0)
    wxb.manual_seed(0)
    torch.manual_seed(0)
    X = rng.normal(size=(BATCH, WIDTHS[0])).astype(np.float32)
    y = rng.integers(0, WIDTHS[-1], BATCH)
    results, rows = {}, []
    for name in MODELS:
        steps = _steps(name, X, y)
        timings = interleave({"wxb": steps["wxb"], "torch": steps["torch"]}, plan)
        ours, theirs = timings["wxb"].median_s, timings["torch"].median_s
        results[name] = {"engine": steps["engine"] or "planned stack",
                         **{k: t.to_dict() for k, t in timings.items()}}  # fmt: skip
        rows.append([name, num(ours * 1e3), num(theirs * 1e3), num(theirs / ours)])
        print(f"{name}: done", file=sys.stderr)
    print(table(["model", "wxb ms", "torch ms", "torch/wxb"], rows))
    print("\ntorch/wxb > 1: wxb is faster. 784-256-128-10, B = 128, Adam, float32.")
    out = write_results(
        args.json,
        results,
        blas=blas,
        forcing_variables=forced,
        torch=torch.__version__,
        wxb=wxb.__version__,
        plan=plan.__dict__,
    )
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
