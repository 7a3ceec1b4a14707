"""Autograd off the plain ``loss.backward()`` path, held to torch.autograd: a generator
draws, fresh each run, a small computation over leaves (a fan-out intermediate, an
output that is a view of one) and then a random sequence of what users do with it —
``retain_grad()``; ``register_hook`` on leaves and intermediates (hooks that return
None, return a changed gradient, several in order, one removed by its handle);
``backward(retain_graph=True)`` then another backward (gradients add up);
``backward(gradient=g)`` on a non-scalar; ``wxb.autograd.grad`` with ``retain_graph``
and ``allow_unused`` (its inputs retained or not); ``.grad`` set by hand or to None;
``requires_grad_`` toggled on a leaf between forward passes; ``detach()``;
``no_grad``/``enable_grad``/``set_grad_enabled`` nested as context managers and as
decorators; an intermediate changed in place after it was used. The same program runs
on torch in float64: every value, every ``.grad`` (leaves and retained intermediates),
which calls raise, and the hooks' calls in order must agree.

Defects it found: ``wxb.autograd.grad(y, [h])`` with ``h.retain_grad()`` put
``h.grad`` back as it was, where torch adds the gradient into it as into any retained
tensor's (wxb's own retained tensors that were not inputs got theirs): a later
backward's ``h.grad`` was short by that share, without a word. And ``autograd.grad``
walked the whole graph, where torch runs only what leads to its inputs: the hooks of
another leaf ran (and ran again at the next backward: counted twice).

Every test draws fresh random inputs; the seed is in the assertion message."""

from __future__ import annotations

import numpy as np
import pytest

import wxb

torch = pytest.importorskip("torch")

RTOL = 1e-9  # float64 on both sides: a few roundings per operation, far below this
ATOL = 1e-11


class _Lib:
    """The few places where the two libraries are spelled differently."""

    def __init__(self, lib):
        self.lib = lib
        self.is_torch = lib is torch

    def leaf(self, a, rg):
        if self.is_torch:
            return torch.tensor(a, dtype=torch.float64, requires_grad=rg)
        return wxb.Tensor(a, requires_grad=rg)

    def array(self, a):  # a gradient given by hand (.grad, gradient=)
        return torch.tensor(a, dtype=torch.float64) if self.is_torch else np.array(a)

    @staticmethod
    def values(t):
        if t is None:
            return None
        if isinstance(t, np.ndarray):
            return t.copy()
        return np.array(t.detach().numpy() if hasattr(t, "detach") else t.data, dtype=float)


_UNARY = ("exp", "tanh", "sin", "sigmoid")


def _draw_program(rng):
    """The program as data, so that both libraries run the same one."""
    return {
        "a": rng.normal(size=(3, 4)),
        "b": rng.normal(size=(4,)),
        "c": rng.normal(size=(3, 4)),
        "c_grad": bool(rng.integers(2)),
        "f1": str(rng.choice(_UNARY)),
        "f2": str(rng.choice(_UNARY)),
        "view": str(rng.choice(["T", "row", "reshape", "slice"])),
        "retain": [bool(rng.integers(2)) for _ in range(3)],
        "hooks": [
            (
                str(rng.choice(["a", "b", "h1", "h2", "out"])),
                str(rng.choice(["log", "scale", "add"])),
                float(rng.uniform(0.5, 2.0)),
                bool(rng.random() < 0.25),
            )
            for _ in range(int(rng.integers(0, 5)))
        ],
        "preset": str(rng.choice(["none", "array", "zeros"])),
        "action": str(
            rng.choice(["twice", "gradient", "grad", "grad_h", "toggle", "inplace", "modes"])
        ),
        "grad_retain": bool(rng.integers(2)),
        "G": rng.normal(size=(4, 3)),
        "inplace_on": str(rng.choice(["h1", "h2"])),
        "modes": [int(m) for m in rng.integers(0, 6, size=3)],
    }


def _run(lib, p):
    """Run program ``p``; returns what is compared: values, grads, errors, hook calls."""
    L = _Lib(lib)
    seen = {}
    log = []
    a = L.leaf(p["a"], True)
    b = L.leaf(p["b"], True)
    c = L.leaf(p["c"], p["c_grad"])
    h1 = getattr(a * b, p["f1"])()  # (3, 4)
    h2 = getattr(h1 + c, p["f2"])() * h1  # h1 used twice: fan-out
    out = {
        "T": lambda t: t.T,
        "row": lambda t: t[1],
        "reshape": lambda t: t.reshape(4, 3),
        "slice": lambda t: t[1:],
    }[p["view"]](h2)
    named = {"a": a, "b": b, "c": c, "h1": h1, "h2": h2, "out": out}
    for t, keep in zip((h1, h2, out), p["retain"], strict=True):
        if keep:
            t.retain_grad()
    for k, (name, kind, s, removed) in enumerate(p["hooks"]):

        def hook(g, name=name, kind=kind, s=s, k=k):
            log.append((k, name, round(float(g.sum()), 6)))
            if kind == "scale":
                return g * s
            if kind == "add":
                return g + s
            return None

        handle = named[name].register_hook(hook)
        if removed:
            handle.remove()
    if p["preset"] != "none":
        start = p["a"] * 0.5 if p["preset"] == "array" else np.zeros_like(p["a"])
        a.grad = L.array(start)

    def attempt(what, fn):
        try:
            fn()
            seen[what] = "ran"
        except Exception as e:  # which calls raise is compared
            seen[what] = "raised"
            text = str(e)
            if not L.is_torch:  # one clear line
                assert text and "\n" not in text.strip(), text
            return False
        # what it left, after each call that ran (a call that raises may leave part of
        # its gradients in torch, none in wxb, which checks before it walks)
        for name, t in named.items():
            if t.is_leaf or t.retains_grad:
                seen[f"{what}: {name}.grad"] = L.values(t.grad)
        seen[f"{what}: hooks"] = list(log)
        return True

    loss = (out * out).sum() + h1.sum()
    seen["loss"] = L.values(loss)
    seen["out"] = L.values(out)
    action = p["action"]
    if action == "twice":
        attempt("first", lambda: loss.backward(retain_graph=True))
        attempt("second", lambda: loss.backward())
        attempt("third", lambda: loss.backward())  # freed: raises in both
    elif action == "gradient":
        shape = tuple(out.shape)
        seed = p["G"].reshape(-1)[: int(np.prod(shape))].reshape(shape)
        attempt("first", lambda: out.backward(gradient=L.array(seed)))
    elif action in ("grad", "grad_h"):
        # (not [h1, a]: torch then hands back h1's gradient before h1's hooks, and after
        # them with [h1] alone; wxb after them in both)
        ins = [a, b, c] if action == "grad" else [h1]
        opts = {"retain_graph": p["grad_retain"], "allow_unused": True}
        got = []
        attempt("grad", lambda: got.extend(lib.autograd.grad(loss, ins, **opts)))
        for i, g in enumerate(got):
            seen[f"grad[{i}]"] = L.values(g)
        attempt("after", lambda: loss.backward())  # raises unless the graph was retained
    elif action == "toggle":
        attempt("first", lambda: loss.backward())
        b.requires_grad_(False)
        loss2 = (getattr(a * b, p["f1"])() * c).sum()
        attempt("second", lambda: loss2.backward())
        b.requires_grad_(True)
        a.grad = None
        loss3 = (a.detach() * b + a * b).sum()
        attempt("third", lambda: loss3.backward())
    elif action == "inplace":
        target = named[p["inplace_on"]]
        attempt("inplace", lambda: target.mul_(1.5))
        attempt("first", lambda: loss.backward())
    elif action == "modes":
        switches = [
            lambda: lib.no_grad(),
            lambda: lib.enable_grad(),
            lambda: lib.set_grad_enabled(False),
            lambda: lib.set_grad_enabled(True),
        ]
        flags = []

        def nested(depth):
            if depth == len(p["modes"]):
                r = a * 2
                flags.append((r.requires_grad, lib.is_grad_enabled()))
                return r
            m = p["modes"][depth]
            if m < 4:
                with switches[m]():
                    return nested(depth + 1)
            # as a decorator: no_grad() or enable_grad()
            deco = lib.no_grad() if m == 4 else lib.enable_grad()
            return deco(nested)(depth + 1)

        r = nested(0)
        flags.append(lib.is_grad_enabled())
        seen["flags"] = flags
        if r.requires_grad:
            attempt("first", lambda: (r * loss).backward())
        else:
            attempt("first", lambda: loss.backward())
    return seen


def _compare(mine, theirs, msg):
    assert set(mine) == set(theirs), msg(f"different records: {set(mine) ^ set(theirs)}")
    for key, want in theirs.items():
        got = mine[key]
        if isinstance(want, np.ndarray) or isinstance(got, np.ndarray):
            assert isinstance(got, np.ndarray) and isinstance(want, np.ndarray), msg(
                f"{key}: wxb {got!r}, torch {want!r}"
            )
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=msg(key))
        elif key.endswith("hooks"):
            assert [e[:2] for e in got] == [e[:2] for e in want], msg(f"hook order {got} vs {want}")
            for x, y in zip(got, want, strict=True):
                assert x[2] == pytest.approx(y[2], rel=1e-7, abs=1e-6), msg(f"hook {x} vs {y}")
        else:
            assert got == want, msg(f"{key}: wxb {got!r}, torch {want!r}")


@pytest.mark.parametrize("case", range(40))
def test_user_actions_match_torch(seeded, case):
    p = _draw_program(seeded.rng)
    msg = lambda what: seeded.msg(f"case {case} {p['action']} {p['view']}: {what}")  # noqa: E731
    theirs = _run(torch, p)
    mine = _run(wxb, p)
    _compare(mine, theirs, msg)


def test_grad_of_a_retained_input_is_kept(seeded):
    """autograd.grad w.r.t. a tensor that retains its grad adds into its .grad, as torch
    (and as wxb did for retained tensors that were not inputs); wxb put it back."""
    x = seeded.rng.normal(size=(2, 3))
    got = {}
    for lib in (torch, wxb):
        L = _Lib(lib)
        a = L.leaf(x, True)
        h = a.exp()
        h.retain_grad()
        y = (h * h).sum()
        (gh,) = lib.autograd.grad(y, [h], retain_graph=True)
        first = L.values(h.grad)
        y.backward()
        got[lib.__name__] = (L.values(gh), first, L.values(h.grad), L.values(a.grad))
    for mine, theirs in zip(got["wxb"], got["torch"], strict=True):
        assert mine is not None, seeded.msg("wxb's retained .grad is None")
        np.testing.assert_allclose(mine, theirs, rtol=RTOL, err_msg=seeded.msg("retained input"))


def test_grad_runs_no_hook_of_another_leaf(seeded):
    """autograd.grad(y, [a]) runs only what leads to ``a``, as torch's: the hooks of
    ``b`` (not asked for) ran too, and ran again at the next backward."""
    rng = seeded.rng
    xa, xb = rng.normal(size=(3, 2)), rng.normal(size=(2,))
    for lib in (torch, wxb):
        L = _Lib(lib)
        a, b = L.leaf(xa, True), L.leaf(xb, True)
        calls = []
        b.register_hook(lambda g, calls=calls: calls.append("b"))
        h = (a * b).tanh()
        h.retain_grad()
        y = (h * a).sum()
        lib.autograd.grad(y, [a], retain_graph=True)
        assert calls == [], seeded.msg(f"{lib.__name__}: {calls}")
        y.backward()
        assert calls == ["b"], seeded.msg(f"{lib.__name__}: {calls}")
