"""PSO's two particle evaluators side by side: ``python -m trainact pso-bench`` (and below the
table of ``trainact bench``): all particles in one ``vmap``-ed pass against a loop over them
(:class:`trainact.training.swarm.NetworkLoss`), interleaved in one process.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from trainact.nn.models import build_model
from trainact.training.device import resolve_device
from trainact.training.random_state import seed_everything
from trainact.training.swarm import NetworkLoss


# Over 60 lines: build, warm up, time interleaved, report; not yet split into named steps.
def bench_evaluators(
    *,
    size: str = "middle",
    activation: str = "relu",
    particles: int = 10,
    batch_size: int = 1000,
    chunk_size: int = 500,
    repeats: int = 5,
    device: str | None = None,
    model_cfg: dict[str, Any] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Time vectorised against looped fitness evaluation, interleaved in this process.

    Each repeat times one vectorised and one looped evaluation of ``particles`` seeded networks on
    ``batch_size`` random images (alternating which goes first); speeds are particle-images per
    second. Returns the medians, the median of the per-repeat speed ratios and the largest loss
    difference between the two evaluators.
    """
    torch_device = resolve_device(device)
    seed_everything(seed)
    models = [build_model(size, activation, model_cfg) for _ in range(particles)]
    positions = torch.stack([nn.utils.parameters_to_vector(m.parameters()).detach() for m in models]).to(
        torch_device
    )
    model = models[0].to(torch_device)
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch_size, 3, 32, 32, generator=generator).to(torch_device)
    labels = torch.randint(0, 10, (batch_size,), generator=generator).to(torch_device)
    objective = NetworkLoss(model, images, labels, chunk_size)

    def timed(evaluator: Callable[[Tensor], Tensor]) -> tuple[float, Tensor]:
        if torch_device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        losses = evaluator(positions)
        if torch_device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started, losses

    timed(objective.vectorised)  # warm-up: allocator, kernel selection
    timed(objective.looped)
    vectorised_seconds, looped_seconds, ratios, max_diff = [], [], [], 0.0
    for repeat in tqdm(range(repeats), desc="pso-bench", unit="repeat", disable=not progress):
        order = (
            (objective.vectorised, objective.looped)
            if repeat % 2 == 0
            else (objective.looped, objective.vectorised)
        )
        results = {evaluator.__name__: timed(evaluator) for evaluator in order}
        (vec_s, vec_losses), (loop_s, loop_losses) = (
            results["vectorised"],
            results["looped"],
        )
        vectorised_seconds.append(vec_s)
        looped_seconds.append(loop_s)
        ratios.append(loop_s / vec_s)
        max_diff = max(max_diff, float((vec_losses - loop_losses).abs().max()))
    images_evaluated = particles * batch_size
    return {
        "device": str(torch_device),
        "size": size,
        "activation": activation,
        "particles": particles,
        "batch_size": batch_size,
        "chunk_size": chunk_size,
        "repeats": repeats,
        "vectorised_images_per_s": round(images_evaluated / statistics.median(vectorised_seconds), 1),
        "looped_images_per_s": round(images_evaluated / statistics.median(looped_seconds), 1),
        "speedup_median": round(statistics.median(ratios), 3),
        "max_abs_loss_difference": max_diff,
    }


def format_evaluator_bench(result: dict[str, Any]) -> str:
    """The text report of :func:`bench_evaluators` (``pso-bench``; ``bench`` below its table)."""
    return (
        f"PSO fitness evaluation, {result['size']}-{result['activation']} CNN, "
        f"{result['particles']} particles x {result['batch_size']} images on "
        f"{result['device']} (median of {result['repeats']}):\n"
        f"  vectorised (vmap) {result['vectorised_images_per_s']:>12,.0f} images/s\n"
        f"  looped            {result['looped_images_per_s']:>12,.0f} images/s\n"
        f"  speed-up          {result['speedup_median']:>12.2f} x   "
        f"(largest loss difference {result['max_abs_loss_difference']:.2e})"
    )
