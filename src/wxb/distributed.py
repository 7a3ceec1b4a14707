"""Data-parallel training over MPI: K ranks, one global batch of B rows split across them.

Each rank runs forward and backward on its share of the batch; the gradients are
summed across ranks in the flat gradient buffer (one ``Iallreduce`` per Dense layer,
started as soon as the backward pass has that layer's ∂L/∂W and ∂L/∂b, so the
reduction of the later layers overlaps the backward of the earlier ones); every rank
then applies the same update to the same weights. Ranks on one machine training the
planned step instead sum in shared memory (``SharedGradients``) and, when every
parameter group steps whole, keep one shared copy of the weights and the optimiser's
state, each rank updating its own slice. Because each rank's loss gradient is
scaled by its share of the batch (b_k / B), the sum is the gradient of the global
batch's mean loss: one process with batch B computes the same, to rounding.

Progress of a non-blocking collective happens only inside MPI calls: the backward pass
polls (``MPI_Testall``) after each layer, and every wait polls until a deadline, so a
rank that died or hangs stops the job within ``timeout`` seconds (``MPI_Abort``) rather
than leaving the others blocked.

mpi4py is imported only here, and only when a run is distributed (``pip install
mpi4py mpich``, wxb's 'mpi' extra, brings mpi4py and the MPICH library as wheels).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import weakref
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import pairwise
from typing import Any

import numpy as np

from wxb.errors import ConfigError, WxbError, install_hint

DEFAULT_TIMEOUT = 30.0  # seconds a rank waits on the others before it stops the job
# What mpiexec sets in each process it starts: MPICH/Intel MPI (PMI), Open MPI, PMIx.
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")


class RanksStopped(WxbError):
    """The other ranks did not answer in time, or disagree: the job cannot go on."""


class RanksFailed(WxbError):
    """A block run on every rank failed on one or more of them (``Ranks.together``):
    the same error on every rank, in one line. ``quiet`` on the ranks other than 0, so
    that a command says it once (rank 0's) and not once per rank."""

    def __init__(self, message: str, quiet: bool) -> None:
        super().__init__(message)
        self.quiet = quiet


def launched_ranks() -> int:
    """How many processes mpiexec started this job with (1 when not under mpiexec)."""
    for name in _SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def launched_rank() -> int:
    """This process's rank as mpiexec set it (0 when not under mpiexec)."""
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def timeout_from_environment() -> float:
    """WXB_MPI_TIMEOUT (seconds), else DEFAULT_TIMEOUT."""
    value = os.environ.get("WXB_MPI_TIMEOUT")
    if value is None:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ConfigError(f"WXB_MPI_TIMEOUT must be a number of seconds > 0; got {value!r}")
    return seconds


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ConfigError(
            "distributed training needs mpi4py and an MPI library: "
            f"{install_hint('mpi4py mpich', 'mpi')} ({exc})"
        ) from None
    return MPI


class Ranks:
    """The processes of one data-parallel run (MPI's COMM_WORLD by default)."""

    def __init__(self, comm: Any = None, timeout: float | None = None) -> None:
        self.MPI = _mpi()
        self.comm = comm if comm is not None else self.MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout = timeout_from_environment() if timeout is None else float(timeout)
        if not self.timeout > 0:
            raise ConfigError(f"the MPI timeout must be > 0 seconds; got {timeout!r}")
        self.where = "start"  # what the run is doing, for the timeout's message
        self.failed: BaseException | None = None  # this rank's own error in training
        self._pending: list[Any] = []

    @property
    def leader(self) -> bool:
        """Rank 0: the one that writes files and draws the progress bar."""
        return self.rank == 0

    # -- the batch -------------------------------------------------------------------------
    def share(self, n: int) -> slice:
        """This rank's rows of a batch of ``n``: contiguous, sizes differ by at most one."""
        return slice(n * self.rank // self.size, n * (self.rank + 1) // self.size)

    # -- waiting, with a deadline -------------------------------------------------------------
    def wait(self, requests: list[Any], what: str) -> None:
        """Poll until every request completes; past the deadline, stop the job."""
        MPI = self.MPI
        if not requests or MPI.Request.Testall(requests):
            return
        start = time.monotonic()
        pause = 0.0
        while not MPI.Request.Testall(requests):
            waited = time.monotonic() - start
            if waited > self.timeout:
                at = "" if self.where == "start" else f" at {self.where}"  # (not "at start")
                raise RanksStopped(
                    f"rank {self.rank} of {self.size}: no answer from the other ranks for "
                    f"{self.timeout:g} s during {what}{at} (a rank died or hangs; "
                    "mpiexec names it if it died)"
                )
            if waited > 0.05:  # a long wait: stop spinning a core
                pause = min(0.01, pause + 0.0005)
                time.sleep(pause)

    # -- collectives ----------------------------------------------------------------------------
    def sum_(self, array: np.ndarray, what: str = "a sum") -> np.ndarray:
        """Sum ``array`` over the ranks, in place."""
        self.wait([self.comm.Iallreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM)], what)
        return array

    def broadcast_(self, array: np.ndarray, what: str = "a broadcast") -> np.ndarray:
        """Rank 0's ``array`` on every rank, in place."""
        self.wait([self.comm.Ibcast(array, root=0)], what)
        return array

    def sum_numbers(self, *values: float, what: str = "a sum") -> list[float]:
        return [float(v) for v in self.sum_(np.array(values, np.float64), what)]

    def gather_numbers(self, value: int, what: str) -> list[int]:
        """One whole number from each rank, on every rank (rank order)."""
        out = np.empty(self.size, np.int64)
        mine = np.array([value], np.int64)
        self.wait([self.comm.Iallgather(mine, out)], what)
        return [int(v) for v in out]

    def gather_texts(self, text: str, what: str) -> list[str]:
        """One text from each rank, on every rank (rank order)."""
        # surrogatepass: a path's undecodable bytes (a file \xff.csv), as Python holds them
        data = np.frombuffer(text.encode("utf-8", "surrogatepass"), np.uint8)
        sizes = self.gather_numbers(len(data), what)
        out = np.empty(sum(sizes), np.uint8)
        starts = [0, *np.cumsum(sizes[:-1]).tolist()]
        self.wait([self.comm.Iallgatherv(data, [out, sizes, starts, self.MPI.BYTE])], what)
        return [
            out[a : a + n].tobytes().decode("utf-8", "surrogatepass")
            for a, n in zip(starts, sizes, strict=True)
        ]

    @contextmanager
    def together(self, what: str, describe: Callable[[BaseException], str] = str) -> Iterator[None]:
        """Run a block that every rank runs alike (reading the data, checking options),
        then agree whether it failed anywhere: if it did, every rank raises one error
        naming each distinct failure once — this rank's own first, else the lowest
        rank's — so a command prints it once (rank 0), not once per rank, and a rank
        whose block passed does not go on to wait for the others in training. A bug
        (not a WxbError, OSError or MemoryError) is not caught: it ends this rank as
        before."""
        mine = None
        try:
            yield
        except (WxbError, OSError, MemoryError) as error:  # (one rank short of memory)
            mine = error
        texts = self.gather_texts("" if mine is None else describe(mine) or "failed", what)
        failed = [(rank, text) for rank, text in enumerate(texts) if text]
        if not failed:
            return
        if mine is not None:  # its own error first, unnamed as it is in one process
            failed.sort(key=lambda failure: failure[0] != self.rank)
        parts, said = [], set()
        for rank, text in failed:
            if text not in said:
                said.add(text)
                parts.append(text if rank == self.rank else f"rank {rank}: {text}")
        if mine is not None and self.leader and len(parts) == 1:
            raise mine  # the error as one process raises it (its type and words)
        raise RanksFailed("; ".join(parts), quiet=not self.leader) from mine

    def barrier(self, what: str, comm: Any = None) -> None:
        self.wait([(comm or self.comm).Ibarrier()], what)

    def agree(self, value: Any, what: str) -> Any:
        """Rank 0's ``value`` (JSON-able) on every rank; the waits time out like any."""
        data = json.dumps(value).encode() if self.leader else b""
        size = np.array([len(data)], np.int64)
        self.broadcast_(size, what)
        buffer = np.frombuffer(data, np.uint8).copy() if self.leader else np.empty(size[0], "u1")
        self.broadcast_(buffer, what)
        return json.loads(buffer.tobytes().decode())

    # -- the gradient buckets ---------------------------------------------------------------------
    def start_sum(self, array: np.ndarray) -> None:
        """Begin summing ``array`` in place (a bucket of gradients); ``finish`` waits."""
        self._pending.append(self.comm.Iallreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM))

    def progress(self) -> None:
        """Let the started sums move on (MPI progresses them only inside its calls)."""
        if self._pending:
            self.MPI.Request.Testall(self._pending)

    def finish(self, what: str) -> None:
        pending, self._pending = self._pending, []
        self.wait(pending, what)

    # -- the same weights everywhere --------------------------------------------------------------
    def check_same(self, arrays: Iterable[np.ndarray], what: str) -> None:
        """Stop when the ranks' ``arrays`` differ (a checksum of their bytes)."""
        checksum = 0
        for array in arrays:
            checksum = zlib.crc32(np.ascontiguousarray(array).view(np.uint8), checksum)
        sums = self.gather_numbers(checksum, f"the check of {what}")
        differ = [r for r, s in enumerate(sums) if s != sums[0]]
        if differ:
            raise RanksStopped(
                f"{what} differ between rank 0 and rank{'s' if len(differ) > 1 else ''} "
                f"{', '.join(map(str, differ))}; the ranks must train the same model"
            )

    def abort(self, error: BaseException, code: int = 2) -> None:
        """Stop every rank: print the error (one line) and call MPI_Abort."""
        message = str(error) or type(error).__name__
        named = isinstance(error, RanksStopped) and message.startswith("rank ")
        prefix = "wxb:" if named else f"wxb: rank {self.rank}:"  # RanksStopped names it
        text = f"{prefix} {message}\n"
        if not isinstance(error, (WxbError, OSError, KeyboardInterrupt)):  # a bug: where
            text = "".join(traceback.format_exception(error)) + text
        sys.__stderr__.write(text)  # one write: the line does not trail the traceback
        sys.__stderr__.flush()
        time.sleep(0.3)  # mpiexec forwards it before MPI_Abort ends the ranks (lost otherwise)
        self.comm.Abort(code)


class SharedGradients:
    """The flat gradient buffers of ranks that share one machine, in shared memory (an
    MPI window): each rank sums its slice of everyone's buffer in place, then copies
    the others' summed slices; no copies into and out of MPI's buffers, as an
    Allreduce makes (docs/scaling.md has the measured difference)."""

    def __init__(self, ranks: Ranks, optimizer: Any, model_params: list[Any]) -> None:
        MPI = ranks.MPI
        # The weights move into shared memory only where nothing else reads them where
        # they lie: a parameter outside the optimiser tied to one inside (through .data)
        # would keep the old values. The arrays they lay in get the values back at close.
        share_weights = (
            getattr(optimizer, "steps_by_slices", True)  # (Adafactor steps each one whole)
            and self.steps_whole(optimizer)
            and not _tied_outside(optimizer.params, model_params)
        )
        self.homes = [(p, p.data) for p in optimizer.params]  # (a group added later grows
        self.gathered = optimizer.gathers  # optimizer.params, which the flat layout shares)
        if share_weights and optimizer.flat.data is None:
            optimizer.gathers = True  # the shared copy of the weights is one flat array
            optimizer._pack()
        flat = optimizer.flat
        self.ranks, self.flat, self.optimizer = ranks, flat, optimizer
        n, item, dtype = flat.grad.size, flat.grad.itemsize, flat.grad.dtype
        count = n + len(flat.params)  # after the gradients: which parameters have one
        _free_unviewed(ranks)  # windows of earlier runs nothing views any more
        self.window = MPI.Win.Allocate_shared(count * item, item, comm=ranks.comm)
        self.buffers = []
        for rank in range(ranks.size):
            memory, _ = self.window.Shared_query(rank)
            self.buffers.append(np.frombuffer(memory, dtype, count=count))
        # every view of the window's memory holds one of these (NumPy bases a view on them)
        self.bases = [weakref.ref(buffer) for buffer in self.buffers]
        self.window.Lock_all()  # one passive epoch: Sync orders the loads and stores
        self.flags = [buffer[n:] for buffer in self.buffers]
        self.mine = self.buffers[ranks.rank][:n]
        self.mine[...] = flat.grad
        flat.grad = self.mine  # the backward writes ∂L/∂W straight in here
        flat.adopt_grad_buffer()
        k, size = ranks.rank, ranks.size
        self.slices = [slice(n * r // size, n * (r + 1) // size) for r in range(size)]
        self.own = self.slices[k]
        self.state_window = self.data = None
        if share_weights:
            self._share_weights(ranks, optimizer)

    @staticmethod
    def steps_whole(optimizer: Any) -> bool:
        """Whether each group's parameters have one step count (so a step walks the
        group's stretch at once, and a slice of it can be one rank's)."""
        for counter in optimizer.counters:
            counts = getattr(optimizer, counter)
            if any(len(set(counts[a:b])) > 1 for a, b in optimizer._bounds):
                return False
        return True

    def _share_weights(self, ranks: Ranks, optimizer: Any) -> None:
        """One copy of the weights and the optimiser's state, in rank 0's segment of a
        second window: each rank updates its own slice of it (when every rank ran the
        whole update, the ranks' updates fought over the memory bus)."""
        MPI, flat = ranks.MPI, self.flat
        n, item, dtype = flat.data.size, flat.data.itemsize, flat.data.dtype
        names = list(optimizer.state_names)
        whole = n * item * (1 + len(names)) if ranks.rank == 0 else 0
        self.state_window = MPI.Win.Allocate_shared(whole, item, comm=ranks.comm)
        memory, _ = self.state_window.Shared_query(0)
        base = np.frombuffer(memory, dtype, count=n * (1 + len(names)))
        self.state_base = weakref.ref(base)
        table = base.reshape(-1, n)
        self.state_window.Lock_all()
        if ranks.rank == 0:  # rank 0's values; every rank holds the same ones by now
            table[0] = flat.data
            for row, name in zip(table[1:], names, strict=True):
                row[...] = optimizer._flat_state[name]
        self.state_window.Sync()
        ranks.barrier("sharing the weights")
        self.state_window.Sync()
        self.data = table[0]
        np.copyto(flat.data, self.data)  # use_data_buffer copies them in: the same values
        flat.use_data_buffer(self.data)
        optimizer.use_state_buffers(dict(zip(names, table[1:], strict=True)))
        optimizer.shard = (self.own.start, self.own.stop, self.data)
        optimizer.before_repack = self._unshare_weights
        ranks.barrier("sharing the weights")  # nobody writes before all have moved in

    def _unshare_weights(self) -> None:
        """Before the optimiser repacks (at close, or mid-run: a new state, a replaced
        p.data, a group added): the values go back into the arrays they lay in before,
        so a view a user took follows training as in one process, and from then on each
        rank updates its own copy whole (the one shared copy would take K updates). The
        state the optimiser copies out itself. Every rank repacks at the same step."""
        for p, home in self.homes:
            if np.may_share_memory(p.data, self.data):  # (else replaced: the new array stays)
                np.copyto(home, p.data)
                p.data = home
        self.optimizer.shard, self.optimizer.gathers = None, self.gathered
        self.data = None

    @classmethod
    def possible(cls, ranks: Ranks) -> bool:
        """Whether every rank runs on this machine (one shared-memory node)."""
        node = ranks.comm.Split_type(ranks.MPI.COMM_TYPE_SHARED)
        try:
            return node.Get_size() == ranks.size
        finally:
            node.Free()

    def holds(self, optimizer: Any) -> bool:
        """Whether the optimiser still reads its gradients from the shared buffer (a
        cast model, or a gradient a user kept, gives it a new buffer of its own)."""
        return optimizer.flat is self.flat and self.flat.grad is self.mine

    def updated(self) -> None:
        """After each rank updated its slice of the shared weights: all of them written."""
        shard = self.optimizer.shard
        if self.data is not None and shard is not None and shard[2] is self.flat.data:
            self.state_window.Sync()
            self.ranks.barrier("the update")
            self.state_window.Sync()

    def sum_(self) -> np.ndarray:
        """Every rank's buffer becomes the sum of all of them; returns whether any rank
        has a gradient for each parameter (the flags each rank wrote after its
        gradients)."""
        ranks, window = self.ranks, self.window
        window.Sync()
        ranks.barrier("the sum of the gradients")  # every buffer written
        window.Sync()
        own = self.mine[self.own]
        for rank, buffer in enumerate(self.buffers):
            if rank != ranks.rank:
                np.add(own, buffer[self.own], out=own)
        window.Sync()
        ranks.barrier("the sum of the gradients")  # every slice summed
        window.Sync()
        for rank, buffer in enumerate(self.buffers):
            if rank != ranks.rank:
                part = self.slices[rank]
                self.mine[part] = buffer[part]
        present = np.any([flags != 0 for flags in self.flags], axis=0)
        window.Sync()
        ranks.barrier("the sum of the gradients")  # read before anyone writes again
        return present

    def close(self) -> None:
        """Back to private buffers (gradients, weights and state kept), then free the
        windows: every rank calls it, at the same point."""
        optimizer = self.optimizer
        if self.data is not None:  # the weights are still the shared copy
            grads = [(p, p.grad) for p in optimizer.params]
            optimizer._pack()  # _unshare_weights first; the state is copied out
            views = dict(zip(map(id, optimizer.params), optimizer.flat.grad_views, strict=True))
            for p, grad in grads:
                if grad is not None:
                    np.copyto(views[id(p)], grad)
                    p.grad = views[id(p)]
        elif optimizer.flat is self.flat and self.flat.grad is self.mine:  # the gradients only
            views = {id(v): i for i, v in enumerate(self.flat.grad_views)}
            held = [(p, views.get(id(p.grad))) for p in self.flat.params]
            self.flat.grad = self.mine.copy()
            self.flat.adopt_grad_buffer()
            for p, index in held:
                if index is not None:
                    p.grad = self.flat.grad_views[index]
        optimizer.shard = optimizer.before_repack = None
        for p in optimizer.params:  # nothing of this rank's points into the windows freed below
            if p.grad is not None and np.may_share_memory(p.grad, self.mine):
                p.grad = p.grad.copy()
        self.data, self.buffers, self.mine, self.flags = None, [], None, []
        # Everything above was this rank's own; the rest is collective, and a rank that
        # never comes makes the barrier time out (RanksStopped: the job is aborted).
        self.ranks.barrier("letting the shared memory go")  # nobody reads it any more
        self.window.Unlock_all()
        _RETIRED.append((self.ranks.comm, self.window, self.bases))
        if self.state_window is not None:
            self.state_window.Unlock_all()
            _RETIRED.append((self.ranks.comm, self.state_window, [self.state_base]))
        self.window = self.state_window = None
        _free_unviewed(self.ranks)


# Windows let go by a run, not yet freed: a view of their memory may outlive the run (a
# p.data or state array a user's code kept during it, a stale plan's), and reading it
# after MPI_Win_free read unmapped memory (a segfault). Each is freed, by every rank at
# once, when no rank holds a view of it any more; else at MPI's finalize.
_RETIRED: list[tuple[Any, Any, list[weakref.ref]]] = []


def _free_unviewed(ranks: Ranks) -> None:
    """Free the let-go windows of ``ranks``'s communicator that no rank views (collective:
    every rank retired the same windows in the same order)."""
    ours = [entry for entry in _RETIRED if entry[0] is ranks.comm]
    if not ours:
        return
    viewed = np.array([any(ref() is not None for ref in refs) for _, _, refs in ours], np.int64)
    ranks.sum_(viewed, "letting the shared memory go")
    freed = {id(entry) for entry, count in zip(ours, viewed, strict=True) if count == 0}
    _RETIRED[:] = [entry for entry in _RETIRED if id(entry) not in freed]
    for entry in ours:
        if id(entry) in freed:
            entry[1].Free()


class GradientSum:
    """Sums a step's gradients over the ranks: the gradient of the global batch's loss.

    ``layer_done`` (called by the planned backward after each Dense layer) starts the sum
    of that layer's stretch of the flat gradient buffer at once; ``finish`` sums what is
    left, one parameter at a time in the optimiser's order, and waits for all of it, then
    sums the step's loss and correct count. Every rank starts the same sums in the same
    order: which ones a layer starts depends only on the model, never on the data.
    """

    def __init__(
        self,
        ranks: Ranks,
        optimizer: Any,
        mean_loss: bool,
        count_correct: Callable[[np.ndarray, np.ndarray], int],
        planned: bool,
        model_params: list[Any] = (),
    ) -> None:
        self.ranks, self.optimizer = ranks, optimizer
        self.mean_loss, self.count_correct = mean_loss, count_correct
        self.scale = 1.0
        # Whether this step's gradients are scaled by ``scale`` already: the planned step
        # scales ∇_A L (cheaper); a step that fell back to the graph mid-run does not.
        self.scaled = False
        self.correct = 0
        self.local_stop = False  # this rank's Ctrl-C, summed with the next step's loss
        self.stop_everywhere = False  # after a step: whether any rank asked to stop
        self._reduced: set[int] = set()
        self._span: dict[int, tuple[int, int]] = {}
        self._layout: int | None = None
        self.shared: SharedGradients | None = None
        optimizer.grad_buffers()  # repacked first if a p.data was replaced or cast
        flat = optimizer.flat
        ranks.barrier("setting up the run")  # every rank got here: the rest cannot hang
        if planned and flat is not None and ranks.size > 1 and SharedGradients.possible(ranks):
            if os.environ.get("WXB_MPI_SHARED", "1") != "0":  # 0: Allreduce, to compare
                self.shared = SharedGradients(ranks, optimizer, list(model_params))

    def begin(self, rows: int, batch_rows: int) -> None:
        """A step on ``rows`` of this rank's of a global batch of ``batch_rows``."""
        self.optimizer.grad_buffers()  # re-gathered if the model was cast
        flat = self.optimizer.flat
        if flat is not None and id(flat) != self._layout:
            self._span = {
                id(p): (flat.offsets[i], flat.offsets[i + 1]) for i, p in enumerate(flat.params)
            }
            self._layout = id(flat)
        # ∂(Σ_k b_k/B · mean_k)/∂w is the global mean's gradient; a summed loss needs none.
        self.scale = rows / batch_rows if self.mean_loss else 1.0
        self.scaled = False
        self._reduced = set()

    def _bucket(self, params: list[Any]) -> np.ndarray | None:
        """The one stretch of the flat gradient buffer ``params`` fill, if they fill one."""
        flat = self.optimizer.flat
        if flat is None or not params or any(id(p) not in self._span for p in params):
            return None
        spans = sorted(self._span[id(p)] for p in params)
        if any(stop != start for (_, stop), (start, _) in pairwise(spans)):
            return None
        return flat.grad[spans[0][0] : spans[-1][1]]

    def layer_done(self, layer_params: list[Any]) -> None:
        """One Dense layer's gradients are ready: start summing its stretch of the buffer.

        Called by the planned step only (its ∇_A L is scaled already), on every rank for
        the same layers, an empty share included (``contribute_nothing``)."""
        if self.shared is not None and self.shared.holds(self.optimizer):
            return  # summed in shared memory in finish: nothing to start
        trainable = {id(p) for p in self.optimizer.params}
        params = [p for p in layer_params if id(p) in trainable]
        bucket = self._bucket(params)
        if bucket is not None:
            start = bucket.__array_interface__["data"][0]
            # (else a gradient kept elsewhere, accumulated by hand: summed in finish)
            if all(p.grad is not None and _starts_within(p.grad, bucket, start) for p in params):
                self.ranks.start_sum(bucket)
                self._reduced.update(id(p) for p in params)
        self.ranks.progress()

    def finish(self, value: float, output: np.ndarray | None, y: np.ndarray | None) -> float:
        """Sum what is left and wait; returns the global batch's loss (its ``correct`` too)."""
        rescale = not self.scaled and self.scale != 1.0
        if self.shared is not None and self.shared.holds(self.optimizer):
            flat, flags = self.shared.flat, self.shared.flags[self.ranks.rank]
            for i, p in enumerate(flat.params):
                view = flat.grad_views[i]
                flags[i] = p.grad is not None
                if p.grad is None:  # no gradient here: zeros into the sum
                    view[...] = 0
                else:
                    if p.grad is not view:
                        np.copyto(view, p.grad)
                    if rescale:
                        view *= self.scale
                p.grad = view
            somewhere = self.shared.sum_()
            for p, present in zip(flat.params, somewhere, strict=True):
                if not present:  # no rank has one (frozen, unused): no update, as one process
                    p.grad = None
            self._reduced = {id(p) for p in flat.params}
        params = [p for p in self.optimizer.params if id(p) not in self._reduced]
        if params:  # which parameters have a gradient on some rank: the others stay None
            have = np.array([p.grad is not None for p in params], np.int64)
            self.ranks.sum_(have, "which gradients exist")
            params = [p for p, n in zip(params, have, strict=True) if n > 0]
        for p in params:
            if p.grad is None:  # no gradient here, some elsewhere: zeros into the sum
                p.grad = np.zeros_like(p.data)
            elif rescale:
                p.grad = np.multiply(p.grad, self.scale, out=np.empty_like(p.grad))  # 0-d too
            elif not (p.grad.flags.c_contiguous and p.grad.flags.writeable):
                p.grad = np.ascontiguousarray(p.grad).copy()
            self.ranks.start_sum(p.grad)
        correct = 0 if output is None else self.count_correct(output, y)
        part = 0.0 if output is None else value * (self.scale if self.mean_loss else 1.0)
        self.ranks.finish("the sum of the gradients")
        total, self.correct, stop = self.ranks.sum_numbers(
            part, correct, float(self.local_stop), what="the sum of the loss"
        )
        self.correct = int(self.correct)
        self.stop_everywhere = stop > 0
        return total

    def close(self) -> None:
        """After the run, on every rank: the shared gradient memory is let go."""
        if self.shared is not None:
            self.shared.close()
            self.shared = None


def _tied_outside(params: list[Any], model_params: list[Any]) -> bool:
    """Whether a parameter the optimiser does not hold shares memory with one it holds."""
    inside = {id(p) for p in params}
    outside = [p for p in model_params if id(p) not in inside]
    return any(np.may_share_memory(p.data, q.data) for p in params for q in outside)


def _starts_within(grad: np.ndarray, bucket: np.ndarray, start: int) -> bool:
    address = grad.__array_interface__["data"][0]
    return start <= address < start + bucket.nbytes
