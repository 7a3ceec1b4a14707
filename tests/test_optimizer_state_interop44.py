"""Optimiser state between PyTorch and wxb (wxb.interop.optimizer_from_torch and
optimizer_to_torch): a run trained k steps in one and m more in the other ends at the
weights of the run trained k + m steps in one; mismatches refused in one line.

Before these, a PyTorch user moving a half-trained run to wxb (or back) had no way to
carry Adam's moments and step counts over (load_state_dict refused torch's layout):
the continued run restarted its moments and bias correction and ended elsewhere."""

import copy

import numpy as np
import pytest

import wxb
from wxb import interop
from wxb.errors import ConfigError
from wxb.nn import MSELoss

torch = pytest.importorskip("torch")


def _seed() -> int:
    return int(np.random.SeedSequence().entropy % (1 << 32))


def _sgd_options(rng) -> dict:
    options = {"lr": float(rng.uniform(0.01, 0.1))}
    if rng.random() < 0.8:
        options["momentum"] = float(rng.uniform(0.1, 0.95))
        if rng.random() < 0.4:
            options["nesterov"] = True
        elif rng.random() < 0.5:
            options["dampening"] = float(rng.uniform(0, 0.5))
    if rng.random() < 0.5:
        options["weight_decay"] = float(rng.uniform(0, 0.1))
    return options


def _adam_options(rng) -> dict:
    options = {"lr": float(rng.uniform(1e-3, 0.05))}
    if rng.random() < 0.6:
        options["betas"] = (float(rng.uniform(0.5, 0.95)), float(rng.uniform(0.9, 0.9999)))
    if rng.random() < 0.5:
        options["weight_decay"] = float(rng.uniform(0, 0.1))
    if rng.random() < 0.3:
        options["eps"] = float(rng.choice([1e-8, 1e-4]))
    return options


def _rmsprop_options(rng) -> dict:
    options = {"lr": float(rng.uniform(1e-3, 0.02))}
    if rng.random() < 0.6:
        options["alpha"] = float(rng.uniform(0.8, 0.999))
    if rng.random() < 0.5:
        options["momentum"] = float(rng.uniform(0, 0.9))
    if rng.random() < 0.5:
        options["centered"] = True
    if rng.random() < 0.5:
        options["weight_decay"] = float(rng.uniform(0, 0.1))
    return options


def _adagrad_options(rng) -> dict:
    options = {"lr": float(rng.uniform(0.01, 0.1))}
    if rng.random() < 0.5:
        options["lr_decay"] = float(rng.uniform(0, 0.1))
    if rng.random() < 0.5:
        options["initial_accumulator_value"] = float(rng.uniform(0, 0.5))
    if rng.random() < 0.5:
        options["weight_decay"] = float(rng.uniform(0, 0.1))
    return options


def _nadam_options(rng) -> dict:
    options = _adam_options(rng)
    if rng.random() < 0.5:
        options["momentum_decay"] = float(rng.uniform(0, 0.01))
    if rng.random() < 0.4:
        options["decoupled_weight_decay"] = True
    return options


def _radam_options(rng) -> dict:
    options = _adam_options(rng)
    if rng.random() < 0.4:
        options["decoupled_weight_decay"] = True
    return options


def _adadelta_options(rng) -> dict:
    options = {"lr": float(rng.uniform(0.1, 1.5))}
    if rng.random() < 0.6:
        options["rho"] = float(rng.uniform(0.5, 0.99))
    if rng.random() < 0.5:
        options["weight_decay"] = float(rng.uniform(0, 0.1))
    return options


OPTIONS = {
    "SGD": _sgd_options,
    "Adam": _adam_options,
    "AdamW": _adam_options,
    "RMSprop": _rmsprop_options,
    "Adagrad": _adagrad_options,
    "NAdam": _nadam_options,
    "RAdam": _radam_options,
    "Adamax": _adam_options,
    "Adadelta": _adadelta_options,
}
TOLERANCES = {"float64": (1e-10, 1e-12), "float32": (2e-4, 2e-5)}


def _torch_model(rng, dtype: str, frozen: bool):
    tdtype = getattr(torch, dtype)
    torch.manual_seed(int(rng.integers(1 << 31)))
    seq = torch.nn.Sequential(
        torch.nn.Linear(4, 6, dtype=tdtype),
        torch.nn.Tanh(),
        torch.nn.Linear(6, 5, dtype=tdtype),
        torch.nn.Tanh(),
        torch.nn.Linear(5, 2, dtype=tdtype),
    )
    if frozen:  # a frozen bias: no gradient, no state in either
        seq[2].bias.requires_grad_(False)
    return seq


def _groups(params: list, options: list[dict]) -> list[dict]:
    """The first layer's two parameters in one group, the rest in another (or one group)."""
    if len(options) == 1:
        return [{"params": params, **options[0]}]
    return [{"params": params[:2], **options[0]}, {"params": params[2:], **options[1]}]


def _torch_steps(seq, opt, X, y, steps: int) -> None:
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(seq(torch.from_numpy(X)), torch.from_numpy(y)).backward()
        opt.step()


def _wxb_steps(model, opt, X, y, steps: int) -> None:
    for _ in range(steps):
        opt.zero_grad()
        MSELoss()(model(X), y).backward()
        opt.step()


def _case(name: str, dtype: str, seed: int):
    rng = np.random.default_rng(seed)
    options = [OPTIONS[name](rng) for _ in range(int(rng.integers(1, 3)))]
    frozen = bool(rng.random() < 0.5)
    X = rng.normal(size=(12, 4)).astype(dtype)
    y = rng.normal(size=(12, 2)).astype(dtype)
    k, m = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    return rng, options, frozen, X, y, k, m


def _torch_to_wxb(name: str, dtype: str, seed: int) -> None:
    rng, options, frozen, X, y, k, m = _case(name, dtype, seed)
    seq = _torch_model(rng, dtype, frozen)
    reference = copy.deepcopy(seq)
    opt = getattr(torch.optim, name)(_groups(list(seq.parameters()), options))
    _torch_steps(seq, opt, X, y, k)
    ref_opt = getattr(torch.optim, name)(_groups(list(reference.parameters()), options))
    _torch_steps(reference, ref_opt, X, y, k + m)

    model = interop.from_torch(seq)
    # made with the class's defaults: the groups' settings come from PyTorch's
    ours = getattr(wxb.optim, name)(_groups(model.parameters(), [{}] * len(options)))
    assert interop.optimizer_from_torch(opt, ours) is ours
    _wxb_steps(model, ours, X, y, m)

    rtol, atol = TOLERANCES[dtype]
    for (key, expected), p in zip(reference.state_dict().items(), model.parameters(), strict=True):
        np.testing.assert_allclose(
            p.data,
            expected.numpy(),
            rtol=rtol,
            atol=atol,
            err_msg=f"{name} {dtype} seed={seed} {key} k={k} m={m} {options} frozen={frozen}",
        )


def _wxb_to_torch(name: str, dtype: str, seed: int) -> None:
    rng, options, frozen, X, y, k, m = _case(name, dtype, seed)
    start = _torch_model(rng, dtype, frozen)
    model, reference = interop.from_torch(start), interop.from_torch(start)
    ours = getattr(wxb.optim, name)(_groups(model.parameters(), options))
    _wxb_steps(model, ours, X, y, k)
    ref_opt = getattr(wxb.optim, name)(_groups(reference.parameters(), options))
    _wxb_steps(reference, ref_opt, X, y, k + m)

    twin = interop.to_torch(model)
    theirs = getattr(torch.optim, name)(_groups(list(twin.parameters()), [{}] * len(options)))
    assert interop.optimizer_to_torch(ours, theirs) is theirs
    _torch_steps(twin, theirs, X, y, m)

    rtol, atol = TOLERANCES[dtype]
    for (key, got), p in zip(twin.state_dict().items(), reference.parameters(), strict=True):
        np.testing.assert_allclose(
            got.numpy(),
            p.data,
            rtol=rtol,
            atol=atol,
            err_msg=f"{name} {dtype} seed={seed} {key} k={k} m={m} {options} frozen={frozen}",
        )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["Adam", "AdamW", "SGD"])
def test_torch_run_continued_in_wxb(name, dtype):
    for _ in range(3):
        _torch_to_wxb(name, dtype, _seed())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["Adam", "AdamW", "SGD"])
def test_wxb_run_continued_in_torch(name, dtype):
    for _ in range(3):
        _wxb_to_torch(name, dtype, _seed())


def test_torch_state_dict_itself_is_taken():
    """The state_dict (as saved with torch.save) works as the optimiser does."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    seq = _torch_model(rng, "float64", frozen=False)
    X, y = rng.normal(size=(8, 4)), rng.normal(size=(8, 2))
    opt = torch.optim.Adam(seq.parameters(), lr=0.01)
    _torch_steps(seq, opt, X, y, 3)
    model = interop.from_torch(seq)
    a = interop.optimizer_from_torch(opt, wxb.optim.Adam(model.parameters()))
    b = interop.optimizer_from_torch(opt.state_dict(), wxb.optim.Adam(model.parameters()))
    for key, value in a.state_dict()["state"].items():
        for entry, array in value.items():
            np.testing.assert_array_equal(
                b.state_dict()["state"][key][entry], array, err_msg=f"seed={seed}"
            )
    assert a.state[model.parameters()[0]]["step"] == 3
    np.testing.assert_array_equal(
        a.state[model.parameters()[0]]["exp_avg"],
        opt.state[next(seq.parameters())]["exp_avg"].numpy(),
    )


def _trained_torch(name="Adam", **options):
    rng = np.random.default_rng(_seed())
    seq = _torch_model(rng, "float64", frozen=False)
    opt = getattr(torch.optim, name)(seq.parameters(), **options)
    _torch_steps(seq, opt, rng.normal(size=(8, 4)), rng.normal(size=(8, 2)), 2)
    return seq, opt


def test_mismatches_refused_by_name():
    seq, opt = _trained_torch("Adam", lr=0.01)
    model = interop.from_torch(seq)
    with pytest.raises(ConfigError, match=r"PyTorch's optimiser is Adam, the wxb one SGD"):
        interop.optimizer_from_torch(opt, wxb.optim.SGD(model.parameters()))
    with pytest.raises(ConfigError, match=r"'betas'.*SGD has no setting"):
        interop.optimizer_from_torch(opt.state_dict(), wxb.optim.SGD(model.parameters()))
    with pytest.raises(ConfigError, match=r"1 parameter group\(s\) of \[6\].*1 of \[4\]"):
        interop.optimizer_from_torch(opt, wxb.optim.Adam(model.parameters()[:4]))
    other = interop.from_torch(
        torch.nn.Sequential(
            torch.nn.Linear(4, 6, dtype=torch.float64),
            torch.nn.Linear(6, 6, dtype=torch.float64),
            torch.nn.Linear(6, 2, dtype=torch.float64),
        )
    )
    with pytest.raises(ConfigError, match=r"parameter 2 is \(5, 6\) in PyTorch's.*\(6, 6\)"):
        interop.optimizer_from_torch(opt, wxb.optim.Adam(other.parameters()))
    _, amsgrad = _trained_torch("Adam", lr=0.01, amsgrad=True)
    with pytest.raises(ConfigError, match=r"optimizer_from_torch.*amsgrad=True"):
        interop.optimizer_from_torch(amsgrad, wxb.optim.Adam(model.parameters()))
    _, adamw = _trained_torch("AdamW", lr=0.01)
    with pytest.raises(ConfigError, match=r"PyTorch's optimiser is AdamW, the wxb one Adam"):
        interop.optimizer_from_torch(adamw, wxb.optim.Adam(model.parameters()))
    with pytest.raises(ConfigError, match=r"decoupled_weight_decay=True"):
        interop.optimizer_from_torch(adamw.state_dict(), wxb.optim.Adam(model.parameters()))
    # the way back: another class, another grouping
    twin = interop.to_torch(model)
    ours = wxb.optim.Adam(model.parameters())
    with pytest.raises(ConfigError, match=r"PyTorch's optimiser is SGD, the wxb one Adam"):
        interop.optimizer_to_torch(ours, torch.optim.SGD(twin.parameters()))
    params = list(twin.parameters())
    with pytest.raises(ConfigError, match=r"2 parameter group\(s\) of \[2, 4\].*1 of \[6\]"):
        interop.optimizer_to_torch(
            ours, torch.optim.Adam([{"params": params[:2]}, {"params": params[2:]}])
        )
    with pytest.raises(ConfigError, match=r"needs a torch.optim optimiser"):
        interop.optimizer_to_torch(ours, ours)


OTHERS = ["RMSprop", "Adagrad", "NAdam", "RAdam", "Adamax", "Adadelta"]


@pytest.fixture
def torch_float64_scalars():
    """NAdam's mu_product is rounded in PyTorch's default dtype (wxb's in the parameters'):
    a float64 run compares with PyTorch's under float64 defaults."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


@pytest.mark.parametrize("name", OTHERS)
def test_other_optimizers_continued_both_ways_float64(name, torch_float64_scalars):
    for _ in range(2):
        _torch_to_wxb(name, "float64", _seed())
        _wxb_to_torch(name, "float64", _seed())


@pytest.mark.parametrize("name", OTHERS)
def test_other_optimizers_continued_both_ways_float32(name):
    for _ in range(2):
        _torch_to_wxb(name, "float32", _seed())
        _wxb_to_torch(name, "float32", _seed())


def test_fresh_state_and_tensor_settings():
    """A PyTorch optimiser not stepped yet gives a fresh wxb one with its settings; an lr
    and betas given as 0-d tensors (which PyTorch takes) are read as numbers."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    seq = _torch_model(rng, "float64", frozen=False)
    model = interop.from_torch(seq)
    lr, beta1 = float(rng.uniform(0.001, 0.1)), float(rng.uniform(0.5, 0.9))
    fresh = torch.optim.SGD(seq.parameters(), lr=lr, momentum=beta1)
    ours = interop.optimizer_from_torch(fresh, wxb.optim.SGD(model.parameters()))
    assert len(ours.state) == 0 and (ours.lr, ours.momentum) == (lr, beta1), seed
    opt = torch.optim.Adam(
        seq.parameters(), lr=torch.tensor(lr), betas=(torch.tensor(beta1), torch.tensor(0.99))
    )
    ours = interop.optimizer_from_torch(opt, wxb.optim.Adam(model.parameters()))
    assert ours.lr == pytest.approx(lr) and ours.betas[0] == pytest.approx(beta1), seed


def _two_hidden(dtype=torch.float64):
    return torch.nn.Sequential(
        torch.nn.Linear(4, 5, dtype=dtype),
        torch.nn.Tanh(),
        torch.nn.Linear(5, 5, dtype=dtype),
        torch.nn.Tanh(),
        torch.nn.Linear(5, 5, dtype=dtype),
        torch.nn.Tanh(),
        torch.nn.Linear(5, 2, dtype=dtype),
    )


def test_parameters_in_another_order_refused():
    """Two hidden layers of one width, their groups listed in another order in wxb: the
    shapes agree, so each took the other's moments and the run went on elsewhere without
    an error; the weights show the pairing is wrong."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    torch.manual_seed(int(rng.integers(1 << 31)))
    seq = _two_hidden()
    X, y = rng.normal(size=(8, 4)), rng.normal(size=(8, 2))
    hidden = [list(seq[2].parameters()), list(seq[4].parameters())]
    rest = [*seq[0].parameters(), *seq[6].parameters()]
    opt = torch.optim.Adam(
        [{"params": hidden[0], "lr": 0.01}, {"params": hidden[1], "lr": 0.02}, {"params": rest}]
    )
    _torch_steps(seq, opt, X, y, 2)
    model = interop.from_torch(seq)
    p = model.parameters()
    swapped = wxb.optim.Adam([{"params": p[4:6]}, {"params": p[2:4]}, {"params": [*p[:2], *p[6:]]}])
    with pytest.raises(ConfigError, match=r"parameter 0 .* holds the weights of parameter 2"):
        interop.optimizer_from_torch(opt, swapped)
    ours = wxb.optim.Adam([{"params": p[2:4]}, {"params": p[4:6]}, {"params": [*p[:2], *p[6:]]}])
    interop.optimizer_from_torch(opt, ours)  # the same order: taken
    twin = interop.to_torch(model)
    t = list(twin.parameters())
    theirs = torch.optim.Adam(
        [{"params": t[4:6]}, {"params": t[2:4]}, {"params": [*t[:2], *t[6:]]}]
    )
    with pytest.raises(ConfigError, match=r"holds the weights of parameter"):
        interop.optimizer_to_torch(ours, theirs)


@pytest.mark.parametrize("flags", [{"maximize": True}, {"amsgrad": True}])
def test_wxb_run_continued_in_torch_made_with_other_flags(flags):
    """PyTorch's optimiser made with maximize=True (or amsgrad=True) to take wxb's state:
    the groups' settings are wxb's, flags included, so it goes on with wxb's run (it
    climbed the loss instead, without an error; amsgrad failed for want of
    max_exp_avg_sq)."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    start = _torch_model(rng, "float64", frozen=False)
    X, y = rng.normal(size=(8, 4)), rng.normal(size=(8, 2))
    model, reference = interop.from_torch(start), interop.from_torch(start)
    ours = wxb.optim.Adam(model.parameters(), lr=0.02)
    _wxb_steps(model, ours, X, y, 2)
    _wxb_steps(reference, wxb.optim.Adam(reference.parameters(), lr=0.02), X, y, 4)
    twin = interop.to_torch(model)
    theirs = torch.optim.Adam(twin.parameters(), **flags)
    interop.optimizer_to_torch(ours, theirs)
    _torch_steps(twin, theirs, X, y, 2)
    for got, p in zip(twin.parameters(), reference.parameters(), strict=True):
        np.testing.assert_allclose(
            got.detach().numpy(), p.data, rtol=1e-10, atol=1e-12, err_msg=f"seed={seed}"
        )


def test_arguments_the_other_way_round_named():
    """PyTorch's and wxb's optimisers share their class names: the message says whose."""
    seq, opt = _trained_torch("Adam", lr=0.01)
    ours = wxb.optim.Adam(interop.from_torch(seq).parameters())
    with pytest.raises(ConfigError, match=r"second argument must be a wxb optimiser; got torch's"):
        interop.optimizer_from_torch(ours, opt)
    with pytest.raises(ConfigError, match=r"first argument must be a wxb optimiser; got torch's"):
        interop.optimizer_to_torch(opt, ours)
    with pytest.raises(ConfigError, match=r"state_dict\(\); got wxb's Adam"):
        interop.optimizer_from_torch(ours, ours)


def test_step_that_is_no_count_refused_in_one_line():
    """A step that is not one whole number (a list, as an edited or JSON-kept state may
    hold, or 1.5) is refused naming the entry (a list raised Python's TypeError)."""
    seq, opt = _trained_torch("Adam", lr=0.01)
    model = interop.from_torch(seq)
    saved = opt.state_dict()
    for bad, says in (([1.0, 2.0], r"must be one number; got \[1.0, 2.0\]"), (1.5, "whole")):
        saved["state"][0]["step"] = bad
        with pytest.raises(ConfigError, match=r"state\[0\]\['step'\]: .*" + says):
            interop.optimizer_from_torch(saved, wxb.optim.Adam(model.parameters()))


def test_state_into_a_bfloat16_twin():
    """wxb's state into PyTorch's optimiser over the twin cast to bfloat16 (which NumPy
    cannot read: the pairing check raised Python's TypeError); PyTorch casts the state."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    model = interop.from_torch(_torch_model(rng, "float32", frozen=False))
    ours = wxb.optim.Adam(model.parameters(), lr=0.01)
    _wxb_steps(model, ours, rng.normal(size=(8, 4)).astype("float32"),
               rng.normal(size=(8, 2)).astype("float32"), 2)  # fmt: skip
    twin = interop.to_torch(model).to(torch.bfloat16)
    theirs = interop.optimizer_to_torch(ours, torch.optim.Adam(twin.parameters()))
    first = next(twin.parameters())
    assert theirs.state[first]["exp_avg"].dtype == torch.bfloat16, seed
    np.testing.assert_allclose(
        theirs.state[first]["exp_avg"].float().numpy(),
        ours.state[model.parameters()[0]]["exp_avg"],
        rtol=1e-2,
        atol=1e-6,
        err_msg=f"seed={seed}",
    )
