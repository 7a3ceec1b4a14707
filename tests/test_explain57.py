"""explain57: the figures wxb's explain, summary and report pages show are the ones they
compute, checked against independent arithmetic."""

from __future__ import annotations

import math

import numpy as np

from wxb.reporting import dequantised, summarise


def _block_mean_grid(value: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    """Means of consecutive block[0] × block[1] slices, computed slice by slice."""
    rows, cols = value.shape
    br, bc = block
    return np.array(
        [
            [value[i : i + br, j : j + bc].mean() for j in range(0, cols, bc)]
            for i in range(0, rows, br)
        ]
    )


def test_a_heat_map_cell_is_the_mean_of_the_block_the_page_names(seeded):
    """A 100×3 δ on a 64-cell page was shown as 64×3 "block means (2×1 entries each)",
    its cells means of 1 or 2 rows in turn (linspace edges): cell (0, 0) was entry (0, 0)
    alone, and no reader could tell which rows a cell held. Each cell is now the mean of
    the block the page names, the last row and column of cells the rest (``last``)."""
    rng = seeded.rng
    cap = int(rng.integers(4, 12))
    # between cap and 2·cap rows, not a multiple of 2: blocks of 2, the last of 1
    rows = cap + 1 + 2 * int(rng.integers(0, (cap - 1) // 2))
    cols = int(rng.integers(2 * cap + 1, 4 * cap))
    value = rng.normal(size=(rows, cols)) * rng.uniform(0.1, 10)
    grid = summarise(value, cap=cap)["grid"]
    block = (math.ceil(rows / cap), math.ceil(cols / cap))
    expected = _block_mean_grid(value, block)
    msg = seeded.msg(f"{rows}×{cols} on {cap} cells a side")
    assert tuple(grid["block"]) == block, msg
    assert (grid["rows"], grid["cols"]) == expected.shape, msg
    assert grid["last"] == [rows - (expected.shape[0] - 1) * block[0],
                            cols - (expected.shape[1] - 1) * block[1]], msg  # fmt: skip
    tolerance = np.abs(expected).max() / 127 / 2 * (1 + 1e-9)  # int8 against max |cell|
    np.testing.assert_allclose(dequantised(grid), expected, rtol=0, atol=tolerance, err_msg=msg)

    # a vector past cap² entries: blocks of ``block`` entries in reading order
    n = cap * cap + 1 + int(rng.integers(0, cap * cap - 1))
    flat = rng.normal(size=n)
    grid = summarise(flat, cap=cap)["grid"]
    b = math.ceil(n / (cap * cap))
    expected = np.array([flat[k : k + b].mean() for k in range(0, n, b)])
    msg = seeded.msg(f"a vector of {n} on {cap} cells a side")
    assert grid["block"] == [1, b] and grid["last"] == [1, n - (len(expected) - 1) * b], msg
    shown = dequantised(grid).ravel()
    assert np.isnan(shown[len(expected) :]).all(), msg
    tolerance = np.abs(expected).max() / 127 / 2 * (1 + 1e-9)
    np.testing.assert_allclose(
        shown[: len(expected)], expected, rtol=0, atol=tolerance, err_msg=msg
    )
