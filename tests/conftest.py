"""Fresh random draws on every run, with the seed printed so a failure can be replayed."""

import os
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import pytest


class Seeded:
    """A generator built from a fresh seed, and the message that replays it.

    ``WXB_TEST_SEED=<seed>`` replays a run.
    """

    def __init__(self) -> None:
        replay = os.environ.get("WXB_TEST_SEED")
        self.seed = int(replay) if replay else np.random.SeedSequence().entropy
        self.rng = np.random.default_rng(self.seed)

    @property
    def wxb_seed(self) -> int:
        """The seed of wxb's default generator in this test: drawn from the test's seed,
        apart from ``rng``'s stream."""
        return int(np.random.SeedSequence(self.seed).spawn(1)[0].generate_state(1, np.uint64)[0])

    @property
    def torch_seed(self) -> int:
        """The seed of torch's global generator in this test: drawn from the test's seed,
        apart from ``rng``'s and wxb's streams."""
        child = np.random.SeedSequence(self.seed, spawn_key=(1,))
        return int(child.generate_state(1, np.uint64)[0])

    def msg(self, what: str) -> str:
        return f"{what} (seed {self.seed}; replay with WXB_TEST_SEED={self.seed})"


@pytest.fixture
def seeded() -> Seeded:
    """The test's seed; wxb's default generator (a layer built without ``seed=``, a
    Dropout's masks) reseeded from it, so WXB_TEST_SEED replays those draws too, which
    otherwise hung on the tests run before (a ``wxb.manual_seed(5)`` there fixed them);
    so is torch's global generator, where torch is loaded (not imported here for tests
    that do not use it)."""
    import wxb

    s = Seeded()
    wxb.manual_seed(s.wxb_seed)
    # torch's too, where the suite has loaded it (a test's torch.randn, a twin's init):
    # else WXB_TEST_SEED replayed the NumPy draws beside other torch ones
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(s.torch_seed)
    print(f"random seed: {s.seed}")
    return s


@pytest.fixture
def rng(seeded: Seeded) -> np.random.Generator:
    return seeded.rng


@pytest.fixture
def torch_default_dtype():
    """torch's default dtype float64 for the test: torch keeps NAdam's μ product and the
    step counts in it, float32 unless told, a rounding of its own in a float64 run."""
    import torch

    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """PyTorch (the reference twin) on one thread wherever a test has loaded it. Its
    tensors here are tiny: a second intra-op thread only adds hand-offs, and on CI's two
    cores, shared by the suite's two passes, a tiny model's forward and backward took
    ~70x the CPU time with two threads than with one (20 ms, not 0.27 ms). One thread
    computes the same figures (to rounding, which every comparison allows)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


# CI (.ci/run) sets WXB_ALSO_NUMPY_ROUTE=1: the same suite then also runs with the compiled
# kernels off (WXB_KERNELS=numpy, an install without numba), in a child started beside
# this session rather than after it, so that CI's two cores share the two passes; this
# session waits for it at its end, shows its summary, and fails when it fails. The tests
# marked one_route check processes and scripts whose behaviour the kernels do not decide
# (signals, exit, a benchmark's output, the browser): each runs in one of the two passes
# only, half in each (by a hash of its id), so that the passes take about as long.
_BESIDE = "WXB_ALSO_NUMPY_ROUTE"
_HALF = "WXB_ONE_ROUTE_HALF"  # the child's share of the one_route tests
_child_key = pytest.StashKey[tuple]()
_one_route_half: list[int] = []  # this pass's share, when it is one of CI's two


def pytest_sessionstart(session: pytest.Session) -> None:
    half = os.environ.pop(_HALF, None)  # (taken from the environment: a pytest a test
    if half is not None:  # runs is not a pass of the pair)
        _one_route_half.append(int(half))
    if os.environ.get(_BESIDE) != "1":
        return
    # taken from this session's environment too: a test that runs pytest again (the seed
    # replays) must not start a pass of its own beside it
    del os.environ[_BESIDE]
    _one_route_half.append(0)
    env = {**os.environ, "WXB_KERNELS": "numpy", _HALF: "1"}  # the child runs the suite once
    log = tempfile.NamedTemporaryFile(prefix="wxb-numpy-route-", suffix=".log", delete=False)
    base = tempfile.mkdtemp(prefix="wxb-numpy-route-")  # tmp_path of its own
    params = session.config.invocation_params
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               f"--basetemp={base}", *params.args]  # fmt: skip
    child = subprocess.Popen(command, cwd=params.dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    session.config.stash[_child_key] = (child, log.name)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In one of CI's two passes: the one_route tests of the other pass's half deselected."""
    if not _one_route_half:
        return
    half = _one_route_half[0]
    theirs = [
        item
        for item in items
        if item.get_closest_marker("one_route") and zlib.crc32(item.nodeid.encode()) % 2 != half
    ]
    if theirs:
        config.hook.pytest_deselected(items=theirs)
        gone = set(map(id, theirs))
        items[:] = [item for item in items if id(item) not in gone]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    beside = session.config.stash.get(_child_key, None)
    if beside is None:
        return
    child, log = beside
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        child.kill()
    code = child.wait()
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:  # every test chosen was this pass's one_route
        code = pytest.ExitCode.OK
    with open(log, encoding="utf-8", errors="replace") as file:
        lines = file.read().splitlines()
    os.unlink(log)
    session.config.stash[_report_key] = (code, lines)
    if code and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_report_key = pytest.StashKey[tuple]()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """The child's report, before this session's last line: in full when it failed."""
    report = config.stash.get(_report_key, None)
    if report is None:
        return
    code, lines = report
    title = f"the suite with WXB_KERNELS=numpy, run beside: {'FAILED, exit ' if code else ''}"
    terminalreporter.write_sep("=", title + (str(code) if code else "passed"), red=bool(code))
    for line in lines if code else lines[-1:]:
        terminalreporter.write_line(line)
