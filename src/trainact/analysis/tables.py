"""The paper's Table 1 and Table 2 from the per-run values of :mod:`trainact.analysis.results`,
beside the paper's published numbers (``published_tables.json``, beside this module).

* Table 1: per model, the mean, sample standard deviation (ddof = 1; undefined with one seed)
  and number of seeds of the per-run bests and final-epoch accuracies; with the networks' facts
  (parameters, steps, time, devices) from the runs' ``summary.json``;
* Table 2: ``100 * (acc of Fourier/LC - acc of ReLU)`` of the same size and seed, in absolute
  percentage points, for validation and training, at the best epoch (``mean_pp``, the paper's)
  and at the final one (``final_mean_pp``); mean and standard deviation of these paired per-seed
  differences over the seeds both runs share (:func:`paired_differences_pp`, which the claims
  judge at the final epoch).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from trainact.analysis.labels import model_name
from trainact.analysis.results import FINAL_METRICS, METRICS, read_summaries
from trainact.analysis.statistics import stats
from trainact.names import SIZES, SPLITS, TRAINABLE

#: The paper's published Table 1 and Table 2, as data beside this module.
PUBLISHED_TABLES = "published_tables.json"
#: The endpoints a paired difference can be taken at: the final epoch, or the paper's best over epochs.
ENDPOINTS = ("final", "best")


def load_published() -> dict[str, Any]:
    """The paper's Table 1 and Table 2 as data (``trainact/published_tables.json``)."""
    text = resources.files("trainact.analysis").joinpath(PUBLISHED_TABLES).read_text(encoding="utf-8")
    return json.loads(text)


def network_facts(
    results: Path, sizes: Sequence[str], activations: Sequence[str], seeds: Sequence[int]
) -> list[dict[str, Any]]:
    """Per model, from its runs' ``summary.json``: trainable parameters, optimiser steps per
    learning rate (``[{lr, epochs, steps}]`` of the first seed that states them), mean training
    seconds over seeds and the devices the runs used. A run without a summary (or an older one
    without these keys) leaves its values out."""
    rows = []
    for size in sizes:
        for activation in activations:
            summaries = read_summaries(results, size, activation, seeds)
            seconds = [s["train_seconds"] for s in summaries if s.get("train_seconds") is not None]
            steps = next(
                (s["steps_by_learning_rate"] for s in summaries if s.get("steps_by_learning_rate")), None
            )
            devices = sorted({str((s.get("device") or {}).get("name", "")) for s in summaries} - {""})
            rows.append(
                {
                    "size": size,
                    "activation": activation,
                    "model": model_name(size, activation),
                    "parameters": next((s["parameters"] for s in summaries if "parameters" in s), None),
                    "steps_by_learning_rate": steps,
                    "train_seconds_mean": sum(seconds) / len(seconds) if seconds else None,
                    "devices": devices,
                }
            )
    return rows


def table1(runs: pd.DataFrame, published: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Table 1: per model, mean/std/n over seeds of each per-run best, beside the paper's value.

    Columns: ``size, activation, model, n_seeds, n_diverged`` and for each metric ``m`` in
    ``train_acc, train_loss, val_acc, val_loss``: ``m_mean, m_std, m_published, m_diff``
    (``diff = mean - published``, in the metric's own unit; accuracy as a fraction) of the per-run
    bests (the paper's measure); for each ``m`` of :data:`FINAL_METRICS` ``final_m_mean,
    final_m_std`` of the final epoch; ``late_val_acc_spread_mean`` (mean over seeds of each run's
    late spread).
    """
    published = published if published is not None else load_published()
    paper = {(r["size"], r["activation"]): r for r in published["table1"]}
    rows = []
    for (size, activation), group in runs.groupby(["size", "activation"], sort=False):
        row: dict[str, Any] = {
            "size": size,
            "activation": activation,
            "model": model_name(size, activation),
            "n_seeds": int(group["seed"].nunique()),
            "n_diverged": int(group["diverged_epoch"].notna().sum()),
        }
        for metric in METRICS:
            summary = stats(group[f"best_{metric}"])
            reference = paper.get((size, activation), {}).get(metric, math.nan)
            row[f"{metric}_mean"] = summary["mean"]
            row[f"{metric}_std"] = summary["std"]
            row[f"{metric}_published"] = reference
            row[f"{metric}_diff"] = summary["mean"] - reference
        for metric in FINAL_METRICS:
            summary = stats(group[f"final_{metric}"])
            row[f"final_{metric}_mean"] = summary["mean"]
            row[f"final_{metric}_std"] = summary["std"]
        row["late_val_acc_spread_mean"] = stats(group["late_val_acc_spread"])["mean"]
        rows.append(row)
    return pd.DataFrame(rows)


def paired_differences_pp(
    runs: pd.DataFrame, size: str, split: str, activation: str, baseline: str = "relu", *, endpoint: str
) -> pd.Series:
    """Per-seed ``100 * ({endpoint} {split} acc of activation - that of baseline)``, same size and seed.

    ``endpoint``: ``"final"`` (the last ok epoch; the verdicts' endpoint) or ``"best"`` (the
    paper's best over epochs). ``split``: ``val``, ``train`` or (final only) ``train_eval``.
    Only seeds where both runs have a finite value are paired; the result is indexed by seed.
    """
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; choose from {list(ENDPOINTS)}")
    column = f"{endpoint}_{split}_acc"
    if column not in runs.columns:
        raise ValueError(f"the runs have no column {column!r} (endpoint {endpoint!r}, split {split!r})")
    subset = runs.loc[runs["size"] == size]
    ours = subset.loc[subset["activation"] == activation].set_index("seed")[column]
    base = subset.loc[subset["activation"] == baseline].set_index("seed")[column]
    difference = (100.0 * (ours - base)).dropna()
    return difference.sort_index()


def table2(runs: pd.DataFrame, published: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Table 2: improvement of Fourier-CNN and LC-CNN over the same-size ReLU CNN, in points.

    Long format, one row per (size, split, activation): ``n_pairs, mean_pp, std_pp`` over the
    paired per-seed differences of the best over epochs (the paper's measure), ``published_pp``
    and ``diff_pp = mean_pp - published_pp``; ``final_n_pairs, final_mean_pp, final_std_pp`` of
    the final-epoch differences (the verdicts' endpoint). Empty when the runs contain no ReLU model.
    """
    published = published if published is not None else load_published()
    paper = {(r["size"], r["split"], r["activation"]): r["improvement_pp"] for r in published["table2"]}
    present = set(zip(runs["size"], runs["activation"]))
    rows = []
    for size in [s for s in SIZES if (s, "relu") in present]:
        for split in SPLITS:
            for activation in [a for a in TRAINABLE if (size, a) in present]:
                summary = stats(paired_differences_pp(runs, size, split, activation, endpoint="best"))
                final = stats(paired_differences_pp(runs, size, split, activation, endpoint="final"))
                reference = paper.get((size, split, activation), math.nan)
                rows.append(
                    {
                        "size": size,
                        "split": split,
                        "activation": activation,
                        "n_pairs": summary["n"],
                        "mean_pp": summary["mean"],
                        "std_pp": summary["std"],
                        "published_pp": reference,
                        "diff_pp": summary["mean"] - reference,
                        "final_n_pairs": final["n"],
                        "final_mean_pp": final["mean"],
                        "final_std_pp": final["std"],
                    }
                )
    columns = [
        "size", "split", "activation", "n_pairs", "mean_pp", "std_pp", "published_pp", "diff_pp",
        "final_n_pairs", "final_mean_pp", "final_std_pp",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)
