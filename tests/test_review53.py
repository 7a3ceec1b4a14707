"""A forward of one's own that only logs a result's values as Python's (``h.tolist()``,
``h.mean().item()``, ``float(h.abs().max())``, ``bool(h.isnan().any())``, a comparison)
is still the chain of its layers: ONNX export and ``to_torch`` convert it, to the numbers
``model.predict`` gives, as torch's tracer takes such a forward. (After the chain check
learnt to see those reads, it refused every such forward, "what it computes may turn on
them", though nothing turned on them.) A forward branching on them past the rows the
check tries is still refused naming the read (tests/test_chain53.py).

Networks, the read, its place and the rows are drawn fresh each run (the seed is
printed; WXB_TEST_SEED=<seed> replays a failure).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from rounding import chain_rounding

from wxb import interop
from wxb.errors import ConfigError
from wxb.nn import Dense, Module
from wxb.nn import functional as F
from wxb.onnx import export

torch = pytest.importorskip("torch")

# what the forward logs of h: each a Python value, nothing that feeds the output
LOGS = {
    "tolist": lambda h: h.tolist(),
    "item": lambda h: h.mean().item(),
    "float": lambda h: float(h.abs().max()),
    "isnan": lambda h: bool(h.isnan().any()),
    "compare": lambda h: int((h > 0).sum()),
}


class Logging(Module):
    """fc1 … fcK with activations between them; ``log`` taken of the batch (place 0) or
    of fc<place>'s result and kept in ``self.seen``."""

    def __init__(self, widths, acts, log, place, dtype, rng):
        super().__init__()
        self.names = [f"fc{k + 1}" for k in range(len(widths) - 1)]
        for k, name in enumerate(self.names):
            seed = int(rng.integers(1 << 31))
            setattr(self, name, Dense(widths[k], widths[k + 1], dtype=dtype, seed=seed))
        self.acts, self.log, self.place, self.seen = acts, log, place, []

    def forward(self, x):
        if self.place == 0:
            self.seen.append(self.log(x))
        h = x
        for k, name in enumerate(self.names):
            h = getattr(self, name)(h)
            if self.place == k + 1:
                self.seen.append(self.log(h))
            if self.acts[k] is not None and k + 1 < len(self.names):
                h = self.acts[k](h)
        return h


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("draw", range(5))
def test_a_forward_logging_values_is_exported_and_converted_as_its_chain(
    tmp_path, seeded, dtype, draw
):
    rng = np.random.default_rng(seeded.rng.integers(1 << 62) + draw)
    depth = int(rng.integers(2, 5))
    widths = [int(w) for w in rng.integers(2, 7, size=depth + 1)]
    acts = [(None, F.relu, F.tanh)[int(i)] for i in rng.integers(0, 3, size=depth)]
    name = sorted(LOGS)[int(rng.integers(len(LOGS)))]
    place = int(rng.integers(0, depth + 1))
    model = Logging(widths, acts, LOGS[name], place, dtype, rng)
    what = f"{name} at place {place}, widths {widths}"
    scales = 10.0 ** rng.uniform(-3, 6, size=(6, 1))
    x = (scales * rng.standard_normal((6, widths[0]))).astype(dtype)
    want = model.predict(x.copy())
    try:
        path = export(model, tmp_path / "logging.onnx")
    except ConfigError as e:
        pytest.fail(seeded.msg(f"{what}: export refused a forward that only logs: {e}"))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.copy()})[0]
    bound = chain_rounding(model, x)  # per entry: rows of 1e-3 and of 1e6 alike
    off = np.abs(got.astype(np.float64) - want)
    assert np.all(off <= bound), seeded.msg(f"{what}: ONNX off by {off.max():.3g}")
    try:
        twin = interop.to_torch(model)
    except ConfigError as e:
        pytest.fail(seeded.msg(f"{what}: to_torch refused a forward that only logs: {e}"))
    with torch.no_grad():
        got = twin(torch.from_numpy(x.copy())).numpy()
    off = np.abs(got.astype(np.float64) - want)
    assert np.all(off <= bound), seeded.msg(f"{what}: to_torch off by {off.max():.3g}")
    # the forward itself still runs its log where called (model.predict did)
    assert model.seen, seeded.msg(f"{what}: the log never ran")


def test_a_model_file_replaced_by_a_save_while_load_reads_it_loads_the_new_model(
    tmp_path, seeded, monkeypatch
):
    """wxb.save replaces a file whole (a rename), so a reader sees the old model or the
    new one. load read the header, then the bytes: a save between the two gave the old
    header's digest against the new bytes, refused as "a damaged copy" (untrue)."""
    import wxb
    import wxb.io

    rng = seeded.rng
    n_in, width, n_out = (int(v) for v in rng.integers(2, 9, size=3))
    path = tmp_path / "served.safetensors"

    def model(seed):
        net = wxb.nn.Sequential(wxb.nn.Dense(n_in, width, seed=seed), wxb.nn.ReLU())
        net.append(wxb.nn.Dense(width, n_out, seed=seed + 1))
        net.info["task"] = f"regression {seed}"
        return net

    old, new = model(int(rng.integers(1 << 30))), model(int(rng.integers(1 << 30)))
    wxb.save(old, path)
    check = wxb.io._check_architecture
    saves = [new]

    def then_saved(*args):  # (after the header's read, before the bytes')
        if saves:
            wxb.save(saves.pop(), path)
        return check(*args)

    monkeypatch.setattr(wxb.io, "_check_architecture", then_saved)
    loaded = wxb.load(path)
    assert loaded.info["task"] == new.info["task"], seeded.msg(str(loaded.info))
    for mine, theirs in zip(loaded.parameters(), new.parameters(), strict=True):
        assert np.array_equal(mine.data, theirs.data), seeded.msg("not the new weights")
    x = rng.standard_normal((3, n_in)).astype(np.float32)
    assert np.array_equal(loaded.predict(x), new.predict(x)), seeded.msg("predict")
