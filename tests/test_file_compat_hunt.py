"""Files older wxb versions wrote, read by this one: from a hunt that wrote model files,
ONNX exports and checkpoints with seven commits over the project's history (2026-12-02
to 2026-12-06) and compared what this wxb gives on them with what the old code gave.

Model files (wxb train on tables with text, gaps and IDs, NPZ regressions with Huber and
several targets, --norm batch/layer, Dropout, float64; Python models with Standardize,
tied and frozen weights; scikit-learn's to_wxb) predicted, evaluated, exported and
explained the same numbers. Checkpoints did not always resume as the old run would go on.

The fixtures under tests/data/compat/ are the only fixed inputs here: each folder holds
one mid-epoch checkpoint (step 3 of epoch 1) that an older wxb wrote, and
``resumed.json``, the weights that wxb's own resume to epoch 2 gave (which that wxb
checked equal to its uninterrupted run's). They were made by
``tests/data/compat/make_checkpoints.py`` (its data and model are fixed there), run as
``PYTHONPATH=<a worktree at the commit>/src python make_checkpoints.py <folder> <p>``:

- ckpt_345b859_plain, ckpt_345b859_dropout (p 0.3): wxb at 345b859 (2026-12-02), before
  loss digests, data digests by blocks of rows and Dropout masks by data row;
- ckpt_53d6383_plain, ckpt_53d6383_dropout: wxb at 53d6383 (2026-12-03), masks by data
  row on a stream per draw of the step;
- ckpt_c2aec29_dropout: wxb at c2aec29 (2026-12-05), masks on a stream per layer, no
  per-generator keys recorded yet;
- ckpt_4b4230d_functional: wxb at 4b4230d (2026-12-06 04:12), a module of one's own
  calling F.dropout, by ``make_functional_checkpoint.py gen <folder>`` (resumed.json:
  that wxb's uninterrupted run, which its own resume matched).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import wxb
from wxb import ConfigError, nn
from wxb.checkpoint import _json_digest
from wxb.nn import functional as F

DATA = Path(__file__).parent / "data" / "compat"


def _fixture_data():
    X = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 3, 64)
    return X, y


def _fixture_model(p):
    wxb.manual_seed(5)
    layers = [nn.Dense(4, 6), nn.ReLU()] + ([nn.Dropout(p)] if p else []) + [nn.Dense(6, 3)]
    return nn.Sequential(*layers)


_FIXTURE_FIT = dict(
    batch_size=16, seed=4, optimizer="sgd", lr=0.1, checkpoint_every=3, keep_checkpoints=10
)


def _copy(name, tmp_path):
    folder = tmp_path / name
    shutil.copytree(DATA / name, folder)
    expected = json.loads((folder / "resumed.json").read_text())
    (folder / "resumed.json").unlink()
    return folder, expected


@pytest.mark.parametrize(
    "name, p",
    [("ckpt_345b859_plain", 0), ("ckpt_53d6383_plain", 0), ("ckpt_c2aec29_dropout", 0.3)],
)
def test_an_older_checkpoint_resumes_as_its_own_wxb_resumed_it(tmp_path, name, p):
    """345b859's checkpoint (before loss digests and before data digests by blocks of
    rows) was refused 'loss differs (checkpoint {'type': 'CrossEntropyLoss', 'reduction':
    'mean'}, now {... 'ignore_index': -100, ...})': the old data digests replaced the run
    compared with, and with it the loss settings left out for a checkpoint that never
    recorded them. Now it resumes to the old wxb's own weights: bit for bit on the compiled
    kernels that made the fixtures, to a few float32 ulps on the NumPy kernels (CI's second
    pass), which sum in another order; a wrong state is ~1e-3 off after a step."""
    folder, expected = _copy(name, tmp_path)
    X, y = _fixture_data()
    model = _fixture_model(p)
    history = wxb.fit(model, X, y, epochs=2, checkpoint_dir=folder, resume=True, verbose=False,
                      **_FIXTURE_FIT)  # fmt: skip
    assert history.resumed_from is not None
    for key, value in model.state_dict().items():
        want = np.asarray(expected[key], dtype=value.dtype)
        np.testing.assert_allclose(value, want, rtol=2e-6, atol=1e-7, err_msg=f"{name} {key}")


@pytest.mark.parametrize("name", ["ckpt_345b859_dropout", "ckpt_53d6383_dropout"])
def test_an_older_checkpoint_whose_dropout_masks_cannot_be_drawn_again_is_refused(tmp_path, name):
    """53d6383 drew a Dropout's masks on a stream per draw of the step; this wxb draws
    them on a stream per layer, and resumed its checkpoint on other masks without a word
    (the weights 6e-3 off that wxb's resume after one step, 5e-2 after two epochs). 345b859
    drew them from the layers' generators. A resume is refused now, before anything is
    put in place or written."""
    folder, _ = _copy(name, tmp_path)
    before = sorted(p.name for p in folder.iterdir())
    X, y = _fixture_data()
    model = _fixture_model(0.3)
    start = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(ConfigError, match=r"Dropout masks .* train again without resuming"):
        wxb.fit(model, X, y, epochs=2, checkpoint_dir=folder, resume=True, verbose=False,
                **_FIXTURE_FIT)  # fmt: skip
    assert sorted(p.name for p in folder.iterdir()) == before
    for key, value in model.state_dict().items():
        assert np.array_equal(value, start[key]), key


def _as_written_before(folder: Path, *, arrays_by_name: bool) -> None:
    """Make this wxb's checkpoints look like a wxb's of 2026-12-04/05 wrote them: no
    per-generator Dropout keys and (before 2026-12-05 04:39) the arrays in state_dict's
    order, not by name; the JSON's checksum made again."""
    for path in folder.glob("step-*.json"):
        meta = json.loads(path.read_text())
        del meta["row_masks_own"]
        if not arrays_by_name:
            arrays = meta["run"]["architecture"]["arrays"]  # a layer's weight before its bias
            arrays.sort(key=lambda a: (a[0].rsplit(".", 1)[0], a[0].endswith(".bias")))
            assert arrays != sorted(arrays)
        meta["json_sha256"] = _json_digest(meta)
        path.write_text(json.dumps(meta))


def test_the_command_line_refuses_such_a_resume_in_one_line(tmp_path):
    """wxb train --resume of a checkpoint of 2026-12-04 with --dropout: exit 2, one line."""
    seed = np.random.SeedSequence().entropy
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(60, 120)), int(rng.integers(2, 6))
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + rng.normal(scale=0.5, size=n) > 0).astype(int)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    folder = tmp_path / "ck"
    options = ["--data", str(tmp_path / "d.npz"), "--hidden", "5", "--dropout", "0.25",
               "--seed", str(int(rng.integers(1 << 30))), "--batch-size", "16", "--quiet",
               "--checkpoint-dir", str(folder),
               "--output", str(tmp_path / "m.safetensors")]  # fmt: skip
    wxb_cli = [sys.executable, "-c", "from wxb.cli import entry; entry()"]
    first = subprocess.run([*wxb_cli, "train", *options, "--epochs", "1"], capture_output=True,
                           text=True)  # fmt: skip
    assert first.returncode == 0, (seed, first.stderr)
    _as_written_before(folder, arrays_by_name=False)
    again = subprocess.run([*wxb_cli, "train", *options, "--epochs", "3", "--resume"],
                           capture_output=True, text=True)  # fmt: skip
    assert again.returncode == 2, (seed, again.stdout, again.stderr)
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and "Dropout masks" in lines[0], (seed, again.stderr)


def test_a_checkpoint_of_a_run_without_dropout_is_not_refused_for_its_masks(tmp_path):
    """The refusal is about Dropout's masks only: a run of the same age without Dropout
    (or with p = 0) resumes to the uninterrupted run's weights."""
    seed = np.random.SeedSequence().entropy
    rng = np.random.default_rng(seed)
    n, d, k = int(rng.integers(40, 80)), int(rng.integers(2, 6)), int(rng.integers(2, 4))
    X, y = rng.normal(size=(n, d)), rng.integers(0, k, n)
    init, fit_seed = (int(s) for s in rng.integers(0, 1 << 30, 2))

    def build():
        wxb.manual_seed(init)
        return nn.Sequential(nn.Dense(d, 6), nn.Tanh(), nn.Dropout(0.0), nn.Dense(6, k))

    kw = dict(batch_size=8, seed=fit_seed, optimizer="sgd", lr=0.1, verbose=False)
    whole = build()
    wxb.fit(whole, X, y, epochs=3, **kw)
    wxb.fit(build(), X, y, epochs=1, checkpoint_dir=tmp_path, **kw)
    _as_written_before(tmp_path, arrays_by_name=False)
    resumed = build()
    wxb.fit(resumed, X, y, epochs=3, checkpoint_dir=tmp_path, resume=True, **kw)
    for key, value in whole.state_dict().items():
        assert np.array_equal(resumed.state_dict()[key], value), (seed, key)


class Net(nn.Module):
    """A module of one's own whose forward calls F.dropout (ckpt_4b4230d_functional's,
    made by tests/data/compat/make_functional_checkpoint.py at 4b4230d: the same name)."""

    def __init__(self, d=4, h=6, k=3):
        super().__init__()
        self.a = nn.Dense(d, h)
        self.b = nn.Dense(h, k)

    def forward(self, x):
        return self.b(F.dropout(self.a(x).relu(), 0.3, training=self.training))


def test_a_checkpoint_whose_functional_dropout_masks_went_by_draw_order_is_refused(tmp_path):
    """wxb before 2026-12-06 04:52 numbered F.dropout's masks in fit by the draws' order;
    this wxb by where F.dropout is called. A checkpoint 4b4230d wrote of a module calling
    F.dropout resumed on other masks without a word (4b4230d's own resume gives its
    uninterrupted run's weights, kept in resumed.json). It is refused now, at the first
    such draw, before any step changes the weights; the folder is left as it was."""
    folder, expected = _copy("ckpt_4b4230d_functional", tmp_path)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    X, y = _fixture_data()
    wxb.manual_seed(5)
    model = Net()
    fit = {**_FIXTURE_FIT, "verbose": False}
    with pytest.raises(ConfigError, match=r"F\.dropout masks .* train again without resuming"):
        wxb.fit(model, X, y, epochs=2, checkpoint_dir=folder, resume=True, **fit)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert any(not np.array_equal(v, expected[k]) for k, v in model.state_dict().items())


def test_this_wxbs_checkpoint_with_functional_dropout_resumes_exactly(tmp_path):
    """The same run as this wxb writes it resumes to the uninterrupted run's weights; with
    the entry that says how F.dropout's masks went removed, as before, it is refused."""
    seed = np.random.SeedSequence().entropy
    rng = np.random.default_rng(seed)
    n, d, k = int(rng.integers(40, 80)), int(rng.integers(2, 6)), int(rng.integers(2, 4))
    X, y = rng.normal(size=(n, d)), rng.integers(0, k, n)
    init, fit_seed = (int(s) for s in rng.integers(0, 1 << 30, 2))

    def build():
        wxb.manual_seed(init)
        return Net(d, 6, k)

    kw = dict(batch_size=8, seed=fit_seed, optimizer="sgd", lr=0.1, verbose=False)
    whole = build()
    wxb.fit(whole, X, y, epochs=3, **kw)
    wxb.fit(build(), X, y, epochs=1, checkpoint_dir=tmp_path / "a", **kw)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    resumed = build()
    wxb.fit(resumed, X, y, epochs=3, checkpoint_dir=tmp_path / "a", resume=True, **kw)
    for key, value in whole.state_dict().items():
        assert np.array_equal(resumed.state_dict()[key], value), (seed, key)
    for path in (tmp_path / "b").glob("step-*.json"):
        meta = json.loads(path.read_text())
        del meta["row_masks_functional"]
        meta["json_sha256"] = _json_digest(meta)
        path.write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=r"F\.dropout masks"):
        wxb.fit(build(), X, y, epochs=3, checkpoint_dir=tmp_path / "b", resume=True, **kw)
