"""The results layout, written once: where each run keeps its files, and the folders and files
of a results root (``<out>``) that the aggregation, the figures and the paper report write.

The training commands write here, the analysis reads here and the workflow names its outputs
from here (``workflow/rules/common.smk``), so this module imports only the standard library.
"""

from __future__ import annotations

# The files of one run and their columns: their home is trainact.run_files (a unit of reruns of its
# own, see there); re-exported here, so that the analysis finds the whole layout in one module.
from trainact.run_files import (  # noqa: F401
    HISTORY_FILE,
    HEALTH_FILE,
    MODEL_FILE,
    ACTIVATIONS_FILE,
    SUMMARY_FILE,
    CHECKPOINT_FILE,
    SNAPSHOT_DIR,
    FINETUNE_DIR,
    PRETRAIN_HISTORY_FILE,
    PRETRAINED_FILE,
    PRETRAIN_CHECKPOINT_FILE,
    PSO_BEST_FILE,
    TRAIN_HISTORY_COLUMNS,
    HEALTH_COLUMNS,
    PRETRAIN_HISTORY_COLUMNS,
    PSO_HISTORY_COLUMNS,
    snapshot_file,
)

#: Folders of a results root (``<out>``).
TABLES_DIR, FIGURES_DIR, PAPER_REPORT_DIR = "tables", "figures", "paper"
#: The files of ``<out>/tables`` that ``trainact aggregate`` writes.
TABLE_FILES: tuple[str, ...] = (
    "table1.csv",
    "table1.json",
    "table2.csv",
    "table2.json",
    "runs.csv",
    "summary.json",
)
#: The files of ``<out>/tables`` that ``trainact sensitivity`` writes.
SENSITIVITY_FILES: tuple[str, ...] = ("sensitivity.json", "sensitivity.csv")
#: The files of ``<out>/tables`` that ``trainact schedule-axis`` writes, and its figure's stem.
SCHEDULE_AXIS_FILES: tuple[str, ...] = ("schedule_axis.json", "schedule_axis.csv")
SCHEDULE_AXIS_FIGURE = "schedule_axis"


def train_run_dir(size: str, activation: str, seed: int | str) -> str:
    """A training run's folder, relative to the results root."""
    return f"train/{size}-{activation}/seed{seed}"


def autoencoder_run_dir(seed: int | str) -> str:
    """An autoencoder run's folder (pretraining; fine-tuning in its ``finetune`` folder)."""
    return f"autoencoder/seed{seed}"


def pso_run_dir(seed: int | str) -> str:
    return f"pso/seed{seed}"
