# Shared definitions of the workflow: the config check, the shell prefix of every job, the
# output paths, the config slices and code digests that the jobs carry in their params, and the
# captions of the HTML report. The logic is library code, tested there: the config check
# (trainact.config_check), the digests (trainact.sourcegraph), the slices, the sensitivity
# study's roots and the run files (trainact.workflow_plan), the results layout and names
# (trainact.layout, trainact.names, trainact.report.figure_list).
#
# Reruns follow Snakemake's rerun triggers (mtime, params, input, software-env, code). Every
# job's params hold exactly the config slice it uses, as canonical JSON, plus the sha256 of the
# trainact code its command runs: a changed setting or an edited module reruns exactly the jobs
# that use it, and everything downstream. Touching files reruns nothing (the default workflow
# profile, workflow/profiles/default, raises --max-checksum-file-size above every input). Nothing
# reads `snakemake.config` at job time: every command gets its slice through --params. Nothing is
# written while the workflow is parsed.

import importlib.util
import os
import shlex
import shutil
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

REPO = Path(workflow.basedir)
SRC = REPO / "src"
SCHEMA_FILE = REPO / "workflow" / "schemas" / "config.schema.yaml"
# The library's torch-free modules are imported from the repository's source, whether or not
# trainact is installed here.
sys.path.insert(0, str(SRC))
from trainact import layout, names, run_files, workflow_plan as plan
from trainact.config_check import config_errors
from trainact.report import captions, figure_list
from trainact.sourcegraph import FAMILY_ENTRY, code_digest
from trainact.training.divergence import DIVERGENCE_ENV

canonical = plan.canonical


def check_config(cfg):
    """Validate `cfg` and fill in the schema's defaults, or stop before any job runs."""
    lines = config_errors(
        cfg,
        yaml.safe_load(SCHEMA_FILE.read_text()),
        lambda c: validate(c, str(SCHEMA_FILE)),
    )
    if lines:
        raise WorkflowError(
            "invalid config (workflow/schemas/config.schema.yaml describes every key):\n  "
            + "\n  ".join(lines)
        )


check_config(config)

# The digest of the trainact code each command family runs (the AST without docstrings).
CODE = {family: code_digest(family) for family in FAMILY_ENTRY}

# ---------------------------------------------------------------------------------- job shell
#
# Jobs run `python -m trainact` with src/ first on PYTHONPATH, so the code that runs is the code
# whose digest is in the params. `python` is this interpreter when it has torch (the project's
# .venv), else the one on PATH (the conda env of envs/ under --sdm conda). The device policy
# and the divergence policy (on_divergence: whether a diverged run fails its job,
# trainact.training.divergence) reach the jobs through the environment, not their params or
# command text: they change no result, so switching them reruns nothing.
# The long jobs (training, autoencoder, PSO) `exec` their command: the job is then trainact
# itself, not a bash that dies at SIGTERM and makes Snakemake (and SLURM's step) end while
# trainact still writes its checkpoint (trainact.training.interrupt).
PYTHON_BIN = ""
if not workflow.deployment_settings.deployment_method:
    if importlib.util.find_spec("torch") is not None:
        PYTHON_BIN = (
            f"export PATH={shlex.quote(str(Path(sys.executable).parent))}:$PATH; "
        )
shell.prefix(
    "set -euo pipefail; "
    + PYTHON_BIN
    + f"export PYTHONPATH={shlex.quote(str(SRC))}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
    + f"export TRAINACT_DEVICE={shlex.quote(config['devices']['policy'])}; "
    + f"export {DIVERGENCE_ENV}={shlex.quote(config['on_divergence'])}; "
)

# GPU slots: every GPU job takes one. `--resources gpu=N` gives N x devices.jobs_per_gpu slots
# (each job claims a free slot itself: trainact.training.gpu_slots.claim_gpu); `--resources
# gpu_slots=K` sets them directly; on SLURM every job gets its own GPU from sbatch.
if "gpu" in workflow.global_resources and "gpu_slots" not in workflow.global_resources:
    _gpus = workflow.global_resources["gpu"].value
    if isinstance(_gpus, int):
        workflow.register_resource(
            "gpu_slots", _gpus * config["devices"]["jobs_per_gpu"]
        )

# ------------------------------------------------------------------------------------- paths

OUT = config["results"]
SIZES, ACTIVATIONS = config["experiment"]["sizes"], config["experiment"]["activations"]
SYNTHETIC = config["dataset"]["synthetic"]
LOGS = f"{OUT}/logs"
BENCHMARKS = f"{OUT}/benchmarks"
SYNTHETIC_ARCHIVE = f"{OUT}/data/synthetic/cifar-10-python.tar.gz"
# Downloaded archives are shared by every results folder, keyed by md5 and file name.
DOWNLOADED_ARCHIVE = f"resources/archives/{config['dataset']['md5']}/{plan.url_basename(config['dataset']['url'])}"
ARCHIVE = SYNTHETIC_ARCHIVE if SYNTHETIC is not None else DOWNLOADED_ARCHIVE
PREPARED = f"{OUT}/data/cifar10.npz"
RUN_DIR = layout.train_run_dir("{size}", "{activation}", "{seed}")
TRAIN_DIR = f"{OUT}/{RUN_DIR}"
VARIANT_TRAIN_DIR = f"{OUT}/sensitivity/{{variant}}/{RUN_DIR}"
TRUNK_DIR = f"{OUT}/schedule_axis/trunk/{RUN_DIR}"
BRANCH_DIR = f"{OUT}/schedule_axis/L{{first_phase}}/{RUN_DIR}"
AE_DIR = f"{OUT}/{layout.autoencoder_run_dir('{seed}')}"
PSO_DIR = f"{OUT}/{layout.pso_run_dir('{seed}')}"
TABLES = f"{OUT}/{layout.TABLES_DIR}"
FIGURES = f"{OUT}/{layout.FIGURES_DIR}"
PAPER = f"{OUT}/{layout.PAPER_REPORT_DIR}"
PROVENANCE = f"{OUT}/provenance.json"
TABLE_FILES = {name: f"{TABLES}/{name}" for name in layout.TABLE_FILES}
SENSITIVITY_FILES = [f"{TABLES}/{name}" for name in layout.SENSITIVITY_FILES]
SCHEDULE_AXIS_FILES = [f"{TABLES}/{name}" for name in layout.SCHEDULE_AXIS_FILES]
SCHEDULE_AXIS_FIGURES = [
    f"{FIGURES}/{layout.SCHEDULE_AXIS_FIGURE}.{ext}" for ext in ("png", "pdf")
]
# The figures trainact.report.figures draws for this config (with the Section 5 experiments).
FIGURE_STEMS = [
    stem
    for stems in figure_list.figure_stems(
        figure_list.figure_groups(ACTIVATIONS, autoencoder=True, pso=True), SIZES
    ).values()
    for stem in stems
]
FIGURE_FILES = [
    f"{FIGURES}/{stem}.{ext}" for stem in FIGURE_STEMS for ext in ("png", "pdf")
]
# The report's Jinja templates (inputs: editing them reruns the report), and its pdf where a
# TeX engine is (latexmk and pdflatex).
PAPER_REPORT_TEMPLATES = [
    os.path.relpath(REPO / "paper" / n) for n in ("report.md.j2", "report.tex.j2")
]
HAVE_TEX = all(shutil.which(tool) for tool in ("latexmk", "pdflatex"))
PAPER_PDF = [f"{PAPER}/report.pdf"] if HAVE_TEX else []
PAPER_FILES = [f"{PAPER}/report.md", f"{PAPER}/report.tex", *PAPER_PDF]

# ------------------------------------------------------------------------ training jobs
#
# One job per network and seed, or with devices.pack_seeds one job per network for all seeds (a
# pack, trainact.training.pack). Both write the same files, run the same command text and carry
# the same non-derived params (the slice and the code digest; the seeds and folders are derived
# from the outputs), so Snakemake sees no change when the setting switches.
PACK_SEEDS = config["devices"]["pack_seeds"]
# CPU threads of every GPU job (training, autoencoder, PSO); --cores N runs N / JOB_THREADS at once.
JOB_THREADS = config["devices"]["threads_per_job"]
SEEDS = config["experiment"]["seeds"]
TRAIN_COMMAND = (
    "exec python -m trainact train --data {input.data:q} --size {wildcards.size}"
    " --activation {wildcards.activation} --seed {params.seeds} --params {params.slice:q}"
    " --out-dir {params.out_dirs:q} --no-progress > {log:q} 2>&1"
)
# What names a training job's log and benchmark: its seed, or its pack's seeds (seed0-1-2).
JOB_SEEDS = "seed" + "-".join(map(str, SEEDS)) if PACK_SEEDS else "seed{seed}"


def run_outputs(run_dir, files):
    """A training job's outputs: each of `files` (name: file in the run folder) in `run_dir`,
    for the job's {seed}, or for every seed of the pack."""
    if PACK_SEEDS:
        return {
            name: expand(f"{run_dir}/{file}", seed=SEEDS, allow_missing=True)
            for name, file in files.items()
        }
    return {name: f"{run_dir}/{file}" for name, file in files.items()}


def job_seeds(wildcards, output):
    """The seeds a training job trains, in the order of its folders (a derived param)."""
    return [wildcards.seed] if "seed" in wildcards.keys() else SEEDS


def job_out_dirs(wildcards, output):
    """The run folders of a training job, one per seed (a derived param)."""
    histories = [output.history] if isinstance(output.history, str) else output.history
    return [os.path.dirname(path) for path in histories]


# ------------------------------------------------------------------------ config slices, inputs

DOWNLOAD_SLICE, PREPARE_SLICE = plan.data_slices(config).values()
SECTION5_SLICES = plan.section5_slices(config)
ANALYSIS_PARAMS = plan.analysis_params(config)
SENSITIVITY = plan.sensitivity_plan(config)
SENSITIVITY_PARAMS = plan.sensitivity_params(config, SENSITIVITY)
SCHEDULE_AXIS_PARAMS = plan.schedule_axis_params(config)
AXIS_BRANCHES = plan.schedule_axis_branches(config)


def train_params(wc):
    """The slice of a training job: rule train's, or train_variant's with its variant's settings."""
    model, train = (
        SENSITIVITY.settings(wc.variant)
        if "variant" in wc.keys()
        else (config["model"], config["train"])
    )
    return canonical(plan.train_slice(model, train, wc.size, wc.activation))


def trunk_params(wc):
    return canonical(plan.trunk_slice(config, wc.size, wc.activation))


def branch_params(wc):
    return canonical(plan.branch_slice(config, wc.size, wc.activation, wc.first_phase))


# The run files the analysis reads (the main grid's where the study or the axis reuses them).
RESULT_INPUTS = plan.result_inputs(config)
TRAIN_SUMMARIES = plan.grid_run_files(config, ["summary.json"])
FIGURE_ACTIVATION_INPUTS = plan.grid_run_files(
    config, ["activations.json", "activation_health.csv"], trainable_only=True
)
SENSITIVITY_INPUTS = plan.sensitivity_inputs(config, SENSITIVITY)
SCHEDULE_AXIS_INPUTS = plan.schedule_axis_inputs(config)
RUN_SUMMARIES = plan.run_summaries(config, SENSITIVITY)

# -------------------------------------------------------------------------------- captions
#
# The captions of Snakemake's HTML report are trainact.report.captions' (the paper report shows
# the same text): workflow/html_report/captions/<name>.rst, generated from it (`make captions`;
# tests/workflow/test_html_report_captions.py checks that they match) and committed, so that
# parsing the workflow writes nothing.
CAPTION_DIR = REPO / "workflow" / "html_report" / "captions"


def caption(name):
    """The caption file of result `name` (a figure stem or a trainact.report.captions.CAPTIONS key)."""
    if name not in captions.CAPTIONS:
        raise WorkflowError(f"no caption for {name!r} in trainact.report.captions")
    return str(CAPTION_DIR / f"{name}.rst")
