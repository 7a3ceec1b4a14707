"""Activations and losses as functions of tensors (as ``torch.nn.functional``).

One name means another number: ``mse_loss`` is the seed's ½‖ŷ − y‖² averaged over the
samples, where PyTorch's averages (ŷ − y)² over every element: for C outputs wxb's is
C/2 times PyTorch's; see its docstring."""

from __future__ import annotations

import numpy as np

from wxb import ops
from wxb.errors import ConfigError, DataError, ShapeError, missing_name
from wxb.ops import (
    _is_number,
    add,
    as_tensor,
    batch_norm,
    bce_with_logits,
    bilinear,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    celu,
    celu_,
    cosine_similarity,
    cross_entropy,
    dropout,
    elu,
    elu_,
    gelu,
    glu,
    hardshrink,
    hardsigmoid,
    hardswish,
    hardtanh,
    hardtanh_,
    huber_loss,
    in_result_type,
    kl_div,
    l1_loss,
    layer_norm,
    leaky_relu,
    leaky_relu_,
    log_softmax,
    logsigmoid,
    matmul,
    mish,
    mse_loss,
    nll_loss,
    norm,
    pad,
    pairwise_distance,
    prelu,
    relu,
    relu6,
    relu_,
    reshape,
    rms_norm,
    rrelu_,
    selu,
    selu_,
    sigmoid,
    silu,
    smooth_l1_loss,
    softmax,
    softmin,
    softplus,
    softshrink,
    softsign,
    tanh,
    tanhshrink,
    threshold,
    threshold_,
)
from wxb.random import as_generator
from wxb.tensor import Tensor, foreign_array, marks
from wxb.validation import torch_options

__all__ = [
    "alpha_dropout",
    "batch_norm",
    "bce_with_logits",
    "bilinear",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "celu",
    "celu_",
    "cosine_embedding_loss",
    "cosine_similarity",
    "cross_entropy",
    "dropout",
    "dropout1d",
    "elu",
    "elu_",
    "embedding",
    "feature_alpha_dropout",
    "gaussian_nll_loss",
    "gelu",
    "glu",
    "hardshrink",
    "hardsigmoid",
    "hardswish",
    "hardtanh",
    "hardtanh_",
    "hinge_embedding_loss",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "layer_norm",
    "leaky_relu",
    "leaky_relu_",
    "linear",
    "log_softmax",
    "logsigmoid",
    "margin_ranking_loss",
    "mish",
    "mse_loss",
    "multi_margin_loss",
    "multilabel_margin_loss",
    "multilabel_soft_margin_loss",
    "nll_loss",
    "normalize",
    "one_hot",
    "pad",
    "pairwise_distance",
    "poisson_nll_loss",
    "prelu",
    "relu",
    "relu6",
    "relu_",
    "rms_norm",
    "rrelu",
    "rrelu_",
    "selu",
    "selu_",
    "sigmoid",
    "silu",
    "smooth_l1_loss",
    "soft_margin_loss",
    "softmax",
    "softmin",
    "softplus",
    "softshrink",
    "softsign",
    "tanh",
    "tanhshrink",
    "threshold",
    "threshold_",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
]


def _p(p: object, where: str) -> float:
    if not (_is_number(p) and 0 <= p < 1):  # (p = 1 passes nothing, as Dropout refuses)
        raise ConfigError(f"{where}: p must be a number in [0, 1); got {p!r}")
    return float(p)


def _training(training: object, inplace: object, where: str) -> bool:
    for key, flag in (("training", training), ("inplace", inplace)):
        if not isinstance(flag, (bool, np.bool_)):  # (the same values out of place)
            raise ConfigError(f"{where}: {key} must be True or False; got {flag!r}")
    return bool(training)


def alpha_dropout(
    input: object, p: float = 0.5, training: bool = False, inplace: bool = False
) -> Tensor:
    """torch's F.alpha_dropout (training=False by default, as torch's: then the input as
    it is); in training nn.AlphaDropout's formula, from wxb's default generator."""
    p = _p(p, "alpha_dropout")
    if not _training(training, inplace, "alpha_dropout") or p == 0:
        return as_tensor(input)
    return ops.alpha_dropout(input, p, as_generator(None))


def feature_alpha_dropout(
    input: object, p: float = 0.5, training: bool = False, inplace: bool = False
) -> Tensor:
    """torch's F.feature_alpha_dropout: alpha dropout of whole channels of (N, C, …),
    as nn.FeatureAlphaDropout (training=False by default, as torch's)."""
    p = _p(p, "feature_alpha_dropout")
    if not _training(training, inplace, "feature_alpha_dropout") or p == 0:
        return as_tensor(input)
    return ops.alpha_dropout(input, p, as_generator(None), feature=True)


def dropout1d(
    input: object, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """torch's F.dropout1d: channel dropout of (N, C, L) or (C, L), as nn.Dropout1d
    (training=True by default, as torch's); other shapes refused, as torch's."""
    p = _p(p, "dropout1d")
    x = as_tensor(input)
    if x.ndim not in (2, 3):
        raise ShapeError(
            f"dropout1d: needs an input (N, C, L) or (C, L), as torch's; got shape {x.shape}"
        )
    if not _training(training, inplace, "dropout1d") or p == 0:
        return x
    return ops.dropout1d(x, p, as_generator(None))


def rrelu(
    input: object,
    lower: float = 1.0 / 8,
    upper: float = 1.0 / 3,
    training: bool = False,
    inplace: bool = False,
) -> Tensor:
    """torch's F.rrelu (training=False by default, as torch's: LeakyReLU of slope
    (lower + upper)/2); in training a slope from U(lower, upper) for each z ≤ 0, from
    wxb's default generator, as nn.RReLU."""
    _training(training, inplace, "rrelu")
    return ops.rrelu(input, lower, upper, bool(training))


def embedding(
    input: object,
    weight: object,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """torch's F.embedding: rows of ``weight`` picked by integer ids (``ops.embedding``:
    one_hot(ids)·W without the zeros; ∂L/∂W adds each δ row into the row it picked)."""
    return ops.embedding(
        input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse
    )


def linear(input: object, weight: object, bias: object = None) -> Tensor:
    """x·Wᵀ + b with W of shape (out_features, in_features), torch's layout (the seed's
    Z = W·X + b on rows), over the last dimension of x of any shape, as torch's F.linear;
    the gradients are matmul's, reshape's and add's."""
    # an array beside a tensor takes its dtype, copied where the backward reads it
    x, w = in_result_type((input, weight))
    if w.ndim not in (1, 2) or x.ndim == 0 or x.shape[-1] != w.shape[-1]:
        raise ShapeError(
            f"linear: x·Wᵀ needs W of shape (out_features, in_features) with in_features = "
            f"x's last dimension; got x of shape {x.shape} and W of shape {w.shape}"
        )
    rows = x if x.ndim <= 2 else reshape(x, (-1, x.shape[-1]))
    out = matmul(rows, w.T if w.ndim == 2 else w)
    if x.ndim > 2:
        out = reshape(out, (*x.shape[:-1], *w.shape[:-1]))
    return out if bias is None else add(out, bias)


def one_hot(tensor: object, num_classes: int = -1) -> np.ndarray:
    """Class indices as rows of 0s and a 1, of shape (*indices.shape, num_classes), as
    torch's F.one_hot: an int64 array (indices have no gradient); num_classes=-1 takes
    the largest index + 1. Negative indices and indices ≥ num_classes are refused, as
    torch refuses them (NumPy would count a negative one from the end)."""
    source = tensor.data if isinstance(tensor, Tensor) else tensor
    if not isinstance(source, np.ndarray) and hasattr(source, "__array__"):
        source = foreign_array(source)  # a torch tensor of indices
    indices = np.asarray(source)
    if indices.dtype.kind not in "iu":
        raise DataError(
            f"one_hot: indices must be whole numbers (an integer array); got {indices.dtype} "
            "values (a wxb Tensor holds floats: pass t.long())"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise ConfigError(f"one_hot: num_classes must be an integer; got {num_classes!r}")
    if indices.size and indices.min() < 0:
        raise DataError(f"one_hot: class values must be ≥ 0; got {indices.min()}")
    if num_classes == -1:
        if not indices.size:
            raise DataError("one_hot: cannot infer the number of classes from no indices")
        num_classes = int(indices.max()) + 1
    elif num_classes < 0:
        raise ConfigError(f"one_hot: num_classes must be ≥ 0 or -1; got {num_classes}")
    elif indices.size and indices.max() >= num_classes:
        raise DataError(
            f"one_hot: class values must be smaller than num_classes {num_classes}; got "
            f"{indices.max()}"
        )
    out = np.zeros((*indices.shape, int(num_classes)), dtype=np.int64)
    np.put_along_axis(out, indices[..., None].astype(np.intp), 1, axis=-1)
    return marks(out)  # (F.one_hot(y, C).float(), torch's idiom for soft targets)


def normalize(
    input: object, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: object = None
) -> Tensor:
    """x / max(‖x‖_p, ε) along ``dim``, as torch's F.normalize (which composes the very
    same norm, clamp and quotient, so the gradients are theirs: none through the norm
    of a slice below ε). (wxb.ops.normalize is layer norm's x̂, another thing.)"""
    if out is not None:
        raise ConfigError("normalize: out= is not taken; use the returned tensor")
    x = as_tensor(input)
    denominator = norm(x, p, dim, keepdim=True).clamp(min=eps)
    return x / denominator


# torch.nn.functional's other losses, by its signatures (its deprecated size_average and
# reduce where it has them, taken at None): wxb.ops's, where each backward sits beside its
# forward
_DEPRECATED = {"size_average": None, "reduce": None}
_INSTEAD = dict.fromkeys(_DEPRECATED, "PyTorch deprecated it too: use reduction=")


def _deprecated(name: str, size_average: object, reduce: object) -> None:
    given = {"size_average": size_average, "reduce": reduce}
    torch_options(name, given, _DEPRECATED, _INSTEAD)


def poisson_nll_loss(
    input,
    target,
    log_input=True,
    full=False,
    size_average=None,
    eps=1e-8,
    reduce=None,
    reduction="mean",
) -> Tensor:
    """torch's F.poisson_nll_loss: see wxb.ops.poisson_nll_loss."""
    _deprecated("poisson_nll_loss", size_average, reduce)
    return ops.poisson_nll_loss(input, target, log_input, full, eps, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean") -> Tensor:
    """torch's F.gaussian_nll_loss: see wxb.ops.gaussian_nll_loss."""
    return ops.gaussian_nll_loss(input, target, var, full, eps, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean") -> Tensor:
    """torch's F.soft_margin_loss: see wxb.ops.soft_margin_loss."""
    _deprecated("soft_margin_loss", size_average, reduce)
    return ops.soft_margin_loss(input, target, reduction)


def multilabel_soft_margin_loss(
    input, target, weight=None, size_average=None, reduce=None, reduction="mean"
) -> Tensor:
    """torch's F.multilabel_soft_margin_loss: see wxb.ops.multilabel_soft_margin_loss."""
    _deprecated("multilabel_soft_margin_loss", size_average, reduce)
    return ops.multilabel_soft_margin_loss(input, target, weight, reduction)


def hinge_embedding_loss(
    input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"
) -> Tensor:
    """torch's F.hinge_embedding_loss: see wxb.ops.hinge_embedding_loss."""
    _deprecated("hinge_embedding_loss", size_average, reduce)
    return ops.hinge_embedding_loss(input, target, margin, reduction)


def margin_ranking_loss(
    input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"
) -> Tensor:
    """torch's F.margin_ranking_loss: see wxb.ops.margin_ranking_loss."""
    _deprecated("margin_ranking_loss", size_average, reduce)
    return ops.margin_ranking_loss(input1, input2, target, margin, reduction)


def cosine_embedding_loss(
    input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"
) -> Tensor:
    """torch's F.cosine_embedding_loss: see wxb.ops.cosine_embedding_loss."""
    _deprecated("cosine_embedding_loss", size_average, reduce)
    return ops.cosine_embedding_loss(input1, input2, target, margin, reduction)


def multi_margin_loss(
    input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None, reduction="mean"
) -> Tensor:
    """torch's F.multi_margin_loss: see wxb.ops.multi_margin_loss."""
    _deprecated("multi_margin_loss", size_average, reduce)
    return ops.multi_margin_loss(input, target, p, margin, weight, reduction)


def multilabel_margin_loss(
    input, target, size_average=None, reduce=None, reduction="mean"
) -> Tensor:
    """torch's F.multilabel_margin_loss: see wxb.ops.multilabel_margin_loss."""
    _deprecated("multilabel_margin_loss", size_average, reduce)
    return ops.multilabel_margin_loss(input, target, reduction)


def triplet_margin_loss(
    anchor,
    positive,
    negative,
    margin=1.0,
    p=2,
    eps=1e-6,
    swap=False,
    size_average=None,
    reduce=None,
    reduction="mean",
) -> Tensor:
    """torch's F.triplet_margin_loss: see wxb.ops.triplet_margin_loss."""
    _deprecated("triplet_margin_loss", size_average, reduce)
    return ops.triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap, reduction)


triplet_margin_with_distance_loss = ops.triplet_margin_with_distance_loss  # (keywords only)


# torch.nn.functional's names a port reaches for that wxb has not, each with wxb's way (as
# wxb.nn's for its layers): Python's bare AttributeError named neither
_ACTIVATIONS = (
    "celu, elu, gelu, glu, hardshrink, hardsigmoid, hardswish, hardtanh, leaky_relu, "
    "log_softmax, logsigmoid, mish, prelu, relu, relu6, rrelu, selu, sigmoid, silu, softmax, "
    "softmin, "
    "softplus, softshrink, softsign, tanh, tanhshrink and threshold"
)
_TORCH_NAMES: dict[str, str] = {}
_TORCH_NAMES.update(
    dict.fromkeys(
        [
            f"{kind}{d}d"
            for kind in ("conv", "conv_transpose", "max_pool", "avg_pool")
            for d in (1, 2, 3)
        ]
        + [f"adaptive_{kind}_pool{d}d" for kind in ("avg", "max") for d in (1, 2, 3)],
        "wxb builds dense networks on rows (B, features), with no convolution or pooling: "
        "flatten each image to a row (X.reshape(len(X), -1)) for linear layers",
    )
)
_TORCH_NAMES.update(
    dict.fromkeys(
        ("gumbel_softmax",),
        f"wxb.nn.functional's activations are {_ACTIVATIONS}; compute another with tensor "
        "methods (a squared ReLU: x.relu() ** 2)",
    )
)
_OTHERS = ("binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "kl_div")
_TORCH_NAMES.update(
    dict.fromkeys(
        ("ctc_loss",),
        "wxb.nn.functional's losses are "
        + ", ".join(sorted(name for name in __all__ if name.endswith("_loss") or name in _OTHERS))
        + "; compute another with tensor methods, as a function wxb.fit(model, X, y, loss=f) "
        "takes",
    )
)


def __getattr__(name: str) -> object:  # PEP 562: only for names not found above
    if name in _TORCH_NAMES:  # (from wxb.nn.functional import name too)
        what = f"module 'wxb.nn.functional' has no attribute {name!r}: {_TORCH_NAMES[name]}"
        raise missing_name("wxb.nn.functional", name, what)
    raise AttributeError(f"module 'wxb.nn.functional' has no attribute {name!r}")
