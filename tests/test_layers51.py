"""torch.nn layers a dense-network port writes that wxb.nn lacked: RReLU, FeatureAlphaDropout,
Dropout1d, Embedding and LazyLinear, and the functions of torch and torch.nn.functional
beside them (F.rrelu, F.embedding, F.alpha_dropout, F.feature_alpha_dropout, F.dropout1d,
the in-place activations F.relu_ …, wxb.hardshrink, wxb.bilinear, …). Each against
PyTorch 2.13 with the same weights: values and gradients in float32 and float64; for the
random layers, eval mode against torch's and, in training, the draw's statistics and that
the backward uses the forward's draw; a training step in a model and fit on one; a file,
ONNX (or its refusal) and PyTorch both ways."""

import math

import numpy as np
import pytest

import wxb
import wxb.interop
import wxb.nn.functional as F
import wxb.onnx
from wxb import nn
from wxb.errors import ConfigError, DataError, ShapeError

torch = pytest.importorskip("torch")
TF = torch.nn.functional

DTYPES = ["float32", "float64"]
WXB_ERRORS = (ConfigError, DataError, ShapeError)
ALPHA = 1.7580993408473766  # SELU's −λα, torch's alpha-dropout constant


def _eps(dtype):
    return float(np.finfo(dtype).eps)


def _shape(rng, low=1, high=6, dims=(1, 4)):
    return tuple(int(n) for n in rng.integers(low, high, size=int(rng.integers(*dims))))


def _one_line(error):
    text = str(error)
    return text.strip() and "\n" not in text


def _bounds(rng):
    """RReLU's lower ≤ upper: torch's defaults, a random pair, or lower = upper."""
    kind = int(rng.integers(3))
    if kind == 0:
        return 1.0 / 8, 1.0 / 3
    lower = float(rng.uniform(-0.5, 1.0))
    return (lower, lower) if kind == 1 else (lower, lower + float(rng.uniform(0, 1)))


# ---------------------------------------------------------------------------------
# RReLU
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_rrelu_in_eval_mode_is_torchs(rng, dtype):
    """Eval mode (and F.rrelu's default, training=False): LeakyReLU of slope (l + u)/2,
    values and ∂L/∂x equal to torch's, zeros and ±0 planted (torch's slope there)."""
    for _ in range(10):
        lower, upper = _bounds(rng)
        x = rng.normal(size=_shape(rng)).astype(dtype)
        x.flat[:: max(1, x.size // 3)] = 0.0
        ours, theirs = nn.RReLU(lower, upper).eval(), torch.nn.RReLU(lower, upper).eval()
        assert repr(ours) == repr(theirs)
        for call, tcall in (
            (ours, theirs),
            (
                lambda t, b=(lower, upper): F.rrelu(t, *b),
                lambda t, b=(lower, upper): TF.rrelu(t, *b),
            ),
            (
                lambda t, b=(lower, upper): wxb.rrelu(t, *b),
                lambda t, b=(lower, upper): torch.rrelu(t, *b),
            ),
        ):
            ox, tx = wxb.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
            out, ref = call(ox), tcall(tx)
            assert out.dtype == np.dtype(dtype)
            np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=_eps(dtype), atol=0)
            upstream = rng.normal(size=x.shape).astype(dtype)
            (out * wxb.Tensor(upstream)).sum().backward()
            (ref * torch.tensor(upstream)).sum().backward()
            np.testing.assert_allclose(ox.grad, tx.grad.numpy(), rtol=_eps(dtype), atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rrelu_in_training_draws_slopes_its_backward_reuses(rng, dtype):
    """Training: z > 0 passes; each z ≤ 0 is multiplied by its own slope in [l, u], and
    ∂L/∂z is g times that same slope (1 where z > 0). lower = upper: torch's numbers."""
    eps = _eps(dtype)
    for _ in range(10):
        lower, upper = _bounds(rng)
        x = rng.normal(size=_shape(rng, 2, 9)).astype(dtype)
        x[np.abs(x) < 1e-3] = 0.5  # (slopes read back as y/x)
        layer = nn.RReLU(lower, upper)
        assert layer.training
        ox = wxb.Tensor(x, requires_grad=True)
        out = layer(ox)
        positive = x > 0
        np.testing.assert_array_equal(out.data[positive], x[positive])
        slopes = np.where(positive, 1.0, out.data.astype(np.float64) / x)
        assert np.all(slopes[~positive] >= lower * (1 - 4 * eps) - 4 * eps)
        assert np.all(slopes[~positive] <= upper * (1 + 4 * eps) + 4 * eps)
        upstream = rng.normal(size=x.shape).astype(dtype)
        (out * wxb.Tensor(upstream)).sum().backward()
        np.testing.assert_allclose(ox.grad, upstream * slopes, rtol=4 * eps, atol=0)
        if lower == upper:  # no randomness: torch's own training output
            ref = torch.nn.RReLU(lower, upper)(torch.tensor(x)).numpy()
            np.testing.assert_allclose(out.data, ref, rtol=eps, atol=0)


def test_rrelu_slopes_are_uniform_like_torchs(rng):
    """The slopes of n negative inputs: mean (l + u)/2 and variance (u − l)²/12, within 6
    standard errors, for wxb's and for torch's own training draws."""
    n = 100_000
    lower, upper = sorted(float(v) for v in rng.uniform(0, 1, size=2))
    x = -rng.uniform(0.5, 2, size=n)
    for slopes in (
        nn.RReLU(lower, upper)(wxb.Tensor(x)).data / x,
        torch.nn.RReLU(lower, upper)(torch.tensor(x)).numpy() / x,
        F.rrelu(wxb.Tensor(x), lower, upper, training=True).data / x,
    ):
        spread = (upper - lower) ** 2 / 12
        assert abs(slopes.mean() - (lower + upper) / 2) < 6 * math.sqrt(spread / n) + 1e-12
        assert abs(slopes.var() - spread) < 6 * math.sqrt(spread**2 * 0.8 / n) + 1e-12
        assert slopes.min() >= lower and slopes.max() <= upper


def test_rrelu_settings_and_refusals(rng):
    layer = nn.RReLU()
    assert (layer.lower, layer.upper) == (1.0 / 8, 1.0 / 3)
    layer.upper = 0.5
    assert layer.upper == 0.5
    with pytest.raises(ConfigError, match=r"lower .* must not exceed upper") as caught:
        layer.lower = 0.9
    assert _one_line(caught.value) and layer.lower == 1.0 / 8
    with pytest.raises(RuntimeError):  # torch refuses it too, at the call
        torch.nn.RReLU(0.5, 0.1)(torch.ones(2))
    for bad in ((0.5, 0.1), (float("nan"), 0.3), ("0.1", 0.3)):
        with pytest.raises(ConfigError) as caught:
            nn.RReLU(*bad)
        assert _one_line(caught.value)


# ---------------------------------------------------------------------------------
# the in-place functions (F.relu_, …, torch.relu_, …)
# ---------------------------------------------------------------------------------
def _in_place_cases(rng):
    lower, upper = _bounds(rng)
    alpha = float(rng.uniform(0.2, 2))
    slope = float(rng.uniform(-0.5, 0.5))
    low = float(rng.uniform(-2, 0))
    at, value = float(rng.uniform(-1, 1)), float(rng.uniform(-2, 2))
    return [
        ("relu_", (), F.relu_, TF.relu_),
        ("elu_", (alpha,), F.elu_, TF.elu_),
        ("selu_", (), F.selu_, TF.selu_),
        ("celu_", (alpha,), F.celu_, TF.celu_),
        ("leaky_relu_", (slope,), F.leaky_relu_, TF.leaky_relu_),
        ("hardtanh_", (low, low + 1.5), F.hardtanh_, TF.hardtanh_),
        ("threshold_", (at, value), F.threshold_, TF.threshold_),
        ("rrelu_", (lower, upper), F.rrelu_, TF.rrelu_),
        ("torch.relu_", (), wxb.relu_, torch.relu_),
        ("torch.selu_", (), wxb.selu_, torch.selu_),
        ("torch.celu_", (alpha,), wxb.celu_, torch.celu_),
        ("torch.threshold_", (at, value), wxb.threshold_, torch.threshold_),
        ("torch.rrelu_", (lower, upper), wxb.rrelu_, torch.rrelu_),
    ]


OUT_OF_PLACE = {
    "relu_": F.relu, "elu_": F.elu, "selu_": F.selu, "celu_": F.celu,
    "leaky_relu_": F.leaky_relu, "hardtanh_": F.hardtanh, "threshold_": F.threshold,
    "rrelu_": F.rrelu,
}  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
def test_in_place_activations_change_their_input_as_torchs(seeded, dtype):
    """Each changes the tensor itself and returns it, with torch's values; on a computed
    tensor it is recorded, its gradient torch's; on a leaf that requires grad, refused
    (torch refuses it too); an array refused in one line."""
    rng = seeded.rng
    eps = _eps(dtype)
    for name, args, ours_f, theirs_f in _in_place_cases(rng):
        what = seeded.msg(f"{name}{args}")
        x = (rng.normal(size=_shape(rng)) * 2).astype(dtype)
        ours, theirs = wxb.tensor(x, dtype=dtype), torch.tensor(x)
        assert ours_f(ours, *args) is ours, what
        theirs_f(theirs, *args)
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=2 * eps, atol=0, err_msg=what)
        # recorded on a computed tensor: exactly the gradient of the function out of place
        # (itself checked against torch's in tests/test_nn_options_fuzz48.py), and torch's
        # in float64 within 1e-6 (torch's own rounding: its CELU's 1/α is float32's);
        # torch's in-place leaky_relu_ of a negative slope refuses its backward, wxb's takes it
        upstream = rng.normal(size=x.shape).astype(dtype)
        grads = []
        for form in (ours_f, OUT_OF_PLACE[ours_f.__name__]):
            ow = wxb.tensor(x, requires_grad=True, dtype=dtype)
            (form(ow * 1.5, *args) * wxb.Tensor(upstream)).sum().backward()
            grads.append(ow.grad)
        np.testing.assert_array_equal(grads[0], grads[1], err_msg=what)
        tw = torch.tensor(x.astype(np.float64), requires_grad=True)  # (torch refuses the
        # backward of its in-place leaky_relu_ of a negative slope: out of place here)
        theirs_out = getattr(TF, ours_f.__name__[:-1])
        (theirs_out(tw * 1.5, *args) * torch.tensor(upstream.astype(np.float64))).sum().backward()
        bound = 1e-6 * 1.5 * np.abs(upstream.astype(np.float64)) * 5 + (eps if eps > 1e-10 else 0)
        assert np.all(np.abs(grads[0] - tw.grad.numpy()) <= bound), what
        with pytest.raises(RuntimeError):
            theirs_f(torch.tensor(x, requires_grad=True), *args)
        with pytest.raises(wxb.WxbError) as caught:
            ours_f(wxb.tensor(x, requires_grad=True, dtype=dtype), *args)
        assert _one_line(caught.value), what
        with pytest.raises(ConfigError, match="in place") as caught:
            ours_f(x.copy(), *args)
        assert _one_line(caught.value)


# ---------------------------------------------------------------------------------
# FeatureAlphaDropout and Dropout1d: whole channels dropped
# ---------------------------------------------------------------------------------
def _alpha_affine(p):
    a = 1 / math.sqrt((ALPHA * ALPHA * p + 1) * (1 - p))
    return a, ALPHA * a * p, ALPHA * a * (p - 1)


def _channel_mask(out, x, p, kind):
    """The (N, C, 1, …) mask an output shows, checked to be one value per channel."""
    out, x = out.astype(np.float64), x.astype(np.float64)
    if kind == "alpha":
        a, kept, dropped = _alpha_affine(p)
        keep = ~(np.isclose(out, dropped, rtol=1e-6, atol=0) & ~np.isclose(x * a + kept, dropped))
    else:
        keep = out != 0
    axes = tuple(range(2, x.ndim)) if kind == "alpha" else (x.ndim - 1,)
    per_channel = keep.all(axis=axes, keepdims=True)
    assert np.array_equal(np.broadcast_to(per_channel, keep.shape), keep), "a mask within a channel"
    return np.broadcast_to(per_channel, keep.shape)


@pytest.mark.parametrize("dtype", DTYPES)
def test_feature_alpha_dropout_drops_channels_with_torchs_formula(rng, dtype):
    """torch's own output and wxb's follow alpha dropout's affine map with a mask of one
    value per (sample, channel) of (N, C, …); ∂L/∂x = a·M ⊙ g with wxb's mask; eval mode,
    p = 0 and F.feature_alpha_dropout's default (training=False) the identity."""
    eps = _eps(dtype)
    for _ in range(10):
        p = float(rng.uniform(0.05, 0.9))
        shape = _shape(rng, 1, 7, dims=(2, 5))
        x = rng.normal(size=shape)
        x[np.abs(x + ALPHA) < 1e-3] += 1e-2  # (kept there would read as dropped)
        x = x.astype(dtype)
        a, kept, dropped = _alpha_affine(p)
        ours = nn.FeatureAlphaDropout(p)
        assert repr(ours) == repr(torch.nn.FeatureAlphaDropout(p))
        theirs = torch.nn.FeatureAlphaDropout(p)(torch.tensor(x)).numpy()
        mask = _channel_mask(theirs, x, p, "alpha")
        np.testing.assert_allclose(theirs, np.where(mask, x * a + kept, dropped), rtol=8 * eps,
                                   atol=8 * eps)  # fmt: skip
        for call in (ours, lambda t, p=p: F.feature_alpha_dropout(t, p, training=True)):
            ox = wxb.Tensor(x, requires_grad=True)
            out = call(ox)
            assert out.dtype == np.dtype(dtype)
            mask = _channel_mask(out.data, x, p, "alpha")
            np.testing.assert_allclose(out.data, np.where(mask, x * a + kept, dropped),
                                       rtol=8 * eps, atol=8 * eps)  # fmt: skip
            upstream = rng.normal(size=shape).astype(dtype)
            (out * wxb.Tensor(upstream)).sum().backward()
            np.testing.assert_allclose(ox.grad, np.where(mask, a * upstream, 0), rtol=4 * eps)
        np.testing.assert_array_equal(F.feature_alpha_dropout(wxb.Tensor(x), p).data, x)
        np.testing.assert_array_equal(ours.eval()(wxb.Tensor(x)).data, x)
        np.testing.assert_array_equal(nn.FeatureAlphaDropout(0.0)(wxb.Tensor(x)).data, x)
    with pytest.raises(RuntimeError):  # one dim: torch refuses it, and so does wxb
        TF.feature_alpha_dropout(torch.ones(3), 0.5, training=True)
    with pytest.raises(ShapeError, match="2 dimensions or more") as caught:
        nn.FeatureAlphaDropout(0.5)(wxb.ones(3))
    assert _one_line(caught.value)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout1d_drops_channels_as_torchs(rng, dtype):
    """(N, C, L) and (C, L): each channel zeroed whole or scaled by 1/(1 − p), as torch's
    output shows too; ∂L/∂x = M/(1 − p) ⊙ g with the same M; other ranks refused, as
    torch's; eval mode and F.dropout1d(training=False) the identity."""
    eps = _eps(dtype)
    for _ in range(10):
        p = float(rng.uniform(0.05, 0.9))
        shape = _shape(rng, 1, 7, dims=(2, 4))
        x = rng.normal(size=shape).astype(dtype)
        x[x == 0] = 1.0
        ours = nn.Dropout1d(p)
        assert repr(ours) == repr(torch.nn.Dropout1d(p))
        theirs = torch.nn.Dropout1d(p)(torch.tensor(x)).numpy()
        mask = _channel_mask(theirs, x, p, "zero")
        np.testing.assert_allclose(theirs, np.where(mask, x / (1 - p), 0), rtol=2 * eps, atol=0)
        for call in (ours, lambda t, p=p: F.dropout1d(t, p)):
            ox = wxb.Tensor(x, requires_grad=True)
            out = call(ox)
            mask = _channel_mask(out.data, x, p, "zero")
            np.testing.assert_allclose(out.data, np.where(mask, x / (1 - p), 0), rtol=2 * eps)
            upstream = rng.normal(size=shape).astype(dtype)
            (out * wxb.Tensor(upstream)).sum().backward()
            expected = np.where(mask, upstream / (1 - p), 0)
            np.testing.assert_allclose(ox.grad, expected, rtol=2 * eps, atol=0)
        np.testing.assert_array_equal(F.dropout1d(wxb.Tensor(x), p, training=False).data, x)
        np.testing.assert_array_equal(ours.eval()(wxb.Tensor(x)).data, x)
    for rank in (1, 4):
        bad = rng.normal(size=(2,) * rank)
        with pytest.raises(RuntimeError):
            TF.dropout1d(torch.tensor(bad), 0.5)
        with pytest.raises(ShapeError, match=r"\(N, C, L\) or \(C, L\)") as caught:
            nn.Dropout1d(0.5)(wxb.Tensor(bad))
        assert _one_line(caught.value)


@pytest.mark.parametrize("kind", ["FeatureAlphaDropout", "Dropout1d"])
def test_channel_dropouts_drop_p_of_the_channels(rng, kind):
    """The share of channels dropped is p within 6 standard errors (of n channels)."""
    n, length, p = 20_000, 3, float(rng.uniform(0.05, 0.8))
    x = rng.uniform(0.5, 1.5, size=(n // 4, 4, length))
    out = getattr(nn, kind)(p)(wxb.Tensor(x)).data
    keep = _channel_mask(out, x, p, "alpha" if kind == "FeatureAlphaDropout" else "zero")
    share = 1 - keep[..., 0].mean()
    assert abs(share - p) < 6 * math.sqrt(p * (1 - p) / n)


def test_alpha_dropout_functions_as_torchs(rng):
    """F.alpha_dropout (training=False by default, as torch's) and torch.alpha_dropout /
    torch.feature_alpha_dropout(input, p, train): the identity off; on, the formula."""
    x = rng.normal(size=(6, 5))
    p = float(rng.uniform(0.1, 0.7))
    a, kept, dropped = _alpha_affine(p)
    for off in (
        F.alpha_dropout(wxb.Tensor(x), p),
        wxb.alpha_dropout(wxb.Tensor(x), p, False),
        wxb.feature_alpha_dropout(wxb.Tensor(x), p, False),
    ):
        np.testing.assert_array_equal(off.data, x)
    np.testing.assert_array_equal(TF.alpha_dropout(torch.tensor(x), p).numpy(), x)
    for on in (
        F.alpha_dropout(wxb.Tensor(x), p, training=True).data,
        wxb.alpha_dropout(wxb.Tensor(x), p, True).data,
        wxb.feature_alpha_dropout(wxb.Tensor(x), p, True).data,
    ):
        assert np.all(np.isclose(on, x * a + kept, rtol=1e-12) | np.isclose(on, dropped))
    for call in (
        lambda: F.alpha_dropout(wxb.Tensor(x), 1.0, True),
        lambda: wxb.alpha_dropout(wxb.Tensor(x), -0.1, True),
        lambda: F.dropout1d(wxb.Tensor(x), "0.5"),
    ):
        with pytest.raises(ConfigError, match=r"p must be a number in \[0, 1\)") as caught:
            call()
        assert _one_line(caught.value)


# ---------------------------------------------------------------------------------
# Embedding: one_hot(ids) · W
# ---------------------------------------------------------------------------------
def _embedding_pair(rng, dtype, **options):
    n, d = int(rng.integers(2, 12)), int(rng.integers(1, 6))
    ours = nn.Embedding(n, d, dtype=dtype, **options)
    theirs = torch.nn.Embedding(n, d, dtype=getattr(torch, dtype), **options)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.data))
    return ours, theirs, n, d


def _embedding_options(rng, n_hint=2):
    options = {}
    if rng.integers(2):
        options["padding_idx"] = int(rng.integers(-n_hint, n_hint))
    if rng.integers(2):
        options["scale_grad_by_freq"] = True
    return options


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_values_and_gradients_are_torchs(seeded, dtype):
    """Rows looked up exactly; ∂L/∂W each row's sum of the δ rows that picked it (divided
    by its count with scale_grad_by_freq, 0 for padding_idx), as torch's: within the
    rounding of those sums (count·ε·Σ|terms|)."""
    rng = seeded.rng
    eps = _eps(dtype)
    for draw in range(12):
        ours, theirs, n, d = _embedding_pair(rng, dtype, **_embedding_options(rng))
        assert repr(ours) == repr(theirs)
        ids = rng.integers(0, n, size=_shape(rng, 1, 7, dims=(1, 4)))
        for call, tcall in (
            (ours, theirs),
            (
                lambda i, m=ours: F.embedding(i, m.weight, m.padding_idx,
                                              scale_grad_by_freq=m.scale_grad_by_freq),
                lambda i, m=theirs: TF.embedding(i, m.weight, m.padding_idx,
                                                 scale_grad_by_freq=m.scale_grad_by_freq),
            ),
        ):  # fmt: skip
            ours.weight.grad, theirs.weight.grad = None, None
            out, ref = call(ids), tcall(torch.tensor(ids))
            what = seeded.msg(f"draw {draw}: {ours!r}, ids {ids.shape}")
            assert out.shape == (*ids.shape, d) and out.dtype == np.dtype(dtype), what
            np.testing.assert_array_equal(out.data, ref.detach().numpy(), err_msg=what)
            upstream = rng.normal(size=out.shape).astype(dtype)
            (out * wxb.Tensor(upstream)).sum().backward()
            (ref * torch.tensor(upstream)).sum().backward()
            counts = np.bincount(ids.ravel(), minlength=n)
            sums = np.zeros((n, d))
            np.add.at(sums, ids.ravel(), np.abs(upstream.reshape(-1, d)).astype(np.float64))
            bound = counts[:, None] * eps * sums + 1e-300
            got, expected = ours.weight.grad, theirs.weight.grad.numpy()
            assert np.all(np.abs(got - expected) <= 2 * bound), what
            if ours.padding_idx is not None:
                assert not got[ours.padding_idx].any(), what
            assert not got[counts == 0].any(), what


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_max_norm_renorms_the_rows_looked_up_as_torchs(seeded, dtype):
    """max_norm: each row looked up whose norm_type-norm exceeds it is scaled in place to
    max_norm/(‖row‖ + 1e-7), as torch's: the table after and the output; the others as
    they were."""
    rng = seeded.rng
    eps = _eps(dtype)
    for draw in range(10):
        norm_type = float(rng.choice([1.0, 2.0, 3.5]))
        ours, theirs, n, _ = _embedding_pair(
            rng, dtype, max_norm=float(rng.uniform(0.3, 2)), norm_type=norm_type
        )
        ours.weight.data[...] *= rng.uniform(0.5, 3, size=(n, 1)).astype(dtype)
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(ours.weight.data))
        before = ours.weight.data.copy()
        ids = rng.integers(0, n, size=_shape(rng, 1, 6, dims=(1, 3)))
        out, ref = ours(ids), theirs(torch.tensor(ids))
        what = seeded.msg(f"draw {draw}: {ours!r}")
        after = theirs.weight.detach().numpy()
        np.testing.assert_allclose(ours.weight.data, after, rtol=8 * eps, atol=0, err_msg=what)
        np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=8 * eps, err_msg=what)
        untouched = np.setdiff1d(np.arange(n), ids)
        np.testing.assert_array_equal(ours.weight.data[untouched], before[untouched])
        looked = np.unique(ids)
        norms = np.linalg.norm(ours.weight.data[looked].astype(np.float64), norm_type, axis=1)
        assert np.all(norms <= ours.max_norm * (1 + 8 * eps)), what


def test_embedding_init_padding_and_from_pretrained(rng):
    """W ~ N(0, 1) (mean and variance within 6 standard errors), the padding row 0, as
    torch's; from_pretrained copies the table and freezes it by default, as torch's."""
    n, d = 400, 50
    layer = nn.Embedding(n, d, padding_idx=-3)
    assert layer.padding_idx == n - 3 == torch.nn.Embedding(n, d, padding_idx=-3).padding_idx
    w = np.delete(layer.weight.data.astype(np.float64), n - 3, axis=0)
    assert not layer.weight.data[n - 3].any()
    assert abs(w.mean()) < 6 / math.sqrt(w.size) and abs(w.var() - 1) < 6 * math.sqrt(2 / w.size)
    table = rng.normal(size=(int(rng.integers(2, 9)), int(rng.integers(1, 5))))
    for freeze in (True, False):
        ours = nn.Embedding.from_pretrained(table, freeze=freeze, padding_idx=1)
        theirs = torch.nn.Embedding.from_pretrained(torch.tensor(table), freeze=freeze,
                                                    padding_idx=1)  # fmt: skip
        assert ours.weight.dtype == np.float64 and repr(ours) == repr(theirs)
        np.testing.assert_array_equal(ours.weight.data, theirs.weight.detach().numpy())
        assert ours.weight.requires_grad == theirs.weight.requires_grad == (not freeze)
        trained = [p for p in ours.parameters() if p.requires_grad]
        assert trained == ([] if freeze else [ours.weight])
    table[0, 0] = 123.0  # a copy: the caller's array is not the table
    assert ours.weight.data[0, 0] != 123.0


def test_embedding_refusals_in_one_line(rng):
    layer = nn.Embedding(5, 2)
    with pytest.raises(IndexError):
        torch.nn.Embedding(5, 2)(torch.tensor([5]))
    cases = [
        (lambda: layer(np.array([0, 5])), DataError, "out of range for 5 embeddings"),
        (lambda: layer(np.array([-1])), DataError, "out of range"),
        (lambda: layer(np.array([0.5, 1.0])), DataError, "whole numbers"),
        (lambda: layer(np.array([2.0**24], np.float32)), DataError, r"2\*\*24 or more"),
        (lambda: nn.Embedding(5, 2, sparse=True), ConfigError, "sparse"),
        (lambda: F.embedding([1], layer.weight, sparse=True), ConfigError, "sparse"),
        (lambda: nn.Embedding(5, 2, padding_idx=5), ConfigError, "padding_idx 5"),
        (lambda: nn.Embedding(0, 2), ConfigError, "num_embeddings"),
        (lambda: nn.Embedding.from_pretrained(np.ones(3)), ShapeError, "matrix"),
    ]
    for call, error, says in cases:
        with pytest.raises(error, match=says) as caught:
            call()
        assert _one_line(caught.value), caught.value
    np.testing.assert_array_equal(layer(np.array([[1.0, 4.0]])).data, layer.weight.data[[[1, 4]]])


class _Bag(nn.Module):
    """Ids (B, L) → mean of their embeddings → logits (a bag-of-words classifier)."""

    def __init__(self, n, d, classes, **options):
        super().__init__()
        self.emb = nn.Embedding(n, d, **options)
        self.out = nn.Linear(d, classes)

    def forward(self, ids):
        return self.out(self.emb(ids).mean(1))


class _TorchBag(torch.nn.Module):
    def __init__(self, n, d, classes, **options):
        super().__init__()
        self.emb = torch.nn.Embedding(n, d, **options)
        self.out = torch.nn.Linear(d, classes)

    def forward(self, ids):
        return self.out(self.emb(ids).mean(1))


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_embedding_model_trains_a_step_as_torchs_and_fits(seeded, optimizer):
    rng = seeded.rng
    n, d, classes, rows = int(rng.integers(3, 10)), 3, 3, int(rng.integers(2, 12))
    options = _embedding_options(rng)
    ours = _Bag(n, d, classes, **options).to("float64")
    theirs = _TorchBag(n, d, classes, **options).double()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    ids, y = rng.integers(0, n, size=(rows, 4)), rng.integers(0, classes, rows)
    topt = getattr(torch.optim, optimizer)(theirs.parameters(), lr=0.1)
    oopt = getattr(wxb.optim, optimizer)(ours.parameters(), lr=0.1)
    for _ in range(2):
        topt.zero_grad()
        TF.cross_entropy(theirs(torch.tensor(ids)), torch.tensor(y)).backward()
        topt.step()
        oopt.zero_grad()
        nn.CrossEntropyLoss()(ours(ids), y).backward()
        oopt.step()
    for (key, mine), their in zip(ours.state_dict().items(), theirs.state_dict().values(),
                                  strict=True):  # fmt: skip
        np.testing.assert_allclose(mine, their.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=seeded.msg(key))  # fmt: skip
    # fit on ids: the loss falls, a seeded fit replays, the padding row stays 0
    results = []
    for _ in range(2):
        wxb.manual_seed(seeded.wxb_seed)
        model = _Bag(n, d, classes, padding_idx=0)
        history = wxb.fit(model, ids, y, epochs=30, lr=0.05, verbose=0)
        results.append((model.state_dict(), history.history["loss"]))
        assert not model.emb.weight.data[0].any()
    (first, loss), (second, _) = results
    assert loss[-1] < loss[0], seeded.msg(f"loss {loss}")
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=seeded.msg(key))


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_in_a_sequential_file_torch_and_onnx(rng, tmp_path, dtype):
    """Sequential(Embedding, Flatten, Linear) on ids: a file and PyTorch both ways give
    the same numbers and settings; ONNX export refuses the Embedding in one line."""
    n, d, length = int(rng.integers(3, 9)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    max_norm = [None, float(rng.uniform(0.5, 3))][int(rng.integers(2))]
    model = nn.Sequential(
        nn.Embedding(n, d, padding_idx=1, max_norm=max_norm, scale_grad_by_freq=True),
        nn.Flatten(), nn.Linear(length * d, 2),
    ).to(dtype)  # fmt: skip
    ids = rng.integers(0, n, size=(int(rng.integers(1, 6)), length))
    model(ids)  # (max_norm renorms the rows looked up, in place)
    wxb.save(model, tmp_path / "m.safetensors")
    loaded = wxb.load(tmp_path / "m.safetensors")
    assert repr(loaded) == repr(model) and loaded[0].weight.dtype == np.dtype(dtype)
    twin = wxb.interop.to_torch(model)
    assert isinstance(twin[0], torch.nn.Embedding)
    settings = (twin[0].padding_idx, twin[0].max_norm, twin[0].scale_grad_by_freq)
    assert settings == (1, max_norm, True)
    back = wxb.interop.from_torch(twin)
    assert repr(back) == repr(model)
    for other in (loaded, back, twin):  # the same table and weights, before any call
        for mine, theirs in zip(model.parameters(), other.parameters(), strict=True):
            np.testing.assert_array_equal(mine.data, np.asarray(theirs.data))
    # a second call renorms the same rows the same way (a float32 norm scaled to max_norm
    # may round above it: renormed again, as torch's is too)
    expected = model(ids).data
    np.testing.assert_array_equal(loaded(ids).data, expected)
    np.testing.assert_array_equal(back(ids).data, expected)
    # torch's: the Linear's sums of k = length·d products in another order, and its renorm
    # of a row rounded otherwise: (k + 2)·ε·Σ|terms|
    rows = np.abs(model[0].weight.data[ids].reshape(len(ids), -1).astype(np.float64))
    terms = rows @ np.abs(model[2].weight.data.T) + np.abs(model[2].bias.data)
    got = twin(torch.tensor(ids)).detach().numpy()
    assert np.all(np.abs(got - expected) <= (length * d + 2) * _eps(dtype) * terms)
    with pytest.raises(ConfigError, match="integer index") as caught:
        wxb.onnx.export(model, tmp_path / "m.onnx")
    assert _one_line(caught.value)
    assert "looks up rows" in model.why_not_planned()


def test_torch_embedding_takes_the_table_first(rng):
    """torch.embedding(weight, indices, padding_idx=-1, …): the table first, -1 none."""
    table = rng.normal(size=(6, 3))
    ids = rng.integers(0, 6, size=(2, 3))
    ow = wxb.tensor(table, requires_grad=True, dtype="float64")
    tw = torch.tensor(table, requires_grad=True)
    for pad in (-1, 2):
        ow.grad, tw.grad = None, None
        out, ref = wxb.embedding(ow, ids, pad), torch.embedding(tw, torch.tensor(ids), pad)
        np.testing.assert_array_equal(out.data, ref.detach().numpy())
        out.sum().backward()
        ref.sum().backward()
        np.testing.assert_allclose(ow.grad, tw.grad.numpy(), rtol=1e-14)


# ---------------------------------------------------------------------------------
# LazyLinear
# ---------------------------------------------------------------------------------
def test_lazy_linear_infers_in_features_and_becomes_a_dense(rng):
    """Before its first call: torch's state_dict keys, in_features 0, W and b placeholders;
    the call takes in_features from the input, draws W and b from U(±1/√in) (torch's
    Linear init, wxb's generator) and makes it a Dense, whose numbers are torch's Linear's
    with the same weights."""
    out_features, n = int(rng.integers(1, 6)), int(rng.integers(1, 300))
    ours, theirs = nn.LazyLinear(out_features), torch.nn.LazyLinear(out_features)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias"]
    assert ours.in_features == theirs.in_features == 0
    assert isinstance(ours.weight, nn.UninitializedParameter)
    X = rng.normal(size=(int(rng.integers(1, 5)), n)).astype(np.float32)
    out = ours(X)
    assert type(ours) is nn.Dense and ours.in_features == n
    assert out.shape == (len(X), out_features)
    bound = 1 / math.sqrt(n)
    for p in (ours.weight.data, ours.bias.data):
        assert np.all(np.abs(p) <= bound)
    assert list(ours.state_dict()) == ["weight", "bias"]
    theirs(torch.tensor(X))
    assert type(theirs) is torch.nn.Linear
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.data))
        theirs.bias.copy_(torch.tensor(ours.bias.data))
    # (n products summed in another order: (n + 1)·ε·Σ|terms|)
    terms = np.abs(X.astype(np.float64)) @ np.abs(ours.weight.data.T) + np.abs(ours.bias.data)
    got, expected = ours(X).data, theirs(torch.tensor(X)).detach().numpy()
    assert np.all(np.abs(got - expected) <= (n + 1) * _eps("float32") * terms)
    no_bias = nn.LazyLinear(2, bias=False)
    no_bias(X)
    assert no_bias.bias is None and no_bias.weight.shape == (2, n)


def test_lazy_linear_draws_torchs_uniform(rng):
    """The spread of the first call's draws: U(±1/√n) has variance 1/(3n)."""
    n = int(rng.integers(50, 200))
    layer = nn.LazyLinear(400)
    layer(np.zeros((1, n), np.float32))
    w = layer.weight.data.astype(np.float64)
    assert abs(w.var() - 1 / (3 * n)) < 6 * math.sqrt(0.8 / w.size) / (3 * n)


def test_lazy_linear_loads_a_state_as_torchs(rng):
    """load_state_dict before the first call makes W and b of the state's shapes (by name,
    or by a torch Sequential's positions), as torch's LazyLinear does."""
    n = int(rng.integers(1, 7))
    source = torch.nn.Sequential(torch.nn.Linear(n, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    state = {k: v.numpy() for k, v in source.state_dict().items()}
    theirs = torch.nn.Sequential(torch.nn.LazyLinear(4), torch.nn.ReLU(), torch.nn.LazyLinear(2))
    theirs.load_state_dict(source.state_dict())
    ours = nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.LazyLinear(2))
    ours.load_state_dict(state)
    X = rng.normal(size=(3, n))
    for value, given in zip(ours.state_dict().values(), state.values(), strict=True):
        np.testing.assert_array_equal(value, given)  # (by place: "0.weight" is lazylinear1's)
    ours, theirs = ours.to("float64"), theirs.double()
    np.testing.assert_allclose(ours(X).data, theirs(torch.tensor(X)).detach().numpy(),
                               rtol=1e-12, atol=1e-14)  # fmt: skip
    alone = nn.LazyLinear(3)
    alone.load_state_dict({"weight": np.ones((3, 2)), "bias": np.zeros(3)})
    assert type(alone) is nn.Dense and alone.in_features == 2


def test_lazy_linear_before_its_first_call_is_refused_in_one_line(tmp_path):
    model = nn.Sequential(nn.LazyLinear(3), nn.ReLU())
    cases = [
        (lambda: wxb.optim.Adam(model.parameters()), "call the model once"),
        (lambda: wxb.save(model, tmp_path / "m.safetensors"), "before its first call"),
        (lambda: wxb.onnx.export(model, tmp_path / "m.onnx"), "first call"),
    ]
    for call, says in cases:
        with pytest.raises(ConfigError, match=says) as caught:
            call()
        assert _one_line(caught.value), caught.value
    assert "infers in_features" in model.why_not_planned()
    twin = wxb.interop.to_torch(model)  # torch's own lazy layer, which infers alike
    assert isinstance(twin[0], torch.nn.LazyLinear) and twin[0].out_features == 3
    back = wxb.interop.from_torch(twin)
    assert isinstance(back[0], nn.LazyLinear)
    model(np.ones((2, 5), np.float32))
    assert model.why_not_planned() is None  # a Dense now: the planned stack takes it
    wxb.save(model, tmp_path / "m.safetensors")
    assert repr(wxb.load(tmp_path / "m.safetensors")) == repr(model)


def test_fit_on_a_lazy_linear_model_replays(seeded):
    """fit makes the layers at its first forward (Keras's habit), then trains; the same
    seed gives the same weights, and the loss falls."""
    rng = seeded.rng
    X = rng.normal(size=(60, int(rng.integers(2, 8)))).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    runs = []
    for _ in range(2):
        wxb.manual_seed(seeded.wxb_seed)
        model = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(2))
        history = wxb.fit(model, X, y, epochs=20, lr=0.05, verbose=0)
        assert [type(layer) for layer in model] == [nn.Dense, nn.ReLU, nn.Dense]
        runs.append((model.state_dict(), history.history["loss"]))
    (first, loss), (second, _) = runs
    assert loss[-1] < loss[0], seeded.msg(f"loss {loss}")
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=seeded.msg(key))


# ---------------------------------------------------------------------------------
# the random layers in a model: a training step with the forward's draw, fit, files
# ---------------------------------------------------------------------------------
RANDOM_LAYERS = {
    "RReLU": lambda rng: nn.RReLU(*_bounds(rng)),
    "FeatureAlphaDropout": lambda rng: nn.FeatureAlphaDropout(float(rng.uniform(0.05, 0.6))),
    "Dropout1d": lambda rng: nn.Dropout1d(float(rng.uniform(0.05, 0.6))),
}


class _Fixed(torch.nn.Module):
    """x ⊙ factor + shift: a random layer's draw, given (torch's draws its own)."""

    def __init__(self, factor, shift):
        super().__init__()
        self.factor, self.shift = torch.tensor(factor), torch.tensor(shift)

    def forward(self, x):
        return x * self.factor + self.shift


def _draw_of(layer, hidden, seed):
    """The factor and shift the layer's forward applies to ``hidden`` after
    manual_seed(seed): y = hidden ⊙ factor + shift (RReLU: its slopes, no shift)."""
    wxb.manual_seed(seed)
    y = layer(wxb.Tensor(hidden)).data
    if isinstance(layer, nn.RReLU):
        return np.where(hidden > 0, 1.0, y / hidden), np.zeros_like(hidden)
    wxb.manual_seed(seed)
    factor = layer(wxb.Tensor(hidden + 1)).data - y  # (the mask does not depend on x)
    return factor, y - hidden * factor


@pytest.mark.parametrize("kind", sorted(RANDOM_LAYERS))
@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_random_layer_trains_a_step_with_its_forwards_draw(seeded, kind, optimizer):
    """One step of a Sequential holding the layer against torch computing the layer's
    draw as wxb drew it (manual_seed): the same new weights, so the backward used the
    forward's draw."""
    rng = seeded.rng
    rows, features = int(rng.integers(2, 9)), int(rng.integers(2, 6))
    X, y = rng.normal(size=(rows, features)), rng.integers(0, 3, rows)
    layer = RANDOM_LAYERS[kind](rng)
    model = nn.Sequential(nn.Dense(features, 6), layer, nn.Dense(6, 3)).to("float64")
    assert type(layer).__name__ in model.why_not_planned()
    seed = int(rng.integers(2**31))
    hidden = model[0](X).data
    hidden[np.abs(hidden) < 1e-6] = 1e-3
    factor, shift = _draw_of(layer, hidden, seed)
    twin = torch.nn.Sequential(torch.nn.Linear(features, 6), _Fixed(factor, shift),
                               torch.nn.Linear(6, 3)).double()  # fmt: skip
    with torch.no_grad():
        twin[0].weight.copy_(torch.tensor(model[0].weight.data))
        twin[0].bias.copy_(torch.tensor(model[0].bias.data))
        twin[2].weight.copy_(torch.tensor(model[2].weight.data))
        twin[2].bias.copy_(torch.tensor(model[2].bias.data))
    theirs = getattr(torch.optim, optimizer)(twin.parameters(), lr=0.05)
    ours = getattr(wxb.optim, optimizer)(model.parameters(), lr=0.05)
    theirs.zero_grad()
    TF.cross_entropy(twin(torch.tensor(X)), torch.tensor(y)).backward()
    theirs.step()
    ours.zero_grad()
    wxb.manual_seed(seed)  # the same draws as above
    nn.CrossEntropyLoss()(model(wxb.tensor(X, dtype=wxb.float64)), y).backward()
    pairs = list(zip(model.parameters(), twin.parameters(), strict=True))
    for mine, their in pairs:  # the backward used the forward's draw
        np.testing.assert_allclose(mine.grad, their.grad.numpy(), rtol=1e-11, atol=1e-15,
                                   err_msg=seeded.msg(kind))  # fmt: skip
    # Adam's first step is lr·g/(|g| + eps): a gradient at rounding's level (a bias's
    # 1/3 + 1/3 + 1/3 − 1 where the layer dropped every input: 2.8e-17 here, 0 in torch)
    # has its last-bit gap magnified by lr/eps
    gap = max(float(np.max(np.abs(mine.grad - their.grad.numpy()))) for mine, their in pairs)
    atol = 1e-12 + (0.05 / ours.param_groups[0]["eps"] * gap if optimizer == "Adam" else 0.0)
    ours.step()
    for mine, their in pairs:
        np.testing.assert_allclose(mine.data, their.detach().numpy(), rtol=1e-11, atol=atol,
                                   err_msg=seeded.msg(kind))  # fmt: skip


@pytest.mark.parametrize("kind", sorted(RANDOM_LAYERS))
def test_fit_on_a_model_with_a_random_layer_replays(seeded, kind):
    """wxb.fit draws the layer's masks or slopes from wxb's generator: the same seed gives
    the same weights, another seed others; predict (eval mode) draws nothing."""
    rng = seeded.rng
    X = rng.normal(size=(48, 4))
    y = rng.integers(0, 2, 48)
    layer_seed = int(rng.integers(2**31))

    def run(seed):
        wxb.manual_seed(seed)
        model = nn.Sequential(
            nn.Dense(4, 8), RANDOM_LAYERS[kind](np.random.default_rng(layer_seed)),
            nn.Dense(8, 2),
        )  # fmt: skip
        wxb.fit(model, X, y, epochs=3, batch_size=16, verbose=0)
        return model

    first, second, other = run(1), run(1), run(2)
    for key, value in first.state_dict().items():
        np.testing.assert_array_equal(value, second.state_dict()[key], err_msg=seeded.msg(key))
    assert any(not np.array_equal(v, other.state_dict()[k]) for k, v in first.state_dict().items())
    state = wxb.get_rng_state()
    np.testing.assert_array_equal(first.predict(X), first.predict(X))
    assert str(wxb.get_rng_state()) == str(state)


@pytest.mark.parametrize("kind", sorted(RANDOM_LAYERS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_random_layer_in_file_onnx_torch_and_summary(rng, tmp_path, kind, dtype):
    """Its settings through a file and PyTorch both ways; eval-mode numbers the same
    everywhere, ONNX's too (RReLU as LeakyReLU of slope (l + u)/2, the dropouts as
    nothing); the summary keeps the width."""
    onnxruntime = pytest.importorskip("onnxruntime")
    layer = RANDOM_LAYERS[kind](rng)
    model = nn.Sequential(nn.Dense(3, 5), layer, nn.Dense(5, 2)).to(dtype)
    settings = ("lower", "upper") if kind == "RReLU" else ("p",)
    X = rng.normal(size=(int(rng.integers(1, 20)), 3)).astype(dtype)
    model.eval()
    expected = model(X).data
    wxb.save(model, tmp_path / "m.safetensors")
    loaded = wxb.load(tmp_path / "m.safetensors")
    assert repr(loaded) == repr(model) and type(loaded[1]) is type(layer)
    assert [getattr(loaded[1], k) for k in settings] == [getattr(layer, k) for k in settings]
    np.testing.assert_array_equal(loaded(X).data, expected)
    wxb.onnx.export(model, tmp_path / "m.onnx")
    got = onnxruntime.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"input": X})[0]
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)
    twin = wxb.interop.to_torch(model)
    assert type(twin[1]) is getattr(torch.nn, kind) and not twin.training
    assert [getattr(twin[1], k) for k in settings] == [getattr(layer, k) for k in settings]
    np.testing.assert_allclose(twin(torch.tensor(X)).detach().numpy(), expected,
                               rtol=tolerance, atol=tolerance)  # fmt: skip
    back = wxb.interop.from_torch(twin)
    assert type(back[1]) is type(layer) and repr(back) == repr(model)
    assert model.summary().rows[1].output_shape == (5,)


def test_torch_functions_of_the_newest_layers_are_torchs(rng):
    """wxb.hardshrink and wxb.bilinear as torch.hardshrink and torch.bilinear."""
    x = rng.normal(size=(4, 3))
    lambd = float(rng.uniform(0, 1))
    np.testing.assert_array_equal(
        wxb.hardshrink(wxb.tensor(x, dtype="float64"), lambd).data,
        torch.hardshrink(torch.tensor(x), lambd).numpy(),
    )
    x1, x2 = rng.normal(size=(5, 2)), rng.normal(size=(5, 3))
    w, b = rng.normal(size=(4, 2, 3)), rng.normal(size=4)
    ours = wxb.bilinear(*(wxb.tensor(a, dtype="float64") for a in (x1, x2, w, b)))
    theirs = torch.bilinear(*(torch.tensor(a) for a in (x1, x2, w, b)))
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-12, atol=1e-12)
