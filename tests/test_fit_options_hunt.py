"""``wxb.fit``'s options in random combinations, against a training loop written by hand
in PyTorch from the documented semantics: the same initial weights, the same batches in
the same order (shuffle=False, or the documented seed rule: ``np.random.default_rng(seed)``
draws the validation split first, then shuffles one row order in place each epoch), the
same validation rows, and Keras's EarlyStopping for patience, min_delta and
restore_best_weights (an improvement is ``current + min_delta < best``, Keras's
``min_delta *= -1`` in mode "min"; the best weights are put back at the end of the run,
stopped early or not, as Keras 3 does). Every figure of every epoch and the final weights
are compared (float64: to 1e-9 relative). Every run draws a fresh seed (printed;
``WXB_TEST_SEED`` replays it)."""

import math
import warnings

import numpy as np
import pytest

import wxb
from wxb.errors import ConfigError
from wxb.nn import Dense, Sequential, Tanh

torch = pytest.importorskip("torch")

OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}


def _twins(rng, d, h, c):
    """A float64 wxb MLP and its PyTorch twin with the same weights."""
    seed = int(rng.integers(1 << 30))
    model = Sequential(
        Dense(d, h, seed=seed, dtype="float64"), Tanh(), Dense(h, c, seed=seed + 1, dtype="float64")
    )
    twin = torch.nn.Sequential(torch.nn.Linear(d, h), torch.nn.Tanh(), torch.nn.Linear(h, c))
    twin = twin.double()
    with torch.no_grad():
        for p, q in zip(model.parameters(), twin.parameters(), strict=True):
            q.copy_(torch.from_numpy(p.data))
    return model, twin


def _torch_loss(name):
    if name == "mse":  # wxb's MSELoss: the seed's ½‖ŷ − y‖² a row, averaged over rows
        return lambda out, t: 0.5 * ((out - t) ** 2).reshape(len(out), -1).sum(1).mean()
    return torch.nn.CrossEntropyLoss()


def _hand_loop(twin, X, y, loss, opt, epochs, batch_size, order_rng, val, patience,
               min_delta, restore, schedule, clip):  # fmt: skip
    """PyTorch, by hand: what History should hold, its best epoch and whether it stopped."""
    n = len(X)
    rows_per_batch = min(batch_size, n)
    order = np.arange(n)
    loss_fn = _torch_loss(loss)
    figures = {"loss": [], "lr": []}
    best, waited, best_state, best_epoch, stopped = math.inf, 0, None, None, False
    for epoch in range(1, epochs + 1):
        if order_rng is not None:
            order_rng.shuffle(order)
        twin.train()
        total, correct = 0.0, 0
        for start in range(0, n, rows_per_batch):
            rows = order[start : start + rows_per_batch]
            opt.zero_grad()
            out = twin(torch.from_numpy(X[rows]))
            value = loss_fn(out, torch.from_numpy(y[rows]))
            value.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(twin.parameters(), clip)
            opt.step()
            total += value.item() * len(rows)  # the mean over the epoch's rows
            if loss == "cross_entropy":
                correct += int((out.argmax(1).numpy() == y[rows]).sum())
        figures["loss"].append(total / n)
        figures["lr"].append(opt.param_groups[0]["lr"])
        if loss == "cross_entropy":
            figures.setdefault("accuracy", []).append(correct / n)
        if val is not None:
            twin.eval()
            with torch.no_grad():
                out = twin(torch.from_numpy(val[0]))
                figures.setdefault("val_loss", []).append(
                    float(loss_fn(out, torch.from_numpy(val[1])))
                )
                if loss == "cross_entropy":
                    right = float((out.argmax(1).numpy() == val[1]).mean())
                    figures.setdefault("val_accuracy", []).append(right)
        watched = figures["val_loss" if val is not None else "loss"][-1]
        if watched + min_delta < best:  # Keras: monitor_op(current - (-min_delta), best)
            best, waited, best_epoch = watched, 0, epoch
            if patience is not None and restore:
                best_state = [p.detach().clone() for p in twin.parameters()]
        else:
            waited += 1
            if patience is not None and waited >= patience:
                stopped = True
                break
        if isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
            schedule.step(watched)
        elif schedule is not None:
            schedule.step()
    if best_state is not None:
        with torch.no_grad():
            for p, kept in zip(twin.parameters(), best_state, strict=True):
                p.copy_(kept)
    return figures, best_epoch, stopped


def _their_schedule(name, opt, epochs, patience, min_delta=0.0):
    """fit's named schedules as documented, as PyTorch schedulers."""
    lr = torch.optim.lr_scheduler
    if name == "step":
        return lr.StepLR(opt, step_size=max(1, epochs // 3), gamma=0.1)
    if name == "cosine":
        return lr.CosineAnnealingLR(opt, T_max=epochs)
    if name == "invscaling":
        return lr.LambdaLR(opt, lambda epoch: 1 / (epoch + 1) ** 0.5)
    if name == "plateau":  # cut after ⌊P/2⌋ epochs without progress: PyTorch's one less
        if patience and min_delta > 0:  # progress as early stopping counts it
            return lr.ReduceLROnPlateau(
                opt, patience=max(1, patience // 2) - 1, threshold=min_delta, threshold_mode="abs"
            )
        return lr.ReduceLROnPlateau(opt, patience=max(1, patience // 2) - 1 if patience else 10)
    return None


def _draw_run(rng):
    """A random combination of fit's options a user could pass, and its data."""
    d, h = int(rng.integers(1, 5)), int(rng.integers(2, 6))
    loss = str(rng.choice(["mse", "cross_entropy"]))
    c = int(rng.integers(1, 3)) if loss == "mse" else int(rng.integers(2, 4))
    n = int(rng.integers(1, 14))  # one row, a batch larger than the data, a short last batch
    X = rng.normal(size=(n, d))
    y = rng.normal(size=(n, c)) if loss == "mse" else rng.integers(0, c, n)
    patience = None if rng.random() < 0.4 else int(rng.integers(1, 5))
    schedule = rng.choice([None, "step", "cosine", "invscaling", "plateau"])
    if schedule == "plateau" and patience == 1:  # refused by fit (tested elsewhere)
        schedule = None
    run = {
        "X": X,
        "y": y,
        "loss": loss,
        "c": c,
        "epochs": int(rng.integers(1, 9)),
        "batch_size": int(rng.integers(1, 16)),
        "shuffle": bool(rng.random() < 0.5),
        "seed": int(rng.integers(1 << 30)),
        "optimizer": str(rng.choice(list(OPTIMIZERS))),
        "lr": float(rng.uniform(0.01, 0.3)),
        "early_stopping": patience,
        "min_delta": 0.0 if rng.random() < 0.5 else float(rng.uniform(0, 0.05)),
        "restore_best_weights": bool(rng.random() < 0.5),
        "lr_schedule": None if schedule is None else str(schedule),
        "clip_grad_norm": None if rng.random() < 0.5 else float(rng.uniform(0.05, 1)),
        "validation": str(rng.choice(["none", "data", "split"])),
    }
    if run["validation"] == "split" and (loss != "mse" or n < 2):  # (unstratified rows)
        run["validation"] = "data"
    return run, _twins(rng, d, h, c)


def _compare(msg, expected, best_epoch, stopped, history, model, twin):
    for key, values in expected.items():
        assert key in history, f"{msg}: History has no {key!r}"
        np.testing.assert_allclose(history[key], values, rtol=1e-9, atol=1e-12, err_msg=msg + key)
    assert set(history.keys()) == set(expected), msg
    for (name, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=f"{msg}: {name}")  # fmt: skip
    assert history.best_epoch == best_epoch, msg
    assert history.stopped_early == stopped, msg


def _fit_and_replay(rng, msg):
    run, (model, twin) = _draw_run(rng)
    X, y, n = run["X"], run["y"], len(run["X"])
    order_rng = np.random.default_rng(run["seed"])
    kwargs, X_train, y_train, val = {}, X, y, None
    if run["validation"] == "data":
        rows = int(rng.integers(1, 6))
        X_val = rng.normal(size=(rows, X.shape[1]))
        y_val = (
            rng.normal(size=(rows, run["c"]))
            if run["loss"] == "mse"
            else rng.integers(0, run["c"], rows)
        )
        val = (X_val, y_val)
        # as a user may pass them: lists, or arrays
        kwargs["validation_data"] = (
            (X_val.tolist(), y_val.tolist()) if rng.random() < 0.5 else (X_val, y_val)
        )
    elif run["validation"] == "split":  # the documented rule: a seeded permutation first
        fraction = float(rng.uniform(0.1, 0.6))
        permuted = order_rng.permutation(n)
        cut = n - max(1, round(n * fraction))
        if cut >= 1:
            kept, held = np.sort(permuted[:cut]), np.sort(permuted[cut:])
            X_train, y_train, val = X[kept], y[kept], (X[held], y[held])
            kwargs["validation_split"] = fraction
        else:  # fit refuses it (tested elsewhere): train without
            order_rng = np.random.default_rng(run["seed"])
    opt = OPTIMIZERS[run["optimizer"]](twin.parameters(), lr=run["lr"])
    schedule = _their_schedule(
        run["lr_schedule"], opt, run["epochs"], run["early_stopping"], run["min_delta"]
    )
    settings = {k: v for k, v in run.items() if k not in ("X", "y", "c")}
    msg = msg(f"{settings}, {n} rows")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (PyTorch's LambdaLR, wxb's head warnings)
        expected, best_epoch, stopped = _hand_loop(
            twin, X_train, y_train, run["loss"], opt, run["epochs"], run["batch_size"],
            order_rng if run["shuffle"] else None, val, run["early_stopping"],
            run["min_delta"], run["restore_best_weights"], schedule, run["clip_grad_norm"],
        )  # fmt: skip
        history = wxb.fit(
            model, X, y, loss=run["loss"], optimizer=run["optimizer"], lr=run["lr"],
            epochs=run["epochs"], batch_size=run["batch_size"], shuffle=run["shuffle"],
            seed=run["seed"], early_stopping=run["early_stopping"],
            min_delta=run["min_delta"], restore_best_weights=run["restore_best_weights"],
            lr_schedule=run["lr_schedule"], clip_grad_norm=run["clip_grad_norm"],
            verbose=False, **kwargs,
        )  # fmt: skip
    _compare(msg, expected, best_epoch, stopped, history, model, twin)


def test_random_option_combinations_are_a_hand_written_torch_loop(seeded):
    """History (loss as the mean over rows, accuracy, val_*, lr) epoch by epoch, the best
    epoch, the stop and the final (restored or not) weights, for 40 random combinations."""
    for k in range(40):
        _fit_and_replay(seeded.rng, lambda what, k=k: seeded.msg(f"run {k}: {what}"))


class _StopsAt(Sequential):
    """A Sequential whose training forward asks fit to stop (as a first Ctrl-C does) at
    its ``stop_at``-th call: an interruption after any step of a run."""

    stop_at = -1
    _calls = 0

    def forward(self, x):
        if self.training:
            self._calls += 1
            if self._calls == self.stop_at:
                wxb.train.request_stop()
        return super().forward(x)


def test_a_run_interrupted_at_any_step_and_resumed_is_the_hand_written_loop(seeded, tmp_path):
    """Interrupted after a random step (an epoch's end or inside one), then resumed in a
    fresh model and optimiser (a new process): every History figure, the best epoch, the
    stop and the weights are those of one uninterrupted PyTorch loop (schedules, early
    stopping and the optimiser's state carried across)."""
    rng = seeded.rng
    for k in range(6):
        run, (model, twin) = _draw_run(rng)
        run["early_stopping"] = None if rng.random() < 0.3 else int(rng.integers(2, 5))
        X, y, state = run["X"], run["y"], model.state_dict()
        val = None
        if rng.random() < 0.5:
            X_val = rng.normal(size=(int(rng.integers(1, 6)), X.shape[1]))
            rows = len(X_val)
            y_val = (
                rng.normal(size=(rows, run["c"]))
                if run["loss"] == "mse"
                else rng.integers(0, run["c"], rows)
            )
            val = (X_val, y_val)
        opt = OPTIMIZERS[run["optimizer"]](twin.parameters(), lr=run["lr"])
        schedule = _their_schedule(
            run["lr_schedule"], opt, run["epochs"], run["early_stopping"], run["min_delta"]
        )
        order = np.random.default_rng(run["seed"]) if run["shuffle"] else None
        steps = math.ceil(len(X) / min(run["batch_size"], len(X))) * run["epochs"]
        stop_at = int(rng.integers(1, steps + 1))
        settings = {k: v for k, v in run.items() if k not in ("X", "y", "c", "validation")}
        msg = seeded.msg(f"run {k}: {settings}, {len(X)} rows, stopped after step {stop_at}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected, best_epoch, stopped = _hand_loop(
                twin, X, y, run["loss"], opt, run["epochs"], run["batch_size"], order, val,
                run["early_stopping"], run["min_delta"], run["restore_best_weights"], schedule,
                run["clip_grad_norm"],
            )  # fmt: skip
            options = dict(
                loss=run["loss"], optimizer=run["optimizer"], lr=run["lr"],
                epochs=run["epochs"], batch_size=run["batch_size"], shuffle=run["shuffle"],
                seed=run["seed"], early_stopping=run["early_stopping"],
                min_delta=run["min_delta"], restore_best_weights=run["restore_best_weights"],
                lr_schedule=run["lr_schedule"], clip_grad_norm=run["clip_grad_norm"],
                validation_data=val, verbose=False, checkpoint_dir=tmp_path / str(k),
                checkpoint_every=None if rng.random() < 0.5 else int(rng.integers(1, 4)),
            )  # fmt: skip
            first = _StopsAt(*model)
            first.stop_at = stop_at
            interrupted = False
            try:
                wxb.fit(first, X, y, **options)
            except wxb.TrainingInterrupted:
                interrupted = True
            h, d = model[0].weight.shape  # a fresh model, loaded with the same start
            resumed = _StopsAt(
                Dense(d, h, dtype="float64"), Tanh(), Dense(h, run["c"], dtype="float64")
            )
            resumed.load_state_dict(state)
            history = wxb.fit(resumed, X, y, resume=True, **options)
        assert history.resumed_from is not None, msg  # (the last checkpoint, when it ended)
        assert interrupted or stopped, msg  # only stopping early comes before the step
        _compare(msg, expected, best_epoch, stopped, history, resumed, twin)


def test_plateau_counts_progress_as_early_stopping_does_with_min_delta(seeded):
    """lr_schedule="plateau" cuts the rate once what early stopping watches has not
    improved for ⌊P/2⌋ epochs. With min_delta, early stopping counts a loss falling by
    less than min_delta as no progress, but the plateau kept PyTorch's default
    (best·(1 − 1e-4)) and took it for progress: a loss falling 0.002 an epoch with
    min_delta=0.01 and patience 4 was stopped after epoch 5 at lr 0.01 throughout, never
    cut. Reference: PyTorch's ReduceLROnPlateau with early stopping's rule
    (threshold=min_delta, "abs"), stepped on the run's own figures."""
    rng = seeded.rng
    for _ in range(3):
        n, d = int(rng.integers(20, 80)), int(rng.integers(2, 5))
        X, y = rng.normal(size=(n, d)), rng.integers(0, 2, n)
        model, _ = _twins(rng, d, int(rng.integers(2, 6)), 2)
        patience = int(rng.integers(2, 7))
        min_delta = float(rng.uniform(0.005, 0.02))
        lr = float(rng.uniform(0.003, 0.01))
        use_val = bool(rng.random() < 0.5)
        val = (rng.normal(size=(10, d)), rng.integers(0, 2, 10)) if use_val else None
        history = wxb.fit(
            model, X, y, optimizer="sgd", lr=lr, epochs=40, batch_size=n, shuffle=False,
            early_stopping=patience, min_delta=min_delta, lr_schedule="plateau",
            validation_data=val, verbose=False,
        )  # fmt: skip
        watched = history["val_loss" if use_val else "loss"]
        their_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
        theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(
            their_opt, patience=max(1, patience // 2) - 1, threshold=min_delta,
            threshold_mode="abs",
        )  # fmt: skip
        expected = []
        for figure in watched:
            expected.append(their_opt.param_groups[0]["lr"])
            theirs.step(figure)
        msg = seeded.msg(f"patience {patience}, min_delta {min_delta:.4f}, {watched}")
        np.testing.assert_allclose(history["lr"], expected, rtol=1e-12, err_msg=msg)
        if history.stopped_early:  # the documented promise: a cut before the stop
            assert min(history["lr"]) < lr, msg


def test_a_negative_seed_is_a_config_error(rng):
    """seed=-1 (a habit from other libraries' "no seed") stopped fit with NumPy's bare
    ValueError "expected non-negative integer", naming neither fit nor seed."""
    X, y = rng.normal(size=(6, 3)), rng.integers(0, 2, 6)
    model = Sequential(Dense(3, 2, dtype="float64"))
    for seed in (-1, np.int64(-int(rng.integers(1, 1 << 40)))):
        with pytest.raises(ConfigError, match=r"seed must be an integer ≥ 0"):
            wxb.fit(model, X, y, seed=seed, epochs=1, verbose=False)


def _held_out_positives(X, y, head, seed, fraction, loss):
    """The held-out rows' share of class 1 times their count, read from val_accuracy of a
    model that predicts class 1 for every row (zero weights; an SGD step of 1e-300 leaves
    them so)."""
    if loss == "bce_with_logits":
        model = Sequential(Dense(X.shape[1], 1, dtype="float64"))
        model[0].bias.data[...] = 1.0  # logit 1: class 1
        target = y if head == "vector" else y[:, None]
    else:  # two logits, the second larger: class 1; targets one-hot rows
        model = Sequential(Dense(X.shape[1], 2, dtype="float64"))
        model[0].bias.data[...] = [0.0, 1.0]
        target = np.eye(2)[y] if head == "one-hot" else y
    model[0].weight.data[...] = 0.0
    history = wxb.fit(
        model, X, target, loss=loss, optimizer="sgd", lr=1e-300, epochs=1,
        batch_size=len(X), validation_split=fraction, seed=seed, verbose=False,
    )  # fmt: skip
    held = round(len(X) * fraction)
    return history["val_accuracy"][0] * held


@pytest.mark.parametrize(
    ("loss", "head"),
    [("bce_with_logits", "vector"), ("bce_with_logits", "column"), ("cross_entropy", "indices"),
     ("cross_entropy", "one-hot")],
)  # fmt: skip
def test_validation_split_stratifies_0_1_labels_whatever_their_shape(seeded, loss, head):
    """0/1 labels are classes to stratify by (fit's rule). A binary classifier with one
    logit, Dense(h, 1) and y of shape (n,) or (n, 1), got its validation rows by a plain
    permutation, unlike the same labels for a (B,) output, and so did one-hot rows for
    cross_entropy: 600 positives of 2000 at 0.5 held out 289 to 313 (random), not 300.
    Reference: each class gives its share, within one row (scikit-learn's
    StratifiedShuffleSplit's rule)."""
    rng = seeded.rng
    for _ in range(3):  # a permutation lands within one row by chance ~4% of the time
        n, fraction = int(rng.integers(1500, 2500)), float(rng.uniform(0.3, 0.6))
        y = (rng.random(n) < rng.uniform(0.2, 0.4)).astype(int)
        X = rng.normal(size=(n, 2))
        seed = int(rng.integers(1 << 30))
        held = _held_out_positives(X, y, head, seed, fraction, loss)
        quota = fraction * y.sum()
        assert abs(held - quota) < 1 + 1e-9, seeded.msg(
            f"{loss} {head}: {held:.1f} positives held out, quota {quota:.1f} (n {n})"
        )


def test_an_empty_checkpoint_dir_is_refused_not_the_working_folder(rng, tmp_path, monkeypatch):
    """checkpoint_dir="" (an unset setting read as text) is Path(""), the working folder:
    fit wrote its step-*.json and .safetensors there without a word."""
    monkeypatch.chdir(tmp_path)
    X, y = rng.normal(size=(8, 3)), rng.integers(0, 2, 8)
    for folder in ("", " "):
        with pytest.raises(ConfigError, match="checkpoint_dir is"):
            wxb.fit(Sequential(Dense(3, 2)), X, y, epochs=2, checkpoint_dir=folder, verbose=False)
    assert list(tmp_path.iterdir()) == []


def test_keep_checkpoints_takes_a_numpy_integer(rng, tmp_path):
    """keep_checkpoints=np.int64(3) (read from a config array) was refused with "must be
    an integer ≥ 1; got np.int64(3)", where checkpoint_every, epochs and batch_size take
    NumPy's integers: it keeps the newest as many as a Python int does."""
    X, y = rng.normal(size=(12, 3)), rng.integers(0, 2, 12)
    keep, epochs = int(rng.integers(1, 4)), int(rng.integers(4, 7))
    kept = []
    for how, value in (("int", keep), ("numpy", np.int64(keep))):
        folder = tmp_path / how
        wxb.fit(
            Sequential(Dense(3, 2, seed=1)), X, y, epochs=epochs, batch_size=4,
            checkpoint_dir=folder, keep_checkpoints=value, checkpoint_every=np.int64(1),
            verbose=False,
        )  # fmt: skip
        kept.append(sorted(p.name for p in folder.glob("step-*.json")))
    assert kept[0] == kept[1] and len(kept[0]) == keep, kept


def test_validation_targets_in_another_column_order_are_refused(rng):
    """A multi-output regression with y and validation y as DataFrames: the validation
    y's columns in another order were scored by position, each output against another
    target, and the val_loss (what early stopping watches) was off without a word,
    while validation X's columns are taken by name and y's order is checked against the
    model's. Reference: the val_loss of the same columns in y's order."""
    pd = pytest.importorskip("pandas")
    k = int(rng.integers(2, 5))
    names = [f"t{i}" for i in range(k)]
    X = pd.DataFrame(rng.normal(size=(30, 3)), columns=["p", "q", "r"])
    Y = pd.DataFrame(rng.normal(size=(30, k)) * 10 ** np.arange(k), columns=names)
    X_val = pd.DataFrame(rng.normal(size=(10, 3)), columns=["p", "q", "r"])
    Y_val = pd.DataFrame(rng.normal(size=(10, k)) * 10 ** np.arange(k), columns=names)
    order = list(rng.permutation(names))
    while order == names:
        order = list(rng.permutation(names))
    fit = dict(loss="mse", epochs=2, batch_size=8, shuffle=False, verbose=False)
    with pytest.raises(wxb.DataError, match=r"validation y's columns .* in another order"):
        wxb.fit(Sequential(Dense(3, k, seed=1)), X, Y, validation_data=(X_val, Y_val[order]), **fit)
    model = Sequential(Dense(3, k, seed=1, dtype="float64"))
    history = wxb.fit(model, X, Y, validation_data=(X_val, Y_val[names]), **fit)
    out = model(X_val.to_numpy()).data
    expected = 0.5 * ((out - Y_val.to_numpy()) ** 2).sum(axis=1).mean()  # the seed's ½‖ŷ − y‖²
    assert history["val_loss"][-1] == pytest.approx(expected, rel=1e-12)
    # a later fit on arrays: checked against the targets the model recorded
    with pytest.raises(wxb.DataError, match="the model's targets in another order"):
        wxb.fit(model, X, Y.to_numpy(), validation_data=(X_val, Y_val[order]), **fit)


def test_more_epochs_resumed_on_the_model_its_run_left_with_the_best_weights(seeded, tmp_path):
    """fit(epochs=E, checkpoint_dir=d, early_stopping=P) ends with the best epoch's
    weights put back; fit(epochs=E + k, same folder, resume=True) on that model, in the
    same session, warned that "the model's weights differ from those that run started
    from … to train a trained model further, give another folder": they are that run's
    own best weights, and the resume goes on as the run does (the uninterrupted run)."""
    from wxb.checkpoint import CheckpointWarning

    rng, tried = seeded.rng, 0
    for attempt in range(20):
        X, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
        val = (rng.normal(size=(10, 3)), rng.integers(0, 2, 10))
        first, more = int(rng.integers(3, 6)), int(rng.integers(1, 4))
        kw = dict(optimizer="adam", lr=float(rng.uniform(0.2, 0.5)), batch_size=8,
                  seed=int(rng.integers(1 << 30)), early_stopping=first + more + 1,
                  validation_data=val, verbose=False)  # fmt: skip
        model = Sequential(Dense(3, 16, seed=1), Tanh(), Dense(16, 2, seed=2))
        history = wxb.fit(model, X, y, epochs=first, checkpoint_dir=tmp_path / str(attempt), **kw)
        if history.kept_epoch == first:  # the last epoch is the best: nothing was put back
            continue
        tried += 1
        with warnings.catch_warnings():
            warnings.simplefilter("error", CheckpointWarning)
            resumed = wxb.fit(
                model, X, y, epochs=first + more, resume=True,
                checkpoint_dir=tmp_path / str(attempt), **kw,
            )  # fmt: skip
        whole = Sequential(Dense(3, 16, seed=1), Tanh(), Dense(16, 2, seed=2))
        expected = wxb.fit(whole, X, y, epochs=first + more, **kw)
        assert resumed.history == expected.history, seeded.msg(f"attempt {attempt}")
        for p, q in zip(model.parameters(), whole.parameters(), strict=True):
            np.testing.assert_array_equal(p.data, q.data, err_msg=seeded.msg("weights"))
        if tried == 3:
            break
    assert tried, seeded.msg("no run kept an earlier epoch")


def test_a_stratified_split_keeps_a_training_row_where_the_plain_one_does(seeded):
    """validation_split by class on a few rows: two rows of two classes at 0.6 rounded
    each class's 0.6 to 1, held out both rows and refused ("2 samples are too few to hold
    out 60%"), where the unstratified split holds out round(n·f) = 1 and trains on the
    other. Reference: that count, the documented "within one row of the fraction"."""
    from wxb.data import split_indices

    rng = seeded.rng
    for _ in range(300):
        n, fraction = int(rng.integers(2, 9)), float(rng.uniform(0.05, 0.95))
        labels = rng.integers(0, int(rng.integers(1, 4)), n)
        if n - max(1, round(n * fraction)) < 1:
            continue  # the plain split refuses it too
        msg = seeded.msg(f"{n} rows, classes {np.bincount(labels)}, fraction {fraction:.3f}")
        kept, held = split_indices(n, fraction, np.random.default_rng(0), labels)
        assert len(kept) >= 1 and len(kept) + len(held) == n, msg
        assert abs(len(held) - n * fraction) < 1 or len(held) == 1, msg
    X, y = rng.normal(size=(2, 3)), np.array([0, 1])
    model = Sequential(Dense(3, 2, dtype="float64"))
    history = wxb.fit(model, X, y, epochs=1, validation_split=0.6, seed=1, verbose=False)
    assert len(history["val_loss"]) == 1


def test_a_validation_value_past_float32s_range_is_named_as_xs_is(rng):
    """A float32 model, validation X in float64 holding 1e39: fit said "validation X has
    inf …; remove or fill non-finite values first" of a finite value (the cast's inf),
    where the same value in X is named as beyond float32's range."""
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 2, 20)
    X_val = rng.normal(size=(6, 3))
    row, column = int(rng.integers(6)), int(rng.integers(3))
    X_val[row, column] = float(rng.choice([-1, 1])) * 10.0 ** float(rng.uniform(38.6, 300))
    for given in (X_val, X_val.tolist()):
        with pytest.raises(wxb.DataError, match=rf"row {row}, column {column}: beyond float32"):
            wxb.fit(Sequential(Dense(3, 2)), X, y, epochs=1, validation_data=(given, y[:6]),
                    verbose=False)  # fmt: skip


def test_wxb_train_refuses_an_empty_checkpoint_dir_in_one_line(tmp_path, monkeypatch, capsys):
    """wxb train --checkpoint-dir "" wrote the checkpoints into the working folder."""
    from wxb.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(["train", "--epochs", "1", "--hidden", "4", "-q", "--checkpoint-dir", "",
                 "-o", str(tmp_path / "m.safetensors")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.strip().count("\n") == 0 and "--checkpoint-dir" in err, err
    assert list(tmp_path.iterdir()) == []
