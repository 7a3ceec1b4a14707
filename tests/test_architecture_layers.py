"""docs/architecture.md lists wxb's modules top to bottom and says that a module
imports only modules above it: the code is held to that list (every import, also
those inside functions), and the list to the code (every module named)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "wxb"
ENTRY = re.compile(r"^  (\w+)(?:\.py|/)\s")


def listed_order() -> list[str]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = text.split("```", 2)[1]  # the first code block: the module list
    return [m.group(1) for line in block.splitlines() if (m := ENTRY.match(line))]


def imported_modules(source: str, parts: tuple[str, ...]) -> list[tuple[str, int]]:
    """The top-level wxb modules (or packages) that a file imports, with line numbers;
    ``parts``: the file's place under src/wxb (("nn", "module") for nn/module.py)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names if a.name.startswith("wxb.")]
            found += [(name[1], node.lineno) for name in names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if not (node.module or "").startswith("wxb"):
                    continue
                dotted = node.module.split(".")[1:]
            else:  # relative: from the file's package, one level up per extra dot
                package = list(parts[:-1])
                dotted = package[: len(package) - (node.level - 1)]
                dotted += node.module.split(".") if node.module else []
            if dotted:
                found.append((dotted[0], node.lineno))
            else:  # from wxb import x, y / from . import x
                found += [(a.name, node.lineno) for a in node.names]
    return found


def test_every_module_is_listed_and_imports_only_modules_above_it():
    order = listed_order()
    assert len(order) == len(set(order)), f"a module listed twice: {order}"
    rank = {name: i for i, name in enumerate(order)}
    unlisted, upward = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        top = path.relative_to(PACKAGE).with_suffix("").parts[0]
        if top in ("__init__", "__main__"):
            continue
        if top not in rank:
            unlisted.append(str(path.relative_to(ROOT)))
            continue
        source = path.read_text(encoding="utf-8")
        for name, line in imported_modules(source, path.relative_to(PACKAGE).with_suffix("").parts):
            if name in rank and name != top and rank[name] > rank[top]:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not unlisted, f"modules missing from docs/architecture.md's list: {unlisted}"
    assert not upward, "imports of modules below in docs/architecture.md's list:\n" + "\n".join(
        upward
    )
    listed_files = {p.relative_to(PACKAGE).with_suffix("").parts[0] for p in PACKAGE.iterdir()}
    assert set(order) <= listed_files, f"listed but not in src/wxb: {set(order) - listed_files}"


def test_the_check_sees_every_import_form():
    """The walker finds each form (so the test above cannot pass vacuously)."""
    source = (
        "import numpy\nimport wxb.cli\nfrom wxb import train\nfrom ..io import save\n"
        "from .plan import StackPlan\ndef f():\n    from .. import onnx\n"
    )
    names = [name for name, _ in imported_modules(source, ("nn", "sequential"))]
    assert sorted(names) == sorted(["cli", "train", "io", "nn", "onnx"])
