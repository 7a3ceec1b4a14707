"""scikit-learn's ``MLPClassifier`` and ``MLPRegressor``, trained by wxb's engine.

    from wxb.sklearn import MLPClassifier, MLPRegressor   # the only change a script needs

Every constructor parameter of scikit-learn 1.9's estimators is here with the same
name, meaning and default, and training follows scikit-learn's objective and update
rules step for step (the tests copy weights between the two and compare them to
1e-10 after several epochs):

- loss: squared error ½·(mean over outputs of the sample-mean of (ŷ − y)²) for
  ``loss_``, with output gradient ŷ − y (per output, not divided by their number,
  exactly as scikit-learn); half Poisson deviance with an exp output; log-loss with
  softmax (multiclass) or logistic outputs (binary, multilabel: summed over labels);
  probabilities clipped to [ε, 1 − ε] for the reported loss only
- L2: α/2·Σ‖W‖² divided by the batch's sample count (the sum of its sample weights),
  on the weights only, in ``loss_`` and in the gradient
- solvers: "sgd" and "adam" with scikit-learn's rules (``wxb.sklearn_optim``), "lbfgs"
  through ``scipy.optimize.minimize(method="L-BFGS-B", jac=True)`` configured as
  scikit-learn does (maxfun=max_fun, maxiter=max_iter, gtol=tol)
- schedules, ``tol``/``n_iter_no_change`` stopping, ``early_stopping`` with the
  validation split scikit-learn makes (the best weights restored at the end),
  Glorot-uniform initialisation (factor 2 for logistic), ``batch_size="auto"`` =
  min(200, n_samples), ``sample_weight``, ``warm_start`` and ``partial_fit``
- random numbers: drawn from ``check_random_state(random_state)`` in the order
  scikit-learn draws them (initial weights, validation split, shuffles), so the
  same ``random_state`` gives the same run as scikit-learn's, up to rounding

The network is a wxb ``Sequential`` of ``Dense`` and activation layers (its W is
scikit-learn's coefficient matrix transposed). Each batch runs the planned forward
and backward of ``wxb.nn.plan.StackPlan`` into buffers allocated once, with the
output layer's error term δ = (ŷ − y)·w/Σw computed here, and one step of the
update rule over a single flat parameter buffer; nothing is allocated per batch. A
SciPy sparse X stays sparse, as in scikit-learn: the first layer's Z = X·Wᵀ and
∂L/∂W = δᵀ·X are sparse × dense products, in training and predicting alike.
(bench/sklearn_bench.py measures it against scikit-learn and against the matrix
products alone.)

wxb's own parameters, whose defaults keep scikit-learn's behaviour:

``dtype=None``
    None follows X as scikit-learn does: float32 X trains and predicts in float32,
    anything else in float64 (so a user with float64 data gets scikit-learn's
    arithmetic, equal up to rounding, at the speed of float64 matrix products). "float32" or
    "float64" force one; ``dtype="float32"`` on float64 data is the fast path. The
    network keeps the dtype it was built with: later ``partial_fit``/``warm_start``
    data, and data to predict, are cast to it, and outputs come in it.
``dropout=0.0``
    Inverted dropout with this rate after every hidden layer's activation, while
    training with "sgd", "adam" or "adamw" (not "lbfgs"); off when predicting.
``solver="adamw"``
    scikit-learn's Adam with decoupled weight decay (Loshchilov & Hutter): before
    each step W ← W·(1 − η·α), weights only, with η = ``learning_rate_init``. Here
    ``alpha`` is that decay rate λ (PyTorch's ``AdamW(weight_decay=alpha)``), not an
    L2 penalty: neither the gradient nor ``loss_`` holds an L2 term. Useful values are
    larger than scikit-learn's default α = 1e-4 (try 1e-2).
``device="cpu"``
    Only "cpu" for now; anything else is refused with a ValueError.

Deviations from scikit-learn (besides those extras):

- outputs (``predict_proba``, regression predictions) come in the network's dtype:
  a float32 network predicting on float64 X gives float32 (scikit-learn mixes)
- "lbfgs" on float32 keeps float32 weights (scikit-learn's come back float64)
- in float32, Adam's update is computed in float32 (scikit-learn's last product is
  upcast to float64 by its float64 step size): float32 runs of the two agree at first
  and drift apart over many steps, as any two float32 computations do
- ``loss_`` and ``loss_curve_`` hold Python floats
- the gradients agree with scikit-learn's to the last bit or two, not bit for bit:
  "lbfgs" magnifies that over a long run (see docs/sklearn.md)
- warnings (``ConvergenceWarning``, the clipped ``batch_size``) are filtered as if
  raised in scikit-learn's MLP module, so the filters scripts write for scikit-learn's
  (``module="sklearn"``, as its examples do) apply to them
- ``partial_fit`` is unavailable for solver "lbfgs" in both estimators (scikit-learn's
  ``MLPRegressor`` offers it and then runs a whole L-BFGS fit)
- after a ``fit`` with "lbfgs", ``partial_fit`` starts new Adam moments or SGD
  velocities; scikit-learn goes on with those of the last stochastic fit before it,
  made for weights that "lbfgs" has moved since
- ``warm_start``/``partial_fit`` with layer sizes that no longer fit the network
  raise a ValueError naming both
- ``coefs_`` and ``intercepts_`` are views of the network's parameters: writing into
  them, assigning a list, or assigning an item changes the network (shapes must fit)

Needs scikit-learn ≥ 1.6 (``validate_data``, ``__sklearn_tags__``) and SciPy. Besides
public API it uses three long-stable private helpers, as third-party estimators
commonly do: ``sklearn.base._fit_context`` (parameter validation),
``sklearn.utils._param_validation`` (the constraint types) and
``sklearn.utils.validation._check_sample_weight``.
"""

from __future__ import annotations

import copy
import sys
import warnings
from itertools import pairwise
from numbers import Real
from typing import ClassVar

import numpy as np

from wxb.errors import install_hint

try:  # (an optional extra: Python's bare "No module named 'sklearn.base'" said not which)
    import scipy
    import sklearn  # noqa: F401
except ImportError as missing:
    raise ImportError(
        f"wxb.sklearn needs scikit-learn: {install_hint('scikit-learn', 'sklearn')}"
    ) from missing
import scipy.optimize
import scipy.sparse
from scipy.special import expit, xlogy
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as _SkClassifier
from sklearn.neural_network import MLPRegressor as _SkRegressor
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d, shuffle
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from wxb import ops
from wxb.backend import is_cpu
from wxb.nn.layers import Activation, Dense, Dropout, ReLU, Sigmoid, Tanh
from wxb.nn.layers import Identity as IdentityLayer
from wxb.nn.module import WEIGHTS
from wxb.nn.plan import StackPlan
from wxb.nn.sequential import Sequential
from wxb.sklearn_optim import OPTIMIZERS, FlatBuffer, SklearnAdam, SklearnSGD
from wxb.tables import target_names
from wxb.tensor import Tensor, no_grad, refuse_masked

__all__ = ["MLPClassifier", "MLPRegressor"]

_STOCHASTIC_SOLVERS = ("sgd", "adam", "adamw")
_HIDDEN_LAYERS = {"identity": IdentityLayer, "logistic": Sigmoid, "tanh": Tanh, "relu": ReLU}
_PREDICT_ROWS = 4096  # rows per forward pass when predicting (bounds the buffers)


def _extra_constraints() -> dict:
    return {
        "solver": [StrOptions({"lbfgs", "sgd", "adam", "adamw"})],
        "dtype": "no_validation",  # checked by _model_dtype, with its own message
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "device": "no_validation",  # checked by _check_device, with its own message
    }


def _resolve_dtype(dtype: object) -> np.dtype | None:
    """None, or float32/float64 from a name, a NumPy type or a dtype."""
    if dtype is None:
        return None
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be None, 'float32' or 'float64'; got {dtype!r}")
    return resolved


_EPS = {np.dtype(t): np.finfo(t).eps for t in (np.float32, np.float64)}


# scikit-learn's MLP warns from this module: a script's filterwarnings("ignore",
# category=ConvergenceWarning, module="sklearn"), as its examples write, silences ours too
_SKLEARN_MLP_MODULE = "sklearn.neural_network._multilayer_perceptron"


def _warn(message: str, category: type[Warning], stacklevel: int) -> None:
    """warnings.warn(message, category, stacklevel) (shown at the same line, once per line
    under the default filter), matched by the filters' ``module`` as scikit-learn's."""
    try:
        frame = sys._getframe(stacklevel)
    except ValueError:  # (a stack shallower than that: shown here, as warnings.warn does)
        frame = sys._getframe(1)
    warnings.warn_explicit(
        message,
        category,
        frame.f_code.co_filename,
        frame.f_lineno,
        module=_SKLEARN_MLP_MODULE,
        # (no module_globals: as warnings.warn, the line is read only where it is shown)
        registry=frame.f_globals.setdefault("__warningregistry__", {}),
    )


def _sample_mean(values: np.ndarray, sw: np.ndarray | None) -> np.ndarray:
    """np.average(values, weights=sw, axis=0) (which without weights is this mean)."""
    return values.mean(axis=0) if sw is None else np.average(values, weights=sw, axis=0)


class _Workspace:
    """Output-layer buffers for batches of up to ``rows`` rows, allocated once per fit:
    ŷ, δ, and two scratch arrays for the loss."""

    def __init__(self, rows: int, outputs: int, dtype: np.dtype) -> None:
        self.p, self.delta, self.t, self.u = (np.empty((rows, outputs), dtype) for _ in range(4))


class _LiveList(list):
    """``coefs_``/``intercepts_``: a list of views of the network's parameters; assigning
    an item copies the new values into that parameter, as the list scikit-learn keeps
    would take the new array."""

    def __init__(self, items: list[np.ndarray], assign) -> None:
        super().__init__(items)
        self._assign = assign

    def __setitem__(self, index, value) -> None:
        if isinstance(index, slice):
            raise TypeError("assign coefs_/intercepts_ whole, or one item at a time")
        self._assign(range(len(self))[index], value)  # the item is a view: it shows them

    def __reduce__(self):  # a pickled copy is a plain list of arrays
        return (list, (list(self),))


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share (scikit-learn's BaseMultilayerPerceptron)."""

    # -- fitted state that lives in the network -----------------------------------------
    def __sklearn_is_fitted__(self) -> bool:
        return getattr(self, "_net", None) is not None

    def _dense(self) -> list[Dense]:
        return [m for m in self._net if isinstance(m, Dense)]

    def _fitted_net(self, name: str) -> Sequential:
        net = getattr(self, "_net", None)
        if net is None:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")
        return net

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrices, (fan_in, fan_out) as scikit-learn's: views of each Dense W.T."""
        self._fitted_net("coefs_")
        items = [layer.weight.data.T for layer in self._dense()]
        return _LiveList(items, self._assign_coef)

    @coefs_.setter
    def coefs_(self, values: list) -> None:
        self._assign_all("coefs_", values, self._assign_coef)

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vectors: views of each Dense b."""
        self._fitted_net("intercepts_")
        return _LiveList([layer.bias.data for layer in self._dense()], self._assign_intercept)

    @intercepts_.setter
    def intercepts_(self, values: list) -> None:
        self._assign_all("intercepts_", values, self._assign_intercept)

    def _assign_all(self, name: str, values: list, assign) -> None:
        if getattr(self, "_net", None) is None:
            raise AttributeError(
                f"{name} can be set on a fitted {type(self).__name__} only (fit or "
                "partial_fit builds the network first)"
            )
        values = list(values)
        layers = self._dense()
        if len(values) != len(layers):
            raise ValueError(f"{name} needs {len(layers)} arrays; got {len(values)}")
        # copies: the values may be this network's own (coefs_[1], coefs_[0] swapped), and
        # the first copied in would change the second before it is read
        checked = [np.array(self._checked_value(name, i, v)) for i, v in enumerate(values)]
        for i, value in enumerate(checked):
            assign(i, value)

    def _checked_value(self, name: str, index: int, value: object) -> np.ndarray:
        layer = self._dense()[index]
        target = layer.weight.data.T if name == "coefs_" else layer.bias.data
        value = np.asarray(value)
        if value.shape != target.shape:
            raise ValueError(
                f"{name}[{index}] has shape {target.shape} in this network; got {value.shape}"
            )
        return value

    def _assign_coef(self, index: int, value: object) -> None:
        value = self._checked_value("coefs_", index, value)
        np.copyto(self._dense()[index].weight.data.T, value, casting="unsafe")

    def _assign_intercept(self, index: int, value: object) -> None:
        value = self._checked_value("intercepts_", index, value)
        np.copyto(self._dense()[index].bias.data, value, casting="unsafe")

    # -- pickling: plain arrays, the network and optimiser rebuilt on load --------------
    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state = dict(state)
        net = state.pop("_net", None)
        optimizer = state.pop("_optimizer", None)
        state.pop("_plan", None)
        if net is not None:
            layers = [m for m in net if isinstance(m, Dense)]
            state["_net_state"] = {
                "weights": [layer.weight.data.copy() for layer in layers],
                "biases": [layer.bias.data.copy() for layer in layers],
                "activation": self._built_activation,
                "dropout": self._built_dropout,
                # where each Dropout's masks stand, so a copy trains on as the original
                "masks": [m._own_rng.bit_generator.state for m in net if isinstance(m, Dropout)],
            }
        if optimizer is not None:
            state["_optimizer_state"] = {
                "kind": optimizer.kind,
                "state": optimizer.state_dict(),
                "extra": optimizer.extra_state(),
            }
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        net_state = state.pop("_net_state", None)
        optimizer_state = state.pop("_optimizer_state", None)
        super().__setstate__(state)
        if getattr(self, "_best_params", None) is not None:
            # early stopping writes into it; joblib.load(mmap_mode="r") maps it read-only
            self._best_params = np.array(self._best_params)
        if net_state is None:
            return
        weights, biases = net_state["weights"], net_state["biases"]
        units = [weights[0].shape[1]] + [w.shape[0] for w in weights]
        self._build_network(
            units, weights[0].dtype, net_state["activation"], net_state["dropout"], None
        )
        for layer, w, b in zip(self._dense(), weights, biases, strict=True):
            np.copyto(layer.weight.data, w)
            np.copyto(layer.bias.data, b)
        dropouts = [m for m in self._net if isinstance(m, Dropout)]
        for layer, where in zip(dropouts, net_state.get("masks", []), strict=False):
            if isinstance(where, tuple):  # (state, key) from a wxb before 2026-12-06
                where = where[0]
            layer._own_rng.bit_generator.state = where
        if optimizer_state is not None:
            kind = optimizer_state["kind"]
            optimizer = self._new_optimizer(kind)
            optimizer.load_state_dict(optimizer_state["state"])
            optimizer.load_extra_state(optimizer_state["extra"])
        else:
            self._new_optimizer("lbfgs")

    # -- the network ------------------------------------------------------------------------
    def _build_network(
        self,
        layer_units: list[int],
        dtype: np.dtype,
        activation: str,
        dropout: float,
        dropout_seed: int | None,
    ) -> None:
        """Dense → activation (→ Dropout) per hidden layer, then the output Dense, whose
        output is z: the output activation and loss are computed here, per scikit-learn."""
        layers = []
        last = len(layer_units) - 2
        masks = np.random.default_rng(dropout_seed)  # spawns one generator per Dropout
        for i in range(last + 1):
            # seed=0: the weights are overwritten; wxb's default generator is left alone
            layers.append(Dense(layer_units[i], layer_units[i + 1], dtype=dtype, seed=0))
            if i != last:
                layers.append(_HIDDEN_LAYERS[activation]())
                if dropout > 0:
                    layers.append(Dropout(dropout, seed=masks.spawn(1)[0]))
        self._net = Sequential(*layers)
        self._net.eval()
        self._plan = None
        self._optimizer = None
        self._built_activation, self._built_dropout = activation, dropout

    def _follow_settings(self, rng: np.random.RandomState | None) -> None:
        """Rebuild the layers between the Dense ones when ``activation`` (or, with ``rng``
        to seed new masks, ``dropout``) was changed by set_params since they were built:
        scikit-learn reads both at every pass. The Dense layers (and the optimiser's
        state over them) are kept."""
        activation = self.activation
        dropout = self.dropout if rng is not None else self._built_dropout
        if activation == self._built_activation and dropout == self._built_dropout:
            return
        dense = self._dense()
        kept_dropouts = [m for m in self._net if isinstance(m, Dropout)]
        if dropout != self._built_dropout:
            kept_dropouts = []
            if dropout > 0:  # drawn as a first fit draws them, after the weights
                masks = np.random.default_rng(int(rng.randint(np.iinfo(np.int32).max)))
                kept_dropouts = [Dropout(dropout, seed=g) for g in masks.spawn(len(dense) - 1)]
        kept_activations = [m for m in self._net if isinstance(m, Activation)]
        layers = []
        for i, layer in enumerate(dense):
            layers.append(layer)
            if i != len(dense) - 1:
                same = activation == self._built_activation
                layers.append(kept_activations[i] if same else _HIDDEN_LAYERS[activation]())
                if kept_dropouts:
                    layers.append(kept_dropouts[i])
        training = self._net.training
        self._net = Sequential(*layers)
        self._net.train(training)
        self._plan = None
        self._built_activation, self._built_dropout = activation, dropout

    def _new_optimizer(self, kind: str):
        """A fresh optimiser of ``kind`` over the network (packing its flat buffer)."""
        layers = self._dense()
        weights = [layer.weight for layer in layers]
        biases = [layer.bias for layer in layers]
        if kind == "lbfgs":
            optimizer = FlatBuffer(weights, biases)
        elif kind == "sgd":
            optimizer = SklearnSGD(
                weights,
                biases,
                self.learning_rate_init,
                self.momentum,
                self.nesterovs_momentum,
                schedule=self.learning_rate,
                power_t=self.power_t,
            )
        else:
            optimizer = SklearnAdam(
                weights,
                biases,
                self.learning_rate_init,
                (self.beta_1, self.beta_2),
                self.epsilon,
                weight_decay=self.alpha if kind == "adamw" else 0.0,
                decoupled=kind == "adamw",
            )
        self._optimizer = optimizer
        return optimizer

    def _fresh_optimizer(self, kind: str):
        """scikit-learn's new optimiser for a fit: the same object reset and reconfigured
        when it is of the right class (the parameters' flat buffer stays where it is)."""
        optimizer = self._optimizer
        if optimizer is None or type(optimizer) is not OPTIMIZERS[kind]:
            return self._new_optimizer(kind)
        if kind == "sgd":
            optimizer.configure(
                self.learning_rate_init,
                self.momentum,
                self.nesterovs_momentum,
                schedule=self.learning_rate,
                power_t=self.power_t,
            )
        elif kind in ("adam", "adamw"):
            if (kind == "adamw") != optimizer.decoupled:
                return self._new_optimizer(kind)
            optimizer.configure(
                self.learning_rate_init,
                (self.beta_1, self.beta_2),
                self.epsilon,
                weight_decay=self.alpha if kind == "adamw" else 0.0,
            )
        return optimizer

    @property
    def _dtype(self) -> np.dtype:
        return self._dense()[0].weight.data.dtype

    def _weights_size(self) -> int:
        return sum(layer.weight.data.size for layer in self._dense())

    def _flat_params(self) -> np.ndarray:
        """The flat parameter buffer (weights, then biases), repacked if needed."""
        optimizer = self._optimizer
        if optimizer.flat is None or not optimizer.flat.intact(optimizer.params):
            optimizer._pack()
        return optimizer.flat.data

    # -- validation of wxb's own parameters ------------------------------------------------
    def _check_device(self) -> None:
        if not is_cpu(self.device):
            raise ValueError(
                f"device={self.device!r} is not supported: wxb.sklearn runs on the CPU only "
                "for now; use device='cpu'"
            )

    def _model_dtype(self, first_pass: bool):
        """The dtype validate_data casts X to: the network's after the first pass."""
        wanted = _resolve_dtype(self.dtype)
        if not first_pass:
            current = self._dtype
            if wanted is not None and wanted != current:
                self._net.to(wanted)
                self._plan = None
                self._optimizer._pack()
                if getattr(self, "_best_params", None) is not None:
                    self._best_params = self._best_params.astype(wanted)
                return wanted
            return current
        return (np.float64, np.float32) if wanted is None else wanted

    # -- fit ------------------------------------------------------------------------------------
    def _initialize(self, Y: np.ndarray, layer_units: list[int], dtype: np.dtype) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = len(layer_units)
        if not is_classifier(self):
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"
        rng = self._random_state
        coefs, intercepts = [], []
        factor = 2.0 if self.activation == "logistic" else 6.0
        for fan_in, fan_out in pairwise(layer_units):
            bound = np.sqrt(factor / (fan_in + fan_out))  # Glorot-uniform, drawn as sklearn
            coefs.append(rng.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype, copy=False))
            intercepts.append(rng.uniform(-bound, bound, fan_out).astype(dtype, copy=False))
        seed = None
        if self.dropout > 0:  # drawn after the weights: those stay scikit-learn's
            seed = int(rng.randint(np.iinfo(np.int32).max))
        self._build_network(layer_units, dtype, self.activation, self.dropout, seed)
        for layer, coef, intercept in zip(self._dense(), coefs, intercepts, strict=True):
            np.copyto(layer.weight.data, coef.T)
            np.copyto(layer.bias.data, intercept)
        self._new_optimizer(self.solver if self.solver in _STOCHASTIC_SOLVERS else "lbfgs")
        self._stochastic_ready = False  # scikit-learn's hasattr(self, "_optimizer")
        self._best_params = self._flat_params().copy()
        if self.solver in _STOCHASTIC_SOLVERS:
            self._init_stochastic_records()

    def _init_stochastic_records(self) -> None:
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _fit(self, X, y, sample_weight=None, incremental=False):
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        if np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden_layer_sizes}.")
        self._check_device()
        if self.dropout > 0 and self.solver == "lbfgs":
            raise ValueError("dropout needs a stochastic solver ('sgd', 'adam' or 'adamw')")
        first_pass = getattr(self, "_net", None) is None or (
            not self.warm_start and not incremental
        )
        dtype = self._model_dtype(first_pass)
        X, Y = self._validate_input(X, y, incremental, reset=first_pass, dtype=dtype)
        named = target_names(y, y.shape[1] if getattr(y, "ndim", 1) == 2 else 1)
        if first_pass or named:  # to_wxb records them, as wxb.fit does a named y's
            self._target_names = named
        if scipy.sparse.issparse(X) and X.format != "csr":
            X = X.tocsr()
        if sample_weight is not None:
            refuse_masked(sample_weight, "sample_weight")
            sample_weight = _check_sample_weight(sample_weight, X)
        n_features = X.shape[1]
        self.n_outputs_ = Y.shape[1]
        layer_units = [n_features, *hidden_layer_sizes, self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(Y, layer_units, X.dtype)
        else:
            built = [self._dense()[0].in_features] + [d.out_features for d in self._dense()]
            if built != layer_units:
                raise ValueError(
                    f"the network was built with layer sizes {built}; this data and "
                    f"hidden_layer_sizes need {layer_units} (set warm_start=False to start over)"
                )
            self._follow_settings(self._random_state)
            if self.solver in _STOCHASTIC_SOLVERS and not hasattr(self, "loss_curve_"):
                self._init_stochastic_records()  # an lbfgs fit before: start the records
        Y = Y.astype(self._dtype)
        if self.solver in _STOCHASTIC_SOLVERS:
            self._fit_stochastic(X, Y, sample_weight, incremental)
        else:
            self._fit_lbfgs(X, Y, sample_weight)
        if not np.isfinite(self._flat_params()).all():
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may"
                " contain large values and need to be preprocessed."
            )
        return self

    # -- the loss and the output layer's δ, as scikit-learn defines them ----------------------
    def _output(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The output activation of z (into ``out``; identity returns z itself)."""
        kind = self.out_activation_
        if kind == "identity":
            return z
        if kind == "softmax":
            np.subtract(z, z.max(axis=1, keepdims=True), out=out)
            np.exp(out, out=out)
            out /= out.sum(axis=1, keepdims=True)
        elif kind == "logistic":
            expit(z, out=out)
        else:  # exp: Poisson's log link
            np.exp(z, out=out)
        return out

    def _data_loss(self, P, Y, sw, T, U, V) -> float:
        """scikit-learn's LOSS_FUNCTIONS[loss](y, ŷ, sample_weight), without the L2 term;
        T, U and V are scratch arrays of P's shape. Unweighted, np.average is the mean over
        samples: the same sums as scikit-learn's, in fewer calls. Chosen by ``loss`` for a
        regressor, as scikit-learn does at each pass: set_params(loss=…) between fits
        changes the loss, not the output activation fitted first."""
        kind = self.out_activation_
        if kind in ("identity", "exp"):  # a regressor's
            kind = "exp" if self.loss == "poisson" else "identity"
        if kind == "identity":  # ½ · mean over outputs of the (weighted) sample mean of (ŷ − y)²
            np.subtract(Y, P, out=T)
            np.multiply(T, T, out=T)
            return 0.5 * _sample_mean(T, sw).mean()
        if kind == "exp":  # half Poisson deviance, summed over outputs
            np.divide(Y, P, out=T)
            xlogy(Y, T, out=T)
            T -= Y
            T += P
            return _sample_mean(T, sw).sum()
        eps = _EPS[P.dtype]  # the reported loss clips ŷ to [ε, 1 − ε] (δ does not)
        np.maximum(P, eps, out=T)
        np.minimum(T, 1 - eps, out=T)
        if kind == "softmax":
            xlogy(Y, T, out=T)
            return -_sample_mean(T, sw).sum()
        # logistic (binary, multilabel): y·log ŷ + (1 − y)·log(1 − ŷ), summed over labels
        np.subtract(1, T, out=U)
        xlogy(Y, T, out=T)
        np.subtract(1, Y, out=V)
        xlogy(V, U, out=U)
        T += U
        return -_sample_mean(T, sw).sum()

    def _loss_and_delta(
        self, z, Y, sw, work: _Workspace, weights, l2: bool = True
    ) -> tuple[float, float]:
        """The batch's loss (with the L2 term unless ``l2`` is False: AdamW's decay) and
        δ = (ŷ − y)·w/Σw into ``work.delta`` (∂loss/∂z for each canonical link); returns
        (loss, Σw)."""
        rows = len(z)
        P = self._output(z, work.p[:rows])
        delta, T, U = work.delta[:rows], work.t[:rows], work.u[:rows]
        loss = self._data_loss(P, Y, sw, T, U, delta)  # δ's buffer is scratch until here
        np.subtract(P, Y, out=delta)
        if sw is None:
            sw_sum = rows
        else:
            delta *= sw.reshape(-1, 1)
            sw_sum = sw.sum()
        delta /= sw_sum
        if l2 and self.alpha:  # (scikit-learn adds 0 when α = 0)
            loss += (0.5 * self.alpha) * np.dot(weights, weights) / sw_sum
        return float(loss), sw_sum

    # -- stochastic solvers ---------------------------------------------------------------------
    def _plan_for(self) -> StackPlan:
        if self._plan is None:
            self._plan = StackPlan(list(self._net))
        return self._plan

    def _fit_stochastic(self, X, Y, sample_weight, incremental):
        if not incremental or not self._stochastic_ready:
            optimizer = self._fresh_optimizer(self.solver)
            self._stochastic_ready = True
        else:
            optimizer = self._optimizer
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        # alpha as the running rule applies it (a solver changed since, like scikit-learn's,
        # waits for the next fit), read now as scikit-learn reads it at every batch: AdamW
        # decays by today's alpha; the others add its L2 term
        decoupled = getattr(optimizer, "decoupled", False)
        if decoupled:
            optimizer.param_groups[0]["weight_decay"] = float(self.alpha)
        # float: a NumPy float32 alpha made α/B a float32 (1e-8 off); scikit-learn's α·W is
        # float64 in a float64 network
        alpha = 0.0 if decoupled else float(self.alpha)
        early_stopping = self.early_stopping
        if not early_stopping and self.best_loss_ is None:
            self.best_loss_ = np.inf  # an early-stopped fit before: start the loss records
        if early_stopping:
            self.best_loss_ = None  # as scikit-learn documents it (a warm fit's too)
            if self.validation_scores_ is None:  # a fit without early stopping before
                self.validation_scores_, self.best_validation_score_ = [], -np.inf
            # as scikit-learn: stratified for single-output classifiers only
            stratify = Y.astype(bool) if is_classifier(self) and self.n_outputs_ == 1 else None
            arrays = (X, Y) if sample_weight is None else (X, Y, sample_weight)
            parts = train_test_split(
                *arrays,
                random_state=self._random_state,
                test_size=self.validation_fraction,
                stratify=stratify,
            )
            X_train, X_val, Y_train, Y_val = parts[:4]
            sw_train, sw_val = (parts[4], parts[5]) if sample_weight is not None else (None, None)
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(Y_val)
            else:
                y_val = Y_val.ravel() if Y_val.shape[1] == 1 else Y_val
        else:
            X_train, Y_train, sw_train = X, Y, sample_weight
            X_val = y_val = sw_val = None

        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=int)
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                _warn(
                    "Got `batch_size` less than 1 or larger than "
                    "sample size. It is going to be clipped",
                    UserWarning,
                    stacklevel=3,
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        sparse = scipy.sparse.issparse(X_train)
        dtype = self._dtype
        if sparse:  # CSR batches, multiplied sparse by the first layer (never made dense)
            X_train = X_train.tocsr().astype(dtype, copy=False)
        else:
            X_train = np.ascontiguousarray(X_train)
        Y_train = np.ascontiguousarray(Y_train)
        plan = self._plan_for()
        n_weights = self._weights_size()
        x_buf = np.empty((batch_size, X_train.shape[1]), dtype) if not sparse else None
        y_buf = np.empty((batch_size, Y_train.shape[1]), dtype)
        work = _Workspace(batch_size, Y_train.shape[1], dtype)
        self._net.train()
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if self.shuffle:
                    sample_idx = shuffle(sample_idx, random_state=self._random_state)
                accumulated_loss = 0.0
                for start in range(0, n_samples, batch_size):
                    stop = min(start + batch_size, n_samples)
                    rows = stop - start
                    if self.shuffle:
                        batch_idx = sample_idx[start:stop]
                        # mode="clip": the indices are valid, and np.take buffers `out`
                        # under the default mode="raise" (a copy more per batch)
                        if sparse:
                            X_batch = X_train[batch_idx]
                        else:
                            X_batch = np.take(
                                X_train, batch_idx, axis=0, out=x_buf[:rows], mode="clip"
                            )
                        Y_batch = np.take(Y_train, batch_idx, axis=0, out=y_buf[:rows], mode="clip")
                        sw_batch = None if sw_train is None else sw_train[batch_idx]
                    else:
                        X_batch = X_train[start:stop]
                        Y_batch = Y_train[start:stop]
                        sw_batch = None if sw_train is None else sw_train[start:stop]
                    z = plan.forward(X_batch)
                    flat = optimizer.flat.data
                    batch_loss, sw_sum = self._loss_and_delta(
                        z, Y_batch, sw_batch, work, flat[:n_weights], l2=not decoupled
                    )
                    del flat
                    accumulated_loss += batch_loss * rows
                    optimizer.set_l2(alpha, sw_sum)
                    optimizer.zero_grad()
                    plan.backward(work.delta[:rows])
                    optimizer.step()

                self.n_iter_ += 1
                self.loss_ = accumulated_loss / X_train.shape[0]
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                self._update_no_improvement_count(early_stopping, X_val, y_val, sw_val)
                optimizer.iteration_ends(self.t_)
                if self._no_improvement_count > self.n_iter_no_change:
                    if early_stopping:
                        msg = (
                            f"Validation score did not improve more than tol={self.tol:f} "
                            f"for {self.n_iter_no_change} consecutive epochs."
                        )
                    else:
                        msg = (
                            f"Training loss did not improve more than tol={self.tol:f}"
                            f" for {self.n_iter_no_change} consecutive epochs."
                        )
                    if optimizer.trigger_stopping(msg, self.verbose):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    _warn(
                        f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                        "reached and the optimization hasn't converged yet.",
                        ConvergenceWarning,
                        stacklevel=3,
                    )
        except KeyboardInterrupt:
            _warn("Training interrupted by user.", UserWarning, stacklevel=3)
        finally:
            self._net.eval()
        if early_stopping:  # restore the best weights
            with WEIGHTS.writing(self._net.parameters()):
                np.copyto(self._flat_params(), self._best_params)

    def _update_no_improvement_count(self, early_stopping, X, y, sample_weight):
        if early_stopping:
            val_score = self._score(X, y, sample_weight=sample_weight)
            self.validation_scores_.append(val_score)
            if self.verbose:
                print(f"Validation score: {self.validation_scores_[-1]:f}")
            last_valid_score = self.validation_scores_[-1]
            if last_valid_score < (self.best_validation_score_ + self.tol):
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if last_valid_score > self.best_validation_score_:
                self.best_validation_score_ = last_valid_score
                np.copyto(self._best_params, self._flat_params())
        else:
            # in float64, as scikit-learn's NumPy losses compare: against a Python float,
            # a NumPy float16 or float32 tol turned best_loss_ − tol (and the comparison)
            # into its own type, and the run stopped (or cut the rate) at other epochs
            last, best = np.float64(self.loss_curve_[-1]), np.float64(self.best_loss_)
            if last > best - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    # -- L-BFGS ---------------------------------------------------------------------------------
    def _fit_lbfgs(self, X, Y, sample_weight):
        optimizer = self._optimizer
        if not isinstance(optimizer, FlatBuffer):
            optimizer = self._new_optimizer("lbfgs")
            self._stochastic_ready = False  # a later partial_fit starts a new optimiser
        dtype = self._dtype
        if scipy.sparse.issparse(X):  # multiplied sparse by the first layer: never dense
            X = X.tocsr().astype(dtype, copy=False)
        else:
            X = np.ascontiguousarray(X, dtype=dtype)
        Y = np.ascontiguousarray(Y)
        layers = self._dense()
        n_weights = self._weights_size()
        # Where each layer's W.T and b lie in scikit-learn's packed vector.
        slots, start = [], 0
        for layer in layers:
            end = start + layer.weight.data.size
            slots.append((start, end, layer.weight.data.T.shape))
            start = end
        bias_slots = []
        for layer in layers:
            end = start + layer.bias.data.size
            bias_slots.append((start, end))
            start = end
        size = start
        plan = self._plan_for()
        work = _Workspace(len(Y), Y.shape[1], dtype)

        def unpack(packed: np.ndarray) -> None:
            with WEIGHTS.writing(self._net.parameters()):  # (a predict in another thread)
                for layer, (a, b, shape) in zip(layers, slots, strict=True):
                    np.copyto(layer.weight.data.T, packed[a:b].reshape(shape), casting="unsafe")
                for layer, (a, b) in zip(layers, bias_slots, strict=True):
                    np.copyto(layer.bias.data, packed[a:b], casting="unsafe")

        def pack_params() -> np.ndarray:
            packed = np.empty(size, np.float64)
            for layer, (a, b, shape) in zip(layers, slots, strict=True):
                packed[a:b].reshape(shape)[...] = layer.weight.data.T
            for layer, (a, b) in zip(layers, bias_slots, strict=True):
                packed[a:b] = layer.bias.data
            return packed

        def loss_and_grad(packed: np.ndarray) -> tuple[float, np.ndarray]:
            unpack(packed)
            weights = optimizer.flat.data[:n_weights]
            z = plan.forward(X)
            loss, sw_sum = self._loss_and_delta(z, Y, sample_weight, work, weights)
            optimizer.zero_grad()
            plan.backward(work.delta)
            del weights
            alpha = float(self.alpha)  # (float: as in _fit_stochastic)
            grad = np.empty(size, np.float64)
            for layer, (a, b, shape) in zip(layers, slots, strict=True):
                view = grad[a:b].reshape(shape)
                view[...] = layer.weight.grad.T
                if alpha:  # (α·W)/B, rounded as scikit-learn's (see wxb.sklearn_optim)
                    view += (alpha * layer.weight.data.T) / sw_sum
            for layer, (a, b) in zip(layers, bias_slots, strict=True):
                grad[a:b] = layer.bias.grad
            optimizer.zero_grad()
            return loss, grad

        self._net.train()
        try:
            result = scipy.optimize.minimize(
                loss_and_grad,
                pack_params(),
                method="L-BFGS-B",
                jac=True,
                options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol},
            )
        finally:
            self._net.eval()
        self.n_iter_ = _check_lbfgs_result(result, self.max_iter)
        self.loss_ = result.fun
        unpack(result.x)

    # -- prediction -------------------------------------------------------------------------------
    def _forward_pass_fast(self, X, check_input=True):
        """The output layer's activations for rows X (scikit-learn's name)."""
        dtype = self._dtype
        if check_input:  # in the network's dtype: a float64 value past float32's range is
            # refused there, as validate_data refuses inf (cast after it, it became ±inf)
            refuse_masked(X, "X")
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False, dtype=dtype)
        self._follow_settings(None)
        with WEIGHTS.reading(self._net):  # (a partial_fit in another thread waits for it)
            return self._output_of(X, dtype)

    def _output_of(self, X, dtype):
        """``_forward_pass_fast``'s outputs for checked rows X, dense or sparse."""
        if scipy.sparse.issparse(X) and (self._net._has_hooks() or self._net[0]._has_hooks()):
            X = X.toarray()  # a forward hook of the network's or its first layer's runs only
            # in their calls, which the sparse product skips (dense rows gave other outputs)
        if scipy.sparse.issparse(X):
            # the first layer as a sparse product, as scikit-learn computes it: a dense
            # chunk would take rows × n_features (GiBs for hashed or TF-IDF features)
            X = scipy.sparse.csr_matrix(X, dtype=dtype)
            first = self._dense()[0]
            rest = self._net[1:] if len(self._net) > 1 else None
            parts = []
            for a in range(0, X.shape[0], _PREDICT_ROWS):
                # (SciPy's X @ Wᵀ copied all of Wᵀ per chunk; this gathers the columns of
                # W the chunk touches, where they are fewer: the plan's product)
                chunk = X[a : a + _PREDICT_ROWS]
                h = np.empty((chunk.shape[0], first.weight.data.shape[0]), dtype)
                ops.sparse_rows_by_weight(chunk, first.weight.data, h)
                h += first.bias.data
                parts.append(h if rest is None else _rows_through(rest, h))
            z = parts[0] if len(parts) == 1 else np.concatenate(parts)
        else:
            z = _rows_through(self._net, np.ascontiguousarray(X, dtype=dtype))
        return self._output(z, z)

    def _score_with_function(self, X, y, sample_weight, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    # -- wxb ------------------------------------------------------------------------------------
    def to_wxb(self) -> Sequential:
        """The underlying wxb ``Sequential`` (the live network: its W are ``coefs_[i].T``),
        with ``model.info`` saying what ``wxb.save``, ``wxb predict`` and ``explain`` need.

        Its output is the last layer's z: a classifier's logits (softmax for several
        classes, a sigmoid per output for binary and multilabel), a regressor's
        prediction, or for ``loss="poisson"`` the log of the predicted mean
        (``info["link"] == "log"``: the prediction is exp(output)).
        """
        check_is_fitted(self)
        self._follow_settings(None)
        net = self._net
        info: dict = {"estimator": type(self).__name__}
        if is_classifier(self):
            multilabel = self._label_binarizer.y_type_.startswith("multilabel")
            info["task"] = "classification"  # as interop.from_sklearn writes it
            if multilabel:
                info["multilabel"] = True
            info["loss"] = (
                "cross_entropy" if self.out_activation_ == "softmax" else ("bce_with_logits")
            )
            info["classes"] = [c.item() if isinstance(c, np.generic) else c for c in self.classes_]
        else:
            info["task"] = "regression"
            info["loss"] = "poisson" if self.out_activation_ == "exp" else "mse"
            if self.out_activation_ == "exp":
                info["link"] = "log"
        if hasattr(self, "feature_names_in_"):
            info["feature_names"] = [str(name) for name in self.feature_names_in_]
        targets = getattr(self, "_target_names", None)
        if targets:  # wxb eval then finds the target column of a table by its name
            info["target"], info["targets"] = ",".join(targets), targets
            if len(targets) > 1 and info.get("multilabel"):
                info["classes"] = targets  # a label per column, as wxb train names them
        net.info = info
        return net

    @classmethod
    def from_sklearn(cls, fitted: BaseEstimator, dtype: object = None) -> _BaseMLP:
        """This estimator, fitted as scikit-learn's ``fitted`` MLP is: the same parameters,
        weights, classes and training records (``n_iter_``, ``t_``, ``loss_curve_``, …), so
        ``warm_start=True`` and ``fit`` go on training as scikit-learn's would. (scikit-learn
        starts a new optimiser at each ``fit``; its ``partial_fit`` state is not carried.)
        wxb's own fitted estimator converts too, keeping its ``dtype`` unless one is given."""
        check_is_fitted(fitted)
        mine = cls()
        if type(fitted).__name__ != cls.__name__ or is_classifier(fitted) != is_classifier(mine):
            raise TypeError(
                f"{cls.__name__}.from_sklearn takes a fitted scikit-learn {cls.__name__}"
            )
        # deep copies, as sklearn.base.clone makes: a RandomState given as random_state
        # stays the source's own, and goes on drawing what it would have drawn
        params = {
            k: copy.deepcopy(v) for k, v in fitted.get_params().items() if k in mine.get_params()
        }
        if dtype is not None or "dtype" not in params:  # wxb's own keeps its dtype
            params["dtype"] = dtype
        est = cls(**params)
        weights_dtype = np.dtype(dtype) if dtype is not None else fitted.coefs_[0].dtype
        est.n_features_in_ = fitted.n_features_in_
        if hasattr(fitted, "feature_names_in_"):
            est.feature_names_in_ = fitted.feature_names_in_
        est._target_names = getattr(fitted, "_target_names", None)  # (wxb's own)
        if is_classifier(est):
            est._label_binarizer = copy.deepcopy(fitted._label_binarizer)
            est.classes_ = est._label_binarizer.classes_
        layer_units = [fitted.n_features_in_, *(c.shape[1] for c in fitted.coefs_)]
        # the weights drawn here are overwritten: from a generator of their own, so that
        # neither random_state nor NumPy's global generator moves (each fit draws anew)
        est._random_state = np.random.RandomState(0)
        est._initialize(np.empty((0, layer_units[-1])), layer_units, weights_dtype)
        est.out_activation_ = fitted.out_activation_  # the fitted one, whatever loss says now
        est.coefs_ = [np.asarray(c, dtype=weights_dtype) for c in fitted.coefs_]
        est.intercepts_ = [np.asarray(b, dtype=weights_dtype) for b in fitted.intercepts_]
        for name in ("n_iter_", "t_", "loss_", "best_loss_", "validation_scores_",
                     "best_validation_score_", "_no_improvement_count"):  # fmt: skip
            if hasattr(fitted, name):
                value = getattr(fitted, name)
                setattr(est, name, list(value) if isinstance(value, list) else value)
        if hasattr(fitted, "loss_curve_"):
            est.loss_curve_ = [float(v) for v in fitted.loss_curve_]
        est._best_params = est._flat_params().copy()
        return est

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _rows_through(net: Sequential, rows: np.ndarray) -> np.ndarray:
    """``net``'s output for C-contiguous ``rows`` in its dtype, in eval mode, _PREDICT_ROWS
    at a time. Not through ``net.predict``, whose check of finite inputs is not for here:
    validate_data made scikit-learn's (skipped under assume_finite=True, as scikit-learn
    skips it), and on the sparse path the rows are the first layer's outputs, where a
    finite X may overflow to ±inf (predict then blamed X's row and a hidden unit's column)."""
    with net.evaluating(), no_grad():
        parts = [
            net(Tensor.of_array(rows[a : a + _PREDICT_ROWS])).data
            for a in range(0, len(rows), _PREDICT_ROWS)
        ]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _check_lbfgs_result(result, max_iter: int) -> int:
    """Iterations run, with scikit-learn's ConvergenceWarning when L-BFGS did not converge."""
    n_iter = min(result.nit, max_iter)
    if result.status != 0:
        message = (
            f"lbfgs failed to converge after {n_iter} iteration(s) "
            f"(status={result.status}):\n{result.message}\n"
        )
        if n_iter >= max_iter:
            message += (
                "\nIncrease the number of iterations to improve the convergence "
                f"(max_iter={max_iter})."
            )
        # scikit-learn's advice ends every such warning (its _check_optimize_result)
        message += (
            "\nYou might also want to scale the data as shown in:\n"
            "    https://scikit-learn.org/stable/modules/preprocessing.html"
        )
        _warn(message, ConvergenceWarning, stacklevel=4)
    return n_iter


def _check_partial_fit_first_call(estimator, classes) -> bool:
    """True on the first call to partial_fit (classes_ then set from ``classes``)."""
    if getattr(estimator, "classes_", None) is None and classes is None:
        raise ValueError("classes must be passed on the first call to partial_fit.")
    if classes is not None:
        if getattr(estimator, "classes_", None) is not None:
            if not np.array_equal(estimator.classes_, unique_labels(classes)):
                raise ValueError(
                    f"`classes={classes!r}` is not the same as on last call "
                    f"to partial_fit, was: {estimator.classes_!r}"
                )
        else:
            estimator.classes_ = unique_labels(classes)
            return True
    return False


class _ScoreUnmasked:
    """``score`` with masked ``y`` or ``sample_weight`` refused, as fit refuses them:
    scikit-learn's metrics read the values under the mask (X is refused by predict)."""

    def score(self, X, y, sample_weight=None):
        refuse_masked(y, "y")
        refuse_masked(sample_weight, "sample_weight")
        return super().score(X, y, sample_weight=sample_weight)


class MLPClassifier(_ScoreUnmasked, ClassifierMixin, _BaseMLP):
    """scikit-learn's ``MLPClassifier`` (same parameters, defaults and results), trained by
    wxb; plus ``dtype``, ``dropout``, ``solver="adamw"`` and ``device``.
    See the module's documentation for what differs."""

    loss = "log_loss"  # as scikit-learn's attribute (not a parameter of the classifier)

    _parameter_constraints: ClassVar[dict] = {
        **_SkClassifier._parameter_constraints,
        **_extra_constraints(),
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dtype=None,
        dropout=0.0,
        device="cpu",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.dropout = dropout
        self.device = device

    def _validate_input(self, X, y, incremental, reset, dtype):
        refuse_masked(X, "X")  # (scikit-learn's validate_data reads the values under the mask)
        refuse_masked(y, "y")
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=dtype,
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        # As scikit-learn: classes are (re)defined by a fresh fit; a warm start must see
        # the same classes, and partial_fit only classes it knows.
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same "
                        "classes as in the previous call to fit. Previously "
                        f"got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        Y = self._label_binarizer.transform(y)
        if scipy.sparse.issparse(Y):
            Y = Y.toarray()
        # As scikit-learn: an indicator of {0, 2} or {-1, 1} is still multilabel, and a
        # label is on where its value is non-zero (not the value itself as a target).
        Y = (np.asarray(Y) != 0).astype(np.int64)
        return X, Y.reshape(len(Y), -1)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y (class labels)."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic"
                f" optimizers. {self.solver} is not stochastic."
            )
        return True

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over X, y; ``classes`` (every class of the whole data) is needed
        on the first call."""
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predicted class labels (an indicator matrix for multilabel targets)."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    def predict_proba(self, X):
        """Probability of each class, in the order of ``classes_``."""
        check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def predict_log_proba(self, X):
        """log(predict_proba(X))."""
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(_ScoreUnmasked, RegressorMixin, _BaseMLP):
    """scikit-learn's ``MLPRegressor`` (same parameters, defaults and results), trained by
    wxb; plus ``dtype``, ``dropout``, ``solver="adamw"`` and ``device``.
    See the module's documentation for what differs."""

    _parameter_constraints: ClassVar[dict] = {
        **_SkRegressor._parameter_constraints,
        **_extra_constraints(),
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dtype=None,
        dropout=0.0,
        device="cpu",
    ):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.dropout = dropout
        self.device = device

    def _validate_input(self, X, y, incremental, reset, dtype):
        refuse_masked(X, "X")  # (scikit-learn's validate_data reads the values under the mask)
        refuse_masked(y, "y")
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=dtype,
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y.reshape(len(y), -1)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic"
                f" optimizers. {self.solver} is not stochastic."
            )
        return True

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over X, y."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predicted values: (n_samples,) for one output, else (n_samples, n_outputs)."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, r2_score)
