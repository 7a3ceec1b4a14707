import json
import os
import shutil
import sys
import warnings

import numpy as np

import wxb
import wxb.nn.functional as F
from wxb import nn

warnings.simplefilter("ignore")
mode, base = sys.argv[1], sys.argv[2]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Dense(4, 6)
        self.b = nn.Dense(6, 3)

    def forward(self, x):
        h = F.dropout(self.a(x).relu(), 0.3, training=self.training)
        return self.b(h)


X = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
y = np.random.default_rng(1).integers(0, 3, 64)


def build():
    wxb.manual_seed(5)
    return Net()


kw = dict(
    batch_size=16,
    seed=4,
    optimizer="sgd",
    lr=0.1,
    checkpoint_every=3,
    keep_checkpoints=10,
    verbose=False,
)
if mode == "gen":
    shutil.rmtree(base, ignore_errors=True)
    wxb.fit(build(), X, y, epochs=1, checkpoint_dir=base, **kw)
    for f in os.listdir(base):
        if not f.startswith("step-000000003."):
            os.remove(os.path.join(base, f))
    whole = build()
    wxb.fit(whole, X, y, epochs=2, **{k: v for k, v in kw.items() if "checkpoint" not in k})
    json.dump({k: v.tolist() for k, v in whole.state_dict().items()}, open(base + ".json", "w"))
else:
    ref = json.load(open(base + ".json"))
    tmp = base + "_c"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(base, tmp)
    m = build()
    try:
        wxb.fit(m, X, y, epochs=2, checkpoint_dir=tmp, resume=True, **kw)
    except Exception as e:
        print("REFUSED", e)
        sys.exit()
    print(
        "same"
        if all(np.array_equal(np.asarray(ref[k], np.float32), v) for k, v in m.state_dict().items())
        else "DIFFERENT"
    )
