"""Small habits of PyTorch code that failed in wxb: formatting a loss, decorating without
parentheses, clip_grad_norm_'s norm types and its .item(), get_last_lr(), a state dict of
Parameters, a layer named like the model's own attribute."""

import math

import numpy as np
import pytest

import wxb
from wxb.errors import ConfigError, TrainingError

torch = pytest.importorskip("torch")


def test_a_0d_tensor_formats_as_its_value(rng):
    value = float(rng.normal())
    ours, theirs = wxb.Tensor(np.array(value)), torch.tensor(value, dtype=torch.float64)
    for spec in ("", ".4f", "8.2e", "+.3g"):
        assert format(ours, spec) == format(theirs, spec)
    assert f"loss {ours:.3f}" == f"loss {value:.3f}"
    with pytest.raises(TypeError):
        format(wxb.Tensor(np.ones(3)), ".2f")  # as torch refuses it for a vector


def test_grad_switches_decorate_without_parentheses(rng):
    @wxb.no_grad
    def doubled(x):
        return x * 2

    @wxb.enable_grad
    def tripled(x):
        return x * 3

    x = wxb.Tensor(rng.normal(size=3), requires_grad=True)
    assert not doubled(x).requires_grad
    with wxb.no_grad():
        assert tripled(x).requires_grad
    assert wxb.is_grad_enabled()
    with pytest.raises(TypeError, match="takes no argument but a function"):
        wxb.no_grad(3)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, "inf", math.inf])
def test_clip_grad_norm_is_pytorchs_for_each_norm(rng, norm_type):
    layer = wxb.nn.Dense(int(rng.integers(2, 6)), int(rng.integers(2, 6)), dtype="float64")
    theirs = [torch.tensor(p.data, requires_grad=True) for p in layer.parameters()]
    for p, q in zip(layer.parameters(), theirs, strict=True):
        g = rng.normal(size=p.shape) * rng.uniform(0.1, 3)
        p.grad, q.grad = g.copy(), torch.tensor(g)
    max_norm = float(rng.uniform(0.1, 3))
    ours = wxb.optim.clip_grad_norm_(layer.parameters(), max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert ours.item() == pytest.approx(expected.item(), rel=1e-12)
    assert float(ours) == pytest.approx(float(expected), rel=1e-12)
    for p, q in zip(layer.parameters(), theirs, strict=True):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_clip_grad_norm_refuses_a_non_finite_norm_when_asked():
    layer = wxb.nn.Dense(2, 2, dtype="float64")
    for p in layer.parameters():
        p.grad = np.full(p.shape, np.inf)
    with pytest.raises(TrainingError, match="error_if_nonfinite"):
        wxb.optim.clip_grad_norm_(layer.parameters(), 1.0, error_if_nonfinite=True)
    with pytest.raises(ConfigError, match="norm_type must be > 0"):
        wxb.optim.clip_grad_norm_(layer.parameters(), 1.0, norm_type=0)


def test_get_last_lr_is_pytorchs(rng):
    rates = [float(rng.uniform(0.01, 0.5)), float(rng.uniform(0.01, 0.5))]
    ours = wxb.optim.SGD([{"params": wxb.nn.Dense(2, 2).parameters(), "lr": r} for r in rates])
    theirs = torch.optim.SGD(
        [{"params": torch.nn.Linear(2, 2).parameters(), "lr": r} for r in rates]
    )
    gamma = float(rng.uniform(0.5, 0.99))
    schedule = wxb.optim.ExponentialLR(ours, gamma)
    their_schedule = torch.optim.lr_scheduler.ExponentialLR(theirs, gamma)
    for _ in range(5):
        np.testing.assert_allclose(schedule.get_last_lr(), their_schedule.get_last_lr(), rtol=1e-12)
        theirs.step()
        schedule.step()
        their_schedule.step()


def test_a_state_dict_of_parameters_loads(rng):
    a = wxb.nn.Sequential(wxb.nn.Dense(3, 4), wxb.nn.ReLU(), wxb.nn.Dense(4, 2))
    b = wxb.nn.Sequential(wxb.nn.Dense(3, 4), wxb.nn.ReLU(), wxb.nn.Dense(4, 2))
    b.load_state_dict(dict(a.named_parameters()))  # Parameters, as torch accepts them
    X = rng.normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_array_equal(a(X).data, b(X).data)
    assert all(p is not q for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_a_layer_may_not_hide_the_models_own_attributes():
    for name in ("info", "name"):
        with pytest.raises(ConfigError, match=repr(name)):
            wxb.nn.Sequential(wxb.nn.Dense(3, 2, name=name))
        with pytest.raises(ConfigError, match="would hide the model's own"):
            wxb.nn.Sequential(wxb.nn.Dense(3, 2)).append(wxb.nn.ReLU(name=name))


def test_functional_softmax_takes_dim_as_torchs(rng):
    shape = tuple(int(n) for n in rng.integers(1, 5, size=int(rng.integers(1, 5))))
    x = rng.normal(size=shape) * 3
    F = wxb.nn.functional
    for dim in range(-len(shape), len(shape)):
        for ours, theirs in ((F.softmax, torch.softmax), (F.log_softmax, torch.log_softmax)):
            got = ours(wxb.Tensor(x), dim=dim).data
            np.testing.assert_allclose(
                got, theirs(torch.tensor(x), dim).numpy(), rtol=1e-12, atol=1e-15
            )
    if len(shape) <= 2:  # a vector or a (B, C) batch: the last axis, as torch's implicit dim
        np.testing.assert_allclose(
            F.softmax(wxb.Tensor(x)).data, torch.softmax(torch.tensor(x), -1).numpy(), rtol=1e-12
        )
    else:  # torch's implicit choice is dim 0 there: the axis must be said
        with pytest.raises(ConfigError, match="needs dim="):
            F.softmax(wxb.Tensor(x))


def test_pytorchs_inplace_flag_is_taken_and_computes_the_same(rng):
    """nn.ReLU(inplace=True) is everyday PyTorch: taken (wxb computes out of place, the
    same values); PyTorch's positional flag too, where its twin has one."""
    x = rng.normal(size=(4, 5))
    for make, plain in (
        (lambda: wxb.nn.ReLU(inplace=True), wxb.nn.ReLU()),
        (lambda: wxb.nn.ReLU(True), wxb.nn.ReLU()),
        (lambda: wxb.nn.LeakyReLU(0.2, True), wxb.nn.LeakyReLU(0.2)),
        (lambda: wxb.nn.ELU(0.5, inplace=True), wxb.nn.ELU(0.5)),
        (lambda: wxb.nn.SiLU(True), wxb.nn.SiLU()),
    ):
        layer = make()
        assert layer.inplace is True and layer.name is None
        given = wxb.Tensor(x.copy())
        np.testing.assert_array_equal(layer(given).data, plain(wxb.Tensor(x)).data)
        np.testing.assert_array_equal(given.data, x)  # out of place: the input as it was
    dropout = wxb.nn.Dropout(0.3, True)
    assert dropout.inplace is True and dropout.p == 0.3
    with pytest.raises(ConfigError, match="inplace must be True or False"):
        wxb.nn.ReLU(inplace="yes")
    with pytest.raises(ConfigError, match="where it takes the layer's name"):
        wxb.nn.Sigmoid(True)  # torch's Sigmoid has no flag: not read as one


def test_a_loss_moves_to_the_cpu_as_pytorchs_does():
    loss = wxb.nn.CrossEntropyLoss(weight=[1.0, 2.0])
    assert loss.to("cpu") is loss and loss.to(torch.device("cpu")) is loss
    assert loss.double() is loss and loss.float() is loss and loss.cpu() is loss
    with pytest.raises(ConfigError, match="not available"):
        loss.to("cuda")


def test_cpu_and_cuda_on_tensors_and_models_as_ported_code_calls_them(rng):
    # out.detach().cpu().numpy() and model.cpu() are in most PyTorch scripts; both were
    # AttributeErrors, where .to("cpu") works and .to("cuda") is refused in one line
    model = wxb.nn.Sequential(wxb.nn.Dense(3, 2), wxb.nn.ReLU())
    x = rng.normal(size=(4, 3)).astype(np.float32)
    out = model(x)
    assert model.cpu() is model and out.cpu() is out
    assert np.array_equal(out.detach().cpu().numpy(), model.predict(x))
    for cuda in (lambda: model.cuda(), lambda: out.cuda(), lambda: out.cuda(0)):
        with pytest.raises(ConfigError, match="not available: wxb computes on the CPU"):
            cuda()
