"""Losses L(ŷ, y). Each returns a scalar Tensor whose backward gives δ⁽ᴸ⁾'s ∂L/∂ŷ,
and ∂L/∂y too when the target is a tensor that requires grad (another model's output).

Reductions: ``"mean"`` divides by the batch size B (for BCEWithLogitsLoss, by the
number of elements, as PyTorch does); ``"sum"`` does not divide.
"""

from __future__ import annotations

import dataclasses

from wxb import ops
from wxb.errors import ConfigError
from wxb.tensor import Tensor


class Loss:
    kernel: ops.LossKernel

    def __init__(self, reduction: str = "mean") -> None:
        self.reduction = reduction

    @property
    def reduction(self) -> str:
        # kept in the instance's dict under its own name: pickles and vars(loss) (a
        # checkpoint's loss settings) read it as before it was a property
        return self.__dict__["reduction"]

    @reduction.setter
    def reduction(self, value: str) -> None:
        """Set later too (as in PyTorch): the kernel that computes the loss follows."""
        if value not in ("mean", "sum"):
            raise ConfigError(f"{type(self).__name__} reduction must be 'mean' or 'sum'")
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
        return ops.loss(output, target, self.kernel)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class MSELoss(Loss):
    """The seed's L = ½(ŷ − y)², summed over the outputs of a sample.

    With ``reduction="mean"`` it is averaged over the B samples of the batch:
    L = (1/B) Σᵢ ½‖ŷᵢ − yᵢ‖², so ∂L/∂ŷ = (ŷ − y)/B, the seed's δ⁽ᴸ⁾ before ⊙ f′(Z).
    (PyTorch's ``MSELoss`` averages (ŷ − y)² over all elements instead: for C outputs
    it equals 2/C times this loss.)
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.kernel = ops.MSEKernel(reduction)


class CrossEntropyLoss(Loss):
    """Softmax and cross-entropy on logits, fused and stable: −Σ y log softmax(z).

    Targets are class indices (B,) or class probabilities (B, C); the mean is
    over the B samples. δ⁽ᴸ⁾ = (softmax(Z) − Y)/B.
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.kernel = ops.CrossEntropyKernel(reduction)


class BCEWithLogitsLoss(Loss):
    """Sigmoid and binary cross-entropy on logits, stable; targets in [0, 1], output's shape."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.kernel = ops.BCEWithLogitsKernel(reduction)


LOSSES: dict[str, type[Loss]] = {
    "mse": MSELoss,
    "cross_entropy": CrossEntropyLoss,
    "bce_with_logits": BCEWithLogitsLoss,
}


def get_loss(loss: str | Loss) -> Loss:
    if isinstance(loss, Loss):
        return loss
    if loss not in LOSSES:
        raise ConfigError(f"loss must be one of {', '.join(LOSSES)}; got {loss!r}")
    return LOSSES[loss]()
