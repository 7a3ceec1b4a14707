"""A Keras user trying wxb: Keras's spellings that wxb either takes with Keras's meaning
or refuses in one line naming wxb's way, never with another meaning without a word.

The references: PyTorch's ``Linear(in, out, bias)`` for which bias flags mean a bias;
Keras's documented ``fit(batch_size=None)`` (its default, 32); and the arguments Keras's
``fit``, ``Dense`` and ``History`` have that wxb has not. Every run draws a fresh seed
(printed; ``WXB_TEST_SEED`` replays it)."""

import numpy as np
import pytest

from wxb.errors import ConfigError
from wxb.nn import Dense

torch = pytest.importorskip("torch")

ACTIVATIONS = ["relu", "sigmoid", "tanh", "softmax", "linear", "gelu", "elu"]


def _data(rng, n=None):
    n = int(rng.integers(40, 120)) if n is None else n
    d, c = int(rng.integers(2, 6)), int(rng.integers(2, 5))
    X = rng.normal(size=(n, d))
    y = rng.integers(0, c, n)
    return X, y, d, c


def test_an_activation_where_dense_takes_bias_is_refused_not_taken_for_true(seeded):
    """Dense(64, 10, "relu"), Keras's Dense(units, activation) habit in wxb's (in, out):
    "relu" was taken for bias=True, a plain linear layer without a word."""
    rng = seeded.rng
    d, h = int(rng.integers(1, 50)), int(rng.integers(1, 50))
    activation = str(rng.choice(ACTIVATIONS))
    with pytest.raises(ConfigError, match="activation is a layer of its own") as caught:
        Dense(d, h, activation)
    assert "bias" in str(caught.value), seeded.msg(str(caught.value))
    with pytest.raises(ConfigError, match="out_features"):  # Dense(units, activation)
        Dense(h, activation)


@pytest.mark.parametrize("flag", [True, False, None, 0, 1, np.bool_(True), np.bool_(False)])
def test_dense_bias_flags_mean_what_pytorchs_linear_makes_of_them(seeded, flag):
    rng = seeded.rng
    d, h = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    layer = Dense(d, h, flag)
    twin = torch.nn.Linear(d, h, bias=flag)
    assert (layer.bias is None) == (twin.bias is None), seeded.msg(repr(flag))
    assert (Dense(d, h, bias=flag).bias is None) == (twin.bias is None)


@pytest.mark.parametrize(
    ("keyword", "way"),
    [
        ("activation", "ReLU()"),
        ("use_bias", "bias=False"),
        ("kernel_initializer", "init="),
        ("bias_initializer", "constant_"),
        ("kernel_regularizer", "weight_decay"),
        ("input_dim", "in_features"),
        ("input_shape", "in_features"),
    ],
)
def test_kerass_dense_keywords_are_refused_naming_wxbs_way(seeded, keyword, way):
    rng = seeded.rng
    d, h = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    with pytest.raises(ConfigError, match=keyword) as caught:
        Dense(d, h, **{keyword: "relu"})
    assert way in str(caught.value), seeded.msg(str(caught.value))


def test_dense_of_units_alone_says_it_takes_its_inputs_too(seeded):
    units = int(seeded.rng.integers(1, 99))
    with pytest.raises(ConfigError, match=r"\(in_features, out_features\)") as caught:
        Dense(units)
    assert f"Dense(<features in>, {units})" in str(caught.value)
    with pytest.raises(TypeError, match="no_such_thing"):  # others: Python's own error
        Dense(units, units, no_such_thing=1)
