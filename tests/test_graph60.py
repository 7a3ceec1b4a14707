"""Autograd and module-mode corners where wxb parted from PyTorch 2.13, each held to
torch on the same program (or to values derived by hand):

- a recording of ``model.eval()``'s modes (``predict``, ``evaluating()``) nested inside
  another one (a class's own ``eval()``/``train()`` calling another model's predict)
  ended the outer recording: the rest of the outer ``eval()`` set the modules' own
  flags, and the model stayed in eval mode after predict, in every thread;
- ``autograd.grad`` checked the versions of the whole graph, refusing an in-place
  change on a branch it does not walk, which torch's accepts.

Every test draws fresh random inputs; the seed is in the assertion message."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import wxb
from wxb import nn

torch = pytest.importorskip("torch")


def _reference_model(n_in: int) -> nn.Module:
    class Reference(nn.Module):  # a class with a train() of its own: predict records it
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(n_in, 1)

        def forward(self, x):
            return self.lin(x)

        def train(self, mode: bool = True):
            return super().train(mode)

    return Reference()


def _calibrated_model(n_in: int, n_out: int, reference: nn.Module, X_cal: np.ndarray):
    """A model whose own ``train()`` runs another model's predict before setting its
    modes (a calibration read on each switch): a recording inside a recording."""

    class Calibrated(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(n_in, n_out)
            self.drop = nn.Dropout(0.5)
            self.modes_seen: list[tuple[str, bool, bool]] = []

        def forward(self, x):
            here = threading.current_thread().name
            self.modes_seen.append((here, self.training, self.drop.training))
            return self.drop(self.lin(x))

        def train(self, mode: bool = True):
            self.calibration = reference.predict(X_cal)
            return super().train(mode)

    return Calibrated()


def test_predict_inside_a_classes_own_train_leaves_the_model_training(seeded):
    """predict's recording of model.eval() nested a reference model's predict (its own
    recording), which set the thread's recording to None on leaving: the outer class's
    super().train(False) then set the flags on the modules, and the model stayed in eval
    mode after predict (Dropout off in the next training step, unsaid)."""
    rng = seeded.rng
    n_in, n_out, n = (int(k) for k in rng.integers(2, 6, size=3))
    X = rng.standard_normal((n, n_in)).astype(np.float32)
    reference = _reference_model(n_in)
    model = _calibrated_model(n_in, n_out, reference, X)
    out = model.predict(X)
    W, b = model.lin.weight.data, model.lin.bias.data
    np.testing.assert_allclose(out, X @ W.T + b, rtol=1e-5, atol=1e-6, err_msg=seeded.msg("eval"))
    assert model.training and model.drop.training, seeded.msg(
        f"after predict: model.training={model.training}, drop.training={model.drop.training}"
    )
    assert reference.training, seeded.msg("the reference model's mode after its predict")
    assert model.modes_seen == [("MainThread", False, False)], seeded.msg(str(model.modes_seen))


def test_a_thread_predicting_leaves_another_threads_training_mode(seeded):
    """One thread predicts (eval mode, recorded for that thread) while another runs
    training forwards on the same model, whose class has a train() of its own that
    nests a recording: each thread sees its own mode only, in every forward."""
    rng = seeded.rng
    n_in, n_out = (int(k) for k in rng.integers(2, 6, size=2))
    X = rng.standard_normal((int(rng.integers(3, 9)), n_in)).astype(np.float32)
    model = _calibrated_model(n_in, n_out, _reference_model(n_in), X)
    want = X @ model.lin.weight.data.T + model.lin.bias.data
    start, failures = threading.Barrier(2), []

    def predicting() -> None:
        start.wait()
        for _ in range(25):
            out = model.predict(X)
            if not np.allclose(out, want, rtol=1e-5, atol=1e-6):
                failures.append("a prediction with Dropout on")

    def training() -> None:
        start.wait()
        for _ in range(25):
            model(wxb.Tensor(X))

    threads = [
        threading.Thread(target=predicting, name="predicting"),
        threading.Thread(target=training, name="training"),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, seeded.msg(failures[0] if failures else "")
    seen = {(name, training, drop) for name, training, drop in model.modes_seen}
    assert seen == {("predicting", False, False), ("training", True, True)}, seeded.msg(str(seen))
    assert model.training and model.drop.training, seeded.msg("the model's own mode after")


def test_autograd_grad_skips_the_version_check_of_a_branch_it_does_not_walk(seeded):
    """torch.autograd.grad(loss, [x]) runs only the nodes leading to x: a constant read by
    another branch (z ⊙ v, v changed in place since) is not read, so it is accepted; the
    whole graph's check refused it. A changed operand of the walked branch still is."""
    rng = seeded.rng
    shape = tuple(int(k) for k in rng.integers(1, 5, size=2))
    values = {k: rng.standard_normal(shape) for k in ("x", "w", "z", "v")}
    for lib in (wxb, torch):
        leaf = {k: lib.tensor(a.copy(), requires_grad=k in "xz") for k, a in values.items()}
        loss = (leaf["x"] * leaf["w"]).sum() + (leaf["z"] * leaf["v"]).sum()
        with lib.no_grad():
            leaf["v"] += 1.0  # on the branch toward z only
        (got,) = lib.autograd.grad(loss, [leaf["x"]], retain_graph=True)
        told = seeded.msg(str(lib))
        np.testing.assert_allclose(np.asarray(got.detach()), values["w"], err_msg=told)
        with lib.no_grad():
            leaf["w"] += 1.0  # read by the walked branch: refused by both
        with pytest.raises((RuntimeError, wxb.TrainingError), match="modified"):
            lib.autograd.grad(loss, [leaf["x"]])


def test_masked_array_set_as_a_tensors_data_is_refused(seeded):
    """``t.data = np.ma.masked_array(...)`` was taken as it was: 2·t summed the values
    under the mask (208 for [1, --, 3] with 100 hidden, where NumPy's masked sum gives
    8), and its backward gave 2 at the masked entry too. A Parameter's is refused now, as
    Tensor(a) refuses it, naming .data; one with nothing masked is read as its plain array."""
    rng = seeded.rng
    n = int(rng.integers(2, 7))
    values = rng.standard_normal(n)
    hidden = np.zeros(n, bool)
    hidden[rng.integers(n)] = True
    masked = np.ma.masked_array(values, mask=hidden)
    with pytest.raises(wxb.DataError, match=r"masked array with 1 masked entry"):
        wxb.Tensor(masked)
    for t in (nn.Parameter(np.zeros(n)),):  # (a plain tensor's t.data: see tensor._SET_DATA)
        with pytest.raises(wxb.DataError, match=r"\.data: a masked array with 1 masked entry"):
            t.data = masked
        t.data = np.ma.masked_array(values.copy(), mask=np.zeros(n, bool))  # nothing masked
        assert type(t.data) is np.ndarray, seeded.msg(type(t.data).__name__)
        (t * 2.0).sum().backward()
        np.testing.assert_array_equal(t.grad, np.full(n, 2.0), err_msg=seeded.msg("grad"))


def test_clone_detach_in_place_as_torch(seeded):
    """``x.clone().detach_()`` was refused (a result no backward had walked); torch
    allows it, as nothing was computed from the clone. One that an operation took as
    input is still refused (wxb's record would go with it; torch's node keeps it)."""
    values = seeded.rng.standard_normal(tuple(int(k) for k in seeded.rng.integers(1, 5, size=2)))
    for lib in (wxb, torch):
        x = lib.tensor(values.copy(), requires_grad=True)
        c = x.clone().detach_()
        assert not c.requires_grad and c.is_leaf and c.grad_fn is None, seeded.msg(str(lib))
        np.testing.assert_array_equal(np.asarray(c), values, err_msg=seeded.msg(str(lib)))
        (x * c).sum().backward()  # the copy is a constant now
        np.testing.assert_allclose(np.asarray(x.grad), values, err_msg=seeded.msg(str(lib)))
    x = wxb.tensor(values.copy(), requires_grad=True)
    c = x.clone()
    d = c * 2.0
    with pytest.raises(wxb.ConfigError, match=r"detach_\(\) .*took as input"):
        c.detach_()
    assert d.grad_fn is not None and c.requires_grad, seeded.msg("left as it was")


def test_second_backward_after_detach_in_place_refused_not_short(seeded):
    """After a backward, h.detach_() is taken (truncated backpropagation's idiom), but a
    second backward through a graph that saved nothing, which torch's takes on through
    h's old node (x.grad 2 per element), stopped at h in wxb (x.grad 1, unsaid): it is
    refused now. A new graph computed from the detached h trains on."""
    values = seeded.rng.standard_normal(int(seeded.rng.integers(1, 6)))
    x = wxb.tensor(values.copy(), requires_grad=True)
    h = x + 1.0
    loss = (h + 1.0).sum()
    loss.backward()
    h.detach_()
    with pytest.raises(wxb.TrainingError, match="second time"):
        loss.backward()
    np.testing.assert_array_equal(x.grad, np.ones_like(values), err_msg=seeded.msg("once"))
    (h * x).sum().backward()  # the next chunk: h a constant
    np.testing.assert_allclose(x.grad, 1.0 + values + 1.0, err_msg=seeded.msg("next"))


def test_detach_in_place_of_a_result_a_pending_graph_holds_refused_not_short(seeded):
    """loss1 and loss2 computed from h, loss1.backward(), h.detach_(), loss2.backward():
    torch's loss2 goes on through h's old node (x.grad 1 + 3 per element); wxb's record
    of h went with detach_, so loss2's gradient stopped at h (x.grad 1, unsaid). The
    detach_ is refused now, naming the operation that took h."""
    rng = seeded.rng
    values, scale = rng.standard_normal(int(rng.integers(1, 6))), float(rng.uniform(0.5, 3))
    expected = {}
    for lib in (torch, wxb):
        x = lib.tensor(values.copy(), requires_grad=True)
        h = x + 1.0
        loss1, loss2 = h.sum(), (h * scale).sum()
        loss1.backward()
        if lib is torch:
            h.detach_()
            loss2.backward()
            expected = np.asarray(x.grad)
            continue
        with pytest.raises(wxb.ConfigError, match=r"detach_\(\) .*\(⊙\) took as input"):
            h.detach_()
        loss2.backward()  # h's record kept: the gradient goes on to x
        np.testing.assert_allclose(x.grad, expected, rtol=1e-12, err_msg=seeded.msg("loss2"))


def test_a_graph_recorded_after_detach_in_place_walks_twice_as_torchs(seeded):
    """After h.detach_() (truncated backpropagation's chunk), a new graph of nodes that
    save nothing, computed from h, was refused a second backward (wxb took h's old,
    walked record as cut into every later graph); torch walks it again, the gradients
    added."""
    rng = seeded.rng
    values = rng.standard_normal(int(rng.integers(1, 6)))
    weights = rng.standard_normal(values.shape)
    grads = {}
    for lib in (torch, wxb):
        x = lib.tensor(values.copy(), requires_grad=True)
        h = x + 1.0
        h.sum().backward()
        h.detach_()
        w = lib.tensor(weights.copy(), requires_grad=True)
        loss = (h + w).sum()
        loss.backward()
        loss.backward()
        grads[lib] = np.asarray(w.grad)
    np.testing.assert_array_equal(grads[wxb], grads[torch], err_msg=seeded.msg("w.grad"))


# Graphs torch 2.13 lets a second backward walk (no node saved a tensor), and some it
# refuses (MulBackward0 saves the other operand, even a number; relu its result; max
# along a dim its indices; an index array)
_TWICE = {
    "x + 1": (lambda x, w: x + 1.0, True),
    "x - w": (lambda x, w: x - w, True),
    "(x + w).T slice": (lambda x, w: (x + w).T[1:], True),
    "x.reshape + w.sum()": (lambda x, w: x.reshape(-1) + w.sum(), True),
    "-x.mean(0) + w": (lambda x, w: -x.mean(0) + w, True),
    "x * 2": (lambda x, w: x * 2.0, False),
    "x.max(1) + w[:, 0]": (lambda x, w: x.max(1)[0] + w[:, 0], False),  # (its indices)
    "x[[0, 0]] + w": (lambda x, w: x[[0, 0]] + w[:2], False),  # (the index array)
    "x * w": (lambda x, w: x * w, False),
    "relu(x + w)": (lambda x, w: (x + w).relu(), False),
}


@pytest.mark.parametrize("name", list(_TWICE))
def test_second_backward_through_a_graph_that_saved_nothing_as_torch(seeded, name):
    """A second backward (no retain_graph) was refused on every graph; torch's walks a
    graph again where no node saved a tensor, and the gradients add up; where one did,
    both refuse."""
    program, torch_allows = _TWICE[name]
    rng = seeded.rng
    shape = (int(rng.integers(2, 5)), int(rng.integers(2, 5)))
    values = {k: rng.standard_normal(shape) for k in "xw"}
    seed = rng.standard_normal(program(wxb.tensor(values["x"]), wxb.tensor(values["w"])).shape)
    grads = {}
    for lib in (torch, wxb):
        x, w = (lib.tensor(values[k].copy(), requires_grad=True) for k in "xw")
        y = program(x, w)
        y.backward(lib.tensor(seed))
        grads[lib] = [np.array(np.asarray(t.grad)) if t.grad is not None else None for t in (x, w)]
        if not torch_allows:
            with pytest.raises((RuntimeError, wxb.TrainingError), match="second time"):
                y.backward(lib.tensor(seed))
            continue
        y.backward(lib.tensor(seed))
        for first, t in zip(grads[lib], (x, w), strict=True):
            if first is not None:
                again = np.asarray(t.grad)
                np.testing.assert_allclose(again, 2 * first, err_msg=seeded.msg(f"{name}: {lib}"))
    for g_wxb, g_torch in zip(grads[wxb], grads[torch], strict=True):
        assert (g_wxb is None) == (g_torch is None), seeded.msg(f"{name}: which leaves")
        if g_wxb is not None:
            np.testing.assert_allclose(g_wxb, g_torch, rtol=1e-12, err_msg=seeded.msg(name))


def test_frozen_parameter_of_a_buffers_array_keeps_its_memory_as_torch(seeded):
    """``Parameter(bn.running_mean, requires_grad=False)`` took a copy, where torch's
    shares the buffer's memory: after a training forward the parameter still held the
    first running mean (zeros) while torch's followed the buffer."""
    rng = seeded.rng
    n, features = int(rng.integers(2, 9)), int(rng.integers(1, 5))
    X = rng.standard_normal((n, features)).astype(np.float32)
    followed = {}
    for lib in (wxb, torch):
        bn = lib.nn.BatchNorm1d(features)
        frozen = lib.nn.Parameter(bn.running_mean, requires_grad=False)
        bn.train()
        bn(lib.tensor(X))
        followed[lib] = np.array(np.asarray(frozen.data))
        np.testing.assert_array_equal(
            followed[lib], np.asarray(bn.running_mean), err_msg=seeded.msg(str(lib))
        )
    close = {"rtol": 1e-5, "atol": 1e-7}
    mean = 0.1 * X.mean(0)  # momentum 0.1 from a running mean of 0
    np.testing.assert_allclose(followed[wxb], mean, **close, err_msg=seeded.msg("momentum"))
    np.testing.assert_allclose(followed[wxb], followed[torch], **close, err_msg=seeded.msg("torch"))


def _functions(lib):
    """An autograd.Function of each kind: one saving a value it computed
    (save_for_backward), one keeping a number on ctx alone, one of two outputs saving."""

    class Cube(lib.autograd.Function):  # x³, saving 3x² (not an input)
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(3.0 * x * x)
            return x * x * x

        @staticmethod
        def backward(ctx, g):
            (slope,) = ctx.saved_tensors
            return g * slope

    class Scale(lib.autograd.Function):  # x·c, c a number on ctx: nothing saved
        @staticmethod
        def forward(ctx, x, c):
            ctx.c = c
            return x * c

        @staticmethod
        def backward(ctx, g):
            return g * ctx.c, None

    class SquareAndCube(lib.autograd.Function):  # (x², x³), saving 2x and 3x²
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(2.0 * x, 3.0 * x * x)
            return x * x, x * x * x

        @staticmethod
        def backward(ctx, g2, g3):
            two_x, three_x2 = ctx.saved_tensors
            return g2 * two_x + g3 * three_x2

    return {
        "save_for_backward": (lambda x: Cube.apply(x).sum(), False),
        "ctx attribute": (lambda x: Scale.apply(x, 2.5).sum(), True),
        "two outputs": (lambda x: sum(t.sum() for t in SquareAndCube.apply(x)), False),
    }


@pytest.mark.parametrize("kind", ["save_for_backward", "ctx attribute", "two outputs"])
def test_second_backward_through_a_function_that_saved_tensors_refused_as_torchs(seeded, kind):
    """A Function whose forward saved a tensor it computed (save_for_backward(3·x²)) was
    walked a second time (no retain_graph), after an optimiser's step too, adding the
    gradient at the old x from what it saved; torch frees saved tensors at the first
    backward and refuses. One that keeps numbers on ctx alone is walked again by both."""
    values = seeded.rng.uniform(0.5, 2.0, int(seeded.rng.integers(1, 6)))
    grads = {}
    for lib in (torch, wxb):
        program, again = _functions(lib)[kind]
        x = lib.tensor(values.copy(), requires_grad=True)
        loss = program(x)
        loss.backward()
        grads[lib] = np.array(np.asarray(x.grad))
        if again:
            loss.backward()
            np.testing.assert_allclose(np.asarray(x.grad), 2 * grads[lib], err_msg=seeded.msg(kind))
            continue
        with lib.no_grad():
            x.sub_(0.1)  # an optimiser's step between
        with pytest.raises((RuntimeError, wxb.TrainingError), match="second time"):
            loss.backward()
    np.testing.assert_allclose(grads[wxb], grads[torch], rtol=1e-12, err_msg=seeded.msg(kind))
