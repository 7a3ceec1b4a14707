"""Models built twice, in wxb and in PyTorch, holding the same weights: what the port
tests train side by side."""

from __future__ import annotations

import numpy as np
import torch

from wxb import nn


def tanh_classifier(rng: np.random.Generator, sizes=(5, 8, 3)):
    """A two-layer classifier in each library, holding the same float64 weights."""
    theirs = torch.nn.Sequential(
        torch.nn.Linear(sizes[0], sizes[1], dtype=torch.float64),
        torch.nn.Tanh(),
        torch.nn.Linear(sizes[1], sizes[2], dtype=torch.float64),
    )
    ours = nn.Sequential(
        nn.Linear(sizes[0], sizes[1], dtype="float64"),
        nn.Tanh(),
        nn.Linear(sizes[1], sizes[2], dtype="float64"),
    )
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        values = rng.normal(scale=0.5, size=tuple(q.shape))
        p.data[...] = values
        with torch.no_grad():
            q.copy_(torch.from_numpy(values))
    return ours, theirs


def tanh_autoencoder_head(d: int, h: int, k: int):
    """d → h → d → k with tanh between, in each library, holding wxb's drawn float64
    weights: the layers the tying tests tie (the second's W to the first's Wᵀ)."""
    ours = nn.Sequential(
        nn.Linear(d, h, dtype="float64"), nn.Tanh(),
        nn.Linear(h, d, dtype="float64"), nn.Tanh(),
        nn.Linear(d, k, dtype="float64"),
    )  # fmt: skip
    theirs = torch.nn.Sequential(
        torch.nn.Linear(d, h, dtype=torch.float64), torch.nn.Tanh(),
        torch.nn.Linear(h, d, dtype=torch.float64), torch.nn.Tanh(),
        torch.nn.Linear(d, k, dtype=torch.float64),
    )  # fmt: skip
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
            q.copy_(torch.from_numpy(p.data.copy()))
    return ours, theirs
