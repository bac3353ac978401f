# Shared definitions of the workflow: config validation, output paths, the config slices and
# code digests that the jobs carry in their params, and the shell prefix of every job.
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

import hashlib
import importlib.util
import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import jsonschema
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

REPO = Path(workflow.basedir)
SCHEMA_FILE = REPO / "workflow" / "schemas" / "config.schema.yaml"

# ----------------------------------------------------------------------------- config checks


def dotted(path):
    """`train.learning_rates.0` for the path of a value inside the config."""
    return ".".join(str(part) for part in path) or "<config>"


def schema_errors(cfg, schema):
    """One line per value that breaks the schema, naming the key and the value."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: [str(p) for p in e.path])
    return [f"{dotted(e.path)} = {e.instance!r}: {e.message}" for e in errors]


def semantic_errors(cfg):
    """Checks that span several keys, which JSON Schema does not express."""
    lines = []
    train = cfg["train"]
    boundaries, rates = train["lr_boundaries"], train["learning_rates"]
    if len(rates) != len(boundaries) + 1:
        lines.append(
            f"train.learning_rates = {rates!r}: needs one more entry than "
            f"train.lr_boundaries = {boundaries!r}"
        )
    if list(boundaries) != sorted(set(boundaries)):
        lines.append(
            f"train.lr_boundaries = {boundaries!r}: must be strictly increasing"
        )
    # trainact.aggregate and trainact.figures compare the Section 5 runs with these models.
    for section, model in (("autoencoder", "middle-fourier"), ("pso", "middle-relu")):
        size, activation = cfg[section]["size"], cfg[section]["activation"]
        if f"{size}-{activation}" != model:
            lines.append(
                f"{section}.size/activation = {size}/{activation}: the aggregation and "
                f"figures support only the paper's {model} here"
            )
    return lines


def merged(base, override):
    """`base` with `override` merged in, nested mappings key by key (neither is changed)."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def sensitivity_errors(cfg, schema):
    """Each sensitivity initialisation, merged over `model`, must be a valid model section."""
    model_schema = {**schema["properties"]["model"], "$defs": schema.get("$defs", {})}
    lines = []
    names = [entry["name"] for entry in cfg["sensitivity"]["initialisations"]]
    for name in sorted({n for n in names if names.count(n) > 1}):
        lines.append(
            f"sensitivity.initialisations: the name {name!r} is used more than once"
        )
    for entry in cfg["sensitivity"]["initialisations"]:
        for line in schema_errors(merged(cfg["model"], entry["model"]), model_schema):
            lines.append(
                f"sensitivity.initialisations.{entry['name']} (merged over model): {line}"
            )
    return lines


def check_config(cfg):
    """Validate `cfg` against the schema and fill in its defaults, or stop before any job runs."""
    schema = yaml.safe_load(SCHEMA_FILE.read_text())
    lines = schema_errors(cfg, schema)
    if not lines:
        # Snakemake's validate() fills in the schema's defaults, nested ones too.
        validate(cfg, str(SCHEMA_FILE))
        lines = semantic_errors(cfg) + sensitivity_errors(cfg, schema)
    if lines:
        raise WorkflowError(
            "invalid config (workflow/schemas/config.schema.yaml describes every key):\n  "
            + "\n  ".join(lines)
        )


check_config(config)

# ------------------------------------------------------------------------------- code digests

SRC = REPO / "src"
# The import graph and the digests are read from the repository's source: trainact.sourcegraph
# (which imports nothing of the package but its __init__) names the module of each command
# family, follows its imports and hashes the files (and the data files they read), whether or
# not trainact is installed here. tests/test_reruns.py checks its boundaries (the training jobs
# do not run the download code).
sys.path.insert(0, str(SRC))
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
# fresh_start DIR KEY FILE...: the long jobs resume from their checkpoint in DIR after a crash.
# A checkpoint is only valid for the same settings, code and inputs, so the job's KEY (from its
# config slice and code digest) and the sha256 of its input FILEs are kept in DIR/run-key.txt,
# and a checkpoint written under another key is deleted before the command starts.

# Snakemake formats the prefix like a shell command: literal braces are doubled.
RUN_KEY_FILE = "run-key.txt"
FRESH_START = (
    "fresh_start() {{ "
    'local dir="$1" key="$2"; shift 2; '
    'key="$key $(sha256sum "$@" | cut -c1-64 | tr "\\n" " ")"; '
    'mkdir -p "$dir"; '
    f'if [ "$(cat "$dir/{RUN_KEY_FILE}" 2>/dev/null)" != "$key" ]; then '
    'rm -f "$dir"/*checkpoint.pt; fi; '
    f'printf "%s\\n" "$key" > "$dir/{RUN_KEY_FILE}"; '
    "}}; "
)
# With --sdm conda (or apptainer) the job's environment brings python.
SOFTWARE_DEPLOYMENT = bool(workflow.deployment_settings.deployment_method)
PYTHON_BIN = ""
if not SOFTWARE_DEPLOYMENT and importlib.util.find_spec("torch") is not None:
    PYTHON_BIN = f"export PATH={shlex.quote(str(Path(sys.executable).parent))}:$PATH; "
# The device policy reaches the jobs through the environment (trainact.runtime.DEVICE_ENV), not
# their params or command text: it changes no result, so changing it reruns nothing.
DEVICE_POLICY = f"export TRAINACT_DEVICE={shlex.quote(config['devices']['policy'])}; "
shell.prefix(
    "set -euo pipefail; "
    + PYTHON_BIN
    + f"export PYTHONPATH={shlex.quote(str(SRC))}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
    + DEVICE_POLICY
    + FRESH_START
)

# ------------------------------------------------------------------------------ GPU slots
#
# Every GPU job (training, autoencoder, PSO) takes one `gpu_slots`. The user says how many GPUs
# there are, `--resources gpu=N` (the default workflow profile says 1); the slots are
# N x devices.jobs_per_gpu, so that several small networks share each GPU, and each job then
# claims a free slot of one GPU itself (trainact.runtime.claim_gpu: the GPUs fill evenly).
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


def run_key(*parts):
    """sha256 of the params that decide a job's results (config slice, code digest)."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def words(values):
    """Values as shell words."""
    return " ".join(shlex.quote(str(v)) for v in values)


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
    the Fourier settings change)."""
    model = config["model"] if model is None else model
    used = {
        "hidden": model["hidden"],
        "filters": {size: model["filters"][size]},
        "preprocessing": model["preprocessing"],
    }
    if activation != "relu":
        used["impl"] = model["impl"]
        used[activation] = model[activation]
    return used


def train_slice(size, activation, model=None):
    return {"model": model_slice(size, activation, model), "train": config["train"]}


DOWNLOAD_SLICE = {key: DATASET[key] for key in ("url", "md5")}
PREPARE_SLICE = {
    key: DATASET[key] for key in ("train_per_class", "test_per_class", "subset_seed")
}
AE_PRETRAIN_SLICE = {
    "model": model_slice(*AE_MODEL),
    "autoencoder": config["autoencoder"],
}
AE_FINETUNE_SLICE = {**AE_PRETRAIN_SLICE, "train": config["train"]}
PSO_SLICE = {"model": model_slice(*PSO_MODEL), "pso": config["pso"]}
# Sensitivity study: every (initialisation, preprocessing) combination is a variant with its own
# model config. Per variant and activation the runs live under a root: the main results when the
# networks' settings equal the main grid's, else an earlier variant's root with equal settings,
# else <out>/sensitivity/<variant> (so nothing is trained twice).
SENSITIVITY = config["sensitivity"]
SENS_SIZES, SENS_ACTIVATIONS = SENSITIVITY["sizes"], SENSITIVITY["activations"]


def sensitivity_variants():
    """[(name, initialisation, preprocessing, model config)] of the study (empty when off)."""
    if not SENSITIVITY["enabled"]:
        return []
    return [
        (
            f"{entry['name']}+{prep}",
            entry["name"],
            prep,
            merged(merged(config["model"], entry["model"]), {"preprocessing": prep}),
        )
        for entry in SENSITIVITY["initialisations"]
        for prep in SENSITIVITY["preprocessing"]
    ]


def sensitivity_roots(variants):
    """variant name -> activation -> results root holding that variant's runs (see above)."""

    def slices(model, activation):
        return [canonical(model_slice(size, activation, model)) for size in SENS_SIZES]

    roots = {}
    for name, _, _, model in variants:
        roots[name] = {}
        for activation in SENS_ACTIVATIONS:
            same = (
                [OUT]
                if slices(model, activation) == slices(config["model"], activation)
                else []
            )
            same += [
                roots[other][activation]
                for other, _, _, other_model in variants
                if other in roots
                and other != name
                and slices(other_model, activation) == slices(model, activation)
            ]
            roots[name][activation] = same[0] if same else f"{OUT}/sensitivity/{name}"
    return roots


SENS_VARIANTS = sensitivity_variants()
SENS_ROOTS = sensitivity_roots(SENS_VARIANTS)
VARIANT_MODELS = {name: model for name, _, _, model in SENS_VARIANTS}
# The variant that is the main grid itself; without one, the main grid joins as "main".
_reference = [
    n
    for n, _, _, m in SENS_VARIANTS
    if all(SENS_ROOTS[n][a] == OUT for a in SENS_ACTIVATIONS)
]
SENS_SPEC_VARIANTS = [
    {
        "name": name,
        "initialisation": init,
        "preprocessing": prep,
        "roots": SENS_ROOTS[name],
    }
    for name, init, prep, _ in SENS_VARIANTS
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
SENSITIVITY_PARAMS = {
    "sizes": SENS_SIZES,
    "activations": SENS_ACTIVATIONS,
    "seeds": SEEDS,
    "reference": (_reference or ["main"])[0],
    # what trainact.claims.preview_reasons judges
    "settings": {"train": config["train"], "dataset": config["dataset"]},
    "variants": SENS_SPEC_VARIANTS if SENS_VARIANTS else [],
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
AGGREGATE_ARGS = " ".join(
    f"--{key.replace('_', '-')} {words(values)}" for key, values in GRID.items()
)
FIGURE_PARAMS = {
    **GRID,
    "model": config["model"],
    "activation_range": config["figures"]["activation_range"],
}
# The report lists the whole config, under the preset's name, but for `devices` (where the jobs
# ran changes no result; the report shows the devices the runs used, from provenance).
REPORT_PARAMS = {
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
TRAIN_DIR = f"{OUT}/train/{{size}}-{{activation}}/seed{{seed}}"
VARIANT_TRAIN_DIR = (
    f"{OUT}/sensitivity/{{variant}}/train/{{size}}-{{activation}}/seed{{seed}}"
)
AE_DIR = f"{OUT}/autoencoder/seed{{seed}}"
PSO_DIR = f"{OUT}/pso/seed{{seed}}"
TABLES = f"{OUT}/tables"
FIGURES = f"{OUT}/figures"
PAPER = f"{OUT}/paper"
PROVENANCE = f"{OUT}/provenance.json"


def train_file(name, size, activation, seed):
    return f"{OUT}/train/{size}-{activation}/seed{seed}/{name}"


EXPERIMENT_MODELS = [(s, a) for s in SIZES for a in ACTIVATIONS]
# The autoencoder's baseline and PSO's reference are ordinary training runs, in the grid or not.
ALL_MODELS = list(dict.fromkeys(EXPERIMENT_MODELS + [AE_MODEL, PSO_MODEL]))
RESULT_INPUTS = {
    "train": [
        train_file("history.csv", s, a, seed) for s, a in ALL_MODELS for seed in SEEDS
    ],
    "pretrain": [f"{OUT}/autoencoder/seed{seed}/pretrain.csv" for seed in SEEDS],
    "finetune": [
        f"{OUT}/autoencoder/seed{seed}/finetune/history.csv" for seed in SEEDS
    ],
    "pso": [f"{OUT}/pso/seed{seed}/history.csv" for seed in SEEDS],
}
# Every history the sensitivity study reads (the main grid's where a variant reuses them).
SENSITIVITY_INPUTS = sorted(
    {
        f"{variant['roots'][a]}/train/{size}-{a}/seed{seed}/history.csv"
        for variant in SENS_SPEC_VARIANTS
        for a in SENS_ACTIVATIONS
        for size in SENS_SIZES
        for seed in SEEDS
    }
    if SENS_VARIANTS
    else []
)
# The summary.json of every training, fine-tuning and PSO run (their devices, for provenance).
RUN_SUMMARIES = sorted(
    {
        os.path.join(os.path.dirname(path), "summary.json")
        for path in RESULT_INPUTS["train"]
        + RESULT_INPUTS["finetune"]
        + RESULT_INPUTS["pso"]
        + SENSITIVITY_INPUTS
    }
)
SENSITIVITY_FILES = [f"{TABLES}/sensitivity.json", f"{TABLES}/sensitivity.csv"]
TABLE_FILES = {
    name: f"{TABLES}/{name}"
    for name in (
        "table1.csv",
        "table1.json",
        "table2.csv",
        "table2.json",
        "runs.csv",
        "summary.json",
    )
}

# Figure files as trainact.figures names them: fig2..fig7 for the sizes present, fig8 the
# autoencoder, fig9 PSO, the learned activation curves when a trainable activation is in the
# grid, and the network structure.
CURVE_FIGURES = {
    ("val", "large"): 2,
    ("val", "middle"): 3,
    ("val", "small"): 4,
    ("train", "large"): 5,
    ("train", "middle"): 6,
    ("train", "small"): 7,
}
FIGURE_STEMS = [
    *(f"fig{number}" for (_, size), number in CURVE_FIGURES.items() if size in SIZES),
    "fig8",
    "fig9",
    *(
        ["activations", "activation_health"]
        if any(a != "relu" for a in ACTIVATIONS)
        else []
    ),
    "structure",
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
REPORT_TEMPLATES = [
    os.path.relpath(REPO / "paper" / name) for name in ("report.md.j2", "report.tex.j2")
]
# The paper report's pdf exists only where a TeX engine does (trainact.report builds it with
# latexmk and pdflatex).
HAVE_TEX = all(shutil.which(tool) for tool in ("latexmk", "pdflatex"))
PAPER_PDF = [f"{PAPER}/report.pdf"] if HAVE_TEX else []
PAPER_FILES = [f"{PAPER}/report.md", f"{PAPER}/report.tex", *PAPER_PDF]
