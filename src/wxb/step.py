"""A training step: forward, loss, backward, update.

``GraphStep`` works for any model: it records the graph and calls ``backward()``.
``PlannedStep`` runs the same kernels for a ``Sequential`` of Dense, activation,
Dropout and Standardize layers, straight through the seed's equations, into
buffers allocated on the first step and reused after it:

    forward   Z⁽ˡ⁾ = W⁽ˡ⁾·A⁽ˡ⁻¹⁾ + b⁽ˡ⁾,  A⁽ˡ⁾ = f(Z⁽ˡ⁾)
    output    δ⁽ᴸ⁾ = ∇_A L ⊙ f′(Z⁽ᴸ⁾)
    backward  δ⁽ˡ⁾ = (W⁽ˡ⁺¹⁾ᵀ·δ⁽ˡ⁺¹⁾) ⊙ f′(Z⁽ˡ⁾)
    gradients ∂L/∂W⁽ˡ⁾ = δ⁽ˡ⁾·A⁽ˡ⁻¹⁾ᵀ,  ∂L/∂b⁽ˡ⁾ = Σ_batch δ⁽ˡ⁾

Both give the same loss, gradients and weights (tests check it).
"""

from __future__ import annotations

import math
import threading

import numpy as np

from wxb import ops
from wxb.distributed import GradientSum
from wxb.errors import ConfigError
from wxb.nn.layers import Dense
from wxb.nn.losses import (
    Loss,
    TargetForm,
    computes_its_own,
    counts_no_row,
    get_loss,
    one_number,
)
from wxb.nn.module import WEIGHTS, Module, class_code, same_class_code, structure_version
from wxb.nn.plan import LeanStack, StackPlan, unplannable_reason
from wxb.nn.sequential import Sequential, own_code_reason, plan_key, same_plan_key
from wxb.optim import Optimizer, clip_grad_norm_, get_optimizer
from wxb.tensor import Tensor, float_array, refuse_masked


class _Update:
    """The end of a step, shared by both steps: the distributed sum, clipping, the update."""

    reducer: GradientSum | None
    optimizer: Optimizer
    clip_norm: float | None

    def _update(self, value: float, output: np.ndarray | None, y: np.ndarray | None) -> float:
        """Sum the gradients over the ranks (distributed), clip, and step."""
        if self.reducer is not None:
            value = self.reducer.finish(value, output, y)  # the global batch's loss
            if not math.isfinite(value):
                return value
        if self.clip_norm is not None:
            clip_grad_norm_(self.optimizer.params, self.clip_norm)
        self.optimizer.step()
        if self.reducer is not None and self.reducer.shared is not None:
            self.reducer.shared.updated()  # every rank's slice of the shared weights written
        return value


def batch_array(X: object, model: Module) -> np.ndarray:
    """A batch as a step takes it: an array as it is (in the machine's byte order; its
    dtype must be the model's), anything else (a list, a torch tensor) read as an array
    in the model's dtype, as ``model(X)`` reads it."""
    if isinstance(X, np.ndarray):
        if type(X) is not np.ndarray:
            refuse_masked(X, "X")
        return X if X.dtype.isnative else X.astype(X.dtype.newbyteorder("="))
    if ops.is_sparse(X):  # CSR rows, for the plan's first Dense to multiply sparse
        return X.tocsr().astype(model.dtype, copy=False)
    return float_array(np.asarray(X), model.dtype, "X")


def loss_and_optimizer(model: Module, loss: object, optimizer: object) -> tuple[Loss, Optimizer]:
    """A step's loss and optimiser as fit takes them: the loss by name, a Loss or a
    function; an Optimizer, or a name (one over the model's trainable parameters). A
    torch loss or optimiser, a class, anything else: refused in one line (they failed at
    the first step on an attribute a wxb one has)."""
    loss = get_loss(loss)
    if not isinstance(optimizer, Optimizer):
        optimizer = get_optimizer(optimizer, [p for p in model.parameters() if p.requires_grad])
    return loss, optimizer


class GraphStep(_Update):
    """One step through the recorded graph: works for any Module."""

    def __init__(
        self, model: Module, loss: Loss, optimizer: Optimizer, clip_norm: float | None = None
    ) -> None:
        self.loss, optimizer = loss_and_optimizer(model, loss, optimizer)
        self.model, self.optimizer, self.clip_norm = model, optimizer, clip_norm
        self.reducer: GradientSum | None = None  # set by a distributed fit
        # the targets' form a loss of one's own reads (fit's, decided at the first step)
        self.form: TargetForm | None = None

    def __call__(self, X: np.ndarray, y: np.ndarray) -> float:
        """Returns the batch loss; a non-finite loss is returned before any update."""
        self.optimizer.zero_grad()
        # Arrays of their own, as a DataLoader's batches are: fit refills one buffer a batch,
        # and a forward or loss of one's own that kept its input or targets saw each kept
        # batch become the later ones
        if not isinstance(X, Tensor):
            if ops.is_sparse(X):  # the graph computes on dense rows: this batch's
                X = X.toarray()
            X = np.array(batch_array(X, self.model))
            # ids for a forward of one's own stay whole, as model(ids) hands them over
            X = X if X.dtype.kind in "biu" and self.model._own_forward() else Tensor(X)
        if isinstance(y, np.ndarray):
            y = np.array(y)
        # forward and backward one read of the weights: another thread's step waits for
        # both (between them, its backward refused; in the forward, gradients of no weights)
        with WEIGHTS.reading(self.model):
            output = self.model(X)
            # before the update: fit's running accuracy reads it. A forward of one's own
            # may give a tuple or a dict, which a loss of one's own reads (two heads), as a
            # PyTorch loop takes it: there is no one output then (fit refuses such a model
            # before any step; make_step's loop stopped at "'tuple' object has no
            # attribute 'data'")
            self.output = output.data if isinstance(output, Tensor) else None
            form = self.form
            value = one_number(
                self.loss, self.loss(output, y) if form is None else form(self.loss, output, y)
            )
            number = value.item()  # ((1,) or (1, 1) too, as PyTorch's backward takes them)
            if (
                self.reducer is None
                and not math.isfinite(number)
                and not counts_no_row(self.loss, y)
            ):
                return number
            value.backward()
        return self._update(number, self.output, y)

    def contribute_nothing(self) -> float:
        """A distributed step in which this rank holds no row of the batch: zero
        gradients into the sum, then the same update as the other ranks."""
        self.optimizer.zero_grad()
        self.output = None
        return self._update(0.0, None, None)


def run_layers(model: Sequential) -> list:
    """The layers Sequential.forward runs, in order: its table's, not what iterating the
    model gives (a subclass's own __iter__, keeping Sequential's forward, was planned as
    the layers it listed and trained another network without a word)."""
    return list(model._modules.values())


class PlannedStep(_Update):
    """One step of a Sequential MLP with every buffer planned once and reused."""

    @classmethod
    def why_not(
        cls, model: Module, optimizer: Optimizer | None = None, loss: Loss | None = None
    ) -> str | None:
        """None when this step computes exactly what ``model``'s forward and ``loss`` do and
        trains exactly what the optimiser holds; else the reason (``make_step`` then takes
        GraphStep)."""
        if not isinstance(model, Sequential):
            return f"the model is a {type(model).__name__}, not a Sequential"
        reason = own_code_reason(model) or unplannable_reason(run_layers(model))
        if reason is not None:
            return reason
        if loss is not None and computes_its_own(loss):
            # the planned step calls the loss's kernel, never its __call__ or forward
            return f"the loss {type(loss).__name__} overrides __call__ or forward"
        if optimizer is not None:
            trainable = {id(p) for p in model.parameters() if p.requires_grad}
            if {id(p) for p in optimizer.params} != trainable:
                return "the optimiser does not hold exactly the model's trainable parameters"
        return None

    @classmethod
    def supports(cls, model: Module) -> bool:
        """A plain Sequential of stock layers whose parameters are not shared."""
        return cls.why_not(model) is None

    def __init__(
        self, model: Sequential, loss: Loss, optimizer: Optimizer, clip_norm: float | None = None
    ) -> None:
        loss, optimizer = loss_and_optimizer(model, loss, optimizer)
        reason = self.why_not(model, optimizer, loss)
        if reason is not None:
            raise ConfigError(
                f"PlannedStep cannot run this model: {reason}; use GraphStep (or make_step)"
            )
        self.model, self.loss, self.optimizer, self.clip_norm = model, loss, optimizer, clip_norm
        self.plan = StackPlan(run_layers(model))
        self.loss_grad: np.ndarray | None = None
        self.reducer: GradientSum | None = None  # set by a distributed fit
        # the model as planned: a layer replaced, removed or given a forward since, and the
        # step plans again, or runs the graph (as GraphStep) where no plan computes it
        self._version, self._key = structure_version(), plan_key(model)
        self._graph: GraphStep | None = None
        self._take_code()

    def _take_code(self) -> None:
        """The forwards the model's, its layers' and the loss's classes have now, and the
        loss's own: a forward set on one since (MyDense.forward = …, loss.forward = …)
        changes what the step must compute, and no structure_version records it."""
        self._code = class_code((self.model, *run_layers(self.model), self.loss))
        self._loss_forward = vars(self.loss).get("forward")

    def _as_planned(self) -> bool:
        """Whether nothing the plan was checked against changed since."""
        return (
            self._version == structure_version()
            and same_class_code(self._code)
            and vars(self.loss).get("forward") is self._loss_forward
        )

    def _follow_model(self) -> None:
        """Plan again if the model's layers or parameters changed since it was planned."""
        self._version = structure_version()
        self._take_code()
        key = plan_key(self.model)
        planned = self.why_not(self.model, None, self.loss) is None  # (hooks added too)
        if same_plan_key(key, self._key) and planned == (self._graph is None):
            return
        self._key = key
        if planned:
            self.plan, self._graph = StackPlan(run_layers(self.model)), None
        else:
            self._graph = GraphStep(self.model, self.loss, self.optimizer, self.clip_norm)

    def __call__(self, X: np.ndarray, y: np.ndarray) -> float:
        if not self._as_planned():
            self._follow_model()
        if self._graph is not None:
            self._graph.reducer, self._graph.clip_norm = self.reducer, self.clip_norm
            value = self._graph(X, y)
            self.output = self._graph.output
            return value
        # forward and backward one read of the weights, as GraphStep's: another thread's
        # step (a hand loop's, load_state_dict) between the products gave gradients of no
        # weights, and one between forward and backward too (nothing records versions here)
        me, readers = threading.get_ident(), WEIGHTS.readers
        if me in readers:  # (fit inside this thread's call: read already)
            value, x, y = self._gradients(X, y)
        else:
            WEIGHTS.read(self.model, me)
            try:
                value, x, y = self._gradients(X, y)
            finally:
                WEIGHTS.done_reading(me)
        if x is None:  # (a loss that is not finite: returned before any update)
            return value
        return self._update(value, x, y)

    def _gradients(self, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray | None, object]:
        """The batch's loss, output and targets, the gradients written; no output where
        the loss is not finite (no update follows)."""
        if self.reducer is None and type(X) is np.ndarray:
            X = self.plan.rows(X)  # (N, 28, 28) through a Flatten in front
            lean = self.plan.lean_for(X)  # a batch size that has run before
            if lean is not None:
                return self._lean_step(lean, X, y)
        plan = self.plan
        X = plan.rows(X.data if isinstance(X, Tensor) else batch_array(X, self.model))
        y = y.data if isinstance(y, Tensor) else y
        plan.check(X)
        self.optimizer.grad_buffers()  # re-gathers the parameters if the model was cast
        x = plan.forward(X)
        self.output = x
        # -- loss and ∇_A L, into a buffer of its own -----------------------------------------
        if (
            self.loss_grad is None
            or self.loss_grad.dtype != x.dtype
            or self.loss_grad.shape[1:] != x.shape[1:]  # a head of another width since
            or len(self.loss_grad) < len(x)
        ):
            self.loss_grad = np.empty_like(x)
        grad = self.loss_grad[: len(x)]
        y = ops.loss_target(y, x, self.loss.kernel)  # as the loss reads it on the graph path
        value = self.loss.kernel.value_and_grad(x, y, grad)
        reducer = self.reducer
        if reducer is None and not math.isfinite(value) and not counts_no_row(self.loss, y):
            return value, None, None
        if reducer is not None:
            if reducer.scale != 1.0:
                grad *= reducer.scale  # this rank's share of the global batch's mean loss
            reducer.scaled = True
        self.optimizer.zero_grad()  # the δ chain writes ∂L/∂W where the optimiser reads it
        plan.backward(grad, None if reducer is None else reducer.layer_done)
        return value, x, y

    def _lean_step(self, lean: LeanStack, X: np.ndarray, y: np.ndarray) -> tuple:
        """``_gradients`` on the plan's lean stack for this batch size: the same loss and
        gradients, with the plan's checks and dispatch made once for it."""
        x = self.output = lean.forward(X)
        grad = lean.loss_grad
        y = ops.loss_target(y.data if isinstance(y, Tensor) else y, x, self.loss.kernel)
        value = self.loss.kernel.value_and_grad(x, y, grad)
        if not math.isfinite(value) and not counts_no_row(self.loss, y):
            return value, None, None
        self.optimizer.zero_grad()
        lean.backward(X)
        return value, x, y

    def contribute_nothing(self) -> float:
        """A distributed step in which this rank holds no row of the batch: zero
        gradients, summed layer by layer as a backward would, then the same update."""
        if not self._as_planned():
            self._follow_model()
        if self._graph is not None:
            self._graph.reducer, self._graph.clip_norm = self.reducer, self.clip_norm
            return self._graph.contribute_nothing()
        self.optimizer.zero_grad()
        self.output = None
        trainable = {id(p) for p in self.optimizer.params}
        homes = {id(p.grad_home): p.grad_home for p in self.plan.params if p.grad_home is not None}
        for home in homes.values():  # as backward: a gradient a user kept is not written over
            home.ensure_free()
        for layer, params in zip(
            reversed(self.plan.layers), reversed(self.plan.layer_params), strict=True
        ):
            if not isinstance(layer, Dense):
                continue
            for p in params:
                if p.requires_grad and id(p) in trainable:
                    home = p.grad_buffer
                    p.grad = home if home is not None and home.shape == p.shape else None
                    if p.grad is None:
                        p.grad = np.zeros_like(p.data)
                    p.grad[...] = 0
            self.reducer.layer_done(params)
        return self._update(0.0, None, None)

    @property
    def outputs(self) -> list[np.ndarray]:
        """The planned per-layer output buffers (for inspection and tests)."""
        return self.plan.outputs


def make_step(
    model: Module, loss: Loss, optimizer: Optimizer, clip_norm: float | None = None
) -> GraphStep | PlannedStep:
    """The planned step where it computes exactly what the model does, else the graph step.
    ``loss`` and ``optimizer`` as fit takes them (names too: see loss_and_optimizer)."""
    loss, optimizer = loss_and_optimizer(model, loss, optimizer)
    if PlannedStep.why_not(model, optimizer, loss) is None:
        return PlannedStep(model, loss, optimizer, clip_norm)
    return GraphStep(model, loss, optimizer, clip_norm)
