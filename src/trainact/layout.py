"""The results layout, written once: the folder of each run under a results root (``<out>``),
and the folders and files of the root that the aggregation, the figures and the paper report
write. The files inside one run's folder are :mod:`trainact.run_files` (the training commands
read that module, not this one, so renaming a table reruns no training).

The workflow names its outputs from here (``workflow/rules/common.smk``) and the analysis reads
here, so this module imports only the standard library.
"""

from __future__ import annotations

#: Folders of a results root (``<out>``).
TABLES_DIR, FIGURES_DIR, PAPER_REPORT_DIR = "tables", "figures", "paper"
#: ``<out>/tables/summary.json``: every number the report states (``trainact aggregate``).
AGGREGATE_SUMMARY_FILE = "summary.json"
#: The files of ``<out>/tables`` that ``trainact aggregate`` writes.
TABLE_FILES: tuple[str, ...] = (
    "table1.csv",
    "table1.json",
    "table2.csv",
    "table2.json",
    "runs.csv",
    AGGREGATE_SUMMARY_FILE,
)
#: The files of ``<out>/tables`` that ``trainact sensitivity`` writes.
SENSITIVITY_FILES: tuple[str, ...] = ("sensitivity.json", "sensitivity.csv")
#: The files of ``<out>/tables`` that ``trainact schedule-axis`` writes, and its figure's stem.
SCHEDULE_AXIS_FILES: tuple[str, ...] = ("schedule_axis.json", "schedule_axis.csv")
SCHEDULE_AXIS_FIGURE = "schedule_axis"


def train_model_dir(size: str, activation: str) -> str:
    """The folder of one network's training runs (one ``seed<N>`` folder per seed)."""
    return f"train/{size}-{activation}"


def train_run_dir(size: str, activation: str, seed: int | str) -> str:
    """A training run's folder, relative to the results root."""
    return f"{train_model_dir(size, activation)}/seed{seed}"


def autoencoder_run_dir(seed: int | str) -> str:
    """An autoencoder run's folder (pretraining; fine-tuning in its ``finetune`` folder)."""
    return f"autoencoder/seed{seed}"


def pso_run_dir(seed: int | str) -> str:
    return f"pso/seed{seed}"
