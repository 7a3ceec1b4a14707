"""Messy tables, generated afresh each run: each works as a person means it, or stops with
one line (``wxb: error: …``, status 2); never a silently wrong model or prediction.

Every expected value is derived here, from the generated data (by construction or with
pandas), never copied from a run. A failure names its seed (``WXB_TEST_SEED`` replays it).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import wxb
from wxb.cli import main
from wxb.columns import TableEncoder
from wxb.nn.module import output_width
from wxb.tables import from_object, read_table, text_as_numbers

FAST = ("--hidden", "8", "--epochs", "5", "-q")
MARKERS = ("NA", "?", "", "nan")  # missing, as people write it
LABELS = np.array(["alpha", "beta", "gamma"])


# ---------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------
def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, err, pattern, why):
    assert code == 2, why(f"exit status {code}, stderr {err!r}")
    assert err.startswith("wxb: error: ") and err.count("\n") == 1, why(f"stderr {err!r}")
    assert "Traceback" not in err, why(err)
    assert re.search(pattern, err), why(f"{pattern!r} not in {err!r}")


def train(capsys, seeded, data, *extra, model=None):
    """wxb train on ``data``; the model path, stdout and stderr."""
    model = model or Path(data).with_name("model.safetensors")
    code, out, err = run_cli(capsys, "train", "--data", data, *FAST, "-o", model, *extra)
    assert code == 0, seeded.msg(f"wxb train {extra} exited {code}: {err}")
    return model, out, err


def write_rows(path: Path, header, rows, encoding="utf-8") -> Path:
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_columns(path: Path, columns: dict) -> Path:
    """A CSV of equal-length columns of cells, by name."""
    return write_rows(path, list(columns), zip(*columns.values(), strict=True))


def number(value) -> str:
    """A CSV cell that reads back as exactly ``value``."""
    return repr(float(value))


def blobs(rng, n, labels=LABELS, width=3):
    """``width`` float features around one centre per label (each label ≥ 5 rows)."""
    y = np.concatenate([np.repeat(labels, 5), rng.choice(labels, size=n - 5 * len(labels))])
    y = y[rng.permutation(n)]
    centres = rng.normal(scale=3, size=(len(labels), width))
    index = np.searchsorted(np.sort(labels), y)
    return centres[index] + rng.normal(size=(n, width)), y


def some_rows(rng, n, count):
    return np.sort(rng.choice(n, size=count, replace=False))


def markers_for(rng, count):
    """``count`` missing-value markers, each of MARKERS at least once (count ≥ 4)."""
    extra = rng.choice(MARKERS, size=count - len(MARKERS)).tolist()
    cells = [*MARKERS, *extra]
    rng.shuffle(cells)
    return cells


def classes_of(model, frame) -> list:
    """What the model predicts for the rows of ``frame`` (Python predict, by name)."""
    classes = model.info["classes"]
    return [classes[k] for k in model.predict(frame).argmax(axis=1)]


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------
# 1. Identifier columns
# ---------------------------------------------------------------------------------
def id_values(kind, rng, n):
    if kind == "consecutive":  # 1000, 1001, … on a class-sorted file
        start = int(rng.integers(0, 10**6))
        return np.arange(start, start + n)
    if kind == "text":
        return np.array([f"row-{i:04d}" for i in range(1, n + 1)])
    counts = rng.integers(1, 4, size=n)  # whole numbers in order, some repeated
    counts[0] = 2
    start = int(rng.integers(0, 500))
    return np.repeat(np.arange(start, start + n), counts)[:n]


def id_frame(rng, kind, name):
    n = int(rng.integers(60, 200))
    X, y = blobs(rng, n)
    order = np.argsort(y, kind="stable")  # a file sorted by class
    X, y = X[order], y[order]
    frame = pd.DataFrame({name: id_values(kind, rng, n)})
    for j in range(X.shape[1]):
        frame[f"f{j}"] = X[:, j]
    frame["score"] = rng.normal(size=n)  # continuous, unique per row: a feature
    frame["label"] = y
    return frame


def id_warnings(err, name):
    """Lines of ``err`` that say column ``name`` is left out as an identifier."""
    return [line for line in err.splitlines() if f"'{name}'" in line and "--id-column" in line]


@pytest.mark.parametrize("kind", ["consecutive", "text", "ordered_with_repeats", "with_a_gap"])
def test_an_id_column_is_not_a_feature_and_train_says_so(tmp_path, seeded, capsys, kind):
    rng = seeded.rng
    name = str(rng.choice(["id", "row", "key", "ref", "number"]))
    frame = id_frame(rng, "consecutive" if kind == "with_a_gap" else kind, name)
    if kind == "with_a_gap":  # one blank cell does not hide an identifier
        frame[name] = frame[name].astype("Int64")
        frame.loc[int(rng.integers(0, len(frame))), name] = pd.NA
    assert frame[name].dropna().is_monotonic_increasing
    if kind == "ordered_with_repeats":
        assert frame[name].duplicated().any()
    data = tmp_path / "sorted.csv"
    frame.to_csv(data, index=False)
    model, _, err = train(capsys, seeded, data, "--target", "label")
    features = [c for c in frame.columns if c not in (name, "label")]
    info = wxb.load(model).info
    assert info["feature_names"] == features, seeded.msg(f"{info['feature_names']}; {err}")
    assert name not in TableEncoder.from_json(info["table"]).columns
    said = id_warnings(err, name)
    assert len(said) == 1 and said[0].startswith("wxb: warning: "), seeded.msg(err)
    for hint in ("--features", f"--id-column {name}", f"--drop {name}"):
        assert hint in said[0], seeded.msg(f"{hint!r} not in {said[0]!r}")
    assert "'score'" not in err, seeded.msg(f"a float column was flagged: {err}")

    # --features keeps it (and says nothing), --drop silences it
    model, _, err = train(capsys, seeded, data, "--target", "label", "--features", f"{name},f0")
    assert wxb.load(model).info["feature_names"] == [name, "f0"]
    assert not id_warnings(err, name), seeded.msg(err)  # (a text one may warn of its width)
    model, _, err = train(capsys, seeded, data, "--target", "label", "--drop", name)
    assert wxb.load(model).info["feature_names"] == features
    assert f"'{name}'" not in err, seeded.msg(err)


@pytest.mark.parametrize("kind", ["consecutive", "text", "ordered_with_repeats"])
def test_id_column_is_carried_beside_each_prediction_in_input_order(tmp_path, seeded, capsys, kind):
    rng = seeded.rng
    name = "id"
    frame = id_frame(rng, kind, name)
    data = tmp_path / "train.csv"
    frame.to_csv(data, index=False)
    model_path, _, err = train(capsys, seeded, data, "--target", "label", "--id-column", name)
    assert f"'{name}'" not in err, seeded.msg(f"warned about the named --id-column: {err}")
    model = wxb.load(model_path)
    assert model.info["feature_names"] == ["f0", "f1", "f2", "score"]
    assert model.info["id_column"] == name
    assert name not in TableEncoder.from_json(model.info["table"]).columns

    new = frame.drop(columns="label").iloc[rng.permutation(len(frame))]  # rows in another order
    new_path, out_path = tmp_path / "new.csv", tmp_path / "pred.csv"
    new.to_csv(new_path, index=False)
    code, _, err = run_cli(capsys, "predict", model_path, new_path, "-o", out_path)
    assert code == 0, seeded.msg(err)
    written = pd.read_csv(out_path, dtype=str, keep_default_na=False)
    assert list(written.columns) == [name, "prediction"], seeded.msg(str(written.columns))
    assert written[name].tolist() == new[name].astype(str).tolist(), seeded.msg("ids out of order")
    expected = classes_of(model, new.drop(columns=name))
    assert written["prediction"].tolist() == expected, seeded.msg("predictions differ")

    other = new.assign(**{name: new[name].to_numpy()[::-1]})  # other ids: same predictions
    other.to_csv(new_path, index=False)
    code, _, err = run_cli(capsys, "predict", model_path, new_path, "-o", out_path)
    assert code == 0, seeded.msg(err)
    again = pd.read_csv(out_path, dtype=str, keep_default_na=False)
    assert again[name].tolist() == other[name].astype(str).tolist()
    assert again["prediction"].tolist() == expected, seeded.msg("the id changed a prediction")


# ---------------------------------------------------------------------------------
# 2. A repeated header name
# ---------------------------------------------------------------------------------
def test_a_repeated_column_name_is_one_line_naming_it_and_its_positions(tmp_path, seeded, capsys):
    rng = seeded.rng
    k = int(rng.integers(3, 7))
    header = [f"c{j}" for j in range(k)] + ["y"]
    i, j = sorted(int(p) for p in rng.choice(k, size=2, replace=False))
    header[j] = header[i]
    n = int(rng.integers(20, 60))
    rows = [[*map(number, rng.normal(size=k)), str(rng.choice(LABELS))] for _ in range(n)]
    data = write_rows(tmp_path / "dup.csv", header, rows)
    model = tmp_path / "m.safetensors"
    code, _, err = run_cli(capsys, "train", "--data", data, "--target", "y", *FAST, "-o", model)
    where = re.escape(f"'{header[i]}' (columns {i + 1}, {j + 1})")
    assert_one_line_error(code, err, where, seeded.msg)
    assert not model.exists()
    with pytest.raises(wxb.DataError, match=where):
        from_object(pd.DataFrame(rows, columns=header))


# ---------------------------------------------------------------------------------
# 3. Missing targets: rows dropped with a count, never a class
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["text", "numbers", "whole_numbers"])
def test_rows_without_a_target_are_dropped_and_counted(tmp_path, seeded, capsys, kind):
    rng = seeded.rng
    n = int(rng.integers(80, 200))
    X, labels = blobs(rng, n)
    if kind == "text":
        y = labels.astype(object)
    elif kind == "numbers":
        y = np.array([number(v) for v in X @ rng.normal(size=3) + rng.normal(size=n)], dtype=object)
    else:
        y = np.array([str(k) for k in np.searchsorted(LABELS, labels)], dtype=object)
    gone = some_rows(rng, n, int(rng.integers(4, 10)))
    y[gone] = markers_for(rng, len(gone))
    rows = [[*map(number, x), t] for x, t in zip(X, y, strict=True)]
    data = write_rows(tmp_path / "t.csv", ["a", "b", "c", "target"], rows)
    model_path, out, err = train(capsys, seeded, data, "--target", "target")
    kept = np.delete(y, gone)
    assert f"dropped {len(gone)} rows with no target" in out, seeded.msg(out)
    info = wxb.load(model_path).info
    if kind == "numbers":
        distinct = len(set(kept))
        assert info["task"] == "regression" and "classes" not in info, seeded.msg(str(info))
        assert f"task: regression ({distinct} distinct numbers)" in out, seeded.msg(out)
    elif kind == "text":
        assert info["classes"] == sorted(set(kept)), seeded.msg(str(info["classes"]))
        assert f"task: classification ({len(set(kept))} text labels)" in out, seeded.msg(out)
    else:
        assert info["classes"] == sorted(int(v) for v in set(kept)), seeded.msg(str(info))
        assert f"task: classification ({len(set(kept))} distinct whole numbers" in out
    assert not {"NA", "?", "", "nan", None} & set(info.get("classes", [])), seeded.msg(str(info))

    code, out, err = run_cli(capsys, "eval", model_path, data)
    assert code == 0, seeded.msg(err)
    assert f"dropped {len(gone)} rows with no target" in out, seeded.msg(out)
    assert f"{n - len(gone)} samples" in out, seeded.msg(out)


# ---------------------------------------------------------------------------------
# 4. Class names with commas and quotes through wxb predict -o
# ---------------------------------------------------------------------------------
def test_class_names_with_commas_and_quotes_round_trip_through_predict(tmp_path, seeded, capsys):
    rng = seeded.rng
    names = np.array(["Iris setosa, L.", 'say "hi"', "plain"])
    n = int(rng.integers(60, 150))
    X, y = blobs(rng, n, names)
    frame = pd.DataFrame(X, columns=["f0", "f1", "f2"]).assign(species=y)
    data = tmp_path / "names.csv"
    frame.to_csv(data, index=False)
    model_path, _, _ = train(capsys, seeded, data, "--target", "species")
    model = wxb.load(model_path)
    classes = sorted(names)
    assert model.info["classes"] == classes, seeded.msg(str(model.info["classes"]))

    features = frame.drop(columns="species")
    inputs, out_path = tmp_path / "in.csv", tmp_path / "out.csv"
    features.to_csv(inputs, index=False)
    code, _, err = run_cli(capsys, "predict", model_path, inputs, "-o", out_path, "--proba")
    assert code == 0, seeded.msg(err)
    written = pd.read_csv(out_path, keep_default_na=False)
    assert list(written.columns) == ["prediction", *(f"p_{c}" for c in classes)]
    assert set(written["prediction"]) <= set(names), seeded.msg(str(set(written["prediction"])))
    assert written["prediction"].tolist() == classes_of(model, features), seeded.msg("differ")
    p = softmax(model.predict(features).astype(np.float64))
    np.testing.assert_allclose(written.iloc[:, 1:].to_numpy(float), p, atol=1e-6)

    code, out, err = run_cli(capsys, "predict", model_path, inputs)  # to standard output
    assert code == 0, seeded.msg(err)
    printed = pd.read_csv(io.StringIO(out), keep_default_na=False)
    assert printed["prediction"].tolist() == written["prediction"].tolist()
    code, out, err = run_cli(capsys, "eval", model_path, data)  # the labels read back as classes
    assert code == 0, seeded.msg(err)


# ---------------------------------------------------------------------------------
# 5. DataFrames in Python: columns by name; pandas' own column types
# ---------------------------------------------------------------------------------
def test_python_predict_takes_a_dataframes_columns_by_name(tmp_path, seeded, capsys):
    rng = seeded.rng
    n = int(rng.integers(60, 150))
    X, y = blobs(rng, n, width=4)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    frame["colour"] = rng.choice(["red", "green", "blue"], size=n)
    frame["label"] = y
    data = tmp_path / "d.csv"
    frame.to_csv(data, index=False)
    model = wxb.load(train(capsys, seeded, data, "--target", "label")[0])
    features = frame.drop(columns="label")
    encoder = TableEncoder.from_json(model.info["table"])
    by_matrix = model.predict(encoder.transform(read_table(data), model.dtype))
    np.testing.assert_array_equal(model.predict(features), by_matrix, err_msg=seeded.msg(""))

    shuffled = features[list(rng.permutation(features.columns))]
    np.testing.assert_array_equal(model.predict(shuffled), by_matrix, err_msg=seeded.msg(""))
    extra = shuffled.assign(unused=rng.normal(size=n), notes="x")
    np.testing.assert_array_equal(model.predict(extra), by_matrix, err_msg=seeded.msg(""))
    gone = str(rng.choice(["a", "b", "c", "d", "colour"]))
    with pytest.raises(wxb.DataError, match=f"'{gone}'"):
        model.predict(shuffled.drop(columns=gone))


def nullable_frame(rng, n):
    """Mixed dtypes, pandas' nullable ones with <NA>, a category column."""
    words = np.array(["red", "green", "blue", "dark, red", 'say "x"'])

    def holes(k):
        return some_rows(rng, n, k)

    f = rng.normal(size=n)
    f[holes(3)] = np.nan
    i = pd.array(rng.integers(-50, 50, size=n), dtype="Int64")
    i[holes(3)] = pd.NA
    b = pd.array(rng.random(n) < 0.4, dtype="boolean")
    b[holes(3)] = pd.NA
    s = pd.array(rng.choice(words, size=n), dtype="string")
    s[holes(3)] = pd.NA
    c = pd.Categorical(rng.choice(words[:3], size=n))
    c[holes(2)] = np.nan
    return pd.DataFrame(
        {
            "f": f,
            "i": i,
            "b": b,
            "s": s,
            "c": c,
            "n": rng.integers(0, 9, size=n),  # plain int64
            "o": rng.choice(words, size=n).astype(object),  # plain object text
            "t": rng.random(n) < 0.5,  # plain bool
        }
    )


def test_pandas_nullable_columns_give_the_matrix_of_the_same_csv(tmp_path, seeded):
    rng = seeded.rng
    frame = nullable_frame(rng, int(rng.integers(60, 150)))
    path = tmp_path / "same.csv"
    frame.to_csv(path, index=False)
    from_csv, from_frame = read_table(path), from_object(frame)
    names = list(frame.columns)
    assert from_frame.names == names == from_csv.names
    for name in names:
        kinds = (from_frame[name].kind, from_csv[name].kind)
        assert kinds[0] == kinds[1], seeded.msg(f"column {name!r}: {kinds}")
        gaps = frame[name].isna().to_numpy()
        assert np.array_equal(from_frame[name].missing, gaps), seeded.msg(f"{name}: gaps")
        assert np.array_equal(from_csv[name].missing, gaps), seeded.msg(f"{name}: CSV gaps")
    encoder = TableEncoder.fit(from_csv, names)
    assert TableEncoder.fit(from_frame, names).to_json() == encoder.to_json()
    X_csv = encoder.transform(from_csv, np.float64)
    X_frame = encoder.transform(from_frame, np.float64)
    np.testing.assert_array_equal(X_frame, X_csv, err_msg=seeded.msg("matrices differ"))
    assert np.isfinite(X_frame).all()


# ---------------------------------------------------------------------------------
# 6. Training rows given to wxb eval
# ---------------------------------------------------------------------------------
def regression_frame(rng, n):
    X = rng.normal(size=(n, 3))
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["y"] = X @ rng.normal(size=3) + 0.1 * rng.normal(size=n)
    return frame


def test_eval_warns_when_given_training_rows_of_a_fingerprinted_model(tmp_path, seeded, capsys):
    rng = seeded.rng
    n = int(rng.integers(80, 200))
    frame = regression_frame(rng, n)
    data = tmp_path / "train.csv"
    frame.to_csv(data, index=False)
    model_path, out, _ = train(capsys, seeded, data, "--target", "y", "--fingerprint")
    counts = re.search(r"(\d+) train, (\d+) validation, (\d+) test", out)
    assert counts, seeded.msg(out)
    fit, val, test = map(int, counts.groups())
    assert fit + val + test == n and min(fit, val, test) > 0, seeded.msg(out)
    assert "training_rows" in wxb.load(model_path).info

    code, _, err = run_cli(capsys, "eval", model_path, data)
    assert code == 0, seeded.msg(err)
    # the rows fitted on and the validation rows early stopping used: all seen in training
    assert re.search(rf"\b{fit + val} of {n} rows .*rows it was trained on", err), seeded.msg(err)

    fresh = regression_frame(rng, int(rng.integers(20, 60)))
    fresh_path = tmp_path / "fresh.csv"
    fresh.to_csv(fresh_path, index=False)
    code, _, err = run_cli(capsys, "eval", model_path, fresh_path)
    assert code == 0 and "training rows" not in err, seeded.msg(err)

    mixed = pd.concat([fresh, frame]).iloc[rng.permutation(len(fresh) + n)]
    mixed.to_csv(fresh_path, index=False)
    code, _, err = run_cli(capsys, "eval", model_path, fresh_path)
    assert code == 0, seeded.msg(err)
    assert re.search(rf"\b{fit + val} of {len(mixed)} rows .*rows it was trained on", err), (
        seeded.msg(err)
    )

    plain, _, _ = train(capsys, seeded, data, "--target", "y", model=tmp_path / "plain.safetensors")
    assert "training_rows" not in wxb.load(plain).info
    code, _, err = run_cli(capsys, "eval", plain, data)
    assert code == 0 and "training rows" not in err, seeded.msg(err)


# ---------------------------------------------------------------------------------
# 7. Missing features, text and booleans: the table stage by construction
# ---------------------------------------------------------------------------------
def unique_mode(rng, values: np.ndarray, present: np.ndarray) -> str:
    """Make the most frequent present value unique (changing a cell per tie); return it."""
    cats, counts = np.unique(values[present], return_counts=True)
    winner = cats[np.argmax(counts)]
    for cat, count in zip(cats, counts, strict=True):
        if cat != winner and count == counts.max():
            row = np.flatnonzero(present & (values == cat))[0]
            values[row] = winner
    return str(winner)


def messy_features(rng, n, colours=("red", "green", "blue")):
    """Columns num (gaps), full (none), colour (text, gaps), flag (true/false, gaps):
    the cells as written, and what they mean."""
    num = rng.normal(size=n).round(3)
    num_gap = np.zeros(n, bool)
    num_gap[some_rows(rng, n, int(rng.integers(4, max(5, n // 4))))] = True
    full = rng.normal(size=n)
    colour = rng.choice(colours, size=n).astype(object)
    colour_gap = np.zeros(n, bool)
    colour_gap[some_rows(rng, n, int(rng.integers(4, max(5, n // 4))))] = True
    flag = rng.random(n) < rng.uniform(0.2, 0.8)
    flag_gap = np.zeros(n, bool)
    flag_gap[some_rows(rng, n, int(rng.integers(4, max(5, n // 4))))] = True
    return {
        "num": (num, num_gap),
        "full": (full, np.zeros(n, bool)),
        "colour": (colour, colour_gap),
        "flag": (flag, flag_gap),
    }


def cells(rng, columns):
    """The CSV cells: numbers as repr, booleans as true/false, gaps as mixed markers."""
    out = {}
    for name, (values, gap) in columns.items():
        if values.dtype == bool:
            text = np.where(values, "true", "false").astype(object)
        elif values.dtype.kind == "f":
            text = np.array([number(v) for v in values], dtype=object)
        else:
            text = values.astype(object).copy()
        if gap.any():
            text[gap] = markers_for(rng, int(gap.sum())) if gap.sum() >= 4 else "?"
        out[name] = text
    return out


def expected_matrix(rules, columns):
    """The table stage's matrix, by construction: median/mode fill, a 0/1 column where
    training had gaps, one-hot over the training categories (all 0 for an unseen one)."""
    parts = []
    for rule in rules:
        values, gap = columns[rule["name"]]
        if rule["kind"] == "text":
            filled = np.where(gap, rule["fill"], values)
            parts += [(filled == c).astype(float) for c in rule["categories"]]
        else:
            parts.append(np.where(gap, rule["fill"], values.astype(float)))
        if rule.get("indicator"):
            parts.append(gap.astype(float))
    return np.column_stack(parts)


def test_the_table_stage_fills_flags_and_one_hot_encodes_by_construction(
    tmp_path, seeded, monkeypatch
):
    rng = seeded.rng
    n = int(rng.integers(12, 40))
    columns = messy_features(rng, n)
    colour, colour_gap = columns["colour"]
    mode = unique_mode(rng, colour, ~colour_gap)
    flag, flag_gap = columns["flag"]
    if flag[~flag_gap].mean() == 0.5:  # no tie for the most frequent boolean
        flag[np.flatnonzero(~flag_gap & ~flag)[0]] = True
    written = cells(rng, columns)
    path = write_columns(tmp_path / "tiny.csv", written)
    table = read_table(path)
    for name, (_, gap) in columns.items():
        assert np.array_equal(table[name].missing, gap), seeded.msg(f"{name}: gaps misread")

    num, num_gap = columns["num"]
    categories = sorted(set(colour[~colour_gap]))
    rules = [
        {"name": "num", "kind": "number", "fill": pd.Series(num[~num_gap]).median(),
         "indicator": True},
        {"name": "full", "kind": "number", "fill": pd.Series(columns["full"][0]).median()},
        {"name": "colour", "kind": "text", "fill": mode, "indicator": True,
         "categories": categories},
        {"name": "flag", "kind": "bool", "fill": float(flag[~flag_gap].mean() > 0.5),
         "indicator": True},
    ]  # fmt: skip
    encoder = TableEncoder.fit(table, list(columns))
    assert encoder.outputs == [
        "num", "num missing", "full", *(f"colour={c}" for c in categories), "colour missing",
        "flag", "flag missing",
    ], seeded.msg(str(encoder.outputs))  # fmt: skip
    X = encoder.transform(table, np.float64)
    np.testing.assert_allclose(
        X, expected_matrix(rules, columns), rtol=1e-15, err_msg=seeded.msg("")
    )
    # in blocks of a few rows, the last one partial (a million rows: 4,096 a block)
    monkeypatch.setattr(TableEncoder, "BLOCK_ROWS", int(rng.integers(1, n)))
    blocks = encoder.transform(table, np.float32)
    np.testing.assert_array_equal(blocks, X.astype(np.float32), err_msg=seeded.msg("blocks"))
    monkeypatch.undo()

    # new rows: an unseen colour, gaps everywhere (also in 'full', which had none)
    m = int(rng.integers(8, 20))
    new = messy_features(rng, m, colours=("red", "green", "blue", "purple"))
    new["full"] = (new["full"][0], np.arange(m) % 3 == 0)
    new_cells = cells(rng, new)
    new_path = write_columns(tmp_path / "new.csv", new_cells)
    X_new = encoder.transform(read_table(new_path), np.float64)
    np.testing.assert_allclose(
        X_new, expected_matrix(rules, new), rtol=1e-15, err_msg=seeded.msg("new rows")
    )
    purple = new["colour"][0] == "purple"
    block = [j for j, name in enumerate(encoder.outputs) if name.startswith("colour=")]
    assert (X_new[np.ix_(purple & ~new["colour"][1], block)] == 0).all()

    # an indicator only where the training rows had gaps
    rows = np.flatnonzero(~num_gap)
    assert "num missing" not in TableEncoder.fit(table, ["num"], rows).outputs


def test_gaps_text_and_booleans_train_and_predict_through_the_cli(tmp_path, seeded, capsys):
    rng = seeded.rng
    n = int(rng.integers(100, 250))
    columns = messy_features(rng, n)
    X, y = blobs(rng, n, width=2)
    columns["num"] = (X[:, 0].round(3), columns["num"][1])
    columns["full"] = (X[:, 1], columns["full"][1])
    written = cells(rng, columns)
    written["label"] = y
    data = write_columns(tmp_path / "messy.csv", written)
    model_path, _, _ = train(capsys, seeded, data, "--target", "label")
    model = wxb.load(model_path)
    rules = TableEncoder.from_json(model.info["table"]).to_json()["columns"]
    assert [r["name"] for r in rules] == ["num", "full", "colour", "flag"]
    assert [r["kind"] for r in rules] == ["number", "number", "text", "bool"]
    assert set(rules[2]["categories"]) <= {"red", "green", "blue"}

    m = int(rng.integers(10, 30))
    new = messy_features(rng, m, colours=("red", "green", "blue", "purple"))
    new["full"] = (new["full"][0], np.arange(m) % 4 == 1)
    new_cells = cells(rng, new)
    new_path = write_columns(tmp_path / "new.csv", new_cells)
    out_path = tmp_path / "pred.csv"
    code, _, err = run_cli(capsys, "predict", model_path, new_path, "-o", out_path)
    assert code == 0, seeded.msg(err)
    expected_X = expected_matrix(rules, new).astype(model.dtype)
    expected = [model.info["classes"][k] for k in model.predict(expected_X).argmax(axis=1)]
    written_back = pd.read_csv(out_path, keep_default_na=False)["prediction"].tolist()
    assert written_back == expected, seeded.msg("wxb predict differs from the table stage")


# ---------------------------------------------------------------------------------
# 8. Dates
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["date", "datetime", "parquet"])
def test_a_date_column_is_one_line_with_a_hint(tmp_path, seeded, capsys, form):
    rng = seeded.rng
    n = int(rng.integers(40, 120))
    X, y = blobs(rng, n)
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(label=y)
    when = pd.Timestamp("2001-01-01") + pd.to_timedelta(rng.integers(0, 10**8, size=n), unit="s")
    name = str(rng.choice(["when", "date", "signup"]))
    frame.insert(int(rng.integers(0, 4)), name, when)
    if form == "parquet":
        data = tmp_path / "d.parquet"
        frame.to_parquet(data)
    else:
        data = tmp_path / "d.csv"
        pattern = "%Y-%m-%d" if form == "date" else "%Y-%m-%d %H:%M:%S"
        frame.assign(**{name: frame[name].dt.strftime(pattern)}).to_csv(data, index=False)
    model = tmp_path / "m.safetensors"
    code, _, err = run_cli(capsys, "train", "--data", data, "--target", "label", *FAST, "-o", model)
    assert_one_line_error(code, err, rf"'{name}'.*date.*--drop {name}", seeded.msg)
    assert not model.exists()
    model, _, _ = train(capsys, seeded, data, "--target", "label", "--drop", name)
    assert wxb.load(model).info["feature_names"] == ["a", "b", "c"]


# ---------------------------------------------------------------------------------
# 9. Formats: each reads as the plain CSV of the same data, and trains
# ---------------------------------------------------------------------------------
def source_frame(rng, words=("red", "green", "blue", "dark, red")):
    n = int(rng.integers(60, 150))
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(scale=100, size=n),
            "k": rng.integers(-20, 20, size=n),
            "word": rng.choice(list(words), size=n),
            "y": rng.integers(0, 3, size=n),
        }
    )
    frame.loc[: 2, "y"] = [0, 1, 2]  # fmt: skip
    return frame


def write_format(fmt, frame, folder: Path):
    """The file, read_table's options and the matching wxb train options."""
    if fmt == "semicolon":
        path = folder / "d.csv"
        frame.to_csv(path, sep=";", decimal=",", index=False)
        return path, {}, []
    if fmt == "tsv":
        path = folder / "d.tsv"
        frame.to_csv(path, sep="\t", index=False)
        return path, {}, []
    if fmt == "gz":
        path = folder / "d.csv.gz"
        frame.to_csv(path, index=False, compression="gzip")
        return path, {}, []
    if fmt == "zst":
        import pyarrow as pa
        import pyarrow.csv as pcsv

        path = folder / "d.csv.zst"
        with pa.CompressedOutputStream(str(path), "zstd") as stream:
            pcsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), stream)
        return path, {}, []
    if fmt == "parquet":
        path = folder / "d.parquet"
        frame.to_parquet(path, index=False)
        return path, {}, []
    if fmt == "feather":
        path = folder / "d.feather"
        frame.to_feather(path)
        return path, {}, []
    if fmt == "comment":
        path = folder / "d.csv"
        lines = frame.to_csv(index=False).splitlines(keepends=True)
        middle = 1 + len(lines) // 2
        lines = ["# made by a test\n", *lines[:middle], "# halfway\n", *lines[middle:]]
        path.write_text("".join(lines))
        return path, {"comment": "#"}, ["--comment", "#"]
    if fmt == "latin1":
        path = folder / "d.csv"
        frame.to_csv(path, index=False, encoding="latin-1")
        return path, {"encoding": "latin-1"}, ["--encoding", "latin-1"]
    if fmt == "bom":
        path = folder / "d.csv"
        frame.to_csv(path, index=False, encoding="utf-8-sig")
        return path, {}, []
    if fmt in ("jsonl", "jsonl.gz", "ndjson"):
        path = folder / f"d.{fmt}"
        write_json_lines(path, frame.to_dict("records"), gzipped=fmt.endswith(".gz"))
        return path, {}, []
    raise AssertionError(fmt)


def write_json_lines(path: Path, records, gzipped=False, blank_after=()) -> Path:
    """One object per line, each number written exactly (repr), NaN as null; a blank
    line after each row in ``blank_after``."""
    import gzip
    import json

    def cell(value):
        if isinstance(value, (float, np.floating)):
            return None if np.isnan(value) else float(value)
        return value.item() if isinstance(value, np.generic) else value

    lines = []
    for row, record in enumerate(records):
        lines.append(json.dumps({k: cell(v) for k, v in record.items()}, ensure_ascii=False))
        if row in blank_after:
            lines.append("")
    text = "\n".join(lines) + "\n"
    if gzipped:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


FORMATS = ["semicolon", "tsv", "gz", "zst", "parquet", "feather", "comment", "latin1", "bom"]
FORMATS += ["jsonl", "jsonl.gz", "ndjson"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_reads_as_the_plain_csv_and_trains(tmp_path, seeded, capsys, fmt):
    rng = seeded.rng
    words = ("café", "crème brûlée", "naïve", "plain") if fmt in ("latin1", "bom") else None
    frame = source_frame(rng, *([words] if words else []))
    path, options, argv = write_format(fmt, frame, tmp_path)
    table = read_table(path, **options)
    assert table.names == list(frame.columns), seeded.msg(f"{fmt}: {table.names}")
    for name in frame.columns:
        got = table[name].values
        if frame[name].dtype.kind in "if":
            assert table[name].kind == "number", seeded.msg(f"{fmt}, {name}: {table[name].kind}")
            np.testing.assert_array_equal(
                got.astype(float), frame[name].to_numpy(float), err_msg=seeded.msg(f"{fmt}")
            )
        else:
            assert list(got) == frame[name].tolist(), seeded.msg(f"{fmt}, column {name!r}")
    plain = tmp_path / "plain.csv"
    frame.to_csv(plain, index=False)
    plain_table = read_table(plain)
    features = ["a", "b", "k", "word"]
    encoder = TableEncoder.fit(plain_table, features)
    np.testing.assert_array_equal(
        encoder.transform(table, np.float64), encoder.transform(plain_table, np.float64)
    )
    model, _, _ = train(capsys, seeded, path, "--target", "y", *argv)
    info = wxb.load(model).info
    assert info["feature_names"] == features and info["classes"] == [0, 1, 2], seeded.msg(str(info))


def test_npy_and_npz_with_other_array_names_read_and_train(tmp_path, seeded, capsys):
    rng = seeded.rng
    frame = source_frame(rng).drop(columns="word")
    array = frame.to_numpy(dtype=np.float64)
    np.save(tmp_path / "d.npy", array)
    table = read_table(tmp_path / "d.npy")
    assert table.names == ["x0", "x1", "x2", "x3"]
    for j in range(4):
        np.testing.assert_array_equal(table[f"x{j}"].values, array[:, j])
    model, _, _ = train(capsys, seeded, tmp_path / "d.npy", "--target", "x3")
    info = wxb.load(model).info
    assert info["feature_names"] == ["x0", "x1", "x2"] and info["classes"] == [0, 1, 2]

    X, y = array[:, :3], frame["y"].to_numpy()
    np.savez(tmp_path / "d.npz", features=X, labels=y, other=np.zeros(3))
    table = read_table(tmp_path / "d.npz", x_array="features", y_array="labels")
    assert table.names == ["x0", "x1", "x2", "labels"]
    np.testing.assert_array_equal(np.column_stack([table[f"x{j}"].values for j in range(3)]), X)
    np.testing.assert_array_equal(table["labels"].values, y)
    model, _, _ = train(
        capsys, seeded, tmp_path / "d.npz", "--x-array", "features", "--y-array", "labels"
    )
    info = wxb.load(model).info
    assert info["feature_names"] == ["x0", "x1", "x2"] and info["classes"] == [0, 1, 2]


# ---------------------------------------------------------------------------------
# 9b. JSON Lines: keys missing from a line, mixed kinds, and what is not JSON Lines
# ---------------------------------------------------------------------------------
def json_records(rng, n):
    """Rows as dicts: numbers, text, booleans; some keys left out or null (missing)."""
    X, y = blobs(rng, n)
    records = []
    for i in range(n):
        record = {
            "f0": float(X[i, 0]),
            "f1": float(X[i, 1]),
            "colour": str(rng.choice(["red", "green", "blue"])),
            "flag": bool(rng.integers(0, 2)),
            "label": str(y[i]),
        }
        records.append(record)
    for key in ("f1", "colour", "flag"):
        for row in some_rows(rng, n, 3):
            if rng.integers(0, 2):
                del records[row][key]
            else:
                records[row][key] = None
    return records


def test_json_lines_read_as_the_same_table_as_its_csv_and_train(tmp_path, seeded, capsys):
    rng = seeded.rng
    n = int(rng.integers(40, 120))
    records = json_records(rng, n)
    path = write_json_lines(tmp_path / "d.jsonl", records, blank_after=some_rows(rng, n, 2))
    table = read_table(path)
    frame = pd.DataFrame.from_records(records)  # a key a line lacks: NaN/None, as null
    assert table.names == list(frame.columns), seeded.msg(str(table.names))
    for name in ("f0", "f1"):
        np.testing.assert_array_equal(table[name].values, frame[name].to_numpy(float))
    assert [v for v in table["colour"].values] == [
        None if v is None or v != v else v for v in frame["colour"]
    ], seeded.msg("colour")
    flags = np.array([np.nan if v is None or v != v else float(v) for v in frame["flag"]])
    assert table["flag"].kind == "bool", seeded.msg(table["flag"].kind)
    np.testing.assert_array_equal(table["flag"].values, flags)
    csv_path = tmp_path / "d.csv"
    frame.to_csv(csv_path, index=False)
    features = [name for name in frame.columns if name != "label"]  # in the order first seen
    encoder = TableEncoder.fit(read_table(csv_path), features)
    np.testing.assert_array_equal(
        encoder.transform(table, np.float64), encoder.transform(read_table(csv_path), np.float64)
    )
    model, out, _ = train(capsys, seeded, path, "--target", "label")
    assert wxb.load(model).info["feature_names"] == features, seeded.msg(out)
    got = predicted(capsys, model, path)
    want = predicted(capsys, model, csv_path)
    pd.testing.assert_frame_equal(got, want)


def predicted(capsys, model, data):
    out = Path(model).with_name(f"out-{Path(data).name}.csv")
    code, _, err = run_cli(capsys, "predict", model, data, "-o", out)
    assert code == 0, err
    return pd.read_csv(out)


def test_a_word_among_json_numbers_is_named_by_line_and_column(tmp_path, seeded, capsys):
    rng = seeded.rng
    n = int(rng.integers(40, 120))
    records = json_records(rng, n)
    for record in records:
        record.pop("flag", None)
    bad = int(rng.integers(1, n))
    word = str(rng.choice(["oops", "n/d", "unknown"]))
    records[bad]["f0"] = word
    records[0]["colour"] = "red\u2028blue"  # valid JSON written raw: no line break in it
    blanks = some_rows(rng, bad, 2) if bad > 2 else []
    path = write_json_lines(tmp_path / "d.jsonl", records, blank_after=blanks)
    line = bad + 1 + sum(1 for b in blanks if b < bad)
    code, _, err = run_cli(capsys, "train", "--data", path, "--target", "label", *FAST, "-o",
                           tmp_path / "m.safetensors")  # fmt: skip
    pattern = rf"line {line}, column 'f0': '{re.escape(word)}' is not a number.*--na-values"
    assert_one_line_error(code, err, pattern, seeded.msg)
    model, _, _ = train(capsys, seeded, path, "--target", "label", "--na-values", word)
    table = read_table(path, na_values=[word])  # text, the marker missing: then numbers
    column, _ = text_as_numbers(table["f0"], table)
    want = np.array([np.nan if r["f0"] == word else r["f0"] for r in records])
    np.testing.assert_array_equal(column.values, want)
    features = [name for name in table.names if name != "label"]
    assert sorted(features) == ["colour", "f0", "f1"], seeded.msg(str(features))
    assert wxb.load(model).info["feature_names"] == features, seeded.msg(str(features))


@pytest.mark.parametrize(
    "case, pattern",
    [
        ("array", r"holds one JSON array; wxb reads JSON Lines, one object per line"),
        ("columns", r"one JSON object of columns .*orient='records', lines=True"),
        ("not_json", r"line {line}: not JSON"),
        ("a_number", r"line {line}: holds the value 5, not an object"),
        ("nested", r"line {line}, column 'f1': holds nested JSON .*--drop f1"),
        ("nested_everywhere", r"column 'f1': holds nested JSON .*--drop f1"),
        ("twice", r"line {line}: the key 'f0' is given twice"),
        ("empty", r"holds no rows"),
    ],
)
def test_what_is_not_json_lines_is_one_line(tmp_path, seeded, capsys, case, pattern):
    rng = seeded.rng
    n = int(rng.integers(20, 60))
    records = json_records(rng, n)
    bad = int(rng.integers(1, n))
    path = tmp_path / "d.jsonl"
    if case == "array":
        path.write_text(__import__("json").dumps(records, indent=int(rng.integers(0, 3))))
    elif case == "columns":
        pd.DataFrame.from_records(records).to_json(path)
    elif case == "empty":
        path.write_text("\n" * int(rng.integers(0, 3)))
    elif case in ("nested", "nested_everywhere"):
        for row, record in enumerate(records):
            if row == bad or case == "nested_everywhere":
                record["f1"] = {"x": 1.0} if rng.integers(0, 2) else [1.0, 2.0]
        write_json_lines(path, records)
    else:
        write_json_lines(path, records)
        lines = path.read_text().splitlines()
        if case == "not_json":
            lines[bad] = lines[bad][:-1]  # the closing brace lost
        elif case == "a_number":
            lines[bad] = "5"
        else:  # a key written twice in one object
            lines[bad] = lines[bad][:-1] + ', "f0": 1.5}'
        path.write_text("\n".join(lines) + "\n")
    code, _, err = run_cli(capsys, "train", "--data", path, "--target", "label", *FAST, "-o",
                           tmp_path / "m.safetensors")  # fmt: skip
    assert_one_line_error(code, err, pattern.replace("{line}", str(bad + 1)), seeded.msg)
    if case.startswith("nested"):  # a column a run does not use is not read
        train(capsys, seeded, path, "--target", "label", "--drop", "f1")


# ---------------------------------------------------------------------------------
# 10. Bad rows, by the line a person finds them on
# ---------------------------------------------------------------------------------
def lines_with_a_break_and_a_blank(rng, n, bad_row, bad_line):
    """CSV lines: a quoted cell with a line break before ``bad_row``, a blank line just
    before it, and ``bad_line(cells)`` for that row; (text, its first physical line)."""
    broken = int(rng.integers(0, bad_row))
    lines, where = ["a,b,c,note,y"], 0
    for i in range(n):
        a, b, c = (number(v) for v in rng.normal(size=3))
        note = '"first line\nsecond line"' if i == broken else str(rng.choice(["x", "yy", "z"]))
        row = [a, b, c, note, str(rng.choice(LABELS))]
        if i == bad_row:
            lines.append("")
            row = bad_line(row)
            where = sum(line.count("\n") + 1 for line in lines) + 1
        lines.append(",".join(row))
    return "\n".join(lines) + "\n", where


def test_a_row_with_too_many_cells_is_named_by_its_line(tmp_path, seeded, capsys):
    rng = seeded.rng
    n = int(rng.integers(30, 80))
    bad = int(rng.integers(2, n))
    text, line = lines_with_a_break_and_a_blank(rng, n, bad, lambda row: [*row, "extra"])
    data = tmp_path / "ragged.csv"
    data.write_text(text)
    code, _, err = run_cli(capsys, "train", "--data", data, "--target", "y", *FAST, "-o",
                           tmp_path / "m.safetensors")  # fmt: skip
    assert_one_line_error(code, err, rf"line {line}: 6 values but the header has 5", seeded.msg)


def test_a_word_in_a_number_column_is_named_by_line_and_column(tmp_path, seeded, capsys):
    rng = seeded.rng
    n = int(rng.integers(30, 80))
    bad = int(rng.integers(2, n))
    word = str(rng.choice(["abc", "oops", "n/d", "missing"]))
    text, line = lines_with_a_break_and_a_blank(rng, n, bad, lambda row: [*row[:2], word, *row[3:]])
    data = tmp_path / "stray.csv"
    data.write_text(text)
    code, _, err = run_cli(capsys, "train", "--data", data, "--target", "y", *FAST, "-o",
                           tmp_path / "m.safetensors")  # fmt: skip
    pattern = rf"line {line}, column 'c': '{re.escape(word)}' is not a number.*--na-values"
    assert_one_line_error(code, err, pattern, seeded.msg)
    model, _, _ = train(capsys, seeded, data, "--target", "y", "--na-values", word)
    assert wxb.load(model).info["feature_names"] == ["a", "b", "c", "note"]


# ---------------------------------------------------------------------------------
# 11. Regression misuse, single-row classes, several targets
# ---------------------------------------------------------------------------------
def test_proba_on_a_regression_model_is_one_line(tmp_path, seeded, capsys):
    frame = regression_frame(seeded.rng, int(seeded.rng.integers(40, 100)))
    data = tmp_path / "r.csv"
    frame.to_csv(data, index=False)
    model, _, _ = train(capsys, seeded, data, "--target", "y")
    out_path = tmp_path / "p.csv"
    code, _, err = run_cli(capsys, "predict", model, data, "--proba", "-o", out_path)
    assert_one_line_error(code, err, r"--proba is for classifiers", seeded.msg)
    assert not out_path.exists()


@pytest.mark.parametrize("whole", [False, True])
def test_a_constant_regression_target_is_one_line(tmp_path, seeded, capsys, whole):
    rng = seeded.rng
    frame = regression_frame(rng, int(rng.integers(40, 100)))
    frame["y"] = float(rng.integers(-5, 5)) + (0.0 if whole else 0.5)
    data = tmp_path / "c.csv"
    frame.to_csv(data, index=False)
    argv = ["--task", "regression"] if whole else []
    code, _, err = run_cli(capsys, "train", "--data", data, "--target", "y", *FAST, *argv, "-o",
                           tmp_path / "m.safetensors")  # fmt: skip
    assert_one_line_error(code, err, r"same value .* in every row", seeded.msg)


def test_a_class_with_a_single_row_is_a_warning(tmp_path, seeded, capsys):
    rng = seeded.rng
    n = int(rng.integers(60, 150))
    X, y = blobs(rng, n)
    y = y.astype(object)
    lonely = str(rng.choice(["odd one", "unique", "zeta"]))
    y[int(rng.integers(0, n))] = lonely
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(label=y)
    data = tmp_path / "s.csv"
    frame.to_csv(data, index=False)
    model, _, err = train(capsys, seeded, data, "--target", "label")
    said = [line for line in err.splitlines() if f"'{lonely}'" in line]
    assert len(said) == 1 and said[0].startswith("wxb: warning: "), seeded.msg(err)
    assert "single row" in said[0], seeded.msg(said[0])
    assert lonely in wxb.load(model).info["classes"]


@pytest.mark.parametrize("spelling", ["repeated", "comma"])
def test_several_targets_train_a_two_output_regression(tmp_path, seeded, capsys, spelling):
    rng = seeded.rng
    n = int(rng.integers(60, 150))
    X = rng.normal(size=(n, 3))
    frame = pd.DataFrame(X, columns=["x0", "x1", "x2"])
    frame["a"] = X @ rng.normal(size=3)
    frame["b"] = X @ rng.normal(size=3) + 10
    data = tmp_path / "two.csv"
    frame.to_csv(data, index=False)
    argv = ["--target", "a", "--target", "b"] if spelling == "repeated" else ["--target", "a,b"]
    model_path, out, _ = train(capsys, seeded, data, *argv)
    model = wxb.load(model_path)
    assert model.info["task"] == "regression" and model.info["targets"] == ["a", "b"]
    assert model.info["feature_names"] == ["x0", "x1", "x2"]
    assert output_width(model) == 2
    assert model.predict(frame[["x0", "x1", "x2"]]).shape == (n, 2)
    assert "task: regression (2 target columns)" in out, seeded.msg(out)
    code, out, err = run_cli(capsys, "predict", model_path, data)
    assert code == 0, seeded.msg(err)
    predicted = pd.read_csv(io.StringIO(out))
    assert list(predicted.columns) == ["prediction_a", "prediction_b"]  # named by target
    expected = model.predict(frame)
    np.testing.assert_allclose(predicted.to_numpy(), expected, rtol=1e-6, err_msg=seeded.msg(""))


# ---------------------------------------------------------------------------------
# 12. The task, with its reason
# ---------------------------------------------------------------------------------
def test_the_task_is_printed_with_its_reason(tmp_path, seeded, capsys):
    rng = seeded.rng
    k = int(rng.integers(2, 6))
    names = np.array(["ant", "bee", "cat", "dog", "eel"][:k])
    n = int(rng.integers(60, 150))
    X, y = blobs(rng, n, names)
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(label=y)
    data = tmp_path / "t.csv"
    frame.to_csv(data, index=False)
    _, out, _ = train(capsys, seeded, data, "--target", "label")
    assert f"task: classification ({k} text labels)" in out, seeded.msg(out)

    frame["value"] = (X @ rng.normal(size=3)).round(int(rng.integers(1, 4)))
    frame.to_csv(data, index=False)
    distinct = frame["value"].nunique()
    _, out, _ = train(capsys, seeded, data, "--target", "value", "--drop", "label")
    assert f"task: regression ({distinct} distinct numbers)" in out, seeded.msg(out)


# ---------------------------------------------------------------------------------
# Found in review: the same rows read alike everywhere, and one line for bad input
# ---------------------------------------------------------------------------------
def test_the_models_own_missing_markers_apply_at_predict(tmp_path, seeded, capsys):
    rng = seeded.rng
    n = int(rng.integers(80, 160))
    X = rng.normal(size=(n, 2))
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": (X[:, 0] > 0).astype(int)})
    frame.loc[rng.choice(n, 8, replace=False), "b"] = -999
    data = tmp_path / "na.csv"
    frame.to_csv(data, index=False)
    model, _, _ = train(capsys, seeded, data, "--target", "y", "--na-values=-999")
    rule = TableEncoder.from_json(wxb.load(model).info["table"]).rules[1]
    assert rule.indicator, seeded.msg("-999 was not read as missing in training")
    rows = tmp_path / "rows.csv"
    pd.DataFrame({"a": [0.3, 0.3], "b": [-999, np.nan]}).to_csv(rows, index=False)
    code, out, err = run_cli(capsys, "predict", model, rows, "--proba")  # no --na-values
    assert code == 0, seeded.msg(err)
    table = pd.read_csv(io.StringIO(out))
    assert table.iloc[0].tolist() == table.iloc[1].tolist(), seeded.msg(out)  # -999 is a gap
    frame_rows = pd.DataFrame({"a": [0.3, 0.3], "b": [-999.0, np.nan]})
    outputs = wxb.load(model).predict(frame_rows)  # from Python too
    np.testing.assert_array_equal(outputs[0], outputs[1], err_msg=seeded.msg(""))


def test_whole_numbers_then_a_decimal_far_down_stay_numbers(tmp_path, seeded, capsys):
    rng = seeded.rng
    n = 120_000  # past pyarrow's first block
    price = rng.integers(1, 500, size=n).astype(object)
    price[n - int(rng.integers(2, 10))] = 12.5
    frame = pd.DataFrame({"price": price, "y": rng.integers(0, 2, size=n)})
    data = tmp_path / "late.csv"
    frame.to_csv(data, index=False)
    table = read_table(data)
    assert table["price"].kind == "number", seeded.msg(table["price"].kind)
    np.testing.assert_array_equal(table["price"].values, frame["price"].astype(float))


def test_numbers_stored_as_text_in_parquet_are_numbers(tmp_path, seeded):
    rng = seeded.rng
    values = rng.normal(size=50).round(3)
    path = tmp_path / "s.parquet"
    pd.DataFrame({"v": [str(v) for v in values], "y": rng.integers(0, 2, 50)}).to_parquet(path)
    table = read_table(path)
    data = wxb.prepare.training_table(table, ["y"])
    assert data.features == ["v"] and table["v"].kind == "number", seeded.msg(table["v"].kind)
    np.testing.assert_allclose(table["v"].values, values)


def test_text_categories_that_look_like_numbers_match_at_predict(tmp_path, seeded, capsys):
    rng = seeded.rng
    codes = np.array(["02134", "10001", "K1A", "07030", "1.0", "2.50"])
    n = 120
    zips = codes[rng.integers(0, len(codes), size=n)]
    zips[: len(codes)] = codes  # every category in the training rows
    frame = pd.DataFrame({"zip": zips, "x": rng.normal(size=n), "y": rng.integers(0, 2, n)})
    data = tmp_path / "zips.csv"
    frame.to_csv(data, index=False)
    model, _, _ = train(capsys, seeded, data, "--target", "y", "--test-split", "0.05",
                        "--val-split", "0")  # fmt: skip
    stage = TableEncoder.from_json(wxb.load(model).info["table"])
    numeric = ["02134", "10001", "07030", "1.0", "2.50"]
    rows = tmp_path / "rows.csv"
    rows.write_text("zip,x\n" + "".join(f"{z},0.5\n" for z in numeric))
    table = read_table(rows, as_text=stage.text_columns)
    X = stage.transform(table)
    start = stage.outputs.index(f"zip={stage.rules[0].categories[0]}")
    hot = X[:, start : start + len(stage.rules[0].categories)]
    picked = [stage.rules[0].categories[k] for k in hot.argmax(axis=1)]
    assert (hot.sum(axis=1) == 1).all() and picked == numeric, seeded.msg(f"{picked}")
    code, out, err = run_cli(capsys, "predict", model, rows, "--proba")
    assert code == 0, seeded.msg(err)
    expected = wxb.load(model).predict(X)
    got = pd.read_csv(io.StringIO(out))[["p_0", "p_1"]].to_numpy()
    z = expected - expected.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(got, p, rtol=1e-5, err_msg=seeded.msg(""))


def test_a_dataframe_reads_missing_markers_as_a_csv_does(tmp_path, seeded):
    rng = seeded.rng
    n = 60
    frame = pd.DataFrame({"c": rng.choice(["red", "blue", "?", "NA"], n), "x": rng.normal(size=n)})
    data = tmp_path / "m.csv"
    frame.to_csv(data, index=False)
    from_csv, from_frame = read_table(data), from_object(frame)
    assert list(from_csv["c"].missing) == list(from_frame["c"].missing), seeded.msg("")
    assert from_frame["c"].missing.sum() == frame["c"].isin(["?", "NA"]).sum()


def test_a_column_mostly_numbers_with_many_words_warns(tmp_path, seeded, capsys):
    rng = seeded.rng
    n = 100
    ages = rng.integers(18, 90, size=n).astype(object)
    ages[rng.choice(n, 20, replace=False)] = "unknown"
    frame = pd.DataFrame({"age": ages, "x": rng.normal(size=n), "y": rng.integers(0, 2, n)})
    data = tmp_path / "ages.csv"
    frame.to_csv(data, index=False)
    _, _, err = train(capsys, seeded, data, "--target", "y")
    assert "column 'age' is read as text: 80% of its cells are numbers" in err, seeded.msg(err)
    assert "--na-values 'unknown'" in err, seeded.msg(err)


def test_a_word_among_numeric_targets_is_one_line(tmp_path, seeded, capsys):
    rng = seeded.rng
    n = 80
    rating = rng.integers(1, 6, size=n).astype(object)
    rating[rng.choice(n, 3, replace=False)] = "n.a."
    frame = pd.DataFrame({"x": rng.normal(size=n), "rating": rating})
    data = tmp_path / "r.csv"
    frame.to_csv(data, index=False)
    code, _, err = run_cli(capsys, "train", "--data", data, "--target", "rating", *FAST)
    assert_one_line_error(code, err, r"column 'rating': 'n.a.' is not a number .*--na-values",
                          seeded.msg)  # fmt: skip


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["--target", "y", "--target", "y"], "a target column is named twice"),
        (["--target", "y,y"], "a target column is named twice"),
        (["--target", "y", "--id-column", "y"], "cannot be the --id-column and a target"),
    ],
)
def test_a_target_twice_or_as_the_id_is_refused(tmp_path, seeded, capsys, argv, pattern):
    rng = seeded.rng
    frame = pd.DataFrame({"x": rng.normal(size=40), "y": rng.integers(0, 2, 40)})
    data = tmp_path / "t.csv"
    frame.to_csv(data, index=False)
    code, _, err = run_cli(capsys, "train", "--data", data, *argv, *FAST)
    assert_one_line_error(code, err, pattern, seeded.msg)


def test_ids_are_written_exactly_as_read(tmp_path, seeded, capsys):
    rng = seeded.rng
    n = 60
    ids = [f"{int(v):05d}" for v in rng.choice(99999, n, replace=False)]
    ids[0] = "123456789012"  # beyond float32
    frame = pd.DataFrame({"sku": ids, "x": rng.normal(size=n), "y": rng.integers(0, 2, n)})
    data = tmp_path / "sku.csv"
    frame.to_csv(data, index=False)
    model, _, _ = train(capsys, seeded, data, "--target", "y", "--id-column", "sku")
    rows = tmp_path / "rows.csv"
    rows.write_text("sku,x\n" + f"{ids[0]},0.1\n" + f"{ids[1]},0.2\n" + ",0.3\n")
    code, out, err = run_cli(capsys, "predict", model, rows)
    assert code == 0, seeded.msg(err)
    written = [line.split(",")[0] for line in out.splitlines()[1:]]
    assert written == [ids[0], ids[1], ""], seeded.msg(out)


def test_a_float32_model_keeps_its_class_labels_exact(tmp_path, seeded, capsys):
    rng = seeded.rng
    n = 80
    frame = pd.DataFrame({"x": rng.normal(size=n), "y": rng.choice([0.1, 0.3], n)})
    data = tmp_path / "f.csv"
    frame.to_csv(data, index=False)
    model, _, _ = train(capsys, seeded, data, "--target", "y", "--task", "classification")
    assert wxb.load(model).info["classes"] == [0.1, 0.3], seeded.msg("")


def test_an_array_wider_than_the_model_is_refused(tmp_path, seeded, capsys):
    rng = seeded.rng
    np.savez(tmp_path / "t.npz", X=rng.normal(size=(60, 3)), y=rng.integers(0, 2, 60))
    model, _, _ = train(capsys, seeded, tmp_path / "t.npz")
    np.save(tmp_path / "wide.npy", rng.normal(size=(5, 4)))
    code, _, err = run_cli(capsys, "predict", model, tmp_path / "wide.npy")
    assert_one_line_error(code, err, "4 features but the model takes 3", seeded.msg)


def test_a_row_of_gaps_counts_as_a_line(tmp_path, seeded, capsys):
    rng = seeded.rng
    lines = ["a,b,y"] + [f"{rng.normal():.3f},{rng.normal():.3f},{i % 2}" for i in range(30)]
    bad = int(rng.integers(5, 25))
    lines.insert(3, ",,1")  # a row of gaps before the bad one
    lines[bad] = f"{rng.normal():.3f},oops,1"
    data = tmp_path / "g.csv"
    data.write_text("\n".join(lines) + "\n")
    code, _, err = run_cli(capsys, "train", "--data", data, "--target", "y", *FAST)
    assert_one_line_error(code, err, rf"line {bad + 1}, column 'b': 'oops'", seeded.msg)


def test_encoding_trouble_is_one_line(tmp_path, seeded, capsys):
    data = tmp_path / "latin.csv"
    data.write_bytes("café,b,y\n1,2,0\n3,4,1\n".encode("latin-1"))
    code, _, err = run_cli(capsys, "train", "--data", data, "--target", "y", *FAST)
    assert_one_line_error(code, err, r"not utf-8 text .*--encoding", seeded.msg)
    code, _, err = run_cli(capsys, "train", "--data", data, "--target", "y", "--encoding",
                           "nope", *FAST)  # fmt: skip
    assert_one_line_error(code, err, r"--encoding 'nope' is not an encoding", seeded.msg)


def test_a_models_text_column_in_another_encoding_is_named_with_the_hint(tmp_path, seeded, capsys):
    """Trained with --encoding latin-1, then given the file without it: predict (which
    reads the model's text columns as text) said pyarrow's 'CSV conversion error to
    string: invalid UTF8 data'; train says which column and to give --encoding."""
    rng = seeded.rng
    n = int(rng.integers(20, 40))
    words = rng.choice(["café", "thé", "crème"], n)
    data = tmp_path / "latin.csv"
    rows = [
        f"{x:.6f},{w},{int(rng.integers(0, 2))}"
        for x, w in zip(rng.normal(size=n), words, strict=True)
    ]
    data.write_bytes(("x,drink,y\n" + "\n".join(rows) + "\n").encode("latin-1"))
    model, _, _ = train(capsys, seeded, data, "--target", "y", "--encoding", "latin-1")
    code, _, err = run_cli(capsys, "predict", model, data)
    pattern = r"column 'drink' holds bytes that are not utf-8 text; give the file's --encoding"
    assert_one_line_error(code, err, pattern, seeded.msg)
    code, out, err = run_cli(capsys, "predict", model, data, "--encoding", "latin-1")
    assert code == 0 and len(out.splitlines()) == n + 1, seeded.msg(err)


def test_times_of_day_are_one_line(tmp_path, seeded, capsys):
    import datetime

    rng = seeded.rng
    n = 30
    frame = pd.DataFrame(
        {
            "t": [datetime.time(int(h), 0) for h in rng.integers(0, 24, n)],
            "x": rng.normal(size=n),
            "y": rng.integers(0, 2, n),
        }
    )
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    code, _, err = run_cli(capsys, "train", "--data", path, "--target", "y", *FAST)
    assert_one_line_error(code, err, r"column 't' holds times of day; drop it", seeded.msg)


def test_explaining_a_row_without_its_target_is_one_line(tmp_path, seeded, capsys):
    rng = seeded.rng
    n = 40
    frame = pd.DataFrame({"a": rng.normal(size=n), "y": rng.choice(["x", "z"], n)})
    gap = int(rng.integers(1, n - 1))
    frame.loc[gap, "y"] = None
    data = tmp_path / "e.csv"
    frame.to_csv(data, index=False)
    model, _, _ = train(capsys, seeded, data, "--target", "y")
    code, _, err = run_cli(capsys, "explain", model, "--data", data, "--sample", gap)
    assert_one_line_error(code, err, rf"row {gap}'s target is missing", seeded.msg)
    code, out, err = run_cli(capsys, "explain", model, "--data", data, "--sample", gap - 1)
    assert code == 0 and "Backward pass" in out, seeded.msg(err)


def test_user_written_models_take_a_dataframe_by_column_name(seeded):
    """Module.predict on a table is the model's own: a Sequential subclass with its own
    forward, a Module with tied and frozen parameters, in two threads at once."""
    import threading

    from user_models import ResidualSequential, TiedPair

    from wxb.nn import Dense, ReLU

    rng = seeded.rng
    width = 4
    names = [f"c{j}" for j in range(width)]
    residual = ResidualSequential(
        Dense(width, width, seed=rng), ReLU(), Dense(width, width, seed=rng)
    )
    tied = TiedPair(Dense(width, width, seed=rng), Dense(width, width, seed=rng), ReLU(), True)
    tied.first.bias.requires_grad = False  # frozen
    n = int(rng.integers(5, 40))
    X = rng.normal(size=(n, width)).astype(np.float32)
    frame = pd.DataFrame(X, columns=names)
    shuffled = frame[list(rng.permutation(names))].assign(extra=rng.normal(size=n))
    for model in (residual, tied):
        want = model.predict(X)
        # no names stored: the columns in order, as NumPy gives them
        np.testing.assert_array_equal(model.predict(frame), want, err_msg=seeded.msg(""))
        model.info = {"feature_names": names}  # names stored: taken by name, extras ignored
        results: list[np.ndarray] = []
        threads = [
            threading.Thread(target=lambda m=model, out=results: out.append(m.predict(shuffled)))
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for got in results:
            np.testing.assert_array_equal(got, want, err_msg=seeded.msg(type(model).__name__))
        with pytest.raises(wxb.DataError, match="missing column"):
            model.predict(frame.drop(columns=[names[1]]))


@pytest.mark.parametrize("form", ["csv", "parquet"])
def test_a_column_float32_would_coarsen_is_read_in_float64_and_train_warns(
    tmp_path, seeded, capsys, form
):
    """A timestamp near 1.7e9 a few seconds apart: float32 holds it to a step of 128,
    so the default float32 reading made the column one or two values, without a word.
    The reader keeps such a column in float64, and train says the network's float32
    input still rounds it (--dtype float64 keeps it)."""
    rng = seeded.rng
    n = 200
    offset = float(rng.uniform(1e9, 2e9))
    stamps = offset + rng.uniform(-30, 30, n)
    small = rng.standard_normal(n)
    target = (stamps - offset) / 10 + small
    frame = pd.DataFrame({"stamp": stamps, "small": small, "target": target})
    path = tmp_path / f"t.{form}"
    if form == "csv":
        write_columns(path, {k: [number(v) for v in frame[k]] for k in frame})
    else:
        frame.to_parquet(path)
    table = read_table(path, float32=True)
    assert table["stamp"].values.dtype == np.float64, seeded.msg(form)
    np.testing.assert_array_equal(table["stamp"].values, stamps)
    assert table["small"].values.dtype == np.float32  # the others still to the model's dtype

    _, _, err = train(capsys, seeded, path, "--target", "target", "--task", "regression")
    warned = [line for line in err.splitlines() if "stamp" in line]
    assert len(warned) == 1 and "--dtype float64" in warned[0], seeded.msg(err)
    assert "small" not in err
    _, _, err = train(capsys, seeded, path, "--target", "target", "--dtype", "float64")
    assert "stamp" not in err, seeded.msg(err)


def test_when_every_column_looks_like_an_identifier_the_error_names_them(tmp_path, seeded, capsys):
    """'no feature columns are left' said nothing of the columns left out as row
    identifiers (their warnings were never printed: the error came first)."""
    rng = seeded.rng
    n = int(rng.integers(30, 60))
    order = rng.permutation(n)
    data = write_columns(
        tmp_path / "ids.csv",
        {
            "row": [str(i) for i in order],
            "code": [f"ID{i:05d}" for i in order],
            "y": [str(int(v)) for v in rng.integers(0, 2, n)],
        },
    )
    code, _, err = run_cli(capsys, "train", "--data", data, "--target", "y", *FAST)
    assert_one_line_error(
        code, err, r"no feature columns are left \(the others look like row identifiers: "
        r"'row', 'code'; name those to use with --features\)", seeded.msg,
    )  # fmt: skip


def test_values_near_float32s_limit_fill_and_standardize_or_name_their_column(
    tmp_path, seeded, capsys
):
    """A float32 column of ±3e38 with a gap: its median, the mean of two middles in
    float32, overflowed to inf (a NumPy warning, then the fill); standardizing it
    overflowed x − mean to −inf and training stopped at a NaN loss. The fill is now
    computed in float64, and train refuses the column by name (--dtype float64 trains)."""
    rng = seeded.rng
    n = 40
    # six of 40 at +3e38: whichever rows train, their mean is below −1.7e38 (at most 6
    # of the ~28 training rows), so x − mean > 3.4e38 (a random share of +3e38 above
    # 0.43 of the training rows, rare, left the mean too close to 0 to overflow)
    huge = np.full(n, -3e38)
    huge[:4] = [3e38, 3e38, -3e38, -3e38]
    huge[rng.choice(np.arange(4, n), 4, replace=False)] = 3e38
    cells = [number(v) for v in huge]
    for gap in rng.choice(np.arange(4, n), 2, replace=False):  # an even count: two middles
        cells[gap] = ""
    data = write_columns(
        tmp_path / "big.csv",
        {
            "small": [number(v) for v in rng.standard_normal(n)],
            "huge": cells,
            "y": [str(int(v)) for v in rng.integers(0, 2, n)],
        },
    )
    table = read_table(data, float32=True)
    encoder = TableEncoder.fit(table, ["small", "huge"], np.arange(n))
    fill = encoder.rules[1].fill
    present = huge[np.asarray(cells) != ""]
    assert fill == np.median(present.astype(np.float32).astype(np.float64)), seeded.msg(fill)
    code, _, err = run_cli(capsys, "train", "--data", data, "--target", "y", *FAST)
    assert_one_line_error(code, err, r"feature 'huge'.*beyond what float32 holds", seeded.msg)
    train(capsys, seeded, data, "--target", "y", "--dtype", "float64")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fill_values_are_the_training_rows_medians(seeded, dtype):
    """Each number column's fill is np.median of its present training values, for odd
    and even counts (one select, then the lower half's largest), ties, −0.0 and gaps,
    with and without a subset of rows; the column itself is not reordered."""
    rng = seeded.rng
    for _ in range(30):
        n = int(rng.choice([1, 2, 3, 4, 5, int(rng.integers(6, 3000))]))
        pool = np.concatenate([rng.standard_normal(8) * 10.0 ** rng.integers(-3, 30), [0.0, -0.0]])
        values = rng.choice(pool, n) if rng.random() < 0.5 else rng.standard_normal(n)
        values = values.astype(dtype)
        values[rng.random(n) < 0.2] = np.nan
        values[int(rng.integers(n))] = rng.standard_normal()  # at least one present
        before = values.copy()
        table = from_object({"x": values.copy()})
        column = table["x"].values
        rows = None if rng.random() < 0.5 else rng.choice(n, int(rng.integers(1, n + 1)))
        picked = column if rows is None else column[rows]
        present = picked[~np.isnan(picked)]
        if len(present) == 0:
            continue
        expected = np.median(present.astype(np.float64))
        if column.dtype == np.float32:
            expected = np.float32(expected)
        fill = TableEncoder.fit(table, ["x"], rows).rules[0].fill
        np.testing.assert_array_equal(fill, expected, err_msg=seeded.msg((n, rows, present)))
        np.testing.assert_array_equal(column.astype(dtype), before, err_msg=seeded.msg(n))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_zero_median_fills_with_positive_zero(seeded, dtype):
    """A column whose median is zero fills its gaps with +0.0 whatever the signs of its
    zeros and their order: NumPy's select does not order -0.0 and 0.0, so the zero it
    put in the middle depended on the rows (a CI run's Parquet matrix held -0.0 in every
    gap where scikit-learn's imputer wrote 0.0)."""
    rng = seeded.rng
    for _ in range(30):
        zeros = int(rng.integers(1, 400))
        values = np.where(rng.random(zeros) < rng.random(), -0.0, 0.0)
        spread = int(rng.integers(0, zeros))  # fewer numbers each side than zeros
        values = np.concatenate(
            [values, -1 - rng.random(spread // 2), 1 + rng.random(spread - spread // 2)]
        )
        values = rng.permutation(values).astype(dtype)
        gaps = rng.random(len(values) + 1) < 0.3
        gaps[-1] = True
        column = np.full(len(gaps), np.nan, dtype)
        column[~gaps] = values[: int((~gaps).sum())]
        present = column[~np.isnan(column)]
        if len(present) == 0 or np.median(present.astype(np.float64)) != 0:
            continue
        encoder = TableEncoder.fit(from_object({"x": column}), ["x"])
        fill = encoder.rules[0].fill
        assert fill == 0 and not np.signbit(fill), seeded.msg((fill, present))
        X = encoder.transform(from_object({"x": column}), dtype)
        assert not np.signbit(X[gaps, 0]).any(), seeded.msg("the filled cells")


@pytest.mark.parametrize("option", ["--x-array", "--y-array"])
def test_npz_array_names_on_a_file_of_columns_are_refused(tmp_path, seeded, capsys, option):
    """--x-array/--y-array name an NPZ's arrays; on a CSV they were ignored without a
    word (the file's columns trained as they were): now one line naming the option."""
    rng = seeded.rng
    n = int(rng.integers(20, 40))
    data = write_columns(
        tmp_path / "t.csv",
        {"a": [number(v) for v in rng.standard_normal(n)],
         "y": [str(int(v)) for v in rng.integers(0, 2, n)]},
    )  # fmt: skip
    code, _, err = run_cli(capsys, "train", "--data", data, "--target", "y", option, "X", *FAST)
    assert_one_line_error(code, err, f"{option} names arrays of an NPZ file", seeded.msg)


def test_a_wide_table_stage_matrix_by_construction_in_blocks(seeded, monkeypatch):
    """From ten inputs the table stage writes each block of rows through a transposed
    scratch: numbers with gaps (median fill, a 0/1 column) and a text column (one-hot,
    its most frequent value filling its gaps) against the matrix built by hand, in
    blocks of a few rows, the last one partial, and in one block."""
    rng = seeded.rng
    n = int(rng.integers(30, 90))
    data, parts = {}, []
    for k in range(int(rng.integers(6, 14))):
        values = rng.standard_normal(n)
        gap = rng.random(n) < 0.2
        gap[k % n] = False  # one present value at least
        data[f"x{k}"] = np.where(gap, np.nan, values)
        parts.append(np.where(gap, np.median(values[~gap]), values))
        if gap.any():
            parts.append(gap.astype(float))
    words = np.array(["a", "b", "c", "d"])[rng.integers(0, 4, n)]
    words[: n // 2] = "b"  # the most frequent, beyond doubt
    gap = rng.random(n) < 0.15
    data["w"] = np.array([None if g else w for w, g in zip(words, gap, strict=True)], object)
    filled = np.where(gap, "b", words)
    parts += [(filled == c).astype(float) for c in sorted(set(words[~gap]))]
    if gap.any():
        parts.append(gap.astype(float))
    expected = np.column_stack(parts)
    assert expected.shape[1] >= 10
    table = from_object(data)
    encoder = TableEncoder.fit(table, list(data))
    for block in (int(rng.integers(1, n)), n + 1):
        monkeypatch.setattr(TableEncoder, "BLOCK_ROWS", block)
        X = encoder.transform(table, np.float64)
        np.testing.assert_allclose(X, expected, rtol=1e-15, err_msg=seeded.msg(f"block {block}"))
