"""Which modules a trainact module imports, read from its source (nothing is imported), and the
code digest of each command family that the workflow's jobs carry in their params.

Two users: the workflow (workflow/rules/common.smk) hashes the files each command runs
(:func:`code_digest`), so a job reruns exactly when code it runs changes; tests/test_cli.py
checks that each rule family's conda environment holds every third-party package its command
imports. Imports anywhere in a module count, also inside functions (the commands import
lazily). This module imports nothing of the package but its ``__init__`` (a version string), so
the workflow can load it from the repository's ``src/`` whether or not trainact is installed.

Every function takes the package folder it reads (default: this module's own), so that a test
can ask what the digests of an edited copy of the source would be.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent

# Imported by every command but running no experiment code: the package marker (version
# string only), `python -m trainact`, and the argument dispatcher. Editing them reruns nothing.
DISPATCH_MODULES = frozenset({"trainact", "trainact.__main__", "trainact.cli", "trainact.sourcegraph"})
# Data files that a module reads at run time (through importlib.resources).
MODULE_DATA = {
    "trainact.aggregate": ("published_tables.json",),
    "trainact.paper_report": ("deviations.yaml",),
}
# Command family -> the module whose command its jobs run (one family per module, so a module
# is a unit of reruns: the download code is its own family, and no training job imports it).
FAMILY_ENTRY = {
    "download": "trainact.download",
    "synthetic": "trainact.synthetic",
    "prepare": "trainact.prepare",
    "train": "trainact.train",
    "autoencoder": "trainact.autoencoder",
    "pso": "trainact.pso",
    "aggregate": "trainact.aggregate",
    "figures": "trainact.figures",
    "provenance": "trainact.provenance",
    "sensitivity": "trainact.sensitivity",
    "schedule_axis": "trainact.schedule_axis",
    "paper_report": "trainact.paper_report",
}


def module_file(name: str, package: Path = PACKAGE) -> Path:
    """``src/trainact/models.py`` for ``trainact.models``."""
    return package.joinpath(*name.split(".")[1:]).with_suffix(".py")


def imported_names(name: str, package: Path = PACKAGE) -> set[str]:
    """Every module name that trainact module ``name`` imports; ``from pkg import x`` gives
    both ``pkg`` and ``pkg.x`` (``from trainact import models`` imports trainact.models)."""
    path = module_file(name, package)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def trainact_closure(name: str, skip: Iterable[str] = (), package: Path = PACKAGE) -> set[str]:
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
            m
            for m in imported_names(current, package)
            if m.startswith("trainact.") and module_file(m, package).is_file()
        )
    return seen


def source_files(family: str, package: Path = PACKAGE) -> list[str]:
    """The files that the command of ``family`` runs: its module and, transitively, every
    trainact module it imports, plus the data files they read (paths relative to ``src/``)."""
    seen = trainact_closure(FAMILY_ENTRY[family], skip=DISPATCH_MODULES, package=package)
    files = {module_file(m, package) for m in seen}
    files.update(package / name for m in seen for name in MODULE_DATA.get(m, ()))
    return sorted(str(f.relative_to(package.parent)) for f in files)


def code_digest(family: str, package: Path = PACKAGE) -> str:
    """sha256 over the names and contents of :func:`source_files` of ``family``."""
    digest = hashlib.sha256()
    for relative in source_files(family, package):
        digest.update(relative.encode() + b"\0")
        digest.update((package.parent / relative).read_bytes() + b"\0")
    return digest.hexdigest()
