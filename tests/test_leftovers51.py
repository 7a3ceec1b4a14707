"""Leftovers noticed by earlier sessions (s51): why_not_planned of a Sequential subclass
agrees with fit's engine; every loss fit takes by name is recorded by name; einsum
reads a diagonal where an index repeats within one operand; a Flatten-first model's ONNX
input is the samples predict takes."""

import numpy as np
import pytest

import wxb

torch = pytest.importorskip("torch")


class _Doubled(wxb.nn.Sequential):
    def forward(self, x):
        return super().forward(x) * 2


class _CalledDoubled(wxb.nn.Sequential):
    def __call__(self, x):
        return super().__call__(x) * 2


class _Plain(wxb.nn.Sequential):
    """No code of its own: Sequential's forward runs it, planned."""


def _subclass_model(shape, n, h, c):
    layers = (wxb.nn.Linear(n, h), wxb.nn.Tanh(), wxb.nn.Linear(h, c))
    if shape == "own forward":
        return _Doubled(*layers), 2.0
    if shape == "own __call__":
        return _CalledDoubled(*layers), 2.0
    model = _Plain(*layers) if shape == "plain subclass" else wxb.nn.Sequential(*layers)
    if shape == "instance forward":
        model.forward = lambda x: wxb.nn.Sequential.forward(model, x) * 2
        return model, 2.0
    if shape == "model hook":
        model.register_forward_hook(lambda module, inputs, output: output * 2)
        return model, 2.0
    return model, 1.0


@pytest.mark.parametrize(
    "shape",
    ["own forward", "own __call__", "instance forward", "model hook", "plain subclass", "stock"],
)
def test_why_not_planned_of_a_sequential_subclass_agrees_with_fit(seeded, shape):
    """A Sequential subclass with a forward of its own (``super().forward(x) * 2``) was
    reported planned by ``why_not_planned()`` (None) while ``fit`` trained it through the
    graph, saying "S overrides forward…": the two reports disagreed. Both now give the
    same reason; a subclass without code of its own stays planned. Every call path gives
    the subclass's numbers, as torch's twin computes them."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 7, size=3))
    model, factor = _subclass_model(shape, n, h, c)
    model.to("float64")
    twin = torch.nn.Sequential(torch.nn.Linear(n, h), torch.nn.Tanh(), torch.nn.Linear(h, c))
    twin.double()
    with torch.no_grad():
        for ours, theirs in zip(
            model.state_dict().values(), twin.state_dict().values(), strict=True
        ):
            theirs.copy_(torch.from_numpy(np.asarray(ours)))
    X = rng.normal(size=(int(rng.integers(1, 9)), n))
    msg = lambda what: seeded.msg(f"{what} of a {shape}")  # noqa: E731
    with torch.no_grad():
        expected = factor * twin(torch.from_numpy(X)).numpy()
    tol = dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.predict(X), expected, **tol, err_msg=msg("predict"))
    with wxb.no_grad():
        np.testing.assert_allclose(model(X).data, expected, **tol, err_msg=msg("no_grad"))
    np.testing.assert_allclose(model(X).data, expected, **tol, err_msg=msg("a call"))
    reason = model.why_not_planned()
    history = wxb.fit(model, X, rng.normal(size=(len(X), c)), loss="mse", epochs=1, verbose=0)
    assert history.engine == ("planned" if reason is None else "graph"), msg(reason)
    assert reason == history.engine_reason, msg(f"{reason!r} against {history.engine_reason!r}")
    assert (reason is None) is (shape in ("plain subclass", "stock")), msg(reason)


def _torch_loss(name, out, y):
    TF = torch.nn.functional
    out, y = torch.from_numpy(out.astype(np.float64)), torch.from_numpy(y)
    if name in ("cross_entropy", "nll"):  # nll's model ends in LogSoftmax: the same figure
        return TF.cross_entropy(out, y) if name == "cross_entropy" else TF.nll_loss(out, y)
    if name == "mse":  # wxb's is the seed's ½‖ŷ − y‖² a row: C/2 times torch's
        return TF.mse_loss(out, y) * out.shape[1] / 2
    functions = {
        "l1": TF.l1_loss, "huber": TF.huber_loss,
        "smooth_l1": TF.smooth_l1_loss, "bce_with_logits": TF.binary_cross_entropy_with_logits,
        "bce": TF.binary_cross_entropy, "binary_cross_entropy": TF.binary_cross_entropy,
        "kl_div": TF.kl_div,
    }  # fmt: skip
    return functions[name](out, y)


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")  # (torch's, for kl_div)
@pytest.mark.parametrize("name", [*wxb.nn.LOSSES, "bce", "binary_cross_entropy", "kl_div"])
def test_every_loss_fit_takes_by_name_is_recorded_by_name(seeded, name, tmp_path):
    """``wxb.fit(model, X, y, loss="bce")`` (or "binary_cross_entropy", "kl_div") recorded
    an unnamed loss: ``wxb.evaluate(model, X, y)`` and a second fit without loss= then
    refused, "last trained with BCELoss, which is not recorded by name", for a loss given
    by its name. Every name fit takes is now recorded (the saved model keeps it), and
    evaluate without loss= scores that loss, as torch computes it on the outputs."""
    rng = seeded.rng
    rows, n, c = int(rng.integers(5, 30)), int(rng.integers(1, 5)), int(rng.integers(2, 5))
    X = rng.normal(size=(rows, n))
    head = []
    if name in ("cross_entropy", "nll"):
        width, y = c, rng.integers(0, c, rows)
        head = [wxb.nn.LogSoftmax(dim=1)] if name == "nll" else []
    elif name == "kl_div":
        width, y, head = c, rng.dirichlet(np.ones(c), rows), [wxb.nn.LogSoftmax(dim=1)]
    elif name in ("bce_with_logits", "bce", "binary_cross_entropy"):
        width, y = 1, rng.integers(0, 2, (rows, 1)).astype(np.float64)
        head = [] if name == "bce_with_logits" else [wxb.nn.Sigmoid()]
    else:
        width, y = int(rng.integers(1, 3)), rng.normal(size=(rows, 1))
        y = np.repeat(y, width, axis=1) + rng.normal(size=(rows, width))
    model = wxb.nn.Sequential(wxb.nn.Linear(n, width), *head).to("float64")
    msg = lambda what: seeded.msg(f"{what} after fit with loss={name!r}")  # noqa: E731
    wxb.fit(model, X, y, loss=name, epochs=1, batch_size=8, verbose=0)
    assert "unnamed_loss" not in model.info, msg(str(model.info))
    recorded = model.info.get("loss")
    # (NLLLoss is recorded as the cross-entropy its log-probabilities give the same figure)
    kind = wxb.nn.CrossEntropyLoss if name == "nll" else type(wxb.nn.get_loss(name))
    assert type(wxb.nn.get_loss(recorded)) is kind, msg(recorded)
    path = tmp_path / "model.wxb"
    wxb.save(model, path)
    assert wxb.load(path).info.get("loss") == recorded, msg("the saved model's loss")
    want = float(_torch_loss(name, model.predict(X), y))
    got = wxb.evaluate(model, X, y)["loss"]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15, err_msg=msg("evaluate"))
    wxb.fit(model, X, y, epochs=1, verbose=0)  # without loss=: the recorded one
    assert model.info.get("loss") == recorded, msg("a second fit's record")


EINSUM_DIAGONALS = [
    ("ii->i", ["ii"]), ("ii", ["ii"]), ("bii->bi", ["bii"]), ("iij->j", ["iij"]),
    ("iji->ij", ["iji"]), ("iii->i", ["iii"]), ("bii->b", ["bii"]), ("ii,ij->j", ["ii", "ij"]),
    ("ij,jj->ij", ["ij", "jj"]), ("...ii->...i", ["bii"]),
]  # fmt: skip


@pytest.mark.parametrize("equation, subs", EINSUM_DIAGONALS)
def test_einsum_with_an_index_repeated_in_one_operand_is_torchs_diagonal(seeded, equation, subs):
    """``wxb.einsum("ii->i", m)`` (a diagonal, "ii" a trace, "bii->bi" a batch of them) was
    refused, "an index repeated within 'ii' is not taken", where torch computes it with
    its gradient (zero off the diagonal). Values and gradients now are torch's."""
    rng = seeded.rng
    sizes = {c: int(rng.integers(1, 5)) for c in "bij"}
    arrays = [rng.normal(size=[sizes[c] for c in sub]) for sub in subs]
    ours = [wxb.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, expected = wxb.einsum(equation, *ours), torch.einsum(equation, *theirs)
    msg = lambda what: seeded.msg(f"{what} of {equation} with {sizes}")  # noqa: E731
    # (a sum of at most 4 products in another order: a few roundings of the largest term)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-13, atol=1e-13,
                               err_msg=msg("the value"))  # fmt: skip
    G = rng.normal(size=expected.shape)
    (out * wxb.tensor(G)).sum().backward()
    (expected * torch.from_numpy(G)).sum().backward()
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-13, atol=1e-13,
                                   err_msg=msg(f"∂/∂ operand {k}"))  # fmt: skip
    ours[0].data[...] = 7.0  # the output is its own memory, not a view of the operand's
    np.testing.assert_array_equal(out.data, expected.detach().numpy(), err_msg=msg("the copy"))


def test_onnx_export_of_a_flatten_first_model_takes_the_samples_predict_takes(seeded, tmp_path):
    """A model whose first layer is Flatten() trains and predicts on images (N, 2, 3, 4),
    but its ONNX graph took rows (batch, 24): onnxruntime refused the X predict takes
    ("Invalid rank for input"). fit now records the sample shape, and the graph's input
    is (batch, 2, 3, 4) (``sample_shape=`` to give another), with predict's outputs."""
    import wxb.onnx

    ort = pytest.importorskip("onnxruntime")
    rng = seeded.rng
    dims = tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(2, 4))))
    n, rows, c = int(np.prod(dims)), int(rng.integers(2, 12)), int(rng.integers(2, 4))
    X = rng.normal(size=(rows, *dims))
    model = wxb.nn.Sequential(
        wxb.nn.Flatten(), wxb.nn.Linear(n, 5), wxb.nn.Tanh(), wxb.nn.Linear(5, c)
    ).to("float64")
    wxb.fit(model, X, rng.integers(0, c, rows), epochs=1, verbose=0)
    msg = lambda what: seeded.msg(f"{what} for samples {dims}")  # noqa: E731
    path = wxb.onnx.export(model, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(path))
    assert session.get_inputs()[0].shape == ["batch", *dims], msg("the input's shape")
    # (Gemm sums n products in its own order: a few roundings of float64)
    np.testing.assert_allclose(session.run(None, {"input": X})[0], model.predict(X),
                               rtol=1e-12, atol=1e-12, err_msg=msg("onnxruntime"))  # fmt: skip
    flipped = dims[::-1]  # another shape of the same values, given
    path = wxb.onnx.export(model, tmp_path / "other.onnx", sample_shape=flipped)
    session = ort.InferenceSession(str(path))
    other = X.reshape(rows, *flipped)
    found = session.run(None, {"input": other})[0]
    np.testing.assert_allclose(found, model.predict(other), rtol=1e-12, atol=1e-12,
                               err_msg=msg("given sample_shape"))  # fmt: skip
    with pytest.raises(wxb.ConfigError, match=f"sample_shape must be a sample's dims of {n} "):
        wxb.onnx.export(model, tmp_path / "bad.onnx", sample_shape=(n + 1,))


def test_a_later_fit_on_rows_exports_rows_not_the_earlier_fits_images(seeded, tmp_path):
    """A Flatten-first model fitted on images (N, *dims), then fitted on rows (N, n): the
    record of the first fit's sample shape stayed, and the ONNX graph took images where
    the model was last trained on rows, which onnxruntime then refused. The last fit's
    data decides: rows, whose outputs are predict's."""
    import wxb.onnx

    ort = pytest.importorskip("onnxruntime")
    rng = seeded.rng
    dims = tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(2, 4))))
    n, rows, c = int(np.prod(dims)), int(rng.integers(2, 12)), int(rng.integers(2, 4))
    X = rng.normal(size=(rows, *dims))
    model = wxb.nn.Sequential(wxb.nn.Flatten(), wxb.nn.Linear(n, c)).to("float64")
    wxb.fit(model, X, rng.integers(0, c, rows), epochs=1, verbose=0)
    assert model.info["sample_shape"] == list(dims), seeded.msg("the first fit's record")
    flat = X.reshape(rows, n)
    wxb.fit(model, flat, rng.integers(0, c, rows), epochs=1, verbose=0)
    assert "sample_shape" not in model.info, seeded.msg("the record after a fit on rows")
    session = ort.InferenceSession(str(wxb.onnx.export(model, tmp_path / "rows.onnx")))
    assert session.get_inputs()[0].shape == ["batch", n], seeded.msg("the input's shape")
    found = session.run(None, {"input": flat})[0]
    np.testing.assert_allclose(found, model.predict(flat), rtol=1e-12, atol=1e-12,
                               err_msg=seeded.msg("onnxruntime"))  # fmt: skip


def test_a_first_flatten_of_negative_start_dim_is_refused_in_one_line_by_predict(seeded):
    """Flatten(-3) first: model(X) of images (N, 2, 3, 4) is torch's; predict and fit
    hand the model rows, where dim −3 is out of range: they stopped at "flatten: dim -3
    is out of range for a tensor of 2 dimensions", of a tensor the user never made. Now
    a line naming the layer and what to give instead."""
    rng = seeded.rng
    dims = tuple(int(d) for d in rng.integers(1, 5, size=3))
    n, rows = int(np.prod(dims)), int(rng.integers(2, 9))
    X = rng.normal(size=(rows, *dims))
    model = wxb.nn.Sequential(wxb.nn.Flatten(-3), wxb.nn.Linear(n, 2)).to("float64")
    twin = torch.nn.Sequential(torch.nn.Flatten(-3), torch.nn.Linear(n, 2)).double()
    with torch.no_grad():
        twin[1].weight.copy_(torch.from_numpy(model[1].weight.data))
        twin[1].bias.copy_(torch.from_numpy(model[1].bias.data))
        expected = twin(torch.from_numpy(X)).numpy()
    with wxb.no_grad():
        np.testing.assert_allclose(model(X).data, expected, rtol=1e-12, atol=1e-12,
                                   err_msg=seeded.msg("model(X)"))  # fmt: skip
    for run in (model.predict, lambda X: wxb.fit(model, X, rng.integers(0, 2, rows), verbose=0)):
        with pytest.raises(
            wxb.ConfigError, match=r"Flatten\(start_dim=-3\) first .* give Flatten\(\)"
        ):
            run(X)


_REPLAYED = """
import pytest
import torch

@pytest.mark.parametrize("run", [1, 2])
def test_draws(seeded, run):
    print("numpy", seeded.rng.standard_normal(2).tolist())
    print("torch", torch.randn(3).tolist(), torch.nn.Linear(2, 2).weight.flatten().tolist())
"""


def test_the_printed_seed_replays_torchs_draws_too(seeded, tmp_path):
    """The ``seeded`` fixture reseeded NumPy and wxb, not torch's global generator: a
    failing test that drew with ``torch.randn`` (or initialised a torch twin) did not
    replay from WXB_TEST_SEED. Two tests run with one seed (the second after the first
    drew) now draw the same, in torch too."""
    import os
    import shutil
    import subprocess
    import sys

    shutil.copy(os.path.join(os.path.dirname(__file__), "conftest.py"), tmp_path)
    (tmp_path / "test_replayed.py").write_text(_REPLAYED)
    env = {**os.environ, "WXB_TEST_SEED": str(seeded.seed)}
    env.pop("WXB_ALSO_NUMPY_ROUTE", None)  # (one pass of its own)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-s",
               str(tmp_path / "test_replayed.py")]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith(("numpy", "torch"))]
    assert done.returncode == 0 and len(lines) == 4, done.stdout + done.stderr
    assert lines[:2] == lines[2:], seeded.msg(f"a replay: {lines}")
