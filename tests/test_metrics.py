"""wxb.metrics against scikit-learn and brute force, on inputs drawn fresh each run.

Every random test prints its seed and puts it in assertion messages; rerun a failure with
``WXB_TEST_SEED=<seed>``.
"""

import json
import re

import numpy as np
import pytest

from wxb.errors import DataError
from wxb.metrics import (
    MAX_CONFUSION_CLASSES,
    classification_figures,
    count_overlap,
    format_classification,
    format_regression,
    pack_fingerprints,
    regression_figures,
    row_fingerprints,
    unpack_fingerprints,
)


@pytest.fixture
def draw(seeded):
    """(rng, seed) with a fresh seed each run (conftest's, so WXB_TEST_SEED replays it)."""
    return seeded.rng, seeded.seed


def close(actual, expected, seed, what):
    np.testing.assert_allclose(
        actual, expected, rtol=1e-12, atol=1e-15, err_msg=f"{what}, seed {seed}"
    )


# --------------------------------------------------------------------------- classification


def check_against_sklearn(y_true, y_pred, n_classes, seed):
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    classes = [f"c{k}" for k in range(n_classes)]
    fig = classification_figures(y_true, y_pred, classes)
    json.dumps(fig)  # JSON-able, no numpy scalars

    labels = list(range(n_classes))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    close(fig["accuracy"], accuracy_score(y_true, y_pred), seed, "accuracy")
    close([c["precision"] for c in fig["per_class"]], p, seed, "precision")
    close([c["recall"] for c in fig["per_class"]], r, seed, "recall")
    close([c["f1"] for c in fig["per_class"]], f, seed, "f1")
    assert [c["support"] for c in fig["per_class"]] == s.tolist(), f"seed {seed}"
    assert [c["class"] for c in fig["per_class"]] == classes
    macro = f1_score(y_true, y_pred, average="macro", zero_division=0)
    weighted = f1_score(y_true, y_pred, average="weighted", zero_division=0)
    close(fig["macro_f1"], macro, seed, "macro F1")
    close(fig["weighted_f1"], weighted, seed, "weighted F1")
    if n_classes <= MAX_CONFUSION_CLASSES:
        expected = confusion_matrix(y_true, y_pred, labels=labels).tolist()
        assert fig["confusion"] == expected, f"seed {seed}"
    else:  # C × C counts for thousands of classes: gigabytes no one reads
        assert fig["confusion"] is None
        assert "no confusion matrix" in format_classification(fig)
    return fig


def test_many_classes_get_their_figures_without_a_confusion_matrix(rng):
    classes = int(rng.integers(MAX_CONFUSION_CLASSES + 1, 5000))
    rows = int(rng.integers(1000, 20000))
    y_true = rng.integers(0, classes, rows)
    y_pred = np.where(rng.random(rows) < 0.5, y_true, rng.integers(0, classes, rows))
    check_against_sklearn(y_true, y_pred, classes, "many")


@pytest.mark.parametrize("n_classes", [2, 7])
def test_classification_matches_sklearn(draw, n_classes):
    rng, seed = draw
    for _ in range(5):
        n = int(rng.integers(1, 300))
        y_true = rng.integers(0, n_classes, n)
        # Mostly right, so precision and recall are not all near chance.
        y_pred = np.where(rng.random(n) < 0.7, y_true, rng.integers(0, n_classes, n))
        check_against_sklearn(y_true, y_pred, n_classes, seed)


def test_classification_absent_and_unpredicted_classes(draw):
    rng, seed = draw
    n = 200
    y_true = rng.integers(0, 5, n)  # classes 5 and 6 never present
    y_pred = rng.integers(1, 6, n)  # class 0 never predicted, 5 predicted but absent
    fig = check_against_sklearn(y_true, y_pred, 7, seed)
    rows = fig["per_class"]
    assert rows[0]["precision"] == 0.0 and rows[0]["f1"] == 0.0
    assert rows[5]["support"] == 0 and rows[5]["recall"] == 0.0
    assert rows[6] == {"class": "c6", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_classification_two_classes_one_never_predicted(draw):
    rng, seed = draw
    y_true = rng.integers(0, 2, 50)
    check_against_sklearn(y_true, np.zeros(50, dtype=int), 2, seed)


def test_classification_bad_input():
    with pytest.raises(DataError):
        classification_figures(np.array([0, 1]), np.array([0]), ["a", "b"])
    with pytest.raises(DataError):
        classification_figures(np.array([0, 2]), np.array([0, 1]), ["a", "b"])
    with pytest.raises(DataError):
        classification_figures(np.array([0.5, 1.0]), np.array([0, 1]), ["a", "b"])


# --------------------------------------------------------------------------- regression


def sklearn_regression(y_true, y_pred):
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    rmse = np.sqrt(mean_squared_error(y_true, y_pred, multioutput="raw_values"))
    return {
        "mae": mean_absolute_error(y_true, y_pred),
        "rmse": rmse.mean(),
        "r2": r2_score(y_true, y_pred),
        "raw": (
            mean_absolute_error(y_true, y_pred, multioutput="raw_values"),
            rmse,
            r2_score(y_true, y_pred, multioutput="raw_values"),
        ),
    }


def check_regression(y_true, y_pred, seed):
    fig = regression_figures(y_true, y_pred)
    json.dumps(fig)
    ref = sklearn_regression(y_true, y_pred)
    for key in ("mae", "rmse", "r2"):
        close(fig[key], ref[key], seed, key)
    if y_true.ndim == 2 and y_true.shape[1] > 1:
        for i, key in enumerate(("mae", "rmse", "r2")):
            close([o[key] for o in fig["per_output"]], ref["raw"][i], seed, f"per-output {key}")
    else:
        assert "per_output" not in fig
    return fig


def test_regression_matches_sklearn(draw):
    rng, seed = draw
    n = int(rng.integers(2, 200))
    y = rng.normal(size=n) * 10
    check_regression(y, y + rng.normal(size=n), seed)
    y = rng.normal(size=(n, 3)) * [1.0, 100.0, 0.01]
    check_regression(y, y + rng.normal(size=(n, 3)), seed)
    check_regression(y[:, :1], y[:, :1] * 0.5, seed)  # 2-D with one output


def test_regression_constant_column(draw):
    rng, seed = draw
    n = 40
    y = np.column_stack([np.full(n, 2.5), rng.normal(size=n), np.full(n, -3.0)])
    pred = y + rng.normal(size=(n, 3)) * 0.1
    pred[:, 2] = -3.0  # constant column predicted exactly: R² 1; column 0 not: R² 0
    fig = check_regression(y, pred, seed)
    assert fig["per_output"][0]["r2"] == 0.0
    assert fig["per_output"][2]["r2"] == 1.0
    check_regression(np.full(n, 7.0), np.full(n, 7.0), seed)


# --------------------------------------------------------------------------- text


NUMBER = r"[-+0-9.eE]+"


def test_format_classification_shows_the_figures(draw):
    rng, seed = draw
    classes = ["setosa", "a much longer class name", "virginica"]
    y_true = rng.integers(0, 3, 120)
    y_pred = np.where(rng.random(120) < 0.8, y_true, rng.integers(0, 3, 120))
    fig = classification_figures(y_true, y_pred, classes)
    text = format_classification(fig)
    lines = text.splitlines()

    head = re.fullmatch(rf"accuracy ({NUMBER}), macro F1 ({NUMBER})", lines[0])
    assert head, lines[0]
    assert float(head[1]) == pytest.approx(fig["accuracy"], abs=5e-5), f"seed {seed}"
    assert float(head[2]) == pytest.approx(fig["macro_f1"], abs=5e-5), f"seed {seed}"
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["class"])
    for row, line in zip(fig["per_class"], lines[header + 1 : header + 4], strict=True):
        name, p, r, f, s = line.rsplit(maxsplit=4)
        assert name.strip() == str(row["class"])  # whole in its own column, as scikit-learn's
        got = [float(p), float(r), float(f)]
        want = [row["precision"], row["recall"], row["f1"]]
        assert got == pytest.approx(want, abs=5e-5), f"seed {seed}"
        assert int(s) == row["support"]
    # the confusion matrix's columns are each class: there a long name is cut
    columns = next(line for line in lines if line.startswith("true \\ predicted"))
    assert "a much longer class name" not in columns and "a much lo..." in columns

    corner = next(i for i, line in enumerate(lines) if line.startswith("true \\ predicted"))
    matrix = [[int(v) for v in line.rsplit(maxsplit=3)[1:]] for line in lines[corner + 1 :]]
    assert matrix == fig["confusion"], f"seed {seed}"
    assert text.isascii()


def test_format_regression_shows_the_figures(draw):
    rng, seed = draw
    y = rng.normal(size=(30, 2)) * [1.0, 1000.0]
    fig = regression_figures(y, y + rng.normal(size=(30, 2)))
    lines = format_regression(fig).splitlines()
    assert len(lines) == 3
    for line, f in zip(lines, [fig, *fig["per_output"]], strict=True):
        m = re.search(rf"MAE ({NUMBER}), RMSE ({NUMBER}), R² ({NUMBER})$", line)
        assert m, line
        got = [float(m[1]), float(m[2])]
        assert got == pytest.approx([f["mae"], f["rmse"]], rel=1e-3), f"seed {seed}"
        # R² as the headline prints it: four decimals (more only short of ±1)
        assert float(m[3]) == pytest.approx(f["r2"], abs=5e-5), f"seed {seed}"
    one = format_regression(regression_figures(y[:, 0], y[:, 0] * 0.9))
    assert len(one.splitlines()) == 1


# --------------------------------------------------------------------------- fingerprints


def test_fingerprint_equal_rows_hash_equal(draw):
    rng, seed = draw
    X = rng.normal(size=(50, 4))
    X[:, 1] = 0.0
    X[::3, 2] = np.nan
    Y = X.copy()
    Y[:, 1] = -0.0
    odd_nans = np.array([0x7FF8000000000001, 0xFFF8000000000000], dtype=np.uint64)
    Y[::3, 2] = odd_nans.view(np.float64)[np.arange(Y[::3].shape[0]) % 2]
    assert np.signbit(Y[:, 1]).all()
    hx, hy = row_fingerprints(X), row_fingerprints(Y)
    assert hx.dtype == np.uint64 and hx.shape == (50,)
    assert np.array_equal(hx, hy), f"seed {seed}"
    assert np.array_equal(
        row_fingerprints(X.astype(np.float32)), row_fingerprints(X.astype(np.float32))
    )


def test_fingerprint_sensitive_to_one_ulp_and_column_order(draw):
    rng, seed = draw
    n = 2000
    X = rng.normal(size=(n, 5))
    X[::7] = 0.0  # include nextafter(0) = smallest subnormal
    h = row_fingerprints(X)
    up = X.copy()
    cols = rng.integers(0, 5, n)
    up[np.arange(n), cols] = np.nextafter(X[np.arange(n), cols], np.inf)
    assert np.all(row_fingerprints(up) != h), f"seed {seed}"

    Z = X[1::7]  # rows with distinct values, so any permutation changes the row
    perm = np.roll(np.arange(5), int(rng.integers(1, 5)))
    assert np.all(row_fingerprints(Z[:, perm]) != row_fingerprints(Z)), f"seed {seed}"
    swap = Z.copy()
    swap[:, [0, 1]] = swap[:, [1, 0]]
    assert np.all(row_fingerprints(swap) != row_fingerprints(Z)), f"seed {seed}"
    # A row padded with a zero column is another row.
    padded = np.column_stack([X, np.zeros(n)])
    assert np.all(row_fingerprints(padded) != h)


def test_fingerprint_no_collisions(draw):
    rng, seed = draw
    n = 200_000
    # Structured rows, the hard case for weak mixing: the digits of i, and i ulps above 1.
    digits = (np.arange(n)[:, None] // 10 ** np.arange(6)) % 10
    assert np.unique(row_fingerprints(digits)).size == n
    ulps = np.zeros((n, 3))
    ulps[:, 1] = 1.0 + np.arange(n) * np.finfo(np.float64).eps
    assert np.unique(row_fingerprints(ulps)).size == n
    X = rng.normal(size=(n, 4))
    assert np.unique(row_fingerprints(X)).size == n, f"seed {seed}"
    # Small integer rows repeat; distinct fingerprints must match distinct rows exactly.
    S = rng.integers(0, 6, size=(n, 7)).astype(np.float64)
    distinct_rows = np.unique(S.astype(np.int64) @ 6 ** np.arange(7)).size  # base-6 code
    assert np.unique(row_fingerprints(S)).size == distinct_rows, f"seed {seed}"


def test_pack_unpack_round_trip(draw):
    rng, seed = draw
    h = rng.integers(0, 2**64, size=1000, dtype=np.uint64)
    h = np.concatenate([h, h[:100]])  # duplicates drop out
    text = pack_fingerprints(h)
    assert isinstance(text, str) and text.isascii()
    back = unpack_fingerprints(text)
    assert back.dtype == np.uint64
    assert np.array_equal(back, np.unique(h)), f"seed {seed}"
    assert unpack_fingerprints(pack_fingerprints(np.array([], dtype=np.uint64))).size == 0


@pytest.mark.parametrize("garbage", ["not base64 at all!", "AAAA", "QUJD", "é" * 8, "A"])
def test_unpack_garbage_raises(garbage):
    with pytest.raises(DataError, match="fingerprints"):
        unpack_fingerprints(garbage)


def test_count_overlap_matches_brute_force(draw):
    rng, seed = draw
    train = rng.integers(-3, 4, size=(3000, 3)).astype(np.float64) / 2  # many duplicates
    train[::11, 0] = 0.0
    seen = train[rng.integers(0, len(train), 400)]
    seen[seen == 0.0] = -0.0  # same row in Python's eyes and in the fingerprints
    unseen = rng.normal(size=(300, 3))
    mixed = np.concatenate([seen, unseen, rng.integers(-4, 5, size=(300, 3)) / 2.0])
    rng.shuffle(mixed)

    train_set = set(map(tuple, train.tolist()))
    expected = sum(tuple(row) in train_set for row in mixed.tolist())
    packed = unpack_fingerprints(pack_fingerprints(row_fingerprints(train)))
    assert count_overlap(packed, mixed) == expected, f"seed {seed}"
    shuffled = row_fingerprints(train)
    rng.shuffle(shuffled)  # unsorted input still counts right
    assert count_overlap(shuffled, mixed) == expected, f"seed {seed}"
    assert count_overlap(np.array([], dtype=np.uint64), mixed) == 0


def test_long_class_names_stay_told_apart_in_the_text_table(rng):
    from wxb.metrics import classification_figures, format_classification

    names = np.array(["category_alpha", "category_beta", "c"])
    y_true = rng.integers(0, 3, 30)
    y_pred = rng.integers(0, 3, 30)
    text = format_classification(classification_figures(y_true, y_pred, list(names)))
    rows = [line.split()[0] for line in text.splitlines() if line.startswith(("categ", "c "))]
    assert len(rows) == 6 and len(set(rows[:3])) == 3, text  # table, then confusion matrix
    corner = next(line for line in text.splitlines() if line.startswith("true"))
    assert len(set(corner.split()[3:])) == 3, corner  # the cut column names stay apart
