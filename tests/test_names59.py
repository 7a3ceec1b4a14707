"""Refusals that said something untrue, and a model refused for wxb's own naming."""

import pytest

import wxb
import wxb.interop
from wxb.errors import ConfigError
from wxb.nn import Dense, Module


class _Two(Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.fc, self.fc2 = Dense(d, d), Dense(d, d)


class _SkipsBack(_Two):
    def forward(self, x):
        return self.fc2(self.fc(x)) + self.fc(x)


class _DropsOne(_Two):
    def forward(self, x):
        h = self.fc(x)
        self.fc2(x)
        return h


class _ReturnsEarlier(_Two):
    def forward(self, x):
        h = self.fc(x)
        self.fc2(h)
        return h


class _Detaches(_Two):
    def forward(self, x):
        return self.fc2(self.fc(x).detach())


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        (_SkipsBack, "hands the batch it was given into 'fc' after 'fc2'"),
        (_DropsOne, "hands the batch it was given into 'fc2' after 'fc'"),
        (_ReturnsEarlier, "hands the result of 'fc' as its result after 'fc2'"),
        (_Detaches, "hands a tensor cut from the graph (wxb.Tensor(h), h.detach(), a new one) "),
    ],
)
def test_a_forward_that_is_no_chain_is_refused_saying_what_it_hands_on(rng, kind, says):
    """to_torch (and ONNX export, by the same check) refused fc2(fc(x)) + fc(x), and a
    forward that computed fc2's result and dropped it, saying it handed on "a tensor cut
    from the graph": the batch, which was no such thing. fc's result returned after fc2
    ran was "the result of an operation of its own (+b)": fc's own bias add. A tensor
    really cut from the graph is still called one."""
    model = kind(int(rng.integers(1, 6)))
    with pytest.raises(ConfigError) as caught:
        wxb.interop.to_torch(model)
    assert says in str(caught.value), str(caught.value)
