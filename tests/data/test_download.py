"""Tests of trainact.data.download: file and HTTP sources, md5 checks, resuming.

HTTP tests use a loopback server (127.0.0.1, port 0) that can honour or ignore Range and break
off mid-transfer.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from trainact import cli
from trainact.data import download
from trainact.data.synthetic import build_synthetic_archive


def md5_of(payload: bytes) -> str:
    return hashlib.md5(payload).hexdigest()


# --------------------------------------------------------------------------------------------
# loopback HTTP server


@dataclass
class ArchiveServer:
    """Serves ``payload`` at ``/cifar.tar.gz``; records every request."""

    payload: bytes
    honour_range: bool = True
    cut_after: int | None = None  # send only this many body bytes, then close
    requests: list[dict] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cifar.tar.gz"


class _Handler(BaseHTTPRequestHandler):
    """GET handler for :class:`ArchiveServer` (found as ``self.server.state``)."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        state = self.server.state  # type: ignore[attr-defined]
        range_header = self.headers.get("Range")
        record = {"path": self.path, "range": range_header}
        if self.path != "/cifar.tar.gz":
            record.update(status=404, sent=0)
            state.requests.append(record)
            self.send_error(404)
            return
        size, start = len(state.payload), 0
        if range_header and state.honour_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", range_header).group(1))
            if start >= size:
                record.update(status=416, sent=0)
                state.requests.append(record)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        else:
            status = 200
        body = state.payload[start:]
        sent = body if state.cut_after is None else body[: state.cut_after]
        record.update(status=status, sent=len(sent))
        state.requests.append(record)  # before writing: the client may finish first
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(sent)
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def http_server(synthetic: tuple[Path, str]):
    """A loopback server for the synthetic archive (tests may change its settings)."""
    state = ArchiveServer(payload=synthetic[0].read_bytes())
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.state = state  # type: ignore[attr-defined]
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --------------------------------------------------------------------------------------------
# download


def test_download_file_url_and_plain_path(tmp_path: Path, synthetic: tuple[Path, str]) -> None:
    source, md5 = synthetic
    by_url = download.download(source.resolve().as_uri(), md5, tmp_path / "a" / "c.tar.gz", progress=False)
    assert by_url == tmp_path / "a" / "c.tar.gz"
    assert by_url.read_bytes() == source.read_bytes()
    by_path = download.download(str(source), md5.upper(), tmp_path / "b.tar.gz", progress=False)
    assert by_path.read_bytes() == source.read_bytes()
    assert not (tmp_path / "b.tar.gz.part").exists()


def test_download_skips_when_dest_has_right_md5(tmp_path: Path, synthetic: tuple[Path, str]) -> None:
    source, md5 = synthetic
    dest = tmp_path / "c.tar.gz"
    dest.write_bytes(source.read_bytes())
    mtime = dest.stat().st_mtime_ns
    missing_source = (tmp_path / "gone.tar.gz").as_uri()  # would fail if it were read
    assert download.download(missing_source, md5, dest, progress=False) == dest
    assert dest.stat().st_mtime_ns == mtime


def test_download_wrong_md5_leaves_nothing(tmp_path: Path, synthetic: tuple[Path, str]) -> None:
    source, md5 = synthetic
    wrong = "0" * 32
    dest = tmp_path / "c.tar.gz"
    url = source.resolve().as_uri()
    with pytest.raises(download.ChecksumError) as error:
        download.download(url, wrong, dest, progress=False)
    message = str(error.value)
    assert wrong in message and md5 in message and url in message
    assert list(tmp_path.iterdir()) == []


def test_download_never_deletes_its_own_source(tmp_path: Path) -> None:
    source = tmp_path / "c.tar.gz"
    source.write_bytes(b"not the archive")
    with pytest.raises(download.ChecksumError, match="0" * 32):
        download.download(str(source), "0" * 32, source, progress=False)
    assert source.read_bytes() == b"not the archive"


def test_download_refetches_dest_with_wrong_md5(tmp_path: Path, synthetic: tuple[Path, str]) -> None:
    source, md5 = synthetic
    dest = tmp_path / "c.tar.gz"
    dest.write_bytes(b"stale")
    download.download(source.resolve().as_uri(), md5, dest, progress=False)
    assert dest.read_bytes() == source.read_bytes()


def test_download_http_full(tmp_path: Path, http_server: ArchiveServer) -> None:
    dest = download.download(
        http_server.url, md5_of(http_server.payload), tmp_path / "c.tar.gz", progress=False
    )
    assert dest.read_bytes() == http_server.payload
    assert [(r["range"], r["status"]) for r in http_server.requests] == [(None, 200)]


def test_download_http_resumes_partial_file(tmp_path: Path, http_server: ArchiveServer) -> None:
    payload = http_server.payload
    dest = tmp_path / "c.tar.gz"
    done = len(payload) // 3
    (tmp_path / "c.tar.gz.part").write_bytes(payload[:done])
    download.download(http_server.url, md5_of(payload), dest, progress=False)
    assert dest.read_bytes() == payload
    assert http_server.requests == [
        {
            "path": "/cifar.tar.gz",
            "range": f"bytes={done}-",
            "status": 206,
            "sent": len(payload) - done,
        }
    ]
    assert not (tmp_path / "c.tar.gz.part").exists()


def test_download_http_restarts_when_range_ignored(tmp_path: Path, http_server: ArchiveServer) -> None:
    payload = http_server.payload
    http_server.honour_range = False
    dest = tmp_path / "c.tar.gz"
    (tmp_path / "c.tar.gz.part").write_bytes(b"\xff" * 1000)  # appending to it would corrupt
    download.download(http_server.url, md5_of(payload), dest, progress=False)
    assert dest.read_bytes() == payload
    assert [(r["range"], r["status"]) for r in http_server.requests] == [("bytes=1000-", 200)]


def test_download_http_restarts_when_part_is_too_long(tmp_path: Path, http_server: ArchiveServer) -> None:
    payload = http_server.payload
    (tmp_path / "c.tar.gz.part").write_bytes(payload + b"junk")  # server answers 416
    dest = download.download(http_server.url, md5_of(payload), tmp_path / "c.tar.gz", progress=False)
    assert dest.read_bytes() == payload
    assert [r["status"] for r in http_server.requests] == [416, 200]


def test_download_http_broken_transfer_keeps_part_and_resumes(
    tmp_path: Path, http_server: ArchiveServer
) -> None:
    payload = http_server.payload
    dest = tmp_path / "c.tar.gz"
    part = tmp_path / "c.tar.gz.part"
    http_server.cut_after = 100_000
    with pytest.raises(download.DownloadError, match=re.escape(http_server.url)):
        download.download(http_server.url, md5_of(payload), dest, progress=False)
    assert part.read_bytes() == payload[:100_000]
    assert not dest.exists()
    http_server.cut_after = None
    download.download(http_server.url, md5_of(payload), dest, progress=False)
    assert dest.read_bytes() == payload
    assert [r["range"] for r in http_server.requests] == [None, "bytes=100000-"]


def test_download_http_wrong_md5(tmp_path: Path, http_server: ArchiveServer) -> None:
    wrong = "f" * 32
    with pytest.raises(download.ChecksumError) as error:
        download.download(http_server.url, wrong, tmp_path / "c.tar.gz", progress=False)
    assert wrong in str(error.value) and md5_of(http_server.payload) in str(error.value)
    assert http_server.url in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_download_http_error_names_url(tmp_path: Path, http_server: ArchiveServer) -> None:
    url = http_server.url.replace("cifar.tar.gz", "missing.tar.gz")
    with pytest.raises(download.DownloadError, match=r"HTTP 404") as error:
        download.download(url, "0" * 32, tmp_path / "c.tar.gz", progress=False)
    assert url in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_download_unreachable_and_missing_sources(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/cifar.tar.gz"
    with pytest.raises(download.DownloadError, match=re.escape(url)):
        download.download(url, "0" * 32, tmp_path / "c.tar.gz", progress=False)
    missing = (tmp_path / "nothing.tar.gz").as_uri()
    with pytest.raises(download.DownloadError, match=re.escape(missing)):
        download.download(missing, "0" * 32, tmp_path / "c.tar.gz", progress=False)


@pytest.mark.parametrize(
    ("url", "md5", "pattern"),
    [
        ("ftp://example.org/c.tar.gz", "0" * 32, "unsupported URL scheme 'ftp'"),
        ("file://somehost/c.tar.gz", "0" * 32, "somehost"),
        ("file:///c.tar.gz", "not-an-md5", "not-an-md5"),
    ],
)
def test_download_rejects_bad_arguments(tmp_path: Path, url: str, md5: str, pattern: str) -> None:
    with pytest.raises(ValueError, match=re.escape(pattern)):
        download.download(url, md5, tmp_path / "c.tar.gz", progress=False)


def test_cli_download_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    archive = tmp_path / "synthetic.tar.gz"
    build_synthetic_archive(archive, train_per_class=2, test_per_class=1)
    capsys.readouterr()
    assert (
        cli.main(
            [
                "download",
                "--params",
                json.dumps({"url": archive.as_uri(), "md5": "0" * 32}),
                "--out",
                str(tmp_path / "x.tar.gz"),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "expected " + "0" * 32 in capsys.readouterr().err
    url_only = json.dumps({"url": archive.as_uri()})
    assert cli.main(["download", "--params", url_only, "--out", str(tmp_path / "x")]) == 2
    assert "md5 is required" in capsys.readouterr().err
