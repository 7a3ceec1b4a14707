"""Writes examples/wine.csv: scikit-learn's wine data as a messy table of the kind people
have (an ID column, cultivar names, a text column, gaps marked three ways, semicolons with
decimal commas, a comment line). The README's "Your own table" walks through it.

    python examples/make_wine_table.py     # needs scikit-learn (and pandas, for as_frame)
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_wine

rng = np.random.default_rng(2026)
frame = load_wine(as_frame=True).frame
frame = frame[["alcohol", "malic_acid", "color_intensity", "hue", "proline", "target"]]
frame.insert(0, "bottle_id", np.arange(5001, 5001 + len(frame)))  # sorted by class: a trap
frame["cultivar"] = np.array(["Barbera", "Grignolino", "Nebbiolo d'Alba, Piedmont"])[
    frame.pop("target")
]
frame["cellar"] = rng.choice(["north", "south", "east"], size=len(frame))
frame["organic"] = rng.random(len(frame)) < 0.3
frame = frame.astype(object)
for column, marker in (("malic_acid", "NA"), ("hue", "?"), ("cellar", "")):
    frame.loc[rng.choice(len(frame), 12, replace=False), column] = marker
frame.loc[rng.choice(len(frame), 3, replace=False), "cultivar"] = "NA"
path = Path(__file__).with_name("wine.csv")
text = frame.to_csv(index=False, sep=";", decimal=",")
text = text.replace(".", ",")  # decimal commas in the object columns too
path.write_text("# wine cultivars, after scikit-learn's load_wine\n" + text, encoding="utf-8")
print(f"wrote {path} ({len(frame)} rows)")
