"""Losses, activations and optimisers at the numeric edges users hit, against PyTorch
(float64 references), on both kernel routes: what was found wrong there stays right.

Random draws on every run (the seed is in each message: WXB_TEST_SEED replays it).
"""

from __future__ import annotations

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
