"""Where reruns stop: a module is the unit of reruns, so the data code is split along them.

The workflow gives each job the digest of the trainact files its command runs
(trainact.sourcegraph.code_digest, which workflow/rules/common.smk calls with the family map of
trainact.sourcegraph). These tests check the boundaries that the split of the data code into
cifar, loader, download, prepare and synthetic buys, without running Snakemake: the training
jobs (and the data preparation) do not run the download code, so editing it retrains nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rule_sources import rule_bodies

from trainact import sourcegraph
from trainact.sourcegraph import FAMILY_ENTRY, code_digest, source_files, trainact_closure

REPO = Path(__file__).resolve().parents[1]
# The families whose jobs read the prepared data, and the modules they must not run.
DATA_READERS = ("train", "autoencoder", "pso")
DATA_MAKERS = {"trainact.download", "trainact.prepare", "trainact.synthetic"}


def test_the_workflow_takes_its_family_map_and_digests_from_sourcegraph():
    common = (REPO / "workflow/rules/common.smk").read_text()
    assert "from trainact.sourcegraph import FAMILY_ENTRY, code_digest" in common
    assert "CODE = {family: code_digest(family) for family in FAMILY_ENTRY}" in common
    assert {"download", "synthetic", "prepare"} <= set(FAMILY_ENTRY) and "data" not in FAMILY_ENTRY


@pytest.mark.parametrize("family", [*DATA_READERS, "prepare"])
def test_the_jobs_that_read_data_do_not_run_the_download_code(family):
    assert "trainact/download.py" not in source_files(family)
    if family in DATA_READERS:
        reached = trainact_closure(FAMILY_ENTRY[family])
        assert reached & DATA_MAKERS == set()
        assert {"trainact.cifar", "trainact.loader"} <= reached
        assert "trainact.bench" not in reached  # the benchmarks import PSO, not the other way


@pytest.fixture
def source_copy(tmp_path: Path) -> Path:
    """A copy of the trainact package (the folder source_files names paths under)."""
    package = tmp_path / "src" / "trainact"
    shutil.copytree(sourcegraph.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    return package


def edited(package: Path, module: str) -> None:
    path = package / module
    path.write_text(path.read_text() + "\n# an edit\n")


def test_the_copy_has_the_digests_of_the_repository(source_copy):
    assert {f: code_digest(f, source_copy) for f in FAMILY_ENTRY} == {
        f: code_digest(f) for f in FAMILY_ENTRY
    }


@pytest.mark.parametrize(
    ("module", "changed"),
    [
        # the download code: its own family only (whose rule carries no digest: see below)
        ("download.py", {"download"}),
        ("prepare.py", {"prepare"}),
        ("synthetic.py", {"synthetic"}),
        ("loader.py", {"train", "autoencoder", "pso"}),
        # the facts of the archive and the prepared file: every data job and every reader;
        # provenance (and the report, which imports it) states the official md5; the structure
        # figure builds the models, whose input shape is the archive's (and the schedule axis
        # saves its figure with the figures' code)
        ("cifar.py", {"download", "synthetic", "prepare", "train", "autoencoder", "pso",
                      "provenance", "figures", "paper_report", "schedule_axis"}),  # fmt: skip
        ("bench.py", set()),  # no rule runs the benchmarks
    ],
)
def test_editing_a_data_module_changes_the_digests_of_the_families_that_run_it(
    source_copy, module, changed
):
    before = {f: code_digest(f, source_copy) for f in FAMILY_ENTRY}
    edited(source_copy, module)
    after = {f: code_digest(f, source_copy) for f in FAMILY_ENTRY}
    assert {f for f in FAMILY_ENTRY if before[f] != after[f]} == changed


def test_the_download_rule_is_pinned_by_its_md5_not_by_code():
    """The download command verifies the archive's md5, so no code change can change what it
    writes: its rule carries no code digest and editing download.py reruns nothing."""
    _, body = rule_bodies()["download"]
    assert "code=" not in body and "DOWNLOAD_SLICE" in body
    for rule in ("synthetic_archive", "prepare"):
        assert "code=CODE[" in rule_bodies()[rule][1]
