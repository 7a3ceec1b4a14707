"""NumPy operands off the well-tested path: subclasses of ndarray, unusual arrays, and
threads, each compared with what PyTorch (or NumPy itself) gives."""

import numpy as np
import numpy.ma as ma
import pytest
import torch

from wxb.tensor import Tensor


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix's own
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_matrix_given_with_a_dtype_is_a_plain_tensor_as_torchs(rng, dtype):
    # torch.tensor(np.matrix(a), dtype=…) is a plain tensor: t[:, 0] is a column's values
    a = rng.normal(size=(3, 4)).astype(dtype)
    t = Tensor(np.matrix(a), dtype=dtype)
    theirs = torch.tensor(np.matrix(a), dtype=getattr(torch, dtype))
    assert type(t.data) is np.ndarray
    for pick in (lambda x: x[:, 0], lambda x: x[1], lambda x: x.reshape(-1), lambda x: x * x):
        ours, expected = pick(t), pick(theirs)
        assert ours.shape == tuple(expected.shape)
        np.testing.assert_array_equal(ours.data, expected.numpy())


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
@pytest.mark.parametrize("where", ["leaf", "seed"])
@pytest.mark.parametrize("subclass", ["masked", "matrix"])
def test_a_subclass_of_ndarray_gives_torchs_gradients(rng, where, subclass):
    # torch.tensor(masked) takes the values under the mask too; a masked array kept as a
    # leaf's data (or as backward's grad) left its masked entries out of g ⊙ A
    a, b, g = (rng.normal(size=(3, 3)) for _ in range(3))
    wrap = {
        "masked": lambda v: ma.masked_array(v, mask=rng.random(v.shape) < 0.5),
        "matrix": np.matrix,
    }[subclass]
    x = Tensor(wrap(a) if where == "leaf" else a, dtype="float64", requires_grad=True)
    w = Tensor(b, requires_grad=True)
    out = (x * w).exp() * 2
    out.backward(wrap(g) if where == "seed" else g)
    tx = torch.tensor(a, requires_grad=True)
    tw = torch.tensor(b, requires_grad=True)
    ((tx * tw).exp() * 2).backward(torch.tensor(g))
    np.testing.assert_allclose(out.data, ((tx * tw).exp() * 2).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad, tw.grad.numpy(), rtol=1e-12)
    assert type(x.grad) is np.ndarray and type(w.grad) is np.ndarray
