"""The layers are folders (STYLE.md "`shared/` layout"): what each folder may import, checked on the code.

- The pure folders never load `azure.*`, `requests` or `urllib3`: every module under them is imported in a
  fresh interpreter and `sys.modules` is read afterwards. The folders are walked, not listed by hand, so a
  new module is covered the day it is added.
- Each folder imports only the folders below it (an `ast` walk over every `from shared… import`, lazy
  imports included).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / "shared"
PURE = ("core", "readers", "checks", "tenant", "pipeline")
# Which folders of `shared` each folder may import (itself always). `app` may import everything.
MAY_IMPORT = {
    "core": set(),
    "readers": {"core"},
    "checks": {"core"},
    "tenant": {"core"},
    "pipeline": {"core", "readers", "checks", "tenant"},
    "defender": {"core", "tenant"},
    "storage": {"core"},
}
# Known crossings, each with the reason it is still there (none left: the text reader's and
# validation's shared vocabulary lives in `core/text.py`).
ALLOWED_CROSSINGS: set[tuple[str, str]] = set()


def modules_under(folder: str) -> list[str]:
    return sorted(
        ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for p in (SHARED / folder).rglob("*.py")
    )


def test_every_module_lives_in_a_layer():
    """Only `__init__.py` and `__main__.py` stay at the top of `shared/`."""
    top = sorted(p.name for p in SHARED.glob("*.py"))
    assert top == ["__init__.py", "__main__.py"]
    folders = sorted(p.name for p in SHARED.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert folders == sorted([*PURE, "defender", "storage", "app"])


@pytest.mark.parametrize("folder", PURE)
def test_pure_folders_stay_light(folder):
    modules = modules_under(folder)
    assert modules, folder
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout)
    heavy = [m for m in loaded if m.split(".")[0] in ("azure", "requests", "urllib3")]
    assert heavy == []
    assert all(m in loaded for m in modules)


def _shared_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("shared"):
            if node.module == "shared":
                found.update(f"shared.{a.name}" for a in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("shared."))
    return found


@pytest.mark.parametrize("folder", sorted(MAY_IMPORT))
def test_folders_import_only_the_layers_below(folder):
    allowed = MAY_IMPORT[folder] | {folder}
    wrong = []
    for path in sorted((SHARED / folder).rglob("*.py")):
        rel = str(path.relative_to(REPO))
        for module in _shared_imports(path):
            layer = module.split(".")[1]
            if layer not in allowed and (rel, module) not in ALLOWED_CROSSINGS:
                wrong.append(f"{rel} imports {module}")
    assert wrong == []


def test_known_crossings_are_still_needed():
    """An allowed crossing that the code no longer makes is taken off the list."""
    for rel, module in ALLOWED_CROSSINGS:
        assert module in _shared_imports(REPO / rel), (rel, module)
