"""Leftovers of the day's hunts: fit's progress bar (Keras's running mean), an optimiser
built before ``model.to(dtype)`` (PyTorch's state cast by hand), SciPy sparse X
(scikit-learn's MLP takes it), validation rows all of ignore_index (PyTorch's loss is
NaN then), ``checkpoint_dir`` as bytes (as ``open`` takes it), Keras's ``verbose=2``,
and a second ``fit(optimizer="adam")``. Fresh random draws on each run (the seed printed;
``WXB_TEST_SEED`` replays it)."""

import io
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import wxb
from wxb.errors import ConfigError, DataError
from wxb.metrics import figure_text
from wxb.nn import Dense, Sequential, Tanh
from wxb.nn.losses import CrossEntropyLoss
from wxb.optim import SGD, Adam

DRAW = re.compile(r"\repoch (\d+)/\d+ \S+ (\d+)/(\d+)  loss ([^\s\033]+)")


def _mlp(rng, d, c, dtype="float64"):
    seed = int(rng.integers(1 << 30))
    return Sequential(
        Dense(d, 7, seed=seed, dtype=dtype), Tanh(), Dense(7, c, seed=seed + 1, dtype=dtype)
    )


def _torch_twin(model):
    dense = [m for m in model if isinstance(m, Dense)]
    twin = torch.nn.Sequential(
        torch.nn.Linear(*dense[0].weight.shape[::-1]),
        torch.nn.Tanh(),
        torch.nn.Linear(*dense[1].weight.shape[::-1]),
    ).to(getattr(torch, str(model.dtype)))
    with torch.no_grad():
        for tp, p in zip(twin.parameters(), model.parameters(), strict=True):
            tp.copy_(torch.from_numpy(p.data.copy()))
    return twin


# -- 1. the progress bar's loss ------------------------------------------------------------
def test_the_bar_shows_the_epochs_running_mean_as_keras(seeded):
    """Keras's bar shows the mean of the epoch's batch losses so far (by rows): after the
    first batch, that batch's loss; after the last, the epoch's figure. wxb showed the
    last batch's loss alone under "loss"."""
    rng = seeded.rng
    n, d, c = int(rng.integers(30, 60)), 4, 3
    batch = int(rng.integers(4, 9))
    if n % batch == 0:
        n += 1  # a short last batch: its loss is not the epoch's
    X, y = rng.normal(size=(n, d)), rng.integers(0, c, size=n)
    weight = rng.uniform(0.2, 3.0, size=c) if rng.random() < 0.5 else None
    model = _mlp(rng, d, c)
    twin = _torch_twin(model)
    stream = io.StringIO()
    loss = CrossEntropyLoss(weight=weight)
    history = wxb.fit(
        model, X, y, loss=loss, epochs=3, batch_size=batch, shuffle=False, verbose=True,
        stream=stream,
    )  # fmt: skip
    draws = [m.groups() for m in DRAW.finditer(stream.getvalue())]
    first = [g for g in draws if g[0] == "1" and g[1] == "1"]
    assert first, seeded.msg(f"no draw after the first step: {stream.getvalue()!r}")
    # the first batch at the initial weights, by PyTorch
    w = None if weight is None else torch.tensor(weight)
    expected = torch.nn.functional.cross_entropy(
        twin(torch.tensor(X[:batch])), torch.tensor(y[:batch]), weight=w
    )
    assert first[0][3] == figure_text(expected.item()), seeded.msg(str(first))
    for epoch in range(1, 4):
        last = [g for g in draws if g[0] == str(epoch) and g[1] == g[2]]
        assert last, seeded.msg(f"epoch {epoch}: no draw at its last step")
        shown = figure_text(history["loss"][epoch - 1])
        assert last[-1][3] == shown, seeded.msg(f"epoch {epoch}: {last[-1]} vs {shown}")


# -- 2. an optimiser built before model.to(dtype) -----------------------------------------
@pytest.mark.parametrize("kind", ["adam", "sgd"])
@pytest.mark.parametrize("cast", [("float32", "float64"), ("float64", "float32")])
def test_an_optimiser_built_before_a_cast_follows_the_model(seeded, kind, cast):
    """PyTorch refuses a step whose state is of the old dtype; its state cast by hand
    along with the model is the reference: wxb's optimiser casts its state and flat
    buffers at the next step and updates the arrays the model computes with."""
    rng = seeded.rng
    src, dst = cast
    n, d, c = 24, 3, 2
    X, y = rng.normal(size=(n, d)), rng.normal(size=(n, c))
    model = _mlp(rng, d, c, src)
    twin = _torch_twin(model)
    make = {
        "adam": (lambda ps: Adam(ps, lr=0.01), lambda ps: torch.optim.Adam(ps, lr=0.01)),
        "sgd": (
            lambda ps: SGD(ps, lr=0.05, momentum=0.9),
            lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9),
        ),
    }[kind]
    opt, topt = make[0](model.parameters()), make[1](twin.parameters())

    def torch_epoch(dtype):
        topt.zero_grad()
        out = twin(torch.tensor(X, dtype=dtype))
        torch.nn.functional.mse_loss(out, torch.tensor(y, dtype=dtype)).backward()
        topt.step()

    wxb.fit(model, X.astype(src), y.astype(src), loss="mse", optimizer=opt, epochs=2,
            batch_size=n, shuffle=False, verbose=False)  # fmt: skip
    for _ in range(2):
        torch_epoch(getattr(torch, src))
    if rng.random() < 0.5:
        model.to(dst)
    else:
        model.double() if dst == "float64" else model.float()
    twin.to(getattr(torch, dst))
    for state in topt.state.values():  # what PyTorch needs done by hand
        for key, value in state.items():
            if key != "step" and torch.is_tensor(value):
                state[key] = value.to(getattr(torch, dst))
    wxb.fit(model, X, y, loss="mse", optimizer=opt, epochs=3, batch_size=n, shuffle=False,
            verbose=False)  # fmt: skip
    for _ in range(3):
        torch_epoch(getattr(torch, dst))
    tol = 1e-5 if "float32" in cast else 1e-10
    for p, tp in zip(model.parameters(), twin.parameters(), strict=True):
        assert p.data.dtype == np.dtype(dst)
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=tol, atol=tol,
                                   err_msg=seeded.msg(kind))  # fmt: skip


# -- 3. SciPy sparse X ---------------------------------------------------------------------
@pytest.mark.parametrize("form", ["csr_matrix", "csc_matrix", "csr_array", "coo_matrix"])
def test_sparse_rows_train_and_predict_as_their_dense_rows(seeded, form):
    """scikit-learn's MLP takes sparse X; wxb said it "holds object values"."""
    rng = seeded.rng
    n, d, c = int(rng.integers(20, 50)), 6, 3
    dense = rng.normal(size=(n, d)) * (rng.random((n, d)) < 0.3)
    X = getattr(sp, form)(dense)
    y = rng.integers(0, c, size=n)
    seed = int(rng.integers(1 << 30))
    a, b = _mlp(rng, d, c), _mlp(rng, d, c)
    b.load_state_dict(a.state_dict())
    ha = wxb.fit(a, X, y, epochs=2, batch_size=8, seed=seed, verbose=False,
                 validation_data=(getattr(sp, form)(dense[: n // 2]), y[: n // 2]))  # fmt: skip
    hb = wxb.fit(b, dense, y, epochs=2, batch_size=8, seed=seed, verbose=False,
                 validation_data=(dense[: n // 2], y[: n // 2]))  # fmt: skip

    # (the first Dense multiplies the sparse rows sparse: its sums in another order than
    # BLAS's, so equal up to rounding, ~1e-12 in float64)
    def close(ours, theirs):
        for key in theirs:
            np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-11, err_msg=seeded.msg(form))

    close(ha.history, hb.history)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-11, atol=1e-13, err_msg=seeded.msg(form))
    np.testing.assert_allclose(a.predict(X), b.predict(dense), rtol=1e-11, atol=1e-13,
                               err_msg=seeded.msg(form))  # fmt: skip
    np.testing.assert_allclose(a(X).data, b(dense).data, rtol=1e-11, atol=1e-13,
                               err_msg=seeded.msg(form))  # fmt: skip
    close(wxb.evaluate(a, X, y), wxb.evaluate(b, dense, y))
    # sparse targets too (one-hot rows, a multilabel indicator)
    onehot = np.eye(c)[y]
    e1 = wxb.evaluate(a, X, sp.csr_matrix(onehot), loss="cross_entropy")
    close(e1, wxb.evaluate(b, dense, onehot, loss="cross_entropy"))


def test_the_estimators_still_take_sparse_rows(seeded):
    rng = seeded.rng
    n, d = 40, 5
    dense = rng.normal(size=(n, d)) * (rng.random((n, d)) < 0.4)
    y = rng.integers(0, 2, size=n)
    from wxb.sklearn import MLPClassifier

    seed = int(rng.integers(1 << 30))
    a = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=seed)
    b = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (not converged in 5 iterations)
        a.fit(sp.csr_matrix(dense), y)
        b.fit(dense, y)
    # (a sparse product rounds in its own order, as scikit-learn's own MLP)
    np.testing.assert_allclose(
        a.predict_proba(sp.csr_matrix(dense)), b.predict_proba(dense), rtol=1e-9,
        err_msg=seeded.msg("sparse vs dense"),
    )  # fmt: skip


# -- 4. validation rows all of ignore_index ------------------------------------------------
def _all_ignored_case(rng):
    n, d, c = 30, 4, 3
    X, y = rng.normal(size=(n, d)), rng.integers(0, c, size=n)
    ignored = int(rng.choice([-100, -1, 7]))
    X_val, y_val = rng.normal(size=(9, d)), np.full(9, ignored)
    if rng.random() < 0.4:  # rows of a class weighted 0 count for nothing too (0/0 in PyTorch)
        weight = rng.uniform(0.5, 2.0, size=c)
        weight[0] = 0.0
        y_val[:] = 0
        y_val[rng.random(9) < 0.3] = ignored
        loss = CrossEntropyLoss(weight=weight, ignore_index=ignored)
    else:
        loss = CrossEntropyLoss(ignore_index=ignored)
    return _mlp(rng, d, c), X, y, X_val, y_val, loss


def test_pytorchs_loss_of_rows_all_ignored_is_nan(seeded):
    """The premise: PyTorch's mean over no row is 0/0."""
    logits = torch.tensor(seeded.rng.normal(size=(5, 3)))
    value = torch.nn.functional.cross_entropy(logits, torch.full((5,), -100))
    assert torch.isnan(value)


@pytest.mark.parametrize("watcher", ["early_stopping", "plateau"])
def test_early_stopping_or_plateau_on_validation_rows_all_ignored_is_refused(seeded, watcher):
    model, X, y, X_val, y_val, loss = _all_ignored_case(seeded.rng)
    before = model.state_dict()
    options = {"early_stopping": 2} if watcher == "early_stopping" else {"lr_schedule": "plateau"}
    with pytest.raises(DataError, match="every validation row is of the loss's ignore_index"):
        wxb.fit(model, X, y, loss=loss, epochs=4, verbose=False,
                validation_data=(X_val, y_val), **options)  # fmt: skip
    for key, value in model.state_dict().items():  # nothing trained, nothing restored
        assert np.array_equal(value, before[key]), seeded.msg(key)


def test_validation_rows_all_ignored_without_a_watcher_are_warned_of(seeded):
    model, X, y, X_val, y_val, loss = _all_ignored_case(seeded.rng)
    with pytest.warns(UserWarning, match="val_loss is NaN"):
        history = wxb.fit(model, X, y, loss=loss, epochs=2, verbose=False,
                          validation_data=(X_val, y_val))  # fmt: skip
    assert np.isnan(history["val_loss"]).all() and np.isfinite(history["loss"]).all()


def test_training_rows_all_ignored_are_refused(seeded):
    model, X, y, _, y_val, loss = _all_ignored_case(seeded.rng)
    y = np.resize(y_val, len(y))  # as the validation rows: none counts
    with pytest.raises(DataError, match="no row is trained on"):
        wxb.fit(model, X, y, loss=loss, verbose=False)


# -- 5. checkpoint_dir as bytes, verbose=2 ---------------------------------------------------
def test_checkpoint_dir_as_bytes_is_a_folder_as_open_takes_it(seeded, tmp_path):
    rng = seeded.rng
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 3, size=20)
    model = _mlp(rng, 4, 3)
    folder = tmp_path / "ckpts"
    wxb.fit(model, X, y, epochs=2, verbose=False, seed=1, checkpoint_dir=bytes(folder))
    assert any(p.suffix == ".safetensors" for p in folder.iterdir())
    for bad in (5, b"", 2.0):
        with pytest.raises(ConfigError, match="checkpoint_dir"):
            wxb.fit(model, X, y, epochs=1, verbose=False, checkpoint_dir=bad)


@pytest.mark.parametrize("two", [2, np.int64(2)])
def test_verbose_2_writes_one_line_per_epoch_as_keras(seeded, two):
    rng = seeded.rng
    X, y = rng.normal(size=(40, 4)), rng.integers(0, 3, size=40)
    stream = io.StringIO()
    epochs = int(rng.integers(2, 5))
    history = wxb.fit(_mlp(rng, 4, 3), X, y, epochs=epochs, batch_size=8, verbose=two,
                      stream=stream)  # fmt: skip
    lines = stream.getvalue().split("\n")
    assert lines[-1] == "" and len(lines) == epochs + 1, seeded.msg(repr(stream.getvalue()))
    for epoch, line in enumerate(lines[:-1], 1):
        assert line.startswith(f"epoch {epoch}/{epochs}  loss "), seeded.msg(line)
        assert "\r" not in line and "\033" not in line
        assert f"loss {figure_text(history['loss'][epoch - 1])}" in line


# -- 6. fit(optimizer="adam") twice --------------------------------------------------------
def test_a_second_fit_by_name_starts_a_new_optimiser_as_documented(seeded):
    """Documented: a name builds a new optimiser at each call (Keras would keep its
    compiled one's state), and each History numbers its own epochs from 1."""
    assert "A name builds a new" in wxb.fit.__doc__
    rng = seeded.rng
    n, d, c = 32, 4, 3
    X, y = rng.normal(size=(n, d)), rng.integers(0, c, size=n)
    model = _mlp(rng, d, c)
    twin = _torch_twin(model)
    for _ in range(2):
        history = wxb.fit(model, X, y, optimizer="adam", lr=0.01, epochs=2, batch_size=n,
                          shuffle=False, verbose=False)  # fmt: skip
        assert history.epochs == 2 and len(history["loss"]) == 2
        topt = torch.optim.Adam(twin.parameters(), lr=0.01)  # a new one each call
        for _ in range(2):
            topt.zero_grad()
            out = twin(torch.tensor(X))
            torch.nn.functional.cross_entropy(out, torch.tensor(y)).backward()
            topt.step()
    for p, tp in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=seeded.msg("second fit"))  # fmt: skip


@pytest.mark.parametrize("bad", ["log.txt", 5, "binary"])
def test_a_stream_that_takes_no_text_is_refused_before_training(seeded, bad, tmp_path):
    """It stopped at the bar's first draw, after a step: "'str' object has no attribute
    'write'" (or a bytes-like object is required), the model half trained."""
    rng = seeded.rng
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 3, size=20)
    model = _mlp(rng, 4, 3)
    before = model.state_dict()
    with open(tmp_path / "log", "wb") as binary:
        stream = binary if bad == "binary" else bad
        with pytest.raises(ConfigError, match="stream must be a text stream"):
            wxb.fit(model, X, y, epochs=1, verbose=True, stream=stream)
    for key, value in model.state_dict().items():
        assert np.array_equal(value, before[key])


def test_explain_takes_sparse_rows_as_their_dense_rows(seeded):
    """It stopped on Python's "len() of unsized object"."""
    rng = seeded.rng
    dense = rng.normal(size=(12, 5)) * (rng.random((12, 5)) < 0.4)
    y = rng.integers(0, 3, size=12)
    model = _mlp(rng, 5, 3)
    shown = wxb.explain(model, sp.csr_matrix(dense), sp.csr_matrix(y[:, None]))
    assert str(shown) == str(wxb.explain(model, dense, y)), seeded.msg("explain")


class _TorchLossOfOnesOwn(torch.nn.Module):
    def forward(self, output, target):
        return torch.nn.functional.cross_entropy(output, target)


@pytest.mark.parametrize(
    ("option", "given", "said"),
    [
        ("loss", lambda ps: torch.nn.CrossEntropyLoss(), "loss is PyTorch's CrossEntropyLoss"),
        ("loss", lambda ps: torch.nn.functional.cross_entropy, "loss is PyTorch's cross_entropy"),
        ("loss", lambda ps: _TorchLossOfOnesOwn(), "loss is PyTorch's _TorchLossOfOnesOwn"),
        ("optimizer", lambda ps: torch.optim.Adam(ps), "got PyTorch's Adam, which steps torch"),
        ("optimizer", lambda ps: Adam, "optimizer is the class Adam; give an instance"),
        (
            "lr_schedule",
            lambda ps: torch.optim.lr_scheduler.StepLR(torch.optim.SGD(ps, lr=0.1), 1),
            "got PyTorch's StepLR",
        ),
    ],
)
def test_pytorchs_loss_optimiser_or_schedule_is_refused_in_one_line(seeded, option, given, said):
    """A torch loss stopped at the first step on "argument 'input' (position 1) must be
    Tensor, not Tensor"; a torch optimiser's refusal listed its groups over a dozen
    lines."""
    rng = seeded.rng
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 3, size=20)
    with pytest.raises(ConfigError, match=re.escape(said)) as caught:
        wxb.fit(_mlp(rng, 4, 3), X, y, epochs=1, verbose=False,
                **{option: given([torch.zeros(1, requires_grad=True)])})  # fmt: skip
    assert "\n" not in str(caught.value)


def test_a_training_batch_of_classes_weighted_0_is_named_not_called_a_divergence(seeded):
    """PyTorch's mean over a batch whose classes all weigh 0 is 0/0, its gradient NaN;
    fit said "the loss became nan … Try a smaller learning rate"."""
    rng = seeded.rng
    n, d, c, batch = 24, 4, 3, 6
    X, y = rng.normal(size=(n, d)), rng.integers(1, c, size=n)
    y[:batch] = 0
    weight = np.r_[0.0, rng.uniform(0.5, 2.0, size=c - 1)]
    model = _mlp(rng, d, c)
    twin = _torch_twin(model)
    out = twin(torch.tensor(X[:batch]))
    value = torch.nn.functional.cross_entropy(out, torch.tensor(y[:batch]), torch.tensor(weight))
    value.backward()
    assert torch.isnan(value) and torch.isnan(twin[0].weight.grad).all()  # the premise
    with pytest.raises(wxb.TrainingError, match="step 1 every row of the batch is of a class"):
        wxb.fit(model, X, y, loss=CrossEntropyLoss(weight=weight), batch_size=batch,
                shuffle=False, verbose=False)  # fmt: skip


def test_fits_warnings_point_at_the_line_that_called_fit(seeded):
    """They pointed inside wxb/train.py (fit's own `return _fit_ranks(…)`), where the
    comment beside them said "the caller of fit": a filter by module missed them."""
    rng = seeded.rng
    X = rng.normal(size=(30, 3))
    X[:, 0] += 1.7e9  # rounded by float32: warned
    y = rng.integers(0, 3, size=30)
    model = Sequential(Dense(3, 3), wxb.nn.Softmax())  # softmax twice: warned
    loss = CrossEntropyLoss(ignore_index=-100)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        wxb.fit(model, X, y, loss=loss, epochs=1, verbose=False,
                validation_data=(X[:4], np.full(4, -100)))  # fmt: skip
    assert len(seen) >= 3, [str(w.message) for w in seen]
    for w in seen:
        assert w.filename == __file__, seeded.msg(f"{w.filename}:{w.lineno} {w.message}")


def test_a_bar_left_mid_epoch_by_an_error_is_ended_with_its_line(seeded):
    """Keras ends its bar's line; fit left it open, and the traceback began after
    "… 2/5  loss 1.2"."""
    rng = seeded.rng
    X, y = rng.normal(size=(40, 4)), rng.integers(0, 3, size=40)
    model = _mlp(rng, 4, 3)

    class Diverges(SGD):
        def step(self, closure=None):
            super().step(closure)
            if self.steps == 2:  # the third batch's loss is NaN
                self.params[0].data[...] = np.nan

    stream = io.StringIO()
    with pytest.raises(wxb.TrainingError, match="step 3"):
        wxb.fit(model, X, y, optimizer=Diverges(model.parameters(), lr=0.1), batch_size=8,
                verbose=True, stream=stream)  # fmt: skip
    text = stream.getvalue()
    assert DRAW.search(text) and text.endswith("\n"), seeded.msg(repr(text))


def test_sparse_ids_reach_a_forward_of_ones_own_whole_in_predict_and_evaluate(seeded):
    """fit handed sparse ids over whole (made dense first); predict and evaluate made
    them floats, and the forward's lookup was refused ("an index holds float32")."""
    rng = seeded.rng

    class Lookup(wxb.nn.Module):
        def __init__(self):
            super().__init__()
            self.table = wxb.nn.Parameter(rng.normal(size=(10, 3)).astype(np.float32))

        def forward(self, ids):
            return self.table[ids[:, 0]]

    ids, y = rng.integers(0, 10, (20, 1)), rng.integers(0, 3, 20)
    model = Lookup()
    wxb.fit(model, sp.csr_matrix(ids), y, epochs=1, verbose=False)
    assert np.array_equal(model.predict(sp.csr_matrix(ids)), model.predict(ids))
    assert wxb.evaluate(model, sp.csr_matrix(ids), y) == wxb.evaluate(model, ids, y)


def test_a_diagnostics_warning_starts_a_line_of_its_own_after_the_epochs_line(seeded):
    """fit(diagnose=True) warned before writing the epoch's line: the warning was printed
    after the bar's "… 2/2  loss 1.11", on its line."""
    rng = seeded.rng
    X, y = rng.normal(size=(64, 4)), rng.integers(0, 3, size=64)
    layers = [Dense(4, 8)]
    for _ in range(12):  # δ vanishes through twelve sigmoids: warned
        layers += [wxb.nn.Sigmoid(), Dense(8, 8)]
    model = Sequential(*layers, wxb.nn.Sigmoid(), Dense(8, 3))
    stream = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, *rest, **kw: stream.write(f"WARNING {message}\n")
        history = wxb.fit(model, X, y, epochs=1, verbose=True, stream=stream, diagnose=True)
    assert history.warnings, "no diagnostics warning to check"
    text = stream.getvalue()
    assert "\nWARNING " in text and text.index("WARNING") > text.index("accuracy"), repr(text)


def test_sparse_dataframe_columns_train_as_their_dense_columns(seeded):
    """pd.get_dummies(..., sparse=True), which scikit-learn's MLP takes: fit, predict,
    evaluate and explain stopped on "a column cannot be read (Sparse pandas data (column
    1) not supported.)"."""
    import pandas as pd

    rng = seeded.rng
    n = int(rng.integers(20, 40))
    table = pd.DataFrame({"a": rng.normal(size=n), "c": rng.choice(list("xyz"), n)})
    sparse = pd.get_dummies(table, columns=["c"], sparse=True, dtype=float)
    dense = pd.get_dummies(table, columns=["c"], dtype=float)
    y = rng.integers(0, 3, n)
    a = _mlp(rng, dense.shape[1], 3)
    b = _mlp(rng, dense.shape[1], 3)
    b.load_state_dict(a.state_dict())
    seed = int(rng.integers(1 << 30))
    ha = wxb.fit(a, sparse, y, epochs=2, seed=seed, verbose=False)
    hb = wxb.fit(b, dense, y, epochs=2, seed=seed, verbose=False)
    assert ha.history == hb.history and a.info["feature_names"] == list(dense.columns)
    assert np.array_equal(a.predict(sparse), b.predict(dense)), seeded.msg("predict")
    sparse_y = pd.Series(y).astype(pd.SparseDtype(int))
    assert wxb.evaluate(a, sparse, sparse_y) == wxb.evaluate(b, dense, y), seeded.msg("")
    assert str(wxb.explain(a, sparse, y)) == str(wxb.explain(b, dense, y)), seeded.msg("")
