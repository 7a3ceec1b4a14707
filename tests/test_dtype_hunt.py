"""Dtypes end to end, against PyTorch at the matching dtype: a float64 model computes in
float64, a float32 one casts its inputs to float32 (documented) and loses no more."""

import numpy as np
import pytest

from wxb import nn
from wxb.errors import DataError
from wxb.tensor import Tensor, no_grad

torch = pytest.importorskip("torch")
F = torch.nn.functional


@pytest.fixture
def seeded(seeded):  # (conftest's, so WXB_TEST_SEED replays a failure)
    return seeded.rng, seeded.msg("")


@pytest.mark.parametrize("head", ["softmax", "log_softmax", "tanh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_model_without_parameters_computes_in_its_inputs_dtype(seeded, head, dtype):
    rng, seed = seeded
    layer = {"softmax": nn.Softmax, "log_softmax": nn.LogSoftmax, "tanh": nn.Tanh}[head]
    torch_layer = {
        "softmax": lambda: torch.nn.Softmax(dim=1),
        "log_softmax": lambda: torch.nn.LogSoftmax(dim=1),
        "tanh": torch.nn.Tanh,
    }[head]()
    rows = int(rng.integers(3, 12))
    x = (rng.standard_normal((rows, int(rng.integers(2, 6)))) * 5).astype(dtype)
    expected = torch_layer(torch.from_numpy(x)).numpy()
    for model in (nn.Sequential(layer()), nn.Sequential(layer()).double()):
        for out in (
            model.predict(x),
            model.predict(x, batch_size=2),
            model.predict(Tensor(x)),
            model(x).data,
            model(Tensor(x)).data,
        ):
            assert out.dtype == expected.dtype, seed
            eps = np.finfo(dtype).eps  # rounding of the input's dtype, not float32's in float64
            scale = 8 * eps * max(1.0, float(np.abs(x).max()))
            np.testing.assert_allclose(out, expected, rtol=8 * eps, atol=scale, err_msg=seed)
        with no_grad():
            assert model(x).dtype == expected.dtype, seed


LOSSES = {
    "mse": (nn.MSELoss, None),
    "l1": (nn.L1Loss, F.l1_loss),
    "smooth_l1": (nn.SmoothL1Loss, F.smooth_l1_loss),
    "huber": (nn.HuberLoss, F.huber_loss),
    "bce_with_logits": (nn.BCEWithLogitsLoss, F.binary_cross_entropy_with_logits),
    "cross_entropy": (nn.CrossEntropyLoss, F.cross_entropy),
}


def _torch_loss(name, out, target, reduction):
    if name == "mse":  # the seed's ½‖ŷ − y‖² a sample (losses.MSELoss)
        per = 0.5 * ((out - target) ** 2).sum(1)
        return {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
    return LOSSES[name][1](out, target, reduction=reduction)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("form", ["array", "tensor", "big_endian"])
def test_float32_outputs_against_float64_targets_are_compared_in_float64(
    seeded, name, reduction, form
):
    """PyTorch promotes: loss(float32 ŷ, float64 y) is float64, ∂L/∂ŷ float32. wxb rounded
    the targets to float32 first: targets near 1e4 within 1e-3 of the outputs gave L = 0
    and no gradient at all."""
    rng, seed = seeded
    rows, width = int(rng.integers(2, 20)), int(rng.integers(2, 5))
    if name == "bce_with_logits":
        y = rng.random((rows, width))
        outputs = (y + rng.standard_normal(y.shape)).astype(np.float32)
    elif name == "cross_entropy":  # probabilities whose differences float32 cannot hold
        y = np.full((rows, width), 1 / width) + rng.standard_normal((rows, width)) * 1e-10
        y /= y.sum(axis=1, keepdims=True)
        outputs = rng.standard_normal((rows, width)).astype(np.float32)
    else:
        y = 1e4 + rng.standard_normal((rows, width)) * 1e-3
        outputs = (y + rng.standard_normal(y.shape) * 1e-4).astype(np.float32)
    o = Tensor(outputs, requires_grad=True)
    given = {"array": y, "tensor": Tensor(y), "big_endian": y.astype(">f8")}[form]
    loss = LOSSES[name][0](reduction=reduction)(o, given)
    (loss.sum() if reduction == "none" else loss).backward()
    to = torch.tensor(outputs, requires_grad=True)
    # in float64, as PyTorch's promotion computes it (its huber_loss alone keeps float32)
    expected = _torch_loss(name, to.double(), torch.from_numpy(y), reduction)
    (expected.sum() if reduction == "none" else expected).backward()
    assert loss.dtype == np.float64 and o.grad.dtype == np.float32, seed
    np.testing.assert_allclose(loss.data, expected.detach().numpy(), rtol=1e-12, err_msg=seed)
    np.testing.assert_allclose(o.grad, to.grad.numpy(), rtol=1e-6, atol=1e-12, err_msg=seed)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_evaluate_scores_a_model_without_parameters_in_its_inputs_dtype(seeded, dtype):
    """evaluate(Sequential(LogSoftmax()), x64, classes, 'nll') cast the rows to float32
    first: the loss was float32's log-softmax, off PyTorch's float64 figure by ~1e-9."""
    import wxb

    rng, seed = seeded
    rows, classes = int(rng.integers(20, 80)), int(rng.integers(2, 6))
    x = (rng.standard_normal((rows, classes)) * 4).astype(dtype)
    labels = rng.integers(0, classes, rows)
    expected = F.nll_loss(torch.log_softmax(torch.from_numpy(x), 1), torch.from_numpy(labels))
    for model in (nn.Sequential(nn.LogSoftmax()), nn.Sequential(nn.LogSoftmax()).double()):
        got = wxb.evaluate(model, x, labels, loss="nll")["loss"]
        tol = 1e-12 if dtype == np.float64 else 1e-6
        assert abs(got - expected.item()) <= tol * abs(expected.item()), seed


@pytest.mark.parametrize("form", ["array", "column", "int64", "series"])
def test_fit_says_when_float32_coarsens_the_targets_as_it_says_of_features(seeded, form):
    """Regression targets near 1.7e9 (a timestamp) spread by tens became a handful of
    distinct float32 values, trained on without a word (fit warns of such features)."""
    import warnings

    import pandas as pd

    import wxb

    rng, seed = seeded
    rows = int(rng.integers(200, 600))
    X = rng.standard_normal((rows, 2))
    offset, spread = float(rng.uniform(1e9, 2e9)), float(rng.uniform(5, 50))
    y = offset + X[:, 0] * spread
    coarse = np.unique(y.astype(np.float32)).size < rows / 4  # the loss, measured
    assert coarse, seed
    given = {
        "array": y,
        "column": y[:, None],
        "int64": np.round(y).astype(np.int64),
        "series": pd.Series(y),
    }[form]
    for dtype, warned in (("float32", True), ("float64", False)):
        model = nn.Sequential(nn.Linear(2, 1)).to(dtype)
        model[0].bias.data[:] = offset
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            wxb.fit(model, X, given, loss="mse", epochs=1, lr=1e-9, verbose=False)
        said = [w for w in caught if "target" in str(w.message) and "coarsened" in str(w.message)]
        assert bool(said) == warned, (seed, dtype, [str(w.message) for w in caught])
    # targets float32 holds finely: nothing said
    model = nn.Sequential(nn.Linear(2, 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wxb.fit(model, X, y - offset, loss="mse", epochs=1, verbose=False)
    assert not [w for w in caught if "coarsened" in str(w.message)], seed


class _Embedding(nn.Module):
    """A forward of one's own that looks rows up by id, as PyTorch's nn.Embedding."""

    def __init__(self, table):
        super().__init__()
        self.E = nn.Parameter(table)

    def forward(self, ids):
        return self.E[np.asarray(getattr(ids, "data", ids)).reshape(-1)]


@pytest.mark.parametrize("form", ["column", "flat", "list", "uint8", "int32"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_hands_ids_to_a_forward_of_ones_own_as_the_call_does(seeded, form, dtype):
    """model(ids) handed the whole numbers over as they are (documented), but
    model.predict(ids) cast them to floats first: the forward's lookup failed with
    NumPy's 'arrays used as indices must be of integer type'."""
    rng, seed = seeded
    table = rng.standard_normal((int(rng.integers(5, 60)), 3)).astype(dtype)
    model = _Embedding(table)
    count = int(rng.integers(3, 40))
    if form == "uint8" and count == len(table):  # as many uint8 ids as rows: torch's mask
        count += 1  # reading or NumPy's positions, refused as ambiguous (test_tensor56)
    ids = rng.integers(0, len(table), (count, 1))
    given = {
        "column": ids,
        "flat": ids.ravel(),
        "list": ids.tolist(),
        "uint8": ids.astype(np.uint8),
        "int32": ids.astype(np.int32),
    }[form]
    expected = table[ids.ravel()]  # NumPy's own lookup
    for batch_size in (4096, 2):
        got = model.predict(given, batch_size=batch_size)
        assert got.dtype == dtype, seed
        np.testing.assert_array_equal(got, expected, err_msg=seed)
    np.testing.assert_array_equal(model(given).data, expected, err_msg=seed)


def _stock_model(rng, width, hidden):
    return nn.Sequential(
        nn.Standardize(rng.standard_normal(width), rng.uniform(0.5, 2, width)),
        nn.Linear(width, hidden),
        nn.BatchNorm1d(hidden),
        nn.Tanh(),
        nn.LayerNorm(hidden),
        nn.Linear(hidden, 3),
    )


@pytest.mark.parametrize("into", ["float32", "float64"])
def test_load_state_dict_casts_as_torch_copies_and_refuses_what_float32_cannot_hold(seeded, into):
    """A float64 state loads into a float32 model as torch's copy_ casts it (and the
    reverse); a float64 value past float32's range became inf (with NumPy's overflow
    warning only) and the model predicted inf: now refused by name, nothing loaded."""
    rng, seed = seeded
    width, hidden = int(rng.integers(2, 6)), int(rng.integers(2, 9))
    source = _stock_model(rng, width, hidden).to("float64" if into == "float32" else "float32")
    for p in source.parameters():
        p.data[...] = rng.standard_normal(p.data.shape) * 10
    model = _stock_model(rng, width, hidden).to(into)
    before = model.state_dict()
    state = source.state_dict()
    model.load_state_dict(state)
    tdtype = torch.float32 if into == "float32" else torch.float64
    for name, array in model.state_dict().items():
        expected = torch.zeros(array.shape, dtype=torch.from_numpy(before[name]).dtype)
        expected.copy_(torch.from_numpy(state[name]))  # PyTorch's cast
        assert array.dtype == before[name].dtype, (seed, name)
        np.testing.assert_array_equal(array, expected.numpy(), err_msg=f"{seed} {name}")
        if array.dtype.kind == "f":
            assert expected.dtype == tdtype
    if into == "float32":
        kept = model.state_dict()
        name = "dense2.weight"
        state[name].flat[int(rng.integers(0, state[name].size))] = (
            -float(rng.uniform(3.5, 9)) * 1e38
        )
        with pytest.raises(DataError, match=f"{name}: .* beyond float32's range"):
            model.load_state_dict(state)
        for key, array in model.state_dict().items():
            np.testing.assert_array_equal(array, kept[key], err_msg=f"{seed} {key}")


@pytest.mark.parametrize("made", ["init", "list"])
def test_a_standardize_made_float32_then_cast_to_float64_uses_the_statistics_given(seeded, made):
    """Standardize(X.mean(0), X.std(0)) holds float32 by default; .double() (the advice
    fit gives for coarsened features) then standardized with the float32-rounded mean:
    a mean of 12345.678 off by 2.7e-4, a scale of 0.01, x̂ off by 0.027 in a float64
    model. Against PyTorch's (x − μ)/σ·W + b in float64, to 1e-12."""
    rng, seed = seeded
    width = int(rng.integers(1, 5))
    mu = rng.uniform(1e3, 1e5, width)
    sigma = rng.uniform(0.01, 1, width)
    X = mu + rng.standard_normal((int(rng.integers(5, 30)), width)) * sigma
    mean, scale = X.mean(axis=0), X.std(axis=0)
    layer = {
        "init": lambda: nn.Standardize(mean, scale),
        "list": lambda: nn.Standardize(mean.tolist(), scale.tolist()),
    }[made]()
    assert layer.mean.dtype == np.float32, seed
    model = nn.Sequential(layer, nn.Linear(width, 2)).double()
    W, b = model[1].weight.data, model[1].bias.data
    x = torch.from_numpy(X)
    expected = ((x - torch.from_numpy(mean)) / torch.from_numpy(scale)) @ torch.from_numpy(W).T
    expected = (expected + torch.from_numpy(b)).numpy()
    got = model.predict(X)
    assert got.dtype == np.float64, seed
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10, err_msg=seed)
    np.testing.assert_array_equal(model[0].mean, mean, err_msg=seed)
    # and back and forth: float32 rounds them, float64 takes the given values again
    model.float()
    np.testing.assert_array_equal(model[0].mean, mean.astype(np.float32), err_msg=seed)
    model.double()
    np.testing.assert_array_equal(model[0].mean, mean, err_msg=seed)


def test_pytorchs_half_bfloat16_and_type_casts_are_answered_as_to_answers_them(seeded):
    """model.half() / model.bfloat16() were Python's AttributeError; model.type(dtype),
    PyTorch's cast, too. Now: .to()'s one-line refusal of float16, and .to(dtype)."""
    from wxb.errors import ConfigError

    rng, seed = seeded
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    x = rng.standard_normal((4, 3))
    for cast, name in ((model.half, "float16"), (model.bfloat16, "bfloat16")):
        with pytest.raises(ConfigError, match=f"got '{name}'"):
            cast()
    assert model.dtype == np.float32
    assert model.type(torch.float64) is model and model.dtype == np.float64, seed
    assert model[1].running_mean.dtype == np.float64
    assert model[1].num_batches_tracked.dtype == np.int64
    assert model.predict(x).dtype == np.float64
    assert model.type("float32").dtype == np.float32


class _OffsetEmbedding(nn.Module):
    """Rows looked up by ids past 2**24 (an id space with an offset), cast back to int
    as the Tensor-index error advises."""

    offset = 2**30

    def __init__(self, table):
        super().__init__()
        self.E = nn.Parameter(table)

    def forward(self, ids):
        ids = np.asarray(getattr(ids, "data", ids)).astype(np.int64)[:, 0]
        return self.E[ids - self.offset]


def test_fit_and_evaluate_hand_ids_to_a_forward_of_ones_own_whole(seeded):
    """fit and evaluate cast the ids to float32 first (model(ids) and predict do not):
    ids near 2**30 merged in steps of 128, the lookup read other rows, and training
    went elsewhere than PyTorch's loop over the same ids (weights 0.3 apart), without a
    word. Against torch: E[ids − offset], cross-entropy, SGD, the same batches."""
    import wxb

    rng, seed = seeded
    rows, classes, batch = int(rng.integers(20, 60)), int(rng.integers(2, 5)), 8
    table = rng.standard_normal((int(rng.integers(30, 200)), classes)).astype(np.float32)
    ids = _OffsetEmbedding.offset + rng.integers(0, len(table), (rows, 1))
    y = rng.integers(0, classes, rows)
    model = _OffsetEmbedding(table.copy())
    wxb.fit(model, ids, y, loss="cross_entropy", optimizer="sgd", lr=0.5, epochs=2,
            batch_size=batch, shuffle=False, validation_split=0, verbose=False)  # fmt: skip
    E = torch.tensor(table.copy(), requires_grad=True)
    opt = torch.optim.SGD([E], lr=0.5)
    index = torch.from_numpy(ids[:, 0] - _OffsetEmbedding.offset)
    for _ in range(2):
        for start in range(0, rows, batch):
            opt.zero_grad()
            part = slice(start, start + batch)
            F.cross_entropy(E[index[part]], torch.from_numpy(y[part])).backward()
            opt.step()
    np.testing.assert_allclose(model.E.data, E.detach().numpy(), atol=1e-5, err_msg=seed)
    expected = F.cross_entropy(E[index], torch.from_numpy(y)).item()
    assert wxb.evaluate(model, ids, y)["loss"] == pytest.approx(expected, rel=1e-5), seed
    np.testing.assert_allclose(model.predict(ids), E[index].detach().numpy(), atol=1e-6)


@pytest.mark.parametrize("loss", ["mse", "own"])
def test_fit_names_a_target_float32_cannot_hold_as_it_names_such_a_feature(seeded, loss):
    """A float64 target of 1e39 for a float32 model was reported as 'y has inf at row
    …; remove or fill non-finite values first': the user's value was finite, and the
    cast made it inf. Named now as as_features names such a feature."""
    import wxb

    rng, seed = seeded
    rows = int(rng.integers(3, 20))
    X = rng.standard_normal((rows, 2))
    y = rng.standard_normal(rows)
    at = int(rng.integers(0, rows))
    y[at] = float(rng.choice([-1, 1]) * rng.uniform(3.5, 100)) * 1e38
    given = (lambda o, t: ((o - t) ** 2).mean()) if loss == "own" else loss
    with pytest.raises(DataError, match=rf"y has .* at \[{at}, 0\]: beyond float32's range"):
        wxb.fit(nn.Sequential(nn.Linear(2, 1)), X, y, loss=given, epochs=1, verbose=False)
        pytest.fail(seed)


def _nothing():
    import contextlib

    return contextlib.nullcontext()


def _random_stack(rng, width):
    layers, last = [nn.Standardize(rng.standard_normal(width), rng.uniform(0.5, 2, width))], width
    for _ in range(int(rng.integers(1, 4))):
        out = int(rng.integers(2, 7))
        layers.append(nn.Linear(last, out))
        choice = int(rng.integers(0, 4))
        if choice == 1:
            layers.append(nn.BatchNorm1d(out))
        elif choice == 2:
            layers.append(nn.LayerNorm(out))
        act = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.ELU, nn.SiLU, nn.Softplus)
        layers.append(act[int(rng.integers(0, len(act)))]())
        if rng.random() < 0.3:
            layers.append(nn.Dropout(0.2))
        last = out
    layers.append(nn.Linear(last, 3))
    if rng.random() < 0.5:
        layers.append(nn.LogSoftmax() if rng.random() < 0.5 else nn.Softmax())
    return nn.Sequential(*layers)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_path_of_a_random_stack_computes_in_the_models_dtype(seeded, dtype, tmp_path):
    """A float64 model computes in float64 on every path (to ~1e-12 of its PyTorch twin),
    a float32 one in float32 whatever the input's dtype; train-mode BatchNorm running
    statistics stay in the model's dtype; files keep it."""
    import wxb
    from wxb.interop import to_torch

    rng, seed = seeded
    width = int(rng.integers(2, 6))
    model = _random_stack(rng, width).to(dtype)
    X = rng.standard_normal((int(rng.integers(6, 30)), width)) * 2
    labels = rng.integers(0, 3, len(X))
    with pytest.warns(UserWarning) if isinstance(model[-1], nn.Softmax) else _nothing():
        wxb.fit(model, X, labels, epochs=1, batch_size=len(X), verbose=False)
    for name, array in model.state_dict().items():
        assert array.dtype == (np.int64 if name.endswith("tracked") else dtype), (seed, name)
    twin = to_torch(model).eval()
    tol = 1e-10 if dtype == "float64" else 2e-4
    for given in (X, X.astype(np.float32), X.astype(np.float16), X.tolist()):
        with torch.no_grad():  # the rows as the model's dtype holds them
            reference = twin(torch.from_numpy(np.asarray(given).astype(dtype))).numpy()
        for out in (model.predict(given), model.predict(given, batch_size=3)):
            assert out.dtype == dtype, seed
            np.testing.assert_allclose(out, reference, rtol=tol, atol=tol, err_msg=seed)
    with no_grad():
        assert model.eval()(X).dtype == dtype
    model.train()
    path = tmp_path / "m.safetensors"
    wxb.save(model, path)
    loaded = wxb.load(path)
    assert loaded.dtype == dtype, seed
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X), err_msg=seed)
