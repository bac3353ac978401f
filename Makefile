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

.PHONY: venv reproduce quick smoke report test bench gpu-check device-wheels clean-venv

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

report: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) report $(SNAKEMAKE_ARGS)

bench: $(STAMP)
	$(BIN)/python -m trainact bench

# The prepared GPU check (tests/gpu_check.py): bench, smoke preset, kill-and-resume, GPU sharing;
# one JSON summary on stdout (and in $$OUT/gpu_check.json when OUT is set). A few minutes.
gpu-check: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python tests/gpu_check.py

# Snakemake's wheels for a GPU machine without network (tests/gpu_check.py says how to use them).
device-wheels: $(STAMP)
	tests/device_wheels.sh

test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
