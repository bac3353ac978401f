"""Turn the CIFAR-10 archive into one ``.npz``, safely: ``python -m trainact prepare``.

:func:`prepare` reads the pickled batches straight out of the tar archive (nothing is extracted
to disk) after checking every member (no absolute paths, ``..``, links, devices or fifos), with
an unpickler that admits only numpy's array reconstruction; it checks shapes and labels,
optionally takes a deterministic per-class subset (:func:`per_class_subset`) and holds out a
validation split from the training images (:func:`hold_out_per_class`), and writes one
``.npz`` with the keys of :data:`trainact.data.cifar.PREPARED_KEYS` (and, with a validation split,
:data:`trainact.data.cifar.VALIDATION_KEYS`), read back by :func:`trainact.data.cifar.load_prepared`. The
paper trains on CIFAR-10 "without any pre-processing" (Section 4): the pixels are stored as they
are in the archive.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from trainact.data.archive import batch_arrays, read_class_names, read_members, unpickle_member
from trainact.data.cifar import (
    CLASS_NAMES,
    META,
    NUM_CLASSES,
    TEST_BATCH,
    TRAIN_BATCHES,
    VALIDATION_KEYS,
    load_prepared,
)
from trainact.files import atomic_write

log = logging.getLogger(__name__)

TRAIN_STREAM, TEST_STREAM, VALIDATION_STREAM = 0, 1, 2
"""Streams of ``numpy.random.default_rng([subset_seed, stream])``: the training subset, the test
subset and the validation split each draw from a generator of their own, so no choice depends on
another's draws or on whether another is made at all."""


def per_class_subset(
    labels: np.ndarray,
    per_class: int,
    seed: int,
    stream: int,
    class_names: tuple[str, ...] | list[str] = CLASS_NAMES,
) -> np.ndarray:
    """Indices of the first ``per_class`` images of each class in a seeded permutation.

    The permutation comes from ``numpy.random.default_rng([seed, stream])`` (train, test and
    validation use different streams, :data:`TRAIN_STREAM` etc., so no split's choice depends on
    another's). The indices are returned sorted, so the subset keeps the archive's order.

    Raises:
        ValueError: ``per_class`` is not positive or a class has fewer images.
    """
    if per_class < 1:
        raise ValueError(f"images per class must be a positive integer, got {per_class}")
    order = np.random.default_rng([seed, stream]).permutation(len(labels))
    chosen = []
    for label in range(NUM_CLASSES):
        of_class = order[labels[order] == label]
        if len(of_class) < per_class:
            raise ValueError(
                f"class {label} ({class_names[label]}) has only {len(of_class)} images, "
                f"cannot take {per_class} per class"
            )
        chosen.append(of_class[:per_class])
    return np.sort(np.concatenate(chosen))


def hold_out_per_class(
    labels: np.ndarray,
    per_class: int,
    seed: int,
    class_names: tuple[str, ...] | list[str] = CLASS_NAMES,
) -> tuple[np.ndarray, np.ndarray]:
    """Split training images into ``(kept, held_out)``, ``per_class`` images of each class held out.

    ``labels`` int ``(N,)`` are the training labels (after any subset); both results are sorted
    index arrays into them, disjoint and together ``0..N-1``: ``kept`` ``(N - 10 * per_class,)``,
    ``held_out`` ``(10 * per_class,)``. The held-out images are :func:`per_class_subset` of
    ``labels`` on :data:`VALIDATION_STREAM`, a generator of their own: the choice draws nothing
    from the training subset's stream, so the subset is the same with or without a validation
    split, and the held-out images are not merely the subset's first draws of each class.

    Raises:
        ValueError: ``per_class`` is not positive, or not less than the images of some class (every
            class keeps at least one image to train on); the message names the value.
    """
    if per_class < 1:
        raise ValueError(f"validation_per_class must be a positive integer, got {per_class}")
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    for label, count in enumerate(counts):
        if per_class >= count:
            raise ValueError(
                f"validation_per_class = {per_class} leaves no training image of class {label} "
                f"({class_names[label]}), which has {count}; it must be less than {counts.min()}"
            )
    held_out = per_class_subset(labels, per_class, seed, VALIDATION_STREAM, class_names)
    kept = np.setdiff1d(np.arange(len(labels)), held_out, assume_unique=True)
    return kept, held_out


PREPARE_DEFAULTS = {
    "train_per_class": None,
    "test_per_class": None,
    "validation_per_class": None,
    "subset_seed": 0,
}
"""``prepare --params`` keys (the config's ``dataset`` keys of the same names) and defaults:
every image of both splits, no validation split, subset seed 0; the one home of
:func:`prepare`'s defaults."""


def prepare(
    archive: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    train_per_class: int | None = PREPARE_DEFAULTS["train_per_class"],
    test_per_class: int | None = PREPARE_DEFAULTS["test_per_class"],
    validation_per_class: int | None = PREPARE_DEFAULTS["validation_per_class"],
    seed: int = PREPARE_DEFAULTS["subset_seed"],
    progress: bool = True,
) -> Path:
    """Turn a ``cifar-10-python.tar.gz`` into one ``.npz`` and return its path.

    Every member is checked first (no absolute paths, no ``..``, no links, devices or fifos;
    :class:`~trainact.data.archive.ArchiveError` names the member) while the batches are read into
    memory in one pass over the tar stream, never extracted to disk; only then are they unpickled
    with :class:`RestrictedUnpickler`. The five training batches are concatenated in order. With
    ``train_per_class``/``test_per_class`` only that many images of each class are kept (see
    :func:`per_class_subset`). With ``validation_per_class`` that many images of each class are
    then held out from the (possibly subset) training images (:func:`hold_out_per_class`) and the
    training set keeps the rest. All three choices are seeded by ``seed``, each on its own stream
    (:data:`TRAIN_STREAM` etc.).

    The ``.npz`` (uncompressed, written atomically) holds ``train_images``/``test_images``
    (uint8 ``(N, 3, 32, 32)``), ``train_labels``/``test_labels`` (int64), ``class_names``
    (str array) and ``source_md5`` (md5 of ``archive``); with a validation split also
    ``validation_images``/``validation_labels`` (``(10 * validation_per_class, ...)``; without
    one the file is what it was before the split existed).
    """
    archive, out = Path(archive), Path(out)
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if not archive.is_file():
        raise FileNotFoundError(f"archive not found: {archive}")
    class_names, train, test, source_md5 = _read_archive(archive, progress)
    if train_per_class is not None:
        train = _take_subset(train, train_per_class, seed, TRAIN_STREAM, "train", class_names)
    if test_per_class is not None:
        test = _take_subset(test, test_per_class, seed, TEST_STREAM, "test", class_names)
    validation: dict[str, np.ndarray] = {}  # VALIDATION_KEYS -> arrays; empty: no split
    if validation_per_class is not None:
        train, validation = _split_validation(train, validation_per_class, seed, class_names)
    arrays = {
        "train_images": np.ascontiguousarray(train[0]),
        "train_labels": train[1],
        "test_images": np.ascontiguousarray(test[0]),
        "test_labels": test[1],
        "class_names": np.array(class_names, dtype=str),
        "source_md5": np.array(source_md5, dtype=str),
        **validation,
    }
    _write_npz(out, arrays)
    log.info(
        "prepared %s: train %d, validation %d, test %d images",
        out, len(train[1]), len(validation.get("validation_labels", ())), len(test[1]),
    )  # fmt: skip
    return out


_Split = tuple[np.ndarray, np.ndarray]
"""``(images uint8 (N, 3, 32, 32), labels int64 (N,))`` of one split."""


def _read_archive(archive: Path, progress: bool) -> tuple[list[str], _Split, _Split, str]:
    """Read, check and unpickle the batches: ``(class_names, train, test, source_md5)``.

    The five training batches are concatenated in order; each batch is unpickled only after
    every member has passed :func:`_check_member_safe`, one at a time, dropping its raw bytes.
    """
    raw, source_md5 = read_members(archive, (*TRAIN_BATCHES, TEST_BATCH, META), progress)

    def batch(name: str) -> dict[str, Any]:  # unpickle one at a time, dropping its raw bytes
        return unpickle_member(raw.pop(name), f"{archive}:{name}")

    class_names = read_class_names(batch(META), f"{archive}:{META}")
    train = [batch_arrays(batch(name), f"{archive}:{name}") for name in TRAIN_BATCHES]
    train_images = np.concatenate([images for images, _ in train])
    train_labels = np.concatenate([labels for _, labels in train])
    del train
    test = batch_arrays(batch(TEST_BATCH), f"{archive}:{TEST_BATCH}")
    return class_names, (train_images, train_labels), test, source_md5


def _take_subset(
    split: _Split, per_class: int, seed: int, stream: int, name: str, class_names: list[str]
) -> _Split:
    """The :func:`per_class_subset` of ``split`` (errors name the split)."""
    images, labels = split
    keep = _subset_or_error(labels, per_class, seed, stream, name, class_names)
    return images[keep], labels[keep]


def _split_validation(
    train: _Split, per_class: int, seed: int, class_names: list[str]
) -> tuple[_Split, dict[str, np.ndarray]]:
    """Hold ``per_class`` images of each class out of ``train`` (:func:`hold_out_per_class`).

    Returns ``(kept, validation)``: the training split that remains and the held-out arrays
    under :data:`VALIDATION_KEYS`.
    """
    images, labels = train
    try:
        kept, held_out = hold_out_per_class(labels, per_class, seed, class_names)
    except ValueError as exc:
        raise ValueError(f"validation split: {exc}") from exc
    held_out_arrays = (np.ascontiguousarray(images[held_out]), labels[held_out])
    validation = dict(zip(VALIDATION_KEYS, held_out_arrays))
    return (images[kept], labels[kept]), validation


def _write_npz(out: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``out`` as an uncompressed ``.npz``, atomically."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a handle: given a path, np.savez appends ".npz"
            np.savez(handle, **arrays)

    # The arrays' bytes (the zip's headers add a few kB): checked against the free space first.
    atomic_write(out, write, size=sum(array.nbytes for array in arrays.values()))


def _subset_or_error(
    labels: np.ndarray, per_class: int, seed: int, stream: int, split: str, names: list[str]
) -> np.ndarray:
    try:
        return per_class_subset(labels, per_class, seed, stream, names)
    except ValueError as exc:
        raise ValueError(f"{split} split: {exc}") from exc


# --------------------------------------------------------------------------------------------
# CLI


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``prepare`` to the ``trainact`` CLI."""
    parser = subparsers.add_parser(
        "prepare",
        help="turn the archive into one .npz",
        description="Read the CIFAR-10 batches from the archive (safely, without extracting) "
        "and write the prepared .npz, optionally a per-class subset.",
    )
    parser.add_argument("--archive", required=True, type=Path)
    parser.add_argument(
        "--params",
        default="{}",
        help='JSON: {"train_per_class": N or null, "test_per_class": N or null, '
        '"validation_per_class": N or null, "subset_seed": N} (null per class: every image of '
        "the split; validation_per_class: N images of each class held out from the training "
        "images, null: none; default seed 0)",
    )
    parser.add_argument("--out", required=True, type=Path, help=".npz path to write")
    parser.set_defaults(func=_cmd_prepare)


def _cmd_prepare(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError, parse_params

    params = parse_params(args.params, PREPARE_DEFAULTS)
    settings = {**PREPARE_DEFAULTS, **params}
    for key, value in settings.items():
        nullable = key != "subset_seed"
        if not (isinstance(value, int) and not isinstance(value, bool) or nullable and value is None):
            raise CLIError(f"--params {key} must be an integer, got {value!r}")
    try:
        out = prepare(
            args.archive,
            args.out,
            train_per_class=settings["train_per_class"],
            test_per_class=settings["test_per_class"],
            validation_per_class=settings["validation_per_class"],
            seed=settings["subset_seed"],
        )
        data = load_prepared(out)
    except ValueError as exc:  # an OSError is the CLI's to describe (trainact.files)
        raise CLIError(str(exc)) from exc
    validation = f"validation {len(data.validation_labels)}, " if data.has_validation else ""
    print(
        f"{out}: train {len(data.train_labels)}, {validation}test {len(data.test_labels)} images, "
        f"{len(data.class_names)} classes ({', '.join(data.class_names)}), "
        f"source md5 {data.source_md5}"
    )
    return 0
