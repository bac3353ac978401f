"""Reading the official CIFAR-10 archive safely: every tar member checked (no absolute paths,
``..``, links, devices or fifos), the pickled batches read straight out of the archive (nothing is
extracted to disk) with an unpickler that admits only numpy's array reconstruction, and each batch
checked for CIFAR-10's shapes and labels. :func:`trainact.data.prepare.prepare` uses it.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import pickle
import re
import sys
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import numpy as np
from tqdm import tqdm

from trainact.data.cifar import (
    IMAGE_SHAPE,
    NUM_CLASSES,
    PIXELS_PER_IMAGE,
)

_CHUNK = 1 << 20


class ArchiveError(ValueError):
    """The archive is unsafe, incomplete or holds data that is not CIFAR-10 shaped."""


class ForbiddenGlobalError(pickle.UnpicklingError):
    """A pickle asked for a global that a CIFAR-10 batch never contains."""


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


def read_members(archive: Path, wanted: tuple[str, ...], progress: bool) -> tuple[dict[str, bytes], str]:
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


def unpickle_member(content: bytes, where: str) -> dict[str, Any]:
    """Unpickle one batch and return it with str keys (official pickles have bytes keys)."""
    try:
        obj = restricted_loads(content)
    except Exception as exc:  # any decoding failure of this member is one error naming it
        raise ArchiveError(f"{where}: cannot unpickle: {exc}") from exc
    if not isinstance(obj, dict):
        raise ArchiveError(f"{where}: expected a pickled dict, got {type(obj).__name__}")
    return {_text(key): value for key, value in obj.items()}


def batch_arrays(batch: dict[str, Any], where: str) -> tuple[np.ndarray, np.ndarray]:
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
            f"{where}: 'labels' must hold one label per image ({data.shape[0]}), got shape {labels.shape}"
        )
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ArchiveError(f"{where}: 'labels' must be integers, got {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ArchiveError(
            f"{where}: labels must lie in 0..{NUM_CLASSES - 1}, got {labels.min()}..{labels.max()}"
        )
    return data.reshape(-1, *IMAGE_SHAPE), labels.astype(np.int64)


def read_class_names(meta: dict[str, Any], where: str) -> list[str]:
    names = meta.get("label_names")
    if not isinstance(names, (list, tuple)) or len(names) != NUM_CLASSES:
        raise ArchiveError(f"{where}: 'label_names' must list {NUM_CLASSES} names, got {names!r}")
    return [_text(name) for name in names]
