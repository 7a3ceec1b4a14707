"""Models a user could write with ``wxb.nn``, each with a PyTorch twin of identical weights.

A generator for differential tests (``tests/test_differential.py``) and for any test
that needs "a model somebody wrote": save/load round trips, threads, … .

``user_models()`` is a Hypothesis strategy of :class:`UserModel`: a wxb model and its
``torch.nn`` twin, in float64, with the same parameter values (tied parameters tied in
both, shared layers shared in both, frozen parameters frozen in both). ``.wxb_model``,
``.torch_model``, ``.n_inputs``, ``.input_width``, ``.output_width``, ``.params``
(name, wxb parameter, torch parameter), ``.describe()`` (the model as code). The
models are built the way the README shows:

* ``Sequential`` of ``Dense`` (widths 1–9, bias on or off), activations (Identity,
  Sigmoid, Tanh, ReLU, LeakyReLU with a random slope, GELU exact or tanh, SiLU, ELU(α),
  Softplus(β, threshold), Softmax or LogSoftmax on
  two or more units), ``Standardize``, ``LayerNorm``, ``Dropout`` (p = 0, or p > 0 for eval-mode
  comparisons) — nested, with tied weights, and subclassed with their own ``forward``
  (``x + super().forward(x)``, ``2 * super().forward(x)``);
* custom ``Module`` subclasses (``super().__init__()``, layers assigned as attributes,
  their own ``forward``): residual blocks; one layer or block applied twice; two
  branches mixed by arithmetic (``h1 * h2``, ``h1 / (1 + h2**2)``, gating with
  ``wf.sigmoid``, ``h1 @ (h2.T @ h2)``, …); NumPy constants on either side of a tensor
  (``np.float64(0.5) * h``, ``c - h``, ``(C @ h.T).T``); NumPy ufuncs, batch statistics
  (``h - h.mean(0)``), indexing and reshapes; tied weights; a learnable gain (0-d or one
  per unit); a linear layer from bare Parameters; a tied autoencoder (the encoder's
  matrix reused, transposed, by the decoder); two layers assigned head first;
  an output of shape (B,) (``h[:, 0]``, ``h.sum(1)``);
* two-input models (``forward(self, a, b)``): two towers, or one shared tower (siamese).

Losses (``losses()``, ``UserModel.losses()``: wxb's, as an object, a function or a
formula in tensor operations, and the matching torch expression, with targets; the
cross-entropies' weight=, ignore_index= (padding rows planted), label_smoothing=, and
BCEWithLogitsLoss's weight= and pos_weight= in the shapes PyTorch broadcasts) and
optimisers (``optimizers()``: SGD, Adam, AdamW, RMSprop, Adagrad, NAdam, RAdam, Adamax,
Adadelta, the same settings on both sides, one or two parameter groups) come with it.

Where wxb deliberately differs from PyTorch, the torch side computes wxb's documented
definition: ``MSELoss`` is (1/B) Σᵢ ½‖ŷᵢ − yᵢ‖² (``reduction="sum"``: no 1/B); Adagrad's
Σ starts at each group's own initial_accumulator_value (``OptimizerCase.start_sums``).

An expression wxb cannot compute (a missing operator or method) is found by a probe at
import and kept out of the generated models (``UNSUPPORTED_*``); it is generated again
as soon as wxb has it. ``test_differential.test_expressions_a_user_writes`` checks
every expression on its own, so a missing one fails there, by name.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

import wxb
from wxb.nn import (
    ELU,
    GELU,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Dense,
    Dropout,
    Identity,
    LayerNorm,
    LeakyReLU,
    LogSoftmax,
    Module,
    MSELoss,
    NLLLoss,
    Parameter,
    ReLU,
    Sequential,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Standardize,
    Tanh,
)
from wxb.nn import functional as wf

T64 = torch.float64


# =====================================================================================
# Arithmetic a user writes inside forward
# =====================================================================================
# Each expression is written once, as a function of a namespace ``f`` and tensors:
# ``f`` is WXB_F for the wxb model and TORCH_F for its twin, so both compute the same
# formula; the text is what the user would write in wxb.
WXB_F = SimpleNamespace(
    sigmoid=wf.sigmoid,
    tanh=wf.tanh,
    relu=wf.relu,
    softmax=wf.softmax,
    gelu_tanh=lambda h: wf.gelu(h, "tanh"),
    leaky_relu=lambda h: wf.leaky_relu(h, 0.1),
    silu=wf.silu,
    elu=wf.elu,
    softplus=wf.softplus,
    layer_norm=lambda h, eps=1e-5: wf.layer_norm(h, h.shape[1:], eps=eps),
    np_exp=np.exp,  # NumPy's own ufuncs called on a tensor
    np_sqrt=np.sqrt,
    np_log=np.log,
    np_abs=np.abs,
    mean=lambda h, axis, keepdims=False: h.mean(axis, keepdims=keepdims),
    sum=lambda h, axis, keepdims=False: h.sum(axis, keepdims=keepdims),
    rows_reversed=lambda h: h[::-1],
    columns_reversed=lambda h: h[:, ::-1],
    arange=np.arange,
)
TORCH_F = SimpleNamespace(
    sigmoid=torch.sigmoid,
    tanh=torch.tanh,
    relu=torch.relu,
    softmax=lambda h: torch.softmax(h, dim=1),
    gelu_tanh=lambda h: F.gelu(h, approximate="tanh"),
    leaky_relu=lambda h: F.leaky_relu(h, 0.1),
    silu=F.silu,
    elu=F.elu,
    softplus=F.softplus,
    layer_norm=lambda h, eps=1e-5: F.layer_norm(h, h.shape[1:], eps=eps),
    np_exp=torch.exp,
    np_sqrt=torch.sqrt,
    np_log=torch.log,
    np_abs=torch.abs,
    mean=lambda h, axis, keepdims=False: h.mean(axis, keepdim=keepdims),
    sum=lambda h, axis, keepdims=False: h.sum(axis, keepdim=keepdims),
    rows_reversed=lambda h: h.flip(0),
    columns_reversed=lambda h: h.flip(1),
    arange=torch.arange,
)

MIXES: dict[str, Callable] = {  # (f, h1, h2): two branches of equal shape → one
    "h1 + h2": lambda f, h1, h2: h1 + h2,
    "h1 - h2": lambda f, h1, h2: h1 - h2,
    "h1 * h2": lambda f, h1, h2: h1 * h2,
    "0.5 * h1 - h2 / 4": lambda f, h1, h2: 0.5 * h1 - h2 / 4,
    "-h1 * h2 + h1": lambda f, h1, h2: -h1 * h2 + h1,
    "h1 / (1 + h2**2)": lambda f, h1, h2: h1 / (1 + h2**2),
    "h1 * (1 / (2 + h2 * h2))": lambda f, h1, h2: h1 * (1 / (2 + h2 * h2)),
    "h1**2 - h2": lambda f, h1, h2: h1**2 - h2,
    "h1 * wf.sigmoid(h2)": lambda f, h1, h2: h1 * f.sigmoid(h2),
    "wf.tanh(h1) * h2 + h1": lambda f, h1, h2: f.tanh(h1) * h2 + h1,
    "(h1 - h2).abs()": lambda f, h1, h2: (h1 - h2).abs(),
    "(h1 * h2).sum(1, keepdims=True) * h1": lambda f, h1, h2: f.sum(h1 * h2, 1, True) * h1,
    "h1 @ (h2.T @ h2) / 8": lambda f, h1, h2: h1 @ (h2.T @ h2) / 8,
    "wf.softmax(h1) * h2": lambda f, h1, h2: f.softmax(h1) * h2,
    "h1 * wf.silu(h2)": lambda f, h1, h2: h1 * f.silu(h2),
}
OPERANDS: dict[str, Callable] = {  # (f, c, h): a NumPy constant c and a tensor h
    "c * h": lambda f, c, h: c * h,
    "h * c": lambda f, c, h: h * c,
    "c - h": lambda f, c, h: c - h,
    "h - c": lambda f, c, h: h - c,
    "c + h": lambda f, c, h: c + h,
    "h + c": lambda f, c, h: h + c,
    "h / c": lambda f, c, h: h / c,
    "c / (1 + h * h)": lambda f, c, h: c / (1 + h * h),
    "c**2 * h": lambda f, c, h: c**2 * h,
    "h @ c": lambda f, c, h: h @ c,  # c a matrix
    "(c @ h.T).T": lambda f, c, h: (c @ h.T).T,  # c a matrix, NumPy on the left of @
}
MATRIX_OPERANDS = ("h @ c", "(c @ h.T).T")
CONSTANTS = ("np.float64", "vector (w,)", "row (1, w)", "matrix (w, w)")  # what c is
TRANSFORMS: dict[str, Callable] = {  # (f, h, idx): one tensor (B, w) → (B, w)
    "h - h.mean(0)": lambda f, h, idx: h - h.mean(0),
    "h * h.mean(0)": lambda f, h, idx: h * h.mean(0),
    "h - h.mean(1, keepdims=True)": lambda f, h, idx: h - f.mean(h, 1, True),
    "h / (1 + h.abs().sum(1, keepdims=True))": lambda f, h, idx: h / (1 + f.sum(h.abs(), 1, True)),
    "np.exp(-h * h)": lambda f, h, idx: f.np_exp(-h * h),
    "np.sqrt(1 + h * h) + np.log(2 + h * h)": lambda f, h, idx: (
        f.np_sqrt(1 + h * h) + f.np_log(2 + h * h)
    ),
    "np.abs(h) - h": lambda f, h, idx: f.np_abs(h) - h,
    "(1 + h * h).log() - (1 + h * h).sqrt()": lambda f, h, idx: (
        (1 + h * h).log() - (1 + h * h).sqrt()
    ),
    "(0.5 * h).exp()": lambda f, h, idx: (0.5 * h).exp(),
    "h.abs() * h": lambda f, h, idx: h.abs() * h,
    "h**3 - h": lambda f, h, idx: h**3 - h,
    "2**h": lambda f, h, idx: 2**h,
    "h * wf.sigmoid(h)": lambda f, h, idx: h * f.sigmoid(h),
    "wf.tanh(h) + wf.relu(h) / 2": lambda f, h, idx: f.tanh(h) + f.relu(h) / 2,
    "wf.gelu(h, 'tanh') - wf.leaky_relu(h, 0.1)": lambda f, h, idx: (
        f.gelu_tanh(h) - f.leaky_relu(h)
    ),
    "wf.silu(h) - wf.elu(h, 0.5)": lambda f, h, idx: f.silu(h) - f.elu(h, 0.5),
    "wf.elu(h) + wf.softplus(h)": lambda f, h, idx: f.elu(h) + f.softplus(h),
    "wf.softplus(h, 2.0, 1.0) * h": lambda f, h, idx: f.softplus(h, 2.0, 1.0) * h,
    "wf.softplus(h, beta=0.5, threshold=0.5)": lambda f, h, idx: f.softplus(
        h, beta=0.5, threshold=0.5
    ),
    "wf.layer_norm(h, h.shape[1:]) * 2 + h": lambda f, h, idx: f.layer_norm(h) * 2 + h,
    "h * wf.layer_norm(h, h.shape[1:], eps=0.1)": lambda f, h, idx: h * f.layer_norm(h, 0.1),
    "h[::-1]": lambda f, h, idx: f.rows_reversed(h),
    "h[:, ::-1] * h": lambda f, h, idx: f.columns_reversed(h) * h,
    "h[:, idx]": lambda f, h, idx: h[:, idx],
    "(h.reshape(-1, 1) * 2).reshape(h.shape) - h": lambda f, h, idx: (
        (h.reshape(-1, 1) * 2).reshape(h.shape) - h
    ),
    "h.T.T + h[0]": lambda f, h, idx: h.T.T + h[0],
    # torch's tensor methods, the same code on both sides
    "h.relu() * h.sigmoid() + h.tanh()": lambda f, h, idx: h.relu() * h.sigmoid() + h.tanh(),
    "h.softmax(1) * h + h.log_softmax(dim=1)": lambda f, h, idx: (
        h.softmax(1) * h + h.log_softmax(dim=1)
    ),
    "h - h.mean(dim=1, keepdim=True)": lambda f, h, idx: h - h.mean(dim=1, keepdim=True),
    "h.clamp(-0.5, 0.5) + h.clamp(min=0)": lambda f, h, idx: h.clamp(-0.5, 0.5) + h.clamp(min=0),
    "h - h.max(dim=1, keepdim=True).values": lambda f, h, idx: (
        h - h.max(dim=1, keepdim=True).values
    ),
    "h.unsqueeze(1).flatten(1).t().t() * h.square()": lambda f, h, idx: (
        h.unsqueeze(1).flatten(1).t().t() * h.square()
    ),
}


def _works(compute: Callable[[], object]) -> bool:
    """Whether wxb computes this, keeping the graph (a probe at import)."""
    try:
        out = compute()
        return isinstance(out, wxb.Tensor) and out.requires_grad
    except Exception:  # a missing operator or method, or any error: reported by name there
        return False


def _probe_tensor(shape=(2, 3)) -> wxb.Tensor:
    return wxb.Tensor(np.full(shape, 0.5), requires_grad=True)


def _probe() -> tuple[set[str], set[str], set[str]]:
    """The expressions wxb.Tensor cannot compute (today): kept out of generated models;
    ``test_differential.test_expressions_a_user_writes`` reports them."""
    h, idx = _probe_tensor(), np.array([2, 0, 0])
    mixes = {k for k, e in MIXES.items() if not _works(lambda e=e: e(WXB_F, h, h))}
    operands = set()
    for k, e in OPERANDS.items():
        c = np.eye(3) if k in MATRIX_OPERANDS else np.float64(1.5)
        if not _works(lambda e=e, c=c: e(WXB_F, c, h)):
            operands.add(k)
    transforms = {k for k, e in TRANSFORMS.items() if not _works(lambda e=e: e(WXB_F, h, idx))}
    return mixes, operands, transforms


UNSUPPORTED_MIXES, UNSUPPORTED_OPERANDS, UNSUPPORTED_TRANSFORMS = _probe()


def _constant(kind: str, width: int, rng: np.random.Generator):
    """Entries of magnitude 0.5–1.5, either sign (a divisor never comes near 0)."""
    shape = {"np.float64": (), "vector (w,)": (width,), "row (1, w)": (1, width)}.get(
        kind, (width, width)
    )
    values = rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    return np.float64(values) if kind == "np.float64" else values


# =====================================================================================
# The wxb models, written as a user would write them
# =====================================================================================
class ResidualSequential(Sequential):
    """x + layers(x): a Sequential subclass with its own forward."""

    def forward(self, x):
        return x + super().forward(x)


class ScaledSequential(Sequential):
    """2 · layers(x)."""

    def forward(self, x):
        return 2 * super().forward(x)


class Residual(Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


class SharedTwice(Module):
    """One layer (or block) applied twice: layer(act(layer(x)))."""

    def __init__(self, layer, act):
        super().__init__()
        self.layer = layer
        self.act = act

    def forward(self, x):
        return self.layer(self.act(self.layer(x)))


class Branches(Module):
    """Two branches on the same input, mixed by arithmetic (no concatenation)."""

    def __init__(self, left, right, mix):
        super().__init__()
        self.left = left
        self.right = right
        self.mix = mix

    def forward(self, x):
        return MIXES[self.mix](WXB_F, self.left(x), self.right(x))


class WithConstant(Module):
    """A NumPy constant combined with the body's output, on either side."""

    def __init__(self, body, op, constant):
        super().__init__()
        self.body = body
        self.op = op
        self.constant = constant

    def forward(self, x):
        return OPERANDS[self.op](WXB_F, self.constant, self.body(x))


class Apply(Module):
    """An expression of one tensor: batch statistics, NumPy ufuncs, indexing, …"""

    def __init__(self, body, expression, idx):
        super().__init__()
        self.body = body
        self.expression = expression
        self.idx = idx

    def forward(self, x):
        return TRANSFORMS[self.expression](WXB_F, self.body(x), self.idx)


class TiedPair(Module):
    """Two Dense layers sharing one weight matrix (``second.weight = first.weight``)."""

    def __init__(self, first, second, act, chain):
        super().__init__()
        self.first = first
        self.second = second
        self.second.weight = self.first.weight
        self.act = act
        self.chain = chain

    def forward(self, x):
        if self.chain:
            return self.second(self.act(self.first(x)))
        return self.first(x) + self.act(self.second(x))


GAINS: dict[str, Callable] = {  # (g, h): a learnable gain g and the body's output h
    "g * h": lambda g, h: g * h,
    "h * g": lambda g, h: h * g,
    "h * g + g": lambda g, h: h * g + g,  # one parameter used twice in an expression
    "h / (1 + g * g)": lambda g, h: h / (1 + g * g),
}


UNSUPPORTED_GAINS = {
    k
    for k, e in GAINS.items()
    if not _works(lambda e=e: e(wxb.nn.Parameter(np.array(1.5)), _probe_tensor()))
}


class Gain(Module):
    """body(x) and a learnable gain g (0-d, or one per unit), in an expression."""

    def __init__(self, body, gain, op):
        super().__init__()
        self.body = body
        self.gain = Parameter(gain)
        self.op = op

    def forward(self, x):
        return GAINS[self.op](self.gain, self.body(x))


class RawLinear(Module):
    """A linear layer from bare Parameters, in one of the ways people write it."""

    FORMS = ("x @ W.T + b", "x @ V + b", "(W @ x.T).T + b", "x @ W.T")  # V is W stored (in, out)

    def __init__(self, in_features, out_features, form, dtype=None):
        super().__init__()
        self.form = form
        shape = (in_features, out_features) if form == "x @ V + b" else (out_features, in_features)
        self.weight = Parameter(np.zeros(shape), dtype=dtype)
        if form != "x @ W.T":
            self.bias = Parameter(np.zeros(out_features), dtype=dtype)

    def forward(self, x):
        if self.form == "x @ W.T + b":
            return x @ self.weight.T + self.bias
        if self.form == "x @ V + b":
            return x @ self.weight + self.bias
        if self.form == "(W @ x.T).T + b":
            return (self.weight @ x.T).T + self.bias
        return x @ self.weight.T


class TiedAutoencoder(Module):
    """decode(encode(x)) with the decoder's matrix the encoder's, transposed."""

    def __init__(self, encoder_layer, act, dtype=None):
        super().__init__()
        self.encoder = Sequential(encoder_layer, act)
        self.decoder_bias = Parameter(np.zeros(encoder_layer.in_features), dtype=dtype)

    def forward(self, x):
        return self.encoder(x) @ self.encoder[0].weight + self.decoder_bias


SQUEEZES: dict[str, Callable] = {  # (B, w) → (B,): a model with one output per row
    "h[:, 0]": lambda h: h[:, 0],
    "h[:, -1]": lambda h: h[:, -1],
    "h.sum(1)": lambda h: h.sum(1),
    "h.mean(1)": lambda h: h.mean(1),
    "h.reshape(-1)": lambda h: h.reshape(-1),  # width 1 only
}


UNSUPPORTED_SQUEEZES = {
    k for k, e in SQUEEZES.items() if not _works(lambda e=e: e(_probe_tensor((2, 1))))
}


class Squeeze(Module):
    """A model whose output is a vector (B,), not a matrix (B, 1)."""

    def __init__(self, body, form):
        super().__init__()
        self.body = body
        self.form = form

    def forward(self, x):
        return SQUEEZES[self.form](self.body(x))


class TwoLayer(Module):
    """head(act(hidden(x))), the layers assigned in either order."""

    def __init__(self, hidden, act, head, head_first):
        super().__init__()
        if head_first:
            self.head = head
            self.hidden = hidden
        else:
            self.hidden = hidden
            self.head = head
        self.act = act

    def forward(self, x):
        return self.head(self.act(self.hidden(x)))


class TwoInputs(Module):
    """forward(a, b): one tower per input, mixed, then an optional head."""

    def __init__(self, left, right, mix, head=None):
        super().__init__()
        self.left = left
        self.right = right
        self.mix = mix
        self.head = head

    def forward(self, a, b):
        h = MIXES[self.mix](WXB_F, self.left(a), self.right(b))
        return h if self.head is None else self.head(h)


class Siamese(Module):
    """forward(a, b): one shared tower on both inputs, mixed, then an optional head."""

    def __init__(self, tower, mix, head=None):
        super().__init__()
        self.tower = tower
        self.mix = mix
        self.head = head

    def forward(self, a, b):
        h = MIXES[self.mix](WXB_F, self.tower(a), self.tower(b))
        return h if self.head is None else self.head(h)


# =====================================================================================
# Their PyTorch twins
# =====================================================================================
class TorchStandardize(torch.nn.Module):
    def __init__(self, mean, scale):
        super().__init__()
        self.register_buffer("mean", torch.tensor(np.array(mean, dtype=np.float64)))
        self.register_buffer("scale", torch.tensor(np.array(scale, dtype=np.float64)))

    def forward(self, x):
        return (x - self.mean) / self.scale


class TorchResidualSequential(torch.nn.Sequential):
    def forward(self, x):
        return x + super().forward(x)


class TorchScaledSequential(torch.nn.Sequential):
    def forward(self, x):
        return 2 * super().forward(x)


class TorchResidual(torch.nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


class TorchSharedTwice(torch.nn.Module):
    def __init__(self, layer, act):
        super().__init__()
        self.layer, self.act = layer, act

    def forward(self, x):
        return self.layer(self.act(self.layer(x)))


class TorchBranches(torch.nn.Module):
    def __init__(self, left, right, mix):
        super().__init__()
        self.left, self.right, self.mix = left, right, mix

    def forward(self, x):
        return MIXES[self.mix](TORCH_F, self.left(x), self.right(x))


class TorchWithConstant(torch.nn.Module):
    def __init__(self, body, op, constant):
        super().__init__()
        self.body, self.op = body, op
        self.constant = torch.tensor(np.array(constant, dtype=np.float64))

    def forward(self, x):
        return OPERANDS[self.op](TORCH_F, self.constant, self.body(x))


class TorchApply(torch.nn.Module):
    def __init__(self, body, expression, idx):
        super().__init__()
        self.body, self.expression = body, expression
        self.idx = torch.from_numpy(np.array(idx))

    def forward(self, x):
        return TRANSFORMS[self.expression](TORCH_F, self.body(x), self.idx)


class TorchTiedPair(torch.nn.Module):
    def __init__(self, first, second, act, chain):
        super().__init__()
        self.first, self.second, self.act, self.chain = first, second, act, chain

    def forward(self, x):
        if self.chain:
            return self.second(self.act(self.first(x)))
        return self.first(x) + self.act(self.second(x))


class TorchGain(torch.nn.Module):
    def __init__(self, body, gain, op):
        super().__init__()
        self.body, self.gain, self.op = body, gain, op

    def forward(self, x):
        return GAINS[self.op](self.gain, self.body(x))


class TorchRawLinear(torch.nn.Module):
    def __init__(self, weight, bias, form):
        super().__init__()
        self.weight, self.bias, self.form = weight, bias, form

    def forward(self, x):
        if self.form == "x @ W.T + b":
            return x @ self.weight.T + self.bias
        if self.form == "x @ V + b":
            return x @ self.weight + self.bias
        if self.form == "(W @ x.T).T + b":
            return (self.weight @ x.T).T + self.bias
        return x @ self.weight.T


class TorchTiedAutoencoder(torch.nn.Module):
    def __init__(self, encoder, decoder_bias):
        super().__init__()
        self.encoder, self.decoder_bias = encoder, decoder_bias

    def forward(self, x):
        return self.encoder(x) @ self.encoder[0].weight + self.decoder_bias


class TorchSqueeze(torch.nn.Module):
    def __init__(self, body, form):
        super().__init__()
        self.body, self.form = body, form

    def forward(self, x):
        return SQUEEZES[self.form](self.body(x))


class TorchTwoLayer(torch.nn.Module):
    def __init__(self, hidden, act, head):
        super().__init__()
        self.hidden, self.act, self.head = hidden, act, head

    def forward(self, x):
        return self.head(self.act(self.hidden(x)))


class TorchTwoInputs(torch.nn.Module):
    def __init__(self, left, right, mix, head):
        super().__init__()
        self.left, self.right, self.mix, self.head = left, right, mix, head

    def forward(self, a, b):
        h = MIXES[self.mix](TORCH_F, self.left(a), self.right(b))
        return h if self.head is None else self.head(h)


class TorchSiamese(torch.nn.Module):
    def __init__(self, tower, mix, head):
        super().__init__()
        self.tower, self.mix, self.head = tower, mix, head

    def forward(self, a, b):
        h = MIXES[self.mix](TORCH_F, self.tower(a), self.tower(b))
        return h if self.head is None else self.head(h)


class TorchTwin:
    """Builds the torch twin of a wxb module tree. A wxb module or parameter met twice
    (a shared layer, a tied weight) becomes one torch module or parameter."""

    def __init__(self) -> None:
        self.params: dict[int, torch.nn.Parameter] = {}  # id(wxb Parameter) → twin
        self.modules: dict[int, torch.nn.Module] = {}

    def param(self, p: Parameter) -> torch.nn.Parameter:
        if id(p) not in self.params:
            values = torch.tensor(np.array(p.data, dtype=np.float64))
            self.params[id(p)] = torch.nn.Parameter(values, requires_grad=p.requires_grad)
        return self.params[id(p)]

    def __call__(self, m: Module | None) -> torch.nn.Module | None:
        if m is None:
            return None
        if id(m) not in self.modules:
            self.modules[id(m)] = self._make(m)
        return self.modules[id(m)]

    def _make(self, m: Module) -> torch.nn.Module:
        if isinstance(m, Sequential):
            kind = {ResidualSequential: TorchResidualSequential}
            kind[ScaledSequential] = TorchScaledSequential
            return kind.get(type(m), torch.nn.Sequential)(*(self(layer) for layer in m.layers))
        if isinstance(m, Dense):
            linear = torch.nn.Linear(m.in_features, m.out_features, m.bias is not None, dtype=T64)
            linear.weight = self.param(m.weight)
            if m.bias is not None:
                linear.bias = self.param(m.bias)
            return linear
        if isinstance(m, LeakyReLU):
            return torch.nn.LeakyReLU(m.kernel.negative_slope)
        if isinstance(m, GELU):
            return torch.nn.GELU(approximate=m.kernel.approximate)
        if isinstance(m, ELU):
            return torch.nn.ELU(m.kernel.alpha)
        if isinstance(m, Softplus):
            return torch.nn.Softplus(m.kernel.beta, m.kernel.threshold)
        if isinstance(m, Softmax):
            return torch.nn.Softmax(dim=1)
        if isinstance(m, LogSoftmax):
            return torch.nn.LogSoftmax(dim=1)
        simple = {Identity: torch.nn.Identity, Sigmoid: torch.nn.Sigmoid}
        simple |= {Tanh: torch.nn.Tanh, ReLU: torch.nn.ReLU, SiLU: torch.nn.SiLU}
        if type(m) in simple:
            return simple[type(m)]()
        if isinstance(m, Standardize):
            return TorchStandardize(m.mean, m.scale)
        if isinstance(m, LayerNorm):
            bias = m.bias is not None
            norm = torch.nn.LayerNorm(
                m.normalized_shape, m.eps, m.elementwise_affine, bias, dtype=T64
            )
            if m.weight is not None:
                norm.weight = self.param(m.weight)
            if bias:
                norm.bias = self.param(m.bias)
            return norm
        if isinstance(m, Dropout):
            return torch.nn.Dropout(m.p)
        if isinstance(m, Residual):
            return TorchResidual(self(m.body))
        if isinstance(m, SharedTwice):
            return TorchSharedTwice(self(m.layer), self(m.act))
        if isinstance(m, Branches):
            return TorchBranches(self(m.left), self(m.right), m.mix)
        if isinstance(m, WithConstant):
            return TorchWithConstant(self(m.body), m.op, m.constant)
        if isinstance(m, TiedPair):
            return TorchTiedPair(self(m.first), self(m.second), self(m.act), m.chain)
        if isinstance(m, Apply):
            return TorchApply(self(m.body), m.expression, m.idx)
        if isinstance(m, Gain):
            return TorchGain(self(m.body), self.param(m.gain), m.op)
        if isinstance(m, RawLinear):
            bias = self.param(m.bias) if m.form != "x @ W.T" else None
            return TorchRawLinear(self.param(m.weight), bias, m.form)
        if isinstance(m, TiedAutoencoder):
            return TorchTiedAutoencoder(self(m.encoder), self.param(m.decoder_bias))
        if isinstance(m, Squeeze):
            return TorchSqueeze(self(m.body), m.form)
        if isinstance(m, TwoLayer):
            return TorchTwoLayer(self(m.hidden), self(m.act), self(m.head))
        if isinstance(m, TwoInputs):
            return TorchTwoInputs(self(m.left), self(m.right), m.mix, self(m.head))
        if isinstance(m, Siamese):
            return TorchSiamese(self(m.tower), m.mix, self(m.head))
        raise TypeError(f"no torch twin for {type(m).__name__}")


def torch_twin(model: Module) -> tuple[torch.nn.Module, dict[int, torch.nn.Parameter]]:
    """The PyTorch twin of ``model`` (float64, train mode) and id(wxb param) → torch param."""
    twin = TorchTwin()
    module = twin(model).train(model.training)
    return module, twin.params


# =====================================================================================
# Specifications: the structure Hypothesis draws (and shrinks), built on demand
# =====================================================================================
class Spec:
    in_width: int
    out_width: int

    def build(self, ctx: Context) -> Module:
        raise NotImplementedError

    def code(self) -> str:
        raise NotImplementedError


@dataclass
class Context:
    dtype: str | None  # "float64" on each layer, or None: float32, then model.to("float64")


def _nest(text: str) -> str:
    return text.replace("\n", "\n    ")


@dataclass(frozen=True)
class DenseSpec(Spec):
    in_width: int
    out_width: int
    bias: bool = True

    def build(self, ctx):
        return Dense(self.in_width, self.out_width, self.bias, dtype=ctx.dtype)

    def code(self):
        bias = "" if self.bias else ", bias=False"
        return f"Dense({self.in_width}, {self.out_width}{bias})"


@dataclass(frozen=True)
class ActSpec(Spec):
    kind: str
    width: int
    option: object = None  # LeakyReLU's slope, GELU's approximation, ELU's α, Softplus's (β, t)

    @property
    def in_width(self):
        return self.width

    @property
    def out_width(self):
        return self.width

    def build(self, ctx):
        if self.kind == "LeakyReLU":
            return LeakyReLU(self.option)
        if self.kind == "GELU":
            return GELU(self.option)
        if self.kind == "ELU":
            return ELU(self.option)
        if self.kind == "Softplus":
            return Softplus(*self.option)
        kinds = {"Identity": Identity, "Sigmoid": Sigmoid, "Tanh": Tanh, "ReLU": ReLU, "SiLU": SiLU}
        return (kinds | {"Softmax": Softmax, "LogSoftmax": LogSoftmax})[self.kind]()

    def code(self):
        arg = "" if self.option is None else repr(self.option)
        if self.kind == "Softplus":
            arg = "beta={!r}, threshold={!r}".format(*self.option)
        return f"{self.kind}({arg})"


@dataclass(frozen=True)
class StandardizeSpec(Spec):
    width: int
    seed: int

    @property
    def in_width(self):
        return self.width

    @property
    def out_width(self):
        return self.width

    def build(self, ctx):
        rng = np.random.default_rng(self.seed)
        mean, scale = rng.normal(size=self.width), rng.uniform(0.5, 2.0, size=self.width)
        return Standardize(mean, scale, dtype=ctx.dtype)

    def code(self):
        return f"Standardize(mean[{self.width}], scale[{self.width}])"


@dataclass(frozen=True)
class LayerNormSpec(Spec):
    width: int
    seed: int  # draws γ and β
    affine: bool = True
    bias: bool = True
    eps: float = 1e-5

    @property
    def in_width(self):
        return self.width

    @property
    def out_width(self):
        return self.width

    def build(self, ctx):
        layer = LayerNorm(self.width, self.eps, self.affine, self.bias, dtype=ctx.dtype)
        rng = np.random.default_rng(self.seed)
        for key, centre in (("weight", 1.0), ("bias", 0.0)):
            param = getattr(layer, key)
            if param is not None:
                param.data[...] = rng.normal(centre, 0.5, size=param.shape)
        return layer

    def code(self):
        flags = "" if self.affine else ", elementwise_affine=False"
        flags += "" if self.bias or not self.affine else ", bias=False"
        return f"LayerNorm({self.width}, eps={self.eps!r}{flags})"


@dataclass(frozen=True)
class DropoutSpec(Spec):
    width: int
    p: float = 0.0

    @property
    def in_width(self):
        return self.width

    @property
    def out_width(self):
        return self.width

    def build(self, ctx):
        return Dropout(self.p)

    def code(self):
        return f"Dropout({self.p})"


@dataclass(frozen=True)
class SeqSpec(Spec):
    items: tuple[Spec, ...]
    kind: str = "Sequential"  # or ResidualSequential, ScaledSequential
    tie: tuple[int, int] | None = None  # items[j].weight = items[i].weight

    @property
    def in_width(self):
        return self.items[0].in_width

    @property
    def out_width(self):
        return self.items[-1].out_width

    def build(self, ctx):
        layers = [item.build(ctx) for item in self.items]
        cls = {"ResidualSequential": ResidualSequential, "ScaledSequential": ScaledSequential}
        model = cls.get(self.kind, Sequential)(*layers)
        if self.tie is not None:
            i, j = self.tie
            layers[j].weight = layers[i].weight
        return model

    def code(self):
        inner = ",\n    ".join(_nest(item.code()) for item in self.items)
        tie = ""
        if self.tie is not None:
            i, j = self.tie
            tie = f".tie([{j}].weight = [{i}].weight)"
        return f"{self.kind}(\n    {inner},\n){tie}"


@dataclass(frozen=True)
class ResidualSpec(Spec):
    body: Spec

    @property
    def in_width(self):
        return self.body.in_width

    @property
    def out_width(self):
        return self.body.out_width

    def build(self, ctx):
        return Residual(self.body.build(ctx))

    def code(self):
        return f"Residual({_nest(self.body.code())})"


@dataclass(frozen=True)
class TwiceSpec(Spec):
    layer: Spec  # a Dense, or any block of equal widths (a Sequential: planned, then not)
    act: ActSpec

    @property
    def in_width(self):
        return self.layer.in_width

    @property
    def out_width(self):
        return self.layer.out_width

    def build(self, ctx):
        return SharedTwice(self.layer.build(ctx), self.act.build(ctx))

    def code(self):
        return f"SharedTwice({_nest(self.layer.code())}, {self.act.code()})"


@dataclass(frozen=True)
class BranchesSpec(Spec):
    left: Spec
    right: Spec
    mix: str

    @property
    def in_width(self):
        return self.left.in_width

    @property
    def out_width(self):
        return self.left.out_width

    def build(self, ctx):
        return Branches(self.left.build(ctx), self.right.build(ctx), self.mix)

    def code(self):
        return (
            f"Branches(\n    {_nest(self.left.code())},\n    {_nest(self.right.code())},\n"
            f"    {self.mix!r},\n)"
        )


@dataclass(frozen=True)
class ConstantSpec(Spec):
    body: Spec
    op: str
    constant: str  # one of CONSTANTS
    seed: int

    @property
    def in_width(self):
        return self.body.in_width

    @property
    def out_width(self):
        return self.body.out_width

    def build(self, ctx):
        c = _constant(self.constant, self.out_width, np.random.default_rng(self.seed))
        return WithConstant(self.body.build(ctx), self.op, c)

    def code(self):
        c = self.constant.replace("w", str(self.out_width))
        return f"WithConstant({_nest(self.body.code())}, {self.op!r}, c=<{c}>)"


@dataclass(frozen=True)
class TiedSpec(Spec):
    first: DenseSpec
    second: DenseSpec
    act: ActSpec
    chain: bool

    @property
    def in_width(self):
        return self.first.in_width

    @property
    def out_width(self):
        return self.second.out_width

    def build(self, ctx):
        return TiedPair(
            self.first.build(ctx), self.second.build(ctx), self.act.build(ctx), self.chain
        )

    def code(self):
        return (
            f"TiedPair({self.first.code()}, {self.second.code()}, {self.act.code()}, "
            f"chain={self.chain})"
        )


@dataclass(frozen=True)
class GainSpec(Spec):
    body: Spec
    scalar: bool  # a 0-d gain, else one per unit
    op: str  # a key of GAINS

    @property
    def in_width(self):
        return self.body.in_width

    @property
    def out_width(self):
        return self.body.out_width

    def build(self, ctx):
        gain = np.array(1.0) if self.scalar else np.ones(self.out_width)
        return Gain(self.body.build(ctx), gain, self.op)

    def code(self):
        gain = "np.array(1.0)" if self.scalar else f"np.ones({self.out_width})"
        return f"Gain({_nest(self.body.code())}, {gain}, {self.op!r})"


@dataclass(frozen=True)
class ApplySpec(Spec):
    body: Spec
    expression: str  # a key of TRANSFORMS
    seed: int  # for idx

    @property
    def in_width(self):
        return self.body.in_width

    @property
    def out_width(self):
        return self.body.out_width

    @property
    def idx(self) -> np.ndarray:
        return np.random.default_rng(self.seed).integers(0, self.out_width, size=self.out_width)

    def build(self, ctx):
        return Apply(self.body.build(ctx), self.expression, self.idx)

    def code(self):
        idx = f", idx={self.idx.tolist()}" if "idx" in self.expression else ""
        return f"Apply({_nest(self.body.code())}, {self.expression!r}{idx})"


@dataclass(frozen=True)
class RawLinearSpec(Spec):
    in_width: int
    out_width: int
    form: str  # one of RawLinear.FORMS

    def build(self, ctx):
        return RawLinear(self.in_width, self.out_width, self.form, dtype=ctx.dtype)

    def code(self):
        return f"RawLinear({self.in_width}, {self.out_width}, {self.form!r})"


@dataclass(frozen=True)
class AutoencoderSpec(Spec):
    encoder: DenseSpec
    act: ActSpec

    @property
    def in_width(self):
        return self.encoder.in_width

    @property
    def out_width(self):
        return self.encoder.in_width

    def build(self, ctx):
        return TiedAutoencoder(self.encoder.build(ctx), self.act.build(ctx), dtype=ctx.dtype)

    def code(self):
        return f"TiedAutoencoder({self.encoder.code()}, {self.act.code()})"


@dataclass(frozen=True)
class TwoLayerSpec(Spec):
    hidden: DenseSpec
    act: ActSpec
    head: DenseSpec
    head_first: bool

    @property
    def in_width(self):
        return self.hidden.in_width

    @property
    def out_width(self):
        return self.head.out_width

    def build(self, ctx):
        parts = (self.hidden.build(ctx), self.act.build(ctx), self.head.build(ctx))
        return TwoLayer(*parts, self.head_first)

    def code(self):
        return (
            f"TwoLayer({self.hidden.code()}, {self.act.code()}, {self.head.code()}, "
            f"head_first={self.head_first})"
        )


@dataclass(frozen=True)
class SqueezeSpec(Spec):
    body: Spec
    form: str  # a key of SQUEEZES

    @property
    def in_width(self):
        return self.body.in_width

    @property
    def out_width(self):
        return 1

    def build(self, ctx):
        return Squeeze(self.body.build(ctx), self.form)

    def code(self):
        return f"Squeeze({_nest(self.body.code())}, {self.form!r})"


@dataclass(frozen=True)
class TwoInputSpec(Spec):
    left: Spec
    right: Spec | None  # None: Siamese, one tower (left) on both inputs
    mix: str
    head: Spec | None

    @property
    def in_widths(self):
        tower = self.right if self.right is not None else self.left
        return (self.left.in_width, tower.in_width)

    @property
    def out_width(self):
        return self.head.out_width if self.head is not None else self.left.out_width

    def build(self, ctx):
        head = self.head.build(ctx) if self.head is not None else None
        if self.right is None:
            return Siamese(self.left.build(ctx), self.mix, head)
        return TwoInputs(self.left.build(ctx), self.right.build(ctx), self.mix, head)

    def code(self):
        head = "None" if self.head is None else _nest(self.head.code())
        if self.right is None:
            return f"Siamese(\n    {_nest(self.left.code())},\n    {self.mix!r},\n    {head},\n)"
        return (
            f"TwoInputs(\n    {_nest(self.left.code())},\n    {_nest(self.right.code())},\n"
            f"    {self.mix!r},\n    {head},\n)"
        )


# =====================================================================================
# Strategies
# =====================================================================================
WIDTHS = st.integers(1, 9)
SEEDS = st.integers(0, 2**32 - 1)


def mixes() -> st.SearchStrategy[str]:
    return st.sampled_from(sorted(set(MIXES) - UNSUPPORTED_MIXES))


@st.composite
def activations(draw, width: int) -> ActSpec:
    kinds = ["Identity", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "GELU", "SiLU", "ELU", "Softplus"]
    if width >= 2:
        kinds += ["Softmax", "LogSoftmax"]
    kind = draw(st.sampled_from(kinds))
    option = None
    if kind == "LeakyReLU":
        option = draw(st.sampled_from([0.01, 0.2]) | st.floats(0.0, 0.5))
    elif kind == "GELU":
        option = draw(st.sampled_from(["none", "tanh"]))
    elif kind == "ELU":
        option = draw(st.sampled_from([1.0, 0.5]) | st.floats(0.1, 2.0))
    elif kind == "Softplus":
        # A low threshold puts the switch to z itself among the values; not at 0, where
        # rounding noise (a value 0 in exact arithmetic) would decide which side, a jump
        # of log(2)/β.
        beta = draw(st.sampled_from([1.0, 2.0]) | st.floats(0.25, 4.0))
        option = (beta, draw(st.sampled_from([20.0, 1.0]) | st.floats(0.5, 3.0)))
    return ActSpec(kind, width, option)


@st.composite
def extras(draw, width: int, dropout_p: st.SearchStrategy) -> Spec:
    """A width-keeping layer for a Sequential: an activation, Standardize, LayerNorm,
    Dropout. (BatchNorm1d needs batches of 2 rows or more: tests/test_norm_layers.py.)"""
    kinds = ["activation", "activation", "standardize", "layernorm", "dropout"]
    kind = draw(st.sampled_from(kinds))
    if kind == "activation":
        return draw(activations(width))
    if kind == "standardize":
        return StandardizeSpec(width, draw(SEEDS))
    if kind == "layernorm":
        affine, bias = draw(st.booleans()), draw(st.booleans())
        eps = draw(st.sampled_from([1e-5, 0.1]))
        return LayerNormSpec(width, draw(SEEDS), affine, bias, eps)
    return DropoutSpec(width, draw(dropout_p))


def dense(in_width: int, out_width: int) -> st.SearchStrategy:
    return st.builds(DenseSpec, st.just(in_width), st.just(out_width), st.booleans())


@st.composite
def blocks(draw, in_width: int, out_width: int, depth: int, dropout_p) -> Spec:
    """Something that maps (B, in_width) to (B, out_width), nested up to ``depth``."""
    kinds = ["dense"]
    if depth > 0:
        kinds += ["sequential", "sequential", "branches", "constant", "apply", "gain"]
        kinds += ["two_layer", "tied", "raw_linear"]
        if in_width == out_width:
            kinds += ["residual", "twice", "autoencoder"]
    kind = draw(st.sampled_from(kinds))
    sub = depth - 1

    if kind == "dense":
        return draw(dense(in_width, out_width))
    if kind == "sequential":
        n = draw(st.integers(1, 3))
        same_or_any = st.just(in_width) | WIDTHS  # equal widths allow residuals inside
        inner = draw(st.lists(same_or_any, min_size=n - 1, max_size=n - 1))
        widths = [in_width, *inner, out_width]
        items: list[Spec] = []
        if draw(st.booleans()):
            items.append(draw(extras(in_width, dropout_p)))
        for a, b in itertools.pairwise(widths):
            items.append(draw(blocks(a, b, sub, dropout_p)))
            if draw(st.booleans()):
                items.append(draw(extras(b, dropout_p)))
        kinds = ["Sequential", "ScaledSequential"]
        if in_width == out_width:
            kinds.append("ResidualSequential")
        seq_kind = draw(st.sampled_from(kinds))
        shapes = [
            (i, j)
            for i, a in enumerate(items)
            for j, b in enumerate(items)
            if i < j
            and isinstance(a, DenseSpec)
            and isinstance(b, DenseSpec)
            and (a.in_width, a.out_width) == (b.in_width, b.out_width)
        ]
        tie = draw(st.none() | st.sampled_from(shapes)) if shapes else None
        return SeqSpec(tuple(items), seq_kind, tie)
    if kind == "branches":
        left = draw(blocks(in_width, out_width, sub, dropout_p))
        right = draw(blocks(in_width, out_width, sub, dropout_p))
        return BranchesSpec(left, right, draw(mixes()))
    if kind == "constant":
        body = draw(blocks(in_width, out_width, sub, dropout_p))
        op = draw(st.sampled_from(sorted(set(OPERANDS) - UNSUPPORTED_OPERANDS)))
        if op in MATRIX_OPERANDS:
            constant = "matrix (w, w)"
        else:
            constant = draw(st.sampled_from(CONSTANTS[:-1]))
        return ConstantSpec(body, op, constant, draw(SEEDS))
    if kind == "apply":
        body = draw(blocks(in_width, out_width, sub, dropout_p))
        expression = draw(st.sampled_from(sorted(set(TRANSFORMS) - UNSUPPORTED_TRANSFORMS)))
        return ApplySpec(body, expression, draw(SEEDS))
    if kind == "gain":
        body = draw(blocks(in_width, out_width, sub, dropout_p))
        gains = sorted(set(GAINS) - UNSUPPORTED_GAINS)
        return GainSpec(body, draw(st.booleans()), draw(st.sampled_from(gains)))
    if kind == "raw_linear":
        return RawLinearSpec(in_width, out_width, draw(st.sampled_from(RawLinear.FORMS)))
    if kind == "autoencoder":
        hidden = draw(WIDTHS)
        return AutoencoderSpec(draw(dense(in_width, hidden)), draw(activations(hidden)))
    if kind == "two_layer":
        hidden = draw(WIDTHS)
        return TwoLayerSpec(
            draw(dense(in_width, hidden)),
            draw(activations(hidden)),
            draw(dense(hidden, out_width)),
            draw(st.booleans()),
        )
    if kind == "tied":
        chain = in_width == out_width and draw(st.booleans())
        act = draw(activations(out_width))
        return TiedSpec(
            draw(dense(in_width, out_width)), draw(dense(in_width, out_width)), act, chain
        )
    if kind == "residual":
        return ResidualSpec(draw(blocks(in_width, out_width, sub, dropout_p)))
    layer = draw(dense(in_width, out_width) | blocks(in_width, out_width, sub, dropout_p))
    return TwiceSpec(layer, draw(activations(out_width)))


# =====================================================================================
# A generated model and its twin
# =====================================================================================
@dataclass(eq=False)
class UserModel:
    wxb_model: Module
    torch_model: torch.nn.Module
    spec: Spec
    n_inputs: int
    input_widths: tuple[int, ...]
    output_width: int
    dtype_via: str  # "layers" (dtype="float64" on each) or "model.to" (float32, then cast)
    seed: int
    frozen: tuple[str, ...]
    # (name, wxb parameter, torch parameter), each parameter once, in wxb's order
    params: list[tuple[str, Parameter, torch.nn.Parameter]] = field(default_factory=list)
    vector_output: bool = False  # the output is (B,), not (B, output_width)

    @property
    def input_width(self) -> int | tuple[int, ...]:
        """The feature count of the input (of each input, as a tuple, for two inputs)."""
        return self.input_widths[0] if self.n_inputs == 1 else self.input_widths

    @property
    def trains_deterministically(self) -> bool:
        """No Dropout with p > 0 (such models are only compared in eval mode)."""
        return all(
            not (isinstance(m, Dropout) and m.p > 0) for _, m in self.wxb_model.named_modules()
        )

    def inputs(self, rng: np.random.Generator, batch: int) -> list[np.ndarray]:
        return [rng.normal(size=(batch, w)) for w in self.input_widths]

    def losses(self, names: Sequence[str] | None = None) -> st.SearchStrategy[LossCase]:
        """The losses that fit this model's output (cross-entropy: 2 or more classes)."""
        if self.vector_output:
            names = [n for n in names or ["mse", "bce_with_logits"] if n in VECTOR_LOSSES]
        return losses(self.output_width, names, self.vector_output)

    def targets(self, loss: LossCase, rng: np.random.Generator, batch: int) -> np.ndarray:
        y = loss.targets(rng, batch, self.output_width)
        return y[:, 0] if self.vector_output else y

    def describe(self) -> str:
        frozen = ", ".join(self.frozen) or "none"
        widths = " and ".join(map(str, self.input_widths))
        outputs = "(B,)" if self.vector_output else f"{self.output_width} outputs"
        return (
            f"{self.spec.code()}\n# inputs of width {widths} → {outputs}; "
            f"float64 via {self.dtype_via}; frozen: {frozen}; weights from seed {self.seed}"
        )

    def __repr__(self) -> str:
        return f"<UserModel\n{self.describe()}\n>"


def _fill(model: Module, seed: int) -> None:
    """Random values for every parameter (Dense's bias would start at 0)."""
    rng = np.random.default_rng(seed)
    for name, p in model.named_parameters():
        if name.endswith("weight") and p.ndim == 2:
            p.data[...] = rng.normal(scale=1.0 / math.sqrt(p.shape[1]), size=p.shape)
        elif name.endswith("gain"):
            p.data[...] = rng.uniform(0.5, 1.5, size=p.shape) * rng.choice([-1.0, 1.0])
        else:
            p.data[...] = rng.normal(scale=0.3, size=p.shape)


@st.composite
def user_models(
    draw,
    n_inputs: int | None = None,
    input_width: int | None = None,
    output_width: int | None = None,
    max_depth: int = 3,
    eval_dropout: bool = False,
    vector_output: bool | None = None,
) -> UserModel:
    """A model a user could write, and its torch twin with the same weights (float64).

    ``n_inputs`` 1 or 2 (None: either); fixed widths if given (``input_width``: the
    first input's). ``eval_dropout`` lets Dropout layers have p > 0 (for comparisons in
    eval mode); else every p is 0. ``vector_output``: a single-input model that gives
    shape (B,) (``output_width`` is then 1); None: now and then.
    """
    n = n_inputs if n_inputs is not None else draw(st.sampled_from([1, 1, 1, 2]))
    dropout_p = st.sampled_from([0.0, 0.5]) if eval_dropout else st.just(0.0)
    in_w = input_width if input_width is not None else draw(WIDTHS)
    out_w = output_width if output_width is not None else draw(WIDTHS | st.just(in_w))
    depth = draw(st.integers(1, max_depth))
    if n == 1:
        spec = draw(blocks(in_w, out_w, depth, dropout_p))
        if vector_output is not False and (vector_output or draw(st.integers(0, 3)) == 0):
            forms = set(SQUEEZES) - UNSUPPORTED_SQUEEZES
            if out_w != 1:
                forms.discard("h.reshape(-1)")
            if forms:
                spec = SqueezeSpec(spec, draw(st.sampled_from(sorted(forms))))
    else:
        siamese = draw(st.booleans())
        with_head = draw(st.booleans())
        mid = draw(WIDTHS) if with_head else out_w
        sub = max(depth - 1, 0)
        left = draw(blocks(in_w, mid, sub, dropout_p))
        right = None if siamese else draw(blocks(draw(WIDTHS), mid, sub, dropout_p))
        head = draw(blocks(mid, out_w, sub, dropout_p)) if with_head else None
        spec = TwoInputSpec(left, right, draw(mixes()), head)
    dtype_via = draw(st.sampled_from(["layers", "model.to"]))
    seed = draw(SEEDS)
    count = len(list(_build(spec, dtype_via).named_parameters()))
    frozen = draw(st.sets(st.sampled_from(range(count)), max_size=count - 1))
    return build_user_model(spec, dtype_via, seed, frozen)


def _build(spec: Spec, dtype_via: str) -> Module:
    model = spec.build(Context("float64" if dtype_via == "layers" else None))
    return model.to("float64") if dtype_via == "model.to" else model


def build_user_model(
    spec: Spec, dtype_via: str = "layers", seed: int = 0, frozen: Sequence[int] = ()
) -> UserModel:
    """The wxb model of ``spec`` (float64 per layer, or float32 and then ``model.to``),
    its parameters drawn from ``seed``, those at the indices ``frozen`` (in
    ``named_parameters()`` order) frozen, and its torch twin."""
    model = _build(spec, dtype_via)
    _fill(model, seed)
    named = list(model.named_parameters())
    for i in frozen:
        named[i][1].requires_grad = False
    twin, by_id = torch_twin(model)
    two = isinstance(spec, TwoInputSpec)
    return UserModel(
        wxb_model=model,
        torch_model=twin,
        spec=spec,
        n_inputs=2 if two else 1,
        input_widths=spec.in_widths if two else (spec.in_width,),
        output_width=spec.out_width,
        dtype_via=dtype_via,
        seed=seed,
        frozen=tuple(named[i][0] for i in sorted(frozen)),
        params=[(name, p, by_id[id(p)]) for name, p in named],
        vector_output=isinstance(spec, SqueezeSpec),
    )


# =====================================================================================
# Losses: wxb's, the torch expression of the same definition, and targets
# =====================================================================================
@dataclass(frozen=True)
class LossCase:
    # mse, cross_entropy (class indices), cross_entropy_prob, nll, bce_with_logits
    name: str
    reduction: str
    form: str = "object"  # "object": MSELoss(…); "functional": wf.mse_loss(…); "by hand"
    # PyTorch's options: weight (a tuple of values and its shape), ignore_index,
    # label_smoothing, pos_weight (values, shape)
    options: tuple[tuple[str, object], ...] = ()
    weight_as: str = "array"  # how weight and pos_weight are given: array, list, Tensor
    set_later: bool = False  # the object's options assigned after it is made (loss.weight = …)

    def _array(self, key: str):
        values, shape = dict(self.options)[key]
        array = np.array(values, dtype=np.float64).reshape(shape)
        if self.weight_as == "list":
            return array.tolist()
        return wxb.Tensor(array) if self.weight_as == "Tensor" else array

    def wxb_options(self) -> dict:
        """The options as the user passes them to wxb."""
        arrays = ("weight", "pos_weight")
        return {k: self._array(k) if k in arrays else v for k, v in self.options}

    def torch_options(self) -> dict:
        return {
            k: torch.tensor(np.array(v[0], dtype=np.float64).reshape(v[1]))
            if k in ("weight", "pos_weight")
            else v
            for k, v in self.options
        }

    def wxb(self):
        """The loss object (what fit and evaluate take)."""
        options = self.wxb_options()
        if self.set_later and options:  # as PyTorch's buffers and attributes are set
            loss = dataclasses.replace(self, options=(), set_later=False).wxb()
            for key, value in options.items():
                setattr(loss, key, value)
            return loss
        if self.name == "mse":
            return MSELoss(self.reduction)
        if self.name == "nll":
            return NLLLoss(reduction=self.reduction, **options)
        if self.name.startswith("cross_entropy"):
            if options:
                return CrossEntropyLoss(reduction=self.reduction, **options)
            return CrossEntropyLoss(self.reduction)
        if options:
            return BCEWithLogitsLoss(reduction=self.reduction, **options)
        return BCEWithLogitsLoss(self.reduction)

    def wxb_fn(self) -> Callable:
        """loss_fn(output, target) as the user writes it: the object, the function from
        ``wxb.nn.functional``, or the formula in tensor operations."""
        if self.form == "object":
            return self.wxb()
        if self.form == "by hand":
            return lambda output, target: self.by_hand(WXB_F, output, target)
        function = {
            "mse": wf.mse_loss,
            "nll": wf.nll_loss,
            "bce_with_logits": wf.binary_cross_entropy_with_logits
            if self.options
            else wf.bce_with_logits,
        }.get(self.name, wf.cross_entropy)
        options = self.wxb_options()
        return lambda output, target: function(output, target, reduction=self.reduction, **options)

    def by_hand(self, f, out, y):
        """The loss written with tensor operations (``f``: WXB_F or TORCH_F)."""
        if self.name == "mse":
            total = (0.5 * (out - y) ** 2).sum()
        elif self.name == "cross_entropy_prob":  # Σ y·(log Σ e^z − z)
            total = (y * (f.sum(out.exp(), 1, True).log() - out)).sum()
        elif self.name == "cross_entropy":  # Σ (log Σ e^z − z_y), z_y picked by indexing
            total = (out.exp().sum(1).log() - out[f.arange(len(out)), y]).sum()
        elif self.name == "nll":  # −Σ A[i, yᵢ]
            total = -out[f.arange(len(out)), y].sum()
        else:  # max(z, 0) − z·y + log(1 + e^−|z|)
            total = (f.relu(out) - out * y + (1 + (-out.abs()).exp()).log()).sum()
            return total / math.prod(out.shape) if self.reduction == "mean" else total
        return total / len(out) if self.reduction == "mean" else total

    def torch(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The same loss in PyTorch: its own function, or the same formula by hand (where
        a formula has a kink, at z = 0 for |z| and relu, both libraries then take the
        same one-sided slope, which torch's smooth library loss would not)."""
        if self.form == "by hand":
            return self.by_hand(TORCH_F, output, target)
        return self.torch_library(output, target)

    def torch_library(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        options = self.torch_options()
        if self.name == "mse":  # wxb's documented MSE: (1/B) Σᵢ ½‖ŷᵢ − yᵢ‖²
            squares = 0.5 * (output - target) ** 2
            per_sample = squares.sum(dim=1) if squares.ndim == 2 else squares
            return per_sample.mean() if self.reduction == "mean" else per_sample.sum()
        if self.name == "nll":
            return F.nll_loss(output, target, reduction=self.reduction, **options)
        if self.name.startswith("cross_entropy"):
            return F.cross_entropy(output, target, reduction=self.reduction, **options)
        return F.binary_cross_entropy_with_logits(
            output, target, reduction=self.reduction, **options
        )

    def ignored(self, y: np.ndarray) -> np.ndarray:
        """The rows the loss leaves out (its ignore_index), as a mask."""
        index = dict(self.options).get("ignore_index", -100)
        if self.name in ("cross_entropy", "nll"):
            return y == index
        return np.zeros(len(y), bool)

    def divisor(self, y: np.ndarray) -> float:
        """What the mean over the rows ``y`` divides by: Σ w_y over the rows kept for a
        cross-entropy on class indices (PyTorch's), else the rows."""
        if self.name not in ("cross_entropy", "nll"):
            return float(len(y))
        kept = ~self.ignored(y)
        if "weight" not in dict(self.options):
            return float(kept.sum())
        values, _ = dict(self.options)["weight"]
        return float(np.array(values)[y[kept]].sum())

    def targets(self, rng: np.random.Generator, batch: int, width: int) -> np.ndarray:
        if self.name == "mse":
            return rng.normal(size=(batch, width))
        if self.name in ("cross_entropy", "nll"):
            y = rng.integers(0, width, size=batch)
            index = dict(self.options).get("ignore_index")
            if index is not None and not 0 <= index < width:  # padding rows, as -100's
                y[rng.uniform(size=batch) < 0.3] = index
            return y
        if self.name == "cross_entropy_prob":
            return rng.dirichlet(np.ones(width), size=batch)
        return rng.uniform(0, 1, size=(batch, width))

    def __repr__(self) -> str:
        options = "".join(f", {k}={v!r}" for k, v in self.options)
        given = (
            f", given as {self.weight_as}"
            if {"weight", "pos_weight"} & set(dict(self.options))
            else ""
        )
        given += ", set after construction" if self.set_later else ""
        return (
            f"LossCase({self.name!r}, reduction={self.reduction!r}, form={self.form!r}"
            f"{options}{given})"
        )


VECTOR_LOSSES = ("mse", "bce_with_logits")  # for a model whose output is (B,)
LOSS_NAMES = ("mse", "bce_with_logits", "cross_entropy", "cross_entropy_prob", "nll")


def _by_hand_works(name: str) -> bool:
    y = {
        "cross_entropy": np.array([2, 0]),
        "nll": np.array([2, 0]),
        "cross_entropy_prob": np.full((2, 3), 1 / 3),
    }
    case = LossCase(name, "mean", "by hand")
    return _works(lambda: case.by_hand(WXB_F, _probe_tensor(), y.get(name, np.full((2, 3), 0.5))))


UNSUPPORTED_BY_HAND = {name for name in LOSS_NAMES if not _by_hand_works(name)}


@st.composite
def loss_options(draw, name: str, width: int, vector: bool) -> tuple:
    """PyTorch's options of this loss (none half the time)."""
    if name == "mse" or draw(st.integers(0, 3)) == 0:
        return ()
    options = {}
    positive = st.floats(0.1, 3.0)
    if name == "bce_with_logits":
        shapes = [(), (1,)] if vector else [(), (width,), (1, width)]
        for key in ("weight", "pos_weight"):
            if draw(st.booleans()):
                shape = draw(st.sampled_from(shapes if key == "weight" else shapes[:2]))
                if key == "pos_weight" and not vector:
                    shape = draw(st.sampled_from([(), (width,)]))
                values = draw(st.lists(positive, min_size=math.prod(shape),
                                       max_size=math.prod(shape)))  # fmt: skip
                options[key] = (tuple(values), shape)
        return tuple(options.items())
    if draw(st.booleans()):
        options["weight"] = (tuple(draw(st.lists(positive, min_size=width, max_size=width))),
                             (width,))  # fmt: skip
    if name != "cross_entropy_prob" and draw(st.booleans()):
        options["ignore_index"] = draw(
            st.sampled_from([-100, width + 2]) | st.integers(0, width - 1)
        )
    if name != "nll" and draw(st.booleans()):
        options["label_smoothing"] = draw(st.sampled_from([0.1, 0.0]) | st.floats(0.0, 0.5))
    return tuple(options.items())


def losses(
    output_width: int, names: Sequence[str] | None = None, vector: bool = False
) -> st.SearchStrategy[LossCase]:
    """Every loss wxb has, for a model of this output width (cross-entropy: 2 or more),
    with PyTorch's options drawn; ``vector``: for outputs of shape (B,)."""
    if names is None:
        names = ["mse", "bce_with_logits"]
        if output_width >= 2:
            names += ["cross_entropy", "cross_entropy_prob", "nll"]
    reductions = st.sampled_from(["mean", "sum"])
    forms = ["object", "functional", "by hand"]

    @st.composite
    def case(draw, name):
        options = draw(loss_options(name, output_width, vector))
        allowed = forms[:2] if name in UNSUPPORTED_BY_HAND or options else forms
        return LossCase(
            name,
            draw(reductions),
            draw(st.sampled_from(allowed)),
            options,
            draw(st.sampled_from(["array", "list", "Tensor"])),
            bool(options) and draw(st.booleans()),
        )

    return st.sampled_from(names).flatmap(case)


# =====================================================================================
# Optimisers with the same settings on both sides
# =====================================================================================
@dataclass(frozen=True)
class OptimizerCase:
    kind: str  # SGD, Adam, AdamW, RMSprop, Adagrad, NAdam, RAdam, Adamax, Adadelta
    options: tuple[tuple[str, object], ...]
    # A second parameter group's own settings (PyTorch's param_groups), when there are two
    group_options: tuple[tuple[str, object], ...] = ()

    def wxb(self, *groups: Sequence[Parameter]) -> wxb.optim.Optimizer:
        """wxb's optimiser over one list of parameters, or two lists as two groups."""
        return getattr(wxb.optim, self.kind)(self._groups(groups), **dict(self.options))

    def torch(self, *groups: Sequence[torch.nn.Parameter]) -> torch.optim.Optimizer:
        opt = getattr(torch.optim, self.kind)(self._groups(groups), **dict(self.options))
        self.start_sums(opt)
        return opt

    def start_sums(self, opt: torch.optim.Optimizer) -> None:
        """wxb's documented Adagrad: Σ starts at the parameter's own group's
        initial_accumulator_value (PyTorch's takes the constructor's for every group).
        Call after add_param_group too. NAdam's μ product: PyTorch keeps it in its default
        dtype (float32 here), wxb in the parameter's, as PyTorch's under
        ``torch.set_default_dtype(torch.float64)``: the torch side starts it so."""
        if self.kind == "NAdam":
            for group in opt.param_groups:
                for p in group["params"]:
                    if not opt.state[p]:
                        opt.state[p].update(
                            step=torch.tensor(0.0),
                            mu_product=torch.ones((), dtype=torch.float64),
                            exp_avg=torch.zeros_like(p, memory_format=torch.preserve_format),
                            exp_avg_sq=torch.zeros_like(p, memory_format=torch.preserve_format),
                        )
            return
        if self.kind != "Adagrad":
            return
        for group in opt.param_groups:
            for p in group["params"]:
                state = opt.state[p]
                if not state or float(state["step"]) == 0:
                    state["step"] = torch.tensor(0.0)
                    state["sum"] = torch.full_like(p, group["initial_accumulator_value"])

    def second_group(self, params: Sequence) -> dict:
        """The second group's dict (for the constructor or ``add_param_group``)."""
        return {"params": list(params), **dict(self.group_options)}

    def _groups(self, groups: tuple[Sequence, ...]) -> list:
        if len(groups) == 1:
            return list(groups[0])
        first, second = groups
        return [{"params": list(first)}, self.second_group(second)]

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.options)
        group = ", ".join(f"{k}={v!r}" for k, v in self.group_options)
        return f"{self.kind}({options})" + (f" [second group: {group}]" if group else "")


NEW_OPTIMIZERS = ["NAdam", "RAdam", "Adamax", "Adadelta"]


@st.composite
def optimizers(draw) -> OptimizerCase:
    """SGD (momentum, dampening or Nesterov, weight decay), Adam, AdamW, RMSprop
    (momentum, centered, α), Adagrad (lr_decay, initial_accumulator_value), NAdam
    (momentum_decay, decoupled_weight_decay), RAdam (decoupled_weight_decay), Adamax,
    Adadelta (ρ); random settings."""
    kind = draw(st.sampled_from(["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", *NEW_OPTIMIZERS]))
    # ε: not PyTorch's defaults (1e-8; Adagrad's 1e-10) where a state can start at 0: a
    # gradient that is 0 in exact arithmetic (a bias before h - h.mean(0), a batch of
    # one) comes out as rounding noise ~1e-16 in either library, and Adam, RMSprop and
    # Adagrad divide it by √v + ε: with ε = 1e-8 the noise moves a weight by ~lr·1e-8,
    # over the 1e-10 tolerance. With ε ≥ 1e-4 it stays ~lr·1e-12 (1e-5 still failed one
    # example in several hundred: noise of ~1e-13 on a parameter unfrozen at step 2, whose
    # first update is g/(|g| + ε)), while a misplaced ε (inside the root, not
    # bias-corrected) still shows.
    eps = st.sampled_from([1e-4, 1e-3])
    if kind == "SGD":
        options = {"lr": draw(st.floats(0.001, 0.1)), "momentum": draw(st.floats(0.0, 0.95))}
        if options["momentum"] > 0 and draw(st.booleans()):
            options["nesterov"] = True
        elif draw(st.booleans()):
            options["dampening"] = draw(st.floats(0.0, 0.5))
        lr = st.floats(0.001, 0.1)
    elif kind == "RMSprop":
        options = {"lr": draw(st.floats(1e-3, 0.03)), "eps": draw(eps)}
        if draw(st.booleans()):
            options["alpha"] = draw(st.sampled_from([0.9, 0.99]) | st.floats(0.5, 0.999))
        if draw(st.booleans()):
            options["momentum"] = draw(st.floats(0.0, 0.9))
        if draw(st.booleans()):
            options["centered"] = True
        lr = st.floats(1e-3, 0.03)
    elif kind == "Adagrad":
        options = {"lr": draw(st.floats(1e-3, 0.1))}
        if draw(st.booleans()):
            options["lr_decay"] = draw(st.sampled_from([0.0, 0.1]) | st.floats(0.0, 0.5))
        if draw(st.booleans()):
            options["initial_accumulator_value"] = draw(st.sampled_from([0.1, 1.0]))
        else:
            options["eps"] = draw(eps)
        lr = st.floats(1e-3, 0.1)
    elif kind == "Adadelta":  # (η = 1 is PyTorch's default; its ε under the root, as v's)
        options = {"lr": draw(st.sampled_from([1.0]) | st.floats(0.05, 1.0)), "eps": draw(eps)}
        if draw(st.booleans()):
            options["rho"] = draw(st.sampled_from([0.9, 0.95]) | st.floats(0.5, 0.99))
        lr = st.floats(0.05, 1.0)
    else:
        options = {
            "lr": draw(st.floats(1e-3, 0.05)),
            "betas": (draw(st.floats(0.5, 0.95)), draw(st.floats(0.9, 0.9999))),
            "eps": draw(eps),
        }
        if kind == "NAdam" and draw(st.booleans()):
            options["momentum_decay"] = draw(st.sampled_from([4e-3, 0.0]) | st.floats(0.0, 0.1))
        if kind in ("NAdam", "RAdam") and draw(st.booleans()):
            options["decoupled_weight_decay"] = True
        lr = st.floats(1e-3, 0.05)
    if draw(st.booleans()) or kind == "AdamW":
        options["weight_decay"] = draw(st.floats(0.0, 0.1))
    group = {"lr": draw(lr)}
    if draw(st.booleans()):
        group["weight_decay"] = draw(st.floats(0.0, 0.2))
    if kind == "SGD" and "nesterov" not in options and draw(st.booleans()):
        group["momentum"] = draw(st.sampled_from([0.0, 0.9]))
    if kind in ("Adam", "AdamW", "NAdam", "RAdam", "Adamax") and draw(st.booleans()):
        group["betas"] = (draw(st.floats(0.5, 0.95)), draw(st.floats(0.9, 0.9999)))
    if kind == "RMSprop":
        for key, values in (("momentum", [0.0, 0.5]), ("centered", [True, False])):
            if draw(st.booleans()):
                group[key] = draw(st.sampled_from(values))
        if draw(st.booleans()):
            group["alpha"] = draw(st.floats(0.5, 0.99))
    if kind == "Adagrad":
        if draw(st.booleans()):
            group["lr_decay"] = draw(st.floats(0.0, 0.3))
        if draw(st.booleans()):  # wxb starts the group's Σ at it (see OptimizerCase.torch)
            group["initial_accumulator_value"] = draw(st.sampled_from([0.5, 2.0]))
    if kind == "NAdam" and draw(st.booleans()):
        group["momentum_decay"] = draw(st.floats(0.0, 0.05))
    if kind in ("NAdam", "RAdam") and draw(st.booleans()):
        group["decoupled_weight_decay"] = draw(st.booleans())
    if kind == "Adadelta" and draw(st.booleans()):
        group["rho"] = draw(st.floats(0.5, 0.99))
    return OptimizerCase(kind, tuple(options.items()), tuple(group.items()))
