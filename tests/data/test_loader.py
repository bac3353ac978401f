"""Tests of trainact.data.loader: the DeviceDataset's batches and their seeded order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainact.data import loader

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _identity_dataset(count: int, device: str) -> tuple[np.ndarray, loader.DeviceDataset]:
    """Random images whose label is their own index, so each batch shows where it came from."""
    images = np.random.default_rng(0).integers(0, 256, size=(count, 3, 32, 32), dtype=np.uint8)
    return images, loader.DeviceDataset(images, np.arange(count), device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shuffle", [False, True])
def test_device_dataset_batches_cover_every_image_once(device: str, shuffle: bool) -> None:
    images, dataset = _identity_dataset(103, device)
    assert len(dataset) == 103
    assert dataset.images.dtype == torch.uint8 and dataset.images.device.type == device
    assert dataset.labels.dtype == torch.int64
    batches = list(dataset.batches(10, shuffle=shuffle, seed=3, epoch=2))
    assert len(batches) == dataset.num_batches(10) == 11
    assert [len(y) for _, y in batches] == [10] * 10 + [3]
    seen = torch.cat([y for _, y in batches]).cpu()
    assert sorted(seen.tolist()) == list(range(103))
    if shuffle:
        assert torch.equal(seen, dataset.permutation(3, 2))
    else:
        assert seen.tolist() == list(range(103))
    expected_x = torch.from_numpy(images).to(torch.float32) / 255
    for x, y in batches:
        assert x.dtype == torch.float32 and x.device.type == device
        assert torch.equal(x.cpu(), expected_x[y.cpu()])
    assert float(min(x.min() for x, _ in batches)) >= 0.0
    assert float(max(x.max() for x, _ in batches)) <= 1.0


def test_device_dataset_order_depends_only_on_seed_and_epoch() -> None:
    _, first = _identity_dataset(50, "cpu")
    _, second = _identity_dataset(50, "cpu")

    def order(dataset: loader.DeviceDataset, seed: int, epoch: int) -> list[int]:
        return torch.cat([y for _, y in dataset.batches(8, shuffle=True, seed=seed, epoch=epoch)]).tolist()

    torch.manual_seed(123)  # the global RNG must play no part
    reference = order(first, 0, 5)
    torch.manual_seed(456)
    assert order(second, 0, 5) == reference
    assert order(first, 0, 6) != reference
    assert order(first, 1, 5) != reference
    assert loader.epoch_seed(0, 5) == loader.epoch_seed(0, 5) != loader.epoch_seed(0, 6)


def test_device_dataset_drop_last_and_argument_checks() -> None:
    _, dataset = _identity_dataset(25, "cpu")
    kept = list(dataset.batches(10, shuffle=True, drop_last=True))
    assert dataset.num_batches(10, drop_last=True) == len(kept) == 2
    assert all(len(y) == 10 for _, y in kept)
    assert dataset.num_batches(5) == dataset.num_batches(5, drop_last=True) == 5
    with pytest.raises(ValueError, match="batch size must be a positive integer, got 0"):
        dataset.batches(0)
    with pytest.raises(TypeError, match="uint8"):
        loader.DeviceDataset(np.zeros((2, 3, 32, 32), np.float32), [0, 1], "cpu")
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        loader.DeviceDataset(np.zeros((2, 3, 32, 32), np.uint8), [0, 1, 2], "cpu")
    from_tensor = loader.DeviceDataset(
        torch.zeros(2, 3, 32, 32, dtype=torch.uint8), torch.tensor([1, 2], dtype=torch.int32), "cpu"
    )
    assert from_tensor.labels.dtype == torch.int64
