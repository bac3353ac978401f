"""trainact.sourcegraph knows packages: a module's digest covers the package ``__init__`` files
Python runs before it, ``from trainact.nn import models`` reaches ``trainact/nn/models.py``, and
the data files a module reads count beside that module."""

from __future__ import annotations

import shutil
from pathlib import Path

from trainact import sourcegraph
from trainact.sourcegraph import (
    code_digest,
    module_file,
    normalised_code,
    parent_packages,
    source_files,
    trainact_closure,
)


def test_module_file_finds_modules_and_packages():
    package = sourcegraph.PACKAGE
    assert module_file("trainact.nn.models") == package / "nn" / "models.py"
    assert module_file("trainact.nn") == package / "nn" / "__init__.py"
    assert module_file("trainact") == package / "__init__.py"
    assert module_file("trainact.names") == package / "names.py"


def test_parent_packages_are_the_ones_python_imports_first():
    assert parent_packages("trainact.training.train") == ["trainact.training"]
    assert parent_packages("trainact.names") == []


def test_the_closure_follows_package_imports_and_includes_their_init_files():
    closure = trainact_closure("trainact.training.pso")
    assert {"trainact.training", "trainact.nn", "trainact.nn.models", "trainact.data.loader"} <= closure
    files = source_files("pso")
    assert "trainact/training/__init__.py" in files and "trainact/nn/models.py" in files


def test_data_files_count_beside_their_module():
    assert "trainact/analysis/published_tables.json" in source_files("aggregate")
    assert "trainact/report/deviations.yaml" in source_files("paper_report")


def test_an_edit_of_a_package_init_changes_the_digest_of_what_imports_the_package(tmp_path: Path):
    package = tmp_path / "src" / "trainact"
    shutil.copytree(sourcegraph.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    before = code_digest("pso", package)
    (package / "nn" / "__init__.py").write_text("SOMETHING = 1\n")
    assert code_digest("pso", package) != before
    assert code_digest("prepare", package) == code_digest("prepare")


def test_normalised_code_drops_docstrings_and_comments_but_not_code(tmp_path: Path):
    path = tmp_path / "m.py"
    path.write_text('"""Doc."""\n\n\ndef f(x):\n    """Doc."""\n    return x  # why\n')
    code = normalised_code(path)
    path.write_text('"""Other words."""\n\n\ndef f(x):\n    return x\n')
    assert normalised_code(path) == code
    path.write_text('"""Doc."""\n\n\ndef f(x):\n    return x + 0\n')
    assert normalised_code(path) != code
    # a function whose body is only its docstring keeps a valid tree
    path.write_text('def g():\n    """Only a docstring."""\n')
    assert b"Pass" in normalised_code(path)
