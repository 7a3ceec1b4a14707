"""User models (session 56): attributes that would hide wxb's methods, and save/load
round trips of models users write, compared with the original and with PyTorch.

Drawn fresh each run (the seed is printed; ``WXB_TEST_SEED`` replays it).
"""

import numpy as np
import pytest

from wxb import nn


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
