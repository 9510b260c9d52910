"""The architecture's boundaries, enforced on the source.

- Nothing hub-side (twins synthesis, simulation, federation hub) imports nature (retail.world).
- Every package declares an explicit public API (``__all__``) and ships ``py.typed``.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("retail", "privacy", "twins", "simulation", "federation")
NO_NATURE = ("twins", "simulation", "federation", "privacy")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


@pytest.mark.parametrize("package", NO_NATURE)
def test_hub_side_never_imports_the_world_generator(package: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in _imports(path)
        if name == "retail.world" or name.startswith("retail.world.")
    ]
    assert offenders == []


def test_the_boundary_check_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from retail.world import counterfactual\n")
    assert "retail.world" in _imports(bad)


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_declare_public_api(package: str) -> None:
    mod = importlib.import_module(package)
    assert isinstance(mod.__all__, list | tuple)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{package}.__all__ names {name!r}, which does not exist"
    assert (ROOT / package / "py.typed").exists()
