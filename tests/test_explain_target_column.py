"""wxb explain and wxb report on a model without feature names (built in Python) read
every column of --data but the target, as wxb eval does. They passed the target column
to the network too: 'N features but the model takes N−1', 'column label: text', or —
where the widths happened to match — a walk-through of a row with its label as an input.
The reference: the loss of that row computed with NumPy from the model's weights."""

from __future__ import annotations

import re

import numpy as np
from cli_run import run

import wxb
from wxb import nn


def test_explain_reads_the_row_without_its_target_column(capsys, rng, tmp_path):
    n_in, hidden, classes = (
        int(rng.integers(2, 5)),
        int(rng.integers(2, 6)),
        int(rng.integers(2, 4)),
    )
    model = nn.Sequential(nn.Dense(n_in, hidden), nn.Tanh(), nn.Dense(hidden, classes))
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    names = [f"c{k}" for k in rng.permutation(10)[:classes]]  # text labels
    model.info.update(classes=names, loss="cross_entropy")
    path = tmp_path / "model.safetensors"
    wxb.save(model, path)
    rows = int(rng.integers(3, 8))
    X = rng.standard_normal((rows, n_in)).round(4)
    y = rng.integers(0, classes, rows)
    where = int(rng.integers(0, n_in + 1))  # the target's column: anywhere, not only last
    header = [f"x{j}" for j in range(n_in)]
    header.insert(where, "label")
    lines = [",".join(header)]
    for r in range(rows):
        cells = [f"{v:.4f}" for v in X[r]]
        cells.insert(where, names[y[r]])
        lines.append(",".join(cells))
    data = tmp_path / "rows.csv"
    data.write_text("\n".join(lines) + "\n")
    sample = int(rng.integers(0, rows))

    code, out, err = run(capsys, "explain", path, "--data", data, "--target", "label",
                         "--sample", sample)  # fmt: skip
    assert code == 0, err
    shown = float(re.search(r"L = .* = (\S+)\n", out).group(1))
    (w1, b1), (w2, b2) = [(d.weight.data, d.bias.data) for d in (model[0], model[2])]
    z = w2.astype(np.float64) @ np.tanh(w1 @ X[sample] + b1) + b2
    expected = np.log(np.exp(z - z.max()).sum()) + z.max() - z[y[sample]]
    assert abs(shown - expected) <= 1e-5 * max(1.0, abs(expected)), (shown, expected, out)

    code, out, err = run(capsys, "report", path, "--data", data, "--target", "label",
                         "--sample", sample, "--no-floor", "-o", tmp_path / "r.html")  # fmt: skip
    assert code == 0, err
