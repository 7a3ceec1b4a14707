"""What the docs and --help texts say, run as a user would run it: options that take
columns or markers given more than once (as --target is), and eval's data named twice."""

from __future__ import annotations

import numpy as np
import pandas as pd
from cli_run import FAST, run

import wxb


def _table(rng: np.random.Generator, n_features: int) -> pd.DataFrame:
    rows = int(rng.integers(40, 80))
    names = [f"c{i}_{rng.integers(100)}" for i in range(n_features)]
    table = pd.DataFrame(rng.normal(size=(rows, n_features)).round(3), columns=names)
    table["y"] = rng.integers(0, 2, size=rows)
    return table


def test_drop_and_features_given_twice_take_every_column_named(tmp_path, capsys, seeded):
    """`--drop a --drop b` kept only the last one's columns (argparse's last-one-wins):
    the network trained on column a, which the user had dropped, without a word."""
    rng = seeded.rng
    table = _table(rng, int(rng.integers(4, 8)))
    data = tmp_path / "t.csv"
    table.to_csv(data, index=False)
    columns = [c for c in table.columns if c != "y"]
    for option in ("--drop", "--features"):
        chosen = list(rng.choice(columns, size=int(rng.integers(2, len(columns))), replace=False))
        halves = [chosen[: len(chosen) // 2], chosen[len(chosen) // 2 :]]
        model = tmp_path / f"{option[2:]}.safetensors"
        repeated = [a for half in halves for a in (option, ",".join(half))]
        code, _, err = run(capsys, "train", "--data", data, "--target", "y", *repeated,
                           *FAST, "-o", model)  # fmt: skip
        assert code == 0, err
        # --features in the order given, as the comma-separated list keeps it
        expected = chosen if option == "--features" else [c for c in columns if c not in chosen]
        assert wxb.load(model).info["feature_names"] == expected, seeded.msg(option)


def test_na_values_given_twice_are_all_missing_markers(tmp_path, capsys, seeded):
    """`--na-values n.a. --na-values unk` kept only 'unk': 'n.a.' then stopped the run as a
    word in a column of numbers. Repeated, they must read as the comma-separated list."""
    rng = seeded.rng
    table = _table(rng, 3)
    column = table.columns[int(rng.integers(0, 3))]
    cells = table[column].astype(object)
    gaps = rng.choice(len(table), size=6, replace=False)
    cells.iloc[gaps[:3]], cells.iloc[gaps[3:]] = "n.a.", "unk"
    table[column] = cells
    data = tmp_path / "t.csv"
    table.to_csv(data, index=False)
    models, seed = [], int(rng.integers(1000))
    for markers in (["--na-values", "n.a.", "--na-values", "unk"], ["--na-values", "n.a.,unk"]):
        models.append(tmp_path / f"m{len(models)}.safetensors")
        code, _, err = run(capsys, "train", "--data", data, "--target", "y", *markers,
                           *FAST, "--seed", seed, "-o", models[-1])  # fmt: skip
        assert code == 0, seeded.msg(err)
    repeated, listed = (wxb.load(m) for m in models)
    assert repeated.info["table"] == listed.info["table"], seeded.msg("table stage")
    for key, value in listed.state_dict().items():
        np.testing.assert_array_equal(repeated.state_dict()[key], value, err_msg=seeded.msg(key))


def test_eval_refuses_two_different_tables(tmp_path, capsys, seeded):
    """`wxb eval MODEL a.csv --data b.csv` scored a.csv and ignored b.csv without a word
    (the help says --data is the same as DATA)."""
    rng = seeded.rng
    table = _table(rng, 3)
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    table.to_csv(first, index=False)
    table.sample(frac=0.5, random_state=int(rng.integers(1000))).to_csv(second, index=False)
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", first, "--target", "y", *FAST, "-o", model)
    assert code == 0, err
    code, out, err = run(capsys, "eval", model, first, "--data", second)
    assert code == 2 and out == "", seeded.msg(out)
    assert err.count("\n") == 1 and "a.csv" in err and "b.csv" in err, err
    code, out, err = run(capsys, "eval", model, first, "--data", first)  # the same: fine
    assert code == 0, err


def test_explain_without_a_model_refuses_the_options_of_a_model(capsys, seeded):
    """`wxb explain --sample 3` printed the seed's examples and ignored --sample (only
    --data was refused): a user asking for row 3 got another text without a word."""
    rng = seeded.rng
    capsys.readouterr()  # (the fixture's line with the seed)
    options = {"--sample": int(rng.integers(1, 50)), "--rows": int(rng.integers(2, 9)),
               "--target": "y"}  # fmt: skip
    for name in rng.permutation(list(options)):
        code, out, err = run(capsys, "explain", name, options[name])
        assert code == 2 and out == "", seeded.msg(name)
        assert err.startswith("wxb: error: ") and name in err and err.count("\n") == 1, err
    code, out, _ = run(capsys, "explain")
    assert code == 0 and "seed's worked examples" in out
