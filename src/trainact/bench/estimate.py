"""The paper preset's wall time from a step time per network: what the GPU check estimates, and
the arithmetic behind the README's "Speed" section.

The workflow's training work is counted from the config (:func:`training_epochs`): every
distinct training run the workflow makes (the grid, the sensitivity study's own runs, the
schedule axis' trunks and branches, the autoencoder's fine-tuning), in epochs per network.
An epoch costs ``steps_per_epoch`` optimiser steps plus its evaluations, taken as forward passes
at a third of a training step's cost per image (a forward pass is about a third of forward,
backward and update). The autoencoder's layer-wise pretraining is counted as
``epochs_per_stage`` epochs per stage of the middle network (an upper bound: each stage trains
only part of the network), and PSO as forward passes of its fitness batches. Packs enter as one
factor: the throughput of a pack relative to its networks trained one by one.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from trainact import workflow_plan as plan

#: A forward pass costs about this share of a training step (forward, backward, update) per image.
FORWARD_SHARE = 1 / 3
#: Conv stages plus the dense layer: the autoencoder's pretraining stages (training/autoencoder_stages).
AUTOENCODER_STAGES = 4
_RUN = re.compile(r"/train/(?P<size>[a-z]+)-(?P<activation>[a-z]+)/seed\d+/history\.csv$")


def training_epochs(config: Mapping[str, Any]) -> Counter:
    """Epochs of training per (size, activation) over every distinct training run the config
    makes: the grid (with the autoencoder's baseline and PSO's reference), the study's own runs,
    the axis' trunks (max L epochs) and branches (the tail), the autoencoder's fine-tuning."""
    epochs = config["train"]["epochs"]
    inputs = plan.result_inputs(config)
    runs = set(inputs["train"]) | set(plan.sensitivity_inputs(config, plan.sensitivity_plan(config)))
    counted: Counter = Counter()
    for path in runs:
        match = _RUN.search(path)
        if match and "/schedule_axis/" not in path:
            counted[match["size"], match["activation"]] += epochs
    axis = config["schedule_axis"]
    if axis["enabled"]:
        tail = sum(axis["tail_epochs"])
        per_network = max(axis["first_phase_epochs"]) + tail * len(axis["first_phase_epochs"])
        for size in axis["sizes"]:
            for activation in axis["activations"]:
                counted[size, activation] += per_network * len(config["experiment"]["seeds"])
    ae = config["autoencoder"]
    seeds = len(config["experiment"]["seeds"])
    counted[ae["size"], ae["activation"]] += seeds * (epochs + AUTOENCODER_STAGES * ae["epochs_per_stage"])
    return counted


def preset_estimate(
    step_ms: Mapping[tuple[str, str], float],
    config: Mapping[str, Any],
    *,
    train_images: int = 50_000,
    eval_images: int = 20_000,
    pack_speedup: float = 1.0,
) -> dict[str, Any]:
    """Hours of the preset ``config`` from each network's milliseconds per training step
    (``step_ms[size, activation]``, at ``config``'s batch size), on one device, with packs
    running ``pack_speedup`` times the throughput of one network at a time. ``eval_images``: the
    images evaluated per epoch (test split and the training subset). Returns the hours and the
    terms they are made of."""
    batch = config["train"]["batch_size"]
    steps = math.ceil(train_images / batch)
    eval_steps = FORWARD_SHARE * eval_images / batch
    epochs = training_epochs(config)
    seconds = {
        f"{size}-{activation}": count * (steps + eval_steps) * step_ms[size, activation] / 1000
        for (size, activation), count in sorted(epochs.items())
    }
    pso = config["pso"]
    pso_forward = pso["particles"] * pso["generations"] * pso["fitness_batch_size"] / batch
    seconds["pso"] = (
        len(config["experiment"]["seeds"])
        * FORWARD_SHARE
        * pso_forward
        * step_ms[pso["size"], pso["activation"]]
        / 1000
    )
    total = sum(seconds.values())
    return {
        "epochs": {f"{s}-{a}": n for (s, a), n in sorted(epochs.items())},
        "steps_per_epoch": steps,
        "seconds_one_at_a_time": {k: round(v) for k, v in seconds.items()},
        "hours_one_at_a_time": round(total / 3600, 2),
        "pack_speedup": pack_speedup,
        "hours": round(total / 3600 / pack_speedup, 2),
    }
