"""What a model file records of a model trained in Python, and what the command line does
with it.

- A loss's class weights (CrossEntropyLoss's and NLLLoss's ``weight``, BCEWithLogitsLoss's
  ``pos_weight``) were recorded by name, not value: ``wxb.evaluate`` of the saved model
  scored the loss unweighted with a warning, and ``wxb eval`` silently. Their values are
  recorded now, and both score torch's loss with the same options.
- ``wxb.save(model, "model.pth")`` wrote safetensors under the name torch users
  ``torch.load``: refused now, as ``wxb train -o`` refuses it.
- ONNX export let a forward hook on the model itself through where its sample batches
  showed no change, and refused the same hook on a layer: hooks are refused anywhere now.
- A model file (or a checkpoint of states) with a bit flipped in a weight or in its info
  loaded other values without a word: wxb.save records a digest, and load refuses a file
  that disagrees.
- wxb.save refused an array of one's own on a Dense as one "that a Dense saves".

Figures are compared with torch's on the same outputs in float64 (sums of at most a few
hundred terms: 1e-12 relative)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from cli_run import run

import wxb
import wxb.nn as nn
from wxb.metrics import figure_text

torch = pytest.importorskip("torch")
TOL = dict(rtol=1e-12, atol=1e-14)


def _weighted_case(rng, name: str, width: int):
    """(wxb's loss, torch's twin) with weights and options drawn."""
    w = rng.uniform(0.2, 3.0, width)
    tw = torch.from_numpy(w)
    if name == "cross_entropy":
        smoothing = float(rng.choice([0.0, rng.uniform(0.05, 0.3)]))
        return (
            nn.CrossEntropyLoss(weight=w, label_smoothing=smoothing),
            torch.nn.CrossEntropyLoss(weight=tw, label_smoothing=smoothing),
        )
    if name == "nll":
        ignored = int(rng.integers(width))  # a class's rows count for nothing
        return (
            nn.NLLLoss(weight=w, ignore_index=ignored),
            torch.nn.NLLLoss(weight=tw, ignore_index=ignored),
        )
    p = rng.uniform(0.2, 5.0, 1)
    return nn.BCEWithLogitsLoss(pos_weight=p), torch.nn.BCEWithLogitsLoss(
        pos_weight=torch.from_numpy(p)
    )


@pytest.mark.parametrize("name", ["cross_entropy", "nll", "bce_with_logits"])
def test_saved_class_weights_are_scored_by_evaluate_and_wxb_eval(seeded, name, tmp_path, capsys):
    """fit(loss=CrossEntropyLoss(weight=w, label_smoothing=s)) (NLLLoss's weight and
    ignore_index, BCEWithLogitsLoss's pos_weight), saved and loaded: wxb.evaluate and wxb
    eval gave the unweighted loss (evaluate with a warning, wxb eval without a word). Both
    now give torch's loss with the same options on the loaded model's outputs."""
    rng = seeded.rng
    rows, n = int(rng.integers(20, 60)), int(rng.integers(1, 4))
    width = 1 if name == "bce_with_logits" else int(rng.integers(2, 5))
    X = rng.normal(size=(rows, n))
    if name == "bce_with_logits":
        y = rng.integers(0, 2, (rows, 1)).astype(np.float64)
    else:
        y = rng.permutation(np.arange(rows) % width)  # every class present
    loss, twin = _weighted_case(rng, name, width)
    msg = lambda what: seeded.msg(f"{what}, {loss!r}")  # noqa: E731
    layers = [nn.Linear(n, 5), nn.Tanh(), nn.Linear(5, width)]
    if name == "nll":
        layers.append(nn.LogSoftmax(dim=1))
    model = nn.Sequential(*layers).to("float64")
    wxb.fit(model, X, y, loss=loss, epochs=int(rng.integers(1, 3)), batch_size=8, verbose=0)
    path = tmp_path / "model.safetensors"
    wxb.save(model, path)
    loaded = wxb.load(path)
    out = torch.from_numpy(loaded.predict(X))
    t = torch.from_numpy(y)
    want = float(twin(out, t))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn of: the loss is training's
        scores = wxb.evaluate(loaded, X, y)
    np.testing.assert_allclose(scores["loss"], want, **TOL, err_msg=msg("evaluate"))
    data = tmp_path / "data.csv"
    pd.DataFrame({**{f"x{k}": X[:, k] for k in range(n)}, "y": y.reshape(rows)}).to_csv(
        data, index=False
    )
    code, text, err = run(capsys, "eval", path, data, "--target", "y")
    assert code == 0, msg(err)
    X_read = pd.read_csv(data)[[f"x{k}" for k in range(n)]].to_numpy(np.float64)
    want = float(twin(torch.from_numpy(loaded.predict(X_read)), t))
    assert f"loss {figure_text(want)}," in text.splitlines()[0], msg(text.splitlines()[0])


# -- 2. wxb.save under PyTorch's (and other tools') names -------------------------------
@pytest.mark.parametrize("suffix", [".pth", ".pt", ".PTH", ".pkl", ".h5", ".bin", ".npz"])
def test_save_refuses_another_formats_name_and_load_stays_by_content(seeded, suffix, tmp_path):
    """wxb.save(model, "model.pth") wrote safetensors bytes under the name torch users
    torch.load, which refused them ("invalid load key") long after; wxb train -o refused
    such names already. wxb.save refuses them too, in one line naming the suffix and
    .safetensors, writing nothing (a torch file there stays as it was); wxb.load goes by
    the bytes: a real torch.save file is named as one, a wxb file an earlier wxb wrote
    under such a name still loads, equal."""
    rng = seeded.rng
    n, width = int(rng.integers(1, 5)), int(rng.integers(1, 4))
    model = nn.Sequential(nn.Linear(n, 3), nn.ReLU(), nn.Linear(3, width))
    path = tmp_path / f"model{suffix}"
    for saved in (model, {"model": model.state_dict(), "epoch": 1}):
        with pytest.raises(wxb.errors.ConfigError) as caught:
            wxb.save(saved, path)
        message = str(caught.value)
        assert "\n" not in message and f"({suffix.lower()})" in message, seeded.msg(message)
        assert "name the file .safetensors" in message, seeded.msg(message)
        assert list(tmp_path.iterdir()) == [], seeded.msg(str(list(tmp_path.iterdir())))
    # a real torch.save file there: never overwritten, and wxb.load names it
    torch.save({"w": torch.zeros(2)}, path)
    before = path.read_bytes()
    with pytest.raises(wxb.errors.ConfigError):
        wxb.save(model, path)
    assert path.read_bytes() == before, seeded.msg("overwritten")
    with pytest.raises(wxb.errors.ModelFileError, match="PyTorch") as caught:
        wxb.load(path)
    assert "\n" not in str(caught.value), seeded.msg(str(caught.value))
    # a wxb file under such a name (an earlier wxb wrote it): read by its bytes
    good = tmp_path / "model.safetensors"
    wxb.save(model, good)
    path.write_bytes(good.read_bytes())
    X = rng.normal(size=(int(rng.integers(1, 6)), n)).astype(np.float32)
    np.testing.assert_array_equal(wxb.load(path).predict(X), model.eval().predict(X))


# -- 3. ONNX export and forward hooks ----------------------------------------------------
class _Chained(nn.Module):
    """A forward of one's own that only chains its layers (export follows it)."""

    def __init__(self, n: int, h: int, c: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Linear(n, h), nn.Tanh())
        self.head = nn.Linear(h, c)

    def forward(self, x):
        return self.head(self.block(x))


def _hook(kind: str):
    """A forward hook (or pre-hook) that leaves the output alone or changes it, the
    latter only for batches over 20 rows (a sample batch of a few rows sees none)."""
    if kind == "no-op":
        return "forward", lambda module, inputs, output: None
    if kind == "changes":
        return (
            "forward",
            lambda module, inputs, output: output * 2 if output.shape[0] > 20 else None,
        )
    if kind == "pre no-op":
        return "pre", lambda module, inputs: None
    return "pre", lambda module, inputs: (inputs[0] * 2,) if inputs[0].shape[0] > 20 else None


@pytest.mark.parametrize("kind", ["no-op", "changes", "pre no-op", "pre changes"])
@pytest.mark.parametrize("shape", ["sequential", "own forward"])
def test_onnx_export_refuses_forward_hooks_on_the_model_as_on_its_layers(
    seeded, kind, shape, tmp_path
):
    """A hook on the model itself was exported where its sample batches showed it change
    nothing, while the same hook on a layer was refused: one returning o * 2 for batches
    over 20 rows was dropped, and onnxruntime gave half the model's outputs without a
    word. Hooks anywhere (the model, a nested block, a layer) are refused now, as wxb.save
    and to_torch refuse them, naming where; removed, the export runs and agrees."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import wxb.onnx

    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 6, size=3))
    if shape == "sequential":
        model = nn.Sequential(nn.Linear(n, h), nn.Tanh(), nn.Linear(h, c))
    else:
        model = _Chained(n, h, c)
    path = tmp_path / "m.onnx"
    for where, module in model.named_modules():  # the model itself ("") first
        which, hook = _hook(kind)
        if which == "forward":
            handle = module.register_forward_hook(hook)
        else:
            handle = module.register_forward_pre_hook(hook)
        with pytest.raises(wxb.errors.ConfigError) as caught:
            wxb.onnx.export(model, path)
        message = str(caught.value)
        named = "the model itself" if where == "" else f"module {where!r}"
        assert named in message and "would not run" in message, seeded.msg(f"{where}: {message}")
        assert "\n" not in message and list(tmp_path.iterdir()) == [], seeded.msg(message)
        handle.remove()
    wxb.onnx.export(model, path)
    X = rng.normal(size=(int(rng.integers(21, 40)), n)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: X})
    want = model.predict(X)
    # float32 through two layers of at most 5 terms each: a few roundings of the outputs
    tol = 64 * np.finfo(np.float32).eps * (1 + np.abs(want).max())
    np.testing.assert_allclose(got, want, atol=tol, err_msg=seeded.msg("onnxruntime"))


# -- 4. damaged files --------------------------------------------------------------------
def _trained(rng):
    """A float32 or float64 model with BatchNorm statistics, a tied and a frozen layer."""
    n, h, c = (int(v) for v in rng.integers(2, 6, size=3))
    first, tied = nn.Linear(n, h), nn.Linear(h, h)
    model = nn.Sequential(first, nn.BatchNorm1d(h), nn.ReLU(), tied, nn.Tanh(), tied,
                          nn.Linear(h, c))  # fmt: skip
    model.to(str(rng.choice(["float32", "float64"])))
    X = rng.normal(size=(4 * int(rng.integers(2, 8)), n))  # (BatchNorm: no batch of one)
    y = rng.integers(0, c, len(X)) if c > 1 else rng.normal(size=(len(X), 1))
    loss = "cross_entropy" if c > 1 else "mse"
    wxb.fit(model, X, y, loss=loss, epochs=1, batch_size=4, verbose=0)
    first.weight.requires_grad = False
    if c > 1:
        model.info["classes"] = [f"class {k}" for k in range(c)]
    return model.eval(), X


def test_a_damaged_model_file_is_refused_in_one_line_never_loaded(seeded, tmp_path):
    """A model file cut short anywhere was refused; one with a bit flipped in a weight, or
    in the info's text (a class name), loaded a different model without a word (341 and
    57 of 3,000 random flips). wxb.save records a digest of the header and the tensors:
    every flip that changes what the file says is refused in one line naming the file,
    and an intact copy loads equal to the model."""
    rng = seeded.rng
    model, X = _trained(rng)
    path = wxb.save(model, tmp_path / "m.safetensors")
    good = path.read_bytes()
    (length,) = np.frombuffer(good[:8], "<u8")
    bad = tmp_path / "bad.safetensors"
    cuts = rng.integers(0, len(good), 20)
    # flips: in the tensors, in the header's JSON, and in the info's text
    info_at = good.index(b"class 0") if b"class 0" in good else 8 + int(length) // 2
    spots = [*rng.integers(8 + int(length), len(good), 20), *rng.integers(8, 8 + int(length), 20),
             info_at + 6]  # fmt: skip
    damaged = [good[:cut] for cut in cuts]
    for spot in spots:
        flipped = bytearray(good)
        flipped[spot] ^= 1 << int(rng.integers(8))
        damaged.append(bytes(flipped))
    for data in damaged:
        bad.write_bytes(data)
        try:
            loaded = wxb.load(bad)
        except wxb.errors.ModelFileError as caught:
            assert "\n" not in str(caught) and str(bad) in str(caught), seeded.msg(str(caught))
            continue
        # (a flip JSON reads the same: whitespace in the header's padding)
        assert loaded.info == model.info, seeded.msg("a changed info loaded")
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X), seeded.msg("loaded"))
    back = wxb.load(path)
    np.testing.assert_array_equal(back.predict(X), model.predict(X), seeded.msg("intact"))


@pytest.mark.parametrize("persistent", [True, False])
def test_an_array_of_ones_own_on_a_stock_layer_is_refused_saying_so(seeded, persistent, tmp_path):
    """A buffer of one's own on a Dense (register_buffer("extra", …)) was refused with "it
    holds arrays ['extra'] that a Dense saves", the opposite of why: a Dense has no such
    array, so no file rebuilds it."""
    rng = seeded.rng
    layer = nn.Linear(int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    layer.register_buffer("extra", rng.normal(size=3), persistent=persistent)
    with pytest.raises(wxb.errors.ConfigError) as caught:
        wxb.save(nn.Sequential(layer), tmp_path / "m.safetensors")
    message = str(caught.value)
    assert "['extra'] that a Dense does not have" in message, seeded.msg(message)
    assert list(tmp_path.iterdir()) == [], seeded.msg("written")


def test_a_damaged_checkpoint_of_states_is_refused_in_one_line(seeded, tmp_path):
    """wxb.save of a dict (torch.save's checkpoint: state_dicts, an epoch) with a bit
    flipped in an optimiser's moment or a weight loaded other values without a word (371
    of 2,000 random flips); its digest now refuses it, and an intact copy reads back."""
    rng = seeded.rng
    model, X = _trained(rng)
    optimizer = wxb.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    (model(X) ** 2).mean().backward()
    optimizer.step()
    checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3}
    path = wxb.save(checkpoint, tmp_path / "ckpt.safetensors")
    good = path.read_bytes()
    (length,) = np.frombuffer(good[:8], "<u8")
    bad = tmp_path / "bad.safetensors"
    for spot in rng.integers(8 + int(length), len(good), 20):  # in the tensors
        flipped = bytearray(good)
        flipped[spot] ^= 1 << int(rng.integers(8))
        bad.write_bytes(bytes(flipped))
        with pytest.raises(wxb.errors.ModelFileError, match="digest") as caught:
            wxb.load(bad)
        assert "\n" not in str(caught.value), seeded.msg(str(caught.value))
    back = wxb.load(path)
    for key, array in checkpoint["model"].items():
        np.testing.assert_array_equal(back["model"][key], array, seeded.msg(key))
    assert back["epoch"] == 3
