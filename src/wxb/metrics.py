"""Evaluation figures (classification, regression) as JSON-able dicts, their terminal text,
and row fingerprints that tell whether evaluated rows were among the training rows."""

from __future__ import annotations

import base64
import binascii

import numpy as np

from wxb.errors import DataError

_MASK64 = (1 << 64) - 1
_NAME_WIDTH = 12  # class names longer than this are cut in the text tables


# --------------------------------------------------------------------------- classification


def _class_indices(y: np.ndarray, name: str, n_classes: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{name} must be 1-D class indices, got shape {y.shape}")
    if y.dtype.kind not in "iub":
        # Float labels such as 2.0 are fine; 2.5 is not a class index.
        if y.dtype.kind != "f" or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise DataError(f"{name} must hold integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise DataError(
            f"{name} holds class indices {y.min()}..{y.max()}, expected 0..{n_classes - 1}"
        )
    return y


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0.0 where den == 0 (scikit-learn's zero_division=0), silently."""
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


MAX_CONFUSION_CLASSES = 50  # a wider confusion matrix is neither read nor printed


def classification_figures(y_true: np.ndarray, y_pred: np.ndarray, classes: list) -> dict:
    """Accuracy, per-class precision/recall/F1/support, macro and weighted F1, confusion.

    ``y_true`` and ``y_pred`` are class indices 0..C-1 with C = ``len(classes)``. Keys:
    ``accuracy``, ``per_class`` (dicts with ``class``, ``precision``, ``recall``, ``f1``,
    ``support``), ``macro_f1``, ``weighted_f1``, ``confusion`` (rows true, columns predicted;
    None beyond ``MAX_CONFUSION_CLASSES`` classes).
    Like scikit-learn's defaults, ``macro_f1`` averages over the classes that occur in
    ``y_true`` or ``y_pred``; a class that is neither present nor predicted is listed with
    zeros but does not drag the average down (``left_out`` names them). A precision of a
    class never predicted, a recall of a class without rows, is undefined: 0.0, as
    scikit-learn's ``zero_division=0`` (``undefined`` names those classes, the ones left
    out aside).
    """
    n_classes = len(classes)
    if n_classes == 0:
        raise DataError("classes is empty; at least one class is needed")
    y_true = _class_indices(y_true, "y_true", n_classes)
    y_pred = _class_indices(y_pred, "y_pred", n_classes)
    if y_true.shape != y_pred.shape:
        raise DataError(f"y_true has {y_true.size} rows but y_pred has {y_pred.size}")
    if y_true.size == 0:
        raise DataError("no rows to evaluate")

    tp = np.bincount(y_true[y_true == y_pred], minlength=n_classes).astype(np.float64)
    support = np.bincount(y_true, minlength=n_classes)
    predicted = np.bincount(y_pred, minlength=n_classes)
    confusion = None  # C × C counts: for many classes, gigabytes no one reads
    if n_classes <= MAX_CONFUSION_CLASSES:  # one bincount over the pair code gives it
        confusion = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
        confusion = confusion.reshape(n_classes, n_classes).astype(int).tolist()

    precision = _divide(tp, predicted)
    recall = _divide(tp, support)
    # 2·tp / (2·tp + fp + fn), the form scikit-learn uses; equals 2PR/(P+R).
    f1 = _divide(2.0 * tp, (support + predicted).astype(np.float64))

    seen = (support + predicted) > 0
    macro_f1 = float(f1[seen].mean())
    weighted_f1 = float((f1 * support).sum() / support.sum())

    per_class = [
        {
            "class": classes[k],
            "precision": float(precision[k]),
            "recall": float(recall[k]),
            "f1": float(f1[k]),
            "support": int(support[k]),
        }
        for k in range(n_classes)
    ]
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "per_class": per_class,
        "macro_f1": macro_f1,
        "weighted_f1": weighted_f1,
        "confusion": confusion,
        "left_out": [classes[k] for k in np.flatnonzero(~seen)],
        "undefined": {  # the classes whose 0.0 is zero_division's, the left out aside
            "precision": [classes[k] for k in np.flatnonzero(seen & (predicted == 0))],
            "recall": [classes[k] for k in np.flatnonzero(seen & (support == 0))],
        },
    }


# --------------------------------------------------------------------------- regression


def _regression_array(y: np.ndarray, name: str) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise DataError(f"{name} must be 1-D or 2-D (rows, outputs), got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise DataError(f"{name} holds NaN or infinite values")
    return y


def regression_figures(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """MAE, RMSE and R² averaged uniformly over outputs, as scikit-learn does.

    Keys: ``mae``, ``rmse``, ``r2``, and ``per_output`` (dicts with ``mae``, ``rmse``,
    ``r2``) when there are several outputs. R² of a constant true column is 1.0 when the
    predictions are exact and 0.0 otherwise (scikit-learn's force_finite rule). Of a
    single row, R² is NaN: it is not defined there (scikit-learn's NaN, with a warning).
    ``constant``: the outputs (indices) whose R² is so forced, when any.
    """
    t = _regression_array(y_true, "y_true")
    p = _regression_array(y_pred, "y_pred")
    if t.shape != p.shape:
        raise DataError(f"y_true has shape {t.shape} but y_pred has shape {p.shape}")
    if t.shape[0] == 0:
        raise DataError("no rows to evaluate")

    err = t - p
    mae = np.mean(np.abs(err), axis=0)
    rmse = np.sqrt(np.mean(err * err, axis=0))  # per output, then averaged, like sklearn
    ss_res = np.sum(err * err, axis=0)
    ss_tot = np.sum((t - t.mean(axis=0)) ** 2, axis=0)
    # Test constancy exactly: the mean of equal values can round, leaving a tiny ss_tot.
    constant = np.all(t == t[0], axis=0)
    r2 = np.where(ss_res == 0, 1.0, 0.0)
    varying = ~constant & (ss_tot > 0)
    r2[varying] = 1.0 - ss_res[varying] / ss_tot[varying]
    if t.shape[0] < 2:
        r2[:] = np.nan

    figures = {"mae": float(mae.mean()), "rmse": float(rmse.mean()), "r2": float(r2.mean())}
    if t.shape[0] >= 2 and constant.any():
        figures["constant"] = [int(k) for k in np.flatnonzero(constant)]
    if t.shape[1] > 1:
        figures["per_output"] = [
            {"mae": float(a), "rmse": float(b), "r2": float(c)}
            for a, b, c in zip(mae, rmse, r2, strict=True)
        ]
    return figures


# --------------------------------------------------------------------------- text


def _short_names(names: list[object]) -> list[str]:
    """Class names cut to fit the tables, as long as they stay told apart: cut names that
    would read alike ('category_...' twice) are cut longer, up to whole."""
    texts = [str(name) for name in names]
    longest = max((len(t) for t in texts), default=0)
    for width in range(_NAME_WIDTH, longest + 1):
        cut = [t if len(t) <= width else t[: width - 3] + "..." for t in texts]
        if len(set(cut)) == len(cut):
            return cut
    return texts


def format_classification(figures: dict) -> str:
    """Terminal text for ``classification_figures``: summary line, table, confusion matrix."""
    rows = figures["per_class"]
    full = [str(row["class"]) for row in rows]  # whole in their own column, as scikit-learn's
    names = _short_names(full)  # cut where each is a column of the confusion matrix
    # figure_text, as the eval headline writes them: 0.99996 is not 1.0000 (one miss in 25,000)
    accuracy, macro = figure_text(figures["accuracy"]), figure_text(figures["macro_f1"])
    lines = [f"accuracy {accuracy}, macro F1 {macro}", ""]

    w = max([len("class"), *map(len, full)])
    s = max(len("support"), *(len(str(row["support"])) for row in rows))
    cells = [[figure_text(row[key]) for key in ("precision", "recall", "f1")] for row in rows]
    p, r, f = (
        max(len(head), *(len(c[i]) for c in cells))
        for i, head in enumerate(("precision", "recall", "F1"))
    )
    lines.append(
        f"{'class':<{w}}  {'precision':>{p}}  {'recall':>{r}}  {'F1':>{f}}  {'support':>{s}}"
    )
    for name, row, (pc, rc, fc) in zip(full, rows, cells, strict=True):
        lines.append(f"{name:<{w}}  {pc:>{p}}  {rc:>{r}}  {fc:>{f}}  {row['support']:>{s}d}")
    # say where a 0 in the table is no measured figure, and which rows the macro F1 skips
    undefined = figures.get("undefined") or {}
    parts = [
        f"the {key} of {_listed(undefined[key])} ({why})"
        for key, why in (("precision", "never predicted"), ("recall", "no rows"))
        if undefined.get(key)
    ]
    if parts:
        lines.append(f"(0 where undefined, as scikit-learn's zero_division=0: {'; '.join(parts)})")
    if figures.get("left_out"):
        lines.append(f"({_listed(figures['left_out'])}: no rows, never predicted; not in macro F1)")

    confusion = figures["confusion"]
    if confusion is None:
        lines += ["", f"(no confusion matrix for {len(rows):,} classes: at most "
                      f"{MAX_CONFUSION_CLASSES})"]  # fmt: skip
        return "\n".join(lines)
    corner = "true \\ predicted"
    w = max([len(corner), *map(len, full)])
    c = max([*map(len, names), *(len(str(v)) for r in confusion for v in r)])
    lines += ["", f"{corner:<{w}}" + "".join(f"  {n:>{c}}" for n in names)]
    for name, counts in zip(full, confusion, strict=True):
        lines.append(f"{name:<{w}}" + "".join(f"  {v:>{c}d}" for v in counts))
    return "\n".join(lines)


def _listed(names: list, shown: int = 12) -> str:
    """Class names for a note: the first few, then how many more."""
    text = ", ".join(str(name) for name in names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


def figure_text(value: float) -> str:
    """A loss or score for the terminal: four decimals, or four significant digits when
    those would hide it (an MSE of 7e-9 is not 0.0000) or run long (6.7e+11)."""
    if value == 0 or 1e-3 <= abs(value) < 1e5 or not np.isfinite(value):
        text = f"{value:.4f}"
        digits = 4
        while float(text) in (1.0, -1.0) and value != float(text) and digits < 17:
            digits += 1  # 0.999996 is not 1.0000: an R² or accuracy short of perfect
            text = f"{value:.{digits}f}"
        return text
    return f"{value:.4g}"


def share_text(part: int, whole: int) -> str:
    """``part`` of ``whole`` as a whole percent that reads 0% only for none and 100% only
    for all: 1 of 300 is not '0%', 299 of 300 not '100%' (<1%, >99%)."""
    text = f"{part / whole:.0%}"
    if 0 < part < whole and text in ("0%", "100%"):
        return "<1%" if text == "0%" else ">99%"
    return text


def format_regression(figures: dict, names: list[str] | None = None) -> str:
    """Terminal text for ``regression_figures``: one line, plus one per output when
    several, named by ``names`` (the target columns, in the outputs' order)."""

    def line(f: dict) -> str:
        # R² as the headline writes it: 0.999996 is not 'R² 1'
        return f"MAE {f['mae']:.4g}, RMSE {f['rmse']:.4g}, R² {figure_text(f['r2'])}"

    def name(k: int) -> str:
        return names[k] if names and len(names) > k else f"output {k}"

    lines = [line(figures)]
    for k, f in enumerate(figures.get("per_output", [])):
        lines.append(f"  {name(k)}: {line(f)}")
    constant = figures.get("constant")
    if constant:  # an R² of 0 (or 1) there is no measured figure: say so
        which = "the target" if len(figures.get("per_output", [])) < 2 and not names else ""
        which = which or ", ".join(name(k) for k in constant)
        lines.append(
            f"(R² undefined for {which}, whose true values are all equal: shown as 1 for "
            "exact predictions, else 0, as scikit-learn's force_finite)"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- fingerprints


def _splitmix64(x: int) -> int:
    """splitmix64 finaliser on a Python int, for deriving the per-column constants."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays: a bijection with full avalanche."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def row_fingerprints(X: np.ndarray) -> np.ndarray:
    """A uint64 per row of ``X`` from the row's exact float64 values.

    -0.0 and 0.0 hash alike, as do all NaNs. Changing one value of a row (even by one ulp)
    always changes its fingerprint, since every step is a bijection in that value; other
    collisions are as likely as for a random 64-bit value (about n²/2⁶⁵ for n rows).
    """
    X = np.array(X, dtype=np.float64, order="C", copy=True)
    if X.ndim != 2:
        raise DataError(f"X must be 2-D (rows, columns), got shape {X.shape}")
    X[X == 0.0] = 0.0  # -0.0 == 0.0, so this writes +0.0 over both
    X[np.isnan(X)] = np.nan  # one bit pattern for every NaN payload and sign
    bits = X.view(np.uint64)
    n, m = X.shape

    with np.errstate(over="ignore"):
        # Start from the column count so a row padded with zeros is a different row.
        h = np.full(n, _splitmix64(m ^ 0x5851F42D4C957F2D), dtype=np.uint64)
        for j in range(m):
            # Odd per-column multiplier: the same value in another column mixes differently,
            # so permuting columns changes the fingerprint.
            key = np.uint64(_splitmix64(0xA0761D6478BD642F + j) | 1)
            v = _mix(bits[:, j] * key)
            h = ((h << np.uint64(27)) | (h >> np.uint64(37))) ^ v  # rotate, then xor
            h = h * np.uint64(0x9E3779B97F4A7C15)
        return _mix(h)


def pack_fingerprints(h: np.ndarray) -> str:
    """Sorted unique fingerprints as base64 ASCII of little-endian uint64 bytes."""
    unique = np.unique(np.asarray(h, dtype=np.uint64).ravel())
    return base64.b64encode(unique.astype("<u8").tobytes()).decode("ascii")


def unpack_fingerprints(text: str) -> np.ndarray:
    """The sorted uint64 array that ``pack_fingerprints`` wrote; DataError on bad text."""
    if not isinstance(text, str):
        raise DataError(f"fingerprints must be a base64 string, got {type(text).__name__}")
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DataError(f"fingerprints are not valid base64 ({exc})") from None
    if len(raw) % 8:
        raise DataError(
            f"fingerprints decode to {len(raw)} bytes, not a multiple of 8 (one uint64 each)"
        )
    # np.unique sorts, so hand-edited or concatenated text still works with searchsorted.
    return np.unique(np.frombuffer(raw, dtype="<u8").astype(np.uint64))


def count_overlap(fingerprints: np.ndarray, X: np.ndarray) -> int:
    """How many rows of ``X`` have their fingerprint in ``fingerprints`` (sorted uint64)."""
    known = np.asarray(fingerprints, dtype=np.uint64).ravel()
    h = row_fingerprints(X)
    if known.size == 0 or h.size == 0:
        return 0
    if np.any(known[1:] < known[:-1]):  # O(n) check; sort only when the caller did not
        known = np.sort(known)
    idx = np.minimum(np.searchsorted(known, h), known.size - 1)
    return int(np.count_nonzero(known[idx] == h))
