"""In-place changes after a forward, against PyTorch: torch refuses a backward exactly
when an in-place change overwrote a value its backward keeps, and runs it otherwise. wxb
must refuse where torch refuses and give torch's gradients where torch runs; above all it
must never run a backward that reads an overwritten value."""

import numpy as np
import pytest

import wxb
import wxb.nn.functional as WF
from wxb.nn import Parameter
from wxb.optim import SGD

torch = pytest.importorskip("torch")
TF = torch.nn.functional

SHAPE = (3, 4)
LABELS = np.array([0, 2, 1])


def _normal(rng, shape=SHAPE):
    return rng.standard_normal(shape)


def _positive(rng, shape=SHAPE):
    return rng.uniform(0.5, 2.0, shape)


def _shaped(shape, draw=_normal):
    return lambda rng: draw(rng, shape)


# name: (input draws, torch's forward, wxb's forward); inputs are float64 in both
OPS = {
    "exp": ([_normal], lambda t: t[0].exp(), lambda t: t[0].exp()),
    "expm1": ([_normal], lambda t: t[0].expm1(), lambda t: wxb.expm1(t[0])),
    "log": ([_positive], lambda t: t[0].log(), lambda t: t[0].log()),
    "sqrt": ([_positive], lambda t: t[0].sqrt(), lambda t: t[0].sqrt()),
    "neg": ([_normal], lambda t: -t[0], lambda t: -t[0]),
    "sigmoid": ([_normal], lambda t: t[0].sigmoid(), lambda t: t[0].sigmoid()),
    "tanh": ([_normal], lambda t: t[0].tanh(), lambda t: t[0].tanh()),
    "relu": ([_normal], lambda t: TF.relu(t[0]), lambda t: WF.relu(t[0])),
    "leaky_relu": (
        [_normal],
        lambda t: TF.leaky_relu(t[0], 0.1),
        lambda t: WF.leaky_relu(t[0], 0.1),
    ),
    "gelu": ([_normal], lambda t: TF.gelu(t[0]), lambda t: WF.gelu(t[0])),
    "silu": ([_normal], lambda t: TF.silu(t[0]), lambda t: WF.silu(t[0])),
    "elu": ([_normal], lambda t: TF.elu(t[0]), lambda t: WF.elu(t[0])),
    "softplus": ([_normal], lambda t: TF.softplus(t[0]), lambda t: WF.softplus(t[0])),
    "softmax": ([_normal], lambda t: TF.softmax(t[0], -1), lambda t: WF.softmax(t[0])),
    "softmax(0)": ([_normal], lambda t: t[0].softmax(0), lambda t: t[0].softmax(0)),
    "log_softmax": ([_normal], lambda t: t[0].log_softmax(1), lambda t: t[0].log_softmax(1)),
    "reciprocal": ([_positive], lambda t: t[0].reciprocal(), lambda t: wxb.reciprocal(t[0])),
    "x ** 2": ([_normal], lambda t: t[0] ** 2, lambda t: t[0] ** 2),
    "2 ** x": ([_normal], lambda t: 2 ** t[0], lambda t: 2 ** t[0]),
    "clamp": ([_normal], lambda t: t[0].clamp(-0.5, 0.5), lambda t: t[0].clamp(-0.5, 0.5)),
    "sum": ([_normal], lambda t: t[0].sum(1), lambda t: t[0].sum(1)),
    "mean": ([_normal], lambda t: t[0].mean(), lambda t: t[0].mean()),
    "var": ([_normal], lambda t: t[0].var(1), lambda t: t[0].var(1)),
    "std": ([_normal], lambda t: t[0].std(), lambda t: t[0].std()),
    "norm": ([_normal], lambda t: t[0].norm(), lambda t: t[0].norm()),
    "prod": ([_positive], lambda t: t[0].prod(), lambda t: t[0].prod()),
    "max": ([_normal], lambda t: t[0].max(), lambda t: t[0].max()),
    "max(1)": ([_normal], lambda t: t[0].max(1)[0], lambda t: t[0].max(1)[0]),
    "amax(1)": ([_normal], lambda t: t[0].amax(1), lambda t: wxb.amax(t[0], 1)),
    "amin keepdim": (
        [_normal],
        lambda t: t[0].amin(0, keepdim=True),
        lambda t: wxb.amin(t[0], 0, keepdim=True),
    ),
    "logsumexp": ([_normal], lambda t: t[0].logsumexp(1), lambda t: t[0].logsumexp(1)),
    "logsumexp keepdim": (
        [_normal],
        lambda t: t[0].logsumexp(0, keepdim=True),
        lambda t: t[0].logsumexp(0, keepdim=True),
    ),
    "cumsum": ([_normal], lambda t: t[0].cumsum(1), lambda t: t[0].cumsum(1)),
    "reshape": ([_normal], lambda t: t[0].reshape(-1), lambda t: t[0].reshape(-1)),
    "T": ([_normal], lambda t: t[0].T, lambda t: t[0].T),
    "x[0]": ([_normal], lambda t: t[0][0], lambda t: t[0][0]),
    "x[[0, 2]]": ([_normal], lambda t: t[0][[0, 2]], lambda t: t[0][[0, 2]]),
    "gather": (
        [_normal],
        lambda t: t[0].gather(1, torch.tensor([[0], [3], [1]])),
        lambda t: t[0].gather(1, np.array([[0], [3], [1]])),
    ),
    "clone": ([_normal], lambda t: t[0].clone(), lambda t: t[0].clone()),
    "layer_norm": (
        [_normal, _shaped(4), _shaped(4)],
        lambda t: TF.layer_norm(t[0], (4,), t[1], t[2]),
        lambda t: WF.layer_norm(t[0], (4,), t[1], t[2]),
    ),
    "batch_norm": (
        [_normal, _shaped(4)],
        lambda t: TF.batch_norm(t[0], None, None, t[1], None, training=True),
        lambda t: WF.batch_norm(t[0], None, None, t[1], None, training=True),
    ),
    "add": ([_normal, _normal], lambda t: t[0] + t[1], lambda t: t[0] + t[1]),
    "sub": ([_normal, _normal], lambda t: t[0] - t[1], lambda t: t[0] - t[1]),
    "mul": ([_normal, _normal], lambda t: t[0] * t[1], lambda t: t[0] * t[1]),
    "mul broadcast": ([_normal, _shaped(4)], lambda t: t[0] * t[1], lambda t: t[0] * t[1]),
    "x * 3": ([_normal], lambda t: t[0] * 3.0, lambda t: t[0] * 3.0),
    "div": ([_normal, _positive], lambda t: t[0] / t[1], lambda t: t[0] / t[1]),
    "x / 3": ([_normal], lambda t: t[0] / 3.0, lambda t: t[0] / 3.0),
    "x % y": ([_positive, _positive], lambda t: t[0] % t[1], lambda t: t[0] % t[1]),
    "x ** y": ([_positive, _normal], lambda t: t[0] ** t[1], lambda t: t[0] ** t[1]),
    "matmul": ([_normal, _shaped((4, 2))], lambda t: t[0] @ t[1], lambda t: t[0] @ t[1]),
    "matvec": ([_normal, _shaped(4)], lambda t: t[0] @ t[1], lambda t: t[0] @ t[1]),
    "bmm": (
        [_shaped((2, 3, 4)), _shaped((2, 4, 2))],
        lambda t: t[0].bmm(t[1]),
        lambda t: wxb.bmm(t[0], t[1]),
    ),
    "einsum": (
        [_normal, _shaped((4, 2))],
        lambda t: torch.einsum("ij,jk->ik", t[0], t[1]),
        lambda t: wxb.einsum("ij,jk->ik", t[0], t[1]),
    ),
    "linear": (
        [_normal, _shaped((2, 4)), _shaped(2)],
        lambda t: TF.linear(t[0], t[1], t[2]),
        lambda t: WF.linear(t[0], t[1], t[2]),
    ),
    "maximum": (
        [_normal, _normal],
        lambda t: torch.maximum(t[0], t[1]),
        lambda t: wxb.maximum(t[0], t[1]),
    ),
    "where": (
        [_normal, _normal],
        lambda t: torch.where(t[0] > 0, t[0], t[1]),
        lambda t: wxb.where(t[0] > 0, t[0], t[1]),
    ),
    "cat": ([_normal, _normal], lambda t: torch.cat([t[0], t[1]]), lambda t: wxb.cat([t[0], t[1]])),
    "mse_loss": (
        [_normal, _normal],
        lambda t: 2 * TF.mse_loss(t[0], t[1]),
        lambda t: WF.mse_loss(t[0], t[1]),
    ),
    "l1_loss": (
        [_normal, _normal],
        lambda t: TF.l1_loss(t[0], t[1]),
        lambda t: WF.l1_loss(t[0], t[1]),
    ),
    "huber_loss": (
        [_normal, _normal],
        lambda t: TF.huber_loss(t[0], t[1]),
        lambda t: WF.huber_loss(t[0], t[1]),
    ),
    "cross_entropy": (
        [_normal],
        lambda t: TF.cross_entropy(t[0], torch.tensor(LABELS)),
        lambda t: WF.cross_entropy(t[0], LABELS),
    ),
    "cross_entropy none": (
        [_normal],
        lambda t: TF.cross_entropy(t[0], torch.tensor(LABELS), reduction="none"),
        lambda t: WF.cross_entropy(t[0], LABELS, reduction="none"),
    ),
    "nll_loss": (
        [_normal],
        lambda t: TF.nll_loss(t[0], torch.tensor(LABELS)),
        lambda t: WF.nll_loss(t[0], LABELS),
    ),
}

# Where wxb still differs from torch, with no wrong number (see the report of this hunt):
# it runs with the values of the forward where torch's fused kernel or its own
# bookkeeping refuses. Left out of the sweep, each named here.
KNOWN = {
    # torch keeps the targets of these losses; wxb takes ∂L/∂ŷ in the forward
    ("mse_loss", "in:1"),
    ("huber_loss", "in:1"),
    # torch keeps A^B whenever B is a tensor; wxb's ∂/∂A reads A and B alone
    ("x ** y", "out"),
    # torch's fused layer norm keeps β too; wxb's graph adds it (reads nothing)
    ("layer_norm", "in:2"),
}


def _known(op, needs, scenario):
    # torch's fused norms keep x and γ whatever needs a gradient; wxb's graph reads x̂
    # only for ∂L/∂γ, and nothing of x when x needs none
    if op in ("layer_norm", "batch_norm") and not needs[0]:
        return True
    return (op, scenario.replace("-view", "").replace("-slice", "")) in KNOWN


def _run(lib, op, arrays, needs, scenario, seed):
    """The forward, an in-place change, the backward: ("raised", message) or the leaves'
    gradients (None where one got none)."""
    _, torch_forward, wxb_forward = OPS[op]
    if lib == "torch":
        leaves = [
            torch.tensor(a.copy(), requires_grad=n) for a, n in zip(arrays, needs, strict=True)
        ]
        y = torch_forward(leaves)
        quiet = torch.no_grad
    else:
        leaves = [
            wxb.tensor(a.copy(), requires_grad=n, dtype="float64")
            for a, n in zip(arrays, needs, strict=True)
        ]
        y = wxb_forward(leaves)
        quiet = wxb.no_grad
    kind, _, which = scenario.partition(":")
    with quiet():
        if kind == "out":
            y.mul_(1.5)
        elif kind == "out-view":
            (y[0] if y.ndim else y).mul_(1.5)
        elif kind == "in":
            leaves[int(which)].mul_(1.5)
        elif kind == "in-view":
            t = leaves[int(which)]
            t[0] = 7.0  # through the tensor's own indexing
        elif kind == "in-slice":
            t = leaves[int(which)]
            t[0].mul_(1.5)  # through a view of it
    seed_grad = np.random.default_rng(seed).standard_normal(tuple(y.shape))
    try:
        y.backward(
            torch.tensor(seed_grad) if lib == "torch" else wxb.tensor(seed_grad, dtype="float64")
        )
    except (RuntimeError, wxb.WxbError) as error:
        return ("raised", str(error))
    grads = []
    for t in leaves:
        g = t.grad
        grads.append(None if g is None else np.asarray(g.numpy() if lib == "torch" else g))
    return grads


def _scenarios(count):
    yield "none"
    yield "out"
    yield "out-view"
    for i in range(count):
        yield f"in:{i}"
        yield f"in-view:{i}"
        yield f"in-slice:{i}"


def _which_need(count):
    yield (True,) * count
    if count > 1:
        for i in range(count):
            yield tuple(j == i for j in range(count))


def test_a_change_in_place_after_the_forward_is_refused_or_taken_as_torch(seeded):
    """Every op, every input and the output changed in place (or through a view) after
    the forward, with every input or one requiring grad: wxb refuses exactly where torch
    refuses, with one line saying what was modified, and elsewhere gives torch's
    gradients. (wxb refused a backward of σ, tanh, ReLU, softmax, x ⊙ c, x @ W with W or
    x constant after the other changed, which torch runs; it ran amax's and logsumexp's
    backward with their result changed in place, reading the changed values.)"""
    rng = seeded.rng
    differ = []
    for op, (draws, _, _) in OPS.items():
        arrays = [draw(rng) for draw in draws]
        for needs in _which_need(len(arrays)):
            for scenario in _scenarios(len(arrays)):
                if _known(op, needs, scenario):
                    continue
                seed = int(rng.integers(2**31))
                theirs = _run("torch", op, arrays, needs, scenario, seed)
                ours = _run("wxb", op, arrays, needs, scenario, seed)
                what = f"{op} with {needs} requiring grad, {scenario}"
                if isinstance(theirs, tuple) or isinstance(ours, tuple):
                    if not (isinstance(theirs, tuple) and isinstance(ours, tuple)):
                        differ.append(f"{what}: torch {theirs!s:.90}; wxb {ours!s:.90}")
                    elif "\n" in ours[1] or "modified in place" not in ours[1]:
                        differ.append(f"{what}: wxb's refusal is not one line: {ours[1]!r}")
                    continue
                for k, (t, w) in enumerate(zip(theirs, ours, strict=True)):
                    if (t is None) != (w is None) or (
                        t is not None and not np.allclose(w, t, rtol=1e-9, atol=1e-12)
                    ):
                        differ.append(f"{what}: ∂/∂input {k} differs from torch's")
    assert not differ, seeded.msg("\n".join(differ))


@pytest.mark.parametrize(
    "forward",
    [
        lambda x: x.logsumexp(1),
        lambda x: x.logsumexp(1, keepdim=True),
        lambda x: wxb.amax(x, 1),
        lambda x: wxb.amin(x),
    ],
    ids=["logsumexp", "logsumexp keepdim", "amax", "amin of all"],
)
def test_a_result_its_backward_reads_refuses_when_changed_in_place(seeded, forward):
    """amax/amin and logsumexp hand back the array their backward reads: changed in place
    under no_grad, the backward ran with the changed values (a wrong gradient, no word)."""
    x = wxb.tensor(seeded.rng.standard_normal((3, 5)), requires_grad=True, dtype="float64")
    y = forward(x)
    with wxb.no_grad():
        y += 1.0
    with pytest.raises(wxb.TrainingError, match="modified in place"):
        y.sum().backward()


def test_a_constant_factor_may_change_after_the_forward_as_in_torch(seeded):
    """x ⊙ c reads c alone for ∂L/∂x: a step on x (or x *= 2 under no_grad) between the
    forward and the backward leaves its gradient as it was, as torch's; changing c
    refuses. A Parameter's step and a plain scale by a number run as torch's too."""
    rng = seeded.rng
    a, c = rng.standard_normal(5), rng.standard_normal(5)
    x = Parameter(a.copy())
    y = (x * wxb.tensor(c, dtype="float64")).sum() + (x * 3.0).sum()
    with wxb.no_grad():
        x *= 2
    y.backward()
    np.testing.assert_allclose(x.grad, c + 3.0, rtol=1e-12, err_msg=seeded.msg("∂/∂x"))
    constant = wxb.tensor(c, dtype="float64")
    z = (x * constant).sum()
    with wxb.no_grad():
        constant += 1
    with pytest.raises(wxb.TrainingError, match="modified in place"):
        z.backward()


def test_an_optimizer_step_before_the_backward_of_a_one_layer_model_as_torch(seeded):
    """x·Wᵀ + b with x data reads x alone: W stepped before the backward changes nothing
    it reads (torch runs it); a second layer reads the first one's W for its δ, and
    refuses there, as torch's."""
    rng = seeded.rng
    x = rng.standard_normal((6, 4))
    w1, w2 = rng.standard_normal((3, 4)), rng.standard_normal((2, 3))
    results = {}
    for lib in ("torch", "wxb"):
        if lib == "torch":
            W1, W2 = (torch.nn.Parameter(torch.tensor(w)) for w in (w1, w2))
            X, opt, F = torch.tensor(x), torch.optim.SGD([W1, W2], lr=0.1), TF
        else:
            W1, W2 = Parameter(w1.copy()), Parameter(w2.copy())
            X, opt, F = wxb.tensor(x, dtype="float64"), SGD([W1, W2], lr=0.1), WF
        for p in (W1, W2):
            p.grad = torch.ones_like(p) if lib == "torch" else np.ones_like(p.data)
        one = F.linear(X, W1).tanh().sum()
        two = F.linear(F.linear(X, W1).tanh(), W2).sum()
        opt.step()
        one.backward()
        got = [np.array(W1.grad.numpy() if lib == "torch" else W1.grad)]
        try:
            two.backward()
            got.append("ran")
        except (RuntimeError, wxb.TrainingError):
            got.append("refused")
        results[lib] = got
    np.testing.assert_allclose(results["wxb"][0], results["torch"][0], rtol=1e-10)
    assert results["wxb"][1] == results["torch"][1] == "refused", seeded.msg(str(results))


def test_an_optimizer_step_before_the_backward_of_a_planned_sequential_as_torch(seeded):
    """The planned Sequential recorded every input's version on each node: a step
    between forward and backward refused even where nothing its backward reads changed
    (one Dense layer, X data: torch runs it). Now its nodes read as the graph's do: one
    layer and tanh gives torch's gradients; a second Dense reads the first one's W for
    its δ and is refused there, as torch's."""
    import wxb.interop
    from wxb.nn import Dense, Sequential, Tanh

    rng = seeded.rng
    X = rng.standard_normal((6, 4))
    for depth in (1, 2):
        layers = [Dense(4, 3, seed=int(rng.integers(1000))), Tanh()]
        if depth == 2:
            layers.append(Dense(3, 2, seed=int(rng.integers(1000))))
        model = Sequential(*layers).double()
        results = {}
        for lib, net in (("wxb", model), ("torch", wxb.interop.to_torch(model).double())):
            params = list(net.parameters())
            opt = SGD(params, lr=0.1) if lib == "wxb" else torch.optim.SGD(params, lr=0.1)
            x = wxb.tensor(X, dtype="float64") if lib == "wxb" else torch.tensor(X)
            (net(x) ** 2).sum().backward()
            pending = (net(x) ** 2).sum()
            opt.step()
            try:
                pending.backward()
            except (RuntimeError, wxb.WxbError):
                results[lib] = "refused"
                continue
            results[lib] = [np.array(p.grad if lib == "wxb" else p.grad.numpy()) for p in params]
        ours, theirs = results["wxb"], results["torch"]
        if depth == 2:
            assert ours == theirs == "refused", seeded.msg(str(ours))
            continue
        assert not isinstance(ours, str), seeded.msg(f"{depth} layer: {ours}")
        for p, q in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(p, q, rtol=1e-10, err_msg=seeded.msg("∂L/∂p"))


def test_a_kernel_subclass_with_a_backward_of_its_own_keeps_its_input_checked(seeded):
    """σ's backward reads its output alone, so its input may change after the forward; a
    subclass of Sigmoid with a backward of its own may read Z, and stays refused."""
    from wxb.ops import Sigmoid, activation

    class ReadsZ(Sigmoid):
        def backward(self, z, a, grad, out):
            s = 1 / (1 + np.exp(-z))
            np.multiply(grad, s * (1 - s), out=out)
            return out

    z = wxb.tensor(seeded.rng.standard_normal((2, 3)), requires_grad=True, dtype="float64")
    plain, own = activation(z, Sigmoid()).sum(), activation(z, ReadsZ()).sum()
    with wxb.no_grad():
        z += 1.0
    plain.backward()  # as torch's sigmoid
    with pytest.raises(wxb.TrainingError, match="modified in place"):
        own.backward()


def test_parameters_updated_under_no_grad_then_a_new_forward_as_torch(seeded):
    """Leaves changed in place under no_grad (clamp_, mul_, t[0] = …, a row's mul_,
    copy_) between forwards, and one backward through them all: torch's gradients, each
    forward's at its own values (σ(x) and tanh(x) keep their outputs, so the x they read
    may change after them; x ⊙ other reads other alone for ∂L/∂x)."""
    rng = seeded.rng
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    got = {}
    for lib in ("torch", "wxb"):
        if lib == "torch":
            x, other, quiet = torch.tensor(a, requires_grad=True), torch.tensor(b), torch.no_grad
        else:
            x = wxb.tensor(a, requires_grad=True, dtype="float64")
            other, quiet = wxb.tensor(b, dtype="float64"), wxb.no_grad
        first = x.sigmoid().sum() + (x * other).sum()
        with quiet():
            x.clamp_(-0.8, 0.8)
            x.mul_(1.5)
            x[0] = 0.25
            x[1].mul_(-1.0)
        second = (x.sigmoid() * other).sum()
        with quiet():
            x.copy_(other)
        (first + second + (x.tanh() * x).sum()).backward()
        got[lib] = np.asarray(x.grad.numpy() if lib == "torch" else x.grad)
    np.testing.assert_allclose(got["wxb"], got["torch"], rtol=1e-10, err_msg=seeded.msg("∂/∂x"))


def _pair(rng, shape=SHAPE):
    """One array as a torch leaf and a wxb leaf (float64, requiring grad)."""
    a = rng.standard_normal(shape)
    return torch.tensor(a, requires_grad=True), wxb.tensor(a, requires_grad=True, dtype="float64")


def _zeros(lib, shape=SHAPE):
    return torch.zeros(shape) if lib is torch else wxb.zeros(*shape, dtype="float64")


# On a computed tensor (or one taking a value that requires grad) while the graph is
# recorded, torch records the in-place operation; (x, w) → the loss
RECORDED = {
    "+= 1": lambda L, x, w: (lambda y: (y.__iadd__(1.0), (y * y).sum())[-1])(x * 2),
    "mul_(w)": lambda L, x, w: (lambda y: (y.mul_(w), (y * y).sum())[-1])(x * 2),
    "-= w, then /= w² + 1": lambda L, x, w: (
        lambda y: (y.__isub__(w), y.div_(w * w + 1), y.sum())[-1]
    )(x * 2),
    "pow_(2)": lambda L, x, w: (lambda y: (y.pow_(2), (y * w).sum())[-1])(x * 2),
    "add_(w, alpha=3)": lambda L, x, w: (lambda y: (y.add_(w, alpha=3), (y * y).sum())[-1])(x * 2),
    "exp_": lambda L, x, w: (lambda y: (y.exp_(), (y * w).sum())[-1])(x * 0.5),
    "relu_, clamp_, masked_fill_": lambda L, x, w: (
        lambda y: (y.relu_(), y.clamp_(max=0.7), y.masked_fill_(y > 0.5, 0.25), (y * w).sum())[-1]
    )(x * 2),
    "clamp_(min=w)": lambda L, x, w: (lambda y: (y.clamp_(min=w), (y * w).sum())[-1])(x * 2),
    "neg_, abs_": lambda L, x, w: (lambda y: (y.neg_(), y.abs_(), (y * w).sum())[-1])(x * 2),
    "zero_": lambda L, x, w: (lambda y: (y.zero_(), (y + w).sum())[-1])(x * 2),
    "fill_(w[0, 0])": lambda L, x, w: (lambda y: (y.fill_(w[0, 0]), (y * w).sum())[-1])(x * 2),
    "copy_(w[0])": lambda L, x, w: (lambda y: (y.copy_(w[0]), (y * x).sum())[-1])(x * 2),
    "t[0] = 5": lambda L, x, w: (lambda y: (y.__setitem__(0, 5.0), (y * y).sum())[-1])(x * 2),
    "t[:, 1:3] = w[:, :2]": lambda L, x, w: (
        lambda y: (y.__setitem__((slice(None), slice(1, 3)), w[:, :2]), (y * y).sum())[-1]
    )(x * 2),
    "t[t > 0] = 0": lambda L, x, w: (lambda y: (y.__setitem__(y > 0, 0.0), (y * w).sum())[-1])(
        x * 2
    ),
    "t[[0, 2], [1, 3]] = w[0, :2]": lambda L, x, w: (
        lambda y: (y.__setitem__(([0, 2], [1, 3]), w[0, :2]), (y * y).sum())[-1]
    )(x * 2),
    "t[0] = t[0] + w[1]": lambda L, x, w: (
        lambda y: (y.__setitem__(0, y[0] + w[1]), (y * y).sum())[-1]
    )(x * 2),
    "zeros += x": lambda L, x, w: (lambda c: (c.__iadd__(x), (c * c).sum())[-1])(_zeros(L)),
    "zeros[1] = 5 x[0]": lambda L, x, w: (
        lambda c: (c.__setitem__(1, x[0] * 5), (c * w).sum())[-1]
    )(_zeros(L)),
    "a sum taken before *= 3": lambda L, x, w: (
        lambda y: (lambda s: (y.__imul__(3.0), s + (y * w).sum())[-1])(y.sum())
    )(x * 2),
    "e^y taken before *= 3": lambda L, x, w: (
        lambda y: (lambda e: (y.__imul__(3.0), e.sum() + y.sum())[-1])(y.exp())
    )(x * 2),
    "a view's sum taken before *= 3": lambda L, x, w: (
        lambda y: (lambda s: (y.__imul__(3.0), s + y.sum())[-1])(y[0:2].sum())
    )(x * 2),
    "float32 += float64": lambda L, x, w: (lambda y: (y.__iadd__(w), (y * y).sum().double())[-1])(
        (x * 2).float()
    ),
    # refused, as torch refuses: what the backward reads was changed
    "y ⊙ y taken before += 1": lambda L, x, w: (
        lambda y: (lambda h: (y.__iadd__(1.0), h.sum())[-1])(y * y)
    )(x * 2),
    "e^x, then += 1": lambda L, x, w: (lambda y: (y.__iadd__(1.0), y.sum())[-1])(x.exp()),
    "sigmoid_, then *= 3": lambda L, x, w: (lambda y: (y.sigmoid_(), y.__imul__(3.0), y.sum())[-1])(
        x * 2
    ),
    "x += 1 on the leaf": lambda L, x, w: (x.__iadd__(1.0), x.sum())[-1],
}


@pytest.mark.parametrize("case", list(RECORDED))
def test_an_in_place_operation_on_a_computed_tensor_is_recorded_as_torch(seeded, case):
    """In-place operations on a computed tensor while the graph is recorded (ResNet's
    out += identity, t[mask] = 0, y.relu_()): torch records them; wxb refused them all
    (it recorded none). Now the same gradients as torch's, and the same refusals where
    a value the backward reads was overwritten, or the tensor is a leaf."""
    rng = seeded.rng
    xt, xw = _pair(rng)
    wt, ww = _pair(rng)
    outcome = {}
    for lib, x, w in ((torch, xt, wt), (wxb, xw, ww)):
        stage = "the in-place operation"
        try:
            loss = RECORDED[case](lib, x, w)
            stage = "backward"
            loss.backward()
        except (RuntimeError, wxb.WxbError) as error:
            outcome[lib] = (stage, str(error))
            continue
        outcome[lib] = [None if t.grad is None else np.asarray(t.grad) for t in (x, w)]
    theirs, ours = outcome[torch], outcome[wxb]
    if isinstance(theirs, tuple) or isinstance(ours, tuple):  # refused: at the same step
        assert isinstance(ours, tuple) and isinstance(theirs, tuple), seeded.msg(f"{ours}")
        assert ours[0] == theirs[0], seeded.msg(f"torch refused at {theirs[0]}; wxb: {ours}")
        message = ours[1]
        assert "\n" not in message and ("modified in place" in message or "leaf" in message)
        return
    for k, (t, o) in enumerate(zip(theirs, ours, strict=True)):
        assert (t is None) == (o is None), seeded.msg(f"∂/∂input {k}")
        if t is not None:
            np.testing.assert_allclose(o, t, rtol=1e-5, atol=1e-8, err_msg=seeded.msg(f"∂/∂{k}"))


def test_a_view_taken_before_an_in_place_change_is_taken_again_as_torchs(seeded):
    """v = y[0:2] taken before y *= 3 and used after: torch takes the view again through
    the change; wxb's record of v was from before it (refused, a backward through it
    would have skipped the × 3). Now taken again, as torch's; and z[0:2] *= 3, an
    in-place change of a view, recorded on z, as torch's."""
    values = seeded.rng.standard_normal(SHAPE)
    grads = []
    for lib in (torch, wxb):
        x = lib.tensor(values.copy(), requires_grad=True, dtype=lib.float64)
        y = x * 2
        v = y[0:2]
        y *= 3
        v.sum().backward(retain_graph=True)
        v.backward(lib.ones(2, 4, dtype=lib.float64))  # (v itself, the root)
        z = x * 2
        z[0:2] *= 3
        (z * z).sum().backward()
        grads.append(x.grad.numpy() if lib is torch else x.grad)
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12, atol=1e-12, err_msg=seeded.msg(""))


def test_a_residual_block_with_out_plus_identity_trains_as_torch(seeded):
    """ResNet's ``out = layer(x); out += x; out.relu_()`` in a Module's forward, through
    the planned Sequential and a Dense of one's own: torch's gradients."""
    import wxb.interop
    from wxb.nn import Dense, ReLU, Sequential

    rng = seeded.rng
    model = Sequential(Dense(4, 8, seed=int(rng.integers(1000))), ReLU(), Dense(8, 4, seed=2))
    model = model.double()
    twin = wxb.interop.to_torch(model).double()
    X = rng.standard_normal((5, 4))
    xw, xt = wxb.tensor(X, requires_grad=True, dtype="float64"), torch.tensor(X, requires_grad=True)
    for x, net in ((xw, model), (xt, twin)):
        out = net(x)
        out += x
        out.relu_()
        (out * out).sum().backward()
    np.testing.assert_allclose(
        xw.grad, xt.grad.numpy(), rtol=1e-5, atol=1e-7, err_msg=seeded.msg("x")
    )
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(
            p.grad, q.grad.numpy(), rtol=1e-5, atol=1e-7, err_msg=seeded.msg("W")
        )


def _functions(base):
    """torch.autograd.Function's tutorial forms, on torch's base or wxb's."""

    class Exp(base):  # keeps its output
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * y

    class Scale(base):  # keeps the factor alone: x may change after
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(w)
            return x * w

        @staticmethod
        def backward(ctx, g):
            (w,) = ctx.saved_tensors
            return g * w, g * 0

    class Stashed(base):  # keeps x as an attribute of ctx, not saved
        @staticmethod
        def forward(ctx, x):
            ctx.x = x
            return x * x

        @staticmethod
        def backward(ctx, g):
            return 2 * g * ctx.x

    return {"Exp": Exp, "Scale": Scale, "Stashed": Stashed}


def test_a_function_of_ones_own_refuses_where_what_it_kept_changed_as_torch(seeded):
    """autograd.Function: torch checks what ``save_for_backward`` kept. wxb checked every
    input and never the output: Exp's output changed in place ran its backward with the
    changed e^x (a wrong gradient, no word), and Scale refused an x it does not keep.
    Now what forward kept (saved, or set on ctx) is checked, the output among it."""
    rng = seeded.rng
    for name, changed in (("Exp", "output"), ("Scale", "x"), ("Scale", "w"), ("Stashed", "x")):
        a, b = rng.standard_normal(4), rng.standard_normal(4)
        outcome = {}
        for lib in (torch, wxb):
            base = torch.autograd.Function if lib is torch else wxb.autograd.Function
            if lib is torch:
                x, w, quiet = torch.tensor(a, requires_grad=True), torch.tensor(b), torch.no_grad
            else:
                x = wxb.tensor(a, requires_grad=True, dtype="float64")
                w, quiet = wxb.tensor(b, dtype="float64"), wxb.no_grad
            y = _functions(base)[name].apply(*((x, w) if name == "Scale" else (x,)))
            with quiet():
                {"output": y, "x": x, "w": w}[changed].mul_(2.0)
            try:
                y.sum().backward()
            except (RuntimeError, wxb.WxbError) as error:
                outcome[lib] = str(error)
                continue
            outcome[lib] = np.asarray(x.grad)
        theirs, ours = outcome[torch], outcome[wxb]
        what = seeded.msg(f"{name}, {changed} changed: torch {theirs!s:.60}; wxb {ours!s:.60}")
        if name == "Stashed":  # torch does not check ctx's attributes (a wrong gradient)
            assert isinstance(ours, str) and "modified in place" in ours, what
            continue
        assert isinstance(theirs, str) == isinstance(ours, str), what
        if isinstance(ours, str):
            assert "modified in place" in ours and "\n" not in ours, what
        else:
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, err_msg=what)
