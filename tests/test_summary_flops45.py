"""summary() counts the products a forward of one's own computes with its parameters.

``h = F.relu(x @ self.w1.T)``, ``F.linear(x, W, b)``, ``wxb.einsum``, ``bmm``: the table
listed only the stock layers, and its FLOPs, per sample, per batch and in the rate floor,
left these products out ("not counted (?)"). They are counted now from the graph of the
sample batch the summary runs. Every expected figure here is worked out from the shapes
(2·m·n·p a product, +m a bias; training adds ∂ for each operand that needs a gradient),
and checked against torch's FlopCounterMode where torch computes the same products.
"""

import itertools

import numpy as np
import pytest

import wxb
import wxb.nn.functional as F
from wxb import describe
from wxb.nn import Dense, Module, Parameter, ReLU, Sequential

NOTE = "parameters held for the forward's own code"
STYLES = ("linear", "matmul_t", "matmul", "einsum", "mm")


def _plan(rng):
    """Layers of a functional net: (style, n, m, bias, W trainable, b trainable, repeat)."""
    widths = [int(w) for w in rng.integers(1, 12, size=int(rng.integers(2, 5)))]
    plan = []
    for n, m in itertools.pairwise(widths):
        style = str(rng.choice(STYLES))
        if style == "einsum" and n == 1:  # torch's einsum computes a sum over one index
            style = "linear"  # of size 1 as a broadcast product, which it counts as 0
        bias = bool(rng.integers(2)) and style != "mm"
        plan.append((style, n, m, bias, bool(rng.integers(3)), bool(rng.integers(3))))
    repeat = int(rng.integers(len(plan)))  # a square layer used twice: its weight twice
    return plan, repeat


class Functional(Module):
    """The plan as a forward of one's own: x @ W.T, F.linear, einsum, mm; F.relu between."""

    def __init__(self, plan, repeat, rng):
        super().__init__()
        self.plan, self.repeat = plan, repeat
        for i, (style, n, m, bias, w_learns, b_learns) in enumerate(plan):
            shape = (n, m) if style == "matmul" else (m, n)
            w = Parameter(rng.standard_normal(shape).astype(np.float32))
            w.requires_grad = w_learns
            setattr(self, f"w{i}", w)
            if bias:
                b = Parameter(rng.standard_normal(m).astype(np.float32))
                b.requires_grad = b_learns
                setattr(self, f"b{i}", b)
        last = plan[-1][2]
        self.square = Parameter(rng.standard_normal((last, last)).astype(np.float32))
        self.square.requires_grad = bool(rng.integers(2))

    def forward(self, x, lib=None):
        f = lib or _WXB
        for i, (style, *_) in enumerate(self.plan):
            w, b = getattr(self, f"w{i}"), getattr(self, f"b{i}", None)
            if lib is not None:
                w, b = lib.params[f"w{i}"], lib.params.get(f"b{i}")
            x = f.layer(style, x, w, b)
            x = f.relu(x)
        square = self.square if lib is None else lib.params["square"]
        for _ in range(2):  # one parameter, two products
            x = f.layer("matmul_t", x, square, None)
        return x


class _Ops:
    def __init__(self, module, einsum, params=None):
        self.m, self.einsum, self.params = module, einsum, params

    def relu(self, x):
        return self.m.relu(x)

    def layer(self, style, x, w, b):
        if style == "linear":
            return self.m.linear(x, w, b)
        if style == "matmul_t":
            z = x @ w.T
        elif style == "matmul":
            z = x @ w
        elif style == "einsum":
            z = self.einsum("bi,oi->bo", x, w)
        else:
            z = x.mm(w.t())
        return z if b is None else z + b


_WXB = _Ops(F, wxb.einsum)


def _expected(plan, square_learns):
    """(forward, training) FLOPs per sample, from the shapes: each product 2nm, +b m;
    training: ∂W (2nm) and ∂b (m) where they learn, ∂X (2nm) where a parameter before
    (this use's input's graph) learns."""
    forward = training = 0
    before = False  # a trainable parameter feeds this product's input
    uses = [(n, m, bias, w, b) for _, n, m, bias, w, b in plan]
    last = plan[-1][2]
    uses += [(last, last, False, square_learns, False)] * 2
    for n, m, bias, w_learns, b_learns in uses:
        f = 2 * n * m + (m if bias else 0)
        forward += f
        training += f + (2 * n * m if w_learns else 0) + (m if bias and b_learns else 0)
        training += 2 * n * m if before else 0
        before = before or w_learns or (bias and b_learns)
    return forward, training


def _torch_flops(model, plan, batch):
    """torch's FlopCounterMode of the same products (forward, forward + backward)."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    params = {
        name: torch.tensor(p.data.astype(np.float64), requires_grad=bool(p.requires_grad))
        for name, p in model.named_parameters()
    }
    ops = _Ops(torch.nn.functional, torch.einsum, params)
    x = torch.randn(batch, plan[0][1], dtype=torch.float64)
    with FlopCounterMode(display=False) as forward:
        out = model.forward(x, lib=ops)
    total = forward.get_total_flops()
    if out.requires_grad:
        with FlopCounterMode(display=False) as backward:
            out.sum().backward()
        total += backward.get_total_flops()
    return forward.get_total_flops(), total


def test_a_functional_forwards_products_are_counted(rng, seeded):
    plan, repeat = _plan(rng)
    model = Functional(plan, repeat, rng)
    batch = int(rng.integers(1, 200))
    rate = float(rng.uniform(1e8, 1e11))
    s = describe.summary(model, batch_size=batch, gemm_rate=rate)
    forward, training = _expected(plan, model.square.requires_grad)
    assert (s.forward_flops, s.training_flops) == (forward, training), seeded.msg(str(s))
    assert s.forward_flops_per_batch == forward * batch, seeded.msg(str(s))
    assert s.training_flops_per_batch == training * batch, seeded.msg(str(s))
    assert s.rate_floor_s == pytest.approx(training * batch / rate, rel=1e-12)
    text = s.text()
    assert NOTE not in text and "?" not in text.split("═")[-1], seeded.msg(text)
    own = [r for r in s.rows if r.name.startswith("own code")]
    assert len(own) == len(plan) + 2, seeded.msg(text)  # each product a row, in order
    assert [r.output_shape for r in own] == [(m,) for _, _, m, *_ in plan] + [(plan[-1][2],)] * 2, (
        seeded.msg(text)
    )
    # torch counts the products only: summary's +b and ∂L/∂b taken out
    bias_f = sum(m for _, _, m, bias, *_ in plan if bias) * batch
    bias_t = sum(m for _, _, m, bias, _, b in plan if bias and b) * batch
    torch_forward, torch_total = _torch_flops(model, plan, batch)
    assert s.forward_flops_per_batch - bias_f == torch_forward, seeded.msg(text)
    assert s.training_flops_per_batch - bias_f - bias_t == torch_total, seeded.msg(text)


def test_a_sequential_and_its_functional_twin_cost_the_same(rng, seeded):
    widths = [int(w) for w in rng.integers(1, 30, size=int(rng.integers(2, 6)))]
    biases = [bool(rng.integers(2)) for _ in widths[1:]]
    frozen = [(bool(rng.integers(3) == 0), bool(rng.integers(3) == 0)) for _ in widths[1:]]
    layers = []
    for (n, m), bias in zip(itertools.pairwise(widths), biases, strict=True):
        layers += [Dense(n, m, bias=bias), ReLU()]
    stack = Sequential(*layers[:-1])

    class Twin(Module):
        def __init__(self):
            super().__init__()
            denses = [layer for layer in layers if isinstance(layer, Dense)]
            self.ws = wxb.nn.ParameterList([Parameter(d.weight.data.copy()) for d in denses])
            for i, d in enumerate(denses):
                if d.bias is not None:
                    setattr(self, f"b{i}", Parameter(d.bias.data.copy()))

        @property
        def bs(self):
            return [getattr(self, f"b{i}", None) for i in range(len(self.ws))]

        def forward(self, x):
            for i, (w, b) in enumerate(zip(self.ws, self.bs, strict=True)):
                x = F.linear(x, w, b) if rng_style[i] else x @ w.T
                if rng_style[i] == 0 and b is not None:
                    x = x + b
                if i < len(self.ws) - 1:
                    x = F.relu(x)
            return x

    rng_style = [int(rng.integers(2)) for _ in biases]
    twin = Twin()
    denses = [layer for layer in layers if isinstance(layer, Dense)]
    for d, w, b, (w_frozen, b_frozen) in zip(denses, twin.ws, twin.bs, frozen, strict=True):
        for p, q, off in ((d.weight, w, w_frozen), (d.bias, b, b_frozen)):
            if p is not None:
                p.requires_grad = q.requires_grad = not off
    batch = int(rng.integers(1, 100))
    a, b = stack.summary(batch), twin.summary(batch)
    assert (a.forward_flops, a.training_flops) == (b.forward_flops, b.training_flops), seeded.msg(
        f"{a}\n{b}"
    )
    assert a.training_flops_per_batch == b.training_flops_per_batch, seeded.msg(str(b))
    assert NOTE not in b.text(), seeded.msg(str(b))


def test_batched_products_count_every_matrix_of_the_stack(rng, seeded):
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    t, d = (int(v) for v in rng.integers(1, 8, size=2))
    # e ≥ 2: torch's einsum computes a contraction over one index of size 1 as a broadcast
    # product, which its FlopCounterMode counts as 0 (its mm and bmm count 2mnp, n = 1 too)
    e = int(rng.integers(2, 8))
    learns = [bool(rng.integers(3)) for _ in range(3)]

    class Attention(Module):
        def __init__(self):
            super().__init__()
            self.in_features = t * d  # the width it takes (rows of t tokens of d)
            for name, on in zip(("q", "k", "v"), learns, strict=True):
                p = Parameter(rng.standard_normal((d, e)))
                p.requires_grad = on
                setattr(self, name, p)

        def forward(self, x, lib=None):
            q, k, v = (self.q, self.k, self.v) if lib is None else lib
            rows = x.reshape(x.shape[0], t, d)
            query, key = rows @ q, rows @ k
            if lib is None:
                scores = wxb.einsum("bte,bse->bts", query, key)
                out = scores.bmm(rows @ v)
            else:
                scores = torch.einsum("bte,bse->bts", query, key)
                out = scores.bmm(rows @ v)
            return out.reshape(x.shape[0], t * e)

    model = Attention().double()
    batch = int(rng.integers(1, 50))
    s = describe.summary(model, batch_size=batch)
    q_on, k_on, v_on = learns
    project = 2 * t * d * e
    attend = 2 * t * t * e
    forward = 3 * project + 2 * attend
    training = forward + project * sum(learns)  # ∂W; the batch needs no ∂X
    training += attend * (q_on + k_on)  # scores: ∂query, ∂key where they learn
    training += attend * ((q_on or k_on) + v_on)  # out: ∂scores, ∂value
    assert (s.forward_flops, s.training_flops) == (forward, training), seeded.msg(str(s))
    trio = (model.q, model.k, model.v)
    params = [torch.tensor(p.data, requires_grad=p.requires_grad) for p in trio]
    x = torch.randn(batch, t * d, dtype=torch.float64)
    with FlopCounterMode(display=False) as fwd:
        out = model.forward(x, lib=params)
    total = fwd.get_total_flops()
    if out.requires_grad:
        with FlopCounterMode(display=False) as bwd:
            out.sum().backward()
        total += bwd.get_total_flops()
    assert s.forward_flops_per_batch == fwd.get_total_flops(), seeded.msg(str(s))
    assert s.training_flops_per_batch == total, seeded.msg(str(s))


def test_a_product_of_parameters_alone_costs_once_a_batch(rng, seeded):
    n, r, m = (int(v) for v in rng.integers(1, 20, size=3))
    learns = [bool(rng.integers(2)) for _ in range(2)]

    class LowRank(Module):
        def __init__(self):
            super().__init__()
            self.a = Parameter(rng.standard_normal((n, r)).astype(np.float32))
            self.b = Parameter(rng.standard_normal((r, m)).astype(np.float32))
            self.a.requires_grad, self.b.requires_grad = learns

        def forward(self, x):
            return x @ (self.a @ self.b)  # the product of the factors: once a batch

    batch = int(rng.integers(1, 300))
    s = LowRank().summary(batch)
    once = 2 * n * r * m
    per_sample = 2 * n * m
    if not any(learns):  # a@b of two frozen factors records no graph: not seen, so said
        assert NOTE in s.text() and s.forward_flops == per_sample, seeded.msg(str(s))
        return
    forward = once + batch * per_sample
    training = once * (1 + sum(learns)) + batch * per_sample * (1 + any(learns))
    assert s.forward_flops_per_batch == forward, seeded.msg(str(s))
    assert s.training_flops_per_batch == training, seeded.msg(str(s))
    assert s.forward_flops == pytest.approx(forward / batch, rel=1e-12), seeded.msg(str(s))
    assert "per batch" in s.text(), seeded.msg(str(s))


def test_a_forward_that_does_not_run_on_a_sample_batch_keeps_its_note(rng, seeded):
    n, m = (int(v) for v in rng.integers(1, 20, size=2))

    class Keyed(Module):
        def __init__(self):
            super().__init__()
            self.w = Parameter(rng.standard_normal((m, n)).astype(np.float32))

        def forward(self, batch):
            return batch["x"] @ self.w.T  # a dict in: no sample batch runs it

    s = Keyed().summary(int(rng.integers(1, 64)))
    assert NOTE in s.text() and s.forward_flops == 0, seeded.msg(str(s))
    assert any(r.flops_unknown for r in s.rows), seeded.msg(str(s))


def test_a_product_outside_the_graph_keeps_its_note(rng, seeded):
    n, m = (int(v) for v in rng.integers(1, 20, size=2))

    class Hidden(Module):
        def __init__(self):
            super().__init__()
            self.w = Parameter(rng.standard_normal((m, n)).astype(np.float32))
            self.v = Parameter(rng.standard_normal((m, m)).astype(np.float32))

        def forward(self, x):
            with wxb.no_grad():  # not recorded: the summary cannot see this product
                h = x @ self.w.T
            return h @ self.v

    s = Hidden().summary(8)
    assert NOTE in s.text(), seeded.msg(str(s))


def test_a_tied_decoder_counts_its_product_with_the_encoders_weight(rng, seeded):
    # F.linear(h, enc.weight.T): the Dense row counts enc's W·X, the decoder's h·W is its
    # own code's (named enc.weight: W.T.T is W), with ∂L/∂W and ∂L/∂h both needed
    n, h = (int(v) for v in rng.integers(1, 20, size=2))
    enc_frozen = bool(rng.integers(2))

    class Tied(Module):
        def __init__(self):
            super().__init__()
            self.enc = Dense(n, h)
            self.out_bias = Parameter(np.zeros(n, dtype=np.float32))
            self.enc.weight.requires_grad = not enc_frozen

        def forward(self, x):
            return F.linear(F.relu(self.enc(x)), self.enc.weight.T, self.out_bias)

    batch = int(rng.integers(1, 100))
    s = Tied().summary(batch)
    encode = 2 * n * h + h
    encode_training = encode + (0 if enc_frozen else 2 * n * h) + h
    decode = 2 * h * n + n
    decode_training = decode + (0 if enc_frozen else 2 * h * n) + n + 2 * h * n  # ∂W, ∂b, ∂h
    assert s.forward_flops == encode + decode, seeded.msg(str(s))
    assert s.training_flops == encode_training + decode_training, seeded.msg(str(s))
    own = [r.name for r in s.rows if r.name.startswith("own code")]
    assert own == ["own code (x @ enc.weight + out_bias)"], seeded.msg(str(s))


def test_a_product_across_the_batch_grows_as_its_square(rng, seeded):
    # z @ z.T (a Gram matrix of the batch) costs 2·B·h·B: counted for a batch of 2 and
    # divided by 2 it would be 4h per sample, 4hB a batch, for 2hB² (B times too little)
    n, h = (int(v) for v in rng.integers(1, 20, size=2))

    class Gram(Module):
        def __init__(self):
            super().__init__()
            self.w = Parameter(rng.standard_normal((h, n)).astype(np.float32))

        def forward(self, x):
            z = F.linear(x, self.w)
            return z @ z.T

    batch = int(rng.integers(1, 300))
    s = Gram().summary(batch)
    linear = 2 * n * h * batch
    gram = 2 * batch * h * batch
    assert s.forward_flops_per_batch == linear + gram, seeded.msg(str(s))
    # training: ∂W for the linear (the batch needs no ∂X); ∂ of both Gram operands
    assert s.training_flops_per_batch == 2 * linear + 3 * gram, seeded.msg(str(s))
