"""Well-known tutorials ported to wxb as a newcomer ports them, changing what the README
says to change, each run beside its original in the same process on the same fresh
draws (the ``seeded`` fixture prints its seed; ``WXB_TEST_SEED=<seed>`` replays it):
PyTorch's "Learning PyTorch with Examples" (the cubic fitted to sin(x): tensors,
autograd, nn.Sequential with Flatten, RMSprop, DynamicNet), its Quickstart (random
images in FashionMNIST's shape through torch's DataLoader, which the README says a loop
of one's own may keep), and scikit-learn's "Compare stochastic learning strategies for
MLPClassifier" and "Varying regularization in Multi-layer Perceptron"."""

from __future__ import annotations

import math
import random
import warnings

import numpy as np
import pytest

import wxb
import wxb.sklearn as wxb_sklearn

torch = pytest.importorskip("torch")
from sklearn import neural_network as sk_neural_network  # noqa: E402
from sklearn.datasets import load_iris, make_circles, make_classification, make_moons  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler, StandardScaler  # noqa: E402

EPS32 = float(np.finfo(np.float32).eps)
POINTS = 2000  # the tutorial's x = linspace(-π, π, 2000)
STEPS = 60


def _float32_rtol(steps: int, terms: int = POINTS) -> float:
    """Each step's loss is a float32 sum of ``terms`` squares, which two libraries round
    in different orders (up to log2(terms)·ε apart, pairwise); that difference enters
    the weights once a step, so after ``steps`` steps the losses may part by the sum."""
    return (steps + 1) * math.log2(terms) * EPS32


def _check_losses(ours, theirs, rtol, seeded, what):
    np.testing.assert_allclose(ours, theirs, rtol=rtol, err_msg=seeded.msg(what))


# -- "Learning PyTorch with Examples" ---------------------------------------------------
def _cubic_with_tensors(lib, draws, steps):
    """Part (b): the gradients written by hand on tensors, in the tutorial's float32
    (``dtype = torch.float``)."""
    dtype = lib.float
    x = lib.linspace(-math.pi, math.pi, POINTS, dtype=dtype)
    y = lib.sin(x)
    a, b, c, d = (lib.tensor(v, dtype=dtype) for v in draws)
    learning_rate, losses = 1e-6, []
    for _ in range(steps):
        y_pred = a + b * x + c * x**2 + d * x**3
        losses.append((y_pred - y).pow(2).sum().item())
        grad_y_pred = 2.0 * (y_pred - y)
        grad_a, grad_b = grad_y_pred.sum(), (grad_y_pred * x).sum()
        grad_c, grad_d = (grad_y_pred * x**2).sum(), (grad_y_pred * x**3).sum()
        a -= learning_rate * grad_a
        b -= learning_rate * grad_b
        c -= learning_rate * grad_c
        d -= learning_rate * grad_d
    return losses


def _cubic_with_autograd(lib, draws, steps, dtype):
    """Part (c): the same, with ``requires_grad=True`` and ``loss.backward()``."""
    x = lib.linspace(-math.pi, math.pi, POINTS, dtype=dtype)
    y = lib.sin(x)
    weights = [lib.tensor(v, dtype=dtype, requires_grad=True) for v in draws]
    a, b, c, d = weights
    losses = []
    for _ in range(steps):
        loss = (a + b * x + c * x**2 + d * x**3 - y).pow(2).sum()
        losses.append(loss.item())
        loss.backward()
        with lib.no_grad():
            for w in weights:
                w -= 1e-6 * w.grad
                w.grad = None
    return losses


@pytest.mark.parametrize("dtype", ["float", "float64"])
def test_the_cubic_by_hand_and_by_autograd_gives_torchs_losses(seeded, dtype):
    """The tutorial's ``dtype = torch.float`` ported as ``wxb.float``: there was no such
    name ("module 'wxb' has no attribute 'float'"), though ``wxb.double`` was there;
    it is float32, as torch's."""
    draws = seeded.rng.standard_normal(4)
    if dtype == "float":
        assert wxb.float == wxb.float32 and wxb.tensor(1.0, dtype=wxb.float).dtype == np.float32
        ours, theirs = (
            _cubic_with_tensors(wxb, draws, STEPS),
            _cubic_with_tensors(torch, draws, STEPS),
        )
        _check_losses(ours, theirs, _float32_rtol(STEPS), seeded, "tensors")
    ours = _cubic_with_autograd(wxb, draws, STEPS, getattr(wxb, dtype))
    theirs = _cubic_with_autograd(torch, draws, STEPS, getattr(torch, dtype))
    rtol = _float32_rtol(STEPS) if dtype == "float" else 1e-10
    _check_losses(ours, theirs, rtol, seeded, "autograd")


def _cubic_with_nn(lib, W, bias, steps, dtype, rmsprop):
    """Parts (e) and (f): ``xx = x.unsqueeze(-1).pow(p)`` into ``Sequential(Linear(3, 1),
    Flatten(0, 1))``, by hand at 1e-6 or by ``optim.RMSprop(lr=1e-3)``. torch's
    ``MSELoss(reduction='sum')`` is Σ(ŷ − y)²; wxb's is ½ of it (the README's
    Conventions), so the port writes the sum of squares out."""
    x = lib.linspace(-math.pi, math.pi, POINTS, dtype=dtype)
    y = lib.sin(x)
    p = lib.tensor([1, 2, 3])
    xx = x.unsqueeze(-1).pow(p)
    model = lib.nn.Sequential(lib.nn.Linear(3, 1), lib.nn.Flatten(0, 1)).to(dtype)
    with lib.no_grad():  # the same start on both sides
        model[0].weight.copy_(lib.tensor(W, dtype=dtype))
        model[0].bias.copy_(lib.tensor(bias, dtype=dtype))
    if lib is torch:
        loss_fn = torch.nn.MSELoss(reduction="sum")
    else:
        loss_fn = lambda y_pred, y: ((y_pred - y) ** 2).sum()  # noqa: E731
    optimizer = lib.optim.RMSprop(model.parameters(), lr=1e-3) if rmsprop else None
    losses = []
    for _ in range(steps):
        loss = loss_fn(model(xx), y)
        losses.append(loss.item())
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        else:
            model.zero_grad()
            loss.backward()
            with lib.no_grad():
                for param in model.parameters():
                    param -= 1e-6 * param.grad
    linear_layer = model[0]
    coefficients = [linear_layer.bias.item()] + [linear_layer.weight[:, i].item() for i in range(3)]
    return losses, coefficients


@pytest.mark.parametrize("rmsprop", [False, True], ids=["by_hand", "rmsprop"])
@pytest.mark.parametrize("dtype", ["float", "float64"])
def test_the_cubic_as_a_sequential_with_flatten_gives_torchs_losses(seeded, dtype, rmsprop):
    rng = seeded.rng
    W, bias = 0.3 * rng.standard_normal((1, 3)), 0.3 * rng.standard_normal(1)
    ours = _cubic_with_nn(wxb, W, bias, STEPS, getattr(wxb, dtype), rmsprop)
    theirs = _cubic_with_nn(torch, W, bias, STEPS, getattr(torch, dtype), rmsprop)
    # RMSprop divides by √v, which a rounding of v near 0 moves most: a few ε more a step
    rtol = (4 if rmsprop else 1) * _float32_rtol(STEPS) if dtype == "float" else 1e-10
    _check_losses(ours[0], theirs[0], rtol, seeded, "losses")
    _check_losses(ours[1], theirs[1], rtol, seeded, "the fitted coefficients")


def _dynamic_net(lib, draws, steps, dtype, python_seed):
    """Part (g): DynamicNet, whose forward reuses ``e`` for x⁴ and x⁵ a random number of
    times (Python's ``random``, seeded alike for both), trained by SGD with momentum."""

    class DynamicNet(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c, self.d, self.e = (
                lib.nn.Parameter(lib.tensor(v, dtype=dtype)) for v in draws
            )

        def forward(self, x):
            y = self.a + self.b * x + self.c * x**2 + self.d * x**3
            for exp in range(4, random.randint(4, 6)):
                y = y + self.e * x**exp
            return y

    x = lib.linspace(-math.pi, math.pi, POINTS, dtype=dtype)
    y = lib.sin(x)
    model = DynamicNet()
    optimizer = lib.optim.SGD(model.parameters(), lr=1e-8, momentum=0.9)
    random.seed(python_seed)
    losses = []
    for _ in range(steps):
        loss = ((model(x) - y) ** 2).sum()  # torch's MSELoss(reduction='sum'), written out
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


@pytest.mark.parametrize("dtype", ["float", "float64"])
def test_dynamic_net_gives_torchs_losses(seeded, dtype):
    draws = seeded.rng.standard_normal(5)
    python_seed = int(seeded.rng.integers(2**31))
    ours = _dynamic_net(wxb, draws, STEPS, getattr(wxb, dtype), python_seed)
    theirs = _dynamic_net(torch, draws, STEPS, getattr(torch, dtype), python_seed)
    # x⁵ reaches 306: torch and NumPy round x**5 apart by up to ~4 ε (float32), and the
    # momentum carries each step's difference on; 4 × the sums' bound covers both
    rtol = 4 * _float32_rtol(STEPS) if dtype == "float" else 1e-10
    _check_losses(ours, theirs, rtol, seeded, "losses")


# -- PyTorch's Quickstart -----------------------------------------------------------------
def _quickstart(lib, train_dataloader, test_dataloader, test_data, start, path):
    """The Quickstart's model, train() and test() line for line; torch's DataLoader kept,
    as the README allows, so the labels ``y`` are torch tensors on both sides."""
    nn = lib.nn
    # PyTorch 2.6's Quickstart's line (older ones: "cuda" if torch.cuda.is_available() …)
    device = lib.accelerator.current_accelerator().type if lib.accelerator.is_available() else "cpu"

    class NeuralNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            self.flatten = nn.Flatten()
            self.linear_relu_stack = nn.Sequential(
                nn.Linear(28 * 28, 512),
                nn.ReLU(),
                nn.Linear(512, 512),
                nn.ReLU(),
                nn.Linear(512, 10),
            )

        def forward(self, x):
            x = self.flatten(x)
            logits = self.linear_relu_stack(x)
            return logits

    model = NeuralNetwork().to(device)
    model.load_state_dict(start)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = lib.optim.SGD(model.parameters(), lr=1e-3)
    record = {"train": [], "test": [], "logits": []}

    def train(dataloader, model, loss_fn, optimizer):
        model.train()
        for X, y in dataloader:
            X, y = X.to(device), y.to(device)
            pred = model(X)
            loss = loss_fn(pred, y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            record["train"].append(loss.item())

    def test(dataloader, model, loss_fn):
        size = len(dataloader.dataset)
        num_batches = len(dataloader)
        model.eval()
        test_loss, correct = 0, 0
        with lib.no_grad():
            for X, y in dataloader:
                X, y = X.to(device), y.to(device)
                pred = model(X)
                test_loss += loss_fn(pred, y).item()
                correct += (pred.argmax(1) == y).type(lib.float).sum().item()
                record["logits"].append(np.array(pred.tolist()))
        record["test"].append((test_loss / num_batches, correct / size))

    for _ in range(2):
        train(train_dataloader, model, loss_fn, optimizer)
        test(test_dataloader, model, loss_fn)
    lib.save(model.state_dict(), path)
    model = NeuralNetwork().to(device)
    model.load_state_dict(lib.load(path, weights_only=True))
    model.eval()
    x = test_data[0][0]
    with lib.no_grad():
        pred = model(x.to(device))
        record["first"] = (int(pred[0].argmax(0)), np.array(pred.tolist()).ravel())
    return record


def test_the_quickstart_on_random_images_gives_torchs_figures(seeded, tmp_path):
    """The test loop's ``(pred.argmax(1) == y).type(torch.float)``: ``wxb.float`` was
    missing, and past it argmax's indices compared with the DataLoader's torch labels gave
    torch's tensor (torch's ``==`` reflected), which refused ``.type(wxb.float)``."""
    from torch.utils.data import DataLoader, TensorDataset

    rng = seeded.rng
    images = rng.random((int(rng.integers(100, 200)), 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, len(images))
    split = len(images) // 2
    training_data = TensorDataset(torch.tensor(images[:split]), torch.tensor(labels[:split]))
    test_data = TensorDataset(torch.tensor(images[split:]), torch.tensor(labels[split:]))
    batch_size = int(rng.integers(16, 65))
    train_dataloader = DataLoader(training_data, batch_size=batch_size)
    test_dataloader = DataLoader(test_data, batch_size=batch_size)
    stack = torch.nn.Sequential(
        torch.nn.Linear(784, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 10),
    )
    start = {f"linear_relu_stack.{k}": v for k, v in stack.state_dict().items()}
    theirs = _quickstart(
        torch, train_dataloader, test_dataloader, test_data, start, tmp_path / "t.pth"
    )
    ours = _quickstart(
        wxb, train_dataloader, test_dataloader, test_data, start, tmp_path / "w.safetensors"
    )
    # float32 dot products of 784 and 512 terms, summed in another order: √784·ε ≈ 4e-6
    # typical, on losses near ln 10; 1e-5 leaves room for the two epochs' steps at 1e-3
    rtol = 1e-5
    _check_losses(ours["train"], theirs["train"], rtol, seeded, "training losses")
    batches = len(theirs["logits"]) // 2  # the test loop's, each of the two epochs
    for epoch, (our_loss, our_acc), (their_loss, their_acc) in zip(
        (0, 1), ours["test"], theirs["test"], strict=True
    ):
        assert our_loss == pytest.approx(their_loss, rel=rtol), seeded.msg("test loss")
        # a row's class may differ only where torch's two top logits are within rounding
        ties = _near_ties(theirs["logits"][epoch * batches : (epoch + 1) * batches])
        assert abs(our_acc - their_acc) * len(test_data) <= ties.sum(), seeded.msg(
            f"accuracy {our_acc} against torch's {their_acc}"
        )
    np.testing.assert_allclose(
        ours["first"][1], theirs["first"][1], rtol=rtol, atol=rtol, err_msg=seeded.msg("reload")
    )
    if not ties[0]:
        assert ours["first"][0] == theirs["first"][0], seeded.msg("the first test image's class")


def _near_ties(logits: list[np.ndarray]) -> np.ndarray:
    """Rows whose two largest logits are within rounding (a class either may pick)."""
    top = np.sort(np.concatenate(logits), axis=1)[:, -2:]
    return top[:, 1] - top[:, 0] < 1e-4


def test_the_quickstarts_device_line_picks_the_cpu():
    """``torch.accelerator`` (PyTorch 2.6's Quickstart picks its device by it) stopped at
    "module 'wxb' has no attribute 'accelerator'", a line naming no way on."""
    assert wxb.accelerator.is_available() is False
    assert wxb.accelerator.current_accelerator() is None
    assert wxb.accelerator.device_count() == 0
    device = wxb.accelerator.current_accelerator().type if wxb.accelerator.is_available() else "cpu"
    assert wxb.tensor([1.0]).to(device).device.type == "cpu"
    if not torch.accelerator.is_available():  # torch's answers on a machine without one
        assert torch.accelerator.current_accelerator() is None
        assert torch.accelerator.device_count() == wxb.accelerator.device_count()


def test_argmax_compared_with_torch_labels_counts_as_torchs(seeded):
    """``pred.argmax(1) == y`` with y a DataLoader's torch tensor: the mask is wxb's, so
    ``.type(wxb.float32)``, ``.float()`` and ``.sum().item()`` count as torch's do."""
    rng = seeded.rng
    rows = int(rng.integers(1, 50))
    logits = wxb.tensor(rng.standard_normal((rows, 4)))
    y = torch.tensor(rng.integers(0, 4, rows))
    expected = int((torch.tensor(np.asarray(logits.data)).argmax(1) == y).sum())
    mask = logits.argmax(1) == y
    assert isinstance(mask, np.ndarray) and mask.dtype == np.bool_, seeded.msg(repr(mask))
    assert mask.type(wxb.float32).sum().item() == expected, seeded.msg("type")
    assert mask.type(torch.float).sum().item() == expected, seeded.msg("torch's dtype")
    assert (logits.argmax(1) != y).sum().item() == rows - expected, seeded.msg("!=")


# -- scikit-learn's MLP examples -----------------------------------------------------------
# "Compare stochastic learning strategies for MLPClassifier": its parameter grid
STRATEGIES = [
    {"solver": "sgd", "learning_rate": "constant", "momentum": 0, "learning_rate_init": 0.2},
    {
        "solver": "sgd",
        "learning_rate": "constant",
        "momentum": 0.9,
        "nesterovs_momentum": False,
        "learning_rate_init": 0.2,
    },
    {
        "solver": "sgd",
        "learning_rate": "constant",
        "momentum": 0.9,
        "nesterovs_momentum": True,
        "learning_rate_init": 0.2,
    },
    {"solver": "sgd", "learning_rate": "invscaling", "momentum": 0, "learning_rate_init": 0.2},
    {
        "solver": "sgd",
        "learning_rate": "invscaling",
        "momentum": 0.9,
        "nesterovs_momentum": False,
        "learning_rate_init": 0.2,
    },
    {
        "solver": "sgd",
        "learning_rate": "invscaling",
        "momentum": 0.9,
        "nesterovs_momentum": True,
        "learning_rate_init": 0.2,
    },
    {"solver": "adam", "learning_rate_init": 0.01},
]


def _fit_as_the_example(module, X, y, random_state, max_iter, param):
    mlp = module.MLPClassifier(random_state=random_state, max_iter=max_iter, **param)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        # the example's own line: "some parameter combinations will not converge"
        warnings.filterwarnings("ignore", category=ConvergenceWarning, module="sklearn")
        mlp.fit(X, y)
    return mlp, [str(w.message) for w in shown]


@pytest.mark.parametrize("data", ["iris", "moons", "circles"])
def test_stochastic_learning_strategies_as_scikit_learns(seeded, data):
    """Each strategy gives scikit-learn's loss curve, score and iterations; the example's
    filter of ConvergenceWarning (module="sklearn") silenced scikit-learn's and not
    wxb's, which was raised from wxb.sklearn: the port printed a warning a fit."""
    rng = seeded.rng
    seed = int(rng.integers(2**31))
    if data == "iris":
        X, y = load_iris(return_X_y=True)
    elif data == "moons":
        X, y = make_moons(n_samples=int(rng.integers(60, 120)), noise=0.3, random_state=seed)
    else:
        X, y = make_circles(
            n_samples=int(rng.integers(60, 120)), noise=0.2, factor=0.5, random_state=seed
        )
    X = MinMaxScaler().fit_transform(X)
    random_state, max_iter = int(rng.integers(100)), int(rng.integers(20, 60))
    for param in STRATEGIES:
        theirs, their_warnings = _fit_as_the_example(
            sk_neural_network, X, y, random_state, max_iter, param
        )
        ours, our_warnings = _fit_as_the_example(wxb_sklearn, X, y, random_state, max_iter, param)
        what = seeded.msg(f"{data} {param}")
        assert our_warnings == their_warnings == [], what
        assert ours.n_iter_ == theirs.n_iter_, what
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10, err_msg=what)
        assert ours.score(X, y) == theirs.score(X, y), what


def test_convergence_warnings_are_shown_and_caught_as_scikit_learns(seeded):
    """Unfiltered, the warning is still shown, once a fit, of scikit-learn's category;
    filtered by the module it would come from in scikit-learn, it is not (lbfgs too)."""
    rng = seeded.rng
    X = rng.standard_normal((int(rng.integers(30, 60)), 3))
    y = (X[:, 0] + 0.3 * rng.standard_normal(len(X)) > 0).astype(int)
    for solver in ("sgd", "adam", "lbfgs"):
        est = wxb_sklearn.MLPClassifier(solver=solver, max_iter=2, random_state=0)
        with pytest.warns(ConvergenceWarning):
            est.fit(X, y)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            warnings.filterwarnings(
                "ignore", category=ConvergenceWarning, module="sklearn.neural_network"
            )
            est.fit(X, y)  # raised before: the filter did not match wxb.sklearn


ALPHAS = np.logspace(-1, 1, 5)


def test_varying_regularization_as_scikit_learns(seeded):
    """ "Varying regularization in Multi-layer Perceptron": lbfgs, hidden (10, 10), α from
    0.1 to 10, after a StandardScaler, on the example's three data sets (drawn afresh).
    From the same start the objective's values agree to rounding, but L-BFGS over
    hundreds of iterations of a non-convex objective magnifies a last-bit difference:
    the runs of many iterations part (see docs/sklearn.md). Those of few iterations,
    where the strong α makes the objective nearly convex, agree to 1e-9, and every run
    reaches an objective as low as scikit-learn's to a few per cent."""
    rng = seeded.rng
    seed = int(rng.integers(2**31))
    X, y = make_classification(
        n_features=2, n_redundant=0, n_informative=2, random_state=seed, n_clusters_per_class=1
    )
    X += 2 * rng.uniform(size=X.shape)
    datasets = [
        make_moons(noise=0.3, random_state=seed),
        make_circles(noise=0.2, factor=0.5, random_state=seed),
        (X, y),
    ]
    for X, y in datasets:
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=42)
        for alpha in ALPHAS[-2:]:
            fitted = []
            for module in (sk_neural_network, wxb_sklearn):
                clf = make_pipeline(
                    StandardScaler(),
                    module.MLPClassifier(
                        solver="lbfgs",
                        alpha=alpha,
                        random_state=1,
                        max_iter=2000,
                        early_stopping=True,
                        hidden_layer_sizes=[10, 10],
                    ),
                )
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", category=ConvergenceWarning)
                    clf.fit(X_train, y_train)
                fitted.append(clf)
            theirs, ours = fitted
            what = seeded.msg(f"alpha {alpha}")
            assert not hasattr(ours, "decision_function") and not hasattr(
                theirs, "decision_function"
            )
            assert ours[-1].loss_ <= theirs[-1].loss_ * 1.05, what
            if theirs[-1].n_iter_ <= 40:
                assert ours[-1].n_iter_ == theirs[-1].n_iter_, what
                grid = rng.uniform(X.min(0) - 0.5, X.max(0) + 0.5, size=(200, 2))
                np.testing.assert_allclose(
                    ours.predict_proba(grid)[:, 1],
                    theirs.predict_proba(grid)[:, 1],
                    rtol=1e-9,
                    atol=1e-12,
                    err_msg=what,
                )
                assert ours.score(X_test, y_test) == theirs.score(X_test, y_test), what


def test_index_arrays_compare_with_torch_labels_but_leave_torch_arithmetic_to_torch(seeded):
    """argmax's indices compared with a torch tensor (==, !=, <, …) give wxb's mask, equal
    to NumPy's on the tensor's values (a comparison carries no gradient); arithmetic with a
    torch tensor that requires grad is not silently taken over as values (its graph would be
    dropped): NumPy's explicit call refuses it, as the operator does."""
    torch = pytest.importorskip("torch")
    rng = seeded.rng
    n, c = int(rng.integers(1, 30)), int(rng.integers(2, 6))
    idx = wxb.tensor(rng.normal(size=(n, c))).argmax(1)
    labels = rng.integers(0, c, size=n)
    for y in (torch.tensor(labels), torch.tensor(labels.astype(float), requires_grad=True)):
        for op in ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"):
            got = getattr(idx, op)(y)
            assert isinstance(got, np.ndarray) and got.dtype == bool, seeded.msg(op)
            np.testing.assert_array_equal(got, getattr(np.asarray(idx), op)(labels))
    weights = torch.tensor(rng.normal(size=n), requires_grad=True)
    with pytest.raises(TypeError):
        np.multiply(idx, weights)
    with pytest.raises(TypeError):
        idx * weights
