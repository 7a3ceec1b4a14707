"""Refusals that said something untrue, and a model refused for wxb's own naming."""

import numpy as np
import pytest
import torch

import wxb
import wxb.interop
from wxb.errors import ConfigError
from wxb.nn import Dense, Module, Sequential, Tanh


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
        (_Detaches, "hands a tensor cut from the graph (h.detach(), a new one: wxb.tensor(h)) "),
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


def test_an_unnamed_layer_beside_a_shared_one_named_by_a_nested_sequential(rng, tmp_path):
    """Sequential(Sequential(Tanh(), a), Dense(d, d), a): the nested Sequential named a
    'dense1', the outer gave the unnamed Dense 'dense1' too and then refused the model,
    "two layers are named 'dense1'", for names it made itself. It now runs as torch's
    twin does, predicts, saves and loads, converts, exports (onnxruntime computes
    the same) and summarises."""
    d, n = int(rng.integers(1, 6)), int(rng.integers(1, 8))
    shared = Dense(d, d)
    model = Sequential(Sequential(Tanh(), shared), Dense(d, d), shared).double()
    middle = model.layers[1]
    assert shared.name == "dense1" and middle.name != "dense1"
    X = rng.normal(size=(n, d))

    def dense(layer, h):
        return h @ torch.from_numpy(layer.weight.data).T + torch.from_numpy(layer.bias.data)

    want = dense(shared, dense(middle, dense(shared, torch.tanh(torch.from_numpy(X))))).numpy()
    assert np.allclose(model(X).data, want, rtol=1e-12, atol=1e-12)
    assert np.allclose(model.predict(X), want, rtol=1e-12, atol=1e-12)
    wxb.save(model, tmp_path / "m.safetensors")
    assert np.array_equal(wxb.load(tmp_path / "m.safetensors").predict(X), model.predict(X))
    twin = wxb.interop.to_torch(model).double()
    assert np.allclose(twin(torch.from_numpy(X)).detach().numpy(), want, rtol=1e-12, atol=1e-12)
    assert f"{middle.name} (Dense)" in str(wxb.describe.summary(model))
    ort = pytest.importorskip("onnxruntime")
    from wxb.onnx import export as export_onnx

    export_onnx(model, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: X})
    assert np.allclose(got, want, rtol=1e-10, atol=1e-12)


def test_reversed_scores_unpacked_is_refused_as_scores_unpacked(rng):
    """loss, acc = scores is refused (it gives a dict's keys); acc, loss =
    reversed(scores) gave "accuracy" and "loss" without a word. A loop over
    reversed(scores), or its list, still gives the keys, as a dict's."""
    n, d = int(rng.integers(4, 20)), int(rng.integers(1, 4))
    model = Sequential(Dense(d, 3))
    scores = wxb.evaluate(model, rng.normal(size=(n, d)), rng.integers(0, 3, n))
    with pytest.raises(TypeError, match=r"does not unpack reversed .*return_dict=False\)"):
        _acc, _loss = reversed(scores)
    with pytest.raises(TypeError, match="return_dict=False"):
        _acc, *_rest = reversed(scores)
    assert [name for name in reversed(scores)] == ["accuracy", "loss"] == list(reversed(scores))
