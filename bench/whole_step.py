"""Issue 12's question: would one compiled call for the planned step's arithmetic pay?

Times, per step, with one BLAS thread and ``time.process_time`` (the machine is shared),
rounds alternating between contenders, medians over the rounds:

- ``step``: ``wxb.make_step`` as ``fit`` runs it (the lean stack, the loss kernel, the
  optimiser's ``step``);
- ``fused+opt``: the design that could land without changing anything a user sees:
  forward, loss and backward in ONE numba call (products through NumPy's own OpenBLAS
  ``cblas_sgemm``/``sgemv``, bound by name, the element-wise work through wxb's compiled
  loops, so the same bits), then the step's own checks, ``p.grad`` and
  ``optimizer.step()`` as now (its bookkeeping: counts, schedules, state, versions);
- ``fused+loops``: the fused call, then the update's compiled loops called straight
  from Python, one per parameter: the optimiser's arithmetic without its bookkeeping;
- ``fused all``: the upper bound: the update in the same call too, with none of the
  optimiser's bookkeeping nor the step's checks (what the prototype timed; not a design
  that could land as is: the optimiser's counts, versions and schedules are not kept);
- ``floor``: bench/_workloads.blas_floor, the step's products alone.

Also the compile time of the fused call, first use and from numba's on-disk cache.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/whole_step.py
"""

from __future__ import annotations

import argparse
import ctypes
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numba
import numpy as np
import threadpoolctl
from _workloads import CONFIGS, blas_floor, wxb_model, wxb_optimizer

import wxb
from wxb import nn, ops
from wxb.kernels import compiled

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112


def numpy_blas() -> tuple[dict, str, str, bool] | None:
    """(threadpoolctl's record, the sgemm and sgemv symbols, whether they take 64-bit
    integers) of the OpenBLAS NumPy itself loaded, its sgemm checked once against
    np.matmul through ctypes; None if anything is off (another BLAS, a symbol missing,
    a different product)."""
    found = [
        info
        for info in threadpoolctl.threadpool_info()
        if info.get("internal_api") == "openblas" and "numpy" in info.get("filepath", "")
    ]
    if len(found) != 1:
        return None
    info = found[0]
    lib = ctypes.CDLL(info["filepath"])  # the same file: dlopen gives NumPy's own copy
    prefix = "scipy_" if info.get("prefix", "").startswith("libscipy") else ""
    for suffix in ("64_", ""):  # 64_: the ILP64 build, 64-bit integer arguments
        gemm, gemv = f"{prefix}cblas_sgemm{suffix}", f"{prefix}cblas_sgemv{suffix}"
        if hasattr(lib, gemm) and hasattr(lib, gemv):
            break
    else:
        return None
    wide = suffix == "64_"
    c, f, p = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
    i = ctypes.c_int64 if wide else ctypes.c_int
    sgemm = getattr(lib, gemm)
    sgemm.argtypes, sgemm.restype = (c, c, c, i, i, i, f, p, i, p, i, f, p, i), None
    rng = np.random.default_rng()
    a, b = rng.standard_normal((5, 7), np.float32), rng.standard_normal((3, 7), np.float32)
    out = np.empty((5, 3), np.float32)
    sgemm(ROW_MAJOR, NO_TRANS, TRANS, 5, 3, 7, 1.0, a.ctypes.data, 7, b.ctypes.data, 7, 0.0,
          out.ctypes.data, 3)  # fmt: skip
    if not np.array_equal(out, np.matmul(a, b.T)):
        return None
    return info, gemm, gemv, wide


def _externals(blas: tuple) -> tuple:
    """sgemm and sgemv as numba externals, bound by symbol name in the library NumPy
    loaded (a ctypes pointer would keep numba from caching the fused call)."""
    from llvmlite import binding
    from numba import types

    info, gemm, gemv, wide = blas
    binding.load_library_permanently(info["filepath"])
    # LLVM binds a name to the first library exporting it: another scipy-openblas (SciPy's
    # wheels bundle one exporting scipy_cblas_sgemm, an LP64 NumPy's name) must not answer
    lib = ctypes.CDLL(info["filepath"])
    for name in (gemm, gemv):
        if (
            binding.address_of_symbol(name)
            != ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
        ):
            sys.exit(f"{name} resolves to another library than NumPy's {info['filepath']}")
    c, f, p = types.int32, types.float32, types.voidptr
    i = types.int64 if wide else types.int32
    sgemm = types.ExternalFunction(gemm, types.void(c, c, c, i, i, i, f, p, i, p, i, f, p, i))
    sgemv = types.ExternalFunction(gemv, types.void(c, c, i, i, f, p, i, p, i, f, p, i))
    return sgemm, sgemv


BLAS = numpy_blas()
if BLAS is not None:
    sgemm, sgemv = _externals(BLAS)
bias_relu = compiled.bias_activation
relu_back = compiled.activation_backward
cross_entropy = compiled.cross_entropy_indices
RELU = 1
zero, one = np.float32(0), np.float32(1)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def forward_backward(X, y, Ws, bs, Zs, GWs, Gbs, Gs, ones, scale):
    """Forward, loss and backward of a stack of Dense layers with ReLU between them and
    softmax cross-entropy, float32, any depth: the products as np.matmul calls them, the
    rest through wxb's compiled loops (so the same bits as the step); ∂L/∂W, ∂L/∂b into
    GWs, Gbs. Zs: each layer's Z, then each ReLU's A; Gs: each δ, then each ∂L/∂A."""
    depth = len(Ws)
    rows = X.shape[0]
    x = X
    for k in range(depth):
        W, Z = Ws[k], Zs[k]
        m, n = W.shape
        sgemm(ROW_MAJOR, NO_TRANS, TRANS, rows, m, n, one, x.ctypes.data, n,
              W.ctypes.data, n, zero, Z.ctypes.data, m)  # fmt: skip
        if k < depth - 1:  # Z ← Z + b, A = f(Z) into the next layer's input
            bias_relu(RELU, zero, one, one, Z, bs[k], Zs[depth + k])
            x = Zs[depth + k]
        else:
            Z += bs[k]
    last = Zs[depth - 1]
    value = scale * cross_entropy(last, y, Gs[depth - 1], scale)
    for k in range(depth - 1, -1, -1):
        W, delta = Ws[k], Gs[k]
        m, n = W.shape
        x = X if k == 0 else Zs[depth + k - 1]
        sgemm(ROW_MAJOR, TRANS, NO_TRANS, m, n, rows, one, delta.ctypes.data, m,
              x.ctypes.data, n, zero, GWs[k].ctypes.data, n)  # fmt: skip
        sgemv(ROW_MAJOR, TRANS, rows, m, one, delta.ctypes.data, m, ones.ctypes.data,
              1, zero, Gbs[k].ctypes.data, 1)  # fmt: skip
        if k > 0:
            back = Gs[depth + k - 1]  # ∂L/∂A, then δ = ∂L/∂A ⊙ f′(Z) in place
            sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, rows, n, m, one, delta.ctypes.data, m,
                  W.ctypes.data, n, zero, back.ctypes.data, n)  # fmt: skip
            a = Zs[depth + k - 1]
            relu_back(RELU, zero, one, one, a.ravel(), a.ravel(), back.ravel(),
                      Gs[k - 1].ravel())  # fmt: skip
    return value


@numba.njit(inline="always")
def update(data, grad, m, v, rule, t, lr):
    if rule == 0:
        compiled.sgd(data, grad, grad, grad, grad, zero, lr, zero, one, False, True)
    else:  # (the scalars as wxb's Adam makes them, near enough for a timing)
        root = np.float32(math.sqrt(1 - 0.999**t))
        step = lr / (one - np.float32(0.9) ** t) * root
        eps = np.float32(1e-8) * root
        b1, b2 = np.float32(0.9), np.float32(0.999)
        scalars = (one, zero, one - b1, b1, b2, one - b2, eps, step)
        compiled.adam(data, grad, m, v, grad, grad, *scalars)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def whole(X, y, Ws, bs, Zs, GWs, Gbs, Gs, ones, scale, mW, vW, mb, vb, rule, t, lr):
    value = forward_backward(X, y, Ws, bs, Zs, GWs, Gbs, Gs, ones, scale)
    for k in range(len(Ws)):
        update(Ws[k].ravel(), GWs[k].ravel(), mW[k].ravel(), vW[k].ravel(), rule, t, lr)
        update(bs[k], Gbs[k], mb[k], vb[k], rule, t, lr)
    return value


class Fused:
    """The fused call's operands for one wxb step's model and batch size."""

    def __init__(self, step: object, X: np.ndarray) -> None:
        dense = [m for m in step.model if isinstance(m, nn.Dense)]
        rows, self.step = len(X), step
        self.params = step.optimizer.params
        self.views = step.optimizer.grad_buffers()  # ∂L/∂W, ∂L/∂b where the update reads them
        index = {id(p): k for k, p in enumerate(self.params)}
        self.Ws = tuple(d.weight.data for d in dense)
        self.bs = tuple(d.bias.data for d in dense)
        zs = [np.empty((rows, d.out_features), np.float32) for d in dense]
        acts = [np.empty((rows, d.out_features), np.float32) for d in dense]
        self.Zs = tuple(zs + acts)
        self.GWs = tuple(self.views[index[id(d.weight)]] for d in dense)
        self.Gbs = tuple(self.views[index[id(d.bias)]] for d in dense)
        self.Gs = tuple(np.empty((rows, d.out_features), np.float32) for d in dense * 2)
        self.ones = np.ones(rows, np.float32)
        self.scale = np.float32(1 / rows)
        self.moments = tuple(
            tuple(map(np.zeros_like, arrays)) for arrays in (self.Ws, self.Ws, self.bs, self.bs)
        )
        self.t = 0

    def operands(self, X: np.ndarray, y: np.ndarray) -> tuple:
        return (X, y, self.Ws, self.bs, self.Zs, self.GWs, self.Gbs, self.Gs, self.ones,
                self.scale)  # fmt: skip


def fused_then_optimizer(step: object, fused: Fused, kernel: Callable) -> Callable:
    """The landable design: the step's checks as now, one call for the arithmetic, then
    ``p.grad`` set and ``optimizer.step()`` as the lean stack's backward leaves them."""
    home = step.optimizer.flat

    def run(X: np.ndarray, y: np.ndarray) -> float:
        if not step._as_planned():
            step._follow_model()
        step.plan.lean_for(X)  # the checks the lean path makes (current())
        y = ops.loss_target(y, fused.Zs[len(fused.Ws) - 1], step.loss.kernel)
        step.optimizer.zero_grad()
        home.ensure_free()  # (nothing here keeps a gradient: the views stay the buffer's)
        value = kernel(*fused.operands(X, y))
        for p, view in zip(fused.params, fused.views, strict=True):
            p.grad = view
        return step._update(value, None, y)

    return run


def fused_all(fused: Fused, kernel: Callable, rule: int, lr: float) -> Callable:
    lr32 = np.float32(lr)

    def run(X: np.ndarray, y: np.ndarray) -> float:
        fused.t += 1
        return kernel(*fused.operands(X, y), *fused.moments, rule, np.float32(fused.t), lr32)

    return run


def fused_loops(fused: Fused, rule: int, lr: float) -> Callable:
    """The fused call, then the update's loops called straight from Python, one per
    parameter: the optimiser's arithmetic without its bookkeeping, in calls of their own."""
    lr32 = np.float32(lr)
    pieces = [
        tuple(a.ravel() for a in arrays)
        for k in range(len(fused.Ws))
        for arrays in (
            (fused.Ws[k], fused.GWs[k], fused.moments[0][k], fused.moments[1][k]),
            (fused.bs[k], fused.Gbs[k], fused.moments[2][k], fused.moments[3][k]),
        )
    ]

    def run(X: np.ndarray, y: np.ndarray) -> float:
        fused.t += 1
        value = forward_backward(*fused.operands(X, y))
        t = np.float32(fused.t)
        for data, grad, m, v in pieces:
            update(data, grad, m, v, rule, t, lr32)
        return value

    return run


def per_step(fn: Callable[[], object], calls: int) -> float:
    """Median process time of one call over ``calls`` (µs), in batches of 10."""
    times = []
    for _ in range(max(1, calls // 10)):
        start = time.process_time()
        for _ in range(10):
            fn()
        times.append((time.process_time() - start) / 10)
    return statistics.median(times) * 1e6


def first_call_seconds(fused: bool, cache_dir: str) -> float:
    """Seconds from a fresh process's start of work to its first tiny step, with the
    fused call made and run too or not, numba's cache in ``cache_dir`` (wxb's loops'
    too: an empty folder is a first run)."""
    here = str(Path(__file__).parent)
    code = (
        "import time; start = time.perf_counter(); import sys; "
        f"sys.path.insert(0, {here!r}); import whole_step as w; w.first_call({fused!r}); "
        "print(time.perf_counter() - start)"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return float(out.stdout.split()[-1])


def first_call(fused: bool) -> None:
    config = CONFIGS["tiny"]
    X = np.zeros((config.batch, config.dims[0]), np.float32)
    y = np.zeros(config.batch, np.int64)
    model = wxb_model(config.dims)
    step = wxb.make_step(model, nn.CrossEntropyLoss(), wxb_optimizer("SGD", model.parameters()))
    step(X, y)
    if fused:
        forward_backward(*Fused(step, X).operands(X, y))


def compile_costs(repeats: int) -> None:
    """The fused call's cost at first use (every numba cache empty, wxb's loops compile
    in both) and later (from the cache), alternating with and without it."""
    times: dict[tuple[str, bool], list[float]] = {}
    with tempfile.TemporaryDirectory() as warm:
        first_call_seconds(True, warm)  # fills the cache
        for _ in range(repeats):
            for fused in (False, True):
                with tempfile.TemporaryDirectory() as empty:
                    times.setdefault(("first", fused), []).append(first_call_seconds(fused, empty))
                times.setdefault(("later", fused), []).append(first_call_seconds(fused, warm))
    for when in ("first", "later"):
        plain = statistics.median(times[when, False])
        fused = statistics.median(times[when, True])
        print(
            f"{when} run, a fresh process to its first tiny step: {plain:.2f} s, with the "
            f"fused call {fused:.2f} s (+{fused - plain:.2f} s; medians of {repeats})"
        )


PARTS = ("checks", "forward", "loss target", "loss", "zero_grad", "backward", "update")


def breakdown(config_name: str, optimizer: str, steps: int) -> dict[str, float]:
    """Median process time (µs) of each part of PlannedStep's lean path, as _lean_step
    runs them, timed inside real steps."""
    config = CONFIGS[config_name]
    rng = np.random.default_rng()
    X = rng.standard_normal((config.batch, config.dims[0]), np.float32)
    y = rng.integers(0, config.dims[-1], config.batch)
    model = wxb_model(config.dims)
    step = wxb.make_step(model, nn.CrossEntropyLoss(), wxb_optimizer(optimizer, model.parameters()))
    step(X, y)
    step(X, y)
    kernel, opt, clock = step.loss.kernel, step.optimizer, time.process_time_ns
    times = {part: [] for part in PARTS}
    for _ in range(steps):
        t0 = clock()
        assert step._as_planned()
        lean = step.plan.lean_for(X)
        t1 = clock()
        x = lean.forward(X)
        t2 = clock()
        target = ops.loss_target(y, x, kernel)
        t3 = clock()
        value = kernel.value_and_grad(x, target, lean.loss_grad)
        t4 = clock()
        opt.zero_grad()
        t5 = clock()
        lean.backward(X)
        t6 = clock()
        step._update(value, x, target)
        t7 = clock()
        for part, a, b in zip(
            PARTS, (t0, t1, t2, t3, t4, t5, t6), (t1, t2, t3, t4, t5, t6, t7), strict=True
        ):
            times[part].append((b - a) / 1e3)
    return {part: statistics.median(v) for part, v in times.items()}


def bare_kernels(config_name: str, calls: int) -> dict[str, float]:
    """Median process time (µs) of the compiled loops alone, called straight with their
    scalars: the SGD and Adam updates over every parameter, the loss over the batch."""
    config = CONFIGS[config_name]
    size = sum(m * n + m for n, m in config.layers)
    rng = np.random.default_rng()
    data, grad = rng.standard_normal(size, np.float32), rng.standard_normal(size, np.float32)
    m1, m2 = np.zeros_like(data), np.ones_like(data)
    z = rng.standard_normal((config.batch, config.dims[-1]), np.float32)
    y = rng.integers(0, config.dims[-1], config.batch)
    out = np.empty_like(z)
    f = np.float32
    sgd = (f(0), f(1e-9), f(0), f(1), False, True)
    adam = (f(1), f(0), f(0.1), f(0.9), f(0.999), f(0.001), f(1e-8), f(1e-9))
    return {
        "SGD update": per_step(lambda: compiled.sgd(data, grad, grad, grad, grad, *sgd), calls),
        "Adam update": per_step(
            lambda: compiled.adam(data, grad, m1, m2, grad, grad, *adam), calls
        ),
        "loss": per_step(lambda: compiled.cross_entropy_indices(z, y, out, f(0.1)), calls),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--configs", default="tiny,small")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per timing")
    args = parser.parse_args()
    found = numpy_blas()
    if found is None:
        sys.exit("NumPy's BLAS is not an OpenBLAS this script can call")
    info = found[0]
    print(f"BLAS: {info['filepath']} {info.get('version')} kernel {info.get('architecture')}")
    print(f"wxb kernels: {wxb.kernels.route()}")
    start = time.perf_counter()
    _externals(numpy_blas())
    print(f"the resolver: {(time.perf_counter() - start) * 1e3:.1f} ms")
    with threadpoolctl.threadpool_limits(1):
        for name in args.configs.split(","):
            for optimizer in ("SGD", "Adam"):
                parts = breakdown(name, optimizer, args.calls * 3)
                print(f"{name:5} {optimizer:4} parts µs: " + ", ".join(
                    f"{k} {v:.1f}" for k, v in parts.items()), flush=True)  # fmt: skip
            bare = bare_kernels(name, args.calls)
            print(
                f"{name:5} the loops alone µs: "
                + ", ".join(f"{k} {v:.1f}" for k, v in bare.items())
            )
        for name in args.configs.split(","):
            config = CONFIGS[name]
            rng = np.random.default_rng()
            X = rng.standard_normal((config.batch, config.dims[0]), np.float32)
            y = rng.integers(0, config.dims[-1], config.batch)
            for optimizer, rule in (("SGD", 0), ("Adam", 1)):
                contenders = {}
                made = []
                for _ in range(4):  # one model for each contender, the same start
                    model = wxb_model(config.dims)
                    opt = wxb_optimizer(optimizer, model.parameters())
                    made.append(wxb.make_step(model, nn.CrossEntropyLoss(), opt))
                for step in made:
                    step(X, y)
                    step(X, y)  # the lean stack built
                lr = made[0].optimizer.param_groups[0]["lr"]
                contenders["step"] = partial(made[0], X, y)
                run = fused_then_optimizer(made[1], Fused(made[1], X), forward_backward)
                contenders["fused+opt"] = partial(run, X, y)
                run_all = fused_all(Fused(made[2], X), whole, rule, lr)
                contenders["fused all"] = partial(run_all, X, y)
                run_loops = fused_loops(Fused(made[3], X), rule, lr)
                contenders["fused+loops"] = partial(run_loops, X, y)
                contenders["floor"] = blas_floor(config)
                # the same losses first: the contenders compute the same step
                check = [contenders[k]() for k in ("step", "fused+opt")]
                assert math.isclose(check[0], check[1], rel_tol=1e-6), check
                same = all(
                    np.array_equal(p.data, q.data)
                    for p, q in zip(made[0].optimizer.params, made[1].optimizer.params, strict=True)
                )
                print(f"{name} {optimizer}: fused+opt weights bit for bit as the step's: {same}")
                times = {k: [] for k in contenders}
                for _ in range(args.rounds):
                    for key, fn in contenders.items():
                        times[key].append(per_step(fn, args.calls))
                med = {k: statistics.median(v) for k, v in times.items()}
                print(
                    f"{name:5} {optimizer:4} µs, medians of {args.rounds} rounds: "
                    + ", ".join(
                        f"{k} {v:.1f} ({v / med['floor']:.2f}× floor)" for k, v in med.items()
                    )
                )
                for key in (
                    "fused+opt",
                    "fused+loops",
                    "fused all",
                ):  # each round's own ratio: steadier
                    gains = sorted(
                        a / b - 1 for a, b in zip(times["step"], times[key], strict=True)
                    )
                    print(
                        f"      gain of {key} over the step: "
                        f"median {statistics.median(gains):+.1%} "
                        f"(rounds {gains[0]:+.1%} … {gains[-1]:+.1%})",
                        flush=True,
                    )
    if args.repeats:
        compile_costs(args.repeats)


if __name__ == "__main__":
    main()
