"""``wxb.fit``: mini-batches, validation, metrics, early stopping, history, progress."""

from __future__ import annotations

import io
import json
import math
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, KeysView, Mapping
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from wxb import checkpoint as ckpt
from wxb import data as wdata
from wxb import ops, validation
from wxb.backend import is_torchs
from wxb.columns import rows_by_name, rows_for_model
from wxb.describe import chain_layers
from wxb.diagnose import NEEDS_A_CHAIN, layer_reports, warnings_for
from wxb.distributed import GradientSum, Ranks, RanksStopped
from wxb.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    NotFoundError,
    ShapeError,
    TrainingError,
    TrainingInterrupted,
    WxbError,
    unpacked_by_caller,
)
from wxb.metrics import figure_text, pack_fingerprints, row_fingerprints, unpack_fingerprints
from wxb.nn.heads import head_index, sklearn_poisson, trained_loss
from wxb.nn.layers import Dropout, Sigmoid, Softmax
from wxb.nn.losses import (
    GRAPH_LOSSES,
    LOSSES,
    NUMBER_LOSSES,
    REGRESSION_LOSSES,
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Loss,
    MultiLabelSoftMarginLoss,
    MultiMarginLoss,
    NLLLoss,
    SoftMarginLoss,
    TargetForm,
    accuracy_kind,
    computes_its_own,
    counts_no_row,
    figures_in_targets_dtype,
    get_loss,
    mean_weight,
    one_number,
    own_code,
    plain_options,
    recorded_name,
    stock_loss,
    weight_values,
    weights_set,
)
from wxb.nn.module import (
    WEIGHTS,
    Module,
    _bool_ids,
    _runs_own_code,
    _whole_number_rows,
    chunk_changes_rows,
    couples_rows,
    flatten_rows,
    hooks_off,
    is_stock,
    keras_verbose,
)
from wxb.nn.norm import BatchNorm1d
from wxb.nn.sequential import layers_in_order
from wxb.optim import (
    LBFGS,
    LBFGS_NOT_IN_FIT,
    SCHEDULES,
    LRSchedule,
    Optimizer,
    ReduceLROnPlateau,
    _unstepped,
    get_optimizer,
    refuse_unschedulable,
)
from wxb.random import (
    FUNCTIONAL_SCHEME,
    RowMasks,
    as_generator,
    drawing_from,
    key_of,
    masks_by_row,
    row_masks,
)
from wxb.step import PlannedStep, make_step
from wxb.tables import (
    coarsened_columns,
    column_names,
    feature_rounding_warnings,
    is_tabular,
    target_names,
)
from wxb.tensor import Tensor, enable_grad, no_grad, refuse_masked


def _null_if_not_finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _null_if_not_finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_null_if_not_finite(v) for v in value]
    if isinstance(value, np.generic):  # (a diagnostic's NumPy scalar)
        return _null_if_not_finite(value.item())
    return value


_KERAS_HISTORY = {
    "epoch": "wxb numbers epochs from 1 (best_epoch, kept_epoch): "
    "range(1, history.epochs + 1), history.epochs being their count (Keras's "
    "history.epoch lists 0, 1, …)",
    "params": "fit's settings are the arguments it was given; an epoch is "
    "⌈rows / batch_size⌉ steps",
    "model": "fit trains the model it was given, in place",
}

# a model's methods, called on fit's result by a scikit-learn habit (fit returns self)
_MODEL_METHODS = frozenset(
    ("predict", "predict_proba", "score", "evaluate", "summary", "state_dict", "parameters")
)


@dataclass
class History:
    """Per-epoch figures, keyed as Keras does: loss, accuracy, val_loss, val_accuracy, lr.

    ``lr`` is the rate of the optimiser's first parameter group (``param_groups[0]``);
    with several groups, group i's is ``lr_group{i}`` too (i ≥ 1): the rate each group
    trained with in that epoch (``param_groups[i]["lr"]``, before the schedule's step;
    under a schedule stepped once a batch, OneCycleLR, the rate of the epoch's last batch)."""

    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int | None = None
    stopped_early: bool = False
    # the epoch whose weights the model holds at the end, when early stopping restored
    # the best ones (None: the last epoch's)
    kept_epoch: int | None = None
    engine: str = ""  # which training step ran: "planned" or "graph"
    engine_reason: str | None = None  # with "graph": why the planned step could not run
    resumed_from: str | None = None  # with resume=True: the checkpoint the run went on from
    # With fit(diagnose=True): per epoch, each Dense layer's norms and unit figures
    # (wxb.diagnose.LayerReport as dicts), and the warnings they raised.
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # what ``loss`` measures when it is not the loss in the data's own units (wxb train's
    # regression trains on standardized targets)
    loss_note: str | None = None

    def __getattr__(self, name: str) -> Any:
        """Keras's History attributes wxb has not, refused with wxb's way; so is a model's
        method, as a scikit-learn user chains it (``wxb.fit(model, X, y).predict(X)``)."""
        if name in _MODEL_METHODS:  # ('History' object has no attribute 'predict')
            raise AttributeError(
                f"History has no {name}: wxb.fit returns the History, as Keras's fit, not the "
                "model (scikit-learn's fit returns the estimator); fit trains the model it "
                "was given, in place: model.predict(X), wxb.evaluate(model, X, y)"
            )
        way = _KERAS_HISTORY.get(name)
        if way is None:
            raise AttributeError(f"'History' object has no attribute {name!r}")
        raise AttributeError(f"History has no {name} (Keras's): {way}")

    def record(self, **values: float) -> None:
        done = self.epochs  # before this epoch's loss goes in
        for key, value in values.items():
            # A figure new after some epochs (lr_group{i}, resumed from a checkpoint of a wxb
            # that did not record it) is NaN for those, so the k-th value stays epoch k's
            # (its list was shorter, its first value read as epoch 1's).
            self.history.setdefault(key, [math.nan] * done).append(float(value))

    @property
    def epochs(self) -> int:
        return len(self.history.get("loss", []))

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __contains__(self, key: object) -> bool:
        return key in self.history

    def __iter__(self) -> Iterator[str]:
        return iter(self.history)

    def keys(self) -> KeysView[str]:
        return self.history.keys()

    def to_dict(self) -> dict[str, Any]:
        figures: dict[str, Any] = {
            "history": self.history,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "kept_epoch": self.kept_epoch,
        }
        if self.diagnostics:
            figures.update(diagnostics=self.diagnostics, warnings=self.warnings)
        if self.loss_note:
            figures["loss_note"] = self.loss_note
        return figures

    def to_json(self) -> str:
        """Standard JSON: a figure that is NaN or ±inf (a loss of rows that all weigh
        nothing, a norm that overflowed) is null, as a figure the epoch does not have
        (NaN and Infinity are not JSON: jq, JSON.parse and strict parsers refused the file)."""
        return json.dumps(_null_if_not_finite(self.to_dict()), indent=2, allow_nan=False)

    @classmethod
    def from_dict(cls, figures: dict[str, Any]) -> History:
        """The inverse of ``to_dict`` (a checkpoint's history)."""
        return cls(
            history={k: [float(v) for v in vs] for k, vs in figures["history"].items()},
            best_epoch=figures.get("best_epoch"),
            stopped_early=bool(figures.get("stopped_early")),
            kept_epoch=figures.get("kept_epoch"),
            diagnostics=list(figures.get("diagnostics", [])),
            warnings=list(figures.get("warnings", [])),
            loss_note=figures.get("loss_note"),
        )


class ProgressBar:
    """One line per epoch, redrawn in place; silent unless writing to a terminal.
    ``lines_only`` (Keras's verbose=2): the epoch's closing line alone, no bar."""

    def __init__(
        self, epochs: int, steps: int, stream: TextIO, enabled: bool, lines_only: bool = False
    ) -> None:
        self.epochs, self.steps, self.stream, self.enabled = epochs, steps, stream, enabled
        self.lines_only = lines_only
        self.last_draw = 0.0
        self.open_line = False  # a bar drawn and its epoch's line not yet written

    def due(self, step: int) -> bool:
        """Whether ``update`` would draw now (the running figure is computed only then)."""
        if not self.enabled or self.lines_only:
            return False
        return step >= self.steps or time.monotonic() - self.last_draw >= 0.1

    def update(self, epoch: int, step: int, loss: float) -> None:
        """``loss``: the epoch's figure over its batches so far (Keras's running mean)."""
        if not self.due(step):
            return
        self.last_draw = time.monotonic()
        width = 24
        filled = width * step // self.steps
        bar = "█" * filled + "·" * (width - filled)
        # erased to the line's end: a shorter figure than the last draw's (loss 10.5228,
        # then 9.8765) showed the old one's last digit after it (9.87658)
        self.stream.write(
            f"\repoch {epoch}/{self.epochs} {bar} {step}/{self.steps}  loss "
            f"{figure_text(loss)}\033[K"
        )
        self.stream.flush()
        self.open_line = True

    def close(self) -> None:
        """End a bar left mid-epoch (an error, Ctrl-C): what follows starts on its own line
        (a traceback began after "… 3/10  loss 1.2")."""
        if self.open_line:
            self.open_line = False
            self.stream.write("\n")
            self.stream.flush()

    def end_epoch(self, epoch: int, figures: dict[str, float]) -> None:
        if not self.enabled:
            return
        # as the test figures are written: a loss of 3e-5 is not 0.0000, an accuracy of
        # 0.99996 not 1.0000
        self.open_line = False
        text = "  ".join(f"{k} {figure_text(v)}" for k, v in figures.items())
        if self.lines_only:  # a log's line: no carriage return or erase code
            self.stream.write(f"epoch {epoch}/{self.epochs}  {text}\n")
        else:
            self.stream.write(f"\repoch {epoch}/{self.epochs}  {text}\033[K\n")
        self.stream.flush()


def _sparse_rows(model: Module, X: object, dtype: np.dtype) -> validation.SparseRows | None:
    """A SciPy sparse X read a batch at a time (``validation.SparseRows``: CSR batches to a
    planned first Dense, else each batch made dense), or None: made dense whole where
    its whole numbers are ids for a forward of one's own (kept whole, ``_features``)."""
    if model._own_forward() and getattr(X, "dtype", np.dtype(float)).kind in "biu":
        return None
    return validation.sparse_rows(X, dtype)


def _features(
    model: Module, X: object, dtype: np.dtype, where: str, check: bool = True
) -> np.ndarray:
    """X as ``validation.as_features`` makes it, except rows of whole numbers (ids) for
    a forward of one's own: those stay whole, as ``model(X)`` and ``predict`` hand them
    over (cast to float32, ids past 2**24 merged, and the forward's lookup, after the
    astype(int) the index error advised, read other rows without a word). X of more dims
    before a first Flatten: its rows (``flatten_rows``)."""
    refuse_masked(X, where)
    X = flatten_rows(model, X)
    if getattr(X, "dtype", None) == np.bool_ and model._looks_up_ids():
        raise _bool_ids(model, where)  # as model(X) and predict: made 0./1., rows 0 and 1
    if model._own_forward() and _whole_number_rows(X) and np.ndim(X) == 2:
        return np.ascontiguousarray(np.asarray(X))
    return validation.as_features(X, dtype, where, check=check)


def output_shape(
    model: Module, X: np.ndarray, where: str = "X", hooks: bool = False
) -> tuple[int, ...]:
    """The shape of the model's output for a row of X (from a forward pass in eval mode of
    its first two rows, whatever the model's code): bad input fails here, before any
    training. (Two: a BatchNorm1d without running statistics normalises by the batch.)
    Forward hooks do not run in it (a hook counting calls or keeping the rows it saw
    would see a call a PyTorch loop does not make), unless the forward fails without,
    or ``hooks`` (``_shape_and_targets``: a hook may change the output's width)."""
    rows = min(len(X), 2)
    with model.evaluating(), no_grad():
        # a copy: a forward of one's own may change its input in place (x -= μ), and these
        # rows are then trained on or scored (evaluate's loss took them changed twice)
        out = None
        if not hooks:
            try:  # without forward hooks: a PyTorch loop makes no such call for them to see
                with hooks_off():
                    out = model(X[:rows].copy())  # (floats as a Tensor, ids as they are)
            except Exception:  # (a pre-hook the forward needs, say)
                out = None
        if not isinstance(out, Tensor) or out.ndim not in (1, 2) or out.shape[0] != rows:
            out = model(X[:rows].copy())  # with its hooks, as the model runs (one making
            # its result a Tensor), and checked as such
    if not isinstance(out, Tensor):
        raise ConfigError(
            f"{type(model).__name__}.forward returned {type(out).__name__}; fit, evaluate "
            "and predict need it to return one Tensor"
        )
    if out.ndim not in (1, 2) or out.shape[0] != rows:
        raise ShapeError(
            f"the model turns {rows} row(s) of {where} into shape {out.shape}; fit and evaluate "
            "need one output row per input row, (B,) or (B, outputs)"
        )
    return out.shape[1:]


def _shape_and_targets(
    model: Module, X: np.ndarray, loss: Loss, y: object, dtype: np.dtype
) -> tuple[tuple[int, ...], np.ndarray]:
    """``output_shape`` and the targets prepared for it. The look at the shape runs
    without forward hooks, but a hook may return another width (``o.mean(1, keepdim)``,
    ``o[:, :3]``): where y does not fit the shape without hooks and the model has hooks,
    the shape is looked at again with them, as the model runs (y was refused, fitting
    the model's real outputs)."""
    shape = output_shape(model, X)
    try:
        return shape, _prepare_targets(loss, y, dtype, shape, "y")
    except (DataError, ShapeError):
        if not any(module._has_hooks() for module in model.modules()):
            raise
    shape = output_shape(model, X, hooks=True)
    return shape, _prepare_targets(loss, y, dtype, shape, "y")


def _prepare_targets(
    loss: Loss, y: object, dtype: np.dtype, shape: tuple[int, ...], where: str
) -> np.ndarray:
    """Targets in the form the loss kernel takes, checked against the model's output
    ``shape`` per row (from ``output_shape``)."""
    outputs = shape[0] if shape else 1
    if y is None:  # (was "y must hold numbers; it holds object values")
        raise DataError(f"{where} is None: give the targets, one per row of X")
    refuse_masked(y, where)
    if stock_loss(loss) is CrossEntropyLoss:
        name = loss.kernel.name  # (nll: log-probabilities)
        if not shape:
            raise ShapeError(f"{name} needs the model to give (B, classes) outputs; it gives (B,)")
        y_arr = np.asarray(validation.numbers_from_pandas(y))
        if y_arr.ndim == 2 and y_arr.shape[1] > 1 and name == "nll":
            # (one-hot rows were advised, then refused by the loss at the first step)
            raise DataError(
                f"{where}: nll takes class indices of shape (B,), as PyTorch's NLLLoss; got "
                f"{y_arr.dtype} of shape {y_arr.shape} (probabilities and one-hot rows go to "
                "cross_entropy, on logits)"
            )
        if y_arr.ndim == 2 and y_arr.shape[1] > 1:  # class probabilities
            # whole numbers as the loss refuses them; 0/1 floats, several 1s a row: no
            # probabilities either (a multilabel indicator read as floats)
            labels = y_arr.dtype.kind in "biu" or ops.is_zero_one(y_arr)
            if labels and not ops.is_one_hot(y_arr):
                raise DataError(
                    f"{where}: a {y_arr.dtype} target of shape {y_arr.shape} for cross_entropy "
                    f"must hold {ops.ONE_HOT_ADVICE}"
                )
            return validation.as_targets(y_arr, dtype, outputs, where)
        ignored = getattr(loss.kernel, "ignore_index", None)  # rows that count for nothing
        try:
            return validation.as_class_indices(y_arr, outputs, where, ignored)
        except DataError as error:
            advice = _class_index_advice(name, y_arr, outputs)
            if advice is None:
                raise
            raise DataError(f"{error}; {advice}") from None
    if computes_its_own(loss):
        targets = validation.as_own_loss_targets(y, dtype, outputs, where)
    else:
        targets = validation.as_targets(y, dtype, outputs, where)
    return targets[:, 0] if not shape and targets.shape[1:] == (1,) else targets


def _class_index_advice(name: str, y: np.ndarray, outputs: int) -> str | None:
    """For targets a class-index loss refused, where they are a regression's numbers or a
    model of one output: the loss that takes them (a Keras user who left out loss=, as
    Keras's compile never does, got cross_entropy, fit's default, and "class 8 but the
    model has 1 outputs" naming none)."""
    default = f"{name} takes class indices 0..C−1, one output a class"
    if name == "cross_entropy":
        default += " (the loss of fit and evaluate where none is given or recorded)"
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y != np.round(y)).any():
        return f"{default}: numbers to predict are a regression, loss='mse'"
    if outputs == 1 and y.dtype.kind in "fbiu":
        return (
            f"{default}: with one output, numbers to predict take loss='mse', 0/1 labels "
            "loss='bce_with_logits'"
        )
    return None


def _target_form(loss: Loss, y: object, y_arr: np.ndarray) -> TargetForm | None:
    """For a loss of one's own given (B, 1) targets: which form it reads, (B, 1) or (B,)
    (``losses.TargetForm``), decided at its first real call (``TargetForm``), the form
    ``y`` was given in tried first, not by a probe of the loss and the model on rows of
    their own."""
    if not (computes_its_own(loss) and y_arr.shape[1:] == (1,)):
        return None
    return TargetForm(by_row_first=np.ndim(y) == 1)


class Scores(dict):
    """``evaluate``'s figures by name, ``{"loss": …, "accuracy": …}``: a dict, whose
    unpacking alone (``reversed``'s too) is refused. Keras's ``loss, acc =
    model.evaluate(X, y)`` unpacked a dict's keys, ``"loss"`` and ``"accuracy"``, as the
    figures without a word; a loop, a ``set(scores)`` or ``pytest.approx(scores)``
    iterates its keys as a dict's."""

    def __iter__(self) -> Iterator[str]:
        if unpacked_by_caller():
            raise self._no_unpacking("")
        return super().__iter__()

    def __reversed__(self) -> Iterator[str]:
        # acc, loss = reversed(scores) unpacked the keys as silently
        if unpacked_by_caller(after_call=True):
            raise self._no_unpacking("reversed ")
        return super().__reversed__()

    def _no_unpacking(self, how: str) -> TypeError:
        names = ", ".join(repr(name) for name in self.keys())
        return TypeError(
            f"wxb.evaluate's scores are a dict of {names}, which does not unpack {how}"
            "(that gives its keys): Keras's loss, acc = model.evaluate(X, y) is loss, acc = "
            "wxb.evaluate(model, X, y, return_dict=False); one figure is scores['loss']"
        )


def evaluate(
    model: Module,
    X: object = validation.NOT_GIVEN,
    y: object = None,
    loss: str | Loss | Callable[[Tensor, object], Tensor] | None = None,
    batch_size: int | None = 4096,
    *,
    x: object = validation.NOT_GIVEN,
    verbose: object = "auto",
    return_dict: bool = True,
    **keras_options: object,
) -> Scores | list[float] | float:
    """Loss (and accuracy for classification losses) of ``model`` on (X, y), in eval mode.

    Returns a dict, ``{"loss": …, "accuracy": …}`` (:class:`Scores`), as Keras's
    ``evaluate(..., return_dict=True)``: ``scores = wxb.evaluate(model, X, y);
    scores["loss"]``. Keras's ``loss, acc = model.evaluate(X, y)`` would unpack its keys,
    so unpacking it is refused, naming Keras's ``return_dict=False``, which gives Keras's
    list, ``[loss, accuracy]`` (the loss alone where there is no accuracy). Keras's
    ``verbose`` is taken (nothing is shown), ``batch_size=None`` is the default, and
    Keras's ``x=`` names X; its ``sample_weight``, ``steps`` and ``callbacks`` are
    refused, naming wxb's way, but at their default, None (``callbacks=[]`` too), which
    asks for what wxb does.

    ``loss``: by default the stock loss the model was trained with (``model.info["loss"]``,
    which fit and wxb train record; with the plain options fit recorded, Huber's delta or
    label_smoothing; BCELoss and KLDivLoss as "bce" and "kl_div"; a
    model last trained by fit with a loss of one's own is refused: give ``loss=``),
    else "cross_entropy", as Keras's evaluate takes
    the compiled loss, class weights included (fit records their values: the loss is
    torch's ``criterion(model(X), y)`` with the criterion fit was given; a model file from
    before wxb recorded them is scored without them, and a warning says so). A Poisson
    MLPRegressor's "poisson" is scored as torch's poisson_nll of its log-rates, which
    differs from scikit-learn's half Poisson deviance by a term of the targets alone.
    X and y may be SciPy sparse (X multiplied sparse by a planned first
    Dense, else made dense a chunk at a time), as fit takes them;
    X of no rows is refused (a mean over no rows is no figure).

    A stock loss is computed against the targets as given (float64), as scikit-learn's
    metrics take them; several labels a row (``bce_with_logits``) count as right when
    every label is, as scikit-learn's ``accuracy_score`` counts them. The loss takes the
    outputs as they are, as fit's figures and PyTorch's loss do: for a model whose last
    layer already gives probabilities (``Softmax``), cross_entropy applies softmax again
    (fit warns of it); ``wxb eval`` scores such a saved model's probabilities as such.
    As fit, it runs a forward of one's own once more than its chunks: the look at the
    output's shape (two rows, eval mode, no hooks) that reads and checks y first.
    Beside another thread's training of the model, the figures are of one weight
    version: the step waits for all the chunks, as for a predict (``WEIGHTS``)."""
    X = validation.keras_rows(X, x, "evaluate")
    validation.refuse_keras_arguments(
        keras_options,
        "wxb.evaluate",
        _KERAS_EVALUATE_WAYS,
        _KERAS_EVALUATE_DEFAULTS,
        called="evaluate",
    )
    keras_verbose(verbose, "evaluate")  # Keras's; taken, as evaluate shows no progress
    if not isinstance(return_dict, (bool, np.bool_)):
        raise ConfigError(f"evaluate return_dict must be True or False; got {return_dict!r}")
    loss_fn = get_loss(_trained_loss(model, loss))
    # Keras's evaluate(batch_size=None): the default (the figures do not depend on it)
    batch_size = _whole(4096 if batch_size is None else batch_size, "batch_size")
    # SciPy sparse rows: dense a chunk at a time, as fit reads them (whole for ids of a
    # forward of one's own, or a model holding no float array, computed in X's dtype)
    held = model._held_dtype()
    X_sparse = _sparse_rows(model, X, held) if held is not None else None
    X = X if X_sparse is not None else validation.dense_if_sparse(X)
    y = validation.dense_if_sparse(y)
    _check_target_order(model.info, y)
    dtype = model._rows_dtype(X)  # (a model holding no float array: X's own float dtype)
    if X_sparse is not None:
        X_arr = X_sparse
    else:
        X_arr = _features(model, rows_by_name(model.info, X, dtype), dtype, "X")
    try:
        _, y_arr = _shape_and_targets(model, X_arr, loss_fn, y, _figure_dtype(loss_fn, dtype))
    except DataError as error:
        raise _with_classes_hint(error, model.info, y) from None
    validation.check_lengths(X_arr, y_arr)
    scores = _evaluate(
        model, X_arr, y_arr, loss_fn, batch_size, form=_target_form(loss_fn, y, y_arr)
    )
    if return_dict:
        return Scores(scores)
    # Keras's return_dict=False: its list in its order, the loss alone without a metric
    return [scores["loss"], scores["accuracy"]] if "accuracy" in scores else scores["loss"]


def _with_classes_hint(error: DataError, info: dict, y: object) -> DataError:
    """A target refused on a model that names its classes (wxb train's, MLPClassifier's
    to_wxb): y holds their indices, which np.unique would number afresh (wrongly, on rows
    that lack a class)."""
    classes = info.get("classes")
    if not classes or "class" not in str(error):
        return error
    shown = ", ".join(repr(c) for c in list(classes)[:8]) + (", …" if len(classes) > 8 else "")
    how = (
        f"this model's outputs are its classes [{shown}] in that order: give each row's "
        "index among them, e.g. y = np.asarray([classes.index(v) for v in labels]) with "
        "classes = model.info['classes']"
    )
    labels = np.asarray(y, dtype=object).ravel() if hasattr(y, "__len__") else ()
    if any(isinstance(v, (str, bytes)) for v in labels[:1]):
        return DataError(f"y holds text labels such as {str(labels[0])!r}; {how}")
    return DataError(f"{error}; {how}")


# Keras's loss names: wxb's losses take logits, where Keras's take a Sigmoid's or a
# Softmax's probabilities by default
_ON_LOGITS = "on logits: a model without its {} head (wxb.nn.functional.{} gives probabilities)"
_KERAS_LOSSES = {
    "binary_crossentropy": "'bce_with_logits', "
    + _ON_LOGITS.format("Sigmoid", "sigmoid")
    + "; with the Sigmoid head kept, loss=wxb.nn.BCELoss() (on its probabilities)",
    "categorical_crossentropy": "'cross_entropy' (it takes one-hot rows too), "
    + _ON_LOGITS.format("Softmax", "softmax"),
    "sparse_categorical_crossentropy": "'cross_entropy', "
    + _ON_LOGITS.format("Softmax", "softmax"),
    "mean_squared_error": "'mse' (½‖ŷ − y‖² a row: half Keras's for one output)",
    "mae": "'l1'",
    "mean_absolute_error": "'l1'",
}


def _trained_loss(
    model: Module, loss: object, doing: str = "evaluate scores", stacklevel: int = 3
) -> object:
    """``loss``, or where None the stock loss the model was trained with (its info's, as
    fit and wxb train record it; wxb train's Huber or smooth L1 with the δ or β it
    applied, ``heads.trained_loss``), else cross_entropy: a regression's MSE was scored,
    and a second fit trained, as a cross-entropy of its targets without a word. Class
    weights a model file records only by name (saved before their values were): a
    warning says the loss ``doing`` (what evaluate or fit does with it) is without them."""
    if isinstance(loss, str) and loss in _KERAS_LOSSES:
        raise ConfigError(f"loss={loss!r} is Keras's name; wxb's is {_KERAS_LOSSES[loss]}")
    if loss is not None:
        return loss
    unnamed = model.info.get("unnamed_loss")
    if unnamed:
        raise ConfigError(
            f"the model was last trained with {unnamed}, which is not recorded by name; "
            "give loss= (the same loss) to score or train it again"
        )
    recorded = model.info.get("loss")
    named = {**LOSSES, **GRAPH_LOSSES}
    if (
        isinstance(recorded, str)
        and recorded
        and recorded not in named
        and not sklearn_poisson(model.info)
    ):
        raise ConfigError(
            f"the model was trained with the {recorded} loss, which wxb's losses do not "
            f"include; give loss= (one of {', '.join(LOSSES)}, a Loss, or a function)"
        )
    if not (isinstance(recorded, str) and recorded):
        return "cross_entropy"
    weighted = model.info.get("loss_weights")
    # a model file from before fit recorded the values: their names alone
    if weighted and isinstance(weighted, list) and recorded in named:
        kind, them = named[recorded].__name__, "them" if len(weighted) > 1 else "it"
        given = ", ".join(f"{key}=…" for key in weighted)
        warnings.warn(
            f"the model was trained with {kind}'s {' and '.join(map(str, weighted))} set, "
            f"which its file records by name only (saved by an earlier wxb): {doing} the "
            f"loss without {them}, not the one training minimised; give "
            f"loss={kind}({given}) to apply {them}",
            UserWarning,
            stacklevel=stacklevel,
        )
    # (wxb train's Huber and smooth L1: the δ or β training applied, in the targets' units;
    # scikit-learn's Poisson: torch's poisson_nll of its log-rates)
    return trained_loss(model.info, recorded)


def _head_applied_twice(model: Module, loss: Loss) -> str | None:
    """The function ("softmax", "sigmoid") a stock loss applies to the outputs itself when
    the model's last layer already applied it (outputs that are probabilities), else None."""
    layers = layers_in_order(model)
    last = layers[head_index(layers)]
    if last is model:
        return None
    kind = stock_loss(loss)
    if isinstance(loss, NLLLoss):  # it takes log-probabilities: applies nothing itself
        return None
    if kind is CrossEntropyLoss and is_stock(last, Softmax):
        return "softmax"
    if kind is BCEWithLogitsLoss and is_stock(last, Sigmoid):
        return "sigmoid"
    # log(1 + e^(−y·x)) is −log σ(y·x): these take logits too
    if recorded_name(loss) in ("soft_margin", "multilabel_soft_margin") and is_stock(last, Sigmoid):
        return "sigmoid"
    return None


def _evaluate(
    model: Module,
    X: np.ndarray,
    y: np.ndarray,
    loss: Loss,
    batch_size: int = 4096,
    ranks: Ranks | None = None,
    rows: np.ndarray | None = None,
    form: TargetForm | None = None,
) -> dict[str, float]:
    """The loss (and accuracy) over all of X (or X's ``rows``); in a distributed run each
    rank takes its share of the rows and the sums are added over the ranks. ``form``:
    the targets' form a loss of one's own reads (``_target_form``; fit's, decided at its
    first step), decided here at the first chunk where it is not yet."""
    total, correct, unread = 0.0, 0, 0  # unread: rows whose outputs are not finite
    wide, scored = figures_in_targets_dtype(loss), accuracy_kind(loss)
    count = len(y)
    part = ranks.share(count) if ranks is not None else slice(0, count)
    y_part = y[part]
    if rows is None:
        X = X[part]
    else:
        rows = rows[part]
    if couples_rows(model):  # rows normalised by their batch: all of them, as model(X)
        batch_size = max(len(y_part), 1)
    # rows of their own for a forward of one's own, which may change its input in place
    # (x -= μ): validation_data was changed again each epoch, and the border's rows run
    # again (below) were the changed ones
    fresh = np.array if _runs_own_code(model) else np.asarray
    # Weights that overflow give a non-finite figure, which the caller reports.
    overflow_ok = np.errstate(over="ignore", invalid="ignore", divide="ignore")
    # every chunk of one weight version, as predict's: another thread's step waits (each
    # chunk's call read alone, the figures mixed the versions before and after it)
    with WEIGHTS.reading(model), model.evaluating(), no_grad(), overflow_ok:
        start, tail = 0, None
        while start < len(y_part):
            end = start + batch_size
            if rows is None:
                xb = X[start:end]
            elif isinstance(X, validation.SparseRows):  # (validation_split's: kept sparse)
                xb = X.picked(rows[start:end])
            else:
                xb = np.take(X, rows[start:end], axis=0)
            yb = y_part[start:end]
            # sparse rows: multiplied sparse by a planned first Dense, else dense, a chunk
            sparse = isinstance(xb, validation.SparseRows)
            out = model._sparse_forward(xb.matrix) if sparse else None
            out = model(fresh(xb)).data if out is None else out
            if start == 0 and end < len(y_part):
                tail = out[-1:].copy()  # for the look across the first chunks' border
            elif tail is not None:
                tail, border = None, np.concatenate([tail, out[:1]])
                window = slice(start - 1, start + 1)
                window_rows = X[window] if rows is None else np.take(X, rows[window], axis=0)
                run = lambda rows_: model(fresh(rows_)).data  # noqa: E731
                if chunk_changes_rows(model, window_rows, border, run):
                    # a forward of one's own that couples rows: all at once, as model(X)
                    total, correct, unread, end = 0.0, 0, 0, len(y_part)
                    xb = X if rows is None else np.take(X, rows, axis=0)
                    yb, out = y_part, run(xb)
            start = end
            if yb.dtype == np.float64 and wide:  # figures against exact targets
                out = out.astype(np.float64, copy=False)
            if form is None:
                value = one_number(loss, loss(Tensor(out), yb))
            elif form.column is None:  # its graph recorded, for the form to be read off
                with enable_grad():
                    value = one_number(loss, form(loss, Tensor(out, requires_grad=True), yb))
            else:
                value = one_number(loss, form(loss, Tensor(out), yb))
            total += _batch_total(loss, value.item(), len(xb), yb)
            correct += _correct(scored, out, yb, _ignored_label(loss))
            unread += int(np.count_nonzero(~np.isfinite(out.reshape(len(out), -1)).all(axis=1)))
    if ranks is not None:
        total, correct, unread = ranks.sum_numbers(
            total, correct, unread, what="the validation sums"
        )
    figures = {"loss": _epoch_figure(loss, total, count, y)}
    if scored is not None:
        # no class is read from an output that is inf or NaN (argmax takes a NaN for the
        # largest): NaN, as the loss beside it, and as wxb eval refuses to score them
        figures["accuracy"] = math.nan if unread else _share(correct, _scored_rows(loss, y))
    return figures


def _figure_dtype(loss: Loss, dtype: Any) -> Any:
    """The targets' dtype for evaluation figures: float64 for a stock loss (and the
    others computing in the targets' dtype, ``figures_in_targets_dtype``), whose value
    then compares the outputs with the targets as given (in float32, targets near 1e8
    round in steps of 8 and the MSE moves by a third); the model's for a loss of one's own."""
    return np.float64 if figures_in_targets_dtype(loss) else dtype


def _batch_total(loss: Loss, value: float, rows: int, y: np.ndarray | None = None) -> float:
    if loss.reduction == "sum":
        return value
    weight = None if y is None else mean_weight(loss, y)  # None: fit knows it is the rows
    if weight is None:
        return value * rows
    # A cross-entropy's mean over class weights or rows kept: its sum is value·Σw. A batch
    # whose rows are all ignored is NaN by PyTorch's rule, with no gradient: it adds
    # nothing (it was taken for a loss that diverged, and ended fit).
    return 0.0 if counts_no_row(loss, y) else value * weight


def _epoch_figure(loss: Loss, total: float, rows: int, y: np.ndarray | None = None) -> float:
    """An epoch's loss as the loss reduces: the mean over its samples, or the sum; a
    cross-entropy's with class weights or ignored rows over Σw of all of ``y``, as
    PyTorch's loss of every row at once (each batch's mean has its own divisor)."""
    if loss.reduction == "sum":
        return total
    weight = mean_weight(loss, y)
    if weight is None:
        return total / rows
    with np.errstate(divide="ignore", invalid="ignore"):  # every row ignored: NaN, as PyTorch
        return float(np.float64(total) / weight)


def _whole(value: object, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{what} must be an integer ≥ {minimum}; got {value!r}")
    return int(value)


def _folder(value: object, what: str) -> str:
    """A folder path as text: a str, bytes (os.fsdecode, as open() and os.listdir take
    them; pathlib's bare TypeError, else) or an os.PathLike of either."""
    try:
        path = os.fspath(value)
    except TypeError:
        raise ConfigError(
            f"{what} must be a folder path (str, bytes or os.PathLike); got {type(value).__name__}"
        ) from None
    path = os.fsdecode(path)
    if not path:
        raise ConfigError(f"{what} is an empty path; give a folder")
    return path


def _integer(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _flag(value: object, what: str) -> bool:
    """True or False: "no" or 0.5 would read as true."""
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{what} must be True or False; got {value!r}")
    return bool(value)


def _number(value: object, what: str, low: float, high: float = math.inf) -> float:
    """A real number in [low, high)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{what} must be a number; got {value!r}")
    if not low <= value < high:
        raise ConfigError(f"{what} must be in [{low}, {high}); got {value}")
    return float(value)


def _check_rows_scored(loss, y, y_val, early_stopping, schedule) -> None:
    """Refuse targets whose every row is of a cross-entropy's ignore_index or of classes
    weighted 0: its loss is NaN (0/0, PyTorch's rule) at every epoch (validation rows of
    weight 0 raised "the loss became nan … outputs that overflow there", the training
    going well). Training rows so: nothing is learned. Validation
    rows so: val_loss is NaN, and early stopping or a plateau schedule watching it acted
    on NaN without a word (stopped after its patience, cut the rate); without a watcher,
    a warning (Keras shows the NaN)."""
    if stock_loss(loss) is not CrossEntropyLoss:
        return
    ignored = _ignored_label(loss)
    what = f"of the loss's ignore_index ({ignored}) or of a class whose weight is 0"
    all_ignored = ignored is not None and y.ndim == 1 and bool((y == ignored).all())
    if _weighs_nothing(loss, y) or all_ignored:  # (reduction 'sum': 0 each epoch, untrained)
        raise DataError(f"y: every row is {what}: no row is trained on")
    if y_val is None or not _weighs_nothing(loss, y_val):
        return
    message = f"every validation row is {what}: val_loss is NaN (0/0) each epoch"
    if early_stopping is not None or isinstance(schedule, ReduceLROnPlateau):
        watcher = "early stopping" if early_stopping is not None else "the plateau schedule"
        raise DataError(
            f"{message}, and {watcher} would watch NaN; give validation rows of other "
            "labels (or none: it then watches the training loss)"
        )
    warnings.warn(message, UserWarning, stacklevel=5)  # the caller of fit


def _weighs_nothing(loss: Loss, y: np.ndarray) -> bool:
    """Whether a cross-entropy's mean over ``y`` is 0/0 (NaN, as PyTorch's): every row
    ignored, or of a class weighted 0."""
    return counts_no_row(loss, y) or mean_weight(loss, y) == 0


def _ignored_label(loss: Loss) -> int | None:
    """The class index a cross-entropy leaves out (its ignore_index): no row of it is
    scored, for the accuracy as for the loss."""
    if stock_loss(loss) is not CrossEntropyLoss:
        return None
    return getattr(getattr(loss, "kernel", None), "ignore_index", None)


def _scored_rows(loss: Loss, y: np.ndarray) -> int:
    """The rows the accuracy is over: all but those of the ignored class index."""
    ignored = _ignored_label(loss)
    return len(y) if ignored is None or y.ndim != 1 else int((y != ignored).sum())


def _share(correct: int, rows: int) -> float:
    return correct / rows if rows else math.nan


def _correct(
    kind: type[Loss] | None, out: np.ndarray, y: np.ndarray, ignored: int | None = None
) -> int:
    """Rows predicted right in a batch, for ``kind = stock_loss(loss)`` (a loss of one's
    own, None: what its outputs mean is its own, so none are counted). Several labels a
    row: right when every label is (scikit-learn's accuracy_score, wxb.sklearn's score;
    Keras's binary_accuracy would count the labels one by one)."""
    if kind is CrossEntropyLoss:
        labels = y if y.ndim == 1 else y.argmax(axis=1)
        right = out.argmax(axis=1) == labels
        if y.ndim == 1 and ignored is not None and 0 <= ignored < out.shape[1]:
            right &= labels != ignored  # (an index outside 0..C−1 is never the argmax)
        return int(right.sum())
    if kind is MultiMarginLoss:  # class indices, the largest score the class
        return int((out.argmax(axis=1) == y.reshape(-1)).sum())
    if kind is SoftMarginLoss:  # labels ±1: x > 0 says +1
        right = (out > 0) == (y > 0)
        return int(right.reshape(len(right), -1).all(axis=1).sum())
    if kind in (BCEWithLogitsLoss, BCELoss, MultiLabelSoftMarginLoss):  # p > 0.5 is z > 0
        right = (out > (0.5 if kind is BCELoss else 0)) == (y > 0.5)
        return int(right.reshape(len(right), -1).all(axis=1).sum())
    return 0


def fit(
    model: Module,
    X: object = validation.NOT_GIVEN,
    y: object = None,
    *,
    loss: str | Loss | Callable[[Tensor, object], Tensor] | None = None,
    optimizer: str | Optimizer = "adam",
    lr: float | None = None,
    epochs: int = 10,
    batch_size: int | None = 32,
    validation_split: float = 0.0,
    validation_data: tuple[object, object] | None = None,
    shuffle: bool = True,
    seed: int | np.random.Generator | None = None,
    early_stopping: int | None = None,
    min_delta: float = 0.0,
    restore_best_weights: bool = True,
    lr_schedule: str | LRSchedule | None = None,
    clip_grad_norm: float | None = None,
    verbose: bool | str = "auto",
    stream: TextIO | None = None,
    diagnose: bool = False,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    keep_checkpoints: int = 2,
    resume: bool = False,
    distributed: bool | Ranks = False,
    **keras_options: object,
) -> History:
    """Train ``model`` on rows ``X`` with targets ``y``; returns a :class:`History`.

    - ``loss``: "cross_entropy" (y = class indices 0..C−1), "mse", "bce_with_logits",
      "nll" (after a LogSoftmax), "l1", "huber", "smooth_l1" (regressions outliers should
      pull less), "bce" (or "binary_cross_entropy": BCELoss, of a Sigmoid's
      probabilities), "kl_div" (KLDivLoss, of a LogSoftmax's output), torch.nn's
      other one-input losses by torch.nn.functional's names less "_loss" ("poisson_nll",
      "soft_margin", "multilabel_soft_margin", "hinge_embedding", "multi_margin",
      "multilabel_margin"), a Loss (not one whose forward takes two inputs or a
      variance, MarginRankingLoss, CosineEmbeddingLoss, GaussianNLLLoss, the triplet
      losses: a hand loop's, refused), or a
      function ``f(output, target)`` giving the batch's mean as a scalar Tensor; by
      default the stock loss the model was trained with (its info's; one wxb has not,
      such as Poisson, is refused, as is a model last trained here with a loss not
      recorded by name: BCELoss, KLDivLoss, one's own), else "cross_entropy". A loss of one's own (a
      function, a Loss subclass with its own __call__ or forward) gets y as (B, outputs)
      when y has that shape, else its rows as given (class indices, extra columns such as
      row weights), as a PyTorch loop would; y for one output comes as given, (B,) or
      (B, 1), unless that form broadcasts into (B, B) in the loss or is refused and the
      other does neither (``out[:, 0] - y`` on a (B, 1) y; ``out - y`` on a (B,) one):
      the first step's call tells, and only then is the loss called twice in a step.
      The loss is called once a step (once a chunk in evaluate), as a PyTorch loop
      calls it; forward hooks see the steps' batches alone (fit's look at the output's
      shape, one forward of two rows, runs without them). A forward of one's own runs
      once more than a PyTorch loop would: that look, in eval mode under no_grad, on X's
      first two rows, before any step (a counter or a list kept inside forward sees it).
      It stays: the output's width decides how y is read and checked before any step
      (its form, (B,) or (B, 1); targets that do not fit the outputs refused at once;
      the validation split by class), and a forward of one's own tells it only by
      running (a model of stock layers alone runs no code of one's own there).
    - ``optimizer``: "adam", "adamw", "sgd", "rmsprop", "adagrad", "nadam", "radam",
      "adamax", "adadelta", "rprop", "asgd", "adafactor", "muon" (``MuonWithAdamW``:
      Muon for the 2-D weights, AdamW for the rest), in any case ("Adam", "SGD", as
      Keras's compile takes them) (with ``lr``, or each one's default), or an Optimizer
      built on
      ``model.parameters()``. A name builds a new optimiser at each call: a second fit
      starts its state (Adam's moments and step count, momentum) from zero, where Keras
      keeps its compiled optimiser's; pass one Optimizer to each call to go on with it.
      Each call's History holds its own epochs, numbered from 1 (as Keras's fit without
      ``initial_epoch``).
    - ``X`` (and ``y``) as a SciPy sparse matrix or array (CSR, CSC, COO, ``csr_array``),
      as scikit-learn's MLP takes them: X is kept as CSR rows in the model's dtype, and
      where the planned step's first layer is a Dense each batch goes to it sparse, as
      scikit-learn's MLP computes it (Z = X·Wᵀ and ∂L/∂W = δᵀ·X, sparse × dense: work and
      memory by the non-zeros, equal to the dense rows' results up to the order of each
      sum); with another layer first (Standardize, Dropout), or a model the step does
      not plan, each batch is made dense alone (a TF-IDF matrix whose dense form would not
      fit in memory trains either way, distributed too; X is made dense whole only for
      ids of a forward of one's own); y made dense.
    - ``X`` as a table (a pandas DataFrame, a pyarrow Table): its column names go into
      ``model.info["feature_names"]``, and ``predict`` then takes a table's columns by
      name; a later fit on other columns, or in another order, is refused.
    - ``validation_split``: fraction of (X, y) held out, drawn at random from the seeded
      generator: round(rows × fraction) rows, at least one (Python's round, half to even;
      scikit-learn's count rounds up, Keras's holds out rows − ⌊rows × (1 − fraction)⌋,
      up too, and one more where the float product falls just short: 28 of 90 at 0.3),
      drawn by class for class indices, one 0/1 label a row and one-hot rows, each
      class giving its share (the count the same); or pass
      ``validation_data=(X_val, y_val)``. Unlike Keras's, which holds out the last rows
      as given (before any shuffling; with ``shuffle=False`` fit warns of it): for rows
      in time order, hold out the last ones yourself,
      ``fit(model, X[:k], y[:k], validation_data=(X[k:], y[k:]))``.
    - ``early_stopping``: patience in epochs on val_loss (or loss without validation),
      as Keras's ``EarlyStopping``: an epoch improves when it beats the best by more
      than ``min_delta``, and the run stops after ``patience`` epochs in a row that do
      not. With ``restore_best_weights`` (True by default, Keras's is False) the best
      epoch's weights are put back when the run ends, stopped early or not, as Keras 3
      does (tf.keras 2 put them back only when it stopped early); no ``baseline`` or
      ``start_from_epoch``.
    - ``lr_schedule``: "step", "cosine", "invscaling", "plateau", "onecycle" (PyTorch's
      OneCycleLR peaking at the optimiser's lr over the whole run, momentum or Adam's β₁
      cycled where the optimiser has one), or an LRSchedule (a named one goes on from
      the rates the optimiser holds, as a second PyTorch scheduler does: after a warm-up
      made on it and never stepped, from the warm-up's lowered rate, with a warning);
      stepped per epoch, but a OneCycleLR (or a SequentialLR of them) after every batch
      (its total_steps must cover epochs × batches; History's lr is then the rate the
      epoch's last batch trained with). A ReduceLROnPlateau is stepped on what early
      stopping watches (val_loss, else loss); "plateau" cuts the rate × 0.1 once that
      has not improved for half early stopping's patience (PyTorch's patience one less;
      improved as early stopping counts it: by more than ``min_delta``, when that is
      set), else PyTorch's default patience 10 (the 11th epoch without progress).
    - ``clip_grad_norm``: each step scales the gradients so that their joint L2 norm is at
      most this, the norm taken over the optimiser's parameters (a PyTorch loop passes
      ``model.parameters()`` to ``clip_grad_norm_``; the same when the optimiser holds all
      of them).
    - ``seed``: drives shuffling and the split; the same seed gives the same run, bit for bit.
    - ``batch_size``: rows a step; None, as Keras's, is its default 32.
    - ``History`` figures: ``loss`` as the loss reduces it ("mean": over the epoch's
      samples, each batch weighted by its rows, as Keras 3, or by its weights' sum (the
      rows counted) with CrossEntropyLoss's weight= (ignore_index); "sum": summed over the
      epoch; "mse" is the seed's ½‖ŷ − y‖² a row, half Keras's "mse" for one output,
      C/2 times it for C outputs), ``accuracy`` running over the epoch's
      batches (as Keras reports; for several labels, the rows with every label right,
      scikit-learn's accuracy_score, where Keras's binary accuracy averages the labels),
      ``val_*`` on the validation data after the epoch (as ``evaluate`` scores it),
      ``lr`` the rate the epoch trained with (the first parameter group's; with several
      groups, group i's is ``lr_group{i}`` too; NaN for the epochs a run resumed from
      a checkpoint of a wxb before it had trained, each list indexed by epoch).
    - ``verbose``: "auto" draws a progress bar only when ``stream`` is a terminal; True
      (or 1) always, False (or 0) never; 2, as Keras's: one line per epoch, no bar. The
      bar's ``loss`` is the epoch's figure over its batches so far (Keras's running mean),
      which ends as the epoch's ``loss``.
    - ``x=``: Keras's name for X (``fit(model, x=X, y=y)``), taken as X.
    - Keras's arguments wxb has not (``class_weight``, ``sample_weight``,
      ``initial_epoch``, ``callbacks``, ``steps_per_epoch``, …) are refused with wxb's way,
      but at Keras's default (None, ``callbacks=[]``, ``initial_epoch=0``,
      ``validation_freq=1``, tf.keras 2's ``workers=1``, ``use_multiprocessing=False``,
      ``max_queue_size=10``, EarlyStopping's ``baseline=None``, ``start_from_epoch=0``),
      which asks for what wxb does; so is ``validation_data``'s third element None (no
      weights), ``metrics=["accuracy"]`` with a classifier's loss (whose accuracy fit
      records), and EarlyStopping's ``monitor=`` naming what early stopping watches
      (val_loss, or loss without validation rows) and ``mode="min"`` (or "auto").
    - ``epochs=0``: the inputs checked, nothing trained, an empty History, as Keras's.
    - The model trains in train mode (Dropout on), whatever mode it was given in, and is
      left in it, as a PyTorch loop leaves it: call ``model.eval()`` before using it.
      (``predict`` and ``evaluate`` run in eval mode by themselves.)
    - ``diagnose``: after each epoch, a pass over the first 256 training rows records, per
      Dense layer, ‖W‖, ‖∂L/∂W‖, ‖δ‖, dead ReLU and saturated sigmoid/tanh fractions
      (``History.diagnostics``), and warns once per kind when δ vanishes or explodes
      through the chain of f′(Z) factors (``History.warnings``). Needs a Sequential, or a
      module whose forward only chains its layers (``fc2(F.relu(fc1(x)))``).
    - ``checkpoint_dir``: a folder for the run's checkpoints, written at each epoch's end,
      or every ``checkpoint_every`` steps, and when the run ends or is interrupted; the
      newest ``keep_checkpoints`` stay. ``resume=True`` goes on from the newest good one,
      bit for bit, given the same data and settings (only ``epochs`` may change: not below
      the epochs trained, nor past a OneCycleLR's total_steps; a schedule of one's own
      whose class's code, or a global its code reads, changed is warned of, and the run
      goes on with it); an empty folder starts the run.

    A loss that becomes NaN or infinite raises :class:`TrainingError` naming the epoch
    and step; the model is left with the weights of the last epoch that ended finite
    (the initial weights if it was the first).

    ``distributed``: run as one of the ranks of an MPI job (``mpiexec -n K python …``;
    True takes MPI's world, or pass a :class:`wxb.distributed.Ranks`). Every rank
    passes the same data and settings (checked at the start: a setting drawn at random
    on each rank stops every rank, named); each global batch of ``batch_size`` rows is
    split across the ranks, the gradients are summed over them, and every rank ends
    with the same weights as one process with the same batch size (to rounding) —
    provided the loss is a sum or a mean over rows and the model treats each row on its
    own: a module that uses batch statistics (``x - x.mean(0)``) sees only its rank's
    share, and so does a weighted mean in a loss of one's own; a term that does not
    depend on the rows (a weight penalty) counts once per rank in a loss of one's own
    with ``reduction="sum"`` (warned; with "mean" each rank's share is weighted by its
    rows, so it counts once). Rank 0 writes the checkpoints and draws the progress bar.
    A rank that dies or hangs stops the job within ``Ranks.timeout`` seconds
    (WXB_MPI_TIMEOUT, default 30).
    """
    X = validation.keras_rows(X, keras_options.pop("x", validation.NOT_GIVEN), "fit")
    _take_kerass_early_stopping(keras_options, validation_split, validation_data)
    _take_kerass_accuracy(keras_options, model, loss)
    validation.refuse_keras_arguments(
        keras_options, "wxb.fit", _KERAS_WAYS, _KERAS_FIT_DEFAULTS, called="fit"
    )
    if batch_size is None:  # Keras's fit(batch_size=None): its default, 32, as fit's
        batch_size = 32
    with _one_fit_at_a_time(model):
        return _fit_ranks(model, X, y, loss, optimizer, lr, epochs, batch_size, validation_split,
                          validation_data, shuffle, seed, early_stopping, min_delta,
                          restore_best_weights, lr_schedule, clip_grad_norm, verbose, stream,
                          diagnose, checkpoint_dir, checkpoint_every, keep_checkpoints, resume,
                          distributed)  # fmt: skip


def _take_kerass_early_stopping(
    options: dict[str, object], validation_split: object, validation_data: object
) -> None:
    """Keras's EarlyStopping ``monitor=`` and ``mode=`` given to fit, taken (out of
    ``options``) where they name what early_stopping watches: val_loss with validation
    rows, else loss, lower being better ("min", or "auto", which Keras makes "min" for
    a loss). Any other value is left to be refused, naming what wxb watches."""
    validated = validation_data is not None or (
        isinstance(validation_split, (int, float, np.number)) and validation_split > 0
    )
    watched = "val_loss" if validated else "loss"
    monitor = options.get("monitor")
    if isinstance(monitor, str) and monitor == watched:
        del options["monitor"]
    elif isinstance(monitor, str):
        raise ConfigError(
            f"wxb.fit takes no monitor={monitor!r} (Keras's): early_stopping watches val_loss "
            "with validation rows (validation_split=, validation_data=), else loss; here "
            f"{watched}, which monitor= may name"
        )
    if isinstance(options.get("mode"), str) and options["mode"] in ("min", "auto"):
        del options["mode"]


# Keras's metrics names for the accuracy fit records with a classifier's loss
_KERAS_ACCURACY = ("accuracy", "acc")


def _take_kerass_accuracy(options: dict[str, object], model: Module, loss: object) -> None:
    """Keras's ``metrics=["accuracy"]``, taken (out of ``options``) where fit records an
    accuracy: with a classifier's loss (cross_entropy, bce_with_logits, …). Another
    loss's is refused, naming it (Keras would count one); other metrics are left to be
    refused, naming wxb's way."""
    metrics = options.get("metrics")
    names = [metrics] if isinstance(metrics, str) else metrics
    if not isinstance(names, (list, tuple)):
        return
    if not names:  # none asked for, as metrics=None (fit's figures stay)
        del options["metrics"]
        return
    if not all(isinstance(name, str) and name in _KERAS_ACCURACY for name in names):
        return
    if not isinstance(model, Module):  # (fit refuses it, saying what a model is)
        del options["metrics"]
        return
    with warnings.catch_warnings():  # (fit's own look at the loss warns, once)
        warnings.simplefilter("ignore")
        loss_fn = get_loss(_trained_loss(model, loss, "this fit trains"))
    if accuracy_kind(loss_fn) is None:
        raise ConfigError(
            f"wxb.fit takes metrics={metrics!r} (Keras's) with a classifier's loss, whose "
            f"accuracy it records (History's accuracy, val_accuracy); {_loss_name(loss_fn)} "
            "has none: other figures from model.predict(X), wxb.metrics.regression_figures(y, "
            "predictions) or classification_figures(y, predicted_indices, classes)"
        )
    del options["metrics"]


# Keras's fit arguments (and EarlyStopping's) wxb has not, each with wxb's way: Python's
# bare "unexpected keyword argument 'class_weight'" named neither
_KERAS_WAYS = {
    "class_weight": "classes are weighted in the loss: loss=CrossEntropyLoss(weight=[w0, "
    "w1, …]) (PyTorch's mean, over the rows' weights, where Keras's divides by the rows), "
    "or rows weighted by class through wxb.sklearn's MLPClassifier fit(X, y, sample_weight=)",
    "sample_weight": "a loss of one's own gets y's extra columns as given: "
    "fit(model, X, np.column_stack([y, w]), loss=f) with f weighting each row's loss by "
    "its column w; or wxb.sklearn's MLPClassifier/MLPRegressor fit(X, y, sample_weight=w)",
    "initial_epoch": "each call trains `epochs` more epochs, its History numbered from 1 "
    "(Keras's fit(epochs=E, initial_epoch=I) trains E − I: write epochs=E − I); "
    "pass the same Optimizer to each call to keep its state, or checkpoint_dir= with "
    "resume=True to go on from a checkpoint",
    "steps_per_epoch": "an epoch is one pass over X, ⌈rows / batch_size⌉ steps",
    "validation_steps": "the validation figures are over all the validation rows",
    "validation_batch_size": "the validation rows are scored 4,096 at a time (the figures "
    "do not depend on it)",
    "validation_freq": "the validation figures come after every epoch",
    "callbacks": "early stopping is early_stopping=patience (min_delta=, "
    "restore_best_weights=), a schedule lr_schedule=, checkpoints checkpoint_dir=; for "
    "more, write the loop by hand (README: The Python API)",
    "metrics": "fit records the loss and, for a classifier's loss, the accuracy (val_ "
    "too; metrics=['accuracy'] is taken there); other figures from model.predict(X): "
    "wxb.metrics.regression_figures(y, predictions), classification_figures(y, "
    "predicted_indices, classes)",
    "patience": "write early_stopping=patience",
    # Keras's optimisers' keyword (Adam(learning_rate=…)), met on fit as Python's bare error
    "learning_rate": "the rate is lr= (PyTorch's name): fit(model, X, y, optimizer='adam', "
    "lr=0.001), or an optimiser of one's own, wxb.optim.Adam(model.parameters(), lr=0.001)",
    "monitor": "early_stopping watches val_loss, or loss without validation rows",
    "mode": "early_stopping watches a loss: lower is better (mode='min' or 'auto' is taken)",
    "baseline": "wxb's early stopping has no baseline: every epoch that beats the best by "
    "more than min_delta resets its patience",
    "start_from_epoch": "wxb's early stopping counts from the first epoch",
    # tf.keras 2's data-loading workers: fit reads the arrays it is given, in its process
    **dict.fromkeys(
        ("workers", "use_multiprocessing", "max_queue_size"),
        "fit batches X and y itself, in its own process, with no loading queue (a "
        "memory-mapped .npy X stays on disk); several processes train one model with "
        "distributed=True under mpiexec",
    ),
}
# Keras's defaults for those that are fit's (compile's, metrics) or tf.keras 2's (the
# loading workers): a Keras script spells them out (class_weight=None, initial_epoch=0),
# asking for what wxb does, so they are taken; callbacks=[] is no callbacks, as Keras's
_KERAS_FIT_DEFAULTS = {
    **dict.fromkeys(
        (
            "class_weight",
            "sample_weight",
            "steps_per_epoch",
            "validation_steps",
            "validation_batch_size",
            "metrics",
        ),
        None,
    ),
    "callbacks": (),
    "initial_epoch": 0,
    "baseline": None,  # EarlyStopping's
    "start_from_epoch": 0,
    "validation_freq": 1,
    "workers": 1,
    "use_multiprocessing": False,
    "max_queue_size": 10,
}


# Keras's evaluate arguments wxb has not: a bare TypeError for sample_weight named no way.
# Keras's weighted loss is Σ wᵢ·lossᵢ / rows (its "sum_over_batch_size"), its weighted
# accuracy Σ wᵢ·rightᵢ / Σ wᵢ, which is scikit-learn's accuracy_score(sample_weight=)
_KERAS_EVALUATE_WAYS = {
    "sample_weight": "Keras's weighted loss, the mean over the rows of wᵢ·lossᵢ, is a "
    "loss of one's own reading y's extra column: evaluate(model, X, np.column_stack([y, "
    "w]), loss=f), f returning (each row's loss × its column w).mean(); its weighted "
    "accuracy, Σ wᵢ·rightᵢ / Σ wᵢ, is scikit-learn's accuracy_score(y, "
    "model.predict(X).argmax(1), sample_weight=w) (wxb.sklearn's estimators' score(X, y, "
    "sample_weight=w) is that accuracy, or a regressor's weighted R², not a loss)",
    "steps": "evaluate scores every row of X, batch_size rows at a time",
    "callbacks": "evaluate calls none; it returns its figures",
}
# Keras's defaults for them: asking for what wxb does (a script spells them out)
_KERAS_EVALUATE_DEFAULTS = {"sample_weight": None, "steps": None, "callbacks": ()}


_FITTING: dict[int, int] = {}  # id(model) or id(parameter) → the thread whose fit trains it
_FITTING_LOCK = threading.Lock()


def _forget_fits_in_child() -> None:  # a fork()ed child has none of its parent's fits
    global _FITTING_LOCK
    _FITTING.clear()
    _FITTING_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_fits_in_child)


@contextmanager
def _one_fit_at_a_time(model: object) -> Iterator[None]:
    """Refuses a fit of a model that another thread's fit is training: two fits of one
    model at once ran without a word, each stepping the other's weights (a model trained
    by neither's data and seed alone). So too a model sharing a trainable parameter (a
    layer: an encoder under two heads) with one another thread's fit is training. The
    same thread may (a callback's own fit)."""
    me = threading.get_ident()
    named = getattr(model, "named_parameters", None)
    trained = [(n, p) for n, p in (named() if named else ()) if getattr(p, "requires_grad", False)]
    with _FITTING_LOCK:
        other = _FITTING.get(id(model))
        if other is not None and other != me:
            raise TrainingError(
                f"fit: this {type(model).__name__} is being trained by fit in another thread; "
                "a model may be trained by one thread at a time (train a copy: "
                "copy.deepcopy(model))"
            )
        shared = next((n for n, p in trained if _FITTING.get(id(p), me) != me), None)
        if shared is not None:
            raise TrainingError(
                f"fit: this {type(model).__name__}'s parameter {shared!r} is being trained by "
                "fit in another thread (a layer the two models share); a parameter may be "
                "trained by one thread at a time (freeze it, requires_grad=False, or train a "
                "copy: copy.deepcopy(model))"
            )
        mine = [k for k in (id(model), *(id(p) for _, p in trained)) if k not in _FITTING]
        for key in mine:
            _FITTING[key] = me
    try:
        yield
    finally:
        with _FITTING_LOCK:
            for key in mine:
                _FITTING.pop(key, None)


def _fit_ranks(model, X, y, loss, optimizer, lr, epochs, batch_size, validation_split,
               validation_data, shuffle, seed, early_stopping, min_delta,
               restore_best_weights, lr_schedule, clip_grad_norm, verbose, stream,
               diagnose, checkpoint_dir, checkpoint_every, keep_checkpoints, resume,
               distributed):  # fmt: skip
    ranks = _ranks(distributed)
    if ranks is None:
        return _fit(model, X, y, loss, optimizer, lr, epochs, batch_size, validation_split,
                    validation_data, shuffle, seed, early_stopping, min_delta,
                    restore_best_weights, lr_schedule, clip_grad_norm, verbose, stream,
                    diagnose, checkpoint_dir, checkpoint_every, keep_checkpoints, resume,
                    None)  # fmt: skip
    try:
        return _fit(model, X, y, loss, optimizer, lr, epochs, batch_size, validation_split,
                    validation_data, shuffle, seed, early_stopping, min_delta,
                    restore_best_weights, lr_schedule, clip_grad_norm, verbose, stream,
                    diagnose, checkpoint_dir, checkpoint_every, keep_checkpoints, resume,
                    ranks)  # fmt: skip
    except BaseException as error:
        # A rank that stopped answering, or this rank's own error during training (see
        # _closing): the others may be blocked in MPI, so end them all. Here, once fit's
        # contexts have let go (the checkpoint folder's lock among them).
        if isinstance(error, RanksStopped) or ranks.failed is error:
            ranks.abort(error, 2)
        raise


def _ranks(distributed: bool | Ranks) -> Ranks | None:
    if isinstance(distributed, Ranks):
        return distributed
    if distributed is True:
        return Ranks()
    if distributed is not False:
        raise ConfigError(f"distributed must be True, False or a Ranks; got {distributed!r}")
    return None


def check_batch_norm(model: Module, rows: int, batch_size: int, ranks: Ranks | None) -> None:
    """ConfigError where a BatchNorm1d could not train as one process would: it normalises
    each batch by the batch's own statistics, so it needs 2 rows or more (a stock one:
    a subclass's forward may take a lone row its way), and a batch split over ranks
    would be normalised share by share."""
    norm = next((m for m in model.modules() if isinstance(m, BatchNorm1d)), None)
    if norm is None:
        return
    if ranks is not None:
        raise ConfigError(
            f"{norm.label} normalises each batch by the batch's own statistics, and "
            "split over ranks each would normalise its own share; distributed fit does not "
            "train it (LayerNorm, per row, does)"
        )
    # a subclass with a forward of its own may take a lone row its way (pass it on as it
    # is, as torch users write it): only the stock forward's refusal is told beforehand
    norm = next((m for m in model.modules() if is_stock(m, BatchNorm1d)), None)
    if norm is not None and (batch_size == 1 or rows % batch_size == 1):
        near = next(  # the nearest size leaving no batch of one
            (
                size
                for step in range(1, rows + 1)
                for size in (batch_size + step, batch_size - step)
                if 2 <= size <= rows and rows % size != 1
            ),
            None,
        )
        advice = f"choose another batch size ({near} leaves none)" if near else "give more rows"
        raise ConfigError(
            f"{norm.label} needs 2 rows or more in each training batch, and "
            f"{rows} rows in batches of {batch_size} leave a batch of 1; {advice}"
        )


def _fit(model, X, y, loss, optimizer, lr, epochs, batch_size, validation_split,
         validation_data, shuffle, seed, early_stopping, min_delta, restore_best_weights,
         lr_schedule, clip_grad_norm, verbose, stream, diagnose, checkpoint_dir,
         checkpoint_every, keep_checkpoints, resume, ranks: Ranks | None) -> History:  # fmt: skip
    if ranks is not None:  # first, as given: which collectives follow depends on them (rank
        # 0 alone given validation_data paired its check of those rows with another
        # rank's check of the weights' shapes, and said nonsense: 'row 790127956 …')
        _same_settings(
            ranks,
            {
                "epochs": epochs,
                "batch_size": batch_size,
                "shuffle": shuffle,
                "validation_split": validation_split,
                "validation_data": validation_data is not None,
                "seed": seed if seed is None or isinstance(seed, (int, np.integer)) else "given",
                "early_stopping": early_stopping,
                "min_delta": min_delta,
                "restore_best_weights": restore_best_weights,
                "clip_grad_norm": clip_grad_norm,
                "diagnose": diagnose,
                "checkpoint_dir": checkpoint_dir is not None,
                "checkpoint_every": checkpoint_every,
                "resume": resume,
                "optimizer": optimizer if isinstance(optimizer, str) else "given",
                "lr": lr,
                "loss": loss if isinstance(loss, str) else "given",
            },
        )
    loss_fn = get_loss(_trained_loss(model, loss, "this fit trains", stacklevel=5))
    epochs = _whole(epochs, "epochs", minimum=0)
    batch_size = _whole(batch_size, "batch_size")
    validation_split = _number(validation_split, "validation_split", 0.0, 1.0)
    min_delta = _number(min_delta, "min_delta", 0.0)
    shuffle = _flag(shuffle, "shuffle")
    restore_best_weights = _flag(restore_best_weights, "restore_best_weights")
    diagnose = _flag(diagnose, "diagnose")
    resume = _flag(resume, "resume")
    # Keras's 0, 1 and 2 (one line per epoch, no bar)
    lines_only = _integer(verbose) and verbose == 2
    if _integer(verbose) and verbose in (0, 1, 2):
        verbose = bool(verbose)
    if not (isinstance(verbose, str) and verbose == "auto"):
        verbose = _flag(verbose, 'verbose (or "auto", or Keras\'s 0, 1, 2)')
    binary = isinstance(stream, (io.RawIOBase, io.BufferedIOBase))  # open(path, "wb")
    if stream is not None and (binary or not callable(getattr(stream, "write", None))):
        # (stopped at the bar's first draw, after the first step: 'str' has no 'write')
        raise ConfigError(
            "stream must be a text stream (sys.stdout, io.StringIO, a file opened with "
            f"'w'); got {'a binary file' if binary else type(stream).__name__}"
        )
    if early_stopping is not None:
        if _integer(early_stopping) and early_stopping == 0:  # Keras's default patience
            raise ConfigError(
                "early_stopping (patience) must be an integer ≥ 1; got 0 (Keras 3's "
                "patience=0 stops at the first epoch without progress, as early_stopping=1 "
                "does here; None: no early stopping)"
            )
        early_stopping = _whole(early_stopping, "early_stopping (patience)")
    if clip_grad_norm is not None:
        clip_grad_norm = _number(clip_grad_norm, "clip_grad_norm", 0.0)
        if clip_grad_norm == 0:
            raise ConfigError("clip_grad_norm must be > 0")
    if seed is not None and not isinstance(seed, (int, np.integer, np.random.Generator)):
        raise ConfigError(f"seed must be an integer or a numpy Generator; got {seed!r}")
    if isinstance(seed, (int, np.integer)) and seed < 0:  # NumPy's bare ValueError, else
        raise ConfigError(f"seed must be an integer ≥ 0 (NumPy's seeds are); got {seed}")
    given_seed = seed  # what the checkpoints record: a drawn one differs at each start
    if ranks is not None:
        seed = _same_seed(ranks, seed)
    if checkpoint_dir is not None:
        checkpoint_dir = _folder(checkpoint_dir, "checkpoint_dir")
    if checkpoint_dir is None and (resume or checkpoint_every is not None):
        raise ConfigError("resume and checkpoint_every need a checkpoint_dir")
    if validation_data is not None and validation_split:
        raise ConfigError(
            "give validation_data or validation_split, not both (validation_split would be ignored)"
        )
    dtype = model.dtype
    # SciPy sparse rows: CSR batches (each rank its share of them in a distributed run),
    # whole and dense only for whole numbers given a forward of one's own; targets: dense
    X_sparse = _sparse_rows(model, X, dtype)
    X, y = (
        X if X_sparse is not None else validation.dense_if_sparse(X),
        validation.dense_if_sparse(y),
    )
    names = _feature_names(model, X, "X")
    _check_target_order(model.info, y)
    twice = _head_applied_twice(model, loss_fn)
    if twice is not None:  # PyTorch trains it so too, without a word; Keras takes its logits
        warnings.warn(
            f"the model's last layer is {twice.capitalize()}, and the loss "
            f"{type(loss_fn).__name__} applies {twice} to the outputs itself (it takes "
            f"logits): the network trains "
            f"through {twice} twice, with weaker gradients, and fit's loss figures are of "
            f"that. Leave the last {twice} out of the model (wxb predict --proba and "
            f"wxb.nn.functional.{twice} give probabilities from its logits)"
            + (  # PyTorch's pair for a Sigmoid kept: BCELoss, on its probabilities
                ", or keep it and train with loss=wxb.nn.BCELoss()" if twice == "sigmoid" else ""
            )
            # (BCELoss takes 0/1 targets, not soft_margin's −1/+1)
            + (" on targets (y + 1)/2" if recorded_name(loss_fn) == "soft_margin" else ""),
            UserWarning,
            stacklevel=4,
        )
    for message in _rounded_features(model, X, names, dtype):  # before the cast does it
        warnings.warn(message, UserWarning, stacklevel=4)  # the caller of fit
    if X_sparse is not None:
        X_arr = X_sparse
    else:
        X_arr = _features(model, _through_stage(model, X, "X"), dtype, "X", check=ranks is None)
    if ranks is not None:
        _check_finite_together(X_arr, "X", ranks)
    for message in _rounded_targets(loss_fn, y, dtype):  # before the cast does it
        warnings.warn(message, UserWarning, stacklevel=4)
    # one forward of two rows, before any training
    shape, y_arr = _shape_and_targets(model, X_arr, loss_fn, y, dtype)
    validation.check_lengths(X_arr, y_arr)
    form = _target_form(loss_fn, y, y_arr)  # decided at the first step
    as_given = y_arr.ndim == 1 and shape == (1,)  # (and so the validation targets)
    rng = as_generator(seed)
    # A memory-mapped X stays on disk: the rows that train and validate are then lists of
    # its rows, and each rank reads only those its share of a batch takes.
    train_rows = val_rows = None

    if validation_data is not None:
        sequence = isinstance(validation_data, (tuple, list))
        if sequence and len(validation_data) == 3 and validation_data[2] is None:
            validation_data = tuple(validation_data[:2])  # Keras's (X_val, y_val, None): unweighted
        if not sequence or len(validation_data) != 2:
            third = (  # Keras's (X_val, y_val, sample_weight_val)
                "; Keras's third element, the rows' weights, wxb has not (None, no weights, "
                "is taken): a loss of one's own reads weights from y's extra columns (y_val's "
                "too)"
                if sequence and len(validation_data) == 3
                else ""
            )
            raise ConfigError(f"validation_data must be a pair (X_val, y_val){third}")
        X_val = _sparse_rows(model, validation_data[0], dtype)
        if X_val is None:
            validation_data = tuple(validation.dense_if_sparse(p) for p in validation_data)
        else:
            validation_data = (validation_data[0], validation.dense_if_sparse(validation_data[1]))
        _feature_names(model, validation_data[0], "validation X", names)
        # checked as X is: a float64 value past float32's range is named as such, not as
        # the inf the cast made of it ("remove or fill non-finite values")
        if X_val is None:
            X_val = _features(
                model,
                _through_stage(model, validation_data[0], "validation X"),
                dtype,
                "validation X",
                check=ranks is None,
            )
        if ranks is not None:
            _check_finite_together(X_val, "validation X", ranks)
        if X_val.shape[1] != X_arr.shape[1]:
            raise DataError(
                f"validation X has {X_val.shape[1]} features but X has {X_arr.shape[1]}"
            )
        # target columns by name, as X_val's: y's own (the model's, from an earlier fit,
        # when y has none); the same columns in another order were scored by position
        if is_tabular(y):
            named = {"targets": column_names(y)}
            _check_target_order(named, validation_data[1], "validation y", "y's columns")
        else:
            _check_target_order(model.info, validation_data[1], "validation y")
        y_val = _prepare_targets(
            loss_fn, validation_data[1], _figure_dtype(loss_fn, dtype), shape, "validation y"
        )
        validation.check_lengths(X_val, y_val, "validation data")
        if as_given and y_val.shape[1:] == (1,):
            y_val = y_val[:, 0]
    elif validation_split:
        if not shuffle:  # rows whose order matters (time), where Keras holds out the last
            warnings.warn(
                f"validation_split={validation_split} with shuffle=False holds out rows drawn "
                "at random from the seed, not the last rows as Keras's does: for rows in "
                "time order, hold out the last ones yourself, fit(model, X[:k], y[:k], "
                "validation_data=(X[k:], y[k:]))",
                UserWarning,
                stacklevel=4,
            )
        # By class: class indices or 0/1 labels; a regression's numbers (or soft
        # targets) are no classes.
        regression = getattr(getattr(loss_fn, "kernel", None), "name", None) in REGRESSION_LOSSES
        # one label a row also as a column, and one-hot rows as their class: a (B, 1)
        # logit's 0/1 targets are (n, 1), and they (and one-hot rows) were held out
        # unstratified where the same labels as a vector were stratified
        labels = y_arr
        if y_arr.ndim == 2 and y_arr.shape[1] == 1:
            labels = y_arr[:, 0]
        elif stock_loss(loss_fn) is CrossEntropyLoss and ops.is_one_hot(y_arr):
            labels = y_arr.argmax(axis=1)
        classes = (
            labels.ndim == 1
            and not regression
            and (labels.dtype.kind in "iub" or ops.is_zero_one(labels))
        )
        if classes and computes_its_own(loss_fn):  # whole numbers, but classes? (item ids)
            classes = len(np.unique(labels)) <= len(labels) / 2
        stratify = labels if classes else None
        kept, held = wdata.split_indices(
            len(X_arr), validation_split, rng, stratify, what="validation_split", exact=True
        )
        if isinstance(X_arr, (np.memmap, validation.SparseRows)):
            X_val, train_rows, val_rows = X_arr, kept, held
        else:
            X_arr, X_val = X_arr[kept], X_arr[held]
        y_val = y_arr[held]
        if y_val.dtype.kind == "f" and _figure_dtype(loss_fn, dtype) != y_val.dtype:
            # scored as evaluate scores: against the targets as given, not float32's
            y_val = _prepare_targets(loss_fn, y, _figure_dtype(loss_fn, dtype), shape, "y")[held]
            y_val = y_val[:, 0] if as_given else y_val
        y_arr = y_arr[kept]
    else:
        X_val = y_val = None

    if isinstance(optimizer, Optimizer):
        if lr is not None:
            raise ConfigError("lr goes to the Optimizer when you build one; fit's lr is for names")
        own = {id(p) for p in model.parameters()}
        if not all(id(p) in own for p in optimizer.params):
            raise ConfigError("the optimiser holds parameters that are not this model's")
        opt = optimizer
        if isinstance(opt, LBFGS):
            raise ConfigError(f"fit cannot run LBFGS: {LBFGS_NOT_IN_FIT}")
    else:
        trainable = [p for p in model.parameters() if p.requires_grad]
        if not trainable:
            raise ConfigError("the model has no trainable parameters (requires_grad is False)")
        opt = get_optimizer(optimizer, trainable, lr=lr)
    batches = math.ceil(len(y_arr) / min(batch_size, len(y_arr))) if len(y_arr) else 1
    schedule = _make_schedule(lr_schedule, opt, epochs, early_stopping, min_delta, batches)
    if diagnose and layers_in_order(model) == [model] and chain_layers(model) is None:
        raise ConfigError(f"fit(diagnose=True) {NEEDS_A_CHAIN}")
    step = make_step(model, loss_fn, opt, clip_grad_norm)
    step.form = form
    kind = stock_loss(loss_fn)  # what the outputs mean: accuracy for a classifier's loss
    planned = isinstance(step, PlannedStep)
    if ranks is not None:
        _same_start(ranks, model)
        _same_settings(
            ranks,
            {
                "lr_schedule": lr_schedule
                if isinstance(lr_schedule, str) or lr_schedule is None
                else schedule.settings(),
                "loss": _loss_to_compare(loss_fn),
                "optimizer": _optimizer_settings(opt, model),
                "model": _modules_to_compare(model),
            },
        )
        kernel = getattr(loss_fn, "kernel", None)
        ignored = _ignored_label(loss_fn)
        if (
            loss_fn.reduction == "mean"
            and kind is CrossEntropyLoss
            and (
                getattr(kernel, "weight", None) is not None
                or (ignored is not None and y_arr.ndim == 1 and bool((y_arr == ignored).any()))
            )
        ):
            # each rank's mean is over its own weight sum, and the ranks' gradients are
            # added by rows: the global batch's weighted mean would come out wrong
            raise ConfigError(
                "a distributed fit of a cross-entropy with class weights or ignored rows "
                "is not supported with reduction='mean'; use reduction='sum' (and a "
                "learning rate scaled to the batch's weight)"
            )
        if loss_fn.reduction == "sum" and computes_its_own(loss_fn):
            warnings.warn(
                f"{type(loss_fn).__name__} computes its own value with reduction='sum', and "
                "a distributed fit sums every rank's: a term that does not sum over the rows "
                "(a weight penalty, a constant) counts once per rank. Use reduction='mean' "
                "(each rank's share is weighted by its rows) or the optimiser's weight_decay",
                RuntimeWarning,
                stacklevel=4,
            )
        # The same data on every rank (a sample of it: its shape, first and last rows);
        # other data of the same length would train silently on a mixture.
        sample = [np.array(X_arr.shape), *_end_rows(X_arr), y_arr[:64], y_arr[-64:]]
        ranks.check_same([np.ascontiguousarray(a) for a in sample], "the training data")
        if validation_data is not None:  # summed over the ranks' shares: the same rows too
            sample = [np.array(X_val.shape), *_end_rows(X_val), y_val[:64], y_val[-64:]]
            ranks.check_same([np.ascontiguousarray(a) for a in sample], "the validation data")
    _check_rows_scored(loss_fn, y_arr, y_val, early_stopping, schedule)
    if names is not None and "feature_names" not in model.info:  # its inputs were accepted
        model.info["feature_names"] = names
    _update_training_record(model.info, X_arr, X_val)
    _record_loss(model.info, loss_fn, y_arr)
    if getattr(X, "ndim", 0) > 2 and X_arr.ndim == 2:  # made rows by a Flatten first:
        model.info["sample_shape"] = [int(d) for d in X.shape[1:]]  # the ONNX input's
    elif X_arr.ndim == 2:  # trained on rows now: an earlier fit's images no longer say
        model.info.pop("sample_shape", None)  # what the ONNX input takes
    _record_target_names(model.info, y, y_arr, kind, shape)
    history = History(engine="planned" if planned else "graph")
    if not planned:
        history.engine_reason = PlannedStep.why_not(model, opt, loss_fn)
    # With a seed, Dropout layers without a generator of their own draw their masks
    # from one made from it: the same seed gives the same run, bit for bit.
    # (Not for a seed drawn by rank 0: the generators a run saves stay those of a run
    # without one, so it resumes on any number of ranks.)
    masks = rng.spawn(1)[0] if given_seed is not None else None  # rng's own draws unchanged
    # In training steps the masks go by data row (a counter-based generator keyed from
    # those generators, drawn now): the same for one process and for K ranks.
    by_row = _row_masks(model, masks, rng, distributed=ranks is not None)
    by_row.by_row_only = ranks is not None

    n = len(y_arr)
    batch_size = min(batch_size, n)
    check_batch_norm(model, n, batch_size, ranks)
    steps_per_epoch = math.ceil(n / batch_size)
    if schedule is not None and schedule.per_batch and not resume:
        # (resumed: from the checkpoint's step, below; the interrupted run's own schedule,
        # passed again, has stepped since its first and was refused here)
        _check_batches_scheduled(schedule, epochs, steps_per_epoch)
    out_stream = stream if stream is not None else sys.stderr
    show = verbose is True or (verbose == "auto" and _is_terminal(out_stream))
    show = show and (ranks is None or ranks.leader)  # one progress bar
    bar = ProgressBar(epochs, steps_per_epoch, out_stream, show, lines_only)
    weighs = mean_weight(loss_fn, y_arr) is not None  # a mean over Σw, not over the rows

    # Batches are gathered into planned buffers: a step allocates nothing new. Sparse rows
    # whose first layer is a planned Dense stay CSR batches (no dense buffer: a batch of a
    # TF-IDF table's 50,000 columns is 40 MB dense, and its product 1000× the work)
    sparse_batches = (
        isinstance(X_arr, validation.SparseRows) and planned and step.plan.takes_sparse()
    )
    x_batch = (
        None
        if sparse_batches
        else np.empty(
            (batch_size, X_arr.shape[1]), X_arr.dtype if X_arr.dtype.kind in "biu" else dtype
        )
    )
    y_batch = np.empty((batch_size, *y_arr.shape[1:]), y_arr.dtype)
    loop = _Loop(order=np.arange(n), last_good=model.state_dict())
    monitor = "val_loss" if X_val is not None else "loss"

    saver: _Saver | None = None
    if checkpoint_dir is not None:
        if schedule is not None:
            _check_savable(schedule)
        run = {
            "data": {
                "X": _digest_rows(X_arr, train_rows, ranks),
                "y": ckpt.fingerprint(y_arr),
                "validation": None
                if X_val is None
                else [_digest_rows(X_val, val_rows, ranks), ckpt.fingerprint(y_val)],
            },
            "architecture": ckpt.architecture(model),
            "trainable": [name for name, p in model.named_parameters() if p.requires_grad],
            "loss": _loss_settings(loss_fn),
            "optimizer": _optimizer_settings(opt, model),
            "batch_size": batch_size,
            "shuffle": bool(shuffle),
            "seed": None
            if given_seed is None
            else "generator"
            if isinstance(given_seed, np.random.Generator)
            else int(given_seed),
            "validation_split": validation_split,
            "early_stopping": early_stopping,
            "min_delta": min_delta,
            "restore_best_weights": bool(restore_best_weights),
            "clip_grad_norm": clip_grad_norm,
            "diagnose": bool(diagnose),
            "schedule": lr_schedule
            if isinstance(lr_schedule, str) or lr_schedule is None
            else _schedule_settings(schedule),
        }
        saver = _Saver(
            ckpt.CheckpointFolder(checkpoint_dir, keep_checkpoints),
            checkpoint_every,
            run,
            ckpt.numeric_setup(dtype, history.engine),
            *ckpt.generators(
                model,
                # a loss of one's own may draw too (noise, sampled rows), and an optimiser
                # or schedule of one's own (noisy gradients): their generators
                [
                    ("shuffle", rng),
                    ("dropout_masks", masks),
                    *ckpt.held_by("loss", loss),
                    *ckpt.held_by("optimizer", opt),
                    *([] if schedule is None else ckpt.held_by("lr_schedule", schedule)),
                ],
            ),
        )
        saver.start = ckpt.state_digest(loop.last_good)  # the weights it starts from
        saver.row_masks = by_row

        def whole_array_digests() -> dict:
            """The data as checkpoints before block digests described it (whole arrays)."""
            rows_of = lambda A, rows: A if rows is None else A[rows]  # noqa: E731
            return {
                "X": ckpt.fingerprint(rows_of(X_arr, train_rows)),
                "y": ckpt.fingerprint(y_arr),
                "validation": None
                if X_val is None
                else [ckpt.fingerprint(rows_of(X_val, val_rows)), ckpt.fingerprint(y_val)],
            }

        saver.whole_array_digests = whole_array_digests
        saver.writes = ranks is None or ranks.leader  # rank 0 alone writes
        with _rank0_agreed(ranks, "the checkpoint folder"):
            if saver.writes:
                saver.folder.check_writable()

    interrupts = _Interrupts()
    model.train()
    with ExitStack() as context:
        context.callback(bar.close)
        if saver is not None:
            with _rank0_agreed(ranks, "the checkpoint folder's lock"):
                if saver.writes:
                    context.enter_context(saver.folder.lock())
            if resume:
                found = _latest(saver, ranks)
                if found is None and schedule is not None and schedule.per_batch:
                    _check_batches_scheduled(schedule, epochs, steps_per_epoch)
                if found is not None:
                    try:
                        history = saver.restore(found, model, opt, schedule, loop, epochs, history)
                        if schedule is not None and schedule.per_batch:  # (its total_steps)
                            try:
                                _check_batches_scheduled(
                                    schedule, epochs, steps_per_epoch, resumed=True
                                )
                            except ConfigError:
                                saver.undo()
                                raise
                    except ConfigError as error:  # the same checkpoint and run on every rank
                        error.quiet = ranks is not None and not ranks.leader  # rank 0 says it
                        raise
                    with _rank0_agreed(ranks, "the checkpoint folder"):
                        if saver.writes:
                            saver.folder.prune(found.meta["position"]["global_step"])
            else:  # rank 0's folder, the one it writes (another rank's copy, stale, of a
                # folder not shared stopped that rank alone, the others waiting on it)
                with _rank0_agreed(ranks, "the checkpoint folder"):
                    if saver.writes and saver.folder.listed():
                        raise ConfigError(
                            f"{checkpoint_dir} already holds checkpoints of a run; pass "
                            "resume=True to continue it, or give another folder"
                        )
        if ranks is not None:  # after a restore: it may have given the optimiser new buffers
            step.reducer = GradientSum(
                ranks,
                opt,
                mean_loss=loss_fn.reduction != "sum",
                count_correct=lambda output, yb: _correct(
                    accuracy_kind(loss_fn), output, yb, _ignored_label(loss_fn)
                ),
                planned=planned,
                model_params=model.parameters(),
            )
            context.push(_closing(step.reducer))
        if masks is not None:
            context.enter_context(drawing_from(masks))
        context.enter_context(masks_by_row(by_row))
        context.enter_context(interrupts)
        trained_lrs: list[float] = []  # a schedule stepped once a batch: the last batch's
        while not loop.finished and loop.epoch <= epochs:
            epoch = loop.epoch
            if shuffle and loop.step == 0:
                rng.shuffle(loop.order)

            def after_step(value: float, epoch: int = epoch) -> bool:
                """Progress, a checkpoint when due; True stops the epoch (Ctrl-C)."""
                if schedule is not None and schedule.per_batch:  # (OneCycleLR) once a batch
                    if loop.step == steps_per_epoch:  # the rates the epoch's last batch took
                        trained_lrs[:] = [group["lr"] for group in opt.param_groups]
                    schedule.step()
                if bar.due(loop.step):  # the epoch's figure so far, as Keras's bar shows
                    # (the last batch's loss alone was shown under "loss")
                    done = min(loop.step * batch_size, n)
                    seen = y_arr[loop.order[:done]] if weighs else None
                    bar.update(epoch, loop.step, _epoch_figure(loss_fn, loop.total, done, seen))
                if step.reducer is not None:  # a Ctrl-C on any rank stops them all, together:
                    step.reducer.local_stop = interrupts.requested  # summed in the next step
                    if loop.step == steps_per_epoch:
                        return False  # the epoch's end sums it
                    if step.reducer.stop_everywhere:  # any rank's, as of the last step
                        interrupts.requested = True
                    if saver is not None and saver.due(loop.global_step(steps_per_epoch)):
                        saver.write(loop, model, opt, schedule, history, epochs, steps_per_epoch)
                    return step.reducer.stop_everywhere
                if loop.step == steps_per_epoch:  # the epoch's end does the rest
                    return False
                if saver is not None and saver.due(loop.global_step(steps_per_epoch)):
                    saver.write(loop, model, opt, schedule, history, epochs, steps_per_epoch)
                return interrupts.requested

            try:
                # Overflow on the way to a NaN loss is reported as one TrainingError below,
                # not as NumPy warnings from inside the engine.
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    whole = _train_epoch(step, loss_fn, X_arr, y_arr, loop, x_batch, y_batch,
                                         after_step, train_rows)  # fmt: skip
            except ConfigError as exc:
                # a resume refused at the first F.dropout draw, after the checkpoint was put
                # in place: the model and optimiser as given (they held the checkpoint's,
                # and the "train again without resuming" advised went on from them)
                refused = by_row.functional_refused
                if saver is not None and saver.undo is not None and exc.args == (refused,):
                    saver.undo()
                raise
            except _Diverged as diverged:
                model.load_state_dict(loop.last_good)
                restored = f"end of epoch {epoch - 1}" if epoch > 1 else "their initial values"
                if diverged.weightless:  # (a smaller learning rate was advised)
                    raise TrainingError(
                        f"at epoch {epoch}, step {diverged.step} every row of the batch is of "
                        "a class whose weight is 0: the loss's mean is 0/0 and its gradient "
                        f"NaN, as PyTorch's; weights restored to {restored}. Give every "
                        "class a weight > 0 (or reduction='sum')"
                    ) from None
                raise TrainingError(
                    f"the loss became {diverged.value} at epoch {epoch}, step {diverged.step}; "
                    f"weights restored to {restored}. Try a smaller learning rate "
                    "or gradient clipping (clip_grad_norm=…, or --clip-grad-norm)"
                ) from None
            if not whole:  # Ctrl-C: stop after this step
                _stop(saver, loop, model, opt, schedule, history, epochs, steps_per_epoch)
            figures: dict[str, float] = {"loss": _epoch_figure(loss_fn, loop.total, n, y_arr)}
            if accuracy_kind(loss_fn) is not None:
                figures["accuracy"] = _share(loop.correct, _scored_rows(loss_fn, y_arr))
            if X_val is not None:
                val = _evaluate(model, X_val, y_val, loss_fn, ranks=ranks, rows=val_rows, form=form)
                figures.update({f"val_{k}": v for k, v in val.items()})
            # (an optimiser with a step of its own may have no lr: no rate recorded then)
            lrs = [group.get("lr") for group in opt.param_groups]
            if schedule is not None and schedule.per_batch:  # stepped past the epoch already
                lrs = trained_lrs + lrs[len(trained_lrs) :]
            if "lr" in opt.param_groups[0]:
                figures["lr"] = lrs[0]  # group 0's, as ever; each other group's by its index
            # (one figure for several groups read as every group's rate, a schedule on each)
            for index, rate in enumerate(lrs[1:], 1):
                if "lr" in opt.param_groups[index]:
                    figures[f"lr_group{index}"] = rate
            history.record(**figures)
            bar.end_epoch(epoch, figures)  # first: a warning below then starts a line of its own
            if diagnose:
                first = X_arr[:256] if train_rows is None else X_arr[train_rows[:256]]
                first = np.asarray(first)  # (a SparseRows slice: its rows, dense)
                read = y_arr[:256] if form is None or form.column is not False else y_arr[:256, 0]
                _diagnose_epoch(history, epoch, model, first, read, loss_fn)
            finite = all(np.isfinite(p.data).all() for p in model.parameters())
            if ranks is not None:  # decided together: a restore writes the shared weights
                finite = not ranks.sum_numbers(not finite, what="the check of the weights")[0]
            if not finite:
                model.load_state_dict(loop.last_good)
                raise TrainingError(
                    f"the weights became infinite or NaN at the end of epoch {epoch}; weights "
                    "restored to the epoch before. Try a smaller learning rate or gradient clipping"
                )
            # (every rank's; validation rows all of the ignore_index: NaN by PyTorch's
            # rule, 0/0, and nothing diverged)
            if (
                X_val is not None
                and not math.isfinite(figures["val_loss"])
                and not _weighs_nothing(loss_fn, y_val)
            ):
                model.load_state_dict(loop.last_good)
                restored = f"end of epoch {epoch - 1}" if epoch > 1 else "their initial values"
                raise TrainingError(
                    f"the loss became {figures['val_loss']} at epoch {epoch} on the validation "
                    "rows, the training loss and the weights being finite (outputs that "
                    "overflow there, non-finite validation targets, or a loss of one's own); "
                    f"weights restored to {restored}. Try a smaller learning rate or gradient "
                    "clipping, or check the validation data"
                )
            agreed = None  # under ranks: whether they stop after this epoch, decided together
            if ranks is not None:
                ranks.where = f"the end of epoch {epoch}"
                ranks.check_same(  # buffers too: a module that updates one in training
                    [p.data for p in model.parameters()] + [a for _, a in model.named_buffers()],
                    "the weights or buffers",
                )
                agreed = bool(ranks.sum_numbers(interrupts.requested, what="the stop check")[0])
                if agreed:
                    interrupts.requested = True
            loop.last_good = model.state_dict()
            if figures[monitor] < loop.best_value - min_delta:
                loop.best_value, loop.waited, history.best_epoch = figures[monitor], 0, epoch
                if early_stopping is not None and restore_best_weights:
                    loop.best_state = loop.last_good
            else:
                loop.waited += 1
                if early_stopping is not None and loop.waited >= early_stopping:
                    history.stopped_early = loop.finished = True
            if schedule is not None and not loop.finished and not schedule.per_batch:
                if isinstance(schedule, ReduceLROnPlateau):  # on what early stopping watches
                    schedule.step(figures[monitor])
                else:
                    schedule.step()
            loop.end_epoch()
            # A Ctrl-C/SIGTERM reaching one rank after the stop check (while rank 0 writes
            # the checkpoint, say) waits for the next step's sum: acted on here, it took
            # that rank out of the loop alone, the others waiting on it until the timeout.
            stopping = interrupts.requested if agreed is None else agreed
            if saver is not None and (
                saver.due(loop.global_step(steps_per_epoch), epoch_end=True)
                or loop.finished
                or loop.epoch > epochs
                or stopping
            ):
                saver.write(loop, model, opt, schedule, history, epochs, steps_per_epoch)
            if stopping:  # also after the last epoch: the caller asked to stop
                _stop(saver, loop, model, opt, schedule, history, epochs, steps_per_epoch)
    if loop.best_state is not None:
        model.load_state_dict(loop.best_state)
        history.kept_epoch = history.best_epoch
    return history


@dataclass
class _Loop:
    """Where a run is and what it has decided: all of it goes into a checkpoint."""

    order: np.ndarray  # the rows in this epoch's order (shuffled in place, epoch after epoch)
    last_good: dict[str, np.ndarray]  # weights at the end of the last finite epoch
    epoch: int = 1  # the epoch under way (1-based)
    step: int = 0  # steps of it done
    total: float = 0.0  # its summed loss so far
    correct: int = 0  # its correct predictions so far
    best_value: float = math.inf  # early stopping's best monitored figure
    waited: int = 0  # epochs since it improved
    best_state: dict[str, np.ndarray] | None = None
    finished: bool = False  # stopped early

    def global_step(self, steps_per_epoch: int) -> int:
        return (self.epoch - 1) * steps_per_epoch + self.step

    def end_epoch(self) -> None:
        self.epoch, self.step, self.total, self.correct = self.epoch + 1, 0, 0.0, 0


class _Interrupts:
    """Ctrl-C during fit: the first asks to stop after the current step; the second stops
    at once. Installed only in the main thread, and only over Python's own handler (a
    SIGINT a program handles or ignores stays so); ``request_stop`` asks the same."""

    def __init__(self) -> None:
        self.requested = False
        self.previous: object = None

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            if _PENDING:  # asked before this fit began, and the interrupt then was lost
                _PENDING.clear()
                raise KeyboardInterrupt
            _UNDER_WAY.append(self)
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:  # the second: at once
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.requested = True

    def request(self) -> None:
        if self.requested:  # the second: at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        if self in _UNDER_WAY:
            _UNDER_WAY.remove(self)
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None


_UNDER_WAY: list[_Interrupts] = []  # the main thread's fits under way, innermost last
# A request made while no fit was under way. The handler then raises KeyboardInterrupt,
# but one raised while C code calls back into Python (numba compiling a kernel through
# llvmlite) is printed and dropped: the next fit to begin stops at once instead.
_PENDING: list[bool] = []


def request_stop() -> bool:
    """Ask the fit under way in the main thread to stop as a first Ctrl-C does: after the
    current step, with a checkpoint where a folder is set (a second request stops at once).
    For a signal handler of the program's own, such as ``wxb train``'s for SIGTERM, which
    must work where SIGINT is ignored. False when no fit is under way: the caller stops
    at once (raises), and should that be lost, the next fit begun stops at once too,
    until ``forget_stop_request()``."""
    if not _UNDER_WAY:
        _PENDING[:] = [True]
        return False
    _UNDER_WAY[-1].request()
    return True


def forget_stop_request() -> None:
    """Drop a request made while no fit was under way (the program has stopped, or was
    told to go on): a later fit in this process starts as usual."""
    _PENDING.clear()


def _stop(saver, loop, model, opt, schedule, history, epochs, steps) -> None:
    """After Ctrl-C: a checkpoint (when a folder is set), then TrainingInterrupted."""
    where = f"epoch {loop.epoch}, step {loop.step} of {steps}"
    if loop.step == 0:
        where = f"the end of epoch {loop.epoch - 1}"
    path = None
    if saver is not None:
        path = saver.last
        if saver.last_step != loop.global_step(steps):
            path = saver.write(loop, model, opt, schedule, history, epochs, steps)
        written = f"checkpoint written to {path}" if saver.writes else "rank 0 wrote a checkpoint"
        message = (
            f"interrupted at {where}; {written}; run the same again "
            "with resume=True (wxb train: --resume) to continue exactly"
        )
    else:
        message = (
            f"interrupted at {where}; no checkpoint folder was set (checkpoint_dir, "
            "--checkpoint-dir), so it cannot be resumed; the model keeps its weights"
        )
    raise TrainingInterrupted(message, where, path, history, loop.best_state)


def _saved_state_names(arrays: Mapping, opt: Optimizer) -> Iterable[str]:
    """The names of the optimiser state arrays a checkpoint holds that ``opt`` loads: its
    own kinds, or with a step of its own (PyTorch's way), whatever its step kept (its
    arrays were dropped at a resume, a momentum buffer started again from zero)."""
    if not opt._own_step:
        return opt.possible_states
    saved = (key.split(".", 1)[1].rpartition(".") for key in arrays if key.startswith("optimizer."))
    return {name for name, _, index in saved if name and index.isdigit()}


def _optimizer_settings(opt: Optimizer, model: Module) -> dict:
    """The optimiser's kind and each group's parameters (by name) and starting settings
    (what a resume must match)."""
    names = {id(p): name for name, p in model.named_parameters()}
    groups = []
    for group in opt.param_groups:
        values = {k: v for k, v in group.items() if k not in ("params", "lr", "initial_lr")}
        values["lr"] = group.get("initial_lr", group.get("lr"))  # (a step of one's own: none)
        values["params"] = [names.get(id(p), "?") for p in group["params"]]
        groups.append(json.loads(json.dumps(values, default=repr)))
    return {"type": type(opt).__name__, "groups": groups}


class _Saver:
    """Writes fit's checkpoints and restores a run from one."""

    def __init__(self, folder, every, run, setup, generators, roles) -> None:
        self.folder: ckpt.CheckpointFolder = folder
        if every is not None:
            every = _whole(every, "checkpoint_every")
        self.every, self.run, self.setup = every, run, setup
        self.start = None  # digest of the weights this fit started from (set by fit)
        self.generators, self.roles = generators, roles
        self.run["generators"] = roles
        self.last: Path | None = None
        self.last_step: int | None = None  # the global step of self.last
        self.writes = True  # False on the ranks other than 0 of a distributed run
        self.row_masks: RowMasks | None = None  # fit's masks by row: their key is saved
        self.whole_array_digests: Any = None  # the data as earlier checkpoints described it
        self.undo: Any = None  # after a restore: put back what the model was given

    def _own_keys(self) -> dict[str, int] | None:
        """The masks' keys of Dropouts with generators of their own, by the index of the
        generator in ``self.generators``."""
        if self.row_masks is None:
            return None
        index = {id(g): i for i, g in enumerate(self.generators)}
        return {str(index[g]): key for g, key in self.row_masks.own.items() if g in index}

    def due(self, global_step: int, epoch_end: bool = False) -> bool:
        """Every ``every`` steps; without it, at each epoch's end."""
        return epoch_end if self.every is None else global_step % self.every == 0

    def write(self, loop, model, opt, schedule, history, epochs, steps_per_epoch) -> Path:
        if not self.writes:
            return self.last
        # Weights stored once each: at an epoch's end the model's are last_good, and the
        # best are often last_good (the same dict) too.
        # The arrays themselves, not copies: they are written out before training goes on.
        arrays = {f"model.{k}": p.data for k, p in model.named_parameters()}
        # the buffers state_dict() gives, which the restore loads strictly: persistent ones
        # only (a non-persistent one is "unexpected"), a shared module's under each of its
        # names (named_buffers gives one: the other is "missing")
        arrays.update(
            {
                f"model.{path}.{k}" if path else f"model.{k}": a
                for path, module in model.named_modules(remove_duplicate=False)
                for k, a in module._buffers.items()
                if module._persistent(k)
            }
        )
        # a non-persistent buffer is in no state_dict, but a forward may move it (a running
        # mean kept out of the model's file): stored apart, so that resuming is exact
        arrays.update(
            {
                f"hidden_buffers.{path}.{k}" if path else f"hidden_buffers.{k}": a
                for path, module in model.named_modules()
                for k, a in module._buffers.items()
                if not module._persistent(k)
            }
        )
        last_good = "model" if loop.step == 0 else "stored"
        if last_good == "stored":
            arrays.update({f"last_good.{k}": v for k, v in loop.last_good.items()})
        best = None
        if loop.best_state is not None:
            best = "last_good" if loop.best_state is loop.last_good else "stored"
            if best == "stored":
                arrays.update({f"best.{k}": v for k, v in loop.best_state.items()})
        arrays["order"] = loop.order
        state = opt.state_dict()
        counters = {}
        # (a step of one's own may keep NumPy scalars, np.float32(…), which JSON does not
        # take: fit's checkpoint raised TypeError; kept as arrays of their dtype)
        stored = (np.ndarray, np.generic) if opt._own_step else np.ndarray
        for i, entry in state["state"].items():
            counters[str(i)] = {k: v for k, v in entry.items() if not isinstance(v, stored)}
            for k, v in entry.items():
                if isinstance(v, stored):
                    arrays[f"optimizer.{k}.{i}"] = np.asarray(v)
        meta = {
            "position": {
                "epoch": loop.epoch,
                "step": loop.step,
                "global_step": loop.global_step(steps_per_epoch),
                "steps_per_epoch": steps_per_epoch,
                "epochs": epochs,
                "finished": loop.finished,
            },
            "loop": {
                "total": loop.total,
                "correct": loop.correct,
                "best_value": None if math.isinf(loop.best_value) else loop.best_value,
                "waited": loop.waited,
                "last_good": last_good,
                "best_state": best,
            },
            "start": self.start,
            "history": history.to_dict(),
            "optimizer": {
                "param_groups": state["param_groups"],
                "steps": state["steps"],
                "counters": counters,
            },
            "schedule": None if schedule is None else schedule.state_dict(),
            "generators": [ckpt.generator_state(g) for g in self.generators],
            # Without a seed the key came from the state of wxb's default generator,
            # which a resumed run cannot rebuild.
            "row_masks_key": None if self.row_masks is None else self.row_masks.key,
            # and each Dropout's own key (drawn when the run began), by its generator's index
            "row_masks_own": self._own_keys(),
            # F.dropout's masks by where it is called (before: by the draws' order)
            "row_masks_functional": FUNCTIONAL_SCHEME,
            "numpy_global": ckpt.numpy_global_state(),
            "python_random": ckpt.python_random_state(),
            "run": self.run,
            "setup": self.setup,
        }
        try:
            self.last = self.folder.write(loop.global_step(steps_per_epoch), arrays, meta)
            self.last_step = loop.global_step(steps_per_epoch)
        except (OSError, ckpt.CheckpointFileError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            where = getattr(exc, "filename", None) or self.folder.folder
            kept = f"{self.last} is intact" if self.last else "earlier checkpoints are intact"
            at = (
                f"epoch {loop.epoch}, step {loop.step}"
                if loop.step
                else f"the end of epoch {loop.epoch - 1}"
            )
            raise CheckpointError(
                f"could not write a checkpoint ({where}: {reason}); "
                f"training stopped at {at}; {kept}"
            ) from exc
        return self.last

    def restore(self, found, model, opt, schedule, loop, epochs, history) -> History:
        """Check the checkpoint against this run, then put its state in place: all of it,
        or (on any error) none of it."""
        meta = found.meta
        where = f"cannot resume from {found.path}"
        now = self.run
        saved_loss = meta.get("run", {}).get("loss")
        if isinstance(saved_loss, dict) and "code" not in saved_loss and "loss" in now:
            # a checkpoint of a wxb before loss digests: compared on what it recorded
            now = {**now, "loss": {k: v for k, v in now["loss"].items() if k in saved_loss}}
        saved_schedule = meta.get("run", {}).get("schedule")
        ours = now.get("schedule")
        if (
            isinstance(saved_schedule, dict)
            and isinstance(ours, dict)
            and "lr_lambda" not in saved_schedule
        ):  # a LambdaLR's checkpoint of a wxb before its function's digest
            now = {**now, "schedule": {k: v for k, v in ours.items() if k != "lr_lambda"}}
        saved_run = meta.get("run", {})
        code_changed = _schedule_code_warnings(saved_schedule, ours)
        if isinstance(saved_schedule, dict) and isinstance(ours, dict):  # warned of, below
            saved_run = {**saved_run, "schedule": _without_code(saved_schedule)}
            now = {**now, "schedule": _without_code(now["schedule"])}
        saved_data = meta.get("run", {}).get("data") or {}
        if len(str(saved_data.get("X", ""))) == 32:  # a whole-array digest: an earlier wxb's
            # (on top of the loss's filtering above: a wxb before both wrote either way)
            now = {**now, "data": self.whole_array_digests()}
        if _left_where_saved(opt, meta, saved_run.get("optimizer"), now.get("optimizer")):
            now = {**now, "optimizer": saved_run["optimizer"]}
        differences = _differences(saved_run, now)
        if differences:
            raise ConfigError(f"{where}: {'; '.join(differences)}")
        unknown = ckpt.unknown_dropout_masks(meta, model) if self.row_masks is not None else None
        if unknown:
            raise ConfigError(f"{where}: {unknown}")
        scheme = meta.get("row_masks_functional")
        if self.row_masks is not None and scheme != FUNCTIONAL_SCHEME:
            # told only at the first such draw: what a forward calls is not known before
            what = "by the draws' order" if scheme is None else f"by {scheme}"
            self.row_masks.functional_refused = (
                f"{where}: written by an earlier wxb, whose F.dropout masks in fit went "
                f"{what}, another stream than this wxb draws: the rest of the run would "
                "train on other masks; train again without resuming"
            )
        position = meta["position"]
        done = position["epoch"] - 1  # whole epochs; more when it is inside the next
        if epochs < done or (epochs == done and position["step"] > 0):
            trained = f"{done} epochs" + (
                f" and {position['step']} steps" if position["step"] else ""
            )
            raise ConfigError(f"{where}: it has trained {trained} already; epochs is {epochs}")
        if code_changed:
            warnings.warn(
                f"resuming from {found.path}: the learning-rate schedule differs from the "
                f"checkpoint's run in {' and '.join(code_changed)}; the rest of the run "
                "takes its rates from the schedule as it is now, so the run mixes two "
                "schedules (train again without resuming for one of them)",
                ckpt.CheckpointWarning,
                stacklevel=5,
            )
        changed = ckpt.setup_differences(meta.get("setup", {}), self.setup)
        if changed:
            warnings.warn(
                "resuming on a different numeric setup (" + "; ".join(changed) + "): the "
                "result will match an uninterrupted run only to rounding",
                ckpt.CheckpointWarning,
                stacklevel=5,
            )
        now_held = model.state_dict()
        # (a model stopped where the checkpoint is, rerun in its process: nothing replaced;
        # or holding the best weights that run's end put back, continued with more epochs)
        own = [found.part("model")]
        if meta.get("loop", {}).get("best_state") == "stored":
            own.append(found.part("best"))
        if meta.get("start") != self.start and not any(_same_arrays(now_held, w) for w in own):
            warnings.warn(
                f"resuming from {found.path}: the model's weights differ from those that run "
                "started from, and are replaced by the checkpoint's (resume=True continues "
                "the run in the folder; to train a trained model further, give another folder)",
                ckpt.CheckpointWarning,
                stacklevel=5,
            )
        if schedule is not None and meta["schedule"] is not None:
            counters = getattr(schedule, "COUNTERS", ("epoch", "base_lrs"))
            # (as settings(): its "_" entries, get_last_lr()'s "_last_lr", are no setting)
            saved = {k: v for k, v in meta["schedule"].items() if k not in counters and k[0] != "_"}
            if saved != json.loads(json.dumps(schedule.settings())):
                # a schedule derived from epochs, or one an earlier wxb derived otherwise
                # (plateau's patience from early stopping's): the run goes on as it began
                why = (
                    f"epochs changed from {position['epochs']} to {epochs}"
                    if position["epochs"] != epochs
                    else "the checkpoint's schedule has other settings than this wxb makes"
                )
                warnings.warn(
                    f"{why}: the learning-rate schedule keeps its settings from the "
                    f"checkpoint ({_settings(saved)})",
                    ckpt.CheckpointWarning,
                    stacklevel=5,
                )
        order = found.arrays["order"]
        rows = len(loop.order)
        # the gather of each batch trusts its rows (np.take with mode="clip"): an order
        # that is not a permutation of this run's rows is refused, never clipped
        if order.shape != (rows,) or not np.array_equal(np.sort(order), np.arange(rows)):
            raise ConfigError(
                f"checkpoint {found.path}: its row order is not a permutation of the "
                f"{rows} training rows; it was not written by this run"
            )
        before = (
            model.state_dict(),
            opt.state_dict(),
            None if schedule is None else schedule.state_dict(),
            [ckpt.generator_state(g) for g in self.generators],
        )

        def undo() -> None:
            model.load_state_dict(before[0])
            opt.load_state_dict(before[1])
            if schedule is not None:
                schedule.load_state_dict(before[2])
            for generator, state in zip(self.generators, before[3], strict=True):
                ckpt.set_generator_state(generator, state, "rollback")

        try:
            self._put_in_place(found, model, opt, schedule)
        except BaseException:
            undo()
            raise
        self.undo = undo  # (a refusal at the first F.dropout draw puts it all back)
        saved_loop = meta["loop"]
        loop.epoch, loop.step = position["epoch"], position["step"]
        loop.finished = position["finished"]
        loop.total, loop.correct = saved_loop["total"], saved_loop["correct"]
        best = saved_loop["best_value"]
        loop.best_value = math.inf if best is None else best
        loop.waited = saved_loop["waited"]
        loop.order = found.arrays["order"].copy()
        stored = found.part("model")
        loop.last_good = stored if saved_loop["last_good"] == "model" else found.part("last_good")
        kept = saved_loop["best_state"]
        loop.best_state = {
            None: None,
            "last_good": loop.last_good,
            "stored": found.part("best") if kept == "stored" else None,
        }[kept]
        self.start = meta.get("start")  # later checkpoints name the run's own start
        self.last, self.last_step = found.path, position["global_step"]
        if self.row_masks is not None and meta.get("row_masks_key") is not None:
            self.row_masks.key = int(meta["row_masks_key"])
        own = meta.get("row_masks_own")  # (None from a wxb that did not keep them)
        if self.row_masks is not None and isinstance(own, dict):
            # the run's, as its generators' states are: a Dropout made with another seed
            # drew other masks with the restored generator, and said nothing
            for index, key in own.items():
                if index.isdigit() and int(index) < len(self.generators):
                    self.row_masks.own[id(self.generators[int(index)])] = int(key)
        elif self.row_masks is not None:  # a wxb before 2026-12-05 23:00 kept no keys:
            # each generator's was its first Dropout's, made when the layer was made
            # (a fresh draw here gave the rest of the run other masks, without a word)
            made: dict[int, int] = {}
            for _, module in model.named_modules():
                key = getattr(module, "_row_key", None)
                generator = getattr(module, "_own_rng", None)
                if isinstance(module, Dropout) and key is not None:
                    made.setdefault(id(generator), int(key))
            for generator_id in self.row_masks.own:
                if generator_id in made:
                    self.row_masks.own[generator_id] = made[generator_id]
        restored = History.from_dict(meta["history"])
        restored.engine, restored.engine_reason = history.engine, history.engine_reason
        restored.resumed_from = str(found.path)
        return restored

    def _put_in_place(self, found, model, opt, schedule) -> None:
        meta = found.meta
        state = {
            int(i): {**counts, **{k: found.arrays[f"optimizer.{k}.{i}"]
                                  for k in _saved_state_names(found.arrays, opt)
                                  if f"optimizer.{k}.{i}" in found.arrays}}
            for i, counts in meta["optimizer"]["counters"].items()
        }  # fmt: skip
        opt.load_state_dict(
            {
                "state": state,
                "param_groups": meta["optimizer"]["param_groups"],
                "steps": meta["optimizer"]["steps"],
            }
        )
        if schedule is not None and meta["schedule"] is not None:
            schedule.load_state_dict(meta["schedule"])
        model.load_state_dict(found.part("model"))
        for role, index in self.roles.items():
            ckpt.set_generator_state(self.generators[index], meta["generators"][index], role)
        # last, NumPy's first (a failure changes neither); a wxb that did not keep them:
        # left as they are
        if meta.get("numpy_global") is not None:
            before = ckpt.numpy_global_state()
            ckpt.set_numpy_global_state(meta["numpy_global"])
            try:
                if meta.get("python_random") is not None:
                    ckpt.set_python_random_state(meta["python_random"])
            except ckpt.CheckpointFileError:
                ckpt.set_numpy_global_state(before)
                raise
        _put_hidden_buffers(model, found.part("hidden_buffers"))


def _put_hidden_buffers(model: Module, stored: dict[str, np.ndarray]) -> None:
    """The non-persistent buffers a checkpoint kept, each where the model has one of that
    name and shape, or holds the name by None (a buffer its forward makes on its first
    call); a checkpoint of an older wxb kept none: they stay as they are."""
    for name, value in stored.items():
        path, _, key = name.rpartition(".")
        try:
            module = model.get_submodule(path) if path else model
        except NotFoundError:
            continue
        if module._persistent(key):
            continue
        held = module._buffers.get(key)
        if held is None and module._vacated_kind(key) == "buffer":
            setattr(module, key, np.array(value))
        elif held is not None and held.shape == value.shape:
            setattr(module, key, np.array(value, dtype=held.dtype))


def _update_training_record(info: dict, X: np.ndarray, X_val: np.ndarray | None) -> None:
    """What a model file says of its training, kept true as this fit changes the weights:
    test figures of the weights before it go (wxb report would show them as this model's),
    and the rows this fit sees join the fingerprints wxb eval warns by."""
    info.pop("test", None)
    if "training_rows" in info:
        seen = [unpack_fingerprints(info["training_rows"]), row_fingerprints(X)]
        if X_val is not None:
            seen.append(row_fingerprints(X_val))
        info["training_rows"] = pack_fingerprints(np.concatenate(seen))


def _schedule_settings(schedule: LRSchedule) -> dict[str, Any]:
    """What a checkpoint records of a schedule, for a resume to refuse another: its
    settings, and a digest of a LambdaLR's function or a CyclicLR's scale_fn (kept out
    of its state_dict, as PyTorch's: another function resumed with the saved rates and
    went on with its own).
    For a resume to warn of (``SCHEDULE_CODE``): a digest of a subclass of one's own's
    code, and of the globals its code or the function reads (STEP in ``lambda e: 0.5 **
    (e // STEP)``): either changed, the rest of the run went on with the new rates
    silently, a mix of two schedules."""
    settings = schedule.settings()
    function = vars(schedule).get("_lr_lambda")
    if isinstance(function, list):  # one per group: each one's digest
        settings["lr_lambda"] = [ckpt.code_digest(f) for f in function]
    elif function is not None:
        settings["lr_lambda"] = ckpt.code_digest(function)
    scale = vars(schedule).get("_scale_fn")  # a CyclicLR's of one's own, likewise
    if scale is not None:
        settings["scale_fn"] = ckpt.code_digest(scale)
    if "schedulers" in settings:  # a SequentialLR: each of its own, a LambdaLR's function too
        settings["schedulers"] = [_schedule_settings(s) for s in schedule._schedulers]
    own = ckpt.own_classes_digest(schedule)
    if own is not None:
        settings["_code"] = own
    functions = [] if function is None else function if isinstance(function, list) else [function]
    for cls in type(schedule).__mro__:
        if cls is not object and cls.__module__.split(".")[0] != "wxb":
            functions += [f for f in vars(cls).values() if callable(f)]
    read = ckpt.globals_digest(functions)
    if read is not None:
        settings["_globals"] = list(read)
    return settings


# A schedule's records that a resume warns of, not refuses on: a global may change
# legitimately (a list the function logs to), and an edit may be a comment or a fix.
SCHEDULE_CODE = {
    "_code": "the code of its class",
    "_globals": "the values of the globals its code reads",
}


def _schedule_code_warnings(saved: object, ours: object) -> list[str]:
    """What of ``SCHEDULE_CODE`` differs between the checkpoint's schedule and this one
    (nothing where the checkpoint recorded none: a wxb before, or no code of one's own)."""
    if not isinstance(saved, dict) or not isinstance(ours, dict):
        return []
    changed = []
    for key, what in SCHEDULE_CODE.items():
        then, now = saved.get(key), json.loads(json.dumps(ours.get(key)))
        if then is not None and then != now:
            if key == "_globals" and isinstance(now, list) and len(now) == 2:
                what += f" ({', '.join(map(str, now[1]))})"
            changed.append(what)
    # a SequentialLR's schedules: theirs warned of as its own (a LambdaLR's STEP in one)
    then, now = saved.get("schedulers"), ours.get("schedulers")
    if isinstance(then, list) and isinstance(now, list) and len(then) == len(now):
        for a, b in zip(then, now, strict=True):
            changed += [what for what in _schedule_code_warnings(a, b) if what not in changed]
    return changed


def _without_code(settings: object) -> object:
    """A schedule's recorded settings without ``SCHEDULE_CODE``'s, its schedules' too (a
    SequentialLR's: else a change there was refused, dumping digests, not warned of)."""
    if not isinstance(settings, dict):
        return settings
    kept = {k: v for k, v in settings.items() if k not in SCHEDULE_CODE}
    if isinstance(kept.get("schedulers"), list):
        kept["schedulers"] = [_without_code(s) for s in kept["schedulers"]]
    return kept


def _loss_settings(loss_fn: Loss) -> dict[str, Any]:
    """What a checkpoint records of the loss, for a resume to refuse another: its plain
    settings, a digest of each array setting (class weights), and for a loss of one's
    own a digest of its code (a lambda's name is every lambda's)."""
    settings = ckpt.plain_settings(loss_fn)
    for key, value in sorted(vars(loss_fn).items()):
        if not key.startswith("_") and isinstance(value, np.ndarray):
            settings[key] = ckpt.fingerprint(value)
    if computes_its_own(loss_fn):
        settings["code"] = ckpt.code_digest(own_code(loss_fn))
    return settings


def _record_loss(info: dict, loss_fn: Loss, y: np.ndarray) -> None:
    """The stock loss this fit trains with, by name, and the task it implies, as wxb
    train writes them: wxb eval, predict and report then read a model saved from Python
    as it was trained (one output trained with BCE is a binary classifier, not a
    regression; two trained with MSE are a regression, not two classes), as a Keras
    model file keeps the loss it was compiled with. A subclass of a stock loss counts as
    that loss unless it has a __call__ of its own; so do BCELoss ("bce"), KLDivLoss
    ("kl_div") and torch's other one-input losses ("poisson_nll", …), which fit takes by
    those names, with their plain options; a loss of one's own leaves the record as it
    was."""
    name = recorded_name(loss_fn)
    # its class weights' values: evaluate and a second fit apply them, as torch's
    # criterion(model(X), y) does (by their names alone they were dropped)
    if name is not None and weights_set(loss_fn):
        info["loss_weights"] = weight_values(loss_fn)
    else:
        info.pop("loss_weights", None)
    if name is None:
        # what evaluate and a later fit must not replace by cross_entropy without a word
        # (a KLDivLoss model scored as a cross-entropy of its targets)
        info["unnamed_loss"] = _loss_name(loss_fn)
        return
    info.pop("unnamed_loss", None)
    info["loss"] = name
    # its options too (HuberLoss(delta=3)): by the name alone a second fit without loss=
    # trained, and evaluate scored, on δ = 1
    options = plain_options(loss_fn, name)
    if options:
        info["loss_options"] = options
    else:
        info.pop("loss_options", None)
    info["task"] = "regression" if name in NUMBER_LOSSES else "classification"
    several = ("bce_with_logits", "multilabel_soft_margin", "multilabel_margin")
    if name in several and y.ndim == 2 and y.shape[1] > 1:
        info["multilabel"] = True  # a sigmoid per output, as scikit-learn's multilabel MLP
    else:
        info.pop("multilabel", None)
    if name == "poisson_nll" and loss_fn.log_input:
        # the outputs are log-rates, as PyTorch's: wxb predict gives the rate e^x, as for
        # scikit-learn's Poisson MLP (a link of an earlier fit's is dropped below)
        info["link"] = "log"
    else:
        info.pop("link", None)


def _loss_name(loss_fn: object) -> str:
    """A loss as a user would recognise it: its class (KLDivLoss) or function name."""
    function = getattr(loss_fn, "function", None)  # (a function fit took, FunctionLoss)
    if isinstance(function, str):
        return f"the function {function}"
    return type(loss_fn).__name__


def _check_target_order(
    info: dict, y: object, where: str = "y", whose: str = "the model's targets"
) -> None:
    """Several target columns that are the model's own, in another order: refused, as X's
    are (the outputs follow the order the model learnt; one-hot classes renamed by
    position would be predicted under each other's names)."""
    if not is_tabular(y):
        return
    names, own = column_names(y), info.get("targets")
    if own and len(own) > 1 and sorted(names) == sorted(own) and names != list(own):
        raise DataError(
            f"{where}'s columns {names[:8]} are {whose} in another order "
            f"({list(own)[:8]}); select them as y[names]"
        )


def _record_target_names(
    info: dict, y: object, y_arr: np.ndarray, kind: type | None, shape: tuple[int, ...] = ()
) -> None:
    """A named target (a pandas Series, a DataFrame's columns), as wxb train records it:
    wxb predict then heads each output with its name, and wxb eval finds the column. A
    classifier's several columns (one-hot rows, probabilities, labels) are its classes;
    a boolean target's are False and True, as wxb train names a boolean column's."""
    names = target_names(y, y_arr.shape[1] if y_arr.ndim == 2 else 1)
    if not names:
        return
    info["target"], info["targets"] = ",".join(names), names
    if len(names) > 1 and kind in (CrossEntropyLoss, BCEWithLogitsLoss):
        info["classes"] = names  # one-hot rows, probabilities or labels, as wxb train reads them
    width = shape[0] if shape else 1
    dtypes = np.atleast_1d(np.asarray(getattr(y, "dtypes", getattr(y, "dtype", None)), object))
    boolean = len(names) == 1 and {str(k) for k in dtypes} <= {"bool", "boolean"}
    if boolean and (kind, width) in ((CrossEntropyLoss, 2), (BCEWithLogitsLoss, 1)):
        info["classes"] = ["False", "True"]  # index 0 is False, as bool → int reads it


def _rounded_features(
    model: Module, X: object, names: list[str] | None, dtype: np.dtype
) -> list[str]:
    """What ``wxb train`` says of feature columns the model's dtype rounds coarsely (a
    timestamp in float32), for X as given to fit: an array or a DataFrame of numbers in
    a wider type, judged on up to 2,000 of its rows (a float64 copy of them is made)."""
    if dtype != np.float32 or model.info.get("table"):
        return []
    if model._own_forward() and _whole_number_rows(X):  # ids kept whole (_features)
        return []
    if isinstance(X, np.ndarray):
        if X.ndim != 2 or X.dtype.kind not in "fiu" or X.dtype == dtype:
            return []
        values = np.asarray(X[:: max(1, len(X) // 2_000)], dtype=np.float64)
    elif hasattr(X, "tocsr") and getattr(X, "ndim", 0) == 2:  # SciPy sparse: kept sparse
        if X.dtype.kind not in "fiu" or X.dtype == dtype:
            return []
        values = X.tocsr()[:: max(1, X.shape[0] // 2_000)].astype(np.float64)
    elif is_tabular(X) and hasattr(X, "iloc") and hasattr(X, "dtypes"):  # pandas
        if not all(getattr(kind, "kind", "O") in "biuf" for kind in X.dtypes):
            return []  # text, dates, complex: the table's reading says what it can
        try:
            values = X.iloc[:: max(1, len(X) // 2_000)].to_numpy(dtype=np.float64)
        except (TypeError, ValueError):  # (a nullable column's gaps)
            return []
    else:
        return []
    columns = names or [f"X[:, {j}]" for j in range(values.shape[1])]
    keeps = "model.to('float64') (or a float64 model) keeps them"
    return feature_rounding_warnings(columns, values, dtype, keeps=keeps)


def _rounded_targets(loss: Loss, y: object, dtype: np.dtype) -> list[str]:
    """What fit says of regression targets (a float64 or integer array) that the model's
    float32 rounds coarsely, as it says of features: targets near 1.7e9 spread by 30
    became 3 distinct values of 500, trained on without a word. Judged on up to 2,000
    rows; class indices are not rounded (they stay whole)."""
    if dtype != np.float32 or stock_loss(loss) in (CrossEntropyLoss, NLLLoss):
        return []
    if isinstance(y, Tensor):
        y = y.data
    try:  # (a pandas Series or a list too, as fit reads them)
        array = np.asarray(validation.numbers_from_pandas(y))
    except (TypeError, ValueError):
        return []  # (named by the targets' own check)
    if array.dtype.kind not in "fiu" or array.dtype.itemsize <= 4:
        return []  # (float32, float16 and small integers are held exactly)
    if array.ndim not in (1, 2) or not len(array):
        return []
    values = np.asarray(array[:: max(1, len(array) // 2_000)], dtype=np.float64)
    values = values.reshape(len(values), -1)
    found, typical, steps, spread = coarsened_columns(values, dtype)
    return [
        f"target y[:, {j}]: its values near {typical[k]:.6g}, held in float32, are rounded "
        f"to a step of {steps[k]:.3g} (their spread is {spread[k]:.3g}), so the model is "
        "trained on them coarsened; model.to('float64') (or a float64 model) keeps them"
        for k, j in enumerate(found[:5])
    ]


def _through_stage(model: Module, X: object, where: str) -> object:
    """A table as ``predict`` reads it: through the model's table stage (a model wxb train
    made) by column name, its network taking the stage's output; or its columns of
    numbers and booleans as a matrix (a DataFrame of floats beside bools, a dict of
    columns: NumPy would read objects)."""
    return rows_for_model(model.info, X, model.dtype, where) if is_tabular(X) else X


def _feature_names(
    model: Module, X: object, what: str, expected: list[str] | None = None
) -> list[str] | None:
    """A table's column names, which fit records in ``model.info`` once the data is
    accepted, so predict takes a DataFrame's columns by name (as scikit-learn's
    feature_names_in_); a table whose names or order differ from those the model was
    trained on (or from X's, ``expected``) is refused."""
    if not is_tabular(X) or model.info.get("table"):  # (a table stage has its own names)
        return None
    names = column_names(X)
    known = expected or model.info.get("feature_names")
    if known is not None and names != list(known):
        raise DataError(
            f"{what}'s columns {names[:8]} are not those the model was trained on, in that "
            f"order ({list(known)[:8]}); select them as df[names]"
        )
    return names


def _same_arrays(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _left_where_saved(opt: Optimizer, meta: dict, saved: object, now: object) -> bool:
    """Whether ``opt`` is the interrupted run's own optimiser, rerun in its process as the
    interruption says: its kind and groups' parameters the run's, and its settings those
    the checkpoint saved (a plateau's lowered rate, a cycled momentum), where a fresh
    optimiser has the run's starting ones (that was refused: "optimizer differs")."""
    if not (isinstance(saved, dict) and isinstance(now, dict)) or saved == now:
        return False
    groups, saved_groups = now.get("groups") or [], saved.get("groups") or []
    if now.get("type") != saved.get("type") or len(groups) != len(saved_groups):
        return False
    if any(a.get("params") != b.get("params") for a, b in zip(groups, saved_groups, strict=True)):
        return False
    held = meta.get("optimizer", {}).get("param_groups")
    current = opt.state_dict()["param_groups"]
    if not isinstance(held, list) or len(held) != len(current):
        return False

    def settings(group: dict) -> dict:
        return json.loads(
            json.dumps({k: v for k, v in group.items() if k != "params"}, default=repr)
        )

    return all(settings(a) == settings(b) for a, b in zip(current, held, strict=True))


def _differences(saved: dict, now: dict) -> list[str]:
    """What differs between the checkpoint's run and this one, named for a person."""
    names = {
        "data": "the training or validation data differ",
        "architecture": "the model's architecture differs",
        "generators": "the model's random generators differ (shared differently, or "
        "some were not saved by the wxb that wrote the checkpoint)",
        "trainable": f"the trainable (not frozen) parameters differ (checkpoint "
        f"{saved.get('trainable')}, now {now.get('trainable')})",
    }
    found = []
    for key in sorted(set(saved) | set(now)):
        then, current = saved.get(key), json.loads(json.dumps(now.get(key)))
        if key == "architecture":
            then, current = ckpt.arrays_by_name(then), ckpt.arrays_by_name(current)
        if then == current:
            continue
        if key == "data" and now.get("seed") is None and now.get("validation_split"):
            found.append(
                "the training or validation data differ (without a seed, validation_split "
                "holds out other rows each run: give fit a seed to resume such a run)"
            )
        elif key in names:
            found.append(names[key])
        elif key == "schedule" and isinstance(then, dict) and isinstance(current, dict):
            found.append(f"schedule differs: {'; '.join(_schedule_changes(then, current))}")
        elif key == "optimizer" and isinstance(then, dict) and isinstance(current, dict):
            found.append(f"optimizer differs: {'; '.join(_optimizer_changes(then, current))}")
        else:
            found.append(f"{key} differs (checkpoint {saved.get(key)!r}, now {now.get(key)!r})")
    return found


def _optimizer_changes(then: dict, now: dict) -> list[str]:
    """The optimiser's kind, its groups' count, or each group's settings that differ from
    the checkpoint's, by name (the two whole records were printed, which hid the one
    setting that differed among a dozen)."""
    if then.get("type") != now.get("type"):
        return [f"{then.get('type')} in the checkpoint, {now.get('type')} now"]
    old_groups, new_groups = then.get("groups") or [], now.get("groups") or []
    if len(old_groups) != len(new_groups):
        return [f"{len(old_groups)} parameter groups in the checkpoint, {len(new_groups)} now"]
    changes = []
    for index, (old, new) in enumerate(zip(old_groups, new_groups, strict=True)):
        for key in sorted(set(old) | set(new), key=str):
            if old.get(key) == new.get(key):
                continue
            if key == "params":
                changes.append(f"group {index}'s parameters are others than the checkpoint's")
            else:
                changes.append(
                    f"group {index} {key} {old.get(key)!r} in the checkpoint, {new.get(key)!r} now"
                )
    return changes or [f"checkpoint {then!r}, now {now!r}"]


def _schedule_changes(then: dict, now: dict, where: str = "") -> list[str]:
    """The settings of the checkpoint's schedule that differ from this run's, by name; a
    LambdaLR's function said as such, not as the two digests it is recorded by."""
    if then.get("type") != now.get("type"):
        return [f"{where}{then.get('type')} in the checkpoint, {now.get('type')} now"]
    changes = []
    for key in sorted(set(then) | set(now), key=str):
        old, new = then.get(key), now.get(key)
        if old == new:
            continue
        inner = (
            key == "schedulers"
            and isinstance(old, list)
            and isinstance(new, list)
            and len(old) == len(new)
            and all(isinstance(s, dict) for s in old + new)
        )
        if inner:  # a SequentialLR's: the one that differs, by its place
            for index, (a, b) in enumerate(zip(old, new, strict=True)):
                if a != b:
                    changes += _schedule_changes(a, b, f"{where}schedulers[{index}] ")
        elif key in ("lr_lambda", "scale_fn"):
            changes.append(
                f"{where}{key} is another function than the checkpoint's (its code, "
                "defaults or the values it captures)"
            )
        else:
            changes.append(f"{where}{key} {old!r} in the checkpoint, {new!r} now")
    return changes


def _settings(values: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items() if k != "type")


def _diagnose_epoch(
    history: History, epoch: int, model: Module, X: np.ndarray, y: np.ndarray, loss: Loss
) -> None:
    """Record the layers' figures; warn (once per kind) when they say δ vanishes or explodes."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        reports = layer_reports(model, X, y, loss)
    history.diagnostics.append({"epoch": epoch, "layers": [r.to_dict() for r in reports]})
    for message in warnings_for(reports):
        kind = _warning_kind(message)
        if not any(_warning_kind(seen.split(": ", 1)[1]) == kind for seen in history.warnings):
            history.warnings.append(f"epoch {epoch}: {message}")
            warnings.warn(message, RuntimeWarning, stacklevel=5)


def _warning_kind(message: str) -> str:
    """What a diagnostic warning is about, whatever its figures: "δ shrinks", "dense2: …"."""
    if message.startswith(("δ shrinks", "δ grows")):
        return message[:9]
    return message.split(":")[0] + (": dead" if "never fire" in message else ": saturated")


class _Diverged(Exception):
    def __init__(self, step: int, value: float, weightless: bool = False) -> None:
        # weightless: the batch's rows all of classes weighted 0 (Σw = 0), not a divergence
        self.step, self.value, self.weightless = step, value, weightless


def _train_epoch(step, loss_fn, X, y, loop: _Loop, x_batch, y_batch, after_step,
                 X_rows=None) -> bool:  # fmt: skip
    """The epoch's mini-batches from ``loop.step`` on, ``loop``'s sums kept step by step.

    Each batch is gathered into the planned buffers ``x_batch``/``y_batch``; row i of the
    training data is ``X[X_rows[i]]`` when X stays on disk. ``x_batch`` None: X is
    ``SparseRows`` whose batches go to the step as CSR rows. Returns False when
    ``after_step`` asked to stop before the epoch's end.
    """
    batch_size = len(y_batch)
    order = loop.order
    reducer = step.reducer  # distributed: this rank's share of each batch
    by_row = row_masks()
    steps_per_epoch = math.ceil(len(order) / batch_size)
    kind = accuracy_kind(loss_fn)
    ignored = _ignored_label(loss_fn)
    # whether a batch's mean can have a divisor other than its rows (class weights, or
    # rows of the ignored class): decided once an epoch, not asked at every step
    weighs = mean_weight(loss_fn, y) is not None
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is caught here, by name
        for start in range(loop.step * batch_size, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch_rows = len(rows)
            if reducer is not None:
                rows = rows[reducer.ranks.share(batch_rows)]
                reducer.begin(len(rows), batch_rows)
                reducer.ranks.where = f"epoch {loop.epoch}, step {loop.step + 1}"
            yb = y_batch[: len(rows)]
            if x_batch is None:  # CSR rows (row slicing: nnz of the batch, never dense)
                xb = X.matrix[rows if X_rows is None else X_rows[rows]]
            else:
                xb = x_batch[: len(rows)]
                # mode="clip": the rows are a permutation of valid ones, and under the
                # default mode="raise" np.take gathers into a temporary, then copies to `out`
                np.take(X, rows if X_rows is None else X_rows[rows], axis=0, out=xb, mode="clip")
            np.take(y, rows, axis=0, out=yb, mode="clip")
            if by_row is not None:
                by_row.start(loop.global_step(steps_per_epoch), rows)
            value = step(xb, yb) if len(rows) else step.contribute_nothing()
            if by_row is not None:
                by_row.stop()
            # (a batch whose rows are all ignored is NaN by PyTorch's rule, not diverged)
            if not math.isfinite(value) and not counts_no_row(loss_fn, yb):
                raise _Diverged(loop.step + 1, value, weighs and mean_weight(loss_fn, yb) == 0)
            loop.total += _batch_total(loss_fn, value, batch_rows, yb if weighs else None)
            if reducer is not None:  # the global batch's, summed with its loss
                loop.correct += reducer.correct
            else:  # running, as Keras reports
                loop.correct += _correct(kind, step.output, yb, ignored)
            loop.step += 1
            if after_step(value):
                return False
    return True


def _warn_unstepped_schedule(optimizer: Optimizer, name: str) -> None:
    """A schedule the user made on the optimiser and never stepped (a warm-up's LinearLR)
    left a group's lr below its initial_lr: fit's own schedule goes on from that rate,
    as a second PyTorch scheduler made on the optimiser does, while the warm-up, which
    fit never steps, does not run. Said, since the whole run trains at the lower rate."""
    held = _unstepped(optimizer)
    for index, group in enumerate(optimizer.param_groups):
        initial = group.get("initial_lr", group["lr"])
        if index in held and group["lr"] != initial:
            warnings.warn(
                f"lr_schedule={name!r} goes on from the rate the optimiser holds, as a second "
                f"PyTorch scheduler does: a schedule made on it and never stepped (a warm-up's "
                f"LinearLR or ConstantLR) set param_groups[{index}]'s lr to {group['lr']:g} "
                f"(its initial_lr is {initial:g}), and fit steps only its own schedule, so the "
                "warm-up never runs. For a warm-up then a decay pass lr_schedule=SequentialLR("
                "opt, [warm_up, CosineAnnealingLR(opt, T_max)], milestones=[k])",
                UserWarning,
                stacklevel=6,  # the caller of fit
            )
            return


def _make_schedule(
    schedule: str | LRSchedule | None,
    optimizer: Optimizer,
    epochs: int,
    early_stopping: int | None = None,
    min_delta: float = 0.0,
    steps_per_epoch: int = 1,
) -> LRSchedule | None:
    if isinstance(schedule, LRSchedule) and schedule.optimizer is not optimizer:
        raise ConfigError(
            "lr_schedule was built on another optimiser than the one fit trains with; build "
            "it on that optimiser (and pass the optimiser as optimizer=)"
        )
    if isinstance(schedule, ReduceLROnPlateau) and schedule.mode == "max":
        # fit steps it on a loss, which falls as training improves: in mode 'max' (a
        # ported step(val_accuracy)) every better epoch counted as a bad one, and the
        # rate was cut while the model improved, without a word
        raise ConfigError(
            "fit steps a ReduceLROnPlateau on the loss (val_loss, else loss), which falls "
            "as the model improves: make it with mode='min'"
        )
    if schedule is None or isinstance(schedule, LRSchedule):
        return schedule
    if isinstance(schedule, str):
        refuse_unschedulable(optimizer, f"lr_schedule={schedule!r}")
        _warn_unstepped_schedule(optimizer, schedule)
    if epochs == 0 and schedule in ("cosine", "onecycle"):  # (T_max, total_steps: 0)
        raise ConfigError(
            f"lr_schedule={schedule!r} spans the epochs fit trains, and epochs=0 trains "
            "none: leave the schedule out (fit then returns an empty History)"
        )
    if schedule == "step":
        return SCHEDULES["step"](optimizer, step_size=max(1, epochs // 3))
    if schedule == "cosine":
        return SCHEDULES["cosine"](optimizer, T_max=epochs)
    if schedule == "invscaling":
        return SCHEDULES["invscaling"](optimizer)
    if schedule == "onecycle":  # PyTorch's defaults, peaking at each group's lr; the
        # momentum (Adam's β₁) cycled where the optimiser uses one (plain SGD stays plain)
        groups = optimizer.param_groups
        cycle = "betas" in optimizer.defaults or any(g.get("momentum") for g in groups)
        # A second fit on the same optimiser cycles again up to the peak of the first (its
        # lr is then the first cycle's last, 1e-5 of the peak), unless set by hand since.
        done = optimizer.scheduled_lrs
        peaks = [
            g["max_lr"] if "max_lr" in g and done.get(i) == g["lr"] else g["lr"]
            for i, g in enumerate(groups)
        ]
        return SCHEDULES["onecycle"](
            optimizer,
            max_lr=peaks,
            total_steps=epochs * steps_per_epoch,
            cycle_momentum=cycle,
        )
    if schedule == "plateau":
        if early_stopping == 1:
            raise ConfigError(
                "lr_schedule='plateau' with early_stopping=1: early stopping ends the run at "
                "the first epoch without progress, before the rate could be cut; give "
                "early_stopping ≥ 2, or none"
            )
        # cut the rate once the figure has not improved for half early stopping's patience.
        # PyTorch's rule cuts after patience + 1 such epochs: with ⌊P/2⌋ as its patience,
        # early stopping's P = 2 stopped the run at the epoch of the cut, and the rate
        # was never lowered, without a word
        patience = max(1, early_stopping // 2) - 1 if early_stopping else 10
        if early_stopping and min_delta > 0:
            # progress as early stopping counts it, by more than min_delta: PyTorch's
            # default (best·(1 − 1e-4)) took a loss falling by less for progress, and
            # early stopping ended the run before the rate was ever cut, without a word
            return SCHEDULES["plateau"](
                optimizer, patience=patience, threshold=min_delta, threshold_mode="abs"
            )
        return SCHEDULES["plateau"](optimizer, patience=patience)
    got = repr(schedule) if isinstance(schedule, str) else f"a {type(schedule).__name__}"
    if is_torchs(schedule):
        got = f"PyTorch's {type(schedule).__name__} (wxb.optim has its own, on wxb's optimiser)"
    raise ConfigError(f"lr_schedule must be one of {', '.join(SCHEDULES)}; got {got}")


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _same_seed(ranks: Ranks, seed: int | np.random.Generator | None) -> int | np.random.Generator:
    """One seed for every rank: the same shuffles and splits. Rank 0 draws one if none
    was given; generators must be in the same state on every rank."""
    if seed is None:
        return ranks.agree(int(np.random.SeedSequence().entropy % (1 << 63)), "the seed")
    if isinstance(seed, np.random.Generator):
        state = json.dumps(seed.bit_generator.state, sort_keys=True, default=str)
        ranks.check_same([np.frombuffer(state.encode(), np.uint8)], "the seed generators")
    else:  # as text: any whole number, 2⁶³ and beyond too
        ranks.check_same([np.frombuffer(str(int(seed)).encode(), np.uint8)], "the seeds")
    return seed


def _check_batches_scheduled(
    schedule: LRSchedule, epochs: int, steps_per_epoch: int, *, resumed: bool = False
) -> None:
    """A schedule fit steps once a batch must reach the run's last batch: PyTorch's
    OneCycleLR stopped the run there with "Tried to step … times". Resumed, the
    checkpoint's schedule counts from the run's first step."""
    steps = epochs * steps_per_epoch
    try:
        schedule.lr_at(steps if resumed else schedule.epoch + steps, 1.0)
    except ConfigError:
        total = getattr(schedule, "total_steps", "?")
        if resumed:
            most = total // steps_per_epoch if isinstance(total, int) else "?"
            raise ConfigError(
                f"the checkpoint's lr_schedule {type(schedule).__name__} (stepped once a "
                f"batch) has total_steps={total}, short of the {steps} steps of {epochs} "
                f"epochs × {steps_per_epoch} batches: resume with epochs ≤ {most}"
            ) from None
        raise ConfigError(
            f"lr_schedule {type(schedule).__name__} is stepped once a batch: fit takes "
            f"{steps} steps ({epochs} epochs × {steps_per_epoch} batches), past its "
            f"total_steps={total}; make it with "
            f"total_steps={steps} (or epochs={epochs}, steps_per_epoch={steps_per_epoch})"
        ) from None


def _check_savable(schedule: LRSchedule) -> None:
    """A schedule's state goes into the checkpoints as JSON: an attribute of a subclass
    that is not plain data (a model, a callback) is refused now, not at the first save."""
    for key, value in schedule.state_dict().items():
        try:
            json.dumps(ckpt.encode_floats(value), allow_nan=False)  # as the checkpoints write
        except (TypeError, ValueError):
            raise ConfigError(
                f"lr_schedule's attribute {key!r} ({type(value).__name__}) cannot be saved in "
                "a checkpoint, which keeps a schedule's numbers, text and lists; name it with "
                f"a leading underscore ('_{key}') to keep it out of state_dict()"
            ) from None


def _same_start(ranks: Ranks, model: Module) -> None:
    """Rank 0's weights and buffers on every rank (a rank with another architecture is
    stopped by name: a broadcast into other shapes fails in MPI without one)."""
    shapes = [len(p.shape) for p in model.parameters()]
    shapes += [n for p in model.parameters() for n in p.shape]
    ranks.check_same([np.array(shapes, np.int64)], "the models' parameter shapes")
    for p in model.parameters():
        if _writable_in_place(p.data):
            ranks.broadcast_(p.data, "the initial weights")
        else:  # p.data = p.data * 2 on a 0-d parameter leaves a NumPy scalar: a new array
            p.data = ranks.broadcast_(np.array(p.data, order="C"), "the initial weights")
    for _, array in model.named_buffers():
        if _writable_in_place(array):
            ranks.broadcast_(array, "the initial weights")
        else:
            copy = ranks.broadcast_(np.array(array, order="C"), "the initial weights")
            np.copyto(array, copy)


def _same_settings(ranks: Ranks, settings: dict[str, Any]) -> None:
    """Stop every rank, naming what differs, when a rank's fit settings are not rank 0's.
    Ranks sharing one copy of the weights each update their slice with their own rate
    (a rate drawn per rank trained a mixture, and the weights' check saw one copy), and
    another batch size gave each rank's share of another batch (the steps per epoch
    alike: other gradients, other loss figures per rank, without a word)."""

    def plain(value: object) -> object:
        """NumPy's numbers as numbers; another object by its type (a repr may hold an
        address, another on each rank)."""
        if isinstance(value, np.generic | np.ndarray):
            return value.tolist()
        return type(value).__qualname__

    mine = json.loads(json.dumps(ckpt.encode_floats(settings), default=plain))
    first = ranks.agree(mine, "the check of fit's settings")  # rank 0's
    with ranks.together("the check of fit's settings"):
        said = [_where_differ(mine[key], first.get(key), key) for key in mine]
        said = [text for text in said if text]
        if said:
            raise ConfigError(
                f"fit's settings differ from rank 0's: {'; '.join(said)}; every rank must "
                "pass the same settings (draw a random one on rank 0 and share it)"
            )


def _loss_to_compare(loss_fn: Loss) -> dict[str, Any]:
    """The loss's settings, as a checkpoint records them; of a loss of one's own only its
    kind, reduction and code: its other attributes may be state it keeps (its last
    value), another on each rank after a fit."""
    settings = _loss_settings(loss_fn)
    if computes_its_own(loss_fn):
        settings = {k: v for k, v in settings.items() if k in ("type", "reduction", "code")}
    return settings


def _modules_to_compare(model: Module) -> dict[str, Any]:
    """Each module's kind by its path, a stock layer's settings too (a Dropout's p), and
    each parameter's dtype; not the attributes of a module of one's own, which may be
    state (a forward's last statistics), another on each rank after a fit."""
    found: dict[str, Any] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        settings = {"type": type(module).__name__}
        stock = type(module).__module__.partition(".")[0] == "wxb"
        if stock and not module._modules:  # (a container's config: its layers', below)
            try:
                settings = json.loads(json.dumps(module.config()))
            except (WxbError, TypeError, ValueError):
                settings = ckpt.plain_settings(module)
        found[path or "(the model)"] = settings
    found["dtypes"] = {name: str(p.dtype) for name, p in model.named_parameters()}
    return found


def _where_differ(here: Any, there: Any, path: str) -> str | None:
    """The first place where two JSON values differ, with both values; None if alike."""
    if isinstance(here, dict) and isinstance(there, dict) and here.keys() == there.keys():
        return next(
            (t for k in here if (t := _where_differ(here[k], there[k], f"{path}.{k}"))), None
        )
    if isinstance(here, list) and isinstance(there, list) and len(here) == len(there):
        places = (_where_differ(a, there[i], f"{path}[{i}]") for i, a in enumerate(here))
        return next((t for t in places if t), None)
    if here == there:
        return None
    mine, theirs = json.dumps(here), json.dumps(there)
    return f"{path} ({mine} here, {theirs} on rank 0)" if len(mine + theirs) <= 120 else path


def _writable_in_place(array: object) -> bool:
    return isinstance(array, np.ndarray) and array.flags.c_contiguous and array.flags.writeable


def _rank0_agreed(ranks: Ranks | None, what: str) -> Any:
    """A block only rank 0 does something in (the checkpoint folder's checks), after which
    the ranks agree whether it failed: a folder another run held stopped rank 0 at once,
    and the others waited out the timeout (30 s), then named a wait ('no answer from the
    other ranks during setting up the run') instead of the folder."""
    return nullcontext() if ranks is None else ranks.together(what)


def _latest(saver: _Saver, ranks: Ranks | None) -> Any:
    """The checkpoint to resume from: rank 0's choice, read by every rank."""
    if ranks is None:
        return saver.folder.latest()
    found = None
    with ranks.together("the checkpoint to resume"):  # rank 0's refusal (a newer format):
        if ranks.leader:  # the others stop with it, not after a timeout
            found = saver.folder.latest()
    path = ranks.agree(None if found is None else str(found.path), "the checkpoint to resume")
    # agreed too: a rank that could not read it (a folder not shared between machines)
    # raised alone, and rank 0 waited for it until the timeout, naming a wait
    with ranks.together("the checkpoint to resume"):
        if path is not None and not ranks.leader:
            try:
                found = ckpt.read(Path(path))
            except (OSError, ckpt.CheckpointFileError) as error:
                raise ConfigError(
                    f"cannot resume from {path}, rank 0's newest checkpoint, on this rank "
                    f"({error}); the checkpoint folder must be one that every rank sees "
                    "(a shared file system)"
                ) from None
    return found


def _row_masks(
    model: Module,
    masks: np.random.Generator | None,
    shuffles: np.random.Generator,
    distributed: bool,
) -> RowMasks:
    """Keys for the masks by row: one drawn here from the run's mask generator (without a
    seed: from wxb's default generator in one process; distributed, from the state of
    the seed rank 0 drew, the same on every rank), and one per Dropout with a generator
    of its own, drawn from it: the same in every run of a script (and on every rank),
    and another in each later fit, as Keras's seeded Dropout draws new masks in each
    (a resume takes the run's keys from its checkpoint)."""
    own, layers = {}, {}
    for _, module in model.named_modules():
        if isinstance(module, Dropout) and id(module) not in layers:
            layers[id(module)] = len(layers)  # its place: the same on every rank
        generator = getattr(module, "_own_rng", None)
        if isinstance(module, Dropout) and generator is not None and id(generator) not in own:
            own[id(generator)] = int(generator.integers(0, 1 << 63))
    if masks is not None:
        key = int(masks.integers(0, 1 << 63))
    elif distributed:  # the seed rank 0 drew: fresh each run, and the same on every rank
        key = key_of(shuffles)
    else:  # a draw, so that runs without a seed differ (the checkpoints keep the key)
        key = int(as_generator(None).integers(0, 1 << 63))
    return RowMasks(key, own, layers)


def _check_finite_together(X: np.ndarray, where: str, ranks: Ranks) -> None:
    """Each rank checks its share of X's rows (a memory-mapped X is read once, in parts);
    a non-finite value stops every rank with the same message."""
    part = ranks.share(len(X))
    # (SparseRows: checked finite when made, validation.sparse_rows; the ranks still meet)
    found = None if isinstance(X, validation.SparseRows) else validation.first_non_finite(X[part])
    rows = ranks.gather_numbers(
        -1 if found is None else part.start + found[0], f"the check of {where}"
    )
    bad = [row for row in rows if row >= 0]
    if bad:  # every rank stops: the one whose copy holds the value says what it is
        row = min(bad)
        validation.check_finite(X[row : row + 1], where, first_row=row)
        raise DataError(
            f"{where}: row {row} holds a value that is not finite in another rank's copy of "
            "it (this rank's is finite); the ranks must be given the same data"
        )


def _end_rows(X: np.ndarray | validation.SparseRows) -> list[np.ndarray]:
    """X's first and last 64 rows, for the ranks to compare: SparseRows' as their CSR
    arrays (64 dense rows of a TF-IDF table's 50,000 columns are 25 MB)."""
    if not isinstance(X, validation.SparseRows):
        return [X[:64], X[-64:]]
    parts = (X.matrix[:64], X.matrix[-64:])  # (canonical: sparse_rows summed duplicates)
    return [a for part in parts for a in (part.data, part.indices, part.indptr)]


def _digest_rows(X: np.ndarray, rows: np.ndarray | None, ranks: Ranks | None) -> str:
    """A digest of ``X[rows]`` (all of X without ``rows``) for the checkpoints' run record.

    Hashed in blocks of about 1 MiB; with ranks, each rank hashes every K-th block, so a
    memory-mapped X is read once, in parts, and the digest is the same for any K.
    """
    count = len(X) if rows is None else len(rows)
    per_block = max(1, (1 << 20) // max(1, X[:1].nbytes))
    starts = range(0, count, per_block)
    blocks = np.zeros(len(starts), np.int64)
    rank, size = (0, 1) if ranks is None else (ranks.rank, ranks.size)
    for b in range(rank, len(starts), size):
        part = slice(starts[b], starts[b] + per_block)
        block = X[part] if rows is None else np.take(X, rows[part], axis=0)
        blocks[b] = np.frombuffer(bytes.fromhex(ckpt.fingerprint(block))[:8], np.int64)[0]
    if ranks is not None:  # each block's digest comes from one rank, zeros from the rest
        ranks.sum_(blocks, "the digest of the training data")
    return ckpt.fingerprint(np.array([count, *X.shape[1:]], np.int64)) + ckpt.fingerprint(blocks)


def _closing(reducer: GradientSum):
    """An exit for fit's ExitStack. When fit ends on every rank at once (it finished, a
    stop they agreed on, a loss or weights they all found non-finite), the weights,
    state and gradients go back to this rank's own memory, then the ranks let go of the
    shared memory together. On any other error (this rank's own, such as a checkpoint
    that could not be written, or a rank that stopped answering) the others may be
    waiting in a collective that never comes: nothing collective is tried, and ``fit``
    aborts the job with this error's message, rather than after another timeout that
    names something else."""

    def close(kind, error, trace) -> bool:
        if error is not None and not isinstance(error, (TrainingInterrupted, TrainingError)):
            reducer.ranks.failed = error  # fit aborts the job once its contexts are closed
            return False
        reducer.close()  # its waits time out if a rank never comes (then MPI_Abort)
        return False

    return close
