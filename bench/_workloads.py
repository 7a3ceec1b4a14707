"""What the benchmark runs: network configurations, the same network in wxb and PyTorch,
the training steps being compared, their floors, and the data sets of the full-fit runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

import wxb
from wxb import nn

# PyTorch and scikit-learn are imported where used: the memory children that train
# wxb alone start without their ~6 s of imports.
if TYPE_CHECKING:
    import torch

FLOAT = np.float32
LEARNING_RATES = {"SGD": 0.01, "Adam": 1e-3}  # SGD without momentum: W ← W − η·∂L/∂W
ADAM_STATES = 2  # moments kept per parameter


@dataclass(frozen=True)
class Config:
    """A multilayer perceptron (ReLU between Dense layers) and its training batch size."""

    name: str
    dims: tuple[int, ...]  # features, hidden widths…, classes
    batch: int

    @property
    def layers(self) -> list[tuple[int, int]]:
        """(inputs n, outputs m) of each Dense layer."""
        return list(pairwise(self.dims))

    @property
    def architecture(self) -> str:
        return "-".join(map(str, self.dims))

    @property
    def step_flops(self) -> float:
        """Multiply-adds ×2 of one training step: 3 products of 2·B·m·n per layer."""
        return 6.0 * self.batch * sum(m * n for n, m in self.layers)

    @property
    def parameter_count(self) -> int:
        return sum(m * n + m for n, m in self.layers)


CONFIGS = {
    c.name: c
    for c in (
        Config("tiny", (784, 128, 10), 32),
        Config("small", (784, 256, 128, 10), 128),
        Config("medium", (784, 512, 512, 10), 256),
        Config("large", (2048, 2048, 2048, 10), 512),
    )
}


def wxb_model(dims: tuple[int, ...], seed: int = 0) -> nn.Sequential:
    """Dense layers of widths ``dims`` with ReLU between them, float32, seeded."""
    rng = np.random.default_rng(seed)
    layers: list[nn.Module] = []
    for index, (n, m) in enumerate(pairwise(dims)):
        if index:
            layers.append(nn.ReLU())
        layers.append(nn.Dense(n, m, seed=rng))
    return nn.Sequential(*layers)


def torch_model(dims: tuple[int, ...], source: nn.Sequential | None = None) -> torch.nn.Sequential:
    """The same network in PyTorch; with ``source``, a copy of that wxb model's weights."""
    import torch

    dense = [layer for layer in source if isinstance(layer, nn.Dense)] if source else []
    layers: list[torch.nn.Module] = []
    for index, (n, m) in enumerate(pairwise(dims)):
        if index:
            layers.append(torch.nn.ReLU())
        linear = torch.nn.Linear(n, m)
        if dense:
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(dense[index].weight.data))
                linear.bias.copy_(torch.from_numpy(dense[index].bias.data))
        layers.append(linear)
    return torch.nn.Sequential(*layers)


def wxb_optimizer(name: str, params: list[nn.Parameter]) -> wxb.optim.Optimizer:
    optimizer = {"SGD": wxb.optim.SGD, "Adam": wxb.optim.Adam}[name]
    return optimizer(params, lr=LEARNING_RATES[name])


def torch_optimizer(name: str, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    import torch

    optimizer = {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam}[name]
    return optimizer(params, lr=LEARNING_RATES[name])  # default foreach behaviour


def random_batch(config: Config, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A fixed batch: X ~ N(0, 1) (B×features, float32) and class indices (int64)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((config.batch, config.dims[0]), dtype=FLOAT)
    y = rng.integers(0, config.dims[-1], config.batch, dtype=np.int64)
    return X, y


# -- the contenders of the training benchmark: each returns a call that runs one step ----
TrainingStep = Callable[[], float]


def wxb_fit_step(config: Config, optimizer: str, X: np.ndarray, y: np.ndarray) -> TrainingStep:
    """``wxb.make_step``: the fused step that ``wxb.fit`` runs."""
    model = wxb_model(config.dims)
    step = wxb.make_step(model, nn.CrossEntropyLoss(), wxb_optimizer(optimizer, model.parameters()))
    return lambda: step(X, y)


def wxb_hand_loop(config: Config, optimizer: str, X: np.ndarray, y: np.ndarray) -> TrainingStep:
    """The PyTorch-style loop written against wxb: zero_grad, forward, loss, backward, step."""
    model = wxb_model(config.dims)
    loss_fn = nn.CrossEntropyLoss()
    opt = wxb_optimizer(optimizer, model.parameters())
    # wrapped once, as the PyTorch loop wraps its batch once (torch.from_numpy): an array
    # handed to model() with grad recording on is copied, so that refilling it before
    # backward() cannot change the gradients
    X_w = wxb.Tensor(X)

    def step() -> float:
        opt.zero_grad()
        loss = loss_fn(model(X_w), y)
        loss.backward()
        opt.step()
        return float(loss.data)

    return step


def torch_loop(
    config: Config, optimizer: str, X: np.ndarray, y: np.ndarray, same_weights: bool = True
) -> TrainingStep:
    """PyTorch eager; with ``same_weights`` it starts from the wxb models' initial weights."""
    import torch

    model = torch_model(config.dims, wxb_model(config.dims) if same_weights else None)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch_optimizer(optimizer, list(model.parameters()))
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)

    def step() -> float:
        opt.zero_grad()
        loss = loss_fn(model(X_t), y_t)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def jax_available() -> str | None:
    """JAX's version when it imports (the bench extra), else None."""
    try:
        import jax
    except Exception:  # not installed, or broken: the benchmark runs without it
        return None
    return jax.__version__


def jax_step(config: Config, optimizer: str, X: np.ndarray, y: np.ndarray) -> TrainingStep:
    """One ``jax.jit``-compiled function for the whole step: forward, cross-entropy, its
    gradient and the update (PyTorch's SGD and Adam rules), from the wxb models' initial
    weights. Its buffers are donated, so XLA updates them in place."""
    import jax
    import jax.numpy as jnp

    layers = [m for m in wxb_model(config.dims) if isinstance(m, nn.Dense)]
    params = [(jnp.asarray(d.weight.data), jnp.asarray(d.bias.data)) for d in layers]
    lr = LEARNING_RATES[optimizer]
    beta1, beta2, eps = 0.9, 0.999, 1e-8

    def loss_fn(params, X, y):
        a = X
        for index, (W, b) in enumerate(params):
            if index:
                a = jax.nn.relu(a)
            a = a @ W.T + b
        log_soft = jax.nn.log_softmax(a, axis=1)
        return -jnp.mean(jnp.take_along_axis(log_soft, y[:, None], axis=1))

    def sgd(params, state, X, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, X, y)
        params = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)
        return params, state, loss

    def adam(params, state, X, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, X, y)
        m, v, t = state
        t = t + 1
        m = jax.tree_util.tree_map(lambda m, g: beta1 * m + (1 - beta1) * g, m, grads)
        v = jax.tree_util.tree_map(lambda v, g: beta2 * v + (1 - beta2) * g * g, v, grads)
        c1, c2 = 1 - beta1**t, 1 - beta2**t
        params = jax.tree_util.tree_map(
            lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), params, m, v
        )
        return params, (m, v, t), loss

    if optimizer == "Adam":
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        state: object = (zeros, jax.tree_util.tree_map(jnp.zeros_like, params), jnp.float32(0))
        update = jax.jit(adam, donate_argnums=(0, 1))
    else:
        state = ()
        update = jax.jit(sgd, donate_argnums=(0, 1))
    X_j, y_j = jnp.asarray(X), jnp.asarray(y.astype(np.int32))
    held = [params, state]

    def step() -> float:
        held[0], held[1], loss = update(held[0], held[1], X_j, y_j)
        return float(loss)  # waits for the result, as the others' float(loss) does

    return step


TRAINING_PATHS = {"wxb_step": wxb_fit_step, "wxb_hand": wxb_hand_loop, "torch": torch_loop}
if jax_available():
    TRAINING_PATHS["jax"] = jax_step


def numpy_inference_floor(model: nn.Sequential, rows: int) -> Callable[[np.ndarray], None]:
    """The bare NumPy forward of a Dense/ReLU stack: each layer's product (gemv for one
    row), bias and activation into preallocated arrays, with no checks and no dispatch."""
    dense = [m for m in model if isinstance(m, nn.Dense)]
    outs = [np.empty((rows, d.out_features), FLOAT) for d in dense]
    last = len(dense) - 1

    def run(x: np.ndarray) -> None:
        for index, (d, out) in enumerate(zip(dense, outs, strict=True)):
            if rows == 1:
                np.matmul(d.weight.data, x[0], out=out[0])
            else:
                np.matmul(x, d.weight.data.T, out=out)
            out += d.bias.data
            if index < last:
                np.maximum(out, 0, out=out)
            x = out

    return run


def blas_floor(config: Config, seed: int = 2) -> Callable[[], None]:
    """Exactly the step's own matrix products at their shapes, into preallocated outputs.

    Per layer, on rows (X is B×n, W is m×n): Z = X·Wᵀ, ∂L/∂W = δᵀ·X, and ∂L/∂X = δ·W
    except for the first layer, which needs no gradient for its input.
    """
    rng = np.random.default_rng(seed)
    B = config.batch
    products = []
    for index, (n, m) in enumerate(config.layers):
        X = rng.standard_normal((B, n), dtype=FLOAT)
        W = rng.standard_normal((m, n), dtype=FLOAT)
        delta = rng.standard_normal((B, m), dtype=FLOAT)
        Z, grad_W = np.empty((B, m), FLOAT), np.empty((m, n), FLOAT)
        grad_X = np.empty((B, n), FLOAT) if index else None
        products.append((X, W, delta, Z, grad_W, grad_X))

    def run() -> None:
        for X, W, delta, Z, grad_W, grad_X in products:
            np.matmul(X, W.T, out=Z)
            np.matmul(delta.T, X, out=grad_W)
            if grad_X is not None:
                np.matmul(delta, W, out=grad_X)

    return run


def math_needs(config: Config, optimizer: str) -> dict[str, int]:
    """Bytes the training step cannot do without: parameters, their gradients, the
    optimiser's state, and one batch's input, Z, A and δ of every layer."""
    size = np.dtype(FLOAT).itemsize
    params = config.parameter_count * size
    activations = sum(3 * config.batch * m for _, m in config.layers) * size
    needs = {
        "parameters": params,
        "gradients": params,
        "optimizer_state": params * (ADAM_STATES if optimizer == "Adam" else 0),
        "activations": activations,
        "input_batch": config.batch * config.dims[0] * size,
    }
    needs["total"] = sum(needs.values())
    return needs


# -- data sets of the full-fit comparison -----------------------------------------------
Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def digits_split() -> Split:
    """scikit-learn's handwritten digits scaled to [0, 1]; 80/20 stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = (digits.data / 16.0).astype(FLOAT)
    y = digits.target.astype(np.int64)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=0
    )
    return X_train, y_train, X_test, y_test


def teacher_split(
    train_rows: int, test_rows: int, features: int = 784, classes: int = 10, seed: int = 0
) -> Split:
    """MNIST-sized and learnable: X ~ N(0, 1), labels = argmax(X·T + noise) for a fixed
    random teacher T, so test accuracy measures learning."""
    rng = np.random.default_rng(seed)
    rows = train_rows + test_rows
    X = rng.standard_normal((rows, features), dtype=FLOAT)
    teacher = rng.standard_normal((features, classes), dtype=FLOAT) / np.sqrt(features)
    noise = 0.1 * rng.standard_normal((rows, classes), dtype=FLOAT)
    y = np.argmax(X @ teacher + noise, axis=1).astype(np.int64)
    return X[:train_rows], y[:train_rows], X[train_rows:], y[train_rows:]
