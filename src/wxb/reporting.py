"""One self-contained HTML page of a model and its training: ``wxb report``.

The page holds what the terminal tools print, drawn: the Mermaid diagrams of
``describe`` rendered, the summary table with the machine's rate floor, the
walk-through of one sample (``explain_model``) with its equations typeset by KaTeX
and each Z, A, δ, ∂L/∂W as a heat-map and a histogram, the loss and accuracy
curves, the learning rate where it changed (a chart per parameter group) and the
per-layer diagnostics of a history, and the model file's info.

Everything it needs is inside the one file: Mermaid, KaTeX (its fonts as data: URIs)
and a small hand-written script for the charts, so it opens offline from disk and
fetches nothing. Numbers reach the script as one JSON block, escaped so that no
user text (a class or feature name) can close a tag; big matrices are summarised
(block means on a grid of at most ``MAX_GRID``², quantised to 8 bits, and a
histogram of every entry) so the page stays small.
"""

from __future__ import annotations

import base64
import html
import json
import math
import platform
import re
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from wxb import __version__
from wxb.data import atomic_write, check_can_write, check_format_name, refuse_folder_name
from wxb.describe import (
    Summary,
    architecture_diagram,
    backward_diagram,
    call_mismatch,
    chain_layers,
    forward_diagram,
    input_row,
    measure_gemm_rate,
    one_sample_run,
    percent,
    sample_ids_per_row,
    summary,
    table_stage_lines,
    unknown_order,
)
from wxb.errors import ConfigError, DataError
from wxb.explanation import Explanation, Step, explain_model, latex_line, scored_loss
from wxb.io import load_model
from wxb.metrics import figure_text
from wxb.nn.heads import head_index, trained_loss
from wxb.nn.layers import Activation, Dense
from wxb.nn.module import Module, is_stock
from wxb.nn.sequential import layers_in_order
from wxb.plots import check_history
from wxb.prepare import model_task
from wxb.train import History

MAX_GRID = 64  # a heat-map shows at most 64×64 cells: block means of a bigger matrix
SMALL_GRID = 32  # … and 32×32 when the walk-through has many steps (a deep model)
MANY_STEPS = 60
HISTOGRAM_BINS = 24
FOLD_ROWS = 24  # a summary table longer than this folds, as do the middle layer groups
OPEN_GROUPS = 3  # the first and last groups of the walk-through stay open
FOLD_NAMES = 20  # class and feature lists longer than this fold
ASSETS = ("mermaid.min.js", "katex.min.js", "katex.min.css")


# ---------------------------------------------------------------------------------
# The public entry points
# ---------------------------------------------------------------------------------
def report(
    model: Module | str | Path,
    history: History | dict[str, Any] | str | Path | None = None,
    X: object = None,
    y: object = None,
    path: str | Path = "report.html",
    *,
    sample: int = 0,
    loss: str | None = None,
    batch_size: int = 32,
    gemm_rate: float | None = None,
    floor: bool = True,
    data_source: str | None = None,
    sample_label: int | None = None,
    row_stage: list[str] | None = None,
    model_path: str | Path | None = None,
    seq_len: int | None = None,
) -> Path:
    """Write one self-contained HTML page of ``model`` (a Module or a model file) to
    ``path``, atomically; returns the path.

    ``history``: a History, its dict, or the JSON file ``wxb train --history`` wrote;
    it must be this model's (its diagnostics' layers and weight norms are checked).
    ``X`` (rows) and optionally ``y`` (targets as the model's loss takes them: class
    indices, or values) give the walk-through of row ``sample``; without ``y``, the
    forward pass only. ``loss`` defaults to the model's own (its info). The summary
    table is for a batch of ``batch_size``; its rate floor uses ``gemm_rate`` (FLOP/s)
    or, with ``floor`` and no rate given, a GEMM measured on this machine (a second).
    A model taking ids into an Embedding is summarised and drawn on rows of X's width,
    or of ``seq_len`` ids without X (as ``summary(seq_len=…)``; with X, the same width).
    What the command line knows besides: the row's number in its file
    (``sample_label``), how the table stage made it (``row_stage``), the model's file
    (``model_path``, which the page names and the write never replaces). A ``path``
    named for another format (``.csv``, ``.safetensors``, …) is refused, writing nothing.
    """
    refuse_folder_name(path, "report")  # (Path() drops the separator: 'r/' became file 'r')
    path = Path(path)
    if isinstance(model, (str, Path)):
        model_path = model
    inputs = [p for p in (model_path, history) if isinstance(p, (str, Path))]
    check_can_write(path, "report", protect=tuple(Path(p) for p in inputs))
    check_format_name(path, "wxb.report writes one HTML page", (".html", ".htm"))
    page = report_html(
        model,
        history,
        X,
        y,
        sample=sample,
        loss=loss,
        batch_size=batch_size,
        gemm_rate=gemm_rate,
        floor=floor,
        data_source=data_source,
        sample_label=sample_label,
        row_stage=row_stage,
        model_path=None if model_path is None else str(model_path),
        seq_len=seq_len,
    )
    atomic_write(path, page.encode("utf-8"))
    return path


def report_html(
    model: Module | str | Path,
    history: History | dict[str, Any] | str | Path | None = None,
    X: object = None,
    y: object = None,
    *,
    sample: int = 0,
    loss: str | None = None,
    batch_size: int = 32,
    gemm_rate: float | None = None,
    floor: bool = True,
    data_source: str | None = None,
    sample_label: int | None = None,
    row_stage: list[str] | None = None,
    model_path: str | None = None,
    seq_len: int | None = None,
) -> str:
    """The page ``report`` writes, as a string."""
    if isinstance(model, (str, Path)):
        model_path = str(model)
        model = load_model(model)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ConfigError(f"report batch_size must be a positive integer; got {batch_size!r}")
    if batch_size < 1:
        raise ConfigError(f"report batch_size must be a positive integer; got {batch_size!r}")
    record = read_history(history) if history is not None else None
    if record is not None:
        check_history_matches(model, record, _history_source(history))
    width = _row_width(X)
    if seq_len is not None:  # (summary's own check, named as report's)
        if isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)) or seq_len < 1:
            raise ConfigError(f"report seq_len must be a positive integer or None; got {seq_len!r}")
        with sample_ids_per_row(int(seq_len)):
            if not input_row(model)[1]:  # (it was ignored unsaid)
                raise ConfigError(
                    f"report seq_len={seq_len}: the model takes rows of features, not ids "
                    "into an Embedding; leave seq_len out"
                )
        if width is not None and width != seq_len:  # the walk-through runs X's rows
            raise ConfigError(
                f"report seq_len={seq_len}, but X's rows hold {width}; give one or the other"
            )
        width = int(seq_len)
    if gemm_rate is None and floor:
        gemm_rate = measure_gemm_rate(model.dtype)
    # the summary and the diagrams ask of one sample forward, on rows of X's width (a
    # model taking ids: as many a row as the data holds, or seq_len)
    with one_sample_run(), sample_ids_per_row(width):
        # (X's width is L for a model taking ids; summary refuses it for one of features)
        table = summary(model, batch_size, gemm_rate, width if input_row(model)[1] else None)
        walk, head_scored = None, False
        label = sample if sample_label is None else sample_label
        if X is not None:  # (its intro said 'every row of X' of the one row it walks)
            shown = f"row {label} of {data_source or 'X'}"
            walk, head_scored = _walkthrough(model, X, y, sample, loss, shown)
        page = _Page(model, model_path, table, walk, record, label, data_source, row_stage or [])
        page.head_scored = head_scored
        return page.html()


def _row_width(X: object) -> int | None:
    """The width of X's rows (a table's columns; one row's length), None without X or
    where its rows have no one width."""
    if X is None:
        return None
    try:
        shape = getattr(X, "shape", None) or np.shape(X)
    except ValueError:  # ragged rows: the walk-through says what is wrong with them
        return None
    width = shape[-1] if len(shape) in (1, 2) else 0
    return int(width) if width > 0 else None


def read_history(history: History | dict[str, Any] | str | Path) -> dict[str, Any]:
    """A history as ``History.to_dict()`` gives it, from a History, a dict or a JSON file;
    DataError for anything that is not one."""
    source = _history_source(history)
    if isinstance(history, History):
        record: Any = history.to_dict()
    elif isinstance(history, (str, Path)):
        if not Path(history).is_file():  # (was the OSError's "No such file or directory")
            what = "is a folder, not a history file" if Path(history).is_dir() else "no such file"
            raise DataError(f"{source}: {what}")
        try:
            record = json.loads(Path(history).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise DataError(f"{source}: not a JSON history ({exc})") from None
    else:
        record = history
    record = check_history(record, source)
    figures = record["history"]
    for key, values in figures.items():
        if not isinstance(values, list) or not all(_is_number_or_none(v) for v in values):
            raise DataError(f"{source}: not a wxb history ({key!r} is not a list of numbers)")
        if len(values) != len(figures["loss"]):  # one value per epoch in every series
            raise DataError(
                f"{source}: not a wxb history ({key!r} has {len(values)} epochs, 'loss' "
                f"{len(figures['loss'])})"
            )
    if all(v is None for v in figures["loss"]):
        raise DataError(f"{source}: not a wxb history (no epoch has a loss)")
    if not isinstance(record.get("loss_note", ""), str):
        raise DataError(f"{source}: not a wxb history (its loss_note is not text)")
    diagnostics = record.get("diagnostics") or []
    if not isinstance(diagnostics, list) or not all(_is_diagnostic(d) for d in diagnostics):
        raise DataError(f"{source}: not a wxb history (its diagnostics are not per-epoch layers)")
    warnings = record.get("warnings") or []
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        raise DataError(f"{source}: not a wxb history (its warnings are not text)")
    return record


def check_history_matches(model: Module, record: dict[str, Any], source: str = "history") -> None:
    """DataError unless ``record`` can be this model's training: its diagnostics name the
    model's Dense layers, their ‖W‖ at some epoch is the model's (the output layer's
    aside for a regressor, whose target scaling is folded into it after training), and
    it has an accuracy exactly when the model is a classifier."""
    denses = [layer for layer in layers_in_order(model) if is_stock(layer, Dense)]
    names = [layer.name or "dense" for layer in denses]
    task = model.info.get("task")
    if task is not None and ("accuracy" in record["history"]) != (task == "classification"):
        kind = "with" if "accuracy" in record["history"] else "without"
        raise DataError(
            f"{source}: a history {kind} accuracy, but the model is a {task} model; "
            "give the history written by the run that trained this model"
        )
    diagnostics = record.get("diagnostics") or []
    if not diagnostics:
        return
    # (an Embedding's, a norm's rows beside them: ‖W‖ of those is not checked)
    diagnostics = [
        {**entry, "layers": [x for x in entry["layers"] if x.get("kind", "Dense") == "Dense"]}
        for entry in diagnostics
    ]
    for entry in diagnostics:
        theirs = [str(layer.get("layer")) for layer in entry["layers"]]
        if theirs != names:
            raise DataError(
                f"{source}: a history of another model (its layers: {', '.join(theirs)}; "
                f"this model's: {', '.join(names) or 'none'})"
            )
    checked = range(len(denses) - 1 if task == "regression" else len(denses))
    if not checked:
        return
    mine = [float(np.sqrt(np.vdot(denses[i].weight.data, denses[i].weight.data))) for i in checked]
    for entry in diagnostics:
        # (null: a norm that was not finite, as History.to_json writes it)
        theirs = [_float_or_nan(entry["layers"][i]["weight_norm"]) for i in checked]
        if np.allclose(theirs, mine, rtol=1e-5, atol=0):
            return
    raise DataError(
        f"{source}: a history of another run (at no epoch are its weight norms ‖W‖ this "
        "model's); give the history written by the run that trained this model"
    )


def _history_source(history: object) -> str:
    return str(history) if isinstance(history, (str, Path)) else "history"


def _float_or_nan(value: object) -> float:
    return math.nan if value is None else float(value)


def _is_number_or_none(value: object) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _is_diagnostic(entry: object) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("layers"), list):
        return False
    keys = ("weight_norm", "weight_grad_norm", "delta_norm")
    return all(
        isinstance(layer, dict) and all(_is_number_or_none(layer.get(k)) for k in keys)
        for layer in entry["layers"]
    )


# ---------------------------------------------------------------------------------
# The walk-through of one sample
# ---------------------------------------------------------------------------------
def _walkthrough(
    model: Module, X: object, y: object, sample: int, loss: str | None, shown: str | None = None
):
    rows = np.asarray(X)
    if rows.ndim == 1:
        rows = rows.reshape(1, -1)
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 0:
        raise ConfigError(f"report sample must be a row index ≥ 0; got {sample!r}")
    if sample >= len(rows):
        raise DataError(f"sample {sample} but X has {len(rows)} rows")
    target, probabilities = None, False
    if y is not None:
        target = np.asarray(y)
        if target.ndim == 0 or len(target) != len(rows):
            raise DataError(f"y has {target.size} samples but X has {len(rows)}; they must match")
        target = target[sample : sample + 1]
        loss, probabilities = scored_loss(model, loss)
    walk = explain_model(
        model,
        rows[sample : sample + 1],
        target,
        loss,
        sample_rows=None,
        probabilities=probabilities,
        rows_label=shown,
    )
    return walk, probabilities


def _fprime_facts(
    model: Module, explanation: Explanation, head_scored: bool = False
) -> dict[int, dict[str, float]]:
    """For each activation step (by its id), f′(Z) from its A (σ′ = A(1 − A), tanh′ =
    1 − A², ReLU′ = [A > 0]): the factor the δ chain multiplies by there. The forward's
    A steps and the model's Activation layers pair in order (names may repeat across
    nested Sequentials). ``head_scored``: the loss was taken on the probability head's
    input, so δ does not pass through the head's f′ (δ⁽ᴸ⁾ = p − y)."""
    layers = layers_in_order(model)
    if layers == [model]:  # a forward of its own, walked layer by layer where a chain
        layers = chain_layers(model) or layers
    activations = [layer for layer in layers if is_stock(layer, Activation)]
    # the head the loss was scored past: the last layer before any Identity or Dropout
    # after it (a Sigmoid then an Identity is still the head; the Identity is not)
    skip = layers[head_index(layers)] if head_scored else None
    forward = explanation.sections[0].steps if explanation.sections else []
    steps = [step for step in forward if step.name.endswith(".A")]
    facts = {}
    for step, layer in zip(steps, activations, strict=False):
        if layer is skip:
            continue
        kind = layer.kernel.name
        A = np.asarray(step.value, dtype=np.float64)
        if kind == "sigmoid":
            fprime = A * (1 - A)
        elif kind == "tanh":
            fprime = 1 - A * A
        elif kind == "relu":
            fprime = (A > 0).astype(np.float64)
        else:
            continue
        facts[id(step)] = {
            "kind": kind,
            "mean": float(fprime.mean()),
            "small": float(np.mean(np.abs(fprime) < 0.01)),
        }
    return facts


def summarise(value: np.ndarray | float, cap: int = MAX_GRID) -> dict[str, Any]:
    """What the page shows of one array: its shape and statistics, a histogram of every
    entry, and a heat-map grid (block means, at most ``cap`` cells a side; a vector is
    laid out in rows, reading order) quantised to int8 against its largest |entry|."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return {"shape": [], "value": float(array)}
    finite = array[np.isfinite(array)]
    # ‖·‖, the mean and the bins in units of a power of two, which scales exactly: the
    # squares of entries past 1e154 overflowed (a norm of 1e160 shown as ∞), and hi − lo
    # of −1e308 … 1e308 too, which np.histogram refused
    shift = -math.frexp(float(np.abs(finite).max()))[1] if finite.size else 0
    with np.errstate(over="ignore"):  # a norm past float64's range is ∞ indeed
        norm = float(np.ldexp(np.linalg.norm(np.ldexp(finite, shift)), -shift))
    # (the sum of 1e308s overflowed as well)
    mean = float(np.ldexp(np.ldexp(finite, shift).mean(), -shift)) if finite.size else None
    out: dict[str, Any] = {
        "shape": list(array.shape),
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
        "mean": mean,
        "norm": norm,
        "zeros": float(np.mean(array == 0)),
        "nonfinite": int(array.size - finite.size),
    }
    if finite.size:
        lo, hi = float(finite.min()), float(finite.max())
        if lo == hi:  # by its size: at 1e17, lo − 0.5 is lo, and np.histogram refused
            pad = max(0.5, abs(lo) * 2.0**-40)  # (a regression's one output in big units)
            top = float(np.finfo(np.float64).max)
            lo, hi = max(lo - pad, -top), min(hi + pad, top)
        shift = -math.frexp(max(abs(lo), abs(hi)))[1]
        counts, _ = np.histogram(
            np.ldexp(finite, shift),
            bins=HISTOGRAM_BINS,
            range=(math.ldexp(lo, shift), math.ldexp(hi, shift)),
        )
        out["histogram"] = {"lo": lo, "hi": hi, "counts": counts.tolist()}
    if array.ndim == 1 or (array.ndim == 2 and 1 in array.shape):
        flat = array.reshape(-1)
        grid, block = _vector_grid(flat, cap)
        sizes = [1, flat.size]
    else:
        matrix = array.reshape(array.shape[0], -1)
        grid, block = _block_means(matrix, cap)
        sizes = list(matrix.shape)
    out["grid"] = _quantised(grid, block)
    # the entries the last block holds, each way: fewer than block's where it does not divide
    out["grid"]["last"] = [
        size - (math.ceil(size / b) - 1) * b for size, b in zip(sizes, block, strict=True)
    ]
    return out


def _vector_grid(flat: np.ndarray, cap: int) -> tuple[np.ndarray, list[int]]:
    """A vector as rows of w cells (w = a divisor of its length near √length, so 64
    inputs show as 8×8), means of blocks of ``block`` entries in reading order first
    when it has more than cap² entries (the last block holding the rest)."""
    block = 1
    if flat.size > cap * cap:
        block = math.ceil(flat.size / (cap * cap))
        flat = _means(flat.reshape(1, -1), 1, block)[0]
    n = flat.size
    root = math.isqrt(n)
    width = next((w for w in range(max(root, 1), 2 * root + 1) if n % w == 0), None)
    width = width or math.ceil(math.sqrt(n))
    width = min(width, cap)
    rows = math.ceil(n / width)
    grid = np.full(rows * width, np.nan)
    grid[:n] = flat
    return grid.reshape(rows, width), [1, block]


def _block_means(matrix: np.ndarray, cap: int) -> tuple[np.ndarray, list[int]]:
    """At most cap × cap cells, each the mean of the block × block entries the page says
    it holds (the last row and column of cells: the rest, fewer where it does not divide)."""
    rows, cols = matrix.shape
    block = [math.ceil(rows / cap), math.ceil(cols / cap)]
    return _means(matrix, *block), block


def _means(matrix: np.ndarray, block_rows: int, block_cols: int) -> np.ndarray:
    """Means over consecutive blocks of block_rows × block_cols entries (NaN ignored).
    Blocks of one size, as the page names them: near-equal blocks of 1 or 2 rows (100
    rows in 64 cells) made "2 entries each" false and a cell's entries unknown."""
    r_edges = np.arange(0, matrix.shape[0], block_rows)
    c_edges = np.arange(0, matrix.shape[1], block_cols)
    valid = np.isfinite(matrix)
    filled = np.where(valid, matrix, 0.0)
    sums = np.add.reduceat(np.add.reduceat(filled, r_edges, axis=0), c_edges, axis=1)
    counts = np.add.reduceat(
        np.add.reduceat(valid.astype(np.float64), r_edges, axis=0), c_edges, axis=1
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _quantised(grid: np.ndarray, block: list[int]) -> dict[str, Any]:
    """int8 cells, −127…127 for −scale…scale; −128 marks an empty (or non-finite) cell."""
    finite = np.isfinite(grid)
    scale = float(np.max(np.abs(grid[finite]))) if finite.any() else 0.0
    q = np.full(grid.shape, -128, dtype=np.int8)
    if scale > 0:
        q[finite] = np.round(grid[finite] / scale * 127).astype(np.int8)
    else:
        q[finite] = 0
    return {
        "rows": int(grid.shape[0]),
        "cols": int(grid.shape[1]),
        "block": block,
        "scale": scale,
        "data": base64.b64encode(q.tobytes()).decode("ascii"),
    }


def dequantised(grid: dict[str, Any]) -> np.ndarray:
    """A heat-map grid of the page back as numbers (NaN for empty cells): for tests and
    for readers of the page's JSON."""
    q = np.frombuffer(base64.b64decode(grid["data"]), dtype=np.int8).astype(np.float64)
    values = np.where(q == -128, np.nan, q / 127 * grid["scale"])
    return values.reshape(grid["rows"], grid["cols"])


# ---------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------
def _loss_shown(info: dict, loss: str) -> str:
    """The loss's name and, where training applied options (fit's recorded loss_options,
    wxb train's Huber δ, class weights), the loss as the walk-through shows it: its repr
    and note; class weights a file from before records by name alone, said to have been set."""
    made = trained_loss(info, loss) if info.get("loss") else loss
    note = getattr(made, "trained_note", "")
    shown = loss if isinstance(made, str) else f"{loss}: {made!r}{note}"
    weighted = info.get("loss_weights") if info.get("loss") == loss else None
    if weighted and isinstance(weighted, list):
        shown += f"; trained with {' and '.join(map(str, weighted))} set (not recorded)"
    return shown


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _json_for_script(value: object) -> str:
    """JSON that cannot end the <script> it sits in, nor open a comment or CDATA."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, default=_plain)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _finite(value: object) -> object:
    """JSON has no NaN or ∞: such figures (a diverged loss) travel as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _asset(name: str) -> str:
    return (resources.files("wxb") / "assets" / name).read_text(encoding="utf-8")


def _script_text(code: str) -> str:
    """Inline script text; "</script" cannot occur in it (the vendored files have none,
    and a future one is escaped the way JavaScript allows inside strings and regexes)."""
    return code.replace("</script", "<\\/script")


def _number(value: object) -> str:
    if isinstance(value, float):  # as the terminal writes it: 0.99996 is not 1
        return _esc(figure_text(value))
    return _esc(value)


class _Page:
    def __init__(
        self,
        model: Module,
        model_path: str | None,
        table: Summary,
        walk: Explanation | None,
        record: dict[str, Any] | None,
        sample: int,
        data_source: str | None,
        row_stage: list[str],
    ) -> None:
        self.model, self.model_path, self.table = model, model_path, table
        self.walk, self.record, self.sample = walk, record, sample
        self.data_source, self.row_stage = data_source, row_stage
        self.head_scored = False  # the walk's loss taken on the probability head's input
        self.data: dict[str, Any] = {"version": __version__}

    def html(self) -> str:
        title = f"wxb report: {Path(self.model_path).name if self.model_path else 'model'}"
        body = [
            f"<header><h1>{_esc(title)}</h1>",
            f"<p class='sub'>Made by wxb {_esc(__version__)} on {_esc(_machine())} "
            f"({_esc(platform.machine())}, {_esc(platform.python_implementation())} "
            f"{_esc(platform.python_version())}). Z = W·X + b, A = f(Z), and the δ chain.</p>",
            self._nav(),
            "</header><main>",
            self._info(),
            self._diagrams(),
            self._summary(),
            self._walkthrough(),
            self._training(),
            "</main>",
            "<pre id='wxb-errors' hidden></pre>",
        ]
        return "\n".join(
            [
                "<!DOCTYPE html>",
                "<html lang='en'><head><meta charset='utf-8'>",
                "<meta name='viewport' content='width=device-width, initial-scale=1'>",
                f"<title>{_esc(title)}</title>",
                f"<script>{_script_text(_asset('report-errors.js'))}</script>",
                f"<style>{_asset('katex.min.css')}</style>",
                f"<style>{_asset('report.css')}</style>",
                "</head><body>",
                *body,
                "<script type='application/json' id='wxb-data'>"
                f"{_json_for_script(_finite(self.data))}</script>",
                f"<script>{_script_text(_asset('katex.min.js'))}</script>",
                f"<script>{_script_text(_asset('mermaid.min.js'))}</script>",
                f"<script>{_script_text(_asset('report.js'))}</script>",
                "</body></html>",
            ]
        )

    def _nav(self) -> str:
        links = [("info", "Model"), ("diagrams", "Diagrams"), ("summary", "Summary")]
        if self.walk is not None:
            links.append(("walkthrough", "Walk-through"))
        if self.record is not None:
            links.append(("training", "Training"))
        return "<nav>" + " · ".join(f"<a href='#{a}'>{_esc(t)}</a>" for a, t in links) + "</nav>"

    # -- the model file's info ------------------------------------------------------
    def _info(self) -> str:
        info = getattr(self.model, "info", {}) or {}
        rows: list[tuple[str, str]] = []
        if self.model_path:
            size = Path(self.model_path).stat().st_size if Path(self.model_path).is_file() else 0
            rows.append(("Model file", f"{_esc(self.model_path)} ({size:,} bytes)"))
        task, loss, classes = model_task(self.model)
        if not (info.get("task") or info.get("loss")):  # a guess from the output's width
            task, loss = "not recorded (the model's info has none)", "not recorded"
        rows.append(("Task", _esc(task)))
        rows.append(("Loss", _esc(_loss_shown(info, loss))))
        targets = info.get("targets") or ([info["target"]] if info.get("target") else [])
        if targets:
            rows.append(("Target", _esc(", ".join(map(str, targets)))))
        if task == "classification":
            rows.append(("Classes", _folded([str(c) for c in classes], "classes")))
        features = info.get("feature_names")
        if features:
            rows.append(("Features", _folded([str(f) for f in features], "features")))
        if info.get("id_column"):
            rows.append(("Row identifier", _esc(info["id_column"])))
        stage = table_stage_lines(self.model)
        if stage:
            rows.append(("Table stage", "<br>".join(_esc(line.strip()) for line in stage)))
        data = info.get("data")
        if isinstance(data, dict):
            parts = [f"{_esc(data.get('source', '?'))}"]
            parts += [f"{_esc(k)} {_esc(v)}" for k, v in data.items() if k != "source"]
            rows.append(("Trained on", "; ".join(parts)))
        test = info.get("test")
        if isinstance(test, dict) and test:
            figures = ", ".join(f"{_esc(k)} {_number(v)}" for k, v in test.items())
            rows.append(("Test figures", figures))
        rows.append(("dtype", _esc(self.model.dtype)))
        rows.append(("Parameters", f"{self.table.parameters:,}"))
        trained = info.get("wxb_version")
        version = _esc(__version__)
        made = f"trained with {_esc(trained)}, " if trained else "(its version not recorded) "
        rows.append(("wxb", f"{made}report by {version}"))
        self.data["info"] = {"task": task, "loss": loss, "classes": [str(c) for c in classes]}
        body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
        return f"<section id='info'><h2>Model</h2><table class='info'>{body}</table></section>"

    # -- diagrams -------------------------------------------------------------------
    def _diagrams(self) -> str:
        b = self.table.batch_size
        diagrams = [("architecture", "Architecture", architecture_diagram(self.model))]
        parts = ["<section id='diagrams'><h2>Diagrams</h2>",
                 "<p class='note'>As <code>wxb diagram</code> writes them (Mermaid), "
                 "rendered.</p>"]  # fmt: skip
        order = unknown_order(self.model)
        calls = None if order else call_mismatch(self.model)
        if order:  # the chained diagrams would draw a δ chain this model does not compute
            parts.append(
                f"<p class='note'>{_esc(', '.join(order))} "
                f"{'runs a forward of its own' if len(order) == 1 else 'run forwards of their own'}"
                ", whose order wxb cannot see: no forward or backward "
                "diagram is drawn (<code>graph_diagram(loss)</code> draws what one step "
                "computed).</p>"
            )
        elif calls is not None:  # they would draw a layer called twice as one application
            parts.append(
                "<p class='note'>No forward or backward diagram is drawn: they chain the "
                f"layers in order, each applied once, and {_esc(calls)} "
                "(<code>graph_diagram(loss)</code> draws what one step computed).</p>"
            )
        else:
            diagrams += [
                ("forward", f"Forward pass, batch of B = {b}", forward_diagram(self.model, b)),
                ("backward", f"Backward pass (the δ chain), B = {b}",
                 backward_diagram(self.model, b)),
            ]  # fmt: skip
        self.data["diagrams"] = [{"kind": kind, "source": text} for kind, _, text in diagrams]
        for index, (kind, title, text) in enumerate(diagrams):
            if index == 1:  # forward and backward side by side: both are tall
                parts.append("<div class='pair'>")
            parts.append(
                f"<figure class='diagram' data-kind='{kind}'><figcaption>{_esc(title)}"
                f"</figcaption><pre class='mermaid'>{_esc(text)}</pre></figure>"
            )
        parts.append("</div></section>" if len(diagrams) > 1 else "</section>")
        return "\n".join(parts)

    # -- summary --------------------------------------------------------------------
    def _summary(self) -> str:
        t = self.table
        head, body = t.cells()
        self.data["summary"] = {
            "batch_size": t.batch_size,
            "parameters": t.parameters,
            "forward_flops": t.forward_flops,
            "training_flops": t.training_flops,
            "activation_bytes": t.activation_bytes,
            "gemm_rate": t.gemm_rate,
            "rate_floor_s": t.rate_floor_s,
            "rows": [
                {
                    "name": r.name,
                    "type": r.type,
                    "output_shape": list(r.output_shape) if r.output_shape else None,
                    "parameters": r.parameters,
                    # None: a ParameterList's, or a layer of one's own code's ('?')
                    "forward_flops": None if r.flops_unknown else r.forward_flops,
                    "training_flops": None if r.flops_unknown else r.training_flops,
                    "activation_bytes": r.activation_bytes,
                    "call": r.call,
                    "calls": r.calls,
                    "per_batch": r.per_batch,  # its FLOPs once a batch (parameters alone)
                }
                for r in t.rows
            ],
        }
        heads = "".join(f"<th>{_esc(h)}</th>" for h in head)
        lines = "".join(
            "<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>" for cells in body
        )
        table = (
            f"<table class='summary'><thead><tr>{heads}</tr></thead><tbody>{lines}</tbody></table>"
        )
        if len(body) > FOLD_ROWS:  # a long layer list folds
            shown = f"{len(body)} layers: show the table"
            table = f"<details><summary>{shown}</summary>{table}</details>"
        # with what the table cannot count or order (as wxb summary prints it under its totals)
        totals = "".join(f"<li>{_esc(line)}</li>" for line in [*t.totals(), *t.order_lines()])
        if t.gemm_rate is None:
            totals += "<li>Rate floor: not measured (no GEMM rate).</li>"
        else:
            totals += f"<li>Measured on {_esc(_machine())}, the machine that made this report.</li>"
        return (
            "<section id='summary'><h2>Summary</h2>"
            "<p class='note'>As <code>wxb summary</code> gives it: per sample, FLOPs count W·X, "
            "∂L/∂W and ∂L/∂X (2mn each; no ∂L/∂X where the layer's input needs no gradient, "
            "as the first trainable layer's) and +b, ∂L/∂b (m each).</p>"
            f"{table}<ul class='totals'>{totals}</ul></section>"
        )

    # -- the walk-through -----------------------------------------------------------
    def _walkthrough(self) -> str:
        if self.walk is None:
            return ""
        fprime = _fprime_facts(self.model, self.walk, self.head_scored)
        steps = [s for s in self.walk.steps if not s.check]
        cap = SMALL_GRID if len(steps) > MANY_STEPS else MAX_GRID
        where = f" of {_esc(self.data_source)}" if self.data_source else ""
        parts = [
            "<section id='walkthrough'><h2>Walk-through of one sample</h2>",
            f"<p class='note'>Row {self.sample}{where}, as <code>wxb explain</code> gives it. "
            "Each heat-map cell is one entry (or the mean of a block of entries of a big "
            "matrix; red positive, blue negative, white 0); the histogram counts every "
            "entry.</p>",
        ]
        if self.row_stage:
            lines = "<br>".join(_esc(line.strip()) for line in self.row_stage)
            parts.append(f"<p class='note'>{lines}</p>")
        self.data["steps"] = []
        for section in self.walk.sections:
            parts.append(f"<h3>{_esc(section.title)}</h3>")
            parts += [f"<p class='note'>{_esc(line)}</p>" for line in section.intro]
            groups = _grouped([s for s in section.steps if not s.check])
            for index, (group, members) in enumerate(groups):
                cards = "".join(
                    self._step_card(step, cap, fprime.get(id(step))) for step in members
                )
                if not group:
                    parts.append(cards)
                    continue
                middle = OPEN_GROUPS <= index < len(groups) - OPEN_GROUPS
                state = "" if middle and len(groups) > 2 * OPEN_GROUPS + 2 else " open"
                parts.append(f"<details class='group'{state}><summary>{_esc(group)}</summary>"
                             f"{cards}</details>")  # fmt: skip
        parts.append("</section>")
        return "\n".join(parts)

    def _step_card(self, step: Step, cap: int, fprime: dict[str, Any] | None) -> str:
        index = len(self.data["steps"])
        shown = summarise(step.value, cap)
        entry = {"name": step.name, "latex": latex_line(step), **shown}
        if fprime:
            entry["fprime"] = fprime
        self.data["steps"].append(entry)
        notes = [_esc(part) for part in step.note.split("\n") if part]
        if fprime:
            notes.append(
                f"f′(Z) = {_esc(fprime['kind'])}′: mean {fprime['mean']:.3g}; |f′(Z)| &lt; 0.01 "
                f"in {percent(fprime['small'], 0)} of the entries (δ passes back through this "
                "factor)"
            )
        charts = ""
        if shown["shape"]:
            histogram = (  # none when no entry is finite (a diverged model): said instead
                f"<svg class='chart histogram' data-step='{index}'></svg>"
                if "histogram" in shown
                else "<p class='note'>no finite entry to count</p>"
            )
            charts = (
                f"<div class='charts'><canvas class='heatmap' data-step='{index}'></canvas>"
                f"{histogram}</div>"
            )
        return (
            f"<div class='step' id='step-{index}' data-name='{_esc(step.name)}'>"
            f"<div class='tex' data-display='1'>{_esc(latex_line(step))}</div>"
            + "".join(f"<p class='note'>{n}</p>" for n in notes)
            + charts
            + "</div>"
        )

    # -- training -------------------------------------------------------------------
    def _training(self) -> str:
        if self.record is None:
            return ""
        record = self.record
        figures = record["history"]
        self.data["history"] = {
            "figures": figures,
            "best_epoch": record.get("best_epoch"),
            "stopped_early": bool(record.get("stopped_early")),
        }
        epochs = len(figures["loss"])
        stop = ""
        # the epoch whose weights were kept (histories from before it was recorded: the
        # best epoch where early stopping ended the run, which restored it)
        kept = record.get(
            "kept_epoch", record.get("best_epoch") if record.get("stopped_early") else None
        )
        if kept and kept != epochs:
            stop = f"; the model kept is epoch {_esc(kept)}'s"
        if record.get("stopped_early"):
            stop += " (early stop)"
        parts = [
            "<section id='training'><h2>Training</h2>",
            f"<p class='note'>{epochs} epochs{stop}{_constant_lr(figures)}. Hover over a chart "
            "for each epoch's figures.</p>",
            "<div class='row'><figure><figcaption>Loss per epoch</figcaption>"
            "<svg class='chart curve' data-key='loss'></svg>"
            + (
                f"<p class='note'>{_esc(record['loss_note'])}</p>"
                if record.get("loss_note")
                else ""
            )
            + "</figure>",
        ]
        if "accuracy" in figures:
            parts.append(
                "<figure><figcaption>Accuracy per epoch</figcaption>"
                "<svg class='chart curve' data-key='accuracy'></svg></figure>"
            )
        parts.append("</div>")
        rates = ["lr", *_group_rates(figures)]  # (several groups: each its own chart;
        # group 0's alone, captioned 'Learning rate', read as every group's)
        if any(len(set(figures.get(key, []))) > 1 for key in rates):  # a schedule: drawn; a
            for i, key in enumerate(rates):  # constant: the note says it
                caption = "Learning rate" + (f", parameter group {i}" if len(rates) > 1 else "")
                chart = f"<svg class='chart curve' data-key='{key}'></svg>"
                parts.append(f"<figure><figcaption>{caption}</figcaption>{chart}</figure>")
        warnings = record.get("warnings") or []
        diagnostics = record.get("diagnostics") or []
        if diagnostics:
            self.data["diagnostics"] = diagnostics
            parts.append("<h3>Per-layer diagnostics</h3>")
            parts.append(
                "<p class='note'>Each epoch, on the first 256 training rows: "
                "δ⁽ˡ⁾ = (W⁽ˡ⁺¹⁾ᵀ·δ⁽ˡ⁺¹⁾) ⊙ f′(Z⁽ˡ⁾) multiplies the error by Wᵀ and f′(Z) at each "
                "layer; where f′(Z) is near 0 (saturated sigmoid or tanh, dead ReLU) δ "
                "shrinks on its way to the first layer.</p>"
            )
            if warnings:
                parts.append(_warnings(warnings))
            else:
                parts.append("<p class='ok'>No warnings: δ neither vanished nor exploded.</p>")
            parts.append("<div class='row'>")
            for key, label in (
                ("delta_profile", "‖δ⁽ˡ⁾‖ per layer, last epoch (log scale)"),
                ("delta_norm", "‖δ‖ = ‖∂L/∂Z‖ per epoch"),
                ("weight_grad_norm", "‖∂L/∂W‖ per epoch"),
                ("weight_norm", "‖W‖ per epoch"),
                ("unit_fraction", "Dead ReLU units / saturated entries"),
            ):
                parts.append(
                    f"<figure><figcaption>{_esc(label)}</figcaption>"
                    f"<svg class='chart diag' data-key='{key}'></svg></figure>"
                )
            parts.append("</div>")
        elif warnings:
            parts.append(_warnings(warnings))
        else:
            parts.append("<p class='note'>No per-layer diagnostics: train with "
                         "<code>--diagnose</code> to record them.</p>")  # fmt: skip
        parts.append("</section>")
        return "\n".join(parts)


def _group_rates(figures: dict[str, list]) -> list[str]:
    """fit's figures of parameter groups 1, 2, … (``lr_group{i}``), in their order."""
    return sorted((k for k in figures if re.fullmatch(r"lr_group\d+", k)), key=lambda k: int(k[8:]))


def _constant_lr(figures: dict[str, list]) -> str:
    rates = set(figures.get("lr", []))
    if len(rates) != 1:
        return ""
    # fit's history of several parameter groups: group i's under lr_group{i}, each said
    # (group 0's alone read as every group's rate)
    others = [set(figures[k]) for k in _group_rates(figures)]
    if not others:
        return f"; learning rate {next(iter(rates)):g} throughout"
    if any(len(r) != 1 for r in others):
        return ""
    shown = ", ".join(f"{next(iter(r)):g}" for r in [rates, *others])
    return f"; learning rates {shown} (parameter groups 0–{len(others)}) throughout"


def _machine() -> str:
    """The machine in words, without its host name (the page is made to be shared)."""
    return f"{platform.system() or 'an unknown system'} {platform.machine()}".strip()


def _warnings(warnings: list[str]) -> str:
    items = "".join(f"<li>{_esc(w)}</li>" for w in warnings)
    return f"<div class='warnings'><strong>Warnings</strong><ul>{items}</ul></div>"


def _grouped(steps: list[Step]) -> list[tuple[str, list[Step]]]:
    groups: list[tuple[str, list[Step]]] = []
    for step in steps:
        if groups and groups[-1][0] == step.group:
            groups[-1][1].append(step)
        else:
            groups.append((step.group, [step]))
    return groups


def _folded(names: list[str], what: str) -> str:
    shown = ", ".join(_esc(n) for n in names[:FOLD_NAMES])
    if len(names) <= FOLD_NAMES:
        return f"{len(names)}: {shown}"
    rest = ", ".join(_esc(n) for n in names[FOLD_NAMES:])
    return (
        f"{len(names)}: {shown}, <details class='inline'><summary>and {len(names) - FOLD_NAMES} "
        f"more {what}</summary>{rest}</details>"
    )
