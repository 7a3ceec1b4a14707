"""Hooks and custom autograd Functions, as a PyTorch user extends a model with them,
held to PyTorch on the same float64 weights: a generator of models with forward
(pre-)hooks that change what passes (scaling, clamping, a noise tensor drawn here),
``with_kwargs``, ``prepend``, handles removed mid-training, full backward (pre-)hooks
that clip or scale gradients, ``Tensor.register_hook`` on activations and parameters,
``retain_grad``, and Functions with several outputs, non-tensor arguments, None
gradients, ``needs_input_grad``, ``mark_non_differentiable``,
``set_materialize_grads(False)``, ``once_differentiable``, one Function used twice and
an output changed in place. Each model: outputs, gradients and what the hooks saw (in
order) against torch's; a few steps of a hand loop; ``wxb.fit`` against a torch loop;
eval mode, ``no_grad`` and ``predict``.

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


def _draw(rng):
    """A model's description: widths, activations, the Function part and the hooks."""
    widths = [int(rng.integers(2, 6)) for _ in range(int(rng.integers(3, 5)))]
    return {
        "widths": widths,
        "acts": [str(rng.choice(["Tanh", "Sigmoid", "Identity"])) for _ in widths[1:-1]],
        "function": str(rng.choice(["none", "square", "split", "lazy", "masked", "twice"])),
        "inplace": bool(rng.random() < 0.3),
        "rows": int(rng.integers(3, 9)),
        # each hook present with some chance, at a random layer
        "fwd": [
            (str(rng.choice(["scale", "clamp", "noise", "kwargs"])), int(rng.integers(0, 9)))
            for _ in range(int(rng.integers(0, 3)))
        ],
        "pre": [
            (str(rng.choice(["tuple", "single", "kwargs", "look"])), int(rng.integers(0, 9)))
            for _ in range(int(rng.integers(0, 2)))
        ],
        "prepend": bool(rng.random() < 0.5),
        "bwd": [
            (str(rng.choice(["clip", "look", "outer"])), int(rng.integers(0, 9)))
            for _ in range(int(rng.integers(0, 3)))
        ],
        "bwd_pre": [int(rng.integers(0, 9)) for _ in range(int(rng.integers(0, 2)))],
        "param_hook": [int(rng.integers(0, 9)) for _ in range(int(rng.integers(0, 2)))],
        "act_hook": bool(rng.random() < 0.5),
        "retain": bool(rng.random() < 0.5),
        "x_grad": bool(rng.random() < 0.6),
        "c": float(rng.uniform(0.5, 1.5)),
        "k": float(rng.uniform(-2, 2)),
        "lo": float(rng.uniform(0.05, 0.3)),
        # a plain Sequential (which fit and predict would run planned), or a Net of one's own
        "plain": bool(rng.random() < 0.4),
    }


class _Log:
    """What the hooks of one library saw: (tag, values) in the order they ran."""

    def __init__(self, lib):
        self.lib, self.entries = lib, []

    def add(self, tag, *tensors):
        self.entries.append((tag, [None if t is None else self.array(t) for t in tensors]))

    def array(self, t):
        return np.array(t.detach().numpy() if self.lib is torch else t.data, dtype=np.float64)


def _build(lib, spec, weights, noise, log):
    """The described model in ``lib`` (wxb or torch), its weights ``weights``, with its
    hooks logging to ``log``; and the handles of the hooks removed mid-training."""
    fns = _functions(lib)
    L = lib.nn
    denses = [
        L.Linear(a, b).double() for a, b in zip(spec["widths"], spec["widths"][1:], strict=False)
    ]
    for layer, (w, b) in zip(denses, weights, strict=True):
        with lib.no_grad():
            if lib is torch:
                layer.weight.copy_(torch.tensor(w))
                layer.bias.copy_(torch.tensor(b))
            else:
                layer.weight.data[...] = w
                layer.bias.data[...] = b
    parts = [denses[0]]
    for act, dense in zip(spec["acts"], denses[1:], strict=False):
        parts += [getattr(L, act)(), dense]
    body = L.Sequential(*parts[:-1]) if len(parts) > 1 else L.Sequential(L.Identity())
    head = parts[-1]
    c_const = spec["c"]
    kept = {}

    class Net(L.Module):
        def __init__(self):
            super().__init__()
            self.body, self.head = body, head

        def forward(self, x):
            h = self.body(x)
            if spec["act_hook"] and h.requires_grad:
                h.register_hook(lambda g: (log.add("act", g), g * 0.75)[1])
            if spec["retain"] and h.requires_grad:
                h.retain_grad()
                kept["h"] = h
            kind = spec["function"]
            if kind == "square":
                h = fns["square"].apply(h)
            elif kind == "twice":
                h = fns["square"].apply(fns["square"].apply(h) * 0.5)
            elif kind == "split":
                c = h.detach() * 0 + c_const
                a, t = fns["split"].apply(h, c, spec["k"])
                h = a * t
            elif kind == "lazy":
                h, _ = fns["lazy"].apply(h)
            elif kind == "masked":
                h, mask = fns["masked"].apply(h)
                h = h * mask
            if spec["inplace"] and kind != "none":
                h.mul_(0.5)
            return self.head(h)

    if spec["plain"]:
        model = L.Sequential(*parts)
        modules = [model, *parts]
    else:
        model = Net()
        modules = [model, body, *body, head]
    pick = lambda i: modules[i % len(modules)]  # noqa: E731
    removable = []
    for n, (kind, at) in enumerate(spec["fwd"]):
        module, tag = pick(at), f"fwd{n}"
        if kind == "scale":
            hook = lambda m, a, o, tag=tag: (log.add(tag, a[0], o), o * 1.25)[1]  # noqa: E731
        elif kind == "clamp":
            hook = lambda m, a, o, tag=tag: (log.add(tag, o), o.clamp(-0.8, 0.8))[1]  # noqa: E731
        elif kind == "noise":

            def hook(m, a, o, tag=tag):
                log.add(tag, o)
                e = noise[: o.shape[0], : o.shape[1]]
                return o + (torch.tensor(e) if lib is torch else wxb.tensor(e, dtype="float64"))

        else:

            def hook(m, a, kw, o, tag=tag):
                log.add(tag + f"kw{sorted(kw)}", o)
                return o - 0.1

        handle = module.register_forward_hook(
            hook, prepend=spec["prepend"] and n > 0, with_kwargs=kind == "kwargs"
        )
        if n == 0:
            removable.append(handle)
    for n, (kind, at) in enumerate(spec["pre"]):
        module, tag = pick(at), f"pre{n}"
        if kind == "tuple":
            module.register_forward_pre_hook(
                lambda m, a, tag=tag: (log.add(tag, a[0]), (a[0] * 0.9,))[1]
            )
        elif kind == "single":
            module.register_forward_pre_hook(lambda m, a, tag=tag: (log.add(tag), a[0] + 0.05)[1])
        elif kind == "kwargs":
            module.register_forward_pre_hook(
                lambda m, a, kw, tag=tag: (log.add(tag), ((a[0] * 1.1,), kw))[1], with_kwargs=True
            )
        else:
            handle = module.register_forward_pre_hook(lambda m, a, tag=tag: log.add(tag, a[0]))
            removable.append(handle)
    lo = spec["lo"]
    for n, (kind, at) in enumerate(spec["bwd"]):
        module, tag = pick(at), f"bwd{n}"
        if kind == "clip":  # per-layer gradient clipping

            def hook(m, gi, go, tag=tag):
                log.add(tag, *gi, *go)
                return tuple(None if g is None else g.clamp(-lo, lo) for g in gi)

        elif kind == "outer":
            hook = lambda m, gi, go, tag=tag: log.add(tag, *go)  # noqa: E731
        else:
            hook = lambda m, gi, go, tag=tag: log.add(tag, *gi)  # noqa: E731
        module.register_full_backward_hook(hook)
    for n, at in enumerate(spec["bwd_pre"]):
        tag = f"bpre{n}"
        pick(at).register_full_backward_pre_hook(
            lambda m, go, tag=tag: (log.add(tag, *go), (go[0] * 1.5,))[1]
        )
    params = [p for layer in denses for p in (layer.weight, layer.bias)]
    for n, at in enumerate(spec["param_hook"]):
        tag = f"param{n}"
        handle = params[at % len(params)].register_hook(
            lambda g, tag=tag: (log.add(tag, g), g * 0.5)[1]
        )
        removable.append(handle)
    return model, kept, removable, params


def _pair(rng, spec):
    weights = [
        (rng.normal(size=(b, a)) / np.sqrt(a), rng.normal(size=b) * 0.1)
        for a, b in zip(spec["widths"], spec["widths"][1:], strict=False)
    ]
    noise = rng.normal(size=(spec["rows"], max(spec["widths"]))) * 0.1
    ours, theirs = _Log(wxb), _Log(torch)
    return (
        _build(wxb, spec, weights, noise, ours),
        _build(torch, spec, weights, noise, theirs),
        ours,
        theirs,
    )


def _close(a, b, what, msg):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, msg(f"{what}: shape {a.shape} against torch's {b.shape}")
    scale = max(1.0, float(np.abs(b).max(initial=0.0)))
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * scale, err_msg=msg(what))


def _same_log(ours, theirs, msg, phase):
    msg = lambda what, outer=msg: outer(f"{phase}: {what}")  # noqa: E731
    # in torch's order, but for a parameter's hooks: torch runs them as soon as its
    # gradient is complete, a scheduling detail among independent branches of the graph
    tags = [[t for t, _ in log.entries if not t.startswith("param")] for log in (ours, theirs)]
    assert tags[0] == tags[1], msg(f"hooks ran {tags[0]}; torch's {tags[1]}")
    mine_all = sorted(ours.entries, key=lambda entry: entry[0])  # (stable: in order per tag)
    its_all = sorted(theirs.entries, key=lambda entry: entry[0])
    assert [t for t, _ in mine_all] == [t for t, _ in its_all], msg("parameter hooks ran")
    for (tag, mine), (_, its) in zip(mine_all, its_all, strict=True):
        assert [m is None for m in mine] == [i is None for i in its], msg(f"{tag}: Nones")
        for m, i in zip(mine, its, strict=True):
            if m is not None:
                _close(m, i, f"what hook {tag} saw", msg)
    ours.entries.clear()
    theirs.entries.clear()


def _loss(lib, out, y):
    target = torch.tensor(y) if lib is torch else wxb.tensor(y, dtype="float64")
    return ((out - target) ** 2).mean()


def _one_generated_model(seeded, case):
    rng = seeded.rng
    spec = _draw(rng)
    msg = lambda what: seeded.msg(f"case {case} {spec}: {what}")  # noqa: E731
    (model, kept, removable, params), (tmodel, tkept, tremovable, tparams), ours, theirs = _pair(
        rng, spec
    )
    X = rng.normal(size=(spec["rows"], spec["widths"][0]))
    y = rng.normal(size=(spec["rows"], spec["widths"][-1]))
    # one forward and backward: outputs, ∂L/∂x, ∂L/∂W, retained ∂L/∂h, what hooks saw
    x = wxb.tensor(X, requires_grad=spec["x_grad"], dtype="float64")
    tx = torch.tensor(X, requires_grad=spec["x_grad"])
    out, tout = model(x), tmodel(tx)
    _close(out.data, tout.detach().numpy(), "output", msg)
    _loss(wxb, out, y).backward()
    _loss(torch, tout, y).backward()
    _same_log(ours, theirs, msg, "the first backward")
    if spec["x_grad"]:
        _close(x.grad, tx.grad.numpy(), "∂L/∂x", msg)
    for p, q in zip(params, tparams, strict=True):
        _close(p.grad, q.grad.numpy(), "∂L/∂ a parameter", msg)
    if "h" in tkept:
        _close(kept["h"].grad, tkept["h"].grad.numpy(), "retained ∂L/∂h", msg)
    # a hand loop: Adam, with the first hooks removed after the first step
    opt = wxb.optim.Adam(model.parameters(), lr=0.01)
    topt = torch.optim.Adam(tmodel.parameters(), lr=0.01)
    for step in range(3):
        opt.zero_grad()
        topt.zero_grad()
        _loss(wxb, model(X), y).backward()
        _loss(torch, tmodel(torch.tensor(X)), y).backward()
        opt.step()
        topt.step()
        if step == 0:
            for handle in (*removable, *tremovable):
                handle.remove()
        _same_log(ours, theirs, msg, f"the hand loop's step {step}")
    for p, q in zip(params, tparams, strict=True):
        _close(p.data, q.detach().numpy(), f"a weight after the hand loop's step {step}", msg)
    # wxb.fit against a torch loop: full batches, SGD, no shuffling
    fit_opt = wxb.optim.SGD(model.parameters(), lr=0.05)
    history = wxb.fit(model, X, y, loss=wxb.nn.MSELoss(), optimizer=fit_opt, epochs=2,
                      batch_size=spec["rows"], shuffle=False, verbose=False)  # fmt: skip
    tfit = torch.optim.SGD(tmodel.parameters(), lr=0.05)
    for _ in range(2):
        tfit.zero_grad()
        # wxb's MSELoss is the seed's (1/B)·Σᵢ ½‖ŷᵢ − yᵢ‖² (its docstring)
        (0.5 * ((tmodel(torch.tensor(X)) - torch.tensor(y)) ** 2).sum(1).mean()).backward()
        tfit.step()
    # the hooks left after the removals: fit must run the graph where one is left
    left = spec["fwd"][1:] + [p for p in spec["pre"] if p[0] != "look"] + spec["bwd"]
    left += spec["bwd_pre"]
    expected = "planned" if spec["plain"] and not left else "graph"
    assert history.engine == expected, msg(f"fit ran {history.engine}: {history.engine_reason}")
    _same_log(ours, theirs, msg, "fit")
    for p, q in zip(params, tparams, strict=True):
        _close(p.data, q.detach().numpy(), "a weight after fit", msg)
    # eval mode: no_grad and predict, the forward hooks still run
    model.eval()
    tmodel.eval()
    with torch.no_grad():
        expected = tmodel(torch.tensor(X)).numpy()
    with wxb.no_grad():
        _close(model(X).data, expected, "eval output under no_grad", msg)
    _same_log(ours, theirs, msg, "eval under no_grad")
    _close(model.predict(X), expected, "predict", msg)  # (its hooks may run more often)


def test_generated_hooked_models_agree_with_torch(seeded):
    for case in range(12):
        _one_generated_model(seeded, case)


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


@pytest.mark.parametrize("kind", ["parameter", "backward", "backward_pre"])
def test_gradient_hooks_on_a_planned_sequential_are_honoured_by_fit(seeded, kind):
    """A hook on a parameter's gradient (``p.register_hook(lambda g: g * s)``), a layer's
    full backward hook clipping its grad_input, or a backward pre-hook scaling its
    grad_output, on a Sequential that fit would train on the planned stack (which
    computes ∂L/∂W without the graph, where no hook runs): fit runs the recorded graph,
    saying why, and trains as torch's loop with the same hooks; with the hook removed,
    the plan comes back. (On the old code: no register_hook, backward hooks refused.)"""
    rng = seeded.rng
    ours, theirs = _twins(rng)
    X, y = rng.normal(size=(24, 4)), rng.normal(size=(24, 3))
    assert ours.why_not_planned() is None, seeded.msg("the plain model is planned")
    s, lo = float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.01, 0.05))
    calls = {"ours": 0, "theirs": 0}

    def count(who, result):
        calls[who] += 1
        return result

    if kind == "parameter":
        handle = ours[2].weight.register_hook(lambda g: count("ours", g * s))
        theirs[2].weight.register_hook(lambda g: count("theirs", g * s))
    elif kind == "backward":
        handle = ours[2].register_full_backward_hook(
            lambda m, gi, go: count("ours", (gi[0].clamp(-lo, lo),))
        )
        theirs[2].register_full_backward_hook(
            lambda m, gi, go: count("theirs", (gi[0].clamp(-lo, lo),))
        )
    else:
        handle = ours[2].register_full_backward_pre_hook(lambda m, go: count("ours", (go[0] * s,)))
        theirs[2].register_full_backward_pre_hook(lambda m, go: count("theirs", (go[0] * s,)))
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


def test_a_second_backward_through_a_freed_graph_runs_no_hook_again(seeded):
    """``loss.backward(); loss.backward()`` raises (the graph is freed), in torch before
    it reaches the layer, whose backward reads what the first one freed: a module's
    full backward hook and an activation's ``register_hook`` hook had run once more
    in wxb before the error (a hook counting calls or collecting gradients saw a
    third of them), where torch's ran once."""
    rng = seeded.rng
    X = rng.normal(size=(int(rng.integers(2, 6)), 4))
    calls = {}
    for lib in (wxb, torch):
        counts = {"full": 0, "tensor": 0}
        layer = lib.nn.Linear(4, 3).double()
        layer.register_full_backward_hook(lambda m, gi, go, c=counts: c.update(full=c["full"] + 1))
        if lib is torch:
            x = torch.tensor(X, requires_grad=True)
        else:
            x = wxb.tensor(X, requires_grad=True, dtype="float64")
        h = layer(x)
        h.register_hook(lambda g, c=counts: c.update(tensor=c["tensor"] + 1))
        loss = (h * h).sum()
        loss.backward()
        with pytest.raises((RuntimeError, wxb.TrainingError)):
            loss.backward()
        calls[lib.__name__] = counts
    assert calls["wxb"] == calls["torch"] == {"full": 1, "tensor": 1}, seeded.msg(str(calls))


def test_a_layer_with_backward_hooks_is_still_shown_and_exported_as_its_kind(seeded, tmp_path):
    """Backward hooks change no forward: a Dense with one is still a Dense to the
    diagrams (it was drawn as "with forward hooks: hands on what they return", and the
    Tanh after it lost its A = tanh(Z)) and to ONNX export (refused as a subclass
    replacing forward), while its training still takes the recorded graph."""
    ort = pytest.importorskip("onnxruntime")
    import wxb.onnx
    from wxb.describe import architecture_diagram

    rng = seeded.rng
    model, _ = _twins(rng)
    model[0].register_full_backward_hook(lambda m, gi, go: None)
    model[2].register_full_backward_pre_hook(lambda m, go: None)
    chart = architecture_diagram(model)
    assert "forward hooks" not in chart and "A⁽¹⁾ = tanh(Z⁽¹⁾)" in chart, seeded.msg(chart)
    reason = model.why_not_planned()
    assert reason is not None and "backward hooks" in reason, seeded.msg(str(reason))
    path = wxb.onnx.export(model, tmp_path / "hooked.onnx")
    X = rng.normal(size=(int(rng.integers(1, 9)), 4))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    _close(session.run(None, {"input": X})[0], model.predict(X), "ONNX output", seeded.msg)


@pytest.mark.parametrize("where", ["forward", "pre-hook", "hook", "none"])
def test_always_call_hooks_run_when_the_call_raises_as_torchs(seeded, where):
    """``register_forward_hook(hook, always_call=True)`` (a hook releasing what a
    pre-hook took, a timer, a profiler) was refused; as torch's it now runs also when
    the call raises (in a pre-hook, the forward or an earlier hook), on the output so
    far (None before the forward gave one), once, and the error goes on; a hook
    without it does not run then; what the always-called one returns is dropped."""
    rng = seeded.rng
    X = rng.normal(size=(int(rng.integers(1, 5)), 3))
    seen = {}
    for lib in (wxb, torch):
        log = []

        class Boom(lib.nn.Module):
            def forward(self, x):
                if where == "forward":
                    raise ValueError("forward")
                return x * 2

        def raising_pre(m, args):
            raise ValueError("pre-hook")

        def raising_hook(m, args, out):
            raise ValueError("hook")

        def raising_always(m, args, out):
            raise KeyError("silenced")

        module = Boom()
        if where == "pre-hook":
            module.register_forward_pre_hook(raising_pre)
        module.register_forward_hook(lambda m, a, o, log=log: log.append(("always", o)),
                                     always_call=True)  # fmt: skip
        if where == "hook":
            module.register_forward_hook(raising_hook)
        module.register_forward_hook(lambda m, a, o, log=log: log.append(("plain", o)))
        module.register_forward_hook(lambda m, a, kw, o, log=log: log.append(("kw", o)) or 5,
                                     with_kwargs=True, always_call=True)  # fmt: skip
        module.register_forward_hook(lambda m, a, o, log=log: log.append(("after", o)),
                                     always_call=True)  # fmt: skip
        module.register_forward_hook(raising_always, always_call=True)
        x = torch.tensor(X) if lib is torch else wxb.tensor(X, dtype="float64")
        if where == "none":
            with pytest.raises(KeyError, match="silenced"):  # (no other error to keep)
                module(x)
        else:  # a raising always-called hook is silenced, with a warning
            with (
                pytest.warns(UserWarning, match="silenced"),
                pytest.raises(ValueError, match=where),
            ):
                module(x)
        # what each saw: None, or an output (the forward's, or the 5 a hook returned)
        seen[lib.__name__] = [
            (tag, out if out is None or isinstance(out, int) else _Log(lib).array(out).tolist())
            for tag, out in log  # (2·x: exact in both)
        ]
    assert seen["wxb"] == seen["torch"], seeded.msg(f"{where}: {seen}")
