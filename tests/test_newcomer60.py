"""What three newcomers (from PyTorch, Keras, scikit-learn) typed first that the docs
did not show, and wxb answered wrongly or cryptically."""

import numpy as np
import pytest

import wxb

torch = pytest.importorskip("torch")


def test_torch_tensor_reads_a_wxb_tensor(seeded):
    """``torch.tensor(out)`` / ``torch.as_tensor(out)`` of a wxb tensor, a PyTorch user's
    way back to torch, failed with ``TypeError: len() of unsized object``: torch walked
    the tensor as nested sequences down to its 0-d elements. Through DLPack it reads it
    as it reads the NumPy array: same values and dtype, as_tensor sharing the memory."""
    rng = seeded.rng
    dtype = rng.choice(["float32", "float64"])
    shape = tuple(int(n) for n in rng.integers(1, 5, size=rng.integers(0, 4)))
    values = rng.standard_normal(shape).astype(dtype)
    t = wxb.tensor(values, dtype=dtype)
    views = [t]
    if t.ndim >= 2:
        views.append(t.transpose(0, 1))  # strided: no copy made on wxb's side
    for view in views:
        expected = torch.from_numpy(np.array(view.data))
        got = torch.tensor(view)
        assert got.dtype == expected.dtype, seeded.msg(f"{got.dtype} for {view.dtype}")
        assert torch.equal(got, expected), seeded.msg("torch.tensor's values")
    shared = torch.as_tensor(t)
    assert torch.equal(shared, torch.from_numpy(values)), seeded.msg("as_tensor's values")
    shared.fill_(7.0)  # as torch.as_tensor(ndarray): one memory
    assert np.all(t.data == 7.0), seeded.msg("as_tensor shares the memory")

    # a tensor in the graph is refused as np.array refuses it, naming detach()
    w = wxb.tensor(values, dtype=dtype, requires_grad=True)
    with pytest.raises(TypeError, match=r"requires grad.*detach\(\)"):
        torch.tensor(w)
    assert torch.equal(torch.tensor(w.detach()), torch.from_numpy(values)), seeded.msg("detach")


class _Terminal:
    """The line a terminal shows: ``\\r`` back to its start, ``ESC[K`` erasing to its
    end, other characters written over what is there."""

    def __init__(self) -> None:
        self.line: list[str] = []
        self.column = 0
        self.shown: list[tuple[str, str]] = []  # (what a write drew, what the line shows)

    def isatty(self) -> bool:
        return True

    def flush(self) -> None:
        pass

    def write(self, text: str) -> None:
        drawn = text.replace("\033[K", "").replace("\r", "")
        parts = text.split("\033[K")
        for i, part in enumerate(parts):
            if i:
                del self.line[self.column :]
            for char in part:
                if char == "\r":
                    self.column = 0
                elif char == "\n":
                    self.line, self.column = [], 0
                elif self.column < len(self.line):
                    self.line[self.column] = char
                    self.column += 1
                else:
                    self.line.append(char)
                    self.column += 1
        if "\n" not in text:
            self.shown.append((drawn, "".join(self.line)))


def test_the_bar_shows_the_loss_it_draws_not_the_last_draws_digits(seeded, monkeypatch):
    """fit's bar redraws its line with ``\\r``; a running loss shorter than the last draw's
    (loss 10.5228, then 9.8765: a regression's first epoch) left the old figure's last
    digit on screen, ``loss 9.87658``. The line a terminal shows is the one drawn."""
    import wxb.train
    from wxb.metrics import figure_text
    from wxb.nn import Dense, Sequential

    rng = seeded.rng
    steps = int(rng.integers(3, 10))  # one digit: the step's count keeps its width
    # a falling loss across the widths figure_text writes (1234.5678, 98.7654, 0.0123,
    # 9.9e-05), one above 10 and one below: a draw narrower than the last, at least once
    losses = 10.0 ** rng.uniform(-6, 5, size=steps - 2)
    losses = np.sort([*losses, rng.uniform(10, 100), rng.uniform(1, 10)])[::-1]
    clock = iter(range(1, 10**6))  # each update past the bar's 0.1 s: each one draws
    monkeypatch.setattr(wxb.train.time, "monotonic", lambda: float(next(clock)))
    terminal = _Terminal()
    bar = wxb.train.ProgressBar(1, steps, terminal, enabled=True)
    for step, loss in enumerate(losses, start=1):
        bar.update(1, step, float(loss))
    assert len(terminal.shown) == steps, seeded.msg(f"{len(terminal.shown)} draws")
    for (drawn, shown), loss in zip(terminal.shown, losses, strict=True):
        assert drawn.endswith(f"loss {figure_text(loss)}"), seeded.msg(drawn)
        assert shown == drawn, seeded.msg(f"the terminal shows {shown!r}, drawn {drawn!r}")

    # and so through fit, on a terminal: every draw of a regression's running loss
    X = rng.standard_normal((int(rng.integers(40, 80)), 3))
    y = X @ rng.uniform(5, 50, size=3) + rng.uniform(-100, 100)
    terminal = _Terminal()
    model = Sequential(Dense(3, 1, dtype="float64"))
    wxb.fit(model, X, y, loss="mse", lr=0.05, epochs=2, batch_size=4, stream=terminal,
            verbose=True)  # fmt: skip
    assert terminal.shown, seeded.msg("fit drew no bar")
    for drawn, shown in terminal.shown:
        assert shown == drawn, seeded.msg(f"the terminal shows {shown!r}, drawn {drawn!r}")


def test_fit_takes_an_optimisers_name_in_kerass_and_pytorchs_spelling(seeded):
    """``wxb.fit(..., optimizer="Adam")``, as Keras's compile takes it (and PyTorch's class
    name), was refused ("optimizer must be one of sgd, adam, …; got 'Adam'"). Any case
    names the same optimiser: the same run, bit for bit, with its own default rate."""
    from wxb.nn import Dense, ReLU, Sequential
    from wxb.optim import OPTIMIZERS

    rng = seeded.rng
    X = rng.standard_normal((int(rng.integers(20, 40)), 3))
    y = rng.integers(0, 3, size=len(X))
    seeds = [int(s) for s in rng.integers(1 << 30, size=3)]
    for name in sorted(OPTIMIZERS):
        spelling = str(rng.choice([OPTIMIZERS[name].__name__, name.upper(), name.title()]))
        if spelling.lower() != name:  # MuonWithAdamW's class name is not fit's "muon"
            spelling = name.upper()
        weights, histories = [], []
        for given in (name, spelling):
            model = Sequential(Dense(3, 5, seed=seeds[0], dtype="float64"), ReLU(),
                               Dense(5, 3, seed=seeds[1], dtype="float64"))  # fmt: skip
            history = wxb.fit(model, X, y, optimizer=given, epochs=2, batch_size=8,
                              seed=seeds[2], verbose=0)  # fmt: skip
            histories.append(history.history)
            weights.append([p.data.copy() for p in model.parameters()])
        assert histories[0] == histories[1], seeded.msg(f"{spelling!r} against {name!r}")
        for a, b in zip(*weights, strict=True):
            assert np.array_equal(a, b), seeded.msg(f"{spelling!r}'s weights, {name!r}'s")
    with pytest.raises(wxb.ConfigError, match="optimizer must be one of"):
        wxb.fit(model, X, y, optimizer="Adamm", epochs=1, verbose=0)


def test_a_model_fitted_on_arrays_is_not_walked_through_the_raw_digits(tmp_path, seeded, capsys):
    """The README's Python model (64 inputs, trained by wxb.fit on the digits / 16, saved
    with wxb.save) was taken by `wxb explain` as one `wxb train` fitted on the built-in
    digits: walked through the raw pixels 0–16, its Z 16 times what it was trained on,
    and `wxb eval` said "the model was trained on the built-in digits, whose test rows
    wxb train scored". Its file names no data: explain asks for --data, eval for DATA. A
    file of wxb train's that names the digits' pixels (before it recorded its data) is
    walked through them as before."""
    from wxb.cli import main
    from wxb.data import load_digits
    from wxb.nn import Dense, ReLU, Sequential, Standardize

    rng = seeded.rng
    hidden = int(rng.integers(2, 9))
    model = Sequential(Dense(64, hidden), ReLU(), Dense(hidden, 10))
    X = rng.uniform(0, 1, size=(int(rng.integers(20, 40)), 64))  # pixels / 16
    wxb.fit(model, X, rng.integers(0, 10, size=len(X)), epochs=1, verbose=0)
    path = str(wxb.save(model, tmp_path / "digits.safetensors"))
    assert main(["explain", path]) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and "name the rows to explain on" in said[0], seeded.msg(str(said))
    assert main(["eval", path]) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and "name the data to evaluate on" in said[0], seeded.msg(str(said))
    assert "built-in digits" not in said[0], seeded.msg(said[0])

    # wxb train's file before it recorded its data: a Standardize first, its test figures
    old = Sequential(Standardize.fit(16 * X, dtype=model[0].weight.dtype), *model)
    old.info = {"task": "classification", "feature_names": load_digits().feature_names,
                "test": {"accuracy": 0.5}}  # fmt: skip
    path = str(wxb.save(old, tmp_path / "old_train.safetensors"))
    row = int(rng.integers(0, 1797))
    assert main(["explain", path, "--sample", str(row)]) == 0
    assert f"row {row} of built-in digits" in capsys.readouterr().out, seeded.msg("old file")


def test_torch_tensor_reads_a_wxb_tensor_read_backwards(seeded):
    """A wxb tensor over values read backwards (``t[:, ::-1]``, ``wxb.Tensor(a[::-1])``:
    negative strides, which NumPy's DLPack capsule carries) took the whole Python process
    down in ``torch.tensor(t)``: torch 2.13 aborted ("Storage size calculation
    overflowed"). It reads a copy of them now, torch.as_tensor too (torch's own tensors
    have no negative strides to share)."""
    rng = seeded.rng
    values = rng.standard_normal((int(rng.integers(2, 5)), int(rng.integers(2, 5))))
    backwards = [wxb.tensor(values)[:, ::-1], wxb.Tensor(values[::-1]), wxb.Tensor(values)[::-2]]
    for t in backwards:
        assert min(t.data.strides) < 0, seeded.msg("a view read backwards")
        for convert in (torch.tensor, torch.as_tensor):
            got = convert(t)
            np.testing.assert_array_equal(got.numpy(), t.data, err_msg=seeded.msg(str(convert)))
