"""Greedy layer-wise autoencoder pretraining of the CNN's hidden layers (the paper's Section 5.1).

The paper says only that an autoencoder "is used to pre-train each layer of the middle sized
Fourier-CNN" before ordinary training. Our reading, every open choice marked "paper silent":

1. Seed, then build the classifier exactly as the baseline training job does (``seed_everything``
   then ``build_model``), so every layer's initial weights are the baseline's. Then build one
   decoder per pretraining stage.
2. Four pretraining stages, in turn: stages ``k = 0, 1, 2`` are the conv stages
   ``model.stages[k]`` (conv -> activation -> maxpool); stage ``k = 3`` is the dense hidden layer
   (``model.head[1]`` Linear -> ``model.head[2]`` activation). In stage ``k`` the layers before it are
   frozen (their output, the input ``h_k`` of stage ``k``, is computed under ``no_grad``; for the
   dense stage ``h_3`` is the flattened output of the three pretrained conv stages); stage ``k`` and
   its decoder learn to reconstruct ``h_k`` from ``stage_k(h_k)`` with the mean squared error, for
   ``epochs_per_stage`` epochs over the training images (labels unused).
   The output layer ``model.head[3]`` (Linear(hidden, 10)) is not pretrained: it makes the logits,
   which only the labels define, so there is no reconstruction of its input that the classifier
   would keep (an autoencoder through its 10 outputs would train weights for a different job). It
   stays at its seeded initialisation, the baseline's.
3. The pretrained stages and the untouched output layer are saved as the classifier's
   ``state_dict`` (``pretrained.pt``); fine-tuning loads it and runs the ordinary trainer
   (:func:`trainact.training.train.fit`) with the ordinary schedule. Its baseline is the ordinary training
   job of the same model and seed.

Conv-stage decoders (paper silent; ``decoder`` setting), mapping ``(N, C_k, H/2, W/2)`` back to
``(N, C_in, H, W)``:
``conv_transpose`` (default) is one ``ConvTranspose2d(C_k, C_in, kernel_size=2, stride=2)``, the exact
shape inverse of the 2x2 max-pool, as shallow as possible so the encoder has to do the work;
``upsample_conv`` is nearest-neighbour upsampling then ``Conv2d(C_k, C_in, 3, padding=1)``.
Stage 0 reconstructs pixels in [0, 1], so its decoder ends in a sigmoid; later stages reconstruct
unbounded activation outputs, so their decoders are linear. Every stage's input is what the
classifier feeds it (:meth:`PaperCNN.features`, input standardisation included where the model has
one; stage 0's decoder is then linear too, its targets being standardised pixels). The dense stage's
decoder is always one ``Linear(hidden, C_3 * 4 * 4)`` (no output function; the ``decoder`` setting
does not apply to it).

Optimizer (paper silent): RMSprop with the paper's ``rho`` and the trainer's ``eps``, a fresh one per
stage over the stage's parameters (its activation's included) and its decoder's, constant learning
rate. Shuffling is the trainer's: the order of stage ``k``'s epoch ``e`` is a pure function of
``(seed, k * epochs_per_stage + e)``, so the same seed gives the same losses.

Crash safety: ``pretrain.csv`` is rewritten after every stage-epoch; the model, the decoders, the
optimizer and the rows go to ``pretrain_checkpoint.pt`` about once a minute and after the last
stage-epoch (:mod:`trainact.training.checkpoints`); a rerun with the same settings continues after the last
checkpointed stage-epoch and ends bit for bit where an uninterrupted run ends (on the CPU). A
checkpoint must match the settings and the structure of the model and of every decoder (and the
list of stages), so one written by the former three-stage code (no dense stage) is not resumed:
pretraining starts again from scratch. SIGTERM and SIGINT (:mod:`trainact.training.interrupt`,
under ``trainact ae-pretrain``) stop it before its next batch with a checkpoint of that moment,
which records the position in the stage-epoch (``POSITION_KEY``: the batches done, the running
loss sum); the rerun continues the stage-epoch from there, to the same rows and weights.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from trainact.files import write_csv_atomic
from trainact.nn.models import PaperCNN, build_model
from trainact.run_files import (
    PRETRAIN_CHECKPOINT_FILE,
    PRETRAIN_HISTORY_COLUMNS,
    PRETRAIN_HISTORY_FILE,
    PRETRAINED_FILE,
)
from trainact.training import interrupt
from trainact.training.autoencoder_stages import (
    DECODERS,
    build_decoders,
    stage_encoder,
    stage_input,
    stage_names,
)
from trainact.training.checkpoints import (
    CheckpointClock,
    resumable_checkpoint,
    run_identity,
    save_checkpoint,
    save_torch,
)
from trainact.training.device import DEVICE_HELP
from trainact.training.divergence import (
    DIVERGED_EXIT_CODE,
    DIVERGENCE_HELP,
    DIVERGENCE_POLICIES,
    default_divergence_policy,
    divergence_exit_code,
)
from trainact.training.job import job_device
from trainact.training.random_state import seed_everything
from trainact.training.settings import RMSPROP_EPS, RMSPROP_RHO, ConfigSection
from trainact.training.step import EpochTotals, rmsprop, train_step
from trainact.training.train import TrainingDiverged, fit
from trainact.training.train_settings import TrainSettings

log = logging.getLogger(__name__)

#: Key of a checkpoint written inside a stage-epoch (at a signal): ``{"stage", "epoch", "step",
#: "loss_sum", "seconds"}``, the batches done and the running loss sum; absent otherwise.
POSITION_KEY = "position"


@dataclass(frozen=True)
class AutoencoderSettings(ConfigSection):
    """Every pretraining hyperparameter: the config's ``autoencoder`` slice (plus seed and device)."""

    SECTION = "autoencoder"

    size: str = "middle"  # paper: the middle-sized network
    activation: str = "fourier"  # paper: the Fourier-CNN
    epochs_per_stage: int = 5  # paper silent
    learning_rate: float = 1e-3  # paper silent; the trainer's first learning rate
    batch_size: int = 128  # paper silent; the trainer's batch size
    decoder: str = "conv_transpose"  # paper silent; see the module docstring
    rho: float = RMSPROP_RHO  # RMSprop decay, the paper's value for training
    eps: float = RMSPROP_EPS  # the trainer's RMSprop epsilon
    seed: int = 0
    device: str | None = None  # trainact.training.device: auto (default, or $TRAINACT_DEVICE) | cuda | cpu

    def __post_init__(self) -> None:
        self.check_network()
        if self.epochs_per_stage < 1:
            self.fail("epochs_per_stage", self.epochs_per_stage, "must be >= 1")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            self.fail("learning_rate", self.learning_rate, "must be a finite number > 0")
        if self.batch_size < 1:
            self.fail("batch_size", self.batch_size, "must be >= 1")
        if self.decoder not in DECODERS:
            self.fail("decoder", self.decoder, f"choose one of {list(DECODERS)}")
        if not 0 <= self.rho < 1:
            self.fail("rho", self.rho, "must be in [0, 1)")
        if not self.eps > 0:
            self.fail("eps", self.eps, "must be > 0")


def write_pretrain_csv(path: Path, rows: list[Mapping[str, Any]]) -> None:
    """Write ``pretrain.csv`` atomically (columns stage, epoch, loss, seconds)."""
    write_csv_atomic(path, rows, PRETRAIN_HISTORY_COLUMNS)


def pretrain(
    data,
    settings: AutoencoderSettings,
    model_cfg: Mapping[str, Any] | None,
    out_dir: str | os.PathLike,
    *,
    resume: bool = True,
    progress: bool = True,
    stop_after: tuple[int, int] | None = None,
    identity: Mapping[str, str] | None = None,
) -> tuple[PaperCNN, list[dict[str, Any]]]:
    """Pretrain the conv stages and the dense hidden layer of a fresh classifier greedily, stage by
    stage, as autoencoders.

    ``data`` is a :class:`trainact.data.cifar.PreparedData`; only its training images are used.
    Writes ``pretrain.csv`` (one row per stage-epoch: ``stage`` 0-based, 0-2 the conv stages
    ``model.stages[0..2]`` and 3 the dense layer ``model.head[1]``, see
    :func:`trainact.training.autoencoder_stages.stage_names`;
    ``epoch`` 1-based within the stage, ``loss`` the epoch's mean reconstruction MSE over the
    training images, ``seconds``), ``pretrain_checkpoint.pt`` (about once a minute and after the
    last stage-epoch) and, when all stages are done, ``pretrained.pt`` (the classifier's
    ``state_dict``: conv stages and dense layer pretrained, output layer at its seeded
    initialisation). ``stop_after=(stage, epoch)`` ends the call after that stage-epoch, as a crash
    would (for tests of resumption). ``identity`` joins the checkpoint's fingerprint (as in
    :func:`trainact.training.train.fit`). Returns the classifier and the rows. Raises
    :class:`TrainingDiverged` on a non-finite loss.
    """
    from tqdm.auto import tqdm

    from trainact.data.loader import DeviceDataset

    # 1. The classifier as the baseline starts it, its decoders, and where a checkpoint left them.
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device, _ = job_device(settings.device)
    job = PretrainJob.start(data, settings, model_cfg, device, identity, out_dir / PRETRAIN_CHECKPOINT_FILE)
    job.resume_if_possible(resume, out_dir)
    write_pretrain_csv(out_dir / PRETRAIN_HISTORY_FILE, job.rows)

    # 2. The stages in turn, each for its epochs (the stage in progress from where it stopped).
    train_set = DeviceDataset(data.train_images, data.train_labels, device)
    bar = tqdm(
        total=job.total,
        initial=len(job.rows),
        desc=f"pretrain {out_dir.name}",
        unit="epoch",
        disable=not progress,
    )
    for stage_index in range(len(job.rows) // settings.epochs_per_stage, len(job.names)):
        if not job.pretrain_stage(stage_index, train_set, out_dir, bar, stop_after):
            bar.close()
            return job.model, job.rows
    bar.close()

    # 3. The pretrained classifier.
    classifier_state = {k: v.detach().cpu() for k, v in job.model.state_dict().items()}
    save_torch(out_dir / PRETRAINED_FILE, classifier_state)
    return job.model, job.rows


@dataclass
class PretrainJob:
    """The state of a pretraining run: the classifier, its decoders, the rows so far, the
    optimiser state of the stage in progress (from a checkpoint), and what a checkpoint must match."""

    settings: AutoencoderSettings
    model: PaperCNN
    decoders: nn.ModuleList
    names: list[str]
    fingerprint: dict[str, Any]
    checkpoint_path: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    optimizer_state: dict[str, Any] | None = None
    #: where in a stage-epoch the checkpoint resumed from was written (``POSITION_KEY``)
    position: dict[str, Any] | None = None
    clock: CheckpointClock = field(default_factory=CheckpointClock)

    @property
    def total(self) -> int:
        """Stage-epochs of the whole pretraining."""
        return len(self.names) * self.settings.epochs_per_stage

    @classmethod
    def start(
        cls, data, settings: AutoencoderSettings, model_cfg: Mapping[str, Any] | None, device: torch.device,
        identity: Mapping[str, str] | None, checkpoint_path: Path,
    ) -> PretrainJob:  # fmt: skip
        """Seed, build and calibrate the classifier as the baseline's training job does, then
        build the decoders; all on ``device``."""
        from trainact.nn.calibration import calibrate

        seed_everything(settings.seed)
        model = build_model(settings.size, settings.activation, model_cfg)  # the baseline's initialisation
        calibrate(model, data.train_images, settings.seed)  # as the baseline's training job does
        decoders = build_decoders(model, settings.decoder)
        model.to(device)
        decoders.to(device)
        names = stage_names(model)
        fingerprint = {
            **settings.checkpoint_fingerprint(model=model, decoders=decoders),
            "stages": names,
            **(identity or {}),
        }
        return cls(settings, model, decoders, names, fingerprint, checkpoint_path)

    def resume_if_possible(self, resume: bool, out_dir: Path) -> None:
        """Continue from the checkpoint when the one resume rule allows
        (:func:`trainact.training.checkpoints.resumable_checkpoint`)."""
        checkpoint = resumable_checkpoint(
            self.checkpoint_path, self.fingerprint, progress="rows", most=self.total,
            resume=resume, starting_over="pretraining from scratch",
        )  # fmt: skip
        if checkpoint is not None:
            self.model.load_state_dict(checkpoint["model"])
            self.decoders.load_state_dict(checkpoint["decoders"])
            self.rows = list(checkpoint["rows"])
            self.optimizer_state = checkpoint["optimizer"]
            self.position = checkpoint.get(POSITION_KEY)
            log.info(
                "resuming %s after stage-epoch %d of %d%s", out_dir, len(self.rows), self.total,
                f" and {self.position['step']} batches of the next" if self.position else "",
            )  # fmt: skip

    def pretrain_stage(self, stage_index: int, train_set, out_dir: Path, bar, stop_after) -> bool:
        """The remaining epochs of one stage, a fresh RMSProp over the stage and its decoder (its
        state restored when resuming inside the stage). Returns ``False`` when ``stop_after``
        stopped the run."""
        settings = self.settings
        stage, decoder = stage_encoder(self.model, stage_index), self.decoders[stage_index]
        optimizer = rmsprop(
            [*stage.parameters(), *decoder.parameters()],
            lr=settings.learning_rate,
            rho=settings.rho,
            eps=settings.eps,
        )
        first_epoch = len(self.rows) - stage_index * settings.epochs_per_stage + 1
        position, self.position = self.position, None
        if first_epoch > 1 or position:  # resuming inside this stage: its optimizer state is the checkpoint's
            optimizer.load_state_dict(self.optimizer_state)
        for epoch in range(first_epoch, settings.epochs_per_stage + 1):
            resume_at = position if epoch == first_epoch else None
            started = time.perf_counter() - (resume_at["seconds"] if resume_at else 0.0)
            try:
                mean_loss = self.stage_epoch(
                    stage_index, stage, decoder, optimizer, train_set, epoch, resume_at
                )
            except interrupt.StopBeforeStep as stop:
                raise self.stop_at_signal(optimizer, stage_index, epoch, stop, train_set) from None
            if not math.isfinite(mean_loss):
                raise TrainingDiverged(
                    f"{out_dir}: the reconstruction loss of stage {stage_index} ({self.names[stage_index]}) "
                    f"became non-finite in its epoch {epoch}; stopped (a rerun resumes from "
                    f"{self.checkpoint_path}, if there is one)"
                )
            self.rows.append(
                {
                    "stage": stage_index,
                    "epoch": epoch,
                    "loss": round(mean_loss, 8),
                    "seconds": round(time.perf_counter() - started, 3),
                }
            )
            stopping = stop_after is not None and (stage_index, epoch) >= tuple(stop_after)
            self.save(optimizer, force=len(self.rows) == self.total or stopping)
            write_pretrain_csv(out_dir / PRETRAIN_HISTORY_FILE, self.rows)
            bar.update(1)
            bar.set_postfix(stage=stage_index, loss=f"{mean_loss:.5f}")
            log.info(
                "stage %d (%s) epoch %d/%d reconstruction MSE %.6f",
                stage_index, self.names[stage_index], epoch, settings.epochs_per_stage, mean_loss,
            )  # fmt: skip
            if stopping:
                return False
        return True

    def stage_epoch(
        self, stage_index: int, stage: nn.Module, decoder: nn.Module, optimizer, train_set, epoch: int,
        resume_at: Mapping[str, Any] | None = None,
    ) -> float:  # fmt: skip
        """One epoch of stage ``stage_index``: the mean reconstruction MSE over the training images.
        The earlier stages are frozen: the stage's input (the target) is computed without gradients.
        ``resume_at`` (``POSITION_KEY``) continues it after the batches done. Raises
        :class:`~trainact.training.interrupt.StopBeforeStep` before a batch when a signal was
        received."""
        settings = self.settings
        totals = EpochTotals(train_set.device)
        shuffle_epoch = stage_index * settings.epochs_per_stage + epoch
        order = train_set.batch_indices(settings.batch_size, seed=settings.seed, epoch=shuffle_epoch)
        for index in interrupt.epoch_steps(order, totals, resume_at).remaining:
            images, _labels = train_set.gather(index)  # as train_set.batches(shuffle=True) gives them
            with torch.no_grad():  # the earlier stages are frozen
                target = stage_input(self.model, stage_index, images)
            loss, _ = train_step(lambda h: decoder(stage(h)), F.mse_loss, optimizer, target, target)
            totals.add(loss, images.shape[0])
        return totals.loss_sum.item() / len(train_set)

    def save(self, optimizer, *, force: bool) -> None:
        """The checkpoint, when due or ``force``."""
        self.clock.save_if_due(self.checkpoint_path, lambda: self.checkpoint_state(optimizer), force=force)

    def checkpoint_state(self, optimizer) -> dict[str, Any]:
        """What the checkpoint holds: the model, the decoders, the stage's optimiser, the rows."""
        return {
            "model": self.model.state_dict(),
            "decoders": self.decoders.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rows": self.rows,
            "fingerprint": self.fingerprint,
        }

    def stop_at_signal(
        self, optimizer, stage_index: int, epoch: int, stop: interrupt.StopBeforeStep, train_set
    ) -> interrupt.Interrupted:
        """Write the checkpoint as the run stands before batch ``stop.step`` of the stage-epoch
        (with its position, unless no batch of it was done); the
        :class:`~trainact.training.interrupt.Interrupted` to raise."""
        steps = train_set.num_batches(self.settings.batch_size)
        position = None
        if stop.step > 0:
            position = {
                "stage": stage_index, "epoch": epoch, "step": stop.step,
                "loss_sum": stop.totals.loss_sum.cpu(), "seconds": stop.seconds,
            }  # fmt: skip

        def save() -> list[str]:
            save_checkpoint(
                self.checkpoint_path,
                {**self.checkpoint_state(optimizer), **({POSITION_KEY: position} if position else {})},
            )
            where = (
                f"batch {stop.step} of {steps} of stage {stage_index} epoch {epoch}"
                if position
                else f"{len(self.rows)} of {self.total} stage-epochs"
            )
            return [f"{self.checkpoint_path} after {where}"]

        return interrupt.stop_with(save)


def load_pretrained(
    pretrained_path: str | os.PathLike, settings: AutoencoderSettings, model_cfg: Mapping[str, Any] | None
) -> PaperCNN:
    """The classifier for fine-tuning: built as configured, weights exactly those of ``pretrained.pt``
    (which also holds the calibrated start's buffers: Fourier scales, standardisation statistics)."""
    model = build_model(settings.size, settings.activation, model_cfg)
    state = torch.load(pretrained_path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(
            f"{pretrained_path} does not fit the {settings.size}-{settings.activation} model of this "
            f"config: {exc}"
        ) from None
    return model


def finetune(
    pretrained_path: str | os.PathLike,
    data,
    settings: AutoencoderSettings,
    train_settings: TrainSettings,
    model_cfg: Mapping[str, Any] | None,
    out_dir: str | os.PathLike,
    *,
    resume: bool = True,
    progress: bool = True,
    identity: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Train the pretrained classifier with the ordinary trainer; returns :func:`fit`'s history
    (``identity`` as there)."""
    seed_everything(train_settings.seed)
    model = load_pretrained(pretrained_path, settings, model_cfg)
    return fit(model, data, train_settings, out_dir, resume=resume, progress=progress, identity=identity)


# ----------------------------------------------------------------------------------- CLI


@interrupt.exits_on_signal
def _cmd_ae_pretrain(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError, parse_params
    from trainact.data.cifar import load_prepared

    params = parse_params(args.params, ("model", "autoencoder"))
    try:
        settings = AutoencoderSettings.from_params(
            params.get("autoencoder", {}), seed=args.seed, device=args.device
        )
        job_device(settings.device)  # the device, and the compile cache before anything compiles
        build_model(settings.size, settings.activation, params.get("model", {}))
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    data = load_prepared(args.data)
    try:
        pretrain(
            data,
            settings,
            params.get("model", {}),
            args.out_dir,
            resume=not args.no_resume,
            progress=not args.no_progress,
            identity=run_identity("autoencoder", params.get("model", {}), args.data),
        )
    except TrainingDiverged as exc:  # no pretrained.pt to fine-tune: an error under either policy
        log.error("%s", exc)
        return DIVERGED_EXIT_CODE
    return 0


@interrupt.exits_on_signal
def _cmd_ae_finetune(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError, parse_params
    from trainact.data.cifar import load_prepared

    params = parse_params(args.params, ("model", "autoencoder", "train"))
    try:
        settings = AutoencoderSettings.from_params(params.get("autoencoder", {}), seed=args.seed)
        train_settings = TrainSettings.from_params(
            params.get("train", {}), seed=args.seed, device=args.device
        )
        if not Path(args.pretrained).is_file():
            raise ValueError(
                f"--pretrained {args.pretrained}: no such file (run 'trainact ae-pretrain' first)"
            )
        load_pretrained(args.pretrained, settings, params.get("model", {}))
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    data = load_prepared(args.data)
    try:
        finetune(
            args.pretrained, data, settings, train_settings, params.get("model", {}), args.out_dir,
            resume=not args.no_resume, progress=not args.no_progress,
            identity=run_identity("autoencoder", params.get("model", {}), args.data, args.pretrained),
        )  # fmt: skip
    except TrainingDiverged as exc:
        log.error("%s", exc)
        return divergence_exit_code(args.on_divergence, diverged=True)
    return 0


def _common_arguments(parser: argparse.ArgumentParser, params_help: str) -> None:
    parser.add_argument("--data", required=True, help="prepared .npz from 'trainact prepare'")
    parser.add_argument("--seed", type=int, default=None, help="overrides the slice's seed")
    parser.add_argument("--params", default="{}", help=params_help)
    parser.add_argument("--out-dir", required=True, type=Path)
    parser.add_argument("--device", default=None, help=DEVICE_HELP)
    parser.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def register_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "ae-pretrain",
        help="pretrain a CNN's conv stages and dense layer greedily as autoencoders (Section 5.1)",
        description=(
            "Greedy layer-wise autoencoder pretraining; writes pretrain.csv and pretrained.pt. Resumable."
        ),
    )
    _common_arguments(parser, 'JSON: {"model": {...}, "autoencoder": {...}}')
    parser.set_defaults(func=_cmd_ae_pretrain)

    parser = subparsers.add_parser(
        "ae-finetune",
        help="train an autoencoder-pretrained CNN with the ordinary trainer",
        description="Load pretrained.pt and train it like 'trainact train'; writes history.csv. Resumable.",
    )
    _common_arguments(parser, 'JSON: {"model": {...}, "autoencoder": {...}, "train": {...}}')
    parser.add_argument(
        "--pretrained", required=True, type=Path, help="pretrained.pt from 'trainact ae-pretrain'"
    )
    parser.add_argument(
        "--on-divergence",
        choices=DIVERGENCE_POLICIES,
        default=default_divergence_policy(),
        help=DIVERGENCE_HELP,
    )
    parser.set_defaults(func=_cmd_ae_finetune)
