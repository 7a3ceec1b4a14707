"""ONNX export: a wxb model as an ONNX graph any ONNX runtime can run, without wxb.

    wxb.onnx.export(model, "model.onnx")

The graph takes ``input`` of shape (batch, features) — the batch dimension is
dynamic — in the model's dtype (float32 or float64; ``dtype=`` chooses it for a model
holding no float array), and gives ``output``: what ``model.predict`` gives (logits
for a classifier trained on logits). It holds only standard ONNX operators of the
default domain, with the weights as initializers:

- Dense          Z = W·X + b on rows: Gemm(X, W, b, transB=1) (no C without a bias)
- Standardize    (X − mean) ⊙ (1/scale): Sub, then Mul by the reciprocal, which is
                 what wxb itself computes (``1.0 / scale`` in the model's dtype)
- Dropout, AlphaDropout, FeatureAlphaDropout, Dropout1d   nothing (the export is for
                 inference; predict skips them too)
- RReLU          LeakyReLU of slope (lower + upper)/2, its inference form
- Flatten()      Flatten(axis=1). First, the graph takes what predict takes: samples of
                 the shape fit trained on (``model.info["sample_shape"]``, or
                 ``sample_shape=``), images (batch, 28, 28) as they are; else rows
                 (batch, features), X.reshape(len(X), -1)
- LayerNorm(n)   μ = X·(𝟙/n), D = X − μ, σ² = (D ⊙ D)·(𝟙/n), D ⊙ 1/√(σ² + ε), then ⊙ γ + β:
                 MatMul, Sub, Mul, Add, Sqrt, Reciprocal (opset-13 operators), x̂ in
                 float64 as wxb takes it (a float32 model Casts X there and x̂ back)
- RMSNorm(n)     X ⊙ 1/√((X ⊙ X)·(𝟙/n) + ε), then ⊙ γ: Mul, MatMul, Add, Sqrt,
                 Reciprocal, in float64 as wxb takes mean(x²) (a float32 model Casts X
                 there and the result back); ε None is the model dtype's machine epsilon
- BatchNorm1d    eval mode, as wxb's predict: (X − running μ) ⊙ 1/√(running σ² + ε), then
                 ⊙ γ + β, with the factor computed as wxb computes it (Sub, Mul, Mul, Add);
                 one without running statistics (it normalises each batch by itself) is
                 refused
- Identity       nothing
- Sigmoid        Reciprocal(1 + Exp(−z)), as wxb computes it
- Tanh, ReLU, Softmax   Tanh, Relu, Softmax(axis=-1)
- LogSoftmax     LogSoftmax(axis=-1), NaN in a row holding NaN or +inf, as wxb gives
                 (onnxruntime's float64 kernel gave finite values there, 46.05 and the like)
- LeakyReLU(α)   Z ⊙ Where(Z > 0, 1, α), as wxb computes it
- SiLU           Z ⊙ σ(Z), σ as for Sigmoid
- ELU(α)         Where(Z > 0, Z, α·(Exp(Min(Z, 0)) − 1))
- Softplus(β, t) Where(βZ > t, Z, (Relu(βZ) + log1p(Exp(−|βZ|)))/β), as wxb computes
                 it, log1p(u) composed as Goldberg's
                 Where(1 + u = 1, u, Log(1 + u)·u/((1 + u) − 1))
- ReLU6, Hardtanh Clip(Z, low, high)
- SELU, CELU(α)  Where(Z > 0, λZ or Z, factor·(Exp(Min(Z, 0)[/α]) − 1)), as wxb computes
                 them (onnx's Selu and Celu take float32 attributes)
- Mish           Z ⊙ Tanh(Relu(Z) + log1p(Exp(−|Z|))), log1p as for Softplus
- LogSigmoid     Min(Z, 0) − log1p(Exp(−|Z|))
- Hardswish      Z ⊙ Clip(Z + 3, 0, 6) / 6; Hardsigmoid without the Z ⊙
- Softsign       Z / (|Z| + 1); Tanhshrink: Z − Tanh(Z)
- Threshold(t, v) Where(Z ≤ t, v, Z) (a NaN passes, as torch's)
- Hardshrink(λ)  Shrink(Z, lambd=λ, bias=0); Softshrink(λ): Shrink(Z, lambd=λ, bias=λ)
                 (onnxruntime's gives 0 for a NaN, where wxb and torch pass it on). A
                 float64 model composes Where(|Z| ≤ λ, 0, Z − Sign(Z)·λ) instead: Shrink's
                 λ is a float32 attribute, and onnxruntime's float64 Shrink rounds Z
                 through float32
- PReLU          PRelu(Z, a), a the learned slope(s) as an initializer; one slope per
                 feature takes as many features as it has slopes. A float64 model composes
                 Where(Z > 0, Z, a ⊙ Z) instead: onnxruntime has no float64 PRelu kernel at
                 opsets 13–15 and from 18 on
- Softmin        Softmax(Neg(Z), axis=-1)
- Unflatten      Reshape(Z, [0, sizes…]), the last layer only: the graph's output is then
                 (batch, sizes…), as model.predict's (dim 1 or -1 of rows)
- GLU()          A ⊙ Reciprocal(1 + Exp(−B)), A and B the halves of each row (two Slice
                 nodes, from the width the layer before gives; dim 1 or -1 only)
- GELU('tanh')   composed from Mul/Add/Tanh as wxb writes it
- GELU('none')   Z ⊙ Φ(Z). float32: ½·Z·(1 + Erf(Z/√2)). float64: onnxruntime has
                 no float64 Erf, so Φ(Z) = ½·erfc(−Z/√2) is composed from
                 Mul/Add/Div/Exp/Where with the series and continued fraction that
                 ``wxb.ops.erfc`` evaluates (agreeing with wxb to ~1e-15)
- Sequential     flattened, nested ones too; a layer given twice and parameters
                 shared between layers become one initializer; an empty one (a
                 forward's placeholder, ``self.head = Sequential()``) is nothing
- a module of one's own whose forward only chains such layers, and activations
                 it applies itself (``self.fc2(F.relu(self.fc1(x)))``): its layers as
                 one sample batch ran them (``describe.chain_layers``), as tracing would
- a module of one's own whose forward does more: traced, as torch.onnx.export
                 traces, from the graph one forward on a twin records (eval mode). Each
                 stock layer's call as above (a layer called twice: twice, one
                 initializer), each operation of its own as ONNX's: + − ⊙ / ^ (Add, Sub,
                 Mul, Div, Pow, NumPy's broadcasting being ONNX's), exp, log, √, abs,
                 reciprocal, sin, cos, matmul (MatMul), F.linear (Gemm), .T and
                 transpose (Transpose), cat (Concat), reshape (Reshape, the batch kept),
                 indexing by integers, slices and ``...`` (Slice, Gather), F.glu (over
                 rows), F.prelu, and every activation above, in place (F.relu_) too;
                 its own parameters and constants as initializers. Traced on two
                 sample batches, of 3 and 5 rows (``TRACE_ROWS``), which must give one
                 graph: a forward reading a result's values (h.data, h.item()) or
                 handing on a value cut from the graph (h.detach()) is refused (a branch
                 on x.shape[0] neither batch takes is not seen, as by torch's). Anything
                 else (a reduction, an index array, F.dropout left in training) is
                 refused, naming the operation and the layer whose result it takes

GELU is composed rather than the opset-20 ``Gelu`` operator so that the default
opset (17) serves older runtimes too. Any opset from 13 to the installed onnx's
newest may be asked for; every operator used is unchanged since opset 13.

The model's ``info`` goes into the file's metadata_props: ``task``, ``target``,
``loss`` (text), ``classes`` and ``feature_names`` (JSON), and ``wxb_version``;
the producer is "wxb".

A model whose ``info`` holds a table stage (``info["table"]``, see
``wxb.columns.TableEncoder``) takes its raw columns, and the file's metadata holds
the stage as ``table`` (JSON). A stage of numbers only, without "missing"
indicators, keeps the one ``input`` (batch, columns), its NaN cells filled with
each column's fill value as wxb fills them. Any other stage takes one input per
raw column instead, each of shape (batch, 1), named as the column (a name ONNX
cannot take, the empty one or ``output``, gets a suffix; metadata ``table_inputs``
maps column → input):

- number and bool columns: the model's dtype (bool as 0/1); NaN marks a missing cell,
  and so does a number among the model's own missing markers (``--na-values -999``),
  except a bool column's 0 and 1, which are False and True whatever the markers say
  (the graph's only way to be given a boolean; wxb predict, reading a file or a table
  whose bool column holds the declared marker 0 or 1, takes the user's word: a gap)
- text columns: strings; the empty string "" marks a missing cell (None cannot be
  fed), and so do the markers wxb reads as missing ('NA', '?', 'null', …). A category
  not seen in training gives all zeros, as in wxb; a category is also found by the
  other texts its value may come as ('1' for '1.0', 'True' for 'true', as
  ``columns.text_aliases`` lists them), as in wxb. wxb's reader trims the whitespace
  around text cells (' red', as pandas reads 'a, red', is 'red' there; ' \t' a gap):
  so does the graph, from opset 20 (RegexFullMatch), the default for a stage with
  text columns where the installed onnx has it. An opset asked for below 20 has no
  operator that can: the graph then finds each text with one space before, after or
  both too, but more (or a tab) is a category not seen (all zeros) without a word

The stage is built as wxb's ``TableEncoder.transform`` computes it, then Concat
(axis 1, in the encoder's order) feeds the layers:

- number, bool   float32: ai.onnx.ml Imputer (NaN → fill); float64: Where(IsNaN(x),
                 fill, x), as onnxruntime has no float64 Imputer and a float32 one
                 would round the values. Then, with an indicator, Cast(IsNaN(x))
- text           one RegexFullMatch per text of categories + [""] + the markers,
                 each with any whitespace around it (opset 20 on; before it, ai.onnx.ml
                 OneHotEncoder over them and their one-space variants, zeros=1),
                 Concat, and MatMul by a 0/1 matrix that maps those slots onto the fill
                 category (and the indicator column); float32, Cast for float64

A file with these ai.onnx.ml operators imports that domain (version 3) too. A
stage with "" as a category is refused (ConfigError): "" could not mean both that
category and a missing cell.

A Sequential holding a module of one's own (or a stock layer's subclass with a forward
of its own) is traced whole, as a forward of one's own is. Anything else that is not a
stock layer (a forward set on an instance, an activation with a kernel of its own) is
refused with ConfigError naming
its path and class, before anything is written. The file is checked with
``onnx.checker.check_model`` and written atomically (``wxb.data.atomic_write``).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wxb import ops
from wxb.columns import text_aliases
from wxb.data import atomic_write, check_format_name, refuse_folder_name
from wxb.describe import (
    _draws_undone,
    _held_state,
    _state_changed,
    chain_layers,
    not_a_chain,
    one_sample_run,
    sample_width,
)
from wxb.errors import ConfigError, install_hint
from wxb.nn.layers import (
    GLU,
    Activation,
    AlphaDropout,
    Bilinear,
    Dense,
    Dropout,
    Dropout1d,
    Embedding,
    FeatureAlphaDropout,
    Flatten,
    LazyLinear,
    PReLU,
    RReLU,
    Standardize,
    Unflatten,
)
from wxb.nn.module import WEIGHTS, Module, stock_kind
from wxb.nn.norm import NORMS, BatchNorm1d, LayerNorm, RMSNorm
from wxb.nn.sequential import Sequential
from wxb.tables import numeric_markers
from wxb.tensor import Tensor, set_grad_enabled, topological_order, values_watched

DEFAULT_OPSET = 17
# RegexFullMatch: a text cell found with any whitespace around it (a table model with
# text columns is exported at this opset by default where the onnx installed has it)
TEXT_OPSET = 20
# the characters pyarrow's utf8_trim_whitespace (wxb's reader) trims: str.isspace()'s
_SPACE = (
    r"[\x{9}-\x{D}\x{1C}-\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}"
    r"\x{202F}\x{205F}\x{3000}]*"
)
MIN_OPSET = 13  # Softmax on the last axis, Gemm with an optional C
MAX_DEPTH = 64  # Sequentials nested in one another (as wxb.save allows)
ML_DOMAIN, ML_OPSET = "ai.onnx.ml", 3  # Imputer and OneHotEncoder are unchanged since 1

_KERNELS = (
    ops.Identity, ops.Sigmoid, ops.Tanh, ops.ReLU, ops.LeakyReLU, ops.GELU, ops.SiLU,
    ops.ELU, ops.Softplus, ops.Softmax, ops.LogSoftmax, ops.ReLU6, ops.Hardtanh, ops.SELU,
    ops.CELU, ops.Mish, ops.Hardswish, ops.Hardsigmoid, ops.LogSigmoid, ops.Softsign,
    ops.Tanhshrink, ops.Threshold, ops.Hardshrink, ops.Softshrink, ops.Softmin,
)  # fmt: skip
_STOCK = (
    Sequential,
    Dense,
    Dropout,
    AlphaDropout,
    FeatureAlphaDropout,
    Dropout1d,
    RReLU,
    Standardize,
    Flatten,
    Unflatten,
    PReLU,
    GLU,
    *NORMS,
    Activation,
)


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ConfigError(
            f"ONNX export needs the onnx package: {install_hint('onnx', 'onnx')}"
        ) from None
    return onnx


def export(
    model: Module,
    path: str | Path,
    *,
    opset: int | None = None,
    dtype: object = None,
    sample_shape: object = None,
) -> Path:
    """Write ``model`` as an ONNX file at ``path`` and return the path.

    ``opset``: the ONNX opset to target (default 17, or 20 for a table stage with text
    columns, whose cells it then trims as wxb's reader does; 13 up to the installed
    onnx's newest). ``dtype``: the graph's, for a model holding no float array
    (``Sequential(Softmax())``, which wxb runs in its input's dtype and whose
    ``.double()`` has nothing to cast): float32 by default; any other model's graph is
    in its arrays' dtype, and another ``dtype`` is refused. ``sample_shape``: for a model
    whose first layer is a Flatten, the dims of a sample after the batch, (28, 28) for
    MNIST, which the graph's input then takes as predict does; by default the shape fit
    trained on (``model.info["sample_shape"]``), else rows (batch, features); for a forward
    of one's own that export traces, ``(n_features,)``: the rows it takes, where no sample
    batch of the widths its layers and parameters suggest ran.

    Raises ConfigError, writing nothing, for a path ending ``.safetensors`` (wxb's model
    files: ``wxb.save``) or another format's suffix (``.pt``, a table's ``.csv``, …), a
    model with a module that is not a stock wxb layer, forward hooks or pre-hooks on any
    module, the model itself too (the graph would not run them, whether or not they
    change the output), layers whose widths do not chain, a mix of dtypes, or a table
    stage (``model.info["table"]``) that is malformed or does not fit; OSError when the
    file cannot be written (nothing half-written is left). Beside another thread's
    training of the model, the graph holds one weight version: the step waits for the
    export (``WEIGHTS``).
    """
    refuse_folder_name(path, "ONNX file", ConfigError)  # (it wrote a file 'out' for 'out/')
    if Path(path).suffix.lower() == ".safetensors":  # (as wxb export -o: wxb.load refused it)
        raise ConfigError(
            f"{path}: wxb.onnx.export writes ONNX, not .safetensors; name the file .onnx "
            "(wxb.save(model, path) writes the .safetensors model)"
        )
    # (a table's name, .csv: the graph went over a data file; .pt: torch.load refused it)
    check_format_name(path, "wxb.onnx.export writes ONNX", (".onnx",), error=ConfigError)
    onnx = _onnx()
    newest = onnx.defs.onnx_opset_version()
    opset = _check_opset(opset, newest) if opset is not None else None
    layers = _flatten(model)
    if isinstance(layers, _OwnForward) and sample_shape is not None:  # the rows it takes
        ok = isinstance(sample_shape, (list, tuple)) and len(sample_shape) == 1
        if not ok or isinstance(sample_shape[0], bool) or not _positive(sample_shape[0]):
            raise ConfigError(
                "export sample_shape: a forward of one's own is traced on rows: give "
                f"(n_features,); got {sample_shape!r}"
            )
        layers.width = int(sample_shape[0])
    # the arrays of one weight version: another thread's step waits (a graph of the
    # first layers' old W and the later ones' new, else)
    with WEIGHTS.reading(model):
        leaves = layers.leaves() if isinstance(layers, _OwnForward) else layers
        dtype = _dtype(model, leaves, dtype)
        stage = _table_stage(model)
        if opset is None and stage is not None and any(r.kind == "text" for r in stage.rules):
            opset = min(max(DEFAULT_OPSET, TEXT_OPSET), newest)  # (else 17: padded texts)
        opset = _check_opset(opset, newest)
        proto = _build(onnx, model, layers, dtype, stage, opset, sample_shape, TRACE_ROWS[0])
        if isinstance(layers, _OwnForward):  # the same graph from another batch, or refused
            again = _build(onnx, model, layers, dtype, stage, opset, sample_shape, TRACE_ROWS[1])
            _check_same_graph(model, proto.graph, again.graph, layers.why_not)
    onnx.checker.check_model(proto, full_check=True)
    path = Path(path)
    atomic_write(path, proto.SerializeToString())
    return path


def _build(
    onnx: Any,
    model: Module,
    layers: list[tuple[str, Module]] | _OwnForward,
    dtype: np.dtype,
    stage: Any,
    opset: int,
    sample_shape: object,
    rows: int,
) -> Any:
    """The model's ONNX proto (a forward of one's own traced on ``rows`` sample rows)."""
    trace = _trace(layers, dtype, rows) if isinstance(layers, _OwnForward) else None

    def add_layers(graph: _Graph, x: str = "input") -> tuple[Any, Any]:
        graph.opset = opset  # (a traced reduction's axes: an attribute before opset 18)
        if trace is None:
            return graph.add_layers(layers, x)
        return graph.add_traced(layers, trace, x)

    if stage is None:
        graph = _Graph(onnx, dtype)
        n_features, n_outputs = add_layers(graph)
        given = sample_shape if trace is None else None  # (a trace's: the rows it ran on)
        graph.sample_shape = _sample_shape(model, graph.flatten_first, n_features, given)
        return graph.model(n_features, n_outputs, opset, _metadata(model))
    if stage.is_plain:  # numbers as they are: the one input, holes filled
        graph = _Graph(onnx, dtype)
        x, width, inputs = graph.add_plain_table(stage)
    else:
        graph = _Graph(onnx, dtype, reserved=("output",))
        graph.opset = opset
        x, width, inputs = graph.add_table(stage)
    n_features, n_outputs = add_layers(graph, x)
    if n_features is not None and n_features != width:
        raise ConfigError(
            f"cannot export: the model's table stage gives {width} inputs but the network "
            f"takes {n_features}"
        )
    props = _metadata(model)
    props["table"] = _json(stage.to_json(), "table")
    if inputs is not None:
        props["table_inputs"] = _json(inputs, "table")
    return graph.model(width, n_outputs, opset, props)


def _check_same_graph(model: Module, graph: Any, again: Any, why_not: str | None) -> None:
    """Refuse a traced forward whose graph on another sample batch is another (a branch
    on the batch's values or size, a value cut from the graph), naming the first node
    apart: the file would compute what it did on one batch alone."""
    if graph.SerializeToString() == again.SerializeToString():
        return
    ours = [(n.SerializeToString(), n.name) for n in [*graph.node, *graph.initializer]]
    theirs = [n.SerializeToString() for n in [*again.node, *again.initializer]]
    apart = next((n for k, (b, n) in enumerate(ours) if k >= len(theirs) or theirs[k] != b), None)
    at = f" (first at {apart!r})" if apart is not None else ""
    rows = " and ".join(map(str, TRACE_ROWS))
    raise _refuse(
        "",
        model,
        f"its traced forward gives other graphs on sample batches of {rows} rows{at}: it "
        "turns on the batch's size or values, uses a value cut from the graph (h.detach(), "
        "h.data, no_grad) or draws random numbers (wxb.randn, np.random), which one ONNX "
        f"graph cannot follow{_and(why_not)}",
    )


# ---------------------------------------------------------------------------------
# What the model computes: its stock layers, in order
# ---------------------------------------------------------------------------------
def _sample_shape(
    model: Module, flatten_first: bool, n_features: int | None, given: object
) -> tuple[int, ...] | None:
    """The input's dims after the batch for a model whose first layer is a Flatten:
    ``given``, else the shape fit recorded; None (rows) for any other model."""
    where = "sample_shape" if given is not None else "the model's info['sample_shape']"
    shape = given if given is not None else model.info.get("sample_shape")
    if shape is None:
        return None
    if not flatten_first:
        if given is None:  # (recorded, then the Flatten was removed: rows, as predict's)
            return None
        rows = isinstance(shape, (list, tuple)) and len(shape) == 1 and _positive(shape[0])
        if rows and n_features in (None, int(shape[0])):  # (n_features,): the rows it takes
            return None
        raise ConfigError(
            "export sample_shape: the model's first layer is not a Flatten (it takes rows: "
            f"({n_features if n_features is not None else 'n_features'},) or None)"
        )
    ok = isinstance(shape, (list, tuple)) and len(shape) >= 1
    ok = ok and all(isinstance(d, (int, np.integer)) and d > 0 for d in shape)
    if not ok or (n_features is not None and int(np.prod(shape)) != n_features):
        takes = f" of {n_features} values" if n_features is not None else ""
        raise ConfigError(f"export: {where} must be a sample's dims{takes}; got {shape!r}")
    return tuple(int(d) for d in shape)


def _check_opset(opset: object, newest: int) -> int:
    if opset is None:
        return min(DEFAULT_OPSET, newest)
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise ConfigError(f"opset must be an integer; got {opset!r}")
    if not MIN_OPSET <= opset <= newest:
        raise ConfigError(
            f"opset must be from {MIN_OPSET} to {newest} (the installed onnx's newest); got {opset}"
        )
    return int(opset)


def _literal(text: str) -> str:
    """``text`` as an RE2 pattern matching itself alone: each character but a letter or
    digit of ASCII as its code point."""
    return "".join(c if c.isascii() and c.isalnum() else f"\\x{{{ord(c):X}}}" for c in text)


def _where(path: str) -> str:
    return f"module '{path}'" if path else "the model itself"


def _refuse(path: str, module: object, why: str) -> ConfigError:
    cls = type(module)
    return ConfigError(
        f"cannot export {_where(path)} ({cls.__module__}.{cls.__qualname__}) to ONNX: {why}"
    )


def _refuse_hooks(model: Module) -> None:
    """Refuse forward hooks and pre-hooks on any module, the model itself included, as
    wxb.save and to_torch do: the graph runs none of them. (The model's own were let
    through where its sample batches showed them change nothing: one returning o * 2 for
    batches larger than the samples' was dropped from the graph without a word.) Walks without
    recursion; a Sequential nested too deeply is _flatten's to refuse."""
    stack: list[tuple[str, Module, int]] = [("", model, 0)]
    seen: set[int] = set()
    while stack:
        path, module, depth = stack.pop()
        if id(module) in seen or depth > MAX_DEPTH:
            continue
        seen.add(id(module))
        if module._has_hooks():
            held, them = module._hooks_held()
            why = f"it has {held}, which the ONNX graph would not run (remove {them} first)"
            raise _refuse(path, module, why)
        for key, child in reversed(module._modules.items()):
            if isinstance(child, Module):
                stack.append((f"{path}.{key}" if path else key, child, depth + 1))


def _flatten(model: object) -> list[tuple[str, Module]] | _OwnForward:
    """The leaf layers the model runs, in order, with their dotted paths; ConfigError for
    anything that is not a stock layer. Walks without recursion. A module whose forward
    of its own only chains its layers (``describe.chain_layers``) gives them as one
    sample batch ran them (as tracing would); one whose forward does more (a residual
    add, a layer called twice, ``x @ self.w.T``) gives an ``_OwnForward``, traced when
    the graph is built."""
    if not isinstance(model, Module):
        raise ConfigError(f"wxb.onnx.export needs a wxb.nn.Module; got {type(model).__name__}")
    _refuse_hooks(model)
    why_not = None  # why a forward of its own is no chain of its layers
    if stock_kind(model, _STOCK) is None:
        with one_sample_run():
            chain = chain_layers(model)
            why_not = None if chain is not None else not_a_chain(model)
            if chain is None and _traceable(model):  # residuals, a layer used twice, …
                return _OwnForward(model, sample_width(model), why_not)
    else:
        chain = None
        own = _own_modules(model)
        for path, module in own:  # (one set on an instance, an Embedding: refused, why)
            if not _traceable(module):
                _stock_leaf(path, module)
        if own:  # Sequential(Dense, Doubler(), Dense): traced whole, as a forward of its own
            with one_sample_run():
                return _OwnForward(model, sample_width(model), None)
    if chain is not None:
        paths = {id(m): name for name, m in model.named_modules()}  # (each once, first path)
        return [_stock_leaf(paths.get(id(m)) or str(m.name), m) for m in chain]
    leaves: list[tuple[str, Module]] = []
    stack: list[tuple[str, Module, tuple[int, ...]]] = [("", model, ())]
    while stack:
        path, module, ancestors = stack.pop()
        if stock_kind(module, _STOCK) is not Sequential:
            no_chain = None if ancestors else why_not
            leaves.append(_stock_leaf(path, module, no_chain))
            continue
        if len(ancestors) >= MAX_DEPTH:
            raise _refuse(path, module, f"Sequentials nested more than {MAX_DEPTH} deep")
        inside = (*ancestors, id(module))
        walk = []
        for key, child in module._modules.items():
            child_path = f"{path}.{key}" if path else key
            if id(child) in inside:
                raise _refuse(child_path, child, "it contains itself")
            walk.append((child_path, child, inside))
        stack.extend(reversed(walk))  # reversed onto the stack: walked in order
    return leaves


def _own_modules(model: Module) -> list[tuple[str, Module]]:
    """The modules below a stock Sequential that are no stock layer, with their paths, in
    order; without recursion, and no deeper than the walk of ``_flatten`` goes (it
    refuses what is deeper, or a Sequential holding itself)."""
    own, seen = [], set()
    stack: list[tuple[str, Module, int]] = [("", model, 0)]
    while stack:
        path, module, depth = stack.pop()
        if id(module) in seen or depth > MAX_DEPTH:
            continue
        seen.add(id(module))
        if stock_kind(module, _STOCK) is None:
            own.append((path, module))
        elif stock_kind(module, _STOCK) is Sequential:
            for key, child in reversed(module._modules.items()):
                stack.append((f"{path}.{key}" if path else key, child, depth + 1))
    return own


def _stock_leaf(path: str, module: Module, no_chain: str | None = None) -> tuple[str, Module]:
    """(path, module) for a stock layer other than Sequential; ConfigError for another
    (``no_chain``: why its forward of its own is no chain, ``describe.not_a_chain``)."""
    kind = stock_kind(module, _STOCK)
    if kind is None:
        own = [key for key in ("forward", "__call__") if key in vars(module)]
        if own:
            why = f"its {own[0]} was replaced on the instance"
        elif module._has_hooks():
            held, them = module._hooks_held()
            why = f"it has {held}, which the ONNX graph would not run (remove {them} first)"
        elif isinstance(module, Bilinear):  # (no single ONNX op; the graph takes X alone)
            why = "it takes two inputs, x1ᵀ·W·x2, where the exported graph takes one, X"
        elif type(module) is Embedding:
            why = "it looks up rows by integer index, where the exported graph takes float rows X"
        elif type(module) is LazyLinear:
            why = "its in_features is inferred at its first call: call the model once first"
        elif isinstance(module, _STOCK):
            base = next(k for k in _STOCK if isinstance(module, k))
            why = f"it subclasses {base.__name__} and replaces forward or __call__"
        elif no_chain is not None:  # it calls stock layers: what else it does is the matter
            why = "it is a module of its own whose forward does more than one that only chains"
            raise _refuse(path, module, f"{why} stock layers: it {no_chain}")
        else:
            why = (
                "it is a module of its own, not a stock wxb layer (nor one whose forward "
                "only chains stock layers)"
            )
        if own or module._has_hooks():  # a stock layer: the list of stock layers misleads
            raise _refuse(path, module, why)
        raise _refuse(
            path,
            module,
            f"{why}; ONNX export handles only Sequential, Dense, Standardize, Dropout, "
            "AlphaDropout, FeatureAlphaDropout, Dropout1d, RReLU, "
            "Flatten, Unflatten, PReLU, GLU, LayerNorm, BatchNorm1d, RMSNorm and wxb's "
            "activations",
        )
    if kind is Activation and type(module.kernel) not in _KERNELS:
        raise _refuse(
            path,
            module,
            f"its activation kernel {type(module.kernel).__qualname__} is not one of wxb's own",
        )
    return path, module


# ---------------------------------------------------------------------------------
# A forward of one's own that is no chain: traced, as torch.onnx.export traces
# ---------------------------------------------------------------------------------
# the rows of the two sample batches a forward is traced on: its graph must be the same
# on both (one branching on the batch's values or size, or using a value cut from the
# graph, is refused rather than written for one batch alone)
TRACE_ROWS = (3, 5)


def _traceable(model: Module) -> bool:
    """A module of one's own (or a stock layer's subclass with a forward of its own) whose
    forward the export may trace: not one replaced on the instance, nor a layer taking
    other inputs than rows of floats."""
    if any(key in vars(model) for key in ("forward", "__call__")):
        return False
    return not isinstance(model, (Bilinear, Embedding, LazyLinear))


@dataclass
class _OwnForward:
    """A model whose forward of its own the export traces (``_trace``)."""

    model: Module
    width: int | None  # the features of the rows its forward ran on (describe's sample)
    why_not: str | None  # why it is no chain (describe.not_a_chain), for a refusal

    def leaves(self) -> list[tuple[str, Module]]:
        """Its stock layers (but Sequentials), by path: their arrays' dtypes."""
        return [
            (path, m)
            for path, m in self.model.named_modules()
            if stock_kind(m, _STOCK) not in (None, Sequential)
        ]


@dataclass
class _Call:
    """One call of a stock layer in a traced forward."""

    path: str
    layer: Module
    arg: Any  # the tensor it was given
    arg_record: Any  # that tensor's record (its backward rule) at the call


@dataclass
class _Trace:
    """One forward of a twin of the model on a sample batch, its graph recorded."""

    given: Tensor
    result: Any
    leaf: Any = None  # the array given is a leaf of the graph, and given its copy
    given_record: Any = None
    # each stock layer's call, by the record of its result (a layer called twice: two);
    # by record, not by tensor: F.relu_(h) records anew on h, its old record moves on
    calls: dict[int, _Call] = field(default_factory=dict)
    parameters: dict[int, str] = field(default_factory=dict)  # id → the model's path


def _trace(own: _OwnForward, dtype: np.dtype, rows: int) -> _Trace:
    """The forward of ``own.model`` on ``rows`` sample rows, run on a twin sharing its
    parameters (as describe's sample runs: the model itself is not touched), in eval mode
    with a graph, each stock layer's call recorded. ConfigError where it does not run."""
    model = own.model
    if own.width is None:  # (no layer or parameter says it, or it took none it was given)
        why = f" ({own.why_not})" if own.why_not else ""
        raise _refuse(
            "",
            model,
            "tracing its forward needs the width of the rows it takes, which no sample "
            f"batch found{why}: give it, export(model, path, sample_shape=(n_features,))",
        )
    try:
        twin = copy.deepcopy(model, {id(p): p for p in model.parameters()})
    except Exception as exc:  # a module holding what cannot be copied (a lock, a file)
        raise _refuse("", model, f"it cannot be copied to trace its forward ({exc})") from None
    originals, copies = list(model.named_modules()), list(twin.named_modules())
    if len(originals) != len(copies):
        raise _refuse("", model, "its copy, to trace its forward, holds other modules")
    trace = _Trace(Tensor(np.zeros((0, 0))), None)
    trace.parameters = {id(p): name for name, p in model.named_parameters()}
    # where the forward stood, step by step: after each stock layer's call, on entering and
    # leaving each module of one's own (a read of values names the last)
    called: list[str] = []

    def recording(path: str, layer: Module, forward: Any) -> Any:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            result = forward(*args, **kwargs)
            called.append(f"after '{path}'")
            arg = args[0] if len(args) == 1 and not kwargs else None
            if isinstance(result, Tensor) and result is not arg and result._backward is not None:
                record = getattr(arg, "_backward", None)
                trace.calls[id(result._backward)] = _Call(path, layer, arg, record)
            return result

        return recorded

    def entering(path: str, forward: Any) -> Any:
        def entered(*args: Any, **kwargs: Any) -> Any:
            called.append(f"in '{path}'")
            result = forward(*args, **kwargs)
            called.append(f"after '{path}'")
            return result

        return entered

    for (path, original), (_, twin_module) in zip(originals, copies, strict=True):
        kind = stock_kind(original, _STOCK)
        if path and kind not in (None, Sequential):
            twin_module.forward = recording(path, original, twin_module.forward)
        elif path and kind is None:  # (a module of one's own inside: named where it reads)
            twin_module.forward = entering(path, twin_module.forward)
    draw = np.random.default_rng(rows)
    batch = 3.0 * draw.standard_normal((rows, own.width))
    trace.leaf = Tensor(batch.astype(dtype), requires_grad=True)
    held = _held_state(copies)
    try:
        # (each trace draws from generators seeded by its rows: noise a forward draws,
        # wxb.randn(1, k), differs between the two graphs, not one constant in both)
        with twin.evaluating(), set_grad_enabled(True), _draws_undone(seed=rows):
            with np.errstate(all="ignore"), values_watched(called.__len__) as watched:
                # a result, not a leaf: a forward may change its batch in place
                # (F.relu_(x)), as torch's export lets it; its record, where it moves
                # on then, is the graph's input. Made here, its values are watched too
                trace.given = ops.mul(trace.leaf, 1.0)
                trace.given_record = trace.given._backward
                trace.result = twin(trace.given)
    except Exception as exc:
        _state_changed(held)  # (the parameters it changed get their values back)
        why = f"its forward failed on a sample batch of {rows} rows of {own.width} features"
        said = " ".join(str(exc).split())  # (one line)
        raise _refuse("", model, f"{why} ({type(exc).__name__}: {said})") from None
    changed = _state_changed(held)
    if changed is not None:  # self.count += 1, a buffer or weight set: predict's next
        # call computes with another state than the one graph holds
        raise _refuse(
            "",
            model,
            f"its forward changes {changed}, so each call computes with another state; "
            "one ONNX graph holds one",
        )
    if watched.read and watched.first is not None:  # NumPy on .data, an if on .item(), …:
        # what it does with them is no operation the graph records
        how, done = watched.first
        where = called[done - 1] if done else "before its first layer"
        why = f"takes the values of a result ({how}) {where}"
        raise _refuse(
            "", model, f"its forward {why}, which a traced graph cannot follow{_and(own.why_not)}"
        )
    return trace


def _positive(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and value > 0


def _and(why_not: str | None) -> str:
    """Describe's word on a forward that reads or writes values (``not_a_chain``: what it
    did and where, "writes into the batch it is given"), to add to a refusal; "" for
    another (a layer called twice is no matter to a trace)."""
    values = ("values", "writes", "cut from the graph", "in place")
    return f" (it {why_not})" if why_not and any(w in why_not for w in values) else ""


def _joined_axis(items: list[Tensor], joined: Tensor) -> int | None:
    """The axis ``items`` were concatenated along into ``joined`` (the recorded op keeps
    no axis): the first along which NumPy's concatenate gives it; None where none does."""
    for axis in range(joined.ndim):
        shapes_fit = all(
            t.ndim == joined.ndim
            and t.shape[:axis] + t.shape[axis + 1 :]
            == joined.shape[:axis] + joined.shape[axis + 1 :]
            for t in items
        )
        if shapes_fit and sum(t.shape[axis] for t in items) == joined.shape[axis]:
            together = np.concatenate([t.data for t in items], axis=axis)
            if np.array_equal(together, joined.data, equal_nan=True):
                return axis
    return None


def _stacked_axis(items: list[Tensor], stacked: Tensor) -> int | None:
    """The new axis ``items`` were stacked along into ``stacked`` (the recorded op keeps
    none): the first along which NumPy's stack gives it; None where none does."""
    for axis in range(stacked.ndim):
        if all(t.shape == items[0].shape for t in items) and stacked.shape[axis] == len(items):
            together = np.stack([t.data for t in items], axis=axis)
            if together.shape == stacked.shape and np.array_equal(
                together, stacked.data, equal_nan=True
            ):
                return axis
    return None


# a reduction of a traced forward (its backward rule's ``reduced``: axes, keepdims): ONNX's
_REDUCTIONS = {
    "Σ": "ReduceSum",
    "max": "ReduceMax",
    "amax": "ReduceMax",
    "min": "ReduceMin",
    "amin": "ReduceMin",
}

# an operation of a traced forward: ONNX's operator for it, element-wise on its inputs
_ELEMENTWISE = {
    "+": "Add",
    "+b": "Add",
    "-": "Sub",
    "⊙": "Mul",
    "/": "Div",
    "^": "Pow",
    "exp": "Exp",
    "log": "Log",
    "√": "Sqrt",
    "abs": "Abs",
    "reciprocal": "Reciprocal",
    "neg": "Neg",
    "sin": "Sin",
    "cos": "Cos",
}


def _dtype(model: Module, layers: list[tuple[str, Module]], wanted: object = None) -> np.dtype:
    """The one dtype of the arrays the layers use (``wanted``, else the model's dtype,
    when none has any); ConfigError where ``wanted`` is not theirs, or, naming the first
    layer of each, where the layers mix dtypes."""
    first_of: dict[np.dtype, str] = {}  # each dtype → the first layer holding it
    for path, layer in layers:
        arrays: list[Any] = []
        if isinstance(layer, Dense):
            arrays = [layer.weight, layer.bias]
        elif isinstance(layer, Standardize):
            arrays = [layer.mean, layer.scale]
        elif isinstance(layer, NORMS):
            arrays = [layer.weight, layer.bias]
            arrays += [a for a in layer._buffers.values() if a is not None and a.dtype.kind == "f"]
        elif isinstance(layer, PReLU):  # (a float32 slope in a float64 model: wxb refuses
            # to run it, where the graph cast it and ran)
            arrays = [layer.weight]
        for array in arrays:
            if array is not None:
                first_of.setdefault(np.dtype(array.dtype), path or type(layer).__name__.lower())
    if wanted is not None:
        from wxb.backend import resolve_dtype

        try:
            wanted = resolve_dtype(wanted)
        except ConfigError as exc:
            raise ConfigError(f"cannot export: {exc}") from None
    dtypes = set(first_of) or {np.dtype(wanted or model.dtype)}
    odd = sorted(str(d) for d in dtypes if d not in (np.float32, np.float64))
    if odd:
        raise ConfigError(
            f"cannot export a model holding {', '.join(odd)} arrays: cast it with "
            "model.to('float32') or model.to('float64')"
        )
    if len(dtypes) > 1:
        held = ", ".join(f"module '{first_of[d]}' {d.name}" for d in sorted(dtypes, key=str))
        raise ConfigError(
            f"cannot export a model that mixes float32 and float64 arrays ({held}; wxb cannot "
            "run it either): cast it with model.to('float32') or model.to('float64')"
        )
    found = dtypes.pop()
    if wanted is not None and wanted != found:
        raise ConfigError(
            f"cannot export in {wanted.name} a model holding {found.name} arrays (dtype= is for "
            f"a model holding none): cast it with model.to('{wanted.name}') first"
        )
    return found


def _table_stage(model: Module) -> Any:
    """The model's TableEncoder (``info["table"]``), or None; ConfigError if malformed."""
    info = model.info if isinstance(model.info, dict) else {}
    if info.get("table") is None:
        return None
    from wxb.columns import TableEncoder
    from wxb.errors import DataError

    try:
        stage = TableEncoder.from_json(info["table"], "model.info")
    except DataError as exc:
        raise ConfigError(f"cannot export: {exc}") from None
    for rule in stage.rules:
        if rule.kind != "text":
            continue
        if "" in rule.categories:
            raise ConfigError(
                f"cannot export: text column {rule.name!r} has the empty string as a category; "
                'the ONNX graph reads "" as a missing cell'
            )
        if len(set(rule.categories)) != len(rule.categories):
            raise ConfigError(f"cannot export: text column {rule.name!r} repeats a category")
    return stage


def _metadata(model: Module) -> dict[str, str]:
    from wxb import __version__

    info = model.info if isinstance(model.info, dict) else {}
    props = {"wxb_version": __version__}
    # link "log": wxb predict gives exp(output) (a Poisson or Gamma regressor); multilabel:
    # each output is its own yes/no: what a reader needs to turn the output into it (and
    # the loss's options: PoissonNLLLoss's log_input, a margin)
    for key in ("task", "target", "loss", "loss_options", "link", "multilabel"):
        value = info.get(key)
        if value is not None:
            props[key] = value if isinstance(value, str) else _json(value, key)
    for key in ("classes", "feature_names"):
        if info.get(key) is not None:
            props[key] = _json(info[key], key)
    return props


def _json(value: object, key: str) -> str:
    def default(item: object) -> object:
        if isinstance(item, np.generic):
            return item.item()
        if isinstance(item, np.ndarray):
            return item.tolist()
        raise TypeError(f"model.info[{key!r}] holds {type(item).__name__}, which JSON cannot store")

    try:
        return json.dumps(value, default=default)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot export model.info: {exc}") from None


# ---------------------------------------------------------------------------------
# The graph
# ---------------------------------------------------------------------------------
_SQRT_HALF = math.sqrt(0.5)
_GELU_C = math.sqrt(2 / math.pi)
_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)
_SQRT_PI = math.sqrt(math.pi)


class _Graph:
    """Nodes and initializers of one export, built layer by layer."""

    def __init__(
        self, onnx: Any, dtype: np.dtype, reserved: tuple[str, ...] = ("input", "output")
    ) -> None:
        self.onnx, self.dtype = onnx, np.dtype(dtype)
        self.nodes: list = []
        self.initializers: list = []
        self.arrays: dict[int, str] = {}  # id(array or Parameter) → initializer name
        self.constants: dict[tuple[str, float], str] = {}  # scalar constants, shared
        self.near_one: dict[str, np.ndarray] = {}  # initializers onnxruntime takes for 1
        self.names: set[str] = set(reserved)
        self.inputs: list | None = None  # a table stage's inputs (else the one "input")
        self.per_column = False  # one input per raw column
        self.flatten_first = False  # the graph may take samples of more dims (sample_shape)
        self.sample_shape: tuple[int, ...] | None = None  # the input's dims after the batch
        self.opset = DEFAULT_OPSET  # (text cells are matched by regex from TEXT_OPSET on)

    # -- names, initializers, nodes ------------------------------------------------------
    def name(self, wanted: str) -> str:
        name, n = wanted, 1
        while name in self.names:
            n += 1
            name = f"{wanted}_{n}"
        self.names.add(name)
        return name

    def initializer(
        self, key: object, array: np.ndarray, wanted: str, dtype: np.dtype | None = None
    ) -> str:
        """An initializer for ``array`` (in the model's dtype unless ``dtype``); the same
        ``key`` (a shared parameter) gives one."""
        if key is not None and id(key) in self.arrays:
            return self.arrays[id(key)]
        name = self.name(wanted)
        # (np.asarray, not ascontiguousarray, which made a 0-d array 1-d: a Gather's index
        # kept its axis, h[:, 0] came out (B, 1), broadcast as a column, not a row)
        data = np.asarray(array, dtype=dtype or self.dtype, order="C")
        self.initializers.append(self.onnx.numpy_helper.from_array(data, name))
        if data.dtype == np.float64 and data.size == 1 and 0 < abs(float(data.flat[0]) - 1) < 1e-7:
            self.near_one[name] = data
        if key is not None:  # the model holds the key alive: its id stays its own
            self.arrays[id(key)] = name
        return name

    def const(self, value: float) -> str:
        """A scalar constant of the model's dtype, as wxb's arithmetic rounds it."""
        scalar = self.dtype.type(value)
        key = (self.dtype.name, scalar.tobytes().hex())
        if key not in self.constants:
            self.constants[key] = self.initializer(
                None, np.array(scalar), f"const_{float(scalar)!r}"
            )
        return self.constants[key]

    def node(self, op: str, inputs: list[str], where: str, **attrs: Any) -> str:
        # onnxruntime's NoopElimination drops x·c and x/c for a one-element c that rounds
        # to 1 in float32: a float64 BatchNorm1d(1) factor 1/√(1 + 5.8e-8) was lost, the
        # output 2.9e-8 off. x + x·(c − 1) and x − x·((c − 1)/c) round as x·c and x/c
        # (to an ulp), with nothing near 1 to drop
        near = [k for k, v in enumerate(inputs) if v in self.near_one]
        if op in ("Mul", "Div") and near and (op == "Mul" or near == [1]):
            c = self.near_one[inputs[near[0]]]
            x = inputs[1 - near[0]]
            delta = (c - 1) if op == "Mul" else (c - 1) / c
            d = self.initializer(None, delta, f"{inputs[near[0]]}_minus_1")
            small = self.node("Mul", [x, d], where)
            return self.node("Add" if op == "Mul" else "Sub", [x, small], where)
        out = self.name(f"{where}/{op}")
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    # -- the table stage ------------------------------------------------------------------
    def add_table(self, stage: Any) -> tuple[str, int, dict[str, str]]:
        """One graph input per raw column, encoded and concatenated as
        ``TableEncoder.transform`` does: the matrix's name, its width, column → input."""
        helper, tensor = self.onnx.helper, self.onnx.TensorProto
        elem = helper.np_dtype_to_tensor_dtype(self.dtype)
        names: dict[str, str] = {}
        for column in stage.columns:  # names ONNX takes as they are keep them
            if column and column not in self.names:
                names[column] = self.name(column)
        for column in stage.columns:
            if column not in names:
                names[column] = self.name(column or "column")
        self.inputs, self.per_column = [], True
        pieces: list[str] = []
        markers = stage.markers
        for rule in stage.rules:
            x, where = names[rule.name], f"table.{rule.name}"
            kind = tensor.STRING if rule.kind == "text" else elem
            self.inputs.append(helper.make_tensor_value_info(x, kind, ["batch", 1]))
            if rule.kind == "text":
                pieces.append(self._one_hot(rule, x, where, markers))
                continue
            markers_here = [  # the model's -999: a gap, as in wxb; a bool's 0 and 1 are no gaps
                m
                for m in numeric_markers(stage.na_values)
                if rule.kind == "number" or m not in (0, 1)
            ]
            for number in markers_here:
                marked = self.node("Equal", [x, self.const(number)], where)
                x = self.node("Where", [marked, self.const(math.nan), x], where)
            pieces.append(self._fill(x, [float(rule.fill)], where))
            if rule.indicator:
                pieces.append(self.node("Cast", [self.node("IsNaN", [x], where)], where, to=elem))
        matrix = self.node("Concat", pieces, "table", axis=1)
        return matrix, len(stage.outputs), {c: names[c] for c in stage.columns}

    def add_plain_table(self, stage: Any) -> tuple[str, int, None]:
        """Numbers only, no indicators: the one ``input`` (batch, columns), NaN filled."""
        helper, width = self.onnx.helper, len(stage.columns)
        elem = helper.np_dtype_to_tensor_dtype(self.dtype)
        self.inputs = [helper.make_tensor_value_info("input", elem, ["batch", width])]
        x = "input"
        for number in numeric_markers(stage.na_values):  # the model's -999: a gap, as in wxb
            marked = self.node("Equal", [x, self.const(number)], "table")
            x = self.node("Where", [marked, self.const(math.nan), x], "table")
        return self._fill(x, [float(r.fill) for r in stage.rules], "table"), width, None

    def _fill(self, x: str, fills: list[float], where: str) -> str:
        """NaN in column j of ``x`` → ``fills[j]``."""
        if all(math.isnan(f) for f in fills):  # nothing to fill with
            return x
        if self.dtype == np.float32:
            return self.node(
                "Imputer",
                [x],
                where,
                domain=ML_DOMAIN,
                imputed_value_floats=fills,
                replaced_value_float=math.nan,
            )
        if len(fills) == 1:
            fill = self.const(fills[0])
        else:
            fill = self.initializer(None, np.array(fills), f"{where}.fill")
        return self.node("Where", [self.node("IsNaN", [x], where), fill, x], where)

    def _one_hot(self, rule: Any, x: str, where: str, markers: list[str]) -> str:
        # one-hot over categories + [""] + the missing markers wxb reads ('NA', '?', …),
        # then each missing slot → the fill's column (+ indicator)
        categories = list(rule.categories)
        k = len(categories)
        missing = [m for m in dict.fromkeys(["", *markers]) if m not in categories]
        # a number's and a boolean's other texts ('1' for '1.0', 'True' for 'true'), as
        # TableEncoder finds them
        aliases = {a: c for a, c in text_aliases(categories).items() if a not in missing}
        texts = [*categories, *aliases, *missing]
        slots = np.zeros((len(texts), k + int(rule.indicator)), dtype=np.float32)
        slots[:k, :k] = np.eye(k, dtype=np.float32)
        for row, category in enumerate(aliases.values(), start=k):
            slots[row, categories.index(category)] = 1
        gaps = k + len(aliases)
        if rule.fill in categories:
            slots[gaps:, categories.index(rule.fill)] = 1
        if rule.indicator:
            slots[gaps:, k] = 1
        if self.opset >= TEXT_OPSET:  # each text with any whitespace around it, as wxb's
            # reader trims a cell (' red', as pandas reads 'a, red', is 'red'; '\t' a gap)
            found = []
            for text in texts:
                pattern = f"{_SPACE}{_literal(text)}{_SPACE}"
                match = self.node("RegexFullMatch", [x], where, pattern=pattern)
                found.append(self.node("Cast", [match], where, to=self.onnx.TensorProto.FLOAT))
            flat = found[0] if len(found) == 1 else self.node("Concat", found, where, axis=1)
        else:
            flat = self._padded_one_hot(x, texts, where)
        mapped = self.node(
            "MatMul", [flat, self.initializer(None, slots, f"{where}.slots", np.float32)], where
        )
        if self.dtype == np.float32:
            return mapped
        elem = self.onnx.helper.np_dtype_to_tensor_dtype(self.dtype)
        return self.node("Cast", [mapped], where, to=elem)

    def _padded_one_hot(self, x: str, texts: list[str], where: str) -> str:
        """Before opset 20, which has no operator that trims text: OneHotEncoder over the
        texts and three more blocks of them, with a space before, after, both, summed onto
        the first; more space (or a tab) is a text not seen (all zeros)."""
        # (a collision, '' + ' ' with ' ' + '', takes more spaces: it trims to the same
        # text; the reshape's 0 keeps the batch, an empty one too)
        used, every = set(texts), list(texts)
        for pad in (lambda t: f" {t}", lambda t: f"{t} ", lambda t: f" {t} "):
            for text in texts:
                variant, more = pad(text), 2
                while variant in used:
                    variant, more = f"{' ' * more}{text}{' ' * more}", more + 1
                used.add(variant)
                every.append(variant)
        hot = self.node("OneHotEncoder", [x], where, domain=ML_DOMAIN, cats_strings=every, zeros=1)
        blocks = self.initializer(
            None, np.array([0, 4, len(texts)]), f"{where}.blocks", np.dtype(np.int64)
        )
        axis = self.initializer(None, np.array([1]), f"{where}.block_axis", np.dtype(np.int64))
        return self.node(
            "ReduceSum", [self.node("Reshape", [hot, blocks], where), axis], where, keepdims=0
        )

    # -- layers --------------------------------------------------------------------------
    def add_layers(
        self, layers: list[tuple[str, Module]], x: str = "input"
    ) -> tuple[int | None, int | tuple[int, ...] | None]:
        """Every layer's nodes from ``x``; the model's input and output widths (None: any;
        a tuple: each output row's shape, after an Unflatten)."""
        start, width, n_features = x, None, None
        for k, (path, layer) in enumerate(layers):
            takes = None
            if isinstance(layer, Unflatten):  # (its output is not rows: it comes last)
                width = self._check_unflatten(path, layer, width, layers[k + 1 :])
            if isinstance(layer, Dense):
                takes = self._dense_width(path, layer)
            elif isinstance(layer, Standardize):
                takes = self._standardize_width(path, layer)
            elif isinstance(layer, NORMS):
                takes = self._norm_width(path, layer)
            elif isinstance(layer, PReLU) and layer.num_parameters > 1:
                # one slope per feature: Dense(4, 3), PReLU(5) was written, and onnxruntime
                # failed at its first run ('broadcast an axis … 3 by 5')
                takes = layer.num_parameters
            elif isinstance(layer, Flatten):
                self._check_flatten(path, layer)  # (rows (B, n) it gives as they are)
                self.flatten_first |= k == 0 and start == "input"
            if takes is not None:
                if width is None and n_features is None:
                    n_features = takes
                elif width is not None and takes != width:
                    raise _refuse(
                        path, layer, f"it takes {takes} features but the layer before gives {width}"
                    )
                # a norm first gives what it takes: Dense(3) after LayerNorm(4) is refused
                # here, not by onnx's shape inference (InferenceError, 'between 3 and 4')
                width = takes if width is None else width
            x, width = self._layer(path, layer, x, width)
        if x == start:
            self.nodes.append(
                self.onnx.helper.make_node("Identity", [x], ["output"], name="output")
            )
        else:
            for node in self.nodes:  # the last value is the graph's output
                node.output[:] = ["output" if v == x else v for v in node.output]
        return n_features, width

    @staticmethod
    def _dense_width(path: str, layer: Dense) -> int:
        weight, bias = layer.weight, layer.bias
        if weight.ndim != 2:
            raise _refuse(path, layer, f"its weight has shape {weight.shape}, not (out, in)")
        if bias is not None and tuple(bias.shape) != (weight.shape[0],):
            raise _refuse(path, layer, f"its bias has shape {bias.shape}; W is {weight.shape}")
        return int(weight.shape[1])

    @staticmethod
    def _check_flatten(path: str, layer: Flatten) -> None:
        if (layer.start_dim, layer.end_dim) != (1, -1):  # ONNX's Flatten gives 2 dims
            raise _refuse(
                path,
                layer,
                f"ONNX export takes Flatten(start_dim=1, end_dim=-1), torch's default, which "
                f"makes rows; this one has start_dim={layer.start_dim}, end_dim={layer.end_dim}",
            )

    @staticmethod
    def _check_unflatten(
        path: str, layer: Unflatten, width: int | None, after: list[tuple[str, Module]]
    ) -> tuple[int, ...]:
        """The shape of each output row (as the graph's output gives it), or refused."""
        shape = layer.shape_of_rows(width) if width is not None else None
        if shape is None:
            why = (
                f"it splits dim {layer.dim}; the graph's rows (B, F) export dim=1 or -1"
                if layer.dim not in (1, -1)
                else f"its sizes {layer.unflattened_size} do not split rows of {width} features"
                if width is not None
                else "the width it splits is not known: put it after a Dense layer"
            )
            raise _refuse(path, layer, why)
        dropouts = (Dropout, AlphaDropout, FeatureAlphaDropout, Dropout1d)
        if any(not isinstance(other, dropouts) for _, other in after):
            raise _refuse(
                path,
                layer,
                "a layer follows it; ONNX export takes Unflatten last (the graph's output "
                "then has its shape); reshape before that layer in a forward of your own",
            )
        return shape

    @staticmethod
    def _standardize_width(path: str, layer: Standardize) -> int:
        mean, scale = np.asarray(layer.mean), np.asarray(layer.scale)
        if mean.ndim != 1 or mean.shape != scale.shape:
            raise _refuse(path, layer, f"mean {mean.shape} and scale {scale.shape} do not fit")
        return int(mean.shape[0])

    @staticmethod
    def _norm_width(path: str, layer: LayerNorm | BatchNorm1d | RMSNorm) -> int:
        if isinstance(layer, (LayerNorm, RMSNorm)):
            if len(layer.normalized_shape) != 1:
                raise _refuse(
                    path, layer, f"it normalises dims {layer.normalized_shape}; rows have one"
                )
            return layer.normalized_shape[0]
        if layer._buffers.get("running_mean") is None:
            raise _refuse(
                path,
                layer,
                "it keeps no running statistics (track_running_stats=False), so it normalises "
                "each batch by the batch itself, which an exported model cannot do",
            )
        return layer.num_features

    def _affine(self, layer: LayerNorm | BatchNorm1d | RMSNorm, x: str, where: str) -> str:
        """γ ⊙ x̂ + β, as wxb's ops compute it (a Mul, then an Add)."""
        if layer.weight is not None:
            gamma = self.initializer(layer.weight, layer.weight.data, f"{where}.weight")
            x = self.node("Mul", [x, gamma], where)
        if layer.bias is not None:
            beta = self.initializer(layer.bias, layer.bias.data, f"{where}.bias")
            x = self.node("Add", [x, beta], where)
        return x

    def _layer_norm(self, layer: LayerNorm, x: str, where: str) -> str:
        # in float64, as wxb takes μ and σ² (float32 loses a row's spread under a large
        # common offset: 1e4 + noise of 1e-2 came out 15% off), x̂ back in the model's dtype
        n, f64 = layer.normalized_shape[0], np.dtype(np.float64)
        wide = self.dtype != f64
        if wide:
            x = self.node("Cast", [x], where, to=self.onnx.TensorProto.DOUBLE)
        mean_of = self.initializer(None, np.full((n, 1), 1.0 / n), f"{where}.mean_of", f64)
        eps = self.initializer(None, np.array(layer.eps), f"{where}.eps", f64)
        centred = self.node("Sub", [x, self.node("MatMul", [x, mean_of], where)], where)
        var = self.node("MatMul", [self.node("Mul", [centred, centred], where), mean_of], where)
        root = self.node("Sqrt", [self.node("Add", [var, eps], where)], where)
        out = self.node("Mul", [centred, self.node("Reciprocal", [root], where)], where)
        if wide:
            elem = self.onnx.helper.np_dtype_to_tensor_dtype(self.dtype)
            out = self.node("Cast", [out], where, to=elem)
        return self._affine(layer, out, where)

    def _rms_norm(self, layer: RMSNorm, x: str, where: str) -> str:
        # mean(x²) in float64, as wxb takes it; x ⊙ r back in the model's dtype
        n, f64 = layer.normalized_shape[0], np.dtype(np.float64)
        eps = float(np.finfo(self.dtype).eps) if layer.eps is None else layer.eps
        wide = self.dtype != f64
        if wide:
            x = self.node("Cast", [x], where, to=self.onnx.TensorProto.DOUBLE)
        mean_of = self.initializer(None, np.full((n, 1), 1.0 / n), f"{where}.mean_of", f64)
        epsilon = self.initializer(None, np.array(eps), f"{where}.eps", f64)
        square = self.node("MatMul", [self.node("Mul", [x, x], where), mean_of], where)
        root = self.node("Sqrt", [self.node("Add", [square, epsilon], where)], where)
        out = self.node("Mul", [x, self.node("Reciprocal", [root], where)], where)
        if wide:
            elem = self.onnx.helper.np_dtype_to_tensor_dtype(self.dtype)
            out = self.node("Cast", [out], where, to=elem)
        return self._affine(layer, out, where)

    def _glu(self, path: str, layer: GLU, x: str, where: str, width: int | None) -> tuple[str, int]:
        if not layer.halves_rows():
            raise _refuse(
                path, layer, f"it halves dim {layer.dim}; the graph's rows (B, F) export dim=-1"
            )
        if width is None:  # (Slice needs the half's size; no layer before gives it)
            raise _refuse(
                path, layer, "the width it halves is not known: put it after a Dense layer"
            )
        if width % 2:
            raise _refuse(path, layer, f"it halves rows of {width} features, an odd number")
        return self._halves(x, where, width), width // 2

    def _halves(self, x: str, where: str, width: int) -> str:
        """A ⊙ σ(B), A and B the halves of rows of ``width`` features (GLU, F.glu)."""
        half, i64 = width // 2, np.dtype(np.int64)
        axis = self.initializer(None, np.array([-1]), f"{where}.axis", i64)
        bounds = [
            self.initializer(None, np.array([k]), f"{where}.at_{k}", i64) for k in (0, half, width)
        ]
        a = self.node("Slice", [x, bounds[0], bounds[1], axis], where)
        b = self.node("Slice", [x, bounds[1], bounds[2], axis], where)
        return self.node("Mul", [a, self._sigmoid(b, where)], where)

    def _prelu(self, x: str, slope: str, where: str) -> str:
        """z where z > 0, else a·z, the slope(s) along the last axis."""
        if self.dtype == np.float32:
            return self.node("PRelu", [x, slope], where)
        # as wxb computes it: onnxruntime has no float64 PRelu kernel at opsets 13-15 and
        # from 18 (the default 20 of a table with text)
        positive = self.node("Greater", [x, self.const(0.0)], where)
        below = self.node("Mul", [x, slope], where)
        return self.node("Where", [positive, x, below], where)

    def _shrink(self, kernel: ops.Hardshrink | ops.Softshrink, x: str, where: str) -> str:
        """ONNX's Shrink (bias λ for Softshrink, 0 for Hardshrink) for a float32 model. A
        float64 one is composed as wxb computes it, Where(|Z| ≤ λ, 0, Z − Sign(Z)·λ)
        (Hardshrink: Z): Shrink's λ is a float32 attribute, and onnxruntime's float64
        Shrink rounds Z through float32 (1e-7 off)."""
        soft = isinstance(kernel, ops.Softshrink)
        lambd = kernel.lambd
        if self.dtype == np.float32:
            return self.node("Shrink", [x], where, lambd=lambd, bias=lambd if soft else 0.0)
        band = self.node("LessOrEqual", [self.node("Abs", [x], where), self.const(lambd)], where)
        kept = x
        if soft:
            shift = self.node("Mul", [self.node("Sign", [x], where), self.const(lambd)], where)
            kept = self.node("Sub", [x, shift], where)
        return self.node("Where", [band, self.const(0.0), kept], where)

    def _batch_norm(self, layer: BatchNorm1d, x: str, where: str) -> str:
        dtype = layer.running_var.dtype
        factor = (1.0 / np.sqrt(layer.running_var + layer.eps)).astype(dtype)  # as wxb's
        mean = self.initializer(layer.running_mean, layer.running_mean, f"{where}.running_mean")
        inv = self.initializer(None, factor, f"{where}.reciprocal_std")
        out = self.node("Mul", [self.node("Sub", [x, mean], where), inv], where)
        return self._affine(layer, out, where)

    def _layer(self, path: str, layer: Module, x: str, width: int | None) -> tuple[str, int | None]:
        where = path or type(layer).__name__.lower()
        if isinstance(layer, Dense):
            w = self.initializer(layer.weight, layer.weight.data, f"{where}.weight")
            inputs = [x, w]
            if layer.bias is not None:
                inputs.append(self.initializer(layer.bias, layer.bias.data, f"{where}.bias"))
            return self.node("Gemm", inputs, where, transB=1), int(layer.weight.shape[0])
        if isinstance(layer, Standardize):
            mean = self.initializer(layer.mean, layer.mean, f"{where}.mean")
            factor = 1.0 / np.asarray(layer.scale)  # exactly wxb's factor, in its dtype
            inv = self.initializer(None, factor, f"{where}.reciprocal_scale")
            centred = self.node("Sub", [x, mean], where)
            return self.node("Mul", [centred, inv], where), int(np.asarray(layer.mean).shape[0])
        if isinstance(layer, (Dropout, AlphaDropout, FeatureAlphaDropout, Dropout1d)):
            return x, width
        if isinstance(layer, RReLU):  # inference: LeakyReLU of slope (lower + upper)/2
            kernel = ops.LeakyReLU((layer.lower + layer.upper) / 2)
            return self._activation(kernel, x, where), width
        if isinstance(layer, PReLU):  # its slope(s) along the features (the last axis)
            slope = self.initializer(layer.weight, layer.weight.data, f"{where}.weight")
            return self._prelu(x, slope, where), width
        if isinstance(layer, GLU):
            return self._glu(path, layer, x, where, width)
        if isinstance(layer, Unflatten):  # width: the row's shape (_check_unflatten's)
            sizes = np.array([0, *width])  # (0: the batch, as it comes)
            shape = self.initializer(None, sizes, f"{where}.shape", np.dtype(np.int64))
            return self.node("Reshape", [x, shape], where), width
        if isinstance(layer, Flatten):  # (B, d₁, d₂, …) → (B, d₁·d₂·…)
            return self.node("Flatten", [x], where, axis=1), width
        if isinstance(layer, LayerNorm):
            return self._layer_norm(layer, x, where), width
        if isinstance(layer, BatchNorm1d):
            return self._batch_norm(layer, x, where), width
        if isinstance(layer, RMSNorm):
            return self._rms_norm(layer, x, where), width
        if isinstance(layer, Sequential):  # an empty one a forward of one's own calls (a
            # placeholder, self.head = Sequential()): the identity (was an AttributeError)
            return x, width
        return self._activation(layer.kernel, x, where), width

    def _activation(self, kernel: object, x: str, where: str) -> str:
        if isinstance(kernel, ops.Identity):
            return x
        if isinstance(kernel, ops.Sigmoid):
            return self._sigmoid(x, where)
        if isinstance(kernel, ops.SiLU):  # z·σ(z)
            return self.node("Mul", [x, self._sigmoid(x, where)], where)
        if isinstance(kernel, ops.ELU):  # z where z > 0, else α·(e^min(z, 0) − 1)
            # (e^z − 1, not expm1: off by at most α·2⁻²⁴ in float32 near z = 0, under an ulp
            # of what the layer passes on, where Kahan's expm1 made the layer twice as slow)
            below = self.node("Exp", [self.node("Min", [x, self.const(0.0)], where)], where)
            below = self.node("Sub", [below, self.const(1.0)], where)
            below = self.node("Mul", [below, self.const(kernel.alpha)], where)
            positive = self.node("Greater", [x, self.const(0.0)], where)
            return self.node("Where", [positive, x, below], where)
        if isinstance(kernel, ops.ReLU6):  # (Hardtanh too) Clip(z, low, high)
            low, high = self.const(kernel.low), self.const(kernel.high)
            return self.node("Clip", [x, low, high], where)
        if isinstance(kernel, (ops.SELU, ops.CELU)):  # composed as wxb computes them: onnx's
            # Selu and Celu take float32 attributes, off in float64
            selu = isinstance(kernel, ops.SELU)
            below = self.node("Min", [x, self.const(0.0)], where)
            if not selu:
                below = self.node("Mul", [below, self.const(1 / kernel.alpha)], where)
            below = self.node("Sub", [self.node("Exp", [below], where), self.const(1.0)], where)
            factor = ops._SELU_ALPHA * ops._SELU_SCALE if selu else kernel.alpha
            below = self.node("Mul", [below, self.const(factor)], where)
            above = self.node("Mul", [x, self.const(ops._SELU_SCALE)], where) if selu else x
            positive = self.node("Greater", [x, self.const(0.0)], where)
            return self.node("Where", [positive, above, below], where)
        if isinstance(kernel, (ops.Mish, ops.LogSigmoid)):
            tail = self.node(
                "Exp", [self.node("Neg", [self.node("Abs", [x], where)], where)], where
            )
            tail = self._log1p(tail, where)  # log(1 + e^(−|z|))
            if isinstance(kernel, ops.LogSigmoid):  # min(z, 0) − log1p(e^(−|z|))
                return self.node(
                    "Sub", [self.node("Min", [x, self.const(0.0)], where), tail], where
                )
            softplus = self.node("Add", [self.node("Relu", [x], where), tail], where)
            return self.node("Mul", [x, self.node("Tanh", [softplus], where)], where)
        if isinstance(kernel, (ops.Hardswish, ops.Hardsigmoid)):  # (z·)clip(z + 3, 0, 6)/6
            shifted = self.node("Add", [x, self.const(3.0)], where)
            clipped = self.node("Clip", [shifted, self.const(0.0), self.const(6.0)], where)
            if isinstance(kernel, ops.Hardswish):
                clipped = self.node("Mul", [x, clipped], where)
            return self.node("Div", [clipped, self.const(6.0)], where)
        if isinstance(kernel, ops.Softsign):  # z/(1 + |z|)
            d = self.node("Add", [self.node("Abs", [x], where), self.const(1.0)], where)
            return self.node("Div", [x, d], where)
        if isinstance(kernel, ops.Tanhshrink):
            return self.node("Sub", [x, self.node("Tanh", [x], where)], where)
        if isinstance(kernel, (ops.Hardshrink, ops.Softshrink)):
            return self._shrink(kernel, x, where)
        if isinstance(kernel, ops.Threshold):  # value where z ≤ threshold, else z (NaN too)
            below = self.node("LessOrEqual", [x, self.const(kernel.threshold)], where)
            return self.node("Where", [below, self.const(kernel.value), x], where)
        if isinstance(kernel, ops.Softplus):
            # z where βz > threshold, else (max(βz, 0) + log(1 + e^(−|βz|)))/β, as wxb's
            scaled = self.node("Mul", [x, self.const(kernel.beta)], where)
            tail = self.node(
                "Exp", [self.node("Neg", [self.node("Abs", [scaled], where)], where)], where
            )
            tail = self._log1p(tail, where)
            smooth = self.node("Add", [self.node("Relu", [scaled], where), tail], where)
            smooth = self.node("Div", [smooth, self.const(kernel.beta)], where)
            linear = self.node("Greater", [scaled, self.const(kernel.threshold)], where)
            return self.node("Where", [linear, x, smooth], where)
        if isinstance(kernel, ops.Tanh):
            return self.node("Tanh", [x], where)
        if isinstance(kernel, ops.ReLU):
            return self.node("Relu", [x], where)
        if isinstance(kernel, ops.Softmax):
            return self.node("Softmax", [x], where, axis=-1)
        if isinstance(kernel, ops.Softmin):
            return self.node("Softmax", [self.node("Neg", [x], where)], where, axis=-1)
        if isinstance(kernel, ops.LogSoftmax):
            return self._log_softmax(x, where)
        if isinstance(kernel, ops.LeakyReLU):
            # wxb: slope = 1 where z > 0, else α; A = slope ⊙ Z
            alpha = kernel.negative_slope
            positive = self.const(1.0)
            slope = self.node(
                "Where",
                [self.node("Greater", [x, self.const(0.0)], where), positive, self.const(alpha)],
                where,
            )
            return self.node("Mul", [x, slope], where)
        if isinstance(kernel, ops.GELU):
            if kernel.approximate == "tanh":
                return self._gelu_tanh(x, where)
            if kernel.approximate == "none":
                return self._gelu_erf(x, where)
        raise ConfigError(f"{where}: no ONNX form for the activation {kernel!r}")  # unreachable

    def _log_softmax(self, z: str, where: str) -> str:
        # wxb's z − max − log Σ e^(z − max) is NaN across a row holding NaN or +inf;
        # onnxruntime's float64 LogSoftmax gave finite log-probabilities there (46.05 for
        # a row [1.0, -0.1, NaN]), so such rows are set to NaN, as wxb and PyTorch give
        out = self.node("LogSoftmax", [z], where, axis=-1)
        odd = self.node(
            "Or",
            [self.node("IsNaN", [z], where), self.node("IsInf", [z], where, detect_negative=0)],
            where,
        )
        last = self.initializer(None, np.array([-1]), f"{where}.last_axis", np.dtype(np.int64))
        count = self.node(
            "Cast", [odd], where, to=self.onnx.helper.np_dtype_to_tensor_dtype(self.dtype)
        )
        count = self.node("ReduceSum", [count, last], where, keepdims=1)
        spoilt = self.node("Greater", [count, self.const(0.0)], where)
        return self.node("Where", [spoilt, self.const(math.nan), out], where)

    def _log1p(self, u: str, where: str) -> str:
        """log(1 + u) for u ≥ 0, as np.log1p to a few ulps (ONNX has no Log1p): Log(1 + u)
        alone gave 0 for u below half an ulp of 1 (Softplus at βz = −17 in float32, −37
        in float64, where wxb gives e^βz/β) and lost digits well before. Goldberg's form:
        u where 1 + u rounds to 1, else log(w)·u/(w − 1) with w = 1 + u."""
        w = self.node("Add", [u, self.const(1.0)], where)
        rounded = self.node("Sub", [w, self.const(1.0)], where)  # u as 1 + u kept it
        ratio = self.node("Div", [u, rounded], where)
        exact = self.node("Mul", [self.node("Log", [w], where), ratio], where)
        lost = self.node("Equal", [rounded, self.const(0.0)], where)
        return self.node("Where", [lost, u, exact], where)

    def _sigmoid(self, z: str, where: str) -> str:
        # 1 / (1 + e^(−z)), as wxb computes it: onnxruntime's own Sigmoid is 22 % off
        # at z = −16 in float32 and gives 0 from z = −20 (log p then −inf)
        e = self.node("Exp", [self.node("Neg", [z], where)], where)
        return self.node("Reciprocal", [self.node("Add", [e, self.const(1.0)], where)], where)

    def _gelu_tanh(self, z: str, where: str) -> str:
        # ½z · (1 + tanh(√(2/π)·(z + 0.044715·z³))), in wxb's order
        half_z = self.node("Mul", [z, self.const(0.5)], where)
        cube = self.node("Mul", [self.node("Mul", [z, z], where), z], where)
        inner = self.node("Add", [z, self.node("Mul", [cube, self.const(0.044715)], where)], where)
        t = self.node("Tanh", [self.node("Mul", [inner, self.const(_GELU_C)], where)], where)
        return self.node("Mul", [half_z, self.node("Add", [t, self.const(1.0)], where)], where)

    def _gelu_erf(self, z: str, where: str) -> str:
        if self.dtype == np.float32:  # ½z · (1 + erf(z/√2)): the runtime's float Erf
            erf = self.node("Erf", [self.node("Mul", [z, self.const(_SQRT_HALF)], where)], where)
            half_z = self.node("Mul", [z, self.const(0.5)], where)
            return self.node(
                "Mul", [half_z, self.node("Add", [erf, self.const(1.0)], where)], where
            )
        # float64 (no Erf kernel for it in onnxruntime): z · ½·erfc(t), t = −z/√2, as
        # wxb.ops.erfc: t ≥ 2: the continued fraction; else 1 − erf(t), where
        # erf(t) = sign(t)·(series(|t|) for |t| < 2.5, else 1 − fraction(|t|)).
        t = self.node("Neg", [self.node("Mul", [z, self.const(_SQRT_HALF)], where)], where)
        a = self.node("Abs", [t], where)
        fraction = self._erfc_fraction(a, where)  # = fraction(t) where t ≥ 2
        erf_abs = self.node(
            "Where",
            [
                self.node("Less", [a, self.const(ops._ERF_SPLIT)], where),
                self._erf_series(a, where),
                self.node("Sub", [self.const(1.0), fraction], where),
            ],
            where,
        )
        erf = self.node(
            "Where",
            [
                self.node("Less", [t, self.const(0.0)], where),
                self.node("Neg", [erf_abs], where),
                erf_abs,
            ],
            where,
        )
        erfc = self.node(
            "Where",
            [
                self.node("GreaterOrEqual", [t, self.const(ops._ERFC_SPLIT)], where),
                fraction,
                self.node("Sub", [self.const(1.0), erf], where),
            ],
            where,
        )
        cdf = self.node("Mul", [self.const(0.5), erfc], where)
        return self.node("Mul", [z, cdf], where)

    def _erf_series(self, x: str, where: str) -> str:
        """2/√π · x · Σ (−1)ᵏ x^(2k+1)/(k!(2k+1)) by Horner's rule, as wxb.ops._erf_series."""
        x2 = self.node("Mul", [x, x], where)
        coefficients = list(reversed(ops._ERF_TAYLOR))
        series = self.const(coefficients[0])  # 0·x² + c: the first step of wxb's loop
        for c in coefficients[1:]:
            series = self.node("Add", [self.node("Mul", [series, x2], where), self.const(c)], where)
        scaled = self.node("Mul", [x, self.const(_TWO_OVER_SQRT_PI)], where)
        return self.node("Mul", [scaled, series], where)

    def _erfc_fraction(self, x: str, where: str) -> str:
        """e^(−x²)/√π · 1/(x + (1/2)/(x + (2/2)/(x + …))), as wxb.ops._erfc_fraction."""
        terms = ops._ERFC_TERMS
        tail = self.node("Div", [self.const(terms / 2), x], where)  # (k/2)/(x + 0)
        for k in range(terms - 1, 0, -1):
            tail = self.node("Div", [self.const(k / 2), self.node("Add", [x, tail], where)], where)
        gauss = self.node(
            "Exp", [self.node("Neg", [self.node("Mul", [x, x], where)], where)], where
        )
        scaled = self.node("Mul", [self.const(_SQRT_PI), self.node("Add", [x, tail], where)], where)
        return self.node("Div", [gauss, scaled], where)

    # -- a traced forward ----------------------------------------------------------------
    def add_traced(
        self, own: _OwnForward, trace: _Trace, x: str = "input"
    ) -> tuple[int, int | tuple[int, ...]]:
        """The nodes of a traced forward (``_trace``) from ``x``: each stock layer's call
        as ``_layer`` builds it, each operation the forward applies itself as its ONNX
        operator (constants and the model's own parameters as initializers); the model's
        input width and its output's (a tuple: each output row's shape)."""
        given, result = trace.given, trace.result
        rows = given.shape[0]
        if not isinstance(result, Tensor) or result.ndim < 2 or result.shape[0] != rows:
            what = f"shape {result.shape}" if isinstance(result, Tensor) else type(result).__name__
            raise _refuse(
                "", own.model, f"its forward returns {what}, not one row per sample of the batch"
            )
        # each operation's inputs as they were when it ran, as backward takes them: one
        # changed in place since (a = h * 2; b = a + 1; a += 5) is the tensor holding its
        # record of then (b read a + 5, 5 off in every row)
        topological_order(result)
        names: dict[int, str] = {}
        stack: list[tuple[Tensor, bool]] = [(result, False)]
        walking: set[int] = set()  # the values whose inputs are being walked
        while stack:  # (without recursion: a long forward is a deep graph)
            t, fed = stack.pop()
            if id(t) in names:
                continue
            if t is trace.leaf or (t._backward is not None and t._backward is trace.given_record):
                names[id(t)] = x
                continue
            call = trace.calls.get(id(t._backward)) if t._backward is not None else None
            if call is not None:
                feeds = [call.arg] if isinstance(call.arg, Tensor) else []
            elif not t.requires_grad or not t.inputs:  # a constant, or a parameter
                feeds = []
            else:
                feeds = list(t.inputs)
            if not fed:
                if id(t) in walking:  # (a view changed in place, h.T[1] += 1, records one)
                    raise _refuse(
                        "",
                        own.model,
                        f"its forward changes a result in place through a view ({t.op!r} "
                        "records it), which the export cannot trace",
                    )
                walking.add(id(t))
                stack.append((t, True))
                stack.extend((f, False) for f in reversed(feeds) if id(f) not in names)
                continue
            inputs = [names[id(f)] for f in feeds]
            if call is not None:
                names[id(t)] = self._traced_call(call, inputs)
            elif not feeds:
                key = t if id(t) in trace.parameters else None
                names[id(t)] = self.initializer(key, t.data, trace.parameters.get(id(t), "const"))
            else:
                names[id(t)] = self._traced_op(own, trace, t, inputs)
        out = names[id(result)]
        if out == x or not any(out in node.output for node in self.nodes):
            identity = self.onnx.helper.make_node("Identity", [out], ["output"], name="output")
            self.nodes.append(identity)
        else:
            for node in self.nodes:  # the last value is the graph's output
                node.output[:] = ["output" if v == out else v for v in node.output]
        shape = tuple(int(d) for d in result.shape[1:])
        return int(given.shape[1]), shape[0] if len(shape) == 1 else shape

    def _traced_call(self, call: _Call, inputs: list[str]) -> str:
        """A stock layer's call in a traced forward, as ``_layer`` builds it."""
        path, layer, arg = call.path, call.layer, call.arg
        _stock_leaf(path, layer)  # (an activation of a kernel of its own is refused)
        if not isinstance(arg, Tensor) or not inputs:
            raise _refuse(path, layer, "the traced forward calls it with other than one tensor")
        if arg._backward is not call.arg_record:
            raise _refuse(path, layer, "the forward changes its input in place after the call")
        if arg.dtype != self.dtype:
            raise _refuse(path, layer, f"it is given {arg.dtype} rows in a {self.dtype} model")
        elementwise = (Dropout, AlphaDropout, FeatureAlphaDropout, Dropout1d, RReLU, Flatten)
        lasting = isinstance(layer, Activation) and not isinstance(
            layer.kernel, (ops.Softmax, ops.LogSoftmax, ops.Softmin)
        )
        if arg.ndim != 2 and not (isinstance(layer, elementwise) or lasting):
            why = f"the forward gives it shape {arg.shape}; ONNX export takes rows"
            raise _refuse(path, layer, why)
        width: Any = int(arg.shape[-1])
        if isinstance(layer, Dense):
            self._dense_width(path, layer)
        elif isinstance(layer, Standardize):
            self._standardize_width(path, layer)
        elif isinstance(layer, NORMS):
            self._norm_width(path, layer)
        elif isinstance(layer, Flatten):
            self._check_flatten(path, layer)
        elif isinstance(layer, Unflatten):
            width = layer.shape_of_rows(width)
            if width is None:
                why = f"it splits dim {layer.dim} of shape {arg.shape}; export takes dim 1 or -1"
                raise _refuse(path, layer, why)
        return self._layer(path, layer, inputs[0], width)[0]

    def _traced_op(self, own: _OwnForward, trace: _Trace, t: Tensor, inputs: list[str]) -> str:
        """An operation a traced forward applies itself, as its ONNX operator(s)."""
        op, where = str(t.op), "forward"
        feeds = list(t.inputs)
        source = feeds[0]
        call = trace.calls.get(id(source._backward)) if source._backward is not None else None
        place = (
            "to the batch it is given"
            if source._backward is trace.given_record
            else f"to the result of '{call.path}'"
            if call is not None
            else f"after {source.op!r}"
        )

        def refuse(why: str) -> ConfigError:
            return _refuse("", own.model, f"its forward applies {op!r} {place}: {why}")

        if t.dtype != self.dtype:
            raise refuse(f"it computes in {t.dtype} in a {self.dtype} model")
        kernel = getattr(t._backward, "kernel", None)
        if kernel is not None:  # an activation (F.relu, F.softmin(z, -1), h.tanh(), …)
            if type(kernel) not in _KERNELS:
                raise refuse(f"its kernel {type(kernel).__qualname__} is not one of wxb's own")
            if t.ndim != 2 and isinstance(kernel, (ops.Softmax, ops.LogSoftmax, ops.Softmin)):
                raise refuse(f"over the last axis of shape {t.shape}; export takes rows")
            return self._activation(kernel, inputs[0], where)
        if op in _ELEMENTWISE:  # (NumPy's broadcasting is ONNX's)
            return self.node(_ELEMENTWISE[op], inputs, where)
        if op == "W·X":  # F.linear, a Dense subclass's forward: X·Wᵀ
            return self.node("Gemm", inputs, where, transB=1)
        if op == "matmul":
            return self.node("MatMul", inputs, where)
        if op == "transpose":  # t.transpose(0, 1) (its axes), or .T (all reversed)
            perm = list(range(source.ndim))[::-1]
            swapped = getattr(t._backward, "axes", None)
            if swapped is not None:
                perm = list(range(source.ndim))
                perm[swapped[0]], perm[swapped[1]] = swapped[1], swapped[0]
            return self.node("Transpose", inputs, where, perm=perm)
        if op == "concatenate":
            axis = _joined_axis(feeds, t)
            if axis is None:
                raise refuse("its axis is not seen from the shapes")
            return self.node("Concat", inputs, where, axis=axis)
        if op == "index":
            return self._index(getattr(t._backward, "key", None), source, inputs[0], where, refuse)
        if op == "reshape":
            shape = list(t.shape)
            if t.ndim and source.ndim:  # the batch as it comes, or what the rest leaves
                # (rows of 4 as pairs: 2B of them; two sample batches show it holds)
                shape[0] = 0 if t.shape[0] == source.shape[0] else -1
            i64 = np.dtype(np.int64)
            dims = self.initializer(None, np.array(shape), f"{where}.shape", i64)
            return self.node("Reshape", [inputs[0], dims], where)
        if op in _REDUCTIONS or op == "norm":
            return self._reduction(op, t._backward, source, inputs[0], where, refuse)
        if op == "clamp":
            bounds = getattr(t._backward, "bounds", None)
            if bounds is None:
                raise refuse("its bounds are tensors; ONNX export takes numbers")
            clip = [  # ("": no bound that side)
                "" if b is None else self.initializer(None, np.array(b), f"{where}.bound")
                for b in bounds
            ]
            return self.node("Clip", [inputs[0], *clip], where)
        if op == "where":  # a mask the graph holds (one from the batch's values is refused
            # where the comparison reads them; one of the batch's shape, by the second batch)
            mask = np.asarray(t._backward.condition)
            at = self.initializer(None, mask, f"{where}.mask", np.dtype(np.bool_))
            return self.node("Where", [at, *inputs], where)
        if op == "permute":
            return self.node("Transpose", inputs, where, perm=list(t._backward.dims))
        if op == "stack":
            axis = _stacked_axis(feeds, t)
            if axis is None:
                raise refuse("its axis is not seen from the shapes")
            at = self.initializer(None, np.array([axis]), f"{where}.axes", np.dtype(np.int64))
            grown = [self.node("Unsqueeze", [item, at], where) for item in inputs]
            return self.node("Concat", grown, where, axis=axis)
        if op == "glu":
            if t.ndim != 2 or t.shape[0] != source.shape[0] or 2 * t.shape[1] != source.shape[1]:
                raise refuse(f"it halves shape {source.shape} into {t.shape}; export takes dim=-1")
            return self._halves(inputs[0], where, int(source.shape[1]))
        if op == "prelu":
            if source.ndim != 2:
                raise refuse(f"on shape {source.shape}; export takes rows")
            return self._prelu(inputs[0], inputs[1], where)
        if op == "dropout":
            raise refuse(
                "dropout while evaluating (F.dropout's training is True unless given: pass "
                "training=self.training)"
            )
        raise refuse("ONNX export has no form for it")

    def _reduction(
        self, op: str, rule: Any, source: Tensor, x: str, where: str, refuse: Any
    ) -> str:
        """A sum, max, min (along dims, amax, amin) or p-norm over the axes its backward
        rule keeps (None: all) as ONNX's Reduce*; the axes an input from opset 13
        (ReduceSum) or 18 (the others), an attribute before."""
        reduced, keepdims = rule.reduced[0], bool(rule.reduced[1])
        if isinstance(reduced, (int, np.integer)):
            reduced = (reduced,)
        axes = None if reduced is None else sorted(int(a) % max(source.ndim, 1) for a in reduced)
        if op == "norm":  # ‖x‖_p: L1, L2, max |x|, or (Σ|x|^p)^(1/p)
            p = rule.p
            if p == 0:
                raise refuse("p = 0 (a count of nonzero values); ONNX export takes p > 0")
            if p in (1, 2):
                return self._reduce(f"ReduceL{int(p)}", x, axes, keepdims, where)
            x = self.node("Abs", [x], where)
            if p == math.inf:
                return self._reduce("ReduceMax", x, axes, keepdims, where)
            powered = self.node("Pow", [x, self.const(p)], where)
            total = self._reduce("ReduceSum", powered, axes, keepdims, where)
            return self.node("Pow", [total, self.const(1 / p)], where)
        return self._reduce(_REDUCTIONS[op], x, axes, keepdims, where)

    def _reduce(self, op: str, x: str, axes: list[int] | None, keepdims: bool, where: str) -> str:
        if axes is None:  # (no axes: all of them)
            return self.node(op, [x], where, keepdims=int(keepdims))
        if op == "ReduceSum" or self.opset >= 18:
            at = self.initializer(None, np.array(axes), f"{where}.axes", np.dtype(np.int64))
            return self.node(op, [x, at], where, keepdims=int(keepdims))
        return self.node(op, [x], where, axes=axes, keepdims=int(keepdims))

    def _index(self, key: Any, source: Tensor, x: str, where: str, refuse: Any) -> str:
        """``x[key]`` for integers, slices and an Ellipsis: Slice, then Gather for each
        integer (from the last axis back, the axes before it keep their places)."""
        key = key if isinstance(key, tuple) else (key,)
        if sum(k is Ellipsis for k in key) > 1 or any(
            k is not Ellipsis and not isinstance(k, (slice, int, np.integer)) for k in key
        ):
            shown = " ".join(repr(key).split())  # (one line: an index array's repr wraps)
            shown = shown if len(shown) <= 80 else f"{shown[:77]}..."
            raise refuse(f"index {shown}; ONNX export takes integers, slices and one ...")
        if any(k is Ellipsis for k in key):
            at = next(i for i, k in enumerate(key) if k is Ellipsis)
            key = (*key[:at], *[slice(None)] * (source.ndim - len(key) + 1), *key[at + 1 :])
        i64, big = np.dtype(np.int64), np.iinfo(np.int64)
        cuts = [
            (axis, k) for axis, k in enumerate(key) if isinstance(k, slice) and k != slice(None)
        ]
        if cuts:
            starts, ends, axes, steps = [], [], [], []
            for axis, cut in cuts:
                step = 1 if cut.step is None else int(cut.step)
                first, past = (0, big.max) if step > 0 else (-1, big.min)
                starts.append(first if cut.start is None else int(cut.start))
                ends.append(past if cut.stop is None else int(cut.stop))
                axes.append(axis)
                steps.append(step)
            given = {"starts": starts, "ends": ends, "axes": axes, "steps": steps}
            bounds = [
                self.initializer(None, np.array(v), f"{where}.{name}", i64)
                for name, v in given.items()
            ]
            x = self.node("Slice", [x, *bounds], where)
        for axis in reversed(range(len(key))):
            if not isinstance(key[axis], slice):
                at = self.initializer(None, np.array(int(key[axis])), f"{where}.at", i64)
                x = self.node("Gather", [x, at], where, axis=axis)
        return x

    # -- the model -----------------------------------------------------------------------
    def model(
        self,
        n_features: int | None,
        n_outputs: int | tuple[int, ...] | None,
        opset: int,
        props: dict[str, str],
    ) -> Any:
        helper = self.onnx.helper
        elem = helper.np_dtype_to_tensor_dtype(self.dtype)
        shape_in = ["batch", n_features if n_features is not None else "features"]
        if n_outputs is None:  # no layer sets a width: outputs as wide as the input
            shape_out = list(shape_in)
        elif isinstance(n_outputs, tuple):  # an Unflatten last: each row's shape
            shape_out = ["batch", *n_outputs]
        else:
            shape_out = ["batch", n_outputs]
        if self.per_column:
            inputs = self.inputs
            doc = (
                'Exported from wxb: one input per table column (batch, 1), NaN or "" where '
                "missing → output, as model.predict on the encoded table"
            )
        else:
            shape = ["batch", *self.sample_shape] if self.sample_shape else shape_in
            inputs = self.inputs or [helper.make_tensor_value_info("input", elem, shape)]
            doc = "Exported from wxb: input (batch, features) → output, as model.predict"
        used = {name for node in self.nodes for name in node.input}
        graph = helper.make_graph(
            self.nodes,
            "wxb",
            inputs,
            [helper.make_tensor_value_info("output", elem, shape_out)],
            # (a factor near 1 taken apart in node() is left unused)
            initializer=[t for t in self.initializers if t.name in used],
        )
        imports = [helper.make_opsetid("", opset)]
        if any(node.domain == ML_DOMAIN for node in self.nodes):
            imports.append(helper.make_opsetid(ML_DOMAIN, ML_OPSET))
        proto = helper.make_model(
            graph,
            opset_imports=imports,
            producer_name="wxb",
            producer_version=props["wxb_version"],
            doc_string=doc,
        )
        proto.ir_version = helper.find_min_ir_version_for(imports)
        helper.set_model_props(proto, props)
        return proto
