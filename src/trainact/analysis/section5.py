"""The Section 5 experiments summarised over seeds: autoencoder pretraining of the middle
Fourier-CNN (:func:`summarize_autoencoder`, the paper's Figure 8 and claim 3) and the
PSO-trained middle CNN against RMSProp (:func:`summarize_pso`, Figure 9 and claim 4).

``trainact aggregate`` stores both in ``summary.json`` (keys ``autoencoder`` and ``pso``); the
claims check, the figures and the report read them there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from trainact.analysis.results import (
    PRETRAIN_REQUIRED,
    PSO_REQUIRED,
    autoencoder_history_path,
    autoencoder_pretrain_path,
    best_of_history,
    json_ready,
    ok_rows,
    pso_history_path,
    read_csv_checked,
    read_history,
    records,
    train_history_path,
)
from trainact.analysis.statistics import stats
from trainact.analysis.thresholds import CONVERGENCE_SHARE
from trainact.layout import autoencoder_run_dir, train_model_dir
from trainact.names import AUTOENCODER_MODEL, PSO_MODEL
from trainact.run_files import FINETUNE_DIR


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
    the convergence target (:data:`~trainact.analysis.thresholds.CONVERGENCE_SHARE` of the
    non-pretrained run's final validation accuracy), the epochs each run takes to reach it
    (:func:`epochs_to_reach`) and ``diff_epochs_to_target`` (not pretrained minus pretrained:
    positive is faster); per pretraining stage: epochs, first and final reconstruction loss.
    ``status`` is ``"not run"`` when ``seeds`` is empty.
    """
    if not seeds:
        return {"status": "not run", "seeds": []}
    per_seed, stages, runs = [], [], []
    size, activation = AUTOENCODER_MODEL
    for seed in seeds:
        pretrained_history = read_history(autoencoder_history_path(results, seed))
        baseline_history = read_history(train_history_path(results, size, activation, seed))
        pretrained = best_of_history(pretrained_history)
        runs.append({"run": f"{autoencoder_run_dir(seed)}/{FINETUNE_DIR}", "seed": int(seed), **pretrained})
        per_seed.append(_autoencoder_row(int(seed), pretrained_history, baseline_history))
        stages += _pretrain_stages(results, int(seed))
    frame = pd.DataFrame(per_seed)
    return {
        "status": "ok",
        "seeds": [int(s) for s in seeds],
        "baseline_run": train_model_dir(size, activation),
        "per_seed": records(frame),
        "diff_best_val_acc_pp": stats(frame["diff_best_val_acc_pp"]),
        "diff_final_val_acc_pp": stats(frame["diff_final_val_acc_pp"]),
        "diff_first_val_acc_pp": stats(frame["diff_first_val_acc_pp"]),
        "diff_epochs_to_target": stats(frame["diff_epochs_to_target"]),
        "pretrain_stages": json_ready(stages),
        "runs": json_ready(runs),
    }


def _autoencoder_row(
    seed: int, pretrained_history: pd.DataFrame, baseline_history: pd.DataFrame
) -> dict[str, Any]:
    """One seed of :func:`summarize_autoencoder`: both runs' accuracies, their differences and
    the epochs each takes to the convergence target."""
    pretrained, baseline = best_of_history(pretrained_history), best_of_history(baseline_history)
    row: dict[str, Any] = {"seed": seed}
    for key in ("first_val_acc", "best_val_acc", "final_val_acc"):
        row[f"pretrained_{key}"] = pretrained[key]
        row[f"baseline_{key}"] = baseline[key]
        row[f"diff_{key}_pp"] = 100.0 * (pretrained[key] - baseline[key])
    target = CONVERGENCE_SHARE * baseline["final_val_acc"]
    row["target_val_acc"] = target
    row["pretrained_epochs_to_target"] = epochs_to_reach(pretrained_history, target)
    row["baseline_epochs_to_target"] = epochs_to_reach(baseline_history, target)
    row["diff_epochs_to_target"] = row["baseline_epochs_to_target"] - row["pretrained_epochs_to_target"]
    return row


def _pretrain_stages(results: Path, seed: int) -> list[dict[str, Any]]:
    """Per pretraining stage of one seed: epochs, first and final reconstruction loss."""
    pretrain = read_csv_checked(autoencoder_pretrain_path(results, seed), PRETRAIN_REQUIRED)
    stages = []
    for stage, group in pretrain.groupby("stage", sort=True):
        group = group.sort_values("epoch")
        stages.append(
            {
                "seed": seed,
                "stage": json_ready(stage),
                "epochs": int(len(group)),
                "first_loss": float(group["loss"].iloc[0]),
                "final_loss": float(group["loss"].iloc[-1]),
            }
        )
    return stages


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
        "reference_run": train_model_dir(size, activation),
        "per_seed": records(frame),
        "pso_best_test_acc": stats(frame["pso_best_test_acc"]),
        "rmsprop_best_val_acc": stats(frame["rmsprop_best_val_acc"]),
        "ratio": stats(frame["ratio"]),
        "final_ratio": stats(frame["final_ratio"]),
    }
