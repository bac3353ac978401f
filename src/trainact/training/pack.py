"""Packs: several networks trained by one process, each exactly as it would be trained alone.

A pack pays once for what every training job pays: importing torch, loading the prepared data,
compiling the activation kernels, claiming a GPU. Each network keeps its own output folder and
everything in it: history, activation health, checkpoint (and so its own resume point), kernel
record, summary; the files are those a job of one network writes, bit for bit on the CPU.

How the networks share the process (:func:`train_pack`):

* On a **GPU** they are interleaved step by step: one optimiser step of each network in turn,
  each network on its own CUDA stream. Launches are asynchronous, so while the host queues the
  next network's step the GPU still runs the previous ones; small networks, each too small to
  fill the GPU, fill it together.
* On the **CPU** they run one after the other: the cores are already busy with one network's
  step, and interleaving would only make every network finish late.

Each network is built as a job of its own builds it (``seed_everything(seed)``, the model,
calibration) right before its training starts on the CPU, and all of them before the first step
on a GPU; nothing in a training step draws from the global random state, so interleaving changes
no number. A network that diverges stops alone; the others go on. A killed pack started again
resumes each network from its own checkpoint, and a network whose checkpoint holds every epoch
only writes its results again. At SIGTERM or SIGINT (:mod:`trainact.training.interrupt`) every
network in progress writes its checkpoint before its next step, and the pack stops with one
:class:`~trainact.training.interrupt.Interrupted` that names them all; networks not started yet
have nothing to save.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainact.training import interrupt
from trainact.training.train import Training, TrainingDiverged, training
from trainact.training.train_settings import TrainSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackMember:
    """One network of a pack: what a job of one network is given on its command line."""

    size: str
    activation: str
    seed: int
    out_dir: Path

    def __str__(self) -> str:
        return f"{self.size}-{self.activation}-seed{self.seed}"


def pack_members(
    sizes: Sequence[str],
    activations: Sequence[str],
    seeds: Sequence[int],
    out_dirs: Sequence[str | os.PathLike],
) -> list[PackMember]:
    """The networks of ``sizes`` x ``activations`` x ``seeds`` (in that order: size first, seed
    last) with their ``out_dirs``, one folder per network in the same order."""
    networks = [(size, activation, seed) for size in sizes for activation in activations for seed in seeds]
    if len(out_dirs) != len(networks):
        raise ValueError(
            f"{len(networks)} networks ({len(sizes)} sizes x {len(activations)} activations x "
            f"{len(seeds)} seeds) need {len(networks)} output folders, one each in the order "
            f"size, activation, seed; got {len(out_dirs)}: {[str(d) for d in out_dirs]}"
        )
    folders = [Path(d) for d in out_dirs]
    if len(set(folders)) != len(folders):
        repeated = sorted({str(d) for d in folders if folders.count(d) > 1})
        raise ValueError(f"each network needs its own output folder; repeated: {repeated}")
    return [PackMember(*network, folder) for network, folder in zip(networks, folders)]


#: Builds a member's model and settings, as a one-network job does before training.
Builder = Callable[[PackMember], tuple[nn.Module, TrainSettings]]


@dataclass
class PackOutcome:
    """How each network of a pack ended: ``"complete"`` or ``"diverged"`` (with the message)."""

    status: dict[str, str]
    messages: dict[str, str]

    @property
    def diverged(self) -> list[str]:
        return [name for name, status in self.status.items() if status == "diverged"]


def train_pack(
    members: Iterable[PackMember],
    build: Builder,
    data,
    device: torch.device,
    *,
    train_kwargs: Callable[[PackMember], dict[str, Any]] = lambda member: {},
    interleave: bool | None = None,
) -> PackOutcome:
    """Train every member (:func:`trainact.training.train.training` with ``build(member)`` and
    ``train_kwargs(member)``) in one process: interleaved step by step on a CUDA ``device``, each
    on its own stream; one after the other elsewhere (see the module docstring; ``interleave``
    overrides the choice, e.g. for the tests, which interleave on the CPU to check that it
    changes no number). A member that diverges is recorded and the others go on. Returns each
    member's outcome. Raises :class:`~trainact.training.interrupt.Interrupted` at a signal, once
    every member in progress has written its checkpoint (:func:`stop_every_member`)."""
    members = list(members)
    outcome = PackOutcome({}, {})

    def start(member: PackMember, stream: Any = None) -> Training:
        model, settings = build(member)
        return training(model, data, settings, member.out_dir, stream=stream, **train_kwargs(member))

    def advance(member: PackMember, run: Training) -> bool:
        try:
            return run.advance()
        except TrainingDiverged as exc:
            log.error("%s", exc)
            outcome.status[str(member)], outcome.messages[str(member)] = "diverged", str(exc)
            return False

    if device.type == "cuda" if interleave is None else interleave:
        on_gpu = device.type == "cuda"
        running = {member: start(member, torch.cuda.Stream(device) if on_gpu else None) for member in members}
        while running:
            for member, run in list(running.items()):
                try:
                    going = advance(member, run)
                except interrupt.Interrupted as stop:
                    del running[member]
                    raise stop_every_member(stop, running.values()) from None
                if not going:
                    del running[member]
                    outcome.status.setdefault(str(member), "complete")
        if on_gpu:
            torch.cuda.synchronize(device)
    else:
        for member in members:
            if interrupt.requested() is not None:  # between two members: none in progress
                raise interrupt.Interrupted(interrupt.requested())
            run = start(member)
            while advance(member, run):
                pass
            outcome.status.setdefault(str(member), "complete")
    return outcome


def stop_every_member(first: interrupt.Interrupted, others: Iterable[Training]) -> interrupt.Interrupted:
    """After ``first`` (one member stopped at a signal with its checkpoint), let every other
    member that has started reach its safe point, before its next step, where it writes its
    checkpoint too; returns the :class:`~trainact.training.interrupt.Interrupted` naming all the
    checkpoints. ``first`` itself when a second signal stopped the job at once."""
    if first.at_once:
        return first
    saved = list(first.saved)
    for run in others:
        if not run.started:
            continue
        try:
            run.advance()  # stops before its next step, or completes if it was past its last one
        except interrupt.Interrupted as stop:
            if stop.at_once:
                return stop
            saved += stop.saved
        except TrainingDiverged as exc:  # its last step's loss: its results are written
            log.error("%s", exc)
    return interrupt.Interrupted(first.signum, saved)
