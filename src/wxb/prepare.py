"""Data preparation shared by the command line, the estimators and ``wxb.fit`` users.

From a table to what a loss takes, and back: deciding classification or
regression, encoding class labels as indices (and one-hot rows as classes),
standardising regression targets and folding their scale back into the output
layer, picking a model's feature columns by name, and turning outputs into
class names and probabilities.

Two of these are conveniences of the command line's, which the scikit-learn
estimators do not use (they keep scikit-learn's own semantics): guessing the
task from at most ``MAX_CLASSES_FOR_AUTO`` distinct whole numbers
(``choose_task``), and training a regressor on standardised targets
(``Targets.mean``/``scale``, ``scaled``, ``unscale_output``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from wxb import data as wdata
from wxb import ops, validation
from wxb.columns import (
    TableEncoder,
    boolean_spellings,
    choose_features,
    knows_columns,
    model_encoder,
    table_matrix,
)
from wxb.errors import ConfigError, DataError
from wxb.nn import Dense
from wxb.nn.heads import ONE_LOGIT_LOSSES, head_index, model_task, probability_head
from wxb.nn.layers import standard_scale
from wxb.nn.losses import REGRESSION_LOSSES
from wxb.nn.module import input_width
from wxb.nn.sequential import layers_in_order
from wxb.tables import Column, Table, number_from_text, text_as_numbers, written_number

MAX_CLASSES_FOR_AUTO = 50
# The default schedule (wxb train without --epochs/--patience): see default_schedule.
MIN_STEPS = 2000
PATIENCE_STEPS = 500
MIN_EPOCHS = 60
MIN_PATIENCE = 10


def default_schedule(n_fit_rows: int, batch_size: int) -> tuple[int, int]:
    """(epochs, patience) when not given: at least MIN_STEPS steps and MIN_EPOCHS epochs,
    and early stopping that waits PATIENCE_STEPS steps (at least MIN_PATIENCE epochs).

    Counted in steps because that is what a small table lacks: 150 rows are 4 steps an
    epoch, and 60 epochs with a patience of 10 stopped iris after some 50 steps, short of
    trained (bench/table_defaults.py measures it against scikit-learn's MLP).
    """
    steps_per_epoch = max(1, -(-n_fit_rows // batch_size))
    epochs = max(MIN_EPOCHS, -(-MIN_STEPS // steps_per_epoch))
    patience = max(MIN_PATIENCE, -(-PATIENCE_STEPS // steps_per_epoch))
    return epochs, patience


def choose_task(y: np.ndarray, task: str, loss: str) -> str:
    """Classification for text, one-hot rows, or few whole numbers; else regression."""
    if task != "auto":
        return task
    if loss in ("cross_entropy", "bce_with_logits", *TRAIN_CLASS_LOSSES):
        return "classification"
    if loss in TRAIN_NUMBER_LOSSES:
        return "regression"
    if y.ndim == 2:
        return "classification" if ops.is_one_hot(y) else "regression"
    if y.dtype.kind in "USO":
        return "classification"
    whole = np.all(y == np.round(y))
    return "classification" if whole and len(np.unique(y)) <= MAX_CLASSES_FOR_AUTO else "regression"


def plain(value: object) -> object:
    """A label as JSON will store it (whole-number floats become ints)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass
class TableData:
    """A table ready to train on: rows with a target, the feature columns, the targets'
    values, the identifiers, and what was noticed on the way (to print)."""

    table: Table
    features: list[str]
    targets: list[str]
    y: np.ndarray
    ids: np.ndarray | None = None
    id_column: str | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    encoder: TableEncoder | None = None  # fitted on the training rows by whoever splits
    file_rows: np.ndarray | None = None  # each row's index in the file (rows were dropped)

    def file_row(self, row: int) -> int:
        """Row ``row`` of these rows as ``--sample`` counts the file's rows."""
        return int(row if self.file_rows is None else self.file_rows[row])

    @property
    def source(self) -> str:
        return self.table.source

    def row_name(self, row: int) -> str:
        return self.table.row_name(row)

    @property
    def target(self) -> str:
        return ",".join(self.targets)


def training_table(
    table: Table,
    targets: Sequence[str],
    features: Sequence[str] | None = None,
    drop: Sequence[str] = (),
    id_column: str | None = None,
    read_numbers: bool = True,
) -> TableData:
    """Choose the features (``columns.choose_features``), drop rows whose target is
    missing (never a class), and read the targets: text or booleans as labels, numbers
    as numbers (several target columns: numbers, one output each)."""
    if not targets:
        raise DataError(f"{table.source}: name the column to predict (columns: "
                        f"{', '.join(table.file_names)})")  # fmt: skip
    roles = choose_features(table, targets, features, drop, id_column, read_numbers)
    if len(targets) == 1:  # numbers stored as text ('n.a.' among them refused) before the
        # gaps are counted: a 'NAN' there is a row without a target, as in a CSV
        table.columns[targets[0]], _ = text_as_numbers(table[targets[0]], table)
    missing, file_rows = np.zeros(table.n_rows, dtype=bool), None
    for name in targets:
        missing |= table[name].missing
    notes = []
    if missing.any():
        dropped = np.flatnonzero(missing)
        notes.append(
            f"dropped {len(dropped)} row{'s' * (len(dropped) > 1)} with no target "
            f"({table.row_names(dropped)})"
        )
        file_rows = np.flatnonzero(~missing)
        table = table.take(file_rows)
        if table.n_rows == 0:
            raise DataError(f"{table.source}: no row has a target value")
    if len(targets) == 1:
        y = target_values(table[targets[0]])
    else:
        for name in targets:
            if table[name].kind not in ("number", "bool"):
                raise DataError(
                    f"{table.source}: several target columns are for regression; "
                    f"{name!r} holds {table[name].kind} values"
                )
        y = np.column_stack([table[name].values.astype(np.float64) for name in targets])
    ids = table[id_column].values if id_column else None
    return TableData(
        table, roles.features, list(targets), y, ids, id_column, notes, roles.warnings,
        file_rows=file_rows,
    )  # fmt: skip


def target_values(column: Column) -> np.ndarray:
    """A target column's values: text and booleans as labels, numbers as they are."""
    if column.kind == "text":
        return column.values.astype(str)
    if column.kind == "bool":
        return np.where(column.values > 0.5, "True", "False")
    if column.kind == "date":
        raise DataError(f"target column {column.name!r} holds dates")
    return column.values


@dataclass
class Targets:
    """How the target column becomes what the loss takes."""

    task: str
    loss: str
    y: np.ndarray  # class indices (B,), or (B, k) floats
    outputs: int
    classes: list | None = None
    mean: np.ndarray | None = None  # regression: train on (y − mean)/scale
    scale: np.ndarray | None = None
    reason: str = ""  # why this task: "classification (3 text labels)"
    warnings: list[str] = field(default_factory=list)


# torch's losses wxb train takes by name: the multi-class hinge on class indices, the
# two-class logistic loss on labels −1/+1 (one logit, as bce_with_logits); PoissonNLLLoss
# on counts as they are (not standardized: the outputs are their log-rates)
TRAIN_CLASS_LOSSES = ("multi_margin", "soft_margin")
TRAIN_NUMBER_LOSSES = (*REGRESSION_LOSSES, "poisson_nll")
# and why it takes none of the others
TRAIN_REFUSED = {
    "multilabel_soft_margin": "it trains several labels a row, which wxb train does not read",
    "multilabel_margin": "it trains several labels a row, which wxb train does not read",
    "hinge_embedding": "its outputs are distances of pairs, labelled −1/+1 alike or not, "
    "which wxb train's rows and target do not give",
}


def encode_targets(dataset: wdata.Dataset | TableData, task: str, loss: str) -> Targets:
    y, source = dataset.y, dataset.source
    if loss in TRAIN_REFUSED:
        read = "" if loss == "multilabel_margin" else ", and wxb predict reads the model it saves"
        raise ConfigError(
            f"--loss {loss}: {TRAIN_REFUSED[loss]}; wxb.fit(model, X, y, loss={loss!r}) "
            f"trains it{read}"
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim > 2 or y.ndim == 0:
        raise DataError(
            f"{source}: targets must be one column (or one-hot rows); got shape {y.shape}"
        )
    chosen = choose_task(y, task, loss)
    reason = task_reason(y, chosen, task, loss)
    loss_given = loss != "auto"
    loss_chose = task == "auto" and loss_given  # the loss, not the target, chose
    task = chosen
    if loss == "auto":
        loss = "cross_entropy" if task == "classification" else "mse"
    if task == "classification":
        if loss in TRAIN_NUMBER_LOSSES:
            raise ConfigError(
                f"--loss {loss} is for regression; use cross_entropy for classification"
            )
        if y.ndim == 2:
            if not ops.is_one_hot(y):
                raise DataError(
                    f"{source}: several target columns are a classification target only as "
                    "one-hot rows (one 1 a row); several labels a row (multilabel) are not "
                    "trained by wxb train: wxb.fit(..., loss='bce_with_logits') trains them"
                )
            # one-hot columns of a table are classes by their names (pos, neg); an NPZ's
            # one-hot y array (columns y0, y1, … by position) holds classes 0..C−1
            named = getattr(dataset, "targets", [])
            npz_array = isinstance(dataset, TableData) and named == dataset.table.default_targets
            by_name = len(named) == y.shape[1] and not npz_array
            classes = np.array(named, dtype=object) if by_name else np.arange(y.shape[1])
            indices = y.argmax(axis=1)
        else:
            classes, indices = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise DataError(f"{source}: the target has a single class {plain(classes[0])!r}")
        if len(classes) > len(y) / 2:
            written = _written_numbers(classes, dataset)
            if written:  # '$344,838.73': --task regression then refused each one
                raise DataError(
                    f"{source}: {len(classes)} classes in {len(y)} samples: {written}, and "
                    "they are read as numbers, a regression's targets"
                )
            # where --loss made it a classification, --task regression alone was refused
            way = "use --task regression" + (" and a regression --loss" if loss_given else "")
            way = f"leave --loss {loss} out" if loss_chose else way
            raise DataError(
                f"{source}: {len(classes)} classes in {len(y)} samples; is this a regression "
                f"target? ({way})"
            )
        counts = np.bincount(indices, minlength=len(classes))
        rare = [plain(classes[k]) for k in np.flatnonzero(counts < 2)]
        warnings = []
        if rare:
            warnings.append(
                f"class{'es' * (len(rare) > 1)} {', '.join(map(repr, rare[:5]))}"
                f"{' …' if len(rare) > 5 else ''} ha{'ve' if len(rare) > 1 else 's'} a single "
                "row: too few to learn or to be in both the training and the test part"
            )
        names = [plain(c) for c in classes]
        if loss in ("bce_with_logits", "soft_margin"):
            if len(classes) != 2:
                raise ConfigError(f"--loss {loss} needs 2 classes; the target has {len(classes)}")
            # one logit: 0/1, or soft_margin's −1/+1 (the first class −1)
            y01 = indices.astype(np.float64).reshape(-1, 1)
            y01 = 2 * y01 - 1 if loss == "soft_margin" else y01
            return Targets(task, loss, y01, 1, names, reason=reason, warnings=warnings)
        return Targets(task, loss, indices, len(classes), names, reason=reason, warnings=warnings)
    if loss not in TRAIN_NUMBER_LOSSES:
        raise ConfigError(
            f"--loss {loss} is for classification; regression uses "
            + ", ".join(TRAIN_NUMBER_LOSSES)
        )
    try:
        y = numeric_targets(y, dataset)
    except DataError as exc:
        if not loss_chose:
            raise
        # a regression loss chose the task: said so, or 'needs numeric targets' puzzled
        raise DataError(
            f"{exc}; --loss {loss} is a regression loss: leave it out (or give cross_entropy) "
            "to classify these labels"
        ) from None
    y = y.reshape(len(y), -1)
    if loss == "poisson_nll" and (y < 0).any():  # (torch computes a number of them all the same)
        row, column = (int(k[0]) for k in np.nonzero(y < 0))
        raise DataError(
            f"{source}, {dataset.row_name(row)}: target {plain(y[row, column])!r} is negative; "
            "--loss poisson_nll takes counts (or rates) ≥ 0"
        )
    constant = np.flatnonzero((y == y[0]).all(axis=0))
    if len(constant):
        raise DataError(
            f"{source}: the target has the same value {plain(y[0, constant[0]])!r} in every row; "
            "there is nothing to learn"
        )
    return Targets(task, loss, y, y.shape[1], reason=reason)


def task_reason(y: np.ndarray, chosen: str, task: str, loss: str) -> str:
    """Why the task is what it is, for a person: 'classification (3 text labels)'."""
    if task != "auto":
        return f"{chosen} (as --task asked)"
    if loss != "auto":
        return f"{chosen} (as --loss {loss} implies)"
    if y.ndim == 2:
        if chosen == "classification":
            return (
                f"classification (one-hot rows over {y.shape[1]} classes; --task regression "
                "to predict them as numbers)"
            )
        why = ""
        if y.dtype.kind in "biuf" and ops.is_zero_one(y):  # as one-hot rows but for some rows
            odd = int(np.count_nonzero(y.sum(axis=1) != 1))
            why = (
                f": 0/1 columns, but {odd} row{'s hold' if odd > 1 else ' holds'} no 1 or "
                "several, so not one class a row; several labels a row (multilabel) train "
                "with wxb.fit(..., loss='bce_with_logits')"
            )
        return f"regression ({y.shape[1]} target columns{why})"
    distinct = len(np.unique(y))
    # a bool column reaches here as 'True'/'False' (target_values), an array as bools
    if y.dtype.kind == "b" or (
        y.dtype.kind in "USO" and {str(v) for v in np.unique(y)} <= {"True", "False"}
    ):
        return f"{chosen} ({distinct} boolean label{'s' if distinct != 1 else ''})"
    if y.dtype.kind in "USO":
        return f"{chosen} ({distinct} text labels)"
    if chosen == "classification":
        return (
            f"classification ({distinct} distinct whole numbers; --task regression to "
            "predict them as numbers)"
        )
    return f"regression ({distinct} distinct numbers)"


def _written_numbers(labels: np.ndarray, dataset: object) -> str:
    """'its labels are numbers written with …: …' where most text labels are numbers
    written so ('$344,838.73', '1,200'), else ''."""
    if labels.dtype.kind not in "USO":
        return ""
    table = getattr(dataset, "table", None)
    decimal, csv = getattr(table, "decimal", "."), getattr(table, "csv", False)
    written = [(written_number(str(v), decimal, csv), str(v)) for v in labels]
    written = [(how, v) for how, v in written if how[0]]
    if len(written) <= len(labels) / 2:
        return ""
    (what, fix), example = written[0]
    return f"its labels are numbers written with {what} (e.g. {example!r}): {fix}"


def numeric_targets(y: np.ndarray, dataset: wdata.Dataset) -> np.ndarray:
    """Regression targets as numbers: text cells read as the file's cells read ('1.103'
    in a decimal-comma file is a thousands group, '1_000' is text), else refused by row."""
    if y.dtype.kind in "biuf" or y.ndim != 1:
        return y.astype(np.float64)
    decimal = getattr(getattr(dataset, "table", None), "decimal", ".")
    numbers = np.empty(len(y), dtype=np.float64)
    for row, value in enumerate(y):
        number = number_from_text(str(value), decimal)
        if number is None:
            table = getattr(dataset, "table", None)
            what, fix = written_number(str(value), decimal, getattr(table, "csv", False))
            raise DataError(
                f"{dataset.source}, {dataset.row_name(row)}: target {str(value)!r} is "
                + (f"a number written with {what}: {fix}" if what else "not a number")
                + " (a regression model needs numeric targets)"
            )
        numbers[row] = number
    return numbers


def scale_targets(
    targets: Targets, rows: np.ndarray, names: Sequence[str], source: str, dtype: object
) -> None:
    """A regression's target statistics, from the training ``rows`` (standard_scale);
    refused, naming the column, where they overflow float64 (targets near ±1e308, or a
    spread past 1e154: training divided by them, and every target became NaN), or the
    model's ``dtype`` (float32: the output layer folds them in, and predicted inf). A
    Poisson's counts are kept as they are (mean 0, scale 1): its outputs are log-rates."""
    if targets.loss == "poisson_nll":
        width = targets.y.shape[1]
        targets.mean, targets.scale = np.zeros(width), np.ones(width)
        return
    targets.mean, targets.scale = standard_scale(targets.y[rows])
    limit = np.finfo(np.dtype(dtype)).max
    fits = np.isfinite(targets.mean) & np.isfinite(targets.scale)
    bad = np.flatnonzero(~fits | (np.abs(targets.mean) > limit) | (targets.scale > limit))
    if len(bad):
        j = int(bad[0])
        column = targets.y[rows] if targets.y.ndim == 1 else targets.y[rows, j]
        name = names[j] if j < len(names) else str(j)
        largest = float(np.max(np.abs(column)))
        what, fix = (
            ("float64", "") if not fits[j] else (np.dtype(dtype).name, " or --dtype float64")
        )
        raise DataError(
            f"{source}: target {name!r}: its values (up to {largest:.3g} in size) are too "
            f"large to standardize: their mean or spread overflows {what}; rescale the "
            f"column (e.g. divide it by a power of ten){fix}"
        )


def scaled(targets: Targets, y: np.ndarray) -> np.ndarray:
    """Regression trains on standardized targets (see unscale_output); classes as they are."""
    return (y - targets.mean) / targets.scale if targets.task == "regression" else y


def unscale_output(layer: Dense, mean: np.ndarray, scale: np.ndarray) -> None:
    """Fold y = scale ⊙ ŷ + mean into the output layer: W ← diag(scale)·W, b ← scale ⊙ b + mean.

    The model then predicts in the target's own units, with no extra layer.
    """
    layer.weight.data *= scale.reshape(-1, 1).astype(layer.weight.dtype)
    layer.bias.data *= scale.astype(layer.bias.dtype)
    layer.bias.data += mean.astype(layer.bias.dtype)


def rounding_warnings(
    names: Sequence[str], mean: np.ndarray, scale: np.ndarray, dtype: np.dtype
) -> list[str]:
    """Where folding a target's mean into the output layer (unscale_output) rounds the
    predictions by more than a hundredth of the target's spread: a float32 bias near 1e8
    steps by 8, and the saved model's error then exceeds the trained network's."""
    if np.dtype(dtype) == np.float64:
        return []
    warnings = []
    for name, m, s in zip(names, np.ravel(mean), np.ravel(scale), strict=False):
        step = float(np.spacing(np.abs(np.asarray(m, dtype=dtype))))
        if s > 0 and step > 0.01 * s:
            warnings.append(
                f"target {name!r}: its mean {m:.6g}, held by the {np.dtype(dtype).name} "
                f"output layer, rounds every prediction to a step of {step:.3g} (its spread "
                f"is {s:.3g}); --dtype float64 keeps them"
            )
    return warnings


def features_for(
    model, data: Table | wdata.Dataset, no_rows: bool = False, notices: list[str] | None = None
) -> np.ndarray:
    """The network's input matrix for ``data``: its columns by name through the model's
    table stage (``columns.table_matrix``), checked against the network's width.
    ``no_rows``: a table of none gives a matrix of none (predict's), else refused.
    ``notices``: given, it gets the lines on categories not seen in training (else
    they are UserWarnings)."""
    if isinstance(data, wdata.Dataset):
        X = data.X
    else:
        X = table_matrix(model.info, data, model.dtype, notices)
    width = input_width(model)
    if width is not None and X.shape[1] != width:
        why = ""
        if isinstance(data, Table) and not data.positional and not knows_columns(model.info):
            # a model fitted on arrays: it said the count alone, of a table's every column
            names = list(data.columns)
            shown = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
            why = (
                f" (the model, fitted on arrays, records no feature names, so every column "
                f"is read, in order: {shown}; give a table of its {width} feature columns "
                "alone, or name the target with --target in eval, explain and report)"
            )
        raise DataError(f"{data.source}: {X.shape[1]} features but the model takes {width}{why}")
    if isinstance(data, Table) and model.info.get("table") is None:
        # a gap, which a model without a table stage has no fill for: named by the file's
        # line and column ("has nan at row 3, column 1" counted both from 0, in X's order)
        gaps = np.flatnonzero(np.isnan(X).any(axis=1))
        if len(gaps):
            column = model_encoder(model.info, data).columns[int(np.isnan(X[gaps[0]]).argmax())]
            raise DataError(
                f"{data.source}, {data.row_name(int(gaps[0]))}, column {column!r}: a missing "
                f"value ({len(gaps)} row{'s' * (len(gaps) > 1)}), and the model has no table "
                "stage to fill gaps (wxb train makes one); fill them or leave the rows out"
            )
    return validation.as_features(X, model.dtype, data.source, no_rows=no_rows)


def is_multilabel(model) -> bool:
    """A model whose outputs are independent labels (scikit-learn's multilabel MLP)."""
    return model.info.get("task") == "multilabel" or bool(model.info.get("multilabel"))


def check_classes_fit(model, out: np.ndarray, source: object = "the model") -> None:
    """ConfigError where ``model.info["classes"]``, set by hand, does not name what the
    outputs ``out`` give: one name per output (two for one logit of ``bce_with_logits``),
    each name once. Else predict read a class beyond the names as another (one logit and
    three names: the third never predicted, its rows scored with target 2 in eval), wrote
    probability columns without a header, or eval scored a name given twice as one of
    its outputs only."""
    names = model.info.get("classes")
    task, loss, classes = model_task(model)
    if not names or task != "classification" or out.ndim != 2:
        return
    seen = [str(plain(c)) for c in classes]  # as labels are looked up (encode_labels)
    twice = sorted({c for c in seen if seen.count(c) > 1})
    if twice:  # one name for two outputs: eval scored one of them always wrong
        raise ConfigError(
            f"{source}: its info names the class {twice[0]!r} twice; model.info['classes'] "
            "needs one name per class"
        )
    width = out.shape[1]
    two = loss in ONE_LOGIT_LOSSES and width == 1 and not is_multilabel(model)
    wanted = 2 if two else width
    if len(names) != wanted:
        outputs = "one logit (two classes)" if two else f"{width} outputs"
        raise ConfigError(
            f"{source}: its info names {len(names)} classes, but it gives {outputs}; "
            f"model.info['classes'] needs {wanted} names, one per class in output order"
        )


def class_logits(model, out: np.ndarray) -> np.ndarray:
    """A classifier's outputs as logits: as they are, or from a probability head's
    p back to log p (softmax) or log p − log(1 − p) (sigmoid), which the softmax and the
    sigmoid turn into p again; the losses and --proba then apply them once."""
    head = probability_head(model)
    if head is None:
        return out
    # p of exactly 0 (or 1) would give infinite logits and a NaN loss: the nearest
    # representable p instead (the loss then stays finite, and as large as p allows)
    tiny = np.finfo(out.dtype).tiny
    if head == "softmax":
        return np.log(np.maximum(out, tiny))
    p = np.clip(out, tiny, np.nextafter(out.dtype.type(1), out.dtype.type(0)))
    return np.log(p) - np.log1p(-p)


def head_logits(model, X: np.ndarray) -> np.ndarray:
    """The logits a probability head turns into p: every layer before the head, run on X
    (eval mode, no graph). Exact where log p is not: a p that rounded to 0 has no log."""
    from wxb.tensor import Tensor, no_grad  # the layers below prepare run the forward

    x = Tensor(validation.as_features(X, model.dtype))
    layers = layers_in_order(model)
    with model.evaluating(), no_grad():
        for layer in layers[: head_index(layers)]:
            x = layer(x)
    return x.data


def predicted_classes(logits: np.ndarray) -> np.ndarray:
    """Class indices from a classifier's logits: z > 0 for one output, else the argmax."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).astype(np.int64)
    return logits.argmax(axis=1)


def encode_labels(classes: list, dataset: wdata.Dataset) -> np.ndarray:
    """Class names in the data as the model's class indices; unseen names are refused."""
    # as the data's labels are looked up: 2.0 (scikit-learn's float classes) is '2'
    lookup = {str(plain(c)): i for i, c in enumerate(classes)}
    for word, spelled in boolean_spellings([str(c) for c in classes]).items():
        lookup[word] = lookup[spelled]  # a file of only 'true'/'false' labels reads as booleans
    # text classes that spell numbers ('1.0' beside 'unknown'): a file without the words
    # reads them as the numbers 1.0, looked up as '1'; an alias shared by two is not made
    aliases: dict[str, list[int]] = {}
    for i, c in enumerate(classes):
        number = number_from_text(c) if isinstance(c, str) else None
        if number is not None and math.isfinite(number):
            aliases.setdefault(str(plain(number)), []).append(i)
    for key, indices in aliases.items():
        if key not in lookup and len(indices) == 1:
            lookup[key] = indices[0]
    y = dataset.y
    if y.ndim == 2 and y.shape[1] == len(classes) and ops.is_one_hot(y):
        return y.argmax(axis=1)
    if y.ndim == 2 and y.shape[1] == len(classes) and y.dtype.kind in "biuf":
        # one column per class, as the model was trained: name the row that is no class
        # (it said "class labels must be one column", of the columns the model asked for)
        ones = np.where(np.isin(y, (0, 1)).all(axis=1), y.sum(axis=1), -1)
        row = int(np.flatnonzero(ones != 1)[0])
        held = {-1: "a value other than 0 and 1", 0: "no 1"}.get(
            int(ones[row]), f"{int(ones[row])} ones"
        )
        raise DataError(
            f"{dataset.source}, {dataset.row_name(row)}: its class columns hold {held}; "
            "each row of one-hot targets holds one 1, in the column of its class"
        )
    if y.ndim != 1:
        raise DataError(f"{dataset.source}: class labels must be one column; got shape {y.shape}")
    encoded = np.empty(len(y), dtype=np.int64)
    for row, label in enumerate(y):
        key = str(plain(label))
        if key not in lookup:
            raise DataError(
                f"{dataset.source}, {dataset.row_name(row)}: label {key!r} is not a class the "
                f"model was trained on ({', '.join(map(str, classes))})"
            )
        encoded[row] = lookup[key]
    return encoded


def check_id_name(id_column: str | None, header: list[str], source: object) -> None:
    """An identifier column must not share a name with a column predict writes (pandas
    would rename one, csv.DictReader keep the last)."""
    if id_column and id_column in header:
        raise DataError(
            f"{source}: the identifier column {id_column!r} has the name of a column wxb "
            f"predict writes ({', '.join(header[:6])}{', …' * (len(header) > 6)}); "
            "rename it in the data"
        )


def prediction_names(targets: Targets, names: list[str]) -> list[str]:
    """The columns predict (with --proba) writes for a model trained on ``targets``
    (``names``: the target columns)."""
    if targets.task == "classification" and targets.classes is not None:
        return ["prediction", *(f"p_{c}" for c in targets.classes)]
    if targets.outputs == 1:
        return ["prediction"]
    return [f"prediction_{name}" for name in names]


def prediction_table(model, out: np.ndarray, proba: bool) -> tuple[list[str], list[np.ndarray]]:
    """Header and columns: class names (and probabilities), or the model's outputs.

    A multilabel model (from scikit-learn) gives one 0/1 column per label (σ(z) > ½, as
    scikit-learn's indicator matrix); a log-link regressor (Poisson) gives exp(z)."""
    check_classes_fit(model, out)
    task, _, classes = model_task(model)
    head = probability_head(model)  # its outputs are p as the head gave them
    if is_multilabel(model):  # (a Sigmoid head gave p already)
        p = out if head == "sigmoid" else ops.Sigmoid().forward(out, np.empty_like(out))
        header = [f"prediction_{c}" for c in classes]
        columns = list((p > 0.5).astype(np.int64).T)
        if proba:
            header += [f"p_{c}" for c in classes]
            columns += list(p.T)
        return header, columns
    if model.info.get("link") == "log":
        out = np.exp(out)
    if task == "classification":
        if head == "softmax":
            probabilities = out
        elif out.shape[1] == 1:  # one logit z: P(class 1) = σ(z)
            p1 = out if head == "sigmoid" else ops.Sigmoid().forward(out, np.empty_like(out))
            probabilities = np.hstack([1 - p1, p1])
        else:
            probabilities = ops.softmax_rows(out, np.empty_like(out))
        names = np.array(classes, dtype=object)
        # the class by the rule eval scores (z > 0 for one logit): σ(z) of a tiny z is
        # exactly ½ in float32, where an argmax of [1 − σ, σ] would say class 0
        chosen = predicted_classes(class_logits(model, out))
        header, columns = ["prediction"], [names[chosen]]
        if proba:
            header += [f"p_{c}" for c in classes]
            columns += list(probabilities.T)
        return header, columns
    if out.shape[1] == 1:
        return ["prediction"], [out[:, 0]]
    names = model.info.get("targets") or []
    if len(names) == out.shape[1]:  # several target columns: each prediction by its name
        return [f"prediction_{name}" for name in names], list(out.T)
    return [f"output_{k}" for k in range(out.shape[1])], list(out.T)


def targets(y: object, task: str = "auto", loss: str = "auto") -> Targets:
    """``encode_targets`` for an array of targets (class names, numbers or one-hot rows),
    as ``wxb.fit`` users have them: ``t = targets(y); fit(model, X, t.y, loss=t.loss)``."""
    y = np.asarray(y)
    dataset = wdata.Dataset(np.empty((len(y), 0)), y, [], source="y")
    return encode_targets(dataset, task, loss)
