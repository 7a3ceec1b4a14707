"""Small silent or misleading things: a module's name that is no text,
bool ids, plot_history over a file of one's own, Embedding's ∂L/∂W note."""

import numpy as np
import pytest

import wxb
import wxb.nn.functional as F
from wxb.errors import ConfigError, DataError
from wxb.nn import Dense, Embedding, Flatten, Sequential
from wxb.plots import plot_history


def test_a_name_that_is_not_text_is_refused_where_it_is_given(rng):
    """``model.name = 5`` was taken (the label showed '5'); only wxb.save refused it."""
    value = int(rng.integers(0, 100))
    model = Sequential(Dense(2, 3))
    with pytest.raises(ConfigError, match=rf"Sequential.name = {value}: .*text or None"):
        model.name = value
    assert model.label == "Sequential"  # (unchanged)
    with pytest.raises(ConfigError, match=r"Dense.name = 2.5: .*name='2.5'"):
        Dense(2, 3, name=2.5)
    model.name = "mine"
    assert model.label == "Sequential 'mine'"
    model.name = None
    assert model.label == "Sequential"


def test_bool_ids_are_refused_as_torch_refuses_them(rng):
    """``Embedding(4, 2)(np.array([True, False, True]))`` looked up rows 1, 0, 1 (the bools
    made 0./1. as features are); F.embedding's refusal said "not all whole". torch's
    embedding refuses bool ids too (not loaded here: its import alone took seconds)."""
    V, d = int(rng.integers(3, 9)), int(rng.integers(1, 5))
    flags = rng.random(size=int(rng.integers(2, 7))) < 0.5
    layer = Embedding(V, d)
    with pytest.raises(DataError, match=r"Embedding input: ids are integers, not bools.*astype"):
        layer(flags)
    with pytest.raises(DataError, match=r"embedding: ids are integers, not bools.*astype"):
        F.embedding(flags, layer.weight)
    model = Sequential(Embedding(V, d), Flatten(), Dense(flags.size * d, 1))
    with pytest.raises(DataError, match=r"Sequential input: ids are integers, not bools"):
        model(flags[None])
    with pytest.raises(DataError, match=r"Sequential predict X: ids are integers, not bools"):
        model.predict(flags[None])
    ids = flags.astype(np.int64)  # as the message says: rows 1 and 0, as torch's
    np.testing.assert_array_equal(layer(ids).data, layer.weight.data[ids])
    # a model of features still takes bools as 0./1.
    dense = Dense(flags.size, 2)
    np.testing.assert_allclose(
        dense(flags[None]).data, dense(flags[None].astype(np.float32)).data, rtol=1e-6
    )


def test_plot_history_refuses_a_file_it_did_not_write(tmp_path, rng):
    """plot_history in Python overwrote loss.png whatever it was (the CLI checked the
    folder, Python did not): a file of one's own there, a wxb model, a folder's name."""
    record = {"history": {"loss": list(rng.random(3) + 0.1)}}
    mine = tmp_path / "loss.png"
    text = f"my notes {rng.integers(1 << 30)}\n".encode()
    mine.write_bytes(text)
    with pytest.raises(DataError, match=r"loss.png is not a PNG image; refusing to overwrite"):
        plot_history(record, tmp_path)
    assert mine.read_bytes() == text
    mine.unlink()
    wxb.save(Sequential(Dense(2, 1)), tmp_path / "model.safetensors")
    (tmp_path / "model.safetensors").rename(mine)
    kept = mine.read_bytes()
    with pytest.raises(DataError, match=r"loss.png is a wxb model file; refusing to overwrite"):
        plot_history(record, tmp_path)
    assert mine.read_bytes() == kept
    with pytest.raises(DataError, match=r"is a file; plot_history's folder takes a folder"):
        plot_history(record, mine)


def test_the_embedding_grad_note_names_the_rows_of_ids_not_looked_up(rng):
    """The note said "a row of ids not looked up is 0": a row of ∂L/∂W, for an id no row
    of X holds, is 0."""
    from wxb.explanation import explain_model

    V, d, L = int(rng.integers(6, 10)), int(rng.integers(2, 4)), int(rng.integers(2, 4))
    model = Sequential(Embedding(V, d), Flatten(), Dense(L * d, 1))
    X = rng.integers(0, V - 2, size=(int(rng.integers(2, 5)), L))  # ids V-2, V-1 unused
    shown = explain_model(model, X, rng.normal(size=(len(X), 1)), loss="mse", sample_rows=None)
    step = shown.step(f"{model[0].name}.dL/dW")
    assert "∂L/∂W[i] = 0 for an id i not looked up" in step.note
    assert "a row of ids" not in step.note
    unused = sorted(set(range(V)) - set(X.ravel().tolist()))
    assert not np.any(step.value[unused]) and np.any(step.value)


def test_summary_rows_hold_the_parameters_own_code_uses(rng):
    """``x @ self.w.T + self.b`` in a forward of one's own: its "own code" row showed
    Params 0 and w, b were on no row, though the total counted them."""
    from wxb.describe import summary
    from wxb.nn import Module, Parameter

    n, m, k = (int(v) for v in rng.integers(2, 9, size=3))

    class Mine(Module):
        def __init__(self):
            super().__init__()
            self.w = Parameter(rng.normal(size=(m, n)).astype(np.float32))
            self.b = Parameter(np.zeros(m, np.float32))
            self.scale = Parameter(np.ones(k, np.float32))
            self.head = Dense(m, k)

        def forward(self, x):
            return self.head(x @ self.w.T + self.b) * self.scale

    shown = summary(Mine())
    own = [row for row in shown.rows if row.name.startswith("own code")]
    assert [row.parameters for row in own] == [m * n + m]
    assert shown.parameters == m * n + m + (m * k + k) + k
    on_rows = sum(row.parameters for row in shown.rows)
    assert on_rows == shown.parameters - k  # scale: used outside a product
    assert f"{k} of the {shown.parameters} parameters are on no row" in shown.text()


def test_summary_says_where_an_embedding_s_rows_stop_the_forward(rng):
    """seq_len=5 for Embedding, Flatten, Dense(3·d) was dropped without a word (rows of 3
    ids shown); Embedding then Dense without Flatten gave a clean table of a model that
    cannot run."""
    from wxb.describe import summary
    from wxb.errors import ShapeError

    V, d, L = int(rng.integers(5, 20)), int(rng.integers(2, 6)), int(rng.integers(2, 6))
    other = L + int(rng.integers(1, 4))
    model = Sequential(Embedding(V, d), Flatten(), Dense(L * d, 2))
    with pytest.raises(ShapeError):  # the forward itself on rows of `other` ids
        model(rng.integers(0, V, size=(2, other)))
    shown = summary(model, seq_len=other)
    assert shown.rows[0].output_shape == (other, d)
    assert f"takes rows of {L * d} features but is handed {other * d}" in shown.text()
    assert "handed" not in summary(model, seq_len=L).text()
    assert summary(model, seq_len=L).rows[0].output_shape == (L, d)
    unflat = Sequential(Embedding(V, d), Dense(d, 2))
    with pytest.raises(ShapeError):
        unflat(rng.integers(0, V, size=(2, L)))
    for text in (summary(unflat).text(), summary(unflat, seq_len=L).text()):
        assert "handed an Embedding's (L, d) per sample, not flattened" in text


def test_summary_seq_len_of_an_own_forward_that_did_not_run_says_so(rng):
    """Refused as "a model of features" where the forward takes ids into an Embedding but
    its sample run failed."""
    from wxb.describe import summary
    from wxb.nn import Module

    L = int(rng.integers(2, 6))

    class Mine(Module):
        def __init__(self):
            super().__init__()
            self.emb = Embedding(10, 4)
            self.fc = Dense(4 * L + 1, 2)  # (a width no L fits: the sample run fails)

        def forward(self, ids):
            return self.fc(self.emb(ids).flatten(1))

    with pytest.raises(ConfigError) as caught:
        summary(Mine(), seq_len=L)
    assert "holds an Embedding (emb)" in str(caught.value)
    assert "rows of features" not in str(caught.value)
