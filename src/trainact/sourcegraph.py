"""Which modules a trainact module imports, read from its source (nothing is imported), and the
code digest of each command family that the workflow's jobs carry in their params.

A digest hashes each module's code, not its text (:func:`normalised_code`): the syntax tree
without docstrings, so comments, docstrings and formatting change no digest and rerun nothing.
The text a report shows (captions, claim thresholds) lives in modules that no training command
imports (``trainact.report.captions``, ``trainact.analysis.thresholds``), so editing it reruns
only the jobs that print it. ``tests/workflow/test_reruns.py`` checks both.

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
# Data files that a module reads at run time (through importlib.resources), beside the module.
MODULE_DATA = {
    "trainact.analysis.tables": ("published_tables.json",),
    "trainact.report.paper_report": ("deviations.yaml",),
    "trainact.nn.pool_kernels": ("pool_cpp.cpp",),
}
# Command family -> the module whose command its jobs run (one family per module, so a module
# is a unit of reruns: the download code is its own family, and no training job imports it).
FAMILY_ENTRY = {
    "download": "trainact.data.download",
    "synthetic": "trainact.data.synthetic",
    "prepare": "trainact.data.prepare",
    "train": "trainact.training.train",
    "autoencoder": "trainact.training.autoencoder",
    "pso": "trainact.training.pso",
    "aggregate": "trainact.analysis.aggregate",
    "figures": "trainact.report.figures",
    "provenance": "trainact.report.provenance",
    "sensitivity": "trainact.analysis.sensitivity",
    "schedule_axis": "trainact.analysis.schedule_axis",
    "paper_report": "trainact.report.paper_report",
}


def module_file(name: str, package: Path = PACKAGE) -> Path:
    """``src/trainact/nn/models.py`` for ``trainact.nn.models``; a package's ``__init__.py``
    for a package (``trainact.nn``, or ``trainact`` itself)."""
    folder = package.joinpath(*name.split(".")[1:])
    if folder.is_dir():
        return folder / "__init__.py"
    return folder.with_suffix(".py")


def parent_packages(name: str) -> list[str]:
    """The packages Python imports before module ``name``: ``trainact.nn`` for
    ``trainact.nn.models`` (``trainact`` itself is a dispatch module)."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


def imported_names(name: str, package: Path = PACKAGE) -> set[str]:
    """Every module name that trainact module ``name`` imports; ``from pkg import x`` gives
    both ``pkg`` and ``pkg.x`` (``from trainact.nn import models`` imports trainact.nn.models)."""
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
        todo.extend(parent_packages(current))
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
    files.update(module_file(m, package).parent / name for m in seen for name in MODULE_DATA.get(m, ()))
    return sorted(str(f.relative_to(package.parent)) for f in files)


def _without_docstrings(tree: ast.AST) -> ast.AST:
    """``tree`` with the docstring of the module and of every class and function removed (a
    body left empty keeps a ``pass``, so the tree stays valid)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
    return tree


def normalised_code(path: Path) -> bytes:
    """What a module's digest hashes: its syntax tree without docstrings (``ast.dump``, without
    line numbers), so comments, docstrings, blank lines and formatting do not count. Data files
    count byte for byte. The dump's format belongs to the Python version: a new Python minor
    version changes every digest once."""
    if path.suffix != ".py":
        return path.read_bytes()
    tree = _without_docstrings(ast.parse(path.read_text(), filename=str(path)))
    return ast.dump(tree, annotate_fields=True, include_attributes=False).encode()


def code_digest(family: str, package: Path = PACKAGE) -> str:
    """sha256 over the names and the normalised code (:func:`normalised_code`) of
    :func:`source_files` of ``family``."""
    digest = hashlib.sha256()
    for relative in source_files(family, package):
        digest.update(relative.encode() + b"\0")
        digest.update(normalised_code(package.parent / relative) + b"\0")
    return digest.hexdigest()
