"""Files as real exports write them (a fourth hunt): pandas' Parquet index, late decimal
commas, columns a run never uses, codes written with digits, identifiers that read like
missing markers, notes with line breaks. Each is read as a person means it, or refused
in one line; expected values come from pandas or from the data, never from wxb."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_run import FAST, run, trained
from cli_run import predicted as predicted_csv

import wxb
from wxb.prepare import training_table
from wxb.tables import read_table


def predicted(capsys, model, data, *extra) -> pd.DataFrame:
    """Predictions as written: every cell text, none read as a gap."""
    return predicted_csv(capsys, model, data, *extra, dtype=str, keep_default_na=False)


def test_the_index_pandas_writes_into_parquet_is_not_a_feature(tmp_path, rng, capsys):
    n = 60
    frame = pd.DataFrame({"x": rng.normal(size=n).round(3), "y": rng.choice(["a", "b"], n)})
    shuffled = pd.concat([frame, frame]).sample(n, random_state=int(rng.integers(1000)))
    shuffled.to_parquet(tmp_path / "train.parquet")  # its index: '__index_level_0__'
    assert list(pd.read_parquet(tmp_path / "train.parquet").columns) == ["x", "y"]

    data = training_table(read_table(tmp_path / "train.parquet"), ["y"])
    assert data.features == ["x"] and data.warnings == []
    model = trained(capsys, tmp_path / "train.parquet", "--target", "y")
    frame.to_parquet(tmp_path / "new.parquet")  # a default index: none written
    assert len(predicted(capsys, model, tmp_path / "new.parquet")) == n


def test_decimal_commas_after_whole_numbers_are_numbers(tmp_path, rng):
    whole = rng.integers(10, 99, size=60)
    late = rng.integers(10, 99, size=20) + 0.5
    lines = ["preis;menge;y"] + [f"{v};{i % 7};{i % 2}" for i, v in enumerate(whole)]
    lines += [f"{str(v).replace('.', ',')};{i % 7};{i % 2}" for i, v in enumerate(late)]
    (tmp_path / "prices.csv").write_text("\n".join(lines) + "\n")
    expected = pd.read_csv(tmp_path / "prices.csv", sep=";", decimal=",")["preis"]

    table = read_table(tmp_path / "prices.csv")
    assert table["preis"].kind == "number"
    np.testing.assert_array_equal(table["preis"].values, expected.to_numpy())


def test_decimal_says_what_the_file_cannot(tmp_path, rng, capsys):
    # three digits after every comma: a thousands group or a decimal mark; --decimal decides
    # (from 1: '0,125' is no thousands group, and a tab file of them is read with ',')
    doses = rng.integers(1000, 5000, size=40) / 1000
    lines = ["dose\tmenge\ty"] + [
        f"{d:.3f}".replace(".", ",") + f"\t{i % 7}\t{i % 2}" for i, d in enumerate(doses)
    ]
    (tmp_path / "doses.tsv").write_text("\n".join(lines) + "\n")
    data = training_table(read_table(tmp_path / "doses.tsv"), ["y"])
    assert any("--decimal ," in w for w in data.warnings), data.warnings

    table = read_table(tmp_path / "doses.tsv", decimal=",")
    expected = pd.read_csv(tmp_path / "doses.tsv", sep="\t", decimal=",")["dose"]
    np.testing.assert_array_equal(table["dose"].values, expected.to_numpy())
    model = trained(capsys, tmp_path / "doses.tsv", "--target", "y", "--decimal", ",")
    assert "dose" in wxb.load(model).info["table"]["columns"][0]["name"]


def test_late_decimal_comma_among_whole_numbers_is_refused_with_the_option(tmp_path, rng):
    rows = ["preis;y"] + [f"{v};{i % 2}" for i, v in enumerate(rng.integers(10, 99, 30_000))]
    rows.insert(25_000, "70,5;1")  # past the 64 KiB sample: read as text, one odd cell
    (tmp_path / "late.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(wxb.errors.DataError, match="--decimal ,"):
        training_table(read_table(tmp_path / "late.csv"), ["y"])


def unusable_columns(tmp_path: Path, rng, n: int = 60) -> pd.DataFrame:
    """x and y, beside a time of day, an 'inf' cell and a Latin-1 byte."""
    frame = pd.DataFrame({"x": rng.normal(size=n).round(3), "y": rng.choice(["a", "b"], n)})
    frame.to_csv(tmp_path / "clean.csv", index=False)
    lines = ["x,t,z,c,y"]
    for i, (x, y) in enumerate(zip(frame.x, frame.y, strict=True)):
        lines.append(f"{x},12:{i % 60:02d}:00,{'inf' if i == 3 else i},caf\xe9,{y}")
    (tmp_path / "extra.csv").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return frame


def test_columns_a_run_does_not_use_are_not_read(tmp_path, rng, capsys):
    frame = unusable_columns(tmp_path, rng)
    for options in (("--drop", "t,z,c"), ("--features", "x")):
        model = trained(capsys, tmp_path / "extra.csv", "--target", "y", *options)
        assert [c["name"] for c in wxb.load(model).info["table"]["columns"]] == ["x"]
    # a model of x alone predicts the extra file as it predicts the clean one
    model = trained(capsys, tmp_path / "clean.csv", "--target", "y")
    expected = predicted(capsys, model, tmp_path / "clean.csv", "--proba")
    got = predicted(capsys, model, tmp_path / "extra.csv", "--proba")
    pd.testing.assert_frame_equal(got, expected)
    assert len(got) == len(frame)


def test_a_dropped_column_is_still_one_the_file_has(tmp_path, rng, capsys):
    unusable_columns(tmp_path, rng)
    code, _, err = run(capsys, "train", "--data", tmp_path / "extra.csv", "--target", "y",
                       "--drop", "t,z,c,nope", *FAST)  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "'nope'" in err
    assert {"t", "z", "c"} <= set(err.split("columns: ")[1].rstrip(")\n").split(", "))


def test_bytes_that_are_not_utf8_in_cells_ask_for_the_encoding(tmp_path, rng, capsys):
    unusable_columns(tmp_path, rng)
    code, _, err = run(capsys, "train", "--data", tmp_path / "extra.csv", "--target", "y",
                       "--drop", "t,z", *FAST)  # fmt: skip
    assert code == 2 and "'c'" in err and "--encoding" in err
    model = trained(capsys, tmp_path / "extra.csv", "--target", "y", "--drop", "t,z",
                    "--encoding", "latin-1")  # fmt: skip
    categories = wxb.load(model).info["table"]["columns"]
    assert ["café"] == next(c["categories"] for c in categories if c["name"] == "c")


def test_codes_past_int64_are_identifiers_and_classes_not_floats(tmp_path, rng, capsys):
    n = 60
    base = 10**19 + int(rng.integers(10**6))
    orders = [str(base + 2 * i) for i in range(n)]  # 20 digits: float64 would merge them
    x = rng.normal(size=n).round(3)
    pd.DataFrame({"order": orders, "x": x, "y": rng.choice(["a", "b"], n)}).to_csv(
        tmp_path / "orders.csv", index=False
    )
    data = training_table(read_table(tmp_path / "orders.csv"), ["y"])
    assert data.features == ["x"] and "'order'" in data.warnings[0]

    labels = [str(base + 1), str(base + 2), "5"]  # 1e19+1 and 1e19+2 are one float64
    y = [labels[i % 3] for i in range(n)]
    pd.DataFrame({"x": x, "code": y}).to_csv(tmp_path / "codes.csv", index=False)
    model = trained(capsys, tmp_path / "codes.csv", "--target", "code")
    assert sorted(wxb.load(model).info["classes"]) == sorted(labels)
    assert set(predicted(capsys, model, tmp_path / "codes.csv")["prediction"]) <= set(labels)


@pytest.mark.parametrize("labels", [["01", "1", "02"], ["007", "008", "010"]])
def test_class_labels_written_with_leading_zeros_stay_as_written(tmp_path, rng, capsys, labels):
    n = 60
    y = [labels[i % 3] for i in range(n)]
    x = np.array([labels.index(v) for v in y]) + rng.normal(scale=0.05, size=n)
    pd.DataFrame({"x": x.round(3), "code": y}).to_csv(tmp_path / "c.csv", index=False)
    model = trained(capsys, tmp_path / "c.csv", "--target", "code")
    assert sorted(wxb.load(model).info["classes"]) == sorted(labels)
    assert set(predicted(capsys, model, tmp_path / "c.csv")["prediction"]) <= set(labels)


def test_dates_without_zero_padding_are_refused_as_dates(tmp_path, rng, capsys):
    n = 40
    days = [f"2026-{1 + i % 3}-{1 + i % 2}" for i in range(n)]  # repeated: not an identifier
    pd.DataFrame({"d": days, "x": rng.normal(size=n), "y": np.arange(n) % 2}).to_csv(
        tmp_path / "d.csv", index=False
    )
    code, _, err = run(capsys, "train", "--data", tmp_path / "d.csv", "--target", "y", *FAST)
    assert code == 2 and "dates" in err and "'d'" in err


def test_identifiers_that_read_like_missing_markers_are_kept(tmp_path, rng, capsys):
    n = 48
    countries = ["NA", "None", "null", "NaN", "N/A", "?", "DE", "FR"]
    ids = [countries[i % len(countries)] for i in range(n)]
    frame = pd.DataFrame({"country": ids, "x": rng.normal(size=n), "y": np.arange(n) % 2})
    frame.to_csv(tmp_path / "c.csv", index=False)
    model = trained(capsys, tmp_path / "c.csv", "--target", "y", "--id-column", "country")
    assert predicted(capsys, model, tmp_path / "c.csv")["country"].tolist() == ids


@pytest.mark.parametrize("name", ["prediction", "p_b"])
def test_an_identifier_named_like_a_prediction_column_is_refused(tmp_path, rng, capsys, name):
    n = 40
    frame = pd.DataFrame(
        {name: [f"r{i}" for i in range(n)], "x": rng.normal(size=n), "y": rng.choice(["a", "b"], n)}
    )
    frame.to_csv(tmp_path / "d.csv", index=False)
    code, _, err = run(capsys, "train", "--data", tmp_path / "d.csv", "--target", "y",
                       "--id-column", name, *FAST, "-o", tmp_path / "m.safetensors")  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and repr(name) in err
    assert not (tmp_path / "m.safetensors").exists()


def test_notes_with_line_breaks_in_a_large_file_are_read(tmp_path, rng):
    n = 30_000  # over pyarrow's 1 MiB blocks, whose splits would cut a quoted note
    notes = ['"' + "\n".join(f"line {k}, of note {i}" for k in range(3)) + '"' for i in range(n)]
    x = rng.normal(size=n).round(4)
    lines = ["x,note,y"] + [
        f"{v},{note},{i % 2}" for i, (v, note) in enumerate(zip(x, notes, strict=True))
    ]
    (tmp_path / "notes.csv").write_text("\n".join(lines) + "\n")
    assert (tmp_path / "notes.csv").stat().st_size > 2 << 20
    expected = pd.read_csv(tmp_path / "notes.csv")
    table = read_table(tmp_path / "notes.csv")
    np.testing.assert_array_equal(table["x"].values, expected["x"].to_numpy())
    assert list(table["note"].values[:3]) == list(expected["note"][:3])

    # a cell of over 1 MiB: one block holds it
    big = "abc" * 400_000
    lines = ["x,note,y"] + [f"{v},{big if i == 5 else 'a'},{i % 2}" for i, v in enumerate(x[:20])]
    (tmp_path / "long.csv").write_text("\n".join(lines) + "\n")
    table = read_table(tmp_path / "long.csv")
    assert table["note"].values[5] == big and table.n_rows == 20


def test_large_measurements_are_features_not_identifiers(tmp_path, rng):
    n = 60
    mass = rng.uniform(1, 9, n) * 1e25  # kg: every float64 this large is a whole number
    frame = pd.DataFrame({"mass": mass, "x": rng.normal(size=n), "y": rng.choice(["a", "b"], n)})
    frame.to_csv(tmp_path / "stars.csv", index=False)
    data = training_table(read_table(tmp_path / "stars.csv"), ["y"])
    assert data.features == ["mass", "x"] and data.warnings == []
    # as a regression target too: numbers, not 60 classes
    table = read_table(tmp_path / "stars.csv", targets=["mass"], keep_float64=["mass"])
    np.testing.assert_array_equal(table["mass"].values, pd.read_csv(tmp_path / "stars.csv")["mass"])


def test_a_missing_target_is_told_with_every_column_of_the_file(tmp_path, rng, capsys):
    n = 40
    frame = pd.DataFrame({"a": rng.normal(size=n), "y": rng.choice(["p", "q"], n)})
    frame.to_csv(tmp_path / "train.csv", index=False)
    model = trained(capsys, tmp_path / "train.csv", "--target", "y")
    frame.drop(columns="y").assign(b=1.0, price=2.0).to_csv(tmp_path / "new.csv", index=False)
    code, _, err = run(capsys, "eval", model, tmp_path / "new.csv")
    assert code == 2 and "columns: a, b, price" in err


def test_rows_told_as_training_rows_are_so_as_the_network_sees_them(tmp_path, rng, capsys):
    # a new row whose gap the table stage fills with a training row's value is, as the
    # network takes it in, that training row: told so, not as a row of the training file
    n = 60
    frame = pd.DataFrame({"a": rng.integers(0, 3, n) * 1.5, "b": rng.normal(size=n).round(3)})
    frame["y"] = rng.choice(["p", "q"], n)
    frame.to_csv(tmp_path / "train.csv", index=False)
    model = trained(capsys, tmp_path / "train.csv", "--target", "y", "--fingerprint")
    new = frame.copy()
    new["a"] = np.nan
    new.to_csv(tmp_path / "new.csv", index=False)
    code, _, err = run(capsys, "eval", model, tmp_path / "new.csv")
    assert code == 0 and "were training rows" not in err
    assert err == "" or "as the network takes them in" in err
    code, _, err = run(capsys, "eval", model, tmp_path / "train.csv")
    assert code == 0 and f"of {n} rows" in err and "rows it was trained on" in err


def test_hexadecimal_codes_are_categories_as_pandas_reads_them(tmp_path, rng):
    n = 40
    codes = rng.choice(["0x80070005", "0x80004005", "0x0", "0x1F"], n)
    frame = pd.DataFrame({"err": codes, "x": rng.normal(size=n), "y": rng.choice(["a", "b"], n)})
    frame.to_csv(tmp_path / "e.csv", index=False)
    table = read_table(tmp_path / "e.csv")
    expected = pd.read_csv(tmp_path / "e.csv")["err"]
    assert table["err"].kind == "text" and list(table["err"].values) == list(expected)


def test_codes_past_int64_of_mixed_widths_or_later_rows_stay_text(tmp_path, rng):
    # 19 digits past int64's largest, 20 digits, and codes that grow past it after 1 MiB
    mixed = [str(9_300_000_000_000_000_000 + int(i)) for i in rng.permutation(100)]
    mixed += [str(10**19 * 5 + int(i)) for i in range(100)]
    frame = pd.DataFrame({"order": mixed, "y": rng.choice(["a", "b"], 200)})
    frame.to_csv(tmp_path / "mixed.csv", index=False)
    table = read_table(tmp_path / "mixed.csv")
    assert table["order"].kind == "text" and len(set(table["order"].values)) == 200

    n = 70_000  # 20+ bytes a row: past the 1 MiB block pyarrow types from
    grow = [str(9_223_372_036_854_700_000 + 3 * i) for i in range(n)]  # past int64 late
    pd.DataFrame({"order": grow, "y": np.arange(n) % 2}).to_csv(tmp_path / "g.csv", index=False)
    table = read_table(tmp_path / "g.csv")
    assert table["order"].kind == "text" and len(set(table["order"].values)) == n


def test_a_dict_of_codes_past_int64_reads_as_the_dataframe(rng):
    codes = [str(10**19 * 2 + int(i)) for i in rng.permutation(4)]  # one float64 for all
    as_dict = read_table({"id": codes})
    as_frame = read_table(pd.DataFrame({"id": codes}))
    assert as_dict["id"].kind == as_frame["id"].kind == "text"
    assert list(as_dict["id"].values) == codes


def test_a_block_grows_no_larger_than_pyarrow_takes():
    from wxb.tables import MAX_BLOCK, _read_again_wider

    class Options:
        block_size = 256 << 20
        newlines_in_values = True

    options = Options()
    assert _read_again_wider("straddling object", options, options)
    assert options.block_size == MAX_BLOCK == 2**31 - 1
    assert not _read_again_wider("straddling object", options, options)
