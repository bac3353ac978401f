# Shared definitions of the workflow: what the rules read (output paths from
# trainact.layout, trainact.names, trainact.report.figure_list and captions, the config slices and code digests that the jobs carry in their params,
# the captions of the HTML report) and the shell prefix of every job. The config check, the
# digests and the paper's facts are library code (trainact.config_check, trainact.sourcegraph,
# trainact.layout, trainact.names, trainact.report.figure_list and captions), tested there.
#
# Reruns follow Snakemake's rerun triggers (mtime, params, input, software-env, code). Every
# job's params hold exactly the config slice it uses, as canonical JSON (sorted keys, so that
# reordering keys in a config file changes nothing), plus the sha256 of the trainact source
# files its command runs. So a changed setting or an edited module reruns exactly the jobs that
# use it, and everything downstream of them. Touching files reruns nothing: the default
# workflow profile (workflow/profiles/default, found through the top-level `profiles` link)
# raises --max-checksum-file-size above the size of every input, so an input that is newer
# than an output but has the content recorded when the output was made does not count as
# changed.
#
# Nothing reads `snakemake.config` at job time: every command gets its slice through --params
# (file paths through flags).

import importlib.util
import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

REPO = Path(workflow.basedir)
SRC = REPO / "src"
SCHEMA_FILE = REPO / "workflow" / "schemas" / "config.schema.yaml"
# The library's torch-free modules (config check, paper facts, source graph) are imported from
# the repository's source, whether or not trainact is installed here.
sys.path.insert(0, str(SRC))
from trainact import layout
from trainact.report import captions, figure_list
from trainact.training import schedules
from trainact.config_check import config_errors, merged

# ----------------------------------------------------------------------------- config checks


def check_config(cfg):
    """Validate `cfg` (trainact.config_check) and fill in the schema's defaults, or stop
    before any job runs."""
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

# ------------------------------------------------------------------------------- code digests

# trainact.sourcegraph (which imports nothing of the package but its __init__) names the module
# of each command family, follows its imports and hashes the files (and the data files they
# read). tests/test_reruns.py checks its boundaries (the training jobs do not run the download
# code).
from trainact.sourcegraph import FAMILY_ENTRY, code_digest

CODE = {family: code_digest(family) for family in FAMILY_ENTRY}

# ---------------------------------------------------------------------------------- job shell
#
# Jobs run `python -m trainact` with the repository's src/ first on PYTHONPATH, so the code that
# runs is the code whose digest is in the params, with or without an installed copy, in the
# project's virtual environment or in the conda env of envs/ (--sdm conda). When Snakemake
# itself runs in an environment that has torch (the project's .venv), `python` is that
# interpreter even if the environment is not activated; otherwise it is the one on PATH (the
# conda env under --sdm conda, or an activated environment).
#
# A job that reruns after a crash resumes from the checkpoint in its output folder only when that
# was written under the same settings, code and input files (trainact.training.checkpoints.run_identity);
# the library decides, so a job started by hand follows the same rule.

# With --sdm conda (or apptainer) the job's environment brings python.
SOFTWARE_DEPLOYMENT = bool(workflow.deployment_settings.deployment_method)
PYTHON_BIN = ""
if not SOFTWARE_DEPLOYMENT and importlib.util.find_spec("torch") is not None:
    PYTHON_BIN = f"export PATH={shlex.quote(str(Path(sys.executable).parent))}:$PATH; "
# The device policy reaches the jobs through the environment (trainact.training.device.DEVICE_ENV), not
# their params or command text: it changes no result, so changing it reruns nothing.
DEVICE_POLICY = f"export TRAINACT_DEVICE={shlex.quote(config['devices']['policy'])}; "
shell.prefix(
    "set -euo pipefail; "
    + PYTHON_BIN
    + f"export PYTHONPATH={shlex.quote(str(SRC))}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
    + DEVICE_POLICY
)

# ------------------------------------------------------------------------------ GPU slots
#
# Every GPU job (training, autoencoder, PSO) takes one `gpu_slots`. The user says how many GPUs
# there are, `--resources gpu=N` (the default workflow profile says 1); the slots are
# N x devices.jobs_per_gpu, so that several small networks share each GPU, and each job then
# claims a free slot of one GPU itself (trainact.training.gpu_slots.claim_gpu: the GPUs fill evenly).
# `--resources gpu_slots=K` sets the slots directly. On SLURM no global `gpu` is given: every
# job gets its own GPU from sbatch (workflow/profiles/slurm sets `gpu: 1` per GPU rule).
GPU_SLOTS_PER_GPU = config["devices"]["jobs_per_gpu"]
if "gpu" in workflow.global_resources and "gpu_slots" not in workflow.global_resources:
    _gpus = workflow.global_resources["gpu"].value
    if isinstance(_gpus, int):
        workflow.register_resource("gpu_slots", _gpus * GPU_SLOTS_PER_GPU)

# --------------------------------------------------------------------------- small helpers


def canonical(value):
    """The canonical JSON text of a config slice: sorted keys, no whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def url_basename(url):
    """File name of the archive at `url` (`archive.tar.gz` when the URL names none)."""
    return os.path.basename(unquote(urlparse(url).path)) or "archive.tar.gz"


# -------------------------------------------------------------------------------- the config

OUT = config["results"]
EXP = config["experiment"]
SIZES, ACTIVATIONS, SEEDS = EXP["sizes"], EXP["activations"], EXP["seeds"]
AE_MODEL = (config["autoencoder"]["size"], config["autoencoder"]["activation"])
PSO_MODEL = (config["pso"]["size"], config["pso"]["activation"])
DATASET = config["dataset"]
SYNTHETIC = DATASET["synthetic"]


def model_slice(size, activation, model=None):
    """The part of `model` (default: the config's) that one network uses: its own filters, the
    input preprocessing, and only its activation's settings (a ReLU network does not rerun when
    the Fourier settings change). The controls' keys join only when they change the network
    (init other than pytorch; relu_gain for the ReLU network, with the LC settings that give its
    gains' shape), so the slices of the runs made before those keys existed stay as they were.
    """
    model = config["model"] if model is None else model
    used = {
        "hidden": model["hidden"],
        "filters": {size: model["filters"][size]},
        "preprocessing": model["preprocessing"],
    }
    if model["init"] != "pytorch":
        used["init"] = model["init"]
    if activation != "relu":
        used["impl"] = model["impl"]
        used[activation] = model[activation]
    elif model["relu_gain"]:
        used["relu_gain"] = True
        used["lc"] = {key: model["lc"][key] for key in ("candidates", "per_channel")}
    return used


def train_slice(size, activation, model=None, train=None):
    """What one training job uses: its model slice and the train settings (default: the
    config's), without activation_lr_scale where the network has no activation parameters
    (a plain ReLU network trains the same under every scale, so its runs are reused)."""
    model = config["model"] if model is None else model
    train = config["train"] if train is None else train
    if activation == "relu" and not model["relu_gain"]:
        train = {k: v for k, v in train.items() if k != "activation_lr_scale"}
    return {"model": model_slice(size, activation, model), "train": train}


DOWNLOAD_SLICE = {key: DATASET[key] for key in ("url", "md5")}
PREPARE_SLICE = {
    key: DATASET[key]
    for key in (
        "train_per_class",
        "test_per_class",
        "validation_per_class",
        "subset_seed",
    )
}
AE_PRETRAIN_SLICE = {
    "model": model_slice(*AE_MODEL),
    "autoencoder": config["autoencoder"],
}
AE_FINETUNE_SLICE = {**AE_PRETRAIN_SLICE, "train": config["train"]}
PSO_SLICE = {"model": model_slice(*PSO_MODEL), "pso": config["pso"]}
# Sensitivity study: every (initialisation, preprocessing) combination is a variant with its own
# model and train config (an entry's model and train settings merged over the config's). Per
# variant and activation the runs live under a root: the main results when the networks'
# settings (train_slice) equal the main grid's, else an earlier variant's root with equal
# settings, else <out>/sensitivity/<variant> (so nothing is trained twice).
SENSITIVITY = config["sensitivity"]
SENS_SIZES, SENS_ACTIVATIONS = SENSITIVITY["sizes"], SENSITIVITY["activations"]


def sensitivity_variants():
    """[(name, initialisation, preprocessing, model config, train config)] of the study (empty
    when off)."""
    if not SENSITIVITY["enabled"]:
        return []
    return [
        (
            f"{entry['name']}+{prep}",
            entry["name"],
            prep,
            merged(
                merged(config["model"], entry.get("model", {})), {"preprocessing": prep}
            ),
            merged(config["train"], entry.get("train", {})),
        )
        for entry in SENSITIVITY["initialisations"]
        for prep in SENSITIVITY["preprocessing"]
    ]


def sensitivity_roots(variants):
    """variant name -> activation -> results root holding that variant's runs (see above)."""

    def slices(model, train, activation):
        return [
            canonical(train_slice(size, activation, model, train))
            for size in SENS_SIZES
        ]

    roots = {}
    for name, _, _, model, train in variants:
        roots[name] = {}
        for activation in SENS_ACTIVATIONS:
            own = slices(model, train, activation)
            same = [OUT] if own == slices(None, None, activation) else []
            same += [
                roots[other][activation]
                for other, _, _, other_model, other_train in variants
                if other in roots
                and other != name
                and slices(other_model, other_train, activation) == own
            ]
            roots[name][activation] = same[0] if same else f"{OUT}/sensitivity/{name}"
    return roots


SENS_VARIANTS = sensitivity_variants()
SENS_ROOTS = sensitivity_roots(SENS_VARIANTS)
# variant name -> (model config, train config): what rule train_variant's jobs use.
VARIANT_SETTINGS = {name: (model, train) for name, _, _, model, train in SENS_VARIANTS}
# The variant that is the main grid itself; without one, the main grid joins as "main".
_reference = [
    n
    for n, *_ in SENS_VARIANTS
    if all(SENS_ROOTS[n][a] == OUT for a in SENS_ACTIVATIONS)
]
SENS_SPEC_VARIANTS = [
    {
        "name": name,
        "initialisation": init,
        "preprocessing": prep,
        "roots": SENS_ROOTS[name],
    }
    for name, init, prep, *_ in SENS_VARIANTS
]
if SENS_VARIANTS and not _reference:
    SENS_SPEC_VARIANTS.insert(
        0,
        {
            "name": "main",
            "initialisation": "main",
            "preprocessing": config["model"]["preprocessing"],
            "roots": {a: OUT for a in SENS_ACTIVATIONS},
        },
    )
# What trainact.analysis.claims.preview_reasons judges, for the claims of aggregate and of the study.
CLAIM_SETTINGS = {"train": config["train"], "dataset": config["dataset"]}
SENSITIVITY_PARAMS = {
    "sizes": SENS_SIZES,
    "activations": SENS_ACTIVATIONS,
    "seeds": SEEDS,
    "reference": (_reference or ["main"])[0],
    "settings": CLAIM_SETTINGS,
    "variants": SENS_SPEC_VARIANTS if SENS_VARIANTS else [],
}

# Schedule axis (config `schedule_axis`, trainact.training.schedules): per L of first_phase_epochs, the
# networks trained L epochs at the first learning rate and then the tail. A point whose schedule
# is the train config's own is the main grid (nothing trained for it); every other point is a
# branch from the snapshot after epoch L of one trunk per network and seed.
AXIS = config["schedule_axis"]
AXIS_SIZES, AXIS_ACTIVATIONS = AXIS["sizes"], AXIS["activations"]
AXIS_BRANCHES = (
    schedules.branch_points(config["train"], AXIS) if AXIS["enabled"] else []
)
AXIS_POINTS = [
    {
        "first_phase": L,
        "root": f"{OUT}/schedule_axis/L{L}" if L in AXIS_BRANCHES else OUT,
        "train": schedules.branch_train(config["train"], AXIS, L),
    }
    for L in (AXIS["first_phase_epochs"] if AXIS["enabled"] else [])
]
SCHEDULE_AXIS_PARAMS = {
    "sizes": AXIS_SIZES,
    "activations": AXIS_ACTIVATIONS,
    "seeds": SEEDS,
    "points": AXIS_POINTS,
    # The paper's own schedule: the main grid, trained with the train config.
    "reference": {"root": OUT, "train": config["train"]},
    "settings": CLAIM_SETTINGS,
}


def trunk_slice(size, activation):
    return {
        "model": model_slice(size, activation),
        "train": schedules.trunk_train(config["train"], AXIS),
    }


def branch_slice(size, activation, first_phase):
    return {
        "model": model_slice(size, activation),
        "train": schedules.branch_train(config["train"], AXIS, int(first_phase)),
    }


# What aggregate, figures and report are told to expect. The Section 5 experiments run for
# every seed of the grid.
GRID = {
    "sizes": SIZES,
    "activations": ACTIVATIONS,
    "seeds": SEEDS,
    "autoencoder_seeds": SEEDS,
    "pso_seeds": SEEDS,
}
# aggregate also judges the paper's claims: the settings that make a verdict a preview.
AGGREGATE_PARAMS = {**GRID, "settings": CLAIM_SETTINGS}
FIGURE_PARAMS = {
    **GRID,
    "model": config["model"],
    "activation_range": config["figures"]["activation_range"],
}
# The report lists the whole config, under the preset's name, but for `devices` (where the jobs
# ran changes no result; the report shows the devices the runs used, from provenance).
PAPER_REPORT_PARAMS = {
    **FIGURE_PARAMS,
    "preset": config["report"]["preset"],
    "settings": {key: value for key, value in config.items() if key != "devices"},
}

# -------------------------------------------------------------------------------------- paths

LOGS = f"{OUT}/logs"
BENCHMARKS = f"{OUT}/benchmarks"
SYNTHETIC_ARCHIVE = f"{OUT}/data/synthetic/cifar-10-python.tar.gz"
# Downloaded archives are shared by every results folder and keyed by md5 and file name, so
# two URLs or two checksums never collide.
DOWNLOADED_ARCHIVE = (
    f"resources/archives/{DATASET['md5']}/{url_basename(DATASET['url'])}"
)
ARCHIVE = SYNTHETIC_ARCHIVE if SYNTHETIC is not None else DOWNLOADED_ARCHIVE
PREPARED = f"{OUT}/data/cifar10.npz"
# The results layout is trainact.layout, trainact.names, trainact.report.figure_list and captions' (the aggregation and figures read the same).
RUN_WILDCARDS = ("{size}", "{activation}", "{seed}")
TRAIN_DIR = f"{OUT}/{layout.train_run_dir(*RUN_WILDCARDS)}"
VARIANT_TRAIN_DIR = (
    f"{OUT}/sensitivity/{{variant}}/{layout.train_run_dir(*RUN_WILDCARDS)}"
)
AE_DIR = f"{OUT}/{layout.autoencoder_run_dir('{seed}')}"
PSO_DIR = f"{OUT}/{layout.pso_run_dir('{seed}')}"
TABLES = f"{OUT}/{layout.TABLES_DIR}"
FIGURES = f"{OUT}/{layout.FIGURES_DIR}"
PAPER = f"{OUT}/{layout.PAPER_REPORT_DIR}"
PROVENANCE = f"{OUT}/provenance.json"
TRUNK_DIR = f"{OUT}/schedule_axis/trunk/{layout.train_run_dir(*RUN_WILDCARDS)}"
BRANCH_DIR = (
    f"{OUT}/schedule_axis/L{{first_phase}}/{layout.train_run_dir(*RUN_WILDCARDS)}"
)


def train_file(name, size, activation, seed, root=OUT):
    return f"{root}/{layout.train_run_dir(size, activation, seed)}/{name}"


EXPERIMENT_MODELS = [(s, a) for s in SIZES for a in ACTIVATIONS]
# The autoencoder's baseline and PSO's reference are ordinary training runs, in the grid or not.
ALL_MODELS = list(dict.fromkeys(EXPERIMENT_MODELS + [AE_MODEL, PSO_MODEL]))
RESULT_INPUTS = {
    "train": [
        train_file("history.csv", s, a, seed) for s, a in ALL_MODELS for seed in SEEDS
    ],
    "pretrain": [
        f"{OUT}/{layout.autoencoder_run_dir(seed)}/pretrain.csv" for seed in SEEDS
    ],
    "finetune": [
        f"{OUT}/{layout.autoencoder_run_dir(seed)}/finetune/history.csv"
        for seed in SEEDS
    ],
    "pso": [f"{OUT}/{layout.pso_run_dir(seed)}/history.csv" for seed in SEEDS],
}
# The grid's run summaries: Table 1 states each network's parameters, steps, time and device.
TRAIN_SUMMARIES = [
    train_file("summary.json", s, a, seed)
    for s, a in EXPERIMENT_MODELS
    for seed in SEEDS
]
# Every history the sensitivity study reads (the main grid's where a variant reuses them).
SENSITIVITY_INPUTS = sorted(
    {
        train_file("history.csv", size, a, seed, root=variant["roots"][a])
        for variant in SENS_SPEC_VARIANTS
        for a in SENS_ACTIVATIONS
        for size in SENS_SIZES
        for seed in SEEDS
    }
    if SENS_VARIANTS
    else []
)
# Every history (and run summary) the schedule axis reads: its branches' and the main grid's.
SCHEDULE_AXIS_INPUTS = sorted(
    {
        train_file(name, size, a, seed, root=point["root"])
        for point in AXIS_POINTS + [SCHEDULE_AXIS_PARAMS["reference"]]
        for a in AXIS_ACTIVATIONS
        for size in AXIS_SIZES
        for seed in SEEDS
        for name in ("history.csv", "summary.json")
    }
    if AXIS_POINTS
    else []
)
SCHEDULE_AXIS_FILES = [f"{TABLES}/{name}" for name in layout.SCHEDULE_AXIS_FILES]
SCHEDULE_AXIS_FIGURES = [
    f"{FIGURES}/{layout.SCHEDULE_AXIS_FIGURE}.{ext}" for ext in ("png", "pdf")
]
# The summary.json of every training, fine-tuning and PSO run (their devices, for provenance).
RUN_SUMMARIES = sorted(
    {
        os.path.join(os.path.dirname(path), "summary.json")
        for path in RESULT_INPUTS["train"]
        + RESULT_INPUTS["finetune"]
        + RESULT_INPUTS["pso"]
        + SENSITIVITY_INPUTS
        + [p for p in SCHEDULE_AXIS_INPUTS if p.endswith("history.csv")]
    }
)
SENSITIVITY_FILES = [f"{TABLES}/{name}" for name in layout.SENSITIVITY_FILES]
TABLE_FILES = {name: f"{TABLES}/{name}" for name in layout.TABLE_FILES}

# The figures trainact.report.figures draws for this config (every run has the Section 5 experiments).
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
FIGURE_ACTIVATION_INPUTS = [
    train_file(name, s, a, seed)
    for s, a in EXPERIMENT_MODELS
    if a != "relu"
    for seed in SEEDS
    for name in ("activations.json", "activation_health.csv")
]

# The report's Jinja templates live in paper/ beside the Snakefile; as inputs, editing them
# reruns the report.
PAPER_REPORT_TEMPLATES = [
    os.path.relpath(REPO / "paper" / name) for name in ("report.md.j2", "report.tex.j2")
]
# The paper report's pdf exists only where a TeX engine does (trainact.report.paper_report builds it with
# latexmk and pdflatex).
HAVE_TEX = all(shutil.which(tool) for tool in ("latexmk", "pdflatex"))
PAPER_PDF = [f"{PAPER}/report.pdf"] if HAVE_TEX else []
PAPER_FILES = [f"{PAPER}/report.md", f"{PAPER}/report.tex", *PAPER_PDF]

# ------------------------------------------------------------------------------ captions
#
# The captions of Snakemake's HTML report are trainact.layout, trainact.names, trainact.report.figure_list and captions' (the paper report shows the
# same text). Snakemake reads a caption from a reStructuredText file, so each is written to
# .snakemake/trainact/captions/<name>.rst when the workflow is parsed (only when its text
# changed); `report(..., caption=caption("fig9"))` names it.
CAPTION_DIR = Path(".snakemake", "trainact", "captions").resolve()


def caption(name):
    """The caption file of result `name` (a figure stem or a trainact.report.captions.CAPTIONS key)."""
    path = CAPTION_DIR / f"{name}.rst"
    text = captions.caption_rst(name)
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(text)
        tmp.replace(path)
    return str(path)
