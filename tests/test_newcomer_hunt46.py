"""A newcomer's next steps after the README's examples: a report asked for one row of a
model trained on a file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from cli_run import FAST, run


def _table(rng: np.random.Generator, path: Path) -> Path:
    rows = int(rng.integers(40, 90))
    table = pd.DataFrame(rng.normal(size=(rows, 3)).round(3), columns=["a", "b", "c"])
    table["y"] = rng.choice(["x", "z"], size=rows)
    table.to_csv(path, index=False)
    return path


def test_report_refuses_a_row_it_has_no_data_for(tmp_path, capsys, seeded):
    """`wxb report iris.safetensors --sample 3` (a model trained on a file, no --data)
    wrote a page without a walk-through and exited 0, --sample ignored; --target alone
    was refused. Either one now asks for --data, and no page is written."""
    rng = seeded.rng
    data = _table(rng, tmp_path / "t.csv")
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", data, "--target", "y", *FAST, "-o", model)
    assert code == 0, err
    sample = int(rng.integers(1, 40))
    page = tmp_path / "r.html"
    for extra in (["--sample", sample], ["--sample", sample, "--target", "y"], ["--target", "y"]):
        code, out, err = run(capsys, "report", model, *extra, "--no-floor", "-o", page)
        assert code == 2 and out == "", seeded.msg(f"{extra}: {out}")
        assert err.startswith("wxb: error: ") and err.count("\n") == 1, err
        assert all(f"{o}" in err for o in extra if str(o).startswith("--")) and "--data" in err
        assert not page.exists()
    code, out, err = run(capsys, "report", model, "--sample", sample, "--data", data,
                         "--no-floor", "-o", page)  # fmt: skip
    assert code == 0 and f"row {sample} of" in out, seeded.msg(err)
