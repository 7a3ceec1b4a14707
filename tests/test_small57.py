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
from wxb.nn import Dense, Module, Parameter, ReLU, Sequential

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

    # a class of one's own whose __init__ takes learning_rate= (or params by keyword)
    # is built as written: the refusal stands in only for Python's own TypeError
    class OwnSGD(optim.SGD):
        def __init__(self, params, learning_rate=0.1):
            super().__init__(params, lr=learning_rate)

    assert OwnSGD(model.parameters(), learning_rate=rate).param_groups[0]["lr"] == rate
    assert OwnSGD(params=model.parameters(), learning_rate=rate).param_groups[0]["lr"] == rate


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


def _step_both(torch_opt, torch_params, ours, our_params, grads):
    for tp, p, g in zip(torch_params, our_params, grads, strict=True):
        tp.grad = torch.from_numpy(g.copy())
        p.grad = g.copy()
    torch_opt.step()
    ours.step()


def _as_torchs(ours, p, theirs, q, msg: str) -> None:
    """The momentum buffer PyTorch's to float32's rounding; the weights within what
    test_optims52 allows the bfloat16 Newton–Schulz iteration: lr′·2⁻⁴ (a rounding on a
    boundary spreads through its products, about 1 run in 30 here)."""
    eps = float(np.finfo(np.float32).eps)
    buffer = theirs.state[q]["momentum_buffer"].numpy()
    np.testing.assert_allclose(
        ours.state[p]["momentum_buffer"], buffer, rtol=4 * eps,
        atol=4 * eps * float(np.abs(buffer).max()), err_msg=msg,
    )  # fmt: skip
    want = q.detach().numpy()
    lr = optim.Muon._lr_of(ours.param_groups[0], p.shape)
    allowed = 4 * eps * (float(np.abs(want).max()) + lr) + lr * 2.0**-4
    assert float(np.abs(p.data - want).max()) <= allowed, msg


def test_muon_state_goes_to_torchs_muon_and_back(seeded):
    """PyTorch's Muon keeps no 'step' in its state, where wxb's Muon counts one: its
    state in PyTorch's layout (arrays as NumPy's) was refused by wxb's load_state_dict,
    "a step count must be a whole number ≥ 0; got None". It loads now, into Muon and into
    MuonWithAdamW's Muon group (its AdamW group keeps AdamW's step); wxb's state with its
    'step' loads into torch's Muon. Each then steps as torch's does."""
    rng = seeded.rng
    shape = tuple(int(v) for v in rng.integers(2, 6, 2))
    grad = lambda: [rng.normal(size=shape).astype(np.float32)]  # noqa: E731
    lr = float(rng.uniform(0.005, 0.05))
    start = rng.normal(size=shape).astype(np.float32)
    torch_params = [torch.nn.Parameter(torch.from_numpy(start.copy()))]
    torch_opt = torch.optim.Muon(torch_params, lr=lr)
    # PyTorch's layout, as its state_dict() gives it after a step: a momentum_buffer alone
    buffer = rng.normal(size=shape).astype(np.float32)
    torch_opt.load_state_dict(
        {
            "state": {0: {"momentum_buffer": torch.from_numpy(buffer.copy())}},
            "param_groups": torch_opt.state_dict()["param_groups"],
        }
    )
    saved = torch_opt.state_dict()
    assert list(saved["state"][0]) == ["momentum_buffer"]

    # torch's layout into a wxb Muon
    loaded = [Parameter(start.copy())]
    fresh = optim.Muon(loaded, lr=lr)
    fresh.load_state_dict(
        {
            "state": {
                i: {k: v.numpy() for k, v in entry.items()} for i, entry in saved["state"].items()
            },
            "param_groups": saved["param_groups"],
        }
    )
    _step_both(torch_opt, torch_params, fresh, loaded, grad())
    _as_torchs(fresh, loaded[0], torch_opt, torch_params[0], seeded.msg("torch → wxb"))

    # wxb's state (with its 'step') into a fresh torch Muon
    twins = [torch.nn.Parameter(torch.from_numpy(loaded[0].data.copy()))]
    again = torch.optim.Muon(twins, lr=lr)
    ours_saved = fresh.state_dict()
    again.load_state_dict(
        {
            "state": {
                i: {k: torch.as_tensor(np.asarray(v)) for k, v in entry.items()}
                for i, entry in ours_saved["state"].items()
            },
            "param_groups": ours_saved["param_groups"],
        }
    )
    _step_both(again, twins, fresh, loaded, grad())
    _as_torchs(fresh, loaded[0], again, twins[0], seeded.msg("wxb → torch"))

    # MuonWithAdamW: its Muon group's entries in torch's layout, its AdamW group's as wxb's
    d, h = (int(v) for v in rng.integers(2, 6, 2))
    X = rng.normal(size=(8, d)).astype(np.float32)
    net = Sequential(Dense(d, h), ReLU(), Dense(h, 1))
    both = optim.MuonWithAdamW(net.parameters(), lr=lr)

    def train_step(model, opt):
        opt.zero_grad()
        ((model(wxb.Tensor(X))) ** 2).mean().backward()
        opt.step()

    for _ in range(2):
        train_step(net, both)
    state = both.state_dict()
    layout = {
        i: {k: v for k, v in entry.items() if k != "step"} if "momentum_buffer" in entry else entry
        for i, entry in state["state"].items()
    }
    copy = Sequential(Dense(d, h), ReLU(), Dense(h, 1))
    copy.load_state_dict(net.state_dict())
    other = optim.MuonWithAdamW(copy.parameters(), lr=lr)
    other.load_state_dict({**state, "state": layout})
    train_step(net, both)
    train_step(copy, other)
    for a, b in zip(net.parameters(), copy.parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data)
