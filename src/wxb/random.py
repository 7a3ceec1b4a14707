"""One seed drives initialisation, shuffling and dropout.

``wxb.manual_seed(s)`` resets the generator that layers and ``fit`` draw from
when they are not given a seed of their own, as ``torch.manual_seed`` does.
Inside ``drawing_from(generator)`` this thread draws from that generator instead:
``fit(seed=…)`` uses it so Dropout's masks follow the run's own seed; inside fit's
training steps they come by data row from ``RowMasks``, keyed from that generator.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from types import CodeType

import numpy as np

from wxb.errors import ConfigError

_generator = np.random.default_rng()
_thread = threading.local()  # per thread: what drawing_from() and masks_by_row() put in place


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed wxb's default generator and return it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def get_rng_state() -> dict:
    """The default generator's state (``torch.get_rng_state``'s place): a plain dict a
    checkpoint can hold, which ``set_rng_state`` puts back, so Dropout's masks and other
    draws from it go on after a resume as in the uninterrupted run. ``wxb.get_rng_state``
    (``wxb.checkpoint``'s) also takes a model, for the generators its modules hold."""
    return _generator.bit_generator.state


def set_rng_state(new_state: object) -> None:
    """Put back a state ``get_rng_state`` gave, into the default generator itself (what
    holds it, as ``Dropout`` does each call, draws on from there)."""
    kind = type(_generator.bit_generator).__name__
    if not isinstance(new_state, dict) or new_state.get("bit_generator") != kind:
        raise ConfigError(
            f"set_rng_state takes what wxb.get_rng_state() gave (a {kind} state dict); got "
            + (f"a {new_state.get('bit_generator')} state" if isinstance(new_state, dict)
               else type(new_state).__name__)
        )  # fmt: skip
    try:
        _generator.bit_generator.state = new_state
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"set_rng_state: the state is damaged ({exc})") from None


def state_as_json(value: object) -> object:
    """A generator's state as JSON holds it: arrays (MT19937's key) as lists with their
    dtype, NumPy scalars as numbers; ``state_from_json`` gives it back."""
    if isinstance(value, dict):
        return {k: state_as_json(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    return value


def state_from_json(value: object) -> object:
    """What ``state_as_json`` wrote, its arrays arrays again."""
    if isinstance(value, dict):
        if set(value) == {"__ndarray__", "dtype"}:
            return np.array(value["__ndarray__"], dtype=value["dtype"])
        return {k: state_from_json(v) for k, v in value.items()}
    return value


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A generator from a seed, an existing generator, or wxb's default one."""
    if seed is None:
        local = getattr(_thread, "generator", None)
        return local if local is not None else _generator
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


@contextmanager
def _thread_override(attribute: str, value: object) -> Iterator[None]:
    """``_thread.<attribute>`` is ``value`` inside the block, in this thread only; the
    previous value (None where there was none) comes back after it, however it ends."""
    entered = _thread.__dict__  # (this thread's own)
    previous = entered.get(attribute)
    entered[attribute] = value
    try:
        yield
    finally:
        # left in another thread (a generator's body stepped by a pool's threads): the
        # entering thread's value goes back (it kept the override for good), not the
        # leaving thread's, which is its own
        if entered is _thread.__dict__ or entered.get(attribute) is value:
            entered[attribute] = previous


@contextmanager
def drawing_from(generator: np.random.Generator) -> Iterator[np.random.Generator]:
    """Draws that would come from the default generator come from ``generator``, in
    this thread only, inside the block."""
    with _thread_override("generator", generator):
        yield generator


# -- dropout masks by row ----------------------------------------------------------------
_GOLDEN = 0x9E3779B97F4A7C15
_WORD = (1 << 64) - 1


def _splitmix(value: int) -> int:
    """SplitMix64's finaliser on one Python int (mod 2⁶⁴)."""
    z = (value + _GOLDEN) & _WORD
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _WORD
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _WORD
    return z ^ (z >> 31)


def key_of(generator: np.random.Generator) -> int:
    """A 63-bit key from a generator's state, without drawing from it (the same key
    however often it is asked, and the generator's own draws unchanged)."""
    state = json.dumps(generator.bit_generator.state, sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(state.encode()).digest()[:8], "little") >> 1


class RowMasks:
    """Dropout masks inside ``fit``: each entry a hash of (key, step, stream, row, column),
    the stream a Dropout layer's place in the model (F.dropout: where it is called).

    A counter-based generator: the mask a training row gets at a step depends on the
    row's index in the data, not on where it sits in the batch or on which rank of a
    distributed run holds it, so one process and K ranks draw the same masks; and a
    resumed run draws them again without any generator state. ``key`` comes from the
    run's seed; a Dropout with a generator of its own has its own key (``own``, by the
    generator's id), drawn from that generator when ``fit`` starts.
    """

    def __init__(
        self, key: int, own: dict[int, int] | None = None, layers: dict[int, int] | None = None
    ) -> None:
        self.key, self.own = key, dict(own or {})
        # A Dropout's stream is its place in the model (``layers``: id → place), not how
        # many masks the step drew before it: a rank whose rows skip a branch holding a
        # Dropout draws the later layers' masks as one process does.
        self.layers = dict(layers or {})
        self.step, self.rows = 0, None
        self.calls: dict[object, int] = {}
        # Distributed: a mask that cannot go by row is an error (each rank would draw its
        # own, unlike one process), not a fall-back to the layer's generator.
        self.by_row_only = False
        # Why this run cannot draw F.dropout's masks as the run it resumes did (a
        # checkpoint of a wxb that numbered them by the draws' order), or None
        self.functional_refused: str | None = None

    def start(self, step: int, rows: np.ndarray) -> None:
        """Masks for training step ``step`` (0-based, over the run) on data rows ``rows``."""
        self.step, self.rows = step, rows
        self.calls = {}

    def stop(self) -> None:
        self.rows = None  # outside a step, Dropout draws from its generator as usual

    def draw(
        self, rng: np.random.Generator, out: np.ndarray, layer: object = None
    ) -> tuple[np.ndarray, int] | None:
        """(the rows, the draw's 64-bit seed) for a mask of ``out``'s shape (rows first,
        then units in any number of axes), to be filled by ``wxb.kernels.row_uniform``
        on its rows × units view; None outside a step. ``layer``: the Dropout drawing
        (its stream by its place in the model; F.dropout's by where it is called)."""
        if self.rows is None:
            return None
        if out.ndim < 2 or len(out) != len(self.rows):
            if self.by_row_only:
                raise ConfigError(
                    f"a Dropout in a distributed fit got an input of shape {out.shape}, whose "
                    f"first axis is not the batch's {len(self.rows)} rows: its mask cannot be "
                    "drawn by data row, so the ranks would not drop what one process drops "
                    "(apply Dropout to rows × features)"
                )
            return None
        key = self.own.get(id(rng), self.key)
        place = self.layers.get(id(layer)) if layer is not None else None
        if place is None and self.functional_refused:
            raise ConfigError(self.functional_refused)
        if place is None:  # F.dropout: by where it is called (as a layer by its place; by
            # the draws' order, a rank whose rows skipped a branch holding one drew every
            # later one's masks from another stream than one process), its calls numbered
            site = ("called at", _call_site())
            calls = self.calls.get(site, 0)
            self.calls[site] = calls + 1
            stream = 1 << 63 | site[1] << 24 | calls
        else:  # a layer called again in the step (reused): another stream of its own
            calls = self.calls.get(place, 0)
            self.calls[place] = calls + 1
            stream = (place + 1) << 32 | calls
        base = _splitmix(_splitmix(key ^ (self.step * _GOLDEN & _WORD)) ^ stream)
        return self.rows, base


# How F.dropout's streams in fit are keyed (a checkpoint records it: a resume under
# another scheme would draw other masks)
FUNCTIONAL_SCHEME = "call site and column, a lambda outside functions by its line"


def _call_site() -> int:
    """Where the code outside wxb that drew a mask calls it (``F.dropout``, a Dropout not
    in the model): a hash of its function's name, the line within it and the call's
    column, the same on every rank, and where the script has moved (a resume). (By the
    line alone, two calls on one line, ``F.dropout(a) if c else a, F.dropout(b)``, or two
    lambdas of one function, shared one numbered stream: a rank skipping the first drew
    the second's mask from the first's place, unlike one process.)"""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == "wxb":
        frame = frame.f_back
    if frame is None:
        return 0
    code, line = frame.f_code, frame.f_lineno or 0
    columns = _columns(code)  # the source position of the call being made
    column = columns[frame.f_lasti // 2] if frame.f_lasti // 2 < len(columns) else None
    name = getattr(code, "co_qualname", code.co_name)
    place = f"{name}:{line - _anchor(name, code, frame.f_globals)}:{column}"
    return zlib.crc32(place.encode())


@functools.lru_cache(maxsize=256)
def _columns(code: CodeType) -> tuple[tuple[int | None, int | None], ...]:
    """Each code unit's start and end columns (Python 3.11+; none before: the line
    alone). Both: a call on another's result, ``h.drop().drop()``, starts where it does."""
    positions = getattr(code, "co_positions", None)
    return () if positions is None else tuple(p[2:] for p in positions())


def _anchor(name: str, code: object, names: dict) -> int:
    """The first line a call's line is counted from: its function's, or for a function
    defined inside another (a lambda), the outermost named one's, found by its
    qualified name (lambdas of one function on two lines are two places)."""
    outer = name.partition(".<locals>")[0]
    if outer != name:
        found: object = names
        for part in outer.split("."):
            found = found.get(part) if isinstance(found, dict) else getattr(found, part, None)
        first = getattr(getattr(found, "__code__", None), "co_firstlineno", None)
        if isinstance(first, int):
            return first
    if "<lambda>" in name:  # of a module or class body: by its line in the file (each
        # counted from its own first line, every such lambda was 'line 0', one stream)
        return 0
    return code.co_firstlineno  # type: ignore[attr-defined]


@contextmanager
def masks_by_row(source: RowMasks) -> Iterator[RowMasks]:
    """Dropout masks in this thread come from ``source`` inside the block (``fit``)."""
    with _thread_override("row_masks", source):
        yield source


def row_masks() -> RowMasks | None:
    return getattr(_thread, "row_masks", None)
