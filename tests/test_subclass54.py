"""Module subclasses as PyTorch users write them, against the same class in PyTorch.

The generators beside it (test_user_models50, test_user_modules_hunt, test_gen_hunt46)
draw forwards of one's own. These draw what a user changes besides forward, each class
written once for either library (``Lib``), its sizes and constants drawn fresh on each
run: a layer's ``reset_parameters`` (PyTorch's way to give a Linear, a norm or a PReLU
an init of one's own, which torch's ``__init__`` calls) and a BatchNorm1d's
``reset_running_stats``, with settings given before ``super().__init__()``; a Linear
whose W is a property over g and v (weight norm); two bases whose ``__init__``s each
call Module's; a BatchNorm1d subclass that passes a lone row on; a plain list of layers
the module holds; names wxb computes (``self.dtype``); an EMA teacher moved in the
forward (``lerp_``, ``mul_().add_(alpha=)``). Each is trained by ``wxb.fit`` beside
torch's loop on the same batches (SGD with momentum, Adam), in float64, and its weights,
buffers and predictions compared. The seed is printed in the assertion (replay with
``WXB_TEST_SEED``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import wxb
from wxb import nn, optim

F = torch.nn.functional


class Lib:
    """What a class needs from a library, so that one class's code builds both."""

    def __init__(self, name: str) -> None:
        self.torch = name == "torch"
        self.nn = torch.nn if self.torch else nn
        self.init = torch.nn.init if self.torch else nn.init
        self.f64 = {"dtype": torch.float64} if self.torch else {"dtype": "float64"}

    def no_grad(self):
        return torch.no_grad() if self.torch else wxb.no_grad()

    def tensor(self, values: np.ndarray):
        return torch.from_numpy(values) if self.torch else wxb.tensor(values)


def own_init_layers(lib: Lib, c: dict) -> dict[str, type]:
    """Layers whose init is the user's own, through the method torch's __init__ calls."""

    class EyeLinear(lib.nn.Linear):  # W = c·I (ones on the diagonal) + a drawn start, b = d
        def reset_parameters(self):
            lib.init.eye_(self.weight)
            out, into = self.weight.shape
            with lib.no_grad():
                self.weight.mul_(c["w"]).add_(lib.tensor(c["start"][:out, :into]))
            if self.bias is not None:
                lib.init.constant_(self.bias, c["b"])

    class ScaledNorm(lib.nn.LayerNorm):
        def reset_parameters(self):
            lib.init.constant_(self.weight, c["gamma"])
            lib.init.constant_(self.bias, c["beta"])

    class PriorBatchNorm(lib.nn.BatchNorm1d):  # running statistics from a prior
        def reset_running_stats(self):
            super().reset_running_stats()
            self.running_mean.fill_(c["mean"])
            self.running_var.fill_(c["var"])

    class GainRMSNorm(lib.nn.RMSNorm):
        def reset_parameters(self):
            lib.init.constant_(self.weight, c["gain"])

    class SlopePReLU(lib.nn.PReLU):
        def reset_parameters(self):
            lib.init.constant_(self.weight, c["slope"])

    return {cls.__name__: cls for cls in (EyeLinear, ScaledNorm, PriorBatchNorm, GainRMSNorm,
                                          SlopePReLU)}  # fmt: skip


def stack(lib: Lib, c: dict, n: int, h: int, k: int, norm: str):
    layers = own_init_layers(lib, c)
    norm_layer = {
        "layer": lambda: layers["ScaledNorm"](h, **lib.f64),
        "batch": lambda: layers["PriorBatchNorm"](h, **lib.f64),
        "rms": lambda: layers["GainRMSNorm"](h, eps=1e-6, **lib.f64),
    }[norm]()
    return lib.nn.Sequential(
        layers["EyeLinear"](n, h, **lib.f64), norm_layer, layers["SlopePReLU"](h, **lib.f64),
        layers["EyeLinear"](h, k, bias=c["bias"], **lib.f64),
    )  # fmt: skip


def test_a_subclass_init_of_its_own_runs_as_torchs_and_trains_as_torchs(seeded):
    for norm in ("layer", "batch", "rms"):
        check_own_init(seeded, norm)


def check_own_init(seeded, norm: str) -> None:
    rng = seeded.rng
    c = {key: float(rng.uniform(0.2, 1.5)) * rng.choice([-1, 1]) for key in
         ("w", "b", "gamma", "beta", "mean", "gain", "slope")}  # fmt: skip
    c["var"], c["bias"] = float(rng.uniform(0.3, 3)), bool(rng.random() < 0.5)
    c["start"] = rng.normal(scale=0.5, size=(5, 5))
    n, h, k = (int(v) for v in rng.integers(2, 6, size=3))
    ours, theirs = stack(Lib("wxb"), c, n, h, k, norm), stack(Lib("torch"), c, n, h, k, norm)
    msg = lambda what: seeded.msg(f"{what} of the {norm} stack, constants {c}")  # noqa: E731
    state, torchs = ours.state_dict(), theirs.state_dict()
    assert len(state) == len(torchs), msg("the state's keys")
    for (key, value), (tkey, tvalue) in zip(state.items(), torchs.items(), strict=True):
        np.testing.assert_allclose(value, tvalue.numpy(), rtol=0, atol=1e-15,
                                   err_msg=msg(f"{key} ({tkey}) at construction"))  # fmt: skip
    X, y = rng.normal(size=(12, n)), rng.integers(0, k, 12)
    mine = optim.SGD(ours.parameters(), lr=0.05, momentum=0.9)
    wxb.fit(ours, X, y, loss="cross_entropy", optimizer=mine, epochs=2, batch_size=4,
            shuffle=False, verbose=False)  # fmt: skip
    opt = torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=0.9)
    theirs.train()
    for _ in range(2):
        for i in range(0, 12, 4):
            opt.zero_grad()
            rows = torch.from_numpy(X[i : i + 4])
            F.cross_entropy(theirs(rows), torch.from_numpy(y[i : i + 4])).backward()
            opt.step()
    for (key, value), tvalue in zip(ours.state_dict().items(), theirs.state_dict().values(),
                                    strict=True):  # fmt: skip
        np.testing.assert_allclose(value, tvalue.numpy(), rtol=1e-9, atol=1e-10,
                                   err_msg=msg(f"{key} after fit"))  # fmt: skip
    theirs.eval()
    X2 = rng.normal(size=(5, n))
    np.testing.assert_allclose(ours.predict(X2), theirs(torch.from_numpy(X2)).detach(),
                               rtol=1e-9, atol=1e-10, err_msg=msg("predictions"))  # fmt: skip


def weight_normed(lib: Lib, n: int, h: int, k: int, last: bool):
    """A Linear whose W is a property over g and v (weight norm, W = g·v/‖v‖ by row), as
    torch users write it: Linear's own forward then reads the property."""

    class WeightNormed(lib.nn.Linear):
        def __init__(self, into, out, **options):
            super().__init__(into, out, **options)
            self.g = lib.nn.Parameter(lib.tensor(np.ones((out, 1))))
            self.v = lib.nn.Parameter(lib.tensor(np.ones((out, into))))
            del self.weight

        @property
        def weight(self):
            return self.g * self.v / (self.v**2).sum(1, keepdim=True).sqrt()

    first = (lib.nn.Linear if last else WeightNormed)(n, h, **lib.f64)
    second = (WeightNormed if last else lib.nn.Linear)(h, k, **lib.f64)
    return lib.nn.Sequential(first, lib.nn.Tanh(), second)


def test_a_weight_given_by_a_property_of_a_linear_subclass_trains_as_torchs(seeded):
    rng = seeded.rng
    for last in (False, True):
        n, h, k = (int(v) for v in rng.integers(2, 6, size=3))
        ours, theirs = (
            weight_normed(Lib("wxb"), n, h, k, last),
            weight_normed(Lib("torch"), n, h, k, last),
        )
        msg = lambda what, last=last: seeded.msg(f"{what}, weight norm in the last layer: {last}")  # noqa: E731
        names = [name for name, _ in theirs.named_parameters()]
        assert [name.split(".")[1] for name, _ in ours.named_parameters()] == [
            name.split(".")[1] for name in names
        ], msg(f"the parameters (torch's {names})")
        with torch.no_grad():
            for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
                q.copy_(torch.from_numpy(rng.normal(scale=0.8, size=p.shape)))
                p.data[...] = q.numpy()
        X, y = rng.normal(size=(12, n)), rng.integers(0, k, 12)
        mine, opt = (
            optim.Adam(ours.parameters(), lr=0.05),
            torch.optim.Adam(theirs.parameters(), lr=0.05),
        )
        wxb.fit(ours, X, y, loss="cross_entropy", optimizer=mine, epochs=2, batch_size=4,
                shuffle=False, verbose=False)  # fmt: skip
        for _ in range(2):
            for i in range(0, 12, 4):
                opt.zero_grad()
                rows = torch.from_numpy(X[i : i + 4])
                F.cross_entropy(theirs(rows), torch.from_numpy(y[i : i + 4])).backward()
                opt.step()
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
            np.testing.assert_allclose(p.data, q.detach(), rtol=1e-9, atol=1e-10,
                                       err_msg=msg(f"{name} after fit"))  # fmt: skip
        X2 = rng.normal(size=(5, n))
        np.testing.assert_allclose(ours.predict(X2), theirs(torch.from_numpy(X2)).detach(),
                                   rtol=1e-9, atol=1e-10, err_msg=msg("predictions"))  # fmt: skip


def two_bases(lib: Lib, n: int, h: int, k: int):
    """A model of two bases, each __init__ called by name, each calling Module's: the
    second forgets what the first made, in torch."""

    class Encoder(lib.nn.Module):
        def __init__(self):
            lib.nn.Module.__init__(self)
            self.enc = lib.nn.Linear(n, h, **lib.f64)

    class Head(lib.nn.Module):
        def __init__(self):
            lib.nn.Module.__init__(self)
            self.head = lib.nn.Linear(h, k, **lib.f64)

    class Net(Encoder, Head):
        def __init__(self):
            Encoder.__init__(self)
            Head.__init__(self)

        def forward(self, x):
            return self.head(self.enc(x).tanh())

    return Net()


def test_module_init_run_again_forgets_what_it_held_as_torchs(seeded):
    rng = seeded.rng
    n, h, k = (int(v) for v in rng.integers(2, 6, size=3))
    ours, theirs = two_bases(Lib("wxb"), n, h, k), two_bases(Lib("torch"), n, h, k)
    names = [name for name, _ in theirs.named_parameters()]
    assert [name for name, _ in ours.named_parameters()] == names
    X = rng.normal(size=(4, n))
    with pytest.raises(AttributeError, match="no attribute 'enc'"):
        theirs(torch.from_numpy(X))
    # (the encoder ran as a plain attribute: fit trained the head alone, saved it alone)
    with pytest.raises(AttributeError, match="no attribute 'enc'"):
        ours(X)
    # __init__ again to start over: fresh layers, and no hook held before
    ours.register_forward_hook(lambda module, args, out: out * 0)
    Head = type(ours).__mro__[2]
    Head.__init__(ours)
    ours.enc = nn.Linear(n, h, dtype="float64")
    assert [name for name, _ in ours.named_parameters()] == ["head.weight", "head.bias",
                                                             "enc.weight", "enc.bias"]  # fmt: skip
    assert np.abs(ours.predict(X)).max() > 0, seeded.msg("the forward hook held before")


def lone_row_norm(lib: Lib, n: int, h: int, k: int):
    class LoneRowBatchNorm(lib.nn.BatchNorm1d):  # a batch of one row passed as it is
        def forward(self, x):
            if x.shape[0] == 1 and self.training:
                return x
            return super().forward(x)

    return lib.nn.Sequential(lib.nn.Linear(n, h, **lib.f64), LoneRowBatchNorm(h, **lib.f64),
                             lib.nn.ReLU(), lib.nn.Linear(h, k, **lib.f64))  # fmt: skip


def test_fit_leaves_a_lone_row_to_a_batch_norm_subclass_that_takes_it_as_torchs(seeded):
    rng = seeded.rng
    n, h, k, size = (int(v) for v in rng.integers(2, 6, size=4))
    rows = size * int(rng.integers(1, 4)) + 1  # the last batch a lone row
    ours, theirs = lone_row_norm(Lib("wxb"), n, h, k), lone_row_norm(Lib("torch"), n, h, k)
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
            q.copy_(torch.from_numpy(np.asarray(p.data)))
    X, y = rng.normal(size=(rows, n)), rng.integers(0, k, rows)
    mine = optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    wxb.fit(ours, X, y, loss="cross_entropy", optimizer=mine, epochs=2, batch_size=size,
            shuffle=False, verbose=False)  # fmt: skip
    opt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):
        for i in range(0, rows, size):
            opt.zero_grad()
            out = theirs(torch.from_numpy(X[i : i + size]))
            F.cross_entropy(out, torch.from_numpy(y[i : i + size])).backward()
            opt.step()
    for (key, value), tvalue in zip(ours.state_dict().items(), theirs.state_dict().values(),
                                    strict=True):  # fmt: skip
        np.testing.assert_allclose(value, tvalue.numpy(), rtol=1e-9, atol=1e-10,
                                   err_msg=seeded.msg(f"{key} after fit"))  # fmt: skip


def looked_at_by_list(lib: Lib, n: int, h: int, k: int):
    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = lib.nn.Linear(n, h, **lib.f64), lib.nn.Linear(h, k, **lib.f64)
            self.hidden = [self.fc1]  # a plain list of layers it holds: to look at them
            self.weights = {"first": self.fc1.weight}

        def forward(self, x):
            for layer in self.hidden:
                x = layer(x).tanh()
            return self.fc2(x)

    return Net()


def test_a_plain_list_of_layers_the_module_holds_is_taken_as_torchs(seeded):
    rng = seeded.rng
    n, h, k = (int(v) for v in rng.integers(2, 6, size=3))
    ours, theirs = looked_at_by_list(Lib("wxb"), n, h, k), looked_at_by_list(Lib("torch"), n, h, k)
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
            q.copy_(torch.from_numpy(np.asarray(p.data)))
    X, y = rng.normal(size=(8, n)), rng.integers(0, k, 8)
    wxb.fit(ours, X, y, loss="cross_entropy", optimizer=optim.SGD(ours.parameters(), lr=0.1),
            epochs=1, batch_size=4, shuffle=False, verbose=False)  # fmt: skip
    opt = torch.optim.SGD(theirs.parameters(), lr=0.1)
    for i in range(0, 8, 4):
        opt.zero_grad()
        out = theirs(torch.from_numpy(X[i : i + 4]))
        F.cross_entropy(out, torch.from_numpy(y[i : i + 4])).backward()
        opt.step()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.detach(), rtol=1e-12, atol=1e-13,
                                   err_msg=seeded.msg(f"{name} after fit"))  # fmt: skip


def test_a_name_wxb_computes_set_as_torch_code_sets_it_says_whose_it_is():
    class Net(nn.Module):  # torch code keeps its dtype: self.dtype = dtype
        def __init__(self, dtype):
            super().__init__()
            self.dtype = dtype
            self.fc = nn.Linear(3, 2, dtype=dtype)

    class Wide(nn.Linear):  # torch's Linear.__init__ body copied into a subclass
        def __init__(self, n, m):
            super().__init__(n, m)
            self.in_features, self.out_features = n, m

    with pytest.raises(AttributeError, match=r"Net\.dtype is wxb's Module\.dtype, read-only"):
        Net("float64")

    class Shifted(nn.RMSNorm):  # a β of one's own, where wxb's bias reads None
        def __init__(self, n):
            super().__init__(n)
            self.bias = nn.Parameter(np.zeros(n))

    with pytest.raises(AttributeError, match=r"Wide\.in_features is wxb's Dense\.in_features"):
        Wide(3, 2)
    with pytest.raises(AttributeError, match=r"Shifted\.bias is wxb's RMSNorm\.bias, read-only"):
        Shifted(3)  # (not registered where the forward's self.bias still read None)


def with_teacher(lib: Lib, n: int, h: int, k: int, decay: float, way: str):
    """A student and its EMA teacher, moved in each training forward as torch users write
    it: ``teacher.lerp_(student, 1 − decay)``, or ``mul_(decay).add_(student, alpha=…)``."""

    class Distilled(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.student = lib.nn.Sequential(lib.nn.Linear(n, h, **lib.f64), lib.nn.Tanh(),
                                             lib.nn.Linear(h, k, **lib.f64))  # fmt: skip
            self.teacher = lib.nn.Sequential(lib.nn.Linear(n, h, **lib.f64), lib.nn.Tanh(),
                                             lib.nn.Linear(h, k, **lib.f64))  # fmt: skip
            self.teacher.requires_grad_(False)

        def update(self):
            with lib.no_grad():
                for mean, p in zip(self.teacher.parameters(), self.student.parameters(),
                                   strict=True):  # fmt: skip
                    if way == "lerp":
                        mean.lerp_(p, 1 - decay)
                    else:
                        mean.mul_(decay).add_(p, alpha=1 - decay)

        def forward(self, x):
            if self.training:
                self.update()
            return self.student(x) + 0.5 * self.teacher(x).detach()

    return Distilled()


def test_an_ema_teacher_moved_in_the_forward_trains_as_torchs(seeded):
    rng = seeded.rng
    n, h, k = (int(v) for v in rng.integers(2, 6, size=3))
    decay = float(rng.uniform(0.5, 0.99))
    for way in ("lerp", "mul_add"):
        ours = with_teacher(Lib("wxb"), n, h, k, decay, way)
        theirs = with_teacher(Lib("torch"), n, h, k, decay, way)
        with torch.no_grad():
            for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
                q.copy_(torch.from_numpy(np.asarray(p.data)))
        X, y = rng.normal(size=(12, n)), rng.integers(0, k, 12)
        mine = optim.Adam(ours.student.parameters(), lr=0.05)
        wxb.fit(ours, X, y, loss="cross_entropy", optimizer=mine, epochs=2, batch_size=4,
                shuffle=False, verbose=False)  # fmt: skip
        opt = torch.optim.Adam(theirs.student.parameters(), lr=0.05)
        for _ in range(2):
            for i in range(0, 12, 4):
                opt.zero_grad()
                out = theirs(torch.from_numpy(X[i : i + 4]))
                F.cross_entropy(out, torch.from_numpy(y[i : i + 4])).backward()
                opt.step()
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
            np.testing.assert_allclose(p.data, q.detach(), rtol=1e-10, atol=1e-12,
                                       err_msg=seeded.msg(f"{name} after fit ({way})"))  # fmt: skip


def constant_linear(lib: Lib, n: int, k: int, value: float):
    class Constant(lib.nn.Linear):
        def __init__(self, into, out, value):
            self.value = value  # first: Linear's __init__ calls reset_parameters
            super().__init__(into, out, **lib.f64)

        def reset_parameters(self):
            lib.init.constant_(self.weight, self.value)
            lib.init.constant_(self.bias, -self.value)

    return Constant(n, k, value)


def test_a_setting_given_before_super_init_reaches_the_subclass_init_as_torchs(seeded):
    rng = seeded.rng
    value, n, k = float(rng.normal()), int(rng.integers(2, 6)), int(rng.integers(2, 6))
    X = rng.normal(size=(3, n))
    ours, theirs = (
        constant_linear(Lib("wxb"), n, k, value),
        constant_linear(Lib("torch"), n, k, value),
    )
    expected = theirs(torch.from_numpy(X)).detach()
    np.testing.assert_allclose(ours(X).data, expected, rtol=1e-14, atol=1e-15,
                               err_msg=seeded.msg(f"outputs of W = {value}"))  # fmt: skip


def lazy_own_init(lib: Lib, h: int, k: int, gain: float):
    class Constant(lib.nn.LazyLinear):  # its init once in_features is known, as torch's
        def reset_parameters(self):
            super().reset_parameters()
            if self.in_features:  # (torch calls it in __init__ too, with in_features 0)
                lib.init.constant_(self.weight, gain / self.in_features)
                lib.init.constant_(self.bias, gain * self.out_features)

    return lib.nn.Sequential(Constant(h, **lib.f64), lib.nn.Tanh(), lib.nn.Linear(h, k, **lib.f64))


def test_a_lazy_linear_subclass_init_runs_when_it_is_made_as_torchs(seeded):
    rng = seeded.rng
    n, h, k = (int(v) for v in rng.integers(2, 6, size=3))
    gain = float(rng.uniform(-1, 1))
    ours, theirs = lazy_own_init(Lib("wxb"), h, k, gain), lazy_own_init(Lib("torch"), h, k, gain)
    X, y = rng.normal(size=(8, n)), rng.integers(0, k, 8)
    ours(X[:2]), theirs(torch.from_numpy(X[:2]))  # (made: the optimisers take them)
    with torch.no_grad():  # the last layer's draw copied: the made one is compared
        for p, q in zip(ours[-1].parameters(), theirs[-1].parameters(), strict=True):
            q.copy_(torch.from_numpy(np.asarray(p.data)))
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.detach(), rtol=1e-15, atol=1e-15,
                                   err_msg=seeded.msg(f"{name} made"))  # fmt: skip
    mine = optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    wxb.fit(ours, X, y, loss="cross_entropy", optimizer=mine, epochs=1, batch_size=4,
            shuffle=False, verbose=False)  # fmt: skip
    opt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    for i in range(0, 8, 4):
        opt.zero_grad()
        out = theirs(torch.from_numpy(X[i : i + 4]))
        F.cross_entropy(out, torch.from_numpy(y[i : i + 4])).backward()
        opt.step()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.detach(), rtol=1e-10, atol=1e-12,
                                   err_msg=seeded.msg(f"{name} after fit"))  # fmt: skip
