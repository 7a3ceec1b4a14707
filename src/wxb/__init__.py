"""wxb: neural networks as explicit linear algebra.

A dense layer is Z = W·X + b, then A = f(Z); learning is the chain of error terms
δ⁽ˡ⁾ = (W⁽ˡ⁺¹⁾ᵀ·δ⁽ˡ⁺¹⁾) ⊙ f′(Z⁽ˡ⁾), with ∂L/∂W⁽ˡ⁾ = δ⁽ˡ⁾·A⁽ˡ⁻¹⁾ᵀ and ∂L/∂b⁽ˡ⁾ = δ⁽ˡ⁾.
"""

__version__ = "0.1.0"

import builtins

from wxb import autograd, describe, errors, functions, nn, ops, optim
from wxb.checkpoint import get_rng_state, set_rng_state
from wxb.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    ModelFileError,
    NotFoundError,
    ShapeError,
    TrainingError,
    TrainingInterrupted,
    WxbError,
)
from wxb.explanation import explain

# torch's functions (wxb.cat, wxb.zeros, wxb.exp, …); those named as Python's builtins are
# left out of __all__: `from wxb import *` must not change what sum(…) means in a script
from wxb.functions import (  # noqa: F401
    abs,
    accelerator,
    addmm,
    all,
    allclose,
    alpha_dropout,
    amax,
    amin,
    any,
    arange,
    argmax,
    argmin,
    argsort,
    argwhere,
    as_tensor,
    baddbmm,
    bilinear,
    bmm,
    broadcast_to,
    cat,
    cdist,
    ceil,
    celu_,
    chunk,
    clamp,
    clip,
    clone,
    concat,
    concatenate,
    cos,
    cuda,
    cummax,
    cummin,
    cumprod,
    cumsum,
    detach,
    device,
    diag,
    diagonal,
    dot,
    double,
    einsum,
    embedding,
    empty,
    empty_like,
    eq,
    equal,
    exp,
    expm1,
    eye,
    feature_alpha_dropout,
    flatten,
    flip,
    float32,
    float64,
    floor,
    floor_divide,
    fmod,
    from_numpy,
    full,
    full_like,
    gather,
    ge,
    gt,
    hardshrink,
    hstack,
    index_select,
    is_tensor,
    isclose,
    isfinite,
    isinf,
    isnan,
    kthvalue,
    le,
    lerp,
    linspace,
    log,
    log1p,
    log2,
    log10,
    log_softmax,
    logcumsumexp,
    logical_and,
    logical_not,
    logical_or,
    logsumexp,
    lt,
    masked_fill,
    matmul,
    max,
    maximum,
    mean,
    median,
    min,
    minimum,
    mm,
    movedim,
    nan_to_num,
    nanquantile,
    narrow,
    ne,
    neg,
    nonzero,
    norm,
    numel,
    ones,
    ones_like,
    outer,
    permute,
    pow,
    prod,
    quantile,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    reciprocal,
    relu,
    relu_,
    remainder,
    reshape,
    roll,
    round,
    rrelu,
    rrelu_,
    rsqrt,
    selu_,
    sigmoid,
    sign,
    sin,
    softmax,
    sort,
    split,
    sqrt,
    square,
    squeeze,
    stack,
    std,
    sum,
    swapaxes,
    tanh,
    threshold_,
    topk,
    trace,
    transpose,
    tril,
    triu,
    trunc,
    unbind,
    unique,
    unsqueeze,
    var,
    vstack,
    where,
    zeros,
    zeros_like,
)
from wxb.io import load, save
from wxb.random import manual_seed
from wxb.reporting import report  # wxb.report(model, history, X, y, path=…)
from wxb.step import GraphStep, PlannedStep, make_step
from wxb.tables import read_table
from wxb.tensor import (
    Tensor,
    enable_grad,
    graph,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from wxb.train import History, evaluate, fit

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "GraphStep",
    "History",
    "ModelFileError",
    "NotFoundError",
    "PlannedStep",
    "ShapeError",
    "Tensor",
    "TrainingError",
    "TrainingInterrupted",
    "WxbError",
    "__version__",
    "autograd",
    "describe",
    "enable_grad",
    "errors",
    "evaluate",
    "explain",
    "fit",
    "functions",
    "get_rng_state",
    "graph",
    "is_grad_enabled",
    "load",
    "make_step",
    "manual_seed",
    "nn",
    "no_grad",
    "ops",
    "optim",
    "read_table",
    "report",
    "save",
    "set_grad_enabled",
    "set_rng_state",
    "tensor",  # the module, callable as torch.tensor: wxb.tensor([1.0, 2.0], requires_grad=True)
]
# torch's functions (wxb.functions), less those named as Python's builtins (sum, max, …):
# `from wxb import *` must not change what sum(…) means in a script
__all__ += [name for name in functions.__all__ if not hasattr(builtins, name)]

# torch's names a port reaches for that wxb has under another name, or not at all
_TORCH_NAMES = {
    "inference_mode": "use wxb.no_grad()",
    "utils": "wxb has no DataLoader: wxb.fit(model, X, y, batch_size=…) batches and "
    "shuffles itself, and a loop of your own may keep torch's DataLoader (a wxb model "
    "takes its torch tensors)",
    # integer dtypes for class indices (torch.tensor(y, dtype=torch.long)): wxb's tensors
    # hold floats, and the losses take the indices as an array or as whole floats
    **dict.fromkeys(
        ("long", "int64", "int32", "int"),
        "wxb tensors hold float32 or float64; keep class indices as an int64 NumPy array "
        "(np.asarray(y), t.long()), or as the whole floats wxb.tensor(y) makes, which the "
        "losses take",
    ),
    "set_default_dtype": "wxb's default is float32; for float64 pass dtype='float64' to "
    "wxb.tensor and the constructors, and call model.to('float64')",
    # a ported script's seeding and setup lines
    "backends": "wxb computes on the CPU, without cuDNN, and the same seed gives the same "
    "run bit for bit: leave torch.backends' settings out",
    **dict.fromkeys(
        ("set_num_threads", "get_num_threads"),
        "wxb's threads are NumPy's BLAS's: set OMP_NUM_THREADS before Python starts, or "
        "use threadpoolctl's threadpool_limits(n)",
    ),
    **dict.fromkeys(
        ("seed", "initial_seed"),
        "seed with wxb.manual_seed(n), which returns the NumPy Generator it seeded",
    ),
    "Generator": "generator= takes a NumPy Generator: np.random.default_rng(seed)",
    **dict.fromkeys(
        ("FloatTensor", "DoubleTensor"),
        "wxb.tensor(data) makes a float32 tensor (dtype=wxb.float64 a float64 one)",
    ),
    **dict.fromkeys(
        ("LongTensor", "IntTensor"),
        "keep class indices as an int64 NumPy array: wxb.tensor(y).long() or "
        "np.asarray(y, dtype=np.int64)",
    ),
}

# Keras's modules and top-level names a Keras script reaches for (keras.layers.Dense,
# keras.Sequential, keras.callbacks.EarlyStopping): where wxb has each
_KERAS_WAY = "wxb.fit(model, X, y, …) trains, wxb.evaluate scores (README: Coming from Keras)"
_KERAS_NAMES = {
    "keras": f"wxb's layers are PyTorch's, in wxb.nn (from wxb.nn import Dense, ReLU, "
    f"Sequential), and {_KERAS_WAY}",
    **dict.fromkeys(
        ("layers", "Sequential", "Model"),
        "wxb.nn holds the layers and models: from wxb.nn import Dense, ReLU, Sequential "
        "(a model of one's own subclasses wxb.nn.Module, as PyTorch's)",
    ),
    "models": "wxb.nn.Sequential builds a model, wxb.load(path) loads a saved one",
    "callbacks": "fit has early_stopping=patience (Keras's EarlyStopping), lr_schedule= "
    "and checkpoint_dir=; for more, write the loop by hand (README: The Python API)",
    "optimizers": "wxb.optim holds them, PyTorch's: wxb.optim.Adam(model.parameters(), "
    "lr=1e-3), or fit(..., optimizer='adam', lr=1e-3)",
    "losses": "wxb.nn holds them (CrossEntropyLoss, MSELoss, …); fit takes their names, "
    "loss='cross_entropy', 'mse', 'bce_with_logits'",
}


def _torch_hint(name: str) -> str:
    """What wxb.NAME says of a torch (or Keras) name it lacks (wxb/utils's import error
    too)."""
    hint = _TORCH_NAMES.get(name) or _KERAS_NAMES[name]
    return f"module 'wxb' has no attribute {name!r}: {hint}"


def __getattr__(name: str) -> object:  # PEP 562: only for names not found above
    if name == "float":  # torch.float (`dtype = torch.float`, `.type(torch.float)`): float32;
        return float32  # served here, as a global it would hide the builtin in this module
    if name in _TORCH_NAMES or name in _KERAS_NAMES:  # (from wxb import name: its ImportError)
        raise errors.missing_name("wxb", name, _torch_hint(name))
    raise AttributeError(f"module 'wxb' has no attribute {name!r}")
