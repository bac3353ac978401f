"""The facts of CIFAR-10's python archive and of the ``.npz`` that ``trainact prepare`` writes.

Every step of the data pipeline agrees on these: the official URL and md5 (which the config's
``dataset`` section and its schema default repeat), the class names in label order, the image
shape, the archive's member names and the prepared file's keys. They live here, apart from the
code that downloads, reads, builds or serves the data, so that the training, autoencoder and PSO
jobs, which need only :func:`load_prepared` and the shapes, do not rerun when the download or
preparation code changes (the workflow hashes every module a command imports). Only numpy is
imported.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainact.errors import UserError

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
"""The official CIFAR-10 python archive."""
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
"""md5 of :data:`OFFICIAL_URL`, as published on https://www.cs.toronto.edu/~kriz/cifar.html."""

CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
"""CIFAR-10 class names, in label order."""
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SHAPE = (3, 32, 32)
PIXELS_PER_IMAGE = 3 * 32 * 32

ARCHIVE_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"{ARCHIVE_DIR}/data_batch_{i}" for i in range(1, 6))
TEST_BATCH = f"{ARCHIVE_DIR}/test_batch"
META = f"{ARCHIVE_DIR}/batches.meta"
"""The members that hold data: five training batches, the test batch, the class names."""

PREPARED_KEYS = (
    "train_images",
    "train_labels",
    "test_images",
    "test_labels",
    "class_names",
    "source_md5",
)
"""Arrays of a prepared ``.npz``, in the order :class:`PreparedData` lists them."""
VALIDATION_KEYS = ("validation_images", "validation_labels")
"""Arrays of the validation split held out from the training images, in a prepared ``.npz``
only when ``dataset.validation_per_class`` is set (files without them load with ``None``)."""


@dataclass
class PreparedData:
    """The arrays of a prepared ``.npz`` (see :func:`trainact.data.prepare.prepare`).

    Images are uint8 ``(N, 3, 32, 32)`` (channel planes R, G, B), labels int64 ``(N,)`` in
    ``0..9``, ``class_names`` the names of labels ``0..9``, ``source_md5`` the md5 of the archive
    the data came from. ``validation_images`` ``(V, 3, 32, 32)`` and ``validation_labels``
    ``(V,)`` are the images held out from the training set (``dataset.validation_per_class``),
    on which choices made by measurement are made instead of on the test set; ``None`` when no
    split was held out.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: list[str]
    source_md5: str
    validation_images: np.ndarray | None = None
    validation_labels: np.ndarray | None = None

    @property
    def has_validation(self) -> bool:
        """Whether a validation split was held out from the training images."""
        return self.validation_labels is not None


class PreparedDataError(UserError, ValueError):
    """A prepared ``.npz`` that cannot be used: damaged, or not what ``trainact prepare`` writes.
    The message names the file and, for a damaged one, the fix."""


def damaged_error(path: str | os.PathLike[str], exc: Exception) -> PreparedDataError:
    """The error for a prepared file whose bytes no longer read back (``exc``: zipfile's or
    numpy's complaint), naming the file, the damage and the fix."""
    crc = re.fullmatch(r"Bad CRC-32 for file '(.+)'", str(exc))
    damage = f"CRC error in {crc.group(1)}" if crc else f"{type(exc).__name__}: {exc}"
    return PreparedDataError(f"{path} is damaged ({damage}); delete it and rerun to prepare it again")


def load_prepared(path: str | os.PathLike[str]) -> PreparedData:
    """Read a ``.npz`` written by :func:`trainact.data.prepare.prepare` (no pickle); check its arrays.

    The validation arrays are optional (files written before the split existed, or without it,
    have none): both or neither must be there.

    Raises:
        PreparedDataError: the file is damaged (its bytes do not read back: a CRC error, a broken
            zip or array header; :func:`damaged_error`) or lacks or misshapes an array.
        FileNotFoundError: there is no file.
    """
    path = Path(path)
    try:
        data = _read_prepared(path)
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        if isinstance(exc, PreparedDataError):
            raise
        raise damaged_error(path, exc) from exc
    for split in ("train", "test", "validation") if data.has_validation else ("train", "test"):
        images, labels = getattr(data, f"{split}_images"), getattr(data, f"{split}_labels")
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
            raise PreparedDataError(
                f"{path}: {split}_images must be uint8 (N, 3, 32, 32), got {images.dtype} {images.shape}"
            )
        if labels.dtype != np.int64 or labels.shape != (images.shape[0],):
            raise PreparedDataError(
                f"{path}: {split}_labels must be int64 of shape ({images.shape[0]},), "
                f"got {labels.dtype} {labels.shape}"
            )
    return data


def _read_prepared(path: Path) -> PreparedData:
    """The arrays of ``path``, every one read (and so CRC-checked) here."""
    with np.load(path, allow_pickle=False) as npz:
        missing = [key for key in PREPARED_KEYS if key not in npz.files]
        if missing:
            raise PreparedDataError(f"{path}: not a prepared data file, missing {', '.join(missing)}")
        validation = [key for key in VALIDATION_KEYS if key in npz.files]
        if validation and len(validation) != len(VALIDATION_KEYS):
            absent = [key for key in VALIDATION_KEYS if key not in validation]
            raise PreparedDataError(f"{path}: has {', '.join(validation)} but not {', '.join(absent)}")
        return PreparedData(
            train_images=npz["train_images"],
            train_labels=npz["train_labels"],
            test_images=npz["test_images"],
            test_labels=npz["test_labels"],
            class_names=[str(name) for name in npz["class_names"]],
            source_md5=str(npz["source_md5"]),
            **{key: npz[key] for key in validation},
        )
