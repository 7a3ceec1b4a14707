"""Layers, models and losses."""

from wxb.errors import missing_name as _missing_name
from wxb.nn import functional, init, utils
from wxb.nn.containers import ModuleDict, ModuleList, ParameterDict, ParameterList
from wxb.nn.layers import (
    ACTIVATIONS,
    CELU,
    ELU,
    GELU,
    GLU,
    SELU,
    Activation,
    AlphaDropout,
    Bilinear,
    CosineSimilarity,
    Dense,
    Dropout,
    Dropout1d,
    Embedding,
    FeatureAlphaDropout,
    Flatten,
    Hardshrink,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    Identity,
    LazyLinear,
    LeakyReLU,
    Linear,
    LogSigmoid,
    LogSoftmax,
    Mish,
    PairwiseDistance,
    PReLU,
    ReLU,
    ReLU6,
    RReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softmin,
    Softplus,
    Softshrink,
    Softsign,
    Standardize,
    Tanh,
    Tanhshrink,
    Threshold,
    Unflatten,
)
from wxb.nn.losses import (
    LOSSES,
    BCELoss,
    BCEWithLogitsLoss,
    CosineEmbeddingLoss,
    CrossEntropyLoss,
    GaussianNLLLoss,
    HingeEmbeddingLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    Loss,
    MarginRankingLoss,
    MSELoss,
    MultiLabelMarginLoss,
    MultiLabelSoftMarginLoss,
    MultiMarginLoss,
    NLLLoss,
    PoissonNLLLoss,
    SmoothL1Loss,
    SoftMarginLoss,
    TripletMarginLoss,
    TripletMarginWithDistanceLoss,
    get_loss,
)
from wxb.nn.module import Module, Parameter, UninitializedParameter
from wxb.nn.norm import BatchNorm1d, LayerNorm, RMSNorm
from wxb.nn.sequential import Sequential

__all__ = [
    "ACTIVATIONS",
    "CELU",
    "ELU",
    "GELU",
    "GLU",
    "LOSSES",
    "SELU",
    "Activation",
    "AlphaDropout",
    "BCELoss",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "Bilinear",
    "CosineEmbeddingLoss",
    "CosineSimilarity",
    "CrossEntropyLoss",
    "Dense",
    "Dropout",
    "Dropout1d",
    "Embedding",
    "FeatureAlphaDropout",
    "Flatten",
    "GaussianNLLLoss",
    "Hardshrink",
    "Hardsigmoid",
    "Hardswish",
    "Hardtanh",
    "HingeEmbeddingLoss",
    "HuberLoss",
    "Identity",
    "KLDivLoss",
    "L1Loss",
    "LayerNorm",
    "LazyLinear",
    "LeakyReLU",
    "Linear",
    "LogSigmoid",
    "LogSoftmax",
    "Loss",
    "MSELoss",
    "MarginRankingLoss",
    "Mish",
    "Module",
    "ModuleDict",
    "ModuleList",
    "MultiLabelMarginLoss",
    "MultiLabelSoftMarginLoss",
    "MultiMarginLoss",
    "NLLLoss",
    "PReLU",
    "PairwiseDistance",
    "Parameter",
    "ParameterDict",
    "ParameterList",
    "PoissonNLLLoss",
    "RMSNorm",
    "RReLU",
    "ReLU",
    "ReLU6",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "SmoothL1Loss",
    "SoftMarginLoss",
    "Softmax",
    "Softmin",
    "Softplus",
    "Softshrink",
    "Softsign",
    "Standardize",
    "Tanh",
    "Tanhshrink",
    "Threshold",
    "TripletMarginLoss",
    "TripletMarginWithDistanceLoss",
    "Unflatten",
    "UninitializedParameter",
    "functional",
    "get_loss",
    "init",
    "utils",
]

# torch.nn's names a port reaches for that wxb has under another name, or not at all:
# the AttributeError says what to write instead
_TORCH_NAMES = {}
# torch's layers for images, sequences and tokens: wxb builds dense networks, so the
# hint says so, and what to write with the layers it has
_DENSE = "wxb builds dense networks on rows (B, features)"
_SPATIAL = [
    f"{kind}{d}d"
    for kind in (
        "Conv", "ConvTranspose", "LazyConv", "LazyConvTranspose", "MaxPool", "AvgPool",
        "AdaptiveAvgPool", "AdaptiveMaxPool", "LPPool", "MaxUnpool", "ZeroPad", "ConstantPad",
        "ReflectionPad", "ReplicationPad", "CircularPad",
    )
    for d in (1, 2, 3)
]  # fmt: skip
_SPATIAL += ["FractionalMaxPool2d", "FractionalMaxPool3d", "Upsample", "UpsamplingNearest2d"]
_SPATIAL += ["UpsamplingBilinear2d", "PixelShuffle", "PixelUnshuffle", "Fold", "Unfold"]
_SPATIAL += ["ChannelShuffle"]
_TORCH_NAMES.update(
    dict.fromkeys(
        _SPATIAL,
        f"{_DENSE}, with no convolution or pooling: flatten each image to a row "
        "(X.reshape(len(X), -1)) for Linear layers",
    )
)
_TORCH_NAMES.update(
    dict.fromkeys(
        (
            *("RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "RNNBase", "RNNCellBase"),
            *("MultiheadAttention", "Transformer", "TransformerEncoder"),
            *("TransformerEncoderLayer", "TransformerDecoder", "TransformerDecoderLayer"),
        ),
        f"{_DENSE}, with no recurrent or attention layers: give each sequence as one row "
        "of fixed width (X.reshape(len(X), -1)) to Linear layers",
    )
)
_TORCH_NAMES.update(
    dict.fromkeys(
        ("EmbeddingBag",),
        f"{_DENSE}: its lookup is Embedding(n, d); a bag's sum or mean is the forward's "
        "own (self.emb(ids).mean(1))",
    )
)
_TORCH_NAMES.update(
    dict.fromkeys(
        (
            *("BatchNorm2d", "BatchNorm3d", "LazyBatchNorm1d", "LazyBatchNorm2d"),
            *("LazyBatchNorm3d", "SyncBatchNorm", "InstanceNorm1d", "InstanceNorm2d"),
            *("InstanceNorm3d", "LazyInstanceNorm1d", "LazyInstanceNorm2d"),
            *("LazyInstanceNorm3d", "GroupNorm", "LocalResponseNorm", "CrossMapLRN2d"),
        ),
        f"{_DENSE}: its norms are BatchNorm1d(features), LayerNorm(features) and RMSNorm(features)",
    )
)
_TORCH_NAMES.update(
    dict.fromkeys(
        ("Dropout2d", "Dropout3d"),
        f"{_DENSE}: its dropouts are Dropout(p), AlphaDropout(p), FeatureAlphaDropout(p) "
        "and Dropout1d(p) (channels of (N, C, L))",
    )
)
_TORCH_NAMES.update(
    dict.fromkeys(
        ("Softmax2d",),
        "wxb.nn's activations are "
        + ", ".join(
            sorted({layer.__name__ for layer in ACTIVATIONS.values()} | {"PReLU", "GLU", "RReLU"})
        )
        + "; another is a Module of your own whose forward computes it with tensor methods "
        "(a squared ReLU: x.relu() ** 2)",
    )
)

_TORCH_NAMES.update(
    dict.fromkeys(
        ("CTCLoss", "NLLLoss2d", "AdaptiveLogSoftmaxWithLoss"),
        "wxb.nn's losses are "
        + ", ".join(sorted(name for name in __all__ if name.endswith("Loss") and name != "Loss"))
        + "; another is a function of your own, loss(outputs, targets) -> Tensor, which "
        "wxb.fit(model, X, y, loss=f) takes",
    )
)

# Keras's layer names (keras.layers.X) a Keras script reaches for: what wxb.nn writes
_KERAS_NAMES = {
    **dict.fromkeys(
        ("Input", "InputLayer"),
        "wxb's layers take their inputs' count, Dense(in_features, out_features), and a "
        "model takes rows (B, features) as they come: leave Keras's Input out",
    ),
    "BatchNormalization": "Keras's BatchNormalization is BatchNorm1d(num_features), "
    "PyTorch's: Keras's momentum=0.99 is momentum=0.01 here (the new batch's weight), "
    "its epsilon=1e-3 eps=1e-3 (the default 1e-5); its running variance takes each batch's "
    "unbiased variance, Keras's the biased one",
    "LayerNormalization": "Keras's LayerNormalization is LayerNorm(num_features): its "
    "epsilon=1e-3 is eps=1e-3 (the default 1e-5)",
    "Normalization": "Keras's Normalization after adapt(X_train) is "
    "Standardize.fit(X_train), as the first layer (X_train's means and deviations, kept)",
    "Reshape": "Keras's Reshape(shape) of rows is Unflatten(1, shape); Flatten() makes rows again",
    **dict.fromkeys(
        (
            *(
                f"{kind}{d}D"
                for kind in ("Conv", "MaxPooling", "AveragePooling")
                for d in (1, 2, 3)
            ),
            *("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D"),
            *("GlobalMaxPooling2D", "Conv2DTranspose", "UpSampling2D", "ZeroPadding2D"),
        ),
        _TORCH_NAMES["Conv2d"],
    ),
    **dict.fromkeys(
        ("SimpleRNN", "Bidirectional", "TimeDistributed", "MultiHeadAttention"),
        _TORCH_NAMES["LSTM"],
    ),
}


def __getattr__(name: str) -> object:  # PEP 562: only for names not found above
    hint = _TORCH_NAMES.get(name) or _KERAS_NAMES.get(name)
    if hint is not None:  # (from wxb.nn import name too: its ImportError says it)
        what = f"module 'wxb.nn' has no attribute {name!r}: {hint}"
        raise _missing_name("wxb.nn", name, what)
    raise AttributeError(f"module 'wxb.nn' has no attribute {name!r}")
