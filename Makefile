# Two entry points for a fresh machine (see README):
#   make reproduce   set up .venv and run the whole paper (GPU if present, else CPU)
#   make test        set up .venv and run the test suite (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= all
SNAKEMAKE_ARGS ?=
PYTEST_ARGS ?=

.PHONY: venv reproduce quick smoke report captions lint test bench gpu-check device-wheels mutation clean-venv

venv: $(STAMP)

# Re-install only when the package metadata changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --resources gpu=1 $(SNAKEMAKE_ARGS)

quick: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --resources gpu=1 --configfile workflow/presets/quick.yaml $(SNAKEMAKE_ARGS)

smoke: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --configfile workflow/presets/smoke.yaml $(SNAKEMAKE_ARGS)

# The paper report (rule paper_report) and everything it needs.
report: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) paper_report $(SNAKEMAKE_ARGS)

# The captions of Snakemake's HTML report (workflow/html_report/captions/*.rst), written from
# trainact.report.captions; run after editing a caption (tests/workflow/test_html_report_captions.py checks).
captions:
	$(BIN)/python tools/write_captions.py

bench: $(STAMP)
	$(BIN)/python -m trainact bench

# The prepared GPU check (tools/gpu_check.py): bench, smoke preset, kill-and-resume, GPU sharing;
# one JSON summary on stdout (and in $$OUT/gpu_check.json when OUT is set). A few minutes.
gpu-check: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python tools/gpu_check.py

# Snakemake's wheels for a GPU machine without network (tools/gpu_check.py says how to use them).
device-wheels: $(STAMP)
	tools/device_wheels.sh

# Mutation testing (mutmut, configured in [tool.mutmut] of pyproject.toml) of the code that decides
# the paper's numbers: aggregation, claims, the schedule and settings checks, the activations'
# reference formulas and candidate functions, the checkpoint rules. Not part of `make test` or CI:
# about 7-12 minutes on 2 cores. Prints the survivors, then killed/total per module.
# (OMP_NUM_THREADS=1: torch's thread pool does not survive mutmut's fork; its children hang.)
MUTATION_CHILDREN ?= 2
MUTATION_MUTANTS := 'trainact.analysis.aggregate.*' 'trainact.analysis.results.*' 'trainact.analysis.tables.*' \
	'trainact.analysis.section5.*' 'trainact.analysis.statistics.*' 'trainact.analysis.verdicts.*' 'trainact.analysis.preview.*' \
	'trainact.names.*' 'trainact.layout.*' 'trainact.analysis.thresholds.*' 'trainact.analysis.claims.*' 'trainact.training.settings.*' 'trainact.training.checkpoints.*' \
	'trainact.training.train_settings.xǁTrainSettingsǁ*' \
	'trainact.nn.reference.x_fourier_reference__*' 'trainact.nn.reference.x_linear_combination_reference__*' \
	'trainact.nn.reference.x_guarded_weight_sum__*' 'trainact.nn.reference.x_channel_shape__*' \
	'trainact.nn.candidates.x__identity__*' 'trainact.nn.candidates.x__relu_terms__*' \
	'trainact.nn.candidates.x__sigmoid_terms*' 'trainact.nn.candidates.x__tanh_terms*' \
	'trainact.nn.candidates.x__linear_terms__*'
define MUTATION_SCORE_PY
import fnmatch, glob, json
from collections import Counter
modules = {
    "aggregate": ["trainact.analysis.aggregate.*", "trainact.names.*", "trainact.layout.*", "trainact.analysis.thresholds.*"],
    "claims": ["trainact.analysis.claims.*"],
    "settings + TrainSettings": ["trainact.training.settings.*", "trainact.training.train_settings.x\u01c1TrainSettings\u01c1*"],
    "checkpoints + fingerprint": ["trainact.training.checkpoints.*"],
    "activations (reference formulas, candidates)": ["trainact.nn.reference.*", "trainact.nn.candidates.*"],
}
fingerprint = "trainact.training.settings.x\u01c1ConfigSection\u01c1checkpoint_fingerprint*"
selected = [p.strip("'") for p in """$(MUTATION_MUTANTS)""".split()]
codes = {}
for meta in glob.glob("mutants/src/trainact/**/*.py.meta", recursive=True):
    codes.update(json.load(open(meta, encoding="utf-8"))["exit_code_by_key"])
for module, patterns in modules.items():
    counts = Counter()
    for name, code in codes.items():
        if not any(fnmatch.fnmatch(name, p) for p in selected):
            continue
        group = "checkpoints + fingerprint" if fnmatch.fnmatch(name, fingerprint) else next(
            (m for m, ps in modules.items() if any(fnmatch.fnmatch(name, p) for p in ps)), None)
        if group == module:
            counts["killed" if code in (1, 3, 24, -24, 36, 152, 255) else "other"] += 1
    total = counts["killed"] + counts["other"]
    print(f"{module:46s} {counts['killed']:5d} / {total:5d} killed ({100 * counts['killed'] / max(total, 1):5.1f} %)")
endef
export MUTATION_SCORE_PY

mutation: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[mutation]'
	rm -rf mutants
	OMP_NUM_THREADS=1 $(BIN)/mutmut run --max-children $(MUTATION_CHILDREN) $(MUTATION_MUTANTS)
	$(BIN)/mutmut results
	$(BIN)/python -c "$$MUTATION_SCORE_PY"

# The linter and the formatter (ruff, configured in pyproject.toml) first: seconds, and a red
# lint fails CI before the half hour of tests.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The test files run on TEST_WORKERS processes (pytest-xdist), a file's tests in one of them
# (--dist loadfile: the module fixtures, such as the smoke workflow run, are made once). Much of
# the suite waits on subprocesses (Snakemake, torch imports), so 2 workers on 2 cores took
# 823 s where one took 1058 s. TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2
test: $(STAMP) lint
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
