"""Training diagnostics in the seed's terms: norms of W, ∂L/∂W and δ per layer, dead
ReLU units, saturated sigmoid/tanh units, and warnings when δ vanishes or explodes.

δ⁽ˡ⁾ = (W⁽ˡ⁺¹⁾ᵀ·δ⁽ˡ⁺¹⁾) ⊙ f′(Z⁽ˡ⁾): each layer multiplies the error by Wᵀ and by
f′(Z). Where f′ is near 0 (a saturated sigmoid, a dead ReLU) or W is large, the
product shrinks or grows geometrically from the output back to the first layer.
The diagnostic pass records the graph layer by layer, keeping each Z's gradient
(δ), on a fixed batch, in eval mode (Dropout off, no random mask drawn); it leaves
the parameters' gradients and the modules' modes as they were, so a run with
diagnostics trains exactly as one without.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from wxb.describe import chain_layers, percent, runs_dense_forward
from wxb.errors import ConfigError
from wxb.nn.layers import Activation, Dense, Dropout, ReLU, Sigmoid, Tanh
from wxb.nn.losses import Loss
from wxb.nn.module import Module, Parameter, gradient_twin, is_stock
from wxb.nn.norm import NORMS
from wxb.nn.sequential import layers_in_order
from wxb.tensor import Tensor, enable_grad, no_grad

SATURATED = 0.01  # |f′(Z)| below this: the unit passes (almost) no error back
VANISHING = 1e4  # ‖δ‖ shrinking (or growing) this much from the last layer to the first


@dataclass
class LayerReport:
    """One layer's figures on the diagnostic batch: a Dense's, or those of another layer
    holding a weight (an Embedding's table, a norm's γ, PReLU's slopes; ``kind`` says
    which), its Z then the layer's output."""

    layer: str
    weight_norm: float  # ‖W‖ (Frobenius)
    weight_grad_norm: float  # ‖∂L/∂W‖
    delta_norm: float  # ‖δ‖ = ‖∂L/∂Z‖ over the batch
    activation: str | None = None  # the activation applied to this layer's Z, if any
    dead_fraction: float | None = None  # ReLU: units that are 0 for every row
    saturated_fraction: float | None = None  # sigmoid/tanh: entries with |f′(Z)| < 0.01
    kind: str = "Dense"  # the layer's type (δ's warnings and l count the Dense ones)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


NEEDS_A_CHAIN = (
    "needs a Sequential model, or a module whose forward of its own only chains its "
    "layers (through activations or not): a forward that does more computes what its "
    "layers in order do not"
)


def layer_reports(model: Module, X: np.ndarray, y: np.ndarray, loss: Loss) -> list[LayerReport]:
    """Forward and backward through ``model`` on (X, y), layer by layer: a Sequential's
    layers, or those a forward of its own chains (``describe.chain_layers``; they must
    give its own output on X). On its twin (``gradient_twin``): frozen layers get their
    ∂L/∂W too, the model's own flags and ``.grad`` untouched."""
    with gradient_twin(model) as (twin, _):
        return _layer_reports(twin, X, y, loss)


def _layer_reports(model: Module, X: np.ndarray, y: np.ndarray, loss: Loss) -> list[LayerReport]:
    layers = layers_in_order(model)
    chained = layers == [model]
    if chained:
        layers = chain_layers(model) or layers
    if layers == [model]:
        raise ConfigError(f"diagnostics {NEEDS_A_CHAIN}")
    paths = {id(m): name for name, m in model.named_modules()}  # (each once, first path)
    # Eval mode: Dropout off, so the figures are the network's own and no mask is drawn.
    # Frozen layers too (the twin's parameters all require grad): δ passes through them
    # all the same, and a frozen first layer must not read as a vanished δ.
    # (a graph to walk back, even when called inside no_grad())
    with enable_grad(), model.evaluating(), model.gradients_set_aside() as grads:
        x, denses, activation_of, named = Tensor(X), [], {}, {}
        on_z = None  # the Dense whose Z is x (Dropout, off in eval mode, leaves it so)
        for layer in layers:
            # a Dense with forward hooks, or one inside a layer with hooks (a hooked
            # Sequential): their hooks may change what they hand on, so each one's own
            # Z = W·X + b is seen by a hook put first (on the twin; the model's untouched)
            inner = [] if is_stock(layer, Dense) else [
                m for m in layer.modules() if runs_dense_forward(m)
            ]  # fmt: skip
            seen: list[tuple[Module, Tensor]] = []
            handles = [
                m.register_forward_hook(
                    lambda m, a, z, seen=seen: seen.append((m, z)), prepend=True
                )
                for m in inner
            ]
            try:
                out = layer(x)
            finally:
                for handle in handles:
                    handle.remove()
            once = Counter(id(m) for m, _ in seen)
            for dense, z in seen:
                if dense is not layer:  # named by its path (its own name is its container's)
                    named[id(dense)] = paths.get(id(dense)) or dense.name
                if once[id(dense)] == 1:  # (one called twice: no one δ of its own)
                    z.retain_grad()
                    denses.append((dense, z))
            if is_stock(layer, Dense) or (not inner and _weight_of(layer) is not None):
                # (an Embedding, a norm, PReLU: their ‖W‖ and ‖∂L/∂W‖ too, δ their output's)
                out.retain_grad()
                denses.append((layer, out))
            if is_stock(layer, Dense) or once[id(layer)]:  # its own Z, whatever its hooks do
                on_z = layer
            elif is_stock(layer, Activation) and on_z is not None:
                activation_of[id(on_z)] = (layer, out.data)  # f(Z), not a later g(f(Z))
                on_z = None
            elif not any(is_stock(layer, kind) for kind in (Dropout, *NORMS)):
                on_z = None  # (f(BN(Z)), with --norm, is still the layer's A)
            x = out
        if chained:  # seen on a sample batch: does X take that path too?
            with no_grad():
                if not np.array_equal(x.data, model(Tensor(X)).data, equal_nan=True):
                    raise ConfigError(f"diagnostics {NEEDS_A_CHAIN} (as on these rows)")
        loss(x, y).backward()
        reports = []
        for layer, z in denses:
            weight = layer.weight if is_stock(layer, Dense) else _weight_of(layer)
            report = LayerReport(
                layer=named.get(id(layer)) or layer.name or paths.get(id(layer)) or "dense",
                weight_norm=_norm(weight.data),
                weight_grad_norm=_norm(grads[weight]),
                delta_norm=_norm(z.grad),
                kind="Dense" if runs_dense_forward(layer) else type(layer).__name__,
            )
            if id(layer) in activation_of:
                act, a = activation_of[id(layer)]
                report.activation = act.kernel.name
                if isinstance(act, ReLU):
                    report.dead_fraction = float(np.mean(np.all(a <= 0, axis=0)))
                elif isinstance(act, Sigmoid):  # σ′ = σ(1 − σ)
                    report.saturated_fraction = float(np.mean(a * (1 - a) < SATURATED))
                elif isinstance(act, Tanh):  # tanh′ = 1 − tanh²
                    report.saturated_fraction = float(np.mean(1 - a * a < SATURATED))
            reports.append(report)
        # two layers of one name (a nested Sequential's dense1 beside the model's): by path
        twice = Counter(r.layer for r in reports)
        for report, (layer, _) in zip(reports, denses, strict=True):
            if twice[report.layer] > 1:
                report.layer = paths.get(id(layer)) or report.layer
        uses: Counter[int] = Counter()
        for report, (layer, _) in zip(reports, denses, strict=True):
            uses[id(layer)] += 1
            if uses[id(layer)] > 1:  # a layer used again: dense2#2, as explain and summary
                report.layer += f"#{uses[id(layer)]}"
        return reports


def _weight_of(layer: Module) -> Parameter | None:
    """The weight a layer other than Dense holds (Embedding's, γ, PReLU's), None if none."""
    weight = layer._parameters.get("weight")
    return weight if isinstance(weight, Parameter) else None


def _norm(array: np.ndarray | None) -> float:
    # summed in float64: float32's own sum of a large W is off in its 6th digit
    if array is None:
        return 0.0
    flat = np.asarray(array).ravel()
    flat = flat.astype(np.complex128 if flat.dtype.kind == "c" else np.float64)
    return float(np.sqrt(np.vdot(flat, flat).real))


def warnings_for(reports: list[LayerReport]) -> list[str]:
    """What the figures say, in the seed's terms; empty for a healthy network."""
    found = []
    reports = [r for r in reports if r.kind == "Dense"]  # δ⁽ˡ⁾ of l = 1, 2, …
    if len(reports) >= 2:
        last, first = reports[-1], reports[0]
        where = f"from layer {len(reports)} ({last.layer}) to layer 1 ({first.layer})"
        saturated = [r for r in reports if (r.saturated_fraction or 0) > 0.5]
        dead = [r for r in reports if (r.dead_fraction or 0) > 0.5]
        # (non-finite norms: a diverged step, which fit itself reports)
        finite = math.isfinite(last.delta_norm) and math.isfinite(first.delta_norm)
        if finite and last.delta_norm > 0 and first.delta_norm <= last.delta_norm / VANISHING:
            # δ exactly 0 at layer 1 (its ReLUs all dead): no factor; over a floor of
            # 1e-300 it was said to shrink 10³⁰⁰×, or the quotient overflowed
            factor = (
                "to 0"
                if first.delta_norm == 0
                else f"{_power_of_ten(last.delta_norm, first.delta_norm)}×"
            )
            squashing = [r for r in reports if r.activation == "sigmoid"]
            if saturated:
                cause = (
                    f"{saturated[0].activation} saturation (|f′(Z)| < {SATURATED} in "
                    f"{percent(saturated[0].saturated_fraction, 0)} of {saturated[0].layer}), "
                    "consider ReLU or smaller initial weights"
                )
            elif squashing:
                cause = (
                    f"sigmoid's f′(Z) ≤ 0.25 multiplies δ at each of {len(squashing)} layers; "
                    "consider ReLU or fewer layers"
                )
            elif any(r.activation == "relu" for r in reports) and all(
                r.activation in (None, "relu") for r in reports
            ):  # (ReLU already: its f′ is 0 or 1, the Wᵀ factors and the units off shrink δ)
                cause = (
                    "each Wᵀ factor, and ReLU's f′(Z) = 0 where a unit is off, shrinks it; "
                    "consider He's initial W, fewer layers or a normalisation layer"
                )
            else:
                cause = "each f′(Z) and Wᵀ factor shrinks it; consider ReLU or other initial W"
            found.append(f"δ shrinks {factor} {where}: {cause}")
        elif finite and last.delta_norm > 0 and first.delta_norm >= last.delta_norm * VANISHING:
            factor = _power_of_ten(first.delta_norm, last.delta_norm)
            found.append(
                f"δ grows {factor}× {where}: the Wᵀ factors are large; consider smaller "
                "initial weights, gradient clipping or a smaller learning rate"
            )
        elif saturated:  # δ held up (large W can offset small f′), but most units are flat
            r = saturated[0]
            found.append(
                f"{r.layer}: {r.activation} saturation, |f′(Z)| < {SATURATED} in "
                # a share of its f′(Z) entries, unit by row, as saturated_fraction counts them
                f"{percent(r.saturated_fraction, 0)} of its entries, unit by row (they pass "
                "almost no δ back); "
                "consider ReLU or smaller initial weights"
            )
        for r in dead:
            found.append(
                f"{r.layer}: {percent(r.dead_fraction, 0)} of its ReLU units never fire on the "
                "batch (f′ = 0 there: no δ passes); consider a smaller learning rate or LeakyReLU"
            )
    return found


def _power_of_ten(top: float, bottom: float) -> str:
    """``top / bottom`` (both > 0 and finite) to two digits as m·10ⁿ (10ⁿ alone when m
    rounds to 1): 8.3e4 is '8.3·10⁴', not '10⁴', eight times less than it is."""
    ratio = top / bottom
    if math.isfinite(ratio):
        exponent = math.floor(math.log10(ratio))
        mantissa = round(ratio / 10.0**exponent, 1)
    else:  # past float64 (a δ of 1e10 over one of 1e-300): from the logarithms
        log = math.log10(top) - math.log10(bottom)
        exponent = math.floor(log)
        mantissa = round(10.0 ** (log - exponent), 1)
    if mantissa >= 10:  # 9.96 rounds to 10.0: one more power
        exponent, mantissa = exponent + 1, 1.0
    digits = str(exponent).translate(str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻"))
    return f"10{digits}" if mantissa == 1.0 else f"{mantissa:g}·10{digits}"
