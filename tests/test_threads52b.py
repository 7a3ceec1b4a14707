"""Follow-ups of test_threads52: an evaluate beside another thread's training of the
same model is of one weight version, as a predict is; refusals of hooked modules name
the hooks there (a pre-hook, a hook); a loss's repr says what weight it holds."""

import threading

import numpy as np
import pytest
import thread_runs as runs

import wxb
from wxb import train as train_mod
from wxb.errors import ConfigError
from wxb.nn import CrossEntropyLoss, Dense, Sequential, Tanh


# -- evaluate beside another thread's step --------------------------------------------------
@pytest.mark.parametrize("rows", ["dense", "sparse"])
@pytest.mark.parametrize("write", ["step", "load_state_dict"])
def test_an_evaluate_while_another_thread_writes_the_weights_is_of_one_version(
    seeded, monkeypatch, rows, write
):
    """evaluate read the weights chunk by chunk (each chunk's call a read of its own,
    sparse rows' planned product none at all): another thread's optimiser step (or
    load_state_dict) between two chunks gave a loss and accuracy of the first chunks at
    the old weights and the rest at the new, figures of no weights, without a word. Now
    the write waits for the whole evaluate, whose figures equal a sequential evaluate's
    at one of the two versions."""
    import scipy.sparse

    rng = seeded.rng
    seed = int(rng.integers(1 << 20))
    model = Sequential(Dense(6, 9, seed=seed), Tanh(), Dense(9, 4, seed=seed + 1)).to("float64")
    n = int(rng.integers(12, 40))
    batch = int(rng.integers(2, n // 2 + 1))  # two chunks at least: the pause between them
    X, y = rng.normal(size=(n, 6)) * 2, rng.integers(0, 4, n)
    given = X if rows == "dense" else scipy.sparse.csr_matrix(X * (rng.random(X.shape) < 0.6))
    opt = wxb.optim.SGD(model.parameters(), lr=float(rng.uniform(0.5, 1.0)))
    names = list(model.state_dict())
    other = [w + rng.normal(size=w.shape) for w in model.state_dict().values()]

    def evaluate():
        return wxb.evaluate(model, given, y, loss="cross_entropy", batch_size=batch)

    before = evaluate()  # (sequential: the figures at the first version)
    if write == "step":
        CrossEntropyLoss()(model(rng.normal(size=(16, 6))), rng.integers(0, 4, 16)).backward()

    armed, paused, wrote = [None], threading.Event(), threading.Event()
    batch_total = train_mod._batch_total

    def paused_total(*args, **kwargs):  # after the first chunk, before the second
        if threading.get_ident() == armed[0] and not paused.is_set():
            paused.set()
            runs.until(lambda: wrote.is_set() or runs.writer_waiting())
        return batch_total(*args, **kwargs)

    monkeypatch.setattr(train_mod, "_batch_total", paused_total)
    got, errors = [], []

    def score():
        try:
            armed[0] = threading.get_ident()
            got.append(evaluate())
        except Exception as error:  # an assertion in a thread would be lost
            errors.append(repr(error))

    def train():
        try:
            assert paused.wait(60)
            if write == "step":
                opt.step()
            else:
                model.load_state_dict(dict(zip(names, other, strict=True)))
        except Exception as error:
            errors.append(repr(error))
        finally:
            wrote.set()

    runs.join_all([threading.Thread(target=score), threading.Thread(target=train)], errors)
    monkeypatch.undo()
    after = evaluate()
    assert abs(before["loss"] - after["loss"]) > 1e-6, seeded.msg("the write changed nothing")
    assert set(got[0]) == {"loss", "accuracy"}
    same = [
        all(np.isclose(got[0][key], want[key], rtol=1e-12, atol=0) for key in want)
        for want in (before, after)
    ]
    assert any(same), seeded.msg(
        f"evaluate gave {got[0]}, of no weight version: {before} before the {write}, "
        f"{after} after it ({batch} rows a chunk of {n})"
    )


# -- refusals of hooked modules ------------------------------------------------------------
_HOOKS = {  # (forward pre-hooks, forward hooks) → the words, the pronoun
    (1, 0): ("a forward pre-hook", "it"),
    (0, 1): ("a forward hook", "it"),
    (1, 1): ("a forward pre-hook and a forward hook", "them"),
    (2, 0): ("2 forward pre-hooks", "them"),
    (0, 3): ("3 forward hooks", "them"),
}


def _hooked(module, pre, post):
    """Hooks that change what the module computes (a model's own hooks that change
    nothing are exported as the layers they chain)."""
    for _ in range(pre):
        module.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
    for _ in range(post):
        module.register_forward_hook(lambda m, args, out: out * 2)


@pytest.mark.parametrize("counts", list(_HOOKS))
@pytest.mark.parametrize("where", ["onnx", "save", "to_torch"])
def test_a_refusal_of_a_hooked_module_names_the_hooks_it_holds(seeded, tmp_path, counts, where):
    """ONNX export (and wxb.save, to_torch) refused a module holding a forward pre-hook
    alone with "it has forward hooks": a user looked for forward hooks and found none
    (register_forward_pre_hook's, torch's name). Now it names what is there."""
    from wxb import interop

    rng = seeded.rng
    model = wxb.nn.Sequential(wxb.nn.Dense(3, 4), wxb.nn.ReLU(), wxb.nn.Dense(4, 2))
    index = int(rng.integers(-1, len(model)))
    target = model if index < 0 else model[index]
    _hooked(target, *counts)
    words, them = _HOOKS[counts]
    if where == "onnx":
        pytest.importorskip("onnx")
        from wxb import onnx as wxb_onnx

        call, runs = (
            lambda: wxb_onnx.export(model, tmp_path / "m.onnx"),
            "the ONNX graph would not run",
        )
    elif where == "save":
        call, runs = lambda: wxb.save(model, tmp_path / "m.safetensors"), "the file would not keep"
    else:
        call, runs = lambda: interop.to_torch(model), "the PyTorch twin would not run"
    with pytest.raises(ConfigError) as refused:
        call()
    message = str(refused.value)
    assert f"it has {words}, which {runs}" in message, seeded.msg(message)
    assert f"remove {them} first" in message and "\n" not in message, seeded.msg(message)
    assert not list(tmp_path.iterdir()), seeded.msg("a file was written")


@pytest.mark.parametrize("counts", list(_HOOKS))
def test_from_torch_names_the_hooks_a_torch_module_holds(seeded, counts):
    """from_torch said "forward hooks" of a torch module holding a pre-hook alone (a
    pruned Linear's, or one's own): it now names the pre-hook, as torch registers it."""
    torch = pytest.importorskip("torch")
    from wxb import interop

    rng = seeded.rng
    seq = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    index = int(rng.integers(0, len(seq)))
    _hooked(seq[index], *counts)
    words, them = _HOOKS[counts]
    assert (len(seq[index]._forward_pre_hooks), len(seq[index]._forward_hooks)) == counts
    with pytest.raises(ConfigError) as refused:
        interop.from_torch(seq)
    message = str(refused.value)
    assert f"it has {words}, which wxb would not run (remove {them} first)" in message, seeded.msg(
        message
    )


# -- the weight a loss holds, in its repr --------------------------------------------------
def _loss_case(rng, name, n, c):
    """(wxb's loss built with a weight, torch's, the weight's keyword, its value, the
    inputs): each weight drawn positive, of the shape torch takes."""
    import torch

    logits = rng.normal(size=(n, c)) * 2
    labels = rng.integers(0, c, n)
    bits = (rng.random((n, c)) < 0.5).astype(np.float64)
    per_class = rng.uniform(0.2, 3.0, c)
    if name == "CrossEntropyLoss":
        return "weight", per_class, logits, labels, {}
    if name == "NLLLoss":
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return "weight", per_class, logp, labels, {}
    if name == "MultiMarginLoss":
        return "weight", per_class, logits, labels, {"p": int(rng.integers(1, 3))}
    if name == "MultiLabelSoftMarginLoss":
        return "weight", per_class, logits, bits, {}
    if name == "BCEWithLogitsLoss pos_weight":
        return "pos_weight", per_class, logits, bits, {}
    shape = (n, c) if rng.random() < 0.5 else (c,)  # an element's weight, or a column's
    w = rng.uniform(0.2, 3.0, shape)
    if name == "BCEWithLogitsLoss weight":
        return "weight", w, logits, bits, {}
    return "weight", w, torch.sigmoid(torch.tensor(logits)).numpy(), bits, {}  # BCELoss


_WEIGHTED = [
    "CrossEntropyLoss",
    "NLLLoss",
    "MultiMarginLoss",
    "MultiLabelSoftMarginLoss",
    "BCEWithLogitsLoss pos_weight",
    "BCEWithLogitsLoss weight",
    "BCELoss",
]


@pytest.mark.parametrize("name", _WEIGHTED)
def test_a_loss_repr_says_what_weight_it_holds_and_nothing_of_one_not_given(seeded, name):
    """MultiMarginLoss and MultiLabelSoftMarginLoss showed ``weight=None`` when given none
    (the other losses, and torch's repr, say nothing) and ``weight=array([...])`` when
    given one (a name the repr cannot be read back with; the others show a list);
    BCELoss showed no weight at all, a weighted loss looking like a plain one; and
    BCEWithLogitsLoss flattened an (N, C) weight. The repr now gives the weight held as
    a list in its shape: the loss it spells computes torch's weighted loss."""
    torch = pytest.importorskip("torch")

    rng = seeded.rng
    n, c = int(rng.integers(2, 9)), int(rng.integers(2, 6))
    key, w, x, y, options = _loss_case(rng, name, n, c)
    cls = name.split()[0]
    plain = getattr(wxb.nn, cls)(**options)
    assert "weight" not in repr(plain) and "None" not in repr(plain), seeded.msg(repr(plain))
    given = {key: w if rng.random() < 0.5 else torch.tensor(w), **options}
    ours = getattr(wxb.nn, cls)(**given)
    shown = repr(ours)
    assert f"{key}={np.asarray(w).tolist()!r}" in shown, seeded.msg(shown)
    rebuilt = eval(shown, {cls: getattr(wxb.nn, cls)})  # the loss the repr spells
    theirs = getattr(torch.nn, cls)(**{key: torch.tensor(w), **options})
    target = torch.tensor(y)
    want = theirs(torch.tensor(x), target).item()
    for loss in (ours, rebuilt):
        got = loss(wxb.tensor(x, dtype="float64"), y).item()
        # float64 sums of at most 45 terms of order 10: a few ulps of the value
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=seeded.msg(shown))


# -- ONNX export beside another thread's step -----------------------------------------------
@pytest.mark.parametrize("write", ["step", "load_state_dict"])
def test_an_onnx_export_while_another_thread_writes_the_weights_is_of_one_version(
    seeded, monkeypatch, tmp_path, write
):
    """ONNX export read each layer's arrays as it wrote the layer's nodes: another
    thread's step between two layers gave a graph of the first layer's old W and the
    second's new, which onnxruntime ran as a model of no weights. Now the step waits for
    the export; the graph's outputs are the model's at one version (NumPy, float64)."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from wxb import onnx as wxb_onnx

    rng = seeded.rng
    seed = int(rng.integers(1 << 20))
    model = Sequential(Dense(6, 9, seed=seed), Tanh(), Dense(9, 4, seed=seed + 1)).to("float64")
    X = rng.normal(size=(int(rng.integers(1, 9)), 6))
    opt = wxb.optim.SGD(model.parameters(), lr=float(rng.uniform(0.5, 1.0)))
    names = list(model.state_dict())
    other = [w + rng.normal(size=w.shape) for w in model.state_dict().values()]
    before = list(model.state_dict().values())
    if write == "step":
        CrossEntropyLoss()(model(rng.normal(size=(16, 6))), rng.integers(0, 4, 16)).backward()

    armed, paused, wrote, calls = [None], threading.Event(), threading.Event(), [0]
    layer = wxb_onnx._Graph._layer

    def paused_layer(self, *args, **kwargs):  # the first Dense written, the second not yet
        if threading.get_ident() == armed[0]:
            calls[0] += 1
            if calls[0] == 2:
                paused.set()
                runs.until(lambda: wrote.is_set() or runs.writer_waiting())
        return layer(self, *args, **kwargs)

    monkeypatch.setattr(wxb_onnx._Graph, "_layer", paused_layer)
    errors = []
    path = tmp_path / "m.onnx"

    def export():
        try:
            armed[0] = threading.get_ident()
            wxb_onnx.export(model, path)
        except Exception as error:
            errors.append(repr(error))

    def train():
        try:
            assert paused.wait(60)
            if write == "step":
                opt.step()
            else:
                model.load_state_dict(dict(zip(names, other, strict=True)))
        except Exception as error:
            errors.append(repr(error))
        finally:
            wrote.set()

    runs.join_all([threading.Thread(target=export), threading.Thread(target=train)], errors)
    after = list(model.state_dict().values())
    session = ort.InferenceSession(str(path))
    out = session.run(None, {session.get_inputs()[0].name: X})[0]
    wants = [np.tanh(X @ w1.T + b1) @ w2.T + b2 for w1, b1, w2, b2 in (before, after)]
    assert np.max(np.abs(wants[0] - wants[1])) > 1e-4, seeded.msg("the versions agree")
    close = [np.allclose(out, want, rtol=1e-9, atol=1e-9) for want in wants]
    assert any(close), seeded.msg(
        f"the exported graph is of no weight version (nearest off by "
        f"{min(np.max(np.abs(out - w)) for w in wants):.3g})"
    )
