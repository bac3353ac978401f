"""What a training run writes besides its checkpoint: the history and activation-health CSVs
(after every epoch) and, when it ends, the weights, the learned activations and the summary.
The file names and columns are :mod:`trainact.run_files`'s.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainact.files import write_csv_atomic, write_text_atomic
from trainact.run_files import (
    ACTIVATIONS_FILE,
    HEALTH_COLUMNS,
    HEALTH_FILE,
    HISTORY_FILE,
    MODEL_FILE,
    SUMMARY_FILE,
    TRAIN_HISTORY_COLUMNS,
)
from trainact.training.checkpoints import save_torch
from trainact.training.divergence import diverged_record
from trainact.training.job import run_record


def write_history(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write the history CSV atomically (all rows, fixed column order)."""
    write_csv_atomic(path, rows, TRAIN_HISTORY_COLUMNS)


def write_progress(
    out_dir: Path, history: Sequence[Mapping[str, Any]], health: Sequence[Mapping[str, Any]]
) -> None:
    """Rewrite ``history.csv`` and ``activation_health.csv`` (after every epoch)."""
    write_history(out_dir / HISTORY_FILE, history)
    write_csv_atomic(out_dir / HEALTH_FILE, health, HEALTH_COLUMNS)


def health_rows(
    epoch: int, model: nn.Module, batch: torch.Tensor, start: Sequence[torch.Tensor]
) -> list[dict]:
    """One ``HEALTH_COLUMNS`` row per activation layer after ``epoch`` (rounded for the CSV)."""
    from trainact.nn.calibration import layer_health

    rows = []
    for row in layer_health(model, batch, start):
        rows.append(
            {"epoch": epoch, **{k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}}
        )
    return rows


def activation_parameters(model: nn.Module) -> list[dict[str, Any]]:
    """Learned parameters of every trainable activation layer, as plain Python values."""
    from trainact.nn.fourier import Fourier
    from trainact.nn.gain_relu import GainReLU
    from trainact.nn.linear_combination import LinearCombination

    layers = []
    for name, module in model.named_modules():
        if isinstance(module, GainReLU):
            layers.append({"name": name, "kind": "relu_gain", "params": module.learned_parameters()})
        elif isinstance(module, Fourier):
            fit = list(module.fit_interval) if module.fit_interval is not None else None
            layers.append(
                {"name": name, "kind": "fourier", "params": module.learned_parameters(), "fit_interval": fit}
            )
        elif isinstance(module, LinearCombination):
            params = {**module.learned_parameters(), "candidates": list(module.candidates), "eps": module.eps}
            layers.append({"name": name, "kind": "lc", "params": params})
    return layers


def save_results(
    model: nn.Module,
    out_dir: Path,
    history: list[dict[str, Any]],
    run_info: Mapping[str, Any],
    schedule: Mapping[str, Any] | None = None,
) -> None:
    """Final (or last good) weights, learned activations and a summary of a run.

    ``run_info`` (from :func:`trainact.training.job.job_device`) says where and how it ran: the
    device, the determinism settings, the compile cache; the summary adds which implementation
    of the activations ran (:func:`trainact.training.job.run_record`). ``schedule`` (training images,
    batch size, steps per epoch) gives the optimiser steps per learning rate and the training
    time summed over the epochs.
    """

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_torch(out_dir / MODEL_FILE, state)
    meta = {
        "size": getattr(model, "size_name", None),
        "activation": getattr(model, "activation_name", None),
        "layers": activation_parameters(model),
        # Each activation layer's input at the start, and the Fourier fit interval chosen from it.
        "calibration": getattr(model, "calibration", None),
    }
    write_text_atomic(out_dir / ACTIVATIONS_FILE, json.dumps(meta, indent=1))
    ok = [r for r in history if r.get("status") == "ok"]
    summary = {
        "epochs": len(ok),
        "best_val_acc": max((r["val_acc"] for r in ok), default=None),
        "final_val_acc": ok[-1]["val_acc"] if ok else None,
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "status": history[-1]["status"] if history else "empty",
        # where the loss went non-finite and which epoch's weights model.pt holds; None if it did not
        "diverged": diverged_record(history),
        **(dict(schedule) if schedule else {}),
        "steps_by_learning_rate": steps_by_learning_rate(ok, schedule["steps_per_epoch"])
        if schedule
        else None,
        "train_seconds": round(sum(r["seconds"] for r in ok), 3),
        **run_record(run_info),
    }
    write_text_atomic(out_dir / SUMMARY_FILE, json.dumps(summary, indent=1))


def steps_by_learning_rate(rows: Sequence[Mapping[str, Any]], steps_per_epoch: int) -> list[dict[str, Any]]:
    """``[{lr, epochs, steps}]`` over the epochs run, in order (a phase per learning rate)."""
    phases: list[dict[str, Any]] = []
    for row in rows:
        if phases and phases[-1]["lr"] == row["lr"]:
            phases[-1]["epochs"] += 1
        else:
            phases.append({"lr": row["lr"], "epochs": 1})
    return [{**p, "steps": p["epochs"] * steps_per_epoch} for p in phases]
