"""explain57: the figures wxb's explain, summary and report pages show are the ones they
compute, checked against independent arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest

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


def test_a_summary_says_where_a_sequentials_widths_do_not_fit(seeded):
    """Sequential(Dense(3, 4), ReLU(), Dense(5, 2)) cannot run (its forward stops at
    dense2 with a ShapeError), yet its summary showed a clean table: dense2 (2,), 22
    FLOPs, no word of the mismatch. A layer handed rows of another width than it takes
    now has a line saying so, and its node in the architecture diagram; a model whose
    widths fit has none."""
    from wxb import describe
    from wxb.errors import DataError, ShapeError
    from wxb.nn import Dense, ReLU, Sequential, Standardize, Tanh
    from wxb.tensor import Tensor

    rng = seeded.rng
    n, h = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    off = h + int(rng.integers(1, 4)) * int(rng.choice([-1, 1]))
    off = off if off > 0 else h + 1
    kind = rng.choice(["dense", "standardize"])
    bad = Dense(off, 2) if kind == "dense" else Standardize(np.zeros(off), np.ones(off))
    inner = Sequential(bad, Tanh())  # nested: its path named
    model = Sequential(Dense(n, h), ReLU(), inner)
    msg = seeded.msg(f"{n}→{h} into {kind} taking {off}")
    with pytest.raises((ShapeError, DataError)):  # what the forward does with such rows
        model(Tensor(rng.normal(size=(3, n)).astype(np.float32)))
    lines = describe.summary(model).order_lines()
    said = [line for line in lines if "handed" in line]
    assert said == [
        f"sequential1.{bad.name or type(bad).__name__.lower() + '1'}: takes rows of {off} "
        f"features but is handed {h}: the forward stops there with an error; the figures "
        "from it on are those of rows that fit it"
    ], msg
    diagram = describe.architecture_diagram(model)  # drawn at its node too
    assert diagram.count(f"<br>handed {h} features: the forward stops here") == 1, msg
    fits = Sequential(Dense(n, h), ReLU(), Sequential(Dense(h, 2), Tanh()))
    assert "handed" not in describe.architecture_diagram(fits), msg
    # one Dense listed twice, n → h then handed its own h: its second listing says so
    if n != h:
        tied = Dense(n, h)
        lines = describe.summary(Sequential(tied, ReLU(), tied)).order_lines()
        assert [line.split(":")[0] for line in lines if "handed" in line] == ["dense1#2"], msg
    assert not [line for line in describe.summary(fits).order_lines() if "handed" in line], msg


def _report_js_function(name: str) -> str:
    import re
    from importlib import resources

    script = (resources.files("wxb") / "assets" / "report.js").read_text(encoding="utf-8")
    return re.search(rf"  function {name}\(.*?\n  \}}\n", script, re.S).group(0)


def test_the_pages_tips_say_which_entries_a_bar_and_a_cell_hold(seeded):
    """report.js, run by node on a summarised array: the histogram's last bar said
    '[lo, hi)' of the bin NumPy closes at hi, where the largest entry is counted; a
    heat-map of a shape its blocks do not divide said 'entries each' of its last cells
    too. Now ']' closes the last bar, and the last blocks' size is said."""
    import json
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("no node to run the report's script")
    rng = seeded.rng
    cap = int(rng.integers(3, 8))
    rows, cols = 2 * cap - 1, int(rng.integers(2, cap + 1))  # blocks of 2 rows, the last 1
    value = rng.normal(size=(rows, cols))
    step = {"name": "x", **summarise(value, cap=cap)}
    stubs = """
      var NS = 'svg';
      function node(name) { return { name, attrs: {}, kids: [], dataset: {}, style: {},
        setAttribute(k, v) { this.attrs[k] = v; }, appendChild(c) { this.kids.push(c); },
        addEventListener() {}, getContext() { return { createImageData(w, h) {
          return { data: new Array(4 * w * h) }; }, putImageData() {} }; } }; }
      var document = { createElementNS(ns, name) { return node(name); } };
      function hideTip() {}
    """
    code = (
        stubs
        + "".join(_report_js_function(f) for f in ("el", "fmt", "decode", "colour"))
        + _report_js_function("histogram")
        + _report_js_function("heatmap")
        + f"var step = {json.dumps(step)}; var svg = node(), canvas = node();"
        + "histogram(svg, step); heatmap(canvas, step);"
        + "console.log(JSON.stringify({bars: svg.kids.filter(k => k.name === 'rect')"
        + ".map(k => k.kids[0].textContent), title: canvas.title}));"
    )
    shown = subprocess.run([node, "-e", code], capture_output=True, text=True, check=False)
    assert shown.returncode == 0, shown.stderr[-2000:]
    page = json.loads(shown.stdout)
    msg = seeded.msg(f"{rows}×{cols} on {cap} cells a side")
    counts = step["histogram"]["counts"]
    assert [int(bar.split()[0]) for bar in page["bars"]] == counts, msg
    assert all(bar.endswith(")") for bar in page["bars"][:-1]), msg
    assert page["bars"][-1].endswith("]"), msg  # the largest entry is in the last bar
    assert (
        f"shown as {cap}×{cols} block means (2×1 entries each; the last 1×1)" in (page["title"])
    ), msg
