"""What a thread-safety review left: a checkpoint folder's clean-up beside another
writer, and per-thread blocks a generator stepped by a pool's threads leaves elsewhere."""

import threading
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from wxb import random as wrandom
from wxb.nn import Dense
from wxb.tensor import Tensor, gradients_apart, keeping_gradients_apart


def test_blocks_of_a_streamed_generator_left_in_another_thread_end_in_the_entering_one(seeded):
    """A generator holding ``drawing_from``, ``masks_by_row`` and ``gradients_apart``
    blocks, stepped by a pool's threads, leaves them in another thread than it entered
    them: the entering thread kept all three for good (its later default draws came from
    the stream's generator, and its backwards filled the store, ``.grad`` untouched: its
    training learnt nothing), and the leaving thread's own overrides were replaced by the
    entering thread's earlier values."""
    rng = seeded.rng
    stream_generator = np.random.default_rng(int(rng.integers(1 << 30)))
    masks = wrandom.RowMasks(int(rng.integers(1 << 62)))

    def stream():
        with wrandom.drawing_from(stream_generator), wrandom.masks_by_row(masks):
            with gradients_apart():
                for _ in range(2):
                    yield (
                        wrandom.as_generator(None) is stream_generator,
                        wrandom.row_masks() is masks,
                        keeping_gradients_apart(),
                    )

    def state():
        return wrandom.as_generator(None), wrandom.row_masks(), keeping_gradients_apart()

    entering, leaving = ThreadPoolExecutor(1), ThreadPoolExecutor(1)
    try:
        before = entering.submit(state).result()
        # the leaving thread inside blocks of its own, which must stay its own
        own_generator = np.random.default_rng(int(rng.integers(1 << 30)))
        own_masks = wrandom.RowMasks(int(rng.integers(1 << 62)))
        own = [wrandom.drawing_from(own_generator), wrandom.masks_by_row(own_masks)]
        leaving.submit(lambda: [block.__enter__() for block in own]).result()

        steps = stream()
        assert entering.submit(next, steps).result() == (True, True, True)
        leaving.submit(next, steps).result()  # (per thread: the blocks are not in force here)
        assert leaving.submit(next, steps, None).result() is None  # the blocks end there

        assert entering.submit(state).result() == before, seeded.msg("entering thread")
        assert leaving.submit(state).result() == (own_generator, own_masks, False), seeded.msg(
            "leaving thread"
        )
        leaving.submit(lambda: [block.__exit__(None, None, None) for block in own[::-1]]).result()

        # a backward in the entering thread fills .grad again: sum(x·Wᵀ + b) gives
        # ∂/∂W = 1ᵀx per row of W, ∂/∂b = the row count (float64 by NumPy)
        layer = Dense(3, 2, seed=int(rng.integers(1 << 20))).to("float64")
        x = rng.normal(size=(int(rng.integers(1, 7)), 3))

        def backward():
            layer(Tensor(x)).sum().backward()
            return layer.weight.grad, layer.bias.grad

        gw, gb = entering.submit(backward).result()
        assert gw is not None and gb is not None, seeded.msg(".grad left None")
        np.testing.assert_allclose(np.asarray(gw), np.tile(x.sum(0), (2, 1)), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(gb), np.full(2, float(len(x))), rtol=1e-12)
    finally:
        entering.shutdown()
        leaving.shutdown()


def _checkpoint_arrays(rng):
    return {"w": rng.normal(size=(int(rng.integers(1, 5)), 3)).astype(np.float32)}


def test_a_checkpoint_written_beside_another_threads_save_leaves_that_save_whole(
    seeded, tmp_path, monkeypatch
):
    """A checkpoint's write first removes the temporaries killed writers left in the
    folder: it removed every '.NAME.json.XXXXXXXX.tmp', also the one another thread (or
    process: wxb train recording its options) was writing that moment, whose rename then
    failed (FileNotFoundError). Made to happen every time: the other writer waits between
    two pieces of its file while the checkpoint is written. A stray nobody holds goes."""
    from wxb import checkpoint as ckpt
    from wxb import data as wdata

    rng = seeded.rng
    pieces = [rng.bytes(int(rng.integers(1, 64))) for _ in range(3)]
    abandoned = tmp_path / ".options.json.abcd1234.tmp"  # as a killed writer leaves it
    abandoned.write_bytes(b"{")
    writer, halfway, go_on = [], threading.Event(), threading.Event()
    original = wdata._write_all

    def waits_halfway(handle, payload):
        if threading.get_ident() not in writer:
            return original(handle, payload)
        handle.write(payload[0])
        halfway.set()
        assert go_on.wait(60)
        for piece in payload[1:]:
            handle.write(piece)

    monkeypatch.setattr(wdata, "_write_all", waits_halfway)
    errors = []

    def save():
        writer.append(threading.get_ident())
        try:
            wdata.atomic_write(tmp_path / "options.json", pieces)
        except Exception as error:  # an assertion in a thread would be lost
            errors.append(repr(error))
        finally:
            halfway.set()

    thread = threading.Thread(target=save)
    thread.start()
    try:
        assert halfway.wait(60)
        folder = ckpt.CheckpointFolder(tmp_path)
        arrays = _checkpoint_arrays(rng)
        folder.write(int(rng.integers(1, 1000)), arrays, {"epoch": 1})
    finally:
        go_on.set()
        thread.join(60)
    assert not thread.is_alive() and not errors, seeded.msg(str(errors))
    assert (tmp_path / "options.json").read_bytes() == b"".join(pieces), seeded.msg("save")
    assert not abandoned.exists(), seeded.msg("the abandoned temporary stayed")
    np.testing.assert_array_equal(folder.latest().arrays["w"], arrays["w"])
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_save_whose_new_temporary_a_clean_up_removed_at_once_writes_another(
    seeded, tmp_path, monkeypatch
):
    """The moment between a save making its temporary and holding it: a clean-up there
    (another thread's checkpoint) removes it, and the save makes a new one, not an error."""
    import tempfile

    from wxb import checkpoint as ckpt
    from wxb import data as wdata

    payload = seeded.rng.bytes(int(seeded.rng.integers(1, 64)))
    folder = ckpt.CheckpointFolder(tmp_path)
    original, made = tempfile.mkstemp, []

    def cleaned_up_at_once(*args, **kwargs):
        fd, name = original(*args, **kwargs)
        made.append(name)
        if len(made) == 1:
            folder.remove_strays()
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", cleaned_up_at_once)
    wdata.atomic_write(tmp_path / "options.json", payload)
    assert (tmp_path / "options.json").read_bytes() == payload
    assert len(made) == 2 and not any(Path(name).exists() for name in made), made


def test_feather_v1_reads_in_two_threads_leave_the_warning_filters_as_they_were(
    seeded, tmp_path, monkeypatch
):
    """read_feather hid pyarrow's notice that Feather V1 is deprecated with
    warnings.catch_warnings, which swaps the process's one list of filters: two reads in
    threads, the second entering before the first left, left 'ignore DeprecationWarning'
    in place for good. Made to interleave so every time where pyarrow's reading is
    reached inside such a block (the first waits there for the second, which waits there
    until the first read has ended). Each read must give the file's columns."""
    import warnings

    pa = pytest.importorskip("pyarrow")
    feather = pytest.importorskip("pyarrow.feather")
    from wxb import tables

    rng = seeded.rng
    n = int(rng.integers(1, 40))
    values = {"a": rng.normal(size=n), "b": rng.normal(size=n)}
    path = tmp_path / "v1.feather"
    with warnings.catch_warnings():  # (the writing: pyarrow calls V1 deprecated)
        warnings.simplefilter("ignore", DeprecationWarning)
        feather.write_feather(pa.table(values), path, version=1)

    first_in, second_in, first_done = threading.Event(), threading.Event(), threading.Event()
    roles, original = {}, feather.read_table

    def interleaved(*args, **kwargs):
        role = roles.pop(threading.get_ident(), None)  # (each thread's first call only)
        if role == "first":
            first_in.set()
            assert second_in.wait(60)
        elif role == "second":
            second_in.set()
            assert first_done.wait(60)
        return original(*args, **kwargs)

    monkeypatch.setattr(feather, "read_table", interleaved)
    before = list(warnings.filters)
    got, errors = {}, []

    def read(role, entered, done):
        try:
            if role == "second":
                assert first_in.wait(60)
            roles[threading.get_ident()] = role
            table = tables.read_table(path)
            got[role] = {name: table.columns[name].values for name in values}
        except Exception as error:  # an assertion in a thread would be lost
            errors.append(repr(error))
        finally:
            entered.set()
            done.set()

    threads = [
        threading.Thread(target=read, args=("first", first_in, first_done)),
        threading.Thread(target=read, args=("second", second_in, threading.Event())),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads) and not errors, seeded.msg(str(errors))
    assert list(warnings.filters) == before, seeded.msg("filters changed")
    for role in ("first", "second"):
        for name, column in values.items():
            np.testing.assert_array_equal(got[role][name], column)


@pytest.mark.parametrize("change", ["gone", "other signature", "no read_names"])
def test_feather_reads_through_the_public_api_when_the_private_reader_differs(
    seeded, tmp_path, monkeypatch, change
):
    """read_feather reads through pyarrow's private FeatherReader (read_table's own, without
    its V1 notice); a pyarrow whose private reader is gone, takes other arguments or lacks
    a method falls back to the public pyarrow.feather.read_table, with the same columns.
    Before, only a missing import fell back: the other two raised out of wxb."""
    pa = pytest.importorskip("pyarrow")
    feather = pytest.importorskip("pyarrow.feather")
    private = pytest.importorskip("pyarrow._feather")
    from wxb import tables

    rng = seeded.rng
    n = int(rng.integers(1, 40))
    values = {"a": rng.normal(size=n), "b": rng.integers(0, 9, size=n).astype(float)}
    path = tmp_path / "v2.feather"
    feather.write_feather(pa.table(values), path)
    real = private.FeatherReader

    class OtherSignature:
        def __init__(self, source, memory_map):
            raise AssertionError("not reached: the keywords differ")

    class NoReadNames:
        def __init__(self, *args, **kwargs):
            self.inner = real(*args, **kwargs)
            self.read = self.inner.read
            self.version = self.inner.version

    # the public reading keeps the real reader (a pyarrow whose private one differs has
    # a public read_table made for it); only wxb's import sees the change
    monkeypatch.setattr(feather, "_feather", types.SimpleNamespace(FeatherReader=real))
    if change == "gone":
        monkeypatch.delattr(private, "FeatherReader")
    else:
        monkeypatch.setattr(
            private, "FeatherReader", OtherSignature if change == "other signature" else NoReadNames
        )
    for columns in (None, ["b"]):
        table = tables._feather_table(path, columns)
        assert table.column_names == (columns or list(values)), seeded.msg(change)
        for name in table.column_names:
            np.testing.assert_array_equal(table.column(name).to_numpy(), values[name])
