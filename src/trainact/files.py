"""Writing result files so that a crash never leaves half of one; reading a file's digest.

Every file the commands write (prepared data, histories, checkpoints, models, tables, figures,
the report) goes through :func:`atomic_write`: the content is written to a temporary sibling,
flushed to disk, then renamed over the target. A crash, a kill or a full disk leaves either
the old file or the complete new one, and never a temporary file. The new file gets the
ordinary permissions of a file the user creates (the umask decides), so results on a shared
filesystem stay readable by the group like any other file.

A write that fails for want of space or permission ends in a :class:`ResultWriteError` whose
message names the file the user asked for, never the temporary one, and says what to do:
``no space left on device writing <path> (<n> MB needed, <m> MB free)`` (also when the writer
hides the cause, as ``torch.save`` does with "unexpected pos ..." on a full disk: the free space
left decides), or ``cannot write <path>: the folder <dir> is not writable (permission denied)``.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

#: Free space (bytes) below which a failed write is put down to a full disk even when the writer
#: says otherwise: torch.save reports a full disk as "unexpected pos ...", and a checkpoint fails
#: as soon as its first tensor does not fit, well before the disk is quite full.
LOW_SPACE_BYTES = 1_000_000


class ResultWriteError(OSError):
    """A result file could not be written for want of space or permission. ``str()`` is the
    whole message (naming the file and the folder); ``errno`` and ``filename`` (the result's
    path, not the temporary file's) are set as for any :class:`OSError`."""

    def __init__(self, code: int, message: str, path: str | os.PathLike) -> None:
        super().__init__(message)
        self.errno = code
        self.filename = str(path)

    def __str__(self) -> str:
        return self.args[0]


def size_text(size: int) -> str:
    """``size`` bytes for a message: ``"180 MB"``, ``"5.5 MB"``, ``"0.3 MB"``, ``"73 kB"``, ``"0 bytes"``."""
    if size >= 10e6:
        return f"{size / 1e6:.0f} MB"
    if size >= 100e3:
        return f"{size / 1e6:.2g} MB"
    return f"{size / 1e3:.2g} kB" if size >= 1000 else f"{size} bytes"


def no_space_error(path: str | os.PathLike, needed: int | None, free: int) -> ResultWriteError:
    """The error for a result that does not fit: ``needed`` bytes against ``free``; ``needed``
    ``None`` when the writer failed before it was done, so only "more than is free" is known."""
    if needed is not None:
        need = f"{size_text(needed)} needed"
    else:  # a writer that failed halfway cannot say how much it needed
        need = "the disk is full" if free < 1000 else f"more than {size_text(free)} needed"
    return ResultWriteError(
        errno.ENOSPC, f"no space left on device writing {path} ({need}, {size_text(free)} free)", path
    )


def permission_error(
    path: str | os.PathLike, folder: str | os.PathLike, reason: str = "permission denied"
) -> ResultWriteError:
    """The error for a result whose ``folder`` (the first one that cannot be written) refuses it;
    ``reason``: ``"permission denied"`` or ``"read-only file system"``."""
    return ResultWriteError(
        errno.EACCES if reason == "permission denied" else errno.EROFS,
        f"cannot write {path}: the folder {folder} is not writable ({reason})",
        path,
    )


def free_bytes(path: str | os.PathLike) -> int:
    """Bytes free to this user on the filesystem that holds ``path`` (an existing folder)."""
    return shutil.disk_usage(path).free


def describe_os_error(exc: OSError) -> str:
    """One line for a failed file operation that names the file and, where it can, the fix: a
    full disk with the space free, a refused creation with the folder that refuses it."""
    if isinstance(exc, ResultWriteError):
        return str(exc)
    if not exc.filename:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # a stream's write: stderr (the log), stdout
            return f"no space left on device writing the log or output ({exc.strerror})"
        return str(exc)
    name = Path(os.fsdecode(exc.filename))
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            return str(no_space_error(name, None, free_bytes(name.parent)))
        except OSError:
            pass
    reason = _refusal(exc)
    if reason is not None and not name.exists():  # it was to be made in a folder that refuses it
        return str(permission_error(name, name.parent, reason))
    return f"{name}: {exc.strerror or exc}"


def make_folder(folder: str | os.PathLike, for_path: str | os.PathLike | None = None) -> Path:
    """``mkdir -p folder``; a refusal (:func:`permission_error`) names ``for_path`` (the file to
    be written there; else ``folder``) and the folder that cannot be written."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = _refusal(exc)
        if reason is None:
            raise
        refused = Path(exc.filename).parent if exc.filename else folder.parent
        raise permission_error(for_path or folder, refused, reason) from exc
    return folder


def _refusal(exc: OSError) -> str | None:
    """Why the filesystem refused a write (:func:`permission_error`'s reason), or ``None``."""
    if isinstance(exc, PermissionError):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return None


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object], size: int | None = None) -> Path:
    """Call ``write(tmp)`` to create the temporary sibling ``tmp`` of ``path``, then move it to
    ``path``. Creates the parent folder; returns ``path`` as a :class:`Path`.

    ``write`` gets a path, so any writer fits: ``torch.save``, ``Figure.savefig``,
    ``Path.write_text``, ``shutil.copy2``, or ``open(tmp, "wb")``. ``size``, the bytes the file
    will take where the caller knows it, is checked against the free space before anything is
    written.

    Raises:
        ResultWriteError: the file does not fit (the writer raised ENOSPC, or anything at all
            while less than :data:`LOW_SPACE_BYTES` or less than the rest of ``size`` was free),
            or its folder is not writable. The writer's own exception is its ``__cause__``; no
            temporary file is left.
    """
    path = Path(path)
    make_folder(path.parent, for_path=path)
    if size is not None and (free := free_bytes(path.parent)) < size:
        raise no_space_error(path, size, free)
    # Unique per process and call, so two writers never share a temporary file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except Exception as exc:
        error = _write_error(path, tmp, size, exc)  # deletes tmp
        if error is None:
            raise
        raise error from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _write_error(path: Path, tmp: Path, size: int | None, exc: Exception) -> ResultWriteError | None:
    """Delete ``tmp``, whose writing for ``path`` raised ``exc``; return the error that says why
    (no space, no permission), or ``None`` when neither explains it."""
    # A refusal of some other file (a writer's unreadable source) is not the folder's fault.
    ours = isinstance(exc, OSError) and exc.filename in (None, str(tmp), str(path))
    reason = _refusal(exc) if ours else None
    written = tmp.stat().st_size if tmp.exists() else 0
    try:
        free_then = free_bytes(path.parent)
    except OSError:
        free_then = None
    tmp.unlink(missing_ok=True)
    if reason is not None:
        return permission_error(path, path.parent, reason)
    if free_then is None:
        return None
    out_of_space = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    short = free_then < LOW_SPACE_BYTES or size is not None and free_then < size - written
    if not (out_of_space or short):
        return None
    # Reported: the space free once the temporary file is gone, all of it available to the file.
    return no_space_error(path, size, free_bytes(path.parent))


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` with :func:`atomic_write`."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_csv_atomic(
    path: str | os.PathLike, rows: Iterable[Mapping[str, Any]], columns: Sequence[str]
) -> Path:
    """Write ``rows`` as CSV with :func:`atomic_write`: a header of ``columns``, then each row's
    values of those columns in that order (other keys are not written); a missing or ``None``
    value is an empty cell. Every CSV result (histories, pretraining losses, health) uses it."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(columns))
            writer.writeheader()
            for row in rows:
                writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})

    return atomic_write(path, write)


def file_digest(path: str | os.PathLike, algorithm: str) -> str:
    """Hex digest (``"md5"``, ``"sha256"``, ...) of a file's bytes, read in chunks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


def file_md5(path: str | os.PathLike) -> str:
    """Hex md5 of a file: how the CIFAR-10 archive is identified (download, provenance)."""
    return file_digest(path, "md5")
