"""Tensor, graph inspection, modules, shape errors and dtype handling."""

from itertools import pairwise

import numpy as np
import pytest
from rounding import affine_terms, rounding_atol

import wxb
from wxb import ops
from wxb.nn import Dense, Dropout, ReLU, Sequential, Sigmoid, Softmax, Standardize


def test_shape_error_names_layer_equation_and_both_shapes(rng):
    model = Sequential(Dense(784, 256, name="hidden1"), ReLU(), Dense(256, 10))
    with pytest.raises(wxb.ShapeError) as caught:
        model(rng.normal(size=(3, 780)).astype(np.float32))
    assert str(caught.value) == (
        "Dense 'hidden1': Z = W·X + b needs X with 784 features (W is 256×784); got 780"
    )


def test_other_shape_errors_are_clear(rng):
    with pytest.raises(wxb.ShapeError, match=r"A \(m×n\) and B \(n×p\); got A 2×3 and B 2×3"):
        ops.matmul(rng.normal(size=(2, 3)), rng.normal(size=(2, 3)))
    with pytest.raises(wxb.ShapeError, match="do not broadcast"):
        ops.add(wxb.Tensor(rng.normal(size=(2, 3))), rng.normal(size=(4,)))
    with pytest.raises(wxb.ShapeError, match="needs a scalar loss"):
        wxb.Tensor(rng.normal(size=3), requires_grad=True).backward()
    with pytest.raises(wxb.ShapeError, match="output has 3 samples but target has 2"):
        wxb.nn.MSELoss()(wxb.Tensor(np.zeros((3, 1))), np.zeros((2, 1)))
    with pytest.raises(wxb.DataError, match="target holds class 4 but the model has 3 outputs"):
        wxb.nn.CrossEntropyLoss()(wxb.Tensor(np.zeros((2, 3))), np.array([0, 4]))
    with pytest.raises(wxb.ShapeError, match="missing"):
        Dense(2, 2).load_state_dict({"weight": np.zeros((2, 2))})


def test_dtype_mismatch_is_refused_and_models_cast(rng):
    layer = Dense(3, 2)
    assert layer.weight.dtype == np.float32
    with pytest.raises(wxb.DataError, match="X is float64 but W is float32"):
        layer(wxb.Tensor(rng.normal(size=(1, 3))))
    model = Sequential(Standardize(np.zeros(3), np.ones(3)), layer, Sigmoid()).to("float64")
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model.standardize1.mean.dtype == np.float64
    assert model(rng.normal(size=(2, 3))).dtype == np.float64
    with pytest.raises(wxb.ConfigError, match="dtype must be one of"):
        Dense(2, 2, dtype="int32")


def test_graph_records_seed_operations_with_shapes(rng):
    model = Sequential(Dense(4, 3), ReLU(), Dense(3, 2))
    X = rng.normal(size=(5, 4)).astype(np.float32)
    loss = wxb.nn.CrossEntropyLoss()(model(X), rng.integers(0, 2, size=5))
    nodes = wxb.graph(loss)
    ops_seen = [n.op for n in nodes]
    assert ops_seen.count("W·X") == 2 and ops_seen.count("+b") == 2
    assert ops_seen.count("parameter") == 4 and ops_seen.count("input") == 1
    assert nodes[-1].op == "cross_entropy" and nodes[-1].shape == ()
    by_op = {n.op: n for n in nodes}
    assert by_op["relu"].shape == (5, 3)
    for node in nodes:  # every edge points to an earlier node
        assert all(i < node.id for i in node.inputs)
    first_product = next(n for n in nodes if n.op == "W·X")
    shapes = sorted(nodes[i].shape for i in first_product.inputs)
    assert shapes == [(3, 4), (5, 4)]


def test_no_grad_records_nothing_and_leaf_gradients_accumulate(rng):
    layer = Dense(3, 2, dtype="float64")
    X = rng.normal(size=(4, 3))
    with wxb.no_grad():
        assert not wxb.is_grad_enabled()
        out = layer(X)
    assert wxb.is_grad_enabled()
    assert not out.requires_grad and out.inputs == ()
    wxb.nn.MSELoss()(layer(X), np.zeros((4, 2))).backward()
    once = layer.weight.grad.copy()
    wxb.nn.MSELoss()(layer(X), np.zeros((4, 2))).backward()
    np.testing.assert_allclose(layer.weight.grad, 2 * once)
    layer.zero_grad()
    assert layer.weight.grad is None


def test_shared_tensor_gradients_add_up(rng):
    a = wxb.Tensor(rng.normal(size=(3,)), requires_grad=True, dtype="float64")
    (a * a + a).sum().backward()  # d/da (a² + a) = 2a + 1
    np.testing.assert_allclose(a.grad, 2 * a.data + 1)


def test_deep_graph_does_not_hit_the_recursion_limit():
    x = wxb.Tensor(np.ones(2), requires_grad=True, dtype="float64")
    y = x
    for _ in range(5000):
        y = y * 1.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones(2))


def test_the_reverse_walk_takes_each_node_once_after_its_inputs(rng):
    from wxb.tensor import topological_order

    for _ in range(50):  # random graphs that reuse results (diamonds, shared inputs)
        nodes = [wxb.Tensor(rng.uniform(0.9, 1.1, size=3), requires_grad=True) for _ in range(3)]
        for _ in range(int(rng.integers(1, 13))):
            a, b = (nodes[int(i)] for i in rng.integers(len(nodes), size=2))
            nodes.append(a * b if rng.random() < 0.5 else a + b)
        root = nodes[-1].sum()
        order = topological_order(root)
        place = {id(t): k for k, t in enumerate(order)}
        assert len(place) == len(order) and order[-1] is root
        reachable, stack = set(), [root]
        while stack:
            t = stack.pop()
            if id(t) not in reachable:
                reachable.add(id(t))
                stack.extend(t.inputs)
        assert set(place) == reachable
        assert all(place[id(p)] < place[id(t)] for t in order for p in t.inputs)
        # and the gradients it gives are the derivatives, by the complex step: each
        # leaf entry moved by i·h, the recorded ops replayed, Im(root)/h
        root.backward()
        for leaf in nodes[:3]:
            if leaf.grad is None:  # not reached from the root
                assert id(leaf) not in reachable
                continue
            for entry in range(3):
                step = np.zeros(3, complex)
                step[entry] = 1e-30j
                derivative = _replayed(nodes, leaf, step).imag / 1e-30
                np.testing.assert_allclose(leaf.grad[entry], derivative, rtol=1e-12)


def _replayed(nodes, leaf, step):
    """Σ of the last node again, in complex numbers, with ``leaf`` moved by ``step``."""
    values = {id(n): n.data + (step if n is leaf else 0) for n in nodes[:3]}
    for n in nodes[3:]:
        a, b = (values[id(p)] for p in n.inputs)
        values[id(n)] = a * b if n.op == "⊙" else a + b
    return values[id(nodes[-1])].sum()


def test_module_api(rng):
    model = Sequential(Dense(4, 8, name="hidden"), ReLU(), Dropout(0.5), Dense(8, 3))
    assert [name for name, _ in model.named_parameters()] == [
        "hidden.weight",
        "hidden.bias",
        "dense1.weight",
        "dense1.bias",
    ]
    assert model.num_parameters() == 4 * 8 + 8 + 8 * 3 + 3
    assert model.hidden.weight.shape == (8, 4)  # W is (out_features, in_features)
    assert len(model) == 4 and isinstance(model[1], ReLU)
    X = rng.normal(size=(6, 4))
    model.eval()
    first = model(X).data  # dropout is off in eval mode
    assert np.array_equal(model(X).data, first)
    model.train()
    assert not np.array_equal(model(X).data, first)
    with pytest.raises(wxb.ConfigError, match="two layers are named 'x'"):
        Sequential(ReLU(name="x"), Sigmoid(name="x"))
    with pytest.raises(wxb.ConfigError, match="positive integer"):
        Dense(0, 3)
    with pytest.raises(wxb.ConfigError, match="init must be one of"):
        Dense(2, 3, init="zeros")


def test_initialisations_have_the_promised_spread():
    fan_in, fan_out = 400, 300
    for init, variance in (
        ("he_normal", 2 / fan_in),
        ("he_uniform", 2 / fan_in),
        ("glorot_normal", 2 / (fan_in + fan_out)),
        ("glorot_uniform", 2 / (fan_in + fan_out)),
    ):
        W = Dense(fan_in, fan_out, init=init, dtype="float64").weight.data
        assert abs(W.var() / variance - 1) < 0.05, init
        assert abs(W.mean()) < 0.01


def test_softmax_layer_rows_sum_to_one_even_for_huge_logits(rng):
    Z = rng.normal(scale=1000, size=(5, 4))
    A = Softmax()(Z).data
    # Each of the 4 probabilities is rounded once, and so is their sum: a few ulps.
    np.testing.assert_allclose(A.sum(axis=1), 1, rtol=4 * np.finfo(A.dtype).eps)
    assert np.isfinite(A).all()


def test_erf_matches_math_erf(rng):
    import math

    tiny = rng.normal(size=50) * 10.0 ** rng.integers(-300, -1, size=50)
    x = np.concatenate([rng.normal(scale=3, size=2000), tiny, [0.0, 2.5, -2.5, 30.0, -30.0]])
    expected = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(ops.erf(x), expected, rtol=1e-14, atol=1e-300)
    expected_c = np.array([math.erfc(v) for v in x])  # erfc keeps its precision where tiny
    np.testing.assert_allclose(ops.erfc(x), expected_c, rtol=1e-12, atol=1e-300)


def test_predict_validates_and_batches(rng):
    model = Sequential(Dense(3, 2, dtype="float64"))
    X = rng.normal(size=(10, 3))
    # a chunk of 1 row goes through another BLAS routine (gemv), whose sums of the 3 + 1
    # terms round otherwise: an output near 0 differs from the whole's by that alone
    layer = model.layers[0]
    terms = affine_terms(X, layer.weight.data.T, layer.bias.data)
    np.testing.assert_allclose(
        model.predict(X, batch_size=3), model.predict(X), rtol=1e-12, atol=rounding_atol(terms, 4)
    )
    with pytest.raises(wxb.DataError, match="X has nan at row 1, column 0"):
        model.predict([[1, 2, 3], [np.nan, 0, 0]])


def test_evaluating_and_gradients_set_aside_give_everything_back(rng):
    model = Sequential(Dense(3, 4), Dropout(0.5), Dense(4, 2))
    model[1].eval()  # modes may differ between modules: each gets its own back
    grads = [rng.normal(size=p.shape) for p in model.parameters()]
    for p, g in zip(model.parameters(), grads, strict=True):
        p.grad = g
    with model.evaluating(), model.gradients_set_aside() as apart:
        assert not any(m.training for _, m in model.named_modules())
        model(rng.normal(size=(5, 3))).sum().backward()  # into the store, not .grad
        assert all(p.grad is g for p, g in zip(model.parameters(), grads, strict=True))
        assert all(apart[p].shape == p.shape for p in model.parameters())
    assert [m.training for m in model] == [True, False, True] and model.training
    assert all(p.grad is g for p, g in zip(model.parameters(), grads, strict=True))


def test_evaluating_blocks_that_share_a_module_may_close_in_either_order():
    shared = Dropout(0.5)
    a, b = Sequential(Dense(3, 4), shared), Sequential(shared, Dense(4, 2))
    outer, inner = a.evaluating(), b.evaluating()
    outer.__enter__()
    inner.__enter__()
    with a.evaluating():  # nested in the same model's block
        assert not a.training and not shared.training
    outer.__exit__(None, None, None)  # before the block opened after it
    assert a.training and a[0].training  # a's own modules back in training mode
    assert not shared.training and not b.training and not b[1].training  # b's still held
    inner.__exit__(None, None, None)
    assert all(m.training for model in (a, b) for m in model.modules())


@pytest.mark.parametrize("fault", ["shape", "dtype"])
def test_model_load_state_dict_refused_changes_nothing(rng, fault):
    """A state with one bad entry is refused before anything is copied (the entries
    before it were already written, leaving a model half one state, half the other)."""
    widths = [int(w) for w in rng.integers(2, 6, size=4)]
    model = Sequential(
        *(Dense(a, b) for a, b in pairwise(widths)),
        Standardize(rng.normal(size=widths[-1]), rng.uniform(1, 2, size=widths[-1])),
    )
    before = model.state_dict()
    state = {name: array + 1 for name, array in before.items()}
    names = list(state)
    bad = names[int(rng.integers(1, len(names)))]  # not the first: some come before it
    if fault == "shape":
        state[bad] = np.zeros(state[bad].size + 1)
    else:
        state[bad] = state[bad].astype(np.complex64)
    with pytest.raises((wxb.ShapeError, wxb.DataError), match=bad):
        model.load_state_dict(state)
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, before[name], err_msg=name)


def test_load_state_dict_into_a_scalar_parameter_made_a_numpy_scalar(rng):
    """p.data = p.data * 2 on a 0-d parameter leaves a NumPy scalar; loading a state
    still writes every entry (np.copyto failed midway, after others were written)."""
    gain = wxb.nn.Parameter(np.array(1.0))
    model = Sequential(Dense(3, 2))
    model.gain = gain
    gain.data = gain.data * 2
    state = {k: np.asarray(v) + rng.normal() for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, state[name], err_msg=name)
    assert isinstance(gain.data, np.ndarray)


# -- the Module bookkeeping, as torch.nn.Module keeps it ------------------------------
def test_a_buffer_over_a_parameter_or_module_is_refused(rng):
    """It was accepted: forward used the buffer, the optimiser the dead parameter, and
    load_state_dict wrote the parameter; PyTorch refuses the name."""
    model = Sequential(Dense(3, 2, seed=rng))
    dense = model.dense1
    with pytest.raises(wxb.ConfigError, match="'weight' is already a parameter"):
        dense.register_buffer("weight", rng.normal(size=(2, 3)))
    with pytest.raises(wxb.ConfigError, match="'dense1' is already a sub-module"):
        model.register_buffer("dense1", np.zeros(2))
    with pytest.raises(wxb.ConfigError, match="NumPy array, a wxb Tensor or None; got a list"):
        dense.register_buffer("scale", [1.0, 2.0])
    assert [name for name, _ in model.named_parameters()] == ["dense1.weight", "dense1.bias"]
    assert not list(model.named_buffers())


def test_a_layer_set_to_none_and_back_keeps_its_place(rng):
    model = Sequential(Dense(3, 4, seed=rng), wxb.nn.Tanh(), Dense(4, 2, seed=rng))
    X = rng.normal(size=(5, 3)).astype(np.float32)
    before = model.predict(X)
    tanh = model.tanh1
    model.tanh1 = None
    assert list(model._modules) == ["dense1", "dense2"]
    model.tanh1 = tanh  # it ran after dense2: another function, silently
    assert list(model._modules) == ["dense1", "tanh1", "dense2"]
    np.testing.assert_array_equal(model.predict(X), before)
    dense = model.dense1
    dense.weight, dense.bias = None, None
    dense.bias = wxb.nn.Parameter(np.zeros(4, np.float32))
    dense.weight = wxb.nn.Parameter(np.ones((4, 3), np.float32))
    assert list(dense._parameters) == ["weight", "bias"]  # the optimiser's order, too


def test_a_buffer_set_to_none_and_back_is_a_buffer_again_as_in_pytorch(rng):
    """A buffer set to None and then given an array became a plain attribute: no longer
    in state_dict() (a saved model lost it), nor cast by .to(); PyTorch keeps the name a
    buffer's. A parameter set to None took a plain array (a bias that never trained);
    PyTorch refuses it."""
    X = rng.normal(size=(20, 3))
    std = Standardize.fit(X, dtype="float32")
    mean = rng.normal(size=3).astype(np.float32)
    std.mean = None
    assert list(std.state_dict()) == ["scale"]
    std.mean = mean
    assert list(std.state_dict()) == ["mean", "scale"]  # back in its place
    std.double()
    assert std.mean.dtype == np.float64
    np.testing.assert_array_equal(std.state_dict()["mean"], mean.astype(np.float64))
    Z = rng.normal(size=(4, 3))
    expected = (Z - mean.astype(np.float64)) / std.scale
    np.testing.assert_allclose(std(Z).data, expected, rtol=1e-12, atol=0)
    dense = Dense(3, 2, seed=rng)
    dense.bias = None
    with pytest.raises(wxb.ConfigError, match="bias is a parameter"):
        dense.bias = np.ones(2, np.float32)
    assert dense.bias is None and [n for n, _ in dense.named_parameters()] == ["weight"]
    del dense.bias  # the name is free: any kind again, as in PyTorch
    dense.bias = np.ones(2, np.float32)
    assert [n for n, _ in dense.named_parameters()] == ["weight"]


def test_a_cast_keeps_integer_buffers_integer(rng):
    """An index buffer became float64 (the next forward's indexing failed), a count
    float32 (exact only to 2^24); PyTorch casts floating point only."""
    model = Sequential(Dense(3, 2, seed=rng))
    order = rng.permutation(5)
    model.dense1.register_buffer("order", order)
    model.dense1.register_buffer("count", np.array([2**24 + 1]))
    model.dense1.register_buffer("scale", np.ones(2, np.float32))
    model.double()
    state = model.state_dict()
    assert state["dense1.order"].dtype == order.dtype
    np.testing.assert_array_equal(state["dense1.order"], order)
    assert state["dense1.count"][0] == 2**24 + 1
    assert state["dense1.scale"].dtype == np.float64
    assert model.dtype == np.float64


def test_train_goes_through_each_childs_own_train(rng):
    """A block that overrides train() to keep its Dropout off (a PyTorch habit) was
    passed by: the parent set every flag itself."""

    class Frozen(wxb.nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = Dropout(0.5)
            self.dense = Dense(3, 3, seed=rng)

        def train(self, mode=True):
            super().train(False)
            return self

        def forward(self, x):
            return self.dense(self.drop(x))

    model = Sequential(Frozen(), Dropout(0.5))
    model.train()
    assert model.training and model.dropout1.training
    assert not model.frozen1.training and not model.frozen1.drop.training
    X = rng.normal(size=(4, 3))
    with wxb.no_grad():
        first = model.frozen1(X).data
        np.testing.assert_array_equal(model.frozen1(X).data, first)  # no mask drawn


def test_structure_versions_of_two_processes_do_not_meet():
    """Caches keyed by the structure version are pickled with a model: the count began
    at 0 in each process, so a cache from another one could pass for current (a Dropout
    added after unpickling then stayed on in predict)."""
    import subprocess
    import sys

    code = "import wxb.nn.module as m; print(m.structure_version())"
    run = [sys.executable, "-c", code]
    versions = [subprocess.run(run, capture_output=True, text=True, check=True) for _ in "ab"]
    assert int(versions[0].stdout) != int(versions[1].stdout)


def test_indices_given_after_the_input_stay_whole_numbers(rng):
    """A second positional argument of class labels or column indices became floats of
    the model's dtype (indexing then failed; an id above 2^24 came back rounded in a
    float32 model); a tuple of Tensors that require grad was refused as NumPy."""

    class Pick(wxb.nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = Dense(3, 4, seed=rng)

        def forward(self, x, columns, ids=None):
            h = self.dense(x)
            return h[:, columns], columns, ids

    model = Pick()
    X = rng.normal(size=(5, 3)).astype(np.float32)
    full = model.dense(X).data
    for columns in ([0, 2], np.array([3, 1]), (1,)):
        out, seen, _ = model(X, columns)
        np.testing.assert_array_equal(out.data, full[:, list(columns)])
        assert np.asarray(seen).dtype.kind == "i"
    big = np.array([2**24 + 1, 3])
    _, _, ids = model(X, [0], big)
    np.testing.assert_array_equal(ids, big)

    class Pair(wxb.nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = Dense(3, 2, seed=rng)

        def forward(self, pair, scale):
            a, b = pair
            return (self.dense(a) + self.dense(b)) * scale

    first = wxb.Tensor(X, requires_grad=True)
    out = Pair()((first, X * 2), rng.normal(size=(5, 1)).astype(np.float32))
    out.sum().backward()
    assert first.grad is not None and out.dtype == np.float32


def test_a_module_list_registers_its_modules_and_a_plain_list_is_refused(rng):
    """A PyTorch user's ModuleList had no wxb twin, and a plain list of layers on a
    module was taken silently: its parameters neither trained nor saved."""
    torch = pytest.importorskip("torch")
    from wxb.nn import ModuleList, Tanh

    class Tower(wxb.nn.Module):
        def __init__(self, widths):
            super().__init__()
            self.blocks = ModuleList(
                Dense(a, b, seed=rng, dtype="float64") for a, b in pairwise(widths)
            )
            self.act = Tanh()

        def forward(self, x):
            for block in self.blocks[:-1]:
                x = self.act(block(x))
            return self.blocks[-1](x)

    widths = [int(w) for w in rng.integers(1, 6, size=int(rng.integers(2, 5)))]
    model = Tower(widths)
    twin = torch.nn.ModuleList(
        torch.nn.Linear(a, b, dtype=torch.float64) for a, b in pairwise(widths)
    )
    for ours, theirs in zip(model.blocks, twin, strict=True):
        theirs.weight.data = torch.tensor(ours.weight.data)
        theirs.bias.data = torch.tensor(ours.bias.data)
    assert list(model.state_dict()) == [f"blocks.{k}" for k in twin.state_dict()]
    X = rng.normal(size=(4, widths[0]))
    opt = wxb.optim.SGD(model.parameters(), lr=0.1)
    topt = torch.optim.SGD(twin.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        (model(X) ** 2).sum().backward()
        opt.step()
        topt.zero_grad()
        h = torch.tensor(X)
        for layer in twin[:-1]:
            h = torch.tanh(layer(h))
        (twin[-1](h) ** 2).sum().backward()
        topt.step()
    for ours, theirs in zip(model.blocks, twin, strict=True):
        want = theirs.weight.detach().numpy()
        # an entry the steps bring near 0 keeps the roundings of the O(|W|) values it
        # came from: compared at the tensor's scale, as float64's ~1e-16 allows
        scale = np.abs(want).max()
        np.testing.assert_allclose(ours.weight.data, want, rtol=1e-12, atol=1e-12 * scale)
    blocks = model.blocks
    extra = Dense(widths[-1], 2, seed=rng, dtype="float64")
    blocks.append(extra)
    assert blocks[-1] is extra and len(blocks) == len(widths)
    blocks.insert(0, Dense(widths[0], widths[0], seed=rng, dtype="float64"))
    assert list(blocks._modules) == [str(i) for i in range(len(widths) + 1)]
    del blocks[0]
    assert blocks[-1] is extra and len(blocks) == len(widths)
    with pytest.raises(wxb.ConfigError, match="has no forward"):
        blocks(X)
    with pytest.raises(wxb.ConfigError, match=r"not a wxb\.nn\.Module"):
        blocks.append("dense")
    for plain in ([Dense(2, 2)], (Dense(2, 2),), {"a": Dense(2, 2)}):
        with pytest.raises(wxb.ConfigError, match=r"of modules is not registered.*ModuleList"):
            model.more = plain
    model.sizes = [1, 2]  # a list of other things stays a plain attribute


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_standardize_refuses_statistics_its_dtype_cannot_standardize_with(rng, dtype):
    """A spread below 1/max of the dtype gave X·(1/scale) = ±inf, and values whose
    variance overflows gave scale inf and every output 0, both without a word."""
    if dtype == "float32":  # (in float64 such a spread's variance underflows: scale 1)
        tiny = float(np.finfo(dtype).smallest_normal) / 8
        spread = np.array([[0.0, 1.0], [tiny, 2.0]], dtype)
        with pytest.raises(wxb.ConfigError, match=r"feature 0: .* beyond what"):
            Standardize.fit(spread)
    else:
        huge = np.array([[1.0, -1.0], [2.0, 1.0]]) * np.array([1.0, 1e200])
        with pytest.raises(wxb.ConfigError, match=r"feature 1: .* beyond what"):
            Standardize.fit(huge)
    with pytest.raises(wxb.ConfigError, match="NaN"):
        Standardize(np.array([np.nan, 0.0]), np.ones(2), dtype=dtype)
    fine = rng.normal(size=(20, 3)).astype(dtype) * 1e-3
    out = Standardize.fit(fine).predict(fine)
    np.testing.assert_allclose(out.std(axis=0), 1, rtol=1e-3)


def test_a_value_beyond_float32_is_named_not_called_inf(rng):
    """1e39 given to a float32 model was reported as 'inf' (the cast's result), with a
    NumPy overflow warning: the data held no inf."""
    import warnings

    X = rng.normal(size=(int(rng.integers(2, 9)), 3))
    row, col = int(rng.integers(0, len(X))), int(rng.integers(0, 3))
    X[row, col] = float(rng.choice([-1, 1])) * 1e39
    model = Sequential(Dense(3, 2, seed=rng))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        y = np.zeros(len(X), int)
        for call in (lambda: model.predict(X), lambda: wxb.fit(model, X, y, verbose=False)):
            with pytest.raises(
                wxb.DataError,
                match=rf"X has -?1e\+39 at row {row}, column {col}: beyond float32's range",
            ):
                call()
    X[row, col] = np.inf
    with pytest.raises(wxb.DataError, match=rf"X has -?inf at row {row}, column {col}"):
        model.predict(X)
