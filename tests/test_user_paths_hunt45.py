"""Models users write off the well-tested path — forwards built from functional calls,
parameters computed from parameters, detached branches, several losses, NumPy operands,
eval/train switches, forwards returning other things than one Tensor — each checked
against PyTorch (same weights, same batches) or against what fit and evaluate say of the
same model. Each test is a defect the hunt found; the seed of each run is printed in the
assertion (replay with ``WXB_TEST_SEED``)."""

from __future__ import annotations

import numpy as np
import pytest

import wxb
from wxb import nn
from wxb.errors import ConfigError


class _ReturnsArray(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, 3)

    def forward(self, x):
        return self.fc(x).data  # an ndarray: fit and evaluate refuse it


class _ReturnsDict(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, 3)

    def forward(self, x):
        return {"logits": self.fc(x)}


class _ReturnsTuple(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc, self.reg = nn.Linear(width, 3), nn.Linear(width, 1)

    def forward(self, x):
        return self.fc(x), self.reg(x)


@pytest.mark.parametrize("model_class", [_ReturnsArray, _ReturnsDict, _ReturnsTuple])
@pytest.mark.parametrize("ids", [False, True])
def test_predict_refuses_a_forward_that_returns_no_tensor_as_fit_does(seeded, model_class, ids):
    # predict gave a memoryview (an ndarray's .data) for a forward returning an array, and
    # an AttributeError ("'dict' object has no attribute 'data'") for a dict or a tuple,
    # where fit and evaluate say what the forward returned and what they need
    rng = seeded.rng
    width = int(rng.integers(2, 6))
    X = rng.integers(0, 5, size=(7, width)) if ids else rng.normal(size=(7, width))
    model = model_class(width)
    with pytest.raises(ConfigError) as by_fit:
        wxb.evaluate(model, X.astype(np.float32), rng.integers(0, 3, size=7))
    with pytest.raises(ConfigError) as by_predict:
        model.predict(X)
    assert str(by_predict.value) == str(by_fit.value), seeded.msg(str(by_predict.value))
    assert model_class.__name__ in str(by_predict.value)
