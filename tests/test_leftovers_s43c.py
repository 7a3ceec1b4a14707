"""Leftovers of the hunts of Dec 6 (s43c): what a user reads in a summary, in hints, in
errors and on the task line, checked against PyTorch's own counts and messages."""

from __future__ import annotations

import importlib.metadata
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from cli_run import FAST, run

import wxb
from wxb.interop import from_torch
from wxb.nn import Dense, ReLU, Sequential


def _seed() -> int:
    return int(np.random.SeedSequence().entropy % 2**32)


def _line(text: str, head: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(head))


def test_summary_counts_trainable_and_frozen_parameters_as_pytorch():
    """model.summary() printed 'Total params' only: a model with frozen layers showed no
    trainable count (Keras and torchinfo print 'Trainable params' and 'Non-trainable
    params'). Both are now printed, counted as PyTorch counts over the same model: a
    layer used twice (tied) once, buffers (running statistics) in neither."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    widths = [int(w) for w in rng.integers(2, 9, size=int(rng.integers(3, 6)))]
    frozen = [bool(f) for f in rng.integers(0, 2, size=len(widths) - 1)]
    biases = [bool(b) for b in rng.integers(0, 2, size=len(widths) - 1)]
    ours: list = []
    theirs: list = []
    for n, m, cold, bias in zip(widths, widths[1:], frozen, biases, strict=False):
        ours += [Dense(n, m, bias=bias), ReLU()]
        theirs += [torch.nn.Linear(n, m, bias=bias), torch.nn.ReLU()]
        ours[-2].requires_grad_(not cold)
        theirs[-2].requires_grad_(not cold)
    square = widths[-1]
    tied, tied_t = Dense(square, square), torch.nn.Linear(square, square)  # used twice
    tied.requires_grad_(bool(rng.integers(0, 2)))
    tied_t.requires_grad_(tied.weight.requires_grad)
    ours += [tied, wxb.nn.BatchNorm1d(square), tied]
    theirs += [tied_t, torch.nn.BatchNorm1d(square), tied_t]
    reference = torch.nn.Sequential(*theirs)
    trainable = sum(p.numel() for p in reference.parameters() if p.requires_grad)
    total = sum(p.numel() for p in reference.parameters())

    text = Sequential(*ours).summary().text()
    where = f"seed {seed}, widths {widths}, frozen {frozen}\n{text}"
    assert _line(text, "Total params:").split()[2] == f"{total:,}", where
    assert _line(text, "Trainable params:") == f"Trainable params: {trainable:,}", where
    assert _line(text, "Non-trainable params:") == (
        f"Non-trainable params: {total - trainable:,}"
    ), where


@pytest.mark.parametrize("given", [list, tuple])
def test_sequential_of_a_list_names_the_star_form(given):
    """Keras's Sequential([a, b]) gave 'item 0 is list, not a wxb.nn.Module', which does
    not say what to write. Still refused (PyTorch refuses it too, and a silent accept
    would differ from PyTorch), now naming Sequential(*layers)."""
    with pytest.raises(TypeError):
        torch.nn.Sequential(given([torch.nn.Linear(2, 3), torch.nn.ReLU()]))
    with pytest.raises(wxb.ConfigError, match=r"Sequential\(\*layers\)"):
        Sequential(given([Dense(2, 3), ReLU()]))


def test_keras_add_names_append_and_a_layer_named_add_still_works():
    """Keras's model.add(layer) gave a bare "no attribute 'add'"; it now names
    model.append(layer). Other missing names read as before, and a layer named 'add'
    is still a layer (add is no method that would hide it)."""
    model = Sequential(Dense(2, 3))
    with pytest.raises(AttributeError, match=r"model\.append\(layer\)"):
        model.add(ReLU())
    with pytest.raises(AttributeError) as missing:
        model.apend(ReLU())
    assert "append(layer)" not in str(missing.value) and "'apend'" in str(missing.value)
    assert not hasattr(model, "add") and len(model.append(ReLU())) == 2
    layer = Dense(2, 3, name="add")
    assert Sequential(layer).add is layer


def _task_line(capsys, tmp_path, frame, name: str) -> str:
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    code, out, err = run(capsys, "train", "--data", path, "--target", "t", *FAST, "-o",
                         tmp_path / "m.safetensors")  # fmt: skip
    assert code == 0, err
    return next(line for line in out.splitlines() if line.startswith("task:"))


def test_a_true_false_target_is_called_boolean_and_other_task_lines_stay(capsys, tmp_path):
    """A True/False target column (pandas' bool, as a CSV writes it or in Parquet) read
    'task: classification (2 text labels)'; it now says '2 boolean labels'. A yes/no text
    column, whole numbers and real numbers read as before."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    n = int(rng.integers(40, 80))
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    frame["t"] = frame["a"] + 0.1 * rng.normal(size=n) > 0
    frame.loc[:1, "t"] = [True, False]  # both values present
    assert frame["t"].dtype == bool and frame["t"].nunique() == 2
    for name in ("bool.csv", "bool.parquet"):
        line = _task_line(capsys, tmp_path, frame, name)
        assert line == "task: classification (2 boolean labels)", (seed, name, line)
    frame["t"] = np.where(frame["t"], "yes", "no")
    line = _task_line(capsys, tmp_path, frame, "text.csv")
    assert line == "task: classification (2 text labels)", (seed, line)
    k = int(rng.integers(3, 6))
    frame["t"] = np.arange(n) % k
    line = _task_line(capsys, tmp_path, frame, "whole.csv")
    assert line.startswith(f"task: classification ({k} distinct whole numbers;"), (seed, line)
    frame["t"] = rng.normal(size=n)
    line = _task_line(capsys, tmp_path, frame, "real.csv")
    assert line == f"task: regression ({frame['t'].nunique()} distinct numbers)", (seed, line)


def _hint_installs(message: str, module: str) -> None:
    """The hint's 'pip install …' names a distribution that provides ``module`` (as the
    installed packages' own metadata says), not only wxb's extra."""
    provides = importlib.metadata.packages_distributions().get(module, [])
    assert provides, module
    named = message.split("pip install ", 1)[1].split(" (")[0].split()
    assert {name.lower() for name in named} & {d.lower() for d in provides}, (message, provides)
    assert "wxb[" not in message, message  # fails where wxb is not on the package index


@pytest.mark.parametrize(
    ("module", "call"),
    [
        ("matplotlib", lambda: __import__("wxb.plots").plots._pyplot()),
        ("onnx", lambda: __import__("wxb.onnx").onnx._onnx()),
        ("mpi4py", lambda: __import__("wxb.distributed").distributed._mpi()),
        ("sklearn", lambda: __import__("wxb.data").data.load_digits()),
    ],
)
def test_a_missing_extra_names_the_package_to_install(monkeypatch, module, call):
    """'pip install wxb[plots]' (and the other extras) fails where wxb came from a source
    checkout; each hint now names the package itself (pip install matplotlib)."""
    for name in [m for m in list(sys.modules) if m.split(".")[0] == module]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # import fails
    with pytest.raises(wxb.WxbError) as error:
        call()
    _hint_installs(str(error.value), module)


def test_wxb_plot_without_matplotlib_names_it_in_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    history = tmp_path / "h.json"
    history.write_text("{}")
    code, _, err = run(capsys, "plot", history, "-o", tmp_path / "plots")
    assert code == 2 and len(err.splitlines()) == 1, err
    _hint_installs(err, "matplotlib")


@pytest.mark.parametrize("key", ["bias", "weight"])
def test_from_torch_keeps_a_buffer_bias_a_buffer(key):
    """A torch Linear whose bias (or weight) is a plain buffer was refused with a guess,
    'computed (pruning, weight_norm or spectral_norm?)'; then, named a buffer, refused
    still (small57: to_torch makes such a Linear of a wxb Dense, so the round trip
    failed). A buffer there is a constant, in wxb's Dense as in torch's Linear: it
    converts, stays a buffer (not trained), and the outputs are PyTorch's."""
    seed = _seed()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n, m = (int(v) for v in rng.integers(2, 7, size=2))
    lin = torch.nn.Linear(n, m)
    value = getattr(lin, key).detach().clone()
    delattr(lin, key)
    lin.register_buffer(key, value)
    seq = torch.nn.Sequential(torch.nn.Linear(n, n), torch.nn.Tanh(), lin).double()
    model = from_torch(seq)
    x = rng.normal(size=(int(rng.integers(1, 9)), n))
    with torch.no_grad():
        expected = seq(torch.from_numpy(x)).numpy()
    got = np.asarray(model(wxb.Tensor(x)).data)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12, err_msg=f"seed {seed}")
    assert [name for name, _ in model.named_buffers()] == [f"{model[2].name}.{key}"]
    assert key not in dict(model[2].named_parameters())


@pytest.mark.parametrize(
    "statement",
    ["import wxb.utils.data", "from wxb.utils.data import DataLoader", "import wxb.utils"],
)
def test_import_of_torch_utils_place_gives_wxbs_hint(statement):
    """`import wxb.utils.data` (torch.utils.data's DataLoader, in a port) raised Python's
    bare "No module named 'wxb.utils'": a submodule import never reaches wxb's
    __getattr__, whose hint `wxb.utils` gives. It now raises that same hint, as a
    ModuleNotFoundError (an ImportError, for code that catches either)."""
    with pytest.raises(AttributeError) as by_attribute:
        wxb.utils  # noqa: B018
    with pytest.raises(ModuleNotFoundError) as by_import:
        exec(statement, {})
    assert str(by_import.value) == str(by_attribute.value), by_import.value
    assert "DataLoader" in str(by_import.value) and "wxb.utils" not in sys.modules
    assert not hasattr(wxb, "utils")
