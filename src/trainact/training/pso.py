"""Particle swarm optimisation of all the CNN's weights instead of backpropagation (Section 5.2).

A particle is the vector of all the network's parameters; the swarm follows the paper's eq. (10)
(:class:`trainact.training.swarm.Swarm`, generic over any fitness of a ``(P, D)`` tensor of positions):

.. math::
    V_k \\leftarrow \\omega V_k + c_1 r_1 \\odot (P_{l,k} - X_k) + c_2 r_2 \\odot (P_g - X_k), \\qquad
    X_k \\leftarrow X_k + V_k

with ``r1``, ``r2`` drawn uniform(0, 1) per element, ``P_l`` each particle's best position, ``P_g``
the swarm's best (eq. 10 prints ``V_g`` where its text means ``P_g``). A generation is one update
of every particle, one fitness evaluation of every particle, then the update of ``P_l`` and ``P_g``
(Algorithm 1). A best is replaced only by a strictly fitter position, so ``P_g``'s fitness never falls.

Fitness: eq. (9) is garbled (``1 / (1 + 1/(2n) sum_p (y_p - t_p))``: no square or norm, and a
difference of a 10-way output and a class label is undefined). We keep its form and use
``f = 1 / (1 + L)`` with ``L`` the network's mean cross-entropy on a fitness batch: it keeps the
``1 / (1 + error)`` shape, lies in (0, 1], is monotone in the loss every other model minimises, and is
defined for classification. A non-finite loss gets fitness 0.

Open choices (paper silent), each a :class:`PSOSettings` field:

* fitness batch: one fixed, seeded subset of the training set (``fitness_batch_size`` images), the
  same every generation, so ``P_l`` / ``P_g`` comparisons across generations compare like with like;
* initial positions: particle ``k`` is the ``k``-th seeded ``build_model`` initialisation after
  ``seed_everything(seed)`` (particle 0 is exactly the backprop baseline's initial network);
  initial velocities are zero;
* inertia ``omega = 0.4`` (the paper calls it "a positive number"): with ``c1 = c2 = 2`` a constant
  inertia keeps the swarm's second moments bounded only for ``omega`` up to about 0.5
  (Poli 2009: ``c1 + c2 < 24 (1 - w^2) / (7 - 5 w)``), and 0.4 is the end value of Shi & Eberhart's
  classic schedule; no velocity clamp by default (the paper has none);
* per-generation record of ``P_g``: its fitness and loss on the fitness batch, its accuracy on a
  fixed seeded evaluation subset of the training set (``eval_train_size`` images, ``null`` = all) and
  on the test set; the accuracies are recomputed only when ``P_g`` changed.

Evaluation is vectorised over particles (:mod:`trainact.training.swarm`):
:meth:`NetworkLoss.vectorised` runs the network once per image chunk for all particles together
(``torch.func.vmap`` of ``functional_call`` over stacked parameters); :meth:`NetworkLoss.looped` is
the same sum, one particle at a time (for tests and the benchmark ``trainact pso-bench`` in
:mod:`trainact.bench.pso_evaluators`).

Crash safety: ``history.csv`` is rewritten after every generation; the swarm (positions, velocities,
bests, random generator) and the history go to ``checkpoint.pt`` about once a minute and after the
last generation (:mod:`trainact.training.checkpoints`); a rerun with the same settings continues from there
and ends bit for bit where an uninterrupted run ends (CPU). SIGTERM and SIGINT
(:mod:`trainact.training.interrupt`, under ``trainact pso``) stop the run before its next
generation, with the checkpoint of the generations done.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from trainact.files import write_csv_atomic, write_text_atomic
from trainact.nn.models import build_model
from trainact.run_files import CHECKPOINT_FILE, HISTORY_FILE, PSO_BEST_FILE, PSO_HISTORY_COLUMNS, SUMMARY_FILE
from trainact.training import interrupt
from trainact.training.checkpoints import (
    CheckpointClock,
    resumable_checkpoint,
    run_identity,
    save_checkpoint,
    save_torch,
)
from trainact.training.device import DEVICE_HELP
from trainact.training.evaluation import evaluate
from trainact.training.job import job_device, run_record
from trainact.training.random_state import seed_everything
from trainact.training.settings import ConfigSection
from trainact.training.swarm import NetworkLoss, Swarm, fitness_from_loss, loss_from_fitness

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PSOSettings(ConfigSection):
    """Every PSO hyperparameter: the config's ``pso`` slice (plus seed and device)."""

    SECTION = "pso"
    RESUMABLE_ACROSS = ("device", "eval_batch_size", "generations")

    size: str = "middle"  # paper: the standard middle-sized CNN
    activation: str = "relu"
    particles: int = 10  # paper
    generations: int = 50  # paper
    inertia: float = 0.4  # paper: "a positive number"; see the module docstring
    c1: float = 2.0  # paper
    c2: float = 2.0  # paper
    velocity_clamp: float | None = None  # |V| per element; None = no clamp (paper has none)
    fitness_batch_size: int | None = 1000  # fixed seeded training subset; None = whole training set
    eval_train_size: int | None = 10000  # P_g's train accuracy on this seeded subset; None = all
    eval_batch_size: int = 500  # images per forward pass (all particles at once); changes only rounding
    vectorised: bool = True  # evaluate particles together (vmap) or one by one
    seed: int = 0
    device: str | None = None  # trainact.training.device: auto (default, or $TRAINACT_DEVICE) | cuda | cpu

    def __post_init__(self) -> None:
        self.check_network()
        if self.particles < 1:
            self.fail("particles", self.particles, "must be >= 1")
        if self.generations < 0:
            self.fail("generations", self.generations, "must be >= 0")
        for key in ("inertia", "c1", "c2"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value >= 0):
                self.fail(key, value, "must be a finite number >= 0")
        if self.velocity_clamp is not None and not (
            math.isfinite(self.velocity_clamp) and self.velocity_clamp > 0
        ):
            self.fail(
                "velocity_clamp", self.velocity_clamp, "must be a finite number > 0, or null for no clamp"
            )
        for key in ("fitness_batch_size", "eval_train_size"):
            value = getattr(self, key)
            if value is not None and value < 1:
                self.fail(key, value, "must be >= 1, or null for the whole training set")
        if self.eval_batch_size < 1:
            self.fail("eval_batch_size", self.eval_batch_size, "must be >= 1")


# ------------------------------------------------------------------------------- training


def write_history(path: Path, rows: list[Mapping[str, Any]]) -> None:
    """Write the PSO history CSV atomically (columns ``layout.PSO_HISTORY_COLUMNS``)."""
    write_csv_atomic(path, rows, PSO_HISTORY_COLUMNS)


def check_subset_sizes(settings: PSOSettings, num_train: int) -> None:
    """Raise ``ValueError`` naming a subset size larger than the training set."""
    for key in ("fitness_batch_size", "eval_train_size"):
        size = getattr(settings, key)
        if size is not None and size > num_train:
            raise ValueError(f"pso.{key} = {size} exceeds the {num_train} training images")


def _subset(num_images: int, size: int | None, seed: int, stream: int) -> np.ndarray:
    """Seeded indices of ``size`` distinct training images (all when ``size`` is None).

    ``stream`` makes the fitness batch (0) and the evaluation subset (1) independent draws.
    """
    if size is None:
        return np.arange(num_images)
    return np.random.default_rng([seed, stream]).permutation(num_images)[:size]


def train_pso(
    data,
    settings: PSOSettings,
    model_cfg: Mapping[str, Any] | None,
    out_dir: str | os.PathLike,
    *,
    resume: bool = True,
    progress: bool = True,
    stop_after_generation: int | None = None,
    identity: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Train a CNN's weights by PSO on ``data`` (a :class:`trainact.data.cifar.PreparedData`).

    Writes into ``out_dir``: ``history.csv`` (one row per generation, generation 0 being the
    initial swarm), ``checkpoint.pt`` (about once a minute and after the last generation) and, when
    the run completes, ``best.pt`` (the ``state_dict`` of the network at ``P_g``) and
    ``summary.json`` (the last row's numbers, the device and how it ran). ``stop_after_generation``
    ends the call early (as a crash would) for tests of resumption. ``identity`` joins the
    checkpoint's fingerprint (as in :func:`trainact.training.train.fit`). Returns the history rows.
    """
    from trainact.nn.kernel_compiler import reset_kernel_report

    # 1. The device, the network, the swarm, and where a checkpoint left it.
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device, run_info = job_device(settings.device)
    reset_kernel_report()  # the summary says which activation kernels ran in this run
    check_subset_sizes(settings, len(data.train_labels))
    model, initial_positions = initial_network_and_positions(data, settings, model_cfg, device)
    run = SwarmRun.start(model, data, settings, device, identity, out_dir, stop_after_generation)
    run.resume_if_possible(resume)
    if not run.history:
        started = time.perf_counter()
        run.swarm.start(initial_positions.to(device))
        run.record(0, started, global_best_changed=True)

    # 2. The generations still to run.
    if not run.run_generations(progress):
        return run.history

    # 3. The network at the swarm's best, and the summary.
    save_pso_results(run, out_dir, run_info)
    return run.history


def initial_network_and_positions(
    data, settings: PSOSettings, model_cfg: Mapping[str, Any] | None, device: torch.device
) -> tuple[nn.Module, Tensor]:
    """The network (particle 0's, calibrated, on ``device``) and every particle's start: particle
    ``k`` is the ``k``-th seeded ``build_model`` initialisation after ``seed_everything(seed)``."""
    from trainact.nn.calibration import calibrate

    seed_everything(settings.seed)
    models = [build_model(settings.size, settings.activation, model_cfg) for _ in range(settings.particles)]
    model = models[0].to(device)
    # The data-dependent start (standardisation statistics, Fourier scales) lives in buffers,
    # which every particle shares: measured once, with particle 0 (the backprop baseline's network).
    calibrate(model, data.train_images, settings.seed)
    initial_positions = torch.stack([nn.utils.parameters_to_vector(m.parameters()).detach() for m in models])
    return model, initial_positions


@dataclass
class SwarmRun:
    """A PSO run: the network, the swarm over its parameters, the datasets ``P_g`` is evaluated on,
    the history, and its checkpoint (what it must match, where, when)."""

    settings: PSOSettings
    model: nn.Module
    device: torch.device
    swarm: Swarm
    eval_train_set: Any
    test_set: Any
    fingerprint: dict[str, Any]
    out_dir: Path
    stop_after_generation: int | None
    history: list[dict[str, Any]] = field(default_factory=list)
    clock: CheckpointClock = field(default_factory=CheckpointClock)

    @classmethod
    def start(
        cls, model: nn.Module, data, settings: PSOSettings, device: torch.device,
        identity: Mapping[str, str] | None, out_dir: Path, stop_after_generation: int | None,
    ) -> SwarmRun:  # fmt: skip
        """The swarm over ``model``'s parameters, maximising the fitness on the seeded fitness batch."""
        from trainact.data.loader import DeviceDataset

        num_train = len(data.train_labels)
        fitness_index = _subset(num_train, settings.fitness_batch_size, settings.seed, stream=0)
        eval_index = _subset(num_train, settings.eval_train_size, settings.seed, stream=1)
        fitness_set = DeviceDataset(
            data.train_images[fitness_index], data.train_labels[fitness_index], device
        )
        images, labels = next(fitness_set.batches(len(fitness_set), shuffle=False))
        objective = NetworkLoss(model, images, labels, settings.eval_batch_size)
        evaluate_losses = objective.vectorised if settings.vectorised else objective.looped
        swarm = Swarm(
            lambda positions: fitness_from_loss(evaluate_losses(positions)),
            inertia=settings.inertia,
            c1=settings.c1,
            c2=settings.c2,
            velocity_clamp=settings.velocity_clamp,
            generator=torch.Generator().manual_seed(settings.seed),
        )
        eval_train_set = DeviceDataset(data.train_images[eval_index], data.train_labels[eval_index], device)
        test_set = DeviceDataset(data.test_images, data.test_labels, device)
        fingerprint = {**settings.checkpoint_fingerprint(model=model), **(identity or {})}
        return cls(
            settings,
            model,
            device,
            swarm,
            eval_train_set,
            test_set,
            fingerprint,
            out_dir,
            stop_after_generation,
        )

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / CHECKPOINT_FILE

    def resume_if_possible(self, resume: bool) -> None:
        """Continue from the checkpoint when the one resume rule allows
        (:func:`trainact.training.checkpoints.resumable_checkpoint`)."""
        checkpoint = resumable_checkpoint(
            self.checkpoint_path, self.fingerprint, progress="history", most=self.settings.generations + 1,
            resume=resume, starting_over="starting a new swarm",
        )  # fmt: skip
        if checkpoint is not None:
            self.swarm.load_state_dict(checkpoint["swarm"], self.device)
            self.history = list(checkpoint["history"])
            log.info("resuming %s after generation %d", self.out_dir, self.swarm.generation)

    def run_generations(self, progress: bool) -> bool:
        """The generations after the swarm's; ``False`` when ``stop_after_generation`` stopped it.
        Raises :class:`~trainact.training.interrupt.Interrupted`, with the checkpoint written,
        before a generation when a signal was received."""
        from tqdm.auto import tqdm

        settings = self.settings
        bar = tqdm(
            range(self.swarm.generation + 1, settings.generations + 1),
            desc=f"pso {self.out_dir.name}",
            unit="gen",
            initial=self.swarm.generation,
            total=settings.generations,
            disable=not progress,
        )
        for generation in bar:
            if self.stop_after_generation is not None and self.swarm.generation >= self.stop_after_generation:
                bar.close()
                return False
            if interrupt.requested() is not None:
                bar.close()
                raise self.stop_at_signal()
            started = time.perf_counter()
            changed = self.swarm.step()
            self.record(generation, started, changed)
            row = self.history[-1]
            bar.set_postfix(best_loss=f"{row['best_loss']:.4f}", test_acc=f"{row['test_acc']:.4f}")
            log.info(
                "generation %d/%d best loss %.4f fitness %.6f | P_g train acc %.4f test acc %.4f",
                generation,
                settings.generations,
                row["best_loss"],
                row["best_fitness"],
                row["train_acc"],
                row["test_acc"],
            )
        return True

    def accuracies_of_global_best(self) -> tuple[float, float]:
        """``P_g``'s accuracy on the evaluation subset of the training set and on the test set."""
        nn.utils.vector_to_parameters(self.swarm.global_best, self.model.parameters())
        _, train_acc = evaluate(self.model, self.eval_train_set, self.settings.eval_batch_size)
        _, test_acc = evaluate(self.model, self.test_set, self.settings.eval_batch_size)
        return train_acc, test_acc

    def record(self, generation: int, started: float, global_best_changed: bool) -> None:
        """The generation's history row (accuracies recomputed only when ``P_g`` changed), the
        checkpoint when due, and the history file."""
        if global_best_changed:
            train_acc, test_acc = self.accuracies_of_global_best()
        else:
            train_acc, test_acc = self.history[-1]["train_acc"], self.history[-1]["test_acc"]
        self.history.append(
            {
                "generation": generation,
                "best_fitness": round(self.swarm.global_best_fitness, 8),
                "best_loss": round(loss_from_fitness(self.swarm.global_best_fitness), 6),
                "train_acc": round(train_acc, 6),
                "test_acc": round(test_acc, 6),
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
        # The swarm is large (23 MB for the paper's): checkpointed by time and after the last
        # generation (and when a test stops the run early), the history after every generation.
        last = generation >= self.settings.generations or (
            self.stop_after_generation is not None and generation >= self.stop_after_generation
        )
        self.clock.save_if_due(self.checkpoint_path, self.checkpoint_state, force=last)
        write_history(self.out_dir / HISTORY_FILE, self.history)

    def checkpoint_state(self) -> dict[str, Any]:
        """What the checkpoint holds: the swarm, the history and what it must match."""
        return {"swarm": self.swarm.state_dict(), "history": self.history, "fingerprint": self.fingerprint}

    def stop_at_signal(self) -> interrupt.Interrupted:
        """Write the checkpoint of the generations done; the
        :class:`~trainact.training.interrupt.Interrupted` to raise."""

        def save() -> list[str]:
            save_checkpoint(self.checkpoint_path, self.checkpoint_state())
            where = f"generation {self.swarm.generation} of {self.settings.generations}"
            return [f"{self.checkpoint_path} after {where}"]

        return interrupt.stop_with(save)


def save_pso_results(run: SwarmRun, out_dir: Path, run_info: Mapping[str, Any]) -> None:
    """``best.pt`` (the network at ``P_g``) and ``summary.json`` (the last row, how it ran)."""
    nn.utils.vector_to_parameters(run.swarm.global_best, run.model.parameters())
    best_state = {k: v.detach().cpu() for k, v in run.model.state_dict().items()}
    save_torch(out_dir / PSO_BEST_FILE, best_state)
    last = run.history[-1]
    summary = {
        "generations": last["generation"],
        "best_loss": last["best_loss"],
        "train_acc": last["train_acc"],
        "test_acc": last["test_acc"],
        **run_record(run_info),
    }
    write_text_atomic(out_dir / SUMMARY_FILE, json.dumps(summary, indent=1))


# ----------------------------------------------------------------------------------- CLI


@interrupt.exits_on_signal
def _cmd_pso(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError, parse_params
    from trainact.data.cifar import load_prepared

    params = parse_params(args.params, ("model", "pso"))
    try:
        settings = PSOSettings.from_params(params.get("pso", {}), seed=args.seed, device=args.device)
        job_device(settings.device)  # the device, and the compile cache before anything compiles
        build_model(settings.size, settings.activation, params.get("model", {}))
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    data = load_prepared(args.data)
    try:
        check_subset_sizes(settings, len(data.train_labels))
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    train_pso(
        data, settings, params.get("model", {}), args.out_dir,
        resume=not args.no_resume, progress=not args.no_progress,
        identity=run_identity("pso", params.get("model", {}), args.data),
    )  # fmt: skip
    return 0


def register_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "pso",
        help="train a CNN's weights by particle swarm optimisation (Section 5.2)",
        description="PSO over all the network's parameters; writes history.csv and best.pt. Resumable.",
    )
    parser.add_argument("--data", required=True, help="prepared .npz from 'trainact prepare'")
    parser.add_argument("--seed", type=int, default=None, help="overrides pso.seed")
    parser.add_argument("--params", default="{}", help='JSON: {"model": {...}, "pso": {...}}')
    parser.add_argument("--out-dir", required=True, type=Path)
    parser.add_argument("--device", default=None, help=DEVICE_HELP)
    parser.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=_cmd_pso)
