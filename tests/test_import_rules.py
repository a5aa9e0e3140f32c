"""The rules of the rooms, checked: core has no Qt and no engine imports, backends no app.

Every module under app/core and backends is imported in a fresh interpreter where PySide6
cannot be imported; afterwards no engine library or huggingface_hub may be loaded (they
are imported lazily, when used, to keep start-up fast).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("llama_cpp", "mlx", "mlx_lm", "huggingface_hub", "PySide6")


def modules(package: str) -> list[str]:
    names = []
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_core_and_backends_import_without_qt_or_engines():
    names = modules("app/core") + modules("backends") + ["app.cli"]
    code = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] == 'PySide6':
            raise ImportError('PySide6 is blocked in this test')
sys.meta_path.insert(0, Block())
for name in {names!r}:
    importlib.import_module(name)
heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})
print(','.join(heavy))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"imported at module level: {out.stdout.strip()}"


def imported_names(path: Path) -> list[str]:
    """Every module name an import statement in `path` names, at any depth (lazy too)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
    return names


def test_backends_never_import_app():
    for path in (ROOT / "backends").rglob("*.py"):
        names = imported_names(path)
        assert not any(n == "app" or n.startswith("app.") for n in names), path


def test_core_never_imports_qt_or_an_engine_even_lazily():
    # Engine builds are checked by backends/engine_builds.py in a child process.
    banned = ("PySide6", "llama_cpp", "mlx", "mlx_lm")
    for path in (ROOT / "app" / "core").rglob("*.py"):
        for n in imported_names(path):
            assert n.split(".")[0] not in banned, f"{path.relative_to(ROOT)} imports {n}"


def test_ui_never_imports_engines_or_network():
    banned = ("llama_cpp", "mlx", "mlx_lm", "huggingface_hub", "httpx", "requests", "urllib",
              "socket", "http", "backends")  # fmt: skip
    for path in (ROOT / "app" / "ui").rglob("*.py"):
        for n in imported_names(path):
            assert n.split(".")[0] not in banned, f"{path.name} imports {n}"
