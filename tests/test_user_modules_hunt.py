"""Models users write themselves, against the same model written in PyTorch.

A generator of ``Module`` subclasses as a PyTorch user writes them: an input layer, a
few random blocks, a head. The blocks: a residual ``x + f(layer(x))``; one layer
applied twice (shared weights); two branches concatenated; a matrix used as W and as
Wᵀ (tied); a bare Parameter used by hand (``x @ self.W + self.b``); ``ModuleList`` and
``ModuleDict``; a subclass of ``Linear`` with a forward of its own; a buffer; a frozen
layer; a ``BatchNorm1d`` and a ``Dropout`` in a sub-module; a ``Sequential`` (named as
PyTorch names an ``OrderedDict``'s) with a layer set after it was built. Each block is
written once, for either library (``Lib``), so both models hold the same names. Then:
names and order of parameters, buffers and the state dict; the forward; every
parameter's gradient; the weights after 21 steps of each optimiser by the hand loop
and by ``wxb.fit`` (a drawn Sequential of stock layers on the planned step); eval-mode
predictions; deepcopy and load_state_dict. After it, the defects the hunt found, each
a test that failed before: layers swapped through ``_modules``, parameters in lists,
inputs by keyword or in a tuple, a forward changing its input in place, forward hooks,
a head assigned to a Sequential by attribute. The seed of each run is printed in the
assertion (replay with ``WXB_TEST_SEED``).
"""

from __future__ import annotations

import copy
import itertools
from collections import OrderedDict

import numpy as np
import pytest
import torch

import wxb
from wxb import nn, ops, optim
from wxb.tensor import Tensor

TORCH = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


class Lib:
    """What a block needs from a library, so that one block's code builds both models."""

    def __init__(self, name: str, dtype: np.dtype) -> None:
        self.name, self.dtype = name, np.dtype(dtype)
        self.torch = name == "torch"
        self.Module = torch.nn.Module if self.torch else nn.Module
        self.ModuleList = torch.nn.ModuleList if self.torch else nn.ModuleList
        self.ModuleDict = torch.nn.ModuleDict if self.torch else nn.ModuleDict
        self.Dropout = torch.nn.Dropout if self.torch else nn.Dropout

    def linear(self, n: int, m: int, bias: bool = True):
        if self.torch:
            return torch.nn.Linear(n, m, bias=bias, dtype=TORCH[self.dtype])
        return nn.Linear(n, m, bias=bias, dtype=self.dtype)

    def parameter(self, shape: tuple[int, ...]):
        values = np.zeros(shape, self.dtype)  # (the wxb model's values are copied over)
        return torch.nn.Parameter(torch.from_numpy(values)) if self.torch else nn.Parameter(values)

    def array(self, values: np.ndarray):
        return (
            torch.from_numpy(values.astype(self.dtype)) if self.torch else values.astype(self.dtype)
        )

    def constant(self, values):  # a buffer as an operand
        return values if self.torch else Tensor(values)

    def batch_norm(self, h: int, momentum: float | None):
        if self.torch:
            return torch.nn.BatchNorm1d(h, momentum=momentum, dtype=TORCH[self.dtype])
        return nn.BatchNorm1d(h, momentum=momentum, dtype=self.dtype)

    def sequential(self, pairs: list[tuple[str, object]]):
        if self.torch:
            return torch.nn.Sequential(OrderedDict(pairs))
        for name, layer in pairs:
            layer.name = name
        return nn.Sequential(*(layer for _, layer in pairs))

    def cat(self, parts: list):
        return torch.cat(parts, 1) if self.torch else ops.concatenate(parts, axis=1)


def act(x, kind: str):
    return {"tanh": x.tanh, "relu": x.relu, "sigmoid": x.sigmoid}[kind]()


def block_classes(lib: Lib) -> dict[str, type]:
    """The blocks, as classes of ``lib``'s Module; each maps h features to h."""

    class Residual(lib.Module):
        def __init__(self, h, kind):
            super().__init__()
            self.kind, self.layer = kind, lib.linear(h, h)

        def forward(self, x):
            return x + act(self.layer(x), self.kind)

    class Twice(lib.Module):  # one layer, applied twice: its gradient is the sum of both
        def __init__(self, h, kind):
            super().__init__()
            self.kind, self.layer = kind, lib.linear(h, h)

        def forward(self, x):
            return act(self.layer(act(self.layer(x), self.kind)), self.kind)

    class Concat(lib.Module):
        def __init__(self, h, kind):
            super().__init__()
            self.kind, self.left, self.right = kind, lib.linear(h, h), lib.linear(h, h - 1)
            self.join = lib.linear(2 * h - 1, h)

        def forward(self, x):
            return self.join(lib.cat([act(self.left(x), self.kind), self.right(x).tanh()]))

    class Tied(lib.Module):  # W down and Wᵀ back up, as a tied autoencoder
        def __init__(self, h, kind):
            super().__init__()
            self.kind = kind
            self.W = lib.parameter((h, max(1, h - 2)))
            self.b = lib.parameter((max(1, h - 2),))

        def forward(self, x):
            return act(x @ self.W + self.b, self.kind) @ self.W.t() + x

    class ByHand(lib.Module):
        def __init__(self, h, kind):
            super().__init__()
            self.kind, self.W, self.b = kind, lib.parameter((h, h)), lib.parameter((h,))

        def forward(self, x):
            return act(x @ self.W + self.b, self.kind)

    class Listed(lib.Module):
        def __init__(self, h, kind):
            super().__init__()
            self.kind = kind
            self.layers = lib.ModuleList([lib.linear(h, h) for _ in range(2)])
            self.layers.append(lib.linear(h, h, bias=False))

        def forward(self, x):
            for layer in self.layers:
                x = act(layer(x), self.kind)
            return x

    class Gated(lib.Module):
        def __init__(self, h, kind):
            super().__init__()
            self.kind = kind
            self.parts = lib.ModuleDict({"value": lib.linear(h, h), "gate": lib.linear(h, h)})

        def forward(self, x):
            return act(self.parts["value"](x), self.kind) * self.parts["gate"](x).sigmoid()

    class Halved(torch.nn.Linear if lib.torch else nn.Linear):
        """A stock layer's subclass with a forward of its own: never run as the stock one."""

        def forward(self, x):
            return 0.5 * super().forward(x) + x

    class Subclassed(lib.Module):
        def __init__(self, h, kind):
            super().__init__()
            self.kind = kind
            self.layer = Halved(h, h, dtype=TORCH[lib.dtype] if lib.torch else lib.dtype)

        def forward(self, x):
            return act(self.layer(x), self.kind)

    class Shifted(lib.Module):
        def __init__(self, h, kind, shift):
            super().__init__()
            self.kind, self.layer = kind, lib.linear(h, h)
            self.register_buffer("shift", lib.array(shift))

        def forward(self, x):
            return act(self.layer(x - lib.constant(self.shift)), self.kind)

    class Frozen(lib.Module):
        def __init__(self, h, kind):
            super().__init__()
            self.kind, self.fixed, self.free = kind, lib.linear(h, h), lib.linear(h, h)
            self.fixed.requires_grad_(False)

        def forward(self, x):
            return self.free(act(self.fixed(x), self.kind))

    class Normed(lib.Module):  # no bias before the norm (its gradient is 0 but rounding)
        def __init__(self, h, kind, momentum):
            super().__init__()
            self.kind, self.layer = kind, lib.linear(h, h, bias=False)
            self.norm, self.drop = lib.batch_norm(h, momentum), lib.Dropout(0.0)

        def forward(self, x):
            return x + self.drop(act(self.norm(self.layer(x)), self.kind))

    class Stacked(lib.Module):
        def __init__(self, h, kind):
            super().__init__()
            self.kind = kind
            self.stack = lib.sequential(
                [("dense1", lib.linear(h, h)), ("dense2", lib.linear(h, h))]
            )
            self.stack.dense2 = lib.linear(h, h)  # a layer set after it was built

        def forward(self, x):
            return act(self.stack(x), self.kind)

    return {
        cls.__name__: cls
        for cls in (Residual, Twice, Concat, Tied, ByHand, Listed, Gated, Subclassed,
                    Shifted, Frozen, Normed, Stacked)
    }  # fmt: skip


def make_model(lib: Lib, spec: dict):
    blocks = block_classes(lib)

    class UserModel(lib.Module):
        def __init__(self):
            super().__init__()
            n, h, c = spec["n"], spec["h"], spec["c"]
            self.inp = lib.linear(n, h)
            self.blocks = lib.ModuleList()
            for name, kind in spec["blocks"]:
                extra = ()
                if name == "Shifted":
                    extra = (spec["shift"],)
                elif name == "Normed":
                    extra = (spec["momentum"],)
                self.blocks.append(blocks[name](h, kind, *extra))
            self.head = lib.linear(h, c)

        def forward(self, x):
            x = self.inp(x).tanh()
            for block in self.blocks:
                x = block(x)
            return self.head(x)

    return UserModel()


def random_spec(rng) -> dict:
    h = int(rng.integers(3, 7))
    names = list(block_classes(Lib("wxb", np.float64)))
    chosen = rng.choice(names, size=int(rng.integers(2, 5)), replace=False)
    return {
        "n": int(rng.integers(2, 6)),
        "h": h,
        "c": int(rng.integers(2, 5)),
        "blocks": [(str(name), str(rng.choice(["tanh", "relu", "sigmoid"]))) for name in chosen],
        "shift": rng.normal(size=h),
        "momentum": None if rng.random() < 0.3 else float(rng.uniform(0.05, 0.5)),
    }


def pair(rng, dtype, spec=None):
    """A wxb model of a random spec, with random weights, and its PyTorch twin."""
    spec = spec or random_spec(rng)
    ours, theirs = make_model(Lib("wxb", dtype), spec), make_model(Lib("torch", dtype), spec)
    for p in ours.parameters():
        p.data[...] = rng.normal(scale=0.6, size=p.shape)
    with torch.no_grad():
        state = theirs.state_dict()
        for key, value in ours.state_dict().items():
            state[key].copy_(torch.from_numpy(np.asarray(value)))
    return ours, theirs, spec


def as_numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy()


def close(actual, expected, dtype, what: str, msg, scale: float = 1.0) -> None:
    tol = (1e-10 if np.dtype(dtype) == np.float64 else 2e-4) * scale
    np.testing.assert_allclose(
        np.asarray(actual, np.float64), np.asarray(expected, np.float64), rtol=tol, atol=tol,
        err_msg=msg(what),
    )  # fmt: skip


def near(actual, torchs, torchs64, dtype, what: str, msg) -> None:
    """``close`` to torch's in float64; in float32, to torch's float64 twin within 2e-4 or
    4× torch's own float32 distance from it, element by element."""
    if np.dtype(dtype) == np.float64:
        close(actual, as_numpy(torchs), dtype, what, msg)
        return
    truth = as_numpy(torchs64)
    theirs_off = np.abs(as_numpy(torchs).astype(np.float64) - truth)
    ours_off = np.abs(np.asarray(actual, np.float64) - truth)
    bound = 2e-4 * (1 + np.abs(truth)) + 4 * theirs_off
    assert (ours_off <= bound).all(), msg(
        f"{what}: off the float64 truth by {ours_off.max():.3g} (torch's float32 by "
        f"{theirs_off.max():.3g})"
    )


def optimisers(kind: str, ours: list, theirs: list):
    settings = {
        "sgd": (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True,
                                                  weight_decay=0.01)),
        "adam": (optim.Adam, torch.optim.Adam, dict(lr=0.01, weight_decay=0.01)),
        "adamw": (optim.AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1)),
        "rmsprop": (optim.RMSprop, torch.optim.RMSprop, dict(lr=0.003, momentum=0.5)),
        "adagrad": (optim.Adagrad, torch.optim.Adagrad, dict(lr=0.05)),
    }  # fmt: skip
    mine, torchs, options = settings[kind]
    return mine(ours, **options), torchs(theirs, **options)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_users_model_has_torchs_names_outputs_and_gradients(seeded, dtype):
    rng = seeded.rng
    ours, theirs, spec = pair(rng, dtype)
    msg = lambda what: seeded.msg(f"{what} of {spec['blocks']}")  # noqa: E731
    assert [k for k, _ in ours.named_parameters()] == [k for k, _ in theirs.named_parameters()]
    assert [k for k, _ in ours.named_buffers()] == [k for k, _ in theirs.named_buffers()]
    assert list(ours.state_dict()) == list(theirs.state_dict()), msg("state_dict keys")
    assert [k for k, _ in ours.named_modules()] == [k for k, _ in theirs.named_modules()]
    assert [p.requires_grad for p in ours.parameters()] == [
        p.requires_grad for p in theirs.parameters()
    ]
    X = rng.normal(size=(int(rng.integers(2, 9)), spec["n"])).astype(dtype)
    out, expected = ours(X), theirs(torch.from_numpy(X))
    # float32: torch's float64 twin of the same weights is the truth, and wxb may be as far
    # from it as torch's own float32 is, times 4 (a BatchNorm over a few rows of small
    # variance amplifies rounding: torch's float32 gradient was once 5.5e-4 off it, wxb's
    # 7.8e-6); float64: torch's own
    truth = make_model(Lib("torch", "float64"), spec)
    truth.load_state_dict({k: v.double() for k, v in theirs.state_dict().items()})
    expected64 = truth(torch.from_numpy(X.astype(np.float64)))
    near(out.data, expected, expected64, dtype, "the forward", msg)
    r = rng.normal(size=out.shape).astype(dtype)
    (out * Tensor(r)).sum().backward()
    (expected * torch.from_numpy(r)).sum().backward()
    (expected64 * torch.from_numpy(r.astype(np.float64))).sum().backward()
    pairs = zip(ours.named_parameters(), theirs.parameters(), truth.parameters(), strict=True)
    for (name, p), q, q64 in pairs:
        if q.grad is None:
            assert p.grad is None, msg(f"{name}'s gradient (PyTorch's is None)")
        else:
            near(p.grad, q.grad, q64.grad, dtype, f"{name}'s gradient", msg)
    for (name, value), other in zip(
        ours.state_dict().items(), theirs.state_dict().values(), strict=True
    ):
        close(value, as_numpy(other), dtype, name, msg)  # the running statistics too


def train_both(rng, ours, theirs, spec, kind: str, way: str, dtype, steps: int = 21):
    """``steps`` batches of cross-entropy with optimiser ``kind``: wxb's by hand or by
    fit (in order, no shuffling), PyTorch's by hand."""
    batch = int(rng.integers(3, 8))
    X = rng.normal(size=(steps * batch, spec["n"])).astype(dtype)
    y = rng.integers(0, spec["c"], len(X))
    mine, torchs = optimisers(
        kind,
        [p for p in ours.parameters() if p.requires_grad],
        [p for p in theirs.parameters() if p.requires_grad],
    )
    history = None
    if way == "fit":
        history = wxb.fit(
            ours, X, y, optimizer=mine, epochs=1, batch_size=batch, shuffle=False, verbose=False
        )
        assert len(history["loss"]) == 1
    else:
        ours.train()
        for i in range(steps):
            rows = slice(i * batch, (i + 1) * batch)
            mine.zero_grad()
            nn.CrossEntropyLoss()(ours(X[rows]), y[rows]).backward()
            mine.step()
    theirs.train()
    for i in range(steps):
        rows = slice(i * batch, (i + 1) * batch)
        torchs.zero_grad()
        torch.nn.functional.cross_entropy(
            theirs(torch.from_numpy(X[rows])), torch.from_numpy(y[rows])
        ).backward()
        torchs.step()
    return history


ACTIVATIONS = {  # a wxb layer and its PyTorch twin, made alike
    "tanh": (nn.Tanh, torch.nn.Tanh),
    "relu": (nn.ReLU, torch.nn.ReLU),
    "sigmoid": (nn.Sigmoid, torch.nn.Sigmoid),
    "silu": (nn.SiLU, torch.nn.SiLU),
    "gelu": (lambda: nn.GELU("tanh"), lambda: torch.nn.GELU("tanh")),
    "elu": (lambda: nn.ELU(0.7), lambda: torch.nn.ELU(0.7)),
    "leaky_relu": (lambda: nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2)),
    "softplus": (lambda: nn.Softplus(2.0), lambda: torch.nn.Softplus(2.0)),
}


def stack_pair(rng, spec: dict):
    """A Sequential of stock layers (what the planned stack and planned step run), named
    as PyTorch names an OrderedDict's, some Dense layers frozen, and its twin."""
    widths = [spec["n"], *(int(w) for w in rng.integers(2, 7, size=int(rng.integers(1, 4))))]
    widths.append(spec["c"])
    pairs: list[tuple[str, object, object]] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        bias = bool(rng.random() < 0.8)
        pairs.append((f"dense{i}", nn.Linear(a, b, bias, dtype="float64"),
                      torch.nn.Linear(a, b, bias, dtype=torch.float64)))  # fmt: skip
        if i < len(widths) - 2:
            name = str(rng.choice(list(ACTIVATIONS)))
            mine, torchs = ACTIVATIONS[name]
            pairs.append((f"{name}{i}", mine(), torchs()))
            if rng.random() < 0.3:
                pairs.append((f"drop{i}", nn.Dropout(0.0), torch.nn.Dropout(0.0)))
    ours = Lib("wxb", np.float64).sequential([(key, layer) for key, layer, _ in pairs])
    theirs = torch.nn.Sequential(OrderedDict((key, layer) for key, _, layer in pairs))
    dense = [key for key, layer, _ in pairs if isinstance(layer, nn.Linear)]
    if len(dense) > 1 and rng.random() < 0.5:
        frozen = str(rng.choice(dense[:-1]))
        getattr(ours, frozen).requires_grad_(False)
        getattr(theirs, frozen).requires_grad_(False)
    for p in ours.parameters():
        p.data[...] = rng.normal(scale=0.6, size=p.shape)
    with torch.no_grad():
        for value, other in zip(
            ours.state_dict().values(), theirs.state_dict().values(), strict=True
        ):
            other.copy_(torch.from_numpy(value))
    spec["blocks"] = list(ours._modules)
    return ours, theirs, spec


@pytest.mark.parametrize("way", ["hand", "fit"])
@pytest.mark.parametrize("kind", ["sgd", "adam", "adamw", "rmsprop", "adagrad"])
def test_a_users_model_trains_as_torchs(seeded, kind, way):
    rng = seeded.rng
    stack = rng.random() < 0.35  # a Sequential of stock layers: planned
    ours, theirs, spec = stack_pair(rng, random_spec(rng)) if stack else pair(rng, "float64")
    msg = lambda what: seeded.msg(f"{what} after {kind} by {way} of {spec['blocks']}")  # noqa: E731
    if stack:
        assert ours.why_not_planned() is None, msg(ours.why_not_planned())
    history = train_both(rng, ours, theirs, spec, kind, way, "float64")
    if history is not None:
        assert history.engine == ("planned" if stack else "graph"), msg(history.engine_reason)
    for (name, value), other in zip(
        ours.state_dict().items(), theirs.state_dict().values(), strict=True
    ):
        close(value, as_numpy(other), "float64", name, msg, scale=100)
    X = rng.normal(size=(int(rng.integers(1, 9)), spec["n"]))
    theirs.eval()
    close(ours.predict(X), as_numpy(theirs(torch.from_numpy(X))), "float64", "predict", msg, 100)


def test_a_users_model_in_float32_trains_as_torchs_to_rounding(seeded):
    rng = seeded.rng
    ours, theirs, spec = pair(rng, "float32")
    msg = lambda what: seeded.msg(f"{what} in float32 of {spec['blocks']}")  # noqa: E731
    train_both(rng, ours, theirs, spec, str(rng.choice(["sgd", "adam"])), "hand", "float32", 8)
    for (name, value), other in zip(
        ours.state_dict().items(), theirs.state_dict().values(), strict=True
    ):
        close(value, as_numpy(other), "float32", name, msg, scale=10)


@pytest.mark.parametrize("how", ["deepcopy", "state_dict"])
def test_a_copy_of_a_users_model_computes_and_trains_as_the_original(seeded, how):
    rng = seeded.rng
    ours, theirs, spec = pair(rng, "float64")
    msg = lambda what: seeded.msg(f"{what} of a {how} copy of {spec['blocks']}")  # noqa: E731
    train_both(rng, ours, theirs, spec, "adam", "hand", "float64", 3)
    if how == "deepcopy":
        copied = copy.deepcopy(ours)
    else:
        copied = pair(rng, "float64", spec)[0]
        assert not copied.load_state_dict(ours.state_dict()).missing_keys
    X = rng.normal(size=(5, spec["n"]))
    ours.eval()
    copied.eval()
    np.testing.assert_array_equal(copied.predict(X), ours.predict(X), err_msg=msg("predict"))
    # the copy trains on as the original would, and leaves the original alone
    before = ours.state_dict()
    twin = copy.deepcopy(theirs)
    train_both(rng, copied, twin, spec, "sgd", "fit", "float64", 4)
    for (name, value), other in zip(
        copied.state_dict().items(), twin.state_dict().values(), strict=True
    ):
        close(value, as_numpy(other), "float64", name, msg, scale=100)
    for (name, value), kept in zip(ours.state_dict().items(), before.values(), strict=True):
        np.testing.assert_array_equal(value, kept, err_msg=msg(f"the original's {name}"))


class TwoLayers(nn.Module):
    def __init__(self, n, h, c):
        super().__init__()
        self.first, self.second = nn.Linear(n, h, dtype="float64"), nn.Linear(h, c, dtype="float64")

    def forward(self, x):
        return self.second(self.first(x).tanh())


class TorchTwoLayers(torch.nn.Module):
    def __init__(self, n, h, c):
        super().__init__()
        self.first, self.second = torch.nn.Linear(n, h), torch.nn.Linear(h, c)

    def forward(self, x):
        return self.second(self.first(x).tanh())


@pytest.mark.parametrize("model", ["Sequential", "module of its own"])
@pytest.mark.parametrize("table", ["_modules", "_parameters"])
def test_a_layer_swapped_through_the_modules_table_is_the_one_that_runs(seeded, model, table):
    """``model._modules[name] = layer`` (PyTorch's idiom for swapping layers, as in
    model surgery loops) and ``layer._parameters["weight"] = p``: PyTorch's forward runs
    the new one. wxb's parameters() gave the new one, but ``model.name`` and the
    planned stack of a model that had run kept the old one: the optimiser stepped
    weights that did not compute the output, which stayed the old layer's."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 6, size=3))
    if model == "Sequential":
        ours = nn.Sequential(
            nn.Linear(n, h, dtype="float64"), nn.Tanh(), nn.Linear(h, c, dtype="float64")
        )
        theirs = torch.nn.Sequential(torch.nn.Linear(n, h), torch.nn.Tanh(), torch.nn.Linear(h, c))
        name, torch_name = "dense2", "2"
    else:
        ours, theirs, name, torch_name = (
            TwoLayers(n, h, c),
            TorchTwoLayers(n, h, c),
            "second",
            "second",
        )
    theirs.double()
    new = nn.Linear(h, c, dtype="float64", name=name if model == "Sequential" else None)
    weight = nn.Parameter(rng.normal(size=(c, h)))
    with torch.no_grad():
        for value, other in zip(
            ours.state_dict().values(), theirs.state_dict().values(), strict=True
        ):
            other.copy_(torch.from_numpy(value))
    X = rng.normal(size=(int(rng.integers(2, 7)), n))
    for _ in range(2):  # the model has run (and planned) before the swap
        ours(X).sum().backward()
        with wxb.no_grad():
            ours(X)
    if table == "_modules":
        ours._modules[name] = new
        twin = torch.nn.Linear(h, c).double()
        with torch.no_grad():
            twin.weight.copy_(torch.from_numpy(new.weight.data))
            twin.bias.copy_(torch.from_numpy(new.bias.data))
        theirs._modules[torch_name] = twin
    else:
        ours._modules[name]._parameters["weight"] = weight
        theirs._modules[torch_name]._parameters["weight"] = torch.nn.Parameter(
            torch.from_numpy(weight.data.copy())
        )
    assert [k for k, _ in ours.named_parameters()][-2:] == [
        k.replace(torch_name, name) for k, _ in theirs.named_parameters()
    ][-2:]
    msg = lambda what: seeded.msg(f"{what} after {table}[...] = … on a {model}")  # noqa: E731
    opt = optim.SGD(ours.parameters(), lr=0.1)
    topt = torch.optim.SGD(theirs.parameters(), lr=0.1)
    for _ in range(3):
        expected = theirs(torch.from_numpy(X))
        out = ours(X)
        close(out.data, as_numpy(expected), "float64", "the forward", msg)
        with wxb.no_grad():
            close(ours(X).data, as_numpy(expected), "float64", "the forward without a graph", msg)
        close(ours.predict(X), as_numpy(expected), "float64", "predict", msg)
        opt.zero_grad()
        topt.zero_grad()
        (out**2).sum().backward()
        (expected**2).sum().backward()
        opt.step()
        topt.step()
    for (key, value), other in zip(
        ours.state_dict().items(), theirs.state_dict().values(), strict=True
    ):
        close(value, as_numpy(other), "float64", key, msg)
    assert getattr(ours, name) is ours._modules[name]
    del ours._modules[name]  # as PyTorch's: the attribute goes with it
    assert not hasattr(ours, name)


class TwoTowers(nn.Module):
    """One argument holding two inputs, as a PyTorch forward takes a tuple of tensors."""

    def __init__(self, n, m, c):
        super().__init__()
        self.left, self.right = nn.Linear(n, c, dtype="float64"), nn.Linear(m, c, dtype="float64")

    def forward(self, pair):
        a, b = pair
        return self.left(a).tanh() * self.right(b)


@pytest.mark.parametrize("container", [tuple, list])
def test_a_pair_of_inputs_of_two_widths_in_one_argument_reaches_the_forward(seeded, container):
    """``model((a, b))`` with arrays of two widths: NumPy's bare ValueError ("inhomogeneous
    shape") from stacking them as rows; PyTorch hands the tuple over. Each is an input."""
    rng = seeded.rng
    n, m, c, rows = (int(v) for v in rng.integers(1, 6, size=4))
    m += n  # another width than the first input's
    model = TwoTowers(n, m, c)
    left, right = torch.nn.Linear(n, c).double(), torch.nn.Linear(m, c).double()
    with torch.no_grad():
        for ours, theirs in ((model.left, left), (model.right, right)):
            theirs.weight.copy_(torch.from_numpy(ours.weight.data))
            theirs.bias.copy_(torch.from_numpy(ours.bias.data))
    a, b = rng.normal(size=(rows, n)), rng.normal(size=(rows, m))
    out = model(container((a, b)))
    expected = left(torch.from_numpy(a)).tanh() * right(torch.from_numpy(b))
    msg = lambda what: seeded.msg(what)  # noqa: E731
    close(out.data, as_numpy(expected), "float64", "the output", msg)
    out.sum().backward()
    expected.sum().backward()
    for ours, theirs in zip(
        model.parameters(), [*left.parameters(), *right.parameters()], strict=True
    ):
        close(ours.grad, as_numpy(theirs.grad), "float64", "a gradient", msg)


def stacked_by_hand(lib: Lib, n: int, h: int, c: int, depth: int):
    """Weights kept in a ParameterList and gains in a ParameterDict, used by hand."""

    class ByHandStack(lib.Module):
        def __init__(self):
            super().__init__()
            container = torch.nn if lib.torch else nn
            widths = [n] + [h] * depth + [c]
            self.weights = container.ParameterList(
                [lib.parameter(shape) for shape in itertools.pairwise(widths)]
            )
            self.gains = container.ParameterDict({"hidden": lib.parameter((h,))})
            self.gains["out"] = lib.parameter((c,))

        def forward(self, x):
            for W in self.weights[:-1]:
                x = (x @ W).tanh() * self.gains["hidden"]
            return x @ self.weights[-1] * self.gains["out"]

    return ByHandStack()


@pytest.mark.parametrize("way", ["hand", "fit"])
def test_parameters_held_in_a_list_train_as_in_a_torch_parameter_list(seeded, way):
    """A plain list of Parameters on a module was taken without a word and left out of
    parameters(): fit trained none of them (PyTorch's plain list is not registered
    either, and it has ParameterList, which wxb lacked). A plain list or dict is now
    refused, naming ParameterList and ParameterDict, which train as PyTorch's."""
    rng = seeded.rng
    n, h, c, depth = (int(v) for v in rng.integers(1, 5, size=4))
    spec = {"n": n, "c": c + 1}
    ours = stacked_by_hand(Lib("wxb", np.float64), n, h, c + 1, depth)
    theirs = stacked_by_hand(Lib("torch", np.float64), n, h, c + 1, depth)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
            p.data[...] = rng.normal(scale=0.7, size=p.shape)
            q.copy_(torch.from_numpy(p.data))
    train_both(rng, ours, theirs, spec, "adam", way, "float64", 12)
    msg = lambda what: seeded.msg(f"{what} after training by {way}")  # noqa: E731
    for (name, value), other in zip(
        ours.state_dict().items(), theirs.state_dict().values(), strict=True
    ):
        close(value, as_numpy(other), "float64", name, msg, scale=100)
    for plain in ([nn.Parameter(np.ones(2))], {"a": nn.Parameter(np.ones(2))}):
        with pytest.raises(wxb.ConfigError, match=r"ParameterList.*ParameterDict"):
            ours.more = plain


def centring(lib: Lib, n: int, c: int, shift: np.ndarray):
    """A forward that changes its input in place (x -= shift; x[x > 1] = 1)."""

    class Centre(lib.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("shift", lib.array(shift))
            self.layer = lib.linear(n, c)

        def forward(self, x):
            x -= lib.constant(self.shift)
            x[x > 1] = 1.0
            return self.layer(x)

    return Centre()


@pytest.mark.parametrize("inside", [False, True], ids=["own", "in a Sequential"])
def test_a_forward_that_changes_its_input_in_place_leaves_the_callers_rows_alone(seeded, inside):
    """``model(X)`` under no_grad handed a forward of one's own the caller's own array
    (with a graph, and in predict, it got a copy, as torch.tensor(X) makes one): its
    ``x -= shift`` changed X, and the next call on the same X gave other outputs."""
    rng = seeded.rng
    n, c, rows = (int(v) for v in rng.integers(2, 6, size=3))
    shift = rng.normal(size=n)
    ours = centring(Lib("wxb", np.float64), n, c, shift)
    theirs = centring(Lib("torch", np.float64), n, c, shift)
    with torch.no_grad():
        theirs.layer.weight.copy_(torch.from_numpy(ours.layer.weight.data))
        theirs.layer.bias.copy_(torch.from_numpy(ours.layer.bias.data))
    model = nn.Sequential(ours, nn.Identity()) if inside else ours
    X = rng.normal(size=(rows, n))
    given = X.copy()
    with torch.no_grad():
        expected = as_numpy(theirs(torch.tensor(X)))
    msg = lambda what: seeded.msg(what)  # noqa: E731
    for _ in range(2):
        with wxb.no_grad():
            close(model(X).data, expected, "float64", "the output under no_grad", msg)
        np.testing.assert_array_equal(X, given, err_msg=msg("the caller's X"))
        close(model(X).data, expected, "float64", "the output", msg)
        close(model.predict(X), expected, "float64", "predict", msg)


def with_context(lib: Lib, n: int, m: int, c: int):
    """A forward of two inputs that normalises each by its batch spread (x.std(0))."""

    class WithContext(lib.Module):
        def __init__(self):
            super().__init__()
            self.main, self.side = lib.linear(n, c), lib.linear(m, c)

        def forward(self, x, context=None):
            out = self.main((x - x.mean(0)) / x.std(0))
            if context is not None:
                out = out + self.side(context / context.std(0)) * context.var()
            return out

    return WithContext()


@pytest.mark.parametrize("call", ["x=X", "X, context=C", "x=X, context=C"])
def test_float_arrays_given_by_keyword_are_tensors_as_given_by_place(seeded, call):
    """``model(x=X)`` handed the forward the NumPy array itself (only inputs by place
    became Tensors): its ``x.std(0)`` was NumPy's (ddof 0), not the Tensor's (ddof 1, as
    PyTorch's), and the output was off without a word."""
    rng = seeded.rng
    n, m, c = (int(v) for v in rng.integers(2, 6, size=3))
    rows = int(rng.integers(3, 9))
    ours = with_context(Lib("wxb", np.float64), n, m, c)
    theirs = with_context(Lib("torch", np.float64), n, m, c)
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
            q.copy_(torch.from_numpy(p.data))
    X, C = rng.normal(size=(rows, n)), rng.normal(size=(rows, m))
    tX, tC = torch.from_numpy(X), torch.from_numpy(C)
    if call == "x=X":
        out, expected = ours(x=X), theirs(x=tX)
    elif call == "X, context=C":
        out, expected = ours(X, context=C), theirs(tX, context=tC)
    else:
        out, expected = ours(x=X, context=C), theirs(x=tX, context=tC)
    msg = lambda what: seeded.msg(f"{what} of model({call})")  # noqa: E731
    close(out.data, as_numpy(expected), "float64", "the output", msg)
    out.sum().backward()
    expected.sum().backward()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        if q.grad is not None:
            close(p.grad, as_numpy(q.grad), "float64", f"{name}'s gradient", msg)


def hooked_stack(lib: Lib, n: int, h: int, c: int, seen: list):
    """A stack with a hook that keeps a hidden layer's output, one that doubles the first
    layer's, and a pre-hook that shifts the model's input: each registered as in PyTorch."""
    if lib.torch:
        model = torch.nn.Sequential(
            torch.nn.Linear(n, h), torch.nn.Tanh(), torch.nn.Linear(h, c)
        ).to(TORCH[lib.dtype])
    else:
        model = nn.Sequential(
            nn.Linear(n, h, dtype=lib.dtype), nn.Tanh(), nn.Linear(h, c, dtype=lib.dtype)
        )

    def keep(module, args, out):
        seen.append(as_numpy(out) if lib.torch else out.data.copy())

    handles = [
        model[1].register_forward_hook(keep),
        model[0].register_forward_hook(lambda module, args, out: out * 2.0),
        model.register_forward_pre_hook(lambda module, args: args[0] + 0.5),
    ]
    return model, handles


@pytest.mark.parametrize("way", ["hand", "fit"])
def test_forward_hooks_run_as_torchs_and_their_removal_plans_again(seeded, way):
    """``register_forward_hook`` and ``register_forward_pre_hook`` were missing (an
    AttributeError for PyTorch code that reads a layer's output or changes it). They run
    as PyTorch's, on every path: a hooked Sequential is not run by the planned stack or
    the planned step, which would skip them; once removed, it is planned again."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 6, size=3))
    seen, torch_seen = [], []
    ours, handles = hooked_stack(Lib("wxb", np.float64), n, h, c, seen)
    theirs, _ = hooked_stack(Lib("torch", np.float64), n, h, c, torch_seen)
    with torch.no_grad():
        for value, other in zip(
            ours.state_dict().values(), theirs.state_dict().values(), strict=True
        ):
            other.copy_(torch.from_numpy(value))
    assert ours.why_not_planned() is not None
    msg = lambda what: seeded.msg(f"{what} with hooks, by {way}")  # noqa: E731
    X = rng.normal(size=(int(rng.integers(2, 7)), n))
    with wxb.no_grad(), torch.no_grad():
        close(ours(X).data, as_numpy(theirs(torch.from_numpy(X))), "float64", "no_grad", msg)
    close(seen[-1], torch_seen[-1], "float64", "the hidden output a hook kept", msg)
    train_both(rng, ours, theirs, {"n": n, "c": c}, "adam", way, "float64", 6)
    for (name, value), other in zip(
        ours.state_dict().items(), theirs.state_dict().values(), strict=True
    ):
        close(value, as_numpy(other), "float64", name, msg, scale=100)
    theirs.eval()
    close(ours.predict(X), as_numpy(theirs(torch.from_numpy(X))), "float64", "predict", msg)
    close(seen[-1], torch_seen[-1], "float64", "the hidden output a hook kept", msg)
    for handle in handles:
        handle.remove()
    assert ours.why_not_planned() is None
    twin = torch.nn.Sequential(*theirs)  # the same layers, without the hooks
    for layer in twin:
        layer._forward_hooks.clear()
    close(ours.predict(X), as_numpy(twin(torch.from_numpy(X))), "float64", "unhooked", msg)


@pytest.mark.parametrize("new", [False, True], ids=["replaced", "added"])
def test_a_layer_assigned_to_a_sequential_by_attribute_saves_and_loads(seeded, tmp_path, new):
    """``model.head = Dense(…)`` (PyTorch's way to replace a head) left the layer unnamed
    under the key 'head', and wxb.save refused the model ("named None but sits in the
    Sequential as 'head'"); ``model[i] = …`` and add_module name it after its place, and
    so does an assignment now."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 6, size=3))
    model = nn.Sequential(nn.Linear(n, h), nn.Tanh(), nn.Linear(h, c, name="head"))
    if new:
        model.extra = nn.Sigmoid()
    else:
        model.head = nn.Linear(h, c + 1)
    path = tmp_path / "model.safetensors"
    wxb.save(model, path)
    loaded = wxb.load(path)
    assert list(loaded._modules) == list(model._modules)
    X = rng.normal(size=(4, n)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X), err_msg=seeded.msg("load"))


def test_a_whole_modules_table_set_at_once_runs_in_its_order_as_torchs(seeded):
    """``model._modules = OrderedDict(...)`` (PyTorch code reordering or trimming a stack)
    was refused as "an OrderedDict of modules is not registered": the table is the
    model's own. It is now taken as the model's table, as PyTorch takes it."""
    rng = seeded.rng
    h = int(rng.integers(2, 6))
    ours = nn.Sequential(
        nn.Linear(h, h, dtype="float64"), nn.Tanh(), nn.Linear(h, h, dtype="float64")
    )
    theirs = torch.nn.Sequential(
        torch.nn.Linear(h, h), torch.nn.Tanh(), torch.nn.Linear(h, h)
    ).double()
    with torch.no_grad():
        for value, other in zip(
            ours.state_dict().values(), theirs.state_dict().values(), strict=True
        ):
            other.copy_(torch.from_numpy(value))
    X = rng.normal(size=(int(rng.integers(1, 7)), h))
    ours(X).sum().backward()  # it has run (and planned) in its first order
    ours._modules = OrderedDict(reversed(list(ours._modules.items())))
    theirs._modules = OrderedDict(reversed(list(theirs._modules.items())))
    expected = as_numpy(theirs(torch.from_numpy(X)))
    msg = lambda what: seeded.msg(what)  # noqa: E731
    close(ours(X).data, expected, "float64", "the reordered stack", msg)
    close(ours.predict(X), expected, "float64", "predict", msg)
    assert ours[0] is ours.dense2 and [k for k, _ in ours.named_parameters()][:2] == [
        "dense2.weight",
        "dense2.bias",
    ]


@pytest.mark.parametrize("held", ["registered as None", "set to None"])
def test_a_buffer_registered_where_its_name_was_held_keeps_torchs_place(seeded, held):
    """``register_buffer(name, None)`` holds a buffer's place (PyTorch keeps the name in
    its table); ``register_buffer(name, array)`` later put it after the other buffers
    (assigning the array kept the place), so state_dict's order was not PyTorch's."""
    rng = seeded.rng
    names = [str(name) for name in rng.permutation(["mask", "shift", "count", "gain"])]
    ours, theirs = nn.Module(), torch.nn.Module()
    for name in names:
        ours.register_buffer(name, np.zeros(1))
        theirs.register_buffer(name, torch.zeros(1))
    first = names[int(rng.integers(len(names) - 1))]
    for module, none in ((ours, None), (theirs, None)):
        if held == "registered as None":
            module.register_buffer(first, none)
        else:
            setattr(module, first, none)
    ours.register_buffer(first, np.ones(2))
    theirs.register_buffer(first, torch.ones(2))
    assert list(ours.state_dict()) == list(theirs.state_dict()), seeded.msg(str(names))
    assert [k for k, _ in ours.named_buffers()] == [k for k, _ in theirs.named_buffers()]


def _structure_op(module, lib: str, op: str, key: str, persistent: bool) -> None:
    """One change of a module's structure, written for wxb (lib "w") or for torch."""
    ours = lib == "w"
    parameter = nn.Parameter(np.zeros(2)) if ours else torch.nn.Parameter(torch.zeros(2))
    buffer = np.zeros(1) if ours else torch.zeros(1)
    if op == "module":
        setattr(module, key, nn.Tanh() if ours else torch.nn.Tanh())
    elif op == "parameter":
        setattr(module, key, parameter)
    elif op == "None":
        setattr(module, key, None)
    elif op == "del":
        delattr(module, key)
    elif op == "register_buffer":
        module.register_buffer(key, buffer, persistent=persistent)
    elif op == "buffer set":
        setattr(module, key, buffer)
    elif op == "add_module":
        module.add_module(key, nn.ReLU() if ours else torch.nn.ReLU())
    elif op == "add_module None":
        module.add_module(key, None)
    elif op == "register_parameter":
        module.register_parameter(key, parameter)
    elif op == "register_parameter None":
        module.register_parameter(key, None)
    else:
        module.register_buffer(key, None)


STRUCTURE_OPS = ["module", "parameter", "None", "del", "register_buffer", "buffer set",
                 "add_module", "add_module None", "register_parameter",
                 "register_parameter None", "register_buffer None"]  # fmt: skip


def test_random_changes_of_structure_give_torchs_names_and_order(seeded):
    """Random sequences of what a module's code does to its structure (assign, set to
    None, delete, register, in any order, names reused) on a wxb and a torch module:
    the same successes and refusals, and the same names in the same order throughout."""
    rng = seeded.rng
    for _ in range(200):
        ours, theirs, done = nn.Module(), torch.nn.Module(), []
        for _ in range(10):
            op, key = str(rng.choice(STRUCTURE_OPS)), str(rng.choice(["a", "b", "c", "d"]))
            persistent = bool(rng.random() < 0.6)
            outcome = []
            for module, lib in ((ours, "w"), (theirs, "t")):
                try:
                    _structure_op(module, lib, op, key, persistent)
                    outcome.append("done")
                except Exception:  # (wxb's ConfigError where torch raises its own)
                    outcome.append("refused")
            done.append(f"{op} {key}: {outcome}")
            msg = seeded.msg("\n".join(done))
            assert outcome[0] == outcome[1], msg
            for kind in ("named_parameters", "named_buffers", "named_modules"):
                assert [k for k, _ in getattr(ours, kind)()] == [
                    k for k, _ in getattr(theirs, kind)()
                ], f"{kind}: {msg}"
            assert list(ours.state_dict()) == list(theirs.state_dict()), msg


def test_a_name_held_by_none_stays_before_one_deleted_and_added_again(seeded):
    """Parameters a and c held by None, a deleted and registered again, then c: PyTorch
    keeps c's place, before the new a; wxb placed c after a, as a stood when c was
    held (state_dict's order was not PyTorch's)."""
    ours, theirs = nn.Module(), torch.nn.Module()
    steps = [("register_parameter None", "a"), ("register_parameter None", "c"),
             ("del", "a"), ("register_parameter", "a"), ("register_parameter", "c")]  # fmt: skip
    for op, key in steps:
        _structure_op(ours, "w", op, key, True)
        _structure_op(theirs, "t", op, key, True)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["c", "a"], seeded.msg("")


@pytest.mark.parametrize("kind", ["ModuleDict", "ParameterDict", "ParameterList"])
def test_random_changes_of_a_container_give_torchs_names(seeded, kind):
    """Random edits of a ModuleDict, ParameterDict or ParameterList beside PyTorch's: the
    same successes and refusals, lengths and state_dict names throughout."""
    rng = seeded.rng
    listed = kind == "ParameterList"
    ops = ["append", "extend", "set item", "slice"] if listed else ["set", "del", "pop",
                                                                     "update", "clear"]  # fmt: skip
    for _ in range(40):
        ours, theirs, done = getattr(nn, kind)(), getattr(torch.nn, kind)(), []
        for _ in range(8):
            op, key = str(rng.choice(ops)), str(rng.choice(["a", "b", "c"]))
            index = int(rng.integers(-4, 4))
            outcome = []
            for container, ours_ in ((ours, True), (theirs, False)):

                def item(ours_=ours_):
                    if kind == "ModuleDict":
                        return nn.Tanh() if ours_ else torch.nn.Tanh()
                    return (
                        nn.Parameter(np.zeros(2)) if ours_ else torch.nn.Parameter(torch.zeros(2))
                    )

                try:
                    if op == "append":
                        container.append(item())
                    elif op == "extend":
                        container.extend([item(), item()])
                    elif op == "set item":
                        container[index] = item()
                    elif op == "slice":
                        assert len(container[1:3]) == len(list(range(len(container))[1:3]))
                    elif op == "set":
                        container[key] = item()
                    elif op == "del":
                        del container[key]
                    elif op == "pop":
                        container.pop(key)
                    elif op == "update":
                        container.update({key: item(), "d": item()})
                    else:
                        container.clear()
                    outcome.append("done")
                except (IndexError, KeyError, AttributeError, wxb.ConfigError):
                    outcome.append("refused")
            done.append(f"{op} {key if not listed else index}: {outcome}")
            msg = seeded.msg(f"{kind}: " + "; ".join(done))
            assert outcome[0] == outcome[1], msg
            assert len(ours) == len(theirs), msg
            assert list(ours.state_dict()) == list(theirs.state_dict()), msg


class WeightedLayers(nn.Sequential):
    """Sequential's forward, with an __iter__ of its own listing the layers with weights
    (as an init loop might want them)."""

    def __iter__(self):
        return iter([layer for layer in self._modules.values() if layer._parameters])


def test_a_sequential_iterating_its_own_way_is_planned_as_its_forward_runs(seeded):
    """fit's planned step planned ``list(model)``: a subclass whose __iter__ lists only
    the Dense layers was trained as a stack without its activations (weights 0.08 off
    the model's own forward, which runs every layer), and said engine 'planned'."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 6, size=3))
    seeds = [int(s) for s in rng.integers(1 << 30, size=2)]

    def build():
        return WeightedLayers(
            nn.Linear(n, h, dtype="float64", seed=seeds[0]), nn.Tanh(),
            nn.Linear(h, c, dtype="float64", seed=seeds[1]),
        )  # fmt: skip

    X, y = rng.normal(size=(24, n)), rng.integers(0, c, 24)
    planned = build()
    history = wxb.fit(
        planned, X, y, optimizer=optim.SGD(planned.parameters(), lr=0.2), batch_size=6,
        epochs=2, shuffle=False, verbose=False,
    )  # fmt: skip
    reference = build()
    reference.use_plan = False  # the forward, layer by layer
    opt = optim.SGD(reference.parameters(), lr=0.2)
    for _ in range(2):
        for i in range(0, 24, 6):
            opt.zero_grad()
            nn.CrossEntropyLoss()(reference(X[i : i + 6]), y[i : i + 6]).backward()
            opt.step()
    msg = lambda what: seeded.msg(f"{what} ({history.engine})")  # noqa: E731
    for p, q in zip(planned.parameters(), reference.parameters(), strict=True):
        close(p.data, q.data, "float64", "a weight", msg)
