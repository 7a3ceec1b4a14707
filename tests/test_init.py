"""wxb.nn.init, PyTorch's torch.nn.init: in place (the optimiser built before follows),
PyTorch's gains, fans and bounds, the distributions drawn, and clear refusals."""

import math

import numpy as np
import pytest

import wxb
from wxb import nn
from wxb.errors import ConfigError

torch = pytest.importorskip("torch")


def test_gains_are_pytorchs(rng):
    for name in ("linear", "sigmoid", "tanh", "relu", "selu", "conv1d", "conv_transpose3d"):
        assert nn.init.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name))
    slope = float(rng.uniform(0, 1))
    assert nn.init.calculate_gain("leaky_relu", slope) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", slope)
    )
    assert nn.init.calculate_gain("leaky_relu") == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu")
    )
    with pytest.raises(ConfigError, match="unsupported nonlinearity 'swish'"):
        nn.init.calculate_gain("swish")


def _shape(rng):
    return int(rng.integers(200, 400)), int(rng.integers(200, 400))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_uniform_kinds_reach_pytorchs_bound_and_no_further(rng, dtype):
    """U(−b, b): every value inside b, the largest near it, b from PyTorch's own fans
    and gains; in place in the parameter, in its dtype."""
    out_features, in_features = _shape(rng)
    fan_in, fan_out = in_features, out_features
    slope = float(rng.uniform(0, 0.5))
    kinds = {
        "xavier": (
            lambda w: nn.init.xavier_uniform_(w, gain=1.5),
            1.5 * math.sqrt(6 / (fan_in + fan_out)),
        ),
        "kaiming_in": (
            lambda w: nn.init.kaiming_uniform_(w, a=slope),
            math.sqrt(3) * torch.nn.init.calculate_gain("leaky_relu", slope) / math.sqrt(fan_in),
        ),
        "kaiming_out_relu": (
            lambda w: nn.init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu"),
            math.sqrt(3) * math.sqrt(2) / math.sqrt(fan_out),
        ),
    }
    for name, (init, bound) in kinds.items():
        layer = nn.Dense(in_features, out_features, dtype=dtype)
        array = layer.weight.data
        assert init(layer.weight) is layer.weight
        assert layer.weight.data is array and layer.weight.dtype == dtype
        largest = np.abs(array).max()
        assert largest <= bound * (1 + 1e-6) and largest > 0.99 * bound, name
        # the spread of U(−b, b) is b/√3
        assert array.std() == pytest.approx(bound / math.sqrt(3), rel=0.03), name


def test_normal_kinds_have_pytorchs_spread(rng):
    out_features, in_features = _shape(rng)
    weight = nn.Dense(in_features, out_features, dtype="float64").weight
    nn.init.xavier_normal_(weight, gain=2.0)
    assert weight.data.std() == pytest.approx(
        2 * math.sqrt(2 / (in_features + out_features)), rel=0.03
    )
    nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="tanh")
    assert weight.data.std() == pytest.approx((5 / 3) / math.sqrt(out_features), rel=0.03)
    nn.init.normal_(weight, mean=3.0, std=0.5)
    assert weight.data.mean() == pytest.approx(3.0, abs=0.01)
    assert weight.data.std() == pytest.approx(0.5, rel=0.03)
    nn.init.trunc_normal_(weight, mean=0.5, std=2.0, a=-1.0, b=1.5)
    assert weight.data.min() >= -1.0 and weight.data.max() <= 1.5
    nn.init.uniform_(weight, -0.25, 0.75)
    assert weight.data.min() >= -0.25 and weight.data.max() < 0.75


def test_orthogonal_eye_and_constants(rng):
    rows, columns = int(rng.integers(2, 40)), int(rng.integers(2, 40))
    weight = nn.Dense(columns, rows, dtype="float64").weight
    nn.init.orthogonal_(weight, gain=2.0)
    w = weight.data / 2
    gram = w @ w.T if rows <= columns else w.T @ w
    np.testing.assert_allclose(gram, np.eye(min(rows, columns)), atol=1e-12)
    nn.init.eye_(weight)
    np.testing.assert_array_equal(weight.data, np.eye(rows, columns))
    nn.init.constant_(weight, 0.3)
    assert (weight.data == 0.3).all()
    nn.init.ones_(weight)
    assert (weight.data == 1).all()
    nn.init.zeros_(weight)
    assert not weight.data.any()


def test_a_generator_or_the_manual_seed_repeats_the_draw():
    weight = nn.Dense(5, 4).weight
    first = nn.init.kaiming_uniform_(weight, generator=7).data.copy()
    np.testing.assert_array_equal(nn.init.kaiming_uniform_(weight, generator=7).data, first)
    wxb.manual_seed(3)
    again = nn.init.xavier_normal_(weight).data.copy()
    wxb.manual_seed(3)
    np.testing.assert_array_equal(nn.init.xavier_normal_(weight).data, again)


def test_an_optimiser_built_before_trains_the_new_values(rng):
    """model.apply(init) after the optimiser was made (PyTorch's habit in either order):
    the optimiser's step moves the initialised weights, as PyTorch's does."""
    X, y = rng.normal(size=(16, 3)), rng.integers(0, 2, 16)
    model = nn.Sequential(nn.Dense(3, 5), nn.Tanh(), nn.Dense(5, 2)).to("float64")
    opt = wxb.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def init(module):
        if isinstance(module, nn.Dense):
            nn.init.orthogonal_(module.weight)
            nn.init.constant_(module.bias, 0.1)

    model.apply(init)
    twin = torch.nn.Sequential(
        torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)
    ).double()
    with torch.no_grad():
        for mine, their in zip(model.parameters(), twin.parameters(), strict=True):
            their.copy_(torch.tensor(mine.data))
    their_opt = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    wxb.fit(model, X, y, optimizer=opt, epochs=2, batch_size=8, shuffle=False, verbose=0)
    loss = torch.nn.CrossEntropyLoss()
    for _ in range(2):
        for start in (0, 8):
            their_opt.zero_grad()
            loss(
                twin(torch.tensor(X[start : start + 8])), torch.tensor(y[start : start + 8])
            ).backward()
            their_opt.step()
    for mine, their in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(mine.data, their.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_refusals_are_one_clear_line():
    bias = nn.Dense(3, 2).bias
    with pytest.raises(ConfigError, match="fewer than 2 dimensions"):
        nn.init.xavier_uniform_(bias)
    with pytest.raises(ConfigError, match="mode must be 'fan_in' or 'fan_out'"):
        nn.init.kaiming_normal_(nn.Dense(3, 2).weight, mode="fan_avg")
    with pytest.raises(ConfigError, match="writes into a wxb Tensor"):
        nn.init.zeros_([[1.0, 2.0]])  # (a float array is written in place: m.weight.data)
    with pytest.raises(ConfigError, match=r"float array .* got ndarray of int64"):
        nn.init.zeros_(np.ones((2, 2), dtype=np.int64))
    with pytest.raises(ConfigError, match="a must be below b"):
        nn.init.trunc_normal_(nn.Dense(3, 2).weight, a=1.0, b=0.0)
