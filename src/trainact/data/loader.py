"""A whole image split held on the training device, served in batches whose order depends only
on ``(seed, epoch)``: what the trainer, the autoencoder, PSO and the benchmarks read data through.

:class:`DeviceDataset` keeps a split as one uint8 tensor on the device and yields float batches;
dividing the pixels by 255 is the only transform anywhere (the paper trains on CIFAR-10 "without
any pre-processing", Section 4). Because each epoch's order is derived from ``(seed, epoch)``
(:func:`epoch_seed`), a resumed run sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
import torch


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit generator seed that depends only on ``(seed, epoch)`` (via SHA-256).

    Deriving each epoch's seed, instead of carrying one generator across epochs, makes any
    epoch's order reproducible without saved RNG state.
    """
    digest = hashlib.sha256(f"trainact-epoch:{int(seed)}:{int(epoch)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class DeviceDataset:
    """A whole image split held on the training device, served in (optionally shuffled) batches.

    Args:
        images_uint8: uint8 array or tensor ``(N, C, H, W)`` (CIFAR-10: ``(N, 3, 32, 32)``).
        labels: integer labels, shape ``(N,)``.
        device: where the data lives (``"cpu"``, ``"cuda"``, ...).

    The images stay uint8 on the device (4x smaller than float32) as one tensor; each batch is
    gathered with one index tensor and converted there: ``x = images[idx].float() / 255``, so
    pixels are scaled to ``[0, 1]`` and nothing else (no mean subtraction, no augmentation: the
    paper trains on unprocessed images). ``y`` is int64 of shape ``(B,)``.

    Shuffled order for ``(seed, epoch)`` is ``torch.randperm`` on the CPU with a generator
    seeded by :func:`epoch_seed`, so it is the same on every device and after a resume.
    """

    def __init__(
        self,
        images_uint8: np.ndarray | torch.Tensor,
        labels: np.ndarray | torch.Tensor,
        device: str | torch.device = "cpu",
    ) -> None:
        images = torch.as_tensor(images_uint8)
        if images.dtype != torch.uint8:
            raise TypeError(f"images must be uint8, got {images.dtype}")
        if images.ndim != 4:
            raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
        labels = torch.as_tensor(labels)
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
        if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
            raise TypeError(f"labels must be integers, got {labels.dtype}")
        self.device = torch.device(device)
        self.images = images.to(self.device).contiguous()
        self.labels = labels.to(self.device, torch.int64)

    def __len__(self) -> int:
        return self.images.shape[0]

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        """How many batches :meth:`batches` yields for these arguments."""
        _check_batch_size(batch_size)
        full, rest = divmod(len(self), batch_size)
        return full if drop_last or rest == 0 else full + 1

    def permutation(self, seed: int, epoch: int) -> torch.Tensor:
        """The shuffled order (CPU int64 tensor) used for ``(seed, epoch)``."""
        generator = torch.Generator(device="cpu").manual_seed(epoch_seed(seed, epoch))
        return torch.randperm(len(self), generator=generator)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
        drop_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x, y)``: x float32 ``(B, C, H, W)`` in ``[0, 1]``, y int64 ``(B,)``.

        Without ``shuffle`` the batches are consecutive slices in stored order. With it, every
        image appears exactly once per epoch in the order :meth:`permutation` gives. The last
        batch is smaller unless ``drop_last``.
        """
        if shuffle:
            return map(
                self.gather, self.batch_indices(batch_size, seed=seed, epoch=epoch, drop_last=drop_last)
            )
        return self._slices(batch_size, self.num_batches(batch_size, drop_last))

    def batch_indices(
        self, batch_size: int, *, seed: int = 0, epoch: int = 0, drop_last: bool = False
    ) -> Iterator[torch.Tensor]:
        """The shuffled batches of :meth:`batches` as index tensors on the device (int64, views of
        the epoch's order, copied to the device once): :meth:`gather` turns one into its batch; the
        static training step (:mod:`trainact.training.graph_step`) gathers into its own buffers."""
        count = self.num_batches(batch_size, drop_last)
        order = self.permutation(seed, epoch).to(self.device)
        return (
            order[start : min(start + batch_size, len(self))]
            for start in range(0, count * batch_size, batch_size)
        )

    def gather(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch ``(x, y)`` of the images at ``index`` (a device int64 tensor), as :meth:`batches`."""
        images, labels = self.images.index_select(0, index), self.labels.index_select(0, index)
        return images.to(torch.float32).div_(255.0), labels

    def _slices(self, batch_size: int, count: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, count * batch_size, batch_size):
            stop = min(start + batch_size, len(self))
            yield self.images[start:stop].to(torch.float32).div_(255.0), self.labels[start:stop]


def _check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch size must be a positive integer, got {batch_size!r}")
