"""Review of the session's second wave (s42): defects found, each with its test."""

from __future__ import annotations

import json
import sys
import threading

import numpy as np
import pandas as pd
import pytest

import wxb
from wxb import tables
from wxb.checkpoint import _json_digest
from wxb.errors import ConfigError, DataError
from wxb.nn import functional as F


def _bad_bytes_csv(path, rng):
    """A CSV whose third line is one cell long and holds a latin-1 byte."""
    rows = rng.integers(0, 9, size=(4, 4))
    lines = [b"a,b,c,d"] + [",".join(map(str, r)).encode() for r in rows]
    lines[2] += b",caf\xe9"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_two_threads_reading_csvs_each_told_of_their_own_bytes(tmp_path, monkeypatch):
    # Each read swapped sys.unraisablehook for its own: with two reads at once, a
    # row's decode failure went to the hook on top (the other read's), so one read said
    # "Expected 4 columns, got 5: 3,4,caf\ufffd…" with the row's bytes, and the hook was left
    # swapped for a finished read's after both ended
    seed = np.random.SeedSequence().entropy
    rng = np.random.default_rng(seed)
    first = _bad_bytes_csv(tmp_path / "first.csv", rng)
    second = _bad_bytes_csv(tmp_path / "second.csv", rng)
    original = sys.unraisablehook
    real = tables._read_csv
    arrived: list[object] = []
    both_in, first_done = threading.Barrier(2, timeout=30), threading.Event()

    def overlapping(path, **options):
        arrived.append(path)  # (after its read swapped the hook)
        both_in.wait()  # both reads have swapped it
        if path != arrived[0]:  # the later one reads after the earlier has ended
            first_done.wait(30)
            return real(path, **options)
        try:  # the earlier one reads under the later one's hook
            return real(path, **options)
        finally:
            first_done.set()

    monkeypatch.setattr(tables, "_read_csv", overlapping)
    errors: dict[str, str] = {}

    def read(path):
        try:
            tables.read_csv(path)
        except DataError as exc:
            errors[path.name] = str(exc)

    threads = [threading.Thread(target=read, args=(p,)) for p in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    monkeypatch.undo()
    for name in ("first.csv", "second.csv"):
        assert "line 3: 5 values but the header has 4" in errors[name], (seed, errors)
        assert "not utf-8 text" in errors[name], (seed, errors)
    assert sys.unraisablehook is original, f"seed {seed}: the hook was left swapped"


@pytest.mark.parametrize("first", ["PAR1", "ARROW1"])
def test_a_csv_whose_first_column_is_named_par1_is_read(tmp_path, first):
    # Its first bytes are Parquet's (or Arrow's) magic: it was refused as "not CSV text
    # but a Parquet file; name it .parquet"
    seed = np.random.SeedSequence().entropy
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({first: rng.normal(size=6).round(3), "PAR2": rng.normal(size=6).round(3)})
    frame["y"] = rng.integers(0, 3, size=6)
    path = tmp_path / "params.csv"
    frame.to_csv(path, index=False)
    table = tables.read_csv(path)
    expected = pd.read_csv(path)
    for name in expected.columns:
        got = np.asarray(table.columns[name].values, np.float64)
        assert np.array_equal(got, expected[name].to_numpy(np.float64)), (seed, name)


@pytest.mark.parametrize("suffix", ["parquet", "feather"])
def test_a_parquet_or_arrow_file_named_csv_is_still_named(tmp_path, suffix):
    frame = pd.DataFrame({"a": np.random.default_rng().normal(size=4)})
    path = tmp_path / "data.csv"
    getattr(frame, f"to_{suffix}")(path)
    with pytest.raises(
        DataError, match=f"not CSV text but a {'Parquet' if suffix == 'parquet' else 'Feather'}"
    ):
        tables.read_csv(path)


class _Net(wxb.nn.Module):
    """A forward of one's own calling F.dropout."""

    def __init__(self, d, h, k):
        super().__init__()
        self.a = wxb.nn.Dense(d, h)
        self.b = wxb.nn.Dense(h, k)

    def forward(self, x):
        return self.b(F.dropout(self.a(x).relu(), 0.3, training=self.training))


def test_a_resume_refused_for_f_dropouts_masks_leaves_the_model_as_given(tmp_path):
    # The refusal comes at the first F.dropout draw, after the checkpoint was put in
    # place: the model given kept the checkpoint's weights (and its optimiser the
    # checkpoint's state), so the "train again without resuming" it advises trained on
    # from the old run's step 3 instead of the model's own start, without a word
    seed = np.random.SeedSequence().entropy
    rng = np.random.default_rng(seed)
    n, d, k = int(rng.integers(40, 80)), int(rng.integers(2, 6)), int(rng.integers(2, 4))
    X, y = rng.normal(size=(n, d)), rng.integers(0, k, n)
    kw = dict(batch_size=8, seed=int(rng.integers(1 << 30)), lr=0.1, verbose=False)
    init = int(rng.integers(1 << 30))
    wxb.manual_seed(init)
    wxb.fit(_Net(d, 6, k), X, y, epochs=1, checkpoint_dir=tmp_path, optimizer="adam", **kw)
    for path in tmp_path.glob("step-*.json"):  # as a wxb before 2026-12-06 wrote it
        meta = json.loads(path.read_text())
        del meta["row_masks_functional"]
        meta["json_sha256"] = _json_digest(meta)
        path.write_text(json.dumps(meta))
    wxb.manual_seed(init)  # the run's start: the checkpoint's weights replace it quietly
    model = _Net(d, 6, k)
    given = {key: value.copy() for key, value in model.state_dict().items()}
    opt = wxb.optim.Adam(model.parameters(), lr=0.1)
    opt_given = json.dumps(opt.state_dict(), default=repr, sort_keys=True)
    with pytest.raises(ConfigError, match=r"F\.dropout masks"):
        wxb.fit(model, X, y, epochs=3, checkpoint_dir=tmp_path, resume=True,
                **{**kw, "lr": None}, optimizer=opt)  # fmt: skip
    for key, value in model.state_dict().items():
        assert np.array_equal(value, given[key]), (seed, key)
    assert json.dumps(opt.state_dict(), default=repr, sort_keys=True) == opt_given, seed
