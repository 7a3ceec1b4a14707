"""Autograd off the plain ``loss.backward()`` path, held to torch.autograd.

Defect it found: ``wxb.autograd.grad(y, [h])`` with ``h.retain_grad()`` put ``h.grad``
back as it was, where torch adds the gradient into it as into any retained tensor's
(wxb's own retained tensors that were not inputs got theirs): a later backward's
``h.grad`` was short by that share, without a word.

Every test draws fresh random inputs; the seed is in the assertion message."""

from __future__ import annotations

import numpy as np
import pytest

import wxb

torch = pytest.importorskip("torch")

RTOL = 1e-9  # float64 on both sides: a few roundings per operation, far below this


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
