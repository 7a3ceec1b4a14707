"""An independent review of the stop that brought torch's dtype promotion, the recorded
in-place operations and predict's one-row fast path, against PyTorch 2.13 on fresh
draws: where wxb refused what torch runs, or gave other numbers without an error."""

import numpy as np
import pytest

import wxb
import wxb.interop
from wxb.nn import (
    ELU,
    GELU,
    Dense,
    Identity,
    LeakyReLU,
    ReLU,
    Sequential,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from wxb.optim import SGD

torch = pytest.importorskip("torch")

# a last activation, and whether torch's backward reads its output (σ, tanh, ReLU and
# softmax save their result; GELU, SiLU, ELU, Softplus, LeakyReLU their input; Identity
# is no operation at all)
LAST = {
    GELU: False,
    SiLU: False,
    ELU: False,
    Softplus: False,
    LeakyReLU: False,
    Identity: False,
    Sigmoid: True,
    Tanh: True,
    ReLU: True,
    Softmax: True,
}


def _change(lib, out, how, shift):
    """``out`` changed in place after the forward: under no_grad, or recorded."""
    if how == "no_grad mul_":
        with lib.no_grad():
            out.mul_(1.5)
    elif how == "no_grad +=":
        with lib.no_grad():
            out += shift
    else:  # recorded: out += a constant tensor while the graph is recorded
        out += shift


@pytest.mark.parametrize("last", list(LAST), ids=lambda k: k.__name__)
def test_a_planned_stacks_output_changed_in_place_refuses_only_where_torch_does(seeded, last):
    """The planned Sequential's output node said its backward reads the output whenever
    the last layer is an activation: out.mul_(1.5) under no_grad (or out += c) after a
    forward ending in GELU, SiLU, ELU, Softplus, LeakyReLU or Identity refused the
    backward, where torch's (and wxb's own graph, use_plan=False) run it, as those read
    Z. Now the same rule as the graph's node; over several steps (the lean stack from
    the second on), with torch's gradients and parameters."""
    rng = seeded.rng
    n, hidden, outputs, rows = 3, 5, 4, int(rng.integers(2, 6))
    kwargs = {"dim": 1} if last is Softmax else {}
    model = Sequential(
        Dense(n, hidden, seed=int(rng.integers(1 << 30))),
        Tanh(),
        Dense(hidden, outputs, bias=bool(rng.random() < 0.7), seed=int(rng.integers(1 << 30))),
        last(**kwargs),
    ).double()
    reference = wxb.interop.to_torch(model).double()
    assert model.why_not_planned() is None
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.5)
    torch_optimizer = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.5)
    for step in range(4):
        how = str(rng.choice(["no_grad mul_", "no_grad +=", "recorded +="]))
        X, shift = rng.standard_normal((rows, n)), rng.standard_normal((rows, outputs))
        weights = rng.standard_normal((rows, outputs))
        told = seeded.msg(f"{last.__name__}, step {step}, {how}")
        outcome = {}
        for lib, net, opt in ((wxb, model, optimizer), (torch, reference, torch_optimizer)):
            opt.zero_grad()
            out = net(wxb.tensor(X, dtype="float64") if lib is wxb else torch.from_numpy(X))
            _change(lib, out, how, lib.tensor(shift, dtype=lib.float64))
            loss = (out * lib.tensor(weights, dtype=lib.float64)).sum()
            try:
                loss.backward()
            except (RuntimeError, wxb.WxbError) as error:
                outcome[lib] = error
                continue
            outcome[lib] = None
        refused = LAST[last]
        assert (outcome[torch] is not None) == refused, told  # (the reference's own rule)
        assert (outcome[wxb] is not None) == refused, f"{told}: {outcome[wxb]!r}"
        if refused:
            return
        for p, q in zip(model.parameters(), reference.parameters(), strict=True):
            np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=told)
        optimizer.step()
        torch_optimizer.step()
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-10, atol=1e-12)


def _leaf(lib, values):
    return lib.tensor(values.copy(), requires_grad=True, dtype=lib.float64)


def _given(lib, array):
    """The array as each side takes it: wxb the caller's own, torch a tensor of a copy."""
    return array if lib is wxb else torch.tensor(array.copy())


# f(lib, leaf, array) → a result whose backward reads the array the caller passed; the
# array's shape, and the leaf's
READS_ARRAY = {
    "where(mask, x, x/2)": (
        lambda L, x, m: L.where(_given(L, m), x, x * 0.5),
        lambda rng: rng.random((4, 3)) < 0.5,
        (4, 3),
    ),
    "x.masked_fill(mask, 0)": (
        lambda L, x, m: x.masked_fill(_given(L, m), 0.0),
        lambda rng: rng.random((4, 3)) < 0.5,
        (4, 3),
    ),
    "y[idx] = 0 (recorded)": (
        lambda L, x, i: (lambda y: (y.__setitem__(_given(L, i), 0.0), y)[1])(x * 1.5),
        lambda rng: rng.permutation(4)[:2],
        (4, 3),
    ),
    "F.linear(x, W array)": (
        lambda L, x, w: L.nn.functional.linear(x, _given(L, w)),
        lambda rng: rng.standard_normal((2, 3)),
        (4, 3),
    ),
    "F.linear(X array, W)": (
        lambda L, w, X: L.nn.functional.linear(_given(L, X), w),
        lambda rng: rng.standard_normal((4, 3)),
        (2, 3),
    ),
    "einsum(x, array)": (
        lambda L, x, w: L.einsum("ij,jk->ik", x, _given(L, w)),
        lambda rng: rng.standard_normal((3, 2)),
        (4, 3),
    ),
    "x.outer(array)": (
        lambda L, x, v: x.outer(_given(L, v)),
        lambda rng: rng.standard_normal(3),
        (4,),
    ),
    "x.bmm(array)": (
        lambda L, x, w: x.bmm(_given(L, w)),
        lambda rng: rng.standard_normal((2, 3, 2)),
        (2, 4, 3),
    ),
    "layer_norm(x, weight=array)": (
        lambda L, x, w: L.nn.functional.layer_norm(x, (3,), weight=_given(L, w)),
        lambda rng: rng.standard_normal(3),
        (4, 3),
    ),
    "batch_norm(x, weight=array)": (
        lambda L, x, w: L.nn.functional.batch_norm(
            x, None, None, weight=_given(L, w), training=True
        ),
        lambda rng: rng.standard_normal(3),
        (4, 3),
    ),
}


@pytest.mark.parametrize("case", list(READS_ARRAY))
def test_an_array_a_backward_reads_is_its_own_as_torch_tensor_copies_it(seeded, case):
    """wxb takes NumPy arrays where torch takes tensors (torch.tensor(array) copies), and
    copies what a recorded backward reads of them (x * arr, model(arr)). These did not:
    the caller's mask, index, weight or batch array changed in place after the forward
    (a reused buffer, mask &= …) changed the gradient without a word. Now each is the
    backward's own: torch's gradient of the values at the forward."""
    rng = seeded.rng
    forward, draw, shape = READS_ARRAY[case]
    values, array = rng.standard_normal(shape), draw(rng)
    weights = None
    grads = {}
    for lib in (torch, wxb):
        leaf = _leaf(lib, values)
        out = forward(lib, leaf, array)
        if weights is None:
            weights = rng.standard_normal(tuple(out.shape))
        if lib is wxb:  # the caller's array changed in place before the backward
            if array.dtype == bool:
                np.logical_not(array, out=array)
            elif array.dtype.kind in "iu":
                array[...] = (array + 1) % shape[0]
            else:
                array *= -3.0
        (out * lib.tensor(weights, dtype=lib.float64)).sum().backward()
        grads[lib] = np.asarray(leaf.grad)
    np.testing.assert_allclose(
        grads[wxb], grads[torch], rtol=1e-10, atol=1e-12, err_msg=seeded.msg(case)
    )


# f(lib, leaf, array): an array beside a float32 tensor, which wxb's rule gives the
# tensor's dtype (as x @ arr, x * arr); torch, which refuses mixed dtypes, is given it
# in float32
BESIDE_A_TENSOR = {
    "F.linear(x, W array)": (lambda L, x, w: L.nn.functional.linear(x, w), (3, 8), (5, 8)),
    "F.linear(X array, W)": (lambda L, w, X: L.nn.functional.linear(X, w), (5, 8), (3, 8)),
    "einsum(x, array)": (lambda L, x, w: L.einsum("ij,kj->ik", x, w), (3, 8), (5, 8)),
    "layer_norm(x, weight=, bias=)": (
        lambda L, x, w: L.nn.functional.layer_norm(x, (8,), weight=w[0], bias=w[1]),
        (2, 8),
        (5, 8),
    ),
    "batch_norm(x, weight=, bias=)": (
        lambda L, x, w: L.nn.functional.batch_norm(
            x, None, None, weight=w[0], bias=w[1], training=True
        ),
        (2, 8),
        (5, 8),
    ),
}


@pytest.mark.parametrize("case", list(BESIDE_A_TENSOR))
def test_a_float64_array_beside_a_float32_tensor_takes_its_dtype_in_the_functional_forms(
    seeded, case
):
    """F.linear(x, W), einsum and a norm's weight and bias made a float64 array a
    float64 tensor on its own before meeting float32 x: the result was float64, where
    x @ W.T, x * w and wxb.maximum(x, w) are float32 (tensor.result_type: an array beside
    a tensor counts as a number). Now float32, with float32 gradients: torch's values on
    the array in float32 (float32 rounding of sums of 8 products: 1e-5 relative)."""
    rng = seeded.rng
    forward, array_shape, leaf_shape = BESIDE_A_TENSOR[case]
    array, values = rng.standard_normal(array_shape), rng.standard_normal(leaf_shape)
    weights = None
    got = {}
    for lib in (torch, wxb):
        leaf = lib.tensor(values, requires_grad=True, dtype=lib.float32)
        given = array if lib is wxb else torch.tensor(array, dtype=torch.float32)
        out = forward(lib, leaf, given)
        if weights is None:
            weights = rng.standard_normal(tuple(out.shape))
        (out * lib.tensor(weights, dtype=lib.float32)).sum().backward()
        got[lib] = (out.dtype, np.array(out.detach().numpy() if lib is torch else out.data))
        grad = leaf.grad.numpy() if lib is torch else leaf.grad
        got[lib] += (grad.dtype, np.array(grad))
    ours, theirs = got[wxb], got[torch]
    assert ours[0] == np.float32 and ours[2] == np.float32, seeded.msg(f"{case}: {ours[0]}")
    for k, what in ((1, "values"), (3, "∂L/∂leaf")):
        np.testing.assert_allclose(
            ours[k], theirs[k], rtol=1e-5, atol=1e-5, err_msg=seeded.msg(f"{case}: {what}")
        )
