"""Fetch the CIFAR-10 archive and verify its md5: ``python -m trainact download``.

:func:`download` takes an http(s):// URL, a file:// URL or a local path, resumes a partial
``.part`` file over HTTP Range, shows a progress bar, checks the md5 and moves the file into
place atomically. Its result is pinned by that md5, so a change of this code cannot change what
it writes: the workflow's ``download`` rule carries no code digest, and no job that reads the
archive imports this module (the workflow reruns a job when a module its command imports
changes).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPException
from pathlib import Path

from tqdm import tqdm

from trainact import __version__
from trainact.data.cifar import OFFICIAL_MD5, OFFICIAL_URL
from trainact.files import file_md5

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_HTTP_TIMEOUT_S = 60
_MD5_PATTERN = re.compile(r"[0-9a-f]{32}")


class ChecksumError(ValueError):
    """A downloaded file's md5 differs from the expected one (the file has been deleted)."""


class DownloadError(OSError):
    """The source could not be fetched (unreachable host, HTTP error, missing local file)."""


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
                f"file URL must name a local absolute path (file:///path), got host {parts.netloc!r} in {url}"
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
# CLI

DOWNLOAD_KEYS = ("url", "md5")
"""The keys of ``download --params``: the config's ``dataset.url`` and ``dataset.md5``."""


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``download`` to the ``trainact`` CLI."""
    parser = subparsers.add_parser(
        "download",
        help="fetch the CIFAR-10 archive and verify its md5",
        description="Fetch a CIFAR-10 python archive (http(s)://, file:// or a local path), "
        "resuming a partial download, and verify its md5.",
    )
    parser.add_argument(
        "--params",
        default="{}",
        help=f'JSON: {{"url": URL, "md5": MD5}}; url defaults to the official {OFFICIAL_URL}, '
        f"whose md5 ({OFFICIAL_MD5}) is then the default",
    )
    parser.add_argument("--out", required=True, type=Path, help="archive path to write")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_cmd_download)


def _cmd_download(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError, parse_params

    params = parse_params(args.params, DOWNLOAD_KEYS)
    url = params.get("url", OFFICIAL_URL)
    md5 = params.get("md5")
    if md5 is None:
        if url != OFFICIAL_URL:
            raise CLIError(f'md5 is required with url {url} (--params {{"url", "md5"}})')
        md5 = OFFICIAL_MD5
    if not isinstance(url, str) or not isinstance(md5, str):
        raise CLIError(f"--params url and md5 must be strings, got {url!r} and {md5!r}")
    try:
        download(url, md5, args.out, progress=not args.no_progress)
    except (ValueError, OSError) as exc:
        raise CLIError(str(exc)) from exc
    return 0
