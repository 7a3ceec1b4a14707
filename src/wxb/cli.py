"""The ``wxb`` command: a thin shell over the library.

User errors print one line (``wxb: error: …``) and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from wxb import __version__, validation
from wxb import data as wdata
from wxb.backend import resolve_dtype
from wxb.errors import ConfigError, DataError, WxbError
from wxb.io import load, save
from wxb.nn import ACTIVATIONS, LOSSES, Dense, Dropout, Sequential, Standardize
from wxb.optim import OPTIMIZERS, SCHEDULES, get_optimizer
from wxb.random import as_generator
from wxb.train import evaluate, fit

DEFAULT_HIDDEN = "512"
MAX_CLASSES_FOR_AUTO = 50


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, status 2, no usage dump
        self.exit(2, f"wxb: error: {message} (see 'wxb {self.prog.split()[-1]} --help')\n")


class _DefaultsShown(argparse.ArgumentDefaultsHelpFormatter):
    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
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
        "and writes model.safetensors in the current folder.",
    )
    add = train.add_argument
    add("--data", metavar="PATH", help="CSV (with a header) or NPZ (X, y); default: digits")
    add("--target", metavar="COLUMN", help="the CSV column to predict")
    add("--task", choices=("auto", "classification", "regression"), default="auto",
        help="auto: classification for text or few integer labels")
    add("--hidden", default=DEFAULT_HIDDEN, metavar="SIZES",
        help="hidden layer sizes, comma separated; 'none' for none")
    add("--activation", choices=sorted(set(ACTIVATIONS) - {"softmax"}), default="relu",
        help="f in A = f(Z) for the hidden layers")
    add("--loss", choices=("auto", *LOSSES), default="auto",
        help="auto: cross_entropy for classification, mse for regression")
    add("--optimizer", choices=sorted(OPTIMIZERS), default="adam", help="optimiser")
    add("--lr", type=float, default=None, help="learning rate; default adam 1e-3, sgd 0.01")
    add("--momentum", type=float, default=None, help="SGD momentum (sgd only)")
    add("--weight-decay", type=float, default=None, help="L2 (adam, sgd) or decoupled (adamw)")
    add("--lr-schedule", choices=sorted(SCHEDULES), default=None, help="per-epoch schedule")
    add("--clip-grad-norm", type=float, default=None, metavar="MAX", help="clip ‖∇L‖ to MAX")
    add("--dropout", type=float, default=0.0, help="dropout rate after each hidden layer")
    add("--epochs", type=int, default=60, help="passes over the training data")
    add("--batch-size", type=int, default=32, help="samples per mini-batch (B)")
    add("--val-split", type=float, default=0.1, help="fraction of the training part held out")
    add("--test-split", type=float, default=0.2, help="fraction held out for the test figures")
    add("--patience", type=int, default=10, help="early stopping on val_loss; 0 turns it off")
    add("--seed", type=int, default=0, help="drives splits, initialisation, shuffling, dropout")
    add("--dtype", choices=("float32", "float64"), default="float32", help="number type")
    add("-o", "--output", default="model.safetensors", metavar="PATH", help="model file")
    add("--history", metavar="PATH", help="also write the per-epoch history as JSON")
    add("-q", "--quiet", action="store_true", help="no progress bar")
    # fmt: on
    train.set_defaults(run=run_train)

    evaluate_cmd = commands.add_parser(
        "eval",
        help="evaluate a saved model on labelled data",
        description="Loss and accuracy "
        "(classification) or MSE and R² (regression) of a saved model on a data file.",
    )
    evaluate_cmd.add_argument("model", metavar="MODEL")
    evaluate_cmd.add_argument("--data", metavar="PATH", required=True)
    evaluate_cmd.add_argument("--target", metavar="COLUMN", help="default: the training target")
    evaluate_cmd.set_defaults(run=run_eval)

    predict = commands.add_parser(
        "predict",
        help="predict for the rows of a CSV/NPZ file",
        description="Write one prediction per input row as CSV (to -o, or to standard output).",
    )
    predict.add_argument("model", metavar="MODEL")
    predict.add_argument(
        "input", metavar="INPUT", help="CSV with the training feature columns, or NPZ"
    )
    predict.add_argument("-o", "--output", metavar="OUT.csv")
    predict.add_argument("--proba", action="store_true", help="add a probability column per class")
    predict.set_defaults(run=run_predict)
    return parser


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
    return sizes


def choose_task(y: np.ndarray, task: str, loss: str) -> str:
    if task != "auto":
        return task
    if loss in ("cross_entropy", "bce_with_logits"):
        return "classification"
    if loss == "mse":
        return "regression"
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


def build_model(
    n_features: int,
    hidden: list[int],
    outputs: int,
    activation: str,
    dropout: float,
    standardize: Standardize,
    seed: int,
    dtype: str,
) -> Sequential:
    rng = as_generator(seed)
    init = "he_uniform" if activation in ("relu", "leaky_relu", "gelu") else "glorot_uniform"
    layers: list = [standardize]
    width = n_features
    for index, size in enumerate(hidden, start=1):
        layers.append(Dense(width, size, init=init, seed=rng, dtype=dtype, name=f"hidden{index}"))
        layers.append(ACTIVATIONS[activation](name=f"{activation}{index}"))
        if dropout:
            layers.append(Dropout(dropout, seed=rng, name=f"dropout{index}"))
        width = size
    layers.append(
        Dense(width, outputs, init="glorot_uniform", seed=rng, dtype=dtype, name="output")
    )
    return Sequential(*layers)


def run_train(args: argparse.Namespace) -> None:
    output = Path(args.output)
    if output.is_dir():
        raise ConfigError(f"--output {output} is a folder; give a file path")
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be ≥ 1")
    dtype = str(resolve_dtype(args.dtype))
    hidden = parse_hidden(args.hidden)

    dataset = wdata.load_digits() if args.data is None else wdata.read_data(args.data, args.target)
    if args.data is not None and dataset.y is None:
        raise DataError(f"{args.data}: no target: name the label column with --target COLUMN")
    X, y = dataset.X, dataset.y
    validation.check_lengths(X, y, dataset.source)
    if len(X) < 4:
        raise DataError(f"{dataset.source}: {len(X)} samples are too few to train and test on")

    task = choose_task(y, args.task, args.loss)
    loss = (
        args.loss
        if args.loss != "auto"
        else ("cross_entropy" if task == "classification" else "mse")
    )
    info: dict = {
        "task": task,
        "target": dataset.target,
        "feature_names": dataset.feature_names,
        "loss": loss,
    }
    if task == "classification":
        classes, y_encoded = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise DataError(f"{dataset.source}: the target has a single class {classes[0]!r}")
        if loss == "bce_with_logits" and len(classes) != 2:
            raise ConfigError(
                f"--loss bce_with_logits needs 2 classes; the target has {len(classes)}"
            )
        if loss == "mse":
            raise ConfigError("--loss mse is for regression; use cross_entropy for classification")
        info["classes"] = [plain(c) for c in classes]
        outputs = 1 if loss == "bce_with_logits" else len(classes)
        y_model = y_encoded.astype(np.float64).reshape(-1, 1) if outputs == 1 else y_encoded
        stratify = y_encoded
    else:
        if y.dtype.kind not in "biuf":
            raise DataError(f"{dataset.source}: regression needs a numeric target; got text labels")
        if loss != "mse":
            raise ConfigError(f"--loss {loss} is for classification; regression uses mse")
        y_model = y.astype(np.float64).reshape(-1, 1)
        outputs, stratify = 1, None
        y_mean, y_scale = y_model.mean(), y_model.std() or 1.0

    rng = np.random.default_rng(args.seed)
    train_rows, test_rows = wdata.split_indices(len(X), args.test_split, rng, stratify)
    X_train = X[train_rows].astype(dtype)
    model = build_model(
        X.shape[1],
        hidden,
        outputs,
        args.activation,
        args.dropout,
        Standardize.fit(X_train),
        args.seed,
        dtype,
    )
    y_train = y_model[train_rows]
    if task == "regression":  # train on standardized targets (see unscale_output)
        y_train = (y_train - y_mean) / y_scale
    history = fit(
        model,
        X_train,
        y_train,
        loss=loss,
        optimizer=make_optimizer(args, model),
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_split=args.val_split or 0.0,
        seed=rng,
        early_stopping=args.patience or None,
        lr_schedule=args.lr_schedule,
        clip_grad_norm=args.clip_grad_norm,
        verbose=False if args.quiet else "auto",
    )
    if task == "regression":
        unscale_output(model.output, y_mean, y_scale)
    model.info = info
    figures = report(model, X[test_rows], y_model[test_rows], loss, task)
    info["test"] = figures
    save(model, output)
    if args.history:
        wdata.atomic_write(args.history, history.to_json().encode())
    stop = (
        f" (early stop; kept the best, epoch {history.best_epoch})" if history.stopped_early else ""
    )
    print(
        f"data: {dataset.source} ({len(X)} samples, {X.shape[1]} features); "
        f"{len(train_rows)} train, {len(test_rows)} test"
    )
    print(
        f"model: {X.shape[1]}-{'-'.join(map(str, [*hidden, outputs]))} {args.activation}, "
        f"{model.num_parameters():,} parameters; {history.epochs} epochs{stop}"
    )
    print("test " + ", ".join(f"{k} {v:.4f}" for k, v in figures.items()))
    print(f"saved model to {output}")


def unscale_output(layer: Dense, mean: float, scale: float) -> None:
    """Fold y = scale·ŷ + mean into the output layer: W ← scale·W, b ← scale·b + mean.

    The model then predicts in the target's own units, with no extra layer.
    """
    layer.weight.data *= scale
    layer.bias.data *= scale
    layer.bias.data += mean


def make_optimizer(args: argparse.Namespace, model: Sequential):
    options = {"lr": args.lr, "weight_decay": args.weight_decay}
    if args.momentum is not None:
        if args.optimizer != "sgd":
            raise ConfigError("--momentum is an SGD option; add --optimizer sgd")
        options["momentum"] = args.momentum
    return get_optimizer(args.optimizer, model.parameters(), **options)


def report(model, X: np.ndarray, y: np.ndarray, loss: str, task: str) -> dict[str, float]:
    """Test figures: loss and accuracy, or MSE and R² (sklearn's definition)."""
    from wxb.nn import get_loss

    X = validation.as_features(X, model.dtype)
    y = y if y.ndim == 1 else y.astype(model.dtype)
    figures = evaluate(model, X, y, get_loss(loss))
    if task == "regression":
        pred = model.predict(X)
        residual = float(((pred - y) ** 2).sum())
        spread = float(((y - y.mean(axis=0)) ** 2).sum())
        figures = {"mse": residual / y.size, "r2": 1 - residual / spread if spread else 0.0}
    return figures


# ---------------------------------------------------------------------------------
# eval and predict
# ---------------------------------------------------------------------------------
def input_width(model) -> int | None:
    """Features the model takes: the first layer that says."""
    for _, module in model.named_modules():
        if hasattr(module, "in_features"):
            return int(module.in_features)
    return None


def features_for(model, dataset: wdata.Dataset) -> np.ndarray:
    """The model's feature columns, by name for CSV, by width for NPZ."""
    names = model.info.get("feature_names")
    width = input_width(model)
    X = dataset.X
    if names and not dataset.source.lower().endswith(".npz"):
        X = X[:, [dataset.feature_names.index(n) for n in names]]
    if width is not None and X.shape[1] != width:
        raise DataError(f"{dataset.source}: {X.shape[1]} features but the model takes {width}")
    return validation.as_features(X, model.dtype, dataset.source)


def encode_labels(model, y: np.ndarray, source: str) -> np.ndarray:
    classes = model.info["classes"]
    lookup = {str(c): i for i, c in enumerate(classes)}
    encoded = np.empty(len(y), dtype=np.int64)
    for row, label in enumerate(y):
        key = str(plain(label))
        if key not in lookup:
            raise DataError(
                f"{source}: label {key!r} in data row {row + 1} is not a class the model was "
                f"trained on ({', '.join(map(str, classes))})"
            )
        encoded[row] = lookup[key]
    return encoded


def run_eval(args: argparse.Namespace) -> None:
    model = load(args.model)
    info = model.info
    target = args.target or info.get("target")
    csv_target = None if str(args.data).lower().endswith(".npz") else target
    dataset = wdata.read_data(args.data, csv_target, info.get("feature_names"))
    if dataset.y is None:
        raise DataError(f"{args.data}: no target column {target!r} to evaluate against")
    X = features_for(model, dataset)
    validation.check_lengths(X, dataset.y, dataset.source)
    task, loss = info.get("task", "classification"), info.get("loss", "cross_entropy")
    if task == "classification":
        y = encode_labels(model, dataset.y, dataset.source)
        if loss == "bce_with_logits":
            y = y.astype(np.float64).reshape(-1, 1)
    else:
        y = dataset.y.astype(np.float64).reshape(-1, 1)
    figures = report(model, X, y, loss, task)
    print(
        f"{args.data}: {len(X)} samples; " + ", ".join(f"{k} {v:.4f}" for k, v in figures.items())
    )


def run_predict(args: argparse.Namespace) -> None:
    model = load(args.model)
    dataset = wdata.read_data(args.input, features=model.info.get("feature_names"))
    X = features_for(model, dataset)
    out = model.predict(X)
    info = model.info
    header, columns = ["prediction"], []
    if info.get("task") == "classification":
        classes = np.array(info["classes"], dtype=object)
        if out.shape[1] == 1:  # one logit: P(class 1) = σ(z)
            proba = 1 / (1 + np.exp(-out.astype(np.float64)))
            proba = np.hstack([1 - proba, proba])
        else:
            shifted = np.exp(out - out.max(axis=1, keepdims=True))
            proba = shifted / shifted.sum(axis=1, keepdims=True)
        columns.append(classes[proba.argmax(axis=1)])
        if args.proba:
            header += [f"p_{c}" for c in info["classes"]]
            columns += [proba[:, k] for k in range(proba.shape[1])]
    elif out.shape[1] == 1:
        columns.append(out[:, 0].astype(np.float64))
    else:  # several outputs and no class names: one column each
        header = [f"output_{k}" for k in range(out.shape[1])]
        columns = [out[:, k].astype(np.float64) for k in range(out.shape[1])]
    if args.output:
        wdata.write_csv(Path(args.output), header, columns)
        print(f"wrote {len(X)} predictions to {args.output}", file=sys.stderr)
    else:
        print(",".join(header))
        for row in zip(*columns, strict=True):
            print(",".join(wdata._format_cell(v) for v in row))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except WxbError as exc:
        print(f"wxb: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # unwritable output folder, disk full, …
        print(f"wxb: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("wxb: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
