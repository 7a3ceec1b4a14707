"""The summary and diagrams of a model of one's own whose forward starts with an
Embedding: its sample forward runs on integer ids, so the products after the lookup are
counted (on its B·L rows), the layers listed as the forward calls them, and the FLOPs are
torch's FlopCounterMode's for the same model (products; the +b and ∂L/∂b by hand). And a
Bilinear's ∂L/∂x2, counted where x2 itself needs a gradient."""

import numpy as np
import pytest

import wxb
import wxb.nn.functional as F
from wxb.errors import ConfigError
from wxb.nn import Bilinear, Dense, Embedding, Module, Parameter

torch = pytest.importorskip("torch")


def _torch_flops(fn):
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


class _MeanThenLinear(Module):  # F.linear(emb(ids).mean(1), w): the lookup's mean, d wide
    def __init__(self, vocab, d, out, rng):
        super().__init__()
        self.emb = Embedding(vocab, d)
        self.w = Parameter(rng.normal(size=(out, d)))

    def forward(self, ids):
        return F.linear(self.emb(ids).mean(1), self.w)


class _FlatThenDense(Module):  # fc(emb(ids).flatten(1)), fc registered first: L·d pins L
    def __init__(self, vocab, d, length, out, rng):
        super().__init__()
        self.fc = Dense(length * d, out)
        self.emb = Embedding(vocab, d)

    def forward(self, ids):
        return self.fc(self.emb(ids).flatten(1))


class _EveryRow(Module):  # F.linear on every looked-up row: B·L rows of the product
    def __init__(self, vocab, d, out, rng):
        super().__init__()
        self.w = Parameter(rng.normal(size=(out, d)))
        self.b = Parameter(rng.normal(size=out))
        self.emb = Embedding(vocab, d)

    def forward(self, ids):
        return F.linear(self.emb(ids), self.w, self.b).sum(1)


def _torch_twin(kind, model):
    """The same model in torch (float64, the same weights), as a function of ids."""
    p = {k: torch.tensor(v.data, requires_grad=v.requires_grad)
         for k, v in model.named_parameters()}  # fmt: skip
    emb = p["emb.weight"]
    if kind == "mean":
        return lambda ids: torch.nn.functional.linear(
            torch.nn.functional.embedding(ids, emb).mean(1), p["w"]
        )
    if kind == "flat":
        return lambda ids: torch.nn.functional.linear(
            torch.nn.functional.embedding(ids, emb).flatten(1), p["fc.weight"], p["fc.bias"]
        )
    return lambda ids: torch.nn.functional.linear(
        torch.nn.functional.embedding(ids, emb), p["w"], p["b"]
    ).sum(1)


def _build(kind, vocab, d, length, out, rng):
    if kind == "mean":
        return _MeanThenLinear(vocab, d, out, rng).double()
    if kind == "flat":
        return _FlatThenDense(vocab, d, length, out, rng).double()
    return _EveryRow(vocab, d, out, rng).double()


def _biases(kind, model, length, out):
    """What torch's FlopCounterMode leaves out: +b (forward) and ∂L/∂b, a sample."""
    if kind == "mean":
        return 0, 0
    per = out if kind == "flat" else out * length  # every row of the L gets + b
    bias = model.fc.bias if kind == "flat" else model.b
    return per, per * (1 + bias.requires_grad)


@pytest.mark.parametrize("kind", ["mean", "flat", "every_row"])
def test_summary_of_a_forward_taking_ids_counts_torchs_flops(seeded, kind):
    """The sample run fed float rows, which the Embedding refuses: the products after the
    lookup went uncounted ('?', or 0), the layers were listed as registered (fc before
    emb) and the Embedding's rows (?, d). Now it feeds ids (seq_len of them a row, or
    as many as a Dense taking them flat says): FLOPs per batch are torch's, the
    Embedding first with its (L, d) rows."""
    rng = seeded.rng
    vocab, d, length, out = (int(v) for v in rng.integers(2, 12, size=4))
    B = int(rng.integers(1, 9))
    model = _build(kind, vocab, d, length, out, rng)
    frozen = bool(rng.integers(2))  # a frozen Embedding: nothing before the product learns
    model.emb.weight.requires_grad = not frozen
    where = seeded.msg(f"{kind} V={vocab} d={d} L={length} out={out} B={B} frozen={frozen}")

    # the flat model's Dense says L; the others take it from seq_len
    if rng.integers(2):  # max_norm renorms the rows looked up in place: not the sample's
        model.emb.max_norm = float(rng.uniform(0.1, 0.5))
    weights = model.emb.weight.data.copy()
    given = {} if kind == "flat" else {"seq_len": length}
    summary = wxb.describe.summary(model, batch_size=B, **given)
    assert np.array_equal(model.emb.weight.data, weights), where
    text = summary.text()
    names = [row.name for row in summary.rows]
    assert names[0] == "emb" and len(names) == 2, where + f" {names}\n{text}"
    assert summary.rows[0].output_shape == (length, d), where + f"\n{text}"
    assert not any(row.flops_unknown for row in summary.rows), where + f"\n{text}"
    assert "did not run" not in text and "not counted" not in text, where + f"\n{text}"
    assert "a default" not in text, where + f"\n{text}"

    ids = torch.tensor(rng.integers(0, vocab, size=(B, length)))
    twin = _torch_twin(kind, model)

    def forward():
        with torch.no_grad():
            twin(ids)

    def step():
        twin(ids).sum().backward()

    plus_b, training_b = _biases(kind, model, length, out)
    assert summary.forward_flops_per_batch == _torch_flops(forward) + B * plus_b, where
    assert summary.training_flops_per_batch == _torch_flops(step) + B * training_b, where


def test_the_default_number_of_ids_is_named_and_counted(seeded):
    """With no seq_len and nothing in the model saying L, the sample batch holds a
    default number of ids a row: the summary names it under the table and counts the
    products as torch does on rows of that many ids. seq_len must be a positive integer."""
    rng = seeded.rng
    vocab, d, out = (int(v) for v in rng.integers(2, 12, size=3))
    B = int(rng.integers(1, 9))
    model = _build("every_row", vocab, d, None, out, rng)
    summary = wxb.describe.summary(model, batch_size=B)
    default = wxb.describe.SAMPLE_IDS
    text = summary.text()
    where = seeded.msg(f"V={vocab} d={d} out={out} B={B}\n{text}")
    assert f"the sample batch held {default} ids a row, a default" in text, where
    assert "summary(seq_len=L)" in text, where
    assert summary.rows[0].output_shape == (default, d), where
    ids = torch.tensor(rng.integers(0, vocab, size=(B, default)))
    twin = _torch_twin("every_row", model)
    plus_b, training_b = _biases("every_row", model, default, out)

    def forward():
        with torch.no_grad():
            twin(ids)

    def step():
        twin(ids).sum().backward()

    assert summary.forward_flops_per_batch == _torch_flops(forward) + B * plus_b, where
    assert summary.training_flops_per_batch == _torch_flops(step) + B * training_b, where
    for bad in (0, -3, True, 2.5, "8"):
        with pytest.raises(ConfigError, match="seq_len"):
            wxb.describe.summary(model, seq_len=bad)


def test_diagram_and_model_summary_list_the_embedding_first(seeded):
    """architecture_diagram chained fc into emb (registration order) for
    fc(emb(ids).flatten(1)); it now draws them as a sample batch first called them, and
    model.summary(seq_len=…) takes the data's length as summary does."""
    from test_describe import parse_mermaid

    rng = seeded.rng
    vocab, d, length, out = (int(v) for v in rng.integers(2, 12, size=4))
    model = _build("flat", vocab, d, length, out, rng)
    chart = parse_mermaid(wxb.describe.architecture_diagram(model))
    order = [target for _, target, _ in chart.edges]
    titles = [chart.nodes[node][1].split("<br>")[0] for node in order[:-1]]
    assert titles == ["emb · Embedding", "fc · Dense"], seeded.msg(f"{chart.edges} {titles}")
    mean = _build("mean", vocab, d, length, out, rng)
    s = mean.summary(batch_size=3, gemm_rate=1e9, seq_len=length)
    assert s.rows[0].output_shape == (length, d), seeded.msg(s.text())


class _TwoInputs(Module):
    def __init__(self, n, i1, i2, o, through_first):
        super().__init__()
        self.fc = Dense(n, i1 if through_first else i2)
        self.bl = Bilinear(i1, i2, o)
        self.through_first = through_first

    def forward(self, x):  # one input through fc (it needs a gradient), the other raw
        if self.through_first:
            return self.bl(self.fc(x), x)
        return self.bl(x, self.fc(x))


def test_bilinear_counts_the_gradient_of_x2_only_where_x2_needs_one(seeded):
    """The sample run recorded only a layer's first argument, so the summary took x2's
    need of a gradient as x1's: bl(fc(x), x) counted ∂L/∂x2 (2·o·i2 a row), which the
    backward never computes (x is the batch), and bl(x, fc(x)) counted none. Now x2's
    need is its own: the Dense row is torch's FlopCounterMode's, the Bilinear's by hand,
    and the engine's backward computes ∂L/∂x2 exactly where the summary counts it."""
    rng = seeded.rng
    n, o = (int(v) for v in rng.integers(2, 9, size=2))
    i1 = i2 = n  # the raw input goes into the Bilinear too
    B = int(rng.integers(1, 9))
    through_first = bool(rng.integers(2))
    model = _TwoInputs(n, i1, i2, o, through_first).double()
    where = seeded.msg(f"n={n} o={o} B={B} through_first={through_first}")

    called = []
    einsum = np.einsum

    def spy(subscripts, *operands, **kw):
        called.append(subscripts)
        return einsum(subscripts, *operands, **kw)

    X = rng.normal(size=(B, n))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(np, "einsum", spy)
        y = model(wxb.Tensor(X))
        y.backward(np.ones_like(y.data))
    computes_x1 = "no,oij,nj->ni" in called
    computes_x2 = "no,noj->nj" in called
    assert (computes_x1, computes_x2) == (through_first, not through_first), where + str(called)

    fc = torch.nn.Linear(n, model.fc.out_features).double()
    with torch.no_grad():
        fc.weight.copy_(torch.tensor(model.fc.weight.data))
        fc.bias.copy_(torch.tensor(model.fc.bias.data))

    def step():  # torch counts the Linear's products (none for its bilinear)
        fc(torch.tensor(X)).sum().backward()

    forward = 2 * o * i2 * (i1 + 1) + o
    backward = 2 * o * i1 * i2 + o  # ∂L/∂W, ∂L/∂b
    backward += 2 * o * i1 * (i2 + 1) if through_first else 2 * o * i2
    fc_bias = 2 * model.fc.out_features  # + b, ∂L/∂b
    summary = wxb.describe.summary(model, batch_size=B)
    assert summary.training_flops_per_batch == _torch_flops(step) + B * (
        forward + backward + fc_bias
    ), where + f"\n{summary.text()}"
