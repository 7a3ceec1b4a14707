"""Under an old wxb: a mid-epoch checkpoint (step 3 of epoch 1) and that wxb's own resume."""

import json
import os
import shutil
import sys

import numpy as np

import wxb
import wxb.nn as nn

out, drop = sys.argv[1], float(sys.argv[2])
X = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
y = np.random.default_rng(1).integers(0, 3, 64)


def build():
    wxb.manual_seed(5)
    return nn.Sequential(
        *[nn.Dense(4, 6), nn.ReLU()] + ([nn.Dropout(drop)] if drop else []) + [nn.Dense(6, 3)]
    )


kw = dict(batch_size=16, seed=4, optimizer="sgd", lr=0.1, checkpoint_every=3, keep_checkpoints=10)
shutil.rmtree(out, ignore_errors=True)
wxb.fit(build(), X, y, epochs=1, checkpoint_dir=out, **kw)
for f in os.listdir(out):
    if not f.startswith("step-000000003."):
        os.remove(os.path.join(out, f))
tmp = out + "_tmp"
shutil.rmtree(tmp, ignore_errors=True)
shutil.copytree(out, tmp)
m = build()
wxb.fit(m, X, y, epochs=2, checkpoint_dir=tmp, resume=True, **kw)
whole = build()
wxb.fit(whole, X, y, epochs=2, **{k: v for k, v in kw.items() if "checkpoint" not in k})
assert all(np.array_equal(a, whole.state_dict()[k]) for k, a in m.state_dict().items())
json.dump(
    {k: v.tolist() for k, v in m.state_dict().items()}, open(os.path.join(out, "resumed.json"), "w")
)
shutil.rmtree(tmp)
