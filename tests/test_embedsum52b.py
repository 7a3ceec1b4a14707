"""Follow-ups of summaries and diagrams of a model taking ids: the data's length (L ids a
row) reaches them from the command line (--seq-len), from wxb.report's X, and through
an activation the forward applies itself; the diagram's input says "L ids"."""

import numpy as np
import pytest
from test_describe import parse_mermaid

import wxb
import wxb.nn.functional as F
from wxb.cli import main
from wxb.nn import Dense, Embedding, Flatten, Module, ReLU, Sequential

torch = pytest.importorskip("torch")


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _sizes(rng):
    vocab, d = (int(v) for v in rng.integers(2, 12, size=2))
    length = int(rng.integers(1, 40))
    if length == wxb.describe.SAMPLE_IDS:  # (the default would pass for the data's)
        length += 1
    return vocab, d, length


class _ReluOfLookup(Module):  # F.relu(self.emb(ids)): a chain, its activation its own
    def __init__(self, vocab, d):
        super().__init__()
        self.emb = Embedding(vocab, d)

    def forward(self, ids):
        return F.relu(self.emb(ids))


class _MeanOfLookup(Module):  # fc(emb(ids).mean(1)): no chain, L the data's
    def __init__(self, vocab, d, out):
        super().__init__()
        self.emb = Embedding(vocab, d)
        self.fc = Dense(d, out)

    def forward(self, ids):
        return self.fc(self.emb(ids).mean(1))


def test_the_command_line_takes_seq_len(seeded, tmp_path, capsys):
    """wxb summary and wxb diagram had no --seq-len: a saved model taking ids showed
    (?, d) rows, '?' after them and "? features" whatever the data held. Now --seq-len L
    gives rows (L, d), L·d after an activation, "L ids" in the diagram, and a graph
    diagram of a step on ids (it drew float rows, which the Embedding refuses); a value
    that is not a positive integer is refused in one line, status 2."""
    rng = seeded.rng
    vocab, d, length = _sizes(rng)
    where = seeded.msg(f"V={vocab} d={d} L={length}")
    path = wxb.io.save(Sequential(Embedding(vocab, d), ReLU()), tmp_path / "m.safetensors")

    code, out, err = _cli(capsys, "summary", path, "--no-floor", "--seq-len", length)
    assert code == 0, where + err
    rows = {line.split()[0]: line for line in out.splitlines() if "(" in line and ")" in line}
    assert f"({length}, {d})" in rows["embedding1"], where + out
    assert f"({length * d},)" in rows["relu1"], where + out
    assert "not known (?)" not in out, where + out

    code, out, err = _cli(capsys, "diagram", path, "--seq-len", length)
    assert code == 0, where + err
    chart = parse_mermaid(out[:-1])  # (print adds a line end)
    assert chart.nodes["in0"][1].split("<br>")[1] == f"{length} ids", where + out
    assert [w for _, _, w in chart.edges] == [f"{length}", f"{length}×{d}", f"{length * d}"], (
        where + out
    )
    B = int(rng.integers(1, 6))
    code, out, err = _cli(capsys, "diagram", path, "--kind", "graph", "--seq-len", length,
                          "--batch-size", B)  # fmt: skip
    assert code == 0, where + err
    assert f"{B}×{length}×{d}" in out, where + out

    for bad in ("0", str(-int(rng.integers(1, 9))), "2.5", "x"):
        with pytest.raises(SystemExit) as stop:
            main(["summary", str(path), "--seq-len", bad])
        err = capsys.readouterr().err
        assert stop.value.code == 2, where + err
        assert len(err.strip().splitlines()) == 1 and "--seq-len" in err, where + err
    for command in ("summary", "diagram"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--seq-len L" in capsys.readouterr().out, where


def test_report_uses_the_width_of_its_X(seeded):
    """wxb.report gave its summary and diagrams no length: a model taking ids was
    described on the default 8 ids a row ((8, d) rows, "a default" under the table)
    while the walk-through ran X's. Now they take X's width."""
    rng = seeded.rng
    vocab, d, length = _sizes(rng)
    out = int(rng.integers(1, 6))
    model = _MeanOfLookup(vocab, d, out)
    X = rng.integers(0, vocab, size=(int(rng.integers(1, 5)), length))
    page = wxb.reporting.report_html(model, X=X, floor=False)
    where = seeded.msg(f"V={vocab} d={d} L={length}")
    assert f"emb (Embedding)</td><td>({length}, {d})</td>" in page, where
    assert "a default" not in page, where
    assert f"{length} ids" in page, where


def test_an_activation_after_the_lookup_carries_the_samples_length(seeded):
    """In F.relu(self.emb(ids)) the relu's row showed '?' and the diagram "? features"
    with no widths: the sample's L now reaches the layers after the Embedding, as in a
    Sequential (L·d), in the summary and the diagram; a default L is named as one."""
    rng = seeded.rng
    vocab, d, length = _sizes(rng)
    model = _ReluOfLookup(vocab, d)
    where = seeded.msg(f"V={vocab} d={d} L={length}")
    s = wxb.describe.summary(model, batch_size=int(rng.integers(1, 9)), seq_len=length)
    shapes = [row.output_shape for row in s.rows]
    assert shapes == [(length, d), (length * d,)], where + s.text()
    with wxb.describe.sample_ids_per_row(length):
        chart = parse_mermaid(wxb.describe.architecture_diagram(model))
    assert chart.nodes["in0"][1].split("<br>")[1] == f"{length} ids", where + str(chart.nodes)
    assert [w for _, _, w in chart.edges] == [f"{length}", f"{length}×{d}", f"{length * d}"], where
    default = wxb.describe.SAMPLE_IDS
    s = wxb.describe.summary(model)
    assert [row.output_shape for row in s.rows] == [(default, d), (default * d,)], where
    assert f"held {default} ids a row, a default" in s.text(), where + s.text()
    chart = parse_mermaid(wxb.describe.architecture_diagram(model))
    assert chart.nodes["in0"][1].split("<br>")[1].startswith(f"{default} ids (a default"), where


def test_a_sequential_takes_seq_len_and_its_input_is_ids(seeded):
    """summary(seq_len=L) of a Sequential starting with an Embedding ignored L (rows
    (?, d)), and every diagram of it said "? features": now (L, d) and "L ids"; without
    L its rows stay '?' (the data's, not known) and the input "? ids"."""
    rng = seeded.rng
    vocab, d, length = _sizes(rng)
    model = Sequential(Embedding(vocab, d), ReLU())
    where = seeded.msg(f"V={vocab} d={d} L={length}")
    s = model.summary(batch_size=2, seq_len=length)
    assert [row.output_shape for row in s.rows] == [(length, d), (length * d,)], where + s.text()
    chart = parse_mermaid(wxb.describe.architecture_diagram(model))
    assert chart.nodes["in0"][1].split("<br>")[1] == "? ids", where + str(chart.nodes)
    s = wxb.describe.summary(model)
    assert [row.output_shape for row in s.rows] == [(None, d), None], where + s.text()
    # a model of features still says features
    n = int(rng.integers(1, 9))
    chart = parse_mermaid(wxb.describe.architecture_diagram(Sequential(Dense(n, 2), ReLU())))
    assert chart.nodes["in0"][1].split("<br>")[1] == f"{n} features", where


def test_explain_shows_the_lookup_and_the_gradient_of_its_table(seeded):
    """explain showed an Embedding as "one step here (code of its own…)", its ∂L/∂W
    not shown. Now its step is H = W[X] (row i of W for each id i) and the backward
    shows ∂L/∂W[i], the sum of the δ of the rows that looked up i (the padding row none,
    each divided by its count with scale_grad_by_freq): torch's autograd, float64."""
    rng = seeded.rng
    vocab, d, length = _sizes(rng)
    vocab += 1  # (a padding id and at least one other)
    classes, B = int(rng.integers(2, 5)), int(rng.integers(1, 6))
    pad = int(rng.integers(vocab)) if rng.integers(2) else None
    freq = bool(rng.integers(2))
    frozen = bool(rng.integers(2))  # shown as backward would compute it were it trainable
    emb = Embedding(vocab, d, padding_idx=pad, scale_grad_by_freq=freq)
    model = Sequential(emb, ReLU(), Flatten(), Dense(length * d, classes)).double()
    emb.weight.requires_grad = not frozen
    where = seeded.msg(f"V={vocab} d={d} L={length} B={B} pad={pad} freq={freq} frozen={frozen}")
    ids = rng.integers(0, vocab, size=(B, length))
    if pad is not None:
        ids[rng.integers(B), rng.integers(length)] = pad  # a padded place, at least
    y = rng.integers(0, classes, size=B)
    shown = wxb.explain(model, ids, y, sample_rows=B)
    text = shown.text()
    assert "one step here" not in text, where + text

    W = torch.tensor(emb.weight.data, requires_grad=True)
    lin = model[3]
    rows = torch.nn.functional.embedding(
        torch.tensor(ids), W, padding_idx=pad, scale_grad_by_freq=freq
    )
    z = torch.nn.functional.linear(
        torch.relu(rows).flatten(1), torch.tensor(lin.weight.data), torch.tensor(lin.bias.data)
    )
    torch.nn.functional.cross_entropy(z, torch.tensor(y)).backward()

    lookup = shown.step("embedding1.out")
    assert lookup.equation.startswith("H⁽⁰⁾ = W[X]"), where + lookup.equation
    # column notation: d×L×B, the rows as exact copies of W's
    assert np.array_equal(lookup.value, rows.detach().numpy().T), where
    grad = shown.step("embedding1.dL/dW")
    assert grad.equation.startswith("∂L/∂W[i] = Σ of ∂L/∂H⁽⁰⁾"), where + grad.equation
    # sums of a few δ rows each (d·B·L terms at most): float64 rounding
    np.testing.assert_allclose(grad.value, W.grad.numpy(), rtol=1e-12, atol=1e-15, err_msg=where)
    assert ("padding_idx" in grad.note) == (pad is not None), where + grad.note
    assert ("scale_grad_by_freq" in grad.note) == freq, where + grad.note
    if pad is not None:
        assert not grad.value[pad].any(), where
    assert np.array_equal(model[0].weight.data, W.detach().numpy()), where  # (untouched)
