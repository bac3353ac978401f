"""Fixtures shared by the tests of ``trainact.data``: the default synthetic archive."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainact.data.synthetic import build_synthetic_archive


@pytest.fixture(scope="module")
def archive_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("archives")


@pytest.fixture(scope="module")
def synthetic(archive_dir: Path) -> tuple[Path, str]:
    """The default synthetic archive (bytes keys) and its md5."""
    path = archive_dir / "synthetic.tar.gz"
    return path, build_synthetic_archive(path)
