"""Review of session 56's merged changes: a class's own train() called by evaluating().

Drawn fresh each run (the seed is printed; ``WXB_TEST_SEED`` replays it).
"""

import numpy as np
import pytest

import wxb
from wxb import nn
from wxb.errors import ConfigError


def _switching_dropout(base, dropout, grad_enabled, p_train: float):
    """A model of the kind the seed's MLP with Dropout is ported as, whose train() sets
    the Dropout's rate by mode (p_train training, 0 evaluating), recording the rate each
    forward saw, by whether a gradient was recorded (training) or not (evaluating)."""

    class Switching(base):
        def __init__(self, n_in: int, n_out: int, linear) -> None:
            super().__init__()
            self.fc = linear(n_in, n_out)
            self.drop = dropout(p_train)
            self.seen: list[tuple[bool, float]] = []

        def train(self, mode: bool = True):
            super().train(mode)
            self.drop.p = p_train if mode else 0.0
            return self

        def forward(self, x):
            self.seen.append((grad_enabled(), self.drop.p))
            return self.fc(self.drop(x))

    return Switching


def test_a_class_own_train_runs_again_after_evaluating_as_a_pytorch_loop_calls_it(seeded):
    """predict and fit's validation pass call a class's own eval() (fc7e20d), whose
    train() here sets Dropout's p to 0; nothing called train() after, so every epoch after
    the first validation pass trained at p=0 (and the model, in train mode by its flag,
    kept p=0 after predict). A PyTorch loop calls model.train() before each epoch: every
    training forward sees p_train. Now the block's end calls train() (recording flags)."""
    import torch

    rng = seeded.rng
    n_in, n_out = (int(k) for k in rng.integers(2, 6, size=2))
    p_train = float(rng.uniform(0.2, 0.8))
    epochs = int(rng.integers(2, 4))
    X = rng.standard_normal((int(rng.integers(8, 20)), n_in)).astype(np.float32)
    y = rng.integers(0, n_out, len(X))

    Net = _switching_dropout(nn.Module, nn.Dropout, wxb.is_grad_enabled, p_train)
    net = Net(n_in, n_out, nn.Linear)
    wxb.fit(net, X, y, loss="cross_entropy", epochs=epochs, batch_size=len(X), verbose=0,
            validation_data=(X, y))  # fmt: skip
    trained = [p for grad, p in net.seen if grad]

    TorchNet = _switching_dropout(torch.nn.Module, torch.nn.Dropout, torch.is_grad_enabled, p_train)
    twin = TorchNet(n_in, n_out, torch.nn.Linear)
    for _ in range(epochs):  # a PyTorch loop: train(), the step's forward, eval(), validation
        twin.train()
        twin(torch.tensor(X))  # (the rate it sees does not hang on the step's values)
        twin.eval()
        with torch.no_grad():
            twin(torch.tensor(X))
    twin.train()
    want = [p for grad, p in twin.seen if grad]
    assert trained == want, seeded.msg(f"p of each training forward: {trained} for {want}")
    assert net.training and net.drop.p == twin.drop.p == p_train, seeded.msg("p after fit")

    outputs = net.predict(X)  # eval mode's (p=0): the Dense's rows
    want_out = X @ net.fc.weight.data.T + net.fc.bias.data
    np.testing.assert_allclose(
        outputs, want_out, rtol=1e-5, atol=1e-6, err_msg=seeded.msg("predict")
    )
    assert net.drop.p == p_train, seeded.msg(f"p after predict, in train mode: {net.drop.p}")
    net.eval()  # eval mode by its flag: predict's block ends in eval(), p=0 kept
    net.predict(X)
    assert net.drop.p == 0.0, seeded.msg(f"p after predict, in eval mode: {net.drop.p}")


def test_load_state_dict_assign_of_a_buffer_array_refused_before_any_key_is_assigned(seeded):
    """load_state_dict(assign=True) with a buffer's array for a trained parameter met
    Parameter()'s refusal (93a8db9, 3dc10f1) midway, naming Parameter(buffer.copy()), a
    call the user never wrote, after the keys before it were assigned: the Linear was left
    half loaded (its weight the new values, its bias the old). Now refused before any is,
    naming the key and load_state_dict; the copy the message names loads as assign does."""
    rng = seeded.rng
    n_in, n_out = (int(k) for k in rng.integers(2, 6, size=2))

    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("bias", rng.standard_normal(n_out).astype(np.float32))

    holder = Holder()
    linear = nn.Linear(n_in, n_out)
    before = {name: p.data.copy() for name, p in linear.named_parameters()}
    weight = rng.standard_normal((n_out, n_in)).astype(np.float32)
    state = {"weight": weight, "bias": holder.bias}  # (the model's order: weight first)
    with pytest.raises(ConfigError, match=r"^bias: load_state_dict\(assign=True\) .*buffer"):
        linear.load_state_dict(state, assign=True)
    for name, p in linear.named_parameters():
        np.testing.assert_array_equal(p.data, before[name], err_msg=seeded.msg(f"{name} kept"))
    linear.load_state_dict({**state, "bias": holder.bias.copy()}, assign=True)
    assert np.shares_memory(linear.weight.data, weight), seeded.msg("assign: the array itself")
    np.testing.assert_array_equal(linear.bias.data, holder.bias, err_msg=seeded.msg("bias"))
