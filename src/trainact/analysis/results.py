"""Readers of a results folder: where each run keeps its files, its history and best values.

Input is the results folder of one workflow run (``<out>``, :mod:`trainact.layout`)::

    <out>/train/<size>-<activation>/seed<seed>/history.csv, summary.json, activations.json
    <out>/autoencoder/seed<seed>/pretrain.csv, .../finetune/history.csv
    <out>/pso/seed<seed>/history.csv

Per run (:func:`best_of_history`):

* the best value of each of ``train_acc``, ``train_loss``, ``val_acc``, ``val_loss`` is taken
  independently over the epochs: the maximum accuracy and the minimum loss (so the four numbers
  may come from different epochs). This is the paper's measure: the best *test* accuracy over
  epochs (``val_acc`` is CIFAR-10's test batch), a model selection on the test set. Rows whose
  ``status`` is not ``"ok"`` (a diverged epoch) are ignored and counted;
* the *final* epoch (the last ``ok`` one): ``final_val_acc``, ``final_train_acc`` (train mode,
  running mean over the epoch) and ``final_train_eval_acc`` (eval mode, on a fixed training
  subset; NaN for histories without it), and ``late_val_acc_spread``, the sample std of
  ``val_acc`` over the last :data:`LATE_EPOCHS` ok epochs (the epoch-to-epoch noise the best
  over epochs picks from).

The aggregation, the sensitivity study, the schedule axis and the figures all read runs here;
:func:`json_ready` gives what they write the strict-JSON form.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainact.layout import autoencoder_run_dir, pso_run_dir, train_run_dir
from trainact.run_files import (
    ACTIVATIONS_FILE,
    FINETUNE_DIR,
    HISTORY_FILE,
    PRETRAIN_HISTORY_FILE,
    SUMMARY_FILE,
)

METRICS = ("train_acc", "train_loss", "val_acc", "val_loss")
#: Per-run final-epoch accuracies (the verdicts' endpoint); ``train_eval_acc`` may be absent.
FINAL_METRICS = ("train_acc", "train_eval_acc", "val_acc")
#: The endpoints a paired difference can be taken at: the final epoch, or the paper's best over epochs.
#: Epochs at the end of a run whose validation accuracy's spread is reported (late_val_acc_spread).
LATE_EPOCHS = 5
HISTORY_REQUIRED = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "status")
PSO_REQUIRED = ("generation", "train_acc", "test_acc")
PRETRAIN_REQUIRED = ("stage", "epoch", "loss")


def json_ready(value: Any) -> Any:
    """``value`` with NaN/inf as ``None`` and numpy scalars as Python ones (strict JSON)."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as strict-JSON-ready dicts."""
    return json_ready(frame.to_dict(orient="records"))


# ------------------------------------------------------------------------------------ paths


def train_history_path(results: Path, size: str, activation: str, seed: int) -> Path:
    return Path(results) / train_run_dir(size, activation, seed) / HISTORY_FILE


def train_activations_path(results: Path, size: str, activation: str, seed: int) -> Path:
    return train_history_path(results, size, activation, seed).with_name(ACTIVATIONS_FILE)


def train_summary_path(results: Path, size: str, activation: str, seed: int) -> Path:
    return train_history_path(results, size, activation, seed).with_name(SUMMARY_FILE)


def autoencoder_pretrain_path(results: Path, seed: int) -> Path:
    return Path(results) / autoencoder_run_dir(seed) / PRETRAIN_HISTORY_FILE


def autoencoder_history_path(results: Path, seed: int) -> Path:
    return Path(results) / autoencoder_run_dir(seed) / FINETUNE_DIR / HISTORY_FILE


def pso_history_path(results: Path, seed: int) -> Path:
    return Path(results) / pso_run_dir(seed) / HISTORY_FILE


# ---------------------------------------------------------------------------------- readers


def read_csv_checked(path: Path, required: Sequence[str]) -> pd.DataFrame:
    """Read a CSV, raising ``FileNotFoundError``/``ValueError`` that name the path and the problem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expected file is missing: {path}")
    frame = pd.read_csv(path)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; has {list(frame.columns)}")
    if frame.empty:
        raise ValueError(f"{path}: no rows")
    return frame


def read_history(path: Path) -> pd.DataFrame:
    """A training history (``trainact.training.train`` format), sorted by epoch."""
    frame = read_csv_checked(path, HISTORY_REQUIRED)
    frame["status"] = frame["status"].astype(str)
    return frame.sort_values("epoch", kind="stable").reset_index(drop=True)


def ok_rows(history: pd.DataFrame) -> pd.DataFrame:
    """The epochs that finished normally (``status == "ok"``)."""
    return history.loc[history["status"] == "ok"]


def best_of_history(history: pd.DataFrame) -> dict[str, Any]:
    """Best value of each metric over the ``ok`` epochs (max accuracy, min loss, independently).

    Also returns ``epochs_ok``, ``epochs_ignored`` (rows whose status is not ``ok``),
    ``diverged_epoch`` (first epoch marked ``diverged``, else ``None``), the epoch of the best
    validation accuracy, the first ``ok`` epoch's validation accuracy, the last ``ok`` epoch's
    ``final_<m>`` for ``m`` in :data:`FINAL_METRICS` (NaN where the history lacks the column or
    the value) and ``late_val_acc_spread`` (sample std of ``val_acc`` over the last
    :data:`LATE_EPOCHS` ok epochs, fewer in a shorter run; NaN with one).
    """
    ok = ok_rows(history)
    diverged = history.loc[history["status"] == "diverged", "epoch"]
    row: dict[str, Any] = {
        "epochs_ok": int(len(ok)),
        "epochs_ignored": int(len(history) - len(ok)),
        "diverged_epoch": int(diverged.iloc[0]) if len(diverged) else None,
    }
    for metric in METRICS:
        values = pd.to_numeric(ok[metric], errors="coerce")
        row[f"best_{metric}"] = float(values.max() if metric.endswith("_acc") else values.min())
    val_acc = pd.to_numeric(ok["val_acc"], errors="coerce")
    row["best_val_acc_epoch"] = int(ok.loc[val_acc.idxmax(), "epoch"]) if val_acc.notna().any() else None
    row["first_val_acc"] = float(val_acc.dropna().iloc[0]) if val_acc.notna().any() else math.nan
    for metric in FINAL_METRICS:
        values = pd.to_numeric(ok[metric], errors="coerce") if metric in ok.columns else None
        # the endpoint is the last ok epoch, whatever its value: no picking among the epochs
        row[f"final_{metric}"] = float(values.iloc[-1]) if values is not None and len(values) else math.nan
    late = val_acc.iloc[-LATE_EPOCHS:].dropna()
    row["late_val_acc_spread"] = float(late.std(ddof=1)) if len(late) > 1 else math.nan
    return row


def collect_runs(
    results: Path, sizes: Sequence[str], activations: Sequence[str], seeds: Sequence[int]
) -> pd.DataFrame:
    """One row per (size, activation, seed): the per-run bests, final-epoch accuracies and late
    spread of :func:`best_of_history`.

    Every expected history must exist; a missing one raises ``FileNotFoundError`` naming it.
    """
    rows = []
    for size in sizes:
        for activation in activations:
            for seed in seeds:
                path = train_history_path(results, size, activation, seed)
                best = best_of_history(read_history(path))
                rows.append(
                    {
                        "size": size,
                        "activation": activation,
                        "seed": int(seed),
                        "run": train_run_dir(size, activation, seed),
                        **best,
                    }
                )
    frame = pd.DataFrame(rows)
    for column in ("diverged_epoch", "best_val_acc_epoch"):  # epochs: integers or missing
        frame[column] = frame[column].astype("Int64")
    return frame


def read_summaries(results: Path, size: str, activation: str, seeds: Sequence[int]) -> list[dict[str, Any]]:
    """The ``summary.json`` of each of ``seeds``' training runs of a model that has one, in seed order."""
    paths = [train_summary_path(results, size, activation, seed) for seed in seeds]
    return [json.loads(path.read_text(encoding="utf-8")) for path in paths if path.is_file()]


def mean_curves(
    frames: Mapping[int, pd.DataFrame], index: str | Sequence[str], columns: Sequence[str]
) -> pd.DataFrame:
    """Per-``index`` mean, std, min, max and count over seeds of each column.

    ``frames`` maps seed -> table (already restricted to valid rows). The result has one row
    per index value (e.g. epoch), columns ``<col>_mean, <col>_std, <col>_min, <col>_max`` and
    ``n`` (number of seeds with a value of the first column there).
    """
    if not frames:
        raise ValueError("no runs to average")
    keys = [index] if isinstance(index, str) else list(index)
    stacked = pd.concat(
        [frame[keys + list(columns)].assign(_seed=seed) for seed, frame in frames.items()],
        ignore_index=True,
    )
    for column in columns:
        stacked[column] = pd.to_numeric(stacked[column], errors="coerce")
    grouped = stacked.groupby(keys, sort=True)[list(columns)]
    result = pd.DataFrame(index=grouped.mean().index)
    for statistic in ("mean", "std", "min", "max"):
        values = getattr(grouped, statistic)()
        for column in columns:
            result[f"{column}_{statistic}"] = values[column]
    result["n"] = grouped.count()[columns[0]]
    return result
