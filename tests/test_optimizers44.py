"""NAdam, RAdam, Adamax and Adadelta: PyTorch's updates step by step (every option, several
groups, a group at lr=0, parameters without a gradient), on both kernel routes; their
state round trip; state set by hand; a resumed fit equal to the uninterrupted one."""

import itertools
import json
import os
import shutil

import numpy as np
import pytest

import wxb
from wxb import kernels
from wxb.errors import ConfigError
from wxb.nn import Dense, ReLU, Sequential

torch = pytest.importorskip("torch")


def _adam_like(rng, decoupled: bool) -> dict:
    options = {"lr": float(rng.choice([0.0, *rng.uniform(1e-3, 0.05, size=4)]))}
    if rng.random() < 0.6:
        options["betas"] = (float(rng.uniform(0.0, 0.99)), float(rng.uniform(0.8, 0.9999)))
    if rng.random() < 0.5:
        options["weight_decay"] = float(rng.uniform(0, 0.2))
    if decoupled and rng.random() < 0.5:
        options["decoupled_weight_decay"] = True
    if rng.random() < 0.3:
        options["eps"] = float(rng.choice([1e-8, 1e-4, 1e-2]))
    return options


def _nadam_options(rng):
    options = _adam_like(rng, decoupled=True)
    if rng.random() < 0.6:
        options["momentum_decay"] = float(rng.uniform(0, 0.05))
    return options


def _adadelta_options(rng):
    options = {"lr": float(rng.choice([0.0, *rng.uniform(0.05, 2.0, size=4)]))}
    if rng.random() < 0.6:
        options["rho"] = float(rng.uniform(0.0, 1.0))
    if rng.random() < 0.5:
        options["weight_decay"] = float(rng.uniform(0, 0.2))
    if rng.random() < 0.3:
        options["eps"] = float(rng.choice([1e-6, 1e-3, 1e-9]))
    return options


KINDS = {
    "nadam": (wxb.optim.NAdam, torch.optim.NAdam, _nadam_options),
    "radam": (wxb.optim.RAdam, torch.optim.RAdam, lambda rng: _adam_like(rng, True)),
    "adamax": (wxb.optim.Adamax, torch.optim.Adamax, lambda rng: _adam_like(rng, False)),
    "adadelta": (wxb.optim.Adadelta, torch.optim.Adadelta, _adadelta_options),
}
# wxb's state name → PyTorch's
TORCH_NAMES = {
    "moment1": "exp_avg",
    "moment2": "exp_avg_sq",
    "inf_norm": "exp_inf",
    "square_avg": "square_avg",
    "acc_delta": "acc_delta",
}


@pytest.fixture(params=["numpy", "auto"])
def route(request):
    """Each kernel route in turn (the compiled one where numba is installed)."""
    kernels.use(request.param)
    yield request.param
    kernels.use(os.environ.get("WXB_KERNELS", "auto"))


class torch_default:
    """PyTorch's scalar state (NAdam's mu_product) is in its default dtype: a float64
    model is compared with PyTorch set to float64, as its users do."""

    def __init__(self, dtype: str) -> None:
        self.dtype = getattr(torch, dtype)

    def __enter__(self):
        self.before = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)

    def __exit__(self, *exc):
        torch.set_default_dtype(self.before)


def _twins(rng, dtype):
    sizes = [int(s) for s in rng.integers(2, 7, size=int(rng.integers(3, 5)))]
    ours = [Dense(a, b, dtype=dtype) for a, b in itertools.pairwise(sizes)]
    theirs = [torch.nn.Linear(a, b).to(getattr(torch, dtype)) for a, b in itertools.pairwise(sizes)]
    with torch.no_grad():
        for a, b in zip(ours, theirs, strict=True):
            for p, q in zip(a.parameters(), b.parameters(), strict=True):
                q.copy_(torch.tensor(p.data))
    return ours, theirs


def _step_both(rng, kind, dtype, steps, ours, theirs, opt, their_opt, msg):
    mine = [p for m in ours for p in m.parameters()]
    their = [p for m in theirs for p in m.parameters()]
    frozen = int(rng.integers(0, len(mine))) if rng.random() < 0.3 else None  # never a grad
    rtol = 1e-12 if dtype == "float64" else 2e-5
    # each step rounds at the scale of the values the parameter has taken (and of its
    # steps, which are differences of them): a parameter that came back near 0 carries
    # the rounding of its history, not of its final values
    seen = [float(np.abs(q.detach().numpy()).max()) for q in their]
    for step in range(steps):
        skipped = int(rng.integers(0, len(mine))) if rng.random() < 0.3 else None
        for index, (p, q) in enumerate(zip(mine, their, strict=True)):
            if index in (skipped, frozen):  # no gradient: not stepped, as in PyTorch
                p.grad, q.grad = None, None
                continue
            g = rng.normal(scale=float(rng.choice([1e-3, 1.0, 30.0])), size=p.shape)
            g = g.astype(dtype)
            p.grad, q.grad = g.copy(), torch.tensor(g)
        opt.step()
        their_opt.step()
        for index, (p, q) in enumerate(zip(mine, their, strict=True)):
            want = q.detach().numpy()
            seen[index] = max(seen[index], float(np.abs(want).max()))
            scale = seen[index] or 1.0
            np.testing.assert_allclose(
                p.data, want, rtol=rtol, atol=rtol * scale,
                err_msg=f"{msg}: parameter {index} after step {step + 1}",
            )  # fmt: skip
    return mine, their


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_updates_are_pytorchs(seeded, route, kind, dtype):
    rng = seeded.rng
    ours_kind, their_kind, draw = KINDS[kind]
    for _ in range(3):
        ours, theirs = _twins(rng, dtype)
        groups = [draw(rng) for _ in ours]  # each layer its own group, its own options
        msg = seeded.msg(f"{kind} {dtype} route {route} groups {groups}")
        with torch_default(dtype):
            opt = ours_kind(
                [{"params": m.parameters(), **g} for m, g in zip(ours, groups, strict=True)]
            )
            their_opt = their_kind(
                [{"params": m.parameters(), **g} for m, g in zip(theirs, groups, strict=True)]
            )
            mine, their = _step_both(rng, kind, dtype, 15, ours, theirs, opt, their_opt, msg)
        # the state is PyTorch's too, under its names in optimizer.state
        for p, q in zip(mine, their, strict=True):
            entry, their_entry = opt.state[p], their_opt.state[q]
            assert (not entry) == (not their_entry), msg
            if not entry:
                continue
            assert entry["step"] == their_entry["step"].item(), msg
            if kind == "nadam":
                assert entry["mu_product"] == their_entry["mu_product"].item(), msg
            for name, torch_name in TORCH_NAMES.items():
                if name in opt.state_names:
                    want = their_entry[torch_name].numpy()
                    tol = 1e-12 if dtype == "float64" else 2e-5  # to the array's scale
                    np.testing.assert_allclose(
                        entry[torch_name], want, rtol=tol,
                        atol=tol * float(np.abs(want).max()), err_msg=f"{msg}: {torch_name}",
                    )  # fmt: skip


@pytest.mark.parametrize("kind", list(KINDS))
def test_both_routes_give_the_same_bits(seeded, kind):
    """The compiled route and NumPy's give one result, bit for bit (each runs a compiled
    kernel or its NumPy twin)."""
    rng = seeded.rng
    ours_kind, _, draw = KINDS[kind]
    dtype = str(rng.choice(["float32", "float64"]))
    groups = [draw(rng), draw(rng)]
    grads = None
    results = []
    try:
        for setting in ("numpy", "auto"):
            kernels.use(setting)
            model = [Dense(5, 4, seed=3, dtype=dtype), Dense(4, 2, seed=4, dtype=dtype)]
            opt = ours_kind(
                [{"params": m.parameters(), **g} for m, g in zip(model, groups, strict=True)]
            )
            params = [p for m in model for p in m.parameters()]
            if grads is None:
                grads = [[rng.normal(size=p.shape).astype(dtype) for p in params] for _ in "abcdef"]
            for step in grads:
                for p, g in zip(params, step, strict=True):
                    p.grad = g.copy()
                opt.step()
            results.append([p.data.copy() for p in params])
    finally:
        kernels.use(os.environ.get("WXB_KERNELS", "auto"))
    for a, b in zip(*results, strict=True):
        assert np.array_equal(a, b), seeded.msg(f"{kind} {dtype} {groups}")


KERNELS = {
    "nadam": kernels.nadam,
    "radam": kernels.radam,
    "adamax": kernels.adamax,
    "adadelta": kernels.adadelta,
}


def _kernel_settings(rng, kind, t):
    settings = dict(
        t=t, lr=float(rng.uniform(1e-4, 0.1)), beta1=float(rng.uniform(0.0, 0.99)),
        beta2=float(rng.uniform(0.5, 0.9999)), eps=float(rng.choice([1e-8, 1e-3, 0.0])),
        weight_decay=float(rng.choice([0.0, rng.uniform(0, 0.2)])),
    )  # fmt: skip
    if kind == "adadelta":  # (rho, eps, weight_decay, lr: no betas, no step number)
        settings = {
            "lr": float(rng.uniform(0.05, 2.0)), "rho": float(rng.uniform(0, 1)),
            "eps": float(rng.choice([1e-6, 1e-3, 0.0])), "weight_decay": settings["weight_decay"],
        }  # fmt: skip
    elif kind != "adamax":
        settings["decoupled"] = bool(rng.random() < 0.5)
    if kind == "nadam":
        settings["mu"], settings["mu_next"] = (float(x) for x in rng.uniform(0, 0.99, size=2))
        settings["product"] = settings["mu"] * float(rng.uniform(0, 1))
    return settings


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", list(KERNELS))
def test_compiled_kernels_are_their_numpy_twins(seeded, kind, dtype):
    """Each kernel's two implementations, bit for bit: both branches of PyTorch's lerp
    (β₁ on either side of ½), RAdam on both sides of ρ_t = 5, coupled and decoupled decay,
    a NaN in the gradient (Adamax's max keeps it, as NumPy's)."""
    pytest.importorskip("numba")
    rng = seeded.rng
    for size in (1, 3, int(rng.integers(4, 5000))):
        for t in (1, int(rng.integers(2, 8)), int(rng.integers(8, 200))):
            settings = _kernel_settings(rng, kind, t)
            data = rng.normal(size=size).astype(dtype)
            grad = (rng.normal(size=size) * rng.choice([1e-3, 1.0, 30.0])).astype(dtype)
            if rng.random() < 0.3:
                grad[int(rng.integers(0, size))] = np.nan
            first = rng.normal(size=size).astype(dtype)
            second = np.abs(rng.normal(size=size)).astype(dtype)
            results = []
            try:
                for setting in ("numpy", "compiled"):
                    kernels.use(setting)
                    arrays = [a.copy() for a in (data, grad, first, second)]
                    scratch = [np.empty_like(data), np.empty_like(data)]
                    with np.errstate(invalid="ignore"):
                        KERNELS[kind](*arrays, *scratch, **settings)
                    results.append(arrays)
            finally:
                kernels.use(os.environ.get("WXB_KERNELS", "auto"))
            for name, a, b in zip(("data", "grad", "m", "v/u"), *results, strict=True):
                assert np.array_equal(a, b, equal_nan=True), seeded.msg(
                    f"{kind} {dtype} size {size} {settings}: {name}"
                )


@pytest.mark.parametrize("kind", list(KERNELS))
def test_a_threaded_walk_gives_the_same_bits(seeded, kind):
    """A parameter past the size from which the update takes threads: both routes agree."""
    rng = seeded.rng
    ours_kind, _, draw = KINDS[kind]
    options = draw(rng)
    shape = (1 << 21) + int(rng.integers(1, 1000))
    start = rng.normal(size=shape)
    grads = [rng.normal(size=shape) for _ in range(2)]
    results = []
    try:
        for setting in ("numpy", "auto"):
            kernels.use(setting)
            p = wxb.nn.Parameter(start.copy())
            opt = ours_kind([p], **options)
            for g in grads:
                p.grad = g.copy()
                opt.step()
            results.append(p.data)
    finally:
        kernels.use(os.environ.get("WXB_KERNELS", "auto"))
    assert np.array_equal(*results), seeded.msg(f"{kind} {options}")


def _plain(state: dict) -> dict:
    """A state dict as a checkpoint keeps it: the numbers through JSON, arrays as they are."""
    out = {"state": {}, "param_groups": json.loads(json.dumps(state["param_groups"]))}
    out["steps"] = state["steps"]
    for i, entry in state["state"].items():
        numbers = {k: v for k, v in entry.items() if not isinstance(v, np.ndarray)}
        out["state"][i] = {
            **json.loads(json.dumps(numbers)),
            **{k: v for k, v in entry.items() if isinstance(v, np.ndarray)},
        }
    return out


@pytest.mark.parametrize("kind", list(KINDS))
def test_state_dict_round_trip_continues_bit_for_bit(seeded, route, kind):
    rng = seeded.rng
    ours_kind, _, draw = KINDS[kind]
    dtype = str(rng.choice(["float32", "float64"]))
    groups = [draw(rng), draw(rng)]
    msg = seeded.msg(f"{kind} {dtype} {groups}")

    def build(seed):
        model = [Dense(4, 3, seed=seed, dtype=dtype), Dense(3, 2, seed=seed + 1, dtype=dtype)]
        other = [{**g, "lr": 0.5} for g in groups] if seed else groups  # other rates: loaded
        return model, ours_kind(
            [{"params": m.parameters(), **g} for m, g in zip(model, other, strict=True)]
        )

    def steps(model, opt, grads):
        params = [p for m in model for p in m.parameters()]
        for step in grads:
            for p, g in zip(params, step, strict=True):
                p.grad = None if g is None else g.copy()
            opt.step()

    def draw_grads(count, params):
        return [
            [None if rng.random() < 0.2 else rng.normal(size=p.shape).astype(dtype)
             for p in params]
            for _ in range(count)
        ]  # fmt: skip

    model_a, opt_a = build(0)
    params_a = [p for m in model_a for p in m.parameters()]
    steps(model_a, opt_a, draw_grads(int(rng.integers(1, 8)), params_a))
    model_b, opt_b = build(100)
    for a, b in zip(model_a, model_b, strict=True):
        b.load_state_dict(a.state_dict())
    opt_b.load_state_dict(_plain(opt_a.state_dict()))
    assert [g["lr"] for g in opt_b.param_groups] == [g["lr"] for g in opt_a.param_groups], msg
    later = draw_grads(int(rng.integers(1, 8)), params_a)
    steps(model_a, opt_a, later)
    steps(model_b, opt_b, later)
    for a, b in zip(model_a, model_b, strict=True):
        for k, v in a.state_dict().items():
            assert np.array_equal(v, b.state_dict()[k]), f"{msg}: {k}"
    sa, sb = opt_a.state_dict(), opt_b.state_dict()
    for i, entry in sa["state"].items():
        for k, v in entry.items():
            assert np.array_equal(v, sb["state"][i][k]), f"{msg}: state[{i}][{k}]"


@pytest.mark.parametrize("kind", list(KINDS))
def test_state_set_by_hand_must_be_whole_and_then_is_pytorchs(seeded, kind):
    """PyTorch's step raises KeyError at a state set in part; here the step refuses it,
    naming what is missing. A whole one (PyTorch's entries, its tensors, under its names:
    exp_avg, exp_inf, mu_product, square_avg, …) continues as PyTorch's does."""
    rng = seeded.rng
    ours_kind, their_kind, draw = KINDS[kind]
    ours, theirs = _twins(rng, "float64")
    options = draw(rng)
    options["lr"] = float(rng.uniform(1e-3, 0.05))
    msg = seeded.msg(f"{kind} {options}")
    with torch_default("float64"):
        opt = ours_kind([p for m in ours for p in m.parameters()], **options)
        their_opt = their_kind([q for m in theirs for q in m.parameters()], **options)
        their = [q for m in theirs for q in m.parameters()]
        for _ in range(int(rng.integers(1, 9))):  # PyTorch alone runs some steps first
            for q in their:
                q.grad = torch.tensor(rng.normal(size=tuple(q.shape)))
            their_opt.step()
        mine = [p for m in ours for p in m.parameters()]
        for p, q in zip(mine, their, strict=True):
            p.data[...] = q.detach().numpy()
        p0 = mine[0]
        keys = list(their_opt.state[their[0]])
        left_out = keys.pop(int(rng.integers(0, len(keys))))
        for key in keys:
            opt.state[p0][key] = their_opt.state[their[0]][key]
        p0.grad = np.ones_like(p0.data)
        with pytest.raises(ConfigError, match=f"without '{left_out}'"):
            opt.step()
        for p, q in zip(mine, their, strict=True):  # now whole, from PyTorch's tensors
            for key, value in their_opt.state[q].items():
                opt.state[p][key] = value
        _step_both(rng, kind, "float64", 5, ours, theirs, opt, their_opt, msg)


def test_mu_product_set_by_hand_or_loaded_is_checked(seeded):
    model = Dense(3, 2, dtype="float64")
    opt = wxb.optim.NAdam(model.parameters())
    p = next(iter(model.parameters()))
    for bad in (1.5, -0.1, "0.5", float("nan")):
        with pytest.raises(ConfigError, match="mu_product"):
            opt.state[p]["mu_product"] = bad
    state = opt.state_dict()
    state["state"][0]["mu_product"] = 2.0
    with pytest.raises(ConfigError, match="mu_product"):
        opt.load_state_dict(state)


def test_names_defaults_and_refusals():
    model = Dense(3, 2)
    params = list(model.parameters())
    for name, kind, lr in (
        ("nadam", torch.optim.NAdam, 2e-3),
        ("radam", torch.optim.RAdam, 1e-3),
        ("adamax", torch.optim.Adamax, 2e-3),
        ("adadelta", torch.optim.Adadelta, 1.0),
    ):
        opt = wxb.optim.get_optimizer(name, params)
        theirs = kind([torch.nn.Parameter(torch.zeros(2))]).defaults
        assert opt.lr == lr == theirs["lr"], name
        for key, value in opt.param_groups[0].items():
            if key != "params":
                assert value == theirs[key], (name, key)
        with pytest.raises(ConfigError, match="maximize"):
            type(opt)(params, maximize=True)
        with pytest.raises(ConfigError, match="rho" if name == "adadelta" else "betas"):
            type(opt)(params, **({"rho": 1.5} if name == "adadelta" else {"betas": (0.9, 1.0)}))
    with pytest.raises(ConfigError, match="momentum_decay"):
        wxb.optim.NAdam(params, momentum_decay=-1e-3)
    with pytest.raises(ConfigError, match="decoupled_weight_decay"):
        wxb.optim.RAdam(params, decoupled_weight_decay="yes")
    with pytest.raises(TypeError, match="decoupled_weight_decay"):  # PyTorch's has none
        wxb.optim.Adamax(params, decoupled_weight_decay=True)


def _fit(kind, X, y, dtype, folder=None, **options):
    model = Sequential(
        Dense(X.shape[1], 6, seed=1, dtype=dtype), ReLU(), Dense(6, 3, seed=2, dtype=dtype)
    )
    if folder is not None:
        options.update(checkpoint_dir=folder, checkpoint_every=1, keep_checkpoints=10_000)
    history = wxb.fit(
        model, X, y, loss="cross_entropy", optimizer=kind, lr=0.01, epochs=3, batch_size=16,
        seed=5, verbose=False, **options,
    )  # fmt: skip
    return history, model


@pytest.mark.parametrize("kind", list(KINDS))
def test_resumed_fit_equals_the_uninterrupted_run(seeded, tmp_path, kind):
    rng = seeded.rng
    dtype = str(rng.choice(["float32", "float64"]))
    X = rng.normal(size=(int(rng.integers(40, 80)), 4))
    y = rng.integers(0, 3, size=len(X))
    msg = seeded.msg(f"{kind} {dtype}")
    reference = _fit(kind, X, y, dtype)
    every = tmp_path / "every"
    _fit(kind, X, y, dtype, every)
    found = sorted(every.glob("step-*.json"))
    source = found[int(rng.integers(0, len(found) - 1))]
    folder = tmp_path / "resumed"
    folder.mkdir()
    shutil.copy2(source, folder / source.name)
    arrays = source.with_suffix(".safetensors")
    shutil.copy2(arrays, folder / arrays.name)
    resumed = _fit(kind, X, y, dtype, folder, resume=True)
    assert resumed[0].resumed_from is not None, msg
    assert resumed[0].history == reference[0].history, f"{msg} from {source.name}"
    for k, v in reference[1].state_dict().items():
        assert np.array_equal(v, resumed[1].state_dict()[k]), f"{msg} from {source.name}: {k}"


def test_forgotten_nadam_state_starts_its_mu_product_again(seeded):
    """del optimizer.state[p] is PyTorch's restart: step, moments and mu_product (at 1,
    not 0, which would make the first step's 1 − Π = 1) start afresh."""
    rng = seeded.rng
    ours, theirs = _twins(rng, "float64")
    msg = seeded.msg("NAdam restarted")
    with torch_default("float64"):
        opt = wxb.optim.NAdam([p for m in ours for p in m.parameters()], lr=0.01)
        their_opt = torch.optim.NAdam([q for m in theirs for q in m.parameters()], lr=0.01)
        mine, their = _step_both(rng, "nadam", "float64", 3, ours, theirs, opt, their_opt, msg)
        p, q = next((p, q) for p, q in zip(mine, their, strict=True) if opt.state[p])
        del opt.state[p]
        del their_opt.state[q]
        _step_both(rng, "nadam", "float64", 3, ours, theirs, opt, their_opt, msg)
        theirs = their_opt.state[q].get("mu_product")  # (none: not stepped since)
        assert opt.state[p].get("mu_product") == (theirs if theirs is None else theirs.item()), msg


def test_adamax_group_key_of_another_optimiser_changes_nothing(seeded):
    """A group's decoupled_weight_decay (NAdam's and RAdam's) is no option of PyTorch's
    Adamax, which keeps the key and decays in the gradient still."""
    rng = seeded.rng
    ours, theirs = _twins(rng, "float64")
    group = {"lr": 0.01, "weight_decay": 0.3, "decoupled_weight_decay": True}
    msg = seeded.msg(f"Adamax {group}")
    opt = wxb.optim.Adamax([{"params": [p for m in ours for p in m.parameters()], **group}])
    their_opt = torch.optim.Adamax(
        [{"params": [q for m in theirs for q in m.parameters()], **group}]
    )
    _step_both(rng, "adamax", "float64", 4, ours, theirs, opt, their_opt, msg)


@pytest.mark.parametrize("kind", list(KINDS))
def test_wxb_train_runs_and_resumes_each_by_name(seeded, tmp_path, capsys, kind):
    """wxb train --optimizer <name>: a run resumed from a checkpoint of its own ends at the
    uninterrupted run's weights, bit for bit (the CLI's options record the name)."""
    from wxb.cli import main

    rng = seeded.rng
    rows = int(rng.integers(40, 80))
    X = rng.normal(size=(rows, 3))
    y = (X[:, 0] + rng.normal(scale=0.3, size=rows) > 0).astype(int)
    data = tmp_path / "d.csv"
    data.write_text(
        "a,b,c,y\n" + "".join(f"{r[0]},{r[1]},{r[2]},{t}\n" for r, t in zip(X, y, strict=True))
    )

    def train(folder, *more):
        argv = ["train", "--data", str(data), "--target", "y", "--optimizer", kind,
                "--epochs", "3", "--batch-size", "16", "--hidden", "5", "--seed", "3",
                "--checkpoint-dir", str(folder), "--keep-checkpoints", "100",
                "--checkpoint-every", "1", "-o", str(folder / "m.safetensors"), *more]  # fmt: skip
        code = main(argv)
        said = capsys.readouterr()
        assert code == 0, seeded.msg(f"{kind}: {said.err}")
        return wxb.load(folder / "m.safetensors").state_dict(), said.out

    whole, _ = train(tmp_path / "whole")
    found = sorted((tmp_path / "whole").glob("step-*.json"))
    source = found[int(rng.integers(0, len(found) - 1))]
    folder = tmp_path / "resumed"
    folder.mkdir()
    for path in (
        source,
        source.with_suffix(".safetensors"),
        source.with_name("train-options.json"),
    ):
        shutil.copy2(path, folder / path.name)
    resumed, out = train(folder, "--resume")
    assert f"resumed from {folder / source.name}" in out, seeded.msg(out)
    for k, v in whole.items():
        assert np.array_equal(v, resumed[k]), seeded.msg(f"{kind} from {source.name}: {k}")
