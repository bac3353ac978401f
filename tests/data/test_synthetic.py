"""Tests of trainact.data.synthetic: the reproducible CIFAR-10-shaped archive and its CLI."""

from __future__ import annotations

import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from trainact import cli
from trainact.data import cifar, download, loader, prepare
from trainact.data.synthetic import build_synthetic_archive

# md5 of build_synthetic_archive() with default arguments. It must not change between runs,
# machines or numpy versions; update it only together with a deliberate change of the generator.
DEFAULT_SYNTHETIC_MD5 = "1efd44175d38fc3298aaf40540844ce4"


def test_synthetic_archive_is_byte_for_byte_reproducible(tmp_path: Path) -> None:
    first = build_synthetic_archive(tmp_path / "a.tar.gz")
    second = build_synthetic_archive(tmp_path / "b.tar.gz")
    assert first == second == DEFAULT_SYNTHETIC_MD5
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    assert download.file_md5(tmp_path / "a.tar.gz") == first
    assert build_synthetic_archive(tmp_path / "c.tar.gz", seed=1) != first
    assert build_synthetic_archive(tmp_path / "d.tar.gz", train_per_class=21) != first


def test_synthetic_archive_has_official_layout(synthetic: tuple[Path, str]) -> None:
    path, _ = synthetic
    with tarfile.open(path) as tar:
        names = tar.getnames()
        batches = {
            name: pickle.load(tar.extractfile(name), encoding="bytes")
            for name in names
            if tar.getmember(name).isfile()
        }
    assert names == ["cifar-10-batches-py"] + [
        f"cifar-10-batches-py/{n}"
        for n in [
            "data_batch_1",
            "data_batch_2",
            "data_batch_3",
            "data_batch_4",
            "data_batch_5",
            "test_batch",
            "batches.meta",
        ]
    ]
    sizes = []
    for number in range(1, 6):
        batch = batches[f"cifar-10-batches-py/data_batch_{number}"]
        assert list(batch) == [b"batch_label", b"labels", b"data", b"filenames"]
        assert batch[b"batch_label"] == f"training batch {number} of 5".encode()
        assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape[1] == 3072
        assert len(batch[b"labels"]) == len(batch[b"filenames"]) == batch[b"data"].shape[0]
        assert all(isinstance(label, int) for label in batch[b"labels"])
        sizes.append(batch[b"data"].shape[0])
    assert sizes == [40] * 5  # 20 per class x 10 classes spread evenly
    test = batches["cifar-10-batches-py/test_batch"]
    assert test[b"data"].shape == (100, 3072)
    assert np.bincount(test[b"labels"]).tolist() == [10] * 10
    meta = batches["cifar-10-batches-py/batches.meta"]
    assert meta == {
        b"num_cases_per_batch": 40,
        b"label_names": [name.encode() for name in cifar.CLASS_NAMES],
        b"num_vis": 3072,
    }


def test_synthetic_classes_are_learnable(tmp_path: Path, synthetic: tuple[Path, str]) -> None:
    """A tiny CNN reaches far above chance (10%) on the test split within 5 short epochs."""
    prepared = cifar.load_prepared(prepare.prepare(synthetic[0], tmp_path / "p.npz", progress=False))
    train = loader.DeviceDataset(prepared.train_images, prepared.train_labels, "cpu")
    test = loader.DeviceDataset(prepared.test_images, prepared.test_labels, "cpu")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(4),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 8 * 8, 10),
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for epoch in range(5):
        for x, y in train.batches(50, shuffle=True, epoch=epoch):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            optimizer.step()
    x, y = next(test.batches(len(test)))
    with torch.no_grad():
        accuracy = (net(x).argmax(1) == y).float().mean().item()
    assert accuracy > 0.8


def test_cli_synthetic_errors_are_one_line(capsys: pytest.CaptureFixture) -> None:
    """--params holds exactly the rule's config slice: a value that is not an integer is refused,
    naming it."""
    text_seed = json.dumps({"seed": "1"})
    assert cli.main(["synthetic-archive", "--params", text_seed, "--out", "x"]) == 2
    assert "seed must be an integer, got '1'" in capsys.readouterr().err
