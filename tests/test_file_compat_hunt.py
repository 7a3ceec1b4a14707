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
  per-generator keys recorded yet.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import wxb
from wxb import nn

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
    [("ckpt_345b859_plain", 0), ("ckpt_53d6383_plain", 0)],
)
def test_an_older_checkpoint_resumes_as_its_own_wxb_resumed_it(tmp_path, name, p):
    """345b859's checkpoint (before loss digests and before data digests by blocks of
    rows) was refused 'loss differs (checkpoint {'type': 'CrossEntropyLoss', 'reduction':
    'mean'}, now {... 'ignore_index': -100, ...})': the old data digests replaced the run
    compared with, and with it the loss settings left out for a checkpoint that never
    recorded them. Now it resumes to the old wxb's own weights, bit for bit."""
    folder, expected = _copy(name, tmp_path)
    X, y = _fixture_data()
    model = _fixture_model(p)
    history = wxb.fit(model, X, y, epochs=2, checkpoint_dir=folder, resume=True, verbose=False,
                      **_FIXTURE_FIT)  # fmt: skip
    assert history.resumed_from is not None
    for key, value in model.state_dict().items():
        assert np.array_equal(value, np.asarray(expected[key], dtype=value.dtype)), (name, key)
