"""Leftovers noticed by earlier sessions (s50): buffers through from_torch and to_torch,
binary accuracy recorded after BCELoss, activations at NaN and ±inf, Adagrad's state
before its first step, unique/pad/cdist as torch's, and flatten_rows decided once."""

import numpy as np
import pytest

import wxb
from wxb import interop

torch = pytest.importorskip("torch")


KEYS = ["scale", "wide", "dense1.steps", "inner.seen"]


def test_from_torch_keeps_the_buffers_no_layer_reads_and_to_torch_gives_them_back(seeded):
    """from_torch dropped the buffers of a Sequential itself (seq.register_buffer), of a
    nested one and of a layer (a step counter): the model's state_dict() lacked them.
    Now each is kept in its dtype, persistent or not, and to_torch gives them back."""
    rng = seeded.rng
    seq = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU())
    inner = torch.nn.Sequential(torch.nn.Linear(4, 2))
    seq.add_module("inner", inner)
    values = {
        "scale": torch.from_numpy(rng.standard_normal(4).astype(np.float32)),
        "wide": torch.from_numpy(rng.standard_normal(2)),  # float64 beside float32 weights
        "steps": torch.tensor(int(rng.integers(1, 100))),
        "seen": torch.from_numpy(rng.standard_normal(3).astype(np.float32)),
    }
    seq.register_buffer("scale", values["scale"])
    seq.register_buffer("wide", values["wide"], persistent=False)
    seq[0].register_buffer("steps", values["steps"])
    inner.register_buffer("seen", values["seen"])
    model = interop.from_torch(seq)
    ours = dict(model.named_buffers())
    assert set(ours) == {"scale", "wide", "dense1.steps", "inner.seen"}, seeded.msg(str(ours))
    for key, theirs in zip(KEYS, values.values(), strict=True):
        assert ours[key].dtype == theirs.numpy().dtype, seeded.msg(key)
        np.testing.assert_array_equal(ours[key], theirs.numpy(), err_msg=seeded.msg(key))
    # torch's state_dict holds the persistent ones, not "wide"; so does the model's
    assert set(model.state_dict()) - {k for k in model.state_dict() if "dense" in k} == {
        "scale",
        "inner.seen",
    }
    assert "dense1.steps" in model.state_dict()
    x = rng.standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(
        model(wxb.tensor(x)).numpy(), seq(torch.from_numpy(x)).detach().numpy(), rtol=1e-6,
        atol=1e-6, err_msg=seeded.msg("outputs"),
    )  # fmt: skip
    back = interop.to_torch(model)
    kept = dict(back.named_buffers())
    assert set(kept) == {"scale", "wide", "dense1.steps", "inner.seen"}, seeded.msg(str(kept))
    for key, theirs in zip(KEYS, values.values(), strict=True):
        assert kept[key].dtype == theirs.dtype, seeded.msg(key)
        assert torch.equal(kept[key], theirs), seeded.msg(key)
    assert "wide" not in back.state_dict() and "scale" in back.state_dict()


@pytest.mark.parametrize("labels", [1, 3])
def test_fit_and_evaluate_record_the_accuracy_after_bceloss_as_after_bce_with_logits(
    seeded, labels
):
    """fit with BCELoss (after a Sigmoid) recorded no accuracy, evaluate gave none, where
    BCEWithLogitsLoss records one. Now both count a label 1 where p > 0.5 (z > 0), a row
    right when every label is: the figures equal, for the same weights, the accuracy
    scikit-learn's accuracy_score gives of torch's probabilities."""
    from sklearn.metrics import accuracy_score

    rng = seeded.rng
    X = rng.standard_normal((int(rng.integers(60, 120)), 4))
    y = (X[:, :labels] + 0.5 * rng.standard_normal((len(X), labels)) > 0).astype(np.float64)
    seed = seeded.wxb_seed
    body = wxb.nn.Sequential(
        wxb.nn.Dense(4, 6, seed=seed), wxb.nn.Tanh(), wxb.nn.Dense(6, labels, seed=seed + 1)
    ).double()
    probs = wxb.nn.Sequential(body, wxb.nn.Sigmoid())
    logits = interop.to_torch(body)
    p = torch.sigmoid(logits(torch.from_numpy(X))).detach().numpy()
    expected = accuracy_score(y.astype(int), (p > 0.5).astype(int))
    ours = wxb.evaluate(probs, X, y, loss=wxb.nn.BCELoss())
    theirs = wxb.evaluate(body, X, y, loss=wxb.nn.BCEWithLogitsLoss())
    assert ours["accuracy"] == pytest.approx(expected, abs=1e-12), seeded.msg(str(ours))
    assert theirs["accuracy"] == ours["accuracy"], seeded.msg(str(theirs))
    assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-9), seeded.msg(str(ours))
    # fit: the same accuracy for the same steps; each epoch's figures, val_ too
    twin = wxb.nn.Sequential(interop.from_torch(logits).double())
    runs = []
    for model, loss in [(probs, wxb.nn.BCELoss()), (twin, wxb.nn.BCEWithLogitsLoss())]:
        history = wxb.fit(model, X, y, loss=loss, optimizer="sgd", lr=0.1, epochs=2,
                          batch_size=16, validation_split=0.25, seed=3, verbose=False)  # fmt: skip
        runs.append(history.history)
    for key in ("accuracy", "val_accuracy"):
        assert key in runs[0], seeded.msg(str(runs[0]))
        np.testing.assert_allclose(runs[0][key], runs[1][key], atol=1e-12, err_msg=seeded.msg(key))


SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0]


@pytest.mark.parametrize("name", ["ELU", "SELU", "CELU", "Softsign"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_at_nan_inf_and_signed_zero_as_torch(seeded, name, dtype):
    """Softsign's gradient at ±inf was 0 under torch's NaN output and gradient; ELU, SELU
    and CELU gave +0 for −0 where torch gives −0. Now as torch's, NaNs and zeros' signs
    in the same places; elsewhere to float rounding. (At a NaN, ELU's f′ is NaN, torch's
    too on all but its kernel's scalar tail, which gives 1: 256 elements, a multiple of
    its vector blocks, leave no tail.)"""
    rng = seeded.rng
    alpha = float(rng.uniform(0.2, 3.0)) if name in ("ELU", "CELU") else None
    z = np.concatenate([SPECIAL, rng.standard_normal(249) * 4, [-100.0, 100.0]]).astype(dtype)
    g = rng.standard_normal(z.shape).astype(dtype)
    args = () if alpha is None else (alpha,)
    x = wxb.tensor(z.copy(), requires_grad=True)
    out = getattr(wxb.nn, name)(*args)(x)
    out.backward(wxb.tensor(g))
    xt = torch.tensor(z.copy(), requires_grad=True)
    theirs = getattr(torch.nn, name)(*args)(xt)
    theirs.backward(torch.from_numpy(g))
    ours_y, ours_g = out.numpy(), np.asarray(x.grad)
    their_y, their_g = theirs.detach().numpy(), xt.grad.numpy()
    for what, a, b in [("forward", ours_y, their_y), ("gradient", ours_g, their_g)]:
        assert a.dtype == b.dtype, seeded.msg(what)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=seeded.msg(what))
        zero = b == 0
        np.testing.assert_array_equal(a[zero], 0, err_msg=seeded.msg(what))
        signs = np.signbit(a[zero]), np.signbit(b[zero])
        np.testing.assert_array_equal(*signs, err_msg=seeded.msg(what))
        # a few ulp, and the argument's ulp grown by e^(z/α) (|z/α| of them), or by
        # Softsign's cancellation (d = 1 + |z| of them); subnormals to a few of theirs
        size = np.where(np.isfinite(z), np.abs(z), 0)  # (at ±inf, NaN: the values equal)
        ulps = 8 + 4 * (size + 1) * max(1.0, 1 / (alpha or 1.0))
        tol = ulps * np.finfo(dtype).eps * np.abs(b) + 4 * np.finfo(dtype).smallest_subnormal
        if name == "CELU" and what == "gradient":  # torch's backward rounds 1/α to float32:
            tol += 2 * (1 + size / alpha) * 2.0**-24 * np.abs(b)  # α·(1/α) ≠ 1, e^(z/α) off
        finite = np.isfinite(b)
        assert np.all(np.abs(a - b)[finite] <= tol[finite]), seeded.msg(f"{what}: {a} {b}")
        np.testing.assert_array_equal(a[~finite], b[~finite], err_msg=seeded.msg(what))


def _entries(state, params):
    return [
        {k: np.asarray(v, dtype=np.float64) for k, v in state[p].items()} if p in state else None
        for p in params
    ]


def test_adagrad_state_is_made_at_construction_as_torchs(seeded):
    """PyTorch's Adagrad fills state[p] (step 0, sum = initial_accumulator_value) when it
    is made; wxb's state was {} till the first step (state[p]["sum"] a KeyError). Now as
    torch's at each stage: made, a group added (lazy there too), stepped, reset."""
    from collections import defaultdict

    rng = seeded.rng
    start = float(rng.uniform(0, 1))
    shapes = [(3, 2), (2,), (4,)]
    values = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    ours = [wxb.nn.Parameter(v.copy()) for v in values]
    theirs = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in values]
    opt = wxb.optim.Adagrad(ours[:2], lr=0.1, initial_accumulator_value=start)
    topt = torch.optim.Adagrad(theirs[:2], lr=0.1, initial_accumulator_value=start)

    def same(stage):
        assert len(opt.state) == len(topt.state), seeded.msg(stage)
        for a, b in zip(_entries(opt.state, ours), _entries(topt.state, theirs), strict=True):
            assert (a is None) == (b is None), seeded.msg(f"{stage}: {a} {b}")
            if a is not None:
                assert a.keys() == b.keys(), seeded.msg(stage)
                for key in a:
                    np.testing.assert_allclose(a[key], b[key], rtol=1e-6, err_msg=seeded.msg(stage))

    same("made")
    np.testing.assert_allclose(opt.state[ours[0]]["sum"], start, rtol=1e-7)
    opt.add_param_group({"params": [ours[2]]})
    topt.add_param_group({"params": [theirs[2]]})
    same("group added")
    for p, t in zip(ours, theirs, strict=True):
        g = rng.standard_normal(p.shape).astype(np.float32)
        p.grad, t.grad = g, torch.from_numpy(g.copy())
    opt.step()
    topt.step()
    same("stepped")
    opt.state = defaultdict(dict)
    topt.state = defaultdict(dict)
    same("reset")
    # the state before a step, into torch and from it: torch's own
    fresh = wxb.optim.Adagrad(ours[:2], lr=0.1, initial_accumulator_value=start)
    twin = torch.optim.Adagrad(theirs[:2], lr=0.1, initial_accumulator_value=0.0)
    interop.optimizer_to_torch(fresh, twin)
    made = torch.optim.Adagrad(theirs[:2], lr=0.1, initial_accumulator_value=start)
    got, expected = twin.state_dict()["state"], made.state_dict()["state"]
    for i in range(2):
        for key in ("step", "sum"):
            assert torch.equal(got[i][key], expected[i][key]), seeded.msg(f"{i} {key}")


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_with_negative_pads_as_torch(seeded, mode):
    """F.pad refused negative pads in reflect, replicate and circular modes, which torch
    computes: reflect and replicate read each output place's place in the input (−left
    on, a crop past which the reflection still reads), circular crops and then wraps what
    is left. Values and gradients as torch's; where wxb refuses (an empty result, or a
    circular wrap past the values left, where torch's copy reads what it writes) in one
    line, torch refuses too or gives nothing of use."""
    rng = seeded.rng
    computed = 0
    # drawn until 12 are computed: of the draws with a negative pad wxb (rightly) refuses
    # about 80% in circular mode, so 60 draws computed fewer than 5 once in 120 runs
    for _ in range(1000):
        if computed == 12:
            break
        padded = int(rng.integers(1, 4))
        shape = tuple(int(v) for v in rng.integers(2, 6, padded + int(rng.integers(1, 3))))
        pads = tuple(int(v) for v in rng.integers(-4, 5, 2 * padded))
        if min(pads) >= 0:
            continue
        a = rng.standard_normal(shape)
        g = None
        try:
            x = wxb.tensor(a, requires_grad=True)
            out = wxb.nn.functional.pad(x, pads, mode=mode)
        except wxb.errors.WxbError as exc:
            assert "\n" not in str(exc) and str(exc).startswith("pad: "), seeded.msg(str(exc))
            continue
        xt = torch.tensor(a, requires_grad=True)
        theirs = torch.nn.functional.pad(xt, pads, mode=mode)
        g = rng.standard_normal(theirs.shape)
        out.backward(wxb.tensor(g))
        theirs.backward(torch.from_numpy(g))
        where = seeded.msg(f"{mode} {shape} {pads}")
        np.testing.assert_array_equal(out.numpy(), theirs.detach().numpy(), err_msg=where)
        np.testing.assert_allclose(np.asarray(x.grad), xt.grad.numpy(), rtol=1e-12, atol=1e-12,
                                   err_msg=where)  # fmt: skip
        computed += 1
    assert computed == 12, seeded.msg(f"{computed} cases computed in 1000 draws")


@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 0.9])
def test_cdist_and_norm_below_p_1_as_torch(seeded, p):
    """cdist, norm and pairwise_distance refused 0 ≤ p < 1, which torch computes: the
    quasi-norm (Σ|d|^p)^(1/p), and for p = 0 the count of nonzero differences (gradient
    0). Values and gradients as torch's, a zero difference's gradient 0 as torch's."""
    rng = seeded.rng
    P = rng.standard_normal((int(rng.integers(1, 5)), 3))
    Q = rng.standard_normal((int(rng.integers(1, 5)), 3))
    Q[0, 1] = P[0, 1]  # a zero difference: |d|^(p−1) is inf there
    a, b = wxb.tensor(P, requires_grad=True), wxb.tensor(Q, requires_grad=True)
    at, bt = torch.tensor(P, requires_grad=True), torch.tensor(Q, requires_grad=True)
    ours, theirs = wxb.cdist(a, b, p=p), torch.cdist(at, bt, p=p)
    g = rng.standard_normal(theirs.shape)
    ours.backward(wxb.tensor(g))
    theirs.backward(torch.from_numpy(g))
    tol = dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        ours.numpy(), theirs.detach().numpy(), **tol, err_msg=seeded.msg("d")
    )
    np.testing.assert_allclose(np.asarray(a.grad), at.grad.numpy(), **tol, err_msg=seeded.msg("x1"))
    np.testing.assert_allclose(np.asarray(b.grad), bt.grad.numpy(), **tol, err_msg=seeded.msg("x2"))
    v = rng.standard_normal(6)
    v[2] = 0.0
    np.testing.assert_allclose(
        wxb.tensor(v).norm(p).item(),
        torch.tensor(v).norm(p).item(),
        **tol,
        err_msg=seeded.msg("norm"),
    )


class _Counted(wxb.nn.Module):
    """PyTorch's MNIST-example shape: a forward of one's own that flattens first."""

    def __init__(self, width, seed):
        super().__init__()
        self.fc = wxb.nn.Dense(width, 3, seed=seed)
        self.calls = []

    def forward(self, x):
        self.calls.append(len(x))
        return self.fc(x.view(x.size(0), -1))


def test_flatten_rows_decides_once_per_model_till_its_structure_changes(seeded):
    """flatten_rows ran the model's forward twice on 2 rows at every predict, evaluate and
    fit call on images, to see whether it takes them as rows: predict of one image cost 3
    forwards. Now decided once per row shape and dtype, again after the model changes."""
    rng = seeded.rng
    h, w = (int(v) for v in rng.integers(2, 5, size=2))
    model = _Counted(h * w, seeded.wxb_seed)
    X = rng.standard_normal((int(rng.integers(3, 9)), h, w)).astype(np.float32)
    expected = model(wxb.tensor(X.reshape(len(X), -1))).numpy()
    model.calls.clear()
    first = model.predict(X)
    assert model.calls.count(2) == 2 and len(model.calls) >= 3, seeded.msg(str(model.calls))
    model.calls.clear()
    second = model.predict(X)
    assert 2 not in model.calls or len(X) == 2, seeded.msg(str(model.calls))
    assert len(model.calls) == 1, seeded.msg(str(model.calls))  # the prediction itself
    for got in (first, second):
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-6, atol=1e-6)
    model.calls.clear()
    wxb.evaluate(model, X, rng.integers(0, 3, size=len(X)), loss="cross_entropy")
    # (evaluate's look at the output's shape, on 2 rows, and the rows: no flatten check)
    assert sorted(model.calls) == sorted([2, len(X)]), seeded.msg(str(model.calls))
    # a change of structure decides again: the sample's two forwards come back
    model.extra = wxb.nn.Identity()
    model.calls.clear()
    model.predict(X)
    assert model.calls.count(2) == 2 and len(model.calls) == 3, seeded.msg(str(model.calls))
    # another image shape is asked once too
    model.calls.clear()
    other = X.reshape(len(X), h * w, 1)  # (h, w ≥ 2: never X's own row shape)
    model.predict(other)
    model.predict(other)
    assert len(model.calls) == 4, seeded.msg(str(model.calls))


def test_wxb_eval_without_data_rescores_the_digits_test_rows_wxb_train_scored(
    seeded, tmp_path, capsys
):
    """`wxb train` on the built-in digits then `wxb eval MODEL` was refused ("name the
    data"): no file kept the split. The model file now records the split's seed and
    fraction; eval draws the same test rows again and scores them: its loss and accuracy
    are the ones training saved, and its row count theirs. A file without them is still
    refused in one line saying where the figures are."""
    from wxb.cli import main

    rng = seeded.rng
    seed, split = int(rng.integers(0, 2**31)), float(rng.choice([0.15, 0.2, 0.3]))
    path = tmp_path / "m.safetensors"
    code = main(["train", "--epochs", "2", "--seed", str(seed), "--test-split", str(split),
                 "--hidden", "16", "-o", str(path)])  # fmt: skip
    capsys.readouterr()
    assert code == 0
    info = wxb.load(path).info
    code = main(["eval", str(path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith("built-in digits") and f"{info['data']['test_rows']} samples" in first
    shown = dict(part.rsplit(" ", 1) for part in first.split(": ", 1)[1].split("; ")[1].split(", "))
    for key in ("loss", "accuracy"):
        assert float(shown[key]) == pytest.approx(info["test"][key], abs=5e-5), seeded.msg(first)
    # the same rows, not only the same figures: the model's predictions on the rows drawn
    # by the training split (scikit-learn's digits, split as data.split_indices does)
    from wxb import data as wdata

    digits = wdata.load_digits()
    rows = wdata.split_indices(len(digits.y), split, np.random.default_rng(seed), digits.y)[1]
    model = wxb.load(path)
    right = (np.asarray(model.predict(digits.X[rows])).argmax(1) == digits.y[rows]).mean()
    assert float(shown["accuracy"]) == pytest.approx(right, abs=5e-5), seeded.msg(first)


def test_labels_masks_and_float32_tensors_combine_in_torchs_dtype(seeded):
    """cat, stack, where, maximum, minimum and arithmetic of an IndexArray (argmax's int64
    indices, a bool mask) beside a float32 Tensor, another IndexArray or a number: the
    result's dtype and values are torch's. wxb.maximum(labels, labels) came back a
    float32 Tensor where torch's is int64 (the rest were already torch's)."""
    rng = seeded.rng
    n = int(rng.integers(2, 7))
    x = rng.standard_normal((n, 4)).astype(np.float32)
    ours = {"x": wxb.tensor(x)}
    ours["lab"] = ours["x"].argmax(1)
    ours["mask"] = ours["x"][:, 0] > 0
    ours["col"] = ours["x"][:, 1]
    theirs = {"x": torch.from_numpy(x)}
    theirs["lab"] = theirs["x"].argmax(1)
    theirs["mask"] = theirs["x"][:, 0] > 0
    theirs["col"] = theirs["x"][:, 1]
    cases = {
        "cat": lambda m, d, a, b: m.cat([d[a], d[b]]),
        "stack": lambda m, d, a, b: m.stack([d[a], d[b]]),
        "where": lambda m, d, a, b: m.where(d["mask"], d[a], d[b]),
        "maximum": lambda m, d, a, b: m.maximum(d[a], d[b]),
        "minimum": lambda m, d, a, b: m.minimum(d[a], d[b]),
        "mul": lambda m, d, a, b: d[a] * d[b],
        "add": lambda m, d, a, b: d[a] + d[b],
        "times 0.5": lambda m, d, a, b: d[a] * 0.5,
        "over n": lambda m, d, a, b: d[a].sum() / n,
    }
    for name, case in cases.items():
        for a, b in [("lab", "col"), ("col", "lab"), ("mask", "col"), ("lab", "lab"),
                     ("lab", "mask"), ("mask", "mask")]:  # fmt: skip
            if name == "add" and "mask" in (a, b) and a == b:
                continue  # (bool + bool: torch's or, NumPy's too)
            t = case(torch, theirs, a, b)
            o = case(wxb, ours, a, b)
            where = seeded.msg(f"{name}({a}, {b})")
            assert str(np.asarray(o).dtype) == str(t.dtype).removeprefix("torch."), where
            # a float32 sum of n values is each library's n roundings (torch's in float32):
            # within (n + 1)·ε·Σ|v|/n of the exact each, which a cancelling sum's own size
            # does not bound (rtol alone failed at a sum of 0.037 from terms near 0.5)
            atol = 0.0
            if name == "over n":
                atol = 2 * (n + 1) * 2.0**-23 * np.abs(np.asarray(ours[a], np.float64)).sum() / n
            np.testing.assert_allclose(np.asarray(o, dtype=np.float64), t.double().numpy(),
                                       rtol=1e-6, atol=atol, err_msg=where)  # fmt: skip
