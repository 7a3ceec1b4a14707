"""Loose ends the s56 helpers reported (small57): an optimiser made Keras's way, a
plain value under ``model.info``, a buffer weight through ``from_torch``, PyTorch's
Muon state (no 'step') loaded. References: PyTorch's ``torch.optim.Muon`` and
``torch.nn.Linear``. Every run draws a fresh seed (printed; ``WXB_TEST_SEED`` replays)."""

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import save_file

import wxb
import wxb.optim as optim
from wxb.errors import ConfigError, ModelFileError
from wxb.interop import from_torch, to_torch
from wxb.nn import Dense, Module, ReLU, Sequential

OPTIMISERS = [
    cls
    for name in dir(optim)
    if isinstance(cls := getattr(optim, name), type)
    and issubclass(cls, optim.Optimizer)
    and cls is not optim.Optimizer
]


def test_an_optimiser_made_keras_way_names_lr_and_the_parameters(rng):
    """``Adam(learning_rate=0.01)`` (Keras's and optax's spelling) met Python's "missing 1
    required positional argument: 'params'", ``Adam(lr=0.1)`` the same, and
    ``Adam(model.parameters(), learning_rate=…)`` "unexpected keyword argument": none named
    ``lr=`` or ``model.parameters()``. ``Adam(model.parameters)``, the method uncalled,
    showed its repr. Each is now one line naming what to write, for every optimiser."""
    d, h = (int(v) for v in rng.integers(2, 6, 2))
    model = Sequential(Dense(d, h), ReLU(), Dense(h, 1))
    rate = float(rng.uniform(1e-3, 1e-1))
    assert len(OPTIMISERS) >= 15, OPTIMISERS
    for cls in OPTIMISERS:
        name = cls.__name__
        for args in ((), (model.parameters(),)):
            with pytest.raises(TypeError) as caught:
                cls(*args, learning_rate=rate)
            said = str(caught.value)
            assert f"{name}(model.parameters(), lr={rate!r})" in said, said
            assert "learning_rate=" in said and "\n" not in said, said
        with pytest.raises(TypeError, match=rf"first: {name}\(model\.parameters\(\), lr="):
            cls(lr=rate)
        with pytest.raises(ConfigError, match=r"add the brackets.*model\.parameters\(\)"):
            cls(model.parameters, lr=rate)
        with pytest.raises(ConfigError, match=r"add the brackets.*model\.named_parameters\(\)"):
            cls(model.named_parameters, lr=rate)


def test_plain_info_is_refused_where_it_is_set_and_a_dict_there_works(rng):
    """``self.info = "x"`` in a Module's __init__ was taken, and fit failed later with
    "'str' object has no attribute 'get'" (info is wxb's record of the model). It is
    refused at the assignment in one line; a dict there (given before or after
    super().__init__) is the model's record, which fit writes into."""
    d = int(rng.integers(2, 6))
    n = int(rng.integers(8, 20))
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = np.arange(n) % 2

    for value in ("x", None, ["a"], Dense(d, 2)):

        class Noted(Module):
            def __init__(self, note):
                super().__init__()
                self.fc = Dense(d, 2)
                self.info = note

            def forward(self, x):
                return self.fc(x)

        with pytest.raises(ConfigError, match=r"^Noted\.info = (a \w+|None): info is wxb's"):
            Noted(value)

    class Early(Module):  # (a dict given before super().__init__ is kept, as the name is)
        def __init__(self):
            self.info = {"note": "mine"}
            super().__init__()
            self.fc = Dense(d, 2)

        def forward(self, x):
            return self.fc(x)

    model = Early()
    assert model.info == {"note": "mine"}
    wxb.fit(model, X, y, epochs=1, verbose=0)
    assert model.info["note"] == "mine" and model.info["task"] == "classification"
    assert set(wxb.evaluate(model, X, y)) == {"loss", "accuracy"}


def test_a_model_file_whose_info_is_no_object_is_refused_at_load(rng, tmp_path):
    """A model file whose info metadata was a JSON list loaded, and evaluate failed with
    "'list' object has no attribute 'get'"; load now names the file and the field."""
    d = int(rng.integers(2, 6))
    path, bad = tmp_path / "m.safetensors", tmp_path / "bad.safetensors"
    wxb.save(Sequential(Dense(d, 3), ReLU(), Dense(3, 2)), path)
    with safe_open(str(path), "np") as f:
        metadata = {k: v for k, v in f.metadata().items() if k != "digest"}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    metadata["info"] = "[1]"
    save_file(tensors, str(bad), metadata=metadata)
    with pytest.raises(ModelFileError, match=r"info in its metadata is a JSON list, not an"):
        wxb.load(bad)


def test_a_buffer_weight_goes_to_torch_and_back_a_buffer(rng):
    """A wxb Dense whose W (or b) is a buffer converted with to_torch (a Linear with a
    buffer there), but from_torch of the result refused it ("its weight is a buffer").
    A buffer in that slot is a constant in both: it comes back a buffer, persistent as it
    was, and both models compute torch's outputs."""
    d, h, c = (int(v) for v in rng.integers(2, 7, 3))
    model = Sequential(Dense(d, h, dtype=np.float64), ReLU(), Dense(h, c, dtype=np.float64))
    first, last = model[0], model[2]
    W = first.weight.data.copy()
    del first.weight
    first.register_buffer("weight", W)
    b = last.bias.data.copy()
    del last.bias
    last.register_buffer("bias", b, persistent=False)
    twin = to_torch(model)
    back = from_torch(twin)
    x = rng.normal(size=(int(rng.integers(1, 9)), d))
    with torch.no_grad():
        expected = twin(torch.from_numpy(x)).numpy()
    for got in (model(wxb.Tensor(x)), back(wxb.Tensor(x))):
        np.testing.assert_allclose(np.asarray(got.data), expected, rtol=1e-12, atol=1e-12)
    assert [k for k, _ in back.named_buffers()] == [f"{first.name}.weight", f"{last.name}.bias"]
    assert [k for k, _ in back.named_parameters()] == [f"{first.name}.bias", f"{last.name}.weight"]
    assert list(back.state_dict()) == list(model.state_dict())  # (the bias not persistent)
