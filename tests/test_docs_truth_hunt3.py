"""What the docs promise, checked where a check is worth keeping.

torch's names wxb lacks say what to write instead (b94e971; the README's "no OneCycleLR")
in the form a port writes them, ``from wxb.nn import Flatten``: Python turned the
module's AttributeError into its bare "cannot import name", dropping the hint."""

from __future__ import annotations

import importlib

import pytest

# (module, a torch name it lacks, with a hint); every name each module's table holds
MISSING = (
    [("wxb", name) for name in importlib.import_module("wxb")._TORCH_NAMES]
    + [("wxb.nn", name) for name in importlib.import_module("wxb.nn")._TORCH_NAMES]
    + [("wxb.optim.lr_scheduler", "LRScheduler")]
)


def _module(path: str) -> object:
    import wxb.optim  # noqa: F401  (wxb.optim.lr_scheduler is an attribute of it)

    first, _, rest = path.partition(".")
    found = importlib.import_module(first)
    for part in rest.split(".") if rest else []:
        found = getattr(found, part)
    return found


@pytest.mark.parametrize(("module", "name"), MISSING)
def test_from_import_of_a_missing_torch_name_says_what_to_write(module, name):
    with pytest.raises(AttributeError) as by_attribute:
        getattr(_module(module), name)
    hint = str(by_attribute.value)
    assert ":" in hint, hint  # (the table's hint, the reference for the import's message)
    with pytest.raises(ImportError) as by_import:
        exec(f"from {module} import {name}", {})
    assert str(by_import.value) == hint
    # hasattr and getattr with a default see an attribute missing, as before
    assert not hasattr(_module(module), name)
    assert getattr(_module(module), name, None) is None


@pytest.mark.parametrize("module", ["wxb", "wxb.nn"])
def test_from_import_of_another_name_is_pythons(module):
    with pytest.raises(ImportError, match=f"cannot import name 'no_such_name' from '{module}'"):
        exec(f"from {module} import no_such_name", {})


# -- '' as a path (a "$OUT" left unset), as 3c0b0d6 refuses it for train's other paths -----


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (("predict", "m.safetensors", "x.csv", "-o"), "-o"),  # wrote to standard output
        (("export", "m.safetensors", "-o"), "-o"),  # wrote m.onnx
        (("report", "m.safetensors", "--no-floor", "-o"), "-o"),  # said '. is a folder'
        (("train", "--data", "x.csv", "--target", "y", "--epochs", "1", "-q", "-o"), "-o"),
        (("train", "--epochs", "1", "-q", "--data"), "--data"),  # '. is a folder'
        (("predict", "m.safetensors"), "INPUT"),
        (("eval", "m.safetensors"), "DATA"),
        (("explain", "m.safetensors", "--data"), "--data"),
        (("report", "m.safetensors", "--no-floor", "--history"), "--history"),  # 'Is a directory'
        (("summary",), "MODEL"),  # '.: no such model file'
    ],
)
def test_an_empty_path_is_refused_by_name(tmp_path, capsys, monkeypatch, seeded, argv, name):
    import pandas as pd
    from cli_run import run

    import wxb
    from wxb.nn import Dense, ReLU, Sequential

    monkeypatch.chdir(tmp_path)
    rng = seeded.rng
    n, features = int(rng.integers(8, 40)), int(rng.integers(1, 5))
    X = rng.normal(size=(n, features))
    table = pd.DataFrame(X, columns=[f"x{i}" for i in range(features)])
    table.assign(y=X.sum(axis=1)).to_csv("x.csv", index=False)
    model = Sequential(Dense(features, 4), ReLU(), Dense(4, 1))
    wxb.fit(model, table, X.sum(axis=1), loss="mse", epochs=1, verbose=0, seed=0)
    model.info["task"] = "regression"
    wxb.save(model, "m.safetensors")
    before = sorted(p.name for p in tmp_path.iterdir())
    capsys.readouterr()  # (the seed's line)
    code, out, err = run(capsys, *argv, "")
    assert code == 2 and err == f"wxb: error: {name} is ''; give a path\n", seeded.msg(err)
    assert out == "", seeded.msg(repr(out[:300]))
    assert sorted(p.name for p in tmp_path.iterdir()) == before
