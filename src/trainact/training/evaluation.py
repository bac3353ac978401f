"""Evaluation: mean cross-entropy and accuracy of a model on a whole dataset."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def evaluate(model: nn.Module, dataset, batch_size: int) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on a whole :class:`DeviceDataset`."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=dataset.device)
    correct = torch.zeros((), dtype=torch.int64, device=dataset.device)
    with torch.no_grad():
        for images, labels in dataset.batches(batch_size, shuffle=False):
            logits = model(images)
            loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
            correct += (logits.argmax(1) == labels).sum()
    model.train(was_training)
    n = len(dataset)
    return loss_sum.item() / n, correct.item() / n
