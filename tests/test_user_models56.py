"""User models (session 56): attributes that would hide wxb's methods, and save/load
round trips of models users write, compared with the original and with PyTorch.

Drawn fresh each run (the seed is printed; ``WXB_TEST_SEED`` replays it).
"""

import numpy as np
import pytest

import wxb
from wxb import nn
from wxb.errors import ConfigError


@pytest.mark.parametrize("name", ["summary", "predict", "train", "parameters", "state_dict"])
def test_a_value_under_a_method_name_fit_calls_is_refused_where_it_is_set(seeded, name):
    """``self.summary = "my net"`` in ``__init__`` hid Module.summary; one under ``predict``
    or ``train`` made predict or fit fail later with "'str' object is not callable", far
    from the line at fault. Now refused at the assignment, naming it; a function put there
    on purpose is taken, and other names (``config``, which ported models hold) stay free."""
    rng = seeded.rng
    n_in, n_out = (int(k) for k in rng.integers(2, 6, size=2))

    class Net(nn.Module):
        def __init__(self, value):
            super().__init__()
            self.fc = nn.Linear(n_in, n_out)
            setattr(self, name, value)
            self.config = {"width": n_out}  # a name of wxb's no tool calls: still free

        def forward(self, x):
            return self.fc(x)

    with pytest.raises(AttributeError, match=rf"Net\.{name} = a str: .*self\.my_{name}"):
        Net("my net")
    replaced = getattr(nn.Module, name)
    net = Net(lambda *a, **k: replaced(net, *a, **k))  # a callable: taken
    X = rng.standard_normal((int(rng.integers(3, 9)), n_in)).astype(np.float32)
    want = X @ net.fc.weight.data.T + net.fc.bias.data
    np.testing.assert_allclose(net.predict(X), want, rtol=1e-5, atol=1e-6, err_msg=seeded.msg(name))
    assert net.config == {"width": n_out}


def test_a_dense_subclass_of_its_own_init_is_told_truly_and_its_way_round_trips(seeded, tmp_path):
    """A Dense subclass overriding only reset_parameters computes as a Dense; wxb.save
    refused it saying wxb.load's plain Dense "computes something else", untrue. Now the
    refusal says what it has of its own and that a plain Dense would come back; the way
    it gives (the weights alone, the model rebuilt in code) round-trips into the subclass
    with a MuonWithAdamW's state: predictions, and training continued, equal the
    original's."""
    rng = seeded.rng
    n_in, hidden, n_out = (int(k) for k in rng.integers(2, 7, size=3))
    gain = float(rng.uniform(0.2, 0.8))

    class ScaledInit(nn.Dense):
        def reset_parameters(self):
            super().reset_parameters()
            self.weight.data[...] *= gain

    def build(seed):
        wxb.manual_seed(seed)
        return nn.Sequential(
            ScaledInit(n_in, hidden), nn.Tanh(), nn.LayerNorm(hidden), nn.Linear(hidden, n_out)
        ).double()

    model = build(1)
    with pytest.raises(ConfigError, match=r"with its own reset_parameters only \(it computes as a"):
        wxb.save(model, tmp_path / "m.safetensors")
    X = rng.standard_normal((16, n_in))
    Y = rng.standard_normal((16, n_out))
    opt = wxb.optim.MuonWithAdamW(model.parameters(), lr=float(rng.uniform(0.005, 0.03)))

    def train(net, optimizer, rows):
        for batch in np.array_split(rows, 2):
            optimizer.zero_grad()
            loss = ((net(wxb.Tensor(X[batch])) - wxb.Tensor(Y[batch])) ** 2).mean()
            loss.backward()
            optimizer.step()

    train(model, opt, np.arange(8))
    path = tmp_path / "run.safetensors"
    wxb.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, path)
    saved = wxb.load(path)
    again = build(2)  # other initial weights: the file's must replace them
    again.load_state_dict(saved["model"])
    again_opt = wxb.optim.MuonWithAdamW(again.parameters(), lr=opt.param_groups[0]["lr"])
    again_opt.load_state_dict(saved["optimizer"])
    assert type(again[0]) is ScaledInit
    np.testing.assert_array_equal(again.predict(X), model.predict(X), err_msg=seeded.msg("saved"))
    train(model, opt, np.arange(8, 16))
    train(again, again_opt, np.arange(8, 16))
    for (key, want), got in zip(
        model.state_dict().items(), again.state_dict().values(), strict=True
    ):
        np.testing.assert_array_equal(got, want, err_msg=seeded.msg(f"trained on: {key}"))
