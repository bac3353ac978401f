"""One training step, written once: the trainer, the autoencoder's pretraining and the benchmarks
(``trainact bench``: its timing and its operation profile) all step through :func:`train_step`.

A step is: forward, loss, clear the gradients, backward, optimiser step. The epoch's running sums
(:class:`EpochTotals`) stay on the device, so a step never waits for the host. :func:`rmsprop`
builds the one optimiser every experiment uses (the paper's RMSProp), naming its decay ``rho``
as the paper and the settings do (torch calls it ``alpha``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

#: Called with the name of the phase a step enters ("forward", "backward", "optimizer"); the
#: operation profile (trainact.bench.profile) counts kernel launches by phase through it.
PhaseHook = Callable[[str], None]


def rmsprop(
    params: Iterable[Any], *, lr: float, rho: float, eps: float, **options: Any
) -> torch.optim.RMSprop:
    """``torch.optim.RMSprop`` with the paper's names: decay ``rho`` (torch's ``alpha``)."""
    return torch.optim.RMSprop(params, lr=lr, alpha=rho, eps=eps, **options)


def train_step(
    forward: Callable[[Tensor], Tensor],
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    optimizer: torch.optim.Optimizer,
    inputs: Tensor,
    targets: Tensor,
    *,
    phase: PhaseHook | None = None,
) -> tuple[Tensor, Tensor]:
    """One gradient step: ``loss = loss_fn(forward(inputs), targets)``, backward, ``optimizer.step()``.

    ``forward`` is the network (a classifier; for the autoencoder a stage and its decoder).
    Returns the loss and the output, detached (for the running sums). ``phase`` is told when the
    step enters each phase.
    """
    mark = phase or _no_phase
    mark("forward")
    output = forward(inputs)
    loss = loss_fn(output, targets)
    mark("backward")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    mark("optimizer")
    optimizer.step()
    return loss.detach(), output.detach()


def _no_phase(name: str) -> None:
    pass


class EpochTotals:
    """An epoch's running sums on ``device``: the batch losses weighted by batch size, and the
    number of correct predictions. Read them once per epoch (``.item()``), not per step."""

    def __init__(self, device: torch.device | str) -> None:
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)

    def add(
        self, loss: Tensor, batch_size: int, logits: Tensor | None = None, labels: Tensor | None = None
    ) -> None:
        """Add one batch's mean ``loss`` (times ``batch_size``) and, given ``logits`` and
        ``labels``, its correct predictions."""
        self.loss_sum += loss.double() * batch_size
        if logits is not None:
            self.correct += (logits.argmax(1) == labels).sum()


def classifier_step(
    model: Callable[[Tensor], Tensor],
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    optimizer: torch.optim.Optimizer,
    images: Tensor,
    labels: Tensor,
    totals: EpochTotals,
    *,
    phase: PhaseHook | None = None,
) -> None:
    """One iteration of the trainer's batch loop: :func:`train_step`, then the running sums (the
    phase "bookkeeping")."""
    loss, logits = train_step(model, loss_fn, optimizer, images, labels, phase=phase)
    (phase or _no_phase)("bookkeeping")
    totals.add(loss, labels.shape[0], logits, labels)
