"""The report's results, formatted: Table 1 (with the networks' facts), Table 2, the Section 5
experiments and the provenance, from ``summary.json`` (``trainact aggregate``) and the
provenance record (``trainact provenance``). Every number is already computed; this module only
formats (:mod:`trainact.report.formatting`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainact.analysis.results import FINAL_METRICS, METRICS
from trainact.analysis.thresholds import CONVERGENCE_SHARE
from trainact.names import SIZES, SPLITS, TRAINABLE
from trainact.report.formatting import (
    ACC_DECIMALS,
    EPOCH_DECIMALS,
    LOSS_DECIMALS,
    MISSING,
    PP_DECIMALS,
    RATIO_DECIMALS,
    fmt,
    fmt_mean_std,
    fmt_seconds,
    metric_decimals,
)

#: The column heads of Table 1's metrics: the best over epochs, then the final epoch.
TABLE1_LABELS = {
    "train_acc": "Train acc",
    "train_loss": "Train loss",
    "val_acc": "Val acc",
    "val_loss": "Val loss",
}
TABLE1_FINAL_LABELS = {
    "train_acc": "Final train acc",
    "train_eval_acc": "Final train acc (eval mode)",
    "val_acc": "Final val acc",
}


def table1_metrics() -> dict[str, list[dict[str, str]]]:
    """The metrics of Table 1 with their column heads (``table1_metrics``, ``table1_final_metrics``)."""
    return {
        "table1_metrics": [{"key": m, "label": TABLE1_LABELS[m]} for m in METRICS],
        "table1_final_metrics": [{"key": m, "label": TABLE1_FINAL_LABELS[m]} for m in FINAL_METRICS],
    }


def table1_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for record in summary["table1"]:
        cells = {
            metric: {
                "repro": fmt_mean_std(
                    record[f"{metric}_mean"], record[f"{metric}_std"], metric_decimals(metric)
                ),
                "paper": fmt(record[f"{metric}_published"], metric_decimals(metric)),
                "diff": fmt(record[f"{metric}_diff"], metric_decimals(metric), signed=True),
            }
            for metric in METRICS
        }
        final = {
            metric: fmt_mean_std(record[f"final_{metric}_mean"], record[f"final_{metric}_std"], ACC_DECIMALS)
            for metric in FINAL_METRICS
        }
        rows.append(
            {
                "model": record["model"],
                # the mark of a model with diverged seeds; the report's list of diverged runs says
                # which, when, and how they count (summary.json's definitions.diverged)
                "n": str(record["n_seeds"])
                + (f" ({record['n_diverged']} diverged)" if record["n_diverged"] else ""),
                "diverged": str(record["n_diverged"]),
                "cells": cells,
                "final": final,
                "late_spread": fmt(record["late_val_acc_spread_mean"], ACC_DECIMALS),
            }
        )
    return rows


def diverged_lines(summary: Mapping[str, Any]) -> list[str]:
    """One line per run with epochs other than ``ok`` (``summary.json``'s ``diverged``): its folder,
    the epoch where it diverged and the ok epochs it counts with."""
    return [
        f"{d['run']}: "
        + (f"diverged in epoch {d['diverged_epoch']}; " if d["diverged_epoch"] is not None else "")
        + f"{d['epochs_ok']} ok epoch(s) counted, {d['epochs_ignored']} ignored"
        for d in summary["diverged"]
    ]


def network_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    """Table 1's networks: parameters, optimiser steps per learning rate, training time, device."""
    rows = []
    for record in summary.get("networks", []):
        steps = record["steps_by_learning_rate"]
        rows.append(
            {
                "model": record["model"],
                "parameters": f"{record['parameters']:,}" if record["parameters"] is not None else MISSING,
                "steps": ", ".join(f"{p['steps']:,} @ {p['lr']:g} ({p['epochs']} ep)" for p in steps)
                if steps
                else MISSING,
                "seconds": fmt_seconds(record["train_seconds_mean"]),
                "devices": ", ".join(record["devices"]) or MISSING,
            }
        )
    return rows


def table2_rows(summary: Mapping[str, Any], published: Mapping[str, Any]) -> list[dict[str, Any]]:
    paper = {(r["size"], r["split"], r["activation"]): r["improvement_pp"] for r in published["table2"]}
    records = {(r["size"], r["split"], r["activation"]): r for r in summary["table2"]}
    rows = []
    for size in [s for s in SIZES if any(key[0] == s for key in records)]:
        cells = {}
        for split in SPLITS:
            for activation in TRAINABLE:
                record = records.get((size, split, activation))
                cells[f"{split}_{activation}"] = {
                    "repro": (
                        fmt_mean_std(record["mean_pp"], record["std_pp"], PP_DECIMALS, signed=True)
                        if record
                        else "not run"
                    ),
                    "paper": fmt(paper[(size, split, activation)], PP_DECIMALS, signed=True),
                    "diff": fmt(record["diff_pp"], PP_DECIMALS, signed=True) if record else MISSING,
                    "n": str(record["n_pairs"]) if record else "0",
                    "final": (
                        fmt_mean_std(
                            record["final_mean_pp"], record["final_std_pp"], PP_DECIMALS, signed=True
                        )
                        if record
                        else "not run"
                    ),
                }
        rows.append({"size": size.capitalize(), "cells": cells})
    return rows


def autoencoder_context(autoencoder: Mapping[str, Any]) -> dict[str, Any]:
    if autoencoder.get("status") != "ok":
        return {"run": False}
    rows = [
        {
            "seed": str(r["seed"]),
            "first": (
                f"{fmt(r['pretrained_first_val_acc'], ACC_DECIMALS)} / "
                f"{fmt(r['baseline_first_val_acc'], ACC_DECIMALS)}"
            ),
            "best": (
                f"{fmt(r['pretrained_best_val_acc'], ACC_DECIMALS)} / "
                f"{fmt(r['baseline_best_val_acc'], ACC_DECIMALS)}"
            ),
            "final": (
                f"{fmt(r['pretrained_final_val_acc'], ACC_DECIMALS)} / "
                f"{fmt(r['baseline_final_val_acc'], ACC_DECIMALS)}"
            ),
            "diff_best": fmt(r["diff_best_val_acc_pp"], PP_DECIMALS, signed=True),
            "diff_final": fmt(r["diff_final_val_acc_pp"], PP_DECIMALS, signed=True),
            "epochs_to_target": f"{r['pretrained_epochs_to_target']} / {r['baseline_epochs_to_target']}",
        }
        for r in autoencoder["per_seed"]
    ]
    stages = [
        {
            "seed": str(s["seed"]),
            "stage": str(s["stage"]),
            "epochs": str(s["epochs"]),
            "first": fmt(s["first_loss"], LOSS_DECIMALS + 1),
            "final": fmt(s["final_loss"], LOSS_DECIMALS + 1),
        }
        for s in autoencoder["pretrain_stages"]
    ]
    best, final = autoencoder["diff_best_val_acc_pp"], autoencoder["diff_final_val_acc_pp"]
    epochs = autoencoder["diff_epochs_to_target"]
    return {
        "run": True,
        "rows": rows,
        "stages": stages,
        "mean_diff_best": fmt_mean_std(best["mean"], best["std"], PP_DECIMALS, signed=True),
        "mean_diff_final": fmt_mean_std(final["mean"], final["std"], PP_DECIMALS, signed=True),
        "mean_diff_epochs": fmt_mean_std(epochs["mean"], epochs["std"], EPOCH_DECIMALS, signed=True),
        "convergence_share": f"{CONVERGENCE_SHARE:g}",
    }


def pso_context(pso: Mapping[str, Any]) -> dict[str, Any]:
    if pso.get("status") != "ok":
        return {"run": False}
    rows = [
        {
            "seed": str(r["seed"]),
            "generations": str(r["generations"]),
            "pso_test": fmt(r["pso_best_test_acc"], ACC_DECIMALS),
            "pso_train": fmt(r["pso_best_train_acc"], ACC_DECIMALS),
            "rmsprop": fmt(r["rmsprop_best_val_acc"], ACC_DECIMALS),
            "ratio": fmt(r["ratio"], RATIO_DECIMALS),
            "final_ratio": fmt(r["final_ratio"], RATIO_DECIMALS),
        }
        for r in pso["per_seed"]
    ]
    return {
        "run": True,
        "rows": rows,
        "mean_ratio": fmt_mean_std(pso["ratio"]["mean"], pso["ratio"]["std"], RATIO_DECIMALS),
        "mean_final_ratio": fmt_mean_std(
            pso["final_ratio"]["mean"], pso["final_ratio"]["std"], RATIO_DECIMALS
        ),
    }


def provenance_context(provenance: Mapping[str, Any]) -> dict[str, Any]:
    dataset = provenance.get("dataset")
    hardware = provenance["hardware"]
    git = provenance["git"]
    wall = provenance.get("wall_times")
    dirty = {True: " (uncommitted changes)", False: " (clean)", None: ""}[git.get("dirty")]
    return {
        "dataset": (
            None
            if dataset is None
            else {
                "path": dataset["path"],
                "md5": dataset["md5"],
                "source_md5": dataset["source_md5"] or MISSING,
                "matches": {True: "yes", False: "NO", None: "unknown"}[dataset["source_matches_official"]],
                "official_md5": dataset["official_md5"],
            }
        ),
        "hardware": [
            *(
                (
                    f"Training runs ({row['runs']})",
                    f"{row['device']}; activation kernels {row['kernels']}; {row['determinism']}; "
                    f"training step {row.get('step', 'not recorded')}",
                )
                for row in provenance.get("run_devices") or []
            ),
            ("CPU", f"{hardware['cpu']} ({hardware['cores']} logical cores)"),
            ("Memory", f"{hardware['memory_gib']} GiB" if hardware.get("memory_gib") else MISSING),
            (
                "GPU of the provenance job's machine",
                ", ".join(hardware["gpus"]) + f" (CUDA {hardware['cuda']})" if hardware["gpus"] else "none",
            ),
            ("Platform", hardware["platform"]),
        ],
        "packages": list(provenance["packages"].items()),
        "commit": git["commit"] + dirty,
        "wall_times": (
            None
            if wall is None
            else [
                {"group": w["group"], "jobs": str(w["jobs"]), "time": fmt_seconds(w["seconds"])} for w in wall
            ]
        ),
        "total_time": None if wall is None else fmt_seconds(sum(w["seconds"] for w in wall)),
    }
