"""The ``wxb`` command: a thin shell over the library.

User errors print one line (``wxb: error: …``) and exit with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, TextIO

import numpy as np

from wxb import __version__, validation
from wxb import data as wdata
from wxb.backend import resolve_dtype
from wxb.checkpoint import CheckpointFolder, is_checkpoint_file
from wxb.columns import (
    TableEncoder,
    case_variants_warning,
    explain_row,
    knows_columns,
    model_encoder,
    reading_for,
    unseen_category_warnings,
)
from wxb.describe import (
    SAMPLE_IDS,
    architecture_diagram,
    backward_diagram,
    forward_diagram,
    graph_diagram,
    input_row,
    markdown_text,
    sample_ids_per_row,
    summary,
)
from wxb.distributed import Ranks, RanksFailed, launched_rank, launched_ranks
from wxb.errors import (
    ConfigError,
    DataError,
    TrainingError,
    TrainingInterrupted,
    WxbError,
    install_hint,
)
from wxb.explanation import explain_model, explain_seed
from wxb.io import load_model, save
from wxb.metrics import (
    classification_figures,
    count_overlap,
    figure_text,
    format_classification,
    format_regression,
    pack_fingerprints,
    regression_figures,
    row_fingerprints,
    share_text,
    unpack_fingerprints,
)
from wxb.nn import (
    ACTIVATIONS,
    LOSSES,
    BatchNorm1d,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Dense,
    Dropout,
    LayerNorm,
    Loss,
    Sequential,
    Standardize,
    get_loss,
)
from wxb.nn.heads import TORCH_LOSSES, class_targets, commands_refuse, trained_loss
from wxb.nn.module import input_width, output_width
from wxb.optim import NAMED_LRS, OPTIMIZERS, SCHEDULES, get_optimizer
from wxb.plots import check_plot_folder as plots_folder_check
from wxb.plots import plot_history
from wxb.prepare import (
    MIN_EPOCHS,
    MIN_PATIENCE,
    MIN_STEPS,
    PATIENCE_STEPS,
    TableData,
    Targets,
    check_classes_fit,
    check_id_name,
    class_logits,
    default_schedule,
    encode_labels,
    encode_targets,
    features_for,
    head_logits,
    is_multilabel,
    model_task,
    numeric_targets,
    predicted_classes,
    prediction_names,
    prediction_table,
    probability_head,
    rounding_warnings,
    scale_targets,
    scaled,
    training_table,
    unscale_output,
)
from wxb.reporting import check_history_matches, read_history
from wxb.reporting import report as write_page
from wxb.tables import (
    COMPRESSED,
    NA_VALUES,
    Table,
    feature_rounding_warnings,
    no_column,
    read_table,
)
from wxb.tensor import Tensor
from wxb.train import check_batch_norm, evaluate, fit, forget_stop_request, request_stop

DEFAULT_HIDDEN = "512"
# what a regression's training figures measure: the network trains on (y − mean)/sd
REGRESSION_LOSS_TERMS = {
    "mse": "½·(ŷ − y)² per row",
    "l1": "|ŷ − y|",
    "huber": "Huber's loss (δ = 1)",
    "smooth_l1": "the smooth L1 loss (β = 1)",
}


def regression_loss_note(loss: str) -> str:
    """What loss and val_loss measure in a regression wxb train trained."""
    spread = "summed over the outputs" if loss == "mse" else "averaged over every output"
    return (
        f"loss and val_loss are {REGRESSION_LOSS_TERMS[loss]} on standardized targets "
        f"((y − mean)/sd, the training part's), {spread}: not the mse wxb eval gives in the "
        "target's units"
    )


def training_loss_note(targets: Targets, class_weight: str) -> str | None:
    """What loss and val_loss in the history measure, where it is not the figure wxb eval
    gives: a regression's on standardized targets, or a loss with class weights."""
    if targets.task == "regression" and targets.loss != "poisson_nll":  # (counts as given)
        return regression_loss_note(targets.loss)
    if class_weight != "none":
        return (
            f"loss and val_loss weigh each row by its class's weight (--class-weight "
            f"{class_weight}): not the unweighted loss of the test figures and wxb eval"
        )
    return None


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.commands: dict[str, argparse.ArgumentParser] = {}  # each command's parser

    def error(self, message: str) -> None:  # one line, status 2, no usage dump
        self.exit(2, f"wxb: error: {message} (see '{self.prog} --help')\n")


class _Joined(argparse.Action):
    """A comma-separated list that may be given more than once, as --target may: each
    repeat adds to it (argparse's last-one-wins kept only the last --drop's columns)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        before = getattr(namespace, self.dest, None)
        setattr(namespace, self.dest, values if before is None else f"{before},{values}")


class _DefaultsShown(argparse.ArgumentDefaultsHelpFormatter):
    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:  # 0 == False, but 0 is shown
            return action.help
        return super()._get_help_string(action)


def _seq_len(text: str) -> int:
    """--seq-len: a positive whole number (argparse's error then says which option)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}")
    return value


SEQ_LEN_HELP = (
    "ids a row of the data, for a model whose Embedding takes ids (default: as many as a "
    "Dense taking them flat says, else the data's: '?', or a sample of 8 for a forward of "
    "its own, named as a default); refused for a model of features"
)


def build_parser() -> _Parser:
    parser = _Parser(
        prog="wxb",
        description="Neural networks as explicit linear algebra: Z = W·X + b, A = f(Z).",
    )
    parser.add_argument("--version", action="version", version=f"wxb {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    # fmt: off
    train = commands.add_parser(
        "train",
        formatter_class=_DefaultsShown,
        help="train a classifier or regressor and save it",
        description="Train a dense network. With no options: the built-in handwritten-digits "
        "data (scikit-learn's), 80/20 stratified train/test split, prints the test accuracy "
        "and writes model.safetensors in the current folder. Under `mpiexec -n K` (the "
        "mpi extra) it trains data-parallel: each batch split across the K ranks, the "
        "same result as one process to rounding; rank 0 prints and writes the files (the "
        "other commands run in one process only).",
    )
    add = train.add_argument
    add("--data", metavar="PATH",
        help="CSV (a header row; also .tsv/.gz/.zst), JSON Lines (.jsonl), Parquet, "
        "Feather or Arrow IPC (.arrow, .arrows stream too), NPY or NPZ (a file: not - for "
        "standard input, which --resume could not read again); default: digits")
    add("--target", metavar="COLUMN", action="append",
        help="the column to predict; several (repeat, or a,b) for multi-output "
        "regression, or one-hot columns: classes by their names")
    add("--features", metavar="COLUMNS", action=_Joined,
        help="use only these columns as features (a,b,c, or repeat)")
    add("--drop", metavar="COLUMNS", action=_Joined,
        help="columns that are not features (a,b, or repeat)")
    add("--id-column", metavar="COLUMN",
        help="a row identifier: never a feature; wxb predict writes it beside each prediction")
    add("--task", choices=("auto", "classification", "regression"), default="auto",
        help="auto: classification for text or few integer labels")
    add("--hidden", default=DEFAULT_HIDDEN, metavar="SIZES",
        help="hidden layer sizes, comma separated; 'none' for none")
    # (softmax, log_softmax and softmin are heads, not hidden activations; nll needs a
    # LogSoftmax head, which wxb train does not build: its cross_entropy is the same loss
    # on logits; threshold needs its two settings, which no flag gives)
    heads = {"softmax", "log_softmax", "softmin", "threshold"}
    add("--activation", choices=sorted(set(ACTIVATIONS) - heads),
        default="relu",
        help="f in A = f(Z) for the hidden layers")
    add("--loss", choices=("auto", *(name for name in LOSSES if name != "nll"), *TORCH_LOSSES),
        default="auto",
        help="auto: cross_entropy for classification, mse for regression (l1, huber and "
        "smooth_l1 are regression losses too, less pulled by outliers; huber's δ and "
        "smooth_l1's β are 1 on the standardized target: one standard deviation in its "
        "units, as wxb explain scores them); poisson_nll regresses counts as they are "
        "(the outputs their log-rates; predict gives the rate), multi_margin (the multi-class "
        "hinge) and soft_margin (two classes as −1/+1) classify; torch's other losses are "
        "wxb.fit's, refused here in one line")
    add("--class-weight", choices=("none", "balanced"), default="none",
        help="balanced: each class's rows weigh n/(classes × its rows) in the loss, the "
        "counts taken on the training rows (scikit-learn's class_weight='balanced'), so "
        "that a rare class is not ignored; classification only")
    add("--optimizer", choices=sorted(OPTIMIZERS), default="adam", help="optimiser")
    add("--lr", type=float, default=None,
        help="learning rate, > 0 (a run at 0 would train nothing); default adam and adamw "
        "1e-3, sgd, rmsprop and adagrad 0.01, nadam and adamax 2e-3, radam 1e-3, adadelta 1, "
        "rprop, asgd and adafactor 0.01, muon 1e-3 (Muon for the weight matrices, its "
        "updates scaled to AdamW's size, and AdamW for the biases: one rate for both)")
    add("--momentum", type=float, default=None,
        help="momentum (sgd, rmsprop and muon only; default 0, muon 0.95)")
    add("--weight-decay", type=float, default=None,
        help="L2 (adam, sgd, rmsprop, adagrad, nadam, radam, adamax, adadelta, asgd) or "
        "decoupled (adamw, adafactor, muon); rprop has none; default 0, adamw and muon 0.01")
    add("--lr-schedule", choices=sorted(SCHEDULES), default=None,
        help="learning-rate schedule: step (× 0.1 every third of the epochs), cosine, invscaling "
        "(1/√(epoch+1)), plateau (× 0.1 once the watched loss has not improved for half the "
        "--patience, or for 11 epochs with --patience 0), onecycle (PyTorch's OneCycleLR, "
        "stepped every batch: from --lr/25 up to --lr over the first 30%% of the run, then "
        "down to --lr/250000, cycling beta1 (adam, adamw, nadam, radam, adamax, muon) or a "
        "--momentum above 0 (sgd, rmsprop, muon) against the rate: muon's momentum on "
        "the weight matrices, its beta1 on the rest); "
        "default: none, a constant rate")
    add("--clip-grad-norm", type=float, default=None, metavar="MAX",
        help="clip ‖∇L‖ to MAX; default: no clipping")
    add("--dropout", type=float, default=0.0, help="dropout rate after each hidden layer")
    add("--norm", choices=("batch", "layer"), default=None,
        help="normalise each hidden layer's Z before its activation: batch (BatchNorm1d, "
        "by the batch; running statistics at predict time) or layer (LayerNorm, by the row); "
        "default: none")
    add("--epochs", type=int, default=None,
        help="passes over the training data; default: enough for at least "
        f"{MIN_STEPS} steps and {MIN_EPOCHS} epochs, early stopping doing the rest")
    add("--batch-size", type=int, default=32, help="samples per mini-batch (B)")
    add("--val-split", type=float, default=0.1,
        help="fraction of the training part held out for validation; 0 turns it off")
    add("--test-split", type=float, default=0.2, help="fraction held out for the test figures")
    add("--patience", type=int, default=None,
        help="early stopping on val_loss (the training loss with --val-split 0) after this "
        "many epochs without progress; 0 turns it "
        f"off; default: {PATIENCE_STEPS} steps' worth of epochs (at least {MIN_PATIENCE})")
    add("--seed", type=int, default=0, help="drives splits, initialisation, shuffling, dropout")
    add("--dtype", choices=("float32", "float64"), default="float32", help="number type")
    add("-o", "--output", default="model.safetensors", metavar="PATH",
        help="model file (safetensors; wxb export then writes ONNX); another format's "
        "name (.pt, .pth, .pkl, .h5, .onnx, a table's .csv, .parquet, …) is refused")
    add("--history", metavar="PATH",
        help="also write the per-epoch history as JSON (another format's name, .csv, … "
        "is refused)")
    add("--report", metavar="PATH",
        help="also write wxb report's HTML page of the model and its training (with the "
        "first test row walked through; another format's name is refused)")
    add("--plots", metavar="DIR",
        help="write loss/accuracy (and --diagnose) curves as PNG files into DIR")
    add("--diagnose", action="store_true",
        help="per epoch: norms of W, ∂L/∂W and δ per layer, dead ReLU and saturated units "
        "(into --history); warn when δ vanishes or explodes")
    add("--checkpoint-dir", metavar="DIR",
        help="write checkpoints into DIR (each epoch, or each --checkpoint-every steps); "
        "Ctrl-C then stops after the current step with a checkpoint")
    add("--checkpoint-every", type=int, default=None, metavar="N",
        help="a checkpoint every N training steps; default: one at the end of each epoch")
    add("--keep-checkpoints", type=int, default=2, metavar="K", help="checkpoints kept in DIR")
    add("--resume", action="store_true",
        help="continue from the newest good checkpoint in --checkpoint-dir, bit for bit "
        "(starts afresh when DIR holds none); what decides the run may not change, "
        "--epochs may (not below the epochs trained, nor past the end of an onecycle "
        "--lr-schedule's cycle), and so may -o, --history, --plots, --report, -q and the "
        "checkpoint settings")
    add("--fingerprint", action="store_true",
        help="store a fingerprint of each training row in the model, so wxb eval can warn "
        "when it is given training rows (anyone holding the model can then test whether a "
        "row was trained on)")
    add("-q", "--quiet", action="store_true",
        help="no progress bar (on a terminal: a bar through each epoch, then its figures)")
    # fmt: on
    add_read_options(train)
    train.set_defaults(run=run_train)

    evaluate_cmd = commands.add_parser(
        "eval",
        formatter_class=_DefaultsShown,
        help="evaluate a saved model on labelled data",
        description="Classification: loss, accuracy, per-class precision, recall and F1, and "
        "the confusion matrix up to 50 classes (a class never predicted, or never present, "
        "has precision or recall 0, as scikit-learn's zero_division=0, and one neither present "
        "nor predicted is left out of the macro F1, as scikit-learn's; the table says which). "
        "Regression: MSE, MAE, "
        "RMSE and R² (of a constant target: 1 when predicted exactly, else 0, as "
        "scikit-learn's force_finite; of one row: nan, as scikit-learn's). Warns when rows "
        "are, as the network takes them in, rows it was trained on (for a model trained with "
        "--fingerprint). Rows without a target are left out, with a count.",
    )
    evaluate_cmd.add_argument("model", metavar="MODEL")
    evaluate_cmd.add_argument("data", metavar="DATA", nargs="?",
                              help="a table with targets (required, here or as --data, "
                              "but for a model wxb train fitted on the built-in digits: "
                              "without it, the test rows training scored); - reads it from "
                              "standard input")  # fmt: skip
    evaluate_cmd.add_argument("--data", dest="data_option", metavar="PATH", help="same as DATA")
    evaluate_cmd.add_argument("--target", metavar="COLUMN", action="append",
                              help="default: the training target; a model with several "
                              "targets pairs its outputs with its own names in any order, or "
                              "with other names by position")  # fmt: skip
    add_read_options(evaluate_cmd, model=True)
    evaluate_cmd.set_defaults(run=run_eval)

    predict = commands.add_parser(
        "predict",
        formatter_class=_DefaultsShown,
        help="predict for the rows of a table (CSV, JSON Lines, Parquet, Feather/Arrow, NPY, NPZ)",
        description="Write one prediction per input row as CSV (to -o, or to standard output), "
        "in the input's order, with the model's --id-column first when the input has it. The "
        "input's columns are found by name; gaps and unseen categories go through the model's "
        "table stage. An input of a header alone (no rows) gives the output's header alone.",
    )
    predict.add_argument("model", metavar="MODEL")
    predict.add_argument(
        "input",
        metavar="INPUT",
        help="a table with the training feature columns (by name); - reads it from standard "
        "input (its format told by its bytes)",
    )
    predict.add_argument("-o", "--output", metavar="OUT.csv",
                         help="the predictions as CSV, a .csv name, or - for standard "
                         "output (default: standard output)")  # fmt: skip
    predict.add_argument("--proba", action="store_true",
                         help="add a probability column per class (classifiers)")  # fmt: skip
    add_read_options(predict, model=True)
    predict.set_defaults(run=run_predict)

    explain = commands.add_parser(
        "explain",
        formatter_class=_DefaultsShown,
        help="the seed's equations with numbers: its examples, or a model on samples",
        description="With no MODEL: the seed's two worked examples computed with numbers, "
        "cross-checked against wxb's backward(). With MODEL: Z = W·X + b, A = f(Z), the loss "
        "and the δ chain of that model on rows of --data (the built-in digits for a model "
        "trained on them), with shapes in the seed's column notation and FLOPs.",
    )
    explain.add_argument("model", metavar="MODEL", nargs="?")
    explain.add_argument("--data", metavar="PATH",
                         help="a table (- reads it from standard input); targets give the "
                         "backward")  # fmt: skip
    explain.add_argument("--target", metavar="COLUMN", action="append",
                         help="default: the training target")  # fmt: skip
    explain.add_argument("--sample", type=int, default=0, metavar="ROW", help="first row")
    explain.add_argument("--rows", type=int, default=1, metavar="B", help="rows from --sample")
    explain.add_argument("--format", choices=("text", "md"), default="text",
                         help="md: Markdown with the equations in LaTeX")  # fmt: skip
    add_read_options(explain, model=True)
    explain.set_defaults(run=run_explain)

    summary_cmd = commands.add_parser(
        "summary",
        formatter_class=_DefaultsShown,
        help="per-layer parameters, FLOPs and activation memory of a saved model",
        description="One row per layer: output shape, parameters, forward and training FLOPs "
        "per sample, activation memory; totals; and the floor of a training step at "
        "--batch-size from this machine's measured GEMM rate.",
    )
    summary_cmd.add_argument("model", metavar="MODEL")
    summary_cmd.add_argument("--batch-size", type=int, default=32, metavar="B",
                             help="the batch B of the memory and floor figures")  # fmt: skip
    summary_cmd.add_argument("--format", choices=("text", "md"), default="text",
                             help="md: a Markdown table")  # fmt: skip
    summary_cmd.add_argument("--no-floor", action="store_true",
                             help="skip the GEMM-rate measurement (about a second)")  # fmt: skip
    summary_cmd.add_argument("--seq-len", type=_seq_len, default=None, metavar="L",
                             help=SEQ_LEN_HELP)  # fmt: skip
    summary_cmd.set_defaults(run=run_summary)

    diagram = commands.add_parser(
        "diagram",
        formatter_class=_DefaultsShown,
        help="Mermaid diagrams of a saved model, in the seed's notation",
        description="architecture: the layers with their sizes; forward / backward: the flow "
        "of Z = W·X + b, A = f(Z) and of the δ chain with shapes for a batch of B; graph: "
        "the computational graph recorded by one training step on a random batch of B.",
    )
    diagram.add_argument("model", metavar="MODEL")
    diagram.add_argument("--kind", choices=("architecture", "forward", "backward", "graph"),
                         default="architecture", help="which diagram")  # fmt: skip
    diagram.add_argument("--batch-size", type=int, default=32, metavar="B",
                         help="the batch B the shapes are drawn for")  # fmt: skip
    diagram.add_argument("--format", choices=("mermaid", "md"), default="mermaid",
                         help="md: inside a ```mermaid fence, for Markdown")  # fmt: skip
    diagram.add_argument("--seq-len", type=_seq_len, default=None, metavar="L",
                         help=SEQ_LEN_HELP)  # fmt: skip
    diagram.set_defaults(run=run_diagram)

    export = commands.add_parser(
        "export",
        formatter_class=_DefaultsShown,
        help="write a saved model as an ONNX file (extra: onnx)",
        description="An ONNX graph for onnxruntime and other runtimes: input 'input' of shape "
        "(batch, features) in the model's dtype, taking raw features (Standardize is inside); "
        "a model whose table stage encodes text or booleans or adds missing indicators takes "
        "one input per column instead (numbers with NaN for missing, booleans as 1 and 0, "
        "text with '' for missing; the graph trims the whitespace around a cell as wxb's "
        "reader does, from opset 20, the default for such a model; below 20 only one space "
        "either side); "
        "output 'output' as wxb's predict gives it (logits for classifiers); class and feature "
        f"names in its metadata. Needs the onnx package: {install_hint('onnx', 'onnx')}.",
    )
    export.add_argument("model", metavar="MODEL")
    export.add_argument("-o", "--output", metavar="OUT.onnx",
                        help="default: MODEL with the suffix .onnx")  # fmt: skip
    export.add_argument(
        "--opset",
        type=int,
        default=None,
        help="ONNX opset (default 17; 20 for a model with text columns)",
    )
    export.set_defaults(run=run_export)

    report_cmd = commands.add_parser(
        "report",
        formatter_class=_DefaultsShown,
        help="one self-contained HTML page of a model and its training",
        description="The model's info, its architecture, forward and backward diagrams "
        "(rendered), the summary table with this machine's rate floor, the walk-through of "
        "one sample (wxb explain's numbers, the equations typeset, each Z, A, δ and ∂L/∂W as "
        "a heat-map and a histogram) and, with --history, the loss and accuracy curves, the "
        "learning rate where it changed (a chart per parameter group) and the per-layer "
        "diagnostics. One HTML file that opens offline: everything it needs "
        "is inside it.",
    )
    report_cmd.add_argument("model", metavar="MODEL", help="a model file wxb saved")
    report_cmd.add_argument("--history", metavar="HISTORY",
                            help="the JSON of wxb train --history for this model")  # fmt: skip
    report_cmd.add_argument("--data", metavar="PATH",
                            help="rows for the walk-through, - from standard input (default: "
                            "the built-in digits for a model trained on them; else no "
                            "walk-through)")  # fmt: skip
    report_cmd.add_argument("--target", metavar="COLUMN", action="append",
                            help="default: the training target")  # fmt: skip
    report_cmd.add_argument("--sample", type=int, default=0, metavar="ROW",
                            help="the row of --data to walk through")  # fmt: skip
    report_cmd.add_argument("--batch-size", type=int, default=32, metavar="B",
                            help="B of the summary and the diagrams")  # fmt: skip
    report_cmd.add_argument("--no-floor", action="store_true",
                            help="skip the GEMM-rate measurement (about a second)")  # fmt: skip
    report_cmd.add_argument("-o", "--output", metavar="OUT.html", default="report.html",
                            help="the page to write (.html; another format's name, "
                            ".csv, .safetensors, …, is refused)")  # fmt: skip
    report_cmd.add_argument("--seq-len", type=_seq_len, default=None, metavar="L",
                            help=SEQ_LEN_HELP)  # fmt: skip
    add_read_options(report_cmd, model=True)
    report_cmd.set_defaults(run=run_report)

    plot = commands.add_parser(
        "plot",
        formatter_class=_DefaultsShown,
        help="PNG curves of a training history (from wxb train --history)",
        description="loss.png, and accuracy.png for a classifier (training and validation "
        "per epoch), and "
        "diagnostics.png (per-layer ‖W‖, ‖∂L/∂W‖, ‖δ‖, dead/saturated units) when the run "
        f"used --diagnose. Needs matplotlib: {install_hint('matplotlib', 'plots')}.",
    )
    plot.add_argument("history", metavar="HISTORY", help="the JSON of wxb train --history")
    plot.add_argument("-o", "--output", metavar="DIR", default="plots",
                      help="the folder for the PNG files")  # fmt: skip
    plot.set_defaults(run=run_plot)
    parser.commands = commands.choices
    return parser


def add_read_options(command: argparse.ArgumentParser, model: bool = False) -> None:
    group = command.add_argument_group("reading the data")
    add = group.add_argument
    # fmt: off
    add("--sep", metavar="CHAR", help="CSV delimiter (default: sniffed from the file; \\t for tab)")
    add("--na-values", metavar="VALUES", action=_Joined,
        help="more cell values meaning missing, comma separated or repeated (always: empty, "
        + ", ".join(v for v in NA_VALUES if v) + ")")
    add("--encoding", default="utf-8", help="the CSV file's text encoding (e.g. latin-1)")
    add("--comment", metavar="CHAR", help="skip CSV lines that start with CHAR")
    add("--decimal", choices=(".", ","),
        help="the CSV's decimal mark (default: ',' where ';' or a tab separates cells "
        "written like 1,5; else '.')")
    # a model's command reads the arrays it was trained on (info["data"]), where the NPZ has them
    trained = "the model's, where the file has it; else " if model else ""
    add("--x-array", metavar="NAME", help=f"NPZ: the array of features (default {trained}X)")
    add("--y-array", metavar="NAME", help=f"NPZ: the array of targets (default {trained}y)")
    # fmt: on


def read_options(args: argparse.Namespace, path: object = None, model=None) -> dict:
    """read_table's options from the command line, and a model's own (its text and
    identifier columns as text, its missing markers, its targets in float64). For an
    NPZ, --target may name the array of targets (as --y-array does)."""
    x_array, y_array = args.x_array, args.y_array
    given = getattr(args, "target", None)
    npz = str(path).lower().endswith(".npz")
    if y_array is None and given and len(given) == 1 and npz:
        y_array = given[0]
    if model is not None and npz:  # the arrays it was trained on, where this file has them
        x_array, y_array = trained_arrays(model.info, path, x_array, y_array)
    sep = args.sep
    if sep in ("\\t", "tab"):
        sep = "\t"
    na_values = [v.strip() for v in (args.na_values or "").split(",") if v.strip()]
    options = {
        "sep": sep,
        "na_values": na_values,
        "encoding": args.encoding,
        "comment": args.comment,
        "decimal": args.decimal,
        "x_array": x_array,
        "y_array": y_array,
    }
    if model is not None:
        own = reading_for(model.info)
        options["na_values"] = [*own["na_values"], *na_values]
        options["as_text"] = own["as_text"]
        options["exact"] = own["exact"]
        options["keep_float64"] = [
            *own["keep_float64"],
            *(column_list(",".join(given or [])) or []),
        ]
        options["float32"] = model.dtype == np.float32
        if own["only"] is not None:  # and, where scored (eval), the targets
            scored = options["keep_float64"] if hasattr(args, "target") else []
            options["only"] = [*own["only"], *scored]
    return options


STDIN = "-"  # a data argument of '-' (predict, eval, explain, report): standard input
STDIN_NAME = "standard input"
# standard input once read, for the rest of the command: each thread its own (commands
# run at once in threads; one ending removed another's copy)
_spooled = threading.local()


def data_name(path: object) -> str:
    """A data argument as messages name it."""
    return STDIN_NAME if str(path) == STDIN else str(path)


def read_data(args: argparse.Namespace, path: str, model=None, **extra: Any) -> Table:
    """read_table of a data argument with the command's reading options; '-' reads the
    table from standard input (`cat new.csv | wxb predict MODEL -`), its messages naming
    it so."""
    if str(path) != STDIN:
        return read_table(path, **read_options(args, path, model), **extra)
    spooled = str(spool_stdin())
    try:
        table = read_table(spooled, **read_options(args, spooled, model), **extra)
    except WxbError as exc:  # named as the user gave it, not by the spooled copy
        raise type(exc)(str(exc).replace(spooled, STDIN_NAME)) from None
    table.source = STDIN_NAME
    return table


def spool_stdin() -> Path:
    """Standard input's bytes in a temporary file named for their format, kept until the
    command ends (a CSV's line numbers are read back from it for messages). The readers
    read a file more than once (the CSV's first look, Parquet's footer), which a pipe
    cannot be; the format is told by the bytes, as there is no file name: NPY, NPZ,
    Parquet, Feather/Arrow (file or stream), gzip/bz2/zstd/lz4 of CSV or JSON Lines,
    JSON Lines (a first '{'), else CSV."""
    if getattr(_spooled, "path", None) is not None:
        return _spooled.path
    stream = getattr(sys.stdin, "buffer", None)
    if sys.stdin is None or stream is None or sys.stdin.closed:
        raise DataError("the table is '-', standard input, which is closed; give a file path")
    if sys.stdin.isatty():  # (it waited for a table typed in)
        raise DataError(
            "the table is '-', standard input, which is a terminal: pipe the table in "
            "(cat new.csv | wxb predict MODEL -) or give its path (./- for a file named '-')"
        )
    folder = Path(tempfile.mkdtemp(prefix="wxb-stdin-"))
    _spooled.folder = folder
    raw = folder / "stdin"
    with raw.open("wb") as handle:
        while chunk := stream.read(1 << 20):
            handle.write(chunk)
    path = folder / f"stdin{_stdin_suffix(raw)}"
    raw.rename(path)
    _spooled.path = path
    return path


# a format's first bytes → the suffix its reader is chosen by
MAGIC = {
    b"\x93NUMPY": ".npy",
    b"PAR1": ".parquet",
    b"ARROW1": ".arrow",
    b"FEA1": ".feather",
    b"\xff\xff\xff\xff": ".arrows",  # an Arrow IPC stream's first message
}
COMPRESSED_MAGIC = {
    b"\x1f\x8b": ".gz",
    b"BZh": ".bz2",
    b"\x28\xb5\x2f\xfd": ".zst",
    b"\x04\x22\x4d\x18": ".lz4",
}


def _stdin_suffix(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(1 << 12)
    for magic, suffix in MAGIC.items():
        if head.startswith(magic):
            return suffix
    if head.startswith(b"PK"):  # a zip: NPZ when its members are arrays
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile:
            names = []
        if names and all(name.endswith(".npy") for name in names):
            return ".npz"
        raise DataError(
            f"{STDIN_NAME} holds a zip archive that is not NPZ (no arrays in it); wxb reads "
            "CSV, JSON Lines, Parquet, Feather/Arrow, NPY or NPZ"
        )
    for magic, suffix in COMPRESSED_MAGIC.items():
        if head.startswith(magic):
            try:
                with _pyarrow_stream(path, COMPRESSED[suffix]) as stream:
                    text = stream.read(1 << 12)
            except OSError as exc:
                raise DataError(
                    f"{STDIN_NAME}: not readable {COMPRESSED[suffix]} ({exc})"
                ) from None
            inner = [kind for magic, kind in MAGIC.items() if text.startswith(magic)]
            if inner or text.startswith(b"PK"):  # as a file's name: CSV and JSON Lines only
                raise DataError(
                    f"{STDIN_NAME} holds {COMPRESSED[suffix]}-compressed "
                    f"{(inner or ['.zip'])[0][1:]} data; wxb reads compressed CSV and JSON "
                    "Lines only: decompress it first"
                )
            return _text_suffix(text) + suffix
    return _text_suffix(head)


def _text_suffix(head: bytes) -> str:
    """JSON Lines where the first thing written is an object, JSON where it is an array
    of objects (which the JSON reader refuses by name, as for a file), else CSV."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"{"):
        return ".jsonl"
    return ".json" if re.match(rb"\[\s*\{", text) else ".csv"


def _pyarrow_stream(path: Path, compression: str):
    import pyarrow as pa

    return pa.input_stream(str(path), compression)


def _forget_stdin() -> None:
    folder = getattr(_spooled, "folder", None)
    _spooled.folder = _spooled.path = None
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def trained_arrays(info: dict, path: object, x_array: str | None, y_array: str | None):
    """--x-array and --y-array, by default the arrays the model was trained on (as its
    file says) where the NPZ holds them: without them eval read X and y again, so a model
    trained on --x-array features --y-array label needed both named anew each time."""
    data = info.get("data") if isinstance(info.get("data"), dict) else {}
    trained = {k: data.get(k) for k in ("x_array", "y_array") if isinstance(data.get(k), str)}
    if not trained or (x_array is not None and y_array is not None):
        return x_array, y_array
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = set(archive.files)
    except (OSError, ValueError, zipfile.BadZipFile):
        return x_array, y_array  # read_table tells what is wrong with the file
    if x_array is None and trained.get("x_array") in names:
        x_array = trained["x_array"]
    if y_array is None and trained.get("y_array") in names:
        y_array = trained["y_array"]
    return x_array, y_array


def column_list(text: str | None) -> list[str] | None:
    return None if text is None else [name.strip() for name in text.split(",") if name.strip()]


def columns_named(text: str | None, table: Table) -> list[str] | None:
    """--features or --drop as given: the column of that name where one has a comma in
    it ('a,b', as --target takes it), else the names between the commas."""
    if text is not None and "," in text and (text.strip() in table or text.strip() in table.unread):
        return [text.strip()]
    return column_list(text)


def given_targets(args: argparse.Namespace, table: Table) -> list[str] | None:
    """--target, or the array --y-array names: an NPZ's targets the user named (the
    model's own target name, 'y', was looked for instead, and not found)."""
    if args.target or not getattr(args, "y_array", None):
        return args.target
    return table.default_targets or None


def target_names(given: list[str] | None, table: Table) -> list[str]:
    """--target as given (repeated, or a,b where no column has that name)."""
    names: list[str] = []
    for item in given or []:
        if item not in table and table.default_targets and table.default_targets[0] == f"{item}0":
            names += table.default_targets  # an NPZ's 2-D target array, one column each
            continue
        names += [item] if item in table or "," not in item else column_list(item) or []
    return names


# ---------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------
def parse_hidden(text: str) -> list[int]:
    if text.strip().lower() in ("", "none"):
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"--hidden takes sizes like 128,64; got {text!r}") from None
    if any(size < 1 for size in sizes):
        raise ConfigError(f"--hidden sizes must be positive; got {text!r}")
    if any(size > MAX_WIDTH for size in sizes):  # NumPy cannot even size such an array
        raise ConfigError(f"--hidden sizes must be at most {MAX_WIDTH:,}; got {text!r}")
    return sizes


MAX_WIDTH = 2**31 - 1  # a layer's units: above it, even one input's weights are 8 GiB


def build_model(
    n_features: int,
    hidden: list[int],
    outputs: int,
    activation: str,
    dropout: float,
    standardize: Standardize,
    rng: np.random.Generator,
    dtype: str,
    norm: str | None = None,
) -> Sequential:
    init = "glorot_uniform"  # as Keras and scikit-learn: better on small tables than He's
    layers: list = [standardize]
    width = n_features
    for index, size in enumerate(hidden, start=1):
        layers.append(Dense(width, size, init=init, seed=rng, dtype=dtype, name=f"hidden{index}"))
        if norm == "batch":
            layers.append(BatchNorm1d(size, dtype=dtype, name=f"batchnorm{index}"))
        elif norm == "layer":
            layers.append(LayerNorm(size, dtype=dtype, name=f"layernorm{index}"))
        layers.append(ACTIVATIONS[activation](name=f"{activation}{index}"))
        if dropout:
            layers.append(Dropout(dropout, seed=rng, name=f"dropout{index}"))
        width = size
    layers.append(
        Dense(width, outputs, init="glorot_uniform", seed=rng, dtype=dtype, name="output")
    )
    return Sequential(*layers)


def check_train_options(args: argparse.Namespace) -> None:
    """Every option checked before any data is read or any file is touched."""
    # (--epochs 0 too, though fit(epochs=0) is taken, as Keras's: train would write an
    # untrained model file and score it as if trained; Python's caller keeps the model)
    if args.epochs is not None and args.epochs < 1:
        raise ConfigError(
            f"--epochs must be ≥ 1; got {args.epochs} (train saves the model it trains: "
            "0 epochs would write an untrained one)"
        )
    if args.batch_size is not None and args.batch_size < 1:
        raise ConfigError(f"--batch-size must be ≥ 1; got {args.batch_size}")
    if args.seed < 0:
        raise ConfigError(f"--seed must be ≥ 0; got {args.seed}")
    if args.patience is not None and args.patience < 0:
        raise ConfigError(
            f"--patience must be ≥ 0 (0 turns early stopping off); got {args.patience}"
        )
    if args.lr_schedule == "plateau" and args.patience == 1:
        raise ConfigError(
            "--lr-schedule plateau cuts the rate after half the --patience without progress; "
            "with --patience 1 early stopping ends the run first: give --patience 2 or more "
            "(0: no early stopping)"
        )
    if not 0 < args.test_split < 1:
        raise ConfigError(
            f"--test-split must be between 0 and 1 (exclusive); got {args.test_split}"
        )
    if not 0 <= args.val_split < 1:
        raise ConfigError(
            f"--val-split must be in [0, 1) (0 turns validation off); got {args.val_split}"
        )
    if not 0 <= args.dropout < 1:
        raise ConfigError(f"--dropout must be in [0, 1); got {args.dropout}")
    ignored = [f"--activation {args.activation}"] * (args.activation != "relu")
    ignored += [f"--dropout {args.dropout:g}"] * (args.dropout > 0)
    ignored += [f"--norm {args.norm}"] * (args.norm is not None)
    if ignored and not parse_hidden(args.hidden):  # (they were dropped without a word)
        raise ConfigError(
            f"{' and '.join(ignored)} act{'s' * (len(ignored) == 1)} on hidden layers, and "
            "--hidden none has none (the model is one Dense layer): leave "
            f"{'it' if len(ignored) == 1 else 'them'} out, or give --hidden sizes"
        )
    if args.clip_grad_norm is not None and not 0 < args.clip_grad_norm < math.inf:
        raise ConfigError(f"--clip-grad-norm must be > 0 and finite; got {args.clip_grad_norm}")
    if args.lr is not None and not 0 < args.lr < math.inf:
        # (the optimisers take 0, as PyTorch's: a frozen group; a whole run at 0 trains nothing)
        zero = " (a rate of 0 trains nothing)" if args.lr == 0 else ""
        raise ConfigError(f"--lr must be > 0 and finite; got {args.lr}{zero}")
    if args.weight_decay is not None and not 0 <= args.weight_decay < math.inf:
        raise ConfigError(f"--weight-decay must be ≥ 0 and finite; got {args.weight_decay}")
    if args.momentum is not None and not 0 <= args.momentum < math.inf:
        raise ConfigError(f"--momentum must be ≥ 0 and finite; got {args.momentum}")
    takes = inspect.signature(OPTIMIZERS[args.optimizer]).parameters
    if args.weight_decay is not None and "weight_decay" not in takes:
        # (refused by the option's name, before the data is read; get_optimizer's said
        # 'weight_decay' after it)
        raise ConfigError(
            f"--weight-decay is not an option of {args.optimizer} (torch's "
            f"{OPTIMIZERS[args.optimizer].__name__} has no weight decay); leave it out, or "
            "pick another --optimizer"
        )
    if args.checkpoint_every is not None and args.checkpoint_every < 1:
        raise ConfigError(f"--checkpoint-every must be ≥ 1; got {args.checkpoint_every}")
    if args.keep_checkpoints < 1:
        raise ConfigError(f"--keep-checkpoints must be ≥ 1; got {args.keep_checkpoints}")
    if args.checkpoint_dir is None and (args.resume or args.checkpoint_every is not None):
        raise ConfigError("--resume and --checkpoint-every need --checkpoint-dir DIR")
    if args.checkpoint_dir is not None and not args.checkpoint_dir.strip():  # (Path: ".")
        raise ConfigError(f"--checkpoint-dir is {args.checkpoint_dir!r}; give a folder")
    if args.checkpoint_dir is not None:
        wdata.check_folder_name(args.checkpoint_dir, "--checkpoint-dir")
    for name in ("history", "report", "plots"):  # '' ("$DIR" unset) wrote nothing, unsaid
        if getattr(args, name) is not None and not getattr(args, name).strip():
            raise ConfigError(f"--{name} is {getattr(args, name)!r}; give a path")
    for name, value in (("-o", args.output), ("--data", args.data)):  # (said '. is a folder')
        if value is not None and not value.strip():
            raise ConfigError(f"{name} is {value!r}; give a path")
    if args.data == STDIN:  # (it said there was no file '-', or read a file of that name)
        raise ConfigError(
            "wxb train reads --data from a file, not standard input ('-'): --resume reads it "
            "again, as does each rank under mpiexec; save the table to a file first"
        )
    if args.checkpoint_dir is not None and Path(args.checkpoint_dir).is_file():
        raise DataError(f"{args.checkpoint_dir} is a file; --checkpoint-dir takes a folder")
    inputs = (Path(args.data),) if args.data else ()
    wdata.check_can_write(args.output, "model", protect=inputs)
    check_format_name(args.output, "wxb train saves a wxb model (safetensors)", ".safetensors")
    if args.history:
        wdata.check_can_write(args.history, "history", protect=inputs, written=(Path(args.output),))
        wdata.check_format_name(args.history, *HISTORY_NAME)
    written = [Path(p) for p in (args.output, args.history) if p]
    if args.report:
        wdata.check_can_write(args.report, "report", protect=inputs, written=tuple(written))
        wdata.check_format_name(args.report, *REPORT_NAME)
        written.append(Path(args.report))
    if args.plots:
        charts = check_plot_folder(
            args.plots, protect=inputs, written=tuple(written), option="--plots"
        )
        if Path(args.plots).resolve() in [p.resolve() for p in written]:
            raise DataError(f"{args.plots}: --plots names a folder; give it a path of its own")
        written += charts
    if args.checkpoint_dir is not None:  # the run's own files there are the checkpoints'
        folder = Path(args.checkpoint_dir).resolve()
        for path in written:
            if path.resolve().parent == folder and (
                path.name == OPTIONS_FILE or is_checkpoint_file(path.name)
            ):
                raise DataError(
                    f"{path} is a file of --checkpoint-dir {args.checkpoint_dir}; "
                    "write it elsewhere"
                )


def check_plot_folder(
    folder: str,
    protect: tuple[Path, ...] = (),
    written: tuple[Path, ...] = (),
    option: str = "-o of wxb plot",
) -> list[Path]:
    """Before any work: the plots' folder is a folder (or can be made), each chart's file
    can be written without destroying an input, another output or a model, and matplotlib
    is here. Returns the charts' paths."""
    charts = plots_folder_check(folder, protect, written, option)
    try:
        import matplotlib  # noqa: F401  (an optional extra)
    except ImportError:
        raise ConfigError(f"plots need matplotlib: {install_hint('matplotlib', 'plots')}") from None
    return charts


def read_training_data(args: argparse.Namespace) -> TableData | wdata.Dataset:
    if args.data is None:
        if args.features or args.drop or args.id_column:
            raise ConfigError("--features, --drop and --id-column need --data")
        _no_npz_arrays(args, "the built-in digits have none")
        return wdata.load_digits()
    float32 = args.dtype == "float32"  # numbers read straight to the model's dtype
    given = column_list(",".join(args.target or [])) or []
    features = column_list(args.features)
    used = None  # with --features: those, the targets and the identifier alone are read
    used_by_roles = {*given, *(args.target or []), args.id_column}  # a clash is told later
    if features is not None and given:
        used = [*features, args.features.strip(), *given, *(args.target or []),
                *filter(None, [args.id_column])]  # fmt: skip
    table = read_table(
        args.data,
        **read_options(args, args.data),
        float32=float32,
        keep_float64=[*given, *(args.target or [])],  # targets in full precision
        as_text=[args.id_column] if args.id_column else [],  # identifiers exactly as written
        exact=[args.id_column] if args.id_column else [],
        only=used,
        skip=[d for d in column_list(args.drop) or () if d not in used_by_roles],
        skip_whole=args.drop.strip() if args.drop and "," in args.drop else None,  # 'a,b'
        targets=[*given, *(args.target or [])],
    )
    targets = target_names(args.target, table) or table.default_targets
    if not targets:
        if str(args.data).lower().endswith(".npz"):
            hint = "" if args.y_array else "; name it with --y-array"
            raise DataError(f"{args.data}: no array {args.y_array or 'y'!r} with the targets{hint}")
        else:
            raise DataError(
                f"{args.data}: name the column to predict with --target (columns: "
                f"{', '.join(table.file_names)})"
            )
    data = training_table(
        table,
        targets,
        columns_named(args.features, table),
        columns_named(args.drop, table) or (),
        args.id_column,
    )
    if data.table.n_rows < 4:
        raise DataError(
            f"{data.source}: {data.table.n_rows} samples are too few to train and test on"
        )
    return data


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    """SIGTERM (a batch scheduler's, `kill`): stop as Ctrl-C stops, after the current
    step with a checkpoint written, not at once with the work since the last checkpoint
    lost; also in a job that ignores SIGINT (one a script started with &), which asked
    to ignore Ctrl-C, not `kill`. Before or after training: at once, as Ctrl-C then."""
    if not request_stop():
        raise KeyboardInterrupt


def run_train(args: argparse.Namespace) -> None:
    # Under mpiexec too: it hands a SIGTERM to every rank, which died of it at once;
    # the ranks' stop is decided together, after a step, as a Ctrl-C's is.
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt)
        try:
            return _run_train(args)
        finally:
            forget_stop_request()  # a request this run did not reach: not the next one's
            if previous is not None:  # None: a handler not set from Python
                signal.signal(signal.SIGTERM, previous)
    return _run_train(args)


def training_loss(targets: Targets, fit_rows: np.ndarray, class_weight: str) -> str | Loss:
    """The loss ``wxb train`` fits: the task's, by name, or with --class-weight balanced
    its classes weighted by n/(classes × their training rows) (scikit-learn's balanced
    weights): as CrossEntropyLoss(weight=…), or for labels on one logit each, each
    label's positives and negatives weighted so (BCEWithLogitsLoss's weight and
    pos_weight). A class without training rows weighs 1: no training row carries it."""
    if class_weight == "none":
        return targets.loss
    y = targets.y[fit_rows]
    rows = len(y)
    if targets.loss == "cross_entropy":
        counts = np.bincount(y, minlength=targets.outputs).astype(np.float64)
        weight = np.where(counts > 0, rows / (targets.outputs * np.maximum(counts, 1)), 1.0)
        names = targets.classes or list(range(targets.outputs))
        shown = ", ".join(f"{name} {w:.3g}" for name, w in zip(names, weight, strict=True))
        print(f"class weights (balanced): {shown}")
        return CrossEntropyLoss(weight=weight)
    positives = (y > 0.5).sum(axis=0).astype(np.float64)
    negatives = rows - positives
    weigh_positives = np.where(positives > 0, rows / (2 * np.maximum(positives, 1)), 1.0)
    weigh_negatives = np.where(negatives > 0, rows / (2 * np.maximum(negatives, 1)), 1.0)
    if targets.classes is not None and len(targets.classes) == 2 and len(positives) == 1:
        # one logit for two named classes: the negatives are the first class, as printed
        # for the cross-entropy ("positives/negatives" named neither)
        (first, second), weights = targets.classes, (weigh_negatives[0], weigh_positives[0])
        print(f"class weights (balanced): {first} {weights[0]:.3g}, {second} {weights[1]:.3g}")
    else:
        print(
            "class weights (balanced), positives/negatives: "
            + ", ".join(
                f"{p:.3g}/{n:.3g}" for p, n in zip(weigh_positives, weigh_negatives, strict=True)
            )
        )
    # w·[(1 − y)·z + (1 + (p − 1)·y)·softplus(−z)]: w on the negatives, w·p on the positives
    return BCEWithLogitsLoss(weight=weigh_negatives, pos_weight=weigh_positives / weigh_negatives)


def _ranks_of_this_job() -> Ranks | None:
    """Under mpiexec -n K, the K ranks that train one model data-parallel; else None."""
    if launched_ranks() == 1:
        return None
    try:
        return Ranks()
    except ConfigError as exc:  # no mpi4py: the same on every rank, said by rank 0
        raise RanksFailed(str(exc), quiet=launched_rank() != 0) from None


def _run_train(args: argparse.Namespace) -> None:
    ranks = _ranks_of_this_job()
    if ranks is not None and not ranks.leader:  # rank 0 alone prints
        sys.stdout = sys.stderr = open(os.devnull, "w")
    # Every rank reads and checks alike; a failure is said once, by rank 0
    with contextlib.nullcontext() if ranks is None else ranks.together("the start", error_text):
        check_train_options(args)
        dtype = str(resolve_dtype(args.dtype))
        hidden = parse_hidden(args.hidden)
        data = read_training_data(args)
        for line in getattr(data, "notes", []):
            print(line)
        for message in getattr(data, "warnings", []):
            print(f"wxb: warning: {message}", file=sys.stderr)
        targets = encode_targets(data, args.task, args.loss)
        if isinstance(data, TableData):
            check_id_name(data.id_column, prediction_names(targets, data.targets), data.source)
        for message in targets.warnings:
            print(f"wxb: warning: {message}", file=sys.stderr)
        if targets.task == "classification" and isinstance(data, TableData):
            what = f"target {data.target!r}"
            message = case_variants_warning(data.source, what, targets.classes or [])
            if message:
                print(f"wxb: warning: {message}", file=sys.stderr)
        if args.class_weight != "none" and targets.task != "classification":
            raise ConfigError(
                f"--class-weight {args.class_weight} weighs classes; this is a "
                f"{targets.reason or targets.task}"
            )
        if args.class_weight != "none" and targets.loss in ("multi_margin", "soft_margin"):
            raise ConfigError(
                f"--class-weight {args.class_weight} weighs cross_entropy's and "
                f"bce_with_logits's classes, not --loss {targets.loss}'s; leave one out"
            )
        if args.class_weight != "none" and ranks is not None and targets.loss == "cross_entropy":
            # fit refuses a distributed weighted mean (each rank's has its own divisor) with
            # advice (reduction='sum') the command line has no option for: said here instead
            raise ConfigError(
                f"--class-weight {args.class_weight} does not run under mpiexec: each rank's "
                "weighted mean would have its own divisor; train in one process (without "
                "mpiexec), or without --class-weight"
            )
        n_rows = len(targets.y)
        stratify = targets.y if targets.task == "classification" and targets.y.ndim == 1 else None
        if targets.loss in ("bce_with_logits", "soft_margin"):  # (one logit's column)
            stratify = targets.y[:, 0]

        rng = np.random.default_rng(args.seed)
        train_rows, test_rows = wdata.split_indices(
            n_rows, args.test_split, rng, stratify, what="--test-split"
        )
        if targets.task == "regression":  # statistics of the training part only
            names = getattr(data, "targets", ["y"])
            scale_targets(targets, train_rows, names, data.source, dtype)
        fit_rows, val_rows = train_rows, None
        if args.val_split:
            kept, held = wdata.split_indices(
                len(train_rows),
                args.val_split,
                rng,
                None if stratify is None else stratify[train_rows],
                what="--val-split",
            )
            val_rows, fit_rows = train_rows[held], train_rows[kept]
        if isinstance(data, TableData):  # fill values and categories from the training rows
            encoder = TableEncoder.fit(data.table, data.features, fit_rows)
            encoder.na_values = read_options(args)["na_values"]  # predict treats them alike
            unseen: dict[str, Counter] = {}
            X = encoder.transform(data.table, dtype, unseen)
            data.encoder = encoder
            for rule in encoder.rules:
                column = f"column {rule.name!r}"
                message = case_variants_warning(data.source, column, rule.categories or [])
                if message:
                    print(f"wxb: warning: {message}", file=sys.stderr)
            for message in held_out_category_warnings(encoder, unseen, data, fit_rows, val_rows):
                print(f"wxb: warning: {message}", file=sys.stderr)
        else:
            X = data.X.astype(dtype)
        validation.check_finite(X, data.source)
        for message in rounded_features(data, fit_rows, dtype):
            print(f"wxb: warning: {message}", file=sys.stderr)
        validation_data = None
        held = 0 if val_rows is None else len(val_rows)
        if val_rows is not None:
            validation_data = (X[val_rows], scaled(targets, targets.y[val_rows]))
        X_train = X[fit_rows]
        loss = training_loss(targets, fit_rows, args.class_weight)
        epochs, patience = default_schedule(len(fit_rows), args.batch_size)
        epochs = args.epochs if args.epochs is not None else epochs
        patience = args.patience if args.patience is not None else patience
        model = build_model(
            X.shape[1],
            hidden,
            targets.outputs,
            args.activation,
            args.dropout,
            Standardize.fit(X_train, feature_names=matrix_columns(data)),
            rng,  # one generator from --seed: the splits above, then initialisation
            dtype,
            args.norm,
        )
        check_batch_norm(model, len(fit_rows), min(args.batch_size, len(fit_rows)), ranks)
        optimizer = make_optimizer(args, model)  # (--momentum with adam: refused here)
        if args.checkpoint_dir is not None:  # recorded by one process; by rank 0 below
            check_resume_options(args, writes=ranks is None)
    if ranks is not None and args.checkpoint_dir is not None:
        # once every rank passed: a start that failed on another rank leaves no options
        # behind (a later run's --resume was compared with them); a failed write is agreed
        with ranks.together("the start", error_text):
            if ranks.leader:  # it alone writes and locks the folder, in fit: checked here
                folder = CheckpointFolder(args.checkpoint_dir)
                folder.check_writable()
                with folder.lock():  # in use by another run?
                    pass
                check_resume_options(args)
    with _train_warnings():  # diagnostics are printed below, one line each
        try:
            history = fit(
                model,
                X_train,
                scaled(targets, targets.y[fit_rows]),
                loss=loss,
                optimizer=optimizer,
                epochs=epochs,
                batch_size=args.batch_size,
                validation_data=validation_data,
                seed=rng,
                early_stopping=patience or None,
                lr_schedule=args.lr_schedule,
                clip_grad_norm=args.clip_grad_norm,
                verbose=False if args.quiet else "auto",
                diagnose=args.diagnose,
                checkpoint_dir=args.checkpoint_dir,
                checkpoint_every=args.checkpoint_every,
                keep_checkpoints=args.keep_checkpoints,
                resume=args.resume,
                distributed=ranks or False,
            )
        except TrainingError as error:  # every rank reaches it together: rank 0 says it
            error.quiet = ranks is not None and not ranks.leader
            raise
        except TrainingInterrupted as stop:
            if stop.checkpoint is not None:
                raise Interrupted(
                    f"interrupted at {stop.where}; checkpoint written to {stop.checkpoint}; "
                    "to continue exactly, run the same command with --resume"
                ) from None
            if stop.best_state is not None:  # early stopping's best so far
                model.load_state_dict(stop.best_state)
            if ranks is not None and not ranks.leader:
                raise Interrupted(f"interrupted at {stop.where}") from None
            finish_model(model, args, data, targets, X, (train_rows, test_rows), held)
            kept = "best" if stop.best_state is not None else "current"
            also = ""
            if args.history and stop.history is not None:  # not an older run's beside it
                stop.history.loss_note = training_loss_note(targets, args.class_weight)
                wdata.atomic_write(args.history, stop.history.to_json().encode())
                also = f" and their history to {args.history}"
            raise Interrupted(
                f"interrupted at {stop.where}; no --checkpoint-dir was set, so it cannot be "
                f"resumed; saved the {kept} weights so far to {args.output}{also}"
            ) from None
    if ranks is not None and not ranks.leader:  # rank 0 writes the model and the history
        return
    if args.checkpoint_dir is not None:
        record_options(args)  # a resume of a folder without them: now accepted
    for message in history.warnings:
        print(f"wxb: warning: {message}", file=sys.stderr)
    if history.resumed_from is not None:
        print(f"resumed from {history.resumed_from}")
    figures = finish_model(model, args, data, targets, X, (train_rows, test_rows), held)
    history.loss_note = training_loss_note(targets, args.class_weight)
    if args.history:
        wdata.atomic_write(args.history, history.to_json().encode())
    if args.plots:
        plot_history(history.to_dict(), args.plots)
    # the first test row walked through (a row the model did not learn from), named as
    # --sample counts the file's rows (rows without a target were dropped before the split)
    first = test_rows[:1]
    first_row = data.file_row(first[0]) if isinstance(data, TableData) else int(first[0])
    if args.report:
        write_page(
            model,
            path=args.report,
            history=history.to_dict(),
            X=X[first],
            y=targets.y[first],
            loss=targets.loss,
            data_source=f"{data.source} (its first test row)",
            sample_label=first_row,
            model_path=args.output,
        )

    kept = history.kept_epoch if history.kept_epoch != history.epochs else None
    stop = "; ".join(
        (["early stop"] if history.stopped_early else [])
        + ([f"kept the best, epoch {kept}"] if kept else [])
    )
    stop = f" ({stop})" if stop else ""
    sizes = "-".join(map(str, [X.shape[1], *hidden, targets.outputs]))
    kind = f" {args.activation}" if hidden else " (linear)"
    if hidden and args.norm is not None:
        kind += f", {'BatchNorm1d' if args.norm == 'batch' else 'LayerNorm'} before each"
    held_text = f", {len(val_rows)} validation" if val_rows is not None else ""
    columns = (
        "" if X.shape[1] == len(features_of(data)) else f" from {len(features_of(data))} columns"
    )
    print(
        f"data: {data.source} ({len(X)} samples, {X.shape[1]} features{columns}); "
        f"{len(fit_rows)} train{held_text}, {len(test_rows)} test"
    )
    print(f"task: {targets.reason}")
    print(
        f"model: {sizes}{kind}, {model.num_parameters():,} parameters; "
        f"{history.epochs} epoch{'s' * (history.epochs != 1)}{stop}"
    )
    print("test " + ", ".join(f"{k} {figure_text(v)}" for k, v in figures.items()))
    print(f"saved model to {args.output}")
    if args.report:  # as wxb report says it
        size = Path(args.report).stat().st_size / 1e6
        print(f"wrote {args.report} ({size:.1f} MB; walk-through: row {first_row} "
              f"of {data.source}, its first test row)")  # fmt: skip


def held_out_category_warnings(
    encoder: TableEncoder,
    unseen: dict[str, Counter],
    data: TableData,
    fit_rows: np.ndarray,
    val_rows: np.ndarray | None,
) -> list[str]:
    """A line a text column whose held-out rows hold categories the training rows lack
    (all zeros in the one-hot, as predict takes them, and scored so): said as predict says
    it, of the validation and test rows, as nothing else shows them."""
    held = data.table.n_rows - len(fit_rows)
    if not unseen or not held:
        return []
    which = "test rows" if val_rows is None else "validation and test rows"
    lines = unseen_category_warnings(encoder, unseen, held, f"{data.source}'s {which}")
    where = f" (categories are taken from the {len(fit_rows)} training rows)"
    return [line + where for line in lines]


def rounded_features(data: TableData | wdata.Dataset, rows, dtype: str) -> list[str]:
    """feature_rounding_warnings on up to 10,000 training rows, read again in float64."""
    if np.dtype(dtype) == np.float64:
        return []
    sample = rows[:: max(1, len(rows) // 10_000)]
    if isinstance(data, TableData):
        X = data.encoder.transform(data.table.take(sample), np.float64)
    else:
        X = np.asarray(data.X[sample], dtype=np.float64)
    return feature_rounding_warnings(matrix_columns(data), X, np.dtype(dtype))


def features_of(data: TableData | wdata.Dataset) -> list[str]:
    return data.features if isinstance(data, TableData) else data.feature_names


def matrix_columns(data: TableData | wdata.Dataset) -> list[str]:
    """The names of X's columns: a table's after its encoding ('colour=red'), once fitted."""
    return data.encoder.outputs if isinstance(data, TableData) else data.feature_names


def finish_model(model, args, data, targets: Targets, X, rows, held: int = 0) -> dict[str, float]:
    """Targets back in their units, what the model needs to be used, test figures; saved.
    ``rows``: the rows training saw (``held`` of them for validation) and the test rows."""
    seen_rows, test_rows = rows
    if targets.task == "regression":
        names = getattr(data, "targets", None) or [data.target]
        for message in rounding_warnings(names, targets.mean, targets.scale, model.dtype):
            print(f"wxb: warning: {message}", file=sys.stderr)
        unscale_output(model.output, targets.mean, targets.scale)  # (a Poisson's: 0, 1)
    info = {
        "task": targets.task,
        "target": data.target,
        "feature_names": features_of(data),
        "loss": targets.loss,
        **({"classes": targets.classes} if targets.classes is not None else {}),
    }
    if targets.loss == "poisson_nll":  # log-rates: wxb predict writes the rate e^x
        info["link"] = "log"
    elif targets.task == "regression":  # the loss's δ or β applied to (y − mean)/scale
        info["target_scale"] = [float(s) for s in np.atleast_1d(targets.scale)]
    if isinstance(data, TableData):
        info["targets"] = data.targets
        info["table"] = data.encoder.to_json()
        if data.id_column:
            info["id_column"] = data.id_column
    # What the model was trained on, for wxb report: the source and the split's sizes.
    info["data"] = {
        "source": str(data.source),
        "rows": len(X),
        "train_rows": len(seen_rows) - held,  # as wxb train prints them
        "validation_rows": held,
        "test_rows": len(test_rows),
        # the split's draw: wxb eval rescores the built-in digits' test rows from these
        "split_seed": int(args.seed),
        "test_split": float(args.test_split),
    }
    if str(data.source).lower().endswith(".npz"):  # eval and the rest read them by default
        reading = read_options(args, data.source)
        for key in ("x_array", "y_array"):
            if reading[key] is not None:
                info["data"][key] = reading[key]
    info["wxb_version"] = __version__
    if args.fingerprint:  # every row training saw: fitted on, or early-stopped on
        info["training_rows"] = pack_fingerprints(row_fingerprints(X[seen_rows]))
    model.info = info
    figures = report(model, X[test_rows], targets.y[test_rows], targets.loss, targets.task)
    model.info["test"] = figures
    save(model, args.output)
    return figures


# The options of wxb train that a resumed run may change: they decide nothing in the run.
# (--data may name the same file by another path: fit compares the data's contents.)
_FREE_OPTIONS = {
    "epochs", "output", "history", "plots", "report", "quiet", "checkpoint_dir",
    "checkpoint_every", "keep_checkpoints", "resume", "run", "command", "data",
}  # fmt: skip
OPTIONS_FILE = "train-options.json"


def check_resume_options(args: argparse.Namespace, writes: bool = True) -> None:
    """With --resume: refuse options that differ from the run in the folder, by name.
    Otherwise record them there for a later resume."""
    options = _decisive_options(args)
    path = Path(args.checkpoint_dir) / OPTIONS_FILE
    if args.resume and path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            saved = None  # unreadable: fit still compares the run itself
        if isinstance(saved, dict):
            # an option the run's wxb did not have yet (--class-weight) ran at its default
            defaults = _decisive_options(build_parser().commands["train"].parse_args([]))
            saved = {**{k: v for k, v in defaults.items() if k not in saved}, **saved}
            saved, options = _as_run(saved), _as_run(options)
            differ = [
                f"--{k.replace('_', '-')} was {saved.get(k)!r}, now {options.get(k)!r}"
                for k in sorted(set(saved) | set(options))
                if saved.get(k) != options.get(k)
            ]
            if differ:
                raise ConfigError(f"cannot resume from {args.checkpoint_dir}: " + "; ".join(differ))
        return
    held = CheckpointFolder(args.checkpoint_dir).listed()
    if not args.resume and held:
        raise ConfigError(
            f"{args.checkpoint_dir} already holds checkpoints of a run; add --resume to "
            "continue it, or give another --checkpoint-dir"
        )
    if args.resume and held:  # checkpoints without options (Python's fit wrote them):
        return  # recorded once the resume is accepted (record_options), not before
    if writes:  # rank 0 alone, in a distributed run
        record_options(args)


def record_options(args: argparse.Namespace) -> None:
    """The options a later --resume must repeat, into the checkpoint folder (if not there)."""
    path = Path(args.checkpoint_dir) / OPTIONS_FILE
    if not path.is_file():
        wdata.atomic_write(path, json.dumps(_decisive_options(args), indent=1).encode())


def _as_run(options: dict) -> dict:
    """The options with --lr, --momentum and --weight-decay as the optimiser runs with
    them: left out, each is its default (a run without --momentum is one with --momentum
    0 on sgd, and a resume may spell it either way)."""
    kind = OPTIMIZERS.get(options.get("optimizer"))
    if kind is None:
        return options
    takes = inspect.signature(kind).parameters
    ran = dict(options)
    for key in ("lr", "momentum", "weight_decay"):
        value = ran.get(key)
        if value is None and key in takes and takes[key].default is not inspect.Parameter.empty:
            value = (
                NAMED_LRS.get(options["optimizer"], takes[key].default)
                if key == "lr"
                else (takes[key].default)
            )
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            ran[key] = float(value)
    return ran


def _decisive_options(args: argparse.Namespace) -> dict:
    """The options that decide a run (a resume must repeat them), by name."""
    return {k: v for k, v in sorted(vars(args).items()) if k not in _FREE_OPTIONS}


def _checkpoint_warning_line(message, category, *args, **kwargs) -> None:
    """Warnings during wxb train as one line each."""
    print(f"wxb: warning: {message}", file=sys.stderr)


# The threads whose wxb train is fitting now. Not warnings.catch_warnings: it swaps the
# process's filters and showwarning, so another thread's warnings came out as wxb's (its
# RuntimeWarnings dropped), and two commands in threads left both swapped for good.
_TRAINING = threading.local()
_SHOW_LOCK = threading.Lock()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """warnings.showwarning once a wxb train has run: its own as one line each (its fit's
    RuntimeWarnings, diagnostics, are printed from the history instead); others' as before."""
    if getattr(_TRAINING, "on", False):
        if not issubclass(category, RuntimeWarning):
            _checkpoint_warning_line(message, category)
        return
    passing = getattr(_TRAINING, "passing", False)
    # reached again through the one it passes to (a wrapper of this one, put over it and
    # wrapped in turn): Python's own, not round again for ever
    show = _PYTHONS_SHOW if passing else _show_warning.previous
    _TRAINING.passing = True
    try:
        show(message, category, filename, lineno, file, line)
    finally:
        _TRAINING.passing = passing


_PYTHONS_SHOW = getattr(warnings, "_showwarning_orig", warnings.showwarning)
_show_warning.previous = warnings.showwarning


@contextlib.contextmanager
def _train_warnings() -> Iterator[None]:
    """This thread's warnings as wxb train shows them, inside the block."""
    with _SHOW_LOCK:  # (installed once, and again after a catch_warnings put another back)
        if warnings.showwarning is not _show_warning:
            _show_warning.previous = warnings.showwarning
            warnings.showwarning = _show_warning
    before = getattr(_TRAINING, "on", False)
    _TRAINING.on = True
    try:
        yield
    finally:
        _TRAINING.on = before


class Interrupted(WxbError):
    """Ctrl-C stopped wxb train: one line, exit status 130."""


def make_optimizer(args: argparse.Namespace, model: Sequential):
    options = {"lr": args.lr, "weight_decay": args.weight_decay}
    if args.momentum is not None:
        if args.optimizer not in ("sgd", "rmsprop", "muon"):
            raise ConfigError(
                "--momentum is an option of sgd, rmsprop and muon; add --optimizer sgd (or "
                "rmsprop, or muon)"
            )
        options["momentum"] = args.momentum
    return get_optimizer(args.optimizer, model.parameters(), **options)


def report(model, X: np.ndarray, y: np.ndarray, loss: str, task: str) -> dict[str, float]:
    """Test figures: loss and accuracy, or MSE and R² (sklearn's definition)."""
    X = validation.as_features(X, model.dtype)
    if task == "regression":  # against the targets as given: rounding them to the model's
        # float32 would move both figures (targets near 1e8 round in steps of 8)
        y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        output = model.predict(X)
        pred = predictions(model, output).reshape(len(y), -1)
        residual = ((pred - y) ** 2).sum()
        r2 = regression_figures(y, pred)["r2"]  # per output, averaged; a constant column exactly
        figures = {"mse": float(residual / y.size), "r2": r2}
        if loss in ("poisson_nll", "poisson"):  # its own loss too, on the log-rates (rates)
            # as trained; scikit-learn's Poisson: torch's poisson_nll of them (heads.trained_loss)
            figures = {**evaluate(model, X, y, get_loss(trained_loss(model.info, loss))), **figures}
        if loss == "poisson" and (y >= 0).all():  # and the figure scikit-learn gives it
            # (mean_poisson_deviance; of several outputs, their mean)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                half = np.where(y > 0, y * np.log(y / pred), 0.0) - y + pred  # (0·log 0 = 0)
            figures["poisson_deviance"] = float(2 * half.mean())
        return figures
    y = y if y.ndim == 1 else y.astype(model.dtype)
    if probability_head(model) is None:  # (with the options fit recorded: multi_margin's p)
        return evaluate(model, X, y, get_loss(trained_loss(model.info, loss)))
    # outputs that are already probabilities: the loss of the logits the head turned
    # into them (exact, as explain scores it; log p is not where p rounded to 0)
    logits = head_logits(model, X)
    # the class from the model's own outputs p, as predict and eval's table take it (a
    # p of exactly ½ from a tiny z is class 0 there)
    predicted = predicted_classes(class_logits(model, model.predict(X)))
    truth = (y[:, 0] > 0).astype(np.int64) if y.ndim == 2 else y  # (0/1, soft_margin's ±1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        value = float(get_loss(loss)(Tensor(logits), y).data)
    return {"loss": value, "accuracy": float(np.mean(predicted == truth))}


def predictions(model, output: np.ndarray) -> np.ndarray:
    """A regression's outputs as the numbers it predicts (float64): e^x of a log link's
    (a Poisson's log-rates), as wxb predict writes them."""
    output = output.astype(np.float64)
    return np.exp(output) if model.info.get("link") == "log" else output


# ---------------------------------------------------------------------------------
# eval and predict
# ---------------------------------------------------------------------------------
def run_eval(args: argparse.Namespace) -> None:
    if args.data and args.data_option and args.data != args.data_option:
        # (one of them was read and the other ignored without a word)
        raise ConfigError(
            f"wxb eval takes one table: DATA is {args.data}, --data {args.data_option}; "
            "give one of them"
        )
    data = args.data or args.data_option
    model = load_model(args.model)  # (a model that cannot be read: that, first)
    test = None if data is not None else digits_test_rows(model, args)
    if data is None and test is None:
        raise ConfigError(f"name the data to evaluate on: wxb eval MODEL DATA{_digits_test(model)}")
    if refused := commands_refuse(model, "wxb eval"):
        raise ConfigError(f"{args.model}: {refused}")
    if is_multilabel(model):
        raise ConfigError(
            f"{args.model}: wxb eval does not evaluate a multilabel model yet (wxb predict does "
            "predict with it; wxb.evaluate(model, X, y) scores it)"
        )
    notices: list[str] = []
    if test is not None:
        labelled, data = test, "built-in digits (the test rows wxb train scored)"
        X = features_for(model, test)
    else:
        table = read_data(args, data, model)
        labelled = labelled_rows(model, table, given_targets(args, table), data_name(data))
        X = features_for(model, labelled.table, notices=notices)
    for message in notices:  # (categories not seen in training)
        print(f"wxb: warning: {message}", file=sys.stderr)
    task, loss, classes = model_task(model)
    warn_if_task_guessed(model, args.model, task)
    if task == "classification":
        truth = encode_labels(classes, labelled)
        y = class_targets(loss, truth)  # (one logit's 0/1 column, soft_margin's −1/+1)
    elif test is not None:
        y = test.y.astype(np.float64).reshape(len(test.y), -1)
    else:
        y = numeric_targets(labelled.y, labelled).reshape(len(labelled.y), -1)
        width = output_width(model)
        if width and y.shape[1] != width:  # (a model from wxb.fit has no target names)
            raise DataError(
                f"{data}: the model predicts {width} target{'s' * (width > 1)}; --target "
                f"names {y.shape[1]} ({', '.join(labelled.targets)}): name one column for "
                "each output, in the model's order"
            )
    for line in getattr(labelled, "notes", ()):
        print(line)
    stored = model.info.get("training_rows")
    if stored is not None:
        seen = count_overlap(unpack_fingerprints(stored), X)
        if seen:  # as the network sees them: a gap filled in may make a new row one of them
            print(
                f"wxb: warning: {seen} of {len(X)} rows ({share_text(seen, len(X))}) are, as the "
                "network takes them in, rows it was trained on; these figures overstate how "
                "the model does on new data",
                file=sys.stderr,
            )
    with np.errstate(over="ignore", invalid="ignore"):  # said in one line just below
        output = model.predict(X)
    if test is None:
        check_outputs_finite(output, labelled.table, args.model)
    elif not np.isfinite(output).all():
        raise DataError(f"{args.model} gives outputs that are inf or NaN on the digits' test rows")
    check_classes_fit(model, output, args.model)  # before a label index is scored
    figures = report(model, X, y, loss, task)
    print(
        f"{data_name(data)}: {len(X)} samples; "
        + ", ".join(f"{k} {figure_text(v)}" for k, v in figures.items())
    )
    if loss == "poisson":  # which of the Poisson losses "loss" is (they differ by a constant)
        print(
            "loss: torch's poisson_nll_loss of the log-rates x, e^x − y·x (wxb.evaluate's); "
            + (
                "poisson_deviance: scikit-learn's mean_poisson_deviance of the rates e^x "
                "(of several outputs, their mean)"
                if "poisson_deviance" in figures
                else "no poisson_deviance: the targets hold numbers below 0"
            )
        )
    if task == "classification":
        predicted = predicted_classes(class_logits(model, output))
        print(format_classification(classification_figures(truth, predicted, classes)))
    else:
        named = getattr(labelled, "targets", None) or [labelled.target]
        names = named if len(named) == y.shape[1] else None
        print(format_regression(regression_figures(y, predictions(model, output)), names))


def check_outputs_finite(output: np.ndarray, table: Table, model_path: str) -> None:
    """Refuse outputs that are inf or NaN (inputs far beyond the training data overflow
    the network): no class can be read from them, and no figure scored."""
    message = outputs_not_finite(output, table, model_path)
    if message:
        raise DataError(message)


def outputs_not_finite(output: np.ndarray, table: Table, model_path: str) -> str | None:
    """Which rows' outputs are inf or NaN, as a message (None: all finite)."""
    # (each row's values; (len, -1) cannot be reshaped from no rows)
    bad = ~np.isfinite(output.reshape(len(output), math.prod(output.shape[1:]))).all(axis=1)
    if not bad.any():
        return None
    rows = np.flatnonzero(bad)
    return (
        f"{table.source}, {table.row_names(rows)}: {model_path} gives outputs that are "
        f"not finite numbers ({len(rows)} row{'s' * (len(rows) > 1)}); their inputs may "
        "lie far outside the data it was trained on"
    )


def warn_if_task_guessed(model, path: str, task: str) -> None:
    """A model saved from a loop of one's own records no task: say what its outputs were
    taken for (several outputs: class scores), and how to say otherwise."""
    if model.info.get("task") or model.info.get("loss"):
        return
    width = output_width(model) or 1
    taken = "class scores" if task == "classification" else "numbers (a regression)"
    print(
        f"wxb: warning: {path} records no task; its {width} output{'s' * (width > 1)} "
        f"{'are' if width > 1 else 'is'} read as {taken}: set model.info['task'] = "
        "'regression' or 'classification' before wxb.save to say which",
        file=sys.stderr,
    )


def labelled_rows(model, table: Table, given: list[str] | None, data: object) -> TableData:
    """The table's rows that have a target, with the targets read (the training target
    by default)."""
    targets = target_names(given, table) or model.info.get("targets")
    own = model.info.get("targets") or []
    # a classifier trained on one-hot columns (pd.get_dummies, or an NPZ's one-hot y whose
    # columns y0, y1, … are classes 0, 1, …), one per class: a column of its class names
    # holds the same targets
    classes = model.info.get("classes") or [None]
    labels = len(targets or []) == 1 and len(own) == len(classes) > 1
    labels = labels and model_task(model)[0] == "classification"
    if given and len(own) > 1 and not labels:  # a multi-output model: outputs pair by name
        if set(targets) == set(own):
            targets = list(own)  # named in another order: the model's order
        elif len(targets) != len(own):
            raise DataError(
                f"the model predicts {len(own)} targets ({', '.join(own)}); --target names "
                f"{len(targets)} ({', '.join(targets)}): name all of them"
            )
        else:  # other names pair by position; one of the model's own must sit at its place
            for position, name in enumerate(targets):
                if name in own and own.index(name) != position:
                    raise DataError(
                        f"--target names {name!r} as output {position + 1}, but the model "
                        f"predicts it as output {own.index(name) + 1} of {len(own)} "
                        f"({', '.join(own)}); other names pair with the outputs by position: "
                        "give them in the model's order"
                    )
    if not targets:
        target = model.info.get("target")
        targets = [target] if target and target in table else table.default_targets
    if not targets or any(name not in table for name in targets):
        absent = [name for name in targets if name not in table]
        if absent:
            raise DataError(f"{data}: --target: {no_column(absent[0], table.file_names)}")
        raise DataError(
            f"{data}: name the target column with --target (columns: {', '.join(table.file_names)})"
        )
    features = [
        n for n in model_encoder(model.info, table).columns if n in table and n not in targets
    ]
    # the columns as read: the model's encoder reads each as the model learned it, as
    # predict does ('5' and 'S' stay categories, not numbers with a typo)
    labelled = training_table(table, targets, features or None, read_numbers=False)
    # then every other column, by position; so too an array's (--target x3 of an NPY:
    # the model trained on x0…x2, and eval counted x3 among its features)
    if not knows_columns(model.info) or labelled.table.positional:
        rest = {n: c for n, c in labelled.table.columns.items() if n not in targets}
        labelled.table = replace(labelled.table, columns=rest)
    return labelled


def run_export(args: argparse.Namespace) -> None:
    output = Path(args.output) if args.output else Path(args.model).with_suffix(".onnx")
    # as given: Path() drops the separator that ends 'out/', which became a file 'out'
    wdata.check_can_write(args.output or output, "ONNX file", protect=(Path(args.model),))
    check_format_name(output, "wxb export writes ONNX", ".onnx")
    from wxb.onnx import TEXT_OPSET, export  # the onnx package is imported only when exporting

    model = load_model(args.model)
    export(model, output, opset=args.opset)
    stage = model.info.get("table")
    if stage is not None and not TableEncoder.from_json(stage).is_plain:
        encoder = TableEncoder.from_json(stage)
        import onnx

        opset = next(i.version for i in onnx.load(str(output)).opset_import if not i.domain)
        trims = (
            "any whitespace around them trimmed as wxb's reader trims it"
            if opset >= TEXT_OPSET
            else f"one space either side handled, more not (opset {opset}: trim them first)"
        )
        texts = any(rule.kind == "text" for rule in encoder.rules)
        bools = [rule.name for rule in encoder.rules if rule.kind == "bool"]
        print(
            f"wrote {output} (ONNX: one input per column, {len(encoder.columns)} in all, each "
            f"(batch, 1): numbers {model.dtype} with NaN for missing"
            # a boolean's input is a number too: said, or True/False is a guess
            + (f", booleans ({', '.join(bools)}) as 1 and 0 in it" if bools else "")
            + (f", text as strings with '' for missing, {trims}" if texts else "")
            + ")"
        )
        return
    width = input_width(model)
    print(f"wrote {output} (ONNX: input (batch, {width or 'features'}) {model.dtype})")


def run_plot(args: argparse.Namespace) -> None:
    check_plot_folder(args.output, protect=(Path(args.history),))
    record = read_history(args.history)  # checked whole: no chart is drawn from a bad one
    for path in plot_history(record, args.output):
        print(f"wrote {path}")


def run_summary(args: argparse.Namespace) -> None:
    if args.batch_size < 1:
        raise ConfigError("--batch-size must be ≥ 1")
    model = load_model(args.model)
    check_seq_len(model, args)
    if args.no_floor:
        table = summary(model, args.batch_size, seq_len=args.seq_len)
    else:
        table = model.summary(args.batch_size, seq_len=args.seq_len)
    print(table.markdown() if args.format == "md" else table.text())


def run_diagram(args: argparse.Namespace) -> None:
    if args.batch_size < 1:
        raise ConfigError("--batch-size must be ≥ 1")
    model = load_model(args.model)
    check_seq_len(model, args)
    with sample_ids_per_row(args.seq_len):  # (a model taking ids: rows of L of them)
        text = _diagram(model, args)
    print(f"```mermaid\n{text}\n```" if args.format == "md" else text)


def _is_lookup(module: object) -> bool:
    return hasattr(module, "num_embeddings")  # (an Embedding, as input_width tells one)


def _diagram(model, args: argparse.Namespace) -> str:
    if args.kind == "architecture":
        text = architecture_diagram(model)
    elif args.kind == "forward":
        text = forward_diagram(model, args.batch_size)
    elif args.kind == "backward":
        text = backward_diagram(model, args.batch_size)
    else:  # one training step's recorded graph, on random rows of the right shape
        model.train()  # as in training: Dropout records its mask
        rng = np.random.default_rng(0)
        length, ids = input_row(model)
        if ids:  # ids within every Embedding's rows (floats it refuses), L a row
            vocab = min(m.num_embeddings for _, m in model.named_modules() if _is_lookup(m))
            X = rng.integers(0, vocab, (args.batch_size, length or SAMPLE_IDS))
        else:
            X = rng.standard_normal((args.batch_size, input_width(model) or 1))
            X = X.astype(model.dtype)
        _, loss, classes = model_task(model)
        width = output_width(model) or 1
        out = model(X)
        if loss in ("cross_entropy", "multi_margin"):
            y = rng.integers(0, len(classes), size=args.batch_size)
        elif loss == "multilabel_margin":  # each row's labels, −1 ending them
            y = rng.integers(-1, width, size=(args.batch_size, width))
        else:  # (rows of ids looked up, no Dense after: each row's (L, d) as it is)
            y = rng.standard_normal(out.shape if out.ndim > 2 else (args.batch_size, width))
            if loss in ("bce_with_logits", "multilabel_soft_margin"):
                y = y > 0
            elif loss in ("soft_margin", "hinge_embedding"):  # labels −1/+1
                y = np.where(y > 0, 1, -1)
            y = y.astype(model.dtype)
        # the loss with the options fit recorded (a margin): the graph training records
        text = graph_diagram(get_loss(trained_loss(model.info, loss))(out, y), model)
    return text


def run_report(args: argparse.Namespace) -> None:
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be ≥ 1; got {args.batch_size}")
    if args.sample < 0:
        raise ConfigError(f"--sample must be ≥ 0; got {args.sample}")
    inputs = [Path(p) for p in (args.model, args.history, args.data) if p and p != STDIN]
    wdata.check_can_write(args.output, "report", protect=tuple(inputs))
    wdata.check_format_name(args.output, *REPORT_NAME)
    model = load_model(args.model)
    check_seq_len(model, args)
    if args.history is not None:  # checked before the data is read or the GEMM measured
        check_history_matches(model, read_history(args.history), args.history)
    rows = None
    if args.data is not None or trained_on_digits(model):
        args.rows = 1
        rows = explain_rows(model, explain_data(model, args), args)
    else:  # no walk-through: an option that picks its row or target would do nothing
        given = [
            f"--{k}" for k, unset in (("target", None), ("sample", 0)) if getattr(args, k) != unset
        ]
        if given:
            raise ConfigError(
                f"{' and '.join(given)} {'needs' if len(given) == 1 else 'need'} --data: "
                f"the rows to walk through ({args.model} was not trained on the built-in digits)"
            )
    width = None if rows is None else rows.X.shape[-1]
    if args.seq_len is not None and width is not None and width != args.seq_len:
        raise ConfigError(  # (the walk-through runs the data's rows: L is theirs)
            f"--seq-len {args.seq_len}, but the rows of {rows.source} hold {width}; leave "
            "--seq-len out where --data gives the rows"
        )
    write_page(
        model,
        path=args.output,
        history=args.history,
        X=None if rows is None else rows.X,
        y=None if rows is None else rows.y,
        loss=None if rows is None else rows.loss,
        data_source=None if rows is None else rows.source,
        sample_label=args.sample,
        row_stage=None if rows is None else rows.stage,
        batch_size=args.batch_size,
        floor=not args.no_floor,
        model_path=args.model,
        seq_len=args.seq_len,
    )
    size = Path(args.output).stat().st_size
    walk = f"row {args.sample} of {rows.source}" if rows is not None else "no rows (give --data)"
    print(f"wrote {args.output} ({size / 1e6:.1f} MB; walk-through: {walk})")


def run_explain(args: argparse.Namespace) -> None:
    fmt = "markdown" if args.format == "md" else "text"
    if args.model is None:
        given = [f"--{k}" for k, unset in (("data", None), ("target", None), ("sample", 0),
                                           ("rows", 1)) if getattr(args, k) != unset]  # fmt: skip
        if given:  # (the seed's examples were printed, and these options ignored)
            raise ConfigError(
                f"{' and '.join(given)} {'needs' if len(given) == 1 else 'need'} a MODEL: "
                "wxb explain MODEL --data PATH (alone, wxb explain works the seed's examples)"
            )
        print(explain_seed(fmt).render())
        return
    if args.sample < 0:  # each named alone, with its value, as wxb report names them
        raise ConfigError(f"--sample must be ≥ 0; got {args.sample}")
    if args.rows < 1:
        raise ConfigError(f"--rows must be ≥ 1; got {args.rows}")
    model = load_model(args.model)
    rows = explain_rows(model, explain_data(model, args), args)
    if rows.stage and fmt == "markdown":  # a list, its names shown literally
        print("\n".join(f"- {markdown_text(line.strip())}" for line in rows.stage) + "\n")
    elif rows.stage:
        print("\n".join(rows.stage) + "\n")
    # scored as wxb eval scores it: the model's loss, on a probability head's p itself
    shown = len(rows.X)  # --rows past the file's end: the rows there are
    label = (
        f"row {args.sample} of {rows.source}"
        if shown == 1
        else f"rows {args.sample}–{args.sample + shown - 1} of {rows.source}"
    )
    explanation = explain_model(
        model, rows.X, rows.y, rows.loss, sample_rows=None, fmt=fmt, rows_label=label
    )
    print(explanation.render())
    if rows.y is None:  # said, not left to be noticed missing
        print(
            "\n(the forward pass only: the rows have no target column; --target COLUMN adds "
            "the loss and the backward)"
        )


@dataclass
class ExplainRows:
    """Rows --sample … --sample + --rows − 1 as the network reads them (X), their targets
    as the loss takes them (None: the forward pass only), and how the table stage made
    the first of them from its raw columns (empty for plain numbers)."""

    X: np.ndarray
    y: np.ndarray | None
    loss: str | Loss | None
    stage: list[str]
    source: str


def explain_rows(model, data: Table | wdata.Dataset, args: argparse.Namespace) -> ExplainRows:
    """The rows wxb explain and wxb report walk through (args: sample, rows, target)."""
    source = data.source
    rows = slice(args.sample, args.sample + args.rows)
    n_rows = data.X.shape[0] if isinstance(data, wdata.Dataset) else data.n_rows
    if args.sample >= n_rows:
        raise DataError(f"{source}: --sample {args.sample} but it has {n_rows} rows")
    if isinstance(data, Table):
        data = data.take(np.arange(n_rows)[rows])
        labelled = None
        given = given_targets(args, data)
        if _has_targets(model, data, given):
            try:
                labelled = labelled_rows(model, data, given, data_name(args.data))
            except DataError as exc:
                if "no row has a target value" not in str(exc):
                    raise
                labelled = None
            if labelled is None or labelled.table.n_rows != data.n_rows:
                first = args.sample
                raise DataError(
                    f"{source}: row {first}'s target is missing; explain the forward pass of "
                    "such a row from a file without the target column, or pick another --sample"
                    if args.rows == 1
                    else f"{source}: some of rows {first}–{first + args.rows - 1} have no target"
                )
        # without the target column, as eval reads them: a model without feature names
        # takes every column it is given, and read the target as a feature
        notices: list[str] = []
        X = features_for(model, data if labelled is None else labelled.table, notices=notices)
        for message in notices:  # (categories not seen in training)
            print(f"wxb: warning: {message}", file=sys.stderr)
    else:
        X = features_for(model, data)[rows]
        labelled = wdata.Dataset(X, data.y[rows], data.feature_names, data.target, source)
    y, loss = None, None
    if labelled is not None and labelled.y is not None:
        task, loss, classes = model_task(model)
        if task == "classification" and not is_multilabel(model):
            y = class_targets(loss, encode_labels(classes, labelled))
        else:  # (several labels a row: their columns as given, as the loss takes them)
            y = numeric_targets(labelled.y, labelled).reshape(len(labelled.y), -1)
        loss = trained_loss(model.info, loss)  # Huber's δ, multi_margin's p as training applied
    stage_lines: list[str] = []
    stage = model.info.get("table")
    if isinstance(data, Table) and stage is not None:
        encoder = TableEncoder.from_json(stage)
        if not encoder.is_plain:  # raw row → X: what the network's first layer reads
            lines = explain_row(encoder, data, 0)
            stage_lines = [
                f"Table stage (saved in the model) on row {args.sample}: "
                f"{len(encoder.columns)} columns → X of {len(encoder.outputs)} inputs",
                *(f"  {line}" for line in lines),
            ]
    return ExplainRows(X, y, loss, stage_lines, str(source))


def _has_targets(model, table: Table, given: list[str] | None) -> bool:
    """Targets to explain the backward with: --target, or the training target when the
    rows have it, or (a model that names none) the file's own, an NPZ's y, as wxb eval
    takes them (without any, the forward pass only)."""
    if given:
        for name in target_names(given, table):
            table[name]
        return True
    targets = model.info.get("targets")
    if not targets:  # as labelled_rows finds them
        target = model.info.get("target")
        targets = [target] if target and target in table else table.default_targets
    return bool(targets) and all(name in table for name in targets)


def _digits_test(model) -> str:
    """For a model trained on the built-in digits, where its test figures are: a user of
    `wxb train` then `wxb eval model.safetensors` looked for the digits' test rows, which
    no file keeps apart (the split is drawn by train's --seed and --test-split)."""
    if not trained_on_digits(model):
        return ""
    test = model.info.get("test") or {}
    figures = ", ".join(
        f"{k} {test[k]:.4f}" for k in ("loss", "accuracy") if isinstance(test.get(k), float)
    )
    scored = f" ({figures})" if figures else ""
    return (
        "; the model was trained on the built-in digits, whose test rows wxb train scored "
        f"as it saved it{scored}: wxb report MODEL shows those figures"
    )


def digits_test_rows(model, args: argparse.Namespace) -> wdata.Dataset | None:
    """For `wxb eval MODEL` of a model wxb train fitted on the built-in digits: the test
    rows it scored, drawn again from the split's seed and fraction its file records, as
    wxb train drew them (the first draw of its generator, stratified by class); None for
    any other model, or one whose file does not record them (saved before wxb did)."""
    held = model.info.get("data")
    if not trained_on_digits(model) or not isinstance(held, dict):
        return None
    seed, fraction = held.get("split_seed"), held.get("test_split")
    if not isinstance(seed, int) or not isinstance(fraction, float):
        return None
    _no_npz_arrays(args, "the built-in digits have none")
    digits = wdata.load_digits()
    stratify = digits.y if model_task(model)[0] == "classification" else None
    rng = np.random.default_rng(seed)
    _, rows = wdata.split_indices(len(digits.y), fraction, rng, stratify, what="test_split")
    if held.get("rows") != len(digits.y) or held.get("test_rows") != len(rows):
        raise DataError(
            f"{args.model}: its file says {held.get('test_rows')} test rows of "
            f"{held.get('rows')}; the built-in digits' split gives {len(rows)} of "
            f"{len(digits.y)} (another scikit-learn's digits?): name the data, wxb eval MODEL DATA"
        )
    return wdata.Dataset(digits.X[rows], digits.y[rows], digits.feature_names, digits.target,
                         digits.source)  # fmt: skip


def trained_on_digits(model) -> bool:
    """Whether the model was trained on the built-in digits (as its file says; a file
    that does not say, wxb train's before it did: 64 inputs named as the digits' pixels,
    a Standardize first and the test figures wxb train records). A model fitted in Python
    is not: of no names (on arrays), or named by a DataFrame of the digits (X / 16 carries
    their pixel names too), its rows are unknown, and the raw digits put its Z 16 times off."""
    source = (model.info.get("data") or {}).get("source")
    if source is not None:
        return source == "built-in digits"
    names = model.info.get("feature_names")
    if names is None or input_width(model) != 64 or "test" not in model.info:
        return False
    first = model[0] if isinstance(model, Sequential) and len(model) else None
    return isinstance(first, Standardize) and list(names) == wdata.load_digits().feature_names


def explain_data(model, args: argparse.Namespace) -> Table | wdata.Dataset:
    """Rows to explain on: --data, or the built-in digits for a model trained on them."""
    if args.data is None:
        if not trained_on_digits(model):
            raise ConfigError(
                f"name the rows to explain on: wxb {args.command} MODEL --data PATH "
                "(the built-in digits serve only a model trained on them)"
            )
        _no_npz_arrays(args, "the built-in digits have none")
        return wdata.load_digits()
    return read_data(args, args.data, model)


def _no_npz_arrays(args: argparse.Namespace, what: str) -> None:
    """--x-array/--y-array name an NPZ's arrays: refused where no file is read (they
    were ignored without a word, as read_path refuses them for a file of columns)."""
    named = [f"--{k.replace('_', '-')}" for k in ("x_array", "y_array") if getattr(args, k, None)]
    if named:
        verb = "names" if len(named) == 1 else "name"
        raise ConfigError(f"{' and '.join(named)} {verb} arrays of an NPZ file (--data); {what}")


def run_predict(args: argparse.Namespace) -> None:
    if args.output == "-":  # the usual name of standard output: it wrote a file named '-'
        args.output = None
    if args.output:
        protect = (Path(args.model), *[Path(args.input)] * (args.input != STDIN))
        wdata.check_can_write(args.output, "predictions", protect=protect)
        check_csv_name(args.output)
    model = load_model(args.model)
    if refused := commands_refuse(model, "wxb predict"):
        raise ConfigError(f"{args.model}: {refused}")
    task, loss, _ = model_task(model)
    warn_if_task_guessed(model, args.model, task)
    if args.proba and task != "classification":
        raise ConfigError(f"--proba is for classifiers; {args.model} is a {task} model")
    if args.proba and loss == "multi_margin":  # (scikit-learn's LinearSVC has no predict_proba)
        raise ConfigError(
            f"--proba: {args.model} was trained with multi_margin, a hinge whose scores are "
            "no probabilities; leave --proba out for its classes"
        )
    # a file of a header alone: the predictions' header alone, as pandas reads it (no rows)
    table = read_data(args, args.input, model, no_rows=True)
    notices: list[str] = []
    X = features_for(model, table, no_rows=True, notices=notices)
    for message in notices:  # (categories not seen in training)
        print(f"wxb: warning: {message}", file=sys.stderr)
    with np.errstate(over="ignore", invalid="ignore"):  # said in one line just below
        output = model.predict(X)
    if task == "classification":  # no class is read from inf or NaN (a number may be)
        check_outputs_finite(output, table, args.model)
        check_classes_fit(model, output, args.model)
    elif message := outputs_not_finite(output, table, args.model):  # written, but said:
        # numpy's overflow warnings from inside the network were all that told of them
        print(f"wxb: warning: {message}; written as they are (inf, nan)", file=sys.stderr)
    header, columns = prediction_table(model, output, args.proba)
    id_column = model.info.get("id_column")
    if id_column and id_column in table:  # row order is kept: each row's id beside it
        check_id_name(id_column, header, args.model)
        header, columns = [id_column, *header], [table[id_column].values, *columns]
    if args.output:
        wdata.write_csv(Path(args.output), header, columns)
        print(f"wrote {len(X)} predictions to {args.output}", file=sys.stderr)
    else:
        if sys.stdout is None:  # started with standard output closed (>&-)
            raise DataError("standard output is closed; give -o PATH for the predictions")
        sys.stdout.write(wdata.csv_text(header, columns))


def check_csv_name(path: str) -> None:
    """predict -o writes comma-separated text: not to a name that says another format,
    which wxb and pandas would then read as that ('.tsv' split at tabs, '.gz' inflated),
    or a model's ('.safetensors', '.onnx', '.pt': its readers refused the text)."""
    last = Path(path).suffix.lower()
    other = {**wdata.OTHER_MODEL_FORMATS, ".safetensors": "safetensors"}
    if last in other and last not in (".csv", ".txt", ".data"):  # (CSV wxb reads as CSV)
        raise DataError(
            f"{path}: wxb predict writes CSV (comma-separated, uncompressed); name the file "
            f".csv, not {last}"
        )


def check_format_name(path: str | Path, writes: str, suffix: str) -> None:
    """A model file named .onnx, .pt, … (or ONNX named .safetensors): written in wxb's
    format under another's name, which onnxruntime, torch.load, or wxb's readers, then
    refused long after the run that wrote it."""
    last = Path(path).suffix.lower()
    if last == ".onnx":
        fix = f"then wxb export {Path(path).with_suffix('.safetensors')} -o {path} writes ONNX"
    elif suffix == ".onnx":
        fix = "the .safetensors model is what wxb predict, eval and summary read"
    elif last in (".pt", ".pth"):
        fix = "wxb.interop.to_torch(wxb.load(path)) gives a torch.nn.Sequential to torch.save"
    else:
        fix = "wxb.load reads it; wxb export writes ONNX"
    wdata.check_format_name(path, writes, (suffix,), fix)


HISTORY_NAME = ("wxb train --history writes JSON", (".json",), "wxb plot and wxb report read it")
REPORT_NAME = ("a report is one HTML page", (".html", ".htm"), "a browser opens it")


def check_seq_len(model, args: argparse.Namespace) -> None:
    """--seq-len sets the ids a row of a model whose input is ids into an Embedding; on a
    model of features it was ignored without a word."""
    if args.seq_len is not None and not input_row(model)[1]:
        width = input_width(model)
        rows = f"rows of {width} features" if width is not None else "rows of features"
        raise ConfigError(
            f"--seq-len {args.seq_len}: {args.model} takes {rows}, not ids into an "
            "Embedding; leave --seq-len out"
        )


def one_line(message: object) -> str:
    """A message as the one line the CLI promises: a path's line break written as \\n."""
    return str(message).replace("\r", "\\r").replace("\n", "\\n")


OUT_OF_MEMORY = "out of memory (are the layer sizes or the data too large?)"


def error_text(error: BaseException) -> str:
    """What follows 'wxb: error: ' for a WxbError, an OSError (unwritable output folder,
    disk full, …) or a MemoryError, in one line."""
    if isinstance(error, MemoryError):
        return OUT_OF_MEMORY
    if isinstance(error, OSError) and not isinstance(error, WxbError):
        where = f"{error.filename}: " if error.filename else "standard output: "
        return f"{one_line(where)}{error.strerror or error}"
    return one_line(error)


class _Printable:
    """Standard output for reports that show names from the data: control characters (a
    terminal's escape sequences, a carriage return) are written escaped, as repr()
    writes them, so a column named so cannot recolour, clear or retitle the terminal.
    Only the thread running the command is escaped; other threads write as they wrote."""

    _ESCAPED: ClassVar[dict[int, str]] = {
        c: repr(chr(c))[1:-1] for c in [*range(32), *range(127, 160)] if c not in (9, 10)
    }

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._owner: int | None = threading.get_ident()  # None: done, writes pass through

    def write(self, text: str) -> int:
        escaping = self._owner == threading.get_ident()
        self._stream.write(text.translate(self._ESCAPED) if escaping else text)
        return len(text)  # what the caller wrote, as a stream says

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def printable_output(reporting: bool):
    """sys.stdout as ``_Printable`` while a report runs (not predict's CSV: exact data).
    Commands run at once in several threads each escape only their own writes; each
    wrapper, when done, passes through, and is taken away when it is on top."""
    if not reporting or sys.stdout is None:
        yield
        return
    wrapper = _Printable(sys.stdout)
    sys.stdout = wrapper
    try:
        yield
    finally:
        wrapper._owner = None
        stream = sys.stdout
        while isinstance(stream, _Printable) and stream._owner is None:
            stream = stream._stream  # finished wrappers on top (ours, or another thread's)
        if isinstance(sys.stdout, _Printable):  # a rank's devnull stays
            sys.stdout = stream


class _Lines:
    """A stream that writes whole lines, each in one write: print writes a line and its
    end apart (stderr writes through), and under mpiexec another rank's line was glued
    onto the first part ("wxb: rank 1: interrupted at …wxb: interrupted at …")."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.part = stream, ""

    def write(self, text: str) -> None:
        self.part += text
        if self.part.endswith("\n"):
            self.stream.write(self.part)
            self.stream.flush()
            self.part = ""

    def flush(self) -> None:
        pass


# Each command's path arguments as its usage names them
_PATH_NAMES = {
    "model": "MODEL",
    "input": "INPUT",
    "data": "DATA",
    "data_option": "--data",
    "history": "--history",
    "output": "-o",
}


def _refuse_empty_paths(args: argparse.Namespace) -> None:
    for dest, name in _PATH_NAMES.items():
        value = getattr(args, dest, None)
        if not isinstance(value, str) or value.strip():
            continue
        if dest == "output" and args.run is run_plot:  # (its own line: a folder)
            continue
        if dest == "data" and args.run is not run_eval:
            name = "--data"
        if dest == "history" and args.run is run_plot:
            name = "HISTORY"
        raise ConfigError(f"{name} is {value!r}; give a path")


def main(argv: Sequence[str] | None = None) -> int:
    _stop_said[0] = False
    parser = build_parser()
    # Under mpiexec every rank parses the same command line: its usage errors (and
    # --help) are said once, by rank 0.
    quiet = launched_ranks() > 1 and launched_rank() != 0
    with open(os.devnull, "w") as sink:
        with contextlib.redirect_stdout(sink if quiet else sys.stdout):
            with contextlib.redirect_stderr(sink if quiet else sys.stderr):
                args, unknown = parser.parse_known_args(argv)
                if unknown:  # said by the command's own parser: its --help lists the options
                    command = parser.commands.get(getattr(args, "command", None) or "", parser)
                    command.error(f"unrecognized arguments: {' '.join(unknown)}")
    # Column names are read without the spaces around them, and --features and --drop
    # take theirs so: --target ' label ' names the column 'label' too (not "no column")
    if getattr(args, "target", None):
        args.target = [name.strip() for name in args.target]
    if getattr(args, "id_column", None):
        args.id_column = args.id_column.strip()
    errors = _Lines(sys.stderr)  # kept: the ranks other than 0 silence sys.stderr while training
    wxb = "wxb:" if launched_rank() == 0 else f"wxb: rank {launched_rank()}:"
    try:
        if launched_ranks() > 1 and args.run is not run_train:
            if launched_rank() != 0:  # every rank has the same command: said once
                return 2
            raise ConfigError("under mpiexec only wxb train runs (on every rank); run this "
                              "command in one process")  # fmt: skip
        # -o '' (a "$OUT" left unset): predict wrote to standard output, export to the
        # model's name with .onnx, without a word (train's and plot's: their own checks);
        # an input path '' was read as '.' ('. is a folder', '.: no such model file')
        if args.run is not run_train:  # (train's: with its options, said once by rank 0)
            _refuse_empty_paths(args)
        with printable_output(args.run in (run_train, run_eval, run_summary, run_explain)):
            try:
                args.run(args)
            finally:
                _forget_stdin()
    except Interrupted as exc:
        if launched_rank() == 0:  # the ranks stop together: rank 0 says where, once
            print(f"{wxb} {one_line(exc)}", file=errors)
        _stop_said[0] = True  # (a second Ctrl-C from here on: entry says nothing more)
        return 130
    except WxbError as exc:
        if not getattr(exc, "quiet", False):  # RanksFailed: rank 0 says it for every rank
            print(f"{wxb} error: {error_text(exc)}", file=errors)
        return 2
    except BrokenPipeError:  # `wxb predict … | head`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:  # unwritable output folder, disk full, …
        print(f"{wxb} error: {error_text(exc)}", file=errors)
        return 2
    except MemoryError:
        print(f"{wxb} error: {OUT_OF_MEMORY}", file=errors)
        return 2
    except KeyboardInterrupt:  # mpiexec hands a Ctrl-C to every rank: said by rank 0
        if launched_rank() == 0:
            print(f"{wxb} interrupted", file=errors)
        _stop_said[0] = True
        return 130
    return 0


_stop_said = [False]  # main said why it stopped at a Ctrl-C


def _interrupted_again() -> int:
    """A second Ctrl-C that came while ``main`` handled the first's stop (its checkpoint
    written, its line not yet said): the run stopped all the same. Said in one line, where
    the KeyboardInterrupt's traceback went out (exit 1); later ones are ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not _stop_said[0] and launched_rank() == 0:
        with contextlib.suppress(Exception):  # (a closed stream)
            print("wxb: interrupted", file=sys.stderr, flush=True)
    return 130


def entry() -> None:
    """The ``wxb`` command: ``main``'s exit status. Under mpiexec a rank ends once MPI is
    finalised, without the interpreter's teardown: there pyarrow's and MPI's native
    threads, torn down together, aborted a rank at exit about one run in four ('terminate
    called without an active exception', exit 6) after it had said its line."""
    try:
        code = main()
    except KeyboardInterrupt:
        code = _interrupted_again()
    if launched_ranks() > 1:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # (a closed or broken stream)
                stream.flush()
        mpi = sys.modules.get("mpi4py.MPI")
        if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
            mpi.Finalize()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
