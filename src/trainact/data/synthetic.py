"""A reproducible stand-in for the CIFAR-10 archive: ``python -m trainact synthetic-archive``.

:func:`build_synthetic_archive` writes an archive in the official layout (the members of
:mod:`trainact.data.cifar`) with class-specific colours and stripes, for the tests and the smoke
workflow, which then run with no network. Its md5 is a function of its arguments only.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import pickle
import struct
import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from trainact.data.cifar import (
    ARCHIVE_DIR,
    CLASS_NAMES,
    META,
    NUM_CLASSES,
    PIXELS_PER_IMAGE,
    TEST_BATCH,
    TRAIN_BATCHES,
)
from trainact.files import atomic_write

# numpy's array reconstructor, the global a pickled array names: numpy.core.multiarray's in
# numpy 1, numpy._core.multiarray's in numpy 2 (whichever this numpy pickles arrays with).
_reconstruct = np.ndarray.__reduce__(np.empty(0))[0]


# Class-specific look: a mean colour (R, G, B) and a stripe pattern (dx, dy, period): pixel
# (x, y) lies on a bright stripe when (dx*x + dy*y + phase) mod period < period/2.
_SYNTHETIC_COLOURS = (
    (200, 70, 70),
    (70, 200, 70),
    (70, 70, 200),
    (200, 200, 70),
    (200, 70, 200),
    (70, 200, 200),
    (220, 140, 50),
    (130, 70, 190),
    (128, 128, 128),
    (60, 60, 60),
)
_SYNTHETIC_STRIPES = (
    (1, 0, 4),
    (0, 1, 4),
    (1, 1, 4),
    (1, -1, 4),
    (1, 0, 8),
    (0, 1, 8),
    (1, 1, 8),
    (1, -1, 8),
    (2, 1, 6),
    (1, 2, 6),
)
_SYNTHETIC_STRIPE_AMPLITUDE = 40
_SYNTHETIC_NOISE = 24  # uniform integer noise in [-24, 24] per pixel and channel
_SYNTHETIC_COLOUR_JITTER = 16  # uniform integer shift of the mean colour per image


def _synthetic_images(per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` noisy striped images of each class, uint8 (N, 3072), shuffled.

    Integer arithmetic only, so the pixels do not depend on the platform's libm or SIMD.
    """
    ys, xs = np.mgrid[0:32, 0:32].astype(np.int64)
    images, labels = [], []
    for label, (colour, (dx, dy, period)) in enumerate(zip(_SYNTHETIC_COLOURS, _SYNTHETIC_STRIPES)):
        phase = rng.integers(0, period, size=(per_class, 1, 1))
        bright = ((dx * xs + dy * ys + phase) % period) < period // 2  # (n, 32, 32)
        stripes = np.where(bright, _SYNTHETIC_STRIPE_AMPLITUDE, -_SYNTHETIC_STRIPE_AMPLITUDE)
        jitter = rng.integers(
            -_SYNTHETIC_COLOUR_JITTER, _SYNTHETIC_COLOUR_JITTER + 1, size=(per_class, 3, 1, 1)
        )
        noise = rng.integers(-_SYNTHETIC_NOISE, _SYNTHETIC_NOISE + 1, size=(per_class, 3, 32, 32))
        mean = np.asarray(colour, dtype=np.int64).reshape(1, 3, 1, 1)
        pixels = mean + jitter + stripes[:, None, :, :] + noise
        images.append(np.clip(pixels, 0, 255).astype(np.uint8).reshape(per_class, -1))
        labels.append(np.full(per_class, label, dtype=np.int64))
    order = rng.permutation(per_class * NUM_CLASSES)
    return np.concatenate(images)[order], np.concatenate(labels)[order]


class _StablePickler(pickle._Pickler):  # the pure-Python pickler, whose save_global we can steer
    """Protocol-2 pickler that names numpy's ``_reconstruct`` as ``numpy.core.multiarray``.

    numpy 2 would write ``numpy._core.multiarray``, numpy 1 ``numpy.core.multiarray`` (as the
    official archive does); fixing the name keeps the synthetic archive's bytes, hence its md5,
    the same under both. Every numpy since 1.x (and 2.x through its compatibility shim) loads it.
    """

    def save_global(self, obj: Any, name: str | None = None) -> None:
        if obj is _reconstruct:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)


def _stable_pickle(obj: Any) -> bytes:
    buffer = io.BytesIO()
    _StablePickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def _gzip_stored(payload: bytes) -> bytes:
    """A gzip file holding ``payload`` in stored (uncompressed) deflate blocks.

    zlib implementations (zlib, zlib-ng) compress to different bytes; stored blocks are the
    same everywhere, which is what a reproducible md5 needs. Header: no name, mtime 0.
    """
    header = b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + b"\x00\xff"
    blocks = []
    block_size = 0xFFFF
    starts = range(0, len(payload), block_size) if payload else [0]
    for start in starts:
        chunk = payload[start : start + block_size]
        final = start + block_size >= len(payload)
        blocks.append(bytes([int(final)]) + struct.pack("<HH", len(chunk), len(chunk) ^ 0xFFFF))
        blocks.append(chunk)
    trailer = struct.pack("<II", zlib.crc32(payload) & 0xFFFFFFFF, len(payload) & 0xFFFFFFFF)
    return header + b"".join(blocks) + trailer


def _tar_bytes(members: list[tuple[str, bytes | None]]) -> bytes:
    """A ustar archive of ``(name, content)`` (content None: a folder) with fixed metadata."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


SYNTHETIC_DEFAULTS = {"train_per_class": 20, "test_per_class": 10, "seed": 0}
"""``synthetic-archive --params`` keys (the config's ``dataset.synthetic``) and defaults: the
one home of :func:`build_synthetic_archive`'s defaults."""


def build_synthetic_archive(
    dest: str | os.PathLike[str],
    *,
    train_per_class: int = SYNTHETIC_DEFAULTS["train_per_class"],
    test_per_class: int = SYNTHETIC_DEFAULTS["test_per_class"],
    seed: int = SYNTHETIC_DEFAULTS["seed"],
    str_keys: bool = False,
) -> str:
    """Write a small CIFAR-10-shaped archive to ``dest`` and return its md5.

    The layout is the official one: ``cifar-10-batches-py/`` with ``data_batch_1..5`` (the
    training images spread evenly over the five), ``test_batch`` and ``batches.meta``, each a
    protocol-2 pickled dict with bytes keys (``b"batch_label"``, ``b"labels"``, ``b"data"``
    uint8 ``(N, 3072)`` channel planes, ``b"filenames"``; meta ``b"label_names"``,
    ``b"num_cases_per_batch"``, ``b"num_vis"``). ``str_keys=True`` writes str keys and text
    instead, as archives rebuilt with Python 3 (e.g. ``shared/tools/cifar_jpeg_to_python.py``) do.

    Each class has its own mean colour and stripe orientation/period, plus per-image colour
    jitter, stripe phase and pixel noise, so a small CNN learns it quickly. The file is
    byte-for-byte reproducible (integer pixel arithmetic, fixed tar metadata, gzip mtime 0 and
    stored blocks, fixed pickle protocol), so the md5 is a function of the arguments only.
    """
    if train_per_class < 1 or test_per_class < 1:
        raise ValueError(
            f"images per class must be positive, got train {train_per_class}, test {test_per_class}"
        )
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    rng = np.random.default_rng(seed)
    train = _synthetic_images(train_per_class, rng)
    test = _synthetic_images(test_per_class, rng)
    payload = _gzip_stored(_tar_bytes(_archive_members(train, test, str_keys)))
    atomic_write(dest, lambda tmp: tmp.write_bytes(payload))
    return hashlib.md5(payload).hexdigest()


def _archive_members(
    train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], str_keys: bool
) -> list[tuple[str, bytes | None]]:
    """The archive's ``(name, content)`` members: the folder, five training batches, the test
    batch and the meta, each pickled with :func:`_stable_pickle` (see
    :func:`build_synthetic_archive` for their layout)."""
    train_images, train_labels = train
    test_images, test_labels = test

    def text(value: str) -> str | bytes:
        return value if str_keys else value.encode("ascii")

    def batch(label: str, images: np.ndarray, labels: np.ndarray, first: int) -> dict:
        names = [f"synthetic_{CLASS_NAMES[c]}_{first + i:06d}.png" for i, c in enumerate(labels)]
        return {
            text("batch_label"): text(label),
            text("labels"): [int(c) for c in labels],
            text("data"): images,
            text("filenames"): [text(name) for name in names],
        }

    members: list[tuple[str, bytes | None]] = [(ARCHIVE_DIR, None)]
    train_indices = np.array_split(np.arange(len(train_labels)), len(TRAIN_BATCHES))
    for number, (name, indices) in enumerate(zip(TRAIN_BATCHES, train_indices), start=1):
        content = batch(
            f"training batch {number} of 5",
            train_images[indices],
            train_labels[indices],
            int(indices[0]) if len(indices) else 0,
        )
        members.append((name, _stable_pickle(content)))
    test_batch = batch("testing batch 1 of 1", test_images, test_labels, len(train_labels))
    members.append((TEST_BATCH, _stable_pickle(test_batch)))
    meta = {
        text("num_cases_per_batch"): max(len(indices) for indices in train_indices),
        text("label_names"): [text(name) for name in CLASS_NAMES],
        text("num_vis"): PIXELS_PER_IMAGE,
    }
    members.append((META, _stable_pickle(meta)))
    return members


# --------------------------------------------------------------------------------------------
# CLI


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``synthetic-archive`` to the ``trainact`` CLI."""
    parser = subparsers.add_parser(
        "synthetic-archive",
        help="write a small reproducible CIFAR-10-shaped archive",
        description="Write a small, learnable, byte-for-byte reproducible archive in the official "
        "CIFAR-10 layout and print its md5.",
    )
    parser.add_argument(
        "--params",
        default="{}",
        help='JSON: {"train_per_class": N, "test_per_class": N, "seed": N} '
        f"(default {SYNTHETIC_DEFAULTS['train_per_class']}, {SYNTHETIC_DEFAULTS['test_per_class']} "
        f"and {SYNTHETIC_DEFAULTS['seed']})",
    )
    parser.add_argument("--out", required=True, type=Path, help="archive path to write")
    parser.set_defaults(func=_cmd_synthetic_archive)


def _cmd_synthetic_archive(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError, parse_params

    params = parse_params(args.params, SYNTHETIC_DEFAULTS)
    settings = {**SYNTHETIC_DEFAULTS, **params}
    for key, value in settings.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise CLIError(f"--params {key} must be an integer, got {value!r}")
    try:
        md5 = build_synthetic_archive(args.out, **settings)
    except (ValueError, OSError) as exc:
        raise CLIError(str(exc)) from exc
    print(md5)
    return 0
