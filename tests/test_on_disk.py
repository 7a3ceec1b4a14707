"""Training from a memory-mapped .npy (``np.load(path, mmap_mode="r")``): X stays on disk,
batches read their rows, and the run is the same as from the array in memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import wxb
from wxb import nn


def network(rng: np.random.Generator, features: int, classes: int, dtype: str, dropout: float):
    model = nn.Sequential(
        nn.Dense(features, hidden := int(rng.integers(4, 24)), seed=rng),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Dense(hidden, classes, seed=rng),
    )
    return model.to(dtype)


def train(model, X, y, **fit):
    return wxb.fit(model, X, y, verbose=False, **fit)


def on_disk(X: np.ndarray, folder, layout: str) -> np.ndarray:
    """X written to a .npy and memory-mapped: as it is, in Fortran order, or as the first
    columns of a wider file (a view whose rows are not contiguous)."""
    if layout == "fortran":
        np.save(folder / "X.npy", np.asfortranarray(X))
    elif layout == "columns":
        np.save(folder / "X.npy", np.hstack([X, np.ones((len(X), 3), X.dtype)]))
    else:
        np.save(folder / "X.npy", X)
    mapped = np.load(folder / "X.npy", mmap_mode="r")
    return mapped[:, : X.shape[1]] if layout == "columns" else mapped


@pytest.mark.parametrize("layout", ["rows", "fortran", "columns"])
def test_memory_mapped_x_trains_exactly_as_the_array_in_memory(seeded, tmp_path, layout):
    rng = seeded.rng
    dtype = str(rng.choice(["float32", "float64"]))
    rows, features, classes = int(rng.integers(60, 400)), int(rng.integers(2, 12)), 3
    X = rng.standard_normal((rows, features)).astype(dtype)
    y = rng.integers(0, classes, rows)
    fit = {
        "epochs": int(rng.integers(2, 5)),
        "batch_size": int(rng.integers(4, 50)),
        "seed": int(rng.integers(0, 2**31)),
        "validation_split": float(rng.uniform(0.1, 0.3)),
        "optimizer": str(rng.choice(["sgd", "adam"])),
        "lr": 0.01,
        "diagnose": True,
    }
    msg = seeded.msg(str(fit))
    init = int(rng.integers(0, 2**31))
    dropout = float(rng.uniform(0, 0.5))

    in_memory = network(np.random.default_rng(init), features, classes, dtype, dropout)
    want = train(in_memory, X, y, checkpoint_dir=tmp_path / "memory", **fit)
    on_disk_model = network(np.random.default_rng(init), features, classes, dtype, dropout)
    mapped = on_disk(X, tmp_path, layout)
    got = train(on_disk_model, mapped, y, checkpoint_dir=tmp_path / "disk", **fit)

    for key, value in in_memory.state_dict().items():
        assert np.array_equal(on_disk_model.state_dict()[key], value), f"{msg}: {key}"
    assert got.history == want.history, msg
    assert got.diagnostics == want.diagnostics, msg
    # The checkpoints describe the same data: a run from memory resumes from disk.
    fit["epochs"] += 1
    resumed = network(np.random.default_rng(init), features, classes, dtype, dropout)
    again = train(resumed, mapped, y, checkpoint_dir=tmp_path / "memory", resume=True, **fit)
    assert again.resumed_from is not None, msg
    assert len(again.history["loss"]) == fit["epochs"], msg


def test_a_memory_mapped_x_is_not_copied_into_memory(seeded, tmp_path):
    rng = seeded.rng
    rows, features = int(rng.integers(70_000, 90_000)), 256
    X = rng.standard_normal((rows, features)).astype("float32")
    y = (X[:, 0] > 0).astype(int)
    np.save(tmp_path / "X.npy", X)
    size = X.nbytes
    del X
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    model = nn.Sequential(nn.Dense(features, 8), nn.ReLU(), nn.Dense(8, 2))
    train(model, mapped[:300], y[:300], epochs=1)  # imports and compiled kernels: loaded
    tracemalloc.start()  # NumPy reports its arrays to it
    try:
        train(model, mapped, y, epochs=1, batch_size=256, validation_split=0.2, seed=1,
              checkpoint_dir=tmp_path / "ckpt")  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # A copy of the training rows alone would be 0.8 of X's size; what is held is index
    # lists (8 bytes a row), a few batches and 1 MiB blocks of the checkpoint's digest.
    assert peak < 0.25 * size, seeded.msg(f"peak {peak} bytes for an X of {size} bytes")


def test_a_non_finite_value_on_disk_is_named_by_row_and_column(seeded, tmp_path):
    rng = seeded.rng
    rows, features = int(rng.integers(1000, 30_000)), int(rng.integers(2, 100))
    X = rng.standard_normal((rows, features)).astype("float32")
    row, column = int(rng.integers(0, rows)), int(rng.integers(0, features))
    X[row, column] = rng.choice([np.nan, np.inf, -np.inf])
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    with pytest.raises(wxb.DataError, match=rf"X has .* at row {row}, column {column};"):
        train(nn.Sequential(nn.Dense(features, 2)), mapped, np.zeros(rows, int), epochs=1)


def test_a_memory_mapped_x_of_another_dtype_is_copied_with_a_warning(seeded, tmp_path):
    rng = seeded.rng
    X = rng.standard_normal((50, 3))  # float64 on disk, a float32 model
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    with pytest.warns(RuntimeWarning, match="copied into memory to convert it"):
        train(nn.Sequential(nn.Dense(3, 2)), mapped, rng.integers(0, 2, 50), epochs=1)
