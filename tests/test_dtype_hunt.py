"""Dtypes end to end, against PyTorch at the matching dtype: a float64 model computes in
float64, a float32 one casts its inputs to float32 (documented) and loses no more."""

import numpy as np
import pytest

from wxb import nn
from wxb.tensor import Tensor, no_grad

torch = pytest.importorskip("torch")
F = torch.nn.functional


@pytest.fixture
def seeded():
    seed = np.random.SeedSequence().entropy
    return np.random.default_rng(seed), f"seed {seed}"


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
            model(x).data,
            model(Tensor(x)).data,
        ):
            assert out.dtype == expected.dtype, seed
            eps = np.finfo(dtype).eps  # rounding of the input's dtype, not float32's in float64
            scale = 8 * eps * max(1.0, float(np.abs(x).max()))
            np.testing.assert_allclose(out, expected, rtol=8 * eps, atol=scale, err_msg=seed)
        with no_grad():
            assert model(x).dtype == expected.dtype, seed
