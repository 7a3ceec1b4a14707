"""Small leftovers: Softmax()/LogSoftmax() without dim on inputs of 3 or more dimensions
(torch's implicit axis is not the last there), the functional refusal's named axis, and
the ONNX export / to_torch refusal of a module of one's own inside a Sequential.

Inputs are drawn fresh on every run (``WXB_TEST_SEED=<seed>`` replays one)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import wxb
from wxb.errors import ConfigError
from wxb.nn import Dense, LayerNorm, LogSoftmax, Module, ReLU, Sequential, Softmax, Tanh

torch = pytest.importorskip("torch")

_TWINS = {"Softmax": (Softmax, torch.softmax), "LogSoftmax": (LogSoftmax, torch.log_softmax)}


def _torch_implicit_dim(kind: str, x: np.ndarray) -> int:
    """The axis torch's nn.Softmax() (no dim, deprecated) runs over, found from its numbers
    (every axis at least 2 long, so each gives others)."""
    t = torch.from_numpy(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # its deprecation warning
        got = getattr(torch.nn, kind)()(t).numpy()
    dims = [d for d in range(x.ndim) if np.allclose(got, _TWINS[kind][1](t, d).numpy())]
    assert len(dims) == 1, dims
    return dims[0]


@pytest.mark.parametrize("kind", ["Softmax", "LogSoftmax"])
def test_softmax_without_dim_refuses_inputs_of_3_or_more_dims_and_keeps_rows(seeded, kind):
    """nn.Softmax() of a (N, C, L) tensor ran over L in wxb, where PyTorch's runs over N
    (dim 0 for 3 dims, dim 1 for 4): other numbers without a word. Now it asks for dim=
    in one line naming the layer and torch's axis; dim=-1 gives the last axis as torch's,
    and a vector or a (B, C) batch keeps torch's numbers. Fails on the old code (no
    refusal)."""
    rng = seeded.rng
    ours, theirs = _TWINS[kind]
    for ndim in (3, 4):
        shape = tuple(int(n) for n in rng.integers(2, 6, size=ndim))
        x = rng.normal(size=shape) * 3
        implicit = _torch_implicit_dim(kind, x)
        with pytest.raises(ConfigError) as caught:
            ours()(wxb.Tensor(x))
        message = str(caught.value)
        assert f"{kind}() of a tensor of {ndim} dimensions needs dim=" in message, message
        assert f"implicit choice there is dim {implicit}" in message, seeded.msg(message)
        assert "\n" not in message
        model = Sequential(LayerNorm(shape[-1]), ours()).double().eval()
        with pytest.raises(ConfigError, match=f"{kind}\\(\\) of a tensor of {ndim} dim"):
            model(x)
        np.testing.assert_allclose(  # the axis said: computed, as torch's
            ours(dim=-1)(wxb.Tensor(x)).data,
            theirs(torch.from_numpy(x), -1).numpy(),
            rtol=1e-12,
            atol=1e-12,
            err_msg=seeded.msg(kind),
        )
    for ndim in (1, 2):  # torch's implicit axis is the last one here: the same numbers
        x = rng.normal(size=tuple(int(n) for n in rng.integers(2, 6, size=ndim))) * 3
        implicit = _torch_implicit_dim(kind, x)
        assert implicit == ndim - 1
        np.testing.assert_allclose(
            ours()(wxb.Tensor(x)).data,
            theirs(torch.from_numpy(x), implicit).numpy(),
            rtol=1e-12,
            atol=1e-12,
            err_msg=seeded.msg(kind),
        )


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_functional_softmax_refusal_names_torchs_implicit_dim(seeded, name):
    """F.softmax(x) of a 4-D tensor was refused saying torch's implicit choice was dim 0;
    torch's is dim 1 there (dim 0 for 3 dims). Fails on the old code (it said dim 0)."""
    rng = seeded.rng
    F = wxb.nn.functional
    kind = {"softmax": "Softmax", "log_softmax": "LogSoftmax"}[name]
    for ndim in (3, 4, 5):
        x = rng.normal(size=tuple(int(n) for n in rng.integers(2, 5, size=ndim)))
        implicit = _torch_implicit_dim(kind, x)
        with pytest.raises(ConfigError) as caught:
            getattr(F, name)(wxb.Tensor(x))
        assert f"implicit choice there is dim {implicit}," in str(caught.value), seeded.msg(
            str(caught.value)
        )


class _Block(Module):
    """A module of one's own whose forward only chains stock layers."""

    def __init__(self, n: int, h: int) -> None:
        super().__init__()
        self.fc = Dense(n, h)
        self.act = Tanh()

    def forward(self, x):
        return self.act(self.fc(x))


class _Wrap(Module):
    """The way the refusal gives: the model a module of one's own calling the Sequential."""

    def __init__(self, seq: Sequential) -> None:
        super().__init__()
        self.seq = seq

    def forward(self, x):
        return self.seq(x)


def test_a_chaining_module_inside_a_sequential_is_refused_with_a_true_reason(seeded, tmp_path):
    """Sequential(Block(), Dense) with Block's forward only chaining stock layers was
    refused by ONNX export saying "(nor one whose forward only chains stock layers)", and
    by to_torch saying such a module "would be" converted: both false for it. Now each
    says that a module of one's own is not read inside a Sequential and how to export it;
    following that gives the model's numbers in onnxruntime and in torch. Fails on the old
    code (its messages)."""
    ort = pytest.importorskip("onnxruntime")
    import wxb.interop
    import wxb.onnx

    rng = seeded.rng
    n, h, out = (int(v) for v in rng.integers(2, 7, size=3))
    seq = Sequential(_Block(n, h), ReLU(), Dense(h, out)).double()
    X = rng.normal(size=(int(rng.integers(1, 9)), n))
    with pytest.raises(ConfigError) as caught:
        wxb.interop.to_torch(seq)
    message = str(caught.value)
    assert "_Block" in message and "inside a Sequential" in message, message
    assert "whose forward to_torch does not read" in message, message
    assert "only chains stock layers" not in message, message
    assert "\n" not in message
    # (export traces a module of one's own inside a Sequential since onnx61)
    path = wxb.onnx.export(seq, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: X})[0]
    np.testing.assert_allclose(
        got, seq.predict(X), rtol=1e-12, atol=1e-12, err_msg=seeded.msg("onnx seq")
    )

    model = _Wrap(seq)  # as the message says
    expected = seq.predict(X)
    path = wxb.onnx.export(model, tmp_path / "w.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: X})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=seeded.msg("onnx"))
    twin = wxb.interop.to_torch(model)
    with torch.no_grad():
        theirs = twin(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(theirs, expected, rtol=1e-12, atol=1e-12, err_msg=seeded.msg("pt"))
