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
