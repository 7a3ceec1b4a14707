"""Model interchange: wxb → PyTorch → wxb, PyTorch → wxb, scikit-learn's MLPs → wxb.

Networks, sizes and data are drawn fresh on every run (``WXB_TEST_SEED=<seed>``
replays one; the seed is in every assertion message).

Tolerances. A round trip copies every array, so wxb → torch → wxb predicts
*exactly* what the model did. PyTorch's own forward rounds differently (its
matmul sums in another order, its GELU uses erf in float32, …), so it is compared
element by element against the size of what rounding acted on: ``magnitude``
bounds each output's ancestors in absolute value (|W|·s + |b| through the dense
layers, the inputs' rounding scale through the activations). A plain relative
error would fail for an output that is a small difference of large terms.
float32: 1e-6 of that scale (measured ≤ 2.5e-7 over 6,000 random networks);
float64: 1e-12 (measured ≤ 1.1e-15). scikit-learn's MLPs compute the same
float64 arithmetic as wxb (X·W + b, then the activation), so its decision values,
probabilities and predictions are checked to 1e-12.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings
from collections import OrderedDict

import numpy as np
import pytest

import wxb
from wxb import interop, ops
from wxb.errors import ConfigError
from wxb.nn import (
    GELU,
    CrossEntropyLoss,
    Dense,
    Dropout,
    Identity,
    LeakyReLU,
    Module,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Standardize,
    Tanh,
)

torch = pytest.importorskip("torch")

TOLERANCE = {"float32": 1e-6, "float64": 1e-12}


# ---------------------------------------------------------------------------------
# Random wxb networks and how close PyTorch must come
# ---------------------------------------------------------------------------------
def random_activation(rng: np.random.Generator) -> Module:
    kind = int(rng.integers(7))
    if kind == 4:
        return LeakyReLU(float(rng.uniform(-0.5, 1.5)))
    if kind == 5:
        return GELU(str(rng.choice(["none", "tanh"])))
    return [Identity, Sigmoid, Tanh, ReLU, None, None, Softmax][kind]()


def random_block(rng, width: int, depth: int, nested: bool = True) -> tuple[list[Module], int]:
    layers: list[Module] = []
    for _ in range(depth):
        if nested and rng.random() < 0.25:
            inner, width = random_block(rng, width, int(rng.integers(1, 3)), nested=False)
            layers.append(Sequential(*inner))
            continue
        out = int(rng.integers(1, 9))
        bias = bool(rng.random() < 0.7)
        layers.append(Dense(width, out, bias=bias, seed=int(rng.integers(1 << 30))))
        layers.append(random_activation(rng))
        if rng.random() < 0.3:
            layers.append(Dropout(float(rng.uniform(0, 0.9))))
        width = out
    return layers, width


def random_network(rng, dtype: str) -> tuple[Sequential, int]:
    n_in = int(rng.integers(1, 8))
    layers: list[Module] = []
    if rng.random() < 0.5:
        layers.append(Standardize(rng.normal(size=n_in), rng.uniform(0.3, 3, size=n_in)))
    block, _ = random_block(rng, n_in, int(rng.integers(1, 5)))
    model = Sequential(*layers, *block).to(dtype)
    if rng.random() < 0.5:  # trained weights are not Glorot's: biases too
        for p in model.parameters():
            p.data += rng.normal(scale=0.5, size=p.shape).astype(dtype)
    return model, n_in


def flat(model: Sequential):
    for layer in model:
        if isinstance(layer, Sequential):
            yield from flat(layer)
        else:
            yield layer


def magnitude(model: Sequential, X: np.ndarray) -> np.ndarray:
    """A bound on |each output's ancestors|: the scale rounding acts on."""
    s = np.abs(X.astype(np.float64))
    for layer in flat(model):
        if isinstance(layer, Dense):
            s = s @ np.abs(layer.weight.data.astype(np.float64)).T
            if layer.bias is not None:
                s = s + np.abs(layer.bias.data)
        elif isinstance(layer, Standardize):
            s = (s + np.abs(layer.mean)) / layer.scale
        elif isinstance(layer, LeakyReLU):
            s = s * max(1.0, abs(layer.kernel.negative_slope))
        elif isinstance(layer, Sigmoid):  # σ(0) = ½: outputs of size 1 from inputs near 0
            s = s + 1
        elif isinstance(layer, Softmax):  # outputs ≤ 1, moved by the whole row's error
            s = np.broadcast_to(s.max(axis=1, keepdims=True) + 1, s.shape)
        elif not isinstance(layer, Dropout):  # |f(z)| ≤ ~|z| (GELU: 1.13·|z|)
            s = s * 1.2
    return s


def torch_output(module, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(X)).numpy()


def assert_torch_matches(model, twin, X, dtype, msg):
    ours, theirs = model.predict(X), torch_output(twin, X)
    assert theirs.dtype == ours.dtype == np.dtype(dtype), msg
    error = np.abs(ours.astype(np.float64) - theirs) / np.maximum(magnitude(model, X), 1e-300)
    assert error.max() <= TOLERANCE[dtype], msg + f": error {error.max():.3g}"


def draw_rows(rng, n_features: int, dtype: str) -> np.ndarray:
    rows = int(rng.integers(1, 40))
    return (rng.normal(size=(rows, n_features)) * rng.uniform(0.1, 5)).astype(dtype)


def every_layer_kind(rng, dtype: str) -> tuple[Sequential, int]:
    n, h = int(rng.integers(2, 7)), int(rng.integers(2, 9))
    seed = int(rng.integers(1 << 30))
    model = Sequential(
        Standardize(rng.normal(size=n), rng.uniform(0.5, 2, size=n)),
        Dense(n, h, seed=seed),
        Sigmoid(),
        Dense(h, h, bias=False, seed=seed + 1),
        Tanh(),
        Sequential(Dense(h, h, seed=seed + 2), ReLU(), Dropout(0.4), name="block"),
        LeakyReLU(float(rng.uniform(-0.5, 0.5))),
        Dense(h, h, seed=seed + 3, name="wide"),
        GELU("none"),
        Dense(h, h, seed=seed + 4),
        GELU("tanh"),
        Identity(),
        Dense(h, 3, seed=seed + 5),
        Softmax(),
    ).to(dtype)
    return model, n


# ---------------------------------------------------------------------------------
# wxb → PyTorch → wxb
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_random_networks_round_trip_exactly_and_torch_computes_the_same(seeded, dtype):
    rng = seeded.rng
    for trial in range(40):
        msg = seeded.msg(f"network {trial}, {dtype}")
        model, n = random_network(rng, dtype)
        model.eval()
        twin = interop.to_torch(model)
        assert type(twin) is torch.nn.Sequential and not twin.training, msg
        assert all(p.dtype == getattr(torch, dtype) for p in twin.parameters()), msg
        X = draw_rows(rng, n, dtype)
        assert_torch_matches(model, twin, X, dtype, msg)

        back = interop.from_torch(twin)
        assert back.dtype == np.dtype(dtype), msg
        assert back.config() == model.config(), msg  # same layers, same names, same nesting
        assert np.array_equal(back.predict(X), model.predict(X)), msg
        ours, theirs = model.state_dict(), back.state_dict()
        assert ours.keys() == theirs.keys() == twin.state_dict().keys(), msg
        for key, array in ours.items():
            assert theirs[key].dtype == array.dtype and np.array_equal(theirs[key], array), msg
        assert not back.training, msg


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_layer_kind_has_its_pytorch_twin(seeded, dtype):
    rng = seeded.rng
    model, n = every_layer_kind(rng, dtype)
    twin = interop.to_torch(model)
    nn = torch.nn
    kinds = [type(m) for m in twin]
    assert kinds == [
        interop.TorchStandardize,
        nn.Linear,
        nn.Sigmoid,
        nn.Linear,
        nn.Tanh,
        nn.Sequential,
        nn.LeakyReLU,
        nn.Linear,
        nn.GELU,
        nn.Linear,
        nn.GELU,
        nn.Identity,
        nn.Linear,
        nn.Softmax,
    ]
    assert [type(m) for m in twin.block] == [nn.Linear, nn.ReLU, nn.Dropout]
    assert twin.block[2].p == 0.4 and twin.dense2.bias is None and twin.softmax1.dim == -1
    assert twin.leakyrelu1.negative_slope == model.leakyrelu1.kernel.negative_slope
    assert (twin.gelu1.approximate, twin.gelu2.approximate) == ("none", "tanh")
    assert "wide.weight" in twin.state_dict()  # the layers' names are the keys
    model.eval()
    twin.eval()
    for _ in range(3):
        X = draw_rows(rng, n, dtype)
        assert_torch_matches(model, twin, X, dtype, seeded.msg(dtype))
        assert np.array_equal(interop.from_torch(twin).predict(X), model.predict(X))


def test_to_torch_copies_weights_and_keeps_modes_frozen_parameters_and_ties(rng):
    n, h = (int(v) for v in rng.integers(2, 8, size=2))
    shared = Dense(h, h, seed=int(rng.integers(1 << 30)))
    model = Sequential(Dense(n, h), Tanh(), shared, ReLU(), shared, Dropout(0.5)).double()
    model[0].weight.requires_grad = False
    model.train()
    twin = interop.to_torch(model)
    assert twin.training and all(m.training for m in twin.modules())
    assert not twin[0].weight.requires_grad and twin[0].bias.requires_grad
    assert twin[2] is twin[4] and len(list(twin.parameters())) == 4  # the tie survives
    before = model.state_dict()
    with torch.no_grad():
        for p in twin.parameters():
            p.add_(1.0)  # the twin owns its weights
    assert all(np.array_equal(model.state_dict()[k], a) for k, a in before.items())

    back = interop.from_torch(twin)
    assert back.training and not back[0].weight.requires_grad
    assert back[2] is back[4] and len(back.parameters()) == 4
    model.eval()
    twin.eval()
    X = rng.normal(size=(9, n))
    assert_torch_matches(back, twin, X, "float64", "shared layers")
    pickled = pickle.loads(pickle.dumps(interop.to_torch(Sequential(Standardize([1.0], [2.0])))))
    assert type(pickled[0]) is interop.TorchStandardize  # the lazily made class pickles


def test_to_torch_of_a_single_layer_or_layers_without_weights(rng):
    dense = Dense(3, 2, seed=int(rng.integers(1 << 30))).double()
    twin = interop.to_torch(dense)
    assert type(twin) is torch.nn.Sequential and type(twin[0]) is torch.nn.Linear
    X = rng.normal(size=(4, 3))
    assert np.allclose(torch_output(twin, X), dense(X).data, rtol=1e-12, atol=1e-12)
    relu = interop.to_torch(Sequential(ReLU(), Softmax()))
    assert np.allclose(torch_output(relu, X), Sequential(ReLU(), Softmax()).predict(X))


def test_to_torch_of_a_forward_that_only_chains_its_layers_is_the_sequential_of_them(rng):
    # a module of one's own was refused ("no PyTorch twin") however plain its forward
    F = wxb.nn.functional
    n, h, k = (int(v) for v in rng.integers(2, 9, size=3))
    slope = float(rng.uniform(0.05, 0.5))

    class Block(Module):
        def __init__(self):
            super().__init__()
            self.fc = Dense(h, h, seed=int(rng.integers(1 << 30)))

        def forward(self, x):
            return F.leaky_relu(self.fc(x), slope)

    class Net(Module):
        def __init__(self):
            super().__init__()
            self.out, self.block = Dense(h, k), Block()  # registered last first
            self.inp, self.drop = Dense(n, h, seed=int(rng.integers(1 << 30))), Dropout(0.3)

        def forward(self, x):
            return F.softmax(self.out(self.drop(self.block(F.tanh(self.inp(x))))))

    model = Net().double()
    model.inp.weight.requires_grad = False
    twin = interop.to_torch(model)
    assert list(twin._modules) == ["inp", "tanh()", "block_fc", "block_leaky_relu()", "drop",
                                   "out", "softmax()"]  # fmt: skip
    assert twin.training and not twin.inp.weight.requires_grad
    assert twin[3].negative_slope == slope and twin.drop.p == 0.3
    model.eval()
    twin.eval()
    X = rng.normal(size=(9, n))
    np.testing.assert_allclose(torch_output(twin, X), model.predict(X), rtol=1e-12, atol=1e-14)
    with pytest.raises(ConfigError, match="only chains stock layers would be"):
        interop.to_torch(Scaled(n))


class Scaled(Module):  # a forward of its own that does more than chain its layer
    def __init__(self, n):
        super().__init__()
        self.fc = Dense(n, 2)

    def forward(self, x):
        return self.fc(x) * 2.0


class Scale(Module):
    def forward(self, x):
        return x


class MyDense(Dense):
    pass


class Residual(Sequential):
    def forward(self, x):
        return x + super().forward(x)


def test_to_torch_refuses_what_has_no_twin_naming_the_module():
    cases = [
        (Sequential(Dense(2, 2), Sequential(ReLU(), Scale(), name="inner")), "inner.scale1"),
        (Sequential(Dense(2, 2), MyDense(2, 2)), "mydense1"),
        (Sequential(Dense(2, 2), Residual(Dense(2, 2), name="skip")), "skip"),
    ]
    for model, path in cases:
        with pytest.raises(ConfigError, match=rf"module '{path}' \(\w+\)"):
            interop.to_torch(model)
    replaced = Sequential(Dense(2, 2), Tanh())
    replaced[1].forward = lambda x: x
    with pytest.raises(ConfigError, match=r"module 'tanh1' \(Tanh\).*replaced"):
        interop.to_torch(replaced)
    mixed = Sequential(Dense(2, 2, dtype="float32"), Dense(2, 2, dtype="float64"))
    with pytest.raises(ConfigError, match="mixes float32 and float64"):
        interop.to_torch(mixed)
    with pytest.raises(ConfigError, match=r"wxb\.nn\.Module"):
        interop.to_torch(torch.nn.Linear(2, 2))


def test_importing_wxb_and_interop_imports_neither_torch_nor_sklearn():
    code = (
        "import sys, wxb, wxb.interop\n"
        "assert 'torch' not in sys.modules and 'sklearn' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ---------------------------------------------------------------------------------
# PyTorch → wxb
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_hand_made_torch_sequentials_read_back(seeded, tmp_path, dtype):
    rng = seeded.rng
    torch.manual_seed(int(rng.integers(1 << 62)))  # PyTorch's initialisation, fresh per run
    nn = torch.nn
    n, h, c = (int(v) for v in rng.integers(2, 9, size=3))
    seq = nn.Sequential(
        nn.Linear(n, h),
        nn.ReLU(),
        nn.Linear(h, h, bias=False),
        nn.Tanh(),
        nn.Sequential(nn.Linear(h, h), nn.Sigmoid(), nn.Dropout(0.2)),
        nn.LeakyReLU(0.3),
        nn.Sequential(OrderedDict(hidden=nn.Linear(h, h), act=nn.GELU("tanh"))),
        nn.GELU(),
        nn.Identity(),
        nn.Linear(h, c),
        nn.Softmax(dim=-1),
    ).to(getattr(torch, dtype))
    seq.eval()
    model = interop.from_torch(seq)
    msg = seeded.msg(dtype)
    assert model.dtype == np.dtype(dtype) and not model.training, msg
    assert [type(m) for m in model] == [
        Dense, ReLU, Dense, Tanh, Sequential, LeakyReLU, Sequential, GELU, Identity, Dense, Softmax
    ]  # fmt: skip
    assert [m.name for m in model[6]] == ["hidden", "act"]  # keys that are names are kept
    assert model[0].name == "dense1" and model[2].bias is None
    assert model[4][2].p == pytest.approx(0.2) and model[5].kernel.negative_slope == 0.3
    for _ in range(3):
        X = draw_rows(rng, n, dtype)
        assert_torch_matches(model, seq, X, dtype, msg)
    loaded = wxb.load(wxb.save(model, tmp_path / "from_torch.safetensors"))
    assert np.array_equal(loaded.predict(X), model.predict(X)), msg


def test_from_torch_names_avoid_the_keys_and_shared_modules_stay_shared(rng, tmp_path):
    nn = torch.nn
    n = int(rng.integers(2, 6))
    tied = nn.Linear(n, n).double()
    seq = nn.Sequential(
        OrderedDict(
            [("0", nn.Linear(n, n).double()), ("dense1", tied), ("2", nn.ReLU()), ("3", tied)]
        )
    )
    model = interop.from_torch(seq)
    assert [m.name for m in model] == ["dense2", "dense1", "relu1", "dense1"]
    assert model[1] is model[3]
    X = rng.normal(size=(5, n))
    assert np.allclose(model.predict(X), torch_output(seq, X), rtol=1e-12, atol=1e-12)

    # a module shared with a nested Sequential keeps the name it got there; a later key
    # that is the same name then goes to no layer, and "layers" names no layer of wxb's
    inner = nn.Sequential(OrderedDict(x=tied, relu=nn.ReLU()))
    keys = OrderedDict(inner=inner, y=nn.Linear(n, n), again=tied, layers=nn.Tanh())
    seq = nn.Sequential(OrderedDict(**keys, x=nn.Linear(n, n))).double()
    model = interop.from_torch(seq)
    assert [m.name for m in model] == ["inner", "y", "x", "tanh1", "dense1"]
    assert model[2] is model.inner.x
    assert np.allclose(model.predict(X), torch_output(seq, X), rtol=1e-12, atol=1e-12)
    loaded = wxb.load(wxb.save(model, tmp_path / "shared.safetensors"))
    assert np.array_equal(loaded.predict(X), model.predict(X))


def test_from_torch_refuses_other_modules_naming_them():
    nn = torch.nn
    cases = [
        (nn.Sequential(nn.Linear(4, 4), nn.Conv1d(1, 1, 3)), r"module '1' \(Conv1d\)"),
        (nn.Sequential(nn.Unfold(2), nn.Linear(2, 2)), r"module '0' \(Unfold\)"),
        (
            nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU(), nn.GroupNorm(2, 4))),
            r"module '1\.1' \(GroupNorm\)",
        ),
        (
            nn.Sequential(OrderedDict(norm=nn.InstanceNorm1d(4))),
            r"module 'norm' \(InstanceNorm1d\)",
        ),
        (nn.Sequential(nn.Linear(4, 4), nn.LogSoftmax(dim=0)), r"'1' \(LogSoftmax\).*dim=0"),
        (nn.Sequential(nn.Linear(4, 4), nn.Softmax2d()), r"module '1' \(Softmax2d\)"),
        (nn.Sequential(nn.Softmax(dim=0)), r"module '0' \(Softmax\): it is over dim=0"),
        (nn.Sequential(nn.Softmax()), r"module '0' \(Softmax\): it is over dim=None"),
        (nn.Sequential(nn.ModuleList([nn.ReLU()])), r"module '0' \(ModuleList\)"),
    ]
    for seq, pattern in cases:
        with pytest.raises(ConfigError, match=pattern):
            interop.from_torch(seq)

    class MyLinear(nn.Linear):
        pass

    with pytest.raises(ConfigError, match=r"module '0' \(MyLinear\).*subclasses refused"):
        interop.from_torch(nn.Sequential(MyLinear(2, 2)))
    with pytest.raises(ConfigError, match=r"needs a torch\.nn\.Sequential; got Linear"):
        interop.from_torch(nn.Linear(2, 2))
    with pytest.raises(ConfigError, match=r"float16.*\.float\(\) or \.double\(\)"):
        interop.from_torch(nn.Sequential(nn.Linear(2, 2)).half())
    with pytest.raises(ConfigError, match="mixes dtypes"):
        interop.from_torch(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2).double()))
    standardize = interop.TorchStandardize(torch.zeros(2), torch.tensor([1.0, 0.0]))
    with pytest.raises(ConfigError, match=r"module '0' \(TorchStandardize\).*scale must be > 0"):
        interop.from_torch(nn.Sequential(standardize))


def test_from_torch_refuses_what_pytorch_runs_besides_the_forward(rng):
    """Hooks, a forward set on the instance, and weights a hook recomputes (pruning,
    spectral_norm) change what the torch model computes; converting them gave the bare
    layers' numbers without a word."""
    nn = torch.nn
    prune = pytest.importorskip("torch.nn.utils.prune")

    def model():
        return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))

    def with_hook(index, kind):
        seq = model()
        target = seq if index is None else seq[index]
        if kind == "pre":
            target.register_forward_pre_hook(lambda m, args: (args[0] + 1,))
        else:
            target.register_forward_hook(lambda m, args, out: out * 2)
        return seq

    def with_forward():
        seq = model()
        seq[2].forward = lambda x: x[:, :2] * 0
        return seq

    def pruned():
        seq = model()
        prune.l1_unstructured(seq[0], "weight", amount=0.5)
        return seq

    cases = [
        (with_hook(1, "post"), r"module '1' \(ReLU\): it has a forward hook, .* \(remove it "),
        (with_hook(0, "pre"), r"module '0' \(Linear\): it has a forward pre-hook, "),
        (with_hook(None, "post"), r"the Sequential itself \(Sequential\): it has a forward hook, "),
        (with_forward(), r"module '2' \(Linear\): its forward is set on the instance"),
        (pruned(), r"module '0' \(Linear\): it has a forward pre-hook, "),
        (
            nn.Sequential(nn.utils.spectral_norm(nn.Linear(3, 4))),
            r"module '0' \(Linear\): it has a forward pre-hook, ",
        ),
    ]
    for seq, pattern in cases:
        with pytest.raises(ConfigError, match=pattern):
            interop.from_torch(seq)

    # a weight made a plain attribute again by hand, with no hook left, is still not read
    seq = pruned()
    seq[0]._forward_pre_hooks.clear()
    with pytest.raises(ConfigError, match=r"its weight is not a parameter but computed"):
        interop.from_torch(seq)
    seq = pruned()  # the way out the message names converts, to the pruned numbers
    prune.remove(seq[0], "weight")
    x = torch.from_numpy(rng.normal(size=(5, 3)).astype(np.float32))
    got = interop.from_torch(seq).predict(x.numpy())
    np.testing.assert_allclose(got, seq(x).detach().numpy(), rtol=1e-6, atol=1e-6)

    handle = torch.nn.modules.module.register_module_forward_hook(lambda m, a, o: o)
    try:
        with pytest.raises(ConfigError, match="a global forward hook is registered"):
            interop.from_torch(model())
    finally:
        handle.remove()
    interop.from_torch(model())  # and once removed, converts


# ---------------------------------------------------------------------------------
# scikit-learn → wxb
# ---------------------------------------------------------------------------------
KINDS = ["binary", "multiclass", "multilabel", "regression", "multi-output regression"]


def fit_mlp(rng, kind: str, activation: str, dtype=np.float64):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    n_rows, n = int(rng.integers(30, 80)), int(rng.integers(1, 7))
    hidden = tuple(int(v) for v in rng.integers(1, 9, size=int(rng.integers(1, 4))))
    X = (rng.normal(size=(n_rows, n)) * rng.uniform(0.5, 3)).astype(dtype)
    if kind == "binary":
        y = rng.choice(np.array(["no", "yes"]), size=n_rows)
    elif kind == "multiclass":
        y = rng.integers(0, int(rng.integers(3, 6)), size=n_rows)
        y[:3] = [0, 1, 2]  # at least three classes
    elif kind == "multilabel":
        y = rng.integers(0, 2, size=(n_rows, int(rng.integers(2, 5))))
    elif kind == "regression":
        y = rng.normal(size=n_rows) * 10
    else:
        y = rng.normal(size=(n_rows, int(rng.integers(2, 4))))
    cls = MLPRegressor if "regression" in kind else MLPClassifier
    est = cls(
        hidden_layer_sizes=hidden,
        activation=activation,
        max_iter=int(rng.integers(2, 8)),
        learning_rate_init=0.05,
        random_state=int(rng.integers(1 << 30)),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    return est, X


def sigmoid(z: np.ndarray) -> np.ndarray:
    return ops.Sigmoid().forward(z, np.empty_like(z))


def softmax(z: np.ndarray) -> np.ndarray:
    return ops.softmax_rows(z, np.empty_like(z))


def check_against_sklearn(model, est, X, kind: str, tol: float, msg: str) -> None:
    z = model.predict(X)
    close = {"rtol": tol, "atol": tol, "err_msg": msg}
    if kind == "binary":
        assert z.shape == (len(X), 1), msg
        p = sigmoid(z)[:, 0]
        np.testing.assert_allclose(p, est.predict_proba(X)[:, 1], **close)
        classes = np.array(model.info["classes"], dtype=object)
        assert (classes[(p > 0.5).astype(int)] == est.predict(X)).all(), msg
    elif kind == "multiclass":
        p = softmax(z)
        np.testing.assert_allclose(p, est.predict_proba(X), **close)
        classes = np.array(model.info["classes"], dtype=object)
        assert (classes[p.argmax(axis=1)] == est.predict(X)).all(), msg
    elif kind == "multilabel":
        p = sigmoid(z)
        np.testing.assert_allclose(p, est.predict_proba(X), **close)
        assert np.array_equal((p > 0.5).astype(int), est.predict(X)), msg
    else:
        np.testing.assert_allclose(z.reshape(est.predict(X).shape), est.predict(X), **close)


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("kind", KINDS)
def test_sklearn_mlps_convert_to_the_same_predictions(seeded, tmp_path, kind, activation):
    pytest.importorskip("sklearn")
    rng = seeded.rng
    est, X = fit_mlp(rng, kind, activation)
    msg = seeded.msg(f"{kind}, {activation}")
    model = interop.from_sklearn(est)
    assert model.dtype == np.float64, msg
    hidden = [type(m) for m in model if not isinstance(m, Dense)]
    twin = {"identity": Identity, "logistic": Sigmoid, "tanh": Tanh, "relu": ReLU}[activation]
    assert hidden == [twin] * (len(est.coefs_) - 1) and isinstance(model[-1], Dense), msg
    info = model.info
    assert info["n_features"] == X.shape[1], msg
    if "regression" in kind:
        assert (info["task"], info["loss"]) == ("regression", "mse") and "classes" not in info
    else:
        assert info["task"] == "classification", msg
        assert info["classes"] == est.classes_.tolist(), msg
        assert all(type(c) in (str, int) for c in info["classes"]), msg  # plain Python values
        loss = "cross_entropy" if kind == "multiclass" else "bce_with_logits"
        assert info["loss"] == loss and info.get("multilabel", False) == (kind == "multilabel")
    check_against_sklearn(model, est, X, kind, 1e-12, msg)
    X_new = rng.normal(size=(int(rng.integers(1, 30)), X.shape[1])) * 3
    check_against_sklearn(model, est, X_new, kind, 1e-12, msg + " (fresh rows)")

    loaded = wxb.load(wxb.save(model, tmp_path / "mlp.safetensors"))
    assert loaded.info == info, msg
    assert np.array_equal(loaded.predict(X_new), model.predict(X_new)), msg
    check_against_sklearn(loaded, est, X_new, kind, 1e-12, msg + " (loaded)")


def test_sklearn_float32_feature_names_and_dtype_choice(seeded):
    pytest.importorskip("sklearn")
    rng = seeded.rng
    est, X = fit_mlp(rng, "multiclass", "tanh", dtype=np.float32)
    assert est.coefs_[0].dtype == np.float32  # scikit-learn keeps float32 data in float32
    model = interop.from_sklearn(est)
    assert model.dtype == np.float32
    check_against_sklearn(model, est, X, "multiclass", 1e-5, seeded.msg("float32"))
    wide = interop.from_sklearn(est, dtype="float64")
    assert wide.dtype == np.float64
    check_against_sklearn(wide, est, X, "multiclass", 1e-5, seeded.msg("float32 → float64"))

    est, X = fit_mlp(rng, "regression", "relu")
    names = [f"x{i}" for i in range(X.shape[1])]
    est.feature_names_in_ = np.array(names, dtype=object)  # as a DataFrame would leave them
    assert interop.from_sklearn(est).info["feature_names"] == names


def test_from_sklearn_refuses_unfitted_and_other_estimators():
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with pytest.raises(ConfigError, match="not fitted"):
        interop.from_sklearn(MLPClassifier())
    with pytest.raises(ConfigError, match="got LogisticRegression"):
        interop.from_sklearn(LogisticRegression())
    with pytest.raises(ConfigError, match=r"got Pipeline.*last step"):
        interop.from_sklearn(make_pipeline(StandardScaler(), MLPRegressor()))
    with pytest.raises(ConfigError, match="got Sequential"):
        interop.from_sklearn(Sequential(Dense(2, 2)))
    from wxb.sklearn import MLPClassifier as WxbClassifier

    with pytest.raises(ConfigError, match=r"wxb's own MLPClassifier.*to_wxb\(\)"):
        interop.from_sklearn(WxbClassifier())
    # (loss="poisson" converts, with its log link: test_small61)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_a_sklearn_estimator_becomes_wxbs_and_keeps_training_as_sklearn(seeded, kind, solver):
    """estimator_from_sklearn: the same predictions at once, and after a warm-start fit
    of both, the same weights (scikit-learn's rules, float64)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    from wxb.interop import estimator_from_sklearn

    rng = seeded.rng
    n, features = int(rng.integers(40, 120)), int(rng.integers(2, 8))
    X = rng.normal(size=(n, features))
    if kind == "regression":
        y, cls = X @ rng.normal(size=features) + rng.normal(scale=0.1, size=n), MLPRegressor
    else:
        classes = 2 if kind == "binary" else int(rng.integers(3, 5))
        y, cls = np.array(list("abcd"))[rng.integers(0, classes, size=n)], MLPClassifier
        y[:classes] = np.array(list("abcd"))[:classes]
    options = {
        "hidden_layer_sizes": (int(rng.integers(3, 12)),),
        "solver": solver,
        "max_iter": int(rng.integers(2, 6)),
        "random_state": int(rng.integers(1 << 30)),
        "alpha": float(rng.uniform(0, 1e-2)),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = cls(**options).fit(X, y)
        ours = estimator_from_sklearn(theirs)
        msg = seeded.msg(f"{kind}, {options}")
        assert np.array_equal(ours.predict(X), theirs.predict(X)), msg
        for est in (theirs, ours):
            est.set_params(warm_start=True)
            est.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_, msg
    for a, b in zip(
        ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=msg)
    assert ours.loss_curve_ == pytest.approx(theirs.loss_curve_, rel=1e-10), msg


@pytest.mark.parametrize("direction", ["to_torch", "from_torch"])
def test_weights_tied_between_layers_stay_tied_and_train_alike(rng, direction):
    """b.weight = a.weight (a Parameter, not a layer, shared): the twin shares one
    parameter too, so both train alike (it was untied: one parameter more, and after
    three SGD steps outputs 0.25 apart)."""
    width, tie_bias = int(rng.integers(2, 6)), bool(rng.integers(0, 2))
    if direction == "to_torch":
        a, b = Dense(width, width), Dense(width, width)
        b.weight = a.weight
        if tie_bias:
            b.bias = a.bias
        model = Sequential(a, Tanh(), b, Tanh(), Dense(width, 3)).to("float64")
        twin = interop.to_torch(model)
    else:
        a, b = (torch.nn.Linear(width, width, dtype=torch.float64) for _ in range(2))
        b.weight = a.weight
        if tie_bias:
            b.bias = a.bias
        head = torch.nn.Linear(width, 3, dtype=torch.float64)
        twin = torch.nn.Sequential(a, torch.nn.Tanh(), b, torch.nn.Tanh(), head)
        model = interop.from_torch(twin)
    assert len(list(twin.parameters())) == len(model.parameters())
    X, y = rng.normal(size=(16, width)), rng.integers(0, 3, 16)
    ours = wxb.optim.SGD(model.parameters(), lr=0.5)
    theirs = torch.optim.SGD(twin.parameters(), lr=0.5)
    for _ in range(3):
        ours.zero_grad()
        CrossEntropyLoss()(model(X), y).backward()
        ours.step()
        theirs.zero_grad()
        torch.nn.functional.cross_entropy(twin(torch.from_numpy(X)), torch.from_numpy(y)).backward()
        theirs.step()
    with torch.no_grad():
        expected = twin(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-10, atol=1e-12)
