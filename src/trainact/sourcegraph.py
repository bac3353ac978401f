"""Which modules a trainact module imports, read from its source (nothing is imported).

Two users: the workflow (workflow/rules/common.smk) hashes the files each command runs, so a
job reruns exactly when code it runs changes; tests/test_cli.py checks that each rule family's
conda environment holds every third-party package its command imports. Imports anywhere in a
module count, also inside functions (the commands import lazily).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def module_file(name: str) -> Path:
    """``src/trainact/models.py`` for ``trainact.models``."""
    return PACKAGE.joinpath(*name.split(".")[1:]).with_suffix(".py")


def imported_names(name: str) -> set[str]:
    """Every module name that trainact module ``name`` imports; ``from pkg import x`` gives
    both ``pkg`` and ``pkg.x`` (``from trainact import models`` imports trainact.models)."""
    path = module_file(name)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def trainact_closure(name: str, skip: Iterable[str] = ()) -> set[str]:
    """``name`` and every trainact module it reaches through imports (modules with a file of
    their own), neither including nor following the modules in ``skip``."""
    skip = set(skip)
    todo, seen = [name], set()
    while todo:
        current = todo.pop()
        if current in seen or current in skip:
            continue
        seen.add(current)
        todo.extend(
            m for m in imported_names(current) if m.startswith("trainact.") and module_file(m).is_file()
        )
    return seen
