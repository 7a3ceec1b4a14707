"""Run under ``mpiexec -n K python tests/mpi_worker.py SPEC.json``: every case in the spec
is trained with ``wxb.fit(..., distributed=True)``; each rank writes its final weights
(``rank{r}-{case}.npz``) and history (``rank{r}-{case}.json``) to the spec's folder.

The same ``build``/``fit_case`` run the single-process references in
tests/test_distributed.py, so both sides train exactly the same thing.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import tracemalloc
from pathlib import Path

import numpy as np

import wxb
from wxb import nn


class Scaled(nn.Sequential):
    """A Sequential with a forward of its own: trained through the recorded graph, with
    a learnable 0-d gain (a scalar Parameter, as the README's custom modules have)."""

    def __init__(self, *layers):
        super().__init__(*layers)
        self.gain = nn.Parameter(np.array(1.0))

    def forward(self, x):
        return super().forward(x) * self.gain


class OwnActivation(nn.Module):
    """The case's activation as a module of one's own: the planned step cannot run it."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x):
        return wxb.nn.functional.relu(x) if self.kind == "relu" else wxb.nn.functional.tanh(x)


class MidRun(wxb.optim.StepLR):
    """A constant rate whose first step (after epoch 1) changes the run, as a user's
    hook may: "freeze" the first Dense layer (its gradients stop: no update, no weight
    decay, no momentum, its step counts stay); "swap" the first activation for a
    module of one's own (the planned step falls back to the recorded graph); "repack"
    the optimiser (the last layer's weight given a new array, SGD a momentum: a new
    state); or "add_group": unfreeze the first layer and hand it to the optimiser."""

    def __init__(self, optimizer, model: nn.Sequential, change: str, activation: str) -> None:
        super().__init__(optimizer, step_size=10**9, gamma=1.0)
        # (underscored: not part of the schedule's state that checkpoints keep)
        self._model, self._change, self._activation, self._done = model, change, activation, False

    def step(self):
        if not self._done:
            self._done = True
            first, last = self._model[0], self._model[-1]
            if self._change == "freeze":
                for p in first.parameters():
                    p.requires_grad = False
            elif self._change == "swap":
                self._model[1] = OwnActivation(self._activation)
            elif self._change == "repack":
                last.weight.data = last.weight.data.copy()
                for group in self.optimizer.param_groups:
                    if "momentum" in group and group["momentum"] == 0:
                        group["momentum"] = 0.5
            else:
                for p in first.parameters():
                    p.requires_grad = True
                self.optimizer.add_param_group({"params": first.parameters()})
        return super().step()


def build(case: dict) -> nn.Sequential:
    """The case's model, with the initial weights stored beside the data."""
    sizes, layers = case["sizes"], []
    for i, (m, n) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Dense(m, n))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU() if case["activation"] == "relu" else nn.Tanh())
            if case.get("dropout", 0) > 0:  # masks by data row: the same on any rank
                layers.append(nn.Dropout(case["dropout"], seed=case.get("dropout_seed")))
    model = (Scaled if case["graph"] else nn.Sequential)(*layers)
    model = model.to(case["dtype"])
    with np.load(case["weights"], allow_pickle=False) as stored:
        model.load_state_dict({k: stored[k] for k in stored.files})
    if case["frozen_first"] or case.get("midrun") == "add_group":
        for p in layers[0].parameters():
            p.requires_grad = False
    if case.get("replaced"):  # a p.data replaced after the optimiser is built (see fit_case)
        model.replaced = True
    return model


def optimizer_for(case: dict, model: nn.Sequential):
    spec = case["optimizer"]
    # "frozen_in_optimizer": the optimiser holds a frozen layer too (its parameters get no
    # gradient, so no update, not even weight decay)
    every = case.get("frozen_in_optimizer", False) and case.get("midrun") != "add_group"
    trainable = [p for p in model.parameters() if p.requires_grad or every]
    if spec["name"] == "sgd":
        return wxb.optim.SGD(
            trainable, lr=spec["lr"], momentum=spec["momentum"], nesterov=spec["nesterov"],
            weight_decay=spec["weight_decay"],
        )  # fmt: skip
    # Adam, AdamW, and today's NAdam (momentum_decay, decoupled_weight_decay), RAdam
    # (decoupled_weight_decay), Adamax, Adadelta (rho): their own settings under "options"
    kind = wxb.optim.OPTIMIZERS[spec["name"]]
    return kind(
        trainable, lr=spec["lr"], weight_decay=spec["weight_decay"], **spec.get("options", {})
    )


def sequential_for(spec: dict, optimizer) -> wxb.optim.SequentialLR:
    """A warm-up then a decay, as PyTorch users chain them: LinearLR (or ConstantLR) until
    the milestone, then CosineAnnealingLR (or ExponentialLR)."""
    o = wxb.optim
    warm = (
        o.LinearLR(optimizer, start_factor=spec["factor"], total_iters=spec["warm"])
        if spec["first"] == "linear"
        else o.ConstantLR(optimizer, factor=spec["factor"], total_iters=spec["warm"])
    )
    decay = (
        o.CosineAnnealingLR(optimizer, T_max=spec["T_max"])
        if spec["then"] == "cosine"
        else o.ExponentialLR(optimizer, gamma=spec["gamma"])
    )
    return o.SequentialLR(optimizer, [warm, decay], milestones=[spec["milestone"]])


def fit_case(case: dict, distributed: bool, **extra) -> tuple[nn.Sequential, wxb.History]:
    on_disk = distributed and case.get("on_disk")  # memory-mapped: each rank reads its rows
    with np.load(case["data"], allow_pickle=False) as data:
        X = np.load(case["on_disk"], mmap_mode="r") if on_disk else data["X"]
        y = data["y"]
        validation = None
        if "X_val" in data.files:
            X_val = np.load(case["on_disk_val"], mmap_mode="r") if on_disk else data["X_val"]
            validation = (X_val, data["y_val"])
    model = build(case)
    optimizer = optimizer_for(case, model)
    if case.get("replaced"):  # new arrays for the weights, after the optimiser was built
        for p in model.parameters():
            p.data = p.data * 1.0
    kwargs = dict(case["fit"])
    kwargs.update(extra)
    if case.get("sequential"):
        kwargs["lr_schedule"] = sequential_for(case["sequential"], optimizer)
    if case.get("midrun"):
        kwargs["lr_schedule"] = MidRun(optimizer, model, case["midrun"], case["activation"])
    kept = model[0].weight.data  # a view a user took: it follows training, as in PyTorch
    reduction = kwargs.pop("reduction", "mean")
    kind = {"cross_entropy": nn.CrossEntropyLoss, "mse": nn.MSELoss,
            "bce_with_logits": nn.BCEWithLogitsLoss}[kwargs["loss"]]  # fmt: skip
    kwargs["loss"] = kind(reduction=reduction)
    history = wxb.fit(
        model,
        X,
        y,
        optimizer=optimizer,
        validation_data=validation,
        verbose=False,
        distributed=distributed,
        **kwargs,
    )
    history.kept_view_follows = bool(
        np.shares_memory(kept, model[0].weight.data) and np.array_equal(kept, model[0].weight.data)
    )
    return model, history


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    folder = Path(spec["folder"])
    from wxb.distributed import Ranks

    rank = Ranks().rank
    (folder / f"pid-{rank}").write_text(str(os.getpid()))
    for dtype in ("float32", "float64"):  # imports and compiled kernels, before the count
        tiny = nn.Sequential(nn.Dense(2, 4), nn.ReLU(), nn.Dropout(0.1), nn.Dense(4, 2))
        wxb.fit(tiny.to(dtype), np.ones((8, 2)), np.zeros(8, int), epochs=1, verbose=False)
    for name, case in spec["cases"].items():
        tracemalloc.start()  # NumPy reports its arrays to it: the most this rank held
        model, history = fit_case(case, True, **spec.get("extra", {}))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        state = {k: np.asarray(v) for k, v in model.state_dict().items()}
        np.savez(folder / f"rank{rank}-{name}.npz", **state)
        (folder / f"rank{rank}-{name}.json").write_text(history.to_json())
        (folder / f"rank{rank}-{name}-peak").write_text(str(peak))
        (folder / f"rank{rank}-{name}-view").write_text(str(int(history.kept_view_follows)))


if __name__ == "__main__":
    main()
