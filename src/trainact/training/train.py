"""The trainer: RMSProp with the paper's step schedule, one history row per epoch, resumable.

Read top to bottom: :class:`TrainSettings` holds every hyperparameter in one visible place,
:func:`fit` is the loop. Choices the paper leaves open are marked "paper silent" and repeated
in ``config.yaml`` and the report's "Deviations" section.

Crash safety: ``history.csv`` is rewritten after every epoch; the model, optimizer, history and
RNG states go to ``checkpoint.pt`` about once a minute and after the last epoch
(:mod:`trainact.training.checkpoints`: by time, read on the CPU, set aside when damaged). A run started
again with the same settings, code and data resumes after the last checkpointed epoch; since each epoch's
shuffle order is a pure function of (seed, epoch), the resumed run ends with the same history
and weights as an uninterrupted one (bit for bit on the CPU, and on a GPU under the determinism
settings of :mod:`trainact.training.runtime`). A loss that turns non-finite ends the run with the weights
of its last good epoch.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch
from torch import nn

from trainact.training.checkpoints import CheckpointClock, load_checkpoint, run_identity, save_checkpoint
from trainact.files import atomic_write, write_csv_atomic, write_text_atomic
from trainact.training.runtime import (
    DEVICE_HELP,
    SUMMARY_NAME,
    evaluate,
    job_device,
    rng_state,
    run_record,
    set_rng_state,
)
from trainact.names import PAPER_LEARNING_RATES, PAPER_LR_BOUNDARIES
from trainact.training.settings import ConfigSection, SCHEDULE_KEYS, schedule_problems

log = logging.getLogger(__name__)

#: val_* is the test split (the paper's "validation"); heldout_* the validation split held out from
#: the training images (dataset.validation_per_class), empty without one.
HISTORY_COLUMNS = (
    "epoch",
    "lr",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "train_eval_loss",
    "train_eval_acc",
    "heldout_loss",
    "heldout_acc",
    "seconds",
    "images_per_s",
    "status",
)
#: Per epoch and activation layer (trainact.nn.calibration.layer_health); epoch 0 is the start.
HEALTH_COLUMNS = (
    "epoch",
    "layer",
    "kind",
    "input_std",
    "input_rms",
    "outside_fit_share",
    "nonlinear_share",
    "relu_nonlinear_share",
    "param_distance",
    "param_relative_distance",
)
HEALTH_NAME = "activation_health.csv"
CHECKPOINT_NAME = "checkpoint.pt"
#: ``<out_dir>/snapshots/epoch<L>.pt``: the state after epoch L, where a branch of the schedule starts.
SNAPSHOT_DIR = "snapshots"
HISTORY_NAME = "history.csv"
MODEL_NAME = "model.pt"
ACTIVATIONS_NAME = "activations.json"


@dataclass(frozen=True)
class TrainSettings(ConfigSection):
    """Every training hyperparameter. Defaults are the paper's setting (Section 2.2)."""

    SECTION = "train"
    # snapshot_epochs only says which states to keep: it changes neither results nor state.
    RESUMABLE_ACROSS = ("device", "eval_batch_size", "epochs", "snapshot_epochs")

    epochs: int = 80  # paper: schedule defined past 60 but no total given; we stop at 80
    batch_size: int = 128  # paper silent
    # lr = learning_rates[i] for boundaries[i-1] < epoch <= boundaries[i] (eq. 1)
    lr_boundaries: tuple[int, ...] = PAPER_LR_BOUNDARIES
    learning_rates: tuple[float, ...] = PAPER_LEARNING_RATES
    rho: float = 0.95  # RMSProp decay, paper
    eps: float = 1e-7  # paper silent; Keras' RMSprop default (the paper's rho naming is Keras')
    # The activation layers' parameters (Fourier, LC, GainReLU) learn at lr * this factor, in an
    # optimiser group of their own (a control: does the result depend on how fast they move?).
    # 1.0 = the paper's single group over all parameters.
    activation_lr_scale: float = 1.0
    eval_batch_size: int = 1000  # evaluation only; does not change results
    # Eval-mode loss and accuracy on a fixed subset of this many training images after every
    # epoch (the same images for every run, TRAIN_EVAL_SEED): the measure of memorisation that
    # the running training accuracy is not. 0 = off. Evaluation only; does not change results.
    train_eval_images: int = 10_000
    # Epochs after which the full state is kept as snapshots/epoch<L>.pt, for branches of the
    # schedule (trainact train --branch-from). Does not change results.
    snapshot_epochs: tuple[int, ...] = ()
    seed: int = 0
    device: str | None = None  # trainact.training.runtime: auto (default, or $TRAINACT_DEVICE) | cuda | cpu

    def __post_init__(self) -> None:
        if self.epochs < 1:
            self.fail("epochs", self.epochs, "must be >= 1")
        if self.batch_size < 1:
            self.fail("batch_size", self.batch_size, "must be >= 1")
        if self.eval_batch_size < 1:
            self.fail("eval_batch_size", self.eval_batch_size, "must be >= 1")
        if self.train_eval_images < 0:
            self.fail("train_eval_images", self.train_eval_images, "must be >= 0")
        if any(not 1 <= e <= self.epochs for e in self.snapshot_epochs):
            self.fail("snapshot_epochs", list(self.snapshot_epochs), f"must lie in 1..epochs = {self.epochs}")
        for key, value, why in schedule_problems(self.lr_boundaries, self.learning_rates):
            self.fail(key, value, why)
        if any(not (lr > 0) for lr in self.learning_rates):
            self.fail("learning_rates", list(self.learning_rates), "must all be > 0")
        if not 0 <= self.rho < 1:
            self.fail("rho", self.rho, "must be in [0, 1)")
        if not self.eps > 0:
            self.fail("eps", self.eps, "must be > 0")
        if not (math.isfinite(self.activation_lr_scale) and self.activation_lr_scale > 0):
            self.fail("activation_lr_scale", self.activation_lr_scale, "must be finite and > 0")

    def learning_rate(self, epoch: int) -> float:
        """Learning rate of 1-based ``epoch`` (the paper's eq. (1))."""
        index = sum(epoch > boundary for boundary in self.lr_boundaries)
        return float(self.learning_rates[index])

    def learning_rates_until(self, epoch: int) -> list[float]:
        """The learning rate of each epoch 1..``epoch``: what a trunk and a branch must share."""
        return [self.learning_rate(e) for e in range(1, epoch + 1)]


#: Seed of the fixed training subset evaluated in eval mode after each epoch (the same for all runs).
TRAIN_EVAL_SEED = 0


def train_eval_subset(count: int, n: int) -> "np.ndarray":
    """Sorted indices of ``n`` of ``count`` training images, the same for every run (all if fewer)."""
    import numpy as np

    if n >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(TRAIN_EVAL_SEED).choice(count, size=n, replace=False))


def snapshot_path(out_dir: str | os.PathLike, epoch: int) -> Path:
    """Where a run keeps its state after ``epoch`` (``TrainSettings.snapshot_epochs``)."""
    return Path(out_dir) / SNAPSHOT_DIR / f"epoch{epoch}.pt"


class SnapshotMismatch(ValueError):
    """A branch's settings, code or data differ from its trunk's beyond the schedule's tail."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the history's last row is marked ``diverged``."""


#: Key of an optimiser parameter group: its learning rate is the schedule's times this factor.
LR_SCALE_KEY = "lr_scale"


def parameter_groups(model: nn.Module, activation_lr_scale: float) -> list[dict[str, Any]]:
    """The optimiser's parameter groups: all parameters in one group (the paper's optimiser), or,
    when ``activation_lr_scale != 1`` and the model has activation parameters, the network's
    parameters and then the activation layers' (``calibration.activation_layers``), the latter
    with ``LR_SCALE_KEY: activation_lr_scale``. Within each group the order is
    ``model.parameters()``'s. The single group holds the same parameters in the same order as
    ``RMSprop(model.parameters())``, so the default trains bit for bit as before the option.
    """
    from trainact.nn.calibration import activation_layers

    parameters = list(model.parameters())
    activation_ids = {id(p) for _, module in activation_layers(model) for p in module.parameters()}
    if activation_lr_scale == 1.0 or not activation_ids:
        return [{"params": parameters}]
    return [
        {"params": [p for p in parameters if id(p) not in activation_ids]},
        {"params": [p for p in parameters if id(p) in activation_ids], LR_SCALE_KEY: activation_lr_scale},
    ]


def write_history(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write the history CSV atomically (all rows, fixed column order)."""
    write_csv_atomic(path, rows, HISTORY_COLUMNS)


def health_rows(epoch: int, model: nn.Module, batch: torch.Tensor, start: Sequence[torch.Tensor]) -> list[dict]:
    """One ``HEALTH_COLUMNS`` row per activation layer after ``epoch`` (rounded for the CSV)."""
    from trainact.nn.calibration import layer_health

    rows = []
    for row in layer_health(model, batch, start):
        rows.append(
            {"epoch": epoch, **{k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}}
        )
    return rows


def fit(
    model: nn.Module,
    data,
    settings: TrainSettings,
    out_dir: str | os.PathLike,
    *,
    resume: bool = True,
    progress: bool = True,
    stop_after_epoch: int | None = None,
    identity: Mapping[str, str] | None = None,
    branch_from: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """Train ``model`` on ``data`` (a :class:`trainact.data.cifar.PreparedData`), validate on its test split.

    When ``data`` has a validation split held out from the training images, each epoch is also
    evaluated on it (``heldout_loss``/``heldout_acc``; empty without a split): choices made by
    measurement are made there, not on the test split. Evaluation only: the training is the same.

    Writes into ``out_dir``: ``history.csv`` (one row per epoch), ``activation_health.csv`` (per
    epoch, from 0 = the start, and activation layer: input scale, share outside the Fourier fit
    interval, non-linearity, parameter movement; on the calibration images of ``settings.seed``),
    ``checkpoint.pt`` (about once a minute and after the last epoch), and when the run completes
    or diverges ``model.pt``, ``activations.json`` and ``summary.json``. The model arrives initialised: built after
    ``seed_everything`` and calibrated (:func:`trainact.nn.calibration.calibrate`) or pretrained.
    ``stop_after_epoch`` ends the call early, with a checkpoint (as a crash right after one would),
    for tests of resumption. ``identity`` (:func:`trainact.training.checkpoints.run_identity`: the code and
    input files the run depends on) joins the settings in the checkpoint's fingerprint, so a
    checkpoint from other code or data is not resumed. Returns the history rows. Raises :class:`TrainingDiverged` on a
    non-finite loss, after writing the results of the last good epoch (the start for epoch 1).
    """
    from tqdm.auto import tqdm

    from trainact.nn.kernel_compiler import reset_kernel_report
    from trainact.nn.calibration import HEALTH_IMAGES, activation_layers, calibration_batch, parameter_vector
    from trainact.data.loader import DeviceDataset

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device, run_info = job_device(settings.device)
    reset_kernel_report()  # the summary says which activation kernels ran in this run
    model.to(device)
    train_set = DeviceDataset(data.train_images, data.train_labels, device)
    val_set = DeviceDataset(data.test_images, data.test_labels, device)
    optimizer = torch.optim.RMSprop(
        parameter_groups(model, settings.activation_lr_scale),
        lr=settings.learning_rate(1),
        alpha=settings.rho,
        eps=settings.eps,
    )
    fingerprint = {**settings.checkpoint_fingerprint(model=model), **(identity or {})}
    history: list[dict[str, Any]] = []
    # Activation health: measured on the calibration images, against the parameters' start.
    health_batch = calibration_batch(data.train_images, settings.seed)[:HEALTH_IMAGES]
    start = [parameter_vector(module) for _, module in activation_layers(model)]
    health: list[dict[str, Any]] = []

    def restore(state: Mapping[str, Any]) -> None:
        nonlocal history, start, health
        # On the CPU as loaded; load_state_dict moves weights and optimizer state to the device.
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = list(state["history"])
        start = [vector.to(device) for vector in state["activation_start"]]
        health = list(state["health"])
        set_rng_state(state["rng"], device)

    checkpoint_path = out_dir / CHECKPOINT_NAME
    checkpoint = load_checkpoint(checkpoint_path) if resume else None
    if checkpoint is not None and checkpoint.get("fingerprint") == fingerprint:
        checkpoint = _without_snapshot_gaps(checkpoint, out_dir, settings.snapshot_epochs)
    resumed = False
    if checkpoint is not None:
        if checkpoint.get("fingerprint") == fingerprint and len(checkpoint["history"]) <= settings.epochs:
            restore(checkpoint)
            resumed = True
            log.info("resuming %s after epoch %d", out_dir, len(history))
        else:
            log.warning("%s was written with other settings; training from scratch", checkpoint_path)
    # What a trunk and its branches must share: everything but the schedule (the learning rates
    # up to the branch point are compared on their own below).
    shared = {k: v for k, v in fingerprint.items() if k not in SCHEDULE_KEYS}
    if branch_from is not None and not resumed:
        snapshot = load_checkpoint(branch_from)
        if snapshot is None or "branch" not in snapshot:
            raise SnapshotMismatch(f"{branch_from}: no snapshot of a trunk run there")
        branch_epoch = snapshot["branch"]["epoch"]
        differing = sorted(k for k in set(shared) | set(snapshot["branch"]["shared"])
                           if shared.get(k) != snapshot["branch"]["shared"].get(k))  # fmt: skip
        if differing:
            raise SnapshotMismatch(f"{branch_from}: the trunk was run with other {', '.join(differing)}")
        if snapshot["branch"]["learning_rates"] != settings.learning_rates_until(branch_epoch):
            raise SnapshotMismatch(
                f"{branch_from}: the trunk's learning rates for epochs 1-{branch_epoch} "
                f"{snapshot['branch']['learning_rates']} are not this schedule's "
                f"{settings.learning_rates_until(branch_epoch)}"
            )
        if branch_epoch > settings.epochs:
            raise SnapshotMismatch(f"{branch_from}: epoch {branch_epoch} lies past train.epochs = {settings.epochs}")
        restore(snapshot)
        log.info("branching %s from %s after epoch %d", out_dir, branch_from, branch_epoch)
    # The weights a divergence falls back to: the last good epoch's (kept in memory, because the
    # checkpoint is written by time and may be older).
    last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def checkpoint_state() -> dict[str, Any]:
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "history": history,
            "health": health,
            "activation_start": start,
            "rng": rng_state(device),
            "fingerprint": fingerprint,
        }

    clock = CheckpointClock()
    if not health:
        health = health_rows(0, model, health_batch, start)
    write_history(out_dir / HISTORY_NAME, history)
    write_csv_atomic(out_dir / HEALTH_NAME, health, HEALTH_COLUMNS)

    # Eval-mode accuracy on a fixed subset of the training images (memorisation, not the running mean).
    subset = train_eval_subset(len(train_set), settings.train_eval_images)
    train_eval_set = DeviceDataset(data.train_images[subset], data.train_labels[subset], device)
    heldout_set = (
        DeviceDataset(data.validation_images, data.validation_labels, device) if data.has_validation else None
    )
    loss_fn = nn.CrossEntropyLoss()
    # What the summary states of the schedule: optimiser steps, not only epochs, per learning rate.
    schedule = {
        "train_images": len(train_set),
        "batch_size": settings.batch_size,
        "steps_per_epoch": train_set.num_batches(settings.batch_size),
    }
    first_epoch = len(history) + 1
    epochs = tqdm(
        range(first_epoch, settings.epochs + 1),
        desc=f"train {out_dir.name}",
        unit="epoch",
        initial=first_epoch - 1,
        total=settings.epochs,
        disable=not progress,
    )
    for epoch in epochs:
        lr = settings.learning_rate(epoch)
        for group in optimizer.param_groups:
            # the activation group's factor (parameter_groups); the network's group has none
            group["lr"] = lr * group[LR_SCALE_KEY] if LR_SCALE_KEY in group else lr
        model.train()
        started = time.perf_counter()
        # Sums stay on the device: no host synchronisation inside the loop.
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        batches = tqdm(
            train_set.batches(settings.batch_size, shuffle=True, seed=settings.seed, epoch=epoch),
            total=train_set.num_batches(settings.batch_size),
            desc=f"epoch {epoch}",
            unit="batch",
            leave=False,
            disable=not progress,
        )
        for images, labels in batches:
            logits = model(images)
            loss = loss_fn(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach().double() * labels.shape[0]
            correct += (logits.detach().argmax(1) == labels).sum()
        train_seconds = time.perf_counter() - started
        train_loss = loss_sum.item() / len(train_set)
        if not math.isfinite(train_loss):
            history.append({"epoch": epoch, "lr": lr, "status": "diverged"})
            write_history(out_dir / HISTORY_NAME, history)
            # Keep the outputs complete (the workflow expects them): the last good weights.
            model.load_state_dict(last_good)
            save_results(model, out_dir, history, run_info, schedule)
            raise TrainingDiverged(
                f"{out_dir}: the training loss became non-finite in epoch {epoch} (lr {lr:g}); "
                f"stopped; model.pt holds the weights "
                + (f"after epoch {epoch - 1}" if epoch > 1 else "of the start")
            )
        val_loss, val_acc = evaluate(model, val_set, settings.eval_batch_size)
        train_eval_loss, train_eval_acc = (
            evaluate(model, train_eval_set, settings.eval_batch_size) if len(train_eval_set) else (None, None)
        )
        heldout_loss, heldout_acc = (
            evaluate(model, heldout_set, settings.eval_batch_size) if heldout_set is not None else (None, None)
        )
        row = {
            "epoch": epoch,
            "lr": lr,
            "train_loss": round(train_loss, 6),
            "train_acc": round(correct.item() / len(train_set), 6),
            "val_loss": round(val_loss, 6),
            "val_acc": round(val_acc, 6),
            "train_eval_loss": None if train_eval_loss is None else round(train_eval_loss, 6),
            "train_eval_acc": None if train_eval_acc is None else round(train_eval_acc, 6),
            "heldout_loss": None if heldout_loss is None else round(heldout_loss, 6),
            "heldout_acc": None if heldout_acc is None else round(heldout_acc, 6),
            "seconds": round(time.perf_counter() - started, 3),
            "images_per_s": round(len(train_set) / train_seconds, 1),
            "status": "ok",
        }
        history.append(row)
        health += health_rows(epoch, model, health_batch, start)
        last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
        stopping = stop_after_epoch is not None and epoch >= stop_after_epoch
        clock.save_if_due(checkpoint_path, checkpoint_state, force=epoch == settings.epochs or stopping)
        if epoch in settings.snapshot_epochs:
            branch = {"epoch": epoch, "learning_rates": settings.learning_rates_until(epoch), "shared": shared}
            save_checkpoint(snapshot_path(out_dir, epoch), {**checkpoint_state(), "branch": branch})
        write_history(out_dir / HISTORY_NAME, history)
        write_csv_atomic(out_dir / HEALTH_NAME, health, HEALTH_COLUMNS)
        epochs.set_postfix(val_acc=f"{val_acc:.4f}", train_loss=f"{train_loss:.3f}")
        log.info(
            "epoch %d/%d lr %g train loss %.4f acc %.4f | val loss %.4f acc %.4f | %.0f img/s",
            epoch, settings.epochs, lr, row["train_loss"], row["train_acc"], val_loss, val_acc,
            row["images_per_s"],
        )  # fmt: skip
        if stopping:
            return history

    save_results(model, out_dir, history, run_info, schedule)
    return history


def _without_snapshot_gaps(
    checkpoint: dict[str, Any], out_dir: Path, snapshot_epochs: Sequence[int]
) -> dict[str, Any] | None:
    """The state to resume from so that every snapshot the run promises gets written.

    A workflow deletes a failed job's declared outputs, snapshots included, while the checkpoint
    (not an output) stays; resuming from it would never write the deleted snapshots again. So
    when a snapshot up to the checkpoint's epoch is missing, resume from the latest snapshot
    before the first gap (a full state like the checkpoint), or from the start if there is none.
    """
    done = len(checkpoint["history"])
    gaps = [e for e in snapshot_epochs if e <= done and not snapshot_path(out_dir, e).is_file()]
    if not gaps:
        return checkpoint
    earlier = [e for e in snapshot_epochs if e < gaps[0] and snapshot_path(out_dir, e).is_file()]
    log.warning(
        "%s: snapshot(s) after epoch(s) %s missing; resuming %s", out_dir, gaps,
        f"from the snapshot after epoch {earlier[-1]}" if earlier else "from the start",
    )  # fmt: skip
    return load_checkpoint(snapshot_path(out_dir, earlier[-1])) if earlier else None


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

    ``run_info`` (from :func:`trainact.training.runtime.job_device`) says where and how it ran: the
    device, the determinism settings, the compile cache; the summary adds which implementation
    of the activations ran (:func:`trainact.training.runtime.run_record`). ``schedule`` (training images,
    batch size, steps per epoch) gives the optimiser steps per learning rate and the training
    time summed over the epochs.
    """

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(out_dir / MODEL_NAME, lambda tmp: torch.save(state, tmp))
    meta = {
        "size": getattr(model, "size_name", None),
        "activation": getattr(model, "activation_name", None),
        "layers": activation_parameters(model),
        # Each activation layer's input at the start, and the Fourier fit interval chosen from it.
        "calibration": getattr(model, "calibration", None),
    }
    write_text_atomic(out_dir / ACTIVATIONS_NAME, json.dumps(meta, indent=1))
    ok = [r for r in history if r.get("status") == "ok"]
    summary = {
        "epochs": len(ok),
        "best_val_acc": max((r["val_acc"] for r in ok), default=None),
        "final_val_acc": ok[-1]["val_acc"] if ok else None,
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "status": history[-1]["status"] if history else "empty",
        **(dict(schedule) if schedule else {}),
        "steps_by_learning_rate": _steps_by_learning_rate(ok, schedule["steps_per_epoch"]) if schedule else None,
        "train_seconds": round(sum(r["seconds"] for r in ok), 3),
        **run_record(run_info),
    }
    write_text_atomic(out_dir / SUMMARY_NAME, json.dumps(summary, indent=1))


def _steps_by_learning_rate(rows: Sequence[Mapping[str, Any]], steps_per_epoch: int) -> list[dict[str, Any]]:
    """``[{lr, epochs, steps}]`` over the epochs run, in order (a phase per learning rate)."""
    phases: list[dict[str, Any]] = []
    for row in rows:
        if phases and phases[-1]["lr"] == row["lr"]:
            phases[-1]["epochs"] += 1
        else:
            phases.append({"lr": row["lr"], "epochs": 1})
    return [{**p, "steps": p["epochs"] * steps_per_epoch} for p in phases]


# ----------------------------------------------------------------------------------- CLI


def _cmd_train(args: argparse.Namespace) -> int:
    from trainact.nn.calibration import calibrate
    from trainact.cli import CLIError, parse_params
    from trainact.data.cifar import load_prepared
    from trainact.nn.models import build_model
    from trainact.training.runtime import resolve_device, seed_everything

    params = parse_params(args.params, ("model", "train"))
    try:
        settings = TrainSettings.from_params(params.get("train", {}), seed=args.seed, device=args.device)
        resolve_device(settings.device)  # fail before loading data; fit gets the same device
        seed_everything(settings.seed)
        model = build_model(args.size, args.activation, params.get("model", {}))
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    data = load_prepared(args.data)
    calibrate(model, data.train_images, settings.seed)
    try:
        fit(
            model, data, settings, args.out_dir, resume=not args.no_resume, progress=not args.no_progress,
            identity=run_identity("train", params.get("model", {}), args.data), branch_from=args.branch_from,
        )  # fmt: skip
    except SnapshotMismatch as exc:
        raise CLIError(str(exc)) from None
    except TrainingDiverged as exc:
        log.error("%s", exc)
        return 0 if args.allow_divergence else 3
    return 0


def register_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one CNN (size x activation x seed) and write its history",
        description="Train one CNN with RMSProp and the paper's schedule; resumable.",
    )
    parser.add_argument("--data", required=True, help="prepared .npz from 'trainact prepare'")
    parser.add_argument("--size", required=True, help="small | middle | large")
    parser.add_argument("--activation", required=True, help="relu | fourier | lc")
    parser.add_argument("--seed", type=int, default=None, help="overrides train.seed")
    parser.add_argument("--params", default="{}", help='JSON: {"model": {...}, "train": {...}}')
    parser.add_argument("--out-dir", required=True, type=Path)
    parser.add_argument("--device", default=None, help=DEVICE_HELP)
    parser.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument(
        "--branch-from",
        type=Path,
        default=None,
        help="a trunk's snapshots/epoch<L>.pt: continue from it with this schedule's epochs after L",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--allow-divergence",
        action="store_true",
        help="exit 0 when the loss goes non-finite (the history is marked 'diverged')",
    )
    parser.set_defaults(func=_cmd_train)
