"""How far two float64 computations of the same sums may differ by rounding alone.

A sum of k terms, in any order (BLAS, PyTorch, a loop), is within k·eps·Σ|terms| of
the exact sum (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1), so two
of them differ by at most twice that. Where the terms cancel to a sum near 0, that
difference is far above any relative tolerance on the sum, though both are right: a
comparison of two summation orders takes ``rounding_atol`` as its absolute tolerance.

Through a stack, ``affine_terms`` of the previous layer's ``affine_terms`` bounds the
terms again when the activation between is 1-Lipschitz with |f(z)| ≤ |z| (ReLU, tanh):
the earlier layers' rounding is carried by the same |W|, so the ks add up.
"""

import numpy as np

EPS = float(np.finfo(np.float64).eps)


def affine_terms(A, M, b=None) -> np.ndarray:
    """|A|·|M| + |b|: the size of the terms summed in each entry of A·M + b."""
    terms = np.abs(np.asarray(A, dtype=np.float64)) @ np.abs(np.asarray(M, dtype=np.float64))
    return terms if b is None else terms + np.abs(np.asarray(b, dtype=np.float64))


def rounding_atol(terms, k: float) -> float:
    """The most two sums of k terms each (all sizes in ``terms``) may differ by."""
    return 2 * k * EPS * float(np.max(terms, initial=0.0))


def chain_rounding(model, x: np.ndarray) -> np.ndarray:
    """Per output entry, how far a chain of Gemms (``model.names``' Dense layers in turn,
    tanh or ReLU between: they pass an error on at most as large) in ``x``'s dtype may be
    off by rounding: a few ulps of the sums of |terms| per layer, each layer's error
    carried on through the |W| of the layers after it (an exported model's, a converted
    one's against wxb's own)."""
    eps = float(np.finfo(x.dtype).eps)
    m = np.abs(x.astype(np.float64))
    err = np.zeros_like(m)
    for name in model.names:
        layer = getattr(model, name)
        w = np.abs(layer.weight.data.astype(np.float64))
        m = m @ w.T + np.abs(layer.bias.data.astype(np.float64))
        err = err @ w.T + 4 * (w.shape[1] + 1) * eps * m
    return err + np.finfo(x.dtype).tiny
