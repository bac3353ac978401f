"""Writing result files so that a crash never leaves half of one; reading a file's digest.

Every file the commands write (prepared data, histories, checkpoints, models, tables, figures,
the report) goes through :func:`atomic_write`: the content is written to a temporary sibling,
flushed to disk, then renamed over the target. A crash, a kill or a full disk leaves either
the old file or the complete new one, and never a temporary file. The new file gets the
ordinary permissions of a file the user creates (the umask decides), so results on a shared
filesystem stay readable by the group like any other file.
"""

from __future__ import annotations

import csv
import hashlib
import os
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to create the temporary sibling ``tmp`` of ``path``, then move it to
    ``path``. Creates the parent folder; returns ``path`` as a :class:`Path`.

    ``write`` gets a path, so any writer fits: ``torch.save``, ``Figure.savefig``,
    ``Path.write_text``, ``shutil.copy2``, or ``open(tmp, "wb")``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique per process and call, so two writers never share a temporary file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


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
