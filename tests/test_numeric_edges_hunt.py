"""Losses, activations and optimisers at the numeric edges users hit, against PyTorch
(float64 references), on both kernel routes: what was found wrong there stays right.

Random draws on every run (the seed is in each message: WXB_TEST_SEED replays it).
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

import wxb
from wxb import kernels
from wxb.nn import Parameter

torch = pytest.importorskip("torch")

ROUTES = ["numpy"]
try:  # the compiled route where numba is installed
    import wxb.kernels.compiled

    ROUTES.append("compiled")
except Exception:  # pragma: no cover - without numba the NumPy route alone
    pass


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny tensors: PyTorch's intra-op threads only add hand-offs on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(params=ROUTES)
def route(request):
    """The test's calls on one kernel route, the environment's choice restored after."""
    kernels.use(request.param)
    yield request.param
    kernels.use(os.environ.get("WXB_KERNELS", "auto"))


def _close(seeded, what, ours, theirs, dtype) -> None:
    """float64 to 1e-12 of the reference's scale, float32 to its rounding (1e-5)."""
    ours = np.asarray(ours, np.float64)
    theirs = np.asarray(theirs, np.float64)
    tolerance = 1e-12 if np.dtype(dtype) == np.float64 else 1e-5
    scale = max(1.0, float(np.abs(theirs).max()))
    error = float(np.abs(ours - theirs).max()) if ours.size else 0.0
    assert np.isfinite(ours).all() and error <= tolerance * scale, seeded.msg(
        f"{what}: wxb {ours.ravel()[:4]} PyTorch {theirs.ravel()[:4]} (error {error:.3g})"
    )


# ---------------------------------------------------------------------------------
# RMSprop: (1 − α)·g·g in PyTorch's order, so a gradient spike does not overflow
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rmsprop_steps_through_a_gradient_spike_whose_square_overflows(seeded, route, dtype):
    """A spike |g| ≈ 2–3e19 (float32; 2–3e154 in float64): g² overflows, (1 − α)·g² does
    not. g·g first made the running square inf for good (that weight never moved again:
    5–60 % off PyTorch after 50 steps), and NaN with α = 1."""
    rng = seeded.rng
    big = 3e19 if dtype == np.float32 else 3e154
    for _ in range(4):
        alpha = 1.0 if rng.random() < 0.25 else float(rng.uniform(0.9, 0.999))
        options = {"lr": float(rng.uniform(1e-3, 0.05)), "alpha": alpha}
        if alpha < 1:  # (α = 1 keeps the square at 0: momentum would run off to 1e200)
            options["centered"] = bool(rng.random() < 0.5)
            if rng.random() < 0.5:
                options["momentum"] = float(rng.uniform(0, 0.9))
            if rng.random() < 0.5:
                options["weight_decay"] = float(rng.uniform(0, 0.1))
        start = rng.standard_normal(7).astype(dtype)
        ours = Parameter(start.copy())
        theirs = torch.tensor(start.astype(np.float64), requires_grad=True)
        ours_opt = wxb.optim.RMSprop([ours], **options)
        their_opt = torch.optim.RMSprop([theirs], **options)
        spikes = set(rng.choice(50, size=2, replace=False).tolist())
        for step in range(50):
            g = rng.standard_normal(7)
            if step in spikes:
                g = np.sign(g) * rng.uniform(big * 2 / 3, big, 7)
            g = g.astype(dtype)
            ours.grad = g.copy()
            theirs.grad = torch.tensor(g.astype(np.float64))
            ours_opt.step()
            their_opt.step()
        what = f"RMSprop {options} {np.dtype(dtype)} ({route}), spikes at {sorted(spikes)}"
        _close(seeded, what, ours.data, theirs.detach().numpy(), dtype)


# ---------------------------------------------------------------------------------
# Cross-entropy: a row ignored adds nothing, whatever its logits
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ignored_rows_with_nan_or_infinite_logits_add_nothing(seeded, route, dtype, reduction):
    """Rows of the ignore_index (padding) whose logits are NaN, +inf or all −inf: PyTorch
    skips them and its loss stays finite; wxb's took 0·log Σe^z of them, NaN, and fit
    stopped as if training had diverged. The rows kept get PyTorch's gradient."""
    rng = seeded.rng
    rows, classes = int(rng.integers(4, 12)), int(rng.integers(2, 6))
    ignored = int(rng.choice([-100, int(rng.integers(0, classes))]))
    y = rng.integers(0, classes, rows)
    if ignored >= 0:
        y[y == ignored] = (ignored + 1) % classes
    out = rng.permutation(rows)[: int(rng.integers(1, rows))]  # at least one row kept
    y[out] = ignored
    z = rng.standard_normal((rows, classes)) * rng.choice([1, 30, 1e4])
    for i in out:  # each ignored row not finite, one way or another
        kind = rng.integers(4)
        if kind == 0:
            z[i] = np.nan
        elif kind == 1:
            z[i, rng.integers(classes)] = np.inf
        elif kind == 2:
            z[i] = -np.inf
        else:
            z[i, rng.integers(classes)] = np.nan
    z = z.astype(dtype)
    options = {"ignore_index": ignored}
    if rng.random() < 0.5:
        options["weight"] = rng.uniform(0.2, 3.0, classes)
    if rng.random() < 0.5:
        options["label_smoothing"] = float(rng.uniform(0, 0.5))
    ours = wxb.Tensor(z.copy(), requires_grad=True)
    with np.errstate(invalid="ignore"):
        value = wxb.nn.CrossEntropyLoss(reduction=reduction, **options)(ours, y)
        value.sum().backward()
    theirs = torch.tensor(z.astype(np.float64), requires_grad=True)
    their_options = dict(options)
    if "weight" in options:
        their_options["weight"] = torch.tensor(np.asarray(options["weight"], dtype))
        their_options["weight"] = their_options["weight"].double()
    expected = torch.nn.functional.cross_entropy(
        theirs, torch.tensor(y), reduction=reduction, **their_options
    )
    expected.sum().backward()
    what = f"{options} {reduction} {np.dtype(dtype)} ({route}), y {y}, logits {z}"
    _close(seeded, f"{what}: loss", value.data, expected.detach().numpy(), dtype)
    kept = y != ignored
    _close(seeded, f"{what}: ∂L/∂z of the rows kept", ours.grad[kept], theirs.grad[kept], dtype)


# ---------------------------------------------------------------------------------
# SmoothL1Loss: a β below the dtype's range is L1, not 0/0
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_smooth_l1_with_a_beta_below_float32s_range_is_l1(seeded, reduction):
    """β = 1e-300 (or any β under float32's smallest subnormal) rounds to 0 in a float32
    model: where ŷ = y exactly, d/β was 0/0 and that element's gradient NaN, where
    PyTorch's (which keeps β in double) is L1's 0."""
    rng = seeded.rng
    beta = float(10.0 ** rng.uniform(-300, -46))
    shape = (int(rng.integers(1, 6)), int(rng.integers(1, 5)))
    target = rng.standard_normal(shape).astype(np.float32)
    output = target + rng.standard_normal(shape).astype(np.float32)
    same = rng.random(shape) < 0.4
    same.reshape(-1)[0] = True
    output[same] = target[same]  # ŷ = y exactly there
    ours = wxb.Tensor(output.copy(), requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        value = wxb.nn.SmoothL1Loss(reduction=reduction, beta=beta)(ours, target)
    value.sum().backward()
    theirs = torch.tensor(output.astype(np.float64), requires_grad=True)
    expected = torch.nn.functional.smooth_l1_loss(
        theirs, torch.tensor(target.astype(np.float64)), reduction=reduction, beta=beta
    )
    expected.sum().backward()
    what = f"SmoothL1Loss(beta={beta:.3g}, {reduction}) float32 at ŷ − y = {output - target}"
    _close(seeded, f"{what}: loss", value.data, expected.detach().numpy(), np.float32)
    _close(seeded, f"{what}: ∂L/∂ŷ", ours.grad, theirs.grad.numpy(), np.float32)


# ---------------------------------------------------------------------------------
# Every optimiser, 50 steps through the gradients users hit, against torch.optim
# ---------------------------------------------------------------------------------
def _optimizer_options(rng, kind: str) -> dict:
    """Settings of ``kind`` with their edges drawn often: betas of 0 or near 1,
    Nesterov, dampening, centring, weight decay and decay of the rate."""
    lr = float(rng.uniform(1e-3, 0.05))
    if kind == "SGD":
        options = {"lr": lr, "weight_decay": float(rng.choice([0, rng.uniform(0, 0.1)]))}
        style = rng.integers(4)
        if style == 1:
            options.update(momentum=float(rng.uniform(0.5, 1.0)))
        elif style == 2:
            options.update(momentum=float(rng.uniform(0.5, 0.99)), nesterov=True)
        elif style == 3:
            options.update(momentum=float(rng.uniform(0.5, 0.99)), dampening=0.5)
        return options
    if kind in ("Adam", "AdamW"):
        beta1 = float(rng.choice([0.0, 0.9, 1 - 1e-6, rng.uniform(0, 1)]))
        beta2 = float(rng.choice([0.0, 0.999, 1 - 1e-7, rng.uniform(0, 1)]))
        return {
            "lr": lr,
            "betas": (beta1, beta2),
            "eps": float(rng.choice([1e-8, 1e-3, 1.0])),
            "weight_decay": float(rng.choice([0, rng.uniform(0, 0.5)])),
        }
    if kind == "RMSprop":
        # (centred with α = 0 the variance is g² − g·g: its rounding, which PyTorch's
        # fused multiply-add leaves out, decides between √0 and NaN)
        centered = bool(rng.random() < 0.5)
        alphas = [0.99, rng.uniform(0.5, 1)] + ([] if centered else [0.0])
        return {
            "lr": lr,
            "alpha": float(rng.choice(alphas)),
            "eps": float(rng.choice([1e-8, 1e-3])),
            "momentum": float(rng.choice([0, rng.uniform(0, 0.9)])),
            "centered": centered,
            "weight_decay": float(rng.choice([0, rng.uniform(0, 0.1)])),
        }
    return {  # Adagrad
        "lr": lr,
        "lr_decay": float(rng.choice([0, rng.uniform(0, 0.1)])),
        "weight_decay": float(rng.choice([0, rng.uniform(0, 0.1)])),
        "initial_accumulator_value": float(rng.choice([0, rng.uniform(0, 1)])),
        "eps": float(rng.choice([1e-10, 1e-4])),
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_fifty_steps_through_edge_gradients_are_torch_optims(seeded, route, kind, dtype):
    """Gradients of exactly 0, tiny (denormal in their square), 1e3–1e6 times the
    usual and a spike (3e19 in float32, 3e154 in float64: past the square's range), a
    parameter without a gradient on some steps, and the rate changed between steps:
    float64 to 1e-12 of torch.optim's, float32 to torch.optim's own float32 rounding."""
    rng = seeded.rng
    options = _optimizer_options(rng, kind)
    shapes = [(3, 4), (4,), (1,)]
    starts = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ours = [Parameter(x.copy()) for x in starts]
    theirs = [torch.tensor(x.copy(), requires_grad=True) for x in starts]
    ours_opt = getattr(wxb.optim, kind)(ours, **options)
    their_opt = getattr(torch.optim, kind)(theirs, **options)
    spike = 3e19 if dtype == np.float32 else 3e154
    if kind == "Adagrad" or (kind == "RMSprop" and options["alpha"] < 0.9):
        spike = 1e6  # Σ g² (Adagrad), or α small: its square overflows in PyTorch too
    steps = []
    for _ in range(50):
        regime = str(rng.choice(["normal", "zero", "tiny", "large", "spike", "none"]))
        if regime == "spike" and any(r == "spike" for r in steps):
            regime = "normal"  # one spike a run: the next would overflow the moments
        steps.append(regime)
        for k, (p, q) in enumerate(zip(ours, theirs, strict=True)):
            g = rng.standard_normal(shapes[k])
            if regime == "zero":
                g[...] = 0
            elif regime == "tiny":
                g *= 1e-25 if dtype == np.float32 else 1e-160
            elif regime == "large":
                g *= 10.0 ** rng.uniform(3, 6)
            elif regime == "spike":
                g = np.sign(g) * rng.uniform(spike / 2, spike, shapes[k])
            if regime == "none" and k == 1:
                p.grad, q.grad = None, None
                continue
            g = g.astype(dtype)
            p.grad, q.grad = g.copy(), torch.tensor(g.copy())
        if rng.random() < 0.1:
            lr = float(rng.uniform(1e-3, 0.05))
            for group in (*ours_opt.param_groups, *their_opt.param_groups):
                group["lr"] = lr
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            ours_opt.step()
        their_opt.step()
    for k, (p, q) in enumerate(zip(ours, theirs, strict=True)):
        expected = q.detach().numpy().astype(np.float64)
        what = f"{kind} {options} {np.dtype(dtype)} ({route}), parameter {k}, steps {steps}"
        got = p.data.astype(np.float64)
        finite = np.isfinite(expected)  # (β₂ = 0 after a spike: inf·0, NaN in both)
        tolerance = 1e-12 if dtype == np.float64 else 2e-5
        scale = max(1.0, float(np.abs(expected[finite]).max(initial=0)))
        error = float(np.abs(got[finite] - expected[finite]).max(initial=0))
        same = np.array_equal(got[~finite], expected[~finite], equal_nan=True)
        assert same and error <= tolerance * scale, seeded.msg(
            f"{what}: wxb {got.ravel()[:4]}, torch.optim {expected.ravel()[:4]}"
        )


@pytest.mark.parametrize("kind", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_fit_planned_steps_at_large_logits_are_torch_optims(seeded, route, kind):
    """fit (its planned step: fused bias and activation, the loss's kernel, the flat
    update) for 50 steps on inputs that drive the logits to ±30–±100, and a batch whose
    targets spike a regression loss, against PyTorch's hand loop
    (zero_grad, backward, step) in float64."""
    rng = seeded.rng
    options = _optimizer_options(rng, kind)
    # where an update is m/|g| (β₂ or α = 0) or undamped (momentum 1), steps this large
    # are chaotic: a 1-ulp change of the start moves PyTorch's own weights by 0.2
    if kind in ("Adam", "AdamW"):
        options["betas"] = (options["betas"][0], float(rng.choice([0.999, 1 - 1e-7])))
    elif kind == "RMSprop":
        options.update(alpha=float(rng.uniform(0.9, 0.999)), centered=False)
    elif kind == "SGD":
        options["momentum"] = min(options.get("momentum", 0.0), 0.95)
    activation, their_activation = [
        (wxb.nn.ReLU(), torch.nn.ReLU()),
        (wxb.nn.ELU(0.5), torch.nn.ELU(0.5)),
        (wxb.nn.Softplus(2.0, 5.0), torch.nn.Softplus(2.0, 5.0)),
        (wxb.nn.LeakyReLU(0.1), torch.nn.LeakyReLU(0.1)),
    ][rng.integers(4)]
    losses = [
        (
            wxb.nn.CrossEntropyLoss(label_smoothing=0.1),
            torch.nn.CrossEntropyLoss(label_smoothing=0.1),
        ),
        (wxb.nn.BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss()),
        (wxb.nn.HuberLoss(delta=0.5), torch.nn.HuberLoss(delta=0.5)),
    ]
    which = int(rng.integers(3))
    loss, their_loss = losses[which]
    model = wxb.nn.Sequential(  # (drawn from rng: the seed in a failure's message replays it)
        wxb.nn.Dense(4, 6, dtype="float64", seed=rng),
        activation,
        wxb.nn.Dense(6, 3, dtype="float64", seed=rng),
    )
    twin = torch.nn.Sequential(torch.nn.Linear(4, 6), their_activation, torch.nn.Linear(6, 3))
    twin = twin.double()
    nudged = copy.deepcopy(twin)  # from 1 ulp away: how far PyTorch's own rounding carries
    with torch.no_grad():
        for p, q, r in zip(model.parameters(), twin.parameters(), nudged.parameters(), strict=True):
            q.copy_(torch.tensor(p.data))
            r.copy_(torch.tensor(np.nextafter(p.data, np.inf)))
    # ... and how far one rounding of the loss's gradient carries: δ = σ(z) − y (p − y, a
    # Huber slope ≤ 0.5) is a difference of terms ≤ 1, exact only to u = 2⁻⁵³ whatever its
    # size, so a bias's Σδ/N over a batch whose ±1 cancel (z ≫ 0 with y = 0, z ≪ 0 with
    # y = 1) is rounding to B·u/N (4e-17 here), and wxb's and PyTorch's orders round it
    # apart. Adagrad's step with Σ = 0 is η·g/(|g| + ε), η/ε up to 5e8 per unit of g: 1e-9
    # of weight from 1e-17 of g, which 1 ulp of the start (σ' ≈ 0 at z = ±35) never moves.
    # This twin's δ/N each get u/N more, every step.
    rounded = copy.deepcopy(twin)
    rows, batch = 100, 10
    X = rng.standard_normal((rows, 4)) * rng.choice([30.0, 100.0])
    if which == 0:
        y = rng.integers(0, 3, rows)
    elif which == 1:
        y = rng.integers(0, 2, (rows, 3)).astype(np.float64)
    else:
        y = rng.standard_normal((rows, 3)) * 30
        y[rng.integers(rows)] *= 1e6  # one row far off: Huber's absolute branch
    ours_opt = getattr(wxb.optim, kind)(model.parameters(), **options)
    wxb.fit(model, X, y, loss=loss, optimizer=ours_opt, epochs=5, batch_size=batch,
            shuffle=False, verbose=False)  # fmt: skip
    for net in (twin, nudged, rounded):
        their_opt = getattr(torch.optim, kind)(net.parameters(), **options)
        for _ in range(5):
            for start in range(0, rows, batch):
                their_opt.zero_grad()
                out = net(torch.tensor(X[start : start + batch]))
                if net is rounded:  # (cross-entropy's mean is over rows, the others' elements)
                    n = out.shape[0] if which == 0 else out.numel()
                    out.register_hook(lambda g, n=n: g + 2.0**-53 / n)
                their_loss(out, torch.tensor(y[start : start + batch])).backward()
                their_opt.step()
    what = f"fit {kind} {options} {type(loss).__name__} {type(activation).__name__} ({route})"
    pairs = zip(model.named_parameters(), twin.parameters(), nudged.parameters(),
                rounded.parameters(), strict=True)  # fmt: skip
    for (name, p), q, r, v in pairs:
        expected = q.detach().numpy()
        spread = max(float(np.abs(w.detach().numpy() - expected).max()) for w in (r, v))
        bound = max(1e-9 * max(1.0, float(np.abs(expected).max())), 100 * spread)
        error = float(np.abs(p.data - expected).max())
        assert error <= bound, seeded.msg(
            f"{what}: {name} {p.data.ravel()[:3]}, PyTorch {expected.ravel()[:3]} (error "
            f"{error:.3g}; PyTorch 1 ulp from its start or its δ moves {spread:.3g})"
        )


# ---------------------------------------------------------------------------------
# Activations and the classification losses at the values users hit
# ---------------------------------------------------------------------------------
EDGES = [0.0, -0.0, 1e-30, -1e-30, 1e-8, -1e-8, 15.0, -15.0, 17.0, -17.0, 19.99, 20.0,
         20.01, -20.0, 30.0, -30.0, 88.0, -89.0, 100.0, -100.0, 1e4, -1e4]  # fmt: skip
ACTIVATIONS = {
    "relu": (lambda: wxb.nn.ReLU(), lambda: torch.nn.ReLU()),
    "leaky_relu": (lambda: wxb.nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2)),
    "sigmoid": (lambda: wxb.nn.Sigmoid(), lambda: torch.nn.Sigmoid()),
    "tanh": (lambda: wxb.nn.Tanh(), lambda: torch.nn.Tanh()),
    "gelu": (lambda: wxb.nn.GELU(), lambda: torch.nn.GELU()),
    "gelu_tanh": (lambda: wxb.nn.GELU("tanh"), lambda: torch.nn.GELU("tanh")),
    "silu": (lambda: wxb.nn.SiLU(), lambda: torch.nn.SiLU()),
    "elu": (lambda: wxb.nn.ELU(0.7), lambda: torch.nn.ELU(0.7)),
    "softplus": (lambda: wxb.nn.Softplus(), lambda: torch.nn.Softplus()),
    "softplus_beta": (lambda: wxb.nn.Softplus(2.0, 5.0), lambda: torch.nn.Softplus(2.0, 5.0)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activations_at_zero_saturation_and_thresholds_are_pytorchs(seeded, route, name, dtype):
    """Each activation and its gradient at ±0, the smallest values, the thresholds
    (Softplus's βz = 20 and 5), saturation (σ, tanh, GELU at ±17…±1e4) and random
    values, against PyTorch in float64: to 1e-12 of the values' scale (float64) or
    float32's rounding; ReLU's gradient at 0 is PyTorch's 0, LeakyReLU's and ELU's α."""
    rng = seeded.rng
    z = np.concatenate([EDGES, rng.standard_normal(20) * rng.choice([1, 30])]).astype(dtype)
    if name == "softplus_beta":
        z = np.concatenate([z, [2.5, 2.4999, 2.5001, -2.5]]).astype(dtype)
    grad = rng.standard_normal(z.shape).astype(dtype)
    ours_layer, their_layer = ACTIVATIONS[name]
    ours = wxb.Tensor(z.copy(), requires_grad=True)
    with np.errstate(over="ignore", under="ignore"):
        out = ours_layer()(ours)
        out.backward(wxb.Tensor(grad))
    theirs = torch.tensor(z.astype(np.float64), requires_grad=True)
    expected = their_layer()(theirs)
    expected.backward(torch.tensor(grad.astype(np.float64)))
    what = f"{name} {np.dtype(dtype)} ({route}) at {z}"
    tolerance = 1e-12 if dtype == np.float64 else 2e-6
    for part, got, want in (("f(z)", out.data, expected), ("∂L/∂z", ours.grad, theirs.grad)):
        want = want.detach().numpy()
        error = np.abs(got.astype(np.float64) - want)
        assert (error <= tolerance * np.abs(want).max()).all(), seeded.msg(
            f"{what}: {part} off by {error.max():.3g} at z = {z[error.argmax()]}"
        )
    at_zero = np.flatnonzero(z == 0)
    slope = {"relu": 0.0, "leaky_relu": 0.2, "elu": 0.7}.get(name)
    if slope is not None:  # PyTorch's convention at exactly 0: the negative side's
        np.testing.assert_array_equal(ours.grad[at_zero], slope * grad[at_zero], err_msg=what)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_classification_losses_stay_finite_and_right_at_huge_logits(seeded, route, dtype):
    """Logits of ±30, ±100 and ±1e4, rows all equal, one class, a batch of one, with
    class indices, one-hot rows (floats and integers), soft labels, class weights,
    label smoothing, pos_weight and each reduction: cross-entropy, NLL after
    log-softmax and BCE with logits finite and PyTorch's (float64 reference)."""
    rng = seeded.rng
    F = torch.nn.functional
    for _ in range(6):
        rows, classes = int(rng.choice([1, 2, 7])), int(rng.choice([1, 2, 5]))
        z = rng.standard_normal((rows, classes)) * rng.choice([30, 100, 1e4])
        z[0] = z[0, 0]  # a row of equal logits
        z = z.astype(dtype)
        labels = rng.integers(0, classes, rows)
        reduction = str(rng.choice(["mean", "sum", "none"]))
        weight = rng.uniform(0.2, 3, classes) if rng.random() < 0.5 else None
        smoothing = float(rng.choice([0.0, 0.1]))
        kind = str(rng.choice(["indices", "one_hot", "one_hot_int", "soft"]))
        target = {
            "indices": labels,
            "one_hot": np.eye(classes, dtype=dtype)[labels],
            "one_hot_int": np.eye(classes, dtype=np.int64)[labels],
            "soft": rng.dirichlet(np.ones(classes), rows).astype(dtype),
        }[kind]
        their_target = torch.tensor(labels if kind == "indices" else target.astype(np.float64))
        w = None if weight is None else torch.tensor(weight.astype(dtype).astype(np.float64))
        bits = (rng.random((rows, classes)) < 0.5).astype(dtype)
        pos_weight = rng.uniform(0.2, 5, classes) if rng.random() < 0.5 else None
        p = None if pos_weight is None else torch.tensor(pos_weight.astype(dtype).astype(float))
        for case in ("cross_entropy", "nll", "bce_with_logits"):
            ours = wxb.Tensor(z.copy(), requires_grad=True)
            theirs = torch.tensor(z.astype(np.float64), requires_grad=True)
            if case == "cross_entropy":
                what = f"cross_entropy {kind} weight={weight is not None} smoothing={smoothing}"
                value = wxb.nn.CrossEntropyLoss(
                    weight, reduction=reduction, label_smoothing=smoothing
                )(ours, target)
                expected = F.cross_entropy(
                    theirs, their_target, w, reduction=reduction, label_smoothing=smoothing
                )
            elif case == "nll":
                what = f"nll after log_softmax weight={weight is not None}"
                log_p = wxb.nn.functional.log_softmax(ours, dim=1)
                value = wxb.nn.NLLLoss(weight, reduction=reduction)(log_p, labels)
                their_log_p = F.log_softmax(theirs, 1)
                expected = F.nll_loss(their_log_p, torch.tensor(labels), w, reduction=reduction)
            else:
                what = f"bce_with_logits pos_weight={pos_weight is not None}"
                value = wxb.nn.BCEWithLogitsLoss(reduction=reduction, pos_weight=pos_weight)(
                    ours, bits
                )
                expected = F.binary_cross_entropy_with_logits(
                    theirs, torch.tensor(bits.astype(np.float64)), reduction=reduction, pos_weight=p
                )
            value.sum().backward()
            expected.sum().backward()
            what = f"{what} {reduction} {np.dtype(dtype)} ({route}), logits {z}"
            _close(seeded, f"{what}: loss", value.data, expected.detach().numpy(), dtype)
            _close(seeded, f"{what}: ∂L/∂z", ours.grad, theirs.grad.numpy(), dtype)
