"""Small defects a first-time user hit, each test failing on the code before its fix."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import wxb
import wxb.interop
import wxb.nn.functional as F
from wxb import nn
from wxb.cli import main
from wxb.errors import ConfigError, DataError

torch = pytest.importorskip("torch")

EPS32 = float(np.finfo(np.float32).eps)


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wxb: error: "), err
    return lines[0]


# ---------------------------------------------------------------------------------
# 1. wxb train -o model.pt wrote safetensors bytes under PyTorch's name
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".pt", ".pth", ".pkl", ".h5", ".keras", ".joblib"])
def test_train_refuses_another_formats_name_and_keeps_what_is_there(
    seeded, tmp_path, capsys, suffix
):
    """`wxb train -o model.pt` wrote a safetensors file under a .pt name, which torch.load
    refused ("invalid load key"); now status 2, one line naming the suffix wxb writes,
    and a file already at that path is left byte for byte."""
    rng = seeded.rng
    path = tmp_path / f"model{suffix}"
    held = rng.bytes(int(rng.integers(1, 200)))
    path.write_bytes(held)
    code, out, err = _cli(capsys, "train", "--hidden", "8", "--epochs", "1", "-q", "-o", path)
    line = _one_error_line(err)
    assert code == 2, seeded.msg(err)
    assert "not " in line and f"({suffix})" in line and ".safetensors" in line, line
    assert path.read_bytes() == held, seeded.msg("the file there was changed")
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name], seeded.msg("wrote")
    assert out == ""


def test_export_refuses_a_pytorch_name_for_onnx(seeded, tmp_path, capsys):
    """`wxb export m.safetensors -o m.pt` wrote ONNX under PyTorch's name."""
    rng = seeded.rng
    n = int(rng.integers(2, 6))
    model = wxb.save(nn.Sequential(nn.Linear(n, 2)), tmp_path / "m.safetensors")
    code, _, err = _cli(capsys, "export", model, "-o", tmp_path / "m.pt")
    line = _one_error_line(err)
    assert code == 2 and "writes ONNX" in line and ".onnx" in line, line
    assert not (tmp_path / "m.pt").exists()


# ---------------------------------------------------------------------------------
# 2. Keras's x= for X
# ---------------------------------------------------------------------------------
def test_fit_evaluate_and_predict_take_keras_x(seeded):
    """`wxb.fit(model, x=X, y=y)`, Keras's spelling, raised Python's "missing 1 required
    positional argument: 'X'"; now x= is X: the same run, figures and outputs."""
    rng = seeded.rng
    n, features = int(rng.integers(20, 60)), int(rng.integers(2, 6))
    X = rng.normal(size=(n, features)).astype(np.float32)
    y = rng.integers(0, 3, size=n)
    a = nn.Sequential(nn.Linear(features, 5), nn.ReLU(), nn.Linear(5, 3))
    b = nn.Sequential(nn.Linear(features, 5), nn.ReLU(), nn.Linear(5, 3))
    b.load_state_dict(a.state_dict())
    seed = int(rng.integers(2**31))
    by_position = wxb.fit(a, X, y, epochs=2, seed=seed, verbose=0)
    by_keyword = wxb.fit(b, x=X, y=y, epochs=2, seed=seed, verbose=0)
    assert by_position.history == by_keyword.history, seeded.msg("histories")
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=seeded.msg("weights"))
    assert wxb.evaluate(b, x=X, y=y) == wxb.evaluate(b, X, y)
    np.testing.assert_array_equal(b.predict(x=X), b.predict(X))
    with pytest.raises(ConfigError, match="both given"):
        wxb.fit(b, X, x=X, y=y, epochs=1, verbose=0)
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'X'"):
        wxb.fit(b, y=y)


# ---------------------------------------------------------------------------------
# 3. BCELoss and KLDivLoss by name
# ---------------------------------------------------------------------------------
def test_fit_and_evaluate_take_bce_and_kl_div_by_name(seeded):
    """BCELoss and KLDivLoss were classes fit took, but loss="bce",
    "binary_cross_entropy" and "kl_div" (torch.nn.functional's names) were refused."""
    rng = seeded.rng
    n, features = int(rng.integers(20, 60)), int(rng.integers(2, 6))
    X = rng.normal(size=(n, features)).astype(np.float32)
    seed = int(rng.integers(2**31))

    y = (rng.random((n, 1)) < 0.5).astype(np.float64)
    a = nn.Sequential(nn.Linear(features, 1), nn.Sigmoid())
    b = nn.Sequential(nn.Linear(features, 1), nn.Sigmoid())
    b.load_state_dict(a.state_dict())
    named = wxb.fit(a, X, y, loss="bce", epochs=2, seed=seed, verbose=0)
    given = wxb.fit(b, X, y, loss=nn.BCELoss(), epochs=2, seed=seed, verbose=0)
    assert named.history == given.history, seeded.msg("bce")
    p = torch.from_numpy(a.predict(X).astype(np.float64))
    expected = torch.nn.functional.binary_cross_entropy(p, torch.from_numpy(y)).item()
    got = wxb.evaluate(a, X, y, loss="binary_cross_entropy")["loss"]
    # outputs in float32: each probability within an ulp or two, a log's error ≲ 4ε/p
    tol = 4 * EPS32 / float(min(p.min(), 1 - p.max()))
    assert math.isclose(got, expected, rel_tol=tol, abs_tol=tol), seeded.msg((got, expected))

    classes = int(rng.integers(2, 5))
    t = rng.dirichlet(np.ones(classes), size=n)
    model = nn.Sequential(nn.Linear(features, classes), nn.LogSoftmax(dim=1))
    history = wxb.fit(model, X, t, loss="kl_div", epochs=1, seed=seed, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    logp = torch.from_numpy(model.predict(X).astype(np.float64))
    with warnings.catch_warnings():  # (torch's: "mean" divides by the elements, as wxb's)
        warnings.simplefilter("ignore", UserWarning)
        expected = torch.nn.functional.kl_div(logp, torch.from_numpy(t), reduction="mean")
    got = wxb.evaluate(model, X, t, loss="kl_div")["loss"]
    # Σ t·(log t − log p) over the elements: each log p within a few ulps of its size
    tol = 8 * EPS32 * float(logp.abs().max()) + 1e-12
    expected = expected.item()
    assert math.isclose(got, expected, rel_tol=0, abs_tol=tol), seeded.msg((got, expected))


# ---------------------------------------------------------------------------------
# 4. a module of one's own that flattens first takes (N, h, w) X
# ---------------------------------------------------------------------------------
class _Quickstart(nn.Module):
    """PyTorch's quickstart model: a Flatten attribute, applied first."""

    def __init__(self, inputs: int, hidden: int, classes: int, first: bool = True) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.stack = nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, classes))
        self.first = first

    def forward(self, x):
        if not self.first:  # reads X's dims before flattening: not the rows' outputs
            x = x - x.mean(1, keepdim=True)
        return self.stack(self.flatten(x))


def test_a_module_of_ones_own_flattening_first_takes_image_shaped_x(seeded):
    """fit, evaluate and predict refused (N, h, w) X for a module of one's own whose
    forward begins with self.flatten(x), as PyTorch's quickstart writes it, where a
    Sequential beginning with Flatten took it; now taken as the rows the Flatten makes:
    the same run as on X reshaped (N, h·w)."""
    rng = seeded.rng
    n, h, w = int(rng.integers(10, 40)), int(rng.integers(2, 5)), int(rng.integers(2, 5))
    classes = int(rng.integers(2, 4))
    X = rng.normal(size=(n, h, w)).astype(np.float32)
    y = rng.integers(0, classes, size=n)
    a, b = _Quickstart(h * w, 6, classes), _Quickstart(h * w, 6, classes)
    b.load_state_dict(a.state_dict())
    seed = int(rng.integers(2**31))
    shaped = wxb.fit(a, X, y, epochs=2, seed=seed, verbose=0)
    rows = wxb.fit(b, X.reshape(n, -1), y, epochs=2, seed=seed, verbose=0)
    assert shaped.history == rows.history, seeded.msg("histories")
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=seeded.msg("weights"))
    assert wxb.evaluate(a, X, y) == wxb.evaluate(b, X.reshape(n, -1), y)
    a.eval()
    with wxb.no_grad():
        np.testing.assert_array_equal(a.predict(X), a(X).data, err_msg=seeded.msg("predict"))
    # one whose forward reads X's dims first is not flattened behind its back
    other = _Quickstart(h * w, 6, classes, first=False)
    with pytest.raises(DataError, match="must be 2-D"):
        wxb.fit(other, X, y, epochs=1, verbose=0)


# ---------------------------------------------------------------------------------
# 5. 3.0 / x, then x changed in place
# ---------------------------------------------------------------------------------
def test_a_number_over_a_tensor_changed_in_place_after_has_torchs_gradient(seeded):
    """`z = 3.0 / y; y.mul_(2)` then backward was refused ("a tensor that the recorded
    '/' needs was modified"): torch's rdiv is y.reciprocal() * 3.0, which keeps 1/y and
    not y. Now as torch's: its values (reciprocal, then the product) and gradients."""
    rng = seeded.rng
    shape = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    x0 = (rng.uniform(0.5, 2.0, size=shape) * rng.choice([-1, 1], size=shape)).astype(np.float32)
    w = rng.uniform(0.5, 2.0, size=shape).astype(np.float32)
    g = rng.normal(size=shape).astype(np.float32)
    c, k = float(rng.uniform(-4, 4)), float(rng.uniform(0.5, 3))

    def run(lib, tensor):
        x = tensor(x0, requires_grad=True)
        y = x * tensor(w)
        z = c / y
        values = z.detach().numpy().copy() if lib is torch else z.data.copy()
        y.mul_(k)  # the divisor changed in place after the quotient
        z.mul_(2.0)  # and the quotient itself
        ((z * tensor(g)).sum() + y.sum()).backward()
        return values, (x.grad.numpy() if lib is torch else x.grad)

    got_z, got = run(wxb, lambda a, **kw: wxb.tensor(a, dtype=wxb.float32, **kw))
    want_z, want = run(torch, lambda a, **kw: torch.tensor(a, **kw))
    np.testing.assert_array_equal(got_z, want_z, err_msg=seeded.msg("values"))
    # a handful of float32 roundings on each side
    np.testing.assert_allclose(got, want, rtol=16 * EPS32, atol=0, err_msg=seeded.msg("grad"))


# ---------------------------------------------------------------------------------
# 6. F.layer_norm without weight and bias, its result then changed in place
# ---------------------------------------------------------------------------------
def test_layer_norms_result_changed_in_place_has_torchs_gradient(seeded):
    """F.layer_norm(y, shape) without γ and β, its result then changed in place
    (`z.mul_(w)`), refused the backward ("the result of the recorded 'x̂' ... was
    modified"): torch's layer norm keeps its input, mean and 1/σ, not x̂. Now as
    torch's; a change of its input is still refused, as torch's."""
    rng = seeded.rng
    rows, k = int(rng.integers(1, 6)), int(rng.integers(2, 8))
    x0 = rng.normal(size=(rows, k)) * rng.uniform(0.5, 3)
    w, g = rng.normal(size=(rows, k)), rng.normal(size=(rows, k))

    def run(lib, tensor, functional):
        x = tensor(x0, requires_grad=True)
        y = x * 1.5
        z = functional.layer_norm(y, (k,))
        z.mul_(tensor(w))
        (z * tensor(g)).sum().backward()
        return x.grad.numpy() if lib is torch else x.grad

    got = run(wxb, lambda a, **kw: wxb.tensor(a, dtype=wxb.float32, **kw), F)
    f64 = lambda a, **kw: torch.tensor(a, dtype=torch.float64, **kw)  # noqa: E731
    want = run(torch, f64, torch.nn.functional)
    # ∂L/∂x = 1.5/σ·(h − mean(h) − x̂·mean(h x̂)), h = g·w: float32 terms summed over k
    rstd = 1 / np.sqrt((1.5 * x0).var(axis=1, keepdims=True) + 1e-5)
    scale = 1.5 * rstd * np.abs(g * w).max() * (1 + 4 * k)  # |x̂| ≤ √k
    tol = 8 * k * EPS32 * scale
    assert np.all(np.abs(got - want) <= tol), seeded.msg(np.abs(got - want).max())

    x = wxb.tensor(x0, dtype=wxb.float32, requires_grad=True)
    y = x * 1.5
    z = F.layer_norm(y, (k,))
    y.mul_(2.0)  # its input: refused, as torch's
    with pytest.raises(wxb.TrainingError, match="modified in place"):
        (z * z).sum().backward()


# ---------------------------------------------------------------------------------
# 7. wxb.maximum of a NumPy scalar and an IndexArray
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_of_a_numpy_scalar_and_labels_is_float32_either_way(seeded, name):
    """wxb.maximum(np.float64(s), labels) gave float64 where wxb.maximum(labels,
    np.float64(s)) gave float32 (the operators' rule, torch's for a number beside an int64
    tensor): the scalar was made a 0-d float64 tensor before meeting the labels."""
    rng = seeded.rng
    labels = wxb.tensor(rng.integers(-5, 6, size=int(rng.integers(1, 10)))).long()
    s = np.float64(rng.uniform(-5, 5))
    expected_dtype = torch.result_type(torch.from_numpy(np.asarray(labels)), float(s))
    assert expected_dtype == torch.float32
    want = getattr(np, name)(np.asarray(labels).astype(np.float32), np.float32(s))
    for args in ((s, labels), (labels, s)):
        got = getattr(wxb, name)(*args)
        assert got.dtype == np.float32, seeded.msg((args, got.dtype))
        np.testing.assert_array_equal(got.data, want, err_msg=seeded.msg(args))


# ---------------------------------------------------------------------------------
# 8. abs and negation of a boolean mask
# ---------------------------------------------------------------------------------
def test_abs_and_negation_of_a_mask_are_refused_as_torchs(seeded):
    """torch refuses -mask and abs(mask) of a bool tensor; wxb's abs(mask) gave the mask
    back, wxb.abs(mask) and wxb.neg(mask) float tensors of 0 and ±1."""
    rng = seeded.rng
    values = rng.normal(size=int(rng.integers(1, 10)))
    mask = wxb.tensor(values) > 0
    torch_mask = torch.from_numpy(values) > 0
    for ours, theirs in (
        (lambda: -mask, lambda: -torch_mask),
        (lambda: abs(mask), lambda: abs(torch_mask)),
        (lambda: np.abs(mask), lambda: torch_mask.abs()),
        (lambda: wxb.abs(mask), lambda: torch.abs(torch_mask)),
        (lambda: wxb.neg(mask), lambda: torch.neg(torch_mask)),
    ):
        with pytest.raises((RuntimeError, NotImplementedError)):
            theirs()
        with pytest.raises(TypeError, match="~mask"):
            ours()
    labels = mask.long()  # whole numbers stay as ever
    np.testing.assert_array_equal(abs(-labels), labels)


# ---------------------------------------------------------------------------------
# 10. wxb eval MODEL without DATA
# ---------------------------------------------------------------------------------
def test_eval_without_data_of_a_digits_model_says_where_its_test_figures_are(
    seeded, tmp_path, capsys
):
    """`wxb train` then `wxb eval model.safetensors` said only "name the data"; a model
    trained on the built-in digits now hears where its test figures are (no file keeps
    the digits' test rows apart)."""
    rng = seeded.rng
    loss, accuracy = float(rng.uniform(0.01, 1)), float(rng.uniform(0.5, 1))
    model = nn.Sequential(nn.Linear(64, 10))
    model.info.update(
        {"data": {"source": "built-in digits"}, "test": {"loss": loss, "accuracy": accuracy}}
    )
    path = wxb.save(model, tmp_path / "model.safetensors")
    code, out, err = _cli(capsys, "eval", path)
    line = _one_error_line(err)
    assert code == 2 and out == "", err
    assert "wxb eval MODEL DATA" in line and "built-in digits" in line, line
    assert f"loss {loss:.4f}, accuracy {accuracy:.4f}" in line, seeded.msg(line)


# ---------------------------------------------------------------------------------
# 12. a module's own NumPy buffers through to_torch
# ---------------------------------------------------------------------------------
def test_to_torch_keeps_a_modules_own_numpy_buffers_as_torch_would(seeded):
    """`self.register_buffer("m", np.zeros(3))` (float64, beside float32 weights) made
    to_torch refuse the model ("mixes float32 and float64"); the buffers are now the
    twin's, in their dtype, so its state_dict loads, strictly, into the PyTorch class
    holding tensor buffers, and back."""
    rng = seeded.rng
    n, hidden = int(rng.integers(2, 6)), int(rng.integers(2, 6))
    m0, count = rng.normal(size=n), int(rng.integers(0, 100))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(n, hidden), nn.Linear(hidden, 2)
            self.register_buffer("m", m0.copy())
            self.register_buffer("count", np.array(count))
            self.register_buffer("scratch", np.zeros(2, np.float32), persistent=False)

        def forward(self, x):
            return self.fc2(F.relu(self.fc1(x)))

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = torch.nn.Linear(n, hidden), torch.nn.Linear(hidden, 2)
            self.register_buffer("m", torch.zeros(n, dtype=torch.float64))
            self.register_buffer("count", torch.tensor(0))
            self.register_buffer("scratch", torch.zeros(2), persistent=False)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))

    model = Net()
    twin = wxb.interop.to_torch(model)
    mine = TorchNet()
    mine.load_state_dict(twin.state_dict())  # strict: every key, no more
    np.testing.assert_array_equal(mine.m.numpy(), m0)
    assert mine.m.dtype == torch.float64 and int(mine.count) == count
    back = Net()
    back.load_state_dict({key: t.numpy() for key, t in mine.state_dict().items()})
    for key, array in model.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[key], array, err_msg=key)
    X = rng.normal(size=(3, n)).astype(np.float32)
    with torch.no_grad():
        out = mine(torch.from_numpy(X)).numpy()
    # two float32 products of n and hidden terms
    tol = 4 * (n + hidden) * EPS32 * (1 + np.abs(out).max())
    np.testing.assert_allclose(model(X).data, out, rtol=0, atol=tol, err_msg=seeded.msg("out"))


# ---------------------------------------------------------------------------------
# 11. CyclicLR
# ---------------------------------------------------------------------------------
def _cyclic_settings(rng: np.random.Generator, groups: int) -> dict:
    def per_group(low: float, high: float) -> float | list[float]:
        values = [float(v) for v in rng.uniform(low, high, size=groups)]
        return values if groups > 1 and rng.random() < 0.5 else values[0]

    mode = ["triangular", "triangular2", "exp_range", "own"][int(rng.integers(4))]
    settings = {
        "base_lr": per_group(1e-4, 1e-2),
        "max_lr": per_group(0.02, 0.5),
        "step_size_up": int(rng.integers(1, 6)),
        "step_size_down": None if rng.random() < 0.3 else int(rng.integers(1, 6)),
        "cycle_momentum": bool(rng.random() < 0.7),
        "base_momentum": per_group(0.5, 0.8),
        "max_momentum": per_group(0.85, 0.99),
    }
    if mode == "own":
        a = float(rng.uniform(0.3, 0.9))
        settings["scale_fn"] = lambda x: a**x
        settings["scale_mode"] = ["cycle", "iterations"][int(rng.integers(2))]
    else:
        settings["mode"] = mode
        settings["gamma"] = float(rng.uniform(0.8, 1.0))
    return settings


@pytest.mark.parametrize("optimizer", ["SGD", "Adam", "RMSprop"])
def test_cyclic_lr_gives_torchs_rates_and_momenta_step_by_step(seeded, optimizer):
    """wxb.optim.lr_scheduler had no CyclicLR (its import named OneCycleLR instead); now
    torch's, every option: each step's rate and momentum (Adam's β₁) are torch's, and a
    state_dict loaded into a new one mid-run goes on as the run does."""
    rng = seeded.rng
    groups = int(rng.integers(1, 3))
    settings = _cyclic_settings(rng, groups)
    options = {"lr": 0.1, **({"momentum": 0.9} if optimizer != "Adam" else {})}
    arrays = [rng.normal(size=(2, 3)).astype(np.float32) for _ in range(groups)]
    ours = getattr(wxb.optim, optimizer)([{"params": [nn.Parameter(a)]} for a in arrays], **options)
    theirs = getattr(torch.optim, optimizer)(
        [{"params": [torch.nn.Parameter(torch.from_numpy(a))]} for a in arrays], **options
    )
    schedule = wxb.optim.lr_scheduler.CyclicLR(ours, **settings)
    reference = torch.optim.lr_scheduler.CyclicLR(theirs, **settings)

    def momenta(opt):
        return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]

    steps = int(rng.integers(10, 40))
    halfway = int(rng.integers(1, steps))
    for step in range(steps):
        where = seeded.msg(f"step {step}, {settings}")
        assert [g["lr"] for g in ours.param_groups] == [g["lr"] for g in theirs.param_groups], where
        assert schedule.get_last_lr() == reference.get_last_lr(), where
        assert momenta(ours) == momenta(theirs), where
        if step == halfway:  # a resume: a new schedule on the optimiser, its state loaded
            state = schedule.state_dict()
            schedule = wxb.optim.lr_scheduler.CyclicLR(ours, **settings)
            schedule.load_state_dict(state)
        theirs.step()
        schedule.step()
        reference.step()


def test_cyclic_lr_is_stepped_once_a_batch_by_fit(seeded):
    """fit steps a CyclicLR after every batch, as torch's is stepped: each epoch's lr in
    History is the rate its last batch trained with."""
    rng = seeded.rng
    n, features, batch = int(rng.integers(20, 60)), 3, int(rng.integers(4, 10))
    X = rng.normal(size=(n, features)).astype(np.float32)
    y = rng.integers(0, 2, size=n)
    model = nn.Sequential(nn.Linear(features, 2))
    opt = wxb.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    settings = {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": int(rng.integers(1, 5))}
    schedule = wxb.optim.CyclicLR(opt, **settings)
    epochs = int(rng.integers(2, 5))
    history = wxb.fit(model, X, y, optimizer=opt, lr_schedule=schedule, epochs=epochs,
                      batch_size=batch, verbose=0)  # fmt: skip
    reference_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    reference = torch.optim.lr_scheduler.CyclicLR(reference_opt, **settings)
    batches, rates = math.ceil(n / batch), []
    for _ in range(epochs):
        for _ in range(batches):
            rate = reference_opt.param_groups[0]["lr"]
            reference_opt.step()
            reference.step()
        rates.append(rate)
    assert history.history["lr"] == rates, seeded.msg((history.history["lr"], rates))


def test_cyclic_lr_resumed_with_another_scale_fn_is_refused(seeded, tmp_path):
    """A CyclicLR's scale_fn is kept out of its state_dict, as torch's; a resume from a
    checkpoint with another function is refused, naming it, as a LambdaLR's is (else
    the run went on with other rates than the saved run's without a word)."""
    rng = seeded.rng
    n = int(rng.integers(20, 40))
    X = rng.normal(size=(n, 3)).astype(np.float32)
    y = rng.integers(0, 2, size=n)
    a = float(rng.uniform(0.3, 0.8))
    start = nn.Sequential(nn.Linear(3, 2)).state_dict()

    def run(scale, epochs, resume):
        model = nn.Sequential(nn.Linear(3, 2))
        model.load_state_dict(start)  # (the run's own start: a resume warns of another)
        opt = wxb.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        schedule = wxb.optim.CyclicLR(opt, 0.01, 0.1, step_size_up=3, scale_fn=scale)
        return wxb.fit(model, X, y, optimizer=opt, lr_schedule=schedule, epochs=epochs,
                       batch_size=8, verbose=0, checkpoint_dir=tmp_path, resume=resume)  # fmt: skip

    run(lambda x: a**x, 1, False)
    assert len(run(lambda x: a**x, 2, True).history["lr"]) == 2  # the same function goes on
    with pytest.raises(ConfigError, match="scale_fn is another function than the checkpoint"):
        run(lambda x: (a / 2) ** x, 3, True)
