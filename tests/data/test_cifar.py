"""Tests of trainact.data.cifar: reading the prepared ``.npz`` back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trainact.data import cifar


def test_load_prepared_without_validation_arrays(tmp_path: Path) -> None:
    """Files written before the split existed load with None; half a split is refused."""
    arrays = {
        "train_images": np.zeros((2, 3, 32, 32), np.uint8),
        "train_labels": np.zeros(2, np.int64),
        "test_images": np.zeros((1, 3, 32, 32), np.uint8),
        "test_labels": np.zeros(1, np.int64),
        "class_names": np.array(cifar.CLASS_NAMES, dtype=str),
        "source_md5": np.array("0" * 32, dtype=str),
    }
    np.savez(tmp_path / "old.npz", **arrays)
    old = cifar.load_prepared(tmp_path / "old.npz")
    assert old.validation_images is None and old.validation_labels is None
    assert not old.has_validation
    np.savez(tmp_path / "half.npz", **arrays, validation_images=arrays["train_images"])
    with pytest.raises(ValueError, match=r"half\.npz: has validation_images but not validation_labels"):
        cifar.load_prepared(tmp_path / "half.npz")
    bad_labels = arrays["train_labels"].astype(np.int32)
    np.savez(tmp_path / "bad.npz", **arrays, validation_images=arrays["train_images"],
             validation_labels=bad_labels)  # fmt: skip
    with pytest.raises(ValueError, match=r"bad\.npz: validation_labels must be int64"):
        cifar.load_prepared(tmp_path / "bad.npz")


def test_load_prepared_names_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, train_images=np.zeros((1, 3, 32, 32), np.uint8))
    with pytest.raises(ValueError, match=r"bad\.npz.*missing train_labels"):
        cifar.load_prepared(path)


def prepared_arrays(train: int = 64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "train_images": rng.integers(0, 256, (train, 3, 32, 32), dtype=np.uint8),
        "train_labels": np.arange(train, dtype=np.int64) % 10,
        "test_images": np.zeros((10, 3, 32, 32), np.uint8),
        "test_labels": np.arange(10, dtype=np.int64),
        "class_names": np.array(cifar.CLASS_NAMES, dtype=str),
        "source_md5": np.array("0" * 32, dtype=str),
    }


def test_flipped_bytes_name_the_file_the_damage_and_the_fix(tmp_path: Path) -> None:
    """64 flipped bytes inside train_images.npy, as the issue found them: a CRC error."""
    path = tmp_path / "results" / "smoke" / "data" / "cifar10.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, **prepared_arrays())
    raw = bytearray(path.read_bytes())
    middle = raw.index(b"train_images.npy") + 10_000
    raw[middle : middle + 64] = bytes(b ^ 0xFF for b in raw[middle : middle + 64])
    path.write_bytes(bytes(raw))
    with pytest.raises(cifar.PreparedDataError) as caught:
        cifar.load_prepared(path)
    assert str(caught.value) == (
        f"{path} is damaged (CRC error in train_images.npy); delete it and rerun to prepare it again"
    )


def test_a_truncated_file_is_damaged_too(tmp_path: Path) -> None:
    path = tmp_path / "cifar10.npz"
    np.savez(path, **prepared_arrays())
    path.write_bytes(path.read_bytes()[:-5000])  # the zip's directory at the end is gone
    with pytest.raises(cifar.PreparedDataError) as caught:
        cifar.load_prepared(path)
    assert str(caught.value).startswith(f"{path} is damaged (")
    assert str(caught.value).endswith("); delete it and rerun to prepare it again")
