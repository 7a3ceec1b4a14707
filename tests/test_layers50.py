"""torch.nn layers a dense (tabular) network is written with, which wxb.nn lacked: each
against PyTorch (values, gradients of the input and the parameters, a training step in a
Sequential), against central differences, and in every place a model goes (state_dict,
a model file, ONNX, PyTorch and back, summary and the diagrams)."""

import math

import numpy as np
import pytest

import wxb
import wxb.describe
import wxb.interop
from wxb import nn
from wxb.errors import ConfigError, DataError

torch = pytest.importorskip("torch")

EPS32 = float(np.finfo(np.float32).eps)


def _tensor(x, grad=True):
    return wxb.Tensor(x, requires_grad=grad), torch.tensor(x, requires_grad=grad)


def _copy_weights(model, twin):
    with torch.no_grad():
        for mine, their in zip(model.parameters(), twin.parameters(), strict=True):
            their.copy_(torch.tensor(mine.data))


# ---------------------------------------------------------------------------------
# RMSNorm: y = γ ⊙ x/√(mean(x²) + ε) over the last dims, torch 2.4's nn.RMSNorm
# ---------------------------------------------------------------------------------
def _rms_case(rng, dtype="float64"):
    """A random input, normalized_shape (its last 1 or 2 dims), eps (None: torch's
    default) and affine flag, with the pair of layers holding one random γ."""
    ndim = int(rng.integers(2, 5))
    shape = tuple(int(n) for n in rng.integers(1, 6, size=ndim))
    k = int(rng.integers(1, min(ndim, 2) + 1))
    normalized = shape[ndim - k :]
    eps = [None, float(rng.uniform(1e-6, 1e-2))][int(rng.integers(2))]
    affine = bool(rng.integers(0, 4))  # mostly with γ
    ours = nn.RMSNorm(normalized, eps, affine, dtype=dtype)
    theirs = torch.nn.RMSNorm(normalized, eps, affine, dtype=getattr(torch, dtype))
    if affine:
        gamma = rng.normal(size=normalized).astype(dtype)
        ours.weight.data[...] = gamma
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(gamma))
    x = (rng.normal(size=shape) * rng.uniform(0.1, 10)).astype(dtype)
    return ours, theirs, x, normalized


def _rms_grad_terms(layer, x, upstream, normalized):
    """The size of the terms ∂L/∂x sums, r·(|ĝ| + |x̂|·mean|ĝ ⊙ x̂|) with ĝ = γ ⊙ g,
    r = 1/√(mean(x²) + ε), and x̂ = x·r itself (float64, over the normalised dims)."""
    x = x.astype(np.float64)
    axes = tuple(range(x.ndim - len(normalized), x.ndim))
    eps = float(np.finfo(layer.dtype).eps) if layer.eps is None else layer.eps
    r = 1 / np.sqrt(np.mean(x * x, axis=axes, keepdims=True) + eps)
    gamma = 1.0 if layer.weight is None else np.abs(layer.weight.data.astype(np.float64))
    ghat, xhat = np.abs(upstream * gamma), np.abs(x * r)
    return r * (ghat + xhat * np.mean(ghat * xhat, axis=axes, keepdims=True)), x * r


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_rms_norm_values_and_gradients_are_torchs(rng, dtype):
    eps = float(np.finfo(dtype).eps)
    for _ in range(20):
        ours, theirs, x, normalized = _rms_case(rng, dtype)
        n = int(np.prod(normalized))
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        ox, tx = _tensor(x)
        a, b = ours(ox), theirs(tx)
        assert a.shape == tuple(b.shape) and a.dtype == np.dtype(dtype)
        # y = γ·x·r, r from a sum of n squares (relative error ≤ n·ε), √, 1/· and two ⊙:
        # each within (n + 6)·ε of the exact, relatively (torch sums in the dtype; wxb in
        # float64, so its own y is within 4ε)
        np.testing.assert_array_less(
            np.abs(a.data.astype(np.float64) - b.detach().numpy()),
            (n + 10) * eps * np.abs(b.detach().numpy().astype(np.float64)) + 1e-300,
        )
        upstream = rng.normal(size=a.shape).astype(dtype)
        (a * wxb.Tensor(upstream)).sum().backward()
        (b * torch.tensor(upstream)).sum().backward()
        assert ox.grad.dtype == np.dtype(dtype)
        # ∂L/∂x = r ⊙ (ĝ − x̂ ⊙ mean(ĝ ⊙ x̂)): r and x̂ within (n + 6)·ε each, the mean a
        # sum of n terms, a few roundings after: relative to the size of the terms
        terms, xhat = _rms_grad_terms(ours, x, upstream, normalized)
        np.testing.assert_array_less(
            np.abs(ox.grad.astype(np.float64) - tx.grad.numpy()), 4 * (n + 10) * eps * terms
        )
        if ours.weight is not None:  # ∂L/∂γ = Σ g ⊙ x̂ over the rows: that sum's rounding
            rows = x.size // n
            sizes = np.abs(upstream * xhat).reshape(rows, *normalized).sum(axis=0)
            np.testing.assert_array_less(
                np.abs(ours.weight.grad.astype(np.float64) - theirs.weight.grad.numpy()),
                2 * (rows + n + 10) * eps * sizes + 1e-300,
            )
        functional = nn.functional.rms_norm(wxb.Tensor(x), normalized, ours.weight, ours.eps)
        np.testing.assert_array_equal(functional.data, a.data)
        twin = torch.nn.functional.rms_norm(tx, normalized, theirs.weight, theirs.eps)
        np.testing.assert_array_equal(twin.detach().numpy(), b.detach().numpy())


def test_rms_norm_gradients_are_finite_differences(rng):
    features, rows = int(rng.integers(2, 7)), int(rng.integers(1, 5))
    layer = nn.RMSNorm(features, float(rng.uniform(1e-4, 1e-1)), dtype="float64")
    layer.weight.data[:] = rng.normal(size=features)
    x = rng.normal(size=(rows, features))
    upstream = rng.normal(size=x.shape)
    ox = wxb.Tensor(x, requires_grad=True)
    (layer(ox) * wxb.Tensor(upstream)).sum().backward()

    def loss(values, gamma):
        moved = nn.RMSNorm(features, layer.eps, dtype="float64")
        moved.weight.data[:] = gamma
        return float((moved(wxb.Tensor(values)).data * upstream).sum())

    h = 1e-6
    numeric_x = np.empty_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = h
        gamma = layer.weight.data
        numeric_x[index] = (loss(x + step, gamma) - loss(x - step, gamma)) / (2 * h)
    numeric_gamma = np.empty(features)
    for j in range(features):
        step = np.zeros(features)
        step[j] = h
        numeric_gamma[j] = (
            loss(x, layer.weight.data + step) - loss(x, layer.weight.data - step)
        ) / (2 * h)
    # truncation h²·f‴/6 and rounding ε·|L|/h: both below 1e-7 for these sizes
    np.testing.assert_allclose(ox.grad, numeric_x, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(layer.weight.grad, numeric_gamma, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_rms_norm_trains_a_step_as_torchs_in_a_sequential(rng, optimizer):
    rows, features, hidden = int(rng.integers(2, 9)), int(rng.integers(2, 6)), 6
    X, y = rng.normal(size=(rows, features)), rng.integers(0, 3, rows)
    model = nn.Sequential(
        nn.Dense(features, hidden), nn.RMSNorm(hidden), nn.ReLU(), nn.Dense(hidden, 3)
    ).to("float64")
    model[1].weight.data[:] = rng.normal(size=hidden)
    assert "RMSNorm" in model.why_not_planned()  # the recorded graph runs it
    twin = wxb.interop.to_torch(model)
    assert isinstance(twin[1], torch.nn.RMSNorm)
    theirs = getattr(torch.optim, optimizer)(twin.parameters(), lr=0.05)
    ours = getattr(wxb.optim, optimizer)(model.parameters(), lr=0.05)
    theirs.zero_grad()
    torch.nn.functional.cross_entropy(twin(torch.tensor(X)), torch.tensor(y)).backward()
    theirs.step()
    ours.zero_grad()
    nn.CrossEntropyLoss()(model(wxb.tensor(X, dtype=wxb.float64)), y).backward()
    start = model[1].weight.data.copy()
    ours.step()
    assert not np.array_equal(model[1].weight.data, start)  # γ learned
    for mine, their in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(mine.data, their.detach().numpy(), rtol=1e-12, atol=1e-13)


def test_rms_norm_state_dict_round_trips_with_torchs(rng):
    for _ in range(5):
        ours, theirs, x, normalized = _rms_case(rng)
        if ours.weight is None:
            assert ours.state_dict() == {} and dict(theirs.state_dict()) == {}
            continue
        gamma = rng.normal(size=normalized)
        theirs.load_state_dict({"weight": torch.tensor(gamma)})
        ours.load_state_dict(theirs.state_dict())  # torch's state into wxb
        np.testing.assert_array_equal(ours.weight.data, gamma)
        fresh = torch.nn.RMSNorm(normalized, ours.eps, dtype=torch.float64)
        fresh.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
        np.testing.assert_array_equal(fresh.weight.detach().numpy(), gamma)
        np.testing.assert_allclose(
            ours(wxb.Tensor(x)).data, fresh(torch.tensor(x)).detach().numpy(), rtol=1e-13
        )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rms_norm_in_file_onnx_and_torch(rng, tmp_path, dtype):
    onnxruntime = pytest.importorskip("onnxruntime")
    import wxb.onnx

    features, hidden = int(rng.integers(2, 6)), int(rng.integers(2, 8))
    eps = [None, float(rng.uniform(1e-6, 1e-2))][int(rng.integers(2))]
    model = nn.Sequential(
        nn.Dense(features, hidden), nn.RMSNorm(hidden, eps), nn.Tanh(), nn.Dense(hidden, 2)
    ).to(dtype)
    model[1].weight.data[:] = rng.normal(size=hidden)
    X = (rng.normal(size=(int(rng.integers(1, 20)), features)) * 3).astype(dtype)
    expected = model(X).data
    wxb.save(model, tmp_path / "m.safetensors")
    loaded = wxb.load(tmp_path / "m.safetensors")
    assert repr(loaded) == repr(model) and loaded[1].eps == eps
    np.testing.assert_array_equal(loaded(X).data, expected)

    wxb.onnx.export(model, tmp_path / "m.onnx")
    got = onnxruntime.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"input": X})[0]
    # the same operations in the same dtypes, but for the order of the (MatMul's) sums
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)

    twin = wxb.interop.to_torch(model)
    assert isinstance(twin[1], torch.nn.RMSNorm) and twin[1].eps == eps
    np.testing.assert_allclose(
        twin(torch.tensor(X)).detach().numpy(), expected, rtol=tolerance, atol=tolerance
    )
    back = wxb.interop.from_torch(twin)
    assert isinstance(back[1], nn.RMSNorm) and back[1].eps == eps
    np.testing.assert_array_equal(back(X).data, expected)


def test_rms_norm_in_summary_and_diagrams(rng):
    features, hidden = int(rng.integers(2, 6)), int(rng.integers(2, 8))
    model = nn.Sequential(nn.Dense(features, hidden), nn.RMSNorm(hidden), nn.Dense(hidden, 3))
    rows = model.summary().rows
    assert [row.output_shape for row in rows] == [(hidden,), (hidden,), (3,)]
    assert rows[1].parameters == hidden and rows[1].forward_flops == 0
    assert rows[1].activation_bytes == hidden * 4
    chart = wxb.describe.architecture_diagram(model)
    assert f'-->|"{hidden}"| lay3' in chart
    assert "RMSNorm: γ ⊙ Z⁽¹⁾/√(mean(Z⁽¹⁾ ⊙ Z⁽¹⁾) + ε)" in wxb.describe.forward_diagram(model)
    assert "r ⊙ (ĝ − x̂ ⊙ mean(ĝ ⊙ x̂))" in wxb.describe.backward_diagram(model)


def test_rms_norm_settings_are_checked():
    with pytest.raises(ConfigError, match="RMSNorm normalized_shape"):
        nn.RMSNorm(0)
    with pytest.raises(ConfigError, match="RMSNorm: eps"):
        nn.RMSNorm(3, -1.0)
    with pytest.raises(ConfigError, match="RMSNorm elementwise_affine"):
        nn.RMSNorm(3, None, "yes")
    with pytest.raises(ConfigError, match=r"RMSNorm takes no epsilon= \(Keras's\): ε is eps="):
        nn.RMSNorm(3, epsilon=1e-3)
    with pytest.raises(wxb.errors.ShapeError, match=r"rms_norm: normalized_shape \[3\]"):
        nn.RMSNorm(3)(wxb.Tensor(np.zeros((2, 4), np.float32)))
    with pytest.raises(DataError, match="X is float64 but W is float32"):
        nn.RMSNorm(3)(wxb.Tensor(np.zeros((2, 3))))


# ---------------------------------------------------------------------------------
# GLU: a ⊙ σ(b), a and b the halves of the input along dim, torch's nn.GLU
# ---------------------------------------------------------------------------------
def _glu_case(rng, dtype="float64"):
    ndim = int(rng.integers(1, 5))
    shape = [int(n) for n in rng.integers(1, 5, size=ndim)]
    dim = int(rng.integers(-ndim, ndim))
    shape[dim] *= 2
    x = (rng.normal(size=shape) * rng.uniform(0.5, 20)).astype(dtype)
    return nn.GLU(dim), torch.nn.GLU(dim), x, dim


def _glu_sizes(x, upstream, dim):
    """The size of each term of ∂L/∂x: |g|·σ(b) for a; |g|·|a|·σ(b) for b, whose
    1 − σ(b) is taken from σ(b) rounded (an error of ε·σ(b), not ε·(1 − σ(b)): both
    torch's and wxb's, where σ(b) is near 1)."""
    a, b = np.split(x.astype(np.float64), 2, axis=dim)
    s = 1 / (1 + np.exp(-b))
    g = np.abs(upstream.astype(np.float64))
    return np.abs(a) * s, np.concatenate((g * s, g * np.abs(a) * s), axis=dim)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_glu_values_and_gradients_are_torchs(rng, dtype):
    eps = float(np.finfo(dtype).eps)
    for _ in range(20):
        ours, theirs, x, dim = _glu_case(rng, dtype)
        assert repr(ours) == repr(theirs)
        ox, tx = _tensor(x)
        a, b = ours(ox), theirs(tx)
        assert a.shape == tuple(b.shape) and a.dtype == np.dtype(dtype)
        # a·σ(b): e^(−b), + 1, 1/· and ⊙, each rounded once (relatively: no cancellation)
        upstream = rng.normal(size=a.shape).astype(dtype)
        size, sizes = _glu_sizes(x, upstream, dim)
        np.testing.assert_array_less(
            np.abs(a.data.astype(np.float64) - b.detach().numpy()), 16 * eps * size + 1e-300
        )
        (a * wxb.Tensor(upstream)).sum().backward()
        (b * torch.tensor(upstream)).sum().backward()
        assert ox.grad.dtype == np.dtype(dtype)
        np.testing.assert_array_less(
            np.abs(ox.grad.astype(np.float64) - tx.grad.numpy()), 24 * eps * sizes + 1e-300
        )
        functional = nn.functional.glu(wxb.Tensor(x), dim)
        np.testing.assert_array_equal(functional.data, a.data)


def test_glu_gradient_is_finite_differences(rng):
    rows, half = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    x = rng.normal(size=(rows, 2 * half)) * 3
    upstream = rng.normal(size=(rows, half))
    ox = wxb.Tensor(x, requires_grad=True)
    (nn.GLU()(ox) * wxb.Tensor(upstream)).sum().backward()
    h, numeric = 1e-6, np.empty_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = h
        up, down = (nn.GLU()(wxb.Tensor(x + d)).data for d in (step, -step))
        numeric[index] = ((up - down) * upstream).sum() / (2 * h)
    # truncation h²·f‴/6 and rounding ε·|L|/h: both below 1e-7 here
    np.testing.assert_allclose(ox.grad, numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_glu_trains_a_step_as_torchs_in_a_sequential(rng, optimizer):
    rows, features, half = int(rng.integers(2, 9)), int(rng.integers(2, 6)), 3
    X, y = rng.normal(size=(rows, features)), rng.integers(0, 3, rows)
    model = nn.Sequential(nn.Dense(features, 2 * half), nn.GLU(), nn.Dense(half, 3))
    model = model.to("float64")
    assert "GLU" in model.why_not_planned()  # the recorded graph runs it
    twin = torch.nn.Sequential(
        torch.nn.Linear(features, 2 * half), torch.nn.GLU(), torch.nn.Linear(half, 3)
    ).double()
    model.load_state_dict(twin.state_dict())  # torch's state, by position
    theirs = getattr(torch.optim, optimizer)(twin.parameters(), lr=0.05)
    ours = getattr(wxb.optim, optimizer)(model.parameters(), lr=0.05)
    theirs.zero_grad()
    torch.nn.functional.cross_entropy(twin(torch.tensor(X)), torch.tensor(y)).backward()
    theirs.step()
    ours.zero_grad()
    nn.CrossEntropyLoss()(model(wxb.tensor(X, dtype=wxb.float64)), y).backward()
    ours.step()
    for mine, their in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(mine.data, their.detach().numpy(), rtol=1e-12, atol=1e-13)
    back = torch.nn.Sequential(
        torch.nn.Linear(features, 2 * half), torch.nn.GLU(), torch.nn.Linear(half, 3)
    ).double()
    back.load_state_dict({k: torch.tensor(v) for k, v in zip(
        back.state_dict(), model.state_dict().values(), strict=True
    )})  # fmt: skip
    for mine, their in zip(model.parameters(), back.parameters(), strict=True):
        np.testing.assert_array_equal(mine.data, their.detach().numpy())  # and back to torch


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_glu_in_file_onnx_and_torch(rng, tmp_path, dtype):
    onnxruntime = pytest.importorskip("onnxruntime")
    import wxb.onnx

    features, half = int(rng.integers(2, 6)), int(rng.integers(1, 5))
    model = nn.Sequential(
        nn.Dense(features, 2 * half), nn.GLU(dim=int(rng.choice([1, -1]))), nn.Dense(half, 2)
    ).to(dtype)
    X = (rng.normal(size=(int(rng.integers(1, 20)), features)) * 3).astype(dtype)
    expected = model(X).data
    wxb.save(model, tmp_path / "m.safetensors")
    loaded = wxb.load(tmp_path / "m.safetensors")
    assert repr(loaded) == repr(model)
    np.testing.assert_array_equal(loaded(X).data, expected)

    wxb.onnx.export(model, tmp_path / "m.onnx")
    got = onnxruntime.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"input": X})[0]
    # the same operations (Slice, then 1/(1 + e^(−b)) as wxb's), the Gemms' sums aside
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)

    twin = wxb.interop.to_torch(model)
    assert isinstance(twin[1], torch.nn.GLU) and twin[1].dim == model[1].dim
    np.testing.assert_allclose(
        twin(torch.tensor(X)).detach().numpy(), expected, rtol=tolerance, atol=tolerance
    )
    back = wxb.interop.from_torch(twin)
    assert isinstance(back[1], nn.GLU) and back[1].dim == model[1].dim
    np.testing.assert_array_equal(back(X).data, expected)


def test_glu_onnx_refuses_what_it_cannot_export_in_one_line(tmp_path):
    import wxb.onnx

    cases = [
        (nn.Sequential(nn.Dense(3, 4), nn.GLU(0), nn.Dense(4, 2)), r"halves dim 0"),
        (nn.Sequential(nn.GLU(), nn.Dense(2, 2)), r"the width it halves is not known"),
    ]
    for model, pattern in cases:
        with pytest.raises(ConfigError, match=r"glu1.*" + pattern) as caught:
            wxb.onnx.export(model, tmp_path / "m.onnx")
        assert "\n" not in str(caught.value)


def test_glu_in_summary_and_diagrams(rng):
    features, half = int(rng.integers(2, 6)), int(rng.integers(1, 6))
    model = nn.Sequential(nn.Dense(features, 2 * half), nn.GLU(), nn.Dense(half, 3))
    rows = model.summary().rows
    assert [row.output_shape for row in rows] == [(2 * half,), (half,), (3,)]
    assert rows[1].activation_bytes == half * 4 and rows[1].forward_flops == 0
    chart = wxb.describe.architecture_diagram(model)
    assert f'lay1 -->|"{2 * half}"| lay2' in chart and f'lay2 -->|"{half}"| lay3' in chart
    assert "GLU: U ⊙ σ(V)" in wxb.describe.forward_diagram(model)
    assert "g ⊙ U ⊙ σ(V) ⊙ (1 − σ(V))" in wxb.describe.backward_diagram(model)
    text = wxb.explain(model, rng.normal(size=(2, features)).astype(np.float32))
    assert "glu1(Z⁽¹⁾) = U ⊙ σ(V)" in str(text)


def test_glu_settings_are_checked():
    with pytest.raises(ConfigError, match="GLU dim must be an integer"):
        nn.GLU(1.5)
    layer = nn.GLU()
    with pytest.raises(ConfigError, match="GLU dim must be an integer"):
        layer.dim = "last"
    layer.dim = 0
    assert layer(wxb.Tensor(np.ones((4, 3), np.float32))).shape == (2, 3)
    with pytest.raises(wxb.errors.ShapeError, match=r"glu: halves dim -1, which must be of even"):
        nn.GLU()(wxb.Tensor(np.ones((2, 5), np.float32)))
    with pytest.raises(ConfigError, match="cannot save this model: Dense 'dense2' takes 4"):
        wxb.save(nn.Sequential(nn.Dense(3, 4), nn.GLU(), nn.Dense(4, 2)), "unused.safetensors")


# ---------------------------------------------------------------------------------
# Unflatten: a dim split into unflattened_size (a reshape), torch's nn.Unflatten
# ---------------------------------------------------------------------------------
def _unflatten_case(rng):
    ndim = int(rng.integers(1, 4))
    shape = [int(n) for n in rng.integers(1, 4, size=ndim)]
    dim = int(rng.integers(-ndim, ndim))
    sizes = [int(n) for n in rng.integers(1, 4, size=int(rng.integers(1, 4)))]
    shape[dim] = int(np.prod(sizes))
    if rng.integers(2):  # one size left to -1, as torch takes it
        sizes[int(rng.integers(len(sizes)))] = -1
    return dim, tuple(sizes), rng.normal(size=shape)


def test_unflatten_values_and_gradient_are_torchs(rng):
    for _ in range(20):
        dim, sizes, x = _unflatten_case(rng)
        ours, theirs = nn.Unflatten(dim, sizes), torch.nn.Unflatten(dim, sizes)
        assert repr(ours) == repr(theirs)
        ox, tx = _tensor(x)
        a, b = ours(ox), theirs(tx)
        assert a.shape == tuple(b.shape)
        np.testing.assert_array_equal(a.data, b.detach().numpy())
        upstream = rng.normal(size=a.shape)
        (a * wxb.Tensor(upstream)).sum().backward()
        (b * torch.tensor(upstream)).sum().backward()
        np.testing.assert_array_equal(ox.grad, tx.grad.numpy())  # δ reshaped back, exactly
        np.testing.assert_array_equal(wxb.Tensor(x).unflatten(dim, sizes).data, a.data)


def test_unflatten_gradient_is_finite_differences(rng):
    """∂L/∂W of a Dense before an Unflatten, L weighing the unflattened outputs."""
    features, sizes = int(rng.integers(1, 4)), (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    model = nn.Sequential(nn.Dense(features, sizes[0] * sizes[1]), nn.Unflatten(1, sizes))
    model = model.to("float64")
    x = rng.normal(size=(int(rng.integers(1, 4)), features))
    upstream = rng.normal(size=(len(x), *sizes))
    (model(x) * wxb.Tensor(upstream)).sum().backward()
    weight = model[0].weight
    h, numeric = 1e-6, np.empty(weight.shape)
    for index in np.ndindex(weight.shape):
        values = []
        for step in (h, -h):
            weight.data[index] += step
            values.append(float((model(x).data * upstream).sum()))
            weight.data[index] -= step
        numeric[index] = (values[0] - values[1]) / (2 * h)
    # L is linear in W: central differences are exact but for rounding ε·|L|/h
    np.testing.assert_allclose(weight.grad, numeric, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_unflatten_trains_a_step_as_torchs_in_an_autoencoder(rng, optimizer):
    rows, sizes = int(rng.integers(2, 9)), (int(rng.integers(1, 4)), int(rng.integers(2, 5)))
    width = sizes[0] * sizes[1]
    X = rng.normal(size=(rows, *sizes))
    model = nn.Sequential(
        nn.Flatten(), nn.Dense(width, 3), nn.Tanh(), nn.Dense(3, width), nn.Unflatten(1, sizes)
    ).to("float64")
    assert "Unflatten" in model.why_not_planned()
    twin = wxb.interop.to_torch(model)
    assert isinstance(twin[4], torch.nn.Unflatten) and twin[4].unflattened_size == sizes
    theirs = getattr(torch.optim, optimizer)(twin.parameters(), lr=0.05)
    ours = getattr(wxb.optim, optimizer)(model.parameters(), lr=0.05)
    theirs.zero_grad()
    torch.nn.functional.l1_loss(twin(torch.tensor(X)), torch.tensor(X)).backward()
    theirs.step()
    ours.zero_grad()
    nn.L1Loss()(
        model(wxb.tensor(X, dtype=wxb.float64)), wxb.tensor(X, dtype=wxb.float64)
    ).backward()
    ours.step()
    # Adam's first step is lr·g/(|g| + ε): an L1 gradient that cancels to 0 in torch and to
    # a rounding (~1e-15 of its ±1/n summands) here moves by up to lr·1e-15/ε = 5e-9
    atol = 1e-8 if optimizer == "Adam" else 1e-13
    for mine, their in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(mine.data, their.detach().numpy(), rtol=1e-12, atol=atol)
    fresh = nn.Sequential(
        nn.Flatten(), nn.Dense(width, 3), nn.Tanh(), nn.Dense(3, width), nn.Unflatten(1, sizes)
    ).to("float64")
    fresh.load_state_dict(twin.state_dict())  # torch's state, by position
    for mine, their in zip(fresh.parameters(), twin.parameters(), strict=True):
        np.testing.assert_array_equal(mine.data, their.detach().numpy())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unflatten_in_file_onnx_torch_and_summary(rng, tmp_path, dtype):
    onnxruntime = pytest.importorskip("onnxruntime")
    import wxb.onnx

    features = int(rng.integers(1, 5))
    sizes = tuple(int(n) for n in rng.integers(1, 4, size=int(rng.integers(1, 4))))
    model = nn.Sequential(
        nn.Dense(features, int(np.prod(sizes))), nn.Sigmoid(), nn.Unflatten(-1, sizes)
    ).to(dtype)
    X = rng.normal(size=(int(rng.integers(1, 20)), features)).astype(dtype)
    expected = model(X).data
    assert expected.shape == (len(X), *sizes)
    wxb.save(model, tmp_path / "m.safetensors")
    loaded = wxb.load(tmp_path / "m.safetensors")
    assert repr(loaded) == repr(model)
    np.testing.assert_array_equal(loaded(X).data, expected)

    wxb.onnx.export(model, tmp_path / "m.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    assert session.get_outputs()[0].shape == ["batch", *sizes]
    got = session.run(None, {"input": X})[0]
    tolerance = 1e-6 if dtype == "float32" else 1e-14  # (Gemm's sums of `features` terms)
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)

    twin = wxb.interop.to_torch(model)
    back = wxb.interop.from_torch(twin)
    assert repr(back) == repr(model)
    np.testing.assert_array_equal(back(X).data, expected)
    shapes = []  # each torch layer's output per sample, from hooks
    for layer in twin:
        layer.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
    twin(torch.tensor(X))
    rows = model.summary().rows
    assert [row.output_shape for row in rows] == shapes
    assert rows[2].activation_bytes == 0  # a view of its input


def test_unflatten_refusals_are_one_line(tmp_path):
    import wxb.onnx

    cases = [
        (nn.Sequential(nn.Dense(3, 4), nn.Unflatten(1, (2, 2)), nn.Dense(2, 2)), "a layer follows"),
        (nn.Sequential(nn.Dense(3, 4), nn.Unflatten(0, (2, 2))), "it splits dim 0"),
        (nn.Sequential(nn.Dense(3, 4), nn.Unflatten(1, (3, 2))), r"do not split rows of 4"),
    ]
    for model, pattern in cases:
        with pytest.raises(ConfigError, match=r"unflatten1.*" + pattern) as caught:
            wxb.onnx.export(model, tmp_path / "m.onnx")
        assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="Unflatten: unflattened_size may hold one -1 only"):
        nn.Unflatten(1, (-1, -1))
    with pytest.raises(ConfigError, match="Unflatten: unflattened_size must hold positive ints"):
        nn.Unflatten(1, (2.0, 3))
    with pytest.raises(ConfigError, match="Unflatten dim must be an integer"):
        nn.Unflatten(1.5, (2, 3))
    layer = nn.Unflatten(1, (2, 3))
    with pytest.raises(ConfigError, match="Unflatten: unflattened_size must be a tuple"):
        layer.unflattened_size = 6
    with pytest.raises(wxb.errors.ShapeError, match=r"sizes \[2, 3\] do not multiply up"):
        layer(wxb.Tensor(np.zeros((2, 5), np.float32)))


# ---------------------------------------------------------------------------------
# CosineSimilarity and PairwiseDistance: modules of two inputs, torch's
# ---------------------------------------------------------------------------------
def _pair_case(rng, dtype):
    """Two inputs of broadcast shapes (one of them may lack the leading dims), a dim."""
    ndim = int(rng.integers(1, 4))
    shape = tuple(int(n) for n in rng.integers(1, 5, size=ndim))
    other = shape[int(rng.integers(0, ndim)) :] if rng.integers(2) else shape
    x1 = rng.normal(size=shape).astype(dtype)
    x2 = rng.normal(size=other).astype(dtype)
    if rng.integers(3) == 0:  # a zero row: the eps floor (cosine) or a zero distance
        x1.reshape(-1)[: shape[-1]] = 0
    return x1, x2, int(rng.integers(-ndim, ndim))


def _two_input_modules(rng, dim):
    """Each wxb module of two inputs with torch's twin, with random settings."""
    eps = float(rng.choice([1e-8, 1e-6, 1e-3]))
    p = float(rng.choice([1.0, 1.5, 2.0, 3.0]))
    keepdim = bool(rng.integers(2))
    return [
        (nn.CosineSimilarity(dim, eps), torch.nn.CosineSimilarity(dim, eps)),
        (nn.PairwiseDistance(p, eps, keepdim), torch.nn.PairwiseDistance(p, eps, keepdim)),
    ]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cosine_similarity_and_pairwise_distance_are_torchs(rng, dtype):
    eps = float(np.finfo(dtype).eps)
    for _ in range(15):
        x1, x2, dim = _pair_case(rng, dtype)
        for ours, theirs in _two_input_modules(rng, dim):
            assert repr(ours) == repr(theirs) and ours.state_dict() == {}
            o1, t1 = _tensor(x1)
            o2, t2 = _tensor(x2)
            a, b = ours(o1, o2), theirs(t1, t2)
            assert a.shape == tuple(b.shape) and a.dtype == np.dtype(dtype)
            # both are a few roundings of sums of n terms, each term at most max|x|²
            # (or max|x1 − x2|^p): relative to the terms' size, (n + 8)·ε
            n = max(x1.shape[-1], x2.shape[-1], x1.shape[dim] if x1.ndim else 1, 1)
            scale = 1.0 + np.abs(b.detach().numpy().astype(np.float64))
            np.testing.assert_array_less(
                np.abs(a.data.astype(np.float64) - b.detach().numpy()), 4 * (n + 8) * eps * scale
            )
            upstream = rng.normal(size=a.shape).astype(dtype)
            (a * wxb.Tensor(upstream)).sum().backward()
            (b * torch.tensor(upstream)).sum().backward()
            # each term of ∂L/∂x is at most 2|g|/‖x‖ (cosine: x2/(‖x1‖‖x2‖) − cos·x1/‖x1‖²,
            # the norms floored at eps) or |g| (‖d‖_p: |dᵢ|^(p−1)/‖d‖_p^(p−1) ≤ 1), summed
            # over what x was broadcast across; each rounded within (n + 8)·ε of it
            g = np.abs(upstream.astype(np.float64)).max(initial=0.0)
            for mine, their, x in ((o1, t1, x1), (o2, t2, x2)):
                whole = np.broadcast_shapes(x1.shape, x2.shape)
                size = g * math.prod(whole) / x.size  # (the broadcast's repeats)
                if isinstance(ours, nn.CosineSimilarity):
                    spread = np.broadcast_to(x.astype(np.float64), whole)
                    norms = np.linalg.norm(spread, axis=dim)
                    size *= 2 / max(float(norms.min(initial=np.inf)), ours.eps)
                np.testing.assert_array_less(
                    np.abs(mine.grad.astype(np.float64) - their.grad.numpy()),
                    8 * (n + 8) * eps * size + 1e-300,
                )


class _Siamese(nn.Module):
    """One encoder for both inputs; their cosine similarity and distance."""

    def __init__(self, features, p):
        super().__init__()
        self.encode = nn.Sequential(nn.Dense(features, 5), nn.Tanh(), nn.Dense(5, 3))
        self.cos, self.dist = nn.CosineSimilarity(), nn.PairwiseDistance(p)

    def forward(self, x1, x2):
        h1, h2 = self.encode(x1), self.encode(x2)
        return self.cos(h1, h2), self.dist(h1, h2)


class _TorchSiamese(torch.nn.Module):
    def __init__(self, features, p):
        super().__init__()
        self.encode = torch.nn.Sequential(
            torch.nn.Linear(features, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)
        )
        self.cos, self.dist = torch.nn.CosineSimilarity(), torch.nn.PairwiseDistance(p)

    def forward(self, x1, x2):
        h1, h2 = self.encode(x1), self.encode(x2)
        return self.cos(h1, h2), self.dist(h1, h2)


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_a_siamese_network_trains_a_step_as_torchs(rng, optimizer):
    rows, features = int(rng.integers(2, 9)), int(rng.integers(2, 6))
    p = float(rng.choice([1.0, 2.0, 3.0]))
    x1, x2 = rng.normal(size=(rows, features)), rng.normal(size=(rows, features))
    same = rng.integers(0, 2, rows).astype(np.float64)
    model, twin = _Siamese(features, p).to("float64"), _TorchSiamese(features, p).double()
    model.load_state_dict(twin.state_dict())
    # the two modules hold no state, in either (the encoder's keys are named, not numbered)
    assert not [k for k in [*model.state_dict(), *twin.state_dict()] if "cos" in k or "dist" in k]

    def contrastive(cos, dist, target):  # pull similar pairs in, push others off
        return ((cos - target) ** 2).mean() + (target * dist - (1 - target) * dist).mean()

    theirs = getattr(torch.optim, optimizer)(twin.parameters(), lr=0.05)
    ours = getattr(wxb.optim, optimizer)(model.parameters(), lr=0.05)
    theirs.zero_grad()
    contrastive(*twin(torch.tensor(x1), torch.tensor(x2)), torch.tensor(same)).backward()
    theirs.step()
    ours.zero_grad()
    contrastive(*model(x1, x2), wxb.Tensor(same)).backward()
    ours.step()
    for mine, their in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(mine.data, their.detach().numpy(), rtol=1e-11, atol=1e-12)


def test_two_input_modules_check_their_settings():
    with pytest.raises(ConfigError, match="CosineSimilarity dim must be an integer"):
        nn.CosineSimilarity(1.5)
    with pytest.raises(ConfigError, match="CosineSimilarity eps"):
        nn.CosineSimilarity(1, float("nan"))
    with pytest.raises(ConfigError, match="PairwiseDistance keepdim must be True or False"):
        nn.PairwiseDistance(2.0, 1e-6, "no")
    with pytest.raises(wxb.errors.ShapeError, match="do not broadcast"):
        nn.CosineSimilarity()(wxb.Tensor(np.ones((2, 3))), wxb.Tensor(np.ones((2, 4))))


def test_two_input_modules_gradients_are_finite_differences(rng):
    rows, n = int(rng.integers(1, 4)), int(rng.integers(2, 5))
    x1, x2 = rng.normal(size=(rows, n)), rng.normal(size=(rows, n))
    upstream = rng.normal(size=rows)
    for module in (nn.CosineSimilarity(), nn.PairwiseDistance(float(rng.choice([1.5, 2, 3])))):
        o1, o2 = wxb.Tensor(x1, requires_grad=True), wxb.Tensor(x2, requires_grad=True)
        (module(o1, o2) * wxb.Tensor(upstream)).sum().backward()
        h = 1e-6
        for mine, which in ((o1, 0), (o2, 1)):
            numeric = np.empty((rows, n))
            for index in np.ndindex(rows, n):
                values = []
                for step in (h, -h):
                    moved = [x1.copy(), x2.copy()]
                    moved[which][index] += step
                    out = module(wxb.Tensor(moved[0]), wxb.Tensor(moved[1])).data
                    values.append(float((out * upstream).sum()))
                numeric[index] = (values[0] - values[1]) / (2 * h)
            # truncation h²·f‴/6 and rounding ε·|L|/h, both below 1e-7 at these sizes
            np.testing.assert_allclose(mine.grad, numeric, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------
# AlphaDropout: dropped units set to SELU's saturation, all scaled and shifted
# ---------------------------------------------------------------------------------
def _alpha_affine(p):
    """torch's constants (ATen's _dropout_impl), in float64: y = x·(a·M) + b, where
    b = α′·a·p kept and α′·a·(p − 1) dropped, a = 1/√((α′²p + 1)(1 − p))."""
    alpha = 1.7580993408473766
    a = 1 / math.sqrt((alpha * alpha * p + 1) * (1 - p))
    return a, alpha * a * p, alpha * a * (p - 1)


def _dropped(out, x, p):
    """The mask an alpha-dropout output shows: dropped where y is the dropped value
    and x·a + b is not (x at that one point is drawn with probability 0)."""
    a, kept, dropped = _alpha_affine(p)
    return np.isclose(out, dropped, rtol=1e-6, atol=0) & ~np.isclose(x * a + kept, dropped)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_alpha_dropout_is_torchs_formula(rng, dtype):
    eps = float(np.finfo(dtype).eps)
    for _ in range(10):
        p = float(rng.uniform(0.05, 0.9))
        shape = tuple(int(n) for n in rng.integers(1, 30, size=int(rng.integers(1, 4))))
        x = rng.normal(size=shape)
        x[np.abs(x + 1.7580993408473766) < 1e-3] += 1e-2  # (kept there reads as dropped)
        x = x.astype(dtype)
        ours = nn.AlphaDropout(p)
        assert repr(ours) == repr(torch.nn.AlphaDropout(p))
        a, kept, dropped = _alpha_affine(p)
        # torch's own output follows the formula, with its mask
        theirs = torch.nn.AlphaDropout(p)(torch.tensor(x)).numpy().astype(np.float64)
        mask = ~_dropped(theirs, x.astype(np.float64), p)
        expected = np.where(mask, x * a + kept, dropped)
        np.testing.assert_allclose(theirs, expected, rtol=8 * eps, atol=8 * eps)
        # and wxb's, with its own: values and ∂L/∂x = a·M ⊙ g
        ox = wxb.Tensor(x, requires_grad=True)
        out = ours(ox)
        assert out.dtype == np.dtype(dtype)
        mask = ~_dropped(out.data.astype(np.float64), x.astype(np.float64), p)
        expected = np.where(mask, x * a + kept, dropped)
        np.testing.assert_allclose(out.data, expected, rtol=8 * eps, atol=8 * eps)
        upstream = rng.normal(size=shape).astype(dtype)
        (out * wxb.Tensor(upstream)).sum().backward()
        np.testing.assert_allclose(ox.grad, np.where(mask, a * upstream, 0), rtol=4 * eps)
        # eval mode, and p = 0: the identity, as torch's
        ours.eval()
        np.testing.assert_array_equal(ours(wxb.Tensor(x)).data, x)
        np.testing.assert_array_equal(nn.AlphaDropout(0.0)(wxb.Tensor(x)).data, x)


def test_alpha_dropout_keeps_mean_and_variance(rng):
    """SELU's fixed point: inputs of mean 0 and variance 1 keep both, and p of the units
    are dropped (each within 6 standard errors of n draws)."""
    n, p = 200_000, float(rng.uniform(0.05, 0.6))
    x = rng.normal(size=n)
    x[np.abs(x + 1.7580993408473766) < 1e-3] += 1e-2  # (kept there reads as dropped)
    out = nn.AlphaDropout(p)(wxb.Tensor(x)).data
    share = _dropped(out, x, p).mean()
    assert abs(share - p) < 6 * math.sqrt(p * (1 - p) / n)
    assert abs(out.mean()) < 6 * math.sqrt(1 / n)
    assert abs(out.var() - 1) < 6 * math.sqrt(2 / n) * 2  # (var of y² ≤ 2·(1 + kurtosis))


def test_alpha_dropout_gradient_is_finite_differences(rng):
    """With the mask drawn the same each time (wxb.manual_seed), central differences."""
    x, p = rng.normal(size=(int(rng.integers(1, 4)), int(rng.integers(1, 5)))), 0.4
    upstream = rng.normal(size=x.shape)
    seed = int(rng.integers(2**31))

    def forward(values, grad=False):
        wxb.manual_seed(seed)
        t = wxb.Tensor(values, requires_grad=grad)
        return t, nn.AlphaDropout(p)(t)

    ox, out = forward(x, True)
    (out * wxb.Tensor(upstream)).sum().backward()
    h, numeric = 1e-6, np.empty_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = h
        up, down = ((forward(x + d)[1].data * upstream).sum() for d in (step, -step))
        numeric[index] = (up - down) / (2 * h)
    np.testing.assert_allclose(ox.grad, numeric, rtol=1e-7, atol=1e-8)  # (linear in x)


class _TorchAlphaMask(torch.nn.Module):
    """torch's alpha-dropout formula with a given mask (torch's own draws its own)."""

    def __init__(self, p, mask):
        super().__init__()
        self.p, self.mask = p, torch.tensor(mask.astype(np.float64))

    def forward(self, x):
        a, kept, dropped = _alpha_affine(self.p)
        return x * (a * self.mask) + (kept * self.mask + dropped * (1 - self.mask))


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_alpha_dropout_trains_a_step_as_torchs_formula_in_a_sequential(rng, optimizer):
    rows, features, p = int(rng.integers(2, 9)), int(rng.integers(2, 6)), 0.3
    X, y = rng.normal(size=(rows, features)), rng.integers(0, 3, rows)
    model = nn.Sequential(nn.Dense(features, 6), nn.SELU(), nn.AlphaDropout(p), nn.Dense(6, 3))
    model = model.to("float64")
    assert "AlphaDropout" in model.why_not_planned()
    seed = int(rng.integers(2**31))
    wxb.manual_seed(seed)
    hidden = model[1](model[0](X)).data
    mask = ~_dropped(model[2](wxb.Tensor(hidden)).data, hidden, p)  # the mask the step draws
    twin = torch.nn.Sequential(
        torch.nn.Linear(features, 6), torch.nn.SELU(), _TorchAlphaMask(p, mask),
        torch.nn.Linear(6, 3),
    ).double()  # fmt: skip
    model.load_state_dict(twin.state_dict())
    theirs = getattr(torch.optim, optimizer)(twin.parameters(), lr=0.05)
    ours = getattr(wxb.optim, optimizer)(model.parameters(), lr=0.05)
    theirs.zero_grad()
    torch.nn.functional.cross_entropy(twin(torch.tensor(X)), torch.tensor(y)).backward()
    theirs.step()
    ours.zero_grad()
    wxb.manual_seed(seed)  # the same draws as above
    nn.CrossEntropyLoss()(model(wxb.tensor(X, dtype=wxb.float64)), y).backward()
    ours.step()
    for mine, their in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(mine.data, their.detach().numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_alpha_dropout_in_file_onnx_torch_and_summary(rng, tmp_path, dtype):
    onnxruntime = pytest.importorskip("onnxruntime")
    import wxb.onnx

    p = float(rng.uniform(0.05, 0.9))
    model = nn.Sequential(nn.Dense(3, 5), nn.SELU(), nn.AlphaDropout(p), nn.Dense(5, 2))
    model = model.to(dtype)
    X = rng.normal(size=(int(rng.integers(1, 20)), 3)).astype(dtype)
    model.eval()
    expected = model(X).data
    wxb.save(model, tmp_path / "m.safetensors")
    loaded = wxb.load(tmp_path / "m.safetensors")
    assert repr(loaded) == repr(model) and loaded[2].p == p
    loaded.eval()
    np.testing.assert_array_equal(loaded(X).data, expected)
    wxb.onnx.export(model, tmp_path / "m.onnx")  # inference: nothing, as Dropout
    got = onnxruntime.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"input": X})[0]
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)
    twin = wxb.interop.to_torch(model)
    assert isinstance(twin[2], torch.nn.AlphaDropout) and twin[2].p == p and not twin.training
    back = wxb.interop.from_torch(twin)
    assert isinstance(back[2], nn.AlphaDropout) and back[2].p == p
    np.testing.assert_array_equal(back(X).data, expected)
    rows = model.summary().rows
    size = np.dtype(dtype).itemsize
    assert rows[2].output_shape == (5,) and rows[2].activation_bytes == 2 * 5 * size
    with pytest.raises(ConfigError, match=r"AlphaDropout p must be a number in \[0, 1\)"):
        nn.AlphaDropout(1.0)
