"""Where reruns stop: a module is the unit of reruns, so the data code is split along them.

The workflow gives each job the digest of the trainact files its command runs
(trainact.sourcegraph.code_digest, which workflow/rules/common.smk calls for every family of
trainact.sourcegraph.FAMILY_ENTRY). These tests check the boundaries that the split of the data code into
cifar, loader, download, prepare and synthetic buys, without running Snakemake: the training
jobs (and the data preparation) do not run the download code, so editing it retrains nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from snakemake_rules import workflow_rules

from trainact import sourcegraph
from trainact.sourcegraph import (
    FAMILY_ENTRY,
    code_digest,
    source_files,
    trainact_closure,
)

REPO = Path(__file__).resolve().parents[2]
# The families whose jobs read the prepared data, and the modules they must not run.
DATA_READERS = ("train", "autoencoder", "pso")
DATA_MAKERS = {"trainact.data.download", "trainact.data.prepare", "trainact.data.synthetic"}


# Rule -> the command family whose code digest its params carry (the download carries none).
RULE_FAMILY = {
    "synthetic_archive": "synthetic", "prepare": "prepare",
    "train": "train", "train_variant": "train", "train_trunk": "train", "train_branch": "train",
    "ae_pretrain": "autoencoder", "ae_finetune": "autoencoder", "pso": "pso",
    "aggregate": "aggregate", "sensitivity": "sensitivity", "schedule_axis": "schedule_axis",
    "figures": "figures", "provenance": "provenance", "paper_report": "paper_report",
}  # fmt: skip


def test_every_job_carries_the_digest_of_its_familys_code():
    """What Snakemake holds as each rule's ``code`` param is trainact.sourcegraph's digest of the
    family whose command the rule runs."""
    rules = workflow_rules("workflow/presets/smoke.yaml")
    carried = {name: rule.params["code"] for name, rule in rules.items() if "code" in rule.params}
    assert carried == {rule: code_digest(family) for rule, family in RULE_FAMILY.items()}
    assert {"download", "synthetic", "prepare"} <= set(FAMILY_ENTRY) and "data" not in FAMILY_ENTRY


@pytest.mark.parametrize("family", [*DATA_READERS, "prepare"])
def test_the_jobs_that_read_data_do_not_run_the_download_code(family):
    assert "trainact/data/download.py" not in source_files(family)
    if family in DATA_READERS:
        reached = trainact_closure(FAMILY_ENTRY[family])
        assert reached & DATA_MAKERS == set()
        assert {"trainact.data.cifar", "trainact.data.loader"} <= reached
        assert "trainact.bench.throughput" not in reached  # the benchmarks import PSO, not the other way


@pytest.fixture
def source_copy(tmp_path: Path) -> Path:
    """A copy of the trainact package (the folder source_files names paths under)."""
    package = tmp_path / "src" / "trainact"
    shutil.copytree(sourcegraph.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    return package


def edited(package: Path, module: str, edit: str = "code") -> None:
    """Edit ``module`` of the copy: a line of code, a word of its docstring or a comment."""
    path = package / module
    text = path.read_text()
    if edit == "code":
        text += "\n_AN_EDIT = 1\n"
    elif edit == "docstring":
        assert '"""' in text, module
        text = text.replace('"""', '"""An edit. ', 1)
    else:
        text += "\n# an edit\n"
    path.write_text(text)


def changed_families(package: Path, edit) -> set[str]:
    before = {f: code_digest(f, package) for f in FAMILY_ENTRY}
    edit(package)
    after = {f: code_digest(f, package) for f in FAMILY_ENTRY}
    return {f for f in FAMILY_ENTRY if before[f] != after[f]}


TRAINING = {"train", "autoencoder", "pso"}
# Everything downstream of the results: the analysis and the report.
ANALYSIS = {"aggregate", "figures", "provenance", "sensitivity", "schedule_axis", "paper_report"}
# What reads the labels and thresholds: all of it but provenance (which states no verdict or name).
READ_BY_REPORT = ANALYSIS - {"provenance"}


@pytest.mark.parametrize(
    ("module", "changed"),
    [
        # the download code: its own family only (whose rule carries no digest: see below)
        ("data/download.py", {"download"}),
        ("data/prepare.py", {"prepare"}),
        ("data/synthetic.py", {"synthetic"}),
        ("data/loader.py", TRAINING),
        # the facts of the archive and the prepared file: every data job and every reader;
        # provenance (and the report, which imports it) states the official md5; the structure
        # figure builds the models, whose input shape is the archive's
        (
            "data/cifar.py",
            {"download", "synthetic", "prepare", *TRAINING, "provenance", "figures", "paper_report"},
        ),
        ("bench/throughput.py", set()),  # no rule runs the benchmarks
        # train.py: the autoencoder's fine-tuning is a training run; PSO does not run it
        ("training/train.py", {"train", "autoencoder"}),
        ("training/pso.py", {"pso"}),
        # the settings' shape and the schedule's keys: every training job and the schedule axis
        ("training/settings.py", TRAINING | {"schedule_axis"}),
        # the paper's names (sizes, filters, activations): training and everything after it but
        # provenance, which names no network
        ("names.py", TRAINING | ANALYSIS - {"provenance"}),
        # what only the analysis and the report read: no training job
        ("layout.py", ANALYSIS),
        # the files inside a run folder: what training writes and the analysis reads
        ("run_files.py", TRAINING | ANALYSIS),
        ("analysis/labels.py", READ_BY_REPORT),
        ("analysis/thresholds.py", READ_BY_REPORT),
        # the claim definitions: the commands that judge them (the report renders their verdicts)
        ("analysis/claims.py", {"aggregate", "sensitivity", "schedule_axis"}),
        ("report/figure_list.py", {"figures", "schedule_axis", "paper_report"}),
        ("report/captions.py", {"paper_report"}),
    ],
)
def test_a_code_edit_changes_the_digests_of_the_families_that_run_it(source_copy, module, changed):
    assert changed_families(source_copy, lambda package: edited(package, module)) == changed


MODULES = sorted(
    str(path.relative_to(sourcegraph.PACKAGE))
    for path in sourcegraph.PACKAGE.rglob("*.py")
    if "__pycache__" not in path.parts
)


@pytest.mark.parametrize("module", MODULES)
def test_a_docstring_or_comment_edit_leaves_the_hashed_code_as_it_was(source_copy, module):
    """Digests hash the code without docstrings and comments (sourcegraph.normalised_code), so
    such an edit reruns nothing, in any module."""
    path = source_copy / module
    code = sourcegraph.normalised_code(path)
    for edit in ("comment", "docstring"):
        if edit == "docstring" and '"""' not in path.read_text():
            continue
        original = path.read_text()
        edited(source_copy, module, edit)
        assert sourcegraph.normalised_code(path) == code, edit
        path.write_text(original)


@pytest.mark.parametrize("edit", ["docstring", "comment"])
def test_a_docstring_or_comment_edit_changes_no_familys_digest(source_copy, edit):
    for module in ("nn/kernels.py", "files.py", "training/train.py"):
        assert (
            changed_families(source_copy, lambda package, module=module: edited(package, module, edit))
            == set()
        )


def test_reformatting_changes_no_digest(source_copy):
    """Line breaks and spacing are not code: the formatter may rewrite any file."""
    path = source_copy / "training" / "train.py"

    def reformat(package):
        path.write_text(path.read_text().replace("\n\n\n", "\n\n\n\n").replace("(\n", "(  \n"))

    assert changed_families(source_copy, reformat) == set()


@pytest.mark.parametrize(
    ("what", "module", "old", "new", "changed"),
    [
        ("a figure caption", "report/captions.py", "Test and training accuracy of the global best",
         "Test and training accuracies of the global best", {"paper_report"}),
        ("a claim threshold", "analysis/thresholds.py", "MIN_SEEDS_FOR_VERDICT = 3",
         "MIN_SEEDS_FOR_VERDICT = 4", READ_BY_REPORT),
        ("a table label", "analysis/labels.py", '"lc": "LC-CNN"', '"lc": "LC CNN"', READ_BY_REPORT),
    ],
)  # fmt: skip
def test_text_the_report_prints_reruns_no_training(source_copy, what, module, old, new, changed):
    path = source_copy / module

    def edit(package):
        assert old in path.read_text(), (what, module)
        path.write_text(path.read_text().replace(old, new))

    assert changed_families(source_copy, edit) == changed


def test_the_download_rule_is_pinned_by_its_md5_not_by_code():
    """The download command verifies the archive's md5, so no code change can change what it
    writes: its rule carries no code digest and editing download.py reruns nothing."""
    rules = workflow_rules("workflow/presets/smoke.yaml")
    assert set(rules["download"].params) == {"slice"}
    assert json.loads(rules["download"].params["slice"]).keys() == {"url", "md5"}
    for rule in ("synthetic_archive", "prepare"):
        assert "code" in rules[rule].params
