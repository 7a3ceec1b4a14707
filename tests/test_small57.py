"""Loose ends the s56 helpers reported (small57): an optimiser made Keras's way, a
plain value under ``model.info``, a buffer weight through ``from_torch``, PyTorch's
Muon state (no 'step') loaded. References: PyTorch's ``torch.optim.Muon`` and
``torch.nn.Linear``. Every run draws a fresh seed (printed; ``WXB_TEST_SEED`` replays)."""

import pytest

import wxb.optim as optim
from wxb.errors import ConfigError
from wxb.nn import Dense, ReLU, Sequential

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
