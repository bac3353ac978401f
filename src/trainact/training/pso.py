"""Particle swarm optimisation of all the CNN's weights instead of backpropagation (Section 5.2).

A particle is the vector of all the network's parameters; the swarm follows the paper's eq. (10)
(:class:`Swarm`, generic over any fitness of a ``(P, D)`` tensor of positions):

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

Evaluation is vectorised over particles: :meth:`NetworkLoss.vectorised` runs the network once per
image chunk for all particles together (``torch.func.vmap`` of ``functional_call`` over stacked
parameters); :meth:`NetworkLoss.looped` is the same sum, one particle at a time (for tests and the
benchmark ``trainact pso-bench`` in :mod:`trainact.bench.throughput`).

Crash safety: ``history.csv`` is rewritten after every generation; the swarm (positions, velocities,
bests, random generator) and the history go to ``checkpoint.pt`` about once a minute and after the
last generation (:mod:`trainact.training.checkpoints`); a rerun with the same settings continues from there
and ends bit for bit where an uninterrupted run ends (CPU).
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
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from trainact.training.settings import ConfigSection
from trainact.nn.models import build_model
from trainact.names import ACTIVATIONS, PAPER_FILTERS
from trainact.training.checkpoints import CheckpointClock, load_checkpoint, run_identity
from trainact.files import atomic_write, write_csv_atomic, write_text_atomic
from trainact.layout import SUMMARY_FILE
from trainact.training.device import DEVICE_HELP, resolve_device
from trainact.training.evaluation import evaluate
from trainact.training.job import job_device, run_record
from trainact.training.random_state import seed_everything

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ("generation", "best_fitness", "best_loss", "train_acc", "test_acc", "seconds")
HISTORY_NAME = "history.csv"
CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"


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
        if self.size not in PAPER_FILTERS:
            self.fail("size", self.size, f"choose one of {sorted(PAPER_FILTERS)}")
        if self.activation not in ACTIVATIONS:
            self.fail("activation", self.activation, f"choose one of {list(ACTIVATIONS)}")
        if self.particles < 1:
            self.fail("particles", self.particles, "must be >= 1")
        if self.generations < 0:
            self.fail("generations", self.generations, "must be >= 0")
        for key in ("inertia", "c1", "c2"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value >= 0):
                self.fail(key, value, "must be a finite number >= 0")
        if self.velocity_clamp is not None and not (math.isfinite(self.velocity_clamp) and self.velocity_clamp > 0):
            self.fail("velocity_clamp", self.velocity_clamp, "must be a finite number > 0, or null for no clamp")
        for key in ("fitness_batch_size", "eval_train_size"):
            value = getattr(self, key)
            if value is not None and value < 1:
                self.fail(key, value, "must be >= 1, or null for the whole training set")
        if self.eval_batch_size < 1:
            self.fail("eval_batch_size", self.eval_batch_size, "must be >= 1")



# ------------------------------------------------------------------------------ the swarm


class Swarm:
    """A particle swarm maximising ``fitness_fn`` over the rows of a ``(P, D)`` position tensor.

    Update (eq. 10), per particle ``k`` and element-wise random ``r1, r2 ~ U(0, 1)``:
    ``V = inertia * V + c1 * r1 * (P_l - X) + c2 * r2 * (P_g - X)``, clamped to
    ``[-velocity_clamp, velocity_clamp]`` when set, then ``X = X + V``.

    Args:
        fitness_fn: maps positions ``(P, D)`` to fitness ``(P,)`` (higher is better; NaN counts as
            the worst possible fitness).
        inertia, c1, c2: the coefficients of eq. (10).
        velocity_clamp: largest ``|V|`` per element, or ``None``.
        generator: CPU :class:`torch.Generator` for ``r1``, ``r2`` (drawn on the CPU, so a run's random
            numbers do not depend on the device).

    Call :meth:`start` with the initial positions, then :meth:`step` once per generation.
    Attributes after :meth:`start`: ``positions``, ``velocities`` ``(P, D)``; ``local_best`` ``(P, D)``
    and ``local_best_fitness`` ``(P,)`` float64; ``global_best`` ``(D,)`` and ``global_best_fitness``
    (float); ``generation`` (0 after :meth:`start`).
    """

    def __init__(
        self,
        fitness_fn: Callable[[Tensor], Tensor],
        *,
        inertia: float,
        c1: float,
        c2: float,
        velocity_clamp: float | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        self.fitness_fn = fitness_fn
        self.inertia, self.c1, self.c2 = float(inertia), float(c1), float(c2)
        self.velocity_clamp = velocity_clamp
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)

    def _fitness(self, positions: Tensor) -> Tensor:
        fitness = self.fitness_fn(positions).detach().to(torch.float64)
        if fitness.shape != positions.shape[:1]:
            raise ValueError(f"fitness_fn returned shape {tuple(fitness.shape)} for {positions.shape[0]} particles")
        return torch.nan_to_num(fitness, nan=-math.inf)

    def start(self, positions: Tensor) -> None:
        """Evaluate the initial positions (velocities zero); they are the first local bests."""
        if positions.ndim != 2:
            raise ValueError(f"positions must have shape (particles, dimensions), got {tuple(positions.shape)}")
        self.positions = positions.detach().clone()
        self.velocities = torch.zeros_like(self.positions)
        self.local_best = self.positions.clone()
        self.local_best_fitness = self._fitness(self.positions)
        best = int(torch.argmax(self.local_best_fitness))
        self.global_best = self.local_best[best].clone()
        self.global_best_fitness = float(self.local_best_fitness[best])
        self.generation = 0

    def step(self) -> bool:
        """One generation: move every particle (eq. 10), evaluate, update the bests.

        Returns whether ``P_g`` changed.
        """
        shape, device, dtype = self.positions.shape, self.positions.device, self.positions.dtype
        r1 = torch.rand(shape, generator=self.generator, dtype=dtype).to(device)
        r2 = torch.rand(shape, generator=self.generator, dtype=dtype).to(device)
        self.velocities = (
            self.inertia * self.velocities
            + self.c1 * r1 * (self.local_best - self.positions)
            + self.c2 * r2 * (self.global_best - self.positions)
        )
        if self.velocity_clamp is not None:
            self.velocities.clamp_(-self.velocity_clamp, self.velocity_clamp)
        self.positions = self.positions + self.velocities
        fitness = self._fitness(self.positions)
        improved = fitness > self.local_best_fitness
        self.local_best[improved] = self.positions[improved]
        self.local_best_fitness = torch.where(improved, fitness, self.local_best_fitness)
        self.generation += 1
        best = int(torch.argmax(self.local_best_fitness))
        if float(self.local_best_fitness[best]) > self.global_best_fitness:
            self.global_best = self.local_best[best].clone()
            self.global_best_fitness = float(self.local_best_fitness[best])
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`step` needs to continue exactly (tensors on the CPU)."""
        return {
            "positions": self.positions.cpu(),
            "velocities": self.velocities.cpu(),
            "local_best": self.local_best.cpu(),
            "local_best_fitness": self.local_best_fitness.cpu(),
            "global_best": self.global_best.cpu(),
            "global_best_fitness": self.global_best_fitness,
            "generation": self.generation,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any], device: torch.device | str = "cpu") -> None:
        """Continue from :meth:`state_dict`'s output (instead of :meth:`start`)."""
        for key in ("positions", "velocities", "local_best", "global_best"):
            setattr(self, key, state[key].to(device))
        self.local_best_fitness = state["local_best_fitness"].to(device)
        self.global_best_fitness = float(state["global_best_fitness"])
        self.generation = int(state["generation"])
        self.generator.set_state(state["generator"])


def fitness_from_loss(loss: Tensor) -> Tensor:
    """Our reading of eq. (9): ``f = 1 / (1 + L)``; a non-finite loss gets fitness 0."""
    loss = loss.to(torch.float64)
    return torch.where(torch.isfinite(loss), 1.0 / (1.0 + loss), torch.zeros_like(loss))


def loss_from_fitness(fitness: float) -> float:
    """Inverse of :func:`fitness_from_loss` (``inf`` for fitness 0)."""
    return math.inf if fitness <= 0 else 1.0 / fitness - 1.0


# -------------------------------------------------------------------- network as objective


class NetworkLoss:
    """Mean cross-entropy of one network architecture at many parameter vectors, on a fixed batch.

    A parameter vector is ``torch.nn.utils.parameters_to_vector(model.parameters())`` (the
    parameters in ``model.parameters()`` order, each flattened); buffers stay the model's own.

    Args:
        model: the architecture (its own parameter values are not used).
        images: ``(N, C, H, W)`` float inputs on the model's device.
        labels: ``(N,)`` int64 class indices.
        chunk_size: images per forward pass (all particles at once in :meth:`vectorised`).

    Shape:
        - Input: positions ``(P, D)`` with ``D`` the model's parameter count.
        - Output: ``(P,)`` float64 mean losses.
    """

    def __init__(self, model: nn.Module, images: Tensor, labels: Tensor, chunk_size: int) -> None:
        self.model = model
        named = list(model.named_parameters())
        self.names = [name for name, _ in named]
        self.shapes = [tuple(p.shape) for _, p in named]
        self.numels = [p.numel() for _, p in named]
        self.num_images = images.shape[0]
        self.chunks = list(zip(images.split(chunk_size), labels.split(chunk_size)))

        def summed_loss(params: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
            return F.cross_entropy(torch.func.functional_call(model, params, (x,)), y, reduction="sum")

        self._summed_loss = summed_loss
        self._summed_loss_all = torch.func.vmap(summed_loss, in_dims=(0, None, None))

    @property
    def dimensions(self) -> int:
        return sum(self.numels)

    def unflatten(self, positions: Tensor) -> dict[str, Tensor]:
        """Views of ``positions (P, D)`` as ``{name: (P, *shape)}``."""
        if positions.ndim != 2 or positions.shape[1] != self.dimensions:
            raise ValueError(f"positions must have shape (P, {self.dimensions}), got {tuple(positions.shape)}")
        pieces = positions.split(self.numels, dim=1)
        return {
            name: piece.reshape(positions.shape[0], *shape)
            for name, piece, shape in zip(self.names, pieces, self.shapes)
        }

    @torch.no_grad()
    def vectorised(self, positions: Tensor) -> Tensor:
        """All particles' losses, each chunk through the network once for all particles together."""
        params = self.unflatten(positions)
        total = torch.zeros(positions.shape[0], dtype=torch.float64, device=positions.device)
        for x, y in self.chunks:
            try:
                total += self._summed_loss_all(params, x, y).double()
            except RuntimeError as exc:
                if "functorch" not in str(exc):
                    raise
                raise RuntimeError(
                    "this network cannot be evaluated under torch.func.vmap (its activation is a custom "
                    "autograd.Function without vmap support); set pso.vectorised to false, or model.impl "
                    f"to 'reference'. torch said: {exc}"
                ) from None
        return total / self.num_images

    @torch.no_grad()
    def looped(self, positions: Tensor) -> Tensor:
        """The same losses as :meth:`vectorised`, one particle at a time."""
        params = self.unflatten(positions)
        total = torch.zeros(positions.shape[0], dtype=torch.float64, device=positions.device)
        for particle in range(positions.shape[0]):
            own = {name: value[particle] for name, value in params.items()}
            for x, y in self.chunks:
                total[particle] += self._summed_loss(own, x, y).double()
        return total / self.num_images


# ------------------------------------------------------------------------------- training


def write_history(path: Path, rows: list[Mapping[str, Any]]) -> None:
    """Write the PSO history CSV atomically (columns :data:`HISTORY_COLUMNS`)."""
    write_csv_atomic(path, rows, HISTORY_COLUMNS)


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
    initial swarm), ``checkpoint.pt`` (about once a minute and after the last generation) and, when the run completes,
    ``best.pt`` (the ``state_dict`` of the network at ``P_g``) and ``summary.json`` (the last row's
    numbers, the device and how it ran). ``stop_after_generation`` ends the
    call early (as a crash would) for tests of resumption. ``identity`` joins the checkpoint's
    fingerprint (as in :func:`trainact.training.train.fit`). Returns the history rows.
    """
    from tqdm.auto import tqdm

    from trainact.nn.activations import reset_kernel_report
    from trainact.nn.calibration import calibrate
    from trainact.data.loader import DeviceDataset

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device, run_info = job_device(settings.device)
    reset_kernel_report()  # the summary says which activation kernels ran in this run
    check_subset_sizes(settings, len(data.train_labels))
    fitness_index = _subset(len(data.train_labels), settings.fitness_batch_size, settings.seed, stream=0)
    eval_index = _subset(len(data.train_labels), settings.eval_train_size, settings.seed, stream=1)

    seed_everything(settings.seed)
    models = [build_model(settings.size, settings.activation, model_cfg) for _ in range(settings.particles)]
    model = models[0].to(device)
    # The data-dependent start (standardisation statistics, Fourier scales) lives in buffers,
    # which every particle shares: measured once, with particle 0 (the backprop baseline's network).
    calibrate(model, data.train_images, settings.seed)
    initial_positions = torch.stack([nn.utils.parameters_to_vector(m.parameters()).detach() for m in models])
    del models

    fitness_set = DeviceDataset(data.train_images[fitness_index], data.train_labels[fitness_index], device)
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

    def accuracies_of_global_best() -> tuple[float, float]:
        nn.utils.vector_to_parameters(swarm.global_best, model.parameters())
        _, train_acc = evaluate(model, eval_train_set, settings.eval_batch_size)
        _, test_acc = evaluate(model, test_set, settings.eval_batch_size)
        return train_acc, test_acc

    def record(generation: int, started: float, global_best_changed: bool) -> None:
        if global_best_changed:
            train_acc, test_acc = accuracies_of_global_best()
        else:
            train_acc, test_acc = history[-1]["train_acc"], history[-1]["test_acc"]
        history.append(
            {
                "generation": generation,
                "best_fitness": round(swarm.global_best_fitness, 8),
                "best_loss": round(loss_from_fitness(swarm.global_best_fitness), 6),
                "train_acc": round(train_acc, 6),
                "test_acc": round(test_acc, 6),
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
        # The swarm is large (23 MB for the paper's): checkpointed by time and after the last
        # generation (and when a test stops the run early), the history after every generation.
        last = generation >= settings.generations or (
            stop_after_generation is not None and generation >= stop_after_generation
        )
        clock.save_if_due(
            checkpoint_path,
            lambda: {"swarm": swarm.state_dict(), "history": history, "fingerprint": fingerprint},
            force=last,
        )
        write_history(out_dir / HISTORY_NAME, history)

    fingerprint = {**settings.checkpoint_fingerprint(model=model), **(identity or {})}
    checkpoint_path = out_dir / CHECKPOINT_NAME
    history: list[dict[str, Any]] = []
    clock = CheckpointClock()
    checkpoint = load_checkpoint(checkpoint_path) if resume else None
    if checkpoint is not None:
        if checkpoint.get("fingerprint") == fingerprint and len(checkpoint["history"]) <= settings.generations + 1:
            swarm.load_state_dict(checkpoint["swarm"], device)
            history = list(checkpoint["history"])
            log.info("resuming %s after generation %d", out_dir, swarm.generation)
        else:
            log.warning("%s was written with other settings; starting a new swarm", checkpoint_path)
    if not history:
        started = time.perf_counter()
        swarm.start(initial_positions.to(device))
        record(0, started, global_best_changed=True)

    bar = tqdm(
        range(swarm.generation + 1, settings.generations + 1),
        desc=f"pso {out_dir.name}",
        unit="gen",
        initial=swarm.generation,
        total=settings.generations,
        disable=not progress,
    )
    for generation in bar:
        if stop_after_generation is not None and swarm.generation >= stop_after_generation:
            bar.close()
            return history
        started = time.perf_counter()
        changed = swarm.step()
        record(generation, started, changed)
        row = history[-1]
        bar.set_postfix(best_loss=f"{row['best_loss']:.4f}", test_acc=f"{row['test_acc']:.4f}")
        log.info(
            "generation %d/%d best loss %.4f fitness %.6f | P_g train acc %.4f test acc %.4f",
            generation, settings.generations, row["best_loss"], row["best_fitness"], row["train_acc"], row["test_acc"],
        )  # fmt: skip
    nn.utils.vector_to_parameters(swarm.global_best, model.parameters())
    best_state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(out_dir / BEST_NAME, lambda tmp: torch.save(best_state, tmp))
    summary = {
        "generations": history[-1]["generation"],
        "best_loss": history[-1]["best_loss"],
        "train_acc": history[-1]["train_acc"],
        "test_acc": history[-1]["test_acc"],
        **run_record(run_info),
    }
    write_text_atomic(out_dir / SUMMARY_FILE, json.dumps(summary, indent=1))
    return history


# ----------------------------------------------------------------------------------- CLI


def _cmd_pso(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError, parse_params
    from trainact.data.cifar import load_prepared

    params = parse_params(args.params, ("model", "pso"))
    try:
        settings = PSOSettings.from_params(params.get("pso", {}), seed=args.seed, device=args.device)
        resolve_device(settings.device)
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
