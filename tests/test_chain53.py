"""A forward of one's own that does more than call its layers in order, generated: the
chain check (``describe.chain_layers``) behind ONNX export and ``to_torch`` either
exports what the forward computes or refuses in one line naming what it did and where.

Left through before: a Python branch on a result's values (``.item()``, ``float(h)``,
``.tolist()``, a comparison) that no sample batch takes, a NumPy write into the batch
the forward is given (``np.minimum(x.data, t, out=x.data)``) and a write through
``wxb.Tensor(h).data``: each exported as the plain chain, which onnxruntime and the
torch twin ran to other numbers on rows past the threshold, without an error. The
refusals of a forward that is no chain (``h.detach()``, ``wxb.Tensor(h)``) said only
that it was "a module of its own". The same forwards are trained by ``wxb.fit`` as
torch's loop trains their torch spelling.

Networks, operations, their places and thresholds are drawn fresh each run (the seed is
printed; WXB_TEST_SEED=<seed> replays a failure).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from rounding import chain_rounding

import wxb
import wxb.errors
from wxb import interop
from wxb.errors import ConfigError
from wxb.nn import Dense, Module
from wxb.nn import functional as F
from wxb.onnx import export

torch = pytest.importorskip("torch")


def _tanh(h):
    return torch.tanh(h) if isinstance(h, torch.Tensor) else F.tanh(h)


def _relu(h):
    return torch.relu(h) if isinstance(h, torch.Tensor) else F.relu(h)


def _wrapped(h):
    """wxb.Tensor(h) in wxb and torch.Tensor(h) in torch: h again, in the graph (an alias)."""
    return torch.Tensor(h) if isinstance(h, torch.Tensor) else wxb.Tensor(h)


# what the forward does at its place: (h, t) -> h, spelled alike for wxb and torch;
# each with the words its refusal must hold
BRANCHES = {
    "item": (lambda h, t: _tanh(h) if h.abs().max().item() > t else h, ".item()"),
    "float": (lambda h, t: _tanh(h) if float(h.abs().max()) > t else h, "float("),
    "tolist": (
        lambda h, t: _tanh(h) if max(abs(v) for r in h.tolist() for v in r) > t else h,
        ".tolist()",
    ),
    "compare": (lambda h, t: _tanh(h) if (h.abs() > t).any() else h, "comparison"),
    "rescale": (lambda h, t: h * min(1.0, t / (h.abs().max().item() + 1e-30)), ".item()"),
    "detach": (lambda h, t: h.detach(), "graph"),  # (cut from it, or made by none)
    # an operation of its own where the sample batch ran with a graph, else a cut one
    "wrap": (lambda h, t: _wrapped(h), "alias|graph"),
}


def _cap_data(h, t):
    np.minimum(h.data, t, out=h.data)
    return h


def _cap_wrapped(h, t):
    a = wxb.Tensor(h)
    np.minimum(a.data, t, out=a.data)
    return h


def _cap_numpy(h, t):
    a = h.detach().numpy()
    np.minimum(a, t, out=a)
    return h


def _cap_where(h, t):
    h.data[h.data > t] = t
    return h


# NumPy writes (wxb only: torch's .data writes are another matter)
WRITES = {
    "cap_data": (_cap_data, ".data"),
    "cap_wrapped": (_cap_wrapped, ".data"),
    "cap_numpy": (_cap_numpy, ".numpy()"),
    "cap_where": (_cap_where, ".data"),
}


class Drawn(Module):
    """fc1 … fcK with activations drawn between them, and ``op`` applied to the batch
    (place 0) or to fc<place>'s result."""

    def __init__(self, widths, acts, op, place, t, dtype, rng):
        super().__init__()
        self.names = [f"fc{k + 1}" for k in range(len(widths) - 1)]
        for k, name in enumerate(self.names):
            seed = int(rng.integers(1 << 31))
            setattr(self, name, Dense(widths[k], widths[k + 1], dtype=dtype, seed=seed))
        self.acts, self.op, self.place, self.t = acts, op, place, t

    def forward(self, x):
        h = self.op(x, self.t) if self.place == 0 else x
        for k, name in enumerate(self.names):
            h = getattr(self, name)(h)
            if self.place == k + 1:
                h = self.op(h, self.t)
            if self.acts[k] is not None and k + 1 < len(self.names):
                h = self.acts[k](h)
        return h


class TorchDrawn(torch.nn.Module):
    """Drawn's forward in torch, its weights copied."""

    def __init__(self, model):
        super().__init__()
        self.layers = torch.nn.ModuleList()
        for name in model.names:
            layer = getattr(model, name)
            out, n = layer.weight.shape
            twin = torch.nn.Linear(n, out, dtype=torch.float64)
            with torch.no_grad():
                twin.weight.copy_(torch.from_numpy(layer.weight.data.astype(np.float64)))
                twin.bias.copy_(torch.from_numpy(layer.bias.data.astype(np.float64)))
            self.layers.append(twin)
        self.acts, self.op, self.place, self.t = model.acts, model.op, model.place, model.t

    def forward(self, x):
        h = self.op(x, self.t) if self.place == 0 else x
        for k, layer in enumerate(self.layers):
            h = layer(h)
            if self.place == k + 1:
                h = self.op(h, self.t)
            if self.acts[k] is not None and k + 1 < len(self.layers):
                h = self.acts[k](h)
        return h


def _draw(rng, ops, dtype, t):
    depth = int(rng.integers(2, 5))
    widths = [int(w) for w in rng.integers(2, 7, size=depth + 1)]
    acts = [(None, _relu, _tanh)[int(i)] for i in rng.integers(0, 3, size=depth)]
    name = sorted(ops)[int(rng.integers(len(ops)))]
    place = int(rng.integers(0, depth + 1))
    op, words = ops[name]
    return Drawn(widths, acts, op, place, t, dtype, rng), name, place, words


def _where_words(place):
    return "before its first layer" if place == 0 else f"'fc{place}'"


def _ort(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("draw", range(6))
def test_a_forward_doing_more_than_chaining_is_exported_as_it_is_or_refused_by_name(
    tmp_path, seeded, dtype, draw
):
    rng = np.random.default_rng(seeded.rng.integers(1 << 62) + draw)
    t = float(rng.uniform(1e4, 1e6))  # beyond the rows the chain check tries (scale ≤ 1e3)
    model, name, place, words = _draw(rng, {**BRANCHES, **WRITES}, dtype, t)
    if name in WRITES and place == 0:
        words = "writes into the batch"  # (the batch's own array: writes are what matter)
    n_in = model.fc1.in_features
    # rows past the threshold (where a branch or a cap acts), and small ones
    x = np.concatenate([1e7 * rng.standard_normal((3, n_in)), rng.standard_normal((3, n_in))])
    x = x.astype(dtype)
    want = model.predict(x.copy())
    what = f"{name} at place {place} (t={t:.4g}), acts {[a and a.__name__ for a in model.acts]}"
    try:
        path = export(model, tmp_path / "drawn.onnx")
    except ConfigError as e:
        text = str(e)
        assert "\n" not in text and "Drawn" in text, seeded.msg(f"{what}: {text}")
        named = any(w in text for w in words.split("|"))
        assert named, seeded.msg(f"{what}: the refusal names no {words!r}: {text}")
        wheres = (_where_words(place), "batch")
        assert any(w in text for w in wheres), seeded.msg(f"{what}: where? {text}")
    else:  # exported: then what the forward computes
        np.testing.assert_allclose(
            _ort(path, x.copy()), want, rtol=0, atol=float(np.max(chain_rounding(model, x))),
            err_msg=seeded.msg(f"{what}: ONNX"),
        )  # fmt: skip
    try:
        twin = interop.to_torch(model)
    except ConfigError as e:
        text = str(e)
        named = any(w in text for w in words.split("|"))
        assert "\n" not in text and named, seeded.msg(f"{what}: to_torch: {text}")
    else:
        with torch.no_grad():
            got = twin(torch.from_numpy(x.copy())).numpy()
        np.testing.assert_allclose(
            got, want, rtol=0, atol=float(np.max(chain_rounding(model, x))),
            err_msg=seeded.msg(f"{what}: to_torch"),
        )  # fmt: skip
    if name in BRANCHES and dtype == "float64":
        _fit_against_torch(model, rng, lambda m: seeded.msg(f"{what}: {m}"))


@pytest.mark.parametrize("draw", range(4))
def test_a_forward_writing_into_its_batch_is_refused_naming_it(tmp_path, seeded, draw):
    rng = np.random.default_rng(seeded.rng.integers(1 << 62) + draw)
    t = float(rng.uniform(1e4, 1e6))
    ops = {k: v for k, v in WRITES.items() if k != "cap_wrapped"}
    model, name, _, _ = _draw(rng, ops, "float64", t)
    model.place = 0  # the batch itself, before the first layer
    x = 1e7 * rng.standard_normal((4, model.fc1.in_features))
    want = model.predict(x.copy())
    assert np.all(np.isfinite(want))
    for convert in (lambda: export(model, tmp_path / "w.onnx"), lambda: interop.to_torch(model)):
        with pytest.raises(ConfigError) as refused:
            convert()
        text = str(refused.value)
        assert "writes into the batch" in text and "\n" not in text, seeded.msg(f"{name}: {text}")


def _fit_against_torch(model, rng, msg):
    """wxb.fit runs the forward itself, branch and cut included: as torch's loop over
    the same batches, with a threshold the batches' results cross on some of them."""
    n_in, n_out = model.fc1.in_features, getattr(model, model.names[-1]).out_features
    X = rng.standard_normal((12, n_in)) * rng.uniform(0.5, 3.0, size=(12, 1))
    Y = rng.standard_normal((12, n_out))
    seen, op = [], model.op
    model.op = lambda h, t: seen.append(float(np.abs(h.detach().numpy()).max())) or h
    with wxb.no_grad():
        for start in range(0, 12, 4):
            model(wxb.Tensor(X[start : start + 4]))
    low, mid = sorted(seen)[:2]  # (a threshold at one batch's |h| would be a tie)
    model.op, model.t = op, (low + mid) / 2
    twin = TorchDrawn(model)
    opt = torch.optim.SGD(twin.parameters(), lr=0.05)
    if model.place == len(model.names) and model.op is BRANCHES["detach"][0]:
        # the result cut from the graph: torch's backward refuses it, and so does fit
        with pytest.raises(wxb.errors.WxbError) as refused:
            wxb.fit(model, X, Y, loss="mse", epochs=1, batch_size=4, verbose=0)
        assert "\n" not in str(refused.value), msg(str(refused.value))
        return
    for start in range(0, 12, 4):
        opt.zero_grad()
        out = twin(torch.tensor(X[start : start + 4]))
        # wxb's "mse": ½‖ŷ − y‖² a row, averaged over the rows (README, Conventions)
        (0.5 * ((out - torch.tensor(Y[start : start + 4])) ** 2).sum(1)).mean().backward()
        opt.step()
    wxb.fit(
        model, X, Y, loss="mse", optimizer=wxb.optim.SGD(model.parameters(), lr=0.05),
        epochs=1, batch_size=4, shuffle=False, verbose=0,
    )  # fmt: skip
    for k, name in enumerate(model.names):
        layer, theirs = getattr(model, name), twin.layers[k]
        for mine, their in ((layer.weight, theirs.weight), (layer.bias, theirs.bias)):
            # the same float64 steps, apart by rounding: the threshold lies between batches'
            np.testing.assert_allclose(
                mine.data, their.detach().numpy(), rtol=1e-9, atol=1e-12,
                err_msg=msg(f"fit against torch's loop: {name}"),
            )  # fmt: skip


class BatchBranch(Module):
    """fc1, then tanh where the batch's array (read through x.data) is past ``t``, else
    ReLU, then fc2: a branch on the batch's values, which a forward may read freely."""

    def __init__(self, n_in, width, n_out, t, dtype, rng):
        super().__init__()
        seeds = rng.integers(1 << 31, size=2)
        self.fc1 = Dense(n_in, width, dtype=dtype, seed=int(seeds[0]))
        self.fc2 = Dense(width, n_out, dtype=dtype, seed=int(seeds[1]))
        self.names = ["fc1", "fc2"]
        self.t = t

    def forward(self, x):
        h = self.fc1(x)
        return self.fc2(F.tanh(h) if float(np.abs(x.data).max()) > self.t else F.relu(h))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_branch_on_the_batchs_array_past_1e3_is_refused(tmp_path, seeded, dtype):
    # rows of 1e3 never take it: a forward that read x.data is tried on rows up to its
    # dtype's 1e9 (float32) or 1e15 (float64)
    rng = seeded.rng
    n_in, width, n_out = (int(v) for v in rng.integers(2, 7, size=3))
    t = float(10 ** rng.uniform(4, 8 if dtype == "float32" else 14))
    model = BatchBranch(n_in, width, n_out, t, dtype, rng)
    x = (10 * t * rng.standard_normal((4, n_in))).astype(dtype)
    want = model.predict(x.copy())
    try:
        path = export(model, tmp_path / "branch.onnx")
    except ConfigError as e:
        text = str(e)
        assert "\n" not in text and "x.data" in text, seeded.msg(text)
    else:
        np.testing.assert_allclose(
            _ort(path, x.copy()), want, rtol=0, atol=float(np.max(chain_rounding(model, x))),
            err_msg=seeded.msg(f"a branch at {t:.3g} exported"),
        )  # fmt: skip
    with pytest.raises(ConfigError, match=r"x\.data"):
        interop.to_torch(model)
