"""A model described as the seed writes it: a summary table with its FLOPs, and Mermaid diagrams.

``summary`` counts what a training step costs before anything runs: parameters,
the GEMM FLOPs of Z = W·X + b and of backpropagation, the activations a step
keeps, and — given a GEMM rate — the time no implementation can beat on that
machine (the rate floor). The diagrams draw the same model in the seed's
notation (W⁽ˡ⁾ m×n, X and δ⁽ˡ⁾ with B columns), as plain Mermaid text that
GitHub renders: ``architecture_diagram``, ``forward_diagram``,
``backward_diagram`` and ``graph_diagram`` (a recorded graph, from ``wxb.graph``).
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, TypeVar

import numpy as np

from wxb.backend import resolve_dtype
from wxb.columns import TableEncoder
from wxb.errors import ConfigError
from wxb.nn.containers import ModuleDict, ModuleList, ParameterDict, ParameterList
from wxb.nn.layers import (
    ACTIVATIONS,
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
from wxb.nn.layers import stand_in as activation_stand_in
from wxb.nn.module import (
    _DEFINED_FORWARD,
    _MODULE_CALL,
    Module,
    Parameter,
    input_width,
    stock_kind,
)
from wxb.nn.norm import NORMS, BatchNorm1d, LayerNorm, RMSNorm
from wxb.nn.sequential import Sequential
from wxb.random import drawing_from
from wxb.tensor import (
    WEIGHTS,
    Tensor,
    graph,
    is_grad_enabled,
    set_grad_enabled,
    topological_order,
    values_watched,
    watch_values,
)

STOCK_LAYERS = (Dense, Activation, Dropout, Standardize, *NORMS)


def normalization_text(module: LayerNorm | BatchNorm1d | RMSNorm, z: str, training: bool) -> str:
    """What a normalisation layer computes from ``z`` in the seed's column notation
    (units as rows, samples as columns)."""
    scale = "γ ⊙ " if module.weight is not None else ""
    if isinstance(module, RMSNorm):
        return f"{scale}{z}/√(mean({z} ⊙ {z}) + ε), the mean over the units of each column (sample)"
    shift = " + β" if module.bias is not None else ""
    if isinstance(module, LayerNorm):
        over = "over the units of each column (sample)"
    elif training or module._buffers.get("running_mean") is None:
        over = "over the batch, per unit (row)"
    else:
        over = "the running statistics, per unit (row)"
    return f"{scale}({z} − μ)/√(σ² + ε){shift}, μ and σ² {over}"


def normalization_backward(module: LayerNorm | BatchNorm1d | RMSNorm, training: bool) -> str:
    """A normalisation layer's backward rule, g = ∂L/∂(its output), x̂ its normalised input."""
    scaled = "γ ⊙ g" if module.weight is not None else "g"
    if isinstance(module, RMSNorm):
        params = "; ∂L/∂γ = Σ g ⊙ x̂" if module.weight is not None else ""
        return (
            f"r ⊙ (ĝ − x̂ ⊙ mean(ĝ ⊙ x̂)), r = 1/√(mean(x²) + ε), ĝ = {scaled}, "
            f"means over each column{params}"
        )
    if isinstance(module, BatchNorm1d) and not training:
        if module._buffers.get("running_mean") is not None:
            return f"{scaled} / √(running σ² + ε)"
    means = "over each column" if isinstance(module, LayerNorm) else "over the batch"
    params = ""
    if module.weight is not None:
        params = "; ∂L/∂γ = Σ g ⊙ x̂" + (", ∂L/∂β = Σ g" if module.bias is not None else "")
    return f"(ĝ − mean(ĝ) − x̂ ⊙ mean(ĝ ⊙ x̂))/σ, ĝ = {scaled}, means {means}{params}"


# the sample runs (``_sample_run``) of one description, by model (held, so that its id
# is not another's): a summary or diagram asks several questions of one forward
_sample_runs: ContextVar[dict[tuple[int, int | None], tuple[Module, _SampleRun | None]] | None] = (
    ContextVar("_sample_runs", default=None)
)
# the ids a row of the data (summary's seq_len), for a model whose Embedding takes ids
_ids_per_row: ContextVar[int | None] = ContextVar("_ids_per_row", default=None)
SAMPLE_IDS = 8  # else a sample row holds this many ids, unless the model's widths say
_Described = TypeVar("_Described", bound=Callable[..., Any])


@contextmanager
def one_sample_run() -> Iterator[None]:
    """Inside, each model's sample forward (``_sample_run``) runs once however many
    summaries and diagrams ask of it (the model is not to change meanwhile)."""
    if _sample_runs.get() is not None:
        yield
        return
    token = _sample_runs.set({})
    try:
        yield
    finally:
        _sample_runs.reset(token)


@contextmanager
def sample_ids_per_row(length: int | None) -> Iterator[None]:
    """Inside, a model whose Embedding takes ids runs its sample forward on rows of
    ``length`` ids (the data's), as ``summary(seq_len=…)``."""
    token = _ids_per_row.set(length)
    try:
        yield
    finally:
        _ids_per_row.reset(token)


def _one_sample_run(describe: _Described) -> _Described:
    """``describe`` (and what it calls) runs each model's sample forward once."""

    @functools.wraps(describe)
    def described(*args: Any, **kwargs: Any) -> Any:
        with one_sample_run():
            return describe(*args, **kwargs)

    return described  # type: ignore[return-value]


def _is(module: Module, kind: type[Module] | tuple[type[Module], ...]) -> bool:
    """Whether ``module`` computes what a stock ``kind`` computes: a subclass with a
    forward of its own (a Swish on Activation) is drawn as a layer of its own."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return stock_kind(module, STOCK_LAYERS) in kinds


# -- the model as a list of layers ------------------------------------------------------------
@dataclass
class _Layer:
    """One leaf layer with what flows through it, per sample."""

    path: str
    module: Module
    width_in: int | None
    width_out: int | None
    index: int  # l of the Dense layer it is (Dense), or of the last Dense before it (0: none)
    needs_input_grad: bool  # a trainable parameter comes before it (as the planned backward)
    free: bool = False  # in a container of unknown order: what feeds it is not known
    unflat: bool = False  # handed an Embedding's (L, d) per sample, no Flatten between


@dataclass
class _Group:
    """A container (a nested Sequential or a custom module): drawn as a subgraph."""

    path: str
    module: Module
    items: list[_Layer | _Group] = field(default_factory=list)


def _holds_parameters(module: Module) -> bool:
    """A ParameterList or ParameterDict: never called, its weights used by its holder's code."""
    return type(module) in (ParameterList, ParameterDict)


def _used_by_code(model: Module) -> list[str]:
    """Where ``model``'s forward code uses parameters itself (``x @ self.w``, a
    ParameterList's ``x @ self.ws[0]``): no layer's row counts the work done with them
    (``_own_code_products`` does, from a sample batch's graph)."""
    return [name for name, _ in _code_users(model)]


def _code_users(model: Module) -> list[tuple[str, Module]]:
    """``_used_by_code``'s modules, by name."""
    return [
        (name or type(model).__name__, m)
        for name, m in model.named_modules()
        if _holds_parameters(m) or (m._parameters and (_is_container(m) or _own_code(m)))
    ]


def _own_code(module: Module) -> bool:
    """A layer whose forward is one's own code (not a wxb layer's, hooks or not): the
    products it computes with its parameters are not known."""
    return not _is_container(module) and module._own_forward()


def _is_container(module: Module) -> bool:
    return not isinstance(module, STOCK_LAYERS) and bool(module._modules)


def _in_unknown_order(module: Module) -> bool:
    """A container whose own forward runs its two or more layers, or its layer and
    parameters of its own (a module of one's own, a ModuleList): the order is its
    code's, which registration order need not be."""
    return (
        _is_container(module)
        and stock_kind(module, (Sequential,)) is None
        and (len(module._modules) > 1 or bool(module._parameters))
    )


def _check_known_order(model: Module, what: str) -> None:
    """The seed's forward and backward diagrams chain the layers in order, each applied
    once: refused for a model whose order is a forward's of its own (a residual's δ would
    be drawn wrong), or whose forward calls a layer more than once or never (a loop, tied
    weights: the second application, and what runs between, would be left out)."""
    paths = unknown_order(model)
    if paths:
        raise ConfigError(
            f"the {what} diagram chains the layers in order, and "
            f"{', '.join(map(repr, paths))} runs {'its' if len(paths) == 1 else 'their'} own "
            f"forward, whose order wxb cannot see; {_DRAW_THE_GRAPH}"
        )
    reason = call_mismatch(model)
    if reason is not None:
        raise ConfigError(
            f"the {what} diagram chains the layers in order, each applied once, and "
            f"{reason}; {_DRAW_THE_GRAPH}"
        )


_DRAW_THE_GRAPH = (
    "draw the graph one step records instead (graph_diagram(loss); wxb diagram --kind graph)"
)


@_one_sample_run
def unknown_order(model: Module) -> list[str]:
    """The containers of ``model`` whose layers' order of use wxb cannot see (by path):
    none where one forward on a sample batch showed it a plain chain (``_call_chain``)."""
    if _call_chain(model) is not None:
        return []
    return [
        name or type(model).__name__
        for name, m in model.named_modules(remove_duplicate=False)
        if _in_unknown_order(m)
    ]


def _leaves(module: Module) -> Iterator[Module]:
    """The leaf layers under ``module``, as registered, each time it is registered. An
    empty ModuleList or ModuleDict holds none (``ModuleList([])`` of an MLP of one hidden
    layer was a leaf never called: its model was no chain, and ONNX export refused it)."""
    for child in module._modules.values():
        if isinstance(child, (ModuleList, ModuleDict)) and not child._modules:
            continue
        yield from _leaves(child) if _is_container(child) else (child,)


@dataclass
class _Chain:
    """One forward seen as a plain chain (``_call_chain``): its steps in order, by id —
    the leaf layers' calls, and each activation the forward applies itself (``F.relu``),
    as a stand-in layer held by the container whose forward applied it."""

    steps: list[int]
    modules: dict[int, Module]  # every step's layer, stand-ins included
    holders: dict[int, Module]  # a stand-in's container
    called: set[int]  # the containers whose forward ran (not a ModuleList, which holds)


def _call_chain(model: Module) -> _Chain | None:
    """One forward of ``model``, where a forward of its own is seen on a sample batch to
    be a plain chain: the batch into the first layer, each result into the next, through
    nothing but activations the forward applies itself, the last one's the model's
    (``fc2(F.relu(fc1(x)))``, registered in whatever order; one ReLU module called after
    each layer). Each layer is registered once and called at least once, more than once
    only without parameters (tied weights are refused), and the steps within each
    container follow one another (a container is drawn once). None where not, or where
    Sequential's forward alone runs them (their order is the listing)."""
    return _call_chain_why(model)[0]


def _call_chain_why(model: Module) -> tuple[_Chain | None, str | None]:
    """``_call_chain``'s chain, or None and why not (a clause on its forward; None where
    Sequential's forward runs the layers)."""
    if not _calls_layers_itself(model):
        return None, None
    run = _sample_run(model)
    if run is None:
        return None, "did not run on a sample batch of rows"
    if run.steps is None:
        return None, run.why
    registered = list(_leaves(model))
    leaves = {id(m): m for m in registered}
    called = [key for key in run.steps if key not in run.stand_ins]
    if len(leaves) != len(registered) or set(called) != set(leaves):
        # one registered in two places, or one never called
        return None, "does not call each of its layers, each registered once"
    again = Counter(called) - Counter(set(called))
    twice = [key for key in again if leaves[key].parameters()]
    if twice:  # a layer with weights applied twice: the δ chain would draw them twice
        return None, f"calls {run.names.get(twice[0], '?')!r}, which holds weights, twice"
    ran = {key for key, _, _ in run.spans}  # the containers whose forward was called
    chain = _Chain(run.steps, {**leaves, **run.stand_ins}, _holders(model, run), ran)
    for _, container in model.named_modules():
        if id(container) not in ran:
            continue  # a ModuleList: its layers may be called apart, drawn where each is
        inside = {id(m) for m in _leaves(container)} | {
            key for key, holder in chain.holders.items() if _holds(container, holder)
        }
        places = [place for place, key in enumerate(chain.steps) if key in inside]
        if places and places[-1] - places[0] + 1 != len(places):
            # two containers' layers called in turn: no nesting draws that
            return None, "calls the layers of two containers in turn"
    if [id(x.module) for x in _flatten(_walk(model, chain))] != chain.steps:
        # a Sequential inside called otherwise than it lists its layers
        return None, "calls a Sequential's layers otherwise than it lists them"
    return chain, None


@_one_sample_run
def not_a_chain(model: Module) -> str | None:
    """Why one forward of ``model``, a forward of its own, is not the plain chain of its
    layers ``chain_layers`` gives, as a clause ("reads … after 'fc1'"); None where it is
    one, or where Sequential's forward runs them."""
    return _call_chain_why(model)[1]


@_one_sample_run
def sample_width(model: Module) -> int | None:
    """The features a row of the sample batch held where ``model``'s forward ran on rows
    (``_sample_run``); None where it ran on none, or took ids."""
    run = _sample_run(model)
    if run is None or run.ids_per_row is not None or run.given.ndim != 2:
        return None
    return int(run.given.shape[1])


@_one_sample_run
def chain_layers(model: Module) -> list[Module] | None:
    """The layers one forward of ``model`` runs, in order, where a forward of its own is
    seen to be a plain chain (``_call_chain``): its own layers, and for each activation
    it applies itself a layer computing the same (named by its place, ``block.relu()``).
    None where it is not one, or where Sequential's forward runs them."""
    chain = _call_chain(model)
    if chain is None:
        return None
    layers = _flatten(_walk(model, chain))
    for layer in layers:
        if id(layer.module) in chain.holders:
            layer.module.name = layer.path
    return [layer.module for layer in layers]


@_one_sample_run
def chain_step_without_graph(model: Module) -> Module | None:
    """The first layer of ``chain_layers``'s chain whose result, on the sample batch run
    with a graph, records none (a forward running it under no_grad): it gets no gradient
    however it is trained. None where every step records one (or no graph was run)."""
    chain = _call_chain(model)
    run = _sample_run(model)
    if chain is None or run is None or not run.recorded:
        return None
    for key, out in zip(chain.steps, run.outputs, strict=False):
        if isinstance(out, Tensor) and not out.requires_grad:
            return chain.modules[key]
    return None


def _holds(container: Module, module: Module) -> bool:
    return any(m is module for _, m in container.named_modules())


def _holders(model: Module, run: _SampleRun) -> dict[int, Module]:
    """The container whose forward applied each stand-in: the innermost whose call spans
    it (its argument before the stand-in in the chain, its result at or after); the
    model where none does."""
    points = [run.given, *run.outputs]  # what goes into the first step, and each's result

    def place(tensor: object, last: bool) -> int | None:
        found = [k for k, t in enumerate(points) if t is tensor]  # (a step may pass its own)
        return (found[-1] if last else found[0]) if found else None

    depth = {id(m): k for k, (_, m) in enumerate(model.named_modules())}
    spans = []
    for key, arg, result in run.spans:
        start, end = place(arg, last=False), place(result, last=True)
        if start is not None and end is not None:
            spans.append((end - start, -depth.get(key, 0), start, end, key))
    containers = {id(m): m for _, m in model.named_modules()}
    holders: dict[int, Module] = {}
    for k, key in enumerate(run.steps or []):
        if key in run.stand_ins:
            within = sorted(span for span in spans if span[2] < k + 1 <= span[3])
            holders[key] = containers.get(within[0][4], model) if within else model
    return holders


def _keeps_width(module: Module) -> bool:
    """A stock PReLU, RReLU or dropout (element-wise; Dropout1d's channels of rows are its
    rows) or Flatten of rows (it changes nothing): a row's width out is its width in."""
    kinds = (PReLU, Flatten, AlphaDropout, FeatureAlphaDropout, Dropout1d, RReLU)
    return stock_kind(module, kinds) is not None


def glu_text(z: str) -> str:
    """What a GLU over the units computes from ``z``, in the seed's column notation (U and
    V, torch's a and b: A is the seed's activations)."""
    return f"U ⊙ σ(V), U and V the upper and lower halves of {z}'s rows (units)"


def _halves_rows(module: Module) -> bool:
    """A stock GLU over the features of rows: its width out is half its width in."""
    return stock_kind(module, (GLU,)) is not None and module.halves_rows()


def _first_width(model: Module, chain: _Chain | None = None) -> int | None:
    """What the model takes, from the first layer that says, unless a layer whose width
    is not known comes first (one of its own, or a container's of unknown order).
    ``chain`` (``_call_chain``'s) takes the layers in the order the forward calls them."""

    def leaves(node: Module) -> Iterator[Module | None]:
        if not _is_container(node):
            yield node
        elif _in_unknown_order(node):
            yield None
        else:
            for child in node._modules.values():
                yield from leaves(child)

    if chain is not None:
        in_order: Iterator[Module | None] = (chain.modules[key] for key in chain.steps)
    else:
        in_order = leaves(model)
    for leaf in in_order:
        if leaf is None:
            return None
        if stock_kind(leaf, (Embedding,)) is not None:  # (else the data's: seq_len)
            # seq_len first: where the widths after say another L, the Dense's row says
            # that rows of seq_len ids stop the forward there (_misfit)
            return _ids_per_row.get() or _ids_a_row(leaf.embedding_dim, in_order)
        if _is(leaf, (Dense, Standardize)):
            return int(leaf.in_features)
        if not (_is(leaf, (Activation, Dropout)) or _keeps_width(leaf)):
            # its own: what it takes, if it says
            width = getattr(leaf, "in_features", None)
            return None if width is None else int(width)
    return input_width(model)


def _takes_ids(model: Module, chain: _Chain | None = None) -> bool:
    """Whether the model's input is rows of ids: its first layer (as ``_first_width``
    finds it) is an Embedding, or its sample batch fed one ids."""
    if chain is not None:
        first: Module | None = chain.modules[chain.steps[0]] if chain.steps else None
    else:
        first = next(iter(_leaves(model)), None) if not _in_unknown_order(model) else None
    if first is not None and stock_kind(first, (Embedding,)) is not None:
        return True
    run = _sample_run(model) if _calls_layers_itself(model) else None
    return run is not None and run.ids_per_row is not None


def _input_width(model: Module, chain: _Chain | None) -> int | None:
    """``_first_width``, or where a forward of one's own takes ids into an Embedding
    (F.relu(self.emb(ids))), the ids a row of its sample batch: the widths after follow."""
    width = _first_width(model, chain)
    if width is None and _calls_layers_itself(model):
        run = _sample_run(model)
        first = chain.modules[chain.steps[0]] if chain is not None and chain.steps else None
        if run is not None and (first is None or stock_kind(first, (Embedding,)) is not None):
            width = run.ids_per_row
    return width


@_one_sample_run
def input_row(model: Module) -> tuple[int | None, bool]:
    """A row of what ``model`` takes: its width (ids a row: ``sample_ids_per_row``'s, the
    model's widths', a sample's; None where not known) and whether it is ids."""
    chain = _call_chain(model)
    return _input_width(model, chain), _takes_ids(model, chain)


def _input_text(model: Module, chain: _Chain | None, width: int | None) -> str:
    """What a row of X is: n features, or L ids (the sample batch's L marked as a
    default where neither seq_len nor the model's widths say it)."""
    if not _takes_ids(model, chain):
        return f"{_dim(width)} features"
    run = _sample_run(model) if _calls_layers_itself(model) else None
    default = run is not None and not run.ids_stated and _first_width(model, chain) is None
    return f"{_dim(width)} ids" + " (a default: the data's not known)" * (
        default and width is not None
    )


def _ids_a_row(d: int, after: Iterator[Module | None]) -> int | None:
    """An Embedding's ids a row, where a Flatten then a Dense take its rows: the Dense's
    in_features over d (L ids give L·d features); else the data's, not known (None)."""
    flat = False
    for leaf in after:
        if leaf is None:
            return None
        if stock_kind(leaf, (Flatten,)) is Flatten:
            flat = True
        elif _is(leaf, Dense):
            n = int(leaf.in_features)
            return n // d if flat and n % d == 0 else None
        elif not (_is(leaf, (Activation, Dropout)) or _keeps_width(leaf)):
            return None
    return None


def _in_call_order(
    module: Module,
    steps: list[int] | None,
    chain: _Chain | None,
    first: dict[int, int] | None = None,
) -> list[tuple[str, Module, list[int] | None]]:
    """``module``'s children (by name) as registered or, given the steps a forward of
    its own takes (of ``chain``, ``_call_chain``'s), as it takes them: a leaf once
    per call, an activation it applies itself as ``relu()``, a container called once
    with the steps within it (one only holding layers, as a ModuleList, opened up).
    Not a chain, but ``first`` (each leaf's first call on a sample batch) given: as
    first called (``self.fc(self.emb(ids).flatten(1))`` lists emb, then fc)."""
    if stock_kind(module, (Sequential,)) is not None:
        return [(key, child, None) for key, child in module._modules.items()]
    if steps is None or chain is None:
        listed = [(key, child, None) for key, child in module._modules.items()]
        if first is None:
            return listed

        # as a sample batch first called each (a layer, or any layer inside); never: last
        def at(item: tuple[str, Module, None]) -> float:
            inside = _leaves(item[1]) if _is_container(item[1]) else (item[1],)
            return min((first.get(id(m), math.inf) for m in inside), default=math.inf)

        return sorted(listed, key=at)
    units = _units(module, chain)
    owner = {
        id(leaf): (key, child)
        for key, child in units
        for leaf in (_leaves(child) if _is_container(child) else (child,))
    }
    runs: list[tuple[str, Module, list[int] | None]] = []
    for step in steps:
        holder = chain.holders.get(step)
        if holder is module:
            stand_in = chain.modules[step]
            runs.append((f"{_kernel_name(stand_in)}()", stand_in, None))  # type: ignore[arg-type]
            continue
        if holder is not None:  # applied inside one of the containers below
            key, child = next((k, c) for k, c in units if _is_container(c) and _holds(c, holder))
        else:
            key, child = owner[step]
        if runs and runs[-1][1] is child and _is_container(child):
            runs[-1][2].append(step)  # type: ignore[union-attr]
        else:
            runs.append((key, child, [step]))
    return runs


def _units(module: Module, chain: _Chain) -> list[tuple[str, Module]]:
    """``module``'s children as its forward uses them (by path from it): a container its
    forward never called as a whole (a ModuleList, whose layers it calls) opened up."""
    units: list[tuple[str, Module]] = []
    for key, child in module._modules.items():
        if _is_container(child) and id(child) not in chain.called:
            units += [(f"{key}.{path}", unit) for path, unit in _units(child, chain)]
        else:
            units.append((key, child))
    return units


def _structure(model: Module) -> list[_Layer | _Group]:
    """The model's layers in order, nested Sequentials (and containers) as groups. In a
    container of unknown order (``_in_unknown_order``) they are listed as its forward
    calls them where a sample batch showed that a plain chain (``_call_chain``); else as
    registered, no width carried from one to the next."""
    return _walk(model, _call_chain(model))


def _walk(model: Module, chain: _Chain | None) -> list[_Layer | _Group]:
    """``_structure`` with the forward's steps given (``_call_chain``'s) or not."""
    state = {"width": _input_width(model, chain), "dense": 0, "trainable": False, "free": False}
    state["unflat"] = False
    first: dict[int, int] | None = None
    if chain is None and _calls_layers_itself(model):
        run = _sample_run(model)
        if run is not None:
            first = {}
            for k, (key, _, _) in enumerate(run.calls):
                first.setdefault(key, k)
    listings: dict[int, list] = {}  # a layer listed again: its first path, its listings

    def leaf(path: str, module: Module) -> _Layer:
        # registered again (Sequential(d, relu, d): as dense2 and dense2_4): its first
        # path and the use's number, dense2#2, as explain and diagnose name it (a layer a
        # forward of its own calls again keeps its one path: "call 2 of 2" in a summary)
        listed = listings.setdefault(id(module), [path, 0])
        listed[1] += 1
        if listed[1] > 1 and path != listed[0]:
            path = f"{listed[0]}#{listed[1]}"
        width_in = state["width"]
        if runs_dense_forward(module):  # W⁽ˡ⁾·X + b⁽ˡ⁾ runs, hooks or not (as diagnose counts)
            state["dense"] += 1
            # (with hooks, it hands on what they return: a width not known)
            width_out: int | None = module.out_features if _is(module, Dense) else None
        elif _is(module, Standardize):
            width_out = module.in_features
        elif stock_kind(module, (Embedding,)) is not None:  # (L ids a row) → (L, d), flat L·d
            width_out = None if width_in is None else width_in * module.embedding_dim
        elif stock_kind(module, (LazyLinear,)) is not None:  # not called yet: its outputs known
            width_out = module.out_features
        elif _is(module, (Activation, Dropout, *NORMS)) or _keeps_width(module):
            width_out = width_in
        elif _halves_rows(module):  # A ⊙ σ(B), a row's halves
            width_out = None if width_in is None else width_in // 2
        else:  # a custom leaf: what it returns is unknown
            width_out = None
        layer = _Layer(path, module, width_in, width_out, state["dense"], state["trainable"])
        layer.free, state["free"] = state["free"], False
        layer.unflat = state["unflat"]
        keeps = _is(module, (Activation, Dropout, *NORMS)) or _keeps_width(module)
        state["unflat"] = stock_kind(module, (Embedding,)) is not None or (
            state["unflat"] and keeps and stock_kind(module, (Flatten,)) is None
        )
        state["width"] = width_out
        state["trainable"] |= any(p.requires_grad for p in module._parameters.values())
        return layer

    def walk(module: Module, prefix: str, calls: list[int] | None) -> list[_Layer | _Group]:
        items: list[_Layer | _Group] = []
        unordered = _in_unknown_order(module) and calls is None
        for key, child, inner in _in_call_order(module, calls, chain, first):
            path = f"{prefix}.{key}" if prefix else key
            if unordered:  # what feeds this child is its container's code's
                state["width"], state["free"] = None, True
            if _is_container(child):
                items.append(_Group(path, child, walk(child, path, inner)))
                if _in_unknown_order(child) and inner is None:  # what it returns is its code's
                    state["width"], state["free"] = None, True
            else:
                items.append(leaf(path, child))
        return items

    if _is_container(model):
        return walk(model, "", None if chain is None else chain.steps)
    return [leaf(model.name or type(model).__name__.lower(), model)]


def _flatten(items: list[_Layer | _Group]) -> list[_Layer]:
    layers: list[_Layer] = []
    for item in items:
        layers.extend(_flatten(item.items) if isinstance(item, _Group) else [item])
    return layers


# -- summary ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerRow:
    """One layer of a summary; every figure is per sample (multiply by B for a batch)."""

    name: str
    type: str
    output_shape: tuple[int | None, ...] | None  # None: a custom layer whose output wxb cannot know
    parameters: int
    forward_flops: int
    training_flops: int
    activation_bytes: int
    # a layer a forward calls more than once (tied weights) has a row per call: call k of
    # calls, its parameters on call 1's row only (0 after); call 0: a layer never called
    call: int = 1
    calls: int = 1
    code_uses: bool = False  # a ParameterList's: its weights used by the forward's code
    flops_unknown: bool = False  # its FLOPs are its own code's, or its holder's ('?')
    per_batch: bool = False  # FLOPs per batch, not per sample (a product of parameters)
    note: str | None = None  # a line under the totals: why a figure of the row is '?'


@dataclass(frozen=True)
class Summary:
    """What a model holds and what one training step costs, before anything runs.

    ``parameters`` counts each parameter once (a shared one is listed under every
    layer that uses it but counted once here; a layer called twice shows its own on
    its first call's row); ``trainable_parameters`` those of them that require grad, as
    PyTorch's ``sum(p.numel() for p in m.parameters() if p.requires_grad)`` (buffers,
    as BatchNorm's running statistics, are not parameters: in neither count). FLOP and
    byte totals are per sample;
    the ``*_per_batch`` properties multiply by ``batch_size``.
    """

    model_type: str
    rows: list[LayerRow]
    dtype: np.dtype
    batch_size: int
    parameters: int
    parameter_bytes: int
    trainable_parameters: int
    gemm_rate: float | None = None  # FLOP/s of a large GEMM on this machine, if known
    table_stage: list[str] = field(default_factory=list)  # raw columns → inputs, if any
    unknown_order: list[str] = field(default_factory=list)  # containers: see unknown_order()
    calls_counted: bool = True  # False: a forward of its own did not run on a sample batch
    # ∂L/∂X counted where a sample batch's graph showed the layer's input needs it
    input_grads_seen: bool = False
    order_seen: bool = False  # its own forward's order, as a sample batch showed it
    used_by_code: list[str] = field(default_factory=list)  # see _used_by_code

    @property
    def non_trainable_parameters(self) -> int:
        """The parameters frozen (requires_grad False): Keras's and torchinfo's line."""
        return self.parameters - self.trainable_parameters

    @property
    def forward_flops(self) -> int | float:
        return _per_sample(self.forward_flops_per_batch, self.batch_size)

    @property
    def training_flops(self) -> int | float:
        return _per_sample(self.training_flops_per_batch, self.batch_size)

    @property
    def activation_bytes(self) -> int:
        return sum(row.activation_bytes for row in self.rows)

    @property
    def forward_flops_per_batch(self) -> int:
        return sum(r.forward_flops * (1 if r.per_batch else self.batch_size) for r in self.rows)

    @property
    def training_flops_per_batch(self) -> int:
        return sum(r.training_flops * (1 if r.per_batch else self.batch_size) for r in self.rows)

    @property
    def activation_bytes_per_batch(self) -> int:
        return self.activation_bytes * self.batch_size

    @property
    def rate_floor_s(self) -> float | None:
        """Seconds one training step needs at least: its GEMM FLOPs at the machine's GEMM rate."""
        if self.gemm_rate is None:
            return None
        return self.training_flops_per_batch / self.gemm_rate

    def cells(self) -> tuple[list[str], list[list[str]]]:
        """The table's head and rows, as text."""
        head = [
            "Layer (type)",
            "Output shape",
            "Params",
            "Forward FLOPs",
            "Training FLOPs",
            "Activations",
        ]
        body = [
            [
                f"{row.name} ({row.type}){_call_mark(row)}",
                _shape(row.output_shape),
                "(shared)" if row.call > 1 else f"{row.parameters:,}",
                "?" if row.flops_unknown else f"{row.forward_flops:,}{_per(row)}",
                "?" if row.flops_unknown else f"{row.training_flops:,}{_per(row)}",
                _bytes(row.activation_bytes),
            ]
            for row in self.rows
        ]
        return head, body

    def totals(self) -> list[str]:
        """The lines under the table: totals, per sample and per batch, the floor."""
        b = self.batch_size
        lines = [
            f"Total params: {self.parameters:,} "
            f"({_bytes(self.parameter_bytes)}, {self.dtype.name})",
            f"Trainable params: {self.trainable_parameters:,}",
            f"Non-trainable params: {self.non_trainable_parameters:,}",
            f"Per sample: forward {_si(self.forward_flops)}FLOP, "
            f"training {_si(self.training_flops)}FLOP, "
            f"activations {_bytes(self.activation_bytes)}",
            f"Per batch of {b}: forward {_si(self.forward_flops_per_batch)}FLOP, "
            f"training {_si(self.training_flops_per_batch)}FLOP, "
            f"activations {_bytes(self.activation_bytes_per_batch)}",
        ]
        floor = self.rate_floor_s
        if floor is not None and self.gemm_rate is not None:
            lines.append(
                f"Rate floor: {_si(self.training_flops_per_batch)}FLOP / "
                f"{_si(self.gemm_rate)}FLOP/s = {_seconds(floor)} per training step (batch {b})"
            )
        return lines

    def order_lines(self) -> list[str]:
        lines = []
        if self.order_seen:
            lines.append(
                f"{self.model_type}: listed as its forward called them on a sample batch, "
                "one after another"
            )
        if self.unknown_order:
            counted = (
                "(∂L/∂X counted where the graph of a sample batch shows their input needs it)"
                if self.input_grads_seen
                else "and ∂L/∂X counted in that order"
            )
            listed = (
                "in the order a sample batch first called them"
                if self.calls_counted
                else "in registration order"
            )
            lines.append(
                f"{', '.join(self.unknown_order)}: a forward of its own runs these layers in "
                f"the order its code says; they are listed {listed} {counted}, "
                "and widths between them are not known (?)"
            )
        if any(row.name.startswith("own code") for row in self.rows):
            lines.append(
                "own code: the products the forward computes itself, from the graph of a "
                "sample batch: (…, m, n)·(…, n, p) 2mnp, and 2mnp more for each operand "
                "needing a gradient; + b and ∂L/∂b m each"
                + "; (B²): across the batch (z @ zᵀ), for a batch of B"
                * any(row.name.endswith("(B²)") for row in self.rows)
                + "; ?: its cost grows with the batch neither as B nor as B²"
                * any(row.flops_unknown and row.name.startswith("own code") for row in self.rows)
            )
        lines += dict.fromkeys(row.note for row in self.rows if row.note)  # (once a layer)
        on_rows = sum(row.parameters for row in self.rows)
        if on_rows < self.parameters:  # (self.s in x * self.s: no product's row holds it)
            lines.append(
                f"{self.parameters - on_rows} of the {self.parameters} parameters are on no "
                "row: the forward's own code uses them outside a matrix product"
            )
        if self.used_by_code:
            lines.append(
                f"{', '.join(self.used_by_code)}: parameters held for the forward's own code "
                "(x @ w): the work done with them is not counted in the FLOPs (?)"
            )
        if not self.calls_counted:
            lines.append(
                f"{self.model_type}'s forward did not run on a sample batch: each layer is "
                "counted once, however many times the forward calls it"
            )
        return lines

    def text(self) -> str:
        """An aligned table for a terminal, as Keras prints one, with the FLOPs and the floor."""
        head, body = self.cells()
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]

        def line(cells: list[str]) -> str:
            first = cells[0].ljust(widths[0])
            rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
            return "  ".join([first, *rest]).rstrip()

        rule = len(line(head))
        out = [f"Model: {self.model_type}", *self.table_stage, "─" * rule, line(head), "═" * rule]
        out += [line(cells) for cells in body]
        out += ["═" * rule, *self.totals()]
        out.append(
            "FLOPs count W·X, ∂L/∂W and ∂L/∂X (2mn each; no ∂L/∂X where the layer's input "
            "needs no gradient, as the first trainable layer's) and +b, ∂L/∂b (m each); "
            "element-wise work as 0."
        )
        out += self.order_lines()
        return "\n".join(out) + "\n"

    def markdown(self) -> str:
        """The same table in Markdown (GitHub), totals as a list below it."""
        head, body = self.cells()
        stage = [f"- {markdown_text(line.strip())}" for line in self.table_stage]
        out = [
            *stage,
            *([""] if stage else []),
            "| " + " | ".join(head) + " |",
            "|" + "|".join([":---", *["---:"] * (len(head) - 1)]) + "|",
        ]
        out += ["| " + " | ".join(markdown_text(c) for c in cells) + " |" for cells in body]
        out.append("")
        out += [f"- {line}" for line in [*self.totals(), *self.order_lines()]]
        return "\n".join(out) + "\n"

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:  # the table where a notebook or a REPL echoes model.summary()
        return self.text()


def _per_sample(per_batch: int, batch_size: int) -> int | float:
    """Per batch / batch size: whole where it divides (a product of parameters alone
    runs once a batch, shared by its samples)."""
    whole, rest = divmod(per_batch, batch_size)
    return per_batch / batch_size if rest else whole


def _per(row: LayerRow) -> str:
    return " per batch" if row.per_batch else ""


def _call_mark(row: LayerRow) -> str:
    if row.code_uses:
        return ", held for the forward's code"
    if row.call == 0:
        return ", not called"
    return f", call {row.call} of {row.calls}" if row.calls > 1 else ""


_MARKDOWN = {
    **{ord(c): f"\\{c}" for c in "\\`*_[]|#"},
    ord("<"): "&lt;", ord(">"): "&gt;", ord("&"): "&amp;", ord("\n"): " ", ord("\r"): " ",
}  # fmt: skip


def markdown_text(text: str) -> str:
    """Text from the data (a column's name, a category) as Markdown shows it literally:
    no raw HTML, link, emphasis or table cell in it takes effect."""
    return text.translate(_MARKDOWN)


@_one_sample_run
def summary(
    model: Module,
    batch_size: int = 32,
    gemm_rate: float | None = None,
    seq_len: int | None = None,
) -> Summary:
    """Parameters, FLOPs and activation memory of ``model``, per layer and in total.

    Rows: one per layer of a Sequential (nested Sequentials are expanded); for
    another Module, its sub-modules in the order its forward calls them where that is
    seen to be a plain chain of them (``fc2(act(fc1(x)))``; an activation the forward
    applies itself, ``F.relu``, is a row ``relu()``), else in the order that sample batch
    first called them (registration order where it did not run) with widths unknown
    between them. A Module with a forward of
    its own is run once on a sample batch to count its layers' calls (in eval mode, its
    random draws undone: training after a summary draws what it would have without): a
    layer called k times (tied weights, a loop) has k rows, each costing a call, its
    parameters counted once; a layer never called costs nothing.

    FLOPs (per sample; a multiply-add is 2): Dense m×n costs 2mn for W·X plus m
    for +b forward. Training adds ∂L/∂W = δ·Aᵀ (2mn) and ∂L/∂b (m) for the
    parameters that require grad, and ∂L/∂X = Wᵀ·δ (2mn) where a layer before has
    a trainable parameter: below the first trainable layer nothing needs a gradient,
    and wxb's planned backward stops there (a frozen layer is forward only). For a
    forward of one's own, "before" is as it calls them: the graph of the sample batch
    says which layers' inputs need a gradient (``_inputs_needing_grad``). Element-wise work
    (activations, Dropout, Standardize, f′) is counted as 0: it is O(m) beside
    the O(mn) GEMMs, and memory-bound rather than FLOP-bound. A Dense with forward
    hooks costs what a Dense does (its hooks change what it hands on). The products
    code of one's own computes (``x @ self.w.T``, ``F.linear``, ``einsum``, ``bmm``, a
    ParameterList's weights, a layer's own forward) are counted from the graph of the
    sample batch (``_own_code_products``): a row "own code (x @ w1ᵀ + b1)" each, in the
    forward's order, by the same rules (2·m·n·p per matrix product, +b, ∂ for each
    operand that needs a gradient; a product of parameters alone once per batch). Where
    that forward did not run, or ran a product outside its graph (under no_grad), the
    rows holding those parameters show '?' and a line under the totals names them.

    Activation memory (per sample): what a training step keeps for each layer,
    its output row (width × the model's dtype size; the planned stack holds one
    such buffer per layer, Dense's W·X and +b sharing it), plus Dropout's mask of
    the same size when p > 0 (a Flatten of rows, a view, holds none). Gradient
    buffers (δ), the input batch, parameters and optimiser state are not counted; nor
    is the output of a custom layer, whose width wxb cannot know (its shape shows as ?).
    A Dense (or Standardize) handed rows of another width than it takes, where the widths
    before it are known, has a line saying so: the forward stops there, and the figures
    from it on are those of rows that fit it.
    An Embedding's rows are (ids a row, embedding_dim), the ids a row holds the data's
    ('?' and a line saying so); a LazyLinear not called yet has its outputs and '?' FLOPs.
    A forward of one's own taking ids into an Embedding runs on a sample of integer ids
    (within every Embedding's rows), ``seq_len`` of them a row (refused for a model
    taking rows of features), else as many as a Dense
    taking the looked-up rows flat (L·d) says, else ``SAMPLE_IDS`` (8: a line names it);
    the products after the lookup count its B·L rows.

    ``gemm_rate`` (FLOP/s, e.g. from ``measure_gemm_rate(model.dtype)``) adds the
    rate floor: training FLOPs per batch / rate, the least time a step can take.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ConfigError(f"summary batch_size must be a positive integer; got {batch_size!r}")
    if batch_size < 1:
        raise ConfigError(f"summary batch_size must be a positive integer; got {batch_size!r}")
    if gemm_rate is not None and not (math.isfinite(gemm_rate) and gemm_rate > 0):
        raise ConfigError(f"summary gemm_rate must be a positive number (FLOP/s); got {gemm_rate}")
    if seq_len is not None and (
        isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)) or seq_len < 1
    ):
        raise ConfigError(f"summary seq_len must be a positive integer or None; got {seq_len!r}")
    with sample_ids_per_row(None if seq_len is None else int(seq_len)):
        if seq_len is not None and not input_row(model)[1]:  # (it was ignored unsaid)
            _refuse_seq_len_unseen(model, int(seq_len))
            raise ConfigError(
                f"summary seq_len={seq_len}: the model takes rows of features, not ids into "
                "an Embedding; leave seq_len out"
            )
        return _summary(model, int(batch_size), gemm_rate)


def _refuse_seq_len_unseen(model: Module, seq_len: int) -> None:
    """A forward of one's own holding an Embedding whose sample batch did not run: not
    known to take ids (it was refused as "a model of features", which it need not be)."""
    if not _calls_layers_itself(model) or _sample_run(model) is not None:
        return
    lookups = [name for name, m in model.named_modules() if stock_kind(m, (Embedding,)) is not None]
    if lookups:
        raise ConfigError(
            f"summary seq_len={seq_len}: {type(model).__name__} holds an Embedding "
            f"({', '.join(lookups)}), but its forward did not run on a sample batch of "
            f"{seq_len} ids a row (nor of features), so whether it takes ids is not known; "
            f"check that model(ids) runs on rows of {seq_len} ids"
        )


def _summary(model: Module, batch_size: int, gemm_rate: float | None) -> Summary:
    dtype = model.dtype
    layers = _flatten(_structure(model))
    listed, calls = _layer_calls(model, layers)
    needs = _inputs_needing_grad(model)
    run = _sample_run(model) if _calls_layers_itself(model) else None
    ids_line: str | None = None  # the Embedding fed a default number of ids a row
    if run is not None and run.ids_per_row is not None:
        # an Embedding fed the sample's ids: its rows (L, d), L the data's (seq_len), the
        # model's (a Dense taking L·d), or a default named below the table
        fed = {key for key, arg, _ in run.calls if arg is run.given}
        for layer in layers:
            if id(layer.module) in fed and stock_kind(layer.module, (Embedding,)) is not None:
                layer.width_in = layer.width_in or run.ids_per_row
                if not run.ids_stated and ids_line is None:
                    ids_line = layer.path
    rows: list[LayerRow] = []
    places: list[tuple[int, int]] = []  # each row's (layer, call), to place own code's rows
    seen: Counter[int] = Counter()
    for layer in layers:  # the k-th listing of a layer is its k-th call; the last, the rest
        key = id(layer.module)
        seen[key] += 1
        count = (listed if calls is None else calls)[key]
        last = count if seen[key] == listed[key] else min(seen[key], count)
        for k in range(seen[key], last + 1):
            rows.append(_row(layer, dtype.itemsize, k, count, _needs(needs, key, k)))
            places.append((key, k))
        if seen[key] > count:
            rows.append(_row(layer, dtype.itemsize, 0, count))
            places.append((key, 0))
    used_by_code = _used_by_code(model)
    own = (
        _own_code_products(model, int(batch_size))
        if used_by_code or _calls_layers_itself(model)
        else None
    )
    if own is not None:
        # counted: a '?' stays only where some of its parameters ran outside the graph
        uncounted = {id(m): name for name, m in _code_users(model) if not own.saw(m)}
        used_by_code = [name for name, m in _code_users(model) if id(m) in uncounted]
        rows = [
            replace(row, flops_unknown=False) if key not in uncounted else row
            for row, (key, _) in zip(rows, places, strict=True)
        ]
        rows = own.placed(rows, places)
    if ids_line is not None and run is not None:  # the default L, named where it is used
        k = next(k for k, row in enumerate(rows) if row.name == ids_line)
        rows[k] = replace(
            rows[k],
            note=f"{rows[k].note}; the sample batch held {run.ids_per_row} ids a row, a "
            "default (the data's length is not known here): summary(seq_len=L) counts "
            "rows of L ids",
        )
    params = model.parameters()
    return Summary(
        model_type=type(model).__name__,
        rows=rows,
        dtype=dtype,
        batch_size=int(batch_size),
        parameters=int(sum(p.data.size for p in params)),
        parameter_bytes=int(sum(p.data.nbytes for p in params)),
        trainable_parameters=int(sum(p.data.size for p in params if p.requires_grad)),
        gemm_rate=None if gemm_rate is None else float(gemm_rate),
        table_stage=table_stage_lines(model),
        unknown_order=unknown_order(model),
        input_grads_seen=needs is not None,
        calls_counted=calls is not None,
        order_seen=_call_chain(model) is not None,
        used_by_code=used_by_code,
    )


_PRODUCTS = ("matmul", "einsum", "W·X")  # the recorded ops that are matrix products


@dataclass
class _OwnCode:
    """The products a forward's own code computed on a sample batch (``_own_code_products``):
    each a row, with its place in the graph (inputs before), and each layer call's place."""

    rows: list[tuple[int, LayerRow]]
    calls: dict[tuple[int, int], int]  # (layer, call) → place of its result
    seen: set[int]  # the tensors of the graph (a parameter in it was counted)

    def saw(self, module: Module) -> bool:
        """Whether each parameter ``module``'s code uses (its own; a ParameterList's
        all) is in the graph: the products with it were counted."""
        held = module.parameters() if _holds_parameters(module) else module._parameters.values()
        return all(id(p) in self.seen for p in held if p is not None)

    def placed(self, rows: list[LayerRow], places: list[tuple[int, int]]) -> list[LayerRow]:
        """``rows`` (the layers', ``places`` their (layer, call)) with own code's rows
        among them as the forward ran them: each before the first layer whose result
        comes after it (the layers' rows keep their order)."""
        pending = sorted(self.rows, key=lambda item: item[0])
        out: list[LayerRow] = []
        for row, where in zip(rows, places, strict=True):
            at = self.calls.get(where)
            while at is not None and pending and pending[0][0] <= at:
                out.append(pending.pop(0)[1])
            out.append(row)
        return out + [row for _, row in pending]


def _own_code_products(model: Module, batch_size: int) -> _OwnCode | None:
    """The matrix products a sample batch's graph (``_sample_run``) holds that no
    layer's row counts (a stock Dense's W·X is its row's): ``x @ self.w.T``,
    ``F.linear``, ``einsum``, ``bmm``, a custom layer's. A product of (…, m, n) by
    (…, n, p) costs 2·m·n·p per matrix of the stack forward, and as much again for the
    gradient of each operand that needs one (its graph reaches a parameter that requires
    grad, as ``_inputs_needing_grad`` decides: the batch needs none); einsum 2·Π of its
    index sizes per operand pair. A bias added to a product's result (``F.linear``'s +b)
    costs its size, and as much for ∂L/∂b, as Dense's +b. Per sample: divided by the
    sample batch's rows; a product of parameters alone (its graph does not reach the
    batch) runs once per batch, its row per batch. The same forward on a batch of 5
    rows (``_SampleRun.again``) says how each product grows with the batch: as B (per
    sample), or as B² (z @ z.T across the batch: its row per batch of ``batch_size``);
    else its row is '?'. None where no forward ran with a graph."""
    run = _sample_run(model)
    if run is None or not run.recorded:
        return None
    gathered = _products_of(model, run)
    if gathered is None:
        return None
    found, placed = gathered
    again = None if run.again is None else _products_of(model, run.again)
    if again is not None and len(again[0]) != len(found):
        again = None  # another forward on another batch: each product as on the first
    rows = []
    two = run.given.shape[0] if run.given.ndim else 1
    for k, (at, row) in enumerate(found):
        if not row.per_batch:  # per sample, as the other rows
            f, t = row.forward_flops, row.training_flops
            five = None if again is None else run.again.given.shape[0]  # type: ignore[union-attr]
            grown = None if again is None else again[0][k][1].forward_flops
            if grown is None or grown * two == f * five:  # as B: per sample
                row = replace(row, forward_flops=f // two, training_flops=t // two)
            elif grown * two * two == f * five * five:  # as B²: per batch of batch_size
                scale = batch_size * batch_size
                row = replace(
                    row,
                    name=f"{row.name} (B²)",
                    output_shape=None,  # (its dims are the batch's)
                    per_batch=True,
                    forward_flops=f * scale // (two * two),
                    training_flops=t * scale // (two * two),
                )
            else:  # neither: not known
                row = replace(row, forward_flops=0, training_flops=0, flops_unknown=True)
        rows.append((at, row))
    # each call's place is its input's: what its own code computes comes after its row
    calls: dict[tuple[int, int], int] = {}
    made: Counter[int] = Counter()
    for key, arg, out in run.calls:
        made[key] += 1
        if id(out) in placed and id(arg) in placed:
            calls[(key, made[key])] = placed[id(arg)]
    for key, out in zip(run.steps or [], run.outputs, strict=False):
        if key in run.stand_ins and isinstance(out, Tensor) and out.inputs:
            made[key] += 1
            calls[(key, made[key])] = placed.get(id(out.inputs[0]), placed.get(id(out), -1))
    return _OwnCode(rows, calls, set(placed))


def _products_of(
    model: Module, run: _SampleRun
) -> tuple[list[tuple[int, LayerRow]], dict[int, int]] | None:
    """``_own_code_products``'s rows on one run, per batch of its rows, each with its
    place in the graph; and every tensor's place."""
    roots = run.result if isinstance(run.result, (tuple, list)) else (run.result,)
    order: list[Tensor] = []
    placed: dict[int, int] = {}
    for root in roots:
        if isinstance(root, Tensor):
            for t in _inputs_first(root, placed):
                placed[id(t)] = len(order)
                order.append(t)
    if not order:
        return None
    dense_weights = {
        id(m.weight) for _, m in model.named_modules() if runs_dense_forward(m)
    }  # their W·X is the Dense row's
    learns: dict[int, bool] = {}
    batched: dict[int, bool] = {}
    # the batch, and what a layer made of it outside the graph (an Embedding's rows of
    # ids: its graph holds W alone), grow with the batch
    looked_up = {id(run.given)} | {id(out) for _, arg, out in run.calls if arg is run.given}
    for t in order:  # inputs first
        learns[id(t)] = (isinstance(t, Parameter) and t.requires_grad) or any(
            learns.get(id(i), False) for i in t.inputs
        )
        batched[id(t)] = id(t) in looked_up or any(batched.get(id(i), False) for i in t.inputs)
    names = {id(p): name for name, p in model.named_parameters()}
    # a frozen parameter's view (w.T) records no graph of its own: known by its memory
    for t in order:
        if not t.inputs and id(t) not in names:
            for name, p in model.named_parameters():
                if t.data.size == p.data.size and np.may_share_memory(t.data, p.data):
                    # transposed: its last two dims swapped (w.reshape(1, m, n) is not)
                    flipped = min(t.ndim, p.ndim) > 1 and t.data.strides[-2:] != p.data.strides[-2:]
                    names[id(t)] = name + ("ᵀ" if flipped else "")
                    placed.setdefault(id(p), placed[id(t)])
                    break
    rows_of_sample = run.given.shape[0] if run.given.ndim else 1
    # what a forward's own code holds (self.w, no layer's): counted on the first row of
    # a product using it, else no row showed it though the total counted it
    leaves = _leaves(model) if _is_container(model) else (model,)  # (a leaf: its own row)
    in_layers = {id(p) for leaf in leaves for p in leaf.parameters()}
    unlisted = {id(p): p for p in model.parameters() if id(p) not in in_layers}
    for t in order:  # (a frozen parameter's view, named above, stands for it)
        for p in list(unlisted.values()):
            if (
                t is not p
                and id(t) in names
                and not t.inputs
                and np.may_share_memory(t.data, p.data)
            ):
                unlisted[id(t)] = p
    counted: set[int] = set()

    def held_by(*operands: Tensor) -> int:
        """The size of the unlisted parameters among ``operands`` not counted before."""
        size = 0
        for operand in operands:
            while operand.op in ("transpose", "reshape", "permute") and len(operand.inputs) == 1:
                operand = operand.inputs[0]
            p = unlisted.get(id(operand))
            if p is not None and id(p) not in counted:
                counted.add(id(p))
                size += int(p.data.size)
        return size

    found: list[tuple[int, LayerRow]] = []
    products: dict[int, int] = {}  # a counted product's tensor → its row's index in found
    for t in order:
        if t.op == "W·X" and (
            len(t.inputs) < 2 or any(id(i) in dense_weights for i in t.inputs)
        ):  # a Dense's (a Sequential's planned stack records W·X on W alone)
            continue
        if t.op in _PRODUCTS and len(t.inputs) >= 2:
            forward = _product_flops(t)
            training = forward + sum(forward for i in t.inputs if learns[id(i)])
            per_batch = not batched[id(t)]
            shape = tuple(t.shape)
            if not per_batch and shape and shape[0] == rows_of_sample:
                shape = shape[1:]
            row = LayerRow(
                name=f"own code ({_product_text(t, names)})",
                type=str(t.op),
                output_shape=shape,
                parameters=held_by(*t.inputs),
                forward_flops=forward,
                training_flops=training,
                activation_bytes=0,
                per_batch=per_batch,
            )
            products[id(t)] = len(found)
            found.append((placed[id(t)], row))
            continue
        bias = _bias_of(t, products)
        if bias is not None:  # + b on a product's result: Dense's +b and ∂L/∂b
            k, b = bias
            size = int(t.data.size)
            at, row = found[k]
            found[k] = (
                at,
                replace(
                    row,
                    name=row.name[:-1] + f" + {names.get(id(b), 'b')})",
                    parameters=row.parameters + held_by(b),
                    forward_flops=row.forward_flops + size,
                    training_flops=row.training_flops + size * (1 + learns[id(b)]),
                    output_shape=row.output_shape
                    if t.shape == order[at].shape
                    else tuple(t.shape[1:] if not row.per_batch else t.shape),
                ),
            )
            products[id(t)] = k
    return found, placed


def _inputs_first(root: Tensor, seen: dict[int, int]) -> list[Tensor]:
    """The graph ending at ``root`` (less what ``seen`` holds), each tensor after its
    inputs, taken first to last: ``(x @ q) @ (x @ k).T`` lists x @ q first, as the
    forward computed them (``topological_order`` takes them last to first)."""
    order: list[Tensor] = []
    marked = {id(root)} | set(seen)
    if id(root) in seen:
        return order
    stack = [(root, iter(root.inputs))]
    while stack:  # (iteratively: a deep graph is no recursion limit)
        node, parents = stack[-1]
        for parent in parents:
            if id(parent) not in marked:
                marked.add(id(parent))
                stack.append((parent, iter(parent.inputs)))
                break
        else:
            stack.pop()
            order.append(node)
    return order


def _product_flops(t: Tensor) -> int:
    """Forward FLOPs of a recorded product (the whole of its operands, per batch)."""
    if t.op == "einsum":
        sizes: dict[str, int] = {}
        for sub, operand in zip(_einsum_subscripts(t), t.inputs, strict=False):
            sizes.update(zip(sub, operand.shape, strict=False))
        return 2 * (len(t.inputs) - 1) * math.prod(sizes.values())
    # (…, m, n)·(…, n, p) and X·Wᵀ: 2·n per entry of the result
    return 2 * int(t.data.size) * int(t.inputs[0].shape[-1])


def _einsum_subscripts(t: Tensor) -> list[str]:
    return list(getattr(t._backward, "subscripts", ()))


def _bias_of(t: Tensor, products: dict[int, int]) -> tuple[int, Tensor] | None:
    """(the product's row, b) where ``t`` adds a vector b to a counted product's
    result, through reshapes (``F.linear``'s +b): None where not."""
    if t.op not in ("+", "+b") or len(t.inputs) != 2:
        return None
    for a, b in (t.inputs, t.inputs[::-1]):
        source = a
        while source.op == "reshape" and id(source) not in products:
            source = source.inputs[0]
        if id(source) in products and b.ndim == 1 and t.shape == a.shape:
            return products[id(source)], b
    return None


def _product_text(t: Tensor, names: dict[int, str]) -> str:
    """``x @ w1ᵀ``: each operand by its parameter's name (ᵀ: transposed), else x."""

    def name(operand: Tensor) -> str:
        flips = 0  # w.T.T is w
        while operand.op in ("transpose", "reshape", "permute") and len(operand.inputs) == 1:
            flips += operand.op == "transpose"
            operand = operand.inputs[0]
        name = names.get(id(operand), "x")
        if flips % 2 and name.endswith("ᵀ"):  # a frozen parameter's view, itself transposed
            return name[:-1]
        return name + ("ᵀ" if flips % 2 else "")

    symbol = {"matmul": " @ ", "W·X": " @ "}.get(str(t.op))
    shown = [name(i) for i in t.inputs]
    if t.op == "W·X":
        shown[1] += "ᵀ"
    return symbol.join(shown) if symbol else f"einsum({', '.join(shown)})"


def _layer_calls(model: Module, layers: list[_Layer]) -> tuple[Counter[int], Counter[int] | None]:
    """How many times ``layers`` (the model's, flattened) list each leaf layer, and how
    many times one forward calls it (by id): the listing where only Sequential's forward
    runs them; else counted on a sample batch (``_sample_run``), None if none ran."""
    listed = Counter(id(layer.module) for layer in layers)
    if not _calls_layers_itself(model):
        return listed, listed
    run = _sample_run(model)
    return listed, None if run is None else run.counts()


def _inputs_needing_grad(model: Module) -> dict[int, list[tuple[bool, bool, bool]]] | None:
    """For each leaf layer (by id), each call's (whether its input needs ∂L/∂X, whether
    its result is in the graph of the model's result at all, whether its second input
    needs a gradient: a Bilinear's x2; the first's need where it has none), in call
    order, from the
    graph a sample batch recorded: an input needs ∂L/∂X where its graph reaches a
    parameter that requires grad (as PyTorch's autograd decides it; the batch itself
    needs none). A forward of one's own calls its layers in its own order, which
    registration order need not be (``fc2(fc1(x) * 2)`` with fc2 registered first: fc1
    needs no ∂L/∂X, fc2 does); a call under no_grad, or whose result the forward drops,
    gets no backward at all. None where no forward of its own runs them (Sequential's:
    the listing is the order) or no sample batch ran with a graph."""
    if not _calls_layers_itself(model):
        return None
    run = _sample_run(model)
    if run is None or not run.recorded:
        return None
    known: dict[int, bool] = {}

    def needs(tensor: object) -> bool:
        if not isinstance(tensor, Tensor):
            return False
        todo, order = [tensor], []
        while todo:  # (iteratively: a deep graph is no recursion limit)
            t = todo.pop()
            if id(t) in known:
                continue
            known[id(t)] = False
            order.append(t)
            todo += [i for i in t.inputs if id(i) not in known]
        for t in reversed(order):  # inputs first: each decided from its inputs
            known[id(t)] = (isinstance(t, Parameter) and t.requires_grad) or any(
                known.get(id(i), False) for i in t.inputs
            )
        return known[id(tensor)]

    result = run.result
    in_graph = {id(t) for t in topological_order(result)} if isinstance(result, Tensor) else None
    found: dict[int, list[tuple[bool, bool, bool]]] = {}
    seconds = run.seconds or [None] * len(run.calls)
    for (key, arg, out), second in zip(run.calls, seconds, strict=True):
        used = in_graph is None or (id(out) in in_graph and bool(out.inputs))  # type: ignore[union-attr]
        first = used and needs(arg)
        found.setdefault(key, []).append(
            (first, used, used and needs(second) if isinstance(second, Tensor) else first)
        )
    return found


def _needs(
    needs: dict[int, list[tuple[bool, bool, bool]]] | None, key: int, call: int
) -> tuple[bool, bool, bool] | None:
    """The ``call``-th call's entry of ``_inputs_needing_grad`` (None: not known)."""
    if needs is None or not 1 <= call <= len(needs.get(key, ())):
        return None
    return needs[key][call - 1]


def _times(count: int) -> str:
    return {0: "never", 1: "once", 2: "twice"}.get(count, f"{count} times")


@_one_sample_run
def call_mismatch(model: Module) -> str | None:
    """Why one forward of ``model`` is not each listed layer applied once per listing, as
    the forward and backward diagrams draw it: a layer it calls more than once (tied
    weights, a loop over a ModuleList layer, one layer on two branches) or never, or a
    forward of its own that did not run on a sample batch (how often it calls each layer
    is not known). None where it is; the reason, as a clause, where not."""
    layers = _flatten(_structure(model))
    listed = Counter(id(layer.module) for layer in layers)
    if not _calls_layers_itself(model):
        return None  # Sequential's forward: each listed layer, in order
    run = _sample_run(model)
    if run is None:
        return (
            f"{type(model).__name__}'s forward did not run on a sample batch, so how many "
            "times it calls each layer is not known"
        )
    calls = run.counts()
    paths: dict[int, str] = {}
    paths_module = {id(layer.module): layer.module for layer in layers}
    for layer in layers:
        paths.setdefault(id(layer.module), layer.path)
    odd = [
        f"{paths[key]!r} {_times(calls[key])}" + ("" if count == 1 else f" (listed {count} times)")
        for key, count in listed.items()
        if calls[key] != count and not _holds_parameters(paths_module[key])
    ]
    if odd:
        return f"one forward of {type(model).__name__} calls {', '.join(odd)}"
    # each layer once, but with what between them? fc(x) + x would be drawn as fc alone
    if run.steps is not None and run.steps == [id(x.module) for x in layers]:
        return None
    return (
        f"one forward of {type(model).__name__} does more than hand each layer's result to "
        "the next in the order they are listed (an operation of its own before, between or "
        "after them, or another order)"
    )


def _calls_layers_itself(model: Module) -> bool:
    """Whether a forward other than Sequential's calls some of the layers (it may call
    one twice, or not at all)."""
    return any(
        _is_container(m) and stock_kind(m, (Sequential,)) is None for _, m in model.named_modules()
    )


@dataclass
class _SampleRun:
    """One forward of a model on a sample batch: the leaf layers' calls in the order they
    ran, each as (the layer's id, its first argument, its result), the batch given and
    the model's result."""

    calls: list[tuple[int, object, object]]
    given: Tensor  # rows of features, or of ids where an Embedding takes them
    result: object
    # the forward as a chain (``_chained``), where it is one: the calls' layers and the
    # activations it applies itself (stand-in layers, by id), in order
    spans: list[tuple[int, object, object]] = field(default_factory=list)  # containers' calls
    steps: list[int] | None = None
    outputs: list[object] = field(default_factory=list)  # each step's result
    stand_ins: dict[int, Activation] = field(default_factory=dict)
    again: _SampleRun | None = None  # the forward on 5 rows (how its products grow)
    recorded: bool = True  # run with a graph (ids need no gradient: given's says not)
    ids_per_row: int | None = None  # given is ids, this many a row
    ids_stated: bool = False  # that many by summary(seq_len=…) or the model's widths
    seconds: list[object] = field(default_factory=list)  # each call's second argument
    names: dict[int, str] = field(default_factory=dict)  # the layers' paths, by id
    why: str | None = None  # why the forward is no chain (a clause), where it is none
    looked: bool = False  # its code read the batch's array (x.data): it may branch on it
    # its code took a value as Python's (h.item(), as a log may): "(.item()) after 'fc1'"
    took: str | None = None

    def __post_init__(self) -> None:
        self.steps, self.outputs, self.stand_ins, self.why = _chained(
            self.calls, self.given, self.result, self.names
        )

    def no_chain(self, why: str) -> None:
        """The forward is no chain after all, for ``why`` (it says more than the shape)."""
        self.steps, self.outputs, self.stand_ins, self.why = None, [], {}, why

    def counts(self) -> Counter[int]:
        """Calls by layer (by id); the stand-ins' too, where the forward is a chain."""
        if self.steps is not None:
            return Counter(self.steps)
        return Counter(key for key, _, _ in self.calls)


def _chained(
    calls: list[tuple[int, object, object]],
    given: Tensor,
    result: object,
    names: dict[int, str] | None = None,
) -> tuple[list[int] | None, list[object], dict[int, Activation], str | None]:
    """The layers' calls and the activations between them, where the forward is nothing
    else: the batch goes to the first layer, each result to the next, and the last
    one's is the model's, each through nothing or through activations the forward
    applies itself (``F.relu``: seen in the graph the sample recorded, a stand-in layer
    each), each step's result, and None; (None, [], {}, why) where it is not a chain."""
    if not calls:
        return None, [], {}, "calls none of its layers"
    steps: list[int] = []
    outputs: list[object] = []
    stand_ins: dict[int, Activation] = {}
    sources = [given, *(out for _, _, out in calls)]
    targets = [*(arg for _, arg, _ in calls), result]
    named = (names or {}).get
    # what a step may hand on instead of the one before's result: the batch, or an earlier
    # layer's result (fc(x) + fc2(x) hands the batch on, which is no tensor cut from the graph)
    earlier: dict[int, str] = {id(given): "the batch it was given"}
    for place, (source, target) in enumerate(zip(sources, targets, strict=True)):
        applied = _activations_between(source, target)
        if applied is None:
            after = (
                f"after {named(calls[place - 1][0], '?')!r}" if place else "before its first layer"
            )
            into = (
                f"into {named(calls[place][0], '?')!r}" if place < len(calls) else "as its result"
            )
            return None, [], {}, f"hands {_what_came(source, target, earlier)} {into} {after}"
        if place:  # the step before's result: a later step handing it on skips a layer
            earlier.setdefault(id(source), f"the result of {named(calls[place - 1][0], '?')!r}")
        for layer, out in applied:
            stand_ins[id(layer)] = layer
            steps.append(id(layer))
            outputs.append(out)
        if place < len(calls):
            steps.append(calls[place][0])
            outputs.append(calls[place][2])
    return steps, outputs, stand_ins, None


def _what_came(source: object, target: object, earlier: dict[int, str]) -> str:
    """What a forward handed on where a chain would hand ``source`` (through activations):
    ``earlier``'s words for the batch or an earlier step's result (by id), the first
    operation of its own between them, as recorded, or what ``target`` is."""
    while isinstance(target, Tensor) and target is not source and target.op in ACTIVATIONS:
        if id(target) in earlier:
            break
        if len(target.inputs) != 1 or getattr(target._backward, "kernel", None) is None:
            break
        target = target.inputs[0]
    if id(target) in earlier:
        return earlier[id(target)]
    if not isinstance(target, Tensor):
        return f"a {type(target).__name__}, not a tensor,"
    if target.op is None:
        return "a tensor cut from the graph (h.detach(), a new one: wxb.tensor(h))"
    if not target.inputs:  # recorded without its input: the graph was cut before it
        return f"the result of {target.op} on a tensor cut from the graph (h.detach(), no_grad)"
    return f"the result of an operation of its own ({target.op})"


def _activations_between(source: object, target: object) -> list[tuple[Activation, Tensor]] | None:
    """The activations (stand-in layers, first first, each with its result) whose ops
    lead from ``source`` to ``target``, each on one tensor: none where ``target`` is
    ``source``; None where anything else comes between (or nothing was recorded)."""
    applied = []
    while target is not source:
        if not isinstance(target, Tensor) or target.op not in ACTIVATIONS:  # by kernel name
            return None
        kernel = getattr(target._backward, "kernel", None)  # ops.activation's, exactly
        if len(target.inputs) != 1 or kernel is None:
            return None
        # its slope or approximation too: it computes what ran
        applied.append((activation_stand_in(str(target.op), kernel), target))
        target = target.inputs[0]
    return applied[::-1]


def _sample_run(model: Module) -> _SampleRun | None:
    """``_run_sample``'s, once per description (``_one_sample_run``) and ids a row."""
    runs = _sample_runs.get()
    if runs is None:
        return _run_sample(model)
    key = (id(model), _ids_per_row.get())
    if key not in runs:
        runs[key] = (model, _run_sample(model))
    return runs[key][1]


def _run_sample(model: Module) -> _SampleRun | None:
    """One forward of ``model`` on a sample batch of the first width that runs, its leaf
    layers' calls recorded (by the model's own layers' ids); None if none does (a forward
    taking something else, or a model that cannot be copied).

    It runs on a twin: a copy of the model sharing its parameters (nothing is computed
    into them), whose leaves' forwards are wrapped to record their calls (a Sequential
    inside then goes layer by layer) and whose generators are copies. So the model itself
    is never touched: another thread training, predicting or summarising it meanwhile
    draws and runs as it would without this run. The twin runs in eval mode, recording
    its graph (to see the activations a forward applies itself; without one where the
    forward refuses that), drawing from a scratch default generator; NumPy's global
    state is put back."""
    try:
        twin = copy.deepcopy(model, {id(p): p for p in model.parameters()})
    except Exception:  # a module holding what cannot be copied (a lock, a file)
        return None
    # each module once, a shared one too: wrapped twice, its calls would count twice
    paths = [path for path, _ in model.named_modules()]
    everything = [m for _, m in model.named_modules()]
    copies = [m for _, m in twin.named_modules()]
    if len(everything) != len(copies):
        return None
    originals = [m for m in everything if not _is_container(m)]
    calls: list[tuple[int, object, object]] = []
    spans: list[tuple[int, object, object]] = []
    seconds: list[object] = []  # each call's second argument (a Bilinear's x2), or None
    lookups = {id(m) for m in originals if stock_kind(m, (Embedding,)) is not None}
    # the batch and each layer's result as made: the chain passes them on by identity, so
    # one changed in place before it is passed on (h += 1, h.relu_(), h.data *= 2) would
    # drop that change from the chain
    made: list[tuple[Tensor, int, np.ndarray]] = []

    def keep(t: object) -> None:
        if isinstance(t, Tensor):
            made.append((t, t._version, np.array(t.data, copy=True)))

    def counting(
        key: int, forward: Callable[..., Any], into: list[tuple[int, object, object]]
    ) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            result = forward(*args, **kwargs)
            if key in lookups and isinstance(result, Tensor) and is_grad_enabled():
                # a frozen Embedding's rows record no graph: what the forward makes of
                # them would be cut off from the batch (its products counted per batch)
                result.requires_grad_(True)
            into.append((key, args[0] if args else None, result))  # (inner calls first)
            if into is calls:
                keep(result)
                seconds.append(args[1] if len(args) > 1 else kwargs.get("x2"))
            return result

        return counted

    layers = dict(zip([id(m) for m in everything], copies, strict=True))
    names = {id(m): path or type(model).__name__ for path, m in model.named_modules()}
    for original, twin_module in zip(everything, copies, strict=True):
        into = spans if _is_container(original) else calls
        twin_module.forward = counting(id(original), twin_module.forward, into)

    def run(rows: np.ndarray, recorded: bool, ids: int | None = None) -> _SampleRun | None:
        # one weight version: a step in another thread (fit beside a summary) waits, or
        # its writes read as the forward's own and were undone (_state_changed)
        with WEIGHTS.reading(model):
            return run_once(rows, recorded, ids)

    def run_once(rows: np.ndarray, recorded: bool, ids: int | None) -> _SampleRun | None:
        # ids (whole numbers in the model's dtype, as fit hands them on) need no gradient
        wrote = False
        # what the twin holds: a forward changing it (self.count += 1, a buffer or a
        # weight set) is no chain, each call computing with another state
        held = _held_state(list(zip(paths, copies, strict=True)))
        for writable in (False, True):
            calls.clear()
            spans.clear()
            made.clear()
            seconds.clear()
            x = Tensor(rows.astype(model.dtype), requires_grad=recorded and ids is None)
            keep(x)
            # a write into the batch raises, whatever its values (a cap no row reaches)
            x.data.flags.writeable = writable
            try:
                with twin.evaluating(), set_grad_enabled(recorded), _draws_undone():
                    with np.errstate(all="ignore"), values_watched(calls.__len__) as watched:
                        watch_values(x)
                        result = twin(x)
                break
            except Exception as e:  # not this width, or not one array, or not with a graph
                if writable or "read-only" not in str(e):
                    _state_changed(held)  # (a parameter it wrote into gets its values back)
                    return None
                wrote = True
            finally:
                x.data.flags.writeable = True
        found = _SampleRun(
            list(calls),
            x,
            result,
            list(spans),
            recorded=recorded,
            ids_per_row=ids,
            seconds=list(seconds),
            names=names,
            looked=watched.looked,
        )
        changed = [
            k
            for k, (t, version, data) in enumerate(made)
            if t._version != version or not np.array_equal(t.data, data, equal_nan=True)
        ]
        state = _state_changed(held)
        if state is not None:
            found.no_chain(f"changes {state} (its state) as it runs")
        elif wrote or (changed and changed[0] == 0):
            found.no_chain("writes into the batch it is given (x.data, x += …, x.clamp_(…))")
        elif changed:
            layer = names.get(calls[changed[0] - 1][0], "?")
            found.no_chain(f"changes the result of {layer!r} in place (h += …, h.data[…] = …)")
        elif watched.first is not None:
            # a result's array read (h.data) left the graph: what it did with it
            # (np.minimum(h.data, 50, out=h.data)) no chain follows. A value taken as
            # Python's (h.item(), h.tolist()) changes nothing: a forward logging it is a
            # chain, tried as one reading x.data on rows as wide as the dtype goes (an if
            # on it shows there); with ids, on no wider rows: none. (One that is no chain
            # anyway, h * (t / h.max().item()), is said to take them, their likely use.)
            how, done = watched.arrayed or watched.first
            where = (
                f"after {names.get(calls[done - 1][0], '?')!r}"
                if done
                else "before its first layer"
            )
            took = f"takes the values of a result ({how}) {where}"
            if watched.arrayed is not None or ids is not None or found.steps is None:
                found.no_chain(f"{took}: what it computes may turn on them")
            else:
                found.looked, found.took = True, took
        return found

    def chain(sample: _SampleRun | None) -> list[object] | None:
        """The steps, a stand-in by its kernel's kind and settings (f, slope and all)."""
        if sample is None or sample.steps is None:
            return None
        kernels = {k: layer.kernel for k, layer in sample.stand_ins.items()}
        return [
            (type(kernels[k]), sorted(vars(kernels[k]).items())) if k in kernels else k
            for k in sample.steps
        ]

    def holds(found: _SampleRun, seen: list[object], width: int) -> bool:
        """Whether the chain computes what the forward does on rows of wide scale."""
        scales = [1e3, 3e2, 1e2, 30.0, 10.0, 1.0, 1e-3]
        if found.looked:  # a branch on x.data or h.item(): as far as the dtype's products go
            scales += [1e6, 1e9] + ([1e12, 1e15] if np.dtype(model.dtype) == np.float64 else [])
        rows = np.array(scales)[:, None] * np.random.default_rng(1).standard_normal(
            (len(scales), width)
        )
        wide = np.concatenate([rows, -rows])  # each unit's both signs (a cap after a ReLU)
        again = run(wide, found.recorded)
        if again is None or chain(again) != seen:
            return False
        h: object = again.given
        try:
            with twin.evaluating(), set_grad_enabled(False), _draws_undone():
                with np.errstate(all="ignore"):
                    for k in found.steps or []:
                        h = (found.stand_ins.get(k) or layers[k])(h)
        except Exception:
            return False
        if not isinstance(h, Tensor) or not isinstance(again.result, Tensor):
            return h is again.result
        ours, theirs = h.data, again.result.data
        if ours.shape != theirs.shape:
            return False
        # the same layers on the same rows: apart only by rounding (an activation's
        # stand-in may round otherwise), relative to the result's scale
        eps = float(np.finfo(theirs.dtype).eps)
        scale = float(np.max(np.abs(theirs), initial=0.0, where=np.isfinite(theirs)))
        return bool(np.allclose(ours, theirs, rtol=64 * eps, atol=64 * eps * scale, equal_nan=True))

    draw = np.random.default_rng(0)
    # (the sample of n rows, ids a row or None for features, whether that many is known)
    tries: list[tuple[Callable[[int], np.ndarray], int | None, bool]] = []
    embeddings = [m for m in originals if id(m) in lookups]
    for original, twin_module in zip(everything, copies, strict=True):
        if id(original) in lookups:
            twin_module.max_norm = None  # (its renorm writes into the shared W; no FLOPs)
    if embeddings:  # ids first, within every Embedding's rows: float rows it refuses
        vocab = min(int(m.num_embeddings) for m in embeddings)
        given = _ids_per_row.get()
        # a Dense taking L looked-up rows, flat (L·d), pins L; else the default runs
        pinned = [
            int(m.in_features) // int(e.embedding_dim)
            for m in originals
            if getattr(m, "in_features", None)
            for e in embeddings
            if int(m.in_features) % int(e.embedding_dim) == 0
        ]
        lengths = [given] if given else [SAMPLE_IDS, *pinned]
        for length in dict.fromkeys(n for n in lengths if n):
            tries.append(
                (
                    functools.partial(_ids_sample, draw, vocab, length),
                    length,
                    bool(given) or length in pinned,
                )
            )
    widths = [_first_width(model), *(getattr(m, "in_features", None) for m in originals)]
    # then a parameter's dims: a forward of one's own (x @ self.w.T) says no in_features
    widths += [int(d) for p in model.parameters() for d in reversed(p.shape)]
    sample = draw.standard_normal((2, max(filter(None, widths), default=1)))
    others = [1.0 + 3.0 * draw.standard_normal((rows, sample.shape[1])) for rows in (1, 5)]
    for width in dict.fromkeys(w for w in widths if w):
        rows = {2: sample[:, :width], 1: others[0][:, :width], 5: others[1][:, :width]}
        tries.append((rows.__getitem__, None, False))
    for make, ids, stated in tries:
        batches = {n: make(n) for n in (2, 1, 5)}
        for recorded in (True, False):
            found = run(batches[2], recorded, ids)
            if found is None:
                continue
            found.ids_stated = stated
            seen = chain(found)
            # a chain on this batch only (a branch on the values or the batch size) is none
            took = f"{found.took} and " if found.took else ""
            if seen is not None and any(chain(run(batches[n], True, ids)) != seen for n in (1, 5)):
                found.no_chain(f"{took}runs another chain on a batch of 1 or 5 rows")
            # a change the sample's values never trigger (a cap at 50 on rows of scale 3,
            # made through .data) shows on rows of scale 1e3 and 1e-3
            if seen is not None and ids is None and not holds(found, seen, batches[2].shape[1]):
                read = "reads the batch's values (x.data) and " if found.looked else ""
                found.no_chain(
                    (took or read)
                    + "computes other than the chain of its layers on rows of scale 1e-3 to "
                    + (("1e15" if model.dtype == np.float64 else "1e9") if found.looked else "1e3")
                )
            if recorded:  # how its own code's products grow with the batch
                found.again = run(batches[5], True, ids)
            return found
    return None


def _ids_sample(draw: np.random.Generator, vocab: int, length: int, rows: int) -> np.ndarray:
    return draw.integers(0, vocab, (rows, length))


@dataclass
class _Held:
    """What the modules of a traced twin hold before its forward: each attribute's
    value (by identity), and a copy of each array's values (buffers, and the
    parameters the twin shares with the model)."""

    attributes: list[tuple[str, Module, dict[str, object]]]
    arrays: list[tuple[str, np.ndarray, np.ndarray]]  # where, the array, its values


def _held_state(modules: list[tuple[str, Module]]) -> _Held:
    attributes, arrays, seen = [], [], set()
    for path, module in modules:
        kept = {k: v for k, v in vars(module).items() if not k.endswith("_cache")}
        attributes.append((path, module, kept))
        for key, value in kept.items():
            array = value.data if isinstance(value, Tensor) else value
            if isinstance(array, np.ndarray) and id(array) not in seen:
                seen.add(id(array))
                arrays.append((f"{path}.{key}" if path else key, array, array.copy()))
    return _Held(attributes, arrays)


def _state_changed(held: _Held) -> str | None:
    """What a forward changed of what ``held`` records (the first: 'fc.weight's values',
    'attribute 'count'' and where), None where nothing; values it wrote into arrays are
    put back (a parameter is the model's own: the export does not change the model)."""
    changed = None
    for where, array, values in held.arrays:
        if not np.array_equal(array, values, equal_nan=True):
            changed = changed or f"the values of '{where}'"
            np.copyto(array, values)
    if changed is not None:
        return changed
    for path, module, kept in held.attributes:
        now = {k: v for k, v in vars(module).items() if not k.endswith("_cache")}
        for key in sorted({*kept, *now}, key=lambda k: (k.startswith("_"), k)):  # public first
            if key in kept and key in now and now[key] is kept[key]:
                continue
            stored = now.get(key)
            if isinstance(stored, Tensor) and stored._backward is not None:
                continue  # a result kept to look at, self.features = h (in its graph)
            owner = f"module '{path}'" if path else "the model itself"
            return f"attribute '{key}' of {owner}"
    return None


@contextmanager
def _draws_undone(seed: int = 0) -> Iterator[None]:
    """wxb's default generator is a scratch one in this thread inside the block (as
    ``drawing_from``: other threads draw from theirs as usual), seeded with ``seed``, and
    NumPy's global one gets its state back however the block ends: a forward that draws
    in eval mode (F.dropout as MC dropout, noise) leaves the shuffles, masks and noise of
    training after a summary as they would be without one. A seed other than 0 seeds
    NumPy's global one too inside the block (ONNX export's traces, each its own: a draw
    then shows as a value the two graphs differ in). (A thread drawing from NumPy's global
    generator during the block has those draws undone: NumPy's global functions cannot
    draw from a copy in one thread only.)"""
    legacy = np.random.get_state()
    try:
        if seed:
            np.random.seed(seed)
        with drawing_from(np.random.default_rng(seed)):
            yield
    finally:
        np.random.set_state(legacy)


MAX_STAGE_LINES = 12  # a wide table's stage folds: the first columns, then a count


def table_stage_lines(model: Module) -> list[str]:
    """What the model's table stage (saved in its info) does to each raw column."""
    stage = getattr(model, "info", {}).get("table")
    if stage is None:
        return []
    encoder = TableEncoder.from_json(stage)
    if encoder.is_plain:
        return []
    lines = encoder.describe()
    head = (
        f"Table stage (before the network): {len(encoder.columns)} columns → "
        f"{len(encoder.outputs)} inputs"
    )
    shown = [f"  {line}" for line in lines[:MAX_STAGE_LINES]]
    if len(lines) > MAX_STAGE_LINES:
        shown.append(f"  … and {len(lines) - MAX_STAGE_LINES} more columns")
    return [head, *shown]


def runs_dense_forward(module: Module) -> bool:
    """Whether Dense's forward runs in ``module``'s calls: a stock Dense, or one with
    forward hooks (they change what it hands on, not its W·X; drawn as a layer of its own).
    Dense's own forward, not one assigned to the class since (Dense.forward = …), as
    stock_kind reads it."""
    cls = type(module)
    return (
        isinstance(module, Dense)
        and cls.forward is _DEFINED_FORWARD.get(Dense)
        and cls.__call__ is _MODULE_CALL
        and "forward" not in vars(module)
        and "__call__" not in vars(module)
    )


def _learns(array: object) -> bool:
    """Whether a Dense's W or b gets ∂L/∂W: a Parameter with requires_grad (a buffer put in
    its place, PyTorch's register_buffer('bias', b), is a constant: no gradient, as
    PyTorch's parameters() leaves it out)."""
    return isinstance(array, Parameter) and array.requires_grad


def _misfit(layer: _Layer) -> bool:
    """Whether a Dense or Standardize is handed rows of another width than it takes, the
    widths before it known: the forward stops there (ShapeError, DataError)."""
    handed = layer.width_in
    if layer.free or not _is(layer.module, (Dense, Standardize)):
        return False
    if layer.unflat:  # (B, L, d): a Dense takes rows, (B, n)
        return True
    return handed is not None and handed != int(layer.module.in_features)


def _row(
    layer: _Layer,
    itemsize: int,
    call: int = 1,
    calls: int = 1,
    needs: tuple[bool, bool, bool] | None = None,
) -> LayerRow:
    """Layer's row for its ``call``-th call (0: never called, costing nothing). ``needs``:
    whether that call's input needs ∂L/∂X, whether it has a backward at all, and whether
    its second input needs a gradient (a Bilinear's x2), as a sample batch's graph
    showed them (``_inputs_needing_grad``); None: by the order listed (x2 as x1)."""
    module = layer.module
    forward = training = 0
    # a later call runs after the layer's own trainable parameters (∂L/∂X counted by order)
    needs_input_grad = layer.needs_input_grad or (
        call > 1 and any(p.requires_grad for p in module.parameters())
    )
    backward = True
    needs_second = needs_input_grad
    if needs is not None:
        needs_input_grad, backward, needs_second = needs
    if runs_dense_forward(module) and call:
        m, n = module.out_features, module.in_features
        bias = m if module.bias is not None else 0
        forward = 2 * m * n + bias
        training = forward
        if _learns(module.weight) and backward:
            training += 2 * m * n  # ∂L/∂W = δ·Aᵀ
        if bias and _learns(module.bias) and backward:
            training += bias  # ∂L/∂b = Σ δ
        if needs_input_grad:
            training += 2 * m * n  # ∂L/∂X = Wᵀ·δ
    width = layer.width_out
    if stock_kind(module, (Bilinear,)) is not None and call:
        # yₒ = x1ᵀ·Wₒ·x2 + bₒ: U = x1ᵀ·Wₒ (2·i1·i2 each o), then U·x2 (2·i2). Backward as
        # ops.bilinear computes it, each for what needs it: ∂L/∂W = Σ g·x1·x2ᵀ (2·o·i1·i2),
        # ∂L/∂x1 = Σₒ gₒ·(Wₒ·x2) (2·o·i1·(i2 + 1)), ∂L/∂x2 = Σₒ gₒ·Uₒ (2·o·i2)
        o, i1, i2 = module.weight.shape
        bias = o if module.bias is not None else 0
        forward = 2 * o * i2 * (i1 + 1) + bias
        training = forward
        if _learns(module.weight) and backward:
            training += 2 * o * i1 * i2
        if bias and _learns(module.bias) and backward:
            training += bias
        if needs_input_grad:
            training += 2 * o * i1 * (i2 + 1)
        if needs_second:
            training += 2 * o * i2
        width = o
    shape: tuple[int | None, ...] | None = None if width is None else (width,)
    note = None
    if stock_kind(module, (Embedding,)) is not None:
        # a row of ids in, a row of W per id out: a gather (and ∂L/∂W a scatter-add into
        # W's rows), element-wise work, 0 FLOPs as the others; its width is the ids'
        ids, d = layer.width_in, module.embedding_dim
        shape, width = (ids, d), None if ids is None else ids * d
        note = (
            f"{layer.path}: Embedding looks up a row of W ({d} wide) per id, 0 FLOPs as "
            "element-wise work (its ∂L/∂W adds δ's rows into W's)"
            + "; how many ids a row holds is the data's, so its shape, activations and "
            "the widths after it are not known (?)" * (ids is None)
        )
    unknown = False
    if stock_kind(module, (LazyLinear,)) is not None:  # ("?": its W is made at the first call)
        unknown = True
        note = (
            f"{layer.path}: LazyLinear infers in_features at its first call (model(X[:1])): "
            "its parameters and FLOPs are not known before (?)"
        )
    unflat = stock_kind(module, (Unflatten,)) is not None and layer.width_in is not None
    if unflat:  # rows in, each row's own shape out (a view: nothing kept)
        shape = module.shape_of_rows(layer.width_in)
    kept = 0
    if width is not None and call:
        kept = width * itemsize
        random = (AlphaDropout, FeatureAlphaDropout, Dropout1d)
        dropping = _is(module, Dropout) or stock_kind(module, random) is not None
        if dropping and module.p > 0:
            kept *= 2  # the output and the mask
        elif stock_kind(module, (RReLU,)) is not None:
            kept *= 2  # the output and the slopes
        elif stock_kind(module, (Flatten,)) is Flatten:
            kept = 0  # a view of its input
    if note is None and _misfit(layer) and layer.unflat:
        note = (
            f"{layer.path}: takes rows of {module.in_features} features but is handed an "
            "Embedding's (L, d) per sample, not flattened: the forward stops there with an "
            "error (a Flatten() before it makes rows of L·d)"
        )
    elif note is None and _misfit(layer):  # (its rows as if it ran)
        note = (
            f"{layer.path}: takes rows of {module.in_features} features but is handed "
            f"{layer.width_in}: the forward stops there with an error; the figures from it "
            "on are those of rows that fit it"
        )
    return LayerRow(
        name=layer.path,
        type=type(module).__name__,
        output_shape=shape,
        parameters=0 if call > 1 else int(sum(p.data.size for p in module.parameters())),
        forward_flops=forward,
        training_flops=training,
        activation_bytes=kept,
        call=call,
        calls=calls,
        code_uses=_holds_parameters(module),
        flops_unknown=unknown
        or _holds_parameters(module)
        or bool(call and module._parameters and _own_code(module)),
        note=note,
    )


def measure_gemm_rate(dtype: object = None, size: int = 1024, repeats: int = 5) -> float:
    """FLOP/s of one size×size product with NumPy's BLAS (median of ``repeats`` runs).

    A large square GEMM runs near the machine's peak, so training FLOPs divided
    by this rate is a floor no implementation of the step beats.
    """
    dt = resolve_dtype(dtype)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dt)
    b = rng.standard_normal((size, size)).astype(dt)
    out = np.empty((size, size), dtype=dt)
    np.matmul(a, b, out=out)  # warm-up: BLAS threads started, pages touched
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - start)
    return 2.0 * size**3 / max(statistics.median(times), 1e-9)


def _shape(shape: tuple[int | None, ...] | None) -> str:
    if shape is None:
        return "?"
    dims = ("?" if d is None else str(d) for d in shape)  # (Embedding's ids a row: the data's)
    return "(" + ", ".join(dims) + ("," if len(shape) == 1 else "") + ")"


def _si(value: float) -> str:
    """1234567 → '1.23 M' (followed by the unit). Rounded before the prefix is chosen:
    999,651 is '1 M', not '1e+03 k'."""
    value = float(f"{value:.3g}")
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}"
    return f"{value:.3g} "


def percent(fraction: float, decimals: int = 1) -> str:
    """A share as a percentage that never rounds to 0% or 100% when it is not: 2559 of
    2560 is '>99.9%', not '100.0%'."""
    step = 10.0**-decimals
    shown = round(fraction * 100, decimals)
    if 0 < fraction < 1 and shown >= 100:
        return f">{100 - step:.{decimals}f}%"
    if 0 < fraction < 1 and shown <= 0:
        return f"<{step:.{decimals}f}%"
    return f"{fraction * 100:.{decimals}f}%"


def _bytes(count: int) -> str:
    for factor, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        # the unit below would show 1024.0 or more: 1,048,560 B is '1.0 MiB', not '1024.0 KiB'
        if round(count * 1024 / factor, 1) >= 1024:
            return f"{count / factor:.1f} {unit}"
    return f"{count} B"


def _seconds(seconds: float) -> str:
    seconds = float(f"{seconds:.3g}")  # 0.9996 ms is '1 ms', not '1e+03 µs'
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


# -- Mermaid ----------------------------------------------------------------------------------
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _sup(index: int | str) -> str:
    """3 → ⁽³⁾, the seed's layer index."""
    return "⁽" + str(index).translate(_SUPERSCRIPT) + "⁾"


def _escape(text: str) -> str:
    """Text safe inside a quoted Mermaid label: no quote, and no HTML from user names."""
    return (
        text.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
        .replace("`", "#96;")  # "` opens a Markdown string in Mermaid
        .replace("&", "#38;")  # &amp; would show as &
        .replace("$", "$\u200b")  # $$…$$ is KaTeX in Mermaid, entities or not ($$$ too)
    )  # fmt: skip


class _Flowchart:
    """Mermaid flowchart text: nodes are declared first (inside their subgraphs), edges after,
    so an edge never moves a node into another subgraph."""

    SHAPES: ClassVar[dict[str, tuple[str, str]]] = {
        "box": ('["', '"]'),
        "stadium": ('(["', '"])'),
        "decision": ('{"', '"}'),
    }

    def __init__(self, direction: str) -> None:
        self.nodes = [f"flowchart {direction}"]
        self.edges: list[str] = []
        self.depth = 1

    def node(self, node_id: str, *lines: str, shape: str = "box") -> str:
        start, stop = self.SHAPES[shape]
        label = "<br>".join(_escape(line) for line in lines)
        self.nodes.append("    " * self.depth + f"{node_id}{start}{label}{stop}")
        return node_id

    def edge(self, source: str, target: str, label: str | None = None) -> None:
        arrow = "-->" if label is None else f'-->|"{_escape(label)}"|'
        self.edges.append(f"    {source} {arrow} {target}")

    def chain(self, ids: list[str]) -> None:
        for source, target in itertools.pairwise(ids):
            self.edge(source, target)

    @contextmanager
    def subgraph(self, group_id: str, label: str) -> Iterator[None]:
        self.nodes.append("    " * self.depth + f'subgraph {group_id}["{_escape(label)}"]')
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
            self.nodes.append("    " * self.depth + "end")

    def text(self) -> str:
        return "\n".join(self.nodes + self.edges) + "\n"


def _dim(value: int | None) -> str:
    return "?" if value is None else str(value)


def _columns(batch_size: int | None) -> str:
    if batch_size is None:
        return "B"
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ConfigError(f"batch_size must be a positive integer or None; got {batch_size!r}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer or None; got {batch_size!r}")
    return str(int(batch_size))


def _kernel_name(module: Activation) -> str:
    return str(getattr(module.kernel, "name", type(module).__name__.lower()))


@_one_sample_run
def architecture_diagram(model: Module) -> str:
    """The layers left to right, with W⁽ˡ⁾'s m×n, b⁽ˡ⁾, activations and widths on the edges;
    nested Sequentials (and other containers) are subgraphs. A layer a forward of one's
    own calls more than once per listing (tied weights, a loop) says how often ("called
    ×2 per forward"), one it never calls says so, as the summary counts them."""
    chart = _Flowchart("LR")
    chain = _call_chain(model)
    structure = _walk(model, chain)
    first_width = _input_width(model, chain)
    layers = _flatten(structure)
    listed, calls = _layer_calls(model, layers)

    def calls_line(module: Module) -> list[str]:
        key = id(module)
        if _holds_parameters(module):
            return ["parameters held for the forward's code"]
        if calls is None or calls[key] == listed[key]:
            return []
        return [
            "not called by the forward" if not calls[key] else f"called ×{calls[key]} per forward"
        ]

    ids: list[str] = [
        chart.node("in0", "Input A⁽⁰⁾ = X", _input_text(model, chain, first_width), shape="stadium")
    ]
    stage = table_stage_lines(model)
    if stage:  # raw columns → X: filled, one-hot encoded
        columns, inputs = stage[0].split(": ", 1)[1].split(" → ")
        chart.node("tab0", "Table stage", f"{columns} → {inputs}", "fill gaps, one-hot text",
                   shape="stadium")  # fmt: skip
        chart.edge("tab0", "in0", None)
    counter = {"leaf": 0, "group": 0}
    previous: dict[str, _Layer | _Group | None] = {"layer": None}
    first_listing: dict[int, _Layer] = {}  # a layer listed again (tied): its first listing

    def params_line(item: _Layer) -> str:
        """Its parameter count, or whose they are: a layer listed again adds none (the
        summary's '(shared)'; counting them again over-stated the model's parameters)."""
        first = first_listing.setdefault(id(item.module), item)
        if first is not item:
            return f"parameters shared with {first.path}"
        if stock_kind(item.module, (LazyLinear,)) is not None:  # (0 until then: not its count)
            return f"W⁽?⁾ {item.module.out_features}×?, made at its first call"
        return f"{sum(p.data.size for p in item.module.parameters()):,} parameters"

    def draw(items: list[_Layer | _Group]) -> None:
        for item in items:
            if isinstance(item, _Group):
                counter["group"] += 1
                title = _module_title(item)
                if item.module._has_hooks():
                    title += ", with forward hooks"
                with chart.subgraph(f"grp{counter['group']}", title):
                    draw(item.items)
                if stock_kind(item.module, (Sequential,)) is None:
                    # its own forward, or hooks: what it hands on is not its last Z, so an
                    # activation after it is not A = f(Z) of that Dense
                    previous["layer"] = item
                continue
            counter["leaf"] += 1
            node_id = f"lay{counter['leaf']}"
            module = item.module
            shape = "box"
            if runs_dense_forward(module):
                first = first_listing.get(id(module), item)  # W's number: its first listing's
                m, n, sup = module.out_features, module.in_features, _sup(first.index)
                bias = f"b{sup} {m}" if module.bias is not None else "no bias"
                lines = [f"{item.path} · Dense", f"W{sup} {m}×{n}, {bias}", params_line(item)]
                if not _is(module, Dense):  # its W·X + b, then what its hooks make of it
                    lines.insert(1, "with forward hooks: hands on what they return")
            elif _is(module, Activation):
                name = _kernel_name(module)
                before = previous["layer"]
                lines, shape = [name], "decision"
                if isinstance(before, _Layer) and _is(before.module, Dense):
                    sup = _sup(item.index)
                    lines.append(f"A{sup} = {name}(Z{sup})")
            elif _is(module, Dropout):
                lines = [f"{item.path} · Dropout", f"p = {module.p:g}"]
            elif _is(module, Standardize):
                lines = [f"{item.path} · Standardize", "(X − μ) / σ"]
            elif _is(module, NORMS):
                lines = [
                    f"{item.path} · {type(module).__name__}",
                    normalization_text(module, "Z", module.training),
                    params_line(item),
                ]
            else:  # its own code, or hooks: what it holds, and why it is drawn as its own
                lines = [f"{item.path} · {type(module).__name__}"]
                if module._has_hooks():
                    lines.append("with forward hooks")
                if module.parameters():
                    lines.append(params_line(item))
            if _misfit(item):
                lines.append(f"handed {item.width_in} features: the forward stops here")
            chart.node(node_id, *lines, *calls_line(module), shape=shape)
            ids.append(node_id)
            previous["layer"] = item

    draw(structure)
    last = layers[-1] if layers else None
    # a layer of unknown order: what feeds it, and whether it gives the output, is its
    # container's code's; no width is drawn there
    free = (last is not None and last.free) or (_in_unknown_order(model) and chain is None)
    width = None if free else last.width_out if last is not None else first_width
    final = _sup(last.index if last is not None else 0)
    ids.append(chart.node("res0", f"Output A{final}", f"{_dim(width)} outputs", shape="stadium"))
    widths = [_dim(first_width), *[_edge_shape(layer) for layer in layers]]
    widths = [
        None if (layers[k].free if k < len(layers) else free) else w for k, w in enumerate(widths)
    ]
    for (source, target), w in zip(itertools.pairwise(ids), widths, strict=True):
        chart.edge(source, target, None if w in (None, "?") else w)
    return chart.text()


def _edge_shape(layer: _Layer) -> str | None:
    """What ``layer`` hands on, per sample: its width, or the shape of what is not a row
    (an Embedding's L×d rows of W, an Unflatten's image), as the summary gives it."""
    module = layer.module
    if layer.width_in is not None and stock_kind(module, (Embedding,)) is not None:
        return f"{layer.width_in}×{module.embedding_dim}"
    if layer.width_in is not None and stock_kind(module, (Unflatten,)) is not None:
        return "×".join(map(str, module.shape_of_rows(layer.width_in)))
    return None if layer.width_out is None else str(layer.width_out)


def _module_title(group: _Group) -> str:
    return f"{group.path} · {type(group.module).__name__}"


def _dense_blocks(layers: list[_Layer]) -> tuple[list[_Layer], list[tuple[_Layer, list[_Layer]]]]:
    """Layers before the first Dense, then each Dense with the layers that follow it."""
    before: list[_Layer] = []
    blocks: list[tuple[_Layer, list[_Layer]]] = []
    for layer in layers:
        if runs_dense_forward(layer.module):  # (hooked too: its W·X + b runs)
            blocks.append((layer, []))
        elif blocks:
            blocks[-1][1].append(layer)
        else:
            before.append(layer)
    return before, blocks


def _forward_op(layer: _Layer, z: str) -> tuple[str, str]:
    """The label of a non-Dense layer in the forward flow, and its node shape."""
    module = layer.module
    if _is(module, Activation):
        return f"{_kernel_name(module)}({z})", "decision"
    if _is(module, Dropout):
        if module.p == 0:
            return "Dropout p = 0: unchanged", "box"
        return f"Dropout: ⊙ M / (1 − {module.p:g})", "box"
    if _is(module, Standardize):
        return "Standardize: (X − μ) / σ", "box"
    if _halves_rows(module):
        return f"GLU: {glu_text(z)}", "box"
    if stock_kind(module, (AlphaDropout,)) is not None:  # as a training step computes it
        return f"AlphaDropout: a·({z} ⊙ M − α′·(1 − M)) + α′·a·p, p = {module.p:g}", "box"
    if stock_kind(module, (FeatureAlphaDropout,)) is not None:
        text = f"a·({z} ⊙ M − α′·(1 − M)) + α′·a·p, M per channel, p = {module.p:g}"
        return f"FeatureAlphaDropout: {text}", "box"
    if stock_kind(module, (Dropout1d,)) is not None:
        return f"Dropout1d: ⊙ M / (1 − {module.p:g}), M per channel", "box"
    if stock_kind(module, (RReLU,)) is not None:
        text = f"{z} where {z} > 0, else a·{z}, a ~ U({module.lower:g}, {module.upper:g})"
        return f"RReLU: {text}", "box"
    if stock_kind(module, (Unflatten,)) is not None:
        return f"Unflatten: dim {module.dim} as {module.unflattened_size} (a reshape)", "box"
    if _is(module, NORMS):  # as a training step computes it (Dropout's mask M too)
        text = normalization_text(module, z, training=True)
        if module._buffers.get("running_mean") is not None:
            text += " (predict: the running statistics)"
        return f"{type(module).__name__}: {text}", "box"
    return f"{layer.path} · {type(module).__name__}", "box"


@_one_sample_run
def forward_diagram(model: Module, batch_size: int | None = None) -> str:
    """The forward pass as the seed draws it, one subgraph per Dense layer:
    A⁽ˡ⁻¹⁾ → W⁽ˡ⁾·A⁽ˡ⁻¹⁾ → +b⁽ˡ⁾ → Z⁽ˡ⁾ → f → A⁽ˡ⁾, …, → loss. Shapes are the seed's
    columns (W m×n, A n×B); ``batch_size`` fills in B."""
    _check_known_order(model, "forward")
    cols = _columns(batch_size)
    chart = _Flowchart("TD")
    before, blocks = _dense_blocks(_flatten(_structure(model)))
    n0 = _dim(_input_width(model, _call_chain(model)))
    if before:
        ids = [chart.node("in0", "Input X", f"{n0}×{cols}", shape="stadium")]
        for k, layer in enumerate(before, start=1):
            label, shape = _forward_op(layer, "X" if k == 1 else "·")  # (the one before's)
            ids.append(chart.node(f"pre{k}", label, shape=shape))
        ids.append(chart.node("act0", "A⁽⁰⁾", f"{_dim(before[-1].width_out)}×{cols}"))
    else:
        ids = [chart.node("in0", "Input X = A⁽⁰⁾", f"{n0}×{cols}", shape="stadium")]
    numbers = _weight_numbers(blocks)
    for dense, after in blocks:
        module = dense.module
        assert isinstance(module, Dense)
        idx, m, n = dense.index, module.out_features, module.in_features
        sup, prev, w = _sup(idx), _sup(idx - 1), _sup(numbers[idx])
        hooked = not _is(module, Dense)
        with chart.subgraph(f"lay{idx}", f"Layer {idx}: {dense.path}"):
            ids.append(
                chart.node(
                    f"mul{idx}", f"W{w}·A{prev}", f"({m}×{n})·({n}×{cols})", shape="decision"
                )
            )
            if module.bias is not None:
                ids.append(chart.node(f"add{idx}", f"+ b{w}", f"b{w} {m}×1, over {cols} columns"))
            ids.append(chart.node(f"pre{idx}z", f"Z{sup}", f"{m}×{cols}"))
            if hooked:  # it hands on what its hooks return from Z⁽ˡ⁾
                ids.append(chart.node(f"hk{idx}", f"forward hooks of {dense.path}(Z{sup})"))
            for k, layer in enumerate(after, start=1):
                z = f"Z{sup}" if k == 1 and not hooked else "·"
                label, shape = _forward_op(layer, z)
                ids.append(chart.node(f"fn{idx}x{k}", label, shape=shape))
            width = _dim(after[-1].width_out if after else None if hooked else m)
            a_label = f"A{sup}" if after or hooked else f"A{sup} = Z{sup}"
            ids.append(chart.node(f"act{idx}", a_label, f"{width}×{cols}"))
    last = _sup(blocks[-1][0].index if blocks else 0)
    ids.append(chart.node("loss", f"Loss L(A{last}, Y)", "scalar", shape="stadium"))
    chart.chain(ids)
    return chart.text()


def _weight_numbers(blocks: list[tuple[_Layer, list[_Layer]]]) -> dict[int, int]:
    """Each block's W number by its l: the l of its layer's first listing (a Dense listed
    again keeps its W⁽ᵏ⁾, one Parameter one name, as wxb.explain numbers it)."""
    first: dict[int, int] = {}
    return {dense.index: first.setdefault(id(dense.module), dense.index) for dense, _ in blocks}


def _applied(layer: _Layer, z: str) -> str:
    """What ``layer`` gives for input ``z``, written out: sigmoid(Z⁽¹⁾), the argument of
    a tanh stacked on it."""
    module = layer.module
    if _is(module, Activation):
        return f"{_kernel_name(module)}({z})"
    if _is(module, Dropout) and module.p == 0:
        return z
    name = "dropout" if _is(module, Dropout) else layer.path
    return f"{'standardize' if _is(module, Standardize) else name}({z})"


# The row-wise activations' backward, g = ∂L/∂A: a Jacobian, not an element-wise f′
_JACOBIANS = {
    "softmax": "A ⊙ (g − Σ g ⊙ A)",
    "softmin": "−A ⊙ (g − Σ g ⊙ A)",
    "log_softmax": "g − softmax(Z) ⊙ Σ g",
}


def _backward_op(layer: _Layer, z: str) -> str:
    """The label of a non-Dense layer's backward step (what the error is multiplied by)."""
    module = layer.module
    if _is(module, Activation):
        name = _kernel_name(module)
        if name in _JACOBIANS:  # a row's outputs each depend on all of its Z: no f′ ⊙
            return f"{name} Jacobian at {z}: {_JACOBIANS[name]}"
        return f"⊙ {name}′({z})"
    if _is(module, Dropout):
        return "Dropout p = 0: δ unchanged" if module.p == 0 else f"⊙ M / (1 − {module.p:g})"
    if _is(module, Standardize):
        return "⊙ 1/σ"
    if stock_kind(module, (AlphaDropout, FeatureAlphaDropout)) is not None:
        return f"{type(module).__name__} backward: ⊙ a·M"
    if stock_kind(module, (Dropout1d,)) is not None:
        return f"Dropout1d backward: ⊙ M / (1 − {module.p:g})"
    if stock_kind(module, (RReLU,)) is not None:
        return "RReLU backward: ⊙ the forward's slopes (1 where z > 0)"
    if stock_kind(module, (Unflatten,)) is not None:
        return "Unflatten backward: δ reshaped back (a reshape moves no value)"
    if _halves_rows(module):
        return "GLU backward: [∂L/∂U; ∂L/∂V] = [g ⊙ σ(V); g ⊙ U ⊙ σ(V) ⊙ (1 − σ(V))]"
    if _is(module, NORMS):
        # (the backward of a training step, which fit takes in training mode)
        return f"{type(module).__name__} backward: {normalization_backward(module, True)}"
    return f"backward of {layer.path} · {type(module).__name__}"


def _delta_label(idx: int, after: list[_Layer], incoming: str) -> str:
    """δ⁽ˡ⁾ as the seed writes it when one activation follows the layer, else ∂L/∂Z⁽ˡ⁾."""
    sup = _sup(idx)
    if not after:
        return f"δ{sup} = {incoming}"
    only = after[0].module
    if len(after) == 1 and _is(only, Activation) and _kernel_name(only) not in _JACOBIANS:
        product = f"({incoming})" if "·" in incoming else incoming
        return f"δ{sup} = {product} ⊙ {_kernel_name(only)}′(Z{sup})"
    return f"δ{sup} = ∂L/∂Z{sup}"


@_one_sample_run
def backward_diagram(model: Module, batch_size: int | None = None) -> str:
    """Backpropagation as the seed writes it: loss → δ⁽ᴸ⁾ → ∂L/∂W⁽ᴸ⁾, ∂L/∂b⁽ᴸ⁾ and
    W⁽ᴸ⁾ᵀ·δ⁽ᴸ⁾ ⊙ f′(Z⁽ᴸ⁻¹⁾) = δ⁽ᴸ⁻¹⁾, …, down to the first Dense layer, which
    computes no W⁽¹⁾ᵀ·δ⁽¹⁾ (the input needs no gradient). Then the optimiser step.
    Shapes in columns (δ⁽ˡ⁾ m×B). A frozen W or b gets no ∂L/∂W or ∂L/∂b, and the
    chain stops at the first layer with a trainable parameter, as the backward does."""
    _check_known_order(model, "backward")
    cols = _columns(batch_size)
    chart = _Flowchart("TD")
    layers = _flatten(_structure(model))
    before, blocks = _dense_blocks(layers)
    chart.node("loss", "Loss L", "scalar", shape="stadium")
    lazy = [layer.path for layer in layers if stock_kind(layer.module, (LazyLinear,))]
    if lazy:  # its W is not made: which products the backward computes is not known yet
        chart.node(
            "grd0",
            f"{', '.join(lazy)}: LazyLinear infers in_features at its first call "
            "(model(X[:1])); the backward is drawn once its W is made",
        )
        chart.edge("loss", "grd0")
        return chart.text()
    if not blocks and any(p.requires_grad for p in model.parameters()):
        # no Dense, but layers that learn (an Embedding): their backward each, in turn
        source, gradients = "loss", []
        learning = [
            layer for layer in before if any(p.requires_grad for p in layer.module.parameters())
        ]
        for k, layer in enumerate(reversed(learning), start=1):
            node = chart.node(f"pre{k}", _backward_op(layer, "X"), shape="decision")
            chart.edge(source, node)
            source = node
            for name, parameter in layer.module.named_parameters():
                if parameter.requires_grad:
                    gradients.append(
                        chart.node(f"pre{k}g{len(gradients)}", f"∂L/∂{layer.path}.{name}")
                    )
                    chart.edge(node, gradients[-1])
        chart.node("upd", "Update weights and biases", "optimiser step on every ∂L/∂W, ∂L/∂b")
        for gradient in gradients:
            chart.edge(gradient, "upd")
        return chart.text()
    if not blocks and not model.parameters():
        chart.node("grd0", "No parameters: nothing to learn")
        chart.edge("loss", "grd0")
        return chart.text()
    if not any(p.requires_grad for p in model.parameters()):
        chart.node("grd0", "Every parameter is frozen: nothing to learn")
        chart.edge("loss", "grd0")
        return chart.text()
    trainable = [b for b in blocks if any(p.requires_grad for p in b[0].module.parameters())]
    in_dense = {id(p) for b in blocks for p in b[0].module.parameters()}
    if not trainable or any(
        p.requires_grad and id(p) not in in_dense for p in model.parameters()
    ):  # a module of its own learns too: the chain goes down to the first Dense
        trainable = blocks
    top, after_top = blocks[-1]
    top_sup = _sup(top.index)
    width = _dim(after_top[-1].width_out if after_top else top.width_out)
    chart.node("grd0", f"∇_A L = ∂L/∂A{top_sup}", f"{width}×{cols}")
    chart.edge("loss", "grd0")
    source, incoming = "grd0", "∇_A L"
    gradients: list[str] = []
    first_trainable = trainable[0][0]
    learns_before = [  # layers of one's own before the first Dense that learn
        layer for layer in before if any(p.requires_grad for p in layer.module.parameters())
    ]
    numbers = _weight_numbers(blocks)
    for dense, after in reversed(blocks[blocks.index(trainable[0]) :]):
        module = dense.module
        assert isinstance(module, Dense)
        idx, m, n = dense.index, module.out_features, module.in_features
        sup, w = _sup(idx), _sup(numbers[idx])  # W⁽ʷ⁾: a Dense listed again keeps its number
        hooked = not _is(module, Dense)
        with chart.subgraph(f"lay{idx}", f"Layer {idx}: {dense.path}"):
            # what each layer after the Dense is applied to (after its hooks: what they return)
            inputs = [f"{dense.path} hooks(Z{sup})" if hooked else f"Z{sup}"]
            for layer in after[:-1]:
                inputs.append(_applied(layer, inputs[-1]))
            pairs = zip(reversed(after), reversed(inputs[: len(after)]), strict=True)
            for k, (layer, z) in enumerate(pairs, start=1):
                node = chart.node(f"fn{idx}x{k}", _backward_op(layer, z), shape="decision")
                chart.edge(source, node)
                source = node
            if hooked:
                node = chart.node(
                    f"hk{idx}", f"backward of the forward hooks of {dense.path}", shape="decision"
                )
                chart.edge(source, node)
                source = node
            label = f"δ{sup} = ∂L/∂Z{sup}" if hooked else _delta_label(idx, after, incoming)
            delta = chart.node(f"dlt{idx}", label, f"{m}×{cols}")
            chart.edge(source, delta)
            prev = _sup(idx - 1)
            if _learns(module.weight):
                chart.node(
                    f"gw{idx}",
                    f"∂L/∂W{w} = δ{sup}·A{prev}ᵀ",
                    f"({m}×{cols})·({cols}×{n}) = {m}×{n}",
                )
                chart.edge(delta, f"gw{idx}")
                gradients.append(f"gw{idx}")
            if module.bias is not None and _learns(module.bias):
                chart.node(f"gb{idx}", f"∂L/∂b{w} = Σ δ{sup} over {cols} columns", f"{m}×1")
                chart.edge(delta, f"gb{idx}")
                gradients.append(f"gb{idx}")
            if dense is not first_trainable or learns_before:
                chart.node(
                    f"prop{idx}",
                    f"W{w}ᵀ·δ{sup}",
                    f"({n}×{m})·({m}×{cols}) = {n}×{cols}",
                    shape="decision",
                )
                chart.edge(delta, f"prop{idx}")
                source, incoming = f"prop{idx}", f"W{w}ᵀ·δ{sup}"
    for k, layer in enumerate(reversed(learns_before), start=1):
        node = chart.node(f"pre{k}", _backward_op(layer, "X"), shape="decision")
        chart.edge(source, node)
        source = node
        for name, parameter in layer.module.named_parameters():
            if parameter.requires_grad:
                gradients.append(chart.node(f"pre{k}g{len(gradients)}", f"∂L/∂{layer.path}.{name}"))
                chart.edge(node, gradients[-1])
    chart.node("upd", "Update weights and biases", "optimiser step on every ∂L/∂W, ∂L/∂b")
    for gradient in gradients:
        chart.edge(gradient, "upd")
    return chart.text()


def graph_diagram(root: Tensor, model: Module | None = None) -> str:
    """The graph recorded up to ``root`` (e.g. the loss of one training step), from
    ``wxb.graph``: one node per operation with its result's shape (wxb's rows, B×n),
    leaves (inputs, parameters) as rounded nodes, one edge per input link. With
    ``model``, parameters are labelled by their names (dense1.weight, …)."""
    nodes = graph(root)
    names: dict[int, str] = {}
    if model is not None:
        by_id = {id(p): name for name, p in model.named_parameters()}
        tensors = topological_order(root)
        if len(tensors) == len(nodes):
            names = {i: by_id[id(t)] for i, t in enumerate(tensors) if id(t) in by_id}
    chart = _Flowchart("TD")
    for node in nodes:
        shape = "×".join(str(d) for d in node.shape) if node.shape else "scalar"
        title = names.get(node.id) or node.name or node.op
        if node.op in ("input", "parameter"):
            kind = node.op if title == node.op else f"{node.op} {title}"
            chart.node(f"t{node.id}", kind, shape, shape="stadium")
        else:
            chart.node(f"t{node.id}", title if title == node.op else f"{node.op} ({title})", shape)
        for source in node.inputs:
            chart.edge(f"t{source}", f"t{node.id}")
    return chart.text()


_measured_rates: dict[str, float] = {}


def _module_summary(
    self: Module,
    batch_size: int = 32,
    gemm_rate: float | None = None,
    seq_len: int | None = None,
) -> Summary:
    """``model.summary()``: the per-layer table, with the floor of a training step at
    ``batch_size`` from this machine's GEMM rate (measured once per process and dtype);
    ``seq_len``: the ids a row, for a model whose Embedding takes them (``summary``)."""
    if gemm_rate is None:
        dtype = str(resolve_dtype(self.dtype))
        if dtype not in _measured_rates:
            _measured_rates[dtype] = measure_gemm_rate(dtype)
        gemm_rate = _measured_rates[dtype]
    return summary(self, batch_size, gemm_rate, seq_len)


# A method on every Module, attached here (as ops attaches Tensor's operators): the
# description builds on the modules, so module.py does not import it.
Module.summary = _module_summary
