"""Walkthroughs in the seed's notation: every number wxb computes, shown as the seed writes it.

``explain_seed()`` works the seed's two examples with concrete numbers (the seed
leaves them symbolic), line by line: equation, numbers substituted, result; then
checks that wxb's own graph gives the same gradients. ``explain_model()`` does
the same for a real model on a sample or a small batch: Z = W·X + b with shapes
in column notation and FLOPs, A = f(Z) with statistics, the loss, and the
backward pass δ⁽ˡ⁾, ∂L/∂W⁽ˡ⁾, ∂L/∂b⁽ˡ⁾ as ``loss.backward()`` computed them.

Users hand over rows (X is B×n); the engine computes on rows. What is shown here
is always the seed's column notation: X is n×B, Z and δ are m×B.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from wxb import ops
from wxb.columns import rows_by_name
from wxb.describe import (
    STOCK_LAYERS,
    chain_layers,
    glu_text,
    normalization_text,
    percent,
    runs_dense_forward,
    sample_ids_per_row,
)
from wxb.errors import ConfigError, DataError
from wxb.nn.heads import head_index, model_task, probability_head, trained_loss
from wxb.nn.layers import GLU, Activation, Dense, Dropout, Embedding, Standardize
from wxb.nn.losses import (
    CrossEntropyLoss,
    Loss,
    TargetForm,
    computes_its_own,
    get_loss,
    recorded_name,
    stock_loss,
)
from wxb.nn.module import (
    Module,
    Parameter,
    couples_rows,
    gradient_twin,
    is_stock,
    stock_kind,
)
from wxb.nn.norm import NORMS
from wxb.nn.sequential import layers_in_order
from wxb.tensor import Tensor, enable_grad, gradients_apart, no_grad
from wxb.validation import (
    as_class_indices,
    as_features,
    as_own_loss_targets,
    as_targets,
    dense_if_sparse,
    numbers_from_pandas,
)

FORMATS = ("text", "markdown")
AGREEMENT = 1e-12  # the seed's cross-check: hand computation and engine, both in float64
MAX_SHOWN = 16  # arrays with more elements are summarised (shape, norm, min/mean/max)


# ---------------------------------------------------------------------------------
# What an explanation is made of
# ---------------------------------------------------------------------------------
@dataclass
class Step:
    """One line of a walkthrough: equation, the same with numbers (or shapes), the result.

    ``name`` is a stable key for programs and tests (``"net.delta2"``, ``"dense1.Z"``);
    ``value`` is the result in column notation; ``facts`` holds the numbers the note
    mentions (shapes, FLOPs, norms, statistics) so they need no parsing.
    """

    name: str
    equation: str
    substituted: str
    value: np.ndarray | float
    latex: str = ""
    substituted_latex: str = ""
    note: str = ""
    group: str = ""
    facts: dict[str, object] = field(default_factory=dict)
    check: bool = False  # a cross-check against the engine: its note is the verdict


@dataclass
class Section:
    title: str
    intro: list[str]
    steps: list[Step]


@dataclass
class Explanation:
    """Structured steps plus two renderings: ``text()`` for terminals, ``markdown()`` for docs."""

    title: str
    sections: list[Section]
    fmt: str = "text"

    @property
    def steps(self) -> list[Step]:
        return [step for section in self.sections for step in section.steps]

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"no step named {name!r}; steps: {', '.join(s.name for s in self.steps)}")

    def render(self) -> str:
        """The rendering ``fmt`` asked for."""
        return self.markdown() if self.fmt == "markdown" else self.text()

    __str__ = render

    def text(self) -> str:
        lines = [self.title, "=" * len(self.title)]
        for number, section in enumerate(self.sections, 1):
            lines += ["", f"{number}. {section.title}"]
            lines += [f"   {line}" for line in section.intro]
            group = ""
            lines.append("")
            for step in section.steps:
                if step.group and step.group != group:
                    group = step.group
                    _blank(lines)
                    lines.append(f"   [{group}]")
                lines.append(f"   {_text_line(step)}")
                if step.note:
                    lines += [f"       {part}" for part in step.note.split("\n")]
        return "\n".join(lines) + "\n"

    def markdown(self) -> str:
        lines = [f"# {_md(self.title)}"]
        for number, section in enumerate(self.sections, 1):
            lines += ["", f"## {number}. {_md(section.title)}", ""]
            lines += [f"{_md(line)}  " for line in section.intro]
            group = ""
            for step in section.steps:
                if step.group and step.group != group:
                    group = step.group
                    _blank(lines)
                    lines.append(f"### {_md(group)}")
                _blank(lines)
                if step.check:
                    lines.append(f"**Cross-check** with {_md(step.equation)}:")
                else:
                    lines += ["$$", latex_line(step), "$$"]
                if step.note:
                    lines += [""] + [f"- {_md(part)}" for part in step.note.split("\n")]
        return "\n".join(lines) + "\n"


# Markdown's own characters, escaped in text that may hold the data's names (a class
# '<b>z</b>' was rendered bold, a layer 'w_1_x_' in italics, a '|' cut a line, a class
# '&lt;' read as the entity '<')
_MD_SPECIAL = {ord(c): "\\" + c for c in "\\`*_[]<>|~$&"}


# ... and at the start of a line, what begins a block: a layer '# bn' opened a line
# '# bn normalises …', a heading; '- bn' or '1) bn' a list
_BLOCK_START = re.compile(r"^(?:([#+=-])|(\d{1,9})([.)]))")


def _md(text: str) -> str:
    text = text.translate(_MD_SPECIAL)
    return _BLOCK_START.sub(lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\{m[3]}", text)


def _blank(lines: list[str]) -> None:
    """One empty line between blocks, never two."""
    if lines and lines[-1] != "":
        lines.append("")


def _text_line(step: Step) -> str:
    if step.check:
        return f"Cross-check with {step.equation}:"
    parts = [step.equation, step.substituted, _fmt_text(step.value)]
    return " = ".join(part for part in parts if part)


def latex_line(step: Step) -> str:
    """The step as one LaTeX equation: symbols = numbers substituted = the value."""
    parts = [step.latex or step.equation, step.substituted_latex, _fmt_latex(step.value)]
    return " = ".join(part for part in parts if part)


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"explain format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    return fmt


# ---------------------------------------------------------------------------------
# Numbers as text and as LaTeX
# ---------------------------------------------------------------------------------
def _num(x: float | np.ndarray) -> str:
    """Six significant digits; whole numbers keep a '.0' so they read as reals (labels don't)."""
    if np.asarray(x).dtype.kind in "iub":
        return str(int(x))
    x = float(x)
    if x == 0:
        return "0.0"
    text = f"{x:.6g}"
    return text if any(c in text for c in ".einf") else f"{text}.0"


def _fmt_text(value: np.ndarray | float) -> str:
    array = np.asarray(value)
    if array.ndim == 0:
        return _num(array)
    if array.size > MAX_SHOWN:
        return f"({_dims(array.shape)} array)"
    if array.ndim == 1:
        return "[" + ", ".join(_num(v) for v in array) + "]"
    return "[" + ", ".join(_fmt_text(row) for row in array) + "]"


def _latex_num(x: float | np.ndarray) -> str:
    """``_num`` in LaTeX: 4.2e-08 as 4.2 \times 10^{-8} (an "e" in math is a variable)."""
    text = _num(x)
    if "inf" in text or "nan" in text:
        return text.replace("inf", r"\infty").replace("nan", r"\text{NaN}")
    if "e" in text:
        mantissa, exponent = text.split("e")
        return rf"{mantissa} \times 10^{{{int(exponent)}}}"
    return text


def _fmt_latex(value: np.ndarray | float) -> str:
    """Scalars as numbers, vectors as columns (the seed's vectors), matrices as bmatrix."""
    array = np.asarray(value)
    if array.ndim == 0:
        return _latex_num(array)
    if array.size > MAX_SHOWN or array.ndim > 2:  # (a bmatrix is 2-D: an Embedding's (B, L, d))
        # \times is math: it stands outside the \text{…} (inside, KaTeX and LaTeX refuse it)
        return r"(" + _dims(array.shape, r" \times ") + r"\text{ array})"
    rows = array.reshape(-1, 1) if array.ndim == 1 else array
    body = r" \\ ".join(" & ".join(_latex_num(v) for v in row) for row in rows)
    return rf"\begin{{bmatrix}} {body} \end{{bmatrix}}"


def _operand(x: float) -> str:
    """A scalar inside an expression: negatives in parentheses, as one writes them by hand."""
    return f"({_num(x)})" if x < 0 else _num(x)


def _dims(shape: Sequence[int], times: str = "×") -> str:
    return times.join(str(s) for s in shape)


def _sup(index: int | str) -> str:
    """⁽ˡ⁾ for a layer index, as the seed writes it."""
    digits = str.maketrans("0123456789L", "⁰¹²³⁴⁵⁶⁷⁸⁹ᴸ")
    return f"⁽{str(index).translate(digits)}⁾"


def _max_difference(pairs: Sequence[tuple[object, object]]) -> float:
    return max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in pairs)


def _agreement(difference: float) -> str:
    if difference <= AGREEMENT:
        return f"max |difference| = {difference:.1e}: agree to {AGREEMENT:g}"
    return f"max |difference| = {difference:.1e}: DISAGREE (more than {AGREEMENT:g})"


# ---------------------------------------------------------------------------------
# The seed's two worked examples, with numbers
# ---------------------------------------------------------------------------------
# The seed leaves its examples symbolic; these small numbers make every line checkable
# by hand. Example 1 is chosen so that Z comes out round: Z = [0.2, 0.8].
SEED_LAYER = {
    "W": np.array([[0.5, -0.2], [0.1, 0.4]]),
    "X": np.array([1.0, 2.0]),
    "b": np.array([0.1, -0.1]),
}
# Example 2 (one input, one hidden neuron, one output, f = σ): z⁽¹⁾ comes out as 1.0.
SEED_NETWORK = {"x": 1.5, "y": 1.0, "w1": 0.8, "b1": -0.2, "w2": 1.2, "b2": 0.3}


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def explain_seed(fmt: str = "text") -> Explanation:
    """The seed's two examples worked with numbers, so a reader can redo each line by hand,
    and a check that wxb's own graph gives the same numbers (reported, not assumed)."""
    return Explanation(
        "The seed's worked examples, with numbers (float64)",
        [_seed_layer_section(), _seed_network_section()],
        _check_format(fmt),
    )


def _seed_layer_section() -> Section:
    W, X, b = SEED_LAYER["W"], SEED_LAYER["X"], SEED_LAYER["b"]
    Z = W @ X + b
    A = 1.0 / (1.0 + np.exp(-Z))
    steps = [
        Step(
            "layer.Z",
            "Z = W·X + b",
            f"{_fmt_text(W)}·{_fmt_text(X)} + {_fmt_text(b)}",
            Z,
            r"\mathbf{Z} = \mathbf{W} \cdot \mathbf{X} + \mathbf{b}",
            rf"{_fmt_latex(W)} \cdot {_fmt_latex(X)} + {_fmt_latex(b)}",
            note=f"z₁ = w₁₁x₁ + w₁₂x₂ + b₁ = {_sum_text(W[0], X, b[0])}\n"
            f"z₂ = w₂₁x₁ + w₂₂x₂ + b₂ = {_sum_text(W[1], X, b[1])}",
        ),
        Step(
            "layer.A",
            "A = f(Z) = σ(Z)",
            "[" + ", ".join(f"σ({_num(z)})" for z in Z) + "]",
            A,
            r"\mathbf{A} = f(\mathbf{Z}) = \sigma(\mathbf{Z})",
            _fmt_latex_column([rf"\sigma({_num(z)})" for z in Z]),
            note="σ(z) = 1/(1 + e^(−z))",
        ),
    ]
    # The same layer in wxb: Dense(2, 2) then Sigmoid, on X as one row.
    layer = Dense(2, 2, dtype="float64")
    layer.weight.data[:] = W
    layer.bias.data[:] = b
    engine_Z = layer(Tensor(X.reshape(1, -1), dtype="float64"))
    engine_A = ops.sigmoid(engine_Z)
    difference = _max_difference([(engine_Z.data[0], Z), (engine_A.data[0], A)])
    steps.append(
        Step(
            "layer.check",
            "wxb's Dense(2, 2) and Sigmoid, on X as one row",
            "",
            difference,
            note=f"Z: by hand {_fmt_text(Z)}, wxb {_fmt_text(engine_Z.data[0])}\n"
            f"A: by hand {_fmt_text(A)}, wxb {_fmt_text(engine_A.data[0])}\n"
            f"{_agreement(difference)}",
            facts={"agree": difference <= AGREEMENT, "max_difference": difference},
            check=True,
        )
    )
    intro = [
        "One layer, two inputs, two neurons; f = σ (the seed leaves f open).",
        f"W = {_fmt_text(W)}, X = {_fmt_text(X)}, b = {_fmt_text(b)} (chosen so Z is round).",
    ]
    return Section("Forward pass of one layer: Z = W·X + b, A = f(Z)", intro, steps)


def _sum_text(row: np.ndarray, x: np.ndarray, bias: float) -> str:
    terms = " + ".join(f"{_operand(w)}·{_operand(v)}" for w, v in zip(row, x, strict=True))
    return f"{terms} + {_operand(bias)} = {_num(row @ x + bias)}"


def _fmt_latex_column(entries: list[str]) -> str:
    return r"\begin{bmatrix} " + r" \\ ".join(entries) + r" \end{bmatrix}"


def _seed_network_section() -> Section:
    p = SEED_NETWORK
    x, y, w1, b1, w2, b2 = p["x"], p["y"], p["w1"], p["b1"], p["w2"], p["b2"]
    # Forward, exactly as the seed writes it.
    z1 = w1 * x + b1
    a1 = _sigmoid(z1)
    z2 = w2 * a1 + b2
    y_hat = _sigmoid(z2)
    loss = 0.5 * (y_hat - y) ** 2
    # Backward: the seed's four steps (and the biases: ∂L/∂b⁽ˡ⁾ = δ⁽ˡ⁾).
    f_prime_z2 = y_hat * (1 - y_hat)  # σ′(z) = σ(z)(1 − σ(z))
    delta2 = (y_hat - y) * f_prime_z2
    grad_w2 = delta2 * a1
    f_prime_z1 = a1 * (1 - a1)
    delta1 = w2 * delta2 * f_prime_z1
    grad_w1 = delta1 * x

    def step(name: str, equation: str, latex: str, substituted: str, value: float) -> Step:
        return Step(name, equation, substituted, value, latex, _latex_numbers(substituted))

    steps = [
        step("net.z1", "z⁽¹⁾ = w⁽¹⁾x + b⁽¹⁾", r"z^{(1)} = w^{(1)} x + b^{(1)}",
             f"{_num(w1)}·{_num(x)} + {_operand(b1)}", z1),
        step("net.a1", "a⁽¹⁾ = f(z⁽¹⁾) = σ(z⁽¹⁾)", r"a^{(1)} = f(z^{(1)}) = \sigma(z^{(1)})",
             f"1/(1 + e^(−{_operand(z1)}))", a1),
        step("net.z2", "z⁽²⁾ = w⁽²⁾a⁽¹⁾ + b⁽²⁾", r"z^{(2)} = w^{(2)} a^{(1)} + b^{(2)}",
             f"{_num(w2)}·{_num(a1)} + {_operand(b2)}", z2),
        step("net.y_hat", "ŷ = f(z⁽²⁾) = σ(z⁽²⁾)", r"\hat{y} = f(z^{(2)}) = \sigma(z^{(2)})",
             f"1/(1 + e^(−{_operand(z2)}))", y_hat),
        step("net.loss", "L = ½(ŷ − y)²", r"\mathcal{L} = \frac{1}{2} (\hat{y} - y)^2",
             f"½({_num(y_hat)} − {_operand(y)})²", loss),
        step("net.f_prime_z2", "f′(z⁽²⁾) = σ(z⁽²⁾)(1 − σ(z⁽²⁾)) = ŷ(1 − ŷ)",
             r"f'(z^{(2)}) = \hat{y} (1 - \hat{y})",
             f"{_num(y_hat)}·(1 − {_num(y_hat)})", f_prime_z2),
        step("net.delta2", "δ⁽²⁾ = (ŷ − y)·f′(z⁽²⁾)",
             r"\delta^{(2)} = (\hat{y} - y) \cdot f'(z^{(2)})",
             f"({_num(y_hat)} − {_operand(y)})·{_num(f_prime_z2)}", delta2),
        step("net.dL/dw2", "∂L/∂w⁽²⁾ = δ⁽²⁾·a⁽¹⁾",
             r"\frac{\partial \mathcal{L}}{\partial w^{(2)}} = \delta^{(2)} \cdot a^{(1)}",
             f"{_operand(delta2)}·{_num(a1)}", grad_w2),
        step("net.dL/db2", "∂L/∂b⁽²⁾ = δ⁽²⁾",
             r"\frac{\partial \mathcal{L}}{\partial b^{(2)}} = \delta^{(2)}", "", delta2),
        step("net.f_prime_z1", "f′(z⁽¹⁾) = σ(z⁽¹⁾)(1 − σ(z⁽¹⁾)) = a⁽¹⁾(1 − a⁽¹⁾)",
             r"f'(z^{(1)}) = a^{(1)} (1 - a^{(1)})",
             f"{_num(a1)}·(1 − {_num(a1)})", f_prime_z1),
        step("net.delta1", "δ⁽¹⁾ = w⁽²⁾δ⁽²⁾·f′(z⁽¹⁾)",
             r"\delta^{(1)} = w^{(2)} \delta^{(2)} \cdot f'(z^{(1)})",
             f"{_num(w2)}·{_operand(delta2)}·{_num(f_prime_z1)}", delta1),
        step("net.dL/dw1", "∂L/∂w⁽¹⁾ = δ⁽¹⁾·x",
             r"\frac{\partial \mathcal{L}}{\partial w^{(1)}} = \delta^{(1)} \cdot x",
             f"{_operand(delta1)}·{_num(x)}", grad_w1),
        step("net.dL/db1", "∂L/∂b⁽¹⁾ = δ⁽¹⁾",
             r"\frac{\partial \mathcal{L}}{\partial b^{(1)}} = \delta^{(1)}", "", delta1),
    ]  # fmt: skip
    by_hand = [delta2, grad_w2, delta2, delta1, grad_w1, delta1]
    engine = _seed_network_in_wxb(x, y, w1, b1, w2, b2)
    difference = _max_difference(list(zip(by_hand, engine, strict=True)))
    labels = ["δ⁽²⁾", "∂L/∂w⁽²⁾", "∂L/∂b⁽²⁾", "δ⁽¹⁾", "∂L/∂w⁽¹⁾", "∂L/∂b⁽¹⁾"]
    both = "\n".join(
        f"{label}: by hand {_num(h)}, wxb {_num(e)}"
        for label, h, e in zip(labels, by_hand, engine, strict=True)
    )
    steps.append(
        Step(
            "net.check",
            "wxb's graph (Tensor, linear_map, add_bias, sigmoid, mse_loss) and backward()",
            "",
            difference,
            note=f"{both}\n{_agreement(difference)}",
            check=True,
            facts={
                "agree": difference <= AGREEMENT,
                "max_difference": difference,
                "engine": dict(zip(labels, engine, strict=True)),
            },
        )
    )
    intro = [
        "One input x, one hidden neuron, one output neuron; f = σ; L = ½(ŷ − y)².",
        f"x = {_num(x)}, y = {_num(y)}, w⁽¹⁾ = {_num(w1)}, b⁽¹⁾ = {_num(b1)}, "
        f"w⁽²⁾ = {_num(w2)}, b⁽²⁾ = {_num(b2)} (chosen so z⁽¹⁾ = 1).",
    ]
    return Section(
        "End to end: forward pass, loss and the four backpropagation steps", intro, steps
    )


def _latex_numbers(text: str) -> str:
    """A substituted line (plain numbers and operators) in LaTeX."""
    for plain, latex in (("·", r" \cdot "), ("−", "-"), ("½", r"\tfrac{1}{2}"), ("²", "^2")):
        text = text.replace(plain, latex)
    if "e^(" in text:  # 1/(1 + e^(−z)) → \frac{1}{1 + e^{-z}}
        exponent = text[text.index("e^(") + 3 : text.rindex("))")]
        text = rf"\frac{{1}}{{1 + e^{{{exponent}}}}}"
    return text


def _seed_network_in_wxb(
    x: float, y: float, w1: float, b1: float, w2: float, b2: float
) -> list[float]:
    """δ⁽²⁾, ∂L/∂w⁽²⁾, ∂L/∂b⁽²⁾, δ⁽¹⁾, ∂L/∂w⁽¹⁾, ∂L/∂b⁽¹⁾ from the engine's graph."""
    W1, B1 = Parameter([[w1]], dtype="float64"), Parameter([b1], dtype="float64")
    W2, B2 = Parameter([[w2]], dtype="float64"), Parameter([b2], dtype="float64")
    X = Tensor([[x]], dtype="float64")
    with enable_grad():  # (a graph to walk back, even when called inside no_grad())
        Z1 = ops.add_bias(ops.linear_map(X, W1), B1).retain_grad()
        Z2 = ops.add_bias(ops.linear_map(ops.sigmoid(Z1), W2), B2).retain_grad()
        ops.mse_loss(ops.sigmoid(Z2), [[y]]).backward()  # mean over B = 1: ½(ŷ − y)²
    return [float(t.grad.item()) for t in (Z2, W2, B2, Z1, W1, B1)]


# ---------------------------------------------------------------------------------
# A model, on a sample or a small batch
# ---------------------------------------------------------------------------------
@dataclass
class _Symbol:
    """A quantity's name as text and as LaTeX: Z⁽¹⁾ and \\mathbf{Z}^{(1)}."""

    text: str
    latex: str


def _symbol(letter: str, layer: int | None = None, bold: bool = True) -> _Symbol:
    latex = rf"\mathbf{{{letter}}}" if bold else letter
    if layer is None:
        return _Symbol(letter, latex)
    return _Symbol(f"{letter}{_sup(layer)}", rf"{latex}^{{({layer})}}")


_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def _hooked_dense(layer: Module) -> bool:
    """A Dense with forward hooks (or pre-hooks): Dense's own W·X + b runs in its call,
    and it hands on what its hooks return. Numbered W⁽ˡ⁾ as a Dense is, as the
    diagnostics and diagrams number it."""
    return not is_stock(layer, Dense) and runs_dense_forward(layer)


def _hooked_call(layer: Dense, x: Tensor) -> tuple[Tensor, Tensor, Tensor, np.ndarray]:
    """``layer(x)`` for a Dense with hooks, its own Z = W·X + b seen by a hook put first:
    (what it hands on, what W multiplied (after any pre-hooks), Z, Z's values in column
    notation as Dense computed them, before a later hook could change them in place)."""
    calls: list[tuple[Tensor, Tensor, np.ndarray]] = []
    handle = layer.register_forward_hook(
        lambda m, args, z: calls.append((args[0], z, np.array(z.data.T))), prepend=True
    )
    try:
        out = layer(x)
    finally:
        handle.remove()
    ((given, z, Z),) = calls  # (Dense's forward runs once per call)
    return out, given, z, Z


def _inner_dense_calls(layer: Module, x: Tensor) -> tuple[Tensor, list[tuple[str, Dense]]]:
    """``layer(x)``, and the Dense layers inside it whose W·X + b ran once in that call, in
    call order, by path within it (as ``diagnose`` reports them: one called twice has no
    one δ of its own, and is left out there and here)."""
    paths = {id(m): name for name, m in layer.named_modules() if name}
    inner = [m for _, m in layer.named_modules() if m is not layer and runs_dense_forward(m)]
    calls: list[Module] = []
    handles = [
        m.register_forward_hook(lambda m, a, z: calls.append(m), prepend=True) for m in inner
    ]
    try:
        out = layer(x)
    finally:
        for handle in handles:
            handle.remove()
    once = [m for m in calls if calls.count(m) == 1]  # (Module equality: identity)
    return out, [(paths[id(m)], m) for m in once]  # type: ignore[misc]


def _activation_follows(layers: list[Module], position: int) -> bool:
    """Whether another activation comes after this one before the next Dense layer."""
    for later in layers[position + 1 :]:
        if any(runs_dense_forward(m) for m in later.modules()):  # (inside a block too)
            return False
        if is_stock(later, Activation):
            return True
    return False


def _transposed(latex: str) -> str:
    r"""Aᵀ in LaTeX the way the seed writes it: \mathbf{A}^{(1)T}, or \mathbf{X}^T."""
    return latex[:-1] + "T}" if latex.endswith(")}") else latex + "^T"


def _stats(array: np.ndarray, zeros: bool) -> tuple[str, dict[str, float]]:
    values = array.astype(np.float64)
    facts = {"min": float(values.min()), "mean": float(values.mean()), "max": float(values.max())}
    if zeros:
        facts["zero_fraction"] = float(np.mean(values == 0))
    text = f"min {_num(facts['min'])}, mean {_num(facts['mean'])}, max {_num(facts['max'])}"
    if zeros:
        text += f", zeros {percent(facts['zero_fraction'])}"
    return text, facts


def _step_keys(model: Module, layers: list[Module]) -> list[str]:
    """Each layer's name for its steps' keys: its path in the model (``block1.dense1``;
    two nested Sequentials both have a dense1), with ``#2``, ``#3`` for a layer used
    again."""
    paths: dict[int, str] = {}
    for name, module in model.named_modules():
        if name:
            paths.setdefault(id(module), name)  # a layer used again: its first name
    keys, seen = [], {}
    for position, layer in enumerate(layers):
        key = paths.get(id(layer)) or layer.name or f"layer{position + 1}"
        seen[key] = seen.get(key, 0) + 1
        keys.append(key if seen[key] == 1 else f"{key}#{seen[key]}")
    return keys


def _describe(layer: Module, key: str | None = None) -> str:
    """``layer`` as a step's heading: its name (else ``key``, its path), type and widths."""
    name = layer.name or key
    use = re.search(r"#\d+$", key or "")
    if use and layer.name and not layer.name.endswith(use[0]):  # used again: as its keys
        name += use[0]
    if is_stock(layer, Dense):
        return f"{name or 'dense'}: Dense {layer.in_features}→{layer.out_features}"
    if _hooked_dense(layer):
        widths = f"{layer.in_features}→{layer.out_features}"
        return f"{name or 'dense'}: Dense {widths} with forward hooks"
    return f"{name or type(layer).__name__.lower()}: {type(layer).__name__}"


def _takes_one_input(model: Module) -> None:
    """The walk runs ``model`` on X alone: a forward that needs more inputs stopped on
    Python's 'forward() missing 1 required positional argument'."""
    try:
        signature = inspect.signature(model.forward)
    except (TypeError, ValueError):
        return  # (a forward wxb cannot read: run it and see)
    try:
        signature.bind(None)
    except TypeError:
        needed = [
            name
            for name, p in signature.parameters.items()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        raise ConfigError(
            f"explain runs {type(model).__name__} on X alone, and its forward needs "
            f"{', '.join(needed)}: the walk is for a model of one input"
        ) from None


def _refuse_lazy(model: Module) -> None:
    """A LazyLinear not called yet has no W: explain runs a copy of the model, which
    would draw one of its own, and show Z = W·X of a W the model does not hold."""
    lazy = [
        name or type(module).__name__
        for name, module in model.named_modules()
        if getattr(module, "has_uninitialized_params", lambda: False)()
    ]
    if lazy:
        raise ConfigError(
            f"explain: {', '.join(lazy)} (LazyLinear) has no W before its first call, which "
            "infers in_features: call the model once on a batch (model(X[:1])) first"
        )


def explain_model(
    model: Module,
    X: object,
    y: object = None,
    loss: str | Loss | Callable[[Tensor, object], Tensor] | None = None,
    sample_rows: int | None = 4,
    *,
    fmt: str = "text",
    probabilities: bool | None = None,
    rows_label: str | None = None,
) -> Explanation:
    """Each layer's Z = W·X + b and A = f(Z) on the first ``sample_rows`` rows of X (all
    rows if None), in column notation with shapes, FLOPs and statistics; given targets
    ``y``, the loss and the backward pass (δ⁽ˡ⁾, ∂L/∂W⁽ˡ⁾, ∂L/∂b⁽ˡ⁾) from wxb's own graph.

    Dropout is off (eval mode), so the numbers are those of a prediction. The
    model's dtype is used as is; its parameters' ``.grad`` are left as they were.
    ``loss`` defaults to the model's own (see ``scored_loss``), as wxb eval and wxb
    report score it. ``probabilities``: the model's last layer already gives
    probabilities (a Softmax before cross-entropy, a Sigmoid before binary
    cross-entropy), and L is the loss of those probabilities, as wxb eval scores them:
    computed from their logits (log p); None: so when the loss is the model's own.
    ``rows_label``: which rows of their file X holds ("rows 5–6 of data.csv"), said
    instead of "every row of X" (the command line gives X those rows alone).
    """
    _check_format(fmt)
    if sample_rows is not None and (isinstance(sample_rows, bool) or sample_rows < 1):
        raise ConfigError(f"sample_rows must be a positive integer or None; got {sample_rows!r}")
    _takes_one_input(model)
    _refuse_lazy(model)
    dtype = model.dtype
    # (sparse rows and targets dense, as fit and predict take them; of a sparse X only
    # the sample's rows, not all of X)
    total = None
    if sample_rows is not None and ops.is_sparse(X) and getattr(X, "ndim", 0) == 2:
        total, X = X.shape[0], X.tocsr()[:sample_rows]
    X, y = dense_if_sparse(X), dense_if_sparse(y)
    X = rows_by_name(getattr(model, "info", None) or {}, X, dtype)  # as predict takes them
    rows = np.asarray(X.data if isinstance(X, Tensor) else X)
    if rows.ndim == 1:  # one sample
        rows = rows.reshape(1, -1)
    total = len(rows) if total is None else total
    rows = as_features(rows[:sample_rows] if sample_rows is not None else rows, dtype)
    batch = len(rows)

    with (
        # the model from here on is its twin (frozen layers' ∂L/∂W too; the model's own
        # requires_grad and .grad untouched, whatever another thread does with it)
        gradient_twin(model) as (model, frozen),
        enable_grad(),  # a graph to walk back, even when called inside no_grad()
        model.evaluating(),
        model.gradients_set_aside() as grads,
        np.errstate(over="ignore", invalid="ignore", divide="ignore"),  # shown as inf, NaN
    ):
        layers = layers_in_order(model)
        # a forward of its own: layer by layer where it only chains them
        with sample_ids_per_row(rows.shape[1] if rows.ndim == 2 else None):  # (ids: X's)
            chain = chain_layers(model) if layers == [model] else None
        if chain is not None:
            steps = _forward_steps(chain, Tensor(rows), batch, _step_keys(model, chain))
            with no_grad():  # (seen on a sample batch: these rows must take the same path)
                if np.array_equal(steps[1].data, model(Tensor(rows)).data, equal_nan=True):
                    layers = chain
        keys = _step_keys(model, layers)
        if layers is not chain:
            steps = _forward_steps(layers, Tensor(rows), batch, keys)
        forward, output, retained, inputs, fed, logits, levels, lookups = steps
        sections = [forward]
        if y is not None:
            loss, probabilities = scored_loss(model, loss, probabilities)
            loss_fn, target = _loss_and_target(loss, y, output, total, batch)
            # The loss of p = softmax(z) (σ(z)) is the loss on z itself: softmax(z) is the
            # p whose log it takes (exactly, with no log of a p rounded to 0 or 1).
            head = head_index(layers)  # (an Identity or Dropout after it passes p on)
            probabilities = probabilities and is_stock(layers[head], Activation)
            scored = logits[head] if probabilities else output
            if computes_its_own(loss_fn) and target.shape[1:] == (1,):
                # the form it reads, decided at this call as fit decides it at its first
                # step: a probe on rows of its own called the loss once or twice more
                form = TargetForm(by_row_first=np.ndim(y) == 1)
                value = form(loss_fn, scored, target)
                target = target if form.column is not False else target[:, 0]
            else:
                value = loss_fn(scored, target)
            value.backward()
            sections += _backward_sections(
                layers, loss_fn, value, target, retained, inputs, fed, keys, grads, levels,
                probabilities, lookups,
            )  # fmt: skip
            names = (getattr(model, "info", None) or {}).get("classes") or []
            shown_y = target.ndim == 1 and target.size <= MAX_SHOWN  # the note lists y
            if shown_y and target.dtype.kind in "iu" and len(names) > 1:
                # y holds class indices, the rows of Z: which class each is, where its
                # name is not its index ('y = [2, 2]' of a model whose classes are words)
                if [str(c) for c in names] != [str(k) for k in range(len(names))]:
                    shown = sorted({int(k) for k in target if 0 <= k < len(names)})
                    sections[1].steps[0].note += "; classes " + ", ".join(
                        f"{k} = {names[k]}" for k in shown
                    )

    shown = f"the first {batch} of {total} rows of X" if batch < total else "every row of X"
    if rows_label and batch == total:  # X is those rows alone: 'every row of X' hid which
        shown = rows_label
    architecture = ", ".join(map(_describe, layers, keys))
    n = rows.shape[1]
    forward.intro = [
        f"Model: {architecture}.",
        f"dtype {dtype}; B = {batch}, {shown}; column notation: X is n×B = {n}×{batch}, "
        f"W⁽ˡ⁾ is m×n, Z⁽ˡ⁾ and A⁽ˡ⁾ are m×B.",
        "Dropout is off (eval mode). FLOPs of W·X count 2·m·n·B (a multiply and an add each).",
        *forward.intro,
    ]
    if layers == [model] and len(list(model.named_modules())) > 1:
        forward.intro.append(
            f"{type(model).__name__} has a forward of its own: it is one step here (its "
            "layers in order would compute something else), with no δ chain through it "
            "and the products inside it not in these FLOPs."
        )
    # a step that is not a stock layer (its own code, or forward hooks on a Dense) holding
    # weights: what it computes with them is its code's, not drawn as W·X + b
    opaque = [
        key
        for layer, key in zip(layers, keys, strict=True)
        if stock_kind(layer, STOCK_LAYERS) is None
        and not is_stock(layer, Embedding)  # (its lookup and ∂L/∂W shown)
        and layer.parameters()
        and layer is not model
        and not _hooked_dense(layer)  # (its W·X + b shown: said in its steps)
    ]  # (the model as one step: said above)
    if opaque:
        forward.intro.append(
            f"{', '.join(opaque)}: one step here (code of its own, or hooks on it), holding "
            "parameters: the products it computes with them are not in these FLOPs, and its "
            "∂L/∂W is not shown."
        )
    coupled = [key for layer, key in zip(layers, keys, strict=True) if couples_rows(layer)]
    if coupled:  # (a norm without running statistics): predict on more rows differs
        forward.intro.append(
            f"{', '.join(coupled)} normalise{'s' if len(coupled) == 1 else ''} by the "
            f"statistics of the batch itself: these are the numbers of these {batch} row(s) as "
            "one batch, not of each row as predict gives it among other rows."
        )
    if frozen:
        forward.intro.append(
            f"Frozen (requires_grad False): {', '.join(frozen)}; their ∂L/∂W and ∂L/∂b are "
            "shown as backward would compute them were they trainable: training's backward "
            "computes none of them (nor does summary count their FLOPs) and leaves them as "
            "they are."
        )
    return Explanation(f"wxb explain: {type(model).__name__} on {batch} sample(s)", sections, fmt)


def scored_loss(
    model: Module, loss: str | Loss | None, probabilities: bool | None = None
) -> tuple[str | Loss | None, bool]:
    """(loss, probabilities) a walk-through scores: the model's own loss when none is
    given and the model says it (its info, or a Softmax/Sigmoid head), else None
    (``_loss_and_target`` then reads y); probabilities when the head gives them and the
    loss is the model's own, unless told. One rule for wxb.explain, wxb explain and
    wxb report, so that all three show the same L for the same row."""
    head = probability_head(model)
    info = getattr(model, "info", None) or {}
    own = model_task(model)[1]
    if loss is None and (info.get("loss") or info.get("task") or head):
        if head is not None:  # its probabilities scored by the loss's name, as before
            info = {key: value for key, value in info.items() if key != "loss_options"}
        loss = trained_loss(info, own)
    if probabilities is None:
        probabilities = head is not None and loss == own
    return loss, bool(probabilities)


def _forward_steps(
    layers: list[Module], x: Tensor, batch: int, keys: list[str]
) -> tuple[
    Section,
    Tensor,
    dict[int, Tensor],
    dict[int, _Symbol],
    dict[int, np.ndarray],
    list[Tensor],
    dict[int, tuple[int, int]],
    dict[int, _Lookup],
]:
    """Run the layers one by one (keeping each Dense's Z for its δ) and describe each;
    each Dense's (l, k) by position: the l of its Z and δ, the k of its W and b; each
    Embedding's lookup by position (its rows' δ gives its ∂L/∂W)."""
    steps: list[Step] = []
    lookups: dict[int, _Lookup] = {}
    retained: dict[int, Tensor] = {}  # layer position → its Z
    fed: dict[int, np.ndarray] = {}  # layer position → the rows it read
    inputs: dict[int, _Symbol] = {}  # layer position → the symbol of what it reads
    current = _symbol("X")
    dense_index = 0
    activations = 0  # of this layer so far: A⁽ˡ⁾₁ = f(Z⁽ˡ⁾), A⁽ˡ⁾ = g(A⁽ˡ⁾₁) when stacked
    others = 0  # other steps (a norm, a custom layer) of this layer so far: H⁽ˡ⁾, H⁽ˡ⁾₂, …
    total_flops = 0
    seen: list[Tensor] = []  # what each layer reads: a probability head's logits
    numbers: dict[int, int] = {}  # a Dense's l at its first application: its W's number
    levels: dict[int, tuple[int, int]] = {}  # position → (l, k) of each Dense shown
    for position, layer in enumerate(layers):
        seen.append(x)
        key = keys[position]
        group = _describe(layer, key)
        inputs[position] = current
        hooked = _hooked_dense(layer)
        if is_stock(layer, Dense) or hooked:
            dense_index += 1
            activations = others = 0
            l = dense_index  # noqa: E741 (the seed's layer index)
            k = numbers.setdefault(id(layer), l)  # a Dense applied again: its W is W⁽ᵏ⁾ still
            levels[position] = (l, k)
            seen_symbol = current  # (a pre-hook changing its input: pre(A⁽ˡ⁻¹⁾) below)
            m, n = layer.out_features, layer.in_features
            given = x
            if hooked:  # its own Z = W·X + b, seen by a hook put first (on the twin)
                x, given, z, Z = _hooked_call(layer, x)
                if given is not seen[-1] and not np.array_equal(
                    given.data, seen[-1].data, equal_nan=True
                ):  # a pre-hook changed what W multiplies
                    current = _Symbol(f"pre({current.text})", rf"\mathrm{{pre}}({current.latex})")
                    inputs[position] = current
            else:
                z = x = layer(x)
                Z = z.data.T  # column notation: m×B
            fed[position] = given.data  # A⁽ˡ⁻¹⁾ on rows: a shared W's share of ∂L/∂W needs it
            retained[position] = z.retain_grad()
            flops = 2 * m * n * batch
            total_flops += flops
            Wsym, Zsym, bsym = _symbol("W", k), _symbol("Z", l), _symbol("b", k)
            stats, facts = _stats(Z, zeros=False)
            bias_text = f" + {bsym.text}" if layer.bias is not None else ""
            bias_latex = f" + {bsym.latex}" if layer.bias is not None else ""
            shapes = f"({m}×{n})·({n}×{batch})" + (f" + ({m})" if layer.bias is not None else "")
            steps.append(
                Step(
                    f"{key}.Z",
                    f"{Zsym.text} = {Wsym.text}·{current.text}{bias_text}",
                    shapes,
                    Z,
                    rf"{Zsym.latex} = {Wsym.latex} \cdot {current.latex}{bias_latex}",
                    shapes.replace("×", r" \times ").replace("·", r" \cdot "),
                    note=f"{Zsym.text}: {m}×{batch}; {stats}\n"
                    f"FLOPs of {Wsym.text}·{current.text}: 2·m·n·B = 2·{m}·{n}·{batch} = {flops}",
                    group=group,
                    facts={
                        "W_shape": (m, n),
                        "X_shape": (n, batch),
                        "Z_shape": (m, batch),
                        "flops": flops,
                        **facts,
                    },
                )
            )
            if inputs[position] is not seen_symbol:
                steps[-1].note += f"\n{current.text}: what {key}'s forward pre-hooks return"
            if k != l:  # (the same Parameter object keeps one name in every view)
                steps[-1].note += f"\n{Wsym.text}: {keys[layers.index(layer)]}'s, applied again"
            current = Zsym
            if hooked:  # what it hands on: what its hooks return from Z (H⁽ˡ⁾)
                others += 1
                Hsym = _symbol("H", l)
                H = np.asarray(x.data).T
                stats, facts = _stats(H, zeros=False)
                steps.append(
                    Step(
                        f"{key}.hooks",
                        f"{Hsym.text} = {key}'s forward hooks({Zsym.text})",
                        "",
                        H,
                        rf"{Hsym.latex} = \text{{{_latex_escaped(key)} hooks}}({Zsym.latex})",
                        note=f"{Hsym.text}: {_dims(H.shape)}; {stats}\n"
                        f"{key} is a Dense with forward hooks: it hands on what they return, "
                        f"not {Zsym.text}; the backward passes δ through them as recorded",
                        group=group,
                        facts={"shape": H.shape, **facts},
                    )
                )
                current = Hsym
        elif is_stock(layer, Activation):
            kernel = layer.kernel.name
            activations += 1
            Asym = _symbol("A", dense_index)
            if _activation_follows(layers, position):  # not this layer's last: A⁽ˡ⁾ₖ
                Asym = _Symbol(
                    Asym.text + str(activations).translate(_SUBSCRIPTS),
                    rf"{Asym.latex}_{{{activations}}}",
                )
            x = layer(x)
            A = x.data.T
            stats, facts = _stats(A, zeros=kernel == "relu")
            steps.append(
                Step(
                    f"{key}.A",
                    f"{Asym.text} = f({current.text}) = {kernel}({current.text})",
                    "",
                    A,
                    rf"{Asym.latex} = f({current.latex}) = \mathrm{{{kernel}}}({current.latex})",
                    note=f"{Asym.text}: {_dims(A.shape)}; {stats}",
                    group=group,
                    facts={"A_shape": A.shape, **facts},
                )
            )
            current = Asym
        elif is_stock(layer, Dropout):
            continue  # eval mode: the identity
        elif is_stock(layer, Embedding):
            # a lookup: row i of the table W for each id i (one_hot(X)·W without the zeros)
            others += 1
            Hsym = _symbol("H", dense_index)
            if others > 1:
                Hsym = _Symbol(
                    Hsym.text + str(others).translate(_SUBSCRIPTS), rf"{Hsym.latex}_{{{others}}}"
                )
            ids = np.asarray(x.data).astype(np.int64)  # (whole numbers, as fit hands them on)
            x = layer(x).retain_grad()
            lookups[position] = _Lookup(x, ids, Hsym)
            V, d = layer.num_embeddings, layer.embedding_dim
            H = x.data.T
            stats, facts = _stats(H, zeros=False)
            shapes = f"({V}×{d})[{_dims(ids.T.shape)}]"
            renorm = (
                f"; first each row looked up whose norm exceeds max_norm = {layer.max_norm} "
                "scaled to it, in W itself"
                if layer.max_norm is not None
                else ""
            )
            steps.append(
                Step(
                    f"{key}.out",
                    f"{Hsym.text} = W[{current.text}]: for each id i, row i of W",
                    shapes,
                    H,
                    rf"{Hsym.latex} = \mathbf{{W}}[{current.latex}]",
                    shapes.replace("×", r" \times "),
                    note=f"{Hsym.text}: {_dims(H.shape)}; {stats}\nW: {key}'s table, {V}×{d} "
                    f"(a row of {d} per id); no product: 0 FLOPs{renorm}",
                    group=group,
                    facts={"shape": H.shape, "W_shape": (V, d), **facts},
                )
            )
            current = Hsym
        else:
            standardize = is_stock(layer, Standardize)
            # Dense layers run inside this step (a block of one's own, a hooked Sequential):
            # each takes its l, as the diagnostics and diagrams number them
            x, inside = _inner_dense_calls(layer, x)
            named = []
            for path, dense in inside:
                dense_index += 1
                activations = others = 0
                k = numbers.setdefault(id(dense), dense_index)
                named.append(f"{key}.{path} (W{_sup(k)})")
            # H is numbered by the layer l it follows, as Z⁽ˡ⁾ and A⁽ˡ⁾ are (not by its place
            # in the list of modules, which read as a layer that does not exist: H⁽⁶⁾)
            others += not standardize
            Hsym = _Symbol("X̂", r"\hat{\mathbf{X}}") if standardize else _symbol("H", dense_index)
            if others > 1 and not standardize:  # a second one after the same Z⁽ˡ⁾: H⁽ˡ⁾₂
                Hsym = _Symbol(
                    Hsym.text + str(others).translate(_SUBSCRIPTS), rf"{Hsym.latex}_{{{others}}}"
                )
            how = f"({current.text} − mean)/scale" if standardize else f"{key}({current.text})"
            if any(is_stock(layer, kind) for kind in NORMS):
                how += " = " + normalization_text(layer, current.text, training=False)
            elif is_stock(layer, GLU) and layer.halves_rows():
                how += " = " + glu_text(current.text)
            H = x.data.T
            stats, facts = _stats(H, zeros=False)
            inner = (
                f"\n{key} runs the W·X + b of {', '.join(named)} inside (one step here)"
                if named
                else ""
            )
            steps.append(
                Step(
                    f"{key}.out",
                    f"{Hsym.text} = {how}",
                    "",
                    H,
                    rf"{Hsym.latex} = \text{{{_latex_escaped(key)}}}({current.latex})",
                    note=f"{Hsym.text}: {_dims(H.shape)}; {stats}{inner}",
                    group=group,
                    facts={"shape": H.shape, **facts},
                )
            )
            current = Hsym
    intro = [f"Forward FLOPs of the products W·X: {total_flops}."]
    section = Section("Forward pass: Z = W·X + b, A = f(Z), layer by layer", intro, steps)
    return section, x, retained, inputs, fed, seen, levels, lookups


def _loss_and_target(
    loss: str | Loss | None,
    y: object,
    output: Tensor,
    total: int,
    batch: int,
) -> tuple[Loss, np.ndarray]:
    """The loss (the default as documented on explain_model) and y checked for it."""
    target = np.asarray(numbers_from_pandas(y))  # nullable columns: numbers, as fit reads them
    if target.ndim == 0:
        target = target.reshape(1)
    if len(target) != total:
        raise DataError(f"y has {len(target)} samples but X has {total}; they must match")
    target = target[:batch]
    outputs = output.shape[1]
    if target.ndim == 2 and target.shape[1] == 1 and outputs > 1:  # class indices in a
        target = target[:, 0]  # column, as fit and evaluate take them (was: "must have shape
        # (samples, 3)")
    if loss is None:
        integer = target.dtype.kind in "iu" and target.ndim == 1
        loss = "cross_entropy" if outputs > 1 and integer else "mse"
    loss_fn = get_loss(loss)
    if stock_loss(loss_fn) is CrossEntropyLoss and target.ndim == 1:
        # rows of its ignore_index (PyTorch's -100 padding) pass, as fit takes them
        ignored = getattr(loss_fn.kernel, "ignore_index", None)
        return loss_fn, as_class_indices(target, outputs, "y", ignored)
    if computes_its_own(loss_fn):
        own = as_own_loss_targets(target, output.dtype, outputs)
        return loss_fn, own  # (the form it reads: decided at its call, as fit's)
    return loss_fn, as_targets(target, output.dtype, outputs)


_LOSS_EQUATIONS: dict[str, tuple[str, str, str]] = {
    # kernel name → (text, LaTeX, ∂L/∂ŷ as δ⁽ᴸ⁾'s first factor)
    "mse": (
        "L = (1/B)·Σᵢ ½‖ŷᵢ − yᵢ‖²",
        r"\mathcal{L} = \frac{1}{B} \sum_i \frac{1}{2} \lVert \hat{y}_i - y_i \rVert^2",
        "(Ŷ − Y)/B",
    ),
    "cross_entropy": (
        "L = −(1/B)·Σᵢ log softmax(zᵢ)[yᵢ]",
        r"\mathcal{L} = -\frac{1}{B} \sum_i \log \mathrm{softmax}(z_i)_{y_i}",
        "(softmax(Z) − Y)/B",
    ),
    "nll": (
        "L = −(1/B)·Σᵢ aᵢ[yᵢ] (a = log-probabilities)",
        r"\mathcal{L} = -\frac{1}{B} \sum_i a_{i, y_i}",
        "−Y/B",
    ),
    "l1": (
        "L = mean of |ŷ − y|",
        r"\mathcal{L} = \mathrm{mean}\,\lvert \hat{y} - y \rvert",
        "sign(Ŷ − Y)/(B·C)",
    ),
    "huber": (
        "L = mean of huber_δ(ŷ − y): ½d² for |d| ≤ δ, δ(|d| − ½δ) beyond",
        r"\mathcal{L} = \mathrm{mean}\,\mathrm{huber}_\delta(\hat{y} - y)",
        "clip(Ŷ − Y, −δ, δ)/(B·C)",
    ),
    "smooth_l1": (
        "L = mean of smooth_l1_β(ŷ − y): ½d²/β for |d| < β, |d| − ½β beyond",
        r"\mathcal{L} = \mathrm{mean}\,\mathrm{smooth}_{\ell_1,\beta}(\hat{y} - y)",
        "clip((Ŷ − Y)/β, −1, 1)/(B·C)",
    ),
    "bce_with_logits": (
        "L = mean of −[y log σ(z) + (1 − y) log(1 − σ(z))]",
        r"\mathcal{L} = -\mathrm{mean}\,[y \log \sigma(z) + (1 - y) \log(1 - \sigma(z))]",
        "(σ(Z) − Y)/(B·C)",
    ),
}

# cross-entropy with PyTorch's class options: y′ = w ⊙ ((1 − ε)·y + ε/C), a row of 0s for a
# row ignored, and the mean over W = Σᵢ w_yᵢ of the rows kept
_CLASS_OPTION_EQUATIONS: dict[str, tuple[str, str, str]] = {
    "cross_entropy": (
        "L = −(1/W)·Σᵢ Σ_c y′ᵢc log softmax(zᵢ)_c",
        r"\mathcal{L} = -\frac{1}{W} \sum_i \sum_c y'_{ic} \log \mathrm{softmax}(z_i)_c",
        "((Σ_c y′_c)·softmax(Z) − Y′)/W",
    ),
    "nll": (
        "L = −(1/W)·Σᵢ w_yᵢ·aᵢ[yᵢ]",
        r"\mathcal{L} = -\frac{1}{W} \sum_i w_{y_i} a_{i, y_i}",
        "−w_Y ⊙ Y/W",
    ),
}

# BCEWithLogitsLoss with PyTorch's weight w and pos_weight p: the plain equation above
# would name numbers that are not the ones shown (−log σ(z) = softplus(−z))
_BCE_OPTION_EQUATIONS = (
    "L = mean of w·[p·y·softplus(−z) + (1 − y)·softplus(z)]",
    r"\mathcal{L} = \mathrm{mean}\,w\,[p\,y\,\mathrm{softplus}(-z)"
    r" + (1 - y)\,\mathrm{softplus}(z)]",
    "w ⊙ ((1 + (p − 1)·Y) ⊙ σ(Z) − p·Y)/(B·C)",
)


def _class_options_used(kernel: object, target: np.ndarray) -> bool:
    """Whether a cross-entropy's weight, label smoothing or ignore_index changes its sum."""
    return (
        getattr(kernel, "weight", None) is not None
        or bool(getattr(kernel, "label_smoothing", 0.0))
        or (hasattr(kernel, "ignored_rows") and kernel.ignored_rows(target) is not None)
    )


def _backward_sections(
    layers: list[Module],
    loss_fn: Loss,
    value: Tensor,
    target: np.ndarray,
    retained: dict[int, Tensor],
    inputs: dict[int, _Symbol],
    fed: dict[int, np.ndarray],
    keys: list[str],
    grads: gradients_apart,
    levels: dict[int, tuple[int, int]],
    probabilities: bool = False,
    lookups: dict[int, _Lookup] | None = None,
) -> list[Section]:
    """The loss, then δ⁽ˡ⁾, ∂L/∂W⁽ˡ⁾ and ∂L/∂b⁽ˡ⁾ from the last Dense layer to the first.

    A parameter used at several places (a layer given twice, tied weights) gets the sum
    of its uses' gradients from backward; each place shows its own use's share."""
    batch = len(target)
    kernel = loss_fn.kernel.name if stock_loss(loss_fn) else None  # else one's own call
    name = kernel or getattr(loss_fn, "function", type(loss_fn).__name__)  # one's own
    text, latex, output_grad = _LOSS_EQUATIONS.get(kernel, (f"L = {name}(Ŷ, Y)", "", "∂L/∂Ŷ"))
    defined = ""
    if kernel in _CLASS_OPTION_EQUATIONS and _class_options_used(loss_fn.kernel, target):
        text, latex, output_grad = _CLASS_OPTION_EQUATIONS[kernel]
        defined = (
            "; y′ᵢ = w ⊙ ((1 − ε)·yᵢ + ε/C) (w = 1 without a weight)"
            if kernel == ("cross_entropy")
            else ""
        )
        defined += "; a row whose class is ignore_index counts for nothing"
        if getattr(loss_fn, "reduction", "mean") == "mean":
            probabilities_given = target.ndim == 2 and target.shape[1] > 1
            defined += "; W = B" if probabilities_given else "; W = Σ of w_yᵢ over the rows counted"
    if kernel == "bce_with_logits" and (
        loss_fn.kernel.weight is not None or loss_fn.kernel.pos_weight is not None
    ):
        text, latex, output_grad = _BCE_OPTION_EQUATIONS
        defined = "; w = weight, p = pos_weight (1 where unset), broadcast over the outputs"
    reduction = getattr(loss_fn, "reduction", "mean")
    if reduction == "sum":  # no 1/B anywhere
        text = text.replace("(1/B)·", "").replace("(1/W)·", "").replace("mean of", "sum of")
        latex = latex.replace(r"\frac{1}{B} ", "").replace(r"\frac{1}{W} ", "")
        latex = latex.replace(r"\mathrm{mean}", r"\mathrm{sum}")
        output_grad = output_grad.replace("/B", "").replace("/(B·C)", "").replace("/W", "")
    targets = f"; y = {_fmt_text(target.T)}" if target.size <= MAX_SHOWN else ""
    # a loss fit takes by name shows its options (MultiMarginLoss's p and margin)
    named = kernel or recorded_name(loss_fn)
    shown = repr(loss_fn) if named else f"{type(loss_fn).__name__}(reduction={reduction!r})"
    note = f"{shown} on B = {batch}{targets}{defined}{getattr(loss_fn, 'trained_note', '')}"
    if probabilities:
        note += (
            "; the model's last layer gives probabilities p = "
            + ("softmax(z)" if kernel == "cross_entropy" else "σ(z)")
            + ", so L, the loss of p itself as wxb eval scores it, is computed from z"
        )
    loss_step = Step("loss", text, "", value.item(), latex, note=note)
    loss_section = Section("Loss", [], [loss_step])

    dense_positions = sorted(retained)  # each Dense applied (hooked too), in order
    uses: dict[int, int] = {}  # id(parameter) → the places that may use it
    for layer in layers:  # a Dense's W inside another module (a tied decoder) counts too
        for p in layer.parameters():
            uses[id(p)] = uses.get(id(p), 0) + 1
    steps: list[Step] = []
    for rank in range(len(dense_positions) - 1, -1, -1):
        position = dense_positions[rank]
        layer: Dense = layers[position]  # type: ignore[assignment]
        # (the seed's layer index; a Dense inside a step before counts: as diagnose numbers
        # it); W⁽ᵏ⁾: its l where first applied (a Dense applied again)
        l, k = levels[position]  # noqa: E741
        m, n = layer.out_features, layer.in_features
        key = keys[position]
        group = _describe(layer, key)
        # ∂L/∂Z⁽ˡ⁾ in column notation: m×B (none: a hook's result that L does not read Z
        # through, so L does not change with Z: 0, as PyTorch's autograd leaves it)
        z = retained[position]
        delta = z.grad.T if z.grad is not None else np.zeros((m, batch), z.data.dtype)
        dsym, Zsym = _symbol("δ", l, bold=False), _symbol("Z", l)
        dsym.latex = rf"\delta^{{({l})}}"
        after = [
            lay
            for lay in layers[
                position + 1 : dense_positions[rank + 1]
                if rank + 1 < len(dense_positions)
                else None
            ]
            if not is_stock(lay, Dropout)
        ]
        equation, equation_latex, shapes = _delta_equation(
            l,
            after,
            rank == len(dense_positions) - 1,
            output_grad,
            m,
            batch,
            layers,
            dense_positions,
            probabilities,
            levels.get(dense_positions[rank + 1]) if rank + 1 < len(dense_positions) else None,
            dense_positions[rank + 1] if rank + 1 < len(dense_positions) else None,
        )
        upper = dense_positions[rank + 1] if rank + 1 < len(dense_positions) else None
        # the next Dense's pre-hook changed what its W multiplies: Wᵀ·δ is ∂L/∂pre(A), and
        # the pre-hook's own derivative stands between (it was left out of the equation)
        pre = upper is not None and inputs[upper].text.startswith("pre(")
        if _hooked_dense(layer) or pre:  # Z⁽ˡ⁾ reaches L through its hooks first
            through = [f"{key}'s forward hooks"] if _hooked_dense(layer) else []
            through += [*(_describe(x) for x in after)]
            through += [f"{keys[upper]}'s forward pre-hooks"] if pre else []
            equation, equation_latex, shapes = f"chain rule through {', '.join(through)}", "", ""
        norm = float(np.linalg.norm(delta.astype(np.float64)))
        steps.append(
            Step(
                f"{key}.delta",
                f"{dsym.text} = ∂L/∂{Zsym.text} = {equation}",
                shapes,
                delta,
                rf"{dsym.latex} = \frac{{\partial \mathcal{{L}}}}{{\partial {Zsym.latex}}}"
                + (f" = {equation_latex}" if equation_latex else ""),
                shapes.replace("×", r" \times ").replace("·", r" \cdot ").replace("⊙", r" \odot "),
                note=f"{dsym.text}: {m}×{batch}; ‖{dsym.text}‖ = {_num(norm)}",
                group=group,
                facts={"shape": (m, batch), "norm": norm},
            )
        )
        prev = inputs[position]
        # a W or b that is a buffer (register_buffer in its place) is a constant: no
        # gradient, as PyTorch's autograd gives it none
        if isinstance(layer.weight, Parameter):
            shared_W = uses[id(layer.weight)] > 1
            # δ·Aᵀ of this place alone when W is used at others too (backward summed them)
            grad_W = (
                (delta @ fed[position]).astype(delta.dtype) if shared_W else grads[layer.weight]
            )
            if grad_W is None:  # (no δ reached it: see above)
                grad_W = np.zeros((m, n), delta.dtype)
            norm_W = float(np.linalg.norm(grad_W.astype(np.float64)))
            flops = 2 * m * n * batch
            shapes_W = f"({m}×{batch})·({batch}×{n})"
            steps.append(
                Step(
                    f"{key}.dL/dW",
                    f"∂L/∂W{_sup(k)} = {dsym.text}·{prev.text}ᵀ",
                    shapes_W,
                    grad_W,
                    rf"\frac{{\partial \mathcal{{L}}}}{{\partial \mathbf{{W}}^{{({k})}}}} = "
                    rf"{dsym.latex} \cdot {_transposed(prev.latex)}",
                    shapes_W.replace("×", r" \times ").replace("·", r" \cdot "),
                    note=f"∂L/∂W{_sup(k)}: {m}×{n}; ‖∂L/∂W{_sup(k)}‖_F = {_num(norm_W)}; "
                    f"FLOPs 2·m·n·B = 2·{m}·{n}·{batch} = {flops}"
                    + (_SHARED_NOTE if shared_W else ""),
                    group=group,
                    facts={"shape": (m, n), "norm": norm_W, "flops": flops},
                )
            )
        if isinstance(layer.bias, Parameter):
            shared_b = uses[id(layer.bias)] > 1
            grad_b = delta.sum(axis=1) if shared_b else grads[layer.bias]
            if grad_b is None:
                grad_b = np.zeros(m, delta.dtype)
            norm_b = float(np.linalg.norm(grad_b.astype(np.float64)))
            steps.append(
                Step(
                    f"{key}.dL/db",
                    f"∂L/∂b{_sup(k)} = {dsym.text}·1 (Σ over the batch)",
                    f"({m}×{batch})·({batch})",
                    grad_b,
                    rf"\frac{{\partial \mathcal{{L}}}}{{\partial \mathbf{{b}}^{{({k})}}}} = "
                    rf"\sum_{{\text{{batch}}}} {dsym.latex}",
                    rf"({m} \times {batch}) \cdot ({batch})",
                    note=f"∂L/∂b{_sup(k)}: {m}; ‖∂L/∂b{_sup(k)}‖ = {_num(norm_b)}"
                    + (_SHARED_NOTE if shared_b else ""),
                    group=group,
                    facts={"shape": (m,), "norm": norm_b},
                )
            )
    for position in sorted(lookups or {}, reverse=True):  # (an Embedding: below the Denses)
        steps.append(_lookup_gradient(layers[position], keys[position], lookups[position],
                                      grads, uses))  # fmt: skip
    intro = [
        "δ⁽ˡ⁾ = ∂L/∂Z⁽ˡ⁾ and the gradients below are what loss.backward() left in wxb's graph.",
    ]
    return [loss_section, Section("Backward pass: δ⁽ˡ⁾, ∂L/∂W⁽ˡ⁾, ∂L/∂b⁽ˡ⁾", intro, steps)]


@dataclass
class _Lookup:
    """An Embedding's step: its rows (their δ kept), the ids it looked up, their symbol."""

    rows: Tensor
    ids: np.ndarray
    symbol: _Symbol


def _lookup_gradient(
    layer: Module, key: str, lookup: _Lookup, grads: gradients_apart, uses: dict[int, int]
) -> Step:
    """∂L/∂W of an Embedding's table: the δ of each row it looked up (∂L/∂H) added into
    row i of W for each id i, the padding row none (a scatter-add, not a product)."""
    V, d = layer.num_embeddings, layer.embedding_dim
    G = lookup.rows.grad
    delta = np.zeros(lookup.rows.shape, lookup.rows.data.dtype) if G is None else G
    H = lookup.symbol
    shared = uses[id(layer.weight)] > 1
    grad_W = None if shared else grads[layer.weight]
    if grad_W is None:  # this place's share alone (the weight used elsewhere too), or no δ
        grad_W = np.zeros((V, d), delta.dtype)
        np.add.at(grad_W, lookup.ids.reshape(-1), delta.reshape(-1, d))
        if layer.scale_grad_by_freq:
            grad_W /= np.maximum(np.bincount(lookup.ids.reshape(-1), minlength=V), 1)[:, None]
        if layer.padding_idx is not None:
            grad_W[layer.padding_idx] = 0
    norm = float(np.linalg.norm(np.asarray(grad_W, np.float64)))
    text = f"∂L/∂W[i] = Σ of ∂L/∂{H.text} over the rows that looked up i"
    latex = (
        r"\frac{\partial \mathcal{L}}{\partial \mathbf{W}_i} = \sum_{(b, j):\, X_{bj} = i} "
        rf"\frac{{\partial \mathcal{{L}}}}{{\partial ({H.latex})_{{bj}}}}"
    )
    notes = [f"∂L/∂W: {V}×{d}; ‖∂L/∂W‖_F = {_num(norm)}; ∂L/∂W[i] = 0 for an id i not looked up"]
    if layer.scale_grad_by_freq:
        notes.append("each row divided by how often its id is in the batch (scale_grad_by_freq)")
    if layer.padding_idx is not None:
        notes.append(f"row {layer.padding_idx} (padding_idx) takes none")
    return Step(
        f"{key}.dL/dW",
        text,
        f"({V}×{d})",
        grad_W,
        latex,
        rf"({V} \times {d})",
        note="; ".join(notes) + "; adds, no product: 0 FLOPs" + (_SHARED_NOTE if shared else ""),
        group=_describe(layer, key),
        facts={"shape": (V, d), "norm": norm},
    )


_SHARED_NOTE = (
    "; the parameter is used at other places too: this is this place's share, and the "
    "gradient backward leaves (and the optimiser steps on) is the sum of the shares"
)


def _delta_equation(
    l: int,  # noqa: E741 (the seed's layer index)
    after: list[Module],
    is_last: bool,
    output_grad: str,
    m: int,
    batch: int,
    layers: list[Module],
    dense_positions: list[int],
    probabilities: bool = False,
    upper_level: tuple[int, int] | None = None,
    upper_position: int | None = None,
) -> tuple[str, str, str]:
    """The seed's equation for δ⁽ˡ⁾, given what lies between Z⁽ˡ⁾ and the next Dense (or L):
    that one's (l, k) (its δ's l, its W's k) and position (next by rank without them)."""
    if is_last and probabilities and after:  # an Identity after the head: L never reads it
        after = after[: head_index(after) + 1]
    activation = after[0] if len(after) == 1 and is_stock(after[0], Activation) else None
    Z = f"Z{_sup(l)}"
    Z_latex = rf"\mathbf{{Z}}^{{({l})}}"
    softmax = activation is not None and activation.kernel.name == "softmax"
    log_softmax = activation is not None and activation.kernel.name == "log_softmax"
    # softmin's Jacobian is softmax's of −Z: −A ⊙ (g − Σⱼ Aⱼ·gⱼ)
    sign = "−" if activation is not None and activation.kernel.name == "softmin" else ""
    softmax = softmax or sign == "−"
    if is_last:
        if not after or (probabilities and activation is not None):
            # (with probabilities, log p's softmax (σ) is p: δ is the loss's own on Z)
            latex = _latex_words(output_grad).replace(r"(\mathbf{Z})", f"({Z_latex})")
            return output_grad.replace("(Z)", f"({Z})"), latex, ""
        if softmax:  # softmax′ is a Jacobian: A ⊙ (g − Σⱼ Aⱼ gⱼ), per column
            A, A_latex = f"A{_sup(l)}", rf"\mathbf{{A}}^{{({l})}}"
            return (
                f"{sign}{A} ⊙ (∇_A L − Σⱼ {A}ⱼ·(∇_A L)ⱼ)",
                rf"{sign and '-'}{A_latex} \odot (\nabla_{{\mathbf{{A}}}} \mathcal{{L}} - "
                rf"\textstyle\sum_j {A_latex}_j (\nabla_{{\mathbf{{A}}}} \mathcal{{L}})_j)",
                "",
            )
        if log_softmax:  # a Jacobian too: g − softmax(Z)·Σⱼ gⱼ, per column
            return (
                f"∇_A L − softmax({Z}) ⊙ Σⱼ (∇_A L)ⱼ",
                rf"\nabla_{{\mathbf{{A}}}} \mathcal{{L}} - \mathrm{{softmax}}({Z_latex}) \odot "
                rf"\textstyle\sum_j (\nabla_{{\mathbf{{A}}}} \mathcal{{L}})_j",
                "",
            )
        if activation is not None:
            f = activation.kernel.name
            return (
                f"∇_A L ⊙ {f}′({Z})",
                rf"\nabla_{{\mathbf{{A}}}} \mathcal{{L}} \odot \mathrm{{{f}}}'({Z_latex})",
                "",
            )
        return "chain rule through " + ", ".join(_describe(x) for x in after), "", ""
    if upper_position is None:
        upper_position = dense_positions[l]  # Dense l + 1
    upper = layers[upper_position]
    k = upper.out_features
    u, w = upper_level or (l + 1, l + 1)  # its δ's l, its W's number (applied again)
    W, d = f"W{_sup(w)}ᵀ", f"δ{_sup(u)}"
    W_latex = rf"\mathbf{{W}}^{{({w})T}} \cdot \delta^{{({u})}}"
    product_shapes = f"({m}×{k})·({k}×{batch})"
    if not after:
        return f"{W}·{d}", W_latex, product_shapes
    if softmax:  # a Jacobian, as above, with g = Wᵀ·δ
        A = f"A{_sup(l)}"
        return (
            f"{sign}{A} ⊙ (g − Σⱼ {A}ⱼ·gⱼ), g = {W}·{d}",
            "",
            f"{product_shapes}, ⊙ ({m}×{batch})",
        )
    if log_softmax:  # a Jacobian, as above, with g = Wᵀ·δ
        return (
            f"g − softmax({Z}) ⊙ Σⱼ gⱼ, g = {W}·{d}",
            "",
            f"{product_shapes}, ⊙ ({m}×{batch})",
        )
    if activation is not None:
        f = activation.kernel.name
        return (
            f"({W}·{d}) ⊙ {f}′({Z})",
            rf"({W_latex}) \odot \mathrm{{{f}}}'({Z_latex})",
            f"{product_shapes} ⊙ ({m}×{batch})",
        )
    return "chain rule through " + ", ".join(_describe(x) for x in after), "", ""


_LATEX_WORDS = {
    "softmax": r"\mathrm{softmax}",
    "Ŷ": r"\hat{\mathbf{Y}}",
    "Y": r"\mathbf{Y}",
    "Z": r"\mathbf{Z}",
    "σ": r"\sigma",
    "−": "-",
    "·": r" \cdot ",
}


_LATEX_SPECIAL = {c: "\\" + c for c in "#$%&_{}"} | {
    "\\": r"\textbackslash{}",
    "^": r"\textasciicircum{}",
    "~": r"\textasciitilde{}",
}


def _latex_escaped(name: str) -> str:
    """A user's name (a layer's) inside \text{…}: its special characters as characters."""
    return "".join(_LATEX_SPECIAL.get(c, c) for c in name)


def _latex_words(text: str) -> str:
    """A short formula such as (softmax(Z) − Y)/B in LaTeX, one token at a time."""
    pattern = "|".join(re.escape(word) for word in _LATEX_WORDS)
    return re.sub(pattern, lambda match: _LATEX_WORDS[match.group(0)], text)


def explain(
    model: Module | None = None,
    X: object = None,
    y: object = None,
    loss: str | Loss | Callable[[Tensor, object], Tensor] | None = None,
    sample_rows: int | None = 4,
    *,
    fmt: str = "text",
) -> Explanation:
    """``wxb.explain()``: the seed's worked examples; ``wxb.explain(model, X, y)``: that
    model on rows of X, layer by layer (see ``explain_seed`` and ``explain_model``)."""
    if model is None:
        if X is not None or y is not None:
            raise ConfigError("wxb.explain(X=...) needs a model: wxb.explain(model, X, y)")
        return explain_seed(fmt)
    if X is None:
        raise ConfigError("wxb.explain(model) needs rows to run on: wxb.explain(model, X, y)")
    return explain_model(model, X, y, loss, sample_rows, fmt=fmt)
