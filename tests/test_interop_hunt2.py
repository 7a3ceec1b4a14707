"""ONNX export and PyTorch interop, second hunt: what the first did not try.

Inputs are drawn fresh on each run (the seed is printed; WXB_TEST_SEED=<seed> replays).
"""

import numpy as np
import pytest

from wxb.errors import ConfigError
from wxb.nn import BatchNorm1d, Dense, LayerNorm, Sequential

pytest.importorskip("onnx")


@pytest.mark.parametrize("norm", ["layer", "batch"])
def test_a_norm_first_whose_width_the_next_layer_does_not_take_is_refused_by_name(
    tmp_path, seeded, norm
):
    # Sequential(LayerNorm(4), Dense(3, 2)) went past export's width check (a norm first
    # set no width) to onnx's shape inference: InferenceError 'Dimension mismatch in
    # unification between 3 and 4', naming no layer, where the docstring promises
    # ConfigError; wxb cannot run the model either
    from wxb.onnx import export

    rng = seeded.rng
    width = int(rng.integers(2, 9))
    other = width + int(rng.choice([-1, 1]))
    first = LayerNorm(width) if norm == "layer" else BatchNorm1d(width)
    after = Dense(other, 2) if rng.random() < 0.5 else LayerNorm(other)
    model = Sequential(first, after).eval()
    with pytest.raises(ConfigError, match=rf"{after.name}.*takes {other} .* gives {width}"):
        export(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists(), seeded.msg("nothing written")
    with pytest.raises(Exception):  # noqa: B017 - wxb cannot run it either
        model.predict(rng.normal(size=(3, width)))


@pytest.mark.parametrize("head", ["Softmax", "LogSoftmax", "Tanh", "GELU"])
def test_a_model_holding_no_float_array_exports_in_the_dtype_asked(tmp_path, seeded, head):
    # Sequential(Softmax()).double() computes in float64 in wxb (and PyTorch), but its
    # export was float32 whatever one did (.double() has nothing to cast): onnxruntime
    # refused float64 rows, and float32 ones gave probabilities rounded to 1e-7
    import onnxruntime as ort
    import torch

    from wxb import nn
    from wxb.onnx import export

    rng = seeded.rng
    X = rng.normal(size=(int(rng.integers(1, 9)), int(rng.integers(2, 7)))) * 20
    model = nn.Sequential(nn.Sequential(getattr(nn, head)()), nn.Dropout(0.3)).double().eval()
    path = export(model, tmp_path / "m.onnx", dtype="float64")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": X})[0]
    layer = {"Softmax": torch.nn.Softmax(dim=1), "LogSoftmax": torch.nn.LogSoftmax(dim=1)}
    with torch.no_grad():
        expected = layer.get(head, getattr(torch.nn, head)())(torch.from_numpy(X)).numpy()
    assert got.dtype == np.float64, seeded.msg(head)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13, err_msg=seeded.msg(head))
    np.testing.assert_allclose(got, model.predict(X), rtol=1e-14, atol=1e-14)
    default = export(model, tmp_path / "f.onnx")  # float32 unless asked, as before
    session = ort.InferenceSession(str(default), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(float)"
    held = nn.Sequential(nn.Dense(X.shape[1], 2), getattr(nn, head)())  # arrays decide
    with pytest.raises(ConfigError, match=r"float32 arrays.*model.to\('float64'\)"):
        export(held, tmp_path / "h.onnx", dtype="float64")
    assert export(held.double(), tmp_path / "h.onnx", dtype=np.float64).exists()
    with pytest.raises(ConfigError, match="dtype"):
        export(model, tmp_path / "h.onnx", dtype="float16")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_text_cells_with_a_space_around_them_are_found_as_wxb_trims_them(tmp_path, seeded, dtype):
    # wxb's reader trims text cells: ' red' (pandas' reading of 'a, red') is 'red' and
    # ' ' a gap to wxb predict; the exported graph compared them as given, so ' red' was
    # a category not seen (all zeros) and ' ' no gap, without a word
    import onnxruntime as ort
    import pyarrow as pa

    from wxb.columns import TableEncoder
    from wxb.nn import ReLU, Standardize
    from wxb.onnx import export
    from wxb.tables import from_object

    rng = seeded.rng
    words = ["red", "green", "New York", "1.0", "true", "blue"][: int(rng.integers(2, 7))]
    n = int(rng.integers(30, 80))
    cells = [None if rng.random() < 0.15 else str(rng.choice(words)) for _ in range(n)]
    table = from_object(pa.table({"c": pa.array(cells, pa.string()), "v": rng.normal(size=n)}))
    encoder = TableEncoder.fit(table, table.names)
    X = encoder.transform(table, dtype)
    hidden = int(rng.integers(2, 6))
    model = Sequential(
        Standardize.fit(X), Dense(X.shape[1], hidden, seed=int(rng.integers(1 << 30))), ReLU()
    ).to(dtype)
    model.info = {"table": encoder.to_json(), "feature_names": encoder.outputs}
    texts = [*words, "1", "True", "NA", "", "purple"]
    given = [
        pad.replace("x", str(rng.choice(texts)))
        for pad in rng.choice([" x", "x ", " x ", "x"], size=int(rng.integers(5, 30)))
    ]
    given += [" ", "  "]
    path = export(model, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    values = rng.normal(size=len(given))
    got = session.run(
        None,
        {
            "c": np.array(given, dtype=object).reshape(-1, 1),
            "v": values.astype(dtype).reshape(-1, 1),
        },
    )[0]
    rows = from_object(pa.table({"c": pa.array(given, pa.string()), "v": values}))
    want = model.predict(rows)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=seeded.msg(repr(given)))
