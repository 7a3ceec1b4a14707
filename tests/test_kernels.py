"""wxb.kernels: the compiled loops and the NumPy reference compute the same numbers.

float64 to 1e-12 relative; float32 exactly where only +, −, ×, ÷ and √ are involved
(both round the same operations in the same order), and to a few units in the last
place where exp or tanh come from different libraries. Random shapes and values on
every run, with the edge shapes (one row, one column) and the values that test the
branches (NaN, ±inf, ±0) mixed in.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import wxb
from wxb import kernels, nn
from wxb.errors import ConfigError
from wxb.kernels import reference

compiled = pytest.importorskip("wxb.kernels.compiled", reason="the compiled route needs numba")

DTYPES = (np.float32, np.float64)
CODES = {
    "identity": kernels.IDENTITY,
    "relu": kernels.RELU,
    "leaky_relu": kernels.LEAKY_RELU,
    "sigmoid": kernels.SIGMOID,
    "tanh": kernels.TANH,
}
TRANSCENDENTAL = {kernels.SIGMOID, kernels.TANH}


@pytest.fixture
def route():
    """Run a test's calls through one route, then restore the environment's choice
    (CI runs the suite a second time with WXB_KERNELS=numpy)."""
    yield kernels.use
    kernels.use(os.environ.get("WXB_KERNELS", "auto"))


def both(route, call):
    """``call()`` on the NumPy route and on the compiled route."""
    route("numpy")
    expected = call()
    route("compiled")
    got = call()
    return expected, got


def close(got, expected, dtype, exact: bool, what: str) -> None:
    if dtype == np.float64:
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300, err_msg=what)
    elif exact:
        np.testing.assert_array_equal(got, expected, err_msg=what)
    else:  # exp/tanh of another library: a few ulp
        np.testing.assert_allclose(got, expected, rtol=4e-7, atol=1e-37, err_msg=what)


def shapes(rng) -> list[tuple[int, int]]:
    return [(1, 1), (1, int(rng.integers(2, 40))), (int(rng.integers(2, 40)), 1)] + [
        (int(rng.integers(2, 300)), int(rng.integers(2, 300))) for _ in range(2)
    ]


def values(rng, shape, dtype, specials: bool = True) -> np.ndarray:
    x = (rng.standard_normal(shape) * rng.choice([0.1, 3, 30])).astype(dtype)
    if specials and x.size > 4:
        flat = x.reshape(-1)
        picks = rng.choice(x.size, size=min(6, x.size), replace=False)
        flat[picks] = rng.choice([np.nan, np.inf, -np.inf, 0.0, -0.0, 100.0], size=len(picks))
    return x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CODES)
def test_activation_kernels_agree(route, rng, seeded, name, dtype):
    code = CODES[name]
    alpha = float(rng.uniform(-0.5, 0.5)) if code == kernels.LEAKY_RELU else 0.0
    exact = code not in TRANSCENDENTAL
    for shape in shapes(rng):
        z = values(rng, shape, dtype)
        grad = values(rng, shape, dtype)
        bias = values(rng, shape[1:], dtype, specials=False)
        what = seeded.msg(f"{name} {np.dtype(dtype).name} {shape}")

        def forward(z=z):
            return kernels.activation_forward(code, z, np.empty_like(z), alpha).copy()

        a_ref, a_got = both(route, forward)
        with np.errstate(invalid="ignore"):
            close(a_got, a_ref, dtype, exact, what + " forward")

        def backward(z=z, a=a_ref, grad=grad):
            return kernels.activation_backward(code, z, a, grad, np.empty_like(z), alpha).copy()

        with np.errstate(invalid="ignore", over="ignore"):
            d_ref, d_got = both(route, backward)
            close(d_got, d_ref, dtype, exact, what + " backward")

        def fused(z=z, bias=bias):
            work = z.copy()
            out = kernels.bias_activation(code, work, bias, np.empty_like(z), alpha)
            return work, out.copy()

        with np.errstate(invalid="ignore", over="ignore"):
            (zb_ref, fa_ref), (zb_got, fa_got) = both(route, fused)
            np.testing.assert_array_equal(zb_got, zb_ref, err_msg=what + " Z + b")
            close(fa_got, fa_ref, dtype, exact, what + " bias + activation")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["relu", "leaky_relu", "sigmoid", "tanh"])
def test_activation_backward_matches_torch_at_nan_and_inf(route, rng, seeded, name, dtype):
    """ReLU's f′ was a 0/1 mask times the gradient: an infinite gradient on a dead unit
    gave NaN (PyTorch: 0), and a NaN input blocked its gradient (PyTorch passes it).
    Each route against PyTorch's backward rule given the same Z, A and ∂L/∂A (σ and tanh
    of another library would differ where one rounds to ±1 and the other does not)."""
    torch = pytest.importorskip("torch")
    aten = torch.ops.aten
    code = CODES[name]
    alpha = float(rng.uniform(0.01, 0.5)) if code == kernels.LEAKY_RELU else 0.0
    shape = (int(rng.integers(8, 40)), int(rng.integers(8, 40)))
    z = values(rng, shape, dtype)
    grad = values(rng, shape, dtype)
    z.reshape(-1)[:4] = [np.nan, -1.0, 0.0, -0.0]  # the cases a mask gets wrong
    grad.reshape(-1)[:4] = [1.5, np.inf, -np.inf, np.nan]
    for route_name in ("numpy", "compiled"):
        route(route_name)
        with np.errstate(invalid="ignore", over="ignore"):
            a = kernels.activation_forward(code, z, np.empty_like(z), alpha)
            got = kernels.activation_backward(code, z, a, grad, np.empty_like(z), alpha)
        zt, at, gt = torch.tensor(z), torch.tensor(a), torch.tensor(grad)
        if name == "relu":
            expected = aten.threshold_backward(gt, at, 0)  # torch's rule reads A
        elif name == "leaky_relu":
            expected = aten.leaky_relu_backward(gt, zt, alpha, False)
        elif name == "sigmoid":
            expected = aten.sigmoid_backward(gt, at)
        else:
            expected = aten.tanh_backward(gt, at)
        expected = expected.numpy()
        what = seeded.msg(f"{name} {route_name}")
        if code not in TRANSCENDENTAL:
            np.testing.assert_array_equal(got, expected, err_msg=what)
            continue
        # 1 − a² in another order ((1 − a)(1 + a), fused): equal to a few ulp of ∂L/∂A
        finite = np.isfinite(expected)
        np.testing.assert_array_equal(got[~finite], expected[~finite], err_msg=what)
        err = np.abs(got[finite] - expected[finite])
        assert (err <= 4 * np.finfo(dtype).eps * np.abs(grad[finite])).all(), what


@pytest.mark.parametrize("dtype", DTYPES)
def test_leaky_relu_passes_positive_inputs_exactly_whatever_the_slope(route, rng, dtype):
    """z > 0 went through as ((1 − α) + α)·z: 1.00000024·z in float32 for α = −3.3, and
    inf for the largest float64 at α = −1.2. PyTorch passes z, and a gradient of 1."""
    for alpha in (-3.3, -1.2, -0.3, 1.3, 7.0, float(rng.uniform(-10, 10))):
        big = np.finfo(dtype).max
        z = np.array([[1.0, 0.5, big, -2.0]], dtype)
        grad = np.array([[1.0, 3.0, 1.0, 1.0]], dtype)
        for name in ("numpy", "compiled"):
            route(name)
            a = kernels.activation_forward(kernels.LEAKY_RELU, z, np.empty_like(z), alpha)
            np.testing.assert_array_equal(a[0, :3], z[0, :3], err_msg=f"{name} α={alpha}")
            assert a[0, 3] == np.array(alpha, dtype) * z[0, 3]
            d = kernels.activation_backward(kernels.LEAKY_RELU, z, a, grad, np.empty_like(z), alpha)
            np.testing.assert_array_equal(d[0, :3], grad[0, :3], err_msg=f"{name} α={alpha}")
            assert d[0, 3] == np.array(alpha, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_on_indices_agrees(route, rng, seeded, dtype):
    for rows, classes in [(1, 2), (1, 7), *shapes(rng)[3:]]:
        classes = max(classes, 2)
        z = values(rng, (rows, classes), dtype, specials=False)
        target = rng.integers(0, classes, size=rows)
        scale = float(rng.choice([1.0, 1.0 / rows]))

        def call(z=z, target=target, scale=scale):
            grad = np.empty_like(z)
            return kernels.cross_entropy_indices(z, target, grad, scale), grad

        (v_ref, g_ref), (v_got, g_got) = both(route, call)
        what = seeded.msg(f"cross-entropy {np.dtype(dtype).name} {rows}×{classes}")
        np.testing.assert_allclose(v_got, v_ref, rtol=1e-12 if dtype == np.float64 else 1e-6)
        # softmax − 1 cancels: exp's last-place difference is absolute, on the scale of 1
        ulp = 1e-15 if dtype == np.float64 else 2.4e-7
        np.testing.assert_allclose(g_got, g_ref, rtol=4 * ulp, atol=4 * ulp * scale, err_msg=what)
        # and against the definition: (softmax(z) − onehot)·scale
        shifted = z.astype(np.float64) - z.max(axis=1, keepdims=True)
        soft = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        onehot = np.eye(classes)[target]
        tol = 1e-12 if dtype == np.float64 else 1e-5
        np.testing.assert_allclose(g_got, (soft - onehot) * scale, rtol=tol, atol=tol)
        loss = -np.log(soft[np.arange(rows), target]).sum()
        np.testing.assert_allclose(v_got, loss, rtol=tol, atol=tol, err_msg=what)


def test_cross_entropy_keeps_nan_logits_nan(route):
    z = np.array([[0.0, np.nan, 1.0]], np.float32)
    for setting in ("numpy", "compiled"):
        route(setting)
        with np.errstate(invalid="ignore"):
            value = kernels.cross_entropy_indices(z, np.array([0]), np.empty_like(z), 1.0)
        assert np.isnan(value), setting


def update_arrays(rng, size, dtype, states):
    data = values(rng, size, dtype, specials=False)
    grad = values(rng, size, dtype, specials=False)
    kept = [np.abs(values(rng, size, dtype, specials=False)) for _ in range(states)]
    return data, grad, kept


def run_update(route, rule, data, grad, states, settings):
    """The rule on copies, through both routes; returns (reference, compiled) arrays."""

    def call():
        d, g, s = data.copy(), grad.copy(), [x.copy() for x in states]
        scratch = [np.empty_like(data) for _ in range(2)]
        rule(d, g, *s, *scratch, **settings)
        return [d, *s]

    return both(route, call)


@pytest.mark.parametrize("dtype", DTYPES)
def test_optimiser_updates_agree(route, rng, seeded, dtype):
    sizes = [1, 2, int(rng.integers(3, 5000))]
    for size in sizes:
        for decoupled in (False, True):
            data, grad, (m, v) = update_arrays(rng, size, dtype, 2)
            settings = dict(
                t=int(rng.integers(1, 60)),
                lr=float(rng.uniform(1e-4, 1e-1)),
                beta1=float(rng.uniform(0.5, 0.99)),
                beta2=float(rng.uniform(0.9, 0.9999)),
                eps=float(rng.choice([1e-8, 1e-3])),
                weight_decay=float(rng.choice([0.0, rng.uniform(0, 0.1)])),
                decoupled=decoupled,
            )
            expected, got = run_update(route, kernels.adam, data, grad, [m, v], settings)
            for e, g in zip(expected, got, strict=True):
                close(g, e, dtype, True, seeded.msg(f"adam {settings} size {size}"))
            l2 = float(rng.choice([0.0, rng.uniform(0, 0.1)]))
            settings = dict(
                t=settings["t"], lr=settings["lr"], beta1=settings["beta1"],
                beta2=settings["beta2"], eps=settings["eps"], l2=l2,
                weight_decay=settings["weight_decay"] if decoupled else 0.0,
            )  # fmt: skip
            expected, got = run_update(route, kernels.sklearn_adam, data, grad, [m, v], settings)
            for e, g in zip(expected, got, strict=True):
                close(g, e, dtype, True, seeded.msg(f"sklearn adam {settings} size {size}"))
        for momentum, dampening, nesterov, first in [
            (0.0, 0.0, False, False),
            (0.9, 0.0, False, True),
            (0.9, 0.0, False, False),
            (float(rng.uniform(0.1, 0.99)), float(rng.uniform(0.01, 0.5)), False, False),
            (float(rng.uniform(0.1, 0.99)), 0.0, True, False),
            (float(rng.uniform(0.1, 0.99)), 0.0, True, True),
        ]:
            data, grad, (velocity,) = update_arrays(rng, size, dtype, 1)
            settings = dict(
                lr=float(rng.uniform(1e-4, 1e-1)), momentum=momentum, dampening=dampening,
                nesterov=nesterov, weight_decay=float(rng.choice([0.0, rng.uniform(0, 0.1)])),
                first=first,
            )  # fmt: skip
            kept = [velocity] if momentum else []

            def sgd(d, g, *rest, momentum=momentum, **kw):
                if not momentum:
                    return kernels.sgd(d, g, None, *rest, momentum=momentum, **kw)
                return kernels.sgd(d, g, *rest, momentum=momentum, **kw)

            expected, got = run_update(route, sgd, data, grad, kept, settings)
            for e, g in zip(expected, got, strict=True):
                close(g, e, dtype, True, seeded.msg(f"sgd {settings} size {size}"))
            settings = dict(
                lr=settings["lr"], momentum=momentum, nesterov=nesterov,
                l2=float(rng.choice([0.0, rng.uniform(0, 0.1)])),
            )  # fmt: skip
            expected, got = run_update(route, kernels.sklearn_sgd, data, grad, [velocity], settings)
            for e, g in zip(expected, got, strict=True):
                close(g, e, dtype, True, seeded.msg(f"sklearn sgd {settings} size {size}"))


@pytest.mark.parametrize("optimizer", ["sgd", "sgd_nesterov", "adam", "adamw"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu"])
def test_training_gives_the_same_weights_on_both_routes(route, rng, activation, optimizer):
    """Two fit epochs of a random MLP, float64: the two routes end at the same weights.
    (exp comes from different libraries, so the last bits differ; gentle rates keep a
    ReLU kink from turning that into a different path.)"""
    n, h, c, rows = (int(x) for x in rng.integers(2, 24, size=4))
    X = rng.standard_normal((rows * 4, n))
    y = rng.integers(0, c + 1, size=rows * 4)
    batch = int(rng.integers(4, 10))
    make = {
        "sgd": lambda p: wxb.optim.SGD(p, lr=0.01, momentum=0.9, weight_decay=1e-3),
        "sgd_nesterov": lambda p: wxb.optim.SGD(p, lr=0.01, momentum=0.8, nesterov=True),
        "adam": lambda p: wxb.optim.Adam(p, lr=1e-3, weight_decay=1e-3),
        "adamw": lambda p: wxb.optim.AdamW(p, lr=1e-3),
    }[optimizer]
    results = []
    for setting in ("numpy", "compiled"):
        route(setting)
        act = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}.get(activation)
        model = nn.Sequential(
            nn.Dense(n, h, seed=3, dtype="float64"),
            act() if act else nn.LeakyReLU(0.2),
            nn.Dense(h, c + 1, seed=4, dtype="float64"),
        )
        wxb.fit(model, X, y, loss="cross_entropy", optimizer=make(model.parameters()),
                epochs=2, batch_size=batch, seed=5, verbose=False)  # fmt: skip
        results.append([p.data.copy() for p in model.parameters()])
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)


def test_odd_arrays_take_the_reference(route, rng):
    """Non-contiguous views and other dtypes go through NumPy on either route."""
    route("compiled")
    z = rng.standard_normal((6, 8))[:, ::2]  # not contiguous
    out = np.empty_like(z)
    kernels.activation_forward(kernels.RELU, z, out)
    np.testing.assert_array_equal(out, np.maximum(z, 0))
    half = rng.standard_normal(10).astype(np.float16)
    np.testing.assert_array_equal(
        kernels.activation_forward(kernels.TANH, half, np.empty_like(half)), np.tanh(half)
    )


def test_route_is_chosen_and_reported(route):
    assert route("numpy").startswith("numpy")
    assert route("compiled").startswith("compiled (numba")
    assert route("auto").startswith("compiled")
    with pytest.raises(ConfigError, match="kernels must be one of"):
        route("fast")


# A child here chooses its route itself (WXB_KERNELS=auto unless a test names one), not
# the pass's: the same in CI's two passes, so the tests that start one are one_route
def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, "WXB_KERNELS": "auto", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.one_route
def test_the_environment_switches_the_compiled_route_off():
    done = run_python(
        """
        import sys, numpy as np
        from wxb import kernels
        z = np.ones((2, 3))
        kernels.activation_forward(kernels.RELU, z, np.empty_like(z))
        print(kernels.route(), "numba" in sys.modules)
        """,
        WXB_KERNELS="numpy",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "numpy (WXB_KERNELS=numpy) False"
    bad = run_python("from wxb import kernels; kernels.route()", WXB_KERNELS="gpu")
    assert bad.returncode != 0 and "WXB_KERNELS must be one of" in bad.stderr


@pytest.mark.one_route
def test_without_a_writable_cache_the_kernels_compile_uncached():
    """numba refuses cache=True when no cache folder is writable (a read-only install);
    the kernels then compile for the process alone. As numba does, the patched njit
    raises at decoration when asked to cache."""
    done = run_python(
        """
        import numba, numpy as np
        real = numba.njit
        def njit(*args, cache=False, **options):
            if cache:
                raise RuntimeError("cannot cache function: no locator available for file")
            return real(*args, **options)
        numba.njit = njit
        from wxb import kernels
        z = np.array([[-1.0, 2.0]])
        out = kernels.activation_forward(kernels.RELU, z, np.empty_like(z))
        print(kernels.route(), out.tolist())
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "compiled"
    assert done.stdout.strip().endswith("[[0.0, 2.0]]")


@pytest.mark.one_route
def test_kernels_load_lazily():
    """Importing wxb imports no numba; the first kernel call does."""
    done = run_python(
        """
        import sys, numpy as np, wxb
        before = "numba" in sys.modules
        model = wxb.nn.Sequential(wxb.nn.Dense(3, 4), wxb.nn.ReLU(), wxb.nn.Dense(4, 2))
        model(np.ones((2, 3), np.float32))
        print(before, "numba" in sys.modules)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]


def test_reference_is_what_the_numpy_route_runs(route):
    route("numpy")
    z = np.array([[-1.0, 0.5]])
    assert kernels._impl(z) is reference


@pytest.mark.one_route
def test_without_numba_the_numpy_route_serves_and_says_why():
    """numba missing (or refusing this NumPy: its import raises): NumPy computes, and
    insisting on the compiled route is a clear error."""
    code = """
        import sys
        sys.modules["numba"] = None  # import numba now raises ImportError
        import numpy as np
        from wxb import kernels
        z = np.array([[-1.0, 2.0]])
        out = kernels.activation_forward(kernels.RELU, z, np.empty_like(z))
        print(kernels.route(), out.tolist())
        """
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("numpy (numba unavailable:")
    assert done.stdout.strip().endswith("[[0.0, 2.0]]")
    insisted = run_python(code, WXB_KERNELS="compiled")
    assert insisted.returncode != 0
    assert "the compiled kernels need numba" in insisted.stderr
    # caught once, it is raised again: no later call falls back to NumPy quietly
    again = run_python(
        """
        import sys
        sys.modules["numba"] = None
        import numpy as np
        from wxb import kernels
        from wxb.errors import ConfigError
        z = np.ones((1, 2))
        for _ in range(2):
            try:
                kernels.activation_forward(kernels.RELU, z, np.empty_like(z))
                print("computed")
            except ConfigError:
                print("refused")
        """,
        WXB_KERNELS="compiled",
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == ["refused", "refused"]


@pytest.mark.parametrize("setting", ["numpy", "compiled"])
def test_a_subclass_rule_keeps_chunks_and_scratch_of_their_shape(route, rng, setting):
    """A user's own NumPy ``_rule`` (written to the documented contract: scratch shaped
    like the stretch it gets) still gets cache-sized chunks on the compiled route, over
    a buffer larger than one chunk; only the stock rules run in one pass."""
    route(setting)

    class Plain(wxb.optim.SGD):
        def _rule(self, data, grad, states, t, s1, s2, h):
            assert s1.shape == data.shape
            np.multiply(grad, h["lr"], out=s1)
            data -= s1

    size = wxb.optim.CHUNK * 2 + int(rng.integers(1, 1000))
    start = rng.standard_normal(size)
    grad = rng.standard_normal(size)
    results = []
    for cls in (Plain, wxb.optim.SGD):
        p = nn.Parameter(start.copy())
        opt = cls([p], lr=0.1)
        p.grad = grad.copy()
        opt.step()
        results.append(p.data.copy())
    np.testing.assert_array_equal(results[0], start - 0.1 * grad)
    np.testing.assert_array_equal(results[1], results[0])


def test_a_replaced_activation_kernel_is_not_fused_with_the_bias(route, rng):
    """An Activation whose kernel a user replaced (a subclass of a stock kernel with its
    own forward) runs that kernel in the planned stack, not the fused bias + ReLU."""
    route("compiled")

    class ReLU6(wxb.ops.ReLU):
        def forward(self, z, out):
            return np.clip(z, 0, 6, out=out)

    X = (rng.standard_normal((9, 4)) * 10).astype(np.float32)
    act = nn.ReLU()
    act.kernel = ReLU6()
    model = nn.Sequential(nn.Dense(4, 5, seed=1), act, nn.Dense(5, 3, seed=2))
    assert model.why_not_planned() is None
    with wxb.no_grad():
        planned = model(X).data
    hidden = np.clip(X @ model[0].weight.data.T + model[0].bias.data, 0, 6)
    expected = hidden @ model[2].weight.data.T + model[2].bias.data
    np.testing.assert_allclose(planned, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.one_route
def test_threads_that_load_the_kernels_at_once_all_take_the_route_chosen():
    """The first kernel calls come from several threads at once (a fresh process, fits
    in threads): every call takes the route the process chose (a thread arriving while
    numba was importing took the NumPy kernels, and its fit drifted in the 7th digit)."""
    done = run_python(
        """
        import threading, numpy as np
        from wxb import kernels
        used, start = [], threading.Barrier(4)
        original = kernels._impl
        def spy(*arrays):
            module = original(*arrays)
            used.append(module.__name__)
            return module
        kernels._impl = spy
        def call():
            start.wait()
            for _ in range(50):
                z = np.ones((4, 3))
                kernels.activation_forward(kernels.TANH, z, np.empty_like(z))
        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads: t.start()
        for t in threads: t.join()
        print(sorted(set(used)), kernels.route().split()[0])
        """
    )
    assert done.returncode == 0, done.stderr
    modules, route = done.stdout.rsplit(" ", 1)
    expected = "wxb.kernels.compiled" if route.strip() == "compiled" else "wxb.kernels.reference"
    assert modules == str([expected]), done.stdout


def test_arrays_of_other_shapes_never_reach_the_loops(route, rng):
    """The compiled loops check no bounds: an output of another shape goes to NumPy,
    which raises, instead of being written past its end."""
    route("compiled")
    z = rng.standard_normal((8, 5))
    small = np.empty((8, 3))
    calls = [
        lambda: kernels.activation_forward(kernels.RELU, z, small),
        lambda: kernels.activation_backward(kernels.TANH, z, np.tanh(z), z.copy(), small),
        lambda: kernels.bias_activation(kernels.RELU, z.copy(), np.zeros(5), small),
        lambda: kernels.cross_entropy_indices(z, rng.integers(0, 5, 8), small, 1.0),
        lambda: kernels.cross_entropy_indices(z, rng.integers(0, 5, 3), np.empty_like(z), 1.0),
        lambda: kernels.cross_entropy_indices(z, np.full(8, 7), np.empty_like(z), 1.0),
        lambda: kernels.row_uniform(np.arange(2), 1, np.empty((8, 4))),
    ]
    w, short = rng.standard_normal(100), rng.standard_normal(10)
    scratch = np.empty(100)
    calls += [
        lambda: kernels.sgd(w, short, None, scratch, scratch, lr=0.1, momentum=0.0,
                            dampening=0.0, nesterov=False, weight_decay=0.0, first=True),
        lambda: kernels.sgd(w, w.copy(), short, scratch, scratch, lr=0.1, momentum=0.9,
                            dampening=0.0, nesterov=False, weight_decay=0.0, first=False),
        lambda: kernels.adam(w, w.copy(), short, w.copy(), scratch, scratch, t=1, lr=0.1,
                             beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                             decoupled=False),
    ]  # fmt: skip
    for call in calls:
        with pytest.raises((ValueError, IndexError)):
            call()
