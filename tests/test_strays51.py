"""What a thread-safety review left: a checkpoint folder's clean-up beside another
writer, and per-thread blocks a generator stepped by a pool's threads leaves elsewhere."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

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
