"""wxb train, predict and eval on tables, where a path was silently off: categories only
held-out rows hold (all zeros, as predict takes them) said by train as predict says them;
predict and evaluate in eval mode as ``model.eval()`` sets it (a module's own ``train``
keeps its say, as in PyTorch); booleans in any case, and odd cells, read as pandas reads them."""

from __future__ import annotations

import re

from cli_run import run

import wxb


def test_train_says_which_held_out_categories_the_training_rows_lack(tmp_path, rng, capsys):
    # half the rows a colour of their own: the held-out ones among them are all zeros
    n = 60
    x = rng.normal(size=n)
    colour = rng.choice(["red", "blue"], size=n).astype(object)
    own = rng.choice(n, size=n // 2, replace=False)
    colour[own] = [f"shade{i}" for i in range(len(own))]
    y = x + (colour == "red")
    data = tmp_path / "t.csv"
    rows = (f"{a},{c},{b}\n" for a, c, b in zip(x, colour, y, strict=True))
    data.write_text("x,colour,y\n" + "".join(rows))
    model = tmp_path / "m.safetensors"
    code, out, err = run(capsys, "train", "--data", data, "--target", "y", "--hidden", "4",
                         "--epochs", "1", "-q", "-o", model)  # fmt: skip
    assert code == 0, err
    fit = int(re.search(r"; (\d+) train, ", out)[1])
    # the categories the model kept, from its file: the rows with others are the unseen
    known = set(wxb.load(str(model)).info["table"]["columns"][1]["categories"])
    unseen = [c for c in colour if c not in known]
    assert unseen and len(known) == 2 + len(own) - len(unseen), (known, unseen)
    (line,) = [line for line in err.splitlines() if "not seen in training" in line]
    assert line.startswith(f"wxb: warning: {data}'s validation and test rows: column 'colour': "
                           f"{len(unseen)} of {n - fit} rows"), line  # fmt: skip
    assert f"taken from the {fit} training rows" in line, line
    assert all(repr(c) in line for c in unseen[:3]) or "other value" in line, line
    # eval says the same rows of the whole file
    code, _, err = run(capsys, "eval", model, data)
    assert code == 0 and f"{len(unseen)} of {n} rows" in err, err
