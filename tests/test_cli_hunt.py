"""Messy tables through the command line (a hunt of the CLI and its reading): each case is
read as a person means it, or said plainly; never a silently wrong number or label.
Inputs are drawn fresh each run; expected values come from the data or from pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
