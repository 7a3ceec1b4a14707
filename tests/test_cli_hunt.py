"""Messy tables through the command line (a hunt of the CLI and its reading): each case is
read as a person means it, or said plainly; never a silently wrong number or label.
Inputs are drawn fresh each run; expected values come from the data or from pandas."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
from cli_run import FAST, run

from wxb.tables import read_table


def test_decimal_commas_after_a_space_after_each_semicolon_are_numbers(tmp_path, rng):
    # 'id; price; qty': the only fractions sit after '; ', which the sniffing missed, so
    # price was read as text and one-hot encoded without a word
    n = 40
    price = rng.integers(100, 9999, n) / 100
    lines = ["id; price; qty"] + [
        f"{i}; {p:.2f}; {q}".replace(".", ",")
        for i, (p, q) in enumerate(zip(price, rng.integers(1, 9, n), strict=True))
    ]
    (tmp_path / "p.csv").write_text("\n".join(lines) + "\n")
    expected = pd.read_csv(tmp_path / "p.csv", sep=";", decimal=",", skipinitialspace=True)
    table = read_table(tmp_path / "p.csv")
    assert table["price"].kind == "number"
    np.testing.assert_array_equal(table["price"].values, expected["price"].to_numpy())


def test_a_column_of_decimal_commas_in_a_comma_file_is_said_to_be_text(tmp_path, rng, capsys):
    # '"0,13"' quoted in a ',' file: text, as pandas reads it; it was one-hot encoded in
    # silence (a few such cells are refused, most said; all of them were said nothing of)
    n = 60
    x = rng.normal(size=n)
    with (tmp_path / "c.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["x", "y"])
        writer.writerows([f"{v:.2f}".replace(".", ","), "pos" if v > 0 else "neg"] for v in x)
    assert not pd.api.types.is_numeric_dtype(pd.read_csv(tmp_path / "c.csv")["x"])  # pandas: text
    code, _, err = run(capsys, "train", "--data", tmp_path / "c.csv", "--target", "y", *FAST,
                       "-o", tmp_path / "m.safetensors")  # fmt: skip
    assert code == 0, err
    assert "'x' is read as text" in err and "decimal comma" in err and "--decimal ," in err
