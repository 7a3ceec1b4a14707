"""Work handed to other processes by tests/test_sharing_hunt46.py: a module without torch,
so that a worker starts in the time wxb takes to import."""

from __future__ import annotations

import wxb
from wxb import nn


def update(model, state, X, y, lr):
    """A worker's hand-written training: a state loaded, a step written out, a BatchNorm's
    running statistics moved; what a PyTorch user sends to joblib."""
    model.load_state_dict(state)
    model.train()
    nn.CrossEntropyLoss()(model(X), y).backward()
    with wxb.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    stats = [b for k, b in model.state_dict().items() if k.endswith(("_mean", "_var"))]
    return [p.data for p in model.parameters()] + stats
