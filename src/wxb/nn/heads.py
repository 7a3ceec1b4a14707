"""What a model's outputs are: the task and loss its info records (or its shape says),
and whether its last layer already turns them into probabilities.

Below the command line, the report and ``wxb.explain``, which all score a model with the
loss it was trained with, and as probabilities when its head gives them."""

from __future__ import annotations

from wxb.nn.layers import Dropout, Identity, Sigmoid, Softmax
from wxb.nn.module import is_stock, output_width
from wxb.nn.sequential import layers_in_order

# the losses that say a model's outputs are classes (the others' are numbers to predict)
CLASSIFICATION_LOSSES = ("cross_entropy", "nll", "bce_with_logits")


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
    if not task and not loss and width == 1 and is_stock(layers[head_index(layers)], Sigmoid):
        task, loss = "classification", "bce_with_logits"
    if not task and loss:  # the one says the other
        task = "classification" if loss in CLASSIFICATION_LOSSES else "regression"
    task = task or ("classification" if width > 1 else "regression")
    if not loss and task == "classification":  # one output: one logit, two classes
        loss = "bce_with_logits" if width == 1 else "cross_entropy"
    loss = loss or "mse"
    # BCE on one logit: classes 0 and 1; else a logit a class (or a label): 0..C−1
    two = loss == "bce_with_logits" and width == 1
    classes = info.get("classes") or list(range(2 if two else width))
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
    if is_stock(last, Sigmoid) and loss == "bce_with_logits":
        return "sigmoid"
    return None
