"""Small defects a first-time user hit, each test failing on the code before its fix."""

from __future__ import annotations

import numpy as np
import pytest

import wxb
import wxb.interop
from wxb import nn
from wxb.cli import main
from wxb.errors import ConfigError

torch = pytest.importorskip("torch")

EPS32 = float(np.finfo(np.float32).eps)


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wxb: error: "), err
    return lines[0]


# ---------------------------------------------------------------------------------
# 1. wxb train -o model.pt wrote safetensors bytes under PyTorch's name
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".pt", ".pth", ".pkl", ".h5", ".keras", ".joblib"])
def test_train_refuses_another_formats_name_and_keeps_what_is_there(
    seeded, tmp_path, capsys, suffix
):
    """`wxb train -o model.pt` wrote a safetensors file under a .pt name, which torch.load
    refused ("invalid load key"); now status 2, one line naming the suffix wxb writes,
    and a file already at that path is left byte for byte."""
    rng = seeded.rng
    path = tmp_path / f"model{suffix}"
    held = rng.bytes(int(rng.integers(1, 200)))
    path.write_bytes(held)
    code, out, err = _cli(capsys, "train", "--hidden", "8", "--epochs", "1", "-q", "-o", path)
    line = _one_error_line(err)
    assert code == 2, seeded.msg(err)
    assert "not " in line and f"({suffix})" in line and ".safetensors" in line, line
    assert path.read_bytes() == held, seeded.msg("the file there was changed")
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name], seeded.msg("wrote")
    assert out == ""


def test_export_refuses_a_pytorch_name_for_onnx(seeded, tmp_path, capsys):
    """`wxb export m.safetensors -o m.pt` wrote ONNX under PyTorch's name."""
    rng = seeded.rng
    n = int(rng.integers(2, 6))
    model = wxb.save(nn.Sequential(nn.Linear(n, 2)), tmp_path / "m.safetensors")
    code, _, err = _cli(capsys, "export", model, "-o", tmp_path / "m.pt")
    line = _one_error_line(err)
    assert code == 2 and "writes ONNX" in line and ".onnx" in line, line
    assert not (tmp_path / "m.pt").exists()


# ---------------------------------------------------------------------------------
# 2. Keras's x= for X
# ---------------------------------------------------------------------------------
def test_fit_evaluate_and_predict_take_keras_x(seeded):
    """`wxb.fit(model, x=X, y=y)`, Keras's spelling, raised Python's "missing 1 required
    positional argument: 'X'"; now x= is X: the same run, figures and outputs."""
    rng = seeded.rng
    n, features = int(rng.integers(20, 60)), int(rng.integers(2, 6))
    X = rng.normal(size=(n, features)).astype(np.float32)
    y = rng.integers(0, 3, size=n)
    a = nn.Sequential(nn.Linear(features, 5), nn.ReLU(), nn.Linear(5, 3))
    b = nn.Sequential(nn.Linear(features, 5), nn.ReLU(), nn.Linear(5, 3))
    b.load_state_dict(a.state_dict())
    seed = int(rng.integers(2**31))
    by_position = wxb.fit(a, X, y, epochs=2, seed=seed, verbose=0)
    by_keyword = wxb.fit(b, x=X, y=y, epochs=2, seed=seed, verbose=0)
    assert by_position.history == by_keyword.history, seeded.msg("histories")
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=seeded.msg("weights"))
    assert wxb.evaluate(b, x=X, y=y) == wxb.evaluate(b, X, y)
    np.testing.assert_array_equal(b.predict(x=X), b.predict(X))
    with pytest.raises(ConfigError, match="both given"):
        wxb.fit(b, X, x=X, y=y, epochs=1, verbose=0)
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'X'"):
        wxb.fit(b, y=y)
