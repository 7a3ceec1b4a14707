"""Small leftovers a PyTorch or Keras user meets: ``wxb.save(model, "m.onnx")`` (and
``wxb.onnx.export(model, "m.safetensors")``) writing one format under the other's name;
``model(loader)``'s AttributeError on ``.dtype``; torch.nn's layers wxb lacks
(``nn.Conv2d``, ``nn.LSTM``, ``nn.Embedding``) without a hint; a missing ``--history``
file in Python's words; and one-operand ufuncs (``np.exp(labels)``) and ``mean()`` of
wxb's integer arrays in NumPy's float64 where torch's are float32.

Inputs are drawn fresh on every run (``WXB_TEST_SEED=<seed>`` replays one)."""

from __future__ import annotations

import numpy as np
import pytest
from cli_run import run

import wxb
from wxb.errors import ConfigError, DataError
from wxb.nn import Dense, Module, ReLU, Sequential
from wxb.tensor import IndexArray, Tensor

torch = pytest.importorskip("torch")


def _model(rng, n_in=4, n_out=3, dtype="float32"):
    model = Sequential(Dense(n_in, 5, dtype=dtype), ReLU(), Dense(5, n_out, dtype=dtype))
    with wxb.no_grad():
        for p in model.parameters():
            p.copy_(rng.standard_normal(p.shape))
    return model


# -- 1. a model file's name says its format ------------------------------------------------
@pytest.mark.parametrize("name", ["m.onnx", "M.ONNX"])
def test_save_refuses_an_onnx_name_naming_the_export(tmp_path, rng, name):
    """wxb.save(model, "m.onnx") wrote safetensors bytes under an ONNX name, which
    onnxruntime refused long after (the CLI's wxb train -o m.onnx is refused)."""
    model = _model(rng)
    path = tmp_path / name
    with pytest.raises(ConfigError) as caught:
        wxb.save(model, path)
    message = str(caught.value)
    assert "\n" not in message and f"wxb.onnx.export(model, {str(path)!r})" in message, message
    assert ".safetensors" in message, message
    with pytest.raises(ConfigError, match=r"\.safetensors"):  # a checkpoint: no export named
        wxb.save({"model": model.state_dict(), "epoch": 3}, path)
    assert not path.exists() and list(tmp_path.iterdir()) == []
    # the names that say safetensors still save, and the model loads back the same
    X = rng.standard_normal((6, 4)).astype(np.float32)
    wxb.save(model, tmp_path / "m.safetensors")
    np.testing.assert_array_equal(
        wxb.load(tmp_path / "m.safetensors")(X).data, model.eval()(X).data
    )


def test_onnx_export_refuses_a_safetensors_name(tmp_path, rng):
    """The other way round: ONNX under wxb's model name, which wxb.load then refused."""
    pytest.importorskip("onnx")
    import wxb.onnx

    model = _model(rng)
    path = tmp_path / "m.safetensors"
    with pytest.raises(ConfigError, match=r"name the file \.onnx \(wxb\.save"):
        wxb.onnx.export(model, path)
    assert not path.exists()
    ort = pytest.importorskip("onnxruntime")
    written = wxb.onnx.export(model, tmp_path / "m.onnx")
    X = rng.standard_normal((5, 4)).astype(np.float32)
    session = ort.InferenceSession(str(written), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: X})
    ref = _torch_twin(model)(torch.from_numpy(X.astype(np.float64))).detach().numpy()
    # float32 through two layers of 4 and 5 terms: a few roundings of the outputs' size
    tol = 64 * np.finfo(np.float32).eps * (1 + np.abs(ref).max())
    np.testing.assert_allclose(got, ref, atol=tol, err_msg="onnxruntime against torch")


def _torch_twin(model):
    first, last = model[0], model[2]
    twin = torch.nn.Sequential(
        torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)
    ).double()
    with torch.no_grad():
        for ours, theirs in ((first, twin[0]), (last, twin[2])):
            theirs.weight.copy_(torch.from_numpy(ours.weight.data.astype(np.float64)))
            theirs.bias.copy_(torch.from_numpy(ours.bias.data.astype(np.float64)))
    return twin


# -- 2. model(loader) --------------------------------------------------------------------
class _Own(Module):
    def __init__(self, rng):
        super().__init__()
        self.net = _model(rng)

    def forward(self, x):
        return self.net(x) * 2.0


def test_calling_a_model_on_a_dataloader_says_so_in_one_line(rng):
    """model(loader) gave "AttributeError: 'DataLoader' object has no attribute 'dtype'";
    fit and predict said what to do. Every form a port hands over is refused the same way,
    from a Sequential, a layer, and a forward of one's own (through its wxb layers)."""
    from torch.utils.data import DataLoader, TensorDataset

    X = rng.standard_normal((10, 4)).astype(np.float32)
    y = rng.integers(0, 3, 10)
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    loader = DataLoader(dataset, batch_size=4)
    model = _model(rng)
    for module in (model, model[0], ReLU(), _Own(rng)):
        for source, name in (
            (loader, "DataLoader"),
            (dataset, "TensorDataset"),
            (iter(loader), type(iter(loader)).__name__),
            ((row for row in X), "generator"),
        ):
            with pytest.raises(DataError) as caught:
                module(source)
            message = str(caught.value)
            assert f"is a {name}, not an array" in message and "\n" not in message, message
    # the loop the message points to gives the model's numbers, batch by batch
    model.eval()
    got = np.concatenate([model(xb).data for xb, _ in loader])
    ref = _torch_twin(model)(torch.from_numpy(X.astype(np.float64))).detach().numpy()
    tol = 64 * np.finfo(np.float32).eps * (1 + np.abs(ref).max())
    np.testing.assert_allclose(got, ref, atol=tol)

    # the check is on wxb's layers: a forward of the user's may take what it likes
    class Summed(Module):
        def __init__(self):
            super().__init__()
            self.layer = Dense(4, 2, dtype="float64")

        def forward(self, rows):
            return sum(self.layer(r[None, :]) for r in rows)

    rows = rng.standard_normal((3, 4))
    summed = Summed()
    np.testing.assert_allclose(
        summed(iter(list(rows))).data, summed(rows).data.sum(0, keepdims=True), rtol=1e-12
    )


# -- 3. torch.nn's layers wxb lacks ------------------------------------------------------
_DENSE = "wxb builds dense networks"


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("Conv1d", _DENSE),
        ("Conv2d", _DENSE),
        ("ConvTranspose2d", _DENSE),
        ("MaxPool2d", _DENSE),
        ("AdaptiveAvgPool2d", _DENSE),
        ("LSTM", _DENSE),
        ("GRU", _DENSE),
        ("RNN", _DENSE),
        ("MultiheadAttention", _DENSE),
        ("EmbeddingBag", r"Embedding\(n, d\)"),
        ("BatchNorm2d", "BatchNorm1d"),
        ("GroupNorm", "LayerNorm"),
        ("Dropout2d", r"Dropout\(p\)"),
        ("Softmax2d", r"x\.relu\(\) \*\* 2"),
        ("LazyBatchNorm1d", r"BatchNorm1d\(features\)"),
        ("CTCLoss", r"loss=f"),
    ],
)
def test_torch_layers_wxb_lacks_say_what_to_write(name, says):
    """nn.Conv2d, nn.LSTM, nn.Embedding, … gave a bare AttributeError (Flatten had a
    hint); hasattr stays False, and from-import says the same."""
    assert getattr(torch.nn, name, None) is not None, name  # torch's own name
    with pytest.raises(AttributeError, match=says) as caught:
        getattr(wxb.nn, name)
    assert str(caught.value).startswith(f"module 'wxb.nn' has no attribute {name!r}: ")
    assert not hasattr(wxb.nn, name)
    with pytest.raises(ImportError, match=says):
        exec(f"from wxb.nn import {name}", {})


def test_every_hinted_name_is_torchs_and_not_wxbs():
    """A hint for a name torch does not have, or that wxb has, would be a wrong hint."""
    names = wxb.nn._TORCH_NAMES
    assert len(names) > 50
    assert [n for n in names if getattr(torch.nn, n, None) is None] == []
    assert [n for n in names if n in vars(wxb.nn)] == []


def test_the_embedding_hint_trains_as_torchs_embedding(rng):
    """nn.Embedding gave a bare AttributeError, whose hint told a port to index a Parameter
    (wxb.nn.Embedding is wxb's since layers51): that way gives torch's numbers too, the
    rows looked up, and the table's gradient (rows repeated add up, rows unused stay 0)."""
    n, d = 6, 3
    table = rng.standard_normal((n, d))
    ids = rng.integers(0, n, 8)
    weights = rng.standard_normal((8, d))

    class Looked(Module):
        def __init__(self):
            super().__init__()
            self.E = wxb.nn.Parameter(wxb.tensor(table, dtype="float64"))

        def forward(self, ids):
            return self.E[ids]

    ours = Looked()
    out = ours(ids)
    (out * weights).sum().backward()
    theirs = torch.nn.Embedding(n, d).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(table))
    ref = theirs(torch.from_numpy(ids))
    (ref * torch.from_numpy(weights)).sum().backward()
    np.testing.assert_array_equal(out.data, ref.detach().numpy())
    np.testing.assert_allclose(ours.E.grad, theirs.weight.grad.numpy(), rtol=1e-12, atol=1e-12)


# -- 4. a missing history file ------------------------------------------------------------
def test_a_missing_history_file_says_no_such_file(tmp_path, rng, capsys):
    """wxb report --history missing.json said "No such file or directory" (Python's
    OSError), where every other missing file is "no such file"; a folder said "Is a
    directory". wxb plot said it already: both now say it from the one reader."""
    from wxb.reporting import read_history

    model = tmp_path / "m.safetensors"
    wxb.save(_model(rng), model)
    missing = tmp_path / "missing.json"
    out = tmp_path / "report.html"
    code, _, err = run(capsys, "report", model, "--history", missing, "-o", out)
    assert code == 2 and err.strip() == f"wxb: error: {missing}: no such file", err
    code, _, err = run(capsys, "report", model, "--history", tmp_path, "-o", out)
    assert code == 2 and err.strip().endswith(": is a folder, not a history file"), err
    assert not out.exists()
    code, _, err = run(capsys, "plot", missing, "-o", tmp_path / "plots")
    assert code == 2 and err.strip() == f"wxb: error: {missing}: no such file", err
    assert not (tmp_path / "plots").exists()
    with pytest.raises(DataError, match="no such file"):
        read_history(missing)
    with pytest.raises(DataError, match="no such file"):
        wxb.report(wxb.load(model), history=str(missing))


# -- 5. one-operand ufuncs and mean() of wxb's integer arrays ------------------------------
# NumPy's ufunc, torch's function of the same meaning
_UNARY = {
    np.exp: torch.exp,
    np.exp2: torch.exp2,
    np.expm1: torch.expm1,
    np.log: torch.log,
    np.log2: torch.log2,
    np.log10: torch.log10,
    np.log1p: torch.log1p,
    np.sqrt: torch.sqrt,
    np.sin: torch.sin,
    np.cos: torch.cos,
    np.tan: torch.tan,
    np.sinh: torch.sinh,
    np.cosh: torch.cosh,
    np.tanh: torch.tanh,
    np.arcsin: torch.asin,
    np.arccos: torch.acos,
    np.arctan: torch.atan,
    np.arcsinh: torch.asinh,
    np.arccosh: torch.acosh,
    np.arctanh: torch.atanh,
    np.deg2rad: torch.deg2rad,
    np.rad2deg: torch.rad2deg,
    np.reciprocal: torch.reciprocal,
    np.rint: torch.round,
    np.sign: torch.sign,
    np.square: torch.square,
    np.conjugate: torch.conj,
    np.absolute: torch.abs,
    np.negative: torch.neg,
    np.floor: torch.floor,
    np.ceil: torch.ceil,
    np.trunc: torch.trunc,
    np.isnan: torch.isnan,
    np.logical_not: torch.logical_not,
    np.invert: torch.bitwise_not,
}
_WHOLE = [np.int64, np.int32, np.int16, np.uint8, np.bool_]


def _whole(rng, dtype, shape=(3, 4)):
    if dtype is np.bool_:
        return rng.random(shape) < 0.5
    return rng.integers(0 if dtype is np.uint8 else -3, 9, shape).astype(dtype)


@pytest.mark.parametrize("dtype", _WHOLE, ids=lambda d: np.dtype(d).name)
def test_one_operand_ufuncs_of_whole_numbers_give_torchs_dtype_and_values(rng, seeded, dtype):
    """np.exp(labels), np.sqrt(mask), … were float64 (float16 for bools and bytes) where
    torch's labels.exp() is float32; np.reciprocal of whole numbers was NumPy's 1 // x
    (0 for |x| > 1) where torch's is 1 / x in float32; np.square(mask) int8, torch's int64."""
    array = _whole(rng, dtype)
    compared, wrong = 0, []
    for ufunc, twin in _UNARY.items():
        try:
            ref = twin(torch.from_numpy(array))
        except RuntimeError:
            continue  # (torch has none for this dtype, -mask, abs(mask): NumPy decides)
        ref = ref.resolve_conj().numpy()
        with np.errstate(all="ignore"):
            got = ufunc(array.view(IndexArray))
        compared += 1
        if not isinstance(got, IndexArray) or got.dtype != ref.dtype:
            wrong.append(f"{ufunc.__name__}: {type(got).__name__} {got.dtype}, torch {ref.dtype}")
            continue
        # float32 functions of the same float32 operand: each library within an ulp or two
        # of the result (sin and cos of a few units: of 1, the result may be near 0)
        eps = np.finfo(np.float32).eps
        ours, theirs = np.asarray(got, dtype=np.float64), ref.astype(np.float64)
        near = np.isclose(ours, theirs, rtol=4 * eps, atol=4 * eps, equal_nan=True)
        if not near.all():
            wrong.append(f"{ufunc.__name__}: {ours[~near]} vs torch {theirs[~near]}")
    assert compared >= 25, compared  # (bools: torch has no abs, neg, floor, round, …)
    assert wrong == [], seeded.msg("\n".join(wrong))


def test_the_rule_is_for_wxbs_integer_arrays_only(rng):
    """np.exp of an IndexArray is float32 now; a plain array, a float one, and a dtype or
    out given keep NumPy's meaning."""
    labels = rng.integers(0, 9, 5)
    assert np.exp(labels.view(IndexArray)).dtype == np.float32
    assert np.exp(labels).dtype == np.float64
    assert np.exp(labels.view(IndexArray), dtype=np.float64).dtype == np.float64
    out = np.empty(5)
    np.sqrt(labels.view(IndexArray), out=out)
    np.testing.assert_array_equal(out, np.sqrt(labels.astype(np.float64)))
    floats = rng.standard_normal(5).view(IndexArray)
    assert np.exp(floats).dtype == np.float64


def test_mean_of_whole_numbers_is_float32_as_torchs_float_mean(rng, seeded):
    """torch refuses labels.mean() (an integer tensor has no mean) and writes
    labels.float().mean(): float32. NumPy's float64 beside correct / n's float32 gave two
    dtypes for one figure; with dim, keepdim and NumPy's own dtype= kept."""
    labels = rng.integers(0, 10, (40, 3))
    mask = rng.random((40, 3)) < 0.3
    with pytest.raises(RuntimeError):
        torch.from_numpy(labels).mean()  # the reference's own refusal
    for array in (labels, mask):
        ours = array.view(IndexArray)
        theirs = torch.from_numpy(array).float()
        eps = np.finfo(np.float32).eps  # a float32 mean of 40 or 120 small whole numbers
        for got, ref in (
            (ours.mean(), theirs.mean()),
            (np.mean(ours), theirs.mean()),
            (ours.mean(axis=0), theirs.mean(0)),
            (ours.mean(0, keepdims=True), theirs.mean(0, keepdim=True)),
        ):
            assert got.dtype == np.float32, seeded.msg(str(got.dtype))
            assert got.shape == tuple(ref.shape)
            np.testing.assert_allclose(got, ref.numpy(), rtol=8 * eps, err_msg=seeded.msg("mean"))
        exact = ours.mean(dtype=np.float64)
        assert exact.dtype == np.float64 and exact == array.astype(np.float64).mean()
    # the accuracy idiom and its NumPy spelling agree, in torch's dtype
    out = Tensor(rng.standard_normal((40, 3)).astype(np.float32))
    y = rng.integers(0, 3, 40)
    by_numpy = (out.argmax(1) == y).mean()
    by_torch = (out.argmax(1) == y).float().mean()
    assert by_numpy.dtype == by_torch.dtype == np.float32
    assert by_numpy.item() == by_torch.item()
