"""The path from a Parquet or Feather file to the float32 matrix a network trains on
(read_table(float32=True), choose_features, TableEncoder.fit on the training rows, then
transform), on generated tables large enough for its threaded route: each cell as
pyarrow reads it, each fill value as scikit-learn's SimpleImputer computes it on the
training rows, each text column as its OneHotEncoder writes it, and the same matrix
whether threads do the work or not."""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from wxb import columns as wcolumns
from wxb import tables as wtables
from wxb.columns import TableEncoder, choose_features
from wxb.tables import float32_coarsens, read_table

ROWS = 120_000  # past THREADED_ROWS: the reader's, fit's and transform's threads run


def _table(rng: np.random.Generator, n: int) -> pa.Table:
    """Numbers of several types and scales with nulls and NaN, booleans, text with gaps
    and markers, a row ID, and a timestamp-like column float32 would coarsen."""
    gaps = lambda share: rng.random(n) < share  # noqa: E731
    scale = 10.0 ** rng.integers(-3, 4)
    with_nan = rng.standard_normal(n) * scale
    with_nan[gaps(0.1)] = np.nan  # NaN cells, not nulls
    one = np.full(n, np.nan)
    one[rng.integers(n)] = 2.5  # a single value
    words = rng.choice(["red", " green", "Blue", "NA", "teal"], n).astype(object)
    words[gaps(0.05)] = None
    return pa.table(
        {
            "plain": rng.standard_normal(n) * scale,
            "nulls": pa.array(rng.standard_normal(n).round(3), mask=gaps(0.2)),
            "nans": with_nan,
            "single": one,
            "f32": pa.array(rng.standard_normal(n).astype(np.float32), mask=gaps(0.05)),
            "ints": rng.integers(-40, 40, n),
            "int_gaps": pa.array(rng.integers(0, 9, n), mask=gaps(0.1)),
            "flag": rng.random(n) < 0.3,
            "flag_gaps": pa.array(rng.random(n) < 0.6, mask=gaps(0.1)),
            "colour": pa.array(words, pa.string()),
            "row_id": np.arange(n) + 7000,
            "stamp": 1.7e9 + rng.integers(0, 1000, n) * 30.0,  # float32: a step of 128
        }
    )


def _write(arrow: pa.Table, path, rng: np.random.Generator) -> None:
    if path.suffix == ".parquet":
        pq.write_table(arrow, path, row_group_size=int(rng.integers(5_000, ROWS + 1)))
    else:
        feather.write_feather(arrow, path, chunksize=int(rng.integers(5_000, ROWS + 1)))


def _reference(arrow: pa.Table, encoder: TableEncoder, rows: np.ndarray) -> np.ndarray:
    """The matrix from pyarrow's own columns and scikit-learn's imputers and encoder."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    parts = []
    for rule in encoder.rules:
        column = arrow.column(rule.name)
        if rule.kind == "text":
            cells = np.array(
                [None if c is None or c.strip() == "NA" else c.strip() for c in column.to_pylist()],
                dtype=object,
            ).reshape(-1, 1)
            imputer = SimpleImputer(missing_values=None, strategy="most_frequent")
            imputer.fit(cells[rows])
            assert rule.fill == imputer.statistics_[0]
            onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
            onehot.fit(imputer.transform(cells[rows]))
            assert rule.categories == list(onehot.categories_[0])
            parts.append(onehot.transform(imputer.transform(cells)).astype(np.float32))
            missing = np.array([c is None for c in cells[:, 0]])
        else:
            values = column.to_numpy(zero_copy_only=False)
            if values.dtype == bool or values.dtype == object:  # booleans: 0/1, None a gap
                values = np.array([np.nan if v is None else float(v) for v in column.to_pylist()])
            values = values.astype(np.float64)
            narrow = pa.types.is_floating(column.type) and not float32_coarsens(values)
            if narrow:  # read_table(float32=True) holds such a column in float32
                values = values.astype(np.float32).astype(np.float64)
            strategy = "most_frequent" if rule.kind == "bool" else "median"
            imputer = SimpleImputer(strategy=strategy, keep_empty_features=True)
            imputer.fit(values[rows].reshape(-1, 1))
            fill = imputer.statistics_[0]
            fill = float(np.float32(fill)) if narrow and rule.kind == "number" else fill
            fill += 0.0  # wxb fills a zero median with +0.0; NumPy's select may give -0.0
            assert rule.fill == fill, rule.name
            missing = np.isnan(values)
            parts.append(np.where(missing, fill, values).astype(np.float32).reshape(-1, 1))
        assert rule.indicator == bool(missing[rows].any()), rule.name
        if rule.indicator:
            parts.append(missing.astype(np.float32).reshape(-1, 1))
    return np.hstack(parts)


@pytest.mark.parametrize("suffix", [".parquet", ".feather"])
def test_the_path_to_the_float32_matrix_is_pyarrows_cells_and_scikit_learns_fills(
    tmp_path, seeded, suffix
):
    pytest.importorskip("sklearn")
    rng = seeded.rng
    arrow = _table(rng, ROWS)
    path = tmp_path / f"data{suffix}"
    _write(arrow, path, rng)
    table = read_table(path, float32=True)
    roles = choose_features(table, targets=["ints"])
    assert "row_id" not in roles.features, seeded.msg("the row ID is no feature")
    rows = rng.choice(ROWS, int(rng.integers(ROWS // 2, ROWS)), replace=False)  # the fit's
    if rng.random() < 0.5:  # 'single': its one value among the training rows, or no feature
        roles.features.remove("single")
    else:
        rows = np.union1d(rows, np.flatnonzero(~np.isnan(arrow.column("single").to_numpy())))
    for name in ("plain", "nulls", "nans", "stamp"):  # each cell as pyarrow reads it
        expected = arrow.column(name).to_numpy(zero_copy_only=False)
        kept = float32_coarsens(expected)
        assert table[name].values.dtype == (np.float64 if kept else np.float32), seeded.msg(name)
        np.testing.assert_array_equal(
            table[name].values, expected if kept else expected.astype(np.float32), seeded.msg(name)
        )
    encoder = TableEncoder.fit(table, roles.features, rows)
    X = encoder.transform(table, np.float32)
    assert X.dtype == np.float32 and X.flags.c_contiguous
    expected = _reference(arrow, encoder, rows)
    np.testing.assert_array_equal(X, expected, seeded.msg("the matrix"))
    assert X.tobytes() == expected.tobytes(), seeded.msg("bit for bit")


def test_threads_give_the_matrix_one_thread_gives(tmp_path, seeded, monkeypatch):
    rng = seeded.rng
    arrow = _table(rng, ROWS)
    path = tmp_path / "data.parquet"
    _write(arrow, path, rng)

    def matrix() -> tuple[np.ndarray, list]:
        table = read_table(path, float32=True)
        features = [n for n in table.names if n not in ("row_id", "single")]
        encoder = TableEncoder.fit(table, features)
        kinds = [(n, c.values.dtype.str, c.values.tobytes()) for n, c in table.columns.items()
                 if c.kind != "text"]  # fmt: skip
        return encoder.transform(table, np.float32), [encoder.to_json(), kinds]

    threaded, stage = matrix()
    monkeypatch.setattr(wtables, "THREADED_ROWS", 10 * ROWS)
    monkeypatch.setattr(wcolumns, "THREADED_ROWS", 10 * ROWS)
    alone, stage_alone = matrix()
    assert stage == stage_alone, seeded.msg("the fitted stage")
    assert threaded.tobytes() == alone.tobytes(), seeded.msg("the matrix")


def test_the_sample_that_keeps_a_column_float64_is_every_kth_row_across_chunks(seeded):
    rng = seeded.rng
    n = int(rng.integers(1, 60_000))
    values = rng.standard_normal(n)
    cuts = np.sort(rng.choice(np.arange(1, n), min(n - 1, int(rng.integers(0, 9))), False))
    chunks = [pa.array(part, mask=rng.random(len(part)) < 0.2) for part in np.split(values, cuts)]
    chunked = pa.chunked_array(chunks, pa.float64())
    size = int(rng.integers(1, 20_000))
    every = max(1, n // size)
    expected = chunked.take(np.arange(0, n, every)).to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(wtables._sample_of(chunked, size), expected, seeded.msg("sample"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_columns_side_by_side_in_one_array_are_written_as_each_alone(seeded, monkeypatch, dtype):
    """Columns that are consecutive rows of one array (a reader's float32 slab) go to the
    matrix in one transposing copy; with gaps, text and other columns between them, the
    matrix is each column's own values, its gaps filled with its median."""
    rng = seeded.rng
    n, k = int(rng.integers(1, 3_000)), int(rng.integers(2, 14))
    slab = rng.standard_normal((k, n)).astype(np.float32)
    slab[rng.random((k, n)) < 0.02 * rng.integers(0, 2, (k, 1))] = np.nan  # some with gaps
    order = rng.permutation(k) if rng.random() < 0.3 else np.arange(k)
    data = {f"s{i}": slab[i] for i in order}
    data["word"] = rng.choice(["a", "b", "c"], n)
    data["wide"] = rng.standard_normal(n)
    names = list(data)
    if rng.random() < 0.3:
        rng.shuffle(names)
    table = wtables.Table({m: wtables.Column(m, "number", data[m]) for m in names if m != "word"})
    table.columns["word"] = wtables.Column("word", "text", data["word"].astype(object))
    table.n_rows = n
    monkeypatch.setattr(TableEncoder, "BLOCK_ROWS", int(rng.integers(1, n + 2)))
    encoder = TableEncoder.fit(table, names)
    X = encoder.transform(table, dtype)
    parts = []
    for name in names:
        values = data[name]
        if name == "word":
            parts.extend((values == c).astype(dtype) for c in sorted(set(values)))
            continue
        gaps = np.isnan(values)
        fill = np.median(values[~gaps].astype(np.float64))
        fill = np.float32(fill) if values.dtype == np.float32 else fill
        parts.append(np.where(gaps, fill, values).astype(dtype))
        if gaps.any():
            parts.append(gaps.astype(dtype))
    expected = np.column_stack(parts)
    assert X.tobytes() == expected.tobytes(), seeded.msg(f"order {order}, names {names}")


def test_reading_in_threads_leaves_the_warning_filters_as_they_were(tmp_path, seeded):
    """The check whether float32 coarsens a column silences NumPy's all-NaN warnings with
    warnings.catch_warnings, which swaps the process's filters: run in two threads at
    once, one thread's exit could leave the other's 'ignore' behind for the whole
    process (a user's RuntimeWarnings gone for good)."""
    rng = seeded.rng
    n = ROWS
    columns = {}
    for j in range(8):
        values = rng.standard_normal(n) if j % 2 else np.full(n, np.nan)  # all-NaN: warns
        columns[f"c{j}"] = values
    path = tmp_path / "gaps.parquet"
    pq.write_table(pa.table(columns), path)
    before = list(warnings.filters)
    for _ in range(3):
        table = read_table(path, float32=True)
        assert list(warnings.filters) == before, seeded.msg("the warning filters")
    assert all(table[f"c{j}"].values.dtype == np.float32 for j in range(1, 8, 2))


def test_a_number_past_float32s_range_is_refused_with_the_hint_and_no_numpy_warning(
    tmp_path, seeded
):
    """Read as float32, 1e39 becomes inf: the reader names its row and says to read it as
    float64, as after Arrow's cast, without NumPy's 'overflow encountered in cast' on top
    (the cast now NumPy's, in threads)."""
    rng = seeded.rng
    row = int(rng.integers(ROWS))
    big = rng.standard_normal(ROWS)
    big[row] = float(rng.choice([-1, 1])) * 10.0 ** rng.uniform(38.6, 300)
    columns = {"a": rng.standard_normal(ROWS), "big": big, "b": rng.standard_normal(ROWS)}
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table(columns), path, row_group_size=int(rng.integers(5_000, ROWS)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(wtables.DataError) as refused:
            read_table(path, float32=True)
    message = str(refused.value)
    assert f"row {row}, column 'big'" in message and "float32's range" in message, message
    assert not [w for w in caught if "overflow" in str(w.message)], seeded.msg(str(caught))
    assert read_table(path)["big"].values[row] == big[row]  # float64 holds it
