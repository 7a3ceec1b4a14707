"""Hooks on gradients and custom autograd Functions, as a PyTorch user extends a model
with them, held to PyTorch on the same float64 weights: ``Tensor.register_hook`` on
activations, leaves and parameters (a planned Sequential's fit runs the graph then),
and Functions with several outputs, non-tensor arguments, None gradients,
``needs_input_grad``, ``mark_non_differentiable``, ``set_materialize_grads(False)``,
``setup_context`` and ``once_differentiable``.

Every test draws fresh random inputs; the seed is in the assertion message."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import wxb

torch = pytest.importorskip("torch")

RTOL = 1e-9  # float64 on both sides: a few roundings per operation, far below this


def _functions(lib):
    """The Functions of the generated models, on ``lib``'s base class (wxb's or torch's)."""
    base = lib.autograd.Function
    once = wxb.autograd.once_differentiable
    if lib is torch:
        from torch.autograd.function import once_differentiable as once

    class Square(base):  # save_for_backward, needs_input_grad
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        @once
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 2 * x if ctx.needs_input_grad[0] else None

    class Split(base):  # two outputs, a number and a constant tensor among the inputs
        @staticmethod
        def forward(ctx, x, c, k):
            ctx.save_for_backward(x, c)
            ctx.k = k
            return x * k + c, (x * c).tanh()

        @staticmethod
        def backward(ctx, g1, g2):
            x, c = ctx.saved_tensors
            t = (x * c).tanh()
            gx = g1 * ctx.k + g2 * (1 - t * t) * c
            return gx, None, None  # (c needs none: a constant here)

    class Lazy(base):  # set_materialize_grads(False): None for an output no one used
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            ctx.save_for_backward(x)
            return x * 3.0, x * x

        @staticmethod
        def backward(ctx, g1, g2):
            (x,) = ctx.saved_tensors
            out = g1 * 3.0 if g1 is not None else x * 0
            return out + (g2 * 2 * x if g2 is not None else 0)

    class Masked(base):  # a second output marked non-differentiable
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            mask = (x * 0 + 1).clamp(0, 1) * 0.5
            ctx.mark_non_differentiable(mask)
            return x.clamp(-1.5, 1.5), mask

        @staticmethod
        def backward(ctx, g, g_mask):
            (x,) = ctx.saved_tensors
            if lib is torch:
                return g * ((x > -1.5) & (x < 1.5)).double()
            inside = (x.data > -1.5) & (x.data < 1.5)
            return g * wxb.tensor(inside.astype(np.float64), dtype="float64")

    return {"square": Square, "split": Split, "lazy": Lazy, "masked": Masked}


def _close(a, b, what, msg):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, msg(f"{what}: shape {a.shape} against torch's {b.shape}")
    scale = max(1.0, float(np.abs(b).max(initial=0.0)))
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * scale, err_msg=msg(what))


def _twins(rng, widths=(4, 6, 5, 3)):
    """A planned wxb Sequential (Dense, Tanh, …) and torch's on the same float64 weights."""
    ours, theirs = [], []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        w, bias = rng.normal(size=(b, a)) / np.sqrt(a), rng.normal(size=b) * 0.1
        dense, linear = wxb.nn.Linear(a, b).double(), torch.nn.Linear(a, b).double()
        dense.weight.data[...], dense.bias.data[...] = w, bias
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(w))
            linear.bias.copy_(torch.tensor(bias))
        ours.append(dense)
        theirs.append(linear)
        if i < len(widths) - 2:
            ours.append(wxb.nn.Tanh())
            theirs.append(torch.nn.Tanh())
    return wxb.nn.Sequential(*ours), torch.nn.Sequential(*theirs)


def _torch_fit(model, X, y, lr, epochs, batch):
    """wxb.fit's loop in torch: SGD, batches in order, wxb's MSELoss (the seed's)."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(epochs):
        for start in range(0, len(X), batch):
            opt.zero_grad()
            out = model(torch.tensor(X[start : start + batch]))
            target = torch.tensor(y[start : start + batch])
            (0.5 * ((out - target) ** 2).sum(1).mean()).backward()
            opt.step()


@pytest.mark.parametrize("kind", ["parameter"])
def test_gradient_hooks_on_a_planned_sequential_are_honoured_by_fit(seeded, kind):
    """A hook on a parameter's gradient (``p.register_hook(lambda g: g * s)``) on a
    Sequential that fit would train on the planned stack (which computes ∂L/∂W without
    the graph, where no hook runs): fit runs the recorded graph, saying why, and trains
    as torch's loop with the same hook; with the hook removed, the plan comes back. (On
    the old code: no register_hook.)"""
    rng = seeded.rng
    ours, theirs = _twins(rng)
    X, y = rng.normal(size=(24, 4)), rng.normal(size=(24, 3))
    assert ours.why_not_planned() is None, seeded.msg("the plain model is planned")
    s = float(rng.uniform(0.2, 0.8))
    calls = {"ours": 0, "theirs": 0}

    def count(who, result):
        calls[who] += 1
        return result

    if kind == "parameter":
        handle = ours[2].weight.register_hook(lambda g: count("ours", g * s))
        theirs[2].weight.register_hook(lambda g: count("theirs", g * s))
    reason = ours.why_not_planned()
    assert reason is not None and "hook" in reason, seeded.msg(f"why_not_planned: {reason}")
    opt = wxb.optim.SGD(ours.parameters(), lr=0.1)
    history = wxb.fit(ours, X, y, loss=wxb.nn.MSELoss(), optimizer=opt, epochs=2, batch_size=8,
                      shuffle=False, verbose=False)  # fmt: skip
    _torch_fit(theirs, X, y, 0.1, 2, 8)
    assert history.engine == "graph" and "hook" in history.engine_reason, seeded.msg(
        f"{history.engine}: {history.engine_reason}"
    )
    assert calls["ours"] == calls["theirs"] == 6, seeded.msg(f"hook calls {calls}")
    msg = seeded.msg
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        _close(p.data, q.detach().numpy(), "a weight after fit", lambda w: msg(f"{kind}: {w}"))
    handle.remove()
    assert ours.why_not_planned() is None, seeded.msg("planned again once the hook is gone")
    history = wxb.fit(ours, X, y, loss=wxb.nn.MSELoss(), optimizer=opt, epochs=1, batch_size=8,
                      shuffle=False, verbose=False)  # fmt: skip
    assert history.engine == "planned", seeded.msg(history.engine_reason)


def test_tensor_hooks_follow_torch(seeded):
    """``register_hook`` on an activation, a leaf and a retained tensor, in torch's
    order: hooks chain, each given the last one's result; a retained ``.grad`` and a
    leaf's ``.grad`` keep what the hooks gave; a hook changing its argument in place
    changes that gradient alone; removed hooks run no more; wrong shapes and tensors
    without grad are refused in one line."""
    rng = seeded.rng
    A, B = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    got = {}
    for lib in (wxb, torch):
        new = (
            (lambda v: torch.tensor(v, requires_grad=True))
            if lib is torch
            else (lambda v: wxb.tensor(v, requires_grad=True, dtype="float64"))
        )
        a, b = new(A), new(B)
        h = a @ b
        seen = []
        h.register_hook(lambda g, seen=seen: seen.append(g.detach().clone() * 1) or g * 3)
        h.register_hook(lambda g: g.clamp(-1, 1))
        if lib is torch:
            h.register_hook(lambda g: g.mul_(2))  # in place, returning it
        else:
            h.register_hook(lambda g: g.mul_(2))
        h.retain_grad()
        gone = a.register_hook(lambda g: g * 100)
        gone.remove()
        b.register_hook(lambda g: g - 1)
        out = (h * h).sum() + h.sum()
        out.backward()
        arr = (lambda t: t.detach().numpy()) if lib is torch else (lambda t: t.data)
        got[lib.__name__] = [arr(seen[0]), arr(h.grad), arr(a.grad), arr(b.grad)]
    for what, mine, its in zip(["hook's argument", "h.grad", "a.grad", "b.grad"],
                               got["wxb"], got["torch"], strict=True):  # fmt: skip
        _close(mine, its, what, seeded.msg)
    t = wxb.tensor(A, requires_grad=True, dtype="float64")
    (t * 2).register_hook(lambda g: g[:1])
    u = t * 2
    u.register_hook(lambda g: g[:1])
    with pytest.raises(wxb.ShapeError, match=r"register_hook hook returned a gradient of shape"):
        u.sum().backward()
    with pytest.raises(wxb.ConfigError, match="does not require grad"):
        wxb.tensor(A).register_hook(lambda g: g)


def test_functions_of_several_outputs_follow_torch(seeded):
    """A Function giving (values, mask) with the mask marked non-differentiable, one with
    an output left unused (zeros by default, None after set_materialize_grads(False)),
    torch's setup_context form, and mark_dirty refused in one line. (On the old code a
    Function gave one output, and ctx had none of these.)"""
    rng = seeded.rng
    X = rng.normal(size=(4, 3))
    got, seen = {}, {}
    for lib in (wxb, torch):
        fns = _functions(lib)

        class Pair(lib.autograd.Function):
            @staticmethod
            def forward(x, k):  # torch's setup_context form
                return x * k, x.exp()

            @staticmethod
            def setup_context(ctx, inputs, output):
                ctx.k = inputs[1]
                ctx.save_for_backward(output[1])

            @staticmethod
            def backward(ctx, g1, g2):
                (e,) = ctx.saved_tensors
                seen["g2"] = g2
                return g1 * ctx.k + g2 * e, None

        new = (
            (lambda v: torch.tensor(v, requires_grad=True))
            if lib is torch
            else (lambda v: wxb.tensor(v, requires_grad=True, dtype="float64"))
        )
        x = new(X)
        k = float(rng.uniform(-2, 2)) if lib is wxb else got["k"]
        got["k"] = k
        a, _ = Pair.apply(x, k)  # the second output unused: zeros given to backward
        clipped, mask = fns["masked"].apply(x)
        assert not mask.requires_grad, seeded.msg(f"{lib.__name__}: a marked output")
        lazy, _ = fns["lazy"].apply(x)  # its backward gets None for the unused one
        (a.sum() + (clipped * mask).sum() + (lazy * lazy).sum()).backward()
        arr = (lambda t: t.detach().numpy()) if lib is torch else (lambda t: t.data)
        got[lib.__name__] = [arr(x.grad), arr(seen["g2"])]
    for what, mine, its in zip(["x.grad", "an unused output's gradient"], got["wxb"],
                               got["torch"], strict=True):  # fmt: skip
        _close(mine, its, what, seeded.msg)

    class Dirty(wxb.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(wxb.ConfigError, match="mark_dirty"):
        Dirty.apply(wxb.tensor(X, requires_grad=True))
