"""CIFAR-10 data: download, safe preparation, a deterministic synthetic stand-in, a device loader.

The paper trains on CIFAR-10 "without any pre-processing" (Section 4), so the only transform
anywhere in this module is the division of the uint8 pixels by 255 in :class:`DeviceDataset`.

Pipeline (each step is one CLI command and one workflow rule):

1. :func:`download` fetches ``cifar-10-python.tar.gz`` (http(s)://, file:// or a local path),
   resuming a partial ``.part`` file over HTTP Range, verifying the md5 and moving the file
   into place atomically.
2. :func:`prepare` reads the pickled batches straight out of the tar archive (nothing is
   extracted to disk) with an unpickler that admits only numpy's array reconstruction, checks
   shapes and labels, optionally takes a deterministic per-class subset, and writes one ``.npz``
   (keys ``train_images``, ``train_labels``, ``test_images``, ``test_labels``, ``class_names``,
   ``source_md5``), read back by :func:`load_prepared`.
3. :class:`DeviceDataset` keeps a whole split as one uint8 tensor on the training device and
   yields float batches whose order depends only on ``(seed, epoch)``, so a resumed run sees
   exactly the batches an uninterrupted run would have seen.

:func:`build_synthetic_archive` writes a small archive in the official layout with class-specific
colours and stripes, byte-for-byte reproducible, for tests and the smoke workflow.
"""

from __future__ import annotations

import argparse
import codecs
import gzip
import hashlib
import io
import logging
import os
import pickle
import re
import struct
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import numpy as np
import torch
from tqdm import tqdm

from trainact import __version__
from trainact.files import atomic_write

log = logging.getLogger(__name__)

DEFAULT_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
"""The official CIFAR-10 python archive."""
DEFAULT_MD5 = "c58f30108f718f92721af3b95e74349a"
"""md5 of :data:`DEFAULT_URL`, as published on https://www.cs.toronto.edu/~kriz/cifar.html."""

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

PREPARED_KEYS = (
    "train_images",
    "train_labels",
    "test_images",
    "test_labels",
    "class_names",
    "source_md5",
)

_CHUNK = 1 << 20
_HTTP_TIMEOUT_S = 60
_MD5_PATTERN = re.compile(r"[0-9a-f]{32}")


class ChecksumError(ValueError):
    """A downloaded file's md5 differs from the expected one (the file has been deleted)."""


class DownloadError(OSError):
    """The source could not be fetched (unreachable host, HTTP error, missing local file)."""


class ArchiveError(ValueError):
    """The archive is unsafe, incomplete or holds data that is not CIFAR-10 shaped."""


class ForbiddenGlobalError(pickle.UnpicklingError):
    """A pickle asked for a global that a CIFAR-10 batch never contains."""


# --------------------------------------------------------------------------------------------
# helpers


def file_md5(path: str | os.PathLike[str]) -> str:
    """md5 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _normalise_md5(md5: str) -> str:
    value = md5.strip().lower()
    if not _MD5_PATTERN.fullmatch(value):
        raise ValueError(f"not an md5 hex digest (32 hex digits): {md5!r}")
    return value


# --------------------------------------------------------------------------------------------
# download


def download(url: str, md5: str, dest: str | os.PathLike[str], *, progress: bool = True) -> Path:
    """Fetch ``url`` to ``dest``, verify its md5 and return ``dest``.

    ``url`` is an ``http://`` or ``https://`` URL, a ``file://`` URL with an absolute path, or a
    plain local path. The data goes to ``dest.part`` first (with a tqdm bar on stderr). Over
    HTTP an existing ``.part`` is resumed with a ``Range`` request; a server that answers 200
    instead of 206 is followed by a clean restart. Only a file with the right md5 is moved to
    ``dest`` (atomically, with ``os.replace``). Nothing is fetched when ``dest`` already has the
    right md5.

    Raises:
        ChecksumError: the fetched file has another md5; neither ``dest`` nor ``.part`` remains.
        DownloadError: the URL cannot be read (the ``.part`` of an interrupted transfer is kept
            so that the next call resumes it).
        ValueError: ``md5`` is not an md5 digest or the URL scheme is not supported.
    """
    expected = _normalise_md5(md5)
    local_source = _local_source(url)
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    if dest.exists():
        actual = file_md5(dest)
        if actual == expected:
            log.info("%s already present with md5 %s", dest, expected)
            return dest
        if local_source is not None and local_source.resolve() == dest.resolve():
            raise ChecksumError(f"md5 mismatch for {url}: expected {expected}, got {actual}")
        log.warning("%s exists with a wrong md5; fetching it again from %s", dest, url)
    dest.parent.mkdir(parents=True, exist_ok=True)

    if part.exists() and file_md5(part) == expected:
        log.info("%s is already complete; not fetching again", part)
    else:
        if local_source is not None:
            _copy_local(url, local_source, part, progress)
        else:
            _fetch_http(url, part, progress)

    actual = file_md5(part)
    if actual != expected:
        part.unlink(missing_ok=True)
        dest.unlink(missing_ok=True)
        raise ChecksumError(f"md5 mismatch for {url}: expected {expected}, got {actual}")
    os.replace(part, dest)
    log.info("downloaded %s to %s (md5 %s)", url, dest, actual)
    return dest


def _local_source(url: str) -> Path | None:
    """The local path a ``file://`` URL or plain path names; None for http(s) URLs."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return None
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(
                f"file URL must name a local absolute path (file:///path), got host "
                f"{parts.netloc!r} in {url}"
            )
        return Path(urllib.request.url2pathname(parts.path))
    if scheme == "" or len(scheme) == 1:  # a plain path (a one-letter "scheme" is a drive)
        return Path(url)
    raise ValueError(f"unsupported URL scheme {scheme!r} in {url} (use http, https or file)")


def _progress_bar(total: int | None, initial: int, name: str, enabled: bool) -> tqdm:
    return tqdm(
        total=total,
        initial=initial,
        desc=name,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=not enabled,
        leave=False,
    )


def _copy_local(url: str, source: Path, part: Path, progress: bool) -> None:
    """Copy a local file into ``part`` (from scratch: a local copy is cheap to redo)."""
    try:
        total = source.stat().st_size
        with (
            open(source, "rb") as src,
            open(part, "wb") as out,
            _progress_bar(total, 0, part.name, progress) as bar,
        ):
            while chunk := src.read(_CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
    except OSError as exc:
        raise DownloadError(f"cannot read {url}: {exc.strerror or exc} ({source})") from exc


def _fetch_http(url: str, part: Path, progress: bool) -> None:
    """Download ``url`` into ``part``, resuming from the bytes already in ``part``."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": f"trainact/{__version__}"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=_HTTP_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # The partial file is not a prefix of what the server has: start again.
            log.warning("server refused to resume %s at byte %d; restarting", url, offset)
            part.unlink()
            _fetch_http(url, part, progress)
            return
        raise DownloadError(f"HTTP {exc.code} {exc.reason} fetching {url}") from exc
    except (urllib.error.URLError, OSError, HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"cannot reach {url}: {reason}") from exc

    with response:
        resumed = offset > 0 and response.status == 206
        if resumed:
            start = _content_range_start(response.headers.get("Content-Range"))
            if start != offset:
                log.warning("server resumed %s at byte %s, not %d; restarting", url, start, offset)
                response.close()
                part.unlink()
                _fetch_http(url, part, progress)
                return
        elif offset:
            log.info("server ignored the Range request for %s; restarting from byte 0", url)
            offset = 0
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header is not None else None
        total = offset + length if length is not None else None
        received = 0
        try:
            with (
                open(part, "ab" if resumed else "wb") as out,
                _progress_bar(total, offset, part.name, progress) as bar,
            ):
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except (OSError, HTTPException) as exc:
            raise DownloadError(
                f"transfer of {url} broke off after {offset + received} bytes ({exc}); "
                f"run again to resume from {part}"
            ) from exc
    if length is not None and received < length:
        raise DownloadError(
            f"connection to {url} closed after {offset + received} of {total} bytes; "
            f"run again to resume from {part}"
        )


def _content_range_start(header: str | None) -> int | None:
    """First byte position of a ``Content-Range: bytes START-END/TOTAL`` header."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", header or "")
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------------------------------
# restricted unpickling


def _numpy_pickle_helpers() -> tuple[Any, Any, Any]:
    """numpy's ``_reconstruct``, ``scalar`` and ``_frombuffer`` (numpy 2 moved them to _core)."""
    try:
        from numpy._core.multiarray import _reconstruct, scalar
        from numpy._core.numeric import _frombuffer
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
        from numpy.core.numeric import _frombuffer
    return _reconstruct, scalar, _frombuffer


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` limited to latin-1, the only use protocol-2 pickles make of it.

    Python 3 pickles ``bytes`` at protocol 2 as ``_codecs.encode(text, "latin1")``; any other
    codec (zlib, bz2, ...) would let a pickle run arbitrary decoders, so it is refused.
    """
    if encoding.lower().replace("_", "-") not in ("latin1", "latin-1"):
        raise ForbiddenGlobalError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return codecs.encode(text, "latin1", errors)


_reconstruct, _scalar, _frombuffer = _numpy_pickle_helpers()
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,  # protocol 5 pickles of arrays
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can build only what a CIFAR-10 batch holds.

    Dicts, lists, strings, bytes and ints need no globals. Of the globals, it admits numpy's
    array and scalar reconstruction (``numpy[._]core.multiarray._reconstruct``/``scalar``,
    ``numpy[._]core.numeric._frombuffer``, ``numpy.ndarray``, ``numpy.dtype``) and
    ``_codecs.encode`` for latin-1 (how Python 3 writes bytes at protocol 2). Anything else,
    e.g. ``os.system``, raises :class:`ForbiddenGlobalError` naming ``module.name`` before it is
    imported, so a hostile archive cannot run code.
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise ForbiddenGlobalError(
                f"forbidden global {module}.{name} in pickle (a CIFAR-10 batch holds only "
                f"numpy arrays, lists, strings and ints)"
            ) from None


def restricted_loads(data: bytes) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` and ``encoding="bytes"``."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()


# --------------------------------------------------------------------------------------------
# prepare


@dataclass
class PreparedData:
    """The arrays of a prepared ``.npz`` (see :func:`prepare`).

    Images are uint8 ``(N, 3, 32, 32)`` (channel planes R, G, B), labels int64 ``(N,)`` in
    ``0..9``, ``class_names`` the names of labels ``0..9``, ``source_md5`` the md5 of the archive
    the data came from.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: list[str]
    source_md5: str


def _check_member_safe(member: tarfile.TarInfo) -> None:
    """Refuse members a careless extractor would turn into writes outside its folder."""
    name = member.name
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or re.match(r"[A-Za-z]:", name):
        raise ArchiveError(f"unsafe archive member {name!r}: absolute path")
    if ".." in path.parts:
        raise ArchiveError(f"unsafe archive member {name!r}: path contains '..'")
    if member.issym() or member.islnk():
        raise ArchiveError(
            f"unsafe archive member {name!r}: link to {member.linkname!r} (links are not allowed)"
        )
    if not (member.isfile() or member.isdir()):
        raise ArchiveError(
            f"unsafe archive member {name!r}: not a regular file or folder "
            f"(device, fifo or other special file)"
        )


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class _HashingReader(io.RawIOBase):
    """A read-only file that feeds everything read through it to an md5 and a progress bar."""

    def __init__(self, stream: BinaryIO, bar: tqdm) -> None:
        self.stream, self.bar, self.md5 = stream, bar, hashlib.md5()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self.stream.readinto(buffer)
        self.md5.update(memoryview(buffer)[:count])
        self.bar.update(count)
        return count

    def drain(self) -> str:
        """Read what is left (tar padding, gzip trailer) and return the md5 of the whole file."""
        while self.read(_CHUNK):
            pass
        return self.md5.hexdigest()


def _read_members(
    archive: Path, wanted: tuple[str, ...], progress: bool
) -> tuple[dict[str, bytes], str]:
    """Check every member of ``archive`` and return the raw bytes of ``wanted`` and the md5.

    One sequential pass (tar stream mode): compressed archives are decompressed once, and the
    md5 is computed from the same reads. Nothing is unpickled here, so no member's content is
    interpreted before all members have passed :func:`_check_member_safe`.
    """
    raw: dict[str, bytes] = {}
    size = archive.stat().st_size
    with (
        open(archive, "rb") as file,
        tqdm(
            total=size,
            desc=f"reading {archive.name}",
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=sys.stderr,
            disable=not progress,
            leave=False,
        ) as bar,
    ):
        reader = _HashingReader(file, bar)
        try:
            with tarfile.open(fileobj=reader, mode="r|*") as tar:
                for member in tar:
                    _check_member_safe(member)
                    name = member.name[2:] if member.name.startswith("./") else member.name
                    if name in wanted and member.isfile():
                        if name in raw:
                            raise ArchiveError(f"{archive}: member {name!r} appears twice")
                        raw[name] = tar.extractfile(member).read()
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise ArchiveError(f"{archive}: not a readable tar archive ({exc})") from exc
        md5 = reader.drain()
    missing = [name for name in wanted if name not in raw]
    if missing:
        raise ArchiveError(f"{archive}: missing member(s) {', '.join(missing)}")
    return raw, md5


def _unpickle_member(content: bytes, where: str) -> dict[str, Any]:
    """Unpickle one batch and return it with str keys (official pickles have bytes keys)."""
    try:
        obj = restricted_loads(content)
    except Exception as exc:  # any decoding failure of this member is one error naming it
        raise ArchiveError(f"{where}: cannot unpickle: {exc}") from exc
    if not isinstance(obj, dict):
        raise ArchiveError(f"{where}: expected a pickled dict, got {type(obj).__name__}")
    return {_text(key): value for key, value in obj.items()}


def _batch_arrays(batch: dict[str, Any], where: str) -> tuple[np.ndarray, np.ndarray]:
    """Check a batch dict and return ``(images uint8 (N,3,32,32), labels int64 (N,))``."""
    for key in ("data", "labels"):
        if key not in batch:
            raise ArchiveError(f"{where}: missing key {key!r} (has {sorted(batch)})")
    data = batch["data"]
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != PIXELS_PER_IMAGE
    ):
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ArchiveError(f"{where}: 'data' must be a uint8 array of shape (N, 3072), got {got}")
    labels = np.asarray(batch["labels"])
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise ArchiveError(
            f"{where}: 'labels' must hold one label per image ({data.shape[0]}), "
            f"got shape {labels.shape}"
        )
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ArchiveError(f"{where}: 'labels' must be integers, got {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ArchiveError(
            f"{where}: labels must lie in 0..{NUM_CLASSES - 1}, got {labels.min()}..{labels.max()}"
        )
    return data.reshape(-1, *IMAGE_SHAPE), labels.astype(np.int64)


def _class_names(meta: dict[str, Any], where: str) -> list[str]:
    names = meta.get("label_names")
    if not isinstance(names, (list, tuple)) or len(names) != NUM_CLASSES:
        raise ArchiveError(f"{where}: 'label_names' must list {NUM_CLASSES} names, got {names!r}")
    return [_text(name) for name in names]


def per_class_subset(
    labels: np.ndarray,
    per_class: int,
    seed: int,
    stream: int,
    class_names: tuple[str, ...] | list[str] = CLASS_NAMES,
) -> np.ndarray:
    """Indices of the first ``per_class`` images of each class in a seeded permutation.

    The permutation comes from ``numpy.random.default_rng([seed, stream])`` (train and test use
    different streams, so one split's subset does not depend on the other's). The indices are
    returned sorted, so the subset keeps the archive's order.

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


def prepare(
    archive: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    train_per_class: int | None = None,
    test_per_class: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Turn a ``cifar-10-python.tar.gz`` into one ``.npz`` and return its path.

    Every member is checked first (no absolute paths, no ``..``, no links, devices or fifos;
    :class:`ArchiveError` names the member) while the batches are read into memory in one pass
    over the tar stream, never extracted to disk; only then are they unpickled with
    :class:`RestrictedUnpickler`. The five training batches are
    concatenated in order. With ``train_per_class``/``test_per_class`` only that many images of
    each class are kept (see :func:`per_class_subset`; stream 0 is train, 1 is test).

    The ``.npz`` (uncompressed, written atomically) holds ``train_images``/``test_images``
    (uint8 ``(N, 3, 32, 32)``), ``train_labels``/``test_labels`` (int64), ``class_names``
    (str array) and ``source_md5`` (md5 of ``archive``).
    """
    archive, out = Path(archive), Path(out)
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if not archive.is_file():
        raise FileNotFoundError(f"archive not found: {archive}")
    raw, source_md5 = _read_members(archive, (*TRAIN_BATCHES, TEST_BATCH, META), progress)

    def batch(name: str) -> dict[str, Any]:  # unpickle one at a time, dropping its raw bytes
        return _unpickle_member(raw.pop(name), f"{archive}:{name}")

    class_names = _class_names(batch(META), f"{archive}:{META}")
    train = [_batch_arrays(batch(name), f"{archive}:{name}") for name in TRAIN_BATCHES]
    train_images = np.concatenate([images for images, _ in train])
    train_labels = np.concatenate([labels for _, labels in train])
    del train
    test_images, test_labels = _batch_arrays(batch(TEST_BATCH), f"{archive}:{TEST_BATCH}")

    if train_per_class is not None:
        keep = _subset_or_error(train_labels, train_per_class, seed, 0, "train", class_names)
        train_images, train_labels = train_images[keep], train_labels[keep]
    if test_per_class is not None:
        keep = _subset_or_error(test_labels, test_per_class, seed, 1, "test", class_names)
        test_images, test_labels = test_images[keep], test_labels[keep]

    arrays = {
        "train_images": np.ascontiguousarray(train_images),
        "train_labels": train_labels,
        "test_images": np.ascontiguousarray(test_images),
        "test_labels": test_labels,
        "class_names": np.array(class_names, dtype=str),
        "source_md5": np.array(source_md5, dtype=str),
    }

    def write_npz(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a handle: given a path, np.savez appends ".npz"
            np.savez(handle, **arrays)

    atomic_write(out, write_npz)
    log.info("prepared %s: train %d, test %d images", out, len(train_labels), len(test_labels))
    return out


def _subset_or_error(
    labels: np.ndarray, per_class: int, seed: int, stream: int, split: str, names: list[str]
) -> np.ndarray:
    try:
        return per_class_subset(labels, per_class, seed, stream, names)
    except ValueError as exc:
        raise ValueError(f"{split} split: {exc}") from exc


def load_prepared(path: str | os.PathLike[str]) -> PreparedData:
    """Read a ``.npz`` written by :func:`prepare` (without pickle) and check its arrays."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as npz:
        missing = [key for key in PREPARED_KEYS if key not in npz.files]
        if missing:
            raise ValueError(f"{path}: not a prepared data file, missing {', '.join(missing)}")
        data = PreparedData(
            train_images=npz["train_images"],
            train_labels=npz["train_labels"],
            test_images=npz["test_images"],
            test_labels=npz["test_labels"],
            class_names=[str(name) for name in npz["class_names"]],
            source_md5=str(npz["source_md5"]),
        )
    for split in ("train", "test"):
        images, labels = getattr(data, f"{split}_images"), getattr(data, f"{split}_labels")
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
            raise ValueError(
                f"{path}: {split}_images must be uint8 (N, 3, 32, 32), "
                f"got {images.dtype} {images.shape}"
            )
        if labels.dtype != np.int64 or labels.shape != (images.shape[0],):
            raise ValueError(
                f"{path}: {split}_labels must be int64 of shape ({images.shape[0]},), "
                f"got {labels.dtype} {labels.shape}"
            )
    return data


# --------------------------------------------------------------------------------------------
# synthetic archive

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


def build_synthetic_archive(
    dest: str | os.PathLike[str],
    *,
    train_per_class: int = 20,
    test_per_class: int = 10,
    seed: int = 0,
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
            f"images per class must be positive, got train {train_per_class}, "
            f"test {test_per_class}"
        )
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    rng = np.random.default_rng(seed)
    train_images, train_labels = _synthetic_images(train_per_class, rng)
    test_images, test_labels = _synthetic_images(test_per_class, rng)

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
    test = batch("testing batch 1 of 1", test_images, test_labels, len(train_labels))
    members.append((TEST_BATCH, _stable_pickle(test)))
    meta = {
        text("num_cases_per_batch"): max(len(indices) for indices in train_indices),
        text("label_names"): [text(name) for name in CLASS_NAMES],
        text("num_vis"): PIXELS_PER_IMAGE,
    }
    members.append((META, _stable_pickle(meta)))

    payload = _gzip_stored(_tar_bytes(members))
    atomic_write(dest, lambda tmp: tmp.write_bytes(payload))
    return hashlib.md5(payload).hexdigest()


# --------------------------------------------------------------------------------------------
# device loader


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
            raise ValueError(
                f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}"
            )
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
        count = self.num_batches(batch_size, drop_last)
        order = self.permutation(seed, epoch).to(self.device) if shuffle else None
        return self._iterate(batch_size, count, order)

    def _iterate(
        self, batch_size: int, count: int, order: torch.Tensor | None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, count * batch_size, batch_size):
            stop = min(start + batch_size, len(self))
            if order is None:
                images, labels = self.images[start:stop], self.labels[start:stop]
            else:
                index = order[start:stop]
                images, labels = self.images.index_select(0, index), self.labels.index_select(
                    0, index
                )
            yield images.to(torch.float32).div_(255.0), labels


def _check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch size must be a positive integer, got {batch_size!r}")


# --------------------------------------------------------------------------------------------
# CLI


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``download``, ``prepare`` and ``synthetic-archive`` to the ``trainact`` CLI."""
    download_parser = subparsers.add_parser(
        "download",
        help="fetch the CIFAR-10 archive and verify its md5",
        description="Fetch a CIFAR-10 python archive (http(s)://, file:// or a local path), "
        "resuming a partial download, and verify its md5.",
    )
    download_parser.add_argument("--url", default=DEFAULT_URL, help="default: %(default)s")
    download_parser.add_argument(
        "--md5", help=f"expected md5 (default for the official URL: {DEFAULT_MD5})"
    )
    download_parser.add_argument("--out", required=True, type=Path, help="archive path to write")
    download_parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    download_parser.set_defaults(func=_cli_download)

    prepare_parser = subparsers.add_parser(
        "prepare",
        help="turn the archive into one .npz",
        description="Read the CIFAR-10 batches from the archive (safely, without extracting) "
        "and write the prepared .npz, optionally a per-class subset.",
    )
    prepare_parser.add_argument("--archive", required=True, type=Path)
    prepare_parser.add_argument("--out", required=True, type=Path, help=".npz path to write")
    prepare_parser.add_argument("--train-per-class", type=int, help="keep N train images per class")
    prepare_parser.add_argument("--test-per-class", type=int, help="keep N test images per class")
    prepare_parser.add_argument("--seed", type=int, default=0, help="subset seed (default 0)")
    prepare_parser.set_defaults(func=_cli_prepare)

    synthetic_parser = subparsers.add_parser(
        "synthetic-archive",
        help="write a small reproducible CIFAR-10-shaped archive",
        description="Write a small, learnable, byte-for-byte reproducible archive in the official "
        "CIFAR-10 layout and print its md5.",
    )
    synthetic_parser.add_argument("--out", required=True, type=Path)
    synthetic_parser.add_argument("--train-per-class", type=int, default=20)
    synthetic_parser.add_argument("--test-per-class", type=int, default=10)
    synthetic_parser.add_argument("--seed", type=int, default=0)
    synthetic_parser.set_defaults(func=_cli_synthetic)


def _cli_download(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError

    md5 = args.md5
    if md5 is None:
        if args.url != DEFAULT_URL:
            raise CLIError(f"--md5 is required with --url {args.url}")
        md5 = DEFAULT_MD5
    try:
        download(args.url, md5, args.out, progress=not args.no_progress)
    except (ValueError, OSError) as exc:
        raise CLIError(str(exc)) from exc
    return 0


def _cli_prepare(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError

    try:
        out = prepare(
            args.archive,
            args.out,
            train_per_class=args.train_per_class,
            test_per_class=args.test_per_class,
            seed=args.seed,
        )
        data = load_prepared(out)
    except (ValueError, OSError) as exc:
        raise CLIError(str(exc)) from exc
    print(
        f"{out}: train {len(data.train_labels)}, test {len(data.test_labels)} images, "
        f"{len(data.class_names)} classes ({', '.join(data.class_names)}), "
        f"source md5 {data.source_md5}"
    )
    return 0


def _cli_synthetic(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError

    try:
        md5 = build_synthetic_archive(
            args.out,
            train_per_class=args.train_per_class,
            test_per_class=args.test_per_class,
            seed=args.seed,
        )
    except (ValueError, OSError) as exc:
        raise CLIError(str(exc)) from exc
    print(md5)
    return 0
