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
    + [("wxb.optim.lr_scheduler", "OneCycleLR")]
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
