"""The Snakemake workflow, run for real: the smoke preset in a temporary copy of the repository.

One complete smoke run (module fixture) is shared by the tests, which then ask Snakemake what it
would rerun after each kind of change (``--summary``: one row per output file with its ``plan``),
build the HTML report, inject a failing training job, and check lint and formatting. A test that
runs jobs or changes results works on its own copy of the finished run (:func:`private_copy`), so
the tests pass in any order (checked with pytest-randomly); the ones that only ask for a plan
change a source or config file of the shared run and restore it before they end.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from snakemake_rules import workflow_rules

REPO = Path(__file__).resolve().parents[2]
PRESET = "workflow/presets/smoke.yaml"
SMOKE = ("--configfile", PRESET)
OUT = "results/smoke"
SIZES = ("small", "middle", "large")
ACTIVATIONS = ("relu", "fourier", "lc")
FIGURE_STEMS = (*(f"fig{n}" for n in range(2, 10)), "activations", "activation_health", "structure")
TABLES = ("table1.csv", "table1.json", "table2.csv", "table2.json", "runs.csv", "summary.json")
SENSITIVITY_TABLES = ("sensitivity.json", "sensitivity.csv")
# The smoke preset's sensitivity study (small networks; Fourier start fixed (the main grid's) |
# calibrated; input none | standardize): the runs that differ from the main grid's, by variant.
VARIANT_RUNS = {
    "fixed+standardize": ("relu", "fourier", "lc"),
    "calibrated+none": ("fourier",),
    "calibrated+standardize": ("fourier",),
}
# The smoke preset's schedule axis: L = 1 is its own schedule (the main runs), L = 2 a branch of
# a 2-epoch trunk, each followed by 1 epoch at 1e-4.
AXIS_TABLES = ("schedule_axis.json", "schedule_axis.csv")
TRUNK = f"{OUT}/schedule_axis/trunk/train"
BRANCH = f"{OUT}/schedule_axis/L2/train"
HAVE_TEX = all(shutil.which(tool) for tool in ("latexmk", "pdflatex"))
# The jobs downstream of every Section 5 result: aggregate reads PSO's and the autoencoder's
# histories into summary.json, figures draws fig8/fig9, provenance and report follow.
DOWNSTREAM = {"aggregate", "figures", "provenance", "paper_report"}

pytestmark = pytest.mark.slow


def snakemake(workdir: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run Snakemake in ``workdir`` with this interpreter; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def smoke_with(*configfiles: str) -> tuple[str, ...]:
    """The smoke preset, then ``configfiles`` over it (one --configfile flag takes them all)."""
    return ("--configfile", PRESET, *configfiles)


def plan(workdir: Path, *args: str, configfiles: tuple[str, ...] = ()) -> dict[str, set[str]]:
    """Rule -> output files that Snakemake would (re)make, from ``snakemake --summary``."""
    result = snakemake(workdir, "--summary", *args, *smoke_with(*configfiles))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines.index("output_file\tdate\trule\tlog-file(s)\tstatus\tplan")
    pending: dict[str, set[str]] = {}
    for line in lines[header + 1 :]:
        output, _date, rule, _log, _status, action = line.split("\t")
        if action != "no update":
            pending.setdefault(rule, set()).add(output)
    return pending


def dry_run(workdir: Path, *configfiles: str) -> dict[str, set[str]]:
    """Rule -> the reasons Snakemake's own dry run (``snakemake -n``) prints for its jobs (rule
    all, which runs no command, left out); empty when it has nothing to do."""
    result = snakemake(workdir, "-n", *smoke_with(*configfiles))
    assert result.returncode == 0, result.stderr
    text = result.stdout + result.stderr
    jobs: dict[str, set[str]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", text):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        if rule and rule.group(1) != "all":
            reason = re.search(r"^\s+reason: (.*)$", block, flags=re.MULTILINE)
            jobs.setdefault(rule.group(1), set()).add(reason.group(1) if reason else "")
    if not jobs:
        assert "Nothing to be done" in text, text[-2000:]
    return jobs


def write_yaml(path: Path, content: dict) -> str:
    path.write_text(yaml.safe_dump(content))
    return str(path)


def train_dir(size: str, activation: str, seed: int = 0) -> str:
    return f"{OUT}/train/{size}-{activation}/seed{seed}"


def network_of(path: str) -> str:
    """The ``<size>-<activation>`` folder a run's file lies under."""
    return next(part for part in Path(path).parts if part.split("-")[0] in SIZES)


def expected_outputs() -> list[str]:
    files = [f"{OUT}/data/synthetic/cifar-10-python.tar.gz", f"{OUT}/data/cifar10.npz"]
    for size in SIZES:
        for activation in ACTIVATIONS:
            files += [
                f"{train_dir(size, activation)}/{name}"
                for name in (
                    "history.csv",
                    "model.pt",
                    "activations.json",
                    "summary.json",
                    "activation_health.csv",
                )
            ]
    for variant, activations in VARIANT_RUNS.items():
        files += [f"{OUT}/sensitivity/{variant}/train/small-{a}/seed0/history.csv" for a in activations]
    files += [f"{OUT}/tables/{name}" for name in SENSITIVITY_TABLES + AXIS_TABLES]
    files += [f"{OUT}/figures/schedule_axis.{ext}" for ext in ("png", "pdf")]
    for activation in ACTIVATIONS:
        files += [
            f"{TRUNK}/small-{activation}/seed0/{name}" for name in ("history.csv", "snapshots/epoch2.pt")
        ]
        files += [
            f"{BRANCH}/small-{activation}/seed0/{name}"
            for name in ("history.csv", "summary.json", "model.pt")
        ]
    files += [f"{OUT}/autoencoder/seed0/{name}" for name in ("pretrain.csv", "pretrained.pt")]
    files += [
        f"{OUT}/autoencoder/seed0/finetune/{name}"
        for name in ("history.csv", "model.pt", "activations.json", "summary.json")
    ]
    files += [f"{OUT}/pso/seed0/{name}" for name in ("history.csv", "best.pt", "summary.json")]
    files += [f"{OUT}/tables/{name}" for name in TABLES]
    files += [f"{OUT}/figures/{stem}.{ext}" for stem in FIGURE_STEMS for ext in ("png", "pdf")]
    files += [f"{OUT}/figures/structure_layers.csv"]
    files += [f"{OUT}/provenance.json", f"{OUT}/paper/report.md", f"{OUT}/paper/report.tex"]
    files += [f"{OUT}/paper/settings.yaml"]
    if HAVE_TEX:
        files.append(f"{OUT}/paper/report.pdf")
    return files


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@dataclass
class SmokeRun:
    workdir: Path
    seconds: float
    result: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> SmokeRun:
    """The workflow's files copied to a fresh folder, and one complete smoke run there."""
    workdir = tmp_path_factory.mktemp("workflow")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".snakemake")
    for name in ("Snakefile", "config.yaml"):
        shutil.copy2(REPO / name, workdir / name)
    for name in ("workflow", "paper", "envs", "src"):
        shutil.copytree(REPO / name, workdir / name, ignore=ignore)
    os.symlink(os.readlink(REPO / "profiles"), workdir / "profiles")
    started = time.perf_counter()
    result = snakemake(workdir, "--cores", "2", *SMOKE, timeout=1800)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-5000:]
    print(f"\nsmoke workflow: {seconds:.0f} s wall on {os.cpu_count()} cores", file=sys.stderr)
    return SmokeRun(workdir, seconds, result)


def private_copy(smoke: SmokeRun, tmp_path: Path) -> Path:
    """A copy of the finished smoke run (files with their times, Snakemake's metadata, the
    profile link) for a test that changes results."""
    workdir = tmp_path / "workflow"
    shutil.copytree(smoke.workdir, workdir, symlinks=True)
    return workdir


# ------------------------------------------------------------------------------ the full run


def test_smoke_run_makes_every_output(smoke):
    work = smoke.workdir
    # The default profile is read (through the top-level `profiles` link): one GPU job at a time.
    assert "Using workflow specific profile profiles/default" in smoke.result.stderr
    # One GPU, shared by devices.jobs_per_gpu (4) GPU jobs at a time.
    assert 'Provided resources: gpu=Resource("gpu", 1)' in smoke.result.stderr + smoke.result.stdout
    assert 'gpu_slots=Resource("gpu_slots", 4)' in smoke.result.stderr + smoke.result.stdout
    missing = [f for f in expected_outputs() if not (work / f).is_file() or (work / f).stat().st_size == 0]
    assert not missing
    for size in SIZES:
        for activation in ACTIVATIONS:
            rows = read_rows(work / train_dir(size, activation) / "history.csv")
            assert [r["epoch"] for r in rows] == ["1", "2"]
            assert [float(r["lr"]) for r in rows] == [1e-3, 1e-4]  # the smoke schedule
            assert {r["status"] for r in rows} == {"ok"}
    assert [r["generation"] for r in read_rows(work / OUT / "pso/seed0/history.csv")] == ["0", "1", "2"]
    assert [r["stage"] for r in read_rows(work / OUT / "autoencoder/seed0/pretrain.csv")] == [
        "0",
        "1",
        "2",
        "3",
    ]
    table1 = read_rows(work / OUT / "tables/table1.csv")
    assert {(r["size"], r["activation"]) for r in table1} == {(s, a) for s in SIZES for a in ACTIVATIONS}
    summary = json.loads((work / OUT / "tables/summary.json").read_text())
    assert summary["seeds"] == [0] and summary["pso"]["status"] == summary["autoencoder"]["status"] == "ok"
    for stem in FIGURE_STEMS:
        assert (work / OUT / f"figures/{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "`smoke`" in (work / OUT / "paper/report.md").read_text()
    if HAVE_TEX:
        assert (work / OUT / "paper/report.pdf").read_bytes()[:5] == b"%PDF-"
    # Every job wrote its log and its benchmark (one row of wall seconds); the paper_report rule
    # keeps the file names it had as the rule `report` (logs/report.log, benchmarks/report/).
    for folder in ("logs", "benchmarks"):
        jobs = {
            p.relative_to(work / OUT / folder).parts[0]
            for p in (work / OUT / folder).rglob("*")
            if p.is_file()
        }
        assert {p.split(".")[0] for p in jobs} == {
            "synthetic_archive",
            "prepare",
            "train",
            "ae_pretrain",
            "ae_finetune",
            "pso",
            "aggregate",
            "figures",
            "provenance",
            "report",
            "sensitivity",
            "schedule_axis",
        }
    assert len(list((work / OUT / "benchmarks/train").glob("*.tsv"))) == 9
    # Exactly the variant runs that no other root holds were trained (the rest are reused).
    trained = {p.parent.name + "/" + p.stem for p in (work / OUT / "benchmarks/sensitivity").rglob("*.tsv")}
    assert trained == {f"{v}/small-{a}-seed0" for v, acts in VARIANT_RUNS.items() for a in acts}
    sensitivity = json.loads((work / OUT / "tables/sensitivity.json").read_text())
    roots = {v["name"]: v["roots"] for v in sensitivity["variants"]}
    assert roots["fixed+none"] == {a: OUT for a in ACTIVATIONS}  # the main grid itself
    assert roots["calibrated+standardize"]["relu"] == f"{OUT}/sensitivity/fixed+standardize"
    assert sensitivity["reference"] == "fixed+none"
    report = (work / OUT / "paper/report.md").read_text()
    assert report.index("## 1 Verdicts") < report.index("Table 1") and "## 8 Sensitivity" in report
    # The run's full config beside the report, named there with its checksum; given as the config
    # file it is this run (the paper config's settings that the preset changes, in Appendix A)
    settings = work / OUT / "paper/settings.yaml"
    assert (
        f"`{OUT}/paper/settings.yaml`, SHA-256 `{hashlib.sha256(settings.read_bytes()).hexdigest()}`"
        in report
    )
    assert yaml.safe_load(settings.read_text())["train"]["epochs"] == 2 and "devices" not in yaml.safe_load(
        settings.read_text()
    )
    paper_epochs = yaml.safe_load((work / "config.yaml").read_text())["train"]["epochs"]
    assert f"| `train.epochs` | `2` | `{paper_epochs}` |" in report
    assert "**Layers of the networks** (from `structure_layers.csv`)" in report
    # No box of the PDF past the margin (trainact.report.pdf logs every one wider than its tolerance)
    assert "overfull" not in (work / OUT / "logs/report.log").read_text()
    # The schedule axis: the branch holds the trunk's 2 epochs at 1e-3 and its own epoch at 1e-4;
    # the point L = 1 is the main grid's own schedule (nothing trained for it).
    for activation in ACTIVATIONS:
        trunk = read_rows(work / TRUNK / f"small-{activation}/seed0/history.csv")
        branch = read_rows(work / BRANCH / f"small-{activation}/seed0/history.csv")
        assert [float(r["lr"]) for r in branch] == [1e-3, 1e-3, 1e-4]
        assert [r["val_acc"] for r in branch[:2]] == [r["val_acc"] for r in trunk]
    axis = json.loads((work / OUT / "tables/schedule_axis.json").read_text())
    assert [(p["first_phase"], p["root"]) for p in axis["points"]] == [
        (1, OUT),
        (2, f"{OUT}/schedule_axis/L2"),
    ]
    assert "## 9 Where the verdicts hold: the schedule axis" in report and "schedule_axis.png" in report


def test_second_run_has_nothing_to_do(smoke):
    result = snakemake(smoke.workdir, "--cores", "2", *SMOKE)
    assert result.returncode == 0, result.stderr
    assert "Nothing to be done" in result.stderr + result.stdout
    assert plan(smoke.workdir) == {}
    # `snakemake report`, the paper report's target under its first name, asks for the same files
    result = snakemake(smoke.workdir, "-n", "report", *SMOKE)
    assert result.returncode == 0, result.stderr
    assert "Nothing to be done" in result.stderr + result.stdout


# -------------------------------------------------------------------------------------- reruns


def test_touching_files_reruns_nothing(smoke, tmp_path):
    """Inputs made newer than every output (same content) rerun nothing: Snakemake compares
    their content with the checksum recorded when the outputs were made. The archive and the
    prepared data are over 1 MB, Snakemake's default limit for that check, which the default
    profile raises: without the profile they would rerun everything."""
    work = private_copy(smoke, tmp_path)
    later = time.time() + 5
    for path in [*(work / OUT).rglob("*"), *(work / "src").rglob("*"), *(work / "workflow").rglob("*")]:
        if path.is_file():
            os.utime(path, (later, later))
    # Inputs newer still: the data, and every result that aggregate, figures and report read.
    for pattern in ("data/**/*.gz", "data/*.npz", "**/history.csv", "**/pretrain.csv", "**/*.json"):
        for path in (work / OUT).glob(pattern):
            os.utime(path, (later + 10, later + 10))
    assert plan(work) == {}
    without_profile = plan(work, "--workflow-profile", "none")
    assert {"prepare", "train", "paper_report"} <= set(without_profile)


def reversed_keys(value):
    if isinstance(value, dict):
        return {key: reversed_keys(value[key]) for key in reversed(list(value))}
    return value


def test_reordering_config_keys_reruns_nothing(smoke, tmp_path):
    work = smoke.workdir
    original = (work / "config.yaml").read_text()
    preset = yaml.safe_load((work / "workflow/presets/smoke.yaml").read_text())
    reordered_preset = tmp_path / "smoke-reordered.yaml"
    reordered_preset.write_text(yaml.safe_dump(reversed_keys(preset), sort_keys=False))
    try:
        (work / "config.yaml").write_text(
            yaml.safe_dump(reversed_keys(yaml.safe_load(original)), sort_keys=False)
        )
        assert (
            list(yaml.safe_load((work / "config.yaml").read_text()))[0] == list(yaml.safe_load(original))[-1]
        )
        result = snakemake(work, "--configfile", str(reordered_preset), "--summary")
        assert result.returncode == 0, result.stderr
        plans = [line.split("\t")[-1] for line in result.stdout.splitlines()[1:] if "\t" in line]
        assert plans and set(plans) == {"no update"}
    finally:
        (work / "config.yaml").write_text(original)


def test_pso_settings_rerun_pso_and_its_dependants_only(smoke, tmp_path):
    extra = write_yaml(tmp_path / "pso.yaml", {"pso": {"generations": 3}})
    pending = plan(smoke.workdir, configfiles=(extra,))
    assert set(pending) == {"pso"} | DOWNSTREAM
    assert pending["pso"] == {
        f"{OUT}/pso/seed0/{name}" for name in ("history.csv", "best.pt", "summary.json")
    }


# The schedule axis' jobs: its trunks and branches (training), and its judgement.
AXIS_JOBS = {"train_trunk", "train_branch", "schedule_axis"}
EVERY_JOB = (
    {"prepare", "train", "train_variant", "ae_pretrain", "ae_finetune", "pso", "sensitivity"}
    | AXIS_JOBS
    | DOWNSTREAM
)


def test_fourier_settings_rerun_only_fourier_networks(smoke, tmp_path):
    """Each training job carries only its own activation's settings (the schedule axis' trunks
    and branches too)."""
    extra = write_yaml(tmp_path / "fourier.yaml", {"model": {"fourier": {"rank": 4}}})
    pending = plan(smoke.workdir, configfiles=(extra,))
    assert (
        set(pending)
        == {"train", "train_variant", "ae_pretrain", "ae_finetune", "sensitivity"} | AXIS_JOBS | DOWNSTREAM
    )
    assert {Path(f).parent.parent.name for f in pending["train"]} == {f"{s}-fourier" for s in SIZES}
    assert {Path(f).parent.parent.name for f in pending["train_variant"]} == {"small-fourier"}
    assert {network_of(f) for f in pending["train_trunk"] | pending["train_branch"]} == {"small-fourier"}


@pytest.mark.parametrize(
    ("setting", "rerun", "networks"),
    [
        # an LC setting: the LC networks of the grid and of the study only
        (
            {"model": {"lc": {"eps": 0.02}}},
            {"train", "train_variant", "sensitivity"} | AXIS_JOBS | DOWNSTREAM,
            {"lc"},
        ),
        # a training setting: every training and the fine-tuning, not the pretraining or PSO
        (
            {"train": {"rho": 0.9}},
            {"train", "train_variant", "ae_finetune", "sensitivity"} | AXIS_JOBS | DOWNSTREAM,
            None,
        ),
        # the dataset: everything from the archive on
        ({"dataset": {"synthetic": {"seed": 1}}}, {"synthetic_archive"} | EVERY_JOB, None),
        # a validation split: the prepared data and all that read them, not the archive
        ({"dataset": {"validation_per_class": 5}}, EVERY_JOB, None),
    ],
    ids=["lc", "train", "dataset", "validation"],
)
def test_a_setting_reruns_the_jobs_that_use_it(smoke, tmp_path, setting, rerun, networks):
    extra = write_yaml(tmp_path / "setting.yaml", setting)
    pending = plan(smoke.workdir, configfiles=(extra,))
    assert set(pending) == rerun
    if networks is not None:
        trained = {
            Path(f).parent.parent.name.split("-")[1] for f in pending["train"] | pending["train_variant"]
        }
        assert trained == networks
        axis = {network_of(f).split("-")[1] for f in pending["train_trunk"] | pending["train_branch"]}
        assert axis == networks


def test_sensitivity_settings_rerun_only_the_study(smoke, tmp_path):
    """A new start in the study trains only its own runs (its ReLU and LC runs equal the main
    grid's and are reused); the grid, its tables and figures stay. Provenance, which lists the
    devices of every run, follows the set of runs."""
    study = yaml.safe_load((smoke.workdir / PRESET).read_text())["sensitivity"]
    study["initialisations"].append({"name": "random", "model": {"fourier": {"init": "random"}}})
    extra = write_yaml(tmp_path / "study.yaml", {"sensitivity": study})
    pending = plan(smoke.workdir, configfiles=(extra,))
    assert set(pending) == {"train_variant", "sensitivity", "provenance", "paper_report"}
    assert {str(Path(f).parent) for f in pending["train_variant"]} == {
        f"{OUT}/sensitivity/random+{p}/train/small-fourier/seed0" for p in ("none", "standardize")
    }
    off = write_yaml(tmp_path / "off.yaml", {"sensitivity": {"enabled": False}})
    assert set(plan(smoke.workdir, configfiles=(off,))) == {"sensitivity", "provenance", "paper_report"}


def test_the_schedule_axis_reruns_only_what_its_settings_touch(smoke, tmp_path):
    """A new tail reruns the branches (not their trunks, not the main grid) and what reads them;
    a longer first phase also reruns the trunks; the axis off trains nothing."""
    tail = write_yaml(tmp_path / "tail.yaml", {"schedule_axis": {"tail_epochs": [2]}})
    pending = plan(smoke.workdir, configfiles=(tail,))
    assert set(pending) == {"train_branch", "schedule_axis", "provenance", "paper_report"}
    # L = 1 was the main schedule (1 epoch at 1e-3, 1 at 1e-4); with a 2-epoch tail it is a branch too
    assert {str(Path(f).parent) for f in pending["train_branch"]} == {
        f"{OUT}/schedule_axis/L{L}/train/small-{a}/seed0" for L in (1, 2) for a in ACTIVATIONS
    }
    longer = write_yaml(tmp_path / "longer.yaml", {"schedule_axis": {"first_phase_epochs": [1, 3]}})
    pending = plan(smoke.workdir, configfiles=(longer,))
    assert set(pending) == {"train_trunk", "train_branch", "schedule_axis", "provenance", "paper_report"}
    assert {str(Path(f).parent) for f in pending["train_branch"]} == {
        f"{OUT}/schedule_axis/L3/train/small-{a}/seed0" for a in ACTIVATIONS
    }
    off = write_yaml(tmp_path / "off.yaml", {"schedule_axis": {"enabled": False}})
    assert set(plan(smoke.workdir, configfiles=(off,))) == {"schedule_axis", "provenance", "paper_report"}


def test_a_branch_waits_on_its_trunk(smoke, tmp_path):
    """A longer first phase: the dry run plans the longer trunks and each new branch after its
    trunk, because of the snapshot the trunk will write."""
    longer = write_yaml(tmp_path / "longer.yaml", {"schedule_axis": {"first_phase_epochs": [1, 3]}})
    result = snakemake(smoke.workdir, "-n", *smoke_with(longer))
    assert result.returncode == 0, result.stderr
    printed = result.stdout + result.stderr
    jobs = [
        line.removeprefix("rule ").rstrip(":") for line in printed.splitlines() if line.startswith("rule ")
    ]
    assert jobs.count("train_trunk") == jobs.count("train_branch") == 3 and "train" not in jobs
    assert max(i for i, job in enumerate(jobs) if job == "train_trunk") < min(
        i for i, job in enumerate(jobs) if job == "train_branch"
    )
    for activation in ACTIVATIONS:
        snapshot = f"{TRUNK}/small-{activation}/seed0/snapshots/epoch3.pt"
        assert f"Input files updated by another job: {snapshot}" in printed


@pytest.mark.parametrize(
    ("module", "rerun"),
    [
        ("training/pso.py", {"pso"} | DOWNSTREAM),
        # the figures command alone (the schedule axis saves its figure with report/plot_style.py)
        ("report/figures.py", {"figures", "provenance", "paper_report"}),
        (
            "nn/models.py",
            {"train", "train_variant", "ae_pretrain", "ae_finetune", "pso", "sensitivity"}
            | AXIS_JOBS
            | DOWNSTREAM,
        ),
        ("analysis/schedule_axis.py", {"schedule_axis", "paper_report"}),
        # the axis' planning: the axis' judgement (and the report, which shows its schedules)
        # import it; no training job does
        ("training/schedules.py", {"schedule_axis", "paper_report"}),
        ("analysis/sensitivity.py", {"sensitivity", "paper_report"}),
        # PSO shares the device, job and evaluation modules with the trainer, not trainact.training.train
        (
            "training/train.py",
            {"train", "train_variant", "ae_pretrain", "ae_finetune", "sensitivity"} | AXIS_JOBS | DOWNSTREAM,
        ),
        ("cli.py", set()),
        # the workflow's planner: Snakemake reads it at parse time, no job runs it
        ("workflow_plan.py", set()),
        # the download code reruns nothing (here no job runs it: the smoke preset builds its
        # archive; tests/workflow/test_reruns.py checks that no job that reads data imports it); the
        # preparation code reruns prepare and all that reads its .npz (Snakemake plans before
        # it runs, so it cannot know that the file will not change)
        ("data/download.py", set()),
        ("data/prepare.py", EVERY_JOB),
        ("data/synthetic.py", EVERY_JOB | {"synthetic_archive"}),
        # the aggregate command alone: the studies read the runs through analysis/results.py
        ("analysis/aggregate.py", DOWNSTREAM),
        ("report/paper_report.py", {"paper_report"}),
        ("report/formatting.py", {"paper_report"}),
        # the claims are judged by aggregate: its tables and everything after them
        ("analysis/claims.py", {"sensitivity", "schedule_axis"} | DOWNSTREAM),
        ("nn/fourier.py", EVERY_JOB - {"prepare"}),
        # the package data files that a module reads
        ("analysis/published_tables.json", {"sensitivity", "schedule_axis"} | DOWNSTREAM),
        ("report/deviations.yaml", {"paper_report"}),
    ],
)  # fmt: skip
def test_editing_a_module_reruns_the_jobs_that_run_it(smoke, module, rerun):
    """The params carry the sha256 of the code each command imports (cli.py, the argument
    dispatcher, runs no experiment code). A rerun job's outputs change, so its dependants rerun.
    A line of code is added (a comment would change no digest: see the test below)."""
    source = smoke.workdir / "src/trainact" / module
    original = source.read_bytes()
    try:
        edit = b"\n_AN_EDIT = 1\n" if module.endswith(".py") else b"\n# an edit\n"
        source.write_bytes(original + edit)
        assert set(plan(smoke.workdir)) == rerun
    finally:
        source.write_bytes(original)


TRAINING_JOBS = {"train", "train_variant", "train_trunk", "train_branch", "ae_pretrain", "ae_finetune", "pso"}
# What reads the claims' thresholds: the analysis and the report (not a training job).
ANALYSIS_JOBS = {"aggregate", "sensitivity", "schedule_axis", "figures", "provenance", "paper_report"}


@pytest.mark.parametrize(
    ("module", "edit", "rerun"),
    [
        ("report/captions.py", ("Test and training accuracy of the global best",
                                "Test and training accuracies of the global best"), {"paper_report"}),
        ("analysis/thresholds.py", ("MIN_SEEDS_FOR_VERDICT = 3", "MIN_SEEDS_FOR_VERDICT = 4"), ANALYSIS_JOBS),
        ("training/train.py", "docstring", set()),
        ("training/train.py", "comment", set()),
        ("files.py", "docstring", set()),
        ("files.py", "comment", set()),
    ],
)  # fmt: skip
def test_a_caption_threshold_docstring_or_comment_edit_reruns_no_training(smoke, module, edit, rerun):
    """Snakemake's own plan (``snakemake -n``) after an edit of text the report prints, of a
    docstring or of a comment: no training, autoencoder or PSO job; exactly the jobs whose
    code digest changed (their params), and their dependants."""
    source = smoke.workdir / "src/trainact" / module
    original = source.read_text()
    if edit == "docstring":
        assert original.count('"""') >= 2, module
        text = original.replace('"""', '"""An edit. ', 1)
    elif edit == "comment":
        text = original + "\n# an edit\n"
    else:
        old, new = edit
        assert old in original, (module, old)
        text = original.replace(old, new)
    try:
        source.write_text(text)
        jobs = dry_run(smoke.workdir)
    finally:
        source.write_text(original)
    assert set(jobs) & TRAINING_JOBS == set()
    assert set(jobs) == rerun
    # the first job of the chain reruns for its params (its code digest); the rest for its input
    first = {"report/captions.py": "paper_report", "analysis/thresholds.py": "aggregate"}.get(module)
    if first:
        assert any("Params have changed" in reason for reason in jobs[first]), jobs[first]


def test_device_settings_rerun_nothing(smoke, tmp_path):
    """Where the jobs run changes no result: the policy reaches them through the environment and
    the GPU slots and threads through Snakemake's resources, neither through params or command
    text."""
    extra = write_yaml(
        tmp_path / "devices.yaml", {"devices": {"policy": "cpu", "jobs_per_gpu": 2, "threads_per_job": 1}}
    )
    assert plan(smoke.workdir, configfiles=(extra,)) == {}
    result = snakemake(smoke.workdir, "-n", "--resources", "gpu=3", *smoke_with(extra))
    assert result.returncode == 0 and "Nothing to be done" in result.stdout + result.stderr


def test_the_divergence_setting_reruns_nothing(smoke, tmp_path):
    """on_divergence decides only a job's exit status after a divergence: it reaches the jobs
    through the environment, not their params or command text, so Snakemake's own dry run plans
    nothing when it switches."""
    fail = write_yaml(tmp_path / "fail.yaml", {"on_divergence": "fail"})
    assert dry_run(smoke.workdir, fail) == {}


@pytest.mark.parametrize("pack_seeds", [True, False], ids=["packs", "one-job-per-seed"])
def test_adding_a_seed_adds_only_its_jobs(smoke, tmp_path, pack_seeds):
    """One job per seed: only seed 1's jobs. Packs (the default): each network's pack job lists
    both seeds' files, and seed 0's network resumes from its finished checkpoint (nothing is
    retrained, the files come out the same: tests/training/test_pack.py and the switching test
    below). Since Snakemake sees the trunks' snapshots of seed 0 made again, it plans seed 0's
    branches too, which likewise find their finished checkpoints; every other job is seed 1's."""
    extra = write_yaml(
        tmp_path / "seeds.yaml", {"experiment": {"seeds": [0, 1]}, "devices": {"pack_seeds": pack_seeds}}
    )
    pending = plan(smoke.workdir, configfiles=(extra,))
    assert (
        set(pending)
        == {"train", "train_variant", "ae_pretrain", "ae_finetune", "pso", "sensitivity"}
        | AXIS_JOBS
        | DOWNSTREAM
    )
    trained = pending["train"] | pending["train_variant"] | pending["train_trunk"]
    per_seed = pending["ae_pretrain"] | pending["ae_finetune"] | pending["pso"] | pending["train_branch"]
    assert all("/seed1/" in path for path in per_seed - (pending["train_branch"] if pack_seeds else set()))
    if pack_seeds:
        assert {path.replace("/seed0/", "/seed1/") for path in trained} == {
            path for path in trained if "/seed1/" in path
        }
    else:
        assert all("/seed1/" in path for path in trained)
    assert len([p for p in pending["train"] if p.endswith("history.csv") and "/seed1/" in p]) == 9


def test_switching_between_packs_and_one_job_per_seed_reruns_nothing(smoke, tmp_path):
    """The setting changes neither the files nor the command text nor the params Snakemake
    records: a run made one way is complete the other way. Shown with two seeds of one network
    trained as a pack, then asked for one job per seed; and the smoke run (packs) asked for one
    job per seed. The pack rewrote seed 0's finished files from its checkpoint, bit for bit."""
    single = write_yaml(tmp_path / "single.yaml", {"devices": {"pack_seeds": False}})
    assert plan(smoke.workdir, configfiles=(single,)) == {}

    work = private_copy(smoke, tmp_path)
    seed0 = work / train_dir("small", "relu", 0)
    before = {name: (seed0 / name).read_bytes() for name in ("model.pt", "history.csv", "summary.json")}
    two = {"experiment": {"seeds": [0, 1]}}
    packs = write_yaml(tmp_path / "packs.yaml", {**two, "devices": {"pack_seeds": True}})
    target = f"{train_dir('small', 'relu', 1)}/history.csv"
    result = snakemake(work, "--cores", "2", target, *smoke_with(packs))
    assert result.returncode == 0, result.stderr[-3000:]
    assert {name: (seed0 / name).read_bytes() for name in before} == before
    for config in (packs, write_yaml(tmp_path / "single2.yaml", {**two, "devices": {"pack_seeds": False}})):
        pending = plan(work, configfiles=(config,))
        assert not any("/small-relu/" in path for path in pending.get("train", set())), pending.get("train")
        assert any("/small-fourier/seed1/" in path for path in pending["train"])


def test_a_pack_takes_one_gpu_slot_and_a_runtime_per_seed():
    """A pack is one process on one GPU; on SLURM its time limit covers its seeds, trained one
    after the other on a node without a GPU."""
    one = workflow_rules(PRESET)["train"].resource_values
    three = workflow_rules()["train"].resource_values  # config.yaml: the paper's 3 seeds
    assert one["gpu_slots"] == three["gpu_slots"] == 1
    assert three["runtime"] == 3 * one["runtime"]


# ---------------------------------------------------------------------------------- the rest


def test_html_report_has_every_figure_and_table_with_its_caption(smoke, tmp_path):
    html = tmp_path / "report.html"
    result = snakemake(smoke.workdir, *SMOKE, "--report", str(html))
    assert result.returncode == 0, result.stderr
    text = html.read_text()
    captions = [f"Figure {n}." for n in range(2, 10)] + [
        "Table 1.",
        "Table 2.",
        "Learned activations.",
        "Network structure",
        "Reproduction report",
        "Activation health",
        "Sensitivity to the unstated choices.",
    ]
    assert [c for c in captions if c not in text] == []
    # every caption's text is trainact.report.captions' (the committed files are generated
    # from it: tests/workflow/test_html_report_captions.py)
    from trainact.report import captions as caption_texts

    shown = [
        name for name, entry in caption_texts.CAPTIONS.items() if entry.caption.split("'")[0][:60] in text
    ]
    assert set(shown) >= {
        "table1",
        "table2",
        "sensitivity",
        "schedule_axis",
        "paper_report",
        "fig9",
        "structure",
    }
    # Parsing the workflow (the smoke run, this report) wrote no caption file.
    assert not (smoke.workdir / ".snakemake" / "trainact").exists()
    assert all(f"{stem}.png" in text for stem in FIGURE_STEMS)
    assert "table1.csv" in text and "report.md" in text
    assert ("report.pdf" in text) == HAVE_TEX


def test_bad_config_values_stop_before_any_job(smoke, tmp_path):
    """Every bad value is named with its key, before Snakemake builds the DAG."""
    schema_breaking = {
        "train": {"epochs": 0},
        "trian": {"epochs": 3},
        "model": {"filters": {"small": [4, 8]}},
        "dataset": {"md5": "not-an-md5"},
    }
    # the smoke schedule has one boundary; the synthetic archive has 30 training images per class
    cross_key = {"train": {"learning_rates": [0.1]}, "dataset": {"validation_per_class": 30}}
    messages = {
        "schema": [
            "train.epochs = 0",
            "unknown key 'trian' at the top level (did you mean 'train'?)",
            "model.filters.small = [4, 8]",
            "dataset.md5 = 'not-an-md5'",
        ],
        "cross": [
            "train.learning_rates = [0.1]: needs one more entry than train.lr_boundaries = [1]",
            "dataset.validation_per_class = 30: must be less than dataset.synthetic.train_per_class = 30",
        ],
    }
    for name, content in (("schema", schema_breaking), ("cross", cross_key)):
        extra = write_yaml(tmp_path / f"{name}.yaml", content)
        result = snakemake(smoke.workdir, "--cores", "2", *smoke_with(extra))
        assert result.returncode != 0
        assert [m for m in messages[name] if m not in result.stderr] == [], result.stderr[-2000:]
        assert "Building DAG" not in result.stderr


def test_download_rule_fetches_a_local_archive_and_checks_its_md5(smoke, tmp_path):
    work = smoke.workdir
    archive = work / OUT / "data/synthetic/cifar-10-python.tar.gz"
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    url = archive.as_uri()
    good = write_yaml(tmp_path / "mirror.yaml", {"dataset": {"synthetic": None, "url": url, "md5": md5}})
    target = f"resources/archives/{md5}/cifar-10-python.tar.gz"
    result = snakemake(work, target, "--cores", "1", *smoke_with(good))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (work / target).read_bytes() == archive.read_bytes()

    wrong_md5 = "0" * 32
    bad = write_yaml(
        tmp_path / "bad-mirror.yaml", {"dataset": {"synthetic": None, "url": url, "md5": wrong_md5}}
    )
    target = f"resources/archives/{wrong_md5}/cifar-10-python.tar.gz"
    result = snakemake(work, target, "--cores", "1", *smoke_with(bad))
    assert result.returncode != 0
    assert not (work / target).exists()
    assert md5 in (work / OUT / "logs/download.log").read_text()  # names the md5 it found


def test_lint_is_clean(smoke):
    for config in ((), SMOKE):
        result = snakemake(smoke.workdir, *config, "--lint")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_snakefmt_check_passes():
    result = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def schema_leaves(schema: dict, path: str = ""):
    """(dotted key, subschema) of every property in the schema."""
    for key, sub in schema.get("properties", {}).items():
        yield f"{path}{key}", sub
        yield from schema_leaves(sub, f"{path}{key}.")


def test_schema_describes_every_key_and_config_sets_them_all():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    entries = dict(schema_leaves(schema))
    assert [key for key, sub in entries.items() if not sub.get("description")] == []
    optional = {"model.fourier.impl", "model.lc.impl"}  # inherit model.impl
    synthetic = {k for k in entries if k.startswith("dataset.synthetic.")}  # required inside
    assert [k for k, sub in entries.items() if "default" not in sub and k not in optional | synthetic] == []

    def keys(value, path=""):
        for key, sub in value.items():
            yield f"{path}{key}"
            if isinstance(sub, dict):
                yield from keys(sub, f"{path}{key}.")

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert set(entries) - optional - synthetic == set(keys(config))


def test_the_validation_split_must_leave_training_images():
    """dataset.validation_per_class against the training images per class it is taken from."""
    from trainact.config_check import validation_split_errors

    dataset = {"train_per_class": None, "validation_per_class": 500, "synthetic": None}
    assert validation_split_errors(dataset) == []
    assert validation_split_errors({**dataset, "validation_per_class": None, "train_per_class": 1}) == []
    assert validation_split_errors({**dataset, "train_per_class": 500}) == [
        "dataset.validation_per_class = 500: must be less than dataset.train_per_class = 500, "
        "so that every class keeps training images"
    ]
    synthetic = {"train_per_class": 30, "test_per_class": 10, "seed": 0}
    errors = validation_split_errors({**dataset, "validation_per_class": 30, "synthetic": synthetic})
    assert errors == [
        "dataset.validation_per_class = 30: must be less than dataset.synthetic.train_per_class = 30, "
        "so that every class keeps training images"
    ]


# ------------------------------------------------------------- runs that change the results


def test_rerun_after_a_code_edit_trains_afresh(smoke, tmp_path):
    """A job rerun for new code or settings must not resume the checkpoint its last run left:
    the checkpoint's fingerprint holds the code and inputs it was written under
    (trainact.training.checkpoints.run_identity)."""
    work = private_copy(smoke, tmp_path)
    target = f"{train_dir('small', 'relu')}/history.csv"
    log = work / OUT / "logs/train/small-relu-seed0.log"
    source = work / "src/trainact/training/train.py"
    original = source.read_bytes()
    source.write_bytes(original + b"\n# an edit\n")
    result = snakemake(work, target, "--cores", "2", *SMOKE)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "epoch 1/2" in log.read_text() and "resuming" not in log.read_text()
    source.write_bytes(original)
    result = snakemake(work, target, "--cores", "2", *SMOKE)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "epoch 1/2" in log.read_text() and "resuming" not in log.read_text()


def test_an_interrupted_job_resumes_from_its_checkpoint(smoke, tmp_path):
    """The other direction: a job that reruns under the same settings, code and inputs, here
    because its outputs are gone as after a crash, resumes from its checkpoint instead of
    training again."""
    work = private_copy(smoke, tmp_path)
    run = work / train_dir("small", "lc")
    log = work / OUT / "logs/train/small-lc-seed0.log"
    history = (run / "history.csv").read_text()
    assert (run / "checkpoint.pt").is_file()
    for name in ("history.csv", "model.pt", "activations.json", "summary.json", "activation_health.csv"):
        (run / name).unlink()
    result = snakemake(work, f"{train_dir('small', 'lc')}/history.csv", "--cores", "2", *SMOKE)
    assert result.returncode == 0, result.stderr[-3000:]
    text = log.read_text()
    assert "resuming" in text and "after epoch 2" in text and "epoch 1/2" not in text
    assert (run / "history.csv").read_text() == history


# ----------------------------------------------------------------------------------- failure


def test_a_diverged_run_is_a_result_unless_the_setting_makes_it_fail(smoke, tmp_path):
    """A learning rate of 10 after epoch 1 (the activations' parameters at 1000 times it): the
    Fourier networks' loss overflows in epoch 2 (the ReLU and LC networks survive it). Each
    diverged job exits 0 with its files (model.pt: the weights after epoch 1), summary.json
    records the divergence, the aggregation lists it, Table 1 marks exactly its models and the
    report is built. The same job rerun under on_divergence: fail stops the workflow, the error
    naming the run, while --keep-going still runs an independent job; back under the default, a
    rerun makes exactly what is missing. (The sensitivity study and the schedule axis are
    switched off to keep the reruns few: the training jobs of the grid and the autoencoder's
    fine-tuning.)"""
    work = private_copy(smoke, tmp_path)
    diverge = write_yaml(
        tmp_path / "diverge.yaml",
        {
            "train": {"learning_rates": [1.0e-3, 10.0], "activation_lr_scale": 1000.0},
            "sensitivity": {"enabled": False},
            "schedule_axis": {"enabled": False},
        },
    )
    done = snakemake(work, "--cores", "2", *smoke_with(diverge), timeout=1800)
    assert done.returncode == 0, done.stderr[-5000:]
    files = ("history.csv", "model.pt", "activations.json", "summary.json", "activation_health.csv")
    diverged = set()
    for size in SIZES:
        for activation in ACTIVATIONS:
            run = work / train_dir(size, activation)
            assert all((run / name).is_file() for name in files)
            record = json.loads((run / "summary.json").read_text())["diverged"]
            statuses = [r["status"] for r in read_rows(run / "history.csv")]
            if record is None:
                assert statuses == ["ok", "ok"]
                continue
            diverged.add((size, activation))
            assert statuses == ["ok", "diverged"]
            assert record == {"epoch": 2, "lr": 10.0, "weights_after_epoch": 1}
            assert (
                f"{OUT}/train/{size}-{activation}/seed0: the training loss became non-finite in epoch 2 "
                "(lr 10); stopped; model.pt holds the weights after epoch 1 (summary.json: diverged)"
            ) in (work / OUT / f"logs/train/{size}-{activation}-seed0.log").read_text()
    assert ("small", "fourier") in diverged

    aggregated = json.loads((work / OUT / "tables/summary.json").read_text())
    listed = {d["run"]: d["diverged_epoch"] for d in aggregated["diverged"] if d["run"].startswith("train/")}
    assert listed == {f"train/{size}-{activation}/seed0": 2 for size, activation in diverged}
    table1 = {(row["size"], row["activation"]): row for row in read_rows(work / OUT / "tables/table1.csv")}
    assert {key for key, row in table1.items() if row["n_diverged"] == "1"} == diverged
    # a diverged seed counts with its last good epoch: epoch 1's validation accuracy
    small_fourier = read_rows(work / train_dir("small", "fourier") / "history.csv")[0]
    assert float(table1[("small", "fourier")]["final_val_acc_mean"]) == float(small_fourier["val_acc"])
    report = (work / OUT / "paper/report.md").read_text()
    for size, activation in table1:
        model = table1[(size, activation)]["model"]
        mark = " (1 diverged)" if (size, activation) in diverged else ""
        assert f"| {model} | 1{mark} |" in report
    for size, activation in diverged:
        line = f"- train/{size}-{activation}/seed0: diverged in epoch 2; 1 ok epoch(s) counted, 1 ignored"
        assert line in report
    assert "its first epoch has no value and is left out of the means" in report
    if HAVE_TEX:
        assert (work / OUT / "paper/report.pdf").is_file()

    # Under on_divergence: fail the same job fails, Snakemake deletes its files and shows its log;
    # with --keep-going an independent job (small ReLU, its history deleted) still runs, and no
    # other file is touched. Back under the default, a rerun makes exactly what is missing (Table 1
    # deleted too: Snakemake remakes a missing file only where a missing or outdated result needs it).
    fail = write_yaml(tmp_path / "fail.yaml", {"on_divergence": "fail"})
    histories = {(s, a): work / train_dir(s, a) / "history.csv" for s in SIZES for a in ACTIVATIONS}
    histories[("small", "relu")].unlink()
    rerun = {("small", "fourier"), ("small", "relu")}
    kept = {key: path.stat().st_mtime_ns for key, path in histories.items() if key not in rerun}
    table1_csv = work / OUT / "tables/table1.csv"
    table1_csv.unlink()
    small = [f"{train_dir('small', a)}/history.csv" for a in ("fourier", "relu")]
    failed = snakemake(work, "--cores", "2", "--keep-going", "--force", *small, *smoke_with(diverge, fail))
    assert failed.returncode != 0
    assert "Error in rule train" in failed.stderr
    assert (
        f"{OUT}/train/small-fourier/seed0: the training loss became non-finite in epoch 2"
    ) in failed.stdout + failed.stderr
    assert not histories[("small", "fourier")].exists()  # a failed job's outputs are removed
    assert histories[("small", "relu")].is_file()  # ran despite the failure
    assert {key: histories[key].stat().st_mtime_ns for key in kept} == kept
    assert not table1_csv.exists()

    finished = snakemake(work, "--cores", "2", *smoke_with(diverge), timeout=1200)
    assert finished.returncode == 0, finished.stderr[-5000:]
    assert {key: histories[key].stat().st_mtime_ns for key in kept} == kept
    assert [r["status"] for r in read_rows(histories[("small", "fourier")])] == ["ok", "diverged"]
    assert {
        (row["size"], row["activation"]) for row in read_rows(table1_csv) if row["n_diverged"] == "1"
    } == diverged
    assert plan(work, configfiles=(diverge,)) == {}
