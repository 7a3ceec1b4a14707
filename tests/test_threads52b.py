"""Follow-ups of test_threads52: an evaluate beside another thread's training of the
same model is of one weight version, as a predict is; refusals of hooked modules name
the hooks there (a pre-hook, a hook)."""

import threading
import time

import numpy as np
import pytest

import wxb
from wxb import train as train_mod
from wxb.errors import ConfigError
from wxb.nn import CrossEntropyLoss, Dense, Sequential, Tanh
from wxb.nn import module as module_mod


def _join(threads, errors, seconds=120):
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors[:3]


def _until(condition, seconds=60):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the other thread never wrote"
        time.sleep(0.001)


def _writer_held_back():
    """Whether a write of weights waits (or is under way): the weight guard's record."""
    return bool(module_mod.WEIGHTS.writers)


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
            _until(lambda: wrote.is_set() or _writer_held_back())
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

    _join([threading.Thread(target=score), threading.Thread(target=train)], errors)
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
