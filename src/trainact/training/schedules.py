"""The schedule axis: the paper's learning-rate schedule with the first phase cut at epoch L.

Issue 17 found that the sign of the paper's main claim flips with the length of the first
learning-rate phase (5 epochs at 1e-3: the trainable activations win; 15: ReLU wins). The
schedule axis makes that length an experiment: for every ``L`` of ``first_phase_epochs`` a run
trains ``L`` epochs at the first learning rate, then the *tail*: ``tail_epochs[i]`` epochs at
``learning_rates[i + 1]`` of the train config. Schedules in the same notation as the trainer's
(:class:`trainact.training.train.TrainSettings`: ``epochs``, ``lr_boundaries``, ``learning_rates``).

Cheaply: one *trunk* per network and seed trains ``max(L)`` epochs at the first learning rate and
keeps its state after every epoch (``snapshot_epochs``); the *branch* at ``L`` starts from the
trunk's snapshot after epoch ``L`` and trains only the tail (``trainact train --branch-from``),
which equals the schedule run from scratch, bit for bit on the CPU (tests/training/test_train.py). The
trunk's settings hold neither the tail nor the list of L, so editing the tail reruns only the
branches, and adding an L no larger than the trunk reruns nothing but the new branches.

Pure and torch-free: the workflow (``workflow/rules/common.smk``) imports it at parse time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from trainact.training.settings import SCHEDULE_KEYS


def _shared(train: Mapping[str, Any]) -> dict[str, Any]:
    """What a trunk and its branches take from the train config unchanged (batch size, RMSProp's
    rho and eps, the activation rate scale, ...)."""
    return {k: v for k, v in train.items() if k not in SCHEDULE_KEYS}


def check_axis(axis: Mapping[str, Any], learning_rates: Sequence[float]) -> None:
    """Raise ``ValueError`` naming the bad value when ``axis`` cannot be planned."""
    first = list(axis["first_phase_epochs"])
    tail = list(axis["tail_epochs"])
    if not first or any(not isinstance(L, int) or L < 1 for L in first) or first != sorted(set(first)):
        raise ValueError(
            f"schedule_axis.first_phase_epochs = {first!r}: must be strictly increasing whole numbers >= 1"
        )
    if not tail or any(not isinstance(n, int) or n < 1 for n in tail):
        raise ValueError(
            f"schedule_axis.tail_epochs = {tail!r}: must be whole numbers >= 1, one per tail phase"
        )
    if len(tail) > len(learning_rates) - 1:
        raise ValueError(
            f"schedule_axis.tail_epochs = {tail!r}: {len(tail)} tail phases, but train.learning_rates = "
            f"{list(learning_rates)!r} has only {len(learning_rates) - 1} rate(s) after the first"
        )


def is_main_schedule(train: Mapping[str, Any], axis: Mapping[str, Any], first_phase: int) -> bool:
    """Whether the schedule at ``L = first_phase`` is the train config's own: then the main grid's
    runs are that point of the axis, and nothing is trained for it."""
    return phases(branch_train(train, axis, first_phase)) == phases(train)


def branch_points(train: Mapping[str, Any], axis: Mapping[str, Any]) -> list[int]:
    """The values of L that need a branch of their own (those that are not the main schedule)."""
    return [L for L in axis["first_phase_epochs"] if not is_main_schedule(train, axis, L)]


def trunk_train(train: Mapping[str, Any], axis: Mapping[str, Any]) -> dict[str, Any]:
    """The trunk's train settings: as many epochs at the first learning rate as the largest
    branch point, a snapshot after every epoch (so that any L up to the trunk's length can
    branch without rerunning it)."""
    check_axis(axis, train["learning_rates"])
    length = max(branch_points(train, axis), default=0)
    if length == 0:
        raise ValueError(
            "every point of schedule_axis.first_phase_epochs is the main schedule: no trunk to train"
        )
    return {
        **_shared(train),
        "epochs": length,
        "lr_boundaries": [],
        "learning_rates": [train["learning_rates"][0]],
        "snapshot_epochs": list(range(1, length + 1)),
    }


def branch_train(train: Mapping[str, Any], axis: Mapping[str, Any], first_phase: int) -> dict[str, Any]:
    """The train settings of the branch at ``L = first_phase``: L epochs at the first learning
    rate, then the tail (the schedule that the branch equals when run from scratch)."""
    check_axis(axis, train["learning_rates"])
    tail = list(axis["tail_epochs"])
    boundaries = [first_phase]
    for epochs in tail[:-1]:
        boundaries.append(boundaries[-1] + epochs)
    return {
        **_shared(train),
        "epochs": first_phase + sum(tail),
        "lr_boundaries": boundaries,
        "learning_rates": list(train["learning_rates"][: len(tail) + 1]),
    }


def phases(train: Mapping[str, Any]) -> list[tuple[float, int]]:
    """``[(learning rate, epochs at it)]`` of a schedule, phases with no epoch left out."""
    epochs, boundaries, rates = (
        int(train["epochs"]),
        list(train["lr_boundaries"]),
        list(train["learning_rates"]),
    )
    edges = [0] + [min(b, epochs) for b in boundaries] + [epochs]
    result = []
    for rate, start, stop in zip(rates, edges, edges[1:]):
        if stop > start:
            result.append((float(rate), stop - start))
    return result


def steps_per_epoch(train_images: int, batch_size: int) -> int:
    """Optimiser steps of one epoch (the last batch may be smaller)."""
    return math.ceil(train_images / batch_size)


def schedule_text(train: Mapping[str, Any], train_images: int | None = None) -> str:
    """A schedule in epochs and, given the training set's size, optimiser steps per learning
    rate, e.g. ``"5 ep @ 1e-3 (1,955 steps), 4 ep @ 1e-4 (1,564), 1 ep @ 1e-5 (391)"``."""
    parts = []
    for i, (rate, epochs) in enumerate(phases(train)):
        text = f"{epochs} ep @ {rate:g}"
        if train_images:
            steps = epochs * steps_per_epoch(train_images, int(train["batch_size"]))
            text += f" ({steps:,} steps)" if i == 0 else f" ({steps:,})"
        parts.append(text)
    return ", ".join(parts)
