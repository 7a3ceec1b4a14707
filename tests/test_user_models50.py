"""Models PyTorch users write off the well-tested path, against the same model in PyTorch:
defects found by the generator of such models, each a test that failed before."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch

import wxb
from wxb import nn
from wxb.nn import functional as WF

F = torch.nn.functional


class Lib:
    """What a block needs from a library, so that one block's code builds both models."""

    def __init__(self, name: str) -> None:
        self.torch = name == "torch"
        mod = torch.nn if self.torch else nn
        self.Module, self.ModuleList, self.ModuleDict = mod.Module, mod.ModuleList, mod.ModuleDict
        self.ParameterList, self.ParameterDict = mod.ParameterList, mod.ParameterDict
        self.Linear, self.Sequential = mod.Linear, mod.Sequential
        self.F = F if self.torch else WF
        self.where = torch.where if self.torch else wxb.where
        self.maximum = torch.maximum if self.torch else wxb.maximum
        self.cat = torch.cat if self.torch else wxb.cat
        self.no_grad = torch.no_grad if self.torch else wxb.no_grad
        self.einsum = torch.einsum if self.torch else wxb.einsum

    def linear(self, n: int, m: int, bias: bool = True):
        if self.torch:
            return torch.nn.Linear(n, m, bias=bias, dtype=torch.float64)
        return nn.Linear(n, m, bias=bias, dtype="float64")

    def parameter(self, shape: tuple[int, ...]):
        values = np.zeros(shape)  # (the wxb model's values are copied over)
        return torch.nn.Parameter(torch.from_numpy(values)) if self.torch else nn.Parameter(values)

    def zeros(self, h: int):
        return torch.zeros(h, dtype=torch.float64) if self.torch else wxb.zeros(h, dtype="float64")


def copy_into_torch(ours, theirs) -> None:
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
            q.copy_(torch.from_numpy(np.asarray(p.data)))
        for b, q in zip(ours.buffers(), theirs.buffers(), strict=True):
            q.copy_(torch.from_numpy(np.asarray(b)))


def as_numpy(t) -> np.ndarray:
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def close(actual, expected, what: str, msg, tol: float = 1e-9) -> None:
    # float64 on both sides: rounding, amplified by a few layers and divisions by a std
    np.testing.assert_allclose(
        np.asarray(actual, np.float64), as_numpy(expected), rtol=tol, atol=tol, err_msg=msg(what)
    )


def test_a_buffer_made_and_updated_as_torch_users_write_it(seeded):
    """``register_buffer("mean", torch.zeros(h))`` and ``self.mean = (1 - m) * self.mean +
    m * x.mean(0)`` under no_grad (a count ``self.seen = self.seen + 1`` too), as PyTorch
    users keep a running mean, were refused: a buffer took only a NumPy array. Now the
    Tensor's array is the buffer; one that needs a gradient is refused, naming detach."""
    rng = seeded.rng
    h, m = int(rng.integers(2, 6)), float(rng.uniform(0.05, 0.9))

    def build(lib: Lib):
        class Centred(lib.Module):
            def __init__(self):
                super().__init__()
                self.layer = lib.linear(h, h)
                self.register_buffer("mean", lib.zeros(h))
                self.register_buffer("seen", lib.zeros(1)[0], persistent=False)

            def forward(self, x):
                if self.training:
                    with lib.no_grad():
                        self.mean = (1 - m) * self.mean + m * x.mean(0)
                        self.seen = self.seen + 1
                return self.layer(x - self.mean)

        return Centred()

    ours, theirs = build(Lib("wxb")), build(Lib("torch"))
    ours.layer.weight.data[...] = rng.normal(size=(h, h))
    copy_into_torch(ours, theirs)
    for _ in range(int(rng.integers(1, 4))):
        X = rng.normal(size=(int(rng.integers(2, 6)), h))
        close(ours(X).data, theirs(torch.from_numpy(X)), "the forward", seeded.msg)
    close(ours.mean, theirs.mean, "the running mean", seeded.msg)
    close(ours.seen, theirs.seen, "the count", seeded.msg)
    assert isinstance(ours.mean, np.ndarray) and ours.mean.dtype == np.float64
    assert list(ours.state_dict()) == list(theirs.state_dict()) == [
        "mean", "layer.weight", "layer.bias"]  # fmt: skip
    ours.eval()
    X = rng.normal(size=(3, h))
    close(ours.predict(X), theirs.eval()(torch.from_numpy(X)), "eval mode", seeded.msg)
    with pytest.raises(wxb.ConfigError, match=r"Centred\.mean \(a buffer\).*\.detach\(\)"):
        ours.mean = ours.layer(X).mean(0)  # a graph: torch's next backward would fail
    close(ours.mean, theirs.mean, "the running mean, after the refusal", seeded.msg)


def test_a_parameter_dict_from_a_plain_dict_orders_its_parameters_as_torchs(seeded):
    """torch's ParameterDict adds a plain dict's entries sorted by name (an OrderedDict's,
    a ParameterDict's and pairs' in their order); wxb's kept the dict's order, so
    ``ParameterDict({"w": …, "b": …})`` gave parameters(), state_dict() and
    parameters_to_vector in another order than the same code in torch (an optimiser's
    state, numbered by that order, then belonged to other parameters)."""
    rng = seeded.rng
    names = [str(k) for k in rng.permutation(["w", "b", "v", "gain", "a2", "a10"])]
    values = {k: rng.normal(size=int(rng.integers(1, 4))) for k in names}
    cut = int(rng.integers(2, len(names)))
    if names[:cut] == sorted(names[:cut]):  # (the first dict's order not the sorted one)
        names[0], names[1] = names[1], names[0]

    def build(lib: Lib, how: str):
        wrap = (lambda v: torch.nn.Parameter(torch.from_numpy(v))) if lib.torch else nn.Parameter
        first = [(k, wrap(values[k])) for k in names[:cut]]
        rest = [(k, wrap(values[k])) for k in names[cut:]]
        given = {"dict": dict, "OrderedDict": OrderedDict, "pairs": list}[how]
        d = lib.ParameterDict(given(first))
        d.update(given(rest))
        return d

    for how in ("dict", "OrderedDict", "pairs"):
        ours, theirs = build(Lib("wxb"), how), build(Lib("torch"), how)
        msg = lambda what: seeded.msg(f"{what} of a ParameterDict from {how}s {names}")  # noqa: B023, E731
        assert list(ours.keys()) == list(theirs.keys()), msg("keys")
        assert [k for k, _ in ours.named_parameters()] == [
            k for k, _ in theirs.named_parameters()
        ], msg("named_parameters")
        assert list(ours.state_dict()) == list(theirs.state_dict()), msg("state_dict")
        close(
            nn.utils.parameters_to_vector(ours.parameters()).data,
            torch.nn.utils.parameters_to_vector(theirs.parameters()),
            "parameters_to_vector", msg,
        )  # fmt: skip
