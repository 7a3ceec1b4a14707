"""Large element-wise kernel calls split across threads (wxb.kernels.threads): the same
bits as one call, through every optimiser's update, the activations and a whole fit;
safe across fork(), under the user's own threads, with errors, and switched off."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import wxb
from wxb import kernels, nn
from wxb.errors import ConfigError

compiled = pytest.mark.skipif(
    not kernels.one_pass(), reason="the split is the compiled route's (numba is off here)"
)


@pytest.fixture
def split(monkeypatch):
    """Restores the split's settings after a test that forces them (through threads())."""
    monkeypatch.setattr(kernels, "_split_threads", kernels._split_threads)
    monkeypatch.setattr(kernels, "_split_bytes", kernels._split_bytes)
    calls = []
    original = kernels._split

    def counted(call, size, pieces, step=kernels._ALIGN):
        calls.append(pieces)
        return original(call, size, pieces, step)

    monkeypatch.setattr(kernels, "_split", counted)
    return calls


def _size(rng) -> int:
    """Around and above a forced threshold of 2 × 4096 elements (the cuts' multiple)."""
    return int(rng.choice([2 * 4096, 2 * 4096 + 1, 3 * 4096 - 1, 5 * 4096 + 7, 40_000]))


_STEP = dict(lr=0.01, weight_decay=0.05)


def _optimiser_calls(rng):
    t = int(rng.integers(1, 12))
    b = dict(beta1=0.9, beta2=0.999, eps=1e-8)
    yield "adam", 4, lambda a, e: kernels.adam(*a, e, e, t=t, **b, **_STEP, decoupled=False)
    yield "adamw", 4, lambda a, e: kernels.adam(*a, e, e, t=t, **b, **_STEP, decoupled=True)
    yield (
        "nadam", 4,
        lambda a, e: kernels.nadam(
            *a, e, e, t=t, mu=0.95, mu_next=0.951, product=0.95**t, **b, **_STEP,
            decoupled=False,
        ),
    )  # fmt: skip
    yield "radam", 4, lambda a, e: kernels.radam(*a, e, e, t=t, **b, **_STEP, decoupled=False)
    yield (
        "radam rectified", 4,
        lambda a, e: kernels.radam(*a, e, e, t=t + 10, **b, **_STEP, decoupled=True),
    )  # fmt: skip
    yield "adamax", 4, lambda a, e: kernels.adamax(*a, e, e, t=t, **b, **_STEP)
    yield "adadelta", 4, lambda a, e: kernels.adadelta(*a, e, e, rho=0.9, eps=1e-6, **_STEP)
    for momentum, nesterov, first in ((0.9, False, False), (0.9, True, False), (0.9, False, True)):
        yield (
            f"sgd momentum nesterov={nesterov} first={first}", 3,
            lambda a, e, m=momentum, n=nesterov, f=first: kernels.sgd(
                *a, e, e, momentum=m, dampening=0.1, nesterov=n, first=f, **_STEP
            ),
        )  # fmt: skip
    yield (
        "sgd without momentum", 2,
        lambda a, e: kernels.sgd(
            *a, None, e, e, momentum=0.0, dampening=0.0, nesterov=False, first=False, **_STEP
        ),
    )  # fmt: skip
    yield (
        "sklearn_sgd", 3,
        lambda a, e: kernels.sklearn_sgd(
            *a, e, e, lr=0.01, momentum=0.9, nesterov=True, l2=1e-4, l2_count=32.0
        ),
    )  # fmt: skip
    yield (
        "sklearn_adam", 4,
        lambda a, e: kernels.sklearn_adam(
            *a, e, e, t=t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, l2=1e-4,
            weight_decay=0.01, l2_count=32.0,
        ),
    )  # fmt: skip


@compiled
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_optimiser_update_split_is_bit_identical_to_one_call(split, seeded, dtype):
    rng = seeded.rng
    for name, count, update in _optimiser_calls(rng):
        n = _size(rng)
        start = [rng.standard_normal(n).astype(dtype) for _ in range(count)]
        for state in start[2:]:  # second moments and squares are ≥ 0
            np.abs(state, out=state)
        results = []
        for pieces in (1, int(rng.integers(2, 5))):
            kernels.threads(pieces, split_from=4096)
            arrays = [a.copy() for a in start]
            update(arrays, arrays[0][:0])
            results.append(arrays)
        assert split, seeded.msg(f"{name}: no call was split")
        for one, many in zip(*results, strict=True):
            assert np.array_equal(one, many, equal_nan=True), seeded.msg(f"{name} n={n} {dtype}")
        split.clear()


@compiled
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_split_are_bit_identical_to_one_call(split, seeded, dtype):
    rng = seeded.rng
    for code in (kernels.IDENTITY, kernels.RELU, kernels.LEAKY_RELU, kernels.SIGMOID, kernels.TANH):
        rows, cols = int(rng.integers(2, 60)), int(rng.integers(300, 900))
        z0 = (rng.standard_normal((rows, cols)) * 3).astype(dtype)
        bias = rng.standard_normal(cols).astype(dtype)
        grad = rng.standard_normal((rows, cols)).astype(dtype)
        results = []
        for pieces in (1, int(rng.integers(2, 5))):
            kernels.threads(pieces, split_from=4096)
            z, a = z0.copy(), np.empty_like(z0)
            kernels.bias_activation(code, z, bias, a, 0.01)
            a2 = kernels.activation_forward(code, z, np.empty_like(z), 0.01)
            d = kernels.activation_backward(code, z, a, grad, np.empty_like(z), 0.01)
            z3, a3, d3 = z0.copy(), np.empty_like(z0), np.empty_like(z0)  # the planned stack's
            kernels.prepared_bias_activation(code, z3, bias, a3, 0.01)()
            kernels.prepared_activation_backward(code, z3, a3, grad, d3, 0.01)()
            results.append((z, a, a2, d, z3, a3, d3))
        if z0.size >= 2 * 4096:
            assert split, seeded.msg(f"activation {code}: no call was split")
        split.clear()
        for one, many in zip(*results, strict=True):
            assert np.array_equal(one, many, equal_nan=True), seeded.msg(f"code {code} {dtype}")


def _fit_weights(seed: int, optimizer: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((96, 40)).astype(np.float32)
    y = rng.integers(0, 5, 96)
    model = nn.Sequential(
        nn.Dense(40, 300, seed=seed), nn.ReLU(), nn.Dense(300, 60, seed=seed + 1), nn.Tanh(),
        nn.Dense(60, 5, seed=seed + 2),
    )  # fmt: skip
    wxb.fit(model, X, y, optimizer=optimizer, epochs=2, batch_size=48, seed=seed, verbose=False)
    return np.concatenate([p.data.ravel() for p in model.parameters()])


@compiled
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "nadam", "adadelta"])
def test_fit_gives_the_same_weights_with_the_split_on_and_off(split, seeded, optimizer):
    seed = int(seeded.rng.integers(1 << 30))
    kernels.threads(1, split_from=4096)
    off = _fit_weights(seed, optimizer)
    assert not split
    kernels.threads(int(seeded.rng.integers(2, 5)))
    on = _fit_weights(seed, optimizer)
    assert split, seeded.msg("nothing was split in the fit")
    assert np.array_equal(off, on), seeded.msg(f"{optimizer}: weights differ")


def test_the_numpy_route_is_one_call(split, seeded):
    rng = seeded.rng
    arrays = [rng.standard_normal(40_000) for _ in range(4)]
    np.abs(arrays[3], out=arrays[3])
    kernels.threads(3, split_from=4096)
    scratch = [np.empty(40_000), np.empty(40_000)]
    previous = kernels.route()
    kernels.use("numpy")
    try:
        kernels.adam(*arrays, *scratch, t=2, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8,
                     weight_decay=0.0, decoupled=False)  # fmt: skip
    finally:
        kernels.use("auto" if previous.startswith("compiled") else "numpy")
    assert not split


def test_an_error_in_a_piece_reaches_the_caller_after_every_piece_ended(split):
    kernels.threads(3)
    ended = []
    lock = threading.Lock()

    def call(lo, hi):
        if lo == 0:  # the caller's own piece fails at once; the others take a while
            raise FloatingPointError("piece 0")
        if lo > 4096:
            threading.Event().wait(0.2)
            with lock:
                ended.append(lo)
            raise ValueError(f"piece at {lo}")
        threading.Event().wait(0.2)
        with lock:
            ended.append(lo)

    with pytest.raises(FloatingPointError, match="piece 0"):
        kernels._split(call, 3 * 4096, 3)
    assert len(ended) == 2  # it waited for both other pieces

    def late(lo, hi):
        if lo:
            raise ValueError(f"piece at {lo}")

    with pytest.raises(ValueError, match="piece at"):
        kernels._split(late, 3 * 4096, 3)


def test_the_count_follows_the_switch_the_blas_and_the_cores(monkeypatch, split):
    monkeypatch.setattr(kernels, "_split_threads", None)
    monkeypatch.setenv("WXB_KERNEL_THREADS", "1")
    assert kernels.threads() == 1
    monkeypatch.setattr(kernels, "_split_threads", None)
    monkeypatch.setenv("WXB_KERNEL_THREADS", "3")
    assert kernels.threads() == 3
    monkeypatch.setenv("WXB_KERNEL_THREADS", "auto")
    monkeypatch.setattr(kernels, "_blas_threads", lambda: 1)  # a BLAS held to one thread
    monkeypatch.setattr(kernels, "_split_threads", None)
    assert kernels.threads() == 1
    monkeypatch.setattr(kernels, "_blas_threads", lambda: 4)
    if hasattr(os, "sched_getaffinity"):  # a process allowed one core
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
        monkeypatch.setattr(kernels, "_split_threads", None)
        assert kernels.threads() == 1
    monkeypatch.setattr(kernels, "_split_threads", None)
    monkeypatch.setenv("WXB_KERNEL_THREADS", "many")
    with pytest.raises(ConfigError, match="WXB_KERNEL_THREADS"):
        kernels.threads()
    with pytest.raises(ConfigError, match="at least 1"):
        kernels.threads(0)
    monkeypatch.setattr(kernels, "_split_threads", 1)
    kernels.adam(*[np.ones(40_000) for _ in range(4)], None, None, t=1, lr=0.1, beta1=0.9,
                 beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False)  # fmt: skip
    assert not split  # one thread: nothing is split


def _update_in_threads(seed: int, pieces: int) -> list:
    kernels.threads(pieces, split_from=4096)
    rng = np.random.default_rng(seed)
    arrays = [np.abs(rng.standard_normal(30_000)).astype(np.float32) for _ in range(4)]
    z = rng.standard_normal((30, 1000)).astype(np.float32)
    kernels.adam(*arrays, None, None, t=3, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8,
                 weight_decay=0.0, decoupled=False)  # fmt: skip
    a = kernels.activation_forward(kernels.TANH, z, np.empty_like(z))
    return [*arrays, a]


def _child(seed, pieces, queue):
    queue.put(_update_in_threads(seed, pieces))


@compiled
@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX's")
def test_a_forked_child_splits_after_its_parent_did(split, seeded):
    """The child inherits the idle pool without its threads: work handed to it would
    wait for ever unless the child makes its own."""
    import multiprocessing

    seed = int(seeded.rng.integers(1 << 30))
    expected = _update_in_threads(seed, 1)
    _update_in_threads(seed, 2)  # the parent's pool exists, idle, now
    assert split
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child, args=(seed, 2, queue))
    child.start()
    try:
        got = queue.get(timeout=60)  # well under a second of work: a hang ends here
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
    for a, b in zip(expected, got, strict=True):
        assert np.array_equal(a, b), seeded.msg("the child's split differs")


@compiled
def test_the_users_threads_calling_at_once_get_their_own_results(split, seeded):
    seeds = [int(s) for s in seeded.rng.integers(1 << 30, size=6)]
    expected = [_update_in_threads(s, 1) for s in seeds]
    kernels.threads(3, split_from=4096)
    got: dict[int, list] = {}
    errors = []

    def work(k):
        try:
            for _ in range(3):
                got[k] = _update_in_threads(seeds[k], 3)
        except Exception as error:  # reported below
            errors.append(error)

    workers = [threading.Thread(target=work, args=(k,)) for k in range(len(seeds))]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert not errors and len(got) == len(seeds)
    for k, want in enumerate(expected):
        for a, b in zip(want, got[k], strict=True):
            assert np.array_equal(a, b), seeded.msg(f"thread {k}'s results differ")


@compiled
def test_the_interpreter_exits_after_a_split():
    code = (
        "import numpy as np\n"
        "from wxb import kernels\n"
        "kernels.threads(2, split_from=4096)\n"
        "z = np.ones((40, 1000), np.float32)\n"
        "kernels.activation_forward(kernels.TANH, z, np.empty_like(z))\n"
        "print('done')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr
