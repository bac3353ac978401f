"""Aggregation of training histories into the paper's Table 1 and Table 2, plus a summary.

Input is the results folder of one workflow run (``<out>``)::

    <out>/train/<size>-<activation>/seed<seed>/history.csv
    <out>/autoencoder/seed<seed>/pretrain.csv, .../finetune/history.csv
    <out>/pso/seed<seed>/history.csv

Definitions (the paper's Table 1: "best accuracy and loss of each network"):

* per run, the best value of each of ``train_acc``, ``train_loss``, ``val_acc``, ``val_loss`` is
  taken independently over the epochs: the maximum accuracy and the minimum loss (so the four
  numbers may come from different epochs). This is the paper's measure: the best *test*
  accuracy over epochs (``val_acc`` is CIFAR-10's test batch), a model selection on the test set.
  Rows whose ``status`` is not ``"ok"`` (a diverged epoch) are ignored and counted;
* per run, the *final* epoch (the last ``ok`` one): ``final_val_acc``, ``final_train_acc``
  (train mode, running mean over the epoch) and ``final_train_eval_acc`` (eval mode, on a fixed
  training subset; NaN for histories without it), and ``late_val_acc_spread``, the sample std of
  ``val_acc`` over the last :data:`LATE_EPOCHS` ok epochs (the epoch-to-epoch noise the best
  over epochs picks from);
* per model, the mean, sample standard deviation (ddof = 1; undefined with one seed) and number
  of seeds of those per-run values;
* Table 2: ``100 * (acc of Fourier/LC - acc of ReLU)`` of the same size and seed, in absolute
  percentage points, for validation and training, at the best epoch (``mean_pp``, the paper's)
  and at the final one (``final_mean_pp``); mean and standard deviation of these paired per-seed
  differences over the seeds both runs share.

The paper's claims are judged here too, on the final-epoch paired differences (the endpoint
fixed in advance; :func:`summarize_claims`, the pure check of :mod:`trainact.analysis.claims`), so that
their verdicts, intervals and preview reasons are data in ``summary.json`` and the report only
renders them.

Outputs (``<out>/tables``): ``table1.csv|json``, ``table2.csv|json``, ``runs.csv`` (per-run
bests) and ``summary.json`` (everything the report needs, the claims' verdicts included).

``trainact aggregate --params JSON --results DIR --out-dir DIR``: the JSON is the grid the
results hold (``sizes``, ``activations``, ``seeds``, ``autoencoder_seeds``, ``pso_seeds``) and
``settings`` (the run's ``train`` and ``dataset`` config, which decide whether a verdict is a
preview).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainact.analysis.claims import CLAIMS_RULE, CONVERGENCE_SHARE, PREVIEW_RULE, claim1_pairs, compared_pairs, evaluate_claims
from trainact.files import write_text_atomic
from trainact.analysis.labels import model_name
from trainact.layout import autoencoder_run_dir, pso_run_dir, train_run_dir
from trainact.names import (
    ACTIVATIONS,
    AUTOENCODER_MODEL,
    check_names,
    PSO_MODEL,
    SIZES,
    SPLITS,
    TRAINABLE,
)

log = logging.getLogger(__name__)

#: The paper's published Table 1 and Table 2, as data beside this module.
PUBLISHED_TABLES = "published_tables.json"

METRICS = ("train_acc", "train_loss", "val_acc", "val_loss")
#: Per-run final-epoch accuracies (the verdicts' endpoint); ``train_eval_acc`` may be absent.
FINAL_METRICS = ("train_acc", "train_eval_acc", "val_acc")
#: The endpoints a paired difference can be taken at: the final epoch, or the paper's best over epochs.
ENDPOINTS = ("final", "best")
#: Epochs at the end of a run whose validation accuracy's spread is reported (late_val_acc_spread).
LATE_EPOCHS = 5
HISTORY_REQUIRED = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "status")
PSO_REQUIRED = ("generation", "train_acc", "test_acc")
PRETRAIN_REQUIRED = ("stage", "epoch", "loss")


# ----------------------------------------------------------------------------- small helpers


def load_published() -> dict[str, Any]:
    """The paper's Table 1 and Table 2 as data (``trainact/published_tables.json``)."""
    text = resources.files("trainact.analysis").joinpath(PUBLISHED_TABLES).read_text(encoding="utf-8")
    return json.loads(text)


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


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json_ready(frame.to_dict(orient="records"))


def stats(values: Iterable[float]) -> dict[str, Any]:
    """Mean, sample std (ddof = 1, ``nan`` for fewer than two values) and count of the finite values."""
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = int(finite.size)
    return {
        "mean": float(finite.mean()) if n else math.nan,
        "std": float(finite.std(ddof=1)) if n > 1 else math.nan,
        "n": n,
    }


# ------------------------------------------------------------------------------------ paths


def train_history_path(results: Path, size: str, activation: str, seed: int) -> Path:
    return Path(results) / train_run_dir(size, activation, seed) / "history.csv"


def train_activations_path(results: Path, size: str, activation: str, seed: int) -> Path:
    return train_history_path(results, size, activation, seed).with_name("activations.json")


def autoencoder_pretrain_path(results: Path, seed: int) -> Path:
    return Path(results) / autoencoder_run_dir(seed) / "pretrain.csv"


def autoencoder_history_path(results: Path, seed: int) -> Path:
    return Path(results) / autoencoder_run_dir(seed) / "finetune" / "history.csv"


def pso_history_path(results: Path, seed: int) -> Path:
    return Path(results) / pso_run_dir(seed) / "history.csv"


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


def collect_runs(results: Path, sizes: Sequence[str], activations: Sequence[str], seeds: Sequence[int]) -> pd.DataFrame:
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
                        "run": f"train/{size}-{activation}/seed{seed}",
                        **best,
                    }
                )
    frame = pd.DataFrame(rows)
    for column in ("diverged_epoch", "best_val_acc_epoch"):  # epochs: integers or missing
        frame[column] = frame[column].astype("Int64")
    return frame


def train_summary_path(results: Path, size: str, activation: str, seed: int) -> Path:
    return train_history_path(results, size, activation, seed).with_name("summary.json")


def network_facts(results: Path, sizes: Sequence[str], activations: Sequence[str], seeds: Sequence[int]) -> list[dict[str, Any]]:
    """Per model, from its runs' ``summary.json``: trainable parameters, optimiser steps per
    learning rate (``[{lr, epochs, steps}]`` of the first seed that states them), mean training
    seconds over seeds and the devices the runs used. A run without a summary (or an older one
    without these keys) leaves its values out."""
    rows = []
    for size in sizes:
        for activation in activations:
            summaries = []
            for seed in seeds:
                path = train_summary_path(results, size, activation, seed)
                if path.is_file():
                    summaries.append(json.loads(path.read_text(encoding="utf-8")))
            seconds = [s["train_seconds"] for s in summaries if s.get("train_seconds") is not None]
            steps = next((s["steps_by_learning_rate"] for s in summaries if s.get("steps_by_learning_rate")), None)
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


# ----------------------------------------------------------------------------------- tables


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


# ----------------------------------------------------------------------------- curves (figures)


def mean_curves(frames: Mapping[int, pd.DataFrame], index: str | Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
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


# ------------------------------------------------------------------------ Section 5 experiments


def epochs_to_reach(history: pd.DataFrame, target: float) -> int:
    """The first ok epoch whose validation accuracy reaches ``target``; the last ok epoch + 1
    when none does (a run that never gets there counts as one epoch slower than its length)."""
    ok = ok_rows(history)
    val_acc = pd.to_numeric(ok["val_acc"], errors="coerce")
    reached = ok.loc[val_acc >= target, "epoch"]
    return int(reached.iloc[0]) if len(reached) else int(ok["epoch"].max()) + 1 if len(ok) else 1


def summarize_autoencoder(results: Path, seeds: Sequence[int]) -> dict[str, Any]:
    """Middle Fourier-CNN with vs without autoencoder pretraining, per seed and over seeds.

    Per seed: first/best/final validation accuracy of both runs and the differences (points);
    the convergence target (:data:`~trainact.analysis.claims.CONVERGENCE_SHARE` of the non-pretrained run's
    final validation accuracy), the epochs each run takes to reach it (:func:`epochs_to_reach`)
    and ``diff_epochs_to_target`` (not pretrained minus pretrained: positive is faster); per
    pretraining stage: epochs, first and final reconstruction loss. ``status`` is ``"not run"``
    when ``seeds`` is empty.
    """
    if not seeds:
        return {"status": "not run", "seeds": []}
    per_seed, stages, runs = [], [], []
    size, activation = AUTOENCODER_MODEL
    for seed in seeds:
        pretrained_history = read_history(autoencoder_history_path(results, seed))
        baseline_history = read_history(train_history_path(results, size, activation, seed))
        pretrained, baseline = best_of_history(pretrained_history), best_of_history(baseline_history)
        runs.append({"run": f"autoencoder/seed{seed}/finetune", "seed": int(seed), **pretrained})
        row = {"seed": int(seed)}
        for key in ("first_val_acc", "best_val_acc", "final_val_acc"):
            row[f"pretrained_{key}"] = pretrained[key]
            row[f"baseline_{key}"] = baseline[key]
            row[f"diff_{key}_pp"] = 100.0 * (pretrained[key] - baseline[key])
        target = CONVERGENCE_SHARE * baseline["final_val_acc"]
        row["target_val_acc"] = target
        row["pretrained_epochs_to_target"] = epochs_to_reach(pretrained_history, target)
        row["baseline_epochs_to_target"] = epochs_to_reach(baseline_history, target)
        row["diff_epochs_to_target"] = row["baseline_epochs_to_target"] - row["pretrained_epochs_to_target"]
        per_seed.append(row)
        pretrain = read_csv_checked(autoencoder_pretrain_path(results, seed), PRETRAIN_REQUIRED)
        for stage, group in pretrain.groupby("stage", sort=True):
            group = group.sort_values("epoch")
            stages.append(
                {
                    "seed": int(seed),
                    "stage": json_ready(stage),
                    "epochs": int(len(group)),
                    "first_loss": float(group["loss"].iloc[0]),
                    "final_loss": float(group["loss"].iloc[-1]),
                }
            )
    frame = pd.DataFrame(per_seed)
    return {
        "status": "ok",
        "seeds": [int(s) for s in seeds],
        "baseline_run": f"train/{size}-{activation}",
        "per_seed": _records(frame),
        "diff_best_val_acc_pp": stats(frame["diff_best_val_acc_pp"]),
        "diff_final_val_acc_pp": stats(frame["diff_final_val_acc_pp"]),
        "diff_first_val_acc_pp": stats(frame["diff_first_val_acc_pp"]),
        "diff_epochs_to_target": stats(frame["diff_epochs_to_target"]),
        "pretrain_stages": json_ready(stages),
        "runs": json_ready(runs),
    }


def summarize_pso(results: Path, seeds: Sequence[int]) -> dict[str, Any]:
    """PSO-trained middle CNN against the RMSProp-trained one, per seed and over seeds.

    Per seed: best (over generations) and final test/train accuracy of the global best particle,
    RMSProp's best and final validation accuracy (same size, ReLU, same seed), the paper's ratio
    ``ratio = pso_best_test_acc / rmsprop_best_val_acc`` and the verdicts' ``final_ratio =
    pso_final_test_acc / rmsprop_final_val_acc``. ``status`` is ``"not run"`` without seeds.
    """
    if not seeds:
        return {"status": "not run", "seeds": []}
    per_seed = []
    size, activation = PSO_MODEL
    for seed in seeds:
        pso = read_csv_checked(pso_history_path(results, seed), PSO_REQUIRED).sort_values("generation")
        reference = best_of_history(read_history(train_history_path(results, size, activation, seed)))
        test_acc = pd.to_numeric(pso["test_acc"], errors="coerce")
        best_test, final_test = float(test_acc.max()), float(test_acc.iloc[-1])
        per_seed.append(
            {
                "seed": int(seed),
                "generations": int(pso["generation"].max()),
                "pso_best_test_acc": best_test,
                "pso_final_test_acc": final_test,
                "pso_best_train_acc": float(pd.to_numeric(pso["train_acc"], errors="coerce").max()),
                "rmsprop_best_val_acc": reference["best_val_acc"],
                "rmsprop_final_val_acc": reference["final_val_acc"],
                "ratio": best_test / reference["best_val_acc"],
                "final_ratio": final_test / reference["final_val_acc"],
            }
        )
    frame = pd.DataFrame(per_seed)
    return {
        "status": "ok",
        "seeds": [int(s) for s in seeds],
        "reference_run": f"train/{size}-{activation}",
        "per_seed": _records(frame),
        "pso_best_test_acc": stats(frame["pso_best_test_acc"]),
        "rmsprop_best_val_acc": stats(frame["rmsprop_best_val_acc"]),
        "ratio": stats(frame["ratio"]),
        "final_ratio": stats(frame["final_ratio"]),
    }


# ------------------------------------------------------------------------------------ claims


def summarize_claims(
    runs: pd.DataFrame,
    published: Mapping[str, Any],
    *,
    autoencoder: Mapping[str, Any] | None = None,
    pso: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    sizes: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """The paper's claims judged on ``runs`` (:func:`trainact.analysis.claims.evaluate_claims`).

    The claims on the networks of Tables 1 and 2 get the per-seed paired differences of the
    *final* epoch's validation accuracy (:func:`paired_differences_pp`, ``endpoint="final"``) for
    each comparison they make on ``sizes`` (default all three), and claim 6 those of the
    eval-mode training accuracy (``final_train_eval_acc``; absent: not run); claims 3 and 4 the
    Section 5 summaries (absent: not run). ``settings`` (the run's config) decides which verdicts
    are previews.
    """
    sizes = list(SIZES) if sizes is None else check_names("sizes", sizes, SIZES)

    def per_seed(split: str, pairs: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], dict[int, float]]:
        return {
            (size, better, worse): {
                int(seed): float(value)
                for seed, value in paired_differences_pp(runs, size, split, better, worse, endpoint="final").items()
            }
            for size, better, worse in pairs
        }

    differences = per_seed("val", compared_pairs(sizes))
    train_eval = per_seed("train_eval", claim1_pairs(sizes)) if "final_train_eval_acc" in runs.columns else {}
    return evaluate_claims(
        differences,
        published,
        train_eval_differences=train_eval,
        autoencoder=autoencoder,
        pso=pso,
        settings=settings,
        sizes=sizes,
    )


# -------------------------------------------------------------------------------------- main


def diverged_runs(runs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The runs that stopped on a non-finite loss, or that have epochs other than ``ok``."""
    return [
        {
            "run": r["run"],
            "diverged_epoch": r["diverged_epoch"],
            "epochs_ok": r["epochs_ok"],
            "epochs_ignored": r["epochs_ignored"],
        }
        for r in runs
        if r["diverged_epoch"] is not None or r["epochs_ignored"]
    ]


def aggregate(
    results: Path,
    out_dir: Path,
    sizes: Sequence[str],
    activations: Sequence[str],
    seeds: Sequence[int],
    autoencoder_seeds: Sequence[int] = (),
    pso_seeds: Sequence[int] = (),
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Read every expected history, write the tables and ``summary.json``; return the summary.

    ``settings``: the run's config (``train``, ``dataset``), for the claims' preview rule
    (:func:`trainact.analysis.claims.preview_reasons`; without it only the number of seeds is judged).
    """
    if settings is not None and not isinstance(settings, Mapping):
        raise ValueError(f"aggregate parameter 'settings' must be a mapping (the run's config), got {settings!r}")
    sizes = check_names("sizes", sizes, SIZES)
    activations = check_names("activations", activations, ACTIVATIONS)
    if not seeds:
        raise ValueError("no seeds given")
    published = load_published()
    runs = collect_runs(results, sizes, activations, seeds)
    t1 = table1(runs, published)
    t2 = table2(runs, published)
    autoencoder = summarize_autoencoder(results, autoencoder_seeds)
    pso = summarize_pso(results, pso_seeds)
    claims = summarize_claims(runs, published, autoencoder=autoencoder, pso=pso, settings=settings, sizes=sizes)
    run_records = _records(runs)
    summary = json_ready(
        {
            "sizes": sizes,
            "activations": activations,
            "seeds": [int(s) for s in seeds],
            "definitions": {
                "best": "per run, max accuracy and min loss over the ok epochs, each independently "
                "(the paper's measure: the best test accuracy over epochs)",
                "final": "per run, the last ok epoch's accuracy: the endpoint of every verdict",
                "late_spread": f"per run, sample std of val_acc over the last {LATE_EPOCHS} ok epochs",
                "table1": "mean and sample std (ddof=1) over seeds of the per-run bests; diff = mean - published; "
                "final_*: of the final epoch",
                "table2": "100 * (best acc - best acc of the ReLU CNN of the same size and seed), "
                "mean and sample std over paired seeds, percentage points; final_*: the same at the final epoch",
                "accuracy_unit": "fraction in [0, 1]",
                "claims": CLAIMS_RULE,
                "claims_preview": PREVIEW_RULE,
            },
            "runs": run_records,
            "table1": _records(t1),
            "networks": network_facts(results, sizes, activations, seeds),
            "table2": _records(t2),
            "diverged": diverged_runs(run_records + autoencoder.get("runs", [])),
            "autoencoder": autoencoder,
            "pso": pso,
            "claims": claims,
            "source": published["source"],
        }
    )
    out_dir = Path(out_dir)
    write_text_atomic(out_dir / "runs.csv", runs.to_csv(index=False))
    write_text_atomic(out_dir / "table1.csv", t1.to_csv(index=False))
    write_text_atomic(out_dir / "table2.csv", t2.to_csv(index=False))
    write_text_atomic(
        out_dir / "table1.json",
        json.dumps({"description": summary["definitions"]["table1"], "rows": summary["table1"]}, indent=1),
    )
    write_text_atomic(
        out_dir / "table2.json",
        json.dumps({"description": summary["definitions"]["table2"], "rows": summary["table2"]}, indent=1),
    )
    write_text_atomic(out_dir / "summary.json", json.dumps(summary, indent=1))
    for entry in summary["diverged"]:
        log.warning(
            "run %s: %d epoch(s) ignored (diverged at epoch %s)",
            entry["run"],
            entry["epochs_ignored"],
            entry["diverged_epoch"],
        )
    return summary


# --------------------------------------------------------------------------------------- CLI


#: The keys of ``--params``: the grid the results hold and the settings the claims judge.
PARAM_KEYS = ("sizes", "activations", "seeds", "autoencoder_seeds", "pso_seeds", "settings")


def aggregate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`aggregate` from its ``--params`` JSON; unknown keys and a
    missing ``seeds`` are errors, ``sizes`` and ``activations`` default to all of them."""
    unknown = sorted(set(params) - set(PARAM_KEYS))
    if unknown:
        raise ValueError(f"unknown aggregate parameter(s) {unknown}; known: {list(PARAM_KEYS)}")
    if "seeds" not in params:
        raise ValueError("aggregate parameter 'seeds' is missing")
    for key in ("sizes", "activations", "seeds", "autoencoder_seeds", "pso_seeds"):
        if key in params and not isinstance(params[key], list):
            raise ValueError(f"aggregate parameter {key!r} must be a list, got {params[key]!r}")
    for key in ("seeds", "autoencoder_seeds", "pso_seeds"):
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in params.get(key, [])):
            raise ValueError(f"aggregate parameter {key!r} must be a list of integers, got {params[key]!r}")
    return {
        "sizes": params.get("sizes", list(SIZES)),
        "activations": params.get("activations", list(ACTIVATIONS)),
        "seeds": params["seeds"],
        "autoencoder_seeds": params.get("autoencoder_seeds", []),
        "pso_seeds": params.get("pso_seeds", []),
        "settings": params.get("settings", {}),
    }


def _cmd_aggregate(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError, parse_params

    try:
        aggregate(args.results, args.out_dir, **aggregate_params(parse_params(args.params)))
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    return 0


def register_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "aggregate",
        help="Table 1, Table 2, the claims' verdicts and summary.json from the training histories",
        description="Best-over-epochs per run, mean/std over seeds per model, improvements over "
        "ReLU in percentage points, beside the paper's published values; the paper's claims judged "
        "on them.",
    )
    parser.add_argument(
        "--params",
        required=True,
        help="JSON: sizes, activations (default: all), seeds, autoencoder_seeds, pso_seeds "
        "(none: 'not run'), settings (the run's train and dataset config, for the preview rule)",
    )
    parser.add_argument("--results", required=True, type=Path, help="results folder (<out>)")
    parser.add_argument("--out-dir", required=True, type=Path, help="where the tables go (<out>/tables)")
    parser.set_defaults(func=_cmd_aggregate)
