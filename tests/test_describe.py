"""wxb.describe: summary figures against independent arithmetic on the layer shapes, and
every Mermaid diagram against a strict grammar (the subset of Mermaid that describe emits)."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pytest
from rounding import rounding_atol

import wxb
from wxb import describe, nn, ops
from wxb.errors import ConfigError
from wxb.nn import (
    GELU,
    Dense,
    Dropout,
    Identity,
    LeakyReLU,
    Module,
    MSELoss,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Standardize,
    Tanh,
)
from wxb.nn import functional as F
from wxb.tensor import Tensor

ACTIVATIONS = [ReLU, Tanh, Sigmoid, LeakyReLU, GELU, Identity, Softmax]


# -- random models with an independent record of their shapes -----------------------------------
@dataclass
class Spec:
    """What the test built, layer by layer, to compute expectations without wxb.describe."""

    kind: str  # "dense", "activation", "dropout", "standardize"
    width_out: int
    m: int = 0
    n: int = 0
    bias: bool = False
    p: float = 0.0


@dataclass
class Built:
    model: Sequential
    specs: list[Spec]
    dtype: np.dtype
    input_width: int
    nested: int = 0
    layers: list[Module] = field(default_factory=list)


def random_model(rng: np.random.Generator, nest: bool | None = None) -> Built:
    dtype = np.dtype(rng.choice(["float32", "float64"]))
    width = n0 = int(rng.integers(1, 40))
    layers: list[Module] = []
    specs: list[Spec] = []
    if rng.random() < 0.4:
        mean, scale = rng.normal(size=width), rng.uniform(0.5, 2.0, size=width)
        layers.append(Standardize(mean, scale, dtype=dtype))
        specs.append(Spec("standardize", width))
    if rng.random() < 0.2:
        layers.append(ACTIVATIONS[rng.integers(len(ACTIVATIONS))]())
        specs.append(Spec("activation", width))
    for _ in range(int(rng.integers(1, 6))):
        m, bias = int(rng.integers(1, 40)), bool(rng.random() < 0.7)
        layers.append(Dense(width, m, bias=bias, dtype=dtype, seed=rng))
        specs.append(Spec("dense", m, m=m, n=width, bias=bias))
        width = m
        if rng.random() < 0.7:
            layers.append(ACTIVATIONS[rng.integers(len(ACTIVATIONS))]())
            specs.append(Spec("activation", width))
        if rng.random() < 0.3:
            p = float(rng.choice([0.0, 0.2, 0.5]))
            layers.append(Dropout(p, seed=rng))
            specs.append(Spec("dropout", width, p=p))
    nested = 0
    top = list(layers)
    if (rng.random() < 0.5) if nest is None else nest:
        i = int(rng.integers(0, len(layers)))
        j = int(rng.integers(i + 1, len(layers) + 1))
        top = [*layers[:i], Sequential(*layers[i:j]), *layers[j:]]
        nested = 1
    return Built(Sequential(*top), specs, dtype, n0, nested, layers)


def expected_rows(built: Built) -> list[dict]:
    """Per-layer figures from the shapes alone (the counting rules of describe's docstring)."""
    rows, trainable_before = [], False
    itemsize = built.dtype.itemsize
    for spec in built.specs:
        params = forward = training = 0
        if spec.kind == "dense":
            mn, bias = spec.m * spec.n, spec.m if spec.bias else 0
            params = mn + bias
            forward = 2 * mn + bias
            training = forward + 2 * mn + bias + (2 * mn if trainable_before else 0)
            trainable_before = True
        kept = spec.width_out * itemsize * (2 if spec.kind == "dropout" and spec.p > 0 else 1)
        rows.append(
            {
                "parameters": params,
                "forward_flops": forward,
                "training_flops": training,
                "activation_bytes": kept,
                "output_shape": (spec.width_out,),
            }
        )
    return rows


# -- summary ------------------------------------------------------------------------------------
def test_summary_counts_match_independent_arithmetic(rng: np.random.Generator) -> None:
    for _ in range(25):
        built = random_model(rng)
        batch = int(rng.integers(1, 300))
        s = describe.summary(built.model, batch_size=batch)
        expected = expected_rows(built)
        assert len(s.rows) == len(expected)
        for row, want, layer in zip(s.rows, expected, built.layers, strict=True):
            got = {key: getattr(row, key) for key in want}
            assert got == want, (row.name, built.model)
            assert row.type == type(layer).__name__
        assert s.parameters == sum(p.data.size for p in built.model.parameters())
        assert s.parameters == sum(r["parameters"] for r in expected)
        assert s.parameter_bytes == s.parameters * built.dtype.itemsize
        forward = sum(r["forward_flops"] for r in expected)
        training = sum(r["training_flops"] for r in expected)
        assert (s.forward_flops, s.training_flops) == (forward, training)
        assert s.forward_flops_per_batch == forward * batch
        assert s.training_flops_per_batch == training * batch
        assert s.activation_bytes_per_batch == sum(r["activation_bytes"] for r in expected) * batch
        assert s.rate_floor_s is None and "Rate floor" not in s.text()


def test_rate_floor_is_training_flops_per_batch_over_rate(rng: np.random.Generator) -> None:
    built = random_model(rng)
    batch, rate = int(rng.integers(1, 1000)), float(rng.uniform(1e8, 1e12))
    s = describe.summary(built.model, batch_size=batch, gemm_rate=rate)
    training = sum(r["training_flops"] for r in expected_rows(built))
    assert s.rate_floor_s == pytest.approx(training * batch / rate, rel=1e-12)
    assert "Rate floor" in s.text() and "Rate floor" in s.markdown()


def test_summary_of_a_two_layer_mlp_by_hand() -> None:
    model = Sequential(Dense(784, 256), ReLU(), Dense(256, 10))
    s = describe.summary(model, batch_size=32, gemm_rate=1e9)
    assert [r.name for r in s.rows] == ["dense1", "relu1", "dense2"]
    assert [r.output_shape for r in s.rows] == [(256,), (256,), (10,)]
    assert s.parameters == 784 * 256 + 256 + 256 * 10 + 10 == 203_530
    # dense1: W·X, +b, ∂L/∂W, ∂L/∂b (no ∂L/∂X); dense2 also ∂L/∂X
    assert s.training_flops == (4 * 784 * 256 + 2 * 256) + (6 * 256 * 10 + 2 * 10)
    assert s.rate_floor_s == pytest.approx(s.training_flops * 32 / 1e9)


def test_summary_of_a_custom_module_lists_its_submodules_in_order(rng: np.random.Generator) -> None:
    n, h, c = (int(v) for v in rng.integers(1, 30, size=3))

    class Net(Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = Dense(n, h)
            self.act = Tanh()
            self.head = Sequential(Dense(h, c, bias=False), Sigmoid())

        def forward(self, x: wxb.Tensor) -> wxb.Tensor:
            return self.head(self.act(self.encoder(x)))

    s = describe.summary(Net())
    assert [r.name for r in s.rows] == ["encoder", "act", "head.dense1", "head.sigmoid1"]
    assert [r.parameters for r in s.rows] == [n * h + h, 0, h * c, 0]
    assert s.training_flops == (4 * n * h + 2 * h) + 6 * h * c


def test_summary_tables_are_aligned_and_complete(rng: np.random.Generator) -> None:
    built = random_model(rng, nest=True)
    s = describe.summary(built.model, gemm_rate=1e10)
    text = s.text().splitlines()
    rules = [i for i, line in enumerate(text) if set(line) == {"═"}]
    assert len(rules) == 2
    table = [text[rules[0] - 1], *text[rules[0] + 1 : rules[1]]]
    assert len({len(line) for line in table}) == 1  # right-aligned columns end together
    assert len(table) == len(s.rows) + 1
    assert f"Total params: {s.parameters:,}" in s.text()
    md = s.markdown().splitlines()
    rows = [line for line in md if line.startswith("|")]
    assert len(rows) == len(s.rows) + 2
    assert len({line.count("|") for line in rows}) == 1
    for row in s.rows:
        assert row.name in s.text() and row.name in s.markdown()
    # echoed by a notebook or a REPL, as Keras prints it: the table, not the dataclass
    assert repr(s) == s.text() == str(s)


def test_summary_refuses_nonsense() -> None:
    model = Sequential(Dense(3, 2))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError):
            describe.summary(model, batch_size=bad)  # type: ignore[arg-type]
    for rate in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ConfigError):
            describe.summary(model, gemm_rate=rate)


def test_measure_gemm_rate_returns_a_rate() -> None:
    rate = describe.measure_gemm_rate("float64", size=16, repeats=1)
    assert math.isfinite(rate) and rate > 0


# -- Mermaid: a strict grammar for what describe emits -------------------------------------------
ID = r"[A-Za-z][A-Za-z0-9_]*"
LABEL = r'"([^"]*)"'
NODE_FORMS = {
    "box": re.compile(rf"({ID})\[{LABEL}\]"),
    "stadium": re.compile(rf"({ID})\(\[{LABEL}\]\)"),
    "decision": re.compile(rf"({ID})\{{{LABEL}\}}"),
}
EDGE = re.compile(rf"({ID}) -->(?:\|{LABEL}\|)? ({ID})")
SUBGRAPH = re.compile(rf"subgraph ({ID})\[{LABEL}\]")
RESERVED = {"end", "graph", "flowchart", "subgraph", "style", "class", "classdef", "click"}
RESERVED |= {"linkstyle", "default", "direction", "call", "href"}


@dataclass
class Chart:
    direction: str
    nodes: dict[str, tuple[str, str]] = field(default_factory=dict)  # id → (shape, label)
    edges: list[tuple[str, str, str | None]] = field(default_factory=list)
    subgraphs: dict[str, str] = field(default_factory=dict)

    def labels(self) -> list[str]:
        return [label for _, label in self.nodes.values()]


def check_label(label: str, line: str) -> None:
    assert label.strip(), f"empty label: {line!r}"
    assert '"' not in label
    assert "<" not in label.replace("<br>", "") and ">" not in label.replace("<br>", ""), line


def parse_mermaid(text: str) -> Chart:
    """Accept exactly: ``flowchart LR|TD``, then node definitions, edges and subgraphs."""
    assert text.endswith("\n") and not text.endswith("\n\n")
    first, *rest = text[:-1].split("\n")
    header = re.fullmatch(r"flowchart (LR|TD)", first)
    assert header, f"first line: {first!r}"
    chart, depth, declared = Chart(header.group(1)), 0, []
    for line in rest:
        assert line == line.rstrip() and line.strip(), f"blank or trailing space: {line!r}"
        body = line.strip()
        if body == "end":
            depth -= 1
            assert depth >= 0, "end without subgraph"
            continue
        if match := SUBGRAPH.fullmatch(body):
            check_label(match.group(2), line)
            chart.subgraphs[match.group(1)] = match.group(2)
            declared.append(match.group(1))
            depth += 1
            continue
        if match := EDGE.fullmatch(body):
            if match.group(2) is not None:
                check_label(match.group(2), line)
            chart.edges.append((match.group(1), match.group(3), match.group(2)))
            continue
        for shape, form in NODE_FORMS.items():
            if match := form.fullmatch(body):
                check_label(match.group(2), line)
                chart.nodes[match.group(1)] = (shape, match.group(2))
                declared.append(match.group(1))
                break
        else:
            raise AssertionError(f"not a node, edge or subgraph: {line!r}")
    assert depth == 0, "unbalanced subgraphs"
    assert len(declared) == len(set(declared)), "an id is declared twice"
    assert not {d.lower() for d in declared} & RESERVED, declared
    for source, target, _ in chart.edges:
        assert source in chart.nodes or source in chart.subgraphs, f"undefined {source}"
        assert target in chart.nodes or target in chart.subgraphs, f"undefined {target}"
    return chart


def test_the_grammar_rejects_what_mermaid_would_choke_on() -> None:
    good = 'flowchart LR\n    a1["x"]\n    b{"y"}\n    a1 -->|"3"| b\n'
    parse_mermaid(good)
    for bad in (
        'graph LR\n    a["x"]\n',
        'flowchart LR\n    a["say "hi""]\n',
        'flowchart LR\n    a["x"]\n    a --> b\n',
        'flowchart LR\n    subgraph s["g"]\n    a["x"]\n',
        'flowchart LR\n    1a["x"]\n',
        'flowchart LR\n    end["x"]\n',
        "flowchart LR\n    a[x]\n",
    ):
        with pytest.raises(AssertionError):
            parse_mermaid(bad)


def sup(index: int) -> str:
    digits = "⁰¹²³⁴⁵⁶⁷⁸⁹"
    return "⁽" + "".join(digits[int(d)] for d in str(index)) + "⁾"


def dense_specs(built: Built) -> list[Spec]:
    return [s for s in built.specs if s.kind == "dense"]


def test_architecture_diagram(rng: np.random.Generator) -> None:
    for _ in range(10):
        built = random_model(rng)
        chart = parse_mermaid(describe.architecture_diagram(built.model))
        assert chart.direction == "LR"
        dense = dense_specs(built)
        assert sum("· Dense" in label for label in chart.labels()) == len(dense)
        for index, spec in enumerate(dense, start=1):
            assert any(f"W{sup(index)} {spec.m}×{spec.n}" in x for x in chart.labels())
        assert len(chart.nodes) == len(built.specs) + 2  # input, layers, output
        assert len(chart.edges) == len(chart.nodes) - 1
        assert chart.edges[0][2] == str(built.input_width)
        assert chart.edges[-1][2] == str(built.specs[-1].width_out)
        assert len(chart.subgraphs) == built.nested


def is_single_path(chart: Chart) -> bool:
    sources = [s for s, _, _ in chart.edges]
    targets = [t for _, t, _ in chart.edges]
    starts = set(chart.nodes) - set(targets)
    return (
        len(set(sources)) == len(sources)
        and len(set(targets)) == len(targets)
        and len(starts) == 1
        and len(chart.edges) == len(chart.nodes) - 1
    )


def test_forward_diagram(rng: np.random.Generator) -> None:
    for _ in range(10):
        built = random_model(rng)
        batch = int(rng.integers(1, 500))
        chart = parse_mermaid(describe.forward_diagram(built.model, batch_size=batch))
        dense = dense_specs(built)
        products = [x for x in chart.labels() if x.startswith("W⁽") and "·A⁽" in x]
        assert len(products) == len(dense) == len(chart.subgraphs)
        for index, (spec, label) in enumerate(zip(dense, products, strict=True), start=1):
            assert label.startswith(f"W{sup(index)}·A{sup(index - 1)}")
            assert f"({spec.m}×{spec.n})·({spec.n}×{batch})" in label
            assert any(x == f"Z{sup(index)}<br>{spec.m}×{batch}" for x in chart.labels())
        biases = [x for x in chart.labels() if x.startswith("+ b⁽")]
        assert len(biases) == sum(s.bias for s in dense)
        assert is_single_path(chart)  # X → … → loss, one chain
        assert chart.edges[-1][1] == "loss"
    symbolic = parse_mermaid(describe.forward_diagram(built.model))
    assert any("×B" in x for x in symbolic.labels())


def test_backward_diagram(rng: np.random.Generator) -> None:
    for _ in range(10):
        built = random_model(rng)
        batch = int(rng.integers(1, 500))
        chart = parse_mermaid(describe.backward_diagram(built.model, batch_size=batch))
        dense = dense_specs(built)
        labels = chart.labels()
        weight_grads = [x for x in labels if x.startswith("∂L/∂W")]
        bias_grads = [x for x in labels if x.startswith("∂L/∂b")]
        propagations = [x for x in labels if x.startswith("W⁽") and "ᵀ·δ" in x]
        deltas = [x for x in labels if x.startswith("δ⁽")]
        assert len(weight_grads) == len(deltas) == len(dense) == len(chart.subgraphs)
        assert len(bias_grads) == sum(s.bias for s in dense)
        assert len(propagations) == len(dense) - 1  # not below the first layer with parameters
        for index, spec in enumerate(dense, start=1):
            assert f"∂L/∂W{sup(index)} = δ{sup(index)}·A{sup(index - 1)}ᵀ" in "\n".join(labels)
            assert f"= {spec.m}×{spec.n}" in weight_grads[len(dense) - index]
            assert deltas[len(dense) - index].endswith(f"<br>{spec.m}×{batch}")
        gradients = {i for i, (_, x) in chart.nodes.items() if x.startswith("∂L/∂")}
        assert {s for s, t, _ in chart.edges if t == "upd"} == gradients


def test_graph_diagram_has_a_node_per_op_and_an_edge_per_input(rng: np.random.Generator) -> None:
    for use_plan in (True, False):
        for _ in range(5):
            built = random_model(rng)
            built.model.use_plan = use_plan
            batch = int(rng.integers(1, 20))
            X = rng.normal(size=(batch, built.input_width)).astype(built.dtype)
            target = rng.normal(size=(batch, built.specs[-1].width_out)).astype(built.dtype)
            loss = MSELoss()(built.model(X), target)
            nodes = wxb.graph(loss)
            for model in (None, built.model):
                chart = parse_mermaid(describe.graph_diagram(loss, model))
                assert len(chart.nodes) == len(nodes)
                assert len(chart.edges) == sum(len(n.inputs) for n in nodes)
                for node in nodes:
                    shape = "×".join(map(str, node.shape)) if node.shape else "scalar"
                    assert chart.nodes[f"t{node.id}"][1].endswith(f"<br>{shape}")
                    assert node.op in chart.nodes[f"t{node.id}"][1]
            named = parse_mermaid(describe.graph_diagram(loss, built.model)).labels()
            for name, _ in built.model.named_parameters():
                assert sum(x.startswith(f"parameter {name}<br>") for x in named) == 1


def test_names_with_quotes_and_markup_stay_inside_labels() -> None:
    model = Sequential(Dense(4, 3, name='say "hi" <b>#1;</b>'), ReLU(), Dense(3, 2))
    for text in (
        describe.architecture_diagram(model),
        describe.forward_diagram(model, 8),
        describe.backward_diagram(model, 8),
    ):
        parse_mermaid(text)
        assert "#quot;" in text


def test_summary_counts_the_training_flops_a_frozen_layer_really_costs(rng):
    """What the planned backward does: no ∂L/∂W, ∂L/∂b for frozen parameters, and no
    ∂L/∂X below the first trainable layer."""
    from wxb.nn import Dense, ReLU, Sequential

    n, h, c = (int(v) for v in rng.integers(2, 9, size=3))
    model = Sequential(Dense(n, h), ReLU(), Dense(h, c))
    for p in model[0].parameters():
        p.requires_grad = False
    rows = describe.summary(model).rows
    first, second = rows[0], rows[2]
    assert first.training_flops == first.forward_flops == 2 * h * n + h
    assert second.training_flops == (2 * c * h + c) + (2 * c * h + c)  # forward, ∂L/∂W and b
    model[0].bias.requires_grad = True  # a trainable bias below: ∂L/∂X of layer 2 is needed
    rows = describe.summary(model).rows
    assert rows[0].training_flops == (2 * h * n + h) + h
    assert rows[2].training_flops == 2 * (2 * c * h + c) + 2 * c * h


@pytest.mark.parametrize(
    ("value", "shown"),
    [(999_651, "1 M"), (999.4, "999 "), (1_234_567, "1.23 M"), (999_499, "999 k")],
)
def test_si_rounds_before_it_chooses_the_prefix(value, shown):
    # 999,651 FLOP printed as '1e+03 kFLOP'
    assert describe._si(value) == shown


def test_bytes_and_seconds_round_before_they_choose_the_unit(rng):
    mib = 2**20
    assert describe._bytes(mib - 16) == "1.0 MiB"  # was '1024.0 KiB'
    assert describe._bytes(1023) == "1023 B"
    kib = int(rng.integers(2, 1000))
    assert describe._bytes(kib * 1024) == f"{kib}.0 KiB"
    assert describe._seconds(0.0009996) == "1 ms"  # was '1e+03 µs'
    assert describe._seconds(0.9996) == "1 s"


@pytest.mark.parametrize(
    ("fraction", "decimals", "shown"),
    [(2559 / 2560, 1, ">99.9%"), (1 / 3000, 1, "<0.1%"), (1.0, 1, "100.0%"), (0.0, 0, "0%"),
     (0.996, 0, ">99%"), (0.25, 0, "25%")],
)  # fmt: skip
def test_a_share_never_rounds_to_none_or_all_when_it_is_not(fraction, decimals, shown):
    assert describe.percent(fraction, decimals) == shown


def test_the_table_stage_shows_numbers_as_they_read_back(rng):
    from wxb.columns import TableEncoder
    from wxb.tables import from_object

    price = rng.integers(1_000_000, 2_000_000, 30) + 0.75  # 1234999.75 was '1.235e+06'
    price[0] = np.nan
    encoder = TableEncoder.fit(from_object({"price": price}), ["price"])
    (line,) = encoder.describe()
    fill = float(line.split("missing → ")[1].split()[0])
    assert fill == encoder.rules[0].fill == float(np.nanmedian(price))


def test_stage_numbers_read_back_as_the_values_they_show(rng):
    # 2**31 in a float64 model printed as 2147483600 (float32's digits), 1234567.125 as
    # 1234567.1; a float32 value prints in float32's shortest digits (13.16)
    from wxb.columns import _number_text

    wide = [float(2**31), 1234567.125, *(round(float(v), int(k)) for v, k in
            zip(rng.normal(scale=1e6, size=50), rng.integers(0, 4, 50), strict=True))]  # fmt: skip
    for value in wide:
        assert float(_number_text(value)) == value, value
    for value in rng.normal(scale=100, size=50).astype(np.float32):
        text = _number_text(value)
        assert np.float32(float(text)) == value, (value, text)
        digits = text.lstrip("-").replace(".", "").lstrip("0")  # significant ones only
        assert len(digits) <= 10, text  # not its float64 digits (-0.0014611214 has 8)


def test_backward_diagram_draws_no_gradient_for_frozen_parameters(rng: np.random.Generator):
    # a frozen layer was drawn with its ∂L/∂W and the chain went on below it
    widths = [int(w) for w in rng.integers(2, 9, size=4)]
    model = Sequential(*[Dense(a, b) for a, b in itertools.pairwise(widths)])
    model[0].weight.requires_grad = model[0].bias.requires_grad = False
    model[1].weight.requires_grad = False  # its bias still learns
    text = describe.backward_diagram(model)
    assert "∂L/∂W⁽¹⁾" not in text and "∂L/∂b⁽¹⁾" not in text and "Layer 1" not in text
    assert "∂L/∂W⁽²⁾" not in text and "∂L/∂b⁽²⁾" in text
    assert "∂L/∂W⁽³⁾" in text and "W⁽³⁾ᵀ·δ⁽³⁾" in text
    assert "W⁽²⁾ᵀ·δ⁽²⁾" not in text  # nothing below layer 2 learns
    for p in model.parameters():
        p.requires_grad = False
    assert "nothing to learn" in describe.backward_diagram(model)


def test_backward_diagram_of_frozen_dense_layers_and_a_module_that_learns(rng):
    # "nothing to learn" was drawn while a module of the user's own still learned
    class Scale(Module):
        def __init__(self):
            super().__init__()
            self.gain = wxb.nn.Parameter(np.ones(1))

        def forward(self, x):
            return x * self.gain

    model = Sequential(Dense(3, 4), ReLU(), Dense(4, 2), Scale())
    for layer in (model[0], model[2]):
        for p in layer.parameters():
            p.requires_grad = False
    text = describe.backward_diagram(model)
    assert "nothing to learn" not in text
    assert "δ⁽¹⁾" in text and "∂L/∂W⁽¹⁾" not in text and "∂L/∂W⁽²⁾" not in text


def test_graph_diagram_shows_standardized_rows_as_an_input_feeding_the_first_product(
    rng: np.random.Generator,
) -> None:
    # (X − μ)/σ needs no gradient, so its op is not recorded: the diagram drew "⊙" as an
    # operation with nothing coming in, and no input at all
    n, k, batch = (int(v) for v in rng.integers(2, 6, size=3))
    model = Sequential(
        Standardize(rng.normal(size=n), rng.uniform(0.5, 2, size=n)), Dense(n, k), ReLU()
    )
    X = rng.normal(size=(batch, n)).astype(np.float32)
    loss = MSELoss()(model(X), rng.normal(size=(batch, k)).astype(np.float32))
    chart = parse_mermaid(describe.graph_diagram(loss, model))
    targets = {t for _, t, _ in chart.edges}
    for node_id, (_, label) in chart.nodes.items():
        if not label.startswith(("input", "parameter")):
            assert node_id in targets, label  # every operation has what it reads
    inputs = [i for i, (_, x) in chart.nodes.items() if x.startswith("input")]
    assert [x for i, (_, x) in chart.nodes.items() if i in inputs] == [
        f"input (from ⊙)<br>{batch}×{n}"
    ]


def test_a_module_of_ones_own_over_several_layers_does_not_chain_widths_it_cannot_see(
    rng: np.random.Generator,
) -> None:
    # registered head first, used last: the diagram said "Input 8 features" for a model
    # taking 3, chained the head's 2 outputs into the body, and the summary said nothing
    # (a forward that only chains them, relu between, is drawn: see below; × 2 is not)
    from wxb.nn import Module

    n, hidden, k = (int(v) for v in rng.integers(2, 9, size=3))

    class Net(Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = Dense(hidden, k)
            self.body = Dense(n, hidden)

        def forward(self, x):
            return self.head(ops.relu(self.body(x)) * 2.0)

    model = Net()
    assert model(rng.normal(size=(2, n)).astype(np.float32)).shape == (2, k)
    chart = parse_mermaid(describe.architecture_diagram(model))
    assert chart.nodes["in0"][1].endswith("<br>? features")
    assert all(label is None for _, _, label in chart.edges)  # no width it cannot know
    summary = describe.summary(model)
    text = summary.text()
    # listed as the sample batch first called them (body, then head), not as registered
    assert "in the order a sample batch first called them" in text
    assert "Net" in text.splitlines()[-1]
    assert [row.name for row in summary.rows] == ["body", "head"]

    class Leaf(Module):  # a layer of one's own inside a Sequential: the order is known
        def forward(self, x):
            return x

    plain = Sequential(Dense(n, hidden), Leaf(), Dense(hidden, k))
    assert "registration order" not in describe.summary(plain).text()
    nodes = parse_mermaid(describe.architecture_diagram(plain)).nodes
    assert nodes["in0"][1].endswith(f"<br>{n} features")
    assert nodes["res0"][1].endswith(f"<br>{k} outputs")


FUNCTIONAL = {  # the stock activation layers as a forward applies them itself
    ReLU: lambda layer: F.relu,
    Tanh: lambda layer: F.tanh,
    Sigmoid: lambda layer: F.sigmoid,
    Softmax: lambda layer: F.softmax,
    GELU: lambda layer: lambda x: F.gelu(x, layer.kernel.approximate),
    LeakyReLU: lambda layer: lambda x: F.leaky_relu(x, layer.kernel.negative_slope),
}


class _OwnForward(Module):
    """A module of one's own whose forward only chains its layers, as PyTorch code writes
    one: the layers as attributes under their names (as a Sequential of them lists them),
    registered in a shuffled order, called in order (``x = layer(x)``); with
    ``functional``, the stock activations applied in the forward itself
    (``F.relu(self.fc1(x))``) instead of held."""

    def __init__(
        self, layers: list[Module], rng: np.random.Generator, functional: bool = False
    ) -> None:
        super().__init__()
        self.program: list[str | Callable] = []
        for layer in layers:
            make = FUNCTIONAL.get(type(layer)) if functional else None
            self.program.append(layer.name if make is None else make(layer))
        for k in rng.permutation(len(layers)):
            if isinstance(self.program[k], str):
                setattr(self, layers[k].name, layers[k])

    def forward(self, x):
        for step in self.program:
            x = getattr(self, step)(x) if isinstance(step, str) else step(x)
        return x


def test_a_forward_of_ones_own_that_only_chains_its_layers_is_described_as_a_sequential(
    rng: np.random.Generator,
) -> None:
    # fc2(act(fc1(x))) in a Module of one's own: the summary showed ? widths and counted
    # ∂L/∂X in registration order, and the forward and backward diagrams were refused
    for _ in range(12):
        built = random_model(rng, nest=False)
        layers = built.layers
        chained = _OwnForward(layers, rng)
        batch = int(rng.integers(1, 300))
        s = describe.summary(chained, batch_size=batch)
        expected = expected_rows(built)
        assert [row.name for row in s.rows] == [layer.name for layer in layers]
        for row, want in zip(s.rows, expected, strict=True):
            assert {key: getattr(row, key) for key in want} == want, (row.name, chained)
        assert s.unknown_order == [] and "registration order" not in s.text()
        assert "listed as its forward called them on a sample batch" in s.text()
        assert describe.unknown_order(chained) == [] and describe.call_mismatch(chained) is None
        # with layers frozen, as the Sequential of the same layers in call order counts them
        for layer in layers:
            if isinstance(layer, Dense) and rng.random() < 0.4:
                layer.requires_grad_(False)
        plain = Sequential(*layers)
        ours, theirs = describe.summary(chained, batch), describe.summary(plain, batch)
        assert ours.rows == theirs.rows and ours.totals() == theirs.totals()
        for draw in (describe.forward_diagram, describe.backward_diagram):
            assert draw(chained, batch) == draw(plain, batch)
        assert describe.architecture_diagram(chained) == describe.architecture_diagram(plain)


def test_a_chain_the_sample_batch_cannot_show_keeps_its_layers_in_registration_order(
    rng: np.random.Generator,
) -> None:
    n, h, k = (int(v) for v in rng.integers(2, 9, size=3))

    class Branchy(Module):  # Dropout only while training: the eval-mode sample skips it
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.drop, self.fc2 = Dense(n, h), Dropout(0.5), Dense(h, k)

        def forward(self, x):
            x = self.fc1(x)
            return self.fc2(self.drop(x) if self.training else x)

    model = Branchy()
    assert model(rng.normal(size=(3, n)).astype(np.float32)).shape[0] == 3
    assert describe.unknown_order(model) == [type(model).__name__]
    assert "in the order a sample batch first called them" in describe.summary(model).text()
    with pytest.raises(ConfigError, match="whose order wxb cannot see"):
        describe.forward_diagram(model)

    class Interleaved(Module):  # one chain through two Sequentials' layers in turn: they
        def __init__(self) -> None:  # hold layers, never run, so it is drawn as it runs
            super().__init__()
            self.a = Sequential(Dense(n, h), Dense(h, h))
            self.b = Sequential(ReLU(), Tanh())

        def forward(self, x):
            return self.b[1](self.a[1](self.b[0](self.a[0](x))))

    model = Interleaved()
    ran = ["a.dense1", "b.relu1", "a.dense2", "b.tanh1"]
    assert [r.name for r in describe.summary(model).rows] == ran
    assert describe.unknown_order(model) == [] and "tanh(Z⁽²⁾)" in describe.forward_diagram(model)


def test_a_chained_forward_through_a_sequential_and_a_head_registered_first_is_drawn(
    rng: np.random.Generator,
) -> None:
    n, h, k = (int(v) for v in rng.integers(2, 20, size=3))

    class Net(Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = Dense(h, k, name="head")
            self.body = Sequential(Dense(n, h, name="fc"), Tanh(name="act"), name="body")

        def forward(self, x):
            return self.head(self.body(x))

    model = Net()
    plain = Sequential(model.body, model.head)  # the same layers under the same paths
    batch = int(rng.integers(1, 100))
    ours, theirs = describe.summary(model, batch), describe.summary(plain, batch)
    assert [r.name for r in ours.rows] == ["body.fc", "body.act", "head"]
    assert ours.rows == theirs.rows and ours.totals() == theirs.totals()
    chart = parse_mermaid(describe.architecture_diagram(model))
    assert chart.nodes["in0"][1].endswith(f"<br>{n} features")
    assert chart.nodes["res0"][1].endswith(f"<br>{k} outputs")
    assert [label for _, _, label in chart.edges] == [str(n), str(h), str(h), str(k)]
    assert describe.architecture_diagram(model) == describe.architecture_diagram(plain)
    for draw in (describe.forward_diagram, describe.backward_diagram):
        assert draw(model, batch) == draw(plain, batch)


def test_one_activation_module_called_after_each_layer_is_drawn_once_per_call(
    rng: np.random.Generator,
) -> None:
    # self.act = ReLU() applied after fc1 and after fc2, PyTorch-style: a chain all the same
    n, h1, h2, k = (int(v) for v in rng.integers(2, 20, size=4))
    kind = ACTIVATIONS[rng.integers(len(ACTIVATIONS))]

    class Net(Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc3 = Dense(h2, k, name="fc3")
            self.act = kind()
            self.fc1, self.fc2 = Dense(n, h1, name="fc1"), Dense(h1, h2, name="fc2")

        def forward(self, x):
            return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))

    model = Net()
    if rng.random() < 0.5:
        model.fc1.requires_grad_(False)
    plain = Sequential(model.fc1, model.act, model.fc2, model.act, model.fc3)
    batch = int(rng.integers(1, 100))
    ours, theirs = describe.summary(model, batch), describe.summary(plain, batch)
    assert [(r.name, r.call, r.calls) for r in ours.rows][1::2] == [("act", 1, 2), ("act", 2, 2)]
    assert [replace(r, name="") for r in ours.rows] == [replace(r, name="") for r in theirs.rows]
    assert ours.totals() == theirs.totals() and describe.call_mismatch(model) is None
    assert describe.architecture_diagram(model) == describe.architecture_diagram(plain)
    for draw in (describe.forward_diagram, describe.backward_diagram):
        assert draw(model, batch) == draw(plain, batch)


def test_activations_a_forward_applies_itself_are_drawn_and_counted_as_their_layers(
    rng: np.random.Generator,
) -> None:
    # x = F.relu(self.fc1(x)); …: the diagrams were refused ("does more than hand each
    # layer's result to the next") and the summary had ? widths and no activation rows
    for _ in range(12):
        built = random_model(rng, nest=False)
        model = _OwnForward(built.layers, rng, functional=True)
        plain = Sequential(*built.layers)
        for layer in built.layers:
            if isinstance(layer, Dense) and rng.random() < 0.3:
                layer.requires_grad_(False)
        batch = int(rng.integers(1, 300))
        ours, theirs = describe.summary(model, batch), describe.summary(plain, batch)
        applied = [type(x) in FUNCTIONAL for x in built.layers]
        assert [r.name.endswith("()") for r in ours.rows] == applied
        assert [replace(r, name="") for r in ours.rows] == [
            replace(r, name="") for r in theirs.rows
        ]
        assert ours.totals() == theirs.totals() and ours.unknown_order == []
        assert describe.call_mismatch(model) is None
        assert describe.architecture_diagram(model) == describe.architecture_diagram(plain)
        for draw in (describe.forward_diagram, describe.backward_diagram):
            assert draw(model, batch) == draw(plain, batch)
        assert all(p.grad is None for p in model.parameters())  # the sample run's graph


def test_a_forward_that_chains_otherwise_on_another_batch_is_no_chain(
    rng: np.random.Generator, tmp_path
) -> None:
    # a branch on the batch size: a ReLU on the sample's 2 rows, a tanh on others; the
    # chain seen on one batch would be exported, converted and drawn for every batch
    import wxb.interop
    import wxb.onnx

    n, h = (int(v) for v in rng.integers(2, 9, size=2))

    class BySize(Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2 = Dense(n, h), Dense(h, 2)

        def forward(self, x):
            z = self.fc1(x)
            return self.fc2(F.relu(z) if len(x.data) == 2 else F.tanh(z))

    model = BySize()
    assert describe.chain_layers(model) is None and describe.unknown_order(model) == ["BySize"]
    with pytest.raises(ConfigError, match="whose order wxb cannot see"):
        describe.forward_diagram(model)
    with pytest.raises(ConfigError, match=r"BySize.*takes the values of a result \(\.data\)"):
        wxb.onnx.export(model, tmp_path / "model.onnx")  # (traced: the branch it cannot see)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="no PyTorch twin"):
        wxb.interop.to_torch(model)


def test_an_activation_is_drawn_in_the_container_whose_forward_applies_it(
    rng: np.random.Generator,
) -> None:
    n, h, k = (int(v) for v in rng.integers(2, 20, size=3))

    class Block(Module):  # F.relu inside its own forward
        def __init__(self, n: int, h: int) -> None:
            super().__init__()
            self.fc = Dense(n, h)

        def forward(self, x):
            return F.relu(self.fc(x))

    class Body(Module):  # F.tanh after its Sequential, in its own forward
        def __init__(self) -> None:
            super().__init__()
            self.inner = Sequential(Dense(h, h, name="fc"))

        def forward(self, x):
            return F.tanh(self.inner(x))

    class Net(Module):
        def __init__(self) -> None:
            super().__init__()
            self.out, self.body, self.block = Dense(h, k), Body(), Block(n, h)

        def forward(self, x):
            return F.sigmoid(self.out(self.body(self.block(x))))

    model = Net()
    names = [r.name for r in describe.summary(model, 8).rows]
    assert names == ["block.fc", "block.relu()", "body.inner.fc", "body.tanh()", "out", "sigmoid()"]
    within: dict[str, str | None] = {}  # each node's first label line → its subgraph
    titles: list[str] = []
    for line in describe.architecture_diagram(model).splitlines()[1:]:
        line = line.strip()
        if line.startswith("subgraph"):
            titles.append(line.split('["', 1)[1].split('"]')[0])
        elif line == "end":
            titles.pop()
        elif '"' in line and "-->" not in line:
            within[line.split('"')[1].split("<br>")[0]] = titles[-1] if titles else None
    assert within["relu"] == "block · Block" and within["tanh"] == "body · Body"
    assert (
        within["sigmoid"] is None and within["body.inner.fc · Dense"] == "body.inner · Sequential"
    )
    assert "sigmoid(Z⁽³⁾)" in describe.forward_diagram(model, 4)


def test_a_forward_that_refuses_a_graph_is_still_counted_without_one(
    rng: np.random.Generator,
) -> None:
    n, h = (int(v) for v in rng.integers(2, 20, size=2))

    class NoGraph(Module):  # runs only without a graph (as code that writes in place)
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2 = Dense(n, h), Dense(h, h)

        def forward(self, x):
            if wxb.is_grad_enabled():
                raise RuntimeError("no graph here")
            return self.fc2(F.relu(self.fc1(x)))

    with wxb.no_grad():
        s = describe.summary(NoGraph())
    assert s.calls_counted and [r.calls for r in s.rows] == [1, 1]
    assert s.unknown_order == ["NoGraph"]  # relu between, unseen without a graph
    with pytest.raises(ConfigError, match="whose order wxb cannot see"):
        describe.forward_diagram(NoGraph())


def test_a_loop_over_a_module_list_is_drawn_as_the_chain_it_runs(rng: np.random.Generator) -> None:
    # for layer in self.hidden: x = F.relu(layer(x)) — the ModuleList's layers are called
    # apart, with the forward's relu between: refused ("runs their own forward")
    sizes = [int(v) for v in rng.integers(1, 12, size=int(rng.integers(3, 6)))]
    blocks = bool(rng.random() < 0.5)

    class Block(Module):
        def __init__(self, n: int, m: int) -> None:
            super().__init__()
            self.fc = Dense(n, m)

        def forward(self, x):
            return F.tanh(self.fc(x))

    class MLP(Module):
        def __init__(self) -> None:
            super().__init__()
            pairs = list(itertools.pairwise(sizes[:-1]))
            kind = Block if blocks else Dense
            self.hidden = nn.ModuleList([kind(a, b) for a, b in pairs])
            self.head = Dense(sizes[-2], sizes[-1], name="head")

        def forward(self, x):
            for layer in self.hidden:
                x = layer(x) if blocks else F.relu(layer(x))
            return self.head(x)

    model = MLP()
    hidden = [m.fc if blocks else m for m in model.hidden]
    act = Tanh if blocks else ReLU
    plain = Sequential(*[x for layer in hidden for x in (layer, act())], model.head)
    batch = int(rng.integers(1, 50))
    ours, theirs = describe.summary(model, batch), describe.summary(plain, batch)
    inner = "hidden.{}.fc" if blocks else "hidden.{}"
    names = [inner.format(k) for k in range(len(hidden))]
    assert [r.name for r in ours.rows][::2] == [*names, "head"]
    assert [replace(r, name="") for r in ours.rows] == [replace(r, name="") for r in theirs.rows]
    assert ours.unknown_order == [] and describe.call_mismatch(model) is None
    for draw in (describe.forward_diagram, describe.backward_diagram):
        text = draw(model, batch)
        for k, name in enumerate(names):
            text = text.replace(f"Layer {k + 1}: {name}", f"Layer {k + 1}: {hidden[k].name}")
        assert text == draw(plain, batch)
    chart = describe.architecture_diagram(model)
    assert ("subgraph" in chart) == blocks  # a Block's call is a group; a ModuleList's is not


# -- models off the stock path (a hunt of the diagrams against what backward computes) --
class Swish(nn.Activation):
    """An Activation subclass with a forward of its own: x·σ(x), not σ."""

    def __init__(self):
        super().__init__(ops.Sigmoid())

    def forward(self, x):
        return x * ops.sigmoid(x)


class Scale(nn.Module):
    """A layer of one's own that learns, before the first Dense."""

    def __init__(self, n):
        super().__init__()
        self.s = nn.Parameter(np.ones(n))

    def forward(self, x):
        return x * self.s


class Residual(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.inner = nn.Dense(n, n)
        self.outer = nn.Dense(n, n)

    def forward(self, x):
        return x + self.outer(nn.functional.relu(self.inner(x)))


def test_stacked_activations_differentiate_at_what_they_were_given(rng):
    model = nn.Sequential(nn.Dense(4, 3), nn.Sigmoid(), nn.Tanh(), nn.Dense(3, 2)).to("float64")
    text = describe.backward_diagram(model, 5)
    assert "tanh′(sigmoid(Z⁽¹⁾))" in text and "sigmoid′(Z⁽¹⁾)" in text
    assert "tanh′(Z⁽¹⁾)" not in text
    # the drawn factors, multiplied, give the gradient backward computes
    X = rng.standard_normal((5, 4))
    dense = model[0]
    Z = X @ dense.weight.data.T + dense.bias.data
    S = 1 / (1 + np.exp(-Z))
    loss = (model(Tensor(X)) ** 2).sum() / 2
    loss.backward()
    upstream = model(Tensor(X)).data @ model[3].weight.data  # ∂L/∂A⁽¹⁾ for L = ½‖A‖²
    factor = (1 - np.tanh(S) ** 2) * S * (1 - S)  # in (0, 1/4]
    delta = upstream * factor
    # an entry of δᵀX sums 5 rows of δ·x, and δ's upstream sums 2 products, either of
    # which can cancel near 0: backward's order differs there by the rounding of those
    # terms and of δ's ~6 factors
    up_terms = np.abs(model(Tensor(X)).data) @ np.abs(model[3].weight.data)
    atol = rounding_atol((up_terms * factor).T @ np.abs(X), 2 + 5 + 6)
    np.testing.assert_allclose(delta.T @ X, dense.weight.grad, rtol=1e-10, atol=atol)


def test_a_subclass_with_its_own_forward_is_drawn_as_itself():
    model = nn.Sequential(nn.Dense(4, 5), Swish(), nn.Dense(5, 2))
    for text in (
        describe.architecture_diagram(model),
        describe.forward_diagram(model, 3),
        describe.backward_diagram(model, 3),
    ):
        assert "sigmoid" not in text and "swish1 · Swish" in text


def test_the_order_diagrams_refuse_a_forward_of_ones_own():
    model = nn.Sequential(nn.Dense(3, 3), Residual(3), nn.Dense(3, 2))
    for draw in (describe.forward_diagram, describe.backward_diagram):
        with pytest.raises(ConfigError, match="graph_diagram"):
            draw(model)
    assert "Dense" in describe.architecture_diagram(model)  # drawn, without widths it cannot know


def test_a_layer_that_learns_before_the_first_dense_gets_its_gradient_drawn(rng):
    model = nn.Sequential(Scale(4), nn.Dense(4, 3), nn.ReLU(), nn.Dense(3, 2)).to("float64")
    text = describe.backward_diagram(model, 5)
    assert "W⁽¹⁾ᵀ·δ⁽¹⁾" in text and "∂L/∂scale1.s" in text
    loss = (model(Tensor(rng.standard_normal((5, 4)))) ** 2).sum()
    loss.backward()
    assert model[0].s.grad is not None  # as drawn: backward reaches it


def test_a_first_layer_of_ones_own_leaves_the_input_width_unknown():
    class FirstFour(nn.Module):
        def forward(self, x):
            return x[:, :4]

    model = nn.Sequential(FirstFour(), nn.Dense(4, 2))
    assert "? features" in describe.architecture_diagram(model)


@pytest.mark.parametrize("name", ["`block", "$$W$$", "$$$cost$$$", "a&amp;b"])
def test_names_mermaid_would_read_as_markup_are_escaped(name):
    model = nn.Sequential(nn.Dense(4, 4, name=name), nn.Dense(4, 2))
    text = describe.architecture_diagram(model)
    label = next(line for line in text.splitlines() if "lay1[" in line)
    assert "`" not in label and "$$" not in label and "&amp;" not in label


# -- a layer a forward of one's own calls more than once (tied weights) -------------------------
# Each case: the layers by name, as (in, out) from widths n, h, c, and a forward over them
# (L: the layers by name, r: relu, k: a loop's count) that wxb and torch models both run.
def _twice(L, r, x, k):
    return L["fc"](r(L["fc"](x)))


def _loop(L, r, x, k):
    x = r(L["inp"](x))
    for _ in range(k):
        x = r(L["fc"](x))
    return L["out"](x)


def _branches(L, r, x, k):
    a = r(L["inp"](x))
    return L["out"](L["shared"](a) + L["shared"](r(a)))


REUSED = {
    "twice": (lambda n, h, c: {"fc": (h, h)}, _twice),
    "loop": (lambda n, h, c: {"inp": (n, h), "fc": (h, h), "out": (h, c)}, _loop),
    "branches": (lambda n, h, c: {"inp": (n, h), "shared": (h, h), "out": (h, c)}, _branches),
}


class Reusing(Module):
    """Dense layers called by ``program``; in a ModuleList with ``listed``."""

    def __init__(self, shapes, program, k, dtype, listed=False):
        super().__init__()
        dense = [Dense(n, m, dtype=dtype) for n, m in shapes.values()]
        if listed:
            self.layers = nn.ModuleList(dense)
        else:
            for name, layer in zip(shapes, dense, strict=True):
                setattr(self, name, layer)
        self.names, self.program, self.k, self.listed = list(shapes), program, k, listed

    def forward(self, x):
        layers = self.layers if self.listed else [getattr(self, n) for n in self.names]
        return self.program(dict(zip(self.names, layers, strict=True)), ops.relu, x, self.k)


def reused_case(rng, case, listed=False):
    """The wxb model, its layers' shapes, the names it calls in order, and its input width."""
    n, h, c = (int(v) for v in rng.integers(1, 40, size=3))
    k = int(rng.integers(2, 5))
    shapes_of, program = REUSED[case]
    shapes = shapes_of(n, h, c)
    calls: list[str] = []  # the program run on names alone: which layer, in what order

    def record(name):
        return lambda x: calls.append(name) or x

    program({name: record(name) for name in shapes}, lambda x: x, 0, k)
    dtype = rng.choice(["float32", "float64"])
    model = Reusing(shapes, program, k, dtype, listed)
    width = next(iter(shapes.values()))[0]
    assert model(rng.normal(size=(3, width))).shape[0] == 3  # it runs
    return model, shapes, calls, width


def _called(row, names):
    """The layer a row is of, by its name in the case (a ModuleList's: by index)."""
    last = row.name.rsplit(".", 1)[-1]
    return names[int(last)] if last.isdigit() else last


@pytest.mark.parametrize(("case", "listed"), [*((c, False) for c in REUSED), ("loop", True)])
def test_summary_counts_a_reused_layer_once_per_call(rng, case, listed):
    # the forward's second call of a layer was not counted: FLOPs and the floor too low
    model, shapes, calls, _ = reused_case(rng, case, listed)
    batch = int(rng.integers(1, 300))
    s = describe.summary(model, batch_size=batch, gemm_rate=1e9)
    forward = training = 0
    for i, name in enumerate(calls):  # from the shapes, per call (only the first reads X)
        n, m = shapes[name]
        forward += 2 * m * n + m  # W·X, +b
        training += 2 * (2 * m * n + m) + (2 * m * n if i > 0 else 0)  # ∂L/∂W, ∂L/∂b, ∂L/∂X
    assert (s.forward_flops, s.training_flops) == (forward, training)
    assert s.rate_floor_s == pytest.approx(training * batch / 1e9, rel=1e-12)
    # a row per call, as torchinfo's; the parameters once (shared): call 1's row, the total
    got = sorted((_called(r, list(shapes)), r.call, r.calls) for r in s.rows)
    assert got == sorted(
        (x, k, calls.count(x)) for x in set(calls) for k in range(1, calls.count(x) + 1)
    )
    assert (
        s.parameters
        == sum(r.parameters for r in s.rows)
        == sum(m * n + m for n, m in shapes.values())
    )
    _, body = s.cells()
    for row, cells in zip(s.rows, body, strict=True):
        if row.calls > 1:
            assert cells[0].endswith(f", call {row.call} of {row.calls}")
            assert (cells[2] == "(shared)") == (row.call > 1)


@pytest.mark.parametrize("case", sorted(REUSED))
def test_summary_flops_of_a_reused_layer_agree_with_torch(rng, case):
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    model, shapes, calls, width = reused_case(rng, case)
    batch = int(rng.integers(1, 64))
    linear = torch.nn.ModuleDict({name: torch.nn.Linear(n, m) for name, (n, m) in shapes.items()})
    with FlopCounterMode(display=False) as forward:
        out = model.program(linear, torch.relu, torch.randn(batch, width), model.k)
    with FlopCounterMode(display=False) as backward:
        out.sum().backward()
    s = describe.summary(model, batch_size=batch)
    # torch counts the products only: summary's +b and ∂L/∂b (m each per call) taken out
    bias = batch * sum(shapes[name][1] for name in calls)
    assert s.forward_flops_per_batch - bias == forward.get_total_flops()
    total = forward.get_total_flops() + backward.get_total_flops()
    assert s.training_flops_per_batch - 2 * bias == total


@pytest.mark.parametrize("uses", [1, 2, 3])
def test_a_layer_held_under_two_names_is_counted_once_per_call(rng, uses):
    # self.a = self.b = fc: the sample run wrapped the twin's fc once per name, so each
    # call counted twice (FLOPs 2×; "called 4 times" for two calls)
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    n = int(rng.integers(1, 30))

    class Twice(Module):
        def __init__(self, layer):
            super().__init__()
            self.a = self.b = layer

        def forward(self, x):
            for k in range(uses):
                x = (self.a if k % 2 == 0 else self.b)(x)
            return x

    model = Twice(Dense(n, n))
    linear = torch.nn.Linear(n, n)  # the mirror: the same calls of one torch layer
    batch = int(rng.integers(1, 64))
    with FlopCounterMode(display=False) as forward:
        x = torch.randn(batch, n)
        for _ in range(uses):
            x = linear(x)
    s = describe.summary(model, batch_size=batch)
    assert s.forward_flops_per_batch - uses * batch * n == forward.get_total_flops()
    assert sum(1 for r in s.rows if r.forward_flops) == uses


def test_a_summary_runs_the_forward_and_leaves_the_model_as_it_was(rng):
    model, _, calls, width = reused_case(rng, "loop")
    X = rng.normal(size=(5, width))
    before = model.predict(X)
    model.out.forward = own = model.out.forward  # one set on the instance stays
    s = describe.summary(model)
    assert all("forward" not in vars(m) for m in (model, model.inp, model.fc))
    assert vars(model.out)["forward"] is own
    np.testing.assert_array_equal(model.predict(X), before)
    # (out's forward, set on the instance, is its own code: its W·X is an "own code" row)
    layer_rows = [r for r in s.rows if not r.name.startswith("own code")]
    assert s.calls_counted and len(layer_rows) == len(calls)


def test_a_layer_never_called_costs_nothing_and_a_forward_that_cannot_run_says_so(rng):
    n, m = (int(v) for v in rng.integers(1, 40, size=2))

    class Unused(Module):
        def __init__(self):
            super().__init__()
            self.used, self.spare = Dense(n, m), Dense(n, m)

        def forward(self, x):
            return self.used(x)

    s = describe.summary(Unused())
    assert [(r.name, r.call) for r in s.rows] == [("used", 1), ("spare", 0)]
    assert s.rows[1].forward_flops == s.rows[1].training_flops == 0
    assert s.parameters == 2 * (n * m + m) and "spare (Dense), not called" in s.text()

    class TwoInputs(Module):
        def __init__(self):
            super().__init__()
            self.a = Dense(n, m)

        def forward(self, x, y):
            return self.a(x) + self.a(y)

    s = describe.summary(TwoInputs())  # no sample batch runs it: a counted once, and said so
    assert not s.calls_counted and len(s.rows) == 1
    assert "did not run on a sample batch" in s.text()


# -- the chained diagrams of a layer called other than once (one registered layer) -------------
# A container with one layer and no parameters of its own is not "of unknown order", so the
# forward and backward diagrams drew it, as one application, whatever its forward did with it.
def _loop_one(fc, r, x, k):
    for _ in range(k):
        x = r(fc(x))
    return x


ONE_LAYER = {  # (the layer, relu, x, a loop's count k) → the output
    "once": lambda fc, r, x, k: fc(x),
    "twice": lambda fc, r, x, k: fc(r(fc(x))),
    "loop": _loop_one,
    "never": lambda fc, r, x, k: r(x),  # a layer skipped (switched off, left for later)
}


class OneLayer(Module):
    """One registered Dense (h×h; in a ModuleList with ``listed``), called by ``program``."""

    def __init__(self, h, program, k, dtype, listed=False):
        super().__init__()
        if listed:
            self.layers = nn.ModuleList([Dense(h, h, dtype=dtype)])
        else:
            self.fc = Dense(h, h, dtype=dtype)
        self.program, self.k, self.listed = program, k, listed

    def forward(self, x):
        return self.program(self.layers[0] if self.listed else self.fc, ops.relu, x, self.k)


def one_layer_case(rng, case, listed):
    """The model, its layer's path, and how many times one forward calls it: the program
    run on a stub that records its calls (no wxb in the count)."""
    h, k = int(rng.integers(1, 40)), int(rng.integers(2, 6))
    program = ONE_LAYER[case]
    called: list[int] = []
    program(lambda x: called.append(1) or x, lambda x: x, 0, k)
    model = OneLayer(h, program, k, rng.choice(["float32", "float64"]), listed)
    assert model(rng.normal(size=(3, h))).shape == (3, h)  # it runs
    return model, "layers.0" if listed else "fc", len(called)


def _layer_label(text, path):
    (label,) = [
        label for _, label in parse_mermaid(text).nodes.values() if label.startswith(f"{path} ·")
    ]
    return label


@pytest.mark.parametrize("listed", [False, True])
@pytest.mark.parametrize("case", ["twice", "loop", "never"])
def test_the_chained_diagrams_refuse_a_layer_its_forward_calls_other_than_once(rng, case, listed):
    # fc(relu(fc(x))) was drawn as one Dense: the second call and the relu between left out
    model, path, count = one_layer_case(rng, case, listed)
    assert count != 1 and describe.unknown_order(model) == []
    said = {0: "never", 2: "twice"}.get(count, f"{count} times")
    for draw in (describe.forward_diagram, describe.backward_diagram):
        with pytest.raises(ConfigError, match="graph_diagram") as refused:
            draw(model, int(rng.integers(1, 9)))
        assert f"'{path}' {said}" in str(refused.value)
    # the architecture (what the model holds) is drawn, the layer with its calls
    label = _layer_label(describe.architecture_diagram(model), path)
    assert label.endswith(
        "not called by the forward" if count == 0 else f"called ×{count} per forward"
    )
    assert describe.call_mismatch(model) is not None
    assert all("forward" not in vars(m) for _, m in model.named_modules())  # left as it was


@pytest.mark.parametrize("listed", [False, True])
def test_a_layer_called_once_is_still_drawn_and_a_sequential_listing_a_layer_twice_too(rng, listed):
    model, path, count = one_layer_case(rng, "once", listed)
    assert count == 1
    h = model.layers[0].in_features if listed else model.fc.in_features
    assert f"Layer 1: {path}" in describe.forward_diagram(model, 3)
    assert "∂L/∂W⁽¹⁾" in describe.backward_diagram(model, 3)
    assert _layer_label(describe.architecture_diagram(model), path).endswith(
        f"{h * h + h:,} parameters"
    )
    # Sequential's forward runs its list in order: a layer listed twice is drawn twice
    d = Dense(h, h, dtype=model.dtype)
    twice = Sequential(d, ReLU(), d)
    text = describe.forward_diagram(twice, 3)
    assert "Layer 1:" in text and "Layer 2:" in text
    assert "called ×" not in describe.architecture_diagram(twice)
    assert describe.call_mismatch(model) is None and describe.call_mismatch(twice) is None


ONE_CALL_AND_MORE = {  # the layer called once, with an operation of the forward's own
    "after": lambda fc, r, x, k: r(fc(x)) * 2.0,  # relu(fc(x)) was drawn as fc alone
    "before": lambda fc, r, x, k: fc(x * 2.0),
    "residual": lambda fc, r, x, k: fc(x) + x,
}


@pytest.mark.parametrize("listed", [False, True])
@pytest.mark.parametrize("case", list(ONE_CALL_AND_MORE))
def test_the_chained_diagrams_refuse_a_forward_that_does_more_than_call_its_layer(
    rng, case, listed
):
    h, dtype = int(rng.integers(1, 40)), rng.choice(["float32", "float64"])
    model = OneLayer(h, ONE_CALL_AND_MORE[case], 1, dtype, listed)
    assert describe.unknown_order(model) == []
    for draw in (describe.forward_diagram, describe.backward_diagram):
        with pytest.raises(ConfigError, match="does more than hand each layer's result") as no:
            draw(model, int(rng.integers(1, 9)))
        assert "graph_diagram" in str(no.value)
    assert describe.call_mismatch(model) is not None
    assert all("forward" not in vars(m) for _, m in model.named_modules())  # left as it was


def test_a_forward_that_only_runs_its_sequential_is_drawn_and_one_that_adds_to_it_is_not(rng):
    n, h, c = (int(v) for v in rng.integers(1, 30, size=3))

    class Wrapped(Module):
        def __init__(self, then=None):
            super().__init__()
            self.body = Sequential(Dense(n, h), ReLU(), Dense(h, c))
            self.then = then

        def forward(self, x):
            out = self.body(x)
            return out if self.then is None else self.then(out)

    plain = Wrapped()
    assert describe.call_mismatch(plain) is None
    text = describe.forward_diagram(plain, 3)
    assert "Layer 1: body.dense1" in text and "Layer 2: body.dense2" in text
    assert "∂L/∂W⁽²⁾" in describe.backward_diagram(plain, 3)
    scaled = Wrapped(then=lambda out: out * 2.0)  # an operation the forward adds
    with pytest.raises(ConfigError, match="does more than hand"):
        describe.forward_diagram(scaled, 3)
    squashed = Wrapped(then=ops.sigmoid)  # an activation it adds: drawn after the body
    assert "sigmoid(Z⁽²⁾)" in describe.forward_diagram(squashed, 3)
    assert [r.name for r in describe.summary(squashed).rows][-1] == "sigmoid()"


def test_the_chained_diagrams_refuse_a_forward_whose_calls_could_not_be_counted(rng):
    h = int(rng.integers(1, 40))

    class TwoInputs(Module):  # one layer, called on each input: no sample batch runs it
        def __init__(self):
            super().__init__()
            self.fc = Dense(h, h)

        def forward(self, x, y):
            return self.fc(x) + self.fc(y)

    model = TwoInputs()
    for draw in (describe.forward_diagram, describe.backward_diagram):
        with pytest.raises(ConfigError, match="did not run on a sample batch"):
            draw(model)
    assert "fc · Dense" in describe.architecture_diagram(model)


# -- summary's sample run leaves nothing a later run would see ---------------------------------
class _Noisy(Module):
    """Draws in eval mode too: F.dropout from wxb's default generator (as MC dropout), noise
    from a generator it holds and from NumPy's global one; a Dropout layer in a Sequential
    that the forward calls twice (summary runs the forward to count that)."""

    def __init__(self, n, h, c):
        super().__init__()
        self.inp = Dense(n, h)
        self.hidden = Sequential(Dense(h, h), ReLU(), Dropout(0.25))
        self.out = Dense(h, c)
        self.noise = np.random.default_rng(int(wxb.random.as_generator(None).integers(2**31)))

    def forward(self, x):
        a = ops.relu(self.inp(x))
        a = self.hidden(nn.functional.dropout(a, 0.3))
        a = self.hidden(a + Tensor(self.noise.standard_normal(a.shape).astype(a.data.dtype)))
        a = a + Tensor(np.random.standard_normal(a.shape).astype(a.data.dtype))
        return self.out(a)


def _trained(seed, n, h, c, X, y, summarize, how):
    wxb.manual_seed(seed)
    np.random.seed(seed)
    model = _Noisy(n, h, c)
    if summarize:
        s = describe.summary(model)
        assert s.calls_counted and [r.calls for r in s.rows if r.name == "hidden.dense1"] == [2, 2]
        assert model.training  # back in train mode
    if how == "fit":  # shuffles from wxb's default generator (no seed given)
        wxb.fit(model, X, y, epochs=2, batch_size=8, optimizer="sgd", lr=0.05, verbose=False)
    else:
        step = wxb.make_step(
            model, nn.CrossEntropyLoss(), wxb.optim.SGD(model.parameters(), lr=0.05)
        )
        for i in range(0, len(X), 8):
            step(X[i : i + 8], y[i : i + 8])
    return [p.data.copy() for p in model.parameters()]


@pytest.mark.parametrize("how", ["fit", "step"])
def test_training_after_a_summary_is_bit_for_bit_training_without_one(rng, how):
    # the sample run drew from wxb's default generator (and the model's own and NumPy's):
    # the masks, noise and shuffles of training after summary() were others
    n, h, c = (int(v) for v in rng.integers(1, 20, size=3))
    c += 1
    X = rng.normal(size=(int(rng.integers(16, 40)), n)).astype(np.float32)
    y = rng.integers(0, c, size=len(X))
    seed = int(rng.integers(2**31))
    without = _trained(seed, n, h, c, X, y, False, how)
    after = _trained(seed, n, h, c, X, y, True, how)
    for a, b in zip(without, after, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_summary_leaves_every_generator_where_it_was_however_the_forward_ends(rng):
    model = _Noisy(*(int(v) for v in rng.integers(1, 20, size=3)))
    with wxb.random.drawing_from(np.random.default_rng(int(rng.integers(2**31)))) as local:
        held = [wxb.random.as_generator(None), local, model.noise]
        before = [g.bit_generator.state for g in held], np.random.get_state()[1].copy()
        for look in ("summary", "call_mismatch", "architecture_diagram"):
            getattr(describe, look)(model)  # each runs the forward on a sample batch
            assert [g.bit_generator.state for g in held] == before[0], look
            np.testing.assert_array_equal(np.random.get_state()[1], before[1])

    class Fails(_Noisy):  # draws, then fails at every width
        def forward(self, x):
            nn.functional.dropout(x, 0.5)
            self.noise.standard_normal(3)
            raise ValueError("not this input")

    model = Fails(*(int(v) for v in rng.integers(1, 20, size=3)))
    model.train()
    held = [wxb.random.as_generator(None), model.noise]
    before = [g.bit_generator.state for g in held]
    assert not describe.summary(model).calls_counted
    assert [g.bit_generator.state for g in held] == before
    assert model.training and all("forward" not in vars(m) for _, m in model.named_modules())
