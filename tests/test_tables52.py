"""Messy tables, generated: a data scientist's CSV files as pandas writes them (gaps in
many spellings, Int64 with NA, booleans, padded and unicode categories with commas and
quotes, constant and ID columns, a BOM, CRLF, ';' with decimal commas, gzip), read by wxb
and by pandas + scikit-learn's equivalent preprocessing (SimpleImputer median /
most_frequent with indicators, OneHotEncoder(handle_unknown='ignore'), StandardScaler) in
float64; what wxb cannot read right (a date, an all-missing column, inf, names that differ
by a space) must be refused in one line. Inputs are drawn fresh each run."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from cli_run import run
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from wxb.columns import TableEncoder
from wxb.errors import DataError
from wxb.nn.layers import standard_scale
from wxb.prepare import training_table
from wxb.tables import read_table

WORDS = ["red", "Red", "  green", "blue  ", "café", "naïve, ok", 'say "hi"', "東京", "x,y"]
GAPS = ["", "?", "NaN", "NA", "nan", "N/A", "NULL", "null", "None", "<NA>", "#N/A", "NAN", "-nan"]
BOOLEANS = [("True", "False"), ("yes", "no"), ("1", "0"), ("TRUE", "FALSE"), ("true", "false")]


def _messy_frame(rng, n: int):
    """A table as people have them, each column's kind for the reference ('num', 'bool',
    'cat', 'id'), and what in it must be refused."""
    cols, kinds, refuse = {}, {}, []
    cols["row_id"], kinds["row_id"] = np.arange(1000, 1000 + n), "id"
    x = np.round(rng.normal(size=n) * 10.0 ** rng.integers(-1, 3), 3)
    cells = [repr(float(v)) for v in x]
    for i in np.flatnonzero(rng.random(n) < 0.2):
        cells[i] = str(rng.choice(GAPS))
    if rng.random() < 0.15:
        cells[int(rng.integers(n))] = str(rng.choice(["inf", "-inf", "Infinity"]))
        refuse.append("inf")
    cols["x"], kinds["x"] = cells, "num"
    count = pd.array(rng.integers(-5, 50, size=n), dtype="Int64")
    count[rng.random(n) < 0.15] = pd.NA
    cols["count"], kinds["count"] = count, "num"
    yes, no = BOOLEANS[rng.integers(len(BOOLEANS))]
    flag = [yes if v else no for v in rng.random(n) < 0.5]
    for i in np.flatnonzero(rng.random(n) < 0.1 * rng.integers(2)):
        flag[i] = ""
    cols["flag"] = flag
    kinds["flag"] = {"true": "bool", "yes": "cat", "1": "num"}[yes.lower()]
    if rng.random() < 0.3:  # digits as codes: numbers, as pandas reads them
        cols["code"], kinds["code"] = rng.choice(["01", "1", "02", "2", "10"], size=n), "num"
    if rng.random() < 0.3:
        cols["ref"], kinds["ref"] = [f"A{v:04d}" for v in rng.permutation(n)], "id"
    colour = rng.choice(WORDS[: int(rng.integers(3, len(WORDS) + 1))], size=n).astype(object)
    colour[rng.random(n) < 0.1] = None
    cols["colour"], kinds["colour"] = colour, "cat"
    cols["const"], kinds["const"] = [7.5] * n, "num"
    if rng.random() < 0.5:
        cols["A"], kinds["A"] = np.round(rng.normal(size=n), 2), "num"
    cols["a"], kinds["a"] = np.round(rng.normal(size=n), 2), "num"
    if rng.random() < 0.2:
        cols["empty"], kinds["empty"] = [None] * n, "num"
        refuse.append("empty")
    if rng.random() < 0.2:
        form = str(rng.choice(["%Y-%m-%d", "%d/%m/%Y"]))
        cols["when"] = pd.date_range("2024-01-01", periods=n, freq="D").strftime(form)
        kinds["when"] = "date"
        refuse.append("date")
    if rng.random() < 0.2:
        cols["a "], kinds["a "] = np.round(rng.normal(size=n), 2), "num"
        refuse.append("a and 'a '")
    if rng.random() < 0.3:
        cols["pad"], kinds["pad"] = [f" {v} " for v in np.round(rng.normal(size=n), 2)], "num"
    cols["label"] = rng.choice(["cat", "dog", "emu"], size=n)
    return pd.DataFrame(cols), kinds, refuse


def _write(frame, rng, folder, name="t"):
    """The frame as pandas writes it: ',' or ';' with decimal commas, a BOM or not, CRLF
    or not, gzip or not; the number cells written as text take the file's decimal mark."""
    semicolon = bool(rng.random() < 0.5)
    sep, decimal = (";", ",") if semicolon else (",", ".")
    how = {
        "sep": sep,
        "decimal": decimal,
        "bom": bool(rng.random() < 0.5),
        "crlf": bool(rng.random() < 0.5),
        "gzip": bool(rng.random() < 0.5),
    }
    frame = frame.copy()
    for name_ in ("x", "pad"):
        if name_ in frame:
            frame[name_] = [v.replace(".", decimal) for v in frame[name_]]
    path = folder / (f"{name}.csv.gz" if how["gzip"] else f"{name}.csv")
    frame.to_csv(
        path, sep=sep, decimal=decimal, index=False,
        encoding="utf-8-sig" if how["bom"] else "utf-8",
        lineterminator="\r\n" if how["crlf"] else "\n",
        compression="gzip" if how["gzip"] else None,
    )  # fmt: skip
    return path, how


def _pandas_read(path, how):
    return pd.read_csv(
        path, sep=how["sep"], decimal=how["decimal"], na_values=["?", "NAN"], encoding="utf-8-sig"
    )


def _reference(path, how, kinds) -> np.ndarray:
    """pandas + scikit-learn: the matrix wxb's table stage and Standardize should give,
    float64 (wxb trims the spaces around a text cell: done so here; it reads 'NAN' as a gap
    in a number column: pandas is told so)."""
    frame = _pandas_read(path, how)
    features = [c for c in frame.columns if c != "label" and kinds[c] != "id"]
    parts = []
    for c in features:
        if kinds[c] == "cat":
            frame[c] = frame[c].map(lambda v: v.strip() if isinstance(v, str) else np.nan)
            frame[c] = frame[c].astype(object)
            encode = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
            parts.append((c, make_pipeline(SimpleImputer(strategy="most_frequent"), encode), [c]))
            if frame[c].isna().any():
                parts.append((c + " missing", MissingIndicator(), [c]))
            continue
        if kinds[c] == "bool":  # True/False, with gaps: an object column
            truth = frame[c].map(lambda v: float(v) if isinstance(v, bool | np.bool_) else np.nan)
            frame[c] = truth
        elif not pd.api.types.is_numeric_dtype(frame[c]):  # ' 1,5 '
            text = frame[c].str.strip().str.replace(how["decimal"], ".")
            frame[c] = pd.to_numeric(text)
        frame[c] = frame[c].astype("float64")
        strategy = "most_frequent" if kinds[c] == "bool" else "median"
        parts.append((c, SimpleImputer(strategy=strategy, add_indicator=True), [c]))
    X = ColumnTransformer(parts).fit_transform(frame[features])
    return StandardScaler().fit_transform(X)


def _wxb_matrix(path) -> np.ndarray:
    """What wxb train fits on (all rows as training rows): the table stage's matrix in
    float64, standardized as its Standardize layer's statistics do."""
    data = training_table(read_table(path), ["label"])
    X = TableEncoder.fit(data.table, data.features).transform(data.table, np.float64)
    mean, scale = standard_scale(X)
    return (X - mean) / scale


def test_messy_tables_read_as_pandas_and_scikit_learn_preprocess_them(tmp_path, rng):
    for k in range(12):
        folder = tmp_path / str(k)
        folder.mkdir()
        frame, kinds, refuse = _messy_frame(rng, int(rng.integers(30, 80)))
        path, how = _write(frame, rng, folder)
        if refuse:
            with pytest.raises(DataError) as caught:
                _wxb_matrix(path)
            assert "\n" not in str(caught.value), (refuse, str(caught.value))
            continue
        X, expected = _wxb_matrix(path), _reference(path, how, kinds)
        assert X.shape == expected.shape, how
        # one rounding of (x − mean)/scale each way, on values of order 10: 1e-12 is ample
        np.testing.assert_allclose(X, expected, rtol=1e-10, atol=1e-12, err_msg=str(how))


def test_predictions_line_up_with_the_rows_and_ids_however_the_table_is_written(
    tmp_path, rng, capsys
):
    frame, _, refuse = _messy_frame(rng, int(rng.integers(30, 60)))
    frame = frame.drop(columns=[c for c in ("a ", "empty", "when") if c in frame])
    if "inf" in refuse:
        frame["x"] = [v if "inf" not in v.lower() else "1.5" for v in frame["x"]]
    label = frame["label"].astype(object)
    label[rng.random(len(frame)) < 0.1] = None  # rows without a target: dropped by train
    frame["label"] = label
    path, how = _write(frame, rng, tmp_path)
    model = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", path, "--target", "label", "--id-column",
                       "row_id", "--hidden", "8", "--epochs", "3", "-q", "-o", model)  # fmt: skip
    assert code == 0, err
    # the same rows shuffled, without the target, written another way (or as Parquet)
    order = rng.permutation(len(frame))
    new = frame.iloc[order].drop(columns=["label"])
    (tmp_path / "new").mkdir()
    if rng.random() < 0.3:
        other = tmp_path / "new" / "new.parquet"
        new.to_parquet(other, index=False)
    else:
        other, _ = _write(new, rng, tmp_path / "new")
    code, out, err = run(capsys, "predict", model, path, "--proba")
    assert code == 0, err
    whole = pd.read_csv(io.StringIO(out), dtype={"row_id": str, "prediction": str})
    code, out, err = run(capsys, "predict", model, other, "--proba")
    assert code == 0, err
    shuffled = pd.read_csv(io.StringIO(out), dtype={"row_id": str, "prediction": str})
    ids = [str(v) for v in frame["row_id"]]
    assert whole["row_id"].tolist() == ids
    assert shuffled["row_id"].tolist() == [ids[i] for i in order]
    assert shuffled["prediction"].tolist() == whole["prediction"].iloc[order].tolist()
    # the Python API on the file as pandas reads it gives the same probabilities
    import wxb

    logits = wxb.load(model).predict(_pandas_read(path, how).drop(columns=["label"]))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    shown = whole[[c for c in whole.columns if c.startswith("p_")]].to_numpy()
    # float32 forward, probabilities printed to ~8 significant digits
    np.testing.assert_allclose(shown, p, atol=1e-5)
    code, out, err = run(capsys, "eval", model, path)
    assert code == 0, err
    assert f"{int(frame['label'].notna().sum())} samples" in out


@pytest.mark.parametrize(
    "encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]
)
def test_a_utf16_or_utf32_file_read_as_utf8_is_refused_naming_its_encoding(
    tmp_path, rng, capsys, encoding
):
    # Excel's 'Unicode text' export. Read as utf-8 it was refused with '--encoding (e.g.
    # latin-1)', which then read it as NULs and letters ('line 42: 1 values but the header
    # has 3'); without a byte-order mark, or without a last line break, it was read in
    # silence: names and cells with a NUL beside each letter.
    n = int(rng.integers(12, 40))
    frame = pd.DataFrame({
        "x": np.round(rng.normal(size=n), 3),
        "town": rng.choice(["Zürich", "Köln", "Lyon"], n),
        "label": rng.choice(["p", "q"], n),
    })  # fmt: skip
    text = frame.to_csv(index=False, sep=str(rng.choice(["\t", ","])))
    if rng.random() < 0.5:
        text = text.rstrip("\n")
    path = tmp_path / "unicode.csv"
    path.write_bytes(text.encode(encoding))
    given = str(rng.choice(["utf-8", "latin-1"]))
    code, _, err = run(capsys, "train", "--data", path, "--target", "label", "--encoding", given,
                       "-q", "--epochs", "1", "-o", tmp_path / "m.safetensors")  # fmt: skip
    assert code == 2 and err.count("\n") == 1, err
    assert f"give --encoding {encoding}" in err, err
    with pytest.raises(DataError, match=f"give --encoding {encoding}"):
        read_table(path)
    table = read_table(path, encoding=encoding)  # as advised: pandas's reading
    expected = pd.read_csv(path, sep=None, engine="python", encoding=encoding)
    assert table.names == list(expected.columns)
    np.testing.assert_array_equal(table["x"].values, expected["x"].to_numpy())
    assert table["town"].values.tolist() == expected["town"].tolist()
