"""Dropout masks by data row (wxb.random.RowMasks): what makes K ranks equal one process."""

import warnings

import numpy as np
import pytest

from wxb import kernels
from wxb.kernels import reference
from wxb.random import RowMasks


def fill(source: RowMasks, generator, out: np.ndarray) -> bool:
    """What Dropout does inside fit: the draw's seed from the source, the values from
    the kernel (compiled, or NumPy with WXB_KERNELS=numpy)."""
    drawn = source.draw(generator, out)
    if drawn is None:
        return False
    kernels.row_uniform(*drawn, out)
    return True


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_rows_draws_do_not_depend_on_its_batch(seeded, dtype):
    rng = seeded.rng
    source = RowMasks(int(rng.integers(0, 1 << 63)))
    rows = rng.permutation(1000)[: int(rng.integers(2, 60))]
    width, step = int(rng.integers(1, 40)), int(rng.integers(0, 10_000))
    whole = np.empty((len(rows), width), dtype)
    source.start(step, rows)
    assert fill(source, None, whole)
    cut = int(rng.integers(1, len(rows)))  # two ranks' shares, in another order
    for part in (rows[cut:], rows[:cut][::-1]):
        got = np.empty((len(part), width), dtype)
        source.start(step, part)
        fill(source, None, got)
        for i, row in enumerate(part):
            assert np.array_equal(got[i], whole[list(rows).index(row)]), seeded.msg("row draws")


def test_steps_draws_keys_and_generators_give_other_streams(seeded):
    rng = seeded.rng
    key = int(rng.integers(0, 1 << 63))
    rows = np.arange(64)
    own = np.random.default_rng(0)

    def draw(source, step, skip=0, generator=None):
        out = np.empty((64, 32))
        source.start(step, rows)
        for _ in range(skip + 1):
            fill(source, generator, out)
        return out

    base = draw(RowMasks(key), 5)
    others = [
        draw(RowMasks(key), 6),  # the next step
        draw(RowMasks(key), 5, skip=1),  # the second Dropout of the step
        draw(RowMasks(key ^ 1), 5),  # another run's seed
        draw(RowMasks(key, {id(own): key ^ 2}), 5, generator=own),  # a layer's own seed
    ]
    for other in others:  # independent streams: about half the draws on each side of 0.5
        agree = np.mean((base < 0.5) == (other < 0.5))
        assert 0.4 < agree < 0.6, seeded.msg(f"streams agree on {agree:.2f} of the draws")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_draws_are_uniform_on_zero_one(seeded, dtype):
    rng = seeded.rng
    source = RowMasks(int(rng.integers(0, 1 << 63)))
    out = np.empty((2000, 100), dtype)
    source.start(int(rng.integers(0, 1 << 20)), np.arange(2000) + int(rng.integers(0, 1 << 30)))
    fill(source, None, out)
    assert out.min() >= 0 and out.max() < 1
    counts = np.histogram(out, bins=10, range=(0, 1))[0]
    expected = out.size / 10  # 20,000 a bin: a chi-square of 9 degrees, 1e-6 tail at ~50
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert chi2 < 50, seeded.msg(f"chi-square {chi2:.1f} over 10 bins")


def test_outside_a_step_nothing_is_drawn_by_row():
    source = RowMasks(1)
    assert not fill(source, None, np.empty((3, 4)))  # never started
    source.start(0, np.arange(3))
    assert not fill(source, None, np.empty((5, 4)))  # another batch (a diagnostic pass)
    source.stop()
    assert not fill(source, None, np.empty((3, 4)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_compiled_and_numpy_draws_are_the_same_bits(seeded, dtype):
    """The numba loop itself against its NumPy twin, whatever route WXB_KERNELS picks
    (under WXB_KERNELS=numpy, kernels.row_uniform is the NumPy twin)."""
    pytest.importorskip("numba", reason="the compiled row_uniform kernel needs numba")
    from wxb.kernels import compiled

    rng = seeded.rng
    rows = rng.integers(0, 1 << 40, int(rng.integers(1, 50)))
    base = int(rng.integers(0, 1 << 63)) * 2 + int(rng.integers(0, 2))
    width = int(rng.integers(1, 70))
    want = reference.row_uniform(rows, base, np.empty((len(rows), width), dtype))
    got = np.empty((len(rows), width), dtype)
    compiled.row_uniform(rows, np.uint64(base), got, got.dtype == np.float32)
    assert np.array_equal(got, want), seeded.msg("row_uniform, compiled against NumPy")
    routed = kernels.row_uniform(rows, base, np.empty((len(rows), width), dtype))
    assert np.array_equal(routed, want), seeded.msg("row_uniform, the route in use")


def test_a_resume_on_the_same_model_draws_the_same_masks(seeded, tmp_path):
    """A Dropout with its own seed keys its masks from its construction, not from its
    generator's state at each fit: a resume on the very model that was stopped (its
    generator moved on) trains as the uninterrupted run."""
    import wxb
    from wxb import nn
    from wxb.checkpoint import CheckpointWarning

    rng = seeded.rng
    X, y = rng.standard_normal((64, 4)), rng.integers(0, 3, 64)
    seed, own = int(rng.integers(0, 2**31)), int(rng.integers(0, 2**31))

    def build():
        model = nn.Sequential(
            nn.Dense(4, 16), nn.ReLU(), nn.Dropout(0.5, seed=own), nn.Dense(16, 3)
        )
        model.load_state_dict(start)
        return model

    start = nn.Sequential(nn.Dense(4, 16), nn.ReLU(), nn.Dropout(0.5), nn.Dense(16, 3)).state_dict()
    kw = dict(
        loss="cross_entropy", optimizer="sgd", lr=0.1, batch_size=16, seed=seed, verbose=False
    )
    reference = build()
    wxb.fit(reference, X, y, epochs=3, **kw)
    model = build()
    wxb.fit(model, X, y, epochs=1, checkpoint_dir=tmp_path, **kw)
    # its weights are where the stopped run left them, the checkpoint's own: nothing is
    # replaced, so nothing is said (a model trained elsewhere would be warned about)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)
        wxb.fit(model, X, y, epochs=3, checkpoint_dir=tmp_path, resume=True, **kw)
    for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
        assert np.array_equal(p.data, q.data), seeded.msg(name)


def test_masks_of_inputs_with_more_axes_also_go_by_row(seeded):
    """A Dropout on rows × channels × units: each row's mask is still its own."""
    from wxb import ops
    from wxb.random import masks_by_row

    rng = seeded.rng
    source = RowMasks(int(rng.integers(0, 1 << 63)))
    rows = rng.permutation(500)[: int(rng.integers(2, 30))]
    shape = (len(rows), int(rng.integers(1, 5)), int(rng.integers(1, 7)))
    p, step = float(rng.uniform(0.1, 0.9)), int(rng.integers(0, 1000))

    def draw(count: int) -> np.ndarray:  # one place, as a forward's F.dropout at each step
        return ops.dropout_mask(None, p, np.empty((count, *shape[1:])))

    with masks_by_row(source):
        source.start(step, rows)
        whole = draw(len(rows))
        cut = int(rng.integers(1, len(rows)))
        source.start(step, rows[cut:])
        part = draw(len(rows) - cut)
    assert np.array_equal(part, whole[cut:]), seeded.msg("masks by row, 3-D")
    assert set(np.unique(whole)) <= {0.0, 1.0 / (1.0 - p)}, seeded.msg("mask values")


def test_a_seeded_dropout_draws_new_masks_in_each_fit_and_the_same_in_each_run(seeded):
    """A Dropout with a seed of its own, trained by two fits in a row from the same
    weights on the same batches: the second fit's masks were the first's, row for row
    (the key was fixed when the layer was made), so dropout became a fixed mask per
    row. As Keras's seeded Dropout, each fit now draws new masks, and a second run of
    the same script draws the same two fits' masks again."""
    import wxb
    from wxb import nn

    rng = seeded.rng
    n, d, k = int(rng.integers(20, 60)), int(rng.integers(2, 8)), int(rng.integers(2, 5))
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = rng.integers(0, k, n)
    seeds = [int(s) for s in rng.integers(0, 2**31, 3)]

    def two_fits() -> list[list[float]]:
        wxb.manual_seed(seeds[0])
        model = nn.Sequential(
            nn.Linear(d, 16), nn.ReLU(), nn.Dropout(0.5, seed=seeds[1]), nn.Linear(16, k)
        )
        start = model.state_dict()
        losses = []
        for _ in range(2):
            model.load_state_dict(start)
            history = wxb.fit(
                model, X, y, epochs=2, batch_size=8, optimizer="sgd", lr=0.1,
                shuffle=False, seed=seeds[2], verbose=False,
            )  # fmt: skip
            losses.append(history.history["loss"])
        return losses

    first, second = two_fits()
    assert first != second, seeded.msg("the second fit repeated the first fit's masks")
    assert two_fits() == [first, second], seeded.msg("a second run drew other masks")
