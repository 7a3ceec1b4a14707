"""Losses L(ŷ, y). Each returns a scalar Tensor whose backward gives δ⁽ᴸ⁾'s ∂L/∂ŷ,
and ∂L/∂y too when the target is a tensor that requires grad (another model's output).

Reductions: ``"mean"`` divides by the batch size B (for BCEWithLogitsLoss, by the
number of elements, as PyTorch does, and so for L1Loss, HuberLoss and SmoothL1Loss);
``"sum"`` does not divide; ``"none"`` gives a tensor of each sample's loss, as
PyTorch's does — shape (B,) for MSELoss, CrossEntropyLoss and NLLLoss, the output's for
BCEWithLogitsLoss, L1Loss, HuberLoss and SmoothL1Loss (a loss per element) — for the
user's own weighting or masking before ``.sum()`` or ``.mean()``. ``fit``, ``evaluate``
and a training step need one number per batch and refuse it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import numpy as np

from wxb import ops
from wxb.backend import to_arguments
from wxb.errors import ConfigError
from wxb.tensor import Tensor, no_grad
from wxb.validation import torch_options


class Loss:
    def __init__(self, reduction: str = "mean") -> None:
        self.reduction = reduction

    @property
    def kernel(self) -> ops.LossKernel:
        """What computes the loss, following the arrays handed out as its options
        (``loss.weight[0] = 5``, PyTorch's buffers changed in place: each read of
        ``loss.weight`` gave a copy, and the change was dropped without a word)."""
        held = self.__dict__
        handed = held.get("_handed")
        if handed:
            for name in list(handed):
                array, seen = handed[name]
                if not np.array_equal(array, seen, equal_nan=True):
                    del handed[name]
                    setattr(self, name, array.copy())  # checked, as an assignment
        try:
            return held["kernel"]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no kernel") from None

    @kernel.setter
    def kernel(self, value: ops.LossKernel) -> None:
        self.__dict__["kernel"] = value

    def _handed_out(self, name: str, values: np.ndarray) -> Tensor:
        """``values`` (the option as the kernel holds it, just followed) as a Tensor over
        an array this loss keeps: a change made through it reaches the kernel."""
        handed = self.__dict__.setdefault("_handed", {})
        held = handed.get(name)
        if held is None or not np.array_equal(held[0], values, equal_nan=True):
            held = handed[name] = (values, values.copy())
        return Tensor(held[0])

    @property
    def reduction(self) -> str:
        # kept in the instance's dict under its own name: pickles and vars(loss) (a
        # checkpoint's loss settings) read it as before it was a property; a subclass
        # whose __init__ did not call Loss's computes a mean, as the default
        return self.__dict__.get("reduction", "mean")

    @reduction.setter
    def reduction(self, value: str) -> None:
        """Set later too (as in PyTorch): the kernel that computes the loss follows."""
        if value not in ops.REDUCTIONS:
            raise ConfigError(
                f"{type(self).__name__} reduction must be 'mean', 'sum' or 'none'; got {value!r}"
            )
        kernel = getattr(self, "kernel", None)
        if kernel is not None and getattr(kernel, "reduction", value) != value:
            if not dataclasses.is_dataclass(kernel):
                raise ConfigError(
                    f"{type(self).__name__}: its kernel cannot change its reduction; "
                    f"make a new loss with reduction={value!r}"
                )
            self.kernel = dataclasses.replace(kernel, reduction=value)
        self.__dict__["reduction"] = value

    def __call__(self, output: Tensor, target: object) -> Tensor:
        return self.forward(output, target)

    def forward(self, output: Tensor, target: object) -> Tensor:
        """The stock loss's value; a subclass may write its own, as PyTorch's losses are
        written (``super().forward`` gives the stock value): ``loss(ŷ, y)`` calls it, and
        fit hands it its targets as given (a forward of one's own was ignored: the stock
        loss trained without a word)."""
        return ops.loss(output, target, self.kernel)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"

    def to(self, *args: object, dtype: object = None, device: object = None) -> Loss:
        """The loss itself, as PyTorch's ``loss.to(device)`` gives (ported code moves its
        class weights so): a loss casts its weights to the outputs' dtype as it runs, and
        wxb computes on the CPU (another device is refused in one line)."""
        to_arguments(args, dtype, device, f"{type(self).__name__}.to")
        return self

    def cpu(self) -> Loss:
        return self

    def float(self) -> Loss:
        return self

    def double(self) -> Loss:
        return self


# Loss's own __call__ and forward, as defined: one assigned to the class since
# (Loss.forward = …) is code of one's own for every loss inheriting it, as for layers
# (module.stock_kind); compared with Loss.forward itself, such a patch went unseen and
# the planned step ran the stock kernel instead
_STOCK_CALL, _STOCK_FORWARD = Loss.__call__, Loss.forward

# PyTorch's deprecated reduction flags, taken as None on every loss
_DEPRECATED = {"size_average": None, "reduce": None}
_DEPRECATED_INSTEAD = {
    "size_average": "PyTorch deprecated it too: use reduction= ('mean', 'sum', 'none')",
    "reduce": "PyTorch deprecated it too: use reduction= ('mean', 'sum', 'none')",
}


class MSELoss(Loss):
    """The seed's L = ½(ŷ − y)², summed over the outputs of a sample.

    With ``reduction="mean"`` it is averaged over the B samples of the batch:
    L = (1/B) Σᵢ ½‖ŷᵢ − yᵢ‖², so ∂L/∂ŷ = (ŷ − y)/B, the seed's δ⁽ᴸ⁾ before ⊙ f′(Z).
    (PyTorch's ``MSELoss`` averages (ŷ − y)² over all elements instead: for C outputs
    it equals 2/C times this loss.)
    """

    def __init__(self, reduction: str = "mean", **torch_only: object) -> None:
        torch_options("MSELoss", torch_only, _DEPRECATED, _DEPRECATED_INSTEAD)
        super().__init__(reduction)
        self.kernel = ops.MSEKernel(reduction)


class L1Loss(Loss):
    """|ŷ − y|, as PyTorch's L1Loss: ``mean`` averages over every element of the batch
    (PyTorch's rule; unlike MSELoss's seed convention, which sums over the outputs)."""

    def __init__(self, reduction: str = "mean", **torch_only: object) -> None:
        torch_options("L1Loss", torch_only, _DEPRECATED, _DEPRECATED_INSTEAD)
        super().__init__(reduction)
        self.kernel = ops.L1Kernel(reduction)


class _Threshold:
    """A loss's threshold (Huber's δ, SmoothL1's β), set later too, as in PyTorch: the
    kernel follows; kept in the instance's dict (pickles, a checkpoint's settings)."""

    def __init__(self, minimum_excluded: bool) -> None:
        self.minimum_excluded = minimum_excluded

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, loss: Loss | None, owner: type) -> object:
        return self if loss is None else loss.__dict__[self.name]

    def __set__(self, loss: Loss, value: object) -> None:
        # the kernel's own check, so the class and the functional form refuse alike
        ops.check_threshold(value, f"{type(loss).__name__} {self.name}", self.minimum_excluded)
        value = float(value)
        loss.__dict__[self.name] = value
        kernel = loss.__dict__.get("kernel")
        if kernel is not None:
            loss.kernel = dataclasses.replace(kernel, **{self.name: value})


class HuberLoss(Loss):
    """PyTorch's HuberLoss: ½(ŷ − y)² within δ of the target, δ·(|ŷ − y| − ½δ) beyond
    (squared near, absolute far: outliers pull less); ``mean`` over every element."""

    delta = _Threshold(minimum_excluded=True)

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        self.delta = delta
        self.kernel = ops.HuberKernel(reduction, delta=self.delta)

    def __repr__(self) -> str:
        return f"HuberLoss(reduction={self.reduction!r}, delta={self.delta!r})"


class SmoothL1Loss(Loss):
    """PyTorch's SmoothL1Loss: ½(ŷ − y)²/β within β of the target, |ŷ − y| − ½β beyond
    (HuberLoss with δ = β, divided by β; β = 0 is L1Loss); ``mean`` over every element."""

    beta = _Threshold(minimum_excluded=False)

    def __init__(self, reduction: str = "mean", beta: float = 1.0, **torch_only: object) -> None:
        torch_options("SmoothL1Loss", torch_only, _DEPRECATED, _DEPRECATED_INSTEAD)
        super().__init__(reduction)
        self.beta = beta
        self.kernel = ops.SmoothL1Kernel(reduction, beta=self.beta)

    def __repr__(self) -> str:
        return f"SmoothL1Loss(reduction={self.reduction!r}, beta={self.beta!r})"


def _weight_array(weight: object, dtype: object) -> np.ndarray | None:
    """A loss's weight as an array of its own (a Tensor's data, a torch tensor's values:
    np.asarray first, as np.array's copy= made NumPy 2 warn of torch's __array__)."""
    if weight is None:
        return None
    return np.array(np.asarray(getattr(weight, "data", weight)), dtype)


def _shown(value: object) -> str:
    """An option's value in a loss's repr: an array as a list, as CrossEntropyLoss's
    weight is shown (``array([1., 2.])`` of some, a list of others)."""
    return repr(value.tolist() if isinstance(value, np.ndarray) else value)


class _ClassOption:
    """One of PyTorch's class options of a cross-entropy (``weight``, ``ignore_index``,
    ``label_smoothing``), kept in the instance's dict under its own name (as
    ``reduction``: a checkpoint's loss settings read it) and set later too, as in
    PyTorch: the kernel that computes the loss follows, checked as at construction."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, loss: Loss | None, owner: type) -> object:
        if loss is None:
            return self
        loss.kernel  # noqa: B018  (follows a change made through a tensor handed out)
        value = loss.__dict__.get(self.name, _CLASS_DEFAULTS[self.name])
        if self.name == "weight" and value is not None:  # a tensor, as PyTorch's buffer
            return loss._handed_out("weight", np.array(value, dtype=np.float64))
        return value

    def __set__(self, loss: Loss, value: object) -> None:
        loss.__dict__.get("_handed", {}).pop(self.name, None)  # this value, not one before
        kernel = loss.kernel
        options = {key: getattr(kernel, key) for key in _CLASS_DEFAULTS if hasattr(kernel, key)}
        options[self.name] = value
        checked = ops.class_options(
            options["weight"],
            options["ignore_index"],
            options.get("label_smoothing", 0.0),
            kernel.name,
        )
        loss.kernel = dataclasses.replace(kernel, **{self.name: checked[self.name]})
        stored = checked[self.name]
        loss.__dict__[self.name] = list(stored) if isinstance(stored, tuple) else stored


_CLASS_DEFAULTS = {"weight": None, "ignore_index": -100, "label_smoothing": 0.0}


class CrossEntropyLoss(Loss):
    """Softmax and cross-entropy on logits, fused and stable: −Σ y log softmax(z).

    Targets are class indices (B,) or class probabilities (B, C); the mean is
    over the B samples. δ⁽ᴸ⁾ = (softmax(Z) − Y)/B.

    PyTorch's options: ``weight`` (one weight per class: each row's loss is scaled
    by its class's, and the mean over class indices divides by the weights' sum),
    ``ignore_index`` (rows of that class index add nothing, and are not counted) and
    ``label_smoothing`` ε (the target becomes (1 − ε)·y + ε/C).
    """

    weight = _ClassOption()
    ignore_index = _ClassOption()
    label_smoothing = _ClassOption()

    def __init__(
        self,
        weight: object = None,
        size_average: None = None,
        ignore_index: int = -100,
        reduce: None = None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        self._make(ops.CrossEntropyKernel, weight, ignore_index, reduction, label_smoothing,
                   size_average, reduce)  # fmt: skip

    def _make(self, kind, weight, ignore_index, reduction, smoothing, size_average, reduce):
        """The kernel ``kind`` with the options checked, kept also in the instance's dict
        as the descriptors keep them (a checkpoint's loss settings read them)."""
        if isinstance(weight, str):  # wxb's earlier first argument was the reduction
            weight, reduction = None, weight
        name = type(self).__name__
        given = {"size_average": size_average, "reduce": reduce}
        torch_options(name, given, _DEPRECATED, _DEPRECATED_INSTEAD)
        Loss.__init__(self, reduction)
        options = ops.class_options(weight, ignore_index, smoothing, kind.name)
        if kind is ops.NLLKernel:  # not one of NLLLoss's options, as in PyTorch
            del options["label_smoothing"]
        self.kernel = kind(reduction, **options)
        for key, value in options.items():
            self.__dict__[key] = list(value) if isinstance(value, tuple) else value

    def __repr__(self) -> str:
        settings = [f"reduction={self.reduction!r}"]
        settings += [
            f"{key}={self.__dict__[key]!r}"
            for key, default in _CLASS_DEFAULTS.items()
            if self.__dict__.get(key, default) != default
        ]
        return f"{type(self).__name__}({', '.join(settings)})"


class NLLLoss(CrossEntropyLoss):
    """Negative log-likelihood of log-probabilities (a model ending in ``LogSoftmax``):
    L = −(1/B) Σᵢ A[i, yᵢ], δ = −Y/B; class-index targets (B,). After a LogSoftmax it
    is the cross-entropy of the logits, as PyTorch's LogSoftmax + NLLLoss, and counts
    as CrossEntropyLoss wherever the loss says what the outputs mean (the task,
    accuracy, wxb eval, which scores the saved model's log-probabilities as logits).
    PyTorch's ``weight`` and ``ignore_index`` as CrossEntropyLoss takes them."""

    label_smoothing = 0.0  # not one of NLLLoss's options, as in PyTorch

    def __init__(
        self,
        weight: object = None,
        size_average: None = None,
        ignore_index: int = -100,
        reduce: None = None,
        reduction: str = "mean",
    ) -> None:
        self._make(ops.NLLKernel, weight, ignore_index, reduction, 0.0, size_average, reduce)


class _ArrayOption:
    """``weight`` or ``pos_weight`` of BCEWithLogitsLoss: set later too, as PyTorch's
    buffers are, the kernel following; read as a Tensor (None when unset)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, loss: Loss | None, owner: type) -> object:
        if loss is None:
            return self
        kept = getattr(loss.kernel, self.name)
        if kept is None:
            return None
        return loss._handed_out(self.name, np.array(kept[0], dtype=np.float64).reshape(kept[1]))

    def __set__(self, loss: Loss, value: object) -> None:
        loss.__dict__.get("_handed", {}).pop(self.name, None)  # this value, not one before
        frozen = ops.frozen_array(value, f"BCEWithLogitsLoss {self.name}")
        loss.kernel = dataclasses.replace(loss.kernel, **{self.name: frozen})
        # a plain list in the instance's dict: a checkpoint's loss settings read it
        loss.__dict__[self.name] = None if frozen is None else list(frozen[0])


class BCEWithLogitsLoss(Loss):
    """Sigmoid and binary cross-entropy on logits, stable; targets in [0, 1], output's
    shape. PyTorch's ``weight`` (broadcast over the output: each element's loss scaled)
    and ``pos_weight`` (the positive term's weight, per output: > 1 for a rare positive
    class, as the count of negatives over positives)."""

    weight = _ArrayOption()
    pos_weight = _ArrayOption()

    def __init__(
        self,
        weight: object = None,
        size_average: None = None,
        reduce: None = None,
        reduction: str = "mean",
        pos_weight: object = None,
    ) -> None:
        if isinstance(weight, str):  # wxb's earlier first argument was the reduction
            weight, reduction = None, weight
        torch_options(
            "BCEWithLogitsLoss",
            {"size_average": size_average, "reduce": reduce},
            _DEPRECATED,
            _DEPRECATED_INSTEAD,
        )
        super().__init__(reduction)
        self.kernel = ops.BCEWithLogitsKernel(reduction)
        self.weight, self.pos_weight = weight, pos_weight

    def __repr__(self) -> str:
        settings = [f"reduction={self.reduction!r}"]
        for key in ("weight", "pos_weight"):  # in its shape (the dict's list is flat)
            kept = getattr(self.kernel, key)
            if kept is not None:
                settings.append(f"{key}={_shown(np.array(kept[0]).reshape(kept[1]))}")
        return f"{type(self).__name__}({', '.join(settings)})"


class BCELoss(Loss):
    """Binary cross-entropy of probabilities (a Sigmoid's output), torch's BCELoss: each
    log clamped at −100; ``weight`` scales each element's loss (broadcast over the
    input). It runs on the recorded graph (``ops.binary_cross_entropy``); for logits,
    BCEWithLogitsLoss is the stable one."""

    def __init__(
        self,
        weight: object = None,
        size_average: None = None,
        reduce: None = None,
        reduction: str = "mean",
    ) -> None:
        torch_options(
            "BCELoss", {"size_average": size_average, "reduce": reduce}, _DEPRECATED,
            _DEPRECATED_INSTEAD,
        )  # fmt: skip
        super().__init__(reduction)
        self.weight = _weight_array(weight, None)

    def forward(self, output: Tensor, target: object) -> Tensor:
        return ops.binary_cross_entropy(output, target, self.weight, self.reduction)

    def __repr__(self) -> str:
        # its weight too, as BCEWithLogitsLoss's (a weighted loss read as a plain one)
        weight = "" if self.weight is None else f", weight={_shown(self.weight)}"
        return f"BCELoss(reduction={self.reduction!r}{weight})"


class KLDivLoss(Loss):
    """KL divergence of log-probabilities (the input, a LogSoftmax's output) from the
    target's probabilities (log-probabilities with ``log_target=True``), torch's
    KLDivLoss; reduction "batchmean" is the true mean per row (torch's default "mean"
    divides by the elements). It runs on the recorded graph (``ops.kl_div``)."""

    def __init__(
        self,
        size_average: None = None,
        reduce: None = None,
        reduction: str = "mean",
        log_target: bool = False,
    ) -> None:
        torch_options(
            "KLDivLoss", {"size_average": size_average, "reduce": reduce}, _DEPRECATED,
            _DEPRECATED_INSTEAD,
        )  # fmt: skip
        self.reduction = reduction
        if not isinstance(log_target, (bool, np.bool_)):
            raise ConfigError(f"KLDivLoss log_target must be True or False; got {log_target!r}")
        self.log_target = bool(log_target)

    @property
    def reduction(self) -> str:
        return self.__dict__.get("reduction", "mean")

    @reduction.setter
    def reduction(self, value: str) -> None:  # (batchmean too, which the kernels lack)
        if value not in ops.KL_REDUCTIONS:
            raise ConfigError(
                f"KLDivLoss reduction must be one of {', '.join(ops.KL_REDUCTIONS)}; got {value!r}"
            )
        self.__dict__["reduction"] = value

    def forward(self, output: Tensor, target: object) -> Tensor:
        return ops.kl_div(output, target, self.reduction, self.log_target)

    def __repr__(self) -> str:
        return f"KLDivLoss(reduction={self.reduction!r}, log_target={self.log_target})"


class _TorchLoss(Loss):
    """One of torch.nn's other losses (PoissonNLLLoss … TripletMarginLoss), on the recorded
    graph (its ``wxb.ops`` function, forward and backward side by side). Its options are
    plain attributes, set later too (``loss.margin = 0.5``) and checked at each call, as
    at construction; ``inputs``: how many tensors its forward takes before the target."""

    options: tuple[str, ...] = ()  # shown by repr, in torch's order
    inputs = 1

    def _make(self, reduction: str, given: dict, **options: object) -> None:
        torch_options(type(self).__name__, given, _DEPRECATED, _DEPRECATED_INSTEAD)
        self.reduction = reduction
        for key, value in options.items():
            self.__dict__[key] = value
        self._check()

    @property
    def reduction(self) -> str:
        return self.__dict__.get("reduction", "mean")

    @reduction.setter
    def reduction(self, value: str) -> None:
        if value not in ops.REDUCTIONS:
            raise ConfigError(
                f"{type(self).__name__} reduction must be 'mean', 'sum' or 'none'; got {value!r}"
            )
        self.__dict__["reduction"] = value

    def _check(self) -> None:
        """The options as the function checks them, on a small input (at construction, so
        a bad one is refused where it is given, not at the first step)."""
        weight = self.__dict__.get("weight")
        width = 2 if weight is None or not weight.ndim else weight.shape[-1]
        x = Tensor(np.full((1, width), 0.5))
        with no_grad():
            if type(self).inputs == 1:
                self.forward(x, np.ones((1, width)))
            elif isinstance(self, GaussianNLLLoss):
                self.forward(x, x, np.ones((1, width)))
            elif type(self).inputs == 2:
                self.forward(x, x, np.ones(1 if isinstance(self, CosineEmbeddingLoss) else (1, 2)))
            else:
                self.forward(x, x, x)

    def _settings(self) -> dict[str, object]:
        return {key: self.__dict__[key] for key in self.options}

    def __repr__(self) -> str:
        # a weight not given says nothing (as CrossEntropyLoss's, and torch's repr shows
        # none); one given, its numbers as CrossEntropyLoss's list
        shown = ", ".join(
            f"{key}={_shown(value)}" for key, value in self._settings().items() if value is not None
        )
        return f"{type(self).__name__}(reduction={self.reduction!r}{', ' if shown else ''}{shown})"


class PoissonNLLLoss(_TorchLoss):
    """Poisson negative log-likelihood, torch's PoissonNLLLoss (counts to predict): e^x −
    t·x of a log-rate x (``log_input=True``, a linear output), x − t·log(x + eps) of a rate
    x (``log_input=False``); ``full`` adds Stirling's term where t > 1. ``mean`` over every
    element; targets of the output's shape. ``fit(loss="poisson_nll")`` takes it."""

    options = ("log_input", "full", "eps")

    def __init__(
        self,
        log_input: bool = True,
        full: bool = False,
        size_average: None = None,
        eps: float = 1e-8,
        reduce: None = None,
        reduction: str = "mean",
    ) -> None:
        self._make(reduction, {"size_average": size_average, "reduce": reduce},
                   log_input=log_input, full=full, eps=eps)  # fmt: skip

    def forward(self, input: Tensor, target: object) -> Tensor:
        return ops.poisson_nll_loss(input, target, self.log_input, self.full, self.eps,
                                    self.reduction)  # fmt: skip


class GaussianNLLLoss(_TorchLoss):
    """Gaussian negative log-likelihood, torch's GaussianNLLLoss: ½·(log v + (x − t)²/v),
    v = max(var, eps) (+ ½·log 2π with ``full``); ``loss(input, target, var)``, var one per
    element, per row or a number. Its forward takes the variances too: a hand loop's
    loss (``loss(mean, y, var).backward()``), which ``fit(loss=…)`` refuses."""

    options = ("full", "eps")
    inputs = 2

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> None:
        self._make(reduction, {}, full=full, eps=eps)

    def __call__(self, input: Tensor, target: object, var: object) -> Tensor:
        return self.forward(input, target, var)

    def forward(self, input: Tensor, target: object, var: object) -> Tensor:
        return ops.gaussian_nll_loss(input, target, var, self.full, self.eps, self.reduction)


class SoftMarginLoss(_TorchLoss):
    """log(1 + e^(−y·x)) of labels y = ±1, torch's SoftMarginLoss (a two-class logistic
    loss); targets of the output's shape, ``mean`` over every element.
    ``fit(loss="soft_margin")`` takes it."""

    def __init__(
        self, size_average: None = None, reduce: None = None, reduction: str = "mean"
    ) -> None:
        self._make(reduction, {"size_average": size_average, "reduce": reduce})

    def forward(self, input: Tensor, target: object) -> Tensor:
        return ops.soft_margin_loss(input, target, self.reduction)


class MultiLabelSoftMarginLoss(_TorchLoss):
    """Several labels a row, torch's MultiLabelSoftMarginLoss: per row the mean over the C
    classes of the logistic loss of each (targets 0/1 of the output's shape), ``weight``
    one per class; ``mean`` over the rows. ``fit(loss="multilabel_soft_margin")`` takes it."""

    options = ("weight",)

    def __init__(
        self,
        weight: object = None,
        size_average: None = None,
        reduce: None = None,
        reduction: str = "mean",
    ) -> None:
        weight = _weight_array(weight, np.float64)
        self._make(reduction, {"size_average": size_average, "reduce": reduce}, weight=weight)

    def forward(self, input: Tensor, target: object) -> Tensor:
        return ops.multilabel_soft_margin_loss(input, target, self.weight, self.reduction)


class HingeEmbeddingLoss(_TorchLoss):
    """x where y = 1, max(0, margin − x) where y = −1, torch's HingeEmbeddingLoss (x a
    distance between a pair, y whether it is alike); ``mean`` over every element.
    ``fit(loss="hinge_embedding")`` takes it."""

    options = ("margin",)

    def __init__(
        self,
        margin: float = 1.0,
        size_average: None = None,
        reduce: None = None,
        reduction: str = "mean",
    ) -> None:
        self._make(reduction, {"size_average": size_average, "reduce": reduce}, margin=margin)

    def forward(self, input: Tensor, target: object) -> Tensor:
        return ops.hinge_embedding_loss(input, target, self.margin, self.reduction)


class MultiMarginLoss(_TorchLoss):
    """The multi-class hinge, torch's MultiMarginLoss: per row Σ_{j ≠ y} w_y·max(0,
    margin − x_y + x_j)^p / C over scores (N, C) and class indices (N,); p = 1 or 2,
    ``weight`` one per class; ``mean`` over the rows. ``fit(loss="multi_margin")`` takes it."""

    options = ("p", "margin", "weight")

    def __init__(
        self,
        p: int = 1,
        margin: float = 1.0,
        weight: object = None,
        size_average: None = None,
        reduce: None = None,
        reduction: str = "mean",
    ) -> None:
        weight = _weight_array(weight, np.float64)
        given = {"size_average": size_average, "reduce": reduce}
        self._make(reduction, given, p=p, margin=margin, weight=weight)

    def _check(self) -> None:
        ops.multi_margin_loss(Tensor(np.zeros(1 if self.weight is None else self.weight.size)),
                              np.array(0), self.p, self.margin, self.weight)  # fmt: skip

    def forward(self, input: Tensor, target: object) -> Tensor:
        return ops.multi_margin_loss(input, target, self.p, self.margin, self.weight,
                                     self.reduction)  # fmt: skip


class MultiLabelMarginLoss(_TorchLoss):
    """The multi-label hinge, torch's MultiLabelMarginLoss: per row Σ over its labels j and
    the other classes k of max(0, 1 − (x_j − x_k)) / C; the target (N, C) of class indices
    lists a row's labels first, −1 ending them. ``fit(loss="multilabel_margin")`` takes it."""

    def __init__(
        self, size_average: None = None, reduce: None = None, reduction: str = "mean"
    ) -> None:
        self._make(reduction, {"size_average": size_average, "reduce": reduce})

    def _check(self) -> None:
        return None

    def forward(self, input: Tensor, target: object) -> Tensor:
        return ops.multilabel_margin_loss(input, target, self.reduction)


class MarginRankingLoss(_TorchLoss):
    """max(0, −y·(x1 − x2) + margin), torch's MarginRankingLoss: ``loss(x1, x2, y)``, y = 1
    where x1 should rank above x2, −1 below. Two inputs: a hand loop's loss
    (``loss(model(a), model(b), y).backward()``), which ``fit(loss=…)`` refuses."""

    options = ("margin",)
    inputs = 2

    def __init__(
        self,
        margin: float = 0.0,
        size_average: None = None,
        reduce: None = None,
        reduction: str = "mean",
    ) -> None:
        self._make(reduction, {"size_average": size_average, "reduce": reduce}, margin=margin)

    def __call__(self, input1: Tensor, input2: Tensor, target: object) -> Tensor:
        return self.forward(input1, input2, target)

    def forward(self, input1: Tensor, input2: Tensor, target: object) -> Tensor:
        return ops.margin_ranking_loss(input1, input2, target, self.margin, self.reduction)


class CosineEmbeddingLoss(_TorchLoss):
    """1 − cos(x1, x2) where y = 1, max(0, cos(x1, x2) − margin) where y = −1, torch's
    CosineEmbeddingLoss: ``loss(x1, x2, y)`` on rows (N, D) and labels (N,). Two inputs:
    a hand loop's loss (``loss(model(a), model(b), y).backward()``), which
    ``fit(loss=…)`` refuses."""

    options = ("margin",)
    inputs = 2

    def __init__(
        self,
        margin: float = 0.0,
        size_average: None = None,
        reduce: None = None,
        reduction: str = "mean",
    ) -> None:
        self._make(reduction, {"size_average": size_average, "reduce": reduce}, margin=margin)

    def __call__(self, input1: Tensor, input2: Tensor, target: object) -> Tensor:
        return self.forward(input1, input2, target)

    def forward(self, input1: Tensor, input2: Tensor, target: object) -> Tensor:
        return ops.cosine_embedding_loss(input1, input2, target, self.margin, self.reduction)


class TripletMarginLoss(_TorchLoss):
    """max(0, margin + ‖a − p‖ − ‖a − n‖), torch's TripletMarginLoss (pairwise_distance's
    p-norm, ``eps`` added to each difference; ``swap``: the smaller distance to the
    negative). ``loss(anchor, positive, negative)``: a hand loop's loss, which
    ``fit(loss=…)`` refuses."""

    options = ("margin", "p", "eps", "swap")
    inputs = 3

    def __init__(
        self,
        margin: float = 1.0,
        p: float = 2.0,
        eps: float = 1e-6,
        swap: bool = False,
        size_average: None = None,
        reduce: None = None,
        reduction: str = "mean",
    ) -> None:
        given = {"size_average": size_average, "reduce": reduce}
        self._make(reduction, given, margin=margin, p=p, eps=eps, swap=swap)

    def __call__(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return self.forward(anchor, positive, negative)

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return ops.triplet_margin_loss(anchor, positive, negative, self.margin, self.p,
                                       self.eps, self.swap, self.reduction)  # fmt: skip


class TripletMarginWithDistanceLoss(_TorchLoss):
    """TripletMarginLoss with a distance of one's own, torch's
    TripletMarginWithDistanceLoss: ``distance_function(x1, x2)`` (default
    pairwise_distance), ``margin``, ``swap``. ``loss(anchor, positive, negative)``: a hand
    loop's loss, which ``fit(loss=…)`` refuses."""

    options = ("distance_function", "margin", "swap")
    inputs = 3

    def __init__(
        self,
        *,
        distance_function: Callable | None = None,
        margin: float = 1.0,
        swap: bool = False,
        reduction: str = "mean",
    ) -> None:
        self._make(reduction, {}, distance_function=distance_function, margin=margin, swap=swap)

    def _check(self) -> None:  # (a distance of one's own is not called before the user's call)
        if self.distance_function is not None and not callable(self.distance_function):
            raise ConfigError(
                "TripletMarginWithDistanceLoss: distance_function must be a function "
                "(x1, x2) → Tensor"
            )
        ops.triplet_margin_with_distance_loss(*[Tensor(np.zeros((1, 1)))] * 3,
                                              margin=self.margin, swap=self.swap)  # fmt: skip

    def __call__(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return self.forward(anchor, positive, negative)

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return ops.triplet_margin_with_distance_loss(
            anchor, positive, negative, distance_function=self.distance_function,
            margin=self.margin, swap=self.swap, reduction=self.reduction,
        )  # fmt: skip


class FunctionLoss(Loss):
    """A function ``f(output, target)`` that returns the batch's mean loss as a scalar
    Tensor, as a Loss (``fit(loss=f)``, as Keras takes a function for its loss). Its
    targets reach it as given, as a loss of one's own gets them."""

    def __init__(self, function: Callable[[Tensor, object], Tensor]) -> None:
        super().__init__("mean")
        self._function = function
        # a plain setting, so a checkpoint records which function a run trained with
        self.function = getattr(function, "__qualname__", type(function).__name__)

    def __call__(self, output: Tensor, target: object) -> Tensor:
        return self._function(output, target)

    def __repr__(self) -> str:
        return f"FunctionLoss({self.function})"


def computes_its_own(loss: Loss) -> bool:
    """Whether the loss is one of one's own: its ``__call__`` or ``forward`` is not a
    stock loss's (the planned step calls a stock loss's kernel; fit hands this one its
    targets as given)."""
    return _own_kind(type(loss)) or "forward" in vars(loss)


def _own_kind(kind: type) -> bool:
    return kind.__call__ is not _STOCK_CALL or kind.forward is not _STOCK_FORWARD


def own_code(loss: Loss) -> Callable:
    """The function that computes a loss of one's own (a checkpoint digests its code)."""
    if isinstance(loss, FunctionLoss):
        return loss._function
    if type(loss).__call__ is not _STOCK_CALL:
        return type(loss).__call__
    return vars(loss).get("forward", type(loss).forward)


class TargetForm:
    """Which form of (B, 1) targets a loss of one's own on one output column reads: fit,
    evaluate and explain make them so from a (B,) y, as a stock loss takes them, or hand
    (B,) where the loss reads them so (from a (B, 1) y too: ``out[:, 0] - y`` on it is no
    row-wise loss). One form broadcasts against the outputs into (B, B), each output
    against every row's target, without a word: a loss written ``(out[:, 0] - y)`` got
    (B, 1) targets and trained on that (B, B) mean, and one that refuses (B, 1),
    ``F.l1_loss(out[:, 0], y)``, was refused. The call's graph tells: an element-wise op
    of an output-derived (B,) or (B, 1) operand and a constant one of the other shape.

    Decided at the loss's first real call, with no call of its own: fit's first step
    (evaluate's first chunk, explain's call) hands it the targets in the form y was
    given, (B,) or (B, 1), and looks at that call's graph; only where that form spreads
    into (B, B), or is refused, is the loss called again, on the other form, which is
    taken where it does neither. Every later call gets the form decided. (A probe of
    the loss on three rows before training called it once or twice more, and ran the
    model's forward with its hooks on those rows: a loss or hook counting its calls,
    keeping the batches it saw or drawing random numbers saw calls a PyTorch loop does
    not make.) The targets come as (B, 1); ``output`` must record its graph (a leaf
    asking for a gradient, or the outputs of parameters that do)."""

    def __init__(self, by_row_first: bool = False) -> None:
        self.first = not by_row_first  # (B, 1) tried first: y was given so
        self.column: bool | None = None  # the form decided: (B, 1) or (B,); None: not yet

    def __call__(self, loss: Loss, output: Tensor, targets: object) -> Tensor:
        if not isinstance(targets, np.ndarray) or targets.shape[1:] != (1,):
            return loss(output, targets)
        if self.column is not None:
            return loss(output, targets if self.column else targets[:, 0])
        rows = len(targets)
        tried = {}
        for column in (self.first, not self.first):
            try:
                value = loss(output, targets if column else targets[:, 0])
            except Exception as refused:
                tried[column] = refused
                continue
            with np.errstate(all="ignore"):
                if rows < 2 or _spread_in(value, rows) is False:
                    # (one row tells nothing, unless the other form was refused)
                    self.column = column if rows >= 2 or column != self.first else None
                    return value
            tried[column] = value
        first = tried[self.first]  # neither form is read row by row: the first as given
        if isinstance(first, Exception):
            raise first
        self.column = self.first
        return first


def _spread_in(value: object, rows: int) -> bool:
    """Whether ``value``'s graph spreads a column (rows, 1) over a row (rows,) into
    (rows, rows), one operand constant and the other recorded (see TargetForm)."""
    pair = sorted([(rows,), (rows, 1)])
    seen, stack = set(), [value] if isinstance(value, Tensor) else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        inputs = node.inputs
        if (
            len(inputs) == 2
            and node.shape == (rows, rows)
            and sorted([inputs[0].shape, inputs[1].shape]) == pair
            and inputs[0].requires_grad != inputs[1].requires_grad
        ):
            return True
        stack.extend(inputs)
    return False


def stock_loss(loss: Loss) -> type[Loss] | None:
    """The stock loss whose numbers ``loss`` computes (its class, or a subclass keeping
    its ``__call__`` and ``forward``), which says what the targets and the outputs mean
    (accuracy, the task); None for a loss of one's own, a stock loss's subclass with its
    own call or forward too."""
    return None if "forward" in vars(loss) else _stock_kind(type(loss))


def accuracy_kind(loss: Loss) -> type[Loss] | None:
    """What fit and evaluate count an accuracy by: CrossEntropyLoss (the argmax),
    BCEWithLogitsLoss (z > 0) or BCELoss (a Sigmoid's p > 0.5, the same rows: with it no
    accuracy was recorded), MultiMarginLoss (the argmax of the scores), SoftMarginLoss
    (the sign of x against labels ±1), MultiLabelSoftMarginLoss (each label's x > 0), for
    those losses as their class computes them; else None."""
    kind = stock_loss(loss)
    if kind is not None:
        return kind if kind in (CrossEntropyLoss, BCEWithLogitsLoss) else None
    # a classifier's losses fit takes by name beside LOSSES: no accuracy was recorded
    return _graph_kind(loss, (BCELoss, MultiMarginLoss, SoftMarginLoss, MultiLabelSoftMarginLoss))


def _graph_kind(loss: Loss, kinds: tuple[type[Loss], ...]) -> type[Loss] | None:
    """The one of ``kinds`` whose numbers ``loss`` computes (its forward and call theirs)."""
    cls = type(loss)
    for graph in kinds:
        stock = cls.__call__ is _STOCK_CALL and cls.forward is graph.forward
        if isinstance(loss, graph) and stock and "forward" not in vars(loss):
            return graph
    return None


def recorded_name(loss: Loss) -> str | None:
    """The name fit records ``loss`` by, one get_loss takes back: a stock loss's
    (LOSSES), or GRAPH_LOSSES's ("bce", "kl_div", "poisson_nll", …) as their class
    computes them; None for a loss of one's own."""
    kind = stock_loss(loss)
    if kind is None and "forward" not in vars(loss):
        cls = type(loss)
        if cls.__call__ is _STOCK_CALL:  # (PoissonNLLLoss … too: fit takes them by name)
            graph = GRAPH_LOSSES.values()
            kind = next(
                (k for k in graph if isinstance(loss, k) and cls.forward is k.forward), None
            )
    # (GRAPH_LOSSES lists "bce" before its alias "binary_cross_entropy")
    return next((n for n, k in (*LOSSES.items(), *GRAPH_LOSSES.items()) if k is kind), None)


def figures_in_targets_dtype(loss: Loss) -> bool:
    """Whether fit's and evaluate's figures take float64 targets as given: a stock loss's,
    and PoissonNLLLoss's and MultiLabelSoftMarginLoss's, which compute in the wider dtype
    of outputs and targets (torch's functional forms, wxb's MSELoss); the other losses
    compute in the outputs' dtype."""
    if stock_loss(loss) is not None:
        return True
    return _graph_kind(loss, (PoissonNLLLoss, MultiLabelSoftMarginLoss)) is not None


def _stock_kind(kind: type) -> type[Loss] | None:
    """stock_loss by the loss's class (and a forward set on the instance): fit asks once a
    step. Cached by the class's code too: a forward assigned to it since makes it no
    stock loss."""
    return _stock_kind_of(kind, kind.forward, kind.__call__)


@functools.cache
def _stock_kind_of(kind: type, forward: Callable, call: Callable) -> type[Loss] | None:
    if _own_kind(kind):
        return None
    return next((stock for stock in LOSSES.values() if issubclass(kind, stock)), None)


# A stock loss's plain options, as fit records those set (model.info["loss_options"]):
# a second fit or evaluate without loss= rebuilds the loss training applied. (Class
# weights are WEIGHT_OPTIONS, recorded beside them.)
PLAIN_OPTIONS = (
    "reduction", "delta", "beta", "label_smoothing", "ignore_index", "log_target",
    "log_input", "full", "eps", "margin", "p",
)  # fmt: skip


# The options that weigh classes, labels or positives: fit records their values
# (model.info["loss_weights"], each a nested list of float64 in its shape), so that
# evaluate, wxb eval and a second fit without loss= apply the loss training applied. A
# model file from before holds only their names (a list): those say none is applied.
WEIGHT_OPTIONS = ("weight", "pos_weight")


def weights_set(loss: Loss) -> list[str]:
    """The WEIGHT_OPTIONS ``loss`` was given: CrossEntropyLoss's, NLLLoss's,
    MultiMarginLoss's and MultiLabelSoftMarginLoss's weight, BCEWithLogitsLoss's weight
    and pos_weight (each kept in the instance's dict, None when unset)."""
    return [key for key in WEIGHT_OPTIONS if loss.__dict__.get(key) is not None]


def weight_values(loss: Loss) -> dict[str, list]:
    """Each WEIGHT_OPTION ``loss`` was given, as the loss reads it (float64, in its shape),
    a nested list: JSON keeps a float64 exactly, so the loss rebuilt from it is this one."""
    values = {}
    for key in weights_set(loss):
        value = getattr(loss, key)
        values[key] = np.asarray(getattr(value, "data", value), np.float64).tolist()
    return values


def plain_options(loss: Loss, name: str) -> dict[str, object]:
    """``loss``'s PLAIN_OPTIONS that differ from those of the loss ``name`` by default."""
    default, options = {**LOSSES, **GRAPH_LOSSES}[name](), {}
    for key in PLAIN_OPTIONS:
        value = getattr(loss, key, None)
        if hasattr(default, key) and value != getattr(default, key):
            options[key] = value.item() if isinstance(value, np.generic) else value  # (JSON)
    return options


def mean_weight(loss: Loss, y: object) -> float | None:
    """Σᵢ w_yᵢ over the rows not ignored, the divisor of a cross-entropy's mean over class
    indices with class weights or rows ignored (PyTorch's); None where the mean is over
    the rows (no such option, none ignored, or probabilities as targets)."""
    kernel = getattr(loss, "kernel", None)  # the cheap tests first: fit asks once a step
    if not isinstance(kernel, ops.CrossEntropyKernel) or loss.reduction != "mean":
        return None
    if stock_loss(loss) is not CrossEntropyLoss:
        return None
    y = np.asarray(y.data if isinstance(y, Tensor) else y)
    if y.ndim != 1:
        return None
    ignored = kernel.ignored_rows(y)  # (one argmin for PyTorch's -100, per batch of fit)
    if kernel.weight is None:  # none ignored: over the rows (a distributed rank's y is its share)
        return None if ignored is None else float(len(y) - ignored.sum())
    kept = np.ones(len(y), bool) if ignored is None else ~ignored
    picked = np.where(kept, y, 0).astype(np.intp)
    return float(np.asarray(kernel.weight, np.float64)[picked][kept].sum())


def counts_no_row(loss: Loss, y: object) -> bool:
    """Whether every row of the batch is of a cross-entropy's ignore_index: PyTorch's mean
    is NaN (0/0) then and its gradient 0, and its loop's step still runs (Adam's moments
    decay, momentum moves on): not a loss that diverged. (Class weights of 0 give NaN
    gradients, in PyTorch too: that one is.)"""
    if loss.reduction != "mean" or stock_loss(loss) is not CrossEntropyLoss:
        return False
    y = np.asarray(y.data if isinstance(y, Tensor) else y)
    kernel = getattr(loss, "kernel", None)
    return (
        y.ndim == 1
        and y.size > 0
        and isinstance(kernel, ops.CrossEntropyKernel)
        and bool((y == kernel.ignore_index).all())
    )


def one_number(loss: Loss, value: object) -> Tensor:
    """The loss's value for a batch, refused in one line when a loss of one's own gives
    anything but a Tensor of one number (fit and evaluate add them up per batch)."""
    if isinstance(value, Tensor) and value.data.size == 1:
        return value
    batch_loss(loss)  # refused in its own words if reduction 'none' was set since
    kind, package = type(value), type(value).__module__.split(".")[0]
    named = kind.__name__ if package in ("wxb", "builtins") else f"{package}.{kind.__name__}"
    got = f"shape {value.shape}" if isinstance(value, Tensor) else f"a {named}"  # torch.Tensor
    name = loss.function if isinstance(loss, FunctionLoss) else type(loss).__name__
    raise ConfigError(
        f"the loss {name} returned {got}; fit and evaluate need a Tensor of one number, "
        "the batch's mean (reduce per-row losses with .mean())"
    )


LOSSES: dict[str, type[Loss]] = {
    "mse": MSELoss,
    "cross_entropy": CrossEntropyLoss,
    "bce_with_logits": BCEWithLogitsLoss,
    "nll": NLLLoss,  # after cross_entropy: stock_loss counts it as that (log-probabilities)
    "l1": L1Loss,
    "huber": HuberLoss,
    "smooth_l1": SmoothL1Loss,
}
# losses fit takes by name besides LOSSES (torch.nn.functional's names; "bce" beside
# "bce_with_logits"): on the recorded graph, not --loss choices; fit records them in info
# as "bce" and "kl_div" (recorded_name)
GRAPH_LOSSES: dict[str, type[Loss]] = {
    "bce": BCELoss,
    "binary_cross_entropy": BCELoss,
    "kl_div": KLDivLoss,
    # torch.nn.functional's names of those taking one input and a target, less "_loss"
    "poisson_nll": PoissonNLLLoss,
    "soft_margin": SoftMarginLoss,
    "multilabel_soft_margin": MultiLabelSoftMarginLoss,
    "hinge_embedding": HingeEmbeddingLoss,
    "multi_margin": MultiMarginLoss,
    "multilabel_margin": MultiLabelMarginLoss,
}
# the losses whose forward takes more than (output, target): a hand loop's
HAND_LOOP_LOSSES = (GaussianNLLLoss, MarginRankingLoss, CosineEmbeddingLoss, TripletMarginLoss,
                    TripletMarginWithDistanceLoss)  # fmt: skip
# the losses of a regression (numbers to predict), by name: the rest are a classifier's
REGRESSION_LOSSES = ("mse", "l1", "huber", "smooth_l1")
# the losses fit records whose outputs are numbers, not class scores (info's task
# "regression"): Poisson's log-rates (or rates), HingeEmbeddingLoss's distances
NUMBER_LOSSES = (*REGRESSION_LOSSES, "poisson_nll", "hinge_embedding")


def batch_loss(loss: Loss) -> Loss:
    """``loss`` itself, refused when it gives a loss per sample (reduction 'none'), where
    fit, evaluate and a training step add up one number per batch."""
    if loss.reduction == "none" and not computes_its_own(loss):
        raise ops.per_sample_refused(type(loss).__name__)
    return loss


def get_loss(loss: str | Loss | Callable[[Tensor, object], Tensor]) -> Loss:
    if isinstance(loss, HAND_LOOP_LOSSES):
        # fit, evaluate and a step call loss(output, target): this one's forward takes more
        kind = type(loss).__name__
        takes = "(input, target, var)" if isinstance(loss, GaussianNLLLoss) else (
            "(input1, input2, target)" if loss.inputs == 2 else "(anchor, positive, negative)"
        )  # fmt: skip
        raise ConfigError(
            f"loss {kind} takes {takes}, not a model's (output, target): fit, evaluate and "
            f"a training step cannot call it; train it in a loop of your own, "
            f"{kind}()(…).backward() then optimizer.step()"
        )
    if isinstance(loss, Loss):
        return batch_loss(loss)
    if isinstance(loss, type) and issubclass(loss, Loss):
        raise ConfigError(f"loss is the class {loss.__name__}; give an instance: {loss.__name__}()")
    torch_kinds = [str(getattr(loss, "__module__", None) or "")]  # (F.cross_entropy)
    torch_kinds += [kind.__module__ for kind in type(loss).__mro__]  # (a torch.nn.Module's own)
    if any(module.split(".")[0] == "torch" for module in torch_kinds):
        # a torch.nn loss (or F.cross_entropy) is callable, and stopped at the first step on
        # "argument 'input' (position 1) must be Tensor, not Tensor"
        name = getattr(loss, "__name__", type(loss).__name__)
        raise ConfigError(
            f"loss is PyTorch's {name}, which takes torch tensors; give one "
            f"of wxb's (loss='cross_entropy', 'mse', …, or wxb.nn's losses, which take "
            "PyTorch's options)"
        )
    if callable(loss):
        return FunctionLoss(loss)
    if isinstance(loss, str) and loss in GRAPH_LOSSES:
        return GRAPH_LOSSES[loss]()
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ConfigError(
            f"loss must be one of {', '.join([*LOSSES, *GRAPH_LOSSES])}, a Loss, or a "
            f"function (output, target) → Tensor; got {loss!r}"
        )
    return LOSSES[loss]()
