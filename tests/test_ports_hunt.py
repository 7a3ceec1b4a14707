"""PyTorch's tutorials ported to wxb as a first-time user writes the port: "Learning
PyTorch with Examples" (a cubic fitted to sin(x)) and the quickstart's habits of moving
weights between the two libraries. Each test runs both sides on fresh random draws (the
``seeded`` fixture prints its seed; replay with ``WXB_TEST_SEED=<seed>``) and compares
the losses step by step in float64.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import wxb
from wxb import nn
from wxb.errors import ConfigError, ShapeError, TrainingError

torch = pytest.importorskip("torch")

STEPS = 40


def _generator(seeded) -> torch.Generator:
    return torch.Generator().manual_seed(int(seeded.seed % 2**63))


def test_the_cubics_weights_drawn_by_torch_keep_float64(seeded):
    """Part (c), autograd by hand: ``a = torch.randn((), dtype=torch.float64,
    requires_grad=True)``, ported as ``wxb.Tensor(torch.randn((), dtype=…), requires_grad=
    True)`` to start from torch's very weights. A 0-d torch tensor became float32 (a
    dimensioned one, and a NumPy float64 scalar, kept float64), so a, b, c, d lost their
    last 29 bits and every loss after differed from torch's by ~1e-8 relative."""
    draws = torch.randn(4, dtype=torch.float64, generator=_generator(seeded))
    x_np = np.linspace(-math.pi, math.pi, 500)
    lr = 1e-6
    losses = {}
    for lib in ("torch", "wxb"):
        if lib == "torch":
            x, y = torch.tensor(x_np), torch.sin(torch.tensor(x_np))
            weights = [draws[i].clone().requires_grad_(True) for i in range(4)]
            no_grad = torch.no_grad
        else:
            x, y = wxb.Tensor(x_np), wxb.Tensor(np.sin(x_np))
            weights = [wxb.Tensor(draws[i].clone(), requires_grad=True) for i in range(4)]
            no_grad = wxb.no_grad
        assert all(w.dtype in (torch.float64, np.float64) for w in weights), seeded.msg(lib)
        a, b, c, d = weights
        losses[lib] = []
        for _ in range(STEPS):
            y_pred = a + b * x + c * x**2 + d * x**3
            loss = (y_pred - y).pow(2).sum()
            losses[lib].append(loss.item())
            loss.backward()
            with no_grad():
                for w in weights:
                    w -= lr * w.grad
                    w.grad = None
    np.testing.assert_allclose(
        losses["wxb"], losses["torch"], rtol=1e-12, err_msg=seeded.msg("losses")
    )


def test_a_module_of_ones_own_with_parameters_from_torch_draws(seeded):
    """Part (g): ``self.a = nn.Parameter(torch.randn(()))`` under
    ``torch.set_default_dtype(torch.float64)``, ported keeping torch's draws: the
    Parameter was float32 while the same draws as 1-element tensors were float64."""
    draws = torch.randn(4, dtype=torch.float64, generator=_generator(seeded))
    x_np = np.linspace(-math.pi, math.pi, 300)

    def polynomial(module, parameter):
        class Polynomial3(module):
            def __init__(self):
                super().__init__()
                self.a, self.b, self.c, self.d = (parameter(draws[i].clone()) for i in range(4))

            def forward(self, x):
                return self.a + self.b * x + self.c * x**2 + self.d * x**3

        return Polynomial3()

    ours = polynomial(nn.Module, nn.Parameter)
    theirs = polynomial(torch.nn.Module, torch.nn.Parameter)
    assert all(p.dtype == np.float64 for p in ours.parameters()), seeded.msg("dtypes")
    opt = wxb.optim.SGD(ours.parameters(), lr=1e-6, momentum=0.9)
    torch_opt = torch.optim.SGD(theirs.parameters(), lr=1e-6, momentum=0.9)
    x, y = wxb.Tensor(x_np), np.sin(x_np)
    tx, ty = torch.tensor(x_np), torch.sin(torch.tensor(x_np))
    for step in range(STEPS):
        loss = ((ours(x) - y) ** 2).sum()  # (torch's MSELoss(reduction='sum'): wxb's is ½ of it)
        opt.zero_grad()
        loss.backward()
        opt.step()
        torch_loss = ((theirs(tx) - ty) ** 2).sum()
        torch_opt.zero_grad()
        torch_loss.backward()
        torch_opt.step()
        assert loss.item() == pytest.approx(torch_loss.item(), rel=1e-12), seeded.msg(
            f"step {step}"
        )


@pytest.mark.parametrize("source", ["parameter", "data"])
def test_weights_assigned_from_a_torch_layer_through_data(seeded, source):
    """``ours.weight.data = theirs.weight`` (or ``theirs.weight.data``), PyTorch's idiom
    for starting two models from the same weights: the parameter held the torch tensor
    itself, and the first forward failed deep in NumPy ("Cannot interpret 'torch.float32'
    as a data type")."""
    rng = seeded.rng
    torch.manual_seed(int(seeded.seed % 2**63))
    theirs = torch.nn.Sequential(
        torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3)
    ).double()
    ours = nn.Sequential(
        nn.Linear(5, 7, dtype="float64"), nn.ReLU(), nn.Linear(7, 3, dtype="float64")
    )
    for mine, other in ((ours[0], theirs[0]), (ours[2], theirs[2])):
        mine.weight.data = other.weight if source == "parameter" else other.weight.data
        mine.bias.data = other.bias if source == "parameter" else other.bias.data
        assert type(mine.weight.data) is np.ndarray, seeded.msg(source)
        # the same memory, as torch's p.data = t shares it: train a copy beside ours
        assert np.shares_memory(mine.weight.data, other.weight.detach().numpy())
    theirs = copy.deepcopy(theirs)
    opt = wxb.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    torch_opt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    X, y = rng.standard_normal((23, 5)), rng.integers(0, 3, 23)
    for step in range(5):
        opt.zero_grad()
        loss = nn.CrossEntropyLoss()(ours(X), y)
        loss.backward()
        opt.step()
        torch_opt.zero_grad()
        torch_loss = torch.nn.functional.cross_entropy(theirs(torch.tensor(X)), torch.tensor(y))
        torch_loss.backward()
        torch_opt.step()
        assert loss.item() == pytest.approx(torch_loss.item(), rel=1e-12), seeded.msg(
            f"{source}, step {step}"
        )


def test_data_refuses_what_is_not_an_array(seeded):
    """A list as ``p.data`` (torch raises a TypeError) was stored as it came, and the
    layer failed later on ``'list' object has no attribute 'dtype'``."""
    layer = nn.Linear(3, 2)
    with pytest.raises(ConfigError, match=r"Parameter\.data = list"):
        layer.weight.data = [[1.0, 2.0, 3.0]] * 2
    assert type(layer.weight.data) is np.ndarray, seeded.msg("kept")


@pytest.mark.parametrize(
    "call",
    [
        lambda x, y: x.add(y, alpha=0.37),
        lambda x, y: x.sub(y, alpha=-2.5),
        lambda x, y: x.add(y),
        lambda x, y: x.sub(1.25, alpha=3),
        lambda x, y: x.mul(y),
        lambda x, y: x.div(y.abs() + 1),
        lambda x, y: x.div(4.0),
    ],
    ids=["add-alpha", "sub-alpha", "add", "sub-number", "mul", "div", "div-number"],
)
def test_torchs_operator_methods_give_torchs_values_and_gradients(seeded, call):
    """``w1.add(w2, alpha=…)``, ``t.sub``, ``t.mul``, ``t.div``: torch's names for the
    operators, which a port calls as written (they raised AttributeError)."""
    rng = seeded.rng
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    xw, yw = wxb.Tensor(a.copy(), requires_grad=True), wxb.Tensor(b.copy(), requires_grad=True)
    xt, yt = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    out_w, out_t = call(xw, yw), call(xt, yt)
    np.testing.assert_allclose(out_w.data, out_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    weights = rng.standard_normal(out_w.shape)
    (out_w * weights).sum().backward()
    (out_t * torch.tensor(weights)).sum().backward()
    msg = seeded.msg("gradient")
    np.testing.assert_allclose(xw.grad, xt.grad.numpy(), rtol=1e-12, atol=1e-14, err_msg=msg)
    if yt.grad is not None:
        np.testing.assert_allclose(yw.grad, yt.grad.numpy(), rtol=1e-12, atol=1e-14, err_msg=msg)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torchs_in_place_methods_update_a_parameter_as_torchs(seeded, dtype):
    """The 60-minute blitz's ``f.data.sub_(f.grad.data * lr)`` and the copies
    ``w.copy_(other)`` ported: ``sub_``, ``add_`` (alpha=), ``mul_``, ``div_`` and
    ``copy_`` change the tensor itself and return it, as torch's."""
    rng = seeded.rng
    start, other = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    ours, theirs = nn.Parameter(start.astype(dtype)), torch.nn.Parameter(torch.tensor(start))
    theirs.data = theirs.data.to(getattr(torch, np.dtype(dtype).name))
    steps = [
        lambda p, o: p.sub_(o, alpha=0.3),
        lambda p, o: p.add_(o * 2),
        lambda p, o: p.mul_(o.abs() + 0.5),
        lambda p, o: p.div_(3.0),
        lambda p, o: p.copy_(o[1]),  # broadcast over the rows, as torch's
    ]
    for i, step in enumerate(steps):
        with wxb.no_grad():
            assert step(ours, wxb.Tensor(other)) is ours, seeded.msg(f"step {i}")
        with torch.no_grad():
            step(theirs, torch.tensor(other))
        np.testing.assert_allclose(
            ours.data, theirs.detach().numpy(), rtol=1e-6, err_msg=seeded.msg(f"step {i}")
        )
        assert ours.dtype == dtype
    with pytest.raises(TrainingError, match="in-place"):  # recorded: refused, as torch's
        ours.add_(1.0)


def test_copy_takes_a_torch_parameters_values(seeded):
    """``with torch.no_grad(): ours.weight.copy_(theirs.weight)``: torch's copy_ reads a
    tensor that requires grad; NumPy's read of it raised torch's RuntimeError."""
    theirs = torch.nn.Linear(4, 2).double()
    ours = nn.Linear(4, 2, dtype="float64")
    with wxb.no_grad():
        ours.weight.copy_(theirs.weight)
        ours.bias.copy_(theirs.bias)
    X = seeded.rng.standard_normal((6, 4))
    np.testing.assert_allclose(
        ours(X).data, theirs(torch.tensor(X)).detach().numpy(), rtol=1e-12, err_msg=seeded.msg("")
    )


def test_backward_takes_torchs_gradient_keyword(seeded):
    """ "A Gentle Introduction to torch.autograd": ``Q.backward(gradient=external_grad)``
    raised TypeError (wxb named it ``grad``); torch's create_graph= and inputs= are
    refused in one line rather than dropped."""
    rng = seeded.rng
    a_np, b_np, g_np = rng.standard_normal(5), rng.standard_normal(5), rng.standard_normal(5)
    a, b = wxb.Tensor(a_np, requires_grad=True), wxb.Tensor(b_np, requires_grad=True)
    ta, tb = torch.tensor(a_np, requires_grad=True), torch.tensor(b_np, requires_grad=True)
    (3 * a**3 - b**2).backward(gradient=torch.tensor(g_np), retain_graph=None)
    (3 * ta**3 - tb**2).backward(gradient=torch.tensor(g_np))
    np.testing.assert_allclose(a.grad, ta.grad.numpy(), rtol=1e-12, err_msg=seeded.msg("a"))
    np.testing.assert_allclose(b.grad, tb.grad.numpy(), rtol=1e-12, err_msg=seeded.msg("b"))
    for option in ({"create_graph": True}, {"inputs": [a]}):
        with pytest.raises(ConfigError, match="PyTorch's option"):
            (a * b).sum().backward(**option)
    with pytest.raises(TypeError, match="once"):
        (a * b).backward(g_np, gradient=g_np)


def _legendre(base):
    class LegendrePolynomial3(base):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return 0.5 * (5 * input**3 - 3 * input)

        @staticmethod
        def backward(ctx, grad_output):
            (input,) = ctx.saved_tensors
            return grad_output * 1.5 * (5 * input**2 - 1)

    return LegendrePolynomial3


def test_the_tutorials_custom_function_as_torchs(seeded):
    """Part (d), "Defining new autograd functions": LegendrePolynomial3 subclasses
    torch.autograd.Function; the port's ``wxb.autograd.Function`` did not exist."""
    start = np.array([0.0, -1.0, 0.0, 0.3]) + 0.01 * seeded.rng.standard_normal(4)
    x_np = np.linspace(-math.pi, math.pi, 500)
    losses = {}
    for lib, base, no_grad in (
        ("torch", torch.autograd.Function, torch.no_grad),
        ("wxb", wxb.autograd.Function, wxb.no_grad),
    ):
        if lib == "torch":
            x, y = torch.tensor(x_np), torch.sin(torch.tensor(x_np))
            weights = [torch.tensor(v, requires_grad=True) for v in start]
        else:
            x, y = wxb.Tensor(x_np), wxb.Tensor(np.sin(x_np))
            weights = [wxb.Tensor(v, requires_grad=True) for v in start]
        P3 = _legendre(base).apply
        a, b, c, d = weights
        losses[lib] = []
        for _ in range(STEPS):
            loss = (a + b * P3(c + d * x) - y).pow(2).sum()
            losses[lib].append(loss.item())
            loss.backward()
            with no_grad():
                for w in weights:
                    w -= 2e-5 * w.grad
                    w.grad = None
    np.testing.assert_allclose(
        losses["wxb"], losses["torch"], rtol=1e-12, err_msg=seeded.msg("losses")
    )


def test_a_custom_functions_gradients_are_summed_and_checked_as_torchs(seeded):
    """A backward that returns a broadcast gradient (the output's shape for a row bias)
    is summed back to the input's shape, as torch sums it; a number among the inputs
    takes None; a gradient of another shape, or too few, is refused by name."""
    rng = seeded.rng
    X, row, g = rng.standard_normal((5, 3)), rng.standard_normal(3), rng.standard_normal((5, 3))

    def shifted(base):
        class Shifted(base):
            @staticmethod
            def forward(ctx, x, bias, scale):
                ctx.save_for_backward(x)
                ctx.scale = scale
                return (x + bias) * scale

            @staticmethod
            def backward(ctx, grad_output):
                return grad_output * ctx.scale, grad_output * ctx.scale, None

        return Shifted

    xw, bw = wxb.Tensor(X, requires_grad=True), wxb.Tensor(row, requires_grad=True)
    xt, bt = torch.tensor(X, requires_grad=True), torch.tensor(row, requires_grad=True)
    shifted(wxb.autograd.Function).apply(xw, bw, 2.5).backward(g)
    shifted(torch.autograd.Function).apply(xt, bt, 2.5).backward(torch.tensor(g))
    np.testing.assert_allclose(xw.grad, xt.grad.numpy(), rtol=1e-12, err_msg=seeded.msg("x"))
    np.testing.assert_allclose(bw.grad, bt.grad.numpy(), rtol=1e-12, err_msg=seeded.msg("b"))

    class TooFew(wxb.autograd.Function):
        forward = staticmethod(lambda ctx, x, k: x * k)
        backward = staticmethod(lambda ctx, grad: grad)

    class WrongShape(wxb.autograd.Function):
        forward = staticmethod(lambda ctx, x: x * 2)
        backward = staticmethod(lambda ctx, grad: grad[:2])

    with pytest.raises(ConfigError, match="returned 1 gradient"):
        TooFew.apply(xw, 2.0).sum().backward()
    with pytest.raises(ShapeError, match=r"WrongShape\.backward: gradient 0 has shape"):
        WrongShape.apply(xw).sum().backward()


def test_fit_says_how_to_hand_over_samples_of_several_dimensions(seeded):
    """The quickstart's (N, 28, 28) images handed to wxb.fit: refused as not 2-D with no
    word on what to do; a forward that flattens first (``x.flatten(1)``) now takes them
    as torch's does (its outputs for X's first rows are those of the rows flattened), and
    the port trains as torch's on the same rows."""
    rng = seeded.rng
    X = rng.standard_normal((30, 4, 4))
    y = rng.integers(0, 3, 30)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stack = nn.Sequential(nn.Linear(16, 8, dtype="float64"), nn.ReLU())
            self.out = nn.Linear(8, 3, dtype="float64")

        def forward(self, x):
            return self.out(self.stack(x.flatten(1)))

    model = Net()
    wxb.fit(model, X, y, epochs=1, verbose=0)
    images, rows = wxb.evaluate(model, X, y), wxb.evaluate(model, X.reshape(30, -1), y)
    assert images == rows, seeded.msg("images and rows")
    with pytest.raises(wxb.DataError, match=r"\(-1, 1\) for one feature"):
        model.predict(X[0, 0])
    loss = wxb.evaluate(model, X.reshape(30, -1), y)["loss"]
    expected = torch.nn.functional.cross_entropy(
        torch.tensor(model(X).data), torch.tensor(y)
    ).item()
    assert loss == pytest.approx(expected, rel=1e-12), seeded.msg("evaluate")


@pytest.mark.parametrize(
    ("module", "name", "says"),
    [
        (nn, "LazyBatchNorm1d", r"BatchNorm1d\(features\)"),
        (nn, "CTCLoss", "BCEWithLogitsLoss"),
        (wxb, "utils", "DataLoader"),
        (wxb, "inference_mode", r"wxb\.no_grad\(\)"),
    ],
)
def test_torchs_names_wxb_lacks_say_what_to_write(module, name, says):
    """nn.LazyBatchNorm1d (nn.LazyLinear, nn.Flatten and nn.Unflatten are wxb's now), nn.CTCLoss
    (PoissonNLLLoss is wxb's since losses51), torch.utils.data.DataLoader (torch.nn.utils is
    wxb.nn.utils since ports45): an AttributeError that named only the missing name."""
    with pytest.raises(AttributeError, match=says):
        getattr(module, name)
    assert not hasattr(module, name)


def test_print_shows_a_tensors_values_as_torchs_does(seeded):
    """The quickstart prints ``f"Values : {param[:2]}"`` and the autograd tutorial
    ``print(w.grad)``-style lines: a wxb tensor printed its shape alone. The printed
    numbers must read back as the tensor's (to print's 8 digits)."""
    import ast

    values = seeded.rng.standard_normal((2, 3))
    layer = nn.Linear(3, 2, dtype="float64")
    with wxb.no_grad():
        layer.weight.copy_(values)
    for shown, kind in ((f"{layer.weight[:2]}", "Tensor"), (str(layer.weight), "Parameter")):
        assert shown.startswith(f"{kind}([["), seeded.msg(shown)
        assert shown.endswith("requires_grad=True)"), seeded.msg(shown)
        listed = ast.literal_eval(shown[len(kind) + 1 : shown.rindex("]") + 1])
        np.testing.assert_allclose(listed, values, rtol=1e-7, atol=1e-8, err_msg=seeded.msg(shown))
    assert repr(layer.weight) == "Parameter(shape=(2, 3), dtype=float64)"


def test_is_leaf_and_grad_fn_as_torchs(seeded):
    """The autograd tutorial prints ``z.grad_fn`` and ``loss.grad_fn`` and tests tensors
    for ``is_leaf``: both raised AttributeError. Which tensors are leaves, and which
    have a grad_fn, must be torch's for the same computation."""
    rng = seeded.rng
    x_np, w_np, b_np = rng.standard_normal(5), rng.standard_normal((5, 3)), rng.standard_normal(3)

    def tensors(lib):
        if lib == "torch":
            x, y = torch.tensor(x_np), torch.zeros(3, dtype=torch.float64)
            w, b = torch.tensor(w_np, requires_grad=True), torch.tensor(b_np, requires_grad=True)
            f, no_grad = torch.nn.functional, torch.no_grad
        else:
            x, y = wxb.Tensor(x_np), wxb.Tensor(np.zeros(3))
            w, b = wxb.Tensor(w_np, requires_grad=True), wxb.Tensor(b_np, requires_grad=True)
            f, no_grad = nn.functional, wxb.no_grad
        z = x.matmul(w) + b
        loss = f.binary_cross_entropy_with_logits(z, y)
        with no_grad():
            z_off = x.matmul(w) + b
        return [x, w, b, z, loss, z_off, z.detach(), x * 2, (w * 2).sum()]

    theirs, ours = tensors("torch"), tensors("wxb")
    for i, (t, o) in enumerate(zip(theirs, ours, strict=True)):
        assert o.is_leaf == t.is_leaf, seeded.msg(f"tensor {i}")
        assert (o.grad_fn is None) == (t.grad_fn is None), seeded.msg(f"tensor {i}")
    assert "bce_with_logits" in str(ours[4].grad_fn)
