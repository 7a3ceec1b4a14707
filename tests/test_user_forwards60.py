"""Forwards users write off the well-tested path, generated, trained beside PyTorch.

Each draw writes one ``Module`` subclass once for either library (``Lib``): its weights in
a ``ParameterList`` and its biases in a ``ParameterDict`` (shaped (n,) or (1, n)), a
stack of stages, each a matrix product followed by what a user writes inside forward:
changes in place on the fresh result (``h += b``, ``h[:, j] = 0``, ``h[:, cols] *= c``,
``h *= int_mask``, ``h.relu_()``, ``F.leaky_relu(h, inplace=True)``), then a scale
computed under ``no_grad``, a ``.detach()`` branch, ``wxb.Tensor(h)`` (torch.Tensor(h):
h again), NumPy operands on either side (float32 arrays into the float64 model),
``where`` with a boolean mask, reductions with keepdim, a running mean kept in a buffer
by hand under ``no_grad``, or one stage's matrix reused sliced by another; and a decoder
reusing the input layer's matrix transposed (``F.linear(h, enc.weight.T)``) for a
reconstruction term of the loss.

Then four steps of SGD (momentum, Nesterov), Adam or AdamW with weight decay, in
float64: a parameter frozen between steps (``requires_grad_(False)``: torch steps a
frozen one while it holds a gradient, zeroed or not, and skips it once its gradient is
None), ``zero_grad`` with ``set_to_none`` drawn each step, a step in eval mode. After
every step the loss, each gradient (None where torch's is), each weight and the buffer
equal torch's. ``wxb.interop.to_torch`` of the model either refuses it in a ConfigError
or gives its outputs. Fresh draws each run; the seed is in every message
(``WXB_TEST_SEED`` replays it).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import wxb
from wxb import nn
from wxb.errors import ConfigError
from wxb.interop import to_torch

# what a stage does after its matrix product: the in-place changes of its fresh result
IN_PLACE = ("add_bias", "zero_column", "scale_columns", "int_mask", "relu_", "leaky_relu_")
# then one of these, each making a new tensor
MIXES = (
    "no_grad_scale",
    "detach_branch",
    "numpy_right",
    "numpy_left",
    "where",
    "center",
    "norm_rows",
    "running_mean",
    "wrap",
    "slice_tied",
    "tanh",
)


class Lib:
    """What the model's code needs from a library: the same code builds both models.
    NumPy constants stay NumPy arrays in wxb (the operands under test) and become
    float64 tensors of the same values in torch."""

    def __init__(self, t: bool) -> None:
        self.t = t
        self.nn = torch.nn if t else nn
        self.F = torch.nn.functional if t else nn.functional
        self.no_grad = torch.no_grad if t else wxb.no_grad
        self.where = torch.where if t else wxb.where
        self.Tensor = torch.Tensor if t else wxb.Tensor

    def param(self, a: np.ndarray):
        if self.t:
            return torch.nn.Parameter(torch.tensor(a, dtype=torch.float64))
        return nn.Parameter(a.astype(np.float64))

    def const(self, a: np.ndarray):
        return torch.tensor(a.astype(np.float64) if a.dtype.kind == "f" else a) if self.t else a

    def zeros(self, n: int):
        return torch.zeros(n, dtype=torch.float64) if self.t else wxb.zeros(n, dtype="float64")

    def linear(self, i: int, o: int):
        dtype = torch.float64 if self.t else "float64"
        return self.nn.Linear(i, o, dtype=dtype)


def draw_spec(rng: np.random.Generator) -> dict:
    n, h, c = (int(k) for k in rng.integers(3, 7, size=3))
    stages = []
    for k in range(int(rng.integers(2, 4))):
        edits = [str(e) for e in rng.permutation(IN_PLACE) if rng.random() < 0.4]
        # a relu_ last: its backward reads its result, which no later change may touch
        last = [e for e in edits if e.endswith("_")][:1]
        edits = [e for e in edits if not e.endswith("_")] + last
        mix = str(rng.choice(MIXES[:-2] + (() if k == 0 else ("slice_tied",)) + ("tanh",)))
        stages.append(
            {
                "edits": edits,
                "mix": mix,
                "bias_shape": (1, h) if rng.random() < 0.5 else (h,),
                "column": int(rng.integers(-h, h)),
                "columns": rng.permutation(h)[: int(rng.integers(1, h))],
                "factor": float(rng.uniform(-2, 2)),
                "slope": float(rng.uniform(0.01, 0.3)),
                "int_mask": rng.integers(0, 3, size=(1, h) if rng.random() < 0.5 else (1,)),
                "bool_mask": rng.random(h) < 0.5,
                "matrix": rng.normal(size=(h, h)).astype(np.float32),
                "vector": rng.normal(size=h).astype(np.float32),
                "momentum": float(rng.uniform(0.05, 0.5)),
                "keep": int(rng.integers(1, h + 1)),
            }
        )
    return {
        "n": n,
        "h": h,
        "c": c,
        "stages": stages,
        "head_bias_shape": (1, c) if rng.random() < 0.5 else (c,),
        "recon": float(rng.uniform(0, 1)) if rng.random() < 0.6 else 0.0,
        "weights": [rng.normal(scale=0.6, size=(h, h)) for _ in stages],
        "biases": [rng.normal(scale=0.3, size=s["bias_shape"]) for s in stages],
        "head_w": rng.normal(scale=0.5, size=(h, c)),
        "head_b": rng.normal(scale=0.2, size=(1, c) if rng.random() < 0.5 else (c,)),
        "enc_w": rng.normal(scale=0.5, size=(h, n)),
        "enc_b": rng.normal(scale=0.2, size=h),
        "dec_b": rng.normal(scale=0.2, size=n),
    }


def build(lib: Lib, spec: dict):
    """The model of ``spec`` in ``lib``."""
    F, stages = lib.F, spec["stages"]

    class UserNet(lib.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = lib.linear(spec["n"], spec["h"])
            with lib.no_grad():
                self.enc.weight.copy_(lib.const(spec["enc_w"]))
                self.enc.bias.copy_(lib.const(spec["enc_b"]))
            self.ws = lib.nn.ParameterList([lib.param(w) for w in spec["weights"]])
            self.bs = lib.nn.ParameterDict(
                {f"stage{k}": lib.param(b) for k, b in enumerate(spec["biases"])}
            )
            self.head_w = lib.param(spec["head_w"])
            self.head_b = lib.param(spec["head_b"])
            self.dec_b = lib.param(spec["dec_b"])
            self.register_buffer("running", lib.zeros(spec["h"]))
            self.recon = None

        def forward(self, x):
            h = F.linear(x, self.enc.weight, self.enc.bias)
            for k, s in enumerate(stages):
                h = h @ self.ws[k]  # a fresh result: changing it in place is allowed
                for edit in s["edits"]:
                    if edit == "add_bias":
                        h += self.bs[f"stage{k}"]
                    elif edit == "zero_column":
                        h[:, s["column"]] = 0
                    elif edit == "scale_columns":
                        h[:, lib.const(s["columns"])] *= s["factor"]
                    elif edit == "int_mask":
                        h *= lib.const(s["int_mask"])
                    elif edit == "relu_":
                        h = h.relu_()
                    elif edit == "leaky_relu_":
                        h = F.leaky_relu(h, s["slope"], inplace=True)
                h = self.mix(h, k, s)
            if spec["recon"]:  # the input layer's matrix again, transposed
                self.recon = F.linear(h.tanh(), self.enc.weight.T, self.dec_b)
            return h @ self.head_w + self.head_b

        def mix(self, h, k, s):
            kind = s["mix"]
            if kind == "no_grad_scale":
                with lib.no_grad():
                    scale = h.abs().amax(1, keepdim=True) + 1
                return h / scale
            if kind == "detach_branch":
                return h.tanh() + 0.5 * h.detach().tanh() ** 2
            if kind == "numpy_right":
                return h @ lib.const(s["matrix"]) * 0.3 + h
            if kind == "numpy_left":
                return lib.const(s["vector"]) * h.sigmoid()
            if kind == "where":
                return lib.where(lib.const(s["bool_mask"]), h.tanh(), 0.1 * h)
            if kind == "center":
                return (h - h.mean(1, keepdim=True)).tanh()
            if kind == "norm_rows":
                return h / (h.norm(dim=1, keepdim=True) + 1)
            if kind == "running_mean":
                if self.training:
                    with lib.no_grad():
                        self.running.mul_(1 - s["momentum"]).add_(s["momentum"] * h.mean(0))
                return (h - self.running).tanh()
            if kind == "wrap":  # h again, in the graph (torch.Tensor(h): an alias)
                return lib.Tensor(h).tanh()
            if kind == "slice_tied":  # the first stage's matrix, its leading rows
                keep = s["keep"]
                return h.tanh() + h[:, :keep] @ self.ws[0][:keep] * 0.5
            return h.tanh()

    return UserNet()


def draw_run(rng: np.random.Generator, names: list[str]) -> dict:
    kind = str(rng.choice(["SGD", "Adam", "AdamW"]))
    if kind == "SGD":
        nesterov = bool(rng.random() < 0.5)
        settings = {
            "lr": float(rng.uniform(0.01, 0.1)),
            "momentum": float(rng.uniform(0.5, 0.95)),
            "dampening": 0.0 if nesterov else float(rng.choice([0.0, 0.3])),
            "nesterov": nesterov,
            "weight_decay": float(rng.choice([0.0, 0.01, 0.1])),
        }
    else:
        settings = {
            "lr": float(rng.uniform(0.001, 0.03)),
            "weight_decay": float(rng.choice([0.0, 0.01, 0.1])),
        }
    return {
        "kind": kind,
        "settings": settings,
        "frozen": str(rng.choice(names)),
        "freeze_at": int(rng.integers(1, 4)),
        "unfreeze_at": int(rng.integers(2, 5)),
        "set_to_none": [bool(rng.random() < 0.5) for _ in range(4)],
        "eval_at": int(rng.integers(0, 6)),  # 4, 5: every step in training mode
    }


def check_run(seeded, spec: dict, run: dict) -> None:
    rng = seeded.rng
    made = [build(Lib(t), spec) for t in (False, True)]
    names = [name for name, _ in made[0].named_parameters()]
    assert names == [name for name, _ in made[1].named_parameters()]
    params = [dict(m.named_parameters()) for m in made]
    opts = [
        getattr(lib, run["kind"])(m.parameters(), **run["settings"])
        for lib, m in zip((wxb.optim, torch.optim), made, strict=True)
    ]
    context = f"{run} on {spec['stages']}"

    def compare(what: str, got, want) -> None:
        got = np.asarray(got, dtype=np.float64)
        want = np.asarray(want.detach() if isinstance(want, torch.Tensor) else want)
        assert got.shape == want.shape, seeded.msg(f"{context}: {what}: shape")
        np.testing.assert_allclose(
            got, want, rtol=1e-9, atol=1e-11, err_msg=seeded.msg(f"{context}: {what}")
        )

    for step in range(4):
        if step == run["freeze_at"]:  # between steps, a gradient held or not
            for p in params:
                p[run["frozen"]].requires_grad_(False)
        if step == run["unfreeze_at"]:
            for p in params:
                p[run["frozen"]].requires_grad_(True)
        for m in made:
            m.train(step != run["eval_at"])
        for o in opts:
            o.zero_grad(set_to_none=run["set_to_none"][step])
        X = rng.normal(size=(int(rng.integers(3, 8)), spec["n"]))
        Y = rng.normal(size=(len(X), spec["c"]))
        losses = []
        for m, t in zip(made, (False, True), strict=True):
            x, y = (torch.from_numpy(X), torch.from_numpy(Y)) if t else (X, Y)
            loss = ((m(x) - y) ** 2).mean()
            if spec["recon"]:
                loss = loss + spec["recon"] * ((m.recon - x) ** 2).mean()
            loss.backward()
            losses.append(loss.item())
        assert np.isfinite(losses[1]), seeded.msg(f"{context}: step {step}: torch's loss")
        compare(f"step {step}: loss", losses[0], losses[1])
        for name in names:
            ours, theirs = params[0][name].grad, params[1][name].grad
            assert (ours is None) == (theirs is None), seeded.msg(
                f"{context}: step {step}: {name}.grad is {ours} where torch's is {theirs}"
            )
            if theirs is not None:
                compare(f"step {step}: {name}.grad", ours, theirs)
        for o in opts:
            o.step()
        for name in names:
            compare(f"step {step}: {name} after the step", params[0][name].data, params[1][name])
        compare(f"step {step}: the running buffer", made[0].running.data, made[1].running)
    X = rng.normal(size=(5, spec["n"]))
    made[0].eval()
    try:
        ported = to_torch(made[0])
    except ConfigError:
        return  # a clear refusal: no PyTorch twin of this forward
    with torch.no_grad():
        compare("to_torch's outputs", ported(torch.from_numpy(X)), made[0].predict(X))


@pytest.mark.parametrize("draw", range(4))
def test_generated_user_forwards_train_as_torchs(seeded, draw, torch_default_dtype):
    spec = draw_spec(seeded.rng)
    names = ["enc.weight", "enc.bias", "head_w", "head_b", "ws.0", "bs.stage0"]
    check_run(seeded, spec, draw_run(seeded.rng, names))


class Wrapping(nn.Module):
    """A block that makes its input a tensor first (``x = wxb.Tensor(x)``: arrays too)."""

    def __init__(self, n: int, m: int) -> None:
        super().__init__()
        self.fc = nn.Linear(n, m, dtype="float64")

    def forward(self, x):
        return self.fc(wxb.Tensor(x).tanh())


def test_a_block_wrapping_its_input_in_tensor_passes_the_gradient_on_as_torchs(seeded):
    """``wxb.Tensor(h)`` of a result cut it from the graph, where ``torch.Tensor(h)`` is
    h again (an alias): a block starting ``x = wxb.Tensor(x)``, put after another layer,
    left that layer with no gradient, and an optimiser stepped it by weight decay alone,
    without a word. Now ∂L/∂h flows through, in h's dtype, as torch's."""
    rng = seeded.rng
    n, h, c = (int(k) for k in rng.integers(2, 7, size=3))
    first, block = nn.Linear(n, h, dtype="float64"), Wrapping(h, c)
    theirs = [torch.nn.Linear(i, o, dtype=torch.float64) for i, o in ((n, h), (h, c))]
    with torch.no_grad():
        for layer, twin in zip((first, block.fc), theirs, strict=True):
            twin.weight.copy_(torch.from_numpy(layer.weight.data))
            twin.bias.copy_(torch.from_numpy(layer.bias.data))
    X, Y = rng.normal(size=(5, n)), rng.normal(size=(5, c))
    ((block(first(X)) - Y) ** 2).mean().backward()
    out = theirs[1](torch.Tensor(theirs[0](torch.from_numpy(X))).tanh())
    ((out - torch.from_numpy(Y)) ** 2).mean().backward()
    for mine, twin in ((first.weight, theirs[0].weight), (first.bias, theirs[0].bias)):
        assert mine.grad is not None, seeded.msg("the first layer got no gradient")
        np.testing.assert_allclose(mine.grad, twin.grad.numpy(), rtol=1e-12, atol=1e-14)
    # changed in place, it changes h, recorded as torch records a change of a view
    A, W = rng.normal(size=(3, 4)), rng.normal(size=(4, 4))
    grads = []
    for lib in (wxb, torch):
        x, w = (lib.tensor(v, requires_grad=True, dtype=lib.float64) for v in (A, W))
        h = x @ w
        a = lib.Tensor(h)
        a += 1
        a[:, 0] *= 3
        ((h.tanh() * a).sum() + (a**2).mean()).backward()
        grads.append([np.asarray(x.grad), np.asarray(w.grad)])
    for mine, theirs in zip(*grads, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12, err_msg=seeded.msg("+="))
    # a float32 Tensor(h, dtype=...) of a float64 h: its gradient back in float64
    t = wxb.tensor(rng.normal(size=3), requires_grad=True, dtype="float64")
    wxb.Tensor(t * 2, dtype="float32").sum().backward()
    assert t.grad.dtype == np.float64 and np.array_equal(t.grad, np.full(3, 2.0))
    # and what stays as it was: under no_grad, detach(), a new leaf asked for
    a = wxb.tensor(rng.normal(size=2), requires_grad=True, dtype="float64")
    with wxb.no_grad():
        assert not wxb.Tensor(a * 2).requires_grad
    assert not (a * 2).detach().requires_grad
    leaf = wxb.Tensor(a * 2, requires_grad=True)
    assert leaf.is_leaf and leaf.requires_grad
