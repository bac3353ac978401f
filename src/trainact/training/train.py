"""The trainer: RMSProp with the paper's step schedule, one history row per epoch, resumable.

Read top to bottom: :func:`fit` runs one :func:`training` to its end; a training is the loop
(``_training_steps``), in three steps (the run at its start or resumed, the epochs, the results),
yielding after every optimiser step so that a pack (:mod:`trainact.training.pack`) can interleave
several networks' steps; each epoch is :func:`train_epoch` (the one training step,
:func:`trainact.training.step.classifier_step`'s, per batch, on static buffers and as CUDA graphs
on a GPU: :mod:`trainact.training.graph_step`) and :func:`evaluate_epoch`. The
hyperparameters are :class:`trainact.training.train_settings.TrainSettings`; the files written,
:mod:`trainact.training.results`; snapshots and branches, :mod:`trainact.training.snapshots`.

Crash safety: ``history.csv`` is rewritten after every epoch; the model, optimizer, history and
RNG states go to ``checkpoint.pt`` about once a minute and after the last epoch
(:mod:`trainact.training.checkpoints`: by time, read on the CPU, set aside when damaged). A run started
again with the same settings, code and data resumes after the last checkpointed epoch; since each epoch's
shuffle order is a pure function of (seed, epoch), the resumed run ends with the same history
and weights as an uninterrupted one (bit for bit on the CPU, and on a GPU under the determinism
settings of :mod:`trainact.training.job`). A loss that turns non-finite ends the run with the weights
of its last good epoch.

SIGTERM and SIGINT (:mod:`trainact.training.interrupt`, under ``trainact train``) stop the run
before its next optimiser step with a checkpoint of that moment: inside an epoch it records the
position in it (``EPOCH_POSITION_KEY``: the steps done, the epoch's running sums and seconds, the
last good epoch's weights), and the rerun continues the epoch from there, to the same history and
weights as an uninterrupted run.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import time
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainact.run_files import CHECKPOINT_FILE, HISTORY_FILE
from trainact.training import interrupt
from trainact.training.checkpoints import CheckpointClock, resumable_checkpoint, run_identity, save_checkpoint
from trainact.training.device import DEVICE_HELP
from trainact.training.divergence import (
    DIVERGED_EXIT_CODE,
    DIVERGENCE_HELP,
    DIVERGENCE_POLICIES,
    default_divergence_policy,
    diverged_message,
    diverged_record,
    divergence_exit_code,
)
from trainact.training.evaluation import evaluate
from trainact.training.graph_step import TrainStepper, make_stepper
from trainact.training.job import job_device
from trainact.training.random_state import rng_state, set_rng_state
from trainact.training.results import health_rows, save_results, write_history, write_progress
from trainact.training.snapshots import (
    SnapshotMismatch,
    branch_record,
    check_branch,
    snapshot_path,
    without_snapshot_gaps,
)
from trainact.training.step import rmsprop
from trainact.training.train_settings import TrainSettings

log = logging.getLogger(__name__)

#: Seed of the fixed training subset evaluated in eval mode after each epoch (the same for all runs).
TRAIN_EVAL_SEED = 0
#: Key of an optimiser parameter group: its learning rate is the schedule's times this factor.
LR_SCALE_KEY = "lr_scale"
#: Key of a checkpoint written inside an epoch (at a signal): where in the epoch it stands
#: (:func:`epoch_position`); absent from checkpoints written at an epoch's end.
EPOCH_POSITION_KEY = "epoch_position"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the history's last row is marked ``diverged``."""


def train_eval_subset(count: int, n: int) -> np.ndarray:
    """Sorted indices of ``n`` of ``count`` training images, the same for every run (all if fewer)."""

    if n >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(TRAIN_EVAL_SEED).choice(count, size=n, replace=False))


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


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """The schedule's ``lr`` for every group, times the group's ``LR_SCALE_KEY`` factor if it has one
    (the activation group, :func:`parameter_groups`; the network's group has none)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group[LR_SCALE_KEY] if LR_SCALE_KEY in group else lr


# ----------------------------------------------------------------------- the run's state


@dataclass
class Run:
    """One training run on its device: the model and optimiser, and what a checkpoint keeps with
    them: the history rows, the activation-health rows, and each activation layer's parameters at
    the start (the health's reference)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    fingerprint: dict[str, Any]
    history: list[dict[str, Any]]
    health: list[dict[str, Any]]
    start: list[torch.Tensor]
    #: the training step's record of the processes before this one (from the checkpoint)
    earlier_steps: dict[str, Any] | None = None
    #: this process's training step (set once the run is set up)
    stepper: TrainStepper | None = None
    #: where in an epoch the checkpoint it resumed from was written (:func:`epoch_position`)
    position: dict[str, Any] | None = None

    def step_record(self) -> dict[str, Any] | None:
        """The training step's record of the whole run so far (``summary.json``'s ``train_step``)."""
        if self.stepper is None:
            return self.earlier_steps
        return self.stepper.record_since(self.earlier_steps)

    def state(self) -> dict[str, Any]:
        """What a checkpoint (or a snapshot) holds; with the activation kernels that ran so far,
        so that a resumed run's summary names them all."""
        from trainact.nn.kernel_compiler import kernel_report

        return {
            "activation_kernels": kernel_report()["implementations"],
            "train_step": self.step_record(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "history": self.history,
            "health": self.health,
            "activation_start": self.start,
            "rng": rng_state(self.device),
            "fingerprint": self.fingerprint,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state`'s output. On the CPU as loaded; ``load_state_dict`` moves
        weights and optimizer state to the device."""
        from trainact.nn.kernel_compiler import record_implementation

        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.history = list(state["history"])
        self.start = [vector.to(self.device) for vector in state["activation_start"]]
        self.health = list(state["health"])
        set_rng_state(state["rng"], self.device)
        for impl in state.get("activation_kernels", []):  # older checkpoints: none recorded
            record_implementation(impl)
        self.earlier_steps = state.get("train_step")
        self.position = state.get(EPOCH_POSITION_KEY)

    def take_position(self, epoch: int) -> dict[str, Any] | None:
        """The resumed position inside ``epoch``, once (``None`` for any other epoch, or after
        the first call: only the epoch the checkpoint was written in continues from it)."""
        position, self.position = self.position, None
        return position if position is not None and position["epoch"] == epoch else None

    def weights(self) -> dict[str, torch.Tensor]:
        """A copy of the weights: what a divergence falls back to."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}


@dataclass
class Splits:
    """The data a run sees on its device: it trains on ``train``, and evaluates after each epoch on
    ``val`` (the test split), ``train_eval`` (a fixed training subset) and ``heldout`` (the
    validation split held out from the training images, ``None`` without one)."""

    train: Any
    val: Any
    train_eval: Any
    heldout: Any | None


def load_splits(data, settings: TrainSettings, device: torch.device) -> Splits:
    """:class:`Splits` of ``data`` (a :class:`trainact.data.cifar.PreparedData`) on ``device``."""
    from trainact.data.loader import DeviceDataset

    train_set = DeviceDataset(data.train_images, data.train_labels, device)
    val_set = DeviceDataset(data.test_images, data.test_labels, device)
    # Eval-mode accuracy on a fixed subset of the training images (memorisation, not the running mean).
    subset = train_eval_subset(len(train_set), settings.train_eval_images)
    train_eval_set = DeviceDataset(data.train_images[subset], data.train_labels[subset], device)
    heldout_set = (
        DeviceDataset(data.validation_images, data.validation_labels, device) if data.has_validation else None
    )
    return Splits(train_set, val_set, train_eval_set, heldout_set)


def new_run(
    model: nn.Module, settings: TrainSettings, device: torch.device, identity: Mapping[str, str] | None
) -> Run:
    """The run at its start: the paper's RMSProp over :func:`parameter_groups`, no history."""
    from trainact.nn.calibration import activation_layers, parameter_vector

    optimizer = rmsprop(
        parameter_groups(model, settings.activation_lr_scale),
        lr=settings.learning_rate(1),
        rho=settings.rho,
        eps=settings.eps,
    )
    fingerprint = {**settings.checkpoint_fingerprint(model=model), **(identity or {})}
    start = [parameter_vector(module) for _, module in activation_layers(model)]
    return Run(model, optimizer, device, fingerprint, history=[], health=[], start=start)


def resume_or_branch(
    run: Run, settings: TrainSettings, out_dir: Path, *, resume: bool, branch_from: str | os.PathLike | None
) -> None:
    """Continue the run from its own checkpoint (the one resume rule,
    :func:`trainact.training.checkpoints.resumable_checkpoint`), else from the trunk's snapshot
    ``branch_from`` if given, else leave it at its start."""
    checkpoint = resumable_checkpoint(
        out_dir / CHECKPOINT_FILE, run.fingerprint, progress="history", most=settings.epochs,
        resume=resume, starting_over="training from scratch",
        substitute=lambda found: without_snapshot_gaps(found, out_dir, settings.snapshot_epochs),
    )  # fmt: skip
    if checkpoint is not None:
        run.restore(checkpoint)
        at = run.position
        inside = f", step {at['step']} of {at['steps']} of epoch {at['epoch']}" if at else ""
        log.info("resuming %s after epoch %d%s", out_dir, len(run.history), inside)
    elif branch_from is not None:
        run.restore(check_branch(branch_from, settings, run.fingerprint))
        log.info("branching %s from %s after epoch %d", out_dir, branch_from, len(run.history))


# ------------------------------------------------------------------------------ the loop


def fit(
    model: nn.Module, data, settings: TrainSettings, out_dir: str | os.PathLike, **options: Any
) -> list[dict[str, Any]]:
    """Train ``model`` on ``data`` (a :class:`trainact.data.cifar.PreparedData`), validate on its test split.

    When ``data`` has a validation split held out from the training images, each epoch is also
    evaluated on it (``heldout_loss``/``heldout_acc``; empty without a split): choices made by
    measurement are made there, not on the test split. Evaluation only: the training is the same.

    Writes into ``out_dir``: ``history.csv`` (one row per epoch), ``activation_health.csv`` (per
    epoch, from 0 = the start, and activation layer: input scale, share outside the Fourier fit
    interval, non-linearity, parameter movement; on the calibration images of ``settings.seed``),
    ``checkpoint.pt`` (about once a minute and after the last epoch), and when the run completes
    or diverges ``model.pt``, ``activations.json`` and ``summary.json``. The model arrives
    initialised: built after ``seed_everything`` and calibrated
    (:func:`trainact.nn.calibration.calibrate`) or pretrained. ``stop_after_epoch`` ends the call
    early, with a checkpoint (as a crash right after one would), for tests of resumption.
    ``identity`` (:func:`trainact.training.checkpoints.run_identity`: the code and input files the
    run depends on) joins the settings in the checkpoint's fingerprint, so a
    checkpoint from other code or data is not resumed. ``branch_from`` (a trunk's snapshot,
    :mod:`trainact.training.snapshots`) starts the run there unless it resumes its own checkpoint.
    Returns the history rows. Raises :class:`TrainingDiverged` on a non-finite loss, after
    writing the results of the last good epoch (the start for epoch 1).

    This is :func:`training` run to its end alone, with its keyword ``options`` (``resume=True``,
    ``progress=True``, ``stop_after_epoch``, ``identity``, ``branch_from``, ``stream``); a pack
    (:mod:`trainact.training.pack`) runs several at once.
    """
    steps = training(model, data, settings, out_dir, **options)
    while steps.advance():
        pass
    return steps.history


@dataclass
class Training:
    """One network's training as a sequence of steps, for :func:`fit` alone or a pack.

    :meth:`advance` runs the training up to the end of its next optimiser step (the first call
    also sets the run up; the last one, after the last epoch, writes the results) and says whether
    there is more; ``history`` holds the history rows once there is not. Each call runs with
    ``kernels`` as the kernel record (:func:`trainact.nn.kernel_compiler.recording_kernels`) and,
    given a CUDA ``stream``, on it: a pack interleaves its networks' steps, one call each in turn,
    and each network's kernels and summary stay its own.
    """

    out_dir: Path
    steps: Iterator[None]
    stream: Any = None
    kernels: set[str] = field(default_factory=set)
    history: list[dict[str, Any]] | None = None
    #: whether :meth:`advance` was called (the run set up)
    started: bool = False

    def advance(self) -> bool:
        from trainact.nn.kernel_compiler import recording_kernels

        self.started = True
        stream = torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext()
        with recording_kernels(self.kernels), stream:
            try:
                next(self.steps)
            except StopIteration as done:
                self.history = done.value
                return False
        return True


def training(
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
    stream: Any = None,
) -> Training:
    """:func:`fit`'s training as a :class:`Training` (same arguments; ``stream``: a CUDA stream
    to run on). Nothing happens until its first :meth:`Training.advance`."""
    out_dir = Path(out_dir)
    steps = _training_steps(
        model, data, settings, out_dir, resume, progress, stop_after_epoch, identity, branch_from
    )
    return Training(out_dir, steps, stream)


def _training_steps(
    model: nn.Module, data, settings: TrainSettings, out_dir: Path, resume: bool, progress: bool,
    stop_after_epoch: int | None, identity: Mapping[str, str] | None, branch_from: str | os.PathLike | None,
) -> Generator[None, None, list[dict[str, Any]]]:  # fmt: skip
    """:func:`fit`'s body, yielding after every optimiser step; returns the history rows."""
    from trainact.nn.calibration import HEALTH_IMAGES, calibration_batch

    # 1. The device, the data on it, the run at its start or where its checkpoint left it.
    out_dir.mkdir(parents=True, exist_ok=True)
    device, run_info = job_device(settings.device)
    model.to(device)
    splits = load_splits(data, settings, device)
    run = new_run(model, settings, device, identity)
    # Activation health: measured on the calibration images, against the parameters' start.
    health_batch = calibration_batch(data.train_images, settings.seed)[:HEALTH_IMAGES]
    resume_or_branch(run, settings, out_dir, resume=resume, branch_from=branch_from)
    run.health = run.health or health_rows(0, model, health_batch, run.start)
    write_progress(out_dir, run.history, run.health)
    # The training step (trainact.training.graph_step): CUDA graphs on a GPU; built once per run.
    stepper = run.stepper = make_stepper(model, nn.CrossEntropyLoss(), run.optimizer, splits.train)

    # 2. The epochs still to run: train, evaluate, write the history, checkpoint by time.
    clock = CheckpointClock()
    # The weights a divergence falls back to: the last good epoch's (kept in memory, because the
    # checkpoint is written by time and may be older; a checkpoint written inside an epoch has them).
    last_good = run.position["last_good"] if run.position else run.weights()
    schedule = schedule_record(splits.train, settings.batch_size)
    bar = _epoch_bar(len(run.history) + 1, settings, out_dir, progress)
    for epoch in bar:
        resume_at = run.take_position(epoch)  # a checkpoint written inside this epoch: its position
        started = time.perf_counter() - (resume_at["seconds"] if resume_at else 0.0)
        try:
            trained = yield from train_epoch(run, splits.train, settings, epoch, progress, stepper, resume_at)
        except interrupt.StopBeforeStep as stop:
            raise _stop_at_signal(run, out_dir, epoch, stop, last_good, splits.train, settings) from None
        if not math.isfinite(trained["train_loss"]):
            step_info = {**run_info, "train_step": run.step_record()}
            _stop_diverged(run, out_dir, last_good, step_info, schedule, epoch, trained["lr"])
        evaluated = evaluate_epoch(model, splits, settings.eval_batch_size)
        row = history_row(epoch, trained, evaluated, seconds=time.perf_counter() - started)
        run.history.append(row)
        run.health += health_rows(epoch, model, health_batch, run.start)
        last_good = run.weights()
        stopping = stop_after_epoch is not None and epoch >= stop_after_epoch
        _save_state(run, settings, out_dir, clock, epoch, force=epoch == settings.epochs or stopping)
        write_progress(out_dir, run.history, run.health)
        bar.set_postfix(val_acc=f"{row['val_acc']:.4f}", train_loss=f"{row['train_loss']:.3f}")
        _log_epoch(row, settings.epochs)
        if stopping:
            return run.history

    # 3. The run is complete: its weights, learned activations and summary.
    save_results(model, out_dir, run.history, {**run_info, "train_step": run.step_record()}, schedule)
    return run.history


def schedule_record(train_set, batch_size: int) -> dict[str, int]:
    """What the summary states of the schedule: optimiser steps, not only epochs, per learning rate."""
    return {
        "train_images": len(train_set),
        "batch_size": batch_size,
        "steps_per_epoch": train_set.num_batches(batch_size),
    }


def _epoch_bar(first_epoch: int, settings: TrainSettings, out_dir: Path, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(
        range(first_epoch, settings.epochs + 1),
        desc=f"train {out_dir.name}",
        unit="epoch",
        initial=first_epoch - 1,
        total=settings.epochs,
        disable=not progress,
    )


def train_epoch(
    run: Run,
    train_set,
    settings: TrainSettings,
    epoch: int,
    progress: bool,
    stepper: TrainStepper | None = None,
    resume_at: Mapping[str, Any] | None = None,
) -> Generator[None, None, dict[str, float]]:
    """One epoch of training at the schedule's learning rate, in the seeded order of (seed, epoch),
    yielding after each step. ``stepper`` is the run's training step
    (:func:`trainact.training.graph_step.make_stepper`, built once per run: its CUDA graphs last
    across epochs); without one, one for this epoch. ``resume_at`` (:func:`epoch_position`)
    continues the epoch after its steps done, with its running sums. Returns ``lr``, the epoch's
    mean ``train_loss`` (maybe not finite), ``train_acc`` (the running accuracy) and
    ``images_per_s``, unrounded. Raises :class:`trainact.training.interrupt.StopBeforeStep`
    before a step when a signal was received (:func:`trainact.training.interrupt.requested`)."""
    from tqdm.auto import tqdm

    lr = settings.learning_rate(epoch)
    set_learning_rate(run.optimizer, lr)
    run.model.train()
    stepper = stepper or make_stepper(run.model, nn.CrossEntropyLoss(), run.optimizer, train_set)
    totals = stepper.epoch_totals()  # on the device: no host synchronisation inside the loop
    order = train_set.batch_indices(settings.batch_size, seed=settings.seed, epoch=epoch)
    steps = interrupt.epoch_steps(order, totals, resume_at)
    batches = tqdm(
        steps.remaining,
        initial=steps.done,
        total=train_set.num_batches(settings.batch_size),
        desc=f"epoch {epoch}",
        unit="batch",
        leave=False,
        disable=not progress,
    )
    for index in batches:
        stepper.step(index)
        yield
    seconds = time.perf_counter() - steps.started
    return {
        "lr": lr,
        "train_loss": totals.loss_sum.item() / len(train_set),
        "train_acc": totals.correct.item() / len(train_set),
        "images_per_s": len(train_set) / seconds,
    }


def evaluate_epoch(model: nn.Module, splits: Splits, batch_size: int) -> dict[str, Any]:
    """The history row's evaluation part: loss and accuracy on the test split, the fixed training
    subset (if any) and the held-out split (if any), and the epoch's seconds so far."""
    val_loss, val_acc = evaluate(model, splits.val, batch_size)
    train_eval_loss, train_eval_acc = (
        evaluate(model, splits.train_eval, batch_size) if len(splits.train_eval) else (None, None)
    )
    heldout_loss, heldout_acc = (
        evaluate(model, splits.heldout, batch_size) if splits.heldout is not None else (None, None)
    )
    return {
        "val_loss": round(val_loss, 6),
        "val_acc": round(val_acc, 6),
        "train_eval_loss": _rounded(train_eval_loss),
        "train_eval_acc": _rounded(train_eval_acc),
        "heldout_loss": _rounded(heldout_loss),
        "heldout_acc": _rounded(heldout_acc),
    }


def history_row(
    epoch: int, trained: Mapping[str, float], evaluated: Mapping[str, Any], seconds: float
) -> dict[str, Any]:
    """One ``history.csv`` row (``TRAIN_HISTORY_COLUMNS``), rounded for the CSV."""
    return {
        "epoch": epoch,
        "lr": trained["lr"],
        "train_loss": round(trained["train_loss"], 6),
        "train_acc": round(trained["train_acc"], 6),
        **evaluated,
        "seconds": round(seconds, 3),
        "images_per_s": round(trained["images_per_s"], 1),
        "status": "ok",
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _save_state(
    run: Run, settings: TrainSettings, out_dir: Path, clock: CheckpointClock, epoch: int, *, force: bool
) -> None:
    """The checkpoint when due (or ``force``: the last epoch, an early stop), and the snapshot
    after a ``snapshot_epochs`` epoch (where a branch of the schedule starts)."""
    clock.save_if_due(out_dir / CHECKPOINT_FILE, run.state, force=force)
    if epoch in settings.snapshot_epochs:
        save_checkpoint(
            snapshot_path(out_dir, epoch),
            {**run.state(), "branch": branch_record(epoch, settings, run.fingerprint)},
        )


def epoch_position(
    epoch: int, stop: interrupt.StopBeforeStep, steps: int, last_good: Mapping[str, torch.Tensor]
) -> dict[str, Any] | None:
    """What a checkpoint written inside ``epoch`` (``EPOCH_POSITION_KEY``) records, on the CPU: the
    epoch, the ``step`` of its ``steps`` done, its running sums (``loss_sum``, ``correct``) and
    ``seconds``, and the weights after the epoch before (``last_good``). ``None`` before the
    epoch's first step: then the run stands at the epoch's start, as after the epoch before."""
    if stop.step == 0:
        return None
    return {
        "epoch": epoch,
        "step": stop.step,
        "steps": steps,
        "loss_sum": stop.totals.loss_sum.cpu(),
        "correct": stop.totals.correct.cpu(),
        "seconds": stop.seconds,
        "last_good": {name: tensor.cpu() for name, tensor in last_good.items()},
    }


def _stop_at_signal(
    run: Run, out_dir: Path, epoch: int, stop: interrupt.StopBeforeStep,
    last_good: Mapping[str, torch.Tensor], train_set, settings: TrainSettings,
) -> interrupt.Interrupted:  # fmt: skip
    """Write the checkpoint of the run as it stands before step ``stop.step`` of ``epoch`` and
    return the :class:`~trainact.training.interrupt.Interrupted` to raise."""
    steps = train_set.num_batches(settings.batch_size)
    position = epoch_position(epoch, stop, steps, last_good)
    path = out_dir / CHECKPOINT_FILE

    def save() -> list[str]:
        save_checkpoint(path, {**run.state(), **({EPOCH_POSITION_KEY: position} if position else {})})
        where = (
            f"after step {stop.step} of {steps} of epoch {epoch}"
            if position
            else f"at the start of epoch {epoch}"
        )
        return [f"{path} {where}"]

    return interrupt.stop_with(save)


def _stop_diverged(
    run: Run, out_dir: Path, last_good: Mapping[str, torch.Tensor], run_info: Mapping[str, Any],
    schedule: Mapping[str, Any], epoch: int, lr: float,
) -> None:  # fmt: skip
    """Mark the epoch ``diverged``, keep the outputs complete (the workflow expects them) with the
    last good weights, and raise :class:`TrainingDiverged`."""
    run.history.append({"epoch": epoch, "lr": lr, "status": "diverged"})
    write_history(out_dir / HISTORY_FILE, run.history)
    run.model.load_state_dict(last_good)
    save_results(run.model, out_dir, run.history, run_info, schedule)
    raise TrainingDiverged(diverged_message(out_dir, diverged_record(run.history)))


def _log_epoch(row: Mapping[str, Any], epochs: int) -> None:
    log.info(
        "epoch %d/%d lr %g train loss %.4f acc %.4f | val loss %.4f acc %.4f | %.0f img/s",
        row["epoch"], epochs, row["lr"], row["train_loss"], row["train_acc"], row["val_loss"], row["val_acc"],
        row["images_per_s"],
    )  # fmt: skip


# ----------------------------------------------------------------------------------- CLI


@interrupt.exits_on_signal
def _cmd_train(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError, parse_params
    from trainact.data.cifar import load_prepared
    from trainact.nn.calibration import calibrate
    from trainact.nn.models import build_model
    from trainact.training.pack import pack_members, train_pack
    from trainact.training.random_state import seed_everything

    params = parse_params(args.params, ("model", "train"))
    try:
        members = pack_members(args.size, args.activation, args.seed, args.out_dir)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if args.branch_from and len(args.branch_from) != len(members):
        raise CLIError(
            f"--branch-from: one snapshot per network ({len(members)}), got {len(args.branch_from)}"
        )
    branches = dict(zip(members, args.branch_from or []))

    def settings_of(member):
        return TrainSettings.from_params(params.get("train", {}), seed=member.seed, device=args.device)

    try:
        for member in members:  # every network's settings and model are valid before any trains
            settings_of(member)
            build_model(member.size, member.activation, params.get("model", {}))
        # The device before loading data (each training gets the same), and the compile cache
        # before the first compilation (calibrate compiles the activation kernels).
        device, _ = job_device(settings_of(members[0]).device)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    data = load_prepared(args.data)
    identity = run_identity("train", params.get("model", {}), args.data)

    def build(member):
        """The network as a job of its own starts it: seeded, built, calibrated."""
        settings = settings_of(member)
        seed_everything(settings.seed)
        model = build_model(member.size, member.activation, params.get("model", {}))
        calibrate(model, data.train_images, settings.seed)
        return model, settings

    def train_kwargs(member):
        return {
            "resume": not args.no_resume,
            "progress": not args.no_progress,
            "identity": identity,
            "branch_from": branches.get(member),
        }

    try:
        outcome = train_pack(members, build, data, device, train_kwargs=train_kwargs)
    except SnapshotMismatch as exc:
        raise CLIError(str(exc)) from None
    # A trunk of the schedule axis that diverged before a snapshot leaves its branch nothing to
    # start from (a missing output): that job fails under either policy, saying why.
    unbranchable = [
        snapshot_path(member.out_dir, epoch)
        for member in members
        if str(member) in outcome.diverged
        for epoch in settings_of(member).snapshot_epochs
        if not snapshot_path(member.out_dir, epoch).is_file()
    ]
    if unbranchable:
        log.error(
            "diverged before the schedule axis's snapshot(s) %s: no branch can start there",
            ", ".join(map(str, unbranchable)),
        )
        return DIVERGED_EXIT_CODE
    return divergence_exit_code(args.on_divergence, bool(outcome.diverged))


def register_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train CNNs (size x activation x seed) and write their histories",
        description=(
            "Train CNNs with RMSProp and the paper's schedule; resumable. Several sizes, activations "
            "or seeds make a pack: one process trains every network of sizes x activations x seeds, "
            "each into its own --out-dir (given in that order), with the files a job of one network writes."
        ),
    )
    parser.add_argument("--data", required=True, help="prepared .npz from 'trainact prepare'")
    parser.add_argument("--size", required=True, nargs="+", help="small | middle | large (one or more)")
    parser.add_argument("--activation", required=True, nargs="+", help="relu | fourier | lc (one or more)")
    parser.add_argument(
        "--seed", type=int, nargs="+", default=[None], help="overrides train.seed (one or more)"
    )
    parser.add_argument("--params", default="{}", help='JSON: {"model": {...}, "train": {...}}')
    parser.add_argument("--out-dir", required=True, type=Path, nargs="+", help="one folder per network")
    parser.add_argument("--device", default=None, help=DEVICE_HELP)
    parser.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument(
        "--branch-from",
        type=Path,
        nargs="+",
        default=None,
        help="a trunk's snapshots/epoch<L>.pt, one per network: continue from it after epoch L",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--on-divergence",
        choices=DIVERGENCE_POLICIES,
        default=default_divergence_policy(),
        help=DIVERGENCE_HELP,
    )
    parser.set_defaults(func=_cmd_train)
