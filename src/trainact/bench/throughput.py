"""Training throughput of every CNN size x activation: ``python -m trainact bench``.

What it measures: full training steps (uint8 batch -> float in [0, 1], then the trainer's own step,
:func:`trainact.training.step.train_step`: forward, cross-entropy, backward, RMSProp step) on random
data that lives on the device, so data loading plays no part.
All networks are built in one process and their steps are interleaved round-robin: step k of
network 1, step k of network 2, ..., so that machine noise (other processes, frequency changes)
hits every network alike. Each network's throughput is the median over its timed steps, and is
reported as a ratio to the ReLU network of the same size (ReLU is always measured, as the
baseline). Warm-up steps are not timed; the first one includes ``torch.compile`` of the
activation kernels (compiled once per process, so only the first network using a kernel pays),
reported as ``first_step_s``.

Below the table (not with ``--json``, whose list other tools read) it compares PSO's two
particle evaluators the same way (:mod:`trainact.bench.pso_evaluators`). ``--profile`` counts
instead of timing (:mod:`trainact.bench.profile`). The command line: :mod:`trainact.bench.commands`.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from dataclasses import dataclass

import torch
from torch import nn
from tqdm import tqdm

from trainact.data.cifar import IMAGE_SHAPE, NUM_CLASSES
from trainact.names import ACTIVATIONS, PAPER_FILTERS, PAPER_LEARNING_RATES
from trainact.nn.models import build_model, parameter_count
from trainact.nn.trainable import IMPLS
from trainact.training.device import resolve_device
from trainact.training.settings import RMSPROP_EPS, RMSPROP_RHO
from trainact.training.step import rmsprop, train_step

BASELINE = "relu"
#: Optimiser settings of the trainer (paper: RMSProp, rho = 0.95, lr = 0.001 for the first epochs),
#: as :func:`trainact.training.step.rmsprop` takes them.
RMSPROP = {"lr": PAPER_LEARNING_RATES[0], "rho": RMSPROP_RHO, "eps": RMSPROP_EPS}


@dataclass
class BenchResult:
    """Throughput of one network. ``ratio_to_relu``: images/s over the same-size ReLU network's."""

    size: str
    activation: str
    images_per_s: float
    ratio_to_relu: float
    parameters: int
    first_step_s: float
    median_step_s: float


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Trainee:
    """One network with its optimiser and a fixed random batch on the device."""

    def __init__(
        self,
        size: str,
        activation: str,
        model_cfg: dict,
        batch_size: int,
        device: torch.device,
    ):
        self.size, self.activation, self.device = size, activation, device
        self.model = build_model(size, activation, model_cfg).to(device)
        self.optimizer = rmsprop(self.model.parameters(), **RMSPROP)
        generator = torch.Generator().manual_seed(0)
        self.images = torch.randint(
            0, 256, (batch_size, *IMAGE_SHAPE), dtype=torch.uint8, generator=generator
        ).to(device)
        self.labels = torch.randint(0, NUM_CLASSES, (batch_size,), generator=generator).to(device)
        self.loss_fn = nn.CrossEntropyLoss()
        self.first_step_s = math.nan
        self.step_seconds: list[float] = []

    def step(self) -> float:
        """One training step; returns its wall-clock seconds (device synchronised)."""
        _synchronize(self.device)
        start = time.perf_counter()
        train_step(self.model, self.loss_fn, self.optimizer, self.images.float() / 255.0, self.labels)
        _synchronize(self.device)
        return time.perf_counter() - start


def check_choices(sizes, activations, impl: str | None) -> None:
    for size in sizes:
        if size not in PAPER_FILTERS:
            raise ValueError(f"unknown size {size!r}; allowed: {', '.join(PAPER_FILTERS)}")
    for activation in activations:
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; allowed: {', '.join(ACTIVATIONS)}")
    if impl is not None and impl not in IMPLS:
        raise ValueError(f"unknown impl {impl!r}; allowed: {', '.join(IMPLS)}")


# Over 60 lines by its signature and docstring (20 lines); the body is its three steps.
def run_bench(
    sizes: list[str] | tuple[str, ...] = tuple(PAPER_FILTERS),
    activations: list[str] | tuple[str, ...] = ACTIVATIONS,
    *,
    batch_size: int = 128,
    steps: int = 20,
    warmup: int = 3,
    device: str = "auto",
    impl: str | None = None,
    model_cfg: dict | None = None,
    progress: bool = True,
) -> list[BenchResult]:
    """Measure every ``size x activation`` network (plus the ReLU baselines), interleaved.

    ``impl`` (activation implementation) overrides ``model_cfg["impl"]`` when given.
    Returns one result per network in the order size, then activation (``relu`` first).
    """
    check_choices(sizes, activations, impl)
    if batch_size < 1 or steps < 1 or warmup < 1:
        raise ValueError(
            f"batch_size, steps and warmup must be >= 1, got {batch_size}, {steps}, {warmup} "
            "(warm-up includes compilation, which must not be timed)"
        )
    torch_device = resolve_device(device)
    cfg = dict(model_cfg or {})
    if impl is not None:
        cfg["impl"] = impl
    names = [BASELINE] + [a for a in dict.fromkeys(activations) if a != BASELINE]
    trainees = [
        _Trainee(size, a, cfg, batch_size, torch_device) for size in dict.fromkeys(sizes) for a in names
    ]

    with tqdm(
        total=(warmup + steps) * len(trainees),
        desc="bench",
        unit="step",
        disable=not progress,
        file=sys.stderr,
    ) as bar:
        for round_index in range(warmup + steps):
            for trainee in trainees:
                seconds = trainee.step()
                if round_index == 0:
                    trainee.first_step_s = seconds
                if round_index >= warmup:
                    trainee.step_seconds.append(seconds)
                bar.update()

    medians = [statistics.median(t.step_seconds) for t in trainees]
    baseline = {t.size: m for t, m in zip(trainees, medians) if t.activation == BASELINE}
    return [
        BenchResult(
            size=t.size,
            activation=t.activation,
            images_per_s=batch_size / median,
            ratio_to_relu=baseline[t.size] / median,
            parameters=parameter_count(t.model),
            first_step_s=t.first_step_s,
            median_step_s=median,
        )
        for t, median in zip(trainees, medians)
    ]


def format_table(results: list[BenchResult]) -> str:
    """Plain-text table, one row per network."""
    header = (
        f"{'size':<7} {'activation':<10} {'params':>9} {'images/s':>9} {'x relu':>7} {'first step s':>12}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.size:<7} {r.activation:<10} {r.parameters:>9,d} {r.images_per_s:>9.1f} "
            f"{r.ratio_to_relu:>7.2f} {r.first_step_s:>12.2f}"
        )
    return "\n".join(lines)
