"""wxb train, predict and eval on tables, where a path was silently off: categories only
held-out rows hold (all zeros, as predict takes them) said by train as predict says them;
predict and evaluate in eval mode as ``model.eval()`` sets it (a module's own ``train``
keeps its say, as in PyTorch); booleans in any case, and odd cells, read as pandas reads them."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import torch
from cli_run import run

import wxb
from wxb import nn


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


def test_predict_and_evaluate_keep_a_modules_own_train_as_torch_eval_does(seeded, rng):
    """Monte Carlo dropout as PyTorch writes it: a Dropout whose train() keeps it on.
    model.eval() leaves it training in torch; predict and evaluate run in that mode."""

    class MCDropout(nn.Dropout):
        def train(self, mode=True):
            return super().train(True)

    class TorchMCDropout(torch.nn.Dropout):
        def train(self, mode=True):
            return super().train(True)

    p = float(rng.uniform(0.2, 0.6))
    twin = torch.nn.Sequential(torch.nn.Linear(4, 16), TorchMCDropout(p), torch.nn.Linear(16, 2))
    twin.eval()
    model = nn.Sequential(nn.Linear(4, 16), MCDropout(p), nn.Linear(16, 2))
    model.load_state_dict({k: v.numpy() for k, v in twin.state_dict().items()})
    model.eval()
    flags = [m.training for m in model.modules()]
    assert flags == [m.training for m in twin.modules()] == [False, False, True, False]
    X = rng.normal(size=(int(rng.integers(2, 40)), 4)).astype(np.float32)
    with torch.no_grad():
        varies = not torch.equal(twin(torch.tensor(X)), twin(torch.tensor(X)))
    assert varies, seeded.msg("torch's Monte Carlo dropout gave the same outputs twice")

    # predict draws masks as the model's own call under no_grad does, and changes no flag
    wxb.manual_seed(seeded.wxb_seed)
    got = model.predict(X)
    wxb.manual_seed(seeded.wxb_seed)
    with wxb.no_grad():
        called = model(X).data
    np.testing.assert_array_equal(got, called, err_msg=seeded.msg("predict vs model(X)"))
    assert not np.array_equal(got, model.predict(X)), seeded.msg("predict gave one draw twice")
    assert [m.training for m in model.modules()] == flags
    # each dropped unit 0, each kept scaled by 1/(1 − p): torch's values
    alone = nn.Sequential(MCDropout(p)).eval().predict(np.ones((64, 8), np.float32))
    with torch.no_grad():
        expected = torch.unique(TorchMCDropout(p).eval()(torch.ones(64, 8))).numpy()
    np.testing.assert_allclose(np.unique(alone), expected, rtol=1e-6)

    y = rng.normal(size=(len(X), 2)).astype(np.float32)
    losses = {wxb.evaluate(model, X, y, loss="mse")["loss"] for _ in range(3)}
    assert len(losses) > 1, seeded.msg("evaluate ran without the kept-on dropout")

    # a stock Dropout, a model left in training mode: eval mode, torch's eval outputs
    stock = nn.Sequential(nn.Linear(4, 16), nn.Dropout(p), nn.Linear(16, 2))
    stock.load_state_dict(model.state_dict())
    stock.train()
    plain = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(p), torch.nn.Linear(16, 2))
    plain.load_state_dict(twin.state_dict())
    with torch.no_grad():
        expected = plain.eval()(torch.tensor(X)).numpy()
    np.testing.assert_allclose(stock.predict(X), expected, rtol=1e-5, atol=1e-6)
    assert stock.training


def write_table(path, header, rows):
    path.write_text(header + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows))
    return path


TINY = ("--hidden", "4", "--epochs", "1", "-q")


def test_numbers_with_odd_cells_are_no_row_identifier(tmp_path, rng, capsys):
    """A price column with more than a tenth of its cells written '57.58 kg' or '$57.58'
    is text, each row's its own: it was taken as a row identifier and left out of the
    features (pandas reads it as text, no identifier); now refused in one line. Codes of
    whole numbers with a few suffixes stay an identifier."""
    n = int(rng.integers(30, 60))
    x = rng.normal(size=n)
    price = (rng.choice(9900, size=n, replace=False) + 100) / 100  # each its own
    odd = rng.choice(n, size=n // 4, replace=False)
    for written in ("{:.2f} kg", "${:.2f}"):
        cells = [written.format(v) if i in odd else f"{v:.2f}" for i, v in enumerate(price)]
        data = write_table(tmp_path / "d.csv", "x,price,y", zip(x, cells, x, strict=True))
        code, _, err = run(capsys, "train", "--data", data, "--target", "y", *TINY,
                             "-o", tmp_path / "m.safetensors")  # fmt: skip
        assert code == 2 and len(err.splitlines()) == 1, (code, err)
        assert "column 'price'" in err and "--drop price" in err, err
        assert "row identifier" in err and "looks like" not in err, err
        code, _, err = run(capsys, "train", "--data", data, "--target", "y", "--drop", "price",
                           *TINY, "-o", tmp_path / "m.safetensors")  # fmt: skip
        assert code == 0, err
    codes = [f"{1000 + i}b" if i in odd else str(1000 + i) for i in range(n)]
    data = write_table(tmp_path / "c.csv", "code,x,y", zip(codes, x, x, strict=True))
    code, _, err = run(capsys, "train", "--data", data, "--target", "y", *TINY,
                       "-o", tmp_path / "m.safetensors")  # fmt: skip
    assert code == 0 and "column 'code' looks like a row identifier" in err, err


def test_truth_values_written_otherwise_are_named_as_such(tmp_path, rng, capsys):
    """'no' where a model's boolean column is read, or among 0/1 cells: a truth value,
    not a missing value to add to --na-values as the line said; 'tRuE' is a boolean (as
    pandas reads it); classes and categories differing only by case are said."""
    n = 40
    x = rng.normal(size=n)
    flag = rng.choice(["tRuE", "FALSE", "true", "False"], size=n)
    truth = np.char.lower(flag.astype(str)) == "true"
    answer = rng.choice(["Yes", "yes", "no"], size=n)
    answer[:3] = ["Yes", "yes", "no"]
    data = write_table(tmp_path / "t.csv", "x,flag,answer,label",
                       zip(x, flag, answer, answer, strict=True))  # fmt: skip
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", data, "--target", "label", *TINY, "-o", model)
    assert code == 0, err
    rules = {rule["name"]: rule for rule in wxb.load(str(model)).info["table"]["columns"]}
    assert rules["flag"]["kind"] == "bool", rules  # as pandas: a bool column
    for what in ("target 'label': classes", "column 'answer': categories"):
        (line,) = [line for line in err.splitlines() if what in line]
        assert "differ only by case: 'Yes'/'yes'" in line, line
    # the same truths written as pandas writes them: the same model, the same outputs
    plain = write_table(tmp_path / "p.csv", "x,flag,answer,label",
                        zip(x, truth, answer, answer, strict=True))  # fmt: skip
    again = tmp_path / "again.safetensors"
    code, _, err = run(capsys, "train", "--data", plain, "--target", "label", *TINY, "-o", again)
    assert code == 0, err
    np.testing.assert_array_equal(wxb.load(str(model)).predict(np.ones((1, 5))),
                                  wxb.load(str(again)).predict(np.ones((1, 5))))  # fmt: skip

    given = str(rng.choice(["no", "Yes", "N", "off"]))
    new = write_table(tmp_path / "new.csv", "x,flag,answer", [(0.5, given, "no")])
    code, _, err = run(capsys, "predict", model, new)
    expected = "true" if given.lower() in ("yes", "y") else "false"
    assert code == 2 and f"{given!r} is text" in err and f"write it as {expected}" in err, err
    assert "--na-values" not in err, err

    zero_one = rng.choice(["0", "1"], size=n).astype(object)
    zero_one[int(rng.integers(n))] = given
    data = write_table(tmp_path / "z.csv", "x,flag,y", zip(x, zero_one, x, strict=True))
    code, _, err = run(capsys, "train", "--data", data, "--target", "y", *TINY, "-o", model)
    assert code == 2 and f"{given!r} is not a number" in err, err
    assert "write the column's all as 0/1 or true/false" in err and "--na-values" not in err, err


def messy_table(rng, n: int) -> tuple[bytes, dict[str, bool]]:
    """A CSV as exports write them, each mess drawn: a byte-order mark, CRLF, separators
    and quotes inside quoted cells, blanks, numbers among a text column's words, and
    class names in other scripts (one with the separator inside)."""
    mess = {k: bool(rng.random() < 0.5) for k in ("bom", "crlf", "quoted", "blanks", "mixed")}
    mess["unicode"] = bool(rng.random() < 0.5)
    x = [f"{v:.4f}" for v in rng.normal(size=n)]
    z = [f"{v:.2f}" for v in rng.uniform(0, 10, n)]
    words = ["red", "blue, dark", 'say "hi"'] if mess["quoted"] else ["red", "blue"]
    colour = list(rng.choice(words, n))
    if mess["mixed"]:
        for i in rng.choice(n, n // 3, replace=False):
            colour[i] = str(rng.integers(0, 4))
    if mess["blanks"]:
        for i in rng.choice(n, n // 6, replace=False):
            x[i] = ""
        for i in rng.choice(n, n // 8, replace=False):
            colour[i] = ""
    names = ["café", "日本", "naïve 🙂", "a,b"] if mess["unicode"] else ["p", "q", "r"]
    label = rng.choice(names, n)

    def cell(text: str) -> str:
        return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"') else text

    rows = ["x,z,colour,label"] + [
        ",".join([a, b, cell(c), cell(d)]) for a, b, c, d in zip(x, z, colour, label, strict=True)
    ]
    newline = "\r\n" if mess["crlf"] else "\n"
    text = ("\ufeff" if mess["bom"] else "") + newline.join(rows) + newline
    return text.encode("utf-8"), mess


def test_messy_tables_train_and_predict_as_pandas_reads_them(tmp_path, rng, capsys):
    """A messy CSV trains the model its pandas reading, written back plain, trains (same
    seed: the same outputs for every row, by class name); eval reads it too. What pandas
    reads otherwise (a repeated or blank-ended header, a row too wide) stops in one line."""
    n = int(rng.integers(30, 50))
    raw, mess = messy_table(rng, n)
    messy = tmp_path / "messy.csv"
    messy.write_bytes(raw)
    plain = tmp_path / "plain.csv"
    pd.read_csv(messy).to_csv(plain, index=False)
    options = ("--target", "label", "--hidden", "4", "--epochs", "2", "-q", "--seed", "3")
    outputs = []
    for data in (messy, plain):
        model = tmp_path / f"{data.stem}.safetensors"
        code, _, err = run(capsys, "train", "--data", data, *options, "-o", model)
        assert code == 0, (mess, err)
        code, out, err = run(capsys, "predict", model, data, "--proba")
        assert code == 0, (mess, err)
        outputs.append(pd.read_csv(io.StringIO(out)))
    got, expected = outputs
    assert list(got.columns) == list(expected.columns), mess
    np.testing.assert_array_equal(got.to_numpy(), expected.to_numpy(), err_msg=str(mess))
    code, out, err = run(capsys, "eval", tmp_path / "messy.safetensors", messy)
    assert code == 0 and "accuracy" in out, (mess, err)

    lines = raw.decode("utf-8-sig").splitlines()
    broken = {  # (pandas: 'x.1'; an error; an empty column, 'Unnamed: 4', each time)
        "repeated: 'x'": ["x,x,colour,label", *lines[1:]],
        "line 4: 6 values but the header has 4": [*lines[:3], lines[3] + ",7,8", *lines[4:]],
        "the header ends with a ','": [lines[0] + ",", *lines[1:]],
        "each line ends with a separator": [line + "," for line in lines],
    }
    for said, rows in broken.items():
        path = tmp_path / "broken.csv"
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
        code, _, err = run(capsys, "train", "--data", path, *options, "-o", tmp_path / "b.sft")
        assert code == 2 and len(err.splitlines()) == 1 and said in err, (mess, err)
