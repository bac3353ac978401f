"""The particle swarm of PSO training (the paper's eq. (10)) and its objective: a network's loss
at many parameter vectors at once (the swarm, :mod:`trainact.training.pso`, uses both; the
benchmark ``trainact pso-bench`` times :class:`NetworkLoss`'s two evaluators).

Fitness: eq. (9) is garbled; we use ``f = 1 / (1 + L)`` with ``L`` the network's mean
cross-entropy on a fitness batch (:func:`fitness_from_loss`; see :mod:`trainact.training.pso`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

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
            raise ValueError(
                f"fitness_fn returned shape {tuple(fitness.shape)} for {positions.shape[0]} particles"
            )
        return torch.nan_to_num(fitness, nan=-math.inf)

    def start(self, positions: Tensor) -> None:
        """Evaluate the initial positions (velocities zero); they are the first local bests."""
        if positions.ndim != 2:
            raise ValueError(
                f"positions must have shape (particles, dimensions), got {tuple(positions.shape)}"
            )
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
            raise ValueError(
                f"positions must have shape (P, {self.dimensions}), got {tuple(positions.shape)}"
            )
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
