"""A forward of one's own is exported (to ONNX, to torch) as the chain of its layers only
where it is one: a change made to a layer's result through ``.data`` with NumPy, which
the sample batch never triggers (a cap at 50 on rows of scale 3), made the export a
plain fc2(fc1(x)) that onnxruntime ran to other numbers on rows of scale 100.

Networks, thresholds and inputs are drawn fresh each run (the seed is printed;
WXB_TEST_SEED=<seed> replays a failure).
"""

import numpy as np
import onnxruntime as ort
import pytest

from wxb import interop
from wxb.errors import ConfigError
from wxb.nn import Dense, Module, ReLU
from wxb.nn import functional as F
from wxb.onnx import export


def cap(h, t):
    np.minimum(h.data, t, out=h.data)


def clip(h, t):
    h.data[...] = h.data.clip(-t, t)


def zero_above(h, t):
    h.data[h.data > t] = 0


def mask(h, t):
    np.multiply(h.data, h.data < t, out=h.data)


def detached_cap(h, t):
    a = h.detach().numpy()
    np.minimum(a, t, out=a)


CHANGES = {
    "cap": cap,
    "clip": clip,
    "zero_above": zero_above,
    "mask": mask,
    "detached_cap": detached_cap,
}


class Changed(Module):
    """fc1, an activation or not, a NumPy change of the result through .data, fc2."""

    def __init__(self, n_in, width, n_out, dtype, change, t, relu, rng):
        super().__init__()
        seeds = rng.integers(1 << 31, size=2)
        self.fc1 = Dense(n_in, width, dtype=dtype, seed=int(seeds[0]))
        self.fc2 = Dense(width, n_out, dtype=dtype, seed=int(seeds[1]))
        self.change, self.t, self.relu = change, t, relu

    def forward(self, x):
        h = self.fc1(x)
        if self.relu:
            h = F.relu(h)
        self.change(h, self.t)
        return self.fc2(h)


class Plain(Module):
    """Only a chain: ReLU(inplace=True) as a layer, tanh applied by the forward."""

    def __init__(self, n_in, width, n_out, dtype, rng):
        super().__init__()
        seeds = rng.integers(1 << 31, size=3)
        self.fc1 = Dense(n_in, width, dtype=dtype, seed=int(seeds[0]))
        self.act = ReLU(inplace=True)
        self.fc2 = Dense(width, width, dtype=dtype, seed=int(seeds[1]))
        self.fc3 = Dense(width, n_out, dtype=dtype, seed=int(seeds[2]))

    def forward(self, x):
        return self.fc3(F.tanh(self.fc2(self.act(self.fc1(x)))))


def wide_rows(rng, n, dtype):
    """Rows of scale 100 and 1e3, and tiny ones."""
    scales = np.array([100.0, 1e3, 1e-3, 100.0, 30.0, 1.0])[:, None]
    return (scales * rng.standard_normal((6, n))).astype(dtype)


def ort_run(path, x):
    (got,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        ["output"], {"input": x}
    )
    return got


def bound(model, x, dense):
    """float rounding of a chain of Gemms: a few ulps of the sums of |terms| per layer."""
    eps = float(np.finfo(x.dtype).eps)
    m, n = np.abs(x.astype(np.float64)), 0
    for layer in dense:
        w = np.abs(layer.weight.data.astype(np.float64))
        m = m @ w.T + np.abs(layer.bias.data.astype(np.float64))
        n += w.shape[1] + 1
    return 4 * n * eps * m + np.finfo(x.dtype).tiny


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CHANGES))
@pytest.mark.parametrize("relu", [False, True])
def test_a_numpy_change_through_data_is_not_exported_as_the_plain_chain(
    tmp_path, seeded, dtype, name, relu
):
    rng = seeded.rng
    n_in, width, n_out = (int(v) for v in rng.integers(2, 7, size=3))
    t = float(rng.uniform(30, 60))  # beyond what rows of scale 3 make fc1 give
    model = Changed(n_in, width, n_out, dtype, CHANGES[name], t, relu, rng)
    x = wide_rows(rng, n_in, dtype)
    want = model.predict(x)
    try:
        path = export(model, tmp_path / "changed.onnx")
    except ConfigError as e:
        assert "\n" not in str(e) and "Changed" in str(e), seeded.msg(str(e))
    else:  # exported: then exactly what the forward computes
        got = ort_run(path, x)
        np.testing.assert_allclose(
            got,
            want,
            rtol=0,
            atol=float(np.max(bound(model, x, [model.fc1, model.fc2]))),
            err_msg=seeded.msg(f"{name} at {t}"),
        )
    with pytest.raises(ConfigError):  # torch's twin: the same chain, the same refusal
        interop.to_torch(model)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_plain_chain_with_activations_still_exports_exactly(tmp_path, seeded, dtype):
    rng = seeded.rng
    n_in, width, n_out = (int(v) for v in rng.integers(1, 9, size=3))
    model = Plain(n_in, width, n_out, dtype, rng)
    path = export(model, tmp_path / "plain.onnx")
    x = wide_rows(rng, n_in, dtype)
    want = model.predict(x)
    # tanh passes fc2's error on at most as large (slope ≤ 1); fc3 scales it by its row
    # sums of |W| and adds its own rounding of values within ±1
    first = float(np.max(bound(model, x, [model.fc1, model.fc2])))
    rows = np.abs(model.fc3.weight.data.astype(np.float64)).sum(axis=1)
    tol = first * float(rows.max()) + float(
        np.max(bound(model, np.ones((1, width), dtype), [model.fc3]))
    )
    np.testing.assert_allclose(
        ort_run(path, x), want, rtol=0, atol=tol, err_msg=seeded.msg("plain")
    )
    twin = interop.to_torch(model)
    import torch

    with torch.no_grad():
        got = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=seeded.msg("plain, torch"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CHANGES))
def test_a_change_no_sample_triggers_is_refused_for_reading_the_result(
    tmp_path, seeded, dtype, name
):
    # a cap beyond any batch the export tries (1e5 and more) fires on rows of scale 1e8:
    # only that the forward read fc1's result through .data tells it is no chain
    rng = seeded.rng
    n_in, width, n_out = (int(v) for v in rng.integers(2, 7, size=3))
    t = float(rng.uniform(1e5, 1e6))
    model = Changed(n_in, width, n_out, dtype, CHANGES[name], t, False, rng)
    x = (1e8 * rng.standard_normal((6, n_in))).astype(dtype)
    assert np.all(np.isfinite(model.predict(x)))
    with pytest.raises(ConfigError, match="Changed") as refused:
        export(model, tmp_path / "changed.onnx")
    assert "\n" not in str(refused.value), seeded.msg(str(refused.value))


class ReadsItsOwn(Module):
    """Reads the batch's and a weight's values (not a layer's result): still a chain."""

    def __init__(self, n_in, n_out, dtype, rng):
        super().__init__()
        self.fc1 = Dense(n_in, n_out, dtype=dtype, seed=int(rng.integers(1 << 31)))
        self.seen = []

    def forward(self, x):
        self.seen.append((float(np.abs(x.data).max()), float(self.fc1.weight.data.sum())))
        return F.relu(self.fc1(x))


def test_reading_the_batch_or_a_weight_keeps_the_chain(tmp_path, seeded):
    rng = seeded.rng
    n_in, n_out = (int(v) for v in rng.integers(1, 9, size=2))
    model = ReadsItsOwn(n_in, n_out, "float64", rng)
    path = export(model, tmp_path / "reads.onnx")
    x = wide_rows(rng, n_in, "float64")
    tol = float(np.max(bound(model, x, [model.fc1])))
    np.testing.assert_allclose(ort_run(path, x), model.predict(x), rtol=0, atol=tol)


def test_values_watched_notes_reads_of_results_only_and_leaves_plain_tensors(seeded):
    from wxb.tensor import Tensor, values_watched

    rng = seeded.rng
    x = Tensor(rng.standard_normal((3, 4)))
    w = Tensor(rng.standard_normal((2, 4)), requires_grad=True)
    with values_watched() as quiet:
        h = x @ w.T
        float(np.abs(x.data).sum() + w.data.sum())  # the batch, a weight: not results
        g = (h * 2).sum()  # wxb's own reads
    assert not quiet.read and type(h) is Tensor and type(g) is Tensor
    for read in (lambda t: t.data, lambda t: t.detach().numpy(), lambda t: np.asarray(t.detach())):
        with values_watched() as outer:
            with values_watched() as inner:
                h = x @ w.T
                read(h)
            later = h + 1
        assert inner.read and outer.read, seeded.msg("a read inside counts for both")
        assert type(h) is Tensor and type(later) is Tensor


class Switch(Module):
    """A ReLU on rows of scale 3, a tanh on rows beyond ``t``: a branch on the values."""

    def __init__(self, n_in, n_out, t, rng):
        super().__init__()
        seeds = rng.integers(1 << 31, size=2)
        self.fc1 = Dense(n_in, n_out, dtype="float64", seed=int(seeds[0]))
        self.fc2 = Dense(n_out, n_out, dtype="float64", seed=int(seeds[1]))
        self.t = t

    def forward(self, x):
        z = self.fc1(x)
        return self.fc2(F.relu(z) if float(np.abs(x.data).max()) < self.t else F.tanh(z))


def test_a_branch_on_values_the_sample_never_takes_is_not_exported_as_one_chain(tmp_path, seeded):
    rng = seeded.rng
    n_in, n_out = (int(v) for v in rng.integers(2, 7, size=2))
    model = Switch(n_in, n_out, float(rng.uniform(30, 200)), rng)
    with pytest.raises(ConfigError, match="Switch"):
        export(model, tmp_path / "switch.onnx")
