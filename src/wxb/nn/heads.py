"""What a model's outputs are: the task and loss its info records (or its shape says),
and whether its last layer already turns them into probabilities.

Below the command line, the report and ``wxb.explain``, which all score a model with the
loss it was trained with, and as probabilities when its head gives them."""

from __future__ import annotations

import numpy as np

from wxb.errors import ConfigError
from wxb.nn.layers import Dropout, Identity, Sigmoid, Softmax
from wxb.nn.losses import (
    GRAPH_LOSSES,
    LOSSES,
    PLAIN_OPTIONS,
    WEIGHT_OPTIONS,
    BCELoss,
    HuberLoss,
    Loss,
    PoissonNLLLoss,
    SmoothL1Loss,
)
from wxb.nn.module import is_stock, output_width
from wxb.nn.sequential import layers_in_order

# the losses that say a model's outputs are classes (the others' are numbers to predict)
CLASSIFICATION_LOSSES = (
    "cross_entropy", "nll", "bce_with_logits", "soft_margin", "multilabel_soft_margin",
    "multi_margin", "multilabel_margin",
)  # fmt: skip
# torch's one-input losses fit records by name: the commands read their outputs as such
TORCH_LOSSES = (
    "poisson_nll", "soft_margin", "multilabel_soft_margin", "hinge_embedding", "multi_margin",
    "multilabel_margin",
)  # fmt: skip
# the losses that read one output as one logit of two classes (a 0/1 column, soft_margin's
# labels −1/+1); their several outputs are labels of their own (multilabel)
ONE_LOGIT_LOSSES = ("bce_with_logits", "multilabel_soft_margin", "soft_margin")


def class_targets(loss: str, indices: np.ndarray) -> np.ndarray:
    """Class indices (of model_task's classes) as the loss ``loss`` takes them: a 0/1
    column for one logit, soft_margin's −1/+1; the indices as they are otherwise."""
    if loss == "soft_margin":
        return (2.0 * indices - 1.0).reshape(-1, 1)
    if loss in ONE_LOGIT_LOSSES:
        return indices.astype(np.float64).reshape(-1, 1)
    return indices


def commands_refuse(model, command: str) -> str | None:
    """Why a command (``wxb eval``, ``wxb predict``, …) cannot read this model's outputs
    as its recorded loss trained them, in one line; None where it can."""
    loss, width = model.info.get("loss"), output_width(model) or 1
    if loss == "multilabel_margin":  # a ranking of labels, with no threshold to say which
        return (
            f"{command} does not read a multilabel_margin model: its scores rank each row's "
            "labels above the others, with no threshold saying which are predicted; "
            "use model(X) or wxb.evaluate(model, X, y) in Python"
        )
    if loss == "soft_margin" and width > 1:
        return (
            f"{command} does not read a soft_margin model of {width} outputs (labels −1/+1 "
            "each); use model(X) or wxb.evaluate(model, X, y) in Python"
        )
    if loss == "hinge_embedding" and command == "wxb eval":
        return (
            "wxb eval does not score a hinge_embedding model: its outputs are distances "
            "of pairs, its targets labels −1/+1 (no MSE or R² of one by the other); "
            "wxb.evaluate(model, X, y) gives its loss, wxb predict its distances"
        )
    return None


def head_index(layers: list) -> int:
    """The position of the layer whose output the model gives: the last, before any
    Identity or Dropout after it (they pass it through unchanged in eval mode), so that a
    Softmax followed by Identity is still the probability head it is."""
    index = len(layers) - 1
    while index > 0 and (is_stock(layers[index], Identity) or is_stock(layers[index], Dropout)):
        index -= 1
    return index


def model_task(model) -> tuple[str, str, list]:
    """(task, loss, classes) from the model's info (``fit`` records its loss there);
    for a model saved from Python without it: several outputs mean classes 0..C−1 (labels
    0..C−1 for a multilabel model), one output behind a ``Sigmoid`` means classes 0 and
    1 as a probability (a Keras-style deployable model), any other single output means
    regression."""
    info = model.info
    width = output_width(model) or 1
    task, loss = info.get("task"), info.get("loss")
    layers = layers_in_order(model)
    if loss in GRAPH_LOSSES and loss not in TORCH_LOSSES:  # fit's "bce", "kl_div": the
        # commands read logits or labels
        sigmoid_head = width == 1 and is_stock(layers[head_index(layers)], Sigmoid)
        # BCE on a Sigmoid's p is BCE with logits on the z behind it; else read as a
        # model without a recorded loss would be
        loss = "bce_with_logits" if GRAPH_LOSSES[loss] is BCELoss and sigmoid_head else None
    if not task and not loss and width == 1 and is_stock(layers[head_index(layers)], Sigmoid):
        task, loss = "classification", "bce_with_logits"
    if not task and loss:  # the one says the other
        task = "classification" if loss in CLASSIFICATION_LOSSES else "regression"
    task = task or ("classification" if width > 1 else "regression")
    if not loss and task == "classification":  # one output: one logit, two classes
        loss = "bce_with_logits" if width == 1 else "cross_entropy"
    loss = loss or "mse"
    # BCE on one logit: classes 0 and 1 (soft_margin's −1 and +1); else a logit a class
    # (or a label): 0..C−1
    two = loss in ONE_LOGIT_LOSSES and width == 1
    default = [-1, 1] if loss == "soft_margin" and two else list(range(2 if two else width))
    classes = info.get("classes") or default
    # text as read now, without surrounding spaces (a model from before may hold ' lo')
    classes = [c.strip() if isinstance(c, str) else c for c in classes]
    return task, loss, classes


def probability_head(model) -> str | None:
    """ "softmax" or "sigmoid" when a classifier's last layer already turns its outputs
    into probabilities (a Keras-style deployable model), else None (it gives logits,
    as wxb trains them). The head is ``layers_in_order``'s layer at ``head_index``: a
    module with a forward of its own is its own last layer."""
    layers = layers_in_order(model)
    last = layers[head_index(layers)]
    task, loss, _ = model_task(model)
    if task != "classification" or last is model:
        return None
    if is_stock(last, Softmax) and loss == "cross_entropy":
        return "softmax"
    if is_stock(last, Sigmoid) and loss in ONE_LOGIT_LOSSES:  # (soft_margin's too: σ(y·z))
        return "sigmoid"
    return None


def sklearn_poisson(info: dict) -> bool:
    """Whether the info is a scikit-learn Poisson MLPRegressor's (wxb.sklearn's to_wxb:
    loss "poisson", its outputs log-rates), which trained_loss scores as torch's
    poisson_nll of them."""
    return info.get("loss") == "poisson" and info.get("link") == "log"


def trained_loss(info: dict, name: str) -> str | Loss:
    """The loss ``name`` as training applied it to this model's outputs. wxb train fits
    a regression on targets standardized by their scale s, then folds s into the output
    layer: Huber's δ = 1 (smooth L1's β = 1) on (ŷ − y)/s is δ = s on ŷ − y, the loss
    divided by s² (s): the same rows in the squared and in the linear part, and
    gradients of the same direction. Where the outputs' scales differ, δ cannot be one
    number: the loss as named, said not to be training's; so too for a model file of
    wxb train saved before it recorded target_scale."""
    if name == "poisson" and sklearn_poisson(info):
        # half the Poisson deviance, y·log(y/λ) − y + λ, is e^x − y·x plus y·log y − y: the
        # same gradients; wxb's loss is torch's (Keras's "poisson" too)
        made = PoissonNLLLoss()
        made.trained_note = (
            "; torch's poisson_nll_loss of the log-rates x: scikit-learn's Poisson loss "
            "(half the Poisson deviance) is it plus y·log y − y, a term of the targets alone"
        )
        return made
    options = info.get("loss_options")
    weights = info.get("loss_weights")
    # (a list: their names alone, from a file saved before fit recorded their values)
    weights = None if isinstance(weights, list) else weights
    named = {**LOSSES, **GRAPH_LOSSES}
    if (options is not None or weights) and info.get("loss") == name and name in named:
        # the options fit recorded (HuberLoss(delta=3)): the name alone gave δ = 1; and
        # its class weights (CrossEntropyLoss(weight=…)): else scored unweighted
        if options is not None and (
            not isinstance(options, dict) or not set(options) <= set(PLAIN_OPTIONS)
        ):
            raise ConfigError(
                f"the model's info['loss_options'] must be a table of {', '.join(PLAIN_OPTIONS)}"
                f"; got {options!r}"
            )
        if weights is not None and (
            not isinstance(weights, dict) or not set(weights) <= set(WEIGHT_OPTIONS)
        ):
            raise ConfigError(
                f"the model's info['loss_weights'] must be a table of {', '.join(WEIGHT_OPTIONS)}"
                f"; got {weights!r}"
            )
        try:
            return named[name](**(options or {}), **(weights or {}))
        except (TypeError, ValueError) as exc:  # an option this loss does not take, or a
            # weight that is no array of numbers (an edited file)
            raise ConfigError(f"the model's recorded {name} loss: {exc}") from None
    scales = info.get("target_scale") or []
    trained_by_cli = isinstance(info.get("data"), dict) and "train_rows" in info["data"]
    if name not in ("huber", "smooth_l1") or not (scales or trained_by_cli):
        return name
    letter = "δ" if name == "huber" else "β"
    if not scales:  # a model file of wxb train from before target_scale was recorded
        made = HuberLoss() if name == "huber" else SmoothL1Loss()
        made.trained_note = (
            f"; not training's: wxb train's {letter} = 1 was on standardized targets, "
            f"{letter} = their scale in the targets' units, which this model file (saved "
            "before wxb recorded target_scale) does not give"
        )
        return made
    # scales equal to rounding (targets shifted by a constant: std(y + c) is std(y) to
    # a few units in the last place) are one δ: it is each output's to 1e-12
    if max(scales) - min(scales) > 1e-12 * max(scales):  # one δ cannot be training's
        made = HuberLoss() if name == "huber" else SmoothL1Loss()
        shown = ", ".join(f"{float(s):.6g}" for s in scales)
        made.trained_note = (
            f"; not training's: wxb train's {letter} = 1 was on each output's standardized "
            f"targets, {letter} = its scale ({shown}) in the targets' units, which one "
            f"{letter} cannot give"
        )
        return made
    scale = float(scales[0])
    made = HuberLoss(delta=scale) if name == "huber" else SmoothL1Loss(beta=scale)
    factor = scale * scale if name == "huber" else scale
    made.trained_note = (
        f"; {letter} = {scale:.6g}: wxb train's {letter} = 1 on standardized targets "
        f"((y − mean)/{scale:.6g}) in the target's units, so L is {factor:.6g} × the "
        "training loss"
    )
    return made
